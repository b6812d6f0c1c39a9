/* src/tape.c - the tape: arena, nodes, the op table, backward passes.
 *
 * Each op is a row of OPS[] (name, forward, backward), indexed by its enum. The forward computes
 * the node's value from its inputs when the node is created. The backward, right under it, adds
 * the op's contribution to its inputs' gradients and is written with tape ops (kgm_mul, ...):
 * run while recording (KGM_CREATE_GRAPH) it builds the graph of the gradient; run with recording
 * off it simply computes, and the nodes it makes are constants.
 *
 * Gradients reach a node either whole (same shape: summed with kgm_add) or as parts of it (from
 * kgm_view and kgm_slice_cols: kept in a list and assembled by one GRADSUM node when the
 * sweep reaches the node, so cutting a flat vector into k weights costs one pass, not k). */
#include "tape.h"

/* The build's -O2 uses GCC's "very cheap" vectorizer cost model, which leaves loops of unknown
 * length scalar; the op kernels here are the per-op cost of small networks, so use the usual one. */
#pragma GCC optimize("vect-cost-model=dynamic")

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tensor.h"

enum {
    OP_LEAF, OP_MATMUL, OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_SCALE, OP_ADD_SCALAR, OP_AXPY,
    OP_SCALE_BY, OP_BIAS_ADD, OP_RELU, OP_RELU_MASK, OP_TANH, OP_SIGMOID, OP_EXP, OP_LOG,
    OP_SQUARE, OP_SUM, OP_MEAN, OP_COLSUM, OP_ROWSUM, OP_REPEAT_ROWS, OP_REPEAT_COLS, OP_FILL,
    OP_CONCAT_COLS, OP_SLICE_COLS, OP_VIEW, OP_MSE, OP_SOFTMAX, OP_XENT, OP_GRADSUM,
    OP_COUNT
};

struct kgm_tape {
    char     *base;          /* the arena */
    size_t    cap, used, peak;
    kgm_node *last;          /* newest node */
    unsigned  count;         /* nodes since the rewind */
    int       err;           /* first error since the rewind */
    int       recording;     /* new nodes may require grad */
    unsigned  pass;          /* current backward pass */
};

/* A gradient contribution to a block of a node: a view (flat offset) or a column slice. */
enum { PART_FLAT, PART_COLS };
typedef struct part {
    kgm_node    *g;
    int          kind, off;
    struct part *next;
} part;

#define ARENA_ALIGN 32

/* ---- arena and errors ---- */
static int tape_fail(kgm_tape *t, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int tape_fail(kgm_tape *t, int code, const char *fmt, ...)
{
    if (t->err) return t->err;   /* keep the first: later ones are consequences */
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    t->err = kgm_fail(code, "%s", msg);
    return t->err;
}

static void *arena_alloc(kgm_tape *t, size_t bytes)
{
    size_t need = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need > t->cap - t->used) {
        tape_fail(t, KGM_ENOMEM, "tape arena full: %zu of %zu bytes used, %zu more needed "
                  "(make the tape bigger)", t->used, t->cap, need);
        return NULL;
    }
    void *p = t->base + t->used;
    t->used += need;
    if (t->used > t->peak) t->peak = t->used;
    return p;
}

int kgm_tape_new(kgm_tape **out, size_t arena_bytes)
{
    *out = NULL;
    if (arena_bytes < 1024) return kgm_fail(KGM_EINVAL, "tape arena of %zu bytes is too small", arena_bytes);
    arena_bytes = (arena_bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    kgm_tape *t = calloc(1, sizeof *t);
    if (!t) return kgm_fail(KGM_ENOMEM, "cannot allocate a tape");
    t->base = aligned_alloc(ARENA_ALIGN, arena_bytes);
    if (!t->base) {
        free(t);
        return kgm_fail(KGM_ENOMEM, "cannot allocate a tape arena of %zu bytes", arena_bytes);
    }
    t->cap = arena_bytes;
    t->recording = 1;
    *out = t;
    return KGM_OK;
}

void kgm_tape_free(kgm_tape *t)
{
    if (!t) return;
    free(t->base);
    free(t);
}

void kgm_tape_rewind(kgm_tape *t)
{
    t->used = 0;
    t->last = NULL;
    t->count = 0;
    t->err = 0;
    t->recording = 1;
}

size_t kgm_tape_used(const kgm_tape *t) { return t->used; }
size_t kgm_tape_peak(const kgm_tape *t) { return t->peak; }
size_t kgm_tape_capacity(const kgm_tape *t) { return t->cap; }
size_t kgm_tape_nodes(const kgm_tape *t) { return t->count; }
int    kgm_tape_status(const kgm_tape *t) { return t->err; }

/* ---- nodes ---- */
typedef struct op_def {
    const char *name;
    void (*forward)(kgm_node *n);
    void (*backward)(kgm_tape *t, kgm_node *n);
} op_def;
static const op_def OPS[];

/* A node of `op` with the given inputs and shape. with_val: its own value memory (else the
 * caller points val somewhere). NULL when the tape failed already or an input is NULL. */
static kgm_node *node_new(kgm_tape *t, int op, kgm_node *a, kgm_node *b, int rows, int cols,
                          int with_val)
{
    if (t->err) return NULL;
    size_t size = (size_t)rows * (size_t)cols;
    size_t head = (sizeof(kgm_node) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    char *mem = arena_alloc(t, head + (with_val ? size * sizeof(float) : 0));
    if (!mem) return NULL;
    kgm_node *n = (kgm_node *)mem;
    *n = (kgm_node){ 0 };
    n->val = with_val ? (float *)(mem + head) : NULL;
    n->rows = rows;
    n->cols = cols;
    n->size = (int)size;
    n->op = op;
    n->in[0] = a;
    n->in[1] = b;
    n->requires_grad = t->recording && ((a && a->requires_grad) || (b && b->requires_grad));
    n->prev = t->last;
    n->id = t->count++;
    t->last = n;
    return n;
}

/* Missing inputs: an earlier op failed (already recorded) or the caller passed NULL. */
static int inputs_missing(kgm_tape *t, const char *op, kgm_node *a, kgm_node *b, int need_b)
{
    if (t->err) return 1;
    if (!a || (need_b && !b)) {
        tape_fail(t, KGM_EINVAL, "%s: input is NULL", op);
        return 1;
    }
    return 0;
}

static int shape_fail(kgm_tape *t, const char *op, const kgm_node *a, const kgm_node *b)
{
    if (b)
        return tape_fail(t, KGM_EINVAL, "%s: shapes %dx%d and %dx%d do not fit", op, a->rows,
                         a->cols, b->rows, b->cols);
    return tape_fail(t, KGM_EINVAL, "%s: shape %dx%d does not fit", op, a->rows, a->cols);
}

/* Create, check and compute a node whose value has its own memory. */
static kgm_node *op_apply(kgm_tape *t, int op, kgm_node *a, kgm_node *b, int rows, int cols)
{
    kgm_node *n = node_new(t, op, a, b, rows, cols, 1);
    if (n) OPS[op].forward(n);
    return n;
}

static kgm_node *unary(kgm_tape *t, int op, kgm_node *x)
{
    if (inputs_missing(t, OPS[op].name, x, NULL, 0)) return NULL;
    return op_apply(t, op, x, NULL, x->rows, x->cols);
}

static kgm_node *binary_same(kgm_tape *t, int op, kgm_node *a, kgm_node *b)
{
    if (inputs_missing(t, OPS[op].name, a, b, 1)) return NULL;
    if (a->rows != b->rows || a->cols != b->cols) {
        shape_fail(t, OPS[op].name, a, b);
        return NULL;
    }
    return op_apply(t, op, a, b, a->rows, a->cols);
}

kgm_node *kgm_tape_leaf(kgm_tape *t, const float *data, int rows, int cols, int requires_grad)
{
    if (t->err) return NULL;
    if (rows <= 0 || cols <= 0) {
        tape_fail(t, KGM_EINVAL, "leaf: shape %dx%d must be positive", rows, cols);
        return NULL;
    }
    kgm_node *n = node_new(t, OP_LEAF, NULL, NULL, rows, cols, data == NULL);
    if (!n) return NULL;
    if (data) n->val = (float *)data;   /* borrowed; ops never write their inputs */
    else memset(n->val, 0, (size_t)n->size * sizeof(float));
    n->requires_grad = requires_grad != 0;
    return n;
}

/* A leaf holding v everywhere (no gradient). */
static kgm_node *constant(kgm_tape *t, int rows, int cols, float v)
{
    kgm_node *n = kgm_tape_leaf(t, NULL, rows, cols, 0);
    if (n && v != 0.0f) for (int i = 0; i < n->size; i++) n->val[i] = v;
    return n;
}

/* ---- gradient accumulation ---- */
static void grad_touch(kgm_tape *t, kgm_node *x)
{
    if (x->pass != t->pass) {
        x->pass = t->pass;
        x->grad = NULL;
        x->parts = NULL;
    }
}

/* x's gradient += g (same shape as x). */
static void grad_add(kgm_tape *t, kgm_node *x, kgm_node *g)
{
    if (!x->requires_grad || !g) return;
    grad_touch(t, x);
    x->grad = x->grad ? kgm_add(t, x->grad, g) : g;
}

/* x's gradient, block at `off` (flat offset or first column) += g. */
static void grad_add_part(kgm_tape *t, kgm_node *x, kgm_node *g, int kind, int off)
{
    if (!x->requires_grad || !g) return;
    part *p = arena_alloc(t, sizeof *p);
    if (!p) return;
    grad_touch(t, x);
    *p = (part){ g, kind, off, x->parts };
    x->parts = p;
}

/* Fold x's parts into one GRADSUM node (its full gradient) before x's backward runs. */
static void grad_assemble(kgm_tape *t, kgm_node *x)
{
    if (!x->parts) return;
    kgm_node *n = node_new(t, OP_GRADSUM, x->grad, NULL, x->rows, x->cols, 1);
    if (!n) return;
    n->aux = x->parts;
    for (const part *p = x->parts; p; p = p->next)
        if (p->g->requires_grad) n->requires_grad = t->recording;
    OPS[OP_GRADSUM].forward(n);
    x->grad = n;
    x->parts = NULL;
}

int kgm_tape_grad(kgm_tape *t, kgm_node *loss, int n, kgm_node *const wrt[], kgm_node *out[],
                  int flags)
{
    for (int i = 0; i < n; i++) out[i] = NULL;
    if (t->err) return t->err;
    if (!loss) return tape_fail(t, KGM_EINVAL, "gradient of a NULL loss");
    if (loss->size != 1)
        return tape_fail(t, KGM_EINVAL, "gradient of a %dx%d node: the loss must be 1x1",
                         loss->rows, loss->cols);
    unsigned oldest = loss->id;   /* the sweep can stop below the oldest wrt */
    for (int i = 0; i < n; i++) {
        if (!wrt[i]) return tape_fail(t, KGM_EINVAL, "gradient with respect to NULL");
        if (wrt[i]->id < oldest) oldest = wrt[i]->id;
    }
    int saved = t->recording;
    t->recording = (flags & KGM_CREATE_GRAPH) != 0;
    t->pass++;
    if (loss->requires_grad) {
        grad_touch(t, loss);
        loss->grad = constant(t, 1, 1, 1.0f);
    }
    for (kgm_node *x = loss; x && x->id >= oldest && !t->err; x = x->prev) {
        if (x->pass != t->pass || !x->requires_grad) continue;   /* no gradient reached x */
        grad_assemble(t, x);
        if (x->op == OP_LEAF || !x->grad) continue;
        if (!OPS[x->op].backward) {
            tape_fail(t, KGM_ENOTSUP, "op %s has no backward", OPS[x->op].name);
            break;
        }
        OPS[x->op].backward(t, x);
    }
    for (int i = 0; i < n && !t->err; i++) {
        kgm_node *w = wrt[i];
        if (w->pass == t->pass && w->requires_grad) grad_assemble(t, w);
        out[i] = w->pass == t->pass && w->grad ? w->grad : constant(t, w->rows, w->cols, 0.0f);
    }
    t->recording = saved;
    if (t->err) {
        for (int i = 0; i < n; i++) out[i] = NULL;
        return t->err;
    }
    return KGM_OK;
}

/* ---- the ops: forward, then backward right under it ---- */
#define IN0(n) ((n)->in[0]->val)
#define IN1(n) ((n)->in[1]->val)
#define WANTS(n, i) ((n)->in[i] && (n)->in[i]->requires_grad)

/* ---- matmul ---- y = op(a) op(b); i0, i1 = transpose a, b.
 * y = a b:      da += dy b^T,   db += a^T dy        y = a^T b:   da += b dy^T,   db += a dy
 * y = a b^T:    da += dy b,     db += dy^T a        y = a^T b^T: da += b^T dy^T, db += dy^T a^T */
static void matmul_forward(kgm_node *n)
{
    const kgm_node *a = n->in[0];
    int k = n->i0 ? a->rows : a->cols;
    kgm_gemm(n->i0, n->i1, n->rows, n->cols, k, 1.0f, a->val, IN1(n), 0.0f, n->val);
}
static void matmul_backward(kgm_tape *t, kgm_node *n)
{
    kgm_node *a = n->in[0], *b = n->in[1], *dy = n->grad;
    int ta = n->i0, tb = n->i1;
    if (WANTS(n, 0))
        grad_add(t, a, ta ? kgm_matmul_t(t, b, dy, tb, 1) : kgm_matmul_t(t, dy, b, 0, !tb));
    if (WANTS(n, 1))
        grad_add(t, b, tb ? kgm_matmul_t(t, dy, a, 1, ta) : kgm_matmul_t(t, a, dy, !ta, 0));
}

/* ---- add ---- y = a + b;  da += dy, db += dy */
static void add_forward(kgm_node *n)
{
    const float *a = IN0(n), *b = IN1(n);
    for (int i = 0; i < n->size; i++) n->val[i] = a[i] + b[i];
}
static void add_backward(kgm_tape *t, kgm_node *n)
{
    grad_add(t, n->in[0], n->grad);
    grad_add(t, n->in[1], n->grad);
}

/* ---- sub ---- y = a - b;  da += dy, db -= dy */
static void sub_forward(kgm_node *n)
{
    const float *a = IN0(n), *b = IN1(n);
    for (int i = 0; i < n->size; i++) n->val[i] = a[i] - b[i];
}
static void sub_backward(kgm_tape *t, kgm_node *n)
{
    grad_add(t, n->in[0], n->grad);
    if (WANTS(n, 1)) grad_add(t, n->in[1], kgm_scale(t, n->grad, -1.0f));
}

/* ---- mul ---- y = a * b;  da += dy * b, db += dy * a */
static void mul_forward(kgm_node *n)
{
    const float *a = IN0(n), *b = IN1(n);
    for (int i = 0; i < n->size; i++) n->val[i] = a[i] * b[i];
}
static void mul_backward(kgm_tape *t, kgm_node *n)
{
    if (WANTS(n, 0)) grad_add(t, n->in[0], kgm_mul(t, n->grad, n->in[1]));
    if (WANTS(n, 1)) grad_add(t, n->in[1], kgm_mul(t, n->grad, n->in[0]));
}

/* ---- div ---- y = a / b;  da += dy / b, db -= dy * y / b */
static void div_forward(kgm_node *n)
{
    const float *a = IN0(n), *b = IN1(n);
    for (int i = 0; i < n->size; i++) n->val[i] = a[i] / b[i];
}
static void div_backward(kgm_tape *t, kgm_node *n)
{
    kgm_node *da = kgm_div(t, n->grad, n->in[1]);
    if (WANTS(n, 0)) grad_add(t, n->in[0], da);
    if (WANTS(n, 1)) grad_add(t, n->in[1], kgm_scale(t, kgm_mul(t, da, n), -1.0f));
}

/* ---- scale ---- y = f * x;  dx += f * dy */
static void scale_forward(kgm_node *n)
{
    const float *x = IN0(n);
    for (int i = 0; i < n->size; i++) n->val[i] = n->f * x[i];
}
static void scale_backward(kgm_tape *t, kgm_node *n)
{
    grad_add(t, n->in[0], kgm_scale(t, n->grad, n->f));
}

/* ---- add_scalar ---- y = x + f;  dx += dy */
static void add_scalar_forward(kgm_node *n)
{
    const float *x = IN0(n);
    for (int i = 0; i < n->size; i++) n->val[i] = x[i] + n->f;
}
static void add_scalar_backward(kgm_tape *t, kgm_node *n)
{
    grad_add(t, n->in[0], n->grad);
}

/* ---- axpy ---- y = f * a + b;  da += f * dy, db += dy */
static void axpy_forward(kgm_node *n)
{
    const float *a = IN0(n), *b = IN1(n);
    for (int i = 0; i < n->size; i++) n->val[i] = n->f * a[i] + b[i];
}
static void axpy_backward(kgm_tape *t, kgm_node *n)
{
    if (WANTS(n, 0)) grad_add(t, n->in[0], kgm_scale(t, n->grad, n->f));
    grad_add(t, n->in[1], n->grad);
}

/* ---- scale_by ---- y = s * x, s is 1x1;  dx += s * dy, ds += sum(dy * x) */
static void scale_by_forward(kgm_node *n)
{
    const float *x = IN0(n);
    float s = IN1(n)[0];
    for (int i = 0; i < n->size; i++) n->val[i] = s * x[i];
}
static void scale_by_backward(kgm_tape *t, kgm_node *n)
{
    if (WANTS(n, 0)) grad_add(t, n->in[0], kgm_scale_by(t, n->grad, n->in[1]));
    if (WANTS(n, 1)) grad_add(t, n->in[1], kgm_sum(t, kgm_mul(t, n->grad, n->in[0])));
}

/* ---- bias_add ---- y = x + 1 b (b added to each row);  dx += dy, db += colsum(dy) */
static void bias_add_forward(kgm_node *n)
{
    const float *x = IN0(n), *b = IN1(n);
    for (int r = 0; r < n->rows; r++) {
        const float *xr = x + (size_t)r * n->cols;
        float *yr = n->val + (size_t)r * n->cols;
        for (int c = 0; c < n->cols; c++) yr[c] = xr[c] + b[c];
    }
}
static void bias_add_backward(kgm_tape *t, kgm_node *n)
{
    grad_add(t, n->in[0], n->grad);
    if (WANTS(n, 1)) grad_add(t, n->in[1], kgm_colsum(t, n->grad));
}

/* ---- relu ---- y = max(x, 0);  dx += relu_mask(dy, x) = dy * [x > 0] */
static void relu_forward(kgm_node *n)
{
    const float *restrict x = IN0(n);
    float *restrict y = n->val;
    for (int i = 0; i < n->size; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
static void relu_backward(kgm_tape *t, kgm_node *n);

/* ---- relu_mask ---- y = g * [x > 0] (inputs g, x);  dg += relu_mask(dy, x); nothing to x:
 * the step function's derivative is 0 wherever it exists. */
static void relu_mask_forward(kgm_node *n)
{
    const float *restrict g = IN0(n), *restrict x = IN1(n);
    float *restrict y = n->val;
    for (int i = 0; i < n->size; i++) {
        float gi = g[i];   /* loaded unconditionally so the loop vectorizes */
        y[i] = x[i] > 0.0f ? gi : 0.0f;
    }
}
static kgm_node *relu_mask(kgm_tape *t, kgm_node *g, kgm_node *x)
{
    return binary_same(t, OP_RELU_MASK, g, x);
}
static void relu_mask_backward(kgm_tape *t, kgm_node *n)
{
    if (WANTS(n, 0)) grad_add(t, n->in[0], relu_mask(t, n->grad, n->in[1]));
}
static void relu_backward(kgm_tape *t, kgm_node *n)
{
    grad_add(t, n->in[0], relu_mask(t, n->grad, n->in[0]));
}

/* ---- tanh ---- y = tanh(x);  dx += dy * (1 - y^2). Reads the saved y, not x. */
static void tanh_forward(kgm_node *n)
{
    const float *x = IN0(n);
    for (int i = 0; i < n->size; i++) n->val[i] = tanhf(x[i]);
}
static void tanh_backward(kgm_tape *t, kgm_node *n)
{
    kgm_node *d = kgm_add_scalar(t, kgm_scale(t, kgm_square(t, n), -1.0f), 1.0f);
    grad_add(t, n->in[0], kgm_mul(t, n->grad, d));
}

/* ---- sigmoid ---- y = 1 / (1 + e^-x);  dx += dy * y * (1 - y) */
static void sigmoid_forward(kgm_node *n)
{
    const float *x = IN0(n);
    for (int i = 0; i < n->size; i++) {
        /* e^-|x| never overflows; the two branches are the same function. */
        float e = expf(-fabsf(x[i]));
        n->val[i] = x[i] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
    }
}
static void sigmoid_backward(kgm_tape *t, kgm_node *n)
{
    kgm_node *d = kgm_mul(t, n, kgm_add_scalar(t, kgm_scale(t, n, -1.0f), 1.0f));
    grad_add(t, n->in[0], kgm_mul(t, n->grad, d));
}

/* ---- exp ---- y = e^x;  dx += dy * y */
static void exp_forward(kgm_node *n)
{
    const float *x = IN0(n);
    for (int i = 0; i < n->size; i++) n->val[i] = expf(x[i]);
}
static void exp_backward(kgm_tape *t, kgm_node *n)
{
    grad_add(t, n->in[0], kgm_mul(t, n->grad, n));
}

/* ---- log ---- y = ln x;  dx += dy / x */
static void log_forward(kgm_node *n)
{
    const float *x = IN0(n);
    for (int i = 0; i < n->size; i++) n->val[i] = logf(x[i]);
}
static void log_backward(kgm_tape *t, kgm_node *n)
{
    grad_add(t, n->in[0], kgm_div(t, n->grad, n->in[0]));
}

/* ---- square ---- y = x^2;  dx += 2 x dy */
static void square_forward(kgm_node *n)
{
    const float *x = IN0(n);
    for (int i = 0; i < n->size; i++) n->val[i] = x[i] * x[i];
}
static void square_backward(kgm_tape *t, kgm_node *n)
{
    grad_add(t, n->in[0], kgm_scale(t, kgm_mul(t, n->grad, n->in[0]), 2.0f));
}

/* ---- sum ---- y = sum(x) (in double);  dx += fill(dy) */
static void sum_forward(kgm_node *n)
{
    const kgm_node *x = n->in[0];
    double s = 0.0;
    for (int i = 0; i < x->size; i++) s += x->val[i];
    n->val[0] = (float)s;
}
static void sum_backward(kgm_tape *t, kgm_node *n)
{
    const kgm_node *x = n->in[0];
    grad_add(t, n->in[0], kgm_fill(t, n->grad, x->rows, x->cols));
}

/* ---- mean ---- y = sum(x) / N;  dx += fill(dy / N) */
static void mean_forward(kgm_node *n)
{
    const kgm_node *x = n->in[0];
    double s = 0.0;
    for (int i = 0; i < x->size; i++) s += x->val[i];
    n->val[0] = (float)(s / x->size);
}
static void mean_backward(kgm_tape *t, kgm_node *n)
{
    const kgm_node *x = n->in[0];
    kgm_node *d = kgm_scale(t, n->grad, 1.0f / (float)x->size);
    grad_add(t, n->in[0], kgm_fill(t, d, x->rows, x->cols));
}

/* ---- colsum ---- (r,c) -> (1,c), y[j] = sum_i x[i,j];  dx += repeat_rows(dy, r) */
static void colsum_forward(kgm_node *n)
{
    const kgm_node *x = n->in[0];
    memcpy(n->val, x->val, (size_t)x->cols * sizeof(float));
    for (int r = 1; r < x->rows; r++) {
        const float *xr = x->val + (size_t)r * x->cols;
        for (int c = 0; c < x->cols; c++) n->val[c] += xr[c];
    }
}
static void colsum_backward(kgm_tape *t, kgm_node *n)
{
    grad_add(t, n->in[0], kgm_repeat_rows(t, n->grad, n->in[0]->rows));
}

/* ---- rowsum ---- (r,c) -> (r,1), y[i] = sum_j x[i,j];  dx += repeat_cols(dy, c) */
static void rowsum_forward(kgm_node *n)
{
    const kgm_node *x = n->in[0];
    for (int r = 0; r < x->rows; r++) {
        const float *xr = x->val + (size_t)r * x->cols;
        float s = 0.0f;
        for (int c = 0; c < x->cols; c++) s += xr[c];
        n->val[r] = s;
    }
}
static void rowsum_backward(kgm_tape *t, kgm_node *n)
{
    grad_add(t, n->in[0], kgm_repeat_cols(t, n->grad, n->in[0]->cols));
}

/* ---- repeat_rows ---- (1,c) -> (r,c);  dx += colsum(dy) */
static void repeat_rows_forward(kgm_node *n)
{
    for (int r = 0; r < n->rows; r++)
        memcpy(n->val + (size_t)r * n->cols, IN0(n), (size_t)n->cols * sizeof(float));
}
static void repeat_rows_backward(kgm_tape *t, kgm_node *n)
{
    grad_add(t, n->in[0], kgm_colsum(t, n->grad));
}

/* ---- repeat_cols ---- (r,1) -> (r,c);  dx += rowsum(dy) */
static void repeat_cols_forward(kgm_node *n)
{
    const float *x = IN0(n);
    for (int r = 0; r < n->rows; r++)
        for (int c = 0; c < n->cols; c++) n->val[(size_t)r * n->cols + c] = x[r];
}
static void repeat_cols_backward(kgm_tape *t, kgm_node *n)
{
    grad_add(t, n->in[0], kgm_rowsum(t, n->grad));
}

/* ---- fill ---- (1,1) -> (r,c) all equal to s;  ds += sum(dy) */
static void fill_forward(kgm_node *n)
{
    float s = IN0(n)[0];
    for (int i = 0; i < n->size; i++) n->val[i] = s;
}
static void fill_backward(kgm_tape *t, kgm_node *n)
{
    grad_add(t, n->in[0], kgm_sum(t, n->grad));
}

/* ---- concat_cols ---- y = [a b];  da += y's first ca columns of dy, db += the rest */
static void concat_cols_forward(kgm_node *n)
{
    const kgm_node *a = n->in[0], *b = n->in[1];
    for (int r = 0; r < n->rows; r++) {
        float *yr = n->val + (size_t)r * n->cols;
        memcpy(yr, a->val + (size_t)r * a->cols, (size_t)a->cols * sizeof(float));
        memcpy(yr + a->cols, b->val + (size_t)r * b->cols, (size_t)b->cols * sizeof(float));
    }
}
static void concat_cols_backward(kgm_tape *t, kgm_node *n)
{
    int ca = n->in[0]->cols;
    if (WANTS(n, 0)) grad_add(t, n->in[0], kgm_slice_cols(t, n->grad, 0, ca));
    if (WANTS(n, 1)) grad_add(t, n->in[1], kgm_slice_cols(t, n->grad, ca, n->cols - ca));
}

/* ---- slice_cols ---- y = x[:, i0 : i0+cols];  dx[:, i0 : i0+cols] += dy */
static void slice_cols_forward(kgm_node *n)
{
    const kgm_node *x = n->in[0];
    for (int r = 0; r < n->rows; r++)
        memcpy(n->val + (size_t)r * n->cols, x->val + (size_t)r * x->cols + n->i0,
               (size_t)n->cols * sizeof(float));
}
static void slice_cols_backward(kgm_tape *t, kgm_node *n)
{
    grad_add_part(t, n->in[0], n->grad, PART_COLS, n->i0);
}

/* ---- view ---- y = x's values from flat offset i0, reshaped (no copy);  dx[i0 ...] += dy */
static void view_forward(kgm_node *n)
{
    n->val = IN0(n) + n->i0;
}
static void view_backward(kgm_tape *t, kgm_node *n)
{
    grad_add_part(t, n->in[0], n->grad, PART_FLAT, n->i0);
}

/* ---- mse ---- y = mean((p - q)^2) over N values;  dp += (2/N) dy (p - q), dq -= the same */
static void mse_forward(kgm_node *n)
{
    const kgm_node *p = n->in[0];
    const float *q = IN1(n);
    double s = 0.0;
    for (int i = 0; i < p->size; i++) {
        double d = (double)p->val[i] - q[i];
        s += d * d;
    }
    n->val[0] = (float)(s / p->size);
}
static void mse_backward(kgm_tape *t, kgm_node *n)
{
    kgm_node *p = n->in[0], *q = n->in[1];
    kgm_node *g = kgm_scale_by(t, kgm_sub(t, p, q), kgm_scale(t, n->grad, 2.0f / (float)p->size));
    if (WANTS(n, 0)) grad_add(t, p, g);
    if (WANTS(n, 1)) grad_add(t, q, kgm_scale(t, g, -1.0f));
}

/* ---- softmax ---- y = exp(x - max) / sum exp(x - max), per row;
 * dx += y * (dy - repeat_cols(rowsum(dy * y)))  (the Jacobian diag(y) - y y^T applied to dy) */
static void softmax_forward(kgm_node *n)
{
    const float *x = IN0(n);
    for (int r = 0; r < n->rows; r++) {
        const float *xr = x + (size_t)r * n->cols;
        float *yr = n->val + (size_t)r * n->cols;
        /* Subtract the row max before exp: same result, and exp cannot overflow. */
        float m = xr[0];
        for (int c = 1; c < n->cols; c++) m = xr[c] > m ? xr[c] : m;
        double s = 0.0;
        for (int c = 0; c < n->cols; c++) s += yr[c] = expf(xr[c] - m);
        float inv = (float)(1.0 / s);
        for (int c = 0; c < n->cols; c++) yr[c] *= inv;
    }
}
static void softmax_backward(kgm_tape *t, kgm_node *n)
{
    kgm_node *dot = kgm_rowsum(t, kgm_mul(t, n->grad, n));
    grad_add(t, n->in[0], kgm_mul(t, n, kgm_sub(t, n->grad, kgm_repeat_cols(t, dot, n->cols))));
}

/* ---- softmax_xent ---- y = (1/B) sum_i (logsumexp(x_i) - x_i[l_i]) over B rows, labels in aux;
 * dx += (dy / B) (softmax(x) - onehot(l)) */
static void xent_forward(kgm_node *n)
{
    const kgm_node *x = n->in[0];
    const int *label = n->aux;
    double total = 0.0;
    for (int r = 0; r < x->rows; r++) {
        const float *xr = x->val + (size_t)r * x->cols;
        float m = xr[0];
        for (int c = 1; c < x->cols; c++) m = xr[c] > m ? xr[c] : m;
        double s = 0.0;
        for (int c = 0; c < x->cols; c++) s += exp((double)xr[c] - m);
        total += m + log(s) - xr[label[r]];
    }
    n->val[0] = (float)(total / x->rows);
}
static void xent_backward(kgm_tape *t, kgm_node *n)
{
    kgm_node *x = n->in[0];
    const int *label = n->aux;
    kgm_node *onehot = constant(t, x->rows, x->cols, 0.0f);
    if (!onehot) return;
    for (int r = 0; r < x->rows; r++) onehot->val[(size_t)r * x->cols + label[r]] = 1.0f;
    kgm_node *diff = kgm_sub(t, kgm_softmax(t, x), onehot);
    grad_add(t, x, kgm_scale_by(t, diff, kgm_scale(t, n->grad, 1.0f / (float)x->rows)));
}

/* ---- gradsum ---- y = in0 (or 0) + each part placed at its block (aux: list of parts);
 * d in0 += dy, d part += dy's block (view or column slice) */
static void gradsum_forward(kgm_node *n)
{
    if (n->in[0]) memcpy(n->val, IN0(n), (size_t)n->size * sizeof(float));
    else memset(n->val, 0, (size_t)n->size * sizeof(float));
    for (const part *p = n->aux; p; p = p->next) {
        const kgm_node *g = p->g;
        if (p->kind == PART_FLAT) {
            float *y = n->val + p->off;
            for (int i = 0; i < g->size; i++) y[i] += g->val[i];
        } else {
            for (int r = 0; r < g->rows; r++) {
                float *y = n->val + (size_t)r * n->cols + p->off;
                const float *gr = g->val + (size_t)r * g->cols;
                for (int c = 0; c < g->cols; c++) y[c] += gr[c];
            }
        }
    }
}
static void gradsum_backward(kgm_tape *t, kgm_node *n)
{
    if (n->in[0]) grad_add(t, n->in[0], n->grad);
    for (const part *p = n->aux; p; p = p->next) {
        if (!p->g->requires_grad) continue;
        kgm_node *block = p->kind == PART_FLAT
            ? kgm_view(t, n->grad, p->off, p->g->rows, p->g->cols)
            : kgm_slice_cols(t, n->grad, p->off, p->g->cols);
        grad_add(t, p->g, block);
    }
}

static const op_def OPS[] = {
    [OP_LEAF]        = { "leaf",        NULL,                NULL },
    [OP_MATMUL]      = { "matmul",      matmul_forward,      matmul_backward },
    [OP_ADD]         = { "add",         add_forward,         add_backward },
    [OP_SUB]         = { "sub",         sub_forward,         sub_backward },
    [OP_MUL]         = { "mul",         mul_forward,         mul_backward },
    [OP_DIV]         = { "div",         div_forward,         div_backward },
    [OP_SCALE]       = { "scale",       scale_forward,       scale_backward },
    [OP_ADD_SCALAR]  = { "add_scalar",  add_scalar_forward,  add_scalar_backward },
    [OP_AXPY]        = { "axpy",        axpy_forward,        axpy_backward },
    [OP_SCALE_BY]    = { "scale_by",    scale_by_forward,    scale_by_backward },
    [OP_BIAS_ADD]    = { "bias_add",    bias_add_forward,    bias_add_backward },
    [OP_RELU]        = { "relu",        relu_forward,        relu_backward },
    [OP_RELU_MASK]   = { "relu_mask",   relu_mask_forward,   relu_mask_backward },
    [OP_TANH]        = { "tanh",        tanh_forward,        tanh_backward },
    [OP_SIGMOID]     = { "sigmoid",     sigmoid_forward,     sigmoid_backward },
    [OP_EXP]         = { "exp",         exp_forward,         exp_backward },
    [OP_LOG]         = { "log",         log_forward,         log_backward },
    [OP_SQUARE]      = { "square",      square_forward,      square_backward },
    [OP_SUM]         = { "sum",         sum_forward,         sum_backward },
    [OP_MEAN]        = { "mean",        mean_forward,        mean_backward },
    [OP_COLSUM]      = { "colsum",      colsum_forward,      colsum_backward },
    [OP_ROWSUM]      = { "rowsum",      rowsum_forward,      rowsum_backward },
    [OP_REPEAT_ROWS] = { "repeat_rows", repeat_rows_forward, repeat_rows_backward },
    [OP_REPEAT_COLS] = { "repeat_cols", repeat_cols_forward, repeat_cols_backward },
    [OP_FILL]        = { "fill",        fill_forward,        fill_backward },
    [OP_CONCAT_COLS] = { "concat_cols", concat_cols_forward, concat_cols_backward },
    [OP_SLICE_COLS]  = { "slice_cols",  slice_cols_forward,  slice_cols_backward },
    [OP_VIEW]        = { "view",        view_forward,        view_backward },
    [OP_MSE]         = { "mse",         mse_forward,         mse_backward },
    [OP_SOFTMAX]     = { "softmax",     softmax_forward,     softmax_backward },
    [OP_XENT]        = { "softmax_xent", xent_forward,       xent_backward },
    [OP_GRADSUM]     = { "gradsum",     gradsum_forward,     gradsum_backward },
};
static_assert(sizeof OPS / sizeof OPS[0] == OP_COUNT, "one row per op");

/* ---- public constructors: check shapes, then create and compute ---- */
kgm_node *kgm_matmul(kgm_tape *t, kgm_node *a, kgm_node *b)
{
    return kgm_matmul_t(t, a, b, 0, 0);
}

kgm_node *kgm_matmul_t(kgm_tape *t, kgm_node *a, kgm_node *b, int trans_a, int trans_b)
{
    if (inputs_missing(t, "matmul", a, b, 1)) return NULL;
    trans_a = trans_a != 0;
    trans_b = trans_b != 0;
    int m = trans_a ? a->cols : a->rows, ka = trans_a ? a->rows : a->cols;
    int kb = trans_b ? b->cols : b->rows, n = trans_b ? b->rows : b->cols;
    if (ka != kb) {
        tape_fail(t, KGM_EINVAL, "matmul: %dx%d%s times %dx%d%s: inner sizes differ", a->rows,
                  a->cols, trans_a ? "^T" : "", b->rows, b->cols, trans_b ? "^T" : "");
        return NULL;
    }
    kgm_node *y = node_new(t, OP_MATMUL, a, b, m, n, 1);
    if (!y) return NULL;
    y->i0 = trans_a;
    y->i1 = trans_b;
    matmul_forward(y);
    return y;
}

kgm_node *kgm_add(kgm_tape *t, kgm_node *a, kgm_node *b) { return binary_same(t, OP_ADD, a, b); }
kgm_node *kgm_sub(kgm_tape *t, kgm_node *a, kgm_node *b) { return binary_same(t, OP_SUB, a, b); }
kgm_node *kgm_mul(kgm_tape *t, kgm_node *a, kgm_node *b) { return binary_same(t, OP_MUL, a, b); }
kgm_node *kgm_div(kgm_tape *t, kgm_node *a, kgm_node *b) { return binary_same(t, OP_DIV, a, b); }

/* An op with one float argument. */
static kgm_node *with_f(kgm_tape *t, int op, kgm_node *a, kgm_node *b, float f)
{
    kgm_node *y = node_new(t, op, a, b, a->rows, a->cols, 1);
    if (!y) return NULL;
    y->f = f;
    OPS[op].forward(y);
    return y;
}

kgm_node *kgm_scale(kgm_tape *t, kgm_node *x, float a)
{
    if (inputs_missing(t, "scale", x, NULL, 0)) return NULL;
    return with_f(t, OP_SCALE, x, NULL, a);
}

kgm_node *kgm_add_scalar(kgm_tape *t, kgm_node *x, float b)
{
    if (inputs_missing(t, "add_scalar", x, NULL, 0)) return NULL;
    return with_f(t, OP_ADD_SCALAR, x, NULL, b);
}

kgm_node *kgm_axpy(kgm_tape *t, float a, kgm_node *x, kgm_node *y)
{
    if (inputs_missing(t, "axpy", x, y, 1)) return NULL;
    if (x->rows != y->rows || x->cols != y->cols) {
        shape_fail(t, "axpy", x, y);
        return NULL;
    }
    return with_f(t, OP_AXPY, x, y, a);
}

kgm_node *kgm_scale_by(kgm_tape *t, kgm_node *x, kgm_node *s)
{
    if (inputs_missing(t, "scale_by", x, s, 1)) return NULL;
    if (s->size != 1) {
        shape_fail(t, "scale_by (the scale must be 1x1)", x, s);
        return NULL;
    }
    return op_apply(t, OP_SCALE_BY, x, s, x->rows, x->cols);
}

kgm_node *kgm_bias_add(kgm_tape *t, kgm_node *x, kgm_node *b)
{
    if (inputs_missing(t, "bias_add", x, b, 1)) return NULL;
    if (b->rows != 1 || b->cols != x->cols) {
        shape_fail(t, "bias_add", x, b);
        return NULL;
    }
    return op_apply(t, OP_BIAS_ADD, x, b, x->rows, x->cols);
}

kgm_node *kgm_relu(kgm_tape *t, kgm_node *x)    { return unary(t, OP_RELU, x); }
kgm_node *kgm_tanh(kgm_tape *t, kgm_node *x)    { return unary(t, OP_TANH, x); }
kgm_node *kgm_sigmoid(kgm_tape *t, kgm_node *x) { return unary(t, OP_SIGMOID, x); }
kgm_node *kgm_exp(kgm_tape *t, kgm_node *x)     { return unary(t, OP_EXP, x); }
kgm_node *kgm_log(kgm_tape *t, kgm_node *x)     { return unary(t, OP_LOG, x); }
kgm_node *kgm_square(kgm_tape *t, kgm_node *x)  { return unary(t, OP_SQUARE, x); }
kgm_node *kgm_softmax(kgm_tape *t, kgm_node *x) { return unary(t, OP_SOFTMAX, x); }

/* An op with one input and a given result shape. */
static kgm_node *reshaping(kgm_tape *t, int op, kgm_node *x, int rows, int cols)
{
    if (inputs_missing(t, OPS[op].name, x, NULL, 0)) return NULL;
    return op_apply(t, op, x, NULL, rows, cols);
}

kgm_node *kgm_sum(kgm_tape *t, kgm_node *x)    { return reshaping(t, OP_SUM, x, 1, 1); }
kgm_node *kgm_mean(kgm_tape *t, kgm_node *x)   { return reshaping(t, OP_MEAN, x, 1, 1); }

kgm_node *kgm_colsum(kgm_tape *t, kgm_node *x)
{
    if (inputs_missing(t, "colsum", x, NULL, 0)) return NULL;
    return op_apply(t, OP_COLSUM, x, NULL, 1, x->cols);
}

kgm_node *kgm_rowsum(kgm_tape *t, kgm_node *x)
{
    if (inputs_missing(t, "rowsum", x, NULL, 0)) return NULL;
    return op_apply(t, OP_ROWSUM, x, NULL, x->rows, 1);
}

/* (1,c), (r,1) or (1,1) -> (rows, cols); need_*: x must have 1 row / 1 column. */
static kgm_node *expanding(kgm_tape *t, int op, kgm_node *x, int need_rows, int need_cols,
                           int rows, int cols)
{
    if ((need_rows && x->rows != 1) || (need_cols && x->cols != 1) || rows <= 0 || cols <= 0) {
        tape_fail(t, KGM_EINVAL, "%s: cannot expand %dx%d to %dx%d", OPS[op].name, x->rows,
                  x->cols, rows, cols);
        return NULL;
    }
    return op_apply(t, op, x, NULL, rows, cols);
}

kgm_node *kgm_repeat_rows(kgm_tape *t, kgm_node *x, int rows)
{
    if (inputs_missing(t, "repeat_rows", x, NULL, 0)) return NULL;
    return expanding(t, OP_REPEAT_ROWS, x, 1, 0, rows, x->cols);
}

kgm_node *kgm_repeat_cols(kgm_tape *t, kgm_node *x, int cols)
{
    if (inputs_missing(t, "repeat_cols", x, NULL, 0)) return NULL;
    return expanding(t, OP_REPEAT_COLS, x, 0, 1, x->rows, cols);
}

kgm_node *kgm_fill(kgm_tape *t, kgm_node *s, int rows, int cols)
{
    if (inputs_missing(t, "fill", s, NULL, 0)) return NULL;
    return expanding(t, OP_FILL, s, 1, 1, rows, cols);
}

kgm_node *kgm_concat_cols(kgm_tape *t, kgm_node *a, kgm_node *b)
{
    if (inputs_missing(t, "concat_cols", a, b, 1)) return NULL;
    if (a->rows != b->rows) {
        shape_fail(t, "concat_cols", a, b);
        return NULL;
    }
    return op_apply(t, OP_CONCAT_COLS, a, b, a->rows, a->cols + b->cols);
}

kgm_node *kgm_slice_cols(kgm_tape *t, kgm_node *x, int col0, int ncols)
{
    if (inputs_missing(t, "slice_cols", x, NULL, 0)) return NULL;
    if (col0 < 0 || ncols <= 0 || col0 > x->cols - ncols) {
        tape_fail(t, KGM_EINVAL, "slice_cols: columns %d..%d of a %dx%d node", col0,
                  col0 + ncols - 1, x->rows, x->cols);
        return NULL;
    }
    kgm_node *y = node_new(t, OP_SLICE_COLS, x, NULL, x->rows, ncols, 1);
    if (!y) return NULL;
    y->i0 = col0;
    slice_cols_forward(y);
    return y;
}

kgm_node *kgm_view(kgm_tape *t, kgm_node *x, int offset, int rows, int cols)
{
    if (inputs_missing(t, "view", x, NULL, 0)) return NULL;
    if (offset < 0 || rows <= 0 || cols <= 0 || (long)rows * cols > (long)x->size - offset) {
        tape_fail(t, KGM_EINVAL, "view: %dx%d at offset %d does not fit in a %dx%d node", rows,
                  cols, offset, x->rows, x->cols);
        return NULL;
    }
    kgm_node *y = node_new(t, OP_VIEW, x, NULL, rows, cols, 0);
    if (!y) return NULL;
    y->i0 = offset;
    view_forward(y);
    return y;
}

kgm_node *kgm_mse(kgm_tape *t, kgm_node *pred, kgm_node *target)
{
    if (inputs_missing(t, "mse", pred, target, 1)) return NULL;
    if (pred->rows != target->rows || pred->cols != target->cols) {
        shape_fail(t, "mse", pred, target);
        return NULL;
    }
    return op_apply(t, OP_MSE, pred, target, 1, 1);
}

kgm_node *kgm_softmax_xent(kgm_tape *t, kgm_node *logits, const int *labels)
{
    if (inputs_missing(t, "softmax_xent", logits, NULL, 0)) return NULL;
    if (!labels) {
        tape_fail(t, KGM_EINVAL, "softmax_xent: labels are NULL");
        return NULL;
    }
    for (int r = 0; r < logits->rows; r++)
        if (labels[r] < 0 || labels[r] >= logits->cols) {
            tape_fail(t, KGM_EINVAL, "softmax_xent: label %d of row %d is outside 0..%d",
                      labels[r], r, logits->cols - 1);
            return NULL;
        }
    int *copy = arena_alloc(t, (size_t)logits->rows * sizeof *copy);
    if (!copy) return NULL;
    memcpy(copy, labels, (size_t)logits->rows * sizeof *copy);
    kgm_node *y = node_new(t, OP_XENT, logits, NULL, 1, 1, 1);
    if (!y) return NULL;
    y->aux = copy;
    xent_forward(y);
    return y;
}
