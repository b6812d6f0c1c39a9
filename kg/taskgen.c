/* kg/taskgen.c - the generated task families, their sampler, and the Turtle writer of the
 * sine and six-family task graphs. Randomness is a private xoshiro256** seeded through
 * splitmix64, so the files depend on nothing but the config (not on libc's rand). */
#include "taskgen.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "csv.h"
#include "atomicfile.h"
#include "error.h"

#define PI 3.14159265358979323846

/* ---- randomness ---- */

typedef struct { uint64_t s[4]; } rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return out;
}

static double rng_uniform(rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }   /* [0,1) */
static double rng_range(rng *r, double lo, double hi) { return lo + (hi - lo) * rng_uniform(r); }
static size_t rng_below(rng *r, size_t n) { return (size_t)(rng_uniform(r) * (double)n); }

static double rng_normal(rng *r)
{
    double u1 = 1.0 - rng_uniform(r), u2 = rng_uniform(r);   /* u1 in (0,1]: log is finite */
    return sqrt(-2.0 * log(u1)) * cos(2.0 * PI * u2);
}

/* ---- the functions ---- */

typedef struct {
    const char *name;
    int dim, n_params;
    double lo[KGM_TASKGEN_MAX_PARAMS], hi[KGM_TASKGEN_MAX_PARAMS];
} fn_def;

static const fn_def FNS[] = {
    [KGM_FN_SINE]         = { "Sine",             1, 2, { 0.1, 0 },            { 5, PI } },
    [KGM_FN_SINUSOID]     = { "Sinusoid",         2, 3, { 0.1, 0, 0.8 },       { 5, 2 * PI, 1.2 } },
    [KGM_FN_LINE]         = { "Line",             2, 2, { -3, -3 },            { 3, 3 } },
    [KGM_FN_QUADRATIC]    = { "Quadratic",        2, 3, { -0.2, -2, -3 },      { 0.2, 2, 3 } },
    [KGM_FN_CUBIC]        = { "Cubic",            2, 4, { -0.1, -0.2, -2, -3 },{ 0.1, 0.2, 2, 3 } },
    [KGM_FN_QUAD_SURFACE] = { "QuadraticSurface", 2, 2, { -1, -1 },            { 1, 1 } },
    [KGM_FN_RIPPLE]       = { "Ripple",           2, 2, { -0.2, -3 },          { 0.2, 3 } },
};
_Static_assert(sizeof FNS / sizeof FNS[0] == KGM_FN_COUNT, "one row per function");

#define KGM_NS "http://kgmeta.org/ns#"

const char *kgm_taskgen_fn_name(kgm_fn fn) { return fn < KGM_FN_COUNT ? FNS[fn].name : "?"; }
int kgm_taskgen_fn_dim(kgm_fn fn) { return FNS[fn].dim; }
int kgm_taskgen_fn_nparams(kgm_fn fn) { return FNS[fn].n_params; }

int kgm_taskgen_fn_parse(const char *name, kgm_fn *out)
{
    const char *local = name;
    if (!strncmp(name, KGM_NS, strlen(KGM_NS))) local = name + strlen(KGM_NS);
    else if (!strncmp(name, "kgm:", 4)) local = name + 4;
    for (int f = 0; f < KGM_FN_COUNT; f++)
        if (!strcmp(local, FNS[f].name)) { *out = (kgm_fn)f; return 0; }
    return kgm_fail(KGM_ENOTFOUND, "unknown generator function '%s'", name);
}

double kgm_taskgen_eval(const kgm_gen_params *g, const double *x)
{
    const double *p = g->p;
    double u = x[0];
    switch (g->fn) {
    case KGM_FN_SINE:         return p[0] * sin(u - p[1]);
    case KGM_FN_SINUSOID:     return p[0] * sin(p[2] * u + p[1]);
    case KGM_FN_LINE:         return p[0] * u + p[1];
    case KGM_FN_QUADRATIC:    return (p[0] * u + p[1]) * u + p[2];
    case KGM_FN_CUBIC:        return ((p[0] * u + p[1]) * u + p[2]) * u + p[3];
    case KGM_FN_QUAD_SURFACE: return p[0] * u * u + p[1] * x[1] * x[1];
    case KGM_FN_RIPPLE:       return sin(-p[0] * (u * u + x[1] * x[1])) + p[1];
    default:                  return NAN;
    }
}

int kgm_taskgen_sample(const kgm_gen_params *g, uint64_t seed, size_t k, size_t q,
                       double *x, double *y)
{
    if ((unsigned)g->fn >= KGM_FN_COUNT) return kgm_fail(KGM_EINVAL, "unknown generator function %d", (int)g->fn);
    if (!(g->noise >= 0) || !isfinite(g->noise))
        return kgm_fail(KGM_EINVAL, "noise standard deviation must be finite and >= 0");
    rng r;
    rng_seed(&r, seed);
    int dim = FNS[g->fn].dim;
    int surface = g->fn == KGM_FN_QUAD_SURFACE || g->fn == KGM_FN_RIPPLE;
    for (size_t i = 0; i < k + q; i++) {
        double *xi = x + i * (size_t)dim;
        xi[0] = rng_range(&r, -5, 5);
        if (dim == 2) xi[1] = surface ? rng_range(&r, -5, 5) : 1.0;
        y[i] = kgm_taskgen_eval(g, xi) + g->noise * rng_normal(&r);
    }
    return 0;
}

/* ---- the graph writer ---- */

kgm_taskgen_config kgm_taskgen_defaults(kgm_bench bench)
{
    kgm_taskgen_config c = { bench, 1, 2000, 200, 1000, 0.3, 3 };
    return c;
}

/* A parameter as written: 6 decimals, so the file holds exactly the value that is used
 * (N / 1e6 in double is the correctly rounded value of the decimal, as strtod reads it). */
static double draw_param(rng *r, double lo, double hi)
{
    return round(rng_range(r, lo, hi) * 1e6) / 1e6;
}

static void draw_task(rng *r, kgm_fn fn, double noise, kgm_gen_params *g)
{
    memset(g, 0, sizeof *g);
    g->fn = fn;
    g->noise = noise;
    for (int i = 0; i < FNS[fn].n_params; i++) g->p[i] = draw_param(r, FNS[fn].lo[i], FNS[fn].hi[i]);
}

/* Coarse, family-agnostic hints (informative, not the answer): how large the leading
 * coefficient is within its range, and the sign of the function near the origin. */
static const char *scale_band(const kgm_gen_params *g)
{
    const double *p = g->p;
    double s;
    switch (g->fn) {
    case KGM_FN_SINE: case KGM_FN_SINUSOID: s = (p[0] - 0.1) / 4.9; break;
    case KGM_FN_LINE:         s = fabs(p[0]) / 3; break;
    case KGM_FN_QUADRATIC:    s = fabs(p[0]) / 0.2; break;
    case KGM_FN_CUBIC:        s = fabs(p[0]) / 0.1; break;
    case KGM_FN_QUAD_SURFACE: s = (fabs(p[0]) + fabs(p[1])) / 2; break;
    default:                  s = fabs(p[0]) / 0.2; break;   /* ripple */
    }
    return s < 1.0 / 3 ? "Low" : s < 2.0 / 3 ? "Mid" : "High";
}

static const char *origin_sign(const kgm_gen_params *g)
{
    const double *p = g->p;
    double v;
    switch (g->fn) {
    case KGM_FN_SINUSOID:     v = sin(p[1]); break;
    case KGM_FN_LINE:         v = p[1]; break;
    case KGM_FN_QUADRATIC:    v = p[2]; break;
    case KGM_FN_CUBIC:        v = p[3]; break;
    case KGM_FN_QUAD_SURFACE: v = p[0] + p[1]; break;
    default:                  v = p[1]; break;               /* ripple */
    }
    return v >= 0 ? "Positive" : "Negative";
}

/* Opens DIR/NAME for an all-or-nothing rewrite, committed with KGM_ATOMIC_FAST: no fsync,
 * because these files are rebuilt from the seed (a crash costs a rerun) and syncing 150
 * small files made the tests wait on the disk. */
static int out_open(kgm_atomic_file *o, const char *dir, const char *name)
{
    char *path;
    if (asprintf(&path, "%s/%s", dir, name) < 0) return kgm_fail(KGM_ENOMEM, "out of memory");
    int rc = kgm_atomic_open(o, path);
    free(path);
    return rc;
}

static const char *PREFIXES =
    "@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .\n"
    "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
    "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n"
    "@prefix mls: <http://www.w3.org/ns/mls#> .\n"
    "@prefix kgm: <" KGM_NS "> .\n";

typedef struct {
    const char *prefix, *ns, *title;
    const char *const *props;  /* descriptive properties, name then comment, NULL-ended */
} bench_def;

static const char *const SINE_PROPS[] = {
    "amplitudeBand", "Coarse amplitude of the sine: Low, Mid or High third of [0.1, 5]. Sometimes missing.",
    "phaseBand", "Coarse phase of the sine: Early (below pi/2) or Late. Sometimes missing.",
    NULL };
static const char *const SIXFAM_PROPS[] = {
    "scaleBand", "Coarse size of the leading coefficient within its family's range: Low, Mid or High third. Sometimes missing.",
    "originSign", "Sign of the function near the origin (Positive or Negative). Sometimes missing.",
    "family", "The function family of a task (family graph only).",
    "subFamilyOf", "Family taxonomy: a family and the broader family it belongs to.",
    NULL };

static const bench_def BENCHES[] = {
    [KGM_BENCH_SINE]   = { "sin", "http://kgmeta.org/data/sine#",
                           "MAML sinusoid regression tasks (Finn et al. 2017)", SINE_PROPS },
    [KGM_BENCH_SIXFAM] = { "sf", "http://kgmeta.org/data/sixfam#",
                           "Six-family 2D regression tasks (ARML, Yao et al. 2020)", SIXFAM_PROPS },
};

static void write_header(FILE *f, const bench_def *b, const char *what, const kgm_taskgen_config *c,
                         int declare)
{
    fprintf(f, "# %s: %s.\n# Written by kgm_taskgen_write (kg/taskgen.c), seed %llu: do not edit; "
            "rebuild with bench_taskgen.\n", b->title, what, (unsigned long long)c->seed);
    fputs(PREFIXES, f);
    fprintf(f, "@prefix %s: <%s> .\n\n", b->prefix, b->ns);
    if (!declare) return;
    for (const char *const *p = b->props; *p; p += 2)
        fprintf(f, "%s:%s a rdf:Property ;\n    rdfs:label \"%s\" ;\n    rdfs:comment \"%s\" .\n",
                b->prefix, p[0], p[0], p[1]);
    fputc('\n', f);
}

static void write_generators(FILE *f, const bench_def *b, kgm_bench bench, double noise)
{
    for (int fn = 0; fn < KGM_FN_COUNT; fn++) {
        if ((bench == KGM_BENCH_SINE) != (fn == KGM_FN_SINE)) continue;
        fprintf(f, "%s:%sGenerator a kgm:Generator ;\n    kgm:function kgm:%s ;\n"
                "    kgm:noiseStd %.6f .\n", b->prefix, FNS[fn].name, FNS[fn].name, noise);
    }
    fputc('\n', f);
}

typedef struct {
    kgm_gen_params g;
    const char *scale, *sign;   /* NULL when missing */
} task_rec;

static const char *ROLE[] = { "MetaTrain", "MetaValidation", "MetaTest" };
static const char *IDPFX[] = { "t", "v", "n" };

static void task_name(char *buf, size_t n, const kgm_taskgen_config *c, size_t i)
{
    size_t role = i < c->n_train ? 0 : i < c->n_train + c->n_val ? 1 : 2;
    size_t j = role == 0 ? i : role == 1 ? i - c->n_train : i - c->n_train - c->n_val;
    snprintf(buf, n, "%s%05zu", IDPFX[role], j + 1);
}

static void write_task(FILE *f, const bench_def *b, const kgm_taskgen_config *c, size_t i,
                       const task_rec *t)
{
    char name[32];
    task_name(name, sizeof name, c, i);
    size_t role = i < c->n_train ? 0 : i < c->n_train + c->n_val ? 1 : 2;
    fprintf(f, "%s:%s a mls:Task ;\n    kgm:role kgm:%s ;\n    kgm:generator %s:%sGenerator",
            b->prefix, name, ROLE[role], b->prefix, FNS[t->g.fn].name);
    static const char PN[] = "ABCD";
    for (int k = 0; k < FNS[t->g.fn].n_params; k++)
        fprintf(f, " ;\n    kgm:param%c %.6f", PN[k], t->g.p[k]);
    int sine = c->bench == KGM_BENCH_SINE;
    if (t->scale) fprintf(f, " ;\n    %s:%s %s:%s", b->prefix, sine ? "amplitudeBand" : "scaleBand", b->prefix, t->scale);
    if (t->sign)  fprintf(f, " ;\n    %s:%s %s:%s", b->prefix, sine ? "phaseBand" : "originSign", b->prefix, t->sign);
    fputs(" .\n", f);
}

/* Independent streams per role (and one for the links), so the meta-train tasks do not
 * depend on the validation or test counts: a smaller pool is a prefix of a larger one
 * with the same seed, and the new test tasks are the same for every pool size. */
enum { STREAM_TRAIN, STREAM_VAL, STREAM_TEST, STREAM_LINKS };

static void rng_stream(rng *r, uint64_t seed, int stream)
{
    uint64_t s = seed;
    rng_seed(r, splitmix64(&s) ^ (0xD1B54A32D192ED03ull * (uint64_t)(stream + 1)));
}

static void draw_one(const kgm_taskgen_config *c, rng *r, task_rec *t)
{
    kgm_fn fn = c->bench == KGM_BENCH_SINE ? KGM_FN_SINE : (kgm_fn)(KGM_FN_SINUSOID + rng_below(r, 6));
    draw_task(r, fn, c->bench == KGM_BENCH_SINE ? 0.0 : 0.3, &t->g);
    t->scale = scale_band(&t->g);
    if (c->bench == KGM_BENCH_SINE) t->sign = t->g.p[1] < PI / 2 ? "Early" : "Late";
    else t->sign = origin_sign(&t->g);
    if (rng_uniform(r) < c->missing) t->scale = NULL;
    if (rng_uniform(r) < c->missing) t->sign = NULL;
}

static task_rec *draw_all(const kgm_taskgen_config *c)
{
    size_t n = c->n_train + c->n_val + c->n_test;
    task_rec *t = calloc(n ? n : 1, sizeof *t);
    if (!t) return NULL;
    size_t end[3] = { c->n_train, c->n_train + c->n_val, n };
    for (int role = 0, i = 0; role < 3; role++) {
        rng r;
        rng_stream(&r, c->seed, role);
        for (; (size_t)i < end[role]; i++) draw_one(c, &r, &t[i]);
    }
    return t;
}

static int write_tasks_file(const kgm_taskgen_config *c, const char *dir, const char *file,
                            const task_rec *t, size_t from, size_t to, const char *what)
{
    const bench_def *b = &BENCHES[c->bench];
    kgm_atomic_file o;
    int rc = out_open(&o, dir, file);
    if (rc) return rc;
    write_header(o.f, b, what, c, from == 0);
    write_generators(o.f, b, c->bench, c->bench == KGM_BENCH_SINE ? 0.0 : 0.3);
    for (size_t i = from; i < to; i++) write_task(o.f, b, c, i, &t[i]);
    return kgm_atomic_commit(&o, KGM_ATOMIC_FAST);
}

/* ---- six-family links ---- */

static const char *const TAXONOMY =
    "sf:Family a rdfs:Class ;\n    rdfs:label \"function family\" ;\n"
    "    rdfs:comment \"A family of regression functions, or a broader group of families.\" .\n"
    "sf:Curve1D a sf:Family ; rdfs:label \"one-input curve\" .\n"
    "sf:Surface2D a sf:Family ; rdfs:label \"two-input surface\" .\n"
    "sf:Periodic a sf:Family ; rdfs:label \"periodic\" .\n"
    "sf:Polynomial a sf:Family ; sf:subFamilyOf sf:Curve1D ; rdfs:label \"polynomial curve\" .\n"
    "sf:Sinusoid a sf:Family ; sf:subFamilyOf sf:Curve1D, sf:Periodic ; rdfs:label \"sinusoid\" .\n"
    "sf:Line a sf:Family ; sf:subFamilyOf sf:Polynomial ; rdfs:label \"line\" .\n"
    "sf:Quadratic a sf:Family ; sf:subFamilyOf sf:Polynomial ; rdfs:label \"quadratic\" .\n"
    "sf:Cubic a sf:Family ; sf:subFamilyOf sf:Polynomial ; rdfs:label \"cubic\" .\n"
    "sf:QuadraticSurface a sf:Family ; sf:subFamilyOf sf:Surface2D ; rdfs:label \"quadratic surface\" .\n"
    "sf:Ripple a sf:Family ; sf:subFamilyOf sf:Surface2D, sf:Periodic ; rdfs:label \"ripple\" .\n\n";

static int write_family_file(const kgm_taskgen_config *c, const char *dir, const char *file,
                             const task_rec *t, size_t from, size_t to, int taxonomy)
{
    const bench_def *b = &BENCHES[c->bench];
    kgm_atomic_file o;
    int rc = out_open(&o, dir, file);
    if (rc) return rc;
    write_header(o.f, b, from == 0 ? "family links of the pool, and the family taxonomy"
                                   : "family links of the new tasks", c, 0);
    if (taxonomy) fputs(TAXONOMY, o.f);
    char name[32];
    for (size_t i = from; i < to; i++) {
        task_name(name, sizeof name, c, i);
        fprintf(o.f, "sf:%s sf:family sf:%s .\n", name, FNS[t[i].g.fn].name);
    }
    return kgm_atomic_commit(&o, KGM_ATOMIC_FAST);
}

/* Pool tasks grouped by function, for drawing similar (same family) or dissimilar links. */
typedef struct { size_t *idx; size_t n[KGM_FN_COUNT], off[KGM_FN_COUNT + 1]; } by_family;

static int group_pool(const task_rec *t, size_t n_pool, by_family *bf)
{
    memset(bf, 0, sizeof *bf);
    bf->idx = malloc((n_pool ? n_pool : 1) * sizeof *bf->idx);
    if (!bf->idx) return kgm_fail(KGM_ENOMEM, "out of memory");
    for (size_t i = 0; i < n_pool; i++) bf->n[t[i].g.fn]++;
    for (int f = 0; f < KGM_FN_COUNT; f++) bf->off[f + 1] = bf->off[f] + bf->n[f];
    size_t fill[KGM_FN_COUNT] = { 0 };
    for (size_t i = 0; i < n_pool; i++) {
        kgm_fn f = t[i].g.fn;
        bf->idx[bf->off[f] + fill[f]++] = i;
    }
    return 0;
}

/* One link target for task `self` of function fn: with probability 0.8 a random other pool
 * task of the same family, else a random pool task of another family. */
static size_t draw_link(rng *r, const by_family *bf, size_t n_pool, kgm_fn fn, size_t self)
{
    for (;;) {
        size_t j;
        if (rng_uniform(r) < 0.8) {
            j = bf->idx[bf->off[fn] + rng_below(r, bf->n[fn])];
        } else {
            size_t others = n_pool - bf->n[fn];
            size_t k = rng_below(r, others);
            j = bf->idx[k < bf->off[fn] ? k : k + bf->n[fn]];
        }
        if (j != self) return j;
    }
}

static int write_similar_file(const kgm_taskgen_config *c, const char *dir, const char *file,
                              const task_rec *t, size_t from, size_t to, const by_family *bf, rng *r)
{
    const bench_def *b = &BENCHES[c->bench];
    size_t n_pool = c->n_train + c->n_val;
    kgm_atomic_file o;
    int rc = out_open(&o, dir, file);
    if (rc) return rc;
    write_header(o.f, b, from == 0 ? "noisy similarTo links between pool tasks (80% same family)"
                                   : "noisy similarTo links from the new tasks to the pool", c, 0);
    char name[32], other[32];
    for (size_t i = from; i < to; i++) {
        task_name(name, sizeof name, c, i);
        size_t prev[16];
        int n_links = c->n_similar < 16 ? c->n_similar : 16;
        for (int k = 0; k < n_links; k++) {
            size_t j;
            int dup, tries = 0;
            do {                         /* distinct targets; a few tries suffice */
                j = draw_link(r, bf, n_pool, t[i].g.fn, i);
                dup = 0;
                for (int m = 0; m < k; m++) dup |= prev[m] == j;
            } while (dup && ++tries < 8);
            prev[k] = j;
            if (dup) continue;
            task_name(other, sizeof other, c, j);
            fprintf(o.f, "sf:%s kgm:similarTo sf:%s .\n", name, other);
        }
    }
    return kgm_atomic_commit(&o, KGM_ATOMIC_FAST);
}

int kgm_taskgen_write(const kgm_taskgen_config *c, const char *dir)
{
    size_t n_pool = c->n_train + c->n_val, n = n_pool + c->n_test;
    if (c->n_train == 0 || c->n_train > 99999 || c->n_val > 99999 || c->n_test > 99999)
        return kgm_fail(KGM_EINVAL, "task counts must be 1..99999 (train) and 0..99999");
    if (!(c->missing >= 0 && c->missing <= 1)) return kgm_fail(KGM_EINVAL, "missing must be in [0,1]");
    if (c->n_similar < 0 || c->n_similar > 16) return kgm_fail(KGM_EINVAL, "similar links must be 0..16");
    task_rec *t = draw_all(c);
    if (!t) return kgm_fail(KGM_ENOMEM, "out of memory drawing %zu tasks", n);
    int rc;
    if (c->bench == KGM_BENCH_SINE) {
        rc = write_tasks_file(c, dir, "sine-tasks.ttl", t, 0, n_pool, "meta-train and meta-validation pool");
        if (!rc) rc = write_tasks_file(c, dir, "sine-new.ttl", t, n_pool, n, "new meta-test tasks");
        free(t);
        return rc;
    }
    by_family bf;
    rng r;
    rng_stream(&r, c->seed, STREAM_LINKS);
    rc = group_pool(t, n_pool, &bf);
    for (int f = KGM_FN_SINUSOID; !rc && f < KGM_FN_COUNT; f++)
        if (bf.n[f] < 2) rc = kgm_fail(KGM_EINVAL, "the pool is too small: family %s has %zu tasks", FNS[f].name, bf.n[f]);
    if (!rc) rc = write_tasks_file(c, dir, "sixfam-tasks.ttl", t, 0, n_pool, "meta-train and meta-validation pool");
    if (!rc) rc = write_tasks_file(c, dir, "sixfam-new.ttl", t, n_pool, n, "new meta-test tasks");
    if (!rc) rc = write_family_file(c, dir, "sixfam-family.ttl", t, 0, n_pool, 1);
    if (!rc) rc = write_family_file(c, dir, "sixfam-new-family.ttl", t, n_pool, n, 0);
    if (!rc) rc = write_similar_file(c, dir, "sixfam-similar.ttl", t, 0, n_pool, &bf, &r);
    if (!rc) rc = write_similar_file(c, dir, "sixfam-new-similar.ttl", t, n_pool, n, &bf, &r);
    free(bf.idx);
    free(t);
    return rc;
}

/* ---- gapminder ---- */

#define GAP_YEARS 12     /* 1952, 1957, ..., 2007 */
#define GAP_SUPPORT 3    /* 1952-1962: the support set; the 9 later years are the query set */

typedef struct {
    const char *name, *continent, *iso;   /* borrowed from the CSV tables */
    size_t row;                           /* first row in the TSV */
    double pop, gdp;                      /* 1952 values */
    int role;                             /* index into ROLE */
} country;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Terciles over all countries: values below cut[0] are band 0, below cut[1] band 1. */
static void terciles(const country *c, size_t n, int gdp, double cut[2])
{
    double *v = malloc(n * sizeof *v);
    if (!v) { cut[0] = cut[1] = 0; return; }
    for (size_t i = 0; i < n; i++) v[i] = gdp ? c[i].gdp : c[i].pop;
    qsort(v, n, sizeof *v, cmp_double);
    cut[0] = v[n / 3];
    cut[1] = v[2 * n / 3];
    free(v);
}

static const char *band(double v, const double cut[2], const char *const names[3])
{
    return names[v < cut[0] ? 0 : v < cut[1] ? 1 : 2];
}

static int gap_countries(const kgm_csv *t, const kgm_csv *codes, country **out, size_t *n_out)
{
    int cc = kgm_csv_column(t, "country"), ct = kgm_csv_column(t, "continent"),
        cy = kgm_csv_column(t, "year"), cl = kgm_csv_column(t, "lifeExp"),
        cp = kgm_csv_column(t, "pop"), cg = kgm_csv_column(t, "gdpPercap"),
        kc = kgm_csv_column(codes, "country"), ki = kgm_csv_column(codes, "iso_alpha");
    if (cc < 0 || ct < 0 || cy < 0 || cl < 0 || cp < 0 || cg < 0 || kc < 0 || ki < 0) return kgm_error_code();
    size_t rows = kgm_csv_rows(t);
    if (rows % GAP_YEARS) return kgm_fail(KGM_EFORMAT, "gapminder: %zu rows is not 12 per country", rows);
    size_t n = rows / GAP_YEARS;
    country *c = calloc(n ? n : 1, sizeof *c);
    if (!c) return kgm_fail(KGM_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t r0 = i * GAP_YEARS;
        c[i].name = kgm_csv_cell(t, r0, (size_t)cc);
        c[i].continent = kgm_csv_cell(t, r0, (size_t)ct);
        c[i].row = r0;
        double year;
        int rc = 0;
        for (size_t k = 0; k < GAP_YEARS && !rc; k++) {
            rc = kgm_csv_number(t, r0 + k, (size_t)cy, &year);
            if (!rc && (strcmp(kgm_csv_cell(t, r0 + k, (size_t)cc), c[i].name) || year != 1952 + 5.0 * (double)k))
                rc = kgm_fail(KGM_EFORMAT, "gapminder: row %zu is not %s in %d", r0 + k + 2, c[i].name, 1952 + 5 * (int)k);
            double v;
            if (!rc) rc = kgm_csv_number(t, r0 + k, (size_t)cl, &v);
        }
        if (!rc) rc = kgm_csv_number(t, r0, (size_t)cp, &c[i].pop);
        if (!rc) rc = kgm_csv_number(t, r0, (size_t)cg, &c[i].gdp);
        for (size_t k = 0; !rc && k < kgm_csv_rows(codes) && !c[i].iso; k++)
            if (!strcmp(kgm_csv_cell(codes, k, (size_t)kc), c[i].name)) c[i].iso = kgm_csv_cell(codes, k, (size_t)ki);
        if (!rc && !c[i].iso) rc = kgm_fail(KGM_EFORMAT, "gapminder: no ISO code for %s", c[i].name);
        if (rc) { free(c); return rc; }
    }
    *out = c;
    *n_out = n;
    return 0;
}

/* Shuffles country indexes with the seed: the first 70% meta-train, the next 10% validation. */
static void gap_split(country *c, size_t n, uint64_t seed)
{
    size_t *perm = malloc(n * sizeof *perm);
    if (!perm) return;
    for (size_t i = 0; i < n; i++) perm[i] = i;
    rng r;
    rng_seed(&r, seed);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = rng_below(&r, i + 1), tmp = perm[i];
        perm[i] = perm[j]; perm[j] = tmp;
    }
    size_t n_train = n * 7 / 10, n_val = n / 10;
    for (size_t k = 0; k < n; k++) c[perm[k]].role = k < n_train ? 0 : k < n_train + n_val ? 1 : 2;
    free(perm);
}

static int gap_write_csv(const kgm_csv *t, const country *c, const char *dir)
{
    char name[64];
    snprintf(name, sizeof name, "%s.csv", c->iso);
    kgm_atomic_file o;
    int rc = out_open(&o, dir, name);
    if (rc) return rc;
    int cy = kgm_csv_column(t, "year"), cl = kgm_csv_column(t, "lifeExp");
    fputs("year,lifeExp\n", o.f);
    for (size_t k = 0; k < GAP_YEARS; k++)
        fprintf(o.f, "%s,%s\n", kgm_csv_cell(t, c->row + k, (size_t)cy), kgm_csv_cell(t, c->row + k, (size_t)cl));
    return kgm_atomic_commit(&o, KGM_ATOMIC_FAST);
}

static const char *const GAP_HEAD =
    "@prefix gm: <http://kgmeta.org/data/gapminder#> .\n\n"
    "gm:gapminder a mls:Dataset ;\n"
    "    rdfs:label \"gapminder\" ;\n"
    "    rdfs:comment \"Life expectancy, population and GDP per capita of 142 countries, 1952-2007 "
    "every five years (R package gapminder, CC0). One task per country: predict life expectancy "
    "from the year; the first 3 years (1952-1962) are the support set, the 9 later ones the query set.\" .\n\n"
    "gm:Continent a rdfs:Class ; rdfs:label \"continent\" ;\n"
    "    rdfs:comment \"A continent or a broader region; gm:partOf gives the region it belongs to.\" .\n"
    "gm:continent a rdf:Property ; rdfs:label \"continent\" ; rdfs:comment \"The continent of a country.\" .\n"
    "gm:partOf a rdf:Property ; rdfs:label \"part of\" ; rdfs:comment \"A region and the broader region it lies in.\" .\n"
    "gm:popBand a rdf:Property ; rdfs:label \"population band\" ;\n"
    "    rdfs:comment \"Small, Medium or Large: the tercile of the 1952 population among the 142 countries.\" .\n"
    "gm:gdpBand a rdf:Property ; rdfs:label \"GDP per capita band\" ;\n"
    "    rdfs:comment \"LowIncome, MiddleIncome or HighIncome: the tercile of the 1952 GDP per capita.\" .\n"
    "gm:logPop1952 a rdf:Property, kgm:TaskFeature ; rdfs:label \"log10 population 1952\" ;\n"
    "    rdfs:comment \"Decimal logarithm of the 1952 population (before every query year).\" .\n"
    "gm:logGdpPercap1952 a rdf:Property, kgm:TaskFeature ; rdfs:label \"log10 GDP per capita 1952\" ;\n"
    "    rdfs:comment \"Decimal logarithm of the 1952 GDP per capita in 2005 US dollars (before every query year).\" .\n\n"
    "gm:World a gm:Continent ; rdfs:label \"World\" .\n"
    "gm:Eurasia a gm:Continent ; gm:partOf gm:World ; rdfs:label \"Eurasia\" .\n"
    "gm:Europe a gm:Continent ; gm:partOf gm:Eurasia ; rdfs:label \"Europe\" .\n"
    "gm:Asia a gm:Continent ; gm:partOf gm:Eurasia ; rdfs:label \"Asia\" .\n"
    "gm:Africa a gm:Continent ; gm:partOf gm:World ; rdfs:label \"Africa\" .\n"
    "gm:Americas a gm:Continent ; gm:partOf gm:World ; rdfs:label \"Americas\" .\n"
    "gm:Oceania a gm:Continent ; gm:partOf gm:World ; rdfs:label \"Oceania\" .\n\n";

static int gap_write_ttl(const country *c, size_t n, const char *dir, uint64_t seed)
{
    static const char *const POP[3] = { "Small", "Medium", "Large" };
    static const char *const GDP[3] = { "LowIncome", "MiddleIncome", "HighIncome" };
    double pcut[2], gcut[2];
    terciles(c, n, 0, pcut);
    terciles(c, n, 1, gcut);
    kgm_atomic_file o;
    int rc = out_open(&o, dir, "gapminder.ttl");
    if (rc) return rc;
    fprintf(o.f, "# gapminder countries as meta-learning tasks.\n# Written by kgm_taskgen_gapminder "
            "(kg/taskgen.c), seed %llu: do not edit; rebuild with bench_taskgen.\n", (unsigned long long)seed);
    fputs(PREFIXES, o.f);
    fputs(GAP_HEAD, o.f);
    for (size_t i = 0; i < n; i++) {
        fprintf(o.f, "gm:%s a mls:Task ;\n    rdfs:label \"", c[i].iso);
        for (const char *p = c[i].name; *p; p++) {   /* Turtle string escapes */
            if (*p == '"' || *p == '\\') fputc('\\', o.f);
            fputc(*p, o.f);
        }
        fprintf(o.f, "\" ;\n    kgm:role kgm:%s ;\n"
                "    kgm:dataFile <gapminder/countries/%s.csv> ;\n"
                "    kgm:inputColumn \"year\" ;\n    kgm:outputColumn \"lifeExp\" ;\n"
                "    kgm:supportRows %d ;\n"
                "    gm:continent gm:%s ;\n    gm:popBand gm:%s ;\n    gm:gdpBand gm:%s ;\n"
                "    gm:logPop1952 %.6f ;\n    gm:logGdpPercap1952 %.6f .\n",
                ROLE[c[i].role], c[i].iso, GAP_SUPPORT, c[i].continent,
                band(c[i].pop, pcut, POP), band(c[i].gdp, gcut, GDP), log10(c[i].pop), log10(c[i].gdp));
    }
    return kgm_atomic_commit(&o, KGM_ATOMIC_FAST);
}

int kgm_taskgen_gapminder(const char *tsv, const char *dir, uint64_t seed)
{
    char *codes_path = NULL, *csv_dir = NULL;
    kgm_csv *t = NULL, *codes = NULL;
    country *c = NULL;
    size_t n = 0;
    const char *slash = strrchr(tsv, '/');
    int rc = 0;
    if (asprintf(&codes_path, "%.*scountry-codes.tsv", slash ? (int)(slash - tsv + 1) : 0, tsv) < 0 ||
        asprintf(&csv_dir, "%s/gapminder/countries", dir) < 0) {
        codes_path = csv_dir = NULL;
        rc = kgm_fail(KGM_ENOMEM, "out of memory");
    }
    if (!rc) rc = kgm_csv_read(&t, tsv, '\t');
    if (!rc) rc = kgm_csv_read(&codes, codes_path, '\t');
    if (!rc) rc = gap_countries(t, codes, &c, &n);
    if (!rc && n < 10) rc = kgm_fail(KGM_EFORMAT, "gapminder: only %zu countries", n);
    for (int level = 0; !rc && level < 2; level++) {   /* dir/gapminder, then its countries/ */
        char *slash2 = strrchr(csv_dir, '/');
        if (level == 0) *slash2 = '\0';
        if (mkdir(csv_dir, 0777) && errno != EEXIST)
            rc = kgm_fail_at(KGM_EIO, csv_dir, 0, 0, "cannot create: %s", strerror(errno));
        if (level == 0) *slash2 = '/';
    }
    if (!rc) gap_split(c, n, seed);
    for (size_t i = 0; !rc && i < n; i++) rc = gap_write_csv(t, &c[i], csv_dir);
    if (!rc) rc = gap_write_ttl(c, n, dir, seed);
    free(c);
    kgm_csv_free(t); kgm_csv_free(codes);
    free(codes_path); free(csv_dir);
    return rc;
}
