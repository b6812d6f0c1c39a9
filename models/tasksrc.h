/* models/tasksrc.h - where meta-learning tasks come from: a small callback interface, the
 * MAML sinusoid family and a linear family (y = a x + b, the tests' problem with a known
 * answer). The knowledge graph plugs its tasks in here (issue 6) by filling a kgm_tasksrc.
 *
 * Randomness comes from kgm_taskrng, a counter-keyed stream: the stream for (seed, a, b)
 * is the same whichever thread draws from it, so results do not depend on scheduling.
 * (Stand-in until the core's RNG streams land; the keying contract stays the same.)
 *
 * Ownership: a kgm_episode owns its buffers (kgm_episode_alloc / kgm_episode_release); a source's
 * ctx belongs to whoever built the source. */
#ifndef KGM_TASKSRC_H
#define KGM_TASKSRC_H

#include <stdint.h>

typedef struct kgm_taskrng { uint64_t s; } kgm_taskrng;

/* Stream keyed by (seed, a, b), e.g. (seed, iteration, task index). */
void   kgm_taskrng_seed(kgm_taskrng *r, uint64_t seed, uint64_t a, uint64_t b);
uint64_t kgm_taskrng_next(kgm_taskrng *r);
double kgm_taskrng_uniform(kgm_taskrng *r, double lo, double hi);   /* [lo, hi) */

/* An episode: one task's sampled support set (xs, ys) and query set (xq, yq), rows of
 * x_dim / y_dim floats (the task as a graph node is kg/tasks.h's kgm_task).
 * For classification y_dim is 1 and holds the class index as a float. cond is the task's
 * conditioning vector e(t) (cond_dim floats) or NULL when the run has none. */
typedef struct kgm_episode {
    int n_support, n_query, x_dim, y_dim, cond_dim;
    float *xs, *ys;   /* (n_support, x_dim), (n_support, y_dim) */
    float *xq, *yq;   /* (n_query, x_dim),   (n_query, y_dim)   */
    float *cond;      /* (cond_dim) or NULL */
} kgm_episode;

typedef struct kgm_tasksrc {
    const char *name;
    int x_dim, y_dim, cond_dim;   /* cond_dim 0: tasks carry no conditioning vector */
    void *ctx;
    /* Fill t's buffers (already sized: t->n_support, t->n_query) from rng.
     * Returns 0 or a negative KGM_E* code (with kgm_fail). */
    int (*sample)(void *ctx, kgm_taskrng *rng, kgm_episode *t);
} kgm_tasksrc;

/* Size t's buffers for src; returns 0 or KGM_ENOMEM. Release with kgm_episode_release. */
int  kgm_episode_alloc(kgm_episode *t, const kgm_tasksrc *src, int n_support, int n_query);
void kgm_episode_release(kgm_episode *t);          /* frees the buffers; zeroes t */
int  kgm_episode_sample(const kgm_tasksrc *src, kgm_taskrng *rng, kgm_episode *t);

/* ---- built-in families ---- */
/* MAML sinusoid: A in [0.1, 5], phase in [0, pi], x in [-5, 5], y = A sin(x - phase).
 * With grid_query nonzero the query x are an even grid over [-5, 5] (the reference's
 * evaluation) instead of random points. */
typedef struct kgm_sinusoid { int grid_query; } kgm_sinusoid;
void kgm_tasksrc_sinusoid(kgm_tasksrc *src, kgm_sinusoid *ctx);

/* Linear: a in [-2, 2], b in [-2, 2], x in [-1, 1], y = a x + b. With cond nonzero the
 * task's conditioning vector is (a, b) itself (cond_dim 2), for tests of conditioning. */
typedef struct kgm_linear { int cond; } kgm_linear;
void kgm_tasksrc_linear(kgm_tasksrc *src, kgm_linear *ctx);

#endif
