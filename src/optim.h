/* src/optim.h - optimizers over one flat float buffer: SGD with momentum, Adam; gradient
 * clipping by global norm; learning-rate schedules (constant, linear decay, cosine).
 *
 * A kgm_optim owns its state (momentum or Adam moments: n floats each, same layout as the
 * parameters) and nothing else: parameters and gradients are borrowed at each step. */
#ifndef KGM_OPTIM_H
#define KGM_OPTIM_H

#include <stddef.h>

/* ---- learning-rate schedules ---- */
typedef enum { KGM_SCHED_CONSTANT, KGM_SCHED_LINEAR, KGM_SCHED_COSINE } kgm_sched_kind;

typedef struct kgm_schedule {
    kgm_sched_kind kind;
    float lr;          /* at step 0 */
    float lr_end;      /* at step `steps` and after (linear and cosine) */
    long  steps;       /* length of the decay, > 0 for linear and cosine */
} kgm_schedule;

/* Learning rate at `step` (0-based): constant lr; linear lr + (lr_end - lr) * step/steps;
 * cosine lr_end + (lr - lr_end) * (1 + cos(pi * step/steps)) / 2; held at lr_end past `steps`. */
float kgm_schedule_lr(const kgm_schedule *s, long step);

/* ---- clipping ---- */
/* Global L2 norm of g[0..n-1] (accumulated in double). If it exceeds max_norm > 0, scale g so
 * its norm is max_norm. Returns the norm before clipping (NaN/inf when g holds them; g then
 * untouched). */
double kgm_clip_grad_norm(float *g, size_t n, double max_norm);

/* ---- the Adam update, shared by kgm_optim and the meta-learner (models/meta.c) ----
 * m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p -= lr (m / c1) / (sqrt(v / c2) + eps),
 * c1 = 1 - b1^t and c2 = 1 - b2^t the bias corrections of step t (1-based). The embeddings'
 * lazy per-row Adam (kg/embed.c adam_row) keeps its own form: a step count per row, and the
 * published WN18RR figures were trained with its rounding. */
void kgm_adam_update(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                     size_t n, float lr, float b1, float b2, float eps, float c1, float c2);

/* ---- optimizers ---- */
typedef enum { KGM_OPTIM_SGD, KGM_OPTIM_ADAM } kgm_optim_kind;

typedef struct kgm_optim_config {
    kgm_optim_kind kind;
    kgm_schedule   sched;        /* learning rate per step */
    float momentum;              /* SGD: 0 = plain SGD; v = momentum * v + g; p -= lr * v */
    float beta1, beta2, eps;     /* Adam (0.9, 0.999, 1e-8 are the usual values) */
    float weight_decay;          /* added to the gradient as weight_decay * p (L2), 0 = none */
    float clip_norm;             /* clip the gradient's global norm to this first; 0 = no clipping */
} kgm_optim_config;

/* Sensible defaults: Adam, constant lr, betas 0.9/0.999, eps 1e-8, no clipping. */
kgm_optim_config kgm_optim_defaults(kgm_optim_kind kind, float lr);

typedef struct kgm_optim kgm_optim;  /* opaque */

/* An optimizer for n parameters; cfg is copied. Returns new: kgm_optim_free(). */
int  kgm_optim_new(kgm_optim **out, const kgm_optim_config *cfg, size_t n);
void kgm_optim_free(kgm_optim *o);   /* NULL is a no-op */
/* One step: params -= update(grad). grad is borrowed and may be modified (clipping, weight
 * decay). A NaN or infinite gradient is refused with KGM_ENUMERIC and changes nothing. */
int  kgm_optim_step(kgm_optim *o, float *params, float *grad);
long kgm_optim_steps(const kgm_optim *o);           /* steps taken so far */
float kgm_optim_lr(const kgm_optim *o);             /* learning rate of the next step */
void kgm_optim_reset(kgm_optim *o);                 /* zero state and step count */
/* State buffers (n floats, parameter layout) for saving: SGD has 1 (velocity), Adam 2 (m, v).
 * Returns NULL for an index out of range. */
float *kgm_optim_state(kgm_optim *o, int index);

#endif
