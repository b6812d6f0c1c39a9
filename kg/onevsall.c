/* kg/onevsall.c - 1vsAll training for DistMult and ComplEx (loss = KGM_EMB_LOSS_1VSALL): each
 * training triple (h, r, t) asks two queries, (h, r, ?) and (?, r, t), and each query is scored
 * against every entity at once and trained with softmax cross-entropy on the true answer
 * (Lacroix et al. 2018; Ruffinelli et al. 2020 call it 1vsAll).
 *
 * Both models' scores are a dot product of a query vector with the candidate's row, so a batch of
 * queries Q (n, w) is scored by one sgemm S = Q E^T (n, n_ents), and the gradients are two more:
 * dQ = G E and dE += G^T Q, with G = softmax(S) - onehot(answer). dQ then goes back by hand into
 * the rows that formed each query. Every entity row gets a gradient from every batch (all of them
 * are candidates), so the optimizer step is dense over the whole table.
 *
 * The query vectors (rows laid out as in embed.h, complex rows re[dim] then im[dim]):
 *   DistMult  tail: q = h * r              head: q = r * t
 *   ComplEx   tail: q = h r                head: q = conj(r conj(t)) = conj(r) t
 * so that s(h, r, x) = <q, x> for tails and s(x, r, t) = <q, x> for heads (Re <a, b> for
 * complex rows being the real dot product of their re/im layouts).
 *
 * Single training thread; the sgemms use OpenBLAS's own threads. */
#include "embed_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "interrupt.h"

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

/* Scratch for n queries: q and dq (n, ent_width), scores (n, n_ents). */
typedef struct { float *q, *dq, *s; size_t cap; } ova_buf;

static int ova_buf_reserve(ova_buf *b, const kgm_emb *e, size_t n)
{
    if (n <= b->cap) return 0;
    free(b->q); free(b->dq); free(b->s);
    b->q = malloc(n * (size_t)e->ent_width * sizeof(float));
    b->dq = malloc(n * (size_t)e->ent_width * sizeof(float));
    b->s = malloc(n * e->n_ents * sizeof(float));
    b->cap = b->q && b->dq && b->s ? n : 0;
    return b->cap ? 0 : -1;
}
static void ova_buf_free(ova_buf *b) { free(b->q); free(b->dq); free(b->s); }

/* Softmax cross-entropy of each row of s (n, m) against answer[i]; s becomes
 * scale * (softmax - onehot). Returns the summed loss. */
static double softmax_xent(float *s, size_t n, size_t m, const int32_t *answer, float scale)
{
    double loss = 0;
    for (size_t i = 0; i < n; i++) {
        float *row = s + i * m, mx = row[0];
        for (size_t j = 1; j < m; j++) mx = row[j] > mx ? row[j] : mx;
        double z = 0;
        for (size_t j = 0; j < m; j++) z += (row[j] = expf(row[j] - mx));
        float target = row[answer[i]];
        loss += log(z) - log((double)target);
        const float k = (float)(scale / z);
        for (size_t j = 0; j < m; j++) row[j] *= k;
        row[answer[i]] -= scale;
    }
    return loss;
}

/* One side of n triples: adds scale * d(sum of losses)/d(params) into gent (n_ents, ent_width)
 * and grel (n_rels, rel_width); returns the summed loss. */
static double ova_side(const kgm_emb *e, const kgm_triple *p, size_t n, int side, float scale,
                       float *gent, float *grel, ova_buf *b, int32_t *answer)
{
    const int ew = e->ent_width, rw = e->rel_width;
    const int m = (int)e->n_ents;
    for (size_t i = 0; i < n; i++) {
        const float *R = e->rel + (size_t)p[i].r * rw;
        const float *X = e->ent + (size_t)(side == 't' ? p[i].h : p[i].t) * ew;
        if (side == 't') ova_query(e, side, X, R, b->q + i * ew);
        else             ova_query(e, side, R, X, b->q + i * ew);
        answer[i] = side == 't' ? p[i].t : p[i].h;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, m, ew, 1.0f, b->q, ew, e->ent, ew,
                0.0f, b->s, m);
    double loss = softmax_xent(b->s, n, (size_t)m, answer, scale);
    /* dQ = G E, dE += G^T Q */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, ew, m, 1.0f, b->s, m, e->ent, ew,
                0.0f, b->dq, ew);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, ew, (int)n, 1.0f, b->s, m, b->q, ew,
                1.0f, gent, ew);
    for (size_t i = 0; i < n; i++) {
        const float *R = e->rel + (size_t)p[i].r * rw;
        int32_t x = side == 't' ? p[i].h : p[i].t;
        const float *X = e->ent + (size_t)x * ew, *dq = b->dq + i * ew;
        float *gR = grel + (size_t)p[i].r * rw, *gX = gent + (size_t)x * ew;
        if (side == 't') ova_query_back(e, side, X, R, dq, gX, gR);
        else             ova_query_back(e, side, R, X, dq, gR, gX);
    }
    return loss;
}

double emb_ova_loss_grad(const kgm_emb *e, const kgm_triple *p, size_t n, float scale,
                         float *gent, float *grel)
{
    ova_buf b = {0};
    int32_t *answer = malloc((n ? n : 1) * sizeof(int32_t));
    double loss = -1;
    if (answer && !ova_buf_reserve(&b, e, n ? n : 1))
        loss = ova_side(e, p, n, 't', scale, gent, grel, &b, answer) +
               ova_side(e, p, n, 'h', scale, gent, grel, &b, answer);
    free(answer);
    ova_buf_free(&b);
    return loss;
}

/* ---- the trainer ---- */
struct emb_ova {
    kgm_emb          *e;
    kgm_emb_opts      o;
    const kgm_triple *pos;
    size_t            n_pos;
    kgm_triple       *batch;      /* (o.batch) this mini-batch's triples, shuffled order */
    int32_t          *order, *answer;
    float            *gent, *grel;            /* dense gradients */
    emb_opt_state     ent_st, rel_st;
    ova_buf           buf;
    emb_rng           rng;
};

void emb_ova_free(emb_ova *t)
{
    if (!t) return;
    free(t->batch); free(t->order); free(t->answer); free(t->gent); free(t->grel);
    emb_opt_state_free(&t->ent_st);
    emb_opt_state_free(&t->rel_st);
    ova_buf_free(&t->buf);
    free(t);
}

emb_ova *emb_ova_new(kgm_emb *e, const kgm_emb_opts *o, const kgm_triple *pos, size_t n_pos)
{
    emb_ova *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->e = e; t->o = *o; t->pos = pos; t->n_pos = n_pos;
    size_t ne = (e->n_ents ? e->n_ents : 1) * (size_t)e->ent_width;
    size_t nr = (e->n_rels ? e->n_rels : 1) * (size_t)e->rel_width;
    size_t bt = (size_t)o->batch;
    t->batch = malloc(bt * sizeof(kgm_triple));
    t->order = malloc((n_pos ? n_pos : 1) * sizeof(int32_t));
    t->answer = malloc(bt * sizeof(int32_t));
    t->gent = malloc(ne * sizeof(float));
    t->grel = malloc(nr * sizeof(float));
    int ok = t->batch && t->order && t->answer && t->gent && t->grel && !ova_buf_reserve(&t->buf, e, bt) &&
             !emb_opt_state_alloc(&t->ent_st, o->opt, e->n_ents, e->ent_width) &&
             !emb_opt_state_alloc(&t->rel_st, o->opt, e->n_rels, e->rel_width);
    if (!ok) { emb_ova_free(t); return NULL; }
    for (size_t i = 0; i < n_pos; i++) t->order[i] = (int32_t)i;
    emb_rng_seed(&t->rng, o->seed, 0x0a11);
    return t;
}

/* Regularizer gradient of the batch's rows: reg_weight * (N3 or L2) per appearance, times scale */
static void ova_reg(emb_ova *t, size_t n, float scale)
{
    if (t->o.reg == KGM_EMB_REG_NONE) return;
    const kgm_emb *e = t->e;
    kgm_emb_opts o = t->o;
    o.reg_weight *= scale;
    const int cpx = e->model == KGM_EMB_COMPLEX;
    for (size_t i = 0; i < n; i++) {
        const kgm_triple *p = &t->batch[i];
        emb_add_reg(&o, cpx, e->dim, e->ent + (size_t)p->h * e->ent_width, t->gent + (size_t)p->h * e->ent_width);
        emb_add_reg(&o, cpx, e->dim, e->rel + (size_t)p->r * e->rel_width, t->grel + (size_t)p->r * e->rel_width);
        emb_add_reg(&o, cpx, e->dim, e->ent + (size_t)p->t * e->ent_width, t->gent + (size_t)p->t * e->ent_width);
    }
}

double emb_ova_epoch(emb_ova *t)
{
    kgm_emb *e = t->e;
    const int32_t *ord = t->order;
    emb_shuffle(&t->rng, t->order, t->n_pos);
    const size_t ne = e->n_ents * (size_t)e->ent_width, nr = e->n_rels * (size_t)e->rel_width;
    double loss = 0;
    for (size_t b = 0; b < t->n_pos; b += (size_t)t->o.batch) {
        if (kgm_interrupted()) return -1;
        size_t n = t->n_pos - b < (size_t)t->o.batch ? t->n_pos - b : (size_t)t->o.batch;
        for (size_t i = 0; i < n; i++) t->batch[i] = t->pos[ord[b + i]];
        memset(t->gent, 0, ne * sizeof(float));
        memset(t->grel, 0, nr * sizeof(float));
        const float scale = 1.0f / (float)(2 * n);   /* mean over the batch's 2n queries */
        loss += ova_side(e, t->batch, n, 't', scale, t->gent, t->grel, &t->buf, t->answer);
        loss += ova_side(e, t->batch, n, 'h', scale, t->gent, t->grel, &t->buf, t->answer);
        ova_reg(t, n, scale);
        /* dense: every entity row has a gradient from the softmax's denominator */
        emb_opt_step_rows(&t->o, &t->ent_st, e->n_ents, e->ent_width, e->ent, t->gent);
        emb_opt_step_rows(&t->o, &t->rel_st, e->n_rels, e->rel_width, e->rel, t->grel);
    }
    return t->n_pos ? loss / (double)(2 * t->n_pos) : 0;
}
