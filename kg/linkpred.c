/* kg/linkpred.c - filtered link-prediction evaluation (MRR, mean rank, Hits@1/3/10, both sides,
 * fair ties), scoring every candidate entity at once, and nearest neighbours.
 * Dot-product models (DistMult, ComplEx) score a block of queries against all entities with one
 * cblas_sgemm; distance models (TransE, RotatE) with a vectorizable distance loop per entity. */
#include "embed_internal.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "interrupt.h"

/* ---- scoring all candidates ---- */
/* The query as it was trained: with reciprocal relations the head query (., r, t) is asked
 * as the tail query (t, r^-1, .); every other query is left as it is. */
static void as_trained(const kgm_emb *e, int *side, int32_t *h, int32_t *r, int32_t t)
{
    if (*side == 'h' && e->reciprocal) { *side = 't'; *h = t; *r += (int32_t)e->n_rels; }
}

/* The query vector q such that the score of candidate x is <q, x> (dot models) or -dist(q, x)
 * (distance models). side 't': replace the tail of (h, r, .); side 'h': the head of (., r, t),
 * as trained (as_trained). */
static void query_vector(const kgm_emb *e, int side, int32_t h, int32_t r, int32_t t, float *q)
{
    as_trained(e, &side, &h, &r, t);
    const int d = e->dim;
    const float *H = e->ent + (size_t)h * e->ent_width, *R = e->rel + (size_t)r * e->rel_width,
                *T = e->ent + (size_t)t * e->ent_width;
    switch (e->model) {
    case KGM_EMB_TRANSE_L1: case KGM_EMB_TRANSE_L2:
        /* |h + r - x| for tails, |x + r - t| = |x - (t - r)| for heads */
        for (int i = 0; i < d; i++) q[i] = side == 't' ? H[i] + R[i] : T[i] - R[i];
        break;
    case KGM_EMB_DISTMULT:
        for (int i = 0; i < d; i++) q[i] = side == 't' ? H[i] * R[i] : R[i] * T[i];
        break;
    case KGM_EMB_COMPLEX:
        for (int i = 0; i < d; i++) {
            float rr = R[i], ri = R[d + i];
            if (side == 't') { q[i] = H[i] * rr - H[d + i] * ri; q[d + i] = H[i] * ri + H[d + i] * rr; }
            else             { q[i] = rr * T[i] + ri * T[d + i]; q[d + i] = rr * T[d + i] - ri * T[i]; }
        }
        break;
    case KGM_EMB_ROTATE:
        /* |h e^{i th} - x| for tails; |x e^{i th} - t| = |x - t e^{-i th}| for heads (|e^{i th}| = 1) */
        for (int i = 0; i < d; i++) {
            float c = cosf(R[i]), s = side == 't' ? sinf(R[i]) : -sinf(R[i]);
            const float *X = side == 't' ? H : T;
            q[i] = X[i] * c - X[d + i] * s; q[d + i] = X[i] * s + X[d + i] * c;
        }
        break;
    default: break;
    }
}

static int dot_model(const kgm_emb *e) { return e->model == KGM_EMB_DISTMULT || e->model == KGM_EMB_COMPLEX; }

/* scores (nq, n_ents) of nq query vectors q (nq, ent_width) */
static void score_queries(const kgm_emb *e, const float *q, int nq, float *scores)
{
    const int w = e->ent_width, n = (int)e->n_ents;
    if (dot_model(e)) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, n, w, 1.0f, q, w, e->ent, w,
                    0.0f, scores, n);
        return;
    }
    for (int j = 0; j < nq; j++) {
        const float *qj = q + (size_t)j * w;
        float *sj = scores + (size_t)j * n;
        for (int x = 0; x < n; x++) {
            const float *X = e->ent + (size_t)x * w;
            switch (e->model) {
            case KGM_EMB_TRANSE_L1: sj[x] = -emb_l1(qj, X, w); break;
            case KGM_EMB_TRANSE_L2: sj[x] = -emb_l2(qj, X, w); break;
            default:                sj[x] = -emb_cmod(qj, X, e->dim); break;
            }
        }
    }
}

void kgm_emb_score_all(const kgm_emb *e, int side, int32_t h, int32_t r, int32_t t, float *scores)
{
    float *q = malloc((size_t)e->ent_width * sizeof(float));
    if (!q) {   /* no memory for one row: fall back to scoring triple by triple */
        as_trained(e, &side, &h, &r, t);
        const float *R = e->rel + (size_t)r * e->rel_width;
        for (size_t x = 0; x < e->n_ents; x++) {
            const float *X = e->ent + x * (size_t)e->ent_width;
            scores[x] = side == 't' ? emb_score_rows(e, e->ent + (size_t)h * e->ent_width, R, X)
                                    : emb_score_rows(e, X, R, e->ent + (size_t)t * e->ent_width);
        }
        return;
    }
    query_vector(e, side, h, r, t, q);
    score_queries(e, q, 1, scores);
    free(q);
}

/* ---- ranking ---- */
/* Candidates other than target (and not skipped) scoring above it, and exactly equal to it. */
static void count_rivals(const float *scores, size_t n, size_t target, const unsigned char *skip,
                         size_t *greater, size_t *equal)
{
    const float s = scores[target];
    size_t gt = 0, eq = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == target || (skip && skip[i])) continue;
        gt += scores[i] > s;
        eq += scores[i] == s;
    }
    *greater = gt; *equal = eq;
}

double kgm_lp_rank(const float *scores, size_t n, size_t target, const unsigned char *skip)
{
    size_t greater, equal;
    count_rivals(scores, n, target, skip, &greater, &equal);
    return 1.0 + (double)greater + 0.5 * (double)equal;
}

/* ---- the filter: every known triple, sorted by (h, r, t) and by (t, r, h) ---- */
typedef struct { kgm_triple *by_hr, *by_rt; size_t n; } lp_filter;

static int cmp_hrt(const void *a, const void *b)
{
    const kgm_triple *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    if (x->r != y->r) return x->r < y->r ? -1 : 1;
    return (x->t > y->t) - (x->t < y->t);
}
static int cmp_trh(const void *a, const void *b)
{
    const kgm_triple *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    if (x->r != y->r) return x->r < y->r ? -1 : 1;
    return (x->h > y->h) - (x->h < y->h);
}

static int filter_build(lp_filter *f, const kgm_triple *const *known, const size_t *n_known, int n_sets)
{
    size_t n = 0;
    for (int i = 0; i < n_sets; i++) if (known[i]) n += n_known[i];
    f->n = n;
    f->by_hr = malloc((n ? n : 1) * sizeof(kgm_triple));
    f->by_rt = malloc((n ? n : 1) * sizeof(kgm_triple));
    if (!f->by_hr || !f->by_rt) return -1;
    size_t k = 0;
    for (int i = 0; i < n_sets; i++)
        if (known[i]) { memcpy(f->by_hr + k, known[i], n_known[i] * sizeof(kgm_triple)); k += n_known[i]; }
    memcpy(f->by_rt, f->by_hr, n * sizeof(kgm_triple));
    qsort(f->by_hr, n, sizeof(kgm_triple), cmp_hrt);
    qsort(f->by_rt, n, sizeof(kgm_triple), cmp_trh);
    return 0;
}

/* First index in a sorted by cmp whose key >= probe. */
static size_t lower_bound(const kgm_triple *a, size_t n, const kgm_triple *probe,
                          int (*cmp)(const void *, const void *))
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp(&a[mid], probe) < 0) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* Mark (value 1) or unmark (0) every known answer x of (h, r, x) ('t') or (x, r, t) ('h'). */
static void filter_mark(const lp_filter *f, int side, const kgm_triple *q, unsigned char *skip,
                        unsigned char v)
{
    if (side == 't') {
        kgm_triple probe = { q->h, q->r, INT32_MIN };
        for (size_t i = lower_bound(f->by_hr, f->n, &probe, cmp_hrt);
             i < f->n && f->by_hr[i].h == q->h && f->by_hr[i].r == q->r; i++)
            skip[f->by_hr[i].t] = v;
    } else {
        kgm_triple probe = { INT32_MIN, q->r, q->t };
        for (size_t i = lower_bound(f->by_rt, f->n, &probe, cmp_trh);
             i < f->n && f->by_rt[i].t == q->t && f->by_rt[i].r == q->r; i++)
            skip[f->by_rt[i].h] = v;
    }
}

/* ---- evaluation, split over threads by blocks of queries ---- */
enum { QUERY_BLOCK = 32 };

typedef struct {
    _Alignas(64) const kgm_emb *e;
    const lp_filter *filter;
    const kgm_triple *triples;
    size_t lo, hi;                  /* query indexes: query i = triple i/2, side i%2 */
    double sum_rr, sum_rank, h1, h3, h10, sum_rr_opt;
    size_t tied;
    int status;                     /* 0, KGM_ENOMEM or KGM_EINTR */
    pthread_t tid;
} lp_worker;

static void *lp_run(void *arg)
{
    lp_worker *w = arg;
    const kgm_emb *e = w->e;
    const size_t n = e->n_ents;
    float *q = malloc((size_t)QUERY_BLOCK * (size_t)e->ent_width * sizeof(float));
    float *scores = malloc((size_t)QUERY_BLOCK * n * sizeof(float));
    unsigned char *skip = calloc(n ? n : 1, 1);
    if (!q || !scores || !skip) { w->status = KGM_ENOMEM; goto done; }
    for (size_t b = w->lo; b < w->hi; b += QUERY_BLOCK) {
        if (kgm_interrupted()) { w->status = KGM_EINTR; break; }
        int nq = (int)(w->hi - b < QUERY_BLOCK ? w->hi - b : QUERY_BLOCK);
        for (int j = 0; j < nq; j++) {
            const kgm_triple *tr = &w->triples[(b + (size_t)j) / 2];
            int side = (b + (size_t)j) % 2 ? 'h' : 't';
            query_vector(e, side, tr->h, tr->r, tr->t, q + (size_t)j * e->ent_width);
        }
        score_queries(e, q, nq, scores);
        for (int j = 0; j < nq; j++) {
            const kgm_triple *tr = &w->triples[(b + (size_t)j) / 2];
            int side = (b + (size_t)j) % 2 ? 'h' : 't';
            size_t target = (size_t)(side == 't' ? tr->t : tr->h);
            filter_mark(w->filter, side, tr, skip, 1);
            size_t greater, equal;
            count_rivals(scores + (size_t)j * n, n, target, skip, &greater, &equal);
            filter_mark(w->filter, side, tr, skip, 0);
            double rank = 1.0 + (double)greater + 0.5 * (double)equal;
            w->tied += equal > 0;
            w->sum_rr_opt += 1.0 / (1.0 + (double)greater);
            w->sum_rr += 1.0 / rank;
            w->sum_rank += rank;
            w->h1 += rank <= 1.0; w->h3 += rank <= 3.0; w->h10 += rank <= 10.0;
        }
    }
done:
    free(q); free(scores); free(skip);
    return NULL;
}

int kgm_lp_evaluate(const kgm_emb *e, const kgm_triple *triples, size_t n,
                    const kgm_triple *const *known, const size_t *n_known, int n_sets,
                    int threads, kgm_lp_metrics *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++)
        if (triples[i].h < 0 || (size_t)triples[i].h >= e->n_ents || triples[i].t < 0 ||
            (size_t)triples[i].t >= e->n_ents || triples[i].r < 0 || (size_t)triples[i].r >= e->n_rels)
            return kgm_fail(KGM_EINVAL, "evaluation triple %zu (%d, %d, %d) is outside the embedding",
                            i, triples[i].h, triples[i].r, triples[i].t);
    for (int s = 0; s < n_sets; s++)
        for (size_t i = 0; known[s] && i < n_known[s]; i++)
            if (known[s][i].h < 0 || (size_t)known[s][i].h >= e->n_ents || known[s][i].t < 0 ||
                (size_t)known[s][i].t >= e->n_ents)
                return kgm_fail(KGM_EINVAL, "known triple %zu of set %d is outside the embedding", i, s);
    if (n == 0) return 0;
    lp_filter f = {0};
    if (filter_build(&f, known, n_known, n_sets)) {
        free(f.by_hr); free(f.by_rt);
        return kgm_fail(KGM_ENOMEM, "out of memory for the link-prediction filter");
    }
    int nt = emb_threads(threads);
    size_t nq = 2 * n;
    if ((size_t)nt > nq) nt = (int)nq;
    lp_worker *w = aligned_alloc(64, ((size_t)nt * sizeof(lp_worker) + 63) / 64 * 64);
    if (!w) { free(f.by_hr); free(f.by_rt); return kgm_fail(KGM_ENOMEM, "out of memory"); }
    memset(w, 0, (size_t)nt * sizeof(lp_worker));
    int started = 0;
    for (int i = 0; i < nt; i++) {
        w[i].e = e; w[i].filter = &f; w[i].triples = triples;
        w[i].lo = nq * (size_t)i / (size_t)nt; w[i].hi = nq * (size_t)(i + 1) / (size_t)nt;
    }
    for (int i = 1; i < nt; i++) {
        if (pthread_create(&w[i].tid, NULL, lp_run, &w[i]) != 0) break;
        started = i;
    }
    lp_run(&w[0]);
    for (int i = started + 1; i < nt; i++) lp_run(&w[i]);
    int status = 0;
    for (int i = 0; i < nt; i++) {
        if (i >= 1 && i <= started) pthread_join(w[i].tid, NULL);
        if (w[i].status) status = w[i].status;
        out->mrr += w[i].sum_rr; out->mean_rank += w[i].sum_rank;
        out->hits1 += w[i].h1; out->hits3 += w[i].h3; out->hits10 += w[i].h10;
        out->tied += w[i].tied; out->mrr_optimistic += w[i].sum_rr_opt;
    }
    free(w); free(f.by_hr); free(f.by_rt);
    if (status == KGM_ENOMEM) return kgm_fail(KGM_ENOMEM, "out of memory for evaluation scores");
    if (status == KGM_EINTR) return kgm_fail(KGM_EINTR, "evaluation interrupted");
    out->n = nq;
    double inv = 1.0 / (double)nq;
    out->mrr *= inv; out->mrr_optimistic *= inv; out->mean_rank *= inv; out->hits1 *= inv; out->hits3 *= inv; out->hits10 *= inv;
    return 0;
}

/* ---- nearest neighbours by cosine ---- */
int kgm_emb_neighbours(const kgm_emb *e, int32_t ent, int k, int32_t *out_ids, float *out_sims)
{
    if (ent < 0 || (size_t)ent >= e->n_ents) return kgm_fail(KGM_EINVAL, "entity id %d out of range", ent);
    if (k < 1) return kgm_fail(KGM_EINVAL, "neighbour count %d must be positive", k);
    const int w = e->ent_width;
    float *sims = malloc(e->n_ents * sizeof(float));
    if (!sims) return kgm_fail(KGM_ENOMEM, "out of memory");
    const float *x = e->ent + (size_t)ent * w;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)e->n_ents, w, 1.0f, e->ent, w, x, 1, 0.0f, sims, 1);
    float nx = cblas_snrm2(w, x, 1);
    for (size_t i = 0; i < e->n_ents; i++) {
        float ni = cblas_snrm2(w, e->ent + i * (size_t)w, 1);
        sims[i] = ni > 0 && nx > 0 ? sims[i] / (ni * nx) : 0.0f;
    }
    /* insertion into a best-first list of length k: k is small */
    int got = 0;
    for (size_t i = 0; i < e->n_ents; i++) {
        if ((int32_t)i == ent) continue;
        if (got == k && sims[i] <= out_sims[k - 1]) continue;
        int j = got < k ? got++ : k - 1;
        while (j > 0 && out_sims[j - 1] < sims[i]) { out_sims[j] = out_sims[j - 1]; out_ids[j] = out_ids[j - 1]; j--; }
        out_sims[j] = sims[i]; out_ids[j] = (int32_t)i;
    }
    free(sims);
    return got;
}
