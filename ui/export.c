/* export.c: PNG figures with cairo (see export.h).
 *
 * Layout of every figure: a title on top, the plot area with a left axis and a bottom axis
 * (ticks and labels), and, for heatmaps, a colour bar on the right. cairo's toy text API
 * is enough for labels (the default sans face); the image is encoded by cairo's own PNG
 * writer into an atomic file.
 */
#include "export.h"

#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "basin/core/fs.h"
#include "basin/core/status.h"

/* The canvas ramp's stops (dark blue, blue, cyan, yellow, orange, red) in RGB. */
static const double stops[6][3] = {{0.0, 0.0, 0.37}, {0.0, 0.37, 1.0}, {0.0, 0.87, 0.87},
                                   {0.87, 1.0, 0.0}, {1.0, 0.53, 0.0}, {1.0, 0.0, 0.0}};

static void ramp(double v, double rgb[3])
{
    v = !(v > 0) ? 0 : v > 1 ? 1 : v;
    double x = v * 5;
    int i = (int)x;
    if (i >= 5) i = 4;
    double t = x - i;
    for (int k = 0; k < 3; k++) rgb[k] = stops[i][k] + t * (stops[i + 1][k] - stops[i][k]);
}

unsigned export_ramp_rgb(double v)
{
    double c[3];
    ramp(v, c);
    return (unsigned)lround(c[0] * 255) << 16 | (unsigned)lround(c[1] * 255) << 8 | (unsigned)lround(c[2] * 255);
}

static void set_rgb(cairo_t *cr, unsigned rgb)
{
    cairo_set_source_rgb(cr, (rgb >> 16 & 255) / 255.0, (rgb >> 8 & 255) / 255.0, (rgb & 255) / 255.0);
}

static void text(cairo_t *cr, double x, double y, const char *s, double align, double size)
{
    cairo_set_font_size(cr, size);
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, x - align * e.x_advance, y);
    cairo_show_text(cr, s);
}

static void tick_label(const struct export_axis *a, double pos, char *buf, int n)
{
    if (a->ticks) a->ticks(a->user, pos, buf, n);
    else snprintf(buf, (size_t)n, "%.3g", a->lo + (a->hi - a->lo) * pos);
}

/* Where tick i of axis a stands, in [0, 1], and how many there are. */
static int n_ticks(const struct export_axis *a)
{
    return a && a->n_ticks > 0 ? a->n_ticks : 5;
}

static double tick_pos(const struct export_axis *a, int i)
{
    int n = n_ticks(a);
    return a && a->centred ? (i + 0.5) / n : n > 1 ? (double)i / (n - 1) : 0;
}

/* The frame of a plot area (x0, y0, w, h) with the axes' ticks and labels. */
static void axes(cairo_t *cr, double x0, double y0, double w, double h, const struct export_axis *x,
                 const struct export_axis *y)
{
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, x0, y0, w, h);
    cairo_stroke(cr);
    char b[64];
    for (int i = 0; x && i < n_ticks(x); i++) {
        double p = tick_pos(x, i);
        cairo_move_to(cr, x0 + p * w, y0 + h);
        cairo_line_to(cr, x0 + p * w, y0 + h + 5);
        cairo_stroke(cr);
        tick_label(x, p, b, sizeof b);
        text(cr, x0 + p * w, y0 + h + 18, b, 0.5, 11);
    }
    for (int i = 0; y && i < n_ticks(y); i++) {
        double p = tick_pos(y, i);
        cairo_move_to(cr, x0, y0 + h - p * h);
        cairo_line_to(cr, x0 - 5, y0 + h - p * h);
        cairo_stroke(cr);
        tick_label(y, p, b, sizeof b);
        text(cr, x0 - 8, y0 + h - p * h + 4, b, 1.0, 11);
    }
    if (x && x->label) text(cr, x0 + w / 2, y0 + h + 36, x->label, 0.5, 12);
    if (y && y->label) {
        cairo_save(cr);
        cairo_translate(cr, y->centred ? 14 : x0 - 52, y0 + h / 2);
        cairo_rotate(cr, -M_PI / 2);
        text(cr, 0, 0, y->label, 0.5, 12);
        cairo_restore(cr);
    }
}

static cairo_status_t write_chunk(void *closure, const unsigned char *data, unsigned int n)
{
    return fs_atomic_write(closure, data, n) ? CAIRO_STATUS_WRITE_ERROR : CAIRO_STATUS_SUCCESS;
}

/* Encode the surface into path, atomically; releases cr and the surface. */
static int finish(cairo_surface_t *sf, cairo_t *cr, const char *path)
{
    cairo_destroy(cr);
    struct fs_atomic w;
    int s = fs_atomic_begin(&w, path, 0);
    if (!s) {
        if (cairo_surface_write_to_png_stream(sf, write_chunk, &w) != CAIRO_STATUS_SUCCESS) {
            fs_atomic_abort(&w);
            s = status_set(STATUS_IO, "%s: the PNG could not be written", path);
        } else {
            s = fs_atomic_commit(&w);
        }
    }
    cairo_surface_destroy(sf);
    return s;
}

static int start(int width, int height, const char *title, cairo_surface_t **sf, cairo_t **cr)
{
    *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    if (cairo_surface_status(*sf) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(*sf);
        return status_set(STATUS_NOMEM, "cannot make a %d x %d image", width, height);
    }
    *cr = cairo_create(*sf);
    cairo_set_source_rgb(*cr, 1, 1, 1);
    cairo_paint(*cr);
    cairo_select_font_face(*cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_source_rgb(*cr, 0, 0, 0);
    text(*cr, width / 2.0, 22, title ? title : "", 0.5, 14);
    return STATUS_OK;
}

/* The overlay's marks in the plot area (x0, y0, w, h), clipped to it, and its legend at
 * y_legend. */
static void overlay(cairo_t *cr, double x0, double y0, double w, double h, const struct export_axis *x,
                    const struct export_axis *y, const struct export_overlay *ov, double y_legend)
{
    if (!ov || !x || !y || !(x->hi > x->lo) || !(y->hi > y->lo)) return;
    const double xs = w / (x->hi - x->lo), ys = h / (y->hi - y->lo);
#define PX(v) (x0 + ((v) - x->lo) * xs)
#define PY(v) (y0 + h - ((v) - y->lo) * ys)
    cairo_save(cr);
    cairo_rectangle(cr, x0, y0, w, h);
    cairo_clip(cr);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    set_rgb(cr, ov->segs_rgb);
    cairo_set_line_width(cr, 1.2);
    for (int k = 0; k < ov->n_segs; k++) {
        const float *p = ov->segs + 4 * (size_t)k;
        cairo_move_to(cr, PX(p[0]), PY(p[1]));
        cairo_line_to(cr, PX(p[2]), PY(p[3]));
    }
    cairo_stroke(cr);
    for (int k = 0; k < ov->n_lines; k++) {
        const struct export_series *l = &ov->lines[k];
        set_rgb(cr, l->rgb);
        cairo_set_line_width(cr, 2);
        int have = 0;
        for (int i = 0; i < l->n; i++) {
            double xv = l->x ? l->x[i] : i, yv = l->y[i];
            if (xv != xv || yv != yv) {
                if (have) cairo_stroke(cr);
                have = 0;
                continue;
            }
            if (have) cairo_line_to(cr, PX(xv), PY(yv));
            else cairo_move_to(cr, PX(xv), PY(yv));
            have = 1;
        }
        if (have) cairo_stroke(cr);
        const double r = ov->dot_px ? ov->dot_px[k] : 0;
        for (int i = 0; r > 0 && i < l->n; i++) {
            double xv = l->x ? l->x[i] : i, yv = l->y[i];
            if (xv != xv || yv != yv) continue;
            cairo_arc(cr, PX(xv), PY(yv), r, 0, 2 * M_PI);
            cairo_fill(cr);
        }
    }
    cairo_restore(cr);
#undef PX
#undef PY
    double lx = x0;
    for (int k = 0; k < ov->n_lines; k++) {
        if (!ov->lines[k].name) continue;
        set_rgb(cr, ov->lines[k].rgb);
        cairo_rectangle(cr, lx, y_legend - 6, 18, 4);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        text(cr, lx + 24, y_legend, ov->lines[k].name, 0, 11);
        cairo_text_extents_t e;
        cairo_text_extents(cr, ov->lines[k].name, &e);
        lx += 40 + e.x_advance;
    }
}

int export_heatmap_png(const char *path, int width, int height, const char *title,
                       const float *m, int rows, int cols, float lo, float hi, const char *unit,
                       const struct export_axis *x, const struct export_axis *y)
{
    return export_heatmap_overlay_png(path, width, height, title, m, rows, cols, lo, hi, unit, x, y, NULL);
}

int export_heatmap_overlay_png(const char *path, int width, int height, const char *title,
                               const float *m, int rows, int cols, float lo, float hi, const char *unit,
                               const struct export_axis *x, const struct export_axis *y,
                               const struct export_overlay *ov)
{
    cairo_surface_t *sf;
    cairo_t *cr;
    int s = start(width, height, title, &sf, &cr);
    if (s) return s;
    /* room on the left for the y ticks' labels (class names are long) */
    double x0 = 80, y0 = 40;
    if (y && y->centred) {
        cairo_set_font_size(cr, 11);
        for (int i = 0; i < n_ticks(y); i++) {
            char b[64];
            cairo_text_extents_t e;
            tick_label(y, tick_pos(y, i), b, sizeof b);
            cairo_text_extents(cr, b, &e);
            if (e.x_advance + 30 > x0) x0 = e.x_advance + 30;
        }
    }
    const double w = width - x0 - 110, h = height - y0 - 60;
    /* cells as rectangles: exact whatever the size ratio */
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            float v = m[(long)r * cols + c];
            if (v != v) continue;
            double rgb[3];
            ramp(hi > lo ? (v - lo) / (hi - lo) : 0.5, rgb);
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            double cx = x0 + w * c / cols, cy = y0 + h - h * (r + 1) / rows;
            cairo_rectangle(cr, floor(cx), floor(cy), ceil(x0 + w * (c + 1) / cols) - floor(cx),
                            ceil(y0 + h - h * r / rows) - floor(cy));
            cairo_fill(cr);
        }
    overlay(cr, x0, y0, w, h, x, y, ov, height - 8);
    axes(cr, x0, y0, w, h, x, y);
    /* the colour bar */
    const double bx = x0 + w + 30, bw = 18;
    for (int k = 0; k < 256; k++) {
        double rgb[3];
        ramp(k / 255.0, rgb);
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_rectangle(cr, bx, y0 + h - h * (k + 1) / 256, bw, h / 256 + 1);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_rectangle(cr, bx, y0, bw, h);
    cairo_stroke(cr);
    char b[64];
    /* enough digits that the labels differ (a landscape over 2.308..2.310) */
    const double span = fabs((double)hi - lo), big = fmax(fabs(lo), fabs(hi));
    const int digits = 3 + (span > 0 && big > span ? (int)ceil(log10(big / span)) : 0);
    for (int i = 0; i <= 4; i++) {
        snprintf(b, sizeof b, "%.*g", digits > 9 ? 9 : digits, lo + (hi - lo) * i / 4.0);
        text(cr, bx + bw + 4, y0 + h - h * i / 4.0 + 4, b, 0, 11);
    }
    if (unit) text(cr, bx + bw / 2, y0 - 6, unit, 0.5, 11);
    return finish(sf, cr, path);
}

/* Line plots in the area (x0, y0, w, h) of cr, with their legend below it at y_legend. */
static void lines_panel(cairo_t *cr, double x0, double y0, double w, double h, const struct export_series *s,
                        int n_series, const struct export_axis *x, const struct export_axis *y, double y_legend)
{
    double xs = x->hi > x->lo ? w / (x->hi - x->lo) : 0, ys = y->hi > y->lo ? h / (y->hi - y->lo) : 0;
    cairo_save(cr);
    cairo_rectangle(cr, x0, y0, w, h);
    cairo_clip(cr);
    for (int k = 0; k < n_series; k++) {
        set_rgb(cr, s[k].rgb);
        cairo_set_line_width(cr, s[k].n > 400 ? 0.7 : 1.6);
        int have = 0;
        for (int i = 0; i < s[k].n; i++) {
            double xv = s[k].x ? s[k].x[i] : i, yv = s[k].y[i];
            if (xv != xv || yv != yv) {
                if (have) cairo_stroke(cr);
                have = 0;
                continue;
            }
            double px = x0 + (xv - x->lo) * xs, py = y0 + h - (yv - y->lo) * ys;
            if (have) cairo_line_to(cr, px, py);
            else cairo_move_to(cr, px, py);
            have = 1;
        }
        if (have) cairo_stroke(cr);
    }
    cairo_restore(cr);
    axes(cr, x0, y0, w, h, x, y);
    double lx = x0;
    for (int k = 0; k < n_series; k++) {
        set_rgb(cr, s[k].rgb);
        cairo_rectangle(cr, lx, y_legend - 6, 18, 4);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        const char *name = s[k].name ? s[k].name : "";
        text(cr, lx + 24, y_legend, name, 0, 11);
        cairo_text_extents_t e;
        cairo_text_extents(cr, name, &e);
        lx += 40 + e.x_advance;
    }
}

int export_lines_png(const char *path, int width, int height, const char *title,
                     const struct export_series *s, int n_series, const struct export_axis *x,
                     const struct export_axis *y)
{
    cairo_surface_t *sf;
    cairo_t *cr;
    int st = start(width, height, title, &sf, &cr);
    if (st) return st;
    lines_panel(cr, 80, 40, width - 110, height - 120, s, n_series, x, y, height - 16);
    return finish(sf, cr, path);
}

int export_lines2_png(const char *path, int width, int height, const char *title,
                      const struct export_series *s1, int n1, const struct export_axis *y1,
                      const struct export_series *s2, int n2, const struct export_axis *y2,
                      const struct export_axis *x)
{
    cairo_surface_t *sf;
    cairo_t *cr;
    int st = start(width, height, title, &sf, &cr);
    if (st) return st;
    double ph = (height - 40) / 2.0;
    lines_panel(cr, 80, 40, width - 110, ph - 80, s1, n1, x, y1, 40 + ph - 16);
    lines_panel(cr, 80, 40 + ph, width - 110, ph - 80, s2, n2, x, y2, height - 16);
    return finish(sf, cr, path);
}

int export_bars_png(const char *path, int width, int height, const char *title,
                    const char *const *names, const double *values, const unsigned *rgb, int n,
                    const char *value_label)
{
    cairo_surface_t *sf;
    cairo_t *cr;
    int s = start(width, height, title, &sf, &cr);
    if (s) return s;
    const double x0 = 150, y0 = 40, w = width - x0 - 90, h = height - y0 - 50;
    double bh = n ? h / n : h;
    char b[64];
    for (int i = 0; i < n; i++) {
        double v = !(values[i] > 0) ? 0 : values[i] > 1 ? 1 : values[i];
        set_rgb(cr, rgb ? rgb[i] : 0x1f77b4);
        cairo_rectangle(cr, x0, y0 + i * bh + bh * 0.15, w * v, bh * 0.7);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        text(cr, x0 - 8, y0 + i * bh + bh * 0.5 + 4, names[i], 1.0, 11);
        snprintf(b, sizeof b, "%.1f %%", 100 * values[i]);
        text(cr, x0 + w * v + 6, y0 + i * bh + bh * 0.5 + 4, b, 0, 11);
    }
    struct export_axis xa = {.lo = 0, .hi = 100, .label = value_label};
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_move_to(cr, x0, y0 + h);
    cairo_line_to(cr, x0 + w, y0 + h);
    cairo_stroke(cr);
    for (int i = 0; i <= 4; i++) {
        snprintf(b, sizeof b, "%.0f", xa.lo + (xa.hi - xa.lo) * i / 4.0);
        text(cr, x0 + w * i / 4.0, y0 + h + 16, b, 0.5, 11);
    }
    if (value_label) text(cr, x0 + w / 2, y0 + h + 34, value_label, 0.5, 12);
    return finish(sf, cr, path);
}
