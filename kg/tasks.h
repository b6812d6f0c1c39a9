/* kg/tasks.h - meta-learning tasks read out of the graph (vocabulary: datasets/kgmeta.ttl):
 * each mls:Task with its role, the source of its examples (a CSV file with named columns,
 * or a generator with its parameters) and its numeric task features; loading a task's
 * support and query examples; and the descriptive graph that embeddings may see, which is
 * the extracted graph without any data plumbing.
 *
 * Two layers: kgm_tasks_read() and kgm_tasks_descriptive_from_store() ask the store
 * (kg/tasks_store.c); underneath, a task set is built from (task, property, value) facts
 * (kgm_taskset_fact), which is also how tests build one without a store.
 *
 * Ownership: a kgm_taskset owns its tasks and all their strings. kgm_examples owns its
 * arrays. Nothing here keeps a pointer to the store or the graph. */
#ifndef KGM_TASKS_H
#define KGM_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "graph.h"
#include "table.h"
#include "taskgen.h"

#define KGM_NS_IRI "http://kgmeta.org/ns#"
#define KGM_RDF_TYPE_IRI "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
#define KGM_MLS_IRI "http://www.w3.org/ns/mls#"
#define KGM_MLS_TASK_IRI KGM_MLS_IRI "Task"
#define KGM_TASK_MAX_INPUTS 16

typedef enum { KGM_ROLE_NONE = -1, KGM_ROLE_TRAIN, KGM_ROLE_VALIDATION, KGM_ROLE_TEST } kgm_role;
typedef enum { KGM_SOURCE_NONE, KGM_SOURCE_CSV, KGM_SOURCE_GENERATOR } kgm_source;

typedef struct {
    char      *iri;
    kgm_role   role;
    kgm_source source;
    /* CSV: path resolved (file: IRI, or a literal relative to the base directory) */
    char      *path;
    char      *inputs[KGM_TASK_MAX_INPUTS];   /* column names; ordered by the file's header */
    int        n_inputs;
    char      *output;
    long       support_rows;                  /* -1 when not given */
    /* generator */
    kgm_gen_params gen;
    char      *generator;                     /* the generator node's IRI */
    double    *features;                      /* (set->n_features); NAN when missing; NULL if none */
    unsigned   params_set;                    /* bit i: param i given (checked by finish) */
} kgm_task;

typedef struct kgm_taskset {
    kgm_task *tasks;           /* (n), sorted by IRI once finished */
    size_t    n;
    char    **features;        /* (n_features) kgm:TaskFeature property IRIs, sorted */
    size_t    n_features;
    struct kgm_taskset_build *build;   /* private: IRI index, base directory, generator nodes */
} kgm_taskset;

/* ---- building from facts ---- */
kgm_taskset *kgm_taskset_new(const char *base_dir);   /* returns new: kgm_taskset_free() */
void kgm_taskset_free(kgm_taskset *s);                /* NULL is a no-op */
int  kgm_taskset_add_task(kgm_taskset *s, const char *iri);
int  kgm_taskset_add_feature(kgm_taskset *s, const char *prop_iri);
/* One fact about a task already added: prop is a full IRI (kgm: plumbing or a declared
 * feature), value a table cell (IRI, literal or number). Unknown tasks and other
 * properties are ignored; a second value for a single-valued property, or a value of the
 * wrong kind, is KGM_EINVAL naming the task. */
int  kgm_taskset_fact(kgm_taskset *s, const char *task, const char *prop, const kgm_cell *value);
/* Generator node facts: kgm:function and kgm:noiseStd of a generator IRI. */
int  kgm_taskset_generator(kgm_taskset *s, const char *gen_iri, const char *fn_iri, double noise);
/* Checks every task (a complete source, parameters for its function, known role) and
 * sorts by IRI. Error names the first incomplete task. */
int  kgm_taskset_finish(kgm_taskset *s);
/* Index of the task with this IRI, or -1. */
long kgm_taskset_find(const kgm_taskset *s, const char *iri);
/* A table (task, role, source, data, features...) for listing. Returns new. */
kgm_table *kgm_taskset_table(const kgm_taskset *s);

/* ---- examples ---- */
typedef struct {
    size_t  n_support, n_query;
    int     dim;               /* inputs per example */
    double *x;                 /* (n_support + n_query, dim); support rows first */
    double *y;                 /* (n_support + n_query) */
} kgm_examples;

/* CSV tasks: k = 0 takes the task's kgm:supportRows (else k) first rows as the support
 * set and the rest (at most q when q > 0) as the query set. Generated tasks: k support
 * and q query points, deterministic in (seed, task IRI). *out is filled on success. */
int  kgm_task_examples(const kgm_task *t, uint64_t seed, size_t k, size_t q, kgm_examples *out);
void kgm_examples_free(kgm_examples *e);              /* frees the arrays, not e */

/* ---- the descriptive graph ---- */
/* The kgm: properties that are always plumbing (also declared in kgmeta.ttl). */
const char *const *kgm_tasks_plumbing(size_t *n);
/* A new graph (kgm_graph_free) with the triples and attributes of full that embeddings may
 * see: none whose property is in plumbing[] or the built-in list, none touching a kgm:
 * vocabulary term, a node typed kgm:Generator, or a run record (a node typed mls:Run,
 * mls:Model, mls:ModelEvaluation, mls:HyperParameterSetting or kgm:TuningSearch, or a blank
 * node a run has as mls:hasInput / mls:hasOutput). */
int  kgm_tasks_descriptive(const kgm_graph *full, const char *const *plumbing, size_t n_plumbing,
                           kgm_graph **out);

/* ---- through the store (kg/tasks_store.c) ---- */
struct kgm_store;
/* Every mls:Task in the store. base_dir resolves data files given as relative literals. */
int  kgm_tasks_read(struct kgm_store *st, const char *base_dir, kgm_taskset **out);
/* kgm_store_extract, then kgm_tasks_descriptive with the store's kgm:PlumbingProperty set. */
int  kgm_tasks_descriptive_from_store(struct kgm_store *st, kgm_graph **out);

#endif
