/* shell/main.c - the kgmeta program: reads the command line, runs the start-up file,
 * then scripts (-f), command strings (-c), piped standard input, or the interactive
 * shell on a terminal. Exit status 1 when any command failed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blascore.h"
#include "error.h"
#include "interrupt.h"
#include "kgm_version.h"
#include "progress.h"
#include "shell.h"

static const char USAGE[] =
    "usage: kgmeta [OPTIONS] [STORE-DIR]\n"
    "  Opens STORE-DIR (created if missing) or an in-memory scratch store, then runs\n"
    "  the commands given, or reads commands from standard input (interactively on a\n"
    "  terminal: history, tab completion, Ctrl-C stops a command, Ctrl-D leaves).\n"
    "options:\n"
    "  -f FILE        run the commands in FILE (- for standard input); may repeat\n"
    "  -c 'CMD; CMD'  run commands separated by ';'; may repeat\n"
    "  --keep-going   do not stop a script at its first error (same as set bail=off)\n"
    "  --no-rc        skip the start-up file ($KGMETA_RC, else ~/.kgmetarc)\n"
    "  --version      print the version\n"
    "  --help         print this help\n"
    "Inside, type help for the commands. Exit status 1 when a command failed.\n";

typedef struct { char kind; const char *text; } job;     /* 'f' file, 'c' commands */

/* $NAME, else ~/FILE, else NULL; returns new. */
static char *home_path(const char *env, const char *file)
{
    const char *v = getenv(env);
    if (v) return *v ? strdup(v) : NULL;
    const char *home = getenv("HOME");
    if (!home || !*home) return NULL;
    size_t n = strlen(home) + strlen(file) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", home, file);
    return p;
}

static void run_rc(kgm_shell *sh)
{
    char *path = home_path("KGMETA_RC", ".kgmetarc");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (f) {
        kgm_shell_run_file(sh, f, path);
        fclose(f);
    }
    free(path);
}

/* Outside the interactive loop Ctrl-C stops the running command; a second one, before
 * the command noticed, ends the program the usual way. */
static void on_batch_sigint(int sig)
{
    if (kgm_interrupted()) { signal(sig, SIG_DFL); raise(sig); return; }
    kgm_interrupt_raise();
}

static int run_job(kgm_shell *sh, const job *j)
{
    if (j->kind == 'c') return kgm_shell_run_string(sh, j->text, "-c");
    if (!strcmp(j->text, "-")) return kgm_shell_run_file(sh, stdin, "stdin");
    FILE *f = fopen(j->text, "r");
    if (!f) {
        fprintf(stderr, "kgmeta: cannot open script %s\n", j->text);
        sh->n_errors++;
        return 1;
    }
    int rc = kgm_shell_run_file(sh, f, j->text);
    fclose(f);
    return rc;
}

int main(int argc, char **argv)
{
    kgm_blas_fix_core(argv);   /* may re-execute this program, so before anything else */
    job *jobs = calloc((size_t)argc, sizeof *jobs);
    int n_jobs = 0, keep_going = 0, no_rc = 0;
    const char *dir = NULL;
    if (!jobs) return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--version")) {
            printf("kgmeta %s\nOpenBLAS kernels: %s\n", KGM_VERSION, kgm_blas_core());
            free(jobs);
            return 0;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(USAGE, stdout); free(jobs); return 0; }
        if (!strcmp(a, "--keep-going")) keep_going = 1;
        else if (!strcmp(a, "--no-rc")) no_rc = 1;
        else if ((!strcmp(a, "-f") || !strcmp(a, "-c")) && i + 1 < argc)
            jobs[n_jobs++] = (job){ a[1], argv[++i] };
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "kgmeta: unknown option '%s' (try --help)\n", a);
            free(jobs);
            return 1;
        } else if (!dir) dir = a;
        else {
            fprintf(stderr, "kgmeta: expected one store directory, got '%s' and '%s'\n", dir, a);
            free(jobs);
            return 1;
        }
    }
    kgm_shell *sh;
    if (kgm_shell_new(&sh, stdout, stderr) != 0) {
        fprintf(stderr, "kgmeta: %s\n", kgm_error());
        free(jobs);
        return 1;
    }
    int tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    sh->interactive = tty && n_jobs == 0;
    sh->bail = !keep_going;
    kgm_progress_enable(isatty(STDERR_FILENO));
    signal(SIGINT, on_batch_sigint);
    int status = 0;
    if (dir && kgm_shell_open(sh, dir) != 0) {
        fprintf(stderr, "kgmeta: %s\n", kgm_error());
        status = 1;
    }
    if (status == 0 && !no_rc) run_rc(sh);
    for (int i = 0; status == 0 && i < n_jobs; i++)
        if (run_job(sh, &jobs[i]) != 0) break;
    if (status == 0 && n_jobs == 0) {
        if (sh->interactive) {
            char *hist = home_path("KGMETA_HISTORY", ".kgmeta_history");
            printf("kgmeta %s: type help for commands, Ctrl-D to leave\n", KGM_VERSION);
            kgm_shell_repl(sh, hist);
            free(hist);
        } else {
            kgm_shell_run_file(sh, stdin, "stdin");
        }
    }
    if (sh->n_errors && !sh->interactive) status = 1;   /* a typo at the prompt is no failure */
    kgm_shell_free(sh);
    free(jobs);
    return status;
}
