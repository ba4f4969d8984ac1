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
#include "basin/dsp/frontend.h"

struct model;
struct dataset;

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
};

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
/* The path of a file shipped in assets/ (the default model, demo clips): $BASIN_ASSETS,
 * else assets/ beside the binary or two levels up (build/<kind>/basin in the source tree),
 * else ../share/basin/assets. 0, or STATUS_NOT_FOUND naming the places tried. */
int app_asset_path(const char *name, char *buf, size_t n);
/* Make sure the session has a model for `cmd`: when it has none, load the default model
 * (assets/default-model.safetensors) and say so. 0, or the error (printed). */
int app_need_model(struct app *a, const char *cmd);
#define APP_DEFAULT_MODEL "default-model.safetensors"

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
