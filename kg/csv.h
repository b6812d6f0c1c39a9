/* kg/csv.h - a small, strict reader for the CSV files that hold task examples.
 *
 * RFC 4180: fields separated by a delimiter (',' or '\t'), records ended by LF or CRLF,
 * fields optionally in double quotes, where "" stands for one quote and the delimiter and
 * line breaks are literal. The first record is the header and names the columns (unique,
 * non-empty). Empty lines are skipped; a UTF-8 byte order mark at the start is skipped.
 * It is not a general spreadsheet importer: no comment lines, no type guessing, no
 * trimming of quoted fields.
 *
 * Every cell is kept as text with its position; numbers are converted on request, for
 * named columns, and a cell that is not a finite number is refused. Errors read
 * "file:line:col: text" where col is the 1-based byte column of the cell's first byte:
 * a missing file, a ragged row, an unterminated quote, a stray quote, a NUL byte, a
 * missing column, a non-numeric / NaN / infinite cell.
 *
 * The kgm_csv owns all its strings; pointers it returns stay valid until kgm_csv_free(). */
#ifndef KGM_CSV_H
#define KGM_CSV_H

#include <stddef.h>

typedef struct kgm_csv kgm_csv;

/* Reads a whole file. delim is ',' or '\t'. *out is new (kgm_csv_free) on success and
 * NULL on error. */
int  kgm_csv_read(kgm_csv **out, const char *path, char delim);
/* Same from memory (len bytes, need not be NUL-terminated); name is used in errors. */
int  kgm_csv_parse(kgm_csv **out, const char *text, size_t len, const char *name, char delim);
void kgm_csv_free(kgm_csv *c);                         /* NULL is a no-op */

size_t      kgm_csv_rows(const kgm_csv *c);            /* data rows, header excluded */
size_t      kgm_csv_cols(const kgm_csv *c);
const char *kgm_csv_name(const kgm_csv *c, size_t col);            /* borrowed */
const char *kgm_csv_cell(const kgm_csv *c, size_t row, size_t col);/* borrowed text */
/* Index of the column called name, or KGM_ENOTFOUND with "file:1: no column ..." */
int  kgm_csv_column(const kgm_csv *c, const char *name);
/* One cell as a finite double; KGM_ESYNTAX / KGM_ENUMERIC with the cell's position. */
int  kgm_csv_number(const kgm_csv *c, size_t row, size_t col, double *out);
/* The named columns of every row as doubles, row-major: out has (rows, n_names) room.
 * On error out is partly written and the error names the first bad cell or column. */
int  kgm_csv_numbers(const kgm_csv *c, const char *const *names, size_t n_names, double *out);

#endif
