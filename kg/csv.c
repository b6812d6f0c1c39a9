/* kg/csv.c - the strict RFC 4180 reader: one pass over the bytes, cells unescaped into
 * one buffer, each cell remembering where it started for error messages. */
#include "csv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

typedef struct { size_t off; int line, col; } cell_pos;

struct kgm_csv {
    char     *name;       /* file name for errors */
    char     *text;       /* unescaped cells, each NUL-terminated */
    cell_pos *cells;      /* (n_rows + 1, n_cols): header first */
    size_t    n_cells, cap_cells;
    size_t    n_cols, n_rows;
};

void kgm_csv_free(kgm_csv *c)
{
    if (!c) return;
    free(c->name); free(c->text); free(c->cells);
    free(c);
}

/* ---- parsing ---- */

typedef struct {
    const char *in; size_t len, i;   /* input and read position */
    int line, col;                   /* of in[i], 1-based */
    kgm_csv *c;
    size_t w;                        /* write position in c->text */
    char delim;
} parser;

static void advance(parser *p)
{
    if (p->in[p->i] == '\n') { p->line++; p->col = 1; } else p->col++;
    p->i++;
}

static int push_cell(parser *p, size_t off, int line, int col)
{
    kgm_csv *c = p->c;
    if (c->n_cells == c->cap_cells) {
        size_t nc = c->cap_cells ? c->cap_cells * 2 : 64;
        cell_pos *q = realloc(c->cells, nc * sizeof *q);
        if (!q) return kgm_fail(KGM_ENOMEM, "out of memory reading %s", c->name);
        c->cells = q; c->cap_cells = nc;
    }
    c->cells[c->n_cells++] = (cell_pos){ off, line, col };
    return 0;
}

/* Reads one field starting at p->i; stops on the delimiter, a line end, or the end. */
static int read_field(parser *p)
{
    int line = p->line, col = p->col;
    size_t off = p->w;
    if (p->i < p->len && p->in[p->i] == '"') {
        advance(p);
        for (;;) {
            if (p->i >= p->len)
                return kgm_fail_at(KGM_ESYNTAX, p->c->name, line, col, "unterminated quoted field");
            char ch = p->in[p->i];
            if (ch == '"') {
                if (p->i + 1 < p->len && p->in[p->i + 1] == '"') {
                    p->c->text[p->w++] = '"';
                    advance(p); advance(p);
                    continue;
                }
                advance(p);
                break;
            }
            p->c->text[p->w++] = ch;
            advance(p);
        }
        if (p->i < p->len) {
            char ch = p->in[p->i];
            int ends = ch == p->delim || ch == '\n' ||
                       (ch == '\r' && p->i + 1 < p->len && p->in[p->i + 1] == '\n');
            if (!ends)
                return kgm_fail_at(KGM_ESYNTAX, p->c->name, p->line, p->col,
                                   "unexpected character after a closing quote");
        }
    } else {
        while (p->i < p->len) {
            char ch = p->in[p->i];
            if (ch == p->delim || ch == '\n') break;
            if (ch == '\r' && p->i + 1 < p->len && p->in[p->i + 1] == '\n') break;
            if (ch == '"')
                return kgm_fail_at(KGM_ESYNTAX, p->c->name, p->line, p->col,
                                   "quote inside an unquoted field");
            p->c->text[p->w++] = ch;
            advance(p);
        }
    }
    p->c->text[p->w++] = '\0';
    return push_cell(p, off, line, col);
}

/* Reads one record (at least one field); returns the number of fields or < 0. */
static long read_record(parser *p)
{
    long n = 0;
    for (;;) {
        int rc = read_field(p);
        if (rc) return rc;
        n++;
        if (p->i >= p->len) return n;
        char ch = p->in[p->i];
        if (ch == p->delim) { advance(p); continue; }
        if (ch == '\r') advance(p);     /* CRLF: read_field only stops on \r before \n */
        advance(p);                     /* the \n */
        return n;
    }
}

static int parse_all(parser *p)
{
    kgm_csv *c = p->c;
    if (memchr(p->in, '\0', p->len)) {
        const char *z = memchr(p->in, '\0', p->len);
        int line = 1;
        for (const char *q = p->in; q < z; q++) line += *q == '\n';
        return kgm_fail_at(KGM_ESYNTAX, c->name, line, 0, "NUL byte: not a text CSV file");
    }
    if (p->len >= 3 && memcmp(p->in, "\xEF\xBB\xBF", 3) == 0) p->i = 3;
    int have_header = 0;
    while (p->i < p->len) {
        if (p->in[p->i] == '\n' || (p->in[p->i] == '\r' && p->i + 1 < p->len && p->in[p->i + 1] == '\n')) {
            if (p->in[p->i] == '\r') advance(p);
            advance(p);                 /* an empty line: skipped */
            continue;
        }
        int line = p->line;
        long n = read_record(p);
        if (n < 0) return (int)n;
        if (!have_header) {
            c->n_cols = (size_t)n;
            have_header = 1;
            continue;
        }
        if ((size_t)n != c->n_cols)
            return kgm_fail_at(KGM_ESYNTAX, c->name, line, 0,
                               "ragged row: %ld fields where the header has %zu", n, c->n_cols);
        c->n_rows++;
    }
    if (!have_header) return kgm_fail_at(KGM_ESYNTAX, c->name, 1, 0, "empty file: no header row");
    for (size_t j = 0; j < c->n_cols; j++) {
        const char *name = c->text + c->cells[j].off;
        if (!*name)
            return kgm_fail_at(KGM_ESYNTAX, c->name, c->cells[j].line, c->cells[j].col,
                               "empty column name");
        for (size_t k = 0; k < j; k++)
            if (!strcmp(name, c->text + c->cells[k].off))
                return kgm_fail_at(KGM_ESYNTAX, c->name, c->cells[j].line, c->cells[j].col,
                                   "duplicate column name '%s'", name);
    }
    return 0;
}

int kgm_csv_parse(kgm_csv **out, const char *text, size_t len, const char *name, char delim)
{
    *out = NULL;
    if (delim != ',' && delim != '\t' && delim != ';')
        return kgm_fail(KGM_EINVAL, "unsupported CSV delimiter '%c'", delim);
    kgm_csv *c = calloc(1, sizeof *c);
    if (!c) return kgm_fail(KGM_ENOMEM, "out of memory reading %s", name);
    c->name = strdup(name ? name : "<csv>");
    c->text = malloc(len + 1);           /* unescaped text never outgrows the input */
    if (!c->name || !c->text) { kgm_csv_free(c); return kgm_fail(KGM_ENOMEM, "out of memory reading %s", name); }
    parser p = { text, len, 0, 1, 1, c, 0, delim };
    int rc = parse_all(&p);
    if (rc) { kgm_csv_free(c); return rc; }
    *out = c;
    return 0;
}

int kgm_csv_read(kgm_csv **out, const char *path, char delim)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return kgm_fail_at(KGM_EIO, path, 0, 0, "cannot open: %s", strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 65536;
            char *q = realloc(buf, nc);
            if (!q) { free(buf); fclose(f); return kgm_fail(KGM_ENOMEM, "out of memory reading %s", path); }
            buf = q; cap = nc;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); return kgm_fail_at(KGM_EIO, path, 0, 0, "read error"); }
    int rc = kgm_csv_parse(out, buf, len, path, delim);
    free(buf);
    return rc;
}

/* ---- queries ---- */

size_t kgm_csv_rows(const kgm_csv *c) { return c->n_rows; }
size_t kgm_csv_cols(const kgm_csv *c) { return c->n_cols; }

const char *kgm_csv_name(const kgm_csv *c, size_t col)
{
    return col < c->n_cols ? c->text + c->cells[col].off : NULL;
}

const char *kgm_csv_cell(const kgm_csv *c, size_t row, size_t col)
{
    if (row >= c->n_rows || col >= c->n_cols) return NULL;
    return c->text + c->cells[(row + 1) * c->n_cols + col].off;
}

int kgm_csv_column(const kgm_csv *c, const char *name)
{
    for (size_t j = 0; j < c->n_cols; j++)
        if (!strcmp(name, c->text + c->cells[j].off)) return (int)j;
    return kgm_fail_at(KGM_ENOTFOUND, c->name, 1, 0, "no column '%s' in the header", name);
}

int kgm_csv_number(const kgm_csv *c, size_t row, size_t col, double *out)
{
    if (row >= c->n_rows || col >= c->n_cols)
        return kgm_fail(KGM_EINVAL, "%s: no cell at row %zu, column %zu", c->name, row, col);
    const cell_pos *cp = &c->cells[(row + 1) * c->n_cols + col];
    const char *s = c->text + cp->off;
    const char *p = s;
    while (*p == ' ') p++;
    if (!*p)
        return kgm_fail_at(KGM_ESYNTAX, c->name, cp->line, cp->col, "empty cell in column '%s'",
                           kgm_csv_name(c, col));
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    while (*end == ' ') end++;
    if (end == p || *end)
        return kgm_fail_at(KGM_ESYNTAX, c->name, cp->line, cp->col,
                           "not a number in column '%s': '%.40s'", kgm_csv_name(c, col), s);
    if (!isfinite(v))
        return kgm_fail_at(KGM_ENUMERIC, c->name, cp->line, cp->col,
                           "not a finite number in column '%s': '%.40s'", kgm_csv_name(c, col), s);
    *out = v;
    return 0;
}

int kgm_csv_numbers(const kgm_csv *c, const char *const *names, size_t n_names, double *out)
{
    int idx[64];
    if (n_names > 64) return kgm_fail(KGM_EINVAL, "too many columns requested (%zu)", n_names);
    for (size_t k = 0; k < n_names; k++) {
        int j = kgm_csv_column(c, names[k]);
        if (j < 0) return j;
        idx[k] = j;
    }
    for (size_t r = 0; r < c->n_rows; r++)
        for (size_t k = 0; k < n_names; k++) {
            int rc = kgm_csv_number(c, r, (size_t)idx[k], &out[r * n_names + k]);
            if (rc) return rc;
        }
    return 0;
}
