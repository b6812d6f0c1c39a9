/* tests/test_table.c - the four table writers, byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "table.h"

static kgm_table *sample(void)
{
    const char *names[] = { "task", "family", "mse" };
    kgm_table *t = kgm_table_new(3, names);
    long r = kgm_table_add_row(t);
    kgm_table_set(t, (size_t)r, 0, KGM_CELL_IRI, "http://ex.org/t1", NULL, NULL);
    kgm_table_set(t, (size_t)r, 1, KGM_CELL_LITERAL, "sine, \"big\"", "en", NULL);
    kgm_table_set_number(t, (size_t)r, 2, 0.5);
    r = kgm_table_add_row(t);
    kgm_table_set(t, (size_t)r, 0, KGM_CELL_BLANK, "b0", NULL, NULL);
    kgm_table_set_number(t, (size_t)r, 2, 12.25);
    return t;
}

static char *render(const kgm_table *t, kgm_mode mode)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    const kgm_prefix px[] = { { "ex", "http://ex.org/" } };
    assert_int_equal(kgm_table_write(t, f, mode, px, 1), 0);
    fclose(f);
    return buf;
}

static void writes_each_mode(void **state)
{
    (void)state;
    kgm_table *t = sample();
    char *s = render(t, KGM_MODE_TABLE);
    assert_string_equal(s, "task  | family         | mse\n"
                           "------+----------------+------\n"
                           "ex:t1 | sine, \"big\"@en |   0.5\n"
                           "_:b0  |                | 12.25\n"
                           "(2 rows)\n");
    free(s);
    s = render(t, KGM_MODE_CSV);
    assert_string_equal(s, "task,family,mse\r\nhttp://ex.org/t1,\"sine, \"\"big\"\"\",0.5\r\n_:b0,,12.25\r\n");
    free(s);
    s = render(t, KGM_MODE_TSV);
    assert_string_equal(s, "task\tfamily\tmse\n<http://ex.org/t1>\t\"sine, \\\"big\\\"\"@en\t0.5\n_:b0\t\t12.25\n");
    free(s);
    s = render(t, KGM_MODE_JSON);
    assert_string_equal(s, "[\n {\"task\": \"http://ex.org/t1\", \"family\": \"sine, \\\"big\\\"\", \"mse\": 0.5},\n"
                           " {\"task\": \"_:b0\", \"family\": null, \"mse\": 12.25}\n]\n");
    free(s);
    t->sparql = 1;
    s = render(t, KGM_MODE_JSON);
    assert_non_null(strstr(s, "{\"type\": \"bnode\", \"value\": \"b0\"}"));
    assert_non_null(strstr(s, "\"xml:lang\": \"en\""));
    assert_null(strstr(s, "\"family\": {\"type\": \"literal\", \"value\": \"\"}"));  /* unbound left out */
    free(s);
    kgm_table_free(t);
}

static void ask_is_a_sparql_boolean(void **state)
{
    (void)state;
    const char *name = "ask";
    kgm_table *t = kgm_table_new(1, &name);
    kgm_table_add_row(t);
    kgm_table_set(t, 0, 0, KGM_CELL_LITERAL, "false", NULL, "http://www.w3.org/2001/XMLSchema#boolean");
    t->sparql = KGM_SPARQL_BOOLEAN;
    char *s = render(t, KGM_MODE_JSON);
    assert_string_equal(s, "{\"head\": {}, \"boolean\": false}\n");
    free(s);
    kgm_table_free(t);
}

static void abbreviates_only_readable_names(void **state)
{
    (void)state;
    const kgm_prefix px[] = { { "ex", "http://ex.org/" }, { "exa", "http://ex.org/a/" } };
    char *s = kgm_prefix_abbrev("http://ex.org/a/b", px, 2);
    assert_string_equal(s, "exa:b");                 /* longest namespace wins */
    free(s);
    assert_null(kgm_prefix_abbrev("http://ex.org/x y", px, 2));
    assert_null(kgm_prefix_abbrev("http://other/x", px, 2));
    kgm_mode m;
    assert_int_equal(kgm_mode_parse("csv", &m), 0);
    assert_int_equal(m, KGM_MODE_CSV);
    assert_int_not_equal(kgm_mode_parse("xml", &m), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writes_each_mode),
        cmocka_unit_test(ask_is_a_sparql_boolean),
        cmocka_unit_test(abbreviates_only_readable_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
