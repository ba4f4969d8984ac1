/* cmd_lesson.c: lessons a teacher steps through in class.
 *
 * A lesson is sessions/lessons/NAME/lesson.basin (found from the current folder, or beside
 * the binary as assets are): a script whose comment lines explain the command after them.
 * At a prompt, `lesson NAME` shows the first step's explanation and puts its command on the
 * prompt line: Enter runs it (or edit it first), and the next step follows; `lesson stop`
 * ends it, `lesson next` skips a step. Headless, `lesson NAME` runs every step in order,
 * printing each explanation and command before its output, and stops at a failing step.
 *
 * Lessons take ${NAME:-default} variables (app.c) for their reduced form in CI.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "basin/core/status.h"
#include "commands.h"

#define LESSON_MAX_STEPS 256

struct lesson_step {
    char *explain;          /* the comment lines before the command, joined ("" none) */
    char *command;
};

static struct {
    char name[128];
    struct lesson_step steps[LESSON_MAX_STEPS];
    int n, at;              /* steps, and the next one to offer */
    int active;
} lesson;

static void lesson_free(void)
{
    for (int i = 0; i < lesson.n; i++) free(lesson.steps[i].explain), free(lesson.steps[i].command);
    memset(&lesson, 0, sizeof lesson);
}

/* The folder holding the lessons: sessions/lessons in the current folder, else beside the
 * binary (build/<kind>/basin in the source tree). 0, or STATUS_NOT_FOUND. */
static int lessons_dir(char *buf, size_t n)
{
    snprintf(buf, n, "sessions/lessons");
    if (access(buf, R_OK) == 0) return STATUS_OK;
    char exe[2048];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(buf, n, "%.1900s/../../sessions/lessons", exe);
        if (access(buf, R_OK) == 0) return STATUS_OK;
    }
    return status_set(STATUS_NOT_FOUND, "no sessions/lessons here or beside the basin binary");
}

/* The script of lesson NAME. */
static int lesson_path(const char *name, char *buf, size_t n)
{
    char dir[2048];
    if (!lessons_dir(dir, sizeof dir)) {
        snprintf(buf, n, "%.1900s/%.100s/lesson.basin", dir, name);
        if (access(buf, R_OK) == 0) return STATUS_OK;
    }
    return status_set(STATUS_NOT_FOUND, "no lesson '%s' (lesson lists them)", name);
}

static int lesson_read(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return status_set(STATUS_IO, "%s: cannot open", path);
    char line[4096];
    struct strbuf ex = {0};
    while (fgets(line, sizeof line, f) && lesson.n < LESSON_MAX_STEPS) {
        line[strcspn(line, "\r\n")] = 0;
        const char *p = line + strspn(line, " \t");
        if (*p == '#') {
            p++;
            if (*p == ' ') p++;
            strbuf_printf(&ex, "%s%s", ex.n ? "\n" : "", p);
            continue;
        }
        if (!*p) {
            if (ex.n) strbuf_puts(&ex, "\n");
            continue;
        }
        struct lesson_step *s = &lesson.steps[lesson.n++];
        s->explain = strdup(ex.p ? ex.p : "");
        s->command = strdup(p);
        strbuf_fini(&ex);
    }
    strbuf_fini(&ex);
    fclose(f);
    return lesson.n ? STATUS_OK : status_set(STATUS_FORMAT, "%s: no commands", path);
}

/* Show step `at` and offer its command on the prompt. */
static void offer(struct app *a)
{
    if (lesson.at >= lesson.n) {
        app_out(a, "[lesson %s: done, %d steps]\n", lesson.name, lesson.n);
        lesson_free();
        a->prefill[0] = 0;
        return;
    }
    const struct lesson_step *s = &lesson.steps[lesson.at];
    app_out(a, "\n[lesson %s, step %d of %d]\n", lesson.name, lesson.at + 1, lesson.n);
    if (s->explain[0]) app_out(a, "%s\n", s->explain);
    app_out(a, "[Enter runs it; lesson next skips it, lesson stop ends the lesson]\n");
    snprintf(a->prefill, sizeof a->prefill, "%s", s->command);
}

/* After every command line at the prompt: the lesson moves on when its command was run. */
void app_lesson_after(struct app *a, const char *line)
{
    if (!lesson.active || lesson.at >= lesson.n) return;
    const char *p = line + strspn(line, " \t");
    if (!strncmp(p, "lesson", 6)) return;
    lesson.at++;
    offer(a);
}

int cmd_lesson(struct app *a, int argc, char **argv)
{
    if (argc == 1) {
        char dir[2048];
        DIR *d = lessons_dir(dir, sizeof dir) ? NULL : opendir(dir);
        int n = 0;
        for (struct dirent *e; d && (e = readdir(d));) {
            char path[2400], first[200] = "";
            if (e->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "%s/%.200s/lesson.basin", dir, e->d_name);
            FILE *f = fopen(path, "r");
            if (!f) continue;
            /* its first comment line says what it is */
            if (fgets(first, sizeof first, f) && first[0] == '#') {
                first[strcspn(first, "\r\n")] = 0;
            } else {
                first[0] = 0;
            }
            fclose(f);
            app_out(a, "  %-16s %s\n", e->d_name, first[0] ? first + 1 + strspn(first + 1, " ") : "");
            n++;
        }
        if (d) closedir(d);
        if (!n) app_out(a, "no lessons found (sessions/lessons here or beside the basin binary)\n");
        return STATUS_OK;
    }
    if (argc != 2) return app_fail(a, STATUS_INVALID, "usage: lesson [NAME | next | stop]");
    if (!strcmp(argv[1], "stop") || !strcmp(argv[1], "next")) {
        if (!lesson.active) return app_fail(a, STATUS_INVALID, "no lesson is running");
        if (!strcmp(argv[1], "stop")) {
            app_out(a, "[lesson %s stopped at step %d of %d]\n", lesson.name, lesson.at + 1, lesson.n);
            lesson_free();
            a->prefill[0] = 0;
        } else {
            lesson.at++;
            offer(a);
        }
        return STATUS_OK;
    }
    char path[2400];
    if (lesson_path(argv[1], path, sizeof path)) return app_fail(a, STATUS_NOT_FOUND, "%s", status_detail());
    lesson_free();
    snprintf(lesson.name, sizeof lesson.name, "%s", argv[1]);
    if (lesson_read(path)) {
        lesson_free();
        return app_fail(a, STATUS_FORMAT, "%s", status_detail());
    }
    if (a->interactive) { /* step by step at the prompt */
        lesson.active = 1;
        lesson.at = 0;
        offer(a);
        return STATUS_OK;
    }
    /* headless: every step, narrated */
    int failed = 0;
    const char *saved = a->cmd;
    for (int i = 0; i < lesson.n && !failed && !app_interrupted(); i++) {
        app_out(a, "\n[lesson %s, step %d of %d]\n", lesson.name, i + 1, lesson.n);
        if (lesson.steps[i].explain[0]) app_out(a, "%s\n", lesson.steps[i].explain);
        app_out(a, "basin> %s\n", lesson.steps[i].command);
        failed = app_run_line(a, lesson.steps[i].command) != 0;
        a->cmd = saved;
    }
    int steps = lesson.n;
    lesson_free();
    if (failed) return app_fail(a, STATUS_INVALID, "the lesson stopped at a failing step");
    app_out(a, "[lesson %s: done, %d steps]\n", argv[1], steps);
    return STATUS_OK;
}
