/* tests/test_metaguard.c - the guards of meta-training's outer step (models/meta.h clip_norm,
 * skip_nonfinite) and the decoupled weight decay of theta* (weight_decay): a rare task with an
 * infinite loss stops training without the guard, with the parameters of the iteration before;
 * with it, exactly the poisoned meta-batches are skipped and training finishes finite; a run of
 * them still stops; clipping hands Adam the meta-gradient scaled to the bound (checked by
 * replaying the steps by hand); guards that never trigger leave every parameter bit-identical;
 * with decay off training is plain Adam to the bit, with it AdamW on theta* alone (Meta-SGD's
 * inner rates not decayed), both by hand replay; the cosine decay of the Adam rates
 * (lr_decay_steps, lr_floor) follows its formula by hand replay and spans kgm_meta_train calls;
 * bad settings are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "error.h"
#include "meta.h"
#include "mlp.h"
#include "tasksrc.h"

/* Linear tasks, one in `every` poisoned: its targets are 1e20, so the squared error overflows
 * a float and the task's query loss is not finite. The first draw of a task's stream
 * decides, so the test can find the poisoned tasks by replaying the streams. */
typedef struct { kgm_tasksrc linear; unsigned every; } poison;

static int is_poisoned(const poison *p, kgm_taskrng *rng)
{
    return kgm_taskrng_next(rng) % p->every == 0;
}

static int poison_sample(void *ctx, kgm_taskrng *rng, kgm_episode *t)
{
    const poison *p = ctx;
    int bad = is_poisoned(p, rng);
    int rc = p->linear.sample(p->linear.ctx, rng, t);
    for (int i = 0; bad && i < t->n_support; i++) t->ys[i] = 1e20f;
    for (int i = 0; bad && i < t->n_query; i++) t->yq[i] = 1e20f;
    return rc;
}

static kgm_tasksrc poison_source(poison *p, unsigned every)
{
    kgm_tasksrc_linear(&p->linear, NULL);
    p->every = every;
    kgm_tasksrc src = p->linear;
    src.name = "poisoned linear";
    src.ctx = p;
    src.sample = poison_sample;
    return src;
}

static kgm_meta_config small_config(int iterations)
{
    kgm_meta_config c = kgm_meta_config_default();
    c.inner_steps = 2; c.alpha = 0.1f; c.meta_batch = 4; c.n_support = 5; c.n_query = 5;
    c.iterations = iterations; c.threads = 2; c.seed = 11; c.outer_lr = 3e-3f;
    return c;
}

static kgm_meta *small_learner(const kgm_meta_config *c)
{
    kgm_mlp m;
    const int sizes[] = { 1, 12, 12, 1 };
    assert_int_equal(kgm_mlp_init(&m, 3, sizes, KGM_ACT_RELU, KGM_LOSS_MSE), 0);
    kgm_meta *mt = NULL;
    assert_int_equal(kgm_meta_new(&mt, &m, c, NULL, 0), 0);
    return mt;
}

/* Meta-batches among the first `iterations` that hold a poisoned task (the stream of task
 * (iteration i, slot j) is keyed (seed, i, j), models/meta.h); *first: the first of them. */
static int poisoned_batches(const poison *p, const kgm_meta_config *c, int iterations, int *first)
{
    int n = 0;
    *first = -1;
    for (int it = 0; it < iterations; it++) {
        int bad = 0;
        for (int j = 0; j < c->meta_batch; j++) {
            kgm_taskrng r;
            kgm_taskrng_seed(&r, c->seed, (uint64_t)it, (uint64_t)j);
            bad |= is_poisoned(p, &r);
        }
        if (bad && *first < 0) *first = it;
        n += bad;
    }
    return n;
}

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) if (!isfinite(x[i])) return 0;
    return 1;
}

/* Without the guard the first poisoned batch stops training, parameters as after the
 * iterations before it; with it exactly the poisoned batches are skipped. */
static void rare_infinite_task_is_skipped(void **state)
{
    (void)state;
    poison p;
    kgm_tasksrc src = poison_source(&p, 397);
    const int iterations = 400;
    kgm_meta_config c = small_config(iterations);
    int first, expect = poisoned_batches(&p, &c, iterations, &first);
    print_message("%d of %d meta-batches poisoned, the first at iteration %d\n", expect, iterations, first);
    assert_true(expect >= 2 && first >= 10);   /* the fixture really poisons, and not at once */

    kgm_meta *off = small_learner(&c);
    kgm_meta_stats st;
    assert_int_equal(kgm_meta_train(off, &src, &st), KGM_ENUMERIC);
    assert_non_null(strstr(kgm_error(), "meta-training loss is"));
    assert_int_equal(st.iterations_done, first);
    assert_int_equal(st.skipped, 0);
    kgm_meta_config upto = small_config(first);
    kgm_meta *ref = small_learner(&upto);
    assert_int_equal(kgm_meta_train(ref, &src, NULL), 0);
    size_t n = kgm_meta_n_params(off);
    assert_memory_equal(kgm_meta_params(off), kgm_meta_params(ref), n * sizeof(float));

    c.skip_nonfinite = 3;
    kgm_meta *on = small_learner(&c);
    assert_int_equal(kgm_meta_train(on, &src, &st), 0);
    assert_int_equal(st.iterations_done, iterations);
    assert_int_equal(st.skipped, expect);
    assert_true(isfinite(st.last_loss));
    assert_true(all_finite(kgm_meta_params(on), n));
    /* Up to the first poisoned batch both runs are the same run; after it the guarded one went on. */
    assert_memory_not_equal(kgm_meta_params(on), kgm_meta_params(ref), n * sizeof(float));
    kgm_meta_free(off); kgm_meta_free(ref); kgm_meta_free(on);
}

/* skip_nonfinite batches in a row stop training, parameters never touched. */
static void a_run_of_bad_batches_still_stops(void **state)
{
    (void)state;
    poison p;
    kgm_tasksrc src = poison_source(&p, 1);   /* every task */
    kgm_meta_config c = small_config(50);
    c.skip_nonfinite = 3;
    kgm_meta *mt = small_learner(&c);
    size_t n = kgm_meta_n_params(mt);
    float *before = malloc(n * sizeof *before);
    memcpy(before, kgm_meta_params(mt), n * sizeof *before);
    kgm_meta_stats st;
    assert_int_equal(kgm_meta_train(mt, &src, &st), KGM_ENUMERIC);
    assert_non_null(strstr(kgm_error(), "3 meta-batches in a row"));
    assert_int_equal(st.skipped, 3);
    assert_int_equal(st.iterations_done, 2);
    assert_memory_equal(before, kgm_meta_params(mt), n * sizeof *before);
    free(before);
    kgm_meta_free(mt);
}

/* The cosine factor of the Adam rates at step t (models/meta.h lr_decay_steps, lr_floor). */
static float cosine_factor(const kgm_meta_config *c, int t)
{
    if (c->lr_decay_steps <= 0) return 1.0f;
    double done = t < c->lr_decay_steps ? (double)t / c->lr_decay_steps : 1.0;
    return (float)(c->lr_floor + (1.0 - c->lr_floor) * 0.5 * (1.0 + cos(3.14159265358979323846 * done)));
}

/* Adam by hand (models/meta.c's constants and expressions) on the mean meta-gradient of each
 * batch, the tasks drawn as meta-training draws them, clipped when c->clip_norm > 0 (every step
 * must then be clipped), with AdamW's decay of the first n_theta parameters (theta*) when
 * c->weight_decay > 0 and the rate scaled by cosine_factor, must land where kgm_meta_train
 * lands. One rate for every parameter: c must leave cond_lr and rate_lr at 0. */
static void replay(kgm_meta *mt, const kgm_tasksrc *src, const kgm_meta_config *c)
{
    size_t n = kgm_meta_n_params(mt), n_theta = kgm_meta_net(mt)->n_params;
    const float b1 = 0.9f, b2 = 0.999f;
    float *g = malloc(n * sizeof *g), *sum = malloc(n * sizeof *sum), *m = calloc(n, sizeof *m),
          *v = calloc(n, sizeof *v), *p = kgm_meta_params(mt);
    kgm_episode t;
    assert_int_equal(kgm_episode_alloc(&t, src, c->n_support, c->n_query), 0);
    for (int it = 0; it < c->iterations; it++) {
        memset(sum, 0, n * sizeof *sum);
        for (int j = 0; j < c->meta_batch; j++) {
            kgm_taskrng r;
            kgm_taskrng_seed(&r, c->seed, (uint64_t)it, (uint64_t)j);
            assert_int_equal(kgm_episode_sample(src, &r, &t), 0);
            float loss;
            assert_int_equal(kgm_meta_task_grad(mt, &t, g, &loss), 0);
            for (size_t i = 0; i < n; i++) sum[i] += g[i];
        }
        double norm = 0.0;
        for (size_t i = 0; i < n; i++) { sum[i] /= (float)c->meta_batch; norm += (double)sum[i] * sum[i]; }
        norm = sqrt(norm);
        if (c->clip_norm > 0.0f) {
            assert_true(norm > c->clip_norm);   /* every step is clipped, or the test shows nothing */
            for (size_t i = 0; i < n; i++) sum[i] *= (float)(c->clip_norm / norm);
        }
        const float c1 = 1.0f - powf(b1, (float)(it + 1)), c2 = 1.0f - powf(b2, (float)(it + 1));
        const float lr = cosine_factor(c, it) * c->outer_lr;
        for (size_t i = 0; c->weight_decay > 0.0f && i < n_theta; i++) p[i] *= 1.0f - lr * c->weight_decay;
        for (size_t i = 0; i < n; i++) {
            m[i] = b1 * m[i] + (1.0f - b1) * sum[i];
            v[i] = b2 * v[i] + (1.0f - b2) * sum[i] * sum[i];
            p[i] -= lr * (m[i] / c1) / (sqrtf(v[i] / c2) + 1e-8f);
        }
    }
    kgm_episode_release(&t);
    free(g); free(sum); free(m); free(v);
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double d = 0.0;
    for (size_t i = 0; i < n; i++) if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
    return d;
}

/* A learner of c trained on src (its statistics into st unless NULL) */
static kgm_meta *trained_learner(const kgm_tasksrc *src, const kgm_meta_config *c, kgm_meta_stats *st)
{
    kgm_meta *mt = small_learner(c);
    assert_int_equal(kgm_meta_train(mt, src, st), 0);
    return mt;
}

/* How far mt's meta-parameters are from c replayed by hand on src from a fresh learner */
static double replay_gap(kgm_meta *mt, const kgm_tasksrc *src, const kgm_meta_config *c)
{
    kgm_meta *replayed = small_learner(c);
    replay(replayed, src, c);
    double d = max_abs_diff(kgm_meta_params(mt), kgm_meta_params(replayed), kgm_meta_n_params(mt));
    kgm_meta_free(replayed);
    return d;
}

static void clipping_bounds_the_step_input(void **state)
{
    (void)state;
    kgm_tasksrc src;
    kgm_tasksrc_linear(&src, NULL);
    kgm_meta_config c = small_config(6);
    c.clip_norm = 0.05f;
    kgm_meta_stats st;
    kgm_meta *trained = trained_learner(&src, &c, &st);
    assert_int_equal(st.clipped, c.iterations);
    assert_true(st.max_grad_norm > c.clip_norm);
    double d_replay = replay_gap(trained, &src, &c);
    c.clip_norm = 0.0f;
    kgm_meta *unclipped = trained_learner(&src, &c, NULL);
    double d_off = max_abs_diff(kgm_meta_params(trained), kgm_meta_params(unclipped), kgm_meta_n_params(trained));
    print_message("clipped run vs hand replay: %.2e, vs unclipped run: %.2e\n", d_replay, d_off);
    assert_true(d_replay < 1e-6);
    assert_true(d_off > 1e-5);   /* the clip changed what Adam saw */
    kgm_meta_free(trained); kgm_meta_free(unclipped);
}

/* A guard that never triggers changes nothing: same bits as a run without guards. */
static void idle_guards_change_nothing(void **state)
{
    (void)state;
    kgm_tasksrc src;
    kgm_tasksrc_linear(&src, NULL);
    kgm_meta_config c = small_config(60);
    kgm_meta_stats a, b;
    kgm_meta *plain = trained_learner(&src, &c, &a);
    c.clip_norm = 1e30f; c.skip_nonfinite = 5;
    kgm_meta *guarded = trained_learner(&src, &c, &b);
    assert_int_equal(b.clipped, 0);
    assert_int_equal(b.skipped, 0);
    assert_true(a.max_grad_norm > 0.0 && a.max_grad_norm == b.max_grad_norm);
    assert_memory_equal(kgm_meta_params(plain), kgm_meta_params(guarded), kgm_meta_n_params(plain) * sizeof(float));
    kgm_meta_free(plain); kgm_meta_free(guarded);
}

static void refuses_bad_guard_settings(void **state)
{
    (void)state;
    kgm_mlp m;
    const int sizes[] = { 1, 8, 1 };
    assert_int_equal(kgm_mlp_init(&m, 2, sizes, KGM_ACT_RELU, KGM_LOSS_MSE), 0);
    kgm_meta *mt = NULL;
    kgm_meta_config c = kgm_meta_config_default();
    c.clip_norm = -1.0f;
    assert_int_equal(kgm_meta_new(&mt, &m, &c, NULL, 0), KGM_EINVAL);
    assert_non_null(strstr(kgm_error(), "clip_norm"));
    c.clip_norm = NAN;
    assert_int_equal(kgm_meta_new(&mt, &m, &c, NULL, 0), KGM_EINVAL);
    c.clip_norm = 0.0f; c.skip_nonfinite = -1;
    assert_int_equal(kgm_meta_new(&mt, &m, &c, NULL, 0), KGM_EINVAL);
    assert_non_null(strstr(kgm_error(), "skip_nonfinite"));
    assert_null(mt);
}

/* Decay off: kgm_meta_train is plain Adam, bit for bit (the numbers of runs before the field). */
static void no_decay_is_plain_adam(void **state)
{
    (void)state;
    kgm_tasksrc src;
    kgm_tasksrc_linear(&src, NULL);
    kgm_meta_config c = small_config(8);
    kgm_meta *trained = trained_learner(&src, &c, NULL), *replayed = small_learner(&c);
    replay(replayed, &src, &c);
    assert_memory_equal(kgm_meta_params(trained), kgm_meta_params(replayed), kgm_meta_n_params(trained) * sizeof(float));
    kgm_meta_free(trained); kgm_meta_free(replayed);
}

static double norm_of(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

/* Decay on, Meta-SGD (theta* then the inner rates): AdamW on theta* and plain Adam on the
 * rates, as replayed by hand; theta* ends shorter than without decay. */
static void decay_is_adamw_on_theta_only(void **state)
{
    (void)state;
    kgm_tasksrc src;
    kgm_tasksrc_linear(&src, NULL);
    kgm_meta_config c = small_config(8);
    c.learner = KGM_METASGD;
    kgm_meta *plain = trained_learner(&src, &c, NULL);
    c.weight_decay = 20.0f;   /* outer_lr 3e-3: theta* scaled by 0.94 a step, far above Adam's noise */
    kgm_meta *trained = trained_learner(&src, &c, NULL);
    size_t n = kgm_meta_n_params(trained), n_theta = kgm_meta_net(trained)->n_params;
    assert_true(n == 2 * n_theta);   /* Meta-SGD: theta* then one rate per parameter */
    double d_replay = replay_gap(trained, &src, &c);
    double with = norm_of(kgm_meta_params(trained), n_theta), without = norm_of(kgm_meta_params(plain), n_theta);
    print_message("AdamW run vs hand replay: %.2e; |theta*| %.4f with decay, %.4f without\n", d_replay, with, without);
    assert_true(d_replay < 1e-6);
    assert_true(with < 0.8 * without);
    kgm_meta_free(trained); kgm_meta_free(plain);
}

/* Cosine decay over 5 of 9 steps to a quarter, with decay of theta* too: the hand replay's
 * formula, and a run unlike the constant-rate one. */
static void cosine_rates_follow_the_formula(void **state)
{
    (void)state;
    kgm_tasksrc src;
    kgm_tasksrc_linear(&src, NULL);
    kgm_meta_config c = small_config(9);
    c.weight_decay = 5.0f;
    kgm_meta *constant = trained_learner(&src, &c, NULL);
    c.lr_decay_steps = 5; c.lr_floor = 0.25f;
    kgm_meta *trained = trained_learner(&src, &c, NULL);
    double d_replay = replay_gap(trained, &src, &c),
           d_const = max_abs_diff(kgm_meta_params(trained), kgm_meta_params(constant), kgm_meta_n_params(trained));
    print_message("cosine run vs hand replay: %.2e, vs constant rates: %.2e\n", d_replay, d_const);
    assert_true(d_replay < 1e-6);
    assert_true(d_const > 1e-4);
    kgm_meta_free(trained); kgm_meta_free(constant);
}

/* The schedule counts the learner's Adam steps across calls: after lr_decay_steps steps with
 * floor 0 every rate is 0, so a second call moves nothing (while the first did). */
static void cosine_spans_train_calls(void **state)
{
    (void)state;
    kgm_tasksrc src;
    kgm_tasksrc_linear(&src, NULL);
    kgm_meta_config c = small_config(6);
    c.lr_decay_steps = 6; c.lr_floor = 0.0f;
    kgm_meta *mt = small_learner(&c);
    size_t n = kgm_meta_n_params(mt);
    float *before = malloc(n * sizeof *before);
    memcpy(before, kgm_meta_params(mt), n * sizeof *before);
    assert_int_equal(kgm_meta_train(mt, &src, NULL), 0);
    assert_memory_not_equal(before, kgm_meta_params(mt), n * sizeof *before);
    memcpy(before, kgm_meta_params(mt), n * sizeof *before);
    assert_int_equal(kgm_meta_train(mt, &src, NULL), 0);
    assert_memory_equal(before, kgm_meta_params(mt), n * sizeof *before);
    free(before);
    kgm_meta_free(mt);
}

static void refuses_bad_decay_settings(void **state)
{
    (void)state;
    kgm_mlp m;
    const int sizes[] = { 1, 8, 1 };
    assert_int_equal(kgm_mlp_init(&m, 2, sizes, KGM_ACT_RELU, KGM_LOSS_MSE), 0);
    kgm_meta *mt = NULL;
    kgm_meta_config c = kgm_meta_config_default();
    const float bad[] = { -0.1f, NAN, INFINITY, 1.0f / 1e-3f };   /* the last: outer_lr 1e-3 times it is 1 */
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        c.weight_decay = bad[i];
        assert_int_equal(kgm_meta_new(&mt, &m, &c, NULL, 0), KGM_EINVAL);
        assert_non_null(strstr(kgm_error(), "weight_decay"));
        assert_null(strchr(kgm_error(), '\n'));
        assert_null(mt);
    }
    c.weight_decay = 999.0f;   /* just below the bound: accepted */
    assert_int_equal(kgm_meta_new(&mt, &m, &c, NULL, 0), 0);
    kgm_meta_free(mt);
    mt = NULL;
    c.weight_decay = 0.0f;
    c.lr_decay_steps = -1;
    assert_int_equal(kgm_meta_new(&mt, &m, &c, NULL, 0), KGM_EINVAL);
    assert_non_null(strstr(kgm_error(), "lr_decay_steps"));
    c.lr_decay_steps = 10;
    const float bad_floor[] = { -0.1f, 1.5f, NAN };
    for (size_t i = 0; i < sizeof bad_floor / sizeof *bad_floor; i++) {
        c.lr_floor = bad_floor[i];
        assert_int_equal(kgm_meta_new(&mt, &m, &c, NULL, 0), KGM_EINVAL);
        assert_non_null(strstr(kgm_error(), "lr_floor"));
    }
    assert_null(mt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rare_infinite_task_is_skipped),
        cmocka_unit_test(a_run_of_bad_batches_still_stops),
        cmocka_unit_test(clipping_bounds_the_step_input),
        cmocka_unit_test(idle_guards_change_nothing),
        cmocka_unit_test(refuses_bad_guard_settings),
        cmocka_unit_test(no_decay_is_plain_adam),
        cmocka_unit_test(decay_is_adamw_on_theta_only),
        cmocka_unit_test(cosine_rates_follow_the_formula),
        cmocka_unit_test(cosine_spans_train_calls),
        cmocka_unit_test(refuses_bad_decay_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
