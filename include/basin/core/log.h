/* log.h: the log sink. src/ never prints: it logs through the sink the program installs.
 *
 * With no sink installed messages are dropped. The sink may be called from any thread; the
 * program's sink must be thread-safe (the UI's queues lines for its own thread).
 */
#ifndef BASIN_CORE_LOG_H
#define BASIN_CORE_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

typedef void (*log_sink_fn)(enum log_level level, const char *msg, void *user);

/* Install fn (NULL: drop everything) with its user pointer; messages below min_level are
 * dropped before formatting. */
void log_set_sink(log_sink_fn fn, void *user, enum log_level min_level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
