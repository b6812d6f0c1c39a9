/* tests/test_tasks.c - tasks read out of the shipped graphs, their examples, and the
 * descriptive graph that must hold no plumbing (no generator parameter, data file, role).
 *
 * The shipped Turtle files are parsed here with raptor directly and fed to the task set the
 * way kg/tasks_store.c feeds it from SPARQL answers (tasks, features, generators, then one
 * property at a time), and turned into a kgm_graph the way the store's extraction does
 * (IRIs and blank nodes are entities, numeric literals attributes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>
#include <raptor2.h>

#include "error.h"
#include "tasks.h"
#include "tmpfile.h"

#define RDF_TYPE "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
#define XSD "http://www.w3.org/2001/XMLSchema#"
#define SF "http://kgmeta.org/data/sixfam#"
#define GM "http://kgmeta.org/data/gapminder#"

typedef struct { char *s, *p; kgm_cell o; } stmt;
typedef struct { stmt *v; size_t n, cap; } stmts;

static char *term_text(raptor_term *t, kgm_cell_kind *kind, char **datatype)
{
    *datatype = NULL;
    switch (t->type) {
    case RAPTOR_TERM_TYPE_URI:
        *kind = KGM_CELL_IRI;
        return strdup((const char *)raptor_uri_as_string(t->value.uri));
    case RAPTOR_TERM_TYPE_BLANK:
        *kind = KGM_CELL_BLANK;
        return strdup((const char *)t->value.blank.string);
    default:
        *kind = KGM_CELL_LITERAL;
        if (t->value.literal.datatype)
            *datatype = strdup((const char *)raptor_uri_as_string(t->value.literal.datatype));
        return strdup((const char *)t->value.literal.string);
    }
}

static void on_statement(void *user, raptor_statement *st)
{
    stmts *a = user;
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 1024;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
    }
    stmt *x = &a->v[a->n++];
    kgm_cell_kind k;
    char *dt;
    x->s = term_text(st->subject, &k, &dt);
    x->p = term_text(st->predicate, &k, &dt);
    memset(&x->o, 0, sizeof x->o);
    x->o.value = term_text(st->object, &x->o.kind, &x->o.datatype);
}

static void parse_into(stmts *a, const char *file)
{
    char path[4096];
    const char *src = getenv("KGM_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/datasets/%s", src ? src : "..", file);
    raptor_world *w = raptor_new_world();
    raptor_parser *p = raptor_new_parser(w, "turtle");
    raptor_parser_set_statement_handler(p, a, on_statement);
    unsigned char *us = raptor_uri_filename_to_uri_string(path);
    raptor_uri *uri = raptor_new_uri(w, us);
    size_t before = a->n;
    assert_int_equal(raptor_parser_parse_file(p, uri, uri), 0);
    assert_true(a->n > before);
    raptor_free_uri(uri);
    raptor_free_memory(us);
    raptor_free_parser(p);
    raptor_free_world(w);
}

static void stmts_free(stmts *a)
{
    for (size_t i = 0; i < a->n; i++) { free(a->v[i].s); free(a->v[i].p); free(a->v[i].o.value); free(a->v[i].o.datatype); }
    free(a->v);
}

static int is_numeric(const kgm_cell *o)
{
    if (o->kind != KGM_CELL_LITERAL || !o->datatype) return 0;
    return !strcmp(o->datatype, XSD "decimal") || !strcmp(o->datatype, XSD "integer") ||
           !strcmp(o->datatype, XSD "double");
}

/* The full graph, as the store's extraction gives it. */
static kgm_graph *to_graph(const stmts *a)
{
    kgm_graph *g = kgm_graph_new();
    for (size_t i = 0; i < a->n; i++) {
        const stmt *x = &a->v[i];
        int32_t h = kgm_graph_entity(g, x->s);
        if (x->o.kind == KGM_CELL_IRI || x->o.kind == KGM_CELL_BLANK)
            assert_int_equal(kgm_graph_add(g, h, kgm_graph_relation(g, x->p), kgm_graph_entity(g, x->o.value)), 0);
        else if (is_numeric(&x->o))
            assert_int_equal(kgm_graph_add_attr(g, h, x->p, strtod(x->o.value, NULL)), 0);
    }
    assert_int_equal(kgm_graph_finish(g), 0);
    return g;
}

/* The task set, fed in the order kgm_tasks_read uses. */
static int to_taskset(const stmts *a, kgm_taskset **out)
{
    kgm_taskset *s = kgm_taskset_new("/unused");
    int rc = 0;
    for (size_t i = 0; !rc && i < a->n; i++)
        if (!strcmp(a->v[i].p, RDF_TYPE) && !strcmp(a->v[i].o.value, KGM_NS_IRI "TaskFeature"))
            rc = kgm_taskset_add_feature(s, a->v[i].s);
    for (size_t i = 0; !rc && i < a->n; i++)
        if (!strcmp(a->v[i].p, RDF_TYPE) && !strcmp(a->v[i].o.value, "http://www.w3.org/ns/mls#Task"))
            rc = kgm_taskset_add_task(s, a->v[i].s);
    for (size_t i = 0; !rc && i < a->n; i++) {
        if (strcmp(a->v[i].p, KGM_NS_IRI "function")) continue;
        double noise = 0;
        for (size_t j = 0; j < a->n; j++)
            if (!strcmp(a->v[j].s, a->v[i].s) && !strcmp(a->v[j].p, KGM_NS_IRI "noiseStd")) noise = strtod(a->v[j].o.value, NULL);
        rc = kgm_taskset_generator(s, a->v[i].s, a->v[i].o.value, noise);
    }
    for (size_t i = 0; !rc && i < a->n; i++) rc = kgm_taskset_fact(s, a->v[i].s, a->v[i].p, &a->v[i].o);
    if (!rc) rc = kgm_taskset_finish(s);
    if (rc) { kgm_taskset_free(s); s = NULL; }
    *out = s;
    return rc;
}

static void gapminder_tasks(void **state)
{
    (void)state;
    stmts a = { 0 };
    parse_into(&a, "gapminder.ttl");
    kgm_taskset *s;
    if (to_taskset(&a, &s)) fail_msg("%s", kgm_error());
    assert_int_equal(s->n, 142);
    size_t roles[3] = { 0 };
    for (size_t i = 0; i < s->n; i++) {
        assert_int_equal(s->tasks[i].source, KGM_SOURCE_CSV);
        assert_true(s->tasks[i].role >= 0);
        roles[s->tasks[i].role]++;
    }
    assert_int_equal(roles[0], 99);
    assert_int_equal(roles[1], 14);
    assert_int_equal(roles[2], 29);
    assert_int_equal(s->n_features, 2);
    assert_string_equal(s->features[0], GM "logGdpPercap1952");
    long i = kgm_taskset_find(s, GM "AFG");
    assert_true(i >= 0);
    const kgm_task *t = &s->tasks[i];
    assert_true(fabs(t->features[1] - log10(8425333.0)) < 1e-6);
    kgm_examples ex;
    if (kgm_task_examples(t, 0, 0, 0, &ex)) fail_msg("%s", kgm_error());
    assert_int_equal(ex.n_support, 3);
    assert_int_equal(ex.n_query, 9);
    assert_int_equal(ex.dim, 1);
    assert_true(ex.x[0] == 1952 && ex.x[2] == 1962 && ex.x[3] == 1967 && ex.x[11] == 2007);
    assert_true(ex.y[0] == 28.801 && ex.y[11] == 43.828);
    kgm_examples_free(&ex);
    /* A task list for the shell. */
    kgm_table *tb = kgm_taskset_table(s);
    assert_non_null(tb);
    assert_int_equal(tb->n_rows, 142);
    assert_int_equal(tb->n_cols, 6);
    kgm_table_free(tb);
    kgm_taskset_free(s);
    stmts_free(&a);
}

static void sixfam_tasks_and_sampling(void **state)
{
    (void)state;
    stmts a = { 0 };
    parse_into(&a, "sixfam-tasks.ttl");
    parse_into(&a, "sixfam-new.ttl");
    kgm_taskset *s;
    if (to_taskset(&a, &s)) fail_msg("%s", kgm_error());
    assert_int_equal(s->n, 3200);
    const kgm_task *t = &s->tasks[kgm_taskset_find(s, SF "t00001")];
    assert_int_equal(t->source, KGM_SOURCE_GENERATOR);
    assert_int_equal(t->role, KGM_ROLE_TRAIN);
    assert_int_equal(t->gen.fn, KGM_FN_QUADRATIC);
    assert_true(t->gen.p[0] == -0.066914 && t->gen.p[1] == -0.028614 && t->gen.p[2] == 1.12168);
    assert_true(t->gen.noise == 0.3);
    assert_int_equal(s->tasks[kgm_taskset_find(s, SF "n00001")].role, KGM_ROLE_TEST);
    kgm_examples e1, e2, e3;
    assert_int_equal(kgm_task_examples(t, 5, 10, 15, &e1), 0);
    assert_int_equal(kgm_task_examples(t, 5, 10, 15, &e2), 0);
    assert_int_equal(kgm_task_examples(&s->tasks[kgm_taskset_find(s, SF "t00002")], 5, 10, 15, &e3), 0);
    assert_int_equal(e1.dim, 2);
    assert_memory_equal(e1.x, e2.x, 25 * 2 * sizeof(double));
    assert_memory_equal(e1.y, e2.y, 25 * sizeof(double));
    assert_memory_not_equal(e1.x, e3.x, 25 * 2 * sizeof(double));   /* each task its own points */
    kgm_examples_free(&e1); kgm_examples_free(&e2); kgm_examples_free(&e3);
    kgm_taskset_free(s);
    stmts_free(&a);
}

/* The test the issue asks for: would fail if a generator parameter reached the embeddings. */
static void descriptive_graph_has_no_plumbing(void **state)
{
    (void)state;
    stmts a = { 0 };
    parse_into(&a, "kgmeta.ttl");
    parse_into(&a, "sixfam-tasks.ttl");
    parse_into(&a, "sixfam-family.ttl");
    parse_into(&a, "gapminder.ttl");
    kgm_graph *full = to_graph(&a);
    kgm_taskset *s;
    if (to_taskset(&a, &s)) fail_msg("%s", kgm_error());
    /* The plumbing set declared by the vocabulary, as kgm_tasks_descriptive_from_store reads it. */
    const char *declared[64];
    size_t n_declared = 0;
    for (size_t i = 0; i < a.n; i++)
        if (!strcmp(a.v[i].p, RDF_TYPE) && !strcmp(a.v[i].o.value, KGM_NS_IRI "PlumbingProperty"))
            declared[n_declared++] = a.v[i].s;
    size_t n_builtin;
    const char *const *builtin = kgm_tasks_plumbing(&n_builtin);
    assert_int_equal(n_declared, n_builtin);   /* the vocabulary and the code agree */
    for (size_t i = 0; i < n_builtin; i++) {
        int found = 0;
        for (size_t j = 0; j < n_declared; j++) found |= !strcmp(builtin[i], declared[j]);
        if (!found) fail_msg("%s is plumbing in kg/tasks.c but not in kgmeta.ttl", builtin[i]);
    }

    /* Control: the full graph does carry the parameters, so the checks below can fail. */
    assert_true(kgm_strmap_find(full->props, KGM_NS_IRI "paramA", strlen(KGM_NS_IRI "paramA")) >= 0);
    assert_true(kgm_graph_find_relation(full, KGM_NS_IRI "generator") >= 0);

    kgm_graph *d;
    assert_int_equal(kgm_tasks_descriptive(full, declared, n_declared, &d), 0);
    for (size_t r = 0; r < kgm_graph_n_rels(d); r++) {
        const char *name = kgm_graph_rel_name(d, (int32_t)r);
        for (size_t i = 0; i < n_declared; i++) assert_string_not_equal(name, declared[i]);
        assert_true(strncmp(name, KGM_NS_IRI, strlen(KGM_NS_IRI)) != 0);
    }
    for (size_t e = 0; e < kgm_graph_n_ents(d); e++) {
        const char *name = kgm_graph_ent_name(d, (int32_t)e);
        assert_true(strncmp(name, KGM_NS_IRI, strlen(KGM_NS_IRI)) != 0);
        assert_null(strstr(name, "Generator"));
        assert_null(strstr(name, "file:"));
    }
    /* No attribute is a generator parameter, by property or by value. */
    for (size_t i = 0; i < d->n_attrs; i++) {
        const char *prop = kgm_strmap_str(d->props, d->attrs[i].prop);
        assert_true(strncmp(prop, KGM_NS_IRI, strlen(KGM_NS_IRI)) != 0);
        for (size_t k = 0; k < s->n; k++)
            for (int j = 0; s->tasks[k].source == KGM_SOURCE_GENERATOR && j < 4; j++)
                if (s->tasks[k].params_set >> j & 1) assert_false(d->attrs[i].value == s->tasks[k].gen.p[j]);
    }
    /* What should stay stays: every task, its family, the features. */
    for (size_t k = 0; k < s->n; k++) assert_true(kgm_graph_find_entity(d, s->tasks[k].iri) >= 0);
    int32_t fam = kgm_graph_find_relation(d, SF "family");
    assert_true(fam >= 0);
    size_t n_fam = 0;
    for (size_t i = 0; i < kgm_graph_n_triples(d); i++) n_fam += kgm_graph_triple(d, i).r == fam;
    assert_int_equal(n_fam, 2200);
    assert_int_equal(d->n_attrs, 2 * 142);   /* the two gapminder features, nothing else */
    kgm_graph_free(d);
    kgm_graph_free(full);
    kgm_taskset_free(s);
    stmts_free(&a);
}

static kgm_cell lit(const char *v) { kgm_cell c = { KGM_CELL_LITERAL, (char *)v, NULL, NULL }; return c; }
static kgm_cell iri(const char *v) { kgm_cell c = { KGM_CELL_IRI, (char *)v, NULL, NULL }; return c; }

static void bad_task_descriptions(void **state)
{
    (void)state;
    kgm_taskset *s = kgm_taskset_new("/data");
    assert_int_equal(kgm_taskset_add_task(s, "ex:a"), 0);
    kgm_cell v = iri("http://kgmeta.org/ns#MetaSomething");
    assert_int_equal(kgm_taskset_fact(s, "ex:a", KGM_NS_IRI "role", &v), KGM_EINVAL);
    assert_string_equal(kgm_error(), "task ex:a: unknown role http://kgmeta.org/ns#MetaSomething");
    v = lit("y");
    assert_int_equal(kgm_taskset_fact(s, "ex:a", KGM_NS_IRI "outputColumn", &v), 0);
    v = lit("z");
    assert_int_equal(kgm_taskset_fact(s, "ex:a", KGM_NS_IRI "outputColumn", &v), KGM_EINVAL);
    assert_string_equal(kgm_error(), "task ex:a has two kgm:outputColumn values");
    assert_int_equal(kgm_taskset_finish(s), KGM_EINVAL);
    assert_string_equal(kgm_error(), "task ex:a: column names but no kgm:dataFile");
    v = lit("a.csv");
    assert_int_equal(kgm_taskset_fact(s, "ex:a", KGM_NS_IRI "dataFile", &v), 0);
    assert_string_equal(s->tasks[0].path, "/data/a.csv");      /* relative to the base dir */
    v = lit("x");
    assert_int_equal(kgm_taskset_fact(s, "ex:a", KGM_NS_IRI "inputColumn", &v), 0);
    v = lit("1.5");
    assert_int_equal(kgm_taskset_fact(s, "ex:a", KGM_NS_IRI "paramA", &v), 0);
    assert_int_equal(kgm_taskset_finish(s), KGM_EINVAL);
    assert_string_equal(kgm_error(), "task ex:a has both a data file and a generator");
    kgm_taskset_free(s);

    s = kgm_taskset_new(NULL);
    assert_int_equal(kgm_taskset_add_task(s, "ex:g"), 0);
    assert_int_equal(kgm_taskset_generator(s, "ex:gen", KGM_NS_IRI "Cubic", 0.1), 0);
    assert_int_equal(kgm_taskset_generator(s, "ex:gen2", KGM_NS_IRI "Tangent", 0.1), KGM_EINVAL);
    v = iri("ex:gen");
    assert_int_equal(kgm_taskset_fact(s, "ex:g", KGM_NS_IRI "generator", &v), 0);
    v = lit("0.5");
    assert_int_equal(kgm_taskset_fact(s, "ex:g", KGM_NS_IRI "paramA", &v), 0);
    v = lit("nan");
    assert_int_equal(kgm_taskset_fact(s, "ex:g", KGM_NS_IRI "paramB", &v), KGM_EINVAL);
    assert_int_equal(kgm_taskset_finish(s), KGM_EINVAL);
    assert_string_equal(kgm_error(), "task ex:g: Cubic takes exactly 4 parameters (kgm:paramA..)");
    kgm_taskset_free(s);
}

static void csv_task_errors(void **state)
{
    (void)state;
    char path[64];
    assert_int_equal(tmpfile_make(path, sizeof path, "tasks", "x,y\n1,2\n3,oops\n"), 0);
    kgm_taskset *s = kgm_taskset_new(NULL);
    kgm_cell v;
    assert_int_equal(kgm_taskset_add_task(s, "ex:c"), 0);
    v = lit(path);                  kgm_taskset_fact(s, "ex:c", KGM_NS_IRI "dataFile", &v);
    v = lit("x");                   kgm_taskset_fact(s, "ex:c", KGM_NS_IRI "inputColumn", &v);
    v = lit("w");                   kgm_taskset_fact(s, "ex:c", KGM_NS_IRI "outputColumn", &v);
    v = lit("1");                   kgm_taskset_fact(s, "ex:c", KGM_NS_IRI "supportRows", &v);
    assert_int_equal(kgm_taskset_finish(s), 0);
    kgm_examples ex;
    char want[256];
    assert_int_equal(kgm_task_examples(&s->tasks[0], 0, 0, 0, &ex), KGM_ENOTFOUND);
    snprintf(want, sizeof want, "%s:1: no column 'w' in the header", path);
    assert_string_equal(kgm_error(), want);
    free(s->tasks[0].output);
    s->tasks[0].output = strdup("y");
    assert_int_equal(kgm_task_examples(&s->tasks[0], 0, 0, 0, &ex), KGM_ESYNTAX);
    snprintf(want, sizeof want, "%s:3:3: not a number in column 'y': 'oops'", path);
    assert_string_equal(kgm_error(), want);
    assert_null(ex.x);
    assert_int_equal(kgm_task_examples(&s->tasks[0], 0, 5, 0, &ex), KGM_EINVAL);   /* 5 > 2 rows */
    remove(path);
    assert_int_equal(kgm_task_examples(&s->tasks[0], 0, 0, 0, &ex), KGM_EIO);
    kgm_taskset_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gapminder_tasks),
        cmocka_unit_test(sixfam_tasks_and_sampling),
        cmocka_unit_test(descriptive_graph_has_no_plumbing),
        cmocka_unit_test(bad_task_descriptions),
        cmocka_unit_test(csv_task_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
