/* models/meta.h - meta-learners over MLP task networks, behind one interface: meta-train on a
 * stream of tasks, adapt to a task's support set, predict, evaluate on query sets.
 *
 * Learners: MAML (exact second-order meta-gradient through k inner SGD steps), first-order
 * MAML, Meta-SGD (per-parameter inner learning rates, meta-learned), ANIL (the inner loop
 * adapts only the last layer; second order), Reptile (outer "gradient" theta0 - theta_k).
 *
 * Meta-parameters, one flat buffer: [theta* (P) | inner rates (P, Meta-SGD only) | init-stage
 * parameters | rate map (Meta-SGD with cond_rates only)]. The initial fast weights of a task are theta0(t) = init(theta*, phi, e(t)),
 * where e(t) is the task's conditioning vector and phi the init stage's parameters; the
 * meta-gradient reaches phi through the inner loop by the stage's vector-Jacobian product.
 * Stages: none (theta0 = theta*), shift (theta0 = theta* + U e), FiLM (per-hidden-unit scale
 * and shift from e). A stage is a forward and its vector-Jacobian product (by hand, checked
 * against finite differences through the whole inner loop in tests/test_meta.c).
 *
 * Training: meta-batches spread over pthreads, each task's meta-gradient into its own buffer,
 * summed in task order, so the same seed gives the same numbers with any thread count; the
 * task of (iteration i, slot j) is drawn from the stream keyed (seed, i, j). Adam outside,
 * with its own learning rate for the init stage's parameters (cond_lr).
 *
 * Ownership: kgm_meta is returned new by kgm_meta_new and freed by kgm_meta_free; it copies
 * the network description and config; task sources are borrowed for the call. */
#ifndef KGM_META_H
#define KGM_META_H

#include <stddef.h>
#include <stdint.h>

#include "mlp.h"
#include "tasksrc.h"

typedef enum { KGM_MAML, KGM_FOMAML, KGM_METASGD, KGM_ANIL, KGM_REPTILE, KGM_LEARNER_COUNT } kgm_learner;
int kgm_learner_parse(const char *s, kgm_learner *out);   /* "maml", "fomaml", ... */
const char *kgm_learner_name(kgm_learner k);

/* ---- the init stage: theta0(t) from the meta-parameters and e(t) ---- */
typedef struct kgm_init_stage {
    const char *name;
    size_t (*n_params)(const kgm_mlp *m, int cond_dim);
    void (*init_params)(const kgm_mlp *m, int cond_dim, float *phi);   /* starting phi */
    /* theta0 = init(theta*, phi, e) */
    void (*forward)(const kgm_mlp *m, int cond_dim, const float *theta_star, const float *phi,
                    const float *e, float *theta0);
    /* Given v0 = dL/dtheta0, add dL/dtheta* into g_theta and dL/dphi into g_phi. */
    void (*backward)(const kgm_mlp *m, int cond_dim, const float *theta_star, const float *phi,
                     const float *e, const float *v0, float *g_theta, float *g_phi);
} kgm_init_stage;
extern const kgm_init_stage kgm_init_none;    /* theta0 = theta* */
extern const kgm_init_stage kgm_init_shift;   /* theta0 = theta* + U e, U (P, cond_dim) from 0 */
/* FiLM: per-hidden-unit scale 1 + tanh(G e) and shift B e of each hidden layer's pre-activations,
 * folded into that layer's initial weights and bias; G, B start at 0. */
extern const kgm_init_stage kgm_init_film;
const kgm_init_stage *kgm_init_find(const char *name);   /* "none", "shift", "film"; NULL if unknown */

typedef struct kgm_meta_config {
    kgm_learner learner;
    int inner_steps;        /* k inner SGD steps in meta-training, >= 1 */
    float alpha;            /* inner learning rate (Meta-SGD: the rates' starting value) */
    int meta_batch;         /* tasks per meta-iteration */
    float outer_lr;         /* Adam learning rate of theta* (and of the inner rates, unless rate_lr) */
    float cond_lr;          /* Adam learning rate of the init stage's parameters (U, or FiLM's
                             * G and B); 0: outer_lr. The map from e(t) to theta0(t) often needs
                             * a larger rate than theta* (bench/bench_sixfam.c) */
    float rate_lr;          /* Adam learning rate of Meta-SGD's inner rates; 0: outer_lr. Adam's
                             * early steps move a rate by about its learning rate, so with rates
                             * starting at alpha = outer_lr they halve, double or turn negative
                             * within a few iterations (bench_sixfam: divergence) */
    /* Meta-SGD with conditioning only: each unit's inner rates (a row of W_l and its bias)
     * scaled by 1 + tanh(R_u e(t)), R learned at cond_lr from 0, so a task's family can pick
     * its own step sizes (one set of rates must otherwise serve every family). 0: off. */
    int cond_rates;
    /* Meta-training's inner steps backtrack on the support loss as kgm_meta_set_backtrack's test
     * steps do: a step that does not lower it is retried at half the task's rates (kept halved
     * for its later steps; after 30 halvings the step is skipped). The meta-gradient is exact
     * through the accepted steps (the halvings are constants of the path). 0: off, 1: halving
     * (KGM_BACKTRACK_HALVE), 2: also doubling after a step accepted at its first try, up to
     * 4 times the rates (KGM_BACKTRACK_GROW), so that training steps as grow's test steps do. */
    int inner_backtrack;
    /* Multi-step loss (MAML++, Antoniou et al. 2019): the meta-loss is the weighted sum of the
     * query losses after every inner step, not after the last only. Step j < k weighs
     * (1 - f) / k and the last 1 - (k - 1)(1 - f) / k, f = min(1, t / msl_steps) at the
     * learner's Adam step t: uniform at first, the last step's loss alone after msl_steps outer
     * steps. The reported loss is that weighted sum. Second-order learners only (maml, metasgd,
     * anil). 0: off. */
    int msl_steps;
    int n_support, n_query; /* examples per task in meta-training */
    int iterations;
    int threads;            /* >= 1 */
    uint64_t seed;
    int val_every;          /* validate every this many iterations; 0: never */
    int val_tasks;          /* held-out tasks per validation */
    const char *checkpoint; /* NULL, or a model file rewritten with the best state at each
                             * validation improvement and at the end (borrowed string) */
    /* Guards of the outer step, both off (0) by default, so the numbers of a run without them
     * do not change. As theta* grows, a fixed inner rate can make a task's inner SGD steps
     * diverge (its support loss grows step after step). On bench_sixfam FiLM such a task gave
     * a meta-batch a meta-gradient of norm 4e14 (usually 2-10) at iteration 110,088: Adam's
     * second moments of the parameters it touched rose to ~1e29 and froze them for tens of
     * thousands of iterations; at 143,823 one overflowed to an infinite loss. */
    float clip_norm;        /* > 0: scale the meta-batch's mean meta-gradient (all meta-parameters)
                             * down to this L2 norm when it is longer, before Adam */
    int skip_nonfinite;     /* > 0: a meta-batch whose loss or meta-gradient is not finite leaves
                             * the parameters and Adam's state as they were and training goes on;
                             * this many such batches in a row stop it (KGM_ENUMERIC).
                             * 0: the first one stops training */
    /* Decoupled weight decay (AdamW, Loshchilov & Hutter 2019) on theta* only, 0 (off) by
     * default: each outer step theta* <- theta* (1 - lr weight_decay), lr the step's outer
     * rate, then Adam's step. The guards above treat the symptom of theta*'s drift (bench_sixfam
     * FiLM: |theta*| 5.7 -> 20.6 in 50k iterations, mostly the output layer); decay counters the
     * drift itself, but there the drift is also what fits the large-scale tasks: at 70k
     * iterations decay 0.01 / 0.1 / 1 ended at |theta*| 21.2 / 11.8 / 6.3 and test MSE
     * 0.517 / 0.689 / 1.284 (0.498 without). The inner rates and the init stage's map are not
     * decayed: the map starts at 0 (no conditioning) and decaying it would pull every task
     * toward the unconditioned init. */
    float weight_decay;     /* >= 0, finite */
    /* Cosine decay of every Adam rate (outer_lr, cond_lr, rate_lr, and so of the decay above)
     * over the learner's first lr_decay_steps outer steps, from the rate to lr_floor times it,
     * then held there. Counted in Adam steps taken by this kgm_meta, so it spans successive
     * kgm_meta_train calls (the shell's chunks); skipped meta-batches do not count. 0: off.
     * bench_sixfam FiLM with the guards, 210k iterations: to a floor of 0.1, |theta*| 31.5, 3
     * skipped meta-batches, test MSE 0.455; at a constant rate 42.5, 19 and 0.451 (paired
     * difference +0.004 +- 0.028): it slows the drift but does not improve the fit. */
    int lr_decay_steps;     /* >= 0 */
    float lr_floor;         /* in [0, 1] */
} kgm_meta_config;
/* The MAML paper's sinusoid protocol: maml, 1 step, alpha 0.01, batch 25, Adam 1e-3, K = 10. */
kgm_meta_config kgm_meta_config_default(void);

typedef struct kgm_meta kgm_meta;
/* init NULL means kgm_init_none (also kgm_init_find("none")). cond_dim: length of e(t) (0 without conditioning).
 * Errors: KGM_EINVAL (bad config, named), KGM_ENOMEM. */
int  kgm_meta_new(kgm_meta **out, const kgm_mlp *net, const kgm_meta_config *cfg,
                  const kgm_init_stage *init, int cond_dim);
void kgm_meta_free(kgm_meta *mt);           /* NULL is a no-op */

float *kgm_meta_params(kgm_meta *mt);       /* the meta-parameters (borrowed view) */
size_t kgm_meta_n_params(const kgm_meta *mt);
const kgm_mlp *kgm_meta_net(const kgm_meta *mt);
const kgm_meta_config *kgm_meta_cfg(const kgm_meta *mt);   /* its settings (borrowed) */
int kgm_meta_cond_dim(const kgm_meta *mt);   /* length of e(t) it conditions on (0: none) */
const kgm_init_stage *kgm_meta_init_stage(const kgm_meta *mt);   /* kgm_init_none when unconditioned */

typedef struct kgm_meta_stats {
    int iterations_done;
    double last_loss;       /* mean query loss of the last meta-batch */
    double best_val;        /* best validation loss (after inner_steps), or -1 if none */
    int best_iteration;
    double seconds;
    int skipped;            /* meta-batches skipped as not finite (skip_nonfinite) */
    int clipped;            /* meta-gradients scaled down (clip_norm) */
    double max_grad_norm;   /* largest L2 norm of a finite meta-batch gradient, before clipping */
} kgm_meta_stats;
/* Meta-train cfg->iterations iterations on tasks from src (iterations_done counts skipped
 * meta-batches too). With validation, the best meta-parameters are kept at the end. Polls
 * kgm_interrupted(): stops, keeps the best (or last) state, returns KGM_EINTR. A loss or
 * meta-gradient that is not finite (beyond what skip_nonfinite allows): KGM_ENUMERIC,
 * parameters as before that iteration. last_loss is the mean query loss of the last
 * meta-batch that updated the parameters. stats may be NULL. */
int kgm_meta_train(kgm_meta *mt, const kgm_tasksrc *src, kgm_meta_stats *stats);

/* Save the network, the learner's settings and the meta-parameters as a model file
 * (atomically). Load rebuilds a learner from one: threads and training settings come from cfg
 * when non-NULL, otherwise from the file; cfg's learner and inner settings must match. */
int kgm_meta_save(const kgm_meta *mt, const char *path);
int kgm_meta_load(kgm_meta **out, const char *path, const kgm_meta_config *cfg);

/* One task's meta-gradient (meta-parameter layout, overwritten) and query loss after the
 * inner loop. Exposed for gradient checks. Not thread-safe on the same kgm_meta. */
int kgm_meta_task_grad(kgm_meta *mt, const kgm_episode *t, float *grad, float *loss);

/* Fast weights (n_params of the network) after `steps` inner steps on t's support set. */
int kgm_meta_adapt(kgm_meta *mt, const kgm_episode *t, int steps, float *fast);
/* Adaptation (kgm_meta_adapt, kgm_meta_evaluate) with backtracking, off by default: a step that
 * does not lower the task's support loss is undone and retried at half the rates, which stay
 * halved for the task's later steps; 30 halvings, then the step is skipped. Uses the support set
 * only. Meta-training's inner loop is unchanged. With learned rates (Meta-SGD) a few test tasks
 * can diverge in 20 steps though none did in training's 5 (bench_sixfam: MSE ~1e18).
 * KGM_BACKTRACK_GROW also doubles the task's rates after a step accepted at its first try, up to
 * KGM_BACKTRACK_MAX_SCALE times the learner's own, so a task whose rates are too small for it
 * (20 test steps of rates learned for 5) goes further in the same steps. */
typedef enum { KGM_BACKTRACK_OFF, KGM_BACKTRACK_HALVE, KGM_BACKTRACK_GROW } kgm_backtrack;
#define KGM_BACKTRACK_MAX_SCALE 4.0f
void kgm_meta_set_backtrack(kgm_meta *mt, kgm_backtrack mode);
/* Network outputs at fast weights for x (n rows). */
int kgm_meta_predict(kgm_meta *mt, const float *fast, const float *x, int n, float *out);

/* Mean query loss over n_tasks tasks (stream keyed (seed, domain 3, j)) after 0..max_steps
 * inner steps with step size alpha (<= 0: the learner's own rates), each with a 95%
 * confidence interval half-width (1.96 sd / sqrt(n)). mean and ci have max_steps + 1
 * entries. */
typedef struct kgm_eval_spec {
    int n_tasks, max_steps, n_support, n_query;
    float alpha;
    uint64_t seed;
} kgm_eval_spec;
int kgm_meta_evaluate(kgm_meta *mt, const kgm_tasksrc *src, const kgm_eval_spec *spec,
                      double *mean, double *ci);

/* Floating-point operations of one meta-iteration under cfg (counted from shapes). */
double kgm_meta_flops_per_iteration(const kgm_meta *mt);

/* Mean and 95% CI half-width of x[0..n) (accumulated in double). */
void kgm_stats_mean_ci(const double *x, int n, double *mean, double *ci95);

#endif
