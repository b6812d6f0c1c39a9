/* kg/embed.h - knowledge-graph embeddings on the integer view (kg/graph.h): TransE (L1, L2),
 * DistMult, ComplEx and RotatE; their training (negative sampling, margin or logistic loss,
 * L2/N3 regularization, SGD/Adagrad/Adam, pthreads), filtered link-prediction evaluation
 * (kg/linkpred.c), fold-in of entities added after training (kg/foldin.c), save/load, nearest
 * neighbours and triple scores.
 *
 * It is not a general tensor library: every model's score and gradient is a closed form written
 * by hand next to each other in kg/embed.c (checked against finite differences in the tests).
 *
 * Scores are "higher = more plausible" for every model:
 *   TransE   s = -||h + r - t||  (L1 or L2)
 *   DistMult s = <h, r, t>
 *   ComplEx  s = Re <h, r, conj(t)>          (rows: dim real parts, then dim imaginary parts)
 *   RotatE   s = -sum_i |h_i * e^{i theta_i} - t_i|  (entity rows complex as ComplEx;
 *                                                 relation rows: dim phases)
 * Threads update shared parameters without locks (Hogwild): rows of different triples rarely
 * collide and a lost update costs nothing measurable. Each thread's scratch sits in its own
 * cache-line aligned block, so threads never share a written line other than parameter rows.
 * With threads = 1 a run is exactly reproducible from its seed; with more threads the per-thread
 * random streams are still seeded, but the order of racing updates is not. */
#ifndef KGM_EMBED_H
#define KGM_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "graph.h"

typedef enum {
    KGM_EMB_TRANSE_L1, KGM_EMB_TRANSE_L2, KGM_EMB_DISTMULT, KGM_EMB_COMPLEX, KGM_EMB_ROTATE,
    KGM_EMB_MODEL_COUNT
} kgm_emb_model;
/* 1VSALL (DistMult, ComplEx): each triple's queries (h, r, ?) and (?, r, t) scored against every
 * entity, softmax cross-entropy on the answer (kg/onevsall.c). With candidates > 0 (and below the
 * entity count) a batch's queries are scored instead against a shared sample: the batch's heads
 * and tails plus `candidates` uniform draws ("1vsN", much faster on large graphs); candidates = 0
 * scores every entity. drop_ent / drop_rel > 0 train with dropout on the entity and relation
 * rows the scores read. negatives, adv_temp, gamma, margin, filter_negatives and bern are
 * unused, batch is the triples per optimizer step, threads are OpenBLAS's own. Fold-in still
 * samples negatives (softplus).
 * KVSALL (DistMult, ComplEx; Ruffinelli et al. 2020's KvsAll, from ConvE): training asks each
 * distinct query once, (h, r, ?) and (?, r, t) over all training triples, scored against every
 * entity, with softmax cross-entropy against a target distribution spread over all of its
 * known answers: ((1 - label_smoothing) [x is an answer] + 1 / n_ents), normalized to sum 1
 * (ConvE's label smoothing, LibKGE's kl loss). batch is the queries per optimizer step; dropout
 * and reciprocal relations as with 1VSALL; no sampled candidates.
 * Reciprocal relations (reciprocal = 1, 1VSALL and KVSALL only; Lacroix et al. 2018, Kazemi & Poole 2018):
 * every relation r also gets a row r^-1 (row n_rels + r of the relation table), and the head
 * query (?, r, t) is asked as the tail query (t, r^-1, ?), in training and in the filtered
 * evaluation alike, so head and tail directions stop sharing one vector (DistMult's score is
 * symmetric in h and t: without this it cannot tell (a, r, b) from (b, r, a)).
 * Sampled-softmax correction (logq = 1, sampled 1VSALL only): a candidate x other than the
 * query's answer enters the softmax's denominator as exp(s - log pi_x), pi_x its chance of
 * being in a batch's set (as a head or tail of the batch, or drawn), so the sampled denominator
 * is an unbiased (Horvitz-Thompson) estimate of the full one instead of over-weighting the
 * graph's hubs, which are in almost every batch. */
typedef enum { KGM_EMB_LOSS_MARGIN, KGM_EMB_LOSS_SOFTPLUS, KGM_EMB_LOSS_1VSALL, KGM_EMB_LOSS_KVSALL } kgm_emb_loss;
/* 1: a loss that scores queries against every entity (1VSALL, KVSALL; kg/onevsall.c) */
static inline int kgm_emb_loss_all(kgm_emb_loss l) { return l == KGM_EMB_LOSS_1VSALL || l == KGM_EMB_LOSS_KVSALL; }
typedef enum { KGM_EMB_OPT_SGD, KGM_EMB_OPT_ADAGRAD, KGM_EMB_OPT_ADAM } kgm_emb_opt;
typedef enum { KGM_EMB_REG_NONE, KGM_EMB_REG_L2, KGM_EMB_REG_N3 } kgm_emb_reg;

typedef struct {
    kgm_emb_model model;
    int          dim;          /* real dims (TransE/DistMult) or complex dims (ComplEx/RotatE) */
    kgm_emb_loss loss;
    float        margin;       /* margin loss: max(0, margin - s+ + s-) */
    float        gamma;        /* softplus loss on distance models: logit = gamma + s */
    float        adv_temp;     /* > 0: self-adversarial negative weights softmax(adv_temp * s-) */
    kgm_emb_opt  opt;
    float        lr;
    kgm_emb_reg  reg;
    float        reg_weight;
    int          negatives;    /* corrupted triples per positive (head or tail, 50/50 or bern),
                                  1..4096 (not 1vsall) */
    int          candidates;   /* 1vsall: uniformly drawn candidates per batch besides its heads
                                  and tails, >= 0; 0 = every entity is a candidate */
    float        label_smoothing;  /* kvsall: in [0, 1), the target's smoothing (above) */
    float        decay_ent, decay_rel; /* full 1vsall, kvsall: >= 0, each optimizer step adds decay
                                  times every entity / relation row to its gradient: the gradient
                                  of decay / 2 times the table's squared norm added to each
                                  batch's loss (LibKGE's unweighted L2 penalty) */
    float        drop_ent, drop_rel;   /* 1vsall, kvsall: dropout rate of entity / relation rows in
                                  training, [0, 1); each query's rows get their own masks, the
                                  candidates one mask per batch */
    int          drop_per_side; /* 1vsall, kvsall with drop_ent > 0: 0 or 1, a fresh candidate
                                  mask for each side of a batch (its tail queries, its head
                                  queries: LibKGE scores each side in a call of its own, which
                                  draws its own mask) instead of one for both */
    int          reciprocal;   /* 1vsall, kvsall: 0 or 1, reciprocal relations (above) */
    int          logq;         /* sampled 1vsall: 0 or 1, weight each drawn candidate's score by
                                  1 / its chance of being drawn (below) */
    int          filter_negatives; /* redraw a corrupted triple that is a training triple */
    int          bern;         /* corrupt the head with probability tph / (tph + hpt) per relation
                                  (Wang et al. 2014) instead of 50/50 */
    int          subsample;    /* sampled negatives (not 1vsall): 0 or 1, weight each positive's
                                  loss and its negatives' by 1 / sqrt(count(h, r) + count(t, r^-1))
                                  over the mean weight, counts starting at 4 (the RotatE paper's
                                  code), so the many triples of a hub weigh less each */
    int          batch;        /* positives per mini-batch: the unit of interrupt polls. Updates
                                  are applied per positive (with its negatives), Hogwild-style,
                                  not averaged over the batch */
    int          epochs;
    int          threads;      /* <= 0: all online cores */
    uint64_t     seed;
    int          normalize;    /* TransE: rows start projected onto the unit ball (L2 norm <= 1,
                                  not stretched to 1) and touched entity and relation rows are
                                  projected again after each update (as Fast-TransX does) */
    float        init_scale;   /* initial values uniform in +-init_scale (0: model default) */
    float        init_low;     /* < 0: initial values uniform in [init_low, init_scale) instead
                                  (LibKGE's uniform_ with only `a` set draws from [a, 1)); 0: off.
                                  RotatE's phases stay uniform in +-pi */
    int          eval_every;   /* epochs between validation MRR checks (0: never) */
    int          patience;     /* stop after this many checks without improvement (0: never) */
    float        lr_drop;      /* in [0, 1): when patience runs out, the learning rate is
                                  multiplied by this and training goes on from where it is (the
                                  optimizer's state kept), lr_drops times before patience stops
                                  it (as the RotatE paper divides Adam's rate by 10 halfway) */
    int          lr_drops;     /* >= 0; > 0 needs lr_drop > 0 and patience > 0 */
    const char  *checkpoint;   /* NULL, or a file (kg/checkpoint.c) rewritten with the whole
                                  training state after each validation check (each epoch
                                  without validation); borrowed */
    int          resume;       /* 1: start from checkpoint's state instead of e's (its epochs
                                  count toward epochs); one thread resumes bit for bit */
    /* NULL, or called after each validation check with its epoch, validation MRR and the
       learning rate for the epochs to come (after a drop, the dropped one); ctx is passed on */
    void       (*on_check)(void *ctx, int epoch, double valid_mrr, float lr);
    void        *on_check_ctx;
} kgm_emb_opts;

typedef struct kgm_emb {
    kgm_emb_model model;
    int     dim;
    int     ent_width, rel_width;   /* floats per entity row / relation row */
    size_t  n_ents, n_rels;         /* n_rels: the graph's relations, reciprocal or not */
    int     reciprocal;             /* 1: row n_rels + r is r^-1, the head queries' relation */
    float  *ent;                    /* (n_ents, ent_width) */
    float  *rel;                    /* (kgm_emb_rel_rows(e), rel_width) */
} kgm_emb;

/* Rows of e->rel: n_rels, or 2 n_rels with reciprocal relations. */
static inline size_t kgm_emb_rel_rows(const kgm_emb *e) { return e->reciprocal ? 2 * e->n_rels : e->n_rels; }

/* Filtered link-prediction figures over both sides (head and tail) of each triple. A rank is
 * the mean of the optimistic and the pessimistic rank among candidates with equal scores;
 * MRR, mean rank and Hits@k are all computed from that rank. */
typedef struct {
    double mrr, mean_rank, hits1, hits3, hits10;
    size_t n;                       /* ranks averaged: 2 per triple */
    double mrr_optimistic;          /* MRR with ties ranked first (rank 1 + #strictly better), as
                                       Fast-TransX's and OpenKE's tests count */
    size_t tied;                    /* ranks where a kept candidate had exactly the target's
                                       score: when 0, every way of ranking ties gives these figures */
} kgm_lp_metrics;

/* What training did; figures measured on the validation split when one was given. */
typedef struct {
    int    epochs_run, best_epoch;
    double best_valid_mrr;          /* -1 when no validation was run */
    double seconds;                 /* training time, evaluation excluded */
    double triples_per_s;           /* positives per second */
    double last_loss;               /* mean loss per positive in the last epoch */
    int    lr_drops;                /* learning-rate drops taken (kgm_emb_opts.lr_drop) */
    float  last_lr;                 /* the learning rate at the end */
    int    interrupted;
} kgm_emb_report;

const char *kgm_emb_model_name(kgm_emb_model m);           /* "transe-l1", ... */
int  kgm_emb_model_parse(const char *name, kgm_emb_model *out);    /* 0 or KGM_EINVAL */
void kgm_emb_opts_default(kgm_emb_opts *o, kgm_emb_model m);       /* sensible per-model defaults */

/* returns new: kgm_emb_free(); NULL with kgm_error() on a bad option or out of memory.
 * Parameters are initialized from o->seed. n_rels is the graph's relation count; with
 * o->reciprocal the table gets 2 n_rels rows (the first n_rels drawn as without). */
kgm_emb *kgm_emb_new(const kgm_emb_opts *o, size_t n_ents, size_t n_rels);
/* returns new: kgm_emb_free(); a copy of src's model, shape and vectors; NULL when out of memory */
kgm_emb *kgm_emb_copy(const kgm_emb *src);
void     kgm_emb_free(kgm_emb *e);                         /* NULL is a no-op */

/* Train on g's triples (borrowed); o->model, dim and reciprocal must be e's. valid may be
 * NULL; with it and o->eval_every > 0 the validation MRR is checked every eval_every epochs
 * and the best parameters are kept (filtered against g's triples, valid and extra_known). On
 * interrupt (kgm_interrupted()) returns KGM_EINTR with the best state so far in e; report is
 * filled either way. */
int kgm_emb_train(kgm_emb *e, const kgm_graph *g, const kgm_emb_opts *o,
                  const kgm_triple *valid, size_t n_valid,
                  const kgm_triple *extra_known, size_t n_extra, kgm_emb_report *report);

/* ---- look-ups ---- */
/* The forward score s(h, r, t), reciprocal or not (r < n_rels). ids must be valid. */
float kgm_emb_score(const kgm_emb *e, int32_t h, int32_t r, int32_t t);
/* Scores of (h, r, every entity) when side = 't', of (every entity, r, t) when 'h'.
 * scores: (e->n_ents). The fixed entity is the one not being replaced. With reciprocal
 * relations side 'h' scores s(t, r^-1, x), the query training asks and evaluation ranks. */
void  kgm_emb_score_all(const kgm_emb *e, int side, int32_t h, int32_t r, int32_t t, float *scores);
/* The k entities with the highest cosine similarity to ent (ent itself excluded), best first.
 * out_ids/out_sims: (k); returns how many were written, or KGM_EINVAL. */
int   kgm_emb_neighbours(const kgm_emb *e, int32_t ent, int k, int32_t *out_ids, float *out_sims);

/* ---- evaluation (kg/linkpred.c) ---- */
/* Filtered ranks of triples (both sides): candidates forming a triple in `known` (the union of
 * every split, borrowed) other than the one being ranked are left out. threads <= 0: all cores. */
int kgm_lp_evaluate(const kgm_emb *e, const kgm_triple *triples, size_t n,
                    const kgm_triple *const *known, const size_t *n_known, int n_sets,
                    int threads, kgm_lp_metrics *out);
/* Rank of scores[target] among scores[0..n) (skip[i] != 0 leaves candidate i out):
 * 1 + #greater + #equal / 2. The building block of kgm_lp_evaluate, public for tests. */
double kgm_lp_rank(const float *scores, size_t n, size_t target, const unsigned char *skip);

/* ---- fold-in (kg/foldin.c) ---- */
/* Adds n_new entities (ids e->n_ents .. e->n_ents + n_new - 1) and fits only their rows to
 * `triples` (each must touch at least one new entity; relations and old entities stay frozen),
 * with o's loss, negatives, optimizer and lr for o->epochs epochs, single-threaded. With
 * reciprocal relations (e's flag; o->reciprocal is not read) each triple (h, r, t) is also
 * fitted as (t, r^-1, h), the form head queries take. Then ranks
 * these triples (filtered by known sets and by `triples`) into out (may be NULL).
 * On error e is unchanged. */
int kgm_emb_foldin(kgm_emb *e, size_t n_new, const kgm_triple *triples, size_t n,
                   const kgm_emb_opts *o, const kgm_triple *const *known, const size_t *n_known,
                   int n_sets, kgm_lp_metrics *out);

/* ---- files ---- the project's model file (src/modelfile.h; see kg/foldin.c for the keys) */
int kgm_emb_save(const kgm_emb *e, const char *path);
int kgm_emb_load(kgm_emb **out, const char *path);       /* *out returns new: kgm_emb_free() */

#endif
