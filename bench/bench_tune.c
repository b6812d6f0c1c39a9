/* bench/bench_tune.c - tuning inner learning rate, inner steps and outer learning rate on the
 * six-family benchmark (ARML's six regression families, kg/taskgen.h), against the hand-set
 * ARML protocol trained with the same budget, both evaluated on the same held-out tasks.
 *
 *   bench_tune [TRIALS=12] [BUDGET=2000] [THREADS=2] [SEED=1]
 *
 * Tasks: a family drawn uniformly among Sinusoid, Line, Quadratic, Cubic, QuadraticSurface,
 * Ripple, its parameters uniformly in their ranges (kg/taskgen.h), noise-free; 10 support
 * and 10 query points (kgm_taskgen_sample). Network 2-40-40-1 ReLU, meta-batch 25, MAML.
 * Space: alpha=1e-4..1e-1:log steps=1..10:int outer_lr=1e-4..1e-2:log, BUDGET meta-iterations
 * per trial. Tuning objective: MSE after 20 inner steps (the trial's alpha) on 200 held-out
 * validation tasks (evaluation seed 1001). Hand-set ARML: alpha 0.001, 5 steps, Adam 0.001.
 * Final comparison: the adopted best settings retrained with the same budget and seed (the
 * same model as its trial) and the hand-set config, both evaluated on 1000 test tasks
 * (evaluation seed 2002, disjoint stream) after 0, 5 and 20 steps: MSE and 95% CI. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blascore.h"
#include "error.h"
#include "store.h"
#include "taskgen.h"
#include "tune.h"

#define SPACE "alpha=1e-4..1e-1:log steps=1..10:int outer_lr=1e-4..1e-2:log"

static const kgm_fn FAMILIES[6] = { KGM_FN_SINUSOID, KGM_FN_LINE, KGM_FN_QUADRATIC, KGM_FN_CUBIC,
                                    KGM_FN_QUAD_SURFACE, KGM_FN_RIPPLE };
/* Parameter ranges of kg/taskgen.h, per family above. */
static const double LO[6][4] = { { 0.1, 0, 0.8 }, { -3, -3 }, { -0.2, -2, -3 }, { -0.1, -0.2, -2, -3 }, { -1, -1 }, { -0.2, -3 } };
static const double HI[6][4] = { { 5, 6.283185307179586, 1.2 }, { 3, 3 }, { 0.2, 2, 3 }, { 0.1, 0.2, 2, 3 }, { 1, 1 }, { 0.2, 3 } };

static int sixfam_sample(void *ctx, kgm_taskrng *rng, kgm_episode *t)
{
    (void)ctx;
    int f = (int)(kgm_taskrng_next(rng) % 6);
    kgm_gen_params g = { .fn = FAMILIES[f], .noise = 0 };
    for (int i = 0; i < kgm_taskgen_fn_nparams(g.fn); i++) g.p[i] = kgm_taskrng_uniform(rng, LO[f][i], HI[f][i]);
    size_t k = (size_t)t->n_support, q = (size_t)t->n_query, n = k + q;
    double x[2 * 512], y[512];
    if (n > 512) return kgm_fail(KGM_EINVAL, "sixfam: at most 512 examples per task");
    int rc = kgm_taskgen_sample(&g, kgm_taskrng_next(rng), k, q, x, y);
    if (rc) return rc;
    int dim = kgm_taskgen_fn_dim(g.fn);
    for (size_t i = 0; i < n; i++) {
        float *xr = i < k ? t->xs + 2 * i : t->xq + 2 * (i - k);
        float *yr = i < k ? t->ys + i : t->yq + (i - k);
        xr[0] = (float)x[i * (size_t)dim];
        xr[1] = dim == 2 ? (float)x[i * (size_t)dim + 1] : 1.0f;   /* the curves' x2 = 1 */
        yr[0] = (float)y[i];
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Train cfg on src, evaluate on the test tasks; prints one table row. */
static int final_row(const char *label, const kgm_mlp *net, const kgm_meta_config *cfg,
                     const kgm_tasksrc *src)
{
    kgm_meta *mt = NULL;
    double mean[21], ci[21], t0 = now_s();
    kgm_eval_spec test = { .n_tasks = 1000, .max_steps = 20, .n_support = 10, .n_query = 10, .alpha = 0, .seed = 2002 };
    int rc = kgm_meta_new(&mt, net, cfg, NULL, 0);
    if (rc == 0) rc = kgm_meta_train(mt, src, NULL);
    if (rc == 0) rc = kgm_meta_evaluate(mt, src, &test, mean, ci);
    if (rc == 0)
        printf("| %-9s | %.2g | %d | %.2g | %.3f +- %.3f | %.3f +- %.3f | %.3f +- %.3f | %.0f |\n", label,
               (double)cfg->alpha, cfg->inner_steps, (double)cfg->outer_lr, mean[0], ci[0], mean[5], ci[5],
               mean[20], ci[20], now_s() - t0);
    kgm_meta_free(mt);
    return rc;
}

int main(int argc, char **argv)
{
    kgm_blas_fix_core(argv);   /* OpenBLAS's fast kernels (src/blascore.h); may re-execute */
    int trials = argc > 1 ? atoi(argv[1]) : 12, budget = argc > 2 ? atoi(argv[2]) : 2000;
    int threads = argc > 3 ? atoi(argv[3]) : 2;
    uint64_t seed = argc > 4 ? strtoull(argv[4], NULL, 10) : 1;
    kgm_tasksrc src = { .name = "sixfam", .x_dim = 2, .y_dim = 1, .cond_dim = 0, .ctx = NULL, .sample = sixfam_sample };
    kgm_mlp net;
    const int sizes[] = { 2, 40, 40, 1 };
    if (kgm_mlp_init(&net, 3, sizes, KGM_ACT_RELU, KGM_LOSS_MSE)) { fprintf(stderr, "%s\n", kgm_error()); return 1; }

    kgm_meta_config arml = kgm_meta_config_default();
    arml.learner = KGM_MAML;
    arml.alpha = 0.001f; arml.inner_steps = 5; arml.outer_lr = 0.001f;
    arml.meta_batch = 25; arml.n_support = arml.n_query = 10;
    arml.iterations = budget; arml.threads = threads; arml.seed = seed; arml.val_every = 0;

    kgm_tune_config tc = { .search = "http://kgmeta.org/bench/tune-sixfam", .seed = seed, .budget = budget,
                           .net = &net, .base = arml, .train = &src, .val = &src,
                           .eval = { .n_tasks = 200, .max_steps = 20, .n_support = 10, .n_query = 10, .alpha = 0, .seed = 1001 } };
    kgm_store *st = NULL;
    int rc = kgm_store_open(&st, NULL);
    double t0 = now_s();
    if (rc == 0) rc = kgm_tune_run(st, &tc, SPACE, trials);
    double tune_s = now_s() - t0;
    kgm_table *t = NULL;
    if (rc == 0) rc = kgm_store_query(st,
        "PREFIX mls: <http://www.w3.org/ns/mls#> PREFIX kgm: <http://kgmeta.org/ns#> "
        "SELECT ?i ?score ?alpha ?steps ?outer WHERE { ?r kgm:partOfSearch <http://kgmeta.org/bench/tune-sixfam> ; "
        "kgm:trialIndex ?i ; kgm:score ?score ; mls:hasInput ?a, ?s, ?o . "
        "?a mls:specifiedBy kgm:InnerLearningRate ; mls:hasValue ?alpha . ?s mls:specifiedBy kgm:InnerSteps ; mls:hasValue ?steps . "
        "?o mls:specifiedBy kgm:OuterLearningRate ; mls:hasValue ?outer } ORDER BY ?i", NULL, &t);
    if (rc == 0) {
        printf("trials (SPARQL over the recorded runs): %d trials x %d meta-iterations in %.0f s\n", trials, budget, tune_s);
        printf("trial  val-MSE@20   alpha      steps  outer_lr\n");
        for (size_t r = 0; r < t->n_rows; r++)
            printf("%5s  %10.4f  %9.3g  %5s  %9.3g\n", kgm_table_cell(t, r, 0)->value,
                   strtod(kgm_table_cell(t, r, 1)->value, NULL), strtod(kgm_table_cell(t, r, 2)->value, NULL),
                   kgm_table_cell(t, r, 3)->value, strtod(kgm_table_cell(t, r, 4)->value, NULL));
    }
    kgm_table_free(t);
    kgm_meta_config best = arml;
    double best_score;
    int best_i;
    if (rc == 0) rc = kgm_tune_adopt(st, tc.search, &best, &best_score, &best_i);
    if (rc == 0) {
        printf("\nsame budget (%d iterations), 1000 test tasks, MSE +- 95%% CI after 0 / 5 / 20 steps\n", budget);
        printf("| config    | alpha | steps | outer lr | MSE 0 steps | MSE 5 steps | MSE 20 steps | train+eval s |\n");
        printf("|-----------|-------|-------|----------|-------------|-------------|--------------|--------------|\n");
        rc = final_row("hand ARML", &net, &arml, &src);
    }
    if (rc == 0) rc = final_row("tuned", &net, &best, &src);
    kgm_store_free(st);
    if (rc) { fprintf(stderr, "bench_tune: %s\n", kgm_error()); return 1; }
    return 0;
}
