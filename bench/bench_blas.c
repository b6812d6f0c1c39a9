/* bench/bench_blas.c - sgemm throughput of OpenBLAS's generic (Prescott) kernels against the
 * kernels kgm_blas_fix_core picks on this CPU (src/blascore.h), at the shapes kgmeta uses.
 *
 *   bench_blas [THREADS]   runs itself once per kernel set (OPENBLAS_CORETYPE=Prescott, then
 *                          the better set), THREADS OpenBLAS threads (default 1), and prints
 *                          GFLOP/s per shape and the ratio: the same binary, the same load
 *   bench_blas --one       measures the kernels loaded now (what the runs above print)
 *
 * Shapes: a sampled-1vsAll batch (512 queries x 1,524 candidates, ComplEx dim 64 = 128 floats),
 * an evaluation batch (128 queries x 40,943 WN18RR entities x 128), a full 1vsAll training batch
 * (1,024 queries: 512 triples' two sides) and a KvsAll batch of DistMult dim 512 (1,024 queries),
 * and a meta-batch of the 2x40 regression network (25 x 40 x 40). */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blascore.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* GFLOP/s of C (m, n) = A (m, k) B^T (n, k), repeated for at least half a second */
static double gemm_rate(int m, int n, int k)
{
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)n * k),
          *c = malloc(sizeof(float) * (size_t)m * n);
    if (!a || !b || !c) { free(a); free(b); free(c); return -1; }
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = 1e-3f * (float)(i % 7);
    for (size_t i = 0; i < (size_t)n * k; i++) b[i] = 1e-3f * (float)(i % 5);
    long reps = 0;
    double t0 = now(), t;
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
        reps++;
    } while ((t = now() - t0) < 0.5);
    free(a); free(b); free(c);
    return 2.0 * m * n * k * (double)reps / t / 1e9;
}

static const struct { const char *name; int m, n, k; } SHAPES[] = {
    { "sampled 1vsAll batch", 512, 1524, 128 },
    { "eval batch", 128, 40943, 128 },
    { "full 1vsAll batch", 1024, 40943, 128 },
    { "KvsAll batch, dim 512", 1024, 40943, 512 },
    { "2x40 net, meta-batch", 25, 40, 40 },
};
enum { N_SHAPES = sizeof SHAPES / sizeof SHAPES[0] };

static int measure_one(void)
{
    printf("%s", kgm_blas_core());
    for (int s = 0; s < N_SHAPES; s++) printf(" %.2f", gemm_rate(SHAPES[s].m, SHAPES[s].n, SHAPES[s].k));
    printf("\n");
    return 0;
}

/* Runs `self --one` with OPENBLAS_CORETYPE=core; reads its line into name and rates */
static int run_child(const char *self, const char *core, char *name, double *rates)
{
    int fd[2];
    if (pipe(fd)) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]); close(fd[1]);
        setenv("OPENBLAS_CORETYPE", core, 1);
        execl(self, self, "--one", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    int got = f && fscanf(f, "%63s", name) == 1;
    for (int s = 0; got && s < N_SHAPES; s++) got = fscanf(f, "%lf", &rates[s]) == 1;
    if (f) fclose(f);
    int st;
    waitpid(pid, &st, 0);
    return got && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--one")) return measure_one();
    const char *threads = argc > 1 ? argv[1] : "1";
    setenv("OPENBLAS_NUM_THREADS", threads, 1);
    const char *better = kgm_blas_better_core("Prescott");
    if (!better) {
        printf("this CPU has neither AVX-512 nor AVX2+FMA: kgmeta keeps OpenBLAS's own choice (%s)\n", kgm_blas_core());
        return 0;
    }
    char names[2][64];
    double rates[2][N_SHAPES];
    const char *cores[2] = { "Prescott", better };
    for (int i = 0; i < 2; i++)
        if (run_child("/proc/self/exe", cores[i], names[i], rates[i])) {
            fprintf(stderr, "bench_blas: measuring with OPENBLAS_CORETYPE=%s failed\n", cores[i]);
            return 1;
        }
    printf("sgemm GFLOP/s, %s OpenBLAS thread(s); OpenBLAS detects '%s' here without OPENBLAS_CORETYPE\n",
           threads, getenv("OPENBLAS_CORETYPE") ? "(set by the caller)" : kgm_blas_core());
    printf("%-24s %16s %10s %10s %7s\n", "shape", "m x n x k", names[0], names[1], "ratio");
    for (int s = 0; s < N_SHAPES; s++) {
        char dims[48];
        snprintf(dims, sizeof dims, "%dx%dx%d", SHAPES[s].m, SHAPES[s].n, SHAPES[s].k);
        printf("%-24s %16s %10.2f %10.2f %6.2fx\n", SHAPES[s].name, dims, rates[0][s], rates[1][s],
               rates[1][s] / rates[0][s]);
    }
    return 0;
}
