/* render.c: number formatting for tables and the terminal's size (see render.h). */
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
