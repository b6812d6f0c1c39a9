/* src/strmap.c - string interning: a hash table of ids over chunked string storage. */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (1u << 20)

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];
} chunk;

struct kgm_strmap {
    int32_t *slots;        /* (cap) id or -1; cap is a power of two */
    uint32_t *hashes;      /* (n) hash of each string, so growing never rehashes text */
    char **strs;           /* (n) */
    uint32_t *lens;        /* (n) */
    size_t n, n_alloc, cap;
    chunk *chunks;
    size_t bytes;
};

static uint32_t fnv1a(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

kgm_strmap *kgm_strmap_new(void)
{
    kgm_strmap *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->cap = 64;
    m->slots = malloc(m->cap * sizeof *m->slots);
    if (!m->slots) { free(m); return NULL; }
    memset(m->slots, 0xff, m->cap * sizeof *m->slots);
    return m;
}

void kgm_strmap_free(kgm_strmap *m)
{
    if (!m) return;
    for (chunk *c = m->chunks, *nx; c; c = nx) { nx = c->next; free(c); }
    free(m->slots); free(m->hashes); free(m->strs); free(m->lens);
    free(m);
}

static size_t probe(const kgm_strmap *m, const char *s, size_t len, uint32_t h)
{
    size_t mask = m->cap - 1, i = h & mask;
    for (;;) {
        int32_t id = m->slots[i];
        if (id < 0) return i;
        if (m->hashes[id] == h && m->lens[id] == len && memcmp(m->strs[id], s, len) == 0) return i;
        i = (i + 1) & mask;
    }
}

static int grow_table(kgm_strmap *m)
{
    size_t cap = m->cap * 2;
    int32_t *slots = malloc(cap * sizeof *slots);
    if (!slots) return -1;
    memset(slots, 0xff, cap * sizeof *slots);
    for (size_t id = 0; id < m->n; id++) {
        size_t i = m->hashes[id] & (cap - 1);
        while (slots[i] >= 0) i = (i + 1) & (cap - 1);
        slots[i] = (int32_t)id;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

static char *store_text(kgm_strmap *m, const char *s, size_t len)
{
    chunk *c = m->chunks;
    if (!c || c->cap - c->used < len + 1) {
        size_t cap = len + 1 > CHUNK_BYTES ? len + 1 : CHUNK_BYTES;
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = m->chunks; c->used = 0; c->cap = cap;
        m->chunks = c;
        m->bytes += sizeof *c + cap;
    }
    char *p = c->data + c->used;
    memcpy(p, s, len);
    p[len] = 0;
    c->used += len + 1;
    return p;
}

int32_t kgm_strmap_intern(kgm_strmap *m, const char *s, size_t len)
{
    uint32_t h = fnv1a(s, len);
    size_t i = probe(m, s, len, h);
    if (m->slots[i] >= 0) return m->slots[i];
    if (m->n >= INT32_MAX) return -1;
    if ((m->n + 1) * 4 > m->cap * 3) {          /* keep the load factor under 3/4 */
        if (grow_table(m)) return -1;
        i = probe(m, s, len, h);
    }
    if (m->n == m->n_alloc) {
        size_t na = m->n_alloc ? m->n_alloc * 2 : 64;
        uint32_t *hs = realloc(m->hashes, na * sizeof *hs);
        if (!hs) return -1;
        m->hashes = hs;
        char **ss = realloc(m->strs, na * sizeof *ss);
        if (!ss) return -1;
        m->strs = ss;
        uint32_t *ls = realloc(m->lens, na * sizeof *ls);
        if (!ls) return -1;
        m->lens = ls;
        m->n_alloc = na;
    }
    char *p = store_text(m, s, len);
    if (!p) return -1;
    int32_t id = (int32_t)m->n++;
    m->strs[id] = p; m->lens[id] = (uint32_t)len; m->hashes[id] = h;
    m->slots[i] = id;
    return id;
}

int32_t kgm_strmap_find(const kgm_strmap *m, const char *s, size_t len)
{
    return m->slots[probe(m, s, len, fnv1a(s, len))];
}

const char *kgm_strmap_str(const kgm_strmap *m, int32_t id)
{
    return id >= 0 && (size_t)id < m->n ? m->strs[id] : NULL;
}

size_t kgm_strmap_size(const kgm_strmap *m) { return m->n; }

size_t kgm_strmap_bytes(const kgm_strmap *m)
{
    return m->bytes + m->cap * sizeof *m->slots
         + m->n_alloc * (sizeof *m->hashes + sizeof *m->strs + sizeof *m->lens);
}
