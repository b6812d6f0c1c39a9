/* models/meta.c - MAML, first-order MAML, Meta-SGD, ANIL and Reptile: the per-task
 * meta-gradient, the threaded meta-training loop with Adam, adaptation and evaluation.
 *
 * Inner loop (all learners): theta_{j+1} = theta_j - r * g_s(theta_j), j < k, where r is a
 * per-parameter rate vector: alpha everywhere (MAML, FOMAML, Reptile), alpha on the last
 * layer and 0 elsewhere (ANIL), or meta-learned (Meta-SGD).
 * Backward through the inner loop, exact: with v = dL_q/dtheta_k,
 *   dL_q/dr   += -g_s(theta_j) * v          (Meta-SGD only)
 *   v         <- v - H_s(theta_j) (r * v)   (Jacobian of a step is I - diag(r) H, H symmetric)
 * for j = k-1 .. 0, then v = dL_q/dtheta0 goes through the init stage's vector-Jacobian
 * product into theta* and the conditioning parameters. FOMAML stops at v = dL_q/dtheta_k;
 * Reptile uses theta0 - theta_k as its outer gradient. */
#include "meta.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "interrupt.h"
#include "modelfile.h"
#include "optim.h"
#include "progress.h"

/* Stream domains, so training, validation and evaluation tasks never coincide. */
#define DOMAIN_VALID 0x76616c6964ULL
#define DOMAIN_EVAL  0x6576616c00ULL
#define DOMAIN_INIT  0x696e697400ULL

static const char *LEARNER_NAMES[KGM_LEARNER_COUNT] = {
    [KGM_MAML] = "maml", [KGM_FOMAML] = "fomaml", [KGM_METASGD] = "metasgd",
    [KGM_ANIL] = "anil", [KGM_REPTILE] = "reptile",
};

int kgm_learner_parse(const char *s, kgm_learner *out)
{
    for (int k = 0; k < KGM_LEARNER_COUNT; k++)
        if (!strcmp(s, LEARNER_NAMES[k])) { *out = (kgm_learner)k; return KGM_OK; }
    return kgm_fail(KGM_EINVAL, "unknown learner '%s' (maml, fomaml, metasgd, anil, reptile)", s);
}

const char *kgm_learner_name(kgm_learner k)
{
    return k >= 0 && k < KGM_LEARNER_COUNT ? LEARNER_NAMES[k] : "?";
}

/* ---- init stages ---- */
static size_t none_n_params(const kgm_mlp *m, int cond_dim) { (void)m; (void)cond_dim; return 0; }
static void none_init_params(const kgm_mlp *m, int cond_dim, float *phi) { (void)m; (void)cond_dim; (void)phi; }
static void none_forward(const kgm_mlp *m, int cond_dim, const float *ts, const float *phi,
                         const float *e, float *theta0)
{
    (void)cond_dim; (void)phi; (void)e;
    memcpy(theta0, ts, m->n_params * sizeof(float));
}
static void none_backward(const kgm_mlp *m, int cond_dim, const float *ts, const float *phi,
                          const float *e, const float *v0, float *g_theta, float *g_phi)
{
    (void)cond_dim; (void)ts; (void)phi; (void)e; (void)g_phi;
    for (size_t i = 0; i < m->n_params; i++) g_theta[i] += v0[i];
}
const kgm_init_stage kgm_init_none = { "none", none_n_params, none_init_params, none_forward, none_backward };

/* shift: theta0 = theta* + U e, U (P, cond_dim) row-major. dtheta* = v0, dU = v0 e^T.
 * U starts at 0, so training starts from plain MAML and learns how far e should move it. */
static size_t shift_n_params(const kgm_mlp *m, int cond_dim) { return m->n_params * (size_t)cond_dim; }
static void shift_init_params(const kgm_mlp *m, int cond_dim, float *phi)
{
    memset(phi, 0, m->n_params * (size_t)cond_dim * sizeof(float));
}
static void shift_forward(const kgm_mlp *m, int cond_dim, const float *ts, const float *phi,
                          const float *e, float *theta0)
{
    for (size_t i = 0; i < m->n_params; i++) {
        float s = ts[i];
        for (int c = 0; c < cond_dim; c++) s += phi[i * (size_t)cond_dim + (size_t)c] * e[c];
        theta0[i] = s;
    }
}
static void shift_backward(const kgm_mlp *m, int cond_dim, const float *ts, const float *phi,
                           const float *e, const float *v0, float *g_theta, float *g_phi)
{
    (void)ts; (void)phi;
    for (size_t i = 0; i < m->n_params; i++) {
        g_theta[i] += v0[i];
        for (int c = 0; c < cond_dim; c++) g_phi[i * (size_t)cond_dim + (size_t)c] += v0[i] * e[c];
    }
}
const kgm_init_stage kgm_init_shift = { "shift", shift_n_params, shift_init_params, shift_forward, shift_backward };

/* FiLM, folded into the weights: each hidden layer l gets a per-unit scale and shift
 * gamma_l = tanh(G_l e), beta_l = B_l e, and relu((1 + gamma) (W x + b) + beta) = relu(W' x + b') with
 *   W'_l = diag(1 + gamma_l) W_l,   b'_l = (1 + gamma_l) b_l + beta_l   (output layer unchanged).
 * So theta0(t) = (W', b') is an ordinary fast-weight vector that the inner loop adapts.
 * The tanh keeps each scale in (0, 2): an unbounded scale let a task cluster's hidden units grow
 * until its inner SGD steps diverged (NaN after ~64,000 iterations on bench_sixfam).
 * Backward, with v0 = (vW, vb):  dW = (1 + gamma) vW,  db = (1 + gamma) vb,
 *   dgamma_i = sum_j W_ij vW_ij + b_i vb_i,  dbeta_i = vb_i,
 *   dG = dgamma (1 - gamma^2) e^T,  dB = dbeta e^T.
 * phi per hidden layer: G_l (H_l, C) then B_l (H_l, C); it starts at 0 (theta0 = theta*). */
static size_t film_n_params(const kgm_mlp *m, int cond_dim)
{
    size_t n = 0;
    for (int l = 0; l + 1 < m->n_layers; l++) n += 2 * (size_t)m->sizes[l + 1] * (size_t)cond_dim;
    return n;
}
static void film_init_params(const kgm_mlp *m, int cond_dim, float *phi)
{
    memset(phi, 0, film_n_params(m, cond_dim) * sizeof(float));
}
static float film_dot(const float *row, const float *e, int c)
{
    float s = 0.0f;
    for (int i = 0; i < c; i++) s += row[i] * e[i];
    return s;
}
static void film_forward(const kgm_mlp *m, int cond_dim, const float *ts, const float *phi,
                         const float *e, float *theta0)
{
    memcpy(theta0, ts, m->n_params * sizeof(float));
    const float *G = phi;
    for (int l = 0; l + 1 < m->n_layers; l++) {
        int H = m->sizes[l + 1], in = m->sizes[l];
        const float *B = G + (size_t)H * (size_t)cond_dim;
        for (int i = 0; i < H; i++) {
            float scale = 1.0f + tanhf(film_dot(G + (size_t)i * (size_t)cond_dim, e, cond_dim));
            float shift = film_dot(B + (size_t)i * (size_t)cond_dim, e, cond_dim);
            float *w = theta0 + m->w_off[l] + (size_t)i * (size_t)in;
            for (int j = 0; j < in; j++) w[j] *= scale;
            theta0[m->b_off[l] + (size_t)i] = scale * ts[m->b_off[l] + (size_t)i] + shift;
        }
        G = B + (size_t)H * (size_t)cond_dim;
    }
}
static void film_backward(const kgm_mlp *m, int cond_dim, const float *ts, const float *phi,
                          const float *e, const float *v0, float *g_theta, float *g_phi)
{
    /* Output layer (and anything not modulated) passes straight through. */
    size_t out_w = m->w_off[m->n_layers - 1];
    for (size_t i = out_w; i < m->n_params; i++) g_theta[i] += v0[i];
    const float *G = phi;
    float *gG = g_phi;
    for (int l = 0; l + 1 < m->n_layers; l++) {
        int H = m->sizes[l + 1], in = m->sizes[l];
        const float *B = G + (size_t)H * (size_t)cond_dim;
        float *gB = gG + (size_t)H * (size_t)cond_dim;
        for (int i = 0; i < H; i++) {
            float gamma = tanhf(film_dot(G + (size_t)i * (size_t)cond_dim, e, cond_dim)), scale = 1.0f + gamma;
            const float *w = ts + m->w_off[l] + (size_t)i * (size_t)in, *vw = v0 + m->w_off[l] + (size_t)i * (size_t)in;
            float *gw = g_theta + m->w_off[l] + (size_t)i * (size_t)in;
            size_t bi = m->b_off[l] + (size_t)i;
            float dgamma = ts[bi] * v0[bi];
            for (int j = 0; j < in; j++) { gw[j] += scale * vw[j]; dgamma += w[j] * vw[j]; }
            g_theta[bi] += scale * v0[bi];
            dgamma *= 1.0f - gamma * gamma;   /* through the tanh */
            for (int c = 0; c < cond_dim; c++) {
                gG[(size_t)i * (size_t)cond_dim + (size_t)c] += dgamma * e[c];
                gB[(size_t)i * (size_t)cond_dim + (size_t)c] += v0[bi] * e[c];
            }
        }
        G = B + (size_t)H * (size_t)cond_dim;
        gG = gB + (size_t)H * (size_t)cond_dim;
    }
}
const kgm_init_stage kgm_init_film = { "film", film_n_params, film_init_params, film_forward, film_backward };

const kgm_init_stage *kgm_init_find(const char *name)
{
    if (!strcmp(name, kgm_init_film.name)) return &kgm_init_film;
    if (!strcmp(name, kgm_init_none.name)) return &kgm_init_none;
    if (!strcmp(name, kgm_init_shift.name)) return &kgm_init_shift;
    return NULL;
}

/* ---- the learner ---- */
/* Rows of all weight matrices: the units of the rate map (cond_rates). */
static size_t n_units(const kgm_mlp *m)
{
    size_t n = 0;
    for (int l = 0; l < m->n_layers; l++) n += (size_t)m->sizes[l + 1];
    return n;
}

typedef struct worker {
    kgm_mlp_ws **ws;  /* (k+1): ws[j] keeps the support pass at theta_j for the Hessian
                       * products, ws[k] the query pass; ws[0] serves single passes */
    int n_ws, ws_batch;
    float *thetas;    /* (k+1, P): theta_0 .. theta_k */
    float *gs;        /* (k, P): support gradients g_s(theta_j) */
    float *scales;    /* (k): step j's factor on the task's rates (inner_backtrack; else 1) */
    float *v, *u, *hv;
    float *rt;        /* (P) the task's inner rates when they are conditioned (cond_rates) */
    kgm_episode task;    /* training-sized task buffers */
} worker;

struct kgm_meta {
    kgm_mlp net;
    kgm_meta_config cfg;
    const kgm_init_stage *init;
    int cond_dim;
    size_t P, n_meta, off_lr, off_phi, off_rmap;   /* off_rmap == n_meta: no rate map */
    float *meta, *best;
    float *adam_m, *adam_v;
    long adam_t;
    float *fixed_lr;  /* (P) rates of learners whose rates are not learned */
    kgm_backtrack backtrack;   /* adaptation's step rule on the support loss (kgm_meta_set_backtrack) */
    worker w0;        /* scratch for single-threaded calls */
};

kgm_meta_config kgm_meta_config_default(void)
{
    return (kgm_meta_config){ .learner = KGM_MAML, .inner_steps = 1, .alpha = 0.01f, .meta_batch = 25,
                              .outer_lr = 1e-3f, .n_support = 10, .n_query = 10, .iterations = 70000,
                              .threads = 1, .seed = 1, .val_every = 0, .val_tasks = 100 };
}

static int worker_init(worker *w, const kgm_meta *mt)
{
    size_t P = mt->P, k = (size_t)mt->cfg.inner_steps;
    memset(w, 0, sizeof *w);
    w->n_ws = (int)k + 1;
    w->ws = calloc(k + 1, sizeof *w->ws);
    w->thetas = malloc((k + 1) * P * sizeof(float));
    w->gs = malloc(k * P * sizeof(float));
    w->scales = malloc(k * sizeof(float));
    w->v = malloc(P * sizeof(float));
    w->u = malloc(P * sizeof(float));
    w->hv = malloc(P * sizeof(float));
    w->rt = malloc(P * sizeof(float));
    if (!w->ws || !w->thetas || !w->gs || !w->scales || !w->v || !w->u || !w->hv || !w->rt) return KGM_ENOMEM;
    return KGM_OK;
}

static void worker_free(worker *w)
{
    for (int j = 0; w->ws && j < w->n_ws; j++) kgm_mlp_ws_free(w->ws[j]);
    free(w->ws);
    free(w->thetas); free(w->gs); free(w->scales); free(w->v); free(w->u); free(w->hv); free(w->rt);
    kgm_episode_release(&w->task);
    memset(w, 0, sizeof *w);
}

/* Scratch big enough for batches of n rows. */
static int worker_fit(worker *w, const kgm_mlp *net, int n)
{
    if (w->ws_batch >= n) return KGM_OK;
    w->ws_batch = 0;
    for (int j = 0; j < w->n_ws; j++) {
        kgm_mlp_ws_free(w->ws[j]);
        w->ws[j] = kgm_mlp_ws_new(net, n);
        if (!w->ws[j]) return kgm_fail(KGM_ENOMEM, "cannot allocate network scratch for %d rows", n);
    }
    w->ws_batch = n;
    return KGM_OK;
}

static int check_config(const kgm_mlp *net, const kgm_meta_config *c, int cond_dim)
{
    if (c->learner < 0 || c->learner >= KGM_LEARNER_COUNT) return kgm_fail(KGM_EINVAL, "unknown learner %d", (int)c->learner);
    if (c->inner_steps < 1) return kgm_fail(KGM_EINVAL, "inner_steps must be >= 1, not %d", c->inner_steps);
    if (!(c->alpha > 0.0f)) return kgm_fail(KGM_EINVAL, "inner learning rate must be > 0");
    if (!(c->outer_lr > 0.0f)) return kgm_fail(KGM_EINVAL, "outer learning rate must be > 0");
    if (!(c->cond_lr >= 0.0f)) return kgm_fail(KGM_EINVAL, "conditioning learning rate must be >= 0 (0: the outer rate)");
    if (c->meta_batch < 1) return kgm_fail(KGM_EINVAL, "meta_batch must be >= 1, not %d", c->meta_batch);
    if (c->n_support < 1 || c->n_query < 1) return kgm_fail(KGM_EINVAL, "support and query sets need >= 1 example");
    if (c->threads < 1 || c->threads > 256) return kgm_fail(KGM_EINVAL, "threads must be 1..256, not %d", c->threads);
    if (c->iterations < 0) return kgm_fail(KGM_EINVAL, "iterations must be >= 0");
    if (c->val_every < 0 || (c->val_every > 0 && c->val_tasks < 1)) return kgm_fail(KGM_EINVAL, "validation needs val_tasks >= 1");
    if (!(c->rate_lr >= 0.0f)) return kgm_fail(KGM_EINVAL, "rate_lr must be >= 0 (0: the outer rate)");
    if (!(c->clip_norm >= 0.0f) || isinf(c->clip_norm))
        return kgm_fail(KGM_EINVAL, "clip_norm must be a finite number >= 0 (0: no clipping)");
    if (c->skip_nonfinite < 0) return kgm_fail(KGM_EINVAL, "skip_nonfinite must be >= 0 (0: stop at the first)");
    if (!(c->weight_decay >= 0.0f) || isinf(c->weight_decay))
        return kgm_fail(KGM_EINVAL, "weight_decay must be a finite number >= 0 (0: no decay)");
    if (c->lr_decay_steps < 0) return kgm_fail(KGM_EINVAL, "lr_decay_steps must be >= 0 (0: constant rates)");
    if (!(c->lr_floor >= 0.0f && c->lr_floor <= 1.0f)) return kgm_fail(KGM_EINVAL, "lr_floor must be in [0, 1]");
    if (c->outer_lr * c->weight_decay >= 1.0f)   /* theta* would be scaled by <= 0 each step */
        return kgm_fail(KGM_EINVAL, "weight_decay %g times outer learning rate %g must be < 1",
                        (double)c->weight_decay, (double)c->outer_lr);
    if (cond_dim < 0) return kgm_fail(KGM_EINVAL, "cond_dim must be >= 0");
    if (c->msl_steps < 0) return kgm_fail(KGM_EINVAL, "msl_steps must be >= 0 (0: the last step's loss only)");
    if (c->inner_backtrack < KGM_BACKTRACK_OFF || c->inner_backtrack > KGM_BACKTRACK_GROW)
        return kgm_fail(KGM_EINVAL, "inner_backtrack must be 0 (off), 1 (halve) or 2 (grow), not %d", c->inner_backtrack);
    if (c->msl_steps > 0 && (c->learner == KGM_FOMAML || c->learner == KGM_REPTILE))
        return kgm_fail(KGM_EINVAL, "the multi-step loss needs a second-order learner (maml, metasgd or anil), not %s",
                        kgm_learner_name(c->learner));
    if (c->cond_rates && (c->learner != KGM_METASGD || cond_dim == 0))
        return kgm_fail(KGM_EINVAL, "conditioned inner rates need the metasgd learner and a conditioning vector");
    if (net->n_params == 0) return kgm_fail(KGM_EINVAL, "network has no parameters");
    return KGM_OK;
}

int kgm_meta_new(kgm_meta **out, const kgm_mlp *net, const kgm_meta_config *cfg,
                 const kgm_init_stage *init, int cond_dim)
{
    *out = NULL;
    int rc = check_config(net, cfg, cond_dim);
    if (rc) return rc;
    kgm_meta *mt = calloc(1, sizeof *mt);
    if (!mt) return kgm_fail(KGM_ENOMEM, "cannot allocate a meta-learner");
    mt->net = *net;
    mt->cfg = *cfg;
    mt->init = init ? init : &kgm_init_none;
    mt->cond_dim = cond_dim;
    mt->P = net->n_params;
    mt->off_lr = mt->P;
    mt->off_phi = mt->P + (cfg->learner == KGM_METASGD ? mt->P : 0);
    mt->off_rmap = mt->off_phi + mt->init->n_params(net, cond_dim);
    mt->n_meta = mt->off_rmap + (cfg->cond_rates ? n_units(net) * (size_t)cond_dim : 0);
    mt->meta = calloc(mt->n_meta, sizeof(float));
    mt->best = calloc(mt->n_meta, sizeof(float));
    mt->adam_m = calloc(mt->n_meta, sizeof(float));
    mt->adam_v = calloc(mt->n_meta, sizeof(float));
    mt->fixed_lr = calloc(mt->P, sizeof(float));
    if (!mt->meta || !mt->best || !mt->adam_m || !mt->adam_v || !mt->fixed_lr || worker_init(&mt->w0, mt)) {
        size_t n_meta = mt->n_meta;
        kgm_meta_free(mt);
        return kgm_fail(KGM_ENOMEM, "cannot allocate a meta-learner of %zu parameters", n_meta);
    }
    kgm_taskrng rng;
    kgm_taskrng_seed(&rng, cfg->seed ^ DOMAIN_INIT, 0, 0);
    kgm_mlp_init_params(net, mt->meta, &rng);
    /* ANIL adapts the last layer only: rate 0 on every earlier parameter. */
    size_t first = cfg->learner == KGM_ANIL ? net->w_off[net->n_layers - 1] : 0;
    for (size_t i = first; i < mt->P; i++) mt->fixed_lr[i] = cfg->alpha;
    if (cfg->learner == KGM_METASGD)
        for (size_t i = 0; i < mt->P; i++) mt->meta[mt->off_lr + i] = cfg->alpha;
    mt->init->init_params(net, cond_dim, mt->meta + mt->off_phi);
    memcpy(mt->best, mt->meta, mt->n_meta * sizeof(float));
    *out = mt;
    return KGM_OK;
}

void kgm_meta_free(kgm_meta *mt)
{
    if (!mt) return;
    worker_free(&mt->w0);
    free(mt->meta); free(mt->best); free(mt->adam_m); free(mt->adam_v); free(mt->fixed_lr);
    free(mt);
}

float *kgm_meta_params(kgm_meta *mt) { return mt->meta; }
size_t kgm_meta_n_params(const kgm_meta *mt) { return mt->n_meta; }
const kgm_mlp *kgm_meta_net(const kgm_meta *mt) { return &mt->net; }
const kgm_meta_config *kgm_meta_cfg(const kgm_meta *mt) { return &mt->cfg; }
int kgm_meta_cond_dim(const kgm_meta *mt) { return mt->cond_dim; }
const kgm_init_stage *kgm_meta_init_stage(const kgm_meta *mt) { return mt->init; }

static const float *inner_rates(const kgm_meta *mt, const float *meta)
{
    return mt->cfg.learner == KGM_METASGD ? meta + mt->off_lr : mt->fixed_lr;
}

/* ---- conditioned inner rates (Meta-SGD with cond_rates) ----
 * Unit i of layer l (row i of W_l and entry i of b_l) scales its learned rates by
 * s = 1 + tanh(R_li e(t)), R (units, cond_dim) from 0, so training starts at plain Meta-SGD and
 * each scale stays in (0, 2). The meta-gradient: with q = dL/drt (what plain Meta-SGD gives
 * its rates), dL/dr = s q and dL/dR_li = (1 - tanh^2) (sum over the unit of q r) e^T. */
/* The rates of the task with conditioning vector e: r itself, or r scaled unit by unit into rt. */
static const float *task_rates(const kgm_meta *mt, const float *meta, const float *e, float *rt)
{
    const float *r = inner_rates(mt, meta), *R = meta + mt->off_rmap;
    if (mt->off_rmap == mt->n_meta) return r;
    const kgm_mlp *m = &mt->net;
    for (int l = 0; l < m->n_layers; l++) {
        const size_t in = (size_t)m->sizes[l];
        for (size_t i = 0; i < (size_t)m->sizes[l + 1]; i++, R += mt->cond_dim) {
            const float s = 1.0f + tanhf(film_dot(R, e, mt->cond_dim));
            const size_t w = m->w_off[l] + i * in, b = m->b_off[l] + i;
            for (size_t j = 0; j < in; j++) rt[w + j] = s * r[w + j];
            rt[b] = s * r[b];
        }
    }
    return rt;
}

/* grad holds dL/drt where the rates' gradient goes: make it dL/dr and add dL/dR. */
static void task_rates_backward(const kgm_meta *mt, const float *meta, const float *e, float *grad)
{
    if (mt->off_rmap == mt->n_meta) return;
    const kgm_mlp *m = &mt->net;
    const float *r = meta + mt->off_lr, *R = meta + mt->off_rmap;
    float *q = grad + mt->off_lr, *gR = grad + mt->off_rmap;
    for (int l = 0; l < m->n_layers; l++) {
        const size_t in = (size_t)m->sizes[l];
        for (size_t i = 0; i < (size_t)m->sizes[l + 1]; i++, R += mt->cond_dim, gR += mt->cond_dim) {
            const float t = tanhf(film_dot(R, e, mt->cond_dim));
            const size_t w = m->w_off[l] + i * in, b = m->b_off[l] + i;
            float qr = q[b] * r[b];
            q[b] *= 1.0f + t;
            for (size_t j = 0; j < in; j++) { qr += q[w + j] * r[w + j]; q[w + j] *= 1.0f + t; }
            for (int c = 0; c < mt->cond_dim; c++) gR[c] += qr * (1.0f - t * t) * e[c];
        }
    }
}

static int check_task(const kgm_meta *mt, const kgm_episode *t)
{
    const kgm_mlp *m = &mt->net;
    if (t->x_dim != m->sizes[0])
        return kgm_fail(KGM_EINVAL, "task inputs have %d columns, the network takes %d", t->x_dim, m->sizes[0]);
    int want_y = m->loss == KGM_LOSS_MSE ? m->sizes[m->n_layers] : 1;
    if (t->y_dim != want_y)
        return kgm_fail(KGM_EINVAL, "task outputs have %d columns, the network needs %d", t->y_dim, want_y);
    if (mt->cond_dim > 0 && (t->cond_dim != mt->cond_dim || !t->cond))
        return kgm_fail(KGM_EINVAL, "task has conditioning of dim %d, the learner needs %d", t->cond_dim, mt->cond_dim);
    return KGM_OK;
}

/* Backtracking (training's inner loop and test adaptation): halvings of a step before it is skipped. */
#define MAX_HALVINGS 30

/* The scale of the step after one accepted at try `tries`: KGM_BACKTRACK_GROW doubles it after
 * a first-try acceptance, up to KGM_BACKTRACK_MAX_SCALE. */
static float next_scale(int mode, int tries, float scale)
{
    return mode == KGM_BACKTRACK_GROW && tries == 0 && scale * 2.0f <= KGM_BACKTRACK_MAX_SCALE ? 2.0f * scale : scale;
}

/* The inner loop with the test adaptation's backtracking (backtrack_step): a step that does not
 * lower the support loss is retried at half the rates, which stay halved for the later steps;
 * after MAX_HALVINGS halvings the step is skipped (scale 0); with KGM_BACKTRACK_GROW a step
 * accepted at its first try doubles the scale of the next (up to KGM_BACKTRACK_MAX_SCALE). The
 * support pass at each accepted theta_j stays in ws[j], where the Hessian products of the
 * backward pass need it. */
static void inner_loop_backtracked(const kgm_meta *mt, worker *w, const float *r, const kgm_episode *t, int k)
{
    const size_t P = mt->P;
    float scale = 1.0f;
    double ls = kgm_mlp_loss_grad(&mt->net, w->ws[0], w->thetas, t->xs, t->ys, t->n_support, w->gs);
    for (int j = 0; j < k; j++) {
        const float *th = w->thetas + (size_t)j * P, *g = w->gs + (size_t)j * P;
        float *next = w->thetas + (size_t)(j + 1) * P, *g_next = j + 1 < k ? w->gs + (size_t)(j + 1) * P : NULL;
        int tries = 0;
        for (; tries < MAX_HALVINGS; tries++, scale *= 0.5f) {
            for (size_t i = 0; i < P; i++) next[i] = th[i] - scale * r[i] * g[i];
            double l = kgm_mlp_loss_grad(&mt->net, w->ws[j + 1], next, t->xs, t->ys, t->n_support, g_next);
            if (l <= ls) { ls = l; break; }   /* false for NaN too */
        }
        w->scales[j] = scale;
        scale = next_scale(mt->cfg.inner_backtrack, tries, scale);
        if (tries == MAX_HALVINGS) {   /* skipped: theta_{j+1} = theta_j */
            w->scales[j] = 0.0f;
            memcpy(next, th, P * sizeof(float));
            kgm_mlp_loss_grad(&mt->net, w->ws[j + 1], next, t->xs, t->ys, t->n_support, g_next);
        }
    }
}

/* theta_0 .. theta_k on the support set, from meta-parameters meta, at rates r: step j is
 * theta_{j+1} = theta_j - scales[j] r g_s(theta_j), scales[j] = 1 unless cfg.inner_backtrack. */
static void inner_loop(const kgm_meta *mt, worker *w, const float *meta, const float *r,
                       const kgm_episode *t, int k)
{
    const size_t P = mt->P;
    mt->init->forward(&mt->net, mt->cond_dim, meta, meta + mt->off_phi, t->cond, w->thetas);
    if (mt->cfg.inner_backtrack) {
        inner_loop_backtracked(mt, w, r, t, k);
        return;
    }
    for (int j = 0; j < k; j++) {
        const float *th = w->thetas + (size_t)j * P;
        float *g = w->gs + (size_t)j * P, *next = w->thetas + (size_t)(j + 1) * P;
        kgm_mlp_loss_grad(&mt->net, w->ws[j], th, t->xs, t->ys, t->n_support, g);
        for (size_t i = 0; i < P; i++) next[i] = th[i] - r[i] * g[i];
        w->scales[j] = 1.0f;
    }
}

/* Weight of the query loss after inner step j (1..k) in the meta-loss: msl_steps. */
static float step_weight(const kgm_meta *mt, int j)
{
    const int k = mt->cfg.inner_steps;
    if (mt->cfg.msl_steps <= 0) return j == k ? 1.0f : 0.0f;
    const float f = mt->adam_t >= mt->cfg.msl_steps ? 1.0f : (float)mt->adam_t / (float)mt->cfg.msl_steps;
    const float early = (1.0f - f) / (float)k;
    return j == k ? 1.0f - (float)(k - 1) * early : early;
}

static int task_grad(const kgm_meta *mt, worker *w, const float *meta, const kgm_episode *t,
                     float *grad, float *loss)
{
    const size_t P = mt->P;
    const int k = mt->cfg.inner_steps;
    const kgm_learner L = mt->cfg.learner;
    const float *r = task_rates(mt, meta, t->cond, w->rt);
    int rc = worker_fit(w, &mt->net, t->n_support > t->n_query ? t->n_support : t->n_query);
    if (rc) return rc;
    inner_loop(mt, w, meta, r, t, k);
    const float *thk = w->thetas + (size_t)k * P;
    float *v = w->v;
    const float wk = step_weight(mt, k);
    *loss = wk * kgm_mlp_loss_grad(&mt->net, w->ws[k], thk, t->xq, t->yq, t->n_query, v);
    for (size_t i = 0; wk != 1.0f && i < P; i++) v[i] *= wk;
    memset(grad, 0, mt->n_meta * sizeof(float));

    if (L == KGM_REPTILE) {
        for (size_t i = 0; i < P; i++) v[i] = w->thetas[i] - thk[i];
    } else if (L != KGM_FOMAML) {
        for (int j = k - 1; j >= 0; j--) {
            const float *th = w->thetas + (size_t)j * P, *g = w->gs + (size_t)j * P;
            const float sj = w->scales[j], wn = j + 1 < k ? step_weight(mt, j + 1) : 0.0f;
            if (wn > 0.0f) {   /* v is theta_{j+1}'s adjoint: add its own query loss (ws[j + 1] is free now) */
                const float *th_next = th + P;
                *loss += wn * kgm_mlp_loss_grad(&mt->net, w->ws[j + 1], th_next, t->xq, t->yq, t->n_query, w->u);
                for (size_t i = 0; i < P; i++) v[i] += wn * w->u[i];
            }
            if (L == KGM_METASGD)
                for (size_t i = 0; i < P; i++) grad[mt->off_lr + i] -= sj * g[i] * v[i];
            for (size_t i = 0; i < P; i++) w->u[i] = sj * r[i] * v[i];
            kgm_mlp_hvp_cached(&mt->net, w->ws[j], th, t->xs, t->n_support, w->u, w->hv);
            for (size_t i = 0; i < P; i++) v[i] -= w->hv[i];
        }
        task_rates_backward(mt, meta, t->cond, grad);
    }
    mt->init->backward(&mt->net, mt->cond_dim, meta, meta + mt->off_phi, t->cond, v, grad, grad + mt->off_phi);
    return KGM_OK;
}

int kgm_meta_task_grad(kgm_meta *mt, const kgm_episode *t, float *grad, float *loss)
{
    int rc = check_task(mt, t);
    return rc ? rc : task_grad(mt, &mt->w0, mt->meta, t, grad, loss);
}

/* ---- adaptation, prediction, evaluation ---- */
/* fast -= scale * rate * g, the rate alpha (> 0; 0 where the learner adapts nothing) or r. */
static void adapt_step(const kgm_meta *mt, float alpha, const float *r, float scale, const float *g, float *fast)
{
    for (size_t i = 0; i < mt->P; i++)
        fast[i] -= scale * (alpha > 0.0f ? (mt->fixed_lr[i] > 0.0f ? alpha : 0.0f) : r[i]) * g[i];
}

/* One backtracking step (kgm_meta_set_backtrack): a step that does not lower the support loss
 * *ls is undone and retried at half the task's scale *scale, at most 30 times, then skipped;
 * with KGM_BACKTRACK_GROW a step accepted at its first try doubles *scale for the next one
 * (up to KGM_BACKTRACK_MAX_SCALE). g: the support gradient at fast, replaced by the one at the
 * new point (scratch g_new). */
static void backtrack_step(kgm_meta *mt, const kgm_episode *t, float alpha, const float *r, float *scale,
                           double *ls, float **g, float **g_new, float *fast)
{
    worker *w = &mt->w0;
    memcpy(w->u, fast, mt->P * sizeof(float));
    for (int tries = 0; tries < MAX_HALVINGS; tries++, *scale *= 0.5f) {
        adapt_step(mt, alpha, r, *scale, *g, fast);
        double l = kgm_mlp_loss_grad(&mt->net, w->ws[0], fast, t->xs, t->ys, t->n_support, *g_new);
        if (l <= *ls) {   /* false for NaN too */
            float *tmp = *g; *g = *g_new; *g_new = tmp;
            *ls = l;
            *scale = next_scale(mt->backtrack, tries, *scale);
            return;
        }
        memcpy(fast, w->u, mt->P * sizeof(float));
    }
}

static int adapt_with(kgm_meta *mt, const kgm_episode *t, int steps, float alpha, float *fast,
                      const kgm_episode *query_tasks, double *query_loss)
{
    worker *w = &mt->w0;
    int rc = worker_fit(w, &mt->net, t->n_support > t->n_query ? t->n_support : t->n_query);
    if (rc) return rc;
    const float *r = task_rates(mt, mt->meta, t->cond, w->rt);
    mt->init->forward(&mt->net, mt->cond_dim, mt->meta, mt->meta + mt->off_phi, t->cond, fast);
    float *g = w->v, *g_new = w->hv, scale = 1.0f;
    double ls = mt->backtrack ? kgm_mlp_loss_grad(&mt->net, w->ws[0], fast, t->xs, t->ys, t->n_support, g) : 0.0;
    for (int s = 0; s <= steps; s++) {
        if (query_tasks)
            query_loss[s] = kgm_mlp_loss_grad(&mt->net, w->ws[0], fast, t->xq, t->yq, t->n_query, NULL);
        if (s == steps) break;
        if (mt->backtrack) {
            backtrack_step(mt, t, alpha, r, &scale, &ls, &g, &g_new, fast);
            continue;
        }
        kgm_mlp_loss_grad(&mt->net, w->ws[0], fast, t->xs, t->ys, t->n_support, g);
        adapt_step(mt, alpha, r, 1.0f, g, fast);
    }
    return KGM_OK;
}

void kgm_meta_set_backtrack(kgm_meta *mt, kgm_backtrack mode) { mt->backtrack = mode; }

int kgm_meta_adapt(kgm_meta *mt, const kgm_episode *t, int steps, float *fast)
{
    int rc = check_task(mt, t);
    if (rc) return rc;
    if (steps < 0) return kgm_fail(KGM_EINVAL, "steps must be >= 0, not %d", steps);
    return adapt_with(mt, t, steps, 0.0f, fast, NULL, NULL);
}

int kgm_meta_predict(kgm_meta *mt, const float *fast, const float *x, int n, float *out)
{
    if (n < 0) return kgm_fail(KGM_EINVAL, "negative row count %d", n);
    int rc = worker_fit(&mt->w0, &mt->net, n);
    if (rc) return rc;
    kgm_mlp_predict(&mt->net, mt->w0.ws[0], fast, x, n, out);
    return KGM_OK;
}

void kgm_stats_mean_ci(const double *x, int n, double *mean, double *ci95)
{
    double s = 0.0, ss = 0.0;
    for (int i = 0; i < n; i++) s += x[i];
    double mu = n > 0 ? s / n : 0.0;
    for (int i = 0; i < n; i++) ss += (x[i] - mu) * (x[i] - mu);
    *mean = mu;
    *ci95 = n > 1 ? 1.96 * sqrt(ss / (n - 1)) / sqrt((double)n) : 0.0;
}

int kgm_meta_evaluate(kgm_meta *mt, const kgm_tasksrc *src, const kgm_eval_spec *sp,
                      double *mean, double *ci)
{
    if (sp->n_tasks < 1 || sp->max_steps < 0 || sp->n_support < 1 || sp->n_query < 1)
        return kgm_fail(KGM_EINVAL, "evaluation needs >= 1 task, >= 0 steps, >= 1 support and query example");
    const int S = sp->max_steps + 1;
    double *loss = malloc((size_t)sp->n_tasks * (size_t)S * sizeof(double));
    double *col = malloc((size_t)sp->n_tasks * sizeof(double));
    float *fast = malloc(mt->P * sizeof(float));
    kgm_episode t;
    int rc = kgm_episode_alloc(&t, src, sp->n_support, sp->n_query);
    if (!loss || !col || !fast) rc = rc ? rc : kgm_fail(KGM_ENOMEM, "cannot allocate evaluation buffers");
    for (int j = 0; rc == KGM_OK && j < sp->n_tasks; j++) {
        kgm_taskrng rng;
        kgm_taskrng_seed(&rng, sp->seed ^ DOMAIN_EVAL, (uint64_t)j, 0);
        rc = kgm_episode_sample(src, &rng, &t);
        if (!rc) rc = check_task(mt, &t);
        if (!rc) rc = adapt_with(mt, &t, sp->max_steps, sp->alpha, fast, &t, loss + (size_t)j * (size_t)S);
    }
    for (int s = 0; rc == KGM_OK && s < S; s++) {
        for (int j = 0; j < sp->n_tasks; j++) col[j] = loss[(size_t)j * (size_t)S + (size_t)s];
        kgm_stats_mean_ci(col, sp->n_tasks, &mean[s], &ci[s]);
    }
    kgm_episode_release(&t);
    free(loss); free(col); free(fast);
    return rc;
}

/* ---- meta-training ---- */
typedef struct pool {
    kgm_meta *mt;
    const kgm_tasksrc *src;
    worker *workers;
    int n_threads, iteration, stop;
    float *grads;     /* (meta_batch, n_meta): one buffer per task, reduced in task order */
    float *losses;    /* (meta_batch) */
    int *rcs;         /* (meta_batch) */
    pthread_barrier_t start, done;
    pthread_mutex_t gate_mu;   /* the gate holds threads until the barriers exist */
    pthread_cond_t gate_cv;
    int gate_open;
} pool;

typedef struct thread_arg { pool *p; int id; } thread_arg;

/* Tasks id, id + T, id + 2T, ... of this iteration; each drawn from its own keyed stream. */
static void run_slice(pool *p, int id)
{
    kgm_meta *mt = p->mt;
    worker *w = &p->workers[id];
    for (int j = id; j < mt->cfg.meta_batch; j += p->n_threads) {
        kgm_taskrng rng;
        kgm_taskrng_seed(&rng, mt->cfg.seed, (uint64_t)p->iteration, (uint64_t)j);
        int rc = kgm_episode_sample(p->src, &rng, &w->task);
        if (!rc) rc = check_task(mt, &w->task);
        if (!rc) rc = task_grad(mt, w, mt->meta, &w->task, p->grads + (size_t)j * mt->n_meta, &p->losses[j]);
        p->rcs[j] = rc;
    }
}

static void *thread_main(void *arg)
{
    thread_arg *a = arg;
    pthread_mutex_lock(&a->p->gate_mu);
    while (!a->p->gate_open) pthread_cond_wait(&a->p->gate_cv, &a->p->gate_mu);
    pthread_mutex_unlock(&a->p->gate_mu);
    for (;;) {
        pthread_barrier_wait(&a->p->start);
        if (a->p->stop) break;
        run_slice(a->p, a->id);
        pthread_barrier_wait(&a->p->done);
    }
    return NULL;
}

/* The factor of every Adam rate at the learner's Adam step t (counted from 0): lr_decay_steps. */
static float rate_factor(const kgm_meta_config *c, long t)
{
    if (c->lr_decay_steps <= 0) return 1.0f;
    const double pi = 3.14159265358979323846, done = t < c->lr_decay_steps ? (double)t / c->lr_decay_steps : 1.0;
    return (float)(c->lr_floor + (1.0 - c->lr_floor) * 0.5 * (1.0 + cos(pi * done)));
}

static void adam_step(kgm_meta *mt, const float *g)
{
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, f = rate_factor(&mt->cfg, mt->adam_t);
    const float lr = f * mt->cfg.outer_lr, lr_phi = f * (mt->cfg.cond_lr > 0.0f ? mt->cfg.cond_lr : mt->cfg.outer_lr),
                lr_rate = f * (mt->cfg.rate_lr > 0.0f ? mt->cfg.rate_lr : mt->cfg.outer_lr);
    mt->adam_t++;
    const float c1 = 1.0f - powf(b1, (float)mt->adam_t), c2 = 1.0f - powf(b2, (float)mt->adam_t);
    if (mt->cfg.weight_decay > 0.0f) {   /* decoupled: on theta* before Adam's step, off its moments */
        const float keep = 1.0f - lr * mt->cfg.weight_decay;
        for (size_t i = 0; i < mt->off_lr; i++) mt->meta[i] *= keep;
    }
    /* theta*, then Meta-SGD's rates (none for the other learners), then the conditioner */
    const size_t from[3] = { 0, mt->off_lr, mt->off_phi }, to[3] = { mt->off_lr, mt->off_phi, mt->n_meta };
    const float rate[3] = { lr, lr_rate, lr_phi };
    for (int k = 0; k < 3; k++)
        kgm_adam_update(mt->meta + from[k], g + from[k], mt->adam_m + from[k], mt->adam_v + from[k],
                        to[k] - from[k], rate[k], b1, b2, eps, c1, c2);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int validate(kgm_meta *mt, const kgm_tasksrc *src, double *val)
{
    const kgm_meta_config *c = &mt->cfg;
    kgm_eval_spec sp = { .n_tasks = c->val_tasks, .max_steps = c->inner_steps, .n_support = c->n_support,
                         .n_query = c->n_query, .alpha = 0.0f, .seed = c->seed ^ DOMAIN_VALID };
    double mean[c->inner_steps + 1], ci[c->inner_steps + 1];
    int rc = kgm_meta_evaluate(mt, src, &sp, mean, ci);
    *val = mean[c->inner_steps];
    return rc;
}

/* L2 norm of x[0..n), accumulated in double (no overflow from finite floats); not finite
 * when an entry is not. */
static double l2_norm(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
    return sqrt(s);
}

/* One meta-iteration after the workers filled grads: reduce in task order, check, guard, step.
 * *bad_run counts the non-finite meta-batches in a row. */
static int reduce_and_step(kgm_meta *mt, pool *p, float *gsum, kgm_meta_stats *st, int *bad_run)
{
    const kgm_meta_config *c = &mt->cfg;
    const int B = c->meta_batch;
    double l = 0.0;
    for (int j = 0; j < B; j++) {
        if (p->rcs[j]) return p->rcs[j];
        l += p->losses[j];
    }
    const double loss = l / B;
    for (size_t i = 0; i < mt->n_meta; i++) {
        float s = 0.0f;
        for (int j = 0; j < B; j++) s += p->grads[(size_t)j * mt->n_meta + i];
        gsum[i] = s / (float)B;
    }
    const double norm = l2_norm(gsum, mt->n_meta);
    if (!isfinite(loss) || !isfinite(norm)) {
        if (!c->skip_nonfinite)
            return kgm_fail(KGM_ENUMERIC, "meta-training loss is %g, meta-gradient norm %g at iteration %d",
                            loss, norm, p->iteration);
        st->skipped++;
        if (++*bad_run >= c->skip_nonfinite)
            return kgm_fail(KGM_ENUMERIC, "%d meta-batches in a row with a loss or meta-gradient that is not"
                            " finite (last at iteration %d)", *bad_run, p->iteration);
        return KGM_OK;
    }
    *bad_run = 0;
    st->last_loss = loss;
    if (norm > st->max_grad_norm) st->max_grad_norm = norm;
    if (c->clip_norm > 0.0f && norm > c->clip_norm) {
        const float scale = (float)(c->clip_norm / norm);
        for (size_t i = 0; i < mt->n_meta; i++) gsum[i] *= scale;
        st->clipped++;
    }
    adam_step(mt, gsum);
    return KGM_OK;
}

static int train_loop(kgm_meta *mt, pool *p, const kgm_tasksrc *src, float *gsum, kgm_meta_stats *st)
{
    const kgm_meta_config *c = &mt->cfg;
    double t0 = now_s();
    int rc = KGM_OK, have_val = 0, bad_run = 0;
    for (int it = 0; it < c->iterations; it++) {
        if (kgm_interrupted()) { rc = kgm_fail(KGM_EINTR, "meta-training interrupted at iteration %d", it); break; }
        p->iteration = it;
        pthread_barrier_wait(&p->start);
        run_slice(p, 0);
        pthread_barrier_wait(&p->done);
        rc = reduce_and_step(mt, p, gsum, st, &bad_run);
        if (rc) break;
        st->iterations_done = it + 1;
        if (c->val_every > 0 && ((it + 1) % c->val_every == 0 || it + 1 == c->iterations)) {
            double val;
            if ((rc = validate(mt, src, &val))) break;
            if (!have_val || val < st->best_val) {
                st->best_val = val;
                st->best_iteration = it + 1;
                memcpy(mt->best, mt->meta, mt->n_meta * sizeof(float));
                have_val = 1;
                if (c->checkpoint && (rc = kgm_meta_save(mt, c->checkpoint))) break;
            }
        }
        double el = now_s() - t0;
        kgm_progress("meta-train %s: iteration %d/%d, loss %.4f, %.0f tasks/s", kgm_learner_name(c->learner),
                     it + 1, c->iterations, st->last_loss, el > 0 ? (it + 1) * (double)c->meta_batch / el : 0.0);
    }
    kgm_progress_done();
    st->seconds = now_s() - t0;
    /* Keep the best validated state, on success and on interruption alike. */
    if (have_val && (rc == KGM_OK || rc == KGM_EINTR)) memcpy(mt->meta, mt->best, mt->n_meta * sizeof(float));
    if ((rc == KGM_OK || rc == KGM_EINTR) && c->checkpoint) {
        int src = kgm_meta_save(mt, c->checkpoint);
        if (src) rc = src;
    }
    return rc;
}

int kgm_meta_train(kgm_meta *mt, const kgm_tasksrc *src, kgm_meta_stats *stats)
{
    const kgm_meta_config *c = &mt->cfg;
    kgm_meta_stats local = { .best_val = -1.0 };
    kgm_meta_stats *st = stats ? stats : &local;
    *st = local;
    if (src->x_dim != mt->net.sizes[0] || src->cond_dim != mt->cond_dim)
        return kgm_fail(KGM_EINVAL, "task source '%s' (x dim %d, cond dim %d) does not fit the learner (%d, %d)",
                        src->name, src->x_dim, src->cond_dim, mt->net.sizes[0], mt->cond_dim);
    const int T = c->threads < c->meta_batch ? c->threads : c->meta_batch;
    pool p = { .mt = mt, .src = src, .n_threads = T };
    p.workers = calloc((size_t)T, sizeof(worker));
    p.grads = malloc((size_t)c->meta_batch * mt->n_meta * sizeof(float));
    p.losses = calloc((size_t)c->meta_batch, sizeof(float));
    p.rcs = calloc((size_t)c->meta_batch, sizeof(int));
    float *gsum = malloc(mt->n_meta * sizeof(float));
    int rc = (p.workers && p.grads && p.losses && p.rcs && gsum) ? KGM_OK
           : kgm_fail(KGM_ENOMEM, "cannot allocate meta-training buffers");
    for (int i = 0; rc == KGM_OK && i < T; i++) {
        if (worker_init(&p.workers[i], mt) ||
            kgm_episode_alloc(&p.workers[i].task, src, c->n_support, c->n_query))
            rc = kgm_fail(KGM_ENOMEM, "cannot allocate worker %d", i);
    }
    pthread_t tids[256];
    thread_arg args[256];
    if (rc == KGM_OK) {
        /* Threads wait at the gate until we know how many started; a failed pthread_create
         * only means fewer threads, and the numbers do not depend on the count. */
        pthread_mutex_init(&p.gate_mu, NULL);
        pthread_cond_init(&p.gate_cv, NULL);
        int started = 0;
        for (int i = 1; i < T; i++) {
            args[i] = (thread_arg){ &p, i };
            if (pthread_create(&tids[i], NULL, thread_main, &args[i])) break;
            started++;
        }
        p.n_threads = started + 1;
        pthread_barrier_init(&p.start, NULL, (unsigned)p.n_threads);
        pthread_barrier_init(&p.done, NULL, (unsigned)p.n_threads);
        pthread_mutex_lock(&p.gate_mu);
        p.gate_open = 1;
        pthread_cond_broadcast(&p.gate_cv);
        pthread_mutex_unlock(&p.gate_mu);
        rc = train_loop(mt, &p, src, gsum, st);
        p.stop = 1;   /* release the workers */
        pthread_barrier_wait(&p.start);
        for (int i = 1; i <= started; i++) pthread_join(tids[i], NULL);
        pthread_barrier_destroy(&p.start);
        pthread_barrier_destroy(&p.done);
        pthread_cond_destroy(&p.gate_cv);
        pthread_mutex_destroy(&p.gate_mu);
    }
    for (int i = 0; p.workers && i < T; i++) worker_free(&p.workers[i]);
    free(p.workers); free(p.grads); free(p.losses); free(p.rcs); free(gsum);
    return rc;
}

double kgm_meta_flops_per_iteration(const kgm_meta *mt)
{
    const kgm_meta_config *c = &mt->cfg;
    const double P = (double)mt->P, k = c->inner_steps;
    double task = k * (kgm_mlp_flops_loss_grad(&mt->net, c->n_support) + 2.0 * P)   /* inner steps */
                + kgm_mlp_flops_loss_grad(&mt->net, c->n_query);                   /* query */
    if (c->learner == KGM_MAML || c->learner == KGM_ANIL || c->learner == KGM_METASGD)
        task += k * (kgm_mlp_flops_hvp_cached(&mt->net, c->n_support) + 2.0 * P            /* H (r v), v -= */
                     + (c->learner == KGM_METASGD ? 2.0 * P : 0.0));
    task += P;                                                                      /* init stage */
    return c->meta_batch * task + (double)c->meta_batch * (double)mt->n_meta       /* reduction */
           + 12.0 * (double)mt->n_meta;                                            /* Adam */
}

/* ---- model files ---- */
static int set_int(kgm_modelfile *mf, const char *key, long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", v);
    return kgm_modelfile_set(mf, key, buf);
}

int kgm_meta_save(const kgm_meta *mt, const char *path)
{
    const kgm_mlp *m = &mt->net;
    kgm_modelfile *mf = kgm_modelfile_new();
    if (!mf) return kgm_fail(KGM_ENOMEM, "cannot build model file %s", path);
    char sizes[256] = "", num[32];
    for (int l = 0; l <= m->n_layers; l++) {
        snprintf(num, sizeof num, l ? ",%d" : "%d", m->sizes[l]);
        strncat(sizes, num, sizeof sizes - strlen(sizes) - 1);
    }
    snprintf(num, sizeof num, "%.9g", (double)mt->cfg.alpha);
    int rc = kgm_modelfile_set(mf, "kind", "kgmeta-meta-learner");
    if (!rc) rc = kgm_modelfile_set(mf, "learner", kgm_learner_name(mt->cfg.learner));
    if (!rc) rc = kgm_modelfile_set(mf, "layers", sizes);
    if (!rc) rc = kgm_modelfile_set(mf, "activation", m->act == KGM_ACT_RELU ? "relu" : "tanh");
    if (!rc) rc = kgm_modelfile_set(mf, "loss", m->loss == KGM_LOSS_MSE ? "mse" : "xent");
    if (!rc) rc = set_int(mf, "inner_steps", mt->cfg.inner_steps);
    if (!rc) rc = kgm_modelfile_set(mf, "alpha", num);
    if (!rc) rc = kgm_modelfile_set(mf, "init", mt->init->name);
    if (!rc) rc = set_int(mf, "cond_dim", mt->cond_dim);
    if (!rc) rc = set_int(mf, "seed", (long)mt->cfg.seed);
    for (int l = 0; !rc && l < m->n_layers; l++) {
        char name[32];
        snprintf(name, sizeof name, "theta.W%d", l + 1);
        rc = kgm_modelfile_add(mf, name, m->sizes[l + 1], m->sizes[l], mt->meta + m->w_off[l]);
        snprintf(name, sizeof name, "theta.b%d", l + 1);
        if (!rc) rc = kgm_modelfile_add(mf, name, 1, m->sizes[l + 1], mt->meta + m->b_off[l]);
    }
    if (!rc && mt->off_phi > mt->off_lr)
        rc = kgm_modelfile_add(mf, "rates", 1, (int)mt->P, mt->meta + mt->off_lr);
    if (!rc && mt->off_rmap > mt->off_phi)
        rc = kgm_modelfile_add(mf, "init", 1, (int)(mt->off_rmap - mt->off_phi), mt->meta + mt->off_phi);
    if (!rc && mt->n_meta > mt->off_rmap) {   /* the key only in files that have the tensor */
        rc = set_int(mf, "cond_rates", 1);
        if (!rc) rc = kgm_modelfile_add(mf, "rate_map", (int)n_units(m), mt->cond_dim, mt->meta + mt->off_rmap);
    }
    if (!rc) rc = kgm_modelfile_save(mf, path);
    kgm_modelfile_free(mf);
    return rc;
}

static int need(const kgm_modelfile *mf, const char *path, const char *key, const char **out)
{
    *out = kgm_modelfile_get(mf, key);
    return *out ? KGM_OK : kgm_fail(KGM_EFORMAT, "%s: no '%s' in the model's configuration", path, key);
}

/* Rebuild the network description and the learner's settings from a file's configuration. */
static int config_from_file(const kgm_modelfile *mf, const char *path, kgm_mlp *m, kgm_meta_config *c,
                            const kgm_init_stage **init, int *cond_dim)
{
    const char *v;
    int rc, sizes[KGM_MLP_MAX_LAYERS + 2], n = 0;
    kgm_act act;
    kgm_loss loss;
    if ((rc = need(mf, path, "kind", &v))) return rc;
    if (strcmp(v, "kgmeta-meta-learner")) return kgm_fail(KGM_EFORMAT, "%s holds a '%s', not a meta-learner", path, v);
    if ((rc = need(mf, path, "layers", &v))) return rc;
    for (const char *p = v; *p && n < KGM_MLP_MAX_LAYERS + 2; n++) {
        char *end;
        sizes[n] = (int)strtol(p, &end, 10);
        if (end == p) return kgm_fail(KGM_EFORMAT, "%s: bad layers '%s'", path, v);
        p = *end == ',' ? end + 1 : end;
    }
    if ((rc = need(mf, path, "activation", &v)) || (rc = kgm_mlp_parse_act(v, &act))) return rc;
    if ((rc = need(mf, path, "loss", &v)) || (rc = kgm_mlp_parse_loss(v, &loss))) return rc;
    if ((rc = kgm_mlp_init(m, n - 1, sizes, act, loss))) return rc;
    if ((rc = need(mf, path, "learner", &v)) || (rc = kgm_learner_parse(v, &c->learner))) return rc;
    if ((rc = need(mf, path, "inner_steps", &v))) return rc;
    c->inner_steps = atoi(v);
    if ((rc = need(mf, path, "alpha", &v))) return rc;
    c->alpha = strtof(v, NULL);
    if ((rc = need(mf, path, "init", &v))) return rc;
    if (!(*init = kgm_init_find(v))) return kgm_fail(KGM_EFORMAT, "%s: unknown init stage '%s'", path, v);
    if ((rc = need(mf, path, "cond_dim", &v))) return rc;
    *cond_dim = atoi(v);
    if ((rc = need(mf, path, "seed", &v))) return rc;
    c->seed = strtoull(v, NULL, 10);
    c->cond_rates = (v = kgm_modelfile_get(mf, "cond_rates")) && atoi(v);   /* absent in older files */
    return KGM_OK;
}

int kgm_meta_load(kgm_meta **out, const char *path, const kgm_meta_config *cfg)
{
    *out = NULL;
    kgm_modelfile *mf;
    int rc = kgm_modelfile_load(&mf, path);
    if (rc) return rc;
    kgm_mlp m;
    kgm_meta_config c = kgm_meta_config_default();
    const kgm_init_stage *init = NULL;
    int cond_dim = 0;
    rc = config_from_file(mf, path, &m, &c, &init, &cond_dim);
    if (!rc && cfg) {
        if (cfg->learner != c.learner || cfg->inner_steps != c.inner_steps)
            rc = kgm_fail(KGM_EINVAL, "%s holds %s with %d inner steps, not %s with %d", path,
                          kgm_learner_name(c.learner), c.inner_steps, kgm_learner_name(cfg->learner), cfg->inner_steps);
        else { int cr = c.cond_rates; c = *cfg; c.cond_rates = cr; }   /* the file's layout decides */
    }
    kgm_meta *mt = NULL;
    if (!rc) rc = kgm_meta_new(&mt, &m, &c, init, cond_dim);
    for (int l = 0; !rc && l < m.n_layers; l++) {
        char name[32];
        const float *d;
        snprintf(name, sizeof name, "theta.W%d", l + 1);
        if (!(rc = kgm_modelfile_tensor(mf, name, m.sizes[l + 1], m.sizes[l], &d)))
            memcpy(mt->meta + m.w_off[l], d, (size_t)m.sizes[l + 1] * (size_t)m.sizes[l] * sizeof(float));
        snprintf(name, sizeof name, "theta.b%d", l + 1);
        if (!rc && !(rc = kgm_modelfile_tensor(mf, name, 1, m.sizes[l + 1], &d)))
            memcpy(mt->meta + m.b_off[l], d, (size_t)m.sizes[l + 1] * sizeof(float));
    }
    const float *d;
    if (!rc && mt->off_phi > mt->off_lr && !(rc = kgm_modelfile_tensor(mf, "rates", 1, (int)mt->P, &d)))
        memcpy(mt->meta + mt->off_lr, d, mt->P * sizeof(float));
    if (!rc && mt->off_rmap > mt->off_phi &&
        !(rc = kgm_modelfile_tensor(mf, "init", 1, (int)(mt->off_rmap - mt->off_phi), &d)))
        memcpy(mt->meta + mt->off_phi, d, (mt->off_rmap - mt->off_phi) * sizeof(float));
    if (!rc && mt->n_meta > mt->off_rmap &&
        !(rc = kgm_modelfile_tensor(mf, "rate_map", (int)n_units(&m), cond_dim, &d)))
        memcpy(mt->meta + mt->off_rmap, d, (mt->n_meta - mt->off_rmap) * sizeof(float));
    kgm_modelfile_free(mf);
    if (rc) { kgm_meta_free(mt); return rc; }
    memcpy(mt->best, mt->meta, mt->n_meta * sizeof(float));
    *out = mt;
    return KGM_OK;
}
