/* cmd_analysis.c: erf and hessian, the analyses of src/analysis that look inside a model:
 * its effective receptive field and the curvature of its loss. Each checks its options,
 * runs one library call (erf_model, hessian_model) as a job whose partial results keep the
 * view (erf, hessian) live, and prints the result when the job ends; headless the ERF's
 * figure is printed too. The views draw from a copy of the latest result, under a lock the
 * job's callback takes to replace it. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "basin/analysis/erf.h"
#include "basin/analysis/hessian.h"
#include "basin/core/fs.h"
#include "basin/core/status.h"
#include "basin/core/strbuf.h"
#include "basin/data/dataset.h"
#include "basin/model/model.h"
#include "basin/model/safetensors.h"
#include "canvas.h"
#include "commands.h"
#include "export.h"
#include "job.h"
#include "render.h"
#include "session.h"
#include "views.h"

enum { COLOR_LINE = 15, COLOR_BAR = 39, COLOR_BAR2 = 208 };

static int arg_real(struct app *a, const char *cmd, const char *key, const char *value, double lo, double hi,
                    double *out)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (!*value || *end || !isfinite(v))
        return app_fail(a, STATUS_INVALID, "%s: %s=%s: not a number", cmd, key, value);
    if (!(v >= lo && v <= hi)) return app_fail(a, STATUS_INVALID, "%s: %s=%s: out of range %g..%g", cmd, key, value, lo, hi);
    *out = v;
    return STATUS_OK;
}

/* split=train|evaluate|test|all */
static int arg_split_name(struct app *a, const char *cmd, const char *v, enum dataset_split *split)
{
    if (!strcmp(v, "all")) *split = DATASET_SPLIT_ANY;
    else if (dataset_split_parse(v, split) || *split == DATASET_SPLIT_NONE)
        return app_fail(a, STATUS_INVALID, "%s: split=%s: train, evaluate, test or all", cmd, v);
    return STATUS_OK;
}

static const char *split_words(enum dataset_split s)
{
    return s == DATASET_SPLIT_ANY ? "the data set" : s == DATASET_SPLIT_TRAIN ? "the train split"
           : s == DATASET_SPLIT_EVAL ? "the evaluate split" : "the test split";
}

/* Completion: the values of this file's keys, then the keys. */
static int complete_from(const char *text, const char *const *options, const char *const (*values)[6], char *buf,
                         int nb, const char **out, int max)
{
    int n = 0, used = 0;
    const char *eq = strchr(text, '=');
    for (int i = 0; options[i]; i++) {
        size_t k = strlen(options[i]);
        if (eq) {
            if (strncmp(text, options[i], k) || options[i][k - 1] != '=') continue;
            for (int v = 0; values[i][v] && n < max; v++) {
                int w = snprintf(buf + used, (size_t)(nb - used), "%s%s", options[i], values[i][v]);
                if (w < 0 || used + w + 1 > nb) break;
                if (!strncmp(buf + used, text, strlen(text))) out[n++] = buf + used;
                used += w + 1;
            }
        } else if (!strncmp(options[i], text, strlen(text)) && n < max) {
            out[n++] = options[i];
        }
    }
    return n;
}

const char *const erf_options[] = {"layer=", "n=", "split=", "input=", "seed=", "compare=", "--csv", NULL};
static const char *const erf_values[][6] = {
    {NULL}, {NULL}, {"train", "evaluate", "test", "all", NULL}, {"data", "zero", "noise", NULL}, {NULL}, {NULL}, {NULL}};
const char *const hessian_options[] = {"top=", "iters=", "tol=", "probes=", "trace=", "by=", "split=", "n=",
                                       "seed=", "hvp=", "step=", "--csv", NULL};
static const char *const hessian_values[][6] = {{NULL}, {NULL}, {NULL}, {NULL}, {"on", "off", NULL}, {"layer", "none", NULL},
                                                {"train", "evaluate", "test", "all", NULL}, {NULL}, {NULL},
                                                {"exact", "fd", NULL}, {NULL}, {NULL}};

int complete_erf(const char *text, int word, char *const *words, const char **out, int max, char *buf, int n)
{
    (void)word, (void)words;
    /* the options and their fixed values (layer= names come from `info`) */
    return complete_from(text, erf_options, erf_values, buf, n, out, max);
}

int complete_hessian(const char *text, int word, char *const *words, const char **out, int max, char *buf, int n)
{
    (void)word, (void)words;
    return complete_from(text, hessian_options, hessian_values, buf, n, out, max);
}

/* ----------------------------------------------------------------------------- erf view */

struct erf_view {
    pthread_mutex_t lock;
    struct erf_result *r;   /* the latest result (owned), NULL before the first batch */
    char what[400];         /* over which inputs ("100 clips of the train split") */
    int compare;            /* compare=: two models side by side */
    struct erf_result *r2;  /* compare=: the second model's (owned), NULL before its first batch */
    char who[2][320];       /* compare=: "A: <model>", "B: <model>" */
};

static void erf_view_release(void *data)
{
    struct erf_view *v = data;
    if (!v) return;
    pthread_mutex_destroy(&v->lock);
    erf_result_destroy(v->r);
    erf_result_destroy(v->r2);
    free(v);
}

/* Cell k of a heatmap of n values drawn in px cells (canvas_heatmap's blocks) holding value i. */
static int cell_of(long i, int n, int px)
{
    return (int)(((i + 1) * px - 1) / n);
}

/* The cells a figure of r shows: the RF box within the input and a margin where there is
 * room, rows lo[0]..hi[0] and frames lo[1]..hi[1]. */
static void erf_region(const struct erf_result *r, long lo[2], long hi[2])
{
    const long size[2] = {r->n_mels, r->n_frames};
    for (int d = 0; d < 2; d++) {
        long ext = r->crop[d][1] - r->crop[d][0] + 1, m = 1 + ext / 16;
        lo[d] = r->crop[d][0] - m < 0 ? 0 : r->crop[d][0] - m;
        hi[d] = r->crop[d][1] + m >= size[d] ? size[d] - 1 : r->crop[d][1] + m;
    }
}

/* The ERF: two lines of figures, the map around the theoretical RF (the box drawn where
 * the map has room around it), offsets from the centre cell on the axes, the colour scale. */
static void draw_erf_result(struct canvas *c, const struct erf_result *r, const char *what)
{
    const int fine = c->mode != CANVAS_ASCII;
    canvas_textf(c, 0, 0, CANVAS_NONE, "ERF of %s, unit (%d, %d) of its %dx%dx%d map, %s%s", r->layer, r->unit_f,
                 r->unit_t, r->tap_c, r->tap_f, r->tap_t, what, r->n < r->n_total ? " (running)" : "");
    const int past_f = r->box[0][0] < 0 || r->box[0][1] >= r->n_mels, past_t = r->box[1][0] < 0 || r->box[1][1] >= r->n_frames;
    canvas_textf(c, 0, 1, CANVAS_NONE, "RF %ldx%ld (box%s). 68 %%: %ld cells, box %dx%d; 95 %%: %ld cells, box %dx%d",
                 r->rf[0], r->rf[1], past_f && past_t ? "; past the input" : past_f ? "; past the input in F" : past_t
                 ? "; past the input in T" : "", r->m68.cells, r->m68.box_f, r->m68.box_t, r->m95.cells, r->m95.box_f,
                 r->m95.box_t);
    long lo[2], hi[2];
    erf_region(r, lo, hi);
    const int rows = (int)(hi[0] - lo[0] + 1), cols = (int)(hi[1] - lo[1] + 1);
    const int label_w = 5, x0 = label_w + 1, y0 = 2, per = c->mode == CANVAS_COLOR ? 2 : 1;
    int w = c->w - x0 - 1, h = c->h - y0 - 4;
    if (w > cols) w = cols;
    if (h > (rows + per - 1) / per) h = (rows + per - 1) / per;
    if (w < 4 || h < 2) return;
    float *m = malloc(sizeof *m * (size_t)rows * cols);
    if (!m) return;
    for (int i = 0; i < rows; i++)
        memcpy(m + (long)i * cols, r->map + (lo[0] + i) * r->n_frames + lo[1], sizeof *m * (size_t)cols);
    canvas_heatmap(c, x0, y0, w, h, m, rows, cols, 0.0f, r->peak > 0 ? (float)r->peak : 1.0f);
    free(m);
    const int px_rows = rows < per * h ? rows : per * h, px_cols = cols < w ? cols : w;
    const int text_rows = (px_rows + per - 1) / per, top = y0 + h - text_rows;
    /* the box: a line in the margin on each side that has one */
    const long b0 = r->box[0][0] - lo[0], b1 = r->box[0][1] - lo[0], c0 = r->box[1][0] - lo[1], c1 = r->box[1][1] - lo[1];
    int xl = c0 >= 1 ? x0 + cell_of(c0, cols, px_cols) - 1 : -1;
    int xr = c1 <= cols - 2 ? x0 + cell_of(c1, cols, px_cols) + 1 : -1;
    int yb = b0 >= 1 ? y0 + h - 1 - cell_of(b0, rows, px_rows) / per + 1 : -1;
    int yt = b1 <= rows - 2 ? y0 + h - 1 - cell_of(b1, rows, px_rows) / per - 1 : -1;
    const int xa = xl >= 0 ? xl : x0, xb = xr >= 0 ? xr : x0 + px_cols - 1;
    const int ya = yt >= 0 ? yt : top, yz = yb >= 0 ? yb : y0 + h - 1;
    const uint32_t hz = fine ? 0x2500 : '-', vt = fine ? 0x2502 : '|';
    const int fg = c->mode == CANVAS_COLOR ? COLOR_LINE : CANVAS_NONE;
    for (int x = xa; x <= xb; x++) {
        if (yt >= top) canvas_set(c, x, yt, hz, fg, CANVAS_NONE);
        if (yb >= 0 && yb < y0 + h) canvas_set(c, x, yb, hz, fg, CANVAS_NONE);
    }
    for (int y = ya; y <= yz; y++) {
        if (xl >= x0) canvas_set(c, xl, y, vt, fg, CANVAS_NONE);
        if (xr >= 0 && xr < x0 + px_cols) canvas_set(c, xr, y, vt, fg, CANVAS_NONE);
    }
    if (xl >= x0 && yt >= top) canvas_set(c, xl, yt, fine ? 0x250C : '+', fg, CANVAS_NONE);
    if (xr >= 0 && xr < x0 + px_cols && yt >= top) canvas_set(c, xr, yt, fine ? 0x2510 : '+', fg, CANVAS_NONE);
    if (xl >= x0 && yb >= 0 && yb < y0 + h) canvas_set(c, xl, yb, fine ? 0x2514 : '+', fg, CANVAS_NONE);
    if (xr >= 0 && xr < x0 + px_cols && yb >= 0 && yb < y0 + h) canvas_set(c, xr, yb, fine ? 0x2518 : '+', fg, CANVAS_NONE);
    /* axes: offsets from the RF's centre cell, mel bins up, frames across */
    canvas_axis_y(c, x0, top, text_rows, label_w, (double)(lo[0] - r->centre[0]), (double)(hi[0] - r->centre[0]),
                  text_rows >= 8 ? 5 : 2, "%+.0f");
    canvas_axis_x(c, x0, y0 + h, px_cols, (double)(lo[1] - r->centre[1]), (double)(hi[1] - r->centre[1]),
                  px_cols >= 40 ? 5 : 2, "%+.0f");
    canvas_text(c, 0, y0 + h, CANVAS_NONE, "bins");
    int sw = px_cols < 30 ? px_cols : 30;
    canvas_scale(c, x0, c->h - 2, sw, 0, 1, "%.1f");
    canvas_textf(c, x0 + sw + 2, c->h - 2, CANVAS_NONE, "|d unit / d input| / peak (%.3g); frames across", r->peak);
}

/* "A (dir/model.safetensors)" -> "model.safetensors)": the file name, for narrow titles. */
static const char *short_name(const char *who)
{
    const char *slash = strrchr(who, '/');
    return slash ? slash + 1 : who + 3;
}

/* One model's figure into columns x0 .. x0 + w - 1 of c (compare=: side by side). */
static void draw_erf_half(struct canvas *c, int x0, int w, const struct erf_result *r, const char *who)
{
    struct canvas t;
    if (w < 8 || canvas_init(&t, w, c->h, c->mode)) return;
    if (r) {
        draw_erf_result(&t, r, who);
        /* the model first: the half is narrow */
        for (int x = 0; x < w; x++) canvas_set(&t, x, 0, ' ', CANVAS_NONE, CANVAS_NONE);
        canvas_textf(&t, 0, 0, CANVAS_NONE, "%c (%s: ERF of %s, unit (%d, %d)%s", who[0], short_name(who), r->layer,
                     r->unit_f, r->unit_t, r->n < r->n_total ? " (running)" : "");
    } else {
        canvas_textf(&t, 0, 0, CANVAS_NONE, "%s: computing ...", who);
    }
    for (int y = 0; y < c->h; y++)
        for (int x = 0; x < w; x++) {
            const struct canvas_cell *k = canvas_at(&t, x, y);
            canvas_set(c, x0 + x, y, k->ch, k->fg, k->bg);
        }
    canvas_fini(&t);
}

/* The view, or (compare=) both models' views side by side. */
static void draw_erf_view(struct canvas *c, const struct erf_view *v)
{
    if (v->compare) {
        int half = c->w / 2;
        draw_erf_half(c, 0, half - 1, v->r, v->who[0]);
        draw_erf_half(c, half + 1, c->w - half - 1, v->r2, v->who[1]);
    } else if (v->r) {
        draw_erf_result(c, v->r, v->what);
    } else {
        canvas_textf(c, 0, 0, CANVAS_NONE, "erf: computing, %s ...", v->what);
    }
}

static void draw_erf(struct canvas *c, void *data)
{
    struct erf_view *v = data;
    pthread_mutex_lock(&v->lock);
    draw_erf_view(c, v);
    pthread_mutex_unlock(&v->lock);
}

/* A tick of an axis whose cells are integer offsets: the cell under it. */
static void cell_tick(void *user, double pos, char *buf, int n)
{
    const struct export_axis *a = user;
    double v = a->lo + (a->hi - a->lo) * pos;
    v = fmax(a->lo + 0.5, fmin(a->hi - 0.5, v));
    snprintf(buf, (size_t)n, "%+.0f", floor(v + 0.5));
}

/* `export erf PATH.png`: the map around the theoretical RF (as the view shows it), axes in
 * cells from the RF's centre cell, the RF box and the centred boxes holding 68 % and 95 %
 * of the gradient mass. */
static int erf_export_one(const char *path, const struct erf_result *r, const char *what, int w, int h);

/* compare=: model A's figure at PATH, model B's at PATH with "-compare" before ".png". */
static int erf_export(const char *path, void *data, int w, int h)
{
    struct erf_view *v = data;
    pthread_mutex_lock(&v->lock);
    int s;
    if (!v->r) {
        s = status_set(STATUS_INVALID, "no ERF yet (erf)");
    } else if (!v->compare) {
        s = erf_export_one(path, v->r, v->what, w, h);
    } else if (!v->r2) {
        s = status_set(STATUS_INVALID, "no ERF of the second model yet (erf compare=)");
    } else {
        char what[800], p2[FS_PATH_MAX + 16];
        size_t len = strlen(path);
        const int ext = len > 4 && !strcmp(path + len - 4, ".png");
        snprintf(p2, sizeof p2, "%.*s-compare.png", (int)(ext ? len - 4 : len), path);
        snprintf(what, sizeof what, "%.300s, %.400s", v->who[0], v->what);
        s = erf_export_one(path, v->r, what, w, h);
        snprintf(what, sizeof what, "%.300s, %.400s", v->who[1], v->what);
        if (!s) s = erf_export_one(p2, v->r2, what, w, h);
    }
    pthread_mutex_unlock(&v->lock);
    return s;
}

static int erf_export_one(const char *path, const struct erf_result *r, const char *what, int w, int h)
{
    long lo[2], hi[2];
    erf_region(r, lo, hi);
    const int rows = (int)(hi[0] - lo[0] + 1), cols = (int)(hi[1] - lo[1] + 1);
    float *m = malloc(sizeof *m * (size_t)rows * cols);
    if (!m) return status_set(STATUS_NOMEM, "out of memory");
    for (int i = 0; i < rows; i++)
        memcpy(m + (long)i * cols, r->map + (lo[0] + i) * r->n_frames + lo[1], sizeof *m * (size_t)cols);
    /* cell (f, t) spans offsets [t - ct - 0.5, t - ct + 0.5] across, [f - cf - 0.5, ...] up */
    const double cf = r->centre[0], ct = r->centre[1];
    const struct export_axis xa = {.lo = lo[1] - ct - 0.5, .hi = hi[1] - ct + 0.5, .label = "frames from the RF's centre cell",
                                   .ticks = cell_tick, .user = (void *)&xa};
    const struct export_axis ya = {.lo = lo[0] - cf - 0.5, .hi = hi[0] - cf + 0.5, .label = "mel bins from the RF's centre",
                                   .ticks = cell_tick, .user = (void *)&ya};
    float bx[3][5], by[3][5];
    const double half[3][2] = {{0, 0},
                               {(r->m68.box_f - 1) / 2.0 + 0.5, (r->m68.box_t - 1) / 2.0 + 0.5},
                               {(r->m95.box_f - 1) / 2.0 + 0.5, (r->m95.box_t - 1) / 2.0 + 0.5}};
    /* the RF box (inclusive cells -> their outer edges) */
    const double f0 = r->box[0][0] - cf - 0.5, f1 = r->box[0][1] - cf + 0.5, t0 = r->box[1][0] - ct - 0.5,
                 t1 = r->box[1][1] - ct + 0.5;
    const double corners[3][4] = {{t0, t1, f0, f1},
                                  {-half[1][1], half[1][1], -half[1][0], half[1][0]},
                                  {-half[2][1], half[2][1], -half[2][0], half[2][0]}};
    for (int k = 0; k < 3; k++) {
        const double *q = corners[k];
        const double xs[5] = {q[0], q[1], q[1], q[0], q[0]}, ys[5] = {q[2], q[2], q[3], q[3], q[2]};
        for (int i = 0; i < 5; i++) bx[k][i] = (float)xs[i], by[k][i] = (float)ys[i];
    }
    char n0[64], n1[64], n2[64], title[600];
    snprintf(n0, sizeof n0, "theoretical RF (%ld x %ld)", r->rf[0], r->rf[1]);
    snprintf(n1, sizeof n1, "68 %% of the mass (%d x %d)", r->m68.box_f, r->m68.box_t);
    snprintf(n2, sizeof n2, "95 %% of the mass (%d x %d)", r->m95.box_f, r->m95.box_t);
    const struct export_series lines[3] = {{bx[0], by[0], 5, 0xc0c0c0, n0}, {bx[1], by[1], 5, 0x00c000, n1},
                                           {bx[2], by[2], 5, 0xff00ff, n2}};
    const int n_lines = r->m68.box_f > 0 ? 3 : 1;
    const struct export_overlay ov = {NULL, 0, 0, lines, n_lines, NULL};
    snprintf(title, sizeof title, "ERF of %s, unit (%d, %d), %.400s%s", r->layer, r->unit_f, r->unit_t, what,
             r->n < r->n_total ? " (running)" : "");
    int s = export_heatmap_overlay_png(path, w, h, title, m, rows, cols, 0.0f, r->peak > 0 ? (float)r->peak : 1.0f,
                                       "|d unit / d input|", &xa, &ya, &ov);
    free(m);
    return s;
}

/* ----------------------------------------------------------------------------- erf */

struct erf_job {
    struct app *a;
    struct job *job;
    struct model *m;
    struct frontend_params p;
    struct erf_opts o;
    char layer[64];
    char csv[1024];
    float *x;               /* input=FILE: its 'x' */
    struct erf_view *view;  /* the view's data (owned by the view slot) */
    struct erf_result *r;
    struct model *mb;       /* compare=: the second model (owned), run on the same inputs */
    struct erf_result *r2;  /* its ERF */
    int q;                  /* the model running: 0 (e->m) or 1 (mb) */
};

static void erf_partial(void *user, const struct erf_result *r)
{
    struct erf_job *e = user;
    struct erf_result *copy = erf_result_copy(r);
    if (copy) {
        pthread_mutex_lock(&e->view->lock);
        struct erf_result **dst = e->q ? &e->view->r2 : &e->view->r;
        erf_result_destroy(*dst);
        *dst = copy;
        pthread_mutex_unlock(&e->view->lock);
    }
    job_set_message(e->job, "erf %s%s: %d/%d inputs, 68 %% in %ld cells, 95 %% in %ld", e->mb ? (e->q ? "B " : "A ") : "",
                    r->layer, r->n, r->n_total, r->m68.cells, r->m95.cells);
    app_views_changed(e->a);
}

static int erf_work(struct job *j, void *arg)
{
    struct erf_job *e = arg;
    e->job = j;
    int s = erf_model(&e->r, e->m, e->a->ds, &e->p, &e->o, job_progress(j));
    if (s || !e->mb) return s;
    e->q = 1; /* the same inputs: the same clips, noise seed or file, through the same front end */
    return erf_model(&e->r2, e->mb, e->a->ds, &e->p, &e->o, job_progress(j));
}

/* The RF within the input, in cells. */
static double erf_area(const struct erf_result *r)
{
    return (double)(r->crop[0][1] - r->crop[0][0] + 1) * (r->crop[1][1] - r->crop[1][0] + 1);
}

/* One model's summary lines (who: "" or "A (<model>) " with compare=). */
static void erf_summary(struct app *a, const struct erf_result *r, const char *who, const char *what, int cancelled)
{
    const double area = erf_area(r);
    app_out(a, "erf: %s%s, %s%s: the centre unit (%d, %d) of its %d x %d x %d map, summed over channels\n", who, r->layer,
            what, cancelled ? " (stopped early)" : "", r->unit_f, r->unit_t, r->tap_c, r->tap_f, r->tap_t);
    app_out(a, "  theoretical RF %ld x %ld: mel bins %ld..%ld, frames %ld..%ld%s; within the input %.0f cells\n", r->rf[0],
            r->rf[1], r->box[0][0], r->box[0][1], r->box[1][0], r->box[1][1],
            r->whole[0] || r->whole[1] ? " (the whole input along a pooled axis)" : "", area);
    const struct erf_mass *ms[2] = {&r->m68, &r->m95};
    for (int k = 0; k < 2; k++)
        app_out(a, "  %2.0f %% of the gradient mass: %ld cells (%.1f %% of the RF within the input); centred box %d x %d "
                   "(%ld cells)\n",
                100 * ms[k]->frac, ms[k]->cells, area > 0 ? 100 * ms[k]->cells / area : 0.0, ms[k]->box_f, ms[k]->box_t,
                ms[k]->box_cells);
}

/* compare=: B's areas against A's. */
static void erf_difference(struct app *a, const struct erf_result *ra, const struct erf_result *rb)
{
    const struct erf_mass *ma[2] = {&ra->m68, &ra->m95}, *mb[2] = {&rb->m68, &rb->m95};
    double d = 0;
    long n = 0;
    if (ra->n_mels == rb->n_mels && ra->n_frames == rb->n_frames) {
        /* the maps, each over its own mass: how far apart their shapes are */
        const double sa = ra->mass > 0 ? ra->mass : 1, sb = rb->mass > 0 ? rb->mass : 1;
        n = (long)ra->n_mels * ra->n_frames;
        for (long i = 0; i < n; i++) d += fabs(ra->map[i] / sa - rb->map[i] / sb);
    }
    app_out(a, "erf compare (B - A):");
    for (int k = 0; k < 2; k++)
        app_out(a, "%s %2.0f %% of the mass in %ld vs %ld cells (%+ld, %+.1f %%)", k ? ";" : "", 100 * ma[k]->frac,
                ma[k]->cells, mb[k]->cells, mb[k]->cells - ma[k]->cells,
                ma[k]->cells > 0 ? 100.0 * (mb[k]->cells - ma[k]->cells) / ma[k]->cells : 0.0);
    if (n) app_out(a, "; maps (each over its mass) differ by %.3g in total variation\n", d / 2);
    else app_out(a, "; the maps have different sizes\n");
}

/* The figure headless: one model's, or (compare=) both side by side. */
static void erf_print_figure(struct app *a, const struct erf_view *v, const struct erf_result *r, const struct erf_result *r2)
{
    struct canvas c;
    const int per = canvas_mode_for(a->out) == CANVAS_COLOR ? 2 : 1;
    long text_rows = 0;
    for (int k = 0; k < 2; k++) {
        const struct erf_result *x = k ? r2 : r;
        if (!x) continue;
        long lo[2], hi[2];
        erf_region(x, lo, hi);
        long tr = (hi[0] - lo[0] + 1 + per - 1) / per;
        if (tr > text_rows) text_rows = tr;
    }
    if (text_rows > 32) text_rows = 32;
    if (!canvas_init(&c, render_columns(a->out), (int)text_rows + 6, canvas_mode_for(a->out))) {
        draw_erf_view(&c, v);
        fflush(a->out);
        canvas_print(&c, a->out);
        canvas_fini(&c);
    }
}

static int erf_csv(struct app *a, const struct erf_result *r, const char *path)
{
    int s = erf_write_csv(r, path);
    if (s) return app_fail_in(a, s, "erf");
    app_out(a, "wrote %s (f,t,df,dt,erf,erf_rel%s: %ld rows, the RF within the input)\n", path,
            r->n_channels > 1 ? ",erf_c0.." : "", (long)erf_area(r));
    app_result_add(a, path);
    return STATUS_OK;
}

/* The summary lines, the figure headless, the CSV (compare=: both models', B's CSV at FILE
 * with "-compare" before ".csv"). */
static int erf_report(struct app *a, struct erf_job *e, int cancelled)
{
    const struct erf_result *r = e->r, *r2 = e->r2;
    struct erf_view *v = e->view;
    if (e->mb) {
        char who[340];
        snprintf(who, sizeof who, "%s, ", v->who[0]);
        erf_summary(a, r, who, v->what, cancelled && !r2);
        if (r2) {
            snprintf(who, sizeof who, "%s, ", v->who[1]);
            erf_summary(a, r2, who, v->what, cancelled);
            erf_difference(a, r, r2);
        }
    } else {
        erf_summary(a, r, "", v->what, cancelled);
    }
    if (!a->workbench) {
        /* the view's own results are what the figure shows (set by erf_done) */
        pthread_mutex_lock(&v->lock);
        erf_print_figure(a, v, v->r, v->r2);
        pthread_mutex_unlock(&v->lock);
    }
    if (e->csv[0]) {
        if (erf_csv(a, r, e->csv)) return STATUS_INVALID;
        if (r2) {
            char p2[sizeof e->csv + 16];
            size_t len = strlen(e->csv);
            const int ext = len > 4 && !strcmp(e->csv + len - 4, ".csv");
            snprintf(p2, sizeof p2, "%.*s-compare.csv", (int)(ext ? len - 4 : len), e->csv);
            if (erf_csv(a, r2, p2)) return STATUS_INVALID;
        }
    }
    return STATUS_OK;
}

static void erf_done(struct job *j, void *arg, int status)
{
    (void)j;
    struct erf_job *e = arg;
    struct app *a = e->a;
    for (int k = 0; k < 2; k++) {
        /* the view keeps the final maps (also what a stop left) */
        const struct erf_result *r = k ? e->r2 : e->r;
        struct erf_result *copy = r ? erf_result_copy(r) : NULL;
        if (copy) {
            pthread_mutex_lock(&e->view->lock);
            struct erf_result **dst = k ? &e->view->r2 : &e->view->r;
            erf_result_destroy(*dst);
            *dst = copy;
            pthread_mutex_unlock(&e->view->lock);
            app_views_changed(a);
        }
    }
    if (status && status != STATUS_CANCELLED) app_fail_in(a, status, "erf");
    else if (e->r) erf_report(a, e, status == STATUS_CANCELLED);
    if (status == STATUS_CANCELLED) {
        const struct erf_result *r = e->r2 ? e->r2 : e->r;
        app_fail(a, status, "erf: stopped after %d of %d inputs%s", r ? r->n : 0, r ? r->n_total : 0,
                 e->r2 ? " of model B" : "");
    }
    erf_result_destroy(e->r);
    erf_result_destroy(e->r2);
    model_destroy(e->mb);
    free(e->x);
    free(e);
}

/* input=FILE: the 'x' (N, C, F, T) of a safetensors file, basin_ref.py erf's contract. */
static int read_inputs(struct app *a, const char *path, struct erf_job *e)
{
    struct st_file *f = NULL;
    int s = st_load(path, &f);
    if (s) return app_fail(a, s, "erf: %s", status_detail());
    const struct st_tensor *t = st_find(f, "x");
    if (!t || t->n_dims != 4 || t->numel == 0) {
        st_destroy(f);
        return app_fail(a, STATUS_FORMAT, "erf: %s: needs a tensor 'x' of shape (N, C, F, T)", path);
    }
    if (t->shape[1] != e->m->cfg.in_ch) {
        st_destroy(f);
        return app_fail(a, STATUS_MISMATCH, "erf: %s: 'x' has %ld channels, the model takes %d", path, (long)t->shape[1],
                        e->m->cfg.in_ch);
    }
    e->x = malloc(sizeof *e->x * (size_t)t->numel);
    if (!e->x) s = app_fail(a, STATUS_NOMEM, "erf: out of memory");
    else if ((s = st_to_f32(t, e->x))) s = app_fail(a, s, "erf: %s", status_detail());
    e->o.x = e->x, e->o.x_n = (int)t->shape[0], e->o.x_f = (int)t->shape[2], e->o.x_t = (int)t->shape[3];
    st_destroy(f);
    return s;
}

/* erf [layer=NAME] [n=N] [split=S] [input=data|zero|noise|FILE] [seed=N] [compare=PATH] [--csv FILE] */
int cmd_erf(struct app *a, int argc, char **argv)
{
    const char *csv = NULL, *layer = NULL, *file = NULL, *compare = NULL;
    long n = 0, seed = (long)(a->seed & 0x7fffffffffffffffULL);
    enum dataset_split split = DATASET_SPLIT_TRAIN;
    enum erf_input input = ERF_INPUT_DATA;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--csv")) {
            if (i + 1 >= argc) return app_fail(a, STATUS_INVALID, "erf: --csv needs a FILE");
            csv = argv[++i];
            continue;
        }
        char *v = arg_split(argv[i]);
        if (!v) {
            return app_fail(a, STATUS_INVALID, "erf: unexpected '%s' (layer=NAME, n=N, split=S, input=data|zero|noise|FILE, "
                                               "seed=N, compare=PATH, --csv FILE)", argv[i]);
        } else if (!strcmp(argv[i], "layer")) {
            if (!*v) return app_fail(a, STATUS_INVALID, "erf: layer= needs a name (see info)");
            layer = v;
        } else if (!strcmp(argv[i], "n")) {
            if (arg_int(a, "n", v, 1, 1000000, &n)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "split")) {
            if (arg_split_name(a, "erf", v, &split)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "input")) {
            if (erf_input_parse(v, &input)) {
                if (!strchr(v, '.') && !strchr(v, '/'))
                    return app_fail(a, STATUS_INVALID, "erf: input=%s: data, zero, noise or a .safetensors file with 'x'", v);
                file = v, input = ERF_INPUT_DATA;
            }
        } else if (!strcmp(argv[i], "seed")) {
            if (arg_int(a, "seed", v, 0, 0x7fffffffffffffffL, &seed)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "csv")) {
            csv = v;
        } else if (!strcmp(argv[i], "compare")) {
            if (!*v) return app_fail(a, STATUS_INVALID, "erf: compare= needs a model file");
            compare = v;
        } else {
            return app_fail(a, STATUS_INVALID, "erf: unknown option '%s' (layer=NAME, n=N, split=S, "
                                               "input=data|zero|noise|FILE, seed=N, compare=PATH, --csv FILE)", argv[i]);
        }
    }
    if (csv && !*csv) return app_fail(a, STATUS_INVALID, "erf: --csv needs a FILE");
    if (app_need_model(a, "erf")) return STATUS_INVALID;
    if (input == ERF_INPUT_DATA && !file && app_need_dataset(a, "erf")) return STATUS_INVALID;
    struct erf_job *e = calloc(1, sizeof *e);
    struct erf_view *view = calloc(1, sizeof *view);
    if (!e || !view) {
        free(e), free(view);
        return app_fail(a, STATUS_NOMEM, "erf: out of memory");
    }
    pthread_mutex_init(&view->lock, NULL);
    e->a = a, e->m = a->model, e->view = view;
    session_frontend(a, &e->p, NULL);
    if (layer) snprintf(e->layer, sizeof e->layer, "%s", layer);
    if (csv) snprintf(e->csv, sizeof e->csv, "%s", csv);
    e->o = (struct erf_opts){.layer = e->layer, .input = input, .n = (int)n, .split = split, .seed = (uint64_t)seed,
                             .partial = erf_partial, .user = e};
    if (file && read_inputs(a, file, e)) {
        erf_view_release(view);
        free(e->x);
        free(e);
        return STATUS_INVALID;
    }
    if (compare) {
        int s = model_load(&e->mb, compare);
        if (!s && e->mb->cfg.in_ch != a->model->cfg.in_ch)
            s = status_set(STATUS_MISMATCH, "%s takes %d input channels, the model %d", compare, e->mb->cfg.in_ch,
                           a->model->cfg.in_ch);
        if (s) {
            app_fail(a, s, "erf: compare=%s", status_detail());
            erf_view_release(view);
            model_destroy(e->mb);
            free(e->x);
            free(e);
            return STATUS_INVALID;
        }
        view->compare = 1;
        snprintf(view->who[0], sizeof view->who[0], "A (%.300s)", a->model_name);
        snprintf(view->who[1], sizeof view->who[1], "B (%.300s)", compare);
    }
    /* what the inputs are, for the report and the view */
    if (file) {
        snprintf(view->what, sizeof view->what, "over the %d inputs of %s", e->o.x_n, file);
    } else if (input == ERF_INPUT_ZERO) {
        snprintf(view->what, sizeof view->what, "for a zero input");
    } else if (input == ERF_INPUT_NOISE) {
        snprintf(view->what, sizeof view->what, "over %ld N(0, 1) noise inputs (seed %ld)", n ? n : ERF_DEFAULT_N, seed);
    } else {
        int total = dataset_count(a->ds, split, -1, -1), k = n && n < total ? (int)n : total < ERF_DEFAULT_N || n ? total : ERF_DEFAULT_N;
        snprintf(view->what, sizeof view->what, "mean over %d of the %d clips of %s%s", k, total, split_words(split),
                 k < total ? " (spread evenly)" : "");
    }
    app_view_set(a, VIEW_ERF, draw_erf, view, erf_view_release);
    app_view_set_export(a, VIEW_ERF, erf_export);
    char name[1400];
    snprintf(name, sizeof name, "erf%s%s n=%ld split=%s input=%s%s%.400s%s%s", layer ? " layer=" : "", layer ? layer : "", n,
             split == DATASET_SPLIT_ANY ? "all" : dataset_split_name(split), file ? file : erf_input_name(input),
             compare ? " compare=" : "", compare ? compare : "", csv ? " --csv " : "", csv ? csv : "");
    struct job_desc d = {.name = name, .work = erf_work, .done = erf_done, .arg = e};
    return app_run_job(a, &d, APP_HOLD_MODEL_READ | (input == ERF_INPUT_DATA && !file ? APP_HOLD_DATA : 0));
}

/* ----------------------------------------------------------------------------- hessian view */

struct hessian_view {
    pthread_mutex_t lock;
    struct hessian_result *r;   /* the latest (owned), NULL before the loss is known */
    char what[400];
};

static void hessian_view_release(void *data)
{
    struct hessian_view *v = data;
    if (!v) return;
    pthread_mutex_destroy(&v->lock);
    hessian_result_destroy(v->r);
    free(v);
}

/* A number in 7 characters. */
static void fmt_num(char *buf, size_t n, double v)
{
    if (!(v == v)) snprintf(buf, n, "-");
    else if (v != 0 && (fabs(v) >= 1e5 || fabs(v) < 1e-3)) snprintf(buf, n, "%.2e", v);
    else snprintf(buf, n, "%.4g", v);
}

static void draw_hessian_result(struct canvas *c, const struct hessian_result *r, const char *what)
{
    char a[32], b[32], d[32];
    canvas_textf(c, 0, 0, CANVAS_NONE, "Hessian of the mean cross-entropy (eval mode) %s", what);
    canvas_textf(c, 0, 1, CANVAS_NONE, "loss %.4f, accuracy %.1f %%, |gradient| %.3g; %ld %s products, %.2f s each; %s",
                 r->loss, 100 * r->acc, r->grad_norm, r->n_hvp, r->fd ? "finite-difference" : "exact", r->hvp_seconds,
                 r->phase);
    int y = 3;
    double big = 0;
    for (int k = 0; k < r->top; k++)
        if (k < r->n_eig && fabs(r->eig[k]) > big) big = fabs(r->eig[k]);
    if (r->n_eig < r->top && r->current == r->current && !strncmp(r->phase, "eigen", 5) && fabs(r->current) > big)
        big = fabs(r->current);
    const int bar_w = c->w - 40 > 10 ? c->w - 40 : 10;
    canvas_text(c, 0, y++, CANVAS_NONE, "top eigenvalues (power iteration with deflation)");
    for (int k = 0; k < r->top && y < c->h; k++, y++) {
        int running = k == r->n_eig && !strncmp(r->phase, "eigen", 5);
        double v = k < r->n_eig ? r->eig[k] : running ? r->current : NAN;
        fmt_num(a, sizeof a, v);
        canvas_textf(c, 2, y, CANVAS_NONE, "%2d %10s", k + 1, a);
        if (v == v && big > 0) canvas_bar(c, 16, y, bar_w, fabs(v) / big, COLOR_BAR);
        if (k < r->n_eig)
            canvas_textf(c, 17 + bar_w, y, CANVAS_NONE, "%d it.%s", r->eig_iters[k], r->eig_converged[k] ? "" : " (max)");
        else if (running)
            canvas_text(c, 17 + bar_w, y, CANVAS_NONE, "running");
    }
    if (r->trace_on && y < c->h) {
        fmt_num(a, sizeof a, r->trace), fmt_num(b, sizeof b, r->trace_se);
        canvas_textf(c, 0, ++y, CANVAS_NONE, "trace %s +- %s (Hutchinson, %d Rademacher probes)", a, b, r->n_probes);
        y++;
    }
    /* per tensor, largest trace (or eigenvalue) first, as many as fit */
    if (y + 2 >= c->h || r->n_layers == 0) return;
    int *order = malloc(sizeof *order * (size_t)r->n_layers);
    if (!order) return;
    const int by_eig = r->by_layer && r->layers_done > 0;
    double top = 0;
    for (int l = 0; l < r->n_layers; l++) {
        order[l] = l;
        double v = by_eig ? r->layers[l].eig : r->layers[l].trace;
        if (v == v && fabs(v) > top) top = fabs(v);
    }
    for (int i = 1; i < r->n_layers; i++)
        for (int j = i; j > 0; j--) {
            double p = by_eig ? r->layers[order[j]].eig : r->layers[order[j]].trace;
            double q = by_eig ? r->layers[order[j - 1]].eig : r->layers[order[j - 1]].trace;
            if (!(p == p) || (q == q && fabs(p) <= fabs(q))) break;
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    y++;
    const int name_w = 24, bw = c->w - name_w - 40 > 8 ? c->w - name_w - 40 : 8;
    canvas_textf(c, 0, y++, CANVAS_NONE, "per tensor (%d), by %s:%*s %-*s %16s %10s", r->n_layers,
                 by_eig ? "top eigenvalue" : "trace", by_eig ? 0 : 8, "", bw, "", "trace +- se", "top eig.");
    for (int i = 0; i < r->n_layers && y < c->h; i++, y++) {
        const struct hessian_layer *L = &r->layers[order[i]];
        double v = by_eig ? L->eig : L->trace;
        fmt_num(a, sizeof a, L->trace), fmt_num(b, sizeof b, L->trace_se), fmt_num(d, sizeof d, L->eig);
        canvas_textf(c, 0, y, CANVAS_NONE, "%-*.*s", name_w, name_w, L->name);
        if (v == v && top > 0) canvas_bar(c, name_w + 1, y, bw, fabs(v) / top, by_eig ? COLOR_BAR2 : COLOR_BAR);
        canvas_textf(c, name_w + 2 + bw, y, CANVAS_NONE, "%8s +- %-7s%10s", a, b, d);
    }
    free(order);
}

static void draw_hessian(struct canvas *c, void *data)
{
    struct hessian_view *v = data;
    pthread_mutex_lock(&v->lock);
    if (v->r) draw_hessian_result(c, v->r, v->what);
    else canvas_textf(c, 0, 0, CANVAS_NONE, "hessian: loading the clips and computing the loss, %s ...", v->what);
    pthread_mutex_unlock(&v->lock);
}

/* ----------------------------------------------------------------------------- hessian */

struct hessian_job {
    struct app *a;
    struct job *job;
    struct model *m;
    struct frontend_params p;
    struct hessian_opts o;
    char csv[1024];
    struct hessian_view *view;
    struct hessian_result *r;
};

static void hessian_partial(void *user, const struct hessian_result *r)
{
    struct hessian_job *e = user;
    struct hessian_result *copy = hessian_result_copy(r);
    if (copy) {
        pthread_mutex_lock(&e->view->lock);
        hessian_result_destroy(e->view->r);
        e->view->r = copy;
        pthread_mutex_unlock(&e->view->lock);
    }
    char cur[32];
    fmt_num(cur, sizeof cur, r->current);
    job_set_message(e->job, "hessian: %s: %s", r->phase, cur);
    app_views_changed(e->a);
}

static int hessian_work(struct job *j, void *arg)
{
    struct hessian_job *e = arg;
    e->job = j;
    return hessian_model(&e->r, e->m, e->a->ds, &e->p, &e->o, job_progress(j));
}

static int write_hessian_csv(const struct hessian_result *r, const char *path)
{
    struct strbuf b = {0};
    strbuf_puts(&b, "block,params");
    for (int k = 0; k < r->top; k++) strbuf_printf(&b, ",eig%d", k + 1);
    strbuf_puts(&b, ",trace,trace_se\n");
    strbuf_printf(&b, "all,%ld", r->n_params);
    for (int k = 0; k < r->top; k++) {
        if (k < r->n_eig) strbuf_printf(&b, ",%.9g", r->eig[k]);
        else strbuf_puts(&b, ",");
    }
    if (r->trace_on && r->n_probes) strbuf_printf(&b, ",%.9g,%.9g\n", r->trace, r->trace_se);
    else strbuf_puts(&b, ",,\n");
    for (int l = 0; l < r->n_layers; l++) {
        const struct hessian_layer *L = &r->layers[l];
        strbuf_printf(&b, "%s,%ld", L->name, L->numel);
        if (L->eig == L->eig) strbuf_printf(&b, ",%.9g", L->eig);
        else strbuf_puts(&b, ",");
        for (int k = 1; k < r->top; k++) strbuf_puts(&b, ",");
        if (L->trace == L->trace) strbuf_printf(&b, ",%.9g,%.9g\n", L->trace, L->trace_se);
        else strbuf_puts(&b, ",,\n");
    }
    int s = b.failed ? (int)status_set(STATUS_NOMEM, "%s: out of memory", path) : fs_write_file(path, b.p, b.n, 0);
    strbuf_fini(&b);
    return s;
}

static void fmt_time(char *buf, size_t n, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

static int hessian_report(struct app *a, struct hessian_job *e, int cancelled)
{
    const struct hessian_result *r = e->r;
    char n1[32], n2[32], t[32];
    app_out(a, "hessian: %s %s: %s clips%s, %s parameters%s\n", arch_name(e->m->cfg.arch), e->view->what,
            fmt_count(n1, sizeof n1, r->n_clips), r->subset ? " (A SUBSET: n= was given)" : "",
            fmt_count(n2, sizeof n2, r->n_params), cancelled ? " (stopped early)" : "");
    app_out(a, "  loss %.6f (mean cross-entropy, eval mode), accuracy %.1f %%, |gradient| %.6g\n", r->loss, 100 * r->acc,
            r->grad_norm);
    fmt_time(t, sizeof t, r->seconds);
    if (r->fd)
        app_out(a, "  %ld Hessian-vector products by finite differences of gradients (step %g), %.2f s each; %s in all\n",
                r->n_hvp, r->step, r->hvp_seconds, t);
    else
        app_out(a, "  %ld exact Hessian-vector products (R-op), %.2f s each; %s in all\n", r->n_hvp, r->hvp_seconds, t);
    app_out(a, "  top eigenvalues (power iteration with deflation, PyHessian's rule: relative change < %g):\n",
            e->o.tol > 0 ? e->o.tol : HESSIAN_DEFAULT_TOL);
    for (int k = 0; k < r->n_eig; k++)
        app_out(a, "    %2d  %12.6g  (%d iterations%s)\n", k + 1, r->eig[k], r->eig_iters[k],
                r->eig_converged[k] ? "" : ", not converged");
    if (r->trace_on && r->n_probes)
        app_out(a, "  trace %.6g +- %.3g (Hutchinson, %d Rademacher probes; +- one standard error)\n", r->trace,
                r->trace_se, r->n_probes);
    if (r->n_probes || r->layers_done) {
        int w = 6;
        for (int l = 0; l < r->n_layers; l++)
            if ((int)strlen(r->layers[l].name) > w) w = (int)strlen(r->layers[l].name);
        app_out(a, "  per tensor (diagonal blocks):\n    %-*s %9s %12s %10s %12s\n", w, "tensor", "params", "trace", "+- se",
                "top eig.");
        for (int l = 0; l < r->n_layers; l++) {
            const struct hessian_layer *L = &r->layers[l];
            char tr[32], se[32], eg[32];
            fmt_num(tr, sizeof tr, L->trace), fmt_num(se, sizeof se, L->trace_se), fmt_num(eg, sizeof eg, L->eig);
            app_out(a, "    %-*s %9ld %12s %10s %12s\n", w, L->name, L->numel, tr, se, eg);
        }
    }
    if (e->csv[0]) {
        int s = write_hessian_csv(r, e->csv);
        if (s) return app_fail_in(a, s, "hessian");
        app_out(a, "wrote %s (block,params,eig1..eig%d,trace,trace_se: the whole Hessian, then each tensor)\n", e->csv,
                r->top);
        app_result_add(a, e->csv);
    }
    return STATUS_OK;
}

static void hessian_done(struct job *j, void *arg, int status)
{
    (void)j;
    struct hessian_job *e = arg;
    struct app *a = e->a;
    if (e->r) {
        struct hessian_result *copy = hessian_result_copy(e->r);
        if (copy) {
            pthread_mutex_lock(&e->view->lock);
            hessian_result_destroy(e->view->r);
            e->view->r = copy;
            pthread_mutex_unlock(&e->view->lock);
            app_views_changed(a);
        }
    }
    if (status && status != STATUS_CANCELLED) app_fail_in(a, status, "hessian");
    else if (e->r) hessian_report(a, e, status == STATUS_CANCELLED);
    if (status == STATUS_CANCELLED) app_fail(a, status, "hessian: stopped (%s)", e->r ? e->r->phase : "before the loss");
    hessian_result_destroy(e->r);
    free(e);
}

/* hessian [top=K] [iters=N] [probes=N] [trace=on|off] [by=layer] [split=S] [n=N] [seed=N]
 *         [hvp=exact|fd] [step=X] [--csv FILE] */
int cmd_hessian(struct app *a, int argc, char **argv)
{
    const char *csv = NULL;
    long top = 1, iters = HESSIAN_DEFAULT_ITERS, probes = HESSIAN_DEFAULT_PROBES, n = 0;
    long seed = (long)(a->seed & 0x7fffffffffffffffULL);
    int trace = 1, by_layer = 0, fd = 0;
    double step = HESSIAN_DEFAULT_STEP, tol = HESSIAN_DEFAULT_TOL;
    enum dataset_split split = DATASET_SPLIT_TRAIN;
    static const char *usage = "top=K, iters=N, tol=X, probes=N, trace=on|off, by=layer, split=S, n=N, seed=N, "
                               "hvp=exact|fd, step=X, --csv FILE";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--csv")) {
            if (i + 1 >= argc) return app_fail(a, STATUS_INVALID, "hessian: --csv needs a FILE");
            csv = argv[++i];
            continue;
        }
        char *v = arg_split(argv[i]);
        if (!v) {
            return app_fail(a, STATUS_INVALID, "hessian: unexpected '%s' (%s)", argv[i], usage);
        } else if (!strcmp(argv[i], "top")) {
            if (arg_int(a, "top", v, 1, 1000, &top)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "iters")) {
            if (arg_int(a, "iters", v, 1, 100000, &iters)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "tol")) {
            if (arg_real(a, "hessian", "tol", v, 1e-12, 1, &tol)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "probes")) {
            if (arg_int(a, "probes", v, 1, 1000000, &probes)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "trace")) {
            if (strcmp(v, "on") && strcmp(v, "off")) return app_fail(a, STATUS_INVALID, "hessian: trace=%s: on or off", v);
            trace = !strcmp(v, "on");
        } else if (!strcmp(argv[i], "by")) {
            if (strcmp(v, "layer") && strcmp(v, "none"))
                return app_fail(a, STATUS_INVALID, "hessian: by=%s: layer (each parameter tensor's block) or none", v);
            by_layer = !strcmp(v, "layer");
        } else if (!strcmp(argv[i], "split")) {
            if (arg_split_name(a, "hessian", v, &split)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "n")) {
            if (arg_int(a, "n", v, 1, 100000000, &n)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "seed")) {
            if (arg_int(a, "seed", v, 0, 0x7fffffffffffffffL, &seed)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "hvp")) {
            if (strcmp(v, "exact") && strcmp(v, "fd"))
                return app_fail(a, STATUS_INVALID, "hessian: hvp=%s: exact (R-op) or fd (finite differences)", v);
            fd = !strcmp(v, "fd");
        } else if (!strcmp(argv[i], "step")) {
            if (arg_real(a, "hessian", "step", v, 1e-8, 1, &step)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "csv")) {
            csv = v;
        } else {
            return app_fail(a, STATUS_INVALID, "hessian: unknown option '%s' (%s)", argv[i], usage);
        }
    }
    if (csv && !*csv) return app_fail(a, STATUS_INVALID, "hessian: --csv needs a FILE");
    if (app_need_model(a, "hessian")) return STATUS_INVALID;
    if (top > a->model->g->store.n_params)
        return app_fail(a, STATUS_INVALID, "hessian: top=%ld, but the model has %ld parameters", top,
                        a->model->g->store.n_params);
    if (app_need_dataset(a, "hessian")) return STATUS_INVALID;
    struct hessian_job *e = calloc(1, sizeof *e);
    struct hessian_view *view = calloc(1, sizeof *view);
    if (!e || !view) {
        free(e), free(view);
        return app_fail(a, STATUS_NOMEM, "hessian: out of memory");
    }
    pthread_mutex_init(&view->lock, NULL);
    e->a = a, e->m = a->model, e->view = view;
    session_frontend(a, &e->p, NULL);
    if (csv) snprintf(e->csv, sizeof e->csv, "%s", csv);
    e->o = (struct hessian_opts){.top = (int)top, .iters = (int)iters, .tol = tol, .probes = (int)probes, .no_trace = !trace,
                                 .by_layer = by_layer, .fd = fd, .step = step, .seed = (uint64_t)seed, .split = split,
                                 .n = (int)n, .partial = hessian_partial, .user = e};
    int total = dataset_count(a->ds, split, -1, -1);
    if (split == DATASET_SPLIT_ANY) snprintf(view->what, sizeof view->what, "over every clip of %.300s", a->ds_path);
    else snprintf(view->what, sizeof view->what, "over the %s split of %.300s", dataset_split_name(split), a->ds_path);
    if (n && n < total) {
        size_t l = strlen(view->what);
        snprintf(view->what + l, sizeof view->what - l, ": a subset of %ld of its %d clips", n, total);
    }
    app_view_set(a, VIEW_HESSIAN, draw_hessian, view, hessian_view_release);
    char name[1400];
    snprintf(name, sizeof name, "hessian top=%ld iters=%ld tol=%g probes=%ld trace=%s%s split=%s n=%ld hvp=%s%s%s", top,
             iters, tol, probes, trace ? "on" : "off", by_layer ? " by=layer" : "",
             split == DATASET_SPLIT_ANY ? "all" : dataset_split_name(split), n, fd ? "fd" : "exact",
             csv ? " --csv " : "", csv ? csv : "");
    struct job_desc d = {.name = name, .work = hessian_work, .done = hessian_done, .arg = e};
    /* finite differences move the weights (and put them back): nothing else may use them */
    return app_run_job(a, &d, (fd ? APP_HOLD_MODEL_WRITE : APP_HOLD_MODEL_READ) | APP_HOLD_DATA);
}
