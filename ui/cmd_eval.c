/* cmd_eval.c: eval and predict: how well the session's model does on a data set split,
 * and what it says about one clip. Thin: options are checked first, then one library call
 * (eval_dataset, predict_file / predict_clip) does the work, and the result is rendered. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "basin/core/fs.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/core/strbuf.h"
#include "basin/data/dataset.h"
#include "basin/dsp/frontend.h"
#include "basin/model/model.h"
#include "basin/train/eval.h"
#include "basin/train/predict.h"
#include "commands.h"
#include "job.h"
#include "views.h"
#include "render.h"
#include "session.h"

/* A number of seconds in (0, max]; fails naming the key. */
static int arg_seconds(struct app *a, const char *cmd, const char *key, const char *value, double max,
                       double *out)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (end == value || *end || errno || !(v > 0 && v <= max))
        return app_fail(a, STATUS_INVALID, "%s: %s=%s: seconds, more than 0 and at most %g", cmd, key, value, max);
    *out = v;
    return STATUS_OK;
}

/* ----------------------------------------------------------------------------- eval */

static void pct(char *buf, size_t n, const struct eval_group *g, int macro)
{
    if (!g->n) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.1f", 100 * (macro ? g->acc_macro : g->acc));
}

static void loss(char *buf, size_t n, const struct eval_group *g, int macro)
{
    if (!g->n) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.3f", macro ? g->logloss_macro : g->logloss);
}

/* One table row: name, a mark, clips, accuracy and log loss, micro and macro. */
static void group_row(struct app *a, int w, const char *name, const char *mark, const struct eval_group *g)
{
    char acc[16], accm[16], ll[16], llm[16];
    pct(acc, sizeof acc, g, 0), pct(accm, sizeof accm, g, 1);
    loss(ll, sizeof ll, g, 0), loss(llm, sizeof llm, g, 1);
    app_out(a, "  %-*s %-7s %6ld  %6s %6s  %8s %8s\n", w, name, mark, g->n, acc, accm, ll, llm);
}

static void group_header(struct app *a, int w, const char *what)
{
    app_out(a, "  %-*s %-7s %6s  %6s %6s  %8s %8s\n", w, what, "", "clips", "acc %", "macro", "logloss", "macro");
}

static void print_confusion(struct app *a, const struct eval_result *r, const struct dataset *ds)
{
    const int M = r->n_classes;
    int w = 10;
    for (int k = 0; k < M; k++) {
        int l = (int)strlen(dataset_class_name(ds, k)) + 4;
        if (l > w) w = l;
    }
    long most = 1;
    for (long i = 0; i < (long)M * M; i++)
        if (r->confusion[i] > most) most = r->confusion[i];
    int cw = snprintf(NULL, 0, "%ld", most) + 1;
    if (cw < 4) cw = 4;
    app_out(a, "confusion (rows: true class, columns: predicted class by number)\n  %-*s", w, "");
    for (int k = 0; k < M; k++) app_out(a, "%*d", cw, k);
    app_out(a, "\n");
    for (int y = 0; y < M; y++) {
        char name[300];
        snprintf(name, sizeof name, "%2d %s", y, dataset_class_name(ds, y));
        app_out(a, "  %-*s", w, name);
        for (int k = 0; k < M; k++) {
            long c = r->confusion[(long)y * M + k];
            if (c || k == y) app_out(a, "%*ld", cw, c);
            else app_out(a, "%*s", cw, ".");
        }
        app_out(a, "\n");
    }
}

/* eval [split=train|evaluate|test|all] [by=device|class] [--csv FILE] */
struct eval_job {
    struct app *a;
    struct model *m;
    struct frontend_params p;
    const char *from;
    struct eval_opts o;
    enum dataset_split split;
    char by[8];
    char csv[1024];
    struct eval_result *r;
};

static int eval_work(struct job *j, void *arg)
{
    struct eval_job *e = arg;
    return eval_dataset(&e->r, e->m, e->a->ds, &e->o, job_progress(j));
}

/* The tables of an evaluation, and its CSV files when asked. */
static int eval_report(struct app *a, struct eval_job *e)
{
    struct model *m = e->m;
    const struct eval_result *r = e->r;
    const struct frontend_params p = e->p;
    const char *from = e->from, *by = e->by, *csv = e->csv[0] ? e->csv : NULL;
    const enum dataset_split split = e->split;
    const struct dataset *ds = a->ds;
    int s = STATUS_OK;
    const char *split_name = split == DATASET_SPLIT_ANY ? "all" : dataset_split_name(split);
    if (split == DATASET_SPLIT_ANY) app_out(a, "eval: %s on all clips of %s: %d clips", arch_name(m->cfg.arch), a->ds_path, r->n);
    else app_out(a, "eval: %s on the %s split of %s: %d clips", arch_name(m->cfg.arch), split_name, a->ds_path, r->n);
    if (r->n_skipped) app_out(a, " (%d skipped: they failed to load)", r->n_skipped);
    app_out(a, "\n  %s front end (%s), %.2f s clips (%d frames), %s\n", r->preset,
            !strcmp(from, "model") ? "the model's" : "the session's: the model has none",
            (double)r->n_samples / p.sample_rate_hz, r->n_frames,
            r->normalised ? "normalised with the model's statistics (basin.norm)" : "not normalised (no basin.norm)");
    char acc[16], accm[16], ll[16], llm[16];
    pct(acc, sizeof acc, &r->all, 0), pct(accm, sizeof accm, &r->all, 1);
    loss(ll, sizeof ll, &r->all, 0), loss(llm, sizeof llm, &r->all, 1);
    app_out(a, "overall: accuracy %s %% (macro %s %%), log loss %s (macro %s)\n", acc, accm, ll, llm);
    int w = 14;
    if (!strcmp(by, "device")) {
        for (int d = 0; d < r->n_devices; d++) {
            int l = (int)strlen(dataset_device_name(ds, d));
            if (l > w) w = l;
        }
        group_header(a, w, "device");
        for (int d = 0; d < r->n_devices; d++)
            if (r->per_device[d].n)
                group_row(a, w, dataset_device_name(ds, d), r->device_seen[d] ? "seen" : "unseen", &r->per_device[d]);
        if (r->seen.n) group_row(a, w, "seen devices", "", &r->seen);
        if (r->unseen.n) group_row(a, w, "unseen devices", "", &r->unseen);
        app_out(a, "  (seen: the device has clips in the train split; macro: the mean over classes)\n");
    } else {
        for (int k = 0; k < r->n_classes; k++) {
            int l = (int)strlen(dataset_class_name(ds, k));
            if (l > w) w = l;
        }
        group_header(a, w, "class");
        for (int k = 0; k < r->n_classes; k++) group_row(a, w, dataset_class_name(ds, k), "", &r->per_class[k]);
    }
    print_confusion(a, r, ds);
    if (csv) {
        char conf[FS_PATH_MAX];
        s = eval_confusion_path(csv, conf, sizeof conf);
        if (!s) s = eval_write_csv(r, ds, csv);
        if (!s) app_out(a, "wrote %s (metrics) and %s (confusion)\n", csv, conf);
        if (!s) app_result_add(a, csv), app_result_add(a, conf);
    }
    if (s) return app_fail_in(a, s, "eval");
    return STATUS_OK;
}

/* On the UI thread: print the report and keep the result for the confusion and devices
 * views. */
static void eval_done(struct job *j, void *arg, int status)
{
    (void)j;
    struct eval_job *e = arg;
    struct app *a = e->a;
    if (status) {
        app_fail_in(a, status, "eval");
    } else if (eval_report(a, e) == STATUS_OK) {
        app_keep_eval(a, e->r, e->m, e->split);
        e->r = NULL;
    }
    eval_result_destroy(e->r);
    free(e);
}

int cmd_eval(struct app *a, int argc, char **argv)
{
    enum dataset_split split = DATASET_SPLIT_EVAL;
    const char *csv = NULL, *by = "device";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--csv")) {
            if (i + 1 >= argc) return app_fail(a, STATUS_INVALID, "eval: --csv needs a FILE");
            csv = argv[++i];
            continue;
        }
        char *v = arg_split(argv[i]);
        if (!v) {
            return app_fail(a, STATUS_INVALID, "eval: unexpected '%s' (split=train|evaluate|test|all, "
                                               "by=device|class, --csv FILE)", argv[i]);
        } else if (!strcmp(argv[i], "split")) {
            if (!strcmp(v, "all")) split = DATASET_SPLIT_ANY;
            else if (dataset_split_parse(v, &split) || split == DATASET_SPLIT_NONE)
                return app_fail(a, STATUS_INVALID, "eval: split=%s: train, evaluate, test or all", v);
        } else if (!strcmp(argv[i], "by")) {
            if (strcmp(v, "device") && strcmp(v, "class"))
                return app_fail(a, STATUS_INVALID, "eval: by=%s: device or class", v);
            by = v;
        } else if (!strcmp(argv[i], "csv")) {
            csv = v;
        } else {
            return app_fail(a, STATUS_INVALID, "eval: unknown option '%s' (split=train|evaluate|test|all, "
                                               "by=device|class, --csv FILE)", argv[i]);
        }
    }
    if (csv && !*csv) return app_fail(a, STATUS_INVALID, "eval: --csv needs a FILE");
    if (app_need_model(a, "eval")) return STATUS_INVALID;
    if (app_need_dataset(a, "eval")) return STATUS_INVALID;
    struct eval_job *e = calloc(1, sizeof *e);
    if (!e) return app_fail(a, STATUS_NOMEM, "eval: out of memory");
    e->a = a;
    e->m = a->model;
    session_frontend(a, &e->p, &e->from);
    e->o = (struct eval_opts){.split = split, .frontend = &e->p};
    e->split = split;
    snprintf(e->by, sizeof e->by, "%s", by);
    if (csv) snprintf(e->csv, sizeof e->csv, "%s", csv);
    char name[1200];
    snprintf(name, sizeof name, "eval split=%s by=%s%s%s", split == DATASET_SPLIT_ANY ? "all" : dataset_split_name(split),
             by, csv ? " --csv " : "", csv ? csv : "");
    struct job_desc d = {.name = name, .work = eval_work, .done = eval_done, .arg = e};
    return app_run_job(a, &d, APP_HOLD_MODEL_READ | APP_HOLD_DATA);
}

/* ----------------------------------------------------------------------------- predict */

static int write_probs_csv(const char *path, const struct model *m, const float *probs, int n)
{
    struct strbuf b = {0};
    char nb[32];
    strbuf_puts(&b, "label,probability\n");
    for (int k = 0; k < n; k++) {
        const char *name = predict_label(m, k, nb, sizeof nb);
        if (strpbrk(name, ",\"\r\n")) {
            strbuf_puts(&b, "\"");
            for (const char *c = name; *c; c++) {
                if (*c == '"') strbuf_puts(&b, "\"\"");
                else strbuf_put(&b, c, 1);
            }
            strbuf_puts(&b, "\"");
        } else {
            strbuf_puts(&b, name);
        }
        strbuf_printf(&b, ",%.9g\n", probs[k]);
    }
    int s = b.failed ? STATUS_NOMEM : fs_write_file(path, b.p, b.n, 0);
    strbuf_fini(&b);
    return s;
}

static const char *window_from_words(enum predict_window_source f)
{
    return f == PREDICT_WINDOW_GIVEN ? "given with window=" : f == PREDICT_WINDOW_MODEL
               ? "the model's training length (basin.input)" : "the default: the model has no basin.input";
}

/* predict [PATH] [tta=N] [top=K] [--csv FILE] [window=S] [hop=S] [seed=N] */
int cmd_predict(struct app *a, int argc, char **argv)
{
    const char *path = NULL, *csv = NULL;
    long tta = 0, top = 5, seed = (long)(a->seed & 0x7fffffffffffffffULL);
    int top_given = 0;
    double window = 0, hop = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--csv")) {
            if (i + 1 >= argc) return app_fail(a, STATUS_INVALID, "predict: --csv needs a FILE");
            csv = argv[++i];
            continue;
        }
        char *v = arg_split(argv[i]);
        if (!v) {
            if (path) return app_fail(a, STATUS_INVALID, "predict: one clip at a time ('%s' and '%s')", path, argv[i]);
            path = argv[i];
        } else if (!strcmp(argv[i], "tta")) {
            if (arg_int(a, "tta", v, 0, 10000, &tta)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "top")) {
            if (arg_int(a, "top", v, 1, 100000, &top)) return STATUS_INVALID;
            top_given = 1;
        } else if (!strcmp(argv[i], "seed")) {
            if (arg_int(a, "seed", v, 0, 0x7fffffffffffffffL, &seed)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "window")) {
            if (arg_seconds(a, "predict", "window", v, 3600, &window)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "hop")) {
            if (arg_seconds(a, "predict", "hop", v, 3600, &hop)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "csv")) {
            csv = v;
        } else {
            return app_fail(a, STATUS_INVALID, "predict: unknown option '%s' (tta=N, top=K, --csv FILE, window=S, "
                                               "hop=S, seed=N)", argv[i]);
        }
    }
    if (csv && !*csv) return app_fail(a, STATUS_INVALID, "predict: --csv needs a FILE");
    if (app_need_model(a, "predict")) return STATUS_INVALID;
    struct model *m = a->model;
    const int M = m->cfg.classes;
    if (top > M) {
        if (top_given) return app_fail(a, STATUS_INVALID, "top=%ld: out of range 1..%d (the model's classes)", top, M);
        top = M;
    }
    if (hop > 0 && window > 0 && hop > window)
        return app_fail(a, STATUS_INVALID, "predict: hop=%g is longer than window=%g: windows would skip audio", hop, window);
    if (!path && !a->clip.x) return app_fail(a, STATUS_INVALID, "predict: which clip? (predict PATH, or clip PATH first)");
    struct frontend_params p;
    const char *from;
    session_frontend(a, &p, &from);
    const struct predict_opts o = {.frontend = &p, .window_s = window, .hop_s = hop, .tta = (int)tta,
                                   .seed = (uint64_t)seed};
    struct predict_result *r = NULL;
    const char *label = path ? path : a->clip_path;
    int s = path ? predict_file(&r, m, path, &o, &a->progress) : predict_clip(&r, m, &a->clip, &o, &a->progress);
    if (s) return path ? app_fail(a, s, "predict: %s", status_detail()) : app_fail_in(a, s, "predict");
    const double rate = r->sample_rate_hz, clip_s = r->n_samples / rate, win_s = r->window_samples / rate;
    app_out(a, "%s: %d Hz, %d channel%s, %.2f s; %s front end (%s) at %d Hz, %d x %d x %d per window%s\n", label,
            r->file_rate_hz, r->file_channels, r->file_channels == 1 ? "" : "s", clip_s, p.preset,
            !strcmp(from, "model") ? "the model's" : "the session's: the model has none", r->sample_rate_hz,
            r->n_channels, r->n_mels, r->n_frames, r->normalised ? ", normalised with basin.norm" : "");
    if (r->n_windows == 1)
        app_out(a, "one window of %.2f s (%s)%s\n", win_s, window_from_words(r->window_from),
                r->tiled ? "; the clip is shorter, so it is tiled (repeated) to fill the window, as training pads" : "");
    else
        app_out(a, "%d windows of %.2f s (%s), every %.2f s%s; the probabilities are their mean\n", r->n_windows,
                win_s, window_from_words(r->window_from), r->hop_samples / rate,
                r->window_start[r->n_windows - 1] % r->hop_samples ? ", the last one ending at the clip's end" : "");
    if (r->tta)
        app_out(a, "test-time augmentation: the mean over %d SpecAugment draws (%d x %d frames, %d x %d mel bins, "
                   "seed %ld)\n", r->tta, r->time_stripes, r->time_width, r->freq_stripes, r->freq_width, seed);
    int *idx = mem_alloc(sizeof *idx * (size_t)M);
    if (!idx) {
        predict_result_destroy(r);
        return app_fail(a, STATUS_NOMEM, "predict: out of memory");
    }
    predict_top(r->probs, M, (int)top, idx);
    int w = 5;
    char nb[32];
    for (int i = 0; i < top; i++) {
        int l = (int)strlen(predict_label(m, idx[i], nb, sizeof nb));
        if (l > w) w = l;
    }
    for (int i = 0; i < top; i++)
        app_out(a, "  %2d. %-*s %.4f\n", i + 1, w, predict_label(m, idx[i], nb, sizeof nb), r->probs[idx[i]]);
    if (r->n_windows > 1) {
        app_out(a, "  window  start s  top-1\n");
        for (int k = 0; k < r->n_windows; k++) {
            int best;
            predict_top(r->window_probs + (long)k * M, M, 1, &best);
            app_out(a, "  %6d %8.2f  %s %.4f\n", k + 1, r->window_start[k] / rate,
                    predict_label(m, best, nb, sizeof nb), r->window_probs[(long)k * M + best]);
        }
    }
    mem_free(idx);
    /* the probabilities view */
    struct app_views *v = &a->views;
    float *copy = malloc(sizeof *copy * (size_t)M);
    char **labels = calloc((size_t)M + 1, sizeof *labels);
    if (copy && labels) {
        memcpy(copy, r->probs, sizeof *copy * (size_t)M);
        for (int k = 0; k < M; k++) labels[k] = strdup(predict_label(m, k, nb, sizeof nb));
        free(v->probs);
        app_free_names(v->probs_labels);
        v->probs = copy, v->probs_labels = labels, v->n_probs = M;
        snprintf(v->probs_title, sizeof v->probs_title, "%.200s: %s%s", label,
                 r->n_windows > 1 ? "the mean over windows" : "class probabilities", r->tta ? " (TTA)" : "");
        v->current = VIEW_PROBS;
        app_views_changed(a);
    } else {
        free(copy);
        free(labels);
    }
    if (csv) {
        s = write_probs_csv(csv, m, r->probs, M);
        if (!s) app_out(a, "wrote %s (label,probability for %d classes)\n", csv, M);
        if (!s) app_result_add(a, csv);
    }
    predict_result_destroy(r);
    if (s) return app_fail_in(a, s, "predict");
    return STATUS_OK;
}
