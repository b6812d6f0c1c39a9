/* bench/bench_store.c - the store against raptor's raw parse speed.
 *
 *   bench_store [N]      (N triples, default 1000000)
 *
 * Writes a deterministic N-Triples file (power-law subjects and objects over a 50k entity
 * pool, 20 predicates, about 7% labels, 3% xsd:integer, 2% xsd:date, 1% blank nodes, like
 * redland-notes §2) into a temporary directory, then times in one process: raptor's raw
 * parse (no-op handler), a load into a directory store (peak memory too), reopening it
 * (journal replay), compaction, reopening from the snapshot, 1,000 subject-bound SPARQL
 * lookups and extraction of the integer view. Each time is also given as a ratio to the
 * raw parse. Everything it wrote is removed at the end. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <raptor2.h>

#include "error.h"
#include "store.h"

#define N_ENTITIES 50000
#define N_PREDICATES 20

static uint64_t rng = 42;
static double uniform(void)                      /* xorshift64*, in [0, 1) */
{
    rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
    return (double)((rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}
static int powerlaw(int n) { return (int)(n * pow(uniform(), 3.0)); }   /* few hubs, long tail */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Peak resident memory since the last reset, in MB (VmHWM; reset via clear_refs). */
static void peak_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) { fputs("5", f); fclose(f); }
}
static double status_mb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, strlen(field)) == 0) kb = atof(line + strlen(field) + 1);
    if (f) fclose(f);
    return kb / 1024.0;
}

static void subject_iri(char *buf, size_t cap, int e) { snprintf(buf, cap, "http://bench.example.org/e%d", e); }

static void generate(const char *path, long n)
{
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(1); }
    const char *rdf_type = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
    const char *label = "http://www.w3.org/2000/01/rdf-schema#label";
    const char *xsd = "http://www.w3.org/2001/XMLSchema#";
    char s[96], o[96];
    for (long i = 0; i < n; i++) {
        subject_iri(s, sizeof s, powerlaw(N_ENTITIES));
        double u = uniform();
        int p = 2 + (int)(uniform() * (N_PREDICATES - 2));
        if (u < 0.07)
            fprintf(f, "<%s> <%s> \"entity %ld\"%s .\n", s, label, i, (i & 1) ? "@en" : "");
        else if (u < 0.10)
            fprintf(f, "<%s> <http://bench.example.org/p%d> \"%d\"^^<%sinteger> .\n", s, p, (int)(uniform() * 1000), xsd);
        else if (u < 0.12)
            fprintf(f, "<%s> <http://bench.example.org/p%d> \"20%02d-0%d-1%d\"^^<%sdate> .\n", s, p,
                    (int)(uniform() * 25), 1 + (int)(uniform() * 9), (int)(uniform() * 9), xsd);
        else if (u < 0.13)
            fprintf(f, "<%s> <http://bench.example.org/p%d> _:b%d .\n", s, p, (int)(uniform() * 5000));
        else if (u < 0.25)
            fprintf(f, "<%s> <%s> <http://bench.example.org/C%d> .\n", s, rdf_type, powerlaw(50));
        else {
            subject_iri(o, sizeof o, powerlaw(N_ENTITIES));
            fprintf(f, "<%s> <http://bench.example.org/p%d> <%s> .\n", s, p, o);
        }
    }
    if (fclose(f)) { perror(path); exit(1); }
}

static void count_statement(void *ud, raptor_statement *st) { (void)st; ++*(long *)ud; }

static double raw_parse(const char *path, long *count)
{
    double t0 = now();
    raptor_world *w = raptor_new_world();
    raptor_parser *p = raptor_new_parser(w, "ntriples");
    raptor_parser_set_statement_handler(p, count, count_statement);
    unsigned char *uri_s = raptor_uri_filename_to_uri_string(path);
    raptor_uri *uri = raptor_new_uri(w, uri_s);
    *count = 0;
    if (raptor_parser_parse_file(p, uri, NULL)) { fprintf(stderr, "raw parse failed\n"); exit(1); }
    raptor_free_uri(uri);
    raptor_free_memory(uri_s);
    raptor_free_parser(p);
    raptor_free_world(w);
    return now() - t0;
}

static void check(int rc, const char *what)
{
    if (rc) { fprintf(stderr, "%s failed: %s\n", what, kgm_error()); exit(1); }
}

static void row(const char *what, double secs, double raw, const char *extra)
{
    printf("%-34s %9.3f s  %7.2fx raw   %s\n", what, secs, secs / raw, extra ? extra : "");
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    if (n <= 0) { fprintf(stderr, "usage: bench_store [N-triples]\n"); return 2; }
    char dir[] = "/tmp/kgm_bench_store_XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char data[128], store_dir[128], extra[160];
    snprintf(data, sizeof data, "%s/data.nt", dir);
    snprintf(store_dir, sizeof store_dir, "%s/store", dir);

    double t0 = now();
    generate(data, n);
    printf("bench_store: %ld triples generated in %.2f s (%s)\n\n", n, now() - t0, data);

    long count;
    double raw = raw_parse(data, &count);
    snprintf(extra, sizeof extra, "%ld statements, %.0f triples/s", count, count / raw);
    row("raptor raw parse (no-op handler)", raw, raw, extra);

    kgm_store *s;
    check(kgm_store_open(&s, store_dir), "open");
    size_t added;
    double secs, rss0 = status_mb("VmRSS:");
    peak_reset();
    check(kgm_store_load(s, data, NULL, NULL, &added, &secs), "load");
    snprintf(extra, sizeof extra, "%zu added, peak RSS %.0f MB (+%.0f MB over %.0f MB before)",
             added, status_mb("VmHWM:"), status_mb("VmHWM:") - rss0, rss0);
    row("load into a directory store", secs, raw, extra);
    kgm_store_free(s);

    t0 = now();
    check(kgm_store_open(&s, store_dir), "reopen");
    secs = now() - t0;
    size_t replayed, dropped;
    kgm_store_open_report(s, &replayed, &dropped);
    snprintf(extra, sizeof extra, "%zu triples, %zu journal records replayed", kgm_store_size(s), replayed);
    row("reopen (snapshot none, journal)", secs, raw, extra);

    t0 = now();
    check(kgm_store_compact(s), "compact");
    row("compaction (snapshot written, fsync)", now() - t0, raw, NULL);
    kgm_store_free(s);

    t0 = now();
    check(kgm_store_open(&s, store_dir), "reopen");
    snprintf(extra, sizeof extra, "%zu triples", kgm_store_size(s));
    row("reopen (snapshot, empty journal)", now() - t0, raw, extra);

    rng = 7;
    size_t rows = 0;
    t0 = now();
    for (int i = 0; i < 1000; i++) {
        char q[160], iri[96];
        subject_iri(iri, sizeof iri, (int)(uniform() * N_ENTITIES));
        snprintf(q, sizeof q, "SELECT ?p ?o WHERE { <%s> ?p ?o }", iri);
        kgm_table *t;
        check(kgm_store_query(s, q, NULL, &t), "lookup");
        rows += t->n_rows;
        kgm_table_free(t);
    }
    secs = now() - t0;
    snprintf(extra, sizeof extra, "%.3f ms each, %zu rows in all", secs, rows);
    row("1,000 subject-bound SPARQL lookups", secs, raw, extra);

    kgm_graph *g;
    t0 = now();
    check(kgm_store_extract(s, &g), "extract");
    secs = now() - t0;
    snprintf(extra, sizeof extra, "%zu entities, %zu relations, %zu triples, %zu attributes",
             kgm_graph_n_ents(g), kgm_graph_n_rels(g), g->n_triples, g->n_attrs);
    row("extraction to the integer view", secs, raw, extra);
    kgm_graph_free(g);
    kgm_store_free(s);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
