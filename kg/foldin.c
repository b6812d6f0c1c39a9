/* kg/foldin.c - placing entities added after training (fit their rows only, everything else
 * frozen), and saving/loading embeddings.
 *
 * Files are the project's model file (src/modelfile.h): magic, version, checksum, atomic write. */
#include "embed_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "modelfile.h"

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
    /* reciprocal relations: head queries read (t, r^-1, x), so the new rows fit that form too */
    kgm_triple *fit = e->reciprocal ? malloc((n ? 2 * n : 1) * sizeof(kgm_triple)) : NULL;
    if (e->reciprocal && !fit) return kgm_fail(KGM_ENOMEM, "out of memory for fold-in triples");
    for (size_t i = 0; fit && i < n; i++) {
        fit[2 * i] = triples[i];
        fit[2 * i + 1] = (kgm_triple){ triples[i].t, (int32_t)e->n_rels + triples[i].r, triples[i].h };
    }
    float *grown = realloc(e->ent, (total ? total : 1) * (size_t)e->ent_width * sizeof(float));
    if (!grown) { free(fit); return kgm_fail(KGM_ENOMEM, "out of memory for %zu new entities", n_new); }
    e->ent = grown;
    /* start new rows small and random: zero would give DistMult/ComplEx no gradient */
    emb_rng g;
    emb_rng_seed(&g, o->seed, 0xf01d);
    for (size_t i = old * (size_t)e->ent_width; i < total * (size_t)e->ent_width; i++)
        e->ent[i] = 0.1f * (2 * emb_rng_uniform(&g) - 1);
    e->n_ents = total;

    emb_fit_spec spec = { fit ? fit : triples, fit ? 2 * n : n, (int32_t)old, 0, 1 };
    emb_fit *f = emb_fit_new(e, o, &spec);
    if (!f) { free(fit); e->n_ents = old; return kgm_fail(KGM_ENOMEM, "out of memory for fold-in state"); }
    int rc = 0;
    for (int ep = 0; ep < o->epochs; ep++) {
        double loss = emb_fit_epoch(f);
        if (loss < 0) { rc = kgm_fail(KGM_EINTR, "fold-in interrupted"); break; }
        if (!isfinite(loss)) { rc = kgm_fail(KGM_ENUMERIC, "fold-in loss became %g", loss); break; }
    }
    emb_fit_free(f);
    free(fit);
    if (rc) { e->n_ents = old; return rc; }   /* the grown tail is ignored: e is as it was */
    if (!out) return 0;

    const kgm_triple *sets[9];
    size_t ns[9];
    int k = 0;
    for (int i = 0; i < n_sets && i < 8; i++) { sets[k] = known[i]; ns[k++] = n_known[i]; }
    sets[k] = triples; ns[k++] = n;
    return kgm_lp_evaluate(e, triples, n, sets, ns, k, 1, out);
}

/* ---- files: the project's model file (src/modelfile.h) ----
 * config: kind=embedding, model=<name>, dim, n_ents, n_rels (the reader must know the shapes to
 * ask for), reciprocal (0 or 1; a file without it has none); tensors "entities"
 * (n_ents, ent_width) and "relations" (n_rels, or 2 n_rels when reciprocal, rel_width). */
int kgm_emb_save(const kgm_emb *e, const char *path)
{
    if (e->n_ents > INT32_MAX || kgm_emb_rel_rows(e) > INT32_MAX)
        return kgm_fail(KGM_EINVAL, "embedding too large for a model file");
    kgm_modelfile *mf = kgm_modelfile_new();
    if (!mf) return kgm_fail(KGM_ENOMEM, "out of memory");
    char dim[16], ne[24], nr[24];
    const size_t rel_rows = kgm_emb_rel_rows(e);
    snprintf(dim, sizeof dim, "%d", e->dim);
    snprintf(ne, sizeof ne, "%zu", e->n_ents);
    snprintf(nr, sizeof nr, "%zu", e->n_rels);
    int rc = kgm_modelfile_set(mf, "kind", "embedding");
    if (!rc) rc = kgm_modelfile_set(mf, "model", kgm_emb_model_name(e->model));
    if (!rc) rc = kgm_modelfile_set(mf, "dim", dim);
    if (!rc) rc = kgm_modelfile_set(mf, "n_ents", ne);
    if (!rc) rc = kgm_modelfile_set(mf, "n_rels", nr);
    if (!rc) rc = kgm_modelfile_set(mf, "reciprocal", e->reciprocal ? "1" : "0");
    if (!rc) rc = kgm_modelfile_add(mf, "entities", (int)e->n_ents, e->ent_width, e->ent);
    if (!rc) rc = kgm_modelfile_add(mf, "relations", (int)rel_rows, e->rel_width, e->rel);
    if (!rc) rc = kgm_modelfile_save(mf, path);
    kgm_modelfile_free(mf);
    return rc;
}

int kgm_emb_load(kgm_emb **out, const char *path)
{
    *out = NULL;
    kgm_modelfile *mf = NULL;
    int rc = kgm_modelfile_load(&mf, path);
    if (rc) return rc;
    const char *kind = kgm_modelfile_get(mf, "kind"), *model = kgm_modelfile_get(mf, "model"),
               *dim = kgm_modelfile_get(mf, "dim"), *n_e = kgm_modelfile_get(mf, "n_ents"),
               *n_r = kgm_modelfile_get(mf, "n_rels"), *recip = kgm_modelfile_get(mf, "reciprocal");
    kgm_emb_model m;
    kgm_emb *e = NULL;
    if (!kind || strcmp(kind, "embedding") != 0 || !model || !dim || !n_e || !n_r) {
        rc = kgm_fail(KGM_EFORMAT, "%s is a model file but not an embedding", path);
        goto out;
    }
    if (recip && strcmp(recip, "0") && strcmp(recip, "1")) {
        rc = kgm_fail(KGM_EFORMAT, "%s: reciprocal must be 0 or 1, not '%s'", path, recip);
        goto out;
    }
    if ((rc = kgm_emb_model_parse(model, &m))) goto out;
    const float *ent, *rel;
    long n_ents = strtol(n_e, NULL, 10), n_rels = strtol(n_r, NULL, 10);
    const int reciprocal = recip && !strcmp(recip, "1");
    if (n_ents < 0 || n_ents > INT32_MAX || n_rels < 0 || n_rels > (reciprocal ? INT32_MAX / 2 : INT32_MAX)) {
        rc = kgm_fail(KGM_EFORMAT, "%s: bad entity or relation count", path);
        goto out;
    }
    /* the tensors' shapes are checked before anything is allocated for the counts they claim */
    int ew = 0, rw = 0;
    const long rel_rows = reciprocal ? 2 * n_rels : n_rels;
    if ((rc = emb_widths(m, atoi(dim), &ew, &rw)) ||
        (rc = kgm_modelfile_tensor(mf, "entities", (int)n_ents, ew, &ent)) ||
        (rc = kgm_modelfile_tensor(mf, "relations", (int)rel_rows, rw, &rel))) goto out;
    e = emb_alloc(m, atoi(dim), (size_t)n_ents, (size_t)n_rels, reciprocal);
    if (!e) { rc = kgm_error_code() ? kgm_error_code() : KGM_ENOMEM; goto out; }
    memcpy(e->ent, ent, (size_t)n_ents * (size_t)ew * sizeof(float));
    memcpy(e->rel, rel, (size_t)rel_rows * (size_t)rw * sizeof(float));
out:
    kgm_modelfile_free(mf);
    if (rc) kgm_emb_free(e); else *out = e;
    return rc;
}
