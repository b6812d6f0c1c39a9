/* kg/store.h - a durable RDF store in a directory: librdf 'trees' in memory, made
 * persistent by a snapshot plus an fsync'd append-only journal of changes (replayed on
 * open, compacted into a new snapshot atomically). A NULL directory gives an in-memory
 * scratch store. One thread only (librdf's world is not thread-safe).
 *
 * Every change is all or nothing: on error the store is unchanged and kgm_error() says
 * what and where (file:line:col for syntax errors). Strings and tables the store returns
 * are new unless said otherwise.
 *
 * Terms typed by people (kgm_store_add/remove) use Turtle's term syntax: <iri>,
 * prefix:local (any prefix the store knows), _:label, "literal", "lit"@en,
 * "lit"^^xsd:type, bare numbers and true/false. */
#ifndef KGM_STORE_H
#define KGM_STORE_H

#include <stddef.h>
#include <stdio.h>

#include "graph.h"
#include "table.h"

typedef struct kgm_store kgm_store;

/* ---- life ---- */
int  kgm_store_open(kgm_store **out, const char *dir);   /* dir NULL: scratch; creates dir */
void kgm_store_free(kgm_store *s);                       /* NULL is a no-op; closes cleanly */
const char *kgm_store_dir(const kgm_store *s);           /* NULL for scratch; borrowed */
size_t kgm_store_size(const kgm_store *s);               /* number of triples */
int  kgm_store_compact(kgm_store *s);                    /* journal -> new snapshot, atomically */
/* What opening found: changes replayed, and a damaged journal tail dropped (0 if none). */
void kgm_store_open_report(const kgm_store *s, size_t *replayed, size_t *dropped_bytes);

/* ---- loading ---- syntax NULL: by file extension (.ttl .nt .nq .trig .rdf/.owl/.xml);
 * base NULL: the file's URI. Prefixes declared in the file are kept for output. */
int  kgm_store_load(kgm_store *s, const char *path, const char *syntax, const char *base,
                    size_t *n_added, double *seconds);
int  kgm_store_load_string(kgm_store *s, const char *text, const char *syntax,
                           const char *base, size_t *n_added);

/* ---- prefixes ---- */
int  kgm_store_set_prefix(kgm_store *s, const char *prefix, const char *ns);
const kgm_prefix *kgm_store_prefixes(const kgm_store *s, size_t *n);   /* borrowed */
/* Expand "prefix:local" or "<iri>" to a full IRI (returns new), else NULL + error. */
char *kgm_store_expand(const kgm_store *s, const char *term);

/* ---- editing ---- */
int  kgm_store_add(kgm_store *s, const char *subj, const char *pred, const char *obj);
int  kgm_store_remove(kgm_store *s, const char *subj, const char *pred, const char *obj);

/* ---- SPARQL ---- SELECT gives a table (sparql-marked), ASK a one-cell boolean table
 * named "ask", CONSTRUCT/DESCRIBE a table of s, p, o. */
typedef enum { KGM_QUERY_SELECT, KGM_QUERY_ASK, KGM_QUERY_GRAPH } kgm_query_kind;
int  kgm_store_query(kgm_store *s, const char *sparql, kgm_query_kind *kind, kgm_table **out);
/* 1 when text is a complete query (braces and quotes balanced), for multi-line input. */
int  kgm_query_complete(const char *text);

/* ---- export ---- syntax "turtle" (with prefixes) or "ntriples"; written atomically.
 * sparql NULL: the whole graph, else the CONSTRUCT/DESCRIBE result. */
int  kgm_store_export(kgm_store *s, const char *path, const char *syntax, const char *sparql);

/* ---- extraction for learning ---- one pass, linear in the triples. */
int  kgm_store_extract(kgm_store *s, kgm_graph **out);

#endif
