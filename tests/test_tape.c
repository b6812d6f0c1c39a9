/* tests/test_tape.c - the tape's contract besides gradients: forward values, errors that are
 * reported instead of crashing (arena full, shapes, NULL inputs), arena reuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <string.h>
#include <cmocka.h>

#include "error.h"
#include "tape.h"

static void forward_values(void **state)
{
    (void)state;
    kgm_tape *t;
    assert_int_equal(kgm_tape_new(&t, 1 << 16), 0);
    const float a[6] = { 1, 2, 3, 4, 5, 6 }, b[6] = { 1, 0, 0, 1, 1, 1 };
    kgm_node *A = kgm_tape_leaf(t, a, 2, 3, 0), *B = kgm_tape_leaf(t, b, 3, 2, 0);
    kgm_node *C = kgm_matmul(t, A, B);               /* [[4, 5], [10, 11]] */
    assert_int_equal(kgm_rows(C), 2);
    assert_int_equal(kgm_cols(C), 2);
    const float want[4] = { 4, 5, 10, 11 };
    assert_memory_equal(kgm_val(C), want, sizeof want);
    kgm_node *Ct = kgm_matmul_t(t, B, A, 1, 1);      /* (A B)^T = B^T A^T */
    const float want_t[4] = { 4, 10, 5, 11 };
    assert_memory_equal(kgm_val(Ct), want_t, sizeof want_t);
    kgm_node *s = kgm_softmax(t, A);
    for (int r = 0; r < 2; r++) {
        const float *row = kgm_val(s) + 3 * r;
        assert_float_equal(row[0] + row[1] + row[2], 1.0f, 1e-6f);
        assert_float_equal(row[2] / row[1], expf(1.0f), 1e-5f);
    }
    const int labels[2] = { 2, 0 };
    kgm_node *x = kgm_softmax_xent(t, A, labels);
    double lse = log(exp(1.0) + exp(2.0) + exp(3.0));   /* both rows: same shifts */
    assert_float_equal(kgm_val(x)[0], ((lse - 3) + (lse + 3 - 4)) / 2, 1e-5f);
    kgm_node *v = kgm_view(t, A, 2, 2, 2);            /* no copy: points into A */
    assert_ptr_equal(kgm_val(v), a + 2);
    kgm_node *cat = kgm_concat_cols(t, A, kgm_slice_cols(t, A, 1, 1));
    const float want_cat[8] = { 1, 2, 3, 2, 4, 5, 6, 5 };
    assert_memory_equal(kgm_val(cat), want_cat, sizeof want_cat);
    assert_float_equal(kgm_val(kgm_mse(t, A, kgm_add_scalar(t, A, 2.0f)))[0], 4.0f, 1e-6f);
    assert_int_equal(kgm_tape_status(t), 0);
    kgm_tape_free(t);
}

static void arena_exhaustion_is_reported(void **state)
{
    (void)state;
    kgm_tape *t;
    assert_int_equal(kgm_tape_new(&t, 8192), 0);
    float data[256] = { 0 };
    kgm_node *x = kgm_tape_leaf(t, data, 16, 16, 1), *y = x;
    int made = 0;
    while (y && made < 100) {
        y = kgm_relu(t, y);
        made++;
    }
    assert_null(y);
    assert_true(made > 1 && made < 100);
    assert_int_equal(kgm_tape_status(t), KGM_ENOMEM);
    assert_non_null(strstr(kgm_error(), "tape arena full"));
    assert_null(kgm_add(t, x, x));                    /* later ops fail too, quietly */
    kgm_node *g;
    assert_int_equal(kgm_tape_grad(t, NULL, 1, &x, &g, 0), KGM_ENOMEM);
    assert_null(g);
    assert_true(kgm_tape_used(t) <= kgm_tape_capacity(t));
    /* A rewind clears the error and the arena serves again. */
    kgm_tape_rewind(t);
    assert_int_equal(kgm_tape_status(t), 0);
    assert_int_equal(kgm_tape_used(t), 0);
    assert_int_equal(kgm_tape_nodes(t), 0);
    x = kgm_tape_leaf(t, data, 16, 16, 1);
    assert_non_null(kgm_relu(t, x));
    assert_true(kgm_tape_peak(t) > kgm_tape_used(t));
    kgm_tape_free(t);
    assert_int_equal(kgm_tape_new(&t, 10), KGM_EINVAL);
    assert_null(t);
}

static void bad_shapes_and_inputs_are_reported(void **state)
{
    (void)state;
    kgm_tape *t;
    assert_int_equal(kgm_tape_new(&t, 1 << 16), 0);
    float d[6] = { 1, 2, 3, 4, 5, 6 };
    kgm_node *a = kgm_tape_leaf(t, d, 2, 3, 1);
    assert_null(kgm_matmul(t, a, a));
    assert_int_equal(kgm_tape_status(t), KGM_EINVAL);
    assert_string_equal(kgm_error_text(), "matmul: 2x3 times 2x3: inner sizes differ");
    struct { const char *msg; } cases[] = {
        { "add: shapes 2x3 and 3x2 do not fit" },
        { "bias_add: shapes 2x3 and 2x3 do not fit" },
        { "view: 2x2 at offset 3 does not fit in a 2x3 node" },
        { "slice_cols: columns 2..3 of a 2x3 node" },
        { "softmax_xent: label 3 of row 1 is outside 0..2" },
        { "gradient of a 2x3 node: the loss must be 1x1" },
        { "relu: input is NULL" },
    };
    const int labels[2] = { 0, 3 };
    for (int k = 0; k < 7; k++) {
        kgm_tape_rewind(t);
        a = kgm_tape_leaf(t, d, 2, 3, 1);
        kgm_node *b = kgm_tape_leaf(t, d, 3, 2, 1), *out = a, *g;
        switch (k) {
        case 0: out = kgm_add(t, a, b); break;
        case 1: out = kgm_bias_add(t, a, a); break;
        case 2: out = kgm_view(t, a, 3, 2, 2); break;
        case 3: out = kgm_slice_cols(t, a, 2, 2); break;
        case 4: out = kgm_softmax_xent(t, a, labels); break;
        case 5: assert_int_equal(kgm_tape_grad(t, a, 1, &a, &g, 0), KGM_EINVAL); out = NULL; break;
        case 6: out = kgm_relu(t, NULL); break;
        }
        assert_null(out);
        assert_string_equal(kgm_error_text(), cases[k].msg);
    }
    kgm_tape_free(t);
}

static void gradients_of_unrelated_nodes_are_zero(void **state)
{
    (void)state;
    kgm_tape *t;
    assert_int_equal(kgm_tape_new(&t, 1 << 16), 0);
    float d[3] = { 1, -2, 3 }, e[3] = { 4, 5, 6 };
    kgm_node *x = kgm_tape_leaf(t, d, 1, 3, 1), *u = kgm_tape_leaf(t, e, 1, 3, 1);
    kgm_node *c = kgm_tape_leaf(t, e, 1, 3, 0);
    kgm_node *loss = kgm_sum(t, kgm_square(t, x));
    kgm_node *wrt[3] = { x, u, c }, *g[3];
    for (int flags = 0; flags <= KGM_CREATE_GRAPH; flags++) {
        assert_int_equal(kgm_tape_grad(t, loss, 3, wrt, g, flags), 0);
        for (int i = 0; i < 3; i++) {
            assert_float_equal(kgm_val(g[0])[i], 2 * d[i], 1e-6f);
            assert_true(kgm_val(g[1])[i] == 0.0f && kgm_val(g[2])[i] == 0.0f);
        }
        assert_int_equal(g[0]->requires_grad, flags == KGM_CREATE_GRAPH);
    }
    kgm_tape_free(t);
}

static void rewinding_reuses_the_same_memory(void **state)
{
    (void)state;
    kgm_tape *t;
    assert_int_equal(kgm_tape_new(&t, 1 << 16), 0);
    float w[4] = { 0.5f, -1, 2, 0.25f }, x[2] = { 1, 2 };
    size_t used = 0;
    for (int it = 0; it < 5; it++) {
        kgm_tape_rewind(t);
        kgm_node *W = kgm_tape_leaf(t, w, 2, 2, 1), *g;
        kgm_node *y = kgm_tanh(t, kgm_matmul(t, kgm_tape_leaf(t, x, 1, 2, 0), W));
        assert_int_equal(kgm_tape_grad(t, kgm_sum(t, y), 1, &W, &g, 0), 0);
        if (it == 0) used = kgm_tape_used(t);
        assert_int_equal(kgm_tape_used(t), used);     /* same work, same bytes, no growth */
        for (int i = 0; i < 4; i++) w[i] -= 0.1f * kgm_val(g)[i];
    }
    assert_int_equal(kgm_tape_peak(t), used);
    kgm_tape_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forward_values),
        cmocka_unit_test(arena_exhaustion_is_reported),
        cmocka_unit_test(bad_shapes_and_inputs_are_reported),
        cmocka_unit_test(gradients_of_unrelated_nodes_are_zero),
        cmocka_unit_test(rewinding_reuses_the_same_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
