/* cmd_view.c: view and compare, and drawing the session's views into a canvas (the split
 * view's pane, or printed headless). */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "basin/core/status.h"
#include "basin/data/dataset.h"
#include "basin/model/model.h"
#include "basin/train/eval.h"
#include "basin/train/pipeline.h"
#include "canvas.h"
#include "commands.h"
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
    s->draw = draw, s->data = data, s->release = release;
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
            snprintf(title, sizeof title, "%s: %.1f %% (log loss %.3f)", names[k], 100 * r[k]->all.acc, r[k]->all.logloss);
            view_devices(&part, title, r[k], dev);
            for (int y = 0; y < part.h; y++)
                for (int x = 0; x < part.w; x++) {
                    const struct canvas_cell *cell = canvas_at(&part, x, y);
                    canvas_set(&c, x + k * half, y, cell->ch, cell->fg, cell->bg);
                }
            canvas_fini(&part);
        }
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
