/* status.h: status codes with detail messages, shared by every layer.
 *
 * A runtime failure returns a non-zero enum status and leaves a one-line detail message
 * ("model.safetensors: tensor 'stem.conv.weight' is F64, expected F32") in a thread-local
 * buffer, so a background job and the UI thread never overwrite each other's message.
 * Programmer errors use CHECK(), which stays on in every build and aborts with file:line.
 */
#ifndef BASIN_CORE_STATUS_H
#define BASIN_CORE_STATUS_H

/* X-macro: code, short name. The names are what status_name() returns. */
#define STATUS_LIST(X)                                                                      \
    X(STATUS_OK, "ok")                                                                      \
    X(STATUS_NOMEM, "out of memory")                                                        \
    X(STATUS_IO, "i/o error")                                                               \
    X(STATUS_FORMAT, "bad format")                                                          \
    X(STATUS_INVALID, "invalid argument")                                                   \
    X(STATUS_UNSUPPORTED, "unsupported")                                                    \
    X(STATUS_MISMATCH, "mismatch")                                                          \
    X(STATUS_NOT_FOUND, "not found")                                                        \
    X(STATUS_NUMERIC, "numeric error")                                                      \
    X(STATUS_DEVICE, "device error")                                                        \
    X(STATUS_CANCELLED, "cancelled")

enum status {
#define STATUS_ENUM(code, name) code,
    STATUS_LIST(STATUS_ENUM)
#undef STATUS_ENUM
    STATUS_COUNT
};

/* Short fixed name of a code ("bad format"); never NULL. */
const char *status_name(enum status s);

/* Record a detail message for the calling thread and return s, so a failure reads
 * `return status_set(STATUS_IO, "%s: %s", path, strerror(errno));`. */
enum status status_set(enum status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the calling thread's detail message with "<prefix>: " and return s; used when a
 * caller adds context (a file name) to an error raised below it. */
enum status status_prefix(enum status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The calling thread's last detail message ("" when none). Valid until the next
 * status_set() on this thread. */
const char *status_detail(void);

/* Forget the calling thread's detail message. */
void status_clear(void);

/* Programmer-error check, on in every build: prints file:line and the expression through
 * the log sink, then aborts. */
#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) check_failed(__FILE__, __LINE__, #cond);                               \
    } while (0)

_Noreturn void check_failed(const char *file, int line, const char *expr);

#endif
