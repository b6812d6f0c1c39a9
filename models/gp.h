/* models/gp.h - a Gaussian-process regression surrogate for Bayesian optimization.
 *
 * GP on standardized targets ys = (y - mean(y)) / sd(y) with a constant prior mean m and a
 * Matern 5/2 kernel with automatic relevance determination (one length scale per dimension):
 *     k(a, b) = sf2 (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r),  r^2 = sum_k (a_k - b_k)^2 / ell_k^2
 * plus noise variance sn2 on the diagonal. Hyperparameters live in log space as one vector
 *     theta = [log ell_0 .. log ell_{d-1}, log sf2, log sn2]     (kgm_gp_n_params(d) = d + 2)
 * with sf2 and sn2 in standardized units. m is not a parameter: for each theta it is the
 * generalized-least-squares estimate m = 1'K^-1 ys / 1'K^-1 1 (the value that maximizes the
 * likelihood), which weighs clustered points less than plain mean(ys) does, so a search that
 * crowds into one good region does not make the rest of the space look good too.
 * kgm_gp_fit() maximizes the log marginal likelihood plus a weak log-normal prior on each
 * length scale (log ell ~ N(log 0.5, 1)) over theta inside fixed bounds (projected L-BFGS,
 * analytic gradient, a few restarts).
 * Cholesky goes through OpenBLAS's LAPACK dpotrf; when it fails, growing jitter is added.
 *
 * Inputs are meant to lie in the unit cube (the bounds on the length scales assume so).
 * Not a general GP library: one kernel, dense O(n^3) algebra, n up to a few hundred.
 * The GP owns copies of its data; nothing passed in is kept. One thread per GP. */
#ifndef KGM_GP_H
#define KGM_GP_H

#include <stdint.h>

typedef struct kgm_gp kgm_gp;                /* opaque */

/* Bounds on the log-parameters: length scales in [0.01, 10], sf2 in [0.05, 20], sn2 in [1e-6, 1]. */
#define KGM_GP_LOG_ELL_MIN (-4.6051701859880914)
#define KGM_GP_LOG_ELL_MAX ( 2.3025850929940459)
#define KGM_GP_LOG_SF2_MIN (-2.9957322735539909)
#define KGM_GP_LOG_SF2_MAX ( 2.9957322735539909)
#define KGM_GP_LOG_SN2_MIN (-13.815510557964274)
#define KGM_GP_LOG_SN2_MAX ( 0.0)

static inline int kgm_gp_n_params(int dim) { return dim + 2; }

kgm_gp *kgm_gp_new(int dim);                 /* returns new: kgm_gp_free(); NULL on bad dim/ENOMEM */
void    kgm_gp_free(kgm_gp *gp);             /* NULL is a no-op */

/* Replace the data: X is (n, dim) row-major, y is (n). Copies both; standardizes y and
 * refactors with the current theta. n >= 1; all values finite (else KGM_EINVAL and the GP is
 * unchanged); KGM_ENUMERIC if even jitter cannot make the kernel matrix positive definite. */
int kgm_gp_set_data(kgm_gp *gp, int n, const double *X, const double *y);

/* theta as laid out above; values are clamped to the bounds. Refactors if data is set. */
int  kgm_gp_set_params(kgm_gp *gp, const double *theta);
void kgm_gp_params(const kgm_gp *gp, double *theta);   /* copies kgm_gp_n_params(dim) values out */

/* Log marginal likelihood of the standardized targets at the current theta (with m at its
 * GLS estimate; no prior), and (grad not NULL) its gradient with respect to theta. Needs data. */
int kgm_gp_log_likelihood(kgm_gp *gp, double *lml, double *grad);

/* Maximize the log marginal likelihood plus the length-scale prior: one start from the
 * default theta plus `restarts` starts drawn from `seed`; keeps the best. Deterministic for
 * given data, seed, restarts. */
int kgm_gp_fit(kgm_gp *gp, uint64_t seed, int restarts);

/* Posterior of the latent function at x (dim values), in the original units of y:
 * mean = mean(y) + sd(y) (m + k*' (K + sn2 I)^-1 (ys - m)),  var = sd(y)^2 (sf2 - k*' (K + sn2 I)^-1 k*). */
int kgm_gp_predict(const kgm_gp *gp, const double *x, double *mean, double *var);

#endif
