/* cmd_compress.c: fold, quantize and budget: BN folding and low-precision weights
 * (model/compress.h) with sizes, MACs and, when a data set is open, accuracy and log loss
 * per device before and after; whether the model fits a DCASE-style budget; and bnstats,
 * the BN running statistics recomputed over a split. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "basin/core/status.h"
#include "basin/core/mem.h"
#include "basin/data/dataset.h"
#include "basin/data/features.h"
#include "basin/dsp/frontend.h"
#include "basin/model/compress.h"
#include "basin/model/model.h"
#include "basin/train/eval.h"
#include "basin/train/pipeline.h"
#include "commands.h"
#include "render.h"

/* The model's 10-second input (as info describes it). */
static void input_size(const struct model *m, int *f, int *t)
{
    struct frontend_params fe;
    if (!pipeline_model_frontend(m, &fe)) *f = fe.n_mels, *t = (int)(1 + 10L * fe.sample_rate_hz / fe.hop);
    else model_default_input(m, f, t);
}

/* The evaluate split's figures, or NULL (no data set, or it failed: said why). */
static struct eval_result *evaluate(struct app *a, const char *cmd)
{
    if (!a->ds) return NULL;
    struct eval_result *r = NULL;
    struct eval_opts o = {.split = DATASET_SPLIT_EVAL};
    if (eval_dataset(&r, a->model, a->ds, &o, &a->progress)) {
        app_out(a, "%s: no accuracy: %s\n", cmd, status_detail());
        return NULL;
    }
    return r;
}

static void row(struct app *a, const char *name, const char *mark, const struct eval_group *b,
                const struct eval_group *c)
{
    if (!b->n) return;
    app_out(a, "  %-16s %-7s %6ld  %6.1f  %6.1f  %+6.1f   %7.3f  %7.3f\n", name, mark, b->n, 100 * b->acc, 100 * c->acc,
            100 * (c->acc - b->acc), b->logloss, c->logloss);
}

static void accuracy_table(struct app *a, const struct eval_result *eb, const struct eval_result *ec);

/* The evaluation after a change becomes the session's last (the devices view shows the
 * model as it is now); the one before goes. */
static void keep_after(struct app *a, struct eval_result *eb, struct eval_result *ec)
{
    eval_result_destroy(eb);
    if (ec) app_keep_eval(a, ec, a->model, DATASET_SPLIT_EVAL);
}

/* Sizes before and after, then the accuracy table when both evaluations exist. */
static void report(struct app *a, const struct budget_counts *b, const struct budget_counts *c,
                   const struct eval_result *eb, const struct eval_result *ec)
{
    long deployed_before = b->params_kept, deployed_after = c->params_kept;
    char x1[32], x2[32], x3[32], x4[32];
    app_out(a, "  %-22s %14s %14s\n", "", "before", "after");
    app_out(a, "  %-22s %14s %14s\n", "parameters (non-zero)", fmt_count(x1, sizeof x1, deployed_before),
            fmt_count(x2, sizeof x2, deployed_after));
    app_out(a, "  %-22s %14s %14s\n", "MACs per clip", fmt_si(x1, sizeof x1, b->macs), fmt_si(x2, sizeof x2, c->macs));
    app_out(a, "  %-22s %14s %14s\n", "bytes at fp32", fmt_bytes(x1, sizeof x1, 4.0 * deployed_before),
            fmt_bytes(x2, sizeof x2, 4.0 * deployed_after));
    app_out(a, "  %-22s %14s %14s\n", "bytes at fp16", fmt_bytes(x3, sizeof x3, 2.0 * deployed_before),
            fmt_bytes(x4, sizeof x4, 2.0 * deployed_after));
    app_out(a, "  %-22s %14s %14s\n", "bytes at int8", fmt_bytes(x1, sizeof x1, 1.0 * deployed_before),
            fmt_bytes(x2, sizeof x2, 1.0 * deployed_after));
    accuracy_table(a, eb, ec);
}

/* Accuracy and log loss per device on the evaluate split, before and after. */
static void accuracy_table(struct app *a, const struct eval_result *eb, const struct eval_result *ec)
{
    if (!eb || !ec) {
        if (!a->ds) app_out(a, "(no data set open: `data` opens one, and the accuracy per device shows here)\n");
        return;
    }
    app_out(a, "evaluate split, per device:\n  %-16s %-7s %6s  %6s  %6s  %6s   %7s  %7s\n", "device", "", "clips", "acc %",
            "after", "change", "logloss", "after");
    for (int d = 0; d < eb->n_devices; d++)
        row(a, dataset_device_name(a->ds, d), eb->device_seen[d] ? "seen" : "unseen", &eb->per_device[d],
            &ec->per_device[d]);
    row(a, "seen devices", "", &eb->seen, &ec->seen);
    row(a, "unseen devices", "", &eb->unseen, &ec->unseen);
    row(a, "all", "", &eb->all, &ec->all);
}

static int counts(struct app *a, const char *cmd, struct budget_counts *c)
{
    int f, t;
    input_size(a->model, &f, &t);
    if (compress_counts(a->model, f, t, c)) return app_fail(a, STATUS_INVALID, "%s: %s", cmd, status_detail());
    return STATUS_OK;
}

int cmd_fold(struct app *a, int argc, char **argv)
{
    if (app_need_model(a, "fold")) return STATUS_INVALID;
    enum fold_mode mode = FOLD_EXACT;
    for (int i = 1; i < argc; i++) {
        char *v = arg_split(argv[i]);
        if (!v || strcmp(argv[i], "mode")) return app_fail(a, STATUS_INVALID, "fold: unknown option '%s' (mode=exact|sp4asc)", argv[i]);
        if (!strcmp(v, "exact")) mode = FOLD_EXACT;
        else if (!strcmp(v, "sp4asc")) mode = FOLD_SP4ASC;
        else return app_fail(a, STATUS_INVALID, "fold: mode=%s: expected exact or sp4asc", v);
    }
    struct budget_counts b, c;
    if (counts(a, "fold", &b)) return STATUS_INVALID;
    struct eval_result *eb = evaluate(a, "fold");
    struct fold_report r;
    compress_fold(a->model, mode, &r);
    app_views_changed(a);
    struct eval_result *ec = eb ? evaluate(a, "fold") : NULL;
    if (counts(a, "fold", &c)) return STATUS_INVALID;
    app_out(a, "fold (%s): %d BN folded into their convs (%ld channels: gamma gone, beta a bias), %d left\n",
            mode == FOLD_EXACT ? "exact, with eps" : "sp4asc, without eps", r.n_folded, r.channels, r.n_left);
    report(a, &b, &c, eb, ec);
    keep_after(a, eb, ec);
    return STATUS_OK;
}

/* n clips of split spread evenly over it (all when n is 0 or the split is smaller), as the
 * model's front end, channels and basin.norm give them. */
static int calib_clips(struct app *a, enum dataset_split split, int n, struct features **out)
{
    struct frontend_params fp;
    *out = NULL;
    int s = pipeline_model_frontend(a->model, &fp);
    return s ? s : pipeline_features(out, a->model, a->ds, &fp, split, n, NULL, &a->progress);
}

/* int8 activations: calibrate on the clips, saying what was set. */
static int calibrate(struct app *a, enum dataset_split split, int n)
{
    struct features *f = NULL;
    struct calib_report r;
    int s = calib_clips(a, split, n, &f);
    if (!s && !f->n) s = status_set(STATUS_INVALID, "no clip of the split loaded");
    if (!s)
        s = compress_calibrate(a->model, f->x, f->n, f->n_channels, f->n_mels, f->n_frames, f->n, &a->progress, &r);
    if (s) {
        features_destroy(f);
        return app_fail(a, s, "quantize: calib=%s: %s", dataset_split_name(split), status_detail());
    }
    app_out(a, "activations: the inputs of %d convs and linears calibrated on %d clips of the %s split "
            "(eval mode): per-tensor symmetric int8, scale max|x| / 127 (%.3g to %.3g)%s\n",
            r.n_inputs, r.n_clips, dataset_split_name(split), r.min_scale, r.max_scale,
            r.n_zero ? "; all-zero inputs left float" : "");
    features_destroy(f);
    return STATUS_OK;
}

int cmd_quantize(struct app *a, int argc, char **argv)
{
    if (app_need_model(a, "quantize")) return STATUS_INVALID;
    if (argc < 2 || (strcmp(argv[1], "fp16") && strcmp(argv[1], "int8")))
        return app_fail(a, STATUS_INVALID, "usage: quantize fp16|int8 [calib=train|evaluate] [n=N]");
    enum quant_kind k = strcmp(argv[1], "fp16") ? QUANT_INT8 : QUANT_FP16;
    enum dataset_split split = DATASET_SPLIT_TRAIN;
    int calib_given = 0;
    long n_calib = QUANT_CALIB_N;
    for (int i = 2; i < argc; i++) {
        char *v = arg_split(argv[i]);
        if (!v) return app_fail(a, STATUS_INVALID, "quantize: unknown option '%s' (calib=, n=)", argv[i]);
        if (k == QUANT_FP16)
            return app_fail(a, STATUS_INVALID, "quantize fp16: %s=: only int8 calibrates activations", argv[i]);
        if (!strcmp(argv[i], "calib")) {
            if (dataset_split_parse(v, &split) || (split != DATASET_SPLIT_TRAIN && split != DATASET_SPLIT_EVAL &&
                                                   split != DATASET_SPLIT_TEST))
                return app_fail(a, STATUS_INVALID, "quantize: calib=%s: expected train, evaluate or test", v);
            calib_given = 1;
        } else if (!strcmp(argv[i], "n")) {
            if (arg_int(a, "n", v, 1, 1000000, &n_calib)) return STATUS_INVALID;
        } else {
            return app_fail(a, STATUS_INVALID, "quantize: unknown option '%s' (calib=, n=)", argv[i]);
        }
    }
    if (calib_given && !a->ds)
        return app_fail(a, STATUS_INVALID, "quantize: calib=: no data set open (`data` opens one)");
    struct budget_counts b, c;
    if (counts(a, "quantize", &b)) return STATUS_INVALID;
    struct eval_result *eb = evaluate(a, "quantize");
    struct quant_report r;
    compress_quantize(a->model, k, &r);
    int acts = k == QUANT_INT8 && a->ds;
    if (acts && calibrate(a, split, (int)n_calib)) {
        app_views_changed(a);
        app_out(a, "quantize int8: the weights are int8 now, the activations stay float\n");
        eval_result_destroy(eb);
        return STATUS_INVALID;
    }
    app_views_changed(a);
    struct eval_result *ec = eb ? evaluate(a, "quantize") : NULL;
    if (counts(a, "quantize", &c)) return STATUS_INVALID;
    app_out(a, "quantize %s: %ld values replaced by their %s representatives (largest change %.3g)%s\n", argv[1],
            r.n_values, argv[1], r.max_abs_change,
            k != QUANT_INT8 ? ""
            : acts ? "; weights per output channel, symmetric; activations as above; biases and BN float"
            : a->model->g->act_quant ? "; weights per output channel, symmetric; the activations keep the scales "
                                       "they had (no data set open to calibrate them again)"
                   : "; weights per output channel, symmetric; biases, BN and activations float (no data set "
                     "open to calibrate the activations on)");
    report(a, &b, &c, eb, ec);
    keep_after(a, eb, ec);
    return STATUS_OK;
}

/* bnstats: every BN's running statistics recomputed over clips of a split, or of one
 * device in it (compress_update_bn), with the accuracy per device before and after. */
int cmd_bnstats(struct app *a, int argc, char **argv)
{
    if (app_need_model(a, "bnstats") || app_need_dataset(a, "bnstats")) return STATUS_INVALID;
    enum dataset_split split = DATASET_SPLIT_TRAIN;
    long n = 0, batch = 16;
    int dev = -1;
    for (int i = 1; i < argc; i++) {
        char *v = arg_split(argv[i]);
        if (!v) return app_fail(a, STATUS_INVALID, "bnstats: unknown option '%s' (split=, n=, batch=, device=)", argv[i]);
        if (!strcmp(argv[i], "split")) {
            if (dataset_split_parse(v, &split))
                return app_fail(a, STATUS_INVALID, "bnstats: split=%s: expected train, evaluate, test or all", v);
        } else if (!strcmp(argv[i], "n")) {
            if (arg_int(a, "n", v, 1, 1000000, &n)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "batch")) {
            if (arg_int(a, "batch", v, 2, 4096, &batch)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "device")) {
            if ((dev = dataset_device_index(a->ds, v)) < 0)
                return app_fail(a, STATUS_INVALID, "bnstats: device=%s: the data set has no such device", v);
        } else {
            return app_fail(a, STATUS_INVALID, "bnstats: unknown option '%s' (split=, n=, batch=, device=)", argv[i]);
        }
    }
    struct budget_counts bc;
    if (counts(a, "bnstats", &bc)) return STATUS_INVALID;
    if (bc.folded)
        return app_fail(a, STATUS_INVALID, "bnstats: the model's batch norm is folded into its convs (fold moved the "
                        "gammas there): recompute the statistics before folding");
    struct features *f = NULL;
    int s = calib_clips(a, split, dev < 0 ? (int)n : 0, &f), n_clips = f ? f->n : 0;
    if (!s && dev >= 0) n_clips = features_keep_device(f, a->ds, dev);
    if (!s && !n_clips && dev >= 0) {
        features_destroy(f);
        return app_fail(a, STATUS_INVALID, "bnstats: device=%s: no clip of the %s split was recorded by it",
                        dataset_device_name(a->ds, dev), dataset_split_name(split));
    }
    if (!s && !n_clips) s = status_set(STATUS_INVALID, "no clip of the split loaded");
    if (s) {
        features_destroy(f);
        return app_fail(a, s, "bnstats: split=%s: %s", dataset_split_name(split), status_detail());
    }
    struct eval_result *eb = evaluate(a, "bnstats");
    struct bnstats_report r;
    s = compress_update_bn(a->model, NULL, f->x, n_clips, f->n_channels, f->n_mels, f->n_frames,
                           n > 0 ? (int)n : n_clips, (int)batch, a->seed, &a->progress, &r);
    features_destroy(f);
    if (s) {
        eval_result_destroy(eb);
        return app_fail(a, s, "%s (the statistics are as they were)", status_detail());
    }
    app_views_changed(a);
    struct eval_result *ec = eb ? evaluate(a, "bnstats") : NULL;
    char c1[32], of[96] = "";
    if (dev >= 0) snprintf(of, sizeof of, " recorded by %s", dataset_device_name(a->ds, dev));
    app_out(a, "bnstats: %d BN layers (%s channels) recomputed on %d clips of the %s split%s, %d batches of up to %d "
            "in train mode, each weighing the same; means moved by up to %.3g, variances by a factor of %.3g to %.3g\n",
            r.n_bn, fmt_count(c1, sizeof c1, r.channels), r.n_clips, dataset_split_name(split), of, r.n_batches, r.batch,
            r.mean_shift, r.var_ratio_min, r.var_ratio_max);
    if (a->model->g->act_quant)
        app_out(a, "(the int8 activation scales were calibrated with the old statistics: `quantize int8` again)\n");
    accuracy_table(a, eb, ec);
    keep_after(a, eb, ec);
    return STATUS_OK;
}

static void budget_line(struct app *a, const char *what, double have, double limit, const char *shown,
                        const char *l, int *fits)
{
    if (limit < 0) return;
    int ok = have <= limit;
    *fits &= ok;
    app_out(a, "  %-10s %14s  limit %12s  %s", what, shown, l, ok ? "fits" : "OVER");
    if (limit > 0) app_out(a, " (%+.1f%% of the limit)", 100 * (have - limit) / limit);
    app_out(a, "\n");
}

int cmd_budget(struct app *a, int argc, char **argv)
{
    if (app_need_model(a, "budget")) return STATUS_INVALID;
    double macs = -1, params = -1, bytes = -1;
    int prec = 4;
    for (int i = 1; i < argc; i++) {
        char *v = arg_split(argv[i]);
        const char *k = argv[i];
        if (!v) return app_fail(a, STATUS_INVALID, "budget: expected key=value, got '%s'", argv[i]);
        if (!strcmp(k, "macs")) {
            if (arg_count(a, "budget", k, v, 0, &macs)) return STATUS_INVALID;
        } else if (!strcmp(k, "params")) {
            if (arg_count(a, "budget", k, v, 0, &params)) return STATUS_INVALID;
        } else if (!strcmp(k, "bytes")) {
            if (arg_count(a, "budget", k, v, 0, &bytes)) return STATUS_INVALID;
        } else if (!strcmp(k, "precision")) {
            if (!strcmp(v, "fp32")) prec = 4;
            else if (!strcmp(v, "fp16")) prec = 2;
            else if (!strcmp(v, "int8")) prec = 1;
            else return app_fail(a, STATUS_INVALID, "budget: precision=%s: expected fp32, fp16 or int8", v);
        } else {
            return app_fail(a, STATUS_INVALID, "budget: unknown option '%s' (macs=, params=, bytes=, precision=)", k);
        }
    }
    struct budget_counts c;
    if (counts(a, "budget", &c)) return STATUS_INVALID;
    char s1[32], s2[32], s3[32], s4[32];
    app_out(a, "budget of %s: %s parameters (%s deployed: non-zero, folded BN gammas out), %s MACs per clip, %s at %s\n", a->model_name,
            fmt_count(s1, sizeof s1, c.params), fmt_count(s2, sizeof s2, c.params_kept), fmt_si(s3, sizeof s3, c.macs),
            fmt_bytes(s4, sizeof s4, (double)prec * (double)c.params_kept), prec == 4 ? "fp32" : prec == 2 ? "fp16" : "int8");
    int fits = 1;
    char l[32];
    budget_line(a, "MACs", c.macs, macs, fmt_si(s1, sizeof s1, c.macs), fmt_si(l, sizeof l, macs), &fits);
    budget_line(a, "params", (double)c.params_kept, params, fmt_count(s2, sizeof s2, c.params_kept),
                fmt_count(l, sizeof l, (long)params), &fits);
    double b = (double)prec * (double)c.params_kept;
    budget_line(a, "bytes", b, bytes, fmt_bytes(s3, sizeof s3, b), fmt_bytes(l, sizeof l, bytes), &fits);
    if (macs < 0 && params < 0 && bytes < 0) app_out(a, "(no limits given: macs=, params=, bytes=)\n");
    else app_out(a, "%s\n", fits ? "the model fits the budget" : "the model does not fit the budget");
    return STATUS_OK;
}
