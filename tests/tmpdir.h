/* tests/tmpdir.h - one scratch directory per test program, made by the cmocka group setup
 * and removed with everything in it by the group teardown. Header-only (static), shared by
 * the tests that write stores and files: test_store, test_store_crash, test_graphview.
 * The directory's path is in tmpdir; the name is "/tmp/kgm_<PREFIX>_XXXXXX". */
#ifndef KGM_TESTS_TMPDIR_H
#define KGM_TESTS_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

static char tmpdir[256];

static int tmpdir_make(const char *prefix)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kgm_%s_XXXXXX", prefix);
    return mkdtemp(tmpdir) ? 0 : -1;
}

/* Removes the directory even where a test took write permission away inside it. */
static int tmpdir_remove(void)
{
    char cmd[sizeof tmpdir * 2 + 64];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s'; rm -rf '%s'", tmpdir, tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
