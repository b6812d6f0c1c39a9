/* tests/test_tensor.c - kgm_gemm against a plain triple loop in double, for every transpose
 * combination and the shapes that take each code path (vectors, blocks of 32 and 8 columns,
 * leftovers, packed and unpacked B^T, the BLAS route); and flat layouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "error.h"
#include "rng.h"
#include "tensor.h"

static void reference(int ta, int tb, int m, int n, int k, float alpha, const float *a,
                      const float *b, float beta, const float *c0, double *c)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (double)(ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
            c[i * n + j] = alpha * s + beta * c0[i * n + j];
        }
}

static void gemm_matches_reference(void **state)
{
    (void)state;
    const int dims[] = { 1, 2, 7, 8, 9, 10, 31, 32, 33, 40, 41, 70 };
    const int nd = sizeof dims / sizeof dims[0];
    kgm_rng r;
    kgm_rng_seed(&r, 3, 0);
    int cases = 0;
    for (int trial = 0; trial < 400; trial++) {
        int m = dims[kgm_rng_below(&r, nd)], n = dims[kgm_rng_below(&r, nd)];
        int k = dims[kgm_rng_below(&r, nd)];
        if (trial == 0) m = n = k = 70;              /* 343000 multiply-adds: the BLAS route */
        int ta = trial & 1, tb = (trial >> 1) & 1;
        float alpha = trial % 3 ? 1.0f : -0.5f, beta = trial % 5 == 0 ? 0.5f : 0.0f;
        float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n);
        float *c = malloc(sizeof(float) * m * n), *c0 = malloc(sizeof(float) * m * n);
        double *want = malloc(sizeof(double) * m * n);
        kgm_rng_fill_uniform(&r, a, (size_t)m * k, -1, 1);
        kgm_rng_fill_uniform(&r, b, (size_t)k * n, -1, 1);
        kgm_rng_fill_uniform(&r, c0, (size_t)m * n, -1, 1);
        memcpy(c, c0, sizeof(float) * m * n);
        kgm_gemm(ta, tb, m, n, k, alpha, a, b, beta, c);
        reference(ta, tb, m, n, k, alpha, a, b, beta, c0, want);
        for (int i = 0; i < m * n; i++)
            if (fabs(c[i] - want[i]) > 1e-5 * (k + 1))
                fail_msg("gemm ta=%d tb=%d %dx%dx%d: C[%d] = %g, want %g", ta, tb, m, n, k, i,
                         c[i], want[i]);
        free(a); free(b); free(c); free(c0); free(want);
        cases++;
    }
    assert_int_equal(cases, 400);
}

static void layouts_name_slices_of_one_buffer(void **state)
{
    (void)state;
    kgm_layout l;
    kgm_layout_init(&l);
    assert_int_equal(kgm_layout_add(&l, "w1", 40, 1), 0);
    assert_int_equal(kgm_layout_add(&l, "b1", 1, 40), 40);
    assert_int_equal(kgm_layout_add(&l, "w2", 40, 40), 80);
    assert_int_equal(l.size, 1680);
    assert_int_equal(kgm_layout_add(&l, "b1", 1, 1), KGM_EINVAL);   /* names are unique */
    assert_int_equal(kgm_layout_add(&l, "x", 0, 3), KGM_EINVAL);
    assert_int_equal(kgm_layout_add(&l, "a-name-that-is-far-too-long-for-a-view", 1, 1), KGM_EINVAL);
    assert_int_equal(l.count, 3);
    assert_int_equal(l.size, 1680);
    const kgm_view_def *v = kgm_layout_find(&l, "w2");
    assert_non_null(v);
    assert_null(kgm_layout_find(&l, "w3"));
    float flat[1680] = { 0 };
    kgm_tensor w2 = kgm_layout_tensor(v, flat);
    assert_ptr_equal(w2.data, flat + 80);
    assert_int_equal(w2.rows * w2.cols, 1600);
    kgm_tensor t;
    assert_int_equal(kgm_tensor_new(&t, 3, 4), 0);
    assert_int_equal(kgm_tensor_size(&t), 12);
    assert_true(t.data[11] == 0.0f);
    kgm_tensor_free(&t);
    assert_null(t.data);
    assert_int_equal(kgm_tensor_new(&t, 0, 4), KGM_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gemm_matches_reference),
        cmocka_unit_test(layouts_name_slices_of_one_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
