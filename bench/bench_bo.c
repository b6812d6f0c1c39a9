/* bench/bench_bo.c - seed sweep of the Bayesian-optimization tuner on Branin and Hartmann-6
 * with a budget of 50 evaluations: fraction of seeds within 1% of the optimum and mean best
 * value, for BO and for uniform random search with the same budget (the reference run in the
 * same process), and the time per suggestion.
 *     bench_bo [n_seeds=20] [budget=50] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../tests/bo_functions.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sweep(const char *name, kgm_space *(*space)(void), kgm_bo_objective f, int dim,
                  const double *lo, const double *hi, double opt, int n_seeds, int budget)
{
    int bo_hits = 0, rs_hits = 0;
    double bo_sum = 0, rs_sum = 0, seconds = 0;
    for (int s = 0; s < n_seeds; s++) {
        double t0 = now();
        double b = bo_best(space(), f, (uint64_t)s + 1, budget);
        seconds += now() - t0;
        double r = random_best(f, dim, lo, hi, (uint64_t)s + 1, budget);
        bo_hits += b - opt <= 0.01 * fabs(opt);
        rs_hits += r - opt <= 0.01 * fabs(opt);
        bo_sum += b;
        rs_sum += r;
        printf("  %-10s seed %2d  bo %10.6f  random %10.6f\n", name, s + 1, b, r);
    }
    printf("%-10s seeds %d budget %d optimum %.6f\n", name, n_seeds, budget, opt);
    printf("  within 1%%:  bo %2d/%d   random %2d/%d\n", bo_hits, n_seeds, rs_hits, n_seeds);
    printf("  mean best:  bo %.6f   random %.6f   (gap to optimum: bo %.4g, random %.4g, ratio %.3g)\n",
           bo_sum / n_seeds, rs_sum / n_seeds, bo_sum / n_seeds - opt, rs_sum / n_seeds - opt,
           (bo_sum / n_seeds - opt) / (rs_sum / n_seeds - opt));
    printf("  time per suggestion: %.2f ms (mean over %d runs x %d)\n\n",
           1e3 * seconds / (n_seeds * budget), n_seeds, budget);
}

int main(int argc, char **argv)
{
    int n_seeds = argc > 1 ? atoi(argv[1]) : 20, budget = argc > 2 ? atoi(argv[2]) : 50;
    const double blo[2] = { -5, 0 }, bhi[2] = { 10, 15 };
    const double hlo[6] = { 0, 0, 0, 0, 0, 0 }, hhi[6] = { 1, 1, 1, 1, 1, 1 };
    sweep("branin", branin_space, branin, 2, blo, bhi, BRANIN_MIN, n_seeds, budget);
    sweep("hartmann6", hartmann6_space, hartmann6, 6, hlo, hhi, HARTMANN6_MIN, n_seeds, budget);
    return 0;
}
