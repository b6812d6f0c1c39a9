/* bench/bench_taskgen.c - writes the generated task graphs of datasets/ (and times it).
 *   bench_taskgen DIR [sine|sixfam|gapminder|all] [SEED [N_TRAIN N_VAL N_TEST]]
 * The shipped files are `bench_taskgen datasets all` run from the source root (seed 1 and
 * the shipped counts); the protocol's large pool is e.g.
 * `bench_taskgen /tmp/big sixfam 1 20000 1000 1000`. gapminder
 * reads DIR/gapminder/gapminder.tsv. Prints the seconds and bytes written per benchmark. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "error.h"
#include "taskgen.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long long file_size(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) ? -1 : (long long)st.st_size;
}

static int run(const char *dir, const char *what, unsigned long long seed, const size_t *counts)
{
    static const char *const SINE[] = { "sine-tasks.ttl", "sine-new.ttl", NULL };
    static const char *const SIXFAM[] = { "sixfam-tasks.ttl", "sixfam-new.ttl", "sixfam-family.ttl",
        "sixfam-new-family.ttl", "sixfam-similar.ttl", "sixfam-new-similar.ttl", NULL };
    static const char *const GAP[] = { "gapminder.ttl", NULL };
    const char *const *files;
    double t0 = now();
    int rc;
    if (!strcmp(what, "gapminder")) {
        char tsv[4096];
        snprintf(tsv, sizeof tsv, "%s/gapminder/gapminder.tsv", dir);
        rc = kgm_taskgen_gapminder(tsv, dir, seed);
        files = GAP;
    } else {
        kgm_bench b = !strcmp(what, "sine") ? KGM_BENCH_SINE : KGM_BENCH_SIXFAM;
        kgm_taskgen_config c = kgm_taskgen_defaults(b);
        c.seed = seed;
        if (counts) { c.n_train = counts[0]; c.n_val = counts[1]; c.n_test = counts[2]; }
        rc = kgm_taskgen_write(&c, dir);
        files = b == KGM_BENCH_SINE ? SINE : SIXFAM;
    }
    if (rc) { fprintf(stderr, "bench_taskgen: %s\n", kgm_error()); return 1; }
    long long total = 0;
    for (const char *const *f = files; *f; f++) {
        long long n = file_size(dir, *f);
        printf("  %-24s %10lld bytes\n", *f, n);
        total += n;
    }
    printf("%-10s %.3f s, %lld bytes\n", what, now() - t0, total);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 7 || argc == 5 || argc == 6) {
        fprintf(stderr, "usage: bench_taskgen DIR [sine|sixfam|gapminder|all] [SEED [N_TRAIN N_VAL N_TEST]]\n");
        return 2;
    }
    const char *what = argc > 2 ? argv[2] : "all";
    unsigned long long seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
    size_t counts[3], *pc = NULL;
    if (argc == 7) {
        for (int i = 0; i < 3; i++) counts[i] = strtoull(argv[4 + i], NULL, 10);
        pc = counts;
    }
    if (strcmp(what, "all") && strcmp(what, "sine") && strcmp(what, "sixfam") && strcmp(what, "gapminder")) {
        fprintf(stderr, "bench_taskgen: unknown benchmark '%s'\n", what);
        return 2;
    }
    int bad = 0;
    if (!strcmp(what, "all") || !strcmp(what, "sine")) bad |= run(argv[1], "sine", seed, pc);
    if (!strcmp(what, "all") || !strcmp(what, "sixfam")) bad |= run(argv[1], "sixfam", seed, pc);
    if (!strcmp(what, "all") || !strcmp(what, "gapminder")) bad |= run(argv[1], "gapminder", seed, pc);
    return bad;
}
