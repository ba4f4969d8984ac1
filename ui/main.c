/* main.c: basin's entry point.
 *
 *   basin                  on a terminal: the split view (a view pane, a status line, the
 *                          log and the prompt); a plain prompt where the terminal cannot
 *                          host it (TERM=dumb, unknown) or with --line
 *   basin --script FILE    run FILE's commands, then exit; status 1 if any failed
 *   cmds | basin           the same for standard input when it is not a terminal
 *
 * One thread owns the terminal: it sleeps in poll() on standard input and a wake-up pipe;
 * signal handlers and jobs only set flags and write a byte to the pipe (DESIGN.md
 * section 7, "Threads and events").
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "app.h"
#include "basin/core/fs.h"
#include "basin/core/log.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/data/dataset.h"
#include "basin/data/synth.h"
#include "basin/model/model.h"
#include "canvas.h"
#include "commands.h"
#include "job.h"
#include "logbuf.h"
#include "screen.h"
#include "views.h"

#define BASIN_VERSION "0.2.0"

static void stderr_sink(enum log_level level, const char *msg, void *user)
{
    (void)user;
    fprintf(stderr, "%s: %s\n", level >= LOG_ERROR ? "error" : level == LOG_WARN ? "warning" : "info", msg);
}

/* ---- completion: from the command table ------------------------------------------------ */

static const char *cands[256];
static int n_cands;
static char cand_buf[8192];

static char *next_candidate(const char *text, int state)
{
    static int i;
    static size_t len;
    if (!state) {
        i = 0;
        len = strlen(text);
    }
    while (i < n_cands) {
        const char *c = cands[i++];
        if (!strncmp(c, text, len)) return strdup(c);
    }
    return NULL;
}

/* Commands first; then the command's completion slot, then its key= options; file names
 * otherwise. */
static char **complete(const char *text, int start, int end)
{
    (void)end;
    n_cands = 0;
    rl_completion_append_character = ' ';
    if (start == 0) {
        for (int i = 0; i < n_commands && n_cands < 256; i++) cands[n_cands++] = commands[i].name;
        rl_attempted_completion_over = 1;
        return rl_completion_matches(text, next_candidate);
    }
    /* the words before the one being completed */
    char line[1024], *words[32];
    snprintf(line, sizeof line, "%.*s", start < (int)sizeof line - 1 ? start : (int)sizeof line - 1, rl_line_buffer);
    int n = 0;
    for (char *save = NULL, *w = strtok_r(line, " \t", &save); w && n < 31; w = strtok_r(NULL, " \t", &save))
        words[n++] = w;
    words[n] = NULL;
    const struct command *c = n ? command_find(words[0]) : NULL;
    if (!c) return NULL;
    if (c->complete) n_cands = c->complete(text, n, words, cands, 256, cand_buf, sizeof cand_buf);
    if (!n_cands && c->options && !strchr(text, '/'))
        for (const char *const *o = c->options; *o && n_cands < 256; o++)
            if (!strncmp(*o, text, strlen(text))) cands[n_cands++] = *o;
    if (!n_cands) return NULL; /* readline completes file names */
    /* "key=" waits for its value; a whole word gets a blank */
    if (n_cands == 1 && cands[0][strlen(cands[0]) - 1] == '=') rl_completion_append_character = '\0';
    rl_attempted_completion_over = 1;
    return rl_completion_matches(text, next_candidate);
}

/* Load the history kept across runs; its path into buf ("" when there is none). */
static void history_load(char *buf, size_t n)
{
    if (fs_state_dir("history", buf, n)) buf[0] = 0;
    stifle_history(1000);
    if (buf[0]) read_history(buf);
}

/* ---- signals and the wake-up pipe ------------------------------------------------------ */

static int wake_pipe[2] = {-1, -1};
static volatile sig_atomic_t in_command, n_sigint, got_term, split_view;

static void poke(void)
{
    if (wake_pipe[1] >= 0 && write(wake_pipe[1], "x", 1) < 0) {}
}

static void wake(void *user)
{
    (void)user;
    poke();
}

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGINT) {
        n_sigint++;
        if (in_command) {
            app_interrupt();
            if (split_view) goto done; /* the panes own the terminal */
            /* a command that does not stop: the third Ctrl-C ends basin */
            static const char once[] = "\n(cancelling at the next safe point; Ctrl-C twice more quits basin)\n";
            if (n_sigint == 1 && write(STDERR_FILENO, once, sizeof once - 1) < 0) {}
            if (n_sigint >= 3) _exit(130);
        }
    } else {
        got_term = 1;
        app_interrupt();
    }
done:
    poke();
    errno = saved;
}

static int open_pipe_and_signals(void)
{
    if (pipe(wake_pipe) != 0) return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(wake_pipe[i], F_SETFL, O_NONBLOCK);
        fcntl(wake_pipe[i], F_SETFD, FD_CLOEXEC);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    return 0;
}

static void drain_pipe(void)
{
    char drain[64];
    while (read(wake_pipe[0], drain, sizeof drain) > 0) {}
}

/* ---- the plain prompt (terminals the split view cannot use) ----------------------------- */

static struct app *the_app;

static void on_line_plain(char *line)
{
    struct app *a = the_app;
    if (!line) { /* Ctrl-D */
        a->quit = 1;
        printf("\n");
        return;
    }
    if (*line) add_history(line);
    in_command = 1;
    n_sigint = 0;
    app_run_line(a, line);
    app_lesson_after(a, line);
    in_command = 0;
    n_sigint = 0;
    free(line);
}

/* A line the app wants on the prompt next (a lesson's step), put there after readline has
 * started the new line. */
static void apply_prefill(struct app *a)
{
    if (!a->prefill[0]) return;
    rl_replace_line(a->prefill, 0);
    rl_point = rl_end;
    a->prefill[0] = 0;
    rl_redisplay();
}

static int run_plain(struct app *a)
{
    the_app = a;
    a->interactive = 1;
    rl_catch_signals = 0;
    rl_attempted_completion_function = complete;
    char hist[FS_PATH_MAX];
    history_load(hist, sizeof hist);
    printf("basin %s: type help for commands, quit or Ctrl-D to leave\n", BASIN_VERSION);
    rl_callback_handler_install("basin> ", on_line_plain);
    while (!a->quit && !got_term) {
        struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {wake_pipe[0], POLLIN, 0}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (fds[1].revents & POLLIN) {
            drain_pipe();
            if (n_sigint && !in_command) { /* Ctrl-C at the prompt: a fresh line */
                n_sigint = 0;
                rl_free_line_state();
                rl_callback_sigcleanup();
                rl_replace_line("", 0);
                printf("^C\n");
                rl_on_new_line();
                rl_redisplay();
            }
        }
        if (fds[0].revents & (POLLIN | POLLHUP)) rl_callback_read_char();
        apply_prefill(a);
    }
    rl_callback_handler_remove();
    if (hist[0] && !fs_mkdir_parent(hist)) write_history(hist);
    return 0;
}

/* ---- the split view --------------------------------------------------------------------- */

static struct {
    struct app *a;
    struct screen *scr;
    struct logbuf *log;
    unsigned long drawn_log, drawn_views;
    double drawn_at;
    int dirty;
} wb;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void log_sink(enum log_level level, const char *msg, void *user)
{
    (void)user;
    char line[1100];
    snprintf(line, sizeof line, "%s: %s", level >= LOG_ERROR ? "error" : level == LOG_WARN ? "warning" : "info", msg);
    logbuf_add(wb.log, level >= LOG_WARN ? LOGBUF_ERROR : LOGBUF_OUTPUT, line);
}

static void fmt_eta(char *buf, size_t n, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

static void wb_draw(void)
{
    struct app *a = wb.a;
    int w, h;
    screen_view_size(wb.scr, &w, &h);
    struct canvas c;
    int have = w > 0 && h > 0 && !canvas_init(&c, w, h, screen_canvas_mode(wb.scr));
    if (have) app_draw_view(a, a->views.current, &c);
    char left[600], right[400] = "";
    const char *model = a->model ? a->model_name : "none";
    const char *slash = strrchr(model, '/');
    const char *ds = a->ds_path[0] ? a->ds_path : "none";
    const char *dslash = strrchr(ds, '/');
    snprintf(left, sizeof left, "model %.120s | data %.120s%s%d clips | %s | %d threads | view %s (F2)",
             slash ? slash + 1 : model, dslash && dslash[1] ? dslash + 1 : ds, a->ds ? ", " : "",
             a->ds ? dataset_n_items(a->ds) : 0, a->preset.preset, threads_get(), view_name((enum view_kind)a->views.current));
    if (!a->ds) snprintf(left, sizeof left, "model %.120s | data none | %s | %d threads | view %s (F2)",
                         slash ? slash + 1 : model, a->preset.preset, threads_get(),
                         view_name((enum view_kind)a->views.current));
    double frac = -1;
    if (a->job) {
        struct job_info ji;
        job_info(a->job, &ji);
        char first[24];
        snprintf(first, sizeof first, "%.*s", (int)strcspn(ji.name, " "), ji.name);
        int k = snprintf(right, sizeof right, "job %d %s", ji.id, first);
        if (ji.state != JOB_RUNNING) k += snprintf(right + k, sizeof right - (size_t)k, " ended");
        else if (job_cancelled(a->job)) k += snprintf(right + k, sizeof right - (size_t)k, " stopping");
        if (ji.total > 0 && ji.state == JOB_RUNNING) {
            frac = (double)ji.done / ji.total;
            k += snprintf(right + k, sizeof right - (size_t)k, " %s %d%%", ji.label, (int)(100 * frac));
        }
        if (ji.rate > 0 && ji.state == JOB_RUNNING)
            k += snprintf(right + k, sizeof right - (size_t)k, ", %.3g %s/s", ji.rate,
                          !strcmp(ji.label, "train") ? "steps" : !strcmp(ji.label, "hessian") ? "products" : "clips");
        if (ji.eta_s >= 0 && ji.state == JOB_RUNNING) {
            char eta[32];
            fmt_eta(eta, sizeof eta, ji.eta_s);
            snprintf(right + k, sizeof right - (size_t)k, ", ETA %s", eta);
        }
    }
    screen_draw(wb.scr, have ? &c : NULL, left, right, frac, wb.log);
    if (have) canvas_fini(&c);
    wb.drawn_at = now_s();
    wb.drawn_log = logbuf_changes(wb.log);
    wb.drawn_views = __atomic_load_n(&a->views.changes, __ATOMIC_RELAXED);
    wb.dirty = 0;
}

/* Redraw what changed, at most ~30 times a second (always when forced). Returns the
 * milliseconds until a redraw held back by that limit is due, or -1 when none is. */
static int wb_maybe_draw(int force)
{
    struct app *a = wb.a;
    int changed = force || wb.dirty || logbuf_changes(wb.log) != wb.drawn_log ||
                  __atomic_load_n(&a->views.changes, __ATOMIC_RELAXED) != wb.drawn_views || a->job;
    if (!changed) return -1;
    double wait = wb.drawn_at + 1.0 / 30 - now_s();
    if (force || wait <= 0) {
        wb_draw();
        return -1;
    }
    return (int)(wait * 1000) + 1;
}

static void wb_on_line(char *line)
{
    struct app *a = wb.a;
    if (!line) {
        a->quit = 1;
        return;
    }
    if (*line) add_history(line);
    char echo[1100];
    snprintf(echo, sizeof echo, "basin> %s", line);
    logbuf_add(wb.log, LOGBUF_ECHO, echo);
    in_command = 1;
    n_sigint = 0;
    app_run_line(a, line);
    app_lesson_after(a, line);
    in_command = 0;
    n_sigint = 0;
    free(line);
    wb.dirty = 1;
}

/* F2: the next view. */
static int next_view(int count, int key)
{
    (void)count, (void)key;
    wb.a->views.current = (wb.a->views.current + 1) % VIEW_COUNT;
    wb.dirty = 1;
    return 0;
}

/* Completion matches go to the log, not over the panes. */
static void show_matches(char **matches, int n, int longest)
{
    (void)longest;
    char line[1024];
    size_t k = 0;
    line[0] = 0;
    for (int i = 1; i <= n && k + 2 < sizeof line; i++)
        k += (size_t)snprintf(line + k, sizeof line - k, "%s%s", i > 1 ? "  " : "", matches[i]);
    logbuf_add(wb.log, LOGBUF_OUTPUT, line);
    wb.dirty = 1;
}

/* `wait` and foreground jobs in the split view: keep drawing; Ctrl-C stops the job. */
static void wb_wait_job(struct app *a)
{
    while (a->job && job_running(a->job) && !got_term) {
        struct pollfd fd = {wake_pipe[0], POLLIN, 0};
        poll(&fd, 1, 100);
        drain_pipe();
        if (n_sigint) {
            n_sigint = 0;
            job_cancel(a->job);
        }
        wb_maybe_draw(0);
    }
    if (got_term && a->job) job_cancel(a->job);
}

/* The default data set opens in the background at start (the first time it is made). */
struct open_default {
    struct app *a;
    struct dataset *ds;
    char where[SYNTH_PATH_MAX];
};

static int open_default_work(struct job *j, void *arg)
{
    struct open_default *o = arg;
    int s = synth_ensure_default(o->where, sizeof o->where, job_progress(j));
    return s ? s : dataset_open(&o->ds, o->where, NULL);
}

static void open_default_done(struct job *j, void *arg, int s)
{
    (void)j;
    struct open_default *o = arg;
    struct app *a = o->a;
    if (s) {
        app_fail(a, s, "the default data set: %s", status_detail());
    } else if (!a->ds) {
        a->ds = o->ds;
        o->ds = NULL;
        snprintf(a->ds_path, sizeof a->ds_path, "%s", o->where);
        app_out(a, "data set: the embedded default, %d clips (%s)\n", dataset_n_items(a->ds), o->where);
    }
    dataset_destroy(o->ds);
    free(o);
}

static void wb_start(struct app *a)
{
    char path[4300];
    if (!app_asset_path(APP_DEFAULT_MODEL, path, sizeof path)) {
        struct model *m;
        if (!model_load(&m, path)) {
            a->model = m;
            snprintf(a->model_name, sizeof a->model_name, "%.255s", path);
            app_out(a, "model: the default model (%s)\n", path);
        }
    }
    if (!app_asset_path("park.wav", path, sizeof path)) {
        char line[4400];
        snprintf(line, sizeof line, "clip '%s'", path);
        app_run_line(a, line);
    }
    struct open_default *o = calloc(1, sizeof *o);
    if (o) {
        o->a = a;
        struct job_desc d = {.name = "data default", .work = open_default_work, .done = open_default_done, .arg = o};
        a->cmd = "data";
        app_run_job(a, &d, APP_HOLD_DATA);
        a->cmd = NULL;
    }
    app_out(a, "basin %s: help lists the commands; F2 cycles the views, PgUp/PgDn scroll this log; "
               "Ctrl-C stops a job or clears the line; quit or Ctrl-D leaves\n", BASIN_VERSION);
}

static int run_workbench(struct app *a)
{
    wb.a = a;
    wb.log = logbuf_create(5000, wake, NULL);
    if (!wb.log) return run_plain(a);
    FILE *out = logbuf_stream(wb.log, LOGBUF_OUTPUT), *err = logbuf_stream(wb.log, LOGBUF_ERROR);
    if (!out || !err || screen_open(&wb.scr, "basin> ", wb_on_line)) {
        if (out) fclose(out);
        if (err) fclose(err);
        logbuf_destroy(wb.log);
        return run_plain(a);
    }
    a->out = out, a->err = err;
    split_view = 1;
    log_set_sink(log_sink, NULL, LOG_WARN);
    a->workbench = 1, a->background = 1, a->interactive = 1;
    a->wake = wake, a->wait_job = wb_wait_job;
    rl_attempted_completion_function = complete;
    rl_completion_display_matches_hook = show_matches;
    rl_bind_keyseq("\\eOQ", next_view);   /* F2 (xterm, tmux) */
    rl_bind_keyseq("\\e[12~", next_view); /* F2 (rxvt) */
    char hist[FS_PATH_MAX];
    history_load(hist, sizeof hist);
    wb_start(a);
    wb_draw();
    int due = -1;
    while (!a->quit && !got_term) {
        struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {wake_pipe[0], POLLIN, 0}};
        int timeout = a->job ? 100 : -1; /* a running job's ETA moves: redraw 10 times a second */
        if (due >= 0 && (timeout < 0 || due < timeout)) timeout = due;
        int r = poll(fds, 2, timeout);
        if (r < 0 && errno != EINTR) break;
        if (r > 0 && (fds[1].revents & POLLIN)) drain_pipe();
        if (n_sigint) {
            n_sigint = 0;
            if (a->job && job_running(a->job)) {
                struct job_info ji;
                job_info(a->job, &ji);
                job_cancel(a->job);
                app_out(a, "stopping job %d (%s) at its next safe point\n", ji.id, ji.name);
            } else {
                screen_cancel_line(wb.scr);
            }
            wb.dirty = 1;
        }
        /* keys (and a resize, which arrives as one) */
        if (screen_input(wb.scr)) wb.dirty = 1;
        if (a->prefill[0]) {
            apply_prefill(a);
            wb.dirty = 1;
        }
        if (a->job && app_reap_job(a)) wb.dirty = 1;
        due = wb_maybe_draw(0);
    }
    if (a->job) {
        job_cancel(a->job);
        app_wait_job(a);
    }
    screen_close(wb.scr);
    split_view = 0;
    log_set_sink(stderr_sink, NULL, LOG_WARN);
    a->out = stdout, a->err = stderr;
    fclose(out);
    fclose(err);
    logbuf_destroy(wb.log);
    if (hist[0] && !fs_mkdir_parent(hist)) write_history(hist);
    return 0;
}

/* ---- main --------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: basin [--script FILE] [--line] [--help] [--version]\n"
               "  with no arguments on a terminal: the split view (--line: a plain prompt);\n"
               "  otherwise commands are read from standard input.\n");
}

/* Headless: Ctrl-C cancels the running command or job and ends the run. */
static void on_headless_signal(int sig)
{
    (void)sig;
    app_interrupt();
}

int main(int argc, char **argv)
{
    const char *script = NULL;
    int line_mode = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--script")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "basin: --script needs a FILE\n");
                usage(stderr);
                return 2;
            }
            script = argv[++i];
        } else if (!strcmp(argv[i], "--line")) {
            line_mode = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf("basin %s\n", BASIN_VERSION);
            return 0;
        } else {
            fprintf(stderr, "basin: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    log_set_sink(stderr_sink, NULL, LOG_WARN);
    struct app a;
    int status = 0;
    FILE *f = NULL;
    if (script && !(f = fopen(script, "r"))) {
        fprintf(stderr, "basin: cannot open script %s: %s\n", script, strerror(errno));
        return 2;
    }
    app_init(&a);
    if (f || !isatty(STDIN_FILENO)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_headless_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        status = app_run_stream(&a, f ? f : stdin, f ? script : "stdin") ? 1 : 0;
        if (app_interrupted()) {
            fprintf(stderr, "basin: interrupted\n");
            status = 130;
        }
        if (f) fclose(f);
    } else if (open_pipe_and_signals() != 0) {
        fprintf(stderr, "basin: pipe: %s\n", strerror(errno));
        status = 1;
    } else if (!line_mode && screen_usable()) {
        status = run_workbench(&a);
    } else {
        status = run_plain(&a);
    }
    app_fini(&a);
    return status;
}
