/* kg/store_parse.c - parsing RDF text with raptor directly into a librdf model.
 *
 * Why not librdf_parser: librdf renames every _:label to a fresh generated id on every
 * parse (redland-notes §3.8). That is right for a user's file, but the snapshot and the
 * journal must read back the very ids they wrote, or a journaled "remove _:r12..." would
 * miss after a reopen. Here the blank node policy is chosen per parse. librdf nodes and
 * statements are raptor terms and statements (librdf 1.0.17), so raptor's statements go
 * straight into librdf_model_add_statement, which copies them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "interrupt.h"
#include "progress.h"
#include "store_internal.h"
#include "strmap.h"

typedef struct {
    kgm_store     *store;
    librdf_model  *model;
    raptor_parser *parser;
    bnode_mode     bnodes;
    kgm_store     *prefix_sink;   /* collects declared prefixes, or NULL */
    int            failed;        /* a KGM_E* code once something went wrong */
    size_t         n;             /* statements seen */
    size_t         line_base;     /* lines before the current run (parse_lines) */
    kgm_strmap    *labels;        /* BNODES_FRESH: document label -> index into ids */
    char         **ids;
    size_t         cap_ids;
} parse_ctx;

librdf_model *store_scratch_model(librdf_world *w)
{
    librdf_storage *st = librdf_new_storage(w, "trees", NULL, NULL);
    if (!st) return NULL;
    librdf_model *m = librdf_new_model(w, st, NULL);
    if (!m) librdf_free_storage(st);
    return m;
}

void store_free_model(librdf_model *m)
{
    if (!m) return;
    librdf_storage *st = librdf_model_get_storage(m);
    librdf_free_model(m);
    if (st) librdf_free_storage(st);
}

/* "k<time><pid>n<count>": unique across runs like librdf's own genids, and recognisable. */
static char *fresh_id(void)
{
    static unsigned long count;
    static char stamp[40];
    if (!stamp[0]) snprintf(stamp, sizeof stamp, "k%lxp%lx", (unsigned long)time(NULL), (unsigned long)getpid());
    size_t cap = strlen(stamp) + 24;
    char *id = malloc(cap);             /* raptor frees it with free() */
    if (id) snprintf(id, cap, "%sn%lu", stamp, ++count);
    return id;
}

/* raptor asks for an id for anonymous nodes ([] in Turtle) and, in some parsers, for
 * labelled ones; N-Triples keeps its labels without asking. So labels pass through here
 * and BNODES_FRESH renames them in on_statement, the one place every parser goes through. */
static unsigned char *on_bnode_id(void *ud, unsigned char *user_id)
{
    (void)ud;
    return user_id ? user_id : (unsigned char *)fresh_id();   /* ownership goes to raptor */
}

/* The store-unique id for a document's label; NULL when out of memory. */
static const char *fresh_for_label(parse_ctx *c, const char *label)
{
    int32_t before = (int32_t)kgm_strmap_size(c->labels);
    int32_t k = kgm_strmap_intern(c->labels, label, strlen(label));
    if (k < 0) return NULL;
    if (k == before) {                                  /* a label not seen in this document */
        if ((size_t)k >= c->cap_ids) {
            size_t nc = c->cap_ids ? c->cap_ids * 2 : 64;
            char **p = realloc(c->ids, nc * sizeof *p);
            if (!p) return NULL;
            c->ids = p;
            c->cap_ids = nc;
        }
        c->ids[k] = fresh_id();
    }
    return c->ids[k];
}

/* A new blank term with the fresh id for t's label, or NULL when t is not blank. */
static raptor_term *renamed(parse_ctx *c, raptor_term *t, int *oom)
{
    if (t->type != RAPTOR_TERM_TYPE_BLANK) return NULL;
    const char *id = fresh_for_label(c, (const char *)t->value.blank.string);
    raptor_term *r = id ? raptor_new_term_from_blank(raptor_parser_get_world(c->parser), (const unsigned char *)id) : NULL;
    if (!r) *oom = 1;
    return r;
}

static void on_namespace(void *ud, raptor_namespace *ns)
{
    parse_ctx *c = ud;
    raptor_uri *u = raptor_namespace_get_uri(ns);
    if (!c->prefix_sink || !u || c->failed) return;
    const unsigned char *p = raptor_namespace_get_prefix(ns);
    if (store_set_prefix_mem(c->prefix_sink, p ? (const char *)p : "", (const char *)raptor_uri_as_string(u)))
        c->failed = KGM_ENOMEM;
}

static void on_statement(void *ud, raptor_statement *st)
{
    parse_ctx *c = ud;
    if (c->failed) return;
    if (st->subject->type == RAPTOR_TERM_TYPE_LITERAL) {
        c->failed = kgm_fail(KGM_ESYNTAX, "a literal cannot be the subject of a triple");
    } else if (kgm_interrupted()) {
        c->failed = kgm_fail(KGM_EINTR, "interrupted after %zu triples; nothing was added", c->n);
    } else {
        raptor_statement triple = *st;
        triple.graph = NULL;            /* 'trees' has no named graphs: quads become triples */
        raptor_term *subj = NULL, *obj = NULL;
        int oom = 0;
        if (c->bnodes == BNODES_FRESH) {
            if ((subj = renamed(c, st->subject, &oom))) triple.subject = subj;
            if ((obj = renamed(c, st->object, &oom))) triple.object = obj;
        }
        if (oom || librdf_model_add_statement(c->model, &triple))
            c->failed = kgm_fail(KGM_ENOMEM, "cannot add a statement to the model");
        if (subj) raptor_free_term(subj);
        if (obj) raptor_free_term(obj);
    }
    if (c->failed) { raptor_parser_parse_abort(c->parser); return; }
    if (++c->n % 65536 == 0) kgm_progress("parsing: %zu triples", c->n);
}

static void ctx_free(parse_ctx *c)
{
    if (c->labels) {
        for (size_t i = 0; i < kgm_strmap_size(c->labels); i++) free(c->ids[i]);
        kgm_strmap_free(c->labels);
    }
    free(c->ids);
    if (c->parser) raptor_free_parser(c->parser);
}

/* N-Triples goes through the Turtle parser (N-Triples is a subset of Turtle) in runs of
 * whole lines: raptor 2.0.15's N-Triples parser keeps a reference to every datatype IRI it
 * reads (one leaked URI per distinct datatype, seen by ASan and valgrind), and its Turtle
 * parser holds a whole document in memory, so each run is a separate document of about
 * CHUNK bytes. Labels of blank nodes stay consistent because the context spans the runs. */
#define CHUNK (1 << 20)

static int parse_lines(parse_ctx *c, raptor_uri *base, FILE *fh, const char *text, size_t len)
{
    char *buf = fh ? malloc(CHUNK + 1) : NULL;
    if (fh && !buf) return kgm_fail(KGM_ENOMEM, "out of memory");
    size_t have = 0, pos = 0;                 /* fh: bytes in buf; text: bytes consumed */
    int rc = 0, eof = 0;
    while (!rc && !c->failed && !store_log_errors()) {
        const char *run;
        size_t n;
        if (fh) {
            if (!eof) { have += fread(buf + have, 1, CHUNK - have, fh); eof = have < CHUNK; }
            if (ferror(fh)) { c->failed = kgm_fail(KGM_EIO, "read error: %s", strerror(errno)); break; }
            if (have == 0) break;
            char *nl = eof ? buf + have - 1 : memrchr(buf, '\n', have);
            n = nl ? (size_t)(nl - buf) + 1 : have;  /* a line longer than CHUNK: take it all */
            run = buf;
        } else {
            if (pos >= len) break;
            const char *end = text + (len - pos > CHUNK ? pos + CHUNK : len);
            const char *nl = end == text + len ? end - 1 : memrchr(text + pos, '\n', (size_t)(end - text - pos));
            n = nl ? (size_t)(nl - text - pos) + 1 : (size_t)(end - text - pos);
            run = text + pos;
        }
        rc = raptor_parser_parse_start(c->parser, base)
          || raptor_parser_parse_chunk(c->parser, (const unsigned char *)run, n, 1);
        if (!rc && !c->failed && !store_log_errors())
            for (size_t i = 0; i < n; i++) c->line_base += run[i] == '\n';
        if (fh) { memmove(buf, buf + n, have - n); have -= n; }
        else pos += n;
    }
    free(buf);
    return rc;
}

int store_parse(kgm_store *s, librdf_model *model, const char *path, FILE *fh,
                const char *text, size_t len, const char *syntax, const char *base,
                bnode_mode bnodes, kgm_store *prefix_sink)
{
    raptor_world *rw = librdf_world_get_raptor(s->world);
    parse_ctx c = { .store = s, .model = model, .bnodes = bnodes, .prefix_sink = prefix_sink };
    if (bnodes == BNODES_FRESH && !(c.labels = kgm_strmap_new()))
        return kgm_fail(KGM_ENOMEM, "out of memory");
    int lines = strcmp(syntax, "ntriples") == 0;
    c.parser = raptor_new_parser(rw, lines ? "turtle" : syntax);
    if (!c.parser) { ctx_free(&c); return kgm_fail(KGM_EINVAL, "no RDF parser named '%s'", syntax); }
    raptor_parser_set_statement_handler(c.parser, &c, on_statement);
    raptor_parser_set_namespace_handler(c.parser, &c, on_namespace);
    /* The handler is world-wide: set it for each parse (queries and parses never overlap). */
    raptor_world_set_generate_bnodeid_handler(rw, &c, on_bnode_id);
    raptor_uri *base_uri = raptor_new_uri(rw, (const unsigned char *)base);
    if (!base_uri) { ctx_free(&c); return kgm_fail(KGM_EINVAL, "bad base IRI <%s>", base); }

    store_log_reset();
    int rc;
    if (lines) {
        rc = parse_lines(&c, base_uri, fh, text, len);
    } else if (fh) {
        rc = raptor_parser_parse_file_stream(c.parser, fh, path, base_uri);
    } else {
        rc = raptor_parser_parse_start(c.parser, base_uri);
        if (!rc) rc = raptor_parser_parse_chunk(c.parser, (const unsigned char *)text, len, 1);
    }
    kgm_progress_done();
    raptor_world_set_generate_bnodeid_handler(rw, NULL, NULL);
    raptor_free_uri(base_uri);
    int result = 0;
    if (c.failed) {
        result = c.failed;              /* already recorded */
        if (c.failed == KGM_ESYNTAX && path) {
            raptor_locator *loc = raptor_parser_get_locator(c.parser);
            result = kgm_fail_at(KGM_ESYNTAX, path, loc ? loc->line + c.line_base : 0, loc ? loc->column : 0,
                                 "a literal cannot be the subject of a triple");
        }
    } else if (rc || store_log_errors()) {
        result = store_log_fail(KGM_ESYNTAX, path, -(int)c.line_base, "the parser failed without saying why");
    }
    ctx_free(&c);
    return result;
}
