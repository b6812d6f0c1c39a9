/* bench/bench_sixfam.c - ARML's protocol on the six-family benchmark with KG conditioning.
 *   bench_sixfam [--iterations N=70000] [--test-tasks N=1000] [--threads N=2] [--seed N=1]
 *                [--rows zero,none,perfamily,family,similar,oracle,oracle-attr,oracle-hier,oracle-cell]
 *                [--stages shift,film] [--prototypes K=32] [--cond-lr X=0.001] [--attributes 0|1=1]
 *                [--learner maml|fomaml|metasgd|anil|reptile=maml] [--mse-out DIR] [--pair-with FILE]
 *                [--clip X=0] [--skip-nonfinite N=0] [--rate-lr X=0] [--weight-decay X=0]
 *                [--lr-floor X=1] [--cond-rates 0|1=0] [--backtrack 0|1|2=0]
 *                [--train-backtrack 0|1|2=0] [--emb MODEL=transe-l2] [--emb-dim N=16] [--emb-epochs N=300]
 *                [--save-dir DIR] [--load-dir DIR] [--normalize 0|1=0] [--msl N=0]
 * 10-shot tasks, MLP 2-40-40-1 ReLU, 5 inner SGD steps in training and 20 at test, inner and
 * outer (Adam) learning rate 0.001, meta-batch 25; query MSE on the new test tasks
 * (sixfam-new*.ttl, folded into the embedding) with 95% CI. Rows: no conditioning; one MAML
 * per family (task families read from sixfam-family.ttl by SPARQL); shift and FiLM with the
 * family graph and with the similarTo-only graph, each also zero-shot (no support, 0 steps);
 * "zero": predicting 0, the zero-shot reference; "perfamily-split": one MAML per family with the
 * iterations split between the families (the one-model rows' total meta-training budget). The conditioned rows code e(t) by K
 * prototypes, add the one-hot codes of the categorical task features declared in
 * sixfam-features.ttl (family, scale band, origin sign; --attributes 0 leaves them out) and
 * train the init stage at its own Adam rate (--prototypes 0 --cond-lr 0: the raw standardized
 * rows at the outer rate). Diagnostics: each graph row prints how often a test task's nearest
 * meta-train task in e(t) has its family; the oracle rows condition on codes read from the
 * generator and the attributes instead of the graph (oracle_codes): what the information can
 * reach at all, whatever the embedding. --clip and --skip-nonfinite set every learner's outer-step
 * guards (models/meta.h clip_norm, skip_nonfinite; 0: off, the numbers of earlier runs);
 * --rate-lr: Adam's rate for Meta-SGD's inner rates (0: the outer rate). --weight-decay: every
 * learner's decoupled weight decay of theta* (models/meta.h weight_decay; 0: off). --lr-floor F < 1:
 * every Adam rate decays by a cosine over the run's iterations to F times it (lr_decay_steps,
 * lr_floor; 1: constant, the numbers of earlier runs). Each trained
 * learner prints the L2 norm of theta* at the end (its drift is what the guards and decay fight).
 * --cond-rates 1 (with --learner metasgd): the conditioned rows also scale each unit's inner rates
 * by 1 + tanh(R e(t)) (models/meta.h cond_rates), so each family can take its own steps.
 * --backtrack 1: every row's test adaptation backtracks on the support loss (models/meta.h
 * kgm_meta_set_backtrack; training is unchanged), so no test task can diverge in its 20 steps.
 * --backtrack 2: the same, and a step that lowers the support loss at once doubles the task's
 * rates for its next step (up to 4 times the learned ones: KGM_BACKTRACK_GROW).
 * --emb, --emb-dim, --emb-epochs: the graph rows' embedding (models/kgcond.h's default: TransE-L2,
 * dimension 16, 300 epochs); each graph row prints how well e(t) separates the families.
 * --train-backtrack 1: meta-training's 5 inner steps backtrack the same way (models/meta.h
 * inner_backtrack), so a task whose steps diverge no longer swamps its meta-batch's gradient;
 * --train-backtrack 2 also grows them as --backtrack 2 does at test.
 * --save-dir writes the learners of the none, per-family and graph rows as model files
 * (none.kgm, perfamily-0.kgm, ..., film-family.kgm, film-similarTo.kgm); --load-dir reads them
 * instead of training (the embedding is rebuilt, seeded, so e(t) is the same), to re-evaluate a
 * trained learner, e.g. with --backtrack. The oracle rows always train.
 * --normalize 1: the learners see x and y standardized by the meta-train tasks' statistics
 * (models/kgcond.h opts.normalize); MSEs are reported in the original units all the same.
 * --msl N: every learner's meta-loss weighs the query loss after each inner step, annealed to
 * the last step's alone over N outer steps (models/meta.h msl_steps; MAML++).
 * Published (ARML, Yao et al. 2020): MAML 2.292, MuMoMAML 0.523, HSML 0.494, ARML 0.438. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blascore.h"
#include "error.h"
#include "kgcond.h"
#include "meta.h"
#include "store.h"
#include "table.h"

#define K_SHOT 10
#define N_QUERY 10

static int iterations = 70000, test_tasks = 1000, threads = 2;
/* The conditioning path's settings (issue 6 diagnosis): prototype codes of e(t) and the init
 * stage's own Adam rate; --prototypes 0 --cond-lr 0 gives the raw rows at the outer rate. */
static int prototypes = 32;
static const char *stage_list = "shift,film";   /* init stages of the graph rows */
static float cond_lr = 0.001f;
static kgm_learner learner_kind = KGM_MAML;   /* every row's learner (ARML's protocol: MAML) */
static int attributes = 1;   /* graph rows code sf:scaleBand and sf:originSign one-hot (sixfam-features.ttl) */
static uint64_t seed = 1;
static float clip_norm = 0.0f;   /* --clip: meta-gradient norm bound (0: off) */
static int skip_nonfinite = 0;   /* --skip-nonfinite: non-finite meta-batches skipped in a row (0: off) */
static float rate_lr = 0.0f;     /* --rate-lr: Meta-SGD's inner rates' Adam rate (0: outer rate) */
static float weight_decay = 0.0f;   /* --weight-decay: AdamW decay of theta* (0: off) */
static float lr_floor = 1.0f;       /* --lr-floor: cosine decay of the Adam rates to this fraction (1: off) */
static int cond_rates = 0;          /* --cond-rates 1: Meta-SGD's rates scaled per unit from e(t) */
static int backtrack = 0;           /* --backtrack 1|2: test adaptation's kgm_backtrack rule */
static int train_backtrack = 0;     /* --train-backtrack 1|2: so do meta-training's inner steps */
static int msl_steps = 0;           /* --msl N: multi-step meta-loss annealed over N outer steps (0: off) */
static int normalize = 0;           /* --normalize 1: x and y standardized by meta-train statistics */
static const char *emb_model = NULL;  /* --emb: the graph rows' embedding model (NULL: kgcond's default) */
static int emb_dim = 0, emb_epochs = 0;   /* 0: kgcond's default */
static const char *save_dir, *load_dir;   /* --save-dir / --load-dir: trained learners as model files */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static kgm_store *open_graph(const char *const *files)
{
    kgm_store *st = NULL;
    if (kgm_store_open(&st, NULL)) return NULL;
    for (; *files; files++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/datasets/%s", getenv("KGM_SOURCE_DIR") ? getenv("KGM_SOURCE_DIR") : ".", *files);
        if (kgm_store_load(st, path, NULL, NULL, NULL, NULL)) { kgm_store_free(st); return NULL; }
    }
    return st;
}

/* A task source over a list of task indexes (one family's meta-train tasks). */
typedef struct { const kgm_kgcond *kc; size_t *idx, n; } subset;
static int subset_sample(void *ctx, kgm_taskrng *rng, kgm_episode *t)
{
    subset *s = ctx;
    return kgm_kgcond_task(s->kc, s->idx[kgm_taskrng_next(rng) % s->n], kgm_taskrng_next(rng), t);
}

/* Class index of every task from the (task, class IRI) rows of a SELECT, classes numbered in
 * the rows' order (at most 8); tasks without a row get `missing`. *n_classes may be NULL.
 * Returns a new array, or NULL with kgm_error(). */
static int *task_classes(kgm_store *st, const kgm_kgcond *kc, const char *select, int missing, int *n_classes)
{
    kgm_table *tb = NULL;
    if (kgm_store_select(st, select, &tb)) return NULL;
    size_t n = kgm_kgcond_n_tasks(kc, -1);
    int *cls = malloc((n ? n : 1) * sizeof *cls), n_cls = 0;
    for (size_t i = 0; cls && i < n; i++) cls[i] = missing;
    char names[8][256] = {{0}};
    for (size_t r = 0; cls && r < tb->n_rows; r++) {
        const char *t = tb->cells[r * 2].value, *c = tb->cells[r * 2 + 1].value;
        int ci = 0;
        while (ci < n_cls && strcmp(names[ci], c)) ci++;
        if (ci == n_cls && n_cls < 8) snprintf(names[n_cls++], 256, "%s", c);
        long i = kgm_kgcond_find(kc, t);
        if (i >= 0) cls[i] = ci;
    }
    kgm_table_free(tb);
    if (n_classes) *n_classes = n_cls;
    return cls;
}

/* Family index (0..5) of every task, from its kgm:generator (all tasks have one). Used only by
 * the diagnostics below (the oracle row and the embedding's nearest-neighbour accuracy), never
 * by a conditioned row. Returns a new array or NULL. */
static int *generator_families(kgm_store *st, const kgm_kgcond *kc)
{
    return task_classes(st, kc, "SELECT ?t ?g WHERE { ?t <http://kgmeta.org/ns#generator> ?g } ORDER BY ?g", -1, NULL);
}

/* Share of test tasks whose nearest meta-train task in e(t) (Euclidean) has their family. */
static double nn_family_accuracy(const kgm_kgcond *kc, const int *family)
{
    int dim = kgm_kgcond_cond_dim(kc);
    size_t n_test = kgm_kgcond_n_tasks(kc, 2), n_train = kgm_kgcond_n_tasks(kc, 0), hit = 0;
    if ((size_t)test_tasks < n_test) n_test = (size_t)test_tasks;
    for (size_t i = 0; i < n_test; i++) {
        size_t a = (size_t)kgm_kgcond_role_task(kc, 2, i), best = a;
        const float *ea = kgm_kgcond_cond(kc, a);
        double bd = INFINITY;
        for (size_t j = 0; j < n_train; j++) {
            size_t b = (size_t)kgm_kgcond_role_task(kc, 0, j);
            const float *eb = kgm_kgcond_cond(kc, b);
            double d = 0;
            for (int c = 0; c < dim; c++) d += (ea[c] - eb[c]) * (double)(ea[c] - eb[c]);
            if (d < bd) { bd = d; best = b; }
        }
        hit += family[best] == family[a];
    }
    return n_test ? (double)hit / (double)n_test : 0.0;
}

#define N_FAMILIES 6
/* Share of the variance of e(t) over the meta-train tasks that lies between family means
 * (1: e(t) is a function of the family; 0: it carries nothing about it). */
static double family_variance_share(const kgm_kgcond *kc, const int *family)
{
    int dim = kgm_kgcond_cond_dim(kc);
    size_t n = kgm_kgcond_n_tasks(kc, 0), cnt[N_FAMILIES] = {0};
    double *mean = calloc((size_t)dim * (N_FAMILIES + 1), sizeof *mean), total = 0, within = 0;
    if (!mean) return NAN;
    double *all = mean + (size_t)dim * N_FAMILIES;
    for (size_t j = 0; j < n; j++) {
        size_t t = (size_t)kgm_kgcond_role_task(kc, 0, j);
        int f = family[t];
        cnt[f]++;
        for (int c = 0; c < dim; c++) { mean[f * dim + c] += kgm_kgcond_cond(kc, t)[c]; all[c] += kgm_kgcond_cond(kc, t)[c]; }
    }
    for (int f = 0; f < N_FAMILIES; f++) for (int c = 0; c < dim; c++) mean[f * dim + c] /= cnt[f] ? (double)cnt[f] : 1.0;
    for (int c = 0; c < dim; c++) all[c] /= (double)n;
    for (size_t j = 0; j < n; j++) {
        size_t t = (size_t)kgm_kgcond_role_task(kc, 0, j);
        const float *e = kgm_kgcond_cond(kc, t);
        for (int c = 0; c < dim; c++) {
            total += (e[c] - all[c]) * (e[c] - all[c]);
            within += (e[c] - mean[family[t] * dim + c]) * (e[c] - mean[family[t] * dim + c]);
        }
    }
    free(mean);
    return total > 0 ? 1.0 - within / total : 0.0;
}

/* Oracle conditioning (diagnostic): e(t) is a code read from the generator and the task's
 * attributes, (n_tasks, oracle_dim) rows. */
static const float *oracle_code;
static int oracle_dim;
static void oracle_cond(size_t task, kgm_episode *t)
{
    if (!oracle_code || t->cond_dim != oracle_dim) return;
    memcpy(t->cond, oracle_code + task * (size_t)oracle_dim, (size_t)oracle_dim * sizeof(float));
}
typedef struct { const kgm_kgcond *kc; } oracle_ctx;
static int oracle_sample(void *ctx, kgm_taskrng *rng, kgm_episode *t)
{
    const oracle_ctx *o = ctx;
    size_t n = kgm_kgcond_n_tasks(o->kc, 0);
    size_t task = (size_t)kgm_kgcond_role_task(o->kc, 0, (size_t)(kgm_taskrng_next(rng) % n));
    int rc = kgm_kgcond_task(o->kc, task, kgm_taskrng_next(rng), t);
    oracle_cond(task, t);
    return rc;
}

static kgm_meta *learner(const kgm_kgcond *kc, const kgm_init_stage *init, int cond_dim, int iters)
{
    kgm_mlp m;
    const int sizes[] = {kgm_kgcond_x_dim(kc), 40, 40, 1};
    if (kgm_mlp_init(&m, 3, sizes, KGM_ACT_RELU, KGM_LOSS_MSE)) return NULL;
    kgm_meta_config c = kgm_meta_config_default();
    c.learner = learner_kind;
    c.inner_steps = 5; c.alpha = 0.001f; c.outer_lr = 0.001f; c.meta_batch = 25;
    c.n_support = K_SHOT; c.n_query = K_SHOT; c.iterations = iters; c.threads = threads; c.seed = seed;
    c.cond_lr = cond_lr; c.clip_norm = clip_norm; c.skip_nonfinite = skip_nonfinite;
    c.rate_lr = rate_lr; c.weight_decay = weight_decay;
    c.cond_rates = cond_rates && cond_dim > 0;
    c.inner_backtrack = train_backtrack;
    c.msl_steps = msl_steps;
    if (lr_floor < 1.0f) { c.lr_decay_steps = iters; c.lr_floor = lr_floor; }
    kgm_meta *mt = NULL;
    return kgm_meta_new(&mt, &m, &c, init, cond_dim) ? NULL : mt;
}

/* The L2 norm of theta* (the first n_params meta-parameters, models/meta.h) and, for Meta-SGD,
 * the range of the inner rates that follow it. */
static void print_end_params(kgm_meta *mt, const char *what)
{
    const size_t P = kgm_meta_net(mt)->n_params;
    const float *th = kgm_meta_params(mt);
    double s = 0.0;
    for (size_t i = 0; i < P; i++) s += (double)th[i] * th[i];
    printf("%s: |theta*| = %.2f at the end\n", what, sqrt(s));
    if (learner_kind != KGM_METASGD) return;
    const float *r = th + P;
    double lo = r[0], hi = r[0], mean = 0;
    size_t neg = 0;
    for (size_t i = 0; i < P; i++) {
        lo = r[i] < lo ? r[i] : lo; hi = r[i] > hi ? r[i] : hi;
        mean += r[i] / (double)P; neg += r[i] < 0;
    }
    printf("%s: inner rates min %.4g mean %.4g max %.4g, %zu of %zu negative\n", what, lo, mean, hi, neg, P);
}

/* Meta-trains mt on src and reports the time per meta-iteration on stderr. */
static int timed_train(kgm_meta *mt, const kgm_tasksrc *src, const char *what)
{
    kgm_meta_stats st;
    int rc = kgm_meta_train(mt, src, &st);
    if (rc == KGM_ENUMERIC) {   /* report the stop and evaluate the parameters reached */
        printf("%s: stopped, %s; evaluated at the parameters reached\n", what, kgm_error());
        rc = 0;
    }
    if (!rc) fprintf(stderr, "%s: %d meta-iterations in %.1f s, %.2f ms each\n", what, st.iterations_done,
                     st.seconds, st.iterations_done ? 1e3 * st.seconds / st.iterations_done : 0.0);
    if (!rc && (clip_norm > 0 || skip_nonfinite > 0))
        printf("%s: %d meta-batches skipped as not finite, %d meta-gradients clipped to %g; largest norm %.4g\n",
               what, st.skipped, st.clipped, (double)clip_norm, st.max_grad_norm);
    if (!rc) print_end_params(mt, what);
    return rc;
}

/* Meta-trains the new learner mt on src, or replaces it by name.kgm from --load-dir; writes it
 * to --save-dir as name.kgm. NULL on failure (mt freed). */
static kgm_meta *train_or_load(kgm_meta *mt, const kgm_tasksrc *src, const char *what, const char *name)
{
    char path[4096];
    if (mt && load_dir) {
        kgm_meta_free(mt);
        snprintf(path, sizeof path, "%s/%s.kgm", load_dir, name);
        if (kgm_meta_load(&mt, path, NULL)) return NULL;
        fprintf(stderr, "%s: loaded from %s\n", name, path);
        return mt;
    }
    if (!mt || timed_train(mt, src, what)) {
        kgm_meta_free(mt);
        return NULL;
    }
    snprintf(path, sizeof path, "%s/%s.kgm", save_dir ? save_dir : "", name);
    if (save_dir && kgm_meta_save(mt, path)) { kgm_meta_free(mt); return NULL; }
    return mt;
}

/* The learner of row `name` (a file name) on kc's meta-train tasks. */
static kgm_meta *train(const kgm_kgcond *kc, const kgm_init_stage *init, int cond, const char *name)
{
    kgm_tasksrc src;
    kgm_kgcond_src ctx;
    if (kgm_kgcond_tasksrc(kc, 0, cond, &ctx, &src)) return NULL;
    return train_or_load(learner(kc, init, cond ? kgm_kgcond_cond_dim(kc) : 0, iterations), &src, init->name, name);
}

/* Query MSE of test task i after `steps` steps on its support set (steps 0: zero-shot). */
static double task_mse(kgm_meta *mt, const kgm_kgcond *kc, size_t task, int steps, kgm_episode *t, float *fast)
{
    float out[N_QUERY];
    if (kgm_kgcond_task(kc, task, seed + 1000003, t)) return NAN;
    oracle_cond(task, t);
    kgm_meta_set_backtrack(mt, backtrack);
    if (kgm_meta_adapt(mt, t, steps, fast) || kgm_meta_predict(mt, fast, t->xq, N_QUERY, out)) return NAN;
    double s = 0;
    for (int q = 0; q < N_QUERY; q++) s += (out[q] - t->yq[q]) * (double)(out[q] - t->yq[q]);
    const double y_scale = kgm_kgcond_y_scale(kc);   /* 1 without --normalize */
    return s / N_QUERY * y_scale * y_scale;
}

/* Per-task MSEs of a reference row, by task IRI, so that each later row also prints its paired
 * difference to it: every row evaluates the same test tasks on the same examples (sampled by
 * task IRI, in any run), so the paired CI is far narrower than the two rows' own CIs side by
 * side. Two references: the no-conditioning row of this run, and a row saved by an earlier run
 * (--mse-out DIR writes DIR/ROW.tsv, "IRI<tab>MSE" lines; --pair-with FILE reads one). */
typedef struct { char label[96]; char **iri; double *mse; size_t n; } reference;
/* The learner as the rows name it ("Meta-SGD, no conditioning", "one MAML per family"). */
static const char *learner_label(void)
{
    static const char *const labels[KGM_LEARNER_COUNT] = {
        [KGM_MAML] = "MAML", [KGM_FOMAML] = "FOMAML", [KGM_METASGD] = "Meta-SGD", [KGM_ANIL] = "ANIL",
        [KGM_REPTILE] = "Reptile" };
    return labels[learner_kind];
}
static reference baseline, saved;
static const char *mse_out;   /* --mse-out directory, or NULL */

static int reference_add(reference *r, const char *iri, double mse)
{
    char **ni = realloc(r->iri, (r->n + 1) * sizeof *ni);
    if (ni) r->iri = ni;
    double *nm = realloc(r->mse, (r->n + 1) * sizeof *nm);
    if (nm) r->mse = nm;
    if (!ni || !nm || !(r->iri[r->n] = strdup(iri))) return -1;
    r->mse[r->n++] = mse;
    return 0;
}

static void reference_free(reference *r)
{
    for (size_t i = 0; i < r->n; i++) free(r->iri[i]);
    free(r->iri);
    free(r->mse);
    memset(r, 0, sizeof *r);
}

/* Reads a row written by --mse-out; returns 0 or -1 with a message on stderr. */
static int reference_load(reference *r, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) { fprintf(stderr, "bench_sixfam: cannot read %s\n", path); return -1; }
    const char *base = strrchr(path, '/');
    snprintf(r->label, sizeof r->label, "  minus %s", base ? base + 1 : path);
    char line[1024];
    int rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        if (!tab) { fprintf(stderr, "bench_sixfam: %s: line without a tab\n", path); rc = -1; break; }
        *tab = 0;
        rc = reference_add(r, line, strtod(tab + 1, NULL));
    }
    fclose(f);
    return rc;
}

/* Mean and 95% CI of (row - reference) over the test tasks both evaluated; tasks whose
 * difference is not finite (an inner loop that diverged) are counted and left out. */
static void print_paired(const reference *r, const kgm_kgcond *kc, const double *mse, size_t n)
{
    double *diff = malloc(n * sizeof *diff);
    size_t m = 0, bad = 0;
    for (size_t i = 0; diff && i < n; i++) {
        const char *iri = kgm_kgcond_iri(kc, (size_t)kgm_kgcond_role_task(kc, 2, i));
        for (size_t j = 0; j < r->n; j++)
            if (!strcmp(r->iri[j], iri)) {
                double d = mse[i] - r->mse[j];
                if (isfinite(d)) diff[m++] = d;
                else bad++;
                break;
            }
    }
    if (m > 1) {
        double mean, ci;
        kgm_stats_mean_ci(diff, (int)m, &mean, &ci);
        printf("%-34s %+8.3f +- %.3f   (paired, %zu tasks", r->label, mean, ci, m);
        if (bad) printf("; %zu not finite, left out", bad);
        printf(")\n");
    }
    free(diff);
}

/* A row with test tasks whose MSE is not finite (their inner steps diverged) has no mean:
 * say how many, name the first, and give the mean over the others. */
static void print_diverged(const kgm_kgcond *kc, const double *mse, size_t n)
{
    double *ok = malloc(n * sizeof *ok);
    size_t m = 0, first = n;
    for (size_t i = 0; ok && i < n; i++) {
        if (isfinite(mse[i])) ok[m++] = mse[i];
        else if (first == n) first = i;
    }
    if (ok && m < n) {
        printf("  %zu of %zu tasks diverged (MSE not finite; first %s)", n - m, n,
               kgm_kgcond_iri(kc, (size_t)kgm_kgcond_role_task(kc, 2, first)));
        if (m > 1) {
            double mean, ci;
            kgm_stats_mean_ci(ok, (int)m, &mean, &ci);
            printf("; the other %zu: %.3f +- %.3f", m, mean, ci);
        }
        printf("\n");
    }
    free(ok);
}

/* Writes the row's per-task MSEs to mse_out/ROW.tsv (ROW: the row's name, non-alphanumerics
 * as '-'). */
static void save_row(const char *row, const kgm_kgcond *kc, const double *mse, size_t n)
{
    char path[4096];
    int k = snprintf(path, sizeof path, "%s/", mse_out);
    for (const char *c = row; *c && k < (int)sizeof path - 8; c++)
        path[k++] = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ? *c : '-';
    snprintf(path + k, sizeof path - (size_t)k, ".tsv");
    FILE *f = fopen(path, "w");
    if (!f) { fprintf(stderr, "bench_sixfam: cannot write %s\n", path); return; }
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s\t%.9g\n", kgm_kgcond_iri(kc, (size_t)kgm_kgcond_role_task(kc, 2, i)), mse[i]);
    fclose(f);
}

/* models[family of task] or models[0] when family is NULL. cond: length of e(t) (0: none). */
static void evaluate(const char *row, kgm_meta **models, const int *family, const kgm_kgcond *kc,
                     int cond, int steps, int is_baseline)
{
    size_t n = kgm_kgcond_n_tasks(kc, 2);
    if ((size_t)test_tasks < n) n = (size_t)test_tasks;
    double *mse = malloc(n * sizeof *mse);
    kgm_episode t = {.n_support = K_SHOT, .n_query = N_QUERY, .x_dim = kgm_kgcond_x_dim(kc), .y_dim = 1,
                  .cond_dim = cond};
    kgm_tasksrc src = {.x_dim = t.x_dim, .y_dim = 1, .cond_dim = t.cond_dim};
    kgm_episode_alloc(&t, &src, K_SHOT, N_QUERY);
    float *fast = malloc(kgm_meta_net(models[0])->n_params * sizeof *fast);
    for (size_t i = 0; i < n; i++) {
        size_t task = (size_t)kgm_kgcond_role_task(kc, 2, i);
        mse[i] = task_mse(models[family ? family[task] : 0], kc, task, steps, &t, fast);
    }
    double mean, ci;
    kgm_stats_mean_ci(mse, (int)n, &mean, &ci);
    printf("%-34s %8.3f +- %.3f   (%zu tasks, %d steps, %d iterations)\n", row, mean, ci, n, steps, iterations);
    print_diverged(kc, mse, n);
    if (mse_out) save_row(row, kc, mse, n);
    if (is_baseline) {
        snprintf(baseline.label, sizeof baseline.label, "  minus no conditioning");
        for (size_t i = 0; i < n; i++)
            if (reference_add(&baseline, kgm_kgcond_iri(kc, (size_t)kgm_kgcond_role_task(kc, 2, i)), mse[i])) break;
    } else if (baseline.n && steps > 0) print_paired(&baseline, kc, mse, n);
    if (saved.n && steps > 0) print_paired(&saved, kc, mse, n);
    fflush(stdout);
    free(fast);
    free(mse);
    kgm_episode_release(&t);
}

static int die(const char *what);

/* kgcond's defaults as every learner's row builds them (--normalize); the zero row predicts 0
 * in the original units and keeps the plain defaults. */
static kgm_kgcond_opts learner_cond_opts(void)
{
    kgm_kgcond_opts o = kgm_kgcond_opts_default();
    o.normalize = normalize;
    return o;
}

/* Reference for the zero-shot rows: query MSE of predicting 0 everywhere. The families'
 * parameter ranges are symmetric, so E[y | x, family] is about 0 and this is close to the best
 * any start can do without examples; an init trained as a starting point for inner steps is
 * not trained to predict before them. */
static int row_predict_zero(void)
{
    const char *files[] = {"kgmeta.ttl", "sixfam-tasks.ttl", "sixfam-new.ttl", NULL};
    kgm_store *st = open_graph(files);
    kgm_kgcond_opts o = kgm_kgcond_opts_default();
    o.use_embedding = 0;
    kgm_kgcond *kc = NULL;
    if (!st || kgm_kgcond_build(&kc, st, NULL, NULL, &o)) return die("zero graph");
    size_t n = kgm_kgcond_n_tasks(kc, 2);
    if ((size_t)test_tasks < n) n = (size_t)test_tasks;
    double *mse = malloc(n * sizeof *mse);
    kgm_tasksrc src = {.x_dim = kgm_kgcond_x_dim(kc), .y_dim = 1};
    kgm_episode t;
    if (!mse || kgm_episode_alloc(&t, &src, K_SHOT, N_QUERY)) return die("zero row");
    for (size_t i = 0; i < n; i++) {
        if (kgm_kgcond_task(kc, (size_t)kgm_kgcond_role_task(kc, 2, i), seed + 1000003, &t)) return die("zero task");
        mse[i] = 0;
        for (int q = 0; q < N_QUERY; q++) mse[i] += t.yq[q] * (double)t.yq[q] / N_QUERY;
    }
    double mean, ci;
    kgm_stats_mean_ci(mse, (int)n, &mean, &ci);
    printf("%-34s %8.3f +- %.3f   (%zu tasks, no model)\n", "predict 0 (zero-shot reference)", mean, ci, n);
    free(mse);
    kgm_episode_release(&t);
    kgm_kgcond_free(kc);
    kgm_store_free(st);
    return 0;
}

static int die(const char *what)
{
    fprintf(stderr, "bench_sixfam: %s: %s\n", what, kgm_error());
    return 1;
}

static int row_none(void)
{
    const char *files[] = {"kgmeta.ttl", "sixfam-tasks.ttl", "sixfam-new.ttl", NULL};
    kgm_store *st = open_graph(files);
    kgm_kgcond_opts o = learner_cond_opts();
    o.use_embedding = 0;
    kgm_kgcond *kc = NULL;
    if (!st || kgm_kgcond_build(&kc, st, NULL, NULL, &o)) return die("none graph");
    kgm_meta *mt = train(kc, &kgm_init_none, 0, "none");
    if (!mt) return die("train none");
    char row[64];
    snprintf(row, sizeof row, "%s, no conditioning", learner_label());
    evaluate(row, &mt, NULL, kc, 0, 20, 1);
    kgm_meta_free(mt);
    kgm_kgcond_free(kc);
    kgm_store_free(st);
    return 0;
}

/* One MAML per family, each trained on its family's meta-train tasks for the given number of
 * iterations (split: the protocol's iterations divided between the families, so the six models
 * together cost what one conditioned model does); test tasks go to their family's model
 * (families from the family graph). */
static int row_per_family(int split)
{
    const char *files[] = {"kgmeta.ttl", "sixfam-tasks.ttl", "sixfam-new.ttl", "sixfam-family.ttl",
                           "sixfam-new-family.ttl", NULL};
    kgm_store *st = open_graph(files);
    kgm_kgcond_opts o = learner_cond_opts();
    o.use_embedding = 0;
    kgm_kgcond *kc = NULL;
    if (!st || kgm_kgcond_build(&kc, st, NULL, NULL, &o)) return die("family graph");
    int n_fam;
    int *family = task_classes(st, kc, "SELECT ?t ?f WHERE { ?t <http://kgmeta.org/data/sixfam#family> ?f } ORDER BY ?f",
                               0, &n_fam);
    if (!family) return die("family query");
    size_t n = kgm_kgcond_n_tasks(kc, -1);
    kgm_meta *models[8] = {0};
    for (int f = 0; f < n_fam; f++) {
        subset s = {kc, malloc(n * sizeof(size_t)), 0};
        for (size_t j = 0; j < kgm_kgcond_n_tasks(kc, 0); j++) {
            size_t i = (size_t)kgm_kgcond_role_task(kc, 0, j);
            if (family[i] == f) s.idx[s.n++] = i;
        }
        kgm_tasksrc src = {.name = "family", .x_dim = kgm_kgcond_x_dim(kc), .y_dim = 1, .ctx = &s, .sample = subset_sample};
        char name[32];
        snprintf(name, sizeof name, "perfamily%s-%d", split ? "-split" : "", f);
        models[f] = train_or_load(learner(kc, &kgm_init_none, 0, split ? (iterations + n_fam - 1) / n_fam : iterations),
                                  &src, "one family", name);
        if (!models[f]) return die("train per family");
        free(s.idx);
    }
    char row[64];
    snprintf(row, sizeof row, "one %s per family%s", learner_label(), split ? ", split" : "");
    evaluate(row, models, family, kc, 0, 20, 0);
    for (int f = 0; f < n_fam; f++) kgm_meta_free(models[f]);
    free(family);
    kgm_kgcond_free(kc);
    kgm_store_free(st);
    return 0;
}

static int has_row(const char *list, const char *name);

static int rows_graph(const char *label, const char *links, const char *new_links)
{
    const char *files[] = {"kgmeta.ttl", "sixfam-tasks.ttl", "sixfam-new.ttl", links, new_links,
                           attributes ? "sixfam-features.ttl" : NULL, NULL};
    kgm_store *st = open_graph(files);
    kgm_kgcond *kc = NULL;
    kgm_kgcond_opts o = learner_cond_opts();
    o.prototypes = prototypes;
    if (emb_model) {
        kgm_emb_model m;
        if (kgm_emb_model_parse(emb_model, &m)) return die("--emb");
        const int dim = o.emb.dim, epochs = o.emb.epochs, threads = o.emb.threads;
        kgm_emb_opts_default(&o.emb, m);
        o.emb.dim = dim; o.emb.epochs = epochs; o.emb.threads = threads;
    }
    if (emb_dim > 0) o.emb.dim = emb_dim;
    if (emb_epochs > 0) o.emb.epochs = emb_epochs;
    double t0 = now_s();
    if (!st || kgm_kgcond_build(&kc, st, NULL, NULL, &o)) return die(label);
    fprintf(stderr, "%s graph: embedding + fold-in %.1f s, cond_dim %d (%d attribute codes)\n", label, now_s() - t0,
            kgm_kgcond_cond_dim(kc), kgm_kgcond_n_codes(kc));
    int *family = generator_families(st, kc);
    if (!family) return die("generator query");
    printf("%s graph: nearest meta-train task by e(t) has the test task's family for %.1f%% of test tasks;"
           " %.1f%% of the variance of e(t) lies between families\n",
           label, 100.0 * nn_family_accuracy(kc, family), 100.0 * family_variance_share(kc, family));
    free(family);
    const kgm_init_stage *stages[] = {&kgm_init_shift, &kgm_init_film};
    for (int s = 0; s < 2; s++) {
        if (!has_row(stage_list, stages[s]->name)) continue;
        char row[96];
        snprintf(row, sizeof row, "%s-%s", stages[s]->name, label);
        kgm_meta *mt = train(kc, stages[s], 1, row);
        if (!mt) return die("train conditioned");
        snprintf(row, sizeof row, "%s, %s graph", stages[s]->name, label);
        evaluate(row, &mt, NULL, kc, kgm_kgcond_cond_dim(kc), 20, 0);
        snprintf(row, sizeof row, "%s, %s graph, zero-shot", stages[s]->name, label);
        evaluate(row, &mt, NULL, kc, kgm_kgcond_cond_dim(kc), 0, 0);
        kgm_meta_free(mt);
    }
    kgm_kgcond_free(kc);
    kgm_store_free(st);
    return 0;
}

/* Index of each task's value of property prop (0 .. n_values - 1, in the order of values[],
 * matched by IRI suffix), -1 when missing. Diagnostics only. */
static int attribute_index(kgm_store *st, const kgm_kgcond *kc, const char *prop, const char *const *values,
                           int n_values, int *out)
{
    char q[256];
    snprintf(q, sizeof q, "SELECT ?t ?v WHERE { ?t <http://kgmeta.org/data/sixfam#%s> ?v }", prop);
    kgm_table *tb = NULL;
    if (kgm_store_select(st, q, &tb)) return -1;
    for (size_t i = 0; i < kgm_kgcond_n_tasks(kc, -1); i++) out[i] = -1;
    for (size_t r = 0; r < tb->n_rows; r++) {
        long i = kgm_kgcond_find(kc, tb->cells[r * 2].value);
        const char *v = strrchr(tb->cells[r * 2 + 1].value, '#');
        for (int j = 0; i >= 0 && v && j < n_values; j++)
            if (!strcmp(v + 1, values[j])) out[i] = j;
    }
    kgm_table_free(tb);
    return 0;
}

/* Oracle codes (diagnostic): "family": one-hot family (6); "attr": one-hot family, band and
 * sign side by side (6 + 3 + 2, a missing attribute all zeros); "hier": one-hot family, family
 * x band and family x sign (6 + 18 + 12); "cell": one-hot of the
 * (family, band or missing, sign or missing) combination (6 x 4 x 3), what a per-cell start
 * could reach from the graph's information at all. Returns a new (n_tasks, dim) array. */
static float *oracle_codes(kgm_store *st, const kgm_kgcond *kc, const char *mode, int *dim)
{
    static const char *const bands[] = {"Low", "Mid", "High"}, *const signs[] = {"Positive", "Negative"};
    size_t n = kgm_kgcond_n_tasks(kc, -1);
    int *family = generator_families(st, kc), *band = malloc(n * sizeof *band), *sign = malloc(n * sizeof *sign);
    int hier = !strcmp(mode, "hier");
    *dim = !strcmp(mode, "family") ? N_FAMILIES : !strcmp(mode, "attr") ? N_FAMILIES + 5 : hier ? N_FAMILIES * 6
         : N_FAMILIES * 12;
    float *code = calloc(n * (size_t)*dim, sizeof *code);
    if (!family || !band || !sign || !code || attribute_index(st, kc, "scaleBand", bands, 3, band) ||
        attribute_index(st, kc, "originSign", signs, 2, sign)) {
        free(family); free(band); free(sign); free(code);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        float *c = code + i * (size_t)*dim;
        if (*dim == N_FAMILIES * 12) { c[family[i] * 12 + (band[i] + 1) * 3 + sign[i] + 1] = 1; continue; }
        if (hier) {   /* family, then family x band and family x sign beside it */
            c[family[i]] = 1;
            if (band[i] >= 0) c[N_FAMILIES + family[i] * 3 + band[i]] = 1;
            if (sign[i] >= 0) c[N_FAMILIES * 4 + family[i] * 2 + sign[i]] = 1;
            continue;
        }
        c[family[i]] = 1;
        if (*dim == N_FAMILIES) continue;
        if (band[i] >= 0) c[N_FAMILIES + band[i]] = 1;
        if (sign[i] >= 0) c[N_FAMILIES + 3 + sign[i]] = 1;
    }
    free(family); free(band); free(sign);
    return code;
}

/* Diagnostic: shift and FiLM conditioned on an oracle code (oracle_codes), to tell a weak
 * embedding from a weak conditioning path, and to measure what the graph's information
 * (family and attributes) can reach at all. */
static int rows_oracle(const char *mode)
{
    const char *files[] = {"kgmeta.ttl", "sixfam-tasks.ttl", "sixfam-new.ttl", NULL};
    kgm_store *st = open_graph(files);
    kgm_kgcond_opts o = learner_cond_opts();
    o.use_embedding = 0;
    kgm_kgcond *kc = NULL;
    if (!st || kgm_kgcond_build(&kc, st, NULL, NULL, &o)) return die("oracle graph");
    float *code = oracle_codes(st, kc, mode, &oracle_dim);
    if (!code) return die("oracle query");
    oracle_code = code;
    const kgm_init_stage *stages[] = {&kgm_init_shift, &kgm_init_film};
    for (int s = 0; s < 2; s++) {
        if (!has_row(stage_list, stages[s]->name)) continue;
        oracle_ctx ctx = {kc};
        kgm_tasksrc src = {.name = "oracle", .x_dim = kgm_kgcond_x_dim(kc), .y_dim = 1, .cond_dim = oracle_dim,
                           .ctx = &ctx, .sample = oracle_sample};
        kgm_meta *mt = learner(kc, stages[s], oracle_dim, iterations);
        if (!mt || timed_train(mt, &src, "oracle")) return die("train oracle");
        char row[96];
        snprintf(row, sizeof row, "%s, oracle %s code", stages[s]->name, mode);
        evaluate(row, &mt, NULL, kc, oracle_dim, 20, 0);
        snprintf(row, sizeof row, "%s, oracle %s code, zero-shot", stages[s]->name, mode);
        evaluate(row, &mt, NULL, kc, oracle_dim, 0, 0);
        kgm_meta_free(mt);
    }
    oracle_code = NULL;
    free(code);
    kgm_kgcond_free(kc);
    kgm_store_free(st);
    return 0;
}

/* name is one of the comma-separated words of list */
static int has_row(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || !p[n])) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    kgm_blas_fix_core(argv);   /* OpenBLAS's fast kernels (src/blascore.h); may re-execute */
    const char *rows = "zero,none,perfamily,family,similar";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--iterations")) iterations = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--test-tasks")) test_tasks = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--rows")) rows = argv[i + 1];
        else if (!strcmp(argv[i], "--prototypes")) prototypes = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--stages")) stage_list = argv[i + 1];
        else if (!strcmp(argv[i], "--cond-lr")) cond_lr = strtof(argv[i + 1], NULL);
        else if (!strcmp(argv[i], "--attributes")) attributes = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--mse-out")) mse_out = argv[i + 1];
        else if (!strcmp(argv[i], "--save-dir")) save_dir = argv[i + 1];
        else if (!strcmp(argv[i], "--cond-rates")) cond_rates = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--backtrack")) backtrack = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--train-backtrack")) train_backtrack = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--msl")) msl_steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--normalize")) normalize = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--emb")) emb_model = argv[i + 1];
        else if (!strcmp(argv[i], "--emb-dim")) emb_dim = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--emb-epochs")) emb_epochs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--load-dir")) load_dir = argv[i + 1];
        else if (!strcmp(argv[i], "--clip")) clip_norm = strtof(argv[i + 1], NULL);
        else if (!strcmp(argv[i], "--skip-nonfinite")) skip_nonfinite = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rate-lr")) rate_lr = strtof(argv[i + 1], NULL);
        else if (!strcmp(argv[i], "--weight-decay")) weight_decay = strtof(argv[i + 1], NULL);
        else if (!strcmp(argv[i], "--lr-floor")) lr_floor = strtof(argv[i + 1], NULL);
        else if (!strcmp(argv[i], "--pair-with")) { if (reference_load(&saved, argv[i + 1])) return 2; }
        else if (!strcmp(argv[i], "--learner")) {
            if (kgm_learner_parse(argv[i + 1], &learner_kind)) { fprintf(stderr, "bench_sixfam: %s\n", kgm_error()); return 2; }
        }
        else { fprintf(stderr, "bench_sixfam: unknown option %s\n", argv[i]); return 2; }
    }
    if (backtrack < KGM_BACKTRACK_OFF || backtrack > KGM_BACKTRACK_GROW ||
        train_backtrack < KGM_BACKTRACK_OFF || train_backtrack > KGM_BACKTRACK_GROW) {
        fprintf(stderr, "bench_sixfam: --backtrack and --train-backtrack: expected 0, 1 or 2\n");
        return 2;
    }
    printf("six-family, %s, %d-shot, %d meta-iterations, published MAML 2.292 MuMoMAML 0.523 HSML 0.494 ARML 0.438\n",
           kgm_learner_name(learner_kind), K_SHOT, iterations);
    printf("conditioned rows: e(t) %s, init stage Adam rate %g (theta*: 0.001)\n",
           prototypes > 0 ? "as prototype codes" : "as standardized embedding rows", cond_lr > 0 ? (double)cond_lr : 0.001);
    if (prototypes > 0) printf("prototypes: %d\n", prototypes);
    if (rate_lr > 0 && learner_kind == KGM_METASGD) printf("inner rates' Adam rate %g\n", (double)rate_lr);
    if (backtrack) printf("test adaptation: a step that does not lower the support loss is retried at half the rates\n");
    if (backtrack == KGM_BACKTRACK_GROW) printf("test adaptation: a step that lowers it at its first try doubles the rates (to 4x at most)\n");
    if (train_backtrack) printf("meta-training's inner steps backtrack the same way%s\n",
                                train_backtrack == KGM_BACKTRACK_GROW ? ", and grow" : "");
    if (msl_steps) printf("multi-step meta-loss: every inner step's query loss, annealed to the last's over %d outer steps\n", msl_steps);
    if (cond_rates) printf("conditioned rows: inner rates scaled per unit by 1 + tanh(R e(t))\n");
    if (clip_norm > 0 || skip_nonfinite > 0)
        printf("outer-step guards: meta-gradient norm clipped to %g (0: off), up to %d non-finite meta-batches"
               " in a row skipped (0: off)\n", (double)clip_norm, skip_nonfinite);
    if (normalize) printf("inputs and outputs standardized by meta-train statistics; MSE in the original units\n");
    if (weight_decay > 0) printf("decoupled weight decay of theta*: %g\n", (double)weight_decay);
    if (lr_floor < 1.0f) printf("Adam rates: cosine decay over the iterations to %g times their value\n", (double)lr_floor);
    double t0 = now_s();
    int rc = 0;
    if (!rc && has_row(rows, "zero")) rc = row_predict_zero();
    if (!rc && has_row(rows, "none")) rc = row_none();
    if (!rc && has_row(rows, "perfamily")) rc = row_per_family(0);
    if (!rc && has_row(rows, "perfamily-split")) rc = row_per_family(1);
    if (!rc && has_row(rows, "family")) rc = rows_graph("family", "sixfam-family.ttl", "sixfam-new-family.ttl");
    if (!rc && has_row(rows, "oracle")) rc = rows_oracle("family");
    if (!rc && has_row(rows, "oracle-attr")) rc = rows_oracle("attr");
    if (!rc && has_row(rows, "oracle-cell")) rc = rows_oracle("cell");
    if (!rc && has_row(rows, "oracle-hier")) rc = rows_oracle("hier");
    if (!rc && has_row(rows, "similar")) rc = rows_graph("similarTo", "sixfam-similar.ttl", "sixfam-new-similar.ttl");
    fprintf(stderr, "total %.0f s\n", now_s() - t0);
    reference_free(&baseline);
    reference_free(&saved);
    return rc;
}
