/* tests/test_embed.c - embeddings: gradients against finite differences, every model learning
 * small chain graphs to near-perfect filtered MRR, the filtered ranking against a brute-force
 * implementation (ties included), fold-in of a withheld entity, save/load, interrupt, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embed_internal.h"
#include "error.h"
#include "interrupt.h"
#include "modelfile.h"
#include "tmpfile.h"

enum { CHAINS = 4, CHAIN_LEN = 8 };

/* CHAINS chains of CHAIN_LEN entities. Directed "next" links i -> i+1, or, for models that
 * only represent symmetric relations (DistMult), "link" triples in both directions.
 * Entity `skip` (if >= 0) and its triples are left out (for fold-in). */
static kgm_graph *chain_graph(int symmetric, int skip)
{
    kgm_graph *g = kgm_graph_new();
    char name[32];
    int32_t id[CHAINS * CHAIN_LEN];
    for (int i = 0; i < CHAINS * CHAIN_LEN; i++) {
        snprintf(name, sizeof name, "e%d", i);
        id[i] = i == skip ? -1 : kgm_graph_entity(g, name);
    }
    int32_t r = kgm_graph_relation(g, symmetric ? "link" : "next");
    for (int c = 0; c < CHAINS; c++)
        for (int k = 0; k + 1 < CHAIN_LEN; k++) {
            int a = c * CHAIN_LEN + k, b = a + 1;
            if (a == skip || b == skip) continue;
            assert_int_equal(kgm_graph_add(g, id[a], r, id[b]), 0);
            if (symmetric) assert_int_equal(kgm_graph_add(g, id[b], r, id[a]), 0);
        }
    assert_int_equal(kgm_graph_finish(g), 0);
    return g;
}

static void test_opts(kgm_emb_opts *o, kgm_emb_model m)
{
    kgm_emb_opts_default(o, m);
    o->dim = 32;
    o->epochs = 300;
    o->threads = 1;   /* with more, Hogwild update order varies and so would the figures */
    o->seed = 7;
    o->batch = 16;
    if (m == KGM_EMB_TRANSE_L1 || m == KGM_EMB_TRANSE_L2) { o->lr = 0.05f; o->negatives = 4; }
    if (m == KGM_EMB_TRANSE_L2) { o->lr = 0.1f; o->margin = 0.2f; o->epochs = 1000; }
    if (m == KGM_EMB_ROTATE) { o->gamma = 4.0f; o->lr = 0.05f; o->negatives = 8; }
    if (m == KGM_EMB_DISTMULT || m == KGM_EMB_COMPLEX) { o->lr = 0.2f; o->negatives = 8; }
}

/* ---- gradients ---- */
static void test_gradients(void **state)
{
    (void)state;
    for (int m = 0; m < KGM_EMB_MODEL_COUNT; m++) {
        kgm_emb_opts o;
        kgm_emb_opts_default(&o, (kgm_emb_model)m);
        o.dim = 5; o.init_scale = 0.8f; o.seed = 3 + (uint64_t)m; o.normalize = 0;
        kgm_emb *e = kgm_emb_new(&o, 2, 1);
        assert_non_null(e);
        float *rows[3] = { e->ent, e->rel, e->ent + e->ent_width };
        int widths[3] = { e->ent_width, e->rel_width, e->ent_width };
        float g[3][16] = {{0}};
        emb_grad_rows(e, rows[0], rows[1], rows[2], 1.0f, g[0], g[1], g[2]);
        for (int p = 0; p < 3; p++)
            for (int i = 0; i < widths[p]; i++) {
                const float step = 1e-2f;
                float keep = rows[p][i];
                rows[p][i] = keep + step; double up = emb_score_rows(e, rows[0], rows[1], rows[2]);
                rows[p][i] = keep - step; double down = emb_score_rows(e, rows[0], rows[1], rows[2]);
                rows[p][i] = keep;
                double fd = (up - down) / (2 * step);
                if (fabs(fd - g[p][i]) > 2e-2 * (1 + fabs(fd)))
                    fail_msg("%s: d score / d row%d[%d] = %g analytic, %g finite difference",
                             kgm_emb_model_name((kgm_emb_model)m), p, i, g[p][i], fd);
            }
        kgm_emb_free(e);
    }
}

/* ---- learning the chains ---- */
static void test_models_learn_chains(void **state)
{
    (void)state;
    for (int m = 0; m < KGM_EMB_MODEL_COUNT; m++) {
        int symmetric = m == KGM_EMB_DISTMULT;
        kgm_graph *g = chain_graph(symmetric, -1);
        kgm_emb_opts o;
        test_opts(&o, (kgm_emb_model)m);
        kgm_emb *e = kgm_emb_new(&o, kgm_graph_n_ents(g), kgm_graph_n_rels(g));
        assert_non_null(e);
        const kgm_triple *known[1] = { kgm_graph_triples(g) };
        size_t nk[1] = { kgm_graph_n_triples(g) };
        kgm_lp_metrics before, after;
        assert_int_equal(kgm_lp_evaluate(e, kgm_graph_triples(g), kgm_graph_n_triples(g), known, nk, 1, 2, &before), 0);
        kgm_emb_report rep;
        assert_int_equal(kgm_emb_train(e, g, &o, NULL, 0, NULL, 0, &rep), 0);
        assert_int_equal(kgm_lp_evaluate(e, kgm_graph_triples(g), kgm_graph_n_triples(g), known, nk, 1, 2, &after), 0);
        printf("%-10s MRR %.3f -> %.3f  hits@1 %.3f  (%d epochs, %.2f s)\n",
               kgm_emb_model_name((kgm_emb_model)m), before.mrr, after.mrr, after.hits1,
               rep.epochs_run, rep.seconds);
        assert_int_equal(after.n, 2 * kgm_graph_n_triples(g));
        assert_true(before.mrr < 0.5);
        assert_true(after.mrr > 0.9);
        kgm_emb_free(e);
        kgm_graph_free(g);
    }
}

/* ---- ranking against brute force ---- */
/* Brute force rank: sort the unfiltered candidates' scores, best first; the target's rank is the
 * mean of the first and the last position holding its score. */
static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}
static double brute_rank(const float *scores, size_t n, size_t target, const unsigned char *skip)
{
    float *kept = malloc(n * sizeof(float));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) if (i == target || !skip[i]) kept[k++] = scores[i];
    qsort(kept, k, sizeof(float), cmp_desc);
    size_t first = k, last = 0;
    for (size_t i = 0; i < k; i++)
        if (kept[i] == scores[target]) { if (first == k) first = i; last = i; }
    free(kept);
    return 0.5 * ((double)first + 1 + (double)last + 1);
}

static void test_rank_matches_brute_force(void **state)
{
    (void)state;
    emb_rng g;
    emb_rng_seed(&g, 11, 0);
    for (int trial = 0; trial < 200; trial++) {
        size_t n = 1 + emb_rng_below(&g, 60);
        float scores[64];
        unsigned char skip[64];
        for (size_t i = 0; i < n; i++) {
            scores[i] = (float)emb_rng_below(&g, 5);    /* few values: many ties */
            skip[i] = emb_rng_below(&g, 4) == 0;
        }
        size_t target = emb_rng_below(&g, (uint32_t)n);
        assert_true(fabs(kgm_lp_rank(scores, n, target, skip) - brute_rank(scores, n, target, skip)) < 1e-12);
    }
}

/* kgm_lp_evaluate (query vectors, sgemm, sorted filter) against scoring each triple one by one
 * with kgm_emb_score and filtering by a linear scan. Integer-valued parameters make every score
 * exact in float, so ties are real ties in both. */
static int is_known(const kgm_triple *k, size_t n, int32_t h, int32_t r, int32_t t)
{
    for (size_t i = 0; i < n; i++) if (k[i].h == h && k[i].r == r && k[i].t == t) return 1;
    return 0;
}

static void test_evaluate_matches_brute_force(void **state)
{
    (void)state;
    const kgm_emb_model models[] = { KGM_EMB_TRANSE_L1, KGM_EMB_TRANSE_L2, KGM_EMB_DISTMULT, KGM_EMB_COMPLEX };
    enum { NE = 30, NR = 3, NK = 120, NT = 25 };
    emb_rng g;
    emb_rng_seed(&g, 5, 0);
    kgm_triple known[NK];
    for (int i = 0; i < NK; i++)
        known[i] = (kgm_triple){ (int32_t)emb_rng_below(&g, NE), (int32_t)emb_rng_below(&g, NR),
                                 (int32_t)emb_rng_below(&g, NE) };
    const kgm_triple *test = known + NK - NT;    /* the test split is part of what is known */
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        kgm_emb_opts o;
        kgm_emb_opts_default(&o, models[mi]);
        o.dim = 3;
        kgm_emb *e = kgm_emb_new(&o, NE, NR);
        for (size_t i = 0; i < NE * (size_t)e->ent_width; i++) e->ent[i] = (float)emb_rng_below(&g, 3) - 1;
        for (size_t i = 0; i < NR * (size_t)e->rel_width; i++) e->rel[i] = (float)emb_rng_below(&g, 3) - 1;
        const kgm_triple *sets[2] = { known, test };
        size_t ns[2] = { NK - NT, NT };
        kgm_lp_metrics got;
        assert_int_equal(kgm_lp_evaluate(e, test, NT, sets, ns, 2, 2, &got), 0);

        double rr = 0, mr = 0, h1 = 0, h3 = 0, h10 = 0, rr_opt = 0;
        size_t tied = 0;
        float scores[NE];
        unsigned char skip[NE];
        for (int i = 0; i < NT; i++)
            for (int side = 0; side < 2; side++) {
                const kgm_triple *q = &test[i];
                for (int x = 0; x < NE; x++) {
                    int32_t h = side ? x : q->h, t = side ? q->t : x;
                    scores[x] = kgm_emb_score(e, h, q->r, t);
                    skip[x] = (unsigned char)is_known(known, NK, h, q->r, t);
                }
                size_t target = (size_t)(side ? q->h : q->t);
                double rank = brute_rank(scores, NE, target, skip);
                int better = 0, ties = 0;
                for (int x = 0; x < NE; x++)
                    if ((size_t)x != target && !skip[x]) { better += scores[x] > scores[target]; ties += scores[x] == scores[target]; }
                tied += ties > 0;
                rr_opt += 1.0 / (1 + better);
                rr += 1 / rank; mr += rank; h1 += rank <= 1; h3 += rank <= 3; h10 += rank <= 10;
            }
        assert_int_equal(got.n, 2 * NT);
        assert_true(fabs(got.mrr - rr / (2 * NT)) < 1e-9);
        assert_true(fabs(got.mean_rank - mr / (2 * NT)) < 1e-9);
        assert_true(fabs(got.hits1 - h1 / (2 * NT)) < 1e-9);
        assert_true(fabs(got.hits3 - h3 / (2 * NT)) < 1e-9);
        assert_true(fabs(got.hits10 - h10 / (2 * NT)) < 1e-9);
        assert_true(tied > 0);                   /* integer parameters: ties are exercised */
        assert_int_equal(got.tied, tied);
        assert_true(fabs(got.mrr_optimistic - rr_opt / (2 * NT)) < 1e-9);
        assert_true(got.mrr_optimistic > got.mrr);
        kgm_emb_free(e);
    }
}

/* ---- fold-in ---- */
static void test_foldin_places_withheld_entity(void **state)
{
    (void)state;
    const kgm_emb_model models[] = { KGM_EMB_TRANSE_L1, KGM_EMB_COMPLEX, KGM_EMB_ROTATE };
    const int withheld = 2 * CHAIN_LEN - 1;       /* the end of the second chain */
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        kgm_graph *g = chain_graph(0, withheld);
        kgm_emb_opts o;
        test_opts(&o, models[mi]);
        kgm_emb *e = kgm_emb_new(&o, kgm_graph_n_ents(g), kgm_graph_n_rels(g));
        assert_int_equal(kgm_emb_train(e, g, &o, NULL, 0, NULL, 0, NULL), 0);
        int32_t before = kgm_graph_find_entity(g, "e14"), fresh = (int32_t)e->n_ents;
        kgm_triple mine[1] = { { before, 0, fresh } };
        float rel0 = e->rel[0], ent0 = e->ent[0];
        const kgm_triple *known[1] = { kgm_graph_triples(g) };
        size_t nk[1] = { kgm_graph_n_triples(g) };
        kgm_lp_metrics m;
        o.epochs = 100;
        assert_int_equal(kgm_emb_foldin(e, 1, mine, 1, &o, known, nk, 1, &m), 0);
        printf("fold-in %-9s MRR of its own triples %.3f\n", kgm_emb_model_name(models[mi]), m.mrr);
        assert_int_equal((int)e->n_ents, (int)kgm_graph_n_ents(g) + 1);
        assert_true(e->rel[0] == rel0 && e->ent[0] == ent0);    /* everything else frozen */
        assert_true(m.mrr > 0.75);
        kgm_emb_free(e);
        kgm_graph_free(g);
    }
}

static void test_foldin_rejects_bad_triples(void **state)
{
    (void)state;
    kgm_graph *g = chain_graph(0, -1);
    kgm_emb_opts o;
    test_opts(&o, KGM_EMB_TRANSE_L1);
    kgm_emb *e = kgm_emb_new(&o, kgm_graph_n_ents(g), kgm_graph_n_rels(g));
    size_t n = e->n_ents;
    kgm_triple old_only = { 0, 0, 1 }, bad_rel = { 0, 5, (int32_t)n };
    assert_int_equal(kgm_emb_foldin(e, 1, &old_only, 1, &o, NULL, NULL, 0, NULL), KGM_EINVAL);
    assert_int_equal(kgm_emb_foldin(e, 1, &bad_rel, 1, &o, NULL, NULL, 0, NULL), KGM_EINVAL);
    assert_int_equal(e->n_ents, n);
    kgm_emb_free(e);
    kgm_graph_free(g);
}

/* ---- files, look-ups ---- */
static void test_save_load_round_trip(void **state)
{
    (void)state;
    char path[64];
    assert_int_equal(tmpfile_make(path, sizeof path, "embed", NULL), 0);
    kgm_emb_opts o;
    kgm_emb_opts_default(&o, KGM_EMB_COMPLEX);
    o.dim = 4;
    kgm_emb *e = kgm_emb_new(&o, 9, 2), *back = NULL;
    assert_int_equal(kgm_emb_save(e, path), 0);
    assert_int_equal(kgm_emb_load(&back, path), 0);
    assert_int_equal(back->model, e->model);
    assert_int_equal(back->n_ents, 9);
    assert_memory_equal(back->ent, e->ent, 9 * 8 * sizeof(float));
    assert_memory_equal(back->rel, e->rel, 2 * 8 * sizeof(float));
    assert_true(kgm_emb_score(back, 1, 1, 2) == kgm_emb_score(e, 1, 1, 2));
    kgm_emb_free(back);

    /* one flipped byte in the data: refused by the checksum */
    FILE *fp = fopen(path, "r+b");
    fseek(fp, 60, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, 60, SEEK_SET);
    fputc(c ^ 0x10, fp);
    fclose(fp);
    back = (kgm_emb *)1;
    assert_int_equal(kgm_emb_load(&back, path), KGM_EFORMAT);
    assert_null(back);
    assert_non_null(strstr(kgm_error(), "checksum"));
    /* truncated */
    assert_int_equal(truncate(path, 40), 0);
    assert_int_equal(kgm_emb_load(&back, path), KGM_EFORMAT);
    /* a model file that is not an embedding */
    kgm_modelfile *mf = kgm_modelfile_new();
    assert_int_equal(kgm_modelfile_set(mf, "kind", "mlp"), 0);
    assert_int_equal(kgm_modelfile_save(mf, path), 0);
    kgm_modelfile_free(mf);
    assert_int_equal(kgm_emb_load(&back, path), KGM_EFORMAT);
    /* counts claiming far more rows than the tensors hold: a format error, not an attempt to
     * allocate two billion rows */
    mf = kgm_modelfile_new();
    const char *keys[][2] = { { "kind", "embedding" }, { "model", "complex" }, { "dim", "4" },
                              { "n_ents", "2000000000" }, { "n_rels", "2" } };
    for (int k = 0; k < 5; k++) assert_int_equal(kgm_modelfile_set(mf, keys[k][0], keys[k][1]), 0);
    assert_int_equal(kgm_modelfile_add(mf, "entities", 9, 8, e->ent), 0);
    assert_int_equal(kgm_modelfile_add(mf, "relations", 2, 8, e->rel), 0);
    assert_int_equal(kgm_modelfile_save(mf, path), 0);
    kgm_modelfile_free(mf);
    assert_int_equal(kgm_emb_load(&back, path), KGM_EFORMAT);
    assert_null(back);
    remove(path);
    assert_int_equal(kgm_emb_load(&back, path), KGM_EIO);
    kgm_emb_free(e);
}

/* A trained RotatE (gamma 4, not the loader's default 6: nothing the loader derives from options
 * may change how relation rows read) scores and ranks exactly as before saving. */
static void test_rotate_save_load_scores(void **state)
{
    (void)state;
    char path[64];
    assert_int_equal(tmpfile_make(path, sizeof path, "embed", NULL), 0);
    kgm_graph *g = chain_graph(0, -1);
    kgm_emb_opts o;
    test_opts(&o, KGM_EMB_ROTATE);
    o.epochs = 60;
    kgm_emb *e = kgm_emb_new(&o, kgm_graph_n_ents(g), kgm_graph_n_rels(g)), *back = NULL;
    assert_int_equal(kgm_emb_train(e, g, &o, NULL, 0, NULL, 0, NULL), 0);
    assert_int_equal(kgm_emb_save(e, path), 0);
    assert_int_equal(kgm_emb_load(&back, path), 0);
    for (int32_t h = 0; h < (int32_t)e->n_ents; h++)
        for (int32_t t = 0; t < (int32_t)e->n_ents; t++)
            assert_true(kgm_emb_score(back, h, 0, t) == kgm_emb_score(e, h, 0, t));
    const kgm_triple *known[1] = { kgm_graph_triples(g) };
    size_t nk[1] = { kgm_graph_n_triples(g) };
    kgm_lp_metrics m1, m2;
    assert_int_equal(kgm_lp_evaluate(e, kgm_graph_triples(g), kgm_graph_n_triples(g), known, nk, 1, 1, &m1), 0);
    assert_int_equal(kgm_lp_evaluate(back, kgm_graph_triples(g), kgm_graph_n_triples(g), known, nk, 1, 1, &m2), 0);
    assert_true(m1.mrr == m2.mrr && m1.mrr > 0.5);
    kgm_emb_free(back);

    /* relation rows are phases in radians: a file written by hand scores as computed by hand */
    const float rel[1] = { 1.5f };
    const float ents[2 * 2] = { 0.25f, 0, -1, 2 };                /* rows: (re, im) of e0; e1 */
    kgm_modelfile *mf = kgm_modelfile_new();
    assert_int_equal(kgm_modelfile_set(mf, "kind", "embedding"), 0);
    assert_int_equal(kgm_modelfile_set(mf, "model", "rotate"), 0);
    assert_int_equal(kgm_modelfile_set(mf, "dim", "1"), 0);
    assert_int_equal(kgm_modelfile_set(mf, "n_ents", "2"), 0);
    assert_int_equal(kgm_modelfile_set(mf, "n_rels", "1"), 0);
    assert_int_equal(kgm_modelfile_add(mf, "entities", 2, 2, ents), 0);
    assert_int_equal(kgm_modelfile_add(mf, "relations", 1, 1, rel), 0);
    assert_int_equal(kgm_modelfile_save(mf, path), 0);
    kgm_modelfile_free(mf);
    assert_int_equal(kgm_emb_load(&back, path), 0);
    assert_int_equal(back->reciprocal, 0);   /* a file without the key: no reciprocal relations */
    /* s(e0, r, e1) = -|0.25 e^{1.5i} - (-1 + 2i)| */
    double ur = 0.25 * cos(1.5), ui = 0.25 * sin(1.5);
    double want = -sqrt((ur + 1) * (ur + 1) + (ui - 2) * (ui - 2));
    assert_true(fabs(kgm_emb_score(back, 0, 0, 1) - want) < 1e-6);
    kgm_emb_free(back);
    remove(path);
    kgm_emb_free(e);
    kgm_graph_free(g);
}

static void test_neighbours(void **state)
{
    (void)state;
    kgm_emb_opts o;
    kgm_emb_opts_default(&o, KGM_EMB_DISTMULT);
    o.dim = 2;
    kgm_emb *e = kgm_emb_new(&o, 4, 1);
    const float rows[4][2] = { { 1, 0 }, { 0, 1 }, { 0.9f, 0.1f }, { -1, 0 } };
    memcpy(e->ent, rows, sizeof rows);
    int32_t ids[3];
    float sims[3];
    assert_int_equal(kgm_emb_neighbours(e, 0, 3, ids, sims), 3);
    assert_int_equal(ids[0], 2); assert_int_equal(ids[1], 1); assert_int_equal(ids[2], 3);
    assert_true(fabsf(sims[2] + 1.0f) < 1e-6f);
    assert_int_equal(kgm_emb_neighbours(e, 4, 3, ids, sims), KGM_EINVAL);
    kgm_emb_free(e);
}

/* ---- TransE rows stay in the unit ball ---- */
static float row_norm(const float *x, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    return (float)sqrt(s);
}
static float max_norm(const float *rows, size_t n, int width)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) { float v = row_norm(rows + i * (size_t)width, width); m = v > m ? v : m; }
    return m;
}

/* Large initial values (norms ~3) start projected to length 1; small ones (norms ~0.1, as
 * Fast-TransX starts relations too) are left as drawn, not stretched. After an epoch of either
 * training path (SGD fast path, Adagrad general path) no row is longer than 1. */
static void test_transe_rows_in_unit_ball(void **state)
{
    (void)state;
    kgm_graph *g = chain_graph(0, -1);
    const size_t ne = kgm_graph_n_ents(g), nr = kgm_graph_n_rels(g);
    kgm_emb_opts o;
    test_opts(&o, KGM_EMB_TRANSE_L1);
    o.init_scale = 0.6f;
    kgm_emb *e = kgm_emb_new(&o, ne, nr);
    for (size_t i = 0; i < ne; i++) assert_true(fabsf(row_norm(e->ent + i * (size_t)o.dim, o.dim) - 1.0f) < 1e-5f);
    assert_true(fabsf(row_norm(e->rel, o.dim) - 1.0f) < 1e-5f);
    kgm_emb_free(e);

    o.init_scale = 0.02f;   /* std 0.0115, norm ~0.065 at dim 32 */
    e = kgm_emb_new(&o, ne, nr);
    assert_true(max_norm(e->ent, ne, o.dim) < 0.2f);
    assert_true(max_norm(e->rel, nr, o.dim) < 0.2f);
    kgm_emb_free(e);

    const kgm_emb_opt opts[2] = { KGM_EMB_OPT_SGD, KGM_EMB_OPT_ADAGRAD };
    for (int k = 0; k < 2; k++) {
        o.init_scale = 0.6f; o.opt = opts[k]; o.lr = 0.5f; o.epochs = 1;   /* big steps leave the ball */
        e = kgm_emb_new(&o, ne, nr);
        assert_int_equal(kgm_emb_train(e, g, &o, NULL, 0, NULL, 0, NULL), 0);
        assert_true(max_norm(e->ent, ne, o.dim) <= 1.0f + 1e-5f);
        assert_true(max_norm(e->rel, nr, o.dim) <= 1.0f + 1e-5f);
        o.normalize = 0;   /* the same steps without the projection do leave it */
        kgm_emb_free(e);
        e = kgm_emb_new(&o, ne, nr);
        assert_int_equal(kgm_emb_train(e, g, &o, NULL, 0, NULL, 0, NULL), 0);
        assert_true(max_norm(e->ent, ne, o.dim) > 1.1f);
        o.normalize = 1;
        kgm_emb_free(e);
    }
    kgm_graph_free(g);
}

/* ---- TransE SGD: the negative's direction after the positive's move (Fast-TransX) ----
 * One triple (0, r, 1) among 3 entities, one step: every corruption the filter allows ((0, r, 0),
 * (0, r, 2), (1, r, 1), (2, r, 1)) shares rows with the positive, and with values much smaller
 * than lr the positive's move flips the sign of many of the negative's coordinates. The rows
 * after the step must be those of the coordinate-by-coordinate reference (move the positive,
 * then read the negative's sign) for one of the corruptions, and differ from the step that
 * reads both signs first. */
enum { SEQ_DIM = 8 };
typedef struct { float ent[3][SEQ_DIM], rel[SEQ_DIM]; } seq_rows;

static float sgn_lr(float x, float lr) { return x > 0 ? lr : (x < 0 ? -lr : 0.0f); }

static void seq_reference(seq_rows *m, int nh, int nt, float lr, int sequential)
{
    for (int i = 0; i < SEQ_DIM; i++) {
        float gn_before = sgn_lr(m->ent[nh][i] + m->rel[i] - m->ent[nt][i], lr);
        float g = sgn_lr(m->ent[0][i] + m->rel[i] - m->ent[1][i], lr);
        m->ent[0][i] -= g; m->rel[i] -= g; m->ent[1][i] += g;
        float gn = sequential ? sgn_lr(m->ent[nh][i] + m->rel[i] - m->ent[nt][i], lr) : gn_before;
        m->ent[nh][i] += gn; m->rel[i] += gn; m->ent[nt][i] -= gn;
    }
}

static float seq_gap(const seq_rows *a, const kgm_emb *e)
{
    float gap = 0;
    for (int x = 0; x < 3; x++)
        for (int i = 0; i < SEQ_DIM; i++) gap = fmaxf(gap, fabsf(a->ent[x][i] - e->ent[x * SEQ_DIM + i]));
    for (int i = 0; i < SEQ_DIM; i++) gap = fmaxf(gap, fabsf(a->rel[i] - e->rel[i]));
    return gap;
}

static void test_transe_negative_after_positive(void **state)
{
    (void)state;
    kgm_graph *g = kgm_graph_new();
    int32_t a = kgm_graph_entity(g, "a"), b = kgm_graph_entity(g, "b"), r = kgm_graph_relation(g, "r");
    assert_int_equal(kgm_graph_add(g, a, r, b), 0);
    assert_int_equal(kgm_graph_finish(g), 0);
    const int corruptions[4][2] = { { 0, 0 }, { 0, 2 }, { 1, 1 }, { 2, 1 } };
    int seen[4] = { 0 };
    for (uint64_t seed = 1; seed <= 12; seed++) {
        kgm_emb_opts o;
        kgm_emb_opts_default(&o, KGM_EMB_TRANSE_L1);
        o.dim = SEQ_DIM; o.lr = 0.1f; o.init_scale = 0.05f; o.normalize = 0;
        o.epochs = 1; o.threads = 1; o.seed = seed;
        kgm_emb *e = kgm_emb_new(&o, 3, 1);
        seq_rows start;
        memcpy(start.ent, e->ent, sizeof start.ent);
        memcpy(start.rel, e->rel, sizeof start.rel);
        assert_int_equal(kgm_emb_train(e, g, &o, NULL, 0, NULL, 0, NULL), 0);
        int match = -1;
        for (int c = 0; c < 4 && match < 0; c++) {
            seq_rows want = start, simultaneous = start;
            seq_reference(&want, corruptions[c][0], corruptions[c][1], o.lr, 1);
            seq_reference(&simultaneous, corruptions[c][0], corruptions[c][1], o.lr, 0);
            if (seq_gap(&want, e) < 1e-5f) {
                match = c;
                assert_true(seq_gap(&simultaneous, e) > 0.05f);   /* the order mattered */
            }
        }
        if (match < 0) fail_msg("seed %llu: the step matches no corruption's sequential update", (unsigned long long)seed);
        seen[match] = 1;
        kgm_emb_free(e);
    }
    assert_true(seen[0] + seen[1] + seen[2] + seen[3] >= 3);   /* aliased and plain corruptions */
    kgm_graph_free(g);
}

/* ---- interrupt and bad options ---- */
/* Filtered negatives on a dense graph: 10 entities, relation 0 holds (h, t) unless
 * (h + t) % 4 == 0, and every pair with entity 1 on either side, so most unfiltered draws hit
 * a true triple. No filtered draw may; bern picks the head of 1-to-many relation 1 with
 * probability tph / (tph + hpt) = 0.9; a triple with no negative on its side reports none. */
static void test_filtered_negatives(void **state)
{
    (void)state;
    enum { N = 10, DRAWS = 20000 };
    kgm_triple pos[2 * N * N];
    size_t n = 0;
    for (int h = 0; h < N; h++)
        for (int t = 0; t < N; t++)
            if ((h + t) % 4 != 0 || h == 1 || t == 1) pos[n++] = (kgm_triple){ h, 0, t };
    for (int t = 1; t < N; t++) pos[n++] = (kgm_triple){ 0, 1, t };   /* 1-to-many: tph 9, hpt 1 */
    emb_negs plain, filt, bern;
    assert_int_equal(emb_negs_init(&plain, pos, n, N, 2, 0, 0), 0);
    assert_int_equal(emb_negs_init(&filt, pos, n, N, 2, 1, 0), 0);
    assert_int_equal(emb_negs_init(&bern, pos, n, N, 2, 1, 1), 0);
    int truth[2][N][N] = {{{0}}};
    for (size_t i = 0; i < n; i++) truth[pos[i].r][pos[i].h][pos[i].t] = 1;
    for (int r = 0; r < 2; r++)
        for (int h = 0; h < N; h++)
            for (int t = 0; t < N; t++) assert_int_equal(emb_negs_contains(&filt, h, r, t), truth[r][h][t]);

    emb_rng g;
    emb_rng_seed(&g, 7, 0);
    int collisions = 0, bern_heads = 0, bern_draws = 0;
    for (int i = 0; i < DRAWS; i++) {
        const kgm_triple *p = &pos[emb_rng_below(&g, (uint32_t)n)];
        int32_t c;
        unsigned char hd;
        assert_int_equal(emb_negs_draw(&plain, &g, emb_rng_next(&g), p, &c, &hd), 1);
        collisions += truth[p->r][hd ? c : p->h][hd ? p->t : c];
        if (emb_negs_draw(&filt, &g, emb_rng_next(&g), p, &c, &hd))
            assert_false(truth[p->r][hd ? c : p->h][hd ? p->t : c]);
        if (p->r == 1 && emb_negs_draw(&bern, &g, emb_rng_next(&g), p, &c, &hd)) {
            assert_false(truth[1][hd ? c : 0][hd ? p->t : c]);
            bern_draws++;
            bern_heads += hd;
        }
    }
    assert_true(collisions > DRAWS / 2);          /* the graph is dense enough to matter */
    assert_true(bern_draws > 1000);
    assert_true(fabs((double)bern_heads / bern_draws - 0.9) < 0.03);
    /* (1, 0, 1): entity 1 is head and tail of every relation-0 triple, no negative exists */
    int32_t c;
    unsigned char hd;
    assert_int_equal(emb_negs_draw(&filt, &g, emb_rng_next(&g), &(kgm_triple){ 1, 0, 1 }, &c, &hd), 0);
    emb_negs_free(&plain); emb_negs_free(&filt); emb_negs_free(&bern);
}

/* ---- 1vsAll ---- */
/* A loss of e's parameters that adds its gradient into ge, gr (scale 1) */
typedef double (*loss_fn)(const kgm_emb *e, const void *ctx, float *ge, float *gr);

/* Fails unless the analytic gradient (gent, grel) of loss matches central finite differences of
 * it for every parameter; what names the loss in the message. */
static void check_fd(kgm_emb *e, loss_fn loss, const void *ctx, const char *what, const float *gent, const float *grel)
{
    float *junk_e = calloc(e->n_ents * (size_t)e->ent_width, sizeof *junk_e);
    float *junk_r = calloc(kgm_emb_rel_rows(e) * (size_t)e->rel_width, sizeof *junk_r);
    assert_true(junk_e && junk_r);
    float *params[2] = { e->ent, e->rel };
    const float *grads[2] = { gent, grel };
    size_t sizes[2] = { e->n_ents * (size_t)e->ent_width, kgm_emb_rel_rows(e) * (size_t)e->rel_width };
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sizes[k]; i++) {
            const float step = 1e-2f;
            float keep = params[k][i];
            params[k][i] = keep + step; double up = loss(e, ctx, junk_e, junk_r);
            params[k][i] = keep - step; double down = loss(e, ctx, junk_e, junk_r);
            params[k][i] = keep;
            double fd = (up - down) / (2 * step);
            if (fabs(fd - grads[k][i]) > 2e-2 * (1 + fabs(fd)))
                fail_msg("%s %s: d loss / d %s[%zu] = %g analytic, %g finite difference",
                         kgm_emb_model_name(e->model), what, k ? "rel" : "ent", i, grads[k][i], fd);
        }
    free(junk_e);
    free(junk_r);
}

typedef struct { const kgm_triple *p; size_t np; const int32_t *cand; size_t nc; const float *bias; const emb_ova_dropout *drop; } ova_case;

static double ova_case_loss(const kgm_emb *e, const void *ctx, float *ge, float *gr)
{
    const ova_case *c = ctx;
    return emb_ova_loss_grad(e, c->p, c->np, c->cand, c->nc, c->bias, c->drop, 1.0f, ge, gr);
}

/* Dropout rates de, dr (candidates' mask per side when per_side), masks of seed 1 */
static emb_ova_dropout dropout(float de, float dr, int per_side) { return (emb_ova_dropout){ de, dr, per_side, 1 }; }

/* Fails unless the analytic 1vsAll gradient (gent, grel) of triples p, over candidates cand
 * (NULL: every entity), with dropout drop (NULL: none), matches central finite differences of
 * the loss for every parameter. */
static void ova_check_fd(kgm_emb *e, const kgm_triple *p, size_t np, const int32_t *cand, size_t nc,
                         const float *bias, const emb_ova_dropout *drop, const float *gent, const float *grel)
{
    const ova_case c = { p, np, cand, nc, bias, drop };
    char what[80];
    snprintf(what, sizeof what, "1vsall%s dropout %g/%g%s", cand ? " (sampled)" : "", drop ? (double)drop->ent : 0.0,
             drop ? (double)drop->rel : 0.0, drop && drop->per_side ? " per side" : "");
    check_fd(e, ova_case_loss, &c, what, gent, grel);
}

/* The 1vsAll loss's gradient (three sgemms and the query vectors' hand-written backward pass)
 * against central finite differences of the loss, for every parameter of a tiny graph, without
 * and with dropout (the masks are part of the function: same seed, same masks), the candidates'
 * mask shared by both sides or drawn per side (which draws other masks: another loss). */
static void test_1vsall_gradient(void **state)
{
    (void)state;
    const kgm_emb_model models[] = { KGM_EMB_DISTMULT, KGM_EMB_COMPLEX };
    enum { NE = 5, NR = 2 };
    const kgm_triple p[] = { { 0, 0, 1 }, { 1, 1, 3 }, { 4, 0, 4 }, { 2, 1, 0 } };
    const size_t np = sizeof p / sizeof p[0];
    for (size_t mi = 0; mi < 2; mi++) {
        kgm_emb_opts o;
        kgm_emb_opts_default(&o, models[mi]);
        o.dim = 3; o.init_scale = 0.8f; o.seed = 9 + mi; o.loss = KGM_EMB_LOSS_1VSALL;
        kgm_emb *e = kgm_emb_new(&o, NE, NR);
        assert_non_null(e);
        const emb_ova_dropout drops[] = { dropout(0, 0, 0), dropout(0.5f, 0, 0), dropout(0.4f, 0.3f, 0),
                                          dropout(0.5f, 0, 1), dropout(0.4f, 0.3f, 1) };
        double losses[5];
        for (int k = 0; k < 5; k++) {
            float gent[NE * 6] = {0}, grel[NR * 6] = {0};
            double loss = losses[k] = emb_ova_loss_grad(e, p, np, NULL, 0, NULL, &drops[k], 1.0f, gent, grel);
            assert_true(loss > 0);
            if (k > 0) {   /* dropout changes the loss, and another seed draws other masks */
                float junk_e[NE * 6], junk_r[NR * 6];
                emb_ova_dropout other = drops[k];
                other.seed = 2;
                assert_true(loss != losses[0]);
                assert_true(emb_ova_loss_grad(e, p, np, NULL, 0, NULL, &other, 1.0f, junk_e, junk_r) != loss);
            }
            if (k > 2) assert_true(loss != losses[k - 2]);   /* per side: the head side's own mask */
            ova_check_fd(e, p, np, NULL, 0, NULL, &drops[k], gent, grel);
        }
        kgm_emb_free(e);
    }
}

/* Sampled 1vsAll for a fixed candidate set: the gradient against finite differences of the
 * sampled loss (entity 5, in no candidate set and no triple, must get none), the loss over all
 * entities listed in a shuffled order equal to the full loss, and a set missing an answer
 * refused. */
static void test_1vsall_sampled_gradient(void **state)
{
    (void)state;
    const kgm_emb_model models[] = { KGM_EMB_DISTMULT, KGM_EMB_COMPLEX };
    enum { NE = 7, NR = 2 };
    const kgm_triple p[] = { { 0, 0, 1 }, { 1, 1, 3 }, { 4, 0, 4 }, { 2, 1, 0 } };
    const size_t np = sizeof p / sizeof p[0];
    const int32_t cand[] = { 3, 6, 0, 2, 4, 1 }, all[NE] = { 6, 2, 5, 0, 3, 1, 4 }, short_[] = { 0, 1, 3, 4 };
    const size_t nc = sizeof cand / sizeof cand[0];
    for (size_t mi = 0; mi < 2; mi++) {
        kgm_emb_opts o;
        kgm_emb_opts_default(&o, models[mi]);
        o.dim = 3; o.init_scale = 0.8f; o.seed = 19 + mi; o.loss = KGM_EMB_LOSS_1VSALL;
        kgm_emb *e = kgm_emb_new(&o, NE, NR);
        assert_non_null(e);
        float gent[NE * 6] = {0}, grel[NR * 6] = {0}, junk_e[NE * 6], junk_r[NR * 6];
        double loss = emb_ova_loss_grad(e, p, np, cand, nc, NULL, NULL, 1.0f, gent, grel);
        assert_true(loss > 0);
        double full = emb_ova_loss_grad(e, p, np, NULL, 0, NULL, NULL, 1.0f, junk_e, junk_r);
        assert_true(full > loss);   /* entity 5 adds to every denominator */
        double listed = emb_ova_loss_grad(e, p, np, all, NE, NULL, NULL, 1.0f, junk_e, junk_r);
        assert_true(fabs(listed - full) < 1e-5 * full);
        assert_true(emb_ova_loss_grad(e, p, np, short_, 4, NULL, NULL, 1.0f, junk_e, junk_r) < 0);   /* 2 missing */
        ova_check_fd(e, p, np, cand, nc, NULL, NULL, gent, grel);
        for (int i = 0; i < e->ent_width; i++) assert_true(gent[5 * e->ent_width + i] == 0.0f);
        for (int per_side = 0; per_side < 2; per_side++) {   /* and through dropout's masks */
            const emb_ova_dropout drop = dropout(0.3f, 0.3f, per_side);
            float dent[NE * 6] = {0}, drel[NR * 6] = {0};
            assert_true(emb_ova_loss_grad(e, p, np, cand, nc, NULL, &drop, 1.0f, dent, drel) > 0);
            ova_check_fd(e, p, np, cand, nc, NULL, &drop, dent, drel);
        }
        const emb_ova_dropout drop = dropout(0.3f, 0.3f, 0);
        const float bias[] = { 0.5f, 1.7f, 0, 2.3f, 0.9f, 1.1f };   /* and with logq's shifts */
        float bent[NE * 6] = {0}, brel[NR * 6] = {0};
        double biased = emb_ova_loss_grad(e, p, np, cand, nc, bias, &drop, 1.0f, bent, brel);
        assert_true(biased > emb_ova_loss_grad(e, p, np, cand, nc, NULL, &drop, 1.0f, junk_e, junk_r));
        ova_check_fd(e, p, np, cand, nc, bias, &drop, bent, brel);
        kgm_emb_free(e);
    }
}

/* One dense 1vsAll epoch written plainly (the trainer's shuffle, then per batch the full loss's
 * gradient and a step on every row): candidates = 0 must train exactly this, bit for bit. */
static void plain_ova_epoch(kgm_emb *e, const kgm_emb_opts *o, const kgm_graph *g, emb_rng *rng,
                            int32_t *order, const emb_opt_state *est, const emb_opt_state *rst)
{
    const kgm_triple *pos = kgm_graph_triples(g);
    size_t n_pos = kgm_graph_n_triples(g), ne = e->n_ents * (size_t)e->ent_width, nr = kgm_emb_rel_rows(e) * (size_t)e->rel_width;
    kgm_triple batch[64];
    float *gent = malloc(ne * sizeof(float)), *grel = malloc(nr * sizeof(float));
    assert_true(o->batch <= 64 && gent && grel);
    emb_shuffle(rng, order, n_pos);
    for (size_t b = 0; b < n_pos; b += (size_t)o->batch) {
        size_t n = n_pos - b < (size_t)o->batch ? n_pos - b : (size_t)o->batch;
        for (size_t i = 0; i < n; i++) batch[i] = pos[order[b + i]];
        memset(gent, 0, ne * sizeof(float));
        memset(grel, 0, nr * sizeof(float));
        assert_true(emb_ova_loss_grad(e, batch, n, NULL, 0, NULL, NULL, 1.0f / (float)(2 * n), gent, grel) > 0);
        emb_opt_step_rows(o, est, e->n_ents, e->ent_width, e->ent, gent);
        emb_opt_step_rows(o, rst, kgm_emb_rel_rows(e), e->rel_width, e->rel, grel);
    }
    free(gent); free(grel);
}

/* candidates = 0 and candidates >= the entity count are today's full 1vsAll exactly (against the
 * plain loop above), whatever `negatives` says; candidates below the entity count sample and so
 * train something else, as does any dropout. The same with reciprocal relations (the plain loop
 * then steps the doubled relation table). */
static void full_unchanged(int reciprocal)
{
    kgm_graph *g = chain_graph(0, -1);
    const size_t ne = kgm_graph_n_ents(g), nr = kgm_graph_n_rels(g), n_pos = kgm_graph_n_triples(g);
    kgm_emb_opts o;
    test_opts(&o, KGM_EMB_COMPLEX);
    o.loss = KGM_EMB_LOSS_1VSALL; o.opt = KGM_EMB_OPT_ADAM; o.lr = 0.01f; o.epochs = 3;
    o.reg = KGM_EMB_REG_NONE; o.batch = 8; o.candidates = 0; o.reciprocal = reciprocal;
    kgm_emb *ref = kgm_emb_new(&o, ne, nr);
    emb_opt_state est = {0}, rst = {0};
    int32_t *order = malloc(n_pos * sizeof(int32_t));
    assert_true(ref && order);
    const size_t rel_rows = kgm_emb_rel_rows(ref);
    assert_int_equal(rel_rows, reciprocal ? 2 * nr : nr);
    assert_int_equal(emb_opt_state_alloc(&est, o.opt, ne, ref->ent_width), 0);
    assert_int_equal(emb_opt_state_alloc(&rst, o.opt, rel_rows, ref->rel_width), 0);
    for (size_t i = 0; i < n_pos; i++) order[i] = (int32_t)i;
    emb_rng rng;
    emb_rng_seed(&rng, o.seed, 0x0a11);
    for (int ep = 0; ep < o.epochs; ep++) plain_ova_epoch(ref, &o, g, &rng, order, &est, &rst);
    const struct { int cands; float de, dr; int per_side; } runs[] = {
        { 0, 0, 0, 0 }, { (int)ne, 0, 0, 0 }, { (int)ne - 1, 0, 0, 0 }, { 0, 0.1f, 0, 0 }, { 0, 0, 0.1f, 0 }, { 0, 0.1f, 0, 1 } };
    kgm_emb *shared = NULL;   /* run 3's: one candidate mask for both sides */
    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        o.candidates = runs[k].cands; o.drop_ent = runs[k].de; o.drop_rel = runs[k].dr; o.drop_per_side = runs[k].per_side;
        o.negatives = (int)k + 1;   /* unused by 1vsall */
        kgm_emb *e = kgm_emb_new(&o, ne, nr);
        assert_int_equal(kgm_emb_train(e, g, &o, NULL, 0, NULL, 0, NULL), 0);
        int same = !memcmp(e->ent, ref->ent, ne * (size_t)e->ent_width * sizeof(float)) &&
                   !memcmp(e->rel, ref->rel, rel_rows * (size_t)e->rel_width * sizeof(float));
        if (same != (k < 2))
            fail_msg("reciprocal %d candidates %d dropout %g/%g: %s the plain full 1vsAll", reciprocal, runs[k].cands,
                     runs[k].de, runs[k].dr, same ? "same as" : "differs from");
        if (runs[k].per_side)   /* a mask per side draws more: another training than one mask */
            assert_memory_not_equal(e->ent, shared->ent, ne * (size_t)e->ent_width * sizeof(float));
        if (k == 3) shared = e;
        else kgm_emb_free(e);
    }
    kgm_emb_free(shared);
    emb_opt_state_free(&est); emb_opt_state_free(&rst);
    free(order);
    kgm_emb_free(ref);
    kgm_graph_free(g);
}

static void test_1vsall_full_unchanged(void **state)
{
    (void)state;
    full_unchanged(0);
    full_unchanged(1);
}

/* Trains a new embedding of g with o and ranks g's own triples with it (filtered by g) */
static void train_and_rank(const kgm_graph *g, const kgm_emb_opts *o, kgm_emb_report *rep, kgm_lp_metrics *m)
{
    kgm_emb *e = kgm_emb_new(o, kgm_graph_n_ents(g), kgm_graph_n_rels(g));
    assert_non_null(e);
    const kgm_triple *known[1] = { kgm_graph_triples(g) };
    size_t nk[1] = { kgm_graph_n_triples(g) };
    assert_int_equal(kgm_emb_train(e, g, o, NULL, 0, NULL, 0, rep), 0);
    assert_int_equal(kgm_lp_evaluate(e, kgm_graph_triples(g), kgm_graph_n_triples(g), known, nk, 1, 1, m), 0);
    kgm_emb_free(e);
}

/* emb_opt_step_list steps the listed rows as emb_opt_step_rows would and leaves the others be
 * (Adam moves a row with a zero gradient once it has momentum: the step must not reach it). */
static void test_opt_step_list(void **state)
{
    (void)state;
    enum { ROWS = 4, W = 3 };
    kgm_emb_opts o;
    kgm_emb_opts_default(&o, KGM_EMB_DISTMULT);
    o.opt = KGM_EMB_OPT_ADAM; o.lr = 0.1f;
    emb_opt_state dense = {0}, listed = {0};
    assert_int_equal(emb_opt_state_alloc(&dense, o.opt, ROWS, W), 0);
    assert_int_equal(emb_opt_state_alloc(&listed, o.opt, ROWS, W), 0);
    float x[ROWS * W], y[ROWS * W], g[ROWS * W], packed[2 * W];
    for (int i = 0; i < ROWS * W; i++) { x[i] = y[i] = 0.1f * (float)i; g[i] = 0.5f - 0.07f * (float)i; }
    const int32_t ids[2] = { 3, 1 };
    /* first a step on every row of both, so that every row has momentum */
    emb_opt_step_rows(&o, &dense, ROWS, W, x, g);
    emb_opt_step_rows(&o, &listed, ROWS, W, y, g);
    for (int i = 0; i < ROWS * W; i++) if (i / W != 1 && i / W != 3) g[i] = 0;
    for (int k = 0; k < 2; k++) memcpy(packed + k * W, g + ids[k] * W, W * sizeof(float));
    float before[ROWS * W];
    memcpy(before, y, sizeof y);
    emb_opt_step_rows(&o, &dense, ROWS, W, x, g);
    emb_opt_step_list(&o, &listed, ids, 2, W, y, packed);
    for (int i = 0; i < ROWS * W; i++) {
        int row = i / W;
        if (row == 1 || row == 3) assert_true(y[i] == x[i]);
        else {
            assert_true(y[i] == before[i]);    /* not stepped */
            assert_true(x[i] != before[i]);    /* a dense Adam step would have moved it */
        }
    }
    emb_opt_state_free(&dense); emb_opt_state_free(&listed);
}

static void test_1vsall_learns_chains(void **state)
{
    (void)state;
    const kgm_emb_model models[] = { KGM_EMB_DISTMULT, KGM_EMB_COMPLEX };
    for (size_t mi = 0; mi < 2; mi++) {
        kgm_graph *g = chain_graph(models[mi] == KGM_EMB_DISTMULT, -1);
        kgm_emb_opts o;
        test_opts(&o, models[mi]);
        o.loss = KGM_EMB_LOSS_1VSALL; o.lr = 0.1f; o.epochs = 100; o.reg_weight = 1e-3f;
        for (int variant = 0; variant < 5; variant++) {
            /* 1: sampled, 4 triples' ends and 4 draws, at most 12 of the 32 entities per batch;
             * 2: sampled with dropout on entity and relation rows; 3: sampled with logq;
             * 4: every entity, dropout with the candidates' mask drawn per side */
            const int sampled = variant > 0 && variant < 4;
            o.candidates = sampled ? 4 : 0;
            o.batch = sampled ? 4 : 16;
            if (variant > 0) { o.opt = KGM_EMB_OPT_ADAM; o.lr = 0.02f; }
            if (variant == 2 || variant == 4) { o.drop_ent = 0.2f; o.drop_rel = 0.1f; }
            if (variant == 3) { o.drop_ent = o.drop_rel = 0; o.logq = 1; }
            if (variant == 4) { o.logq = 0; o.drop_per_side = 1; }
            kgm_lp_metrics m;
            kgm_emb_report rep;
            train_and_rank(g, &o, &rep, &m);
            printf("%-10s 1vsall%s%s MRR %.3f  hits@1 %.3f  loss %.4f (%d epochs, %.2f s)\n",
                   kgm_emb_model_name(models[mi]), sampled ? " cands=4" : "",
                   variant == 2 ? " dropout" : variant == 3 ? " logq" : variant == 4 ? " dropout per side" : "",
                   m.mrr, m.hits1, rep.last_loss,
                   rep.epochs_run, rep.seconds);
            assert_true(m.mrr > 0.9);
        }
        o.drop_ent = o.drop_rel = 0; o.drop_per_side = 0;
        kgm_graph_free(g);
    }
    /* 1vsall needs a dot-product model */
    kgm_emb_opts o;
    test_opts(&o, KGM_EMB_ROTATE);
    o.loss = KGM_EMB_LOSS_1VSALL;
    assert_null(kgm_emb_new(&o, 4, 1));
    assert_non_null(strstr(kgm_error(), "1vsall"));
    test_opts(&o, KGM_EMB_COMPLEX);
    o.loss = KGM_EMB_LOSS_1VSALL;
    const float bad_rates[] = { 1.0f, -0.1f, NAN };
    for (int k = 0; k < 3; k++) {
        o.drop_ent = bad_rates[k];
        assert_null(kgm_emb_new(&o, 4, 1));
        assert_non_null(strstr(kgm_error(), "dropout"));
    }
    o.drop_ent = 0; o.candidates = -1;
    assert_null(kgm_emb_new(&o, 4, 1));
    assert_non_null(strstr(kgm_error(), "candidates"));
    /* a mask per side: 0 or 1, for 1vsall's entity dropout */
    o.candidates = 0; o.drop_per_side = 1;
    assert_null(kgm_emb_new(&o, 4, 1));   /* no entity dropout */
    assert_non_null(strstr(kgm_error(), "drop_per_side"));
    o.drop_ent = 0.2f; o.drop_per_side = 2;
    assert_null(kgm_emb_new(&o, 4, 1));
    assert_non_null(strstr(kgm_error(), "drop_per_side"));
    o.drop_per_side = 1; o.loss = KGM_EMB_LOSS_MARGIN;
    assert_null(kgm_emb_new(&o, 4, 1));
    assert_non_null(strstr(kgm_error(), "drop_per_side"));
    for (int kvs = 0; kvs < 2; kvs++) {
        o.loss = kvs ? KGM_EMB_LOSS_KVSALL : KGM_EMB_LOSS_1VSALL;
        kgm_emb *ok = kgm_emb_new(&o, 4, 1);
        assert_non_null(ok);
        kgm_emb_free(ok);
    }
    o.loss = KGM_EMB_LOSS_1VSALL;
    o.drop_ent = 0; o.drop_per_side = 0;
    /* logq corrects sampling: 0 or 1, and only with sampled 1vsall candidates */
    const struct { int logq, cands; kgm_emb_loss loss; } bad_logq[] = {
        { 2, 4, KGM_EMB_LOSS_1VSALL }, { 1, 0, KGM_EMB_LOSS_1VSALL }, { 1, 4, KGM_EMB_LOSS_SOFTPLUS } };
    for (int k = 0; k < 3; k++) {
        o.logq = bad_logq[k].logq; o.candidates = bad_logq[k].cands; o.loss = bad_logq[k].loss;
        assert_null(kgm_emb_new(&o, 4, 1));
        assert_non_null(strstr(kgm_error(), "logq"));
    }
}

/* ---- KvsAll ---- */
/* KvsAll's loss by brute force: each distinct query of p (tail queries (h, r, ?), then head
 * queries, asked as (t, r^-1, ?) when e is reciprocal) scored by kgm_emb_score against every
 * entity, cross-entropy against ((1 - ls) [answer] + 1 / n) normalized (no 1 / n when ls = 0) */
static double kvs_brute_loss(const kgm_emb *e, const kgm_triple *p, size_t np, float ls)
{
    const size_t ne = e->n_ents;
    double *s = malloc(ne * sizeof *s), total = 0;
    unsigned char *is_ans = malloc(ne);
    assert_true(s && is_ans);
    for (int side = 0; side < 2; side++)
        for (size_t i = 0; i < np; i++) {
            const int32_t fixed = side ? p[i].t : p[i].h;
            int seen = 0;
            for (size_t j = 0; j < i; j++) seen |= p[j].r == p[i].r && (side ? p[j].t : p[j].h) == fixed;
            if (seen) continue;
            memset(is_ans, 0, ne);
            size_t k = 0;
            for (size_t j = 0; j < np; j++)
                if (p[j].r == p[i].r && (side ? p[j].t : p[j].h) == fixed) {
                    const int32_t a = side ? p[j].h : p[j].t;
                    k += !is_ans[a];
                    is_ans[a] = 1;
                }
            double mx = -INFINITY, z = 0;
            for (size_t x = 0; x < ne; x++) {
                const int32_t c = (int32_t)x;
                s[x] = !side ? kgm_emb_score(e, fixed, p[i].r, c)
                     : e->reciprocal ? kgm_emb_score(e, fixed, (int32_t)e->n_rels + p[i].r, c)
                     : kgm_emb_score(e, c, p[i].r, fixed);
                if (s[x] > mx) mx = s[x];
            }
            for (size_t x = 0; x < ne; x++) z += exp(s[x] - mx);
            const double norm = (1 - ls) * (double)k + (ls > 0 ? 1 : 0);
            for (size_t x = 0; x < ne; x++) {
                const double y = ((1 - ls) * is_ans[x] + (ls > 0 ? 1.0 / (double)ne : 0)) / norm;
                total -= y * (s[x] - mx - log(z));
            }
        }
    free(s); free(is_ans);
    return total;
}

typedef struct { const kgm_triple *p; size_t np; float ls; const emb_ova_dropout *drop; } kvs_case;

static double kvs_case_loss(const kgm_emb *e, const void *ctx, float *ge, float *gr)
{
    const kvs_case *c = ctx;
    return emb_kvs_loss_grad(e, c->p, c->np, c->ls, c->drop, 1.0f, ge, gr);
}

/* The KvsAll loss (queries grouped from the triples, a repeated triple counted once, label
 * smoothing) against a brute-force computation, and its gradient against finite differences,
 * for both models with and without reciprocal relations, also through dropout's masks (one
 * candidate mask, or one per side: another loss); with one answer per query and no smoothing
 * it is the 1vsAll loss, gradient and all. */
static void test_kvsall_loss(void **state)
{
    (void)state;
    const kgm_emb_model models[] = { KGM_EMB_DISTMULT, KGM_EMB_COMPLEX };
    enum { NE = 6, NR = 2 };
    /* (0, 0, ?) and (?, 1, 3) have two answers each; (0, 0, 1) is there twice */
    const kgm_triple p[] = { { 0, 0, 1 }, { 0, 0, 2 }, { 3, 0, 1 }, { 1, 1, 3 }, { 2, 1, 3 },
                             { 4, 0, 4 }, { 5, 1, 0 }, { 0, 0, 1 } };
    const kgm_triple single[] = { { 0, 0, 1 }, { 1, 1, 3 }, { 4, 0, 4 }, { 2, 1, 0 } };
    const size_t np = sizeof p / sizeof p[0], ns = sizeof single / sizeof single[0];
    for (size_t mi = 0; mi < 2; mi++)
        for (int recip = 0; recip < 2; recip++) {
            kgm_emb_opts o;
            kgm_emb_opts_default(&o, models[mi]);
            o.dim = 3; o.init_scale = 0.8f; o.seed = 29 + mi; o.loss = KGM_EMB_LOSS_KVSALL; o.reciprocal = recip;
            kgm_emb *e = kgm_emb_new(&o, NE, NR);
            assert_non_null(e);
            const float smoothing[] = { 0, 0.3f };
            double loss_at[2];
            for (int k = 0; k < 2; k++) {
                float gent[NE * 6] = {0}, grel[2 * NR * 6] = {0};
                const double loss = emb_kvs_loss_grad(e, p, np, smoothing[k], NULL, 1.0f, gent, grel),
                             brute = kvs_brute_loss(e, p, np, smoothing[k]);
                assert_true(loss > 0);
                if (fabs(loss - brute) > 1e-5 * brute)
                    fail_msg("%s kvsall recip %d ls %g: loss %.9g, brute force %.9g", kgm_emb_model_name(o.model),
                             recip, (double)smoothing[k], loss, brute);
                loss_at[k] = loss;
                const kvs_case c = { p, np, smoothing[k], NULL };
                check_fd(e, kvs_case_loss, &c, smoothing[k] > 0 ? "kvsall smoothed" : "kvsall", gent, grel);
            }
            assert_true(loss_at[1] != loss_at[0]);
            double dropped[2];
            for (int per_side = 0; per_side < 2; per_side++) {
                const emb_ova_dropout drop = dropout(0.4f, 0.3f, per_side);
                float gent[NE * 6] = {0}, grel[2 * NR * 6] = {0};
                dropped[per_side] = emb_kvs_loss_grad(e, p, np, 0.3f, &drop, 1.0f, gent, grel);
                assert_true(dropped[per_side] > 0 && dropped[per_side] != loss_at[1]);
                const kvs_case c = { p, np, 0.3f, &drop };
                check_fd(e, kvs_case_loss, &c, per_side ? "kvsall dropout per side" : "kvsall dropout", gent, grel);
            }
            assert_true(dropped[1] != dropped[0]);
            /* one answer per query, no smoothing: 1vsAll's sum over the same queries */
            float ke[NE * 6] = {0}, kr[2 * NR * 6] = {0}, oe[NE * 6] = {0}, orl[2 * NR * 6] = {0};
            const double kl = emb_kvs_loss_grad(e, single, ns, 0, NULL, 1.0f, ke, kr),
                         ol = emb_ova_loss_grad(e, single, ns, NULL, 0, NULL, NULL, 1.0f, oe, orl);
            assert_true(fabs(kl - ol) < 1e-6 * ol);
            for (int i = 0; i < NE * e->ent_width; i++) assert_true(fabs(ke[i] - oe[i]) < 1e-5f);
            for (int i = 0; i < (int)kgm_emb_rel_rows(e) * e->rel_width; i++) assert_true(fabs(kr[i] - orl[i]) < 1e-5f);
            kgm_emb_free(e);
        }
}

/* A kvsall batch with drop_per_side asks its tail queries first, then its head queries (the
 * candidates' mask is drawn again between them); without, the queries in batch order, one
 * mask. With and without reciprocal relations (where head queries are (t, r^-1, ?)). */
static void test_kvsall_batch_sides(void **state)
{
    (void)state;
    kgm_graph *g = chain_graph(0, -1);
    const kgm_triple *pos = kgm_graph_triples(g);
    const size_t n_pos = kgm_graph_n_triples(g);
    /* distinct queries: (h, r, ?) and (?, r, t) pairs */
    size_t n_q = 0;
    for (int side = 0; side < 2; side++)
        for (size_t i = 0; i < n_pos; i++) {
            int seen = 0;
            for (size_t j = 0; j < i && !seen; j++)
                seen = pos[j].r == pos[i].r && (side ? pos[j].t == pos[i].t : pos[j].h == pos[i].h);
            n_q += !seen;
        }
    enum { N = 10 };
    int32_t ids[N];   /* both ends of the query table, where the two sides sit */
    for (int i = 0; i < N; i++) ids[i] = i % 2 ? (int32_t)(i / 2) : (int32_t)(n_q - 1 - (size_t)(i / 2));
    for (int recip = 0; recip < 2; recip++) {
        int heads[2][N], split[2];
        for (int per_side = 0; per_side < 2; per_side++) {
            kgm_emb_opts o;
            test_opts(&o, KGM_EMB_DISTMULT);
            o.loss = KGM_EMB_LOSS_KVSALL; o.reciprocal = recip; o.batch = N;
            o.drop_ent = 0.2f; o.drop_per_side = per_side;
            kgm_emb *e = kgm_emb_new(&o, kgm_graph_n_ents(g), kgm_graph_n_rels(g));
            emb_ova *t = e ? emb_ova_new(e, &o, pos, n_pos) : NULL;
            assert_non_null(t);
            split[per_side] = (int)emb_ova_kvs_batch(t, ids, N, heads[per_side]);
            emb_ova_free(t);
            kgm_emb_free(e);
        }
        int n_heads = 0;
        for (int i = 0; i < N; i++) n_heads += heads[0][i];
        assert_true(n_heads > 0 && n_heads < N);   /* both sides in the batch */
        assert_int_equal(split[0], N);
        assert_int_equal(split[1], N - n_heads);
        for (int i = 0; i < N; i++) assert_int_equal(heads[1][i], i >= split[1]);
    }
    kgm_graph_free(g);
}

/* KvsAll training learns the chains (DistMult on the symmetric ones), plain and with reciprocal
 * relations, label smoothing and dropout; options it cannot take are refused. */
static void test_kvsall_learns_chains(void **state)
{
    (void)state;
    const kgm_emb_model models[] = { KGM_EMB_DISTMULT, KGM_EMB_COMPLEX };
    for (size_t mi = 0; mi < 2; mi++) {
        kgm_graph *g = chain_graph(models[mi] == KGM_EMB_DISTMULT, -1);
        double last_loss[3];
        for (int variant = 0; variant < 3; variant++) {   /* 2: with a candidate mask per side */
            kgm_emb_opts o;
            test_opts(&o, models[mi]);
            o.loss = KGM_EMB_LOSS_KVSALL; o.lr = 0.1f; o.epochs = 100; o.reg_weight = 1e-3f;
            if (variant) { o.reciprocal = 1; o.label_smoothing = 0.1f; o.drop_ent = 0.2f; o.drop_rel = 0.1f; }
            o.drop_per_side = variant == 2;
            kgm_lp_metrics m;
            kgm_emb_report rep;
            train_and_rank(g, &o, &rep, &m);
            printf("%-10s kvsall%s%s MRR %.3f  hits@1 %.3f  loss %.4f (%d epochs)\n", kgm_emb_model_name(models[mi]),
                   variant ? " recip ls=0.1 dropout" : "", variant == 2 ? " per side" : "", m.mrr, m.hits1,
                   rep.last_loss, rep.epochs_run);
            assert_true(m.mrr > 0.9);
            last_loss[variant] = rep.last_loss;
        }
        assert_true(last_loss[2] != last_loss[1]);   /* the masks per side trained something else */
        kgm_graph_free(g);
    }
    kgm_emb_opts o;
    const struct { kgm_emb_model model; kgm_emb_loss loss; int cands; float ls; const char *says; } bad[] = {
        { KGM_EMB_ROTATE, KGM_EMB_LOSS_KVSALL, 0, 0, "kvsall loss is for" },
        { KGM_EMB_COMPLEX, KGM_EMB_LOSS_KVSALL, 4, 0, "no sampled candidates" },
        { KGM_EMB_COMPLEX, KGM_EMB_LOSS_1VSALL, 0, 0.1f, "label smoothing" },
        { KGM_EMB_COMPLEX, KGM_EMB_LOSS_KVSALL, 0, 1.0f, "label smoothing" },
        { KGM_EMB_COMPLEX, KGM_EMB_LOSS_KVSALL, 0, NAN, "label smoothing" } };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        test_opts(&o, bad[k].model);
        o.loss = bad[k].loss; o.candidates = bad[k].cands; o.label_smoothing = bad[k].ls;
        assert_null(kgm_emb_new(&o, 4, 1));
        assert_non_null(strstr(kgm_error(), bad[k].says));
    }
}

/* init_low: values uniform in [init_low, init_scale) for entity and relation rows (LibKGE's
 * asymmetric uniform_), RotatE's phases still in +-pi; a positive or NaN init_low refused. */
static void test_init_low(void **state)
{
    (void)state;
    kgm_emb_opts o;
    test_opts(&o, KGM_EMB_DISTMULT);
    o.init_scale = 1.0f; o.init_low = -0.25f;
    kgm_emb *e = kgm_emb_new(&o, 40, 20);
    assert_non_null(e);
    const float *tables[2] = { e->ent, e->rel };
    const size_t sizes[2] = { 40 * (size_t)e->ent_width, 20 * (size_t)e->rel_width };
    for (int k = 0; k < 2; k++) {
        double sum = 0, lo = 1, hi = -1;
        for (size_t i = 0; i < sizes[k]; i++) {
            sum += tables[k][i];
            lo = fmin(lo, tables[k][i]); hi = fmax(hi, tables[k][i]);
        }
        assert_true(lo >= -0.25 && lo < -0.2 && hi < 1 && hi > 0.9);
        assert_true(fabs(sum / (double)sizes[k] - 0.375) < 0.06);
    }
    kgm_emb_free(e);
    test_opts(&o, KGM_EMB_ROTATE);
    o.init_low = -0.01f;
    e = kgm_emb_new(&o, 4, 2);
    assert_non_null(e);
    float phase_lo = 0;
    for (int i = 0; i < 2 * e->rel_width; i++) phase_lo = fminf(phase_lo, e->rel[i]);
    assert_true(phase_lo < -1.0f && phase_lo >= -(float)M_PI);
    kgm_emb_free(e);
    const float bad[] = { 0.5f, NAN };
    for (int k = 0; k < 2; k++) {
        o.init_low = bad[k];
        assert_null(kgm_emb_new(&o, 4, 1));
        assert_non_null(strstr(kgm_error(), "init_low"));
    }
}

/* decay_ent / decay_rel: one SGD step over the whole graph (one batch) with decay moves every
 * row, even one no triple touches, by -lr * decay * x beyond the step without (1vsall and
 * kvsall); candidates >= the entity count score every entity, so decay takes them and trains
 * the same; sampled candidates and negative rates are refused. */
static void test_decay(void **state)
{
    (void)state;
    kgm_graph *g = chain_graph(0, -1);
    for (int kvs = 0; kvs < 2; kvs++) {
        kgm_emb_opts o;
        test_opts(&o, KGM_EMB_COMPLEX);
        o.loss = kvs ? KGM_EMB_LOSS_KVSALL : KGM_EMB_LOSS_1VSALL;
        o.opt = KGM_EMB_OPT_SGD; o.lr = 0.5f; o.reg = KGM_EMB_REG_NONE; o.epochs = 1; o.batch = 1000;
        const size_t ne = kgm_graph_n_ents(g) + 1;   /* the last entity is in no triple */
        kgm_emb *start = kgm_emb_new(&o, ne, kgm_graph_n_rels(g));
        kgm_emb *plain = kgm_emb_copy(start), *decayed = kgm_emb_copy(start);
        kgm_emb_report rep;
        assert_int_equal(kgm_emb_train(plain, g, &o, NULL, 0, NULL, 0, &rep), 0);
        o.decay_ent = 0.1f; o.decay_rel = 0.3f;
        assert_int_equal(kgm_emb_train(decayed, g, &o, NULL, 0, NULL, 0, &rep), 0);
        const float *x0[2] = { start->ent, start->rel }, *a[2] = { plain->ent, plain->rel }, *b[2] = { decayed->ent, decayed->rel };
        const size_t n[2] = { ne * (size_t)start->ent_width, kgm_emb_rel_rows(start) * (size_t)start->rel_width };
        const float d[2] = { o.decay_ent, o.decay_rel };
        for (int k = 0; k < 2; k++)
            for (size_t i = 0; i < n[k]; i++) {
                const float want = -o.lr * d[k] * x0[k][i], got = b[k][i] - a[k][i];
                if (fabsf(got - want) > 1e-5f + 1e-4f * fabsf(want))
                    fail_msg("%s decay: %s[%zu] moved %g beyond the plain step, want %g", kvs ? "kvsall" : "1vsall",
                             k ? "rel" : "ent", i, (double)got, (double)want);
            }
        if (!kvs) {
            kgm_emb *every = kgm_emb_copy(start);
            o.candidates = (int)ne;
            assert_int_equal(kgm_emb_train(every, g, &o, NULL, 0, NULL, 0, &rep), 0);
            assert_memory_equal(every->ent, decayed->ent, n[0] * sizeof(float));
            o.candidates = 0;
            kgm_emb_free(every);
        }
        kgm_emb_free(start); kgm_emb_free(plain); kgm_emb_free(decayed);
    }
    kgm_graph_free(g);
    kgm_emb_opts o;
    test_opts(&o, KGM_EMB_COMPLEX);
    o.loss = KGM_EMB_LOSS_1VSALL; o.candidates = 4; o.decay_ent = 0.1f;
    assert_null(kgm_emb_new(&o, 5, 1));   /* 4 of 5: sampled */
    assert_non_null(strstr(kgm_error(), "decay"));
    o.candidates = 0; o.decay_ent = 0; o.decay_rel = -1;
    assert_null(kgm_emb_new(&o, 4, 1));
    assert_non_null(strstr(kgm_error(), "decay"));
}

/* logq's weights: emb_ova_log_w's chance pi_x of being in a batch's candidate set against the
 * frequency with which the trainer's process puts x there (shuffled epochs cut into batches,
 * each batch's heads and tails, then uniform draws), on a graph with one hub (an end of every
 * third triple) and entities that are ends of no triple. */
static void test_1vsall_logq_inclusion(void **state)
{
    (void)state;
    enum { NE = 30, NP = 64, BATCH = 8, DRAWS = 5, EPOCHS = 3000 };
    kgm_triple pos[NP];
    emb_rng rng;
    emb_rng_seed(&rng, 5, 1);
    for (int i = 0; i < NP; i++)   /* entities 25..29 are no triple's end */
        pos[i] = (kgm_triple){ i % 3 ? (int32_t)emb_rng_below(&rng, 25) : 0, 0, (int32_t)emb_rng_below(&rng, 25) };
    float log_w[NE];
    emb_ova_log_w(pos, NP, NE, BATCH, DRAWS, log_w);
    int32_t order[NP];
    for (int i = 0; i < NP; i++) order[i] = i;
    static int seen[NE];
    int batches = 0;
    for (int ep = 0; ep < EPOCHS; ep++) {
        emb_shuffle(&rng, order, NP);
        for (int b = 0; b + BATCH <= NP; b += BATCH, batches++) {
            int in[NE] = {0};
            for (int i = b; i < b + BATCH; i++) in[pos[order[i]].h] = in[pos[order[i]].t] = 1;
            for (int k = 0; k < DRAWS; k++) in[emb_rng_below(&rng, NE)] = 1;
            for (int x = 0; x < NE; x++) seen[x] += in[x];
        }
    }
    double lo = 1, hi = 0;
    for (int x = 0; x < NE; x++) {
        double pi = exp(-(double)log_w[x]), freq = (double)seen[x] / batches;
        if (fabs(pi - freq) > 0.01)
            fail_msg("entity %d: pi %.4f from emb_ova_log_w, in %.4f of %d batches", x, pi, freq, batches);
        lo = pi < lo ? pi : lo; hi = pi > hi ? pi : hi;
    }
    assert_true(hi > 0.99 && lo < 0.2);   /* the hub and the entities only drawn */
}

/* The point of logq: over random candidate sets, the sampled loss with the -log pi shifts is
 * close to the loss over every entity on average, the plain sampled loss far below it. Sets
 * are a triple's two ends plus K distinct uniform others (pi = K / (NE - 2) for those). */
static void test_1vsall_logq_estimates_full_loss(void **state)
{
    (void)state;
    enum { NE = 60, K = 12, SETS = 4000 };
    const kgm_emb_model models[] = { KGM_EMB_DISTMULT, KGM_EMB_COMPLEX };
    const kgm_triple p[] = { { 0, 0, 1 } };
    for (size_t mi = 0; mi < 2; mi++) {
        kgm_emb_opts o;
        kgm_emb_opts_default(&o, models[mi]);
        o.dim = 4; o.init_scale = 0.7f; o.seed = 3 + mi; o.loss = KGM_EMB_LOSS_1VSALL;
        kgm_emb *e = kgm_emb_new(&o, NE, 1);
        assert_non_null(e);
        float *junk_e = malloc(NE * (size_t)e->ent_width * sizeof(float)), junk_r[8];
        assert_non_null(junk_e);
        const double full = emb_ova_loss_grad(e, p, 1, NULL, 0, NULL, NULL, 1.0f, junk_e, junk_r);
        int32_t others[NE - 2], cand[K + 2] = { 0, 1 };
        float bias[K + 2] = { 0, 0 };
        for (int j = 0; j < NE - 2; j++) others[j] = j + 2;
        for (int j = 2; j < K + 2; j++) bias[j] = -logf((float)K / (NE - 2));
        emb_rng rng;
        emb_rng_seed(&rng, 11, 2);
        double mean_plain = 0, mean_logq = 0;
        for (int s = 0; s < SETS; s++) {
            emb_shuffle(&rng, others, NE - 2);
            memcpy(cand + 2, others, K * sizeof(int32_t));
            mean_plain += emb_ova_loss_grad(e, p, 1, cand, K + 2, NULL, NULL, 1.0f, junk_e, junk_r) / SETS;
            mean_logq += emb_ova_loss_grad(e, p, 1, cand, K + 2, bias, NULL, 1.0f, junk_e, junk_r) / SETS;
        }
        printf("%-8s full loss %.4f, mean sampled %.4f plain, %.4f with logq\n", kgm_emb_model_name(models[mi]),
               full, mean_plain, mean_logq);
        assert_true(full - mean_plain > 1.0);
        assert_true(fabs(full - mean_logq) < 0.1 * (full - mean_plain));
        free(junk_e);
        kgm_emb_free(e);
    }
}

/* emb_expf, the softmax's exponential, against exp in double: within 2 ulp over the whole
 * range where e^x is a normal float, exactly 1 at 0, and 0 below it. */
static void test_expf_accuracy(void **state)
{
    (void)state;
    double worst = 0;
    for (float x = -87.3f; x <= 88.0f; x += 0.000997f) {
        const double want = exp((double)x), got = emb_expf(x);
        const double ulp = ldexp(1.0, ilogb(want) - 23);
        const double err = fabs(got - want) / ulp;
        worst = err > worst ? err : worst;
    }
    printf("emb_expf: worst error %.3f ulp\n", worst);
    assert_true(worst <= 2.0);
    assert_true(emb_expf(0.0f) == 1.0f);
    assert_true(emb_expf(-87.4f) == 0.0f && emb_expf(-1e30f) == 0.0f);
}

/* The trainer's logq over whole epochs whose last batch is short (2 of 10 triples): with
 * parameters that do not move (SGD at a rate below float resolution), the mean epoch loss is
 * the full 1vsAll loss on average only when the short batch gets its own pi. Four hubs, the ends
 * of every triple, hold most of each query's softmax mass; a batch of 8 triples has every hub as
 * a candidate almost surely, one of 2 triples far less often. The log of a sampled sum is below
 * the log of its mean, so even the right pi leaves the mean 0.024 under the full loss here;
 * the full batches' pi for the short one leaves it 0.061 under. */
static void test_1vsall_logq_short_last_batch(void **state)
{
    (void)state;
    enum { NE = 12, NP = 10, BATCH = 8, DRAWS = 2, HUBS = 4, EPOCHS = 20000 };
    kgm_triple pos[NP];
    emb_rng rng;
    emb_rng_seed(&rng, 8, 1);
    for (int i = 0; i < NP; i++)
        pos[i] = (kgm_triple){ (int32_t)emb_rng_below(&rng, HUBS), 0, (int32_t)emb_rng_below(&rng, HUBS) };
    kgm_emb_opts o;
    kgm_emb_opts_default(&o, KGM_EMB_DISTMULT);
    o.dim = 1; o.loss = KGM_EMB_LOSS_1VSALL; o.reg = KGM_EMB_REG_NONE;
    o.opt = KGM_EMB_OPT_SGD; o.lr = 1e-30f; o.batch = BATCH; o.candidates = DRAWS; o.logq = 1;
    kgm_emb *e = kgm_emb_new(&o, NE, 1);
    assert_non_null(e);
    for (int x = 0; x < NE; x++) e->ent[x] = x < HUBS ? 1.5f : 0.1f;
    e->rel[0] = 1.0f;
    float junk_e[NE], junk_r[1];
    const double full = emb_ova_loss_grad(e, pos, NP, NULL, 0, NULL, NULL, 1.0f, junk_e, junk_r) / (2 * NP);
    emb_ova *t = emb_ova_new(e, &o, pos, NP);
    assert_non_null(t);
    double mean = 0;
    for (int ep = 0; ep < EPOCHS; ep++) mean += emb_ova_epoch(t) / EPOCHS;
    printf("full loss %.4f, mean epoch loss with logq %.4f\n", full, mean);
    assert_true(fabs(full - mean) < 0.04);
    emb_ova_free(t);
    kgm_emb_free(e);
}

/* ---- reciprocal relations (1vsAll) ---- */
/* The 1vsAll loss with reciprocal relations: its gradient against finite differences over the
 * doubled relation table (every entity scored and a sampled set, without and with dropout, its
 * candidates' mask shared by the sides or per side);
 * r's own row gets nothing from head queries (new values in every r^-1 row leave its gradient
 * bit for bit); and with each r^-1 row set to r read backwards (r itself for DistMult, conj(r)
 * for ComplEx) the loss is the plain model's and r's plain gradient is r's plus r^-1's. */
static void test_1vsall_reciprocal_gradient(void **state)
{
    (void)state;
    const kgm_emb_model models[] = { KGM_EMB_DISTMULT, KGM_EMB_COMPLEX };
    enum { NE = 7, NR = 2, W = 6 };
    const kgm_triple p[] = { { 0, 0, 1 }, { 1, 1, 3 }, { 4, 0, 4 }, { 2, 1, 0 }, { 5, 0, 2 } };
    const size_t np = sizeof p / sizeof p[0];
    const int32_t cand[] = { 3, 0, 2, 4, 1, 5 };   /* every head and tail; entity 6 left out */
    const size_t nc = sizeof cand / sizeof cand[0];
    for (size_t mi = 0; mi < 2; mi++) {
        kgm_emb_opts o;
        kgm_emb_opts_default(&o, models[mi]);
        o.dim = 3; o.init_scale = 0.8f; o.seed = 29 + mi; o.loss = KGM_EMB_LOSS_1VSALL; o.reciprocal = 1;
        kgm_emb *e = kgm_emb_new(&o, NE, NR);
        assert_non_null(e);
        assert_int_equal(e->n_rels, NR);
        assert_int_equal(kgm_emb_rel_rows(e), 2 * NR);
        const size_t rw = (size_t)e->rel_width, half = NR * rw;
        for (int sampled = 0; sampled < 2; sampled++)
            for (int drop = 0; drop < 3; drop++) {   /* none, one candidate mask, one per side */
                float gent[NE * W] = {0}, grel[2 * NR * W] = {0};
                const emb_ova_dropout d = dropout(0.3f, 0.3f, drop == 2);
                const int32_t *c = sampled ? cand : NULL;
                assert_true(emb_ova_loss_grad(e, p, np, c, sampled ? nc : 0, NULL, drop ? &d : NULL, 1.0f, gent, grel) > 0);
                ova_check_fd(e, p, np, c, sampled ? nc : 0, NULL, drop ? &d : NULL, gent, grel);
            }
        float g1[2 * NR * W] = {0}, g2[2 * NR * W] = {0}, junk[NE * W] = {0};
        assert_true(emb_ova_loss_grad(e, p, np, NULL, 0, NULL, NULL, 1.0f, junk, g1) > 0);
        for (size_t i = half; i < 2 * half; i++) e->rel[i] += 0.3f * (float)(i % 3) - 0.2f;
        assert_true(emb_ova_loss_grad(e, p, np, NULL, 0, NULL, NULL, 1.0f, junk, g2) > 0);
        assert_memory_equal(g1, g2, half * sizeof(float));          /* r's rows: tail queries only */
        assert_memory_not_equal(g1 + half, g2 + half, half * sizeof(float));

        /* r^-1 := r read backwards: the plain model's loss, r's gradient split in two */
        const int cpx = models[mi] == KGM_EMB_COMPLEX;
        for (size_t r = 0; r < NR; r++)
            for (size_t i = 0; i < rw; i++)
                e->rel[half + r * rw + i] = (cpx && i >= (size_t)o.dim ? -1.0f : 1.0f) * e->rel[r * rw + i];
        o.reciprocal = 0;
        kgm_emb *plain = kgm_emb_new(&o, NE, NR);
        assert_non_null(plain);
        memcpy(plain->ent, e->ent, NE * (size_t)e->ent_width * sizeof(float));
        memcpy(plain->rel, e->rel, half * sizeof(float));
        float ge[NE * W] = {0}, gr[2 * NR * W] = {0}, pe[NE * W] = {0}, pr[NR * W] = {0};
        double lr = emb_ova_loss_grad(e, p, np, NULL, 0, NULL, NULL, 1.0f, ge, gr);
        double lp = emb_ova_loss_grad(plain, p, np, NULL, 0, NULL, NULL, 1.0f, pe, pr);
        assert_true(fabs(lr - lp) < 1e-5 * lp);
        for (size_t i = 0; i < NE * (size_t)e->ent_width; i++) assert_true(fabsf(ge[i] - pe[i]) < 1e-4f);
        for (size_t r = 0; r < NR; r++)
            for (size_t i = 0; i < rw; i++) {
                float back = gr[half + r * rw + i] * (cpx && i >= (size_t)o.dim ? -1.0f : 1.0f);
                assert_true(fabsf(pr[r * rw + i] - (gr[r * rw + i] + back)) < 1e-4f);
            }
        kgm_emb_free(plain);
        kgm_emb_free(e);
    }
}

/* CH chains a -> b -> c of one relation "next": entity e(3k + j) is position j of chain k, and
 * its id is 3k + j unless `skip` (if >= 0) is left out with its triples (ids after it shift). */
enum { CH = 8 };
static kgm_graph *short_chains(int skip)
{
    kgm_graph *g = kgm_graph_new();
    char name[32];
    int32_t id[3 * CH];
    for (int i = 0; i < 3 * CH; i++) {
        snprintf(name, sizeof name, "e%d", i);
        id[i] = i == skip ? -1 : kgm_graph_entity(g, name);
    }
    int32_t r = kgm_graph_relation(g, "next");
    for (int k = 0; k < CH; k++)
        for (int a = 3 * k; a < 3 * k + 2; a++)
            if (a != skip && a + 1 != skip) assert_int_equal(kgm_graph_add(g, id[a], r, id[a + 1]), 0);
    assert_int_equal(kgm_graph_finish(g), 0);
    return g;
}

/* MRR of the middle entities' two queries: (b, next, ?) answers c, (?, next, b) answers a.
 * Neither has another known answer, so there is nothing to filter. */
static double middle_mrr(const kgm_emb *e, int *same_vectors)
{
    float tail[3 * CH], head[3 * CH];
    double rr = 0;
    *same_vectors = 1;
    for (int k = 0; k < CH; k++) {
        int32_t a = 3 * k, b = a + 1, c = a + 2;
        kgm_emb_score_all(e, 't', b, 0, b, tail);
        kgm_emb_score_all(e, 'h', b, 0, b, head);
        *same_vectors &= !memcmp(tail, head, sizeof tail);
        rr += 1 / kgm_lp_rank(tail, 3 * CH, (size_t)c, NULL) + 1 / kgm_lp_rank(head, 3 * CH, (size_t)a, NULL);
    }
    return rr / (2 * CH);
}

/* DistMult's score is symmetric in h and t, so without reciprocal relations the head query
 * (?, next, b) scores every candidate as the tail query (b, next, ?) does: a and c tie or one of
 * the two queries ranks its answer second, and the middle entities' MRR is at most 0.75. With
 * r^-1 the head query has a vector of its own and the model learns the direction: near-perfect
 * ranks on the middle entities and overall (full and sampled candidates). */
static void test_reciprocal_learns_direction(void **state)
{
    (void)state;
    kgm_graph *g = short_chains(-1);
    const kgm_triple *known[1] = { kgm_graph_triples(g) };
    size_t nk[1] = { kgm_graph_n_triples(g) };
    double plain_mrr = 0;
    for (int variant = 0; variant < 3; variant++) {   /* plain, reciprocal, reciprocal sampled */
        kgm_emb_opts o;
        test_opts(&o, KGM_EMB_DISTMULT);
        o.loss = KGM_EMB_LOSS_1VSALL; o.lr = 0.1f; o.epochs = 150; o.reg_weight = 1e-3f; o.batch = 4;
        o.reciprocal = variant > 0;
        if (variant == 2) { o.candidates = 4; o.opt = KGM_EMB_OPT_ADAM; o.lr = 0.02f; }
        kgm_emb *e = kgm_emb_new(&o, kgm_graph_n_ents(g), kgm_graph_n_rels(g));
        assert_non_null(e);
        assert_int_equal(kgm_emb_train(e, g, &o, NULL, 0, NULL, 0, NULL), 0);
        kgm_lp_metrics m;
        assert_int_equal(kgm_lp_evaluate(e, known[0], nk[0], known, nk, 1, 1, &m), 0);
        int same;
        double mid = middle_mrr(e, &same);
        printf("distmult 1vsall%s%s: MRR %.3f, middle entities' MRR %.3f\n", o.reciprocal ? " reciprocal" : "",
               o.candidates ? " cands=4" : "", m.mrr, mid);
        if (!o.reciprocal) {
            plain_mrr = m.mrr;
            assert_true(same);
            assert_true(mid <= 0.75 + 1e-9);
        } else {
            assert_false(same);
            assert_true(mid > 0.9);
            assert_true(m.mrr > 0.9 && m.mrr > plain_mrr + 0.08);
        }
        kgm_emb_free(e);
    }
    kgm_graph_free(g);
}

/* kgm_emb_score stays the forward score, kgm_emb_score_all's head side scores (t, r^-1, x);
 * a trained reciprocal ComplEx keeps its flag, its r^-1 rows and every score through save and
 * load; files naming a bad flag or short of r^-1 rows are refused. */
static void test_reciprocal_scores_save_load(void **state)
{
    (void)state;
    char path[64];
    assert_int_equal(tmpfile_make(path, sizeof path, "embed", NULL), 0);
    kgm_graph *g = short_chains(-1);
    const size_t ne = kgm_graph_n_ents(g);
    kgm_emb_opts o;
    test_opts(&o, KGM_EMB_COMPLEX);
    o.loss = KGM_EMB_LOSS_1VSALL; o.reciprocal = 1; o.lr = 0.1f; o.epochs = 20; o.dim = 8;
    kgm_emb *e = kgm_emb_new(&o, ne, 1), *back = NULL;
    assert_int_equal(kgm_emb_train(e, g, &o, NULL, 0, NULL, 0, NULL), 0);
    float s1[3 * CH], s2[3 * CH];
    size_t not_forward = 0;
    for (int32_t x = 0; x < (int32_t)ne; x++) {
        kgm_emb_score_all(e, 't', x, 0, x, s1);
        kgm_emb_score_all(e, 'h', x, 0, x, s2);
        const float *inv = e->rel + e->n_rels * (size_t)e->rel_width;
        for (int32_t y = 0; y < (int32_t)ne; y++) {
            assert_true(fabsf(s1[y] - kgm_emb_score(e, x, 0, y)) < 1e-5f);
            float want = emb_score_rows(e, e->ent + (size_t)x * e->ent_width, inv, e->ent + (size_t)y * e->ent_width);
            assert_true(fabsf(s2[y] - want) < 1e-5f);
            not_forward += fabsf(s2[y] - kgm_emb_score(e, y, 0, x)) > 1e-3f;
        }
    }
    assert_true(not_forward > ne * ne / 2);   /* the head side is not s(y, r, x) */
    assert_int_equal(kgm_emb_save(e, path), 0);
    assert_int_equal(kgm_emb_load(&back, path), 0);
    assert_int_equal(back->reciprocal, 1);
    assert_int_equal(back->n_rels, 1);
    assert_memory_equal(back->rel, e->rel, 2 * (size_t)e->rel_width * sizeof(float));
    for (int32_t x = 0; x < (int32_t)ne; x++)
        for (int side = 0; side < 2; side++) {   /* x is the fixed entity of either side */
            kgm_emb_score_all(e, side ? 'h' : 't', x, 0, x, s1);
            kgm_emb_score_all(back, side ? 'h' : 't', x, 0, x, s2);
            assert_memory_equal(s1, s2, sizeof s1);
        }
    kgm_emb_free(back);

    /* a flag other than 0 or 1, and a reciprocal file with n_rels relation rows only */
    for (int k = 0; k < 2; k++) {
        kgm_modelfile *mf = kgm_modelfile_new();
        assert_int_equal(kgm_modelfile_set(mf, "kind", "embedding"), 0);
        assert_int_equal(kgm_modelfile_set(mf, "model", "complex"), 0);
        assert_int_equal(kgm_modelfile_set(mf, "dim", "8"), 0);
        assert_int_equal(kgm_modelfile_set(mf, "n_ents", "24"), 0);
        assert_int_equal(kgm_modelfile_set(mf, "n_rels", "1"), 0);
        assert_int_equal(kgm_modelfile_set(mf, "reciprocal", k ? "1" : "yes"), 0);
        assert_int_equal(kgm_modelfile_add(mf, "entities", 24, 16, e->ent), 0);
        assert_int_equal(kgm_modelfile_add(mf, "relations", 1, 16, e->rel), 0);
        assert_int_equal(kgm_modelfile_save(mf, path), 0);
        kgm_modelfile_free(mf);
        back = (kgm_emb *)1;
        assert_int_equal(kgm_emb_load(&back, path), KGM_EFORMAT);
        assert_null(back);
        if (!k) assert_non_null(strstr(kgm_error(), "reciprocal"));
    }
    remove(path);
    kgm_emb_free(e);
    kgm_graph_free(g);
}

/* Fold-in into reciprocal embeddings. (1) By hand: DistMult with r on dims 0-3 and r^-1 on dims
 * 4-7 only, so the forward score s(x, r, b) never reads the new row's dims 4-7 and the head
 * query (b, r^-1, ?) reads nothing else: the new entity ranks first on that side only because
 * fold-in also fits (b, r^-1, x) (fitted to the forward triple alone it would rank where its
 * small random start puts it). (2) A trained reciprocal ComplEx places the end of a chain.
 * Relations (r and r^-1) stay frozen in both; r^-1's row id is no relation id. */
static void test_reciprocal_foldin(void **state)
{
    (void)state;
    enum { NE = 20, D = 8 };
    kgm_emb_opts o;
    test_opts(&o, KGM_EMB_DISTMULT);
    o.dim = D; o.loss = KGM_EMB_LOSS_1VSALL; o.reciprocal = 1; o.epochs = 100;
    kgm_emb *e = kgm_emb_new(&o, NE, 1);
    assert_non_null(e);
    emb_rng g;
    emb_rng_seed(&g, 17, 0);
    for (size_t i = 0; i < NE * D; i++) e->ent[i] = 2 * emb_rng_uniform(&g) - 1;
    for (int i = 0; i < D; i++) { e->rel[i] = i < D / 2 ? 1.0f : 0.0f; e->rel[D + i] = i < D / 2 ? 0.0f : 1.0f; }
    float rel[2 * D];
    memcpy(rel, e->rel, sizeof rel);
    const int32_t b = 3, fresh = NE;
    kgm_triple mine[1] = { { fresh, 0, b } };
    kgm_lp_metrics m;
    assert_int_equal(kgm_emb_foldin(e, 1, mine, 1, &o, NULL, NULL, 0, &m), 0);
    float sc[NE + 1];
    kgm_emb_score_all(e, 'h', fresh, 0, b, sc);
    double head_rank = kgm_lp_rank(sc, NE + 1, (size_t)fresh, NULL);
    printf("fold-in distmult 1vsall reciprocal (by hand): MRR of its triple %.3f, head query rank %.1f\n", m.mrr, head_rank);
    assert_true(head_rank == 1.0 && m.mrr > 0.7);
    assert_memory_equal(rel, e->rel, sizeof rel);
    kgm_triple r_inv = { b, (int32_t)e->n_rels, fresh + 1 };
    assert_int_equal(kgm_emb_foldin(e, 1, &r_inv, 1, &o, NULL, NULL, 0, NULL), KGM_EINVAL);
    assert_int_equal(kgm_lp_evaluate(e, &r_inv, 1, NULL, NULL, 0, 1, &m), KGM_EINVAL);
    kgm_emb_free(e);

    const int withheld = 2 * CHAIN_LEN - 1;       /* the end of the second chain */
    kgm_graph *cg = chain_graph(0, withheld);
    test_opts(&o, KGM_EMB_COMPLEX);
    o.loss = KGM_EMB_LOSS_1VSALL; o.reciprocal = 1; o.lr = 0.1f; o.epochs = 100; o.reg_weight = 1e-3f;
    e = kgm_emb_new(&o, kgm_graph_n_ents(cg), kgm_graph_n_rels(cg));
    assert_int_equal(kgm_emb_train(e, cg, &o, NULL, 0, NULL, 0, NULL), 0);
    kgm_triple end[1] = { { kgm_graph_find_entity(cg, "e14"), 0, (int32_t)e->n_ents } };
    const size_t rel_floats = kgm_emb_rel_rows(e) * (size_t)e->rel_width;
    float *trained = malloc(rel_floats * sizeof(float));
    memcpy(trained, e->rel, rel_floats * sizeof(float));
    const kgm_triple *known[1] = { kgm_graph_triples(cg) };
    size_t nk[1] = { kgm_graph_n_triples(cg) };
    o.lr = 0.2f;
    assert_int_equal(kgm_emb_foldin(e, 1, end, 1, &o, known, nk, 1, &m), 0);
    printf("fold-in complex 1vsall reciprocal: MRR of its own triple %.3f\n", m.mrr);
    assert_memory_equal(trained, e->rel, rel_floats * sizeof(float));
    assert_true(m.mrr > 0.75);
    free(trained);
    kgm_emb_free(e);
    kgm_graph_free(cg);
}

/* reciprocal needs 1vsall and is 0 or 1; training options must agree with the embedding */
static void test_reciprocal_refused(void **state)
{
    (void)state;
    kgm_emb_opts o;
    test_opts(&o, KGM_EMB_DISTMULT);
    o.reciprocal = 1;   /* softplus loss */
    assert_null(kgm_emb_new(&o, 4, 1));
    assert_non_null(strstr(kgm_error(), "reciprocal relations need the 1vsall or kvsall loss"));
    o.loss = KGM_EMB_LOSS_1VSALL; o.reciprocal = 2;
    assert_null(kgm_emb_new(&o, 4, 1));
    assert_non_null(strstr(kgm_error(), "reciprocal"));
    kgm_graph *g = short_chains(-1);
    o.reciprocal = 1; o.epochs = 2;
    kgm_emb *e = kgm_emb_new(&o, kgm_graph_n_ents(g), 1);
    assert_non_null(e);
    float *rel = malloc(2 * (size_t)e->rel_width * sizeof(float));
    memcpy(rel, e->rel, 2 * (size_t)e->rel_width * sizeof(float));
    o.reciprocal = 0;
    assert_int_equal(kgm_emb_train(e, g, &o, NULL, 0, NULL, 0, NULL), KGM_EINVAL);
    assert_non_null(strstr(kgm_error(), "reciprocal"));
    assert_memory_equal(rel, e->rel, 2 * (size_t)e->rel_width * sizeof(float));
    free(rel);
    kgm_emb_free(e);
    kgm_graph_free(g);
}

/* kgm_emb_copy: the same model, shape, reciprocal flag and vectors, in tables of its own */
static void test_copy(void **state)
{
    (void)state;
    kgm_emb_opts o;
    test_opts(&o, KGM_EMB_COMPLEX);
    o.loss = KGM_EMB_LOSS_1VSALL; o.reciprocal = 1;
    kgm_emb *e = kgm_emb_new(&o, 5, 2);
    assert_non_null(e);
    kgm_emb *c = kgm_emb_copy(e);
    assert_non_null(c);
    assert_int_equal(c->model, e->model);
    assert_int_equal(c->dim, e->dim);
    assert_int_equal(c->reciprocal, 1);
    assert_int_equal(c->n_ents, 5);
    assert_int_equal(c->n_rels, 2);
    const size_t ne = 5 * (size_t)e->ent_width, nr = kgm_emb_rel_rows(e) * (size_t)e->rel_width;
    assert_int_equal(kgm_emb_rel_rows(c), 4);
    assert_memory_equal(c->ent, e->ent, ne * sizeof(float));
    assert_memory_equal(c->rel, e->rel, nr * sizeof(float));
    assert_true(c->ent != e->ent && c->rel != e->rel);
    const float keep = e->ent[0];
    c->ent[0] += 1.0f;
    assert_true(e->ent[0] == keep);
    kgm_emb_free(e);
    kgm_emb_free(c);
}

/* subsample's weights against counting by hand: 1 / sqrt(8 + triples sharing the head and the
 * relation + triples sharing the tail and the relation), divided by their mean. */
static void test_subsample_weights(void **state)
{
    (void)state;
    const kgm_triple pos[] = { { 0, 0, 1 }, { 0, 0, 2 }, { 0, 0, 3 }, { 4, 0, 1 }, { 1, 1, 0 }, { 5, 1, 6 } };
    enum { N = sizeof pos / sizeof pos[0] };
    float w[N];
    assert_int_equal(emb_subsample_weights(pos, N, w), 0);
    double raw[N], sum = 0;
    for (int i = 0; i < N; i++) {
        int c = 8;
        for (int j = 0; j < N; j++)
            c += (pos[j].h == pos[i].h && pos[j].r == pos[i].r) + (pos[j].t == pos[i].t && pos[j].r == pos[i].r);
        sum += raw[i] = 1 / sqrt(c);
    }
    for (int i = 0; i < N; i++) assert_float_equal(w[i], raw[i] * N / sum, 1e-6);
    assert_true(w[5] > w[0] * 1.1);   /* a triple of its own pattern weighs more than a hub's */
}

/* subsample scales a positive's step by its weight: TransE L1 with gamma -1000, where the
 * positive's logistic derivative is exactly -1 and every negative's exactly 0, so one epoch of
 * SGD moves each row of a triple by lr * weight per coordinate; entities 5 and 6 are in one
 * triple only. */
static void test_subsample_scales_steps(void **state)
{
    (void)state;
    kgm_graph *g = kgm_graph_new();
    char name[8];
    for (int i = 0; i < 7; i++) { snprintf(name, sizeof name, "e%d", i); kgm_graph_entity(g, name); }
    int32_t r0 = kgm_graph_relation(g, "r0"), r1 = kgm_graph_relation(g, "r1");
    const kgm_triple pos[] = { { 0, r0, 1 }, { 0, r0, 2 }, { 0, r0, 3 }, { 4, r0, 1 }, { 1, r1, 0 }, { 5, r1, 6 } };
    enum { N = sizeof pos / sizeof pos[0] };
    for (int i = 0; i < N; i++) assert_int_equal(kgm_graph_add(g, pos[i].h, pos[i].r, pos[i].t), 0);
    assert_int_equal(kgm_graph_finish(g), 0);
    float w[N];
    assert_int_equal(emb_subsample_weights(kgm_graph_triples(g), N, w), 0);
    for (int sub = 0; sub <= 1; sub++) {
        kgm_emb_opts o;
        test_opts(&o, KGM_EMB_TRANSE_L1);
        o.dim = 4; o.loss = KGM_EMB_LOSS_SOFTPLUS; o.gamma = -1000; o.negatives = 2; o.normalize = 0;
        o.lr = 1e-3f; o.epochs = 1; o.subsample = sub;
        kgm_emb *e = kgm_emb_new(&o, 7, 2);
        assert_non_null(e);
        float before[4];
        memcpy(before, e->ent + 5 * 4, sizeof before);
        assert_int_equal(kgm_emb_train(e, g, &o, NULL, 0, NULL, 0, NULL), 0);
        const float want = o.lr * (sub ? w[5] : 1.0f);
        for (int i = 0; i < 4; i++) assert_float_equal(fabsf(e->ent[5 * 4 + i] - before[i]), want, 1e-7 + 1e-3 * want);
        kgm_emb_free(e);
    }
    kgm_emb_opts o;
    kgm_emb_opts_default(&o, KGM_EMB_DISTMULT);
    o.loss = KGM_EMB_LOSS_1VSALL;
    kgm_emb *e = kgm_emb_new(&o, 7, 2);
    assert_non_null(e);
    o.subsample = 1;   /* refused by training, and by a new embedding */
    assert_int_equal(kgm_emb_train(e, g, &o, NULL, 0, NULL, 0, NULL), KGM_EINVAL);
    assert_non_null(strstr(kgm_error(), "subsample"));
    assert_null(kgm_emb_new(&o, 7, 2));
    kgm_emb_free(e);
    kgm_graph_free(g);
}

/* lr_drop: each patience window without a better validation MRR (here of the training triples)
 * ends in a drop of the rate until lr_drops are spent, then in the stop; an improvement after a
 * drop opens a new window. Bad settings are refused. */
typedef struct { int n, epoch[1000]; double mrr[1000]; float lr[1000]; } check_log;

static void log_check(void *ctx, int epoch, double valid_mrr, float lr)
{
    check_log *l = ctx;
    if (l->n < 1000) { l->epoch[l->n] = epoch; l->mrr[l->n] = valid_mrr; l->lr[l->n] = lr; l->n++; }
}

static void test_lr_drop_schedule(void **state)
{
    (void)state;
    kgm_graph *g = chain_graph(0, -1);
    kgm_emb_opts o;
    test_opts(&o, KGM_EMB_TRANSE_L1);
    o.eval_every = 1; o.patience = 3; o.lr_drop = 0.5f; o.lr_drops = 2;
    static check_log log;
    o.on_check = log_check; o.on_check_ctx = &log;
    kgm_emb *e = kgm_emb_new(&o, kgm_graph_n_ents(g), kgm_graph_n_rels(g));
    kgm_emb_report rep;
    assert_int_equal(kgm_emb_train(e, g, &o, kgm_graph_triples(g), kgm_graph_n_triples(g), NULL, 0, &rep), 0);
    /* on_check saw every check: its epochs, the best MRR where the report has it, the rate after
       each drop */
    assert_int_equal(log.n, rep.epochs_run);
    int drops = 0;
    for (int i = 0; i < log.n; i++) {
        assert_int_equal(log.epoch[i], i + 1);
        assert_true(log.mrr[i] <= rep.best_valid_mrr);
        if (i > 0 && log.lr[i] != log.lr[i - 1]) { assert_true(log.lr[i] == 0.5f * log.lr[i - 1]); drops++; }
    }
    assert_true(log.mrr[rep.best_epoch - 1] == rep.best_valid_mrr);
    assert_int_equal(drops + (log.lr[0] != o.lr), rep.lr_drops);
    assert_true(log.lr[log.n - 1] == rep.last_lr);
    o.on_check = NULL;
    printf("lr drops %d, last lr %g, best valid MRR %.3f at epoch %d of %d\n", rep.lr_drops, (double)rep.last_lr,
           rep.best_valid_mrr, rep.best_epoch, rep.epochs_run);
    assert_int_equal(rep.lr_drops, 2);
    assert_true(rep.last_lr == 0.25f * o.lr);
    assert_true(rep.epochs_run < o.epochs);
    /* the last window is patience checks long; the drops after the best took one each */
    const int after_best = rep.epochs_run - rep.best_epoch;
    assert_true(after_best == 3 || after_best == 6 || after_best == 9);

    o.lr_drops = 0;   /* patience alone: the first window without improvement stops training */
    kgm_emb *e0 = kgm_emb_new(&o, kgm_graph_n_ents(g), kgm_graph_n_rels(g));
    kgm_emb_report rep0;
    assert_int_equal(kgm_emb_train(e0, g, &o, kgm_graph_triples(g), kgm_graph_n_triples(g), NULL, 0, &rep0), 0);
    assert_int_equal(rep0.lr_drops, 0);
    assert_true(rep0.last_lr == o.lr);
    assert_int_equal(rep0.epochs_run - rep0.best_epoch, 3);
    assert_true(rep0.epochs_run <= rep.epochs_run);

    o.lr_drops = 1; o.patience = 0;
    assert_int_equal(kgm_emb_train(e0, g, &o, NULL, 0, NULL, 0, &rep0), KGM_EINVAL);
    o.patience = 3; o.lr_drop = 1.0f;
    assert_int_equal(kgm_emb_train(e0, g, &o, NULL, 0, NULL, 0, &rep0), KGM_EINVAL);
    o.lr_drop = 0.0f;
    assert_int_equal(kgm_emb_train(e0, g, &o, NULL, 0, NULL, 0, &rep0), KGM_EINVAL);
    kgm_emb_free(e); kgm_emb_free(e0);
    kgm_graph_free(g);
}

/* A drop reaches the optimizer: an epoch after emb_fit_set_lr / emb_ova_set_lr(lr) is the
 * epoch of a trainer built with lr, bit for bit (and not that of the rate it was built with). */
static void test_set_lr_applies(void **state)
{
    (void)state;
    kgm_graph *g = chain_graph(0, -1);
    for (int ova = 0; ova < 2; ova++) {
        kgm_emb_opts o;
        test_opts(&o, ova ? KGM_EMB_COMPLEX : KGM_EMB_TRANSE_L1);
        if (ova) o.loss = KGM_EMB_LOSS_1VSALL;
        kgm_emb *a = kgm_emb_new(&o, kgm_graph_n_ents(g), kgm_graph_n_rels(g));
        kgm_emb *b = kgm_emb_copy(a), *c = kgm_emb_copy(a);
        kgm_emb_opts fast = o;
        fast.lr = 2 * o.lr;
        const kgm_triple *pos = kgm_graph_triples(g);
        const size_t n = kgm_graph_n_triples(g);
        emb_fit_spec spec = { pos, n, 0, 1, 1 };
        if (ova) {
            emb_ova *ta = emb_ova_new(a, &o, pos, n), *tb = emb_ova_new(b, &fast, pos, n), *tc = emb_ova_new(c, &fast, pos, n);
            emb_ova_set_lr(tb, o.lr);
            assert_true(emb_ova_epoch(ta) >= 0 && emb_ova_epoch(tb) >= 0 && emb_ova_epoch(tc) >= 0);
            emb_ova_free(ta); emb_ova_free(tb); emb_ova_free(tc);
        } else {
            emb_fit *fa = emb_fit_new(a, &o, &spec), *fb = emb_fit_new(b, &fast, &spec), *fc = emb_fit_new(c, &fast, &spec);
            emb_fit_set_lr(fb, o.lr);
            assert_true(emb_fit_epoch(fa) >= 0 && emb_fit_epoch(fb) >= 0 && emb_fit_epoch(fc) >= 0);
            emb_fit_free(fa); emb_fit_free(fb); emb_fit_free(fc);
        }
        const size_t bytes = a->n_ents * (size_t)a->ent_width * sizeof(float);
        assert_memory_equal(a->ent, b->ent, bytes);
        assert_memory_not_equal(a->ent, c->ent, bytes);
        kgm_emb_free(a); kgm_emb_free(b); kgm_emb_free(c);
    }
    kgm_graph_free(g);
}

/* A checkpoint's permutation comes back whole past 2^24 entries, where a float no longer holds
 * every integer (16777217 would come back as 16777216); a damaged entry is refused. */
static void test_checkpoint_order_past_float_integers(void **state)
{
    (void)state;
    const size_t n = ((size_t)1 << 24) + 2;
    int32_t *order = malloc(n * sizeof(int32_t)), *back = malloc(n * sizeof(int32_t));
    assert_true(order && back);
    for (size_t i = 0; i < n; i++) order[i] = (int32_t)(n - 1 - i);
    kgm_modelfile *mf = kgm_modelfile_new();
    assert_non_null(mf);
    assert_int_equal(emb_ckpt_put_order(mf, order, n), 0);
    assert_int_equal(emb_ckpt_get_order(mf, back, n), 0);
    assert_memory_equal(order, back, n * sizeof(int32_t));
    kgm_modelfile_free(mf);
    order[7] = (int32_t)n;   /* not an index of n triples */
    assert_non_null(mf = kgm_modelfile_new());
    assert_int_equal(emb_ckpt_put_order(mf, order, n), 0);
    assert_int_equal(emb_ckpt_get_order(mf, back, n), KGM_EFORMAT);
    assert_non_null(strstr(kgm_error(), "entry 7"));
    kgm_modelfile_free(mf);
    free(order); free(back);
}

/* The tensor `name` of two checkpoint files is the same, bit for bit. */
static void same_tensor(const char *a, const char *b, const char *name, int rows, int cols)
{
    kgm_modelfile *ma, *mb;
    const float *da, *db;
    assert_int_equal(kgm_modelfile_load(&ma, a), 0);
    assert_int_equal(kgm_modelfile_load(&mb, b), 0);
    assert_int_equal(kgm_modelfile_tensor(ma, name, rows, cols, &da), 0);
    assert_int_equal(kgm_modelfile_tensor(mb, name, rows, cols, &db), 0);
    assert_memory_equal(da, db, (size_t)rows * (size_t)cols * sizeof(float));
    kgm_modelfile_free(ma); kgm_modelfile_free(mb);
}

/* Checkpoint and resume: 4 epochs with a checkpoint, then a run resumed from it to 6, ends as
 * 6 epochs in one run, bit for bit (the last epoch's parameters and optimizer state in the
 * final checkpoints, the kept best parameters, the figures): the sampled trainer (RotatE, Adam,
 * self-adversarial negatives) and the 1vsAll one (ComplEx, Adagrad, sampled candidates,
 * dropout; and KvsAll with reciprocal relations and label smoothing), all with validation, patience and rate drops. A resume whose options do not match
 * the checkpoint, or from a file that is not one, is refused and leaves the embedding as it was. */
static void test_checkpoint_resume(void **state)
{
    (void)state;
    kgm_graph *g = chain_graph(0, -1);
    const kgm_triple *valid = kgm_graph_triples(g);
    const size_t n_valid = kgm_graph_n_triples(g);
    char path[64], other[64], whole_path[64];
    assert_int_equal(tmpfile_make(path, sizeof path, "embed", NULL), 0);
    assert_int_equal(tmpfile_make(other, sizeof other, "embed", NULL), 0);
    assert_int_equal(tmpfile_make(whole_path, sizeof whole_path, "embed", NULL), 0);
    for (int ova = 0; ova < 3; ova++) {
        kgm_emb_opts o;
        test_opts(&o, ova ? KGM_EMB_COMPLEX : KGM_EMB_ROTATE);
        if (ova) { o.loss = KGM_EMB_LOSS_1VSALL; o.candidates = 6; o.drop_ent = 0.2f; o.drop_rel = 0.1f; }
        if (ova == 2) { o.loss = KGM_EMB_LOSS_KVSALL; o.candidates = 0; o.reciprocal = 1; o.label_smoothing = 0.1f; }
        else { o.opt = KGM_EMB_OPT_ADAM; o.lr = 0.01f; o.adv_temp = 0.5f; }
        o.eval_every = 2; o.patience = 1; o.lr_drop = 0.5f; o.lr_drops = 5; o.epochs = 6;
        kgm_emb *whole = kgm_emb_new(&o, kgm_graph_n_ents(g), kgm_graph_n_rels(g));
        kgm_emb *split = kgm_emb_copy(whole), *fresh = kgm_emb_copy(whole);
        kgm_emb_report r_whole, r_split, r_fresh;
        kgm_emb_opts once = o;
        once.checkpoint = whole_path;
        assert_int_equal(kgm_emb_train(whole, g, &once, valid, n_valid, NULL, 0, &r_whole), 0);

        kgm_emb_opts first = o;
        first.epochs = 4; first.checkpoint = path;
        assert_int_equal(kgm_emb_train(split, g, &first, valid, n_valid, NULL, 0, &r_split), 0);
        kgm_emb_opts rest = o;
        rest.checkpoint = path; rest.resume = 1;
        assert_int_equal(kgm_emb_train(split, g, &rest, valid, n_valid, NULL, 0, &r_split), 0);
        printf("%s: whole run best valid %.4f at %d, lr %g; resumed %.4f at %d, lr %g\n",
               kgm_emb_model_name(o.model), r_whole.best_valid_mrr, r_whole.best_epoch, (double)r_whole.last_lr,
               r_split.best_valid_mrr, r_split.best_epoch, (double)r_split.last_lr);
        const size_t ent_bytes = whole->n_ents * (size_t)whole->ent_width * sizeof(float),
                     rel_bytes = kgm_emb_rel_rows(whole) * (size_t)whole->rel_width * sizeof(float);
        assert_memory_equal(whole->ent, split->ent, ent_bytes);   /* the best, kept */
        assert_memory_equal(whole->rel, split->rel, rel_bytes);
        const int ne = (int)whole->n_ents, nr = (int)kgm_emb_rel_rows(whole);
        same_tensor(whole_path, path, "entities", ne, whole->ent_width);   /* epoch 6's */
        same_tensor(whole_path, path, "relations", nr, whole->rel_width);
        same_tensor(whole_path, path, "opt.ent.s1", ne, whole->ent_width);
        /* kvsall shuffles queries: here each triple's two, all distinct */
        same_tensor(whole_path, path, "order", (int)n_valid * (ova == 2 ? 2 : 1), 2);
        assert_int_equal(r_split.epochs_run, 6);
        assert_int_equal(r_split.best_epoch, r_whole.best_epoch);
        assert_true(r_split.best_valid_mrr == r_whole.best_valid_mrr);
        assert_true(r_split.last_lr == r_whole.last_lr);
        assert_int_equal(r_split.lr_drops, r_whole.lr_drops);

        /* without resume, the second call trains 6 epochs from the first's result: not the same */
        assert_int_equal(kgm_emb_train(fresh, g, &first, valid, n_valid, NULL, 0, &r_fresh), 0);
        kgm_emb_opts again = o;
        again.checkpoint = other;
        assert_int_equal(kgm_emb_train(fresh, g, &again, valid, n_valid, NULL, 0, &r_fresh), 0);
        kgm_modelfile *ma, *mb;
        const float *da, *db;
        assert_int_equal(kgm_modelfile_load(&ma, whole_path), 0);
        assert_int_equal(kgm_modelfile_load(&mb, other), 0);
        assert_int_equal(kgm_modelfile_tensor(ma, "entities", ne, whole->ent_width, &da), 0);
        assert_int_equal(kgm_modelfile_tensor(mb, "entities", ne, whole->ent_width, &db), 0);
        assert_memory_not_equal(da, db, ent_bytes);
        kgm_modelfile_free(ma); kgm_modelfile_free(mb);

        /* refusals: another seed, another batch, a file that is not a checkpoint; split unchanged */
        kgm_emb *before = kgm_emb_copy(split);
        kgm_emb_opts bad = rest;
        bad.seed = 8;
        assert_int_equal(kgm_emb_train(split, g, &bad, valid, n_valid, NULL, 0, &r_fresh), KGM_EINVAL);
        assert_non_null(strstr(kgm_error(), "seed"));
        bad = rest; bad.batch = 5;
        assert_int_equal(kgm_emb_train(split, g, &bad, valid, n_valid, NULL, 0, &r_fresh), KGM_EINVAL);
        assert_int_equal(kgm_emb_save(split, other), 0);
        bad = rest; bad.checkpoint = other;
        assert_int_equal(kgm_emb_train(split, g, &bad, valid, n_valid, NULL, 0, &r_fresh), KGM_EFORMAT);
        bad = rest; bad.checkpoint = NULL;
        assert_int_equal(kgm_emb_train(split, g, &bad, valid, n_valid, NULL, 0, &r_fresh), KGM_EINVAL);
        assert_memory_equal(before->ent, split->ent, ent_bytes);
        assert_memory_equal(before->rel, split->rel, rel_bytes);
        kgm_emb_free(before);
        kgm_emb_free(whole); kgm_emb_free(split); kgm_emb_free(fresh);
    }
    unlink(path); unlink(other); unlink(whole_path);
    kgm_graph_free(g);
}

static void test_interrupt_keeps_state(void **state)
{
    (void)state;
    kgm_graph *g = chain_graph(0, -1);
    kgm_emb_opts o;
    test_opts(&o, KGM_EMB_TRANSE_L1);
    kgm_emb *e = kgm_emb_new(&o, kgm_graph_n_ents(g), kgm_graph_n_rels(g));
    kgm_emb_report rep;
    kgm_interrupt_raise();
    assert_int_equal(kgm_emb_train(e, g, &o, NULL, 0, NULL, 0, &rep), KGM_EINTR);
    kgm_interrupt_clear();
    assert_true(rep.interrupted);
    assert_int_equal(rep.epochs_run, 0);
    o.dim = 7;   /* does not match e */
    assert_int_equal(kgm_emb_train(e, g, &o, NULL, 0, NULL, 0, &rep), KGM_EINVAL);
    o.dim = 32; o.negatives = 0;
    assert_int_equal(kgm_emb_train(e, g, &o, NULL, 0, NULL, 0, &rep), KGM_EINVAL);
    kgm_emb_model m;
    assert_int_equal(kgm_emb_model_parse("rotate", &m), 0);
    assert_int_equal(m, KGM_EMB_ROTATE);
    assert_int_equal(kgm_emb_model_parse("transh", &m), KGM_EINVAL);
    kgm_emb_free(e);
    kgm_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_models_learn_chains),
        cmocka_unit_test(test_rank_matches_brute_force),
        cmocka_unit_test(test_evaluate_matches_brute_force),
        cmocka_unit_test(test_foldin_places_withheld_entity),
        cmocka_unit_test(test_foldin_rejects_bad_triples),
        cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_rotate_save_load_scores),
        cmocka_unit_test(test_neighbours),
        cmocka_unit_test(test_filtered_negatives),
        cmocka_unit_test(test_transe_rows_in_unit_ball),
        cmocka_unit_test(test_transe_negative_after_positive),
        cmocka_unit_test(test_1vsall_gradient),
        cmocka_unit_test(test_1vsall_sampled_gradient),
        cmocka_unit_test(test_1vsall_full_unchanged),
        cmocka_unit_test(test_opt_step_list),
        cmocka_unit_test(test_1vsall_learns_chains),
        cmocka_unit_test(test_kvsall_loss),
        cmocka_unit_test(test_kvsall_learns_chains),
        cmocka_unit_test(test_init_low),
        cmocka_unit_test(test_decay),
        cmocka_unit_test(test_1vsall_logq_inclusion),
        cmocka_unit_test(test_1vsall_logq_estimates_full_loss),
        cmocka_unit_test(test_expf_accuracy),
        cmocka_unit_test(test_1vsall_logq_short_last_batch),
        cmocka_unit_test(test_1vsall_reciprocal_gradient),
        cmocka_unit_test(test_reciprocal_learns_direction),
        cmocka_unit_test(test_reciprocal_scores_save_load),
        cmocka_unit_test(test_reciprocal_foldin),
        cmocka_unit_test(test_reciprocal_refused),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_subsample_weights),
        cmocka_unit_test(test_subsample_scales_steps),
        cmocka_unit_test(test_lr_drop_schedule),
        cmocka_unit_test(test_set_lr_applies),
        cmocka_unit_test(test_kvsall_batch_sides),
        cmocka_unit_test(test_checkpoint_resume),
        cmocka_unit_test(test_checkpoint_order_past_float_integers),
        cmocka_unit_test(test_interrupt_keeps_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
