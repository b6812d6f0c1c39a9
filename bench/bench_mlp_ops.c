/* bench/bench_mlp_ops.c - microseconds per call for a 1-40-40-1 ReLU MLP on a batch of 10 points
 * (MSE loss), on our tape and on the PyTorch reference in the same run:
 *   fwd_bwd      forward + backward to the flat parameter vector
 *   fwd_bwd_2nd  the MAML-style second-order step: inner gradient with KGM_CREATE_GRAPH, fast
 *                weights theta - 0.01 g, query loss, backward to the original parameters
 * Then a short training run exercises the rest of the core end to end (and under valgrind):
 * second-order MAML on sine tasks (amplitude 0.1..5, phase 0..pi, as in Finn et al. 2017) with
 * Adam and clipping, post-adaptation query loss before and after, and a model file round trip.
 * Usage: bench_mlp_ops [ITERATIONS] [--train META_ITERATIONS] [--torch PATH | --no-torch]
 * The reference script is found by --torch, else $KGM_TORCH_BENCH, else ../shared/bench/
 * torch_mlp_ops.py beside the source tree (a clone without it says so and prints ours only). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blascore.h"
#include "error.h"
#include "modelfile.h"
#include "optim.h"
#include "rng.h"
#include "tape.h"
#include "tensor.h"

enum { H = 40, B = 10 };

typedef struct mlp {
    kgm_layout layout;
    int w1, b1, w2, b2, w3, b3;    /* offsets; weights are (out, in) as in torch */
    float *theta, *grad;
    float xs[B], ys[B], xq[B], yq[B];
} mlp;

static kgm_node *loss(kgm_tape *t, const mlp *m, kgm_node *th, const float *x, const float *y)
{
    kgm_node *in = kgm_tape_leaf(t, x, B, 1, 0);
    kgm_node *h = kgm_matmul_t(t, in, kgm_view(t, th, m->w1, H, 1), 0, 1);
    h = kgm_relu(t, kgm_bias_add(t, h, kgm_view(t, th, m->b1, 1, H)));
    h = kgm_matmul_t(t, h, kgm_view(t, th, m->w2, H, H), 0, 1);
    h = kgm_relu(t, kgm_bias_add(t, h, kgm_view(t, th, m->b2, 1, H)));
    kgm_node *out = kgm_matmul_t(t, h, kgm_view(t, th, m->w3, 1, H), 0, 1);
    out = kgm_bias_add(t, out, kgm_view(t, th, m->b3, 1, 1));
    return kgm_mse(t, out, kgm_tape_leaf(t, y, B, 1, 0));
}

static int fwd_bwd(kgm_tape *t, mlp *m)
{
    kgm_tape_rewind(t);
    kgm_node *th = kgm_tape_leaf(t, m->theta, 1, m->layout.size, 1), *g;
    int rc = kgm_tape_grad(t, loss(t, m, th, m->xs, m->ys), 1, &th, &g, 0);
    if (rc == 0) memcpy(m->grad, g->val, (size_t)m->layout.size * sizeof(float));
    return rc;
}

static int fwd_bwd_2nd(kgm_tape *t, mlp *m)
{
    kgm_tape_rewind(t);
    kgm_node *th = kgm_tape_leaf(t, m->theta, 1, m->layout.size, 1), *g, *mg;
    int rc = kgm_tape_grad(t, loss(t, m, th, m->xs, m->ys), 1, &th, &g, KGM_CREATE_GRAPH);
    if (rc < 0) return rc;
    kgm_node *fast = kgm_axpy(t, -0.01f, g, th);
    rc = kgm_tape_grad(t, loss(t, m, fast, m->xq, m->yq), 1, &th, &mg, 0);
    if (rc == 0) memcpy(m->grad, mg->val, (size_t)m->layout.size * sizeof(float));
    return rc;
}

static int mlp_init(mlp *m)
{
    kgm_layout_init(&m->layout);
    m->w1 = kgm_layout_add(&m->layout, "w1", H, 1);
    m->b1 = kgm_layout_add(&m->layout, "b1", 1, H);
    m->w2 = kgm_layout_add(&m->layout, "w2", H, H);
    m->b2 = kgm_layout_add(&m->layout, "b2", 1, H);
    m->w3 = kgm_layout_add(&m->layout, "w3", 1, H);
    m->b3 = kgm_layout_add(&m->layout, "b3", 1, 1);
    m->theta = calloc((size_t)m->layout.size, sizeof(float));
    m->grad = calloc((size_t)m->layout.size, sizeof(float));
    if (!m->theta || !m->grad) return -1;
    kgm_rng r;
    kgm_rng_seed(&r, 0, 0);
    for (int v = 0; v < m->layout.count; v++) {   /* weights N(0, 1/fan_in), biases 0 */
        const kgm_view_def *d = &m->layout.view[v];
        if (d->name[0] == 'w')
            kgm_rng_fill_normal(&r, m->theta + d->offset, (size_t)d->rows * d->cols, 0.0f,
                                1.0f / sqrtf((float)d->cols));
    }
    for (int i = 0; i < B; i++) {
        m->xs[i] = kgm_rng_uniformf(&r, -5, 5);
        m->xq[i] = kgm_rng_uniformf(&r, -5, 5);
        m->ys[i] = 2.0f * sinf(m->xs[i] - 0.5f);
        m->yq[i] = 2.0f * sinf(m->xq[i] - 0.5f);
    }
    return 0;
}

/* ---- the training run ---- */
enum { META_BATCH = 4, EVAL_TASKS = 50 };
static const float INNER_LR = 0.01f;

/* Task `id`'s support and query sets: its own RNG stream, so tasks do not depend on order. */
static void sine_task(uint64_t id, float *xs, float *ys, float *xq, float *yq)
{
    kgm_rng r;
    kgm_rng_seed(&r, 2017, id);
    float amp = kgm_rng_uniformf(&r, 0.1f, 5.0f), phase = kgm_rng_uniformf(&r, 0.0f, (float)M_PI);
    for (int i = 0; i < B; i++) {
        xs[i] = kgm_rng_uniformf(&r, -5, 5);
        xq[i] = kgm_rng_uniformf(&r, -5, 5);
        ys[i] = amp * sinf(xs[i] - phase);
        yq[i] = amp * sinf(xq[i] - phase);
    }
}

/* Query loss after one inner step on task `id`; its meta-gradient is added to m->grad when
 * `accumulate`. Returns the loss, or NaN on error (kgm_error() says why). */
static float maml_task(kgm_tape *t, mlp *m, uint64_t id, int accumulate)
{
    float xs[B], ys[B], xq[B], yq[B];
    sine_task(id, xs, ys, xq, yq);
    kgm_tape_rewind(t);
    kgm_node *th = kgm_tape_leaf(t, m->theta, 1, m->layout.size, 1), *g, *mg;
    if (kgm_tape_grad(t, loss(t, m, th, xs, ys), 1, &th, &g, KGM_CREATE_GRAPH) < 0) return NAN;
    kgm_node *lq = loss(t, m, kgm_axpy(t, -INNER_LR, g, th), xq, yq);
    if (!accumulate) return lq ? kgm_val(lq)[0] : NAN;
    if (kgm_tape_grad(t, lq, 1, &th, &mg, 0) < 0) return NAN;
    for (int i = 0; i < m->layout.size; i++) m->grad[i] += kgm_val(mg)[i] / META_BATCH;
    return kgm_val(lq)[0];
}

static float eval_loss(kgm_tape *t, mlp *m)
{
    double s = 0;
    for (int k = 0; k < EVAL_TASKS; k++) s += maml_task(t, m, 1000000 + (uint64_t)k, 0);
    return (float)(s / EVAL_TASKS);
}

/* Save theta, load it back, compare bits. */
static int model_round_trip(const mlp *m, const char *path)
{
    kgm_modelfile *out = kgm_modelfile_new(), *in = NULL;
    int rc = out ? 0 : kgm_fail(KGM_ENOMEM, "out of memory");
    if (rc == 0) rc = kgm_modelfile_set(out, "model", "maml-sine-1-40-40-1");
    if (rc == 0) rc = kgm_modelfile_add_layout(out, "theta.", &m->layout, m->theta);
    if (rc == 0) rc = kgm_modelfile_save(out, path);
    if (rc == 0) rc = kgm_modelfile_load(&in, path);
    float *back = calloc((size_t)m->layout.size, sizeof(float));
    if (rc == 0 && !back) rc = kgm_fail(KGM_ENOMEM, "out of memory");
    if (rc == 0) rc = kgm_modelfile_read_layout(in, "theta.", &m->layout, back);
    if (rc == 0 && memcmp(back, m->theta, (size_t)m->layout.size * sizeof(float)) != 0)
        rc = kgm_fail(KGM_EFORMAT, "%s: reloaded parameters differ", path);
    free(back);
    kgm_modelfile_free(in);
    kgm_modelfile_free(out);
    unlink(path);
    return rc;
}

static int train(kgm_tape *t, mlp *m, long meta_iters)
{
    kgm_optim_config cfg = kgm_optim_defaults(KGM_OPTIM_ADAM, 1e-3f);
    cfg.clip_norm = 10.0f;
    kgm_optim *opt;
    if (kgm_optim_new(&opt, &cfg, (size_t)m->layout.size) < 0) return -1;
    float before = eval_loss(t, m);
    int rc = 0;
    for (long it = 0; it < meta_iters && rc == 0; it++) {
        memset(m->grad, 0, (size_t)m->layout.size * sizeof(float));
        for (int k = 0; k < META_BATCH && rc == 0; k++)
            if (isnan(maml_task(t, m, (uint64_t)(it * META_BATCH + k), 1))) rc = -1;
        if (rc == 0) rc = kgm_optim_step(opt, m->theta, m->grad);
    }
    float after = eval_loss(t, m);
    kgm_optim_free(opt);
    if (rc == 0 && (isnan(before) || isnan(after))) rc = -1;
    if (rc == 0) {
        char path[64];
        snprintf(path, sizeof path, "/tmp/bench_mlp_ops.%ld.kgm", (long)getpid());
        rc = model_round_trip(m, path);
        printf("training: %ld meta-iterations of 2nd-order MAML (meta-batch %d, Adam 1e-3): "
               "query MSE after one step %.3f -> %.3f on %d held-out tasks; model file %s\n",
               meta_iters, META_BATCH, before, after, EVAL_TASKS,
               rc == 0 ? "round-trips bit-exactly" : "FAILED");
    }
    return rc;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Wall-clock microseconds per call of f over `iters` calls after a warm-up (< 0 on error);
 * *cpu_us gets the process CPU time per call, which the machine's load does not inflate. */
static double time_us(int (*f)(kgm_tape *, mlp *), kgm_tape *t, mlp *m, long iters, double *cpu_us)
{
    for (long i = 0; i < iters / 10 + 1; i++)
        if (f(t, m) < 0) return -1;
    double t0 = now(), c0 = cpu_now();
    for (long i = 0; i < iters; i++)
        if (f(t, m) < 0) return -1;
    *cpu_us = (cpu_now() - c0) / iters * 1e6;
    return (now() - t0) / iters * 1e6;
}

/* Wall-clock figures on a shared machine depend on its load: say what it was. */
static void print_load(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double l1;
    if (f && fscanf(f, "%lf", &l1) == 1)
        printf("load average %.2f on %ld CPUs (both sides are timed by wall clock, mean per call)\n",
               l1, sysconf(_SC_NPROCESSORS_ONLN));
    if (f) fclose(f);
}

/* The reference script: --torch PATH, $KGM_TORCH_BENCH, or ../shared/bench beside the source. */
static const char *torch_script(const char *arg, char *buf, size_t len)
{
    if (arg) return arg;
    const char *env = getenv("KGM_TORCH_BENCH");
    if (env && *env) return env;
    /* __FILE__ is this source's path as the build gave it: <source>/bench/bench_mlp_ops.c */
    snprintf(buf, len, "%s", __FILE__);
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(buf, '/');
        if (slash) *slash = '\0';
        else snprintf(buf, len, ".");
    }
    size_t n = strlen(buf);
    snprintf(buf + n, len - n, "/../shared/bench/torch_mlp_ops.py");
    return buf;
}

/* Run the reference; fills us[0] (fwd_bwd) and us[1] (fwd_bwd_2nd). 0 on success. */
static int run_torch(const char *script, long repeats, double us[2])
{
    if (access(script, R_OK) != 0) {
        printf("PyTorch reference: MISSING (%s not found; pass --torch PATH or set KGM_TORCH_BENCH)\n",
               script);
        return -1;
    }
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' %ld 2>&1", script, repeats);
    FILE *p = popen(cmd, "r");
    if (!p) {
        printf("PyTorch reference: cannot run %s\n", cmd);
        return -1;
    }
    char line[512];
    int found = 0;
    while (fgets(line, sizeof line, p)) {
        double v;
        if (sscanf(line, "torch fwd_bwd us_per_call=%lf", &v) == 1) { us[0] = v; found |= 1; }
        else if (sscanf(line, "torch fwd_bwd_2nd us_per_call=%lf", &v) == 1) { us[1] = v; found |= 2; }
        else printf("  torch says: %s", line);
    }
    int status = pclose(p);
    if (found != 3 || status != 0) {
        printf("PyTorch reference: FAILED (exit status %d; is python3-torch installed?)\n", status);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    kgm_blas_fix_core(argv);   /* OpenBLAS's fast kernels (src/blascore.h); may re-execute */
    long iters = 50000, meta_iters = 2000;
    const char *script_arg = NULL;
    int no_torch = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--torch") == 0 && i + 1 < argc) script_arg = argv[++i];
        else if (strcmp(argv[i], "--no-torch") == 0) no_torch = 1;
        else if (strcmp(argv[i], "--train") == 0 && i + 1 < argc) meta_iters = atol(argv[++i]);
        else if (atol(argv[i]) > 0) iters = atol(argv[i]);
        else {
            fprintf(stderr, "usage: %s [ITERATIONS] [--train META_ITERATIONS] [--torch PATH | --no-torch]\n",
                    argv[0]);
            return 2;
        }
    }
    mlp m;
    kgm_tape *t = NULL;
    if (mlp_init(&m) < 0 || kgm_tape_new(&t, 1 << 20) < 0) {
        fprintf(stderr, "bench_mlp_ops: %s\n", kgm_error());
        return 1;
    }
    /* Ours is timed before and after the reference and averaged, so that a change in the
     * machine's load during the run weighs on both sides alike. */
    double cpu[2][2];
    double before[2] = { time_us(fwd_bwd, t, &m, iters, &cpu[0][0]),
                         time_us(fwd_bwd_2nd, t, &m, iters, &cpu[1][0]) };
    int rc = 0;
    if (before[0] < 0 || before[1] < 0) {
        fprintf(stderr, "bench_mlp_ops: %s\n", kgm_error());
        rc = 1;
    } else {
        printf("1-40-40-1 ReLU MLP, batch %d, %d parameters, %ld iterations; tape arena peak %zu bytes, "
               "%zu nodes in the 2nd-order step\n", B, m.layout.size, iters, kgm_tape_peak(t),
               kgm_tape_nodes(t));
        print_load();
        double ref[2];
        char buf[4096];
        long repeats = iters / 25 < 200 ? 200 : iters / 25;   /* torch is far slower per call */
        int have_ref = !no_torch && run_torch(torch_script(script_arg, buf, sizeof buf), repeats, ref) == 0;
        if (no_torch) printf("PyTorch reference: not run (--no-torch)\n");
        double after[2] = { time_us(fwd_bwd, t, &m, iters, &cpu[0][1]),
                            time_us(fwd_bwd_2nd, t, &m, iters, &cpu[1][1]) };
        const char *names[2] = { "fwd_bwd", "fwd_bwd_2nd" };
        printf("%-12s %10s %10s %10s %10s %8s\n", "op", "kgm_before", "kgm_after", "kgmeta_us",
               "torch_us", "speedup");
        for (int k = 0; k < 2; k++) {
            double ours = (before[k] + after[k]) / 2;
            printf("%-12s %10.2f %10.2f %10.2f ", names[k], before[k], after[k], ours);
            if (have_ref) printf("%10.2f %7.1fx\n", ref[k], ref[k] / ours);
            else printf("%10s %8s\n", "-", "-");
        }
        printf("kgmeta CPU time per call (process clock, not inflated by load): fwd_bwd %.2f us, "
               "fwd_bwd_2nd %.2f us\n", (cpu[0][0] + cpu[0][1]) / 2, (cpu[1][0] + cpu[1][1]) / 2);
        if (meta_iters > 0 && train(t, &m, meta_iters) < 0) {
            fprintf(stderr, "bench_mlp_ops: training: %s\n", kgm_error());
            rc = 1;
        }
    }
    kgm_tape_free(t);
    free(m.theta);
    free(m.grad);
    return rc;
}
