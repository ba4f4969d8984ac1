/* test_workbench.c: the split view driven through tmux as a person would use it (skipped
 * where tmux is missing; `make deps` installs it): the prompt, Tab completion, a
 * spectrogram in the view pane, a training job with `info` answered while it runs and the
 * status line's progress moving, resizing down to 80 x 24 and below and back, `stop`,
 * `quit`, and the terminal as it was (stty -a before and after) with no basin left. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "util.h"

static char sock[64];

/* Run a tmux command on the test's private server; its output into buf (may be NULL). */
static int tmux(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int tmux(char *buf, size_t n, const char *fmt, ...)
{
    char args[4096], cmd[4400], ignore[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "tmux -L %s -f /dev/null %s 2>&1", sock, args);
    return shell_output(cmd, buf ? buf : ignore, buf ? n : sizeof ignore);
}

static char screen[65536];

static const char *capture(void)
{
    tmux(screen, sizeof screen, "capture-pane -t wb -p");
    return screen;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Poll the screen until it holds s (1) or timeout_s passes (0). */
static int wait_for(const char *s, double timeout_s)
{
    double end = now_s() + timeout_s;
    do {
        if (strstr(capture(), s)) return 1;
        usleep(100 * 1000);
    } while (now_s() < end);
    return 0;
}

/* The status line: the one that starts with " model ". */
static void status_line(char *buf, size_t n)
{
    const char *s = strstr(capture(), "\n model ");
    buf[0] = 0;
    if (s) snprintf(buf, n, "%.*s", (int)strcspn(s + 1, "\n"), s + 1);
}

static void test_split_view_through_tmux(void)
{
    const char *bin = getenv("BASIN_BIN");
    char out[4096];
    if (!bin || shell_output("tmux -V", out, sizeof out) != 0) {
        printf("  (tmux or BASIN_BIN missing: skipped; make deps installs tmux)\n");
        return;
    }
    snprintf(sock, sizeof sock, "basin-test-%ld", (long)getpid());
    char dir[600], link[700], script[700], cmd[8192];
    snprintf(dir, sizeof dir, "%s", test_path("wb"));
    snprintf(link, sizeof link, "%s/basin-wb-%ld", dir, (long)getpid());
    snprintf(script, sizeof script, "%s/run.sh", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/home' && ln -sf '%s' '%s'", dir, bin, link);
    REQUIRE(system(cmd) == 0);
    FILE *f = fopen(script, "w");
    REQUIRE(f);
    fprintf(f, "cd '%s' && stty -a > stty-before && HOME='%s/home' XDG_STATE_HOME='%s/state' "
               "XDG_CACHE_HOME='%s/cache' TERM=tmux-256color LANG=C.UTF-8 INPUTRC=/dev/null '%s'; "
               "echo $? > rc; stty -a > stty-after; echo ALL-DONE; sleep 30\n",
            dir, dir, dir, dir, link);
    fclose(f);
    tmux(NULL, 0, "kill-server");
    EXPECT_EQ_INT(tmux(out, sizeof out, "new-session -d -s wb -x 120 -y 40 'sh %s'", script), 0);

    /* 1. the prompt, the status line, the demo clip's spectrogram in the view pane */
    EXPECT_MSG(wait_for("basin>", 15), "no prompt: %s", capture()); /* capture-pane trims trailing blanks */
    EXPECT_MSG(wait_for("data set: the embedded default", 60), "no default data set: %s", capture());
    char line[512];
    status_line(line, sizeof line);
    EXPECT_MSG(strstr(line, "default-model") && strstr(line, "950 clips"), "status: %s", line);

    /* 2. Tab completes a command */
    tmux(NULL, 0, "send-keys -t wb 'inf' Tab");
    EXPECT_MSG(wait_for("basin> info", 5), "no completion: %s", capture());
    tmux(NULL, 0, "send-keys -t wb C-u");

    /* 2b. a log line wider than the pane wraps onto rows of its own: the short line after
     * it is alone on its row (nothing of the long one left behind it) */
    char longcmd[400];
    memset(longcmd, 'x', 200);
    longcmd[200] = 0;
    tmux(NULL, 0, "send-keys -t wb 'set seed=%s' Enter", longcmd);
    EXPECT_MSG(wait_for("not an integer", 5), "no error: %s", capture());
    tmux(NULL, 0, "send-keys -t wb 'set' Enter");
    EXPECT_MSG(wait_for("threads=", 5), "no settings: %s", capture());
    {
        const char *p = strstr(capture(), "threads=");
        char row[256] = "";
        if (p) snprintf(row, sizeof row, "%.*s", (int)strcspn(p, "\n"), p);
        size_t n = strlen(row);
        while (n && row[n - 1] == ' ') row[--n] = 0;
        EXPECT_MSG(p && strstr(row, "seed=1") && !strchr(row, 'x'), "the settings row: '%s'", row);
    }

    /* 3. spec: heatmap rows in the view pane (half-blocks, coloured) */
    tmux(NULL, 0, "send-keys -t wb 'spec' Enter");
    EXPECT(wait_for("front end (the model's)", 10));
    char colour[65536];
    tmux(colour, sizeof colour, "capture-pane -t wb -p -e -S 0 -E 20");
    int blocks = 0;
    for (const char *p = colour; (p = strstr(p, "\xe2\x96\x80")); p += 3) blocks++;
    EXPECT_MSG(blocks > 1000, "%d half-blocks in the view pane", blocks);
    EXPECT(strstr(colour, "\x1b[38;5;") != NULL);

    /* 4. a training job: the prompt stays live (info answers), the progress moves */
    snprintf(cmd, sizeof cmd, "send-keys -t wb 'preset demo' Enter 'new cpresnet width=8 rho=5' Enter "
                              "'train epochs=60 out=%s/run' Enter", dir);
    tmux(NULL, 0, "%s", cmd);
    EXPECT_MSG(wait_for("train 1", 30) || wait_for("train ", 30), "no job: %s", capture());
    EXPECT_MSG(wait_for("epoch 1/60", 60), "no epoch line: %s", capture());
    tmux(NULL, 0, "send-keys -t wb 'info 64 251' Enter");
    EXPECT_MSG(wait_for("total: 15,372 parameters", 10), "info did not answer: %s", capture());
    status_line(line, sizeof line);
    EXPECT_MSG(strstr(line, "job") && strstr(line, "train"), "the job is not running any more: %s", line);
    char first[512], later[512];
    status_line(first, sizeof first);
    double until = now_s() + 10;
    do {
        usleep(300 * 1000);
        status_line(later, sizeof later);
    } while (!strcmp(first, later) && now_s() < until);
    EXPECT_MSG(strcmp(first, later) != 0, "the status line did not move: %s", first);
    tmux(NULL, 0, "send-keys -t wb 'view curves' Enter");
    EXPECT(wait_for("accuracy", 5));

    /* 5. resize to 80 x 24, below it, and back */
    tmux(NULL, 0, "resize-window -t wb -x 80 -y 24");
    usleep(500 * 1000);
    const char *s = capture();
    int rows = 0;
    for (const char *p = s; *p; p++) rows += *p == '\n';
    EXPECT_MSG(rows <= 24 && strstr(s, "basin>") && strstr(s, " model "), "at 80 x 24: %s", s);
    tmux(NULL, 0, "resize-window -t wb -x 60 -y 16");
    EXPECT_MSG(wait_for("needs at least 80 x 24", 5), "small: %s", capture());
    tmux(NULL, 0, "resize-window -t wb -x 120 -y 40");
    EXPECT_MSG(wait_for(" model ", 5), "back at 120 x 40: %s", capture());

    /* 6. stop cancels the job at a step boundary; quit leaves */
    tmux(NULL, 0, "send-keys -t wb 'stop' Enter");
    EXPECT_MSG(wait_for("cancelled", 15), "stop: %s", capture());
    tmux(NULL, 0, "send-keys -t wb 'quit' Enter");
    EXPECT_MSG(wait_for("ALL-DONE", 15), "quit: %s", capture());

    /* 7. the terminal as it was; exit status 0; no basin left */
    snprintf(cmd, sizeof cmd, "cd '%s' && cmp stty-before stty-after && cat rc", dir);
    EXPECT_EQ_INT(shell_output(cmd, out, sizeof out), 0);
    EXPECT_MSG(atoi(out) == 0, "exit status %s", out);
    snprintf(cmd, sizeof cmd, "pgrep -f 'basin-w[b]-%ld' | wc -l", (long)getpid()); /* [b]: not pgrep's own sh */
    shell_output(cmd, out, sizeof out);
    EXPECT_MSG(atoi(out) == 0, "%s basin processes left", out);
    /* 8. a crash signal restores the terminal too */
    snprintf(cmd, sizeof cmd, "cd '%s' && rm -f rc stty-after", dir);
    REQUIRE(system(cmd) == 0);
    tmux(NULL, 0, "respawn-pane -k -t wb 'sh %s'", script);
    EXPECT_MSG(wait_for("basin>", 30), "no second start: %s", capture());
    snprintf(cmd, sizeof cmd, "pkill -SEGV -f 'basin-w[b]-%ld'", (long)getpid());
    EXPECT_EQ_INT(system(cmd), 0);
    EXPECT_MSG(wait_for("ALL-DONE", 15), "after SIGSEGV: %s", capture());
    snprintf(cmd, sizeof cmd, "cd '%s' && cmp stty-before stty-after && cat rc", dir);
    EXPECT_EQ_INT(shell_output(cmd, out, sizeof out), 0);
    EXPECT_MSG(atoi(out) == 128 + 11, "exit status after SIGSEGV: %s", out);
    tmux(NULL, 0, "kill-server");
}

const struct test tests_workbench[] = {
    TEST_HEAVY(test_split_view_through_tmux),
    {0},
};
