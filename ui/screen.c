/* screen.c: ncurses panes with readline inside them (see screen.h).
 *
 * readline runs on its callback interface: every byte wgetch returns is handed over
 * through rl_getc_function and one rl_callback_read_char call, and readline draws its line
 * through rl_redisplay_function into the prompt window. ncurses owns the terminal modes
 * (rl_prep_term_function NULL); keypad is off on the prompt window so arrow keys reach
 * readline as the escape sequences its keymaps decode; a resize still arrives as KEY_RESIZE.
 * ref: ../shared/reference/audio-ui-testability.md section 4 (rldemo); tig's readline use.
 */
#include "screen.h"

#include <curses.h>
#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <term.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "basin/core/status.h"

struct screen {
    SCREEN *term;
    WINDOW *view, *status, *log, *prompt;
    int rows, cols, too_small;
    int view_h, log_h;
    int scroll;                     /* log lines scrolled back */
    int colors;                     /* 1: 256 colours and extended pairs */
    enum canvas_mode mode;
    unsigned char pending[64];      /* bytes waiting for readline */
    int n_pending, at;
};

/* readline's hooks take no user pointer: the one screen of the process. */
static struct screen *active;

/* What a crash handler restores, saved at open (async-signal-safe to use). */
static struct termios saved_modes;
static int have_saved_modes;
static char restore_seq[128];

static void on_crash(int sig)
{
    if (have_saved_modes) tcsetattr(STDIN_FILENO, TCSANOW, &saved_modes);
    if (restore_seq[0] && write(STDOUT_FILENO, restore_seq, strlen(restore_seq)) < 0) {}
    signal(sig, SIG_DFL);
    raise(sig);
}

int screen_usable(void)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) return 0;
    const char *term = getenv("TERM");
    if (!term || !*term || !strcmp(term, "dumb")) return 0;
    int err = 0;
    if (setupterm(NULL, STDOUT_FILENO, &err) != OK) return 0;
    const char *cup = tigetstr("cup");
    return cup && cup != (char *)-1;
}

/* ---- readline hooks ------------------------------------------------------------------- */

static int getc_hook(FILE *f)
{
    (void)f;
    struct screen *s = active;
    return s && s->at < s->n_pending ? s->pending[s->at++] : EOF;
}

static int input_available_hook(void)
{
    return active && active->at < active->n_pending;
}

/* Display columns of the UTF-8 text s[0..n). */
static int columns_of(const char *s, size_t n)
{
    mbstate_t st;
    memset(&st, 0, sizeof st);
    int cols = 0;
    size_t i = 0;
    while (i < n) {
        wchar_t wc;
        size_t k = mbrtowc(&wc, s + i, n - i, &st);
        if (k == 0 || k == (size_t)-1 || k == (size_t)-2) {
            cols++, i++;
            memset(&st, 0, sizeof st);
            continue;
        }
        int w = wcwidth(wc);
        cols += w > 0 ? w : 0;
        i += k;
    }
    return cols;
}

static void redisplay(void)
{
    struct screen *s = active;
    if (!s || !s->prompt) return;
    const char *prompt = rl_display_prompt ? rl_display_prompt : "";
    int pw = columns_of(prompt, strlen(prompt));
    int width = s->cols - pw - 1;
    if (width < 1) width = 1;
    /* Scroll the line horizontally so the cursor stays visible. */
    int cur = columns_of(rl_line_buffer, (size_t)rl_point);
    size_t from = 0;
    while (cur - columns_of(rl_line_buffer, from) >= width && from < (size_t)rl_point) {
        from++;
        while ((rl_line_buffer[from] & 0xc0) == 0x80) from++;
    }
    werase(s->prompt);
    mvwaddstr(s->prompt, 0, 0, prompt);
    waddnstr(s->prompt, rl_line_buffer + from, -1);
    wmove(s->prompt, 0, pw + cur - columns_of(rl_line_buffer, from));
    wrefresh(s->prompt);
}

/* PgUp / PgDn: scroll the log by most of its height. */
static int scroll_up(int count, int key)
{
    (void)count, (void)key;
    if (active) active->scroll += active->log_h > 2 ? active->log_h - 2 : 1;
    return 0;
}

static int scroll_down(int count, int key)
{
    (void)count, (void)key;
    if (active) {
        active->scroll -= active->log_h > 2 ? active->log_h - 2 : 1;
        if (active->scroll < 0) active->scroll = 0;
    }
    return 0;
}

/* ---- layout --------------------------------------------------------------------------- */

static void free_windows(struct screen *s)
{
    WINDOW **w[] = {&s->view, &s->status, &s->log, &s->prompt};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        if (*w[i]) delwin(*w[i]), *w[i] = NULL;
}

static void layout(struct screen *s)
{
    free_windows(s);
    getmaxyx(stdscr, s->rows, s->cols);
    s->too_small = s->rows < SCREEN_MIN_ROWS || s->cols < SCREEN_MIN_COLS;
    if (s->too_small) {
        s->view_h = s->rows > 1 ? s->rows - 1 : 1;
        s->log_h = 0;
        s->view = newwin(s->view_h, s->cols, 0, 0);
    } else {
        s->log_h = (s->rows - 2) * 2 / 5;
        s->view_h = s->rows - 2 - s->log_h;
        s->view = newwin(s->view_h, s->cols, 0, 0);
        s->status = newwin(1, s->cols, s->view_h, 0);
        s->log = newwin(s->log_h, s->cols, s->view_h + 1, 0);
    }
    s->prompt = newwin(1, s->cols, s->rows - 1, 0);
    nodelay(s->prompt, TRUE);
    keypad(s->prompt, FALSE);
    clearok(curscr, TRUE);
}

int screen_open(struct screen **out, const char *prompt, void (*on_line)(char *line))
{
    *out = NULL;
    struct screen *s = calloc(1, sizeof *s);
    if (!s) return STATUS_NOMEM;
    setlocale(LC_ALL, "");
    if (tcgetattr(STDIN_FILENO, &saved_modes) == 0) have_saved_modes = 1;
    s->term = newterm(NULL, stdout, stdin);
    if (!s->term) {
        free(s);
        return status_set(STATUS_DEVICE, "the terminal (TERM=%s) cannot be used",
                          getenv("TERM") ? getenv("TERM") : "");
    }
    set_term(s->term);
    const char *rmcup = tigetstr("rmcup"), *cnorm = tigetstr("cnorm");
    snprintf(restore_seq, sizeof restore_seq, "\x1b[0m%s%s\r\n",
             rmcup && rmcup != (char *)-1 ? rmcup : "", cnorm && cnorm != (char *)-1 ? cnorm : "");
    static const int crash[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof crash / sizeof crash[0]; i++) signal(crash[i], on_crash);
    cbreak();
    noecho();
    nonl();
    intrflush(stdscr, FALSE);
    if (has_colors()) {
        start_color();
        use_default_colors();
        s->colors = COLORS >= 256;
    }
    const char *cs = setlocale(LC_CTYPE, NULL);
    int utf8 = MB_CUR_MAX > 1 && cs && (strstr(cs, "UTF-8") || strstr(cs, "utf8") || strstr(cs, "UTF8"));
    s->mode = !utf8 ? CANVAS_ASCII : s->colors ? CANVAS_COLOR : CANVAS_UTF8;
    layout(s);
    active = s;

    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    rl_change_environment = 0;
    rl_prep_term_function = NULL;
    rl_deprep_term_function = NULL;
    rl_getc_function = getc_hook;
    rl_input_available_hook = input_available_hook;
    rl_redisplay_function = redisplay;
    rl_bind_keyseq("\\e[5~", scroll_up);
    rl_bind_keyseq("\\e[6~", scroll_down);
    rl_callback_handler_install(prompt, on_line);
    *out = s;
    return STATUS_OK;
}

void screen_close(struct screen *s)
{
    if (!s) return;
    rl_callback_handler_remove();
    rl_getc_function = rl_getc;
    rl_redisplay_function = rl_redisplay;
    rl_input_available_hook = NULL;
    free_windows(s);
    endwin();
    delscreen(s->term);
    if (have_saved_modes) tcsetattr(STDIN_FILENO, TCSANOW, &saved_modes);
    static const int crash[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof crash / sizeof crash[0]; i++) signal(crash[i], SIG_DFL);
    if (active == s) active = NULL;
    free(s);
}

enum canvas_mode screen_canvas_mode(const struct screen *s)
{
    return s->mode;
}

void screen_view_size(const struct screen *s, int *w, int *h)
{
    *w = s->too_small ? 0 : s->cols;
    *h = s->too_small ? 0 : s->view_h;
}

int screen_scrollback(const struct screen *s)
{
    return s->scroll;
}

int screen_input(struct screen *s)
{
    int redraw = 0, ch;
    while ((ch = wgetch(s->prompt)) != ERR) {
        if (ch == KEY_RESIZE) {
            layout(s);
            redraw = 1;
            continue;
        }
        if (ch < 0 || ch > 255) continue;
        s->pending[0] = (unsigned char)ch;
        s->n_pending = 1, s->at = 0;
        int before = s->scroll;
        rl_callback_read_char();
        redraw |= before != s->scroll;
        if (!active) return 1; /* closed from the line handler */
    }
    return redraw;
}

void screen_cancel_line(struct screen *s)
{
    (void)s;
    rl_free_line_state();
    rl_callback_sigcleanup();
    rl_replace_line("", 0);
    rl_point = rl_end = 0;
    rl_on_new_line();
    rl_redisplay();
}

/* ---- drawing -------------------------------------------------------------------------- */

static void put_cell(struct screen *s, WINDOW *w, int y, int x, const struct canvas_cell *k)
{
    wchar_t wc[2] = {(wchar_t)k->ch, 0};
    int pair = 0;
    if (s->colors && (k->fg != CANVAS_NONE || k->bg != CANVAS_NONE)) {
        pair = alloc_pair(k->fg, k->bg);
        if (pair < 0) pair = 0;
    }
    cchar_t cc;
    setcchar(&cc, wc, A_NORMAL, 0, &pair);
    mvwadd_wch(w, y, x, &cc);
}

static void draw_view(struct screen *s, const struct canvas *c)
{
    werase(s->view);
    if (s->too_small) {
        mvwprintw(s->view, 0, 0, "basin's split view needs at least %d x %d; this terminal is %d x %d.",
                  SCREEN_MIN_COLS, SCREEN_MIN_ROWS, s->cols, s->rows);
        mvwprintw(s->view, 1, 0, "Make it larger; the prompt below still works.");
        wnoutrefresh(s->view);
        return;
    }
    if (c)
        for (int y = 0; y < c->h && y < s->view_h; y++)
            for (int x = 0; x < c->w && x < s->cols; x++) {
                const struct canvas_cell *k = canvas_at(c, x, y);
                if (k->ch != ' ' || k->bg != CANVAS_NONE) put_cell(s, s->view, y, x, k);
            }
    wnoutrefresh(s->view);
}

static void draw_status(struct screen *s, const char *left, const char *right, double frac)
{
    werase(s->status);
    wbkgd(s->status, A_REVERSE);
    int rl = right ? columns_of(right, strlen(right)) : 0;
    int bar_w = frac >= 0 ? 20 : 0;
    /* the right part (a job) wins: the left text is cut to what is left */
    int room = s->cols - 2 - rl - (bar_w ? bar_w + 3 : 0) - 2;
    if (room < 10 && bar_w) bar_w = 0, room = s->cols - 2 - rl - 2;
    if (left && room > 0) {
        char cut[1024];
        snprintf(cut, sizeof cut, "%s", left);
        while (columns_of(cut, strlen(cut)) > room) {
            size_t n = strlen(cut);
            do n--;
            while (n > 0 && (cut[n] & 0xc0) == 0x80);
            cut[n] = 0;
        }
        mvwaddstr(s->status, 0, 1, cut);
    }
    int x = s->cols - 1 - rl;
    if (bar_w) {
        int x0 = x - bar_w - 3, fill = (int)(frac * bar_w + 0.5);
        mvwaddch(s->status, 0, x0, '[');
        for (int k = 0; k < bar_w; k++) waddch(s->status, k < fill ? '#' : '.');
        waddch(s->status, ']');
    }
    if (right && rl < s->cols - 2) mvwaddstr(s->status, 0, x, right);
    wnoutrefresh(s->status);
}

/* Byte offsets where line wraps at w columns (a code point a column): off[0] = 0, up to
 * max rows; returns the rows the line takes (at least 1). */
static int wrap_offsets(const char *line, int w, int *off, int max)
{
    int rows = 1, col = 0;
    off[0] = 0;
    for (int i = 0; line[i]; i++) {
        if (((unsigned char)line[i] & 0xc0) == 0x80) continue; /* inside a code point */
        if (col == w) {
            if (rows == max) break;
            off[rows++] = i;
            col = 0;
        }
        col++;
    }
    return rows;
}

/* The log pane: the newest lines at the bottom, a line wider than the pane wrapped onto as
 * many rows as it needs (none of it left over from a longer line drawn before); scroll
 * counts lines back from the newest. */
static void draw_log(struct screen *s, struct logbuf *lb)
{
    werase(s->log);
    int n = lb ? logbuf_count(lb) : 0;
    if (s->scroll > n - 1) s->scroll = n - 1 > 0 ? n - 1 : 0;
    int w = s->cols > 0 ? s->cols : 1, y = s->log_h, off[64];
    char line[1100];
    for (int i = n - 1 - s->scroll; i >= 0 && y > 0; i--) {
        enum logbuf_kind kind = logbuf_line(lb, i, line, sizeof line);
        int rows = wrap_offsets(line, w, off, 64);
        attr_t a = kind == LOGBUF_ECHO ? A_BOLD : A_NORMAL;
        int pair = 0;
        if (kind == LOGBUF_ERROR && s->colors) pair = alloc_pair(196, -1);
        wattr_set(s->log, a, 0, pair > 0 ? &pair : NULL);
        y -= rows;
        for (int r = 0; r < rows; r++) {
            if (y + r < 0) continue;
            int end = r + 1 < rows ? off[r + 1] : (int)strlen(line);
            mvwaddnstr(s->log, y + r, 0, line + off[r], end - off[r]);
        }
        wattr_set(s->log, A_NORMAL, 0, NULL);
    }
    if (s->scroll)
        mvwprintw(s->log, 0, s->cols - 24, "[%d lines back: PgDn]", s->scroll);
    wnoutrefresh(s->log);
}

void screen_draw(struct screen *s, const struct canvas *view, const char *status_left,
                 const char *status_right, double frac, struct logbuf *lb)
{
    draw_view(s, view);
    if (!s->too_small) {
        draw_status(s, status_left, status_right, frac);
        draw_log(s, lb);
    }
    redisplay(); /* the prompt last: the cursor stays there */
    doupdate();
}
