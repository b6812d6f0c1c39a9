/* kg/istore_core.h - internals of the "kgmeta" storage shared by kg/istore.c (dictionary,
 * triple indexes, snapshot) and kg/istore_rdf.c (the librdf factory and bulk load). Not a
 * public API: other modules use kg/istore.h.
 *
 * Triples are kept in three permutations, each an array of {a, b, c} sorted
 * lexicographically: SPO holds (s, p, o), POS holds (p, o, s), OSP holds (o, s, p). A
 * pattern with bound terms is a prefix range in one of them, found through the range of its
 * leading id (first[], so a lookup costs no search over the whole array) and a binary
 * search inside that range. Each permutation also has a small sorted delta (live adds);
 * removed base triples are listed, in SPO order, in tomb. */
#ifndef KGM_ISTORE_CORE_H
#define KGM_ISTORE_CORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct { uint32_t a, b, c; } ist_tri;

enum { IST_SPO, IST_POS, IST_OSP, IST_NPERM };

typedef struct {
    char     *bytes;            /* all terms back to back */
    size_t    n_bytes, cap_bytes;
    uint64_t *off;              /* (n + 1): term i is bytes[off[i] .. off[i+1]) */
    uint32_t  n, cap;
    uint64_t *slots;            /* open addressing: hash tag | id + 1, 0 = empty */
    size_t    n_slots;          /* power of two */
} ist_dict;

/* Term classes for the learner's integer view (kg/graph.h borrowed mode), kept as triples
 * come and go: every IRI or blank term that is the subject or object of a triple has a dense
 * entity id, every predicate of a triple with an IRI or blank object a dense relation id,
 * both in order of first use. Ids are never taken back (a removed triple leaves them). */
#define IST_LITERAL (-2)        /* ent_of of a literal term */
typedef struct {
    int32_t  *ent_of, *rel_of;  /* (cap_of) per term id: entity / relation id, -1 none;
                                   ent_of is IST_LITERAL for literal terms seen as objects */
    uint32_t  cap_of;           /* ids >= cap_of have no class yet */
    uint32_t *ent_term, *rel_term;  /* (n_ents), (n_rels): the term of each id */
    uint32_t  n_ents, n_rels, cap_ents, cap_rels;
    size_t    n_lit;            /* live triples whose object is a literal */
} ist_class;

typedef struct {
    ist_dict  dict;
    ist_class cls;
    ist_tri  *base[IST_NPERM];  /* (n_base) each, sorted */
    size_t    n_base;
    size_t   *first[IST_NPERM]; /* (n_first + 1) each: base[k][first[k][id] .. first[k][id + 1])
                                   is led by id; ids from n_first on (newer) lead nothing */
    uint32_t  n_first;
    ist_tri  *delta[IST_NPERM]; /* (n_delta) each, sorted; disjoint from live base */
    size_t    n_delta, cap_delta;
    ist_tri  *tomb;             /* (n_tomb) base triples removed, SPO order, sorted */
    size_t    n_tomb, cap_tomb;
    uint64_t  gen;              /* bumped by every change; open cursors stop when it moves */
    uint64_t  bnode_next;       /* next fresh blank label number ("b<N>") */
} ist_core;

/* ---- dictionary ---- key = kind byte + bytes (see KGM_TERM_* in istore.h) */
int64_t ist_dict_find(const ist_dict *d, const char *key, size_t len);   /* -1 if absent */
int64_t ist_dict_intern(ist_dict *d, const char *key, size_t len);       /* -1: no memory */
/* The same with the key's hash computed beforehand (ist_dict_hash), for batched lookups
 * that prefetch: ist_dict_prefetch(d, h, 0), then 1, then 2, each stage for every key of
 * a batch before the next stage, lets the cache misses of many keys overlap. */
uint64_t ist_dict_hash(const char *key, size_t len);
int64_t ist_dict_find_h(const ist_dict *d, const char *key, size_t len, uint64_t h);
int64_t ist_dict_intern_h(ist_dict *d, const char *key, size_t len, uint64_t h);
void    ist_dict_prefetch(const ist_dict *d, uint64_t h, int stage);
void    ist_dict_truncate(ist_dict *d, uint32_t n);  /* forget ids >= n (undo a failed load) */
static inline const char *ist_dict_key(const ist_dict *d, uint32_t id, size_t *len)
{
    *len = (size_t)(d->off[id + 1] - d->off[id]);
    return d->bytes + d->off[id];
}

/* ---- triples ---- */
void   ist_core_init(ist_core *c);
void   ist_core_free(ist_core *c);
size_t ist_core_size(const ist_core *c);
int    ist_core_contains(const ist_core *c, uint32_t s, uint32_t p, uint32_t o);
int    ist_core_add(ist_core *c, uint32_t s, uint32_t p, uint32_t o);     /* 0 or KGM_ENOMEM */
int    ist_core_remove(ist_core *c, uint32_t s, uint32_t p, uint32_t o);  /* 0 or KGM_ENOMEM */
int    ist_core_compact(ist_core *c);            /* merge delta and tomb into base */
/* Add many SPO triples (any order, duplicates allowed); takes nothing, sorts `add` in
 * place. All or nothing. *n_added = triples that were new. */
int    ist_core_add_bulk(ist_core *c, ist_tri *add, size_t n, size_t *n_added);
size_t ist_core_bytes(const ist_core *c);
/* Forget terms >= n_terms (undo a failed load): the dictionary entries and their classes. */
void   ist_core_truncate_terms(ist_core *c, uint32_t n_terms);

/* Sort SPO-ordered triples and drop duplicates; returns the new count. */
size_t ist_sort_unique(ist_tri *t, size_t n, ist_tri *tmp);

/* ---- cursor over one pattern ---- bound terms are ids, -1 = unbound. */
typedef struct {
    const ist_core *c;
    uint64_t gen;
    int      perm;
    ist_tri  key; int klen;      /* the bound prefix, in the permutation's order */
    size_t   pos, end;           /* in base */
    size_t   dpos, dend;         /* in delta */
} ist_cursor;

void ist_cursor_init(ist_cursor *k, const ist_core *c, int64_t s, int64_t p, int64_t o);
/* Next match as SPO; 0 at the end or once the store has changed. */
int  ist_cursor_next(ist_cursor *k, ist_tri *spo);

/* ---- snapshot ---- */
/* The owner's extra block (n_extra bytes, may be 0) is stored after the triples under the
 * same checksum. */
int  ist_snapshot_save(ist_core *c, const char *path, const void *extra, size_t n_extra);
/* Load into a fresh core (initialised by the caller); on error it is left empty. *extra is
 * new (NUL-terminated, *n_extra bytes before the NUL), NULL on error. */
int  ist_snapshot_load(ist_core *c, const char *path, char **extra, size_t *n_extra);

#endif
