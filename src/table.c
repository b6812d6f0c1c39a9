/* src/table.c - result tables and their four writers (table, csv, tsv, json). */
#include "table.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

#define XSD "http://www.w3.org/2001/XMLSchema#"

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

kgm_table *kgm_table_new(size_t n_cols, const char *const *names)
{
    kgm_table *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n_cols = n_cols;
    t->cols = calloc(n_cols ? n_cols : 1, sizeof *t->cols);
    if (!t->cols) { free(t); return NULL; }
    for (size_t c = 0; c < n_cols; c++)
        if (!(t->cols[c] = strdup(names[c]))) { kgm_table_free(t); return NULL; }
    return t;
}

static void cell_clear(kgm_cell *c)
{
    free(c->value); free(c->lang); free(c->datatype);
    memset(c, 0, sizeof *c);
}

void kgm_table_free(kgm_table *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++) cell_clear(&t->cells[i]);
    for (size_t c = 0; c < t->n_cols; c++) free(t->cols[c]);
    free(t->cols); free(t->cells); free(t);
}

long kgm_table_add_row(kgm_table *t)
{
    if (t->n_rows == t->cap_rows) {
        size_t cap = t->cap_rows ? t->cap_rows * 2 : 16;
        kgm_cell *c = realloc(t->cells, cap * (t->n_cols ? t->n_cols : 1) * sizeof *c);
        if (!c) return -1;
        t->cells = c;
        t->cap_rows = cap;
    }
    memset(&t->cells[t->n_rows * t->n_cols], 0, t->n_cols * sizeof *t->cells);
    return (long)t->n_rows++;
}

int kgm_table_set(kgm_table *t, size_t row, size_t col, kgm_cell_kind kind,
                  const char *value, const char *lang, const char *datatype)
{
    kgm_cell *c = kgm_table_cell(t, row, col), n = { kind, NULL, NULL, NULL };
    n.value = dup_or_null(value ? value : "");
    n.lang = dup_or_null(lang && *lang ? lang : NULL);
    n.datatype = dup_or_null(datatype && *datatype ? datatype : NULL);
    if (!n.value || (lang && *lang && !n.lang) || (datatype && *datatype && !n.datatype)) {
        cell_clear(&n);
        return kgm_fail(KGM_ENOMEM, "out of memory filling a table");
    }
    cell_clear(c);
    *c = n;
    return 0;
}

int kgm_table_set_text(kgm_table *t, size_t row, size_t col, const char *text)
{
    return kgm_table_set(t, row, col, KGM_CELL_TEXT, text, NULL, NULL);
}

int kgm_table_set_number(kgm_table *t, size_t row, size_t col, double v)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.6g", v);
    return kgm_table_set(t, row, col, KGM_CELL_NUMBER, buf, NULL, NULL);
}

static const char *const MODE_NAMES[] = { "table", "csv", "tsv", "json" };

int kgm_mode_parse(const char *name, kgm_mode *out)
{
    for (int m = 0; m < 4; m++)
        if (!strcmp(name, MODE_NAMES[m])) { *out = (kgm_mode)m; return 0; }
    return kgm_fail(KGM_EINVAL, "unknown output mode '%s' (expected table, csv, tsv or json)", name);
}

const char *kgm_mode_name(kgm_mode m) { return MODE_NAMES[m]; }

char *kgm_prefix_abbrev(const char *iri, const kgm_prefix *px, size_t n)
{
    const kgm_prefix *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(px[i].ns);
        if (len <= best_len || strncmp(iri, px[i].ns, len) != 0) continue;
        /* The local part must be a plain name, else the abbreviation would not read back. */
        const char *local = iri + len;
        int ok = 1;
        for (const char *p = local; *p && ok; p++)
            ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
              || *p == '_' || *p == '-' || (*p == '.' && p[1]) || (unsigned char)*p >= 0x80;
        if (ok) { best = &px[i]; best_len = len; }
    }
    if (!best) return NULL;
    size_t lp = strlen(best->prefix), ll = strlen(iri + best_len);
    char *s = malloc(lp + ll + 2);
    if (!s) return NULL;
    memcpy(s, best->prefix, lp);
    s[lp] = ':';
    memcpy(s + lp + 1, iri + best_len, ll + 1);
    return s;
}

/* Datatypes whose literals read well bare in a table. */
static int plain_datatype(const char *dt)
{
    static const char *const plain[] = { XSD "string", XSD "integer", XSD "decimal", XSD "double",
                                         XSD "boolean", XSD "float", XSD "int", XSD "long" };
    if (!dt) return 1;
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (!strcmp(dt, plain[i])) return 1;
    return 0;
}

/* ---- text rendering of one cell per mode (returns new string) ---- */

static char *cat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = malloc(la + lb + lc + 1);
    if (!s) return NULL;
    memcpy(s, a, la); memcpy(s + la, b, lb); memcpy(s + la + lb, c, lc + 1);
    return s;
}

static char *iri_for_table(const char *iri, const kgm_prefix *px, size_t n)
{
    char *ab = kgm_prefix_abbrev(iri, px, n);
    return ab ? ab : cat3("<", iri, ">");
}

static char *render_table_cell(const kgm_cell *c, const kgm_prefix *px, size_t n)
{
    switch (c->kind) {
    case KGM_CELL_NULL:  return strdup("");
    case KGM_CELL_IRI:   return iri_for_table(c->value, px, n);
    case KGM_CELL_BLANK: return cat3("_:", c->value, "");
    case KGM_CELL_LITERAL:
        if (c->lang) return cat3(c->value, "@", c->lang);
        if (!plain_datatype(c->datatype)) {
            char *dt = iri_for_table(c->datatype, px, n);
            char *s = dt ? cat3(c->value, "^^", dt) : NULL;
            free(dt);
            return s;
        }
        return strdup(c->value);
    default:             return strdup(c->value);
    }
}

/* N-Triples escaping of a literal's lexical form. */
static void put_nt_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '"':  fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:   fputc(*s, f);
        }
    }
}

static void put_tsv_cell(FILE *f, const kgm_cell *c)
{
    switch (c->kind) {
    case KGM_CELL_NULL:  break;
    case KGM_CELL_IRI:   fprintf(f, "<%s>", c->value); break;
    case KGM_CELL_BLANK: fprintf(f, "_:%s", c->value); break;
    case KGM_CELL_LITERAL:
        fputc('"', f); put_nt_escaped(f, c->value); fputc('"', f);
        if (c->lang) fprintf(f, "@%s", c->lang);
        else if (c->datatype && strcmp(c->datatype, XSD "string")) fprintf(f, "^^<%s>", c->datatype);
        break;
    default:
        for (const char *p = c->value; *p; p++)
            fputc(*p == '\t' || *p == '\n' ? ' ' : *p, f);
    }
}

static void put_csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) { fputs(s, f); return; }
    fputc('"', f);
    for (; *s; s++) { if (*s == '"') fputc('"', f); fputc(*s, f); }
    fputc('"', f);
}

static void put_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p == '\r') fputs("\\r", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* Display width in terminal columns: UTF-8 code points (no wide-character handling). */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static int write_aligned(const kgm_table *t, FILE *f, const kgm_prefix *px, size_t npx)
{
    size_t nc = t->n_cols, nr = t->n_rows;
    char **txt = calloc(nr * nc + 1, sizeof *txt);
    size_t *w = calloc(nc + 1, sizeof *w);
    int rc = 0;
    if (!txt || !w) { rc = kgm_fail(KGM_ENOMEM, "out of memory printing a table"); goto done; }
    for (size_t c = 0; c < nc; c++) w[c] = width(t->cols[c]);
    for (size_t i = 0; i < nr * nc; i++) {
        if (!(txt[i] = render_table_cell(&t->cells[i], px, npx))) {
            rc = kgm_fail(KGM_ENOMEM, "out of memory printing a table");
            goto done;
        }
        size_t cw = width(txt[i]);
        if (cw > w[i % nc]) w[i % nc] = cw;
    }
    for (size_t c = 0; c < nc; c++) {
        if (c + 1 == nc) { fprintf(f, "%s%s\n", c ? " " : "", t->cols[c]); break; }
        fprintf(f, "%s%-*s |", c ? " " : "", (int)(w[c] + strlen(t->cols[c]) - width(t->cols[c])),
                t->cols[c]);
    }
    for (size_t c = 0; c < nc; c++) {
        for (size_t k = 0; k < w[c] + (c ? 2 : 1) - (c + 1 == nc ? 1 : 0); k++) fputc('-', f);
        fputs(c + 1 < nc ? "+" : "\n", f);
    }
    for (size_t r = 0; r < nr; r++)
        for (size_t c = 0; c < nc; c++) {
            const char *s = txt[r * nc + c];
            const kgm_cell *cell = kgm_table_cell(t, r, c);
            int right = cell->kind == KGM_CELL_NUMBER;
            int pad = (int)(w[c] + strlen(s) - width(s));
            if (c + 1 == nc && !right) fprintf(f, "%s%s\n", c ? " " : "", s);
            else fprintf(f, right ? "%s%*s%s" : "%s%-*s%s", c ? " " : "", pad, s,
                         c + 1 < nc ? " |" : "\n");
        }
    fprintf(f, "(%zu row%s)\n", nr, nr == 1 ? "" : "s");
done:
    if (txt) for (size_t i = 0; i < nr * nc; i++) free(txt[i]);
    free(txt);
    free(w);
    return rc;
}

static void write_json_sparql(const kgm_table *t, FILE *f)
{
    if (t->sparql == KGM_SPARQL_BOOLEAN && t->n_rows == 1 && t->n_cols == 1) {
        fprintf(f, "{\"head\": {}, \"boolean\": %s}\n",
                strcmp(kgm_table_cell(t, 0, 0)->value, "true") ? "false" : "true");
        return;
    }
    fputs("{\"head\": {\"vars\": [", f);
    for (size_t c = 0; c < t->n_cols; c++) { if (c) fputs(", ", f); put_json_string(f, t->cols[c]); }
    fputs("]},\n \"results\": {\"bindings\": [", f);
    for (size_t r = 0; r < t->n_rows; r++) {
        fputs(r ? ",\n  {" : "\n  {", f);
        int first = 1;
        for (size_t c = 0; c < t->n_cols; c++) {
            const kgm_cell *cell = kgm_table_cell(t, r, c);
            if (cell->kind == KGM_CELL_NULL) continue;
            if (!first) fputs(", ", f);
            first = 0;
            put_json_string(f, t->cols[c]);
            const char *type = cell->kind == KGM_CELL_IRI ? "uri"
                             : cell->kind == KGM_CELL_BLANK ? "bnode" : "literal";
            fprintf(f, ": {\"type\": \"%s\", \"value\": ", type);
            put_json_string(f, cell->value);
            if (cell->lang) { fputs(", \"xml:lang\": ", f); put_json_string(f, cell->lang); }
            if (cell->datatype) { fputs(", \"datatype\": ", f); put_json_string(f, cell->datatype); }
            fputc('}', f);
        }
        fputc('}', f);
    }
    fputs(t->n_rows ? "\n]}}\n" : "]}}\n", f);
}

static void write_json_rows(const kgm_table *t, FILE *f)
{
    fputc('[', f);
    for (size_t r = 0; r < t->n_rows; r++) {
        fputs(r ? ",\n {" : "\n {", f);
        for (size_t c = 0; c < t->n_cols; c++) {
            const kgm_cell *cell = kgm_table_cell(t, r, c);
            if (c) fputs(", ", f);
            put_json_string(f, t->cols[c]);
            fputs(": ", f);
            if (cell->kind == KGM_CELL_NULL) fputs("null", f);
            else if (cell->kind == KGM_CELL_BLANK) { fputs("\"_:", f); fputs(cell->value, f); fputc('"', f); }
            else if (cell->kind == KGM_CELL_NUMBER && strspn(cell->value, "0123456789+-.eE") == strlen(cell->value)
                     && strcmp(cell->value, "") != 0)
                fputs(cell->value, f);
            else put_json_string(f, cell->value);
        }
        fputc('}', f);
    }
    fputs(t->n_rows ? "\n]\n" : "]\n", f);
}

int kgm_table_write(const kgm_table *t, FILE *f, kgm_mode mode, const kgm_prefix *px, size_t npx)
{
    switch (mode) {
    case KGM_MODE_TABLE:
        return write_aligned(t, f, px, npx);
    case KGM_MODE_CSV:
    case KGM_MODE_TSV:
        for (size_t c = 0; c < t->n_cols; c++) {
            if (c) fputc(mode == KGM_MODE_CSV ? ',' : '\t', f);
            if (mode == KGM_MODE_CSV) put_csv_field(f, t->cols[c]);
            else fprintf(f, t->sparql ? "?%s" : "%s", t->cols[c]);
        }
        fputs(mode == KGM_MODE_CSV ? "\r\n" : "\n", f);
        for (size_t r = 0; r < t->n_rows; r++) {
            for (size_t c = 0; c < t->n_cols; c++) {
                const kgm_cell *cell = kgm_table_cell(t, r, c);
                if (c) fputc(mode == KGM_MODE_CSV ? ',' : '\t', f);
                if (mode == KGM_MODE_TSV) put_tsv_cell(f, cell);
                else if (cell->kind == KGM_CELL_BLANK) fprintf(f, "_:%s", cell->value);
                else if (cell->kind != KGM_CELL_NULL) put_csv_field(f, cell->value);
            }
            fputs(mode == KGM_MODE_CSV ? "\r\n" : "\n", f);
        }
        return 0;
    case KGM_MODE_JSON:
        if (t->sparql) write_json_sparql(t, f);
        else write_json_rows(t, f);
        return 0;
    }
    return kgm_fail(KGM_EINVAL, "unknown output mode %d", (int)mode);
}
