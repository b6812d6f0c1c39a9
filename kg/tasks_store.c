/* kg/tasks_store.c - the store side of kg/tasks.h: SPARQL queries that feed a task set, and
 * the descriptive graph of a store. Each query is one triple pattern with a bound predicate
 * (plus one OPTIONAL for generators), so it runs as an index scan instead of a join over
 * many OPTIONALs; the task set assembles the answers. Kept apart from kg/tasks.c so that
 * the fact-level code links without the store. */
#include "tasks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "store.h"

static int column(const kgm_table *t, const char *name)
{
    for (size_t j = 0; j < t->n_cols; j++) if (!strcmp(t->cols[j], name)) return (int)j;
    return -1;
}

/* Each ?x of "SELECT ?x WHERE { ?x a <cls> }" passed to add(). */
static int each_instance(kgm_store *st, kgm_taskset *s, const char *cls,
                         int (*add)(kgm_taskset *, const char *))
{
    char q[512];
    snprintf(q, sizeof q, "SELECT ?x WHERE { ?x <" KGM_RDF_TYPE_IRI "> <%s> }", cls);
    kgm_table *t = NULL;
    int rc = kgm_store_select(st, q, &t);
    int cx = rc ? -1 : column(t, "x");
    for (size_t i = 0; !rc && i < t->n_rows; i++) {
        const kgm_cell *c = kgm_table_cell(t, i, (size_t)cx);
        if (c->kind == KGM_CELL_IRI || c->kind == KGM_CELL_BLANK) rc = add(s, c->value);
    }
    if (t) kgm_table_free(t);
    return rc;
}

/* Every (task, value) of one property, fed to the task set as facts. */
static int facts_of(kgm_store *st, kgm_taskset *s, const char *prop)
{
    char q[512];
    snprintf(q, sizeof q, "SELECT ?t ?v WHERE { ?t <%s> ?v }", prop);
    kgm_table *t = NULL;
    int rc = kgm_store_select(st, q, &t);
    if (rc) return rc;
    int ct = column(t, "t"), cv = column(t, "v");
    for (size_t i = 0; !rc && i < t->n_rows; i++) {
        const kgm_cell *task = kgm_table_cell(t, i, (size_t)ct);
        if (task->kind == KGM_CELL_IRI || task->kind == KGM_CELL_BLANK)
            rc = kgm_taskset_fact(s, task->value, prop, kgm_table_cell(t, i, (size_t)cv));
    }
    kgm_table_free(t);
    return rc;
}

static int generators(kgm_store *st, kgm_taskset *s)
{
    kgm_table *t = NULL;
    int rc = kgm_store_select(st, "SELECT ?g ?fn ?noise WHERE { ?g <" KGM_NS_IRI "function> ?fn "
                        "OPTIONAL { ?g <" KGM_NS_IRI "noiseStd> ?noise } }", &t);
    if (rc) return rc;
    int cg = column(t, "g"), cf = column(t, "fn"), cn = column(t, "noise");
    for (size_t i = 0; !rc && i < t->n_rows; i++) {
        const kgm_cell *g = kgm_table_cell(t, i, (size_t)cg), *fn = kgm_table_cell(t, i, (size_t)cf),
                       *noise = kgm_table_cell(t, i, (size_t)cn);
        double sd = 0;
        if (noise->kind != KGM_CELL_NULL) {
            char *end;
            sd = noise->value ? strtod(noise->value, &end) : NAN;
            if (!noise->value || *end) sd = NAN;
        }
        if (fn->kind != KGM_CELL_IRI) rc = kgm_fail(KGM_EINVAL, "generator %s: kgm:function must be an IRI", g->value);
        else rc = kgm_taskset_generator(s, g->value, fn->value, sd);
    }
    kgm_table_free(t);
    return rc;
}

int kgm_tasks_read(kgm_store *st, const char *base_dir, kgm_taskset **out)
{
    *out = NULL;
    kgm_taskset *s = kgm_taskset_new(base_dir);
    if (!s) return kgm_fail(KGM_ENOMEM, "out of memory");
    int rc = each_instance(st, s, KGM_NS_IRI "TaskFeature", kgm_taskset_add_feature);
    if (!rc) rc = each_instance(st, s, KGM_MLS_TASK_IRI, kgm_taskset_add_task);
    if (!rc) rc = generators(st, s);
    size_t n;
    const char *const *plumbing = kgm_tasks_plumbing(&n);
    for (size_t i = 0; !rc && i < n; i++) rc = facts_of(st, s, plumbing[i]);
    for (size_t i = 0; !rc && i < s->n_features; i++) rc = facts_of(st, s, s->features[i]);
    if (!rc) rc = kgm_taskset_finish(s);
    if (rc) { kgm_taskset_free(s); return rc; }
    *out = s;
    return 0;
}

int kgm_tasks_descriptive_from_store(kgm_store *st, kgm_graph **out)
{
    *out = NULL;
    kgm_table *t = NULL;
    int rc = kgm_store_select(st, "SELECT ?p WHERE { ?p <" KGM_RDF_TYPE_IRI "> <" KGM_NS_IRI "PlumbingProperty> }", &t);
    if (rc) return rc;
    int cp = column(t, "p");
    const char **props = malloc((t->n_rows ? t->n_rows : 1) * sizeof *props);
    size_t n = 0;
    if (!props) rc = kgm_fail(KGM_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < t->n_rows; i++) {
        const kgm_cell *c = kgm_table_cell(t, i, (size_t)cp);
        if (c->kind == KGM_CELL_IRI) props[n++] = c->value;
    }
    kgm_graph *full = NULL;
    if (!rc) rc = kgm_store_view(st, &full);
    if (!rc) rc = kgm_tasks_descriptive(full, props, n, out);
    kgm_graph_free(full);
    free(props);
    kgm_table_free(t);
    return rc;
}
