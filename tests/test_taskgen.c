/* tests/test_taskgen.c - the task generators: deterministic bytes, shipped files equal to a
 * fresh run, the sampler's determinism and distributions, the similarTo noise level and the
 * share of missing attributes. */
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
#include "taskgen.h"

static char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int same_file(const char *dir_a, const char *dir_b, const char *name)
{
    size_t la, lb;
    char *a = slurp(dir_a, name, &la), *b = slurp(dir_b, name, &lb);
    int same = la == lb && !memcmp(a, b, la);
    free(a); free(b);
    return same;
}

static char *temp_dir(void)
{
    char tmpl[] = "/tmp/kgm_taskgen_XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void remove_dir(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static const char *const SIXFAM_FILES[] = { "sixfam-tasks.ttl", "sixfam-new.ttl", "sixfam-family.ttl",
    "sixfam-new-family.ttl", "sixfam-similar.ttl", "sixfam-new-similar.ttl" };

static void same_seed_same_bytes(void **state)
{
    (void)state;
    char *a = temp_dir(), *b = temp_dir(), *c = temp_dir();
    kgm_taskgen_config cfg = kgm_taskgen_defaults(KGM_BENCH_SIXFAM);
    cfg.n_train = 300; cfg.n_val = 30; cfg.n_test = 50;
    assert_int_equal(kgm_taskgen_write(&cfg, a), 0);
    assert_int_equal(kgm_taskgen_write(&cfg, b), 0);
    cfg.seed = 2;
    assert_int_equal(kgm_taskgen_write(&cfg, c), 0);
    for (size_t i = 0; i < 6; i++) {
        assert_true(same_file(a, b, SIXFAM_FILES[i]));
        assert_false(same_file(a, c, SIXFAM_FILES[i]));
    }
    /* The new test tasks do not depend on the pool size. */
    cfg.seed = 1; cfg.n_train = 400;
    assert_int_equal(kgm_taskgen_write(&cfg, c), 0);
    assert_true(same_file(a, c, "sixfam-new.ttl"));
    assert_false(same_file(a, c, "sixfam-tasks.ttl"));
    remove_dir(a); remove_dir(b); remove_dir(c);
    free(a); free(b); free(c);
}

/* The files in datasets/ are exactly what the generator writes with the shipped config. */
static void shipped_files_are_regenerated(void **state)
{
    (void)state;
    const char *src = getenv("KGM_SOURCE_DIR");
    if (!src) skip();
    char shipped[4096], tsv[4200];
    snprintf(shipped, sizeof shipped, "%s/datasets", src);
    char *d = temp_dir();
    kgm_taskgen_config sine = kgm_taskgen_defaults(KGM_BENCH_SINE), six = kgm_taskgen_defaults(KGM_BENCH_SIXFAM);
    assert_int_equal(kgm_taskgen_write(&sine, d), 0);
    assert_int_equal(kgm_taskgen_write(&six, d), 0);
    snprintf(tsv, sizeof tsv, "%s/gapminder/gapminder.tsv", shipped);
    if (kgm_taskgen_gapminder(tsv, d, 1)) fail_msg("%s", kgm_error());
    assert_true(same_file(shipped, d, "sine-tasks.ttl"));
    assert_true(same_file(shipped, d, "sine-new.ttl"));
    for (size_t i = 0; i < 6; i++) assert_true(same_file(shipped, d, SIXFAM_FILES[i]));
    assert_true(same_file(shipped, d, "gapminder.ttl"));
    assert_true(same_file(shipped, d, "gapminder/countries/AFG.csv"));
    assert_true(same_file(shipped, d, "gapminder/countries/ZWE.csv"));
    if (kgm_taskgen_gapminder(tsv, d, 2)) fail_msg("%s", kgm_error());   /* another split */
    assert_false(same_file(shipped, d, "gapminder.ttl"));
    assert_true(same_file(shipped, d, "gapminder/countries/AFG.csv"));
    remove_dir(d);
    free(d);
}

static void sampling_is_deterministic(void **state)
{
    (void)state;
    kgm_gen_params g = { KGM_FN_CUBIC, { 0.05, -0.1, 1.5, -2 }, 0.3 };
    double x1[40], y1[20], x2[40], y2[20], x3[40], y3[20];
    assert_int_equal(kgm_taskgen_sample(&g, 7, 10, 10, x1, y1), 0);
    assert_int_equal(kgm_taskgen_sample(&g, 7, 10, 10, x2, y2), 0);
    assert_int_equal(kgm_taskgen_sample(&g, 8, 10, 10, x3, y3), 0);
    assert_memory_equal(x1, x2, sizeof x1);
    assert_memory_equal(y1, y2, sizeof y1);
    assert_memory_not_equal(x1, x3, sizeof x1);
    for (int i = 0; i < 20; i++) {
        assert_true(x1[2 * i] >= -5 && x1[2 * i] < 5);
        assert_true(x1[2 * i + 1] == 1.0);            /* curves lie on the line x2 = 1 */
    }
    kgm_gen_params bad = g;
    bad.noise = NAN;
    assert_int_equal(kgm_taskgen_sample(&bad, 7, 10, 10, x1, y1), KGM_EINVAL);
}

/* Noise has the stated deviation; noiseless sine samples lie on the curve. */
static void sampling_distribution(void **state)
{
    (void)state;
    enum { N = 20000 };
    double *x = malloc(2 * N * sizeof *x), *y = malloc(N * sizeof *y);
    kgm_gen_params g = { KGM_FN_RIPPLE, { 0.1, 2 }, 0.3 };
    assert_int_equal(kgm_taskgen_sample(&g, 3, 0, N, x, y), 0);
    double s2 = 0, off = 0;
    int spread = 0;
    for (int i = 0; i < N; i++) {
        double r = y[i] - kgm_taskgen_eval(&g, x + 2 * i);
        s2 += r * r; off += r;
        spread += fabs(x[2 * i + 1]) > 2.5;
    }
    assert_true(fabs(sqrt(s2 / N) - 0.3) < 0.01);
    assert_true(fabs(off / N) < 0.01);
    assert_true(spread > N / 2 - N / 20 && spread < N / 2 + N / 20);   /* x2 ~ U[-5,5] */
    kgm_gen_params s = { KGM_FN_SINE, { 2, 1 }, 0 };
    assert_int_equal(kgm_taskgen_sample(&s, 3, 5, 5, x, y), 0);
    for (int i = 0; i < 10; i++) assert_true(y[i] == 2 * sin(x[i] - 1));
    free(x); free(y);
}

static void function_names(void **state)
{
    (void)state;
    kgm_fn f;
    assert_int_equal(kgm_taskgen_fn_parse("http://kgmeta.org/ns#QuadraticSurface", &f), 0);
    assert_int_equal(f, KGM_FN_QUAD_SURFACE);
    assert_int_equal(kgm_taskgen_fn_parse("kgm:Line", &f), 0);
    assert_int_equal(f, KGM_FN_LINE);
    assert_int_equal(kgm_taskgen_fn_parse("Tangent", &f), KGM_ENOTFOUND);
    assert_int_equal(kgm_taskgen_fn_nparams(KGM_FN_CUBIC), 4);
    assert_int_equal(kgm_taskgen_fn_dim(KGM_FN_SINE), 1);
}

/* Reads "sf:NAME sf:family sf:FAM ." lines into parallel arrays (name ids by line order). */
static size_t read_pairs(const char *text, const char *pred, char (*a)[16], char (*b)[24], size_t cap)
{
    size_t n = 0;
    char fmt[64];
    snprintf(fmt, sizeof fmt, "sf:%%15s %s sf:%%23s .", pred);
    for (const char *p = text; p && *p && n < cap; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (sscanf(p, fmt, a[n], b[n]) == 2) n++;
    return n;
}

/* About 80% of similarTo links stay in the family; about 30% of attributes are missing. */
static void similar_links_and_missing(void **state)
{
    (void)state;
    char *d = temp_dir();
    kgm_taskgen_config cfg = kgm_taskgen_defaults(KGM_BENCH_SIXFAM);
    cfg.n_train = 3000; cfg.n_val = 0; cfg.n_test = 10;
    assert_int_equal(kgm_taskgen_write(&cfg, d), 0);
    size_t lf, ls, lt;
    char *fam = slurp(d, "sixfam-family.ttl", &lf), *sim = slurp(d, "sixfam-similar.ttl", &ls),
         *tasks = slurp(d, "sixfam-tasks.ttl", &lt);
    static char fa[4000][16], fb[4000][24], sa[10000][16], sb[10000][24];
    size_t nf = read_pairs(fam, "sf:family", fa, fb, 4000);
    size_t ns = read_pairs(sim, "kgm:similarTo", sa, (char (*)[24])sb, 10000);
    assert_int_equal(nf, 3000);
    assert_true(ns > 8900 && ns <= 9000);
    size_t same = 0;
    for (size_t i = 0; i < ns; i++) {
        int ia = atoi(sa[i] + 1) - 1, ib = atoi(sb[i] + 1) - 1;   /* "t00042" -> 41 */
        assert_true(ia != ib);
        same += !strcmp(fb[ia], fb[ib]);
    }
    double frac = (double)same / (double)ns;
    /* 0.8 of links drawn in-family, plus none by chance: out-of-family draws exclude it. */
    assert_true(fabs(frac - 0.8) < 0.02);
    size_t present = 0;
    for (const char *p = tasks; (p = strstr(p, "    sf:")); p++) present++;
    double kept = (double)present / (2.0 * 3000);
    assert_true(fabs(kept - 0.7) < 0.02);
    free(fam); free(sim); free(tasks);
    remove_dir(d);
    free(d);
}

static void bad_config(void **state)
{
    (void)state;
    kgm_taskgen_config cfg = kgm_taskgen_defaults(KGM_BENCH_SIXFAM);
    cfg.n_train = 3; cfg.n_val = 0; cfg.n_test = 0;        /* some family gets < 2 tasks */
    assert_int_equal(kgm_taskgen_write(&cfg, "/tmp"), KGM_EINVAL);
    cfg = kgm_taskgen_defaults(KGM_BENCH_SINE);
    assert_int_equal(kgm_taskgen_write(&cfg, "/nonexistent/dir"), KGM_EIO);
    assert_int_equal(kgm_taskgen_gapminder("/nonexistent/g.tsv", "/tmp", 1), KGM_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_seed_same_bytes),
        cmocka_unit_test(shipped_files_are_regenerated),
        cmocka_unit_test(sampling_is_deterministic),
        cmocka_unit_test(sampling_distribution),
        cmocka_unit_test(function_names),
        cmocka_unit_test(similar_links_and_missing),
        cmocka_unit_test(bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
