/* test_data.c: the content hash (XXH64), batches and augmentation (SpecAugment, mixup,
 * time roll, gain). Data sets are in test_dataset.c, features and their cache in
 * test_features.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/data/batch.h"
#include "basin/data/features.h"
#include "basin/data/hash.h"
#include "test.h"

/* ---- hash ---------------------------------------------------------------------------- */

static void test_xxh64_vectors(void)
{
    /* ref: xxHash reference values (python-xxhash, XXH64, seed 0). */
    EXPECT(hash_xxh64("", 0, 0) == 0xef46db3751d8e999ull);
    EXPECT(hash_xxh64("a", 1, 0) == 0xd24ec4f1a98c6e5bull);
    EXPECT(hash_xxh64("abc", 3, 0) == 0x44bc2cf5ad770999ull);
    const char *s = "Nobody inspects the spammish repetition";
    EXPECT(hash_xxh64(s, strlen(s), 0) == 0xfbcea83c8a378bf1ull);
    /* streaming in odd pieces gives the one-shot value */
    unsigned char buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (unsigned char)(i * 7 + 3);
    struct hash_xxh64 h;
    hash_xxh64_init(&h, 42);
    for (size_t k = 0, step = 1; k < 1000; k += step, step = step * 3 % 37 + 1)
        hash_xxh64_update(&h, buf + k, k + step > 1000 ? 1000 - k : step);
    EXPECT(hash_xxh64_digest(&h) == hash_xxh64(buf, 1000, 42));
}

/* ---- batches ------------------------------------------------------------------------- */

/* Hand-made features: n clips of (C, F, T), clip i's values 1 + i + small distinct offsets
 * (never 0), label i % m. */
static struct features *fake_features(int n, int c, int fb, int t, int m)
{
    struct features *f = mem_calloc(1, sizeof *f);
    if (!f) return NULL;
    f->n = n;
    f->n_channels = c;
    f->n_mels = fb;
    f->n_frames = t;
    f->n_classes = m;
    long clip = (long)c * fb * t;
    f->x = mem_alloc(sizeof(float) * (size_t)(n * clip));
    f->labels = mem_alloc(sizeof(int) * (size_t)n);
    f->items = mem_alloc(sizeof(int) * (size_t)n);
    f->mean = mem_calloc((size_t)fb, sizeof(float));
    f->std = mem_calloc((size_t)fb, sizeof(float));
    if (!f->x || !f->labels || !f->items || !f->mean || !f->std) {
        features_destroy(f);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        f->labels[i] = i % m;
        f->items[i] = i;
        for (long j = 0; j < clip; j++) f->x[i * clip + j] = 1.0f + (float)i + 0.001f * (float)(j % 997);
    }
    return f;
}

static void test_batches_cover_epoch(void)
{
    struct features *f = fake_features(23, 1, 4, 6, 3);
    REQUIRE(f);
    struct batch_opts o;
    batch_opts_default(&o);
    o.batch_size = 5;
    o.seed = 11;
    struct batch_iter *it, *it2;
    REQUIRE_OK(batch_iter_create(&it, f, &o));
    REQUIRE_OK(batch_iter_create(&it2, f, &o));
    EXPECT_EQ_INT(batch_iter_n_batches(it), 5);
    long clip = 24;
    int order[2][23];
    for (int e = 0; e < 2; e++) {
        batch_iter_epoch(it, e);
        int seen[23] = {0}, k = 0;
        for (int b = 0; b < batch_iter_n_batches(it); b++) {
            const struct batch *bt = batch_iter_get(it, b);
            EXPECT_EQ_INT(bt->n, b < 4 ? 5 : 3);
            EXPECT_EQ_INT(bt->index, b);
            EXPECT(bt->targets == NULL);
            for (int i = 0; i < bt->n; i++) {
                int r = bt->rows[i];
                REQUIRE(r >= 0 && r < 23);
                seen[r]++;
                order[e][k++] = r;
                EXPECT_EQ_INT(bt->labels[i], f->labels[r]);
                EXPECT(!memcmp(bt->x + i * clip, f->x + r * clip, sizeof(float) * (size_t)clip));
                EXPECT_EQ_INT(bt->partner[i], r);
                EXPECT_NEAR(bt->lambda[i], 1.0, 0.0);
            }
        }
        for (int r = 0; r < 23; r++) EXPECT_EQ_INT(seen[r], 1);   /* every clip exactly once */
    }
    EXPECT(memcmp(order[0], order[1], sizeof order[0]) != 0);   /* epochs differ */
    /* same seed, same order, batches drawn in any order */
    batch_iter_epoch(it2, 1);
    for (int b = batch_iter_n_batches(it2) - 1; b >= 0; b--) {
        const struct batch *bt = batch_iter_get(it2, b);
        for (int i = 0; i < bt->n; i++) EXPECT_EQ_INT(bt->rows[i], order[1][b * 5 + i]);
    }
    batch_iter_destroy(it2);
    batch_iter_destroy(it);
    batch_iter_destroy(NULL);

    /* drop_last; no shuffle */
    o.drop_last = 1;
    o.shuffle = 0;
    REQUIRE_OK(batch_iter_create(&it, f, &o));
    EXPECT_EQ_INT(batch_iter_n_batches(it), 4);
    const struct batch *bt = batch_iter_get(it, 3);
    EXPECT_EQ_INT(bt->n, 5);
    EXPECT_EQ_INT(bt->rows[0], 15);
    batch_iter_destroy(it);
    /* a batch larger than the data */
    o.batch_size = 40;
    o.drop_last = 0;
    REQUIRE_OK(batch_iter_create(&it, f, &o));
    EXPECT_EQ_INT(batch_iter_n_batches(it), 1);
    EXPECT_EQ_INT(batch_iter_get(it, 0)->n, 23);
    batch_iter_destroy(it);
    /* bad options */
    o.batch_size = 0;
    EXPECT_EQ_INT(batch_iter_create(&it, f, &o), STATUS_INVALID);
    batch_opts_default(&o);
    o.mixup = BATCH_MIXUP_SAMPLE;
    EXPECT_EQ_INT(batch_iter_create(&it, f, &o), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "mixup alpha") != NULL);
    EXPECT_EQ_INT(batch_opts_preset(&o, "cpjku"), STATUS_OK);
    EXPECT_EQ_INT(o.batch_size, 10);
    EXPECT_EQ_INT(o.roll_frames, 50);
    EXPECT_EQ_INT(batch_opts_preset(&o, "sp4asc"), STATUS_OK);
    EXPECT_EQ_INT(o.time_width, 128);
    EXPECT_EQ_INT(batch_opts_preset(&o, "bogus"), STATUS_NOT_FOUND);
    features_destroy(f);
}

static void test_batches_thread_independent(void)
{
    struct features *f = fake_features(37, 2, 8, 20, 4);
    REQUIRE(f);
    struct batch_opts o;
    batch_opts_default(&o);
    o.batch_size = 16;
    o.seed = 5;
    o.roll_frames = 7;
    o.gain_db = 3;
    o.mixup = BATCH_MIXUP_SAMPLE;
    o.mixup_alpha = 0.3;
    o.time_stripes = 2;
    o.time_width = 5;
    o.freq_stripes = 2;
    o.freq_width = 3;
    long clip = 2 * 8 * 20;
    float *x1 = malloc(sizeof(float) * (size_t)(37 * clip));
    REQUIRE(x1);
    for (int pass = 0; pass < 2; pass++) {
        threads_set(pass ? 1 : 2);
        struct batch_iter *it;
        int rc = batch_iter_create(&it, f, &o);
        if (rc) threads_set(2);
        REQUIRE_OK(rc);
        batch_iter_epoch(it, 3);
        long off = 0;
        for (int b = 0; b < batch_iter_n_batches(it); b++) {
            const struct batch *bt = batch_iter_get(it, b);
            if (pass == 0) memcpy(x1 + off, bt->x, sizeof(float) * (size_t)(bt->n * clip));
            else EXPECT_MSG(!memcmp(x1 + off, bt->x, sizeof(float) * (size_t)(bt->n * clip)),
                            "batch %d differs between 1 and 2 threads", b);
            off += bt->n * clip;
        }
        batch_iter_destroy(it);
    }
    threads_set(2);
    free(x1);
    features_destroy(f);
}

static void test_spec_augment(void)
{
    enum { C = 2, F = 6, T = 12 };
    float x[C * F * T];
    struct batch_opts o;
    batch_opts_default(&o);
    o.time_stripes = 1;
    o.time_width = 5;
    struct rng r;
    rng_seed(&r, 1);
    int widths[5] = {0};
    for (int trial = 0; trial < 400; trial++) {
        for (int i = 0; i < C * F * T; i++) x[i] = 1.0f;
        batch_spec_augment(x, C, F, T, &o, &r);
        /* zeros are whole columns (every channel and bin), one run of width 0..4, never
         * reaching the last frame (torch.randint's exclusive high) */
        int first = -1, n = 0;
        for (int t = 0; t < T; t++) {
            int z = x[t] == 0.0f;
            for (int i = 0; i < C * F; i++) EXPECT_EQ_INT(x[i * T + t] == 0.0f, z);
            if (z) {
                if (first < 0) first = t;
                EXPECT_EQ_INT(t, first + n);
                n++;
            }
        }
        EXPECT(n <= 4);
        EXPECT(n == 0 || first + n <= T - 1);
        if (n <= 4) widths[n]++;
    }
    for (int w = 0; w < 5; w++) EXPECT_MSG(widths[w] > 40, "width %d drawn %d times", w, widths[w]);

    /* frequency stripes: whole rows of every channel */
    o.time_stripes = 0;
    o.freq_stripes = 2;
    o.freq_width = 3;
    for (int trial = 0; trial < 200; trial++) {
        for (int i = 0; i < C * F * T; i++) x[i] = 1.0f;
        batch_spec_augment(x, C, F, T, &o, &r);
        int n = 0;
        for (int fb = 0; fb < F; fb++) {
            int z = x[fb * T] == 0.0f;
            for (int c = 0; c < C; c++)
                for (int t = 0; t < T; t++) EXPECT_EQ_INT(x[(c * F + fb) * T + t] == 0.0f, z);
            n += z;
        }
        EXPECT(n <= 4);
    }
    /* a width above the length is clamped; a fill value other than 0 */
    o.freq_stripes = 0;
    o.time_stripes = 3;
    o.time_width = 100;
    o.specaug_value = -7.0f;
    for (int trial = 0; trial < 50; trial++) {
        for (int i = 0; i < C * F * T; i++) x[i] = 1.0f;
        batch_spec_augment(x, C, F, T, &o, &r);
        for (int i = 0; i < C * F * T; i++) EXPECT(x[i] == 1.0f || x[i] == -7.0f);
        for (int i = 0; i < C * F; i++) EXPECT(x[i * T + T - 1] == 1.0f);
    }

    /* through the iterator: time, then frequency, on every example */
    struct features *f = fake_features(8, 1, 6, 12, 2);
    REQUIRE(f);
    batch_opts_default(&o);
    o.batch_size = 8;
    o.time_stripes = 2;
    o.time_width = 4;
    o.freq_stripes = 1;
    o.freq_width = 3;
    struct batch_iter *it;
    REQUIRE_OK(batch_iter_create(&it, f, &o));
    const struct batch *bt = batch_iter_get(it, 0);
    int any = 0;
    for (int i = 0; i < 8; i++) {
        const float *y = bt->x + i * 72, *src = f->x + bt->rows[i] * 72;
        int zc = 0;
        for (int j = 0; j < 72; j++) {
            EXPECT(y[j] == 0.0f || y[j] == src[j]);
            zc += y[j] == 0.0f;
        }
        EXPECT(zc <= 2 * 3 * 6 + 2 * 12);
        any += zc > 0;
    }
    EXPECT(any > 0);
    batch_iter_destroy(it);
    features_destroy(f);
}

static void test_mixup(void)
{
    struct features *f = fake_features(40, 1, 3, 5, 4);
    REQUIRE(f);
    for (int mode = 0; mode < 2; mode++) {
        struct batch_opts o;
        batch_opts_default(&o);
        o.batch_size = 10;
        o.seed = 9;
        o.mixup = mode ? BATCH_MIXUP_BATCH : BATCH_MIXUP_SAMPLE;
        o.mixup_alpha = mode ? 0.2 : 0.3;
        struct batch_iter *it;
        REQUIRE_OK(batch_iter_create(&it, f, &o));
        int below_half = 0, mixed = 0;
        for (int e = 0; e < 5; e++) {
            batch_iter_epoch(it, e);
            for (int b = 0; b < batch_iter_n_batches(it); b++) {
                const struct batch *bt = batch_iter_get(it, b);
                REQUIRE(bt->targets);
                for (int i = 0; i < bt->n; i++) {
                    float l = bt->lambda[i];
                    EXPECT(l >= 0.0f && l <= 1.0f);
                    if (mode == 0) EXPECT(l >= 0.5f);
                    else EXPECT(l == bt->lambda[0]);   /* one lambda per batch */
                    below_half += l < 0.5f;
                    const float *t = bt->targets + i * 4;
                    double s = 0;
                    for (int k = 0; k < 4; k++) s += t[k];
                    EXPECT_NEAR(s, 1.0, 1e-6);
                    int r = bt->rows[i], p = bt->partner[i];
                    EXPECT_EQ_INT(bt->labels[i], f->labels[r]);
                    if (f->labels[r] == f->labels[p]) EXPECT_NEAR(t[f->labels[r]], 1.0, 1e-6);
                    else {
                        EXPECT_NEAR(t[f->labels[r]], l, 1e-6);
                        EXPECT_NEAR(t[f->labels[p]], 1 - l, 1e-6);
                    }
                    mixed += p != r;
                    /* the partner is in this batch */
                    int in = 0;
                    for (int j = 0; j < bt->n; j++) in |= bt->rows[j] == p;
                    EXPECT(in);
                    for (int j = 0; j < 15; j++)
                        EXPECT_NEAR(bt->x[i * 15 + j], l * f->x[r * 15 + j] + (1 - l) * f->x[p * 15 + j],
                                    1e-4);
                }
            }
        }
        EXPECT(mixed > 0);
        if (mode == 1) EXPECT(below_half > 0);   /* SP4ASC: no max(l, 1 - l) */
        batch_iter_destroy(it);
    }
    features_destroy(f);
}

static void test_time_roll(void)
{
    enum { C = 2, F = 3, T = 10 };
    float x[C * F * T], y[C * F * T];
    for (int i = 0; i < C * F * T; i++) x[i] = (float)i;
    for (int s = -23; s <= 23; s++) {
        memcpy(y, x, sizeof x);
        batch_roll(y, C, F, T, s);
        for (int r = 0; r < C * F; r++)
            for (int t = 0; t < T; t++)
                EXPECT_EQ_INT((int)y[r * T + t], (int)x[r * T + (((t - s) % T) + T) % T]);
    }
    /* through the iterator: each example is its clip rolled by one shift in [-R, R] */
    struct features *f = fake_features(30, 2, 3, 16, 3);
    REQUIRE(f);
    for (int i = 0; i < 30 * 96; i++) f->x[i] = (float)i;   /* every value distinct */
    struct batch_opts o;
    batch_opts_default(&o);
    o.batch_size = 30;
    o.roll_frames = 4;
    struct batch_iter *it;
    REQUIRE_OK(batch_iter_create(&it, f, &o));
    const struct batch *bt = batch_iter_get(it, 0);
    int hist[9] = {0};
    for (int i = 0; i < 30; i++) {
        const float *src = f->x + bt->rows[i] * 96, *dst = bt->x + i * 96;
        int s = (int)(dst[0] - src[0]);   /* dst[0] = src[(0 - s) mod T] */
        int shift = s <= 0 ? -s : 16 - s;
        if (shift > 8) shift -= 16;
        REQUIRE(shift >= -4 && shift <= 4);
        hist[shift + 4]++;
        float tmp[96];
        memcpy(tmp, src, sizeof tmp);
        batch_roll(tmp, 2, 3, 16, shift);
        EXPECT(!memcmp(tmp, dst, sizeof tmp));
    }
    int kinds = 0;
    for (int k = 0; k < 9; k++) kinds += hist[k] > 0;
    EXPECT(kinds >= 4);
    batch_iter_destroy(it);
    features_destroy(f);
}

static void test_gain(void)
{
    struct features *f = fake_features(20, 2, 4, 5, 2);
    REQUIRE(f);
    struct batch_opts o;
    batch_opts_default(&o);
    o.batch_size = 20;
    o.gain_db = 6;
    struct batch_iter *it;
    REQUIRE_OK(batch_iter_create(&it, f, &o));
    const struct batch *bt = batch_iter_get(it, 0);
    double lo = 1e9, hi = -1e9;
    for (int i = 0; i < 20; i++) {
        const float *src = f->x + bt->rows[i] * 40, *dst = bt->x + i * 40;
        double g = dst[0] - src[0];
        EXPECT(g >= -6.0 && g <= 6.0);
        for (int j = 0; j < 40; j++) EXPECT_NEAR(dst[j] - src[j], g, 1e-5);
        lo = g < lo ? g : lo;
        hi = g > hi ? g : hi;
    }
    EXPECT(lo < -1 && hi > 1);
    batch_iter_destroy(it);

    /* z-normalised features: bin k gets g / std[k] (std 0: g) */
    static const float mean[4] = {0, 0, 0, 0}, std[4] = {2.0f, 0.5f, 0.0f, 4.0f};
    features_znorm_apply(f, mean, std);
    REQUIRE_OK(batch_iter_create(&it, f, &o));
    bt = batch_iter_get(it, 0);
    for (int i = 0; i < 20; i++) {
        const float *src = f->x + bt->rows[i] * 40, *dst = bt->x + i * 40;
        double g = (dst[0] - src[0]) * 2.0;   /* bin 0 has std 2 */
        EXPECT(g >= -6.0 - 1e-4 && g <= 6.0 + 1e-4);
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 4; k++) {
                double want = std[k] > 0 ? g / std[k] : g;
                for (int t = 0; t < 5; t++) {
                    int j = (c * 4 + k) * 5 + t;
                    EXPECT_NEAR(dst[j] - src[j], want, 1e-4);
                }
            }
    }
    batch_iter_destroy(it);
    features_destroy(f);
}


const struct test tests_data[] = {
    TEST(test_xxh64_vectors),
    TEST(test_batches_cover_epoch),
    TEST(test_batches_thread_independent),
    TEST(test_spec_augment),
    TEST(test_mixup),
    TEST(test_time_roll),
    TEST(test_gain),
    {0},
};
