/* kg/store_internal.h - what the store's source files (store.c, store_parse.c,
 * store_query.c) share; not part of the public API. */
#ifndef KGM_STORE_INTERNAL_H
#define KGM_STORE_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include <redland.h>

#include "store.h"

struct kgm_store {
    librdf_world   *world;        /* shared by all stores of the process (reference counted) */
    librdf_storage *storage;      /* "kgmeta" (kg/istore.h) or 'trees' */
    int             kgmeta;       /* 1 when storage is "kgmeta" */
    librdf_model   *model;
    char           *dir;          /* NULL for a scratch store */
    int             journal_fd;   /* -1 for a scratch store; holds the directory's lock */
    uint64_t        generation;   /* of the snapshot the journal applies to */
    uint64_t        changes;      /* bumped by every change (add, remove, load): views taken by
                                     kgm_store_view compare it (the storage itself may be
                                     replaced by a load into an empty store) */
    kgm_prefix     *prefixes;     /* owned strings */
    size_t          n_prefixes, cap_prefixes;
    size_t          replayed, dropped_bytes;
};

/* ---- the shared world's logger (store.c) ---- Every Redland call that can fail is
 * bracketed by store_log_reset() and store_log_errors(): librdf's return codes are not
 * enough (redland-notes §3.3). */
void store_log_reset(void);
int  store_log_errors(void);
/* Records the first logged error as the kgm error (location: `file` when not NULL, else
 * the locator's URI; `line_shift` is subtracted from its line), or `fallback` when nothing
 * was logged. Returns code. */
int  store_log_fail(int code, const char *file, int line_shift, const char *fallback);

/* ---- changes (store.c) ---- */
/* Journals the triples of *changes under op ('A' add, 'R' remove), then applies them.
 * Takes *changes (may adopt it as the store's model); sets it to NULL either way. */
int store_commit(kgm_store *s, char op, librdf_model **changes);
/* Loads of at least this many triples into a "kgmeta" directory store are made durable by
 * a new snapshot instead of a journal record per triple (see store_commit). */
#define STORE_BIG_LOAD 10000
const char *store_prefix_ns(const kgm_store *s, const char *prefix, size_t len);  /* or NULL */

/* ---- parsing with raptor directly (store_parse.c) ---- */
typedef enum {
    BNODES_FRESH,   /* a document's _:labels become new store-unique ids (loading files) */
    BNODES_KEEP,    /* _:labels are kept as they are (snapshot, journal, typed terms) */
} bnode_mode;

/* Parses into `model` from fh (path names it in errors) or from text (len bytes; path,
 * if not NULL, names it in errors). The syntax is a raptor parser name. Prefixes the
 * text declares go to prefix_sink's table (memory only) when it is not NULL. On error
 * the model may hold part of the input: callers parse into a scratch model. */
int store_parse(kgm_store *s, librdf_model *model, const char *path, FILE *fh,
                const char *text, size_t len, const char *syntax, const char *base,
                bnode_mode bnodes, kgm_store *prefix_sink);
librdf_model *store_scratch_model(librdf_world *w);          /* new empty 'trees' model */
void store_free_model(librdf_model *m);                      /* and its storage */
/* Sets a prefix in memory only (no journal); 0 or KGM_ENOMEM. */
int store_set_prefix_mem(kgm_store *s, const char *prefix, const char *ns);
/* Writes m's triples as N-Triples (streamed, no copy in memory). 0 or KGM_E*. */
int store_write_ntriples(kgm_store *s, librdf_model *m, FILE *out);

#endif
