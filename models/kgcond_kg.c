/* models/kgcond_kg.c - the graph side of kgcond: tasks, descriptive graph, embedding with
 * fold-in of meta-test tasks, conditioning vectors, and results written back (kgcond.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "kgcond_internal.h"
#include "store.h"
#include "strmap.h"
#include "tasks.h"

kgm_kgcond_opts kgm_kgcond_opts_default(void)
{
    kgm_kgcond_opts o;
    memset(&o, 0, sizeof o);
    kgm_emb_opts_default(&o.emb, KGM_EMB_TRANSE_L2);
    o.emb.dim = 16;
    o.emb.epochs = 300;
    o.emb.threads = 1;
    o.emb.seed = 1;
    o.use_embedding = 1;
    o.use_features = 1;
    o.seed = 1;
    o.proto_temp = 1.0f;
    return o;
}

void kgm_kgcond_free(kgm_kgcond *kc)
{
    if (!kc) return;
    kgm_taskset_free(kc->set);
    kgm_graph_free(kc->train_graph);
    kgm_emb_free(kc->emb);
    free(kc->role);
    for (int r = 0; r < 3; r++) free(kc->by_role[r]);
    free(kc->cond);
    free(kc->codes);
    for (int j = 0; j < kc->n_codes; j++) { free(kc->code_prop[j]); free(kc->code_value[j]); }
    free(kc->code_prop);
    free(kc->code_value);
    free(kc);
}

static int task_x_dim(const kgm_task *t)
{
    return t->source == KGM_SOURCE_GENERATOR ? kgm_taskgen_fn_dim(t->gen.fn) : t->n_inputs;
}

/* Roles and input dimension of every task. */
static int index_tasks(kgm_kgcond *kc)
{
    kc->n_tasks = kc->set->n;
    if (!kc->n_tasks) return kgm_fail(KGM_EINVAL, "the store holds no mls:Task");
    kc->role = calloc(kc->n_tasks, sizeof *kc->role);
    for (int r = 0; r < 3; r++) kc->by_role[r] = calloc(kc->n_tasks, sizeof(size_t));
    if (!kc->role || !kc->by_role[0] || !kc->by_role[1] || !kc->by_role[2])
        return kgm_fail(KGM_ENOMEM, "out of memory");
    kc->x_dim = task_x_dim(&kc->set->tasks[0]);
    for (size_t i = 0; i < kc->n_tasks; i++) {
        const kgm_task *t = &kc->set->tasks[i];
        if (task_x_dim(t) != kc->x_dim)
            return kgm_fail(KGM_EINVAL, "task %s has %d inputs, %s has %d: one input size per task set",
                            t->iri, task_x_dim(t), kc->set->tasks[0].iri, kc->x_dim);
        kc->role[i] = t->role;
        if (t->role >= 0 && t->role < 3) kc->by_role[t->role][kc->n_role[t->role]++] = i;
    }
    if (kc->x_dim > 16) return kgm_fail(KGM_EINVAL, "more than 16 inputs per task");
    return 0;
}

/* Splits desc into the training graph (no triple touching a meta-test task) and the fold-in
 * triples, ids mapped to the embedding's: entities of the training graph first, then new
 * ones (ids from n_train_ents) in order of appearance. emap: (desc entities) -> emb id. */
static int split_graph(kgm_kgcond *kc, const kgm_graph *desc, int32_t *emap,
                       kgm_triple **fold, size_t *n_fold, size_t *n_new)
{
    size_t n_ents = kgm_graph_n_ents(desc);
    char *is_test = calloc(n_ents ? n_ents : 1, 1);
    kgm_graph *g = kgm_graph_new();
    const size_t n_triples = kgm_graph_n_triples(desc);
    *fold = malloc((n_triples ? n_triples : 1) * sizeof **fold);
    int rc = is_test && g && *fold ? 0 : kgm_fail(KGM_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < kc->n_role[KGM_ROLE_TEST]; i++) {
        int32_t e = kgm_graph_find_entity(desc, kc->set->tasks[kc->by_role[KGM_ROLE_TEST][i]].iri);
        if (e >= 0) is_test[e] = 1;
    }
    for (size_t e = 0; e < n_ents; e++) emap[e] = -1;
    for (size_t i = 0; !rc && i < n_triples; i++) {
        kgm_triple t = kgm_graph_triple(desc, i);
        if (is_test[t.h] || is_test[t.t]) continue;
        int32_t h = kgm_graph_entity(g, kgm_graph_ent_name(desc, t.h));
        int32_t tt = kgm_graph_entity(g, kgm_graph_ent_name(desc, t.t));
        int32_t r = kgm_graph_relation(g, kgm_graph_rel_name(desc, t.r));
        if (h < 0 || tt < 0 || r < 0) { rc = kgm_fail(KGM_ENOMEM, "out of memory"); break; }
        emap[t.h] = h;
        emap[t.t] = tt;
        rc = kgm_graph_add(g, h, r, tt);
    }
    /* relations seen only around new tasks cannot be folded in: their triples are dropped */
    int32_t next = (int32_t)kgm_graph_n_ents(g);
    *n_fold = 0;
    for (size_t i = 0; !rc && i < n_triples; i++) {
        kgm_triple t = kgm_graph_triple(desc, i);
        if (!is_test[t.h] && !is_test[t.t]) continue;
        int32_t r = kgm_graph_find_relation(g, kgm_graph_rel_name(desc, t.r));
        if (r < 0) continue;
        if (emap[t.h] < 0) emap[t.h] = next++;
        if (emap[t.t] < 0) emap[t.t] = next++;
        (*fold)[(*n_fold)++] = (kgm_triple){emap[t.h], r, emap[t.t]};
    }
    *n_new = (size_t)next - kgm_graph_n_ents(g);
    if (!rc) rc = kgm_graph_finish(g);
    free(is_test);
    if (rc) { kgm_graph_free(g); return rc; }
    kc->train_graph = g;
    return 0;
}

static int embed(kgm_kgcond *kc, const kgm_graph *desc, const kgm_emb *given, int32_t *emap)
{
    kgm_triple *fold = NULL;
    size_t n_fold = 0, n_new = 0;
    int rc = split_graph(kc, desc, emap, &fold, &n_fold, &n_new);
    const kgm_graph *g = kc->train_graph;
    if (!rc && given) {
        if (given->n_ents != kgm_graph_n_ents(g) || given->n_rels != kgm_graph_n_rels(g))
            rc = kgm_fail(KGM_EINVAL, "the embedding has %zu entities and %zu relations; the training graph %zu and %zu",
                          given->n_ents, given->n_rels, kgm_graph_n_ents(g), kgm_graph_n_rels(g));
        else if (!(kc->emb = kgm_emb_copy(given))) rc = KGM_ENOMEM;
    } else if (!rc) {
        kc->emb = kgm_emb_new(&kc->opts.emb, kgm_graph_n_ents(g), kgm_graph_n_rels(g));
        if (!kc->emb) rc = KGM_ENOMEM;
        kgm_emb_report rep;
        if (!rc && kgm_graph_n_triples(g)) rc = kgm_emb_train(kc->emb, g, &kc->opts.emb, NULL, 0, NULL, 0, &rep);
    }
    if (!rc && n_new) rc = kgm_emb_foldin(kc->emb, n_new, fold, n_fold, &kc->opts.emb, NULL, NULL, 0, NULL);
    free(fold);
    return rc;
}

/* Embedding part centered on the meta-train tasks' mean and scaled by one factor to unit
 * variance per column on average (geometry kept): TransE rows have norm <= 1, so raw
 * components are small and the init stages (which start at 0) learn slowly. */
static void standardize_embedding(kgm_kgcond *kc)
{
    size_t n = kc->n_role[KGM_ROLE_TRAIN];
    if (!n || !kc->emb_width) return;
    double mean[512] = {0}, var = 0;
    int w = kc->emb_width < 512 ? kc->emb_width : 512;
    for (int d = 0; d < w; d++) {
        double s = 0, s2 = 0;
        for (size_t j = 0; j < n; j++) {
            double v = kc->cond[kc->by_role[KGM_ROLE_TRAIN][j] * kc->cond_dim + d];
            s += v;
            s2 += v * v;
        }
        mean[d] = s / n;
        var += s2 / n - mean[d] * mean[d];
    }
    var /= w;
    double sd = var > 1e-12 ? sqrt(var) : 1;
    for (size_t i = 0; i < kc->n_tasks; i++)
        for (int d = 0; d < w; d++)
            kc->cond[i * kc->cond_dim + d] = (float)((kc->cond[i * kc->cond_dim + d] - mean[d]) / sd);
}

/* ---- prototype codes: e(t)'s embedding part as a soft assignment to k-means prototypes ---- */

static double sqdist(const float *a, const double *c, int w)
{
    double s = 0;
    for (int d = 0; d < w; d++) s += (a[d] - c[d]) * (a[d] - c[d]);
    return s;
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Row of the j-th meta-train task's embedding part. */
static const float *train_row(const kgm_kgcond *kc, size_t j)
{
    return kc->cond + kc->by_role[KGM_ROLE_TRAIN][j] * kc->cond_dim;
}

/* k-means++ start: K centres (K, w) from the n meta-train rows; d2 (n) is scratch. */
static void kmeans_start(const kgm_kgcond *kc, int K, double *c, double *d2)
{
    const int w = kc->emb_width;
    const size_t n = kc->n_role[KGM_ROLE_TRAIN];
    uint64_t rs = kc->opts.seed ^ 0x70726f746f747970ULL;
    size_t pick = splitmix(&rs) % n;
    for (int k = 0; k < K; k++) {
        for (int d = 0; d < w; d++) c[(size_t)k * w + d] = train_row(kc, pick)[d];
        double tot = 0;
        for (size_t j = 0; j < n; j++) {
            double v = sqdist(train_row(kc, j), c + (size_t)k * w, w);
            d2[j] = k == 0 || v < d2[j] ? v : d2[j];
            tot += d2[j];
        }
        double r = (double)(splitmix(&rs) >> 11) * 0x1.0p-53 * tot;
        for (pick = 0; pick + 1 < n && (r -= d2[pick]) >= 0; pick++) {}
    }
}

/* Lloyd iterations from the start in c; returns the mean squared distance of a meta-train
 * row to its centre. asg (n) and cnt (K) are scratch. */
static double kmeans_lloyd(const kgm_kgcond *kc, int K, double *c, int *asg, double *cnt)
{
    const int w = kc->emb_width;
    const size_t n = kc->n_role[KGM_ROLE_TRAIN];
    double sse = 0;
    for (int it = 0; it < 100; it++) {
        int changed = 0;
        sse = 0;
        for (size_t j = 0; j < n; j++) {
            int best_k = 0;
            double best = INFINITY;
            for (int k = 0; k < K; k++) {
                double v = sqdist(train_row(kc, j), c + (size_t)k * w, w);
                if (v < best) { best = v; best_k = k; }
            }
            changed |= it == 0 || asg[j] != best_k;
            asg[j] = best_k;
            sse += best;
        }
        if (!changed) break;
        memset(cnt, 0, (size_t)K * sizeof *cnt);
        for (size_t j = 0; j < n; j++) cnt[asg[j]] += 1;
        for (int k = 0; k < K; k++)   /* a centre left without rows stays where it was */
            if (cnt[k] > 0) memset(c + (size_t)k * w, 0, (size_t)w * sizeof *c);
        for (size_t j = 0; j < n; j++)
            for (int d = 0; d < w; d++) c[(size_t)asg[j] * w + d] += train_row(kc, j)[d];
        for (int k = 0; k < K; k++)
            for (int d = 0; cnt[k] > 0 && d < w; d++) c[(size_t)k * w + d] /= cnt[k];
    }
    return sse / (double)n;
}

/* Replaces every task's embedding part by softmax_k(-|row - c_k|^2 / tau) over K prototypes c_k
 * (k-means over the meta-train tasks), tau = proto_temp times the meta-train tasks' mean squared
 * distance to their prototype. Near one-hot codes of task clusters: a linear init stage then
 * learns one start per cluster, which dense rows (half their variance not about the task's
 * kind) did not allow at ARML's learning rates (bench_sixfam). */
static int prototype_code(kgm_kgcond *kc)
{
    const int w = kc->emb_width;
    const size_t n = kc->n_role[KGM_ROLE_TRAIN];
    const int K = (size_t)kc->opts.prototypes < n ? kc->opts.prototypes : (int)n;
    if (K < 1 || !w) return 0;
    const int tail = kc->cond_dim - w, dim = K + tail;   /* features and codes kept after the code */
    double *c = malloc((size_t)K * w * sizeof *c), *cnt = malloc((size_t)K * sizeof *cnt);
    double *d2 = malloc((n > (size_t)K ? n : (size_t)K) * sizeof *d2);
    int *asg = malloc(n * sizeof *asg);
    float *code = malloc(kc->n_tasks * (size_t)dim * sizeof *code);
    int rc = c && cnt && d2 && asg && code ? 0 : kgm_fail(KGM_ENOMEM, "out of memory");
    if (!rc) {
        kmeans_start(kc, K, c, d2);
        double msd = kmeans_lloyd(kc, K, c, asg, cnt);
        double tau = (msd > 1e-12 ? msd : 1.0) * (kc->opts.proto_temp > 0 ? kc->opts.proto_temp : 1.0);
        for (size_t i = 0; i < kc->n_tasks; i++) {
            const float *row = kc->cond + i * kc->cond_dim;
            float *out = code + i * (size_t)dim;
            double lo = INFINITY, z = 0;
            for (int k = 0; k < K; k++) { d2[k] = sqdist(row, c + (size_t)k * w, w); lo = d2[k] < lo ? d2[k] : lo; }
            for (int k = 0; k < K; k++) z += d2[k] = exp(-(d2[k] - lo) / tau);
            for (int k = 0; k < K; k++) out[k] = (float)(d2[k] / z);
            memcpy(out + K, row + w, (size_t)tail * sizeof *out);
        }
        free(kc->cond);
        kc->cond = code;
        code = NULL;
        kc->emb_width = K;
        kc->cond_dim = dim;
    }
    free(c); free(cnt); free(d2); free(asg); free(code);
    return rc;
}

/* ---- categorical task features: one-hot codes of IRI values ---- */

/* Declared kgm:CategoricalTaskFeature properties (IRIs, sorted). A property of the kgm:
 * vocabulary or declared kgm:PlumbingProperty is refused: its values would show the learner
 * how the task's data is made. */
static int categorical_props(kgm_store *st, kgm_table **props)
{
    int rc = kgm_store_select(st, "SELECT ?p ?plumb WHERE { ?p <" KGM_RDF_TYPE_IRI "> <" KGM_NS_IRI "CategoricalTaskFeature> ."
                              " OPTIONAL { ?p <" KGM_RDF_TYPE_IRI "> ?plumb . FILTER(?plumb = <" KGM_NS_IRI "PlumbingProperty>) } }"
                              " ORDER BY ?p", props);
    for (size_t i = 0; !rc && i < (*props)->n_rows; i++) {
        const kgm_cell *p = kgm_table_cell(*props, i, 0), *plumb = kgm_table_cell(*props, i, 1);
        if (p->kind != KGM_CELL_IRI)
            rc = kgm_fail(KGM_EINVAL, "a categorical task feature must be a property IRI");
        else if (plumb->kind != KGM_CELL_NULL || !strncmp(p->value, KGM_NS_IRI, strlen(KGM_NS_IRI)))
            rc = kgm_fail(KGM_EINVAL, "%s is data plumbing or kgmeta vocabulary: it cannot be a categorical task feature",
                          p->value);
    }
    if (rc) { kgm_table_free(*props); *props = NULL; }
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Adds one column per distinct value of prop on meta-train tasks (sorted), then sets the
 * columns of every task having that value. tb: (task, value) rows. */
static int add_code_columns(kgm_kgcond *kc, const char *prop, const kgm_table *tb, const kgm_strmap *generators)
{
    kgm_strmap *vals = kgm_strmap_new();
    if (!vals) return kgm_fail(KGM_ENOMEM, "out of memory");
    for (size_t r = 0; r < tb->n_rows; r++) {
        const kgm_cell *t = kgm_table_cell(tb, r, 0), *v = kgm_table_cell(tb, r, 1);
        long i = t->kind == KGM_CELL_IRI ? kgm_taskset_find(kc->set, t->value) : -1;
        if (i < 0 || kc->role[i] != KGM_ROLE_TRAIN || v->kind != KGM_CELL_IRI) continue;
        if (kgm_strmap_find(generators, v->value, strlen(v->value)) >= 0) continue;   /* plumbing node */
        if (kgm_strmap_intern(vals, v->value, strlen(v->value)) < 0) { kgm_strmap_free(vals); return kgm_fail(KGM_ENOMEM, "out of memory"); }
    }
    size_t n = kgm_strmap_size(vals), first = (size_t)kc->n_codes;
    char **p = realloc(kc->code_prop, (first + n + 1) * sizeof *p);
    if (p) kc->code_prop = p;
    char **v = p ? realloc(kc->code_value, (first + n + 1) * sizeof *v) : NULL;
    if (v) kc->code_value = v;
    float *codes = v ? realloc(kc->codes, kc->n_tasks * (first + n + 1) * sizeof *codes) : NULL;
    int rc = codes ? 0 : kgm_fail(KGM_ENOMEM, "out of memory");
    if (!rc) {
        kc->codes = codes;   /* widen the rows: old width first..., new width first + n */
        for (size_t i = kc->n_tasks; i-- > 0;) {
            memmove(codes + i * (first + n), codes + i * first, first * sizeof *codes);
            memset(codes + i * (first + n) + first, 0, n * sizeof *codes);
        }
    }
    for (size_t j = 0; !rc && j < n; j++) {
        kc->code_value[first + j] = strdup(kgm_strmap_str(vals, (int32_t)j));
        kc->code_prop[first + j] = strdup(prop);
        kc->n_codes++;
        if (!kc->code_value[first + j] || !kc->code_prop[first + j]) rc = kgm_fail(KGM_ENOMEM, "out of memory");
    }
    if (!rc) qsort(kc->code_value + first, n, sizeof *kc->code_value, cmp_str);
    for (size_t r = 0; !rc && r < tb->n_rows; r++) {
        const kgm_cell *t = kgm_table_cell(tb, r, 0), *val = kgm_table_cell(tb, r, 1);
        long i = t->kind == KGM_CELL_IRI ? kgm_taskset_find(kc->set, t->value) : -1;
        for (size_t j = 0; i >= 0 && val->kind == KGM_CELL_IRI && j < n; j++)
            if (!strcmp(kc->code_value[first + j], val->value)) codes[(size_t)i * (first + n) + first + j] = 1.0f;
    }
    kgm_strmap_free(vals);
    return rc;
}

/* One-hot codes of the task's IRI values of declared kgm:CategoricalTaskFeature properties:
 * a column per (property, value seen on a meta-train task); a missing or unseen value leaves
 * the property's columns at 0. Values that are generator nodes are never coded. */
static int categorical_codes(kgm_kgcond *kc, kgm_store *st)
{
    kgm_table *props = NULL, *gens = NULL;
    kgm_strmap *generators = kgm_strmap_new();
    int rc = generators ? categorical_props(st, &props) : kgm_fail(KGM_ENOMEM, "out of memory");
    if (!rc) rc = kgm_store_select(st, "SELECT ?g WHERE { ?g <" KGM_RDF_TYPE_IRI "> <" KGM_NS_IRI "Generator> }", &gens);
    for (size_t r = 0; !rc && r < gens->n_rows; r++) {
        const kgm_cell *g = kgm_table_cell(gens, r, 0);
        if (g->kind == KGM_CELL_IRI && kgm_strmap_intern(generators, g->value, strlen(g->value)) < 0)
            rc = kgm_fail(KGM_ENOMEM, "out of memory");
    }
    for (size_t r = 0; !rc && r < props->n_rows; r++) {
        const char *prop = kgm_table_cell(props, r, 0)->value;
        if (r > 0 && !strcmp(prop, kgm_table_cell(props, r - 1, 0)->value)) continue;   /* one row per type */
        char q[1024];
        if (strlen(prop) > 900) { rc = kgm_fail(KGM_EINVAL, "categorical task feature IRI too long: %.60s...", prop); break; }
        snprintf(q, sizeof q, "SELECT ?t ?v WHERE { ?t <%s> ?v . ?t <" KGM_RDF_TYPE_IRI "> <" KGM_MLS_TASK_IRI "> }", prop);
        kgm_table *tb = NULL;
        rc = kgm_store_select(st, q, &tb);
        if (!rc) rc = add_code_columns(kc, prop, tb, generators);
        kgm_table_free(tb);
    }
    kgm_table_free(props);
    kgm_table_free(gens);
    kgm_strmap_free(generators);
    return rc;
}

/* e(t) of every task: the task node's row (zeros when the node has no triples), centered and
 * scaled (standardize_embedding), or its prototype code (opts.prototypes), the features
 * standardized with meta-train statistics (missing: 0), and the categorical codes (0 or 1). */
static int conditioning(kgm_kgcond *kc, const kgm_graph *desc, const int32_t *emap)
{
    kc->emb_width = kc->opts.use_embedding ? kc->emb->ent_width : 0;
    kc->n_features = kc->opts.use_features ? (int)kc->set->n_features : 0;
    const int n_codes = kc->opts.use_features ? kc->n_codes : 0;
    kc->cond_dim = kc->emb_width + kc->n_features + n_codes;
    kc->cond = calloc(kc->n_tasks * (size_t)(kc->cond_dim ? kc->cond_dim : 1), sizeof(float));
    if (!kc->cond) return kgm_fail(KGM_ENOMEM, "out of memory");
    for (int f = 0; f < kc->n_features; f++) {
        double s = 0, s2 = 0;
        size_t n = 0;
        for (size_t j = 0; j < kc->n_role[KGM_ROLE_TRAIN]; j++) {
            double v = kc->set->tasks[kc->by_role[KGM_ROLE_TRAIN][j]].features[f];
            if (!isnan(v)) { s += v; s2 += v * v; n++; }
        }
        double mean = n ? s / n : 0, var = n ? s2 / n - mean * mean : 0;
        double sd = var > 1e-12 ? sqrt(var) : 1;
        for (size_t i = 0; i < kc->n_tasks; i++) {
            double v = kc->set->tasks[i].features[f];
            kc->cond[i * kc->cond_dim + kc->emb_width + f] = isnan(v) ? 0.0f : (float)((v - mean) / sd);
        }
    }
    for (size_t i = 0; n_codes && i < kc->n_tasks; i++)
        memcpy(kc->cond + i * kc->cond_dim + kc->emb_width + kc->n_features, kc->codes + i * (size_t)n_codes,
               (size_t)n_codes * sizeof(float));
    free(kc->codes);
    kc->codes = NULL;
    for (size_t i = 0; kc->emb_width && i < kc->n_tasks; i++) {
        int32_t e = kgm_graph_find_entity(desc, kc->set->tasks[i].iri);
        if (e < 0 || emap[e] < 0) continue;
        memcpy(kc->cond + i * kc->cond_dim, kc->emb->ent + (size_t)emap[e] * kc->emb_width,
               kc->emb_width * sizeof(float));
    }
    standardize_embedding(kc);
    return kc->opts.prototypes > 0 ? prototype_code(kc) : 0;
}

int kgcond_examples(const kgm_kgcond *kc, size_t task, uint64_t seed, size_t k, size_t q,
                    double **x, double **y, size_t *n_support, size_t *n_query)
{
    kgm_examples ex;
    int rc = kgm_task_examples(&kc->set->tasks[task], seed, k, q, &ex);
    if (rc) return rc;
    *x = ex.x;
    *y = ex.y;
    *n_support = ex.n_support;
    *n_query = ex.n_query;
    return 0;
}

/* x and y standardization over the meta-train tasks (support and query examples). */
static int normalization(kgm_kgcond *kc)
{
    for (int d = 0; d < 16; d++) { kc->x_mean[d] = 0; kc->x_sd[d] = 1; }
    kc->y_mean = 0;
    kc->y_sd = 1;
    if (!kc->opts.normalize) return 0;
    double sx[16] = {0}, sx2[16] = {0}, sy = 0, sy2 = 0;
    size_t n = 0;
    for (size_t j = 0; j < kc->n_role[KGM_ROLE_TRAIN]; j++) {
        double *x, *y;
        size_t ns, nq;
        int rc = kgcond_examples(kc, kc->by_role[KGM_ROLE_TRAIN][j], kc->opts.seed, 10, 10, &x, &y, &ns, &nq);
        if (rc) return rc;
        for (size_t i = 0; i < ns + nq; i++, n++) {
            for (int d = 0; d < kc->x_dim; d++) { double v = x[i * kc->x_dim + d]; sx[d] += v; sx2[d] += v * v; }
            sy += y[i];
            sy2 += y[i] * y[i];
        }
        free(x);
        free(y);
    }
    if (!n) return 0;
    for (int d = 0; d < kc->x_dim; d++) {
        kc->x_mean[d] = sx[d] / n;
        double var = sx2[d] / n - kc->x_mean[d] * kc->x_mean[d];
        kc->x_sd[d] = var > 1e-12 ? sqrt(var) : 1;
    }
    kc->y_mean = sy / n;
    double var = sy2 / n - kc->y_mean * kc->y_mean;
    kc->y_sd = var > 1e-12 ? sqrt(var) : 1;
    return 0;
}

int kgm_kgcond_build(kgm_kgcond **out, struct kgm_store *st, const char *base_dir,
                     const kgm_emb *emb, const kgm_kgcond_opts *opts)
{
    *out = NULL;
    kgm_kgcond *kc = calloc(1, sizeof *kc);
    if (!kc) return kgm_fail(KGM_ENOMEM, "out of memory");
    kc->opts = opts ? *opts : kgm_kgcond_opts_default();
    kgm_graph *desc = NULL;
    int32_t *emap = NULL;
    int rc = kgm_tasks_read(st, base_dir, &kc->set);
    if (!rc) rc = index_tasks(kc);
    if (!rc) rc = kgm_tasks_descriptive_from_store(st, &desc);
    if (!rc) {
        emap = malloc((kgm_graph_n_ents(desc) + 1) * sizeof *emap);
        if (!emap) rc = kgm_fail(KGM_ENOMEM, "out of memory");
    }
    if (!rc) rc = embed(kc, desc, emb, emap);
    if (!rc && kc->opts.use_features) rc = categorical_codes(kc, st);
    if (!rc) rc = conditioning(kc, desc, emap);
    if (!rc) rc = normalization(kc);
    free(emap);
    kgm_graph_free(desc);
    if (rc) { kgm_kgcond_free(kc); return rc; }
    *out = kc;
    return 0;
}

const struct kgm_graph *kgm_kgcond_train_graph(const kgm_kgcond *kc) { return kc->train_graph; }
const kgm_emb *kgm_kgcond_embedding(const kgm_kgcond *kc) { return kc->emb; }
const char *kgm_kgcond_iri(const kgm_kgcond *kc, size_t task) { return kc->set->tasks[task].iri; }
long kgm_kgcond_find(const kgm_kgcond *kc, const char *iri) { return kgm_taskset_find(kc->set, iri); }

/* ---- results ---- */

static void write_values(FILE *f, const char *run, const char *kind, const char *cls, const char *spec_prefix,
                         const kgm_kgcond_value *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "<%s-%s-%s> a %s ; mls:specifiedBy kgm:%s%s ; mls:hasValue \"%.17g\"^^xsd:double .\n",
                run, kind, v[i].name, cls, spec_prefix, v[i].name, v[i].value);
        fprintf(f, "<%s> %s <%s-%s-%s> .\n", run, !strcmp(kind, "hp") ? "mls:hasInput" : "mls:hasOutput",
                run, kind, v[i].name);
    }
}

static int name_ok(const char *s)
{
    if (!s || !*s) return 0;
    for (; *s; s++) if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') || ('0' <= *s && *s <= '9') || *s == '_' || *s == '-')) return 0;
    return 1;
}

static int label_ok(const char *s)
{
    for (; s && *s; s++) if (*s == '"' || *s == '\\' || *s == '\n' || *s == '>' || *s == '<') return 0;
    return 1;
}

int kgm_kgcond_record(struct kgm_store *st, const kgm_kgcond_run *run, char **iri_out)
{
    static unsigned long counter;
    if (iri_out) *iri_out = NULL;
    if (!name_ok(run->learner) || !name_ok(run->init_stage ? run->init_stage : "none"))
        return kgm_fail(KGM_EINVAL, "run: learner and init stage must be plain names");
    for (size_t i = 0; i < run->n_hyper; i++) if (!name_ok(run->hyper[i].name)) return kgm_fail(KGM_EINVAL, "run: bad hyperparameter name '%s'", run->hyper[i].name ? run->hyper[i].name : "");
    for (size_t i = 0; i < run->n_metrics; i++) if (!name_ok(run->metrics[i].name)) return kgm_fail(KGM_EINVAL, "run: bad metric name '%s'", run->metrics[i].name ? run->metrics[i].name : "");
    int ok = label_ok(run->run_iri) && label_ok(run->graph) && label_ok(run->dataset) && label_ok(run->model_path);
    for (size_t i = 0; i < run->n_inputs; i++) ok &= run->inputs[i] && *run->inputs[i] && label_ok(run->inputs[i]);
    if (!ok) return kgm_fail(KGM_EINVAL, "run: IRIs and labels may not hold quotes, backslashes, angle brackets or newlines");
    char iri[256];
    if (run->run_iri) snprintf(iri, sizeof iri, "%s", run->run_iri);
    else snprintf(iri, sizeof iri, "%srun-%ld-%lu", KGM_NS_IRI, (long)time(NULL), ++counter);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return kgm_fail(KGM_ENOMEM, "out of memory");
    fprintf(f, "@prefix mls: <http://www.w3.org/ns/mls#> .\n@prefix kgm: <%s> .\n"
               "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n", KGM_NS_IRI);
    fprintf(f, "<%s> a mls:Run ; mls:executes kgm:%s ; kgm:initStage \"%s\" .\n", iri, run->learner,
            run->init_stage ? run->init_stage : "none");
    fprintf(f, "kgm:%s a mls:Implementation .\n", run->learner);
    if (run->graph) fprintf(f, "<%s> kgm:conditioningGraph \"%s\" .\n", iri, run->graph);
    if (run->dataset) fprintf(f, "<%s> mls:hasInput [ a mls:Dataset ; kgm:label \"%s\" ] .\n", iri, run->dataset);
    for (size_t i = 0; i < run->n_inputs; i++) fprintf(f, "<%s> mls:hasInput <%s> .\n", iri, run->inputs[i]);
    if (!run->no_model) fprintf(f, "<%s-model> a mls:Model .\n<%s> mls:hasOutput <%s-model> .\n", iri, iri, iri);
    if (run->model_path && !run->no_model) fprintf(f, "<%s-model> kgm:modelFile \"%s\" .\n", iri, run->model_path);
    write_values(f, iri, "hp", "mls:HyperParameterSetting", "hp-", run->hyper, run->n_hyper);
    write_values(f, iri, "eval", "mls:ModelEvaluation", "metric-", run->metrics, run->n_metrics);
    fclose(f);
    int rc = kgm_store_load_string(st, text, "turtle", NULL, NULL);
    free(text);
    if (!rc && iri_out) {
        *iri_out = strdup(iri);
        if (!*iri_out) return kgm_fail(KGM_ENOMEM, "out of memory");
    }
    return rc;
}
