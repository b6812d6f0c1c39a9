/* src/table.h - a result table (named columns, rows of typed cells) and its writers:
 * an aligned text table, CSV (RFC 4180), TSV, and JSON. Everything tabular that kgmeta
 * prints (SPARQL results, task lists, evaluations, runs) goes through here, so every
 * output mode works everywhere.
 *
 * Cells carry their RDF kind when they come from a graph: the table writer abbreviates
 * IRIs with the given prefixes; CSV writes bare values; TSV writes RDF terms in N-Triples
 * syntax; JSON writes SPARQL 1.1 results JSON when the table is marked `sparql`, and an
 * array of objects (numbers as numbers) otherwise. The table owns copies of all strings. */
#ifndef KGM_TABLE_H
#define KGM_TABLE_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
    KGM_CELL_NULL,      /* unbound / missing */
    KGM_CELL_TEXT,      /* plain text (not from a graph) */
    KGM_CELL_NUMBER,    /* a number, stored as its text */
    KGM_CELL_IRI,
    KGM_CELL_BLANK,     /* value is the label without "_:" */
    KGM_CELL_LITERAL,   /* lang and datatype optional */
} kgm_cell_kind;

typedef struct {
    kgm_cell_kind kind;
    char *value, *lang, *datatype;
} kgm_cell;

typedef enum { KGM_MODE_TABLE, KGM_MODE_CSV, KGM_MODE_TSV, KGM_MODE_JSON } kgm_mode;

typedef struct { const char *prefix, *ns; } kgm_prefix;

enum { KGM_SPARQL_BINDINGS = 1, KGM_SPARQL_BOOLEAN = 2 };  /* kgm_table.sparql */

typedef struct kgm_table {
    size_t n_cols, n_rows, cap_rows;
    char **cols;        /* (n_cols) */
    kgm_cell *cells;    /* (n_rows, n_cols) row-major */
    int sparql;         /* JSON as SPARQL 1.1 results: KGM_SPARQL_BINDINGS or _BOOLEAN (ASK) */
} kgm_table;

kgm_table *kgm_table_new(size_t n_cols, const char *const *names);   /* returns new */
void       kgm_table_free(kgm_table *t);                             /* NULL is a no-op */
/* Appends an empty row (all cells NULL kind); returns its index or -1 (out of memory). */
long       kgm_table_add_row(kgm_table *t);
/* Sets a cell (copies the strings; lang/datatype may be NULL). 0 or KGM_ENOMEM. */
int        kgm_table_set(kgm_table *t, size_t row, size_t col, kgm_cell_kind kind,
                         const char *value, const char *lang, const char *datatype);
int        kgm_table_set_text(kgm_table *t, size_t row, size_t col, const char *text);
int        kgm_table_set_number(kgm_table *t, size_t row, size_t col, double v);
static inline kgm_cell *kgm_table_cell(const kgm_table *t, size_t row, size_t col)
{ return &t->cells[row * t->n_cols + col]; }

int  kgm_mode_parse(const char *name, kgm_mode *out);     /* "table"|"csv"|"tsv"|"json" */
const char *kgm_mode_name(kgm_mode m);
/* Writes the table; prefixes (may be NULL) abbreviate IRIs in table mode only. */
int  kgm_table_write(const kgm_table *t, FILE *out, kgm_mode mode,
                     const kgm_prefix *prefixes, size_t n_prefixes);
/* Shortest "prefix:local" for iri, or NULL when no prefix fits (returns new string). */
char *kgm_prefix_abbrev(const char *iri, const kgm_prefix *prefixes, size_t n_prefixes);

#endif
