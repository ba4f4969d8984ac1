/* test_distill.c: the distillation loss against a naive twin and finite differences, the
 * teacher's cached targets, and train's teacher= and prune= through the command. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/data/features.h"
#include "basin/model/model.h"
#include "basin/model/predict.h"
#include "basin/train/distill.h"
#include "test.h"
#include "util.h"

/* The naive twin: every quantity from its definition, in double, no shared helper. */
static double naive_kd(int n, int m, const float *z, const float *q_table, const int *rows, const int *partner,
                       const float *lambda, double alpha, double T, double hard, const float *dl_hard, double *g)
{
    double total = 0;
    for (int i = 0; i < n; i++) {
        double p[16], q[16], den = 0;
        for (int k = 0; k < m; k++) den += exp(z[i * m + k] / T);
        for (int k = 0; k < m; k++) {
            p[k] = exp(z[i * m + k] / T) / den;
            q[k] = (double)lambda[i] * q_table[rows[i] * m + k] + (1 - (double)lambda[i]) * q_table[partner[i] * m + k];
            total += q[k] * log(q[k] / p[k]);
        }
        for (int k = 0; k < m; k++) g[i * m + k] = (1 - alpha) * dl_hard[i * m + k] + alpha * T * (p[k] - q[k]) / n;
    }
    return (1 - alpha) * hard + alpha * T * T * total / n;
}

static void random_case(struct distill *d, float *q, int N, int M, float *z, int n, int *rows, int *partner,
                        float *lambda, float *dl, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int k = 0; k < M; k++) s += q[i * M + k] = (float)(0.05 + rng_uniform(&r));
        for (int k = 0; k < M; k++) q[i * M + k] = (float)(q[i * M + k] / s);
    }
    for (int i = 0; i < n * M; i++) z[i] = (float)(3 * rng_normal(&r)), dl[i] = (float)(0.1 * rng_normal(&r));
    for (int i = 0; i < n; i++)
        rows[i] = (int)rng_below(&r, (uint64_t)N), partner[i] = (int)rng_below(&r, (uint64_t)N),
        lambda[i] = (float)rng_uniform(&r);
    *d = (struct distill){.n = N, .m = M, .alpha = 0.7, .T = 2.5, .q = q};
}

static void test_kd_loss_equals_naive_twin(void)
{
    enum { N = 7, M = 5, B = 4 };
    float q[N * M], z[B * M], dl[B * M], dl0[B * M], lambda[B];
    int rows[B], partner[B];
    double g[B * M];
    struct distill d;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        random_case(&d, q, N, M, z, B, rows, partner, lambda, dl, seed);
        memcpy(dl0, dl, sizeof dl);
        double want = naive_kd(B, M, z, q, rows, partner, lambda, d.alpha, d.T, 1.3, dl0, g);
        double got = distill_loss(&d, B, z, rows, partner, lambda, 1.3, dl);
        EXPECT_NEAR(got, want, 1e-9 * fabs(want) + 1e-12);
        for (int i = 0; i < B * M; i++) EXPECT_NEAR(dl[i], g[i], 1e-6);
    }
    /* without mixup (NULL partner and lambda) q is the row's own */
    random_case(&d, q, N, M, z, B, rows, partner, lambda, dl, 9);
    for (int i = 0; i < B; i++) partner[i] = rows[i], lambda[i] = 1;
    memcpy(dl0, dl, sizeof dl);
    double want = naive_kd(B, M, z, q, rows, partner, lambda, d.alpha, d.T, 0, dl0, g);
    EXPECT_NEAR(distill_loss(&d, B, z, rows, NULL, NULL, 0, dl), want, 1e-9 * fabs(want));
}

/* The gradient is the derivative of the returned loss (hard part 0): central differences. */
static void test_kd_gradient_finite_differences(void)
{
    enum { N = 6, M = 4, B = 3 };
    float q[N * M], z[B * M], dl[B * M], lambda[B], zero[B * M];
    int rows[B], partner[B];
    struct distill d;
    random_case(&d, q, N, M, z, B, rows, partner, lambda, dl, 21);
    memset(dl, 0, sizeof dl);
    distill_loss(&d, B, z, rows, partner, lambda, 0, dl);
    for (int j = 0; j < B * M; j++) {
        const float h = 1e-2f;
        float zp[B * M], zm[B * M];
        memcpy(zp, z, sizeof z), memcpy(zm, z, sizeof z);
        zp[j] += h, zm[j] -= h;
        memset(zero, 0, sizeof zero);
        double lp = distill_loss(&d, B, zp, rows, partner, lambda, 0, zero);
        memset(zero, 0, sizeof zero);
        double lm = distill_loss(&d, B, zm, rows, partner, lambda, 0, zero);
        EXPECT_NEAR(dl[j], (lp - lm) / (2 * h), 2e-4);
    }
}

/* The cached targets are softmax(teacher logits / T) of each clip, in order. */
static void test_teacher_targets_cached(void)
{
    struct model *m;
    REQUIRE_OK(model_load(&m, "tests/data/models/sepnet.safetensors"));
    int f, t;
    model_default_input(m, &f, &t);
    t = 40;
    struct features feats = {.n = 5, .n_channels = m->cfg.in_ch, .n_mels = f, .n_frames = t, .n_classes = m->cfg.classes};
    long clip = (long)feats.n_channels * f * t;
    feats.x = malloc(sizeof(float) * (size_t)(feats.n * clip));
    struct rng r;
    rng_seed(&r, 4);
    rng_fill_normal(&r, feats.x, feats.n * clip, 0, 1);
    struct distill *d;
    REQUIRE_OK(distill_create(&d, m, &feats, 0.5, 3, NULL));
    float *z = malloc(sizeof(float) * (size_t)(feats.n * m->cfg.classes));
    REQUIRE_OK(model_predict(m, feats.n, feats.n_channels, f, t, feats.x, z));
    for (int i = 0; i < feats.n; i++) {
        double den = 0, sum = 0;
        for (int k = 0; k < m->cfg.classes; k++) den += exp(z[i * m->cfg.classes + k] / 3.0);
        for (int k = 0; k < m->cfg.classes; k++) {
            double want = exp(z[i * m->cfg.classes + k] / 3.0) / den;
            EXPECT_NEAR(d->q[i * m->cfg.classes + k], want, 1e-6);
            sum += d->q[i * m->cfg.classes + k];
        }
        EXPECT_NEAR(sum, 1, 1e-5);
    }
    struct distill *bad;
    EXPECT_EQ_INT(distill_create(&bad, m, &feats, 1.5, 3, NULL), STATUS_INVALID);
    feats.n_classes = 3;
    EXPECT_EQ_INT(distill_create(&bad, m, &feats, 0.5, 3, NULL), STATUS_MISMATCH);
    distill_destroy(d);
    free(z);
    free(feats.x);
    model_destroy(m);
}

/* train teacher=: a teacher trained on the data, then a student distilled from it; and
 * train prune=: half the prunable weights gone after a one-epoch ramp. */
static void test_train_teacher_and_prune_commands(void)
{
    const char *ds = test_path("kd-ds"), *teacher = test_path("kd-teacher.safetensors");
    char script[4096];
    snprintf(script, sizeof script,
             "synth out=%s clips=20 seconds=0.5\ndata %s\npreset demo\n"
             "new cpresnet width=4 blocks=1,1,1\ntrain epochs=1 bs=4 norm=train out=%s/t1\nsave %s\n"
             "new cpresnet width=4 blocks=1,1,1 seed=9\ntrain epochs=1 bs=4 norm=train out=%s/t2 teacher=%s kd=0.7 T=3\n"
             "train epochs=2 bs=4 out=%s/t3 prune=0.5 prune_len=1\nprune\n"
             "train epochs=1 out=%s/t4 teacher=%s/nothing.safetensors\n",
             ds, ds, ds, teacher, ds, teacher, ds, ds, ds);
    setenv("XDG_CACHE_HOME", test_path("kd-cache"), 1);
    struct cli_output c = cli_run(script);
    unsetenv("XDG_CACHE_HOME");
    EXPECT_EQ_INT(c.n_errors, 1);
    EXPECT_MSG(strstr(c.out, "distilling from the teacher (kd=0.7, T=3): its targets for ") != NULL, "%s", c.out);
    EXPECT(strstr(c.out, "trained 2 epochs") != NULL);
    EXPECT_MSG(strstr(c.out, "(50.00% of the") != NULL, "%s", c.out);
    EXPECT(strstr(c.err, "nothing.safetensors") != NULL);
}

const struct test tests_distill[] = {
    TEST(test_kd_loss_equals_naive_twin),
    TEST(test_kd_gradient_finite_differences),
    TEST(test_teacher_targets_cached),
    TEST(test_train_teacher_and_prune_commands),
    {0},
};
