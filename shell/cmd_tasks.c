/* shell/cmd_tasks.c - the task commands: `tasks` lists the store's meta-learning tasks
 * (kg/tasks.h) and `task` defines one from the shell as graph facts written through the
 * store, so they persist like any other edit. Also the bridge the learning commands use to
 * get a task's examples as plain arrays: kg/tasks.h and models/tasksrc.h both name their
 * task type kgm_task, so no file includes both. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "error.h"
#include "store.h"
#include "tasks.h"

/* Full IRIs, so defining a task needs no prefix declared. */
#define K(local) "<" KGM_NS_IRI local ">"

static const char *const ROLE_WORDS[] = { "train", "validation", "test" };
static const char *const ROLE_IRIS[] = { "<" KGM_NS_IRI "MetaTrain>", "<" KGM_NS_IRI "MetaValidation>", "<" KGM_NS_IRI "MetaTest>" };

static int parse_role(const char *cmd, const char *v, int *out)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(v, ROLE_WORDS[i])) { *out = i; return 0; }
    return kgm_fail(KGM_EINVAL, "%s: role: expected train, validation or test, got '%s'", cmd, v);
}

/* Relative data files resolve against the current directory, as `load` paths do. */
static int read_tasks(kgm_shell *sh, kgm_taskset **out)
{
    return kgm_tasks_read(sh->store, ".", out);
}

int cmd_tasks(kgm_shell *sh, kgm_shell_args *a)
{
    const char *rv = sh_opt(a, "role");
    int role = -1;
    if (rv && parse_role("tasks", rv, &role) != 0) return 1;
    kgm_taskset *ts;
    if (read_tasks(sh, &ts) != 0) return 1;
    /* A shallow view holding only the tasks of the role; the table reads nothing else. */
    kgm_taskset view = *ts;
    view.build = NULL;
    view.n = 0;
    view.tasks = malloc((ts->n ? ts->n : 1) * sizeof *view.tasks);
    int rc = view.tasks ? 0 : kgm_fail(KGM_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < ts->n; i++)
        if (role < 0 || (int)ts->tasks[i].role == role) view.tasks[view.n++] = ts->tasks[i];
    kgm_table *t = rc ? NULL : kgm_taskset_table(&view);
    if (!rc && !t) rc = kgm_fail(KGM_ENOMEM, "out of memory");
    if (!rc) rc = sh_print_table(sh, t);
    kgm_table_free(t);
    free(view.tasks);
    kgm_taskset_free(ts);
    return rc ? 1 : 0;
}

/* ---- task NAME key=value... ---- */

static int is_number(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    return *s && !*end && isfinite(v);
}

/* One fact to add, its object as typed in the shell's term syntax. */
typedef struct { const char *pred; char obj[512]; } fact;

static int add_fact(fact *f, int *n, const char *pred, const char *fmt, const char *v)
{
    f[*n].pred = pred;
    if ((size_t)snprintf(f[*n].obj, sizeof f[*n].obj, fmt, v) >= sizeof f[*n].obj)
        return kgm_fail(KGM_EINVAL, "task: value too long: '%s'", v);
    (*n)++;
    return 0;
}

/* Builds the facts of `task` from its options, checking each value first: nothing is
 * written until all are good. */
static int task_facts(kgm_shell_args *a, fact *f, int *n)
{
    static const char *const PARAMS[] = { "a", "b", "c", "d" };
    static const char *const PARAM_IRIS[] = { K("paramA"), K("paramB"), K("paramC"), K("paramD") };
    const char *role = sh_opt(a, "role"), *gen = sh_opt(a, "generator");
    const char *data = sh_opt(a, "data"), *out = sh_opt(a, "output");
    int r = 0;
    if (!role) return kgm_fail(KGM_EINVAL, "task: role=train|validation|test is required");
    if (parse_role("task", role, &r) != 0) return KGM_EINVAL;
    if (!gen == !data)
        return kgm_fail(KGM_EINVAL, "task: give either generator=IRI or data=FILE.csv (with input= and output=)");
    if (data && (!out || !sh_opt(a, "input")))
        return kgm_fail(KGM_EINVAL, "task: data=%s needs input=COLUMN and output=COLUMN", data);
    if (add_fact(f, n, "a", "%s", "<http://www.w3.org/ns/mls#Task>") || add_fact(f, n, K("role"), "%s", ROLE_IRIS[r]))
        return KGM_EINVAL;
    if (gen && add_fact(f, n, K("generator"), "%s", gen)) return KGM_EINVAL;
    if (data && (add_fact(f, n, K("dataFile"), "\"%s\"", data) ||
                 add_fact(f, n, K("outputColumn"), "\"%s\"", out)))
        return KGM_EINVAL;
    for (int i = 0; i < a->n_opts; i++) {
        const char *k = a->opt_name[i], *v = a->opt_value[i];
        if (!strcmp(k, "input")) { if (add_fact(f, n, K("inputColumn"), "\"%s\"", v)) return KGM_EINVAL; continue; }
        if (!strcmp(k, "label")) { 
            /* the parser keeps quotes: strip one level, then write one plain literal */
            char *bare = strdup(v);
            if (!bare) return kgm_fail(KGM_ENOMEM, "out of memory");
            int rc = strpbrk(kgm_shell_unquote(bare), "\"\\") ? kgm_fail(KGM_EINVAL, "task: label: no quotes or backslashes please")
                   : add_fact(f, n, "<http://www.w3.org/2000/01/rdf-schema#label>", "\"%s\"", bare);
            free(bare);
            if (rc) return KGM_EINVAL;
            continue;
        }
        if (!strcmp(k, "support")) {
            if (!is_number(v)) return kgm_fail(KGM_EINVAL, "task: support: expected a number, got '%s'", v);
            if (add_fact(f, n, K("supportRows"), "%s", v)) return KGM_EINVAL;
            continue;
        }
        for (int p = 0; p < 4; p++)
            if (!strcmp(k, PARAMS[p])) {
                if (!is_number(v)) return kgm_fail(KGM_EINVAL, "task: %s: expected a number, got '%s'", k, v);
                if (add_fact(f, n, PARAM_IRIS[p], "%s", v)) return KGM_EINVAL;
            }
    }
    return 0;
}

int cmd_task(kgm_shell *sh, kgm_shell_args *a)
{
    fact f[KGM_SHELL_MAX_ARGS + 8];
    int n = 0;
    char *iri = kgm_store_expand(sh->store, a->argv[0]);
    if (!iri) return 1;
    free(iri);
    long found = sh_task_find(sh, a->argv[0]);
    if (found == -2) return 1;
    if (found >= 0) { kgm_fail(KGM_EINVAL, "task: %s is defined already", a->argv[0]); return 1; }
    if (task_facts(a, f, &n) != 0) return 1;
    for (int i = 0; i < n; i++)
        if (kgm_store_add(sh->store, a->argv[0], f[i].pred, f[i].obj) != 0) {
            /* take back what was added, so a refused task leaves the graph as it was */
            for (int j = i - 1; j >= 0; j--) kgm_store_remove(sh->store, a->argv[0], f[j].pred, f[j].obj);
            return 1;
        }
    kgm_taskset *ts;
    if (read_tasks(sh, &ts) != 0) {
        int code = kgm_error_code();
        char msg[512];
        snprintf(msg, sizeof msg, "%s", kgm_error());
        for (int j = n - 1; j >= 0; j--) kgm_store_remove(sh->store, a->argv[0], f[j].pred, f[j].obj);
        kgm_fail(code, "task: %s (nothing added)", msg);
        return 1;
    }
    kgm_taskset_free(ts);
    fprintf(sh->out, "task %s: %d facts added\n", a->argv[0], n);
    return 0;
}

/* ---- the bridge for the learning commands ---- */

long sh_task_find(kgm_shell *sh, const char *name)
{
    char *iri = kgm_store_expand(sh->store, name);
    if (!iri) return -2;
    kgm_taskset *ts;
    if (read_tasks(sh, &ts) != 0) { free(iri); return -2; }
    long i = kgm_taskset_find(ts, iri);
    free(iri);
    kgm_taskset_free(ts);
    return i;
}

int sh_task_examples(kgm_shell *sh, const char *name, size_t k, size_t q, sh_examples *out)
{
    char *iri = kgm_store_expand(sh->store, name);
    if (!iri) return KGM_EINVAL;
    kgm_taskset *ts;
    int rc = read_tasks(sh, &ts);
    if (rc) { free(iri); return rc; }
    long i = kgm_taskset_find(ts, iri);
    if (i < 0) rc = kgm_fail(KGM_ENOTFOUND, "no task %s in the store (tasks lists them)", name);
    kgm_examples ex = { 0 };
    if (!rc) rc = kgm_task_examples(&ts->tasks[i], sh->seed, k, q, &ex);
    if (!rc) {
        out->n_support = ex.n_support;
        out->n_query = ex.n_query;
        out->dim = ex.dim;
        out->x = ex.x;
        out->y = ex.y;
        out->cond = NULL;
        out->cond_dim = 0;
    }
    free(iri);
    kgm_taskset_free(ts);
    return rc;
}

int sh_role_examples(kgm_shell *sh, int role, size_t k, size_t q, sh_examples **out, char ***names, size_t *n)
{
    kgm_taskset *ts;
    int rc = read_tasks(sh, &ts);
    if (rc) return rc;
    size_t m = 0;
    for (size_t i = 0; i < ts->n; i++) m += (int)ts->tasks[i].role == role;
    *out = calloc(m ? m : 1, sizeof **out);
    *names = calloc(m ? m : 1, sizeof **names);
    *n = 0;
    if (!*out || !*names) rc = kgm_fail(KGM_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < ts->n; i++) {
        if ((int)ts->tasks[i].role != role) continue;
        kgm_examples ex = { 0 };
        rc = kgm_task_examples(&ts->tasks[i], sh->seed, k, q, &ex);
        if (!rc && !((*names)[*n] = strdup(ts->tasks[i].iri))) {
            kgm_examples_free(&ex);
            rc = kgm_fail(KGM_ENOMEM, "out of memory");
        }
        if (!rc) (*out)[(*n)++] = (sh_examples){ ex.n_support, ex.n_query, ex.dim, ex.x, ex.y, NULL, 0 };
    }
    kgm_taskset_free(ts);
    if (rc) {
        for (size_t i = 0; i < *n; i++) { free((*out)[i].x); free((*out)[i].y); free((*names)[i]); }
        free(*out); free(*names);
        *out = NULL; *names = NULL; *n = 0;
    }
    return rc;
}
