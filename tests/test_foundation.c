/* tests/test_foundation.c - the error record, string interning and the graph builder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "error.h"
#include "graph.h"
#include "strmap.h"

static void error_formats_location(void **state)
{
    (void)state;
    kgm_error_clear();
    assert_string_equal(kgm_error(), "");
    assert_int_equal(kgm_fail_at(KGM_ESYNTAX, "a.ttl", 3, 7, "bad %s", "thing"), KGM_ESYNTAX);
    assert_string_equal(kgm_error(), "a.ttl:3:7: bad thing");
    assert_int_equal(kgm_error_code(), KGM_ESYNTAX);
    kgm_fail_at(KGM_ESYNTAX, "a.ttl", 3, -1, "no column");
    assert_string_equal(kgm_error(), "a.ttl:3: no column");
    kgm_fail(KGM_EIO, "plain");
    assert_string_equal(kgm_error(), "plain");
    assert_string_equal(kgm_error_text(), "plain");
}

/* Messages quote user data; a newline or control byte in it must not break the one-line rule. */
static void error_stays_one_line(void **state)
{
    (void)state;
    kgm_fail_at(KGM_ESYNTAX, "a\tb.csv", 1, 2, "duplicate column name '%s'", "\nc\x01");
    assert_string_equal(kgm_error(), "a\\tb.csv:1:2: duplicate column name '\\nc\\x01'");
    assert_null(strchr(kgm_error(), '\n'));
}

static void strmap_interns_many(void **state)
{
    (void)state;
    kgm_strmap *m = kgm_strmap_new();
    char buf[32];
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(buf, sizeof buf, "e%d", i);
        assert_int_equal(kgm_strmap_intern(m, buf, (size_t)n), i);
    }
    assert_int_equal(kgm_strmap_size(m), 100000);
    for (int i = 99999; i >= 0; i -= 7) {
        int n = snprintf(buf, sizeof buf, "e%d", i);
        assert_int_equal(kgm_strmap_find(m, buf, (size_t)n), i);
        assert_int_equal(kgm_strmap_intern(m, buf, (size_t)n), i);
        assert_string_equal(kgm_strmap_str(m, i), buf);
    }
    assert_int_equal(kgm_strmap_find(m, "nope", 4), -1);
    assert_null(kgm_strmap_str(m, 100000));
    kgm_strmap_free(m);
}

static void graph_builds_adjacency(void **state)
{
    (void)state;
    kgm_graph *g = kgm_graph_new();
    int32_t a = kgm_graph_entity(g, "http://x/a"), b = kgm_graph_entity(g, "http://x/b");
    int32_t c = kgm_graph_entity(g, "_:c"), next = kgm_graph_relation(g, "http://x/next");
    assert_int_equal(kgm_graph_add(g, a, next, b), 0);
    assert_int_equal(kgm_graph_add(g, b, next, c), 0);
    assert_int_equal(kgm_graph_add(g, a, next, c), 0);
    assert_int_equal(kgm_graph_add_attr(g, a, "http://x/size", 2.5), 0);
    assert_int_equal(kgm_graph_finish(g), 0);
    assert_int_equal(kgm_graph_n_ents(g), 3);
    assert_int_equal(kgm_graph_find_entity(g, "_:c"), c);
    assert_int_equal(kgm_graph_find_relation(g, "http://x/next"), next);
    assert_int_equal(g->out_off[a + 1] - g->out_off[a], 2);   /* a -> b, a -> c */
    assert_int_equal(g->in_off[c + 1] - g->in_off[c], 2);     /* b -> c, a -> c */
    assert_int_equal(g->out_off[c + 1] - g->out_off[c], 0);
    for (size_t k = g->in_off[c]; k < g->in_off[c + 1]; k++)
        assert_int_equal(g->triples[g->in_idx[k]].t, c);
    assert_int_equal(g->n_attrs, 1);
    assert_true(g->attrs[0].value == 2.5);
    kgm_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(error_formats_location),
        cmocka_unit_test(error_stays_one_line),
        cmocka_unit_test(strmap_interns_many),
        cmocka_unit_test(graph_builds_adjacency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
