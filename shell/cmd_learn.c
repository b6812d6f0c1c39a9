/* shell/cmd_learn.c - the meta-learning commands: train, adapt, predict, evaluate, model
 * save/load and plot. The session keeps one model (the best state of the last training run
 * or the last loaded file), its loss curve, and the fast weights of the last adapted task.
 *
 * Task sources: source=sine is the MAML sinusoid family (models/tasksrc.h); source=graph
 * draws the store's meta-train tasks, each a pool of examples read once through
 * kg/tasks.h (shell/cmd_tasks.c), sampled with replacement per meta-task. cond=shift|film
 * conditions each task's start on e(t) from the graph (models/kgcond.h); `model load` of such
 * a model rebuilds e(t) from the open store.
 *
 * Training runs in chunks so the session can keep a loss curve and the best state by
 * validation loss; each chunk draws from its own stream (seed, chunk), so a run is
 * reproducible from its seed with threads=1 and with any thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "error.h"
#include "interrupt.h"
#include "kgcond.h"
#include "meta.h"
#include "plot.h"
#include "store.h"
#include "tune.h"

enum { N_CHUNKS = 20, POOL = 200, QUERY = 100 };

struct sh_learn {
    kgm_meta *meta;
    double *curve;              /* (n_curve, 3): iteration, training loss, validation loss */
    size_t n_curve;
    char *task;                 /* the last adapted task, NULL when none */
    float *fast;                /* its fast weights */
    sh_examples ex;             /* its examples */
    kgm_kgcond *kc;             /* the graph conditioning of the model, NULL when none */
    char *model_iri;            /* the model's mls:Model in the graph (trained here), or NULL */
    char *search;               /* IRI of the session's last tuning search, or NULL */
    kgm_meta_config tuned;      /* adopted settings: train starts from them when has_tuned */
    int has_tuned;
};

static struct sh_learn *state(kgm_shell *sh)
{
    if (!sh->learn) sh->learn = calloc(1, sizeof *sh->learn);
    if (!sh->learn) kgm_fail(KGM_ENOMEM, "out of memory");
    return sh->learn;
}

static void forget_task(struct sh_learn *L)
{
    free(L->task); free(L->fast); free(L->ex.x); free(L->ex.y); free(L->ex.cond);
    L->task = NULL; L->fast = NULL;
    memset(&L->ex, 0, sizeof L->ex);
}

/* The session's model goes on working in the store just opened, but its record (kgm:run-N-model)
 * is in the store it came from, where another store's run N would be some other model: what
 * the session records from here on names no model, unless one is trained or loaded here. */
void sh_learn_store_changed(kgm_shell *sh)
{
    struct sh_learn *L = sh->learn;
    if (!L) return;
    free(L->model_iri);
    L->model_iri = NULL;
}

void sh_learn_free(kgm_shell *sh)
{
    struct sh_learn *L = sh->learn;
    if (!L) return;
    kgm_meta_free(L->meta);
    kgm_kgcond_free(L->kc);
    free(L->curve);
    forget_task(L);
    free(L->search);
    free(L->model_iri);
    free(L);
    sh->learn = NULL;
}

/* ---- option parsing ---- */

static int opt_int(const kgm_shell_args *a, const char *name, int lo, int hi, int *out)
{
    const char *v = sh_opt(a, name);
    if (!v) return 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi)
        return kgm_fail(KGM_EINVAL, "%s: expected a whole number %d..%d, got '%s'", name, lo, hi, v);
    *out = (int)x;
    return 0;
}

/* v as a whole finite number into *x; 0 when it is not one */
static int finite_number(const char *v, double *x)
{
    char *end;
    *x = strtod(v, &end);
    return *v && !*end && isfinite(*x);
}

static int opt_float(const kgm_shell_args *a, const char *name, float *out)
{
    const char *v = sh_opt(a, name);
    double x;
    if (!v) return 0;
    if (!finite_number(v, &x) || x <= 0)
        return kgm_fail(KGM_EINVAL, "%s: expected a positive number, got '%s'", name, v);
    *out = (float)x;
    return 0;
}

/* name=F with F a fraction in [0, 1] */
static int opt_fraction(const kgm_shell_args *a, const char *name, float *out)
{
    const char *v = sh_opt(a, name);
    double x;
    if (!v) return 0;
    if (!finite_number(v, &x) || x < 0 || x > 1)
        return kgm_fail(KGM_EINVAL, "%s: expected a number in [0, 1], got '%s'", name, v);
    *out = (float)x;
    return 0;
}

/* hidden=40,40: one to six hidden widths. */
static int opt_hidden(const kgm_shell_args *a, int *sizes, int *n_hidden)
{
    const char *v = sh_opt(a, "hidden");
    if (!v) { sizes[1] = sizes[2] = 40; *n_hidden = 2; return 0; }
    int n = 0;
    for (const char *p = v; *p;) {
        char *end;
        long w = strtol(p, &end, 10);
        if (end == p || w < 1 || w > 4096 || n == KGM_MLP_MAX_LAYERS - 2 || (*end && *end != ','))
            return kgm_fail(KGM_EINVAL, "hidden: expected widths like 40,40 (1..6 layers of 1..4096), got '%s'", v);
        sizes[1 + n++] = (int)w;
        p = *end ? end + 1 : end;
    }
    *n_hidden = n;
    return 0;
}

/* ---- task sources ---- */

/* Examples of some store tasks held in memory; sampling only reads it, so worker threads
 * may share it. */
typedef struct {
    size_t n_tasks;
    int dim;
    sh_examples *ex;
} pool;

static void pool_free(pool *p)
{
    for (size_t i = 0; i < p->n_tasks; i++) { free(p->ex[i].x); free(p->ex[i].y); }
    free(p->ex);
    memset(p, 0, sizeof *p);
}

static int pool_sample(void *ctx, kgm_taskrng *rng, kgm_episode *t)
{
    const pool *p = ctx;
    const sh_examples *e = &p->ex[kgm_taskrng_next(rng) % p->n_tasks];
    size_t rows = e->n_support + e->n_query;
    for (int i = 0; i < t->n_support + t->n_query; i++) {
        size_t r = kgm_taskrng_next(rng) % rows;
        float *x = i < t->n_support ? t->xs + (size_t)i * (size_t)p->dim : t->xq + (size_t)(i - t->n_support) * (size_t)p->dim;
        float *y = i < t->n_support ? t->ys + i : t->yq + (i - t->n_support);
        for (int d = 0; d < p->dim; d++) x[d] = (float)e->x[r * (size_t)p->dim + (size_t)d];
        *y = (float)e->y[r];
    }
    return 0;
}

/* The store's tasks of a role, read once (POOL generated points each, or whole CSVs). */
static int pool_read(kgm_shell *sh, int role, pool *p, kgm_tasksrc *src)
{
    char **names = NULL;
    memset(p, 0, sizeof *p);
    int rc = sh_role_examples(sh, role, POOL, 0, &p->ex, &names, &p->n_tasks);
    if (!rc && p->n_tasks == 0)
        rc = kgm_fail(KGM_ENOTFOUND, "no %s tasks in the store (load a task graph, or use source=sine)",
                      role == 0 ? "meta-train" : role == 1 ? "meta-validation" : "meta-test");
    if (!rc) p->dim = p->ex[0].dim;
    for (size_t i = 0; !rc && i < p->n_tasks; i++)
        if (p->ex[i].dim != p->dim)
            rc = kgm_fail(KGM_EINVAL, "task %s has %d inputs, others %d: one network cannot learn both",
                          names[i], p->ex[i].dim, p->dim);
    for (size_t i = 0; i < p->n_tasks; i++) free(names[i]);
    free(names);
    if (rc) { pool_free(p); return rc; }
    *src = (kgm_tasksrc){ .name = "graph", .x_dim = p->dim, .y_dim = 1, .ctx = p, .sample = pool_sample };
    return 0;
}

/* A source drawing from `inner` on the stream re-keyed by chunk: kgm_meta_train numbers
 * its iterations from 0 at every call, so each chunk needs tasks of its own. */
typedef struct { const kgm_tasksrc *inner; uint64_t chunk; } chunked;

static int chunked_sample(void *ctx, kgm_taskrng *rng, kgm_episode *t)
{
    const chunked *c = ctx;
    kgm_taskrng r;
    kgm_taskrng_seed(&r, kgm_taskrng_next(rng), c->chunk, 0);
    return c->inner->sample(c->inner->ctx, &r, t);
}

/* ---- train ---- */

typedef struct {
    kgm_meta_config cfg;
    int sizes[KGM_MLP_MAX_LAYERS + 1], n_hidden;
    int graph;                      /* source=graph */
    const kgm_init_stage *init;     /* cond=: none, shift, film */
    int prototypes;                 /* prototypes=: e(t) as prototype codes (models/kgcond.h) */
    int decay;                      /* lr_floor= given: cosine decay over the whole run */
} train_opts;

static int train_parse(kgm_shell *sh, kgm_shell_args *a, train_opts *o)
{
    o->cfg = kgm_meta_config_default();
    if (sh->learn && sh->learn->has_tuned) o->cfg = sh->learn->tuned;   /* tune adopt */
    o->cfg.iterations = 1000;
    o->cfg.threads = sh->threads;
    o->cfg.seed = sh->seed;
    const char *v;
    if ((v = sh_opt(a, "learner")) && kgm_learner_parse(v, &o->cfg.learner) != 0)
        return kgm_fail(KGM_EINVAL, "learner: expected maml, fomaml, metasgd, anil or reptile, got '%s'", v);
    o->init = &kgm_init_none;
    o->prototypes = 0;
    if ((v = sh_opt(a, "cond")) && !(o->init = kgm_init_find(v)))
        return kgm_fail(KGM_EINVAL, "cond: expected none, shift or film, got '%s'", v);
    o->graph = o->init != &kgm_init_none;   /* conditioning needs the graph's tasks */
    if ((v = sh_opt(a, "source"))) {
        if (!strcmp(v, "graph")) o->graph = 1;
        else if (strcmp(v, "sine"))
            return kgm_fail(KGM_EINVAL, "source: expected graph or sine, got '%s'", v);
        else if (o->graph)
            return kgm_fail(KGM_EINVAL, "cond=%s conditions on the graph: it needs source=graph", o->init->name);
    }
    int shots = o->cfg.n_support, seed = -1;
    if (opt_int(a, "steps", 1, 100, &o->cfg.inner_steps) || opt_float(a, "alpha", &o->cfg.alpha) ||
        opt_float(a, "outer_lr", &o->cfg.outer_lr) || opt_int(a, "batch", 1, 1000, &o->cfg.meta_batch) ||
        opt_int(a, "iterations", 1, 10000000, &o->cfg.iterations) || opt_int(a, "shots", 1, 1000, &shots) ||
        opt_int(a, "threads", 1, 256, &o->cfg.threads) || opt_int(a, "seed", 0, 2147483647, &seed) ||
        opt_hidden(a, o->sizes, &o->n_hidden) || opt_float(a, "cond_lr", &o->cfg.cond_lr) ||
        opt_int(a, "prototypes", 0, 4096, &o->prototypes) || opt_float(a, "clip", &o->cfg.clip_norm) ||
        opt_float(a, "rate_lr", &o->cfg.rate_lr) || opt_float(a, "weight_decay", &o->cfg.weight_decay) ||
        opt_fraction(a, "lr_floor", &o->cfg.lr_floor) || opt_int(a, "cond_rates", 0, 1, &o->cfg.cond_rates) ||
        opt_int(a, "skip_nonfinite", 1, 1000000, &o->cfg.skip_nonfinite) ||
        opt_int(a, "inner_backtrack", 0, 2, &o->cfg.inner_backtrack) ||
        opt_int(a, "msl", 0, 100000000, &o->cfg.msl_steps))
        return KGM_EINVAL;
    if (o->init == &kgm_init_none && (sh_opt(a, "cond_lr") || sh_opt(a, "prototypes")))
        return kgm_fail(KGM_EINVAL, "cond_lr and prototypes set the conditioning: they need cond=shift or cond=film");
    if (sh_opt(a, "rate_lr") && o->cfg.learner != KGM_METASGD)
        return kgm_fail(KGM_EINVAL, "rate_lr sets Meta-SGD's inner rates: it needs learner=metasgd");
    if (o->cfg.cond_rates && (o->cfg.learner != KGM_METASGD || o->init == &kgm_init_none))
        return kgm_fail(KGM_EINVAL, "cond_rates scales Meta-SGD's inner rates by e(t): it needs learner=metasgd and cond=shift or cond=film");
    if (seed >= 0) o->cfg.seed = (uint64_t)seed;
    o->cfg.n_support = o->cfg.n_query = shots;
    /* lr_floor=F: the Adam rates' cosine decay to F spans the whole run (set in cmd_train) */
    o->decay = sh_opt(a, "lr_floor") != NULL;
    return 0;
}

static int curve_add(struct sh_learn *L, double it, double loss, double val)
{
    double *c = realloc(L->curve, (L->n_curve + 1) * 3 * sizeof *c);
    if (!c) return kgm_fail(KGM_ENOMEM, "out of memory");
    L->curve = c;
    c += L->n_curve++ * 3;
    c[0] = it; c[1] = loss; c[2] = val;
    return 0;
}

/* Validation loss after the run's inner steps on tasks of val (stream seed + 1). */
static int validate(kgm_meta *mt, const kgm_tasksrc *val, const kgm_meta_config *c, double *out)
{
    kgm_eval_spec spec = { .n_tasks = 20, .max_steps = c->inner_steps, .n_support = c->n_support,
                           .n_query = c->n_query, .alpha = 0, .seed = c->seed + 1 };
    double mean[101], ci[101];
    int rc = kgm_meta_evaluate(mt, val, &spec, mean, ci);
    if (!rc) *out = mean[c->inner_steps];
    return rc;
}

/* The chunked loop: after each chunk a validation point; the best parameters are copied
 * aside and put back at the end, interrupted or not. */
static int train_run(kgm_meta *mt, const kgm_tasksrc *src, const kgm_tasksrc *val,
                     const kgm_meta_config *c, struct sh_learn *L, int *best_it, int *done,
                     double *best_out, int *skipped)
{
    size_t np = kgm_meta_n_params(mt);
    float *best = malloc(np * sizeof *best);
    if (!best) return kgm_fail(KGM_ENOMEM, "out of memory");
    memcpy(best, kgm_meta_params(mt), np * sizeof *best);
    double best_val = INFINITY;
    int rc = 0, total = c->iterations * N_CHUNKS;   /* c->iterations: one chunk's */
    *best_it = 0;
    *done = 0;
    *skipped = 0;
    for (uint64_t k = 0; !rc && *done < total; k++) {
        chunked ch = { src, k };
        kgm_tasksrc cs = *src;
        cs.ctx = &ch;
        cs.sample = chunked_sample;
        kgm_meta_stats st = { 0 };
        rc = kgm_meta_train(mt, &cs, &st);
        *done += st.iterations_done;
        *skipped += st.skipped;
        double v = NAN;
        /* an interrupted chunk is validated too: its last state may be the best */
        if ((rc == 0 || rc == KGM_EINTR) && st.iterations_done > 0) {
            int vr = validate(mt, val, c, &v);
            if (vr) rc = vr;
            else if (v < best_val) {
                best_val = v;
                *best_it = *done;
                memcpy(best, kgm_meta_params(mt), np * sizeof *best);
            }
        }
        if (st.iterations_done > 0 && curve_add(L, *done, st.last_loss, v) != 0) rc = KGM_ENOMEM;
    }
    memcpy(kgm_meta_params(mt), best, np * sizeof *best);
    free(best);
    *best_out = best_val;
    return rc;
}

/* ---- runs in the graph ---- */

#define RUN_PREFIXES "PREFIX mls: <http://www.w3.org/ns/mls#> PREFIX kgm: <http://kgmeta.org/ns#> "

/* The number of runs of a series in the store (kgm:SERIES-N: "run" for training, "adaptation",
 * "evaluation"; tuning trials have IRIs of their own), so each series is numbered 1, 2, ... in
 * order (stable in scripts, unlike kgcond's time-stamped default). */
static int count_series(kgm_shell *sh, const char *cls, const char *series, long *n)
{
    char q[256];
    snprintf(q, sizeof q, RUN_PREFIXES "SELECT (COUNT(?r) AS ?n) WHERE { ?r a %s"
             " FILTER(STRSTARTS(STR(?r), \"http://kgmeta.org/ns#%s-\")) }", cls, series);
    kgm_table *t = NULL;
    int rc = kgm_store_select(sh->store, q, &t);
    *n = 0;
    if (!rc && t->n_rows == 1 && kgm_table_cell(t, 0, 0)->value) *n = atol(kgm_table_cell(t, 0, 0)->value);
    kgm_table_free(t);
    return rc;
}

/* v to 4 significant digits: the graph keeps what is worth reading, not float noise. */
static double sig4(double v)
{
    char b[32];
    snprintf(b, sizeof b, "%.4g", v);
    return strtod(b, NULL);
}

/* A run's hyperparameters as recorded: room for every setting train takes */
typedef struct { kgm_kgcond_value v[16]; size_t n; } hyper_list;

static void hyper_add(hyper_list *h, const char *name, double value)
{
    if (h->n < sizeof h->v / sizeof h->v[0]) h->v[h->n++] = (kgm_kgcond_value){ name, value };
}

/* Records a finished (or interrupted) run as ML Schema triples through models/kgcond.h. */
static int record_run(kgm_shell *sh, const train_opts *o, int chunks, const char *source,
                      double loss, double val, int done, char **model_iri)
{
    long n;
    if (count_series(sh, "mls:Run", "run", &n) != 0) return KGM_EINVAL;
    char iri[128];
    snprintf(iri, sizeof iri, "http://kgmeta.org/ns#run-%ld", n + 1);
    const kgm_meta_config *c = &o->cfg;
    hyper_list h = { .n = 0 };
    hyper_add(&h, "innerSteps", c->inner_steps);
    hyper_add(&h, "alpha", sig4(c->alpha));
    hyper_add(&h, "outerLr", sig4(c->outer_lr));
    hyper_add(&h, "metaBatch", c->meta_batch);
    hyper_add(&h, "iterations", (double)c->iterations * chunks);
    hyper_add(&h, "shots", c->n_support);
    hyper_add(&h, "seed", (double)c->seed);
    /* the optional settings, only when set */
    if (c->cond_lr > 0) hyper_add(&h, "condLr", sig4(c->cond_lr));
    if (o->prototypes > 0) hyper_add(&h, "prototypes", o->prototypes);
    if (c->rate_lr > 0) hyper_add(&h, "rateLr", sig4(c->rate_lr));
    if (c->cond_rates) hyper_add(&h, "condRates", 1);
    if (c->inner_backtrack) hyper_add(&h, "innerBacktrack", c->inner_backtrack);
    if (c->msl_steps) hyper_add(&h, "mslSteps", c->msl_steps);
    if (c->clip_norm > 0) hyper_add(&h, "clipNorm", sig4(c->clip_norm));
    if (c->skip_nonfinite > 0) hyper_add(&h, "skipNonfinite", c->skip_nonfinite);
    if (c->weight_decay > 0) hyper_add(&h, "weightDecay", sig4(c->weight_decay));
    if (c->lr_decay_steps > 0) hyper_add(&h, "lrFloor", sig4(c->lr_floor));
    kgm_kgcond_value metrics[] = { { "iterationsDone", done }, { "trainingLoss", sig4(loss) },
                                   { "validationLoss", sig4(val) } };
    kgm_kgcond_run run = { .run_iri = iri, .learner = kgm_learner_name(c->learner), .init_stage = o->init->name,
                           .dataset = source, .hyper = h.v, .n_hyper = h.n,
                           .metrics = metrics, .n_metrics = isfinite(val) ? 3 : 2 };
    if (kgm_kgcond_record(sh->store, &run, NULL) != 0) return KGM_EINVAL;
    fprintf(sh->out, "recorded as kgm:run-%ld (runs lists the runs)\n", n + 1);
    size_t len = strlen(iri) + sizeof "-model";   /* the recorder names the run's model <run>-model */
    if ((*model_iri = malloc(len))) snprintf(*model_iri, len, "%s-model", iri);
    return 0;
}

/* Records an adaptation or evaluation of the session's model (kind "adaptation" or
 * "evaluation", numbered kgm:KIND-N in its own series) as an mls:Run whose inputs are the
 * model, when it was trained in this session, and the task, when there is one. */
static int record_use(kgm_shell *sh, struct sh_learn *L, const char *kind, const char *task, const char *dataset,
                      const kgm_kgcond_value *hyper, size_t n_hyper, const kgm_kgcond_value *metrics, size_t n_metrics)
{
    long n;
    if (count_series(sh, "mls:Run", kind, &n) != 0) return KGM_EINVAL;
    char iri[128];
    snprintf(iri, sizeof iri, "http://kgmeta.org/ns#%s-%ld", kind, n + 1);
    char *task_iri = task ? kgm_store_expand(sh->store, task) : NULL;
    if (task && !task_iri) return KGM_EINVAL;
    const char *inputs[2];
    size_t n_inputs = 0;
    if (L->model_iri) inputs[n_inputs++] = L->model_iri;
    if (task_iri) inputs[n_inputs++] = task_iri;
    kgm_kgcond_value finite[8];   /* a diverged task's NaN is left out, as train leaves out a missing validation */
    size_t n_finite = 0;
    for (size_t i = 0; i < n_metrics && n_finite < 8; i++) if (isfinite(metrics[i].value)) finite[n_finite++] = metrics[i];
    kgm_kgcond_run run = { .run_iri = iri, .learner = kgm_learner_name(kgm_meta_cfg(L->meta)->learner),
                           .init_stage = kgm_meta_init_stage(L->meta)->name,
                           .dataset = dataset, .hyper = hyper, .n_hyper = n_hyper, .metrics = finite,
                           .n_metrics = n_finite, .inputs = inputs, .n_inputs = n_inputs,
                           .no_model = !strcmp(kind, "evaluation") };
    int rc = kgm_kgcond_record(sh->store, &run, NULL);
    free(task_iri);
    return rc;
}

/* Runs q and prints it with numeric literals shown to 4 significant digits (the recorders
 * write doubles in full, noise included). */
static int run_query(kgm_shell *sh, const char *q)
{
    kgm_table *t = NULL;
    kgm_query_kind kind;
    int rc = kgm_store_query(sh->store, q, &kind, &t);
    for (size_t c = 0; !rc && c < t->n_cols; c++) {
        for (size_t r = 0; !rc && r < t->n_rows; r++) {
            const kgm_cell *cell = kgm_table_cell(t, r, c);
            char *end, b[32];
            if ((cell->kind != KGM_CELL_LITERAL && cell->kind != KGM_CELL_NUMBER) || !cell->value) continue;
            double v = strtod(cell->value, &end);
            if (*end || end == cell->value) continue;
            snprintf(b, sizeof b, "%.4g", v);
            rc = kgm_table_set(t, r, c, KGM_CELL_NUMBER, b, NULL, NULL);
        }
    }
    if (!rc) rc = sh_print_table(sh, t);
    kgm_table_free(t);
    return rc ? 1 : 0;
}

int cmd_runs(kgm_shell *sh, kgm_shell_args *a)
{
    (void)a;
    return run_query(sh, RUN_PREFIXES
        "SELECT ?run ?learner ?stage ?metric ?value WHERE {"
        " ?run a mls:Run ; mls:executes ?learner ;"
        " kgm:initStage ?stage . FILTER(!STRSTARTS(STR(?run), \"http://kgmeta.org/ns#adaptation-\") &&"
        " !STRSTARTS(STR(?run), \"http://kgmeta.org/ns#evaluation-\")) OPTIONAL { ?run mls:hasOutput ?e . ?e a mls:ModelEvaluation ;"
        " mls:specifiedBy ?metric ; mls:hasValue ?value } } ORDER BY ?run ?metric");
}

int cmd_models(kgm_shell *sh, kgm_shell_args *a)
{
    (void)a;
    return run_query(sh, RUN_PREFIXES
        "SELECT ?model ?run ?file WHERE { ?model a mls:Model . OPTIONAL { ?run a mls:Run ; mls:hasOutput ?model }"
        " OPTIONAL { ?model kgm:modelFile ?file } } ORDER BY ?run ?model");
}

/* e(t) of the store's tasks: an embedding of the descriptive graph trained without the
 * meta-test tasks, which are folded in (models/kgcond.h). Seeded, so the same graph, seed and
 * prototypes give the same vectors: what lets a loaded model find its tasks again. */
static int build_conditioning(kgm_shell *sh, uint64_t seed, int prototypes, kgm_kgcond **kc)
{
    kgm_kgcond_opts ko = kgm_kgcond_opts_default();
    ko.seed = seed;
    ko.emb.seed = seed;
    ko.prototypes = prototypes;
    return kgm_kgcond_build(kc, sh->store, ".", NULL, &ko);
}

int cmd_train(kgm_shell *sh, kgm_shell_args *a)
{
    train_opts o;
    struct sh_learn *L = state(sh);
    if (!L || train_parse(sh, a, &o) != 0) return 1;
    int chunks = o.cfg.iterations < N_CHUNKS ? o.cfg.iterations : N_CHUNKS;
    o.cfg.iterations /= chunks;              /* one chunk's; the run is a multiple of it */
    if (o.decay) o.cfg.lr_decay_steps = o.cfg.iterations * chunks;   /* across every chunk */
    pool tr = { 0 }, va = { 0 };
    kgm_sinusoid sine = { 0 };
    kgm_tasksrc src, val;
    kgm_kgcond *kc = NULL;
    kgm_kgcond_src kc_tr, kc_va;
    int rc = 0, cond_dim = 0;
    if (o.init != &kgm_init_none) {
        rc = build_conditioning(sh, o.cfg.seed, o.prototypes, &kc);
        if (!rc) rc = kgm_kgcond_tasksrc(kc, 0, 1, &kc_tr, &src);
        if (!rc && (kgm_kgcond_n_tasks(kc, 1) == 0 || kgm_kgcond_tasksrc(kc, 1, 1, &kc_va, &val) != 0)) val = src;
        if (!rc) cond_dim = kgm_kgcond_cond_dim(kc);
    } else if (o.graph) {
        rc = pool_read(sh, 0, &tr, &src);
        if (!rc && pool_read(sh, 1, &va, &val) != 0) val = src;   /* no validation tasks: train's */
    } else {
        kgm_tasksrc_sinusoid(&src, &sine);
        val = src;
    }
    kgm_meta *mt = NULL;
    if (!rc) {
        o.sizes[0] = src.x_dim;
        o.sizes[o.n_hidden + 1] = 1;
        kgm_mlp net;
        rc = kgm_mlp_init(&net, o.n_hidden + 1, o.sizes, KGM_ACT_RELU, KGM_LOSS_MSE);
        if (!rc) rc = kgm_meta_new(&mt, &net, &o.cfg, o.init, cond_dim);
    }
    /* a new curve only once the run can start: a refused train keeps the last one */
    double *old_curve = L->curve;
    size_t old_n = L->n_curve;
    int best_it = 0, done = 0, skipped = 0;
    double best_val = NAN;
    if (!rc) {
        L->curve = NULL;
        L->n_curve = 0;
        rc = train_run(mt, &src, &val, &o.cfg, L, &best_it, &done, &best_val, &skipped);
    }
    if (rc == 0 || (rc == KGM_EINTR && done > 0)) {
        free(old_curve);
        kgm_meta_free(L->meta);
        L->meta = mt;
        mt = NULL;
        kgm_kgcond_free(L->kc);
        L->kc = kc;
        kc = NULL;
        forget_task(L);
        const double *last = L->n_curve ? L->curve + (L->n_curve - 1) * 3 : NULL;
        fprintf(sh->out, "trained %s on %s tasks: %d iterations, loss %.3g; kept iteration %d (validation %.3g)\n",
                kgm_learner_name(o.cfg.learner), src.name, done, last ? last[1] : NAN, best_it,
                best_val);
        if (o.cfg.skip_nonfinite > 0)
            fprintf(sh->out, "skipped %d meta-batches with a loss or meta-gradient that was not finite\n", skipped);
        int interrupted = rc == KGM_EINTR;
        if (interrupted) kgm_interrupt_clear();   /* the stop is honoured; recording must not stop too */
        free(L->model_iri);
        L->model_iri = NULL;
        rc = record_run(sh, &o, chunks, src.name, last ? last[1] : NAN, best_val, done, &L->model_iri);
        if (!rc && interrupted) rc = kgm_fail(KGM_EINTR, "train: interrupted after %d iterations; kept the best state", done);
    } else if (L->curve != old_curve) {     /* the run failed: the last curve stays */
        free(L->curve);
        L->curve = old_curve;
        L->n_curve = old_n;
    }
    kgm_meta_free(mt);
    kgm_kgcond_free(kc);
    pool_free(&tr);
    pool_free(&va);
    return rc ? 1 : 0;
}

/* ---- adapt, predict, evaluate ---- */

static int need_model(struct sh_learn *L, const char *cmd)
{
    if (!L || !L->meta) return kgm_fail(KGM_EINVAL, "%s: no model yet (train or model load first)", cmd);
    return 0;
}

/* A models/tasksrc.h task viewing ex as floats (support rows first); release with
 * kgm_episode_release. */
static int as_task(const sh_examples *ex, kgm_episode *t)
{
    memset(t, 0, sizeof *t);
    size_t n = ex->n_support + ex->n_query, d = (size_t)ex->dim;
    float *x = malloc((n * d + 1) * sizeof *x), *y = malloc((n + 1) * sizeof *y);
    if (!x || !y) { free(x); free(y); return kgm_fail(KGM_ENOMEM, "out of memory"); }
    for (size_t i = 0; i < n * d; i++) x[i] = (float)ex->x[i];
    for (size_t i = 0; i < n; i++) y[i] = (float)ex->y[i];
    *t = (kgm_episode){ .n_support = (int)ex->n_support, .n_query = (int)ex->n_query, .x_dim = ex->dim,
                     .y_dim = 1, .xs = x, .ys = y, .xq = x + ex->n_support * d, .yq = y + ex->n_support,
                     .cond = ex->cond, .cond_dim = ex->cond_dim };
    return 0;
}

static void task_free(kgm_episode *t) { free(t->xs); free(t->ys); memset(t, 0, sizeof *t); }

/* Task i of the conditioning's task set as examples with its e(t). */
static int kc_examples(const kgm_kgcond *kc, size_t i, uint64_t seed, int shots, sh_examples *ex)
{
    kgm_tasksrc src;
    kgm_kgcond_src ctx;
    kgm_episode t;
    memset(ex, 0, sizeof *ex);
    int rc = kgm_kgcond_tasksrc(kc, 0, 1, &ctx, &src);
    if (!rc) rc = kgm_episode_alloc(&t, &src, shots, QUERY);
    if (rc) return rc;
    rc = kgm_kgcond_task(kc, i, seed, &t);
    size_t n = (size_t)(t.n_support + t.n_query), d = (size_t)t.x_dim;
    ex->x = rc ? NULL : malloc((n * d + 1) * sizeof *ex->x);
    ex->y = rc ? NULL : malloc((n + 1) * sizeof *ex->y);
    ex->cond = rc ? NULL : malloc(((size_t)t.cond_dim + 1) * sizeof *ex->cond);
    if (!rc && (!ex->x || !ex->y || !ex->cond)) rc = kgm_fail(KGM_ENOMEM, "out of memory");
    if (!rc) {
        for (size_t r = 0; r < n; r++) {
            int sup = r < (size_t)t.n_support;
            size_t k = sup ? r : r - (size_t)t.n_support;
            for (size_t c = 0; c < d; c++) ex->x[r * d + c] = (sup ? t.xs : t.xq)[k * d + c];
            ex->y[r] = (sup ? t.ys : t.yq)[k];
        }
        memcpy(ex->cond, t.cond, (size_t)t.cond_dim * sizeof *ex->cond);
        ex->n_support = (size_t)t.n_support;
        ex->n_query = (size_t)t.n_query;
        ex->dim = t.x_dim;
        ex->cond_dim = t.cond_dim;
    } else {
        free(ex->x); free(ex->y); free(ex->cond);
        memset(ex, 0, sizeof *ex);
    }
    kgm_episode_release(&t);
    return rc;
}

/* A task's examples for the session's model: with e(t) when the model is conditioned. */
static int model_examples(kgm_shell *sh, struct sh_learn *L, const char *name, int shots, sh_examples *ex)
{
    if (!L->kc) return sh_task_examples(sh, name, (size_t)shots, QUERY, ex);
    char *iri = kgm_store_expand(sh->store, name);
    if (!iri) return KGM_EINVAL;
    long i = kgm_kgcond_find(L->kc, iri);
    free(iri);
    if (i < 0) return kgm_fail(KGM_ENOTFOUND, "no task %s among the conditioned model's tasks", name);
    return kc_examples(L->kc, (size_t)i, sh->seed, shots, ex);
}

/* Squared and absolute errors of fast on t's query rows into se/ae (n_query each). */
static int query_errors(kgm_meta *mt, const float *fast, const kgm_episode *t, double *se, double *ae)
{
    float *out = malloc(((size_t)t->n_query + 1) * sizeof *out);
    if (!out) return kgm_fail(KGM_ENOMEM, "out of memory");
    int rc = kgm_meta_predict(mt, fast, t->xq, t->n_query, out);
    for (int i = 0; !rc && i < t->n_query; i++) {
        double e = (double)out[i] - t->yq[i];
        se[i] = e * e;
        ae[i] = fabs(e);
    }
    free(out);
    return rc;
}

static double mean_of(const double *x, int n)
{
    double m, ci;
    kgm_stats_mean_ci(x, n, &m, &ci);
    return m;
}

/* An adaptation computed but not yet the session's (adapt records it first). */
typedef struct { char *task; float *fast; sh_examples ex; } sh_adapted;

static void adapted_keep(struct sh_learn *L, sh_adapted *p)
{
    forget_task(L);
    L->task = p->task;
    L->fast = p->fast;
    L->ex = p->ex;
}

static void adapted_free(sh_adapted *p)
{
    free(p->task); free(p->fast); free(p->ex.x); free(p->ex.y); free(p->ex.cond);
}

static int adapt_compute(kgm_shell *sh, struct sh_learn *L, const char *name, int steps, int shots,
                         double *before, double *after, sh_adapted *out)
{
    sh_examples ex;
    if (model_examples(sh, L, name, shots, &ex) != 0) return KGM_EINVAL;
    size_t np = kgm_meta_net(L->meta)->n_params;
    kgm_episode t;
    float *fast = malloc(np * sizeof *fast), *fast0 = malloc(np * sizeof *fast0);
    double *se = malloc((ex.n_query + 1) * sizeof *se), *ae = malloc((ex.n_query + 1) * sizeof *ae);
    int rc = (fast && fast0 && se && ae) ? 0 : kgm_fail(KGM_ENOMEM, "out of memory");
    if (!rc && ex.dim != kgm_meta_net(L->meta)->sizes[0])
        rc = kgm_fail(KGM_EINVAL, "adapt: task %s has %d inputs, the model %d", name, ex.dim,
                      kgm_meta_net(L->meta)->sizes[0]);
    if (!rc && ex.n_query == 0) rc = kgm_fail(KGM_EINVAL, "adapt: task %s has no query examples", name);
    if (!rc) rc = as_task(&ex, &t);
    if (!rc) {
        kgm_meta_set_backtrack(L->meta, sh->backtrack);
        rc = kgm_meta_adapt(L->meta, &t, 0, fast0);
        if (!rc) rc = query_errors(L->meta, fast0, &t, se, ae);
        if (!rc) *before = mean_of(se, t.n_query);
        if (!rc) rc = kgm_meta_adapt(L->meta, &t, steps, fast);
        if (!rc) rc = query_errors(L->meta, fast, &t, se, ae);
        if (!rc) *after = mean_of(se, t.n_query);
        task_free(&t);
    }
    free(fast0); free(se); free(ae);
    char *copy = rc ? NULL : strdup(name);
    if (!rc && !copy) rc = kgm_fail(KGM_ENOMEM, "out of memory");
    sh_adapted p = { copy, fast, ex };
    if (rc) { adapted_free(&p); return rc; }
    *out = p;
    return 0;
}

/* Adapts the model to task `name`, which becomes the session's adapted task. */
static int adapt_to(kgm_shell *sh, struct sh_learn *L, const char *name, int steps, int shots,
                    double *before, double *after)
{
    sh_adapted p;
    int rc = adapt_compute(sh, L, name, steps, shots, before, after, &p);
    if (!rc) adapted_keep(L, &p);
    return rc;
}

int cmd_adapt(kgm_shell *sh, kgm_shell_args *a)
{
    struct sh_learn *L = sh->learn;
    int steps = 5, shots = 10;
    if (need_model(L, "adapt") || opt_int(a, "steps", 0, 10000, &steps) || opt_int(a, "shots", 1, 100000, &shots))
        return 1;
    double before, after;
    sh_adapted p;
    if (adapt_compute(sh, L, a->argv[0], steps, shots, &before, &after, &p) != 0) return 1;
    /* recorded before it becomes the session's: a failed record leaves the session as it was */
    const kgm_kgcond_value hyper[] = { { "steps", steps }, { "shots", (double)p.ex.n_support },
                                       { "backtrack", sh->backtrack } };
    const kgm_kgcond_value metrics[] = { { "queryMseBefore", sig4(before) }, { "queryMse", sig4(after) } };
    if (record_use(sh, L, "adaptation", a->argv[0], NULL, hyper, sh->backtrack ? 3 : 2, metrics, 2) != 0) {
        adapted_free(&p);
        return 1;
    }
    adapted_keep(L, &p);
    fprintf(sh->out, "adapted to %s: %zu support examples, %d steps, query MSE %.3g -> %.3g\n",
            a->argv[0], L->ex.n_support, steps, before, after);
    return 0;
}

/* x=1.5,2.0,...: the inputs of a one-input model. */
static int parse_xs(const char *v, float **xs, int *n)
{
    *n = 0;
    *xs = malloc((strlen(v) / 2 + 2) * sizeof **xs);
    if (!*xs) return kgm_fail(KGM_ENOMEM, "out of memory");
    for (const char *p = v; *p;) {
        char *end;
        double x = strtod(p, &end);
        if (end == p || !isfinite(x) || (*end && *end != ',')) {
            free(*xs);
            return kgm_fail(KGM_EINVAL, "x: expected numbers like 1.5,2.0, got '%s'", v);
        }
        (*xs)[(*n)++] = (float)x;
        p = *end ? end + 1 : end;
    }
    if (*n == 0) { free(*xs); return kgm_fail(KGM_EINVAL, "x: expected numbers like 1.5,2.0"); }
    return 0;
}

int cmd_predict(kgm_shell *sh, kgm_shell_args *a)
{
    struct sh_learn *L = sh->learn;
    const char *xv = sh_opt(a, "x");
    if (need_model(L, "predict")) return 1;
    if (!xv) { kgm_fail(KGM_EINVAL, "predict: x=NUMBER[,NUMBER...] is required"); return 1; }
    if (kgm_meta_net(L->meta)->sizes[0] != 1) {
        kgm_fail(KGM_ENOTSUP, "predict: x= gives one input; the model takes %d", kgm_meta_net(L->meta)->sizes[0]);
        return 1;
    }
    float *xs;
    int n;
    if (parse_xs(xv, &xs, &n) != 0) return 1;
    double before, after;
    if (a->argc == 1 && (!L->task || strcmp(L->task, a->argv[0])) &&
        adapt_to(sh, L, a->argv[0], 5, 10, &before, &after) != 0) { free(xs); return 1; }
    if (!L->task) { free(xs); kgm_fail(KGM_EINVAL, "predict: no adapted task (adapt TASK first, or predict TASK x=...)"); return 1; }
    float *y = malloc((size_t)n * sizeof *y);
    int rc = y ? kgm_meta_predict(L->meta, L->fast, xs, n, y) : kgm_fail(KGM_ENOMEM, "out of memory");
    const char *cols[] = { "x", "prediction" };
    kgm_table *t = rc ? NULL : kgm_table_new(2, cols);
    for (int i = 0; t && !rc && i < n; i++) {
        long r = kgm_table_add_row(t);
        char b[32];
        snprintf(b, sizeof b, "%.4g", (double)y[i]);
        rc = r < 0 || kgm_table_set_number(t, (size_t)r, 0, xs[i]) || kgm_table_set(t, (size_t)r, 1, KGM_CELL_NUMBER, b, NULL, NULL);
    }
    if (!rc && t) rc = sh_print_table(sh, t);
    kgm_table_free(t);
    free(xs); free(y);
    return rc ? 1 : 0;
}

static int add_num(kgm_table *t, size_t r, size_t c, double v)
{
    char b[32];
    snprintf(b, sizeof b, "%.3g", v);
    return kgm_table_set(t, r, c, KGM_CELL_NUMBER, b, NULL, NULL);
}

/* Per inner-step count 0..steps: query MSE and MAE with 95% CIs. Units are tasks when
 * there are several, else the task's query examples. */
/* The table of query errors per step; last (3): MSE, its CI and MAE after the last step. */
static int eval_tasks(struct sh_learn *L, const sh_examples *exs, char **names, size_t n, int steps,
                      kgm_table **out, double *last)
{
    size_t np = kgm_meta_net(L->meta)->n_params;
    size_t cap = n > 1 ? n : QUERY;
    double *mse = calloc((size_t)(steps + 1) * cap, sizeof *mse), *mae = calloc((size_t)(steps + 1) * cap, sizeof *mae);
    double *se = malloc(QUERY * sizeof *se), *ae = malloc(QUERY * sizeof *ae);
    float *fast = malloc(np * sizeof *fast);
    int rc = (mse && mae && se && ae && fast) ? 0 : kgm_fail(KGM_ENOMEM, "out of memory"), units = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        const sh_examples ex = exs[i];
        kgm_episode t = { 0 };
        if (ex.n_query == 0 || ex.n_query > QUERY || ex.dim != kgm_meta_net(L->meta)->sizes[0])
            rc = kgm_fail(KGM_EINVAL, "evaluate: task %s does not fit the model (%d inputs, %zu query examples)",
                          names[i], ex.dim, ex.n_query);
        if (!rc) rc = as_task(&ex, &t);
        for (int s = 0; !rc && s <= steps; s++) {
            if (kgm_interrupted()) { rc = kgm_fail(KGM_EINTR, "evaluate: interrupted"); break; }
            rc = kgm_meta_adapt(L->meta, &t, s, fast);
            if (!rc) rc = query_errors(L->meta, fast, &t, se, ae);
            if (rc) break;
            if (n > 1) {
                mse[(size_t)s * cap + i] = mean_of(se, t.n_query);
                mae[(size_t)s * cap + i] = mean_of(ae, t.n_query);
            } else {
                memcpy(mse + (size_t)s * cap, se, (size_t)t.n_query * sizeof *se);
                memcpy(mae + (size_t)s * cap, ae, (size_t)t.n_query * sizeof *ae);
            }
        }
        if (!rc) units = n > 1 ? (int)n : t.n_query;
        if (t.xs) task_free(&t);
    }
    const char *cols[] = { "steps", "mse", "mse_ci95", "mae", "mae_ci95" };
    kgm_table *tb = rc ? NULL : kgm_table_new(5, cols);
    if (!rc && !tb) rc = kgm_fail(KGM_ENOMEM, "out of memory");
    for (int s = 0; !rc && s <= steps; s++) {
        double m1, c1, m2, c2;
        kgm_stats_mean_ci(mse + (size_t)s * cap, units, &m1, &c1);
        kgm_stats_mean_ci(mae + (size_t)s * cap, units, &m2, &c2);
        last[0] = m1; last[1] = c1; last[2] = m2;
        long r = kgm_table_add_row(tb);
        if (r < 0 || kgm_table_set_number(tb, (size_t)r, 0, s) || add_num(tb, (size_t)r, 1, m1) ||
            add_num(tb, (size_t)r, 2, c1) || add_num(tb, (size_t)r, 3, m2) || add_num(tb, (size_t)r, 4, c2))
            rc = kgm_fail(KGM_ENOMEM, "out of memory");
    }
    free(mse); free(mae); free(se); free(ae); free(fast);
    if (rc) { kgm_table_free(tb); return rc; }
    *out = tb;
    return 0;
}

/* Every task of a role through the conditioning (as sh_role_examples does from the store). */
static int kc_role_examples(kgm_shell *sh, const kgm_kgcond *kc, int role, int shots, sh_examples **out,
                            char ***names, size_t *n)
{
    size_t m = kgm_kgcond_n_tasks(kc, role);
    *out = calloc(m + 1, sizeof **out);
    *names = calloc(m + 1, sizeof **names);
    *n = 0;
    int rc = *out && *names ? 0 : kgm_fail(KGM_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < m; i++) {
        long t = kgm_kgcond_role_task(kc, role, i);
        if (t < 0 || (rc = kc_examples(kc, (size_t)t, sh->seed, shots, &(*out)[i])) != 0) {
            if (!rc) rc = kgm_fail(KGM_ENOTFOUND, "no task %zu of the role", i);
            break;
        }
        (*n)++;
        if (!((*names)[i] = strdup(kgm_kgcond_iri(kc, (size_t)t)))) rc = kgm_fail(KGM_ENOMEM, "out of memory");
    }
    if (rc) {
        for (size_t i = 0; i < *n; i++) { free((*out)[i].x); free((*out)[i].y); free((*out)[i].cond); free((*names)[i]); }
        free(*out); free(*names);
        *out = NULL; *names = NULL; *n = 0;
    }
    return rc;
}

int cmd_evaluate(kgm_shell *sh, kgm_shell_args *a)
{
    struct sh_learn *L = sh->learn;
    int steps = 5, shots = 10;
    const char *split = sh_opt(a, "split");
    if (need_model(L, "evaluate") || opt_int(a, "steps", 0, 100, &steps) || opt_int(a, "shots", 1, 100000, &shots))
        return 1;
    if (!!split == (a->argc == 1)) {
        kgm_fail(KGM_EINVAL, "evaluate: give a TASK or split=train|validation|test");
        return 1;
    }
    char **names = NULL;
    sh_examples *exs = NULL;
    size_t n = 0;
    int rc = 0;
    if (split) {
        static const char *const SPLITS[] = { "train", "validation", "test" };
        int role = -1;
        for (int i = 0; i < 3; i++) if (!strcmp(split, SPLITS[i])) role = i;
        if (role < 0) { kgm_fail(KGM_EINVAL, "split: expected train, validation or test, got '%s'", split); return 1; }
        if (L->kc) rc = kc_role_examples(sh, L->kc, role, shots, &exs, &names, &n);
        else rc = sh_role_examples(sh, role, (size_t)shots, QUERY, &exs, &names, &n);
        if (!rc && n == 0) rc = kgm_fail(KGM_ENOTFOUND, "evaluate: no %s tasks in the store", split);
    } else {
        names = calloc(1, sizeof *names);
        exs = calloc(1, sizeof *exs);
        rc = names && exs && (names[0] = strdup(a->argv[0])) ? 0 : kgm_fail(KGM_ENOMEM, "out of memory");
        if (!rc) rc = model_examples(sh, L, a->argv[0], shots, exs);
        n = rc ? 0 : 1;
        if (rc && names) free(names[0]);
    }
    kgm_table *t = NULL;
    if (!rc) kgm_meta_set_backtrack(L->meta, sh->backtrack);
    double last[3] = { NAN, NAN, NAN };
    if (!rc) rc = eval_tasks(L, exs, names, n, steps, &t, last);
    if (!rc) rc = sh_print_table(sh, t);
    if (!rc) {
        const kgm_kgcond_value hyper[] = { { "steps", steps }, { "shots", shots }, { "backtrack", sh->backtrack } };
        const kgm_kgcond_value metrics[] = { { "tasks", (double)n }, { "queryMse", sig4(last[0]) },
                                             { "queryMseCi95", sig4(last[1]) }, { "queryMae", sig4(last[2]) } };
        rc = record_use(sh, L, "evaluation", split ? NULL : a->argv[0], split, hyper, sh->backtrack ? 3 : 2,
                        metrics, 4);
    }
    kgm_table_free(t);
    for (size_t i = 0; i < n; i++) { free(names[i]); free(exs[i].x); free(exs[i].y); free(exs[i].cond); }
    free(names);
    free(exs);
    return rc ? 1 : 0;
}

/* ---- model save / load ---- */

#define MODEL_FILE_IRI "<http://kgmeta.org/ns#modelFile>"

/* 1 when path can be a plain literal (no quotes, backslashes or newlines): only such files
 * are linked to recorded models. */
static int linkable_path(const char *path) { return !strpbrk(path, "\"\\\n\r"); }

/* The models recorded with file path (kgm:modelFile "path"); NULL when it is not linkable. */
static kgm_table *models_with_file(kgm_shell *sh, const char *path)
{
    if (!linkable_path(path)) return NULL;
    char q[4352];
    if (snprintf(q, sizeof q, RUN_PREFIXES "SELECT ?m WHERE { ?m kgm:modelFile \"%s\" }", path) >= (int)sizeof q) return NULL;
    kgm_table *t = NULL;
    return kgm_store_select(sh->store, q, &t) == 0 ? t : NULL;
}

/* After model save: the session's recorded model (if any) gets kgm:modelFile "path", and no
 * other model keeps that path (the file now holds this one). */
static int link_model_file(kgm_shell *sh, const struct sh_learn *L, const char *path)
{
    kgm_table *t = L->model_iri ? models_with_file(sh, path) : NULL;
    if (!t) return KGM_OK;
    char lit[4112], term[512];
    snprintf(lit, sizeof lit, "\"%s\"", path);
    int rc = KGM_OK;
    for (size_t r = 0; !rc && r < t->n_rows; r++) {
        snprintf(term, sizeof term, "<%s>", kgm_table_cell(t, r, 0)->value);
        rc = kgm_store_remove(sh->store, term, MODEL_FILE_IRI, lit);
    }
    kgm_table_free(t);
    snprintf(term, sizeof term, "<%s>", L->model_iri);
    return rc ? rc : kgm_store_add(sh->store, term, MODEL_FILE_IRI, lit);
}

/* The recorded model a file was saved from (model save in this store), or NULL. */
static char *model_of_file(kgm_shell *sh, const char *path)
{
    kgm_table *t = models_with_file(sh, path);
    char *iri = t && t->n_rows == 1 && kgm_table_cell(t, 0, 0)->value ? strdup(kgm_table_cell(t, 0, 0)->value) : NULL;
    kgm_table_free(t);
    return iri;
}

/* The recorded model a loaded file holds. A file this store has no record of (saved with
 * another store, or written elsewhere) gets one, kgm:loaded-model-N a mls:Model with its
 * kgm:modelFile, so that what the session does with it names the model it started from;
 * loading the file again finds the same node. A path that cannot be a plain literal stays
 * unrecorded (*iri NULL), as model save leaves it unlinked. */
static int model_for_file(kgm_shell *sh, const char *path, char **iri)
{
    *iri = model_of_file(sh, path);
    if (*iri || !linkable_path(path)) return KGM_OK;
    long n;
    if (count_series(sh, "mls:Model", "loaded-model", &n) != 0) return KGM_EINVAL;
    char name[128];
    snprintf(name, sizeof name, "http://kgmeta.org/ns#loaded-model-%ld", n + 1);
    size_t len = strlen(path) + 2 * sizeof name;
    char *ttl = malloc(len);
    *iri = strdup(name);
    if (!ttl || !*iri) {
        free(ttl); free(*iri); *iri = NULL;
        return kgm_fail(KGM_ENOMEM, "out of memory");
    }
    snprintf(ttl, len, "<%s> a <http://www.w3.org/ns/mls#Model> ; " MODEL_FILE_IRI " \"%s\" .", name, path);
    int rc = kgm_store_load_string(sh->store, ttl, "turtle", NULL, NULL);
    free(ttl);
    if (rc) { free(*iri); *iri = NULL; }
    return rc;
}

/* A model file carries no graph: a conditioned model's e(t) is rebuilt from the open store as
 * train built it (the file's seed, prototypes= as given to train), and must have the length
 * the model was trained on. */
static int load_conditioning(kgm_shell *sh, kgm_shell_args *a, const kgm_meta *mt, const char *path,
                             kgm_kgcond **kc)
{
    int prototypes = 0;
    if (opt_int(a, "prototypes", 0, 4096, &prototypes)) return KGM_EINVAL;
    int rc = build_conditioning(sh, kgm_meta_cfg(mt)->seed, prototypes, kc);
    if (rc) {
        char why[512];   /* kgm_error() is the record kgm_fail rewrites */
        snprintf(why, sizeof why, "%s", kgm_error());
        return kgm_fail(rc, "model load: %s is conditioned on the graph, which gives no e(t): %s", path, why);
    }
    if (kgm_kgcond_cond_dim(*kc) != kgm_meta_cond_dim(mt)) {
        int have = kgm_kgcond_cond_dim(*kc);
        kgm_kgcond_free(*kc);
        *kc = NULL;
        return kgm_fail(KGM_EINVAL, "model load: %s conditions on e(t) of length %d, the store's graph gives %d"
                        " (load the graph it was trained on; prototypes= as in train)",
                        path, kgm_meta_cond_dim(mt), have);
    }
    return KGM_OK;
}

int cmd_model(kgm_shell *sh, kgm_shell_args *a)
{
    struct sh_learn *L = state(sh);
    if (!L) return 1;
    const char *path = kgm_shell_unquote(a->argv[1]);
    if (!strcmp(a->argv[0], "save")) {
        if (need_model(L, "model save") || kgm_meta_save(L->meta, path) != 0 || link_model_file(sh, L, path) != 0)
            return 1;
        fprintf(sh->out, "saved the model to %s\n", path);
        return 0;
    }
    if (strcmp(a->argv[0], "load")) {
        kgm_fail(KGM_EINVAL, "model: expected save or load, got '%s'", a->argv[0]);
        return 1;
    }
    kgm_meta *mt;
    if (kgm_meta_load(&mt, path, NULL) != 0) return 1;
    kgm_kgcond *kc = NULL;
    char *iri = NULL;
    if ((kgm_meta_cond_dim(mt) > 0 && load_conditioning(sh, a, mt, path, &kc) != 0)
        || model_for_file(sh, path, &iri) != 0) {
        kgm_kgcond_free(kc);
        kgm_meta_free(mt);
        return 1;
    }
    kgm_meta_free(L->meta);
    L->meta = mt;
    kgm_kgcond_free(L->kc);
    L->kc = kc;
    free(L->model_iri);
    L->model_iri = iri;
    forget_task(L);
    fprintf(sh->out, "loaded a model from %s: %zu parameters", path, kgm_meta_n_params(mt));
    if (kc) fprintf(sh->out, ", conditioned on e(t) of %zu tasks", kgm_kgcond_n_tasks(kc, -1));
    fputc('\n', sh->out);
    return 0;
}

/* ---- plot ---- */

static int plot_loss(kgm_shell *sh, struct sh_learn *L, const char *path)
{
    if (!L || !L->n_curve) return kgm_fail(KGM_EINVAL, "plot loss: no training run in this session yet");
    double *x = malloc(L->n_curve * 3 * sizeof *x);
    if (!x) return kgm_fail(KGM_ENOMEM, "out of memory");
    double *loss = x + L->n_curve, *val = loss + L->n_curve;
    for (size_t i = 0; i < L->n_curve; i++) {
        x[i] = L->curve[i * 3];
        loss[i] = L->curve[i * 3 + 1];
        val[i] = L->curve[i * 3 + 2];
    }
    kgm_series s[2] = { { "training loss", x, loss, L->n_curve, 0 }, { "validation loss", x, val, L->n_curve, 0 } };
    int rc = kgm_plot_write(path, "meta-training", "iteration", "loss", s, 2);
    free(x);
    if (!rc) fprintf(sh->out, "wrote %s\n", path);
    return rc;
}

static int plot_predictions(kgm_shell *sh, struct sh_learn *L, const char *task, const char *path)
{
    double before, after;
    if (need_model(L, "plot predictions")) return KGM_EINVAL;
    if (kgm_meta_net(L->meta)->sizes[0] != 1)
        return kgm_fail(KGM_ENOTSUP, "plot predictions: only for one-input models");
    if ((!L->task || strcmp(L->task, task)) && adapt_to(sh, L, task, 5, 10, &before, &after) != 0)
        return KGM_EINVAL;
    const sh_examples *e = &L->ex;
    size_t n = e->n_support + e->n_query;
    enum { GRID = 200 };
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) { lo = fmin(lo, e->x[i]); hi = fmax(hi, e->x[i]); }
    float gx[GRID], gy[GRID];
    double dx[GRID], dy[GRID];
    for (int i = 0; i < GRID; i++) gx[i] = (float)(lo + (hi - lo) * i / (GRID - 1));
    int rc = kgm_meta_predict(L->meta, L->fast, gx, GRID, gy);
    if (rc) return rc;
    for (int i = 0; i < GRID; i++) { dx[i] = gx[i]; dy[i] = gy[i]; }
    kgm_series s[3] = {
        { "support", e->x, e->y, e->n_support, 1 },
        { "query", e->x + e->n_support, e->y + e->n_support, e->n_query, 1 },
        { "adapted model", dx, dy, GRID, 0 },
    };
    rc = kgm_plot_write(path, task, "x", "y", s, 3);
    if (!rc) fprintf(sh->out, "wrote %s\n", path);
    return rc;
}

int cmd_plot(kgm_shell *sh, kgm_shell_args *a)
{
    if (!strcmp(a->argv[0], "loss")) {
        if (a->argc != 2) { kgm_fail(KGM_EINVAL, "plot loss: expected FILE.png or FILE.svg"); return 1; }
        return plot_loss(sh, sh->learn, kgm_shell_unquote(a->argv[1])) ? 1 : 0;
    }
    if (!strcmp(a->argv[0], "predictions")) {
        if (a->argc != 3) { kgm_fail(KGM_EINVAL, "plot predictions: expected TASK FILE.png|svg"); return 1; }
        return plot_predictions(sh, sh->learn, a->argv[1], kgm_shell_unquote(a->argv[2])) ? 1 : 0;
    }
    kgm_fail(KGM_EINVAL, "plot: expected loss or predictions, got '%s'", a->argv[0]);
    return 1;
}

/* ---- tune ---- Bayesian optimization of the training settings (models/tune.h) */

static int tune_adopt(kgm_shell *sh, struct sh_learn *L)
{
    if (!L->search) return kgm_fail(KGM_EINVAL, "tune adopt: no search in this session yet (tune SPACE first)");
    kgm_meta_config cfg = L->has_tuned ? L->tuned : kgm_meta_config_default();
    double score;
    int index;
    if (kgm_tune_adopt(sh->store, L->search, &cfg, &score, &index) != 0) return KGM_EINVAL;
    L->tuned = cfg;
    L->has_tuned = 1;
    fprintf(sh->out, "adopted trial %d (score %.3g): learner %s, steps %d, alpha %.3g, outer_lr %.3g, batch %d;"
            " train starts from these now\n", index, score, kgm_learner_name(cfg.learner), cfg.inner_steps,
            (double)cfg.alpha, (double)cfg.outer_lr, cfg.meta_batch);
    return 0;
}

static int tune_search(kgm_shell *sh, kgm_shell_args *a, struct sh_learn *L)
{
    train_opts o;
    int trials = 10, budget = 200;
    if (train_parse(sh, a, &o) || opt_int(a, "trials", 1, 1000, &trials) || opt_int(a, "budget", 1, 1000000, &budget))
        return KGM_EINVAL;
    kgm_space *space;                     /* checked before anything runs */
    const char *text = kgm_shell_unquote(a->argv[0]);
    if (kgm_tune_space_parse(text, &space) != 0) return KGM_EINVAL;
    kgm_space_free(space);
    kgm_table *t = NULL;
    kgm_query_kind kind;
    int rc = kgm_store_query(sh->store, RUN_PREFIXES "SELECT (COUNT(?s) AS ?n) WHERE { ?s a kgm:TuningSearch }", &kind, &t);
    if (rc) return rc;
    char iri[128];
    snprintf(iri, sizeof iri, "http://kgmeta.org/ns#search-%ld",
             (t->n_rows && kgm_table_cell(t, 0, 0)->value ? atol(kgm_table_cell(t, 0, 0)->value) : 0) + 1);
    kgm_table_free(t);
    pool tr = { 0 }, va = { 0 };
    kgm_sinusoid sine = { 0 };
    kgm_tasksrc src, val;
    if (o.graph) {
        rc = pool_read(sh, 0, &tr, &src);
        if (!rc && pool_read(sh, 1, &va, &val) != 0) val = src;
    } else {
        kgm_tasksrc_sinusoid(&src, &sine);
        val = src;
    }
    kgm_mlp net;
    if (!rc) {
        o.sizes[0] = src.x_dim;
        o.sizes[o.n_hidden + 1] = 1;
        rc = kgm_mlp_init(&net, o.n_hidden + 1, o.sizes, KGM_ACT_RELU, KGM_LOSS_MSE);
    }
    if (!rc) {
        kgm_tune_config tc = { .search = iri, .seed = o.cfg.seed, .budget = budget, .net = &net, .base = o.cfg,
                               .train = &src, .val = &val,
                               .eval = { .n_tasks = 20, .max_steps = o.cfg.inner_steps, .n_support = o.cfg.n_support,
                                         .n_query = o.cfg.n_query, .alpha = 0, .seed = o.cfg.seed + 1 } };
        rc = kgm_tune_run(sh->store, &tc, text, trials);
        char *copy = strdup(iri);
        if (copy) { free(L->search); L->search = copy; }
    }
    if (o.graph) { pool_free(&tr); pool_free(&va); }
    if (rc && rc != KGM_EINTR) return rc;
    if (rc == KGM_EINTR) kgm_interrupt_clear();
    char q[1024];
    snprintf(q, sizeof q, RUN_PREFIXES "SELECT ?trial ?score WHERE { ?t kgm:partOfSearch <%s> ; kgm:trialIndex ?trial ;"
             " kgm:score ?score } ORDER BY ?trial", iri);
    fprintf(sh->out, "search kgm:search-%s (tune adopt takes the best trial)\n", strrchr(iri, '-') + 1);
    if (run_query(sh, q) != 0) return KGM_EINVAL;
    return rc == KGM_EINTR ? kgm_fail(KGM_EINTR, "tune: interrupted; the finished trials are recorded") : 0;
}

int cmd_tune(kgm_shell *sh, kgm_shell_args *a)
{
    struct sh_learn *L = state(sh);
    if (!L) return 1;
    if (!strcmp(a->argv[0], "adopt")) return tune_adopt(sh, L) ? 1 : 0;
    return tune_search(sh, a, L) ? 1 : 0;
}
