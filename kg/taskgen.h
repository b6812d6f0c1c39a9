/* kg/taskgen.h - generated regression task families and the seeded writer of their task
 * graphs (the files in datasets/ are its output, so they can be rebuilt byte for byte).
 *
 * Functions (the kgm:Function individuals of datasets/kgmeta.ttl; p = kgm:paramA..D):
 *   Sine              y = A sin(x - phase)        A = pA in [0.1,5], phase = pB in [0,pi]; 1 input
 *   Sinusoid          y = a sin(w x + b)          a = pA in [0.1,5], b = pB in [0,2pi], w = pC in [0.8,1.2]
 *   Line              y = a x + b                 a, b in [-3,3]
 *   Quadratic         y = a x^2 + b x + c         a in [-0.2,0.2], b in [-2,2], c in [-3,3]
 *   Cubic             y = a x^3 + b x^2 + c x + d a in [-0.1,0.1], b in [-0.2,0.2], c in [-2,2], d in [-3,3]
 *   QuadraticSurface  y = a x1^2 + b x2^2         a, b in [-1,1]
 *   Ripple            y = sin(-a (x1^2 + x2^2)) + b   a in [-0.2,0.2], b in [-3,3]
 * Sine has one input x ~ U[-5,5] (the MAML protocol). The six others (ARML) have two
 * inputs (x1, x2): x1 ~ U[-5,5], and x2 = 1 for the four curves, x2 ~ U[-5,5] for the two
 * surfaces. Each task adds Gaussian output noise of its generator's standard deviation.
 *
 * It is not a task source for training loops by itself: kg/tasks.h reads tasks out of the
 * graph and calls kgm_taskgen_sample for generated ones. Nothing here allocates except
 * the writer, which frees what it makes. */
#ifndef KGM_TASKGEN_H
#define KGM_TASKGEN_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    KGM_FN_SINE, KGM_FN_SINUSOID, KGM_FN_LINE, KGM_FN_QUADRATIC, KGM_FN_CUBIC,
    KGM_FN_QUAD_SURFACE, KGM_FN_RIPPLE, KGM_FN_COUNT
} kgm_fn;

#define KGM_TASKGEN_MAX_PARAMS 4
#define KGM_TASKGEN_MAX_DIM 2

typedef struct {
    kgm_fn fn;
    double p[KGM_TASKGEN_MAX_PARAMS];   /* paramA..D; unused ones are 0 */
    double noise;                       /* output noise standard deviation */
} kgm_gen_params;

const char *kgm_taskgen_fn_name(kgm_fn fn);       /* local name in kgm:, e.g. "Line" */
/* The function called name (local name, or the full kgm: IRI); KGM_ENOTFOUND otherwise. */
int  kgm_taskgen_fn_parse(const char *name, kgm_fn *out);
int  kgm_taskgen_fn_dim(kgm_fn fn);               /* number of inputs: 1 or 2 */
int  kgm_taskgen_fn_nparams(kgm_fn fn);           /* 2..4 */

/* y without noise at input x (dim inputs). */
double kgm_taskgen_eval(const kgm_gen_params *g, const double *x);
/* n = k + q examples, deterministic in (g, seed): rows 0..k-1 are the support set,
 * k..n-1 the query set. x gets (n, dim) inputs, y gets (n) outputs. 0 or KGM_EINVAL. */
int  kgm_taskgen_sample(const kgm_gen_params *g, uint64_t seed, size_t k, size_t q,
                        double *x, double *y);

/* ---- the task graph writer ---- */
typedef enum { KGM_BENCH_SINE, KGM_BENCH_SIXFAM } kgm_bench;

typedef struct {
    kgm_bench bench;
    uint64_t  seed;
    size_t    n_train, n_val, n_test;   /* meta-train / meta-validation pool, new test tasks */
    double    missing;                  /* probability that a coarse attribute is left out */
    int       n_similar;                /* similarTo links per task (six-family only) */
} kgm_taskgen_config;

/* The shipped files: seed 1, 2,000 meta-train + 200 validation + 1,000 new test tasks,
 * 30% of coarse attributes missing, 3 similarTo links per task. The protocol's 20,000-task
 * pool is the same call with n_train = 20000 (its first 2,000 tasks are the shipped ones,
 * and the 1,000 test tasks are identical): about 7.6 MB for six-family, written in 0.1 s. */
kgm_taskgen_config kgm_taskgen_defaults(kgm_bench bench);
/* Writes the benchmark's files into dir (which must exist), each atomically:
 *   sine:   sine-tasks.ttl (meta-train + meta-validation), sine-new.ttl (meta-test)
 *   sixfam: sixfam-tasks.ttl, sixfam-family.ttl, sixfam-similar.ttl (the pool, its family
 *           links with the family taxonomy, its similarTo links) and sixfam-new.ttl,
 *           sixfam-new-family.ttl, sixfam-new-similar.ttl (the new test tasks).
 * Same config, same bytes. */
int  kgm_taskgen_write(const kgm_taskgen_config *cfg, const char *dir);

/* The gapminder task graph: reads tsv (gapminder.tsv, and country-codes.tsv beside it),
 * writes dir/gapminder/countries/ISO.csv (year,lifeExp in year order; the first 3 rows are
 * the support set) and dir/gapminder.ttl (one mls:Task per country: continent, 1952
 * population and GDP-per-capita bands and log10 features, role split by seed). */
int  kgm_taskgen_gapminder(const char *tsv, const char *dir, uint64_t seed);

#endif
