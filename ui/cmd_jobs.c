/* cmd_jobs.c: jobs, stop and wait: the background work of the session. */
#include <string.h>

#include "app.h"
#include "basin/core/status.h"
#include "commands.h"
#include "job.h"

int cmd_jobs(struct app *a, int argc, char **argv)
{
    (void)argv;
    if (argc > 1) return app_fail(a, STATUS_INVALID, "jobs takes no arguments");
    app_reap_job(a);
    if (!a->job && !a->n_done_jobs) {
        app_out(a, "no jobs yet (train, resume and eval run as jobs)\n");
        return STATUS_OK;
    }
    app_out(a, " id  state     time     command\n");
    for (int i = 0; i < a->n_done_jobs; i++) app_out(a, "%s\n", a->done_jobs[i]);
    if (a->job) {
        struct job_info ji;
        job_info(a->job, &ji);
        long t = (long)(ji.elapsed_s + 0.5);
        app_out(a, "%3d  %-9s %ld:%02ld     %s", ji.id, job_cancelled(a->job) ? "stopping" : "running", t / 60,
                t % 60, ji.name);
        if (ji.total > 0) app_out(a, "  [%s %ld/%ld]", ji.label, ji.done, ji.total);
        if (ji.message[0]) app_out(a, "  %s", ji.message);
        app_out(a, "\n");
    }
    return STATUS_OK;
}

int cmd_stop(struct app *a, int argc, char **argv)
{
    (void)argv;
    if (argc > 1) return app_fail(a, STATUS_INVALID, "stop takes no arguments");
    if (!a->job || !job_running(a->job)) {
        app_reap_job(a);
        return app_fail(a, STATUS_INVALID, "no job is running");
    }
    struct job_info ji;
    job_info(a->job, &ji);
    job_cancel(a->job);
    app_out(a, "stopping job %d (%s) at its next safe point\n", ji.id, ji.name);
    return STATUS_OK;
}

int cmd_wait(struct app *a, int argc, char **argv)
{
    (void)argv;
    if (argc > 1) return app_fail(a, STATUS_INVALID, "wait takes no arguments");
    if (!a->job) return STATUS_OK;
    int background = a->job_background;
    int s = app_wait_job(a);
    /* a background job's failure was counted when it was reaped; say it here too */
    return background && s ? STATUS_OK : s;
}
