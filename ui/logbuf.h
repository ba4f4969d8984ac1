/* logbuf.h: the workbench's log of command output, a ring of lines shared between the
 * threads that write (commands, jobs, the log sink) and the UI thread that draws it.
 *
 * Writers get a FILE * (logbuf_stream) whose bytes are split into lines; a '\r' rewinds
 * the current line (progress lines overwrite themselves, as on a terminal); SGR escapes
 * are dropped (colour is the canvas's business). Every complete line raises a change
 * counter and calls the notify hook, which wakes the UI thread. Reading takes the lock.
 */
#ifndef BASIN_UI_LOGBUF_H
#define BASIN_UI_LOGBUF_H

#include <stdio.h>

enum logbuf_kind { LOGBUF_OUTPUT, LOGBUF_ERROR, LOGBUF_ECHO };

struct logbuf;

/* A log of at most max_lines lines (older ones are dropped). notify(user) is called after
 * each complete line, from the writing thread (NULL: none). NULL when out of memory. */
struct logbuf *logbuf_create(int max_lines, void (*notify)(void *user), void *user);
void logbuf_destroy(struct logbuf *lb);

/* A stream whose lines go to the log as `kind` (close it with fclose before the log). */
FILE *logbuf_stream(struct logbuf *lb, enum logbuf_kind kind);
/* Add one line (text up to a newline; longer text is split). */
void logbuf_add(struct logbuf *lb, enum logbuf_kind kind, const char *text);

/* Lines held, and a counter that changes with every new line. */
int logbuf_count(struct logbuf *lb);
unsigned long logbuf_changes(struct logbuf *lb);
/* Copy line i (0 = oldest held) into buf (n bytes); returns its kind. */
enum logbuf_kind logbuf_line(struct logbuf *lb, int i, char *buf, size_t n);

#endif
