/* src/tensor.h - dense float tensors (row-major, at most 2-D: rows = batch, cols = features),
 * matrix products through OpenBLAS, and flat parameter layouts with named views.
 *
 * A kgm_tensor is a plain {data, rows, cols} record. kgm_tensor_new() gives it its own memory
 * (free with kgm_tensor_free()); any other kgm_tensor is a view that borrows memory it does not
 * own. A vector is 1 x n. Nothing here allocates per call except kgm_tensor_new().
 *
 * A kgm_layout names slices of one flat float buffer ("w1" is 40 x 1 at offset 0, "b1" is 1 x 40
 * at offset 40, ...). Parameters, their gradients, Adam moments and fast weights all use the
 * same layout, so an optimizer step is one loop over the flat buffer and a save is one write. */
#ifndef KGM_TENSOR_H
#define KGM_TENSOR_H

#include <stddef.h>

typedef struct kgm_tensor {
    float *data;      /* rows * cols floats, row-major */
    int    rows, cols;
} kgm_tensor;

/* Zero-filled rows x cols tensor; returns new memory in t->data: kgm_tensor_free(). */
int  kgm_tensor_new(kgm_tensor *t, int rows, int cols);
void kgm_tensor_free(kgm_tensor *t);               /* frees t->data, zeroes t; NULL data is a no-op */
static inline size_t kgm_tensor_size(const kgm_tensor *t) { return (size_t)t->rows * (size_t)t->cols; }

/* C = alpha * op(A) op(B) + beta * C, op(X) = X or X^T (trans_x != 0); op(A) is m x k, op(B) is
 * k x n, C is m x n; all row-major and packed (leading dimension = number of columns as stored).
 * Large products go to cblas_sgemm; tiny ones use a plain loop (the BLAS call overhead dominates). */
void kgm_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
              const float *a, const float *b, float beta, float *c);

/* ---- flat parameter layouts ---- */
#define KGM_LAYOUT_MAX   64   /* views per layout */
#define KGM_NAME_MAX     32   /* bytes per view name, NUL included */

typedef struct kgm_view_def {
    char name[KGM_NAME_MAX];
    int  offset;              /* first float of the view in the flat buffer */
    int  rows, cols;
} kgm_view_def;

typedef struct kgm_layout {
    int          count;       /* views defined */
    int          size;        /* floats in the flat buffer: sum of the views' sizes */
    kgm_view_def view[KGM_LAYOUT_MAX];
} kgm_layout;

void kgm_layout_init(kgm_layout *l);                /* empty layout */
/* Append a rows x cols view named `name` (unique, < KGM_NAME_MAX bytes); returns its offset
 * (>= 0) or a negative KGM_E* code with the layout unchanged. */
int  kgm_layout_add(kgm_layout *l, const char *name, int rows, int cols);
/* The view named `name`, or NULL (no error recorded). */
const kgm_view_def *kgm_layout_find(const kgm_layout *l, const char *name);
/* A borrowed tensor over view `v` of the flat buffer `flat`. */
static inline kgm_tensor kgm_layout_tensor(const kgm_view_def *v, float *flat)
{
    kgm_tensor t = { flat + v->offset, v->rows, v->cols };
    return t;
}

#endif
