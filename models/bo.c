/* models/bo.c - search spaces, their unit-cube encoding, and the Bayesian-optimization loop:
 * Latin-hypercube start, then GP refit + expected-improvement maximization per suggestion.
 * Inside, a point is also held as `z`: one unit coordinate per real/int parameter (an int at
 * its cell centre) and the category index for a categorical one; local search moves in z. */
#include "bo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "gp.h"
#include "interrupt.h"
#include "progress.h"
#include "rng.h"

/* A generator for (seed, purpose, index) (src/rng.h streams), so each suggestion depends on
 * nothing but those. */
static kgm_rng rng_stream(uint64_t seed, uint64_t purpose, uint64_t index)
{
    kgm_rng r;
    kgm_rng_seed(&r, seed, (purpose << 48) ^ index);
    return r;
}

/* ---- search space ---- */

typedef struct {
    char          *name;
    kgm_param_kind kind;
    double         lo, hi;      /* real or int bounds (as given, not logged) */
    int            log_scale;
    int            n_labels;
    char         **labels;
} param;

struct kgm_space {
    param *p;
    int    n, cap;
    int    enc_dim;             /* GP input dimension */
};

kgm_space *kgm_space_new(void)
{
    kgm_space *s = calloc(1, sizeof *s);
    if (!s) kgm_fail(KGM_ENOMEM, "space: out of memory");
    return s;
}

static void param_clear(param *p)
{
    free(p->name);
    for (int i = 0; i < p->n_labels; i++) free(p->labels[i]);
    free(p->labels);
}

void kgm_space_free(kgm_space *s)
{
    if (!s) return;
    for (int j = 0; j < s->n; j++) param_clear(&s->p[j]);
    free(s->p);
    free(s);
}

int kgm_space_find(const kgm_space *s, const char *name)
{
    for (int j = 0; j < s->n; j++)
        if (strcmp(s->p[j].name, name) == 0) return j;
    return -1;
}

static int add_param(kgm_space *s, param *p)  /* takes p's strings, even when it fails */
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        param *np = realloc(s->p, (size_t)cap * sizeof *np);
        if (!np) { param_clear(p); return kgm_fail(KGM_ENOMEM, "space: out of memory"); }
        s->p = np;
        s->cap = cap;
    }
    s->p[s->n++] = *p;
    s->enc_dim += p->kind == KGM_PARAM_CAT ? p->n_labels : 1;
    return KGM_OK;
}

static int check_name(const kgm_space *s, const char *name)
{
    if (!name || !*name) return kgm_fail(KGM_EINVAL, "space: a parameter needs a name");
    if (kgm_space_find(s, name) >= 0) return kgm_fail(KGM_EINVAL, "space: parameter '%s' given twice", name);
    return KGM_OK;
}

int kgm_space_add_real(kgm_space *s, const char *name, double lo, double hi, int log_scale)
{
    int rc = check_name(s, name);
    if (rc) return rc;
    if (!isfinite(lo) || !isfinite(hi) || !(lo < hi))
        return kgm_fail(KGM_EINVAL, "space: '%s' needs finite lo < hi, got [%g, %g]", name, lo, hi);
    if (log_scale && lo <= 0)
        return kgm_fail(KGM_EINVAL, "space: log-scale '%s' needs lo > 0, got %g", name, lo);
    param p = { .name = strdup(name), .kind = KGM_PARAM_REAL, .lo = lo, .hi = hi, .log_scale = !!log_scale };
    if (!p.name) return kgm_fail(KGM_ENOMEM, "space: out of memory");
    return add_param(s, &p);
}

int kgm_space_add_int(kgm_space *s, const char *name, long lo, long hi)
{
    int rc = check_name(s, name);
    if (rc) return rc;
    if (!(lo < hi)) return kgm_fail(KGM_EINVAL, "space: '%s' needs lo < hi, got [%ld, %ld]", name, lo, hi);
    param p = { .name = strdup(name), .kind = KGM_PARAM_INT, .lo = (double)lo, .hi = (double)hi };
    if (!p.name) return kgm_fail(KGM_ENOMEM, "space: out of memory");
    return add_param(s, &p);
}

int kgm_space_add_cat(kgm_space *s, const char *name, int n_labels, const char *const *labels)
{
    int rc = check_name(s, name);
    if (rc) return rc;
    if (n_labels < 2) return kgm_fail(KGM_EINVAL, "space: '%s' needs at least 2 labels, got %d", name, n_labels);
    for (int i = 0; i < n_labels; i++) {
        if (!labels[i] || !*labels[i]) return kgm_fail(KGM_EINVAL, "space: '%s' has an empty label", name);
        for (int k = 0; k < i; k++)
            if (strcmp(labels[i], labels[k]) == 0)
                return kgm_fail(KGM_EINVAL, "space: '%s' has label '%s' twice", name, labels[i]);
    }
    param p = { .name = strdup(name), .kind = KGM_PARAM_CAT, .n_labels = 0,
                .labels = calloc((size_t)n_labels, sizeof(char *)) };
    if (!p.name || !p.labels) { param_clear(&p); return kgm_fail(KGM_ENOMEM, "space: out of memory"); }
    for (; p.n_labels < n_labels; p.n_labels++)
        if (!(p.labels[p.n_labels] = strdup(labels[p.n_labels]))) {
            param_clear(&p);
            return kgm_fail(KGM_ENOMEM, "space: out of memory");
        }
    return add_param(s, &p);
}

int            kgm_space_size(const kgm_space *s) { return s->n; }
const char    *kgm_space_name(const kgm_space *s, int j) { return s->p[j].name; }
kgm_param_kind kgm_space_kind(const kgm_space *s, int j) { return s->p[j].kind; }
int            kgm_space_n_labels(const kgm_space *s, int j) { return s->p[j].n_labels; }

const char *kgm_space_label(const kgm_space *s, int j, int index)
{
    const param *p = &s->p[j];
    return index >= 0 && index < p->n_labels ? p->labels[index] : NULL;
}

int kgm_space_label_index(const kgm_space *s, int j, const char *label)
{
    for (int i = 0; i < s->p[j].n_labels; i++)
        if (strcmp(s->p[j].labels[i], label) == 0) return i;
    return -1;
}

int kgm_space_check(const kgm_space *s, const double *point)
{
    for (int j = 0; j < s->n; j++) {
        const param *p = &s->p[j];
        double v = point[j];
        double lo = p->kind == KGM_PARAM_CAT ? 0 : p->lo, hi = p->kind == KGM_PARAM_CAT ? p->n_labels - 1 : p->hi;
        if (!isfinite(v) || v < lo || v > hi)
            return kgm_fail(KGM_EINVAL, "space: '%s' = %g lies outside [%g, %g]", p->name, v, lo, hi);
        if (p->kind != KGM_PARAM_REAL && v != floor(v))
            return kgm_fail(KGM_EINVAL, "space: '%s' = %g is not a whole number", p->name, v);
    }
    return KGM_OK;
}

/* ---- encoding: point <-> z <-> GP input ---- */

static double n_cells(const param *p) { return p->hi - p->lo + 1.0; }

static double real_to_unit(const param *p, double v)
{
    return p->log_scale ? (log(v) - log(p->lo)) / (log(p->hi) - log(p->lo)) : (v - p->lo) / (p->hi - p->lo);
}

/* Snap an int parameter's unit coordinate to the centre of its cell. */
static double int_snap(const param *p, double u)
{
    double c = floor(u * n_cells(p));
    if (c > n_cells(p) - 1) c = n_cells(p) - 1;
    if (c < 0) c = 0;
    return (c + 0.5) / n_cells(p);
}

static void z_to_point(const kgm_space *s, const double *z, double *point)
{
    for (int j = 0; j < s->n; j++) {
        const param *p = &s->p[j];
        if (p->kind == KGM_PARAM_CAT) point[j] = z[j];
        else if (p->kind == KGM_PARAM_INT) point[j] = p->lo + floor(int_snap(p, z[j]) * n_cells(p));
        else if (p->log_scale) point[j] = exp(log(p->lo) + z[j] * (log(p->hi) - log(p->lo)));
        else point[j] = p->lo + z[j] * (p->hi - p->lo);
        if (p->kind == KGM_PARAM_REAL)  /* exp/log rounding must not leave the box */
            point[j] = point[j] < p->lo ? p->lo : point[j] > p->hi ? p->hi : point[j];
    }
}

static void point_to_z(const kgm_space *s, const double *point, double *z)
{
    for (int j = 0; j < s->n; j++) {
        const param *p = &s->p[j];
        if (p->kind == KGM_PARAM_CAT) z[j] = point[j];
        else if (p->kind == KGM_PARAM_INT) z[j] = (point[j] - p->lo + 0.5) / n_cells(p);
        else z[j] = real_to_unit(p, point[j]);
    }
}

static void z_to_gp(const kgm_space *s, const double *z, double *x)
{
    for (int j = 0, k = 0; j < s->n; j++) {
        const param *p = &s->p[j];
        if (p->kind == KGM_PARAM_CAT) {
            for (int c = 0; c < p->n_labels; c++) x[k++] = c == (int)z[j] ? 1.0 : 0.0;
        } else x[k++] = z[j];
    }
}

static void random_z(const kgm_space *s, kgm_rng *rng, double *z)
{
    for (int j = 0; j < s->n; j++) {
        const param *p = &s->p[j];
        double u = kgm_rng_uniform(rng);
        if (p->kind == KGM_PARAM_CAT) {
            z[j] = floor(u * p->n_labels);
            if (z[j] > p->n_labels - 1) z[j] = p->n_labels - 1;
        } else z[j] = p->kind == KGM_PARAM_INT ? int_snap(p, u) : u;
    }
}

/* ---- the search ---- */

struct kgm_bo {
    kgm_space *space;
    uint64_t   seed;
    int        n_init;
    int        n, cap;          /* trials */
    double    *points;          /* (cap, space->n) */
    double    *scores;          /* (cap) */
    kgm_gp    *gp;
};

enum { STREAM_LHS = 1, STREAM_SUGGEST = 2 };
enum { N_CANDIDATES = 1000, N_STARTS = 5, GP_RESTARTS = 2 };

int kgm_bo_new(kgm_bo **out, kgm_space *space, uint64_t seed)
{
    *out = NULL;
    if (!space) return kgm_fail(KGM_EINVAL, "bo: no search space");
    if (space->n == 0) { kgm_space_free(space); return kgm_fail(KGM_EINVAL, "bo: the search space is empty"); }
    kgm_bo *bo = calloc(1, sizeof *bo);
    if (!bo) { kgm_space_free(space); return kgm_fail(KGM_ENOMEM, "bo: out of memory"); }
    bo->space = space;
    bo->seed = seed;
    bo->n_init = 2 * space->n + 1 < 10 ? 2 * space->n + 1 : 10;
    if (!(bo->gp = kgm_gp_new(space->enc_dim))) { kgm_bo_free(bo); return kgm_error_code(); }
    *out = bo;
    return KGM_OK;
}

void kgm_bo_free(kgm_bo *bo)
{
    if (!bo) return;
    kgm_space_free(bo->space);
    kgm_gp_free(bo->gp);
    free(bo->points);
    free(bo->scores);
    free(bo);
}

const kgm_space *kgm_bo_space(const kgm_bo *bo) { return bo->space; }

int kgm_bo_set_init(kgm_bo *bo, int n_init)
{
    if (bo->n > 0) return kgm_fail(KGM_ESTATE, "bo: the initial design is fixed once trials exist");
    if (n_init < 1) return kgm_fail(KGM_EINVAL, "bo: need at least 1 initial point, got %d", n_init);
    bo->n_init = n_init;
    return KGM_OK;
}

int kgm_bo_n_trials(const kgm_bo *bo) { return bo->n; }

kgm_bo_trial kgm_bo_get_trial(const kgm_bo *bo, int i)
{
    return (kgm_bo_trial){ bo->points + (size_t)i * (size_t)bo->space->n, bo->scores[i] };
}

int kgm_bo_best(const kgm_bo *bo)
{
    int best = -1;
    for (int i = 0; i < bo->n; i++)
        if (isfinite(bo->scores[i]) && (best < 0 || bo->scores[i] < bo->scores[best])) best = i;
    return best;
}

int kgm_bo_observe(kgm_bo *bo, const double *point, double score)
{
    int rc = kgm_space_check(bo->space, point);
    if (rc) return rc;
    if (bo->n == bo->cap) {
        int cap = bo->cap ? 2 * bo->cap : 32;
        double *p = realloc(bo->points, (size_t)cap * (size_t)bo->space->n * sizeof *p);
        if (!p) return kgm_fail(KGM_ENOMEM, "bo: out of memory");
        bo->points = p;
        double *sc = realloc(bo->scores, (size_t)cap * sizeof *sc);
        if (!sc) return kgm_fail(KGM_ENOMEM, "bo: out of memory");
        bo->scores = sc;
        bo->cap = cap;
    }
    memcpy(bo->points + (size_t)bo->n * (size_t)bo->space->n, point, (size_t)bo->space->n * sizeof *point);
    bo->scores[bo->n++] = score;
    return KGM_OK;
}

/* Point i of the Latin hypercube: per parameter, stratum perm_j[i] of n_init, jittered inside. */
static void lhs_z(const kgm_bo *bo, int i, double *z)
{
    int m = bo->n_init;
    int perm[m];
    for (int j = 0; j < bo->space->n; j++) {
        kgm_rng rng = rng_stream(bo->seed, STREAM_LHS, (uint64_t)j);
        for (int k = 0; k < m; k++) perm[k] = k;
        for (int k = m - 1; k > 0; k--) {
            int r = (int)kgm_rng_below(&rng, (uint64_t)(k + 1)), t = perm[k];
            perm[k] = perm[r]; perm[r] = t;
        }
        double jitter = 0.0;
        for (int k = 0; k <= i; k++) jitter = kgm_rng_uniform(&rng);
        double u = (perm[i] + jitter) / m;
        const param *p = &bo->space->p[j];
        if (p->kind == KGM_PARAM_CAT) z[j] = floor(u * p->n_labels) < p->n_labels ? floor(u * p->n_labels) : p->n_labels - 1;
        else z[j] = p->kind == KGM_PARAM_INT ? int_snap(p, u) : u;
    }
}

/* Expected improvement below `best` (minimization) of the GP at z. */
static double expected_improvement(const kgm_bo *bo, const double *z, double best)
{
    double x[bo->space->enc_dim], mu, var;
    z_to_gp(bo->space, z, x);
    if (kgm_gp_predict(bo->gp, x, &mu, &var)) return 0.0;
    double s = sqrt(var), d = best - mu;
    if (s < 1e-12) return d > 0 ? d : 0.0;
    double t = d / s;
    return d * 0.5 * erfc(-t / M_SQRT2) + s * exp(-0.5 * t * t) / sqrt(2.0 * M_PI);
}

/* Coordinate search from z (in place): real and int coordinates move by +-h (at least one
 * cell for ints), categories try every other label; h halves when a sweep finds nothing. */
static double refine(const kgm_bo *bo, double *z, double ei, double best)
{
    const kgm_space *s = bo->space;
    double h = 0.1;
    for (int sweep = 0; sweep < 40 && h >= 1e-3; sweep++) {
        int improved = 0;
        for (int j = 0; j < s->n; j++) {
            const param *p = &s->p[j];
            int n_moves = p->kind == KGM_PARAM_CAT ? p->n_labels : 2;
            for (int m = 0; m < n_moves; m++) {
                double keep = z[j], v;
                if (p->kind == KGM_PARAM_CAT) {
                    if (m == (int)keep) continue;
                    v = m;
                } else {
                    double step = p->kind == KGM_PARAM_INT && h < 1.0 / n_cells(p) ? 1.0 / n_cells(p) : h;
                    v = keep + (m ? step : -step);
                    v = v < 0 ? 0 : v > 1 ? 1 : v;
                    if (p->kind == KGM_PARAM_INT) v = int_snap(p, v);
                    if (v == keep) continue;
                }
                z[j] = v;
                double e = expected_improvement(bo, z, best);
                if (e > ei) { ei = e; improved = 1; }
                else z[j] = keep;
            }
        }
        if (!improved) h *= 0.5;
    }
    return ei;
}

/* Fits the GP to the finite trials (failures count as the worst finite score). Returns the
 * number of finite trials (0: nothing to fit) or a negative error; *best gets the lowest score. */
static int fit_surrogate(kgm_bo *bo, kgm_rng *rng, double *best)
{
    int n = bo->n, d = bo->space->enc_dim, np = bo->space->n, n_finite = 0;
    double worst = -INFINITY;
    *best = INFINITY;
    for (int i = 0; i < n; i++)
        if (isfinite(bo->scores[i])) {
            n_finite++;
            if (bo->scores[i] < *best) *best = bo->scores[i];
            if (bo->scores[i] > worst) worst = bo->scores[i];
        }
    if (n_finite == 0) return 0;
    double *X = malloc((size_t)n * (size_t)d * sizeof *X), *y = malloc((size_t)n * sizeof *y), z[np];
    if (!X || !y) { free(X); free(y); return kgm_fail(KGM_ENOMEM, "bo: out of memory"); }
    for (int i = 0; i < n; i++) {
        point_to_z(bo->space, bo->points + (size_t)i * (size_t)np, z);
        z_to_gp(bo->space, z, X + (size_t)i * (size_t)d);
        y[i] = isfinite(bo->scores[i]) ? bo->scores[i] : worst;
    }
    int rc = kgm_gp_set_data(bo->gp, n, X, y);
    if (!rc) rc = kgm_gp_fit(bo->gp, kgm_rng_u64(rng), GP_RESTARTS);
    free(X);
    free(y);
    return rc ? rc : n_finite;
}

/* A random point near the best trial: reals and ints moved by a Gaussian step of sd 0.05 in
 * unit coordinates, each category kept with probability 0.8. Makes EI's maximizer exploit. */
static void near_best_z(const kgm_bo *bo, kgm_rng *rng, double *z)
{
    const kgm_space *s = bo->space;
    point_to_z(s, bo->points + (size_t)kgm_bo_best(bo) * (size_t)s->n, z);
    for (int j = 0; j < s->n; j++) {
        const param *p = &s->p[j];
        if (p->kind == KGM_PARAM_CAT) {
            if (kgm_rng_uniform(rng) < 0.2) z[j] = floor(kgm_rng_uniform(rng) * p->n_labels);
            continue;
        }
        double g = kgm_rng_normal(rng);
        double v = z[j] + 0.05 * g;
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        z[j] = p->kind == KGM_PARAM_INT ? int_snap(p, v) : v;
    }
}

/* Maximizes EI over N_CANDIDATES points (3/4 uniform, 1/4 near the best trial) and the best
 * trial itself; the top N_STARTS are refined by coordinate search. */
static void maximize_ei(const kgm_bo *bo, kgm_rng *rng, double best, double *z_out)
{
    int np = bo->space->n;
    double top_z[N_STARTS][np], top_ei[N_STARTS], z[np];
    for (int k = 0; k < N_STARTS; k++) top_ei[k] = -1.0;
    for (int c = 0; c <= N_CANDIDATES; c++) {
        if (c == N_CANDIDATES) point_to_z(bo->space, bo->points + (size_t)kgm_bo_best(bo) * (size_t)np, z);
        else if (c % 4 == 3) near_best_z(bo, rng, z);
        else random_z(bo->space, rng, z);
        double e = expected_improvement(bo, z, best);
        int worst = 0;
        for (int k = 1; k < N_STARTS; k++) if (top_ei[k] < top_ei[worst]) worst = k;
        if (e > top_ei[worst]) { top_ei[worst] = e; memcpy(top_z[worst], z, sizeof z); }
    }
    double best_ei = -1.0;
    for (int k = 0; k < N_STARTS; k++) {
        double e = refine(bo, top_z[k], top_ei[k], best);
        if (e > best_ei) { best_ei = e; memcpy(z_out, top_z[k], sizeof z); }
    }
    if (best_ei <= 0.0) random_z(bo->space, rng, z_out);  /* EI vanished everywhere: explore */
}

int kgm_bo_suggest(kgm_bo *bo, double *point)
{
    int np = bo->space->n;
    double z[np];
    kgm_rng rng = rng_stream(bo->seed, STREAM_SUGGEST, (uint64_t)bo->n);
    if (bo->n < bo->n_init) {
        lhs_z(bo, bo->n, z);
    } else {
        double best;
        int rc = fit_surrogate(bo, &rng, &best);
        if (rc < 0) return rc;
        if (rc == 0) random_z(bo->space, &rng, z);
        else maximize_ei(bo, &rng, best, z);
    }
    z_to_point(bo->space, z, point);
    return KGM_OK;
}

int kgm_bo_run(kgm_bo *bo, kgm_bo_objective f, void *ctx, int n_evals)
{
    if (n_evals < 0) return kgm_fail(KGM_EINVAL, "bo: number of evaluations must be >= 0, got %d", n_evals);
    double point[bo->space->n];
    int rc = KGM_OK;
    for (int e = 0; e < n_evals && rc == KGM_OK; e++) {
        if (kgm_interrupted()) { rc = kgm_fail(KGM_EINTR, "bo: interrupted after %d trials", bo->n); break; }
        int best = kgm_bo_best(bo);
        if (best >= 0) kgm_progress("tuning: trial %d/%d, best %.6g", e + 1, n_evals, bo->scores[best]);
        else kgm_progress("tuning: trial %d/%d", e + 1, n_evals);
        double score;
        rc = kgm_bo_suggest(bo, point);
        if (!rc) rc = f(point, ctx, &score);
        if (!rc) rc = kgm_bo_observe(bo, point, score);
    }
    kgm_progress_done();
    return rc;
}
