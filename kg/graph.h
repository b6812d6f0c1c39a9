/* kg/graph.h - the integer view of a graph that learning reads: entity and relation
 * dictionaries, (head, relation, tail) arrays, numeric literal attributes per entity, and
 * adjacency by subject and by object. Embeddings and tasks read only this view, never
 * librdf. It is built by the store's extraction (kgm_store_extract) or, in tests, by hand
 * with the builder below; it does not change once kgm_graph_finish() has run.
 *
 * Entities are IRIs (written as the bare IRI, no angle brackets) and blank nodes
 * ("_:label"). A triple whose object is a literal is not an entity triple: when the
 * literal is numeric (xsd numeric datatypes, or a plain number) it becomes an attribute
 * (entity, property, value); other literals are left out. */
#ifndef KGM_GRAPH_H
#define KGM_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "strmap.h"

typedef struct { int32_t h, r, t; } kgm_triple;
typedef struct { int32_t ent, prop; double value; } kgm_attr;

typedef struct kgm_graph {
    kgm_strmap *ents;          /* entity name <-> id */
    kgm_strmap *rels;          /* relation IRI <-> id */
    kgm_strmap *props;         /* attribute property IRI <-> id */
    kgm_triple *triples;       /* (n_triples) */
    size_t      n_triples, cap_triples;
    kgm_attr   *attrs;         /* (n_attrs) */
    size_t      n_attrs, cap_attrs;
    /* After kgm_graph_finish(): CSR adjacency, triple indexes grouped by head and by tail.
     * Triples with head e are out_idx[out_off[e] .. out_off[e+1]), likewise in_* by tail. */
    size_t     *out_off, *in_off;   /* (n_ents + 1) */
    int32_t    *out_idx, *in_idx;   /* (n_triples) */
} kgm_graph;

kgm_graph *kgm_graph_new(void);              /* returns new: kgm_graph_free() */
void       kgm_graph_free(kgm_graph *g);     /* NULL is a no-op */

/* ---- building ---- ids are dense and in order of first appearance; -1 = out of memory */
int32_t kgm_graph_entity(kgm_graph *g, const char *name);
int32_t kgm_graph_relation(kgm_graph *g, const char *iri);
int     kgm_graph_add(kgm_graph *g, int32_t h, int32_t r, int32_t t);       /* 0 or KGM_ENOMEM */
int     kgm_graph_add_attr(kgm_graph *g, int32_t ent, const char *prop, double value);
int     kgm_graph_finish(kgm_graph *g);      /* builds adjacency, O(n); 0 or KGM_ENOMEM */

/* ---- reading ---- */
static inline size_t kgm_graph_n_ents(const kgm_graph *g) { return kgm_strmap_size(g->ents); }
static inline size_t kgm_graph_n_rels(const kgm_graph *g) { return kgm_strmap_size(g->rels); }
static inline const char *kgm_graph_ent_name(const kgm_graph *g, int32_t e) { return kgm_strmap_str(g->ents, e); }
static inline const char *kgm_graph_rel_name(const kgm_graph *g, int32_t r) { return kgm_strmap_str(g->rels, r); }
int32_t kgm_graph_find_entity(const kgm_graph *g, const char *name);     /* -1 if absent */
int32_t kgm_graph_find_relation(const kgm_graph *g, const char *iri);    /* -1 if absent */

#endif
