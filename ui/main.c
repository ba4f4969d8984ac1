/* main.c: basin's entry point.
 *
 *   basin                  interactive: a readline prompt (the split view comes later)
 *   basin --script FILE    run FILE's commands, then exit; status 1 if any failed
 *   cmds | basin           the same for standard input when it is not a terminal
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "app.h"
#include "basin/core/fs.h"
#include "basin/dsp/frontend.h"
#include "basin/model/model.h"
#include "basin/core/log.h"
#include "commands.h"

#define BASIN_VERSION "0.1.0"

static void log_sink(enum log_level level, const char *msg, void *user)
{
    (void)user;
    fprintf(stderr, "%s: %s\n", level >= LOG_ERROR ? "error" : level == LOG_WARN ? "warning" : "info", msg);
}

/* Completion candidates for the word being typed, gathered once per completion. */
static const char *cands[128];
static int n_cands;

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

static void add_cand(const char *c)
{
    if (n_cands < (int)(sizeof cands / sizeof cands[0])) cands[n_cands++] = c;
}

/* Which word of the line starts at offset start (0 = the command). */
static int word_index(int start)
{
    int k = 0, in_word = 0;
    for (int i = 0; i < start && rl_line_buffer[i]; i++) {
        int blank = rl_line_buffer[i] == ' ' || rl_line_buffer[i] == '\t';
        if (!blank && !in_word) k++;
        in_word = !blank;
    }
    return k;
}

/* Commands first; then, by command: architectures and their options (new), presets
 * (preset, spec preset=...), command names (help), the command's key= options; file names
 * otherwise. */
static char **complete(const char *text, int start, int end)
{
    (void)end;
    n_cands = 0;
    rl_completion_append_character = ' ';
    char first[64] = "", second[64] = "";
    sscanf(rl_line_buffer, "%63s %63s", first, second);
    if (start == 0) {
        for (int i = 0; i < n_commands; i++) add_cand(commands[i].name);
    } else if (!strcmp(first, "new") && word_index(start) == 1) {
        for (int a = 0; a < ARCH_COUNT; a++) add_cand(arch_name((enum arch)a));
    } else if (!strcmp(first, "preset") || !strncmp(text, "preset=", 7)) {
        static char buf[16][48];
        int k = 0;
        for (const char *const *p = frontend_preset_names(); *p && k < 16; p++, k++) {
            snprintf(buf[k], sizeof buf[k], "%s%s", strncmp(text, "preset=", 7) ? "" : "preset=", *p);
            add_cand(buf[k]);
        }
    } else if (!strcmp(first, "help")) {
        for (int i = 0; i < n_commands; i++) add_cand(commands[i].name);
    } else {
        const struct command *c = command_find(first);
        enum arch a;
        if (c && !strcmp(first, "new") && !arch_parse(second, &a)) {
            static char keys[16][32];
            int k = 0;
            for (const char *const *p = model_config_keys(a); *p && k < 15; p++, k++) {
                snprintf(keys[k], sizeof keys[k], "%s=", *p);
                add_cand(keys[k]);
            }
            add_cand("seed=");
        } else if (c && c->options) {
            for (const char *const *o = c->options; *o; o++) add_cand(*o);
        }
        if (!n_cands) return NULL; /* readline completes file names */
        rl_completion_append_character = '\0';
    }
    rl_attempted_completion_over = 1;
    return rl_completion_matches(text, next_candidate);
}

/* ---- the interactive prompt ------------------------------------------------------------
 *
 * readline's callback interface in a poll() loop on standard input and a self-pipe: signal
 * handlers only set flags and write a byte to the pipe. Ctrl-C at the prompt clears the
 * line; during a command it asks the command to stop at its next safe point (the command
 * runs on this thread, so the byte is seen when it returns). Ctrl-D or quit leaves;
 * SIGTERM and SIGHUP leave cleanly too, restoring the terminal.
 */

static int wake_pipe[2] = {-1, -1};
static volatile sig_atomic_t in_command, n_sigint, got_term;
static struct app *the_app;

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGINT) {
        n_sigint++;
        if (in_command) {
            app_interrupt();
            static const char once[] = "\n(cancelling at the next safe point; Ctrl-C twice more quits basin)\n";
            if (n_sigint == 1 && write(STDERR_FILENO, once, sizeof once - 1) < 0) {}
            if (n_sigint >= 3) _exit(130);
        }
    } else {
        got_term = 1;
        app_interrupt();
    }
    if (wake_pipe[1] >= 0 && write(wake_pipe[1], "x", 1) < 0) {}
    errno = saved;
}

static void on_line(char *line)
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
    in_command = 0;
    n_sigint = 0;
    free(line);
}

static void history_path(char *buf, size_t n)
{
    if (fs_state_dir("history", buf, n)) buf[0] = 0;
}

static int run_interactive(struct app *a)
{
    the_app = a;
    if (pipe(wake_pipe) != 0) {
        fprintf(stderr, "basin: pipe: %s\n", strerror(errno));
        return 1;
    }
    fcntl(wake_pipe[0], F_SETFL, O_NONBLOCK);
    fcntl(wake_pipe[1], F_SETFL, O_NONBLOCK);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    rl_catch_signals = 0;
    rl_attempted_completion_function = complete;
    char hist[FS_PATH_MAX];
    history_path(hist, sizeof hist);
    stifle_history(1000);
    if (hist[0]) read_history(hist);
    printf("basin %s: type help for commands, quit or Ctrl-D to leave\n", BASIN_VERSION);
    rl_callback_handler_install("basin> ", on_line);
    while (!a->quit && !got_term) {
        struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {wake_pipe[0], POLLIN, 0}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (fds[1].revents & POLLIN) {
            char drain[64];
            while (read(wake_pipe[0], drain, sizeof drain) > 0) {}
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
    }
    rl_callback_handler_remove();
    if (hist[0] && !fs_mkdir_parent(hist)) write_history(hist);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: basin [--script FILE] [--help] [--version]\n"
               "  with no arguments: interactive when standard input is a terminal,\n"
               "  otherwise commands are read from standard input.\n");
}

/* Headless: Ctrl-C cancels the running command and ends the run. */
static void on_headless_signal(int sig)
{
    (void)sig;
    app_interrupt();
}

int main(int argc, char **argv)
{
    const char *script = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--script")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "basin: --script needs a FILE\n");
                usage(stderr);
                return 2;
            }
            script = argv[++i];
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
    log_set_sink(log_sink, NULL, LOG_WARN);
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
    } else {
        status = run_interactive(&a);
    }
    app_fini(&a);
    return status;
}
