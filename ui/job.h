/* job.h: long work on a worker thread (DESIGN.md section 7, "Jobs").
 *
 * A job runs a work function on its own thread with its own thread count (pinned there
 * with threads_pin, so `set threads=` meanwhile does not touch it), reports progress and
 * is cancelled through the struct progress it hands the work (progress.h), and finishes
 * with a done function that the UI thread runs (job_reap) to take the results: replace a
 * model, print a summary, free what the work used. A job holds what it works on: while it
 * runs, the app refuses commands that would replace or change that object.
 *
 * The worker never touches the terminal; what it prints goes through the app's output
 * stream, which is thread-safe (a log pane, or stdout headless). After every progress
 * report (at most ~30 times a second) and when the work ends, the job calls wake(), so the
 * UI thread's poll() returns and it redraws.
 */
#ifndef BASIN_UI_JOB_H
#define BASIN_UI_JOB_H

#include <pthread.h>

#include "basin/core/progress.h"

enum job_state { JOB_RUNNING, JOB_DONE, JOB_FAILED, JOB_CANCELLED };

struct job;
/* The work, on the job's thread: returns 0 or a status (its detail message is kept). */
typedef int (*job_work_fn)(struct job *j, void *arg);
/* On the UI thread after the work ended (state says how); frees arg. */
typedef void (*job_done_fn)(struct job *j, void *arg, int status);

struct job_desc {
    const char *name;        /* what it is: the command line */
    int threads;             /* numeric threads for the work (0: the setting now) */
    job_work_fn work;
    job_done_fn done;
    void *arg;
    const void *holds;       /* the object it works on (the model), or NULL */
};

/* A snapshot of a job for the status line and `jobs`. */
struct job_info {
    int id;
    char name[128];
    enum job_state state;
    char label[32];          /* the last progress label ("train", "features") */
    long done, total;        /* its units */
    double elapsed_s;
    double rate;             /* units a second over the last few seconds */
    double eta_s;            /* -1 when unknown */
    char message[256];       /* the failure's detail, or the work's last status line */
};

/* Start d's work on a new thread. wake(user) is called from the worker (may be NULL).
 * 0, or STATUS_NOMEM / STATUS_DEVICE (no thread). */
int job_start(struct job **out, int id, const struct job_desc *d, void (*wake)(void *user),
              void *user);
/* The progress the work reports to (cancels once job_cancel was called). */
const struct progress *job_progress(struct job *j);
/* Set the line the status bar shows for the job (the work's own summary of where it is,
 * "epoch 3/10  loss 1.234  acc 56 %"); thread-safe. */
void job_set_message(struct job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ask the work to stop at its next safe point. */
void job_cancel(struct job *j);
int job_cancelled(const struct job *j);
void job_info(struct job *j, struct job_info *out);
/* 1 while the work runs. */
int job_running(struct job *j);
const void *job_holds(const struct job *j);
/* Wait for the work to end, then run its done function on this thread (once). Returns the
 * work's status. */
int job_reap(struct job *j);
/* 1 when the work ended and job_reap has not run yet. */
int job_reapable(struct job *j);
void job_destroy(struct job *j);   /* after job_reap; NULL is a no-op */

#endif
