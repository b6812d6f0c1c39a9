/* shell/shell.h - the kgmeta command language: one table of commands read by dispatch,
 * `help`, arity errors, "did you mean" and tab completion; settings; batch and
 * interactive drivers. It is not the library's API for learning: handlers only call
 * other modules and decide what the user sees.
 *
 * A command line is `NAME ARG... [option=value]...`. Arguments are split on blanks;
 * "double" or 'single' quotes and <angle brackets> keep blanks inside one argument, and
 * arguments are passed on raw (quotes kept) so RDF terms like "chat"@fr reach the store
 * as typed. Options are always written name=value (never --name). A word starting with
 * # begins a comment. Commands that take a query treat the rest of the line as one raw
 * argument and continue on following lines until the query is complete (braces and
 * quotes balanced); in scripts, indented lines after a complete query continue it too
 * (ORDER BY, LIMIT on lines of their own).
 *
 * The shell owns its store and borrows its output streams: everything it prints goes to
 * `out` (results, timings) or `err` (errors), so tests capture it with open_memstream(). */
#ifndef KGM_SHELL_H
#define KGM_SHELL_H

#include <stdio.h>

#include "table.h"

struct kgm_store;

enum { KGM_SHELL_MAX_ARGS = 64 };

/* One parsed command line. Strings point into `buf` (owned, freed by kgm_shell_args_free). */
typedef struct {
    char *buf;
    const char *name;                   /* the command word, or NULL for a blank line */
    int argc;                           /* positional arguments */
    char *argv[KGM_SHELL_MAX_ARGS];
    int n_opts;                         /* name=value options, in order */
    char *opt_name[KGM_SHELL_MAX_ARGS], *opt_value[KGM_SHELL_MAX_ARGS];
} kgm_shell_args;

typedef struct kgm_shell {
    FILE *out, *err;            /* borrowed */
    struct kgm_store *store;    /* owned; NULL until a store is open */
    unsigned long seed;         /* for every random choice the learners make */
    int threads;                /* worker threads for learning */
    kgm_mode mode;              /* how tables print */
    int timer;                  /* print elapsed time after each command */
    int bail;                   /* scripts stop at the first error */
    int backtrack;              /* adapt's and evaluate's step rule: 0 off, 1 on, 2 grow
                                 * (kgm_backtrack, models/meta.h) */
    int interactive;            /* prompt, colour, progress */
    int n_errors;               /* errors so far (the exit status is 1 when > 0) */
    const char *src;            /* current input name ("-c", "stdin", a path) or NULL */
    int line;                   /* current input line (1-based), 0 when unknown */
    struct sh_learn *learn;     /* owned: the session's model, loss curve, adapted task */
    struct sh_embed *embed;     /* owned: the session's embedding and its graph */
} kgm_shell;

/* returns new: kgm_shell_free(). Starts with an in-memory scratch store. out and err
 * are borrowed and must outlive the shell. */
int  kgm_shell_new(kgm_shell **out, FILE *out_stream, FILE *err_stream);
void kgm_shell_free(kgm_shell *sh);                   /* NULL is a no-op */
int  kgm_shell_open(kgm_shell *sh, const char *dir);  /* replaces the open store */

/* ---- parsing ---- never crashes on any input; 0 or KGM_ESYNTAX (unterminated quote,
 * too many arguments). The first `raw_after` positionals are split, the rest of the line
 * is one raw argument (raw_after < 0: split everything). */
int  kgm_shell_parse(const char *line, int raw_after, kgm_shell_args *a);
void kgm_shell_args_free(kgm_shell_args *a);
/* Strips one level of "..." or '...' (with \" \\ escapes) in place; returns s. */
char *kgm_shell_unquote(char *s);
/* The command name closest to word (edit distance), or NULL when none is close. */
const char *kgm_shell_closest(const char *word);

/* ---- running ---- return 0 (ok), 1 (an error, already printed) or 2 (quit). */
int  kgm_shell_exec(kgm_shell *sh, const char *line);        /* one complete command */
/* 1 when text starts a multi-line command (a query) that is not complete yet. */
int  kgm_shell_needs_more(const char *text);
/* Reads commands from in until EOF, joining multi-line queries; stops at the first error
 * when bail is on. name is used in messages as "name:LINE: text". */
int  kgm_shell_run_file(kgm_shell *sh, FILE *in, const char *name);
/* Runs text as commands separated by ';' outside quotes, braces and <...> (for -c). */
int  kgm_shell_run_string(kgm_shell *sh, const char *text, const char *name);
/* The interactive loop on a terminal (shell/repl.c): readline, history, completion,
 * Ctrl-C. Returns 0 at Ctrl-D or quit, 1 when it could not start. */
int  kgm_shell_repl(kgm_shell *sh, const char *history_path);

/* ---- completion ---- candidates for the word `text` that starts at byte `start` of
 * `line`: command names first, then the command's option and setting names, prefixed
 * names and task names from the open store. returns new: a NULL-terminated array of new
 * strings (free each, then the array); NULL when there are none. */
char **kgm_shell_complete(kgm_shell *sh, const char *line, int start, const char *text);

/* Prints kgm_error() as "src:line: text" (or "error: text" with no location). */
void kgm_shell_report(kgm_shell *sh);

#endif
