/* kg/checkpoint.c - checkpoints of embedding training (kgm_emb_opts.checkpoint / resume), so a
 * run longer than one sitting can stop and go on as if it had not stopped.
 *
 * One model file (src/modelfile.h, written atomically) holds the parameters, the optimizer's
 * state, the trainer's permutation of the positives and its RNG streams (kg/embed.c's sampled
 * trainer or kg/onevsall.c's 1vsAll one: *_put_state / *_get_state), and the loop's own state:
 * epochs done, best validation MRR with its epoch and parameters, the patience count, the
 * learning rate and its drops, training seconds so far. Resumed with one thread, a run gives
 * the numbers of one that never stopped, bit for bit (with more, Hogwild's update order varies
 * from run to run anyway).
 *
 * The options that shape the state (model, dim, counts, optimizer, loss, negatives or
 * candidates, batch, threads, seed) must be the checkpoint's; a resumed run refuses others
 * with a message naming the first that differs. */
#include "embed_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "modelfile.h"

#define CKPT_KIND "embedding-checkpoint"

/* ---- pieces the trainers use ---- */
int emb_ckpt_put_opt(kgm_modelfile *mf, const char *prefix, const emb_opt_state *st, kgm_emb_opt opt,
                     size_t rows, int width)
{
    char name[64];
    int rc = 0;
    if (opt != KGM_EMB_OPT_SGD) {
        snprintf(name, sizeof name, "%s.s1", prefix);
        rc = kgm_modelfile_add(mf, name, (int)rows, width, st->s1);
    }
    if (!rc && opt == KGM_EMB_OPT_ADAM) {
        snprintf(name, sizeof name, "%s.s2", prefix);
        rc = kgm_modelfile_add(mf, name, (int)rows, width, st->s2);
        snprintf(name, sizeof name, "%s.steps", prefix);
        if (!rc) rc = kgm_modelfile_add(mf, name, (int)rows, 1, st->steps);
    }
    return rc;
}

static int get_tensor(const kgm_modelfile *mf, const char *name, int rows, int cols, float *dst)   /* copies */
{
    const float *src;
    int rc = kgm_modelfile_tensor(mf, name, rows, cols, &src);
    if (!rc) memcpy(dst, src, (size_t)rows * (size_t)cols * sizeof(float));
    return rc;
}

int emb_ckpt_get_opt(const kgm_modelfile *mf, const char *prefix, const emb_opt_state *st, kgm_emb_opt opt,
                     size_t rows, int width)
{
    char name[64];
    int rc = 0;
    if (opt != KGM_EMB_OPT_SGD) {
        snprintf(name, sizeof name, "%s.s1", prefix);
        rc = get_tensor(mf, name, (int)rows, width, st->s1);
    }
    if (!rc && opt == KGM_EMB_OPT_ADAM) {
        snprintf(name, sizeof name, "%s.s2", prefix);
        rc = get_tensor(mf, name, (int)rows, width, st->s2);
        snprintf(name, sizeof name, "%s.steps", prefix);
        if (!rc) rc = get_tensor(mf, name, (int)rows, 1, st->steps);
    }
    return rc;
}

/* The permutation as floats, each index in two halves of 16 bits (exact for every int32). */
int emb_ckpt_put_order(kgm_modelfile *mf, const int32_t *order, size_t n)
{
    float *f = malloc((n ? n : 1) * 2 * sizeof(float));
    if (!f) return kgm_fail(KGM_ENOMEM, "out of memory writing a checkpoint");
    for (size_t i = 0; i < n; i++) {
        f[2 * i] = (float)(order[i] >> 16);
        f[2 * i + 1] = (float)(order[i] & 0xffff);
    }
    int rc = kgm_modelfile_add(mf, "order", (int)n, 2, f);
    free(f);
    return rc;
}

int emb_ckpt_get_order(const kgm_modelfile *mf, int32_t *order, size_t n)
{
    const float *f;
    int rc = kgm_modelfile_tensor(mf, "order", (int)n, 2, &f);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        const float hi = f[2 * i], lo = f[2 * i + 1];
        if (!(hi >= 0 && hi < 32768 && lo >= 0 && lo < 65536) || hi != (float)(int32_t)hi || lo != (float)(int32_t)lo)
            return kgm_fail(KGM_EFORMAT, "checkpoint: bad permutation entry %zu", i);
        order[i] = (int32_t)hi << 16 | (int32_t)lo;
        if ((size_t)order[i] >= n) return kgm_fail(KGM_EFORMAT, "checkpoint: bad permutation entry %zu", i);
    }
    return 0;
}

int emb_ckpt_put_rng(kgm_modelfile *mf, const char *key, const emb_rng *g)
{
    char v[80];
    snprintf(v, sizeof v, "%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64,
             g->s[0], g->s[1], g->s[2], g->s[3]);
    return kgm_modelfile_set(mf, key, v);
}

int emb_ckpt_get_rng(const kgm_modelfile *mf, const char *key, emb_rng *g)
{
    const char *v = kgm_modelfile_get(mf, key);
    if (!v) return kgm_fail(KGM_EFORMAT, "checkpoint: no %s", key);
    char *end = (char *)v;
    for (int i = 0; i < 4; i++) {
        const char *start = end;
        g->s[i] = strtoull(start, &end, 16);
        if (end == start) return kgm_fail(KGM_EFORMAT, "checkpoint: bad %s", key);
    }
    return 0;
}

/* ---- the whole file ---- */
/* The options that shape the training state, as the checkpoint's configuration keys. */
static int signature(const kgm_emb *e, const kgm_emb_opts *o, size_t n_pos, int threads,
                     int i, const char **key, char *value, size_t cap)
{
    switch (i) {
    case 0: *key = "model";      snprintf(value, cap, "%s", kgm_emb_model_name(e->model)); return 1;
    case 1: *key = "dim";        snprintf(value, cap, "%d", e->dim); return 1;
    case 2: *key = "n_ents";     snprintf(value, cap, "%zu", e->n_ents); return 1;
    case 3: *key = "n_rels";     snprintf(value, cap, "%zu", e->n_rels); return 1;
    case 4: *key = "reciprocal"; snprintf(value, cap, "%d", e->reciprocal); return 1;
    case 5: *key = "opt";        snprintf(value, cap, "%d", (int)o->opt); return 1;
    case 6: *key = "loss";       snprintf(value, cap, "%d", (int)o->loss); return 1;
    case 7: *key = "negatives";  snprintf(value, cap, "%d", kgm_emb_loss_all(o->loss) ? o->candidates : o->negatives); return 1;
    case 8: *key = "batch";      snprintf(value, cap, "%d", o->batch); return 1;
    case 9: *key = "threads";    snprintf(value, cap, "%d", threads); return 1;
    case 10: *key = "seed";      snprintf(value, cap, "%" PRIu64, o->seed); return 1;
    case 11: *key = "positives"; snprintf(value, cap, "%zu", n_pos); return 1;
    default: return 0;
    }
}

int emb_ckpt_save(const char *path, const kgm_emb *e, const kgm_emb_opts *o, size_t n_pos, int threads,
                  const emb_ckpt_loop *L, const emb_fit *f, const emb_ova *fa)
{
    kgm_modelfile *mf = kgm_modelfile_new();
    if (!mf) return kgm_fail(KGM_ENOMEM, "out of memory writing a checkpoint");
    char v[64];
    const char *key;
    int rc = kgm_modelfile_set(mf, "kind", CKPT_KIND);
    for (int i = 0; !rc && signature(e, o, n_pos, threads, i, &key, v, sizeof v); i++) rc = kgm_modelfile_set(mf, key, v);
    snprintf(v, sizeof v, "%d", L->epoch);       if (!rc) rc = kgm_modelfile_set(mf, "epoch", v);
    snprintf(v, sizeof v, "%d", L->best_epoch);  if (!rc) rc = kgm_modelfile_set(mf, "best_epoch", v);
    snprintf(v, sizeof v, "%.17g", L->best_mrr); if (!rc) rc = kgm_modelfile_set(mf, "best_mrr", v);
    snprintf(v, sizeof v, "%d", L->since_best);  if (!rc) rc = kgm_modelfile_set(mf, "since_best", v);
    snprintf(v, sizeof v, "%.9g", (double)L->lr); if (!rc) rc = kgm_modelfile_set(mf, "lr", v);
    snprintf(v, sizeof v, "%d", L->lr_drops);    if (!rc) rc = kgm_modelfile_set(mf, "lr_drops", v);
    snprintf(v, sizeof v, "%.17g", L->seconds);  if (!rc) rc = kgm_modelfile_set(mf, "seconds", v);
    const int rel_rows = (int)kgm_emb_rel_rows(e);
    if (!rc) rc = kgm_modelfile_add(mf, "entities", (int)e->n_ents, e->ent_width, e->ent);
    if (!rc) rc = kgm_modelfile_add(mf, "relations", rel_rows, e->rel_width, e->rel);
    if (!rc && L->best_ent) rc = kgm_modelfile_add(mf, "best.entities", (int)e->n_ents, e->ent_width, L->best_ent);
    if (!rc && L->best_rel) rc = kgm_modelfile_add(mf, "best.relations", rel_rows, e->rel_width, L->best_rel);
    if (!rc) rc = f ? emb_fit_put_state(f, mf) : emb_ova_put_state(fa, mf);
    if (!rc) rc = kgm_modelfile_save(mf, path);
    kgm_modelfile_free(mf);
    return rc;
}

static int get_int(const kgm_modelfile *mf, const char *path, const char *key, int *out)
{
    const char *v = kgm_modelfile_get(mf, key);
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || end == v || x < 0 || x > INT32_MAX) return kgm_fail(KGM_EFORMAT, "%s: bad or missing %s", path, key);
    *out = (int)x;
    return 0;
}

static int get_double(const kgm_modelfile *mf, const char *path, const char *key, double *out)
{
    const char *v = kgm_modelfile_get(mf, key);
    char *end;
    double x = v ? strtod(v, &end) : 0;
    if (!v || *end || end == v) return kgm_fail(KGM_EFORMAT, "%s: bad or missing %s", path, key);
    *out = x;
    return 0;
}

int emb_ckpt_load(const char *path, kgm_emb *e, const kgm_emb_opts *o, size_t n_pos, int threads,
                  emb_ckpt_loop *L, float *best_ent, float *best_rel, int *has_best, emb_fit *f, emb_ova *fa)
{
    kgm_modelfile *mf = NULL;
    int rc = kgm_modelfile_load(&mf, path);
    if (rc) return rc;
    const char *kind = kgm_modelfile_get(mf, "kind"), *key;
    if (!kind || strcmp(kind, CKPT_KIND)) rc = kgm_fail(KGM_EFORMAT, "%s is not an embedding-training checkpoint", path);
    char want[64];
    for (int i = 0; !rc && signature(e, o, n_pos, threads, i, &key, want, sizeof want); i++) {
        const char *have = kgm_modelfile_get(mf, key);
        if (!have || strcmp(have, want))
            rc = kgm_fail(KGM_EINVAL, "%s: checkpoint has %s %s, this run %s", path, key, have ? have : "(none)", want);
    }
    double lr = 0;
    if (!rc) rc = get_int(mf, path, "epoch", &L->epoch);
    if (!rc) rc = get_int(mf, path, "best_epoch", &L->best_epoch);
    if (!rc) rc = get_double(mf, path, "best_mrr", &L->best_mrr);
    if (!rc) rc = get_int(mf, path, "since_best", &L->since_best);
    if (!rc) rc = get_double(mf, path, "lr", &lr);
    if (!rc) rc = get_int(mf, path, "lr_drops", &L->lr_drops);
    if (!rc) rc = get_double(mf, path, "seconds", &L->seconds);
    L->lr = (float)lr;
    const int rel_rows = (int)kgm_emb_rel_rows(e);
    const float *ent, *rel, *b_ent = NULL, *b_rel = NULL;
    if (!rc) rc = kgm_modelfile_tensor(mf, "entities", (int)e->n_ents, e->ent_width, &ent);
    if (!rc) rc = kgm_modelfile_tensor(mf, "relations", rel_rows, e->rel_width, &rel);
    if (!rc && kgm_modelfile_tensor(mf, "best.entities", (int)e->n_ents, e->ent_width, &b_ent) == 0)
        rc = kgm_modelfile_tensor(mf, "best.relations", rel_rows, e->rel_width, &b_rel);
    /* the trainer's state may be half read on an error (the caller discards the trainer);
     * e changes only once everything has been read */
    if (!rc) rc = f ? emb_fit_get_state(f, mf) : emb_ova_get_state(fa, mf);
    if (!rc) {
        memcpy(e->ent, ent, e->n_ents * (size_t)e->ent_width * sizeof(float));
        memcpy(e->rel, rel, (size_t)rel_rows * (size_t)e->rel_width * sizeof(float));
        *has_best = b_ent != NULL;
        if (b_ent) {
            memcpy(best_ent, b_ent, e->n_ents * (size_t)e->ent_width * sizeof(float));
            memcpy(best_rel, b_rel, (size_t)rel_rows * (size_t)e->rel_width * sizeof(float));
        }
    }
    kgm_modelfile_free(mf);
    return rc;
}
