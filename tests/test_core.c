/* test_core.c: status messages, allocation, arenas and the random number generator. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/tensor.h"
#include "basin/core/threads.h"
#include "test.h"

static void test_status_detail(void)
{
    EXPECT_EQ_INT(status_set(STATUS_IO, "%s: %d", "a.wav", 3), STATUS_IO);
    EXPECT_STR(status_detail(), "a.wav: 3");
    status_prefix(STATUS_IO, "load");
    EXPECT_STR(status_detail(), "load: a.wav: 3");
    EXPECT_STR(status_name(STATUS_FORMAT), "bad format");
    EXPECT_STR(status_name((enum status)999), "unknown status");
}

static void test_mem_alignment_and_overflow(void)
{
    float *p = mem_alloc(3);
    REQUIRE(p);
    EXPECT(((unsigned long)p & 63) == 0);
    mem_free(p);
    mem_free(NULL);
    EXPECT(mem_calloc((size_t)-1, 16) == NULL);
    EXPECT(strstr(status_detail(), "overflows") != NULL);
    EXPECT_EQ_INT(mem_mul((size_t)1 << 62, 8), 0);
}

static void test_arena_slices(void)
{
    struct arena a;
    REQUIRE_OK(arena_init(&a, arena_floats_size(10) + arena_floats_size(100)));
    float *x = arena_floats(&a, 10), *y = arena_floats(&a, 100);
    REQUIRE(x && y);
    EXPECT(((unsigned long)y & 63) == 0);
    EXPECT(y >= x + 10);
    EXPECT(arena_floats(&a, 1) == NULL);
    arena_reset(&a);
    EXPECT(arena_floats(&a, 1) == x);
    arena_fini(&a);
}

static void test_rng_deterministic_and_moments(void)
{
    struct rng a, b;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) EXPECT(rng_u64(&a) == rng_u64(&b));
    double s = 0, s2 = 0, u = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        double z = rng_normal(&a);
        s += z;
        s2 += z * z;
        u += rng_uniform(&b);
    }
    EXPECT_NEAR(s / n, 0.0, 0.01);
    EXPECT_NEAR(s2 / n, 1.0, 0.02);
    EXPECT_NEAR(u / n, 0.5, 0.005);
    double g = 0, be = 0;
    for (int i = 0; i < 20000; i++) {
        g += rng_gamma(&a, 0.3);
        be += rng_beta(&a, 0.2, 0.2);
    }
    EXPECT_NEAR(g / 20000, 0.3, 0.02);
    EXPECT_NEAR(be / 20000, 0.5, 0.02);
    int idx[10], seen = 0;
    for (int i = 0; i < 10; i++) idx[i] = i;
    rng_shuffle(&a, idx, 10);
    for (int i = 0; i < 10; i++) seen |= 1 << idx[i];
    EXPECT_EQ_INT(seen, 1023);
    struct rng c = rng_split(&a, 1), d = rng_split(&a, 2);
    EXPECT(rng_u64(&c) != rng_u64(&d));
}

static void test_tensor_shape_str(void)
{
    char buf[64];
    int shape[4] = {32, 1, 5, 5};
    EXPECT_STR(tensor_shape_str(buf, sizeof buf, 4, shape), "(32, 1, 5, 5)");
    EXPECT_STR(tensor_shape_str(buf, sizeof buf, 1, shape), "(32,)");
    EXPECT_EQ_INT(tensor_numel_of(4, shape), 800);
}


static void *threads_get_elsewhere(void *out)
{
    *(int *)out = threads_get();
    return NULL;
}

/* A pin holds the calling thread's count against threads_set(); other threads see the
 * setting; unpinning restores it. */
static void test_threads_pin(void)
{
    int saved = threads_get();
    threads_set(3);
    EXPECT_EQ_INT(threads_pin(2), 0);
    threads_set(5);
    EXPECT_EQ_INT(threads_get(), 2);
    int other = 0;
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, threads_get_elsewhere, &other) == 0);
    pthread_join(th, NULL);
    EXPECT_EQ_INT(other, 5);
    EXPECT_EQ_INT(threads_pin(0), 2);
    EXPECT_EQ_INT(threads_get(), 5);
    EXPECT_EQ_INT(threads_set(1000), 256);
    threads_set(saved);
}

const struct test tests_core[] = {
    TEST(test_status_detail),
    TEST(test_mem_alignment_and_overflow),
    TEST(test_arena_slices),
    TEST(test_rng_deterministic_and_moments),
    TEST(test_tensor_shape_str),
    TEST(test_threads_pin),
    {0},
};
