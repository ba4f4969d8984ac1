/* main.c: basin's entry point.
 *
 *   basin                  interactive: a readline prompt (the split view comes later)
 *   basin --script FILE    run FILE's commands, then exit; status 1 if any failed
 *   cmds | basin           the same for standard input when it is not a terminal
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "app.h"
#include "basin/core/log.h"
#include "commands.h"

#define BASIN_VERSION "0.1.0"

static void log_sink(enum log_level level, const char *msg, void *user)
{
    (void)user;
    fprintf(stderr, "%s: %s\n", level >= LOG_ERROR ? "error" : level == LOG_WARN ? "warning" : "info", msg);
}

static char *complete_command(const char *text, int state)
{
    static int i;
    static size_t len;
    if (!state) {
        i = 0;
        len = strlen(text);
    }
    while (i < n_commands) {
        const char *name = commands[i++].name;
        if (!strncmp(name, text, len)) return strdup(name);
    }
    return NULL;
}

static char **complete(const char *text, int start, int end)
{
    (void)end;
    if (start == 0) return rl_completion_matches(text, complete_command);
    return NULL; /* file names */
}

static int run_interactive(struct app *a)
{
    rl_attempted_completion_function = complete;
    printf("basin %s: type help for commands, quit to leave\n", BASIN_VERSION);
    while (!a->quit) {
        char *line = readline("basin> ");
        if (!line) break;
        if (*line) add_history(line);
        app_run_line(a, line);
        free(line);
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: basin [--script FILE] [--help] [--version]\n"
               "  with no arguments: interactive when standard input is a terminal,\n"
               "  otherwise commands are read from standard input.\n");
}

int main(int argc, char **argv)
{
    const char *script = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--script") && i + 1 < argc) {
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
    app_init(&a);
    int status = 0;
    if (script) {
        FILE *f = fopen(script, "r");
        if (!f) {
            fprintf(stderr, "basin: cannot open script %s\n", script);
            return 2;
        }
        status = app_run_stream(&a, f) ? 1 : 0;
        fclose(f);
    } else if (!isatty(STDIN_FILENO)) {
        status = app_run_stream(&a, stdin) ? 1 : 0;
    } else {
        status = run_interactive(&a);
    }
    app_fini(&a);
    return status;
}
