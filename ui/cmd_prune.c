/* cmd_prune.c: prune: magnitude (global or per layer, capped) and static random pruning
 * of the session's model through its masks (model/prune.h), one ramp step on demand, and
 * the per-layer table (sparsity, parameters and MACs left, filters removed), printed and
 * kept as the prune view. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "basin/core/graph.h"
#include "basin/core/status.h"
#include "basin/model/model.h"
#include "basin/model/compress.h"
#include "basin/model/predict.h"
#include "basin/model/prune.h"
#include "basin/model/structured.h"
#include "basin/train/pipeline.h"
#include "canvas.h"
#include "commands.h"
#include "render.h"
#include "views.h"

/* ----------------------------------------------------------------------------- values */

/* "0.8" or "80%": a fraction in [0, 1). */
static int arg_fraction(struct app *a, const char *key, const char *v, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end != v && *end == '%' && !end[1]) d /= 100, end++;
    if (end == v || *end || !isfinite(d) || d < 0 || d >= 1)
        return app_fail(a, STATUS_INVALID, "prune: %s=%s: expected a fraction in [0, 1) (0.8 or 80%%)", key, v);
    *out = d;
    return STATUS_OK;
}

/* A count "250000", "250k", "1.5M", or "N%" of `of`. */
int arg_count(struct app *a, const char *cmd, const char *key, const char *v, double of, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end != v && *end && !end[1]) {
        switch (*end) {
        case '%': d = d / 100 * of, end++; break;
        case 'k': case 'K': d *= 1e3, end++; break;
        case 'M': d *= 1e6, end++; break;
        case 'G': d *= 1e9, end++; break;
        default: break;
        }
    }
    if (end == v || *end || !isfinite(d) || d < 0)
        return app_fail(a, STATUS_INVALID, "%s: %s=%s: expected a count (250000, 250k, 1.5M) or a percentage (50%%)",
                        cmd, key, v);
    *out = floor(d + 0.5);
    return STATUS_OK;
}

/* ----------------------------------------------------------------------------- the table */

struct prune_view {
    char title[1024];
    int n;
    struct prune_row {
        char name[48];
        double sparsity;
        char text[160];
    } *rows;
    char total[256];
};

static void prune_view_release(void *data)
{
    struct prune_view *v = data;
    if (!v) return;
    free(v->rows);
    free(v);
}

static void draw_prune(struct canvas *c, void *data)
{
    const struct prune_view *v = data;
    canvas_text(c, 0, 0, -1, v->title);
    canvas_textf(c, 0, 1, -1, "%-24s %-12s %s", "layer", "sparsity", "   kept / params   MACs left  filters removed");
    for (int i = 0; i < v->n && i + 2 < c->h - 1; i++) {
        canvas_textf(c, 0, i + 2, -1, "%-24s", v->rows[i].name);
        canvas_bar(c, 25, i + 2, 10, v->rows[i].sparsity, canvas_ramp_color(v->rows[i].sparsity));
        canvas_text(c, 37, i + 2, -1, v->rows[i].text);
    }
    int y = v->n + 2 < c->h - 1 ? v->n + 2 : c->h - 1;
    canvas_text(c, 0, y, -1, v->total);
}

/* Print the table and make it the prune view. */
static int show_table(struct app *a, const char *what)
{
    const struct model *m = a->model;
    const struct graph *g = m->g;
    int f, t;
    struct frontend_params fe;
    if (!pipeline_model_frontend(m, &fe)) f = fe.n_mels, t = (int)(1 + 10L * fe.sample_rate_hz / fe.hop);
    else model_default_input(m, &f, &t);
    struct prune_layer *rows = calloc((size_t)g->n_tensors, sizeof *rows);
    struct prune_view *v = calloc(1, sizeof *v);
    if (!rows || !v || !(v->rows = calloc((size_t)g->n_tensors, sizeof *v->rows))) {
        free(rows);
        prune_view_release(v);
        return app_fail(a, STATUS_NOMEM, "prune: out of memory");
    }
    int n, s = prune_layers(m, f, t, rows, &n);
    if (s) {
        free(rows);
        prune_view_release(v);
        return app_fail(a, s, "prune: %s", status_detail());
    }
    struct model_summary sum;
    double macs_total = 0, macs_left = 0;
    long kept = prune_kept_params(g), total = graph_param_count(g), prunable = prune_prunable(g), pruned = 0;
    for (int i = 0; i < n; i++) pruned += rows[i].numel - rows[i].kept;
    (void)sum;
    snprintf(v->title, sizeof v->title, "prune: %s (%s)", what, a->model_name);
    app_out(a, "%s\n", v->title);
    app_out(a, "%-24s %9s %10s %10s %9s %9s %8s\n", "layer", "sparsity", "kept", "params", "MACs", "MACs left",
            "filters");
    char b1[32], b2[32], b3[32], b4[32], b5[32];
    for (int i = 0; i < n; i++) {
        const struct prune_layer *r = &rows[i];
        const char *name = g->nodes[r->node].name;
        double sp = r->numel ? 1.0 - (double)r->kept / (double)r->numel : 0;
        macs_total += r->macs, macs_left += r->macs_kept;
        snprintf(v->rows[i].name, sizeof v->rows[i].name, "%s", name);
        v->rows[i].sparsity = sp;
        snprintf(v->rows[i].text, sizeof v->rows[i].text, "%5.1f%% %9s /%9s %10s  %d of %d", 100 * sp,
                 fmt_count(b1, sizeof b1, r->kept), fmt_count(b2, sizeof b2, r->numel),
                 fmt_si(b3, sizeof b3, r->macs_kept), r->filters_removed, r->filters);
        app_out(a, "%-24s %8.2f%% %10s %10s %9s %9s %3d of %d\n", name, 100 * sp, fmt_count(b1, sizeof b1, r->kept),
                fmt_count(b2, sizeof b2, r->numel), fmt_si(b3, sizeof b3, r->macs), fmt_si(b4, sizeof b4, r->macs_kept),
                r->filters_removed, r->filters);
    }
    v->n = n;
    /* MACs of the layers without prunable weights (BN, pools) count in full */
    struct layer_row *lr = calloc((size_t)g->n_nodes, sizeof *lr);
    int n_rows;
    double all_macs = macs_total;
    if (lr && !model_describe(m, f, t, lr, &n_rows, &sum)) all_macs = sum.macs;
    free(lr);
    double left = all_macs - macs_total + macs_left;
    snprintf(v->total, sizeof v->total,
             "total: %s of %s parameters kept (%.2f%% of the %s prunable weights pruned), %s of %s MACs "
             "left (non-zero weights)",
             fmt_count(b1, sizeof b1, kept), fmt_count(b2, sizeof b2, total),
             prunable ? 100.0 * (double)pruned / (double)prunable : 0.0, fmt_count(b3, sizeof b3, prunable),
             fmt_si(b4, sizeof b4, left), fmt_si(b5, sizeof b5, all_macs));
    app_out(a, "%s\n", v->total);
    app_view_set(a, VIEW_PRUNE, draw_prune, v, prune_view_release);
    free(rows);
    return STATUS_OK;
}

/* ----------------------------------------------------------------------------- command */

struct prune_cli {
    double target;          /* fraction pruned; < 0: not given */
    double params;          /* parameters to keep; < 0: not given */
    double macs;            /* structured: MACs to keep at most; < 0: not given */
    enum prune_scope scope;
    enum prune_ramp ramp;
    long len;
    double cap;
    long seed;
    long cut;               /* structured: 1 the smaller model replaces it, 0 masks only */
};

static void input_size(const struct model *m, int *f, int *t)
{
    struct frontend_params fe;
    if (!pipeline_model_frontend(m, &fe)) *f = fe.n_mels, *t = (int)(1 + 10L * fe.sample_rate_hz / fe.hop);
    else model_default_input(m, f, t);
}

/* The model's MACs per 10-second clip (0 when it cannot be described). */
static double macs_now(struct app *a)
{
    int f, t;
    input_size(a->model, &f, &t);
    struct budget_counts c;
    return compress_counts(a->model, f, t, &c) ? 0 : c.macs;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds per clip of m's eval-mode forward over n clips of (f, t), best of 3. */
static double time_forward(struct model *m, int n, int f, int t, const float *x, float *logits)
{
    double best = INFINITY;
    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        if (model_predict(m, n, m->cfg.in_ch, f, t, x, logits)) return NAN;
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    return best / n;
}

/* prune structured: search, mask, extract the smaller model, check it against the masked
 * one, time both, and make the smaller one the session's model. */
static int structured(struct app *a, const struct prune_cli *o, char *what, size_t n_what)
{
    if (o->macs < 0 && o->params < 0) return app_fail(a, STATUS_INVALID, "prune structured: macs=N and/or params=N");
    struct model *m = a->model;
    int f, t;
    input_size(m, &f, &t);
    struct structured_plan p;
    if (structured_search(m, o->macs, o->params < 0 ? -1 : (long)o->params, f, t, &p))
        return app_fail(a, STATUS_INVALID, "prune structured: %s", status_detail());
    struct model *small = NULL;
    int s = structured_extract(m, &p, &small);
    if (s) {
        structured_plan_fini(&p);
        return app_fail(a, s, "prune structured: %s", status_detail());
    }
    /* the same clips through the dense, the masked and the smaller model */
    const int N = 4;
    long nx = (long)N * m->cfg.in_ch * f * t;
    float *x = malloc(sizeof(float) * (size_t)nx), *l0 = malloc(sizeof(float) * (size_t)(N * m->cfg.classes)),
          *l1 = malloc(sizeof(float) * (size_t)(N * m->cfg.classes));
    if (!x || !l0 || !l1) {
        free(x), free(l0), free(l1);
        model_destroy(small);
        structured_plan_fini(&p);
        return app_fail(a, STATUS_NOMEM, "prune structured: out of memory");
    }
    for (long i = 0; i < nx; i++) x[i] = (float)sin(0.37 * (double)i) + (float)((i * 2654435761u) % 1000) / 1000.0f;
    double t_dense = time_forward(m, N, f, t, x, l0);
    structured_apply(m, &p);
    model_predict(m, N, m->cfg.in_ch, f, t, x, l0);
    double t_small = time_forward(small, N, f, t, x, l1), diff = 0, scale = 0;
    for (int i = 0; i < N * m->cfg.classes; i++) diff = fmax(diff, fabs(l0[i] - l1[i])), scale = fmax(scale, fabs(l0[i]));
    free(x), free(l0), free(l1);
    char b1[32], b2[32], b3[32], b4[32];
    app_out(a, "prune structured: %d of %d channel groups removed (group norms, FAU's binary search)\n", p.n_removed,
            p.n_groups);
    app_out(a, "  %-10s %9s %9s %9s\n", "channels", "before", "after", "removed");
    for (int x2 = 0; x2 < STRUCTURED_SETS; x2++) {
        if (!p.width[x2]) continue;
        int kept = 0;
        for (int j = 0; j < p.width[x2]; j++) kept += p.keep[x2][j];
        app_out(a, "  %-10s %9d %9d %9d\n", p.name[x2], p.width[x2], kept, p.width[x2] - kept);
    }
    app_out(a, "  parameters %s -> %s, MACs %s -> %s per clip (counted on the smaller structure)\n",
            fmt_count(b1, sizeof b1, p.params_before), fmt_count(b2, sizeof b2, p.params_after),
            fmt_si(b3, sizeof b3, p.macs_before), fmt_si(b4, sizeof b4, p.macs_after));
    app_out(a, "  the smaller model's logits vs the masked model's: largest difference %.2g (of %.3g)\n", diff, scale);
    app_out(a, "  forward, %d clips of %d x %d, best of 3: %.3g ms per clip dense, %.3g ms smaller: %.2fx faster\n", N, f,
            t, 1e3 * t_dense, 1e3 * t_small, t_dense / t_small);
    char cfg[300];
    model_config_str(&p.cfg, cfg, sizeof cfg);
    structured_plan_fini(&p);
    if (!o->cut) {
        /* the dense layout with the removed channels masked: loads in basin_ref.py too */
        model_destroy(small);
        snprintf(what, n_what, "structured, masked (cut=0; cut=1 makes it %s)", cfg);
        return STATUS_OK;
    }
    snprintf(what, n_what, "structured to %s", cfg);
    model_destroy(a->model);
    a->model = small;
    snprintf(a->model_name + strnlen(a->model_name, sizeof a->model_name - 12),
             sizeof a->model_name - strnlen(a->model_name, sizeof a->model_name - 12), " (pruned)");
    return STATUS_OK;
}


static int parse(struct app *a, int argc, char **argv, int first, struct prune_cli *o)
{
    *o = (struct prune_cli){-1, -1, -1, PRUNE_GLOBAL, PRUNE_RAMP_LINEAR, 50, PRUNE_CLASSIFIER_CAP,
                            (long)(a->seed & 0x7fffffffffffffffL), 1};
    double total = (double)graph_param_count(a->model->g);
    for (int i = first; i < argc; i++) {
        char *v = arg_split(argv[i]);
        const char *k = argv[i];
        if (!v) return app_fail(a, STATUS_INVALID, "prune: expected key=value, got '%s' (help prune)", argv[i]);
        if (!strcmp(k, "target")) {
            if (arg_fraction(a, k, v, &o->target)) return STATUS_INVALID;
        } else if (!strcmp(k, "params")) {
            if (arg_count(a, "prune", k, v, total, &o->params)) return STATUS_INVALID;
        } else if (!strcmp(k, "scope")) {
            if (prune_scope_parse(v, &o->scope)) return app_fail(a, STATUS_INVALID, "prune: %s", status_detail());
        } else if (!strcmp(k, "ramp")) {
            if (prune_ramp_parse(v, &o->ramp)) return app_fail(a, STATUS_INVALID, "prune: %s", status_detail());
        } else if (!strcmp(k, "len")) {
            if (arg_int(a, k, v, 1, 1000000, &o->len)) return STATUS_INVALID;
        } else if (!strcmp(k, "cap")) {
            char *end;
            o->cap = strtod(v, &end);
            if (end == v || *end || !(o->cap >= 0 && o->cap <= 1))
                return app_fail(a, STATUS_INVALID, "prune: cap=%s: expected a fraction in [0, 1]", v);
        } else if (!strcmp(k, "cut")) {
            if (arg_int(a, k, v, 0, 1, &o->cut)) return STATUS_INVALID;
        } else if (!strcmp(k, "seed")) {
            if (arg_int(a, k, v, 0, 0x7fffffffffffffffL, &o->seed)) return STATUS_INVALID;
        } else if (!strcmp(k, "macs")) {
            if (arg_count(a, "prune", k, v, macs_now(a), &o->macs)) return STATUS_INVALID;
        } else {
            return app_fail(a, STATUS_INVALID, "prune: unknown option '%s' (help prune)", k);
        }
    }
    if (o->target >= 0 && o->params >= 0) return app_fail(a, STATUS_INVALID, "prune: target= and params=: give one");
    if (o->macs >= 0 && strcmp(argv[0], "structured") && (first < 2 || strcmp(argv[1], "structured")))
        return app_fail(a, STATUS_INVALID, "prune: macs= is for `prune structured` (unstructured sparsity keeps the MACs)");
    return STATUS_OK;
}

/* P from the options: target=, or params= through prune_fraction_for. */
static int fraction_of(struct app *a, const struct prune_cli *o, const char *sub, double *p)
{
    if (o->target >= 0) return *p = o->target, STATUS_OK;
    if (o->params < 0) return app_fail(a, STATUS_INVALID, "prune %s: target=FRACTION or params=COUNT", sub);
    if (prune_fraction_for(a->model->g, (long)o->params, p)) return app_fail(a, STATUS_INVALID, "%s", status_detail());
    return STATUS_OK;
}

static int magnitude(struct app *a, const struct prune_cli *o, double p)
{
    struct graph *g = a->model->g;
    double *caps = malloc((size_t)g->n_tensors * sizeof *caps);
    if (!caps) return app_fail(a, STATUS_NOMEM, "prune: out of memory");
    prune_caps_default(g, o->cap, caps);
    int s = prune_magnitude(g, p, o->scope, caps);
    free(caps);
    if (s) return app_fail(a, s, "%s", status_detail());
    return STATUS_OK;
}

int cmd_prune(struct app *a, int argc, char **argv)
{
    if (app_need_model(a, "prune")) return STATUS_INVALID;
    const char *sub = argc > 1 && !strchr(argv[1], '=') ? argv[1] : "";
    int first = *sub ? 2 : 1;
    struct prune_cli o;
    if (*sub && strcmp(sub, "magnitude") && strcmp(sub, "random") && strcmp(sub, "step") && strcmp(sub, "reset") &&
        strcmp(sub, "structured"))
        return app_fail(a, STATUS_INVALID, "prune: unknown method '%s' (magnitude, random, structured, step, reset)", sub);
    if (parse(a, argc, argv, first, &o)) return STATUS_INVALID;
    struct graph *g = a->model->g;
    char what[512];
    double p;
    if (!*sub) {
        if (argc > 1) return app_fail(a, STATUS_INVALID, "prune: which method? (magnitude, random, step)");
        snprintf(what, sizeof what, "%s", g->masked ? "masks" : "dense");
    } else if (!strcmp(sub, "structured")) {
        if (structured(a, &o, what, sizeof what)) return STATUS_INVALID;
    } else if (!strcmp(sub, "reset")) {
        prune_reset(g);
        snprintf(what, sizeof what, "masks reset");
    } else if (!strcmp(sub, "random")) {
        if (o.params < 0 && o.target >= 0)
            o.params = (double)graph_param_count(g) - floor(o.target * (double)prune_prunable(g) + 0.5);
        if (o.params < 0) return app_fail(a, STATUS_INVALID, "prune random: params=COUNT or target=FRACTION");
        if (prune_random(g, (long)o.params, (uint64_t)o.seed)) return app_fail(a, STATUS_INVALID, "%s", status_detail());
        snprintf(what, sizeof what, "random to %.0f parameters, seed %ld", o.params, o.seed);
    } else if (!strcmp(sub, "magnitude")) {
        if (fraction_of(a, &o, sub, &p) || magnitude(a, &o, p)) return STATUS_INVALID;
        snprintf(what, sizeof what, "magnitude (%s) to %.4g%% of the prunable weights, classifier cap %g",
                 prune_scope_name(o.scope), 100 * p, o.cap);
    } else {
        /* step: the ramp epoch after the one the present sparsity reached */
        if (fraction_of(a, &o, sub, &p)) return STATUS_INVALID;
        long prunable = prune_prunable(g), now = (long)graph_param_count(g) - prune_kept_params(g);
        double frac = prunable ? (double)now / (double)prunable : 0;
        int e = 0;
        /* a count rounds to the nearest weight: half a weight of slack */
        double slack = prunable ? 0.5 / (double)prunable : 0;
        while (e < o.len && p * prune_ramp_at(o.ramp, e, (int)o.len) <= frac + slack + 1e-12) e++;
        double pe = p * prune_ramp_at(o.ramp, e, (int)o.len);
        if (magnitude(a, &o, pe)) return STATUS_INVALID;
        snprintf(what, sizeof what, "step %d of %ld (%s ramp): %.4g%% of P = %.4g%%", e, o.len,
                 prune_ramp_name(o.ramp), 100 * prune_ramp_at(o.ramp, e, (int)o.len), 100 * p);
    }
    app_views_changed(a);
    return show_table(a, what);
}
