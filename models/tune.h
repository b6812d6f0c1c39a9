/* models/tune.h - tuning meta-learning hyperparameters by Bayesian optimization (models/bo.h),
 * with every trial recorded in the graph (kg/store.h) as an ML Schema run, so trials can be
 * queried with SPARQL, a search resumed from the store, and the best settings adopted.
 *
 * The space is text, parameters separated by blanks:
 *     "alpha=1e-4..1e-1:log steps=1..10:int outer_lr=1e-4..1e-2:log learner=maml|fomaml"
 * NAME=LO..HI (real), NAME=LO..HI:log (real, log scale), NAME=LO..HI:int, NAME=A|B|... .
 * Names: alpha (inner learning rate), steps or inner_steps, outer_lr, meta_batch (int),
 * learner (categorical over kgm_learner names).
 *
 * The objective of a trial is the meta-validation error after a budgeted meta-training:
 * kgm_meta_train with the trial's settings applied onto cfg->base and iterations = budget,
 * then kgm_meta_evaluate on cfg->val with cfg->eval; the score is the mean query loss after
 * cfg->eval.max_steps inner steps. A training that diverges (KGM_ENUMERIC) is a failed
 * trial, recorded with score NaN. cfg->objective replaces this by any function of the
 * applied config (tests, synthetic benchmarks); recording is the same.
 *
 * In the graph (IRIs under the search IRI S; mls: http://www.w3.org/ns/mls#, kgm:
 * http://kgmeta.org/ns#, see datasets/kgmeta.ttl):
 *     S a kgm:TuningSearch ; kgm:searchSpace "text" ; kgm:seed N ; kgm:budget N .
 *     S/trial/I a mls:Run ; kgm:partOfSearch S ; kgm:trialIndex I ;
 *         kgm:score "x"^^xsd:double ; mls:hasInput S/trial/I/NAME .
 *     S/trial/I/NAME a mls:HyperParameterSetting ; mls:specifiedBy kgm:InnerLearningRate ;
 *         mls:hasValue "v"^^xsd:double (or xsd:integer, or the category's label) .
 * Each trial is added in one all-or-nothing load, after it is evaluated.
 *
 * Ownership: everything in kgm_tune_config is borrowed for the call; the store is borrowed.
 * One thread per search (the store is single-threaded). */
#ifndef KGM_TUNE_H
#define KGM_TUNE_H

#include <stdint.h>

#include "../kg/store.h"
#include "bo.h"
#include "meta.h"

/* Parses a space (grammar above) into a new space (kgm_space_free), or KGM_EINVAL with a
 * one-line error naming the bad part; *out is untouched on error. */
int kgm_tune_space_parse(const char *text, kgm_space **out);

/* Writes the point's settings onto cfg (the other fields kept). */
int kgm_tune_apply(const kgm_space *space, const double *point, kgm_meta_config *cfg);

/* Optional replacement objective: the score (lower is better) of the config. */
typedef int (*kgm_tune_objective)(const kgm_meta_config *cfg, void *ctx, double *score);

typedef struct kgm_tune_config {
    const char *search;           /* IRI of the search (without <>), e.g. "http://ex.org/s1" */
    uint64_t seed;                /* the search's seed (suggestions), recorded */
    int budget;                   /* meta-iterations per trial, recorded */
    /* the meta-learning objective (unused with an objective function) */
    const kgm_mlp *net;
    kgm_meta_config base;         /* settings not tuned; iterations is set to budget */
    const kgm_tasksrc *train;     /* meta-training tasks */
    const kgm_tasksrc *val;       /* held-out tasks (may be the train source with eval.seed apart) */
    kgm_eval_spec eval;
    kgm_tune_objective objective; /* NULL: the meta-learning objective */
    void *objective_ctx;
} kgm_tune_config;

/* Starts the search cfg->search over space_text and runs n_trials trials one after the
 * other, recording each in st. The search IRI must not be in st yet (KGM_ESTATE). Polls
 * kgm_interrupted() before each trial (and meta-training polls it): KGM_EINTR keeping the
 * completed trials in st. On a parse error nothing is written. */
int kgm_tune_run(kgm_store *st, const kgm_tune_config *cfg, const char *space_text, int n_trials);

/* Resumes the search cfg->search from st: reads its space, seed and trials, replays them
 * (so the next suggestion is the one the uninterrupted search would have made) and runs
 * trials until n_trials are recorded. cfg->seed is ignored (the recorded seed is used). */
int kgm_tune_resume(kgm_store *st, const kgm_tune_config *cfg, int n_trials);

/* The best (lowest finite score) recorded trial of `search`: its settings applied onto
 * *cfg, its score and index in *score / *index (either may be NULL). KGM_ENOTFOUND when the
 * search has no successful trial; cfg unchanged on error. */
int kgm_tune_adopt(kgm_store *st, const char *search, kgm_meta_config *cfg, double *score,
                   int *index);

#endif
