/* models/gp.c - Matern 5/2 ARD Gaussian process: Cholesky via OpenBLAS's dpotrf, log marginal
 * likelihood with its analytic gradient, projected L-BFGS fit, posterior mean and variance.
 * Matrices are column-major n x n (symmetric ones do not care); only the lower triangle of
 * the Cholesky factor is meaningful. */
#include "gp.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* OpenBLAS ships LAPACK but Debian has no lapacke.h here: the Fortran entry point itself. */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);

#define SQRT5 2.2360679774997896964

struct kgm_gp {
    int     dim, n, cap;
    double *X;          /* (n, dim) row-major, copy */
    double *y;          /* (n) standardized targets */
    double  ymean, ystd;
    double  m;          /* constant prior mean of the standardized targets (GLS estimate) */
    double *theta;      /* (dim + 2) log-parameters */
    double *L;          /* (n, n) lower Cholesky of K + (sn2 + jitter) I */
    double *alpha;      /* (n) (K + sn2 I)^-1 (y - m) */
    double *work;       /* (n, n) scratch for the gradient */
    double *linv;       /* (n, n) scratch: L^-1 */
    int     factored;   /* L and alpha match theta and the data */
};

/* ---- small helpers ---- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s) { return (double)(splitmix64(s) >> 11) * 0x1.0p-53; }

static void bounds(int dim, int j, double *lo, double *hi)
{
    if (j < dim)       { *lo = KGM_GP_LOG_ELL_MIN; *hi = KGM_GP_LOG_ELL_MAX; }
    else if (j == dim) { *lo = KGM_GP_LOG_SF2_MIN; *hi = KGM_GP_LOG_SF2_MAX; }
    else               { *lo = KGM_GP_LOG_SN2_MIN; *hi = KGM_GP_LOG_SN2_MAX; }
}

static void clamp_params(int dim, double *theta)
{
    for (int j = 0; j < dim + 2; j++) {
        double lo, hi;
        bounds(dim, j, &lo, &hi);
        theta[j] = theta[j] < lo ? lo : theta[j] > hi ? hi : theta[j];
    }
}

static void default_params(int dim, double *theta)
{
    for (int k = 0; k < dim; k++) theta[k] = log(0.3);
    theta[dim] = 0.0;
    theta[dim + 1] = log(1e-3);
}

static void inverse_lengths(const double *theta, int dim, double *inv_ell)
{
    for (int k = 0; k < dim; k++) inv_ell[k] = exp(-theta[k]);
}

/* Scaled distance r between a and b and, if d2 is not NULL, the per-dimension (a_k-b_k)^2/ell_k^2. */
static double scaled_dist(const double *a, const double *b, const double *inv_ell, int dim, double *d2)
{
    double r2 = 0.0;
    for (int k = 0; k < dim; k++) {
        double t = (a[k] - b[k]) * inv_ell[k];
        if (d2) d2[k] = t * t;
        r2 += t * t;
    }
    return sqrt(r2);
}

static double matern52(double r, double sf2)
{
    return sf2 * (1.0 + SQRT5 * r + 5.0 / 3.0 * r * r) * exp(-SQRT5 * r);
}

/* ---- create / free / data ---- */

kgm_gp *kgm_gp_new(int dim)
{
    if (dim < 1) { kgm_fail(KGM_EINVAL, "gp: dimension must be at least 1, got %d", dim); return NULL; }
    kgm_gp *gp = calloc(1, sizeof *gp);
    if (!gp || !(gp->theta = malloc((size_t)(dim + 2) * sizeof *gp->theta))) {
        free(gp);
        kgm_fail(KGM_ENOMEM, "gp: out of memory");
        return NULL;
    }
    gp->dim = dim;
    default_params(dim, gp->theta);
    return gp;
}

void kgm_gp_free(kgm_gp *gp)
{
    if (!gp) return;
    free(gp->X); free(gp->y); free(gp->theta); free(gp->L); free(gp->alpha); free(gp->work); free(gp->linv);
    free(gp);
}

static int reserve(kgm_gp *gp, int n)
{
    if (n <= gp->cap) return KGM_OK;
    size_t nn = (size_t)n * (size_t)n;
    double *X = malloc((size_t)n * (size_t)gp->dim * sizeof *X), *y = malloc((size_t)n * sizeof *y);
    double *L = malloc(nn * sizeof *L), *a = malloc((size_t)n * sizeof *a), *w = malloc(nn * sizeof *w);
    double *li = malloc(nn * sizeof *li);
    if (!X || !y || !L || !a || !w || !li) {
        free(X); free(y); free(L); free(a); free(w); free(li);
        return kgm_fail(KGM_ENOMEM, "gp: out of memory for %d points", n);
    }
    free(gp->X); free(gp->y); free(gp->L); free(gp->alpha); free(gp->work); free(gp->linv);
    gp->X = X; gp->y = y; gp->L = L; gp->alpha = a; gp->work = w; gp->linv = li;
    gp->cap = n;
    return KGM_OK;
}

/* Builds K + sn2 I into gp->L and factors it in place, adding jitter (relative to sf2) while
 * dpotrf reports a non-positive pivot; then solves for alpha. */
static int factor(kgm_gp *gp, const double *theta)
{
    int n = gp->n, dim = gp->dim, info = 0;
    double sf2 = exp(theta[dim]), sn2 = exp(theta[dim + 1]), inv_ell[dim];
    inverse_lengths(theta, dim, inv_ell);
    for (double jitter = 0.0; jitter <= 1e-2 * sf2; jitter = jitter ? jitter * 10 : 1e-10 * sf2) {
        for (int j = 0; j < n; j++)
            for (int i = j; i < n; i++) {
                double r = scaled_dist(gp->X + (size_t)i * dim, gp->X + (size_t)j * dim, inv_ell, dim, NULL);
                gp->L[(size_t)j * n + i] = matern52(r, sf2) + (i == j ? sn2 + jitter : 0.0);
            }
        dpotrf_("L", &n, gp->L, &n, &info);
        if (info == 0) break;
    }
    gp->factored = 0;
    if (info != 0) return kgm_fail(KGM_ENUMERIC, "gp: kernel matrix not positive definite even with jitter");
    /* m = 1'K^-1 y / 1'K^-1 1 = (L^-1 1).(L^-1 y) / |L^-1 1|^2, then alpha = K^-1 (y - m). */
    double ones[n];
    for (int i = 0; i < n; i++) ones[i] = 1.0;
    memcpy(gp->alpha, gp->y, (size_t)n * sizeof *gp->alpha);
    cblas_dtrsv(CblasColMajor, CblasLower, CblasNoTrans, CblasNonUnit, n, gp->L, n, ones, 1);
    cblas_dtrsv(CblasColMajor, CblasLower, CblasNoTrans, CblasNonUnit, n, gp->L, n, gp->alpha, 1);
    gp->m = cblas_ddot(n, ones, 1, gp->alpha, 1) / cblas_ddot(n, ones, 1, ones, 1);
    cblas_daxpy(n, -gp->m, ones, 1, gp->alpha, 1);
    cblas_dtrsv(CblasColMajor, CblasLower, CblasTrans, CblasNonUnit, n, gp->L, n, gp->alpha, 1);
    gp->factored = 1;
    return KGM_OK;
}

int kgm_gp_set_data(kgm_gp *gp, int n, const double *X, const double *y)
{
    if (n < 1) return kgm_fail(KGM_EINVAL, "gp: need at least one point, got %d", n);
    for (size_t i = 0; i < (size_t)n * (size_t)gp->dim; i++)
        if (!isfinite(X[i])) return kgm_fail(KGM_EINVAL, "gp: input %zu is not finite", i / (size_t)gp->dim);
    double mean = 0.0, var = 0.0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(y[i])) return kgm_fail(KGM_EINVAL, "gp: target %d is not finite", i);
        mean += y[i];
    }
    mean /= n;
    for (int i = 0; i < n; i++) var += (y[i] - mean) * (y[i] - mean);
    double sd = n > 1 ? sqrt(var / (n - 1)) : 0.0;
    int rc = reserve(gp, n);
    if (rc) return rc;
    gp->n = n;
    gp->ymean = mean;
    gp->ystd = sd > 1e-12 ? sd : 1.0;   /* constant targets: no scaling */
    memcpy(gp->X, X, (size_t)n * (size_t)gp->dim * sizeof *X);
    for (int i = 0; i < n; i++) gp->y[i] = (y[i] - mean) / gp->ystd;
    return factor(gp, gp->theta);
}

int kgm_gp_set_params(kgm_gp *gp, const double *theta)
{
    for (int j = 0; j < gp->dim + 2; j++)
        if (!isfinite(theta[j])) return kgm_fail(KGM_EINVAL, "gp: parameter %d is not finite", j);
    memcpy(gp->theta, theta, (size_t)(gp->dim + 2) * sizeof *theta);
    clamp_params(gp->dim, gp->theta);
    return gp->n ? factor(gp, gp->theta) : KGM_OK;
}

void kgm_gp_params(const kgm_gp *gp, double *theta)
{
    memcpy(theta, gp->theta, (size_t)(gp->dim + 2) * sizeof *theta);
}

/* ---- marginal likelihood ----
 * lml = -1/2 (y-m)'a - sum log L_ii - n/2 log 2pi,  a = K^-1 (y - m), m the GLS mean of y.
 * m maximizes lml for the given theta, so its own dependence on theta drops out of the gradient.
 * d lml / d theta_j = 1/2 tr((a a' - K^-1) dK/dtheta_j), with
 *   dK/dlog ell_k = sf2 5/3 (1 + sqrt5 r) exp(-sqrt5 r) (x_ik - x_jk)^2 / ell_k^2
 *   dK/dlog sf2   = K without noise,   dK/dlog sn2 = sn2 I. */
static double lml_value(const kgm_gp *gp)
{
    int n = gp->n;
    double q = 0.0, logdet = 0.0;
    for (int i = 0; i < n; i++) {
        q += (gp->y[i] - gp->m) * gp->alpha[i];
        logdet += log(gp->L[(size_t)i * n + i]);
    }
    return -0.5 * q - logdet - 0.5 * n * log(2.0 * M_PI);
}

/* K^-1 = L^-T L^-1 into Kinv (full), with Li = L^-1 (lower) by forward substitution as scratch.
 * Plain loops: at these sizes BLAS calls cost more in overhead (and OpenBLAS threads dtrsm). */
static void kernel_inverse(const double *L, int n, double *Li, double *Kinv)
{
    for (int j = 0; j < n; j++) {
        double *col = Li + (size_t)j * n;
        col[j] = 1.0 / L[(size_t)j * n + j];
        for (int i = j + 1; i < n; i++) {
            double acc = 0.0;
            for (int k = j; k < i; k++) acc += L[(size_t)k * n + i] * col[k];
            col[i] = -acc / L[(size_t)i * n + i];
        }
    }
    for (int j = 0; j < n; j++)
        for (int i = j; i < n; i++) {
            const double *ci = Li + (size_t)i * n, *cj = Li + (size_t)j * n;
            double acc = 0.0;
            for (int k = i; k < n; k++) acc += ci[k] * cj[k];
            Kinv[(size_t)j * n + i] = Kinv[(size_t)i * n + j] = acc;
        }
}

static void lml_gradient(kgm_gp *gp, const double *theta, double *grad)
{
    int n = gp->n, dim = gp->dim;
    double *W = gp->work, sf2 = exp(theta[dim]), sn2 = exp(theta[dim + 1]);
    double d2[dim], inv_ell[dim];
    inverse_lengths(theta, dim, inv_ell);
    kernel_inverse(gp->L, n, gp->linv, W);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++) W[(size_t)j * n + i] = gp->alpha[i] * gp->alpha[j] - W[(size_t)j * n + i];
    memset(grad, 0, (size_t)(dim + 2) * sizeof *grad);
    /* W and dK are symmetric: visit the lower triangle, off-diagonal terms count twice. */
    for (int j = 0; j < n; j++)
        for (int i = j; i < n; i++) {
            double w = (i == j ? 0.5 : 1.0) * W[(size_t)j * n + i];
            double r = scaled_dist(gp->X + (size_t)i * dim, gp->X + (size_t)j * dim, inv_ell, dim, d2);
            double e = exp(-SQRT5 * r);
            double common = sf2 * 5.0 / 3.0 * (1.0 + SQRT5 * r) * e;
            for (int k = 0; k < dim; k++) grad[k] += w * common * d2[k];
            grad[dim] += w * sf2 * (1.0 + SQRT5 * r + 5.0 / 3.0 * r * r) * e;
            if (i == j) grad[dim + 1] += w * sn2;
        }
}

int kgm_gp_log_likelihood(kgm_gp *gp, double *lml, double *grad)
{
    if (!gp->n) return kgm_fail(KGM_ESTATE, "gp: no data set");
    if (!gp->factored) {
        int rc = factor(gp, gp->theta);
        if (rc) return rc;
    }
    *lml = lml_value(gp);
    if (grad) lml_gradient(gp, gp->theta, grad);
    return KGM_OK;
}

/* ---- fitting: projected L-BFGS minimizing -lml inside the box ---- */

#define LBFGS_M     6
#define LBFGS_ITERS 60

/* Log-normal prior on each length scale, log ell ~ N(LOG_ELL_PRIOR_MEAN, LOG_ELL_PRIOR_SD^2):
 * with few points the likelihood alone often sends length scales to the upper bound, the GP
 * then sees a nearly flat function and EI stops exploring (bench_bo 20: Hartmann-6 13/20 seeds
 * within 1% without it, 16/20 with it). Its negative log density up to a constant and its
 * gradient are added to f and g. */
#define LOG_ELL_PRIOR_MEAN (-0.69314718055994531)   /* log 0.5: half the unit cube */
#define LOG_ELL_PRIOR_SD   1.0

static double add_prior(int dim, const double *theta, double *g)
{
    double f = 0.0, v = LOG_ELL_PRIOR_SD * LOG_ELL_PRIOR_SD;
    for (int k = 0; k < dim; k++) {
        double t = theta[k] - LOG_ELL_PRIOR_MEAN;
        f += 0.5 * t * t / v;
        g[k] += t / v;
    }
    return f;
}

/* -(lml + log prior) and its gradient at theta; +inf when the factorization fails. Leaves gp
 * factored at theta. */
static double objective(kgm_gp *gp, const double *theta, double *g)
{
    if (factor(gp, theta)) return INFINITY;
    lml_gradient(gp, theta, g);
    for (int j = 0; j < gp->dim + 2; j++) g[j] = -g[j];
    return -lml_value(gp) + add_prior(gp->dim, theta, g);
}

static double dot(const double *a, const double *b, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Two-loop recursion: p = -H g from the stored (s, y) pairs, newest at index (k-1) mod M. */
static void lbfgs_direction(int p_n, const double *g, double S[][p_n], double Y[][p_n], int k, int m, double *p)
{
    double a[LBFGS_M];
    for (int i = 0; i < p_n; i++) p[i] = -g[i];
    for (int t = 0; t < m; t++) {
        int i = (k - 1 - t + LBFGS_M) % LBFGS_M;
        a[i] = dot(S[i], p, p_n) / dot(Y[i], S[i], p_n);
        for (int j = 0; j < p_n; j++) p[j] -= a[i] * Y[i][j];
    }
    if (m > 0) {
        int i = (k - 1 + LBFGS_M) % LBFGS_M;
        double gamma = dot(S[i], Y[i], p_n) / dot(Y[i], Y[i], p_n);
        for (int j = 0; j < p_n; j++) p[j] *= gamma;
    }
    for (int t = m - 1; t >= 0; t--) {
        int i = (k - 1 - t + LBFGS_M) % LBFGS_M;
        double b = dot(Y[i], p, p_n) / dot(Y[i], S[i], p_n);
        for (int j = 0; j < p_n; j++) p[j] += (a[i] - b) * S[i][j];
    }
}

/* Minimizes from theta in place; returns the final objective. Steps are projected onto the
 * box; when the projected step is not a descent direction the memory is dropped. */
static double lbfgs_minimize(kgm_gp *gp, double *theta)
{
    int P = gp->dim + 2, k = 0, m = 0;
    double S[LBFGS_M][P], Y[LBFGS_M][P], g[P], gn[P], p[P], xn[P];
    double f = objective(gp, theta, g);
    if (!isfinite(f)) return f;
    for (int it = 0; it < LBFGS_ITERS; it++) {
        lbfgs_direction(P, g, S, Y, k, m, p);
        if (dot(p, g, P) >= 0) { m = 0; for (int j = 0; j < P; j++) p[j] = -g[j]; }
        double fn = INFINITY, step = 1.0, decrease = 0.0;
        for (int tries = 0; tries < 30; tries++, step *= 0.5) {
            for (int j = 0; j < P; j++) xn[j] = theta[j] + step * p[j];
            clamp_params(gp->dim, xn);
            decrease = 0.0;
            for (int j = 0; j < P; j++) decrease += g[j] * (xn[j] - theta[j]);
            if (decrease >= 0) { fn = INFINITY; break; }         /* box blocks every descent */
            fn = objective(gp, xn, gn);
            if (fn <= f + 1e-4 * decrease) break;
        }
        if (!(fn <= f + 1e-4 * decrease)) break;
        double sy = 0.0;
        for (int j = 0; j < P; j++) {
            S[k][j] = xn[j] - theta[j];
            Y[k][j] = gn[j] - g[j];
            sy += S[k][j] * Y[k][j];
        }
        if (sy > 1e-12) { k = (k + 1) % LBFGS_M; if (m < LBFGS_M) m++; }
        double change = f - fn;
        memcpy(theta, xn, sizeof xn);
        memcpy(g, gn, sizeof gn);
        f = fn;
        if (change < 1e-9 * (1.0 + fabs(f))) break;
    }
    return f;
}

int kgm_gp_fit(kgm_gp *gp, uint64_t seed, int restarts)
{
    if (!gp->n) return kgm_fail(KGM_ESTATE, "gp: no data set");
    if (restarts < 0) return kgm_fail(KGM_EINVAL, "gp: restarts must be >= 0, got %d", restarts);
    int P = gp->dim + 2;
    double best[P], start[P], best_f = INFINITY;
    uint64_t rng = seed;
    for (int r = 0; r <= restarts; r++) {
        if (r == 0) default_params(gp->dim, start);
        else {  /* random starts in a moderate sub-box: short-to-long scales, low noise */
            for (int k = 0; k < gp->dim; k++) start[k] = log(0.05) + uniform(&rng) * (log(2.0) - log(0.05));
            start[gp->dim] = -1.0 + 2.0 * uniform(&rng);
            start[gp->dim + 1] = log(1e-6) + uniform(&rng) * (log(1e-1) - log(1e-6));
        }
        double f = lbfgs_minimize(gp, start);
        if (f < best_f) { best_f = f; memcpy(best, start, sizeof best); }
    }
    if (!isfinite(best_f)) {
        factor(gp, gp->theta);
        return kgm_fail(KGM_ENUMERIC, "gp: no start gave a finite marginal likelihood");
    }
    memcpy(gp->theta, best, sizeof best);
    return factor(gp, gp->theta);
}

/* ---- prediction ---- */

int kgm_gp_predict(const kgm_gp *gp, const double *x, double *mean, double *var)
{
    if (!gp->n || !gp->factored) return kgm_fail(KGM_ESTATE, "gp: no fitted data");
    int n = gp->n, dim = gp->dim;
    double sf2 = exp(gp->theta[dim]), mu = 0.0, v[n], inv_ell[dim];
    inverse_lengths(gp->theta, dim, inv_ell);
    for (int i = 0; i < n; i++) {
        v[i] = matern52(scaled_dist(x, gp->X + (size_t)i * dim, inv_ell, dim, NULL), sf2);
        mu += v[i] * gp->alpha[i];
    }
    cblas_dtrsv(CblasColMajor, CblasLower, CblasNoTrans, CblasNonUnit, n, gp->L, n, v, 1);
    double s2 = sf2 - dot(v, v, n);
    *mean = gp->ymean + gp->ystd * (gp->m + mu);
    *var = gp->ystd * gp->ystd * (s2 > 0.0 ? s2 : 0.0);
    return KGM_OK;
}
