/* app.c: the command dispatcher: tokenising, running, reporting (see app.h).
 *
 * Tokens are separated by blanks; single or double quotes keep blanks inside a token
 * ("load 'my model.safetensors'"); a backslash escapes the next character. An unquoted '#'
 * at the start of a token starts a comment that runs to the end of the line, as in sh. An
 * unquoted '~' starting a token, or a value after "key=", followed by '/' or nothing is
 * the home folder ($HOME), so "clip ~/rec/park.flac" and "synth out=~/sets/a" work.
 * "${NAME:-default}" (outside single quotes) is an environment variable, or the default;
 * an unquoted word that comes out empty ("${QUICK:-}") is no word at all, as in sh. A
 * path "assets/NAME" that the current folder lacks is the file shipped with basin.
 */
#include "app.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/data/dataset.h"
#include "basin/data/synth.h"
#include "basin/model/model.h"
#include "basin/train/eval.h"
#include "job.h"
#include "render.h"
#include "views.h"
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
    if (env && *env) { /* when set, the only place */
        snprintf(buf, n, "%s/%s", env, name);
        if (access(buf, R_OK) == 0) return STATUS_OK;
        return status_set(STATUS_NOT_FOUND, "%s is not in %s (BASIN_ASSETS)", name, env);
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

int app_need_dataset(struct app *a, const char *cmd)
{
    if (a->ds) return STATUS_OK;
    struct synth_params p;
    synth_params_default(&p);
    char where[SYNTH_PATH_MAX], size[32];
    int s = synth_cache_dir(&p, where, sizeof where);
    if (!s && !synth_present(&p, where)) {
        fmt_bytes(size, sizeof size, (double)synth_bytes(&p));
        app_out(a, "generating the default data set (%ld clips, about %s) in %s\n", synth_clip_count(&p), size, where);
    }
    if (!s) s = synth_ensure_default(where, sizeof where, &a->progress);
    struct dataset *ds = NULL;
    const struct dataset_opts o = {.split_seed = a->seed};
    if (!s) s = dataset_open(&ds, where, &o);
    if (s) return app_fail_in(a, s, cmd);
    a->ds = ds;
    snprintf(a->ds_path, sizeof a->ds_path, "%s", where);
    app_out(a, "%s: no data set was open: using the default one (%s)\n", cmd, where);
    return STATUS_OK;
}

int app_fail_in(struct app *a, int status, const char *cmd)
{
    const char *d = status_detail();
    size_t n = strlen(cmd);
    if (!strncmp(d, cmd, n) && d[n] == ':') return app_fail(a, status, "%s", d);
    return app_fail(a, status, "%s: %s", cmd, d);
}

void app_result_add(struct app *a, const char *path)
{
    if (!path || !*path || strlen(path) >= sizeof a->results[0]) return;
    int k = 0;
    while (k < a->n_results && strcmp(a->results[k], path)) k++;
    if (k == a->n_results && a->n_results == APP_RESULTS_MAX) k = 0;   /* the oldest goes */
    if (k < a->n_results) {
        memmove(a->results[k], a->results[k + 1], sizeof a->results[0] * (size_t)(a->n_results - k - 1));
        a->n_results--;
    }
    snprintf(a->results[a->n_results++], sizeof a->results[0], "%s", path);
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
    a->next_job_id = 1;
    a->start_threads = threads_get();
    a->curves = calloc(1, sizeof *a->curves);
    if (a->curves) curves_init(a->curves);
}

void app_free_names(char **names)
{
    for (int i = 0; names && names[i]; i++) free(names[i]);
    free(names);
}

/* Names of the data set's classes or devices, NULL-terminated (for the views). */
static char **names_of(const struct dataset *ds, int classes)
{
    int n = classes ? dataset_n_classes(ds) : dataset_n_devices(ds);
    char **v = calloc((size_t)n + 1, sizeof *v);
    for (int i = 0; v && i < n; i++) v[i] = strdup(classes ? dataset_class_name(ds, i) : dataset_device_name(ds, i));
    return v;
}

void app_set_eval(struct app *a, struct eval_result *r, const char *title)
{
    struct app_views *v = &a->views;
    eval_result_destroy(v->eval);
    app_free_names(v->eval_labels);
    app_free_names(v->eval_devices);
    v->eval = r;
    v->eval_labels = names_of(a->ds, 1);
    v->eval_devices = names_of(a->ds, 0);
    snprintf(v->eval_title, sizeof v->eval_title, "%s", title);
    app_views_changed(a);
}

void app_keep_eval(struct app *a, struct eval_result *r, const struct model *m, int split)
{
    char title[300];
    snprintf(title, sizeof title, "%s on the %s split: %.1f %% (macro %.1f %%), log loss %.3f", arch_name(m->cfg.arch),
             split == DATASET_SPLIT_ANY ? "whole" : dataset_split_name((enum dataset_split)split), 100 * r->all.acc,
             100 * r->acc_macro, r->all.logloss);
    app_set_eval(a, r, title);
    a->views.current = VIEW_DEVICES;
}

void app_fini(struct app *a)
{
    if (a->job) {
        job_cancel(a->job);
        app_wait_job(a);
    }
    eval_result_destroy(a->views.eval);
    app_free_names(a->views.eval_labels);
    app_free_names(a->views.eval_devices);
    free(a->views.probs);
    app_free_names(a->views.probs_labels);
    free(a->views.spec);
    for (size_t k = 0; k < sizeof a->views.slots / sizeof a->views.slots[0]; k++)
        if (a->views.slots[k].release && a->views.slots[k].data) a->views.slots[k].release(a->views.slots[k].data);
    if (a->curves) curves_fini(a->curves);
    free(a->curves);
    strbuf_fini(&a->log);
    model_destroy(a->model);
    a->model = NULL;
    audio_file_fini(&a->clip);
    dataset_destroy(a->ds);
    a->ds = NULL;
}

/* ---- jobs ------------------------------------------------------------------------------ */

/* Output may come from a job's thread while the UI thread draws the live line of a
 * foreground job on the terminal: one lock orders them, and a line of output first clears
 * the live line. */
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static int live_drawn;


void app_views_changed(struct app *a)
{
    __atomic_add_fetch(&a->views.changes, 1, __ATOMIC_RELAXED);
    if (a->wake) a->wake(a->wake_user);
}

static void fmt_duration(char *buf, size_t n, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

/* Headless waiting: a live line on a terminal from the job's progress, Ctrl-C cancels. */
static void wait_headless(struct app *a)
{
    int tty = isatty(fileno(a->err)), drawn = 0;
    while (job_running(a->job)) {
        if (interrupted && !job_cancelled(a->job)) job_cancel(a->job);
        if (tty) {
            struct job_info ji;
            job_info(a->job, &ji);
            char line[400], eta[32] = "";
            if (ji.eta_s >= 0) fmt_duration(eta, sizeof eta, ji.eta_s);
            if (ji.message[0])
                snprintf(line, sizeof line, "%s%s%s", ji.message, eta[0] ? "  ETA " : "", eta);
            else if (ji.total > 0)
                snprintf(line, sizeof line, "%s %3d%% (%ld/%ld)%s%s", ji.label, (int)(100.0 * ji.done / ji.total),
                         ji.done, ji.total, eta[0] ? "  ETA " : "", eta);
            else
                snprintf(line, sizeof line, "%s", ji.label);
            if (line[0]) {
                fflush(a->out);
                pthread_mutex_lock(&out_lock);
                fprintf(a->err, "\r%s\x1b[K", line);
                fflush(a->err);
                live_drawn = drawn = 1;
                pthread_mutex_unlock(&out_lock);
            }
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (drawn) {
        pthread_mutex_lock(&out_lock);
        if (live_drawn) fprintf(a->err, "\r\x1b[K");
        fflush(a->err);
        live_drawn = 0;
        pthread_mutex_unlock(&out_lock);
    }
}

int app_reap_job(struct app *a)
{
    if (!a->job || !job_reapable(a->job)) return 0;
    struct job_info ji;
    job_info(a->job, &ji);
    const char *saved = a->cmd;
    /* the done step reports as its command (the job's first word) */
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)(strcspn(ji.name, " ") < 31 ? strcspn(ji.name, " ") : 31), ji.name);
    a->cmd = name;
    long fails = a->n_fails;
    int s = job_reap(a->job);
    /* a done step that reported an error (a CSV it could not write) failed the job */
    if (!s && a->n_fails != fails) s = STATUS_INVALID;
    a->job_status = s;
    a->cmd = saved;
    if (s && a->job_background) a->n_errors++; /* a foreground job's command counts it */
    char took[32];
    fmt_duration(took, sizeof took, ji.elapsed_s);
    int k = a->n_done_jobs < 8 ? a->n_done_jobs++ : 7;
    if (k == 7 && a->n_done_jobs == 8) memmove(a->done_jobs[0], a->done_jobs[1], sizeof a->done_jobs[0] * 7);
    snprintf(a->done_jobs[k], sizeof a->done_jobs[k], "%3d  %-9s %-7s  %.120s", ji.id,
             s == STATUS_CANCELLED ? "cancelled" : s ? "failed" : "done", took, ji.name);
    job_destroy(a->job);
    a->job = NULL;
    a->holds = 0;
    app_views_changed(a);
    return 1;
}

int app_wait_job(struct app *a)
{
    if (!a->job) return STATUS_OK;
    if (a->wait_job) a->wait_job(a);
    else wait_headless(a);
    int s = STATUS_OK;
    if (a->job && job_reapable(a->job)) {
        struct job_info ji;
        job_info(a->job, &ji);
        s = ji.state == JOB_DONE ? STATUS_OK : ji.state == JOB_CANCELLED ? STATUS_CANCELLED : STATUS_INVALID;
        app_reap_job(a);
        /* a job whose work succeeded but whose done step failed (a CSV it could not write)
         * failed as a command too: not logged for the session */
        if (!s && a->job_status) s = a->job_status;
    }
    return s;
}

int app_run_job(struct app *a, struct job_desc *d, unsigned holds)
{
    if (a->job && app_reap_job(a) == 0 && a->job) {
        struct job_info ji;
        job_info(a->job, &ji);
        return app_fail(a, STATUS_INVALID, "job %d (%s) is running: wait for it, or stop it", ji.id, ji.name);
    }
    struct job *j;
    int s = job_start(&j, a->next_job_id, d, a->wake, a->wake_user);
    if (s) {
        if (d->done) d->done(NULL, d->arg, s);
        return app_fail(a, s, "%s", status_detail());
    }
    a->next_job_id++;
    a->job = j;
    a->holds = holds;
    a->job_background = a->background;
    if (a->background) {
        app_out(a, "job %d: %s (jobs lists it, stop cancels it)\n", a->next_job_id - 1, d->name);
        return STATUS_OK;
    }
    return app_wait_job(a);
}

int app_check_job(struct app *a, const char *cmd, unsigned flags)
{
    if (!a->job) return STATUS_OK;
    if (app_reap_job(a)) return STATUS_OK;
    unsigned h = a->holds;
    const char *why = NULL;
    if ((flags & CMD_CHANGES_MODEL) && (h & (APP_HOLD_MODEL_READ | APP_HOLD_MODEL_WRITE))) why = "uses the model";
    else if ((flags & CMD_READS_WEIGHTS) && (h & APP_HOLD_MODEL_WRITE)) why = "is changing the model's weights";
    else if ((flags & CMD_CHANGES_DATA) && (h & APP_HOLD_DATA)) why = "uses the data set";
    if (!why) return STATUS_OK;
    struct job_info ji;
    job_info(a->job, &ji);
    return app_fail(a, STATUS_INVALID, "%s: job %d (%s) %s: wait for it, or stop it", cmd, ji.id, ji.name, why);
}

void app_out(struct app *a, const char *fmt, ...)
{
    pthread_mutex_lock(&out_lock);
    if (live_drawn) {
        fputs("\r\x1b[K", a->err);
        fflush(a->err);
        live_drawn = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(a->out, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&out_lock);
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
    a->n_fails++;
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

/* "${NAME}" or "${NAME:-default}" (p just past the '$'): the environment variable's value,
 * or the default when it is unset or empty, appended at buf + *k; p moves past the '}'. 0,
 * or -1 with *why set. Lessons use it for their reduced CI form (${EPOCHS:-30}). */
static int put_variable(const char **p, char *buf, size_t n_buf, size_t *k, const char **why)
{
    const char *q = *p + 1, *end = strchr(q, '}');
    if (!end) return *why = "unterminated ${", -1;
    char name[64];
    size_t n = strcspn(q, ":}");
    if (n == 0 || n >= sizeof name) return *why = "bad ${NAME}", -1;
    memcpy(name, q, n);
    name[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (!(name[i] == '_' || (name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= 'a' && name[i] <= 'z') ||
              (i && name[i] >= '0' && name[i] <= '9')))
            return *why = "bad ${NAME}", -1;
    const char *v = getenv(name), *def = NULL;
    size_t def_n = 0;
    if (q[n] == ':') {
        if (q[n + 1] != '-') return *why = "only ${NAME} and ${NAME:-default} are understood", -1;
        def = q + n + 2;
        def_n = (size_t)(end - def);
    }
    if (!v || !*v) v = NULL;
    size_t len = v ? strlen(v) : def_n;
    if (!v && !def) return *why = "an unset variable in ${NAME} (give a default: ${NAME:-value})", -1;
    if (*k + len + 1 >= n_buf) return *why = "line too long", -1;
    memcpy(buf + *k, v ? v : def, len);
    *k += len;
    *p = end + 1;
    return 0;
}

/* A word (or the value of a key=value word other than out=) "assets/NAME" names the file
 * shipped with basin (app_asset_path) when the current folder has no such file, so the
 * README's session and the lessons work from any folder. The word is buf[start..*k). */
static int put_shipped_asset(char *buf, size_t n_buf, size_t start, size_t *k)
{
    char *w = buf + start, *v = w, *eq = strchr(w, '=');
    if (eq && eq != w && strspn(w, "abcdefghijklmnopqrstuvwxyz_-") == (size_t)(eq - w)) {
        if (eq - w == 3 && !strncmp(w, "out", 3)) return 0;
        v = eq + 1;
    }
    char shipped[4096];
    if (strncmp(v, "assets/", 7) || !v[7] || access(v, F_OK) == 0) return 0;
    if (app_asset_path(v + 7, shipped, sizeof shipped)) {
        status_clear();
        return 0;
    }
    size_t at = (size_t)(v - buf), len = strlen(shipped);
    if (at + len + 1 >= n_buf) return -1;
    memcpy(buf + at, shipped, len + 1);
    *k = at + len;
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
        const size_t start = k;
        char quote = 0;
        int quoted = 0;                /* a quote in the word: an empty word stays a word */
        int at_value = 1, seen_eq = 0; /* where a '~' may stand for the home folder */
        while (*p && (quote || (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n'))) {
            char ch = *p++;
            if (quote && ch == quote) {
                quote = 0;
                continue;
            }
            if (!quote && (ch == '"' || ch == '\'')) {
                quote = ch;
                quoted = 1;
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
            if (quote != '\'' && ch == '$' && *p == '{') {
                int e = put_variable(&p, buf, n_buf, &k, why);
                if (e) return -1;
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
        if (k == start && !quoted) {   /* only ${NAME:-} that came out empty: no word, as in sh */
            argc--;
            continue;
        }
        buf[k] = 0;
        if (put_shipped_asset(buf, n_buf, start, &k)) {
            *why = "line too long";
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

/* Keep a successful command for a session's commands.log: the line as typed without its
 * comment; a training run's out= is left out, so a replay trains into a folder of its own. */
static void log_line(struct app *a, const struct command *c, const char *line)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", line);
    copy[strcspn(copy, "\r\n")] = 0;
    /* a '#' starting a word (outside quotes) begins the comment */
    char quote = 0;
    for (char *p = copy; *p; p++) {
        if (quote) {
            if (*p == quote) quote = 0;
        } else if (*p == '"' || *p == '\'') {
            quote = *p;
        } else if (*p == '#' && (p == copy || p[-1] == ' ' || p[-1] == '\t')) {
            *p = 0;
            break;
        }
    }
    size_t n = strlen(copy);
    while (n && (copy[n - 1] == ' ' || copy[n - 1] == '\t')) copy[--n] = 0;
    if (!strcmp(c->name, "train")) {
        char *o = strstr(copy, " out=");
        if (o) {
            size_t k = strcspn(o + 1, " \t");
            memmove(o, o + 1 + k, strlen(o + 1 + k) + 1);
        }
    }
    if (!strcmp(c->name, "data") && strncmp(copy + strspn(copy, " \t") + 4, " export", 7))
        snprintf(a->data_line, sizeof a->data_line, "%s", copy + strspn(copy, " \t"));
    strbuf_printf(&a->log, "%s\n", copy + strspn(copy, " \t"));
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
        /* a last word "&" runs the command's job in the background */
        int background = argc > 1 && !strcmp(argv[argc - 1], "&");
        if (background) argv[--argc] = NULL;
        if (!c) {
            status = app_fail(a, STATUS_INVALID, "unknown command '%s' (try: help)", argv[0]);
        } else if ((a->cmd = c->name), (rep = repeated_key(argc, argv, &n))) {
            status = app_fail(a, STATUS_INVALID, "%.*s= is given twice", (int)n, rep);
        } else if (app_check_job(a, c->name, c->flags)) {
            status = STATUS_INVALID;
        } else {
            status_clear();
            interrupted = 0;
            int saved = a->background;
            a->background |= background;
            status = c->run(a, argc, argv);
            a->background = saved;
            if (!status && !(c->flags & CMD_NOT_LOGGED)) log_line(a, c, line);
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
    if (a->job) { /* the script ends: its last job is waited for */
        int before = a->n_errors;
        app_wait_job(a);
        failed += a->n_errors > before;
    }
    a->script = NULL;
    free(line);
    return failed;
}
