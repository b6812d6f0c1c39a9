/* tests/test_gradcheck.c - every tape op against central differences, first and second order,
 * and the meta-gradient through one and several inner SGD steps of a small ReLU MLP.
 *
 * How the check is made reliable in float: the tape computes in float; the differences are taken
 * in double with a 4-point stencil (-f(x+2h) + 8f(x+h) - 8f(x-h) + f(x-2h)) / 12h, whose
 * truncation error is O(h^4), with h = 1e-2. The float evaluation error of f is ~1e-6 relative,
 * so the stencil's noise is ~1e-4: far below the tolerance (1e-3 absolute + 1e-2 relative), which
 * in turn is far below what a wrong sign or a missing term produces (a difference of the size
 * of the gradient itself). Each coordinate is also estimated with h/2; when the two disagree the
 * stencil straddled a kink (relu at 0) and that coordinate is skipped, counted, and the count
 * is bounded. Non-scalar ops are reduced as f = sum(w * op(inputs)) with fixed random w. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "rng.h"
#include "tape.h"

#define MAX_IN   3
#define MAX_SIZE 256
#define H        1e-2
#define ATOL     1e-3
#define RTOL     1e-2

typedef kgm_node *(*build_fn)(kgm_tape *t, kgm_node **in);

typedef struct gcase {
    const char *name;
    int         n_in;
    int         shape[MAX_IN][2];
    float       lo, hi;       /* inputs uniform in [lo, hi) ... */
    float       margin;       /* ... with |x| >= margin (away from kinks and poles) */
    build_fn    f;
    double      h;            /* difference step; 0 means H */
} gcase;

static kgm_tape *tape;
static float     in_buf[MAX_IN][MAX_SIZE];
static float     w_buf[MAX_SIZE];

/* f(inputs) as a scalar: the op's output reduced with the fixed weights w. */
static kgm_node *scalar_f(const gcase *c, kgm_node **in)
{
    kgm_node *y = c->f(tape, in);
    if (!y || y->size == 1) return y;
    assert_true(y->size <= MAX_SIZE);
    return kgm_sum(tape, kgm_mul(tape, y, kgm_tape_leaf(tape, w_buf, y->rows, y->cols, 0)));
}

static void leaves(const gcase *c, kgm_node **in, int requires_grad)
{
    for (int i = 0; i < c->n_in; i++)
        in[i] = kgm_tape_leaf(tape, in_buf[i], c->shape[i][0], c->shape[i][1], requires_grad);
}

/* order 1: f; order 2: the squared norm of f's gradient, sum_i |df/dx_i|^2 (gradient computed
 * with flags; KGM_CREATE_GRAPH makes the result differentiable). */
static kgm_node *objective(const gcase *c, kgm_node **in, int order, int flags)
{
    kgm_node *y = scalar_f(c, in);
    if (order == 1) return y;
    kgm_node *g[MAX_IN], *acc = NULL;
    assert_int_equal(kgm_tape_grad(tape, y, c->n_in, in, g, flags), 0);
    for (int i = 0; i < c->n_in; i++) {
        kgm_node *s = kgm_sum(tape, kgm_square(tape, g[i]));
        acc = acc ? kgm_add(tape, acc, s) : s;
    }
    return acc;
}

static double eval(const gcase *c, int order)
{
    kgm_node *in[MAX_IN];
    kgm_tape_rewind(tape);
    leaves(c, in, 1);   /* composite cases take inner gradients even at order 1 */
    kgm_node *y = objective(c, in, order, 0);
    assert_non_null(y);
    return y->val[0];
}

static double stencil(const gcase *c, int order, float *x, double h)
{
    float x0 = *x;
    double f[4];
    const double step[4] = { 2 * h, h, -h, -2 * h };
    for (int s = 0; s < 4; s++) {
        *x = (float)(x0 + step[s]);
        f[s] = eval(c, order);
    }
    *x = x0;
    return (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * h);
}

static void fill_inputs(const gcase *c, kgm_rng *r)
{
    for (int i = 0; i < c->n_in; i++)
        for (int j = 0; j < c->shape[i][0] * c->shape[i][1]; j++) {
            float v;
            do v = kgm_rng_uniformf(r, c->lo, c->hi); while (fabsf(v) < c->margin);
            in_buf[i][j] = v;
        }
    kgm_rng_fill_uniform(r, w_buf, MAX_SIZE, -1.0f, 1.0f);
}

/* Check the tape's gradient of the order-1 or order-2 objective against the stencil; returns
 * the number of coordinates skipped at kinks. */
static int check(const gcase *c, int order)
{
    kgm_node *in[MAX_IN], *g[MAX_IN];
    kgm_tape_rewind(tape);
    leaves(c, in, 1);
    kgm_node *y = objective(c, in, order, KGM_CREATE_GRAPH);
    assert_non_null(y);
    assert_int_equal(kgm_tape_grad(tape, y, c->n_in, in, g, 0), 0);
    int skipped = 0, checked = 0;
    double worst = 0.0;
    for (int i = 0; i < c->n_in; i++) {
        int n = c->shape[i][0] * c->shape[i][1];
        float analytic[MAX_SIZE];
        memcpy(analytic, g[i]->val, (size_t)n * sizeof(float));   /* eval() rewinds the tape */
        for (int j = 0; j < n; j++) {
            double h = c->h > 0 ? c->h : H;
            double num = stencil(c, order, &in_buf[i][j], h);
            double half = stencil(c, order, &in_buf[i][j], h / 2);
            if (fabs(num - half) > ATOL + RTOL * fabs(half)) { if (getenv("GC_DEBUG")) print_message("skip %s in%d[%d]: tape %g h %g h/2 %g\n", c->name, i, j, analytic[j], num, half); skipped++; continue; }
            double err = fabs(analytic[j] - num), tol = ATOL + RTOL * fabs(num);
            if (err > tol)
                fail_msg("%s order %d: d/d in%d[%d] tape %.6g, differences %.6g (tolerance %.2g)",
                         c->name, order, i, j, analytic[j], num, tol);
            if (err / tol > worst) worst = err / tol;
            checked++;
        }
    }
    assert_true(checked > 0);
    print_message("%-12s order %d: %3d coordinates, worst error %.3f of tolerance, %d skipped at kinks\n",
                  c->name, order, checked, worst, skipped);
    return skipped;
}

/* Direct and recorded first-order gradients must agree (same arithmetic, other path). */
static void check_modes_agree(const gcase *c)
{
    kgm_node *in[MAX_IN], *g0[MAX_IN], *g1[MAX_IN];
    kgm_tape_rewind(tape);
    leaves(c, in, 1);
    kgm_node *y = scalar_f(c, in);
    assert_int_equal(kgm_tape_grad(tape, y, c->n_in, in, g0, 0), 0);
    assert_int_equal(kgm_tape_grad(tape, y, c->n_in, in, g1, KGM_CREATE_GRAPH), 0);
    for (int i = 0; i < c->n_in; i++)
        for (int j = 0; j < g0[i]->size; j++)
            assert_float_equal(g0[i]->val[j], g1[i]->val[j], 1e-6f * (1 + fabsf(g0[i]->val[j])));
}

/* ---- the ops under test ---- */
static kgm_node *f_matmul(kgm_tape *t, kgm_node **x) { return kgm_matmul(t, x[0], x[1]); }
static kgm_node *f_matmul_tn(kgm_tape *t, kgm_node **x) { return kgm_matmul_t(t, x[0], x[1], 1, 0); }
static kgm_node *f_matmul_nt(kgm_tape *t, kgm_node **x) { return kgm_matmul_t(t, x[0], x[1], 0, 1); }
static kgm_node *f_matmul_tt(kgm_tape *t, kgm_node **x) { return kgm_matmul_t(t, x[0], x[1], 1, 1); }
/* Products make second derivatives non-zero for the linear ops, so that order 2 tests them. */
static kgm_node *f_add(kgm_tape *t, kgm_node **x) { return kgm_mul(t, kgm_add(t, x[0], x[1]), x[0]); }
static kgm_node *f_sub(kgm_tape *t, kgm_node **x) { return kgm_square(t, kgm_sub(t, x[0], x[1])); }
static kgm_node *f_mul(kgm_tape *t, kgm_node **x) { return kgm_mul(t, x[0], x[1]); }
static kgm_node *f_div(kgm_tape *t, kgm_node **x) { return kgm_div(t, x[0], x[1]); }
static kgm_node *f_scale(kgm_tape *t, kgm_node **x) { return kgm_square(t, kgm_scale(t, x[0], -1.7f)); }
static kgm_node *f_add_scalar(kgm_tape *t, kgm_node **x) { return kgm_square(t, kgm_add_scalar(t, x[0], 0.6f)); }
static kgm_node *f_axpy(kgm_tape *t, kgm_node **x) { return kgm_square(t, kgm_axpy(t, -0.3f, x[0], x[1])); }
static kgm_node *f_scale_by(kgm_tape *t, kgm_node **x) { return kgm_scale_by(t, x[0], x[1]); }
static kgm_node *f_bias_add(kgm_tape *t, kgm_node **x) { return kgm_square(t, kgm_bias_add(t, x[0], x[1])); }
static kgm_node *f_relu(kgm_tape *t, kgm_node **x) { return kgm_mul(t, kgm_relu(t, x[0]), x[1]); }
static kgm_node *f_tanh(kgm_tape *t, kgm_node **x) { return kgm_tanh(t, x[0]); }
static kgm_node *f_sigmoid(kgm_tape *t, kgm_node **x) { return kgm_sigmoid(t, x[0]); }
static kgm_node *f_exp(kgm_tape *t, kgm_node **x) { return kgm_exp(t, x[0]); }
static kgm_node *f_log(kgm_tape *t, kgm_node **x) { return kgm_log(t, x[0]); }
static kgm_node *f_square(kgm_tape *t, kgm_node **x) { return kgm_square(t, x[0]); }
static kgm_node *f_sum(kgm_tape *t, kgm_node **x) { return kgm_square(t, kgm_sum(t, x[0])); }
static kgm_node *f_mean(kgm_tape *t, kgm_node **x) { return kgm_square(t, kgm_mean(t, x[0])); }
static kgm_node *f_colsum(kgm_tape *t, kgm_node **x) { return kgm_square(t, kgm_colsum(t, x[0])); }
static kgm_node *f_rowsum(kgm_tape *t, kgm_node **x) { return kgm_square(t, kgm_rowsum(t, x[0])); }
static kgm_node *f_repeat_rows(kgm_tape *t, kgm_node **x) { return kgm_square(t, kgm_repeat_rows(t, x[0], 3)); }
static kgm_node *f_repeat_cols(kgm_tape *t, kgm_node **x) { return kgm_square(t, kgm_repeat_cols(t, x[0], 3)); }
static kgm_node *f_fill(kgm_tape *t, kgm_node **x) { return kgm_mul(t, kgm_fill(t, x[0], 3, 2), x[1]); }
static kgm_node *f_concat(kgm_tape *t, kgm_node **x) { return kgm_square(t, kgm_concat_cols(t, x[0], x[1])); }
static kgm_node *f_slice(kgm_tape *t, kgm_node **x) { return kgm_square(t, kgm_slice_cols(t, x[0], 1, 2)); }
/* Two overlapping views of one vector: parts of one gradient that add where they overlap. */
static kgm_node *f_view(kgm_tape *t, kgm_node **x)
{
    kgm_node *a = kgm_view(t, x[0], 0, 2, 3), *b = kgm_view(t, x[0], 4, 2, 3);
    return kgm_mul(t, a, b);
}
static kgm_node *f_mse(kgm_tape *t, kgm_node **x) { return kgm_mse(t, x[0], x[1]); }
static kgm_node *f_softmax(kgm_tape *t, kgm_node **x) { return kgm_softmax(t, x[0]); }
static const int labels[4] = { 2, 0, 3, 1 };
static kgm_node *f_xent(kgm_tape *t, kgm_node **x) { return kgm_softmax_xent(t, x[0], labels); }

static const gcase CASES[] = {
    { "matmul",      2, { { 3, 4 }, { 4, 2 } }, -1, 1, 0, f_matmul, 0 },
    { "matmul a^T b", 2, { { 4, 3 }, { 4, 2 } }, -1, 1, 0, f_matmul_tn, 0 },
    { "matmul a b^T", 2, { { 3, 4 }, { 2, 4 } }, -1, 1, 0, f_matmul_nt, 0 },
    { "matmul a^T b^T", 2, { { 4, 3 }, { 2, 4 } }, -1, 1, 0, f_matmul_tt, 0 },
    { "add",         2, { { 3, 2 }, { 3, 2 } }, -1, 1, 0, f_add, 0 },
    { "sub",         2, { { 3, 2 }, { 3, 2 } }, -1, 1, 0, f_sub, 0 },
    { "mul",         2, { { 3, 2 }, { 3, 2 } }, -1, 1, 0, f_mul, 0 },
    { "div",         2, { { 3, 2 }, { 3, 2 } }, 0.5f, 2, 0, f_div, 0 },
    { "scale",       1, { { 3, 2 } }, -1, 1, 0, f_scale, 0 },
    { "add_scalar",  1, { { 3, 2 } }, -1, 1, 0, f_add_scalar, 0 },
    { "axpy",        2, { { 3, 2 }, { 3, 2 } }, -1, 1, 0, f_axpy, 0 },
    { "scale_by",    2, { { 3, 2 }, { 1, 1 } }, -1, 1, 0, f_scale_by, 0 },
    { "bias_add",    2, { { 3, 2 }, { 1, 2 } }, -1, 1, 0, f_bias_add, 0 },
    { "relu",        2, { { 3, 4 }, { 3, 4 } }, -1, 1, 0.1f, f_relu, 0 },
    { "tanh",        1, { { 3, 2 } }, -2, 2, 0, f_tanh, 0 },
    { "sigmoid",     1, { { 3, 2 } }, -3, 3, 0, f_sigmoid, 0 },
    { "exp",         1, { { 3, 2 } }, -1, 1, 0, f_exp, 0 },
    { "log",         1, { { 3, 2 } }, 0.5f, 2, 0, f_log, 0 },
    { "square",      1, { { 3, 2 } }, -1, 1, 0, f_square, 0 },
    { "sum",         1, { { 3, 2 } }, -1, 1, 0, f_sum, 0 },
    { "mean",        1, { { 3, 2 } }, -1, 1, 0, f_mean, 0 },
    { "colsum",      1, { { 3, 2 } }, -1, 1, 0, f_colsum, 0 },
    { "rowsum",      1, { { 3, 2 } }, -1, 1, 0, f_rowsum, 0 },
    { "repeat_rows", 1, { { 1, 3 } }, -1, 1, 0, f_repeat_rows, 0 },
    { "repeat_cols", 1, { { 3, 1 } }, -1, 1, 0, f_repeat_cols, 0 },
    { "fill",        2, { { 1, 1 }, { 3, 2 } }, -1, 1, 0, f_fill, 0 },
    { "concat_cols", 2, { { 2, 2 }, { 2, 3 } }, -1, 1, 0, f_concat, 0 },
    { "slice_cols",  1, { { 2, 4 } }, -1, 1, 0, f_slice, 0 },
    { "view",        1, { { 1, 10 } }, -1, 1, 0, f_view, 0 },
    { "mse",         2, { { 4, 2 }, { 4, 2 } }, -1, 1, 0, f_mse, 0 },
    { "softmax",     1, { { 2, 4 } }, -2, 2, 0, f_softmax, 0 },
    { "softmax_xent", 1, { { 4, 5 } }, -2, 2, 0, f_xent, 0 },
};

/* ---- a two-hidden-layer ReLU MLP, 2-8-8-1, parameters in one flat vector ---- */
enum { D = 2, HID = 8, B = 10, P = HID * D + HID + HID * HID + HID + HID + 1 };
static float xs[B * D], ys[B], xq[B * D], yq[B];

static kgm_node *mlp_loss(kgm_tape *t, kgm_node *theta, const float *x, const float *y)
{
    int off = 0;
    kgm_node *w1 = kgm_view(t, theta, off, HID, D);     off += HID * D;
    kgm_node *b1 = kgm_view(t, theta, off, 1, HID);     off += HID;
    kgm_node *w2 = kgm_view(t, theta, off, HID, HID);   off += HID * HID;
    kgm_node *b2 = kgm_view(t, theta, off, 1, HID);     off += HID;
    kgm_node *w3 = kgm_view(t, theta, off, 1, HID);     off += HID;
    kgm_node *b3 = kgm_view(t, theta, off, 1, 1);
    kgm_node *in = kgm_tape_leaf(t, x, B, D, 0);
    kgm_node *h1 = kgm_relu(t, kgm_bias_add(t, kgm_matmul_t(t, in, w1, 0, 1), b1));
    kgm_node *h2 = kgm_relu(t, kgm_bias_add(t, kgm_matmul_t(t, h1, w2, 0, 1), b2));
    kgm_node *out = kgm_bias_add(t, kgm_matmul_t(t, h2, w3, 0, 1), b3);
    return kgm_mse(t, out, kgm_tape_leaf(t, y, B, 1, 0));
}

/* Query loss after `steps` SGD steps on the support loss (inner gradients recorded). */
static kgm_node *maml_loss(kgm_tape *t, kgm_node *theta, int steps)
{
    kgm_node *fast = theta;
    for (int s = 0; s < steps; s++) {
        kgm_node *g;
        if (kgm_tape_grad(t, mlp_loss(t, fast, xs, ys), 1, &fast, &g, KGM_CREATE_GRAPH) < 0)
            return NULL;
        fast = kgm_axpy(t, -0.02f, g, fast);
    }
    return mlp_loss(t, fast, xq, yq);
}

static kgm_node *f_mlp(kgm_tape *t, kgm_node **x) { return maml_loss(t, x[0], 0); }
static kgm_node *f_maml1(kgm_tape *t, kgm_node **x) { return maml_loss(t, x[0], 1); }
static kgm_node *f_maml3(kgm_tape *t, kgm_node **x) { return maml_loss(t, x[0], 3); }

static void mlp_data(kgm_rng *r)
{
    for (int i = 0; i < B * D; i++) {
        xs[i] = kgm_rng_uniformf(r, -2, 2);
        xq[i] = kgm_rng_uniformf(r, -2, 2);
    }
    for (int i = 0; i < B; i++) {
        ys[i] = sinf(xs[i * D]) + 0.5f * xs[i * D + 1];
        yq[i] = sinf(xq[i * D]) + 0.5f * xq[i * D + 1];
    }
}

static void mlp_case(const gcase *c, int order, uint64_t seed)
{
    kgm_rng r;
    kgm_rng_seed(&r, seed, 1);
    mlp_data(&r);
    fill_inputs(c, &r);
    int skipped = check(c, order);
    assert_true(skipped <= P / 20);   /* only the odd coordinate may straddle a kink */
}

static const gcase MLP = { "mlp", 1, { { 1, P } }, -0.4f, 0.4f, 0, f_mlp, 1e-3 };
static const gcase MAML1 = { "maml 1 step", 1, { { 1, P } }, -0.4f, 0.4f, 0, f_maml1, 1e-3 };
static const gcase MAML3 = { "maml 3 steps", 1, { { 1, P } }, -0.4f, 0.4f, 0, f_maml3, 1e-3 };

static void mlp_gradient_and_gradient_norm(void **state)
{
    (void)state;
    mlp_case(&MLP, 1, 7);
    mlp_case(&MLP, 2, 7);
}

static void maml_through_one_and_three_steps(void **state)
{
    (void)state;
    mlp_case(&MAML1, 1, 8);
    mlp_case(&MAML3, 1, 9);
}

static void every_op_first_and_second_order(void **state)
{
    (void)state;
    kgm_rng r;
    kgm_rng_seed(&r, 42, 0);
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++) {
        fill_inputs(&CASES[k], &r);
        check_modes_agree(&CASES[k]);
        assert_int_equal(check(&CASES[k], 1), 0);
        assert_int_equal(check(&CASES[k], 2), 0);
    }
}

static int setup(void **state)
{
    (void)state;
    return kgm_tape_new(&tape, 1 << 20);
}

static int teardown(void **state)
{
    (void)state;
    kgm_tape_free(tape);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_op_first_and_second_order),
        cmocka_unit_test(mlp_gradient_and_gradient_norm),
        cmocka_unit_test(maml_through_one_and_three_steps),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
