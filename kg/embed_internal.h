/* kg/embed_internal.h - shared between kg/embed.c, kg/linkpred.c and kg/foldin.c; not public.
 * Vector kernels, the training loop that fold-in reuses with most rows frozen, and the RNG. */
#ifndef KGM_EMBED_INTERNAL_H
#define KGM_EMBED_INTERNAL_H

#include "embed.h"

/* xoshiro256** seeded through splitmix64; one stream per thread, derived from (seed, stream). */
typedef struct { uint64_t s[4]; } emb_rng;
void     emb_rng_seed(emb_rng *g, uint64_t seed, uint64_t stream);
uint64_t emb_rng_next(emb_rng *g);
static inline uint32_t emb_rng_below(emb_rng *g, uint32_t n)   /* uniform in [0, n) */
{
    return (uint32_t)(((emb_rng_next(g) >> 32) * (uint64_t)n) >> 32);
}
static inline float emb_rng_uniform(emb_rng *g)                /* [0, 1) */
{
    return (float)(emb_rng_next(g) >> 40) * (1.0f / 16777216.0f);
}

/* Which rows a fit may change: entities with id >= first_free_ent, relations if train_rels. */
typedef struct {
    const kgm_triple *pos;
    size_t            n_pos;
    int32_t           first_free_ent;
    int               train_rels;
    int               threads;          /* resolved, >= 1 */
} emb_fit_spec;

typedef struct emb_fit emb_fit;
/* returns new: emb_fit_free(); optimizer state sized for e. */
emb_fit *emb_fit_new(kgm_emb *e, const kgm_emb_opts *o, const emb_fit_spec *spec);
void     emb_fit_free(emb_fit *f);
/* One epoch over spec->pos (each thread shuffles its slice). Returns the mean loss per
 * positive, or a negative value when interrupted between mini-batches. */
double   emb_fit_epoch(emb_fit *f);

float emb_score_rows(const kgm_emb *e, const float *h, const float *r, const float *t);
/* Adds g * ds/dx into gh, gr, gt (rows of the entity, relation, entity widths). */
void  emb_grad_rows(const kgm_emb *e, const float *h, const float *r, const float *t, float g,
                    float *gh, float *gr, float *gt);
/* Distance kernels: sum |a - b| (L1), sqrt(sum (a - b)^2) (L2), complex-modulus sum over
 * dim pairs laid out (re[dim], im[dim]). */
float emb_l1(const float *a, const float *b, int n);
float emb_l2(const float *a, const float *b, int n);
float emb_cmod(const float *a, const float *b, int dim);

int emb_threads(int requested);   /* <= 0: online cores */
double emb_now(void);             /* monotonic seconds */

#endif
