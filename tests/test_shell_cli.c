/* tests/test_shell_cli.c - the kgmeta program from the outside, as scripts and other
 * tools call it: exit statuses, -c with ';', --keep-going, piped standard input (no
 * prompt), the start-up file and --no-rc, a store directory kept between runs, and
 * --version/--help. Runs $KGM_BINARY through /bin/sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "blascore.h"

static char out[8192], err[8192];

/* Runs `kgmeta ARGS` (ARGS is shell text) with stdin from `input`; returns the exit
 * status and leaves stdout and stderr in out and err. */
static int run(const char *env, const char *args, const char *input)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "printf '%%b' '%s' | %s KGMETA_HISTORY= '%s' %s >cli_out 2>cli_err",
             input ? input : "", env ? env : "env", getenv("KGM_BINARY"), args);
    int st = system(cmd);
    FILE *f = fopen("cli_out", "r");
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = '\0';
    if (f) fclose(f);
    f = fopen("cli_err", "r");
    n = f ? fread(err, 1, sizeof err - 1, f) : 0;
    err[n] = '\0';
    if (f) fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void command_strings_stop_at_the_first_error(void **state)
{
    (void)state;
    assert_int_equal(run(NULL, "--no-rc -c 'echo a; bogus; echo b'", NULL), 1);
    assert_string_equal(out, "a\n");
    assert_non_null(strstr(err, "-c:2: unknown command 'bogus'"));
    assert_int_equal(run(NULL, "--no-rc --keep-going -c 'bogus; echo b'", NULL), 1);
    assert_string_equal(out, "b\n");                    /* ran on, still exits 1 */
    assert_int_equal(run(NULL, "--no-rc -c 'echo fine'", NULL), 0);
}

static void piped_input_has_no_prompt(void **state)
{
    (void)state;
    assert_int_equal(run(NULL, "--no-rc", "echo piped\\nshow timer\\n"), 0);
    assert_non_null(strstr(out, "piped\n"));
    assert_null(strstr(out, "kgmeta>"));
    assert_null(strstr(out, "\033["));                  /* no colour either */
    assert_int_equal(run(NULL, "--no-rc", "echo x\\nnope\\n"), 1);
    assert_non_null(strstr(err, "stdin:2: unknown command 'nope'"));
}

static void startup_file_runs_first_unless_skipped(void **state)
{
    (void)state;
    FILE *f = fopen("cli_rc.kgm", "w");
    assert_non_null(f);
    fputs("# a start-up file\nset mode=csv\n", f);
    fclose(f);
    assert_int_equal(run("env KGMETA_RC=cli_rc.kgm", "-c 'show mode'", NULL), 0);
    assert_non_null(strstr(out, "mode,csv,"));
    assert_int_equal(run("env KGMETA_RC=cli_rc.kgm", "--no-rc -c 'show mode'", NULL), 0);
    assert_non_null(strstr(out, "mode    | table"));
    remove("cli_rc.kgm");
}

static void a_store_directory_persists(void **state)
{
    (void)state;
    assert_int_equal(system("rm -rf cli_store"), 0);
    assert_int_equal(run(NULL, "--no-rc cli_store -c 'add <http://x/a> <http://x/b> <http://x/c>'", NULL), 0);
    assert_int_equal(run(NULL, "--no-rc cli_store -c 'set mode=csv; count'", NULL), 0);
    assert_string_equal(out, "triples\r\n1\r\n");
    assert_int_equal(run(NULL, "--no-rc cli_store -c 'remove <http://x/a> <http://x/b> \"c\"; count'", NULL), 1);
    assert_int_equal(system("rm -rf cli_store"), 0);
}

static void version_help_and_bad_options(void **state)
{
    (void)state;
    assert_int_equal(run(NULL, "--version", NULL), 0);
    assert_true(!strncmp(out, "kgmeta ", 7));
    assert_int_equal(run(NULL, "--help", NULL), 0);
    assert_non_null(strstr(out, "--keep-going"));
    assert_int_equal(run(NULL, "--frobnicate", NULL), 1);
    assert_non_null(strstr(err, "unknown option '--frobnicate'"));
}

/* kgmeta runs OpenBLAS's fast kernels where OpenBLAS falls back to its generic ones (it
 * re-executes itself with OPENBLAS_CORETYPE, src/blascore.h) and leaves a set one alone. This
 * test program is not re-executed, so its own kernels are what OpenBLAS detected here. */
static void blas_kernels_fast_unless_chosen(void **state)
{
    (void)state;
    if (getenv("OPENBLAS_CORETYPE")) skip();   /* the detection cannot be seen from here */
    const char *detected = kgm_blas_core(), *better = kgm_blas_better_core(detected);
    char want[128];
    snprintf(want, sizeof want, "\nOpenBLAS kernels: %s\n", better ? better : detected);
    assert_int_equal(run(NULL, "--version", NULL), 0);
    if (!strstr(out, want)) fail_msg("expected '%s' in '%s'", want + 1, out);
    assert_int_equal(run("env OPENBLAS_CORETYPE=Prescott", "--version", NULL), 0);
    assert_non_null(strstr(out, "\nOpenBLAS kernels: Prescott\n"));
    assert_null(kgm_blas_better_core("Haswell"));   /* a detected core is kept */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(command_strings_stop_at_the_first_error),
        cmocka_unit_test(blas_kernels_fast_unless_chosen),
        cmocka_unit_test(piped_input_has_no_prompt),
        cmocka_unit_test(startup_file_runs_first_unless_skipped),
        cmocka_unit_test(a_store_directory_persists),
        cmocka_unit_test(version_help_and_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
