/* tests/test_modelfile.c - model files round-trip bit for bit; every kind of damage is refused
 * with a message saying which. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <dirent.h>
#include <unistd.h>
#include <cmocka.h>

#include "error.h"
#include "modelfile.h"

static char dir[256];

static const char *path_of(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

/* Tensors with awkward bit patterns: -0, a denormal, infinity, a NaN with a payload. */
static void sample_data(float *w, int n)
{
    for (int i = 0; i < n; i++) w[i] = (float)i * 0.37f - 1.5f;
    uint32_t nan_bits = 0x7fc01234u, denormal_bits = 0x00000123u;
    w[0] = -0.0f;
    memcpy(&w[1], &denormal_bits, 4);
    w[2] = INFINITY;
    memcpy(&w[3], &nan_bits, 4);
}

static kgm_layout sample_layout(void)
{
    kgm_layout l;
    kgm_layout_init(&l);
    assert_int_equal(kgm_layout_add(&l, "w1", 4, 1), 0);
    assert_int_equal(kgm_layout_add(&l, "b1", 1, 4), 4);
    assert_int_equal(kgm_layout_add(&l, "w2", 1, 4), 8);
    return l;
}

static void write_sample(const char *path)
{
    float w[12], flat[12];
    sample_data(w, 12);
    for (int i = 0; i < 12; i++) flat[i] = 0.5f * (float)i;
    kgm_layout l = sample_layout();
    kgm_modelfile *mf = kgm_modelfile_new();
    assert_non_null(mf);
    assert_int_equal(kgm_modelfile_set(mf, "model", "maml"), 0);
    assert_int_equal(kgm_modelfile_set(mf, "hidden", "40,40"), 0);
    assert_int_equal(kgm_modelfile_set(mf, "model", "meta-sgd"), 0);   /* replaces */
    assert_int_equal(kgm_modelfile_add(mf, "odd", 3, 4, w), 0);
    assert_int_equal(kgm_modelfile_add_layout(mf, "theta.", &l, flat), 0);
    assert_int_equal(kgm_modelfile_save(mf, path), 0);
    kgm_modelfile_free(mf);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(*n);
    assert_int_equal(fread(p, 1, *n, f), *n);
    fclose(f);
    return p;
}

static void spill(const char *path, const unsigned char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* Loading `path` fails with `code` and a message containing `words`. */
static void refused(const char *path, int code, const char *words)
{
    kgm_modelfile *mf = (kgm_modelfile *)&mf;   /* must come back NULL */
    assert_int_equal(kgm_modelfile_load(&mf, path), code);
    assert_null(mf);
    if (!strstr(kgm_error(), words)) fail_msg("error '%s' does not say '%s'", kgm_error(), words);
}

static void round_trip_is_bit_exact(void **state)
{
    (void)state;
    const char *p = path_of("a.kgm");
    write_sample(p);
    kgm_modelfile *mf;
    assert_int_equal(kgm_modelfile_load(&mf, p), 0);
    assert_string_equal(kgm_modelfile_get(mf, "model"), "meta-sgd");
    assert_string_equal(kgm_modelfile_get(mf, "hidden"), "40,40");
    assert_null(kgm_modelfile_get(mf, "absent"));
    const char *k, *v;
    assert_int_equal(kgm_modelfile_config_count(mf), 2);
    assert_int_equal(kgm_modelfile_config_at(mf, 0, &k, &v), 0);
    assert_string_equal(k, "model");
    assert_int_equal(kgm_modelfile_tensor_count(mf), 4);
    float w[12];
    sample_data(w, 12);
    const float *got;
    assert_int_equal(kgm_modelfile_tensor(mf, "odd", 3, 4, &got), 0);
    assert_memory_equal(got, w, sizeof w);          /* bits, NaN payload included */
    kgm_layout l = sample_layout();
    float flat[12];
    assert_int_equal(kgm_modelfile_read_layout(mf, "theta.", &l, flat), 0);
    for (int i = 0; i < 12; i++) assert_true(flat[i] == 0.5f * (float)i);
    /* Saving what was loaded gives the same bytes. */
    const char *p2 = path_of("b.kgm");
    assert_int_equal(kgm_modelfile_save(mf, p2), 0);
    kgm_modelfile_free(mf);
    size_t n1, n2;
    unsigned char *b1 = slurp(p, &n1), *b2 = slurp(p2, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    free(b1);
    free(b2);
}

static void truncated_files_are_refused(void **state)
{
    (void)state;
    const char *p = path_of("good.kgm"), *bad = path_of("short.kgm");
    write_sample(p);
    size_t n;
    unsigned char *b = slurp(p, &n);
    size_t cuts[] = { 0, 7, 20, 40, n / 2, n - 8, n - 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        spill(bad, b, cuts[i]);
        refused(bad, KGM_EFORMAT, "truncated");
    }
    free(b);
}

static void corrupted_bytes_are_refused(void **state)
{
    (void)state;
    const char *p = path_of("good.kgm"), *bad = path_of("flipped.kgm");
    write_sample(p);
    size_t n;
    unsigned char *b = slurp(p, &n);
    /* Every single byte flipped, anywhere in the file, is caught. */
    for (size_t i = 0; i < n; i++) {
        b[i] ^= 0x10;
        spill(bad, b, n);
        kgm_modelfile *mf = NULL;
        if (kgm_modelfile_load(&mf, bad) == 0) fail_msg("byte %zu flipped was accepted", i);
        b[i] ^= 0x10;
    }
    /* A flip in the tensor data (past the header) is reported as corruption. */
    b[n - 20] ^= 0x01;
    spill(bad, b, n);
    refused(bad, KGM_EFORMAT, "checksum mismatch");
    b[n - 20] ^= 0x01;
    /* Extra bytes at the end are not silently ignored. */
    unsigned char *longer = calloc(1, n + 3);
    memcpy(longer, b, n);
    spill(bad, longer, n + 3);
    refused(bad, KGM_EFORMAT, "unexpected bytes");
    memcpy(b, "KGMM0DEL", 8);
    spill(bad, b, n);
    refused(bad, KGM_EFORMAT, "magic");
    free(longer);
    free(b);
}

static uint64_t fnv(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static void wrong_version_is_refused(void **state)
{
    (void)state;
    const char *p = path_of("good.kgm"), *bad = path_of("v2.kgm");
    write_sample(p);
    size_t n;
    unsigned char *b = slurp(p, &n);
    /* Version 2 with a valid checksum: only the version is wrong. */
    b[8] = 2;
    uint64_t h = fnv(b, n - 8);
    for (int i = 0; i < 8; i++) b[n - 8 + i] = (unsigned char)(h >> (8 * i));
    spill(bad, b, n);
    refused(bad, KGM_EFORMAT, "format version 2; this program reads version 1");
    free(b);
}

static void wrong_shape_is_refused(void **state)
{
    (void)state;
    const char *p = path_of("good.kgm");
    write_sample(p);
    kgm_modelfile *mf;
    assert_int_equal(kgm_modelfile_load(&mf, p), 0);
    const float *d = NULL;
    assert_int_equal(kgm_modelfile_tensor(mf, "odd", 4, 3, &d), KGM_EFORMAT);
    assert_string_equal(kgm_error_text(), "model file tensor odd is 3x4, expected 4x3");
    assert_null(d);
    assert_int_equal(kgm_modelfile_tensor(mf, "nope", 1, 1, &d), KGM_ENOTFOUND);
    /* A layout whose last view has another shape: refused, and nothing copied. */
    kgm_layout l;
    kgm_layout_init(&l);
    kgm_layout_add(&l, "w1", 4, 1);
    kgm_layout_add(&l, "b1", 1, 4);
    kgm_layout_add(&l, "w2", 2, 2);
    float flat[12];
    for (int i = 0; i < 12; i++) flat[i] = -7.0f;
    assert_int_equal(kgm_modelfile_read_layout(mf, "theta.", &l, flat), KGM_EFORMAT);
    assert_non_null(strstr(kgm_error(), "theta.w2 is 1x4, expected 2x2"));
    for (int i = 0; i < 12; i++) assert_true(flat[i] == -7.0f);
    kgm_modelfile_free(mf);
}

static void saving_is_atomic_and_checked(void **state)
{
    (void)state;
    const char *p = path_of("c.kgm");
    write_sample(p);
    write_sample(p);                                  /* replace an existing file */
    DIR *d = opendir(dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) fail_msg("temporary file %s left behind", e->d_name);
    closedir(d);
    kgm_modelfile *mf = kgm_modelfile_new();
    assert_int_equal(kgm_modelfile_save(mf, "/nonexistent-dir/x.kgm"), KGM_EIO);
    assert_int_equal(kgm_modelfile_set(mf, "bad key", "v"), KGM_EINVAL);
    assert_int_equal(kgm_modelfile_set(mf, "k", "two\nlines"), KGM_EINVAL);
    float one = 1.0f;
    assert_int_equal(kgm_modelfile_add(mf, "t", 1, 1, &one), 0);
    assert_int_equal(kgm_modelfile_add(mf, "t", 1, 1, &one), KGM_EINVAL);
    assert_int_equal(kgm_modelfile_add(mf, "z", 0, 1, &one), KGM_EINVAL);
    kgm_modelfile_free(mf);
    refused(path_of("missing.kgm"), KGM_EIO, "cannot open");
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/kgm-modelfile-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = { "a.kgm", "b.kgm", "c.kgm", "good.kgm", "short.kgm", "flipped.kgm", "v2.kgm" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(path_of(names[i]));
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_is_bit_exact),
        cmocka_unit_test(truncated_files_are_refused),
        cmocka_unit_test(corrupted_bytes_are_refused),
        cmocka_unit_test(wrong_version_is_refused),
        cmocka_unit_test(wrong_shape_is_refused),
        cmocka_unit_test(saving_is_atomic_and_checked),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
