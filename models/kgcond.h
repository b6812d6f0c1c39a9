/* models/kgcond.h - knowledge-graph-conditioned meta-learning (issue 6): from an open store,
 * the task set (kg/tasks.h), the descriptive graph (no plumbing), a graph embedding trained on
 * it without the meta-test tasks (or one given), each task's conditioning vector
 *   e(t) = [embedding row of the task node | the task's normalized kgm:TaskFeature literals
 *           | one-hot codes of its kgm:CategoricalTaskFeature values]
 * with meta-test tasks (absent from the embedding) folded in, task sources per role for the
 * meta-learners (models/meta.h), and results written back into the graph (ML Schema).
 *
 * Categorical codes: one column per (declared property, IRI value seen on a meta-train task),
 * properties and values in IRI order; 1 when the task has that value, so a missing or unseen
 * value leaves the property's columns at 0. A coarse attribute such as "scale band High" then
 * reaches the init map as a usable bit, which a TransE row mixes with everything else.
 *
 * Generator parameters and data plumbing never reach e(t): the embedding sees only the
 * descriptive graph, the features are the declared task features only, a property of the
 * kgm: vocabulary or declared kgm:PlumbingProperty cannot be a categorical feature (build
 * fails), and generator nodes are never coded as values.
 *
 * Prototype codes (opts.prototypes = K): the rows are clustered by k-means (seeded by
 * opts.seed) over the meta-train tasks, and a task's embedding part becomes its soft
 * assignment softmax_k(-|row - c_k|^2 / tau), K numbers summing to 1; new tasks are coded
 * against the same prototypes after fold-in.
 *
 * Feature normalization: mean and standard deviation over meta-train tasks; a missing feature
 * is 0 (the mean). With opts.normalize, inputs and outputs are standardized with statistics
 * over the meta-train tasks' examples (kgm_kgcond_unnormalize_y maps predictions back).
 *
 * Ownership: kgm_kgcond is returned new (kgm_kgcond_free); it owns its task set, graphs,
 * embedding and vectors, and keeps no pointer to the store. Task sources borrow it. */
#ifndef KGM_KGCOND_H
#define KGM_KGCOND_H

#include <stddef.h>
#include <stdint.h>

#include "embed.h"

struct kgm_store;
struct kgm_graph;
struct kgm_episode;   /* models/tasksrc.h */
struct kgm_tasksrc;

typedef struct kgm_kgcond_opts {
    kgm_emb_opts emb;        /* embedding training and fold-in (epochs used for both) */
    int use_embedding;       /* 0: e(t) holds the features only */
    int use_features;        /* 0: e(t) holds the embedding only (no features, no codes) */
    int normalize;           /* standardize x and y with meta-train statistics */
    int prototypes;          /* > 0: the embedding part of e(t) is the task's soft assignment to
                              * this many prototypes (k-means over the meta-train tasks' rows,
                              * at most one per task); 0: the standardized row itself */
    float proto_temp;        /* softmax temperature of the assignment, in units of the meta-train
                              * rows' mean squared distance to their prototype (<= 0: 1) */
    uint64_t seed;           /* example sampling of generated tasks */
} kgm_kgcond_opts;
/* TransE-L2, dim 16, 300 epochs, threads 1; embedding and features on; no normalization; raw
 * rows (prototypes 0, proto_temp 1). */
kgm_kgcond_opts kgm_kgcond_opts_default(void);

typedef struct kgm_kgcond kgm_kgcond;

/* Reads tasks and the descriptive graph from st (base_dir resolves relative data files).
 * emb NULL: trains an embedding on the training graph (kgm_kgcond_train_graph) with
 * opts->emb; else copies emb, which must have been trained on that graph (same entity
 * count). Then folds in the entities absent from it (meta-test tasks) and computes every
 * task's e(t). Errors: no tasks, mixed input dimensions, embedding mismatch, ... */
int  kgm_kgcond_build(kgm_kgcond **out, struct kgm_store *st, const char *base_dir,
                      const kgm_emb *emb, const kgm_kgcond_opts *opts);
void kgm_kgcond_free(kgm_kgcond *kc);   /* NULL is a no-op */

/* The descriptive graph without meta-test tasks' triples: what an embedding is trained on
 * (borrowed). Entity ids there are the embedding's ids. */
const struct kgm_graph *kgm_kgcond_train_graph(const kgm_kgcond *kc);
const kgm_emb *kgm_kgcond_embedding(const kgm_kgcond *kc);   /* after fold-in; borrowed */

int    kgm_kgcond_cond_dim(const kgm_kgcond *kc);
int    kgm_kgcond_x_dim(const kgm_kgcond *kc);
size_t kgm_kgcond_n_tasks(const kgm_kgcond *kc, int role);  /* role < 0: all */
/* Index (over all tasks, sorted by IRI) of the role's i-th task, or -1. */
long   kgm_kgcond_role_task(const kgm_kgcond *kc, int role, size_t i);
long   kgm_kgcond_find(const kgm_kgcond *kc, const char *iri);        /* -1 if absent */
const char *kgm_kgcond_iri(const kgm_kgcond *kc, size_t task);       /* borrowed */
int    kgm_kgcond_role(const kgm_kgcond *kc, size_t task);           /* 0 train, 1 validation, 2 test (kg/tasks.h kgm_role) */
const float *kgm_kgcond_cond(const kgm_kgcond *kc, size_t task);     /* e(t), borrowed */
/* Categorical code columns: how many (they are e(t)'s last columns), and column j's property
 * and value IRIs (borrowed), or NULL when j is out of range. */
int    kgm_kgcond_n_codes(const kgm_kgcond *kc);
const char *kgm_kgcond_code_prop(const kgm_kgcond *kc, int j);
const char *kgm_kgcond_code_value(const kgm_kgcond *kc, int j);

/* Fill t (kgm_episode_alloc'ed with n_support, n_query; CSV tasks: n_support 0 uses the task's
 * kgm:supportRows and the rest as query, t is then (re)allocated to fit) with the task's
 * examples drawn with seed, and its e(t) when t->cond is non-NULL. */
int kgm_kgcond_task(const kgm_kgcond *kc, size_t task, uint64_t seed, struct kgm_episode *t);

/* A task source over one role: each sample draws a task of the role uniformly and its
 * examples from the rng. cond nonzero: tasks carry e(t) (cond_dim = kgm_kgcond_cond_dim). */
typedef struct kgm_kgcond_src { const kgm_kgcond *kc; int role; int cond; } kgm_kgcond_src;
int kgm_kgcond_tasksrc(const kgm_kgcond *kc, int role, int cond,
                       kgm_kgcond_src *ctx, struct kgm_tasksrc *src);

/* Output normalization (identity without opts.normalize). */
float kgm_kgcond_unnormalize_y(const kgm_kgcond *kc, float y);
float kgm_kgcond_y_scale(const kgm_kgcond *kc);

/* ---- results into the graph (ML Schema) ---- */
typedef struct { const char *name; double value; } kgm_kgcond_value;
typedef struct kgm_kgcond_run {
    const char *run_iri;          /* full IRI of the mls:Run (NULL: kgm:run-<seed>-<n>) */
    const char *learner;          /* "maml", ... (mls:Implementation kgm:<learner>) */
    const char *init_stage;       /* "none", "shift", "film" */
    const char *graph;            /* label of the conditioning graph, may be NULL */
    const char *dataset;          /* mls:Dataset IRI or label, may be NULL */
    const kgm_kgcond_value *hyper;   size_t n_hyper;    /* mls:HyperParameterSetting */
    const kgm_kgcond_value *metrics; size_t n_metrics;  /* mls:ModelEvaluation */
    const char *model_path;       /* saved model file, may be NULL */
    const char *const *inputs;    /* full IRIs the run read (the model it adapted, a task): */
    size_t n_inputs;              /* mls:hasInput each; may be 0 */
    int no_model;                 /* 1: the run outputs no model (an evaluation) */
} kgm_kgcond_run;
/* Adds the run as triples: <run> a mls:Run; mls:executes <impl>; mls:hasInput <setting>...,
 * <input>...; mls:hasOutput <run>-model (an mls:Model, unless no_model), <eval>...; each setting mls:specifiedBy kgm:hp-<name>,
 * mls:hasValue v; each evaluation mls:specifiedBy kgm:metric-<name>, mls:hasValue v.
 * iri_out (may be NULL) gets the run IRI (new string). */
int kgm_kgcond_record(struct kgm_store *st, const kgm_kgcond_run *run, char **iri_out);

#endif
