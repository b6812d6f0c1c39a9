/* tests/test_meta.c - task networks and meta-learners: the Hessian-vector product and every
 * second-order meta-gradient against finite differences, first-order MAML differing from
 * MAML, the same numbers with one and two threads, each learner learning linear tasks, the
 * conditioner's and Meta-SGD's rates' own Adam learning rates, and refusal of bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "error.h"
#include "interrupt.h"
#include "meta.h"
#include "mlp.h"
#include "tape.h"
#include "tasksrc.h"
#include "tmpfile.h"

static void random_vec(float *v, size_t n, uint64_t seed, double scale)
{
    kgm_taskrng r;
    kgm_taskrng_seed(&r, seed, 0, 0);
    for (size_t i = 0; i < n; i++) v[i] = (float)kgm_taskrng_uniform(&r, -scale, scale);
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* ---- the Hessian-vector product against central differences of the gradient ---- */
static void check_hvp(kgm_act act, kgm_loss loss, const int *sizes, int n)
{
    kgm_mlp m;
    assert_int_equal(kgm_mlp_init(&m, 2, sizes, act, loss), 0);
    size_t P = m.n_params;
    int din = sizes[0], dout = loss == KGM_LOSS_MSE ? sizes[2] : 1;
    float *th = malloc(P * 4), *v = malloc(P * 4), *hv = malloc(P * 4), *gp = malloc(P * 4),
          *gm = malloc(P * 4), *x = malloc((size_t)(n * din) * 4), *y = malloc((size_t)(n * dout) * 4);
    random_vec(th, P, 1, 0.8);
    random_vec(v, P, 2, 1.0);
    random_vec(x, (size_t)(n * din), 3, 2.0);
    random_vec(y, (size_t)(n * dout), 4, 1.0);
    if (loss == KGM_LOSS_XENT) for (int i = 0; i < n; i++) y[i] = (float)(i % sizes[2]);
    kgm_mlp_ws *ws = kgm_mlp_ws_new(&m, n);
    kgm_mlp_hvp(&m, ws, th, x, y, n, v, hv);
    const float eps = act == KGM_ACT_RELU ? 2e-4f : 1e-2f;   /* relu: stay inside one linear piece */
    float *tp = malloc(P * 4);
    for (size_t i = 0; i < P; i++) tp[i] = th[i] + eps * v[i];
    kgm_mlp_loss_grad(&m, ws, tp, x, y, n, gp);
    for (size_t i = 0; i < P; i++) tp[i] = th[i] - eps * v[i];
    kgm_mlp_loss_grad(&m, ws, tp, x, y, n, gm);
    double err = 0.0, ref = 0.0;
    for (size_t i = 0; i < P; i++) {
        double fd = ((double)gp[i] - gm[i]) / (2.0 * eps);
        err += (fd - hv[i]) * (fd - hv[i]);
        ref += fd * fd;
    }
    /* A wrong sign or a missing term (e.g. dz^T R{a}, or act'') moves this far above 1e-2. */
    print_message("hvp act %d loss %d: rel err %.2e (ref %.2e)\n", (int)act, (int)loss, sqrt(err / ref), ref);
    assert_true(ref > 1e-6);
    assert_true(sqrt(err / ref) < 1e-2);
    kgm_mlp_ws_free(ws);
    free(th); free(v); free(hv); free(gp); free(gm); free(x); free(y); free(tp);
}

static void hvp_matches_finite_differences(void **state)
{
    (void)state;
    const int reg[] = { 1, 12, 1 }, cls[] = { 3, 10, 4 };
    check_hvp(KGM_ACT_TANH, KGM_LOSS_MSE, reg, 7);
    check_hvp(KGM_ACT_RELU, KGM_LOSS_MSE, reg, 7);
    check_hvp(KGM_ACT_TANH, KGM_LOSS_XENT, cls, 6);
    check_hvp(KGM_ACT_RELU, KGM_LOSS_XENT, cls, 6);
}

/* ---- meta-gradients ---- */
static kgm_meta_config small_config(kgm_learner L, int steps, float alpha, int threads, int cond_rates)
{
    kgm_meta_config c = kgm_meta_config_default();
    c.learner = L; c.inner_steps = steps; c.alpha = alpha; c.meta_batch = 8;
    c.n_support = 6; c.n_query = 6; c.threads = threads; c.seed = 7; c.iterations = 0;
    c.cond_rates = cond_rates;
    return c;
}

/* A 1-16-16-1 tanh learner with configuration c. */
static kgm_meta *small_learner_with(const kgm_meta_config *c, const kgm_init_stage *init, int cond_dim)
{
    kgm_mlp m;
    const int sizes[] = { 1, 16, 16, 1 };
    assert_int_equal(kgm_mlp_init(&m, 3, sizes, KGM_ACT_TANH, KGM_LOSS_MSE), 0);
    kgm_meta *mt = NULL;
    assert_int_equal(kgm_meta_new(&mt, &m, c, init, cond_dim), 0);
    return mt;
}

static kgm_meta *small_learner(kgm_learner L, int steps, float alpha, const kgm_init_stage *init,
                               int cond_dim, int threads, int cond_rates)
{
    kgm_meta_config c = small_config(L, steps, alpha, threads, cond_rates);
    return small_learner_with(&c, init, cond_dim);
}

/* The query loss after the inner loop, as a function of the meta-parameters. */
static double meta_loss_at(kgm_meta *mt, const kgm_episode *t, const float *base, const float *d, double h,
                           float *scratch)
{
    size_t n = kgm_meta_n_params(mt);
    float *p = kgm_meta_params(mt);
    for (size_t i = 0; i < n; i++) p[i] = (float)(base[i] + h * d[i]);
    float loss;
    assert_int_equal(kgm_meta_task_grad(mt, t, scratch, &loss), 0);
    memcpy(p, base, n * sizeof(float));
    return loss;
}

/* Directional derivative of the meta-loss along d by a 4-point stencil of step h, and the
 * analytic one; d mixes a random vector with guide (NULL: the analytic gradient itself), zero
 * before `from`. */
static void directional_h(kgm_meta *mt, const kgm_episode *t, uint64_t seed, const float *guide,
                          size_t from, double h, double *fd, double *an, float *grad)
{
    size_t n = kgm_meta_n_params(mt);
    float *base = malloc(n * 4), *d = malloc(n * 4), *scratch = malloc(n * 4);
    memcpy(base, kgm_meta_params(mt), n * 4);
    /* Half along the analytic gradient, half random: a long enough derivative to compare,
     * and every coordinate takes part. */
    float loss;
    assert_int_equal(kgm_meta_task_grad(mt, t, grad, &loss), 0);
    random_vec(d, n, seed, 1.0);
    if (!guide) guide = grad;
    double nd = sqrt(dot(d + from, d + from, n - from)), ng = sqrt(dot(guide + from, guide + from, n - from));
    for (size_t i = 0; i < n; i++) d[i] = i < from ? 0.0f : (float)(d[i] / nd + guide[i] / ng);
    nd = sqrt(dot(d, d, n));
    for (size_t i = 0; i < n; i++) d[i] = (float)(d[i] / nd);
    *an = dot(grad, d, n);
    *fd = (8.0 * (meta_loss_at(mt, t, base, d, h, scratch) - meta_loss_at(mt, t, base, d, -h, scratch))
           - (meta_loss_at(mt, t, base, d, 2 * h, scratch) - meta_loss_at(mt, t, base, d, -2 * h, scratch)))
          / (12.0 * h);
    free(base); free(d); free(scratch);
}

static void directional(kgm_meta *mt, const kgm_episode *t, uint64_t seed, const float *guide,
                        size_t from, double *fd, double *an, float *grad)
{
    directional_h(mt, t, seed, guide, from, 2e-3, fd, an, grad);
}

static void sample_linear(kgm_episode *t, int cond, uint64_t key)
{
    static kgm_linear lin0 = { 0 }, lin1 = { 1 };
    kgm_tasksrc src;
    kgm_tasksrc_linear(&src, cond ? &lin1 : &lin0);
    assert_int_equal(kgm_episode_alloc(t, &src, 6, 6), 0);
    kgm_taskrng r;
    kgm_taskrng_seed(&r, 99, key, 0);
    assert_int_equal(kgm_episode_sample(&src, &r, t), 0);
}

static void check_metagrad(kgm_learner L, const kgm_init_stage *init, int cond_dim, int cond_rates)
{
    kgm_meta *mt = small_learner(L, 3, 0.3f, init, cond_dim, 1, cond_rates);
    size_t n = kgm_meta_n_params(mt);
    /* Give the conditioning parameters and rates some non-trivial values. */
    float *p = kgm_meta_params(mt);
    float *noise = malloc(n * 4), *grad = malloc(n * 4);
    random_vec(noise, n, 5, 0.2);
    size_t P = kgm_meta_net(mt)->n_params;
    /* The rate map (cond_rates): 33 units x cond_dim entries, the buffer's tail; scaled up so
     * that its tanh works away from 0, where a missing (1 - tanh^2) would go unnoticed. */
    const size_t rate_map = cond_rates ? (16 + 16 + 1) * (size_t)cond_dim : 0;
    for (size_t i = P; i < n; i++) p[i] += (i < n - rate_map ? 1.0f : 5.0f) * noise[i];
    kgm_episode t;
    sample_linear(&t, cond_dim > 0, 1);
    /* Along all meta-parameters, then along the rates and conditioning parameters alone, then
     * (cond_rates) along the rate map alone. */
    for (uint64_t s = 11; s < 16; s++) {
        double fd, an;
        size_t from = s < 14 ? 0 : s == 14 ? P : n - rate_map;
        if (from == n) break;
        directional(mt, &t, s, NULL, from, &fd, &an, grad);
        print_message("%s/%s: fd %.6g an %.6g\n", kgm_learner_name(L), init ? init->name : "none", fd, an);
        assert_true(fabs(an) > 1e-3);
        assert_true(fabs(fd - an) < 1e-2 * fabs(an) + 2e-4);
    }
    kgm_episode_release(&t);
    free(noise); free(grad);
    kgm_meta_free(mt);
}

static void second_order_metagradients_match_fd(void **state)
{
    (void)state;
    check_metagrad(KGM_MAML, NULL, 0, 0);
    check_metagrad(KGM_METASGD, NULL, 0, 0);
    check_metagrad(KGM_ANIL, NULL, 0, 0);
    check_metagrad(KGM_MAML, &kgm_init_shift, 2, 0);
    check_metagrad(KGM_METASGD, &kgm_init_shift, 2, 0);
    check_metagrad(KGM_MAML, &kgm_init_film, 2, 0);
    check_metagrad(KGM_METASGD, &kgm_init_film, 2, 0);   /* the six-family benchmark's best pairing */
    check_metagrad(KGM_ANIL, &kgm_init_film, 2, 0);
    check_metagrad(KGM_METASGD, &kgm_init_film, 2, 1);   /* with rates conditioned on e(t) */
    check_metagrad(KGM_METASGD, NULL, 2, 1);
}

/* Classification: 2-D points labelled by the side of a random line through the origin. */
static int halfplane_sample(void *ctx, kgm_taskrng *rng, kgm_episode *t)
{
    (void)ctx;
    double angle = kgm_taskrng_uniform(rng, 0.0, 6.283185307179586);
    for (int i = 0; i < t->n_support + t->n_query; i++) {
        float *x = i < t->n_support ? t->xs + 2 * i : t->xq + 2 * (i - t->n_support);
        float *y = i < t->n_support ? t->ys + i : t->yq + (i - t->n_support);
        x[0] = (float)kgm_taskrng_uniform(rng, -1.0, 1.0);
        x[1] = (float)kgm_taskrng_uniform(rng, -1.0, 1.0);
        *y = (float)(cos(angle) * x[0] + sin(angle) * x[1] > 0.0);
    }
    return KGM_OK;
}

static void classification_metagradient_matches_fd(void **state)
{
    (void)state;
    kgm_tasksrc src = { .name = "halfplane", .x_dim = 2, .y_dim = 1, .sample = halfplane_sample };
    kgm_mlp m;
    const int sizes[] = { 2, 10, 2 };
    assert_int_equal(kgm_mlp_init(&m, 2, sizes, KGM_ACT_TANH, KGM_LOSS_XENT), 0);
    kgm_meta_config c = kgm_meta_config_default();
    c.inner_steps = 2; c.alpha = 0.5f; c.n_support = 8; c.n_query = 8;
    kgm_meta *mt;
    assert_int_equal(kgm_meta_new(&mt, &m, &c, NULL, 0), 0);
    kgm_episode t;
    assert_int_equal(kgm_episode_alloc(&t, &src, 8, 8), 0);
    kgm_taskrng r;
    kgm_taskrng_seed(&r, 5, 0, 0);
    assert_int_equal(kgm_episode_sample(&src, &r, &t), 0);
    float *grad = malloc(kgm_meta_n_params(mt) * 4);
    double fd, an;
    directional(mt, &t, 31, NULL, 0, &fd, &an, grad);
    assert_true(fabs(an) > 1e-3);
    assert_true(fabs(fd - an) < 1e-2 * fabs(an) + 2e-4);
    free(grad);
    kgm_episode_release(&t);
    kgm_meta_free(mt);
}

/* FOMAML drops the Hessian terms: its gradient must differ from MAML's, which matches FD. */
static void fomaml_differs_from_maml(void **state)
{
    (void)state;
    kgm_meta *a = small_learner(KGM_MAML, 3, 0.3f, NULL, 0, 1, 0);
    kgm_meta *b = small_learner(KGM_FOMAML, 3, 0.3f, NULL, 0, 1, 0);
    size_t n = kgm_meta_n_params(a);
    assert_memory_equal(kgm_meta_params(a), kgm_meta_params(b), n * 4);
    kgm_episode t;
    sample_linear(&t, 0, 2);
    float *ga = malloc(n * 4), *gb = malloc(n * 4);
    double fd_a, an_a, fd_b, an_b;
    directional(a, &t, 21, NULL, 0, &fd_a, &an_a, ga);
    directional(b, &t, 21, ga, 0, &fd_b, &an_b, gb);
    assert_true(fabs(fd_a - fd_b) < 1e-9);          /* same function, same stencil */
    assert_true(fabs(fd_a - an_a) < 1e-2 * fabs(an_a) + 2e-4);
    double diff = 0.0;
    for (size_t i = 0; i < n; i++) diff += ((double)ga[i] - gb[i]) * ((double)ga[i] - gb[i]);
    assert_true(sqrt(diff) > 0.05 * sqrt(dot(ga, ga, n)));
    kgm_episode_release(&t);
    free(ga); free(gb);
    kgm_meta_free(a); kgm_meta_free(b);
}

/* ---- the same meta-gradient on the core's tape (create_graph backward) ---- */
static kgm_node *tape_loss(kgm_tape *tp, const kgm_mlp *m, kgm_node *th, kgm_node *x, kgm_node *y)
{
    kgm_node *a = x;
    for (int l = 0; l < m->n_layers; l++) {
        kgm_node *w = kgm_view(tp, th, (int)m->w_off[l], m->sizes[l + 1], m->sizes[l]);
        kgm_node *b = kgm_view(tp, th, (int)m->b_off[l], 1, m->sizes[l + 1]);
        a = kgm_bias_add(tp, kgm_matmul_t(tp, a, w, 0, 1), b);
        if (l + 1 < m->n_layers) a = kgm_tanh(tp, a);
    }
    return kgm_mse(tp, a, y);
}

static void maml_matches_the_tape(void **state)
{
    (void)state;
    const int k = 3;
    const float alpha = 0.3f;
    kgm_meta *mt = small_learner(KGM_MAML, k, alpha, NULL, 0, 1, 0);
    const kgm_mlp *m = kgm_meta_net(mt);
    size_t P = m->n_params;
    kgm_episode t;
    sample_linear(&t, 0, 3);
    float *ours = malloc(P * 4), loss;
    assert_int_equal(kgm_meta_task_grad(mt, &t, ours, &loss), 0);

    kgm_tape *tp;
    assert_int_equal(kgm_tape_new(&tp, 1 << 22), 0);
    kgm_node *th0 = kgm_tape_leaf(tp, kgm_meta_params(mt), 1, (int)P, 1), *th = th0, *g;
    kgm_node *xs = kgm_tape_leaf(tp, t.xs, t.n_support, 1, 0), *ys = kgm_tape_leaf(tp, t.ys, t.n_support, 1, 0);
    kgm_node *xq = kgm_tape_leaf(tp, t.xq, t.n_query, 1, 0), *yq = kgm_tape_leaf(tp, t.yq, t.n_query, 1, 0);
    for (int j = 0; j < k; j++) {
        assert_int_equal(kgm_tape_grad(tp, tape_loss(tp, m, th, xs, ys), 1, &th, &g, KGM_CREATE_GRAPH), 0);
        th = kgm_axpy(tp, -alpha, g, th);
    }
    kgm_node *lq = tape_loss(tp, m, th, xq, yq);
    assert_int_equal(kgm_tape_grad(tp, lq, 1, &th0, &g, 0), 0);
    assert_float_equal(kgm_val(lq)[0], loss, 1e-5 * (1.0 + fabs(loss)));
    double diff = 0.0;
    for (size_t i = 0; i < P; i++) diff += (kgm_val(g)[i] - (double)ours[i]) * (kgm_val(g)[i] - (double)ours[i]);
    print_message("MAML (k = %d) vs tape: |diff| / |grad| = %.2e\n", k, sqrt(diff / dot(ours, ours, P)));
    assert_true(sqrt(diff) < 1e-4 * sqrt(dot(ours, ours, P)));
    kgm_tape_free(tp);
    kgm_episode_release(&t);
    free(ours);
    kgm_meta_free(mt);
}

/* ---- determinism across thread counts ---- */
static void same_seed_same_numbers_any_threads(void **state)
{
    (void)state;
    kgm_linear lin = { 0 };
    kgm_tasksrc src;
    kgm_tasksrc_linear(&src, &lin);
    float *p[3];
    size_t n = 0;
    const int threads[3] = { 1, 2, 2 };
    for (int r = 0; r < 3; r++) {
        kgm_meta *mt;
        kgm_mlp m;
        const int sizes[] = { 1, 16, 16, 1 };
        kgm_mlp_init(&m, 3, sizes, KGM_ACT_TANH, KGM_LOSS_MSE);
        kgm_meta_config cfg = kgm_meta_config_default();
        cfg.inner_steps = 2; cfg.alpha = 0.1f; cfg.meta_batch = 7; cfg.n_support = 5; cfg.n_query = 5;
        cfg.iterations = 40; cfg.threads = threads[r]; cfg.seed = r == 2 ? 8 : 7;
        assert_int_equal(kgm_meta_new(&mt, &m, &cfg, NULL, 0), 0);
        n = kgm_meta_n_params(mt);
        assert_int_equal(kgm_meta_train(mt, &src, NULL), 0);
        p[r] = malloc(n * 4);
        memcpy(p[r], kgm_meta_params(mt), n * 4);
        kgm_meta_free(mt);
    }
    assert_memory_equal(p[0], p[1], n * 4);
    assert_memory_not_equal(p[1], p[2], n * 4);   /* another seed moves them */
    for (int r = 0; r < 3; r++) free(p[r]);
}

/* ---- each learner learns linear tasks ---- */
static void check_learns(kgm_learner L)
{
    kgm_linear lin = { 0 };
    kgm_tasksrc src;
    kgm_tasksrc_linear(&src, &lin);
    kgm_mlp m;
    const int sizes[] = { 1, 20, 20, 1 };
    kgm_mlp_init(&m, 3, sizes, KGM_ACT_RELU, KGM_LOSS_MSE);
    kgm_meta_config c = kgm_meta_config_default();
    c.learner = L; c.inner_steps = L == KGM_REPTILE ? 5 : 2; c.alpha = L == KGM_REPTILE || L == KGM_FOMAML ? 0.1f : 0.2f;
    c.meta_batch = 10; c.outer_lr = 3e-3f; c.n_support = 10; c.n_query = 10;
    c.iterations = 400; c.threads = 2; c.seed = 3; c.val_every = 100; c.val_tasks = 50;
    kgm_meta *mt;
    assert_int_equal(kgm_meta_new(&mt, &m, &c, NULL, 0), 0);
    kgm_eval_spec sp = { .n_tasks = 200, .max_steps = c.inner_steps, .n_support = 10, .n_query = 20,
                         .alpha = 0.0f, .seed = 42 };
    double before[6], after[6], ci[6];
    assert_int_equal(kgm_meta_evaluate(mt, &src, &sp, before, ci), 0);
    kgm_meta_stats st;
    assert_int_equal(kgm_meta_train(mt, &src, &st), 0);
    assert_int_equal(st.iterations_done, 400);
    assert_int_equal(kgm_meta_evaluate(mt, &src, &sp, after, ci), 0);
    int k = c.inner_steps;
    print_message("%-8s untrained: %.3f -> %.3f after %d steps; trained: %.3f -> %.3f (+-%.3f)\n",
                  kgm_learner_name(L), before[0], before[k], k, after[0], after[k], ci[k]);
    /* Adaptation from the learned start cuts the unadapted loss by 4x or more, and ends well
     * below adaptation from the untrained start. */
    assert_true(after[k] < 0.25 * after[0]);
    assert_true(after[k] < 0.5 * before[k]);
    kgm_meta_free(mt);
}

static void every_learner_learns_linear_tasks(void **state)
{
    (void)state;
    for (int L = 0; L < KGM_LEARNER_COUNT; L++) check_learns((kgm_learner)L);
}

/* ---- checkpoints ---- */
static void checkpoint_round_trips_the_best_state(void **state)
{
    (void)state;
    char path[64];
    assert_int_equal(tmpfile_make(path, sizeof path, "test_meta", NULL), 0);
    kgm_linear lin = { 1 };
    kgm_tasksrc src;
    kgm_tasksrc_linear(&src, &lin);
    kgm_mlp m;
    const int sizes[] = { 1, 8, 8, 1 };
    kgm_mlp_init(&m, 3, sizes, KGM_ACT_TANH, KGM_LOSS_MSE);
    kgm_meta_config c = kgm_meta_config_default();
    c.learner = KGM_METASGD; c.inner_steps = 2; c.alpha = 0.1f; c.meta_batch = 4; c.n_support = 5;
    c.n_query = 5; c.iterations = 30; c.val_every = 10; c.val_tasks = 10; c.checkpoint = path;
    kgm_meta *a, *b;
    assert_int_equal(kgm_meta_new(&a, &m, &c, &kgm_init_shift, 2), 0);
    assert_int_equal(kgm_meta_train(a, &src, NULL), 0);
    assert_int_equal(kgm_meta_load(&b, path, NULL), 0);
    assert_int_equal(kgm_meta_n_params(a), kgm_meta_n_params(b));
    assert_memory_equal(kgm_meta_params(a), kgm_meta_params(b), kgm_meta_n_params(a) * 4);
    kgm_meta_free(b);
    c.learner = KGM_MAML;   /* a file of another learner is refused, naming both */
    assert_int_equal(kgm_meta_load(&b, path, &c), KGM_EINVAL);
    assert_null(b);
    assert_non_null(strstr(kgm_error(), "metasgd"));
    kgm_meta_free(a);
    unlink(path);
}

/* ---- bad input and interruption ---- */
static void refuses_bad_input_and_stops_on_interrupt(void **state)
{
    (void)state;
    kgm_mlp m;
    const int sizes[] = { 1, 8, 1 }, bad[] = { 1, 0, 1 };
    assert_int_equal(kgm_mlp_init(&m, 2, bad, KGM_ACT_RELU, KGM_LOSS_MSE), KGM_EINVAL);
    assert_int_equal(kgm_mlp_init(&m, 2, sizes, KGM_ACT_RELU, KGM_LOSS_MSE), 0);
    kgm_meta_config c = kgm_meta_config_default();
    kgm_meta *mt = NULL;
    c.inner_steps = 0;
    assert_int_equal(kgm_meta_new(&mt, &m, &c, NULL, 0), KGM_EINVAL);
    assert_null(mt);
    assert_non_null(strstr(kgm_error(), "inner_steps"));
    c = kgm_meta_config_default();
    c.iterations = 50; c.meta_batch = 4;
    assert_int_equal(kgm_meta_new(&mt, &m, &c, NULL, 0), 0);
    /* A source with conditioning does not fit a learner without it. */
    kgm_linear lc = { 1 }, l0 = { 0 };
    kgm_tasksrc src;
    kgm_tasksrc_linear(&src, &lc);
    assert_int_equal(kgm_meta_train(mt, &src, NULL), KGM_EINVAL);
    /* Interrupted before the first iteration: KGM_EINTR, parameters untouched. */
    kgm_tasksrc_linear(&src, &l0);
    size_t n = kgm_meta_n_params(mt);
    float *before = malloc(n * 4);
    memcpy(before, kgm_meta_params(mt), n * 4);
    kgm_meta_stats st;
    kgm_interrupt_raise();
    assert_int_equal(kgm_meta_train(mt, &src, &st), KGM_EINTR);
    kgm_interrupt_clear();
    assert_int_equal(st.iterations_done, 0);
    assert_memory_equal(before, kgm_meta_params(mt), n * 4);
    free(before);
    kgm_meta_free(mt);
}

/* Adam's first step moves every parameter with a nonzero gradient by its learning rate: theta*
 * by outer_lr, the init stage's parameters by cond_lr (outer_lr when cond_lr is 0). */
static void max_step(const float *before, const float *after, size_t from, size_t to, double *out)
{
    *out = 0;
    for (size_t i = from; i < to; i++) if (fabs(after[i] - before[i]) > *out) *out = fabs(after[i] - before[i]);
}

/* Trains mt on src (its configured iterations); the largest move of meta-parameters [0, P)
 * (theta*) into *theta_step and of [P, n) (what follows theta*) into *rest_step. */
static void steps_of_blocks(kgm_meta *mt, const kgm_tasksrc *src, size_t P, double *theta_step, double *rest_step)
{
    size_t n = kgm_meta_n_params(mt);
    float *before = malloc(n * sizeof *before);
    assert_non_null(before);
    memcpy(before, kgm_meta_params(mt), n * sizeof *before);
    assert_int_equal(kgm_meta_train(mt, src, NULL), 0);
    max_step(before, kgm_meta_params(mt), 0, P, theta_step);
    max_step(before, kgm_meta_params(mt), P, n, rest_step);
    free(before);
}

/* Fails unless kgm_meta_new refuses config c (FiLM with a 2-wide task vector when film) with
 * an error naming `what`. */
static void refused_config(const kgm_meta_config *c, int film, const char *what)
{
    kgm_mlp m;
    const int sizes[] = { 1, 8, 1 };
    assert_int_equal(kgm_mlp_init(&m, 2, sizes, KGM_ACT_RELU, KGM_LOSS_MSE), 0);
    kgm_meta *mt = NULL;
    assert_int_equal(kgm_meta_new(&mt, &m, c, film ? &kgm_init_film : NULL, film ? 2 : 0), KGM_EINVAL);
    assert_non_null(strstr(kgm_error(), what));
}

/* The one-step learner of the two tests below: a 1-16-16-1 tanh net (m), config c with one
 * iteration, meta-batch 4, outer rate 1e-3 (the rest as given), init stage init. */
static kgm_meta *one_step_learner(kgm_meta_config c, const kgm_init_stage *init, int cond_dim, kgm_mlp *m)
{
    const int sizes[] = { 1, 16, 16, 1 };
    assert_int_equal(kgm_mlp_init(m, 3, sizes, KGM_ACT_TANH, KGM_LOSS_MSE), 0);
    c.iterations = 1; c.meta_batch = 4; c.outer_lr = 1e-3f;
    kgm_meta *mt = NULL;
    assert_int_equal(kgm_meta_new(&mt, m, &c, init, cond_dim), 0);
    return mt;
}

static void conditioner_has_its_own_learning_rate(void **state)
{
    (void)state;
    for (int own = 0; own < 2; own++) {
        kgm_mlp m;
        kgm_meta_config c = kgm_meta_config_default();
        c.cond_lr = own ? 2e-2f : 0.0f;
        kgm_meta *mt = one_step_learner(c, &kgm_init_film, 2, &m);
        kgm_linear lc = { 1 };
        kgm_tasksrc src;
        kgm_tasksrc_linear(&src, &lc);
        double theta_step, phi_step;
        steps_of_blocks(mt, &src, m.n_params, &theta_step, &phi_step);
        assert_true(fabs(theta_step - 1e-3) < 1e-5);
        assert_true(fabs(phi_step - (own ? 2e-2 : 1e-3)) < (own ? 2e-4 : 1e-5));
        kgm_meta_free(mt);
    }
    kgm_meta_config c = kgm_meta_config_default();
    c.cond_lr = -1.0f;
    refused_config(&c, 1, "conditioning learning rate");
}

/* Meta-SGD's inner rates move at rate_lr on Adam's first step (outer_lr when rate_lr is 0),
 * theta* at outer_lr either way. */
static void metasgd_rates_have_their_own_learning_rate(void **state)
{
    (void)state;
    for (int own = 0; own < 2; own++) {
        kgm_mlp m;
        kgm_meta_config c = kgm_meta_config_default();
        c.learner = KGM_METASGD; c.rate_lr = own ? 1e-5f : 0.0f;
        kgm_meta *mt = one_step_learner(c, NULL, 0, &m);
        kgm_linear lin = { 0 };
        kgm_tasksrc src;
        kgm_tasksrc_linear(&src, &lin);
        assert_int_equal(kgm_meta_n_params(mt), 2 * m.n_params);
        double theta_step, rate_step;
        steps_of_blocks(mt, &src, m.n_params, &theta_step, &rate_step);
        assert_true(fabs(theta_step - 1e-3) < 1e-5);
        assert_true(fabs(rate_step - (own ? 1e-5 : 1e-3)) < (own ? 1e-7 : 1e-5));
        kgm_meta_free(mt);
    }
    kgm_meta_config c = kgm_meta_config_default();
    c.rate_lr = -1e-3f;
    refused_config(&c, 0, "rate_lr");
}

/* Rates conditioned on e(t): with the map at 0 the meta-gradient is plain Meta-SGD's, bit for
 * bit, plus a nonzero one for the map; a trained-looking map changes adaptation and survives a
 * model file; the option needs Meta-SGD and a conditioning vector. */
static void conditioned_rates_extend_metasgd(void **state)
{
    (void)state;
    kgm_meta *plain = small_learner(KGM_METASGD, 2, 0.3f, &kgm_init_film, 2, 1, 0);
    kgm_meta *cr = small_learner(KGM_METASGD, 2, 0.3f, &kgm_init_film, 2, 1, 1);
    const size_t n0 = kgm_meta_n_params(plain), n = kgm_meta_n_params(cr), P = kgm_meta_net(cr)->n_params;
    assert_int_equal(n, n0 + (16 + 16 + 1) * 2);
    assert_memory_equal(kgm_meta_params(plain), kgm_meta_params(cr), n0 * 4);
    kgm_episode t;
    sample_linear(&t, 1, 3);
    float *g0 = malloc(n0 * 4), *g = malloc(n * 4), *fast0 = malloc(P * 4), *fast = malloc(P * 4);
    float l0, l;
    assert_int_equal(kgm_meta_task_grad(plain, &t, g0, &l0), 0);
    assert_int_equal(kgm_meta_task_grad(cr, &t, g, &l), 0);
    assert_true(l == l0);
    assert_memory_equal(g0, g, n0 * 4);
    assert_true(dot(g + n0, g + n0, n - n0) > 1e-12);

    assert_int_equal(kgm_meta_adapt(cr, &t, 3, fast0), 0);
    random_vec(kgm_meta_params(cr) + n0, n - n0, 9, 1.0);
    assert_int_equal(kgm_meta_adapt(cr, &t, 3, fast), 0);
    assert_memory_not_equal(fast0, fast, P * 4);
    char path[64];
    assert_int_equal(tmpfile_make(path, sizeof path, "test_meta", NULL), 0);
    assert_int_equal(kgm_meta_save(cr, path), 0);
    kgm_meta *back = NULL;
    assert_int_equal(kgm_meta_load(&back, path, NULL), 0);
    assert_int_equal(kgm_meta_n_params(back), n);
    assert_memory_equal(kgm_meta_params(back), kgm_meta_params(cr), n * 4);
    assert_int_equal(kgm_meta_adapt(back, &t, 3, fast0), 0);
    assert_memory_equal(fast0, fast, P * 4);
    unlink(path);

    kgm_meta_config c = kgm_meta_config_default();
    c.cond_rates = 1;   /* MAML has no rates to condition */
    refused_config(&c, 1, "conditioned inner rates");
    c.learner = KGM_METASGD;   /* nor is there an e(t) without conditioning */
    refused_config(&c, 0, "conditioned inner rates");
    kgm_episode_release(&t);
    free(g0); free(g); free(fast0); free(fast);
    kgm_meta_free(back); kgm_meta_free(plain); kgm_meta_free(cr);
}

/* Mean squared error of fast weights on t's support set. */
static double support_mse(kgm_meta *mt, const kgm_episode *t, const float *fast)
{
    float out[16];
    assert_true(t->n_support <= 16);
    assert_int_equal(kgm_meta_predict(mt, fast, t->xs, t->n_support, out), 0);
    double s = 0.0;
    for (int i = 0; i < t->n_support; i++) s += (out[i] - t->ys[i]) * (double)(out[i] - t->ys[i]);
    return s / t->n_support;
}

/* At an inner rate where plain steps blow up, backtracking adaptation lowers the support loss
 * step after step; off again, adaptation is the plain one. */
static void backtracking_never_raises_the_support_loss(void **state)
{
    (void)state;
    kgm_meta *mt = small_learner(KGM_MAML, 1, 8.0f, NULL, 0, 1, 0);
    const size_t P = kgm_meta_net(mt)->n_params;
    float *fast = malloc(P * 4), *plain = malloc(P * 4);
    kgm_episode t;
    sample_linear(&t, 0, 2);
    assert_int_equal(kgm_meta_adapt(mt, &t, 0, fast), 0);
    const double start = support_mse(mt, &t, fast);
    assert_int_equal(kgm_meta_adapt(mt, &t, 10, plain), 0);
    const double diverged = support_mse(mt, &t, plain);
    print_message("support MSE %.4g at the start, %.4g after 10 plain steps\n", start, diverged);
    assert_false(diverged < start);   /* too large a rate: no progress (or NaN) */
    for (kgm_backtrack mode = KGM_BACKTRACK_HALVE; mode <= KGM_BACKTRACK_GROW; mode++) {
        kgm_meta_set_backtrack(mt, mode);
        double last = start;
        for (int k = 1; k <= 10; k++) {
            assert_int_equal(kgm_meta_adapt(mt, &t, k, fast), 0);
            double l = support_mse(mt, &t, fast);
            assert_true(l <= last);
            last = l;
        }
        print_message("backtracking (mode %d): %.4g after 10 steps\n", (int)mode, last);
        assert_true(last < 0.5 * start);
    }
    kgm_meta_set_backtrack(mt, KGM_BACKTRACK_OFF);
    assert_int_equal(kgm_meta_adapt(mt, &t, 10, fast), 0);
    assert_memory_equal(fast, plain, P * 4);
    kgm_episode_release(&t);
    free(fast); free(plain);
    kgm_meta_free(mt);
}

/* KGM_BACKTRACK_GROW at a rate where every step lowers the support loss: step j is a plain
 * step at min(2^j, KGM_BACKTRACK_MAX_SCALE) times the rate, bit for bit (the scales are powers
 * of two), and 10 such steps end lower than 10 at the rate itself. */
static void growing_steps_double_the_rates_up_to_the_cap(void **state)
{
    (void)state;
    const float alpha = 0.002f;
    kgm_meta *mt = small_learner(KGM_MAML, 1, alpha, NULL, 0, 1, 0);
    const size_t P = kgm_meta_net(mt)->n_params;
    kgm_episode t;
    sample_linear(&t, 0, 2);
    float *grown = malloc(P * 4), *halved = malloc(P * 4), *fast = malloc(P * 4);
    kgm_meta_set_backtrack(mt, KGM_BACKTRACK_GROW);
    assert_int_equal(kgm_meta_adapt(mt, &t, 10, grown), 0);
    kgm_meta_set_backtrack(mt, KGM_BACKTRACK_HALVE);
    assert_int_equal(kgm_meta_adapt(mt, &t, 10, halved), 0);

    /* the same path by hand: one plain step of a learner at rate alpha * scale from fast */
    memcpy(fast, kgm_meta_params(mt), P * 4);
    double last = support_mse(mt, &t, fast);
    float scale = 1.0f;
    for (int j = 0; j < 10; j++, scale = fminf(2.0f * scale, KGM_BACKTRACK_MAX_SCALE)) {
        kgm_meta *step = small_learner(KGM_MAML, 1, alpha * scale, NULL, 0, 1, 0);
        memcpy(kgm_meta_params(step), fast, P * 4);
        assert_int_equal(kgm_meta_adapt(step, &t, 1, fast), 0);
        double l = support_mse(step, &t, fast);
        assert_true(l < last);   /* the premise: no step is rejected */
        last = l;
        kgm_meta_free(step);
    }
    assert_true(scale == KGM_BACKTRACK_MAX_SCALE);
    assert_memory_equal(grown, fast, P * 4);
    const double lh = support_mse(mt, &t, halved), lg = support_mse(mt, &t, grown);
    print_message("support MSE after 10 steps at rate %g: %.4g halving only, %.4g growing\n", alpha, lh, lg);
    assert_true(lg < 0.9 * lh);
    kgm_episode_release(&t);
    free(grown); free(halved); free(fast);
    kgm_meta_free(mt);
}

/* Meta-training's inner loop with backtracking (inner_backtrack): at an inner rate where plain
 * steps blow up, its query loss stays small and its meta-gradient is exact through the accepted,
 * halved steps (the loss jumps where a halving flips, so the stencil is short and its direction
 * random: along the gradient at h = 2e-3 it crosses flips); at a rate where every step already
 * lowers the support loss, halving is the plain loop bit for bit, and growing (inner_backtrack
 * 2: the doublings are constants of the path too) goes further with an exact meta-gradient. */
static void backtracked_inner_loop_has_exact_metagradients(void **state)
{
    (void)state;
    const kgm_learner learners[] = { KGM_MAML, KGM_METASGD };
    for (int li = 0; li < 2; li++)
    for (int mode = KGM_BACKTRACK_HALVE; mode <= KGM_BACKTRACK_GROW; mode++) {
        print_message("inner_backtrack %d\n", mode);
        kgm_meta_config c = small_config(learners[li], 3, 4.0f, 1, 0);
        kgm_meta *plain = small_learner_with(&c, &kgm_init_film, 2);
        c.inner_backtrack = mode;
        kgm_meta *bt = small_learner_with(&c, &kgm_init_film, 2);
        size_t n = kgm_meta_n_params(bt);
        float *noise = malloc(n * 4), *grad = malloc(n * 4), *grad2 = malloc(n * 4);
        random_vec(noise, n, 5, 0.2);
        const size_t P = kgm_meta_net(bt)->n_params;
        for (size_t i = P; i < n; i++) kgm_meta_params(bt)[i] += noise[i];
        memcpy(kgm_meta_params(plain), kgm_meta_params(bt), n * 4);
        kgm_episode t;
        sample_linear(&t, 1, 1);
        float lp, lb;
        assert_int_equal(kgm_meta_task_grad(plain, &t, grad, &lp), 0);
        assert_int_equal(kgm_meta_task_grad(bt, &t, grad, &lb), 0);
        print_message("%s: query loss after 3 steps at rate 4: plain %.4g, backtracked %.4g\n",
                      kgm_learner_name(learners[li]), lp, lb);
        assert_false(lp < 10.0f * lb);   /* plain diverged (or NaN); backtracking did not */
        for (uint64_t s = 11; s < 14; s++) {
            double fd, an;
            directional_h(bt, &t, s, noise, 0, 2e-4, &fd, &an, grad);
            print_message("backtracked %s: fd %.6g an %.6g\n", kgm_learner_name(learners[li]), fd, an);
            assert_true(fabs(an) > 1e-3);
            assert_true(fabs(fd - an) < 1e-2 * fabs(an) + 2e-4);
        }
        kgm_meta_free(plain); kgm_meta_free(bt);
        /* At a small rate nothing is halved: halving gives the same numbers as the plain loop;
         * growing does not (its steps double), and its meta-gradient is exact too. */
        c = small_config(learners[li], 3, 0.01f, 1, 0);
        plain = small_learner_with(&c, &kgm_init_film, 2);
        c.inner_backtrack = mode;
        bt = small_learner_with(&c, &kgm_init_film, 2);
        for (size_t i = P; i < n; i++) kgm_meta_params(bt)[i] += noise[i];
        memcpy(kgm_meta_params(plain), kgm_meta_params(bt), n * 4);
        assert_int_equal(kgm_meta_task_grad(plain, &t, grad, &lp), 0);
        assert_int_equal(kgm_meta_task_grad(bt, &t, grad2, &lb), 0);
        if (mode == KGM_BACKTRACK_HALVE) {
            assert_true(lp == lb);
            assert_memory_equal(grad, grad2, n * 4);
        } else {
            assert_true(lb < lp);
            double fd, an;
            directional_h(bt, &t, 21, noise, 0, 2e-4, &fd, &an, grad);
            print_message("grown %s at a small rate: fd %.6g an %.6g\n", kgm_learner_name(learners[li]), fd, an);
            assert_true(fabs(fd - an) < 1e-2 * fabs(an) + 2e-4);
        }
        kgm_episode_release(&t);
        free(noise); free(grad); free(grad2);
        kgm_meta_free(plain); kgm_meta_free(bt);
    }
}


/* The multi-step loss (msl_steps): at the learner's first step every inner step's query loss
 * weighs 1/k, so loss and meta-gradient are the means of those of learners that stop after
 * 1, 2, ..., k steps (and finite differences agree); after msl_steps outer steps only the last
 * step's loss is left, bit for bit the plain learner's. First-order learners are refused. */
static void multistep_loss_weighs_every_inner_step(void **state)
{
    (void)state;
    const kgm_learner learners[] = { KGM_MAML, KGM_METASGD };
    for (int li = 0; li < 2; li++) {
        kgm_meta_config c = small_config(learners[li], 3, 0.3f, 1, 0);
        c.msl_steps = 2;
        c.iterations = 2;   /* kgm_meta_train below */
        kgm_meta *msl = small_learner_with(&c, &kgm_init_film, 2);
        const size_t n = kgm_meta_n_params(msl), P = kgm_meta_net(msl)->n_params;
        float *noise = malloc(n * 4), *grad = malloc(n * 4), *gj = malloc(n * 4), *mean = calloc(n, 4);
        random_vec(noise, n, 5, 0.2);
        for (size_t i = P; i < n; i++) kgm_meta_params(msl)[i] += noise[i];
        kgm_episode t;
        sample_linear(&t, 1, 1);
        float loss, lj;
        double mean_loss = 0.0;
        assert_int_equal(kgm_meta_task_grad(msl, &t, grad, &loss), 0);
        for (int k = 1; k <= 3; k++) {
            kgm_meta_config ck = small_config(learners[li], k, 0.3f, 1, 0);
            kgm_meta *one = small_learner_with(&ck, &kgm_init_film, 2);
            memcpy(kgm_meta_params(one), kgm_meta_params(msl), n * 4);
            assert_int_equal(kgm_meta_task_grad(one, &t, gj, &lj), 0);
            mean_loss += lj / 3.0;
            for (size_t i = 0; i < n; i++) mean[i] += gj[i] / 3.0f;
            kgm_meta_free(one);
        }
        print_message("%s: multi-step loss %.6g, mean of the three %.6g\n", kgm_learner_name(learners[li]), loss, mean_loss);
        assert_true(fabs(loss - mean_loss) < 1e-5 * mean_loss);
        double worst = 0.0, scale = sqrt(dot(mean, mean, n));
        for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(grad[i] - mean[i]));
        assert_true(worst < 1e-4 * scale);
        for (uint64_t s = 11; s < 13; s++) {
            double fd, an;
            directional(msl, &t, s, NULL, 0, &fd, &an, gj);
            assert_true(fabs(an) > 1e-3);
            assert_true(fabs(fd - an) < 1e-2 * fabs(an) + 2e-4);
        }
        /* Two outer steps (msl_steps = 2): the last step's loss alone. */
        kgm_linear lin = { 1 };
        kgm_tasksrc src;
        kgm_tasksrc_linear(&src, &lin);
        assert_int_equal(kgm_meta_train(msl, &src, NULL), 0);
        kgm_meta_config cp = small_config(learners[li], 3, 0.3f, 1, 0);
        kgm_meta *plain = small_learner_with(&cp, &kgm_init_film, 2);
        memcpy(kgm_meta_params(plain), kgm_meta_params(msl), n * 4);
        assert_int_equal(kgm_meta_task_grad(msl, &t, grad, &loss), 0);
        assert_int_equal(kgm_meta_task_grad(plain, &t, gj, &lj), 0);
        assert_true(loss == lj);
        assert_memory_equal(grad, gj, n * 4);
        kgm_episode_release(&t);
        free(noise); free(grad); free(gj); free(mean);
        kgm_meta_free(plain); kgm_meta_free(msl);
    }
    kgm_meta_config c = small_config(KGM_FOMAML, 3, 0.3f, 1, 0);
    c.msl_steps = 10;
    refused_config(&c, 0, "second-order");
    c.learner = KGM_MAML;
    c.msl_steps = -1;
    refused_config(&c, 0, "msl_steps");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hvp_matches_finite_differences),
        cmocka_unit_test(second_order_metagradients_match_fd),
        cmocka_unit_test(classification_metagradient_matches_fd),
        cmocka_unit_test(fomaml_differs_from_maml),
        cmocka_unit_test(maml_matches_the_tape),
        cmocka_unit_test(same_seed_same_numbers_any_threads),
        cmocka_unit_test(every_learner_learns_linear_tasks),
        cmocka_unit_test(checkpoint_round_trips_the_best_state),
        cmocka_unit_test(refuses_bad_input_and_stops_on_interrupt),
        cmocka_unit_test(conditioner_has_its_own_learning_rate),
        cmocka_unit_test(metasgd_rates_have_their_own_learning_rate),
        cmocka_unit_test(conditioned_rates_extend_metasgd),
        cmocka_unit_test(backtracking_never_raises_the_support_loss),
        cmocka_unit_test(growing_steps_double_the_rates_up_to_the_cap),
        cmocka_unit_test(backtracked_inner_loop_has_exact_metagradients),
        cmocka_unit_test(multistep_loss_weighs_every_inner_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
