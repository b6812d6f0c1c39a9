/* shell/cmd_store.c - the store commands: open, load, query, add, remove, export,
 * prefix(es), count and compact, and the store's part of tab completion (prefix names,
 * task names). Each handler is a thin call into kg/store.h; the store keeps changes
 * all-or-nothing, so a failed command leaves the graph as it was. */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "error.h"
#include "store.h"

static const char *TASK_QUERY =
    "SELECT ?t WHERE { ?t a <http://www.w3.org/ns/mls#Task> } ORDER BY ?t";

/* 1 when the open store lives in dir: it must be closed before it can be reopened,
 * because a store directory admits one owner at a time. */
static int is_open_here(const kgm_shell *sh, const char *dir)
{
    const char *cur = sh->store ? kgm_store_dir(sh->store) : NULL;
    if (!cur || !dir) return 0;
    char *a = realpath(cur, NULL), *b = realpath(dir, NULL);
    int same = a && b && !strcmp(a, b);
    free(a);
    free(b);
    return same;
}

int sh_store_open(kgm_shell *sh, const char *dir)
{
    kgm_store *s;
    int same = is_open_here(sh, dir);   /* reopened: the records the session points at are there */
    if (same) sh_store_close(sh);
    int rc = kgm_store_open(&s, dir);
    if (rc != 0) {
        if (!sh->store) {   /* the previous store stays open, or a scratch one replaces it */
            if (kgm_store_open(&sh->store, NULL) != 0) sh->store = NULL;
            sh_learn_store_changed(sh);
        }
        return rc;
    }
    sh_embed_detach(sh);
    if (!same) sh_learn_store_changed(sh);
    kgm_store_free(sh->store);
    sh->store = s;
    return 0;
}

/* Multi-line input: a query is complete when kgm_query_complete() says its braces and
 * quotes are balanced and it has its group pattern already (DESCRIBE may have none),
 * so `query SELECT ?t` on its own line waits for the WHERE { ... } that follows. */
int sh_query_complete(const char *raw)
{
    return kgm_query_complete(raw) && (strchr(raw, '{') || strcasestr(raw, "DESCRIBE"));
}

/* export's raw part is [turtle|ntriples] [query]: only a query spans lines. */
int sh_export_complete(const char *raw)
{
    size_t n = strcspn(raw, " \t\n");
    if ((n == 6 && !strncmp(raw, "turtle", 6)) || (n == 8 && !strncmp(raw, "ntriples", 8)))
        raw += n + strspn(raw + n, " \t\n");
    if (!*raw || (!strcasestr(raw, "CONSTRUCT") && !strcasestr(raw, "DESCRIBE"))) return 1;
    return sh_query_complete(raw);
}

void sh_store_close(kgm_shell *sh)
{
    sh_embed_detach(sh);
    kgm_store_free(sh->store);
    sh->store = NULL;
}

int cmd_open(kgm_shell *sh, kgm_shell_args *a)
{
    const char *dir = kgm_shell_unquote(a->argv[0]);
    if (sh_store_open(sh, dir) != 0) return 1;
    size_t replayed, dropped;
    kgm_store_open_report(sh->store, &replayed, &dropped);
    fprintf(sh->out, "opened %s: %zu triples", dir, kgm_store_size(sh->store));
    if (replayed) fprintf(sh->out, ", %zu journal changes replayed", replayed);
    fputc('\n', sh->out);
    if (dropped)
        fprintf(sh->err, "warning: %s: dropped a damaged journal tail of %zu bytes\n", dir, dropped);
    return 0;
}

int cmd_load(kgm_shell *sh, kgm_shell_args *a)
{
    const char *path = kgm_shell_unquote(a->argv[0]);
    const char *syntax = a->argc > 1 ? a->argv[1] : NULL;
    size_t added = 0;
    double seconds = 0;
    if (kgm_store_load(sh->store, path, syntax, sh_opt(a, "base"), &added, &seconds) != 0)
        return 1;
    fprintf(sh->out, "loaded %zu triples from %s\n", added, path);
    return 0;
}

int cmd_query(kgm_shell *sh, kgm_shell_args *a)
{
    kgm_query_kind kind;
    kgm_table *t = NULL;
    if (kgm_store_query(sh->store, a->argv[0], &kind, &t) != 0) return 1;
    int rc = sh_print_table(sh, t);
    kgm_table_free(t);
    return rc ? 1 : 0;
}

int cmd_add(kgm_shell *sh, kgm_shell_args *a)
{
    return kgm_store_add(sh->store, a->argv[0], a->argv[1], a->argv[2]) ? 1 : 0;
}

int cmd_remove(kgm_shell *sh, kgm_shell_args *a)
{
    return kgm_store_remove(sh->store, a->argv[0], a->argv[1], a->argv[2]) ? 1 : 0;
}

/* export FILE [turtle|ntriples] [CONSTRUCT-query]: the second argument is raw, so the
 * syntax word, when present, is split off its front here. */
int cmd_export(kgm_shell *sh, kgm_shell_args *a)
{
    const char *path = kgm_shell_unquote(a->argv[0]);
    const char *syntax = "turtle";
    char *rest = a->argc > 1 ? a->argv[1] : NULL;
    if (rest) {
        size_t n = strcspn(rest, " \t\n");
        if ((n == 6 && !strncmp(rest, "turtle", 6)) || (n == 8 && !strncmp(rest, "ntriples", 8))) {
            syntax = n == 6 ? "turtle" : "ntriples";
            rest += n;
            rest += strspn(rest, " \t\n");
        } else if (!strcasestr(rest, "CONSTRUCT") && !strcasestr(rest, "DESCRIBE")) {
            kgm_fail(KGM_EINVAL, "export: expected turtle, ntriples or a CONSTRUCT query, got '%.*s'",
                     (int)(n > 40 ? 40 : n), rest);
            return 1;
        }
        if (!*rest) rest = NULL;
    }
    if (kgm_store_export(sh->store, path, syntax, rest) != 0) return 1;
    fprintf(sh->out, "exported to %s (%s)\n", path, syntax);
    return 0;
}

int cmd_prefix(kgm_shell *sh, kgm_shell_args *a)
{
    char *name = a->argv[0], *iri = a->argv[1];
    size_t n = strlen(name);
    if (n && name[n - 1] == ':') name[n - 1] = '\0';       /* `prefix ex: <...>` too */
    n = strlen(iri);
    if (n >= 2 && iri[0] == '<' && iri[n - 1] == '>') { iri[n - 1] = '\0'; iri++; }
    return kgm_store_set_prefix(sh->store, name, iri) ? 1 : 0;
}

int cmd_prefixes(kgm_shell *sh, kgm_shell_args *a)
{
    (void)a;
    size_t n;
    const kgm_prefix *px = kgm_store_prefixes(sh->store, &n);
    const char *names[] = { "prefix", "namespace" };
    kgm_table *t = kgm_table_new(2, names);
    if (!t) return kgm_fail(KGM_ENOMEM, "out of memory"), 1;
    for (size_t i = 0; i < n; i++) {
        long r = kgm_table_add_row(t);
        if (r < 0) break;
        kgm_table_set_text(t, (size_t)r, 0, px[i].prefix);
        kgm_table_set_text(t, (size_t)r, 1, px[i].ns);
    }
    int rc = sh_print_table(sh, t);
    kgm_table_free(t);
    return rc ? 1 : 0;
}

int cmd_count(kgm_shell *sh, kgm_shell_args *a)
{
    (void)a;
    const char *names[] = { "triples" };
    kgm_table *t = kgm_table_new(1, names);
    if (!t || kgm_table_add_row(t) < 0) { kgm_table_free(t); return kgm_fail(KGM_ENOMEM, "out of memory"), 1; }
    kgm_table_set_number(t, 0, 0, (double)kgm_store_size(sh->store));
    int rc = sh_print_table(sh, t);
    kgm_table_free(t);
    return rc ? 1 : 0;
}

int cmd_compact(kgm_shell *sh, kgm_shell_args *a)
{
    (void)a;
    if (!kgm_store_dir(sh->store)) {
        kgm_fail(KGM_ESTATE, "compact: the scratch store has no journal (open DIR first)");
        return 1;
    }
    return kgm_store_compact(sh->store) ? 1 : 0;
}

/* ---- completion ---- */

void sh_store_candidates(kgm_shell *sh, const char *text,
                         void (*add)(void *ctx, const char *cand), void *ctx)
{
    if (!sh->store) return;
    size_t n_px, len = strlen(text);
    const kgm_prefix *px = kgm_store_prefixes(sh->store, &n_px);
    char buf[256];
    for (size_t i = 0; i < n_px; i++) {
        snprintf(buf, sizeof buf, "%s:", px[i].prefix);
        if (!strncmp(buf, text, len)) add(ctx, buf);
    }
    kgm_query_kind kind;
    kgm_table *t = NULL;
    if (kgm_store_query(sh->store, TASK_QUERY, &kind, &t) != 0) { kgm_error_clear(); return; }
    for (size_t r = 0; r < t->n_rows; r++) {
        const kgm_cell *c = kgm_table_cell(t, r, 0);
        if (c->kind != KGM_CELL_IRI) continue;
        char *short_name = kgm_prefix_abbrev(c->value, px, n_px);
        if (short_name && !strncmp(short_name, text, len)) add(ctx, short_name);
        else if (!short_name && text[0] == '<') {
            snprintf(buf, sizeof buf, "<%s>", c->value);
            if (!strncmp(buf, text, len)) add(ctx, buf);
        }
        free(short_name);
    }
    kgm_table_free(t);
}
