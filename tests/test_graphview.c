/* tests/test_graphview.c - the learner's view of a "kgmeta" store (kgm_store_view, the
 * borrowed mode of kg/graph.h) against the extracted copy (kgm_store_extract): the same
 * entity and relation names, the same multiset of (h, r, t) triples by name and the same
 * attributes, on generated graphs and on the shipped datasets; the view goes stale at every
 * change and the view taken again matches; ids survive removes and reopening (journal and
 * snapshot); an embedding trained on the view equals one trained on the copy. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "embed.h"
#include "error.h"
#include "store.h"
#include "tmpdir.h"

/* raptor's N-Triples parser leaks a datatype URI per world (see tests/test_store.c). */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libraptor2.so\n";
}


static int setup(void **state)
{
    (void)state;
    return tmpdir_make("graphview_test");
}

static int teardown(void **state)
{
    (void)state;
    return tmpdir_remove();
}

static uint64_t rng = 88172645463325252ULL;
static unsigned next_rand(unsigned n)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (unsigned)(rng % n);
}

/* A random N-Triples document: IRIs and blank nodes linked by ten predicates, numeric
 * literals (typed and plain), language-tagged and date literals; p0 is also a subject (an
 * IRI both relation and entity) and p1 takes both entity and literal objects. */
static char *gen_ntriples(size_t n, unsigned seed)
{
    rng = 88172645463325252ULL ^ seed;
    size_t cap = n * 160 + 256, len = 0;
    char *t = malloc(cap);
    assert_non_null(t);
    const char *X = "http://www.w3.org/2001/XMLSchema#";
    len += (size_t)snprintf(t + len, cap - len, "<http://g/p0> <http://g/p2> <http://g/e1> .\n");
    for (size_t i = 0; i < n; i++) {
        char s[64], o[160];
        unsigned k = next_rand(8), e = next_rand(300);
        if (next_rand(10) == 0) snprintf(s, sizeof s, "_:b%u", next_rand(40));
        else snprintf(s, sizeof s, "<http://g/e%u>", next_rand(300));
        if (k == 0) snprintf(o, sizeof o, "\"%u\"^^<%sinteger>", next_rand(1000), X);
        else if (k == 1) snprintf(o, sizeof o, "\"%u.5\"^^<%sdouble>", next_rand(100), X);
        else if (k == 2) snprintf(o, sizeof o, "\"%u\"", next_rand(50));
        else if (k == 3) snprintf(o, sizeof o, "\"word %u\"@en", next_rand(50));
        else if (k == 4) snprintf(o, sizeof o, "\"2020-01-%02u\"^^<%sdate>", 1 + next_rand(28), X);
        else if (k == 5) snprintf(o, sizeof o, "_:b%u", next_rand(40));
        else snprintf(o, sizeof o, "<http://g/e%u>", e);
        len += (size_t)snprintf(t + len, cap - len, "%s <http://g/p%u> %s .\n", s, k < 5 ? 1 + k % 3 : next_rand(10), o);
    }
    return t;
}

/* ---- comparing a graph with another by names ---- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    assert_true(vasprintf(&s, f, ap) >= 0);
    va_end(ap);
    return s;
}

typedef struct { char **s; size_t n; } strs;

static void strs_sort_free(strs *a) { for (size_t i = 0; i < a->n; i++) free(a->s[i]); free(a->s); }

static strs triples_by_name(const kgm_graph *g)
{
    strs a = { calloc(kgm_graph_n_triples(g) + 1, sizeof(char *)), kgm_graph_n_triples(g) };
    for (size_t i = 0; i < a.n; i++) {
        kgm_triple t = kgm_graph_triple(g, i);
        assert_true(t.h >= 0 && (size_t)t.h < kgm_graph_n_ents(g) && t.t >= 0 && (size_t)t.t < kgm_graph_n_ents(g));
        assert_true(t.r >= 0 && (size_t)t.r < kgm_graph_n_rels(g));
        a.s[i] = fmt("%s %s %s", kgm_graph_ent_name(g, t.h), kgm_graph_rel_name(g, t.r), kgm_graph_ent_name(g, t.t));
    }
    qsort(a.s, a.n, sizeof *a.s, cmp_str);
    return a;
}

static strs attrs_by_name(const kgm_graph *g)
{
    const kgm_attr *at;
    size_t n;
    assert_int_equal(kgm_graph_attrs(g, &at, &n), 0);
    strs a = { calloc(n + 1, sizeof(char *)), n };
    for (size_t i = 0; i < n; i++)
        a.s[i] = fmt("%s %s %.17g", kgm_graph_ent_name(g, at[i].ent), kgm_graph_prop_name(g, at[i].prop), at[i].value);
    qsort(a.s, a.n, sizeof *a.s, cmp_str);
    return a;
}

static void assert_same_strs(strs a, strs b, const char *what)
{
    if (a.n != b.n) fail_msg("%s: %zu vs %zu", what, a.n, b.n);
    for (size_t i = 0; i < a.n; i++)
        if (strcmp(a.s[i], b.s[i])) fail_msg("%s %zu: '%s' vs '%s'", what, i, a.s[i], b.s[i]);
}

/* Every entity (relation) of `copy` is one of `view`; with `exact` the other way round too,
 * else the view's extra ones have no triple (ids a remove left behind). */
static void assert_names_cover(const kgm_graph *view, const kgm_graph *copy, int exact)
{
    for (size_t e = 0; e < kgm_graph_n_ents(copy); e++)
        assert_true(kgm_graph_find_entity(view, kgm_graph_ent_name(copy, (int32_t)e)) >= 0);
    for (size_t r = 0; r < kgm_graph_n_rels(copy); r++)
        assert_true(kgm_graph_find_relation(view, kgm_graph_rel_name(copy, (int32_t)r)) >= 0);
    if (exact) {
        assert_int_equal(kgm_graph_n_ents(view), kgm_graph_n_ents(copy));
        assert_int_equal(kgm_graph_n_rels(view), kgm_graph_n_rels(copy));
    }
    for (size_t e = 0; e < kgm_graph_n_ents(view); e++) {
        const char *name = kgm_graph_ent_name(view, (int32_t)e);
        assert_non_null(name);
        assert_int_equal(kgm_graph_find_entity(view, name), (int32_t)e);
    }
}

/* The view of s equals its extracted copy. */
static void assert_view_matches(kgm_store *s, int exact)
{
    kgm_graph *v, *c;
    assert_int_equal(kgm_store_view(s, &v), 0);
    assert_true(kgm_graph_borrowed(v));
    assert_int_equal(kgm_store_extract(s, &c), 0);
    assert_false(kgm_graph_borrowed(c));
    assert_names_cover(v, c, exact);
    strs tv = triples_by_name(v), tc = triples_by_name(c);
    assert_same_strs(tv, tc, "triples");
    strs av = attrs_by_name(v), ac = attrs_by_name(c);
    assert_same_strs(av, ac, "attributes");
    strs_sort_free(&tv); strs_sort_free(&tc); strs_sort_free(&av); strs_sort_free(&ac);
    /* the dense array agrees with the accessor, and the cursor walks back as well as forward */
    const kgm_triple *d = kgm_graph_triples(v);
    size_t n = kgm_graph_n_triples(v);
    if (n) assert_non_null(d);
    kgm_graph *w;
    assert_int_equal(kgm_store_view(s, &w), 0);
    for (size_t i = n; i-- > 0;) {
        kgm_triple t = kgm_graph_triple(w, i);
        assert_true(t.h == d[i].h && t.r == d[i].r && t.t == d[i].t);
    }
    kgm_graph_free(w);
    /* adjacency, built on first use: every triple once, under its head (tail) */
    for (int by_tail = 0; by_tail < 2; by_tail++) {
        const size_t *off;
        const int32_t *idx;
        assert_int_equal(kgm_graph_adjacency(v, by_tail, &off, &idx), 0);
        assert_int_equal(off[kgm_graph_n_ents(v)], n);
        for (size_t e = 0; e < kgm_graph_n_ents(v); e++)
            for (size_t k = off[e]; k < off[e + 1]; k++) {
                kgm_triple t = kgm_graph_triple(v, (size_t)idx[k]);
                assert_int_equal(by_tail ? t.t : t.h, (int32_t)e);
            }
    }
    kgm_graph_free(v);
    kgm_graph_free(c);
}

/* ---- tests ---- */

static void view_equals_copy_on_generated_graphs(void **state)
{
    (void)state;
    for (unsigned seed = 1; seed <= 3; seed++) {
        kgm_store *s;
        assert_int_equal(kgm_store_open_with(&s, NULL, "kgmeta"), 0);
        char *text = gen_ntriples(600 * seed, seed);
        assert_int_equal(kgm_store_load_string(s, text, "ntriples", NULL, NULL), 0);
        free(text);
        assert_view_matches(s, 1);
        /* a second document, then single adds: new and old terms get their classes */
        text = gen_ntriples(300, seed + 10);
        assert_int_equal(kgm_store_load_string(s, text, "ntriples", NULL, NULL), 0);
        free(text);
        assert_int_equal(kgm_store_add(s, "<http://g/p3>", "<http://g/p4>", "<http://g/new>"), 0);
        assert_int_equal(kgm_store_add(s, "<http://g/new>", "<http://g/p9>", "\"7\"^^<http://www.w3.org/2001/XMLSchema#int>"), 0);
        assert_view_matches(s, 1);
        kgm_store_free(s);
    }
}

/* One document into an empty store: the store's ids are the extraction's (both are in
 * order of first appearance in the sorted triples), so the views are interchangeable. */
static void one_load_gives_the_extraction_ids(void **state)
{
    (void)state;
    kgm_store *s;
    assert_int_equal(kgm_store_open_with(&s, NULL, "kgmeta"), 0);
    char *text = gen_ntriples(2000, 7);
    assert_int_equal(kgm_store_load_string(s, text, "ntriples", NULL, NULL), 0);
    free(text);
    kgm_graph *v, *c;
    assert_int_equal(kgm_store_view(s, &v), 0);
    assert_int_equal(kgm_store_extract(s, &c), 0);
    assert_int_equal(kgm_graph_n_ents(v), kgm_graph_n_ents(c));
    for (size_t e = 0; e < kgm_graph_n_ents(c); e++)
        assert_string_equal(kgm_graph_ent_name(v, (int32_t)e), kgm_graph_ent_name(c, (int32_t)e));
    for (size_t r = 0; r < kgm_graph_n_rels(c); r++)
        assert_string_equal(kgm_graph_rel_name(v, (int32_t)r), kgm_graph_rel_name(c, (int32_t)r));
    assert_int_equal(kgm_graph_n_triples(v), kgm_graph_n_triples(c));
    assert_memory_equal(kgm_graph_triples(v), kgm_graph_triples(c), kgm_graph_n_triples(c) * sizeof(kgm_triple));

    /* Trained on either, with the same seed: the same embedding, bit for bit. */
    kgm_emb_opts o;
    kgm_emb_opts_default(&o, KGM_EMB_TRANSE_L2);
    o.dim = 8; o.epochs = 5; o.threads = 1; o.seed = 11;
    kgm_emb *ev = kgm_emb_new(&o, kgm_graph_n_ents(v), kgm_graph_n_rels(v));
    kgm_emb *ec = kgm_emb_new(&o, kgm_graph_n_ents(c), kgm_graph_n_rels(c));
    assert_int_equal(kgm_emb_train(ev, v, &o, NULL, 0, NULL, 0, NULL), 0);
    assert_int_equal(kgm_emb_train(ec, c, &o, NULL, 0, NULL, 0, NULL), 0);
    size_t bytes = ev->n_ents * (size_t)ev->ent_width * sizeof(float);
    assert_memory_equal(ev->ent, ec->ent, bytes);
    /* control: another seed gives other vectors, so the comparison above can fail */
    o.seed = 12;
    kgm_emb *e2 = kgm_emb_new(&o, kgm_graph_n_ents(c), kgm_graph_n_rels(c));
    assert_int_equal(kgm_emb_train(e2, c, &o, NULL, 0, NULL, 0, NULL), 0);
    assert_memory_not_equal(e2->ent, ec->ent, bytes);
    kgm_emb_free(ev); kgm_emb_free(ec); kgm_emb_free(e2);
    kgm_graph_free(v);
    kgm_graph_free(c);
    kgm_store_free(s);
}

/* Every Turtle file shipped in datasets/, alone and all together. */
static void view_equals_copy_on_the_datasets(void **state)
{
    (void)state;
    const char *src = getenv("KGM_SOURCE_DIR");
    assert_non_null(src);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/datasets", src);
    DIR *d = opendir(dir);
    assert_non_null(d);
    kgm_store *all;
    assert_int_equal(kgm_store_open_with(&all, NULL, "kgmeta"), 0);
    int n_files = 0;
    for (struct dirent *de; (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 4, ".ttl")) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        kgm_store *one;
        assert_int_equal(kgm_store_open_with(&one, NULL, "kgmeta"), 0);
        if (kgm_store_load(one, path, NULL, NULL, NULL, NULL)) fail_msg("%s", kgm_error());
        assert_view_matches(one, 1);
        kgm_store_free(one);
        assert_int_equal(kgm_store_load(all, path, NULL, NULL, NULL, NULL), 0);
        n_files++;
    }
    closedir(d);
    assert_true(n_files >= 12);   /* kgmeta.ttl, the demo, sine, gapminder and sixfam files */
    assert_view_matches(all, 1);
    kgm_store_free(all);
}

static void the_view_goes_stale_at_every_change(void **state)
{
    (void)state;
    kgm_store *s;
    assert_int_equal(kgm_store_open_with(&s, NULL, "kgmeta"), 0);
    /* The view of the empty store: the load adopts its staging storage (the one the view
     * read is freed), and the view still knows it is stale (ASan: no read of freed memory). */
    kgm_graph *v;
    assert_int_equal(kgm_store_view(s, &v), 0);
    assert_int_equal(kgm_graph_n_triples(v), 0);
    char *text = gen_ntriples(1500, 3);
    assert_int_equal(kgm_store_load_string(s, text, "ntriples", NULL, NULL), 0);
    free(text);
    assert_true(kgm_graph_stale(v));
    kgm_graph_free(v);
    assert_int_equal(kgm_store_view(s, &v), 0);
    assert_false(kgm_graph_stale(v));
    int32_t e5 = kgm_graph_find_entity(v, "http://g/e5");
    assert_true(e5 >= 0);
    size_t n_ents = kgm_graph_n_ents(v);

    /* add: stale, refused with one line, and the new view has the triple */
    assert_int_equal(kgm_store_add(s, "<http://g/e5>", "<http://g/p7>", "<http://g/fresh>"), 0);
    assert_true(kgm_graph_stale(v));
    assert_int_equal(kgm_graph_check(v, "test"), KGM_ESTATE);
    assert_non_null(strstr(kgm_error(), "store changed"));
    assert_null(kgm_graph_triples(v));
    assert_null(kgm_graph_ent_name(v, 0));
    assert_int_equal(kgm_graph_triple(v, 0).h, -1);
    kgm_emb_opts o;
    kgm_emb_opts_default(&o, KGM_EMB_TRANSE_L2);
    o.dim = 4; o.epochs = 1; o.threads = 1;
    kgm_emb *e = kgm_emb_new(&o, n_ents, kgm_graph_n_rels(v));
    assert_int_equal(kgm_emb_train(e, v, &o, NULL, 0, NULL, 0, NULL), KGM_ESTATE);
    kgm_emb_free(e);
    kgm_graph_free(v);
    assert_int_equal(kgm_store_view(s, &v), 0);
    assert_int_equal(kgm_graph_n_ents(v), n_ents + 1);
    assert_int_equal(kgm_graph_find_entity(v, "http://g/e5"), e5);      /* ids stay put */
    assert_int_equal(kgm_graph_find_entity(v, "http://g/fresh"), (int32_t)n_ents);
    assert_view_matches(s, 1);

    /* remove: stale; the triple is gone from the new view, its entity id stays */
    assert_int_equal(kgm_store_remove(s, "<http://g/e5>", "<http://g/p7>", "<http://g/fresh>"), 0);
    assert_true(kgm_graph_stale(v));
    kgm_graph_free(v);
    assert_int_equal(kgm_store_view(s, &v), 0);
    assert_int_equal(kgm_graph_find_entity(v, "http://g/fresh"), (int32_t)n_ents);
    strs tv = triples_by_name(v);
    for (size_t i = 0; i < tv.n; i++) assert_null(strstr(tv.s[i], "http://g/fresh"));
    strs_sort_free(&tv);
    assert_view_matches(s, 0);

    /* a load */
    assert_int_equal(kgm_store_load_string(s, "<http://g/x> <http://g/p1> <http://g/y> .\n", "ntriples", NULL, NULL), 0);
    assert_true(kgm_graph_stale(v));
    kgm_graph_free(v);
    assert_view_matches(s, 0);
    kgm_store_free(s);
}

/* The classes of the view as one string per id: "e <name>" and "r <name>" lines. */
static char *ids_text(const kgm_graph *g)
{
    size_t cap = 64, len = 0;
    char *t = malloc(cap);
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < (pass ? kgm_graph_n_rels(g) : kgm_graph_n_ents(g)); i++) {
            const char *name = pass ? kgm_graph_rel_name(g, (int32_t)i) : kgm_graph_ent_name(g, (int32_t)i);
            assert_non_null(name);
            size_t need = len + strlen(name) + 4;
            if (need > cap) { cap = 2 * need; t = realloc(t, cap); }
            len += (size_t)sprintf(t + len, "%c %s\n", pass ? 'r' : 'e', name);
        }
    t[len] = 0;
    return t;
}

/* Reopening from a snapshot gives the same ids and the same triples in the same order.
 * Changes replayed from the journal give the same names and triples (ids in replay order). */
static void ids_survive_reopen(void **state)
{
    (void)state;
    char dir[400];
    snprintf(dir, sizeof dir, "%s/reopen", tmpdir);
    kgm_store *s;
    assert_int_equal(kgm_store_open_with(&s, dir, "kgmeta"), 0);
    char *text = gen_ntriples(3000, 5);
    assert_int_equal(kgm_store_load_string(s, text, "ntriples", NULL, NULL), 0);
    free(text);
    assert_int_equal(kgm_store_add(s, "<http://g/p2>", "<http://g/p5>", "_:b3"), 0);
    assert_int_equal(kgm_store_add(s, "<http://g/late>", "<http://g/p0>", "<http://g/e1>"), 0);
    assert_int_equal(kgm_store_remove(s, "<http://g/late>", "<http://g/p0>", "<http://g/e1>"), 0);
    /* journal replay */
    kgm_store_free(s);
    assert_int_equal(kgm_store_open_with(&s, dir, "kgmeta"), 0);
    assert_view_matches(s, 0);
    kgm_graph *v;
    assert_int_equal(kgm_store_view(s, &v), 0);
    assert_int_not_equal(kgm_graph_find_entity(v, "http://g/late"), -1);   /* left by the remove */
    kgm_graph_free(v);
    /* snapshot, twice (the second reopen reads the snapshot the first one's ids came from) */
    assert_int_equal(kgm_store_compact(s), 0);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(kgm_store_view(s, &v), 0);
        kgm_graph *before = kgm_graph_copy(v);
        assert_non_null(before);
        char *ids_before = ids_text(v);
        kgm_graph_free(v);
        kgm_store_free(s);
        assert_int_equal(kgm_store_open_with(&s, dir, "kgmeta"), 0);
        assert_int_equal(kgm_store_view(s, &v), 0);
        char *ids_after = ids_text(v);
        assert_string_equal(ids_after, ids_before);
        assert_int_equal(kgm_graph_n_triples(v), kgm_graph_n_triples(before));
        assert_memory_equal(kgm_graph_triples(v), kgm_graph_triples(before),
                            kgm_graph_n_triples(v) * sizeof(kgm_triple));
        free(ids_before);
        free(ids_after);
        kgm_graph_free(v);
        kgm_graph_free(before);
        assert_view_matches(s, 0);
        /* a change between the rounds, journaled on top of the snapshot */
        assert_int_equal(kgm_store_add(s, "<http://g/late>", "<http://g/p0>", "<http://g/e2>"), 0);
        assert_int_equal(kgm_store_compact(s), 0);
    }
    kgm_store_free(s);
}

/* A version 2 snapshot (no entity ids) is refused with a line saying so. */
static void old_snapshots_are_refused(void **state)
{
    (void)state;
    char dir[400], path[500];
    snprintf(dir, sizeof dir, "%s/v2", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/snapshot.kgs", dir);
    unsigned char b[160] = "KGMISTOR";
    uint32_t version = 2, size = 72;
    memcpy(b + 8, &version, 4);
    memcpy(b + 12, &size, 4);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, sizeof b, f), sizeof b);
    fclose(f);
    kgm_store *s = NULL;
    assert_int_equal(kgm_store_open_with(&s, dir, "kgmeta"), KGM_EFORMAT);
    assert_null(s);
    assert_non_null(strstr(kgm_error(), "version 2"));
}

/* 'trees' has no arrays to lend: its view is the extracted copy. */
static void trees_view_is_a_copy(void **state)
{
    (void)state;
    kgm_store *s;
    assert_int_equal(kgm_store_open_with(&s, NULL, "trees"), 0);
    assert_int_equal(kgm_store_add(s, "<http://g/a>", "<http://g/p>", "<http://g/b>"), 0);
    kgm_graph *v;
    assert_int_equal(kgm_store_view(s, &v), 0);
    assert_false(kgm_graph_borrowed(v));
    assert_int_equal(kgm_graph_n_triples(v), 1);
    assert_int_equal(kgm_store_add(s, "<http://g/b>", "<http://g/p>", "<http://g/c>"), 0);
    assert_false(kgm_graph_stale(v));
    kgm_graph_free(v);
    kgm_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(view_equals_copy_on_generated_graphs),
        cmocka_unit_test(one_load_gives_the_extraction_ids),
        cmocka_unit_test(view_equals_copy_on_the_datasets),
        cmocka_unit_test(the_view_goes_stale_at_every_change),
        cmocka_unit_test(ids_survive_reopen),
        cmocka_unit_test(old_snapshots_are_refused),
        cmocka_unit_test(trees_view_is_a_copy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
