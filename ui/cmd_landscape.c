/* cmd_landscape.c: landscape, sharpness and trajectory, and the landscape view.
 *
 * Each command checks every option first, then runs as a job (analysis/landscape.h does
 * the work point by point): the prompt stays live, the view fills in as points arrive
 * (contours by marching squares over the points there are, the points still missing, the
 * sharpness disc and the current figure), `stop` or Ctrl-C cancels at the next batch and
 * keeps the points done, which the CSV holds (resume=FILE goes on from it).
 *
 * The view keeps every surface computed in the session with what it is of (the weights,
 * the directions, the split, the grid), so `sharpness` reuses a landscape already
 * computed on the same model, split and directions instead of computing it again.
 */
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "basin/analysis/directions.h"
#include "basin/analysis/landscape.h"
#include "basin/analysis/sharpness.h"
#include "basin/analysis/trajectory.h"
#include "basin/core/fs.h"
#include "basin/core/graph.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/core/strbuf.h"
#include "basin/core/threads.h"
#include "basin/data/dataset.h"
#include "basin/data/features.h"
#include "basin/model/model.h"
#include "basin/train/pipeline.h"
#include "canvas.h"
#include "commands.h"
#include "export.h"
#include "job.h"
#include "render.h"
#include "session.h"
#include "views.h"

#define MAX_PAIRS 16
#define MAX_SURFACES 64

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ============================================================================ view data */

/* One surface the view can show, and what it is of. */
struct lsurf {
    char title[240];
    /* identity, so `sharpness` can reuse it */
    uint64_t model_hash;
    int has_seed;
    uint64_t seed;
    uint64_t dirs_hash;         /* the directions' values (known once drawn) */
    char norm[16];              /* "filter", "file", "pca" */
    char ds[256];               /* the data set's path */
    int n_req;                  /* n= (0: the whole split) */
    int split, n_clips, subset;
    uint64_t subset_seed;
    int dims;
    /* the grid */
    int n_x, n_y;
    double range, eps;
    int radius;
    double *loss, *acc;         /* (n_y, n_x); NaN where missing */
    unsigned char *done;
    int n_points, n_done;
    int n_groups;               /* devices (0: not by device) */
    long *group_n;
    double *group_loss, *group_acc; /* (n_groups, n_y, n_x) */
    struct sharpness sh;
    int complete;
    /* a training path over it (trajectory) */
    int n_path;
    double *path;               /* (n_path, 2) */
    int *path_epoch;
};

struct lview {
    pthread_mutex_t lock;
    struct lsurf *s[MAX_SURFACES];
    int n;
    int shown[2], n_shown;      /* drawn: one surface, or two side by side (compare=) */
    int run_first, run_n;       /* the surfaces of the last run (its pairs) */
    char note[200];             /* the run's state: "pair 2 of 3", "stopped: ..." */
};

static void lsurf_free(struct lsurf *s)
{
    if (!s) return;
    free(s->loss);
    free(s->acc);
    free(s->done);
    free(s->group_n);
    free(s->group_loss);
    free(s->group_acc);
    free(s->path);
    free(s->path_epoch);
    free(s);
}

static struct lsurf *lsurf_new(int n_x, int n_y, double range, int n_groups)
{
    struct lsurf *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->n_x = n_x, s->n_y = n_y, s->range = range, s->n_points = n_x * n_y, s->n_groups = n_groups;
    size_t np = (size_t)s->n_points, ng = (size_t)n_groups;
    s->loss = malloc(sizeof *s->loss * np);
    s->acc = malloc(sizeof *s->acc * np);
    s->done = calloc(np, 1);
    s->group_n = calloc(ng + 1, sizeof *s->group_n);
    s->group_loss = malloc(sizeof(double) * (ng * np + 1));
    s->group_acc = malloc(sizeof(double) * (ng * np + 1));
    if (!s->loss || !s->acc || !s->done || !s->group_n || !s->group_loss || !s->group_acc) {
        lsurf_free(s);
        return NULL;
    }
    for (size_t k = 0; k < np; k++) s->loss[k] = s->acc[k] = NAN;
    for (size_t k = 0; k < ng * np; k++) s->group_loss[k] = s->group_acc[k] = NAN;
    return s;
}

static void lview_release(void *data)
{
    struct lview *lv = data;
    for (int i = 0; i < lv->n; i++) lsurf_free(lv->s[i]);
    pthread_mutex_destroy(&lv->lock);
    free(lv);
}

static void lview_draw(struct canvas *c, void *data);
static int lview_export(const char *path, void *data, int w, int h);

/* The session's landscape view data, made and registered on first use; shown. */
static struct lview *lview_get(struct app *a)
{
    struct app_view_slot *slot = &a->views.slots[VIEW_LANDSCAPE];
    struct lview *lv = slot->draw == lview_draw ? slot->data : NULL;
    if (!lv) {
        if (!(lv = calloc(1, sizeof *lv))) return NULL;
        pthread_mutex_init(&lv->lock, NULL);
    }
    app_view_set(a, VIEW_LANDSCAPE, lview_draw, lv, lview_release);
    app_view_set_export(a, VIEW_LANDSCAPE, lview_export);
    return lv;
}

/* Add surfaces as the new run (UI thread, before the job starts); the oldest go when the
 * view holds too many. Returns the index of the first. */
static int lview_add_run(struct lview *lv, struct lsurf **s, int n)
{
    pthread_mutex_lock(&lv->lock);
    int drop = lv->n + n - MAX_SURFACES;
    if (drop > 0) {
        for (int i = 0; i < drop; i++) lsurf_free(lv->s[i]);
        memmove(lv->s, lv->s + drop, sizeof *lv->s * (size_t)(lv->n - drop));
        lv->n -= drop;
    }
    int first = lv->n;
    for (int i = 0; i < n; i++) lv->s[lv->n++] = s[i];
    lv->run_first = first, lv->run_n = n;
    lv->shown[0] = first, lv->n_shown = 1;
    lv->note[0] = '\0';
    pthread_mutex_unlock(&lv->lock);
    return first;
}

/* ============================================================================ drawing */

#define N_LEVELS 8

/* A surface whose loss spans orders of magnitude (a trajectory's plane, li18's +-1: the
 * loss explodes at the edges) is drawn on a logarithmic scale. */
static int wide_range(double lo, double hi)
{
    return hi - lo > 20 * (1 + fabs(lo));
}

/* Contour levels between the smallest and the largest value there is, denser near the
 * minimum (quadratic spacing), where a landscape's shape is; for a wide range quadratic in
 * log(1 + loss - min), so the levels near the minimum are not all below the first one. */
static int levels_of(const struct lsurf *s, double *lv, double *lo_out, double *hi_out)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < s->n_points; k++)
        if (s->done[k] && isfinite(s->loss[k])) lo = fmin(lo, s->loss[k]), hi = fmax(hi, s->loss[k]);
    *lo_out = lo, *hi_out = hi;
    if (!(hi > lo)) return 0;
    const int wide = wide_range(lo, hi);
    for (int k = 0; k < N_LEVELS; k++) {
        double q = (k + 0.5) / N_LEVELS;
        lv[k] = wide ? lo + expm1(q * q * log1p(hi - lo)) : lo + (hi - lo) * q * q;
    }
    return N_LEVELS;
}

struct segs {
    float *xy;                  /* (n, 4): x0 y0 x1 y1 in data coordinates */
    int *level;
    int n, cap;
};

static void seg_add(struct segs *g, int level, double x0, double y0, double x1, double y1)
{
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 256;
        float *xy = realloc(g->xy, sizeof *xy * 4 * (size_t)cap);
        if (!xy) return;
        g->xy = xy;
        int *lvl = realloc(g->level, sizeof *lvl * (size_t)cap);
        if (!lvl) return;
        g->level = lvl;
        g->cap = cap;
    }
    float *p = g->xy + 4 * (size_t)g->n;
    p[0] = (float)x0, p[1] = (float)y0, p[2] = (float)x1, p[3] = (float)y1;
    g->level[g->n++] = level;
}

/* Marching squares: the segments of level v in the cell whose lower-left corner is grid
 * point (i, j), corner values a (i, j), b (i+1, j), c (i+1, j+1), d (i, j+1); grid index
 * coordinates mapped to data by x = -r + i * step. Saddles are resolved by the mean of the
 * four corners. */
static void cell_contour(struct segs *g, int level, double v, int i, int j, double a, double b, double c, double d,
                         double r, double step)
{
    int code = (a > v) | (b > v) << 1 | (c > v) << 2 | (d > v) << 3;
    if (code == 0 || code == 15) return;
    /* crossing points on the four edges: bottom (a-b), right (b-c), top (d-c), left (a-d) */
    double ex[4], ey[4];
    ex[0] = i + (v - a) / (b - a), ey[0] = j;
    ex[1] = i + 1, ey[1] = j + (v - b) / (c - b);
    ex[2] = i + (v - d) / (c - d), ey[2] = j + 1;
    ex[3] = i, ey[3] = j + (v - a) / (d - a);
    static const signed char table[16][4] = {
        {-1, -1, -1, -1}, {3, 0, -1, -1}, {0, 1, -1, -1}, {3, 1, -1, -1}, {1, 2, -1, -1}, {3, 0, 1, 2},
        {0, 2, -1, -1},   {3, 2, -1, -1}, {2, 3, -1, -1}, {2, 0, -1, -1}, {0, 1, 2, 3},  {2, 1, -1, -1},
        {1, 3, -1, -1},   {1, 0, -1, -1}, {0, 3, -1, -1}, {-1, -1, -1, -1}};
    signed char e[4];
    memcpy(e, table[code], 4);
    if ((code == 5 || code == 10) && (a + b + c + d) / 4 > v) {
        /* a saddle whose centre is high: the high corners join through it, so the
         * segments cut off the low corners instead (5: b and d; 10: a and c) */
        static const signed char joined[2][4] = {{3, 2, 0, 1}, {3, 0, 1, 2}};
        memcpy(e, joined[code == 10], 4);
    }
    for (int k = 0; k < 4 && e[k] >= 0; k += 2)
        seg_add(g, level, -r + ex[e[k]] * step, -r + ey[e[k]] * step, -r + ex[e[k + 1]] * step,
                -r + ey[e[k + 1]] * step);
}

static const char level_glyph[N_LEVELS + 1] = "12345678";

static int level_color(int k)
{
    return canvas_ramp_color((double)k / (N_LEVELS - 1));
}

/* A 1-D slice: the loss against alpha, the missing points and the sharpness window. */
static void draw_slice(struct canvas *c, int x, int y, int w, int h, const struct lsurf *s)
{
    double lo, hi, lv[N_LEVELS];
    levels_of(s, lv, &lo, &hi);
    const int lw = 8, pw = w - lw - 1, ph = h - 1;
    if (pw < 8 || ph < 3) return;
    if (!(hi > lo)) lo = isfinite(lo) ? lo - 1 : 0, hi = isfinite(hi) ? hi + 1 : 1;
    float *px = malloc(sizeof *px * (size_t)s->n_x), *py = malloc(sizeof *py * (size_t)s->n_x);
    if (!px || !py) {
        free(px), free(py);
        return;
    }
    for (int i = 0; i < s->n_x; i++) {
        px[i] = (float)landscape_coord(i, s->n_x, s->range);
        py[i] = s->done[i] && isfinite(s->loss[i]) ? (float)s->loss[i] : NAN;
    }
    struct canvas_series ser = {px, py, s->n_x, 45, '*'};
    canvas_plot(c, x + lw + 1, y, pw, ph, &ser, 1, -s->range, s->range, lo, hi);
    const double wr = s->radius * 2.0 * s->range / (s->n_x - 1);
    for (int side = -1; side <= 1; side += 2) {
        int col = x + lw + 1 + (int)lround((side * wr + s->range) / (2 * s->range) * (pw - 1));
        for (int r = 0; r < ph; r++)
            if (canvas_at(c, col, y + r) && canvas_at(c, col, y + r)->ch == ' ')
                canvas_set(c, col, y + r, c->mode == CANVAS_ASCII ? '|' : 0x2502, 201, CANVAS_NONE);
    }
    for (int i = 0; i < s->n_x; i++)
        if (!s->done[i]) {
            int col = x + lw + 1 + (int)lround((double)i / (s->n_x - 1) * (pw - 1));
            canvas_set(c, col, y + ph - 1, c->mode == CANVAS_ASCII ? '.' : 0x00b7, 244, CANVAS_NONE);
        }
    canvas_axis_y(c, x + lw, y, ph, lw, lo, hi, 3, "%.3g");
    canvas_axis_x(c, x + lw + 1, y + ph, pw, -s->range, s->range, 5, "%.3g");
    free(px), free(py);
}

/* One surface in the w x h cells at (x, y): title, figures, contours, missing points,
 * the sharpness disc, the centre and a path when there is one. */
static void draw_surface(struct canvas *c, int x, int y, int w, int h, const struct lsurf *s)
{
    canvas_textf(c, x, y, CANVAS_NONE, "%.*s", w, s->title);
    char fig[200], miss[48] = "";
    if (s->sh.n_disc_missing) snprintf(miss, sizeof miss, ", %d missing", s->sh.n_disc_missing);
    if (s->radius == 0) /* a trajectory's plane: no sharpness disc */
        snprintf(fig, sizeof fig, "loss min %.4g  %d/%d points", s->sh.min_grid, s->n_done, s->n_points);
    else if (isnan(s->sh.s))
        snprintf(fig, sizeof fig, "S -  (no point yet)  %d/%d points", s->n_done, s->n_points);
    else
        snprintf(fig, sizeof fig, "S %.4g (eps %.3g: R %d, %d disc points%s)  min %.4g  disc max %.4g  %d/%d points",
                 s->sh.s, s->eps, s->sh.radius, s->sh.n_disc, miss, s->sh.min_grid, s->sh.max_disc, s->n_done,
                 s->n_points);
    canvas_textf(c, x, y + 1, CANVAS_NONE, "%.*s", w, fig);
    if (s->n_y == 1) {
        draw_slice(c, x, y + 2, w, h - 2, s);
        return;
    }
    const int lw = 7;               /* y labels */
    int ph = h - 4;                 /* title, figures, x labels, legend */
    if (ph < 4 || w < lw + 10) return;
    int pw = 2 * ph + 1;            /* cells are about twice as high as wide: a square */
    if (pw > w - lw - 1) pw = w - lw - 1, ph = (pw - 1) / 2 > 3 ? (pw - 1) / 2 : 3;
    const int px = x + lw + 1, py = y + 2;
    const double r = s->range, step = 2 * r / (s->n_x - 1);
    double lv[N_LEVELS], lo, hi;
    int nl = levels_of(s, lv, &lo, &hi);
    /* contours */
    struct segs g = {0};
    for (int j = 0; j + 1 < s->n_y && nl; j++)
        for (int i = 0; i + 1 < s->n_x; i++) {
            const int k = j * s->n_x + i;
            if (!s->done[k] || !s->done[k + 1] || !s->done[k + s->n_x] || !s->done[k + s->n_x + 1]) continue;
            const double a = s->loss[k], b = s->loss[k + 1], cc = s->loss[k + s->n_x + 1], d = s->loss[k + s->n_x];
            if (!isfinite(a) || !isfinite(b) || !isfinite(cc) || !isfinite(d)) continue;
            for (int l = 0; l < nl; l++) cell_contour(&g, l, lv[l], i, j, a, b, cc, d, r, step);
        }
    /* one two-point series per segment: x0 x1 then y0 y1 */
    struct canvas_series *ser = g.n ? malloc(sizeof *ser * (size_t)g.n) : NULL;
    float *xs = g.n ? malloc(sizeof *xs * 4 * (size_t)g.n) : NULL;
    for (int k = 0; ser && xs && k < g.n; k++) {
        const float *p = g.xy + 4 * (size_t)k;
        float *q = xs + 4 * (size_t)k;
        q[0] = p[0], q[1] = p[2], q[2] = p[1], q[3] = p[3];
        ser[k] = (struct canvas_series){q, q + 2, 2, level_color(g.level[k]), level_glyph[g.level[k]]};
    }
    if (ser && xs) canvas_plot(c, px, py, pw, ph, ser, g.n, -r, r, -r, r);
    free(ser), free(xs), free(g.xy), free(g.level);
    /* the sharpness disc */
    if (s->sh.radius > 0) {
        float cx[73], cy[73];
        const double rad = s->sh.radius * step;
        for (int k = 0; k <= 72; k++) cx[k] = (float)(rad * cos(k * M_PI / 36)), cy[k] = (float)(rad * sin(k * M_PI / 36));
        struct canvas_series disc = {cx, cy, 73, 201, ':'};
        canvas_plot(c, px, py, pw, ph, &disc, 1, -r, r, -r, r);
    }
    /* the path */
    if (s->n_path > 1) {
        float *qx = malloc(sizeof *qx * (size_t)s->n_path), *qy = malloc(sizeof *qy * (size_t)s->n_path);
        if (qx && qy) {
            for (int e = 0; e < s->n_path; e++) qx[e] = (float)s->path[2 * e], qy[e] = (float)s->path[2 * e + 1];
            struct canvas_series path = {qx, qy, s->n_path, 15, '#'};
            canvas_plot(c, px, py, pw, ph, &path, 1, -r, r, -r, r);
            for (int e = 0; e < s->n_path; e++) {
                int col = px + (int)lround((qx[e] + r) / (2 * r) * (pw - 1));
                int row = py + ph - 1 - (int)lround((qy[e] + r) / (2 * r) * (ph - 1));
                uint32_t ch = e == 0 ? 'S' : e == s->n_path - 1 ? 'E' : (c->mode == CANVAS_ASCII ? 'o' : 0x25cf);
                canvas_set(c, col, row, ch, 15, CANVAS_NONE);
            }
        }
        free(qx), free(qy);
    }
    /* the points still missing (every stride-th on a grid finer than the cells, so they
     * stay dots), then the centre */
    const int sx = (s->n_x - 1) * 2 > pw - 1 ? ((s->n_x - 1) * 2 + pw - 2) / (pw - 1) : 1;   /* 2 cells apart */
    const int sy = s->n_y - 1 > ph - 1 ? (s->n_y - 1 + ph - 2) / (ph - 1) : 1;               /* a row apart */
    const int c0 = (s->n_x - 1) / 2;
    for (int j = 0; j < s->n_y; j++)
        for (int i = 0; i < s->n_x; i++) {
            if (s->done[j * s->n_x + i] || (i - c0) % sx || (j - c0) % sy) continue;
            int col = px + (int)lround((double)i / (s->n_x - 1) * (pw - 1));
            int row = py + ph - 1 - (int)lround((double)j / (s->n_y - 1) * (ph - 1));
            canvas_set(c, col, row, c->mode == CANVAS_ASCII ? '.' : 0x00b7, 244, CANVAS_NONE);
        }
    canvas_set(c, px + (pw - 1) / 2, py + (ph - 1) / 2, '+', 15, CANVAS_NONE);
    canvas_axis_y(c, px - 1, py, ph, lw, -r, r, 3, "%.3g");
    canvas_axis_x(c, px, py + ph, pw, -r, r, 3, "%.3g");
    /* legend: the levels */
    int col = x;
    const int row = py + ph + 1;
    col += canvas_text(c, col, row, CANVAS_NONE, "levels");
    for (int l = 0; l < nl && col < x + w - 8; l++) {
        char t[32];
        if (c->mode == CANVAS_ASCII) snprintf(t, sizeof t, " %c=%.3g", level_glyph[l], lv[l]);
        else snprintf(t, sizeof t, " %.3g", lv[l]);
        if (c->mode == CANVAS_COLOR) col += canvas_text(c, col, row, level_color(l), " \u2501");
        col += canvas_text(c, col, row, CANVAS_NONE, t);
    }
}

static void lview_draw(struct canvas *c, void *data)
{
    struct lview *lv = data;
    pthread_mutex_lock(&lv->lock);
    if (!lv->n_shown || lv->n == 0) {
        canvas_text(c, 0, 0, CANVAS_NONE, "loss landscape: nothing yet (landscape, sharpness, trajectory)");
        pthread_mutex_unlock(&lv->lock);
        return;
    }
    int foot = lv->run_n > 1 || lv->note[0] ? 1 : 0;
    if (lv->n_shown == 2) {
        int half = c->w / 2;
        draw_surface(c, 0, 0, half - 1, c->h - foot, lv->s[lv->shown[0]]);
        draw_surface(c, half + 1, 0, c->w - half - 1, c->h - foot, lv->s[lv->shown[1]]);
    } else {
        draw_surface(c, 0, 0, c->w, c->h - foot, lv->s[lv->shown[0]]);
    }
    if (foot) {
        struct strbuf b = {0};
        if (lv->run_n > 1 && lv->n_shown == 1) {
            double v[MAX_PAIRS];
            int n = 0;
            strbuf_puts(&b, "pairs:");
            for (int i = 0; i < lv->run_n && lv->run_first + i < lv->n; i++) {
                const struct lsurf *s = lv->s[lv->run_first + i];
                if (s->has_seed) strbuf_printf(&b, " s%llu", (unsigned long long)s->seed);
                else strbuf_printf(&b, " %d", i + 1);
                if (isnan(s->sh.s)) strbuf_puts(&b, " -");
                else strbuf_printf(&b, " %.4g%s", s->sh.s, s->complete ? "" : "~");
                if (n < MAX_PAIRS) v[n++] = s->complete ? s->sh.s : NAN;
            }
            struct sharpness_stats st;
            sharpness_stats(v, n, &st);
            if (st.n) strbuf_printf(&b, "  mean %.4g std %.3g max %.4g (of %d)", st.mean, st.std, st.max, st.n);
        }
        if (lv->note[0]) strbuf_printf(&b, "%s%s", b.n ? "  " : "", lv->note);
        if (b.p) canvas_text(c, 0, c->h - 1, CANVAS_NONE, b.p);
        strbuf_fini(&b);
    }
    pthread_mutex_unlock(&lv->lock);
}

/* ============================================================================ PNG */

/* Axis ticks of a landscape: one at every cell's centre, labelled with its grid coordinate
 * every `every` cells counted from the centre (about five labels). */
struct coord_ticks {
    double lo, hi;              /* the outer edges of the first and last cells */
    int n, every;
};

static void coord_tick(void *user, double pos, char *buf, int n)
{
    const struct coord_ticks *t = user;
    const int i = (int)floor(pos * t->n), c = (t->n - 1) / 2;
    if ((i - c) % t->every) {
        buf[0] = '\0';
        return;
    }
    double v = t->lo + (t->hi - t->lo) * pos;
    snprintf(buf, (size_t)n, "%.3g", fabs(v) < 1e-12 ? 0.0 : v);
}

/* `export landscape PATH.png`: the surface shown (the first of two side by side), its loss
 * as a heatmap with the contours of the view, the sharpness disc, a training path and the
 * centre; a 1-D slice as a line plot. Missing points are left white. */
static int lview_export(const char *path, void *data, int w, int h)
{
    struct lview *lv = data;
    pthread_mutex_lock(&lv->lock);
    if (!lv->n_shown || lv->n == 0) {
        pthread_mutex_unlock(&lv->lock);
        return status_set(STATUS_INVALID, "no landscape yet (landscape, sharpness, trajectory)");
    }
    const struct lsurf *s = lv->s[lv->shown[0]];
    char title[400];
    if (s->radius == 0)
        snprintf(title, sizeof title, "%.300s; %d/%d points", s->title, s->n_done, s->n_points);
    else if (isnan(s->sh.s))
        snprintf(title, sizeof title, "%.300s; no point yet", s->title);
    else
        snprintf(title, sizeof title, "%.280s; S %.4g (eps %.3g)%s", s->title, s->sh.s, s->eps,
                 s->complete ? "" : ", partial");
    const double r = s->range, step = 2 * r / (s->n_x - 1);
    int st = STATUS_OK;
    if (s->n_y == 1) {
        float *px = malloc(sizeof *px * (size_t)s->n_x), *py = malloc(sizeof *py * (size_t)s->n_x);
        double lo = INFINITY, hi = -INFINITY;
        for (int i = 0; px && py && i < s->n_x; i++) {
            px[i] = (float)landscape_coord(i, s->n_x, r);
            py[i] = s->done[i] && isfinite(s->loss[i]) ? (float)s->loss[i] : NAN;
            if (py[i] == py[i]) lo = fmin(lo, py[i]), hi = fmax(hi, py[i]);
        }
        if (!(hi > lo)) lo = isfinite(lo) ? lo - 1 : 0, hi = isfinite(hi) ? hi + 1 : 1;
        const struct export_series ser = {px, py, s->n_x, 0x1f77b4, "loss"};
        const struct export_axis xa = {.lo = -r, .hi = r, .label = "alpha (along x)"};
        const struct export_axis ya = {.lo = lo, .hi = hi, .label = "loss (mean cross-entropy)"};
        st = px && py ? export_lines_png(path, w, h, title, &ser, 1, &xa, &ya) : (int)status_set(STATUS_NOMEM, "out of memory");
        free(px), free(py);
        pthread_mutex_unlock(&lv->lock);
        return st;
    }
    const int np = s->n_points;
    float *m = malloc(sizeof *m * (size_t)np);
    double lv_[N_LEVELS], lo, hi;
    const int nl = levels_of(s, lv_, &lo, &hi);
    struct segs g = {0};
    for (int j = 0; j + 1 < s->n_y && nl; j++)
        for (int i = 0; i + 1 < s->n_x; i++) {
            const int k = j * s->n_x + i;
            if (!s->done[k] || !s->done[k + 1] || !s->done[k + s->n_x] || !s->done[k + s->n_x + 1]) continue;
            const double a = s->loss[k], b = s->loss[k + 1], cc = s->loss[k + s->n_x + 1], d = s->loss[k + s->n_x];
            if (!isfinite(a) || !isfinite(b) || !isfinite(cc) || !isfinite(d)) continue;
            for (int l = 0; l < nl; l++) cell_contour(&g, l, lv_[l], i, j, a, b, cc, d, r, step);
        }
    /* the colours: log10 of the loss when it spans orders of magnitude (as the contours) */
    const int wide = isfinite(lo) && hi > lo && lo > 0 && wide_range(lo, hi);
    for (int k = 0; m && k < np; k++)
        m[k] = s->done[k] && isfinite(s->loss[k]) ? (float)(wide ? log10(s->loss[k]) : s->loss[k]) : NAN;
    if (wide) lo = log10(lo), hi = log10(hi);
    if (!isfinite(lo)) lo = 0, hi = 1;
    if (!(hi > lo)) hi = lo + 1;
    /* the overlay: the disc, the path, the centre */
    struct export_series lines[3];
    double dots[3];
    int n_lines = 0;
    float cx[73], cy[73], c0x[1] = {0}, c0y[1] = {0};
    char disc_name[64];
    if (s->radius > 0) {
        const double rad = s->sh.radius * step;
        for (int k = 0; k <= 72; k++) cx[k] = (float)(rad * cos(k * M_PI / 36)), cy[k] = (float)(rad * sin(k * M_PI / 36));
        snprintf(disc_name, sizeof disc_name, "sharpness disc (eps %.3g, %d points)", s->eps, s->sh.n_disc);
        lines[n_lines] = (struct export_series){cx, cy, 73, 0xff00ff, disc_name};
        dots[n_lines++] = 0;
    }
    float *qx = NULL, *qy = NULL;
    if (s->n_path > 1 && (qx = malloc(sizeof *qx * (size_t)s->n_path)) && (qy = malloc(sizeof *qy * (size_t)s->n_path))) {
        for (int e = 0; e < s->n_path; e++) qx[e] = (float)s->path[2 * e], qy[e] = (float)s->path[2 * e + 1];
        lines[n_lines] = (struct export_series){qx, qy, s->n_path, 0x00c000, "training path (epochs)"};
        dots[n_lines++] = 3;
    }
    lines[n_lines] = (struct export_series){c0x, c0y, 1, 0x000000, NULL};
    dots[n_lines++] = 4;
    const struct export_overlay ov = {g.xy, g.n, 0x000000, lines, n_lines, dots};
    struct coord_ticks t = {-r - step / 2, r + step / 2, s->n_x, s->n_x <= 13 ? 1 : (s->n_x - 1) / 4};
    const struct export_axis xa = {.lo = t.lo, .hi = t.hi, .label = "alpha (direction x)", .ticks = coord_tick,
                                   .user = &t, .n_ticks = s->n_x, .centred = 1};
    const struct export_axis ya = {.lo = t.lo, .hi = t.hi, .label = "beta (direction y)", .ticks = coord_tick,
                                   .user = &t, .n_ticks = s->n_y, .centred = 1};
    if (!m || (s->n_path > 1 && !(qx && qy))) st = (int)status_set(STATUS_NOMEM, "out of memory");
    else st = export_heatmap_overlay_png(path, w, h, title, m, s->n_y, s->n_x, (float)lo, (float)hi,
                                        wide ? "log10 loss" : "loss", &xa, &ya, &ov);
    pthread_mutex_unlock(&lv->lock);
    free(m), free(g.xy), free(g.level), free(qx), free(qy);
    return st;
}

/* ============================================================================ options */

enum lkind { LK_LANDSCAPE, LK_SHARPNESS, LK_TRAJECTORY };

struct lopts {
    char preset[16];
    int grid, dims, n, by_device, batch, pairs;
    double range, eps;
    uint64_t seeds[MAX_PAIRS];
    int n_seeds;                /* seeds given as a list */
    enum dataset_split split;
    char dirs[FS_PATH_MAX], save_dirs[FS_PATH_MAX], resume[FS_PATH_MAX], csv[FS_PATH_MAX];
    char compare[FS_PATH_MAX], dir[FS_PATH_MAX];
    /* given on the command line */
    int g_grid, g_range, g_dims, g_eps, g_seed, g_pairs, g_split, g_n, g_by, g_batch;
};

static int arg_double(struct app *a, const char *key, const char *value, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (!*value || *end || !isfinite(v)) return app_fail(a, STATUS_INVALID, "%s=%s: not a number", key, value);
    if (!(v > lo && v <= hi)) return app_fail(a, STATUS_INVALID, "%s=%s: more than %g and at most %g", key, value, lo, hi);
    *out = v;
    return STATUS_OK;
}

/* seed=N or seed=N,N,...: the seeds of the direction pairs. */
static int arg_seeds(struct app *a, const char *value, struct lopts *o)
{
    o->n_seeds = 0;
    for (const char *p = value;;) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p || errno || *p == '-' || (*end && *end != ','))
            return app_fail(a, STATUS_INVALID, "seed=%s: a seed (0 or more), or seeds separated by commas", value);
        if (o->n_seeds == MAX_PAIRS) return app_fail(a, STATUS_INVALID, "seed=%s: %d pairs at most", value, MAX_PAIRS);
        o->seeds[o->n_seeds++] = v;
        if (!*end) break;
        p = end + 1;
    }
    return STATUS_OK;
}

static int path_value(struct app *a, const char *key, const char *v, char *dst)
{
    if (!*v) return app_fail(a, STATUS_INVALID, "%s= needs a PATH", key);
    if (strlen(v) >= FS_PATH_MAX - 64) return app_fail(a, STATUS_INVALID, "%s=%.40s...: path too long", key, v);
    snprintf(dst, FS_PATH_MAX, "%s", v);
    return STATUS_OK;
}

static const char *const landscape_keys = "preset=, grid=, range=, seed=, pairs=, dims=, eps=, split=, n=, by=device, "
                                          "dirs=, save-dirs=, resume=, batch=, compare=, --csv FILE";

/* Parse the options of `cmd`; what the command does not take is refused, naming what it
 * takes. */
static int parse_lopts(struct app *a, enum lkind kind, int argc, char **argv, struct lopts *o)
{
    memset(o, 0, sizeof *o);
    const char *cmd = argv[0];
    const char *takes = kind == LK_TRAJECTORY ? "DIR, grid=, range=, split=, n=, batch=, --csv FILE"
                        : kind == LK_SHARPNESS ? "eps=, pairs=, seed=, by=device, preset=, grid=, range=, split=, n=, "
                                                 "dirs=, batch=, --csv FILE"
                                               : landscape_keys;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--csv")) {
            if (i + 1 >= argc) return app_fail(a, STATUS_INVALID, "%s: --csv needs a FILE", cmd);
            if (path_value(a, "--csv", argv[++i], o->csv)) return STATUS_INVALID;
            continue;
        }
        char *v = arg_split(argv[i]);
        const char *k = argv[i];
        long x;
        if (!v) {
            if (kind == LK_TRAJECTORY && !o->dir[0]) {
                if (path_value(a, "DIR", k, o->dir)) return STATUS_INVALID;
                continue;
            }
            return app_fail(a, STATUS_INVALID, "%s: unexpected '%s' (options: %s)", cmd, k, takes);
        }
        int traj_ok = !strcmp(k, "grid") || !strcmp(k, "range") || !strcmp(k, "split") || !strcmp(k, "n") ||
                      !strcmp(k, "batch") || !strcmp(k, "csv");
        int sharp_ok = traj_ok || !strcmp(k, "eps") || !strcmp(k, "pairs") || !strcmp(k, "seed") || !strcmp(k, "by") ||
                       !strcmp(k, "preset") || !strcmp(k, "dirs");
        if ((kind == LK_TRAJECTORY && !traj_ok) || (kind == LK_SHARPNESS && !sharp_ok))
            return app_fail(a, STATUS_INVALID, "%s: unknown option '%s' (options: %s)", cmd, k, takes);
        if (!strcmp(k, "preset")) {
            if (strcmp(v, "milling24") && strcmp(v, "li18"))
                return app_fail(a, STATUS_INVALID, "preset=%s: milling24 (11 x 11 on +-0.25, seeds 42, 43, 44) or li18 "
                                                   "(51 x 51 on +-1, seed 123)", v);
            snprintf(o->preset, sizeof o->preset, "%s", v);
        } else if (!strcmp(k, "grid")) {
            if (arg_int(a, k, v, 2, LANDSCAPE_MAX_N, &x)) return STATUS_INVALID;
            o->grid = (int)x, o->g_grid = 1;
        } else if (!strcmp(k, "range")) {
            if (arg_double(a, k, v, 0, 1e6, &o->range)) return STATUS_INVALID;
            o->g_range = 1;
        } else if (!strcmp(k, "eps")) {
            if (arg_double(a, k, v, 0, 1e6, &o->eps)) return STATUS_INVALID;
            o->g_eps = 1;
        } else if (!strcmp(k, "seed")) {
            if (arg_seeds(a, v, o)) return STATUS_INVALID;
            o->g_seed = 1;
        } else if (!strcmp(k, "pairs")) {
            if (arg_int(a, k, v, 1, MAX_PAIRS, &x)) return STATUS_INVALID;
            o->pairs = (int)x, o->g_pairs = 1;
        } else if (!strcmp(k, "dims")) {
            if (arg_int(a, k, v, 1, 2, &x)) return STATUS_INVALID;
            o->dims = (int)x, o->g_dims = 1;
        } else if (!strcmp(k, "split")) {
            if (!strcmp(v, "all")) o->split = DATASET_SPLIT_ANY;
            else if (dataset_split_parse(v, &o->split) || o->split == DATASET_SPLIT_NONE)
                return app_fail(a, STATUS_INVALID, "split=%s: train, evaluate, test or all", v);
            o->g_split = 1;
        } else if (!strcmp(k, "n")) {
            if (arg_int(a, k, v, 1, 1000000000, &x)) return STATUS_INVALID;
            o->n = (int)x, o->g_n = 1;
        } else if (!strcmp(k, "by")) {
            if (strcmp(v, "device")) return app_fail(a, STATUS_INVALID, "by=%s: by=device is the one grouping", v);
            o->by_device = 1, o->g_by = 1;
        } else if (!strcmp(k, "batch")) {
            if (arg_int(a, k, v, 1, 65536, &x)) return STATUS_INVALID;
            o->batch = (int)x, o->g_batch = 1;
        } else if (!strcmp(k, "dirs")) {
            if (path_value(a, k, v, o->dirs)) return STATUS_INVALID;
        } else if (!strcmp(k, "save-dirs")) {
            if (path_value(a, k, v, o->save_dirs)) return STATUS_INVALID;
        } else if (!strcmp(k, "resume")) {
            if (path_value(a, k, v, o->resume)) return STATUS_INVALID;
        } else if (!strcmp(k, "compare")) {
            if (path_value(a, k, v, o->compare)) return STATUS_INVALID;
        } else if (!strcmp(k, "csv")) {
            if (path_value(a, "csv", v, o->csv)) return STATUS_INVALID;
        } else {
            return app_fail(a, STATUS_INVALID, "%s: unknown option '%s' (options: %s)", cmd, k, takes);
        }
    }
    return STATUS_OK;
}

/* The value of key in a line of "key=value" words ("" when absent), into buf. */
static const char *word_value(const char *line, const char *key, char *buf, size_t n)
{
    size_t k = strlen(key);
    buf[0] = '\0';
    for (const char *p = line; (p = strstr(p, key)); p += k) {
        if ((p != line && p[-1] != ' ') || p[k] != '=') continue;
        const char *v = p + k + 1;
        size_t len = strcspn(v, " \n");
        snprintf(buf, n, "%.*s", (int)(len < n ? len : n - 1), v);
        return buf;
    }
    return buf;
}

/* The first of path, or for a run of several pairs its first STEM-s<seed>.csv, that
 * exists, into buf. */
static int resume_file(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    if (f) {
        fclose(f);
        snprintf(buf, n, "%s", path);
        return 1;
    }
    char pat[FS_PATH_MAX + 32];
    size_t len = strlen(path);
    int csv = len > 4 && !strcmp(path + len - 4, ".csv");
    snprintf(pat, sizeof pat, "%.*s-s*.csv", (int)(csv ? len - 4 : len), path);
    glob_t g;
    int r = glob(pat, 0, NULL, &g), found = r == 0 && g.gl_pathc > 0;
    if (found) snprintf(buf, n, "%s", g.gl_pathv[0]);
    if (r == 0 || r == GLOB_NOMATCH) globfree(&g);
    return found;
}

/* resume=FILE: the run's settings from the file's "basin landscape" line, for every
 * option not given again (a setting given again must agree). */
static int resume_settings(struct app *a, const char *cmd, struct lopts *o)
{
    char file[FS_PATH_MAX + 64];
    if (!resume_file(o->resume, file, sizeof file))
        return app_fail(a, STATUS_INVALID, "%s: resume=%s: no such file (nor a run's %s-s<seed>.csv files)", cmd,
                        o->resume, o->resume);
    FILE *f = fopen(file, "r");
    if (!f) return app_fail(a, STATUS_INVALID, "%s: %s: %s", cmd, file, strerror(errno));
    char line[4096], head[4096] = "";
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "# basin landscape ", 18)) {
            snprintf(head, sizeof head, "%s", line + 2);
            break;
        }
    fclose(f);
    if (!head[0]) return STATUS_OK; /* a file without basin's settings (basin_ref.py's): the options as given */
    char v[1024];
    long x;
    if (*word_value(head, "grid", v, sizeof v)) {
        if (sscanf(v, "%ld", &x) != 1) return app_fail(a, STATUS_FORMAT, "%s: %s: bad grid=%s", cmd, file, v);
        if (o->g_grid && x != o->grid)
            return app_fail(a, STATUS_INVALID, "%s: %s holds a grid of %ld, not grid=%d", cmd, file, x, o->grid);
        o->grid = (int)x, o->g_grid = 1;
    }
    if (*word_value(head, "dims", v, sizeof v)) {
        x = atol(v);
        if (o->g_dims && x != o->dims)
            return app_fail(a, STATUS_INVALID, "%s: %s holds a %ld-D landscape, not dims=%d", cmd, file, x, o->dims);
        o->dims = (int)x, o->g_dims = 1;
    }
    if (*word_value(head, "range", v, sizeof v)) {
        double r = atof(v);
        if (o->g_range && fabs(r - o->range) > 1e-9 * r)
            return app_fail(a, STATUS_INVALID, "%s: %s has range=%s, not range=%g", cmd, file, v, o->range);
        o->range = r, o->g_range = 1;
    }
    if (*word_value(head, "seeds", v, sizeof v) && strcmp(v, "-")) {
        struct lopts t = *o;
        if (arg_seeds(a, v, &t)) return STATUS_INVALID;
        if (o->g_seed && (t.n_seeds != o->n_seeds || memcmp(t.seeds, o->seeds, sizeof *t.seeds * (size_t)t.n_seeds)))
            return app_fail(a, STATUS_INVALID, "%s: %s was computed with seeds %s, not the ones given", cmd, file, v);
        memcpy(o->seeds, t.seeds, sizeof o->seeds);
        o->n_seeds = t.n_seeds, o->g_seed = 1;
        if (o->g_pairs && o->pairs != o->n_seeds)
            return app_fail(a, STATUS_INVALID, "%s: %s has %d pairs, not pairs=%d", cmd, file, o->n_seeds, o->pairs);
    }
    if (*word_value(head, "split", v, sizeof v)) {
        enum dataset_split sp = DATASET_SPLIT_ANY;
        if (strcmp(v, "all") && dataset_split_parse(v, &sp))
            return app_fail(a, STATUS_FORMAT, "%s: %s: bad split=%s", cmd, file, v);
        if (o->g_split && sp != o->split)
            return app_fail(a, STATUS_INVALID, "%s: %s is of the %s split", cmd, file, v);
        o->split = sp, o->g_split = 1;
    }
    if (*word_value(head, "subset", v, sizeof v) && !strcmp(v, "1")) {
        x = atol(word_value(head, "n", v, sizeof v));
        if (o->g_n && x != o->n) return app_fail(a, STATUS_INVALID, "%s: %s is of a subset of %ld clips", cmd, file, x);
        o->n = (int)x, o->g_n = 1;
    } else if (o->g_n) {
        return app_fail(a, STATUS_INVALID, "%s: %s is of the whole split; n= cannot change that", cmd, file);
    }
    if (*word_value(head, "by", v, sizeof v) && !strcmp(v, "device")) o->by_device = 1;
    if (*word_value(head, "eps", v, sizeof v) && !o->g_eps) o->eps = atof(v), o->g_eps = 1;
    if (*word_value(head, "dirs", v, sizeof v) && strcmp(v, "-") && !o->dirs[0]) snprintf(o->dirs, sizeof o->dirs, "%s", v);
    return STATUS_OK;
}

/* Defaults and presets, then the checks that span options. */
static int resolve_lopts(struct app *a, enum lkind kind, struct lopts *o)
{
    const char *cmd = kind == LK_LANDSCAPE ? "landscape" : kind == LK_SHARPNESS ? "sharpness" : "trajectory";
    if (o->resume[0]) {
        if (o->compare[0]) return app_fail(a, STATUS_INVALID, "%s: resume= and compare= do not go together", cmd);
        if (o->csv[0] && strcmp(o->csv, o->resume))
            return app_fail(a, STATUS_INVALID, "%s: resume=%s writes back to that file; --csv names another", cmd, o->resume);
        if (resume_settings(a, cmd, o)) return STATUS_INVALID;
        snprintf(o->csv, sizeof o->csv, "%s", o->resume);
    }
    if (!strcmp(o->preset, "li18")) {
        /* ref: mission-anchors 1.5, 8: loss-landscape's -1:1:51, torch.manual_seed(123) */
        if (!o->g_grid) o->grid = 51;
        if (!o->g_range) o->range = 1.0;
        if (!o->g_seed) o->seeds[0] = 123, o->n_seeds = 1;
    } else if (!strcmp(o->preset, "milling24") || kind == LK_SHARPNESS) {
        /* ref: mission-anchors 1.5, 1.7: ASC_Sharpness's 11 x 11 on +-0.25, seeds 42, 43, 44 */
        if (!o->g_grid) o->grid = 11;
        if (!o->g_range) o->range = 0.25;
        if (!o->g_seed && !o->g_pairs) o->seeds[0] = 42, o->seeds[1] = 43, o->seeds[2] = 44, o->n_seeds = 3;
    }
    if (kind == LK_TRAJECTORY) {
        if (!o->g_grid) o->grid = 21;
        o->n_seeds = 1;
    }
    if (!o->grid) o->grid = 11;
    if (!o->range && kind != LK_TRAJECTORY) o->range = 0.25;
    if (!o->dims) o->dims = 2;
    if (!o->g_split) o->split = DATASET_SPLIT_TRAIN;
    if (!o->n_seeds) o->seeds[0] = 42, o->n_seeds = 1;
    if (o->g_pairs) {
        if (o->g_seed && o->n_seeds > 1 && o->n_seeds != o->pairs)
            return app_fail(a, STATUS_INVALID, "%s: %d seeds for pairs=%d", cmd, o->n_seeds, o->pairs);
        for (int p = o->n_seeds; p < o->pairs; p++) o->seeds[p] = o->seeds[0] + (uint64_t)p;
        o->n_seeds = o->pairs;
    }
    o->pairs = o->n_seeds;
    if (o->dirs[0] && o->pairs > 1)
        return app_fail(a, STATUS_INVALID, "%s: dirs= gives one pair of directions; pairs=%d asks for %d", cmd,
                        o->pairs, o->pairs);
    if (o->dirs[0] && o->g_seed && !o->resume[0])
        return app_fail(a, STATUS_INVALID, "%s: dirs= loads the directions; seed= would draw them", cmd);
    if (o->compare[0] && o->pairs > 1)
        return app_fail(a, STATUS_INVALID, "%s: compare= draws one pair per model; give one seed (not %d pairs)", cmd,
                        o->pairs);
    if (o->compare[0] && o->dirs[0])
        return app_fail(a, STATUS_INVALID, "%s: compare= draws each model's own directions; dirs= fits one model", cmd);
    /* the sharpness radius: 0.25 by default (ref: mission-anchors 1.6, 8), never past the grid */
    if (kind == LK_TRAJECTORY) o->eps = 0; /* unit PCA directions: no sharpness disc */
    else if (!o->g_eps) o->eps = o->range < 0.25 ? o->range : 0.25;
    if (kind != LK_TRAJECTORY && o->eps > o->range * (1 + 1e-12))
        return app_fail(a, STATUS_INVALID, "%s: eps=%g is larger than range=%g: the disc would leave the grid", cmd,
                        o->eps, o->range);
    return STATUS_OK;
}

/* ============================================================================ the job */

/* One surface under way in the job. */
struct lrun {
    int si;                     /* its index in the view */
    int q;                      /* which model: 0, or 1 (compare's second) */
    int pair;                   /* 0-based */
    struct directions *d;
    struct landscape *L;
    char file[FS_PATH_MAX + 96];
    double last_write;
    int n_loaded, n_reused;     /* points read from its files / taken from the session */
    int files_missing;          /* resume=: a per-device file of the run was not there */
};

struct ljob {
    struct app *a;
    struct job *job;
    enum lkind kind;
    struct lopts o;
    int n_models;
    struct model *model[2];     /* [0] the session's (borrowed) or the trajectory's end (owned) */
    int own_model[2];
    char name[2][300];
    struct frontend_params fp[2];
    const char *fp_from[2];
    const struct dataset *ds;
    char ds_path[1024];
    char **devices;             /* (n_devices) names; owned */
    int n_devices;
    struct directions *loaded;  /* dirs=: owned */
    uint64_t model_hash[2];
    uint64_t subset_seed;
    struct lview *lv;
    int first, n_surf;          /* the run's surfaces in the view */
    int reuse[MAX_PAIRS];       /* sharpness: a surface of the session with the same grid, or -1 */
    /* work */
    struct landscape_data data[2];
    struct landscape_clips clips[2];
    struct landscape_eval *ev[2];
    int batch, threads;
    int n_clips[2], n_split[2], subset[2];  /* kept after the features are released */
    double seconds;             /* computing points */
    long computed, pts_loaded, pts_reused;
    char files[MAX_PAIRS + 2][FS_PATH_MAX + 96];
    int n_files, n_dev_files;
    char kept[MAX_PAIRS + 2][FS_PATH_MAX + 96]; /* complete files read back, not rewritten */
    int n_kept;
    int wrote;                  /* the CSV files exist */
    char stopped[300];
    char sharp_csv[FS_PATH_MAX];  /* sharpness --csv FILE */
    /* trajectory */
    char **ck_paths;
    int *ck_epochs, n_ck;
    float **ck_w, **ck_buf;
    struct trajectory tr;
    double *ck_loss, *ck_acc;
    long n_used;                /* parameters in the PCA */
    struct directions *pca;
};

static const char *split_word(enum dataset_split s)
{
    return s == DATASET_SPLIT_ANY ? "all" : dataset_split_name(s);
}

/* The CSV of surface r, group g (-1: overall) into buf. */
static void csv_name(const struct ljob *lj, const struct lrun *r, int g, char *buf, size_t n)
{
    const char *csv = lj->o.csv;
    size_t len = strlen(csv);
    int ext = len > 4 && !strcmp(csv + len - 4, ".csv");
    char tag[64] = "", dev[300] = "";
    if (lj->o.compare[0]) snprintf(tag, sizeof tag, "%s", r->q == 1 ? "-compare" : "");
    else if (lj->n_surf > 1) snprintf(tag, sizeof tag, "-s%llu", (unsigned long long)lj->o.seeds[r->pair]);
    if (g >= 0) snprintf(dev, sizeof dev, "-dev-%s", lj->devices[g]);
    snprintf(buf, n, "%.*s%s%s.csv", (int)(ext ? len - 4 : len), csv, tag, dev);
}

static void seeds_word(const struct ljob *lj, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
    if (lj->loaded || lj->kind == LK_TRAJECTORY) {
        snprintf(buf, n, "-");
        return;
    }
    for (int p = 0; p < lj->o.pairs && k < n; p++)
        k += (size_t)snprintf(buf + k, n - k, "%s%llu", p ? "," : "", (unsigned long long)lj->o.seeds[p]);
}

/* The comment lines of a surface's file: the run's settings (what resume= reads), what
 * this surface is of, and its sharpness as basin_ref.py prints it. */
static void trailer_of(const struct ljob *lj, const struct lrun *r, int g, struct strbuf *b)
{
    const struct landscape_surface *s = landscape_surface(r->L);
    const struct landscape_data *d = &lj->data[r->q];
    char seeds[400];
    seeds_word(lj, seeds, sizeof seeds);
    strbuf_printf(b, "basin landscape grid=%d dims=%d range=%.17g seeds=%s split=%s n=%d of=%d subset=%d "
                  "subset_seed=%llu by=%s eps=%.17g dirs=%s\n", s->n_x, s->n_y > 1 ? 2 : 1, s->range, seeds,
                  split_word(lj->o.split), d->clips.n, d->n_split, d->subset, (unsigned long long)d->subset_seed,
                  lj->o.by_device ? "device" : "all", lj->o.eps, lj->o.dirs[0] ? lj->o.dirs : "-");
    char seed[32] = "-";
    if (r->d->has_seed) snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->d->seed);
    strbuf_printf(b, "pair=%d seed=%s group=%s model=%016llx directions=%016llx norm=%s arch=%s model_file=%s\n",
                  r->pair + 1, seed, g < 0 ? "all" : lj->devices[g], (unsigned long long)lj->model_hash[r->q],
                  (unsigned long long)directions_hash(r->d), r->d->norm, arch_name(lj->model[r->q]->cfg.arch),
                  lj->name[r->q]);
    struct sharpness sh;
    const double *loss = g < 0 ? s->loss : s->group_loss + (long)g * s->n_points;
    double *tmp = malloc(sizeof *tmp * (size_t)s->n_points);
    if (!tmp) return;
    for (int k = 0; k < s->n_points; k++) tmp[k] = s->done[k] ? loss[k] : NAN;
    sharpness_of(tmp, s->n_x, s->n_y, sharpness_radius(lj->o.eps, s->range, s->n_x), &sh);
    free(tmp);
    strbuf_printf(b, "sharpness %.6f  eps %g  R %d cells  %d disc points  min %.9g  N %ld", sh.s, lj->o.eps, sh.radius,
                  sh.n_disc, sh.min_grid, g < 0 ? (long)d->clips.n : s->group_n[g]);
    if (sh.n_missing) strbuf_printf(b, "  (%d of %d points missing)", sh.n_missing, s->n_points);
    strbuf_puts(b, "\n");
}

/* Write the files of surface r (overall and per device), atomically. */
static int write_files(struct ljob *lj, struct lrun *r)
{
    const struct landscape_surface *s = landscape_surface(r->L);
    int st = STATUS_OK;
    for (int g = -1; g < s->n_groups && !st; g++) {
        if (g >= 0 && !s->group_n[g]) continue;
        char path[FS_PATH_MAX + 96];
        csv_name(lj, r, g, path, sizeof path);
        struct strbuf b = {0};
        trailer_of(lj, r, g, &b);
        st = b.failed ? (int)status_set(STATUS_NOMEM, "out of memory") : landscape_csv_write(s, g, path, b.p);
        strbuf_fini(&b);
    }
    r->last_write = now_s();
    if (!st) lj->wrote = 1;
    return st;
}

/* Copy surface s into the view's surface (point k, or all when k < 0) and its sharpness. */
static void sync_view(struct ljob *lj, int si, const struct landscape_surface *s, int k)
{
    struct lview *lv = lj->lv;
    pthread_mutex_lock(&lv->lock);
    struct lsurf *ls = lv->s[si];
    const int k0 = k < 0 ? 0 : k, k1 = k < 0 ? s->n_points : k + 1;
    for (int i = k0; i < k1; i++) {
        ls->done[i] = s->done[i];
        ls->loss[i] = s->done[i] ? s->loss[i] : NAN;
        ls->acc[i] = s->done[i] ? s->acc[i] : NAN;
        for (int g = 0; g < ls->n_groups && g < s->n_groups; g++) {
            ls->group_loss[(long)g * s->n_points + i] = s->done[i] ? s->group_loss[(long)g * s->n_points + i] : NAN;
            ls->group_acc[(long)g * s->n_points + i] = s->done[i] ? s->group_acc[(long)g * s->n_points + i] : NAN;
        }
    }
    for (int g = 0; g < ls->n_groups && g < s->n_groups; g++) ls->group_n[g] = s->group_n[g];
    ls->n_done = s->n_done;
    sharpness_of(ls->loss, ls->n_x, ls->n_y, ls->radius, &ls->sh);
    ls->complete = ls->n_done == ls->n_points;
    pthread_mutex_unlock(&lv->lock);
    app_views_changed(lj->a);
}

static int check_identity(const struct ljob *lj, const struct lrun *r, const char *file, const char *trailer)
{
    char v[64];
    word_value(trailer, "model", v, sizeof v);
    if (*v && strtoull(v, NULL, 16) != lj->model_hash[r->q])
        return status_set(STATUS_MISMATCH, "%s was computed on other weights (model %s; %s hashes to %016llx)", file, v,
                          lj->name[r->q], (unsigned long long)lj->model_hash[r->q]);
    word_value(trailer, "directions", v, sizeof v);
    if (*v && strtoull(v, NULL, 16) != directions_hash(r->d))
        return status_set(STATUS_MISMATCH, "%s was computed along other directions (%s; these hash to %016llx)", file,
                          v, (unsigned long long)directions_hash(r->d));
    return STATUS_OK;
}

/* The points a run already has: its files (resume=) or a surface of the session
 * (sharpness). */
static int preload(struct ljob *lj, struct lrun *r)
{
    const struct landscape_surface *s = landscape_surface(r->L);
    int st = STATUS_OK;
    if (lj->o.resume[0]) {
        char trailer[4096];
        for (int g = -1; g < s->n_groups && !st; g++) {
            if (g >= 0 && !s->group_n[g]) continue;
            char path[FS_PATH_MAX + 96];
            csv_name(lj, r, g, path, sizeof path);
            FILE *f = fopen(path, "r");
            if (!f) { /* not started yet */
                r->files_missing = 1;
                continue;
            }
            fclose(f);
            int rows = 0;
            st = landscape_csv_load(r->L, g, path, trailer, sizeof trailer, &rows);
            if (!st) st = check_identity(lj, r, path, trailer);
        }
        r->n_loaded = s->n_done;
    } else if (lj->kind == LK_SHARPNESS && lj->reuse[r->pair] >= 0) {
        struct lview *lv = lj->lv;
        pthread_mutex_lock(&lv->lock);
        const struct lsurf *o = lv->s[lj->reuse[r->pair]];
        for (int k = 0; k < o->n_points && !st; k++) {
            if (!o->done[k]) continue;
            st = landscape_set(r->L, -1, k % o->n_x, k / o->n_x, o->loss[k], o->acc[k]);
            for (int g = 0; g < s->n_groups && g < o->n_groups && !st; g++)
                if (s->group_n[g])
                    st = landscape_set(r->L, g, k % o->n_x, k / o->n_x, o->group_loss[(long)g * o->n_points + k],
                                       o->group_acc[(long)g * o->n_points + k]);
        }
        pthread_mutex_unlock(&lv->lock);
        r->n_reused = s->n_done;
    }
    return st;
}

struct oprog {
    const struct progress *up;
    long base, total;
};

static int oprog_fn(void *user, const char *label, long done, long total)
{
    (void)label, (void)total;
    const struct oprog *o = user;
    return progress_report(o->up, "landscape", o->base + done, o->total);
}

static void point_message(struct ljob *lj, const struct lrun *r, int stage, int n_stages)
{
    const struct landscape_surface *s = landscape_surface(r->L);
    struct lview *lv = lj->lv;
    pthread_mutex_lock(&lv->lock);
    const struct sharpness sh = lv->s[r->si]->sh;
    pthread_mutex_unlock(&lv->lock);
    char pair[64] = "";
    if (n_stages > 1) snprintf(pair, sizeof pair, "pair %d/%d  ", stage + 1, n_stages);
    char miss[48] = "";
    if (sh.n_disc_missing) snprintf(miss, sizeof miss, " (%d disc points missing)", sh.n_disc_missing);
    if (isnan(sh.s) || lj->kind == LK_TRAJECTORY)
        job_set_message(lj->job, "%s%d/%d points", pair, s->n_done, s->n_points);
    else
        job_set_message(lj->job, "%s%d/%d points  S %.4g%s  min loss %.4g", pair, s->n_done, s->n_points, sh.s, miss,
                        sh.min_grid);
}

/* Every surface of the run: per pair one after the other, or (compare=) both models'
 * surfaces point by point; files rewritten at most once a second and at the end. */
static int run_surfaces(struct ljob *lj, const struct progress *jp)
{
    const int compare = lj->o.compare[0] != '\0';
    const int n_stages = compare ? 1 : lj->n_surf, per_stage = compare ? 2 : 1;
    struct lview *lv = lj->lv;
    pthread_mutex_lock(&lv->lock);
    const int n_x = lv->s[lj->first]->n_x, n_y = lv->s[lj->first]->n_y;
    const double range = lv->s[lj->first]->range;
    pthread_mutex_unlock(&lv->lock);
    const int np = n_x * n_y;
    int *order = malloc(sizeof *order * (size_t)np);
    if (!order) return status_set(STATUS_NOMEM, "out of memory");
    landscape_order(n_x, n_y, order);
    long total = 0, done = 0;
    for (int q = 0; q < lj->n_models; q++) total += (long)np * lj->clips[q].n * (compare ? 1 : lj->n_surf);
    const struct landscape_opts lo = {.n = n_x, .range = range, .dims = n_y > 1 ? 2 : 1};
    int st = STATUS_OK;
    for (int stage = 0; stage < n_stages && !st; stage++) {
        struct lrun run[2];
        memset(run, 0, sizeof run);
        for (int q = 0; q < per_stage && !st; q++) {
            struct lrun *r = &run[q];
            r->q = q, r->pair = compare ? 0 : stage, r->si = lj->first + (compare ? q : stage);
            struct model *m = lj->model[q];
            if (lj->kind == LK_TRAJECTORY) {
                r->d = lj->pca;
            } else if (lj->loaded) {
                r->d = lj->loaded;
            } else {
                job_set_message(lj->job, "drawing directions (seed %llu)", (unsigned long long)lj->o.seeds[r->pair]);
                st = directions_random(&r->d, m, lj->o.seeds[r->pair]);
            }
            if (!st && lj->o.save_dirs[0]) {
                char path[FS_PATH_MAX + 96];
                const char *sd = lj->o.save_dirs;
                size_t len = strlen(sd);
                int ext = len > 12 && !strcmp(sd + len - 12, ".safetensors");
                if (q == 1) snprintf(path, sizeof path, "%.*s-compare.safetensors", (int)(ext ? len - 12 : len), sd);
                else if (lj->n_surf > 1 && !compare)
                    snprintf(path, sizeof path, "%.*s-s%llu.safetensors", (int)(ext ? len - 12 : len), sd,
                             (unsigned long long)lj->o.seeds[r->pair]);
                else snprintf(path, sizeof path, "%s", sd);
                st = directions_save(r->d, m, path);
                if (!st && lj->n_files < MAX_PAIRS + 2) snprintf(lj->files[lj->n_files++], sizeof lj->files[0], "%s", path);
            }
            if (!st) st = landscape_create(&r->L, lj->ev[q], r->d, &lo);
            if (!st) {
                pthread_mutex_lock(&lv->lock);
                lv->s[r->si]->dirs_hash = directions_hash(r->d);
                snprintf(lv->s[r->si]->norm, sizeof lv->s[r->si]->norm, "%s", r->d->norm);
                pthread_mutex_unlock(&lv->lock);
                st = preload(lj, r);
            }
            if (!st) {
                const struct landscape_surface *s = landscape_surface(r->L);
                sync_view(lj, r->si, s, -1);
                done += (long)s->n_done * lj->clips[q].n;
                lj->pts_loaded += r->n_loaded, lj->pts_reused += r->n_reused;
                csv_name(lj, r, -1, r->file, sizeof r->file);
            }
        }
        if (!st) {
            pthread_mutex_lock(&lv->lock);
            if (n_stages > 1) snprintf(lv->note, sizeof lv->note, "pair %d of %d", stage + 1, n_stages);
            lv->shown[0] = run[0].si, lv->n_shown = 1;
            if (compare) lv->shown[1] = run[1].si, lv->n_shown = 2;
            pthread_mutex_unlock(&lv->lock);
            app_views_changed(lj->a);
        }
        for (int i = 0; i < np && !st; i++)
            for (int q = 0; q < per_stage && !st; q++) {
                struct lrun *r = &run[q];
                const struct landscape_surface *s = landscape_surface(r->L);
                const int k = order[i];
                if (s->done[k]) continue;
                struct oprog op = {jp, done, total};
                const struct progress pp = {oprog_fn, &op};
                const double t0 = now_s();
                st = landscape_point(r->L, k % n_x, k / n_x, &pp);
                if (st) break;
                lj->seconds += now_s() - t0;
                lj->computed++;
                done += lj->clips[q].n;
                sync_view(lj, r->si, s, k);
                point_message(lj, r, stage, n_stages);
                if (now_s() - r->last_write >= 1.0) st = write_files(lj, r);
            }
        /* the files hold what is done, also after a stop or an error; a grid whose every
         * point came from its files (resume= of a finished run, as a session load does) or
         * from the session (sharpness) has its files already, and they are left untouched */
        for (int q = 0; q < per_stage; q++) {
            struct lrun *r = &run[q];
            const int had_all = r->L && !r->files_missing &&
                                r->n_loaded + r->n_reused == landscape_surface(r->L)->n_points;
            if (r->L && had_all && r->n_loaded && lj->n_kept < MAX_PAIRS + 2)
                csv_name(lj, r, -1, lj->kept[lj->n_kept++], sizeof lj->kept[0]);
            if (r->L && !had_all) {
                int w = write_files(lj, r);
                if (!st) st = w;
                if (lj->n_files < MAX_PAIRS + 2) csv_name(lj, r, -1, lj->files[lj->n_files++], sizeof lj->files[0]);
                for (int g = 0; g < landscape_surface(r->L)->n_groups; g++) lj->n_dev_files += landscape_surface(r->L)->group_n[g] > 0;
            }
            landscape_destroy(r->L);
            if (r->d != lj->loaded && r->d != lj->pca) directions_destroy(r->d);
        }
    }
    free(order);
    if (st == STATUS_CANCELLED) {
        pthread_mutex_lock(&lv->lock);
        int k = 0, done_pts = 0;
        for (k = 0; k < lj->n_surf && lv->s[lj->first + k]->complete; k++) done_pts += lv->s[lj->first + k]->n_points;
        const int now = k < lj->n_surf ? lv->s[lj->first + k]->n_done : 0;
        pthread_mutex_unlock(&lv->lock);
        if (lj->n_surf > 1)
            snprintf(lj->stopped, sizeof lj->stopped, "stopped with %d of %d points of %s %d of %d (%d before it done)",
                     now, np, compare ? "model" : "pair", k + 1, lj->n_surf, done_pts);
        else
            snprintf(lj->stopped, sizeof lj->stopped, "stopped with %d of %d points", now, np);
        status_set(st, "%s", lj->stopped);
    }
    return st;
}

/* ============================================================================ trajectory */

/* The run's checkpoints, their PCA, the directions and the surface (the job's thread). */
static int traj_prepare(struct ljob *lj, const struct progress *jp)
{
    const int n = lj->n_ck;
    lj->ck_w = calloc((size_t)n, sizeof *lj->ck_w);
    lj->ck_buf = calloc((size_t)n, sizeof *lj->ck_buf);
    if (!lj->ck_w || !lj->ck_buf) return status_set(STATUS_NOMEM, "out of memory");
    struct model *end = NULL;
    int s = model_load(&end, lj->ck_paths[n - 1]);
    if (s) return s;
    lj->model[0] = end, lj->own_model[0] = 1;
    snprintf(lj->name[0], sizeof lj->name[0], "%.290s", lj->ck_paths[n - 1]);
    const long P = end->g->store.n_params, B = end->g->store.n_buffers;
    char cfg_end[512], cfg[512];
    model_config_str(&end->cfg, cfg_end, sizeof cfg_end);
    for (int e = 0; e < n && !s; e++) {
        job_set_message(lj->job, "loading checkpoint %d of %d", e + 1, n);
        if (!progress_report(jp, "checkpoints", e, n)) return status_set(STATUS_CANCELLED, "trajectory: cancelled");
        struct model *m = end;
        if (e < n - 1 && (s = model_load(&m, lj->ck_paths[e]))) return s;
        model_config_str(&m->cfg, cfg, sizeof cfg);
        if (m->cfg.arch != end->cfg.arch || strcmp(cfg, cfg_end) || m->g->store.n_params != P)
            s = status_set(STATUS_MISMATCH, "%s is a %s %s, the run's end %s a %s %s", lj->ck_paths[e],
                           arch_name(m->cfg.arch), cfg, lj->ck_paths[n - 1], arch_name(end->cfg.arch), cfg_end);
        if (!s && (!(lj->ck_w[e] = malloc(sizeof(float) * (size_t)(P + 1))) ||
                   !(lj->ck_buf[e] = malloc(sizeof(float) * (size_t)(B + 1)))))
            s = status_set(STATUS_NOMEM, "trajectory: out of memory for %d checkpoints of %ld parameters", n, P);
        if (!s) {
            memcpy(lj->ck_w[e], m->g->store.w, sizeof(float) * (size_t)P);
            memcpy(lj->ck_buf[e], m->g->store.buf, sizeof(float) * (size_t)B);
        }
        if (m != end) model_destroy(m);
    }
    if (s) return s;
    /* the conv and linear weights: what the landscape perturbs (1-D tensors stay fixed) */
    unsigned char *use = calloc((size_t)P + 1, 1);
    if (!use) return status_set(STATUS_NOMEM, "out of memory");
    const struct graph *g = end->g;
    for (int k = 0; k < g->n_tensors; k++)
        if (g->tensors[k].kind == TENSOR_WEIGHT) {
            memset(use + g->tensors[k].offset, 1, (size_t)g->tensors[k].numel);
            lj->n_used += g->tensors[k].numel;
        }
    job_set_message(lj->job, "PCA of %d checkpoints", n);
    s = trajectory_pca(&lj->tr, (const float *const *)lj->ck_w, n, P, use);
    free(use);
    if (!s) s = directions_create(&lj->pca, end);
    if (s) return s;
    memcpy(lj->pca->x, lj->tr.d1, sizeof(float) * (size_t)P);
    memcpy(lj->pca->y, lj->tr.d2, sizeof(float) * (size_t)P);
    snprintf(lj->pca->norm, sizeof lj->pca->norm, "pca");
    if (!lj->o.g_range) {
        double mx = 0;
        for (int e = 0; e < n; e++) mx = fmax(mx, fmax(fabs(lj->tr.xy[2 * e]), fabs(lj->tr.xy[2 * e + 1])));
        lj->o.range = mx > 0 ? 1.2 * mx : 1.0;
    }
    struct lsurf *ls = lsurf_new(lj->o.grid, lj->o.grid, lj->o.range, lj->o.by_device ? lj->n_devices : 0);
    if (!ls || !(ls->path = malloc(sizeof *ls->path * 2 * (size_t)n)) ||
        !(ls->path_epoch = malloc(sizeof *ls->path_epoch * (size_t)n))) {
        lsurf_free(ls);
        return status_set(STATUS_NOMEM, "out of memory");
    }
    memcpy(ls->path, lj->tr.xy, sizeof *ls->path * 2 * (size_t)n);
    memcpy(ls->path_epoch, lj->ck_epochs, sizeof *ls->path_epoch * (size_t)n);
    ls->n_path = n;
    lj->model_hash[0] = directions_model_hash(end);
    ls->model_hash = lj->model_hash[0];
    ls->dims = 2, ls->split = lj->o.split, ls->radius = 0, ls->eps = 0;
    ls->sh.s = NAN;
    snprintf(ls->norm, sizeof ls->norm, "pca");
    snprintf(ls->title, sizeof ls->title, "trajectory %.100s: epochs %d..%d on PC1 (%.0f %%) x PC2 (%.0f %%), "
             "+-%.3g, not filter-normalised", lj->o.dir, lj->ck_epochs[0], lj->ck_epochs[n - 1],
             100 * lj->tr.explained[0], 100 * lj->tr.explained[1], lj->o.range);
    lj->first = lview_add_run(lj->lv, &ls, 1);
    lj->n_surf = 1;
    app_views_changed(lj->a);
    return STATUS_OK;
}

/* The loss of every checkpoint with its own weights and BN statistics (the end's are put
 * back after). */
static int traj_losses(struct ljob *lj)
{
    const int n = lj->n_ck;
    struct model *m = lj->model[0];
    const long P = m->g->store.n_params, B = m->g->store.n_buffers;
    if (!(lj->ck_loss = calloc((size_t)n, sizeof *lj->ck_loss)) || !(lj->ck_acc = calloc((size_t)n, sizeof *lj->ck_acc)))
        return status_set(STATUS_NOMEM, "out of memory");
    int s = STATUS_OK;
    for (int e = 0; e < n && !s; e++) {
        job_set_message(lj->job, "loss of checkpoint %d of %d", e + 1, n);
        memcpy(m->g->store.w, lj->ck_w[e], sizeof(float) * (size_t)P);
        memcpy(m->g->store.buf, lj->ck_buf[e], sizeof(float) * (size_t)B);
        s = landscape_eval_run(lj->ev[0], &lj->ck_loss[e], &lj->ck_acc[e], NULL, NULL, NULL, 0, 0);
        if (!s && job_cancelled(lj->job)) s = status_set(STATUS_CANCELLED, "trajectory: cancelled");
    }
    memcpy(m->g->store.w, lj->ck_w[n - 1], sizeof(float) * (size_t)P);
    memcpy(m->g->store.buf, lj->ck_buf[n - 1], sizeof(float) * (size_t)B);
    return s;
}

/* ============================================================================ work, report */

static void free_work(struct ljob *lj)
{
    for (int q = 0; q < 2; q++) {
        landscape_eval_destroy(lj->ev[q]);
        lj->ev[q] = NULL;
        if (lj->data[q].f) {
            lj->n_clips[q] = lj->data[q].clips.n, lj->n_split[q] = lj->data[q].n_split;
            lj->subset[q] = lj->data[q].subset;
        }
        landscape_data_fini(&lj->data[q]);
    }
    for (int e = 0; e < lj->n_ck; e++) {
        if (lj->ck_w) free(lj->ck_w[e]);
        if (lj->ck_buf) free(lj->ck_buf[e]);
    }
    free(lj->ck_w), free(lj->ck_buf);
    lj->ck_w = lj->ck_buf = NULL;
    directions_destroy(lj->pca);
    lj->pca = NULL;
}

static void free_job(struct ljob *lj)
{
    free_work(lj);
    for (int q = 0; q < 2; q++)
        if (lj->own_model[q]) model_destroy(lj->model[q]);
    for (int d = 0; lj->devices && d < lj->n_devices; d++) free(lj->devices[d]);
    free(lj->devices);
    directions_destroy(lj->loaded);
    trajectory_list_free(lj->ck_paths, lj->ck_epochs, lj->n_ck);
    trajectory_fini(&lj->tr);
    free(lj->ck_loss), free(lj->ck_acc);
    free(lj);
}

static int lwork(struct job *j, void *arg)
{
    struct ljob *lj = arg;
    lj->job = j;
    lj->threads = threads_get();
    const struct progress *jp = job_progress(j);
    int s = STATUS_OK;
    if (lj->kind == LK_TRAJECTORY) s = traj_prepare(lj, jp);
    for (int q = 0; q < lj->n_models && !s; q++) {
        job_set_message(j, "features of the %s split", split_word(lj->o.split));
        const struct frontend_params *fp = lj->fp_from[q] ? &lj->fp[q] : NULL;
        struct frontend_params own;
        if (!fp && pipeline_model_frontend(lj->model[q], &own)) fp = &lj->fp[1]; /* no basin.frontend: the session's */
        s = landscape_data_load(&lj->data[q], lj->model[q], lj->ds, lj->o.split, lj->o.n, lj->subset_seed, fp, jp);
        if (s) break;
        lj->clips[q] = lj->data[q].clips;
        if (!lj->o.by_device) lj->clips[q].groups = NULL, lj->clips[q].n_groups = 0;
        s = landscape_eval_create(&lj->ev[q], lj->model[q], &lj->clips[q], lj->o.batch);
        if (!s) lj->batch = landscape_eval_batch(lj->ev[q]);
        lj->n_clips[q] = lj->data[q].clips.n, lj->n_split[q] = lj->data[q].n_split, lj->subset[q] = lj->data[q].subset;
    }
    if (!s && lj->kind == LK_TRAJECTORY) s = traj_losses(lj);
    if (!s) s = run_surfaces(lj, jp);
    char keep[600];
    snprintf(keep, sizeof keep, "%s", status_detail());
    free_work(lj);
    if (s) status_set(s, "%s", keep);
    return s;
}

/* Sharpness of group g (-1: overall) of a view surface. */
static void surf_sharpness(const struct lsurf *s, int g, struct sharpness *out)
{
    if (g < 0) {
        *out = s->sh;
        return;
    }
    double *tmp = malloc(sizeof *tmp * (size_t)s->n_points);
    if (!tmp) {
        memset(out, 0, sizeof *out);
        out->s = NAN;
        return;
    }
    for (int k = 0; k < s->n_points; k++) tmp[k] = s->done[k] ? s->group_loss[(long)g * s->n_points + k] : NAN;
    sharpness_of(tmp, s->n_x, s->n_y, s->radius, out);
    free(tmp);
}

static double surf_min(const struct lsurf *s, double *max)
{
    double lo = NAN, hi = NAN;
    for (int k = 0; k < s->n_points; k++)
        if (s->done[k]) {
            if (isnan(lo) || s->loss[k] < lo) lo = s->loss[k];
            if (isnan(hi) || s->loss[k] > hi) hi = s->loss[k];
        }
    *max = hi;
    return lo;
}

static void print_header(struct app *a, const struct ljob *lj)
{
    const int q = 0;
    if (lj->kind != LK_TRAJECTORY)
        app_out(a, "%s: %s (%s)", lj->kind == LK_SHARPNESS ? "sharpness" : "landscape", arch_name(lj->model[q]->cfg.arch),
                lj->name[q]);
    else
        app_out(a, "  landscape of %s (the run's end)", lj->name[q]);
    if (lj->o.compare[0]) app_out(a, " and %s (%s)", arch_name(lj->model[1]->cfg.arch), lj->name[1]);
    const char *split = lj->o.split == DATASET_SPLIT_ANY ? "whole set" : split_word(lj->o.split);
    if (lj->subset[q])
        app_out(a, "\n  data: %d clips of the %s's %d, a SUBSET (n=%d, drawn with seed %llu): not the whole split; %s\n",
                lj->n_clips[q], split, lj->n_split[q], lj->o.n, (unsigned long long)lj->subset_seed, lj->ds_path);
    else
        app_out(a, "\n  data: %d clips, the whole %s%s%s; %s\n", lj->n_clips[q], split,
                strcmp(split, "whole set") ? " split" : "",
                lj->n_clips[q] < lj->n_split[q] ? " (some clips failed to load)" : "", lj->ds_path);
    app_out(a, "  eval mode (BN running statistics, no dropout); biases and BN affine not perturbed; loss: mean "
               "cross-entropy, acc in %%\n");
}

static void print_device_table(struct app *a, const struct ljob *lj, struct lview *lv)
{
    const struct lsurf *s0 = lv->s[lj->first];
    if (!s0->n_groups) return;
    app_out(a, "  sharpness by device (each device's own grid from the same passes):\n  %-8s %6s", "device", "clips");
    for (int p = 0; p < lj->n_surf; p++) {
        const struct lsurf *s = lv->s[lj->first + p];
        char h[32];
        if (lj->o.compare[0]) snprintf(h, sizeof h, "%s", p ? "B" : "A");
        else if (s->has_seed) snprintf(h, sizeof h, "s%llu", (unsigned long long)s->seed);
        else snprintf(h, sizeof h, "pair %d", p + 1);
        app_out(a, " %9s", h);
    }
    if (lj->n_surf > 1 && !lj->o.compare[0]) app_out(a, " %9s %9s %9s", "mean", "std", "max");
    app_out(a, "\n");
    for (int g = 0; g < s0->n_groups; g++) {
        if (!s0->group_n[g]) continue;
        app_out(a, "  %-8s %6ld", lj->devices[g], s0->group_n[g]);
        double v[MAX_PAIRS];
        for (int p = 0; p < lj->n_surf; p++) {
            struct sharpness sh;
            surf_sharpness(lv->s[lj->first + p], g, &sh);
            v[p] = lv->s[lj->first + p]->complete ? sh.s : NAN;
            if (isnan(v[p])) app_out(a, " %9s", "-");
            else app_out(a, " %9.4g", v[p]);
        }
        if (lj->n_surf > 1 && !lj->o.compare[0]) {
            struct sharpness_stats st;
            sharpness_stats(v, lj->n_surf, &st);
            if (st.n) app_out(a, " %9.4g %9.3g %9.4g", st.mean, st.std, st.max);
        }
        app_out(a, "\n");
    }
}

static void print_timing(struct app *a, const struct ljob *lj)
{
    if (lj->computed) {
        const double per = lj->seconds / lj->computed;
        app_out(a, "  %ld point%s computed in %.1f s: %.3g s a point (%d clips: %.0f clips/s), %d thread%s, batch %d\n",
                lj->computed, lj->computed == 1 ? "" : "s", lj->seconds, per, lj->n_clips[0], lj->n_clips[0] / per,
                lj->threads, lj->threads == 1 ? "" : "s", lj->batch);
    }
    if (lj->pts_loaded) app_out(a, "  %ld points read back from the files (resume=)\n", lj->pts_loaded);
    if (lj->n_kept) { /* complete already: left as they were, still the session's results */
        app_out(a, "  unchanged");
        for (int i = 0; i < lj->n_kept; i++) app_out(a, "%s %s", i ? "," : "", lj->kept[i]), app_result_add(a, lj->kept[i]);
        app_out(a, "\n");
    }
    if (lj->pts_reused) app_out(a, "  %ld points reused from the session's landscapes\n", lj->pts_reused);
    if (lj->n_files) {
        app_out(a, "  wrote");
        for (int i = 0; i < lj->n_files; i++) app_out(a, "%s %s", i ? "," : "", lj->files[i]), app_result_add(a, lj->files[i]);
        if (lj->n_dev_files) app_out(a, " (+ %d per-device files, -dev-<device>.csv)", lj->n_dev_files);
        app_out(a, "\n");
    }
}

static void report(struct app *a, struct ljob *lj)
{
    struct lview *lv = lj->lv;
    pthread_mutex_lock(&lv->lock);
    const struct lsurf *s0 = lv->s[lj->first];
    if (lj->kind == LK_TRAJECTORY) {
        const struct trajectory *t = &lj->tr;
        app_out(a, "trajectory: %s: %d checkpoints (epochs %d..%d); PCA of w_e - w_end over the %ld conv and linear "
                   "weights (centred, as loss-landscape)\n", lj->o.dir, lj->n_ck, lj->ck_epochs[0],
                lj->ck_epochs[lj->n_ck - 1], lj->n_used);
        app_out(a, "  PC1 %.1f %%, PC2 %.1f %% of the path's variance; unit directions, not filter-normalised "
                   "(coordinates are distances in weight space)\n", 100 * t->explained[0], 100 * t->explained[1]);
        app_out(a, "  %6s %10s %10s %10s %9s %10s %7s\n", "epoch", "pc1", "pc2", "distance", "off-plane", "loss", "acc %");
        for (int e = 0; e < lj->n_ck; e++)
            app_out(a, "  %6d %10.4g %10.4g %10.4g %8.1f%% %10.4g %7.1f\n", lj->ck_epochs[e], t->xy[2 * e],
                    t->xy[2 * e + 1], t->distance[e], t->distance[e] > 0 ? 100 * t->residual[e] / t->distance[e] : 0.0,
                    lj->ck_loss ? lj->ck_loss[e] : NAN, lj->ck_acc ? lj->ck_acc[e] : NAN);
        app_out(a, "  (off-plane: the share of w_e - w_end the two directions miss; the landscape is exact only on the "
                   "plane, and uses the end's BN statistics)\n");
        print_header(a, lj);
        double hi, lo = surf_min(s0, &hi);
        app_out(a, "  grid %d x %d on +-%.4g around the end: loss %.4g..%.4g at %d of %d points\n", s0->n_x, s0->n_y,
                s0->range, lo, hi, s0->n_done, s0->n_points);
    } else {
        print_header(a, lj);
        const int R = s0->radius;
        if (lj->o.dirs[0]) app_out(a, "  directions: loaded from %s\n", lj->o.dirs);
        else
            app_out(a, "  directions: Gaussian per tensor from basin's generator, filter-normalised (mission-anchors "
                       "1.2), one pair per seed\n");
        if (s0->n_y > 1)
            app_out(a, "  grid %d x %d on [-%g, %g] (step %.4g), centre first then rings; eps %g: R %d cells, %d disc "
                       "points\n", s0->n_x, s0->n_y, s0->range, s0->range, 2 * s0->range / (s0->n_x - 1), lj->o.eps, R,
                    s0->sh.n_disc);
        else
            app_out(a, "  1-D slice of %d points on [-%g, %g] along x (beta 0); eps %g: the %d points within %d cells\n",
                    s0->n_x, s0->range, s0->range, lj->o.eps, s0->sh.n_disc, R);
        app_out(a, "  %-6s %8s %7s %11s %7s %10s %10s %10s\n", lj->o.compare[0] ? "model" : "pair", "seed", "points",
                "centre loss", "acc %", "min loss", "max loss", "sharpness");
        double v[MAX_PAIRS];
        for (int p = 0; p < MAX_PAIRS; p++) v[p] = NAN;
        for (int p = 0; p < lj->n_surf; p++) {
            const struct lsurf *s = lv->s[lj->first + p];
            const int c = (s->n_y / 2) * s->n_x + s->n_x / 2;
            const int centred = s->n_x % 2 && (s->n_y == 1 || s->n_y % 2);
            double hi, lo = surf_min(s, &hi);
            char seed[32] = "-", who[16];
            if (s->has_seed) snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seed);
            snprintf(who, sizeof who, lj->o.compare[0] ? (p ? "B" : "A") : "%d", p + 1);
            v[p] = s->complete ? s->sh.s : NAN;
            app_out(a, "  %-6s %8s %7d", who, seed, s->n_done);
            if (centred && s->done[c]) app_out(a, " %11.5g %7.1f", s->loss[c], s->acc[c]);
            else app_out(a, " %11s %7s", "-", "-");
            app_out(a, " %10.5g %10.5g", lo, hi);
            if (isnan(s->sh.s)) app_out(a, " %10s\n", "-");
            else app_out(a, " %10.5g%s\n", s->sh.s, s->complete ? "" : " (partial)");
        }
        if (lj->o.compare[0] && !isnan(v[0]) && !isnan(v[1]))
            app_out(a, "  A - B: sharpness %+.4g (A, %s, is %s)\n", v[0] - v[1], lj->name[0],
                    v[0] < v[1] ? "flatter" : v[0] > v[1] ? "sharper" : "as sharp");
        if (lj->n_surf > 1 && !lj->o.compare[0]) {
            struct sharpness_stats st;
            sharpness_stats(v, lj->n_surf, &st);
            if (st.n)
                app_out(a, "  sharpness over %d pair%s: mean %.5g, std %.4g (sample, n - 1), max %.5g\n", st.n,
                        st.n == 1 ? "" : "s", st.mean, st.std, st.max);
        }
        print_device_table(a, lj, lv);
    }
    pthread_mutex_unlock(&lv->lock);
    print_timing(a, lj);
}

/* sharpness --csv FILE: device,seed,eps,radius,disc_points,min_loss,max_disc_loss,sharpness
 * per device ("all" first) and pair, then the rows "mean", "std", "max" per device (in
 * the sharpness column). */
static int write_sharpness_csv(const struct ljob *lj, struct lview *lv, const char *path)
{
    struct strbuf b = {0};
    strbuf_puts(&b, "device,seed,eps,radius,disc_points,min_loss,max_disc_loss,sharpness,clips,subset\n");
    const struct lsurf *s0 = lv->s[lj->first];
    for (int g = -1; g < s0->n_groups; g++) {
        if (g >= 0 && !s0->group_n[g]) continue;
        const char *dev = g < 0 ? "all" : lj->devices[g];
        const long clips = g < 0 ? (long)lj->n_clips[0] : s0->group_n[g];
        double v[MAX_PAIRS];
        for (int p = 0; p < lj->n_surf; p++) {
            const struct lsurf *s = lv->s[lj->first + p];
            struct sharpness sh;
            surf_sharpness(s, g, &sh);
            v[p] = s->complete ? sh.s : NAN;
            strbuf_printf(&b, "%s,", dev);
            if (s->has_seed) strbuf_printf(&b, "%llu", (unsigned long long)s->seed);
            else strbuf_puts(&b, "-");
            strbuf_printf(&b, ",%.9g,%d,%d,%.9g,%.9g,%.9g,%ld,%d\n", lj->o.eps, sh.radius, sh.n_disc, sh.min_grid,
                          sh.max_disc, v[p], clips, lj->subset[0]);
        }
        struct sharpness_stats st;
        sharpness_stats(v, lj->n_surf, &st);
        const char *stat[3] = {"mean", "std", "max"};
        const double val[3] = {st.mean, st.std, st.max};
        for (int k = 0; k < 3; k++)
            strbuf_printf(&b, "%s,%s,%.9g,,,,,%.9g,%ld,%d\n", dev, stat[k], lj->o.eps, val[k], clips, lj->subset[0]);
    }
    int s = b.failed ? STATUS_NOMEM : fs_mkdir_parent(path);
    if (!s) s = fs_write_file(path, b.p, b.n, 0);
    strbuf_fini(&b);
    return s;
}

/* The trajectory's path: epoch,x,y,distance,residual,loss,acc. */
static int write_path_csv(const struct ljob *lj, const char *path)
{
    struct strbuf b = {0};
    strbuf_puts(&b, "epoch,x,y,distance,residual,loss,acc\n");
    for (int e = 0; e < lj->n_ck; e++)
        strbuf_printf(&b, "%d,%.9g,%.9g,%.9g,%.9g,%.9g,%.6g\n", lj->ck_epochs[e], lj->tr.xy[2 * e], lj->tr.xy[2 * e + 1],
                      lj->tr.distance[e], lj->tr.residual[e], lj->ck_loss ? lj->ck_loss[e] : NAN,
                      lj->ck_acc ? lj->ck_acc[e] : NAN);
    strbuf_printf(&b, "# loss and acc over %d clips of the %s split (of %d)%s\n", lj->n_clips[0], split_word(lj->o.split),
                  lj->n_split[0], lj->subset[0] ? ", a SUBSET (n=): not the whole split" : ", the whole split");
    int s = b.failed ? STATUS_NOMEM : fs_mkdir_parent(path);
    if (!s) s = fs_write_file(path, b.p, b.n, 0);
    strbuf_fini(&b);
    return s;
}

static void ldone(struct job *j, void *arg, int status)
{
    (void)j;
    struct ljob *lj = arg;
    struct app *a = lj->a;
    const char *cmd = lj->kind == LK_LANDSCAPE ? "landscape" : lj->kind == LK_SHARPNESS ? "sharpness" : "trajectory";
    char detail[600];
    snprintf(detail, sizeof detail, "%s", status_detail());
    struct lview *lv = lj->lv;
    pthread_mutex_lock(&lv->lock);
    int have_surface = lj->n_surf > 0 && lj->first < lv->n;
    if (status == STATUS_CANCELLED) snprintf(lv->note, sizeof lv->note, "stopped");
    else if (!status) lv->note[0] = '\0';
    else snprintf(lv->note, sizeof lv->note, "failed");
    pthread_mutex_unlock(&lv->lock);
    app_views_changed(a);
    if (have_surface && (status == 0 || (status == STATUS_CANCELLED && lj->n_clips[0] > 0))) {
        report(a, lj);
        if (!a->workbench && lj->kind != LK_SHARPNESS) { /* headless: the view's figure too, as erf prints its map */
            struct canvas c;
            if (!canvas_init(&c, render_columns(a->out), 24, canvas_mode_for(a->out))) {
                lview_draw(&c, lv);
                fflush(a->out);
                canvas_print(&c, a->out);
                canvas_fini(&c);
            }
        }
    }
    int s = status;
    if (!s && lj->kind == LK_SHARPNESS && lj->sharp_csv[0]) {
        pthread_mutex_lock(&lv->lock);
        s = write_sharpness_csv(lj, lv, lj->sharp_csv);
        pthread_mutex_unlock(&lv->lock);
        if (s) app_fail(a, s, "%s: %s", cmd, status_detail());
        else app_out(a, "  wrote %s (sharpness per device and pair, and mean, std, max)\n", lj->sharp_csv), app_result_add(a, lj->sharp_csv);
    }
    if (!s && lj->kind == LK_TRAJECTORY) {
        char path[FS_PATH_MAX + 32];
        size_t len = strlen(lj->o.csv);
        int ext = len > 4 && !strcmp(lj->o.csv + len - 4, ".csv");
        snprintf(path, sizeof path, "%.*s-path.csv", (int)(ext ? len - 4 : len), lj->o.csv);
        s = write_path_csv(lj, path);
        if (s) app_fail(a, s, "%s: %s", cmd, status_detail());
        else app_out(a, "  wrote %s (epoch,x,y,distance,residual,loss,acc)\n", path), app_result_add(a, path);
    }
    if (status == STATUS_CANCELLED && lj->wrote && lj->kind != LK_TRAJECTORY)
        app_fail(a, status, "%s: %s; the files hold them: `landscape resume=%s` goes on", cmd,
                 lj->stopped[0] ? lj->stopped : detail, lj->o.csv);
    else if (status) { /* without doubling a prefix the detail has */
        const char *d = detail;
        if (!strncmp(d, cmd, strlen(cmd)) && d[strlen(cmd)] == ':')
            for (d += strlen(cmd) + 1; *d == ' ';) d++;
        app_fail(a, status, "%s: %s", cmd, d);
    }
    free_job(lj);
}

/* ============================================================================ commands */

/* runs/<what>-<date>-<time>.csv, not used yet. */
static void default_csv(char *buf, size_t n, const char *what)
{
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    for (int k = 1; k < 1000; k++) {
        if (k == 1) snprintf(buf, n, "runs/%s-%s.csv", what, stamp);
        else snprintf(buf, n, "runs/%s-%s-%d.csv", what, stamp, k);
        char probe[FS_PATH_MAX + 64];
        if (!resume_file(buf, probe, sizeof probe)) return;
    }
}

static int reusable(const struct lsurf *s, const struct ljob *lj, int p)
{
    const struct lopts *o = &lj->o;
    if (!s->complete || s->model_hash != lj->model_hash[0] || strcmp(s->ds, lj->ds_path) || s->split != (int)o->split ||
        s->n_req != o->n || (o->n && s->subset_seed != lj->subset_seed) || s->dims != 2 || s->n_x != o->grid ||
        fabs(s->range - o->range) > 1e-12 * o->range || (o->by_device && s->n_groups != lj->n_devices))
        return 0;
    if (lj->loaded) return !strcmp(s->norm, "file") && s->dirs_hash == directions_hash(lj->loaded);
    return s->has_seed && s->seed == o->seeds[p] && !strcmp(s->norm, "filter");
}

static void job_name(char *buf, size_t n, int argc, char **argv)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < argc && k + 1 < n; i++) {
        int w = snprintf(buf + k, n - k, "%s%s", i ? " " : "", argv[i]);
        if (w < 0) break;
        k += (size_t)w;
    }
}

/* landscape and sharpness: the models, directions and surfaces, then the job. */
static int start(struct app *a, enum lkind kind, struct lopts *o, const char *cmd, const char *name)
{
    if (app_need_model(a, cmd) || app_need_dataset(a, cmd)) return STATUS_INVALID;
    struct ljob *lj = calloc(1, sizeof *lj);
    if (!lj) return app_fail(a, STATUS_NOMEM, "%s: out of memory", cmd);
    lj->a = a, lj->kind = kind, lj->o = *o, lj->ds = a->ds;
    snprintf(lj->ds_path, sizeof lj->ds_path, "%.1000s", a->ds_path);
    lj->subset_seed = a->seed;
    lj->n_devices = dataset_n_devices(a->ds);
    lj->devices = calloc((size_t)lj->n_devices + 1, sizeof *lj->devices);
    for (int d = 0; lj->devices && d < lj->n_devices; d++) lj->devices[d] = strdup(dataset_device_name(a->ds, d));
    if (kind == LK_SHARPNESS) {
        snprintf(lj->sharp_csv, sizeof lj->sharp_csv, "%s", o->csv);
        lj->o.csv[0] = '\0';
    }
    if (!lj->o.csv[0]) default_csv(lj->o.csv, sizeof lj->o.csv, "landscape");
    lj->model[0] = a->model;
    snprintf(lj->name[0], sizeof lj->name[0], "%.290s", a->model_name);
    session_frontend(a, &lj->fp[0], &lj->fp_from[0]);
    lj->model_hash[0] = directions_model_hash(a->model);
    lj->n_models = 1;
    int s = STATUS_OK;
    if (o->compare[0]) {
        struct model *mb = NULL;
        if ((s = model_load(&mb, o->compare))) {
            app_fail(a, s, "%s: compare=%s", cmd, status_detail());
            free_job(lj);
            return STATUS_INVALID;
        }
        lj->model[1] = mb, lj->own_model[1] = 1, lj->n_models = 2;
        snprintf(lj->name[1], sizeof lj->name[1], "%.290s", o->compare);
        if (pipeline_model_frontend(mb, &lj->fp[1])) lj->fp[1] = a->preset;
        lj->fp_from[1] = "model";
        lj->model_hash[1] = directions_model_hash(mb);
    }
    if (o->dirs[0] && (s = directions_load(&lj->loaded, a->model, o->dirs))) {
        app_fail(a, s, "%s: %s", cmd, status_detail());
        free_job(lj);
        return STATUS_INVALID;
    }
    struct lview *lv = lview_get(a);
    if (!lv) {
        free_job(lj);
        return app_fail(a, STATUS_NOMEM, "%s: out of memory", cmd);
    }
    lj->lv = lv;
    lj->n_surf = o->compare[0] ? 2 : o->pairs;
    struct lsurf *surf[MAX_PAIRS] = {0};
    const int n_y = o->dims == 2 ? o->grid : 1;
    for (int p = 0; p < lj->n_surf; p++) {
        lj->reuse[p] = -1;
        if (kind == LK_SHARPNESS) {
            pthread_mutex_lock(&lv->lock);
            for (int i = lv->n - 1; i >= 0 && lj->reuse[p] < 0; i--)
                if (reusable(lv->s[i], lj, p)) lj->reuse[p] = i + 0; /* index before the run is added */
            pthread_mutex_unlock(&lv->lock);
        }
        struct lsurf *ls = surf[p] = lsurf_new(o->grid, n_y, o->range, o->by_device ? lj->n_devices : 0);
        if (!ls) {
            for (int k = 0; k < p; k++) lsurf_free(surf[k]);
            free_job(lj);
            return app_fail(a, STATUS_NOMEM, "%s: out of memory", cmd);
        }
        const int q = o->compare[0] ? p : 0;
        ls->model_hash = lj->model_hash[q];
        ls->has_seed = !lj->loaded, ls->seed = o->seeds[o->compare[0] ? 0 : p];
        snprintf(ls->norm, sizeof ls->norm, "%s", lj->loaded ? "file" : "filter");
        if (lj->loaded) ls->dirs_hash = directions_hash(lj->loaded);
        snprintf(ls->ds, sizeof ls->ds, "%.250s", lj->ds_path);
        ls->split = o->split, ls->n_req = o->n, ls->subset_seed = lj->subset_seed, ls->dims = o->dims;
        ls->eps = o->eps;
        ls->radius = sharpness_radius(o->eps, o->range, o->grid);
        ls->sh.s = NAN;
        sharpness_of(ls->loss, ls->n_x, ls->n_y, ls->radius, &ls->sh);
        const char *base = strrchr(lj->name[q], '/') ? strrchr(lj->name[q], '/') + 1 : lj->name[q];
        char dir[80];
        if (lj->loaded) snprintf(dir, sizeof dir, "directions %.60s", o->dirs);
        else snprintf(dir, sizeof dir, "seed %llu", (unsigned long long)ls->seed);
        char sub[64] = "";
        if (o->n) snprintf(sub, sizeof sub, " SUBSET n=%d", o->n);
        snprintf(ls->title, sizeof ls->title, "%s%.80s, %s: %d x %d on +-%g, %s split%s%s", o->compare[0] ? (p ? "B " : "A ") : "",
                 base, dir, ls->n_x, ls->n_y, o->range, split_word(o->split), sub, o->by_device ? ", by device" : "");
    }
    /* reuse indices stay valid: lview_add_run drops only when the view is full */
    pthread_mutex_lock(&lv->lock);
    int drop = lv->n + lj->n_surf - MAX_SURFACES;
    pthread_mutex_unlock(&lv->lock);
    for (int p = 0; p < lj->n_surf && drop > 0; p++) lj->reuse[p] = lj->reuse[p] >= drop ? lj->reuse[p] - drop : -1;
    lj->first = lview_add_run(lv, surf, lj->n_surf);
    app_views_changed(a);
    struct job_desc d = {.name = name, .work = lwork, .done = ldone, .arg = lj};
    return app_run_job(a, &d, APP_HOLD_MODEL_WRITE | APP_HOLD_DATA);
}

int cmd_landscape(struct app *a, int argc, char **argv)
{
    struct lopts o;
    char name[600];
    job_name(name, sizeof name, argc, argv); /* before parsing splits key=value in place */
    if (parse_lopts(a, LK_LANDSCAPE, argc, argv, &o) || resolve_lopts(a, LK_LANDSCAPE, &o)) return STATUS_INVALID;
    return start(a, LK_LANDSCAPE, &o, "landscape", name);
}

int cmd_sharpness(struct app *a, int argc, char **argv)
{
    struct lopts o;
    char name[600];
    job_name(name, sizeof name, argc, argv);
    if (parse_lopts(a, LK_SHARPNESS, argc, argv, &o) || resolve_lopts(a, LK_SHARPNESS, &o)) return STATUS_INVALID;
    return start(a, LK_SHARPNESS, &o, "sharpness", name);
}

int cmd_trajectory(struct app *a, int argc, char **argv)
{
    struct lopts o;
    char name[600];
    job_name(name, sizeof name, argc, argv);
    if (parse_lopts(a, LK_TRAJECTORY, argc, argv, &o) || resolve_lopts(a, LK_TRAJECTORY, &o)) return STATUS_INVALID;
    if (!o.dir[0]) {
        if (!a->run_dir[0])
            return app_fail(a, STATUS_INVALID, "trajectory: which run? (trajectory DIR, a folder that `train keep=all "
                                               "out=DIR` filled with checkpoint-<epoch>.safetensors)");
        snprintf(o.dir, sizeof o.dir, "%.2000s", a->run_dir);
    }
    char **paths = NULL;
    int *epochs = NULL, n = 0;
    int s = trajectory_list(o.dir, &paths, &epochs, &n);
    if (s) return app_fail(a, s, "trajectory: %s", status_detail());
    if (n < 3) {
        trajectory_list_free(paths, epochs, n);
        return app_fail(a, STATUS_INVALID, "trajectory: %s has %d checkpoint%s; the path's PCA needs 3 at least "
                                           "(train keep=all keeps one per epoch and the start)", o.dir, n, n == 1 ? "" : "s");
    }
    if (app_need_dataset(a, "trajectory")) {
        trajectory_list_free(paths, epochs, n);
        return STATUS_INVALID;
    }
    struct ljob *lj = calloc(1, sizeof *lj);
    if (!lj) {
        trajectory_list_free(paths, epochs, n);
        return app_fail(a, STATUS_NOMEM, "trajectory: out of memory");
    }
    lj->a = a, lj->kind = LK_TRAJECTORY, lj->o = o, lj->ds = a->ds;
    snprintf(lj->ds_path, sizeof lj->ds_path, "%.1000s", a->ds_path);
    lj->subset_seed = a->seed;
    lj->ck_paths = paths, lj->ck_epochs = epochs, lj->n_ck = n;
    lj->n_devices = dataset_n_devices(a->ds);
    lj->devices = calloc((size_t)lj->n_devices + 1, sizeof *lj->devices);
    for (int d = 0; lj->devices && d < lj->n_devices; d++) lj->devices[d] = strdup(dataset_device_name(a->ds, d));
    lj->n_models = 1;
    lj->fp[1] = a->preset; /* for a checkpoint without basin.frontend */
    if (!lj->o.csv[0]) default_csv(lj->o.csv, sizeof lj->o.csv, "trajectory");
    if (!(lj->lv = lview_get(a))) {
        free_job(lj);
        return app_fail(a, STATUS_NOMEM, "trajectory: out of memory");
    }
    struct job_desc d = {.name = name, .work = lwork, .done = ldone, .arg = lj};
    return app_run_job(a, &d, APP_HOLD_DATA);
}
