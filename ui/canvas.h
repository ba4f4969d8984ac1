/* canvas.h: the cell canvas every figure is drawn into (DESIGN.md section 7, "Output").
 *
 * A canvas is a grid of cells, each a Unicode glyph with a foreground and a background
 * colour (xterm-256 indices; CANVAS_NONE is the terminal's own). Figures (heatmaps, line
 * plots, bars, axes, colour scales, text) are drawn into it with the functions below; the
 * canvas's mode decides the glyphs, so one drawing function serves every terminal:
 *
 *   CANVAS_COLOR  256 colours and UTF-8: heatmaps with half-blocks (U+2580, two pixels a
 *                 cell, fg the upper pixel), line plots in braille (2 x 4 dots a cell)
 *   CANVAS_UTF8   UTF-8 without colour: heatmaps as shades " ░▒▓█", braille line plots
 *   CANVAS_ASCII  ASCII only: heatmaps as the ramp " .:-=+*#%@", plots with '*'
 *
 * The workbench copies a canvas into an ncurses window cell by cell; headless output
 * prints it (canvas_print: SGR escapes in colour mode, plain text otherwise, trailing
 * blanks trimmed), so a script run and the split view show the same figure.
 *
 * Coordinates: x is the column (0 at the left), y the row (0 at the top). Drawing outside
 * the canvas is clipped, never an error. Values that are NaN draw nothing.
 */
#ifndef BASIN_UI_CANVAS_H
#define BASIN_UI_CANVAS_H

#include <stdint.h>
#include <stdio.h>

enum canvas_mode { CANVAS_ASCII, CANVAS_UTF8, CANVAS_COLOR };

#define CANVAS_NONE (-1)   /* the terminal's default colour */

struct canvas_cell {
    uint32_t ch;           /* Unicode code point; ' ' when empty */
    short fg, bg;          /* xterm-256 colour, or CANVAS_NONE */
};

struct canvas {
    int w, h;
    enum canvas_mode mode;
    struct canvas_cell *cells;   /* (h, w) */
};

/* A w x h canvas of blanks (w, h >= 1). 0 or STATUS_NOMEM. */
int canvas_init(struct canvas *c, int w, int h, enum canvas_mode mode);
void canvas_fini(struct canvas *c);
void canvas_clear(struct canvas *c);

/* The mode for output to f: COLOR on a terminal with 256 colours (TERM *256color* or
 * COLORTERM set) and a UTF-8 locale, UTF8 on a UTF-8 terminal without them, ASCII
 * otherwise (pipes, files, TERM=dumb, the C locale). */
enum canvas_mode canvas_mode_for(FILE *f);

/* One cell. */
void canvas_set(struct canvas *c, int x, int y, uint32_t ch, int fg, int bg);
const struct canvas_cell *canvas_at(const struct canvas *c, int x, int y);
/* UTF-8 text from (x, y) on one row, clipped at the right edge (one cell per code point;
 * in ASCII mode non-ASCII code points become '?'). Returns the cells written. */
int canvas_text(struct canvas *c, int x, int y, int fg, const char *utf8);
int canvas_textf(struct canvas *c, int x, int y, int fg, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The colour of v in [0, 1] on basin's ramp (dark blue, blue, cyan, yellow, orange, red),
 * an xterm-256 cube index. */
int canvas_ramp_color(double v);

/* A heatmap of m (rows, cols), row 0 drawn at the bottom, into the w x h cells at (x, y):
 * values scaled from [lo, hi] to the ramp, each cell (half-cell in colour mode) the mean of
 * the block of m it covers. A matrix smaller than the area is drawn at one cell (half-cell)
 * per value, anchored bottom-left. */
void canvas_heatmap(struct canvas *c, int x, int y, int w, int h, const float *m, int rows,
                    int cols, float lo, float hi);

/* A horizontal colour scale (the ramp) w cells wide at (x, y) with lo at the left and hi
 * at the right, labelled below with lo, the middle and hi in fmt ("%.0f dB"). Uses 2 rows. */
void canvas_scale(struct canvas *c, int x, int y, int w, double lo, double hi, const char *fmt);

/* Line plots: each series a polyline through (x[i], y[i]) (x NULL: x = i), in the w x h
 * cells at (x, y), data ranges [x0, x1] and [y0, y1] mapped onto the area (y up). Braille
 * dots in UTF8 / COLOR mode (colour per series in COLOR), the series' ascii glyph otherwise. */
struct canvas_series {
    const float *x, *y;
    int n;
    int color;             /* xterm-256 colour (COLOR mode) */
    char ascii;            /* glyph in ASCII mode ('*', 'o', ...) */
};
void canvas_plot(struct canvas *c, int x, int y, int w, int h, const struct canvas_series *s,
                 int n_series, double x0, double x1, double y0, double y1);

/* A horizontal bar of length frac (0..1) of w cells at (x, y): eighth-blocks in UTF8 /
 * COLOR mode (in colour `color`), '#' in ASCII. */
void canvas_bar(struct canvas *c, int x, int y, int w, double frac, int color);

/* Axis labels: along the bottom (x axis, below row y) n_ticks values from lo to hi
 * formatted with fmt ("%.0f s"), each centred on its column within [x, x + w); along the
 * left (y axis) right-aligned in the `label_w` cells left of x, for rows [y, y + h) with
 * lo at the bottom. */
void canvas_axis_x(struct canvas *c, int x, int y, int w, double lo, double hi, int n_ticks,
                   const char *fmt);
void canvas_axis_y(struct canvas *c, int x, int y, int h, int label_w, double lo, double hi,
                   int n_ticks, const char *fmt);

/* Print rows [0, h) to f: in COLOR mode with SGR colour escapes (reset at the end of each
 * line), plain UTF-8 or ASCII otherwise; trailing blanks of each row are trimmed. */
void canvas_print(const struct canvas *c, FILE *f);
/* The same into a new string (free); NULL when out of memory. */
char *canvas_string(const struct canvas *c);

#endif
