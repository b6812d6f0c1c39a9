/* shell/cmd.h - inside the shell: the command row and the helpers handlers share.
 * Not a public API: only the shell/ sources include it. Adding a capability is one row in CMDS
 * (shell/commands.c) plus a handler `int cmd_NAME(kgm_shell *, kgm_shell_args *)` that
 * returns 0 (ok), 1 (error recorded with kgm_fail) or 2 (quit). */
#ifndef KGM_SHELL_CMD_H
#define KGM_SHELL_CMD_H

#include "shell.h"

typedef int (*sh_handler)(kgm_shell *sh, kgm_shell_args *a);

typedef struct {
    const char *name;
    int min, max;               /* positional arguments; max -1: no limit */
    const char *usage, *summary;
    sh_handler handler;
    const char *example;
    const char *const *options; /* NULL-terminated names accepted as name=value, or NULL */
    int raw_from;               /* 0: split every word; n: argument n (1-based) is the rest of
                                 * the line, raw (a query, a text) */
    int (*complete)(const char *raw);   /* multi-line: 1 when the raw rest is complete */
} sh_cmd;

const sh_cmd *sh_cmds(size_t *n);
const sh_cmd *sh_find(const char *name);

/* The value of option `name` in a, or NULL. */
const char *sh_opt(const kgm_shell_args *a, const char *name);
/* Writes a table in the shell's mode, IRIs abbreviated with the store's prefixes. */
int  sh_print_table(kgm_shell *sh, const kgm_table *t);

/* ---- store commands (shell/cmd_store.c) ---- */
int  cmd_open(kgm_shell *sh, kgm_shell_args *a);
int  cmd_load(kgm_shell *sh, kgm_shell_args *a);
int  cmd_query(kgm_shell *sh, kgm_shell_args *a);
int  cmd_add(kgm_shell *sh, kgm_shell_args *a);
int  cmd_remove(kgm_shell *sh, kgm_shell_args *a);
int  cmd_export(kgm_shell *sh, kgm_shell_args *a);
int  cmd_prefix(kgm_shell *sh, kgm_shell_args *a);
int  cmd_prefixes(kgm_shell *sh, kgm_shell_args *a);
int  cmd_count(kgm_shell *sh, kgm_shell_args *a);
int  cmd_compact(kgm_shell *sh, kgm_shell_args *a);
int  sh_store_open(kgm_shell *sh, const char *dir);          /* replaces the open store */
int  sh_query_complete(const char *raw);
int  sh_export_complete(const char *raw);
void sh_store_close(kgm_shell *sh);
/* Adds prefix names ("ex:") and task names matching text to a candidate list. */
void sh_store_candidates(kgm_shell *sh, const char *text,
                         void (*add)(void *ctx, const char *cand), void *ctx);

/* ---- task commands (shell/cmd_tasks.c) ---- */
int  cmd_tasks(kgm_shell *sh, kgm_shell_args *a);
int  cmd_task(kgm_shell *sh, kgm_shell_args *a);
/* A task's examples as plain arrays, with e(t) for conditioned models (owned by the caller:
 * free x, y and cond; cond is NULL from the functions here). */
typedef struct { size_t n_support, n_query; int dim; double *x, *y; float *cond; int cond_dim; } sh_examples;
/* Index of task name (prefixed or <iri>) in the store's task set, -1 absent, -2 error. */
long sh_task_find(kgm_shell *sh, const char *name);
/* k support and q query examples of a task (kgm_task_examples, seeded by the shell). */
int  sh_task_examples(kgm_shell *sh, const char *name, size_t k, size_t q, sh_examples *out);
/* Examples of every task with role (0 train, 1 validation, 2 test), reading the task set
 * once: new arrays *out and *names
 * (n entries each; free every x, y and name, then the arrays). */
int  sh_role_examples(kgm_shell *sh, int role, size_t k, size_t q, sh_examples **out, char ***names,
                      size_t *n);

/* ---- learning commands (shell/cmd_learn.c) ---- */
int  cmd_train(kgm_shell *sh, kgm_shell_args *a);
int  cmd_adapt(kgm_shell *sh, kgm_shell_args *a);
int  cmd_predict(kgm_shell *sh, kgm_shell_args *a);
int  cmd_evaluate(kgm_shell *sh, kgm_shell_args *a);
int  cmd_model(kgm_shell *sh, kgm_shell_args *a);
int  cmd_plot(kgm_shell *sh, kgm_shell_args *a);
int  cmd_runs(kgm_shell *sh, kgm_shell_args *a);      /* runs recorded in the graph */
int  cmd_models(kgm_shell *sh, kgm_shell_args *a);
int  cmd_tune(kgm_shell *sh, kgm_shell_args *a);      /* tune SPACE | tune adopt */
void sh_learn_free(kgm_shell *sh);      /* the session's model, curve and adapted task */
void sh_learn_store_changed(kgm_shell *sh);   /* after open: the model's record is elsewhere */

/* ---- embeddings (shell/cmd_embed.c) ---- */
int  cmd_embed(kgm_shell *sh, kgm_shell_args *a);
void sh_embed_free(kgm_shell *sh);      /* the session's embedding and its graph */
/* Before the store closes: a kept graph that is the store's view becomes an owned copy
 * (or, if that fails or the view is stale, the embedding is dropped). */
void sh_embed_detach(kgm_shell *sh);

#endif
