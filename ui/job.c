/* job.c: a worker thread with progress, cancellation and a done step (see job.h). */
#include "job.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basin/core/status.h"
#include "basin/core/threads.h"

struct job {
    int id;
    struct job_desc d;
    char name[128];
    pthread_t thread;
    struct progress progress;
    void (*wake)(void *user);
    void *user;
    atomic_int cancel;
    atomic_int finished;        /* the work returned */
    int reaped;
    int status;
    char detail[1024];          /* the work's status detail, copied on its thread */

    pthread_mutex_t lock;       /* guards what follows */
    char label[32];
    long done, total;
    double t0, t_wake;
    double rate_t, rate_done;   /* the window the rate is measured over */
    double rate;
    char message[256];
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int on_progress(void *user, const char *label, long done, long total)
{
    struct job *j = user;
    double t = now();
    int wake = 0;
    pthread_mutex_lock(&j->lock);
    if (strcmp(j->label, label)) {
        snprintf(j->label, sizeof j->label, "%s", label);
        j->rate_t = t, j->rate_done = (double)done, j->rate = 0;
    } else if (t - j->rate_t >= 1.0) {
        double r = (done - j->rate_done) / (t - j->rate_t);
        j->rate = j->rate > 0 ? 0.5 * j->rate + 0.5 * r : r;
        j->rate_t = t, j->rate_done = (double)done;
    }
    j->done = done, j->total = total;
    if (t - j->t_wake >= 1.0 / 30) {
        j->t_wake = t;
        wake = 1;
    }
    pthread_mutex_unlock(&j->lock);
    if (wake && j->wake) j->wake(j->user);
    return !atomic_load(&j->cancel);
}

static void *run(void *arg)
{
    struct job *j = arg;
    if (j->d.threads > 0) threads_pin(j->d.threads);
    status_clear();
    j->status = j->d.work(j, j->d.arg);
    snprintf(j->detail, sizeof j->detail, "%s", j->status ? status_detail() : "");
    atomic_store(&j->finished, 1);
    if (j->wake) j->wake(j->user);
    return NULL;
}

int job_start(struct job **out, int id, const struct job_desc *d, void (*wake)(void *user),
              void *user)
{
    *out = NULL;
    struct job *j = calloc(1, sizeof *j);
    if (!j) return status_set(STATUS_NOMEM, "out of memory starting a job");
    j->id = id;
    j->d = *d;
    snprintf(j->name, sizeof j->name, "%s", d->name ? d->name : "job");
    j->d.name = j->name;
    if (j->d.threads <= 0) j->d.threads = threads_get();
    j->progress = (struct progress){on_progress, j};
    j->wake = wake, j->user = user;
    pthread_mutex_init(&j->lock, NULL);
    j->t0 = now();
    if (pthread_create(&j->thread, NULL, run, j) != 0) {
        pthread_mutex_destroy(&j->lock);
        free(j);
        return status_set(STATUS_DEVICE, "cannot start a thread for the job");
    }
    *out = j;
    return STATUS_OK;
}

const struct progress *job_progress(struct job *j)
{
    return &j->progress;
}

void job_set_message(struct job *j, const char *fmt, ...)
{
    pthread_mutex_lock(&j->lock);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->message, sizeof j->message, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&j->lock);
}

void job_cancel(struct job *j)
{
    atomic_store(&j->cancel, 1);
}

int job_cancelled(const struct job *j)
{
    return atomic_load(&((struct job *)j)->cancel);
}

int job_running(struct job *j)
{
    return !atomic_load(&j->finished);
}

const void *job_holds(const struct job *j)
{
    return j->d.holds;
}

void job_info(struct job *j, struct job_info *out)
{
    memset(out, 0, sizeof *out);
    out->id = j->id;
    snprintf(out->name, sizeof out->name, "%s", j->name);
    int finished = atomic_load(&j->finished);
    out->state = !finished ? JOB_RUNNING
                 : j->status == STATUS_CANCELLED ? JOB_CANCELLED
                 : j->status ? JOB_FAILED : JOB_DONE;
    pthread_mutex_lock(&j->lock);
    snprintf(out->label, sizeof out->label, "%s", j->label);
    out->done = j->done, out->total = j->total;
    out->elapsed_s = now() - j->t0;
    out->rate = j->rate;
    out->eta_s = j->rate > 0 && j->total > 0 ? (j->total - j->done) / j->rate : -1;
    const char *msg = finished && j->status ? j->detail : j->message;
    size_t n = strnlen(msg, sizeof out->message - 1);
    memcpy(out->message, msg, n);
    out->message[n] = 0;
    pthread_mutex_unlock(&j->lock);
}

int job_reapable(struct job *j)
{
    return atomic_load(&j->finished) && !j->reaped;
}

int job_reap(struct job *j)
{
    if (j->reaped) return j->status;
    pthread_join(j->thread, NULL);
    j->reaped = 1;
    /* the done step reports with the work's detail in place */
    if (j->status) status_set(j->status, "%s", j->detail);
    if (j->d.done) j->d.done(j, j->d.arg, j->status);
    return j->status;
}

void job_destroy(struct job *j)
{
    if (!j) return;
    if (!j->reaped) job_reap(j);
    pthread_mutex_destroy(&j->lock);
    free(j);
}
