/* bench/bench_embed.c - embeddings on WN18RR: training throughput at Fast-TransX's TransE settings
 * and filtered link-prediction quality per model, with their ratio to reference figures.
 *
 *   bench_embed [DATA_DIR] speed [EPOCHS [LR [key=value ...]]]   TransE L1, dim 100, margin 1,
 *       1 negative, SGD, 1000 epochs and lr 0.001 unless given (Fast-TransX's defaults);
 *       keys as below (e.g. filter=0 for unfiltered negatives, bern=1)
 *   bench_embed [DATA_DIR] compare [EPOCHS [LR [key=value ...]]]   the same, then a plain reference
 *       trainer (Fast-TransX's algorithm, see below) in this process with as many threads, and
 *       their throughput ratio: both measured under the same load, which shared cores make vary
 *   bench_embed [DATA_DIR] quality MODEL [SECONDS] [key=value ...]
 *       keys: dim epochs lr neg batch gamma adv margin reg regw opt loss eval threads seed
 *             normalize init init_lo filter bern edrop rdrop recip ls (loss=margin|softplus|
 *             1vsall|kvsall; 1vsall, kvsall: distmult, complex; kvsall asks each distinct query once
 *             against all its answers, ls=F its label smoothing; init_lo=A < 0 draws initial values
 *             in [A, init) instead of +-init; decay=D / rdecay=D add D times every entity /
 *             relation row to each step's gradient (full 1vsall, kvsall); with 1vsall, neg=N scores each batch against its heads and
 *             tails plus N sampled entities, and without neg= against every entity; edrop and
 *             rdrop are 1vsall's dropout rates of entity and relation rows, dside=1 draws the
 *             candidates' mask afresh for each side of a batch (LibKGE's; kvsall too); recip=1 gives 1vsall
 *             reciprocal relations, head queries asked as (t, r^-1, ?); logq=1 corrects the
 *             sampled candidates' softmax by their chances of being drawn; patience=N
 *             validation checks without improvement stop training (default 5), or with drop=F
 *             multiply the learning rate by F and go on, drops=N times (default 1); ckpt=FILE
 *             rewrites FILE with the whole training state at each validation check, and
 *             resume=1 goes on from it, its epochs and seconds counting toward the run's: a
 *             time-boxed run can be continued by the same command with resume=1 and a new box;
 *             subsample=1 weights each positive by its (h, r) and (t, r^-1) counts, as the
 *             RotatE paper's code does); prints a line per validation check as it goes
 *   bench_embed [DATA_DIR] foldin MODEL [EPOCHS [HELD [FOLD_EPOCHS]]] [key=value ...]
 *       trains MODEL for EPOCHS on train minus HELD entities (all their triples), folds them in
 *       from those triples and compares how their triples rank with a model trained on all of
 *       train for the same epochs
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

#include "blascore.h"
#include "embed.h"
#include "error.h"
#include "interrupt.h"
#include "store.h"
#include "strmap.h"

/* Reference run from issue 5: Fast-TransX on this machine, WN18RR, 1000 epochs. */
static const double REF_TRIPLES_PER_S = 1.3e6, REF_MRR = 0.198, REF_HITS10 = 0.443;

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

/* ---- loading through the store ----
 * train.txt is rewritten as N-Triples (entity <http://kgmeta.org/wn18rr/e/ID>, relation
 * <http://kgmeta.org/wn18rr/r/NAME>) in a temporary directory, loaded into a scratch store and
 * extracted to the integer view. Valid and test triples are mapped through the extracted
 * dictionaries; the few entities that appear only there get embedding rows after the graph's
 * (as in the OpenKE id files, which list every entity), so no test triple is dropped. */
#define ENT_NS "http://kgmeta.org/wn18rr/e/"
#define REL_NS "http://kgmeta.org/wn18rr/r/"

typedef struct {
    kgm_graph  *g;                 /* extracted from the store: the train triples */
    kgm_strmap *extra;             /* entities seen only in valid/test: id = n_graph_ents + k */
    kgm_triple *valid, *test;
    size_t      n_valid, n_test, n_ents;
    double      load_s, store_load_s;
} dataset;

static int split_line(char *line, char **h, char **r, char **t)
{
    *h = strtok(line, "\t\r\n"); *r = strtok(NULL, "\t\r\n"); *t = strtok(NULL, "\t\r\n");
    return *h && *r && *t;
}

static int write_ntriples(const char *txt, const char *nt)
{
    FILE *in = fopen(txt, "r"), *out = in ? fopen(nt, "w") : NULL;
    if (!in || !out) { if (in) fclose(in); return -1; }
    char line[1024], *h, *r, *t;
    while (fgets(line, sizeof line, in))
        if (split_line(line, &h, &r, &t))
            fprintf(out, "<" ENT_NS "%s> <" REL_NS "%s> <" ENT_NS "%s> .\n", h, r, t);
    fclose(in);
    return fclose(out) == 0 ? 0 : -1;
}

static int32_t map_entity(dataset *d, const char *id)
{
    char iri[512];
    snprintf(iri, sizeof iri, ENT_NS "%s", id);
    int32_t e = kgm_graph_find_entity(d->g, iri);
    if (e >= 0) return e;
    return (int32_t)kgm_graph_n_ents(d->g) + kgm_strmap_intern(d->extra, iri, strlen(iri));
}

static int map_split(dataset *d, const char *path, kgm_triple **out, size_t *n_out)
{
    FILE *fp = fopen(path, "r");
    if (!fp) return -1;
    char line[1024], iri[512], *h, *r, *t;
    size_t cap = 0, n = 0;
    kgm_triple *arr = NULL;
    int rc = 0;
    while (fgets(line, sizeof line, fp)) {
        if (!split_line(line, &h, &r, &t)) continue;
        snprintf(iri, sizeof iri, REL_NS "%s", r);
        kgm_triple tr = { map_entity(d, h), kgm_graph_find_relation(d->g, iri), map_entity(d, t) };
        if (tr.r < 0) { fprintf(stderr, "bench_embed: relation %s is not in train\n", r); rc = -1; break; }
        if (n == cap) { cap = cap ? 2 * cap : 1024; arr = realloc(arr, cap * sizeof *arr); }
        arr[n++] = tr;
    }
    fclose(fp);
    *out = arr; *n_out = n;
    return rc;
}

static int load_dataset(const char *dir, dataset *d)
{
    char tmpdir[] = "/tmp/kgm_wn18rr_XXXXXX", txt[1024], nt[1100];
    memset(d, 0, sizeof *d);
    d->extra = kgm_strmap_new();
    double t0 = now();
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(txt, sizeof txt, "%s/train.txt", dir);
    snprintf(nt, sizeof nt, "%s/train.nt", tmpdir);
    kgm_store *s = NULL;
    size_t added = 0;
    int rc = write_ntriples(txt, nt);
    if (!rc) rc = kgm_store_open(&s, NULL);
    if (!rc) rc = kgm_store_load(s, nt, "ntriples", NULL, &added, &d->store_load_s);
    if (!rc) rc = kgm_store_extract(s, &d->g);
    if (rc) fprintf(stderr, "bench_embed: %s\n", kgm_error());
    kgm_store_free(s);
    remove(nt);
    rmdir(tmpdir);
    if (rc) return -1;
    snprintf(txt, sizeof txt, "%s/valid.txt", dir);
    if (map_split(d, txt, &d->valid, &d->n_valid)) return -1;
    snprintf(txt, sizeof txt, "%s/test.txt", dir);
    if (map_split(d, txt, &d->test, &d->n_test)) return -1;
    d->n_ents = kgm_graph_n_ents(d->g) + kgm_strmap_size(d->extra);
    d->load_s = now() - t0;
    return 0;
}

static void dataset_free(dataset *d)
{
    kgm_graph_free(d->g);
    kgm_strmap_free(d->extra);
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
    const kgm_triple *known[3] = { kgm_graph_triples(d->g), d->valid, d->test };
    size_t nk[3] = { kgm_graph_n_triples(d->g), d->n_valid, d->n_test };
    double t0 = now();
    int rc = kgm_lp_evaluate(e, d->test, d->n_test, known, nk, 3, 0, m);
    *secs = now() - t0;
    return rc;
}

/* ---- (1) speed at Fast-TransX settings ---- */
static int set_opts(kgm_emb_opts *o, int argc, char **argv);

static int run_speed(const dataset *d, int epochs, float lr, int argc, char **argv, double *rate, double *mrr)
{
    kgm_emb_opts o;
    kgm_emb_opts_default(&o, KGM_EMB_TRANSE_L1);
    o.dim = 100; o.margin = 1.0f; o.negatives = 1; o.opt = KGM_EMB_OPT_SGD;
    o.loss = KGM_EMB_LOSS_MARGIN; o.normalize = 1; o.epochs = epochs;
    o.init_scale = 0.0173f;   /* uniform with std 0.01 = 1/dim, the spread of Fast-TransX's initial values */
    o.lr = lr;                /* Fast-TransX's alpha: 0.001 by default */
    o.threads = getenv("KGM_THREADS") ? atoi(getenv("KGM_THREADS")) : 0;
    if (set_opts(&o, argc, argv)) return 2;
    kgm_emb *e = kgm_emb_new(&o, d->n_ents, kgm_graph_n_rels(d->g));
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
    printf("speed: transe-l1 dim %d margin %g neg %d sgd lr %g normalize %d init +-%g, negatives %s%s, %d epochs, %d threads\n",
           o.dim, o.margin, o.negatives, o.lr, o.normalize, o.init_scale,
           o.filter_negatives ? "filtered" : "unfiltered", o.bern ? " bern" : " 50/50", rep.epochs_run, o.threads > 0 ? o.threads : (int)sysconf(_SC_NPROCESSORS_ONLN));
    printf("  train %.2f s  %.3f M positive triples/s  (reference %.2f M/s, ratio %.2fx)\n",
           rep.seconds, rep.triples_per_s / 1e6, REF_TRIPLES_PER_S / 1e6, rep.triples_per_s / REF_TRIPLES_PER_S);
    /* the cores are shared: CPU time says what the code costs when the machine is busy */
    printf("  CPU %.2f s: %.3f M triples per CPU-second (x2 cores: %.3f M/s, ratio %.2fx); load average counts\n",
           cpu, (double)rep.epochs_run * (double)kgm_graph_n_triples(d->g) / cpu / 1e6,
           2 * (double)rep.epochs_run * (double)kgm_graph_n_triples(d->g) / cpu / 1e6,
           2 * (double)rep.epochs_run * (double)kgm_graph_n_triples(d->g) / cpu / REF_TRIPLES_PER_S);
    printf("  test filtered MRR %.4f (reference %.3f)  MR %.0f  Hits@1 %.4f  Hits@3 %.4f  Hits@10 %.4f (reference %.3f)  [eval %.1f s]\n",
           m.mrr, REF_MRR, m.mean_rank, m.hits1, m.hits3, m.hits10, REF_HITS10, eval_s);
    printf("  ties: %zu of %zu ranks had a candidate with exactly the target's score; ranked at the mean "
           "position (above); ranked first, as Fast-TransX's test counts: MRR %.4f\n", m.tied, m.n, m.mrr_optimistic);
    if (rate) *rate = rep.triples_per_s;
    if (mrr) *mrr = m.mrr;
    kgm_emb_free(e);
    return 0;
}

/* ---- (1b) a plain reference trainer in this process, for a ratio the machine's load cannot skew ----
 * Fast-TransX's TransE algorithm as its source describes it, written here as a plain loop (not its
 * code): values drawn from a normal of spread 1/dim, entity rows then projected onto the unit
 * ball; every step draws a positive at random (with replacement), corrupts its head or tail
 * (50/50) with an entity drawn uniformly among those not forming a training triple there (binary
 * search in the triples sorted by (h, r, t) and by (t, r, h)), and when the margin is violated
 * moves each coordinate by lr: the positive's first, then the negative's, its sign taken after
 * that move; then the relation, head, tail and corrupting entity are projected onto the ball.
 * Same threads (Hogwild), same compiler flags as kgmeta; evaluated by kgm_lp_evaluate. */
typedef struct {
    const kgm_triple *by_hrt, *by_trh;   /* train sorted both ways */
    const size_t *hrt_start, *trh_start; /* (n_ents + 1): rows of entity e as head / as tail */
    size_t n, n_ents;
    int dim;
    float lr, margin, *ent, *rel;
} ref_model;

typedef struct { const ref_model *m; uint64_t seed; size_t steps; int started; pthread_t tid; } ref_thread;

static uint64_t ref_seed(uint64_t v)
{
    uint64_t x = (v + 1) * 0x9E3779B97F4A7C15ull;
    x ^= x >> 31;
    return x ? x : 1;
}
static uint64_t ref_next(uint64_t *s)   /* xorshift64*: the reference's own random stream */
{
    *s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}
static size_t ref_below(uint64_t *s, size_t n) { return (size_t)((ref_next(s) >> 11) % n); }

static int cmp_ref_hrt(const void *a, const void *b)
{
    const kgm_triple *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    if (x->r != y->r) return x->r < y->r ? -1 : 1;
    return (x->t > y->t) - (x->t < y->t);
}
static int cmp_ref_trh(const void *a, const void *b)
{
    const kgm_triple *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    if (x->r != y->r) return x->r < y->r ? -1 : 1;
    return (x->h > y->h) - (x->h < y->h);
}

/* The other-side entity of rows [lo, hi) of a sorted array (tails when by_hrt, heads when by_trh). */
static int32_t ref_other(const kgm_triple *a, size_t i, int tails) { return tails ? a[i].t : a[i].h; }

/* Uniform among entities x such that (key, r, x) (tails) or (x, r, key) (heads) is not a train
 * triple: draw u among the n_ents - m free ids and step over the m taken ones, found by binary
 * search on (taken id - its index), the count of free ids below it. */
static int32_t ref_corrupt(const ref_model *m, uint64_t *s, int32_t key, int32_t r, int tails)
{
    const kgm_triple *a = tails ? m->by_hrt : m->by_trh;
    const size_t *start = tails ? m->hrt_start : m->trh_start;
    size_t lo = start[key], hi = start[key + 1], end;
    for (size_t l = lo, h = hi; l < h;) { size_t mid = (l + h) / 2; if (a[mid].r < r) l = mid + 1; else h = mid; lo = l; }
    end = lo;
    for (size_t l = lo, h = hi; l < h;) { size_t mid = (l + h) / 2; if (a[mid].r <= r) l = mid + 1; else h = mid; end = l; }
    size_t taken = end - lo, u = ref_below(s, m->n_ents - taken);
    size_t l = 0, h = taken;                                /* first i with free-below(i) > u */
    while (l < h) {
        size_t mid = (l + h) / 2;
        if ((size_t)ref_other(a, lo + mid, tails) - mid <= u) l = mid + 1; else h = mid;
    }
    return (int32_t)(u + l);
}

static void ref_clip(float *x, int d)
{
    float n2 = 0;
    for (int i = 0; i < d; i++) n2 += x[i] * x[i];
    if (n2 > 1) { float inv = 1 / sqrtf(n2); for (int i = 0; i < d; i++) x[i] *= inv; }
}
static float ref_dist(const float *h, const float *r, const float *t, int d)
{
    float s = 0;
    for (int i = 0; i < d; i++) s += fabsf(h[i] + r[i] - t[i]);
    return s;
}

static void *ref_run(void *arg)
{
    ref_thread *th = arg;
    const ref_model *m = th->m;
    const int d = m->dim;
    uint64_t s = th->seed;
    for (size_t k = 0; k < th->steps; k++) {
        const kgm_triple *p = &m->by_hrt[ref_below(&s, m->n)];
        int tails = ref_next(&s) >> 63;
        int32_t x = ref_corrupt(m, &s, tails ? p->h : p->t, p->r, tails);
        int32_t nh = tails ? p->h : x, nt = tails ? x : p->t;
        float *H = m->ent + (size_t)p->h * d, *T = m->ent + (size_t)p->t * d, *R = m->rel + (size_t)p->r * d;
        float *NH = m->ent + (size_t)nh * d, *NT = m->ent + (size_t)nt * d;
        float v = m->margin + ref_dist(H, R, T, d) - ref_dist(NH, R, NT, d);
        if (v > 0) {
            for (int i = 0; i < d; i++) {
                float g = H[i] + R[i] - T[i] > 0 ? m->lr : -m->lr;
                H[i] -= g; R[i] -= g; T[i] += g;
                g = NH[i] + R[i] - NT[i] > 0 ? m->lr : -m->lr;
                NH[i] += g; R[i] += g; NT[i] -= g;
            }
        }
        ref_clip(R, d); ref_clip(H, d); ref_clip(T, d); ref_clip(m->ent + (size_t)x * d, d);
    }
    return NULL;
}

/* Trains the reference for `epochs` into e's rows (e: TransE L1 of the model's shapes). */
static int ref_train(const dataset *d, kgm_emb *e, int epochs, float lr, int threads, uint64_t seed,
                     double *wall, double *cpu)
{
    const size_t n = kgm_graph_n_triples(d->g), ne = e->n_ents;
    ref_model m = { .n = n, .n_ents = ne, .dim = e->dim, .lr = lr, .margin = 1.0f, .ent = e->ent, .rel = e->rel };
    kgm_triple *hrt = malloc(n * sizeof *hrt), *trh = malloc(n * sizeof *trh);
    size_t *hs = calloc(ne + 1, sizeof *hs), *ts = calloc(ne + 1, sizeof *ts);
    ref_thread *th = calloc((size_t)threads, sizeof *th);
    if (!hrt || !trh || !hs || !ts || !th) { free(hrt); free(trh); free(hs); free(ts); free(th); return -1; }
    memcpy(hrt, kgm_graph_triples(d->g), n * sizeof *hrt);
    memcpy(trh, kgm_graph_triples(d->g), n * sizeof *trh);
    qsort(hrt, n, sizeof *hrt, cmp_ref_hrt);
    qsort(trh, n, sizeof *trh, cmp_ref_trh);
    for (size_t i = 0; i < n; i++) { hs[hrt[i].h + 1]++; ts[trh[i].t + 1]++; }
    for (size_t i = 0; i < ne; i++) { hs[i + 1] += hs[i]; ts[i + 1] += ts[i]; }
    m.by_hrt = hrt; m.by_trh = trh; m.hrt_start = hs; m.trh_start = ts;

    uint64_t s = ref_seed(seed);
    const float bound = 6.0f / sqrtf((float)e->dim), sd = 1.0f / (float)e->dim;
    float *rows[2] = { e->ent, e->rel };
    size_t counts[2] = { ne * (size_t)e->dim, e->n_rels * (size_t)e->dim };
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < counts[k]; i++) {
            float v;
            do {   /* Box-Muller, truncated to +-6/sqrt(dim) as Fast-TransX bounds its draws */
                double u1 = ((ref_next(&s) >> 11) + 1) * 0x1p-53, u2 = (ref_next(&s) >> 11) * 0x1p-53;
                v = (float)(sd * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
            } while (fabsf(v) > bound);
            rows[k][i] = v;
        }
    for (size_t i = 0; i < ne; i++) ref_clip(e->ent + i * (size_t)e->dim, e->dim);

    double t0 = now(), c0 = cpu_now();
    for (int ep = 0; ep < epochs; ep++) {
        for (int i = 0; i < threads; i++) {
            th[i] = (ref_thread){ .m = &m, .seed = ref_seed(seed ^ ((uint64_t)ep << 20) ^ ((uint64_t)i << 52)),
                                  .steps = n / (size_t)threads + ((size_t)i < n % (size_t)threads) };
            if (i) th[i].started = pthread_create(&th[i].tid, NULL, ref_run, &th[i]) == 0;
            if (i && !th[i].started) ref_run(&th[i]);
        }
        ref_run(&th[0]);
        for (int i = 1; i < threads; i++) if (th[i].started) pthread_join(th[i].tid, NULL);
    }
    *wall = now() - t0; *cpu = cpu_now() - c0;
    free(hrt); free(trh); free(hs); free(ts); free(th);
    return 0;
}

/* kgmeta's speed run, then the reference with as many threads, one after the other. */
static int run_compare(const dataset *d, int epochs, float lr, int argc, char **argv)
{
    double rate = 0, mrr = 0, wall = 0, cpu = 0;
    int rc = run_speed(d, epochs, lr, argc, argv, &rate, &mrr);
    if (rc) return rc;
    const char *env = getenv("KGM_THREADS");
    int threads = env && atoi(env) > 0 ? atoi(env) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    kgm_emb_opts o;
    kgm_emb_opts_default(&o, KGM_EMB_TRANSE_L1);
    o.dim = 100;
    kgm_emb *e = kgm_emb_new(&o, d->n_ents, kgm_graph_n_rels(d->g));
    kgm_lp_metrics m;
    double eval_s;
    if (!e || ref_train(d, e, epochs, lr, threads, o.seed, &wall, &cpu) || evaluate_test(e, d, &m, &eval_s)) {
        fprintf(stderr, "bench_embed: %s\n", e ? kgm_error() : "out of memory");
        kgm_emb_free(e);
        return 1;
    }
    double steps = (double)epochs * (double)kgm_graph_n_triples(d->g);
    printf("reference (plain loop, Fast-TransX's algorithm), %d threads, lr %g, %d epochs:\n", threads, lr, epochs);
    printf("  train %.2f s  %.3f M positive triples/s; CPU %.2f s: %.3f M per CPU-second\n",
           wall, steps / wall / 1e6, cpu, steps / cpu / 1e6);
    printf("  test filtered MRR %.4f (ties first: %.4f)  MR %.0f  Hits@1 %.4f  Hits@3 %.4f  Hits@10 %.4f\n",
           m.mrr, m.mrr_optimistic, m.mean_rank, m.hits1, m.hits3, m.hits10);
    printf("  kgmeta / reference: throughput %.2fx, MRR %+.4f\n", rate / (steps / wall), mrr - m.mrr);
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
    else if (!strcmp(key, "neg")) o->negatives = o->candidates = atoi(v);   /* 1vsall reads the second */
    else if (!strcmp(key, "batch")) o->batch = atoi(v);
    else if (!strcmp(key, "gamma")) o->gamma = strtof(v, NULL);
    else if (!strcmp(key, "adv")) o->adv_temp = strtof(v, NULL);
    else if (!strcmp(key, "margin")) o->margin = strtof(v, NULL);
    else if (!strcmp(key, "regw")) o->reg_weight = strtof(v, NULL);
    else if (!strcmp(key, "reg")) o->reg = !strcmp(v, "l2") ? KGM_EMB_REG_L2 : !strcmp(v, "n3") ? KGM_EMB_REG_N3 : KGM_EMB_REG_NONE;
    else if (!strcmp(key, "opt")) o->opt = !strcmp(v, "adam") ? KGM_EMB_OPT_ADAM : !strcmp(v, "adagrad") ? KGM_EMB_OPT_ADAGRAD : KGM_EMB_OPT_SGD;
    else if (!strcmp(key, "loss")) o->loss = !strcmp(v, "margin") ? KGM_EMB_LOSS_MARGIN :
                                          !strcmp(v, "1vsall") ? KGM_EMB_LOSS_1VSALL :
                                          !strcmp(v, "kvsall") ? KGM_EMB_LOSS_KVSALL : KGM_EMB_LOSS_SOFTPLUS;
    else if (!strcmp(key, "ls")) o->label_smoothing = strtof(v, NULL);
    else if (!strcmp(key, "decay")) o->decay_ent = strtof(v, NULL);
    else if (!strcmp(key, "rdecay")) o->decay_rel = strtof(v, NULL);
    else if (!strcmp(key, "init_lo")) o->init_low = strtof(v, NULL);
    else if (!strcmp(key, "eval")) o->eval_every = atoi(v);
    else if (!strcmp(key, "threads")) o->threads = atoi(v);
    else if (!strcmp(key, "seed")) o->seed = (uint64_t)strtoull(v, NULL, 10);
    else if (!strcmp(key, "normalize")) o->normalize = atoi(v);
    else if (!strcmp(key, "init")) o->init_scale = strtof(v, NULL);
    else if (!strcmp(key, "filter")) o->filter_negatives = atoi(v);
    else if (!strcmp(key, "bern")) o->bern = atoi(v);
    else if (!strcmp(key, "subsample")) o->subsample = atoi(v);
    else if (!strcmp(key, "edrop")) o->drop_ent = strtof(v, NULL);
    else if (!strcmp(key, "rdrop")) o->drop_rel = strtof(v, NULL);
    else if (!strcmp(key, "dside")) o->drop_per_side = atoi(v);
    else if (!strcmp(key, "recip")) o->reciprocal = atoi(v);
    else if (!strcmp(key, "logq")) o->logq = atoi(v);
    else if (!strcmp(key, "patience")) o->patience = atoi(v);
    else if (!strcmp(key, "drop")) { o->lr_drop = strtof(v, NULL); if (!o->lr_drops) o->lr_drops = 1; }
    else if (!strcmp(key, "drops")) o->lr_drops = atoi(v);
    else if (!strcmp(key, "ckpt")) o->checkpoint = v;
    else if (!strcmp(key, "resume")) o->resume = atoi(v);
    else return -1;
    return 0;
}

/* Every key=value of argv into o, as set_opt. Returns 0, or -1 after saying which is bad. */
static int set_opts(kgm_emb_opts *o, int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (set_opt(o, argv[i])) { fprintf(stderr, "bench_embed: bad option '%s'\n", argv[i]); return -1; }
    return 0;
}

/* One line per validation check, so a run's course is on record (flushed: runs last hours). */
static void print_check(void *ctx, int epoch, double valid_mrr, float lr)
{
    (void)ctx;
    printf("  epoch %d: valid MRR %.4f, lr %g\n", epoch, valid_mrr, (double)lr);
    fflush(stdout);
}

static int run_quality(const dataset *d, const char *model, double seconds, int argc, char **argv)
{
    kgm_emb_model mm;
    if (kgm_emb_model_parse(model, &mm)) { fprintf(stderr, "bench_embed: %s\n", kgm_error()); return 2; }
    kgm_emb_opts o;
    kgm_emb_opts_default(&o, mm);
    o.epochs = 1000; o.eval_every = 10; o.patience = 5;
    o.on_check = print_check;
    if (set_opts(&o, argc, argv)) return 2;
    kgm_emb *e = kgm_emb_new(&o, d->n_ents, kgm_graph_n_rels(d->g));
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
           model, o.dim, o.loss == KGM_EMB_LOSS_MARGIN ? "margin" : o.loss == KGM_EMB_LOSS_1VSALL ? "1vsall" :
                         o.loss == KGM_EMB_LOSS_KVSALL ? "kvsall" : "softplus",
           o.margin, o.gamma,
           o.adv_temp, o.opt == KGM_EMB_OPT_SGD ? "sgd" : o.opt == KGM_EMB_OPT_ADAGRAD ? "adagrad" : "adam",
           o.lr, o.reg == KGM_EMB_REG_NONE ? "none" : o.reg == KGM_EMB_REG_L2 ? "l2" : "n3", o.reg_weight,
           kgm_emb_loss_all(o.loss) ? o.candidates : o.negatives, o.batch, (unsigned long long)o.seed);
    if (kgm_emb_loss_all(o.loss))
        printf("  dropout: entities %g, relations %g%s; reciprocal relations %s; logq %s; label smoothing %g\n",
               o.drop_ent, o.drop_rel, o.drop_per_side ? " (candidates' mask per side)" : "",
               o.reciprocal ? "yes" : "no", o.logq ? "yes" : "no", o.label_smoothing);
    if (o.decay_ent > 0 || o.decay_rel > 0)
        printf("  weight decay: entities %g, relations %g\n", o.decay_ent, o.decay_rel);
    if (o.init_scale > 0 || o.init_low < 0)
        printf("  initial values uniform in [%g, %g)\n", o.init_low < 0 ? o.init_low : -o.init_scale, o.init_scale);
    printf("  %d epochs (%s), best valid MRR %.4f at epoch %d; train %.1f s, wall with validation %.1f s, %.0f triples/s\n",
           rep.epochs_run, rep.interrupted ? "time box reached" : "done", rep.best_valid_mrr, rep.best_epoch,
           rep.seconds, wall, rep.triples_per_s);
    if (o.subsample || o.bern) printf("  subsampling weights %s, bern negatives %s\n", o.subsample ? "yes" : "no", o.bern ? "yes" : "no");
    if (o.lr_drops) printf("  learning rate dropped %d times (x%g each), ending at %g\n", rep.lr_drops, o.lr_drop, rep.last_lr);
    /* six digits: a figure that meets its target by less than 0.00005 must show it */
    printf("  test filtered MRR %.6f  MR %.0f  Hits@1 %.4f  Hits@3 %.4f  Hits@10 %.4f  [eval %.1f s]\n",
           m.mrr, m.mean_rank, m.hits1, m.hits3, m.hits10, eval_s);
    kgm_emb_free(e);
    return 0;
}

/* ---- (3) fold-in at scale ---- */
typedef struct {
    kgm_graph  *reduced;    /* train minus every triple touching a held-out entity */
    kgm_triple *held;       /* those triples, held-out entities renumbered after the kept ones */
    kgm_triple *held_orig;  /* the same triples in the original ids */
    size_t      n_held_triples, n_kept;
} holdout;

static void holdout_free(holdout *h)
{
    kgm_graph_free(h->reduced);
    free(h->held); free(h->held_orig);
}

/* Picks n_held distinct train entities at random (seeded) and splits train around them. */
static int holdout_make(const kgm_graph *g, int n_held, uint64_t seed, holdout *h)
{
    memset(h, 0, sizeof *h);
    size_t ne = kgm_graph_n_ents(g), nr = kgm_graph_n_rels(g), n = kgm_graph_n_triples(g);
    int32_t *newid = malloc(ne * sizeof(int32_t));
    h->reduced = kgm_graph_new();
    h->held = malloc(n * sizeof(kgm_triple));
    h->held_orig = malloc(n * sizeof(kgm_triple));
    if (!newid || !h->reduced || !h->held || !h->held_orig) { free(newid); return -1; }
    for (size_t i = 0; i < ne; i++) newid[i] = 0;
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int k = 0; k < n_held;) {   /* LCG draws: the bench needs no quality randomness here */
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t c = (size_t)((x >> 33) % ne);
        if (!newid[c]) { newid[c] = -1; k++; }
    }
    int32_t next = 0, held_next = (int32_t)(ne - (size_t)n_held);
    char name[32];
    for (size_t i = 0; i < ne; i++) {
        if (newid[i] < 0) { newid[i] = held_next++; continue; }
        snprintf(name, sizeof name, "e%zu", i);
        newid[i] = next++;
        if (kgm_graph_entity(h->reduced, name) != newid[i]) { free(newid); return -1; }
    }
    h->n_kept = (size_t)next;
    for (size_t r = 0; r < nr; r++) {
        snprintf(name, sizeof name, "r%zu", r);
        if (kgm_graph_relation(h->reduced, name) != (int32_t)r) { free(newid); return -1; }
    }
    for (size_t i = 0; i < n; i++) {
        kgm_triple t = kgm_graph_triple(g, i), m = { newid[t.h], t.r, newid[t.t] };
        if ((size_t)m.h >= h->n_kept || (size_t)m.t >= h->n_kept) {
            h->held_orig[h->n_held_triples] = t;
            h->held[h->n_held_triples++] = m;
        } else if (kgm_graph_add(h->reduced, m.h, m.r, m.t)) { free(newid); return -1; }
    }
    free(newid);
    return 0;
}

static int run_foldin(const dataset *d, const char *model, int epochs, int n_held, int fold_epochs,
                      int argc, char **argv)
{
    kgm_emb_model mm;
    if (kgm_emb_model_parse(model, &mm)) { fprintf(stderr, "bench_embed: %s\n", kgm_error()); return 2; }
    if (n_held < 1 || (size_t)n_held >= kgm_graph_n_ents(d->g)) { fprintf(stderr, "bench_embed: bad held-out count\n"); return 2; }
    kgm_emb_opts o;
    kgm_emb_opts_default(&o, mm);
    o.epochs = epochs;
    if (set_opts(&o, argc, argv)) return 2;
    holdout h;
    if (holdout_make(d->g, n_held, o.seed, &h)) { fprintf(stderr, "bench_embed: out of memory\n"); holdout_free(&h); return 1; }
    size_t nr = kgm_graph_n_rels(d->g);
    kgm_emb *full = kgm_emb_new(&o, kgm_graph_n_ents(d->g), nr), *part = kgm_emb_new(&o, h.n_kept, nr);
    kgm_emb_report rf, rp;
    kgm_lp_metrics mf, mp;
    const kgm_triple *kf[1] = { kgm_graph_triples(d->g) }, *kp[2] = { kgm_graph_triples(h.reduced), h.held };
    size_t nkf[1] = { kgm_graph_n_triples(d->g) }, nkp[2] = { kgm_graph_n_triples(h.reduced), h.n_held_triples };
    kgm_emb_opts fo = o;
    fo.epochs = fold_epochs;
    double t0 = 0, fold_s = 0;
    int rc = !full || !part;
    if (!rc) rc = kgm_emb_train(full, d->g, &o, NULL, 0, NULL, 0, &rf);
    if (!rc) rc = kgm_lp_evaluate(full, h.held_orig, h.n_held_triples, kf, nkf, 1, 0, &mf);
    if (!rc) rc = kgm_emb_train(part, h.reduced, &o, NULL, 0, NULL, 0, &rp);
    if (!rc) {
        t0 = now();
        rc = kgm_emb_foldin(part, (size_t)n_held, h.held, h.n_held_triples, &fo, NULL, NULL, 0, NULL);
        fold_s = now() - t0;   /* the fit alone: ranking 2 x 40k candidates per triple is separate */
    }
    if (!rc) rc = kgm_lp_evaluate(part, h.held, h.n_held_triples, kp, nkp, 2, 0, &mp);
    if (rc) fprintf(stderr, "bench_embed: %s\n", full && part ? kgm_error() : "out of memory");
    else {
        printf("foldin: %s dim %d lr %g neg %d, %d epochs; %d held-out entities with %zu train triples "
               "(%.1f per entity) removed, %zu triples left\n", model, o.dim, o.lr, o.negatives, epochs, n_held,
               h.n_held_triples, (double)h.n_held_triples / n_held, kgm_graph_n_triples(h.reduced));
        printf("  full model (trained on them, %.1f s): their triples' filtered MRR %.4f  Hits@1 %.4f  Hits@10 %.4f\n",
               rf.seconds, mf.mrr, mf.hits1, mf.hits10);
        printf("  without them (%.1f s) + fold-in of %d epochs, 1 thread: fit %.3f s; MRR %.4f  "
               "Hits@1 %.4f  Hits@10 %.4f  (ratio to full %.2f)\n",
               rp.seconds, fold_epochs, fold_s, mp.mrr, mp.hits1, mp.hits10, mf.mrr > 0 ? mp.mrr / mf.mrr : 0);
    }
    kgm_emb_free(full); kgm_emb_free(part);
    holdout_free(&h);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    kgm_blas_fix_core(argv);   /* OpenBLAS's fast kernels (src/blascore.h); may re-execute */
    const char *dir = "/work/shared/data/wn18rr";
    int a = 1;
    if (a < argc && strcmp(argv[a], "speed") != 0 && strcmp(argv[a], "compare") != 0 &&
        strcmp(argv[a], "quality") != 0 && strcmp(argv[a], "foldin") != 0) dir = argv[a++];
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/train.txt", dir);
    if (access(probe, R_OK) != 0) {
        printf("bench_embed: WN18RR not found (%s missing); nothing measured.\n", probe);
        return 0;
    }
    const char *mode = a < argc ? argv[a++] : "speed";
    dataset d;
    if (load_dataset(dir, &d)) { fprintf(stderr, "bench_embed: cannot load %s\n", dir); dataset_free(&d); return 1; }
    printf("WN18RR through the store: %zu entities in train + %zu only in valid/test, %zu relations, "
           "%zu train / %zu valid / %zu test triples; store load %.2f s, all loading %.2f s\n",
           kgm_graph_n_ents(d.g), kgm_strmap_size(d.extra), kgm_graph_n_rels(d.g), kgm_graph_n_triples(d.g),
           d.n_valid, d.n_test, d.store_load_s, d.load_s);
    int rc;
    if (!strcmp(mode, "speed"))
        rc = run_speed(&d, a < argc ? atoi(argv[a]) : 1000, a + 1 < argc ? strtof(argv[a + 1], NULL) : 0.001f,
                       argc - a - 2 > 0 ? argc - a - 2 : 0, argv + a + 2, NULL, NULL);
    else if (!strcmp(mode, "compare"))
        rc = run_compare(&d, a < argc ? atoi(argv[a]) : 1000, a + 1 < argc ? strtof(argv[a + 1], NULL) : 0.001f,
                         argc - a - 2 > 0 ? argc - a - 2 : 0, argv + a + 2);
    else if (!strcmp(mode, "quality") && a < argc)
        rc = run_quality(&d, argv[a], a + 1 < argc ? atof(argv[a + 1]) : 180.0, argc - a - 2 > 0 ? argc - a - 2 : 0, argv + a + 2);
    else if (!strcmp(mode, "foldin") && a < argc) {
        int kv = a + 1;   /* positional numbers first, then key=value options */
        int num[3] = { 100, 100, 100 };
        for (int i = 0; i < 3 && kv < argc && !strchr(argv[kv], '='); i++) num[i] = atoi(argv[kv++]);
        rc = run_foldin(&d, argv[a], num[0], num[1], num[2], argc - kv, argv + kv);
    }
    else { fprintf(stderr, "usage: bench_embed [DIR] speed|compare [EPOCHS [LR]] | quality MODEL [SECONDS] | "
                   "foldin MODEL [EPOCHS [HELD [FOLD_EPOCHS]]] [key=value...]\n"); rc = 2; }
    dataset_free(&d);
    return rc;
}
