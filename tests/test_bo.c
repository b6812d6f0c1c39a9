/* tests/test_bo.c - the GP surrogate against a dense reference and finite differences, and the
 * Bayesian-optimization loop on Branin, Hartmann-6 and a mixed categorical/integer/log space,
 * its interruption and its resumption. The full seed sweep is bench/bench_bo.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bo_functions.h"
#include "error.h"
#include "gp.h"
#include "interrupt.h"

/* ---- GP against a dense computation ---- */

static double lcg_uniform(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) * 0x1.0p-53;
}

/* Matern 5/2 ARD, written out again on purpose, independent of models/gp.c. */
static double ref_kernel(const double *a, const double *b, const double *ell, double sf2, int d)
{
    double r2 = 0;
    for (int k = 0; k < d; k++) r2 += (a[k] - b[k]) * (a[k] - b[k]) / (ell[k] * ell[k]);
    double r = sqrt(r2);
    return sf2 * (1 + sqrt(5.0) * r + 5.0 * r2 / 3.0) * exp(-sqrt(5.0) * r);
}

/* Inverse of the n x n matrix A by Gauss-Jordan elimination with partial pivoting. */
static void gauss_jordan_inverse(int n, double *A, double *inv)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) inv[i * n + j] = i == j;
    for (int c = 0; c < n; c++) {
        int piv = c;
        for (int r = c + 1; r < n; r++) if (fabs(A[r * n + c]) > fabs(A[piv * n + c])) piv = r;
        for (int j = 0; j < n; j++) {
            double t = A[c * n + j]; A[c * n + j] = A[piv * n + j]; A[piv * n + j] = t;
            t = inv[c * n + j]; inv[c * n + j] = inv[piv * n + j]; inv[piv * n + j] = t;
        }
        double p = A[c * n + c];
        for (int j = 0; j < n; j++) { A[c * n + j] /= p; inv[c * n + j] /= p; }
        for (int r = 0; r < n; r++) {
            if (r == c) continue;
            double f = A[r * n + c];
            for (int j = 0; j < n; j++) { A[r * n + j] -= f * A[c * n + j]; inv[r * n + j] -= f * inv[c * n + j]; }
        }
    }
}

enum { N = 12, D = 3 };

static kgm_gp *sample_gp(double *X, double *y, const double *theta)
{
    uint64_t s = 7;
    for (int i = 0; i < N * D; i++) X[i] = lcg_uniform(&s);
    for (int i = 0; i < N; i++) y[i] = sin(6 * X[i * D]) + X[i * D + 1] * X[i * D + 1] + 0.1 * lcg_uniform(&s);
    kgm_gp *gp = kgm_gp_new(D);
    assert_non_null(gp);
    assert_int_equal(kgm_gp_set_data(gp, N, X, y), 0);
    assert_int_equal(kgm_gp_set_params(gp, theta), 0);
    return gp;
}

static void gp_posterior_matches_dense(void **state)
{
    (void)state;
    const double ell[D] = { 0.3, 0.7, 1.5 }, sf2 = 1.3, sn2 = 0.01;
    const double theta[D + 2] = { log(ell[0]), log(ell[1]), log(ell[2]), log(sf2), log(sn2) };
    double X[N * D], y[N], K[N * N], Kinv[N * N];
    kgm_gp *gp = sample_gp(X, y, theta);
    double mean = 0, sd = 0;
    for (int i = 0; i < N; i++) mean += y[i] / N;
    for (int i = 0; i < N; i++) sd += (y[i] - mean) * (y[i] - mean) / (N - 1);
    sd = sqrt(sd);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) K[i * N + j] = ref_kernel(X + i * D, X + j * D, ell, sf2, D) + (i == j) * sn2;
    gauss_jordan_inverse(N, K, Kinv);
    /* The constant prior mean of the standardized targets ys: m = 1'K^-1 ys / 1'K^-1 1. */
    double num = 0, den = 0, m;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            num += Kinv[i * N + j] * (y[j] - mean) / sd;
            den += Kinv[i * N + j];
        }
    m = num / den;
    assert_true(fabs(m) > 1e-3);   /* differs from the plain mean (0 after standardizing) */
    uint64_t s = 99;
    for (int t = 0; t < 7; t++) {
        double x[D], k[N], mu = 0, quad = 0, gm, gv;
        /* random points, then one at a datum and one far from all data (mean m, variance sf2) */
        for (int j = 0; j < D; j++) x[j] = t == 5 ? X[2 * D + j] : t == 6 ? 40.0 : lcg_uniform(&s);
        for (int i = 0; i < N; i++) k[i] = ref_kernel(x, X + i * D, ell, sf2, D);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                mu += k[i] * Kinv[i * N + j] * ((y[j] - mean) / sd - m);
                quad += k[i] * Kinv[i * N + j] * k[j];
            }
        double ref_mean = mean + sd * (m + mu), ref_var = sd * sd * (sf2 - quad);
        assert_int_equal(kgm_gp_predict(gp, x, &gm, &gv), 0);
        assert_true(fabs(gm - ref_mean) < 1e-9 * (1 + fabs(ref_mean)));
        assert_true(fabs(gv - ref_var) < 1e-9 * (1 + ref_var));
        assert_true(gv > 0);
    }
    kgm_gp_free(gp);
}

static void gp_gradient_matches_finite_differences(void **state)
{
    (void)state;
    const double theta[D + 2] = { log(0.4), log(0.9), log(0.2), log(0.8), log(0.05) };
    double X[N * D], y[N], grad[D + 2], lml;
    kgm_gp *gp = sample_gp(X, y, theta);
    assert_int_equal(kgm_gp_log_likelihood(gp, &lml, grad), 0);
    for (int j = 0; j < D + 2; j++) {
        const double h = 1e-5;
        double t[D + 2], up, down;
        memcpy(t, theta, sizeof t);
        t[j] = theta[j] + h;
        assert_int_equal(kgm_gp_set_params(gp, t), 0);
        assert_int_equal(kgm_gp_log_likelihood(gp, &up, NULL), 0);
        t[j] = theta[j] - h;
        assert_int_equal(kgm_gp_set_params(gp, t), 0);
        assert_int_equal(kgm_gp_log_likelihood(gp, &down, NULL), 0);
        double fd = (up - down) / (2 * h);
        if (fabs(fd - grad[j]) > 1e-6 * (1 + fabs(fd))) fail_msg("param %d: analytic %g, central %g", j, grad[j], fd);
    }
    kgm_gp_free(gp);
}

/* y depends on x0 only: the fit must raise the likelihood and make ell_1, ell_2 much longer than ell_0. */
static void gp_fit_finds_relevant_dimension(void **state)
{
    (void)state;
    enum { M = 30 };
    double X[M * D], y[M], before, after, theta[D + 2];
    uint64_t s = 3;
    for (int i = 0; i < M * D; i++) X[i] = lcg_uniform(&s);
    for (int i = 0; i < M; i++) y[i] = sin(5 * X[i * D]);
    kgm_gp *gp = kgm_gp_new(D);
    assert_int_equal(kgm_gp_set_data(gp, M, X, y), 0);
    assert_int_equal(kgm_gp_log_likelihood(gp, &before, NULL), 0);
    assert_int_equal(kgm_gp_fit(gp, 1, 2), 0);
    assert_int_equal(kgm_gp_log_likelihood(gp, &after, NULL), 0);
    kgm_gp_params(gp, theta);
    assert_true(after > before);
    assert_true(theta[1] > theta[0] + log(5.0));
    assert_true(theta[2] > theta[0] + log(5.0));
    /* Bad input leaves the data as it was. */
    y[3] = NAN;
    assert_int_equal(kgm_gp_set_data(gp, M, X, y), KGM_EINVAL);
    assert_int_equal(kgm_gp_log_likelihood(gp, &before, NULL), 0);
    assert_true(fabs(before - after) < 1e-9);
    kgm_gp_free(gp);
}

/* ---- the search on test functions ---- */

static void branin_within_one_percent_and_beats_random(void **state)
{
    (void)state;
    const double lo[2] = { -5, 0 }, hi[2] = { 10, 15 };
    int hits = 0;
    double bo_sum = 0, rs_sum = 0;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        double b = bo_best(branin_space(), branin, seed, 50);
        assert_false(isnan(b));
        assert_true(b >= BRANIN_MIN - 1e-9);
        hits += b - BRANIN_MIN <= 0.01 * BRANIN_MIN;
        bo_sum += b;
        rs_sum += random_best(branin, 2, lo, hi, seed, 50);
    }
    if (hits < 4) fail_msg("only %d of 5 seeds within 1%% of the optimum", hits);
    assert_true(bo_sum < rs_sum);
}

/* The majority claim on a fixed sample of seeds small enough for ctest under sanitizers.
 * bench_bo measures the same seeds 1..8 as 6 of 8 within 1% (16/20 over seeds 1..20, 27/40
 * over 1..40); asking for 5 of 8 keeps a clear majority and one seed of slack for platform
 * rounding changing a trajectory. */
static void hartmann6_majority_within_one_percent_and_beats_random(void **state)
{
    (void)state;
    enum { SEEDS = 8, MAJORITY = 5 };
    const double lo[6] = { 0, 0, 0, 0, 0, 0 }, hi[6] = { 1, 1, 1, 1, 1, 1 };
    int hits = 0;
    double bo_sum = 0, rs_sum = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        double b = bo_best(hartmann6_space(), hartmann6, seed, 50);
        assert_false(isnan(b));
        assert_true(b >= HARTMANN6_MIN - 1e-9);
        hits += b - HARTMANN6_MIN <= 0.01 * fabs(HARTMANN6_MIN);
        bo_sum += b;
        rs_sum += random_best(hartmann6, 6, lo, hi, seed, 50);
    }
    if (hits < MAJORITY) fail_msg("only %d of %d seeds within 1%% of the optimum", hits, SEEDS);
    /* and on average far ahead of random search (about 1.4 ahead in bench_bo) */
    if (bo_sum / SEEDS > rs_sum / SEEDS - 1.0) fail_msg("mean best: bo %g, random %g", bo_sum / SEEDS, rs_sum / SEEDS);
}

/* ---- mixed spaces ---- */

/* Optimum: opt = "adam", steps = 7, lr = 1e-2 (score 0); "sgd" costs 1, others 2. */
static int mixed_objective(const double *p, void *ctx, double *score)
{
    int *calls = ctx;
    if (calls) (*calls)++;
    double cat = p[0] == 2 ? 0 : p[0] == 0 ? 1 : 2;
    *score = cat + (p[1] - 7) * (p[1] - 7) / 10 + pow(log10(p[2]) + 2, 2);
    return 0;
}

static kgm_space *mixed_space(void)
{
    const char *labels[4] = { "sgd", "momentum", "adam", "rmsprop" };
    kgm_space *s = kgm_space_new();
    assert_int_equal(kgm_space_add_cat(s, "opt", 4, labels), 0);
    assert_int_equal(kgm_space_add_int(s, "steps", 1, 12), 0);
    assert_int_equal(kgm_space_add_real(s, "lr", 1e-5, 1, 1), 0);
    return s;
}

static void mixed_space_finds_categorical_optimum(void **state)
{
    (void)state;
    kgm_bo *bo;
    int calls = 0;
    assert_int_equal(kgm_bo_new(&bo, mixed_space(), 11), 0);
    assert_int_equal(kgm_bo_run(bo, mixed_objective, &calls, 30), 0);
    assert_int_equal(calls, 30);
    assert_int_equal(kgm_bo_n_trials(bo), 30);
    for (int i = 0; i < 30; i++)
        assert_int_equal(kgm_space_check(kgm_bo_space(bo), kgm_bo_get_trial(bo, i).point), 0);
    kgm_bo_trial best = kgm_bo_get_trial(bo, kgm_bo_best(bo));
    const kgm_space *s = kgm_bo_space(bo);
    assert_string_equal(kgm_space_label(s, kgm_space_find(s, "opt"), (int)best.point[0]), "adam");
    assert_true(fabs(best.point[kgm_space_find(s, "steps")] - 7) <= 1);
    assert_true(fabs(log10(best.point[kgm_space_find(s, "lr")]) + 2) < 0.3);
    assert_true(best.score < 0.2);
    kgm_bo_free(bo);
}

static void bad_spaces_and_points_are_refused(void **state)
{
    (void)state;
    kgm_space *s = mixed_space();
    const char *dup[2] = { "a", "a" }, *one[1] = { "a" };
    assert_int_equal(kgm_space_add_real(s, "lr", 0, 1, 0), KGM_EINVAL);      /* duplicate name */
    assert_int_equal(kgm_space_add_real(s, "w", 0, 1, 1), KGM_EINVAL);       /* log with lo 0 */
    assert_int_equal(kgm_space_add_real(s, "w", 2, 1, 0), KGM_EINVAL);       /* empty range */
    assert_int_equal(kgm_space_add_int(s, "k", 3, 3), KGM_EINVAL);
    assert_int_equal(kgm_space_add_cat(s, "c", 2, dup), KGM_EINVAL);
    assert_int_equal(kgm_space_add_cat(s, "c", 1, one), KGM_EINVAL);
    assert_int_equal(kgm_space_size(s), 3);
    assert_int_equal(kgm_space_label_index(s, 0, "adam"), 2);
    kgm_bo *bo;
    assert_int_equal(kgm_bo_new(&bo, s, 1), 0);
    const double outside[3] = { 2, 13, 1e-3 }, fractional[3] = { 1.5, 3, 1e-3 }, ok[3] = { 1, 3, 1e-3 };
    assert_int_equal(kgm_bo_observe(bo, outside, 1.0), KGM_EINVAL);
    assert_non_null(strstr(kgm_error(), "steps"));
    assert_int_equal(kgm_bo_observe(bo, fractional, 1.0), KGM_EINVAL);
    assert_int_equal(kgm_bo_n_trials(bo), 0);
    assert_int_equal(kgm_bo_best(bo), -1);
    assert_int_equal(kgm_bo_observe(bo, ok, NAN), 0);                        /* a failed trial */
    assert_int_equal(kgm_bo_best(bo), -1);
    assert_int_equal(kgm_bo_set_init(bo, 3), KGM_ESTATE);
    kgm_bo_free(bo);
}

/* ---- interruption and resumption ---- */

static int interrupting_objective(const double *p, void *ctx, double *score)
{
    int *calls = ctx;
    if (++*calls == 7) kgm_interrupt_raise();   /* as Ctrl-C during the 7th evaluation */
    return branin(p, NULL, score);
}

static void interrupt_keeps_trials_and_resume_replays(void **state)
{
    (void)state;
    kgm_bo *bo, *again;
    int calls = 0;
    assert_int_equal(kgm_bo_new(&bo, branin_space(), 5), 0);
    assert_int_equal(kgm_bo_run(bo, interrupting_objective, &calls, 20), KGM_EINTR);
    kgm_interrupt_clear();
    assert_int_equal(kgm_bo_n_trials(bo), 7);
    /* Resume: a new search with the same seed, fed the recorded trials, proposes what the
     * interrupted one proposes next (a GP-phase point: the initial design has 3 points). */
    assert_int_equal(kgm_bo_new(&again, branin_space(), 5), 0);
    for (int i = 0; i < 7; i++) {
        kgm_bo_trial t = kgm_bo_get_trial(bo, i);
        assert_int_equal(kgm_bo_observe(again, t.point, t.score), 0);
    }
    double next[2], resumed[2];
    assert_int_equal(kgm_bo_suggest(bo, next), 0);
    assert_int_equal(kgm_bo_suggest(again, resumed), 0);
    assert_memory_equal(next, resumed, sizeof next);
    /* And the suggestion is new: not one of the recorded points. */
    for (int i = 0; i < 7; i++) assert_memory_not_equal(next, kgm_bo_get_trial(bo, i).point, sizeof next);
    kgm_bo_free(bo);
    kgm_bo_free(again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gp_posterior_matches_dense),
        cmocka_unit_test(gp_gradient_matches_finite_differences),
        cmocka_unit_test(gp_fit_finds_relevant_dimension),
        cmocka_unit_test(branin_within_one_percent_and_beats_random),
        cmocka_unit_test(hartmann6_majority_within_one_percent_and_beats_random),
        cmocka_unit_test(mixed_space_finds_categorical_optimum),
        cmocka_unit_test(bad_spaces_and_points_are_refused),
        cmocka_unit_test(interrupt_keeps_trials_and_resume_replays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
