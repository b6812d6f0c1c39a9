/* models/mlp.c - MLP forward, backward and exact Hessian-vector product, by hand.
 *
 * Notation, per row of the batch (l = 1..L weight layers, a_0 = x):
 *   z_l = a_{l-1} W_l^T + b_l,   a_l = act(z_l) for l < L,   a_L = z_L (linear output).
 * Backward: dz_L from the loss; dW_l = dz_l^T a_{l-1}; db_l = colsum dz_l;
 *   da_{l-1} = dz_l W_l; dz_{l-1} = da_{l-1} * act'(z_{l-1}).
 * The R-operator R{.} = d/de (.)(theta + e v) at e = 0, applied to every line above, gives
 * H v = (R{dW_l}, R{db_l}); see kgm_mlp_hvp. Matrix products go through kgm_gemm. */
#include "mlp.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tensor.h"

struct kgm_mlp_ws {
    int max_batch;
    float *z[KGM_MLP_MAX_LAYERS + 1];    /* pre-activations z_l, l = 1..L */
    float *a[KGM_MLP_MAX_LAYERS + 1];    /* activations a_l, l = 1..L-1 (a_0 = x, a_L = z_L) */
    float *dz[KGM_MLP_MAX_LAYERS + 1];   /* dL/dz_l */
    float *da[KGM_MLP_MAX_LAYERS + 1];   /* dL/da_l, l = 1..L-1 */
    float *rz[KGM_MLP_MAX_LAYERS + 1];   /* R{z_l} */
    float *ra[KGM_MLP_MAX_LAYERS + 1];   /* R{a_l} */
    float *rdz, *rdz_prev, *rda;         /* R{dz_l}, R{dz_{l-1}}, R{da_{l-1}} */
    float *p;                            /* softmax probabilities (cross-entropy) */
    float *block;                        /* the one allocation behind all of the above */
};

int kgm_mlp_init(kgm_mlp *m, int n_layers, const int *sizes, kgm_act act, kgm_loss loss)
{
    if (n_layers < 1 || n_layers > KGM_MLP_MAX_LAYERS)
        return kgm_fail(KGM_EINVAL, "an MLP has 1 to %d weight layers, not %d", KGM_MLP_MAX_LAYERS, n_layers);
    for (int l = 0; l <= n_layers; l++)
        if (sizes[l] < 1) return kgm_fail(KGM_EINVAL, "layer width %d is %d, must be >= 1", l, sizes[l]);
    if (loss == KGM_LOSS_XENT && sizes[n_layers] < 2)
        return kgm_fail(KGM_EINVAL, "cross-entropy needs at least 2 output classes");
    memset(m, 0, sizeof *m);
    m->n_layers = n_layers;
    m->act = act;
    m->loss = loss;
    size_t off = 0;
    for (int l = 0; l <= n_layers; l++) m->sizes[l] = sizes[l];
    for (int l = 0; l < n_layers; l++) {
        m->w_off[l] = off; off += (size_t)sizes[l + 1] * (size_t)sizes[l];
        m->b_off[l] = off; off += (size_t)sizes[l + 1];
    }
    m->n_params = off;
    return KGM_OK;
}

int kgm_mlp_parse_act(const char *s, kgm_act *out)
{
    if (!strcmp(s, "relu")) { *out = KGM_ACT_RELU; return KGM_OK; }
    if (!strcmp(s, "tanh")) { *out = KGM_ACT_TANH; return KGM_OK; }
    return kgm_fail(KGM_EINVAL, "unknown activation '%s' (relu, tanh)", s);
}

int kgm_mlp_parse_loss(const char *s, kgm_loss *out)
{
    if (!strcmp(s, "mse")) { *out = KGM_LOSS_MSE; return KGM_OK; }
    if (!strcmp(s, "xent")) { *out = KGM_LOSS_XENT; return KGM_OK; }
    return kgm_fail(KGM_EINVAL, "unknown loss '%s' (mse, xent)", s);
}

void kgm_mlp_init_params(const kgm_mlp *m, float *theta, kgm_taskrng *rng)
{
    for (int l = 0; l < m->n_layers; l++) {
        double bound = 1.0 / sqrt((double)m->sizes[l]);
        size_t nw = (size_t)m->sizes[l + 1] * (size_t)m->sizes[l];
        for (size_t i = 0; i < nw; i++) theta[m->w_off[l] + i] = (float)kgm_taskrng_uniform(rng, -bound, bound);
        for (int i = 0; i < m->sizes[l + 1]; i++) theta[m->b_off[l] + (size_t)i] = (float)kgm_taskrng_uniform(rng, -bound, bound);
    }
}

float *kgm_mlp_view(const kgm_mlp *m, float *theta, const char *name, int *rows, int *cols)
{
    int l = 0;
    char kind = name[0], end = 0;
    if ((kind != 'W' && kind != 'b') || sscanf(name + 1, "%d%c", &l, &end) != 1 || l < 1 || l > m->n_layers)
        return NULL;
    l--;
    if (rows) *rows = m->sizes[l + 1];
    if (cols) *cols = kind == 'W' ? m->sizes[l] : 1;
    return theta + (kind == 'W' ? m->w_off[l] : m->b_off[l]);
}

/* ---- scratch ---- */
kgm_mlp_ws *kgm_mlp_ws_new(const kgm_mlp *m, int max_batch)
{
    kgm_mlp_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    int wmax = 1;
    for (int l = 0; l <= m->n_layers; l++) if (m->sizes[l] > wmax) wmax = m->sizes[l];
    size_t per = (size_t)max_batch * (size_t)wmax, n_arrays = 6 * (size_t)(m->n_layers + 1) + 4;
    ws->block = calloc(n_arrays * per, sizeof(float));
    if (!ws->block) { free(ws); return NULL; }
    ws->max_batch = max_batch;
    float *p = ws->block;
    for (int l = 0; l <= m->n_layers; l++) {
        ws->z[l] = p; p += per;   ws->a[l] = p; p += per;   ws->dz[l] = p; p += per;
        ws->da[l] = p; p += per;  ws->rz[l] = p; p += per;  ws->ra[l] = p; p += per;
    }
    ws->rdz = p; p += per;  ws->rdz_prev = p; p += per;  ws->rda = p; p += per;  ws->p = p;
    return ws;
}

void kgm_mlp_ws_free(kgm_mlp_ws *ws)
{
    if (!ws) return;
    free(ws->block);
    free(ws);
}

/* ---- small dense helpers ----
 * Products go through the core's kgm_gemm: for these shapes (10 x 40 x 40) its small-matrix
 * kernels are 1.1-2.2x faster per call than cblas_sgemm, whose call overhead dominates. */
/* c (n, out) = [c +] a (n, in) W^T, W (out, in). */
static void mm_abt(int n, int out, int in, const float *a, const float *w, float beta, float *c)
{
    kgm_gemm(0, 1, n, out, in, 1.0f, a, w, beta, c);
}
/* c (n, in) = [c +] d (n, out) W (out, in). */
static void mm_ab(int n, int out, int in, const float *d, const float *w, float beta, float *c)
{
    kgm_gemm(0, 0, n, in, out, 1.0f, d, w, beta, c);
}
/* g (out, in) = [g +] d^T (out, n) a (n, in). */
static void mm_atb(int n, int out, int in, const float *d, const float *a, float beta, float *g)
{
    kgm_gemm(1, 0, out, in, n, 1.0f, d, a, beta, g);
}
static void fill_rows(int n, int w, const float *b, float *c)
{
    for (int i = 0; i < n; i++) memcpy(c + (size_t)i * (size_t)w, b, (size_t)w * sizeof(float));
}
static void col_sum(int n, int w, const float *d, float *out)
{
    memset(out, 0, (size_t)w * sizeof(float));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < w; j++) out[j] += d[(size_t)i * (size_t)w + (size_t)j];
}

/* act'(z) from the saved activation a: relu 1[a > 0]; tanh 1 - a^2. */
static inline float act_d1(kgm_act act, float a) { return act == KGM_ACT_RELU ? (a > 0.0f) : 1.0f - a * a; }
/* act''(z) from a: relu 0 (away from the kink); tanh -2 a (1 - a^2). */
static inline float act_d2(kgm_act act, float a) { return act == KGM_ACT_RELU ? 0.0f : -2.0f * a * (1.0f - a * a); }

/* ---- forward ---- */
static const float *layer_input(const kgm_mlp_ws *ws, const float *x, int l)
{
    return l == 0 ? x : ws->a[l];
}

static void forward(const kgm_mlp *m, kgm_mlp_ws *ws, const float *theta, const float *x, int n)
{
    assert(n <= ws->max_batch);
    const int L = m->n_layers;
    for (int l = 0; l < L; l++) {
        int in = m->sizes[l], out = m->sizes[l + 1];
        float *z = ws->z[l + 1];
        fill_rows(n, out, theta + m->b_off[l], z);
        mm_abt(n, out, in, layer_input(ws, x, l), theta + m->w_off[l], 1.0f, z);
        if (l + 1 < L) {
            float *a = ws->a[l + 1];
            size_t cnt = (size_t)n * (size_t)out;
            if (m->act == KGM_ACT_RELU) for (size_t i = 0; i < cnt; i++) a[i] = z[i] > 0.0f ? z[i] : 0.0f;
            else for (size_t i = 0; i < cnt; i++) a[i] = tanhf(z[i]);
        }
    }
}

void kgm_mlp_predict(const kgm_mlp *m, kgm_mlp_ws *ws, const float *theta, const float *x, int n, float *out)
{
    forward(m, ws, theta, x, n);
    memcpy(out, ws->z[m->n_layers], (size_t)n * (size_t)m->sizes[m->n_layers] * sizeof(float));
}

/* Loss of the last forward and dz_L. MSE: mean over n rows and the outputs of (z - y)^2,
 * dz = 2 (z - y) / (n k). Cross-entropy: mean over rows of -log softmax(z)[y],
 * dz = (p - onehot(y)) / n; subtract the row max before exp so exp cannot overflow. */
static double loss_head(const kgm_mlp *m, kgm_mlp_ws *ws, const float *y, int n)
{
    const int k = m->sizes[m->n_layers];
    const float *z = ws->z[m->n_layers];
    float *dz = ws->dz[m->n_layers];
    double loss = 0.0;
    if (m->loss == KGM_LOSS_MSE) {
        float s = 2.0f / (float)(n * k);
        for (int i = 0; i < n * k; i++) {
            float r = z[i] - y[i];
            loss += (double)r * r;
            dz[i] = s * r;
        }
        return loss / (double)(n * k);
    }
    for (int i = 0; i < n; i++) {
        const float *zi = z + (size_t)i * (size_t)k;
        float *pi = ws->p + (size_t)i * (size_t)k, *di = dz + (size_t)i * (size_t)k;
        float mx = zi[0], sum = 0.0f;
        for (int j = 1; j < k; j++) if (zi[j] > mx) mx = zi[j];
        for (int j = 0; j < k; j++) { pi[j] = expf(zi[j] - mx); sum += pi[j]; }
        int c = (int)y[i];
        if (c < 0 || c >= k) c = 0;   /* sources validate labels; keep memory safe regardless */
        for (int j = 0; j < k; j++) { pi[j] /= sum; di[j] = (pi[j] - (j == c)) / (float)n; }
        loss -= log((double)pi[c] + 1e-30);
    }
    return loss / n;
}

/* ---- backward ---- */
static void backward(const kgm_mlp *m, kgm_mlp_ws *ws, const float *theta, const float *x, int n, float *grad)
{
    for (int l = m->n_layers - 1; l >= 0; l--) {
        int in = m->sizes[l], out = m->sizes[l + 1];
        const float *dz = ws->dz[l + 1];
        mm_atb(n, out, in, dz, layer_input(ws, x, l), 0.0f, grad + m->w_off[l]);
        col_sum(n, out, dz, grad + m->b_off[l]);
        if (l == 0) break;
        float *da = ws->da[l], *dzp = ws->dz[l];
        const float *a = ws->a[l];
        mm_ab(n, out, in, dz, theta + m->w_off[l], 0.0f, da);
        for (size_t i = 0; i < (size_t)n * (size_t)in; i++) dzp[i] = da[i] * act_d1(m->act, a[i]);
    }
}

float kgm_mlp_loss_grad(const kgm_mlp *m, kgm_mlp_ws *ws, const float *theta,
                        const float *x, const float *y, int n, float *grad)
{
    forward(m, ws, theta, x, n);
    double loss = loss_head(m, ws, y, n);
    if (grad) backward(m, ws, theta, x, n, grad);
    return (float)loss;
}

/* ---- Hessian-vector product ----
 * R{z_l} = R{a_{l-1}} W_l^T + a_{l-1} V_l^T + v_b,        R{a_l} = act'(z_l) R{z_l}
 * R{dz_L} = 2 R{z_L} / (n k)                               (MSE)
 *         = p * (R{z_L} - rowsum(p * R{z_L})) / n          (cross-entropy)
 * R{dW_l} = R{dz_l}^T a_{l-1} + dz_l^T R{a_{l-1}},         R{db_l} = colsum R{dz_l}
 * R{da_{l-1}} = R{dz_l} W_l + dz_l V_l
 * R{dz_{l-1}} = R{da_{l-1}} act'(z_{l-1}) + da_{l-1} act''(z_{l-1}) R{z_{l-1}}
 * with R{a_0} = 0 (the input does not depend on theta). */
void kgm_mlp_hvp(const kgm_mlp *m, kgm_mlp_ws *ws, const float *theta,
                 const float *x, const float *y, int n, const float *v, float *hv)
{
    /* The plain backward fills dz_l and da_l, which the R-backward reads; hv is scratch here. */
    kgm_mlp_loss_grad(m, ws, theta, x, y, n, hv);
    kgm_mlp_hvp_cached(m, ws, theta, x, n, v, hv);
}

void kgm_mlp_hvp_cached(const kgm_mlp *m, kgm_mlp_ws *ws, const float *theta,
                        const float *x, int n, const float *v, float *hv)
{
    const int L = m->n_layers, k = m->sizes[L];

    for (int l = 0; l < L; l++) {
        int in = m->sizes[l], out = m->sizes[l + 1];
        float *rz = ws->rz[l + 1];
        fill_rows(n, out, v + m->b_off[l], rz);
        mm_abt(n, out, in, layer_input(ws, x, l), v + m->w_off[l], 1.0f, rz);
        if (l > 0) mm_abt(n, out, in, ws->ra[l], theta + m->w_off[l], 1.0f, rz);
        if (l + 1 < L) {
            const float *a = ws->a[l + 1];
            float *ra = ws->ra[l + 1];
            for (size_t i = 0; i < (size_t)n * (size_t)out; i++) ra[i] = act_d1(m->act, a[i]) * rz[i];
        }
    }

    float *rdz = ws->rdz, *rdzp = ws->rdz_prev;
    const float *rzL = ws->rz[L];
    if (m->loss == KGM_LOSS_MSE) {
        float s = 2.0f / (float)(n * k);
        for (int i = 0; i < n * k; i++) rdz[i] = s * rzL[i];
    } else {
        for (int i = 0; i < n; i++) {
            const float *pi = ws->p + (size_t)i * (size_t)k, *ri = rzL + (size_t)i * (size_t)k;
            float dot = 0.0f;
            for (int j = 0; j < k; j++) dot += pi[j] * ri[j];
            for (int j = 0; j < k; j++) rdz[(size_t)i * (size_t)k + (size_t)j] = pi[j] * (ri[j] - dot) / (float)n;
        }
    }

    for (int l = L - 1; l >= 0; l--) {
        int in = m->sizes[l], out = m->sizes[l + 1];
        const float *dz = ws->dz[l + 1];
        float *hw = hv + m->w_off[l];
        mm_atb(n, out, in, rdz, layer_input(ws, x, l), 0.0f, hw);
        if (l > 0) mm_atb(n, out, in, dz, ws->ra[l], 1.0f, hw);
        col_sum(n, out, rdz, hv + m->b_off[l]);
        if (l == 0) break;
        float *rda = ws->rda;
        mm_ab(n, out, in, rdz, theta + m->w_off[l], 0.0f, rda);
        mm_ab(n, out, in, dz, v + m->w_off[l], 1.0f, rda);
        const float *a = ws->a[l], *da = ws->da[l], *rzp = ws->rz[l];
        for (size_t i = 0; i < (size_t)n * (size_t)in; i++)
            rdzp[i] = rda[i] * act_d1(m->act, a[i]) + da[i] * act_d2(m->act, a[i]) * rzp[i];
        float *t = rdz; rdz = rdzp; rdzp = t;
    }
}

/* ---- operation counts ---- */
static double mm_flops(int n, int out, int in) { return 2.0 * n * out * in; }

double kgm_mlp_flops_loss_grad(const kgm_mlp *m, int n)
{
    double f = 0.0;
    for (int l = 0; l < m->n_layers; l++) {
        int in = m->sizes[l], out = m->sizes[l + 1];
        f += mm_flops(n, out, in) + (double)n * out;            /* forward: product, bias */
        if (l + 1 < m->n_layers) f += (double)n * out;           /* activation */
        f += mm_flops(n, out, in) + (double)n * out;            /* dW, db */
        if (l > 0) f += mm_flops(n, out, in) + 2.0 * n * in;    /* da, dz_prev */
    }
    return f + 3.0 * n * m->sizes[m->n_layers];                  /* loss head */
}

double kgm_mlp_flops_hvp_cached(const kgm_mlp *m, int n)
{
    double f = 0.0;
    for (int l = 0; l < m->n_layers; l++) {
        int in = m->sizes[l], out = m->sizes[l + 1];
        f += mm_flops(n, out, in) + (double)n * out;            /* R z: a V^T, v_b */
        if (l > 0) f += mm_flops(n, out, in);                    /* R z: R a W^T */
        if (l + 1 < m->n_layers) f += 2.0 * n * out;             /* R a */
        f += mm_flops(n, out, in) + (double)n * out;            /* R dW, R db */
        if (l > 0) f += 3.0 * mm_flops(n, out, in) + 5.0 * n * in; /* dz^T R a, R da (2), R dz_prev */
    }
    return f + 2.0 * n * m->sizes[m->n_layers];
}
