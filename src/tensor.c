/* src/tensor.c - dense float tensors, the matrix product, flat parameter layouts.
 * Not an n-d array library: 2-D row-major only, no strides, no broadcasting. */
#include "tensor.h"

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
 * costs more than the arithmetic; measured with bench_mlp_ops on the 1-40-40-1 MLP. */
#define GEMM_BLAS_MIN_WORK (64 * 64 * 64)

/* C (m x n) += alpha * op(A) op(B) with plain loops, innermost loop over contiguous memory
 * where the layout allows it. */
static void gemm_loops(int ta, int tb, int m, int n, int k, float alpha,
                       const float *a, const float *b, float *c)
{
    if (!tb) {
        /* C[i,:] += alpha * sum_p op(A)[i,p] * B[p,:] */
        for (int i = 0; i < m; i++) {
            float *ci = c + (size_t)i * n;
            for (int p = 0; p < k; p++) {
                float aip = alpha * (ta ? a[(size_t)p * m + i] : a[(size_t)i * k + p]);
                const float *bp = b + (size_t)p * n;
                for (int j = 0; j < n; j++) ci[j] += aip * bp[j];
            }
        }
    } else if (!ta) {
        /* B is n x k: C[i,j] += alpha * dot(A[i,:], B[j,:]) */
        for (int i = 0; i < m; i++) {
            const float *ai = a + (size_t)i * k;
            for (int j = 0; j < n; j++) {
                const float *bj = b + (size_t)j * k;
                float s = 0.0f;
                for (int p = 0; p < k; p++) s += ai[p] * bj[p];
                c[(size_t)i * n + j] += alpha * s;
            }
        }
    } else {
        /* A is k x m, B is n x k: C[i,j] += alpha * sum_p A[p,i] B[j,p] */
        for (int p = 0; p < k; p++) {
            const float *ap = a + (size_t)p * m;
            for (int i = 0; i < m; i++) {
                float api = alpha * ap[i];
                float *ci = c + (size_t)i * n;
                for (int j = 0; j < n; j++) ci[j] += api * b[(size_t)j * k + p];
            }
        }
    }
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
