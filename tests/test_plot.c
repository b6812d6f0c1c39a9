/* tests/test_plot.c - plots through gnuplot: a PNG and an SVG are really written (magic
 * bytes, an <svg> root), bad requests and a missing gnuplot are refused with a clear
 * message and leave no file. Tests that need gnuplot skip, saying so, when it is absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "error.h"
#include "plot.h"

static const double LOSS[] = { 1.0, 0.6, 0.4, 0.31, 0.27, 0.25 };
static const double EX_X[] = { 0.5, 1.5, 2.5 }, EX_Y[] = { 0.9, 0.35, 0.3 };

static int need_gnuplot(void)
{
    if (kgm_plot_available()) return 1;
    print_message("SKIPPED: gnuplot is not installed (%s)\n", kgm_error());
    return 0;
}

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 20);
    *n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    return buf;
}

static void writes_png(void **state)
{
    (void)state;
    if (!need_gnuplot()) skip();
    const char *path = "plot_test.png";
    unlink(path);
    kgm_series s[] = { { "loss", NULL, LOSS, 6, 0 }, { "examples", EX_X, EX_Y, 3, 1 } };
    assert_int_equal(kgm_plot_write(path, "it's a loss curve", "step", "loss", s, 2), 0);
    size_t n;
    char *buf = read_all(path, &n);
    assert_non_null(buf);
    assert_true(n > 100);
    assert_memory_equal(buf, "\x89PNG", 4);
    assert_int_equal(access("plot_test.png.tmp", F_OK), -1);
    free(buf);
    unlink(path);
}

static void writes_svg_with_gaps(void **state)
{
    (void)state;
    if (!need_gnuplot()) skip();
    const char *path = "plot_test.svg";
    unlink(path);
    double y[] = { 1, 2, 0.0 / 0.0, 4 };
    kgm_series s[] = { { "with a NaN", NULL, y, 4, 0 } };
    assert_int_equal(kgm_plot_write(path, "t", "x", "y", s, 1), 0);
    size_t n;
    char *buf = read_all(path, &n);
    assert_non_null(buf);
    assert_non_null(strstr(buf, "<svg"));
    assert_non_null(strstr(buf, "with a NaN"));
    free(buf);
    unlink(path);
}

static void refuses_bad_requests(void **state)
{
    (void)state;
    kgm_series s[] = { { "loss", NULL, LOSS, 6, 0 } };
    assert_int_equal(kgm_plot_write("plot_test.jpg", "t", "x", "y", s, 1), KGM_EINVAL);
    assert_non_null(strstr(kgm_error(), ".png or .svg"));
    assert_int_equal(kgm_plot_write("plot_test.png", "t", "x", "y", s, 0), KGM_EINVAL);
    kgm_series empty[] = { { "none", NULL, LOSS, 0, 0 } };
    assert_int_equal(kgm_plot_write("plot_test.png", "t", "x", "y", empty, 1), KGM_EINVAL);
    assert_int_equal(access("plot_test.jpg", F_OK), -1);
}

static void says_when_gnuplot_is_missing(void **state)
{
    (void)state;
    setenv("KGM_GNUPLOT", "/nonexistent/gnuplot", 1);
    kgm_series s[] = { { "loss", NULL, LOSS, 6, 0 } };
    int rc = kgm_plot_write("plot_missing.png", "t", "x", "y", s, 1);
    unsetenv("KGM_GNUPLOT");
    assert_int_equal(rc, KGM_ENOTSUP);
    assert_non_null(strstr(kgm_error(), "apt-get install gnuplot"));
    assert_int_equal(access("plot_missing.png", F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writes_png),
        cmocka_unit_test(writes_svg_with_gaps),
        cmocka_unit_test(refuses_bad_requests),
        cmocka_unit_test(says_when_gnuplot_is_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
