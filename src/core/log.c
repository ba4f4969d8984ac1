/* log.c: the process-wide log sink (the one global the program installs; see log.h). */
#include "basin/core/log.h"

#include <stdarg.h>
#include <stdio.h>

static log_sink_fn sink;
static void *sink_user;
static enum log_level sink_min = LOG_INFO;

void log_set_sink(log_sink_fn fn, void *user, enum log_level min_level)
{
    sink = fn;
    sink_user = user;
    sink_min = min_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    log_sink_fn fn = sink;
    if (!fn || level < sink_min) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fn(level, buf, sink_user);
}
