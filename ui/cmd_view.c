/* cmd_view.c: view and compare, and drawing the session's views into a canvas (the split
 * view's pane, or printed headless). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "basin/core/status.h"
#include "basin/data/dataset.h"
#include "basin/dsp/mel.h"
#include "basin/model/model.h"
#include "basin/train/eval.h"
#include "basin/train/pipeline.h"
#include "canvas.h"
#include "commands.h"
#include "export.h"
#include "render.h"
#include "views.h"

/* The model table as `info` prints it, in a new string (free). */
static char *model_text(struct app *a)
{
    if (!a->model) return strdup("model: none yet (new, load, or the default model with info)");
    char *text = NULL, *err = NULL;
    size_t n = 0, ne = 0;
    FILE *out = open_memstream(&text, &n), *e = open_memstream(&err, &ne);
    if (!out || !e) {
        if (out) fclose(out);
        if (e) fclose(e);
        return NULL;
    }
    FILE *so = a->out, *se = a->err;
    const char *cmd = a->cmd;
    a->out = out, a->err = e;
    char *argv[] = {(char *)"info", NULL};
    cmd_info(a, 1, argv);
    a->out = so, a->err = se, a->cmd = cmd;
    fclose(out);
    fclose(e);
    free(err);
    return text;
}

void app_draw_view(struct app *a, int kind, struct canvas *c)
{
    struct app_views *v = &a->views;
    switch ((enum view_kind)kind) {
    case VIEW_SPEC:
        if (v->spec)
            view_spec(c, v->spec_title, v->spec, v->spec_mels, v->spec_frames, &v->spec_fe, v->spec_lo, v->spec_hi,
                      v->spec_unit);
        else
            canvas_text(c, 0, 0, CANVAS_NONE, "spectrogram: no clip yet (clip PATH, or spec PATH)");
        break;
    case VIEW_MODEL: {
        char *t = model_text(a);
        view_text(c, t ? t : "");
        free(t);
        break;
    }
    case VIEW_CURVES:
        if (a->curves) view_curves(c, a->curves);
        break;
    case VIEW_CONFUSION:
        if (v->eval) view_confusion(c, v->eval_title, v->eval, (const char *const *)v->eval_labels);
        else canvas_text(c, 0, 0, CANVAS_NONE, "confusion matrix: no evaluation yet (eval)");
        break;
    case VIEW_DEVICES:
        if (v->eval) view_devices(c, v->eval_title, v->eval, (const char *const *)v->eval_devices);
        else canvas_text(c, 0, 0, CANVAS_NONE, "accuracy per device: no evaluation yet (eval)");
        break;
    case VIEW_PROBS:
        if (v->probs) view_probs(c, v->probs_title, v->probs, v->n_probs, (const char *const *)v->probs_labels);
        else canvas_text(c, 0, 0, CANVAS_NONE, "class probabilities: no prediction yet (predict)");
        break;
    default:
        if (kind >= 0 && kind < (int)(sizeof v->slots / sizeof v->slots[0]) && v->slots[kind].draw)
            v->slots[kind].draw(c, v->slots[kind].data);
        else
            canvas_textf(c, 0, 0, CANVAS_NONE, "%s: nothing yet (help view)", view_name((enum view_kind)kind));
        break;
    }
}

void app_view_set(struct app *a, int kind, void (*draw)(struct canvas *c, void *data), void *data,
                  void (*release)(void *data))
{
    struct app_view_slot *s = &a->views.slots[kind];
    if (s->release && s->data && s->data != data) s->release(s->data);
    s->draw = draw, s->data = data, s->release = release, s->export_png = NULL;
    a->views.current = kind;
    app_views_changed(a);
}

/* Print a view headless: the terminal's width (or 100), rows lines. */
static void print_view(struct app *a, int kind, int rows)
{
    struct canvas c;
    int w = render_columns(a->out);
    if (canvas_init(&c, w, rows, canvas_mode_for(a->out))) return;
    app_draw_view(a, kind, &c);
    fflush(a->out);
    canvas_print(&c, a->out);
    canvas_fini(&c);
}

int cmd_view(struct app *a, int argc, char **argv)
{
    if (argc > 3) return app_fail(a, STATUS_INVALID, "usage: view [NAME] [rows=N]");
    if (argc == 1) {
        app_out(a, "views:");
        for (int k = 0; k < VIEW_COUNT; k++)
            app_out(a, " %s%s", view_name((enum view_kind)k), k == a->views.current ? " (shown)" : "");
        app_out(a, "\n");
        return STATUS_OK;
    }
    int kind = view_parse(argv[1]);
    if (kind < 0)
        return app_fail(a, STATUS_INVALID, "no view '%s' (spec, model, curves, confusion, devices, probs, erf, "
                                           "landscape, hessian, prune, listen)", argv[1]);
    long rows = 24;
    if (argc == 3) {
        char *val = arg_split(argv[2]);
        if (!val || strcmp(argv[2], "rows")) return app_fail(a, STATUS_INVALID, "unknown option '%s' (rows=N)", argv[2]);
        if (arg_int(a, "rows", val, 4, 500, &rows)) return STATUS_INVALID;
    }
    a->views.current = kind;
    app_views_changed(a);
    if (!a->workbench) print_view(a, kind, (int)rows);
    return STATUS_OK;
}

/* Evaluate a model file (or the session's model) on a split: a result and a name. */
static int evaluate_one(struct app *a, const char *which, enum dataset_split split, struct eval_result **r,
                        char *name, size_t n)
{
    struct model *m = NULL;
    int own = strcmp(which, "current") != 0;
    if (!own) {
        if (app_need_model(a, "compare")) return STATUS_INVALID;
        m = a->model;
        snprintf(name, n, "%.200s", a->model_name);
    } else {
        if (model_load(&m, which)) return app_fail(a, STATUS_INVALID, "%s", status_detail());
        snprintf(name, n, "%.200s", which);
    }
    struct eval_opts o = {.split = split};
    int s = eval_dataset(r, m, a->ds, &o, &a->progress);
    if (own) model_destroy(m);
    if (s) return app_fail(a, s, "%s: %s", which, status_detail());
    return STATUS_OK;
}

int cmd_compare(struct app *a, int argc, char **argv)
{
    if (argc < 3 || argc > 4) return app_fail(a, STATUS_INVALID, "usage: compare A B [split=evaluate] (A, B: model files or current)");
    enum dataset_split split = DATASET_SPLIT_EVAL;
    if (argc == 4) {
        char *v = arg_split(argv[3]);
        if (!v || strcmp(argv[3], "split")) return app_fail(a, STATUS_INVALID, "unknown option '%s' (split=...)", argv[3]);
        if (!strcmp(v, "all")) split = DATASET_SPLIT_ANY;
        else if (dataset_split_parse(v, &split)) return app_fail(a, STATUS_INVALID, "%s", status_detail());
    }
    if (!a->ds) return app_fail(a, STATUS_INVALID, "no data set (data PATH, or data default)");
    struct eval_result *r[2] = {NULL, NULL};
    char names[2][256];
    for (int k = 0; k < 2; k++)
        if (evaluate_one(a, argv[1 + k], split, &r[k], names[k], sizeof names[k])) {
            eval_result_destroy(r[0]);
            return STATUS_INVALID;
        }
    int D = dataset_n_devices(a->ds);
    const char **dev = calloc((size_t)D + 1, sizeof *dev);
    for (int d = 0; dev && d < D; d++) dev[d] = dataset_device_name(a->ds, d);
    int w = render_columns(a->out), half = w / 2, rows = D + 4;
    struct canvas c;
    int s = dev ? canvas_init(&c, w, rows, canvas_mode_for(a->out)) : STATUS_NOMEM;
    if (!s) {
        for (int k = 0; k < 2; k++) {
            struct canvas part;
            if (canvas_init(&part, k ? w - half : half - 1, rows, c.mode)) continue;
            char title[300];
            snprintf(title, sizeof title, "%c: %.1f %% (log loss %.3f)", 'A' + k, 100 * r[k]->all.acc, r[k]->all.logloss);
            view_devices(&part, title, r[k], dev);
            for (int y = 0; y < part.h; y++)
                for (int x = 0; x < part.w; x++) {
                    const struct canvas_cell *cell = canvas_at(&part, x, y);
                    canvas_set(&c, x + k * half, y, cell->ch, cell->fg, cell->bg);
                }
            canvas_fini(&part);
        }
        app_out(a, "A: %s\nB: %s\n", names[0], names[1]);
        fflush(a->out);
        canvas_print(&c, a->out);
        canvas_fini(&c);
        app_out(a, "A - B: accuracy %+.1f points (seen %+.1f, unseen %+.1f), log loss %+.3f\n",
                100 * (r[0]->all.acc - r[1]->all.acc), 100 * (r[0]->seen.acc - r[1]->seen.acc),
                100 * (r[0]->unseen.acc - r[1]->unseen.acc), r[0]->all.logloss - r[1]->all.logloss);
    }
    free(dev);
    eval_result_destroy(r[0]);
    eval_result_destroy(r[1]);
    return s ? app_fail(a, s, "out of memory") : STATUS_OK;
}

void app_view_set_export(struct app *a, int kind, int (*export_png)(const char *path, void *data, int w, int h))
{
    a->views.slots[kind].export_png = export_png;
}

/* ---- export VIEW PATH.png --------------------------------------------------------------- */

/* Mel-axis ticks: the frequency of a position along the bins, in Hz. */
static void mel_ticks(void *user, double pos, char *buf, int n)
{
    const struct frontend_params *p = user;
    double m0 = mel_from_hz(p->fmin_hz, p->mel_scale), m1 = mel_from_hz(p->fmax_hz, p->mel_scale);
    snprintf(buf, (size_t)n, "%.0f", mel_to_hz(m0 + (m1 - m0) * pos, p->mel_scale));
}

static void name_ticks(void *user, double pos, char *buf, int n)
{
    char *const *names = user;
    int count = 0;
    while (names[count]) count++;
    int i = (int)(pos * count);
    snprintf(buf, (size_t)n, "%.14s", i >= 0 && i < count ? names[i] : "");
}

static int export_view(struct app *a, int kind, const char *path, int w, int h)
{
    struct app_views *v = &a->views;
    switch ((enum view_kind)kind) {
    case VIEW_SPEC: {
        if (!v->spec) return status_set(STATUS_INVALID, "no spectrogram yet (clip PATH, or spec PATH)");
        double seconds = (double)(v->spec_frames - 1) * v->spec_fe.hop / v->spec_fe.sample_rate_hz;
        struct export_axis x = {.lo = 0, .hi = seconds, .label = "time (s)"};
        struct export_axis y = {.label = "frequency (Hz)", .ticks = mel_ticks, .user = &v->spec_fe};
        return export_heatmap_png(path, w, h, v->spec_title, v->spec, v->spec_mels, v->spec_frames, v->spec_lo,
                                  v->spec_hi, v->spec_unit, &x, &y);
    }
    case VIEW_CURVES: {
        struct curves *cv = a->curves;
        if (!cv || (!cv->n_steps && !cv->n_ep)) return status_set(STATUS_INVALID, "no training curves yet (train)");
        pthread_mutex_lock(&cv->lock);
        double lmax = 0;
        for (int i = 0; i < cv->n_steps; i++) lmax = fmax(lmax, cv->step_loss[i]);
        struct export_series loss[3] = {{cv->step_x, cv->step_loss, cv->n_steps, 0xbbbbbb, "train (per step)"},
                                        {cv->ep_x, cv->ep_train_loss, cv->n_ep, 0x1f77b4, "train (epoch)"},
                                        {cv->ep_x, cv->ep_eval_loss, cv->n_ep, 0xff7f0e, "evaluate"}};
        struct export_series acc[3] = {{cv->step_x, cv->step_acc, cv->n_steps, 0xbbbbbb, "train (per step)"},
                                       {cv->ep_x, cv->ep_train_acc, cv->n_ep, 0x1f77b4, "train (epoch)"},
                                       {cv->ep_x, cv->ep_eval_acc, cv->n_ep, 0xff7f0e, "evaluate"}};
        struct export_axis x = {.lo = 0, .hi = cv->n_epochs > 0 ? cv->n_epochs : 1, .label = "epoch"};
        struct export_axis yl = {.lo = 0, .hi = lmax > 0 ? lmax * 1.05 : 1, .label = "loss (cross-entropy)"};
        struct export_axis ya = {.lo = 0, .hi = 1, .label = "accuracy"};
        int s = export_lines2_png(path, w, h, cv->title, loss, 3, &yl, acc, 3, &ya, &x);
        pthread_mutex_unlock(&cv->lock);
        return s;
    }
    case VIEW_CONFUSION: {
        if (!v->eval) return status_set(STATUS_INVALID, "no evaluation yet (eval)");
        const int M = v->eval->n_classes;
        float *share = malloc(sizeof *share * (size_t)M * M);
        if (!share) return STATUS_NOMEM;
        for (int t = 0; t < M; t++) {
            long row = 0;
            for (int k = 0; k < M; k++) row += v->eval->confusion[(long)t * M + k];
            /* row 0 of the image is at the bottom: true class t drawn at row M - 1 - t */
            for (int k = 0; k < M; k++)
                share[(long)(M - 1 - t) * M + k] = row ? (float)v->eval->confusion[(long)t * M + k] / row : 0;
        }
        char **rev = calloc((size_t)M + 1, sizeof *rev);
        for (int t = 0; rev && t < M; t++) rev[t] = v->eval_labels[M - 1 - t];
        struct export_axis x = {.label = "predicted class", .ticks = name_ticks, .user = v->eval_labels,
                                .n_ticks = M, .centred = 1};
        struct export_axis y = {.label = "true class", .ticks = name_ticks, .user = rev, .n_ticks = M, .centred = 1};
        int s = rev ? export_heatmap_png(path, w, h, v->eval_title, share, M, M, 0, 1, "share of the row", &x, &y)
                    : STATUS_NOMEM;
        free(rev);
        free(share);
        return s;
    }
    case VIEW_DEVICES: {
        if (!v->eval) return status_set(STATUS_INVALID, "no evaluation yet (eval)");
        const int D = v->eval->n_devices;
        const char **names = calloc((size_t)D + 2, sizeof *names);
        double *val = calloc((size_t)D + 2, sizeof *val);
        unsigned *rgb = calloc((size_t)D + 2, sizeof *rgb);
        char *pooled[2] = {(char *)"seen devices", (char *)"unseen devices"};
        int n = 0, s = names && val && rgb ? STATUS_OK : STATUS_NOMEM;
        for (int d = 0; !s && d < D; d++)
            if (v->eval->per_device[d].n) {
                names[n] = v->eval_devices[d], val[n] = v->eval->per_device[d].acc;
                rgb[n++] = v->eval->device_seen[d] ? 0x1f77b4 : 0xff7f0e;
            }
        if (!s && v->eval->seen.n) names[n] = pooled[0], val[n] = v->eval->seen.acc, rgb[n++] = 0x1f77b4;
        if (!s && v->eval->unseen.n) names[n] = pooled[1], val[n] = v->eval->unseen.acc, rgb[n++] = 0xff7f0e;
        if (!s) s = export_bars_png(path, w, h, v->eval_title, names, val, rgb, n, "accuracy (%)");
        free(names), free(val), free(rgb);
        return s;
    }
    case VIEW_PROBS: {
        if (!v->probs) return status_set(STATUS_INVALID, "no prediction yet (predict)");
        double *val = calloc((size_t)v->n_probs + 1, sizeof *val);
        if (!val) return STATUS_NOMEM;
        for (int k = 0; k < v->n_probs; k++) val[k] = v->probs[k];
        int s = export_bars_png(path, w, h, v->probs_title, (const char *const *)v->probs_labels, val, NULL, v->n_probs,
                                "probability (%)");
        free(val);
        return s;
    }
    default:
        if (kind < 0 || kind >= (int)(sizeof v->slots / sizeof v->slots[0]))
            return status_set(STATUS_UNSUPPORTED, "the %s view has no image export", view_name((enum view_kind)kind));
        if (v->slots[kind].export_png) return v->slots[kind].export_png(path, v->slots[kind].data, w, h);
        return status_set(STATUS_UNSUPPORTED, "the %s view has no image export%s", view_name((enum view_kind)kind),
                          v->slots[kind].draw ? "" : " (nothing to show yet)");
    }
}

int cmd_export(struct app *a, int argc, char **argv)
{
    if (argc < 3) return app_fail(a, STATUS_INVALID, "usage: export VIEW PATH.png [width=W] [height=H]");
    int kind = view_parse(argv[1]);
    if (kind < 0 || kind == VIEW_MODEL) return app_fail(a, STATUS_INVALID, "no figure '%s' to export (spec, curves, "
                                                        "confusion, devices, probs, erf, landscape, ...)", argv[1]);
    const char *path = argv[2], *dot = strrchr(path, '.');
    if (!dot || strcmp(dot, ".png")) return app_fail(a, STATUS_INVALID, "%s: export writes PNG: name it .png", path);
    long w = 1000, h = 600;
    for (int i = 3; i < argc; i++) {
        char *v = arg_split(argv[i]);
        if (v && !strcmp(argv[i], "width")) {
            if (arg_int(a, "width", v, 200, 10000, &w)) return STATUS_INVALID;
        } else if (v && !strcmp(argv[i], "height")) {
            if (arg_int(a, "height", v, 150, 10000, &h)) return STATUS_INVALID;
        } else {
            return app_fail(a, STATUS_INVALID, "unknown option '%s' (width=, height=)", argv[i]);
        }
    }
    if (kind == VIEW_CURVES && h == 600 && argc <= 3) h = 900;
    int s = export_view(a, kind, path, (int)w, (int)h);
    if (s) return app_fail(a, s, "%s", status_detail());
    app_out(a, "wrote %s (%ld x %ld, the %s view)\n", path, w, h, view_name((enum view_kind)kind));
    app_result_add(a, path);
    return STATUS_OK;
}
