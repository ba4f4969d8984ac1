/* render.c: number formatting for tables (see render.h). */
#include "render.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

char *fmt_count(char *buf, int n, long v)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%ld", v < 0 ? -v : v);
    int k = 0;
    if (v < 0 && k < n - 1) buf[k++] = '-';
    for (int i = 0; i < len && k < n - 1; i++) {
        if (i && (len - i) % 3 == 0 && k < n - 1) buf[k++] = ',';
        if (k < n - 1) buf[k++] = digits[i];
    }
    buf[k] = 0;
    return buf;
}

char *fmt_si(char *buf, int n, double v)
{
    static const char suffix[] = " kMGTP";
    int i = 0;
    double a = fabs(v);
    while (a >= 999.5 && i < 5) {
        a /= 1000;
        v /= 1000;
        i++;
    }
    if (i == 0) snprintf(buf, (size_t)n, "%.0f", v);
    else snprintf(buf, (size_t)n, a < 9.995 ? "%.2f%c" : a < 99.95 ? "%.1f%c" : "%.0f%c", v, suffix[i]);
    return buf;
}

char *fmt_bytes(char *buf, int n, double bytes)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (bytes >= 1024 && i < 4) {
        bytes /= 1024;
        i++;
    }
    snprintf(buf, (size_t)n, i ? "%.1f %s" : "%.0f %s", bytes, unit[i]);
    return buf;
}

#include <langinfo.h>
#include <locale.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

enum render_style render_style_for(FILE *f)
{
    if (!isatty(fileno(f))) return RENDER_ASCII;
    const char *term = getenv("TERM"), *ct = getenv("COLORTERM");
    if (!term || !(strstr(term, "256color") || (ct && *ct))) return RENDER_ASCII;
    setlocale(LC_CTYPE, "");
    const char *cs = nl_langinfo(CODESET);
    if (!cs || (strcmp(cs, "UTF-8") && strcmp(cs, "utf8"))) return RENDER_ASCII;
    return RENDER_COLOR;
}

int render_columns(FILE *f)
{
    const char *c = getenv("COLUMNS");
    if (c && atoi(c) >= 20) return atoi(c);
    struct winsize ws;
    if (isatty(fileno(f)) && ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    return 100;
}

int render_lines(FILE *f)
{
    if (!isatty(fileno(f))) return 0;
    const char *c = getenv("LINES");
    if (c && atoi(c) >= 5) return atoi(c);
    struct winsize ws;
    if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_row >= 5) return ws.ws_row;
    return 0;
}

int render_color256(double v)
{
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    /* dark blue -> blue -> cyan -> yellow -> red through the 6x6x6 cube */
    static const int stops[][3] = {{0, 0, 1}, {0, 1, 4}, {0, 4, 4}, {4, 5, 0}, {5, 2, 0}, {5, 0, 0}};
    double x = v * 5;
    int i = (int)x;
    if (i >= 5) i = 4;
    double t = x - i;
    int r = (int)(stops[i][0] + t * (stops[i + 1][0] - stops[i][0]) + 0.5);
    int g = (int)(stops[i][1] + t * (stops[i + 1][1] - stops[i][1]) + 0.5);
    int b = (int)(stops[i][2] + t * (stops[i + 1][2] - stops[i][2]) + 0.5);
    return 16 + 36 * r + 6 * g + b;
}

/* Mean of m over rows [r0, r1) and columns [c0, c1), scaled to [0, 1]. */
static double cell(const float *m, int cols, int r0, int r1, int c0, int c1, float lo, float hi)
{
    double s = 0;
    int n = 0;
    for (int r = r0; r < r1; r++)
        for (int c = c0; c < c1; c++, n++) s += m[(long)r * cols + c];
    double v = n ? s / n : lo;
    return hi > lo ? (v - lo) / (hi - lo) : 0.5;
}

void render_heatmap(FILE *f, enum render_style style, const float *m, int rows, int cols,
                    int out_rows, int out_cols, float lo, float hi,
                    void (*left)(void *user, double frac_lo, double frac_hi, char *buf, int n),
                    void *user)
{
    static const char ramp[] = " .:-=+*#%@";
    int px_rows = style == RENDER_COLOR ? 2 * out_rows : out_rows;
    if (px_rows > rows) px_rows = rows;
    if (style == RENDER_COLOR) px_rows -= px_rows % 2;
    if (px_rows < 1) px_rows = 1;
    if (out_cols > cols) out_cols = cols;
    int text_rows = style == RENDER_COLOR ? (px_rows + 1) / 2 : px_rows;
    for (int tr = 0; tr < text_rows; tr++) {
        /* text row 0 is the top: the highest pixel rows */
        char label[32] = "";
        int per = style == RENDER_COLOR ? 2 : 1;
        int p_top = px_rows - 1 - tr * per, p_bot = p_top - (per - 1);
        if (p_bot < 0) p_bot = 0;
        if (left) {
            left(user, (double)p_bot / px_rows, (double)(p_top + 1) / px_rows, label, sizeof label);
            fprintf(f, "%8s ", label);
        }
        for (int oc = 0; oc < out_cols; oc++) {
            int c0 = (int)((long)oc * cols / out_cols), c1 = (int)((long)(oc + 1) * cols / out_cols);
            if (c1 <= c0) c1 = c0 + 1;
            double vt = cell(m, cols, (int)((long)p_top * rows / px_rows), (int)((long)(p_top + 1) * rows / px_rows), c0, c1, lo, hi);
            if (style == RENDER_ASCII) {
                int k = (int)(vt * 9.999);
                fputc(ramp[k < 0 ? 0 : k > 9 ? 9 : k], f);
            } else {
                double vb = cell(m, cols, (int)((long)p_bot * rows / px_rows), (int)((long)(p_bot + 1) * rows / px_rows), c0, c1, lo, hi);
                fprintf(f, "\x1b[38;5;%dm\x1b[48;5;%dm\xe2\x96\x80", render_color256(vt), render_color256(vb));
            }
        }
        if (style == RENDER_COLOR) fputs("\x1b[0m", f);
        fputc('\n', f);
    }
}
