/* bench/bench_tasks.c - time to load a task graph into a scratch store, read its tasks
 * (kgm_tasks_read) and build the descriptive graph, against the raw load time.
 *   bench_tasks FILE.ttl... (e.g. a 20,000-task pool written by bench_taskgen) */
#include <stdio.h>
#include <time.h>

#include "error.h"
#include "store.h"
#include "tasks.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: bench_tasks FILE.ttl...\n"); return 2; }
    kgm_store *st;
    if (kgm_store_open(&st, NULL)) { fprintf(stderr, "%s\n", kgm_error()); return 1; }
    double t0 = now();
    size_t total = 0;
    for (int i = 1; i < argc; i++) {
        size_t n = 0;
        if (kgm_store_load(st, argv[i], NULL, NULL, &n, NULL)) { fprintf(stderr, "%s\n", kgm_error()); return 1; }
        total += n;
    }
    double t1 = now();
    kgm_taskset *s;
    if (kgm_tasks_read(st, NULL, &s)) { fprintf(stderr, "%s\n", kgm_error()); return 1; }
    double t2 = now();
    kgm_graph *d;
    if (kgm_tasks_descriptive_from_store(st, &d)) { fprintf(stderr, "%s\n", kgm_error()); return 1; }
    double t3 = now();
    printf("load      %8zu triples  %.3f s\n", total, t1 - t0);
    printf("read      %8zu tasks    %.3f s  (%.2fx load)\n", s->n, t2 - t1, (t2 - t1) / (t1 - t0));
    printf("describe  %8zu triples  %.3f s  (%.2fx load)\n", kgm_graph_n_triples(d), t3 - t2, (t3 - t2) / (t1 - t0));
    kgm_graph_free(d);
    kgm_taskset_free(s);
    kgm_store_free(st);
    return 0;
}
