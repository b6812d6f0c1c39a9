/* kg/istore_rdf.c - the "kgmeta" librdf storage factory over the integer core of
 * kg/istore.c: librdf nodes become dictionary ids on the way in and cached librdf nodes on
 * the way out; find_statements picks the permutation that serves the bound terms. Also
 * the bulk loader (raptor straight into ids, in a private raptor world so its errors come
 * back here with their locations) and the public calls of kg/istore.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <redland.h>
#include <rdf_storage_module.h>

#include "error.h"
#include "interrupt.h"
#include "istore.h"
#include "istore_core.h"
#include "progress.h"

_Static_assert(sizeof(ist_tri) == 3 * sizeof(uint32_t), "triples are read as uint32 triples");

typedef struct { char *p; size_t len, cap; } kbuf;

typedef struct istore {
    struct istore  *next;       /* live instances, so kgm_istore_is() never guesses */
    librdf_storage *storage;
    librdf_world   *world;
    ist_core        core;
    librdf_node   **nodes;      /* (n_nodes) node per id, made on first use */
    size_t          n_nodes;
    char           *path;       /* snapshot written by sync; NULL: none */
    kbuf            key;        /* scratch for term keys */
    raptor_world   *raptor;     /* private to bulk loads (made on first use), so parse
                                   errors reach this module, not librdf's logger */
    struct loader  *loading;    /* the load in progress, for the raptor log handler */
    char           *extra;      /* the owner's block saved with every snapshot (owned) */
    size_t          n_extra;
    kgm_istore_prefix_fn on_prefix;   /* bulk loads report declared prefixes here */
    void           *prefix_ud;
} istore;

static istore *live;

static istore *instance(librdf_storage *st)
{
    for (istore *is = live; is; is = is->next)
        if (is->storage == st) return is;
    return NULL;
}

/* ---- terms <-> keys ---- */

static int kbuf_put(kbuf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return -1;
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

/* Append the dictionary key of a term to b: kind byte, then the bytes istore.h documents
 * per kind. */
static int term_key(kbuf *b, const raptor_term *t)
{
    size_t len;
    const unsigned char *s;
    char kind;
    switch (t->type) {
    case RAPTOR_TERM_TYPE_URI:
        s = raptor_uri_as_counted_string(t->value.uri, &len);
        kind = KGM_TERM_IRI;
        return kbuf_put(b, &kind, 1) || kbuf_put(b, s, len);
    case RAPTOR_TERM_TYPE_BLANK:
        kind = KGM_TERM_BLANK;
        return kbuf_put(b, &kind, 1) || kbuf_put(b, t->value.blank.string, t->value.blank.string_len);
    case RAPTOR_TERM_TYPE_LITERAL: {
        const raptor_term_literal_value *l = &t->value.literal;
        int rc = 0;
        if (l->language && l->language_len) {
            kind = KGM_TERM_LANG;
            rc = kbuf_put(b, &kind, 1) || kbuf_put(b, l->language, l->language_len) || kbuf_put(b, "", 1);
        } else if (l->datatype) {
            s = raptor_uri_as_counted_string(l->datatype, &len);
            kind = KGM_TERM_TYPED;
            rc = kbuf_put(b, &kind, 1) || kbuf_put(b, s, len) || kbuf_put(b, "", 1);
        } else {
            kind = KGM_TERM_PLAIN;
            rc = kbuf_put(b, &kind, 1);
        }
        return rc || kbuf_put(b, l->string, l->string_len);
    }
    default:
        return -1;
    }
}

static int64_t find_id(istore *is, const raptor_term *t)
{
    is->key.len = 0;
    if (term_key(&is->key, t)) return -1;
    return ist_dict_find(&is->core.dict, is->key.p, is->key.len);
}

/* A blank label "b<N>" stored from outside (a journal, a typed _:b7) moves the fresh-label
 * counter past N, so bulk loads never hand out a label the store already holds. */
static void reserve_blank_label(istore *is, const raptor_term *t)
{
    const char *l = (const char *)t->value.blank.string;
    if (l[0] != 'b' || l[1] < '0' || l[1] > '9') return;
    char *end;
    unsigned long long n = strtoull(l + 1, &end, 10);
    if (*end == 0 && n >= is->core.bnode_next && n < UINT64_MAX) is->core.bnode_next = n + 1;
}

static int64_t intern_id(istore *is, const raptor_term *t)
{
    is->key.len = 0;
    if (term_key(&is->key, t)) return -1;
    if (t->type == RAPTOR_TERM_TYPE_BLANK) reserve_blank_label(is, t);
    return ist_dict_intern(&is->core.dict, is->key.p, is->key.len);
}

static librdf_node *make_node(istore *is, uint32_t id)
{
    size_t len;
    const char *k = ist_dict_key(&is->core.dict, id, &len);
    const unsigned char *body = (const unsigned char *)k + 1;
    len--;
    const unsigned char *nul = memchr(body, 0, len);
    switch (k[0]) {
    case KGM_TERM_IRI:   return librdf_new_node_from_counted_uri_string(is->world, body, len);
    case KGM_TERM_BLANK: return librdf_new_node_from_counted_blank_identifier(is->world, body, len);
    case KGM_TERM_PLAIN: return librdf_new_node_from_typed_counted_literal(is->world, body, len, NULL, 0, NULL);
    case KGM_TERM_LANG: {
        size_t llen = (size_t)(nul - body);
        return librdf_new_node_from_typed_counted_literal(is->world, nul + 1, len - llen - 1,
                                                          (const char *)body, llen, NULL);
    }
    case KGM_TERM_TYPED: {
        size_t dlen = (size_t)(nul - body);
        librdf_uri *dt = librdf_new_uri2(is->world, body, dlen);
        if (!dt) return NULL;
        librdf_node *n = librdf_new_node_from_typed_counted_literal(is->world, nul + 1, len - dlen - 1,
                                                                    NULL, 0, dt);
        librdf_free_uri(dt);
        return n;
    }
    default:
        return NULL;
    }
}

/* id's node, made on first use and kept for the life of the store (or until a failed load
 * forgets the id). Borrowed: callers that keep it take their own reference. */
static librdf_node *node_of(istore *is, uint32_t id)
{
    if (id >= is->n_nodes) {
        size_t n = is->core.dict.n;
        librdf_node **a = realloc(is->nodes, n * sizeof *a);
        if (!a) return NULL;
        memset(a + is->n_nodes, 0, (n - is->n_nodes) * sizeof *a);
        is->nodes = a;
        is->n_nodes = n;
    }
    if (!is->nodes[id]) is->nodes[id] = make_node(is, id);
    return is->nodes[id];
}

static void drop_nodes_from(istore *is, size_t n)
{
    for (size_t i = n; i < is->n_nodes; i++)
        if (is->nodes[i]) { librdf_free_node(is->nodes[i]); is->nodes[i] = NULL; }
}

/* ---- streams ---- */

/* A stream hands out one statement that it refills in place for every row, and whose parts
 * are the node cache's nodes, borrowed: a row costs no allocation and no reference count
 * traffic. Borrowing is safe because cached nodes live as long as the store and a stream
 * holds a reference on the store. The statement leaves the stream only by release_row():
 * when a reader took a shallow copy of it (usage > 1) the copy gets references of its own
 * and the next row a fresh statement; otherwise the borrowed parts are dropped unfreed. */
typedef struct {
    istore           *is;
    ist_cursor        cur;
    librdf_statement *st;       /* the current row; NULL at the end */
} ist_stream;

static void release_row(ist_stream *s)
{
    librdf_statement *st = s->st;
    if (!st) return;
    if (st->usage > 1) {
        librdf_new_node_from_node(st->subject);      /* a reference each: the same nodes */
        librdf_new_node_from_node(st->predicate);
        librdf_new_node_from_node(st->object);
    } else {
        st->subject = st->predicate = st->object = NULL;
    }
    librdf_free_statement(st);
    s->st = NULL;
}

static void stream_fetch(ist_stream *s)
{
    ist_tri t;
    if (s->st && s->st->usage > 1) release_row(s);
    librdf_node *sn = NULL, *pn = NULL, *on = NULL;
    if (!ist_cursor_next(&s->cur, &t) || !(sn = node_of(s->is, t.a)) || !(pn = node_of(s->is, t.b))
        || !(on = node_of(s->is, t.c))) {
        release_row(s);
        return;
    }
    if (!s->st && !(s->st = librdf_new_statement(s->is->world))) return;
    s->st->subject = sn;
    s->st->predicate = pn;
    s->st->object = on;
}

static int stream_is_end(void *ctx) { return ((ist_stream *)ctx)->st == NULL; }

static int stream_next(void *ctx)
{
    stream_fetch(ctx);
    return stream_is_end(ctx);
}

static void *stream_get(void *ctx, int flags)
{
    ist_stream *s = ctx;
    return flags == LIBRDF_STREAM_GET_METHOD_GET_OBJECT ? s->st : NULL;
}

static void stream_finished(void *ctx)
{
    ist_stream *s = ctx;
    release_row(s);
    librdf_storage_remove_reference(s->is->storage);
    free(s);
}

/* Bound terms are ids, -1 unbound; a term the store never saw matches nothing. */
static librdf_stream *new_stream(istore *is, int64_t s, int64_t p, int64_t o)
{
    ist_stream *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->is = is;
    ist_cursor_init(&ctx->cur, &is->core, s, p, o);
    librdf_storage_add_reference(is->storage);
    stream_fetch(ctx);
    librdf_stream *st = librdf_new_stream(is->world, ctx, stream_is_end, stream_next, stream_get,
                                          stream_finished);
    if (!st) stream_finished(ctx);
    return st;
}

/* ---- factory methods ---- */

static int m_init(librdf_storage *storage, const char *name, librdf_hash *options)
{
    istore *is = calloc(1, sizeof *is);
    int fresh = options ? librdf_hash_get_as_boolean(options, "new") > 0 : 0;
    if (options) librdf_free_hash(options);
    if (!is) return 1;
    is->storage = storage;
    is->world = librdf_storage_get_world(storage);
    ist_core_init(&is->core);
    is->next = live;
    live = is;
    librdf_storage_set_instance(storage, is);
    if (!name) return 0;
    if (!(is->path = strdup(name))) return 1;
    if (!fresh && access(name, F_OK) == 0 && ist_snapshot_load(&is->core, name, &is->extra, &is->n_extra)) {
        librdf_log(is->world, 0, LIBRDF_LOG_ERROR, LIBRDF_FROM_STORAGE, NULL, "%s", kgm_error_text());
        return 1;
    }
    return 0;
}

static void m_terminate(librdf_storage *storage)
{
    istore *is = librdf_storage_get_instance(storage);
    if (!is) return;
    for (istore **pp = &live; *pp; pp = &(*pp)->next)
        if (*pp == is) { *pp = is->next; break; }
    drop_nodes_from(is, 0);
    free(is->nodes);
    ist_core_free(&is->core);
    free(is->path);
    free(is->key.p);
    free(is->extra);
    if (is->raptor) raptor_free_world(is->raptor);
    free(is);
}

static int m_open(librdf_storage *storage, librdf_model *model)
{
    (void)storage; (void)model;
    return 0;
}

static int m_close(librdf_storage *storage)
{
    (void)storage;
    return 0;
}

static int m_size(librdf_storage *storage)
{
    size_t n = ist_core_size(&((istore *)librdf_storage_get_instance(storage))->core);
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

static int m_add_statement(librdf_storage *storage, librdf_statement *st)
{
    istore *is = librdf_storage_get_instance(storage);
    int64_t s = intern_id(is, st->subject), p = intern_id(is, st->predicate), o = intern_id(is, st->object);
    if (s < 0 || p < 0 || o < 0) return -1;
    return ist_core_add(&is->core, (uint32_t)s, (uint32_t)p, (uint32_t)o) < 0 ? -1 : 0;
}

static int legal(const librdf_statement *st)
{
    return st && st->subject && st->predicate && st->object
        && (st->subject->type == RAPTOR_TERM_TYPE_URI || st->subject->type == RAPTOR_TERM_TYPE_BLANK)
        && st->predicate->type == RAPTOR_TERM_TYPE_URI;
}

/* A few statements (one journaled edit) go into the delta one by one: the bulk path
 * re-sorts the whole store, which is linear in its size. On failure the ones added are
 * taken out again, so it is still all or nothing. */
#define SMALL_BATCH 1024

static int add_each(ist_core *c, const ist_tri *t, size_t n)
{
    size_t i;
    int r = 0;
    char *fresh = calloc(n ? n : 1, 1);
    if (!fresh) return -1;
    for (i = 0; i < n && r >= 0; i++) fresh[i] = (char)((r = ist_core_add(c, t[i].a, t[i].b, t[i].c)) == 1);
    if (r < 0)
        while (i-- > 0)
            if (fresh[i]) ist_core_remove(c, t[i].a, t[i].b, t[i].c);
    free(fresh);
    return r < 0 ? -1 : 0;
}

/* A larger stream of statements goes through the bulk path: ids staged, merged once, all or
 * nothing. Illegal statements are skipped, as librdf's own loop does. */
static int m_add_statements(librdf_storage *storage, librdf_stream *stream)
{
    istore *is = librdf_storage_get_instance(storage);
    uint32_t n_terms = is->core.dict.n;
    ist_tri *t = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (; !rc && !librdf_stream_end(stream); librdf_stream_next(stream)) {
        librdf_statement *st = librdf_stream_get_object(stream);
        if (!legal(st)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            ist_tri *g = realloc(t, cap * sizeof *g);
            if (!g) { rc = -1; break; }
            t = g;
        }
        int64_t s = intern_id(is, st->subject), p = intern_id(is, st->predicate), o = intern_id(is, st->object);
        if (s < 0 || p < 0 || o < 0) rc = -1;
        else t[n++] = (ist_tri){ (uint32_t)s, (uint32_t)p, (uint32_t)o };
    }
    if (!rc) rc = n <= SMALL_BATCH ? add_each(&is->core, t, n) : ist_core_add_bulk(&is->core, t, n, NULL) ? -1 : 0;
    if (rc) {
        ist_core_truncate_terms(&is->core, n_terms);
        drop_nodes_from(is, n_terms);
    }
    free(t);
    return rc;
}

static int m_remove_statement(librdf_storage *storage, librdf_statement *st)
{
    istore *is = librdf_storage_get_instance(storage);
    if (!legal(st)) return 1;
    int64_t s = find_id(is, st->subject), p = find_id(is, st->predicate), o = find_id(is, st->object);
    if (s < 0 || p < 0 || o < 0) return 0;
    return ist_core_remove(&is->core, (uint32_t)s, (uint32_t)p, (uint32_t)o) < 0 ? 1 : 0;
}

static int m_contains(librdf_storage *storage, librdf_statement *st)
{
    istore *is = librdf_storage_get_instance(storage);
    int64_t s = find_id(is, st->subject), p = find_id(is, st->predicate), o = find_id(is, st->object);
    return s >= 0 && p >= 0 && o >= 0 && ist_core_contains(&is->core, (uint32_t)s, (uint32_t)p, (uint32_t)o);
}

static librdf_stream *m_serialise(librdf_storage *storage)
{
    return new_stream(librdf_storage_get_instance(storage), -1, -1, -1);
}

static librdf_stream *m_find(librdf_storage *storage, librdf_statement *st)
{
    istore *is = librdf_storage_get_instance(storage);
    int64_t id[3] = { -1, -1, -1 };
    librdf_node *part[3] = { st->subject, st->predicate, st->object };
    for (int i = 0; i < 3; i++)
        if (part[i] && (id[i] = find_id(is, part[i])) < 0) return librdf_new_empty_stream(is->world);
    return new_stream(is, id[0], id[1], id[2]);
}

static int m_sync(librdf_storage *storage)
{
    istore *is = librdf_storage_get_instance(storage);
    if (!is->path) return 0;
    if (ist_snapshot_save(&is->core, is->path, is->extra, is->n_extra) == 0) return 0;
    librdf_log(is->world, 0, LIBRDF_LOG_ERROR, LIBRDF_FROM_STORAGE, NULL, "%s", kgm_error_text());
    return 1;
}

static void fill_factory(librdf_storage_factory *f)
{
    f->version            = LIBRDF_STORAGE_INTERFACE_VERSION;
    f->init               = m_init;
    f->terminate          = m_terminate;
    f->open               = m_open;
    f->close              = m_close;
    f->size               = m_size;
    f->add_statement      = m_add_statement;
    f->add_statements     = m_add_statements;
    f->remove_statement   = m_remove_statement;
    f->contains_statement = m_contains;
    f->serialise          = m_serialise;
    f->find_statements    = m_find;
    f->sync               = m_sync;
    /* find_sources/arcs/targets stay NULL: librdf then asks find_statements with two bound
     * terms, which is already a prefix range here. No contexts, no transactions. */
}

/* ---- public calls ---- */

int kgm_istore_register(librdf_world *w)
{
    const char *name;
    for (unsigned i = 0; librdf_storage_enumerate(w, i, &name, NULL) == 0; i++)
        if (strcmp(name, KGM_ISTORE_NAME) == 0) return 0;
    if (librdf_storage_register_factory(w, KGM_ISTORE_NAME, "kgmeta integer-indexed storage", fill_factory))
        return kgm_fail(KGM_ENOMEM, "cannot register the %s storage", KGM_ISTORE_NAME);
    return 0;
}

int kgm_istore_is(librdf_storage *st)
{
    return st && instance(st) != NULL;
}

static int new_storage(librdf_world *w, const char *path, librdf_storage **out)
{
    *out = NULL;
    int rc = kgm_istore_register(w);
    if (rc) return rc;
    kgm_error_clear();
    *out = librdf_new_storage(w, KGM_ISTORE_NAME, path, NULL);
    if (*out) return 0;
    return kgm_error_code() ? kgm_error_code() : kgm_fail(KGM_ENOMEM, "cannot create a %s storage", KGM_ISTORE_NAME);
}

int kgm_istore_new(librdf_world *w, librdf_storage **out)
{
    return new_storage(w, NULL, out);
}

/* Loads the snapshot itself rather than through librdf_new_storage's name, so a refusal
 * is returned to the caller instead of being logged through librdf. */
int kgm_istore_open(librdf_world *w, const char *path, librdf_storage **out)
{
    librdf_storage *st;
    int rc = new_storage(w, NULL, &st);
    if (rc) return rc;
    istore *is = instance(st);
    if ((rc = ist_snapshot_load(&is->core, path, &is->extra, &is->n_extra)) == 0 && !(is->path = strdup(path)))
        rc = kgm_fail(KGM_ENOMEM, "out of memory");
    if (rc) { librdf_free_storage(st); st = NULL; }
    *out = st;
    return rc;
}

static istore *checked(librdf_storage *st)
{
    istore *is = st ? instance(st) : NULL;
    if (!is) kgm_fail(KGM_EINVAL, "not a %s storage", KGM_ISTORE_NAME);
    return is;
}

int kgm_istore_save(librdf_storage *st, const char *path)
{
    istore *is = checked(st);
    return is ? ist_snapshot_save(&is->core, path, is->extra, is->n_extra) : KGM_EINVAL;
}

int kgm_istore_set_extra(librdf_storage *st, const void *data, size_t len)
{
    istore *is = checked(st);
    if (!is) return KGM_EINVAL;
    char *copy = malloc(len + 1);
    if (!copy) return kgm_fail(KGM_ENOMEM, "out of memory");
    if (len) memcpy(copy, data, len);
    copy[len] = 0;
    free(is->extra);
    is->extra = copy;
    is->n_extra = len;
    return 0;
}

const char *kgm_istore_extra(librdf_storage *st, size_t *len)
{
    istore *is = instance(st);
    *len = is ? is->n_extra : 0;
    return is && is->extra ? is->extra : "";
}

void kgm_istore_set_prefix_handler(librdf_storage *st, kgm_istore_prefix_fn fn, void *ud)
{
    istore *is = instance(st);
    if (!is) return;
    is->on_prefix = fn;
    is->prefix_ud = ud;
}

uint64_t kgm_istore_next_blank(librdf_storage *st)
{
    istore *is = instance(st);
    return is ? is->core.bnode_next : 0;
}

void kgm_istore_reserve_blanks(librdf_storage *st, uint64_t next)
{
    istore *is = instance(st);
    if (is && next > is->core.bnode_next) is->core.bnode_next = next;
}

int kgm_istore_triples(librdf_storage *st, const uint32_t **spo, size_t *n_triples)
{
    istore *is = checked(st);
    if (!is) return KGM_EINVAL;
    int rc = ist_core_compact(&is->core);
    if (rc) return rc;
    *spo = (const uint32_t *)is->core.base[IST_SPO];
    *n_triples = is->core.n_base;
    return 0;
}

int kgm_istore_view_take(librdf_storage *st, kgm_istore_view *out)
{
    istore *is = checked(st);
    if (!is) return KGM_EINVAL;
    int rc = ist_core_compact(&is->core);
    if (rc) return rc;
    const ist_core *c = &is->core;
    *out = (kgm_istore_view){
        .spo = (const uint32_t *)c->base[IST_SPO], .n_triples = c->n_base, .n_lit = c->cls.n_lit,
        .ent_of = c->cls.ent_of, .rel_of = c->cls.rel_of, .n_of = c->cls.cap_of,
        .ent_term = c->cls.ent_term, .rel_term = c->cls.rel_term,
        .n_ents = c->cls.n_ents, .n_rels = c->cls.n_rels, .gen = &c->gen, .gen_taken = c->gen,
    };
    return 0;
}

int64_t kgm_istore_find_key(librdf_storage *st, int kind, const char *bytes, size_t len)
{
    istore *is = instance(st);
    if (!is) return -1;
    is->key.len = 0;
    char k = (char)kind;
    if (kbuf_put(&is->key, &k, 1) || kbuf_put(&is->key, bytes, len)) return -1;
    return ist_dict_find(&is->core.dict, is->key.p, is->key.len);
}

size_t kgm_istore_n_terms(librdf_storage *st)
{
    istore *is = instance(st);
    return is ? is->core.dict.n : 0;
}

const char *kgm_istore_term(librdf_storage *st, uint32_t id, int *kind, size_t *len)
{
    istore *is = instance(st);
    if (!is || id >= is->core.dict.n) return NULL;
    size_t klen;
    const char *k = ist_dict_key(&is->core.dict, id, &klen);
    *kind = (unsigned char)k[0];
    *len = klen - 1;
    return k + 1;
}

int64_t kgm_istore_find_term(librdf_storage *st, librdf_node *node)
{
    istore *is = instance(st);
    return is && node ? find_id(is, node) : -1;
}

size_t kgm_istore_bytes(librdf_storage *st)
{
    istore *is = instance(st);
    return is ? ist_core_bytes(&is->core) + is->n_nodes * sizeof *is->nodes : 0;
}

/* ---- bulk load ---- */

/* Statements are staged as term keys and resolved to ids a batch at a time: the batch's
 * dictionary lookups are prefetched stage by stage (ist_dict_prefetch), so their cache
 * misses overlap instead of following one another. */
#define BATCH 64

typedef struct {
    size_t   off, len;          /* in loader.keys */
    uint64_t hash;
    int      blank;             /* a document blank label, not a dictionary key */
} staged_key;

typedef struct loader {
    istore        *is;
    raptor_parser *parser;
    const char    *file;        /* for error locations */
    ist_tri       *t;           /* staged SPO ids */
    size_t         n, cap;
    kbuf           keys;        /* the batch's term keys, back to back */
    staged_key     key[3 * BATCH];
    size_t         n_keys, n_seen;
    ist_dict       labels;      /* the document's blank labels ... */
    uint32_t      *label_id;    /* ... and the store id each one became */
    int            rc;
    int            have_line;   /* the error recorded in rc has its line */
    char           text[512];   /* the first error's message */
} loader;

/* A document blank label gets a fresh store label "b<N>" the first time it is seen, so two
 * documents using _:x never share a node and labels stay stable in the store. */
static int64_t blank_id(loader *L, const char *label, size_t label_len)
{
    int64_t li = ist_dict_find(&L->labels, label, label_len);
    if (li >= 0) return L->label_id[li];
    if ((li = ist_dict_intern(&L->labels, label, label_len)) < 0) return -1;
    uint32_t *ids = realloc(L->label_id, L->labels.cap * sizeof *ids);
    if (!ids) return -1;
    L->label_id = ids;
    char key[32];
    int64_t id;
    do {
        int len = snprintf(key, sizeof key, "%cb%llu", KGM_TERM_BLANK,
                           (unsigned long long)L->is->core.bnode_next++);
        id = ist_dict_find(&L->is->core.dict, key, (size_t)len) >= 0 ? -2
           : ist_dict_intern(&L->is->core.dict, key, (size_t)len);
    } while (id == -2);
    if (id >= 0) L->label_id[li] = (uint32_t)id;
    return id;
}

static int stage_key(loader *L, const raptor_term *t)
{
    staged_key *k = &L->key[L->n_keys++];
    k->off = L->keys.len;
    k->blank = t->type == RAPTOR_TERM_TYPE_BLANK;
    int rc = k->blank ? kbuf_put(&L->keys, t->value.blank.string, t->value.blank.string_len)
                      : term_key(&L->keys, t);
    k->len = L->keys.len - k->off;
    return rc;
}

/* Resolve the staged keys to ids (new terms interned in document order) and stage the
 * triples. */
static int flush_batch(loader *L)
{
    ist_dict *d = &L->is->core.dict;
    size_t n = L->n_keys;
    if (L->n + n / 3 > L->cap) {
        size_t cap = L->cap ? 2 * L->cap : 65536;     /* a batch is far below 65536 */
        ist_tri *g = realloc(L->t, cap * sizeof *g);
        if (!g) return kgm_fail(KGM_ENOMEM, "out of memory loading %s", L->file);
        L->t = g;
        L->cap = cap;
    }
    for (size_t i = 0; i < n; i++)
        if (!L->key[i].blank) {
            L->key[i].hash = ist_dict_hash(L->keys.p + L->key[i].off, L->key[i].len);
            ist_dict_prefetch(d, L->key[i].hash, 0);
        }
    for (int stage = 1; stage <= 2; stage++)
        for (size_t i = 0; i < n; i++)
            if (!L->key[i].blank) ist_dict_prefetch(d, L->key[i].hash, stage);
    for (size_t i = 0; i < n; i += 3) {
        int64_t id[3];
        for (int j = 0; j < 3; j++) {
            const staged_key *k = &L->key[i + j];
            const char *p = L->keys.p + k->off;
            id[j] = k->blank ? blank_id(L, p, k->len) : ist_dict_intern_h(d, p, k->len, k->hash);
            if (id[j] < 0) return kgm_fail(KGM_ENOMEM, "out of memory loading %s", L->file);
        }
        L->t[L->n++] = (ist_tri){ (uint32_t)id[0], (uint32_t)id[1], (uint32_t)id[2] };
    }
    L->n_keys = 0;
    L->keys.len = 0;
    return 0;
}

static void on_statement(void *ud, raptor_statement *st)
{
    loader *L = ud;
    if (L->rc) return;
    if (st->subject->type == RAPTOR_TERM_TYPE_LITERAL) {
        raptor_locator *loc = raptor_parser_get_locator(L->parser);
        L->rc = kgm_fail_at(KGM_ESYNTAX, L->file, loc ? loc->line : 0, loc ? loc->column : 0,
                            "a literal cannot be the subject of a triple");
        goto stop;
    }
    if (stage_key(L, st->subject) || stage_key(L, st->predicate) || stage_key(L, st->object)) {
        L->rc = kgm_fail(KGM_ENOMEM, "out of memory loading %s", L->file);
        goto stop;
    }
    if (L->n_keys == 3 * BATCH && (L->rc = flush_batch(L))) goto stop;
    if ((++L->n_seen & 0xffff) == 1)           /* the first statement, then every 64k */
        kgm_progress("loading %s: %zu triples", L->file, L->n_seen);
    if ((L->n_seen & 0xfff) == 1 && kgm_interrupted()) {   /* every 4k: 64k can take seconds under ASan */
        L->rc = kgm_fail(KGM_EINTR, "loading %s interrupted after %zu triples; nothing was added", L->file, L->n_seen);
        goto stop;
    }
    return;
stop:
    raptor_parser_parse_abort(L->parser);
}

/* The first error's text is kept; its place may come from a later message (raptor reports
 * an undefined prefix first without a line, then with one). */
static void on_log(void *ud, raptor_log_message *m)
{
    loader *L = ((istore *)ud)->loading;
    if (!L || m->level < RAPTOR_LOG_LEVEL_ERROR) return;
    int line = m->locator ? m->locator->line : -1, col = m->locator ? m->locator->column : -1;
    if (L->rc && (L->rc != KGM_ESYNTAX || L->have_line || line <= 0)) return;
    if (!L->rc) snprintf(L->text, sizeof L->text, "%s", m->text ? m->text : "parse error");
    L->have_line = line > 0;
    L->rc = kgm_fail_at(KGM_ESYNTAX, L->file, line > 0 ? line : 0, col > 0 ? col : 0, "%s", L->text);
}

static void on_namespace(void *ud, raptor_namespace *ns)
{
    loader *L = ud;
    raptor_uri *u = raptor_namespace_get_uri(ns);
    if (!L->is->on_prefix || !u || L->rc) return;
    const unsigned char *p = raptor_namespace_get_prefix(ns);
    if (L->is->on_prefix(L->is->prefix_ud, p ? (const char *)p : "", (const char *)raptor_uri_as_string(u)))
        L->rc = kgm_fail(KGM_ENOMEM, "out of memory loading %s", L->file);
}

typedef int (*parse_fn)(raptor_parser *p, void *src, raptor_uri *base);

typedef struct { const char *text; size_t len; FILE *fh; const char *path; } load_src;

static int parse_file(raptor_parser *p, void *src, raptor_uri *base)
{
    load_src *s = src;
    return raptor_parser_parse_file_stream(p, s->fh, s->path, base);
}

static int parse_text(raptor_parser *p, void *src, raptor_uri *base)
{
    load_src *s = src;
    return raptor_parser_parse_start(p, base)
        || raptor_parser_parse_chunk(p, (const unsigned char *)s->text, s->len, 1);
}

/* The default base is the file's URI, or the working directory for a string. */
static raptor_uri *base_uri(raptor_world *rw, const char *base, const char *path)
{
    if (base) return raptor_new_uri(rw, (const unsigned char *)base);
    char cwd[4096];
    const char *name = path ? path : (getcwd(cwd, sizeof cwd - 2) ? strcat(cwd, "/") : "/");
    unsigned char *s = raptor_uri_filename_to_uri_string(name);
    if (!s) return NULL;
    raptor_uri *u = raptor_new_uri(rw, s);
    raptor_free_memory(s);
    return u;
}

static int bulk_load(istore *is, load_src *src, parse_fn parse, const char *syntax, const char *base,
                     size_t *n_added)
{
    loader L = { .is = is, .file = src->path ? src->path : "<string>" };
    uint32_t n_terms = is->core.dict.n;
    uint64_t bnode_next = is->core.bnode_next;
    if (!is->raptor) {
        raptor_world *rw = raptor_new_world();
        if (!rw) return kgm_fail(KGM_ENOMEM, "cannot create a raptor world");
        raptor_world_set_log_handler(rw, is, on_log);
        if (raptor_world_open(rw)) {
            raptor_free_world(rw);
            return kgm_fail(KGM_ENOMEM, "cannot open a raptor world");
        }
        is->raptor = rw;
    }
    raptor_world *rw = is->raptor;
    raptor_uri *b = NULL;
    is->loading = &L;
    if (!(L.parser = raptor_new_parser(rw, syntax)))
        L.rc = kgm_fail(KGM_EINVAL, "unknown syntax '%s'", syntax);
    else if (!(b = base_uri(rw, base, src->path)))
        L.rc = kgm_fail(KGM_EINVAL, "bad base URI for %s", L.file);
    if (!L.rc) {
        raptor_parser_set_statement_handler(L.parser, &L, on_statement);
        raptor_parser_set_namespace_handler(L.parser, &L, on_namespace);
        if (parse(L.parser, src, b) && !L.rc) L.rc = kgm_fail(KGM_ESYNTAX, "%s: parse failed", L.file);
    }
    if (b) raptor_free_uri(b);
    if (L.parser) raptor_free_parser(L.parser);
    is->loading = NULL;
    kgm_progress_done();
    size_t added = 0;
    if (!L.rc) L.rc = flush_batch(&L);
    if (!L.rc) L.rc = ist_core_add_bulk(&is->core, L.t, L.n, &added);
    if (L.rc) {                               /* all or nothing: forget the new terms too */
        ist_core_truncate_terms(&is->core, n_terms);
        drop_nodes_from(is, n_terms);
        is->core.bnode_next = bnode_next;
    }
    if (n_added) *n_added = L.rc ? 0 : added;
    free(L.t);
    free(L.keys.p);
    free(L.label_id);
    free(L.labels.bytes);
    free(L.labels.off);
    free(L.labels.slots);
    return L.rc;
}

int kgm_istore_load_file(librdf_storage *st, const char *path, const char *syntax, const char *base,
                         size_t *n_added)
{
    istore *is = checked(st);
    if (!is) return KGM_EINVAL;
    load_src src = { .path = path, .fh = fopen(path, "rb") };
    if (!src.fh) return kgm_fail(KGM_EIO, "cannot open %s: %s", path, strerror(errno));
    int rc = bulk_load(is, &src, parse_file, syntax, base, n_added);
    fclose(src.fh);
    return rc;
}

int kgm_istore_load_string(librdf_storage *st, const char *text, size_t len, const char *syntax,
                           const char *base, size_t *n_added)
{
    istore *is = checked(st);
    if (!is) return KGM_EINVAL;
    load_src src = { .text = text, .len = len };
    /* raptor 2.0.15's N-Triples parser leaks a URI per datatype on every parse; strings
     * (shell edits, recorded runs and trials) are short and many, so they go through the
     * Turtle parser, which reads N-Triples as the subset it is, without the leak. */
    if (syntax && !strcmp(syntax, "ntriples")) syntax = "turtle";
    return bulk_load(is, &src, parse_text, syntax, base, n_added);
}
