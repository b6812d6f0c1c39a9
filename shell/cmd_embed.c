/* shell/cmd_embed.c - `embed`: knowledge-graph embeddings of the open store (kg/embed.h).
 * embed train [model= dim= epochs= lr= neg= loss=margin|softplus|1vsall|kvsall edrop= rdrop= dside=0|1 recip=0|1 logq=0|1 subsample=0|1 ls= decay= rdecay= init= init_lo=] | eval | save FILE | load FILE | neighbours ENTITY [with=PROPERTY,..] | score S P O.
 *
 * The session keeps one embedding with the graph it was trained on (the integer view that
 * maps names to rows). By default that graph is the store's descriptive graph (no data
 * plumbing, kgm_tasks_descriptive_from_store); graph=all takes every triple. An embedding
 * file holds vectors only, so `embed load` pairs it with the store's graph extracted now
 * and refuses it when the entity or relation counts differ. With loss=1vsall, neg= is the
 * number of sampled candidates per batch (kg/embed.h); without it every entity is scored;
 * edrop= and rdrop= are its dropout rates of entity and relation rows, and recip=1 gives it
 * reciprocal relations (head queries asked as (t, r^-1, ?), in training and in embed eval;
 * embed score stays the forward score); logq=1 corrects the sampled candidates' softmax for
 * their chances of being drawn (needs neg=). loss=kvsall asks each distinct query once against
 * all its answers (every entity scored, no neg=), ls= its label smoothing in 0..0.99; edrop=,
 * rdrop= and recip=1 work with it as with 1vsall. dside=1 draws the candidates' dropout mask
 * afresh for each side of a batch (needs edrop=). decay= / rdecay= add that multiple of every
 * entity / relation row to each step's gradient (1vsall or kvsall scoring every entity).
 * init= is the initial values' half-range (0: the model's default), init_lo=A < 0 draws them
 * from [A, init) instead. subsample=1 (sampled negatives) weights each triple by 1 / sqrt of
 * how many share its head and relation plus its tail and relation. holdout=F (up to 0.5) leaves
 * a seeded fraction of the triples out of training; embed eval then ranks them apart from the
 * trained ones (an embedding file does not keep the split). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "embed.h"
#include "error.h"
#include "rng.h"
#include "store.h"
#include "tasks.h"

struct sh_embed {
    kgm_emb *emb;
    kgm_graph *g;          /* the graph named: every triple, held out or not */
    kgm_triple *held;      /* holdout=: the triples training never saw, sorted (n_held); or NULL */
    size_t n_held;
};

void sh_embed_free(kgm_shell *sh)
{
    if (!sh->embed) return;
    kgm_emb_free(sh->embed->emb);
    kgm_graph_free(sh->embed->g);
    free(sh->embed->held);
    free(sh->embed);
    sh->embed = NULL;
}

static int extract(kgm_shell *sh, const kgm_shell_args *a, kgm_graph **g)
{
    const char *v = sh_opt(a, "graph");
    if (v && strcmp(v, "all") && strcmp(v, "descriptive"))
        return kgm_fail(KGM_EINVAL, "graph: expected descriptive or all, got '%s'", v);
    int rc = v && !strcmp(v, "all") ? kgm_store_view(sh->store, g)
                                    : kgm_tasks_descriptive_from_store(sh->store, g);
    if (!rc && kgm_graph_n_triples(*g) == 0) {
        kgm_graph_free(*g);
        rc = kgm_fail(KGM_EINVAL, "embed: the %s graph has no triples between entities",
                      v && !strcmp(v, "all") ? "store's" : "descriptive");
    }
    return rc;
}

static int num_opt(const kgm_shell_args *a, const char *name, double lo, double hi, int whole, double *out)
{
    const char *v = sh_opt(a, name);
    if (!v) return 0;
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !(x >= lo && x <= hi) || (whole && x != floor(x)))
        return kgm_fail(KGM_EINVAL, "%s: expected a%s number in %g..%g, got '%s'", name,
                        whole ? " whole" : "", lo, hi, v);
    *out = x;
    return 0;
}

/* name=one of names[0..n) into *out (untouched when the key is absent). */
static int word_opt(const kgm_shell_args *a, const char *name, const char *const *names, int n, const char *expect,
                    int *out)
{
    const char *v = sh_opt(a, name);
    if (!v) return 0;
    for (int i = 0; i < n; i++)
        if (names[i] && !strcmp(v, names[i])) { *out = i; return 0; }
    return kgm_fail(KGM_EINVAL, "%s: expected %s, got '%s'", name, expect, v);
}

/* opt=, reg=, batch=, margin=, gamma=, adv=, bern=: the sampled-negative trainer's settings
 * (margin= with loss=margin, gamma= with loss=softplus, adv= and bern= with sampled negatives).
 * A new optimizer without lr= starts at its own usual rate. */
static int training_opts(const kgm_shell_args *a, kgm_emb_opts *o)
{
    static const char *const opts[] = { [KGM_EMB_OPT_SGD] = "sgd", [KGM_EMB_OPT_ADAGRAD] = "adagrad",
                                        [KGM_EMB_OPT_ADAM] = "adam" };
    static const char *const regs[] = { [KGM_EMB_REG_NONE] = "none", [KGM_EMB_REG_L2] = "l2", [KGM_EMB_REG_N3] = "n3" };
    static const float usual_lr[] = { [KGM_EMB_OPT_SGD] = 0.01f, [KGM_EMB_OPT_ADAGRAD] = 0.1f,
                                      [KGM_EMB_OPT_ADAM] = 0.001f };
    int opt = (int)o->opt, reg = (int)o->reg;
    double batch = o->batch, regw = o->reg_weight, margin = o->margin, gamma = o->gamma, adv = o->adv_temp,
           bern = o->bern;
    if (word_opt(a, "opt", opts, 3, "sgd, adagrad or adam", &opt) || word_opt(a, "reg", regs, 3, "none, l2 or n3", &reg) ||
        num_opt(a, "batch", 1, 100000, 1, &batch) || num_opt(a, "regw", 0, 10, 0, &regw) ||
        num_opt(a, "margin", 0, 100, 0, &margin) || num_opt(a, "gamma", 0, 100, 0, &gamma) ||
        num_opt(a, "adv", 0, 100, 0, &adv) || num_opt(a, "bern", 0, 1, 1, &bern))
        return KGM_EINVAL;
    const int ova = kgm_emb_loss_all(o->loss);
    if (sh_opt(a, "margin") && o->loss != KGM_EMB_LOSS_MARGIN) return kgm_fail(KGM_EINVAL, "margin= needs loss=margin");
    if (sh_opt(a, "gamma") && o->loss != KGM_EMB_LOSS_SOFTPLUS) return kgm_fail(KGM_EINVAL, "gamma= needs loss=softplus");
    if (ova && (sh_opt(a, "adv") || sh_opt(a, "bern")))
        return kgm_fail(KGM_EINVAL, "adv= and bern= weight and draw sampled negatives: not with loss=%s",
                        o->loss == KGM_EMB_LOSS_KVSALL ? "kvsall" : "1vsall");
    if (sh_opt(a, "regw") && reg == KGM_EMB_REG_NONE) return kgm_fail(KGM_EINVAL, "regw= needs reg=l2 or reg=n3");
    if (sh_opt(a, "opt") && !sh_opt(a, "lr")) o->lr = usual_lr[opt];
    if (sh_opt(a, "reg") && !sh_opt(a, "regw") && reg != KGM_EMB_REG_NONE && o->reg_weight == 0) regw = 1e-4;
    o->opt = (kgm_emb_opt)opt; o->reg = (kgm_emb_reg)reg; o->reg_weight = reg == KGM_EMB_REG_NONE ? 0.0f : (float)regw;
    o->batch = (int)batch; o->margin = (float)margin; o->gamma = (float)gamma; o->adv_temp = (float)adv;
    o->bern = (int)bern;
    return 0;
}

static int parse_opts(kgm_shell *sh, const kgm_shell_args *a, kgm_emb_opts *o)
{
    const char *m = sh_opt(a, "model");
    kgm_emb_model model = KGM_EMB_TRANSE_L2;
    if (m && kgm_emb_model_parse(m, &model) != 0)
        return kgm_fail(KGM_EINVAL, "model: expected transe-l1, transe-l2, distmult, complex or rotate, got '%s'", m);
    kgm_emb_opts_default(o, model);
    static const char *const losses[] = { [KGM_EMB_LOSS_MARGIN] = "margin", [KGM_EMB_LOSS_SOFTPLUS] = "softplus",
                                          [KGM_EMB_LOSS_1VSALL] = "1vsall", [KGM_EMB_LOSS_KVSALL] = "kvsall" };
    int loss = (int)o->loss;
    if (word_opt(a, "loss", losses, 4, "margin, softplus, 1vsall or kvsall", &loss)) return KGM_EINVAL;
    o->loss = (kgm_emb_loss)loss;
    if (training_opts(a, o)) return KGM_EINVAL;
    const int ova = kgm_emb_loss_all(o->loss), kvs = o->loss == KGM_EMB_LOSS_KVSALL;
    double dim = 32, epochs = 100, lr = o->lr, neg = ova ? 0 : o->negatives, seed = (double)sh->seed,
           threads = sh->threads, edrop = 0, rdrop = 0, dside = 0, recip = 0, logq = 0, subsample = 0, ls = 0,
           decay = 0, rdecay = 0, init = 0, init_lo = 0;
    if (num_opt(a, "dim", 1, 4096, 1, &dim) || num_opt(a, "epochs", 1, 1e6, 1, &epochs) ||
        num_opt(a, "lr", 1e-9, 100, 0, &lr) || num_opt(a, "neg", ova ? 0 : 1, ova ? 1e6 : 4096, 1, &neg) ||
        num_opt(a, "seed", 0, 4294967295.0, 1, &seed) || num_opt(a, "threads", 1, 256, 1, &threads) ||
        num_opt(a, "edrop", 0, 0.99, 0, &edrop) || num_opt(a, "rdrop", 0, 0.99, 0, &rdrop) ||
        num_opt(a, "dside", 0, 1, 1, &dside) ||
        num_opt(a, "recip", 0, 1, 1, &recip) || num_opt(a, "logq", 0, 1, 1, &logq) ||
        num_opt(a, "subsample", 0, 1, 1, &subsample) || num_opt(a, "ls", 0, 0.99, 0, &ls) ||
        num_opt(a, "decay", 0, 1, 0, &decay) || num_opt(a, "rdecay", 0, 1, 0, &rdecay) ||
        num_opt(a, "init", 0, 10, 0, &init) || num_opt(a, "init_lo", -10, 0, 0, &init_lo))
        return KGM_EINVAL;
    if (!ova && (sh_opt(a, "edrop") || sh_opt(a, "rdrop")))
        return kgm_fail(KGM_EINVAL, "edrop= and rdrop= need loss=1vsall or kvsall");
    if (dside && !(edrop > 0)) return kgm_fail(KGM_EINVAL, "dside=1 redraws the entity dropout mask: it needs edrop=");
    if ((sh_opt(a, "decay") || sh_opt(a, "rdecay")) && !(ova && neg == 0))
        return kgm_fail(KGM_EINVAL, "decay= and rdecay= step every row: they need loss=1vsall or kvsall without neg=");
    if (!ova && recip) return kgm_fail(KGM_EINVAL, "recip=1 needs loss=1vsall or kvsall");
    if (kvs && sh_opt(a, "neg")) return kgm_fail(KGM_EINVAL, "neg= is not for loss=kvsall: it scores every entity");
    if (!kvs && sh_opt(a, "ls")) return kgm_fail(KGM_EINVAL, "ls= (label smoothing) needs loss=kvsall");
    if (logq && !(ova && neg > 0)) return kgm_fail(KGM_EINVAL, "logq=1 needs loss=1vsall and sampled candidates (neg=N)");
    if (ova && subsample) return kgm_fail(KGM_EINVAL, "subsample=1 weights sampled negatives: not with loss=%s",
                                          kvs ? "kvsall" : "1vsall");
    o->dim = (int)dim; o->epochs = (int)epochs; o->lr = (float)lr;
    o->seed = (uint64_t)seed; o->threads = (int)threads;
    /* with 1vsall, neg= is the sampled candidates per batch (none given: every entity) */
    if (ova) o->candidates = (int)neg;
    else     o->negatives = (int)neg;
    o->drop_ent = (float)edrop; o->drop_rel = (float)rdrop; o->drop_per_side = (int)dside;
    o->decay_ent = (float)decay; o->decay_rel = (float)rdecay;
    o->init_scale = (float)init; o->init_low = (float)init_lo;
    o->reciprocal = (int)recip;
    o->logq = (int)logq;
    o->subsample = (int)subsample;
    o->label_smoothing = (float)ls;
    return 0;
}

/* The kept graph of graph=all is the store's view (kgm_store_view): when the store has
 * changed since, the view is taken again. Entity and relation ids are the store's and stay
 * put, so the embedding's rows still name the same things unless the store has more now. */
static int need_embedding(kgm_shell *sh, const char *cmd)
{
    if (!sh->embed) return kgm_fail(KGM_EINVAL, "embed %s: no embedding yet (embed train or embed load first)", cmd);
    if (!kgm_graph_stale(sh->embed->g)) return 0;
    kgm_graph *g;
    if (kgm_store_view(sh->store, &g)) return kgm_error_code();
    const kgm_emb *e = sh->embed->emb;
    if (kgm_graph_n_ents(g) != e->n_ents || kgm_graph_n_rels(g) != e->n_rels) {
        int rc = kgm_fail(KGM_ESTATE, "embed %s: the store has %zu entities and %zu relations now, the embedding %zu and %zu "
                          "(embed train again)", cmd, kgm_graph_n_ents(g), kgm_graph_n_rels(g), e->n_ents, e->n_rels);
        kgm_graph_free(g);          /* the stale view stays, unread: the next use asks again */
        return rc;
    }
    kgm_graph_free(sh->embed->g);
    sh->embed->g = g;
    return 0;
}

void sh_embed_detach(kgm_shell *sh)
{
    if (!sh->embed || !kgm_graph_borrowed(sh->embed->g)) return;
    kgm_graph *copy = kgm_graph_stale(sh->embed->g) ? NULL : kgm_graph_copy(sh->embed->g);
    if (!copy) { kgm_error_clear(); sh_embed_free(sh); return; }
    kgm_graph_free(sh->embed->g);
    sh->embed->g = copy;
}

/* Keeps (e, g, held) as the session's embedding, dropping the previous one. */
static int keep(kgm_shell *sh, kgm_emb *e, kgm_graph *g, kgm_triple *held, size_t n_held)
{
    struct sh_embed *s = malloc(sizeof *s);
    if (!s) { kgm_emb_free(e); kgm_graph_free(g); free(held); return kgm_fail(KGM_ENOMEM, "out of memory"); }
    sh_embed_free(sh);
    *s = (struct sh_embed){ e, g, held, n_held };
    sh->embed = s;
    return 0;
}

static int triple_cmp(const void *pa, const void *pb)
{
    const kgm_triple *a = pa, *b = pb;
    if (a->h != b->h) return a->h < b->h ? -1 : 1;
    if (a->r != b->r) return a->r < b->r ? -1 : 1;
    return a->t < b->t ? -1 : a->t > b->t;
}

/* holdout=F: round(F n) of g's n triples (at least one), drawn from `seed`, go to *held (new,
 * sorted); *train gets a new graph with g's entities and relations under the same ids and the
 * other triples. */
static int split_holdout(const kgm_graph *g, double frac, uint64_t seed, kgm_graph **train,
                         kgm_triple **held, size_t *n_held)
{
    const size_t n = kgm_graph_n_triples(g), ne = kgm_graph_n_ents(g), nr = kgm_graph_n_rels(g);
    const kgm_triple *all = kgm_graph_triples(g);
    size_t k = (size_t)llround(frac * (double)n);
    if (k == 0) k = 1;
    if (n && !all) return kgm_error_code();
    if (k >= n) return kgm_fail(KGM_EINVAL, "holdout=%g of %zu triples leaves none to train on", frac, n);
    size_t *idx = malloc(n * sizeof *idx);
    kgm_triple *h = malloc(k * sizeof *h);
    kgm_graph *tg = kgm_graph_new();
    int rc = idx && h && tg ? 0 : kgm_fail(KGM_ENOMEM, "out of memory");
    kgm_rng rng;
    kgm_rng_seed(&rng, seed, 0x686f6c646f7574ULL);   /* "holdout" */
    for (size_t i = 0; !rc && i < n; i++) idx[i] = i;
    for (size_t i = 0; !rc && i < k; i++) {   /* the first k of a Fisher-Yates shuffle */
        size_t j = i + (size_t)kgm_rng_below(&rng, n - i), x = idx[i];
        idx[i] = idx[j];
        idx[j] = x;
        h[i] = all[idx[i]];
    }
    for (size_t e = 0; !rc && e < ne; e++)   /* names in id order: the same ids in the copy */
        if (kgm_graph_entity(tg, kgm_graph_ent_name(g, (int32_t)e)) != (int32_t)e)
            rc = kgm_fail(KGM_ENOMEM, "holdout: cannot copy entity %zu of the graph", e);
    for (size_t r = 0; !rc && r < nr; r++)
        if (kgm_graph_relation(tg, kgm_graph_rel_name(g, (int32_t)r)) != (int32_t)r)
            rc = kgm_fail(KGM_ENOMEM, "holdout: cannot copy relation %zu of the graph", r);
    for (size_t i = k; !rc && i < n; i++) rc = kgm_graph_add(tg, all[idx[i]].h, all[idx[i]].r, all[idx[i]].t);
    if (!rc) rc = kgm_graph_finish(tg);
    free(idx);
    if (rc) { free(h); kgm_graph_free(tg); return rc; }
    qsort(h, k, sizeof *h, triple_cmp);
    *train = tg;
    *held = h;
    *n_held = k;
    return 0;
}

static int embed_train(kgm_shell *sh, kgm_shell_args *a)
{
    kgm_emb_opts o;
    kgm_graph *g, *train = NULL;
    kgm_triple *held = NULL;
    size_t n_held = 0;
    double holdout = 0;
    if (parse_opts(sh, a, &o) || num_opt(a, "holdout", 0, 0.5, 0, &holdout) || extract(sh, a, &g)) return KGM_EINVAL;
    if (holdout > 0 && split_holdout(g, holdout, o.seed, &train, &held, &n_held)) { kgm_graph_free(g); return KGM_EINVAL; }
    kgm_emb *e = kgm_emb_new(&o, kgm_graph_n_ents(g), kgm_graph_n_rels(g));
    if (!e) { kgm_graph_free(g); kgm_graph_free(train); free(held); return KGM_EINVAL; }
    kgm_emb_report rep;
    int rc = kgm_emb_train(e, train ? train : g, &o, NULL, 0, NULL, 0, &rep);
    kgm_graph_free(train);
    if (rc && rc != KGM_EINTR) { kgm_emb_free(e); kgm_graph_free(g); free(held); return rc; }
    char held_note[64] = "";
    if (n_held) snprintf(held_note, sizeof held_note, " (%zu more held out)", n_held);
    fprintf(sh->out, "trained %s (dim %d%s) on %zu triples%s, %zu entities, %zu relations: %d epochs, loss %.3g\n",
            kgm_emb_model_name(o.model), o.dim, o.reciprocal ? ", reciprocal relations" : "",
            kgm_graph_n_triples(g) - n_held, held_note, kgm_graph_n_ents(g), kgm_graph_n_rels(g),
            rep.epochs_run, rep.last_loss);
    if (keep(sh, e, g, held, n_held) != 0) return KGM_ENOMEM;
    if (rc == KGM_EINTR) return kgm_fail(KGM_EINTR, "embed train: interrupted after %d epochs; kept that state", rep.epochs_run);
    return 0;
}

/* One row of embed eval: split, how many triples were ranked, their filtered figures. */
static int eval_row(kgm_table *t, const char *split, const kgm_lp_metrics *m, size_t n)
{
    long r = kgm_table_add_row(t);
    if (r < 0) return kgm_fail(KGM_ENOMEM, "out of memory");
    int rc = kgm_table_set(t, (size_t)r, 0, KGM_CELL_LITERAL, split, NULL, NULL);
    double v[] = { (double)n, m->mrr, m->mean_rank, m->hits1, m->hits3, m->hits10 };
    for (size_t c = 0; !rc && c < 6; c++) {
        char b[32];
        snprintf(b, sizeof b, "%.3g", v[c]);
        rc = kgm_table_set(t, (size_t)r, c + 1, KGM_CELL_NUMBER, b, NULL, NULL);
    }
    return rc;
}

/* Filtered link prediction (every triple of the graph filtered) of the triples trained on and,
 * after holdout=, of the held-out ones: how well the embedding fits, and how well it predicts. */
static int embed_eval(kgm_shell *sh)
{
    if (need_embedding(sh, "eval")) return KGM_EINVAL;
    const struct sh_embed *se = sh->embed;
    const kgm_triple *all = kgm_graph_triples(se->g);
    size_t n_all = kgm_graph_n_triples(se->g), n_train = 0, n_held = 0;
    if (n_all && !all) return kgm_error_code();
    /* the graph's triples split in two, trained ones from the front, held-out ones from the
     * back (a held-out triple since removed from the store is ranked no more) */
    kgm_triple *split = malloc((n_all + 1) * sizeof *split);
    if (!split) return kgm_fail(KGM_ENOMEM, "out of memory");
    for (size_t i = 0; i < n_all; i++) {
        int out = se->n_held && bsearch(&all[i], se->held, se->n_held, sizeof *se->held, triple_cmp);
        if (out) split[n_all - ++n_held] = all[i];
        else     split[n_train++] = all[i];
    }
    const kgm_triple *known[] = { all };
    size_t n_known[] = { n_all };
    const char *cols[] = { "split", "triples", "mrr", "mean_rank", "hits1", "hits3", "hits10" };
    kgm_table *t = kgm_table_new(7, cols);
    kgm_lp_metrics m;
    int rc = t ? 0 : kgm_fail(KGM_ENOMEM, "out of memory");
    if (!rc) rc = kgm_lp_evaluate(se->emb, split, n_train, known, n_known, 1, sh->threads, &m);
    if (!rc) rc = eval_row(t, "train", &m, n_train);
    if (!rc && n_held) rc = kgm_lp_evaluate(se->emb, split + n_train, n_held, known, n_known, 1, sh->threads, &m);
    if (!rc && n_held) rc = eval_row(t, "held-out", &m, n_held);
    if (!rc) rc = sh_print_table(sh, t);
    kgm_table_free(t);
    free(split);
    return rc;
}

/* The id of an entity or relation typed as a term (prefixed name or <iri>). */
static int32_t lookup(kgm_shell *sh, const char *term, int relation)
{
    char *iri = kgm_store_expand(sh->store, term);
    if (!iri) return -1;
    const kgm_graph *g = sh->embed->g;
    int32_t id = relation ? kgm_graph_find_relation(g, iri) : kgm_graph_find_entity(g, iri);
    if (id < 0) kgm_fail(KGM_ENOTFOUND, "embed: no %s %s in the embedded graph", relation ? "relation" : "entity", term);
    free(iri);
    return id;
}

/* Column `col` of row `row`: the first (in SPARQL order) object of subject_iri's `pred_iri`
 * in the store, or empty. Shows whether neighbours share a property the embedding saw. */
static int set_property(kgm_shell *sh, kgm_table *t, size_t row, size_t col, const char *subject_iri,
                        const char *pred_iri)
{
    size_t n = strlen(subject_iri) + strlen(pred_iri) + 64;
    char *q = malloc(n);
    if (!q) return kgm_fail(KGM_ENOMEM, "out of memory");
    snprintf(q, n, "SELECT ?o WHERE { <%s> <%s> ?o } ORDER BY ?o LIMIT 1", subject_iri, pred_iri);
    kgm_table *r;
    int rc = kgm_store_query(sh->store, q, NULL, &r);
    free(q);
    if (rc) return rc;
    if (r->n_rows == 1) {
        const kgm_cell *c = kgm_table_cell(r, 0, 0);
        rc = kgm_table_set(t, row, col, c->kind, c->value, c->lang, c->datatype);
    }
    kgm_table_free(r);
    return rc;
}

enum { MAX_WITH = 8 };

/* with=P1,P2,..: splits names (a copy of the option, cut in place) into column titles after
 * title[0..1] and their full IRIs (new strings); names NULL is no properties. 0 or an error. */
static int parse_with(kgm_shell *sh, char *names, const char **title, char **iri, int *n)
{
    *n = 0;
    if (!names) return 0;
    for (char *save = NULL, *p = strtok_r(names, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_WITH) return kgm_fail(KGM_EINVAL, "with: at most %d properties", MAX_WITH);
        if (!(iri[*n] = kgm_store_expand(sh->store, p))) return kgm_error_code();
        title[2 + (*n)++] = p;
    }
    return *n ? 0 : kgm_fail(KGM_EINVAL, "with: expected PROPERTY[,PROPERTY...]");
}

static int embed_neighbours(kgm_shell *sh, kgm_shell_args *a)
{
    double k = 10;
    if (need_embedding(sh, "neighbours")) return KGM_EINVAL;
    if (a->argc != 2) return kgm_fail(KGM_EINVAL, "embed neighbours: expected ENTITY [k=10 with=PROPERTY,..]");
    if (num_opt(a, "k", 1, 1000, 1, &k)) return KGM_EINVAL;
    int32_t id = lookup(sh, a->argv[1], 0);
    if (id < 0) return KGM_ENOTFOUND;
    const char *with = sh_opt(a, "with");
    char *names = with ? strdup(with) : NULL, *iri[MAX_WITH] = { 0 };
    const char *cols[2 + MAX_WITH] = { "entity", "cosine" };
    int32_t ids[1000];
    float sims[1000];
    kgm_table *t = NULL;
    int n = 0, n_with = 0;
    int rc = with && !names ? kgm_fail(KGM_ENOMEM, "out of memory") : parse_with(sh, names, cols, iri, &n_with);
    if (rc) goto done;
    if ((n = kgm_emb_neighbours(sh->embed->emb, id, (int)k, ids, sims)) < 0) { rc = n; goto done; }
    if (!(t = kgm_table_new(2 + (size_t)n_with, cols))) { rc = kgm_fail(KGM_ENOMEM, "out of memory"); goto done; }
    for (int i = 0; !rc && i < n; i++) {
        long r = kgm_table_add_row(t);
        const char *name = kgm_graph_ent_name(sh->embed->g, ids[i]);
        char b[32];
        snprintf(b, sizeof b, "%.3f", (double)sims[i]);
        rc = r < 0 || kgm_table_set(t, (size_t)r, 0, KGM_CELL_IRI, name, NULL, NULL) ||
             kgm_table_set(t, (size_t)r, 1, KGM_CELL_NUMBER, b, NULL, NULL) ? kgm_fail(KGM_ENOMEM, "out of memory") : 0;
        for (int j = 0; !rc && j < n_with; j++) rc = set_property(sh, t, (size_t)r, 2 + (size_t)j, name, iri[j]);
    }
    if (!rc) rc = sh_print_table(sh, t);
done:
    kgm_table_free(t);
    for (int j = 0; j < n_with; j++) free(iri[j]);
    free(names);
    return rc;
}

static int embed_score(kgm_shell *sh, kgm_shell_args *a)
{
    if (need_embedding(sh, "score")) return KGM_EINVAL;
    if (a->argc != 4) return kgm_fail(KGM_EINVAL, "embed score: expected S P O");
    int32_t h = lookup(sh, a->argv[1], 0), r = h < 0 ? -1 : lookup(sh, a->argv[2], 1);
    int32_t t = r < 0 ? -1 : lookup(sh, a->argv[3], 0);
    if (t < 0) return KGM_ENOTFOUND;
    fprintf(sh->out, "score %.4g\n", (double)kgm_emb_score(sh->embed->emb, h, r, t));
    return 0;
}

static int embed_file(kgm_shell *sh, kgm_shell_args *a, int save)
{
    if (a->argc != 2) return kgm_fail(KGM_EINVAL, "embed %s: expected FILE", save ? "save" : "load");
    const char *path = kgm_shell_unquote(a->argv[1]);
    if (save) {
        if (need_embedding(sh, "save") || kgm_emb_save(sh->embed->emb, path)) return KGM_EINVAL;
        fprintf(sh->out, "saved the embedding to %s\n", path);
        return 0;
    }
    kgm_emb *e;
    kgm_graph *g;
    if (kgm_emb_load(&e, path)) return KGM_EINVAL;
    if (extract(sh, a, &g)) { kgm_emb_free(e); return KGM_EINVAL; }
    if (e->n_ents != kgm_graph_n_ents(g) || e->n_rels != kgm_graph_n_rels(g)) {
        int rc = kgm_fail(KGM_EINVAL, "embed load: %s has %zu entities and %zu relations, the graph %zu and %zu",
                          path, e->n_ents, e->n_rels, kgm_graph_n_ents(g), kgm_graph_n_rels(g));
        kgm_emb_free(e); kgm_graph_free(g);
        return rc;
    }
    if (keep(sh, e, g, NULL, 0)) return KGM_ENOMEM;
    fprintf(sh->out, "loaded %s (dim %d%s) from %s\n", kgm_emb_model_name(e->model), e->dim,
            e->reciprocal ? ", reciprocal relations" : "", path);
    return 0;
}

int cmd_embed(kgm_shell *sh, kgm_shell_args *a)
{
    const char *sub = a->argv[0];
    int rc;
    if (!strcmp(sub, "train")) rc = a->argc == 1 ? embed_train(sh, a) : kgm_fail(KGM_EINVAL, "embed train: takes options only");
    else if (!strcmp(sub, "eval")) rc = a->argc == 1 ? embed_eval(sh) : kgm_fail(KGM_EINVAL, "embed eval: takes no arguments");
    else if (!strcmp(sub, "save")) rc = embed_file(sh, a, 1);
    else if (!strcmp(sub, "load")) rc = embed_file(sh, a, 0);
    else if (!strcmp(sub, "neighbours") || !strcmp(sub, "neighbors")) rc = embed_neighbours(sh, a);
    else if (!strcmp(sub, "score")) rc = embed_score(sh, a);
    else rc = kgm_fail(KGM_EINVAL, "embed: expected train, eval, save, load, neighbours or score, got '%s'", sub);
    return rc ? 1 : 0;
}
