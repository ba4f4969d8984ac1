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
