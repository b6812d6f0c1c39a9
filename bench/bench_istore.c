/* bench/bench_istore.c - the "kgmeta" storage against raptor's raw parse and 'trees'.
 *
 *   bench_istore [N_TRIPLES] [--no-trees]      (default 1000000)
 *
 * Generates a deterministic N-Triples file (power-law subjects and objects over 50k
 * entities, 20 predicates, ~12% literals, ~1% blank nodes) in /tmp, then measures in one
 * process: raptor's parse with a no-op handler (the reference), the kgmeta bulk load, the
 * snapshot save and reopen (each the best of 3), 1000 subject-bound lookups through librdf_model_find_statements
 * (every result statement read), and heap bytes per triple (mallinfo2 before/after). The
 * same for 'trees' (loaded once with librdf_parser_parse_into_model), unless --no-trees.
 * Lookups run twice: first touch (librdf nodes made and cached) and again. */
#include <malloc.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <redland.h>

#include "error.h"
#include "istore.h"

#define EX "http://ex.org/"
#define N_ENTITIES 50000
#define N_LOOKUPS 1000
#define REPEATS 3

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static size_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static double unit(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (double)(rng >> 11) * (1.0 / 9007199254740992.0);
}

/* Power law over the entity pool: low ids are hubs. */
static unsigned entity(void)
{
    return (unsigned)(N_ENTITIES * pow(unit(), 3.0));
}

static void generate(const char *path, size_t n)
{
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(1); }
    static const char *type = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
    static const char *label = "http://www.w3.org/2000/01/rdf-schema#label";
    static const char *xsd = "http://www.w3.org/2001/XMLSchema#";
    for (size_t i = 0; i < n; i++) {
        unsigned s = entity(), r = (unsigned)(unit() * 100);
        if (r < 7)
            fprintf(f, "<" EX "e%u> <%s> \"entity %u\"%s .\n", s, label, s, r < 4 ? "@en" : "");
        else if (r < 10)
            fprintf(f, "<" EX "e%u> <" EX "p2> \"%u\"^^<%sinteger> .\n", s, (unsigned)(unit() * 1000), xsd);
        else if (r < 12)
            fprintf(f, "<" EX "e%u> <" EX "p3> \"20%02u-%02u-%02u\"^^<%sdate> .\n", s,
                    (unsigned)(unit() * 25), 1 + (unsigned)(unit() * 12), 1 + (unsigned)(unit() * 28), xsd);
        else if (r < 13)
            fprintf(f, "<" EX "e%u> <" EX "p4> _:b%u .\n", s, (unsigned)(unit() * 5000));
        else if (r < 23)
            fprintf(f, "<" EX "e%u> <%s> <" EX "C%u> .\n", s, type, (unsigned)(50 * pow(unit(), 2.0)));
        else
            fprintf(f, "<" EX "e%u> <" EX "p%u> <" EX "e%u> .\n", s, 5 + (unsigned)(unit() * 15), entity());
    }
    fclose(f);
}

static void noop_statement(void *ud, raptor_statement *st)
{
    (void)st;
    (*(size_t *)ud)++;
}

static double raw_parse(const char *path, size_t *count)
{
    raptor_world *rw = raptor_new_world();
    raptor_world_open(rw);
    raptor_parser *p = raptor_new_parser(rw, "ntriples");
    unsigned char *us = raptor_uri_filename_to_uri_string(path);
    raptor_uri *u = raptor_new_uri(rw, us);
    raptor_parser_set_statement_handler(p, count, noop_statement);
    FILE *f = fopen(path, "rb");
    double t0 = now();
    raptor_parser_parse_file_stream(p, f, path, u);
    double t = now() - t0;
    fclose(f);
    raptor_free_uri(u);
    raptor_free_memory(us);
    raptor_free_parser(p);
    raptor_free_world(rw);
    return t;
}

static int log_errors;
static int on_log(void *ud, librdf_log_message *m)
{
    (void)ud;
    if (librdf_log_message_level(m) >= LIBRDF_LOG_ERROR) {
        log_errors++;
        fprintf(stderr, "librdf: %s\n", librdf_log_message_message(m));
    }
    return 1;
}

/* Mean microseconds per subject-bound find_statements, reading every statement. */
static double lookups(librdf_world *w, librdf_model *m, double *per_lookup_rows)
{
    librdf_node *subj[N_LOOKUPS];
    uint64_t keep = rng;
    rng = 0x5eed5eedULL;
    for (int i = 0; i < N_LOOKUPS; i++) {
        char iri[64];
        snprintf(iri, sizeof iri, EX "e%u", (unsigned)(unit() * N_ENTITIES));
        subj[i] = librdf_new_node_from_uri_string(w, (const unsigned char *)iri);
    }
    rng = keep;
    size_t rows = 0;
    double t0 = now();
    for (int i = 0; i < N_LOOKUPS; i++) {
        librdf_statement *pat = librdf_new_statement_from_nodes(w, librdf_new_node_from_node(subj[i]), NULL, NULL);
        librdf_stream *s = librdf_model_find_statements(m, pat);
        for (; !librdf_stream_end(s); librdf_stream_next(s))
            if (librdf_stream_get_object(s)) rows++;
        librdf_free_stream(s);
        librdf_free_statement(pat);
    }
    double t = now() - t0;
    for (int i = 0; i < N_LOOKUPS; i++) librdf_free_node(subj[i]);
    *per_lookup_rows = (double)rows / N_LOOKUPS;
    return 1e6 * t / N_LOOKUPS;
}

static long peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

int main(int argc, char **argv)
{
    size_t n = 1000000;
    int trees = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-trees") == 0) trees = 0;
        else n = (size_t)strtoull(argv[i], NULL, 10);
    }
    char nt[256], snap[256];
    snprintf(nt, sizeof nt, "/tmp/kgm_bench_istore_%zu.nt", n);
    snprintf(snap, sizeof snap, "/tmp/kgm_bench_istore_%zu.kgsnap", n);
    if (access(nt, R_OK) != 0) {
        double t0 = now();
        generate(nt, n);
        printf("generated %s in %.1f s\n", nt, now() - t0);
    }
    /* The machine is shared: raw parse, load and reopen are each the best of REPEATS. */
    size_t parsed = 0;
    double t_raw = 1e9;
    for (int r = 0; r < REPEATS; r++) {
        parsed = 0;
        double t = raw_parse(nt, &parsed);
        if (t < t_raw) t_raw = t;
    }
    printf("raptor raw parse: %zu triples in %.3f s (reference, best of %d)\n\n", parsed, t_raw, REPEATS);

    librdf_world *w = librdf_new_world();
    librdf_world_open(w);
    librdf_world_set_logger(w, NULL, on_log);

    /* ---- kgmeta ---- */
    librdf_storage *st = NULL;
    size_t added = 0, h_kg = 0, kg_bytes = 0;
    double t_load = 1e9, t_save = 1e9, t_reopen = 1e9;
    for (int r = 0; r < REPEATS; r++) {
        if (st) librdf_free_storage(st);
        size_t h0 = heap_bytes();
        if (kgm_istore_new(w, &st)) { fprintf(stderr, "%s\n", kgm_error()); return 1; }
        double t0 = now();
        if (kgm_istore_load_file(st, nt, "ntriples", NULL, &added)) { fprintf(stderr, "%s\n", kgm_error()); return 1; }
        double t = now() - t0;
        if (t < t_load) t_load = t;
        h_kg = heap_bytes() - h0;
        kg_bytes = kgm_istore_bytes(st);
    }
    for (int r = 0; r < REPEATS; r++) {
        double t0 = now();
        if (kgm_istore_save(st, snap)) { fprintf(stderr, "%s\n", kgm_error()); return 1; }
        double t = now() - t0;
        if (t < t_save) t_save = t;
    }
    librdf_free_storage(st);
    for (int r = 0; r < REPEATS; r++) {
        double t0 = now();
        if (kgm_istore_open(w, snap, &st)) { fprintf(stderr, "%s\n", kgm_error()); return 1; }
        double t = now() - t0;
        if (t < t_reopen) t_reopen = t;
        if (r < REPEATS - 1) librdf_free_storage(st);
    }
    librdf_model *m = librdf_new_model(w, st, NULL);
    double rows_kg, us_kg = lookups(w, m, &rows_kg);      /* first touch: nodes made */
    double us_kg_warm = lookups(w, m, &rows_kg);            /* nodes cached */
    printf("kgmeta: %zu triples, %zu terms, load %.3f s, save %.3f s, reopen %.3f s, "
           "heap %.1f MB (arrays+dictionary %.1f MB), peak RSS %ld MB\n",
           added, kgm_istore_n_terms(st), t_load, t_save, t_reopen, h_kg / 1e6, kg_bytes / 1e6, peak_rss_mb());
    librdf_free_model(m);
    librdf_free_storage(st);

    /* ---- trees ---- */
    double t_tload = 0, us_tr = 0, us_tr_warm = 0, rows_tr = 0;
    size_t h_tr = 0;
    int tsize = 0;
    if (trees) {
        size_t h0 = heap_bytes();
        librdf_storage *ts = librdf_new_storage(w, "trees", NULL, NULL);
        librdf_model *tm = librdf_new_model(w, ts, NULL);
        librdf_parser *p = librdf_new_parser(w, "ntriples", NULL, NULL);
        librdf_uri *u = librdf_new_uri_from_filename(w, nt);
        double t0 = now();
        librdf_parser_parse_into_model(p, u, NULL, tm);
        t_tload = now() - t0;
        h_tr = heap_bytes() - h0;
        tsize = librdf_model_size(tm);
        librdf_free_uri(u);
        librdf_free_parser(p);
        us_tr = lookups(w, tm, &rows_tr);
        us_tr_warm = lookups(w, tm, &rows_tr);
        printf("trees: %d triples, load %.3f s, heap %.1f MB, peak RSS %ld MB\n",
               tsize, t_tload, h_tr / 1e6, peak_rss_mb());
        librdf_free_model(tm);
        librdf_free_storage(ts);
    }
    librdf_free_world(w);

    printf("\n%-34s %14s %14s\n", "figure (ratio to raw parse)", "kgmeta", "trees");
    printf("%-34s %7.3f s %4.2fx", "load", t_load, t_load / t_raw);
    if (trees) printf(" %7.3f s %4.1fx", t_tload, t_tload / t_raw);
    printf("\n%-34s %7.3f s %4.2fx", "reopen from snapshot", t_reopen, t_reopen / t_raw);
    if (trees) printf("   (none: re-parse = load)");
    printf("\n%-34s %7.2f us        ", "subject-bound lookup, first", us_kg);
    if (trees) printf(" %7.2f us", us_tr);
    printf("\n%-34s %7.2f us        ", "subject-bound lookup, again", us_kg_warm);
    if (trees) printf(" %7.2f us", us_tr_warm);
    printf("\n%-34s %7.1f", "rows per lookup", rows_kg);
    if (trees) printf("         %7.1f", rows_tr);
    printf("\n%-34s %7.1f B", "heap per triple", (double)h_kg / (double)added);
    if (trees) printf("      %7.1f B", (double)h_tr / (double)(tsize > 0 ? tsize : 1));
    printf("\n%-34s %7.3f s %4.2fx\n", "snapshot save", t_save, t_save / t_raw);
    printf("log errors: %d\n", log_errors);
    unlink(snap);
    return log_errors ? 1 : 0;
}
