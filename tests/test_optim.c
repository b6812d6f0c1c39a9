/* tests/test_optim.c - optimizers reach a quadratic's minimum, their first steps match the
 * formulas, clipping scales to the norm, schedules give their documented values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "error.h"
#include "optim.h"

enum { N = 5 };
static const float center[N] = { 1.0f, -2.0f, 0.5f, 3.0f, -0.25f };
static const float curvature[N] = { 1.0f, 10.0f, 0.1f, 3.0f, 50.0f };   /* badly conditioned */

/* f(p) = sum_i c_i (p_i - m_i)^2 / 2, gradient c_i (p_i - m_i) */
static void quad_grad(const float *p, float *g)
{
    for (int i = 0; i < N; i++) g[i] = curvature[i] * (p[i] - center[i]);
}

static float run(kgm_optim_config cfg, int steps)
{
    kgm_optim *o;
    assert_int_equal(kgm_optim_new(&o, &cfg, N), 0);
    float p[N] = { 0 }, g[N];
    for (int s = 0; s < steps; s++) {
        quad_grad(p, g);
        assert_int_equal(kgm_optim_step(o, p, g), 0);
    }
    assert_int_equal(kgm_optim_steps(o), steps);
    kgm_optim_free(o);
    float worst = 0;
    for (int i = 0; i < N; i++) worst = fmaxf(worst, fabsf(p[i] - center[i]));
    return worst;
}

static void adam_and_sgd_converge_on_a_quadratic(void **state)
{
    (void)state;
    kgm_optim_config adam = kgm_optim_defaults(KGM_OPTIM_ADAM, 0.05f);
    adam.sched = (kgm_schedule){ KGM_SCHED_COSINE, 0.05f, 0.0005f, 2000 };
    assert_true(run(adam, 10) > 0.4f);        /* not there by construction */
    assert_true(run(adam, 2000) < 1e-3f);
    kgm_optim_config sgd = kgm_optim_defaults(KGM_OPTIM_SGD, 0.015f);
    sgd.momentum = 0.9f;
    assert_true(run(sgd, 1000) < 1e-3f);
    sgd.momentum = 0.0f;                      /* without momentum the flat direction lags */
    assert_true(run(sgd, 1000) > 0.1f);
}

static void first_steps_follow_the_formulas(void **state)
{
    (void)state;
    /* Adam's first step moves every coordinate by lr against the gradient's sign (bias correction). */
    kgm_optim_config c = kgm_optim_defaults(KGM_OPTIM_ADAM, 0.1f);
    kgm_optim *o;
    assert_int_equal(kgm_optim_new(&o, &c, 3), 0);
    float p[3] = { 0, 0, 0 }, g[3] = { 1e-3f, -5.0f, 200.0f };
    assert_int_equal(kgm_optim_step(o, p, g), 0);
    assert_float_equal(p[0], -0.1f, 1e-5f);
    assert_float_equal(p[1], 0.1f, 1e-5f);
    assert_float_equal(p[2], -0.1f, 1e-5f);
    assert_float_equal(kgm_optim_state(o, 0)[1], -0.5f, 1e-6f);    /* m = (1 - b1) g */
    assert_float_equal(kgm_optim_state(o, 1)[1], 0.025f, 1e-6f);   /* v = (1 - b2) g^2 */
    kgm_optim_reset(o);
    assert_int_equal(kgm_optim_steps(o), 0);
    assert_true(kgm_optim_state(o, 0)[1] == 0.0f);
    kgm_optim_free(o);
    /* SGD momentum: v1 = g1, p1 = -lr g1; v2 = mu v1 + g2, p2 = p1 - lr v2. */
    c = kgm_optim_defaults(KGM_OPTIM_SGD, 0.5f);
    c.momentum = 0.5f;
    assert_int_equal(kgm_optim_new(&o, &c, 1), 0);
    float q = 0, h = 2;
    kgm_optim_step(o, &q, &h);
    assert_float_equal(q, -1.0f, 1e-6f);
    h = 1;
    kgm_optim_step(o, &q, &h);
    assert_float_equal(q, -2.0f, 1e-6f);       /* v2 = 0.5 * 2 + 1 = 2 */
    assert_null(kgm_optim_state(o, 2));
    kgm_optim_free(o);
}

static void bad_gradients_and_configs_are_refused(void **state)
{
    (void)state;
    kgm_optim_config c = kgm_optim_defaults(KGM_OPTIM_ADAM, 0.1f);
    kgm_optim *o;
    assert_int_equal(kgm_optim_new(&o, &c, 2), 0);
    float p[2] = { 1, 2 }, g[2] = { 1, NAN };
    assert_int_equal(kgm_optim_step(o, p, g), KGM_ENUMERIC);
    assert_true(p[0] == 1 && p[1] == 2 && kgm_optim_steps(o) == 0);   /* nothing changed */
    g[1] = INFINITY;
    assert_int_equal(kgm_optim_step(o, p, g), KGM_ENUMERIC);
    kgm_optim_free(o);
    c.beta1 = 1.0f;
    assert_int_equal(kgm_optim_new(&o, &c, 2), KGM_EINVAL);
    assert_null(o);
    c = kgm_optim_defaults(KGM_OPTIM_SGD, 0.1f);
    c.sched.kind = KGM_SCHED_LINEAR;           /* steps = 0 */
    assert_int_equal(kgm_optim_new(&o, &c, 2), KGM_EINVAL);
    c = kgm_optim_defaults(KGM_OPTIM_SGD, -1.0f);
    assert_int_equal(kgm_optim_new(&o, &c, 2), KGM_EINVAL);
}

static void clipping_scales_to_the_norm(void **state)
{
    (void)state;
    float g[2] = { 3, 4 };
    assert_float_equal(kgm_clip_grad_norm(g, 2, 1.0), 5.0, 1e-9);
    assert_float_equal(g[0], 0.6f, 1e-6f);
    assert_float_equal(g[1], 0.8f, 1e-6f);
    assert_float_equal(kgm_clip_grad_norm(g, 2, 2.0), 1.0, 1e-6);   /* under the limit: untouched */
    assert_float_equal(g[0], 0.6f, 1e-6f);
    float big[1000];
    for (int i = 0; i < 1000; i++) big[i] = (i % 2 ? -1.0f : 1.0f) * 0.5f;
    kgm_clip_grad_norm(big, 1000, 0.25);
    double ss = 0;
    for (int i = 0; i < 1000; i++) ss += (double)big[i] * big[i];
    assert_float_equal(sqrt(ss), 0.25, 1e-6);
    assert_true(big[0] > 0 && big[1] < 0);    /* direction kept */
    /* Through the optimizer: a clipped SGD step moves by lr * clip_norm. */
    kgm_optim_config c = kgm_optim_defaults(KGM_OPTIM_SGD, 0.1f);
    c.clip_norm = 1.0f;
    kgm_optim *o;
    assert_int_equal(kgm_optim_new(&o, &c, 2), 0);
    float p[2] = { 0, 0 }, h[2] = { 30, 40 };
    kgm_optim_step(o, p, h);
    assert_float_equal(p[0], -0.06f, 1e-6f);
    assert_float_equal(p[1], -0.08f, 1e-6f);
    kgm_optim_free(o);
}

static void schedules_give_their_values(void **state)
{
    (void)state;
    kgm_schedule s = { KGM_SCHED_CONSTANT, 0.1f, 0.0f, 0 };
    assert_float_equal(kgm_schedule_lr(&s, 0), 0.1f, 1e-7f);
    assert_float_equal(kgm_schedule_lr(&s, 12345), 0.1f, 1e-7f);
    s = (kgm_schedule){ KGM_SCHED_LINEAR, 1.0f, 0.2f, 100 };
    assert_float_equal(kgm_schedule_lr(&s, 0), 1.0f, 1e-6f);
    assert_float_equal(kgm_schedule_lr(&s, 25), 0.8f, 1e-6f);
    assert_float_equal(kgm_schedule_lr(&s, 50), 0.6f, 1e-6f);
    assert_float_equal(kgm_schedule_lr(&s, 100), 0.2f, 1e-6f);
    assert_float_equal(kgm_schedule_lr(&s, 500), 0.2f, 1e-6f);
    s = (kgm_schedule){ KGM_SCHED_COSINE, 1.0f, 0.0f, 100 };
    assert_float_equal(kgm_schedule_lr(&s, 0), 1.0f, 1e-6f);
    assert_float_equal(kgm_schedule_lr(&s, 25), 0.5f * (1 + cos(M_PI / 4)), 1e-6f);
    assert_float_equal(kgm_schedule_lr(&s, 50), 0.5f, 1e-6f);
    assert_float_equal(kgm_schedule_lr(&s, 100), 0.0f, 1e-6f);
    assert_float_equal(kgm_schedule_lr(&s, 101), 0.0f, 1e-6f);
    /* The optimizer follows its schedule. */
    kgm_optim_config c = kgm_optim_defaults(KGM_OPTIM_SGD, 1.0f);
    c.sched = (kgm_schedule){ KGM_SCHED_LINEAR, 1.0f, 0.0f, 4 };
    kgm_optim *o;
    assert_int_equal(kgm_optim_new(&o, &c, 1), 0);
    float p = 0, g;
    for (int i = 0; i < 4; i++) {
        assert_float_equal(kgm_optim_lr(o), 1.0f - 0.25f * i, 1e-6f);
        g = 1;
        kgm_optim_step(o, &p, &g);
    }
    assert_float_equal(p, -(1.0f + 0.75f + 0.5f + 0.25f), 1e-6f);
    kgm_optim_free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(adam_and_sgd_converge_on_a_quadratic),
        cmocka_unit_test(first_steps_follow_the_formulas),
        cmocka_unit_test(bad_gradients_and_configs_are_refused),
        cmocka_unit_test(clipping_scales_to_the_norm),
        cmocka_unit_test(schedules_give_their_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
