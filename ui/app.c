/* app.c: the command dispatcher: tokenising, running, reporting (see app.h).
 *
 * Tokens are separated by blanks; single or double quotes keep blanks inside a token
 * ("load 'my model.safetensors'"); a backslash escapes the next character. A line whose
 * first non-blank character is '#' is a comment.
 */
#include "app.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basin/core/status.h"
#include "basin/data/dataset.h"
#include "basin/model/model.h"
#include "commands.h"

#define MAX_ARGS 64

static volatile sig_atomic_t interrupted;

void app_interrupt(void)
{
    interrupted = 1;
}

int app_interrupted(void)
{
    return interrupted != 0;
}

/* The progress callback of every long command: a live "label 42% (done/total)" line on a
 * terminal's error stream, and 0 (cancel) after Ctrl-C. */
static int progress_line(void *user, const char *label, long done, long total)
{
    struct app *a = user;
    if (isatty(fileno(a->err))) {
        if (total > 0) {
            int pct = (int)(100.0 * (done < 0 ? 0 : done > total ? total : done) / total);
            fprintf(a->err, "\r%s %3d%% (%ld/%ld)\x1b[K%s", label, pct, done, total,
                    done >= total ? "\r\x1b[K" : "");
        } else {
            fprintf(a->err, "\r%s %ld\x1b[K", label, done);
        }
        fflush(a->err);
    }
    return !interrupted;
}

void app_init(struct app *a)
{
    memset(a, 0, sizeof *a);
    a->seed = 1;
    a->out = stdout;
    a->err = stderr;
    frontend_preset(&a->preset, FRONTEND_DEFAULT_PRESET);
    audio_file_init(&a->clip);
    a->progress = (struct progress){progress_line, a};
}

void app_fini(struct app *a)
{
    model_destroy(a->model);
    a->model = NULL;
    audio_file_fini(&a->clip);
    dataset_destroy(a->ds);
    a->ds = NULL;
}

void app_out(struct app *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(a->out, fmt, ap);
    va_end(ap);
}

int app_progress(struct app *a, const char *what, double fraction)
{
    if (!isatty(fileno(a->err))) return 1;
    int pct = (int)(100 * (fraction < 0 ? 0 : fraction > 1 ? 1 : fraction));
    fprintf(a->err, "\r%s %3d%%%s", what, pct, fraction >= 1 ? "\r\x1b[K" : "");
    fflush(a->err);
    return 1;
}

int app_fail(struct app *a, int status, const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* one line, whatever the message holds */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    fflush(a->out);
    fprintf(a->err, "error: %s\n", msg);
    fflush(a->err);
    return status ? status : STATUS_INVALID;
}

/* Split line into argv (pointers into buf). Returns argc, or -1 with *why set. */
static int tokenize(const char *line, char *buf, size_t n_buf, char **argv, const char **why)
{
    int argc = 0;
    size_t k = 0;
    const char *p = line;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (!*p) break;
        if (argc == MAX_ARGS) {
            *why = "too many arguments";
            return -1;
        }
        argv[argc++] = buf + k;
        char quote = 0;
        while (*p && (quote || (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n'))) {
            char ch = *p++;
            if (quote && ch == quote) {
                quote = 0;
                continue;
            }
            if (!quote && (ch == '"' || ch == '\'')) {
                quote = ch;
                continue;
            }
            if (ch == '\\' && *p) ch = *p++;
            if (k + 1 >= n_buf) {
                *why = "line too long";
                return -1;
            }
            buf[k++] = ch;
        }
        if (quote) {
            *why = "unterminated quote";
            return -1;
        }
        buf[k++] = 0;
    }
    return argc;
}

int app_run_line(struct app *a, const char *line)
{
    const char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (!*p || *p == '#' || *p == '\n' || *p == '\r') return STATUS_OK;
    char buf[4096];
    char *argv[MAX_ARGS + 1];
    const char *why = NULL;
    int argc = tokenize(p, buf, sizeof buf, argv, &why);
    int status;
    if (argc < 0) {
        status = app_fail(a, STATUS_INVALID, "%s", why);
    } else if (argc == 0) {
        return STATUS_OK;
    } else {
        argv[argc] = NULL;
        const struct command *c = command_find(argv[0]);
        if (!c) {
            status = app_fail(a, STATUS_INVALID, "unknown command '%s' (try: help)", argv[0]);
        } else {
            status_clear();
            interrupted = 0;
            status = c->run(a, argc, argv);
        }
    }
    if (status) a->n_errors++;
    fflush(a->out);
    return status;
}

int app_run_stream(struct app *a, FILE *in)
{
    char *line = NULL;
    size_t cap = 0;
    int failed = 0;
    while (!a->quit && getline(&line, &cap, in) >= 0)
        if (app_run_line(a, line)) failed++;
    free(line);
    return failed;
}
