/* kg/graph.h - the integer view of a graph that learning reads: entity and relation
 * dictionaries, (head, relation, tail) triples, numeric literal attributes per entity, and
 * adjacency by subject and by object. Embeddings and tasks read only this view, never
 * librdf, and only through the accessors below (kgm_graph_n_triples, kgm_graph_triple, ...).
 *
 * Two modes:
 * - owned: built by hand with the builder below (tests, the descriptive graph, the 'trees'
 *   storage's kgm_store_extract); it owns its names and triples and does not change once
 *   kgm_graph_finish() has run.
 * - borrowed (kgm_store_view on a "kgmeta" store): the store's own arrays, no copy and no
 *   pass over the triples. Entity and relation ids are the store's term classes (kg/istore.h:
 *   dense, in order of first use, never taken back, so after removes an entity or relation
 *   may have no triple left; kept by the snapshot, while changes replayed from the journal
 *   at open get theirs in replay order). One load into an empty store gives the ids
 *   kgm_store_extract gives. Triple i is the i-th entity triple (object an IRI or blank) of
 *   the store's sorted SPO array: read directly when the store holds no literal-object
 *   triples, else by a cursor that walks the array (O(1) per step for scans in either
 *   direction; random access is linear in the distance). The names are made (NUL-terminated,
 *   cached per id) when asked for. Consumers that need a dense (h, r, t) array (the
 *   embedding trainer: it hashes and shuffles the positives) ask kgm_graph_triples(), which
 *   builds one once (12 bytes per entity triple) in the graph; attributes (numeric literal
 *   objects) and adjacency are likewise built on first use. The view reflects the store when
 *   it was taken: once the store changes (any add, remove, load or merge),
 *   kgm_graph_stale() is 1 and readers must take a new view; the accessors that read the
 *   store's arrays refuse (kgm_graph_check) rather than read freed memory. Free a borrowed
 *   graph before its store.
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

/* Where a borrowed graph reads (filled by kg/store_query.c from kg/istore.h's view). */
typedef struct kgm_graph_source {
    const uint32_t *spo;            /* (n_spo * 3) sorted (s, p, o) term ids */
    size_t          n_spo, n_lit;   /* all triples; those with a literal object */
    const int32_t  *ent_of, *rel_of;    /* per term id < n_of: entity / relation id, or < 0 */
    size_t          n_of;
    const uint32_t *ent_term, *rel_term;
    size_t          n_ents, n_rels;
    const uint64_t *gen;            /* the store's change counter, and its value when taken */
    uint64_t        gen_taken;
    void           *ctx;
    /* Term id's bytes (not NUL-terminated); *blank = 1 for a blank node. */
    const char *(*term)(void *ctx, uint32_t id, int *blank, size_t *len);
    /* Term id of an IRI (blank 0) or blank label (blank 1); -1 when absent. */
    int64_t     (*find)(void *ctx, const char *bytes, size_t len, int blank);
    /* 1 and *x when the literal term id is numeric (as for attributes), else 0. */
    int         (*number)(void *ctx, uint32_t id, double *x);
} kgm_graph_source;

typedef struct kgm_graph {
    kgm_strmap *ents;          /* entity name <-> id (owned mode) */
    kgm_strmap *rels;          /* relation IRI <-> id (owned mode) */
    kgm_strmap *props;         /* attribute property IRI <-> id */
    kgm_triple *triples;       /* (n_triples); borrowed mode: the dense copy, once asked for */
    size_t      n_triples, cap_triples;
    kgm_attr   *attrs;         /* (n_attrs); borrowed mode: built on first use */
    size_t      n_attrs, cap_attrs;
    /* After kgm_graph_finish() (borrowed: on first use): CSR adjacency, triple indexes grouped
     * by head and by tail. Triples with head e are out_idx[out_off[e] .. out_off[e+1]). */
    size_t     *out_off, *in_off;   /* (n_ents + 1) */
    int32_t    *out_idx, *in_idx;   /* (n_triples) */
    /* borrowed mode only */
    kgm_graph_source *src;     /* NULL in owned mode */
    char      **ent_names, **rel_names;  /* (n_ents), (n_rels) made on demand */
    int         attrs_built;
    size_t      cur_i, cur_pos;    /* the cursor: entity triple cur_i is spo row cur_pos */
} kgm_graph;

kgm_graph *kgm_graph_new(void);              /* returns new: kgm_graph_free() */
/* A borrowed graph reading src (copied; the arrays it points to are not). returns new. */
kgm_graph *kgm_graph_borrow(const kgm_graph_source *src);
void       kgm_graph_free(kgm_graph *g);     /* NULL is a no-op; never touches the store */
/* An owned copy with the same ids, names, triples (same order) and attributes, finished; for
 * keeping a view past its store, and as a test's reference. NULL with an error. */
kgm_graph *kgm_graph_copy(const kgm_graph *g);

/* ---- building (owned mode) ---- ids are dense and in order of first appearance; -1 = out of memory */
int32_t kgm_graph_entity(kgm_graph *g, const char *name);
int32_t kgm_graph_relation(kgm_graph *g, const char *iri);
int     kgm_graph_add(kgm_graph *g, int32_t h, int32_t r, int32_t t);       /* 0 or KGM_ENOMEM */
int     kgm_graph_add_attr(kgm_graph *g, int32_t ent, const char *prop, double value);
int     kgm_graph_finish(kgm_graph *g);      /* builds adjacency, O(n); 0 or KGM_ENOMEM */

/* ---- reading (both modes) ---- */
int     kgm_graph_borrowed(const kgm_graph *g);   /* 1 in borrowed mode */
/* 1 when g is borrowed and its store has changed since g was taken. */
int     kgm_graph_stale(const kgm_graph *g);
/* 0, or KGM_ESTATE with a one-line error naming `what` when g is stale. */
int     kgm_graph_check(const kgm_graph *g, const char *what);
size_t  kgm_graph_n_ents(const kgm_graph *g);
size_t  kgm_graph_n_rels(const kgm_graph *g);
size_t  kgm_graph_n_triples(const kgm_graph *g);  /* entity triples */
/* Entity triple i < kgm_graph_n_triples(g). On a stale view: {-1, -1, -1}. */
kgm_triple kgm_graph_triple(const kgm_graph *g, size_t i);
/* All entity triples as one array (borrowed: built once, kept in g). NULL with an error when
 * out of memory or stale (or when there are none). */
const kgm_triple *kgm_graph_triples(const kgm_graph *g);
/* Names, NUL-terminated, valid while g lives; NULL for a bad id, out of memory or stale. */
const char *kgm_graph_ent_name(const kgm_graph *g, int32_t e);
const char *kgm_graph_rel_name(const kgm_graph *g, int32_t r);
int32_t kgm_graph_find_entity(const kgm_graph *g, const char *name);     /* -1 if absent */
int32_t kgm_graph_find_relation(const kgm_graph *g, const char *iri);    /* -1 if absent */
/* The numeric attributes (borrowed: read from the literal-object triples on the first call,
 * in SPO order); *a borrowed from g. 0, KGM_ENOMEM or KGM_ESTATE. */
int     kgm_graph_attrs(const kgm_graph *g, const kgm_attr **a, size_t *n);
const char *kgm_graph_prop_name(const kgm_graph *g, int32_t p);   /* after kgm_graph_attrs */
/* CSR adjacency by head (by_tail 0) or tail: triples with that end e are
 * idx[off[e] .. off[e+1]) (indexes for kgm_graph_triple). Borrowed: built on first use. */
int     kgm_graph_adjacency(const kgm_graph *g, int by_tail, const size_t **off, const int32_t **idx);

#endif
