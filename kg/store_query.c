/* kg/store_query.c - reading the store: SPARQL through rasqal (via librdf), DESCRIBE done
 * here (rasqal 0.9.33 parses it but returns no triples), export, and extraction of the
 * integer view for learning. Nothing here changes the graph. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "atomicfile.h"
#include "error.h"
#include "interrupt.h"
#include "istore.h"
#include "store_internal.h"

#define XSD "http://www.w3.org/2001/XMLSchema#"

/* ---- query text ---- */

/* Length of the keyword at p when it is `word` (any case) standing alone, else 0. */
static size_t keyword_at(const char *p, const char *word)
{
    size_t n = strlen(word);
    if (strncasecmp(p, word, n) != 0) return 0;
    return isalnum((unsigned char)p[n]) || p[n] == '_' ? 0 : n;
}

/* Skips spaces and # comments. */
static const char *skip_space(const char *p)
{
    for (;;) {
        while (isspace((unsigned char)*p)) p++;
        if (*p != '#') return p;
        while (*p && *p != '\n') p++;
    }
}

/* Does the query's prologue declare `prefix`? (A textual check, enough to avoid
 * declaring a prefix twice; rasqal reports anything odder.) */
static int declares_prefix(const char *q, const char *prefix)
{
    size_t lp = strlen(prefix);
    for (const char *p = q; (p = strcasestr(p, "prefix")); p += 6) {
        if (p > q && (isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == ':')) continue;
        const char *n = skip_space(p + 6);
        if (strncmp(n, prefix, lp) == 0 && n[lp] == ':') return 1;
    }
    return 0;
}

/* The query with PREFIX lines for the store's prefixes it does not declare; *added gets
 * the number of lines put in front (to correct the engine's line numbers). */
static char *with_prefixes(const kgm_store *s, const char *q, int *added)
{
    size_t cap = strlen(q) + 1;
    for (size_t i = 0; i < s->n_prefixes; i++) cap += strlen(s->prefixes[i].prefix) + strlen(s->prefixes[i].ns) + 16;
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t n = 0;
    *added = 0;
    for (size_t i = 0; i < s->n_prefixes; i++) {
        if (declares_prefix(q, s->prefixes[i].prefix)) continue;
        n += (size_t)snprintf(out + n, cap - n, "PREFIX %s: <%s>\n", s->prefixes[i].prefix, s->prefixes[i].ns);
        (*added)++;
    }
    snprintf(out + n, cap - n, "%s", q);
    return out;
}

/* If p starts a comment, a string or an IRI, returns the first byte after it, else p.
 * An unterminated string returns NULL; a short string broken by a newline sets *broken
 * (the engine reports it) and ends at the newline. */
static const char *skip_opaque(const char *p, int *broken)
{
    if (*p == '#') {
        while (*p && *p != '\n') p++;
        return p;
    }
    if (*p == '"' || *p == '\'') {
        char q = *p;
        int long_form = p[1] == q && p[2] == q;
        for (p += long_form ? 3 : 1;; p++) {
            if (!*p) return NULL;
            if (*p == '\\' && p[1]) { p++; continue; }
            if (!long_form && *p == '\n') { *broken = 1; return p; }
            if (*p == q && (!long_form || (p[1] == q && p[2] == q))) return p + (long_form ? 3 : 1);
        }
    }
    if (*p == '<') {                     /* an IRI has no spaces up to '>'; else it is less-than */
        const char *e = p + 1;
        while (*e && *e != '>' && !isspace((unsigned char)*e) && *e != '<') e++;
        if (*e == '>') return e + 1;
    }
    return p;
}

int kgm_query_complete(const char *text)
{
    int depth = 0, broken = 0;
    for (const char *p = text; *p;) {
        const char *after = skip_opaque(p, &broken);
        if (!after) return 0;
        if (broken) return 1;
        if (after != p) { p = after; continue; }
        if (*p == '{') depth++;
        else if (*p == '}') depth--;
        p++;
    }
    return depth <= 0;
}

static int name_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '-' || c == ':'; }

/* rasqal 0.9.33 answers VALUES joined with any other pattern wrongly and writes past a
 * buffer doing it (valgrind: "Invalid write of size 8" in roqet itself, so not ours), which
 * can abort the process later. A user's query with the keyword is refused instead. */
static int refuse_values(const char *q)
{
    int broken = 0;
    for (const char *p = q; p && *p;) {
        const char *after = skip_opaque(p, &broken);
        if (after != p) { p = after; continue; }
        int starts_word = p == q || !(name_char(p[-1]) || p[-1] == '?' || p[-1] == '$');
        if (starts_word && keyword_at(p, "values") && !name_char(p[6]))
            return kgm_fail(KGM_ENOTSUP, "VALUES is not supported (rasqal 0.9.33 joins it wrongly "
                            "and corrupts memory): write FILTER (?x IN (...)) instead");
        p++;
    }
    return 0;
}

/* ---- nodes to cells ---- */

static int set_cell(kgm_table *t, size_t row, size_t col, librdf_node *n)
{
    if (!n) return 0;
    if (librdf_node_is_resource(n))
        return kgm_table_set(t, row, col, KGM_CELL_IRI, (const char *)librdf_uri_as_string(librdf_node_get_uri(n)), NULL, NULL);
    if (librdf_node_is_blank(n))
        return kgm_table_set(t, row, col, KGM_CELL_BLANK, (const char *)librdf_node_get_blank_identifier(n), NULL, NULL);
    librdf_uri *dt = librdf_node_get_literal_value_datatype_uri(n);
    return kgm_table_set(t, row, col, KGM_CELL_LITERAL, (const char *)librdf_node_get_literal_value(n),
                         librdf_node_get_literal_value_language(n),
                         dt ? (const char *)librdf_uri_as_string(dt) : NULL);
}

static int table_from_bindings(librdf_query_results *r, kgm_table **out)
{
    int nb = librdf_query_results_get_bindings_count(r);
    if (nb < 0) return kgm_fail(KGM_ESTATE, "query results without bindings");
    const char **names = calloc((size_t)nb + 1, sizeof *names);
    if (!names) return kgm_fail(KGM_ENOMEM, "out of memory");
    for (int i = 0; i < nb; i++) names[i] = librdf_query_results_get_binding_name(r, i);
    kgm_table *t = kgm_table_new((size_t)nb, names);
    free(names);
    if (!t) return kgm_fail(KGM_ENOMEM, "out of memory");
    t->sparql = KGM_SPARQL_BINDINGS;
    int rc = 0;
    for (; !rc && !librdf_query_results_finished(r); librdf_query_results_next(r)) {
        long row = kgm_table_add_row(t);
        if (row < 0) { rc = kgm_fail(KGM_ENOMEM, "out of memory"); break; }
        for (int i = 0; !rc && i < nb; i++) {
            librdf_node *v = librdf_query_results_get_binding_value(r, i);
            if (set_cell(t, (size_t)row, (size_t)i, v)) rc = kgm_fail(KGM_ENOMEM, "out of memory");
            if (v) librdf_free_node(v);
        }
        if (!rc && kgm_interrupted()) rc = kgm_fail(KGM_EINTR, "interrupted after %ld rows", row + 1);
    }
    if (rc) { kgm_table_free(t); return rc; }
    *out = t;
    return 0;
}

static int table_from_model(librdf_model *m, kgm_table **out)
{
    const char *names[] = { "s", "p", "o" };
    kgm_table *t = kgm_table_new(3, names);
    if (!t) return kgm_fail(KGM_ENOMEM, "out of memory");
    t->sparql = KGM_SPARQL_BINDINGS;
    librdf_stream *st = librdf_model_as_stream(m);
    int rc = st ? 0 : kgm_fail(KGM_ENOMEM, "cannot iterate a model");
    for (; !rc && !librdf_stream_end(st); librdf_stream_next(st)) {
        librdf_statement *x = librdf_stream_get_object(st);
        long row = kgm_table_add_row(t);
        if (row < 0 || set_cell(t, (size_t)row, 0, librdf_statement_get_subject(x))
            || set_cell(t, (size_t)row, 1, librdf_statement_get_predicate(x))
            || set_cell(t, (size_t)row, 2, librdf_statement_get_object(x)))
            rc = kgm_fail(KGM_ENOMEM, "out of memory");
    }
    if (st) librdf_free_stream(st);
    if (rc) { kgm_table_free(t); return rc; }
    *out = t;
    return 0;
}

/* ---- running a query ---- */

typedef struct {
    librdf_query *q;
    librdf_query_results *r;
} run;

static void run_free(run *x)
{
    if (x->r) librdf_free_query_results(x->r);
    if (x->q) librdf_free_query(x->q);
    *x = (run){ 0 };
}

/* Executes text (already with prefixes); line_shift corrects error lines. */
static int run_query(kgm_store *s, const char *text, int line_shift, run *x)
{
    *x = (run){ 0 };
    store_log_reset();
    x->q = librdf_new_query(s->world, "sparql", NULL, (const unsigned char *)text, NULL);
    if (x->q && !store_log_errors()) x->r = librdf_query_execute(x->q, s->model);
    if (!x->r || store_log_errors()) {
        run_free(x);
        return store_log_fail(KGM_ESYNTAX, NULL, line_shift, "the query failed without a message from the engine");
    }
    return 0;
}

/* Adds every triple about node n to out, following blank objects (a concise description). */
static int describe_node(kgm_store *s, librdf_node *n, librdf_model *out, int depth)
{
    librdf_statement *pattern = librdf_new_statement_from_nodes(s->world, librdf_new_node_from_node(n), NULL, NULL);
    if (!pattern) return kgm_fail(KGM_ENOMEM, "out of memory");
    librdf_stream *st = librdf_model_find_statements(s->model, pattern);
    int rc = st ? 0 : kgm_fail(KGM_ENOMEM, "cannot search the store");
    for (; !rc && !librdf_stream_end(st); librdf_stream_next(st)) {
        librdf_statement *x = librdf_stream_get_object(st);
        if (librdf_model_contains_statement(out, x)) continue;   /* also stops blank cycles */
        if (librdf_model_add_statement(out, x)) rc = kgm_fail(KGM_ENOMEM, "out of memory");
        librdf_node *o = librdf_statement_get_object(x);
        if (!rc && librdf_node_is_blank(o) && depth < 64) rc = describe_node(s, o, out, depth + 1);
    }
    if (st) librdf_free_stream(st);
    librdf_free_statement(pattern);
    return rc;
}

/* Describes every IRI or blank value bound in the results' rows (all columns). */
static int describe_results(kgm_store *s, librdf_query_results *r, librdf_model *out)
{
    int nb = librdf_query_results_get_bindings_count(r), rc = 0;
    for (; !rc && !librdf_query_results_finished(r); librdf_query_results_next(r)) {
        for (int i = 0; !rc && i < nb; i++) {
            librdf_node *v = librdf_query_results_get_binding_value(r, i);
            if (v && !librdf_node_is_literal(v)) rc = describe_node(s, v, out, 0);
            if (v) librdf_free_node(v);
        }
    }
    return rc;
}

/* DESCRIBE t1 t2 ... [WHERE] {...}: a SELECT finds the resources (variables from the
 * pattern, constants through VALUES), then their triples are collected here. `prologue`
 * is the text before DESCRIBE, `terms` what follows it. */
static int describe(kgm_store *s, const char *full, const char *kw, int line_shift, librdf_model *out)
{
    const char *p = skip_space(kw + strlen("describe"));
    size_t cap = strlen(full) * 2 + 64;
    char *vars = calloc(1, cap), *consts = calloc(1, cap);
    if (!vars || !consts) { free(vars); free(consts); return kgm_fail(KGM_ENOMEM, "out of memory"); }
    size_t nv = 0, nc = 0;
    while (*p && *p != '{' && !keyword_at(p, "where") && !keyword_at(p, "from")) {
        const char *e = p;
        while (*e && !isspace((unsigned char)*e) && *e != '{') e++;
        int is_var = *p == '?' || *p == '$' || *p == '*';
        nv += is_var ? (size_t)snprintf(vars + nv, cap - nv, "%.*s ", (int)(e - p), p) : 0;
        nc += is_var ? 0 : (size_t)snprintf(consts + nc, cap - nc, "%.*s ", (int)(e - p), p);
        p = skip_space(e);
    }
    int rc = 0;
    size_t qcap = strlen(full) + cap + 128;
    char *q = malloc(qcap);
    if (!q) rc = kgm_fail(KGM_ENOMEM, "out of memory");
    if (!rc && nv) {
        if (!*p) rc = kgm_fail(KGM_ESYNTAX, "DESCRIBE with variables needs a WHERE pattern");
        else snprintf(q, qcap, "%.*sSELECT %s %s", (int)(kw - full), full, vars, p);
    }
    run x;
    if (!rc && nv && !(rc = run_query(s, q, line_shift, &x))) { rc = describe_results(s, x.r, out); run_free(&x); }
    if (!rc && nc) {
        snprintf(q, qcap, "%.*sSELECT ?kgm_describe WHERE { VALUES ?kgm_describe { %s } }", (int)(kw - full), full, consts);
        if (!(rc = run_query(s, q, line_shift, &x))) { rc = describe_results(s, x.r, out); run_free(&x); }
    }
    free(q);
    free(vars);
    free(consts);
    return rc;
}

/* Start of the query form (SELECT, ASK, ...) after the prologue's PREFIX and BASE lines. */
static const char *query_form(const char *q)
{
    const char *p = skip_space(q);
    for (;;) {
        size_t k = keyword_at(p, "prefix") ? 6 : keyword_at(p, "base") ? 4 : 0;
        if (!k) return p;
        const char *gt = strchr(p, '>');
        if (!gt) return p;
        p = skip_space(gt + 1);
    }
}

/* Runs a CONSTRUCT or DESCRIBE into a new scratch model. */
static int graph_query(kgm_store *s, const char *text, int line_shift, librdf_model **out)
{
    librdf_model *m = store_scratch_model(s->world);
    if (!m) return kgm_fail(KGM_ENOMEM, "cannot create a model");
    const char *form = query_form(text);
    int rc = 0;
    if (keyword_at(form, "describe")) {
        rc = describe(s, text, form, line_shift, m);
    } else {
        run x;
        rc = run_query(s, text, line_shift, &x);
        if (!rc && !librdf_query_results_is_graph(x.r))
            rc = kgm_fail(KGM_EINVAL, "not a CONSTRUCT or DESCRIBE query");
        librdf_stream *st = rc ? NULL : librdf_query_results_as_stream(x.r);
        if (!rc && !st && store_log_errors()) rc = store_log_fail(KGM_ESYNTAX, NULL, line_shift, "query failed");
        if (st) {
            if (librdf_model_add_statements(m, st)) rc = kgm_fail(KGM_ENOMEM, "out of memory");
            librdf_free_stream(st);
        }
        run_free(&x);
    }
    if (rc) { store_free_model(m); return rc; }
    *out = m;
    return 0;
}

int kgm_store_select(kgm_store *s, const char *sparql, kgm_table **out)
{
    kgm_query_kind kind;
    int rc = kgm_store_query(s, sparql, &kind, out);
    if (rc || kind == KGM_QUERY_SELECT) return rc;
    kgm_table_free(*out);
    *out = NULL;
    return kgm_fail(KGM_ESTATE, "internal query gave no table: %s", sparql);
}

int kgm_store_query(kgm_store *s, const char *sparql, kgm_query_kind *kind, kgm_table **out)
{
    *out = NULL;
    int rc = refuse_values(sparql);
    if (rc) return rc;
    int shift;
    char *text = with_prefixes(s, sparql, &shift);
    if (!text) return kgm_fail(KGM_ENOMEM, "out of memory");
    const char *form = query_form(text);
    if (keyword_at(form, "describe") || keyword_at(form, "construct")) {
        librdf_model *m;
        rc = graph_query(s, text, shift, &m);
        if (!rc) { rc = table_from_model(m, out); store_free_model(m); }
        if (!rc && kind) *kind = KGM_QUERY_GRAPH;
        free(text);
        return rc;
    }
    run x;
    rc = run_query(s, text, shift, &x);
    free(text);
    if (rc) return rc;
    if (librdf_query_results_is_boolean(x.r)) {
        int b = librdf_query_results_get_boolean(x.r);
        const char *name = "ask";
        kgm_table *t = kgm_table_new(1, &name);
        rc = b < 0 ? store_log_fail(KGM_ESYNTAX, NULL, shift, "ASK failed")
           : !t || kgm_table_add_row(t) < 0 ? kgm_fail(KGM_ENOMEM, "out of memory")
           : kgm_table_set(t, 0, 0, KGM_CELL_LITERAL, b ? "true" : "false", NULL, XSD "boolean");
        if (t) t->sparql = KGM_SPARQL_BOOLEAN;
        if (rc) kgm_table_free(t); else *out = t;
        if (!rc && kind) *kind = KGM_QUERY_ASK;
    } else if (librdf_query_results_is_bindings(x.r)) {
        rc = table_from_bindings(x.r, out);
        if (!rc && store_log_errors()) {
            kgm_table_free(*out);
            *out = NULL;
            rc = store_log_fail(KGM_ESYNTAX, NULL, shift, "query failed");
        }
        if (!rc && kind) *kind = KGM_QUERY_SELECT;
    } else {
        rc = kgm_fail(KGM_ENOTSUP, "unsupported query form");
    }
    run_free(&x);
    return rc;
}

/* ---- export ---- */

typedef struct {
    kgm_store *s;
    librdf_model *m;
    librdf_serializer *ser;      /* Turtle; NULL for N-Triples */
} export_job;

static int write_export(FILE *f, void *ctx)
{
    export_job *j = ctx;
    if (!j->ser) return store_write_ntriples(j->s, j->m, f);
    store_log_reset();
    int rc = librdf_serializer_serialize_model_to_file_handle(j->ser, f, NULL, j->m);
    return rc || store_log_errors() ? store_log_fail(KGM_EIO, NULL, 0, "the Turtle serializer failed") : 0;
}

int kgm_store_export(kgm_store *s, const char *path, const char *syntax, const char *sparql)
{
    const char *name = NULL;
    if (!syntax) {
        const char *dot = strrchr(path, '.');
        syntax = dot && strcasecmp(dot, ".nt") == 0 ? "ntriples" : "turtle";
    }
    if (!strcasecmp(syntax, "turtle") || !strcasecmp(syntax, "ttl")) name = "turtle";
    else if (!strcasecmp(syntax, "ntriples") || !strcasecmp(syntax, "nt")) name = "ntriples";
    else return kgm_fail(KGM_EINVAL, "cannot export as '%s' (turtle or ntriples)", syntax);

    librdf_model *m = s->model, *result = NULL;
    if (sparql) {
        int rc = refuse_values(sparql);
        if (rc) return rc;
        int shift;
        char *text = with_prefixes(s, sparql, &shift);
        if (!text) return kgm_fail(KGM_ENOMEM, "out of memory");
        const char *form = query_form(text);
        rc = keyword_at(form, "describe") || keyword_at(form, "construct")
               ? graph_query(s, text, shift, &result)
               : kgm_fail(KGM_EINVAL, "only a CONSTRUCT or DESCRIBE result can be exported");
        free(text);
        if (rc) return rc;
        m = result;
    }
    export_job job = { s, m, NULL };
    int rc = 0;
    if (name[0] == 't') {                /* Turtle: librdf's serializer, with our prefixes */
        job.ser = librdf_new_serializer(s->world, name, NULL, NULL);
        if (!job.ser) rc = kgm_fail(KGM_ENOMEM, "cannot create a Turtle serializer");
        for (size_t i = 0; !rc && i < s->n_prefixes; i++) {
            librdf_uri *u = librdf_new_uri(s->world, (const unsigned char *)s->prefixes[i].ns);
            if (!u) { rc = kgm_fail(KGM_ENOMEM, "out of memory"); break; }
            librdf_serializer_set_namespace(job.ser, u, s->prefixes[i].prefix[0] ? s->prefixes[i].prefix : NULL);
            librdf_free_uri(u);
        }
    }
    if (!rc) rc = kgm_write_atomic(path, write_export, &job, KGM_ATOMIC_DURABLE);
    if (job.ser) librdf_free_serializer(job.ser);
    store_free_model(result);
    return rc;
}

/* ---- extraction ---- */

static int numeric_datatype(const char *dt)
{
    static const char *const names[] = {
        "integer", "decimal", "double", "float", "int", "long", "short", "byte",
        "nonNegativeInteger", "nonPositiveInteger", "negativeInteger", "positiveInteger",
        "unsignedLong", "unsignedInt", "unsignedShort", "unsignedByte",
    };
    if (strncmp(dt, XSD, strlen(XSD)) != 0) return 0;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(dt + strlen(XSD), names[i]) == 0) return 1;
    return 0;
}

/* The literal's number when it is numeric (xsd numeric type, or a plain literal that is a
 * whole number text), else 0. */
static int literal_number(librdf_node *n, double *v)
{
    librdf_uri *dt = librdf_node_get_literal_value_datatype_uri(n);
    if (dt ? !numeric_datatype((const char *)librdf_uri_as_string(dt)) : librdf_node_get_literal_value_language(n) != NULL)
        return 0;
    const char *text = (const char *)librdf_node_get_literal_value(n);
    char *end;
    *v = strtod(text, &end);
    return end != text && *end == 0 && isfinite(*v);
}

/* Entity id of an IRI or blank node (blank as "_:label"); -1 when out of memory. */
static int32_t entity_of(kgm_graph *g, librdf_node *n, char **buf, size_t *cap)
{
    if (librdf_node_is_resource(n)) return kgm_graph_entity(g, (const char *)librdf_uri_as_string(librdf_node_get_uri(n)));
    size_t len;
    const unsigned char *id = librdf_node_get_counted_blank_identifier(n, &len);
    if (len + 3 > *cap) {
        char *p = realloc(*buf, len + 64);
        if (!p) return -1;
        *buf = p;
        *cap = len + 64;
    }
    memcpy(*buf, "_:", 2);
    memcpy(*buf + 2, id, len);
    (*buf)[len + 2] = 0;
    return kgm_graph_entity(g, *buf);
}

/* ---- extraction straight from the "kgmeta" arrays ---- One pass over the sorted SPO id
 * triples; each dictionary id becomes a graph entity or relation once (cached by id). */

typedef struct {
    librdf_storage *st;
    kgm_graph *g;
    int32_t   *ent, *rel;        /* (n_terms) graph id per dictionary id, -1 = not yet */
    char      *buf;              /* NUL-terminated copy of a term for the graph's maps */
    size_t     cap;
} id_view;

/* Term id's bytes NUL-terminated in v->buf, after `prefix`; NULL when out of memory. */
static const char *term_text(id_view *v, uint32_t id, const char *prefix, int *kind, size_t *len)
{
    const char *b = kgm_istore_term(v->st, id, kind, len);
    size_t lp = strlen(prefix);
    if (!b) return NULL;
    if (lp + *len + 1 > v->cap) {
        char *p = realloc(v->buf, lp + *len + 64);
        if (!p) return NULL;
        v->buf = p;
        v->cap = lp + *len + 64;
    }
    memcpy(v->buf, prefix, lp);
    memcpy(v->buf + lp, b, *len);
    v->buf[lp + *len] = 0;
    return v->buf;
}

static int32_t id_entity(id_view *v, uint32_t id)
{
    if (v->ent[id] >= 0) return v->ent[id];
    int kind;
    size_t len;
    const char *b = kgm_istore_term(v->st, id, &kind, &len);
    const char *name = b ? term_text(v, id, kind == KGM_TERM_BLANK ? "_:" : "", &kind, &len) : NULL;
    return name ? (v->ent[id] = kgm_graph_entity(v->g, name)) : -1;
}

static int32_t id_relation(id_view *v, uint32_t id)
{
    if (v->rel[id] >= 0) return v->rel[id];
    int kind;
    size_t len;
    const char *name = term_text(v, id, "", &kind, &len);
    return name ? (v->rel[id] = kgm_graph_relation(v->g, name)) : -1;
}

/* The number of a literal term (numeric xsd type, or plain whole-number text), as
 * literal_number does for librdf nodes. */
static int id_number(id_view *v, uint32_t id, int kind, double *x)
{
    size_t len;
    if (kind == KGM_TERM_LANG) return 0;
    const char *t = term_text(v, id, "", &kind, &len);
    if (!t) return 0;
    const char *lex = t;
    if (kind == KGM_TERM_TYPED) {
        if (!numeric_datatype(t)) return 0;       /* t = datatype NUL lexical form */
        lex = t + strlen(t) + 1;
    }
    char *end;
    *x = strtod(lex, &end);
    return end != lex && *end == 0 && isfinite(*x);
}

static int extract_ids(kgm_store *s, kgm_graph *g)
{
    const uint32_t *spo;
    size_t n;
    int rc = kgm_istore_triples(s->storage, &spo, &n);
    if (rc) return rc;
    size_t nt = kgm_istore_n_terms(s->storage);
    id_view v = { .st = s->storage, .g = g, .ent = malloc((nt ? nt : 1) * sizeof *v.ent),
                  .rel = malloc((nt ? nt : 1) * sizeof *v.rel) };
    if (!v.ent || !v.rel) rc = kgm_fail(KGM_ENOMEM, "out of memory extracting the graph");
    for (size_t i = 0; !rc && i < nt; i++) v.ent[i] = v.rel[i] = -1;
    for (size_t i = 0; !rc && i < n; i++) {
        const uint32_t *t = spo + 3 * i;
        int kind;
        size_t len;
        kgm_istore_term(s->storage, t[2], &kind, &len);
        int32_t h = id_entity(&v, t[0]);
        double x;
        if (h < 0) rc = kgm_fail(KGM_ENOMEM, "out of memory extracting the graph");
        else if (kind == KGM_TERM_IRI || kind == KGM_TERM_BLANK) {
            int32_t r = id_relation(&v, t[1]), o = id_entity(&v, t[2]);
            rc = r < 0 || o < 0 ? kgm_fail(KGM_ENOMEM, "out of memory extracting the graph") : kgm_graph_add(g, h, r, o);
        } else if (id_number(&v, t[2], kind, &x)) {
            size_t plen;
            const char *pred = term_text(&v, t[1], "", &kind, &plen);
            rc = pred ? kgm_graph_add_attr(g, h, pred, x) : kgm_fail(KGM_ENOMEM, "out of memory");
        }
        if (!rc && (i & 0xffff) == 0xffff && kgm_interrupted()) rc = kgm_fail(KGM_EINTR, "extraction interrupted");
    }
    free(v.ent);
    free(v.rel);
    free(v.buf);
    return rc;
}

/* ---- the borrowed view: the "kgmeta" storage's own arrays ---- */

static const char *src_term(void *ctx, uint32_t id, int *blank, size_t *len)
{
    int kind;
    const char *b = kgm_istore_term(ctx, id, &kind, len);
    *blank = kind == KGM_TERM_BLANK;
    return b;
}

static int64_t src_find(void *ctx, const char *bytes, size_t len, int blank)
{
    return kgm_istore_find_key(ctx, blank ? KGM_TERM_BLANK : KGM_TERM_IRI, bytes, len);
}

static int src_number(void *ctx, uint32_t id, double *x)
{
    id_view v = { .st = ctx };
    int kind;
    size_t len;
    int ok = kgm_istore_term(ctx, id, &kind, &len) && id_number(&v, id, kind, x);
    free(v.buf);
    return ok;
}

int kgm_store_view(kgm_store *s, kgm_graph **out)
{
    *out = NULL;
    if (!s->kgmeta) return kgm_store_extract(s, out);
    kgm_istore_view v;
    int rc = kgm_istore_view_take(s->storage, &v);
    if (rc) return rc;
    kgm_graph_source src = {
        .spo = v.spo, .n_spo = v.n_triples, .n_lit = v.n_lit, .ent_of = v.ent_of, .rel_of = v.rel_of,
        .n_of = v.n_of, .ent_term = v.ent_term, .rel_term = v.rel_term, .n_ents = v.n_ents,
        .n_rels = v.n_rels, .gen = &s->changes, .gen_taken = s->changes, .ctx = s->storage,
        .term = src_term, .find = src_find, .number = src_number,
    };
    if (!(*out = kgm_graph_borrow(&src))) return kgm_fail(KGM_ENOMEM, "out of memory");
    return 0;
}

int kgm_store_extract(kgm_store *s, kgm_graph **out)
{
    *out = NULL;
    if (s->kgmeta) {
        kgm_graph *g = kgm_graph_new();
        if (!g) return kgm_fail(KGM_ENOMEM, "out of memory");
        int rc = extract_ids(s, g);
        if (!rc) rc = kgm_graph_finish(g);
        if (rc) { kgm_graph_free(g); return rc; }
        *out = g;
        return 0;
    }
    kgm_graph *g = kgm_graph_new();
    if (!g) return kgm_fail(KGM_ENOMEM, "out of memory");
    librdf_stream *st = librdf_model_as_stream(s->model);
    int rc = st ? 0 : kgm_fail(KGM_ENOMEM, "cannot iterate the store");
    char *buf = NULL;
    size_t cap = 0, seen = 0;
    for (; !rc && !librdf_stream_end(st); librdf_stream_next(st)) {
        librdf_statement *x = librdf_stream_get_object(st);
        librdf_node *o = librdf_statement_get_object(x);
        const char *pred = (const char *)librdf_uri_as_string(librdf_node_get_uri(librdf_statement_get_predicate(x)));
        int32_t h = entity_of(g, librdf_statement_get_subject(x), &buf, &cap);
        double v;
        if (h < 0) rc = kgm_fail(KGM_ENOMEM, "out of memory extracting the graph");
        else if (librdf_node_is_literal(o)) { if (literal_number(o, &v)) rc = kgm_graph_add_attr(g, h, pred, v); }
        else {
            int32_t r = kgm_graph_relation(g, pred), t = entity_of(g, o, &buf, &cap);
            rc = r < 0 || t < 0 ? kgm_fail(KGM_ENOMEM, "out of memory extracting the graph") : kgm_graph_add(g, h, r, t);
        }
        if (!rc && ++seen % 65536 == 0 && kgm_interrupted()) rc = kgm_fail(KGM_EINTR, "extraction interrupted");
    }
    if (st) librdf_free_stream(st);
    free(buf);
    if (!rc) rc = kgm_graph_finish(g);
    if (rc) { kgm_graph_free(g); return rc; }
    *out = g;
    return 0;
}
