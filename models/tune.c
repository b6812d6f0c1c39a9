/* models/tune.c - see tune.h. */
#include "tune.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/error.h"
#include "../src/interrupt.h"
#include "../src/progress.h"

#define KGM_NS "http://kgmeta.org/ns#"
#define MLS_NS "http://www.w3.org/ns/mls#"
#define RDF_TYPE "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
#define XSD_NS "http://www.w3.org/2001/XMLSchema#"

/* ---- the hyperparameters a space may name ---- */

typedef enum { HP_ALPHA, HP_STEPS, HP_OUTER_LR, HP_META_BATCH, HP_LEARNER } hp_field;

static const struct hp {
    const char *name;
    const char *iri_local;          /* the mls:HyperParameter in kgm: */
    hp_field field;
    kgm_param_kind kind;
} HPS[] = {
    { "alpha",       "InnerLearningRate", HP_ALPHA,      KGM_PARAM_REAL },
    { "steps",       "InnerSteps",        HP_STEPS,      KGM_PARAM_INT },
    { "inner_steps", "InnerSteps",        HP_STEPS,      KGM_PARAM_INT },
    { "outer_lr",    "OuterLearningRate", HP_OUTER_LR,   KGM_PARAM_REAL },
    { "meta_batch",  "MetaBatch",         HP_META_BATCH, KGM_PARAM_INT },
    { "learner",     "Learner",           HP_LEARNER,    KGM_PARAM_CAT },
};
#define N_HPS ((int)(sizeof HPS / sizeof HPS[0]))

static const struct hp *hp_find(const char *name)
{
    for (int i = 0; i < N_HPS; i++)
        if (strcmp(HPS[i].name, name) == 0) return &HPS[i];
    return NULL;
}

/* ---- parsing the space ---- */

#define SPACE_FORM "expected NAME=LO..HI[:log|:int] or NAME=A|B|..."

static int parse_number(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return end != s && *end == '\0' && errno == 0 && isfinite(*v);
}

/* Prefixes the space's own error with the item (copied: kgm_fail overwrites the record). */
static int space_error(int rc, const char *item)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s", kgm_error());
    return kgm_fail(rc, "tune space: '%s': %s", item, msg);
}

static int add_range(kgm_space *sp, const struct hp *hp, const char *item, char *body)
{
    const char *suffix = "";
    char *colon = strchr(body, ':');
    if (colon) { *colon = '\0'; suffix = colon + 1; }
    int is_log = strcmp(suffix, "log") == 0, is_int = strcmp(suffix, "int") == 0;
    if (*suffix && !is_log && !is_int)
        return kgm_fail(KGM_EINVAL, "tune space: '%s': unknown suffix ':%s' (:log or :int)", item, suffix);
    char *dots = strstr(body, "..");
    if (!dots) return kgm_fail(KGM_EINVAL, "tune space: '%s': %s", item, SPACE_FORM);
    *dots = '\0';
    double lo, hi;
    if (!parse_number(body, &lo))
        return kgm_fail(KGM_EINVAL, "tune space: '%s': bad lower bound '%s'", item, body);
    if (!parse_number(dots + 2, &hi))
        return kgm_fail(KGM_EINVAL, "tune space: '%s': bad upper bound '%s'", item, dots + 2);
    kgm_param_kind kind = is_int ? KGM_PARAM_INT : KGM_PARAM_REAL;
    if (kind != hp->kind)
        return kgm_fail(KGM_EINVAL, "tune space: '%s': %s takes %s", item, hp->name,
                        hp->kind == KGM_PARAM_INT ? "integers (LO..HI:int)" :
                        hp->kind == KGM_PARAM_REAL ? "reals (LO..HI or LO..HI:log)" : "labels (A|B|...)");
    if (is_int) {
        if (lo != floor(lo) || hi != floor(hi))
            return kgm_fail(KGM_EINVAL, "tune space: '%s': integer bounds expected", item);
        if (lo < 1) return kgm_fail(KGM_EINVAL, "tune space: '%s': %s must be >= 1", item, hp->name);
    }
    if (is_log && lo <= 0) return kgm_fail(KGM_EINVAL, "tune space: '%s': log scale needs LO > 0", item);
    if (!(lo < hi)) return kgm_fail(KGM_EINVAL, "tune space: '%s': empty range (LO must be < HI)", item);
    int rc = is_int ? kgm_space_add_int(sp, hp->name, (long)lo, (long)hi)
                    : kgm_space_add_real(sp, hp->name, lo, hi, is_log);
    return rc ? space_error(rc, item) : 0;
}

static int add_labels(kgm_space *sp, const struct hp *hp, const char *item, char *body)
{
    if (hp->kind != KGM_PARAM_CAT)
        return kgm_fail(KGM_EINVAL, "tune space: '%s': %s takes a range LO..HI", item, hp->name);
    const char *labels[KGM_LEARNER_COUNT + 1];
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(body, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
        kgm_learner k;
        if (kgm_learner_parse(tok, &k) != 0)
            return kgm_fail(KGM_EINVAL, "tune space: '%s': unknown learner '%s'", item, tok);
        if (n == KGM_LEARNER_COUNT)
            return kgm_fail(KGM_EINVAL, "tune space: '%s': a learner is repeated", item);
        labels[n++] = tok;
    }
    if (n < 2) return kgm_fail(KGM_EINVAL, "tune space: '%s': at least two labels A|B", item);
    int rc = kgm_space_add_cat(sp, hp->name, n, labels);
    return rc ? space_error(rc, item) : 0;
}

static int add_item(kgm_space *sp, const char *item)
{
    char buf[256];
    if (strlen(item) >= sizeof buf) return kgm_fail(KGM_EINVAL, "tune space: '%.40s...': too long", item);
    strcpy(buf, item);
    char *eq = strchr(buf, '=');
    if (!eq || eq == buf || !eq[1]) return kgm_fail(KGM_EINVAL, "tune space: '%s': %s", item, SPACE_FORM);
    *eq = '\0';
    const struct hp *hp = hp_find(buf);
    if (!hp)
        return kgm_fail(KGM_EINVAL, "tune space: '%s': unknown hyperparameter '%s' "
                        "(alpha, steps, outer_lr, meta_batch, learner)", item, buf);
    for (int j = 0; j < kgm_space_size(sp); j++) {
        const struct hp *other = hp_find(kgm_space_name(sp, j));
        if (other->field == hp->field)
            return kgm_fail(KGM_EINVAL, "tune space: '%s': %s is given twice", item, hp->name);
    }
    char *body = eq + 1;
    return strstr(body, "..") ? add_range(sp, hp, item, body) : add_labels(sp, hp, item, body);
}

int kgm_tune_space_parse(const char *text, kgm_space **out)
{
    if (!text) return kgm_fail(KGM_EINVAL, "tune space: no text");
    kgm_space *sp = kgm_space_new();
    if (!sp) return kgm_fail(KGM_ENOMEM, "tune space: out of memory");
    int rc = 0;
    const char *p = text;
    while (rc == 0) {
        while (isspace((unsigned char)*p)) p++;
        if (!*p) break;
        size_t len = strcspn(p, " \t\r\n");
        char item[257];
        snprintf(item, sizeof item, "%.*s", (int)(len < 256 ? len : 256), p);
        rc = add_item(sp, item);
        p += len;
    }
    if (rc == 0 && kgm_space_size(sp) == 0) rc = kgm_fail(KGM_EINVAL, "tune space: empty (%s)", SPACE_FORM);
    if (rc) { kgm_space_free(sp); return rc; }
    *out = sp;
    return 0;
}

int kgm_tune_apply(const kgm_space *space, const double *point, kgm_meta_config *cfg)
{
    int rc = kgm_space_check(space, point);
    if (rc) return rc;
    kgm_meta_config c = *cfg;
    for (int j = 0; j < kgm_space_size(space); j++) {
        const struct hp *hp = hp_find(kgm_space_name(space, j));
        if (!hp) return kgm_fail(KGM_EINVAL, "tune: '%s' is not a meta-learning hyperparameter",
                                 kgm_space_name(space, j));
        switch (hp->field) {
        case HP_ALPHA:      c.alpha = (float)point[j]; break;
        case HP_STEPS:      c.inner_steps = (int)point[j]; break;
        case HP_OUTER_LR:   c.outer_lr = (float)point[j]; break;
        case HP_META_BATCH: c.meta_batch = (int)point[j]; break;
        case HP_LEARNER:    kgm_learner_parse(kgm_space_label(space, j, (int)point[j]), &c.learner); break;
        }
    }
    *cfg = c;
    return 0;
}

/* ---- the objective ---- */

static int meta_objective(const kgm_tune_config *tc, const kgm_meta_config *mc, double *score)
{
    if (!tc->net || !tc->train || !tc->val)
        return kgm_fail(KGM_EINVAL, "tune: the meta-learning objective needs net, train and val");
    int ms = tc->eval.max_steps;
    double *mean = malloc(sizeof(double) * (size_t)(ms + 1) * 2);
    if (!mean) return kgm_fail(KGM_ENOMEM, "tune: out of memory");
    kgm_meta *mt = NULL;
    int rc = kgm_meta_new(&mt, tc->net, mc, NULL, 0);
    if (rc == 0) rc = kgm_meta_train(mt, tc->train, NULL);
    if (rc == 0) rc = kgm_meta_evaluate(mt, tc->val, &tc->eval, mean, mean + ms + 1);
    if (rc == 0) *score = mean[ms];
    if (rc == KGM_ENUMERIC) { *score = NAN; rc = 0; }   /* diverged: a failed trial */
    if (rc == 0 && !isfinite(*score)) *score = NAN;
    kgm_meta_free(mt);
    free(mean);
    return rc;
}

static int evaluate(const kgm_tune_config *tc, const kgm_space *sp, const double *point, double *score)
{
    kgm_meta_config mc = tc->base;
    mc.iterations = tc->budget;
    int rc = kgm_tune_apply(sp, point, &mc);
    if (rc) return rc;
    return tc->objective ? tc->objective(&mc, tc->objective_ctx, score) : meta_objective(tc, &mc, score);
}

/* ---- recording ---- */

/* Appends printf output to a growing buffer; returns 0 or KGM_ENOMEM. */
typedef struct { char *s; size_t len, cap; } buf;

static int bprintf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bprintf(buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return kgm_fail(KGM_EINVAL, "tune: formatting failed");
        if (b->s && b->len + (size_t)n < b->cap) { b->len += (size_t)n; return 0; }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) return kgm_fail(KGM_ENOMEM, "tune: out of memory");
        b->s = s;
        b->cap = cap;
    }
}

/* An N-Triples string literal body (quotes and backslashes escaped). */
static int b_literal(buf *b, const char *text)
{
    int rc = bprintf(b, "\"");
    for (const char *p = text; rc == 0 && *p; p++)
        rc = (*p == '"' || *p == '\\') ? bprintf(b, "\\%c", *p)
           : (*p == '\n') ? bprintf(b, "\\n") : bprintf(b, "%c", *p);
    return rc ? rc : bprintf(b, "\"");
}

static int check_iri(const char *iri)
{
    if (!iri || !*iri) return kgm_fail(KGM_EINVAL, "tune: no search IRI");
    for (const char *p = iri; *p; p++)
        if (strchr("<>\"{}|^`\\ \t\n", *p))
            return kgm_fail(KGM_EINVAL, "tune: search IRI '%s' has a character not allowed in an IRI", iri);
    return 0;
}

static const char *xsd_double(double v, char out[32])
{
    if (isnan(v)) return "NaN";
    if (isinf(v)) return v > 0 ? "INF" : "-INF";
    snprintf(out, 32, "%.17g", v);
    return out;
}

static int record_search(kgm_store *st, const kgm_tune_config *tc, const char *space_text)
{
    buf b = { 0 };
    int rc = bprintf(&b, "<%s> <" RDF_TYPE "> <" KGM_NS "TuningSearch> .\n<%s> <" KGM_NS "searchSpace> ",
                     tc->search, tc->search);
    if (rc == 0) rc = b_literal(&b, space_text);
    if (rc == 0) rc = bprintf(&b, " .\n<%s> <" KGM_NS "seed> \"%llu\"^^<" XSD_NS "integer> .\n"
                              "<%s> <" KGM_NS "budget> \"%d\"^^<" XSD_NS "integer> .\n",
                              tc->search, (unsigned long long)tc->seed, tc->search, tc->budget);
    if (rc == 0) rc = kgm_store_load_string(st, b.s, "ntriples", NULL, NULL);
    free(b.s);
    return rc;
}

static int record_trial(kgm_store *st, const char *search, const kgm_space *sp, int index,
                        const double *point, double score)
{
    char num[32];
    buf b = { 0 };
    int rc = bprintf(&b, "<%s/trial/%d> <" RDF_TYPE "> <" MLS_NS "Run> .\n"
                     "<%s/trial/%d> <" KGM_NS "partOfSearch> <%s> .\n"
                     "<%s/trial/%d> <" KGM_NS "trialIndex> \"%d\"^^<" XSD_NS "integer> .\n"
                     "<%s/trial/%d> <" KGM_NS "score> \"%s\"^^<" XSD_NS "double> .\n",
                     search, index, search, index, search, search, index, index,
                     search, index, xsd_double(score, num));
    for (int j = 0; rc == 0 && j < kgm_space_size(sp); j++) {
        const char *name = kgm_space_name(sp, j);
        const struct hp *hp = hp_find(name);
        rc = bprintf(&b, "<%s/trial/%d> <" MLS_NS "hasInput> <%s/trial/%d/%s> .\n"
                     "<%s/trial/%d/%s> <" RDF_TYPE "> <" MLS_NS "HyperParameterSetting> .\n"
                     "<%s/trial/%d/%s> <" MLS_NS "specifiedBy> <" KGM_NS "%s> .\n"
                     "<%s/trial/%d/%s> <" MLS_NS "hasValue> ",
                     search, index, search, index, name, search, index, name,
                     search, index, name, hp->iri_local, search, index, name);
        if (rc) break;
        switch (kgm_space_kind(sp, j)) {
        case KGM_PARAM_REAL: rc = bprintf(&b, "\"%s\"^^<" XSD_NS "double> .\n", xsd_double(point[j], num)); break;
        case KGM_PARAM_INT:  rc = bprintf(&b, "\"%ld\"^^<" XSD_NS "integer> .\n", (long)point[j]); break;
        case KGM_PARAM_CAT:
            rc = b_literal(&b, kgm_space_label(sp, j, (int)point[j]));
            if (rc == 0) rc = bprintf(&b, " .\n");
            break;
        }
    }
    if (rc == 0) rc = kgm_store_load_string(st, b.s, "ntriples", NULL, NULL);
    free(b.s);
    return rc;
}

/* ---- reading a search back ---- */

static int query(kgm_store *st, const char *fmt, const char *search, kgm_table **out)
{
    buf b = { 0 };
    int rc = bprintf(&b, fmt, search);
    if (rc == 0) rc = kgm_store_query(st, b.s, NULL, out);
    free(b.s);
    return rc;
}

static const char *cell(const kgm_table *t, size_t row, size_t col)
{
    const kgm_cell *c = kgm_table_cell(t, row, col);
    return c->kind == KGM_CELL_NULL ? NULL : c->value;
}

/* The search's space text and seed. */
static int read_search(kgm_store *st, const char *search, kgm_space **space, uint64_t *seed)
{
    kgm_table *t = NULL;
    int rc = query(st, "SELECT ?space ?seed WHERE { <%s> <" KGM_NS "searchSpace> ?space ; <"
                   KGM_NS "seed> ?seed . }", search, &t);
    if (rc) return rc;
    if (t->n_rows != 1) rc = kgm_fail(t->n_rows ? KGM_EFORMAT : KGM_ENOTFOUND,
                                      "tune: search <%s> %s", search,
                                      t->n_rows ? "has more than one space or seed" : "is not in the store");
    if (rc == 0) rc = kgm_tune_space_parse(cell(t, 0, 0), space);
    if (rc == 0) *seed = strtoull(cell(t, 0, 1), NULL, 10);
    kgm_table_free(t);
    return rc;
}

/* One value as a point coordinate: the number, or the category's index. */
static int read_value(const kgm_space *sp, int j, const char *text, double *v)
{
    if (kgm_space_kind(sp, j) == KGM_PARAM_CAT) {
        int k = kgm_space_label_index(sp, j, text);
        if (k < 0) return kgm_fail(KGM_EFORMAT, "tune: recorded %s '%s' is not in the space", kgm_space_name(sp, j), text);
        *v = k;
        return 0;
    }
    char *end;
    *v = strtod(text, &end);
    return *end ? kgm_fail(KGM_EFORMAT, "tune: recorded %s '%s' is not a number", kgm_space_name(sp, j), text) : 0;
}

/* The space parameter that the hyperparameter IRI specifies, or -1. */
static int space_index_of(const kgm_space *sp, const char *iri)
{
    size_t ns = strlen(KGM_NS);
    if (!iri || strncmp(iri, KGM_NS, ns) != 0) return -1;
    for (int j = 0; j < kgm_space_size(sp); j++)
        if (strcmp(hp_find(kgm_space_name(sp, j))->iri_local, iri + ns) == 0) return j;
    return -1;
}

/* The recorded trials in index order: points (n, dim) and scores (n), new arrays. They must
 * be indexed 0..n-1 and each carry one value per parameter. */
static int read_trials(kgm_store *st, const char *search, const kgm_space *sp,
                       double **points, double **scores, int *n_out)
{
    kgm_table *t = NULL;
    int rc = query(st, "SELECT ?i ?score ?name ?v WHERE { ?run <" KGM_NS "partOfSearch> <%s> ; <"
                   KGM_NS "trialIndex> ?i ; <" KGM_NS "score> ?score ; <" MLS_NS "hasInput> ?h . ?h <"
                   MLS_NS "specifiedBy> ?name ; <" MLS_NS "hasValue> ?v . }",
                   search, &t);
    if (rc) return rc;
    int dim = kgm_space_size(sp), n = 0;
    for (size_t r = 0; r < t->n_rows; r++) {
        int i = atoi(cell(t, r, 0));
        if (i + 1 > n) n = i + 1;
    }
    double *pts = malloc(sizeof(double) * (size_t)(n * dim + 1));
    double *sc = malloc(sizeof(double) * (size_t)(n + 1));
    char *seen = calloc((size_t)(n * dim + 1), 1);
    if (!pts || !sc || !seen) rc = kgm_fail(KGM_ENOMEM, "tune: out of memory");
    for (size_t r = 0; rc == 0 && r < t->n_rows; r++) {
        int i = atoi(cell(t, r, 0)), j = space_index_of(sp, cell(t, r, 2));
        if (i < 0 || j < 0) { rc = kgm_fail(KGM_EFORMAT, "tune: trial %d of <%s> has a setting outside the space", i, search); break; }
        sc[i] = strtod(cell(t, r, 1), NULL);
        rc = read_value(sp, j, cell(t, r, 3), &pts[i * dim + j]);
        seen[i * dim + j] = 1;
    }
    for (int k = 0; rc == 0 && k < n * dim; k++)
        if (!seen[k]) rc = kgm_fail(KGM_EFORMAT, "tune: trial %d of <%s> is missing or incomplete", k / dim, search);
    kgm_table_free(t);
    free(seen);
    if (rc) { free(pts); free(sc); return rc; }
    *points = pts; *scores = sc; *n_out = n;
    return 0;
}

/* ---- the search loop ---- */

static int search_loop(kgm_store *st, const kgm_tune_config *tc, kgm_bo *bo, int n_trials)
{
    const kgm_space *sp = kgm_bo_space(bo);
    double *point = malloc(sizeof(double) * (size_t)kgm_space_size(sp));
    if (!point) return kgm_fail(KGM_ENOMEM, "tune: out of memory");
    int rc = 0;
    while (rc == 0 && kgm_bo_n_trials(bo) < n_trials) {
        if (kgm_interrupted()) { rc = kgm_fail(KGM_EINTR, "tune: interrupted"); break; }
        int i = kgm_bo_n_trials(bo), best = kgm_bo_best(bo);
        kgm_progress("tune: trial %d/%d, best %.4g", i + 1, n_trials,
                     best >= 0 ? kgm_bo_get_trial(bo, best).score : NAN);
        double score;
        rc = kgm_bo_suggest(bo, point);
        if (rc == 0) rc = evaluate(tc, sp, point, &score);
        if (rc == 0 && kgm_interrupted())   /* a trial interrupted mid-way is not recorded */
            rc = kgm_fail(KGM_EINTR, "tune: interrupted during trial %d (not recorded)", i + 1);
        if (rc == 0) rc = record_trial(st, tc->search, sp, i, point, score);
        if (rc == 0) rc = kgm_bo_observe(bo, point, score);
    }
    kgm_progress_done();
    free(point);
    return rc;
}

static int check_config(const kgm_tune_config *tc, int n_trials)
{
    int rc = check_iri(tc->search);
    if (rc) return rc;
    if (tc->budget < 1) return kgm_fail(KGM_EINVAL, "tune: budget must be >= 1 iteration");
    if (n_trials < 0) return kgm_fail(KGM_EINVAL, "tune: negative number of trials");
    return 0;
}

int kgm_tune_run(kgm_store *st, const kgm_tune_config *tc, const char *space_text, int n_trials)
{
    int rc = check_config(tc, n_trials);
    kgm_space *sp = NULL;
    if (rc == 0) rc = kgm_tune_space_parse(space_text, &sp);
    if (rc) return rc;
    kgm_table *t = NULL;
    rc = query(st, "ASK { <%s> ?p ?o }", tc->search, &t);
    if (rc == 0 && strcmp(cell(t, 0, 0), "true") == 0)
        rc = kgm_fail(KGM_ESTATE, "tune: search <%s> exists already (resume it, or name a new one)", tc->search);
    kgm_table_free(t);
    if (rc) { kgm_space_free(sp); return rc; }
    kgm_bo *bo = NULL;
    rc = kgm_bo_new(&bo, sp, tc->seed);
    if (rc == 0) rc = record_search(st, tc, space_text);
    if (rc == 0) rc = search_loop(st, tc, bo, n_trials);
    kgm_bo_free(bo);
    return rc;
}

int kgm_tune_resume(kgm_store *st, const kgm_tune_config *tc, int n_trials)
{
    int rc = check_config(tc, n_trials);
    kgm_space *sp = NULL;
    uint64_t seed = 0;
    if (rc == 0) rc = read_search(st, tc->search, &sp, &seed);
    if (rc) return rc;
    double *points = NULL, *scores = NULL;
    int n = 0;
    rc = read_trials(st, tc->search, sp, &points, &scores, &n);
    kgm_bo *bo = NULL;
    if (rc == 0) rc = kgm_bo_new(&bo, sp, seed);
    else kgm_space_free(sp);
    for (int i = 0; rc == 0 && i < n; i++) rc = kgm_bo_observe(bo, points + (size_t)i * kgm_space_size(sp), scores[i]);
    if (rc == 0) rc = search_loop(st, tc, bo, n_trials);
    kgm_bo_free(bo);
    free(points);
    free(scores);
    return rc;
}

int kgm_tune_adopt(kgm_store *st, const char *search, kgm_meta_config *cfg, double *score, int *index)
{
    int rc = check_iri(search);
    kgm_space *sp = NULL;
    uint64_t seed;
    if (rc == 0) rc = read_search(st, search, &sp, &seed);
    if (rc) return rc;
    double *points = NULL, *scores = NULL;
    int n = 0, best = -1;
    rc = read_trials(st, search, sp, &points, &scores, &n);
    for (int i = 0; rc == 0 && i < n; i++)
        if (isfinite(scores[i]) && (best < 0 || scores[i] < scores[best])) best = i;
    if (rc == 0 && best < 0) rc = kgm_fail(KGM_ENOTFOUND, "tune: search <%s> has no successful trial", search);
    if (rc == 0) rc = kgm_tune_apply(sp, points + (size_t)best * kgm_space_size(sp), cfg);
    if (rc == 0 && score) *score = scores[best];
    if (rc == 0 && index) *index = best;
    kgm_space_free(sp);
    free(points);
    free(scores);
    return rc;
}
