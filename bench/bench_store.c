/* bench/bench_store.c - the store on its default "kgmeta" storage and on 'trees', side by
 * side, against raptor's raw parse speed.
 *
 *   bench_store [N] [--no-trees]      (N triples, default 1000000)
 *
 * Writes a deterministic N-Triples file (power-law subjects and objects over a 50k entity
 * pool, 20 predicates, about 7% labels, 3% xsd:integer, 2% xsd:date, 1% blank nodes, like
 * redland-notes §2) into a temporary directory, then times in one process: raptor's raw
 * parse (no-op handler: the reference), and for each storage a load into a fresh directory
 * store (heap bytes per triple while it is open, peak RSS), reopening it (for "kgmeta" a big
 * load is already a snapshot; 'trees' replays its journal), compaction, reopening from the
 * snapshot, 1,000 subject-bound lookups (librdf_model_find_statements on the store's model,
 * every statement read, first touch then the best of three warm passes; and as SPARQL
 * through kgm_store_query), extraction of the integer view (the owned copy), the learner's
 * view (kgm_store_view: for "kgmeta" the store's own arrays, borrowed; for 'trees' the
 * copy) and the dense (h, r, t) array the embedding trainer builds from it, and 200 single
 * adds (journaled), after which the view is taken again (that merges the adds first). Times are also given as a ratio to the raw parse. The load and the warm
 * lookups are also given in CPU time, which a busy machine disturbs less than wall time.
 * Everything written is removed. */
#include <malloc.h>
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
#include "store_internal.h"   /* the model, for the find_statements lookups */

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

/* CPU time of this process: on a shared machine it leaves out the time spent waiting for a
 * core, which wall time includes. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
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

static double raw_parse(const char *path, const char *syntax, long *count, double *cpu)
{
    double t0 = now(), c0 = cpu_now();
    raptor_world *w = raptor_new_world();
    raptor_parser *p = raptor_new_parser(w, syntax);
    raptor_parser_set_statement_handler(p, count, count_statement);
    unsigned char *uri_s = raptor_uri_filename_to_uri_string(path);
    raptor_uri *uri = raptor_new_uri(w, uri_s);
    *count = 0;
    if (raptor_parser_parse_file(p, uri, NULL)) { fprintf(stderr, "raw parse failed\n"); exit(1); }
    raptor_free_uri(uri);
    raptor_free_memory(uri_s);
    raptor_free_parser(p);
    raptor_free_world(w);
    *cpu = cpu_now() - c0;
    return now() - t0;
}

static void check(int rc, const char *what)
{
    if (rc) { fprintf(stderr, "%s failed: %s\n", what, kgm_error()); exit(1); }
}

static size_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

typedef struct {
    double load, load_cpu, reopen, compact, reopen_snap, find_cold_us, find_us, find_cpu_us, sparql_us, extract, add_us;
    double view, dense, view_after_adds;
    double bytes_per_triple, peak_mb;
    size_t added, size, replayed, rows;
} figures;

/* 1,000 subject-bound find_statements, every statement read; microseconds per lookup
 * (wall, and CPU in *cpu_us). */
static double find_lookups(kgm_store *s, size_t *rows, double *cpu_us)
{
    rng = 7;
    *rows = 0;
    double t0 = now(), c0 = cpu_now();
    for (int i = 0; i < 1000; i++) {
        char iri[96];
        subject_iri(iri, sizeof iri, (int)(uniform() * N_ENTITIES));
        librdf_node *subj = librdf_new_node_from_uri_string(s->world, (const unsigned char *)iri);
        librdf_statement *pat = librdf_new_statement_from_nodes(s->world, subj, NULL, NULL);
        librdf_stream *st = librdf_model_find_statements(s->model, pat);
        for (; !librdf_stream_end(st); librdf_stream_next(st))
            *rows += librdf_stream_get_object(st) != NULL;
        librdf_free_stream(st);
        librdf_free_statement(pat);
    }
    *cpu_us = (cpu_now() - c0) * 1e3;
    return (now() - t0) * 1e3;
}

static figures run(const char *storage, const char *data, const char *store_dir)
{
    figures f = { 0 };
    kgm_store *s;
    size_t heap0 = heap_bytes();
    check(kgm_store_open_with(&s, store_dir, storage), "open");
    double secs, rss0 = status_mb("VmRSS:");
    peak_reset();
    double c0 = cpu_now();
    check(kgm_store_load(s, data, NULL, NULL, &f.added, &secs), "load");
    f.load_cpu = cpu_now() - c0;
    f.load = secs;
    f.peak_mb = status_mb("VmHWM:") - rss0;
    malloc_trim(0);
    f.bytes_per_triple = (double)(heap_bytes() - heap0) / (double)kgm_store_size(s);
    kgm_store_free(s);

    double t0 = now();
    check(kgm_store_open_with(&s, store_dir, storage), "reopen");
    f.reopen = now() - t0;
    kgm_store_open_report(s, &f.replayed, NULL);
    t0 = now();
    check(kgm_store_compact(s), "compact");
    f.compact = now() - t0;
    kgm_store_free(s);

    t0 = now();
    check(kgm_store_open_with(&s, store_dir, storage), "reopen");
    f.reopen_snap = now() - t0;
    f.size = kgm_store_size(s);

    /* Subject-bound lookups: librdf's find_statements on the store's model: first touch (the
     * storage makes librdf nodes for the terms it returns), then warm, the best of three
     * passes (a pass lasts a few milliseconds, so one preemption on a busy machine would
     * otherwise show as a slow lookup). */
    double cpu_us;
    f.find_cold_us = find_lookups(s, &f.rows, &cpu_us);
    f.find_us = f.find_cpu_us = INFINITY;
    for (int pass = 0; pass < 3; pass++) {
        f.find_us = fmin(f.find_us, find_lookups(s, &f.rows, &cpu_us));
        f.find_cpu_us = fmin(f.find_cpu_us, cpu_us);
    }
    rng = 7;
    t0 = now();
    for (int i = 0; i < 1000; i++) {
        char q[160], iri[96];
        subject_iri(iri, sizeof iri, (int)(uniform() * N_ENTITIES));
        snprintf(q, sizeof q, "SELECT ?p ?o WHERE { <%s> ?p ?o }", iri);
        kgm_table *t;
        check(kgm_store_query(s, q, NULL, &t), "lookup");
        kgm_table_free(t);
    }
    f.sparql_us = (now() - t0) * 1e3;

    kgm_graph *g;
    t0 = now();
    check(kgm_store_extract(s, &g), "extract");
    f.extract = now() - t0;
    const kgm_attr *attrs;
    size_t n_attrs;
    check(kgm_graph_attrs(g, &attrs, &n_attrs), "attributes");
    printf("  %s extraction: %zu entities, %zu relations, %zu triples, %zu attributes\n", storage,
           kgm_graph_n_ents(g), kgm_graph_n_rels(g), kgm_graph_n_triples(g), n_attrs);
    kgm_graph_free(g);

    t0 = now();
    check(kgm_store_view(s, &g), "view");
    f.view = now() - t0;
    t0 = now();
    if (!kgm_graph_triples(g)) check(KGM_ENOMEM, "dense triples");
    f.dense = now() - t0;
    printf("  %s view (%s): %zu entities, %zu relations, %zu triples\n", storage,
           kgm_graph_borrowed(g) ? "borrowed" : "copy", kgm_graph_n_ents(g), kgm_graph_n_rels(g),
           kgm_graph_n_triples(g));
    kgm_graph_free(g);

    /* Edits as the shell makes them: each journaled and fsync'd before it returns. */
    t0 = now();
    for (int i = 0; i < 200; i++) {
        char subj[96];
        snprintf(subj, sizeof subj, "<http://bench.example.org/new%d>", i);
        check(kgm_store_add(s, subj, "<http://bench.example.org/p1>", "<http://bench.example.org/e1>"), "add");
    }
    f.add_us = (now() - t0) / 200 * 1e6;
    t0 = now();
    check(kgm_store_view(s, &g), "view");
    f.view_after_adds = now() - t0;
    kgm_graph_free(g);
    kgm_store_free(s);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", store_dir);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", store_dir);
    return f;
}

static void line(const char *what, double k, double t, double raw, int have_trees, const char *unit, const char *target)
{
    if (raw > 0) {
        printf("%-30s %9.3f %-3s %6.2fx", what, k, unit, k / raw);
        if (have_trees) printf("   %9.3f %-3s %6.2fx", t, unit, t / raw);
        else printf("   %20s", "-");
    } else {
        printf("%-30s %9.1f %-11s", what, k, unit);
        if (have_trees) printf("   %9.1f %-11s", t, unit);
        else printf("   %20s", "-");
    }
    printf("   %s\n", target);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);           /* each figure shows as soon as it is known */
    long n = 1000000;
    int trees = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-trees") == 0) trees = 0;
        else n = atol(argv[i]);
    }
    if (n <= 0) { fprintf(stderr, "usage: bench_store [N-triples] [--no-trees]\n"); return 2; }
    char dir[] = "/tmp/kgm_bench_store_XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char data[128], store_dir[128];
    snprintf(data, sizeof data, "%s/data.nt", dir);
    snprintf(store_dir, sizeof store_dir, "%s/store", dir);

    double t0 = now();
    generate(data, n);
    printf("bench_store: %ld triples generated in %.2f s (%s)\n", n, now() - t0, data);

    long count;
    double raw_cpu, raw = raw_parse(data, "ntriples", &count, &raw_cpu);
    printf("raptor raw parse (ntriples, no-op handler): %.3f s (CPU %.3f s), %ld statements, %.0f triples/s\n\n",
           raw, raw_cpu, count, count / raw);

    figures k = run("kgmeta", data, store_dir), t = { 0 };
    if (trees) t = run("trees", data, store_dir);
    printf("\n%-30s %20s   %20s   %s\n", "", "kgmeta (default)", "trees", "target (kgmeta)");
    line("load into a directory store", k.load, t.load, raw, trees, "s", "<= 2x raw");
    line("load, CPU time (to raw CPU)", k.load_cpu, t.load_cpu, raw_cpu, trees, "s", "");
    line("reopen after the load", k.reopen, t.reopen, raw, trees, "s", "");
    line("compaction", k.compact, t.compact, raw, trees, "s", "");
    line("reopen from the snapshot", k.reopen_snap, t.reopen_snap, raw, trees, "s", "<= 0.5x raw");
    line("extraction (owned copy)", k.extract, t.extract, raw, trees, "s", "");
    line("learner's view (store_view)", k.view, t.view, raw, trees, "s", "~0x (borrowed)");
    line("view's dense (h,r,t) array", k.dense, t.dense, raw, trees, "s", "trainer, once");
    line("view after 200 adds (merge)", k.view_after_adds, t.view_after_adds, raw, trees, "s", "");
    line("subject lookup, first touch", k.find_cold_us, t.find_cold_us, 0, trees, "us each", "");
    line("subject lookup, find_statements", k.find_us, t.find_us, 0, trees, "us each", "< 10 us");
    line("subject lookup, CPU time", k.find_cpu_us, t.find_cpu_us, 0, trees, "us each", "");
    line("subject lookup, SPARQL", k.sparql_us, t.sparql_us, 0, trees, "us each", "");
    line("one kgm_store_add (fsync'd)", k.add_us, t.add_us, 0, trees, "us each", "");
    line("heap bytes per triple (open)", k.bytes_per_triple, t.bytes_per_triple, 0, trees, "B", "<= 120 B");
    line("peak RSS growth during load", k.peak_mb, t.peak_mb, 0, trees, "MB", "");
    printf("\nkgmeta: %zu triples, %zu journal records replayed at reopen, %zu lookup rows\n", k.size, k.replayed, k.rows);
    if (trees) printf("trees:  %zu triples, %zu journal records replayed at reopen, %zu lookup rows\n", t.size, t.replayed, t.rows);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
