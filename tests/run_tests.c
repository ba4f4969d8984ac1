/* run_tests.c: runs every test table, or those whose "file.test" name contains argv[1].
 * Last line: "N passed, N failed"; exit status 0 only when nothing failed and something
 * passed. QUICK=1 in the environment skips tests marked heavy. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "basin/core/log.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "test.h"

/* One line per test file; keep in the order of the layers. */
#define TEST_FILES(X)                                                                       \
    X(core)                                                                                 \
    X(ops)                                                                                  \
    X(dsp)                                                                                  \
    X(audio)                                                                                \
    X(device)                                                                               \
    X(data)                                                                                 \
    X(dataset)                                                                              \
    X(features)                                                                             \
    X(cache)                                                                                \
    X(synth)                                                                                \
    X(model)                                                                                \
    X(safetensors)                                                                          \
    X(graph)                                                                                \
    X(model_io)                                                                             \
    X(prune)                                                                                \
    X(compress)                                                                             \
    X(distill)                                                                              \
    X(structured)                                                                           \
    X(pipeline)                                                                             \
    X(eval)                                                                                 \
    X(predict)                                                                              \
    X(listen)                                                                               \
    X(train)                                                                                \
    X(landscape)                                                                            \
    X(erf)                                                                                  \
    X(hessian)                                                                              \
    X(hostile)                                                                              \
    X(cli)                                                                                  \
    X(cli_data)                                                                             \
    X(repl)                                                                                 \
    X(workbench)                                                                            \
    X(canvas)                                                                               \
    X(views)                                                                                \
    X(export)                                                                               \
    X(session)                                                                              \
    X(loss)                                                                                 \
    X(optim)

#define DECLARE(file) extern const struct test tests_##file[];
TEST_FILES(DECLARE)
#undef DECLARE

static const struct {
    const char *file;
    const struct test *tests;
} files[] = {
#define ENTRY(file) {#file, tests_##file},
    TEST_FILES(ENTRY)
#undef ENTRY
};

int test_failures;
static const char *current;
static char scratch_dir[64];

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "FAIL %s  %s:%d: ", current, file, line);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    test_failures++;
}

const char *test_dir(void)
{
    if (!scratch_dir[0]) {
        snprintf(scratch_dir, sizeof scratch_dir, "/tmp/basin-test-XXXXXX");
        if (!mkdtemp(scratch_dir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return scratch_dir;
}

const char *test_path(const char *name)
{
    static char ring[8][512];
    static int k;
    char *p = ring[k++ % 8];
    snprintf(p, 512, "%s/%s", test_dir(), name);
    return p;
}

/* Warnings the code under test logs are kept per test (tests may check them with
 * test_log()) and shown only with a failure or VERBOSE=1, so a passing run prints nothing
 * but its closing line. */
static char *log_buf;
static size_t log_len, log_cap;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void log_to_buffer(enum log_level level, const char *msg, void *user)
{
    (void)user;
    if (level < LOG_WARN) return;
    size_t n = strlen(msg);
    pthread_mutex_lock(&log_lock);
    if (log_len + n + 2 > log_cap) {
        size_t cap = (log_len + n + 2) * 2;
        char *p = realloc(log_buf, cap);
        if (p) log_buf = p, log_cap = cap;
    }
    if (log_len + n + 2 <= log_cap) {
        memcpy(log_buf + log_len, msg, n);
        log_buf[log_len + n] = '\n';
        log_len += n + 1;
        log_buf[log_len] = 0;
    }
    pthread_mutex_unlock(&log_lock);
}

const char *test_log(void)
{
    return log_buf && log_len ? log_buf : "";
}

void test_log_clear(void)
{
    pthread_mutex_lock(&log_lock);
    log_len = 0;
    if (log_buf) log_buf[0] = 0;
    pthread_mutex_unlock(&log_lock);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int quick = getenv("QUICK") && atoi(getenv("QUICK"));
    int verbose = getenv("VERBOSE") && atoi(getenv("VERBOSE"));
    int passed = 0, failed = 0;
    threads_set(2); /* fixed thread count: deterministic results */
    log_set_sink(log_to_buffer, NULL, LOG_WARN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        for (const struct test *t = files[f].tests; t->name; t++) {
            char full[256];
            snprintf(full, sizeof full, "%s.%s", files[f].file, t->name);
            if (filter && !strstr(full, filter)) continue;
            if (quick && t->heavy) continue;
            current = full;
            test_failures = 0;
            status_clear();
            test_log_clear();
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            t->fn();
            clock_gettime(CLOCK_MONOTONIC, &t1);
            double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6;
            if (test_failures) failed++;
            else passed++;
            if (verbose || test_failures) {
                printf("%s %s (%.0f ms)\n", test_failures ? "FAILED" : "ok    ", full, ms);
                for (const char *l = test_log(); *l;) {
                    const char *e = strchr(l, '\n');
                    printf("  log: %.*s\n", (int)(e - l), l);
                    l = e + 1;
                }
            }
        }
    }
    if (scratch_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch_dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", scratch_dir);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
