/* kg/store.c - the store's life and durability: the shared librdf world and its logger,
 * the directory (snapshot + journal), committing changes, prefixes, compaction.
 * Loading files and typed triples are in store_edit.c, queries, export and extraction in
 * store_query.c, raptor parsing in store_parse.c.
 *
 * A store directory holds two files: a snapshot, replaced only atomically (temporary file
 * + rename), and the journal.
 *   snapshot.kgs "kgmeta" storage: the binary istore snapshot (kg/istore.h, checksummed);
 *                its extra block is "generation G\n" then "prefix P: <NS>\n" lines.
 *   snapshot.nt  'trees' storage: "# kgmeta snapshot 1 generation G" and "# prefix P: <NS>"
 *                lines, then the graph in N-Triples.
 *   journal      "KGMJRNL1" + generation G (u64 LE), then records: u32 length, u32 CRC-32
 *                of the payload, payload = one op byte + data. 'A' adds and 'R' removes the
 *                N-Triples in data; 'P' sets a prefix ("prefix\0ns"). A record is fsync'd
 *                before the change is made in memory, so what was acknowledged survives.
 * Opening replays the journal over the snapshot when their generations match; a journal
 * of an older generation was already folded into the snapshot by a compaction that died
 * before resetting it, and is reset. A record cut off at the end is dropped (reported by
 * kgm_store_open_report) and the file truncated to the last complete record. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "error.h"
#include "istore.h"
#include "store_internal.h"

#define JOURNAL_MAGIC "KGMJRNL1"
#define JOURNAL_HEAD  16
#define SNAPSHOT_TAG  "# kgmeta snapshot 1 generation "
#define SNAPSHOT_NT   "snapshot.nt"
#define SNAPSHOT_KGS  "snapshot.kgs"

/* ---- the shared world and its logger ---- */

static librdf_world *g_world;
static int g_world_refs;

static struct {
    int  errors, warnings;
    int  have_first, have_loc;
    char text[768];
    char uri[512];
    int  line, col;
} g_log;

static int on_log(void *ud, librdf_log_message *m)
{
    (void)ud;
    int level = librdf_log_message_level(m);
    /* rasqal warns about unused or unbound variables on ordinary queries (notes §3.6). */
    if (level < LIBRDF_LOG_ERROR) {
        if (level == LIBRDF_LOG_WARN && librdf_log_message_facility(m) != LIBRDF_FROM_QUERY)
            g_log.warnings++;
        return 1;
    }
    g_log.errors++;
    const char *msg = librdf_log_message_message(m);
    if (!g_log.have_first) {
        g_log.have_first = 1;
        snprintf(g_log.text, sizeof g_log.text, "%s", msg ? msg : "unknown error");
    }
    /* An undefined prefix first logs a message without a place, then one with a line. */
    raptor_locator *loc = librdf_log_message_locator(m);
    if (!g_log.have_loc && loc && loc->line > 0) {
        g_log.have_loc = 1;
        g_log.line = loc->line;
        g_log.col = loc->column;
        snprintf(g_log.uri, sizeof g_log.uri, "%s", loc->uri ? (const char *)raptor_uri_as_string(loc->uri) : "");
    }
    return 1;                          /* handled: librdf prints nothing */
}

void store_log_reset(void)
{
    memset(&g_log, 0, sizeof g_log);
}

int store_log_errors(void) { return g_log.errors; }

int store_log_fail(int code, const char *file, int line_shift, const char *fallback)
{
    const char *text = g_log.have_first ? g_log.text : fallback;
    if (!file) {
        if (g_log.have_loc && g_log.line - line_shift > 0)
            return kgm_fail(code, "line %d: %s", g_log.line - line_shift, text);
        return kgm_fail(code, "%s", text);
    }
    if (!g_log.have_loc) return kgm_fail_at(code, file, 0, 0, "%s", text);
    return kgm_fail_at(code, file, g_log.line - line_shift, g_log.col > 0 ? g_log.col : 0, "%s", text);
}

static int world_acquire(librdf_world **out)
{
    if (!g_world) {
        librdf_world *w = librdf_new_world();
        if (!w) return kgm_fail(KGM_ENOMEM, "cannot create the librdf world");
        librdf_world_open(w);
        librdf_world_set_logger(w, NULL, on_log);
        g_world = w;
    }
    g_world_refs++;
    *out = g_world;
    return 0;
}

static void world_release(void)
{
    if (--g_world_refs == 0) {
        librdf_free_world(g_world);
        g_world = NULL;
    }
}

/* ---- files ---- */

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

int store_write_ntriples(kgm_store *s, librdf_model *m, FILE *out)
{
    raptor_iostream *io = raptor_new_iostream_to_file_handle(librdf_world_get_raptor(s->world), out);
    librdf_stream *st = io ? librdf_model_as_stream(m) : NULL;
    int rc = st ? 0 : kgm_fail(KGM_ENOMEM, "cannot write N-Triples");
    for (; !rc && !librdf_stream_end(st); librdf_stream_next(st))
        if (raptor_statement_ntriples_write(librdf_stream_get_object(st), io, 0)) rc = KGM_EIO;
    if (st) librdf_free_stream(st);
    if (io) raptor_free_iostream(io);
    return rc ? rc : ferror(out) ? KGM_EIO : 0;
}

/* ---- CRC-32 (IEEE, reflected) for journal records ---- */

/* Continues a CRC over more bytes: start with crc32_more(0, ...), feed the result back. */
static uint32_t crc32_more(uint32_t crc, const void *data, size_t len)
{
    static uint32_t table[256];
    if (!table[1]) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    }
    uint32_t c = crc ^ 0xFFFFFFFFu;
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static void put_u32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint32_t get_u32(const unsigned char *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static void put_u64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint64_t get_u64(const unsigned char *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }

/* ---- the journal ---- */

/* Appends one record and fsyncs it; on failure the file is cut back to where it was. */
static int journal_append(kgm_store *s, char op, const char *data, size_t len)
{
    if (s->journal_fd < 0) return 0;                         /* scratch store */
    if (len + 1 > UINT32_MAX) return kgm_fail(KGM_EINVAL, "change too large for one journal record");
    off_t end = lseek(s->journal_fd, 0, SEEK_END);
    unsigned char head[9];
    put_u32(head, (uint32_t)(len + 1));
    put_u32(head + 4, crc32_more(crc32_more(0, &op, 1), data, len));
    head[8] = (unsigned char)op;
    int bad = end < 0 || write_all(s->journal_fd, head, 9) || write_all(s->journal_fd, data, len)
           || fsync(s->journal_fd);
    if (bad) {
        int err = errno;
        if (end >= 0 && ftruncate(s->journal_fd, end) == 0) fsync(s->journal_fd);
        return kgm_fail(KGM_EIO, "cannot write the journal of %s: %s", s->dir, strerror(err));
    }
    return 0;
}

static int write_journal_head(FILE *f, void *head)
{
    return fwrite(head, 1, JOURNAL_HEAD, f) == JOURNAL_HEAD ? 0 : KGM_EIO;
}

/* A fresh journal of generation gen, written atomically; the lock moves to the new file. */
static int journal_reset(kgm_store *s, uint64_t gen)
{
    unsigned char head[JOURNAL_HEAD];
    memcpy(head, JOURNAL_MAGIC, 8);
    put_u64(head + 8, gen);
    char *path = path_join(s->dir, "journal");
    if (!path) return kgm_fail(KGM_ENOMEM, "out of memory");
    int rc = kgm_write_atomic(path, write_journal_head, head, KGM_ATOMIC_DURABLE);
    int fd = rc ? -1 : open(path, O_RDWR);
    free(path);
    if (rc) return rc;
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB)) {
        if (fd >= 0) close(fd);
        return kgm_fail(KGM_EIO, "cannot reopen the journal of %s: %s", s->dir, strerror(errno));
    }
    if (s->journal_fd >= 0) close(s->journal_fd);
    s->journal_fd = fd;
    s->generation = gen;
    return 0;
}

/* ---- applying changes (from the journal or from the user) ---- */

static int apply_remove(kgm_store *s, librdf_model *changes)
{
    librdf_stream *st = librdf_model_as_stream(changes);
    if (!st) return kgm_fail(KGM_ENOMEM, "cannot iterate a model");
    for (; !librdf_stream_end(st); librdf_stream_next(st))
        librdf_model_remove_statement(s->model, librdf_stream_get_object(st));
    librdf_free_stream(st);
    return 0;
}

static int apply_add(kgm_store *s, librdf_model **changes)
{
    int same_kind = kgm_istore_is(librdf_model_get_storage(*changes)) == s->kgmeta;
    if (same_kind && librdf_model_size(s->model) == 0) {   /* adopt the parsed model: no copy */
        store_free_model(s->model);
        s->model = *changes;
        s->storage = librdf_model_get_storage(s->model);
        *changes = NULL;
        return 0;
    }
    librdf_stream *st = librdf_model_as_stream(*changes);
    if (!st) return kgm_fail(KGM_ENOMEM, "cannot iterate a model");
    int rc = librdf_model_add_statements(s->model, st);
    librdf_free_stream(st);
    return rc ? kgm_fail(KGM_ENOMEM, "cannot add statements to the store") : 0;
}

static int write_snapshot_file(kgm_store *s);

/* A big load into an empty "kgmeta" directory store: the staged storage is written as the
 * next snapshot (one sequential write of the binary arrays instead of a journal record of
 * every triple), then adopted; the journal is reset to the new generation. If the
 * snapshot cannot be written the store is as it was. */
static int commit_as_snapshot(kgm_store *s, librdf_model **changes)
{
    librdf_model *old = s->model;
    s->model = *changes;
    s->storage = librdf_model_get_storage(s->model);
    int rc = write_snapshot_file(s);
    if (rc) {
        s->model = old;
        s->storage = librdf_model_get_storage(old);
        store_free_model(*changes);
    } else {
        store_free_model(old);               /* the snapshot is in place: no way back */
        rc = journal_reset(s, s->generation + 1);
    }
    *changes = NULL;
    return rc;
}

int store_commit(kgm_store *s, char op, librdf_model **changes)
{
    int rc = 0, n = librdf_model_size(*changes);
    s->changes++;                 /* views go stale even if this fails half way */
    if (op == 'A' && s->kgmeta && s->dir && n >= STORE_BIG_LOAD && kgm_store_size(s) == 0
        && kgm_istore_is(librdf_model_get_storage(*changes)))
        return commit_as_snapshot(s, changes);
    if (s->journal_fd >= 0) {
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        rc = mem ? store_write_ntriples(s, *changes, mem) : KGM_ENOMEM;
        if (mem && fclose(mem) && !rc) rc = KGM_ENOMEM;
        rc = rc ? kgm_fail(KGM_ENOMEM, "cannot serialize the change for the journal") : journal_append(s, op, text, len);
        free(text);
    }
    if (!rc) rc = op == 'A' ? apply_add(s, changes) : apply_remove(s, *changes);
    store_free_model(*changes);
    *changes = NULL;
    /* Journaled, so durable already; a snapshot keeps the next open from replaying it all. */
    if (!rc && s->kgmeta && s->dir && n >= STORE_BIG_LOAD && kgm_store_compact(s)) kgm_error_clear();
    return rc;
}

/* ---- prefixes ---- */

int store_set_prefix_mem(kgm_store *s, const char *prefix, const char *ns)
{
    for (size_t i = 0; i < s->n_prefixes; i++) {
        if (strcmp(s->prefixes[i].prefix, prefix) != 0) continue;
        if (strcmp(s->prefixes[i].ns, ns) == 0) return 0;
        char *copy = strdup(ns);
        if (!copy) return KGM_ENOMEM;
        free((char *)s->prefixes[i].ns);
        s->prefixes[i].ns = copy;
        return 0;
    }
    if (s->n_prefixes == s->cap_prefixes) {
        size_t nc = s->cap_prefixes ? s->cap_prefixes * 2 : 16;
        kgm_prefix *p = realloc(s->prefixes, nc * sizeof *p);
        if (!p) return KGM_ENOMEM;
        s->prefixes = p;
        s->cap_prefixes = nc;
    }
    char *p = strdup(prefix), *n = strdup(ns);
    if (!p || !n) { free(p); free(n); return KGM_ENOMEM; }
    s->prefixes[s->n_prefixes++] = (kgm_prefix){ p, n };
    return 0;
}

const char *store_prefix_ns(const kgm_store *s, const char *prefix, size_t len)
{
    for (size_t i = 0; i < s->n_prefixes; i++)
        if (strlen(s->prefixes[i].prefix) == len && strncmp(s->prefixes[i].prefix, prefix, len) == 0)
            return s->prefixes[i].ns;
    return NULL;
}

static int valid_prefix_name(const char *p)
{
    for (const char *c = p; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
              || *c == '_' || *c == '-' || *c == '.' || (unsigned char)*c >= 0x80))
            return 0;
    return 1;
}

int kgm_store_set_prefix(kgm_store *s, const char *prefix, const char *ns)
{
    if (!valid_prefix_name(prefix)) return kgm_fail(KGM_EINVAL, "bad prefix name '%s'", prefix);
    if (!*ns || strpbrk(ns, "<> \"{}|\\^`\t\n")) return kgm_fail(KGM_EINVAL, "bad namespace IRI '%s'", ns);
    const char *old = store_prefix_ns(s, prefix, strlen(prefix));
    if (old && strcmp(old, ns) == 0) return 0;
    size_t lp = strlen(prefix), ln = strlen(ns);
    char *rec = malloc(lp + ln + 2);
    if (!rec) return kgm_fail(KGM_ENOMEM, "out of memory");
    memcpy(rec, prefix, lp + 1);
    memcpy(rec + lp + 1, ns, ln + 1);
    int rc = journal_append(s, 'P', rec, lp + ln + 2);   /* both NULs */
    free(rec);
    if (rc) return rc;
    return store_set_prefix_mem(s, prefix, ns) ? kgm_fail(KGM_ENOMEM, "out of memory") : 0;
}

const kgm_prefix *kgm_store_prefixes(const kgm_store *s, size_t *n)
{
    *n = s->n_prefixes;
    return s->prefixes;
}

char *kgm_store_expand(const kgm_store *s, const char *term)
{
    size_t len = strlen(term);
    if (term[0] == '<') {
        if (len < 2 || term[len - 1] != '>') { kgm_fail(KGM_ESYNTAX, "unterminated IRI %s", term); return NULL; }
        char *iri = strndup(term + 1, len - 2);
        if (!iri) kgm_fail(KGM_ENOMEM, "out of memory");
        return iri;
    }
    const char *colon = strchr(term, ':');
    if (!colon || term[0] == '_' || term[0] == '"') {
        kgm_fail(KGM_ESYNTAX, "not an IRI or prefixed name: %s", term);
        return NULL;
    }
    const char *ns = store_prefix_ns(s, term, (size_t)(colon - term));
    if (!ns) {
        kgm_fail(KGM_ENOTFOUND, "undefined prefix '%.*s:' in %s", (int)(colon - term), term, term);
        return NULL;
    }
    size_t ln = strlen(ns), ll = strlen(colon + 1);
    char *iri = malloc(ln + ll + 1);
    if (!iri) { kgm_fail(KGM_ENOMEM, "out of memory"); return NULL; }
    memcpy(iri, ns, ln);
    memcpy(iri + ln, colon + 1, ll + 1);
    return iri;
}

/* ---- opening: snapshot, then journal ---- */

/* Generation and prefixes from the kgmeta snapshot's extra block ("" when none). */
static int read_snapshot_extra(kgm_store *s, const char *path)
{
    size_t len;
    const char *p = kgm_istore_extra(s->storage, &len);
    if (!*p) return 0;
    if (strncmp(p, "generation ", 11) != 0) return kgm_fail(KGM_EFORMAT, "%s: bad store header in the snapshot", path);
    s->generation = strtoull(p + 11, NULL, 10);
    for (const char *line = strchr(p, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        const char *px = line + 1, *colon = strchr(px, ':'), *lt = strchr(px, '<'), *gt = strchr(px, '>');
        if (strncmp(px, "prefix ", 7) != 0 || !colon || !lt || !gt || gt < lt || colon > lt)
            return kgm_fail(KGM_EFORMAT, "%s: bad prefix line in the snapshot", path);
        char *prefix = strndup(px + 7, (size_t)(colon - px - 7)), *ns = strndup(lt + 1, (size_t)(gt - lt - 1));
        int bad = !prefix || !ns || store_set_prefix_mem(s, prefix, ns);
        free(prefix);
        free(ns);
        if (bad) return kgm_fail(KGM_ENOMEM, "out of memory");
    }
    return 0;
}

/* The kgmeta snapshot replaces the empty storage made by kgm_store_open. */
static int read_snapshot_kgs(kgm_store *s)
{
    char *path = path_join(s->dir, SNAPSHOT_KGS);
    if (!path) return kgm_fail(KGM_ENOMEM, "out of memory");
    librdf_storage *st = NULL;
    librdf_model *m = NULL;
    int rc = access(path, F_OK) ? 0 : kgm_istore_open(s->world, path, &st);
    if (!rc && st && !(m = librdf_new_model(s->world, st, NULL))) rc = kgm_fail(KGM_ENOMEM, "cannot create a model");
    if (!rc && m) {
        store_free_model(s->model);
        s->model = m;
        s->storage = st;
        rc = read_snapshot_extra(s, path);
    } else if (st && !m) {
        librdf_free_storage(st);
    }
    free(path);
    return rc;
}

static int read_snapshot(kgm_store *s)
{
    if (s->kgmeta) return read_snapshot_kgs(s);
    char *path = path_join(s->dir, SNAPSHOT_NT);
    if (!path) return kgm_fail(KGM_ENOMEM, "out of memory");
    FILE *fh = fopen(path, "rb");
    if (!fh) {
        int rc = errno == ENOENT ? 0 : kgm_fail(KGM_EIO, "cannot read %s: %s", path, strerror(errno));
        free(path);
        return rc;
    }
    char line[4096];
    int rc = 0;
    if (!fgets(line, sizeof line, fh) || strncmp(line, SNAPSHOT_TAG, strlen(SNAPSHOT_TAG)) != 0)
        rc = kgm_fail_at(KGM_EFORMAT, path, 1, 0, "not a kgmeta snapshot");
    else
        s->generation = strtoull(line + strlen(SNAPSHOT_TAG), NULL, 10);
    /* Prefix lines follow the tag; the first other line starts the N-Triples. */
    long body = ftell(fh);
    while (!rc && fgets(line, sizeof line, fh) && strncmp(line, "# prefix ", 9) == 0) {
        char *colon = strchr(line + 9, ':'), *lt = strchr(line, '<'), *gt = strrchr(line, '>');
        if (!colon || !lt || !gt || gt < lt) { rc = kgm_fail_at(KGM_EFORMAT, path, 0, 0, "bad prefix line"); break; }
        *colon = 0;
        *gt = 0;
        if (store_set_prefix_mem(s, line + 9, lt + 1)) rc = kgm_fail(KGM_ENOMEM, "out of memory");
        body = ftell(fh);
    }
    if (!rc && fseek(fh, body, SEEK_SET)) rc = kgm_fail(KGM_EIO, "cannot read %s: %s", path, strerror(errno));
    if (!rc) rc = store_parse(s, s->model, path, fh, NULL, 0, "ntriples", "file:///snapshot", BNODES_KEEP, NULL);
    fclose(fh);
    free(path);
    return rc;
}

static int replay_record(kgm_store *s, const char *payload, size_t len)
{
    char op = payload[0];
    if (op == 'P') {
        const char *prefix = payload + 1, *ns = memchr(prefix, 0, len - 1);
        if (!ns || payload[len - 1] != 0) return kgm_fail(KGM_EFORMAT, "bad prefix record in the journal");
        return store_set_prefix_mem(s, prefix, ns + 1) ? kgm_fail(KGM_ENOMEM, "out of memory") : 0;
    }
    if (op != 'A' && op != 'R') return kgm_fail(KGM_EFORMAT, "unknown record '%c' in the journal", op);
    librdf_model *m = store_scratch_model(s->world);
    if (!m) return kgm_fail(KGM_ENOMEM, "cannot create a model");
    int rc = store_parse(s, m, NULL, NULL, payload + 1, len - 1, "ntriples", "file:///journal", BNODES_KEEP, NULL);
    if (rc) { store_free_model(m); return rc; }
    rc = op == 'A' ? apply_add(s, &m) : apply_remove(s, m);
    store_free_model(m);
    return rc;
}

/* Reads the whole journal (it is small between compactions) and replays it. */
static int replay_journal(kgm_store *s)
{
    struct stat st;
    if (fstat(s->journal_fd, &st)) return kgm_fail(KGM_EIO, "cannot stat the journal: %s", strerror(errno));
    if (st.st_size == 0) return journal_reset(s, s->generation);   /* created by this open */
    unsigned char *buf = malloc((size_t)st.st_size);
    if (!buf) return kgm_fail(KGM_ENOMEM, "out of memory reading the journal");
    size_t size = (size_t)st.st_size, got = 0;
    while (got < size) {
        ssize_t k = pread(s->journal_fd, buf + got, size - got, (off_t)got);
        if (k <= 0) { free(buf); return kgm_fail(KGM_EIO, "cannot read the journal: %s", strerror(errno)); }
        got += (size_t)k;
    }
    int rc = 0;
    if (size < JOURNAL_HEAD || memcmp(buf, JOURNAL_MAGIC, 8) != 0) {
        rc = kgm_fail(KGM_EFORMAT, "%s/journal: not a kgmeta journal", s->dir);
    } else if (get_u64(buf + 8) < s->generation) {
        rc = journal_reset(s, s->generation);      /* already folded into the snapshot */
    } else if (get_u64(buf + 8) > s->generation) {
        rc = kgm_fail(KGM_EFORMAT, "%s: the journal is newer than the snapshot (snapshot lost?)", s->dir);
    } else {
        size_t pos = JOURNAL_HEAD;
        while (!rc && size - pos >= 8) {
            uint32_t len = get_u32(buf + pos), crc = get_u32(buf + pos + 4);
            if (len == 0 || len > size - pos - 8 || crc32_more(0, buf + pos + 8, len) != crc) break;
            rc = replay_record(s, (const char *)buf + pos + 8, len);
            if (!rc) { pos += 8 + len; s->replayed++; }
        }
        if (!rc && pos < size) {                    /* a damaged tail: drop it for good */
            s->dropped_bytes = size - pos;
            if (ftruncate(s->journal_fd, (off_t)pos) || fsync(s->journal_fd))
                rc = kgm_fail(KGM_EIO, "cannot truncate the journal: %s", strerror(errno));
        }
    }
    free(buf);
    return rc;
}

/* Temporary files of rewrites cut short by a crash (PATH.tmp.PID, see atomicfile.h): the
 * lock is ours, so no live writer owns them. Best effort: a left file is only litter. */
static void remove_stale_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        const char *n = e->d_name;
        if ((!strncmp(n, "snapshot.", 9) || !strncmp(n, "journal.", 8)) && strstr(n, ".tmp.")) {
            char *path = path_join(dir, n);
            if (path) unlink(path);
            free(path);
        }
    }
    closedir(d);
}

static int open_dir(kgm_store *s, const char *dir)
{
    if (mkdir(dir, 0755) && errno != EEXIST) return kgm_fail(KGM_EIO, "cannot create %s: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode)) return kgm_fail(KGM_EIO, "%s is not a directory", dir);
    if (!(s->dir = strdup(dir))) return kgm_fail(KGM_ENOMEM, "out of memory");
    char *path = path_join(dir, "journal");
    if (!path) return kgm_fail(KGM_ENOMEM, "out of memory");
    s->journal_fd = open(path, O_RDWR | O_CREAT, 0644);
    free(path);
    if (s->journal_fd < 0) return kgm_fail(KGM_EIO, "cannot open the journal in %s: %s", dir, strerror(errno));
    if (flock(s->journal_fd, LOCK_EX | LOCK_NB))
        return kgm_fail(KGM_ESTATE, "the store %s is in use by another process", dir);
    remove_stale_temporaries(dir);
    char *other = path_join(dir, s->kgmeta ? SNAPSHOT_NT : SNAPSHOT_KGS);
    if (!other) return kgm_fail(KGM_ENOMEM, "out of memory");
    int mismatch = access(other, F_OK) == 0;
    free(other);
    if (mismatch)
        return kgm_fail(KGM_ESTATE, "%s holds a '%s' store, not '%s'", dir,
                        s->kgmeta ? "trees" : KGM_ISTORE_NAME, s->kgmeta ? KGM_ISTORE_NAME : "trees");
    int rc = read_snapshot(s);
    return rc ? rc : replay_journal(s);
}

/* NULL: 'trees' when dir holds a 'trees' snapshot, else the default. */
static int pick_storage(const char *dir, const char *storage, int *kgmeta)
{
    if (storage) {
        *kgmeta = strcmp(storage, KGM_ISTORE_NAME) == 0;
        if (!*kgmeta && strcmp(storage, "trees") != 0)
            return kgm_fail(KGM_EINVAL, "unknown storage '%s' (%s or trees)", storage, KGM_ISTORE_NAME);
        return 0;
    }
    *kgmeta = 1;
    char *nt = dir ? path_join(dir, SNAPSHOT_NT) : NULL;
    if (nt && access(nt, F_OK) == 0) *kgmeta = 0;
    free(nt);
    return 0;
}

static librdf_model *new_model(kgm_store *s)
{
    if (!s->kgmeta) return store_scratch_model(s->world);
    librdf_storage *st;
    if (kgm_istore_new(s->world, &st)) return NULL;
    librdf_model *m = librdf_new_model(s->world, st, NULL);
    if (!m) librdf_free_storage(st);
    return m;
}

int kgm_store_open(kgm_store **out, const char *dir)
{
    return kgm_store_open_with(out, dir, NULL);
}

int kgm_store_open_with(kgm_store **out, const char *dir, const char *storage)
{
    *out = NULL;
    int kgmeta;
    int rc = pick_storage(dir, storage, &kgmeta);
    if (rc) return rc;
    kgm_store *s = calloc(1, sizeof *s);
    if (!s) return kgm_fail(KGM_ENOMEM, "out of memory");
    s->journal_fd = -1;
    s->kgmeta = kgmeta;
    rc = world_acquire(&s->world);
    if (rc) { free(s); return rc; }
    s->model = new_model(s);
    if (!s->model) rc = kgm_fail(KGM_ENOMEM, "cannot create a '%s' model", kgmeta ? KGM_ISTORE_NAME : "trees");
    else s->storage = librdf_model_get_storage(s->model);
    if (!rc && dir) rc = open_dir(s, dir);
    if (rc) { kgm_store_free(s); return rc; }
    *out = s;
    return 0;
}

void kgm_store_free(kgm_store *s)
{
    if (!s) return;
    store_free_model(s->model);
    if (s->journal_fd >= 0) close(s->journal_fd);
    for (size_t i = 0; i < s->n_prefixes; i++) {
        free((char *)s->prefixes[i].prefix);
        free((char *)s->prefixes[i].ns);
    }
    free(s->prefixes);
    free(s->dir);
    if (s->world) world_release();
    free(s);
}

const char *kgm_store_dir(const kgm_store *s) { return s->dir; }

const char *kgm_store_storage(const kgm_store *s) { return s->kgmeta ? KGM_ISTORE_NAME : "trees"; }

size_t kgm_store_size(const kgm_store *s)
{
    int n = librdf_model_size(s->model);
    return n < 0 ? 0 : (size_t)n;
}

void kgm_store_open_report(const kgm_store *s, size_t *replayed, size_t *dropped_bytes)
{
    if (replayed) *replayed = s->replayed;
    if (dropped_bytes) *dropped_bytes = s->dropped_bytes;
}

/* ---- compaction ---- The new snapshot carries generation G+1 and is in place (renamed,
 * directory synced) before the journal is reset to G+1; dying in between leaves a journal
 * of generation G, which opening recognises as folded in. */
static int write_snapshot(FILE *f, void *store)
{
    kgm_store *s = store;
    fprintf(f, SNAPSHOT_TAG "%llu\n", (unsigned long long)s->generation + 1);
    for (size_t i = 0; i < s->n_prefixes; i++)
        fprintf(f, "# prefix %s: <%s>\n", s->prefixes[i].prefix, s->prefixes[i].ns);
    return store_write_ntriples(s, s->model, f);
}

/* The kgmeta snapshot: the istore's own atomic save, with generation G+1 and the
 * prefixes in its extra block. */
static int write_snapshot_kgs(kgm_store *s, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) return kgm_fail(KGM_ENOMEM, "out of memory");
    fprintf(mem, "generation %llu\n", (unsigned long long)s->generation + 1);
    for (size_t i = 0; i < s->n_prefixes; i++)
        fprintf(mem, "prefix %s: <%s>\n", s->prefixes[i].prefix, s->prefixes[i].ns);
    int rc = fclose(mem) ? kgm_fail(KGM_ENOMEM, "out of memory") : kgm_istore_set_extra(s->storage, text, len);
    free(text);
    return rc ? rc : kgm_istore_save(s->storage, path);
}

static int write_snapshot_file(kgm_store *s)
{
    char *path = path_join(s->dir, s->kgmeta ? SNAPSHOT_KGS : SNAPSHOT_NT);
    if (!path) return kgm_fail(KGM_ENOMEM, "out of memory");
    int rc = s->kgmeta ? write_snapshot_kgs(s, path) : kgm_write_atomic(path, write_snapshot, s, KGM_ATOMIC_DURABLE);
    free(path);
    return rc;
}

int kgm_store_compact(kgm_store *s)
{
    if (!s->dir) return 0;
    int rc = write_snapshot_file(s);
    return rc ? rc : journal_reset(s, s->generation + 1);
}
