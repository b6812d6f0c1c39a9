/* tests/test_tune.c - the tuner of models/tune.h: space parsing and its errors, trials
 * recorded in a scratch store and found by SPARQL with the values the objective saw, resume
 * after an interruption proposing what the uninterrupted search proposed, adopt-best, and a
 * tiny real meta-learning objective (linear tasks, a few iterations). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "error.h"
#include "interrupt.h"
#include "store.h"
#include "tune.h"

#define SPACE "alpha=1e-4..1e-1:log steps=1..10:int outer_lr=1e-4..1e-2:log learner=maml|fomaml|metasgd"
#define MAX_SEEN 32

/* A synthetic objective of the applied config, remembering every config it saw; it raises
 * the interrupt during evaluation number raise_at (counting from 1; 0: never). */
typedef struct {
    kgm_meta_config seen[MAX_SEEN];
    double scores[MAX_SEEN];
    int n, raise_at;
} probe;

static int synthetic(const kgm_meta_config *c, void *ctx, double *score)
{
    probe *p = ctx;
    double la = log10(c->alpha) + 2, lo = log10(c->outer_lr) + 3;
    *score = la * la + lo * lo + 0.05 * (c->inner_steps - 4) * (c->inner_steps - 4) + (c->learner == KGM_FOMAML ? 0.5 : 0);
    assert_true(p->n < MAX_SEEN);
    p->seen[p->n] = *c;
    p->scores[p->n++] = *score;
    if (p->n == p->raise_at) kgm_interrupt_raise();
    return 0;
}

static kgm_tune_config synthetic_config(const char *search, probe *p)
{
    kgm_tune_config tc = { 0 };
    tc.search = search;
    tc.seed = 7;
    tc.budget = 10;
    tc.base = kgm_meta_config_default();
    tc.objective = synthetic;
    tc.objective_ctx = p;
    return tc;
}

static void space_parses(void **state)
{
    (void)state;
    kgm_space *sp = NULL;
    assert_int_equal(kgm_tune_space_parse("  " SPACE " meta_batch=2..8:int ", &sp), 0);
    assert_int_equal(kgm_space_size(sp), 5);
    assert_int_equal(kgm_space_kind(sp, 0), KGM_PARAM_REAL);
    assert_int_equal(kgm_space_kind(sp, 1), KGM_PARAM_INT);
    assert_int_equal(kgm_space_kind(sp, 3), KGM_PARAM_CAT);
    assert_int_equal(kgm_space_n_labels(sp, 3), 3);
    assert_string_equal(kgm_space_label(sp, 3, 2), "metasgd");
    double point[5] = { 0.01, 3, 0.002, 2, 4 };
    kgm_meta_config c = kgm_meta_config_default();
    assert_int_equal(kgm_tune_apply(sp, point, &c), 0);
    assert_true(c.alpha == 0.01f && c.inner_steps == 3 && c.outer_lr == 0.002f);
    assert_int_equal(c.learner, KGM_METASGD);
    assert_int_equal(c.meta_batch, 4);
    point[1] = 11;   /* outside: refused, config unchanged */
    kgm_meta_config before = c;
    assert_int_equal(kgm_tune_apply(sp, point, &c), KGM_EINVAL);
    assert_memory_equal(&c, &before, sizeof c);
    kgm_space_free(sp);
}

static void space_errors_name_the_bad_part(void **state)
{
    (void)state;
    static const struct { const char *text, *needle; } bad[] = {
        { "alpha=1e-4..1e-1:log gamma=1..2", "unknown hyperparameter 'gamma'" },
        { "alpha=1e-4..x:log", "bad upper bound 'x'" },
        { "alpha=..1", "bad lower bound ''" },
        { "alpha=0..1:log", "log scale" },
        { "alpha=1..3:int", "alpha takes reals" },
        { "steps=1..10", "steps takes integers" },
        { "steps=1.5..10:int", "integer bounds" },
        { "outer_lr=1e-2..1e-4:log", "empty range" },
        { "alpha=1e-4..1e-1:sqrt", "unknown suffix ':sqrt'" },
        { "learner=maml|bogus", "unknown learner 'bogus'" },
        { "learner=maml", "at least two" },
        { "learner=1..3:int", "learner takes labels" },
        { "steps=1..3:int inner_steps=2..4:int", "given twice" },
        { "alpha", "expected NAME=" },
        { "   ", "empty" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kgm_space *sp = NULL;
        assert_int_equal(kgm_tune_space_parse(bad[i].text, &sp), KGM_EINVAL);
        assert_null(sp);
        if (!strstr(kgm_error(), bad[i].needle)) fail_msg("'%s': error '%s' lacks '%s'", bad[i].text, kgm_error(), bad[i].needle);
        assert_null(strchr(kgm_error(), '\n'));
    }
}

static void trials_are_found_by_sparql(void **state)
{
    (void)state;
    kgm_store *st = NULL;
    assert_int_equal(kgm_store_open(&st, NULL), 0);
    probe p = { 0 };
    kgm_tune_config tc = synthetic_config("http://ex.org/search/a", &p);
    assert_int_equal(kgm_tune_run(st, &tc, SPACE, 6), 0);
    assert_int_equal(p.n, 6);
    /* a parse error writes nothing; a second run of the same search is refused */
    size_t size = kgm_store_size(st);
    tc.search = "http://ex.org/search/b";
    assert_int_equal(kgm_tune_run(st, &tc, "alpha=1..0", 3), KGM_EINVAL);
    assert_int_equal(kgm_store_size(st), size);
    tc.search = "http://ex.org/search/a";
    assert_int_equal(kgm_tune_run(st, &tc, SPACE, 3), KGM_ESTATE);
    assert_int_equal(kgm_store_size(st), size);

    kgm_table *t = NULL;
    assert_int_equal(kgm_store_query(st,
        "PREFIX mls: <http://www.w3.org/ns/mls#> PREFIX kgm: <http://kgmeta.org/ns#> "
        "SELECT ?i ?score ?alpha ?steps ?learner WHERE { ?run a mls:Run ; "
        "kgm:partOfSearch <http://ex.org/search/a> ; kgm:trialIndex ?i ; kgm:score ?score ; "
        "mls:hasInput ?a, ?s, ?l . ?a mls:specifiedBy kgm:InnerLearningRate ; mls:hasValue ?alpha . "
        "?s mls:specifiedBy kgm:InnerSteps ; mls:hasValue ?steps . "
        "?l mls:specifiedBy kgm:Learner ; mls:hasValue ?learner } ORDER BY ?i", NULL, &t), 0);
    assert_int_equal(t->n_rows, 6);
    for (size_t r = 0; r < 6; r++) {
        assert_int_equal(atoi(kgm_table_cell(t, r, 0)->value), (int)r);
        assert_true(strtod(kgm_table_cell(t, r, 1)->value, NULL) == p.scores[r]);
        assert_true((float)strtod(kgm_table_cell(t, r, 2)->value, NULL) == p.seen[r].alpha);
        assert_int_equal(atoi(kgm_table_cell(t, r, 3)->value), p.seen[r].inner_steps);
        assert_string_equal(kgm_table_cell(t, r, 4)->value, kgm_learner_name(p.seen[r].learner));
        assert_int_equal(p.seen[r].iterations, 10);   /* the budget */
    }
    kgm_table_free(t);
    kgm_store_free(st);
}

static void resume_after_interrupt_proposes_the_same(void **state)
{
    (void)state;
    const int n = 12;
    kgm_store *ref = NULL, *st = NULL;
    assert_int_equal(kgm_store_open(&ref, NULL), 0);
    assert_int_equal(kgm_store_open(&st, NULL), 0);
    probe *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    kgm_tune_config ta = synthetic_config("http://ex.org/s", a), tb = synthetic_config("http://ex.org/s", b);
    assert_int_equal(kgm_tune_run(ref, &ta, SPACE, n), 0);

    /* interrupted during the 5th evaluation: that trial is not recorded, 4 are kept */
    b->raise_at = 5;
    assert_int_equal(kgm_tune_run(st, &tb, SPACE, n), KGM_EINTR);
    kgm_interrupt_clear();
    assert_int_equal(b->n, 5);
    kgm_table *t = NULL;
    assert_int_equal(kgm_store_query(st, "SELECT ?r WHERE { ?r <http://kgmeta.org/ns#partOfSearch> <http://ex.org/s> }",
                                     NULL, &t), 0);
    assert_int_equal(t->n_rows, 4);
    kgm_table_free(t);
    tb.seed = 999;     /* ignored: the recorded seed is used */
    assert_int_equal(kgm_tune_resume(st, &tb, n), 0);
    assert_int_equal(b->n, 5 + n - 4);
    for (int i = 0; i < n; i++) {   /* b's evaluations: 0..3 kept, 4 lost, then 4..n-1 again */
        const kgm_meta_config *bi = &b->seen[i < 4 ? i : i + 1];
        assert_true(a->seen[i].alpha == bi->alpha);
        assert_true(a->seen[i].outer_lr == bi->outer_lr);
        assert_int_equal(a->seen[i].inner_steps, bi->inner_steps);
        assert_int_equal(a->seen[i].learner, bi->learner);
    }
    assert_true(a->seen[5].alpha != a->seen[4].alpha);   /* the compared points do differ */
    /* resuming a complete search evaluates nothing; an unknown search is not found */
    assert_int_equal(kgm_tune_resume(st, &tb, n), 0);
    assert_int_equal(b->n, 5 + n - 4);
    tb.search = "http://ex.org/none";
    assert_int_equal(kgm_tune_resume(st, &tb, n), KGM_ENOTFOUND);
    free(a); free(b);
    kgm_store_free(ref);
    kgm_store_free(st);
}

static void adopt_sets_the_best_config(void **state)
{
    (void)state;
    kgm_store *st = NULL;
    assert_int_equal(kgm_store_open(&st, NULL), 0);
    probe p = { 0 };
    kgm_tune_config tc = synthetic_config("http://ex.org/s", &p);
    assert_int_equal(kgm_tune_run(st, &tc, SPACE, 10), 0);
    int best = 0;
    for (int i = 1; i < p.n; i++) if (p.scores[i] < p.scores[best]) best = i;
    kgm_meta_config c = kgm_meta_config_default();
    c.meta_batch = 3;   /* not tuned: kept */
    double score;
    int index;
    assert_int_equal(kgm_tune_adopt(st, "http://ex.org/s", &c, &score, &index), 0);
    assert_int_equal(index, best);
    assert_true(score == p.scores[best]);
    assert_true(c.alpha == p.seen[best].alpha && c.outer_lr == p.seen[best].outer_lr);
    assert_int_equal(c.inner_steps, p.seen[best].inner_steps);
    assert_int_equal(c.learner, p.seen[best].learner);
    assert_int_equal(c.meta_batch, 3);
    kgm_meta_config before = c;
    assert_int_equal(kgm_tune_adopt(st, "http://ex.org/other", &c, NULL, NULL), KGM_ENOTFOUND);
    assert_memory_equal(&c, &before, sizeof c);
    kgm_store_free(st);
}

static int fails_first(const kgm_meta_config *c, void *ctx, double *score)
{
    int rc = synthetic(c, ctx, score);
    if (((probe *)ctx)->n == 1) *score = NAN;   /* a diverged first trial */
    return rc;
}

static void failed_trials_are_recorded_replayed_and_skipped(void **state)
{
    (void)state;
    kgm_store *st = NULL;
    assert_int_equal(kgm_store_open(&st, NULL), 0);
    probe p = { 0 };
    kgm_tune_config tc = synthetic_config("http://ex.org/f", &p);
    tc.objective = fails_first;
    assert_int_equal(kgm_tune_run(st, &tc, SPACE, 3), 0);
    kgm_table *t = NULL;
    assert_int_equal(kgm_store_query(st, "SELECT ?s WHERE { <http://ex.org/f/trial/0> <http://kgmeta.org/ns#score> ?s }",
                                     NULL, &t), 0);
    assert_int_equal(t->n_rows, 1);
    assert_true(isnan(strtod(kgm_table_cell(t, 0, 0)->value, NULL)));
    kgm_table_free(t);
    assert_int_equal(kgm_tune_resume(st, &tc, 4), 0);   /* reads the NaN back */
    assert_int_equal(p.n, 4);
    kgm_meta_config c = kgm_meta_config_default();
    int index = -1;
    assert_int_equal(kgm_tune_adopt(st, "http://ex.org/f", &c, NULL, &index), 0);
    assert_true(index > 0);
    kgm_store_free(st);
}

/* The real objective on linear tasks: a few iterations, finite recorded scores, and more
 * meta-training (a larger budget) at fixed settings scores better. */
static void meta_objective_on_linear_tasks(void **state)
{
    (void)state;
    kgm_linear lin = { 0 };
    kgm_tasksrc src;
    kgm_tasksrc_linear(&src, &lin);
    kgm_mlp net;
    const int sizes[] = { 1, 16, 1 };
    assert_int_equal(kgm_mlp_init(&net, 2, sizes, KGM_ACT_TANH, KGM_LOSS_MSE), 0);
    kgm_tune_config tc = { 0 };
    tc.search = "http://ex.org/lin";
    tc.seed = 3;
    tc.budget = 200;
    tc.net = &net;
    tc.base = kgm_meta_config_default();
    tc.base.meta_batch = 4;
    tc.train = tc.val = &src;
    tc.eval = (kgm_eval_spec){ .n_tasks = 50, .max_steps = 1, .n_support = 10, .n_query = 10, .alpha = 0, .seed = 99 };
    kgm_store *st = NULL;
    assert_int_equal(kgm_store_open(&st, NULL), 0);
    assert_int_equal(kgm_tune_run(st, &tc, "alpha=0.05..0.3:log steps=1..2:int outer_lr=1e-3..1e-2:log", 3), 0);
    kgm_meta_config c = kgm_meta_config_default();
    double best;
    assert_int_equal(kgm_tune_adopt(st, tc.search, &c, &best, NULL), 0);
    assert_true(isfinite(best) && best > 0);
    assert_true(best < 2.0);   /* untrained error of y = a x + b (a, b in [-2, 2], x in [-1, 1]) is about 1.8 */
    kgm_store_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(space_parses),
        cmocka_unit_test(space_errors_name_the_bad_part),
        cmocka_unit_test(trials_are_found_by_sparql),
        cmocka_unit_test(resume_after_interrupt_proposes_the_same),
        cmocka_unit_test(adopt_sets_the_best_config),
        cmocka_unit_test(failed_trials_are_recorded_replayed_and_skipped),
        cmocka_unit_test(meta_objective_on_linear_tasks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
