/* bench/bench_mlp_ops.c - microseconds per call for a 1-40-40-1 ReLU MLP on a batch of 10 points
 * (MSE loss), on our tape and on the PyTorch reference in the same run:
 *   fwd_bwd      forward + backward to the flat parameter vector
 *   fwd_bwd_2nd  the MAML-style second-order step: inner gradient with KGM_CREATE_GRAPH, fast
 *                weights theta - 0.01 g, query loss, backward to the original parameters
 * Usage: bench_mlp_ops [ITERATIONS] [--torch PATH | --no-torch]
 * The reference script is found by --torch, else $KGM_TORCH_BENCH, else ../shared/bench/
 * torch_mlp_ops.py beside the source tree (a clone without it says so and prints ours only). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
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

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Microseconds per call of f over `iters` calls after a warm-up; < 0 on error. */
static double time_us(int (*f)(kgm_tape *, mlp *), kgm_tape *t, mlp *m, long iters)
{
    for (long i = 0; i < iters / 10 + 1; i++)
        if (f(t, m) < 0) return -1;
    double t0 = now();
    for (long i = 0; i < iters; i++)
        if (f(t, m) < 0) return -1;
    return (now() - t0) / iters * 1e6;
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
    long iters = 20000;
    const char *script_arg = NULL;
    int no_torch = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--torch") == 0 && i + 1 < argc) script_arg = argv[++i];
        else if (strcmp(argv[i], "--no-torch") == 0) no_torch = 1;
        else if (atol(argv[i]) > 0) iters = atol(argv[i]);
        else {
            fprintf(stderr, "usage: %s [ITERATIONS] [--torch PATH | --no-torch]\n", argv[0]);
            return 2;
        }
    }
    mlp m;
    kgm_tape *t = NULL;
    if (mlp_init(&m) < 0 || kgm_tape_new(&t, 1 << 20) < 0) {
        fprintf(stderr, "bench_mlp_ops: %s\n", kgm_error());
        return 1;
    }
    double ours[2] = { time_us(fwd_bwd, t, &m, iters), time_us(fwd_bwd_2nd, t, &m, iters) };
    int rc = 0;
    if (ours[0] < 0 || ours[1] < 0) {
        fprintf(stderr, "bench_mlp_ops: %s\n", kgm_error());
        rc = 1;
    } else {
        printf("1-40-40-1 ReLU MLP, batch %d, %d parameters, %ld iterations; tape arena peak %zu bytes, "
               "%zu nodes in the 2nd-order step\n", B, m.layout.size, iters, kgm_tape_peak(t),
               kgm_tape_nodes(t));
        double ref[2];
        char buf[4096];
        long repeats = iters / 10 < 200 ? 200 : iters / 10;   /* torch is far slower per call */
        int have_ref = !no_torch && run_torch(torch_script(script_arg, buf, sizeof buf), repeats, ref) == 0;
        if (no_torch) printf("PyTorch reference: not run (--no-torch)\n");
        const char *names[2] = { "fwd_bwd", "fwd_bwd_2nd" };
        printf("%-12s %12s %12s %8s\n", "op", "kgmeta_us", "torch_us", "speedup");
        for (int k = 0; k < 2; k++) {
            if (have_ref) printf("%-12s %12.2f %12.2f %7.1fx\n", names[k], ours[k], ref[k], ref[k] / ours[k]);
            else printf("%-12s %12.2f %12s %8s\n", names[k], ours[k], "-", "-");
        }
    }
    kgm_tape_free(t);
    free(m.theta);
    free(m.grad);
    return rc;
}
