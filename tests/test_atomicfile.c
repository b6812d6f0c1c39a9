/* tests/test_atomicfile.c - a file written through atomicfile.h is the old one or the new one:
 * commit replaces it, abort and failed writers leave it, and no temporary file stays behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "atomicfile.h"
#include "error.h"

static char dir[256];
static char path[300];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/kgm_atomic_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(path, sizeof path, "%s/f.txt", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return rmdir(dir);   /* fails (and so fails the run) if a temporary file was left */
}

static void contents_are(const char *want)
{
    char got[64] = { 0 };
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(got, 1, sizeof got - 1, f);
    fclose(f);
    got[n] = 0;
    assert_string_equal(got, want);
}

static int dir_entries(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

static int write_text(FILE *f, void *ctx) { return fputs(ctx, f) < 0 ? KGM_EIO : 0; }

static int write_then_fail(FILE *f, void *ctx)
{
    fputs(ctx, f);
    return kgm_fail(KGM_EINVAL, "the writer gave up");
}

static void commit_replaces_abort_keeps(void **state)
{
    (void)state;
    assert_int_equal(kgm_write_atomic(path, write_text, "old", KGM_ATOMIC_DURABLE), 0);
    contents_are("old");
    kgm_atomic_file a;
    assert_int_equal(kgm_atomic_open(&a, path), 0);
    fputs("half", a.f);
    assert_int_equal(dir_entries(), 2);           /* the target and the temporary file */
    kgm_atomic_abort(&a);
    contents_are("old");
    assert_int_equal(dir_entries(), 1);
    assert_int_equal(kgm_atomic_open(&a, path), 0);
    fputs("new", a.f);
    assert_int_equal(kgm_atomic_commit(&a, KGM_ATOMIC_FAST), 0);
    contents_are("new");
    assert_null(a.f);
    assert_int_equal(dir_entries(), 1);
}

static void failed_writer_leaves_the_old_file(void **state)
{
    (void)state;
    assert_int_equal(kgm_write_atomic(path, write_text, "kept", KGM_ATOMIC_DURABLE), 0);
    assert_int_equal(kgm_write_atomic(path, write_then_fail, "lost", KGM_ATOMIC_DURABLE), KGM_EINVAL);
    assert_string_equal(kgm_error(), "the writer gave up");
    contents_are("kept");
    assert_int_equal(dir_entries(), 1);
}

static void unwritable_places_are_refused(void **state)
{
    (void)state;
    kgm_atomic_file a;
    assert_int_equal(kgm_atomic_open(&a, "/nonexistent-dir/x"), KGM_EIO);
    assert_non_null(strstr(kgm_error(), "/nonexistent-dir/x.tmp."));
    assert_null(a.f);
    /* the target is a directory: rename fails at commit, and the temporary file goes away */
    char sub[320];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(kgm_write_atomic(sub, write_text, "x", KGM_ATOMIC_FAST), KGM_EIO);
    assert_non_null(strstr(kgm_error(), "cannot write"));
    assert_int_equal(rmdir(sub), 0);
    assert_int_equal(dir_entries(), 1);           /* f.txt from the tests before */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(commit_replaces_abort_keeps),
        cmocka_unit_test(failed_writer_leaves_the_old_file),
        cmocka_unit_test(unwritable_places_are_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
