/* progress.h: one progress-and-cancel type for every long operation.
 *
 * A long call (synthesising a data set, loading features, building a large model, training,
 * a landscape) takes a `const struct progress *` (NULL: no reports, never cancelled) and
 * reports through progress_report() with a short label ("synth", "features", "train"), the
 * units done so far and the total (0 when unknown). The callback returns non-zero to go
 * on and 0 to cancel; the operation then stops at its next safe point, cleans up what it
 * was writing and returns STATUS_CANCELLED. Calls come from the thread that started the
 * operation, never from its worker threads.
 *
 * The UI builds its Ctrl-C and `stop` on this: its callback returns 0 once a cancel flag
 * is set, wherever the work is.
 */
#ifndef BASIN_CORE_PROGRESS_H
#define BASIN_CORE_PROGRESS_H

/* Returns non-zero to go on, 0 to cancel. done <= total when total > 0. */
typedef int (*progress_fn)(void *user, const char *label, long done, long total);

struct progress {
    progress_fn fn;
    void *user;
};

/* Report to p (NULL or p->fn NULL: nothing, go on). Returns 0 when cancelled. */
static inline int progress_report(const struct progress *p, const char *label, long done,
                                  long total)
{
    return !p || !p->fn || p->fn(p->user, label, done, total);
}

#endif
