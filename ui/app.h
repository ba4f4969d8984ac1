/* app.h: the workbench's state and the command dispatcher, shared by the headless runner,
 * the line REPL and (later) the split view.
 *
 * Every user action is a command line ("new cpresnet width=32"). app_run_line() parses it,
 * runs the command and reports a failure as one line on the error stream; the session
 * always goes on. Output goes through app_out() so a view can capture it.
 */
#ifndef BASIN_UI_APP_H
#define BASIN_UI_APP_H

#include <stdint.h>
#include <stdio.h>

#include "basin/audio/audio_file.h"
#include "basin/core/progress.h"
#include "basin/core/strbuf.h"
#include "basin/dsp/frontend.h"

struct model;
struct dataset;
struct canvas;
struct eval_result;
struct job;

/* What a running job holds: commands that would change it (or read what it changes) are
 * refused until it ends (commands.h, enum command_flags). */
enum app_hold {
    APP_HOLD_MODEL_READ = 1,    /* the job reads the model: it must not be replaced */
    APP_HOLD_MODEL_WRITE = 2,   /* the job changes the weights: no other use of them */
    APP_HOLD_DATA = 4,          /* the job reads the data set: it must not be replaced */
};

/* A view that a later command fills (erf, landscape, hessian, prune, listen): its drawing
 * function and data, set with app_view_set on the UI thread. Data a job updates while it
 * runs carries its own lock, which draw takes. */
struct app_view_slot {
    void (*draw)(struct canvas *c, void *data);
    void *data;                 /* owned: released with release(data) when replaced */
    void (*release)(void *data);
    /* `export VIEW PATH.png`: the figure as an image of w x h pixels (export.h), or NULL */
    int (*export_png)(const char *path, void *data, int w, int h);
};

/* What the views show (views.h), kept by the app and drawn on demand. */
struct app_views {
    int current;                /* enum view_kind shown in the split view */
    unsigned long changes;      /* bumped whenever something shown changed */
    float *spec;                /* the current clip's features (F, T), or NULL */
    int spec_mels, spec_frames;
    float spec_lo, spec_hi;
    char spec_unit[48], spec_title[300];
    struct frontend_params spec_fe;
    struct eval_result *eval;   /* the last evaluation, or NULL (owned) */
    char eval_title[300];
    char **eval_labels, **eval_devices;  /* its class and device names (owned) */
    float *probs;               /* the last prediction (owned), or NULL */
    int n_probs;
    char **probs_labels;
    char probs_title[300];
    struct app_view_slot slots[16];  /* by enum view_kind, for the views after probs */
};

/* At most this many result files are remembered for `session save`. */
#define APP_RESULTS_MAX 32

struct app {
    struct model *model;        /* the current model, or NULL */
    char model_name[256];       /* where it came from: a path or "new cpresnet" */
    uint64_t seed;              /* seed for the next random draw (new, ...) */
    int n_errors;               /* failed commands so far */
    int quit;                   /* set by quit */
    FILE *out, *err;            /* command output and one-line errors */
    struct frontend_params preset; /* the session's front end (demo by default) */
    int preset_chosen;          /* set by `preset NAME`: new models then take it */
    struct audio_file clip;     /* the last clip loaded by `clip` (empty when none) */
    char clip_path[1024];
    struct dataset *ds;         /* the data set opened by `data` (NULL when none) */
    char ds_path[4096];
    /* Long work reports here (a live line on a terminal) and is cancelled through it: the
     * callback returns 0 once app_interrupt() was called (Ctrl-C). Pass &a->progress. */
    struct progress progress;
    char progress_label[32];    /* the progress line last drawn: label, percent, time */
    int progress_pct;
    double progress_t;
    const char *cmd;            /* the running command's name (errors start with it) */
    const char *script;         /* the script being run ("stdin" for a pipe), else NULL */
    long line_no;               /* its line, for "FILE:LINE: error: ..." */

    /* Jobs: at most one runs at a time; the last few ended ones are kept for `jobs`. */
    struct job *job;            /* the running (or not yet reaped) job, or NULL */
    unsigned holds;             /* enum app_hold of the running job */
    int job_background;         /* 1: it was started in the background */
    int job_status;             /* the last reaped job's, failed when its done step reported
                                 * an error */
    long n_fails;               /* errors reported (app_fail), ever */
    int next_job_id;
    int workbench;              /* 1 in the split view (views are drawn, not printed) */
    int background;             /* 1: commands return when their job starts (the split
                                 * view, or a line ending in '&'); 0: they wait for it */
    void (*wake)(void *user);   /* how a job wakes the UI thread (the split view's pipe) */
    void *wake_user;
    /* How `wait` and a foreground job wait: headless, a loop drawing a progress line on a
     * terminal; the split view installs its own event loop here. NULL: the headless one. */
    void (*wait_job)(struct app *a);
    char done_jobs[8][200];     /* "1 train ... done in 0:12" of the last ended jobs */
    int n_done_jobs;

    struct app_views views;
    struct curves *curves;      /* training curves (views.h), filled by a training job */

    /* What a session (`session save`) needs to come back to this state: */
    struct strbuf log;          /* every successful command but the CMD_NOT_LOGGED ones, a line each */
    char data_line[1200];       /* the last `data` line that opened a data set ("" none) */
    char run_dir[2048];         /* the last training run's folder ("" none) */
    char results[APP_RESULTS_MAX][1024];   /* files the session's commands wrote (CSV,
                                 * directions, images), oldest first; app_result_add */
    int n_results;
    int start_threads;          /* the thread count the session started with */
    int interactive;            /* 1 at a prompt (plain or split view), 0 headless */
    char prefill[4096];         /* a line for the prompt to offer next (a lesson's step) */
};

/* Remember a file a command wrote (a CSV, saved directions, an image) so `session save`
 * keeps a copy: the same path again moves to the end; past APP_RESULTS_MAX the oldest goes. */
void app_result_add(struct app *a, const char *path);

void app_init(struct app *a);
void app_fini(struct app *a);

/* Parse and run one line. Blank lines and comments do nothing; a key given twice is
 * refused. Returns 0 on success, else the command's status after printing
 * "error: <command>: <detail>". */
int app_run_line(struct app *a, const char *line);

/* Run every line of a stream (a script or a pipe) named name; errors then read
 * "name:LINE: error: ...". Stops early on quit or Ctrl-C. Returns the number of failed
 * lines. */
int app_run_stream(struct app *a, FILE *in, const char *name);

void app_out(struct app *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The path of a file shipped in assets/ (the default model, demo clips): in $BASIN_ASSETS
 * when that is set (and nowhere else), else assets/ beside the binary or two levels up (build/<kind>/basin in the source tree),
 * else ../share/basin/assets. 0, or STATUS_NOT_FOUND naming the places tried. */
int app_asset_path(const char *name, char *buf, size_t n);
/* Make sure the session has a model for `cmd`: when it has none, load the default model
 * (assets/default-model.safetensors) and say so. 0, or the error (printed). */
int app_need_model(struct app *a, const char *cmd);
/* Make sure the session has a data set for `cmd`: when none is open, open the embedded
 * default one (generated on first use, said before) and say so. 0, or the error (printed). */
int app_need_dataset(struct app *a, const char *cmd);
/* Keep r (owned from now on) as the session's last evaluation, titled `title`: the
 * confusion and devices views show it (with the open data set's class and device names),
 * and `session save` keeps it. */
void app_set_eval(struct app *a, struct eval_result *r, const char *title);
/* Free a NULL-terminated array of names (the views' labels) and its strings; NULL is a no-op. */
void app_free_names(char **names);
/* app_set_eval of model m's evaluation of a split (enum dataset_split), titled with its
 * figures, and the devices view brought up. */
void app_keep_eval(struct app *a, struct eval_result *r, const struct model *m, int split);
/* "error: <cmd>: <detail of the last status>", without doubling a prefix the detail already
 * has. Returns status. */
int app_fail_in(struct app *a, int status, const char *cmd);
#define APP_DEFAULT_MODEL "default-model.safetensors"

/* Run d as a job (job.h) on behalf of the running command: in the foreground (the
 * default headless) wait for it through a->wait_job and return its status, after its done
 * step has run; in the background return 0 at once (its done step runs when the UI thread
 * reaps it; a failure then counts as a failed command). d->holds is ignored; `holds` says
 * what the job holds (enum app_hold). Refused (STATUS_INVALID, printed) while another job
 * runs. */
struct job_desc;
int app_run_job(struct app *a, struct job_desc *d, unsigned holds);
/* Reap the job if it has ended (its done step runs here, on the calling thread). Returns
 * 1 when one was reaped. */
int app_reap_job(struct app *a);
/* Wait for the running job to end (Ctrl-C cancels it), then reap it. Returns its status
 * (0 when there was none). */
int app_wait_job(struct app *a);
/* 0 when the running job (if any) allows a command with these flags (commands.h), else
 * prints why it is refused and returns STATUS_INVALID. */
int app_check_job(struct app *a, const char *cmd, unsigned flags);
/* The views changed (redraw them). */
void app_views_changed(struct app *a);
/* The current clip as the spectrogram view, through the session's front end (cmd_audio.c;
 * `clip` calls it). */
void app_clip_to_view(struct app *a);
/* Give view `kind` (enum view_kind) a drawing function and its data (replacing and
 * releasing what it had), and show it in the split view. UI thread only. */
void app_view_set(struct app *a, int kind, void (*draw)(struct canvas *c, void *data), void *data,
                  void (*release)(void *data));
/* Give view `kind` its PNG export (set after app_view_set; kept until the next set). */
void app_view_set_export(struct app *a, int kind, int (*export_png)(const char *path, void *data, int w, int h));
/* Draw view `kind` (enum view_kind) of the session into c (cmd_view.c). */
void app_draw_view(struct app *a, int kind, struct canvas *c);

/* After a line typed at the prompt has run: a running lesson offers its next step
 * (cmd_lesson.c). */
void app_lesson_after(struct app *a, const char *line);

/* Ask the running command to stop at its next safe point (async-signal-safe: the SIGINT
 * handler calls it). Cleared when the next command starts. */
void app_interrupt(void);
/* 1 when app_interrupt() was called since the current command started. */
int app_interrupted(void);

/* Report a failure of the running command on one line: "error: <command>: <msg>" (the
 * command's name is not repeated when msg starts with it), with "FILE:LINE: " in front in
 * a script. Returns status (STATUS_INVALID when status is 0). */
int app_fail(struct app *a, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
