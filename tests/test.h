/* test.h: basin's small test harness.
 *
 * A test is `static void test_name(void)`; a file lists its tests in a table
 * (`const struct test tests_<file>[] = { TEST(test_name), ..., {0} };`) that run_tests.c
 * names explicitly. EXPECT* record a failure and go on; REQUIRE* also return from the test.
 * The runner prints one line per failure and ends with exactly "N passed, N failed".
 */
#ifndef BASIN_TESTS_TEST_H
#define BASIN_TESTS_TEST_H

#include <math.h>
#include <stdio.h>

struct test {
    const char *name;
    void (*fn)(void);
    int heavy; /* end-to-end case: still run by `make test`, skipped by `make test QUICK=1` */
};

#define TEST(fn) {#fn, fn, 0}
#define TEST_HEAVY(fn) {#fn, fn, 1}

extern int test_failures; /* failures in the running test */
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A scratch directory for the running test's files, created on first use and removed after
 * the run ("/tmp/basin-test-XXXXXX"). test_path() joins a name onto it (static buffer ring). */
const char *test_dir(void);
const char *test_path(const char *name);

/* Warnings and errors logged through the log sink during the running test, one a line
 * ("" when none); the runner shows them only when the test fails or with VERBOSE=1. */
const char *test_log(void);
void test_log_clear(void);

#define EXPECT(cond)                                                                        \
    do {                                                                                    \
        if (!(cond)) test_fail(__FILE__, __LINE__, "expected %s", #cond);                  \
    } while (0)

#define EXPECT_MSG(cond, ...)                                                               \
    do {                                                                                    \
        if (!(cond)) test_fail(__FILE__, __LINE__, __VA_ARGS__);                           \
    } while (0)

#define EXPECT_EQ_INT(a, b)                                                                 \
    do {                                                                                    \
        long long a_ = (long long)(a), b_ = (long long)(b);                                 \
        if (a_ != b_) test_fail(__FILE__, __LINE__, "%s = %lld, expected %lld", #a, a_, b_); \
    } while (0)

#define EXPECT_STR(a, b)                                                                    \
    do {                                                                                    \
        const char *a_ = (a), *b_ = (b);                                                    \
        if (!a_ || !b_ || strcmp(a_, b_))                                                   \
            test_fail(__FILE__, __LINE__, "%s = \"%s\", expected \"%s\"", #a, a_ ? a_ : "(null)", \
                      b_ ? b_ : "(null)");                                                  \
    } while (0)

/* |a - b| <= tol */
#define EXPECT_NEAR(a, b, tol)                                                              \
    do {                                                                                    \
        double a_ = (double)(a), b_ = (double)(b), t_ = (double)(tol);                      \
        if (!(fabs(a_ - b_) <= t_))                                                         \
            test_fail(__FILE__, __LINE__, "%s = %.9g, expected %.9g (tol %g)", #a, a_, b_, t_); \
    } while (0)

/* |a - b| <= atol + rtol * |b| elementwise over n floats (a) against doubles or floats (b). */
#define EXPECT_TENSOR_NEAR(a, b, n, atol, rtol)                                             \
    do {                                                                                    \
        long bad_ = -1;                                                                     \
        double wa_ = 0, wb_ = 0;                                                            \
        for (long i_ = 0; i_ < (long)(n); i_++) {                                           \
            double x_ = (double)(a)[i_], y_ = (double)(b)[i_];                              \
            if (!(fabs(x_ - y_) <= (atol) + (rtol) * fabs(y_))) { bad_ = i_; wa_ = x_; wb_ = y_; break; } \
        }                                                                                   \
        if (bad_ >= 0)                                                                      \
            test_fail(__FILE__, __LINE__, "%s[%ld] = %.9g, %s[%ld] = %.9g (atol %g, rtol %g)", \
                      #a, bad_, wa_, #b, bad_, wb_, (double)(atol), (double)(rtol));         \
    } while (0)

#define REQUIRE(cond)                                                                       \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            test_fail(__FILE__, __LINE__, "required %s", #cond);                           \
            return;                                                                         \
        }                                                                                   \
    } while (0)

/* Require a call returning enum status to succeed, printing status_detail() otherwise. */
#define REQUIRE_OK(call)                                                                    \
    do {                                                                                    \
        int s_ = (call);                                                                    \
        if (s_ != 0) {                                                                      \
            test_fail(__FILE__, __LINE__, "%s failed: %s", #call, status_detail());        \
            return;                                                                         \
        }                                                                                   \
    } while (0)

#endif
