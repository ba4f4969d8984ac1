/* test_compress.c: BN folding (exact: logits within 1e-5; sp4asc: close, not equal), fp16
 * rounding by hand, int8 weights (levels per channel, zeros kept, the default model's
 * logits within a stated bound of fp32), int8 activations (one conv against an int32 twin,
 * the default model's logits and accuracy, save/load, no cost when unset), budget counts,
 * BN statistics recomputed (against a hand-computed cumulative average), and the commands. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/graph.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/data/dataset.h"
#include "basin/data/features.h"
#include "basin/data/synth.h"
#include "basin/dsp/frontend.h"
#include "basin/model/compress.h"
#include "basin/model/model.h"
#include "basin/model/prune.h"
#include "basin/model/safetensors.h"
#include "basin/train/pipeline.h"
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

/* ----------------------------------------------------------------------------- int8 activations */

/* One conv (3 -> 4 channels, 3 x 3, padding 1) as a model of its own. */
static struct model *one_conv(struct model *m)
{
    memset(m, 0, sizeof *m);
    struct graph *g = graph_create();
    if (!g) return NULL;
    int in = graph_input(g, 3);
    graph_conv2d(g, "conv", in, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0);
    if (graph_finish(g)) {
        graph_destroy(g);
        return NULL;
    }
    m->g = g;
    return m;
}

/* The int8 kernel a device would run: integer weights and activations, products summed in
 * int32, one rescale at the end: y = acc * (s_w[o] s_x) (x (3, F, T), kw (4, 3, 3, 3)). */
static void int8_twin(int F, int T, const int8_t *kx, const int8_t *kw, const double *sw, double sx, double *y)
{
    for (int o = 0; o < 4; o++)
        for (int i = 0; i < F; i++)
            for (int j = 0; j < T; j++) {
                int32_t acc = 0;
                for (int c = 0; c < 3; c++)
                    for (int a = 0; a < 3; a++)
                        for (int b = 0; b < 3; b++) {
                            int fi = i + a - 1, tj = j + b - 1;
                            if (fi < 0 || fi >= F || tj < 0 || tj >= T) continue;
                            acc += (int32_t)kw[((o * 3 + c) * 3 + a) * 3 + b] * kx[(c * F + fi) * T + tj];
                        }
                y[(o * F + i) * T + j] = acc * (sw[o] * sx);
            }
}

/* The levels of x at scale s, as an int8 kernel's input: round(x / s) clamped to +-127. */
static int8_t level(float x, float s)
{
    float q = nearbyintf(x / s);
    return (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
}

/* (a) One conv with int8 weights and calibrated int8 activations equals the int32 twin:
 * bit for bit when the scales are powers of two (every product and partial sum is then
 * exact in float: 1/128 for the weights, 1/64 for the activations), and within float
 * accumulation (2e-6 of the sum of |terms|; measured 1.2e-7) for the scales calibration
 * gives otherwise. */
static void test_int8_conv_equals_int32_twin(void)
{
    enum { F = 9, T = 11, NX = 3 * F * T, NY = 4 * F * T };
    for (int dyadic = 1; dyadic >= 0; dyadic--) {
        struct model mm, *m = one_conv(&mm);
        REQUIRE(m);
        struct graph *g = m->g;
        float *w = graph_tensor_data(g, g->nodes[1].tensor[0]);
        struct rng r;
        rng_seed(&r, 5 + dyadic);
        rng_fill_normal(&r, w, 108, 0, 0.3f);
        float x[NX];
        rng_fill_normal(&r, x, NX, 0, 0.7f);
        if (dyadic) {
            for (int k = 0; k < 108; k++) w[k] = (float)(nearbyint(fmax(-126, fmin(126, w[k] * 128))) / 128);
            for (int o = 0; o < 4; o++) w[o * 27 + o] = (o & 1 ? -127.0f : 127.0f) / 128;
            for (int k = 0; k < NX; k++) x[k] = fmaxf(-1.9f, fminf(1.9f, x[k]));
            x[17] = -127.0f / 64;
        }
        struct quant_report qr;
        compress_quantize(m, QUANT_INT8, &qr);
        struct calib_report cr;
        REQUIRE_OK(compress_calibrate(m, x, 1, 3, F, T, 1, NULL, &cr));
        EXPECT_EQ_INT(cr.n_inputs, 1);
        EXPECT_EQ_INT(g->act_quant, 1);
        double mx = 0;
        for (int k = 0; k < NX; k++) mx = fmax(mx, fabs(x[k]));
        float sx = g->nodes[1].act_scale;
        EXPECT(sx == (float)(mx / 127));
        if (dyadic) EXPECT(sx == 1.0f / 64);
        int8_t kx[NX], kw[108];
        double sw[4], y[NY];
        for (int k = 0; k < NX; k++) kx[k] = level(x[k], sx);
        for (int o = 0; o < 4; o++) {
            double wm = 0;
            for (int k = 0; k < 27; k++) wm = fmax(wm, fabs(w[o * 27 + k]));
            sw[o] = wm / 127;
            if (dyadic) EXPECT(sw[o] == 1.0 / 128);
            for (int k = 0; k < 27; k++) {
                double q = w[o * 27 + k] / sw[o];
                EXPECT(fabs(q - nearbyint(q)) < 1e-4);
                kw[o * 27 + k] = (int8_t)nearbyint(q);
            }
        }
        int8_twin(F, T, kx, kw, sw, sx, y);
        struct plan *p;
        REQUIRE_OK(plan_create(&p, g, 1, 3, F, T, 0));
        REQUIRE_OK(plan_forward(p, 1, x, 0, NULL));
        const float *out = plan_output(p);
        int bad = 0;
        double worst = 0;
        for (int k = 0; k < NY; k++) {
            double terms = 0; /* sum of |k_w k_x| s_w s_x over the output's window */
            int o = k / (F * T), i = k / T % F, j = k % T;
            for (int c = 0; c < 3; c++)
                for (int a = 0; a < 3; a++)
                    for (int b = 0; b < 3; b++) {
                        int fi = i + a - 1, tj = j + b - 1;
                        if (fi >= 0 && fi < F && tj >= 0 && tj < T)
                            terms += abs(kw[((o * 3 + c) * 3 + a) * 3 + b] * kx[(c * F + fi) * T + tj]);
                    }
            terms *= sw[o] * sx;
            double d = fabs(out[k] - y[k]);
            if (terms > 0) worst = fmax(worst, d / terms);
            bad += dyadic ? out[k] != (float)y[k] : d > 2e-6 * terms;
        }
        EXPECT_MSG(!bad, "%s scales: %d of %d outputs differ from the int32 twin (worst %.3g of the terms)",
                   dyadic ? "power-of-two" : "calibrated", bad, NY, worst);
        /* the forward quantised: the float input gives other values */
        g->act_quant = 0;
        REQUIRE_OK(plan_forward(p, 1, x, 0, NULL));
        int differ = 0;
        for (int k = 0; k < NY; k++) differ += plan_output(p)[k] != (float)y[k];
        EXPECT(differ > 0);
        plan_destroy(p);
        graph_destroy(g);
    }
}

/* The default model's features of split (n clips spread evenly, 0: all); caller destroys. */
static struct features *default_features(struct model *m, struct dataset *ds, enum dataset_split split)
{
    struct frontend_params fp;
    struct frontend *fe;
    struct features *f = NULL;
    if (pipeline_model_frontend(m, &fp) || frontend_create(&fe, &fp)) return NULL;
    const struct features_opts fo = {.in_ch = m->cfg.in_ch, .pad = FEATURES_PAD_REPEAT};
    if (features_prepare(&f, ds, split, fe, &fo, m->n_norm ? FEATURES_NORM_GIVEN : FEATURES_NORM_NONE, m->norm_mean, m->norm_std, NULL, NULL, NULL))
        f = NULL;
    frontend_destroy(fe);
    return f;
}

/* Logits (f->n, classes) of m on f; caller frees. */
static float *logits_all(struct model *m, const struct features *f)
{
    const int B = 16, M = m->cfg.classes;
    const long per = (long)f->n_channels * f->n_mels * f->n_frames;
    float *out = malloc((size_t)f->n * M * sizeof *out);
    struct plan *p;
    if (plan_create(&p, m->g, B, f->n_channels, f->n_mels, f->n_frames, 0)) return NULL;
    for (int i = 0; i < f->n; i += B) {
        int b = f->n - i < B ? f->n - i : B;
        if (plan_forward(p, b, f->x + i * per, 0, NULL)) break;
        memcpy(out + (long)i * M, plan_output(p), (size_t)b * M * sizeof *out);
    }
    plan_destroy(p);
    return out;
}

static double accuracy(const float *z, const int *labels, int n, int M)
{
    int ok = 0;
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int k = 1; k < M; k++)
            if (z[i * M + k] > z[i * M + best]) best = k;
        ok += best == labels[i];
    }
    return 100.0 * ok / n;
}

/* (b) and (c): the default model with int8 weights and int8 activations calibrated on 256
 * clips of the train split: its logits on the 450 evaluate clips stay within 8 % of their
 * largest magnitude of the fp32 ones (measured: 0.274 of 5.55, 4.9 %; int8 weights alone
 * 2.6 %), accuracy within 2 points (measured: 89.3 % -> 90.2 %; weights alone 88.9 %); the
 * scales survive save/load and give the same logits bit for bit. */
static void test_int8_activations_default_model(void)
{
    char dir[4096];
    struct dataset *ds;
    struct model *m;
    REQUIRE_OK(synth_ensure_default(dir, sizeof dir, NULL));
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    REQUIRE_OK(model_load(&m, models[3]));
    struct features *tr = default_features(m, ds, DATASET_SPLIT_TRAIN), *ev = default_features(m, ds, DATASET_SPLIT_EVAL);
    REQUIRE(tr && ev);
    const int M = m->cfg.classes, n = ev->n;
    float *z32 = logits_all(m, ev);
    struct quant_report qr;
    compress_quantize(m, QUANT_INT8, &qr);
    float *zw = logits_all(m, ev);
    struct calib_report cr;
    REQUIRE_OK(compress_calibrate(m, tr->x, tr->n, tr->n_channels, tr->n_mels, tr->n_frames, QUANT_CALIB_N, NULL, &cr));
    EXPECT_EQ_INT(cr.n_clips, 256);
    EXPECT_EQ_INT(cr.n_inputs, 28);     /* 27 convs and the classifier */
    float *z8 = logits_all(m, ev);
    REQUIRE(z32 && zw && z8);
    double d = max_diff(z32, z8, n * M), dw = max_diff(z32, zw, n * M), scale = max_abs(z32, n * M);
    double a32 = accuracy(z32, ev->labels, n, M), a8 = accuracy(z8, ev->labels, n, M);
    EXPECT_MSG(d <= 0.08 * scale, "int8 logits moved by %g of %g", d, scale);
    EXPECT_MSG(d > dw, "activations quantised moved the logits less (%g) than the weights alone (%g)", d, dw);
    EXPECT_MSG(fabs(a8 - a32) <= 2.0, "int8 accuracy %.1f vs fp32 %.1f", a8, a32);

    const char *path = test_path("int8.safetensors");
    REQUIRE_OK(model_save(m, path, 0, NULL));
    struct model *l;
    REQUIRE_OK(model_load(&l, path));
    EXPECT_EQ_INT(l->g->act_quant, m->g->act_quant);
    int same = 1;
    for (int i = 0; i < m->g->n_nodes; i++) same &= l->g->nodes[i].act_scale == m->g->nodes[i].act_scale;
    EXPECT(same);
    float *zl = logits_all(l, ev);
    REQUIRE(zl);
    EXPECT(!memcmp(zl, z8, (size_t)n * M * sizeof *zl));
    free(zl);
    model_destroy(l);
    free(z32);
    free(zw);
    free(z8);
    features_destroy(tr);
    features_destroy(ev);
    model_destroy(m);
    dataset_destroy(ds);
}

/* (d) A float model pays nothing: no basin.quant in its file, plans fuse as before, and
 * clearing the scales gives the float logits back bit for bit; a plan made before the
 * scales that fuses the convs they quantise refuses to run rather than skip them. */
static void test_int8_activations_cost_nothing_when_unset(void)
{
    struct model *m;
    REQUIRE_OK(model_load(&m, models[1])); /* sepnet: its dwpair groups fuse */
    EXPECT_EQ_INT(m->g->act_quant, 0);
    const char *path = test_path("float.safetensors");
    REQUIRE_OK(model_save(m, path, 0, NULL));
    struct st_file *f;
    REQUIRE_OK(st_load(path, &f));
    EXPECT(st_meta(f, "basin.quant") == NULL);
    st_destroy(f);
    int fd, td;
    model_default_input(m, &fd, &td);
    if (td > 120) td = 120;
    struct plan *before;
    REQUIRE_OK(plan_create(&before, m->g, 2, m->cfg.in_ch, fd, td, 0));
    int fused = 0;
    for (int i = 0; i < m->g->n_nodes; i++) fused += plan_node_fused(before, i) >= 0;
    EXPECT(fused > 0);
    int n;
    float *z0 = logits_of(m, 2, &n);
    long nx = 16L * m->cfg.in_ch * fd * td;
    float *x = malloc((size_t)nx * sizeof *x);
    struct rng r;
    rng_seed(&r, 8);
    rng_fill_normal(&r, x, nx, 0, 1);
    struct calib_report cr;
    REQUIRE_OK(compress_calibrate(m, x, 16, m->cfg.in_ch, fd, td, 16, NULL, &cr));
    EXPECT(m->g->act_quant > 0);
    EXPECT_EQ_INT(plan_forward(before, 2, x, 0, NULL), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "int8 activation scales") != NULL);
    struct plan *after;
    REQUIRE_OK(plan_create(&after, m->g, 2, m->cfg.in_ch, fd, td, 0));
    fused = 0;
    for (int i = 0; i < m->g->n_nodes; i++) fused += plan_node_fused(after, i) >= 0;
    EXPECT_EQ_INT(fused, 0);
    plan_destroy(after);
    float *zq = logits_of(m, 2, &n);
    compress_act_clear(m);
    float *z1 = logits_of(m, 2, &n);
    REQUIRE(z0 && zq && z1);
    EXPECT(memcmp(z0, zq, (size_t)n * sizeof *z0) != 0);
    EXPECT(!memcmp(z0, z1, (size_t)n * sizeof *z0));
    REQUIRE_OK(plan_forward(before, 2, x, 0, NULL));
    plan_destroy(before);
    free(x);
    free(z0);
    free(zq);
    free(z1);
    model_destroy(m);
}

/* basin.quant that does not fit the model is refused, naming the file and the layer. */
static void test_int8_bad_scales_refused(void)
{
    struct model *m;
    REQUIRE_OK(model_load(&m, models[3]));
    const char *conv = NULL;
    for (int i = 0; i < m->g->n_nodes && !conv; i++)
        if (m->g->nodes[i].op == OP_CONV2D) conv = m->g->nodes[i].name;
    REQUIRE(conv);
    char neg[200];
    snprintf(neg, sizeof neg, "{\"act_scale\": {\"%s\": -0.5}}", conv);
    const char *bad[3][2] = {{"{\"act_scale\": {\"nope\": 0.1}}", "basin.quant: 'nope' is not a conv or linear"},
                             {neg, "is not a positive number"},
                             {"{\"scales\": 1}", "basin.quant needs an 'act_scale' object"}};
    const char *path = test_path("badquant.safetensors");
    for (int k = 0; k < 3; k++) {
        const char *meta[] = {"basin.quant", bad[k][0], NULL};
        REQUIRE_OK(model_save(m, path, 0, meta));
        struct model *l = NULL;
        EXPECT_EQ_INT(model_load(&l, path), STATUS_FORMAT);
        EXPECT_MSG(strstr(status_detail(), bad[k][1]) && strstr(status_detail(), path), "%s", status_detail());
        EXPECT(l == NULL);
    }
    model_destroy(m);
}

static int cancel_at_second(void *user, const char *label, long done, long total)
{
    (void)label, (void)done, (void)total;
    return ++*(int *)user < 2;
}

/* bnstats: bn0 of cnn10 normalises the input over N, C and T per mel bin, so its new
 * running statistics are, exactly, the mean over the batches (clips 0 3 6 9, 1 4 7 and
 * 2 5 8) of each batch's mean and unbiased variance; every BN's momentum is 0.1 again; a second run gives
 * the same bits; a cancelled run and a folded model leave the statistics as they were. */
static void test_bnstats_cumulative_average(void)
{
    struct model *m;
    REQUIRE_OK(model_load(&m, models[2]));
    struct graph *g = m->g;
    int f, t, c = m->cfg.in_ch, n = 10;
    model_default_input(m, &f, &t);
    t = 40;
    long per = (long)c * f * t;
    float *x = malloc(sizeof *x * (size_t)(n * per));
    struct rng r;
    rng_seed(&r, 5);
    for (long i = 0; i < n * per; i++) x[i] = (float)(rng_normal(&r) * 3 + (i / t % f) * 0.1);
    int im = graph_find_tensor(g, "bn0.running_mean"), iv = graph_find_tensor(g, "bn0.running_var");
    REQUIRE(im >= 0 && iv >= 0);
    const long nb = g->store.n_buffers;
    float *before = malloc(sizeof *before * (size_t)nb), *first = malloc(sizeof *first * (size_t)nb);
    memcpy(before, g->store.buf, sizeof *before * (size_t)nb);
    struct bnstats_report rep;
    REQUIRE_OK(compress_update_bn(m, NULL, x, n, c, f, t, n, 4, 3, NULL, &rep));
    EXPECT_EQ_INT(rep.n_clips, 10);
    EXPECT_EQ_INT(rep.n_batches, 3);
    EXPECT(rep.n_bn > 4 && rep.channels > f && rep.mean_shift > 0 && rep.var_ratio_min <= rep.var_ratio_max);
    const float *mean = graph_tensor_data(g, im), *var = graph_tensor_data(g, iv);
    double worst = 0;
    for (int k = 0; k < f; k++) {
        double em = 0, ev = 0;
        for (int b = 0; b < 3; b++) { /* batch b: clips b, b + 3, b + 6, ... */
            double s1 = 0, s2 = 0;
            long cnt = 0;
            for (int i = b; i < n; i += 3)
                for (int ch = 0; ch < c; ch++)
                    for (int j = 0; j < t; j++) {
                        double v = x[i * per + ((long)ch * f + k) * t + j];
                        s1 += v, s2 += v * v, cnt++;
                    }
            double mu = s1 / (double)cnt;
            em += mu / 3;
            ev += (s2 - (double)cnt * mu * mu) / (double)(cnt - 1) / 3;
        }
        worst = fmax(worst, fabs(mean[k] - em) / (1 + fabs(em)));
        worst = fmax(worst, fabs(var[k] - ev) / ev);
    }
    EXPECT_MSG(worst < 1e-5, "bn0 statistics off by %g (relative)", worst);
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == OP_BATCHNORM) EXPECT(g->nodes[i].momentum == 0.1f);
    memcpy(first, g->store.buf, sizeof *first * (size_t)nb);
    REQUIRE_OK(compress_update_bn(m, NULL, x, n, c, f, t, n, 4, 3, NULL, &rep));
    EXPECT(!memcmp(first, g->store.buf, sizeof *first * (size_t)nb));
    /* cancelled after the first batch: the statistics it started from stay */
    int calls = 0;
    struct progress pr = {cancel_at_second, &calls};
    memcpy(g->store.buf, before, sizeof *before * (size_t)nb);
    EXPECT_EQ_INT(compress_update_bn(m, NULL, x, n, c, f, t, n, 4, 3, &pr, &rep), STATUS_CANCELLED);
    EXPECT(!memcmp(before, g->store.buf, sizeof *before * (size_t)nb));
    EXPECT_EQ_INT(compress_update_bn(m, NULL, x, n, c, f, t, 0, 4, 3, NULL, &rep), STATUS_INVALID);
    model_destroy(m);
    /* folded: refused, nothing changed */
    REQUIRE_OK(model_load(&m, models[3]));
    struct fold_report fr;
    compress_fold(m, FOLD_EXACT, &fr);
    model_default_input(m, &f, &t);
    t = 40;
    float *y = calloc((size_t)2 * m->cfg.in_ch * f * t, sizeof *y);
    float *buf = malloc(sizeof *buf * (size_t)m->g->store.n_buffers);
    memcpy(buf, m->g->store.buf, sizeof *buf * (size_t)m->g->store.n_buffers);
    EXPECT_EQ_INT(compress_update_bn(m, NULL, y, 2, m->cfg.in_ch, f, t, 2, 2, 3, NULL, &rep), STATUS_INVALID);
    EXPECT_MSG(strstr(status_detail(), "is folded into its conv") != NULL, "%s", status_detail());
    EXPECT(!memcmp(buf, m->g->store.buf, sizeof *buf * (size_t)m->g->store.n_buffers));
    model_destroy(m);
    free(x), free(before), free(first), free(y), free(buf);
}

/* The README's case: after one epoch (16 steps) the running statistics lag the weights and
 * the evaluation is near chance; bnstats lifts it well above, and so does train bnstats=1. */
static void test_bnstats_after_a_short_run(void)
{
    char script[512];
    snprintf(script, sizeof script,
             "data default\npreset demo\nnew cpresnet width=8 rho=5 seed=1\n"
             "train epochs=1 lr=3e-3 sched=cosine roll=20 out=%s\nbnstats\n", test_path("short-run"));
    struct cli_output o = cli_run(script);
    EXPECT_EQ_INT(o.n_errors, 0);
    const char *row = strstr(o.out, "bnstats: 28 BN layers");
    REQUIRE(row);
    row = strstr(row, "\n  all ");
    REQUIRE(row);
    long n;
    double before = -1, after = -1;
    EXPECT_EQ_INT(sscanf(row, " all %ld %lf %lf", &n, &before, &after), 3);
    EXPECT_EQ_INT(n, 450);
    EXPECT_MSG(before < 15 && after > 40, "accuracy %.1f %% before, %.1f %% after", before, after);
    /* train bnstats=1: the same recompute at the end of the run, before its evaluation */
    snprintf(script, sizeof script,
             "data default\npreset demo\nnew cpresnet width=8 rho=5 seed=1\n"
             "train epochs=1 lr=3e-3 sched=cosine roll=20 bnstats=1 out=%s\n", test_path("short-run-bn"));
    o = cli_run(script);
    EXPECT_EQ_INT(o.n_errors, 0);
    const char *ep = strstr(o.out, "epoch 1/1 ");
    double acc = -1;
    if (ep && (ep = strstr(ep, "eval acc "))) EXPECT_EQ_INT(sscanf(ep, "eval acc %lf", &acc), 1);
    EXPECT_MSG(acc > 40 && strstr(o.out, "(BN statistics recomputed)"), "%s", o.out);
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
    o = cli_run("load assets/default-model.safetensors\nquantize int4\nquantize int8 calib=evaluate\nfold mode=x\n"
                "quantize fp16 calib=train\nquantize int8 calib=nowhere\n");
    EXPECT_EQ_INT(o.n_errors, 5);
    EXPECT(strstr(o.err, "quantize: calib=: no data set open") != NULL);
    o = cli_run("load assets/default-model.safetensors\ndata default\nquantize int8 calib=train n=64\n");
    EXPECT_EQ_INT(o.n_errors, 0);
    EXPECT(strstr(o.out, "the inputs of 28 convs and linears calibrated on 64 clips of the train split") != NULL);
    EXPECT(strstr(o.out, "unseen devices") != NULL);
    o = cli_run("load assets/default-model.safetensors\nbnstats\ndata default\nbnstats n=64 batch=32\n"
                "bnstats split=nowhere\nbnstats batch=1\nbnstats depth=3\nfold\nbnstats n=8\n");
    EXPECT_EQ_INT(o.n_errors, 4);
    EXPECT(strstr(o.out, "bnstats: no data set was open: using the default one") != NULL);
    EXPECT_MSG(strstr(o.out, "bnstats: 28 BN layers (514 channels) recomputed on 500 clips of the train split, 32 batches "
                             "of up to 16") != NULL, "%s", o.out);
    EXPECT_MSG(strstr(o.out, "bnstats: 28 BN layers (") && strstr(o.out, "recomputed on 64 clips of the train split, 2 batches "
                                                                              "of up to 32"), "%s", o.out);
    EXPECT(strstr(o.out, "unseen devices") != NULL);
    EXPECT(strstr(o.err, "bnstats: split=nowhere: expected train, evaluate, test or all") != NULL);
    EXPECT(strstr(o.err, "is folded into its conv") != NULL);
    /* adaptive BN on one device: that device's clips alone; the unseen s4 gains on itself */
    o = cli_run("load assets/default-model.safetensors\ndata default\nbnstats split=evaluate device=s4\n"
                "bnstats device=zz\nbnstats device=s4\nview devices\n");
    EXPECT_EQ_INT(o.n_errors, 2);
    const char *row = strstr(o.out, "recomputed on 37 clips of the evaluate split recorded by s4, 3 batches of up to 13");
    EXPECT_MSG(row != NULL, "%s", o.out);
    double before = 0, after = 0;
    if (row && (row = strstr(row, "\n  s4 "))) EXPECT_EQ_INT(sscanf(row, " s4 unseen %*d %lf %lf", &before, &after), 2);
    EXPECT_MSG(after > before + 5, "s4: %.1f %% before, %.1f %% after", before, after);
    /* the evaluation after is the session's last: the devices view shows it */
    char bar[64];
    snprintf(bar, sizeof bar, "%.1f %% (37)", after);
    const char *view = strstr(o.out, "cpresnet on the evaluate split: ");
    EXPECT_MSG(view && (view = strstr(view, "\ns4 ")) && strstr(view, bar) && strstr(view, bar) < strchr(view + 1, '\n'),
               "%s", o.out);
    EXPECT(strstr(o.err, "bnstats: device=zz: the data set has no such device") != NULL);
    EXPECT(strstr(o.err, "bnstats: device=s4: no clip of the train split was recorded by it") != NULL);
}

const struct test tests_compress[] = {
    TEST(test_fold_exact_keeps_logits),
    TEST(test_fold_sp4asc_is_close),
    TEST(test_fp16_round_by_hand),
    TEST(test_int8_levels_and_bound),
    TEST(test_fp16_model),
    TEST(test_int8_conv_equals_int32_twin),
    TEST_HEAVY(test_int8_activations_default_model),
    TEST(test_int8_activations_cost_nothing_when_unset),
    TEST(test_int8_bad_scales_refused),
    TEST(test_bnstats_cumulative_average),
    TEST_HEAVY(test_bnstats_after_a_short_run),
    TEST(test_commands),
    {0},
};
