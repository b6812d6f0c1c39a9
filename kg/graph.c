/* kg/graph.c - building the integer view: interning, triple arrays, CSR adjacency. */
#include "graph.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

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

int32_t kgm_graph_find_entity(const kgm_graph *g, const char *name)
{
    return kgm_strmap_find(g->ents, name, strlen(name));
}

int32_t kgm_graph_find_relation(const kgm_graph *g, const char *iri)
{
    return kgm_strmap_find(g->rels, iri, strlen(iri));
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

int kgm_graph_finish(kgm_graph *g)
{
    free(g->out_off); free(g->out_idx); free(g->in_off); free(g->in_idx);
    g->out_off = g->in_off = NULL;
    g->out_idx = g->in_idx = NULL;
    if (build_csr(g, 0, &g->out_off, &g->out_idx)) return KGM_ENOMEM;
    if (build_csr(g, 1, &g->in_off, &g->in_idx)) return KGM_ENOMEM;
    return 0;
}
