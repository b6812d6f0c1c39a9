/* kg/store_edit.c - changing the graph: loading files and strings (parsed aside into a
 * scratch model, then committed whole or not at all) and adding or removing one triple
 * typed in Turtle term syntax. Durability (journal, snapshot) is store.c's. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "istore.h"
#include "store_internal.h"

/* ---- loading ---- */

static const struct { const char *ext, *syntax; } EXTENSIONS[] = {
    { ".ttl", "turtle" }, { ".n3", "turtle" }, { ".nt", "ntriples" }, { ".nq", "nquads" },
    { ".trig", "trig" }, { ".rdf", "rdfxml" }, { ".owl", "rdfxml" }, { ".xml", "rdfxml" },
};
static const struct { const char *name, *syntax; } SYNTAXES[] = {
    { "turtle", "turtle" }, { "ttl", "turtle" }, { "ntriples", "ntriples" }, { "nt", "ntriples" },
    { "nquads", "nquads" }, { "nq", "nquads" }, { "trig", "trig" }, { "rdfxml", "rdfxml" },
    { "rdf", "rdfxml" }, { "xml", "rdfxml" },
};

static int pick_syntax(const char *path, const char *syntax, const char **out)
{
    if (syntax) {
        for (size_t i = 0; i < sizeof SYNTAXES / sizeof *SYNTAXES; i++)
            if (strcasecmp(syntax, SYNTAXES[i].name) == 0) { *out = SYNTAXES[i].syntax; return 0; }
        return kgm_fail(KGM_EINVAL, "unknown syntax '%s' (turtle, ntriples, nquads, trig, rdfxml)", syntax);
    }
    const char *dot = path ? strrchr(path, '.') : NULL;
    for (size_t i = 0; dot && i < sizeof EXTENSIONS / sizeof *EXTENSIONS; i++)
        if (strcasecmp(dot, EXTENSIONS[i].ext) == 0) { *out = EXTENSIONS[i].syntax; return 0; }
    return kgm_fail(KGM_EINVAL, "cannot tell the syntax of %s from its extension; name one "
                    "(turtle, ntriples, nquads, trig, rdfxml)", path ? path : "the text");
}

/* NUL bytes or malformed UTF-8 in the first block mean this is not an RDF text file. */
static int looks_binary(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == 0) return 1;
        size_t k = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 9;
        if (k == 9) return 1;
        if (i + k >= n) break;                   /* a sequence cut by the block end */
        for (size_t j = 1; j <= k; j++) if ((p[i + j] & 0xC0) != 0x80) return 1;
        i += k + 1;
    }
    return 0;
}

/* Opens path for reading with a clear refusal for each way it can be unusable. */
static int open_input(const char *path, FILE **out)
{
    struct stat st;
    if (stat(path, &st)) return kgm_fail(KGM_EIO, "cannot open %s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return kgm_fail(KGM_EIO, "cannot load %s: it is a directory", path);
    FILE *fh = fopen(path, "rb");
    if (!fh) return kgm_fail(KGM_EIO, "cannot open %s: %s", path, strerror(errno));
    unsigned char block[4096];
    size_t n = fread(block, 1, sizeof block, fh);
    int rc = 0;
    if (ferror(fh)) rc = kgm_fail(KGM_EIO, "cannot read %s: %s", path, strerror(errno));
    else if (n == 0) rc = kgm_fail(KGM_EFORMAT, "%s is empty (0 bytes); nothing to load", path);
    else if (looks_binary(block, n)) rc = kgm_fail(KGM_EFORMAT, "%s is a binary file, not RDF text", path);
    else rewind(fh);
    if (rc) { fclose(fh); return rc; }
    *out = fh;
    return 0;
}

static char *file_base(const char *path)
{
    unsigned char *u = raptor_uri_filename_to_uri_string(path);
    char *copy = u ? strdup((char *)u) : NULL;
    if (u) raptor_free_memory(u);
    return copy;
}

static void free_prefixes(kgm_store *p)
{
    for (size_t i = 0; i < p->n_prefixes; i++) {
        free((char *)p->prefixes[i].prefix);
        free((char *)p->prefixes[i].ns);
    }
    free(p->prefixes);
}

/* Journals and sets the prefixes in `pending` that are new or changed. */
static int commit_prefixes(kgm_store *s, const kgm_store *pending)
{
    for (size_t i = 0; i < pending->n_prefixes; i++) {
        const kgm_prefix *p = &pending->prefixes[i];
        const char *old = store_prefix_ns(s, p->prefix, strlen(p->prefix));
        if (old && strcmp(old, p->ns) == 0) continue;
        int rc = kgm_store_set_prefix(s, p->prefix, p->ns);
        if (rc) return rc;
    }
    return 0;
}

static int collect_prefix(void *pending, const char *prefix, const char *ns)
{
    return store_set_prefix_mem(pending, prefix, ns);
}

/* The tail of every load, once the text is parsed aside into `stage` (parse_rc says how that
 * went): keep the prefixes it declared, journal and merge the triples, free the staging model.
 * Takes stage and the pending prefixes on every path. */
static int commit_load(kgm_store *s, int parse_rc, kgm_store *pending, librdf_model *stage,
                       size_t *n_added)
{
    size_t before = kgm_store_size(s);
    int rc = parse_rc;
    if (!rc) rc = commit_prefixes(s, pending);
    if (!rc) rc = store_commit(s, 'A', &stage);
    free_prefixes(pending);
    store_free_model(stage);
    if (!rc && n_added) *n_added = kgm_store_size(s) - before;
    return rc;
}

/* A "kgmeta" store's load: raptor straight into a staging kgmeta storage (the istore bulk
 * path: dictionary ids, sorted once), whose fresh blank labels start past the store's;
 * then committed like any change (store_commit: journal + bulk merge, or for a big load
 * into an empty store a new snapshot and adoption of the staging storage). */
static int load_kgmeta(kgm_store *s, const char *path, const char *text, size_t len,
                       const char *syntax, const char *base, size_t *n_added)
{
    librdf_storage *st;
    int rc = kgm_istore_new(s->world, &st);
    if (rc) return rc;
    librdf_model *stage = librdf_new_model(s->world, st, NULL);
    if (!stage) { librdf_free_storage(st); return kgm_fail(KGM_ENOMEM, "cannot create a staging model"); }
    kgm_istore_reserve_blanks(st, kgm_istore_next_blank(s->storage));
    kgm_store pending = { .journal_fd = -1 };
    kgm_istore_set_prefix_handler(st, collect_prefix, &pending);
    rc = path ? kgm_istore_load_file(st, path, syntax, base, NULL)
              : kgm_istore_load_string(st, text, len, syntax, base, NULL);
    kgm_istore_set_prefix_handler(st, NULL, NULL);
    return commit_load(s, rc, &pending, stage, n_added);
}

/* The common tail of every load: parse aside, then journal and merge (all or nothing).
 * Prefixes the text declares are collected aside and kept only when the parse succeeds. */
static int load_common(kgm_store *s, const char *label, FILE *fh, const char *text, size_t len,
                       const char *syntax, const char *base, size_t *n_added)
{
    librdf_model *stage = store_scratch_model(s->world);
    if (!stage) return kgm_fail(KGM_ENOMEM, "cannot create a staging model");
    kgm_store pending = { .journal_fd = -1 };
    int rc = store_parse(s, stage, label, fh, text, len, syntax, base, BNODES_FRESH, &pending);
    return commit_load(s, rc, &pending, stage, n_added);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int kgm_store_load(kgm_store *s, const char *path, const char *syntax, const char *base,
                   size_t *n_added, double *seconds)
{
    double t0 = now_seconds();
    const char *name = NULL;
    int rc = pick_syntax(path, syntax, &name);
    FILE *fh = NULL;
    if (!rc) rc = open_input(path, &fh);
    if (rc) return rc;
    char *own_base = base ? NULL : file_base(path);
    if (!base && !own_base) { fclose(fh); return kgm_fail(KGM_ENOMEM, "out of memory"); }
    if (s->kgmeta) {
        fclose(fh);                    /* checked; the istore reads the file itself */
        fh = NULL;
        rc = load_kgmeta(s, path, NULL, 0, name, base ? base : own_base, n_added);
    } else {
        rc = load_common(s, path, fh, NULL, 0, name, base ? base : own_base, n_added);
        fclose(fh);
    }
    free(own_base);
    if (!rc && seconds) *seconds = now_seconds() - t0;
    return rc;
}

/* Base for text typed or passed as a string: the working directory, like a file there. */
static char *cwd_base(void)
{
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd - 2)) snprintf(cwd, sizeof cwd, "/");
    size_t n = strlen(cwd);
    if (cwd[n - 1] != '/') { cwd[n] = '/'; cwd[n + 1] = 0; }
    return file_base(cwd);
}

int kgm_store_load_string(kgm_store *s, const char *text, const char *syntax,
                          const char *base, size_t *n_added)
{
    const char *name = NULL;
    int rc = pick_syntax(NULL, syntax ? syntax : "turtle", &name);
    if (rc) return rc;
    char *own_base = base ? NULL : cwd_base();
    if (!base && !own_base) return kgm_fail(KGM_ENOMEM, "out of memory");
    rc = s->kgmeta ? load_kgmeta(s, NULL, text, strlen(text), name, base ? base : own_base, n_added)
                   : load_common(s, "<string>", NULL, text, strlen(text), name, base ? base : own_base, n_added);
    free(own_base);
    return rc;
}

/* ---- editing one triple ---- */

static int is_literal_term(const char *t)
{
    return t[0] == '"' || t[0] == '\'' || t[0] == '+' || t[0] == '-' || t[0] == '.'
        || (t[0] >= '0' && t[0] <= '9') || strcmp(t, "true") == 0 || strcmp(t, "false") == 0;
}

/* Parses one triple typed in Turtle term syntax into a new scratch model. */
static int parse_triple(kgm_store *s, const char *subj, const char *pred, const char *obj,
                        librdf_model **out)
{
    while (*subj == ' ') subj++;
    if (is_literal_term(subj)) return kgm_fail(KGM_EINVAL, "a literal cannot be the subject of a triple: %s", subj);
    if (is_literal_term(pred) || pred[0] == '_') return kgm_fail(KGM_EINVAL, "the predicate must be an IRI: %s", pred);
    size_t cap = strlen(subj) + strlen(pred) + strlen(obj) + 16;
    for (size_t i = 0; i < s->n_prefixes; i++) cap += strlen(s->prefixes[i].prefix) + strlen(s->prefixes[i].ns) + 16;
    char *doc = malloc(cap);
    if (!doc) return kgm_fail(KGM_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < s->n_prefixes; i++)
        n += (size_t)snprintf(doc + n, cap - n, "@prefix %s: <%s> .\n", s->prefixes[i].prefix, s->prefixes[i].ns);
    snprintf(doc + n, cap - n, "%s %s %s .\n", subj, pred, obj);
    librdf_model *m = store_scratch_model(s->world);
    char *base = cwd_base();
    int rc = !m || !base ? kgm_fail(KGM_ENOMEM, "out of memory")
           : store_parse(s, m, NULL, NULL, doc, strlen(doc), "turtle", base, BNODES_KEEP, NULL);
    free(base);
    free(doc);
    if (!rc && librdf_model_size(m) != 1)
        rc = kgm_fail(KGM_EINVAL, "expected one triple, the terms give %d", librdf_model_size(m));
    if (rc) { store_free_model(m); return rc; }
    *out = m;
    return 0;
}

static int contains_all(kgm_store *s, librdf_model *m)
{
    librdf_stream *st = librdf_model_as_stream(m);
    int all = 1;
    for (; st && !librdf_stream_end(st); librdf_stream_next(st))
        if (!librdf_model_contains_statement(s->model, librdf_stream_get_object(st))) all = 0;
    if (st) librdf_free_stream(st);
    return all;
}

int kgm_store_add(kgm_store *s, const char *subj, const char *pred, const char *obj)
{
    librdf_model *m;
    int rc = parse_triple(s, subj, pred, obj, &m);
    if (rc) return rc;
    if (contains_all(s, m)) { store_free_model(m); return 0; }   /* nothing to journal */
    return store_commit(s, 'A', &m);
}

int kgm_store_remove(kgm_store *s, const char *subj, const char *pred, const char *obj)
{
    librdf_model *m;
    int rc = parse_triple(s, subj, pred, obj, &m);
    if (rc) return rc;
    if (!contains_all(s, m)) {
        store_free_model(m);
        return kgm_fail(KGM_ENOTFOUND, "no such triple: %s %s %s", subj, pred, obj);
    }
    return store_commit(s, 'R', &m);
}
