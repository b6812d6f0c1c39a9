/* models/tasksrc.c - task sources and the keyed random stream behind them. */
#include "tasksrc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* ---- keyed stream: splitmix64 over a state mixed from the key ---- */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void kgm_taskrng_seed(kgm_taskrng *r, uint64_t seed, uint64_t a, uint64_t b)
{
    /* Mixing each key part separately keeps (1, 2) and (2, 1) apart. */
    r->s = mix64(mix64(mix64(seed + 0x9e3779b97f4a7c15ULL) ^ a) + 0x632be59bd9b4e019ULL) ^ mix64(b);
}

uint64_t kgm_taskrng_next(kgm_taskrng *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return mix64(r->s);
}

double kgm_taskrng_uniform(kgm_taskrng *r, double lo, double hi)
{
    double u = (double)(kgm_taskrng_next(r) >> 11) * 0x1.0p-53;   /* [0, 1) */
    return lo + (hi - lo) * u;
}

/* ---- tasks ---- */
int kgm_episode_alloc(kgm_episode *t, const kgm_tasksrc *src, int n_support, int n_query)
{
    memset(t, 0, sizeof *t);
    if (n_support < 0 || n_query < 0)
        return kgm_fail(KGM_EINVAL, "task sizes must be >= 0 (support %d, query %d)", n_support, n_query);
    t->n_support = n_support;
    t->n_query = n_query;
    t->x_dim = src->x_dim;
    t->y_dim = src->y_dim;
    t->cond_dim = src->cond_dim;
    size_t ns = (size_t)n_support, nq = (size_t)n_query;
    t->xs = malloc((ns * (size_t)t->x_dim + 1) * sizeof(float));
    t->ys = malloc((ns * (size_t)t->y_dim + 1) * sizeof(float));
    t->xq = malloc((nq * (size_t)t->x_dim + 1) * sizeof(float));
    t->yq = malloc((nq * (size_t)t->y_dim + 1) * sizeof(float));
    if (t->cond_dim > 0) t->cond = malloc((size_t)t->cond_dim * sizeof(float));
    if (!t->xs || !t->ys || !t->xq || !t->yq || (t->cond_dim > 0 && !t->cond)) {
        kgm_episode_release(t);
        return kgm_fail(KGM_ENOMEM, "cannot allocate a task of %d + %d examples", n_support, n_query);
    }
    return KGM_OK;
}

void kgm_episode_release(kgm_episode *t)
{
    free(t->xs); free(t->ys); free(t->xq); free(t->yq); free(t->cond);
    memset(t, 0, sizeof *t);
}

int kgm_episode_sample(const kgm_tasksrc *src, kgm_taskrng *rng, kgm_episode *t)
{
    if (t->x_dim != src->x_dim || t->y_dim != src->y_dim || t->cond_dim != src->cond_dim)
        return kgm_fail(KGM_EINVAL, "task buffers do not fit source '%s'", src->name);
    return src->sample(src->ctx, rng, t);
}

/* ---- sinusoid ---- */
static int sinusoid_sample(void *ctx, kgm_taskrng *rng, kgm_episode *t)
{
    const kgm_sinusoid *c = ctx;
    double amp = kgm_taskrng_uniform(rng, 0.1, 5.0);
    double phase = kgm_taskrng_uniform(rng, 0.0, M_PI);
    for (int i = 0; i < t->n_support; i++) {
        double x = kgm_taskrng_uniform(rng, -5.0, 5.0);
        t->xs[i] = (float)x;
        t->ys[i] = (float)(amp * sin(x - phase));
    }
    for (int i = 0; i < t->n_query; i++) {
        double x = c && c->grid_query
            ? (t->n_query > 1 ? -5.0 + 10.0 * i / (t->n_query - 1) : 0.0)
            : kgm_taskrng_uniform(rng, -5.0, 5.0);
        t->xq[i] = (float)x;
        t->yq[i] = (float)(amp * sin(x - phase));
    }
    return KGM_OK;
}

void kgm_tasksrc_sinusoid(kgm_tasksrc *src, kgm_sinusoid *ctx)
{
    *src = (kgm_tasksrc){ .name = "sinusoid", .x_dim = 1, .y_dim = 1, .cond_dim = 0,
                          .ctx = ctx, .sample = sinusoid_sample };
}

/* ---- linear ---- */
static int linear_sample(void *ctx, kgm_taskrng *rng, kgm_episode *t)
{
    const kgm_linear *c = ctx;
    double a = kgm_taskrng_uniform(rng, -2.0, 2.0);
    double b = kgm_taskrng_uniform(rng, -2.0, 2.0);
    for (int i = 0; i < t->n_support + t->n_query; i++) {
        double x = kgm_taskrng_uniform(rng, -1.0, 1.0);
        float *xp = i < t->n_support ? &t->xs[i] : &t->xq[i - t->n_support];
        float *yp = i < t->n_support ? &t->ys[i] : &t->yq[i - t->n_support];
        *xp = (float)x;
        *yp = (float)(a * x + b);
    }
    if (c && c->cond) { t->cond[0] = (float)a; t->cond[1] = (float)b; }
    return KGM_OK;
}

void kgm_tasksrc_linear(kgm_tasksrc *src, kgm_linear *ctx)
{
    *src = (kgm_tasksrc){ .name = "linear", .x_dim = 1, .y_dim = 1,
                          .cond_dim = ctx && ctx->cond ? 2 : 0, .ctx = ctx, .sample = linear_sample };
}
