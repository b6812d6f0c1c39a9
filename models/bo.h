/* models/bo.h - Bayesian optimization over a mixed search space: a GP surrogate (models/gp.h)
 * and expected improvement, minimizing a caller's objective.
 *
 * A search space is a list of named parameters: real (linear or log scale), integer, or
 * categorical. A point is one double per parameter in space order: the real value, the integer
 * value, or the category's index. For the GP each parameter is encoded into the unit cube:
 * real and integer ones into one coordinate (log scale before scaling where asked; an integer
 * at the centre of its cell), a categorical one one-hot into one coordinate per category.
 *
 * The search proposes `n_init` Latin-hypercube points first, then maximizes expected
 * improvement of the refitted GP (random candidates plus coordinate-search refinement).
 * Every evaluation is a trial {point, score}; the caller may persist trials and replay them
 * into a new search over the same space with kgm_bo_observe() to resume it. Every suggestion
 * depends only on (seed, trials so far), so a resumed search proposes exactly what the
 * uninterrupted one would have.
 *
 * Random numbers: src/rng.h streams keyed (seed, purpose, trial index).
 * Not here: parallel evaluation, constraints, noise-aware incumbents. One thread per search. */
#ifndef KGM_BO_H
#define KGM_BO_H

#include <stdint.h>

/* ---- search space ---- */

typedef enum { KGM_PARAM_REAL, KGM_PARAM_INT, KGM_PARAM_CAT } kgm_param_kind;

typedef struct kgm_space kgm_space;                     /* opaque */

kgm_space *kgm_space_new(void);                         /* returns new: kgm_space_free() */
void       kgm_space_free(kgm_space *s);                /* NULL is a no-op */
/* Each adder returns 0 or KGM_EINVAL (duplicate or empty name, empty range, log scale with
 * lo <= 0, fewer than 2 or duplicate labels); on error the space is unchanged. Names and labels
 * are copied. */
int kgm_space_add_real(kgm_space *s, const char *name, double lo, double hi, int log_scale);
int kgm_space_add_int(kgm_space *s, const char *name, long lo, long hi);
int kgm_space_add_cat(kgm_space *s, const char *name, int n_labels, const char *const *labels);

int            kgm_space_size(const kgm_space *s);                  /* number of parameters */
const char    *kgm_space_name(const kgm_space *s, int j);
kgm_param_kind kgm_space_kind(const kgm_space *s, int j);
int            kgm_space_find(const kgm_space *s, const char *name); /* index, or -1 */
int            kgm_space_n_labels(const kgm_space *s, int j);        /* 0 unless categorical */
const char    *kgm_space_label(const kgm_space *s, int j, int index); /* NULL when out of range */
int            kgm_space_label_index(const kgm_space *s, int j, const char *label); /* or -1 */
/* 0 when `point` (kgm_space_size values) lies in the space, else KGM_EINVAL naming the parameter. */
int            kgm_space_check(const kgm_space *s, const double *point);

/* ---- the search ---- */

typedef struct kgm_bo kgm_bo;                           /* opaque */

typedef struct {
    const double *point;    /* kgm_space_size values, owned by the search */
    double        score;    /* objective value; NaN or inf records a failed evaluation */
} kgm_bo_trial;

/* Evaluates `point` and stores its score (lower is better). Returns 0, or a KGM_E* code that
 * stops kgm_bo_run() without recording the trial (KGM_EINTR when itself interrupted). */
typedef int (*kgm_bo_objective)(const double *point, void *ctx, double *score);

/* Takes `space`, even when it fails. */
int  kgm_bo_new(kgm_bo **out, kgm_space *space, uint64_t seed);
void kgm_bo_free(kgm_bo *bo);                           /* NULL is a no-op */
const kgm_space *kgm_bo_space(const kgm_bo *bo);
/* Number of initial Latin-hypercube points (default: min(10, 2 * size + 1)); set before the first trial. */
int  kgm_bo_set_init(kgm_bo *bo, int n_init);

/* Writes the next point to evaluate into `point` (kgm_space_size values). */
int  kgm_bo_suggest(kgm_bo *bo, double *point);
/* Records a trial: any point in the space (a suggestion, a replayed record, a hand-picked
 * setting). Non-finite scores are kept as failures; the GP sees them as the worst finite score. */
int  kgm_bo_observe(kgm_bo *bo, const double *point, double score);
/* Runs `n_evals` more evaluations one after the other, with a progress line. Polls
 * kgm_interrupted() before each: returns KGM_EINTR keeping every completed trial. An error
 * from the objective is returned as is (the trials before it are kept). */
int  kgm_bo_run(kgm_bo *bo, kgm_bo_objective f, void *ctx, int n_evals);

int          kgm_bo_n_trials(const kgm_bo *bo);
kgm_bo_trial kgm_bo_get_trial(const kgm_bo *bo, int i); /* 0 <= i < n_trials */
int          kgm_bo_best(const kgm_bo *bo);             /* index of the lowest finite score, or -1 */

#endif
