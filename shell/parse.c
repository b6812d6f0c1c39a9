/* shell/parse.c - splitting a command line into name, arguments and name=value options.
 * Pure string work: no store, no printing. Fuzzed by tests/fuzz_parser.c, so every
 * index is bounded by the copy's length and nothing here may assume well-formed input. */
#include "shell.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "error.h"

/* ---- words ---- */

/* Returns the end of the word starting at p: blanks end it, except inside quotes or a
 * <...> term opened at the word's start. NULL when a quote is never closed. */
static char *word_end(char *p)
{
    char quote = 0;
    int angle = (*p == '<');
    for (; *p; p++) {
        if (quote) {
            if (*p == '\\' && p[1]) p++;
            else if (*p == quote) quote = 0;
        } else if (angle) {
            if (*p == '>') angle = 0;
        } else if (*p == '"' || *p == '\'') {
            quote = *p;
        } else if (isspace((unsigned char)*p)) {
            break;
        }
    }
    return quote ? NULL : p;
}

static char *skip_blanks(char *p)
{
    while (*p && isspace((unsigned char)*p)) p++;
    return p;
}

/* name=value with name [A-Za-z_][A-Za-z0-9_-]*; prefixed names (ex:a=b) and quoted or
 * <...> terms never qualify, so RDF terms are never taken for options. */
static int is_option(const char *w)
{
    if (!isalpha((unsigned char)*w) && *w != '_') return 0;
    const char *p = w;
    while (isalnum((unsigned char)*p) || *p == '_' || *p == '-') p++;
    return *p == '=';
}

/* Trailing blanks off the raw rest of a line. */
static void rtrim(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
}

int kgm_shell_parse(const char *line, int raw_after, kgm_shell_args *a)
{
    memset(a, 0, sizeof *a);
    a->buf = strdup(line ? line : "");
    if (!a->buf) return kgm_fail(KGM_ENOMEM, "out of memory reading a command");
    char *p = skip_blanks(a->buf);
    if (!*p || *p == '#') return 0;
    char *end = word_end(p);
    if (!end) return kgm_fail(KGM_ESYNTAX, "unterminated quote");
    a->name = p;
    p = *end ? skip_blanks(end + 1) : end;
    *end = '\0';
    while (*p && *p != '#') {
        if (raw_after >= 0 && a->argc == raw_after) {
            rtrim(p);
            a->argv[a->argc++] = p;
            return 0;
        }
        if (a->argc + a->n_opts >= KGM_SHELL_MAX_ARGS)
            return kgm_fail(KGM_ESYNTAX, "too many arguments (at most %d)", KGM_SHELL_MAX_ARGS);
        end = word_end(p);
        if (!end) return kgm_fail(KGM_ESYNTAX, "unterminated quote in '%.40s'", p);
        char *next = *end ? skip_blanks(end + 1) : end;
        *end = '\0';
        if (is_option(p)) {
            char *eq = strchr(p, '=');
            *eq = '\0';
            a->opt_name[a->n_opts] = p;
            a->opt_value[a->n_opts++] = kgm_shell_unquote(eq + 1);
        } else {
            a->argv[a->argc++] = p;
        }
        p = next;
    }
    return 0;
}

void kgm_shell_args_free(kgm_shell_args *a)
{
    if (!a) return;
    free(a->buf);
    a->buf = NULL;
}

char *kgm_shell_unquote(char *s)
{
    size_t n = strlen(s);
    if (n < 2 || (s[0] != '"' && s[0] != '\'') || s[n - 1] != s[0]) return s;
    char *w = s;
    for (size_t i = 1; i + 1 < n; i++) {
        if (s[i] == '\\' && i + 2 < n) i++;
        *w++ = s[i];
    }
    *w = '\0';
    return s;
}

const char *sh_opt(const kgm_shell_args *a, const char *name)
{
    for (int i = 0; i < a->n_opts; i++)
        if (!strcmp(a->opt_name[i], name)) return a->opt_value[i];
    return NULL;
}

/* ---- did you mean ---- */

/* Edit distance counting a swap of neighbours as one edit (hlep -> help), capped:
 * words longer than 32 bytes are never "close". */
static int distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32) return 99;
    int d[33][33];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            int best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

const char *kgm_shell_closest(const char *word)
{
    size_t n;
    const sh_cmd *cmds = sh_cmds(&n);
    const char *best = NULL;
    int best_d = 3;                     /* more than two edits away is not a typo */
    size_t wl = strlen(word);
    for (size_t i = 0; i < n; i++) {
        int d = distance(word, cmds[i].name);
        if (wl >= 2 && !strncmp(cmds[i].name, word, wl)) d = 1;   /* a prefix of it */
        if (d < best_d) { best_d = d; best = cmds[i].name; }
    }
    return best;
}
