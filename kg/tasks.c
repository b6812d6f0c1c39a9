/* kg/tasks.c - task sets built from (task, property, value) facts, a task's examples from
 * its CSV file or generator, and the descriptive graph without plumbing. No store calls
 * here (those are in kg/tasks_store.c), so this part works on hand-built inputs too. */
#include "tasks.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "error.h"

static const char *const PLUMBING[] = {
    KGM_NS_IRI "role", KGM_NS_IRI "dataFile", KGM_NS_IRI "inputColumn", KGM_NS_IRI "outputColumn",
    KGM_NS_IRI "supportRows", KGM_NS_IRI "generator", KGM_NS_IRI "function", KGM_NS_IRI "noiseStd",
    KGM_NS_IRI "paramA", KGM_NS_IRI "paramB", KGM_NS_IRI "paramC", KGM_NS_IRI "paramD",
};

const char *const *kgm_tasks_plumbing(size_t *n)
{
    *n = sizeof PLUMBING / sizeof PLUMBING[0];
    return PLUMBING;
}

/* ---- building ---- */

struct kgm_taskset_build {
    size_t      cap;           /* room in tasks[] */
    char       *base_dir;      /* for relative literal data files; NULL = working directory */
    kgm_strmap *ids;           /* task IRI -> id */
    size_t     *pos;           /* (cap) id -> index in tasks[] */
    char      **gen_iri, **gen_fn;   /* (n_gens) generator nodes: IRI, function IRI */
    double     *gen_noise;     /* (n_gens) */
    size_t      n_gens, cap_gens;
};

kgm_taskset *kgm_taskset_new(const char *base_dir)
{
    kgm_taskset *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->build = calloc(1, sizeof *s->build);
    if (!s->build) { free(s); return NULL; }
    s->build->ids = kgm_strmap_new();
    if (base_dir) s->build->base_dir = strdup(base_dir);
    if (!s->build->ids || (base_dir && !s->build->base_dir)) { kgm_taskset_free(s); return NULL; }
    return s;
}

static void task_clear(kgm_task *t)
{
    free(t->iri); free(t->path); free(t->output); free(t->generator); free(t->features);
    for (int i = 0; i < t->n_inputs; i++) free(t->inputs[i]);
}

void kgm_taskset_free(kgm_taskset *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) task_clear(&s->tasks[i]);
    for (size_t i = 0; i < s->n_features; i++) free(s->features[i]);
    for (size_t i = 0; i < s->build->n_gens; i++) { free(s->build->gen_iri[i]); free(s->build->gen_fn[i]); }
    free(s->tasks); free(s->features); free(s->build->base_dir); free(s->build->pos);
    free(s->build->gen_iri); free(s->build->gen_fn); free(s->build->gen_noise);
    kgm_strmap_free(s->build->ids);
    free(s->build);
    free(s);
}

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, nc * size);
    if (!p) return kgm_fail(KGM_ENOMEM, "out of memory reading tasks");
    *arr = p;
    *cap = nc;
    return 0;
}

int kgm_taskset_add_task(kgm_taskset *s, const char *iri)
{
    if (kgm_strmap_find(s->build->ids, iri, strlen(iri)) >= 0) return 0;   /* already there */
    size_t cap = s->build->cap;
    if (grow((void **)&s->tasks, &s->build->cap, s->n, sizeof *s->tasks)) return KGM_ENOMEM;
    if (cap != s->build->cap) {
        size_t *p = realloc(s->build->pos, s->build->cap * sizeof *p);
        if (!p) return kgm_fail(KGM_ENOMEM, "out of memory reading tasks");
        s->build->pos = p;
    }
    kgm_task *t = &s->tasks[s->n];
    memset(t, 0, sizeof *t);
    t->iri = strdup(iri);
    if (!t->iri || kgm_strmap_intern(s->build->ids, iri, strlen(iri)) < 0) {
        free(t->iri);
        return kgm_fail(KGM_ENOMEM, "out of memory reading tasks");
    }
    t->role = KGM_ROLE_NONE;
    t->support_rows = -1;
    s->build->pos[s->n] = s->n;
    s->n++;
    return 0;
}

int kgm_taskset_add_feature(kgm_taskset *s, const char *prop_iri)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->tasks[i].features)
            return kgm_fail(KGM_ESTATE, "task features must be declared before their values");
    for (size_t i = 0; i < s->n_features; i++)
        if (!strcmp(s->features[i], prop_iri)) return 0;
    char **f = realloc(s->features, (s->n_features + 1) * sizeof *f);
    if (!f) return kgm_fail(KGM_ENOMEM, "out of memory");
    s->features = f;
    /* keep sorted, so feature order does not depend on query order */
    size_t at = s->n_features;
    while (at > 0 && strcmp(f[at - 1], prop_iri) > 0) { f[at] = f[at - 1]; at--; }
    f[at] = strdup(prop_iri);
    if (!f[at]) {
        memmove(&f[at], &f[at + 1], (s->n_features - at) * sizeof *f);
        return kgm_fail(KGM_ENOMEM, "out of memory");
    }
    s->n_features++;
    return 0;
}

static int cell_number(const kgm_cell *v, double *out)
{
    if (!v->value || (v->kind != KGM_CELL_NUMBER && v->kind != KGM_CELL_LITERAL && v->kind != KGM_CELL_TEXT))
        return -1;
    char *end;
    errno = 0;
    double d = strtod(v->value, &end);
    if (end == v->value || *end || !isfinite(d)) return -1;
    *out = d;
    return 0;
}

static int is_text(const kgm_cell *v)
{
    return v->value && (v->kind == KGM_CELL_LITERAL || v->kind == KGM_CELL_TEXT);
}

/* A file: IRI's path with %XX decoded, or NULL. */
static char *file_iri_path(const char *iri)
{
    const char *p;
    if (!strncmp(iri, "file://localhost/", 17)) p = iri + 16;
    else if (!strncmp(iri, "file:///", 8)) p = iri + 7;
    else return NULL;
    char *out = malloc(strlen(p) + 1), *w = out;
    if (!out) return NULL;
    for (; *p; p++) {
        unsigned hex;
        if (*p == '%' && sscanf(p + 1, "%2x", &hex) == 1 && hex) { *w++ = (char)hex; p += 2; }
        else *w++ = *p;
    }
    *w = 0;
    return out;
}

static int set_once(char **slot, const char *value, const char *task, const char *what)
{
    if (*slot) {
        if (!strcmp(*slot, value)) return 0;
        return kgm_fail(KGM_EINVAL, "task %s has two %s values", task, what);
    }
    *slot = strdup(value);
    return *slot ? 0 : kgm_fail(KGM_ENOMEM, "out of memory");
}

static int fact_data_file(kgm_taskset *s, kgm_task *t, const kgm_cell *v)
{
    char *path = NULL;
    if (v->kind == KGM_CELL_IRI) {
        path = file_iri_path(v->value);
        if (!path) return kgm_fail(KGM_EINVAL, "task %s: kgm:dataFile <%s> is not a file: IRI", t->iri, v->value);
    } else if (is_text(v)) {
        int absolute = v->value[0] == '/';
        if (asprintf(&path, "%s%s%s", absolute || !s->build->base_dir ? "" : s->build->base_dir,
                     absolute || !s->build->base_dir ? "" : "/", v->value) < 0) path = NULL;
        if (!path) return kgm_fail(KGM_ENOMEM, "out of memory");
    } else {
        return kgm_fail(KGM_EINVAL, "task %s: kgm:dataFile must be an IRI or a string", t->iri);
    }
    int rc = set_once(&t->path, path, t->iri, "kgm:dataFile");
    free(path);
    return rc;
}

static int fact_plumbing(kgm_taskset *s, kgm_task *t, const char *local, const kgm_cell *v)
{
    double d;
    if (!strcmp(local, "role")) {
        static const char *const R[] = { KGM_NS_IRI "MetaTrain", KGM_NS_IRI "MetaValidation", KGM_NS_IRI "MetaTest" };
        for (int i = 0; i < 3; i++)
            if (v->kind == KGM_CELL_IRI && !strcmp(v->value, R[i])) {
                if (t->role != KGM_ROLE_NONE && t->role != (kgm_role)i)
                    return kgm_fail(KGM_EINVAL, "task %s has two roles", t->iri);
                t->role = (kgm_role)i;
                return 0;
            }
        return kgm_fail(KGM_EINVAL, "task %s: unknown role %s", t->iri, v->value ? v->value : "(none)");
    }
    if (!strcmp(local, "dataFile")) return fact_data_file(s, t, v);
    if (!strcmp(local, "outputColumn")) {
        if (!is_text(v)) return kgm_fail(KGM_EINVAL, "task %s: kgm:outputColumn must be a string", t->iri);
        return set_once(&t->output, v->value, t->iri, "kgm:outputColumn");
    }
    if (!strcmp(local, "inputColumn")) {
        if (!is_text(v)) return kgm_fail(KGM_EINVAL, "task %s: kgm:inputColumn must be a string", t->iri);
        for (int i = 0; i < t->n_inputs; i++) if (!strcmp(t->inputs[i], v->value)) return 0;
        if (t->n_inputs == KGM_TASK_MAX_INPUTS)
            return kgm_fail(KGM_EINVAL, "task %s: more than %d input columns", t->iri, KGM_TASK_MAX_INPUTS);
        if (!(t->inputs[t->n_inputs] = strdup(v->value))) return kgm_fail(KGM_ENOMEM, "out of memory");
        t->n_inputs++;
        return 0;
    }
    if (!strcmp(local, "supportRows")) {
        if (cell_number(v, &d) || d < 0 || d != floor(d) || d > 1e9)
            return kgm_fail(KGM_EINVAL, "task %s: kgm:supportRows must be a whole number >= 0", t->iri);
        if (t->support_rows >= 0 && t->support_rows != (long)d)
            return kgm_fail(KGM_EINVAL, "task %s has two kgm:supportRows values", t->iri);
        t->support_rows = (long)d;
        return 0;
    }
    if (!strcmp(local, "generator")) {
        if (v->kind != KGM_CELL_IRI && v->kind != KGM_CELL_BLANK)
            return kgm_fail(KGM_EINVAL, "task %s: kgm:generator must be a node", t->iri);
        return set_once(&t->generator, v->value, t->iri, "kgm:generator");
    }
    if (!strncmp(local, "param", 5) && local[5] >= 'A' && local[5] <= 'D' && !local[6]) {
        int i = local[5] - 'A';
        if (cell_number(v, &d))
            return kgm_fail(KGM_EINVAL, "task %s: kgm:%s must be a finite number", t->iri, local);
        if ((t->params_set >> i & 1) && t->gen.p[i] != d)
            return kgm_fail(KGM_EINVAL, "task %s has two kgm:%s values", t->iri, local);
        t->gen.p[i] = d;
        t->params_set |= 1u << i;
    }
    return 0;    /* other kgm: properties (similarTo, ...) say nothing about the data */
}

int kgm_taskset_fact(kgm_taskset *s, const char *task, const char *prop, const kgm_cell *value)
{
    int32_t id = kgm_strmap_find(s->build->ids, task, strlen(task));
    if (id < 0 || !value || value->kind == KGM_CELL_NULL) return 0;
    kgm_task *t = &s->tasks[s->build->pos[id]];
    size_t ns = strlen(KGM_NS_IRI);
    if (!strncmp(prop, KGM_NS_IRI, ns)) return fact_plumbing(s, t, prop + ns, value);
    for (size_t j = 0; j < s->n_features; j++) {
        if (strcmp(s->features[j], prop)) continue;
        double d;
        if (cell_number(value, &d)) return 0;     /* a non-numeric value is no feature value */
        if (!t->features) {
            t->features = malloc(s->n_features * sizeof *t->features);
            if (!t->features) return kgm_fail(KGM_ENOMEM, "out of memory");
            for (size_t k = 0; k < s->n_features; k++) t->features[k] = NAN;
        }
        if (!isnan(t->features[j]) && t->features[j] != d)
            return kgm_fail(KGM_EINVAL, "task %s has two values of feature %s", task, prop);
        t->features[j] = d;
    }
    return 0;
}

int kgm_taskset_generator(kgm_taskset *s, const char *gen_iri, const char *fn_iri, double noise)
{
    kgm_fn fn;
    if (kgm_taskset_find(s, gen_iri) >= 0)
        return kgm_fail(KGM_EINVAL, "%s is both a task and a generator", gen_iri);
    if (kgm_taskgen_fn_parse(fn_iri, &fn)) return kgm_fail(KGM_EINVAL, "generator %s: unknown function %s", gen_iri, fn_iri);
    if (!(noise >= 0) || !isfinite(noise)) return kgm_fail(KGM_EINVAL, "generator %s: kgm:noiseStd must be >= 0", gen_iri);
    for (size_t i = 0; i < s->build->n_gens; i++)
        if (!strcmp(s->build->gen_iri[i], gen_iri)) {
            if (!strcmp(s->build->gen_fn[i], fn_iri) && s->build->gen_noise[i] == noise) return 0;
            return kgm_fail(KGM_EINVAL, "generator %s has two functions or noise levels", gen_iri);
        }
    size_t cap = s->build->cap_gens;
    if (s->build->n_gens == cap) {
        size_t nc = cap ? cap * 2 : 8;
        char **a = realloc(s->build->gen_iri, nc * sizeof *a);
        if (a) s->build->gen_iri = a;
        char **b = realloc(s->build->gen_fn, nc * sizeof *b);
        if (b) s->build->gen_fn = b;
        double *c = realloc(s->build->gen_noise, nc * sizeof *c);
        if (c) s->build->gen_noise = c;
        if (!a || !b || !c) return kgm_fail(KGM_ENOMEM, "out of memory");
        s->build->cap_gens = nc;
    }
    s->build->gen_iri[s->build->n_gens] = strdup(gen_iri);
    s->build->gen_fn[s->build->n_gens] = strdup(fn_iri);
    s->build->gen_noise[s->build->n_gens] = noise;
    if (!s->build->gen_iri[s->build->n_gens] || !s->build->gen_fn[s->build->n_gens]) {
        free(s->build->gen_iri[s->build->n_gens]); free(s->build->gen_fn[s->build->n_gens]);
        return kgm_fail(KGM_ENOMEM, "out of memory");
    }
    s->build->n_gens++;
    return 0;
}

static int check_task(kgm_taskset *s, kgm_task *t)
{
    int has_csv = t->path || t->output || t->n_inputs || t->support_rows >= 0;
    int has_gen = t->generator || t->params_set;
    if (has_csv && has_gen) return kgm_fail(KGM_EINVAL, "task %s has both a data file and a generator", t->iri);
    if (has_csv) {
        if (!t->path) return kgm_fail(KGM_EINVAL, "task %s: column names but no kgm:dataFile", t->iri);
        if (!t->output) return kgm_fail(KGM_EINVAL, "task %s: no kgm:outputColumn", t->iri);
        if (!t->n_inputs) return kgm_fail(KGM_EINVAL, "task %s: no kgm:inputColumn", t->iri);
        for (int i = 0; i < t->n_inputs; i++)
            if (!strcmp(t->inputs[i], t->output))
                return kgm_fail(KGM_EINVAL, "task %s: column %s is both input and output", t->iri, t->output);
        t->source = KGM_SOURCE_CSV;
    } else if (has_gen) {
        if (!t->generator) return kgm_fail(KGM_EINVAL, "task %s: parameters but no kgm:generator", t->iri);
        size_t g = 0;
        while (g < s->build->n_gens && strcmp(s->build->gen_iri[g], t->generator)) g++;
        if (g == s->build->n_gens)
            return kgm_fail(KGM_EINVAL, "task %s: generator %s has no kgm:function", t->iri, t->generator);
        kgm_fn fn;
        kgm_taskgen_fn_parse(s->build->gen_fn[g], &fn);
        unsigned need = (1u << kgm_taskgen_fn_nparams(fn)) - 1;
        if (t->params_set != need)
            return kgm_fail(KGM_EINVAL, "task %s: %s takes exactly %d parameters (kgm:paramA..)",
                            t->iri, kgm_taskgen_fn_name(fn), kgm_taskgen_fn_nparams(fn));
        t->gen.fn = fn;
        t->gen.noise = s->build->gen_noise[g];
        t->source = KGM_SOURCE_GENERATOR;
    }
    return 0;
}

static int by_iri(const void *a, const void *b)
{
    return strcmp(((const kgm_task *)a)->iri, ((const kgm_task *)b)->iri);
}

int kgm_taskset_finish(kgm_taskset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        int rc = check_task(s, &s->tasks[i]);
        if (rc) return rc;
    }
    if (s->n) qsort(s->tasks, s->n, sizeof *s->tasks, by_iri);
    for (size_t i = 0; i < s->n; i++)
        s->build->pos[kgm_strmap_find(s->build->ids, s->tasks[i].iri, strlen(s->tasks[i].iri))] = i;
    return 0;
}

long kgm_taskset_find(const kgm_taskset *s, const char *iri)
{
    int32_t id = kgm_strmap_find(s->build->ids, iri, strlen(iri));
    return id < 0 ? -1 : (long)s->build->pos[id];
}

kgm_table *kgm_taskset_table(const kgm_taskset *s)
{
    static const char *const ROLES[] = { "meta-train", "meta-validation", "meta-test" };
    size_t nc = 4 + s->n_features;
    const char **names = malloc(nc * sizeof *names);
    if (!names) return NULL;
    names[0] = "task"; names[1] = "role"; names[2] = "source"; names[3] = "data";
    for (size_t j = 0; j < s->n_features; j++) names[4 + j] = s->features[j];
    kgm_table *tb = kgm_table_new(nc, names);
    free(names);
    for (size_t i = 0; tb && i < s->n; i++) {
        const kgm_task *t = &s->tasks[i];
        long r = kgm_table_add_row(tb);
        if (r < 0) { kgm_table_free(tb); return NULL; }
        int rc = kgm_table_set(tb, (size_t)r, 0, KGM_CELL_IRI, t->iri, NULL, NULL);
        if (!rc && t->role != KGM_ROLE_NONE) rc = kgm_table_set_text(tb, (size_t)r, 1, ROLES[t->role]);
        if (!rc && t->source == KGM_SOURCE_CSV) {
            rc = kgm_table_set_text(tb, (size_t)r, 2, "csv");
            if (!rc) rc = kgm_table_set_text(tb, (size_t)r, 3, t->path);
        } else if (!rc && t->source == KGM_SOURCE_GENERATOR) {
            rc = kgm_table_set_text(tb, (size_t)r, 2, "generator");
            if (!rc) rc = kgm_table_set_text(tb, (size_t)r, 3, kgm_taskgen_fn_name(t->gen.fn));
        }
        for (size_t j = 0; !rc && t->features && j < s->n_features; j++)
            if (!isnan(t->features[j])) rc = kgm_table_set_number(tb, (size_t)r, 4 + j, t->features[j]);
        if (rc) { kgm_table_free(tb); return NULL; }
    }
    return tb;
}

/* ---- examples ---- */

void kgm_examples_free(kgm_examples *e)
{
    if (!e) return;
    free(e->x); free(e->y);
    e->x = e->y = NULL;
}

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static int examples_alloc(kgm_examples *e, size_t n, int dim)
{
    e->dim = dim;
    e->x = malloc((n ? n : 1) * (size_t)dim * sizeof *e->x);
    e->y = malloc((n ? n : 1) * sizeof *e->y);
    if (!e->x || !e->y) { kgm_examples_free(e); return kgm_fail(KGM_ENOMEM, "out of memory"); }
    return 0;
}

static int csv_examples(const kgm_task *t, size_t k, size_t q, kgm_examples *out)
{
    kgm_csv *c = NULL;
    int rc = kgm_csv_read(&c, t->path, ',');
    if (rc) return rc;
    int cols[KGM_TASK_MAX_INPUTS], ycol = kgm_csv_column(c, t->output);
    rc = ycol < 0 ? ycol : 0;
    for (int i = 0; !rc && i < t->n_inputs; i++) {
        cols[i] = kgm_csv_column(c, t->inputs[i]);
        if (cols[i] < 0) rc = cols[i];
    }
    /* Inputs in the file's column order: RDF gives the column names as an unordered set. */
    for (int i = 1; !rc && i < t->n_inputs; i++)
        for (int j = i; j > 0 && cols[j - 1] > cols[j]; j--) { int tmp = cols[j]; cols[j] = cols[j - 1]; cols[j - 1] = tmp; }
    size_t rows = kgm_csv_rows(c);
    size_t ns = k ? k : (size_t)t->support_rows;
    if (!rc && !k && t->support_rows < 0)
        rc = kgm_fail(KGM_EINVAL, "task %s: no kgm:supportRows and no support size asked", t->iri);
    if (!rc && ns > rows)
        rc = kgm_fail_at(KGM_EINVAL, t->path, 0, 0, "%zu rows, fewer than the %zu support rows of task %s", rows, ns, t->iri);
    size_t nq = rc ? 0 : rows - ns;
    if (q && nq > q) nq = q;
    if (!rc) rc = examples_alloc(out, ns + nq, t->n_inputs);
    for (size_t r = 0; !rc && r < ns + nq; r++) {
        for (int i = 0; !rc && i < t->n_inputs; i++)
            rc = kgm_csv_number(c, r, (size_t)cols[i], &out->x[r * (size_t)t->n_inputs + (size_t)i]);
        if (!rc) rc = kgm_csv_number(c, r, (size_t)ycol, &out->y[r]);
    }
    if (rc) kgm_examples_free(out);
    else { out->n_support = ns; out->n_query = nq; }
    kgm_csv_free(c);
    return rc;
}

int kgm_task_examples(const kgm_task *t, uint64_t seed, size_t k, size_t q, kgm_examples *out)
{
    memset(out, 0, sizeof *out);
    if (t->source == KGM_SOURCE_CSV) return csv_examples(t, k, q, out);
    if (t->source != KGM_SOURCE_GENERATOR) return kgm_fail(KGM_EINVAL, "task %s has no data (no kgm:dataFile or kgm:generator)", t->iri);
    if (k + q == 0) return kgm_fail(KGM_EINVAL, "task %s: ask for at least one example", t->iri);
    int rc = examples_alloc(out, k + q, kgm_taskgen_fn_dim(t->gen.fn));
    if (!rc) rc = kgm_taskgen_sample(&t->gen, seed ^ fnv1a64(t->iri), k, q, out->x, out->y);
    if (rc) { kgm_examples_free(out); return rc; }
    out->n_support = k;
    out->n_query = q;
    return 0;
}

/* ---- the descriptive graph ---- */

static int in_kgm_ns(const char *name) { return !strncmp(name, KGM_NS_IRI, strlen(KGM_NS_IRI)); }

/* Marks in hidden[] the generator nodes and the records of runs (kgm_kgcond_record, models/tune.h):
 * nodes typed as one of the classes below, and a run's blank inputs and outputs (its dataset node).
 * Records are results, not descriptions: were they embedded, e(t) would change with every run
 * recorded in the store, and a model trained before a run could no longer find its e(t). */
static int hide_typed(const kgm_graph *g, char *hidden)
{
    static const char *const classes[] = { KGM_NS_IRI "Generator", KGM_NS_IRI "TuningSearch",
        KGM_MLS_IRI "Run", KGM_MLS_IRI "Model", KGM_MLS_IRI "ModelEvaluation", KGM_MLS_IRI "HyperParameterSetting" };
    const int32_t type = kgm_graph_find_relation(g, KGM_RDF_TYPE_IRI), run = kgm_graph_find_entity(g, KGM_MLS_IRI "Run");
    const int32_t in = kgm_graph_find_relation(g, KGM_MLS_IRI "hasInput"), out = kgm_graph_find_relation(g, KGM_MLS_IRI "hasOutput");
    if (type < 0) return KGM_OK;
    int32_t cls[sizeof classes / sizeof *classes];
    for (size_t c = 0; c < sizeof classes / sizeof *classes; c++) cls[c] = kgm_graph_find_entity(g, classes[c]);
    const size_t n = kgm_graph_n_triples(g);
    char *is_run = calloc(kgm_graph_n_ents(g) + 1, 1);
    if (!is_run) return kgm_fail(KGM_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        kgm_triple tr = kgm_graph_triple(g, i);
        if (tr.r != type) continue;
        for (size_t c = 0; c < sizeof classes / sizeof *classes; c++) hidden[tr.h] |= cls[c] >= 0 && tr.t == cls[c];
        if (run >= 0 && tr.t == run) is_run[tr.h] = 1;
    }
    for (size_t i = 0; i < n; i++) {
        kgm_triple tr = kgm_graph_triple(g, i);
        if (is_run[tr.h] && (tr.r == in || tr.r == out) && !strncmp(kgm_graph_ent_name(g, tr.t), "_:", 2))
            hidden[tr.t] = 1;   /* a named input (a dataset the graph describes) stays */
    }
    free(is_run);
    return KGM_OK;
}

int kgm_tasks_descriptive(const kgm_graph *full, const char *const *plumbing, size_t n_plumbing,
                          kgm_graph **out)
{
    *out = NULL;
    size_t n_ents = kgm_graph_n_ents(full), n_rels = kgm_graph_n_rels(full);
    char *hidden_ent = calloc(n_ents ? n_ents : 1, 1), *hidden_rel = calloc(n_rels ? n_rels : 1, 1);
    kgm_graph *g = kgm_graph_new();
    int rc = hidden_ent && hidden_rel && g ? kgm_graph_check(full, "descriptive graph") : kgm_fail(KGM_ENOMEM, "out of memory");
    size_t n_builtin;
    const char *const *builtin = kgm_tasks_plumbing(&n_builtin);
    for (size_t r = 0; !rc && r < n_rels; r++) {
        const char *name = kgm_graph_rel_name(full, (int32_t)r);
        if (!name) { rc = KGM_ENOMEM; break; }
        for (size_t i = 0; i < n_builtin; i++) hidden_rel[r] |= !strcmp(name, builtin[i]);
        for (size_t i = 0; i < n_plumbing; i++) hidden_rel[r] |= !strcmp(name, plumbing[i]);
    }
    /* Vocabulary terms, generator nodes and run records never appear, on either end of a triple. */
    for (size_t e = 0; !rc && e < n_ents; e++) {
        const char *name = kgm_graph_ent_name(full, (int32_t)e);
        if (!name) rc = KGM_ENOMEM;
        else hidden_ent[e] = (char)in_kgm_ns(name);
    }
    if (!rc) rc = hide_typed(full, hidden_ent);
    const size_t n_triples = kgm_graph_n_triples(full);
    for (size_t i = 0; !rc && i < n_triples; i++) {
        kgm_triple tr = kgm_graph_triple(full, i);
        if (hidden_rel[tr.r] || hidden_ent[tr.h] || hidden_ent[tr.t]) continue;
        const char *hn = kgm_graph_ent_name(full, tr.h), *rn = kgm_graph_rel_name(full, tr.r);
        const char *tn = kgm_graph_ent_name(full, tr.t);
        int32_t h = hn ? kgm_graph_entity(g, hn) : -1, r = rn ? kgm_graph_relation(g, rn) : -1;
        int32_t t = tn ? kgm_graph_entity(g, tn) : -1;
        rc = h < 0 || r < 0 || t < 0 ? kgm_fail(KGM_ENOMEM, "out of memory") : kgm_graph_add(g, h, r, t);
    }
    const kgm_attr *attrs = NULL;
    size_t n_attrs = 0;
    if (!rc) rc = kgm_graph_attrs(full, &attrs, &n_attrs);
    for (size_t i = 0; !rc && i < n_attrs; i++) {
        const kgm_attr *a = &attrs[i];
        const char *prop = kgm_graph_prop_name(full, a->prop);
        int hidden = hidden_ent[a->ent] || in_kgm_ns(prop);
        for (size_t k = 0; k < n_plumbing; k++) hidden |= !strcmp(prop, plumbing[k]);
        if (hidden) continue;
        int32_t e = kgm_graph_entity(g, kgm_graph_ent_name(full, a->ent));
        rc = e < 0 ? kgm_fail(KGM_ENOMEM, "out of memory") : kgm_graph_add_attr(g, e, prop, a->value);
    }
    if (!rc) rc = kgm_graph_finish(g);
    free(hidden_ent); free(hidden_rel);
    if (rc) { kgm_graph_free(g); return rc; }
    *out = g;
    return 0;
}
