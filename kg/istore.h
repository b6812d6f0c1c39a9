/* kg/istore.h - kgmeta's own librdf storage module, "kgmeta": every term in one dictionary
 * (term <-> dense uint32 id) and every triple as three uint32 ids, indexed by three sorted
 * permutations (SPO, POS, OSP) that answer each access pattern with a binary-searched
 * range. Live adds go to a small sorted delta and removes to a tombstone list; both are
 * merged into the sorted arrays when they grow past a few thousand entries.
 *
 * It is a librdf storage: once kgm_istore_register() has run on a world,
 *     librdf_new_storage(world, "kgmeta", NULL, NULL)            an empty store
 *     librdf_new_storage(world, "kgmeta", "/path/g.kgsnap", NULL) opened from a snapshot
 *                                                    (empty if the file does not exist)
 * and models, parsers and SPARQL queries (rasqal) work on it as on 'trees'. A snapshot
 * path given as the name is where librdf_storage_sync() / librdf_model_sync() save; the
 * option "new='yes'" ignores an existing file (it is replaced at the next sync).
 *
 * What it is not: no contexts (named graphs), no transactions, no journal (kg/store.c adds
 * the journal). One world, one thread. Terms are never removed from the dictionary (a
 * removed triple leaves its terms; ids stay stable for the life of the store).
 *
 * Streams and iterators from a store stop (report end) as soon as the store changes:
 * they never read freed memory, but they do not see changes made while they are open.
 *
 * Snapshot file: an 88-byte header (magic "KGMISTOR", version 3, counts, checksums) then the
 * term offsets, the term bytes, the SPO triples, the term of each entity id then of each
 * relation id (the learner's view, see kgm_istore_view_take) and the owner's extra block
 * (opaque bytes kg/store.c uses for its generation and prefixes). Version 2 files (no
 * entity ids) are refused with a one-line error saying so. It is written to a temporary file,
 * fsync'd and renamed, so a crash leaves the old or the new file. A damaged or truncated
 * snapshot is refused with a one-line error and nothing is loaded. Host byte order.
 *
 * Errors: functions return 0 or a negative KGM_E* code and leave kgm_error(); on error
 * the store is unchanged. */
#ifndef KGM_ISTORE_H
#define KGM_ISTORE_H

#include <stddef.h>
#include <stdint.h>

#include <redland.h>

#define KGM_ISTORE_NAME "kgmeta"

/* Term kinds, the first byte of each dictionary entry. */
enum {
    KGM_TERM_IRI     = 'I',   /* bytes: the IRI */
    KGM_TERM_BLANK   = 'B',   /* bytes: the label (without "_:") */
    KGM_TERM_PLAIN   = 'L',   /* bytes: the lexical form */
    KGM_TERM_LANG    = 'G',   /* bytes: language tag, NUL, lexical form */
    KGM_TERM_TYPED   = 'T',   /* bytes: datatype IRI, NUL, lexical form */
};

/* ---- life ---- */
/* Register the "kgmeta" storage factory with w. Idempotent per world. */
int  kgm_istore_register(librdf_world *w);
/* A new empty storage (registers the factory if needed). returns new: librdf_free_storage(). */
int  kgm_istore_new(librdf_world *w, librdf_storage **out);
/* Open a snapshot; the path also becomes the storage's sync target. On error *out is NULL,
 * kgm_error() says why (KGM_EIO, KGM_EFORMAT for damaged/truncated files). */
int  kgm_istore_open(librdf_world *w, const char *path, librdf_storage **out);
/* 1 when st is a "kgmeta" storage (the other calls below fail with KGM_EINVAL otherwise). */
int  kgm_istore_is(librdf_storage *st);

/* ---- persistence ---- Write the whole store to path atomically (tmp, fsync, rename). */
int  kgm_istore_save(librdf_storage *st, const char *path);

/* The extra block written with every snapshot (copied); after opening a snapshot it holds
 * the block read back. kgm_istore_extra's result is borrowed, NUL-terminated ("" if none). */
int  kgm_istore_set_extra(librdf_storage *st, const void *data, size_t len);
const char *kgm_istore_extra(librdf_storage *st, size_t *len);

/* ---- bulk load ---- raptor statements straight into the dictionary and the triple
 * arrays; duplicates removed, indexes rebuilt once by sorting. All or nothing: on a parse
 * error (kgm_error() = file:line:col: text), an interrupt (KGM_EINTR) or out of memory,
 * nothing is added. Blank node labels of the document get fresh store-wide labels.
 * syntax: a raptor parser name ("ntriples", "turtle", ...). base NULL: the file's URI. */
int  kgm_istore_load_file(librdf_storage *st, const char *path, const char *syntax,
                          const char *base, size_t *n_added);
int  kgm_istore_load_string(librdf_storage *st, const char *text, size_t len,
                            const char *syntax, const char *base, size_t *n_added);
/* Prefixes a bulk-loaded document declares are reported to fn as they are read (also
 * when the load later fails: collect them aside and keep them on success). fn returns 0,
 * or nonzero to stop the load with KGM_ENOMEM. fn NULL: not reported. */
typedef int (*kgm_istore_prefix_fn)(void *ud, const char *prefix, const char *ns);
void kgm_istore_set_prefix_handler(librdf_storage *st, kgm_istore_prefix_fn fn, void *ud);
/* Fresh blank labels are "b<N>" with N counting up from kgm_istore_next_blank(); a blank
 * label "b<N>" added from outside moves it past N. reserve_blanks raises it to at least
 * next (a staging store set from the store it will be merged into). */
uint64_t kgm_istore_next_blank(librdf_storage *st);
void kgm_istore_reserve_blanks(librdf_storage *st, uint64_t next);

/* ---- integer view (for kg/graph.h and the learner) ---- */
/* The triples as (s, p, o) id triples sorted by s, then p, then o: n_triples * 3 uint32.
 * Merges pending changes first. Borrowed: valid until the store next changes. */
int  kgm_istore_triples(librdf_storage *st, const uint32_t **spo, size_t *n_triples);
size_t kgm_istore_n_terms(librdf_storage *st);
/* Term id's kind (KGM_TERM_*) and bytes (len bytes, not NUL-terminated; for LANG and TYPED
 * the NUL separator is inside). Borrowed: valid until the next add. NULL for a bad id. */
const char *kgm_istore_term(librdf_storage *st, uint32_t id, int *kind, size_t *len);
/* The term classes the learner's view reads (kg/graph.h borrowed mode, kg/store.h
 * kgm_store_view), kept as triples are added and removed (O(1) each, no pass over the
 * triples): every IRI or blank term that is a subject or object has a dense entity id,
 * every predicate of a triple whose object is an IRI or blank a dense relation id, in order
 * of first use; ids are never taken back, so a removed triple can leave an entity or
 * relation without triples. Saved in the snapshot, so reopening gives the same ids.
 * kgm_istore_view merges pending changes first; every pointer is borrowed and valid while
 * the store does not change, that is while *gen == gen_taken (any add, remove, load, merge
 * or close moves it on; after close, gen itself is gone: drop views before the store). */
typedef struct {
    const uint32_t *spo;            /* (n_triples * 3) sorted (s, p, o) term ids, all triples */
    size_t          n_triples;
    size_t          n_lit;          /* triples whose object is a literal */
    const int32_t  *ent_of, *rel_of;    /* (n_of) per term id: entity / relation id, or < 0 */
    size_t          n_of;               /* terms from n_of on have neither */
    const uint32_t *ent_term, *rel_term;   /* (n_ents), (n_rels): the term of each id */
    size_t          n_ents, n_rels;
    const uint64_t *gen;            /* the store's change counter */
    uint64_t        gen_taken;      /* its value when the view was taken */
} kgm_istore_view;
int  kgm_istore_view_take(librdf_storage *st, kgm_istore_view *out);
/* Id of the term with this kind (KGM_TERM_*) and bytes; -1 when absent. */
int64_t kgm_istore_find_key(librdf_storage *st, int kind, const char *bytes, size_t len);
/* Id of the term a librdf node names; -1 when the store has never seen it. */
int64_t kgm_istore_find_term(librdf_storage *st, librdf_node *node);
/* Bytes held by the store's arrays and dictionary (not the librdf node cache). */
size_t kgm_istore_bytes(librdf_storage *st);

#endif
