/* tests/test_tasks_store.c - tasks read through the store (SPARQL) from the shipped graphs,
 * and the store's descriptive graph: no plumbing, no generator parameter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "error.h"
#include "store.h"
#include "tasks.h"

#define SF "http://kgmeta.org/data/sixfam#"
#define GM "http://kgmeta.org/data/gapminder#"

static kgm_store *load(const char *const *files)
{
    const char *src = getenv("KGM_SOURCE_DIR");
    kgm_store *st = NULL;
    assert_int_equal(kgm_store_open(&st, NULL), 0);
    for (; *files; files++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/datasets/%s", src ? src : "..", *files);
        size_t n = 0;
        if (kgm_store_load(st, path, NULL, NULL, &n, NULL)) fail_msg("%s", kgm_error());
        assert_true(n > 0);
    }
    return st;
}

static void gapminder_through_the_store(void **state)
{
    (void)state;
    const char *files[] = { "kgmeta.ttl", "gapminder.ttl", NULL };
    kgm_store *st = load(files);
    kgm_taskset *s;
    if (kgm_tasks_read(st, NULL, &s)) fail_msg("%s", kgm_error());
    assert_int_equal(s->n, 142);
    assert_int_equal(s->n_features, 2);
    size_t test = 0;
    for (size_t i = 0; i < s->n; i++) test += s->tasks[i].role == KGM_ROLE_TEST;
    assert_int_equal(test, 29);
    const kgm_task *t = &s->tasks[kgm_taskset_find(s, GM "ZWE")];
    assert_int_equal(t->source, KGM_SOURCE_CSV);
    assert_int_equal(t->support_rows, 3);
    kgm_examples ex;
    if (kgm_task_examples(t, 0, 0, 0, &ex)) fail_msg("%s", kgm_error());   /* path resolved from the graph file */
    assert_int_equal(ex.n_support + ex.n_query, 12);
    assert_true(ex.x[0] == 1952 && ex.y[0] == 48.451);
    kgm_examples_free(&ex);
    /* The descriptive graph keeps the features and the continents, and no data plumbing. */
    kgm_graph *d;
    if (kgm_tasks_descriptive_from_store(st, &d)) fail_msg("%s", kgm_error());
    assert_int_equal(d->n_attrs, 2 * 142);
    for (size_t i = 0; i < d->n_attrs; i++) {
        const char *prop = kgm_strmap_str(d->props, d->attrs[i].prop);
        assert_true(!strcmp(prop, GM "logPop1952") || !strcmp(prop, GM "logGdpPercap1952"));
    }
    assert_true(kgm_graph_find_relation(d, GM "continent") >= 0);
    assert_int_equal(kgm_graph_find_relation(d, "http://kgmeta.org/ns#dataFile"), -1);
    assert_int_equal(kgm_graph_find_relation(d, "http://kgmeta.org/ns#role"), -1);
    for (size_t e = 0; e < kgm_graph_n_ents(d); e++)
        assert_null(strstr(kgm_graph_ent_name(d, (int32_t)e), "file:"));
    kgm_graph_free(d);
    kgm_taskset_free(s);
    kgm_store_free(st);
}

static void sixfam_through_the_store(void **state)
{
    (void)state;
    const char *files[] = { "kgmeta.ttl", "sixfam-tasks.ttl", "sixfam-similar.ttl", "sixfam-new.ttl", NULL };
    kgm_store *st = load(files);
    kgm_taskset *s;
    if (kgm_tasks_read(st, NULL, &s)) fail_msg("%s", kgm_error());
    assert_int_equal(s->n, 3200);
    const kgm_task *t = &s->tasks[kgm_taskset_find(s, SF "t00001")];
    assert_int_equal(t->gen.fn, KGM_FN_QUADRATIC);
    assert_true(t->gen.p[2] == 1.12168 && t->gen.noise == 0.3);

    kgm_graph *d;
    if (kgm_tasks_descriptive_from_store(st, &d)) fail_msg("%s", kgm_error());
    assert_true(kgm_graph_find_relation(d, "http://kgmeta.org/ns#similarTo") >= 0);
    for (size_t r = 0; r < kgm_graph_n_rels(d); r++) {
        const char *name = kgm_graph_rel_name(d, (int32_t)r);
        assert_true(!strcmp(name, "http://kgmeta.org/ns#similarTo") ||
                    strncmp(name, "http://kgmeta.org/ns#", 21) != 0);
    }
    for (size_t i = 0; i < d->n_attrs; i++)      /* no numeric literal survives: all were plumbing */
        fail_msg("attribute %s reached the descriptive graph", kgm_strmap_str(d->props, d->attrs[i].prop));
    for (size_t k = 0; k < s->n; k++) assert_true(kgm_graph_find_entity(d, s->tasks[k].iri) >= 0);
    kgm_graph *full;
    assert_int_equal(kgm_store_extract(st, &full), 0);
    assert_true(full->n_attrs > 3200 * 2);   /* control: the parameters are in the full graph */
    kgm_graph_free(full);
    kgm_graph_free(d);
    kgm_taskset_free(s);
    kgm_store_free(st);
}

/* Run records (models/kgcond.h kgm_kgcond_record, models/tune.h) are results, not task
 * descriptions: a store that holds them gives the same descriptive graph as one without, so
 * e(t) does not change with every run recorded (and a saved model finds its e(t) again). */
static void run_records_stay_out_of_the_descriptive_graph(void **state)
{
    (void)state;
    const char *files[] = { "kgmeta.ttl", "gapminder.ttl", NULL };
    kgm_store *st = load(files);
    kgm_graph *before, *after, *full;
    if (kgm_tasks_descriptive_from_store(st, &before)) fail_msg("%s", kgm_error());
    const char *records =
        "@prefix mls: <http://www.w3.org/ns/mls#> . @prefix kgm: <http://kgmeta.org/ns#> .\n"
        "@prefix ex: <http://example.org/> . @prefix gm: <" GM "> .\n"
        "ex:run1 a mls:Run ; mls:executes kgm:maml ; mls:hasInput [ a mls:Dataset ; kgm:label \"kg\" ] ;\n"
        "  mls:hasInput ex:run1-alpha ; mls:hasOutput ex:run1-model .\n"
        "ex:run1-alpha a mls:HyperParameterSetting ; mls:specifiedBy kgm:hp-alpha ; mls:hasValue 0.01 .\n"
        "ex:run1-model a mls:Model ; ex:trainedOn gm:ZWE .\n"
        "ex:run1-eval a mls:ModelEvaluation ; mls:specifiedBy kgm:metric-mse ; mls:hasValue 0.5 .\n"
        "ex:search a kgm:TuningSearch ; kgm:seed 3 .\n"
        "ex:search-trial-0 a mls:Run ; kgm:partOfSearch ex:search ; kgm:score 1.5 .\n"
        "ex:run2 a mls:Run ; mls:hasInput gm:gapminder .\n"   /* a named input stays described */
        "gm:ZWE ex:near gm:ZWE .\n";   /* control: a description added in the same load */
    if (kgm_store_load_string(st, records, "turtle", NULL, NULL)) fail_msg("%s", kgm_error());
    if (kgm_tasks_descriptive_from_store(st, &after)) fail_msg("%s", kgm_error());
    assert_int_equal(kgm_store_extract(st, &full), 0);
    assert_true(kgm_graph_find_entity(full, "http://example.org/run1-model") >= 0);   /* the records are in the store */
    assert_int_equal(kgm_graph_n_ents(after), kgm_graph_n_ents(before));
    assert_int_equal(kgm_graph_n_rels(after), kgm_graph_n_rels(before) + 1);       /* ex:near */
    assert_int_equal(kgm_graph_n_triples(after), kgm_graph_n_triples(before) + 1);
    assert_int_equal(after->n_attrs, before->n_attrs);
    assert_true(kgm_graph_find_entity(after, GM "gapminder") >= 0);
    kgm_graph_free(full);
    kgm_graph_free(after);
    kgm_graph_free(before);
    kgm_store_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gapminder_through_the_store),
        cmocka_unit_test(sixfam_through_the_store),
        cmocka_unit_test(run_records_stay_out_of_the_descriptive_graph),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
