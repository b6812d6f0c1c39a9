/* kg/embed_internal.h - shared between kg/embed.c, kg/linkpred.c and kg/foldin.c; not public.
 * Vector kernels, the training loop that fold-in reuses with most rows frozen, and the RNG. */
#ifndef KGM_EMBED_INTERNAL_H
#define KGM_EMBED_INTERNAL_H

#include "embed.h"

/* The hot row kernels are built three times, for AVX-512, AVX2 and the x86-64 baseline, and
 * the loader picks the widest the CPU has (an ifunc). No build fuses a multiply and an add
 * (-ffp-contract=off, CMakeLists.txt), so every version computes the same numbers. GCC only:
 * clang 14 does not link calls from other files to a cloned function. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define HOT_KERNEL __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define HOT_KERNEL
#endif

/* e^x to within 2 ulp for -87.3 <= x <= 88, 0 below (where e^x is under the smallest normal
 * float); above 88 it is not defined. 2^n e^r with n = x / ln 2 rounded (adding 1.5 * 2^23
 * rounds, and leaves n in the low bits) and |r| <= ln 2 / 2, e^r by its Taylor series to r^7
 * (error below 2^-24 there). No branch, call or float-to-int conversion, so loops over it
 * vectorize (libm's expf is a call per element; a float clamp or select made GCC thread jumps
 * through the loop and give up). */
typedef union { float f; uint32_t u; } emb_fbits;
static inline float emb_expf(float x)
{
    const float magic = 12582912.0f;
    const emb_fbits big = { .f = x * 1.44269504088896341f + magic };
    const float nf = big.f - magic;
    /* ln 2 in two parts: the first has 8 significant bits, so nf times it is exact */
    const float r = (x - nf * 0.69140625f) - nf * 1.7409305599452862e-3f;
    const float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 +
                    r * (1.0f / 720 + r * (1.0f / 5040)))))));
    const emb_fbits scale = { .u = (big.u - 0x4B400000u + 127u) << 23 };   /* 2^n */
    emb_fbits y = { .f = p * scale.f };
    y.u &= -(uint32_t)(x >= -87.3f);
    return y.f;
}

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
static inline void emb_shuffle(emb_rng *g, int32_t *a, size_t n)   /* Fisher-Yates */
{
    for (size_t i = n; i > 1; i--) {
        size_t j = emb_rng_below(g, (uint32_t)i);
        int32_t tmp = a[i - 1]; a[i - 1] = a[j]; a[j] = tmp;
    }
}

/* Optimizer state of one table of rows (same layout as the parameters): Adagrad s1 = sum g^2;
 * Adam s1 = m, s2 = v and a step count per row (lazy Adam: a row steps when it has a gradient).
 * SGD has none. */
typedef struct { float *s1, *s2, *steps; } emb_opt_state;
int  emb_opt_state_alloc(emb_opt_state *st, kgm_emb_opt opt, size_t rows, int width);  /* 0 or -1 */
void emb_opt_state_free(emb_opt_state *st);
/* One step of o's optimizer on every row of x (rows, width) with gradient g: the dense update
 * 1vsAll needs, the same per-row step the sampled trainer takes for the rows it touches. */
void emb_opt_step_rows(const kgm_emb_opts *o, const emb_opt_state *st, size_t rows, int width,
                       float *x, const float *g);
/* The same step on rows ids[0..n) of x only, row ids[k] taking gradient g + k * width (packed):
 * sampled 1vsAll steps the rows its batch touched, leaving the others (and their Adam counts). */
void emb_opt_step_list(const kgm_emb_opts *o, const emb_opt_state *st, const int32_t *ids, size_t n,
                       int width, float *x, const float *g);

/* Negative sampling: which side to corrupt (50/50, or per relation "bern": the head with
 * probability tph / (tph + hpt), Wang et al. 2014) and, when filtering, a set of the positives
 * so that a corrupted triple that is itself a positive is drawn again (as Fast-TransX never
 * trains on a true triple as a negative). The set packs (h, r, t) into one 64-bit key in an
 * open-addressing table of at least twice the triples, built once. */
typedef struct {
    uint64_t *keys;          /* (mask + 1) slots, EMB_NEG_EMPTY when free; NULL: no filtering */
    size_t    mask;
    int       ebits, rbits;  /* bits of an entity id, of a relation id in a key */
    uint32_t *head_thresh;   /* (n_rels) bern: corrupt the head when low 32 bits < this; NULL: 50/50 */
    uint32_t  n_ents;
} emb_negs;
enum { EMB_NEG_TRIES = 256 };   /* draws before a positive is given up as having no negative */

/* 0, or KGM_ENOMEM / KGM_EINVAL (ids too wide to pack into 64 bits) with kgm_error(). */
int  emb_negs_init(emb_negs *s, const kgm_triple *pos, size_t n, size_t n_ents, size_t n_rels,
                   int filter, int bern);
void emb_negs_free(emb_negs *s);
int  emb_negs_contains(const emb_negs *s, int32_t h, int32_t r, int32_t t);
/* Draws a corruption of p: *ent replaces the head when *head, else the tail. first is the
 * first random draw (the fast path fetches it a step ahead to prefetch the row); it picks the
 * side, further draws only the entity. Returns 0 when no negative that is not a positive was
 * found on that side in EMB_NEG_TRIES draws (the caller then trains without it). */
int  emb_negs_draw(const emb_negs *s, emb_rng *g, uint64_t first, const kgm_triple *p,
                   int32_t *ent, unsigned char *head);

/* Which rows a fit may change: entities with id >= first_free_ent, relations if train_rels. */
typedef struct {
    const kgm_triple *pos;
    size_t            n_pos;
    int32_t           first_free_ent;
    int               train_rels;
    int               threads;          /* resolved, >= 1 */
} emb_fit_spec;

/* w[i] = o.subsample's weight of pos[i]: 1 / sqrt(8 + the triples with pos[i]'s head and
 * relation + those with its tail and relation), over the mean of those (the mean of w is 1).
 * KGM_ENOMEM after kgm_fail, or 0. */
int emb_subsample_weights(const kgm_triple *pos, size_t n, float *w);

typedef struct emb_fit emb_fit;
/* returns new: emb_fit_free(); optimizer state sized for e. */
emb_fit *emb_fit_new(kgm_emb *e, const kgm_emb_opts *o, const emb_fit_spec *spec);
void     emb_fit_free(emb_fit *f);
/* One epoch over spec->pos (each thread shuffles its slice). Returns the mean loss per
 * positive, or a negative value when interrupted between mini-batches. */
double   emb_fit_epoch(emb_fit *f);
void     emb_fit_set_lr(emb_fit *f, float lr);   /* for the epochs to come */

float emb_score_rows(const kgm_emb *e, const float *h, const float *r, const float *t);
/* Adds g * ds/dx into gh, gr, gt (rows of the entity, relation, entity widths): three distinct
 * buffers, none of them h, r or t (restrict lets the loops vectorize). */
void  emb_grad_rows(const kgm_emb *e, const float *h, const float *r, const float *t, float g,
                    float *restrict gh, float *restrict gr, float *restrict gt);
/* Distance kernels: sum |a - b| (L1), sqrt(sum (a - b)^2) (L2), complex-modulus sum over
 * dim pairs laid out (re[dim], im[dim]). */
float emb_l1(const float *a, const float *b, int n);
float emb_l2(const float *a, const float *b, int n);
float emb_cmod(const float *a, const float *b, int dim);

/* Adds the gradient of o's regularizer (o->reg_weight times L2 or N3, N3 over complex moduli
 * when complex_pairs) of row x into g. */
void emb_add_reg(const kgm_emb_opts *o, int complex_pairs, int dim, const float *x, float *g);

/* 1vsAll and KvsAll training (kg/onevsall.c), loss = KGM_EMB_LOSS_1VSALL or _KVSALL, DistMult and
 * ComplEx only. */
typedef struct emb_ova emb_ova;
/* returns new: emb_ova_free(); NULL when out of memory. pos is borrowed. */
emb_ova *emb_ova_new(kgm_emb *e, const kgm_emb_opts *o, const kgm_triple *pos, size_t n_pos);
void     emb_ova_free(emb_ova *t);
/* One epoch of mini-batches; returns the mean loss per query, or -1 when interrupted. */
double   emb_ova_epoch(emb_ova *t);
/* kvsall: gathers the batch of t's queries ids[0..n) (indexes into its distinct queries) as an
 * epoch does, sets heads[i] to whether the batch's query i asks for a head, and returns how
 * many queries come before the candidates' mask is drawn again (n without drop_per_side).
 * For tests. */
size_t   emb_ova_kvs_batch(emb_ova *t, const int32_t *ids, size_t n, int *heads);
void     emb_ova_set_lr(emb_ova *t, float lr);   /* for the epochs to come */
/* The 1vsAll loss of triples p (both queries of each, summed, no regularizer), adding
 * scale * its gradient into gent (n_ents, ent_width) and grel (kgm_emb_rel_rows(e), rel_width);
 * head queries are reciprocal when e->reciprocal. Queries are
 * scored against every entity when cand is NULL, else against the m distinct entities cand[]
 * only (the sampled loss for that candidate set), which must include every head and tail of p;
 * bias (m floats, or NULL) shifts each query's non-answer scores as o.logq's -log pi does.
 * With dropout (NULL: none) the masks are drawn as training draws them (per_side as
 * kgm_emb_opts.drop_per_side) from a stream seeded by seed: the same seed, the same masks.
 * For tests. Returns a negative value when out of memory or a head or tail is not in cand. */
typedef struct { float ent, rel; int per_side; uint64_t seed; } emb_ova_dropout;
double   emb_ova_loss_grad(const kgm_emb *e, const kgm_triple *p, size_t n, const int32_t *cand,
                           size_t m, const float *bias, const emb_ova_dropout *dropout,
                           float scale, float *gent, float *grel);

/* The kvsall loss of triples p's distinct queries (each asked once, as training asks them, all
 * against every entity in one batch) with label smoothing, adding scale * its gradient into
 * gent and grel as emb_ova_loss_grad, with dropout as there (NULL: none; per_side: the tail
 * and the head queries each through a candidate mask of their own). For tests. Negative when
 * out of memory. */
double   emb_kvs_loss_grad(const kgm_emb *e, const kgm_triple *p, size_t n, float smoothing,
                           const emb_ova_dropout *dropout, float scale, float *gent, float *grel);

/* log_w[x] = -log pi_x for each of n_ents entities: pi_x is the chance that x is in a sampled
 * 1vsAll batch's candidate set, a head or tail of one of `batch` triples drawn without
 * replacement from pos or one of `candidates` uniform draws (o.logq's weights). */
void     emb_ova_log_w(const kgm_triple *pos, size_t n_pos, size_t n_ents, int batch, int candidates,
                       float *log_w);

/* Row widths of model at dim (complex models keep re and im); KGM_EINVAL after kgm_fail when
 * dim is out of range. */
int      emb_widths(kgm_emb_model model, int dim, int *ent_width, int *rel_width);
/* An embedding's struct and tables, uninitialized (kgm_emb_new fills them from its options,
 * kgm_emb_load and kgm_emb_copy from data); NULL after kgm_fail on a bad dim or out of memory. */
kgm_emb *emb_alloc(kgm_emb_model model, int dim, size_t n_ents, size_t n_rels, int reciprocal);

int emb_threads(int requested);   /* <= 0: online cores */
double emb_now(void);             /* monotonic seconds */

/* ---- checkpoints (kg/checkpoint.c) ---- */
struct kgm_modelfile;
/* The training loop's state besides the parameters and the trainer's. */
typedef struct {
    int    epoch, best_epoch, since_best, lr_drops;
    double best_mrr, seconds;
    float  lr;
    const float *best_ent, *best_rel;   /* the best parameters so far, or NULL (save only) */
} emb_ckpt_loop;
/* Writes e, the loop's state and the trainer's (f, else fa) to path atomically. */
int emb_ckpt_save(const char *path, const kgm_emb *e, const kgm_emb_opts *o, size_t n_pos, int threads,
                  const emb_ckpt_loop *L, const emb_fit *f, const emb_ova *fa);
/* Reads them back into e, L, the trainer and best_ent/best_rel (*has_best: whether the file had
 * best parameters). Options that shape the state must match (KGM_EINVAL naming the first that
 * does not). On error e is unchanged; the trainer may be half restored (discard it). */
int emb_ckpt_load(const char *path, kgm_emb *e, const kgm_emb_opts *o, size_t n_pos, int threads,
                  emb_ckpt_loop *L, float *best_ent, float *best_rel, int *has_best, emb_fit *f, emb_ova *fa);
/* Pieces the trainers' put/get_state use: optimizer state under prefix, the permutation, an RNG. */
int emb_ckpt_put_opt(struct kgm_modelfile *mf, const char *prefix, const emb_opt_state *st, kgm_emb_opt opt,
                     size_t rows, int width);
int emb_ckpt_get_opt(const struct kgm_modelfile *mf, const char *prefix, const emb_opt_state *st,
                     kgm_emb_opt opt, size_t rows, int width);
int emb_ckpt_put_order(struct kgm_modelfile *mf, const int32_t *order, size_t n);
int emb_ckpt_get_order(const struct kgm_modelfile *mf, int32_t *order, size_t n);
int emb_ckpt_put_rng(struct kgm_modelfile *mf, const char *key, const emb_rng *g);
int emb_ckpt_get_rng(const struct kgm_modelfile *mf, const char *key, emb_rng *g);
int emb_fit_put_state(const emb_fit *f, struct kgm_modelfile *mf);
int emb_fit_get_state(emb_fit *f, const struct kgm_modelfile *mf);
int emb_ova_put_state(const emb_ova *t, struct kgm_modelfile *mf);
int emb_ova_get_state(emb_ova *t, const struct kgm_modelfile *mf);

#endif
