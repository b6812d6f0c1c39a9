/* shell/commands.c - the command table, the settings table, dispatch and the batch
 * drivers. Everything a user can type is a row in CMDS; help, arity errors, "did you
 * mean" and completion read the same rows, so a new capability is one row plus its
 * handler. Store commands live in shell/cmd_store.c. */
#include "shell.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "error.h"
#include "interrupt.h"
#include "progress.h"
#include "store.h"

/* ---- settings ---- one row each; `set` and `show` read this table. */

typedef struct {
    const char *name, *values, *summary;
    int (*set)(kgm_shell *sh, const char *v);
    void (*get)(const kgm_shell *sh, char *buf, size_t n);
} sh_setting;

static int parse_on_off(const char *name, const char *v, int *out)
{
    if (!strcmp(v, "on") || !strcmp(v, "1")) { *out = 1; return 0; }
    if (!strcmp(v, "off") || !strcmp(v, "0")) { *out = 0; return 0; }
    return kgm_fail(KGM_EINVAL, "%s: expected on or off, got '%s'", name, v);
}

static int parse_count(const char *name, const char *v, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (!isdigit((unsigned char)*v) || *end || errno || x > max)
        return kgm_fail(KGM_EINVAL, "%s: expected a whole number 0..%lu, got '%s'", name, max, v);
    *out = x;
    return 0;
}

static int set_seed(kgm_shell *sh, const char *v)
{
    return parse_count("seed", v, 0xffffffffUL, &sh->seed);
}
static void get_seed(const kgm_shell *sh, char *b, size_t n) { snprintf(b, n, "%lu", sh->seed); }

static int set_threads(kgm_shell *sh, const char *v)
{
    unsigned long x = 0;
    int rc = parse_count("threads", v, 256, &x);
    if (rc == 0 && x == 0) rc = kgm_fail(KGM_EINVAL, "threads: expected 1..256, got 0");
    if (rc == 0) sh->threads = (int)x;
    return rc;
}
static void get_threads(const kgm_shell *sh, char *b, size_t n) { snprintf(b, n, "%d", sh->threads); }

static int set_mode(kgm_shell *sh, const char *v)
{
    if (kgm_mode_parse(v, &sh->mode) != 0)
        return kgm_fail(KGM_EINVAL, "mode: expected table, csv, tsv or json, got '%s'", v);
    return 0;
}
static void get_mode(const kgm_shell *sh, char *b, size_t n) { snprintf(b, n, "%s", kgm_mode_name(sh->mode)); }

static int set_timer(kgm_shell *sh, const char *v) { return parse_on_off("timer", v, &sh->timer); }
static void get_timer(const kgm_shell *sh, char *b, size_t n) { snprintf(b, n, "%s", sh->timer ? "on" : "off"); }
static int set_bail(kgm_shell *sh, const char *v) { return parse_on_off("bail", v, &sh->bail); }
static void get_bail(const kgm_shell *sh, char *b, size_t n) { snprintf(b, n, "%s", sh->bail ? "on" : "off"); }

/* off, on (a step that raises the support loss is retried at half the rates) or grow (also
 * doubles them after a step that lowers it at once); models/meta.h kgm_meta_set_backtrack */
static const char *const BACKTRACK_NAMES[] = { "off", "on", "grow" };
static int set_backtrack(kgm_shell *sh, const char *v)
{
    for (int i = 0; i < (int)(sizeof BACKTRACK_NAMES / sizeof BACKTRACK_NAMES[0]); i++)
        if (!strcmp(v, BACKTRACK_NAMES[i])) { sh->backtrack = i; return 0; }
    return kgm_fail(KGM_EINVAL, "backtrack: expected on, off or grow, got '%s'", v);
}
static void get_backtrack(const kgm_shell *sh, char *b, size_t n) { snprintf(b, n, "%s", BACKTRACK_NAMES[sh->backtrack]); }

static const sh_setting SETTINGS[] = {
    { "seed",    "0..4294967295",        "seed for every random choice", set_seed, get_seed },
    { "threads", "1..256",               "worker threads for learning", set_threads, get_threads },
    { "mode",    "table|csv|tsv|json",   "how results print", set_mode, get_mode },
    { "timer",   "on|off",               "print elapsed time after each command", set_timer, get_timer },
    { "bail",    "on|off",               "scripts stop at the first error", set_bail, get_bail },
    { "backtrack", "on|off|grow",        "adapt and evaluate never raise a task's support loss",
      set_backtrack, get_backtrack },
};
enum { N_SETTINGS = sizeof SETTINGS / sizeof SETTINGS[0] };

static const sh_setting *find_setting(const char *name)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (!strcmp(SETTINGS[i].name, name)) return &SETTINGS[i];
    return NULL;
}

/* ---- core commands ---- */

static int cmd_help(kgm_shell *sh, kgm_shell_args *a)
{
    size_t n;
    const sh_cmd *cmds = sh_cmds(&n);
    if (a->argc == 0) {
        fputs("Commands (help CMD for usage and an example):\n", sh->out);
        for (size_t i = 0; i < n; i++)
            fprintf(sh->out, "  %-10s %s\n", cmds[i].name, cmds[i].summary);
        fputs("Options are written name=value. Lines starting with # are comments.\n", sh->out);
        return 0;
    }
    const sh_cmd *c = sh_find(a->argv[0]);
    if (!c) {
        const char *near = kgm_shell_closest(a->argv[0]);
        kgm_fail(KGM_ENOTFOUND, "help: no command '%s'%s%s%s", a->argv[0],
                 near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
        return 1;
    }
    fprintf(sh->out, "usage: %s\n  %s\n", c->usage, c->summary);
    if (c->options) {
        fputs("options:", sh->out);
        for (const char *const *o = c->options; *o; o++) fprintf(sh->out, " %s=...", *o);
        fputc('\n', sh->out);
    }
    fprintf(sh->out, "example: %s\n", c->example);
    return 0;
}

static const char *const SETTING_NAMES[] = { "seed", "threads", "mode", "timer", "bail", "backtrack", NULL };
#define SETTINGS_LIST "seed threads mode timer bail backtrack"   /* for messages */

static int cmd_set(kgm_shell *sh, kgm_shell_args *a)
{
    if (a->argc == 2) {               /* `set mode csv` reads as `set mode=csv` */
        a->opt_name[a->n_opts] = a->argv[0];
        a->opt_value[a->n_opts++] = a->argv[1];
    } else if (a->argc == 1) {
        kgm_fail(KGM_EINVAL, "set: expected NAME=VALUE, got '%s' (try: set mode=csv)", a->argv[0]);
        return 1;
    }
    if (a->n_opts == 0) {
        kgm_fail(KGM_EINVAL, "set: expected NAME=VALUE (settings: " SETTINGS_LIST ")");
        return 1;
    }
    /* Check every value before changing any, so a bad one changes nothing. */
    kgm_shell trial = *sh;
    for (int i = 0; i < a->n_opts; i++) {
        const sh_setting *s = find_setting(a->opt_name[i]);
        if (!s) {
            kgm_fail(KGM_EINVAL, "set: no setting '%s' (settings: " SETTINGS_LIST ")",
                     a->opt_name[i]);
            return 1;
        }
        if (s->set(&trial, a->opt_value[i]) != 0) return 1;
    }
    *sh = trial;
    return 0;
}

static int cmd_show(kgm_shell *sh, kgm_shell_args *a)
{
    const char *names[] = { "setting", "value", "values", "meaning" };
    kgm_table *t = kgm_table_new(4, names);
    if (!t) { kgm_fail(KGM_ENOMEM, "out of memory"); return 1; }
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (a->argc == 1 && strcmp(a->argv[0], SETTINGS[i].name)) continue;
        char value[64];
        SETTINGS[i].get(sh, value, sizeof value);
        long r = kgm_table_add_row(t);
        if (r < 0) break;
        kgm_table_set_text(t, (size_t)r, 0, SETTINGS[i].name);
        kgm_table_set_text(t, (size_t)r, 1, value);
        kgm_table_set_text(t, (size_t)r, 2, SETTINGS[i].values);
        kgm_table_set_text(t, (size_t)r, 3, SETTINGS[i].summary);
    }
    int rc = 0;
    if (t->n_rows == 0)
        rc = kgm_fail(KGM_EINVAL, "show: no setting '%s' (settings: " SETTINGS_LIST ")",
                      a->argv[0]);
    else
        rc = sh_print_table(sh, t);
    kgm_table_free(t);
    return rc ? 1 : 0;
}

static int cmd_echo(kgm_shell *sh, kgm_shell_args *a)
{
    fprintf(sh->out, "%s\n", a->argc ? a->argv[0] : "");
    return 0;
}

/* Waits in small steps so Ctrl-C (kgm_interrupted) ends it at once: scripts use it to
 * pace a demo, tests use it as a command that genuinely runs long. */
static int cmd_sleep(kgm_shell *sh, kgm_shell_args *a)
{
    (void)sh;
    unsigned long ms = 0;
    if (parse_count("sleep", a->argv[0], 86400000UL, &ms) != 0) return 1;
    struct timespec step = { 0, 10 * 1000 * 1000 };
    for (unsigned long waited = 0; waited < ms; waited += 10) {
        if (kgm_interrupted()) { kgm_fail(KGM_EINTR, "sleep: interrupted"); return 1; }
        nanosleep(&step, NULL);
    }
    return 0;
}

static int cmd_quit(kgm_shell *sh, kgm_shell_args *a) { (void)sh; (void)a; return 2; }

/* ---- the command table ---- */

static const char *const LOAD_OPTS[] = { "base", NULL };
static const char *const TASKS_OPTS[] = { "role", NULL };
static const char *const TASK_OPTS[] = { "role", "generator", "data", "input", "output", "support",
                                         "a", "b", "c", "d", "label", NULL };
static const char *const TRAIN_OPTS[] = { "learner", "cond", "steps", "alpha", "outer_lr", "batch",
                                          "iterations", "shots", "hidden", "seed", "threads", "source",
                                          "cond_lr", "prototypes", "clip", "skip_nonfinite",
                                          "rate_lr", "weight_decay", "lr_floor", "cond_rates",
                                          "inner_backtrack", "msl", NULL };
static const char *const TUNE_OPTS[] = { "trials", "budget", "learner", "steps", "alpha", "outer_lr", "batch",
                                         "shots", "hidden", "seed", "threads", "source", NULL };
static const char *const ADAPT_OPTS[] = { "steps", "shots", NULL };
static const char *const PREDICT_OPTS[] = { "x", NULL };
static const char *const EMBED_OPTS[] = { "model", "dim", "epochs", "lr", "neg", "seed", "threads", "loss", "edrop", "rdrop",
                                          "dside", "recip", "logq", "subsample", "ls", "decay", "rdecay", "init",
                                          "init_lo", "opt", "reg", "regw", "batch", "margin", "gamma", "adv",
                                          "bern", "holdout", "graph", "k", "with", NULL };
static const char *const EVAL_OPTS[] = { "split", "steps", "shots", NULL };
static const char *const MODEL_OPTS[] = { "prototypes", NULL };

/* Rows leave options, raw_from and complete out when unused (zero means none). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const sh_cmd CMDS[] = {
/*  name        min max  usage                         summary                                  handler       example */
  { "open",      1,  1, "open DIR",                  "open (or create) a store directory",   cmd_open,
    "open /tmp/kg" },
  { "load",      1,  2, "load FILE [SYNTAX] [base=IRI]", "add a graph file (turtle, ntriples, nquads, trig, rdfxml)", cmd_load,
    "load datasets/demo-tasks.ttl", .options = LOAD_OPTS },
  { "query",     1,  1, "query SPARQL",              "run a SPARQL query (may span lines)",  cmd_query,
    "query SELECT ?t WHERE { ?t a mls:Task }", .raw_from = 1, .complete = sh_query_complete },
  { "add",       3,  3, "add S P O",                 "add one triple",                       cmd_add,
    "add ex:t9 a mls:Task" },
  { "remove",    3,  3, "remove S P O",              "remove one triple",                    cmd_remove,
    "remove ex:t9 a mls:Task" },
  { "export",    1,  2, "export FILE [turtle|ntriples] [CONSTRUCT-query]", "write the graph or a CONSTRUCT result", cmd_export,
    "export /tmp/kg.ttl turtle", .raw_from = 2, .complete = sh_export_complete },
  { "prefix",    2,  2, "prefix NAME IRI",           "declare a prefix for terms and output", cmd_prefix,
    "prefix ex <http://example.org/>" },
  { "prefixes",  0,  0, "prefixes",                  "list the known prefixes",              cmd_prefixes,
    "prefixes" },
  { "count",     0,  0, "count",                     "number of triples in the store",       cmd_count,
    "count" },
  { "size",      0,  0, "size",                      "number of triples (same as count)",    cmd_count,
    "size" },
  { "compact",   0,  0, "compact",                   "fold the journal into a new snapshot", cmd_compact,
    "compact" },
  { "tasks",     0,  0, "tasks [role=train|validation|test]", "list the store's meta-learning tasks", cmd_tasks,
    "tasks role=train", .options = TASKS_OPTS },
  { "task",      1,  1, "task NAME role=.. (generator=IRI a=.. b=.. | data=FILE input=COL output=COL)",
    "define a task in the graph", cmd_task,
    "task demo:sine-new role=test generator=demo:SineGen a=2.0 b=0.5", .options = TASK_OPTS },
  { "embed",     1,  4, "embed train [model=.. loss=..]|eval|save FILE|load FILE|neighbours ENTITY [k=10 with=PROP,..]|score S P O",
    "knowledge-graph embeddings of the store's graph", cmd_embed,
    "embed train model=transe-l2 dim=32 epochs=100", .options = EMBED_OPTS },
  { "train",     0,  0, "train [learner=maml|fomaml|metasgd|anil|reptile cond=none|shift|film source=graph|sine iterations=..]",
    "meta-train a model, keeping its best state", cmd_train,
    "train source=sine learner=maml iterations=200 batch=5", .options = TRAIN_OPTS },
  { "adapt",     1,  1, "adapt TASK [steps=5 shots=10]", "adapt the model to a task's support set", cmd_adapt,
    "adapt demo:sine-new steps=10", .options = ADAPT_OPTS },
  { "predict",   0,  1, "predict [TASK] x=X[,X...]", "predictions of the adapted model", cmd_predict,
    "predict demo:sine-new x=0,1.5,3", .options = PREDICT_OPTS },
  { "evaluate",  0,  1, "evaluate TASK|split=test [steps=5 shots=10]", "query MSE and MAE per inner step, with 95% CIs", cmd_evaluate,
    "evaluate split=test steps=5", .options = EVAL_OPTS },
  { "model",     2,  2, "model save|load FILE [prototypes=K]", "save or load the session's model (a conditioned one finds e(t) in the open store)", cmd_model,
    "model save /tmp/sine.kgmm", .options = MODEL_OPTS },
  { "tune",      1,  1, "tune \"SPACE\" [trials=10 budget=200 source=graph|sine] | tune adopt",
    "tune training settings by Bayesian optimization, trials recorded in the graph", cmd_tune,
    "tune \"alpha=1e-3..1e-1:log steps=1..5:int\" trials=5 budget=50", .options = TUNE_OPTS },
  { "runs",      0,  0, "runs",                      "training runs recorded in the graph (SPARQL)", cmd_runs,
    "runs" },
  { "models",    0,  0, "models",                    "models recorded in the graph (SPARQL)", cmd_models,
    "models" },
  { "plot",      2,  3, "plot loss FILE | plot predictions TASK FILE", "plot the loss curve or an adapted task (png, svg)", cmd_plot,
    "plot loss /tmp/loss.png" },
  { "set",       0,  2, "set NAME=VALUE...",         "change settings (see show)",           cmd_set,
    "set mode=csv timer=on", .options = SETTING_NAMES },
  { "show",      0,  1, "show [NAME]",               "show settings and their values",       cmd_show,
    "show mode" },
  { "echo",      0,  1, "echo TEXT",                 "print a line of text",                 cmd_echo,
    "echo Loading the demo graph", .raw_from = 1 },
  { "sleep",     1,  1, "sleep MS",                  "wait MS milliseconds (Ctrl-C stops it)", cmd_sleep,
    "sleep 500" },
  { "help",      0,  1, "help [CMD]",                "list commands, or show one in full",   cmd_help,
    "help load" },
  { "quit",      0,  0, "quit",                      "leave kgmeta (also exit, Ctrl-D)",     cmd_quit,
    "quit" },
  { "exit",      0,  0, "exit",                      "leave kgmeta (also quit, Ctrl-D)",     cmd_quit,
    "exit" },
};
#pragma GCC diagnostic pop

const sh_cmd *sh_cmds(size_t *n)
{
    *n = sizeof CMDS / sizeof CMDS[0];
    return CMDS;
}

const sh_cmd *sh_find(const char *name)
{
    for (size_t i = 0; i < sizeof CMDS / sizeof CMDS[0]; i++)
        if (!strcmp(CMDS[i].name, name)) return &CMDS[i];
    return NULL;
}

/* ---- dispatch ---- */

int sh_print_table(kgm_shell *sh, const kgm_table *t)
{
    size_t n_px = 0;
    const kgm_prefix *px = NULL;
    if (sh->store) px = kgm_store_prefixes(sh->store, &n_px);
    return kgm_table_write(t, sh->out, sh->mode, px, n_px);
}

void kgm_shell_report(kgm_shell *sh)
{
    const char *msg = kgm_error();
    if (!*msg) msg = "failed (no message)";
    int colour = sh->interactive;
    if (sh->src && sh->line > 0)
        fprintf(sh->err, "%s:%d: %s\n", sh->src, sh->line, msg);
    else
        fprintf(sh->err, "%serror:%s %s\n", colour ? "\033[31m" : "", colour ? "\033[0m" : "", msg);
    fflush(sh->err);
}

/* Checks the parsed words against the row: arity and option names. */
static int check_args(const sh_cmd *c, const kgm_shell_args *a)
{
    if (a->argc < c->min || (c->max >= 0 && a->argc > c->max))
        return kgm_fail(KGM_EINVAL, "%s: expected %s%d argument%s, got %d (usage: %s)", c->name,
                        c->min == c->max ? "" : a->argc < c->min ? "at least " : "at most ",
                        a->argc < c->min ? c->min : c->max,
                        (a->argc < c->min ? c->min : c->max) == 1 ? "" : "s", a->argc, c->usage);
    for (int i = 0; i < a->n_opts; i++) {
        const char *const *o = c->options;
        while (o && *o && strcmp(*o, a->opt_name[i])) o++;
        if (!o || !*o)
            return kgm_fail(KGM_EINVAL, "%s: unknown option '%s=' (usage: %s)", c->name,
                            a->opt_name[i], c->usage);
    }
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Runs one command; errors are recorded, not printed. Returns 0, 1 or 2 (quit). */
static int dispatch(kgm_shell *sh, const char *line)
{
    kgm_shell_args a;
    kgm_error_clear();
    /* A first pass finds the name; the row then says how much of the line is raw. */
    if (kgm_shell_parse(line, 0, &a) != 0) { kgm_shell_args_free(&a); return 1; }
    if (!a.name) { kgm_shell_args_free(&a); return 0; }
    const sh_cmd *c = sh_find(a.name);
    if (!c) {
        const char *near = kgm_shell_closest(a.name);
        if (near)
            kgm_fail(KGM_ENOTFOUND, "unknown command '%.40s' (did you mean '%s'? try help)", a.name, near);
        else
            kgm_fail(KGM_ENOTFOUND, "unknown command '%.40s' (try help)", a.name);
        kgm_shell_args_free(&a);
        return 1;
    }
    kgm_shell_args_free(&a);
    int rc = kgm_shell_parse(line, c->raw_from - 1, &a);
    if (rc == 0) rc = check_args(c, &a);
    if (rc != 0) { kgm_shell_args_free(&a); return 1; }
    kgm_interrupt_clear();
    double t0 = now_ms();
    rc = c->handler(sh, &a);
    if (sh->timer) fprintf(sh->out, "time: %.3f ms\n", now_ms() - t0);
    kgm_progress_done();
    kgm_shell_args_free(&a);
    fflush(sh->out);
    return rc;
}

int kgm_shell_exec(kgm_shell *sh, const char *line)
{
    int rc = dispatch(sh, line);
    if (rc == 1) { sh->n_errors++; kgm_shell_report(sh); }
    return rc;
}

/* ---- batch input ---- */

/* The row of the command that starts `line`, when that command can span lines. */
static const sh_cmd *multiline_cmd(const char *line)
{
    while (isspace((unsigned char)*line)) line++;
    size_t n = 0;
    while (line[n] && !isspace((unsigned char)line[n])) n++;
    char name[32];
    if (n == 0 || n >= sizeof name) return NULL;
    memcpy(name, line, n);
    name[n] = '\0';
    const sh_cmd *c = sh_find(name);
    return c && c->complete ? c : NULL;
}

int kgm_shell_needs_more(const char *buf)
{
    const sh_cmd *c = multiline_cmd(buf);
    if (!c) return 0;
    kgm_shell_args a;
    int more = 0;
    int raw = c->raw_from - 1;
    if (kgm_shell_parse(buf, raw, &a) == 0 && a.argc > raw)
        more = !c->complete(a.argv[raw]);
    else if (kgm_error_code() == 0 && a.argc == raw && c->min > raw)
        more = 1;               /* `query` alone on a line: the query follows */
    kgm_shell_args_free(&a);
    kgm_error_clear();
    return more;
}

static int append_line(char **buf, size_t *len, const char *line)
{
    size_t add = strlen(line);
    char *grown = realloc(*buf, *len + add + 2);
    if (!grown) return kgm_fail(KGM_ENOMEM, "out of memory reading a script");
    *buf = grown;
    if (*len) grown[(*len)++] = '\n';
    memcpy(grown + *len, line, add + 1);
    *len += add;
    return 0;
}

/* Runs the command gathered so far; returns what the script loop should do:
 * 0 go on, 1 stop on an error (bail), 2 quit. */
static int run_gathered(kgm_shell *sh, const char *cmd, const char *name, int start)
{
    sh->src = name;
    sh->line = start;
    int rc = kgm_shell_exec(sh, cmd);
    if (rc == 2) return 2;
    return rc == 1 && sh->bail ? 1 : 0;
}

/* A complete query may still go on: in a script, lines that start with a blank continue
 * the query before them (ORDER BY, LIMIT on lines of their own), so a finished query
 * waits for the next line before it runs. */
int kgm_shell_run_file(kgm_shell *sh, FILE *in, const char *name)
{
    char *line = NULL, *cmd = NULL;
    size_t cap = 0, cmd_len = 0;
    int lineno = 0, start = 0, status = 0, waiting = 0;
    ssize_t got;
    while (status == 0 && (got = getline(&line, &cap, in)) >= 0) {
        lineno++;
        if (got && line[got - 1] == '\n') line[--got] = '\0';
        if (got && line[got - 1] == '\r') line[--got] = '\0';
        int indented = (line[0] == ' ' || line[0] == '\t') && line[strspn(line, " \t")];
        if (waiting && !indented) {         /* the query ended on the line before */
            status = run_gathered(sh, cmd, name, start);
            cmd_len = 0;
            waiting = 0;
            if (status) break;
        }
        if (cmd_len == 0) start = lineno;
        if (append_line(&cmd, &cmd_len, line) != 0) { status = 1; break; }
        if (kgm_shell_needs_more(cmd)) continue;
        if (multiline_cmd(cmd)) { waiting = 1; continue; }
        status = run_gathered(sh, cmd, name, start);
        cmd_len = 0;
    }
    if (status == 0 && waiting) {
        status = run_gathered(sh, cmd, name, start);
    } else if (status == 0 && cmd_len) {
        sh->src = name;
        sh->line = start;
        kgm_fail(KGM_ESYNTAX, "incomplete command at end of input (a query missing its closing brace?)");
        kgm_shell_report(sh);
        sh->n_errors++;
        status = 1;
    }
    sh->src = NULL;
    sh->line = 0;
    free(line);
    free(cmd);
    return status;
}

/* Splits at ';' outside quotes, braces and <...>, so queries keep their own ';'. */
int kgm_shell_run_string(kgm_shell *sh, const char *text, const char *name)
{
    char *copy = strdup(text);
    if (!copy) return kgm_fail(KGM_ENOMEM, "out of memory"), 1;
    int depth = 0, status = 0, part = 0;
    char quote = 0;
    char *begin = copy;
    for (char *p = copy;; p++) {
        if (quote) {
            if (*p == '\\' && p[1]) { p++; continue; }
            if (*p == quote) quote = 0;
            if (*p) continue;
        }
        if (*p == '"' || *p == '\'') quote = *p;
        else if (*p == '{' || *p == '<') depth++;
        else if ((*p == '}' || *p == '>') && depth > 0) depth--;
        if ((*p == ';' && depth == 0 && !quote) || !*p) {
            int last = !*p;
            *p = '\0';
            sh->src = name;
            sh->line = ++part;
            int rc = kgm_shell_exec(sh, begin);
            if (rc == 2 || (rc == 1 && sh->bail)) { status = rc; break; }
            if (last) break;
            begin = p + 1;
        }
    }
    sh->src = NULL;
    sh->line = 0;
    free(copy);
    return status;
}

/* ---- life ---- */

int kgm_shell_open(kgm_shell *sh, const char *dir)
{
    return sh_store_open(sh, dir);
}

int kgm_shell_new(kgm_shell **out, FILE *out_stream, FILE *err_stream)
{
    kgm_shell *sh = calloc(1, sizeof *sh);
    if (!sh) return kgm_fail(KGM_ENOMEM, "out of memory");
    sh->out = out_stream;
    sh->err = err_stream;
    sh->seed = 42;
    sh->threads = 1;
    sh->mode = KGM_MODE_TABLE;
    sh->bail = 1;
    if (sh_store_open(sh, NULL) != 0) { free(sh); return kgm_error_code(); }
    *out = sh;
    return 0;
}

void kgm_shell_free(kgm_shell *sh)
{
    if (!sh) return;
    sh_embed_free(sh);          /* before the store: its graph may be the store's view */
    sh_store_close(sh);
    sh_learn_free(sh);
    free(sh);
}
