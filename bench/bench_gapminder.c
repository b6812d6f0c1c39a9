/* bench/bench_gapminder.c - life expectancy from year, each country a task (gapminder.ttl):
 * support = its first 3 observations (1952-1962), query = the remaining 9; meta-train,
 * validation and test countries as the graph's kgm:role says.
 *   bench_gapminder [--iterations N=2000] [--steps N=5] [--threads N=2] [--seed N=1]
 * Year and life expectancy are standardized with the meta-train countries' statistics;
 * MAE (years) on the test countries' query points, mean and 95% CI over countries, for:
 *   pooled       one network on every meta-train country's query rows (inner rate 1e-8:
 *              the learner needs one > 0; evaluated without adaptation)
 *   scratch      least-squares line through the country's 3 support points
 *   MAML         1-40-40-1 ReLU, --steps inner steps of 0.01, meta-batch 10, Adam 1e-3
 *   MAML + KG    the same with FiLM conditioning on e(t) (continent, bands, log features) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blascore.h"
#include "error.h"
#include "kgcond.h"
#include "meta.h"
#include "store.h"

#define N_SUPPORT 3
#define N_QUERY 9

static int iterations = 2000, steps = 5, threads = 2;
static uint64_t seed = 1;

static int die(const char *what)
{
    fprintf(stderr, "bench_gapminder: %s: %s\n", what, kgm_error());
    return 1;
}

static kgm_meta *train(const kgm_kgcond *kc, const kgm_init_stage *init, int cond, float alpha)
{
    kgm_mlp m;
    const int sizes[] = {1, 40, 40, 1};
    if (kgm_mlp_init(&m, 3, sizes, KGM_ACT_RELU, KGM_LOSS_MSE)) return NULL;
    kgm_meta_config c = kgm_meta_config_default();
    c.inner_steps = steps; c.alpha = alpha; c.meta_batch = 10; c.outer_lr = 0.001f;
    c.n_support = N_SUPPORT; c.n_query = N_QUERY; c.iterations = iterations; c.threads = threads; c.seed = seed;
    kgm_meta *mt = NULL;
    kgm_tasksrc src;
    kgm_kgcond_src ctx;
    if (kgm_meta_new(&mt, &m, &c, init, cond ? kgm_kgcond_cond_dim(kc) : 0)) return NULL;
    if (kgm_kgcond_tasksrc(kc, 0, cond, &ctx, &src) || kgm_meta_train(mt, &src, NULL)) {
        kgm_meta_free(mt);
        return NULL;
    }
    return mt;
}

/* Least-squares line through the support points, evaluated at the query inputs. */
static void line_fit(const kgm_episode *t, float *out)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0, n = t->n_support;
    for (int i = 0; i < t->n_support; i++) {
        sx += t->xs[i]; sy += t->ys[i]; sxx += t->xs[i] * (double)t->xs[i]; sxy += t->xs[i] * (double)t->ys[i];
    }
    double b = (n * sxy - sx * sy) / (n * sxx - sx * sx), a = (sy - b * sx) / n;
    for (int q = 0; q < t->n_query; q++) out[q] = (float)(a + b * t->xq[q]);
}

/* MAE in years over the test countries; mt NULL: the line fit. */
static void evaluate(const char *row, kgm_meta *mt, const kgm_kgcond *kc, int cond, int n_steps)
{
    size_t n = kgm_kgcond_n_tasks(kc, 2);
    double *mae = malloc(n * sizeof *mae);
    kgm_tasksrc src;
    kgm_kgcond_src ctx;
    kgm_kgcond_tasksrc(kc, 2, cond, &ctx, &src);
    kgm_episode t;
    kgm_episode_alloc(&t, &src, N_SUPPORT, N_QUERY);
    float *fast = mt ? malloc(kgm_meta_net(mt)->n_params * sizeof *fast) : NULL, out[64];
    for (size_t i = 0; i < n; i++) {
        kgm_kgcond_task(kc, (size_t)kgm_kgcond_role_task(kc, 2, i), seed, &t);
        if (mt) {
            kgm_meta_adapt(mt, &t, n_steps, fast);
            kgm_meta_predict(mt, fast, t.xq, t.n_query, out);
        } else line_fit(&t, out);
        double s = 0;
        for (int q = 0; q < t.n_query; q++) s += fabs(out[q] - t.yq[q]);
        mae[i] = s / t.n_query * kgm_kgcond_y_scale(kc);
    }
    double mean, ci;
    kgm_stats_mean_ci(mae, (int)n, &mean, &ci);
    printf("%-28s MAE %6.3f +- %.3f years  (%zu test countries, %d steps, %d iterations)\n", row, mean, ci, n,
           n_steps, mt ? iterations : 0);
    free(fast);
    free(mae);
    kgm_episode_release(&t);
}

int main(int argc, char **argv)
{
    kgm_blas_fix_core(argv);   /* OpenBLAS's fast kernels (src/blascore.h); may re-execute */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--iterations")) iterations = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 10);
        else { fprintf(stderr, "bench_gapminder: unknown option %s\n", argv[i]); return 2; }
    }
    const char *dir = getenv("KGM_SOURCE_DIR") ? getenv("KGM_SOURCE_DIR") : ".";
    char base[4096], path[4200];
    snprintf(base, sizeof base, "%s/datasets", dir);
    kgm_store *st = NULL;
    if (kgm_store_open(&st, NULL)) return die("store");
    snprintf(path, sizeof path, "%s/kgmeta.ttl", base);
    if (kgm_store_load(st, path, NULL, NULL, NULL, NULL)) return die(path);
    snprintf(path, sizeof path, "%s/gapminder.ttl", base);
    if (kgm_store_load(st, path, NULL, NULL, NULL, NULL)) return die(path);
    kgm_kgcond_opts o = kgm_kgcond_opts_default();
    o.normalize = 1;
    kgm_kgcond *kc = NULL;
    if (kgm_kgcond_build(&kc, st, base, NULL, &o)) return die("tasks");
    printf("gapminder: %zu meta-train, %zu validation, %zu test countries; e(t) has %d numbers\n",
           kgm_kgcond_n_tasks(kc, 0), kgm_kgcond_n_tasks(kc, 1), kgm_kgcond_n_tasks(kc, 2), kgm_kgcond_cond_dim(kc));
    kgm_meta *pooled = train(kc, &kgm_init_none, 0, 1e-8f);
    if (!pooled) return die("pooled");
    evaluate("pooled", pooled, kc, 0, 0);
    evaluate("scratch (line on 3 points)", NULL, kc, 0, 0);
    kgm_meta *maml = train(kc, &kgm_init_none, 0, 0.01f);
    if (!maml) return die("maml");
    evaluate("MAML", maml, kc, 0, steps);
    kgm_meta *film = train(kc, &kgm_init_film, 1, 0.01f);
    if (!film) return die("maml film");
    evaluate("MAML + KG (FiLM)", film, kc, 1, steps);
    evaluate("MAML + KG (FiLM), zero-shot", film, kc, 1, 0);
    kgm_meta_free(pooled);
    kgm_meta_free(maml);
    kgm_meta_free(film);
    kgm_kgcond_free(kc);
    kgm_store_free(st);
    return 0;
}
