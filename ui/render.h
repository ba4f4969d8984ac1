/* render.h: text formatting shared by headless output and the split view: numbers with
 * thousands separators, SI-scaled counts, byte sizes (into caller buffers), and the size of
 * the terminal. Figures are drawn by canvas.h and views.h. */
#ifndef BASIN_UI_RENDER_H
#define BASIN_UI_RENDER_H

/* 227316 -> "227,316" */
char *fmt_count(char *buf, int n, long v);
/* 1.23e9 -> "1.23G", 21800000 -> "21.8M", 950 -> "950" */
char *fmt_si(char *buf, int n, double v);
/* 909264 -> "888.0 KiB" */
char *fmt_bytes(char *buf, int n, double bytes);

#include <stdio.h>

/* Columns of the terminal f (COLUMNS, then the tty's size, then 100). */
int render_columns(FILE *f);
/* Lines of the terminal f (LINES, then the tty's size), or 0 when f is not a terminal. */
int render_lines(FILE *f);

#endif
