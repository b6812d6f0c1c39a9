/* models/kgcond.c - the task-source side of kgcond (kgcond.h): tasks of a role with their
 * support and query sets and e(t), for the meta-learners. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kgcond_internal.h"
#include "tasksrc.h"

int kgm_kgcond_cond_dim(const kgm_kgcond *kc) { return kc->cond_dim; }
int kgm_kgcond_x_dim(const kgm_kgcond *kc) { return kc->x_dim; }
int kgm_kgcond_role(const kgm_kgcond *kc, size_t task) { return kc->role[task]; }
const float *kgm_kgcond_cond(const kgm_kgcond *kc, size_t task) { return kc->cond + task * kc->cond_dim; }
int kgm_kgcond_n_codes(const kgm_kgcond *kc) { return kc->opts.use_features ? kc->n_codes : 0; }
const char *kgm_kgcond_code_prop(const kgm_kgcond *kc, int j)
{
    return j >= 0 && j < kgm_kgcond_n_codes(kc) ? kc->code_prop[j] : NULL;
}
const char *kgm_kgcond_code_value(const kgm_kgcond *kc, int j)
{
    return j >= 0 && j < kgm_kgcond_n_codes(kc) ? kc->code_value[j] : NULL;
}
float kgm_kgcond_unnormalize_y(const kgm_kgcond *kc, float y) { return (float)(y * kc->y_sd + kc->y_mean); }
float kgm_kgcond_y_scale(const kgm_kgcond *kc) { return (float)kc->y_sd; }

size_t kgm_kgcond_n_tasks(const kgm_kgcond *kc, int role)
{
    if (role < 0) return kc->n_tasks;
    return role < 3 ? kc->n_role[role] : 0;
}

long kgm_kgcond_role_task(const kgm_kgcond *kc, int role, size_t i)
{
    if (role < 0) return i < kc->n_tasks ? (long)i : -1;
    if (role >= 3 || i >= kc->n_role[role]) return -1;
    return (long)kc->by_role[role][i];
}

static void fill(const kgm_kgcond *kc, const double *x, const double *y, size_t n, float *fx, float *fy)
{
    for (size_t i = 0; i < n; i++) {
        for (int d = 0; d < kc->x_dim; d++)
            fx[i * kc->x_dim + d] = (float)((x[i * kc->x_dim + d] - kc->x_mean[d]) / kc->x_sd[d]);
        fy[i] = (float)((y[i] - kc->y_mean) / kc->y_sd);
    }
}

int kgm_kgcond_task(const kgm_kgcond *kc, size_t task, uint64_t seed, kgm_episode *t)
{
    if (task >= kc->n_tasks) return kgm_fail(KGM_EINVAL, "task index %zu out of range (%zu tasks)", task, kc->n_tasks);
    if (t->x_dim != kc->x_dim || t->y_dim != 1)
        return kgm_fail(KGM_EINVAL, "task buffers sized for %d inputs, the task set has %d", t->x_dim, kc->x_dim);
    double *x, *y;
    size_t ns, nq;
    int rc = kgcond_examples(kc, task, seed, (size_t)t->n_support, (size_t)t->n_query, &x, &y, &ns, &nq);
    if (rc) return rc;
    if ((int)ns != t->n_support || (int)nq != t->n_query) {
        /* CSV tasks decide their own sizes: resize the buffers */
        float *xs = malloc((ns + 1) * kc->x_dim * sizeof *xs), *ys = malloc((ns + 1) * sizeof *ys);
        float *xq = malloc((nq + 1) * kc->x_dim * sizeof *xq), *yq = malloc((nq + 1) * sizeof *yq);
        if (!xs || !ys || !xq || !yq) {
            free(xs); free(ys); free(xq); free(yq); free(x); free(y);
            return kgm_fail(KGM_ENOMEM, "out of memory");
        }
        free(t->xs); free(t->ys); free(t->xq); free(t->yq);
        t->xs = xs; t->ys = ys; t->xq = xq; t->yq = yq;
        t->n_support = (int)ns;
        t->n_query = (int)nq;
    }
    fill(kc, x, y, ns, t->xs, t->ys);
    fill(kc, x + ns * kc->x_dim, y + ns, nq, t->xq, t->yq);
    if (t->cond && t->cond_dim == kc->cond_dim)
        memcpy(t->cond, kgm_kgcond_cond(kc, task), (size_t)kc->cond_dim * sizeof(float));
    free(x);
    free(y);
    return 0;
}

static int sample(void *ctx, kgm_taskrng *rng, kgm_episode *t)
{
    const kgm_kgcond_src *c = ctx;
    size_t n = kgm_kgcond_n_tasks(c->kc, c->role);
    long task = kgm_kgcond_role_task(c->kc, c->role, (size_t)(kgm_taskrng_next(rng) % n));
    return kgm_kgcond_task(c->kc, (size_t)task, kgm_taskrng_next(rng), t);
}

int kgm_kgcond_tasksrc(const kgm_kgcond *kc, int role, int cond, kgm_kgcond_src *ctx, kgm_tasksrc *src)
{
    if (role >= 3) return kgm_fail(KGM_EINVAL, "unknown role %d", role);
    if (!kgm_kgcond_n_tasks(kc, role)) return kgm_fail(KGM_EINVAL, "no tasks with role %d", role);
    *ctx = (kgm_kgcond_src){kc, role, cond};
    memset(src, 0, sizeof *src);
    src->name = "kg";
    src->x_dim = kc->x_dim;
    src->y_dim = 1;
    src->cond_dim = cond ? kc->cond_dim : 0;
    src->ctx = ctx;
    src->sample = sample;
    return 0;
}
