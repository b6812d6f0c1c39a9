/* kg/graph.c - the integer view: building (owned mode), reading the store's arrays
 * (borrowed mode), interning, triple arrays, CSR adjacency. */
#include "graph.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

/* A graph's caches are filled on first use by readers given a const graph: they are part of
 * the view's value, not of its meaning (one thread, as everywhere in kg/). */
static kgm_graph *mut(const kgm_graph *g) { return (kgm_graph *)g; }

kgm_graph *kgm_graph_borrow(const kgm_graph_source *src)
{
    kgm_graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->src = malloc(sizeof *g->src);
    g->props = kgm_strmap_new();
    if (!g->src || !g->props) { kgm_graph_free(g); return NULL; }
    *g->src = *src;
    return g;
}

kgm_graph *kgm_graph_new(void)
{
    kgm_graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->ents = kgm_strmap_new();
    g->rels = kgm_strmap_new();
    g->props = kgm_strmap_new();
    if (!g->ents || !g->rels || !g->props) { kgm_graph_free(g); return NULL; }
    return g;
}

void kgm_graph_free(kgm_graph *g)
{
    if (!g) return;
    kgm_strmap_free(g->ents); kgm_strmap_free(g->rels); kgm_strmap_free(g->props);
    free(g->triples); free(g->attrs);
    free(g->out_off); free(g->in_off); free(g->out_idx); free(g->in_idx);
    if (g->src) {
        for (size_t i = 0; g->ent_names && i < g->src->n_ents; i++) free(g->ent_names[i]);
        for (size_t i = 0; g->rel_names && i < g->src->n_rels; i++) free(g->rel_names[i]);
        free(g->src);
    }
    free(g->ent_names); free(g->rel_names);
    free(g);
}

int32_t kgm_graph_entity(kgm_graph *g, const char *name)
{
    return kgm_strmap_intern(g->ents, name, strlen(name));
}

int32_t kgm_graph_relation(kgm_graph *g, const char *iri)
{
    return kgm_strmap_intern(g->rels, iri, strlen(iri));
}

/* ---- reading ---- */

int kgm_graph_borrowed(const kgm_graph *g) { return g->src != NULL; }

int kgm_graph_stale(const kgm_graph *g)
{
    return g->src && *g->src->gen != g->src->gen_taken;
}

int kgm_graph_check(const kgm_graph *g, const char *what)
{
    if (!kgm_graph_stale(g)) return 0;
    return kgm_fail(KGM_ESTATE, "%s: the store changed since its graph view was taken (take it again)", what);
}

size_t kgm_graph_n_ents(const kgm_graph *g) { return g->src ? g->src->n_ents : kgm_strmap_size(g->ents); }
size_t kgm_graph_n_rels(const kgm_graph *g) { return g->src ? g->src->n_rels : kgm_strmap_size(g->rels); }
size_t kgm_graph_n_triples(const kgm_graph *g) { return g->src ? g->src->n_spo - g->src->n_lit : g->n_triples; }

static kgm_triple spo_triple(const kgm_graph_source *s, size_t row)
{
    const uint32_t *t = s->spo + 3 * row;
    return (kgm_triple){ s->ent_of[t[0]], s->rel_of[t[1]], s->ent_of[t[2]] };
}

static int spo_is_entity(const kgm_graph_source *s, size_t row)
{
    return s->ent_of[s->spo[3 * row + 2]] >= 0;
}

/* The spo row of entity triple i, moving the cursor from where the last call left it. */
static size_t cursor_row(kgm_graph *g, size_t i)
{
    const kgm_graph_source *s = g->src;
    if (g->cur_i == 0 && g->cur_pos == 0)                    /* first use: find triple 0 */
        while (!spo_is_entity(s, g->cur_pos)) g->cur_pos++;
    while (g->cur_i < i) {
        do g->cur_pos++; while (!spo_is_entity(s, g->cur_pos));
        g->cur_i++;
    }
    while (g->cur_i > i) {
        do g->cur_pos--; while (!spo_is_entity(s, g->cur_pos));
        g->cur_i--;
    }
    return g->cur_pos;
}

kgm_triple kgm_graph_triple(const kgm_graph *g, size_t i)
{
    if (!g->src || g->triples) return g->triples[i];
    if (kgm_graph_stale(g)) return (kgm_triple){ -1, -1, -1 };
    return spo_triple(g->src, g->src->n_lit ? cursor_row(mut(g), i) : i);
}

const kgm_triple *kgm_graph_triples(const kgm_graph *g)
{
    if (!g->src || g->triples) return g->triples;
    if (kgm_graph_check(g, "graph triples")) return NULL;
    size_t n = kgm_graph_n_triples(g);
    if (!n) return NULL;
    kgm_triple *t = malloc(n * sizeof *t);
    if (!t) { kgm_fail(KGM_ENOMEM, "out of memory copying %zu triples", n); return NULL; }
    for (size_t row = 0, i = 0; i < n; row++)
        if (spo_is_entity(g->src, row)) t[i++] = spo_triple(g->src, row);
    mut(g)->triples = t;
    mut(g)->n_triples = mut(g)->cap_triples = n;
    return t;
}

/* The name of term id (blank nodes as "_:label") into *slot, made once. */
static const char *term_name(const kgm_graph *g, char **slot, uint32_t id)
{
    if (*slot) return *slot;
    int blank;
    size_t len;
    const char *b = g->src->term(g->src->ctx, id, &blank, &len);
    char *name = b ? malloc(len + 3) : NULL;
    if (!name) { kgm_fail(KGM_ENOMEM, "out of memory naming a term"); return NULL; }
    size_t lp = blank ? 2 : 0;
    memcpy(name, "_:", lp);
    memcpy(name + lp, b, len);
    name[lp + len] = 0;
    return *slot = name;
}

static const char *borrowed_name(const kgm_graph *g, char ***names, size_t n, const uint32_t *terms, int32_t id)
{
    if (id < 0 || (size_t)id >= n || kgm_graph_check(g, "graph names")) return NULL;
    if (!*names && !(*names = calloc(n, sizeof **names))) {
        kgm_fail(KGM_ENOMEM, "out of memory naming %zu terms", n);
        return NULL;
    }
    return term_name(g, &(*names)[id], terms[id]);
}

const char *kgm_graph_ent_name(const kgm_graph *g, int32_t e)
{
    if (!g->src) return kgm_strmap_str(g->ents, e);
    return borrowed_name(g, &mut(g)->ent_names, g->src->n_ents, g->src->ent_term, e);
}

const char *kgm_graph_rel_name(const kgm_graph *g, int32_t r)
{
    if (!g->src) return kgm_strmap_str(g->rels, r);
    return borrowed_name(g, &mut(g)->rel_names, g->src->n_rels, g->src->rel_term, r);
}

static int32_t borrowed_find(const kgm_graph *g, const char *name, const int32_t *of, int blank_ok)
{
    if (kgm_graph_stale(g)) return -1;
    int blank = blank_ok && !strncmp(name, "_:", 2);
    int64_t id = g->src->find(g->src->ctx, name + 2 * blank, strlen(name) - 2 * (size_t)blank, blank);
    return id >= 0 && (size_t)id < g->src->n_of && of[id] >= 0 ? of[id] : -1;
}

int32_t kgm_graph_find_entity(const kgm_graph *g, const char *name)
{
    if (g->src) return borrowed_find(g, name, g->src->ent_of, 1);
    return kgm_strmap_find(g->ents, name, strlen(name));
}

int32_t kgm_graph_find_relation(const kgm_graph *g, const char *iri)
{
    if (g->src) return borrowed_find(g, iri, g->src->rel_of, 0);
    return kgm_strmap_find(g->rels, iri, strlen(iri));
}

kgm_graph *kgm_graph_copy(const kgm_graph *g)
{
    if (kgm_graph_check(g, "graph copy")) return NULL;
    kgm_graph *c = kgm_graph_new();
    const kgm_attr *a;
    size_t n_attrs;
    int rc = c ? kgm_graph_attrs(g, &a, &n_attrs) : kgm_fail(KGM_ENOMEM, "out of memory");
    for (size_t e = 0; !rc && e < kgm_graph_n_ents(g); e++) {
        const char *name = kgm_graph_ent_name(g, (int32_t)e);
        if (!name || kgm_graph_entity(c, name) != (int32_t)e) rc = kgm_fail(KGM_ENOMEM, "out of memory copying a graph");
    }
    for (size_t r = 0; !rc && r < kgm_graph_n_rels(g); r++) {
        const char *name = kgm_graph_rel_name(g, (int32_t)r);
        if (!name || kgm_graph_relation(c, name) != (int32_t)r) rc = kgm_fail(KGM_ENOMEM, "out of memory copying a graph");
    }
    for (size_t i = 0; !rc && i < kgm_graph_n_triples(g); i++) {
        kgm_triple t = kgm_graph_triple(g, i);
        rc = kgm_graph_add(c, t.h, t.r, t.t);
    }
    for (size_t i = 0; !rc && i < n_attrs; i++)
        rc = kgm_graph_add_attr(c, a[i].ent, kgm_graph_prop_name(g, a[i].prop), a[i].value);
    if (!rc) rc = kgm_graph_finish(c);
    if (rc) { kgm_graph_free(c); return NULL; }
    return c;
}

/* Grow *arr (element size `size`) so that it holds at least n+1 elements. */
static int reserve(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 1024;
    void *p = realloc(*arr, nc * size);
    if (!p) return kgm_fail(KGM_ENOMEM, "out of memory growing the graph to %zu items", nc);
    *arr = p;
    *cap = nc;
    return 0;
}

int kgm_graph_add(kgm_graph *g, int32_t h, int32_t r, int32_t t)
{
    if (reserve((void **)&g->triples, &g->cap_triples, g->n_triples, sizeof *g->triples))
        return KGM_ENOMEM;
    g->triples[g->n_triples++] = (kgm_triple){ h, r, t };
    return 0;
}

int kgm_graph_add_attr(kgm_graph *g, int32_t ent, const char *prop, double value)
{
    int32_t p = kgm_strmap_intern(g->props, prop, strlen(prop));
    if (p < 0) return kgm_fail(KGM_ENOMEM, "out of memory interning %s", prop);
    if (reserve((void **)&g->attrs, &g->cap_attrs, g->n_attrs, sizeof *g->attrs))
        return KGM_ENOMEM;
    g->attrs[g->n_attrs++] = (kgm_attr){ ent, p, value };
    return 0;
}

/* Counting sort of triple indexes by one endpoint: off gets n_ents+1 offsets. */
static int build_csr(const kgm_graph *g, int by_tail, size_t **off_out, int32_t **idx_out)
{
    size_t ne = kgm_graph_n_ents(g);
    size_t *off = calloc(ne + 1, sizeof *off);
    int32_t *idx = malloc((g->n_triples ? g->n_triples : 1) * sizeof *idx);
    if (!off || !idx) { free(off); free(idx); return kgm_fail(KGM_ENOMEM, "out of memory building adjacency"); }
    for (size_t i = 0; i < g->n_triples; i++)
        off[(by_tail ? g->triples[i].t : g->triples[i].h) + 1]++;
    for (size_t e = 0; e < ne; e++) off[e + 1] += off[e];
    size_t *fill = malloc((ne + 1) * sizeof *fill);
    if (!fill) { free(off); free(idx); return kgm_fail(KGM_ENOMEM, "out of memory building adjacency"); }
    memcpy(fill, off, (ne + 1) * sizeof *fill);
    for (size_t i = 0; i < g->n_triples; i++)
        idx[fill[by_tail ? g->triples[i].t : g->triples[i].h]++] = (int32_t)i;
    free(fill);
    *off_out = off;
    *idx_out = idx;
    return 0;
}

/* The attributes of a borrowed graph: numeric literal objects, in SPO order. */
static int build_attrs(kgm_graph *g)
{
    const kgm_graph_source *s = g->src;
    int rc = 0;
    for (size_t row = 0; !rc && row < s->n_spo; row++) {
        const uint32_t *t = s->spo + 3 * row;
        double x;
        if (s->ent_of[t[2]] >= 0 || !s->number(s->ctx, t[2], &x)) continue;
        char *slot = NULL;
        const char *name = term_name(g, &slot, t[1]);
        rc = name ? kgm_graph_add_attr(g, s->ent_of[t[0]], name, x) : KGM_ENOMEM;
        free(slot);
    }
    if (rc) { g->n_attrs = 0; return rc; }
    g->attrs_built = 1;
    return 0;
}

int kgm_graph_attrs(const kgm_graph *g, const kgm_attr **a, size_t *n)
{
    *a = NULL;
    *n = 0;
    if (g->src && !g->attrs_built) {
        int rc = kgm_graph_check(g, "graph attributes");
        if (rc || (rc = build_attrs(mut(g)))) return rc;
    }
    *a = g->attrs;
    *n = g->n_attrs;
    return 0;
}

const char *kgm_graph_prop_name(const kgm_graph *g, int32_t p) { return kgm_strmap_str(g->props, p); }

int kgm_graph_adjacency(const kgm_graph *g, int by_tail, const size_t **off, const int32_t **idx)
{
    if (g->src && !g->out_off) {
        if (!kgm_graph_triples(g) && kgm_graph_n_triples(g)) return kgm_error_code();   /* stale or out of memory */
        int rc = kgm_graph_finish(mut(g));
        if (rc) return rc;
    }
    *off = by_tail ? g->in_off : g->out_off;
    *idx = by_tail ? g->in_idx : g->out_idx;
    return *off ? 0 : kgm_fail(KGM_EINVAL, "graph adjacency: kgm_graph_finish has not run");
}

int kgm_graph_finish(kgm_graph *g)
{
    free(g->out_off); free(g->out_idx); free(g->in_off); free(g->in_idx);
    g->out_off = g->in_off = NULL;
    g->out_idx = g->in_idx = NULL;
    if (build_csr(g, 0, &g->out_off, &g->out_idx)) return KGM_ENOMEM;
    if (build_csr(g, 1, &g->in_off, &g->in_idx)) return KGM_ENOMEM;
    return 0;
}
