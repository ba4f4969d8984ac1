/* test_repl.c: the interactive prompt under a pseudo-terminal, as a person types: Ctrl-C at
 * the prompt and on a half-typed line, Ctrl-C during a long command (cancelled at a safe
 * point, nothing left behind, the model kept), Ctrl-D and SIGTERM leaving cleanly with the
 * terminal restored, history kept across runs; and Ctrl-C in a headless run. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

struct term {
    pid_t pid;
    int fd;              /* the pty's master side */
    char out[1 << 16];   /* everything the program wrote so far */
    size_t n;
    struct termios at_start;
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Start basin on a new pty of rows x 120 with the given environment additions
 * (NAME=VALUE, NULL-ended). */
static int term_start_rows(struct term *t, const char *const *env, int rows)
{
    const char *bin = getenv("BASIN_BIN");
    if (!bin) return -1;
    memset(t, 0, sizeof *t);
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = 120};
    t->pid = forkpty(&t->fd, NULL, NULL, &ws);
    if (t->pid < 0) return -1;
    if (t->pid == 0) {
        for (const char *const *e = env; e && *e; e++) putenv((char *)*e);
        setenv("TERM", "xterm", 1);
        execl(bin, "basin", "--line", (char *)NULL); /* the plain prompt (tmux tests drive the split view) */
        _exit(127);
    }
    tcgetattr(t->fd, &t->at_start);
    fcntl(t->fd, F_SETFL, O_NONBLOCK);
    return 0;
}

static int term_start(struct term *t, const char *const *env)
{
    return term_start_rows(t, env, 30);
}

/* Read what is there, waiting up to timeout_s for more. */
static void term_read(struct term *t, double timeout_s)
{
    struct pollfd p = {t->fd, POLLIN, 0};
    if (poll(&p, 1, (int)(timeout_s * 1000)) <= 0) return;
    for (;;) {
        ssize_t k = read(t->fd, t->out + t->n, sizeof t->out - 1 - t->n);
        if (k <= 0) break;
        t->n += (size_t)k;
        t->out[t->n] = 0;
    }
}

/* Wait until the output after offset from holds s; 1 when it did within timeout_s. */
static int term_wait(struct term *t, size_t from, const char *s, double timeout_s)
{
    double end = now_s() + timeout_s;
    while (now_s() < end) {
        if (t->n > from && strstr(t->out + from, s)) return 1;
        term_read(t, 0.05);
    }
    return t->n > from && strstr(t->out + from, s) != NULL;
}

static void term_send(struct term *t, const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t k = write(t->fd, s, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return;
        s += k;
        n -= (size_t)k;
    }
}

/* Wait for the process to end (up to timeout_s); its exit status, or -1 (then killed). */
static int term_end(struct term *t, double timeout_s)
{
    double end = now_s() + timeout_s;
    int st;
    while (now_s() < end) {
        term_read(t, 0.02);
        pid_t r = waitpid(t->pid, &st, WNOHANG);
        if (r == t->pid) {
            close(t->fd);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
    }
    size_t from = t->n > 400 ? t->n - 400 : 0;
    printf("  (basin did not end; its last output: \"%s\")\n", t->out + from);
    kill(t->pid, SIGKILL);
    waitpid(t->pid, &st, 0);
    close(t->fd);
    return -1;
}

static int count_glob(const char *pattern)
{
    glob_t g;
    int n = glob(pattern, 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;
    globfree(&g);
    return n;
}

#define SKIP_WITHOUT_BINARY()                                                               \
    do {                                                                                    \
        if (!getenv("BASIN_BIN")) {                                                         \
            printf("  (BASIN_BIN unset: skipped; make test sets it)\n");                    \
            return;                                                                         \
        }                                                                                   \
    } while (0)

static char env_home[600], env_state[600], env_cache[600];

static const char *const *test_env(void)
{
    static const char *env[4];
    snprintf(env_home, sizeof env_home, "HOME=%s", test_path("home"));
    snprintf(env_state, sizeof env_state, "XDG_STATE_HOME=%s", test_path("state"));
    snprintf(env_cache, sizeof env_cache, "XDG_CACHE_HOME=%s", test_path("cache"));
    mkdir(test_path("home"), 0777);
    env[0] = env_home, env[1] = env_state, env[2] = env_cache, env[3] = NULL;
    return env;
}

/* Ctrl-C clears the prompt's line instead of ending basin; the next line runs as typed. */
static void test_ctrl_c_at_the_prompt(void)
{
    SKIP_WITHOUT_BINARY();
    struct term *t = calloc(1, sizeof *t);
    REQUIRE(t && term_start(t, test_env()) == 0);
    EXPECT(term_wait(t, 0, "basin> ", 10));
    term_send(t, "new cpresnet width=8\r");
    EXPECT(term_wait(t, 0, "15,372 parameters", 10));
    size_t mark = t->n;
    term_send(t, "\x03");
    EXPECT(term_wait(t, mark, "basin> ", 5));
    mark = t->n;
    term_send(t, "info 64 10 bogus half typ");
    EXPECT(term_wait(t, mark, "half typ", 5));
    mark = t->n;
    term_send(t, "\x03");
    /* the terminal echoes ^C itself at once; basin's fresh prompt follows when it has
     * cleared the line (typing before it would race the clearing) */
    EXPECT(term_wait(t, mark, "basin> ", 5));
    mark = t->n;
    term_send(t, "info 64 100\r");
    EXPECT(term_wait(t, mark, "total: 15,372 parameters", 10)); /* model kept, line clean */
    EXPECT(strstr(t->out + mark, "error") == NULL);
    const char *total = strstr(t->out + mark, "total: 15,372");
    mark = total ? (size_t)(total - t->out) : t->n;
    EXPECT(term_wait(t, mark, "basin> ", 5)); /* back at the prompt */
    term_send(t, "\x04"); /* Ctrl-D leaves */
    EXPECT_EQ_INT(term_end(t, 10), 0);
    free(t);
}

/* Ctrl-C during synth cancels it at a safe point: an error line, no temporary folder, no
 * partial data set; the session and its model go on. */
static void test_ctrl_c_cancels_a_command(void)
{
    SKIP_WITHOUT_BINARY();
    struct term *t = calloc(1, sizeof *t);
    REQUIRE(t && term_start(t, test_env()) == 0);
    EXPECT(term_wait(t, 0, "basin> ", 10));
    term_send(t, "new cpresnet width=8\r");
    EXPECT(term_wait(t, 0, "15,372 parameters", 10));
    char line[1024];
    const char *dir = test_path("interrupted-set");
    snprintf(line, sizeof line, "synth out=%s clips=3000 seconds=10\r", dir);
    size_t mark = t->n;
    term_send(t, line);
    EXPECT(term_wait(t, mark, "synth ", 10)); /* the progress line: work has started */
    usleep(300 * 1000);
    double t0 = now_s();
    term_send(t, "\x03");
    EXPECT(term_wait(t, mark, "error: synth: cancelled", 10));
    EXPECT_MSG(now_s() - t0 < 2.0, "cancelling took %.1f s", now_s() - t0);
    EXPECT(term_wait(t, mark, "basin> ", 5));
    char pattern[1100];
    snprintf(pattern, sizeof pattern, "%s*", dir);
    EXPECT_EQ_INT(count_glob(pattern), 0);
    mark = t->n;
    term_send(t, "info 64 100\r");
    EXPECT(term_wait(t, mark, "total: 15,372 parameters", 10));
    term_send(t, "quit\r");
    EXPECT_EQ_INT(term_end(t, 10), 0);
    free(t);
}

/* SIGTERM leaves cleanly with the terminal as it was; history survives into the next run. */
static void test_sigterm_and_history(void)
{
    SKIP_WITHOUT_BINARY();
    struct term *t = calloc(1, sizeof *t);
    REQUIRE(t && term_start(t, test_env()) == 0);
    EXPECT(term_wait(t, 0, "basin> ", 10));
    term_send(t, "set seed=12345\r");
    EXPECT(term_wait(t, 0, "basin> set seed=12345", 5));
    usleep(100 * 1000);
    term_read(t, 0.1);
    struct termios mid;
    tcgetattr(t->fd, &mid);
    EXPECT((mid.c_lflag & ICANON) == 0); /* readline holds the terminal raw at the prompt */
    kill(t->pid, SIGTERM);
    int fd = dup(t->fd);
    EXPECT_EQ_INT(term_end(t, 10), 0);
    struct termios after;
    if (fd >= 0 && tcgetattr(fd, &after) == 0) {
        EXPECT_EQ_INT(after.c_lflag & (ICANON | ECHO), t->at_start.c_lflag & (ICANON | ECHO));
    }
    if (fd >= 0) close(fd);
    /* The next run recalls the line with the up arrow. */
    REQUIRE(term_start(t, test_env()) == 0);
    EXPECT(term_wait(t, 0, "basin> ", 10));
    size_t mark = t->n;
    term_send(t, "\x1b[A");
    EXPECT(term_wait(t, mark, "set seed=12345", 5));
    term_send(t, "\x03");
    EXPECT(term_wait(t, mark, "^C", 5));
    term_send(t, "quit\r");
    EXPECT_EQ_INT(term_end(t, 10), 0);
    free(t);
}

/* Headless: SIGINT cancels the running command, ends the run with status 130 and leaves
 * no temporary folder. */
static void test_sigint_headless(void)
{
    SKIP_WITHOUT_BINARY();
    const char *script = test_path("long.basin"), *dir = test_path("headless-set");
    FILE *f = fopen(script, "w");
    REQUIRE(f);
    fprintf(f, "synth out=%s clips=3000 seconds=10\nnew cpresnet width=8\n", dir);
    fclose(f);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1), dup2(null, 2);
        setenv("XDG_CACHE_HOME", test_path("cache"), 1);
        execl(getenv("BASIN_BIN"), "basin", "--script", script, (char *)NULL);
        _exit(127);
    }
    char pattern[1100];
    snprintf(pattern, sizeof pattern, "%s.tmp-*", dir);
    for (int i = 0; i < 200 && !count_glob(pattern); i++) usleep(20 * 1000);
    EXPECT_EQ_INT(count_glob(pattern), 1); /* synth is writing */
    kill(pid, SIGINT);
    int st;
    waitpid(pid, &st, 0);
    EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 130);
    snprintf(pattern, sizeof pattern, "%s*", dir);
    EXPECT_EQ_INT(count_glob(pattern), 0);
}

/* On a 24-line terminal spec draws fewer rows, so its title stays on the screen. */
static void test_spec_fits_the_terminal(void)
{
    SKIP_WITHOUT_BINARY();
    struct term *t = calloc(1, sizeof *t);
    REQUIRE(t && term_start_rows(t, test_env(), 24) == 0);
    EXPECT(term_wait(t, 0, "basin> ", 10));
    char line[1024];
    snprintf(line, sizeof line, "synth scene=bus seconds=2 out=%s\r", test_path("bus.wav"));
    term_send(t, line);
    EXPECT(term_wait(t, 0, "synth: bus", 10));
    size_t mark = t->n;
    snprintf(line, sizeof line, "spec %s\r", test_path("bus.wav"));
    term_send(t, line);
    EXPECT(term_wait(t, mark, " s\r\n", 10)); /* the time axis ends the drawing */
    const char *title = strstr(t->out + mark, "front end");
    const char *axis = title ? strstr(title, "0.0 s") : NULL; /* the time axis under the map */
    REQUIRE(title && axis);
    int rows = 0;
    for (const char *p = title; p < axis; p++) rows += *p == '\n';
    EXPECT_MSG(rows >= 4 && rows <= 24 - 3, "%d lines from the title to the time axis", rows);
    term_send(t, "quit\r");
    EXPECT_EQ_INT(term_end(t, 10), 0);
    free(t);
}

const struct test tests_repl[] = {
    TEST(test_spec_fits_the_terminal),
    TEST(test_ctrl_c_at_the_prompt),
    TEST(test_ctrl_c_cancels_a_command),
    TEST(test_sigterm_and_history),
    TEST(test_sigint_headless),
    {0},
};
