/* bench/bench_embed.c - embeddings on WN18RR: training throughput at Fast-TransX's TransE settings
 * and filtered link-prediction quality per model, with their ratio to reference figures.
 *
 *   bench_embed [DATA_DIR] speed [EPOCHS [LR]]         TransE L1, dim 100, margin 1, 1 negative, SGD
 *   bench_embed [DATA_DIR] quality MODEL [SECONDS] [key=value ...]
 *       keys: dim epochs lr neg batch gamma adv margin reg regw opt loss eval threads seed
 *
 * DATA_DIR defaults to /work/shared/data/wn18rr; when it is absent the benchmark says so and
 * exits 0. Training stops at its epoch count or after SECONDS (through kgm_interrupt_raise(),
 * so the best validated state is kept, as on Ctrl-C). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "embed.h"
#include "error.h"
#include "interrupt.h"

/* Reference run from issue 5: Fast-TransX on this machine, WN18RR, 1000 epochs. */
static const double REF_TRIPLES_PER_S = 1.3e6, REF_MRR = 0.198, REF_HITS10 = 0.443;

typedef struct {
    kgm_graph  *g;                 /* train triples; entities of every split */
    kgm_triple *valid, *test;
    size_t      n_valid, n_test;
} dataset;

static double cpu_now(void)   /* CPU seconds of all threads of this process */
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- loading: the one step to swap for the store (kgm_store_load + kgm_store_extract) ---- */
/* Reads "head<TAB>relation<TAB>tail" lines. add_to_graph: add as triples; otherwise only intern
 * the names (entities first seen in valid/test get rows, as in the OpenKE id files) and append
 * to *out. */
static int read_split(kgm_graph *g, const char *path, int add_to_graph, kgm_triple **out, size_t *n_out)
{
    FILE *fp = fopen(path, "r");
    if (!fp) return -1;
    char line[1024];
    size_t cap = 0, n = 0;
    kgm_triple *arr = NULL;
    while (fgets(line, sizeof line, fp)) {
        char *h = strtok(line, "\t\r\n"), *r = strtok(NULL, "\t\r\n"), *t = strtok(NULL, "\t\r\n");
        if (!h || !r || !t) continue;
        kgm_triple tr = { kgm_graph_entity(g, h), kgm_graph_relation(g, r), kgm_graph_entity(g, t) };
        if (add_to_graph) { kgm_graph_add(g, tr.h, tr.r, tr.t); continue; }
        if (n == cap) { cap = cap ? 2 * cap : 1024; arr = realloc(arr, cap * sizeof *arr); }
        arr[n++] = tr;
    }
    fclose(fp);
    if (out) { *out = arr; *n_out = n; }
    return 0;
}

static int load_dataset(const char *dir, dataset *d)
{
    char path[1024];
    memset(d, 0, sizeof *d);
    d->g = kgm_graph_new();
    snprintf(path, sizeof path, "%s/train.txt", dir);
    if (read_split(d->g, path, 1, NULL, NULL)) return -1;
    snprintf(path, sizeof path, "%s/valid.txt", dir);
    if (read_split(d->g, path, 0, &d->valid, &d->n_valid)) return -1;
    snprintf(path, sizeof path, "%s/test.txt", dir);
    if (read_split(d->g, path, 0, &d->test, &d->n_test)) return -1;
    return kgm_graph_finish(d->g);
}

static void dataset_free(dataset *d)
{
    kgm_graph_free(d->g);
    free(d->valid);
    free(d->test);
}

/* ---- a time box: raise the interrupt after `seconds` ---- */
typedef struct { double seconds; int cancel; pthread_t tid; } timebox;
static void *timebox_run(void *arg)
{
    timebox *tb = arg;
    double end = now() + tb->seconds;
    while (!__atomic_load_n(&tb->cancel, __ATOMIC_RELAXED) && now() < end) usleep(20000);
    if (!__atomic_load_n(&tb->cancel, __ATOMIC_RELAXED)) kgm_interrupt_raise();
    return NULL;
}
static void timebox_start(timebox *tb, double seconds)
{
    tb->seconds = seconds; tb->cancel = 0;
    pthread_create(&tb->tid, NULL, timebox_run, tb);
}
static void timebox_stop(timebox *tb)
{
    __atomic_store_n(&tb->cancel, 1, __ATOMIC_RELAXED);
    pthread_join(tb->tid, NULL);
    kgm_interrupt_clear();
}

static int evaluate_test(const kgm_emb *e, const dataset *d, kgm_lp_metrics *m, double *secs)
{
    const kgm_triple *known[3] = { d->g->triples, d->valid, d->test };
    size_t nk[3] = { d->g->n_triples, d->n_valid, d->n_test };
    double t0 = now();
    int rc = kgm_lp_evaluate(e, d->test, d->n_test, known, nk, 3, 0, m);
    *secs = now() - t0;
    return rc;
}

/* ---- (1) speed at Fast-TransX settings ---- */
static int run_speed(const dataset *d, int epochs, float lr)
{
    kgm_emb_opts o;
    kgm_emb_opts_default(&o, KGM_EMB_TRANSE_L1);
    o.dim = 100; o.margin = 1.0f; o.negatives = 1; o.opt = KGM_EMB_OPT_SGD; o.lr = 0.01f;
    o.loss = KGM_EMB_LOSS_MARGIN; o.normalize = 1; o.epochs = epochs;
    o.init_scale = 0.0173f;   /* uniform with std 0.01 = 1/dim, the spread of Fast-TransX's initial values */
    o.lr = lr;
    o.threads = getenv("KGM_THREADS") ? atoi(getenv("KGM_THREADS")) : 0;
    kgm_emb *e = kgm_emb_new(&o, kgm_graph_n_ents(d->g), kgm_graph_n_rels(d->g));
    kgm_emb_report rep;
    double cpu0 = cpu_now();
    if (!e || kgm_emb_train(e, d->g, &o, NULL, 0, NULL, 0, &rep)) {
        fprintf(stderr, "bench_embed: %s\n", kgm_error());
        kgm_emb_free(e);
        return 1;
    }
    double cpu = cpu_now() - cpu0;
    kgm_lp_metrics m;
    double eval_s;
    if (evaluate_test(e, d, &m, &eval_s)) { fprintf(stderr, "bench_embed: %s\n", kgm_error()); kgm_emb_free(e); return 1; }
    printf("speed: transe-l1 dim 100 margin 1 neg 1 sgd lr %g normalize init +-0.0173, %d epochs, %d threads\n",
           lr, rep.epochs_run, o.threads > 0 ? o.threads : (int)sysconf(_SC_NPROCESSORS_ONLN));
    printf("  train %.2f s  %.3f M positive triples/s  (reference %.2f M/s, ratio %.2fx)\n",
           rep.seconds, rep.triples_per_s / 1e6, REF_TRIPLES_PER_S / 1e6, rep.triples_per_s / REF_TRIPLES_PER_S);
    /* the cores are shared: CPU time says what the code costs when the machine is busy */
    printf("  CPU %.2f s: %.3f M triples per CPU-second (x2 cores: %.3f M/s, ratio %.2fx); load average counts\n",
           cpu, (double)rep.epochs_run * (double)d->g->n_triples / cpu / 1e6,
           2 * (double)rep.epochs_run * (double)d->g->n_triples / cpu / 1e6,
           2 * (double)rep.epochs_run * (double)d->g->n_triples / cpu / REF_TRIPLES_PER_S);
    printf("  test filtered MRR %.4f (reference %.3f)  MR %.0f  Hits@1 %.4f  Hits@3 %.4f  Hits@10 %.4f (reference %.3f)  [eval %.1f s]\n",
           m.mrr, REF_MRR, m.mean_rank, m.hits1, m.hits3, m.hits10, REF_HITS10, eval_s);
    kgm_emb_free(e);
    return 0;
}

/* ---- (2) quality of one model within a time box ---- */
static int set_opt(kgm_emb_opts *o, const char *kv)
{
    char key[32];
    const char *eq = strchr(kv, '=');
    if (!eq || eq - kv >= (long)sizeof key) return -1;
    memcpy(key, kv, (size_t)(eq - kv)); key[eq - kv] = 0;
    const char *v = eq + 1;
    if (!strcmp(key, "dim")) o->dim = atoi(v);
    else if (!strcmp(key, "epochs")) o->epochs = atoi(v);
    else if (!strcmp(key, "lr")) o->lr = strtof(v, NULL);
    else if (!strcmp(key, "neg")) o->negatives = atoi(v);
    else if (!strcmp(key, "batch")) o->batch = atoi(v);
    else if (!strcmp(key, "gamma")) o->gamma = strtof(v, NULL);
    else if (!strcmp(key, "adv")) o->adv_temp = strtof(v, NULL);
    else if (!strcmp(key, "margin")) o->margin = strtof(v, NULL);
    else if (!strcmp(key, "regw")) o->reg_weight = strtof(v, NULL);
    else if (!strcmp(key, "reg")) o->reg = !strcmp(v, "l2") ? KGM_EMB_REG_L2 : !strcmp(v, "n3") ? KGM_EMB_REG_N3 : KGM_EMB_REG_NONE;
    else if (!strcmp(key, "opt")) o->opt = !strcmp(v, "adam") ? KGM_EMB_OPT_ADAM : !strcmp(v, "adagrad") ? KGM_EMB_OPT_ADAGRAD : KGM_EMB_OPT_SGD;
    else if (!strcmp(key, "loss")) o->loss = !strcmp(v, "margin") ? KGM_EMB_LOSS_MARGIN : KGM_EMB_LOSS_SOFTPLUS;
    else if (!strcmp(key, "eval")) o->eval_every = atoi(v);
    else if (!strcmp(key, "threads")) o->threads = atoi(v);
    else if (!strcmp(key, "seed")) o->seed = (uint64_t)strtoull(v, NULL, 10);
    else if (!strcmp(key, "normalize")) o->normalize = atoi(v);
    else if (!strcmp(key, "init")) o->init_scale = strtof(v, NULL);
    else return -1;
    return 0;
}

static int run_quality(const dataset *d, const char *model, double seconds, int argc, char **argv)
{
    kgm_emb_model mm;
    if (kgm_emb_model_parse(model, &mm)) { fprintf(stderr, "bench_embed: %s\n", kgm_error()); return 2; }
    kgm_emb_opts o;
    kgm_emb_opts_default(&o, mm);
    o.epochs = 1000; o.eval_every = 10; o.patience = 5;
    for (int i = 0; i < argc; i++)
        if (set_opt(&o, argv[i])) { fprintf(stderr, "bench_embed: bad option '%s'\n", argv[i]); return 2; }
    kgm_emb *e = kgm_emb_new(&o, kgm_graph_n_ents(d->g), kgm_graph_n_rels(d->g));
    if (!e) { fprintf(stderr, "bench_embed: %s\n", kgm_error()); return 1; }
    timebox tb;
    timebox_start(&tb, seconds);
    double t0 = now();
    kgm_emb_report rep;
    int rc = kgm_emb_train(e, d->g, &o, d->valid, d->n_valid, d->test, d->n_test, &rep);
    double wall = now() - t0;
    timebox_stop(&tb);
    if (rc && rc != KGM_EINTR) { fprintf(stderr, "bench_embed: %s\n", kgm_error()); kgm_emb_free(e); return 1; }
    kgm_lp_metrics m;
    double eval_s;
    if (evaluate_test(e, d, &m, &eval_s)) { fprintf(stderr, "bench_embed: %s\n", kgm_error()); kgm_emb_free(e); return 1; }
    printf("quality: %s dim %d loss %s margin %g gamma %g adv %g opt %s lr %g reg %s %g neg %d batch %d seed %llu\n",
           model, o.dim, o.loss == KGM_EMB_LOSS_MARGIN ? "margin" : "softplus", o.margin, o.gamma,
           o.adv_temp, o.opt == KGM_EMB_OPT_SGD ? "sgd" : o.opt == KGM_EMB_OPT_ADAGRAD ? "adagrad" : "adam",
           o.lr, o.reg == KGM_EMB_REG_NONE ? "none" : o.reg == KGM_EMB_REG_L2 ? "l2" : "n3", o.reg_weight,
           o.negatives, o.batch, (unsigned long long)o.seed);
    printf("  %d epochs (%s), best valid MRR %.4f at epoch %d; train %.1f s, wall with validation %.1f s, %.3f M triples/s\n",
           rep.epochs_run, rep.interrupted ? "time box reached" : "done", rep.best_valid_mrr, rep.best_epoch,
           rep.seconds, wall, rep.triples_per_s / 1e6);
    printf("  test filtered MRR %.4f  MR %.0f  Hits@1 %.4f  Hits@3 %.4f  Hits@10 %.4f  [eval %.1f s]\n",
           m.mrr, m.mean_rank, m.hits1, m.hits3, m.hits10, eval_s);
    kgm_emb_free(e);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = "/work/shared/data/wn18rr";
    int a = 1;
    if (a < argc && strcmp(argv[a], "speed") != 0 && strcmp(argv[a], "quality") != 0) dir = argv[a++];
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/train.txt", dir);
    if (access(probe, R_OK) != 0) {
        printf("bench_embed: WN18RR not found (%s missing); nothing measured.\n", probe);
        return 0;
    }
    const char *mode = a < argc ? argv[a++] : "speed";
    dataset d;
    double t0 = now();
    if (load_dataset(dir, &d)) { fprintf(stderr, "bench_embed: cannot load %s\n", dir); dataset_free(&d); return 1; }
    printf("WN18RR: %zu entities, %zu relations, %zu train / %zu valid / %zu test triples, loaded in %.2f s\n",
           kgm_graph_n_ents(d.g), kgm_graph_n_rels(d.g), d.g->n_triples, d.n_valid, d.n_test, now() - t0);
    int rc;
    if (!strcmp(mode, "speed")) rc = run_speed(&d, a < argc ? atoi(argv[a]) : 1000, a + 1 < argc ? strtof(argv[a + 1], NULL) : 0.01f);
    else if (!strcmp(mode, "quality") && a < argc)
        rc = run_quality(&d, argv[a], a + 1 < argc ? atof(argv[a + 1]) : 180.0, argc - a - 2 > 0 ? argc - a - 2 : 0, argv + a + 2);
    else { fprintf(stderr, "usage: bench_embed [DIR] speed [EPOCHS] | quality MODEL [SECONDS] [key=value...]\n"); rc = 2; }
    dataset_free(&d);
    return rc;
}
