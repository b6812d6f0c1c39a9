/* kg/istore.c - the integer core of the "kgmeta" storage: the term dictionary, the three
 * sorted triple permutations with their delta and tombstones, and the binary snapshot.
 * Nothing here knows librdf; kg/istore_rdf.c turns librdf nodes into ids and back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "error.h"
#include "istore_core.h"

/* Pending changes are merged into the sorted arrays past this many: a merge is linear plus
 * two radix sorts, so this keeps adds cheap (sorted inserts into short arrays) and lookups
 * fast (short delta ranges, short tombstone searches). */
#define COMPACT_AT 4096

/* ---- hashing (dictionary slots and snapshot checksums) ---- */

static inline uint64_t mix64(uint64_t h)
{
    h ^= h >> 33; h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Word at a time; the tail is zero-padded. Deterministic for given bytes and seed. */
static uint64_t hash_bytes(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    h ^= len * 0x9e3779b97f4a7c15ULL;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
        p += 8; len -= 8;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, p, len);
        h = (h ^ w) * 0x100000001b3ULL;
    }
    return mix64(h);
}

/* ---- dictionary ---- */

/* A slot holds id + 1 in its low half (0 = empty) and the high half of the key's hash,
 * so a probe compares key bytes only when the hashes agree. */
static inline uint64_t slot_make(uint32_t id, uint64_t h) { return (h & 0xffffffff00000000ULL) | (id + 1u); }

uint64_t ist_dict_hash(const char *key, size_t len)
{
    return hash_bytes(0, key, len);
}

int64_t ist_dict_find_h(const ist_dict *d, const char *key, size_t len, uint64_t h)
{
    if (!d->n_slots) return -1;
    uint64_t tag = h & 0xffffffff00000000ULL;
    for (size_t i = (size_t)h & (d->n_slots - 1);; i = (i + 1) & (d->n_slots - 1)) {
        uint64_t v = d->slots[i];
        if (!v) return -1;
        if ((v & 0xffffffff00000000ULL) != tag) continue;
        uint32_t id = (uint32_t)v - 1;
        size_t klen;
        const char *k = ist_dict_key(d, id, &klen);
        if (klen == len && memcmp(k, key, len) == 0) return id;
    }
}

int64_t ist_dict_find(const ist_dict *d, const char *key, size_t len)
{
    return ist_dict_find_h(d, key, len, ist_dict_hash(key, len));
}

/* A lookup of a term absent from the caches touches three places: its slot, its offsets and
 * its bytes, each known only from the one before. Stage 0 prefetches the slot; stage 1,
 * once it is in cache, the offsets of the id it holds; stage 2 the bytes. Only hints: the
 * first slot of the probe is assumed to be the one. */
void ist_dict_prefetch(const ist_dict *d, uint64_t h, int stage)
{
    if (!d->n_slots) return;
    const uint64_t *slot = &d->slots[(size_t)h & (d->n_slots - 1)];
    if (stage == 0) { __builtin_prefetch(slot); return; }
    uint64_t v = *slot;
    if (!v || (v & 0xffffffff00000000ULL) != (h & 0xffffffff00000000ULL)) return;
    uint32_t id = (uint32_t)v - 1;
    if (stage == 1) __builtin_prefetch(&d->off[id]);
    else __builtin_prefetch(d->bytes + d->off[id]);
}

static void slots_insert_h(ist_dict *d, uint32_t id, uint64_t h)
{
    size_t i = (size_t)h & (d->n_slots - 1);
    while (d->slots[i]) i = (i + 1) & (d->n_slots - 1);
    d->slots[i] = slot_make(id, h);
}

static void slots_insert(ist_dict *d, uint32_t id)
{
    size_t len;
    const char *key = ist_dict_key(d, id, &len);
    slots_insert_h(d, id, hash_bytes(0, key, len));
}

static int slots_rebuild(ist_dict *d, size_t n_slots)
{
    uint64_t *s = calloc(n_slots, sizeof *s);
    if (!s) return KGM_ENOMEM;
    free(d->slots);
    d->slots = s;
    d->n_slots = n_slots;
    for (uint32_t id = 0; id < d->n; id++) slots_insert(d, id);
    return 0;
}

static size_t slots_for(size_t n)
{
    size_t s = 1024;
    while (s < 2 * n + 2) s *= 2;    /* load factor at most one half */
    return s;
}

int64_t ist_dict_intern(ist_dict *d, const char *key, size_t len)
{
    return ist_dict_intern_h(d, key, len, ist_dict_hash(key, len));
}

int64_t ist_dict_intern_h(ist_dict *d, const char *key, size_t len, uint64_t h)
{
    int64_t found = ist_dict_find_h(d, key, len, h);
    if (found >= 0) return found;
    if (d->n == UINT32_MAX - 1) return -1;
    if (2 * ((size_t)d->n + 1) > d->n_slots && slots_rebuild(d, slots_for((size_t)d->n + 1)))
        return -1;
    if (d->n + 1 >= d->cap) {
        uint32_t cap = d->cap ? (d->cap > UINT32_MAX / 2 ? UINT32_MAX : d->cap * 2) : 1024;
        uint64_t *off = realloc(d->off, ((size_t)cap + 1) * sizeof *off);
        if (!off) return -1;
        d->off = off;
        d->cap = cap;
        if (d->n == 0) d->off[0] = 0;
    }
    if (d->n_bytes + len > d->cap_bytes) {
        size_t cap = d->cap_bytes ? d->cap_bytes : 65536;
        while (cap < d->n_bytes + len) cap *= 2;
        char *b = realloc(d->bytes, cap);
        if (!b) return -1;
        d->bytes = b;
        d->cap_bytes = cap;
    }
    memcpy(d->bytes + d->n_bytes, key, len);
    d->n_bytes += len;
    d->off[d->n + 1] = d->n_bytes;
    uint32_t id = d->n++;
    slots_insert_h(d, id, h);
    return id;
}

void ist_dict_truncate(ist_dict *d, uint32_t n)
{
    if (n >= d->n) return;
    d->n = n;
    d->n_bytes = (size_t)d->off[n];
    /* Linear probing cannot delete single entries without breaking chains: refill the
     * same table (no allocation, so this cannot fail). */
    memset(d->slots, 0, d->n_slots * sizeof *d->slots);
    for (uint32_t id = 0; id < d->n; id++) slots_insert(d, id);
}

static void dict_free(ist_dict *d)
{
    free(d->bytes);
    free(d->off);
    free(d->slots);
    memset(d, 0, sizeof *d);
}

/* ---- triple order ---- */

static inline ist_tri to_perm(int perm, uint32_t s, uint32_t p, uint32_t o)
{
    switch (perm) {
    case IST_POS: return (ist_tri){ p, o, s };
    case IST_OSP: return (ist_tri){ o, s, p };
    default:      return (ist_tri){ s, p, o };
    }
}

static inline ist_tri from_perm(int perm, ist_tri t)
{
    switch (perm) {
    case IST_POS: return (ist_tri){ t.c, t.a, t.b };
    case IST_OSP: return (ist_tri){ t.b, t.c, t.a };
    default:      return t;
    }
}

/* Compare the first klen components. */
static inline int tri_cmp(const ist_tri *x, const ist_tri *y, int klen)
{
    if (x->a != y->a) return x->a < y->a ? -1 : 1;
    if (klen < 2) return 0;
    if (x->b != y->b) return x->b < y->b ? -1 : 1;
    if (klen < 3) return 0;
    if (x->c != y->c) return x->c < y->c ? -1 : 1;
    return 0;
}

/* First index whose prefix compares >= key (upper = 0) or > key (upper = 1). */
static size_t bound(const ist_tri *t, size_t n, const ist_tri *key, int klen, int upper)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = tri_cmp(&t[mid], key, klen);
        if (c < 0 || (upper && c == 0)) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int find_exact(const ist_tri *t, size_t n, ist_tri key, size_t *at)
{
    size_t i = bound(t, n, &key, 3, 0);
    if (at) *at = i;
    return i < n && tri_cmp(&t[i], &key, 3) == 0;
}

static inline unsigned tri_byte(const ist_tri *t, int k)
{
    uint32_t v = k < 4 ? t->c : k < 8 ? t->b : t->a;
    return (v >> (8 * (k & 3))) & 0xff;
}

/* LSD radix sort, stable, on key bytes from..11 (0: all three components; 8: the first
 * component only), least significant first; a pass is skipped when all triples share that
 * byte (ids below 2^24 need at most 3 passes per component). */
static void radix_sort(ist_tri *t, size_t n, ist_tri *tmp, int from)
{
    if (n < 2) return;
    size_t hist[12][256];
    memset(hist, 0, sizeof hist);
    for (size_t i = 0; i < n; i++)
        for (int k = from; k < 12; k++) hist[k][tri_byte(&t[i], k)]++;
    ist_tri *src = t, *dst = tmp;
    for (int k = from; k < 12; k++) {
        if (hist[k][tri_byte(&src[0], k)] == n) continue;
        size_t sum = 0;
        for (int b = 0; b < 256; b++) { size_t c = hist[k][b]; hist[k][b] = sum; sum += c; }
        for (size_t i = 0; i < n; i++) dst[hist[k][tri_byte(&src[i], k)]++] = src[i];
        ist_tri *x = src; src = dst; dst = x;
    }
    if (src != t) memcpy(t, src, n * sizeof *t);
}

size_t ist_sort_unique(ist_tri *t, size_t n, ist_tri *tmp)
{
    radix_sort(t, n, tmp, 0);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || tri_cmp(&t[m - 1], &t[i], 3) != 0) t[m++] = t[i];
    return m;
}

/* ---- the core ---- */

void ist_core_init(ist_core *c)
{
    memset(c, 0, sizeof *c);
}

void ist_core_free(ist_core *c)
{
    dict_free(&c->dict);
    for (int k = 0; k < IST_NPERM; k++) { free(c->base[k]); free(c->first[k]); free(c->delta[k]); }
    free(c->tomb);
    free(c->cls.ent_of); free(c->cls.rel_of); free(c->cls.ent_term); free(c->cls.rel_term);
    memset(c, 0, sizeof *c);
}

size_t ist_core_size(const ist_core *c)
{
    return c->n_base - c->n_tomb + c->n_delta;
}

size_t ist_core_bytes(const ist_core *c)
{
    const ist_dict *d = &c->dict;
    return d->cap_bytes + ((size_t)d->cap + 1) * sizeof *d->off + d->n_slots * sizeof *d->slots
         + IST_NPERM * (c->n_base + c->cap_delta) * sizeof(ist_tri) + c->cap_tomb * sizeof(ist_tri)
         + (c->first[IST_SPO] ? IST_NPERM * ((size_t)c->n_first + 1) * sizeof(size_t) : 0)
         + (size_t)c->cls.cap_of * 2 * sizeof(int32_t)
         + ((size_t)c->cls.cap_ents + c->cls.cap_rels) * sizeof(uint32_t);
}

/* ---- term classes (entity and relation ids for the learner's view) ---- */

static inline int term_is_literal(const ist_dict *d, uint32_t id)
{
    char k = d->bytes[d->off[id]];
    return k != 'I' && k != 'B';
}

static int grow_ids(uint32_t **arr, uint32_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 1024;
    while (nc < need) nc *= 2;
    uint32_t *a = realloc(*arr, nc * sizeof *a);
    if (!a) return KGM_ENOMEM;
    *arr = a;
    *cap = (uint32_t)nc;
    return 0;
}

/* Room for the classes of every term the dictionary holds and for up to more_ents new
 * entities and more_rels new relations, so that class_note cannot fail. */
static int class_reserve(ist_core *c, size_t more_ents, size_t more_rels)
{
    ist_class *k = &c->cls;
    uint32_t n = c->dict.n;
    if (n > k->cap_of) {
        size_t nc = k->cap_of ? k->cap_of : 1024;
        while (nc < n) nc *= 2;
        int32_t *e = realloc(k->ent_of, nc * sizeof *e);
        if (e) k->ent_of = e;
        int32_t *r = e ? realloc(k->rel_of, nc * sizeof *r) : NULL;
        if (!r) return kgm_fail(KGM_ENOMEM, "out of memory classifying terms");
        k->rel_of = r;
        for (size_t i = k->cap_of; i < nc; i++) k->ent_of[i] = k->rel_of[i] = -1;
        k->cap_of = (uint32_t)nc;
    }
    size_t ne = (size_t)k->n_ents + more_ents, nr = (size_t)k->n_rels + more_rels;
    if (grow_ids(&k->ent_term, &k->cap_ents, ne < n ? ne : n)
        || grow_ids(&k->rel_term, &k->cap_rels, nr < n ? nr : n))
        return kgm_fail(KGM_ENOMEM, "out of memory classifying terms");
    return 0;
}

static inline void class_entity(ist_class *k, uint32_t id)
{
    if (k->ent_of[id] >= 0) return;
    k->ent_of[id] = (int32_t)k->n_ents;
    k->ent_term[k->n_ents++] = id;
}

/* Classify the terms of one live triple (room reserved); returns 1 when its object is a
 * literal. The order (subject, then predicate and object) is the extraction's order. */
static int class_note(ist_core *c, ist_tri t)
{
    ist_class *k = &c->cls;
    class_entity(k, t.a);
    if (k->ent_of[t.c] == IST_LITERAL) return 1;
    if (k->ent_of[t.c] < 0 && term_is_literal(&c->dict, t.c)) { k->ent_of[t.c] = IST_LITERAL; return 1; }
    if (k->rel_of[t.b] < 0) {
        k->rel_of[t.b] = (int32_t)k->n_rels;
        k->rel_term[k->n_rels++] = t.b;
    }
    class_entity(k, t.c);
    return 0;
}

/* Drops the ids of ids_term[] from the first one naming a term >= n_terms on (those were all
 * given by the failed change being undone). */
static void class_cut(int32_t *of, const uint32_t *term, uint32_t *n_ids, uint32_t n_terms)
{
    uint32_t cut = *n_ids;
    for (uint32_t i = 0; i < *n_ids; i++)
        if (term[i] >= n_terms && i < cut) cut = i;
    for (uint32_t i = cut; i < *n_ids; i++) of[term[i]] = -1;
    *n_ids = cut;
}

void ist_core_truncate_terms(ist_core *c, uint32_t n_terms)
{
    ist_class *k = &c->cls;
    if (k->cap_of) {
        class_cut(k->ent_of, k->ent_term, &k->n_ents, n_terms);
        class_cut(k->rel_of, k->rel_term, &k->n_rels, n_terms);
        for (uint32_t i = n_terms; i < k->cap_of; i++) k->ent_of[i] = k->rel_of[i] = -1;
    }
    ist_dict_truncate(&c->dict, n_terms);
}

/* The range [*pos, *end) of base[perm] matching the first klen (1..3) components of key:
 * the leading id's range from first[], then binary search inside it. */
static void base_range(const ist_core *c, int perm, const ist_tri *key, int klen, size_t *pos, size_t *end)
{
    *pos = *end = 0;
    if (key->a >= c->n_first) return;       /* a term newer than the base */
    size_t lo = c->first[perm][key->a], hi = c->first[perm][key->a + 1];
    const ist_tri *b = c->base[perm] + lo;
    *pos = lo + (klen > 1 ? bound(b, hi - lo, key, klen, 0) : 0);
    *end = lo + (klen > 1 ? bound(b, hi - lo, key, klen, 1) : hi - lo);
}

static int in_base(const ist_core *c, ist_tri spo)
{
    size_t pos, end;
    base_range(c, IST_SPO, &spo, 3, &pos, &end);
    return pos < end;
}

static int in_tomb(const ist_core *c, ist_tri spo)
{
    return c->n_tomb && find_exact(c->tomb, c->n_tomb, spo, NULL);
}

int ist_core_contains(const ist_core *c, uint32_t s, uint32_t p, uint32_t o)
{
    ist_tri t = { s, p, o };
    if (find_exact(c->delta[IST_SPO], c->n_delta, t, NULL)) return 1;
    return in_base(c, t) && !in_tomb(c, t);
}

/* first[id] .. first[id + 1] is the range of t (sorted) whose leading component is id,
 * for every id below n_ids. */
static void fill_first(const ist_tri *t, size_t n, uint32_t n_ids, size_t *first)
{
    size_t i = 0;
    for (uint32_t id = 0; id < n_ids; id++) {
        first[id] = i;
        while (i < n && t[i].a == id) i++;
    }
    first[n_ids] = i;
}

/* Build the POS and OSP permutations of a sorted SPO array, and the leading-id ranges of
 * all three, for the ids the dictionary holds (every id in spo). Sorting is stable, so each
 * permutation needs its leading component only: SPO order stably sorted by o is OSP order,
 * and OSP order stably sorted by p is POS order. */
static int build_perms(const ist_core *c, ist_tri *spo, size_t n, ist_tri *out[IST_NPERM],
                       size_t *first[IST_NPERM])
{
    uint32_t n_ids = c->dict.n;
    out[IST_SPO] = spo;
    ist_tri *tmp = malloc((n ? n : 1) * sizeof *tmp);
    out[IST_OSP] = malloc((n ? n : 1) * sizeof(ist_tri));
    out[IST_POS] = malloc((n ? n : 1) * sizeof(ist_tri));
    int rc = tmp && out[IST_OSP] && out[IST_POS] ? 0 : KGM_ENOMEM;
    for (int k = 0; k < IST_NPERM; k++)
        if (!(first[k] = malloc(((size_t)n_ids + 1) * sizeof *first[k]))) rc = KGM_ENOMEM;
    if (!rc) {
        for (size_t i = 0; i < n; i++) out[IST_OSP][i] = to_perm(IST_OSP, spo[i].a, spo[i].b, spo[i].c);
        radix_sort(out[IST_OSP], n, tmp, 8);
        for (size_t i = 0; i < n; i++) {
            ist_tri t = from_perm(IST_OSP, out[IST_OSP][i]);
            out[IST_POS][i] = to_perm(IST_POS, t.a, t.b, t.c);
        }
        radix_sort(out[IST_POS], n, tmp, 8);
        for (int k = 0; k < IST_NPERM; k++) fill_first(out[k], n, n_ids, first[k]);
    }
    free(tmp);
    if (!rc) return 0;
    free(out[IST_POS]);
    free(out[IST_OSP]);
    for (int k = 0; k < IST_NPERM; k++) free(first[k]);
    return rc;
}

static void set_base(ist_core *c, ist_tri *perms[IST_NPERM], size_t *first[IST_NPERM], size_t n)
{
    for (int k = 0; k < IST_NPERM; k++) {
        free(c->base[k]);
        c->base[k] = perms[k];
        free(c->first[k]);
        c->first[k] = first[k];
    }
    c->n_first = c->dict.n;
    c->n_base = n;
    c->n_delta = 0;
    c->n_tomb = 0;
    c->gen++;
}

/* Merge sorted a (minus sorted `minus`) with sorted b into out; returns the count. With
 * ent_of, *n_lit gets the number of merged triples whose object is a literal. */
static size_t merge_spo(const ist_tri *a, size_t na, const ist_tri *minus, size_t nm,
                        const ist_tri *b, size_t nb, ist_tri *out, const int32_t *ent_of, size_t *n_lit)
{
    size_t lit = 0;
    size_t i = 0, j = 0, m = 0, n = 0;
    while (i < na || j < nb) {
        ist_tri t;
        if (j >= nb || (i < na && tri_cmp(&a[i], &b[j], 3) <= 0)) {
            t = a[i++];
            while (m < nm && tri_cmp(&minus[m], &t, 3) < 0) m++;
            if (m < nm && tri_cmp(&minus[m], &t, 3) == 0) continue;
        } else {
            t = b[j++];
        }
        if (n == 0 || tri_cmp(&out[n - 1], &t, 3) != 0) {
            out[n++] = t;
            if (ent_of) lit += ent_of[t.c] == IST_LITERAL;
        }
    }
    if (n_lit) *n_lit = lit;
    return n;
}

int ist_core_compact(ist_core *c)
{
    if (!c->n_delta && !c->n_tomb && c->base[IST_SPO]) return 0;
    size_t cap = c->n_base + c->n_delta;
    ist_tri *spo = malloc((cap ? cap : 1) * sizeof *spo);
    if (!spo) return kgm_fail(KGM_ENOMEM, "out of memory merging %zu triples", cap);
    size_t n = merge_spo(c->base[IST_SPO], c->n_base, c->tomb, c->n_tomb,
                         c->delta[IST_SPO], c->n_delta, spo, NULL, NULL);
    ist_tri *perms[IST_NPERM];
    size_t *first[IST_NPERM];
    if (build_perms(c, spo, n, perms, first)) {
        free(spo);
        return kgm_fail(KGM_ENOMEM, "out of memory indexing %zu triples", n);
    }
    set_base(c, perms, first, n);
    return 0;
}

int ist_core_add_bulk(ist_core *c, ist_tri *add, size_t n, size_t *n_added)
{
    size_t before = ist_core_size(c);
    ist_tri *tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!tmp) return kgm_fail(KGM_ENOMEM, "out of memory sorting %zu triples", n);
    n = ist_sort_unique(add, n, tmp);
    free(tmp);
    int rc = class_reserve(c, 2 * n, n);
    if (!rc) rc = ist_core_compact(c);
    if (rc) return rc;
    /* Literal objects are marked before the merge counts them; the new triples' entity and
     * relation ids are given only once the merge has succeeded. */
    for (size_t i = 0; i < n; i++)
        if (c->cls.ent_of[add[i].c] == -1 && term_is_literal(&c->dict, add[i].c)) c->cls.ent_of[add[i].c] = IST_LITERAL;
    ist_tri *spo = malloc((c->n_base + n ? c->n_base + n : 1) * sizeof *spo);
    if (!spo) return kgm_fail(KGM_ENOMEM, "out of memory merging %zu triples", c->n_base + n);
    size_t n_lit;
    size_t total = merge_spo(c->base[IST_SPO], c->n_base, NULL, 0, add, n, spo, c->cls.ent_of, &n_lit);
    ist_tri *perms[IST_NPERM];
    size_t *first[IST_NPERM];
    if (build_perms(c, spo, total, perms, first)) {
        free(spo);
        return kgm_fail(KGM_ENOMEM, "out of memory indexing %zu triples", total);
    }
    set_base(c, perms, first, total);
    for (size_t i = 0; i < n; i++) class_note(c, add[i]);
    c->cls.n_lit = n_lit;
    if (n_added) *n_added = total - before;
    return 0;
}

static int grow(ist_tri **arr, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    while (nc < need) nc *= 2;
    ist_tri *a = realloc(*arr, nc * sizeof *a);
    if (!a) return KGM_ENOMEM;
    *arr = a;
    *cap = nc;
    return 0;
}

static void insert_at(ist_tri *arr, size_t n, size_t at, ist_tri t)
{
    memmove(arr + at + 1, arr + at, (n - at) * sizeof *arr);
    arr[at] = t;
}

static void erase_at(ist_tri *arr, size_t n, size_t at)
{
    memmove(arr + at, arr + at + 1, (n - at - 1) * sizeof *arr);
}

static void maybe_compact(ist_core *c)
{
    /* A failed merge leaves a valid (only slower) store; the next change retries. */
    if (c->n_delta + c->n_tomb >= COMPACT_AT && ist_core_compact(c)) kgm_error_clear();
}

int ist_core_add(ist_core *c, uint32_t s, uint32_t p, uint32_t o)
{
    ist_tri t = { s, p, o };
    if (ist_core_contains(c, s, p, o)) return 0;
    if (class_reserve(c, 2, 1)) return KGM_ENOMEM;
    size_t at;
    if (in_base(c, t)) {                    /* tombstoned: revive it */
        find_exact(c->tomb, c->n_tomb, t, &at);
        erase_at(c->tomb, c->n_tomb--, at);
    } else {
        size_t cap = c->cap_delta;
        for (int k = 0; k < IST_NPERM; k++) {
            cap = c->cap_delta;
            if (grow(&c->delta[k], &cap, c->n_delta + 1))
                return kgm_fail(KGM_ENOMEM, "out of memory adding a triple");
        }
        c->cap_delta = cap;
        for (int k = 0; k < IST_NPERM; k++) {
            ist_tri pt = to_perm(k, s, p, o);
            find_exact(c->delta[k], c->n_delta, pt, &at);
            insert_at(c->delta[k], c->n_delta, at, pt);
        }
        c->n_delta++;
    }
    c->cls.n_lit += (size_t)class_note(c, t);
    c->gen++;
    maybe_compact(c);
    return 1;
}

int ist_core_remove(ist_core *c, uint32_t s, uint32_t p, uint32_t o)
{
    ist_tri t = { s, p, o };
    size_t at;
    if (find_exact(c->delta[IST_SPO], c->n_delta, t, NULL)) {
        for (int k = 0; k < IST_NPERM; k++) {
            find_exact(c->delta[k], c->n_delta, to_perm(k, s, p, o), &at);
            erase_at(c->delta[k], c->n_delta, at);
        }
        c->n_delta--;
    } else if (in_base(c, t) && !find_exact(c->tomb, c->n_tomb, t, &at)) {
        if (grow(&c->tomb, &c->cap_tomb, c->n_tomb + 1))
            return kgm_fail(KGM_ENOMEM, "out of memory removing a triple");
        insert_at(c->tomb, c->n_tomb++, at, t);
    } else {
        return 0;
    }
    c->cls.n_lit -= c->cls.ent_of[o] == IST_LITERAL;
    c->gen++;
    maybe_compact(c);
    return 1;
}

/* ---- cursor ---- */

void ist_cursor_init(ist_cursor *k, const ist_core *c, int64_t s, int64_t p, int64_t o)
{
    memset(k, 0, sizeof *k);
    k->c = c;
    k->gen = c->gen;
    /* Pick the permutation whose order starts with the bound terms. */
    if (s >= 0 && o >= 0 && p < 0)      { k->perm = IST_OSP; k->klen = 2; }
    else if (s >= 0)                    { k->perm = IST_SPO; k->klen = p >= 0 ? (o >= 0 ? 3 : 2) : 1; }
    else if (p >= 0)                    { k->perm = IST_POS; k->klen = o >= 0 ? 2 : 1; }
    else if (o >= 0)                    { k->perm = IST_OSP; k->klen = 1; }
    else                                { k->perm = IST_SPO; k->klen = 0; }
    k->key = to_perm(k->perm, (uint32_t)(s < 0 ? 0 : s), (uint32_t)(p < 0 ? 0 : p),
                     (uint32_t)(o < 0 ? 0 : o));
    if (k->klen == 0) {
        k->pos = 0; k->end = c->n_base;
        k->dpos = 0; k->dend = c->n_delta;
        return;
    }
    const ist_tri *d = c->delta[k->perm];
    base_range(c, k->perm, &k->key, k->klen, &k->pos, &k->end);
    k->dpos = bound(d, c->n_delta, &k->key, k->klen, 0);
    k->dend = bound(d, c->n_delta, &k->key, k->klen, 1);
}

int ist_cursor_next(ist_cursor *k, ist_tri *spo)
{
    const ist_core *c = k->c;
    if (c->gen != k->gen) return 0;
    while (k->pos < k->end) {
        ist_tri t = from_perm(k->perm, c->base[k->perm][k->pos++]);
        if (in_tomb(c, t)) continue;
        *spo = t;
        return 1;
    }
    if (k->dpos < k->dend) {
        *spo = from_perm(k->perm, c->delta[k->perm][k->dpos++]);
        return 1;
    }
    return 0;
}

/* ---- snapshot ---- */

#define SNAP_MAGIC   "KGMISTOR"
#define SNAP_VERSION 3u       /* 3: entity and relation ids (the learner's view) added */

typedef struct {
    char     magic[8];
    uint32_t version;
    uint32_t header_size;
    uint64_t n_terms, n_bytes, n_triples, bnode_next;
    uint64_t n_ents, n_rels;    /* term ids of the entities, then of the relations, after the triples */
    uint64_t n_extra;           /* bytes of the owner's extra block after those */
    uint64_t body_sum;          /* checksum of offsets, term bytes, triples, classes and extra */
    uint64_t head_sum;          /* checksum of the 80 bytes above */
} snap_header;
_Static_assert(sizeof(snap_header) == 88, "the header is 88 bytes on disk");

static uint64_t body_sum(const ist_dict *d, const ist_tri *spo, size_t n_triples, const ist_class *k,
                         const void *extra, size_t n_extra)
{
    uint64_t zero_off = 0;
    uint64_t h = hash_bytes(1, d->n ? d->off : &zero_off, ((size_t)d->n + 1) * sizeof *d->off);
    h = hash_bytes(h, d->bytes, d->n_bytes);
    h = hash_bytes(h, spo, n_triples * sizeof *spo);
    h = hash_bytes(h, k->ent_term, (size_t)k->n_ents * sizeof *k->ent_term);
    h = hash_bytes(h, k->rel_term, (size_t)k->n_rels * sizeof *k->rel_term);
    return hash_bytes(h, extra, n_extra);
}

static int write_all(FILE *f, const void *p, size_t n)
{
    return n == 0 || fwrite(p, 1, n, f) == n;
}

int ist_snapshot_save(ist_core *c, const char *path, const void *extra, size_t n_extra)
{
    int rc = ist_core_compact(c);
    if (rc) return rc;
    const ist_dict *d = &c->dict;
    uint64_t zero_off = 0;
    const uint64_t *off = d->n ? d->off : &zero_off;
    snap_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, SNAP_MAGIC, 8);
    h.version = SNAP_VERSION;
    h.header_size = sizeof h;
    h.n_terms = d->n;
    h.n_bytes = d->n_bytes;
    h.n_triples = c->n_base;
    h.bnode_next = c->bnode_next;
    h.n_ents = c->cls.n_ents;
    h.n_rels = c->cls.n_rels;
    h.n_extra = n_extra;
    h.body_sum = body_sum(d, c->base[IST_SPO], c->n_base, &c->cls, extra, n_extra);
    h.head_sum = hash_bytes(2, &h, offsetof(snap_header, head_sum));

    kgm_atomic_file f;
    if ((rc = kgm_atomic_open(&f, path))) return rc;
    int ok = write_all(f.f, &h, sizeof h)
          && write_all(f.f, off, (d->n + 1) * sizeof *off)
          && write_all(f.f, d->bytes, d->n_bytes)
          && write_all(f.f, c->base[IST_SPO], c->n_base * sizeof(ist_tri))
          && write_all(f.f, c->cls.ent_term, (size_t)c->cls.n_ents * sizeof *c->cls.ent_term)
          && write_all(f.f, c->cls.rel_term, (size_t)c->cls.n_rels * sizeof *c->cls.rel_term)
          && write_all(f.f, extra, n_extra);
    if (!ok) {
        rc = kgm_fail(KGM_EIO, "cannot write snapshot %s: %s", path, strerror(errno));
        kgm_atomic_abort(&f);
        return rc;
    }
    return kgm_atomic_commit(&f, KGM_ATOMIC_DURABLE);
}

static int read_all(FILE *f, void *p, size_t n)
{
    return n == 0 || fread(p, 1, n, f) == n;
}

/* Everything a snapshot must satisfy besides its checksum, so a file that passes cannot
 * break the store's invariants. */
static const char *check_body(const ist_dict *d, const ist_tri *spo, size_t n)
{
    if (d->off[0] != 0 || d->off[d->n] != d->n_bytes) return "term offsets out of range";
    for (uint32_t i = 0; i < d->n; i++) {
        if (d->off[i + 1] <= d->off[i]) return "empty or reversed term";
        char kind = d->bytes[d->off[i]];
        if (kind != 'I' && kind != 'B' && kind != 'L' && kind != 'G' && kind != 'T')
            return "unknown term kind";
    }
    for (size_t i = 0; i < n; i++) {
        if (spo[i].a >= d->n || spo[i].b >= d->n || spo[i].c >= d->n) return "term id out of range";
        if (i && tri_cmp(&spo[i - 1], &spo[i], 3) >= 0) return "triples not sorted";
    }
    return NULL;
}

/* The classes read back (ent_term, rel_term) must be what the live store would hold for
 * these triples: distinct terms of the right kinds, every subject and non-literal object an
 * entity, every predicate of such a triple a relation. Counts the literal-object triples. */
static const char *load_classes(ist_core *c, const ist_tri *spo, size_t n)
{
    ist_class *k = &c->cls;
    const ist_dict *d = &c->dict;
    uint32_t ne = k->n_ents, nr = k->n_rels;
    k->n_ents = k->n_rels = 0;
    if (class_reserve(c, ne, nr)) return "out of memory";
    for (uint32_t i = 0; i < d->n; i++)
        if (term_is_literal(d, i)) k->ent_of[i] = IST_LITERAL;
    for (uint32_t e = 0; e < ne; e++) {
        uint32_t t = k->ent_term[e];
        if (t >= d->n || k->ent_of[t] != -1) return "bad entity term";
        k->ent_of[t] = (int32_t)e;
    }
    for (uint32_t r = 0; r < nr; r++) {
        uint32_t t = k->rel_term[r];
        if (t >= d->n || k->rel_of[t] != -1 || term_is_literal(d, t)) return "bad relation term";
        k->rel_of[t] = (int32_t)r;
    }
    k->n_ents = ne;
    k->n_rels = nr;
    k->n_lit = 0;
    for (size_t i = 0; i < n; i++) {
        if (k->ent_of[spo[i].a] < 0) return "subject without an entity id";
        if (k->ent_of[spo[i].c] == IST_LITERAL) k->n_lit++;
        else if (k->ent_of[spo[i].c] < 0 || k->rel_of[spo[i].b] < 0) return "triple without entity ids";
    }
    return NULL;
}

static int load_body(ist_core *c, FILE *f, const snap_header *h, const char *path, char *extra)
{
    ist_dict *d = &c->dict;
    ist_class *k = &c->cls;
    d->n = (uint32_t)h->n_terms;
    d->cap = d->n + 1;
    d->n_bytes = d->cap_bytes = h->n_bytes;
    d->off = malloc(((size_t)d->cap + 1) * sizeof *d->off);
    d->bytes = malloc(d->n_bytes ? d->n_bytes : 1);
    ist_tri *spo = malloc((h->n_triples ? h->n_triples : 1) * sizeof *spo);
    c->base[IST_SPO] = spo;
    k->n_ents = (uint32_t)h->n_ents;
    k->n_rels = (uint32_t)h->n_rels;
    if (!d->off || !d->bytes || !spo || grow_ids(&k->ent_term, &k->cap_ents, k->n_ents)
        || grow_ids(&k->rel_term, &k->cap_rels, k->n_rels))
        return kgm_fail(KGM_ENOMEM, "%s: out of memory reading the snapshot", path);
    if (!read_all(f, d->off, (d->n + 1) * sizeof *d->off) || !read_all(f, d->bytes, d->n_bytes)
        || !read_all(f, spo, h->n_triples * sizeof *spo)
        || !read_all(f, k->ent_term, k->n_ents * sizeof *k->ent_term)
        || !read_all(f, k->rel_term, k->n_rels * sizeof *k->rel_term) || !read_all(f, extra, h->n_extra))
        return kgm_fail(KGM_EFORMAT, "%s: truncated snapshot (read failed)", path);
    if (body_sum(d, spo, h->n_triples, k, extra, h->n_extra) != h->body_sum)
        return kgm_fail(KGM_EFORMAT, "%s: damaged snapshot (checksum mismatch), not loaded", path);
    const char *why = check_body(d, spo, h->n_triples);
    if (!why) why = load_classes(c, spo, h->n_triples);
    if (why) return kgm_fail(KGM_EFORMAT, "%s: damaged snapshot (%s), not loaded", path, why);
    if (slots_rebuild(d, slots_for(d->n)))
        return kgm_fail(KGM_ENOMEM, "%s: out of memory indexing terms", path);
    for (uint32_t i = 0; i < d->n; i++) {
        size_t len;
        const char *key = ist_dict_key(d, i, &len);
        if (ist_dict_find(d, key, len) != i)
            return kgm_fail(KGM_EFORMAT, "%s: damaged snapshot (duplicate term), not loaded", path);
    }
    c->base[IST_SPO] = NULL;
    ist_tri *perms[IST_NPERM];
    size_t *first[IST_NPERM];
    if (build_perms(c, spo, h->n_triples, perms, first)) {
        free(spo);
        return kgm_fail(KGM_ENOMEM, "%s: out of memory indexing triples", path);
    }
    set_base(c, perms, first, h->n_triples);
    c->bnode_next = h->bnode_next;
    return 0;
}

static int check_header(const snap_header *h, long long size, const char *path)
{
    if (memcmp(h->magic, SNAP_MAGIC, 8) != 0)
        return kgm_fail(KGM_EFORMAT, "%s: not a kgmeta snapshot (bad magic)", path);
    if (hash_bytes(2, h, offsetof(snap_header, head_sum)) != h->head_sum)
        return kgm_fail(KGM_EFORMAT, "%s: damaged snapshot header (checksum mismatch)", path);
    if (h->header_size != sizeof *h)
        return kgm_fail(KGM_EFORMAT, "%s: damaged snapshot header (size %u)", path, h->header_size);
    if (h->n_terms >= UINT32_MAX || h->n_bytes > (1ULL << 46) || h->n_triples > (1ULL << 40)
        || h->n_extra > (1ULL << 30) || h->n_ents > h->n_terms || h->n_rels > h->n_terms)
        return kgm_fail(KGM_EFORMAT, "%s: damaged snapshot (impossible counts)", path);
    unsigned long long want = sizeof *h + (h->n_terms + 1) * 8 + h->n_bytes + h->n_triples * 12
                            + (h->n_ents + h->n_rels) * 4 + h->n_extra;
    if ((unsigned long long)size != want)
        return kgm_fail(KGM_EFORMAT, "%s: %s snapshot (%lld bytes, header says %llu)", path,
                        (unsigned long long)size < want ? "truncated" : "damaged", size, want);
    return 0;
}

int ist_snapshot_load(ist_core *c, const char *path, char **extra, size_t *n_extra)
{
    *extra = NULL;
    *n_extra = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return kgm_fail(KGM_EIO, "cannot open snapshot %s: %s", path, strerror(errno));
    struct stat st;
    snap_header h;
    int rc;
    if (fstat(fileno(f), &st) != 0)
        rc = kgm_fail(KGM_EIO, "cannot stat %s: %s", path, strerror(errno));
    else if (st.st_size >= 12 && read_all(f, &h, 12) && !memcmp(h.magic, SNAP_MAGIC, 8)
             && h.version != SNAP_VERSION)
        /* Checked before the header's checksum: older headers have another size. */
        rc = kgm_fail(KGM_EFORMAT, "%s: snapshot version %u not supported (this build reads %u; "
                      "version 2 snapshots have no entity ids: rebuild the store from its source files)",
                      path, h.version, SNAP_VERSION);
    else if (st.st_size < (off_t)sizeof h || (rewind(f), !read_all(f, &h, sizeof h)))
        /* A short file that does not even start with the magic is not a snapshot at all. */
        rc = st.st_size >= 8 && (rewind(f), fread(h.magic, 1, 8, f) == 8) && memcmp(h.magic, SNAP_MAGIC, 8)
           ? kgm_fail(KGM_EFORMAT, "%s: not a kgmeta snapshot (bad magic)", path)
           : kgm_fail(KGM_EFORMAT, "%s: truncated snapshot (%lld bytes, no complete header)",
                      path, (long long)st.st_size);
    else if ((rc = check_header(&h, (long long)st.st_size, path)) == 0) {
        *extra = malloc(h.n_extra + 1);         /* NUL-terminated for text blocks */
        rc = *extra ? load_body(c, f, &h, path, *extra)
                    : kgm_fail(KGM_ENOMEM, "%s: out of memory reading the snapshot", path);
    }
    fclose(f);
    if (rc) {
        ist_core_free(c);
        ist_core_init(c);
        free(*extra);
        *extra = NULL;
        return rc;
    }
    (*extra)[h.n_extra] = 0;
    *n_extra = h.n_extra;
    return 0;
}
