/* test_compress.c: BN folding (exact: logits within 1e-5; sp4asc: close, not equal), fp16
 * rounding by hand, int8 weights (levels per channel, zeros kept, the default model's
 * logits within a stated bound of fp32), budget counts, and the commands. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/graph.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/model/compress.h"
#include "basin/model/model.h"
#include "basin/model/prune.h"
#include "test.h"
#include "util.h"

static const char *const models[] = {"tests/data/models/cpresnet.safetensors", "tests/data/models/sepnet.safetensors",
                                     "tests/data/models/cnn10.safetensors", "assets/default-model.safetensors"};

/* Logits (n, classes) of m on seeded noise of its default input shape, cropped in T to
 * keep the test quick; caller frees. */
static float *logits_of(struct model *m, int n, int *n_out)
{
    int f, t;
    model_default_input(m, &f, &t);
    if (t > 120) t = 120;
    long nx = (long)n * m->cfg.in_ch * f * t;
    float *x = malloc((size_t)nx * sizeof *x);
    struct rng r;
    rng_seed(&r, 31);
    rng_fill_normal(&r, x, nx, 0, 1);
    struct plan *p;
    float *out = NULL;
    if (!plan_create(&p, m->g, n, m->cfg.in_ch, f, t, 0)) {
        if (!plan_forward(p, n, x, 0, NULL)) {
            *n_out = n * m->cfg.classes;
            out = malloc((size_t)*n_out * sizeof *out);
            memcpy(out, plan_output(p), (size_t)*n_out * sizeof *out);
        }
        plan_destroy(p);
    }
    free(x);
    return out;
}

static double max_abs(const float *a, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

static double max_diff(const float *a, const float *b, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* The BN statistics of the fixtures are not trivial (they were trained a few steps), so
 * folding moves real scale into the convs. */
static void test_fold_exact_keeps_logits(void)
{
    for (int k = 0; k < 4; k++) {
        struct model *m;
        REQUIRE_OK(model_load(&m, models[k]));
        int n;
        float *before = logits_of(m, 2, &n);
        REQUIRE(before);
        struct fold_report r;
        compress_fold(m, FOLD_EXACT, &r);
        EXPECT(r.n_folded > 0);
        float *after = logits_of(m, 2, &n);
        REQUIRE(after);
        double d = max_diff(before, after, n), scale = max_abs(before, n);
        EXPECT_MSG(d <= 1e-5 * fmax(scale, 1), "%s: folded logits differ by %g (largest %g)", models[k], d, scale);
        struct budget_counts c;
        int f, t;
        model_default_input(m, &f, &t);
        REQUIRE_OK(compress_counts(m, f, t, &c));
        EXPECT_EQ_INT(c.folded, r.channels);
        EXPECT_EQ_INT(c.params_kept, c.params - r.channels);
        free(before);
        free(after);
        model_destroy(m);
    }
}

/* Without eps the logits move (eps is not negligible against small running variances) but
 * stay close: a fold, not a different model. */
static void test_fold_sp4asc_is_close(void)
{
    struct model *m;
    REQUIRE_OK(model_load(&m, models[3]));
    int n;
    float *before = logits_of(m, 2, &n);
    struct fold_report r;
    compress_fold(m, FOLD_SP4ASC, &r);
    float *after = logits_of(m, 2, &n);
    REQUIRE(before && after);
    double d = max_diff(before, after, n), scale = max_abs(before, n);
    EXPECT(d > 0);
    EXPECT_MSG(d < 0.05 * scale, "sp4asc fold moved the logits by %g of %g", d, scale);
    free(before);
    free(after);
    model_destroy(m);
}

static void test_fp16_round_by_hand(void)
{
    EXPECT(compress_fp16_round(1.0f) == 1.0f);
    EXPECT(compress_fp16_round(65504.0f) == 65504.0f);
    EXPECT(isinf(compress_fp16_round(65520.0f)));
    EXPECT(compress_fp16_round(65519.0f) == 65504.0f);
    /* 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even gives 1 */
    EXPECT(compress_fp16_round(1.0f + 0x1p-11f) == 1.0f);
    EXPECT(compress_fp16_round(1.0f + 3 * 0x1p-11f) == 1.0f + 0x1p-9f);
    EXPECT(compress_fp16_round(-0.1f) == -0.0999755859375f);
    EXPECT(compress_fp16_round(0x1p-25f) == 0.0f);          /* below half the smallest subnormal */
    EXPECT(compress_fp16_round(0x1.8p-24f) == 0x1p-23f);    /* 1.5 subnormal steps: to even (2) */
}

/* int8: each output channel holds values k * scale with |k| <= 127, its largest kept |w|
 * exactly representable (k = 127), pruned zeros stay zero; the default model's logits (30 %
 * pruned first) stay within 2 % of their largest magnitude (measured: 1.2 %). */
static void test_int8_levels_and_bound(void)
{
    struct model *m;
    REQUIRE_OK(model_load(&m, models[3]));
    REQUIRE_OK(prune_magnitude(m->g, 0.3, PRUNE_GLOBAL, NULL));
    struct graph *g = m->g;
    float *w0 = malloc((size_t)g->store.n_params * sizeof *w0);
    memcpy(w0, g->store.w, (size_t)g->store.n_params * sizeof *w0);
    int n;
    float *before = logits_of(m, 4, &n);
    struct quant_report r;
    compress_quantize(m, QUANT_INT8, &r);
    EXPECT(r.n_values > 0);
    for (int i = 0; i < g->n_tensors; i++) {
        const struct graph_tensor *t = &g->tensors[i];
        if (t->kind != TENSOR_WEIGHT) continue;
        long per = t->numel / t->shape[0];
        for (int o = 0; o < t->shape[0]; o++) {
            double mx = 0;
            for (long j = 0; j < per; j++)
                if (g->store.mask[t->offset + o * per + j] != 0) mx = fmax(mx, fabs(w0[t->offset + o * per + j]));
            if (mx == 0) continue;
            double scale = mx / 127;
            int bad = 0;
            for (long j = 0; j < per; j++) {
                long at = t->offset + o * per + j;
                double k = g->store.w[at] / scale;
                bad += fabs(k - nearbyint(k)) > 1e-3 || fabs(k) > 127.001;
                bad += w0[at] == 0 && g->store.w[at] != 0;
                bad += fabs(g->store.w[at] - w0[at]) > scale / 2 * (1 + 1e-5);
            }
            EXPECT_MSG(!bad, "%s channel %d: %d values off the int8 grid", t->name, o, bad);
        }
    }
    float *after = logits_of(m, 4, &n);
    REQUIRE(before && after);
    double d = max_diff(before, after, n), scale = max_abs(before, n);
    EXPECT_MSG(d <= 0.02 * scale, "int8 logits moved by %g of %g", d, scale);
    free(w0);
    free(before);
    free(after);
    model_destroy(m);
}

static void test_fp16_model(void)
{
    struct model *m;
    REQUIRE_OK(model_load(&m, models[3]));
    int n;
    float *before = logits_of(m, 2, &n);
    struct quant_report r;
    compress_quantize(m, QUANT_FP16, &r);
    EXPECT_EQ_INT(r.n_values, m->g->store.n_params + m->g->store.n_buffers);
    for (long i = 0; i < m->g->store.n_params; i++)
        if (compress_fp16_round(m->g->store.w[i]) != m->g->store.w[i]) {
            EXPECT(0);
            break;
        }
    float *after = logits_of(m, 2, &n);
    REQUIRE(before && after);
    EXPECT(max_diff(before, after, n) <= 2e-3 * max_abs(before, n));
    free(before);
    free(after);
    model_destroy(m);
}

static void test_commands(void)
{
    struct cli_output o = cli_run("load assets/default-model.safetensors\n"
                                  "budget macs=30M params=8k bytes=16k precision=int8\n");
    EXPECT_EQ_INT(o.n_errors, 0);
    EXPECT(strstr(o.out, "params             15,372  limit        8,000  OVER") != NULL);
    EXPECT(strstr(o.out, "the model does not fit the budget") != NULL);
    o = cli_run("load assets/default-model.safetensors\nfold\nbudget params=15k\n");
    EXPECT_EQ_INT(o.n_errors, 0);
    EXPECT(strstr(o.out, "28 BN folded") != NULL);
    EXPECT(strstr(o.out, "14,858") != NULL && strstr(o.out, "the model fits the budget") != NULL);
    o = cli_run("load assets/default-model.safetensors\nquantize int4\nquantize int8 calib=evaluate\nfold mode=x\n");
    EXPECT_EQ_INT(o.n_errors, 3);
}

const struct test tests_compress[] = {
    TEST(test_fold_exact_keeps_logits),
    TEST(test_fold_sp4asc_is_close),
    TEST(test_fp16_round_by_hand),
    TEST(test_int8_levels_and_bound),
    TEST(test_fp16_model),
    TEST(test_commands),
    {0},
};
