/* strbuf.h: a growable, always NUL-terminated byte buffer for building text (JSON, headers,
 * summaries). An allocation failure sets `failed` and later appends do nothing, so a builder
 * checks once at the end. Caller storage: zero-initialise, release with strbuf_fini. */
#ifndef BASIN_CORE_STRBUF_H
#define BASIN_CORE_STRBUF_H

#include <stddef.h>

struct strbuf {
    char *p;        /* the text (NULL until the first append); owned */
    size_t n, cap;  /* bytes used (without the NUL) and allocated */
    int failed;     /* an append ran out of memory (STATUS_NOMEM recorded) */
};

void strbuf_put(struct strbuf *b, const char *s, size_t n);
void strbuf_puts(struct strbuf *b, const char *s);
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Free the text and leave b empty. */
void strbuf_fini(struct strbuf *b);

#endif
