/* export.h: figures as PNG images for papers and slides (cairo is confined to export.c).
 *
 * The same data the views show, drawn at a resolution of its own with axes, tick labels,
 * units and a colour bar. Files are written atomically (fs.h). Each function returns 0,
 * STATUS_IO naming the path, or STATUS_NOMEM.
 */
#ifndef BASIN_UI_EXPORT_H
#define BASIN_UI_EXPORT_H

/* An axis: its range and label ("time (s)", "frequency (Hz)"); `ticks` maps a position in
 * [0, 1] along the axis to its label text (NULL: the value lo + (hi - lo) * pos). */
struct export_axis {
    double lo, hi;
    const char *label;
    void (*ticks)(void *user, double pos, char *buf, int n);
    void *user;
    int n_ticks;            /* 0: 5 ticks from lo to hi */
    int centred;            /* 1: n_ticks ticks at the centres of n_ticks cells (categories) */
};

/* A heatmap of m (rows, cols), row 0 at the bottom, on basin's colour ramp from lo to hi,
 * with a colour bar labelled `unit`; NaN cells are left white. */
int export_heatmap_png(const char *path, int width, int height, const char *title,
                       const float *m, int rows, int cols, float lo, float hi, const char *unit,
                       const struct export_axis *x, const struct export_axis *y);

/* Line plots: series through (x[i], y[i]) (x NULL: i), each with a name for the legend and
 * an RGB colour (0xRRGGBB); NaN points break a line. */
struct export_series {
    const float *x, *y;
    int n;
    unsigned rgb;
    const char *name;
};

/* Marks drawn over a heatmap, in the units of its axes (x->lo..x->hi across, y->lo..y->hi
 * up): line segments (contours), polylines (a circle, a path) with a dot of dot_px[k]
 * pixels at every point of line k (dot_px NULL or 0: none), and a legend of the lines that
 * have a name. */
struct export_overlay {
    const float *segs;          /* (n_segs, 4): x0 y0 x1 y1 */
    int n_segs;
    unsigned segs_rgb;
    const struct export_series *lines;
    int n_lines;
    const double *dot_px;       /* (n_lines) or NULL */
};

/* export_heatmap_png with an overlay (NULL: none). */
int export_heatmap_overlay_png(const char *path, int width, int height, const char *title,
                               const float *m, int rows, int cols, float lo, float hi, const char *unit,
                               const struct export_axis *x, const struct export_axis *y,
                               const struct export_overlay *ov);
int export_lines_png(const char *path, int width, int height, const char *title,
                     const struct export_series *s, int n_series, const struct export_axis *x,
                     const struct export_axis *y);
/* Two line plots stacked (the training curves: loss above, accuracy below) sharing x. */
int export_lines2_png(const char *path, int width, int height, const char *title,
                      const struct export_series *s1, int n1, const struct export_axis *y1,
                      const struct export_series *s2, int n2, const struct export_axis *y2,
                      const struct export_axis *x);

/* Horizontal bars: values in [0, 1] (shown as percentages) with their names, each bar its
 * own colour. */
int export_bars_png(const char *path, int width, int height, const char *title,
                    const char *const *names, const double *values, const unsigned *rgb, int n,
                    const char *value_label);

/* The RGB colour (0xRRGGBB) of v in [0, 1] on basin's ramp (the canvas's, continuous). */
unsigned export_ramp_rgb(double v);

#endif
