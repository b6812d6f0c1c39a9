/* models/mlp.h - task networks: multilayer perceptrons with ReLU or tanh hidden units and a
 * linear output, for regression (mean squared error) or classification (softmax
 * cross-entropy over the output units).
 *
 * Parameters are one flat float buffer; layer l (0-based) has its weight matrix W_l
 * (sizes[l+1] rows, sizes[l] columns, row-major, PyTorch's Linear layout) at w_off[l] and its
 * bias b_l (sizes[l+1]) at b_off[l]. Gradients, Hessian-vector products, fast weights and
 * Adam moments share the layout, so an SGD step is one loop.
 *
 * Derivatives are written by hand, forward and backward side by side, plus the exact
 * Hessian-vector product (Pearlmutter's R-operator: forward-over-reverse), which is what
 * second-order MAML needs: the meta-gradient through an SGD step theta' = theta - a g(theta)
 * is v - H(a v). Written before the core's tape landed and kept because it is exact for this
 * network family and needs no graph per task: tests/test_meta.c checks it against finite
 * differences and against the tape's create_graph backward (equal to 1e-6).
 *
 * Ownership: kgm_mlp is a plain value; kgm_mlp_ws (scratch for one thread) is returned new
 * by kgm_mlp_ws_new and freed by kgm_mlp_ws_free. Nothing here is shared between threads
 * except the read-only kgm_mlp. */
#ifndef KGM_MLP_H
#define KGM_MLP_H

#include <stddef.h>

#include "tasksrc.h"

#define KGM_MLP_MAX_LAYERS 8   /* weight layers */

typedef enum { KGM_ACT_RELU, KGM_ACT_TANH } kgm_act;
typedef enum { KGM_LOSS_MSE, KGM_LOSS_XENT } kgm_loss;

typedef struct kgm_mlp {
    int n_layers;                          /* weight layers, >= 1 */
    int sizes[KGM_MLP_MAX_LAYERS + 1];     /* input, hidden..., output widths */
    kgm_act act;
    kgm_loss loss;
    size_t n_params;
    size_t w_off[KGM_MLP_MAX_LAYERS];      /* W_l: (sizes[l+1], sizes[l]) */
    size_t b_off[KGM_MLP_MAX_LAYERS];      /* b_l: (sizes[l+1]) */
} kgm_mlp;

typedef struct kgm_mlp_ws kgm_mlp_ws;      /* opaque per-thread scratch */

/* sizes has n_layers + 1 entries, each >= 1. Errors: KGM_EINVAL. */
int  kgm_mlp_init(kgm_mlp *m, int n_layers, const int *sizes, kgm_act act, kgm_loss loss);
/* Parse "relu"/"tanh" and "mse"/"xent"; KGM_EINVAL otherwise. */
int  kgm_mlp_parse_act(const char *s, kgm_act *out);
int  kgm_mlp_parse_loss(const char *s, kgm_loss *out);
/* PyTorch's Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for W and b. */
void kgm_mlp_init_params(const kgm_mlp *m, float *theta, kgm_taskrng *rng);
/* Named views: "W1", "b1", ... (1-based, as in papers). NULL when no such view. */
float *kgm_mlp_view(const kgm_mlp *m, float *theta, const char *name, int *rows, int *cols);

/* Scratch for batches of up to max_batch rows; returns new, NULL on out of memory. */
kgm_mlp_ws *kgm_mlp_ws_new(const kgm_mlp *m, int max_batch);
void kgm_mlp_ws_free(kgm_mlp_ws *ws);       /* NULL is a no-op */

/* Outputs (n, sizes[n_layers]) of the network at theta for x (n, sizes[0]). */
void  kgm_mlp_predict(const kgm_mlp *m, kgm_mlp_ws *ws, const float *theta,
                      const float *x, int n, float *out);
/* Mean loss over the n rows; with grad non-NULL also its gradient (overwritten, n_params). */
float kgm_mlp_loss_grad(const kgm_mlp *m, kgm_mlp_ws *ws, const float *theta,
                        const float *x, const float *y, int n, float *grad);
/* hv = H v, H the Hessian of the mean loss at theta (exact, by the R-operator). */
void  kgm_mlp_hvp(const kgm_mlp *m, kgm_mlp_ws *ws, const float *theta,
                  const float *x, const float *y, int n, const float *v, float *hv);
/* The same, reusing the forward and backward pass that the last call of
 * kgm_mlp_loss_grad(m, ws, theta, x, y, n, grad != NULL) on this ws left there (same theta,
 * x, n): saves a third of the work. */
void  kgm_mlp_hvp_cached(const kgm_mlp *m, kgm_mlp_ws *ws, const float *theta,
                         const float *x, int n, const float *v, float *hv);

/* Floating-point operations of one call, counted from the shapes (a multiply-add is 2). */
double kgm_mlp_flops_loss_grad(const kgm_mlp *m, int n);
double kgm_mlp_flops_hvp_cached(const kgm_mlp *m, int n);   /* kgm_mlp_hvp: add loss_grad */

#endif
