/* models/kgcond_internal.h - shared by models/kgcond_kg.c (the graph side, which includes
 * kg/tasks.h) and models/kgcond.c (the task-source side, which includes models/tasksrc.h);
 * the split keeps graph code and sampling code apart. */
#ifndef KGM_KGCOND_INTERNAL_H
#define KGM_KGCOND_INTERNAL_H

#include "kgcond.h"

struct kgm_taskset;

struct kgm_kgcond {
    struct kgm_taskset *set;
    struct kgm_graph *train_graph;   /* descriptive graph minus meta-test tasks' triples */
    kgm_emb *emb;                    /* after fold-in */
    size_t n_tasks;
    int *role;                       /* (n_tasks) */
    size_t *by_role[3], n_role[3];   /* task indexes of each role */
    int cond_dim, emb_width, n_features, x_dim;
    int n_codes;                     /* one-hot columns of categorical task features */
    char **code_prop, **code_value;  /* (n_codes): the column's property and value IRIs */
    float *codes;                    /* (n_tasks, n_codes) while building e(t), then NULL */
    float *cond;                     /* (n_tasks, cond_dim): [embedding part | features | codes] */
    kgm_kgcond_opts opts;
    double x_mean[16], x_sd[16], y_mean, y_sd;
};

/* Examples of task i (graph side): x (n, x_dim), y (n), doubles, new arrays. */
int kgcond_examples(const kgm_kgcond *kc, size_t task, uint64_t seed, size_t k, size_t q,
                    double **x, double **y, size_t *n_support, size_t *n_query);

#endif
