/* app.c: the command dispatcher: tokenising, running, reporting (see app.h).
 *
 * Tokens are separated by blanks; single or double quotes keep blanks inside a token
 * ("load 'my model.safetensors'"); a backslash escapes the next character. An unquoted '#'
 * at the start of a token starts a comment that runs to the end of the line, as in sh. An
 * unquoted '~' starting a token, or a value after "key=", followed by '/' or nothing is
 * the home folder ($HOME), so "clip ~/rec/park.flac" and "synth out=~/sets/a" work.
 */
#include "app.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
        /* redraw when the percentage moves or the label changes, at most 20 times a second */
        int pct = total > 0 ? (int)(100.0 * (done < 0 ? 0 : done > total ? total : done) / total) : -1;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double t = now.tv_sec + now.tv_nsec * 1e-9;
        int last = total > 0 && done >= total;
        if (last || strcmp(label, a->progress_label) || (pct != a->progress_pct && t - a->progress_t >= 0.05)) {
            if (total > 0)
                fprintf(a->err, "\r%s %3d%% (%ld/%ld)\x1b[K%s", label, pct, done, total, last ? "\r\x1b[K" : "");
            else
                fprintf(a->err, "\r%s %ld\x1b[K", label, done);
            fflush(a->err);
            snprintf(a->progress_label, sizeof a->progress_label, "%s", label);
            a->progress_pct = pct;
            a->progress_t = t;
        }
    }
    return !interrupted;
}

int app_asset_path(const char *name, char *buf, size_t n)
{
    char exe[4096], tried[1024] = "";
    const char *env = getenv("BASIN_ASSETS");
    if (env && *env) {
        snprintf(buf, n, "%s/%s", env, name);
        if (access(buf, R_OK) == 0) return STATUS_OK;
        snprintf(tried, sizeof tried, "%s, ", env);
    }
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        static const char *const rel[] = {"assets", "../../assets", "../share/basin/assets"};
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            char p[4400], real[4096];
            snprintf(p, sizeof p, "%s/%s/%s", exe, rel[i], name);
            if (access(p, R_OK) != 0) continue;
            snprintf(buf, n, "%s", realpath(p, real) ? real : p);
            return STATUS_OK;
        }
        size_t t = strlen(tried);
        snprintf(tried + t, sizeof tried - t, "%.900s/{assets,../../assets,../share/basin/assets}", exe);
    }
    return status_set(STATUS_NOT_FOUND, "%s is not in %s (make assets makes it)", name, tried);
}

int app_need_model(struct app *a, const char *cmd)
{
    if (a->model) return STATUS_OK;
    char path[4300];
    int s = app_asset_path(APP_DEFAULT_MODEL, path, sizeof path);
    struct model *m = NULL;
    if (!s) s = model_load(&m, path);
    if (s)
        return app_fail(a, STATUS_INVALID, "%s: no model (new or load one first; the default model: %s)", cmd,
                        status_detail());
    a->model = m;
    snprintf(a->model_name, sizeof a->model_name, "%.255s", path);
    app_out(a, "(no model: using the default model %s)\n", path);
    return STATUS_OK;
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
    /* Every error names its command once: "error: spec: ...". */
    const char *cmd = a->cmd;
    size_t n = cmd ? strlen(cmd) : 0;
    int named = !cmd || (!strncmp(msg, cmd, n) && (msg[n] == ':' || msg[n] == ' '));
    char where[300] = "";
    if (a->script) snprintf(where, sizeof where, "%s:%ld: ", a->script, a->line_no);
    fflush(a->out);
    fprintf(a->err, "%serror: %s%s%s\n", where, named ? "" : cmd, named ? "" : ": ", msg);
    fflush(a->err);
    return status ? status : STATUS_INVALID;
}

/* Append the home folder at buf + *k. 0, or -1 when it does not fit or HOME is unset. */
static int put_home(char *buf, size_t n_buf, size_t *k)
{
    const char *home = getenv("HOME");
    if (!home || !*home) return -1;
    size_t len = strlen(home);
    if (*k + len + 1 >= n_buf) return -1;
    memcpy(buf + *k, home, len);
    *k += len;
    return 0;
}

/* Split line into argv (pointers into buf). Returns argc, or -1 with *why set. */
static int tokenize(const char *line, char *buf, size_t n_buf, char **argv, const char **why)
{
    int argc = 0;
    size_t k = 0;
    const char *p = line;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (!*p || *p == '#') break;
        if (argc == MAX_ARGS) {
            *why = "too many arguments";
            return -1;
        }
        argv[argc++] = buf + k;
        char quote = 0;
        int at_value = 1, seen_eq = 0; /* where a '~' may stand for the home folder */
        while (*p && (quote || (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n'))) {
            char ch = *p++;
            if (quote && ch == quote) {
                quote = 0;
                continue;
            }
            if (!quote && (ch == '"' || ch == '\'')) {
                quote = ch;
                at_value = 0;
                continue;
            }
            if (!quote && at_value && ch == '~' && (*p == '/' || !*p || *p == ' ' || *p == '\t' ||
                                                    *p == '\r' || *p == '\n')) {
                if (put_home(buf, n_buf, &k)) {
                    *why = "cannot expand '~': HOME is not set";
                    return -1;
                }
                at_value = 0;
                continue;
            }
            at_value = !quote && ch == '=' && !seen_eq;
            seen_eq |= ch == '=';
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

/* The first key given twice among argv[1..argc) ("width" in "width=32 width=64"), or
 * NULL. Keys are compared up to their '='. */
static const char *repeated_key(int argc, char **argv, size_t *len)
{
    for (int i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i]) continue;
        size_t n = (size_t)(eq - argv[i]);
        for (int j = 1; j < i; j++)
            if (!strncmp(argv[j], argv[i], n + 1)) {
                *len = n;
                return argv[i];
            }
    }
    return NULL;
}

int app_run_line(struct app *a, const char *line)
{
    char buf[4096];
    char *argv[MAX_ARGS + 1];
    const char *why = NULL;
    int argc = tokenize(line, buf, sizeof buf, argv, &why);
    int status;
    a->cmd = NULL;
    if (argc < 0) {
        status = app_fail(a, STATUS_INVALID, "%s", why);
    } else if (argc == 0) {
        return STATUS_OK;
    } else {
        argv[argc] = NULL;
        const struct command *c = command_find(argv[0]);
        size_t n;
        const char *rep;
        if (!c) {
            status = app_fail(a, STATUS_INVALID, "unknown command '%s' (try: help)", argv[0]);
        } else if ((a->cmd = c->name), (rep = repeated_key(argc, argv, &n))) {
            status = app_fail(a, STATUS_INVALID, "%.*s= is given twice", (int)n, rep);
        } else {
            status_clear();
            interrupted = 0;
            status = c->run(a, argc, argv);
        }
    }
    a->cmd = NULL;
    if (status) a->n_errors++;
    fflush(a->out);
    return status;
}

int app_run_stream(struct app *a, FILE *in, const char *name)
{
    char *line = NULL;
    size_t cap = 0;
    int failed = 0;
    a->script = name;
    a->line_no = 0;
    while (!a->quit && !interrupted && getline(&line, &cap, in) >= 0) {
        a->line_no++;
        if (app_run_line(a, line)) failed++;
    }
    a->script = NULL;
    free(line);
    return failed;
}
