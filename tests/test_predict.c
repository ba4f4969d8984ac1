/* test_predict.c: prediction for one clip (train/predict.h) against the training path worked
 * by hand (features_clip, the model's normalisation, model_predict, softmax): other sample
 * rates, stereo and the channel rule, windows of a long clip, tiling of a short one,
 * seeded test-time augmentation, top-k and labels, basin.input, errors, the `predict`
 * command, and parity with the PyTorch reference (skipped without python3-torch). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/audio/audio_file.h"
#include "basin/core/loss.h"
#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/data/batch.h"
#include "basin/data/features.h"
#include "basin/dsp/frontend.h"
#include "basin/dsp/resample.h"
#include "basin/dsp/znorm.h"
#include "basin/model/model.h"
#include "basin/model/predict.h"
#include "basin/train/pipeline.h"
#include "basin/train/predict.h"
#include "test.h"
#include "util.h"

#define NC 4   /* classes */

/* A 16 kHz front end small enough for fast tests: n_fft 512, hop 256, 16 mels. */
static void params_16k(struct frontend_params *p)
{
    CHECK(!frontend_preset(p, "demo"));
    snprintf(p->preset, sizeof p->preset, "t16k");
    p->sample_rate_hz = 16000, p->n_fft = p->win_length = 512, p->hop = 256;
    p->n_mels = 16, p->fmin_hz = 0, p->fmax_hz = 8000;
}

/* util.c's fixture front end: 8 kHz, n_fft 256, hop 128, 16 mels. */
static void params_8k(struct frontend_params *p)
{
    struct frontend *fe;
    CHECK(make_fe(&fe));
    *p = *frontend_get_params(fe);
    snprintf(p->preset, sizeof p->preset, "t8k");
    frontend_destroy(fe);
}

/* A tiny sepnet (8, 16, 16, 16) of in_ch channels taking front end p. */
static struct model *tiny(int in_ch, const struct frontend_params *p, uint64_t seed)
{
    struct model_config c;
    model_config_default(&c, ARCH_SEPNET);
    c.mels = p->n_mels, c.classes = NC, c.in_ch = in_ch, c.n_channels = 4;
    c.channels[0] = 8, c.channels[1] = c.channels[2] = c.channels[3] = 16;
    struct model *m;
    if (model_create(&m, &c, seed)) return NULL;
    /* BN statistics and a larger head, so outputs depend on the input visibly */
    struct rng r;
    rng_seed(&r, seed + 100);
    for (int i = 0; i < m->g->n_tensors; i++) {
        const char *name = m->g->tensors[i].name;
        float *d = graph_tensor_data(m->g, i);
        long n = m->g->tensors[i].numel;
        if (strstr(name, "running_var")) rng_fill_uniform(&r, d, n, 0.5f, 1.5f);
        else if (strstr(name, "running_mean")) rng_fill_normal(&r, d, n, 0, 0.2f);
        else if (strstr(name, "fc") && strstr(name, "weight"))
            for (long k = 0; k < n; k++) d[k] *= 5;
    }
    if (pipeline_set_model_frontend(m, p)) {
        model_destroy(m);
        return NULL;
    }
    return m;
}

/* Broadband test audio: sines at f0 * (1 + k / 3) for k < 12 (kept below the rate's
 * Nyquist margin), an envelope, channel c at f0 * (1 + c / 2), noise of amplitude noise. */
static void fill_audio(struct audio_file *af, double f0, double noise, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    for (int c = 0; c < af->n_channels; c++) {
        float *x = audio_file_channel(af, c);
        double f = f0 * (1 + 0.5 * c), rate = af->sample_rate_hz;
        for (long t = 0; t < af->n_frames; t++) {
            double s = 0, tt = t / rate;
            for (int k = 0; k < 12; k++) {
                double fk = f * (1 + k / 3.0);
                if (fk < 0.45 * rate) s += 0.05 * sin(2 * M_PI * fk * tt + k);
            }
            x[t] = (float)(s * (1 + 0.5 * sin(2 * M_PI * 0.3 * tt)) + noise * (rng_uniform(&r) - 0.5));
        }
    }
}

static int write_af(const char *path, const struct audio_file *af)
{
    return audio_file_write(path, af, AUDIO_FILE_WAV_F32) == STATUS_OK;
}

/* The training path by hand: features_clip (channel rule, resampling, L samples, repeat
 * padding), the model's normalisation, the model, softmax -> probs (NC). */
static int ref_probs(struct model *m, const struct frontend_params *p, const struct audio_file *af, long L,
                     float *probs)
{
    struct frontend *fe = NULL;
    struct frontend_work *w = NULL;
    int s = frontend_create(&fe, p);
    if (!s) s = frontend_work_create(&w, fe);
    const int C = m->cfg.in_ch, F = p->n_mels, T = fe ? (int)frontend_frames(fe, L) : 0;
    float *y = malloc(sizeof(float) * (size_t)C * F * T);
    struct features_opts fo = {.in_ch = C, .n_samples = L, .pad = FEATURES_PAD_REPEAT, .cache_dir = ""};
    if (!s) s = features_clip(fe, w, af, &fo, y);
    if (!s && m->n_norm)
        for (int c = 0; c < C; c++) znorm_apply(F, T, y + (long)c * F * T, m->norm_mean, m->norm_std);
    if (!s) s = model_predict(m, 1, C, F, T, y, probs);
    if (!s) softmax(1, NC, probs, probs);
    free(y);
    frontend_work_destroy(w);
    frontend_destroy(fe);
    return s;
}

static double max_diff(const float *a, const float *b, int n)
{
    double d = 0;
    for (int i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* A clip at the front end's rate, exactly one window long: predict is the training path. */
static void test_predict_training_path(void)
{
    struct frontend_params p;
    params_16k(&p);
    struct model *m = tiny(1, &p, 1);
    REQUIRE(m);
    struct audio_file af;
    REQUIRE_OK(audio_file_alloc(&af, 1, 16000, 16000));
    fill_audio(&af, 300, 0.05, 1);
    struct predict_opts o = {.window_s = 1};
    struct predict_result *r;
    REQUIRE_OK(predict_clip(&r, m, &af, &o, NULL));
    float want[NC];
    REQUIRE_OK(ref_probs(m, &p, &af, 16000, want));
    EXPECT_TENSOR_NEAR(r->probs, want, NC, 1e-6, 0);
    EXPECT_EQ_INT(r->n_windows, 1);
    EXPECT_EQ_INT(r->tiled, 0);
    EXPECT_EQ_INT(r->window_from, PREDICT_WINDOW_GIVEN);
    EXPECT_EQ_INT(r->n_frames, 1 + 16000 / 256);
    EXPECT_EQ_INT(r->n_mels, 16);
    EXPECT_EQ_INT(r->window_samples, 16000);
    EXPECT_EQ_INT(r->n_samples, 16000);
    double sum = 0;
    for (int k = 0; k < NC; k++) sum += r->probs[k];
    EXPECT_NEAR(sum, 1, 1e-6);
    EXPECT(max_diff(r->probs, r->window_probs, NC) == 0);
    predict_result_destroy(r);
    predict_result_destroy(NULL);
    audio_file_fini(&af);
    model_destroy(m);
}

/* 44.1 kHz and 8 kHz files into a 16 kHz front end: resampled once (libsoxr) before the
 * front end, as training does; the same sound made at 44.1 kHz and 16 kHz gives nearly the
 * same probabilities. */
static void test_predict_other_rates(void)
{
    struct frontend_params p;
    params_16k(&p);
    struct model *m = tiny(1, &p, 2);
    REQUIRE(m);
    const int rates[2] = {44100, 8000};
    for (int i = 0; i < 2; i++) {
        struct audio_file af;
        REQUIRE_OK(audio_file_alloc(&af, 1, rates[i], rates[i]));   /* 1 s */
        fill_audio(&af, 200, 0.0, 3);
        char path[64];
        snprintf(path, sizeof path, "rate-%d.wav", rates[i]);
        REQUIRE(write_af(test_path(path), &af));
        struct predict_opts o = {.window_s = 1};
        struct predict_result *r;
        REQUIRE_OK(predict_file(&r, m, test_path(path), &o, NULL));
        EXPECT_EQ_INT(r->file_rate_hz, rates[i]);
        EXPECT_EQ_INT(r->sample_rate_hz, 16000);
        EXPECT_EQ_INT(r->n_samples, 16000);
        EXPECT_EQ_INT(r->n_windows, 1);
        float want[NC];
        REQUIRE_OK(ref_probs(m, &p, &af, 16000, want));
        EXPECT_TENSOR_NEAR(r->probs, want, NC, 1e-6, 0);
        /* the clip resampled by basin's resampler and written at 16 kHz: the same */
        struct audio_file res;
        long cap = resample_max_frames(af.n_frames, rates[i], 16000), n_out;
        REQUIRE_OK(audio_file_alloc(&res, 1, cap, 16000));
        REQUIRE_OK(resample(af.x, af.n_frames, 1, RESAMPLE_PLANAR, rates[i], 16000, res.x, cap, &n_out));
        res.n_frames = n_out;
        REQUIRE(write_af(test_path("rate-16k.wav"), &res));
        struct predict_result *q;
        REQUIRE_OK(predict_file(&q, m, test_path("rate-16k.wav"), &o, NULL));
        EXPECT_TENSOR_NEAR(q->probs, r->probs, NC, 1e-6, 0);
        if (rates[i] == 44100) {
            /* the same sound synthesised at 16 kHz */
            struct audio_file n16;
            REQUIRE_OK(audio_file_alloc(&n16, 1, 16000, 16000));
            fill_audio(&n16, 200, 0.0, 3);
            struct predict_result *s;
            REQUIRE_OK(predict_clip(&s, m, &n16, &o, NULL));
            EXPECT_MSG(max_diff(s->probs, r->probs, NC) < 2e-3, "44.1 kHz vs 16 kHz: %g", max_diff(s->probs, r->probs, NC));
            predict_result_destroy(s);
            audio_file_fini(&n16);
        }
        predict_result_destroy(q);
        predict_result_destroy(r);
        audio_file_fini(&res);
        audio_file_fini(&af);
    }
    model_destroy(m);
}

/* Stereo: a mono model gets the mean of the channels; a stereo model keeps both; a mono
 * file feeds a stereo model twice; extra channels are dropped; too few are refused. */
static void test_predict_channels(void)
{
    struct frontend_params p;
    params_16k(&p);
    struct model *mono = tiny(1, &p, 4), *stereo = tiny(2, &p, 4);
    REQUIRE(mono && stereo);
    struct audio_file st, mix, left, three, dup;
    REQUIRE_OK(audio_file_alloc(&st, 2, 16000, 16000));
    fill_audio(&st, 250, 0.02, 5);
    REQUIRE(write_af(test_path("stereo.wav"), &st));
    REQUIRE_OK(audio_file_alloc(&mix, 1, 16000, 16000));
    REQUIRE_OK(audio_file_alloc(&left, 1, 16000, 16000));
    for (long t = 0; t < 16000; t++) {
        mix.x[t] = (st.x[t] + st.x[16000 + t]) / 2.0f;
        left.x[t] = st.x[t];
    }
    struct predict_opts o = {.window_s = 1};
    struct predict_result *r, *q;
    REQUIRE_OK(predict_file(&r, mono, test_path("stereo.wav"), &o, NULL));
    EXPECT_EQ_INT(r->file_channels, 2);
    EXPECT_EQ_INT(r->n_channels, 1);
    REQUIRE_OK(predict_clip(&q, mono, &mix, &o, NULL));
    EXPECT_TENSOR_NEAR(r->probs, q->probs, NC, 1e-6, 0);
    predict_result_destroy(q);
    REQUIRE_OK(predict_clip(&q, mono, &left, &o, NULL));
    EXPECT(max_diff(r->probs, q->probs, NC) > 1e-4);   /* not just the left channel */
    predict_result_destroy(q), predict_result_destroy(r);
    /* a stereo model keeps both channels */
    float want[NC];
    REQUIRE_OK(predict_file(&r, stereo, test_path("stereo.wav"), &o, NULL));
    EXPECT_EQ_INT(r->n_channels, 2);
    REQUIRE_OK(ref_probs(stereo, &p, &st, 16000, want));
    EXPECT_TENSOR_NEAR(r->probs, want, NC, 1e-6, 0);
    REQUIRE_OK(predict_clip(&q, stereo, &mix, &o, NULL));   /* mono duplicated */
    EXPECT(max_diff(r->probs, q->probs, NC) > 1e-4);
    REQUIRE_OK(audio_file_alloc(&dup, 2, 16000, 16000));
    memcpy(dup.x, mix.x, sizeof(float) * 16000);
    memcpy(dup.x + 16000, mix.x, sizeof(float) * 16000);
    struct predict_result *d;
    REQUIRE_OK(predict_clip(&d, stereo, &dup, &o, NULL));
    EXPECT_TENSOR_NEAR(q->probs, d->probs, NC, 1e-6, 0);
    predict_result_destroy(d), predict_result_destroy(q);
    /* three channels into a stereo model: the first two */
    REQUIRE_OK(audio_file_alloc(&three, 3, 16000, 16000));
    memcpy(three.x, st.x, sizeof(float) * 32000);
    fill_audio(&left, 900, 0.3, 9);
    memcpy(three.x + 32000, left.x, sizeof(float) * 16000);
    REQUIRE_OK(predict_clip(&q, stereo, &three, &o, NULL));
    EXPECT_TENSOR_NEAR(q->probs, r->probs, NC, 1e-6, 0);
    predict_result_destroy(q), predict_result_destroy(r);
    /* two channels cannot feed three */
    struct model *tri = tiny(3, &p, 4);
    REQUIRE(tri);
    EXPECT_EQ_INT(predict_clip(&q, tri, &st, &o, NULL), STATUS_UNSUPPORTED);
    EXPECT(strstr(status_detail(), "2 channels cannot feed a 3-channel model") != NULL);
    model_destroy(tri);
    audio_file_fini(&st), audio_file_fini(&mix), audio_file_fini(&left), audio_file_fini(&three);
    audio_file_fini(&dup);
    model_destroy(mono), model_destroy(stereo);
}

/* A 25-s clip with 10-s windows (the default without basin.input): windows at 0, 10 and 15
 * s (the last ends at the clip's end), each the training path on its own samples, the
 * result their mean; with hop 5 s, four windows; a 10-s clip in 4-s windows every 3 s. */
static void test_predict_windows(void)
{
    struct frontend_params p;
    params_8k(&p);
    struct model *m = tiny(1, &p, 6);
    REQUIRE(m);
    const long L = 80000, n = 200000;
    struct audio_file af, win;
    REQUIRE_OK(audio_file_alloc(&af, 1, n, 8000));
    fill_audio(&af, 150, 0.02, 7);
    for (long t = n / 2; t < n; t++) af.x[t] *= (float)(0.2 + 3 * (t % 8000) / 8000.0);   /* changes over time */
    struct predict_result *r;
    REQUIRE_OK(predict_clip(&r, m, &af, NULL, NULL));
    EXPECT_EQ_INT(r->window_from, PREDICT_WINDOW_DEFAULT);
    EXPECT_EQ_INT(r->window_samples, L);
    EXPECT_EQ_INT(r->hop_samples, L);
    REQUIRE(r->n_windows == 3);
    EXPECT_EQ_INT(r->window_start[0], 0);
    EXPECT_EQ_INT(r->window_start[1], 80000);
    EXPECT_EQ_INT(r->window_start[2], 120000);
    EXPECT_EQ_INT(r->tiled, 0);
    float mean[NC] = {0}, w[NC];
    REQUIRE_OK(audio_file_alloc(&win, 1, L, 8000));
    for (int k = 0; k < 3; k++) {
        memcpy(win.x, af.x + r->window_start[k], sizeof(float) * L);
        REQUIRE_OK(ref_probs(m, &p, &win, L, w));
        EXPECT_TENSOR_NEAR(r->window_probs + k * NC, w, NC, 1e-6, 0);
        for (int c = 0; c < NC; c++) mean[c] += w[c] / 3;
    }
    EXPECT_TENSOR_NEAR(r->probs, mean, NC, 1e-6, 0);
    EXPECT(max_diff(r->window_probs, r->window_probs + 2 * NC, NC) > 1e-4);   /* windows differ */
    predict_result_destroy(r);
    struct predict_opts o = {.hop_s = 5};
    REQUIRE_OK(predict_clip(&r, m, &af, &o, NULL));
    EXPECT_EQ_INT(r->n_windows, 4);
    EXPECT_EQ_INT(r->window_start[3], 120000);
    predict_result_destroy(r);
    af.n_frames = 80000;   /* the first 10 s */
    o = (struct predict_opts){.window_s = 4, .hop_s = 3};
    REQUIRE_OK(predict_clip(&r, m, &af, &o, NULL));
    EXPECT_EQ_INT(r->n_windows, 3);
    EXPECT_EQ_INT(r->window_start[2], 48000);
    predict_result_destroy(r);
    o = (struct predict_opts){.window_s = 3, .hop_s = 3};   /* 0, 3, 6 s, then 7 s to the end */
    REQUIRE_OK(predict_clip(&r, m, &af, &o, NULL));
    EXPECT_EQ_INT(r->n_windows, 4);
    EXPECT_EQ_INT(r->window_start[3], 56000);
    predict_result_destroy(r);
    audio_file_fini(&win);
    audio_file_fini(&af);
    model_destroy(m);
}

/* A 3-s clip with 10-s windows: tiled to 10 s (x[i mod n]) as training pads, flagged. */
static void test_predict_short_clip_tiled(void)
{
    struct frontend_params p;
    params_8k(&p);
    struct model *m = tiny(1, &p, 8);
    REQUIRE(m);
    struct audio_file af, tiled, zero;
    REQUIRE_OK(audio_file_alloc(&af, 1, 24000, 8000));
    fill_audio(&af, 400, 0.1, 9);
    REQUIRE_OK(audio_file_alloc(&tiled, 1, 80000, 8000));
    REQUIRE_OK(audio_file_alloc(&zero, 1, 80000, 8000));
    for (long t = 0; t < 80000; t++) tiled.x[t] = af.x[t % 24000];
    memcpy(zero.x, af.x, sizeof(float) * 24000);
    struct predict_result *r, *q, *z;
    REQUIRE_OK(predict_clip(&r, m, &af, NULL, NULL));
    EXPECT_EQ_INT(r->n_windows, 1);
    EXPECT_EQ_INT(r->tiled, 1);
    EXPECT_EQ_INT(r->n_samples, 24000);
    REQUIRE_OK(predict_clip(&q, m, &tiled, NULL, NULL));
    EXPECT_EQ_INT(q->tiled, 0);
    EXPECT_TENSOR_NEAR(r->probs, q->probs, NC, 1e-6, 0);
    REQUIRE_OK(predict_clip(&z, m, &zero, NULL, NULL));
    EXPECT(max_diff(r->probs, z->probs, NC) > 1e-4);
    predict_result_destroy(r), predict_result_destroy(q), predict_result_destroy(z);
    audio_file_fini(&af), audio_file_fini(&tiled), audio_file_fini(&zero);
    model_destroy(m);
}

/* TTA: the same seed gives the same draws whatever the batch; another seed others; one
 * draw worked by hand (stripes at 0 for z-normalised features, at each bin's mean
 * otherwise); default stripe widths in SP4ASC's proportions. */
static void test_predict_tta(void)
{
    struct frontend_params p;
    params_8k(&p);
    struct model *m = tiny(1, &p, 10);
    REQUIRE(m);
    struct audio_file af;
    REQUIRE_OK(audio_file_alloc(&af, 1, 80000, 8000));
    fill_audio(&af, 180, 0.05, 11);
    struct predict_opts o = {.tta = 5, .seed = 7};
    struct predict_result *a, *b, *c, *none;
    REQUIRE_OK(predict_clip(&a, m, &af, &o, NULL));
    o.batch = 1;
    REQUIRE_OK(predict_clip(&b, m, &af, &o, NULL));
    /* the same draws; the sums may round differently: OpenBLAS's sgemm gives the classifier
     * of one row and of five different last bits (seen with its Zen kernels) */
    EXPECT_MSG(max_diff(a->probs, b->probs, NC) < 1e-6, "max diff %g", max_diff(a->probs, b->probs, NC));
    o.seed = 8;
    REQUIRE_OK(predict_clip(&c, m, &af, &o, NULL));
    EXPECT(max_diff(a->probs, c->probs, NC) > 1e-6);
    REQUIRE_OK(predict_clip(&none, m, &af, NULL, NULL));
    EXPECT(max_diff(a->probs, none->probs, NC) > 1e-6);
    double sum = 0;
    for (int k = 0; k < NC; k++) sum += a->probs[k];
    EXPECT_NEAR(sum, 1, 1e-5);
    const int T = 1 + 80000 / 128;
    EXPECT_EQ_INT(a->tta, 5);
    EXPECT_EQ_INT(a->time_stripes, 2);
    EXPECT_EQ_INT(a->time_width, (int)lround(128.0 * T / 431));
    EXPECT_EQ_INT(a->freq_stripes, 2);
    EXPECT_EQ_INT(a->freq_width, 2);   /* 32 * 16 / 256 */
    EXPECT_EQ_INT(none->tta, 0);
    predict_result_destroy(a), predict_result_destroy(b), predict_result_destroy(c);
    predict_result_destroy(none);
    /* one draw by hand, without and with basin.norm */
    struct frontend *fe;
    struct frontend_work *w;
    REQUIRE_OK(frontend_create(&fe, &p));
    REQUIRE_OK(frontend_work_create(&w, fe));
    float *y = malloc(sizeof(float) * 16 * T), want[NC];
    struct features_opts fo = {.in_ch = 1, .n_samples = 80000, .cache_dir = ""};
    struct batch_opts bo;
    batch_opts_default(&bo);
    bo.time_stripes = bo.freq_stripes = 2, bo.time_width = 40, bo.freq_width = 5;
    for (int normed = 0; normed < 2; normed++) {
        float mean[16], sd[16], fill[16];
        if (normed) {
            for (int k = 0; k < 16; k++) mean[k] = -40.0f + k, sd[k] = 12.0f;
            REQUIRE_OK(pipeline_set_model_norm(m, mean, sd, 16));
        }
        REQUIRE_OK(features_clip(fe, w, &af, &fo, y));
        if (normed) znorm_apply(16, T, y, mean, sd);
        for (int k = 0; k < 16; k++) {
            double s = 0;
            for (int t = 0; t < T; t++) s += y[k * T + t];
            fill[k] = normed ? 0.0f : (float)(s / T);
        }
        struct rng base, rd;
        rng_seed(&base, 3);
        rd = rng_split(&base, 0);
        bo.specaug_value = NAN;
        batch_spec_augment(y, 1, 16, T, &bo, &rd);
        long masked = 0;
        for (int k = 0; k < 16; k++)
            for (int t = 0; t < T; t++)
                if (isnan(y[k * T + t])) y[k * T + t] = fill[k], masked++;
        EXPECT(masked > 0);
        REQUIRE_OK(model_predict(m, 1, 1, 16, T, y, want));
        softmax(1, NC, want, want);
        struct predict_opts one = {.tta = 1, .seed = 3, .time_stripes = 2, .time_width = 40, .freq_stripes = 2,
                                   .freq_width = 5};
        REQUIRE_OK(predict_clip(&a, m, &af, &one, NULL));
        EXPECT_TENSOR_NEAR(a->probs, want, NC, 1e-6, 0);
        EXPECT_EQ_INT(a->normalised, normed);
        predict_result_destroy(a);
    }
    free(y);
    frontend_work_destroy(w);
    frontend_destroy(fe);
    audio_file_fini(&af);
    model_destroy(m);
}

/* Top-k: largest first, ties to the lower class; labels from basin.labels or "class k". */
static void test_predict_top_and_labels(void)
{
    const float probs[5] = {0.1f, 0.3f, 0.2f, 0.3f, 0.1f};
    int idx[5];
    predict_top(probs, 5, 3, idx);
    EXPECT_EQ_INT(idx[0], 1);
    EXPECT_EQ_INT(idx[1], 3);
    EXPECT_EQ_INT(idx[2], 2);
    predict_top(probs, 5, 5, idx);
    EXPECT_EQ_INT(idx[3], 0);
    EXPECT_EQ_INT(idx[4], 4);
    struct frontend_params p;
    params_8k(&p);
    struct model *m = tiny(1, &p, 12);
    REQUIRE(m);
    char buf[32];
    EXPECT_STR(predict_label(m, 3, buf, sizeof buf), "class 3");
    m->labels = mem_calloc(NC, sizeof *m->labels);
    m->n_labels = NC;
    for (int k = 0; k < NC; k++) {
        snprintf(buf, sizeof buf, "scene%d", k);
        m->labels[k] = mem_strdup(buf);
    }
    EXPECT_STR(predict_label(m, 2, buf, sizeof buf), "scene2");
    model_destroy(m);
}

/* basin.input: written by predict_input_set, kept by save and load, read at another rate,
 * by seconds or frames alone; unreadable text is an error naming it; absent: 10 s. */
static void test_predict_input_metadata(void)
{
    struct frontend_params p, p16;
    params_8k(&p);
    params_16k(&p16);
    struct model *m = tiny(1, &p, 13);
    REQUIRE(m);
    long n;
    enum predict_window_source from;
    REQUIRE_OK(predict_window(m, &p, &n, &from));
    EXPECT_EQ_INT(n, 80000);
    EXPECT_EQ_INT(from, PREDICT_WINDOW_DEFAULT);
    REQUIRE_OK(predict_input_set(m, &p, 40000));
    EXPECT_STR(m->input, "{\"sr\":8000,\"samples\":40000,\"frames\":313,\"seconds\":5.0}");
    const char *path = test_path("input.safetensors");
    REQUIRE_OK(model_save(m, path, 0, NULL));
    struct model *l;
    REQUIRE_OK(model_load(&l, path));
    EXPECT_STR(l->input, m->input);
    REQUIRE_OK(predict_window(l, &p, &n, &from));
    EXPECT_EQ_INT(n, 40000);
    EXPECT_EQ_INT(from, PREDICT_WINDOW_MODEL);
    REQUIRE_OK(predict_window(l, &p16, &n, NULL));
    EXPECT_EQ_INT(n, 80000);
    /* predict uses it: a 12-s clip in 5-s windows at 0, 5 and 7 s */
    struct audio_file af;
    REQUIRE_OK(audio_file_alloc(&af, 1, 96000, 8000));
    fill_audio(&af, 300, 0.05, 14);
    struct predict_result *r;
    REQUIRE_OK(predict_clip(&r, l, &af, NULL, NULL));
    EXPECT_EQ_INT(r->window_from, PREDICT_WINDOW_MODEL);
    EXPECT_EQ_INT(r->n_windows, 3);
    EXPECT_EQ_INT(r->window_start[2], 56000);
    predict_result_destroy(r);
    audio_file_fini(&af);
    const struct {
        const char *json;
        long want;   /* at 8 kHz, hop 128; -1: STATUS_FORMAT */
    } cases[] = {
        {"{\"seconds\": 2.5}", 20000},
        {"{\"frames\": 101}", 12800},
        {"{\"samples\": 32000, \"sr\": 16000}", 16000},
        {"{}", -1},
        {"[1, 2]", -1},
        {"{\"seconds\": -1}", -1},
        {"{\"seconds\": \"ten\"}", -1},
        {"{\"seconds\": 1e9}", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mem_free(l->input);
        l->input = mem_strdup(cases[i].json);
        int s = predict_window(l, &p, &n, NULL);
        if (cases[i].want < 0) {
            EXPECT_MSG(s == STATUS_FORMAT, "%s: status %d", cases[i].json, s);
            EXPECT(strstr(status_detail(), "basin.input") != NULL);
        } else {
            EXPECT_MSG(s == 0 && n == cases[i].want, "%s: %ld", cases[i].json, n);
        }
    }
    /* a file whose basin.input is not JSON does not load */
    const char *bad[] = {"basin.input", "{not json", NULL};
    REQUIRE_OK(model_save(m, test_path("bad-input.safetensors"), 0, NULL));
    mem_free(m->input);
    m->input = NULL;
    REQUIRE_OK(model_save(m, test_path("bad-input.safetensors"), 0, bad));
    struct model *x = NULL;
    EXPECT(model_load(&x, test_path("bad-input.safetensors")) != 0);
    EXPECT(strstr(status_detail(), "basin.input") != NULL);
    model_destroy(x);
    model_destroy(l);
    model_destroy(m);
}

static int cancel_at_first(void *user, const char *label, long done, long total)
{
    (void)user, (void)done, (void)total;
    return strcmp(label, "predict") != 0;
}

/* What predict refuses, each with a message saying what. */
static void test_predict_errors(void)
{
    struct frontend_params p, wide;
    params_8k(&p);
    struct model *m = tiny(1, &p, 15);
    REQUIRE(m);
    struct audio_file af;
    REQUIRE_OK(audio_file_alloc(&af, 1, 24000, 8000));
    fill_audio(&af, 300, 0.05, 16);
    struct predict_result *r = (struct predict_result *)1;
    wide = p;
    wide.n_mels = 32;
    struct predict_opts o = {.frontend = &wide};
    EXPECT_EQ_INT(predict_clip(&r, m, &af, &o, NULL), STATUS_MISMATCH);
    EXPECT(strstr(status_detail(), "16 mel bins") && r == NULL);
    float stats[8] = {0, 0, 0, 0, 1, 1, 1, 1};
    REQUIRE_OK(pipeline_set_model_norm(m, stats, stats + 4, 4));
    EXPECT_EQ_INT(predict_clip(&r, m, &af, NULL, NULL), STATUS_MISMATCH);
    EXPECT(strstr(status_detail(), "basin.norm") != NULL);
    mem_free(m->norm_mean), mem_free(m->norm_std);
    m->norm_mean = m->norm_std = NULL, m->n_norm = 0;
    o = (struct predict_opts){.window_s = 0.001};
    EXPECT_EQ_INT(predict_clip(&r, m, &af, &o, NULL), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "minimum") != NULL);
    o = (struct predict_opts){.window_s = 0.1};   /* 7 frames: smaller than the model takes */
    EXPECT_EQ_INT(predict_clip(&r, m, &af, &o, NULL), STATUS_MISMATCH);
    o = (struct predict_opts){.window_s = 1, .hop_s = 2};
    EXPECT_EQ_INT(predict_clip(&r, m, &af, &o, NULL), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "skip audio") != NULL);
    o = (struct predict_opts){.tta = -1};
    EXPECT_EQ_INT(predict_clip(&r, m, &af, &o, NULL), STATUS_INVALID);
    o = (struct predict_opts){.window_s = 1};
    struct progress stop = {cancel_at_first, NULL};
    EXPECT_EQ_INT(predict_clip(&r, m, &af, &o, &stop), STATUS_CANCELLED);
    EXPECT(r == NULL);
    EXPECT_EQ_INT(predict_file(&r, m, test_path("missing.wav"), NULL, NULL), STATUS_NOT_FOUND);
    EXPECT(strstr(status_detail(), "missing.wav") != NULL);
    REQUIRE(write_text(test_path("junk.wav"), "RIFF junk"));
    EXPECT(predict_file(&r, m, test_path("junk.wav"), NULL, NULL) != 0);
    EXPECT(!strncmp(status_detail(), test_path("junk.wav"), strlen(test_path("junk.wav"))));
    mem_free(m->frontend);
    m->frontend = NULL;
    EXPECT_EQ_INT(predict_clip(&r, m, &af, NULL, NULL), STATUS_NOT_FOUND);
    audio_file_fini(&af);
    model_destroy(m);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* The predict command: top-K with labels, windows and their top-1 lines, tiling, TTA, the
 * CSV (equal to predict_file's numbers); every option checked before work starts. */
static void test_predict_command(void)
{
    struct frontend_params p;
    params_8k(&p);
    struct model *m = tiny(1, &p, 17);
    REQUIRE(m);
    m->labels = mem_calloc(NC, sizeof *m->labels);
    m->n_labels = NC;
    const char *names[NC] = {"beach", "cafe", "forest", "road"};
    for (int k = 0; k < NC; k++) m->labels[k] = mem_strdup(names[k]);
    char model[600], lng[600], shrt[600], csv[600], script[12000];
    snprintf(model, sizeof model, "%s", test_path("pred-cli.safetensors"));
    snprintf(lng, sizeof lng, "%s", test_path("pred-long.wav"));
    snprintf(shrt, sizeof shrt, "%s", test_path("pred-short.wav"));
    snprintf(csv, sizeof csv, "%s", test_path("pred.csv"));
    REQUIRE_OK(model_save(m, model, 0, NULL));
    REQUIRE(write_clip(lng, 2, 200000, 8000, 220, 1));   /* 25 s, stereo */
    REQUIRE(write_clip(shrt, 1, 24000, 8000, 500, 2));   /* 3 s */
    snprintf(script, sizeof script, "load %s\npredict %s top=3 --csv %s\nclip %s\npredict tta=3 seed=4\n", model, lng,
             csv, shrt);
    struct cli_output o = cli_run(script);
    EXPECT_EQ_INT(o.n_errors, 0);
    EXPECT(strstr(o.out, "8000 Hz, 2 channels, 25.00 s; t8k front end (the model's)") != NULL);
    EXPECT(strstr(o.out, "3 windows of 10.00 s (the default: the model has no basin.input), every 10.00 s, "
                         "the last one ending at the clip's end") != NULL);
    EXPECT(strstr(o.out, "  window  start s  top-1\n") && strstr(o.out, "       3    15.00  "));
    const char *second = strstr(o.out, "\n" "one window");
    EXPECT(strstr(o.out, "   1. ") && strstr(o.out, "   3. ") && second);
    EXPECT(strstr(o.out, "   4. ") == NULL || strstr(o.out, "   4. ") > second);   /* top=3, then the default */
    EXPECT(second && strstr(second, "   4. ") != NULL);                           /* min(5, classes) */
    EXPECT(strstr(o.out, "wrote ") && strstr(o.out, "(label,probability for 4 classes)"));
    EXPECT(strstr(o.out, "one window of 10.00 s") && strstr(o.out, "tiled (repeated)"));
    EXPECT(strstr(o.out, "test-time augmentation: the mean over 3 SpecAugment draws") && strstr(o.out, "seed 4"));
    /* the CSV holds predict_file's probabilities, one row per class in class order */
    struct predict_result *r;
    REQUIRE_OK(predict_file(&r, m, lng, NULL, NULL));
    char *text = slurp(csv);
    REQUIRE(text);
    EXPECT(!strncmp(text, "label,probability\n", 18));
    EXPECT_EQ_INT(count_char(text, '\n'), 1 + NC);
    char *line = strchr(text, '\n') + 1;
    for (int k = 0; k < NC && line; k++) {
        EXPECT(!strncmp(line, names[k], strlen(names[k])) && line[strlen(names[k])] == ',');
        EXPECT_NEAR(atof(line + strlen(names[k]) + 1), r->probs[k], 1e-8);
        line = strchr(line, '\n');
        if (line) line++;
    }
    predict_result_destroy(r);
    /* option errors */
    snprintf(script, sizeof script,
             "predict\nload %s\npredict\npredict %s top=0\npredict %s top=5\npredict %s tta=-1\npredict %s tta=x\n"
             "predict %s window=0\npredict %s hop=abc\npredict %s colour=red\npredict %s %s\npredict %s --csv\n"
             "predict %s window=2 hop=3\npredict %s/none.wav\n",
             model, lng, lng, lng, lng, lng, lng, lng, lng, lng, lng, lng, test_dir());
    setenv("BASIN_ASSETS", "/nonexistent", 1); /* no default model to fall back on */
    o = cli_run(script);
    unsetenv("BASIN_ASSETS");
    EXPECT_EQ_INT(o.n_errors, 13);
    EXPECT(strstr(o.err, "predict: no model") != NULL);
    EXPECT(strstr(o.err, "predict: which clip?") != NULL);
    EXPECT(strstr(o.err, "top=0: out of range 1..100000") != NULL);
    EXPECT(strstr(o.err, "top=5: out of range 1..4 (the model's classes)") != NULL);
    EXPECT(strstr(o.err, "tta=-1: out of range 0..10000") != NULL);
    EXPECT(strstr(o.err, "tta=x: not an integer") != NULL);
    EXPECT(strstr(o.err, "window=0: seconds") != NULL);
    EXPECT(strstr(o.err, "hop=abc: seconds") != NULL);
    EXPECT(strstr(o.err, "unknown option 'colour'") != NULL);
    EXPECT(strstr(o.err, "one clip at a time") != NULL);
    EXPECT(strstr(o.err, "--csv needs a FILE") != NULL);
    EXPECT(strstr(o.err, "hop=3 is longer than window=2") != NULL);
    EXPECT(strstr(o.err, "none.wav") != NULL);
    model_destroy(m);
}

/* predict_parity.sh (make interop): basin's predict vs the PyTorch reference composed from
 * basin_ref.py's features and forward, on the same saved model and clips, within 1e-4. */
static void test_predict_parity_pytorch(void)
{
    const char *bin = getenv("BASIN_BIN");
    char out[4096], cmd[2048];
    FILE *f = fopen("../shared/peers/basin_ref.py", "r"), *g = fopen("tests/interop/predict_parity.sh", "r");
    int have = f && g && bin;
    if (f) fclose(f);
    if (g) fclose(g);
    if (!have || shell_output("/usr/bin/python3 -c 'import torch, torchaudio' 2>/dev/null", out, sizeof out) != 0) {
        printf("  (PyTorch reference unavailable: predict parity skipped; make interop runs it)\n");
        return;
    }
    snprintf(cmd, sizeof cmd, "BASIN='%s' REF=../shared/peers/basin_ref.py sh tests/interop/predict_parity.sh 2>&1", bin);
    int rc = shell_output(cmd, out, sizeof out);
    EXPECT_MSG(rc == 0, "predict_parity.sh exited %d:\n%s", rc, out);
    EXPECT(strstr(out, "predict parity long    2 windows") && strstr(out, "predict parity stereo"));
}

const struct test tests_predict[] = {
    TEST(test_predict_training_path),
    TEST(test_predict_other_rates),
    TEST(test_predict_channels),
    TEST(test_predict_windows),
    TEST(test_predict_short_clip_tiled),
    TEST(test_predict_tta),
    TEST(test_predict_top_and_labels),
    TEST(test_predict_input_metadata),
    TEST(test_predict_errors),
    TEST(test_predict_command),
    TEST_HEAVY(test_predict_parity_pytorch),
    {0},
};
