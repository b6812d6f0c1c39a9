/* src/tape.h - reverse-mode automatic differentiation on a tape, with exact second order.
 *
 * Define-by-run: every op computes its value at once and appends a node to the tape. A backward
 * pass (kgm_tape_grad) walks the tape in reverse. Each op's backward is written with tape ops, so
 * with KGM_CREATE_GRAPH the gradients are themselves nodes on the tape and can be differentiated
 * again: the meta-gradient of second-order MAML through k inner SGD steps is exact. Without the
 * flag the same backward runs with recording off: gradients are computed directly and are
 * constants (no further graph is built).
 *
 * Memory: a tape owns one arena, sized once at kgm_tape_new(). Nodes and their values live in it
 * until kgm_tape_rewind(), which reuses it for the next iteration; nothing is malloc'd per op.
 * Running out of arena (or a shape mismatch) is a reported error, not a crash: the op records it
 * with kgm_fail(), returns NULL, every later op given a NULL input returns NULL too, and
 * kgm_tape_grad()/kgm_tape_status() return the first error. So a whole forward pass can be
 * written without checks and checked once at the end.
 *
 * Not here: broadcasting rules beyond the explicit ops below, tensors above 2-D, threads (one
 * tape per thread; tapes share nothing).
 *
 * Example, second-order MAML with one inner step on a flat parameter vector theta (1 x P):
 *     kgm_tape_rewind(t);
 *     kgm_node *th = kgm_tape_leaf(t, params, 1, P, 1);
 *     kgm_node *l1 = my_loss(t, th, support), *g, *mg;
 *     kgm_tape_grad(t, l1, 1, &th, &g, KGM_CREATE_GRAPH);   // g: differentiable, 1 x P
 *     kgm_node *fast = kgm_axpy(t, -alpha, g, th);          // fast weights
 *     kgm_node *l2 = my_loss(t, fast, query);
 *     if (kgm_tape_grad(t, l2, 1, &th, &mg, 0) < 0) ...;    // kgm_error() says why
 *     memcpy(meta_grad, kgm_val(mg), P * sizeof(float));
 * where my_loss() cuts th into weights with kgm_view(t, th, offset, rows, cols).
 */
#ifndef KGM_TAPE_H
#define KGM_TAPE_H

#include <stddef.h>

typedef struct kgm_tape kgm_tape;   /* opaque */
typedef struct kgm_node kgm_node;   /* a value on the tape; fields below are read-only outside tape.c */

struct kgm_node {
    float      *val;            /* rows * cols floats, row-major; valid until kgm_tape_rewind() */
    int         rows, cols, size;
    int         op;             /* internal op code */
    int         requires_grad;  /* depends on a leaf created with requires_grad (while recording) */
    kgm_node   *in[2];          /* inputs (NULL when unused) */
    float       f;              /* op argument: scale, shift, ... */
    int         i0, i1;         /* op arguments: offsets, counts */
    const void *aux;            /* op argument in the arena: labels, gradient parts */
    /* backward bookkeeping, private to tape.c */
    kgm_node   *prev;           /* previous node on the tape */
    unsigned    id;             /* position on the tape since the rewind, 0-based */
    kgm_node   *grad;           /* full-shape gradient accumulated in the current pass */
    void       *parts;          /* gradient contributions to sub-blocks (from views, column slices) */
    unsigned    pass;           /* backward pass that grad/parts belong to */
};

static inline float *kgm_val(const kgm_node *n) { return n->val; }
static inline int    kgm_rows(const kgm_node *n) { return n->rows; }
static inline int    kgm_cols(const kgm_node *n) { return n->cols; }

/* ---- the tape ---- */
/* A tape with an arena of arena_bytes (64 KiB per 1-40-40-1 MAML step with batch 10 is ample).
 * Returns new: kgm_tape_free(). */
int    kgm_tape_new(kgm_tape **out, size_t arena_bytes);
void   kgm_tape_free(kgm_tape *t);                 /* NULL is a no-op */
/* Forget every node (pointers into the tape become invalid), clear the error, keep the arena. */
void   kgm_tape_rewind(kgm_tape *t);
size_t kgm_tape_used(const kgm_tape *t);           /* arena bytes in use now */
size_t kgm_tape_peak(const kgm_tape *t);           /* most bytes ever in use since kgm_tape_new */
size_t kgm_tape_capacity(const kgm_tape *t);       /* arena size */
size_t kgm_tape_nodes(const kgm_tape *t);          /* nodes on the tape now */
int    kgm_tape_status(const kgm_tape *t);         /* 0, or the first error since the rewind */

/* A leaf: rows x cols values. data is borrowed and must stay unchanged until the rewind; with
 * data NULL the leaf gets zero-filled arena memory that the caller may fill (kgm_val) before
 * using the leaf. requires_grad: gradients can be asked for it (and for nodes that depend on it). */
kgm_node *kgm_tape_leaf(kgm_tape *t, const float *data, int rows, int cols, int requires_grad);

enum { KGM_CREATE_GRAPH = 1 };

/* Gradients of the 1 x 1 node `loss` with respect to wrt[0..n-1]: out[i] gets a node shaped like
 * wrt[i] (zeros when loss does not depend on it). flags = KGM_CREATE_GRAPH records the backward
 * pass so out[] can be differentiated again; flags = 0 computes out[] directly as constants.
 * Returns 0 or the tape's first error (out[] then NULL). May be called many times on one tape. */
int kgm_tape_grad(kgm_tape *t, kgm_node *loss, int n, kgm_node *const wrt[], kgm_node *out[],
                  int flags);

/* ---- ops: each returns a new node, or NULL on error (recorded; see above) ----
 * Shapes: (r, c) = rows x cols. "same" = both inputs have the same shape. */
kgm_node *kgm_matmul(kgm_tape *t, kgm_node *a, kgm_node *b);           /* (m,k)(k,n) -> (m,n) */
/* op(a) op(b) with op = transpose when trans_* != 0: y = a^T b, a b^T, a^T b^T. */
kgm_node *kgm_matmul_t(kgm_tape *t, kgm_node *a, kgm_node *b, int trans_a, int trans_b);
kgm_node *kgm_add(kgm_tape *t, kgm_node *a, kgm_node *b);              /* a + b, same */
kgm_node *kgm_sub(kgm_tape *t, kgm_node *a, kgm_node *b);              /* a - b, same */
kgm_node *kgm_mul(kgm_tape *t, kgm_node *a, kgm_node *b);              /* a * b elementwise, same */
kgm_node *kgm_div(kgm_tape *t, kgm_node *a, kgm_node *b);              /* a / b elementwise, same */
kgm_node *kgm_scale(kgm_tape *t, kgm_node *x, float a);                /* a * x */
kgm_node *kgm_add_scalar(kgm_tape *t, kgm_node *x, float b);           /* x + b */
kgm_node *kgm_axpy(kgm_tape *t, float a, kgm_node *x, kgm_node *y);    /* a * x + y, same (SGD step) */
kgm_node *kgm_scale_by(kgm_tape *t, kgm_node *x, kgm_node *s);         /* s * x, s is (1,1) */
kgm_node *kgm_bias_add(kgm_tape *t, kgm_node *x, kgm_node *b);         /* (r,c) + (1,c) to each row */
kgm_node *kgm_relu(kgm_tape *t, kgm_node *x);
kgm_node *kgm_tanh(kgm_tape *t, kgm_node *x);
kgm_node *kgm_sigmoid(kgm_tape *t, kgm_node *x);
kgm_node *kgm_exp(kgm_tape *t, kgm_node *x);
kgm_node *kgm_log(kgm_tape *t, kgm_node *x);                           /* x > 0 expected */
kgm_node *kgm_square(kgm_tape *t, kgm_node *x);
kgm_node *kgm_sum(kgm_tape *t, kgm_node *x);                           /* -> (1,1), summed in double */
kgm_node *kgm_mean(kgm_tape *t, kgm_node *x);                          /* -> (1,1) */
kgm_node *kgm_colsum(kgm_tape *t, kgm_node *x);                        /* (r,c) -> (1,c): sum over rows */
kgm_node *kgm_rowsum(kgm_tape *t, kgm_node *x);                        /* (r,c) -> (r,1): sum over cols */
kgm_node *kgm_repeat_rows(kgm_tape *t, kgm_node *x, int rows);         /* (1,c) -> (rows,c) */
kgm_node *kgm_repeat_cols(kgm_tape *t, kgm_node *x, int cols);         /* (r,1) -> (r,cols) */
kgm_node *kgm_fill(kgm_tape *t, kgm_node *s, int rows, int cols);      /* (1,1) -> (rows,cols) */
kgm_node *kgm_concat_cols(kgm_tape *t, kgm_node *a, kgm_node *b);      /* (r,ca),(r,cb) -> (r,ca+cb) */
kgm_node *kgm_slice_cols(kgm_tape *t, kgm_node *x, int col0, int ncols); /* columns col0.. (copy) */
/* A rows x cols view of x's values from flat offset `offset` (no copy): cuts a flat parameter
 * vector (1,P) into weight matrices. offset + rows*cols <= x's size. */
kgm_node *kgm_view(kgm_tape *t, kgm_node *x, int offset, int rows, int cols);
kgm_node *kgm_mse(kgm_tape *t, kgm_node *pred, kgm_node *target);      /* mean((pred-target)^2), same -> (1,1) */
kgm_node *kgm_softmax(kgm_tape *t, kgm_node *x);                       /* along each row */
/* mean over rows of -log softmax(logits)[i, labels[i]]; labels (copied) in [0, cols). -> (1,1).
 * Differentiable in the logits only. */
kgm_node *kgm_softmax_xent(kgm_tape *t, kgm_node *logits, const int *labels);

#endif
