/* src/modelfile.c - model files: encode to one buffer, checksum, write atomically; read the whole
 * file, verify before trusting any of it, decode. Not a general container: no compression, no
 * partial reads (model files here are kilobytes to a few megabytes). */
#include "modelfile.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "error.h"

static const char MAGIC[8] = { 'K', 'G', 'M', 'M', 'O', 'D', 'E', 'L' };
enum { HEAD_SIZE = 8 + 4 + 8, SUM_SIZE = 8, NAME_MAX_LEN = 255 };

typedef struct entry { char *key, *value; } entry;
typedef struct tensor { char *name; int rows, cols; float *data; } tensor;

struct kgm_modelfile {
    entry  *config;
    int     n_config, cap_config;
    tensor *tensors;
    int     n_tensors, cap_tensors;
};

/* ---- ownership ---- */
kgm_modelfile *kgm_modelfile_new(void)
{
    return calloc(1, sizeof(kgm_modelfile));
}

void kgm_modelfile_free(kgm_modelfile *mf)
{
    if (!mf) return;
    for (int i = 0; i < mf->n_config; i++) {
        free(mf->config[i].key);
        free(mf->config[i].value);
    }
    for (int i = 0; i < mf->n_tensors; i++) {
        free(mf->tensors[i].name);
        free(mf->tensors[i].data);
    }
    free(mf->config);
    free(mf->tensors);
    free(mf);
}

/* Room for one more element in a growing array. */
static int grow(void **arr, int *cap, int count, size_t elem)
{
    if (count < *cap) return KGM_OK;
    int ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p) return kgm_fail(KGM_ENOMEM, "model file: out of memory");
    *arr = p;
    *cap = ncap;
    return KGM_OK;
}

/* ---- building ---- */
static int key_ok(const char *key)
{
    if (!key || !*key) return 0;
    for (const char *c = key; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '.' || *c == '-'))
            return 0;
    return 1;
}

int kgm_modelfile_set(kgm_modelfile *mf, const char *key, const char *value)
{
    if (!key_ok(key))
        return kgm_fail(KGM_EINVAL, "model file: config key '%s' may hold only letters, digits, "
                        "'_', '.' and '-'", key ? key : "(null)");
    if (!value || strchr(value, '\n'))
        return kgm_fail(KGM_EINVAL, "model file: config value of %s is missing or has a newline", key);
    char *v = strdup(value);
    if (!v) return kgm_fail(KGM_ENOMEM, "model file: out of memory");
    for (int i = 0; i < mf->n_config; i++)
        if (strcmp(mf->config[i].key, key) == 0) {
            free(mf->config[i].value);
            mf->config[i].value = v;
            return KGM_OK;
        }
    char *k = strdup(key);
    if (!k || grow((void **)&mf->config, &mf->cap_config, mf->n_config, sizeof(entry)) < 0) {
        free(k);
        free(v);
        return kgm_fail(KGM_ENOMEM, "model file: out of memory");
    }
    mf->config[mf->n_config++] = (entry){ k, v };
    return KGM_OK;
}

static const tensor *find_tensor(const kgm_modelfile *mf, const char *name)
{
    for (int i = 0; i < mf->n_tensors; i++)
        if (strcmp(mf->tensors[i].name, name) == 0) return &mf->tensors[i];
    return NULL;
}

int kgm_modelfile_add(kgm_modelfile *mf, const char *name, int rows, int cols, const float *data)
{
    if (!name || !*name || strlen(name) > NAME_MAX_LEN)
        return kgm_fail(KGM_EINVAL, "model file: tensor name must have 1 to %d bytes", NAME_MAX_LEN);
    if (rows <= 0 || cols <= 0 || (long)rows * cols > (1L << 31) / (long)sizeof(float))
        return kgm_fail(KGM_EINVAL, "model file: tensor %s has a bad shape %dx%d", name, rows, cols);
    if (find_tensor(mf, name))
        return kgm_fail(KGM_EINVAL, "model file: tensor %s added twice", name);
    size_t bytes = (size_t)rows * (size_t)cols * sizeof(float);
    tensor t = { strdup(name), rows, cols, malloc(bytes) };
    if (!t.name || !t.data ||
        grow((void **)&mf->tensors, &mf->cap_tensors, mf->n_tensors, sizeof(tensor)) < 0) {
        free(t.name);
        free(t.data);
        return kgm_fail(KGM_ENOMEM, "model file: out of memory for tensor %s", name);
    }
    memcpy(t.data, data, bytes);
    mf->tensors[mf->n_tensors++] = t;
    return KGM_OK;
}

/* prefix + name into buf; KGM_EINVAL when it does not fit. */
static int join_name(char *buf, size_t len, const char *prefix, const char *name)
{
    int n = snprintf(buf, len, "%s%s", prefix ? prefix : "", name);
    if (n < 0 || (size_t)n >= len)
        return kgm_fail(KGM_EINVAL, "model file: tensor name %s%s is too long", prefix, name);
    return KGM_OK;
}

int kgm_modelfile_add_layout(kgm_modelfile *mf, const char *prefix, const kgm_layout *layout,
                             const float *flat)
{
    for (int i = 0; i < layout->count; i++) {
        const kgm_view_def *v = &layout->view[i];
        char name[NAME_MAX_LEN + 1];
        int rc = join_name(name, sizeof name, prefix, v->name);
        if (rc == KGM_OK) rc = kgm_modelfile_add(mf, name, v->rows, v->cols, flat + v->offset);
        if (rc < 0) return rc;
    }
    return KGM_OK;
}

/* ---- encoding ---- */
typedef struct buf { unsigned char *p; size_t len, cap; } buf;

static int put(buf *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < b->len + n) ncap *= 2;
        unsigned char *p = realloc(b->p, ncap);
        if (!p) return kgm_fail(KGM_ENOMEM, "model file: out of memory while encoding");
        b->p = p;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return KGM_OK;
}

static int put_le(buf *b, uint64_t v, int bytes)
{
    unsigned char le[8];
    for (int i = 0; i < bytes; i++) le[i] = (unsigned char)(v >> (8 * i));
    return put(b, le, (size_t)bytes);
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint64_t fnv1a64(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static int encode(const kgm_modelfile *mf, buf *b)
{
    int rc = put(b, MAGIC, sizeof MAGIC);
    if (rc == KGM_OK) rc = put_le(b, KGM_MODELFILE_VERSION, 4);
    if (rc == KGM_OK) rc = put_le(b, 0, 8);    /* total size, patched below */
    size_t cfg_len = 0;
    for (int i = 0; i < mf->n_config; i++)
        cfg_len += strlen(mf->config[i].key) + strlen(mf->config[i].value) + 2;
    if (rc == KGM_OK) rc = put_le(b, cfg_len, 4);
    for (int i = 0; i < mf->n_config && rc == KGM_OK; i++) {
        rc = put(b, mf->config[i].key, strlen(mf->config[i].key));
        if (rc == KGM_OK) rc = put(b, "=", 1);
        if (rc == KGM_OK) rc = put(b, mf->config[i].value, strlen(mf->config[i].value));
        if (rc == KGM_OK) rc = put(b, "\n", 1);
    }
    if (rc == KGM_OK) rc = put_le(b, (uint64_t)mf->n_tensors, 4);
    for (int i = 0; i < mf->n_tensors && rc == KGM_OK; i++) {
        const tensor *t = &mf->tensors[i];
        size_t nl = strlen(t->name), n = (size_t)t->rows * (size_t)t->cols;
        rc = put_le(b, nl, 2);
        if (rc == KGM_OK) rc = put(b, t->name, nl);
        if (rc == KGM_OK) rc = put_le(b, (uint64_t)t->rows, 4);
        if (rc == KGM_OK) rc = put_le(b, (uint64_t)t->cols, 4);
        for (size_t k = 0; k < n && rc == KGM_OK; k++) {
            uint32_t bits;
            memcpy(&bits, &t->data[k], sizeof bits);
            rc = put_le(b, bits, 4);
        }
    }
    if (rc < 0) return rc;
    uint64_t total = b->len + SUM_SIZE;
    for (int i = 0; i < 8; i++) b->p[12 + i] = (unsigned char)(total >> (8 * i));
    return put_le(b, fnv1a64(b->p, b->len), 8);
}

/* ---- writing ---- */
int kgm_modelfile_save(const kgm_modelfile *mf, const char *path)
{
    buf b = { 0 };
    int rc = encode(mf, &b);
    if (rc < 0) {
        free(b.p);
        return rc;
    }
    kgm_atomic_file f;
    rc = kgm_atomic_open(&f, path);
    if (rc == 0) {
        if (fwrite(b.p, 1, b.len, f.f) == b.len) rc = kgm_atomic_commit(&f, KGM_ATOMIC_DURABLE);
        else {
            rc = kgm_fail(KGM_EIO, "cannot write %s: %s", path, strerror(errno));
            kgm_atomic_abort(&f);
        }
    }
    free(b.p);
    return rc;
}

/* ---- reading ---- */
static int read_file(const char *path, unsigned char **data, size_t *len)
{
    *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return kgm_fail(KGM_EIO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return kgm_fail(KGM_EIO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *p = malloc(n ? n : 1);
    if (!p) {
        fclose(f);
        return kgm_fail(KGM_ENOMEM, "%s: cannot allocate %zu bytes", path, n);
    }
    size_t got = fread(p, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != n) {
        free(p);
        return kgm_fail(KGM_EIO, "cannot read %s", path);
    }
    *data = p;
    *len = n;
    return KGM_OK;
}

/* Size, magic, version, declared size and checksum: nothing else is trusted before these. */
static int verify(const char *path, const unsigned char *p, size_t n)
{
    if (n < HEAD_SIZE + 8 + SUM_SIZE)
        return kgm_fail(KGM_EFORMAT, "%s: truncated model file (%zu bytes)", path, n);
    if (memcmp(p, MAGIC, sizeof MAGIC) != 0)
        return kgm_fail(KGM_EFORMAT, "%s: not a kgmeta model file (bad magic number)", path);
    uint64_t version = get_le(p + 8, 4);
    if (version != KGM_MODELFILE_VERSION)
        return kgm_fail(KGM_EFORMAT, "%s: model file format version %llu; this program reads "
                        "version %d", path, (unsigned long long)version, KGM_MODELFILE_VERSION);
    uint64_t total = get_le(p + 12, 8);
    if (n < total)
        return kgm_fail(KGM_EFORMAT, "%s: truncated model file (%zu of %llu bytes)", path, n,
                        (unsigned long long)total);
    if (n > total)
        return kgm_fail(KGM_EFORMAT, "%s: %zu unexpected bytes after the end of the model file",
                        path, n - (size_t)total);
    if (fnv1a64(p, n - SUM_SIZE) != get_le(p + n - SUM_SIZE, 8))
        return kgm_fail(KGM_EFORMAT, "%s: corrupted model file (checksum mismatch)", path);
    return KGM_OK;
}

typedef struct reader { const unsigned char *p; size_t pos, end; const char *path; } reader;

/* Take n bytes; NULL (error recorded) when the structure runs past its end. */
static const unsigned char *take(reader *r, size_t n)
{
    if (n > r->end - r->pos) {
        kgm_fail(KGM_EFORMAT, "%s: malformed model file (a field at byte %zu runs past the end)",
                 r->path, r->pos);
        return NULL;
    }
    const unsigned char *q = r->p + r->pos;
    r->pos += n;
    return q;
}

static int decode_config(reader *r, kgm_modelfile *mf)
{
    const unsigned char *q = take(r, 4);
    if (!q) return KGM_EFORMAT;
    size_t len = (size_t)get_le(q, 4);
    const unsigned char *text = take(r, len);
    if (!text) return KGM_EFORMAT;
    size_t i = 0;
    while (i < len) {
        const unsigned char *nl = memchr(text + i, '\n', len - i);
        const unsigned char *eq = memchr(text + i, '=', len - i);
        if (!nl || !eq || eq > nl)
            return kgm_fail(KGM_EFORMAT, "%s: malformed configuration line in the model file",
                            r->path);
        char key[256], *value = strndup((const char *)eq + 1, (size_t)(nl - eq - 1));
        size_t klen = (size_t)(eq - (text + i));
        if (!value) return kgm_fail(KGM_ENOMEM, "model file: out of memory");
        if (klen >= sizeof key) {
            free(value);
            return kgm_fail(KGM_EFORMAT, "%s: configuration key too long", r->path);
        }
        memcpy(key, text + i, klen);
        key[klen] = '\0';
        int rc = kgm_modelfile_set(mf, key, value);
        free(value);
        if (rc < 0) return rc;
        i = (size_t)(nl - text) + 1;
    }
    return KGM_OK;
}

static int decode_tensor(reader *r, kgm_modelfile *mf)
{
    const unsigned char *q = take(r, 2);
    if (!q) return KGM_EFORMAT;
    size_t nl = (size_t)get_le(q, 2);
    const unsigned char *name = take(r, nl);
    const unsigned char *shape = name ? take(r, 8) : NULL;
    if (!shape) return KGM_EFORMAT;
    uint64_t rows = get_le(shape, 4), cols = get_le(shape + 4, 4);
    if (nl == 0 || memchr(name, '\0', nl) || rows == 0 || cols == 0 || rows > INT32_MAX ||
        cols > INT32_MAX || rows * cols > (r->end - r->pos) / 4)
        return kgm_fail(KGM_EFORMAT, "%s: malformed tensor entry at byte %zu", r->path, r->pos);
    size_t n = (size_t)(rows * cols);
    const unsigned char *raw = take(r, n * 4);   /* cannot fail: checked just above */
    float *data = malloc(n * sizeof *data);
    char *cname = strndup((const char *)name, nl);
    if (!data || !cname) {
        free(data);
        free(cname);
        return kgm_fail(KGM_ENOMEM, "model file: out of memory");
    }
    for (size_t k = 0; k < n; k++) {
        uint32_t bits = (uint32_t)get_le(raw + 4 * k, 4);
        memcpy(&data[k], &bits, sizeof bits);
    }
    int rc = kgm_modelfile_add(mf, cname, (int)rows, (int)cols, data);
    if (rc == KGM_EINVAL) rc = kgm_fail(KGM_EFORMAT, "%s: tensor %s appears twice", r->path, cname);
    free(data);
    free(cname);
    return rc;
}

/* Decode a verified file into mf. */
static int decode(const char *path, const unsigned char *p, size_t n, kgm_modelfile *mf)
{
    reader r = { p, HEAD_SIZE, n - SUM_SIZE, path };
    int rc = decode_config(&r, mf);
    if (rc < 0) return rc;
    const unsigned char *q = take(&r, 4);
    if (!q) return KGM_EFORMAT;
    for (uint64_t i = 0, count = get_le(q, 4); i < count; i++)
        if ((rc = decode_tensor(&r, mf)) < 0) return rc;
    if (r.pos != r.end)
        return kgm_fail(KGM_EFORMAT, "%s: malformed model file (%zu stray bytes before the "
                        "checksum)", path, r.end - r.pos);
    return KGM_OK;
}

int kgm_modelfile_load(kgm_modelfile **out, const char *path)
{
    *out = NULL;
    unsigned char *p = NULL;
    size_t n = 0;
    int rc = read_file(path, &p, &n);
    if (rc < 0) return rc;
    kgm_modelfile *mf = NULL;
    rc = verify(path, p, n);
    if (rc == KGM_OK && !(mf = kgm_modelfile_new()))
        rc = kgm_fail(KGM_ENOMEM, "model file: out of memory");
    if (rc == KGM_OK) rc = decode(path, p, n, mf);
    free(p);
    if (rc < 0) {
        kgm_modelfile_free(mf);
        return rc;
    }
    *out = mf;
    return KGM_OK;
}

const char *kgm_modelfile_get(const kgm_modelfile *mf, const char *key)
{
    for (int i = 0; i < mf->n_config; i++)
        if (strcmp(mf->config[i].key, key) == 0) return mf->config[i].value;
    return NULL;
}

int kgm_modelfile_config_count(const kgm_modelfile *mf) { return mf->n_config; }
int kgm_modelfile_tensor_count(const kgm_modelfile *mf) { return mf->n_tensors; }

int kgm_modelfile_config_at(const kgm_modelfile *mf, int i, const char **key, const char **value)
{
    if (i < 0 || i >= mf->n_config)
        return kgm_fail(KGM_ENOTFOUND, "model file: no configuration entry %d", i);
    *key = mf->config[i].key;
    *value = mf->config[i].value;
    return KGM_OK;
}

int kgm_modelfile_tensor(const kgm_modelfile *mf, const char *name, int rows, int cols,
                         const float **data)
{
    const tensor *t = find_tensor(mf, name);
    if (!t) return kgm_fail(KGM_ENOTFOUND, "model file has no tensor %s", name);
    if (t->rows != rows || t->cols != cols)
        return kgm_fail(KGM_EFORMAT, "model file tensor %s is %dx%d, expected %dx%d", name,
                        t->rows, t->cols, rows, cols);
    *data = t->data;
    return KGM_OK;
}

int kgm_modelfile_read_layout(const kgm_modelfile *mf, const char *prefix,
                              const kgm_layout *layout, float *flat)
{
    const float *src[KGM_LAYOUT_MAX];
    for (int pass = 0; pass < 2; pass++)       /* check every view before copying any */
        for (int i = 0; i < layout->count; i++) {
            const kgm_view_def *v = &layout->view[i];
            if (pass == 1) {
                memcpy(flat + v->offset, src[i], (size_t)v->rows * v->cols * sizeof(float));
                continue;
            }
            char name[NAME_MAX_LEN + 1];
            int rc = join_name(name, sizeof name, prefix, v->name);
            if (rc == KGM_OK) rc = kgm_modelfile_tensor(mf, name, v->rows, v->cols, &src[i]);
            if (rc < 0) return rc;
        }
    return KGM_OK;
}
