/* screen.h: the split view's terminal (DESIGN.md section 7): ncurses windows for the view
 * pane, the status line, the log of command output and the prompt, with readline fed
 * through ncurses by its callback interface (the tig pattern), so history, editing keys
 * and completion work inside the split view.
 *
 * Layout, top to bottom: the view pane, one status line, the log (PgUp / PgDn scroll it),
 * the prompt line. It needs 80 x 24 or more; on a smaller terminal the panes give way to a
 * message saying so, and the prompt keeps working.
 *
 * The terminal is restored on every exit path: screen_close, and a crash signal
 * (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) restores the saved terminal modes with
 * async-signal-safe calls before the default action. Only the UI thread calls these.
 */
#ifndef BASIN_UI_SCREEN_H
#define BASIN_UI_SCREEN_H

#include "canvas.h"
#include "logbuf.h"

struct screen;

#define SCREEN_MIN_COLS 80
#define SCREEN_MIN_ROWS 24

/* 1 when standard input and output are a terminal that ncurses can drive (TERM known,
 * with cursor addressing); else the program stays in line mode. */
int screen_usable(void);

/* Take the terminal: ncurses, the windows, readline's callback interface with prompt and
 * on_line (NULL line: Ctrl-D on an empty line). 0, or STATUS_DEVICE (the terminal cannot
 * be used). */
int screen_open(struct screen **out, const char *prompt, void (*on_line)(char *line));
/* Give the terminal back as it was. NULL is a no-op. */
void screen_close(struct screen *s);

/* The mode figures for the view pane are drawn in: COLOR with 256 colours and UTF-8,
 * UTF8 or ASCII otherwise. */
enum canvas_mode screen_canvas_mode(const struct screen *s);
/* The view pane's size in cells (0 x 0 when the terminal is too small). */
void screen_view_size(const struct screen *s, int *w, int *h);

/* Read the keys waiting on standard input (never blocks) and hand them to readline;
 * handles a terminal resize. Returns 1 when the screen needs redrawing. */
int screen_input(struct screen *s);
/* Forget the line being typed (Ctrl-C at the prompt) and show a fresh prompt. */
void screen_cancel_line(struct screen *s);

/* Redraw: the view canvas (NULL: blank), the status line (left text, right text, and a
 * progress bar when frac >= 0), the log's last lines (scrolled back by the PgUp count).
 * Batched into one refresh. */
void screen_draw(struct screen *s, const struct canvas *view, const char *status_left,
                 const char *status_right, double frac, struct logbuf *lb);

/* Lines the log is scrolled back (PgUp / PgDn adjust it; new output does not). */
int screen_scrollback(const struct screen *s);

#endif
