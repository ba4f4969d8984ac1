/* logbuf.c: a thread-safe ring of output lines with FILE * writers (see logbuf.h). */
#define _GNU_SOURCE
#include "logbuf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES 1024

struct line {
    enum logbuf_kind kind;
    char *text;
};

struct logbuf {
    pthread_mutex_t lock;
    struct line *lines;     /* ring of max lines */
    int max, head, count;   /* oldest at head */
    unsigned long changes;
    void (*notify)(void *user);
    void *user;
};

/* A writer's partial line. */
struct writer {
    struct logbuf *lb;
    enum logbuf_kind kind;
    char buf[LINE_MAX_BYTES];
    size_t n;
    int in_escape;          /* inside an ESC [ ... sequence */
};

struct logbuf *logbuf_create(int max_lines, void (*notify)(void *user), void *user)
{
    struct logbuf *lb = calloc(1, sizeof *lb);
    if (!lb) return NULL;
    lb->lines = calloc((size_t)max_lines, sizeof *lb->lines);
    if (!lb->lines) {
        free(lb);
        return NULL;
    }
    pthread_mutex_init(&lb->lock, NULL);
    lb->max = max_lines;
    lb->notify = notify;
    lb->user = user;
    return lb;
}

void logbuf_destroy(struct logbuf *lb)
{
    if (!lb) return;
    for (int i = 0; i < lb->max; i++) free(lb->lines[i].text);
    free(lb->lines);
    pthread_mutex_destroy(&lb->lock);
    free(lb);
}

static void push(struct logbuf *lb, enum logbuf_kind kind, const char *text, size_t n)
{
    char *copy = malloc(n + 1);
    if (!copy) return;
    memcpy(copy, text, n);
    copy[n] = 0;
    pthread_mutex_lock(&lb->lock);
    int slot;
    if (lb->count < lb->max) {
        slot = (lb->head + lb->count) % lb->max;
        lb->count++;
    } else {
        slot = lb->head;
        lb->head = (lb->head + 1) % lb->max;
        free(lb->lines[slot].text);
    }
    lb->lines[slot].kind = kind;
    lb->lines[slot].text = copy;
    lb->changes++;
    pthread_mutex_unlock(&lb->lock);
    if (lb->notify) lb->notify(lb->user);
}

void logbuf_add(struct logbuf *lb, enum logbuf_kind kind, const char *text)
{
    do {
        size_t n = strcspn(text, "\n");
        if (n > LINE_MAX_BYTES - 1) n = LINE_MAX_BYTES - 1;
        push(lb, kind, text, n);
        text += n;
        if (*text == '\n') text++;
    } while (*text);
}

static ssize_t writer_write(void *cookie, const char *data, size_t size)
{
    struct writer *w = cookie;
    for (size_t i = 0; i < size; i++) {
        char ch = data[i];
        if (w->in_escape) {
            if ((ch >= '@' && ch <= '~' && ch != '[') ) w->in_escape = 0;
            continue;
        }
        if (ch == '\x1b') {
            w->in_escape = 1;
            continue;
        }
        if (ch == '\r') {
            w->n = 0; /* a progress line redraws itself */
            continue;
        }
        if (ch == '\n' || w->n == sizeof w->buf - 1) {
            push(w->lb, w->kind, w->buf, w->n);
            w->n = 0;
            if (ch == '\n') continue;
        }
        w->buf[w->n++] = ch;
    }
    return (ssize_t)size;
}

static int writer_close(void *cookie)
{
    struct writer *w = cookie;
    if (w->n) push(w->lb, w->kind, w->buf, w->n);
    free(w);
    return 0;
}

FILE *logbuf_stream(struct logbuf *lb, enum logbuf_kind kind)
{
    struct writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->lb = lb;
    w->kind = kind;
    cookie_io_functions_t io = {.write = writer_write, .close = writer_close};
    FILE *f = fopencookie(w, "w", io);
    if (!f) {
        free(w);
        return NULL;
    }
    setvbuf(f, NULL, _IOLBF, 0);
    return f;
}

int logbuf_count(struct logbuf *lb)
{
    pthread_mutex_lock(&lb->lock);
    int n = lb->count;
    pthread_mutex_unlock(&lb->lock);
    return n;
}

unsigned long logbuf_changes(struct logbuf *lb)
{
    pthread_mutex_lock(&lb->lock);
    unsigned long c = lb->changes;
    pthread_mutex_unlock(&lb->lock);
    return c;
}

enum logbuf_kind logbuf_line(struct logbuf *lb, int i, char *buf, size_t n)
{
    pthread_mutex_lock(&lb->lock);
    enum logbuf_kind kind = LOGBUF_OUTPUT;
    if (i >= 0 && i < lb->count) {
        const struct line *l = &lb->lines[(lb->head + i) % lb->max];
        snprintf(buf, n, "%s", l->text);
        kind = l->kind;
    } else if (n) {
        buf[0] = 0;
    }
    pthread_mutex_unlock(&lb->lock);
    return kind;
}
