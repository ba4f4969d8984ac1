/* status.c: status names and the thread-local detail message (see status.h). */
#include "basin/core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/log.h"

static const char *const names[] = {
#define STATUS_NAME(code, name) name,
    STATUS_LIST(STATUS_NAME)
#undef STATUS_NAME
};

static _Thread_local char detail[1024];

const char *status_name(enum status s)
{
    return (unsigned)s < STATUS_COUNT ? names[s] : "unknown status";
}

enum status status_set(enum status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return s;
}

enum status status_prefix(enum status s, const char *fmt, ...)
{
    char prefix[512], old[sizeof detail];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, detail, sizeof old);
    const char *rest = old[0] ? old : status_name(s);
    size_t n = strlen(prefix);
    if (n > sizeof detail - 3) n = sizeof detail - 3;
    memcpy(detail, prefix, n);
    memcpy(detail + n, ": ", 2);
    size_t m = strlen(rest);
    if (m > sizeof detail - n - 3) m = sizeof detail - n - 3;
    memcpy(detail + n + 2, rest, m);
    detail[n + 2 + m] = 0;
    return s;
}

const char *status_detail(void)
{
    return detail;
}

void status_clear(void)
{
    detail[0] = 0;
}

_Noreturn void check_failed(const char *file, int line, const char *expr)
{
    log_msg(LOG_ERROR, "%s:%d: CHECK(%s) failed", file, line, expr);
    abort();
}
