/* shell/repl.c - the interactive side: GNU Readline through its callback interface (so
 * Ctrl-C at the prompt can clear the line without leaving), a persistent history file,
 * tab completion from the command table and the open store, and the SIGINT handler that
 * turns Ctrl-C during a command into kgm_interrupt_raise(). Batch runs never come here. */
#include "shell.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>
#include <readline/history.h>
#include <readline/readline.h>

#include "cmd.h"
#include "error.h"
#include "interrupt.h"

/* ---- completion ---- */

typedef struct { char **v; size_t n, cap; } cand_list;

static void cand_add(void *ctx, const char *s)
{
    cand_list *l = ctx;
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s)) return;
    if (l->n + 2 > l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) return;
        l->v = v;
        l->cap = cap;
    }
    char *copy = strdup(s);
    if (!copy) return;
    l->v[l->n++] = copy;
    l->v[l->n] = NULL;
}

char **kgm_shell_complete(kgm_shell *sh, const char *line, int start, const char *text)
{
    cand_list l = { 0 };
    size_t n, len = strlen(text);
    const sh_cmd *cmds = sh_cmds(&n);
    int first_word = 1;
    for (int i = 0; i < start && line[i]; i++)
        if (line[i] != ' ' && line[i] != '\t') first_word = 0;
    if (first_word) {
        for (size_t i = 0; i < n; i++)
            if (!strncmp(cmds[i].name, text, len)) cand_add(&l, cmds[i].name);
        return l.v;
    }
    char name[32];
    size_t w = strspn(line, " \t"), k = 0;
    while (line[w] && line[w] != ' ' && line[w] != '\t' && k + 1 < sizeof name) name[k++] = line[w++];
    name[k] = '\0';
    const sh_cmd *c = sh_find(name);
    if (c && !strcmp(c->name, "help")) {
        for (size_t i = 0; i < n; i++)
            if (!strncmp(cmds[i].name, text, len)) cand_add(&l, cmds[i].name);
        return l.v;
    }
    if (c && c->options) {
        char buf[64];
        for (const char *const *o = c->options; *o; o++) {
            snprintf(buf, sizeof buf, "%s=", *o);
            if (!strncmp(buf, text, len)) cand_add(&l, buf);
        }
    }
    sh_store_candidates(sh, text, cand_add, &l);
    return l.v;
}

static kgm_shell *g_sh;         /* readline's callbacks take no context */
static char **g_cands;
static size_t g_next;

static char *generate(const char *text, int state)
{
    (void)text;
    if (state == 0) g_next = 0;
    return g_cands && g_cands[g_next] ? strdup(g_cands[g_next++]) : NULL;
}

static char **attempt(const char *text, int start, int end)
{
    (void)end;
    rl_attempted_completion_over = 1;   /* never fall back to file names */
    if (g_cands) {
        for (char **p = g_cands; *p; p++) free(*p);
        free(g_cands);
    }
    g_cands = kgm_shell_complete(g_sh, rl_line_buffer, start, text);
    /* name= wants its value right after, not a space. */
    if (g_cands && g_cands[0] && !g_cands[1] && g_cands[0][strlen(g_cands[0]) - 1] == '=')
        rl_completion_suppress_append = 1;
    return rl_completion_matches(text, generate);
}

/* ---- Ctrl-C ---- */

static volatile sig_atomic_t g_sigint;
static int g_wake[2] = { -1, -1 };   /* self-pipe: the handler writes, the prompt's select wakes */

/* A process-directed SIGINT goes to any thread not blocking it, and OpenBLAS starts its
 * threads before main() can block anything: while the prompt thread blocks SIGINT (busy
 * with a key) the signal lands on one of them, and pselect() alone would sleep on. The
 * byte in the pipe wakes the prompt whichever thread ran the handler. */
static void on_sigint(int sig)
{
    (void)sig;
    int saved = errno;
    g_sigint = 1;
    kgm_interrupt_raise();
    if (g_wake[1] >= 0 && write(g_wake[1], "", 1) < 0) { /* full: a wake-up is pending anyway */ }
    errno = saved;
}

static void drain_wake(void)
{
    char sink[64];
    while (g_wake[0] >= 0 && read(g_wake[0], sink, sizeof sink) > 0) {}
}

/* ---- reading a line ---- */

static char *g_line;
static int g_done;

static void on_line(char *line)
{
    g_line = line;
    g_done = 1;
    rl_callback_handler_remove();       /* no prompt redrawn while the command runs */
}

static char *cancel_line(void)
{
    g_sigint = 0;
    kgm_interrupt_clear();
    rl_free_line_state();
    rl_callback_sigcleanup();
    rl_callback_handler_remove();
    fputs("^C\n", rl_outstream);
    return NULL;
}

/* Reads one line; NULL at Ctrl-D. *cancelled is set when Ctrl-C cleared the line.
 * SIGINT is blocked in this thread except inside pselect(), so a Ctrl-C that lands while
 * readline is busy with a key is seen at the next wait (through the pending signal, or
 * the self-pipe when another thread took it) instead of being lost until the next key. */
static char *read_line(const char *prompt, int *cancelled)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &old);
    *cancelled = 0;
    g_done = 0;
    g_line = NULL;
    g_sigint = 0;
    drain_wake();                       /* Ctrl-C typed during the last command is spent */
    rl_callback_handler_install(prompt, on_line);
    int in = fileno(rl_instream), n_fds = (in > g_wake[0] ? in : g_wake[0]) + 1;
    while (!g_done) {
        if (g_sigint) { *cancelled = 1; cancel_line(); break; }
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(in, &fds);
        if (g_wake[0] >= 0) FD_SET(g_wake[0], &fds);
        int r = pselect(n_fds, &fds, NULL, NULL, NULL, &old);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { rl_callback_handler_remove(); break; }
        if (g_wake[0] >= 0 && FD_ISSET(g_wake[0], &fds)) drain_wake();
        if (FD_ISSET(in, &fds)) rl_callback_read_char();
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return g_line;
}

/* ---- the loop ---- */

static void history_open(const char *path)
{
    using_history();
    stifle_history(2000);
    if (path) {
        FILE *f = fopen(path, "a");     /* append_history needs the file to exist */
        if (f) fclose(f);
        read_history(path);
    }
}

static void history_note(const char *path, const char *cmd)
{
    add_history(cmd);
    /* Appended at once, so a killed session keeps what was typed. */
    if (path) append_history(1, path);
}

int kgm_shell_repl(kgm_shell *sh, const char *history_path)
{
    g_sh = sh;
    rl_readline_name = "kgmeta";
    rl_attempted_completion_function = attempt;
    rl_completer_word_break_characters = " \t";
    rl_catch_signals = 0;               /* our handler, so Ctrl-C reaches long commands */
    if (pipe2(g_wake, O_NONBLOCK | O_CLOEXEC) != 0) g_wake[0] = g_wake[1] = -1;   /* then pselect alone */
    struct sigaction sa = { 0 };
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);           /* no SA_RESTART: select() must see EINTR */
    sigaction(SIGINT, &sa, NULL);
    history_open(history_path);

    char *cmd = NULL;
    size_t len = 0;
    for (;;) {
        int cancelled;
        char *line = read_line(cmd ? "   ...> " : "kgmeta> ", &cancelled);
        if (cancelled) { free(cmd); cmd = NULL; len = 0; continue; }
        if (!line) { fputc('\n', sh->out); break; }
        size_t add = strlen(line);
        char *grown = realloc(cmd, len + add + 2);
        if (!grown) { free(line); break; }
        cmd = grown;
        if (len) cmd[len++] = '\n';
        memcpy(cmd + len, line, add + 1);
        len += add;
        free(line);
        if (kgm_shell_needs_more(cmd)) continue;
        if (cmd[strspn(cmd, " \t\n")]) history_note(history_path, cmd);
        int rc = kgm_shell_exec(sh, cmd);
        if (kgm_error_code() == KGM_EINTR) kgm_interrupt_clear();
        free(cmd);
        cmd = NULL;
        len = 0;
        if (rc == 2) break;
    }
    free(cmd);
    if (g_cands) {
        for (char **p = g_cands; *p; p++) free(*p);
        free(g_cands);
        g_cands = NULL;
    }
    if (history_path) history_truncate_file(history_path, 2000);
    clear_history();
    signal(SIGINT, SIG_DFL);
    for (int i = 0; i < 2; i++)
        if (g_wake[i] >= 0) { close(g_wake[i]); g_wake[i] = -1; }
    return 0;
}
