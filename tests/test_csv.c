/* tests/test_csv.c - the CSV reader: quoting, line ends, numbers, and each refused input
 * with its file:line:col. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "csv.h"
#include "error.h"
#include "tmpfile.h"

static kgm_csv *parse_ok(const char *text)
{
    kgm_csv *c = NULL;
    int rc = kgm_csv_parse(&c, text, strlen(text), "t.csv", ',');
    if (rc) fprintf(stderr, "unexpected error: %s\n", kgm_error());
    assert_int_equal(rc, 0);
    assert_non_null(c);
    return c;
}

static void expect_error(const char *text, int code, const char *where)
{
    kgm_csv *c = (kgm_csv *)1;
    kgm_error_clear();
    assert_int_equal(kgm_csv_parse(&c, text, strlen(text), "t.csv", ','), code);
    assert_null(c);
    if (strncmp(kgm_error(), where, strlen(where)) != 0)
        fail_msg("error '%s' does not start with '%s'", kgm_error(), where);
}

static void quoting_and_line_ends(void **state)
{
    (void)state;
    kgm_csv *c = parse_ok("\xEF\xBB\xBF" "name,x,y\r\n"
                          "\"Korea, Rep.\",1,2\r\n"
                          "\n"
                          "\"say \"\"hi\"\"\n twice\",3.5,-4e2\n"
                          ",5,6");
    assert_int_equal(kgm_csv_rows(c), 3);
    assert_int_equal(kgm_csv_cols(c), 3);
    assert_string_equal(kgm_csv_name(c, 0), "name");
    assert_string_equal(kgm_csv_cell(c, 0, 0), "Korea, Rep.");
    assert_string_equal(kgm_csv_cell(c, 1, 0), "say \"hi\"\n twice");
    assert_string_equal(kgm_csv_cell(c, 2, 0), "");
    assert_null(kgm_csv_cell(c, 3, 0));
    const char *cols[] = { "y", "x" };
    double v[6];
    assert_int_equal(kgm_csv_numbers(c, cols, 2, v), 0);
    assert_true(v[0] == 2 && v[1] == 1 && v[2] == -400 && v[3] == 3.5 && v[4] == 6 && v[5] == 5);
    kgm_csv_free(c);
}

static void tab_delimited(void **state)
{
    (void)state;
    const char *text = "a\tb\n1\t\"x\ty\"\n";
    kgm_csv *c = NULL;
    assert_int_equal(kgm_csv_parse(&c, text, strlen(text), "t.tsv", '\t'), 0);
    assert_string_equal(kgm_csv_cell(c, 0, 1), "x\ty");
    kgm_csv_free(c);
}

static void bad_numbers(void **state)
{
    (void)state;
    kgm_csv *c = parse_ok("x,y\n1,2\n3,abc\n4,nan\n5,inf\n6,1e999\n7,\n8, 9 \n");
    double v;
    assert_int_equal(kgm_csv_number(c, 0, 1, &v), 0);
    assert_true(v == 2);
    kgm_error_clear();
    assert_int_equal(kgm_csv_number(c, 1, 1, &v), KGM_ESYNTAX);
    assert_string_equal(kgm_error(), "t.csv:3:3: not a number in column 'y': 'abc'");
    assert_int_equal(kgm_csv_number(c, 2, 1, &v), KGM_ENUMERIC);
    assert_int_equal(strncmp(kgm_error(), "t.csv:4:3:", 10), 0);
    assert_int_equal(kgm_csv_number(c, 3, 1, &v), KGM_ENUMERIC);
    assert_int_equal(kgm_csv_number(c, 4, 1, &v), KGM_ENUMERIC);
    assert_int_equal(kgm_csv_number(c, 5, 1, &v), KGM_ESYNTAX);
    assert_int_equal(strncmp(kgm_error(), "t.csv:7:3: empty cell", 21), 0);
    assert_int_equal(kgm_csv_number(c, 6, 1, &v), 0);   /* spaces around a number are fine */
    assert_true(v == 9);
    const char *cols[] = { "x", "y" };
    double all[16];
    assert_int_equal(kgm_csv_numbers(c, cols, 2, all), KGM_ESYNTAX);
    assert_string_equal(kgm_error(), "t.csv:3:3: not a number in column 'y': 'abc'");
    const char *missing[] = { "x", "z" };
    assert_int_equal(kgm_csv_numbers(c, missing, 2, all), KGM_ENOTFOUND);
    assert_string_equal(kgm_error(), "t.csv:1: no column 'z' in the header");
    kgm_csv_free(c);
}

static void refused_files(void **state)
{
    (void)state;
    expect_error("a,b\n1,2\n3\n", KGM_ESYNTAX, "t.csv:3: ragged row: 1 fields");
    expect_error("a,b\n1,2,3\n", KGM_ESYNTAX, "t.csv:2: ragged row: 3 fields");
    expect_error("a,b\n1,\"2\n", KGM_ESYNTAX, "t.csv:2:3: unterminated quoted field");
    expect_error("a,b\n1,\"2\"x\n", KGM_ESYNTAX, "t.csv:2:6: unexpected character after a closing quote");
    expect_error("a,b\n1,2\"\n", KGM_ESYNTAX, "t.csv:2:4: quote inside an unquoted field");
    expect_error("", KGM_ESYNTAX, "t.csv:1: empty file");
    expect_error("\n\n", KGM_ESYNTAX, "t.csv:1: empty file");
    expect_error("a,a\n1,2\n", KGM_ESYNTAX, "t.csv:1:3: duplicate column name 'a'");
    expect_error("\"\nc\",\"\nc\"\n1,2\n", KGM_ESYNTAX, "t.csv:2:4: duplicate column name '\\nc'");
    expect_error("a,\n1,2\n", KGM_ESYNTAX, "t.csv:1:3: empty column name");
    const char bin[] = "a,b\n1,\0\n";
    kgm_csv *c = NULL;
    assert_int_equal(kgm_csv_parse(&c, bin, sizeof bin - 1, "t.csv", ','), KGM_ESYNTAX);
    assert_string_equal(kgm_error(), "t.csv:2: NUL byte: not a text CSV file");
    assert_int_equal(kgm_csv_read(&c, "/nonexistent/dir/x.csv", ','), KGM_EIO);
    assert_null(c);
    assert_string_equal(kgm_error(), "/nonexistent/dir/x.csv: cannot open: No such file or directory");
}

static void reads_a_file(void **state)
{
    (void)state;
    char path[64];
    assert_int_equal(tmpfile_make(path, sizeof path, "csv", "year,lifeExp\n1952,28.801\n1957,30.332\n"), 0);
    kgm_csv *c = NULL;
    assert_int_equal(kgm_csv_read(&c, path, ','), 0);
    remove(path);
    double v;
    assert_int_equal(kgm_csv_number(c, 1, (size_t)kgm_csv_column(c, "lifeExp"), &v), 0);
    assert_true(v == 30.332);
    kgm_csv_free(c);
}

/* Every prefix of a valid file either parses or fails cleanly (a cheap stand-in for fuzzing). */
static void every_prefix_is_safe(void **state)
{
    (void)state;
    const char *text = "a,\"b c\"\r\n\"1,\"\"2\",3\r\n4,\"5\n6\"\n";
    for (size_t n = 0; n <= strlen(text); n++) {
        kgm_csv *c = NULL;
        int rc = kgm_csv_parse(&c, text, n, "p.csv", ',');
        assert_true(rc == 0 ? c != NULL : c == NULL);
        kgm_csv_free(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quoting_and_line_ends),
        cmocka_unit_test(tab_delimited),
        cmocka_unit_test(bad_numbers),
        cmocka_unit_test(refused_files),
        cmocka_unit_test(reads_a_file),
        cmocka_unit_test(every_prefix_is_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
