/* kg/foldin.c - placing entities added after training (fit their rows only, everything else
 * frozen), and saving/loading embeddings.
 *
 * The file format is this module's own until src/modelfile.h lands on main:
 *   "KGMEMB01" | u32 version | u32 model | u32 dim | u32 ent_width | u32 rel_width |
 *   u64 n_ents | u64 n_rels | float ent[n_ents*ent_width] | float rel[n_rels*rel_width] |
 *   u64 FNV-1a of everything before it.   Little-endian, as this machine writes it. */
#include "embed_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* ---- fold-in ---- */
int kgm_emb_foldin(kgm_emb *e, size_t n_new, const kgm_triple *triples, size_t n,
                   const kgm_emb_opts *o, const kgm_triple *const *known, const size_t *n_known,
                   int n_sets, kgm_lp_metrics *out)
{
    const size_t old = e->n_ents, total = old + n_new;
    if (o->model != e->model || o->dim != e->dim)
        return kgm_fail(KGM_EINVAL, "fold-in options (%s, dim %d) do not match the embedding",
                        kgm_emb_model_name(o->model), o->dim);
    if (o->negatives < 1 || !(o->lr > 0)) return kgm_fail(KGM_EINVAL, "fold-in needs negatives >= 1 and lr > 0");
    for (size_t i = 0; i < n; i++) {
        const kgm_triple *t = &triples[i];
        if (t->h < 0 || (size_t)t->h >= total || t->t < 0 || (size_t)t->t >= total ||
            t->r < 0 || (size_t)t->r >= e->n_rels)
            return kgm_fail(KGM_EINVAL, "fold-in triple %zu (%d, %d, %d) is out of range", i, t->h, t->r, t->t);
        if ((size_t)t->h < old && (size_t)t->t < old)
            return kgm_fail(KGM_EINVAL, "fold-in triple %zu touches no new entity", i);
    }
    float *grown = realloc(e->ent, (total ? total : 1) * (size_t)e->ent_width * sizeof(float));
    if (!grown) return kgm_fail(KGM_ENOMEM, "out of memory for %zu new entities", n_new);
    e->ent = grown;
    /* start new rows small and random: zero would give DistMult/ComplEx no gradient */
    emb_rng g;
    emb_rng_seed(&g, o->seed, 0xf01d);
    for (size_t i = old * (size_t)e->ent_width; i < total * (size_t)e->ent_width; i++)
        e->ent[i] = 0.1f * (2 * emb_rng_uniform(&g) - 1);
    e->n_ents = total;

    emb_fit_spec spec = { triples, n, (int32_t)old, 0, 1 };
    emb_fit *f = emb_fit_new(e, o, &spec);
    if (!f) { e->n_ents = old; return kgm_fail(KGM_ENOMEM, "out of memory for fold-in state"); }
    int rc = 0;
    for (int ep = 0; ep < o->epochs; ep++) {
        double loss = emb_fit_epoch(f);
        if (loss < 0) { rc = kgm_fail(KGM_EINTR, "fold-in interrupted"); break; }
        if (!isfinite(loss)) { rc = kgm_fail(KGM_ENUMERIC, "fold-in loss became %g", loss); break; }
    }
    emb_fit_free(f);
    if (rc) { e->n_ents = old; return rc; }   /* the grown tail is ignored: e is as it was */
    if (!out) return 0;

    const kgm_triple *sets[9];
    size_t ns[9];
    int k = 0;
    for (int i = 0; i < n_sets && i < 8; i++) { sets[k] = known[i]; ns[k++] = n_known[i]; }
    sets[k] = triples; ns[k++] = n;
    return kgm_lp_evaluate(e, triples, n, sets, ns, k, 1, out);
}

/* ---- files ---- */
static const char EMB_MAGIC[8] = { 'K', 'G', 'M', 'E', 'M', 'B', '0', '1' };
enum { EMB_VERSION = 1 };

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 0x100000001b3ULL; }
    return h;
}
static const uint64_t FNV_BASIS = 0xcbf29ce484222325ULL;

typedef struct {
    uint32_t version, model, dim, ent_width, rel_width, pad;
    uint64_t n_ents, n_rels;
} emb_file_head;

static int write_all(FILE *fp, const void *p, size_t n, uint64_t *h)
{
    *h = fnv1a(*h, p, n);
    return fwrite(p, 1, n, fp) == n ? 0 : -1;
}

int kgm_emb_save(const kgm_emb *e, const char *path)
{
    size_t len = strlen(path);
    char *tmp = malloc(len + 8);
    if (!tmp) return kgm_fail(KGM_ENOMEM, "out of memory");
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp", 5);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) { int rc = kgm_fail(KGM_EIO, "cannot write %s: %s", tmp, strerror(errno)); free(tmp); return rc; }
    emb_file_head hd = { EMB_VERSION, (uint32_t)e->model, (uint32_t)e->dim, (uint32_t)e->ent_width,
                         (uint32_t)e->rel_width, 0, e->n_ents, e->n_rels };
    uint64_t h = FNV_BASIS;
    int bad = write_all(fp, EMB_MAGIC, sizeof EMB_MAGIC, &h) || write_all(fp, &hd, sizeof hd, &h) ||
              write_all(fp, e->ent, e->n_ents * (size_t)e->ent_width * sizeof(float), &h) ||
              write_all(fp, e->rel, e->n_rels * (size_t)e->rel_width * sizeof(float), &h);
    bad = bad || fwrite(&h, sizeof h, 1, fp) != 1;
    bad = fclose(fp) != 0 || bad;
    if (bad || rename(tmp, path) != 0) {
        int rc = kgm_fail(KGM_EIO, "cannot write %s: %s", path, strerror(errno));
        remove(tmp);
        free(tmp);
        return rc;
    }
    free(tmp);
    return 0;
}

static int read_all(FILE *fp, void *p, size_t n, uint64_t *h)
{
    if (fread(p, 1, n, fp) != n) return -1;
    *h = fnv1a(*h, p, n);
    return 0;
}

int kgm_emb_load(kgm_emb **out, const char *path)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return kgm_fail(KGM_EIO, "cannot open %s: %s", path, strerror(errno));
    char magic[8];
    emb_file_head hd;
    uint64_t h = FNV_BASIS, stored;
    kgm_emb *e = NULL;
    int rc = 0;
    if (read_all(fp, magic, sizeof magic, &h) || memcmp(magic, EMB_MAGIC, sizeof magic) != 0) {
        rc = kgm_fail(KGM_EFORMAT, "%s is not a kgmeta embedding file", path); goto out;
    }
    if (read_all(fp, &hd, sizeof hd, &h)) { rc = kgm_fail(KGM_EFORMAT, "%s: truncated header", path); goto out; }
    if (hd.version != EMB_VERSION) { rc = kgm_fail(KGM_EFORMAT, "%s: version %u, expected %d", path, hd.version, EMB_VERSION); goto out; }
    int cpx = hd.model == KGM_EMB_COMPLEX || hd.model == KGM_EMB_ROTATE;
    if (hd.model >= KGM_EMB_MODEL_COUNT || hd.dim < 1 || hd.dim > 65536 ||
        hd.ent_width != (cpx ? 2 : 1) * hd.dim ||
        hd.rel_width != (hd.model == KGM_EMB_COMPLEX ? 2 : 1) * hd.dim ||
        hd.n_ents > ((uint64_t)1 << 31) || hd.n_rels > ((uint64_t)1 << 31)) {
        rc = kgm_fail(KGM_EFORMAT, "%s: bad shape in header", path); goto out;
    }
    e = calloc(1, sizeof *e);
    if (!e) { rc = kgm_fail(KGM_ENOMEM, "out of memory"); goto out; }
    e->model = (kgm_emb_model)hd.model; e->dim = (int)hd.dim;
    e->ent_width = (int)hd.ent_width; e->rel_width = (int)hd.rel_width;
    e->n_ents = hd.n_ents; e->n_rels = hd.n_rels;
    size_t ne = e->n_ents * (size_t)e->ent_width, nr = e->n_rels * (size_t)e->rel_width;
    e->ent = malloc((ne ? ne : 1) * sizeof(float));
    e->rel = malloc((nr ? nr : 1) * sizeof(float));
    if (!e->ent || !e->rel) { rc = kgm_fail(KGM_ENOMEM, "out of memory for %s", path); goto out; }
    if (read_all(fp, e->ent, ne * sizeof(float), &h) || read_all(fp, e->rel, nr * sizeof(float), &h) ||
        fread(&stored, sizeof stored, 1, fp) != 1) {
        rc = kgm_fail(KGM_EFORMAT, "%s: truncated", path); goto out;
    }
    if (stored != h) { rc = kgm_fail(KGM_EFORMAT, "%s: checksum mismatch (damaged file)", path); goto out; }
    if (fgetc(fp) != EOF) { rc = kgm_fail(KGM_EFORMAT, "%s: trailing bytes after the checksum", path); goto out; }
out:
    fclose(fp);
    if (rc) kgm_emb_free(e); else *out = e;
    return rc;
}
