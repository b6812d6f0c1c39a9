/* tests/test_kgcond.c - KG-conditioned meta-learning: fold-in of new tasks, family
 * structure in e(t), categorical codes (one-hot, plumbing refused), zero-shot from theta0(t)
 * against theta*, generator parameters kept out of e(t), runs recorded as triples and found
 * by SPARQL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "error.h"
#include "kgcond.h"
#include "meta.h"
#include "store.h"
#include "tasksrc.h"

#define N_TRAIN 24
#define N_TEST 6

/* Two families of lines: Up (a, b near +2) and Down (near -2), linked by ex:family; test
 * tasks are kgm:MetaTest. leak_shift changes the generator parameters of test task 0 only;
 * extra (Turtle with prefixes mls:, kgm:, ex:, or NULL) is loaded after the tasks. */
static kgm_store *two_families_with(double leak_shift, const char *extra)
{
    kgm_store *st = NULL;
    assert_int_equal(kgm_store_open(&st, NULL), 0);
    char path[4096];
    const char *src = getenv("KGM_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/datasets/kgmeta.ttl", src ? src : "..");
    if (kgm_store_load(st, path, NULL, NULL, NULL, NULL)) fail_msg("%s", kgm_error());
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fprintf(f, "@prefix mls: <http://www.w3.org/ns/mls#> .\n@prefix kgm: <http://kgmeta.org/ns#> .\n"
               "@prefix ex: <http://example.org/> .\n"
               "ex:G a kgm:Generator ; kgm:function kgm:Line ; kgm:noiseStd 0.0 .\n"
               "ex:Up ex:partOf ex:Lines .\nex:Down ex:partOf ex:Lines .\n");
    for (int i = 0; i < N_TRAIN + N_TEST; i++) {
        int up = i % 2, test = i >= N_TRAIN;
        double s = up ? 2 : -2, d = 0.1 * ((i * 7) % 5 - 2);
        if (test && i == N_TRAIN) d += leak_shift;
        fprintf(f, "ex:t%02d a mls:Task ; kgm:role kgm:%s ; kgm:generator ex:G ; kgm:paramA %g ; kgm:paramB %g ;"
                   " ex:family ex:%s .\n", i, test ? "MetaTest" : (i % 6 == 5 ? "MetaValidation" : "MetaTrain"),
                s + d, s - d, up ? "Up" : "Down");
    }
    fclose(f);
    if (kgm_store_load_string(st, text, "turtle", "http://example.org/", NULL)) fail_msg("%s", kgm_error());
    free(text);
    if (extra) {
        char *ttl = NULL;
        assert_true(asprintf(&ttl, "@prefix mls: <http://www.w3.org/ns/mls#> .\n@prefix kgm: <http://kgmeta.org/ns#> .\n"
                                   "@prefix ex: <http://example.org/> .\n%s", extra) > 0);
        if (kgm_store_load_string(st, ttl, "turtle", "http://example.org/", NULL)) fail_msg("%s", kgm_error());
        free(ttl);
    }
    return st;
}

static kgm_store *two_families(double leak_shift) { return two_families_with(leak_shift, NULL); }

/* ex:family declared categorical; ex:shade too, with a value on a test task only. */
#define FAMILY_CODES "ex:family a kgm:CategoricalTaskFeature .\nex:shade a kgm:CategoricalTaskFeature .\n" \
                     "ex:t29 ex:shade ex:Dark .\n"

static kgm_kgcond *build(kgm_store *st)
{
    kgm_kgcond_opts o = kgm_kgcond_opts_default();
    o.emb.epochs = 200;
    kgm_kgcond *kc = NULL;
    if (kgm_kgcond_build(&kc, st, NULL, NULL, &o)) fail_msg("%s", kgm_error());
    return kc;
}

static double dist(const float *a, const float *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (a[i] - b[i]) * (double)(a[i] - b[i]);
    return sqrt(s);
}

static void family_closer_than_across(void **state)
{
    (void)state;
    kgm_store *st = two_families(0);
    kgm_kgcond *kc = build(st);
    assert_int_equal(kgm_kgcond_n_tasks(kc, 2), N_TEST);
    int dim = kgm_kgcond_cond_dim(kc);
    assert_true(dim > 0);
    double same = 0, across = 0;
    int ns = 0, na = 0;
    for (size_t i = 0; i < kgm_kgcond_n_tasks(kc, -1); i++)
        for (size_t j = i + 1; j < kgm_kgcond_n_tasks(kc, -1); j++) {
            int fi = atoi(kgm_kgcond_iri(kc, i) + strlen("http://example.org/t")) % 2;
            int fj = atoi(kgm_kgcond_iri(kc, j) + strlen("http://example.org/t")) % 2;
            double d = dist(kgm_kgcond_cond(kc, i), kgm_kgcond_cond(kc, j), dim);
            if (fi == fj) { same += d; ns++; } else { across += d; na++; }
        }
    same /= ns;
    across /= na;
    assert_true(same < 0.5 * across);
    kgm_kgcond_free(kc);
    kgm_store_free(st);
}

/* Prototype codes: e(t) is a soft assignment to k-means prototypes of the meta-train rows;
 * each family (the folded-in test tasks too) sits on its own prototype, nearly one-hot. */
static void prototype_codes_separate_families(void **state)
{
    (void)state;
    kgm_store *st = two_families(0);
    kgm_kgcond_opts o = kgm_kgcond_opts_default();
    o.emb.epochs = 200;
    o.prototypes = 2;
    kgm_kgcond *kc = NULL;
    if (kgm_kgcond_build(&kc, st, NULL, NULL, &o)) fail_msg("%s", kgm_error());
    assert_int_equal(kgm_kgcond_cond_dim(kc), 2);
    int proto_of[2] = {-1, -1};
    for (size_t i = 0; i < kgm_kgcond_n_tasks(kc, -1); i++) {
        const float *e = kgm_kgcond_cond(kc, i);
        int fam = atoi(kgm_kgcond_iri(kc, i) + strlen("http://example.org/t")) % 2, top = e[1] > e[0];
        assert_true(fabsf(e[0] + e[1] - 1.0f) < 1e-5f);
        assert_true(e[top] > 0.9f);
        if (proto_of[fam] < 0) proto_of[fam] = top;
        assert_int_equal(top, proto_of[fam]);
    }
    assert_int_not_equal(proto_of[0], proto_of[1]);
    kgm_kgcond_free(kc);
    kgm_store_free(st);
}

/* Would fail if generator parameters reached e(t): same graph but for one test task's
 * kgm:paramA/B, built twice with the same seeds, gives the same vectors. */
static void generator_parameters_never_reach_cond(void **state)
{
    (void)state;
    kgm_store *a = two_families_with(0, FAMILY_CODES), *b = two_families_with(1.5, FAMILY_CODES);
    kgm_kgcond *ka = build(a), *kb = build(b);
    assert_int_equal(kgm_kgcond_n_codes(ka), 2);   /* the codes are part of what is compared */
    int dim = kgm_kgcond_cond_dim(ka);
    assert_int_equal(dim, kgm_kgcond_cond_dim(kb));
    for (size_t i = 0; i < kgm_kgcond_n_tasks(ka, -1); i++)
        assert_memory_equal(kgm_kgcond_cond(ka, i), kgm_kgcond_cond(kb, i), dim * sizeof(float));
    /* while the task data did change */
    kgm_episode ta, tb;
    kgm_tasksrc src;
    kgm_kgcond_src ctx;
    assert_int_equal(kgm_kgcond_tasksrc(ka, 2, 1, &ctx, &src), 0);
    assert_int_equal(kgm_episode_alloc(&ta, &src, 5, 5), 0);
    assert_int_equal(kgm_episode_alloc(&tb, &src, 5, 5), 0);
    long t0 = kgm_kgcond_role_task(ka, 2, 0);
    assert_int_equal(kgm_kgcond_task(ka, (size_t)t0, 3, &ta), 0);
    assert_int_equal(kgm_kgcond_task(kb, (size_t)t0, 3, &tb), 0);
    assert_true(fabsf(ta.ys[0] - tb.ys[0]) > 0.1f);
    kgm_episode_release(&ta);
    kgm_episode_release(&tb);
    kgm_kgcond_free(ka);
    kgm_kgcond_free(kb);
    kgm_store_free(a);
    kgm_store_free(b);
}

/* Categorical codes: one column per value of a declared property seen on meta-train tasks,
 * in IRI order, one-hot per task; a value only a test task has adds no column. */
static void categorical_codes_are_one_hot(void **state)
{
    (void)state;
    kgm_store *st = two_families_with(0, FAMILY_CODES);
    kgm_kgcond *kc = build(st);
    int n = kgm_kgcond_n_codes(kc), dim = kgm_kgcond_cond_dim(kc);
    assert_int_equal(n, 2);
    assert_string_equal(kgm_kgcond_code_prop(kc, 0), "http://example.org/family");
    assert_string_equal(kgm_kgcond_code_value(kc, 0), "http://example.org/Down");
    assert_string_equal(kgm_kgcond_code_value(kc, 1), "http://example.org/Up");
    assert_null(kgm_kgcond_code_value(kc, 2));
    for (size_t i = 0; i < kgm_kgcond_n_tasks(kc, -1); i++) {
        int up = atoi(kgm_kgcond_iri(kc, i) + strlen("http://example.org/t")) % 2;
        const float *code = kgm_kgcond_cond(kc, i) + dim - n;
        assert_true(code[0] == (up ? 0.0f : 1.0f) && code[1] == (up ? 1.0f : 0.0f));
    }
    kgm_kgcond_free(kc);
    kgm_store_free(st);
}

/* Plumbing never becomes a code: a kgm: property or a declared kgm:PlumbingProperty is
 * refused, and a descriptive link to a generator node is not coded. */
static void categorical_codes_refuse_plumbing(void **state)
{
    (void)state;
    const char *bad[] = {"kgm:generator a kgm:CategoricalTaskFeature .\n",
                         "ex:recipe a kgm:CategoricalTaskFeature, kgm:PlumbingProperty .\nex:t00 ex:recipe ex:G .\n"};
    for (int i = 0; i < 2; i++) {
        kgm_store *st = two_families_with(0, bad[i]);
        kgm_kgcond_opts o = kgm_kgcond_opts_default();
        o.emb.epochs = 20;
        kgm_kgcond *kc = NULL;
        assert_int_equal(kgm_kgcond_build(&kc, st, NULL, NULL, &o), KGM_EINVAL);
        assert_null(kc);
        assert_non_null(strstr(kgm_error(), "cannot be a categorical task feature"));
        kgm_store_free(st);
    }
    kgm_store *st = two_families_with(0, "ex:madeBy a kgm:CategoricalTaskFeature .\n"
                                         "ex:t00 ex:madeBy ex:G .\nex:t02 ex:madeBy ex:Lab .\n");
    kgm_kgcond *kc = build(st);
    assert_int_equal(kgm_kgcond_n_codes(kc), 1);
    assert_string_equal(kgm_kgcond_code_value(kc, 0), "http://example.org/Lab");
    kgm_kgcond_free(kc);
    kgm_store_free(st);
}

/* Mean query MSE over the test tasks at 0 inner steps. */
static double zero_shot(kgm_meta *mt, const kgm_kgcond *kc, int cond)
{
    kgm_tasksrc src;
    kgm_kgcond_src ctx;
    assert_int_equal(kgm_kgcond_tasksrc(kc, 2, cond, &ctx, &src), 0);
    kgm_episode t;
    assert_int_equal(kgm_episode_alloc(&t, &src, 5, 20), 0);
    size_t np = kgm_meta_net(mt)->n_params;
    float *fast = malloc(np * sizeof *fast), out[20];
    double sum = 0;
    for (size_t i = 0; i < kgm_kgcond_n_tasks(kc, 2); i++) {
        assert_int_equal(kgm_kgcond_task(kc, (size_t)kgm_kgcond_role_task(kc, 2, i), 11, &t), 0);
        assert_int_equal(kgm_meta_adapt(mt, &t, 0, fast), 0);
        assert_int_equal(kgm_meta_predict(mt, fast, t.xq, 20, out), 0);
        for (int q = 0; q < 20; q++) sum += (out[q] - t.yq[q]) * (double)(out[q] - t.yq[q]) / 20;
    }
    free(fast);
    kgm_episode_release(&t);
    return sum / kgm_kgcond_n_tasks(kc, 2);
}

static kgm_meta *meta_train(const kgm_kgcond *kc, const kgm_init_stage *init, int cond, int iterations)
{
    kgm_mlp m;
    int sizes[] = {kgm_kgcond_x_dim(kc), 40, 40, 1};
    assert_int_equal(kgm_mlp_init(&m, 3, sizes, KGM_ACT_RELU, KGM_LOSS_MSE), 0);
    kgm_meta_config c = kgm_meta_config_default();
    c.iterations = iterations;
    c.outer_lr = 0.003f;
    c.meta_batch = 8;
    c.threads = 1;
    c.alpha = 0.01f;
    c.n_support = 5;
    c.n_query = 10;
    kgm_meta *mt = NULL;
    assert_int_equal(kgm_meta_new(&mt, &m, &c, init, cond ? kgm_kgcond_cond_dim(kc) : 0), 0);
    kgm_tasksrc src;
    kgm_kgcond_src ctx;
    assert_int_equal(kgm_kgcond_tasksrc(kc, 0, cond, &ctx, &src), 0);
    if (kgm_meta_train(mt, &src, NULL)) fail_msg("%s", kgm_error());
    return mt;
}

/* Fold-in + zero-shot: theta0(t) of FiLM on the folded-in embedding, and of shift on the
 * family's categorical code alone (no embedding), both beat theta* on the new tasks. */
static void zero_shot_beats_unconditioned_start(void **state)
{
    (void)state;
    kgm_store *st = two_families_with(0, FAMILY_CODES);
    kgm_kgcond *kc = build(st);
    kgm_kgcond_opts o = kgm_kgcond_opts_default();
    o.use_embedding = 0;
    kgm_kgcond *codes = NULL;
    if (kgm_kgcond_build(&codes, st, NULL, NULL, &o)) fail_msg("%s", kgm_error());
    assert_int_equal(kgm_kgcond_cond_dim(codes), 2);
    kgm_meta *plain = meta_train(kc, &kgm_init_none, 0, 800);
    kgm_meta *film = meta_train(kc, &kgm_init_film, 1, 800);
    kgm_meta *shift = meta_train(codes, &kgm_init_shift, 1, 400);
    double mse_plain = zero_shot(plain, kc, 0), mse_film = zero_shot(film, kc, 1), mse_shift = zero_shot(shift, codes, 1);
    print_message("zero-shot query MSE on folded-in tasks: theta* %.3f, FiLM theta0(t) %.3f, shift on the family code %.3f\n",
                  mse_plain, mse_film, mse_shift);
    assert_true(mse_film < 0.5 * mse_plain);
    assert_true(mse_shift < 0.5 * mse_plain);
    kgm_meta_free(plain);
    kgm_meta_free(film);
    kgm_meta_free(shift);
    kgm_kgcond_free(codes);
    kgm_kgcond_free(kc);
    kgm_store_free(st);
}

static void results_recorded_as_triples(void **state)
{
    (void)state;
    kgm_store *st = NULL;
    assert_int_equal(kgm_store_open(&st, NULL), 0);
    kgm_kgcond_value hp[] = {{"inner_lr", 0.001}, {"meta_batch", 25}};
    kgm_kgcond_value mv[] = {{"mse", 0.42}};
    kgm_kgcond_run run = {.run_iri = "http://example.org/run1", .learner = "maml", .init_stage = "film",
                          .graph = "family", .hyper = hp, .n_hyper = 2, .metrics = mv, .n_metrics = 1};
    char *iri = NULL;
    assert_int_equal(kgm_kgcond_record(st, &run, &iri), 0);
    assert_string_equal(iri, "http://example.org/run1");
    free(iri);
    kgm_table *t = NULL;
    kgm_query_kind k;
    const char *q = "PREFIX mls: <http://www.w3.org/ns/mls#> PREFIX kgm: <http://kgmeta.org/ns#> "
                    "SELECT ?v ?lr WHERE { ?r a mls:Run ; mls:executes kgm:maml ; mls:hasOutput ?e ; mls:hasInput ?h . "
                    "?e a mls:ModelEvaluation ; mls:specifiedBy kgm:metric-mse ; mls:hasValue ?v . "
                    "?h mls:specifiedBy kgm:hp-inner_lr ; mls:hasValue ?lr }";
    if (kgm_store_query(st, q, &k, &t)) fail_msg("%s", kgm_error());
    assert_int_equal(t->n_rows, 1);
    kgm_table_free(t);
    run.learner = "bad name";
    assert_int_equal(kgm_kgcond_record(st, &run, NULL), KGM_EINVAL);
    kgm_store_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(family_closer_than_across),
        cmocka_unit_test(generator_parameters_never_reach_cond),
        cmocka_unit_test(prototype_codes_separate_families),
        cmocka_unit_test(categorical_codes_are_one_hot),
        cmocka_unit_test(categorical_codes_refuse_plumbing),
        cmocka_unit_test(zero_shot_beats_unconditioned_start),
        cmocka_unit_test(results_recorded_as_triples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
