/* src/optim.c - SGD with momentum, Adam, clipping by global norm, learning-rate schedules.
 * Not here: per-group learning rates or parameter freezing (give such parameters their own
 * optimizer over their own flat buffer). */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

struct kgm_optim {
    kgm_optim_config cfg;
    size_t n;
    long   steps;
    float *state[2];   /* SGD: velocity; Adam: first and second moments */
};

/* ---- schedules ---- */
float kgm_schedule_lr(const kgm_schedule *s, long step)
{
    if (s->kind == KGM_SCHED_CONSTANT || s->steps <= 0) return s->lr;
    if (step < 0) step = 0;
    double frac = step >= s->steps ? 1.0 : (double)step / (double)s->steps;
    if (s->kind == KGM_SCHED_LINEAR) return (float)(s->lr + (s->lr_end - s->lr) * frac);
    return (float)(s->lr_end + (s->lr - s->lr_end) * 0.5 * (1.0 + cos(M_PI * frac)));
}

/* ---- clipping ---- */
double kgm_clip_grad_norm(float *g, size_t n, double max_norm)
{
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    double norm = sqrt(ss);
    if (!isfinite(norm) || max_norm <= 0.0 || norm <= max_norm) return norm;
    float scale = (float)(max_norm / norm);
    for (size_t i = 0; i < n; i++) g[i] *= scale;
    return norm;
}

/* ---- optimizers ---- */
kgm_optim_config kgm_optim_defaults(kgm_optim_kind kind, float lr)
{
    kgm_optim_config c = { 0 };
    c.kind = kind;
    c.sched.kind = KGM_SCHED_CONSTANT;
    c.sched.lr = c.sched.lr_end = lr;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    return c;
}

static int config_check(const kgm_optim_config *c)
{
    if (c->kind != KGM_OPTIM_SGD && c->kind != KGM_OPTIM_ADAM)
        return kgm_fail(KGM_EINVAL, "optimizer: unknown kind %d", (int)c->kind);
    if (!(c->sched.lr >= 0) || !(c->sched.lr_end >= 0))
        return kgm_fail(KGM_EINVAL, "optimizer: learning rate must be >= 0");
    if (c->sched.kind != KGM_SCHED_CONSTANT && c->sched.steps <= 0)
        return kgm_fail(KGM_EINVAL, "optimizer: a decaying schedule needs steps > 0");
    if (!(c->momentum >= 0 && c->momentum < 1))
        return kgm_fail(KGM_EINVAL, "optimizer: momentum %g is outside [0, 1)", c->momentum);
    if (c->kind == KGM_OPTIM_ADAM &&
        (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) || !(c->eps > 0)))
        return kgm_fail(KGM_EINVAL, "optimizer: Adam needs betas in [0, 1) and eps > 0");
    if (!(c->clip_norm >= 0) || !(c->weight_decay >= 0))
        return kgm_fail(KGM_EINVAL, "optimizer: clip_norm and weight_decay must be >= 0");
    return KGM_OK;
}

int kgm_optim_new(kgm_optim **out, const kgm_optim_config *cfg, size_t n)
{
    *out = NULL;
    int rc = config_check(cfg);
    if (rc < 0) return rc;
    if (n == 0) return kgm_fail(KGM_EINVAL, "optimizer over 0 parameters");
    kgm_optim *o = calloc(1, sizeof *o);
    if (!o) return kgm_fail(KGM_ENOMEM, "cannot allocate an optimizer");
    o->cfg = *cfg;
    o->n = n;
    int buffers = cfg->kind == KGM_OPTIM_ADAM ? 2 : 1;
    for (int b = 0; b < buffers; b++) {
        o->state[b] = calloc(n, sizeof(float));
        if (!o->state[b]) {
            kgm_optim_free(o);
            return kgm_fail(KGM_ENOMEM, "cannot allocate optimizer state for %zu parameters", n);
        }
    }
    *out = o;
    return KGM_OK;
}

void kgm_optim_free(kgm_optim *o)
{
    if (!o) return;
    free(o->state[0]);
    free(o->state[1]);
    free(o);
}

static void sgd_step(kgm_optim *o, float *p, const float *g, float lr)
{
    float mu = o->cfg.momentum, *v = o->state[0];
    for (size_t i = 0; i < o->n; i++) {
        v[i] = mu * v[i] + g[i];
        p[i] -= lr * v[i];
    }
}

void kgm_adam_update(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                     size_t n, float lr, float b1, float b2, float eps, float c1, float c2)
{
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        p[i] -= lr * (m[i] / c1) / (sqrtf(v[i] / c2) + eps);
    }
}

static void adam_step(kgm_optim *o, float *p, const float *g, float lr)
{
    const kgm_optim_config *c = &o->cfg;
    const double t = (double)o->steps + 1;
    kgm_adam_update(p, g, o->state[0], o->state[1], o->n, lr, c->beta1, c->beta2, c->eps,
                    (float)(1.0 - pow(c->beta1, t)), (float)(1.0 - pow(c->beta2, t)));
}

int kgm_optim_step(kgm_optim *o, float *params, float *grad)
{
    double ss = 0.0;
    for (size_t i = 0; i < o->n; i++) ss += (double)grad[i] * grad[i];
    if (!isfinite(ss))
        return kgm_fail(KGM_ENUMERIC, "optimizer step %ld: the gradient holds NaN or infinity",
                        o->steps);
    if (o->cfg.clip_norm > 0) kgm_clip_grad_norm(grad, o->n, o->cfg.clip_norm);
    if (o->cfg.weight_decay > 0)
        for (size_t i = 0; i < o->n; i++) grad[i] += o->cfg.weight_decay * params[i];
    float lr = kgm_schedule_lr(&o->cfg.sched, o->steps);
    if (o->cfg.kind == KGM_OPTIM_SGD) sgd_step(o, params, grad, lr);
    else adam_step(o, params, grad, lr);
    o->steps++;
    return KGM_OK;
}

long  kgm_optim_steps(const kgm_optim *o) { return o->steps; }
float kgm_optim_lr(const kgm_optim *o) { return kgm_schedule_lr(&o->cfg.sched, o->steps); }

void kgm_optim_reset(kgm_optim *o)
{
    for (int b = 0; b < 2; b++)
        if (o->state[b]) memset(o->state[b], 0, o->n * sizeof(float));
    o->steps = 0;
}

float *kgm_optim_state(kgm_optim *o, int index)
{
    if (index < 0 || index > 1) return NULL;
    return o->state[index];
}
