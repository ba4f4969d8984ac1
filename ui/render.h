/* render.h: text formatting shared by headless output and the split view: numbers with
 * thousands separators, SI-scaled counts, byte sizes. All write into caller buffers. */
#ifndef BASIN_UI_RENDER_H
#define BASIN_UI_RENDER_H

/* 227316 -> "227,316" */
char *fmt_count(char *buf, int n, long v);
/* 1.23e9 -> "1.23G", 21800000 -> "21.8M", 950 -> "950" */
char *fmt_si(char *buf, int n, double v);
/* 909264 -> "888.0 KiB" */
char *fmt_bytes(char *buf, int n, double bytes);

#endif

#include <stdio.h>

/* How a heatmap is drawn: an ASCII ramp (" .:-=+*#%@", any terminal, pipes, files) or
 * xterm-256 colour half-blocks (two pixels a cell; needs 256 colours and UTF-8). */
enum render_style { RENDER_ASCII, RENDER_COLOR };

/* RENDER_COLOR when f is a terminal with 256 colours (TERM *256color*, or COLORTERM set)
 * and the locale is UTF-8; RENDER_ASCII otherwise. */
enum render_style render_style_for(FILE *f);

/* Columns of the terminal f (COLUMNS, then the tty's size, then 100). */
int render_columns(FILE *f);
/* Lines of the terminal f (LINES, then the tty's size), or 0 when f is not a terminal. */
int render_lines(FILE *f);

/* The xterm-256 colour of v in [0, 1] on a dark-blue -> yellow -> red ramp. */
int render_color256(double v);

/* Draw m (rows, cols), row 0 at the bottom (low frequencies), scaled to [lo, hi], area-
 * averaged into at most out_rows text rows (pixel rows double in colour) and out_cols
 * columns. left(row, buf) labels text rows (NULL: no labels). */
void render_heatmap(FILE *f, enum render_style style, const float *m, int rows, int cols,
                    int out_rows, int out_cols, float lo, float hi,
                    void (*left)(void *user, double frac_lo, double frac_hi, char *buf, int n),
                    void *user);
