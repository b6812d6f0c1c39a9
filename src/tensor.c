/* src/tensor.c - dense float tensors, the matrix product, flat parameter layouts.
 * Not an n-d array library: 2-D row-major only, no strides, no broadcasting. */
#include "tensor.h"

/* The build's -O2 uses GCC's "very cheap" vectorizer cost model, which leaves loops of unknown
 * length scalar; these kernels are the whole cost of a small network, so they get the usual one. */
#pragma GCC optimize("vect-cost-model=dynamic")

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

int kgm_tensor_new(kgm_tensor *t, int rows, int cols)
{
    t->data = NULL;
    t->rows = t->cols = 0;
    if (rows <= 0 || cols <= 0)
        return kgm_fail(KGM_EINVAL, "tensor shape %dx%d: both sides must be positive", rows, cols);
    float *d = calloc((size_t)rows * (size_t)cols, sizeof *d);
    if (!d) return kgm_fail(KGM_ENOMEM, "cannot allocate a %dx%d tensor", rows, cols);
    t->data = d;
    t->rows = rows;
    t->cols = cols;
    return KGM_OK;
}

void kgm_tensor_free(kgm_tensor *t)
{
    if (!t) return;
    free(t->data);
    t->data = NULL;
    t->rows = t->cols = 0;
}

/* ---- matrix product ---- */
/* Below this many multiply-adds the cblas_sgemm call (argument checks, kernel dispatch, packing)
 * costs more than the arithmetic: the loops below are ~4x faster than OpenBLAS 0.3.21 on the
 * 1-40-40-1 MLP's 10x40x40 products (bench_mlp_ops). */
#define GEMM_BLAS_MIN_WORK (64 * 64 * 64)

/* 8 floats as one value: GCC lowers arithmetic on it to AVX registers (or pairs of SSE ones). */
typedef float v8 __attribute__((vector_size(32)));

/* s += a * p[0..8) and p[0..8) += s, unaligned. Macros, not functions: passing a v8 by value
 * would tie the ABI to the target (-Wpsabi). */
#define MUL_ADD8(s, a, p) do { v8 t_; memcpy(&t_, (p), sizeof t_); (s) += (a) * t_; } while (0)
#define STORE_ADD8(p, s)  do { v8 t_; memcpy(&t_, (p), sizeof t_); t_ += (s); memcpy((p), &t_, sizeof t_); } while (0)

/* c[0..n) += alpha * sum_p a[p * a_step] * B[p, 0..n) for B (k x n, packed): one row of C.
 * Blocks of 32 and 8 columns stay in registers across all p; leftover columns are dot products.
 * Always inlined so that it is compiled for the caller's target clone. */
__attribute__((always_inline))
static inline void row_kernel(float *restrict c, const float *restrict a, size_t a_step,
                              const float *restrict b, int k, int n, float alpha)
{
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        v8 s0 = { 0 }, s1 = { 0 }, s2 = { 0 }, s3 = { 0 };
        for (int p = 0; p < k; p++) {
            float ap = a[p * a_step];
            const float *bp = b + (size_t)p * n + j;
            MUL_ADD8(s0, ap, bp);
            MUL_ADD8(s1, ap, bp + 8);
            MUL_ADD8(s2, ap, bp + 16);
            MUL_ADD8(s3, ap, bp + 24);
        }
        STORE_ADD8(c + j, alpha * s0);
        STORE_ADD8(c + j + 8, alpha * s1);
        STORE_ADD8(c + j + 16, alpha * s2);
        STORE_ADD8(c + j + 24, alpha * s3);
    }
    for (; j + 8 <= n; j += 8) {
        v8 s0 = { 0 };
        for (int p = 0; p < k; p++) MUL_ADD8(s0, a[p * a_step], b + (size_t)p * n + j);
        STORE_ADD8(c + j, alpha * s0);
    }
    for (; j < n; j++) {
        float s = 0.0f;
        for (int p = 0; p < k; p++) s += a[p * a_step] * b[(size_t)p * n + j];
        c[j] += alpha * s;
    }
}

/* Sum of the 8 lanes, in a fixed order (results do not depend on the clone). */
#define HSUM8(v) ((((v)[0] + (v)[4]) + ((v)[1] + (v)[5])) + (((v)[2] + (v)[6]) + ((v)[3] + (v)[7])))

/* c[0..n) += alpha * A_row . B[j, :] for B (n x k) row-major: C = A B^T without packing.
 * Four rows of B share each load of the A row; lanes are summed at the end. */
__attribute__((always_inline))
static inline void row_kernel_bt(float *restrict c, const float *restrict a,
                                 const float *restrict b, int k, int n, float alpha)
{
    int j = 0, k8 = k & ~7;
    for (; j + 4 <= n; j += 4) {
        const float *b0 = b + (size_t)j * k, *b1 = b0 + k, *b2 = b1 + k, *b3 = b2 + k;
        v8 s0 = { 0 }, s1 = { 0 }, s2 = { 0 }, s3 = { 0 };
        for (int p = 0; p < k8; p += 8) {
            v8 av;
            memcpy(&av, a + p, sizeof av);
            MUL_ADD8(s0, av, b0 + p);
            MUL_ADD8(s1, av, b1 + p);
            MUL_ADD8(s2, av, b2 + p);
            MUL_ADD8(s3, av, b3 + p);
        }
        float t0 = HSUM8(s0), t1 = HSUM8(s1), t2 = HSUM8(s2), t3 = HSUM8(s3);
        for (int p = k8; p < k; p++) {
            t0 += a[p] * b0[p];
            t1 += a[p] * b1[p];
            t2 += a[p] * b2[p];
            t3 += a[p] * b3[p];
        }
        c[j] += alpha * t0;
        c[j + 1] += alpha * t1;
        c[j + 2] += alpha * t2;
        c[j + 3] += alpha * t3;
    }
    for (; j < n; j++) {
        float t = 0.0f;
        for (int p = 0; p < k; p++) t += a[p] * b[(size_t)j * k + p];
        c[j] += alpha * t;
    }
}

#define GEMM_PACK_MAX 4096   /* floats of B^T packed on the stack */

/* C (m x n) += alpha * op(A) op(B) with plain loops: A B^T as dot products of rows; otherwise
 * op(B) = B^T is first packed into k x n rows so that the other cases run one row kernel. The avx2 clone doubles the vector width
 * where the CPU has it; the default clone runs anywhere. */
__attribute__((target_clones("avx2", "default")))
static void gemm_loops(int ta, int tb, int m, int n, int k, float alpha,
                       const float *restrict a, const float *restrict b, float *restrict c)
{
    float packed[GEMM_PACK_MAX];
    if (tb && !ta && k >= 8) {
        for (int i = 0; i < m; i++)
            row_kernel_bt(c + (size_t)i * n, a + (size_t)i * k, b, k, n, alpha);
        return;
    }
    if (tb) {
        if ((long)k * n > GEMM_PACK_MAX) {   /* too big to pack: C[i,j] += op(A)[i,:] . B[j,:] */
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    float s = 0.0f;
                    for (int p = 0; p < k; p++)
                        s += (ta ? a[(size_t)p * m + i] : a[(size_t)i * k + p]) * b[(size_t)j * k + p];
                    c[(size_t)i * n + j] += alpha * s;
                }
            return;
        }
        for (int j = 0; j < n; j++)
            for (int p = 0; p < k; p++) packed[(size_t)p * n + j] = b[(size_t)j * k + p];
        b = packed;
    }
    for (int i = 0; i < m; i++)
        row_kernel(c + (size_t)i * n, ta ? a + i : a + (size_t)i * k, ta ? (size_t)m : 1, b, k, n,
                   alpha);
}

void kgm_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
              const float *a, const float *b, float beta, float *c)
{
    if ((long)m * n * k >= GEMM_BLAS_MIN_WORK) {
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha,
                    a, trans_a ? m : k, b, trans_b ? k : n, beta, c, n);
        return;
    }
    size_t mn = (size_t)m * n;
    if (beta == 0.0f) memset(c, 0, mn * sizeof *c);
    else if (beta != 1.0f) for (size_t i = 0; i < mn; i++) c[i] *= beta;
    gemm_loops(trans_a, trans_b, m, n, k, alpha, a, b, c);
}

/* ---- layouts ---- */
void kgm_layout_init(kgm_layout *l)
{
    memset(l, 0, sizeof *l);
}

int kgm_layout_add(kgm_layout *l, const char *name, int rows, int cols)
{
    if (!name || !*name || strlen(name) >= KGM_NAME_MAX)
        return kgm_fail(KGM_EINVAL, "layout view name must have 1 to %d bytes", KGM_NAME_MAX - 1);
    if (rows <= 0 || cols <= 0)
        return kgm_fail(KGM_EINVAL, "layout view %s: shape %dx%d must be positive", name, rows, cols);
    if (l->count == KGM_LAYOUT_MAX)
        return kgm_fail(KGM_EINVAL, "layout view %s: a layout holds at most %d views", name,
                        KGM_LAYOUT_MAX);
    if (kgm_layout_find(l, name))
        return kgm_fail(KGM_EINVAL, "layout view %s is already defined", name);
    if ((long)rows * cols > (long)0x7fffffff - l->size)
        return kgm_fail(KGM_EINVAL, "layout view %s: the layout would exceed 2^31 floats", name);
    kgm_view_def *v = &l->view[l->count++];
    strcpy(v->name, name);
    v->offset = l->size;
    v->rows = rows;
    v->cols = cols;
    l->size += rows * cols;
    return v->offset;
}

const kgm_view_def *kgm_layout_find(const kgm_layout *l, const char *name)
{
    for (int i = 0; i < l->count; i++)
        if (strcmp(l->view[i].name, name) == 0) return &l->view[i];
    return NULL;
}
