/* canvas.c: the cell canvas and the figures drawn into it (see canvas.h).
 *
 * Glyphs: U+2580 upper half block (fg = upper pixel, bg = lower) for colour heatmaps;
 * U+2800 + dot bits for braille plots (dots 1-8: column 0 rows 0-2 are bits 0-2, column 1
 * rows 0-2 bits 3-5, row 3 bits 6 and 7); U+2588..U+258F eighth blocks for bars; U+2591..
 * U+2593 shades. ref: Unicode blocks "Block Elements" and "Braille Patterns".
 */
#include "canvas.h"

#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basin/core/mem.h"
#include "basin/core/status.h"

#define BRAILLE 0x2800u
#define UPPER_HALF 0x2580u
#define FULL_BLOCK 0x2588u

int canvas_init(struct canvas *c, int w, int h, enum canvas_mode mode)
{
    CHECK(w >= 1 && h >= 1);
    c->w = w, c->h = h, c->mode = mode;
    c->cells = mem_alloc((size_t)w * (size_t)h * sizeof *c->cells);
    if (!c->cells) return STATUS_NOMEM;
    canvas_clear(c);
    return STATUS_OK;
}

void canvas_fini(struct canvas *c)
{
    mem_free(c->cells);
    c->cells = NULL;
}

void canvas_clear(struct canvas *c)
{
    for (long i = 0; i < (long)c->w * c->h; i++) c->cells[i] = (struct canvas_cell){' ', CANVAS_NONE, CANVAS_NONE};
}

enum canvas_mode canvas_mode_for(FILE *f)
{
    if (!isatty(fileno(f))) return CANVAS_ASCII;
    const char *term = getenv("TERM"), *ct = getenv("COLORTERM");
    if (!term || !*term || !strcmp(term, "dumb")) return CANVAS_ASCII;
    setlocale(LC_CTYPE, "");
    const char *cs = nl_langinfo(CODESET);
    if (!cs || (strcmp(cs, "UTF-8") && strcmp(cs, "utf8"))) return CANVAS_ASCII;
    return strstr(term, "256color") || (ct && *ct) ? CANVAS_COLOR : CANVAS_UTF8;
}

static struct canvas_cell *cell(struct canvas *c, int x, int y)
{
    return x < 0 || y < 0 || x >= c->w || y >= c->h ? NULL : &c->cells[(long)y * c->w + x];
}

const struct canvas_cell *canvas_at(const struct canvas *c, int x, int y)
{
    return cell((struct canvas *)c, x, y);
}

void canvas_set(struct canvas *c, int x, int y, uint32_t ch, int fg, int bg)
{
    struct canvas_cell *k = cell(c, x, y);
    if (!k) return;
    if (c->mode == CANVAS_ASCII && ch > 0x7e) ch = '?';
    if (c->mode != CANVAS_COLOR) fg = bg = CANVAS_NONE;
    *k = (struct canvas_cell){ch, (short)fg, (short)bg};
}

/* Next code point of UTF-8 text (invalid bytes read as '?'). */
static uint32_t next_cp(const unsigned char **s)
{
    const unsigned char *p = *s;
    uint32_t cp = *p++;
    int more = cp >= 0xf0 ? 3 : cp >= 0xe0 ? 2 : cp >= 0xc0 ? 1 : 0;
    if (cp >= 0x80 && !more) cp = '?';
    else if (more) cp &= 0x3fu >> more;
    for (; more; more--) {
        if ((*p & 0xc0) != 0x80) {
            cp = '?';
            break;
        }
        cp = cp << 6 | (*p++ & 0x3fu);
    }
    *s = p;
    return cp;
}

int canvas_text(struct canvas *c, int x, int y, int fg, const char *utf8)
{
    const unsigned char *s = (const unsigned char *)utf8;
    int n = 0;
    while (*s) {
        uint32_t cp = next_cp(&s);
        if (x + n >= c->w) break;
        struct canvas_cell *k = cell(c, x + n, y);
        if (k) canvas_set(c, x + n, y, cp, fg, k->bg);
        n++;
    }
    return n;
}

int canvas_textf(struct canvas *c, int x, int y, int fg, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return canvas_text(c, x, y, fg, buf);
}

int canvas_ramp_color(double v)
{
    v = !(v > 0) ? 0 : v > 1 ? 1 : v;
    /* dark blue -> blue -> cyan -> yellow -> orange -> red through the 6x6x6 cube */
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

/* The glyph of v in [0, 1] without colour. */
static uint32_t ramp_glyph(enum canvas_mode mode, double v)
{
    static const char ascii[] = " .:-=+*#%@";
    static const uint32_t shades[] = {' ', 0x2591, 0x2592, 0x2593, FULL_BLOCK};
    v = !(v > 0) ? 0 : v > 1 ? 1 : v;
    if (mode == CANVAS_ASCII) return (uint32_t)ascii[(int)(v * 9.999)];
    return shades[(int)(v * 4.999)];
}

/* Mean of m over rows [r0, r1) and columns [c0, c1), scaled to [0, 1]; NaN when every
 * value is NaN. */
static double block(const float *m, int cols, int r0, int r1, int c0, int c1, float lo, float hi)
{
    double s = 0;
    int n = 0;
    for (int r = r0; r < r1; r++)
        for (int k = c0; k < c1; k++) {
            float v = m[(long)r * cols + k];
            if (v == v) s += v, n++;
        }
    if (!n) return NAN;
    return hi > lo ? (s / n - lo) / (hi - lo) : 0.5;
}

void canvas_heatmap(struct canvas *c, int x, int y, int w, int h, const float *m, int rows,
                    int cols, float lo, float hi)
{
    if (w < 1 || h < 1 || rows < 1 || cols < 1) return;
    int per = c->mode == CANVAS_COLOR ? 2 : 1;
    int px_rows = rows < per * h ? rows : per * h, px_cols = cols < w ? cols : w;
    int text_rows = (px_rows + per - 1) / per;
    for (int tr = 0; tr < text_rows; tr++) {
        /* text row tr from the bottom holds pixel rows per*tr (lower) .. per*tr+per-1 */
        int cy = y + h - 1 - tr;
        for (int k = 0; k < px_cols; k++) {
            int c0 = (int)((long)k * cols / px_cols), c1 = (int)((long)(k + 1) * cols / px_cols);
            if (c1 <= c0) c1 = c0 + 1;
            int p_lo = per * tr, p_hi = p_lo + per - 1;
            double vlo = block(m, cols, (int)((long)p_lo * rows / px_rows), (int)((long)(p_lo + 1) * rows / px_rows),
                               c0, c1, lo, hi);
            if (per == 1) {
                if (vlo == vlo) canvas_set(c, x + k, cy, ramp_glyph(c->mode, vlo), CANVAS_NONE, CANVAS_NONE);
                continue;
            }
            double vhi = p_hi < px_rows ? block(m, cols, (int)((long)p_hi * rows / px_rows),
                                                (int)((long)(p_hi + 1) * rows / px_rows), c0, c1, lo, hi)
                                        : NAN;
            int fg = vhi == vhi ? canvas_ramp_color(vhi) : CANVAS_NONE;
            int bg = vlo == vlo ? canvas_ramp_color(vlo) : CANVAS_NONE;
            if (vhi == vhi || vlo == vlo) canvas_set(c, x + k, cy, UPPER_HALF, fg, bg);
        }
    }
}

void canvas_scale(struct canvas *c, int x, int y, int w, double lo, double hi, const char *fmt)
{
    if (w < 2) return;
    for (int k = 0; k < w; k++) {
        double v = (double)k / (w - 1);
        if (c->mode == CANVAS_COLOR) canvas_set(c, x + k, y, ' ', CANVAS_NONE, canvas_ramp_color(v));
        else canvas_set(c, x + k, y, ramp_glyph(c->mode, v), CANVAS_NONE, CANVAS_NONE);
    }
    char a[48], b[48], m[48];
    snprintf(a, sizeof a, fmt, lo);
    snprintf(m, sizeof m, fmt, 0.5 * (lo + hi));
    snprintf(b, sizeof b, fmt, hi);
    int la = (int)strlen(a), lm = (int)strlen(m), lb = (int)strlen(b);
    canvas_text(c, x, y + 1, CANVAS_NONE, a);
    if (la + lm + lb + 2 <= w) canvas_text(c, x + (w - lm) / 2, y + 1, CANVAS_NONE, m);
    if (la + lb + 1 <= w) canvas_text(c, x + w - lb, y + 1, CANVAS_NONE, b);
}

/* Set braille dot (px, py) of the area's 2w x 4h pixel grid. */
static void dot(struct canvas *c, int x, int y, int px, int py, int color)
{
    static const uint8_t bit[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80}};
    struct canvas_cell *k = cell(c, x + px / 2, y + py / 4);
    if (!k) return;
    uint32_t ch = k->ch >= BRAILLE && k->ch <= BRAILLE + 0xff ? k->ch : BRAILLE;
    canvas_set(c, x + px / 2, y + py / 4, ch | bit[py % 4][px % 2], color, k->bg);
}

/* Points of the segment (x0, y0)-(x1, y1) (Bresenham) through plot(). */
static void segment(struct canvas *c, int ox, int oy, int x0, int y0, int x1, int y1,
                    const struct canvas_series *s, int braille, int pw, int ph)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
        if (x0 >= 0 && y0 >= 0 && x0 < pw && y0 < ph) {
            if (braille) dot(c, ox, oy, x0, y0, s->color);
            else canvas_set(c, ox + x0, oy + y0, (uint32_t)(s->ascii ? s->ascii : '*'), CANVAS_NONE, CANVAS_NONE);
        }
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) err += dy, x0 += sx;
        if (e2 <= dx) err += dx, y0 += sy;
    }
}

void canvas_plot(struct canvas *c, int x, int y, int w, int h, const struct canvas_series *s,
                 int n_series, double x0, double x1, double y0, double y1)
{
    if (w < 1 || h < 1) return;
    int braille = c->mode != CANVAS_ASCII;
    int pw = braille ? 2 * w : w, ph = braille ? 4 * h : h;
    double xs = x1 > x0 ? (pw - 1) / (x1 - x0) : 0, ys = y1 > y0 ? (ph - 1) / (y1 - y0) : 0;
    for (int k = 0; k < n_series; k++) {
        int have = 0, px_prev = 0, py_prev = 0;
        for (int i = 0; i < s[k].n; i++) {
            double xv = s[k].x ? s[k].x[i] : i, yv = s[k].y[i];
            if (!(xv == xv) || !(yv == yv)) {
                have = 0;
                continue;
            }
            int px = (int)lround((xv - x0) * xs), py = ph - 1 - (int)lround((yv - y0) * ys);
            segment(c, x, y, have ? px_prev : px, have ? py_prev : py, px, py, &s[k], braille, pw, ph);
            px_prev = px, py_prev = py, have = 1;
        }
    }
}

void canvas_bar(struct canvas *c, int x, int y, int w, double frac, int color)
{
    frac = !(frac > 0) ? 0 : frac > 1 ? 1 : frac;
    if (c->mode == CANVAS_ASCII) {
        int n = (int)lround(frac * w);
        for (int k = 0; k < n; k++) canvas_set(c, x + k, y, '#', CANVAS_NONE, CANVAS_NONE);
        return;
    }
    int eighths = (int)lround(frac * w * 8);
    for (int k = 0; k < w && eighths > 0; k++, eighths -= 8)
        canvas_set(c, x + k, y, eighths >= 8 ? FULL_BLOCK : FULL_BLOCK + (uint32_t)(8 - eighths), color,
                   CANVAS_NONE);
}

void canvas_axis_x(struct canvas *c, int x, int y, int w, double lo, double hi, int n_ticks,
                   const char *fmt)
{
    if (n_ticks < 2 || w < 2) return;
    int free_from = x;
    for (int i = 0; i < n_ticks; i++) {
        char t[48];
        snprintf(t, sizeof t, fmt, lo + (hi - lo) * i / (n_ticks - 1));
        int len = (int)strlen(t), col = x + (int)lround((double)i * (w - 1) / (n_ticks - 1));
        int start = i == 0 ? col : i == n_ticks - 1 ? col - len + 1 : col - len / 2;
        if (start < free_from || start + len > x + w) continue;
        canvas_text(c, start, y, CANVAS_NONE, t);
        free_from = start + len + 1;
    }
}

void canvas_axis_y(struct canvas *c, int x, int y, int h, int label_w, double lo, double hi,
                   int n_ticks, const char *fmt)
{
    if (n_ticks < 2 || h < 1) return;
    int last_row = -1;
    for (int i = 0; i < n_ticks; i++) {
        int row = y + h - 1 - (int)lround((double)i * (h - 1) / (n_ticks - 1));
        if (row == last_row) continue;
        char t[48];
        snprintf(t, sizeof t, fmt, lo + (hi - lo) * i / (n_ticks - 1));
        int len = (int)strlen(t);
        if (len > label_w) len = label_w;
        canvas_text(c, x - len, row, CANVAS_NONE, t + strlen(t) - len);
        last_row = row;
    }
}

/* UTF-8 of cp into b (4 bytes at most); returns the length. */
static int utf8(uint32_t cp, char *b)
{
    if (cp < 0x80) return b[0] = (char)cp, 1;
    if (cp < 0x800) return b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f)), 2;
    if (cp < 0x10000)
        return b[0] = (char)(0xe0 | cp >> 12), b[1] = (char)(0x80 | (cp >> 6 & 0x3f)),
               b[2] = (char)(0x80 | (cp & 0x3f)), 3;
    return b[0] = (char)(0xf0 | cp >> 18), b[1] = (char)(0x80 | (cp >> 12 & 0x3f)),
           b[2] = (char)(0x80 | (cp >> 6 & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), 4;
}

void canvas_print(const struct canvas *c, FILE *f)
{
    for (int y = 0; y < c->h; y++) {
        const struct canvas_cell *row = &c->cells[(long)y * c->w];
        int end = c->w;
        while (end > 0 && row[end - 1].ch == ' ' && row[end - 1].bg == CANVAS_NONE) end--;
        int fg = CANVAS_NONE, bg = CANVAS_NONE, coloured = 0;
        for (int x = 0; x < end; x++) {
            const struct canvas_cell *k = &row[x];
            if (c->mode == CANVAS_COLOR && (k->fg != fg || k->bg != bg)) {
                fputs("\x1b[0m", f);
                if (k->fg != CANVAS_NONE) fprintf(f, "\x1b[38;5;%dm", k->fg);
                if (k->bg != CANVAS_NONE) fprintf(f, "\x1b[48;5;%dm", k->bg);
                fg = k->fg, bg = k->bg;
                coloured = 1;
            }
            char b[4];
            int len = utf8(k->ch, b);
            fwrite(b, 1, (size_t)len, f);
        }
        if (coloured) fputs("\x1b[0m", f);
        fputc('\n', f);
    }
}

char *canvas_string(const struct canvas *c)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return NULL;
    canvas_print(c, f);
    if (fclose(f)) {
        free(buf);
        return NULL;
    }
    return buf;
}
