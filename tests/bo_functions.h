/* tests/bo_functions.h - standard optimization test functions and a random-search baseline,
 * shared by tests/test_bo.c and bench/bench_bo.c. Header-only (static functions). */
#ifndef KGM_BO_FUNCTIONS_H
#define KGM_BO_FUNCTIONS_H

#include <math.h>
#include <stdint.h>

#include "bo.h"

#define BRANIN_MIN    0.397887357729738
#define HARTMANN6_MIN (-3.32236801141551)

/* Branin-Hoo on [-5, 10] x [0, 15]; three global minima, value 0.397887. */
static int branin(const double *x, void *ctx, double *score)
{
    (void)ctx;
    const double b = 5.1 / (4 * M_PI * M_PI), c = 5 / M_PI, t = 1 / (8 * M_PI);
    double u = x[1] - b * x[0] * x[0] + c * x[0] - 6;
    *score = u * u + 10 * (1 - t) * cos(x[0]) + 10;
    return 0;
}

/* Hartmann-6 on [0, 1]^6; global minimum -3.32237. */
static int hartmann6(const double *x, void *ctx, double *score)
{
    (void)ctx;
    static const double alpha[4] = { 1.0, 1.2, 3.0, 3.2 };
    static const double A[4][6] = { { 10, 3, 17, 3.5, 1.7, 8 }, { 0.05, 10, 17, 0.1, 8, 14 },
                                    { 3, 3.5, 1.7, 10, 17, 8 }, { 17, 8, 0.05, 10, 0.1, 14 } };
    static const double P[4][6] = { { 1312, 1696, 5569, 124, 8283, 5886 }, { 2329, 4135, 8307, 3736, 1004, 9991 },
                                    { 2348, 1451, 3522, 2883, 3047, 6650 }, { 4047, 8828, 8732, 5743, 1091, 381 } };
    double f = 0;
    for (int i = 0; i < 4; i++) {
        double s = 0;
        for (int j = 0; j < 6; j++) s += A[i][j] * (x[j] - 1e-4 * P[i][j]) * (x[j] - 1e-4 * P[i][j]);
        f -= alpha[i] * exp(-s);
    }
    *score = f;
    return 0;
}

static kgm_space *branin_space(void)
{
    kgm_space *s = kgm_space_new();
    kgm_space_add_real(s, "x1", -5, 10, 0);
    kgm_space_add_real(s, "x2", 0, 15, 0);
    return s;
}

static kgm_space *hartmann6_space(void)
{
    kgm_space *s = kgm_space_new();
    const char *names[6] = { "x1", "x2", "x3", "x4", "x5", "x6" };
    for (int j = 0; j < 6; j++) kgm_space_add_real(s, names[j], 0, 1, 0);
    return s;
}

/* Best value of a BO run with `budget` evaluations; NAN on error. */
static double bo_best(kgm_space *space, kgm_bo_objective f, uint64_t seed, int budget)
{
    kgm_bo *bo;
    if (kgm_bo_new(&bo, space, seed)) return NAN;
    double best = NAN;
    if (kgm_bo_run(bo, f, NULL, budget) == 0) best = kgm_bo_get_trial(bo, kgm_bo_best(bo)).score;
    kgm_bo_free(bo);
    return best;
}

/* Best value of plain uniform random search over a box of real parameters [lo_j, hi_j]. */
static double random_best(kgm_bo_objective f, int dim, const double *lo, const double *hi, uint64_t seed, int budget)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 12345;
    double best = INFINITY, x[16], v;
    for (int e = 0; e < budget; e++) {
        for (int j = 0; j < dim; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            x[j] = lo[j] + (hi[j] - lo[j]) * (double)(s >> 11) * 0x1.0p-53;
        }
        f(x, NULL, &v);
        if (v < best) best = v;
    }
    return best;
}

#endif
