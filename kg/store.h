/* kg/store.h - a durable RDF store in a directory: a librdf storage in memory, made
 * persistent by a snapshot plus an fsync'd append-only journal of changes (replayed on
 * open, compacted into a new snapshot atomically). The storage is kgmeta's own "kgmeta"
 * (kg/istore.h: integer dictionary and sorted triple arrays, binary snapshot) by default,
 * or librdf's 'trees' (kept as the reference). A NULL directory gives an in-memory
 * scratch store. One thread only (librdf's world is not thread-safe).
 *
 * Every change is all or nothing: on error the store is unchanged and kgm_error() says
 * what and where (file:line:col for syntax errors). Strings and tables the store returns
 * are new unless said otherwise.
 *
 * Terms typed by people (kgm_store_add/remove) use Turtle's term syntax: <iri>,
 * prefix:local (any prefix the store knows), _:label, "literal", "lit"@en,
 * "lit"^^xsd:type, bare numbers and true/false. A _:label names a stored blank node by
 * the id shown in query results (ids are kept across reopen); each loaded document gets
 * fresh blank node ids, so the same label in two files gives two nodes.
 *
 * The directory holds a snapshot (snapshot.kgs for "kgmeta", snapshot.nt for 'trees') and
 * journal (see kg/store.c) and is locked while open: a second open of the same directory,
 * from any process, fails with KGM_ESTATE. A damaged or truncated snapshot is refused
 * (KGM_EFORMAT) and nothing is opened. */
#ifndef KGM_STORE_H
#define KGM_STORE_H

#include <stddef.h>
#include <stdio.h>

#include "graph.h"
#include "table.h"

typedef struct kgm_store kgm_store;

/* ---- life ---- */
int  kgm_store_open(kgm_store **out, const char *dir);   /* dir NULL: scratch; creates dir */
/* storage "kgmeta" or "trees"; NULL: 'trees' if dir already holds a 'trees' snapshot, else
 * "kgmeta" (what kgm_store_open does). A directory holding the other storage's snapshot is
 * refused with KGM_ESTATE. */
int  kgm_store_open_with(kgm_store **out, const char *dir, const char *storage);
const char *kgm_store_storage(const kgm_store *s);        /* "kgmeta" or "trees"; static */
void kgm_store_free(kgm_store *s);                       /* NULL is a no-op; closes cleanly */
const char *kgm_store_dir(const kgm_store *s);           /* NULL for scratch; borrowed */
size_t kgm_store_size(const kgm_store *s);               /* number of triples */
int  kgm_store_compact(kgm_store *s);                    /* journal -> new snapshot, atomically */
/* What opening found: changes replayed, and a damaged journal tail dropped (0 if none). */
void kgm_store_open_report(const kgm_store *s, size_t *replayed, size_t *dropped_bytes);

/* ---- loading ---- syntax NULL: by file extension (.ttl .n3 .nt .nq .trig .rdf/.owl/.xml),
 * else turtle|ntriples|nquads|trig|rdfxml (or ttl, nt, nq, rdf, xml). base NULL: the
 * file's URI (the working directory for a string). Prefixes declared in the text are kept
 * for output. *n_added counts new triples (duplicates are not counted). Refused with
 * nothing added: a missing, unreadable or directory path (KGM_EIO), an empty (0-byte) or
 * binary file (KGM_EFORMAT), any syntax error (KGM_ESYNTAX, file:line[:col]). A file of
 * comments or prefixes only loads 0 triples. Graph names of N-Quads/TriG are dropped
 * ('trees' has no named graphs). */
int  kgm_store_load(kgm_store *s, const char *path, const char *syntax, const char *base,
                    size_t *n_added, double *seconds);
int  kgm_store_load_string(kgm_store *s, const char *text, const char *syntax,
                           const char *base, size_t *n_added);

/* ---- prefixes ---- */
int  kgm_store_set_prefix(kgm_store *s, const char *prefix, const char *ns);
const kgm_prefix *kgm_store_prefixes(const kgm_store *s, size_t *n);   /* borrowed */
/* Expand "prefix:local" or "<iri>" to a full IRI (returns new), else NULL + error. */
char *kgm_store_expand(const kgm_store *s, const char *term);

/* ---- editing ---- journaled before the change is made. Adding a triple that is there
 * already is a no-op; removing one that is not there is KGM_ENOTFOUND. */
int  kgm_store_add(kgm_store *s, const char *subj, const char *pred, const char *obj);
int  kgm_store_remove(kgm_store *s, const char *subj, const char *pred, const char *obj);

/* ---- SPARQL ---- SELECT gives a table (sparql-marked), ASK a one-cell boolean table
 * named "ask", CONSTRUCT/DESCRIBE a table of s, p, o. Prefixes the store knows may be
 * used without PREFIX lines. DESCRIBE is done here (rasqal returns nothing for it): the
 * triples of each resource, following blank node objects. Errors: KGM_ESYNTAX with the
 * engine's message and "line N" of the text as given. kind may be NULL. */
typedef enum { KGM_QUERY_SELECT, KGM_QUERY_ASK, KGM_QUERY_GRAPH } kgm_query_kind;
int  kgm_store_query(kgm_store *s, const char *sparql, kgm_query_kind *kind, kgm_table **out);
/* kgm_store_query for the library's own SELECTs: any other form is refused (KGM_ESTATE). */
int  kgm_store_select(kgm_store *s, const char *sparql, kgm_table **out);
/* 1 when text is a complete query (braces and quotes balanced), for multi-line input. */
int  kgm_query_complete(const char *text);

/* ---- export ---- syntax "turtle" (with prefixes) or "ntriples"; written atomically.
 * sparql NULL: the whole graph, else the CONSTRUCT/DESCRIBE result. */
int  kgm_store_export(kgm_store *s, const char *path, const char *syntax, const char *sparql);

/* ---- the integer view for learning ---- kgm_store_view on "kgmeta": a borrowed graph
 * (kg/graph.h) reading the storage's own arrays and term classes, taken in O(1) (pending
 * changes are merged first); it goes stale (kgm_graph_stale) at the store's next change and
 * must be freed before the store. On 'trees' it is kgm_store_extract. Entity and relation
 * ids are the store's (order of first use, kept across reopen and removes).
 * kgm_store_extract: an owned copy built in one pass, linear in the triples (ids in order
 * of first appearance in the triples), for 'trees' and as the reference in tests. */
int  kgm_store_view(kgm_store *s, kgm_graph **out);
int  kgm_store_extract(kgm_store *s, kgm_graph **out);

#endif
