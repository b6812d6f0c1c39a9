/* kg/onevsall.c - 1vsAll and KvsAll training for DistMult and ComplEx (loss = KGM_EMB_LOSS_1VSALL
 * or _KVSALL): each training triple (h, r, t) asks two queries, (h, r, ?) and (?, r, t), and each
 * query is scored against every entity at once and trained with softmax cross-entropy on the
 * true answer (Lacroix et al. 2018; Ruffinelli et al. 2020 call it 1vsAll). KvsAll instead asks
 * each distinct query once per epoch (kvs_build groups the triples' queries) against a target
 * spread over all its answers, smoothed toward uniform (softmax_xent); its batches are queries.
 *
 * Both models' scores are a dot product of a query vector with the candidate's row, so a batch of
 * queries Q (n, w) is scored by one sgemm S = Q E^T (n, n_ents), and the gradients are two more:
 * dQ = G E and dE += G^T Q, with G = softmax(S) - onehot(answer). dQ then goes back by hand into
 * the rows that formed each query. Every entity row gets a gradient from every batch (all of them
 * are candidates), so the optimizer step is dense over the whole table.
 *
 * Sampled candidates ("1vsN", o.candidates in 1..n_ents - 1): each batch scores its queries
 * against one shared set instead, the batch's heads and tails (every query's answer, each once)
 * plus o.candidates entities drawn uniformly from the trainer's seeded stream (a draw that is
 * already a candidate is skipped, not redrawn). Their rows are gathered into a contiguous
 * matrix C (m, w) and the same three sgemms run with C for E; dC lands in a gradient laid out
 * like C, and only the candidate rows and the batch's relations take an optimizer step. This
 * is softmax over a subset: the loss is exact for the drawn set, a biased estimate of the full
 * one, which counts the graph's hubs (in almost every batch as someone's head or tail) far more
 * than the rest. With o.logq each candidate x other than the query's answer has its score
 * shifted by -log pi_x, pi_x its chance of being in a batch's set (1 - the chance that none of
 * the batch's triples has x as an end, drawn without replacement, times the chance that no
 * uniform draw is x; emb_ova_log_w), which makes the sampled denominator, sum exp(s_x) / pi_x,
 * a Horvitz-Thompson estimate of the full one; the answer, always present, keeps its score.
 * o.candidates = 0 (or >= n_ents) is the full 1vsAll above, unchanged.
 *
 * Dropout (o.drop_ent, o.drop_rel > 0; Ruffinelli et al. 2020 found it part of every tuned
 * 1vsAll model on WN18RR): every read of a row in training is multiplied by its own mask of
 * 0 and 1 / (1 - rate) (inverted dropout: evaluation reads the rows as they are). A batch's
 * candidate rows share one mask for both sides (with o.drop_per_side each side draws its own,
 * as LibKGE's scoring calls per side and batch do; kvsall then asks the batch's tail queries
 * first, then its head queries), each query's two fixed rows get fresh masks per
 * side; the gradients go back through the same masks. Masks come from the trainer's stream, so
 * rates of 0 leave that stream and the training bit for bit as without dropout.
 *
 * The query vectors (rows laid out as in embed.h, complex rows re[dim] then im[dim]):
 *   DistMult  tail: q = h * r              head: q = r * t
 *   ComplEx   tail: q = h r                head: q = conj(r conj(t)) = conj(r) t
 * so that s(h, r, x) = <q, x> for tails and s(x, r, t) = <q, x> for heads (Re <a, b> for
 * complex rows being the real dot product of their re/im layouts).
 *
 * Reciprocal relations (e->reciprocal): the head query of (h, r, t) is the tail query
 * (t, r^-1, ?), q = t * r^-1 (DistMult) or t r^-1 (ComplEx) with r^-1 the row n_rels + r, and
 * its gradient goes to that row; r's own row then learns from tail queries only. The
 * regularizer adds r^-1 once per triple as it adds r, so that each relation row is
 * regularized once per query that reads it (entities stay once per triple, as without).
 *
 * Single training thread; the sgemms use OpenBLAS's own threads. */
#include "embed_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "interrupt.h"
#include "modelfile.h"

/* q from the fixed rows of one query: a = h, b = r for tails; a = r, b = t for heads */
static void ova_query(const kgm_emb *e, int side, const float *a, const float *b, float *q)
{
    const int d = e->dim;
    if (e->model == KGM_EMB_DISTMULT) {
        for (int i = 0; i < d; i++) q[i] = a[i] * b[i];
        return;
    }
    for (int i = 0; i < d; i++) {
        float ar = a[i], ai = a[d + i], br = b[i], bi = b[d + i];
        if (side == 't') { q[i] = ar * br - ai * bi; q[d + i] = ar * bi + ai * br; }   /* h r */
        else             { q[i] = ar * br + ai * bi; q[d + i] = ar * bi - ai * br; }   /* conj(r) t */
    }
}

/* ga += dq/da^T dq, gb += dq/db^T dq for the query built by ova_query(side, a, b) */
static void ova_query_back(const kgm_emb *e, int side, const float *a, const float *b,
                           const float *dq, float *ga, float *gb)
{
    const int d = e->dim;
    if (e->model == KGM_EMB_DISTMULT) {
        for (int i = 0; i < d; i++) { ga[i] += dq[i] * b[i]; gb[i] += dq[i] * a[i]; }
        return;
    }
    for (int i = 0; i < d; i++) {
        float ar = a[i], ai = a[d + i], br = b[i], bi = b[d + i], gr = dq[i], gi = dq[d + i];
        if (side == 't') {   /* q = a b: symmetric in a and b */
            ga[i] += gr * br + gi * bi; ga[d + i] += -gr * bi + gi * br;
            gb[i] += gr * ar + gi * ai; gb[d + i] += -gr * ai + gi * ar;
        } else {             /* qr = ar br + ai bi, qi = ar bi - ai br */
            ga[i] += gr * br + gi * bi; ga[d + i] += gr * bi - gi * br;
            gb[i] += gr * ar - gi * ai; gb[d + i] += gr * ai + gi * ar;
        }
    }
}

/* What a batch's queries are scored against: m candidate rows (m, ent_width) and the entity
 * gradient in the same order (m, ent_width). Full 1vsAll: every entity, rows = e->ent, slot
 * and ids NULL. Sampled: rows gathered from e->ent, ids[j] = column j's entity and slot[x] =
 * entity x's column (-1: not one). */
typedef struct {
    const float *rows;
    float       *grad;
    size_t       m;
    const int32_t *slot, *ids;
    float       *cgrad;   /* where the scores' gradient of the rows goes: grad, or with dropout
                           * a separate (m, ent_width) array merged through mask at the end */
    const float *mask;    /* (m, ent_width) the rows' dropout mask, or NULL */
    const float *bias;    /* (m) -log pi of each candidate (o.logq), or NULL */
} ova_cands;

static inline size_t cand_col(const ova_cands *c, int32_t x) { return c->slot ? (size_t)c->slot[x] : (size_t)x; }

/* mask[0..n) = 0 with probability rate, else 1 / (1 - rate); all 1 (and no draw) at rate 0 */
static void drop_mask(emb_rng *g, float rate, float *mask, size_t n)
{
    if (rate <= 0) { for (size_t i = 0; i < n; i++) mask[i] = 1.0f; return; }
    const uint32_t cut = (uint32_t)((double)rate * 4294967296.0);
    const float keep = 1.0f / (1.0f - rate);
    for (size_t i = 0; i < n; i += 2) {
        uint64_t r = emb_rng_next(g);
        mask[i] = (uint32_t)r >= cut ? keep : 0.0f;
        if (i + 1 < n) mask[i + 1] = (uint32_t)(r >> 32) >= cut ? keep : 0.0f;
    }
}

/* Scratch of dropout for up to cap queries against up to m candidates: each query's dropped
 * fixed rows (entity, relation) and their masks, one query's backward before its masks, and
 * the dropped candidate rows, their mask and their gradient before it. */
typedef struct {
    float    ent, rel;          /* rates */
    int      per_side;          /* 1vsall: a fresh candidate mask for each side of a batch */
    emb_rng *rng;
    float   *x, *mx, *r, *mr;   /* (cap, ent_width) twice, (cap, rel_width) twice */
    float   *gx, *gr;           /* (ent_width), (rel_width) */
    float   *crows, *cmask, *cgrad;   /* (m, ent_width) each */
} ova_drop;

static int ova_drop_init(ova_drop *d, const kgm_emb *e, float ent, float rel, int per_side, emb_rng *rng,
                         size_t cap, size_t m)
{
    const size_t ew = (size_t)e->ent_width, rw = (size_t)e->rel_width, nc = (m ? m : 1) * ew;
    *d = (ova_drop){ .ent = ent, .rel = rel, .per_side = per_side, .rng = rng };
    d->x = malloc(cap * ew * sizeof(float)); d->mx = malloc(cap * ew * sizeof(float));
    d->r = malloc(cap * rw * sizeof(float)); d->mr = malloc(cap * rw * sizeof(float));
    d->gx = malloc(ew * sizeof(float)); d->gr = malloc(rw * sizeof(float));
    d->crows = malloc(nc * sizeof(float)); d->cmask = malloc(nc * sizeof(float)); d->cgrad = malloc(nc * sizeof(float));
    return d->x && d->mx && d->r && d->mr && d->gx && d->gr && d->crows && d->cmask && d->cgrad ? 0 : -1;
}
static void ova_drop_free(ova_drop *d)
{
    free(d->x); free(d->mx); free(d->r); free(d->mr); free(d->gx); free(d->gr);
    free(d->crows); free(d->cmask); free(d->cgrad);
}

/* out = row * a fresh mask (kept in mask); returns out */
static const float *drop_row(ova_drop *d, float rate, const float *row, size_t w, float *mask, float *out)
{
    drop_mask(d->rng, rate, mask, w);
    for (size_t i = 0; i < w; i++) out[i] = row[i] * mask[i];
    return out;
}

static void add_masked(float *dst, const float *g, const float *mask, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] += g[i] * mask[i];
}

/* The candidates' rows of e (c->ids, or every entity) through one fresh mask into d->crows,
 * which c then reads; their gradient goes to d->cgrad, which ova_cands_merge adds into c->grad
 * through the mask when the batch (or with d->per_side its side) is done. */
static void ova_cands_drop(ova_cands *c, const kgm_emb *e, ova_drop *d)
{
    const size_t ew = (size_t)e->ent_width;
    drop_mask(d->rng, d->ent, d->cmask, c->m * ew);
    for (size_t j = 0; j < c->m; j++) {
        const float *src = e->ent + (c->ids ? (size_t)c->ids[j] : j) * ew;
        float *dst = d->crows + j * ew;
        const float *mask = d->cmask + j * ew;
        for (size_t i = 0; i < ew; i++) dst[i] = src[i] * mask[i];
    }
    memset(d->cgrad, 0, c->m * ew * sizeof(float));
    c->rows = d->crows; c->mask = d->cmask; c->cgrad = d->cgrad;
}
static void ova_cands_merge(const ova_cands *c, size_t ew)
{
    if (c->mask) add_masked(c->grad, c->cgrad, c->mask, c->m * ew);
}

/* Scratch for n queries against m candidates: q and dq (n, ent_width), scores (n, m). */
typedef struct { float *q, *dq, *s; size_t cap, cap_m; } ova_buf;

static int ova_buf_reserve(ova_buf *b, const kgm_emb *e, size_t n, size_t m)
{
    if (n <= b->cap && m <= b->cap_m) return 0;
    free(b->q); free(b->dq); free(b->s);
    b->q = malloc(n * (size_t)e->ent_width * sizeof(float));
    b->dq = malloc(n * (size_t)e->ent_width * sizeof(float));
    b->s = malloc(n * m * sizeof(float));
    b->cap = b->q && b->dq && b->s ? n : 0;
    b->cap_m = b->cap ? m : 0;
    return b->cap ? 0 : -1;
}
static void ova_buf_free(ova_buf *b) { free(b->q); free(b->dq); free(b->s); }

/* max of row[0..m), m >= 1, in eight lanes */
HOT_KERNEL static float row_max(const float *row, size_t m)
{
    float acc[8];
    for (int k = 0; k < 8; k++) acc[k] = row[0];
    size_t j = 0;
    for (; j + 8 <= m; j += 8)
        for (int k = 0; k < 8; k++) acc[k] = row[j + k] > acc[k] ? row[j + k] : acc[k];
    float mx = acc[0];
    for (int k = 1; k < 8; k++) mx = acc[k] > mx ? acc[k] : mx;
    for (; j < m; j++) mx = row[j] > mx ? row[j] : mx;
    return mx;
}

/* row[j] = e^(row[j] - mx); returns their sum, in eight double lanes */
HOT_KERNEL static double exp_shifted(float *row, size_t m, float mx)
{
    double acc[8] = {0};
    size_t j = 0;
    for (; j + 8 <= m; j += 8)
        for (int k = 0; k < 8; k++) acc[k] += (row[j + k] = emb_expf(row[j + k] - mx));
    double z = 0;
    for (; j < m; j++) z += (row[j] = emb_expf(row[j] - mx));
    for (int k = 0; k < 8; k++) z += acc[k];
    return z;
}

/* What each query of a batch is trained toward: its answers' columns ans[off[i]..off[i + 1])
 * (off NULL: the one column ans[i]) and the label smoothing (kvsall; 0 for 1vsall). */
typedef struct { const int32_t *ans; const uint32_t *off; float smoothing; } ova_targets;

/* Softmax cross-entropy of each row i of s (n, m) against its target distribution y: with k
 * answers, y = ((1 - smoothing) [j is an answer] + 1 / m) / ((1 - smoothing) k + 1), which is
 * the one-hot of the answer for k = 1 and no smoothing. Every column other than the answers is
 * shifted by bias[j] when bias. s becomes scale * (softmax - y). Returns the summed loss. */
static double softmax_xent(float *s, size_t n, size_t m, const ova_targets *tg, const float *bias, float scale)
{
    double loss = 0;
    for (size_t i = 0; i < n; i++) {
        float *row = s + i * m;
        const int32_t *a = tg->ans + (tg->off ? tg->off[i] : i);
        const size_t k = tg->off ? tg->off[i + 1] - tg->off[i] : 1;
        if (bias) {
            for (size_t j = 0; j < m; j++) row[j] += bias[j];
            for (size_t l = 0; l < k; l++) row[a[l]] -= bias[a[l]];
        }
        /* y = c1 on each answer + c0 everywhere */
        const double norm = (1.0 - tg->smoothing) * (double)k + (tg->smoothing > 0 ? 1.0 : 0.0);
        const double c1 = (1.0 - tg->smoothing) / norm, c0 = tg->smoothing > 0 ? 1.0 / (double)m / norm : 0;
        const float mx = row_max(row, m);
        double hit = 0, all = 0;
        for (size_t l = 0; l < k; l++) hit += (double)(row[a[l]] - mx);
        if (c0 > 0)
            for (size_t j = 0; j < m; j++) all += (double)(row[j] - mx);
        const double z = exp_shifted(row, m, mx);
        loss += log(z) - c1 * hit - c0 * all;   /* -sum y log softmax, finite where e^(s - mx) underflows */
        const float f = (float)(scale / z), g0 = (float)(scale * c0);   /* g0 = 0: the 1vsall case, exactly */
        for (size_t j = 0; j < m; j++) row[j] = row[j] * f - g0;
        const float g1 = (float)(scale * c1);
        for (size_t l = 0; l < k; l++) row[a[l]] -= g1;
    }
    return loss;
}

/* A query: the fixed entity x and the relation row rel; form 't' builds q from (x, rel) as a
 * tail query, 'h' from (rel, x) as a head query. */
typedef struct { int32_t x, rel; int form; } ova_query_ids;

/* What side `side` of triple p asks, and its answer */
static ova_query_ids query_ids(const kgm_emb *e, const kgm_triple *p, int side, int32_t *answer)
{
    *answer = side == 't' ? p->t : p->h;
    if (side == 't') return (ova_query_ids){ p->h, p->r, 't' };
    if (e->reciprocal) return (ova_query_ids){ p->t, (int32_t)e->n_rels + p->r, 't' };
    return (ova_query_ids){ p->t, p->r, 'h' };
}

/* The fixed rows of query i (X the entity, R the relation), through fresh masks when d */
static void query_rows(const kgm_emb *e, const ova_query_ids *qi, size_t i, ova_drop *d,
                       const float **X, const float **R)
{
    const size_t ew = (size_t)e->ent_width, rw = (size_t)e->rel_width;
    *R = e->rel + (size_t)qi->rel * rw;
    *X = e->ent + (size_t)qi->x * ew;
    if (!d) return;
    *X = drop_row(d, d->ent, *X, ew, d->mx + i * ew, d->x + i * ew);
    *R = drop_row(d, d->rel, *R, rw, d->mr + i * rw, d->r + i * rw);
}

/* n queries against candidates c (every answer among them when sampled) toward targets tg
 * (columns of c), with dropout when d: adds scale * d(sum of losses)/d(params) into c->grad
 * (the candidates' part into c->cgrad) and grel (kgm_emb_rel_rows(e), rel_width); returns the
 * summed loss. */
static double ova_queries(const kgm_emb *e, const ova_query_ids *qs, size_t n, const ova_targets *tg,
                          float scale, const ova_cands *c, float *grel, ova_buf *b, ova_drop *d)
{
    const int ew = e->ent_width, rw = e->rel_width;
    const int m = (int)c->m;
    for (size_t i = 0; i < n; i++) {
        const float *X, *R;
        query_rows(e, &qs[i], i, d, &X, &R);
        if (qs[i].form == 't') ova_query(e, 't', X, R, b->q + i * ew);
        else                   ova_query(e, 'h', R, X, b->q + i * ew);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, m, ew, 1.0f, b->q, ew, c->rows, ew,
                0.0f, b->s, m);
    double loss = softmax_xent(b->s, n, (size_t)m, tg, c->bias, scale);
    /* dQ = G C, dC += G^T Q */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, ew, m, 1.0f, b->s, m, c->rows, ew,
                0.0f, b->dq, ew);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, ew, (int)n, 1.0f, b->s, m, b->q, ew,
                1.0f, c->cgrad, ew);
    for (size_t i = 0; i < n; i++) {
        const ova_query_ids qi = qs[i];
        const float *R = d ? d->r + i * rw : e->rel + (size_t)qi.rel * rw;
        const float *X = d ? d->x + i * ew : e->ent + (size_t)qi.x * ew, *dq = b->dq + i * ew;
        float *gR = grel + (size_t)qi.rel * rw, *gX = c->grad + cand_col(c, qi.x) * ew;
        if (d) {   /* the dropped rows' gradient, then back through their masks */
            memset(d->gx, 0, (size_t)ew * sizeof(float));
            memset(d->gr, 0, (size_t)rw * sizeof(float));
            gX = d->gx; gR = d->gr;
        }
        if (qi.form == 't') ova_query_back(e, 't', X, R, dq, gX, gR);
        else                ova_query_back(e, 'h', R, X, dq, gR, gX);
        if (d) {
            add_masked(c->grad + cand_col(c, qi.x) * ew, d->gx, d->mx + i * ew, (size_t)ew);
            add_masked(grel + (size_t)qi.rel * rw, d->gr, d->mr + i * rw, (size_t)rw);
        }
    }
    return loss;
}

/* Both sides of n triples p (1vsall): each side's queries into qs and their answers' columns
 * among c into answer (scratch of n each), then ova_queries. With d->per_side the head side
 * reads the candidates through a mask of its own (the tail side's merged first). */
static double ova_triples(const kgm_emb *e, const kgm_triple *p, size_t n, float scale, ova_cands *c,
                          float *grel, ova_buf *b, ova_query_ids *qs, int32_t *answer, ova_drop *d)
{
    const ova_targets tg = { answer, NULL, 0 };
    double loss = 0;
    for (int k = 0; k < 2; k++) {
        const int side = k ? 'h' : 't';
        if (k && d && d->per_side) {
            ova_cands_merge(c, (size_t)e->ent_width);
            ova_cands_drop(c, e, d);
        }
        for (size_t i = 0; i < n; i++) {
            int32_t a;
            qs[i] = query_ids(e, &p[i], side, &a);
            answer[i] = (int32_t)cand_col(c, a);
        }
        loss += ova_queries(e, qs, n, &tg, scale, c, grel, b, d);
    }
    return loss;
}

/* Gathers the rows of ids[0..m) into rows (m, ent_width) and sets slot[ids[j]] = j. */
static void ova_gather(const kgm_emb *e, const int32_t *ids, size_t m, float *rows, int32_t *slot)
{
    const size_t ew = (size_t)e->ent_width;
    for (size_t j = 0; j < m; j++) {
        memcpy(rows + j * ew, e->ent + (size_t)ids[j] * ew, ew * sizeof(float));
        slot[ids[j]] = (int32_t)j;
    }
}

double emb_ova_loss_grad(const kgm_emb *e, const kgm_triple *p, size_t n, const int32_t *cand,
                         size_t m, const float *bias, const emb_ova_dropout *dropout,
                         float scale, float *gent, float *grel)
{
    const size_t ew = (size_t)e->ent_width;
    const int drop = dropout && (dropout->ent > 0 || dropout->rel > 0);
    ova_cands c = { e->ent, gent, e->n_ents, NULL, NULL, gent, NULL, NULL };
    ova_buf b = {0};
    ova_drop d = {0};
    emb_rng rng;
    emb_rng_seed(&rng, drop ? dropout->seed : 0, 0x0a11);
    int32_t *answer = malloc((n ? n : 1) * sizeof(int32_t));
    ova_query_ids *qs = malloc((n ? n : 1) * sizeof *qs);
    int32_t *slot = cand ? malloc((e->n_ents ? e->n_ents : 1) * sizeof(int32_t)) : NULL;
    float *rows = cand ? malloc((m ? m : 1) * ew * sizeof(float)) : NULL;
    float *grad = cand ? calloc((m ? m : 1) * ew, sizeof(float)) : NULL;
    double loss = -1;
    if (!answer || !qs || (cand && (!slot || !rows || !grad))) goto done;
    if (cand) {
        for (size_t x = 0; x < e->n_ents; x++) slot[x] = -1;
        ova_gather(e, cand, m, rows, slot);
        for (size_t i = 0; i < n; i++)
            if (slot[p[i].h] < 0 || slot[p[i].t] < 0) goto done;
        c = (ova_cands){ rows, grad, m, slot, cand, grad, NULL, bias };
    }
    if (drop) {
        if (ova_drop_init(&d, e, dropout->ent, dropout->rel, dropout->per_side, &rng, n ? n : 1, c.m)) goto done;
        ova_cands_drop(&c, e, &d);
    }
    if (ova_buf_reserve(&b, e, n ? n : 1, c.m ? c.m : 1)) goto done;
    loss = ova_triples(e, p, n, scale, &c, grel, &b, qs, answer, drop ? &d : NULL);
    ova_cands_merge(&c, ew);
    if (cand)   /* back to entity order */
        for (size_t j = 0; j < m; j++)
            for (size_t i = 0; i < ew; i++) gent[(size_t)cand[j] * ew + i] += grad[j * ew + i];
done:
    free(answer); free(qs); free(slot); free(rows); free(grad);
    ova_drop_free(&d);
    ova_buf_free(&b);
    return loss;
}

/* ---- KvsAll's queries ---- */
/* Every distinct query of a set of triples and its answers: query i is qs[i], its answers
 * ans[off[i]..off[i + 1]), ascending, each once. */
typedef struct { ova_query_ids *qs; uint32_t *off; int32_t *ans; size_t n; } kvs_table;

typedef struct { ova_query_ids q; int32_t answer; } kvs_item;

static int kvs_item_cmp(const void *pa, const void *pb)
{
    const kvs_item *a = pa, *b = pb;
    if (a->q.form != b->q.form) return a->q.form < b->q.form ? -1 : 1;
    if (a->q.rel != b->q.rel) return a->q.rel < b->q.rel ? -1 : 1;
    if (a->q.x != b->q.x) return a->q.x < b->q.x ? -1 : 1;
    return (a->answer > b->answer) - (a->answer < b->answer);
}

static int same_query(const ova_query_ids *a, const ova_query_ids *b)
{
    return a->form == b->form && a->rel == b->rel && a->x == b->x;
}

static void kvs_free(kvs_table *kt) { free(kt->qs); free(kt->off); free(kt->ans); *kt = (kvs_table){0}; }

/* Both queries of each triple of pos (as 1vsAll asks them), grouped: 0, or -1 when out of
 * memory (or past 2^32 - 1 answers). */
static int kvs_build(const kgm_emb *e, const kgm_triple *pos, size_t n_pos, kvs_table *kt)
{
    const size_t n_items = 2 * n_pos, cap = n_items ? n_items : 1;
    *kt = (kvs_table){0};
    if (n_items >= UINT32_MAX) return -1;
    kvs_item *it = malloc(cap * sizeof *it);
    kt->qs = malloc(cap * sizeof *kt->qs);
    kt->off = malloc((cap + 1) * sizeof *kt->off);
    kt->ans = malloc(cap * sizeof *kt->ans);
    if (!it || !kt->qs || !kt->off || !kt->ans) { free(it); kvs_free(kt); return -1; }
    for (size_t i = 0; i < n_pos; i++) {
        it[2 * i].q = query_ids(e, &pos[i], 't', &it[2 * i].answer);
        it[2 * i + 1].q = query_ids(e, &pos[i], 'h', &it[2 * i + 1].answer);
    }
    qsort(it, n_items, sizeof *it, kvs_item_cmp);
    uint32_t na = 0;
    for (size_t i = 0; i < n_items; i++) {
        const int new_query = i == 0 || !same_query(&it[i].q, &it[i - 1].q);
        if (!new_query && it[i].answer == it[i - 1].answer) continue;   /* a repeated triple */
        if (new_query) { kt->qs[kt->n] = it[i].q; kt->off[kt->n++] = na; }
        kt->ans[na++] = it[i].answer;
    }
    kt->off[kt->n] = na;
    free(it);
    return 0;
}

/* Whether query q asks for a head (the (?, r, t) side of a triple) */
static int asks_head(const kgm_emb *e, const ova_query_ids *q)
{
    return q->form == 'h' || (size_t)q->rel >= e->n_rels;
}

/* kvsall's n queries qs toward tg against c, with dropout when d: with d->per_side the first
 * `split` queries (one side's) and the others each read the candidates through a mask of
 * their own, as LibKGE scores a batch's (s, p, ?) and (?, p, o) queries in calls of their own */
static double kvs_queries(const kgm_emb *e, const ova_query_ids *qs, size_t n, size_t split, const ova_targets *tg,
                          float scale, ova_cands *c, float *grel, ova_buf *b, ova_drop *d)
{
    if (!d || !d->per_side || split == 0 || split >= n) return ova_queries(e, qs, n, tg, scale, c, grel, b, d);
    double loss = ova_queries(e, qs, split, tg, scale, c, grel, b, d);
    ova_cands_merge(c, (size_t)e->ent_width);
    ova_cands_drop(c, e, d);
    const ova_targets rest = { tg->ans, tg->off + split, tg->smoothing };
    return loss + ova_queries(e, qs + split, n - split, &rest, scale, c, grel, b, d);
}

double emb_kvs_loss_grad(const kgm_emb *e, const kgm_triple *p, size_t n, float smoothing,
                         const emb_ova_dropout *dropout, float scale, float *gent, float *grel)
{
    kvs_table kt;
    ova_buf b = {0};
    ova_drop d = {0};
    emb_rng rng;
    const int drop = dropout && (dropout->ent > 0 || dropout->rel > 0);
    emb_rng_seed(&rng, drop ? dropout->seed : 0, 0x0a11);
    if (kvs_build(e, p, n, &kt)) return -1;
    ova_cands c = { e->ent, gent, e->n_ents, NULL, NULL, gent, NULL, NULL };
    const ova_targets tg = { kt.ans, kt.off, smoothing };
    /* kvs_build sorts by form, then relation: one side's queries come first */
    size_t split = 0;
    while (split < kt.n && asks_head(e, &kt.qs[split]) == asks_head(e, &kt.qs[0])) split++;
    double loss = -1;
    if (!ova_buf_reserve(&b, e, kt.n ? kt.n : 1, e->n_ents ? e->n_ents : 1) &&
        (!drop || !ova_drop_init(&d, e, dropout->ent, dropout->rel, dropout->per_side, &rng, kt.n ? kt.n : 1, e->n_ents))) {
        if (drop) ova_cands_drop(&c, e, &d);
        loss = kvs_queries(e, kt.qs, kt.n, split, &tg, scale, &c, grel, &b, drop ? &d : NULL);
        ova_cands_merge(&c, (size_t)e->ent_width);
    }
    kvs_free(&kt);
    ova_drop_free(&d);
    ova_buf_free(&b);
    return loss;
}

/* ---- the trainer ---- */
struct emb_ova {
    kgm_emb          *e;
    kgm_emb_opts      o;
    const kgm_triple *pos;
    size_t            n_pos;
    size_t            n_items;    /* what an epoch shuffles and batches: triples, or kvsall's queries */
    kgm_triple       *batch;      /* 1vsall: (o.batch) this mini-batch's triples, shuffled order */
    int32_t          *order;
    int32_t          *answer;     /* 1vsall: (o.batch) each query's answer column */
    ova_query_ids    *qs;         /* (o.batch) this mini-batch's queries */
    /* kvsall: its queries, and a batch's answers (its queries' in batch order) */
    int               kvs;
    kvs_table         kv;
    uint32_t         *b_off;      /* (o.batch + 1) */
    int32_t          *b_ans;      /* (answers in kv) */
    size_t            b_split;    /* with o.drop_per_side: the batch's tail queries, which come first */
    float            *gent, *grel;            /* entity gradient in candidate order; relations */
    emb_opt_state     ent_st, rel_st;
    ova_buf           buf;
    emb_rng           rng;
    /* sampled candidates (o.candidates in 1..n_ents - 1), else NULL */
    size_t            max_cands;  /* min(n_ents, 2 batch + candidates) */
    int32_t          *cand, *slot;             /* (max_cands) entity ids; (n_ents) columns, -1 */
    float            *cand_rows;               /* (max_cands, ent_width) */
    float            *log_w, *cand_bias;       /* o.logq: (n_ents) -log pi_x; (max_cands) gathered */
    float            *log_w_last;              /* o.logq: -log pi_x of the epoch's short last batch, or NULL */
    int32_t          *rels;                    /* (min(2 batch, rel rows)) the batch's relation rows */
    unsigned char    *rel_seen;                /* (rel rows) */
    /* dropout (o.drop_ent or o.drop_rel > 0) */
    int               dropping;
    ova_drop          drop;
};

void emb_ova_free(emb_ova *t)
{
    if (!t) return;
    free(t->batch); free(t->order); free(t->answer); free(t->qs); free(t->gent); free(t->grel);
    kvs_free(&t->kv); free(t->b_off); free(t->b_ans);
    free(t->cand); free(t->slot); free(t->cand_rows); free(t->rels); free(t->rel_seen);
    free(t->log_w); free(t->log_w_last); free(t->cand_bias);
    ova_drop_free(&t->drop);
    emb_opt_state_free(&t->ent_st);
    emb_opt_state_free(&t->rel_st);
    ova_buf_free(&t->buf);
    free(t);
}

/* log chance that none of a batch's b triples, drawn without replacement from n, is one of
 * the d that have entity x as an end */
static double log_missed_by_batch(double n, double d, double b)
{
    if (n - d < b) return -INFINITY;
    return lgamma(n - d + 1) - lgamma(n - d - b + 1) - lgamma(n + 1) + lgamma(n - b + 1);
}

void emb_ova_log_w(const kgm_triple *pos, size_t n_pos, size_t n_ents, int batch, int candidates,
                   float *log_w)
{
    memset(log_w, 0, n_ents * sizeof(float));
    for (size_t i = 0; i < n_pos; i++) {   /* degrees as ends of triples, a self-loop once */
        log_w[pos[i].h] += 1.0f;
        if (pos[i].t != pos[i].h) log_w[pos[i].t] += 1.0f;
    }
    const double b = (double)((size_t)batch < n_pos ? (size_t)batch : n_pos);
    const double undrawn = (double)candidates * log1p(-1.0 / (double)n_ents);
    for (size_t x = 0; x < n_ents; x++) {
        double absent = log_missed_by_batch((double)n_pos, log_w[x], b) + undrawn;
        log_w[x] = (float)-log(-expm1(absent));
    }
}

static int ova_logq_alloc(emb_ova *t)
{
    const size_t ne = t->e->n_ents;
    t->log_w = malloc((ne ? ne : 1) * sizeof(float));
    t->cand_bias = malloc(t->max_cands * sizeof(float));
    if (!t->log_w || !t->cand_bias) return -1;
    emb_ova_log_w(t->pos, t->n_pos, ne, t->o.batch, t->o.candidates, t->log_w);
    /* a shorter last batch holds fewer ends: each entity is less likely in its set */
    const size_t last = t->n_pos % (size_t)t->o.batch;
    if (last && t->n_pos > (size_t)t->o.batch) {
        t->log_w_last = malloc(ne * sizeof(float));
        if (!t->log_w_last) return -1;
        emb_ova_log_w(t->pos, t->n_pos, ne, (int)last, t->o.candidates, t->log_w_last);
    }
    return 0;
}

static int ova_sampled_alloc(emb_ova *t)
{
    const kgm_emb *e = t->e;
    size_t want = 2 * (size_t)t->o.batch + (size_t)t->o.candidates;
    t->max_cands = want < e->n_ents ? want : e->n_ents;
    /* a triple steps its relation's row, and with reciprocal relations its r^-1 row too */
    size_t nr = kgm_emb_rel_rows(e) ? kgm_emb_rel_rows(e) : 1, per_batch = 2 * (size_t)t->o.batch;
    t->cand = malloc(t->max_cands * sizeof(int32_t));
    t->slot = malloc(e->n_ents * sizeof(int32_t));
    t->cand_rows = malloc(t->max_cands * (size_t)e->ent_width * sizeof(float));
    t->rels = malloc((per_batch < nr ? per_batch : nr) * sizeof(int32_t));
    t->rel_seen = calloc(nr, 1);
    if (!t->cand || !t->slot || !t->cand_rows || !t->rels || !t->rel_seen) return -1;
    for (size_t x = 0; x < e->n_ents; x++) t->slot[x] = -1;
    return t->o.logq ? ova_logq_alloc(t) : 0;
}

emb_ova *emb_ova_new(kgm_emb *e, const kgm_emb_opts *o, const kgm_triple *pos, size_t n_pos)
{
    emb_ova *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->e = e; t->o = *o; t->pos = pos; t->n_pos = n_pos; t->n_items = n_pos;
    t->kvs = o->loss == KGM_EMB_LOSS_KVSALL;
    const int sampled = o->candidates > 0 && (size_t)o->candidates < e->n_ents;
    size_t bt = (size_t)o->batch;
    if (sampled && ova_sampled_alloc(t)) { emb_ova_free(t); return NULL; }
    if (t->kvs) {
        if (kvs_build(e, pos, n_pos, &t->kv)) { emb_ova_free(t); return NULL; }
        t->n_items = t->kv.n;
        t->b_off = malloc((bt + 1) * sizeof *t->b_off);
        t->b_ans = malloc((t->kv.off[t->kv.n] ? t->kv.off[t->kv.n] : 1) * sizeof *t->b_ans);
        if (!t->b_off || !t->b_ans) { emb_ova_free(t); return NULL; }
    }
    const size_t m = sampled ? t->max_cands : e->n_ents, ne = (m ? m : 1) * (size_t)e->ent_width;
    t->dropping = o->drop_ent > 0 || o->drop_rel > 0;
    if (t->dropping && ova_drop_init(&t->drop, e, o->drop_ent, o->drop_rel, o->drop_per_side, &t->rng, bt, m)) {
        emb_ova_free(t);
        return NULL;
    }
    const size_t rel_rows = kgm_emb_rel_rows(e), nr = (rel_rows ? rel_rows : 1) * (size_t)e->rel_width;
    if (!t->kvs) {   /* kvsall's batches are queries: no triples, no one answer each */
        t->batch = malloc(bt * sizeof(kgm_triple));
        t->answer = malloc(bt * sizeof(int32_t));
    }
    t->order = malloc((t->n_items ? t->n_items : 1) * sizeof(int32_t));
    t->qs = malloc(bt * sizeof *t->qs);
    t->gent = malloc(ne * sizeof(float));
    t->grel = malloc(nr * sizeof(float));
    int ok = (t->kvs || (t->batch && t->answer)) && t->order && t->qs && t->gent && t->grel &&
             !ova_buf_reserve(&t->buf, e, bt, m ? m : 1) &&
             !emb_opt_state_alloc(&t->ent_st, o->opt, e->n_ents, e->ent_width) &&
             !emb_opt_state_alloc(&t->rel_st, o->opt, rel_rows, e->rel_width);
    if (!ok) { emb_ova_free(t); return NULL; }
    for (size_t i = 0; i < t->n_items; i++) t->order[i] = (int32_t)i;
    emb_rng_seed(&t->rng, o->seed, 0x0a11);
    return t;
}

/* Regularizer gradient of the batch's rows: reg_weight * (N3 or L2) per appearance, times scale */
static void ova_reg(emb_ova *t, size_t n, float scale, const ova_cands *c)
{
    if (t->o.reg == KGM_EMB_REG_NONE) return;
    const kgm_emb *e = t->e;
    kgm_emb_opts o = t->o;
    o.reg_weight *= scale;
    const int cpx = e->model == KGM_EMB_COMPLEX;
    const size_t ew = (size_t)e->ent_width, rw = (size_t)e->rel_width;
    if (t->kvs) {   /* each query's two rows, once per query */
        for (size_t i = 0; i < n; i++) {
            const ova_query_ids *q = &t->qs[i];
            emb_add_reg(&o, cpx, e->dim, e->ent + (size_t)q->x * ew, c->grad + cand_col(c, q->x) * ew);
            emb_add_reg(&o, cpx, e->dim, e->rel + (size_t)q->rel * rw, t->grel + (size_t)q->rel * rw);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const kgm_triple *p = &t->batch[i];
        emb_add_reg(&o, cpx, e->dim, e->ent + (size_t)p->h * ew, c->grad + cand_col(c, p->h) * ew);
        emb_add_reg(&o, cpx, e->dim, e->rel + (size_t)p->r * rw, t->grel + (size_t)p->r * rw);
        emb_add_reg(&o, cpx, e->dim, e->ent + (size_t)p->t * ew, c->grad + cand_col(c, p->t) * ew);
        if (e->reciprocal) {
            size_t inv = e->n_rels + (size_t)p->r;
            emb_add_reg(&o, cpx, e->dim, e->rel + inv * rw, t->grel + inv * rw);
        }
    }
}

/* The batch's queries against c (rows a copy when dropping), with dropout when asked: both
 * sides of its n triples, or its n kvsall queries */
static double ova_sides(emb_ova *t, size_t n, float scale, ova_cands *c)
{
    const size_t ew = (size_t)t->e->ent_width;
    ova_drop *d = t->dropping ? &t->drop : NULL;
    if (d) ova_cands_drop(c, t->e, d);
    double loss;
    if (t->kvs) {
        const ova_targets tg = { t->b_ans, t->b_off, t->o.label_smoothing };
        loss = kvs_queries(t->e, t->qs, n, t->b_split, &tg, scale, c, t->grel, &t->buf, d);
    } else {
        loss = ova_triples(t->e, t->batch, n, scale, c, t->grel, &t->buf, t->qs, t->answer, d);
    }
    ova_cands_merge(c, ew);
    return loss;
}

/* The batch's candidates: its heads and tails (each query's answer), then o.candidates uniform
 * draws; a draw that is already a candidate is skipped, so there are at most that many more. */
static size_t ova_pick(emb_ova *t, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const int32_t ends[2] = { t->batch[i].h, t->batch[i].t };
        for (int k = 0; k < 2; k++)
            if (t->slot[ends[k]] < 0) { t->slot[ends[k]] = (int32_t)m; t->cand[m++] = ends[k]; }
    }
    for (int k = 0; k < t->o.candidates && m < t->max_cands; k++) {
        int32_t x = (int32_t)emb_rng_below(&t->rng, (uint32_t)t->e->n_ents);
        if (t->slot[x] < 0) { t->slot[x] = (int32_t)m; t->cand[m++] = x; }
    }
    ova_gather(t->e, t->cand, m, t->cand_rows, t->slot);
    if (t->log_w) {
        const float *lw = n < (size_t)t->o.batch && t->log_w_last ? t->log_w_last : t->log_w;
        for (size_t j = 0; j < m; j++) t->cand_bias[j] = lw[t->cand[j]];
    }
    return m;
}

/* Sampled batch: scores against the candidates only; only candidate rows (every entity the
 * batch touches is one) and the batch's relation rows (r, and r^-1 when reciprocal) have a
 * gradient, and only they step (lazy Adam's step counts and moments of the other rows stay put). */
static double ova_batch_sampled(emb_ova *t, size_t n, float scale)
{
    kgm_emb *e = t->e;
    const size_t ew = (size_t)e->ent_width, rw = (size_t)e->rel_width;
    size_t m = ova_pick(t, n), n_rels = 0;
    for (size_t i = 0; i < n; i++)
        for (int inv = 0; inv <= e->reciprocal; inv++) {
            int32_t r = t->batch[i].r + (inv ? (int32_t)e->n_rels : 0);
            if (t->rel_seen[r]) continue;
            t->rel_seen[r] = 1;
            t->rels[n_rels++] = r;
            memset(t->grel + (size_t)r * rw, 0, rw * sizeof(float));
        }
    memset(t->gent, 0, m * ew * sizeof(float));
    ova_cands c = { t->cand_rows, t->gent, m, t->slot, t->cand, t->gent, NULL, t->cand_bias };
    double loss = ova_sides(t, n, scale, &c);
    ova_reg(t, n, scale, &c);
    emb_opt_step_list(&t->o, &t->ent_st, t->cand, m, e->ent_width, e->ent, t->gent);
    for (size_t j = 0; j < n_rels; j++)
        emb_opt_step_list(&t->o, &t->rel_st, &t->rels[j], 1, e->rel_width, e->rel,
                          t->grel + (size_t)t->rels[j] * rw);
    for (size_t j = 0; j < m; j++) t->slot[t->cand[j]] = -1;
    for (size_t j = 0; j < n_rels; j++) t->rel_seen[t->rels[j]] = 0;
    return loss;
}

/* g += decay * x over n floats (nothing at decay 0) */
static void add_decay(float *restrict g, const float *restrict x, float decay, size_t n)
{
    if (decay > 0)
        for (size_t i = 0; i < n; i++) g[i] += decay * x[i];
}

static double ova_batch_full(emb_ova *t, size_t n, float scale)
{
    kgm_emb *e = t->e;
    const size_t ne = e->n_ents * (size_t)e->ent_width, nr = kgm_emb_rel_rows(e) * (size_t)e->rel_width;
    memset(t->gent, 0, ne * sizeof(float));
    memset(t->grel, 0, nr * sizeof(float));
    ova_cands c = { e->ent, t->gent, e->n_ents, NULL, NULL, t->gent, NULL, NULL };
    double loss = ova_sides(t, n, scale, &c);
    ova_reg(t, n, scale, &c);
    add_decay(t->gent, e->ent, t->o.decay_ent, ne);
    add_decay(t->grel, e->rel, t->o.decay_rel, nr);
    /* dense: every entity row has a gradient from the softmax's denominator */
    emb_opt_step_rows(&t->o, &t->ent_st, e->n_ents, e->ent_width, e->ent, t->gent);
    emb_opt_step_rows(&t->o, &t->rel_st, kgm_emb_rel_rows(e), e->rel_width, e->rel, t->grel);
    return loss;
}

void emb_ova_set_lr(emb_ova *t, float lr) { t->o.lr = lr; }

/* Checkpoint state: optimizer, permutation, the RNG (candidates and dropout draw from it). */
int emb_ova_put_state(const emb_ova *t, kgm_modelfile *mf)
{
    const kgm_emb *e = t->e;
    int rc = emb_ckpt_put_opt(mf, "opt.ent", &t->ent_st, t->o.opt, e->n_ents, e->ent_width);
    if (!rc) rc = emb_ckpt_put_opt(mf, "opt.rel", &t->rel_st, t->o.opt, kgm_emb_rel_rows(e), e->rel_width);
    if (!rc) rc = emb_ckpt_put_order(mf, t->order, t->n_items);
    if (!rc) rc = emb_ckpt_put_rng(mf, "rng.0", &t->rng);
    return rc;
}

int emb_ova_get_state(emb_ova *t, const kgm_modelfile *mf)
{
    const kgm_emb *e = t->e;
    int rc = emb_ckpt_get_opt(mf, "opt.ent", &t->ent_st, t->o.opt, e->n_ents, e->ent_width);
    if (!rc) rc = emb_ckpt_get_opt(mf, "opt.rel", &t->rel_st, t->o.opt, kgm_emb_rel_rows(e), e->rel_width);
    if (!rc) rc = emb_ckpt_get_order(mf, t->order, t->n_items);
    if (!rc) rc = emb_ckpt_get_rng(mf, "rng.0", &t->rng);
    return rc;
}

/* kvsall: queries ids[0..n) and their answers into the batch's qs, b_off and b_ans */
static void kvs_gather(emb_ova *t, const int32_t *ids, size_t n)
{
    uint32_t na = 0;
    size_t j = 0;
    /* with o.drop_per_side the tail queries first, then the head queries, each in batch order */
    for (int pass = 0; pass <= t->o.drop_per_side; pass++) {
        for (size_t i = 0; i < n; i++) {
            const size_t q = (size_t)ids[i];
            if (t->o.drop_per_side && asks_head(t->e, &t->kv.qs[q]) != pass) continue;
            t->qs[j] = t->kv.qs[q];
            t->b_off[j++] = na;
            for (uint32_t l = t->kv.off[q]; l < t->kv.off[q + 1]; l++) t->b_ans[na++] = t->kv.ans[l];
        }
        if (pass == 0) t->b_split = j;
    }
    t->b_off[n] = na;
}

size_t emb_ova_kvs_batch(emb_ova *t, const int32_t *ids, size_t n, int *heads)
{
    kvs_gather(t, ids, n);
    for (size_t i = 0; i < n; i++) heads[i] = asks_head(t->e, &t->qs[i]);
    return t->b_split;
}

double emb_ova_epoch(emb_ova *t)
{
    const int32_t *ord = t->order;
    const size_t bt = (size_t)t->o.batch;
    emb_shuffle(&t->rng, t->order, t->n_items);
    double loss = 0;
    for (size_t b = 0; b < t->n_items; b += bt) {
        if (kgm_interrupted()) return -1;
        size_t n = t->n_items - b < bt ? t->n_items - b : bt;
        if (t->kvs) {   /* mean over the batch's n queries */
            kvs_gather(t, ord + b, n);
            loss += ova_batch_full(t, n, 1.0f / (float)n);
            continue;
        }
        for (size_t i = 0; i < n; i++) t->batch[i] = t->pos[ord[b + i]];
        const float scale = 1.0f / (float)(2 * n);   /* mean over the batch's 2n queries */
        loss += t->cand ? ova_batch_sampled(t, n, scale) : ova_batch_full(t, n, scale);
    }
    const size_t queries = t->kvs ? t->n_items : 2 * t->n_pos;
    return queries ? loss / (double)queries : 0;
}
