/* test_dsp.c: FFT, STFT, mel filterbanks, scales, z-norm, presets, the front end against
 * basin_ref.py fixtures (tests/data/dsp, see its README), and resampling.
 *
 * Fixture tolerance: |basin - ref| <= 1e-4 |ref| + atol elementwise. Features are decibels,
 * and a dB value near 0 says nothing about precision: a 1e-4 relative error in the power
 * it measures is 10 log10(1 + 1e-4) = 4.3e-4 dB wherever the value lies, so atol is
 * 4.3e-4 dB (for cpjku, whose mel bins are weighted sums of dB values, 4.3e-4 times the
 * filter's weight sum). That is the spec's 1e-4 relative, applied to the power. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/dsp/fft.h"
#include "basin/dsp/frontend.h"
#include "basin/dsp/mel.h"
#include "basin/dsp/resample.h"
#include "basin/dsp/scale.h"
#include "basin/dsp/stft.h"
#include "basin/dsp/znorm.h"
#include "test.h"

#define DATA "tests/data/dsp/"
#define DB_ATOL 4.3e-4 /* 10 log10(1 + 1e-4) */

/* ----------------------------------------------------------------------------- helpers */

/* Naive DFT in double: X (n/2 + 1 complex, interleaved) of real x (n). */
static void naive_rdft(int n, const double *x, double *spec)
{
    for (int k = 0; k <= n / 2; k++) {
        double re = 0, im = 0;
        for (int j = 0; j < n; j++) {
            double a = -2.0 * M_PI * (double)((long)j * k % n) / n;
            re += x[j] * cos(a);
            im += x[j] * sin(a);
        }
        spec[2 * k] = re;
        spec[2 * k + 1] = im;
    }
}

/* Tiny RIFF reader: 16-bit PCM mono -> float x / 32768 (soundfile's scaling). Returns the
 * sample count (0 on failure); *x is mem_alloc'd. */
static long read_wav16(const char *path, float **x, int *rate)
{
    *x = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char head[12], ch[8];
    long n = 0;
    int ok_fmt = 0;
    if (fread(head, 1, 12, f) != 12 || memcmp(head, "RIFF", 4) || memcmp(head + 8, "WAVE", 4))
        goto done;
    while (fread(ch, 1, 8, f) == 8) {
        uint32_t size = ch[4] | ch[5] << 8 | ch[6] << 16 | (uint32_t)ch[7] << 24;
        if (!memcmp(ch, "fmt ", 4)) {
            unsigned char fmt[16];
            if (size < 16 || fread(fmt, 1, 16, f) != 16) goto done;
            int tag = fmt[0] | fmt[1] << 8, chans = fmt[2] | fmt[3] << 8, bits = fmt[14] | fmt[15] << 8;
            *rate = (int)(fmt[4] | fmt[5] << 8 | fmt[6] << 16 | (uint32_t)fmt[7] << 24);
            ok_fmt = tag == 1 && chans == 1 && bits == 16;
            fseek(f, (long)(size - 16 + (size & 1)), SEEK_CUR);
        } else if (!memcmp(ch, "data", 4) && ok_fmt) {
            n = size / 2;
            unsigned char *raw = malloc(size);
            *x = mem_alloc(sizeof(float) * (size_t)n);
            if (!raw || !*x || fread(raw, 1, size, f) != size) {
                free(raw);
                mem_free(*x);
                *x = NULL;
                n = 0;
                goto done;
            }
            for (long i = 0; i < n; i++) (*x)[i] = (int16_t)(raw[2 * i] | raw[2 * i + 1] << 8) / 32768.0f;
            free(raw);
            goto done;
        } else {
            fseek(f, (long)(size + (size & 1)), SEEK_CUR);
        }
    }
done:
    fclose(f);
    return n;
}

/* Raw little-endian file of exactly n_bytes into a mem_alloc'd buffer, or NULL. */
static void *read_raw(const char *path, size_t n_bytes)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    void *p = mem_alloc(n_bytes);
    int ok = p && fread(p, 1, n_bytes, f) == n_bytes && fgetc(f) == EOF;
    fclose(f);
    if (!ok) {
        mem_free(p);
        return NULL;
    }
    return p;
}

static float *sine(long n, double hz, double rate, double amp)
{
    float *x = mem_alloc(sizeof(float) * (size_t)n);
    for (long i = 0; i < n; i++) x[i] = (float)(amp * sin(2.0 * M_PI * hz * (double)i / rate));
    return x;
}

/* ----------------------------------------------------------------------------- FFT */

static void test_fft_matches_naive_dft(void)
{
    static const int sizes[] = {1, 2, 8, 12, 90, 512, 2048};
    struct rng r;
    rng_seed(&r, 7);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int n = sizes[s];
        struct fft *f;
        REQUIRE_OK(fft_create(&f, n));
        EXPECT_EQ_INT(fft_bins(f), n / 2 + 1);
        float *x = mem_alloc(sizeof(float) * n), *spec = mem_alloc(sizeof(float) * (n + 2));
        double *xd = malloc(sizeof(double) * n), *ref = malloc(sizeof(double) * (n + 2));
        rng_fill_normal(&r, x, n, 0.0f, 1.0f);
        for (int j = 0; j < n; j++) xd[j] = x[j];
        fft_forward(f, x, spec);
        naive_rdft(n, xd, ref);
        double err = 0, norm = 0;
        for (int k = 0; k < 2 * (n / 2 + 1); k++) {
            err += (spec[k] - ref[k]) * (spec[k] - ref[k]);
            norm += ref[k] * ref[k];
        }
        EXPECT_MSG(sqrt(err) <= 1e-6 * sqrt(norm) + 1e-7, "n %d: relative L2 error %g", n,
                   sqrt(err / (norm + 1e-300)));
        free(xd);
        free(ref);
        mem_free(x);
        mem_free(spec);
        fft_destroy(f);
    }
    struct fft *f;
    EXPECT_EQ_INT(fft_create(&f, 0), STATUS_INVALID);
    EXPECT(f == NULL);
    fft_destroy(NULL);
}

static void test_fft_parseval(void)
{
    int n = 1024;
    struct fft *f;
    REQUIRE_OK(fft_create(&f, n));
    float *x = mem_alloc(sizeof(float) * n), *spec = mem_alloc(sizeof(float) * (n + 2));
    struct rng r;
    rng_seed(&r, 3);
    rng_fill_uniform(&r, x, n, -1.0f, 1.0f);
    fft_forward(f, x, spec);
    double e_t = 0, e_f = 0;
    for (int j = 0; j < n; j++) e_t += (double)x[j] * x[j];
    for (int k = 0; k <= n / 2; k++) {
        double p = (double)spec[2 * k] * spec[2 * k] + (double)spec[2 * k + 1] * spec[2 * k + 1];
        e_f += (k == 0 || k == n / 2) ? p : 2 * p; /* the one-sided spectrum counts twice */
    }
    EXPECT_NEAR(e_f / n, e_t, 1e-5 * e_t);
    mem_free(x);
    mem_free(spec);
    fft_destroy(f);
}

static void test_fft_sine_lands_in_its_bin(void)
{
    int n = 256, k0 = 37;
    struct fft *f;
    REQUIRE_OK(fft_create(&f, n));
    float *x = sine(n, k0, n, 1.0), *spec = mem_alloc(sizeof(float) * (n + 2));
    fft_forward(f, x, spec);
    int best = 0;
    double best_mag = 0, rest = 0;
    for (int k = 0; k <= n / 2; k++) {
        double m = hypot(spec[2 * k], spec[2 * k + 1]);
        if (m > best_mag) best_mag = m, best = k;
    }
    for (int k = 0; k <= n / 2; k++)
        if (k != k0) rest = fmax(rest, hypot(spec[2 * k], spec[2 * k + 1]));
    EXPECT_EQ_INT(best, k0);
    EXPECT_NEAR(best_mag, n / 2.0, 1e-3);
    EXPECT(rest < 1e-3);
    mem_free(x);
    mem_free(spec);
    fft_destroy(f);
}

/* ----------------------------------------------------------------------------- STFT */

static void test_stft_frames_window_and_reflect_padding(void)
{
    int n_fft = 16, hop = 5;
    long n = 23;
    struct stft *s;
    REQUIRE_OK(stft_create(&s, n_fft, hop, 12));
    EXPECT_EQ_INT(stft_frames(s, n), 1 + 23 / 5);
    EXPECT_EQ_INT(stft_bins(s), 9);
    /* win_length 12 centred in 16: two zeros each side, then periodic Hann of 12. */
    const float *w = stft_window(s);
    EXPECT(w[0] == 0 && w[1] == 0 && w[14] == 0 && w[15] == 0);
    EXPECT_NEAR(w[2], 0.0, 1e-7);
    EXPECT_NEAR(w[2 + 6], 1.0, 1e-7);
    EXPECT_NEAR(w[2 + 3], 0.5, 1e-7);
    float x[23], frame[16], *scratch = mem_alloc(sizeof(float) * stft_scratch_floats(s));
    for (int i = 0; i < 23; i++) x[i] = (float)(i + 1);
    /* numpy reflect padding by 8: padded[p] = x[|p - 8|] mirrored at both ends. */
    double padded[23 + 16];
    for (int p = 0; p < 23 + 16; p++) {
        int i = p - 8;
        if (i < 0) i = -i;
        if (i >= 23) i = 2 * 22 - i;
        padded[p] = x[i];
    }
    long n_t = stft_frames(s, n);
    float *power = mem_alloc(sizeof(float) * 9 * n_t), *mag = mem_alloc(sizeof(float) * 9);
    REQUIRE_OK(stft_spectrogram(s, x, n, 2, power, scratch));
    for (long t = 0; t < n_t; t++) {
        stft_frame(s, x, n, t, frame);
        double fr[16], ref[18];
        for (int j = 0; j < 16; j++) {
            EXPECT_NEAR(frame[j], padded[t * hop + j] * w[j], 1e-5);
            fr[j] = padded[t * hop + j] * w[j];
        }
        naive_rdft(16, fr, ref);
        stft_frame_spectrum(s, x, n, t, 1, mag, scratch);
        for (int k = 0; k < 9; k++) {
            double p = ref[2 * k] * ref[2 * k] + ref[2 * k + 1] * ref[2 * k + 1];
            EXPECT_NEAR(power[k * n_t + t], p, 1e-4 * (p + 1));
            EXPECT_NEAR(mag[k], sqrt(p), 1e-4 * (sqrt(p) + 1));
        }
    }
    /* Too short: reflect padding needs more than n_fft/2 samples; the error names the length. */
    EXPECT_EQ_INT(stft_spectrogram(s, x, 8, 2, power, scratch), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "8 samples") != NULL);
    REQUIRE_OK(stft_check_length(s, 9));
    struct stft *bad;
    EXPECT_EQ_INT(stft_create(&bad, 15, 4, 15), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "n_fft") != NULL);
    mem_free(power);
    mem_free(mag);
    mem_free(scratch);
    stft_destroy(s);
}

/* ----------------------------------------------------------------------------- mel, scales */

static void test_mel_scales(void)
{
    /* ref: librosa.hz_to_mel: Slaney is linear (f / (200/3)) below 1 kHz, 15 at 1 kHz. */
    EXPECT_NEAR(mel_from_hz(1000.0, MEL_SCALE_SLANEY), 15.0, 1e-12);
    EXPECT_NEAR(mel_from_hz(440.0, MEL_SCALE_SLANEY), 6.6, 1e-12);
    EXPECT_NEAR(mel_from_hz(6400.0, MEL_SCALE_SLANEY), 42.0, 1e-12);
    EXPECT_NEAR(mel_from_hz(700.0, MEL_SCALE_HTK), 2595.0 * log10(2.0), 1e-9);
    for (double hz = 0; hz < 24000; hz += 123.4) {
        EXPECT_NEAR(mel_to_hz(mel_from_hz(hz, MEL_SCALE_SLANEY), MEL_SCALE_SLANEY), hz, 1e-9);
        EXPECT_NEAR(mel_to_hz(mel_from_hz(hz, MEL_SCALE_HTK), MEL_SCALE_HTK), hz, 1e-9);
    }
}

static void test_mel_filterbank_matches_torchaudio(void)
{
    struct frontend_params p;
    REQUIRE_OK(frontend_preset(&p, "panns16k"));
    int k_n = p.n_fft / 2 + 1, m_n = p.n_mels;
    double *ref = read_raw(DATA "panns16k_melfb.f64", sizeof(double) * m_n * k_n);
    REQUIRE(ref);
    double *fb = malloc(sizeof(double) * m_n * k_n), top = 0;
    mel_filterbank(fb, p.sample_rate_hz, p.n_fft, m_n, p.fmin_hz, p.fmax_hz, p.mel_scale,
                   p.mel_norm);
    for (long i = 0; i < (long)m_n * k_n; i++) top = fmax(top, ref[i]);
    /* torch.linspace and numpy's rounding differ in the last bits only. */
    EXPECT_TENSOR_NEAR(fb, ref, (long)m_n * k_n, 1e-12 * top, 1e-9);
    /* The sparse bank holds the same weights, and applies them as the dense product does. */
    struct mel_bank *b;
    REQUIRE_OK(mel_bank_create(&b, p.sample_rate_hz, p.n_fft, m_n, p.fmin_hz, p.fmax_hz,
                               p.mel_scale, p.mel_norm));
    EXPECT_EQ_INT(mel_bank_empty(b), 0);
    float *x = mem_alloc(sizeof(float) * k_n), y[64];
    struct rng r;
    rng_seed(&r, 5);
    rng_fill_uniform(&r, x, k_n, 0.0f, 10.0f);
    mel_bank_apply(b, x, y, 1);
    for (int m = 0; m < m_n; m++) {
        int start, len;
        const float *w = mel_bank_filter(b, m, &start, &len);
        double want = 0, got = 0;
        for (int k = 0; k < k_n; k++) {
            want += fb[(long)m * k_n + k] * x[k];
            if (k < start || k >= start + len) EXPECT(fb[(long)m * k_n + k] == 0.0);
            else got += (double)w[k - start] * x[k];
        }
        EXPECT_NEAR(y[m], want, 1e-5 * want);
        EXPECT_NEAR(got, want, 1e-6 * want);
    }
    /* Too many mels for the FFT size leave empty filters (librosa warns and keeps them). */
    struct mel_bank *crowded;
    REQUIRE_OK(mel_bank_create(&crowded, 8000, 64, 60, 0, 4000, MEL_SCALE_SLANEY, MEL_NORM_SLANEY));
    EXPECT(mel_bank_empty(crowded) > 0);
    mel_bank_destroy(crowded);
    /* HTK scale and no normalisation: peaks of 1. */
    mel_filterbank(fb, 16000, 512, 40, 0, 8000, MEL_SCALE_HTK, MEL_NORM_NONE);
    for (int m = 0; m < 40; m++) {
        double peak = 0;
        for (int k = 0; k < 257; k++) peak = fmax(peak, fb[(long)m * 257 + k]);
        EXPECT(peak > 0.5 && peak <= 1.0);
    }
    mem_free(x);
    mel_bank_destroy(b);
    free(fb);
    mem_free(ref);
}

static void test_scale_log10_and_db(void)
{
    /* Fast log10 vs libm over the whole range of powers the front end sees. */
    int n = 4000;
    float *x = mem_alloc(sizeof(float) * n), *y = mem_alloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) x[i] = (float)pow(10.0, -30.0 + 60.0 * i / (n - 1)) * (1.0f + 0.37f * (i % 7));
    x[0] = 1.0f;
    x[1] = 2.0f;
    x[2] = 1.41421356f;
    scale_log10(n, y, x);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double want = log10((double)x[i]);
        worst = fmax(worst, fabs(y[i] - want) / (fabs(want) + 1.0));
    }
    EXPECT_MSG(worst < 3e-7, "fast log10 relative error %g", worst);
    float p[4] = {0.0f, 1e-12f, 1.0f, 100.0f}, d[4];
    float top = scale_db(4, d, p, 1e-10f, 10.0f);
    EXPECT_NEAR(d[0], -100.0, 1e-4);
    EXPECT_NEAR(d[1], -100.0, 1e-4);
    EXPECT_NEAR(d[2], 0.0, 1e-6);
    EXPECT_NEAR(d[3], 20.0, 1e-5);
    EXPECT_NEAR(top, 20.0, 1e-5);
    scale_floor(4, d, top - 80.0f);
    EXPECT_NEAR(d[0], -60.0, 1e-4);
    EXPECT_NEAR(d[3], 20.0, 1e-5);
    mem_free(x);
    mem_free(y);
}

static void test_a_weighting(void)
{
    /* IEC 61672 table (rounded to 0.1 dB), and librosa's -80 dB clip (which also catches 0 Hz). */
    static const double hz[] = {0.0, 10.0, 100.0, 1000.0, 10000.0};
    static const double db[] = {-80.0, -70.4, -19.1, 0.0, -2.5};
    for (int i = 0; i < 5; i++) EXPECT_NEAR(scale_a_weighting(hz[i], -80.0), db[i], 0.06);
    EXPECT_NEAR(scale_a_weighting(1000.0, -80.0), 0.0, 0.01);
    EXPECT_NEAR(scale_a_weighting(5.0, -80.0), -80.0, 1e-12);
}

/* ----------------------------------------------------------------------------- z-norm */

static void test_znorm_accumulator(void)
{
    int f_n = 3;
    long lens[3] = {5, 1, 9};
    struct rng r;
    rng_seed(&r, 11);
    struct znorm all, a, b;
    REQUIRE_OK(znorm_init(&all, f_n));
    REQUIRE_OK(znorm_init(&a, f_n));
    REQUIRE_OK(znorm_init(&b, f_n));
    float *blocks[3];
    double sum[3] = {0}, sum2[3] = {0};
    long count = 0;
    for (int i = 0; i < 3; i++) {
        blocks[i] = mem_alloc(sizeof(float) * f_n * lens[i]);
        rng_fill_normal(&r, blocks[i], f_n * lens[i], 1000.0f, 2.0f); /* large mean: stability */
        for (int f = 0; f < f_n; f++)
            for (long t = 0; t < lens[i]; t++) {
                double v = blocks[i][f * lens[i] + t];
                sum[f] += v;
            }
        count += lens[i];
        znorm_add(&all, blocks[i], lens[i]);
        znorm_add(i < 2 ? &a : &b, blocks[i], lens[i]);
    }
    float mean[3], std[3], mean2[3], std2[3];
    REQUIRE_OK(znorm_finish(&all, mean, std));
    znorm_merge(&a, &b);
    REQUIRE_OK(znorm_finish(&a, mean2, std2));
    for (int f = 0; f < f_n; f++) {
        double mu = sum[f] / count;
        for (int i = 0; i < 3; i++)
            for (long t = 0; t < lens[i]; t++) {
                double d = blocks[i][f * lens[i] + t] - mu;
                sum2[f] += d * d;
            }
        EXPECT_NEAR(mean[f], mu, 1e-4);
        EXPECT_NEAR(std[f], sqrt(sum2[f] / (count - 1)), 1e-5); /* unbiased, as torch.std */
        EXPECT_NEAR(mean2[f], mean[f], 1e-4);
        EXPECT_NEAR(std2[f], std[f], 1e-5);
    }
    /* Applying the statistics of one block to itself gives mean 0 and (unbiased) std 1. */
    struct znorm one;
    REQUIRE_OK(znorm_init(&one, f_n));
    znorm_add(&one, blocks[2], lens[2]);
    REQUIRE_OK(znorm_finish(&one, mean, std));
    znorm_apply(f_n, lens[2], blocks[2], mean, std);
    for (int f = 0; f < f_n; f++) {
        double s = 0, s2 = 0;
        for (long t = 0; t < lens[2]; t++) s += blocks[2][f * lens[2] + t];
        for (long t = 0; t < lens[2]; t++) s2 += pow(blocks[2][f * lens[2] + t] - s / lens[2], 2);
        EXPECT_NEAR(s / lens[2], 0.0, 1e-4);
        EXPECT_NEAR(sqrt(s2 / (lens[2] - 1)), 1.0, 1e-4);
    }
    /* A constant bin is only centred; fewer than two frames cannot give a std. */
    float c[2] = {4.0f, 4.0f}, m1 = 4.0f, s0 = 0.0f;
    znorm_apply(1, 2, c, &m1, &s0);
    EXPECT(c[0] == 0.0f && c[1] == 0.0f);
    struct znorm z;
    REQUIRE_OK(znorm_init(&z, 1));
    znorm_add(&z, c, 1);
    EXPECT_EQ_INT(znorm_finish(&z, mean, std), STATUS_INVALID);
    znorm_fini(&z);
    znorm_fini(&one);
    znorm_fini(&all);
    znorm_fini(&a);
    znorm_fini(&b);
    znorm_fini(&z); /* twice: safe */
    for (int i = 0; i < 3; i++) mem_free(blocks[i]);
}

/* ----------------------------------------------------------------------------- params */

static void test_presets_and_params(void)
{
    const char *const *names = frontend_preset_names();
    EXPECT_STR(names[0], FRONTEND_DEFAULT_PRESET);
    int n = 0;
    for (; names[n]; n++) {
        struct frontend_params p;
        REQUIRE_OK(frontend_preset(&p, names[n]));
        EXPECT_STR(p.preset, names[n]);
        REQUIRE_OK(frontend_params_validate(&p));
    }
    EXPECT_EQ_INT(n, 5);
    struct frontend_params p, q;
    EXPECT_EQ_INT(frontend_preset(&p, "nope"), STATUS_NOT_FOUND);
    EXPECT(strstr(status_detail(), "cpjku") != NULL);
    /* basin_ref.PRESETS, field by field. */
    REQUIRE_OK(frontend_preset(&p, "cpjku"));
    EXPECT(p.sample_rate_hz == 22050 && p.n_fft == 2048 && p.hop == 512 && p.win_length == 2048);
    EXPECT(p.n_mels == 256 && p.fmin_hz == 0.0 && p.fmax_hz == 11025.0 && p.top_db == 80.0);
    EXPECT(p.scale == FRONTEND_SCALE_A_WEIGHTED_DB_THEN_MEL && p.znorm == 1 && p.amin == 1e-10);
    REQUIRE_OK(frontend_preset(&p, "sp4asc"));
    EXPECT(p.sample_rate_hz == 44100 && p.n_fft == 2048 && p.hop == 1024 && p.n_mels == 256);
    EXPECT(p.fmax_hz == 22050.0 && p.scale == FRONTEND_SCALE_DB && p.top_db == 0.0);
    REQUIRE_OK(frontend_preset(&p, "panns16k"));
    EXPECT(p.sample_rate_hz == 16000 && p.n_fft == 512 && p.hop == 160 && p.n_mels == 64);
    EXPECT(p.fmin_hz == 50.0 && p.fmax_hz == 8000.0);
    REQUIRE_OK(frontend_preset(&p, "panns32k"));
    EXPECT(p.sample_rate_hz == 32000 && p.n_fft == 1024 && p.hop == 320 && p.n_mels == 64);
    EXPECT(p.fmin_hz == 50.0 && p.fmax_hz == 14000.0);

    /* JSON and key-by-key round trip. */
    REQUIRE_OK(frontend_preset(&p, "cpjku"));
    char *json, text[64];
    REQUIRE_OK(frontend_params_to_json(&p, &json));
    size_t len = strlen(json);
    EXPECT(strstr(json, "\"sr\":22050") && strstr(json, "\"scale\":\"a_weighted_db_then_mel\""));
    EXPECT(strstr(json, "\"amin\":1e-10") && strstr(json, "\"top_db\":80"));
    EXPECT(strstr(json, "\"center\":true") && json[len - 1] == '}');
    /* ... and back, whole: the same parameters, and an old writer's missing keys keep the
     * named preset's values. */
    struct frontend_params back;
    REQUIRE_OK(frontend_params_from_json(&back, json, "fe"));
    EXPECT(frontend_params_diff(&p, &back) == NULL);
    EXPECT_STR(back.preset, "cpjku");
    mem_free(json);
    REQUIRE_OK(frontend_params_from_json(&back, "{\"preset\":\"sp4asc\",\"n_mels\":128}", "fe"));
    EXPECT_EQ_INT(back.n_mels, 128);
    EXPECT_EQ_INT(back.sample_rate_hz, 44100);
    EXPECT_EQ_INT(frontend_params_from_json(&back, "{\"preset\":\"demo\",\"sr\":\"fast\"}", "m: basin.frontend"),
                  STATUS_FORMAT);
    EXPECT(strstr(status_detail(), "m: basin.frontend") && strstr(status_detail(), "sr"));
    EXPECT_EQ_INT(frontend_params_from_json(&back, "[1,2]", "fe"), STATUS_FORMAT);
    REQUIRE_OK(frontend_preset(&q, "sp4asc"));
    for (const char *const *k = frontend_params_keys(); *k; k++) {
        REQUIRE_OK(frontend_params_get(&p, *k, text, sizeof text));
        REQUIRE_OK(frontend_params_set(&q, *k, text));
    }
    EXPECT(frontend_params_diff(&p, &q) == NULL);
    EXPECT_STR(q.preset, "cpjku");
    REQUIRE_OK(frontend_params_set(&q, "top_db", "null"));
    EXPECT_STR(frontend_params_diff(&p, &q), "top_db");
    REQUIRE_OK(frontend_params_set(&q, "sr", "22050.0"));
    EXPECT_EQ_INT(frontend_params_set(&q, "sr", "fast"), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "sr") != NULL);
    EXPECT_EQ_INT(frontend_params_set(&q, "scale", "log"), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "scale 'log'") != NULL);
    EXPECT_EQ_INT(frontend_params_set(&q, "window", "hamming"), STATUS_UNSUPPORTED);
    EXPECT_EQ_INT(frontend_params_set(&q, "hop_ms", "10"), STATUS_NOT_FOUND);

    /* Validation names the field. */
    static const struct {
        const char *key, *value, *word;
    } bad[] = {{"fmax", "30000", "fmax"}, {"n_fft", "1023", "n_fft"}, {"hop", "0", "hop"},
               {"win_length", "4096", "win_length"}, {"power", "3", "power"},
               {"amin", "0", "amin"}, {"n_mels", "0", "n_mels"}, {"fmin", "12000", "fmax"},
               {"preset", "my \"name\"", "preset"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        REQUIRE_OK(frontend_preset(&q, "cpjku"));
        REQUIRE_OK(frontend_params_set(&q, bad[i].key, bad[i].value));
        EXPECT_EQ_INT(frontend_params_validate(&q), STATUS_INVALID);
        EXPECT_MSG(strstr(status_detail(), bad[i].word) != NULL, "%s=%s: '%s'", bad[i].key,
                   bad[i].value, status_detail());
    }
}

/* ----------------------------------------------------------------------------- front end */

/* The front end against a naive twin in double (naive DFT per frame, dense filterbank,
 * libm logs) on a small configuration, for every scale and both powers. */
static void naive_frontend(const struct frontend_params *p, const float *x, long n, double *y)
{
    int n_fft = p->n_fft, k_n = n_fft / 2 + 1, m_n = p->n_mels;
    long n_t = 1 + n / p->hop;
    double *fb = malloc(sizeof(double) * m_n * k_n), *spec = malloc(sizeof(double) * n_t * k_n);
    double *fr = malloc(sizeof(double) * n_fft), *c = malloc(sizeof(double) * (n_fft + 2));
    mel_filterbank(fb, p->sample_rate_hz, n_fft, m_n, p->fmin_hz, p->fmax_hz, p->mel_scale,
                   p->mel_norm);
    for (long t = 0; t < n_t; t++) {
        for (int j = 0; j < n_fft; j++) {
            long i = t * p->hop + j - n_fft / 2;
            if (i < 0) i = -i;
            if (i >= n) i = 2 * (n - 1) - i;
            fr[j] = x[i] * (0.5 - 0.5 * cos(2 * M_PI * j / n_fft));
        }
        naive_rdft(n_fft, fr, c);
        for (int k = 0; k < k_n; k++) {
            double pw = c[2 * k] * c[2 * k] + c[2 * k + 1] * c[2 * k + 1];
            spec[t * k_n + k] = p->power == 2 ? pw : sqrt(pw);
        }
    }
    if (p->scale == FRONTEND_SCALE_A_WEIGHTED_DB_THEN_MEL) {
        double top = -INFINITY;
        for (long i = 0; i < n_t * k_n; i++) {
            spec[i] = 10 * log10(fmax(spec[i], p->amin));
            top = fmax(top, spec[i]);
        }
        for (long t = 0; t < n_t; t++)
            for (int k = 0; k < k_n; k++) {
                double *v = &spec[t * k_n + k];
                if (p->top_db > 0) *v = fmax(*v, top - p->top_db);
                *v += scale_a_weighting((double)k * p->sample_rate_hz / n_fft, -80.0);
            }
    }
    double top = -INFINITY;
    for (int m = 0; m < m_n; m++)
        for (long t = 0; t < n_t; t++) {
            double s = 0;
            for (int k = 0; k < k_n; k++) s += fb[(long)m * k_n + k] * spec[t * k_n + k];
            if (p->scale == FRONTEND_SCALE_DB) s = (p->power == 2 ? 10 : 20) * log10(fmax(s, p->amin));
            y[m * n_t + t] = s;
            top = fmax(top, s);
        }
    if (p->scale == FRONTEND_SCALE_DB && p->top_db > 0)
        for (long i = 0; i < m_n * n_t; i++) y[i] = fmax(y[i], top - p->top_db);
    free(fb);
    free(spec);
    free(fr);
    free(c);
}

static void test_frontend_matches_naive_twin(void)
{
    struct frontend_params p;
    REQUIRE_OK(frontend_preset(&p, "demo"));
    strcpy(p.preset, "tiny");
    p.sample_rate_hz = 8000;
    p.n_fft = 64;
    p.win_length = 64;
    p.hop = 24;
    p.n_mels = 10;
    p.fmin_hz = 0;
    p.fmax_hz = 4000;
    long n = 1000;
    float *x = mem_alloc(sizeof(float) * n);
    struct rng r;
    rng_seed(&r, 9);
    for (long i = 0; i < n; i++)
        x[i] = (float)(0.4 * sin(2 * M_PI * 700 * i / 8000.0)) + 0.01f * (float)rng_normal(&r);
    for (int i = 0; i < 100; i++) x[i] = 0.0f; /* silence: amin and top_db bite */
    static const struct {
        enum frontend_scale scale;
        int power;
        double top_db;
        enum mel_scale mel;
        enum mel_norm norm;
    } cases[] = {
        {FRONTEND_SCALE_DB, 2, 0, MEL_SCALE_SLANEY, MEL_NORM_SLANEY},
        {FRONTEND_SCALE_DB, 1, 40, MEL_SCALE_HTK, MEL_NORM_NONE},
        {FRONTEND_SCALE_LINEAR, 2, 0, MEL_SCALE_SLANEY, MEL_NORM_SLANEY},
        {FRONTEND_SCALE_A_WEIGHTED_DB_THEN_MEL, 2, 80, MEL_SCALE_SLANEY, MEL_NORM_SLANEY},
        {FRONTEND_SCALE_A_WEIGHTED_DB_THEN_MEL, 2, 0, MEL_SCALE_SLANEY, MEL_NORM_SLANEY},
    };
    long n_t = 1 + n / p.hop;
    float *y = mem_alloc(sizeof(float) * p.n_mels * n_t);
    double *want = malloc(sizeof(double) * p.n_mels * n_t);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        p.scale = cases[c].scale;
        p.power = cases[c].power;
        p.top_db = cases[c].top_db;
        p.mel_scale = cases[c].mel;
        p.mel_norm = cases[c].norm;
        struct frontend *fe;
        struct frontend_work *w;
        REQUIRE_OK(frontend_create(&fe, &p));
        REQUIRE_OK(frontend_work_create(&w, fe));
        EXPECT_EQ_INT(frontend_frames(fe, n), n_t);
        REQUIRE_OK(frontend_compute(fe, w, x, n, y));
        naive_frontend(&p, x, n, want);
        double top = 0;
        for (long i = 0; i < p.n_mels * n_t; i++) top = fmax(top, fabs(want[i]));
        double atol = p.scale == FRONTEND_SCALE_LINEAR ? 1e-6 * top : 1e-3;
        EXPECT_TENSOR_NEAR(y, want, p.n_mels * n_t, atol, 1e-4);
        frontend_work_destroy(w);
        frontend_destroy(fe);
    }
    free(want);
    mem_free(y);
    mem_free(x);
}

/* Features of the committed WAV against basin_ref.py's output (see the file comment). */
static void check_fixture(const char *preset)
{
    char path[256];
    struct frontend_params p;
    REQUIRE_OK(frontend_preset(&p, preset));
    float *x;
    int rate = 0;
    snprintf(path, sizeof path, DATA "%s.wav", preset);
    long n = read_wav16(path, &x, &rate);
    REQUIRE(n > 0);
    EXPECT_EQ_INT(rate, p.sample_rate_hz);
    struct frontend *fe;
    struct frontend_work *w;
    REQUIRE_OK(frontend_create(&fe, &p));
    REQUIRE_OK(frontend_work_create(&w, fe));
    long n_t = frontend_frames(fe, n), size = (long)p.n_mels * n_t;
    snprintf(path, sizeof path, DATA "%s.f32", preset);
    float *ref = read_raw(path, sizeof(float) * size);
    REQUIRE(ref); /* also checks the shape: the file holds exactly (F, T) floats */
    float *y = mem_alloc(sizeof(float) * size);
    REQUIRE_OK(frontend_compute(fe, w, x, n, y));
    /* Per-row absolute floor (see the file comment); cpjku rows sum dB values. */
    struct mel_bank *b;
    REQUIRE_OK(mel_bank_create(&b, p.sample_rate_hz, p.n_fft, p.n_mels, p.fmin_hz, p.fmax_hz,
                               p.mel_scale, p.mel_norm));
    double worst_rel = 0, worst_abs = 0;
    for (int m = 0; m < p.n_mels; m++) {
        double atol = DB_ATOL;
        if (p.scale == FRONTEND_SCALE_A_WEIGHTED_DB_THEN_MEL) {
            int start, len;
            const float *wm = mel_bank_filter(b, m, &start, &len);
            double sum = 0;
            for (int j = 0; j < len; j++) sum += wm[j];
            atol = DB_ATOL * sum;
        }
        EXPECT_TENSOR_NEAR(y + m * n_t, ref + m * n_t, n_t, atol, 1e-4);
        for (long t = 0; t < n_t; t++) {
            double d = fabs(y[m * n_t + t] - ref[m * n_t + t]);
            worst_abs = fmax(worst_abs, d);
            worst_rel = fmax(worst_rel, d / fmax(fabs(ref[m * n_t + t]), 1.0));
        }
    }
    if (getenv("VERBOSE") && atoi(getenv("VERBOSE")))
        printf("  %s: (%d, %ld), max |diff| %.3g, max |diff| / max(|ref|, 1) %.3g\n", preset,
               p.n_mels, n_t, worst_abs, worst_rel);
    mel_bank_destroy(b);
    mem_free(y);
    mem_free(ref);
    mem_free(x);
    frontend_work_destroy(w);
    frontend_destroy(fe);
}

static void test_fixture_cpjku(void) { check_fixture("cpjku"); }
static void test_fixture_sp4asc(void) { check_fixture("sp4asc"); }
static void test_fixture_panns16k(void) { check_fixture("panns16k"); }
static void test_fixture_panns32k(void) { check_fixture("panns32k"); }

/* As basin_ref's selftest: a 1 kHz sine peaks in the mel bin weighing the 1 kHz FFT bin most. */
static void test_sine_peaks_in_its_mel_bin(void)
{
    for (const char *const *name = frontend_preset_names(); *name; name++) {
        struct frontend_params p;
        REQUIRE_OK(frontend_preset(&p, *name));
        long n = 2L * p.sample_rate_hz;
        float *x = sine(n, 1000.0, p.sample_rate_hz, 0.5);
        struct frontend *fe;
        struct frontend_work *w;
        REQUIRE_OK(frontend_create(&fe, &p));
        REQUIRE_OK(frontend_work_create(&w, fe));
        long n_t = frontend_frames(fe, n);
        EXPECT_EQ_INT(n_t, 1 + n / p.hop);
        float *y = mem_alloc(sizeof(float) * p.n_mels * n_t);
        REQUIRE_OK(frontend_compute(fe, w, x, n, y));
        int peak = 0, want = 0;
        double best = -INFINITY, best_w = 0;
        for (int m = 0; m < p.n_mels; m++) {
            double s = 0;
            for (long t = 0; t < n_t; t++) s += y[m * n_t + t];
            if (s > best) best = s, peak = m;
        }
        int k1 = (int)lround(1000.0 * p.n_fft / p.sample_rate_hz);
        double *fb = malloc(sizeof(double) * p.n_mels * (p.n_fft / 2 + 1));
        mel_filterbank(fb, p.sample_rate_hz, p.n_fft, p.n_mels, p.fmin_hz, p.fmax_hz,
                       p.mel_scale, p.mel_norm);
        for (int m = 0; m < p.n_mels; m++)
            if (fb[(long)m * (p.n_fft / 2 + 1) + k1] > best_w) best_w = fb[(long)m * (p.n_fft / 2 + 1) + k1], want = m;
        EXPECT_MSG(abs(peak - want) <= 1, "%s: peak mel bin %d, expected %d", *name, peak, want);
        free(fb);
        mem_free(y);
        mem_free(x);
        frontend_work_destroy(w);
        frontend_destroy(fe);
    }
}

static void test_frontend_batch_equals_single_and_checks_lengths(void)
{
    struct frontend_params p;
    REQUIRE_OK(frontend_preset(&p, "cpjku"));
    struct frontend *fe;
    struct frontend_work *w;
    REQUIRE_OK(frontend_create(&fe, &p));
    REQUIRE_OK(frontend_work_create(&w, fe));
    enum { N = 5 };
    long lens[N] = {30000, 5000, 22050, 1025, 40000};
    float *x[N], *y[N], *one = mem_alloc(sizeof(float) * 256 * (1 + 40000 / 512));
    struct rng r;
    rng_seed(&r, 21);
    for (int i = 0; i < N; i++) {
        x[i] = mem_alloc(sizeof(float) * lens[i]);
        rng_fill_normal(&r, x[i], lens[i], 0.0f, 0.1f);
        y[i] = mem_alloc(sizeof(float) * 256 * frontend_frames(fe, lens[i]));
    }
    threads_set(2);
    REQUIRE_OK(frontend_compute_batch(fe, N, (const float *const *)x, lens, y));
    REQUIRE_OK(frontend_compute_batch(fe, N, (const float *const *)x, lens, y)); /* pool reused */
    for (int i = 0; i < N; i++) {
        REQUIRE_OK(frontend_compute(fe, w, x[i], lens[i], one));
        EXPECT(memcmp(one, y[i], sizeof(float) * 256 * frontend_frames(fe, lens[i])) == 0);
    }
    EXPECT_EQ_INT(frontend_min_samples(fe), 1025);
    lens[3] = 1024;
    EXPECT_EQ_INT(frontend_compute_batch(fe, N, (const float *const *)x, lens, y), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "clip 3") && strstr(status_detail(), "1024 samples"));
    EXPECT_EQ_INT(frontend_compute(fe, w, x[3], 1024, one), STATUS_INVALID);
    for (int i = 0; i < N; i++) {
        mem_free(x[i]);
        mem_free(y[i]);
    }
    mem_free(one);
    frontend_work_destroy(w);
    frontend_destroy(fe);
    frontend_destroy(NULL);
    frontend_work_destroy(NULL);
}

/* ----------------------------------------------------------------------------- resampling */

/* Frequency from rising zero crossings (linear interpolation) and amplitude from the RMS,
 * over the middle half of y (away from the clip edges). */
static void sine_measure(const float *y, long n, double rate, double *hz, double *amp)
{
    long a = n / 4, b = 3 * n / 4;
    double first = -1, last = -1, s2 = 0;
    int crossings = 0;
    for (long i = a; i < b; i++) {
        s2 += (double)y[i] * y[i];
        if (y[i] < 0 && y[i + 1] >= 0) {
            double t = i + y[i] / (double)(y[i] - y[i + 1]);
            if (first < 0) first = t;
            last = t;
            crossings++;
        }
    }
    *hz = (crossings - 1) / ((last - first) / rate);
    *amp = sqrt(2.0 * s2 / (double)(b - a));
}

static void test_resample_sine(void)
{
    long n = 44100;
    float *x = sine(n, 1000.0, 44100.0, 0.5);
    static const double rates[] = {22050.0, 16000.0};
    for (int i = 0; i < 2; i++) {
        long cap = resample_max_frames(n, 44100.0, rates[i]), n_out;
        float *y = mem_alloc(sizeof(float) * cap);
        REQUIRE_OK(resample(x, n, 1, RESAMPLE_INTERLEAVED, 44100.0, rates[i], y, cap, &n_out));
        EXPECT_EQ_INT(n_out, (long)rates[i]);
        double hz, amp;
        sine_measure(y, n_out, rates[i], &hz, &amp);
        EXPECT_NEAR(hz, 1000.0, 0.01);
        EXPECT_NEAR(amp, 0.5, 1e-3);
        /* soxr's delay is compensated: output sample j is at time j / rate. */
        for (long j = n_out / 4; j < 3 * n_out / 4; j += 97)
            EXPECT_NEAR(y[j], 0.5 * sin(2 * M_PI * 1000.0 * j / rates[i]), 2e-3);
        mem_free(y);
    }
    /* Odd lengths round to nearest (halves up). */
    long cap = resample_max_frames(12345, 44100, 22050), n_out;
    float *y = mem_alloc(sizeof(float) * cap);
    REQUIRE_OK(resample(x, 12345, 1, RESAMPLE_INTERLEAVED, 44100, 22050, y, cap, &n_out));
    EXPECT_EQ_INT(n_out, 6173);
    EXPECT_EQ_INT(resample(x, 12345, 1, RESAMPLE_INTERLEAVED, 44100, 22050, y, 10, &n_out),
                  STATUS_INVALID);
    EXPECT_EQ_INT(resample(x, 100, 1, RESAMPLE_INTERLEAVED, 0, 22050, y, cap, &n_out),
                  STATUS_INVALID);
    mem_free(y);
    mem_free(x);
}

static void test_resample_layouts_agree(void)
{
    long n = 4410;
    float *mono[2] = {sine(n, 440.0, 44100.0, 0.5), sine(n, 3000.0, 44100.0, 0.25)};
    float *inter = mem_alloc(sizeof(float) * 2 * n), *planar = mem_alloc(sizeof(float) * 2 * n);
    for (long i = 0; i < n; i++) {
        for (int c = 0; c < 2; c++) {
            inter[2 * i + c] = mono[c][i];
            planar[c * n + i] = mono[c][i];
        }
    }
    long cap = resample_max_frames(n, 44100, 16000), n1, n2, n3;
    float *yi = mem_alloc(sizeof(float) * 2 * cap), *yp = mem_alloc(sizeof(float) * 2 * cap);
    float *ym = mem_alloc(sizeof(float) * cap);
    REQUIRE_OK(resample(inter, n, 2, RESAMPLE_INTERLEAVED, 44100, 16000, yi, cap, &n1));
    REQUIRE_OK(resample(planar, n, 2, RESAMPLE_PLANAR, 44100, 16000, yp, cap, &n2));
    EXPECT_EQ_INT(n1, 1600);
    EXPECT_EQ_INT(n2, n1);
    for (int c = 0; c < 2; c++) {
        REQUIRE_OK(resample(mono[c], n, 1, RESAMPLE_PLANAR, 44100, 16000, ym, cap, &n3));
        EXPECT_EQ_INT(n3, n1);
        for (long i = 0; i < n1; i++) {
            EXPECT_NEAR(yi[2 * i + c], ym[i], 1e-6);
            EXPECT_NEAR(yp[c * n2 + i], ym[i], 1e-6); /* planar output is packed */
        }
    }
    /* Equal rates copy. */
    mem_free(yp);
    yp = mem_alloc(sizeof(float) * 2 * resample_max_frames(n, 44100, 44100));
    REQUIRE_OK(resample(planar, n, 2, RESAMPLE_PLANAR, 44100, 44100, yp,
                        resample_max_frames(n, 44100, 44100), &n2));
    EXPECT_EQ_INT(n2, n);
    EXPECT(memcmp(yp, planar, sizeof(float) * 2 * n) == 0);
    for (int c = 0; c < 2; c++) mem_free(mono[c]);
    mem_free(inter);
    mem_free(planar);
    mem_free(yi);
    mem_free(yp);
    mem_free(ym);
}

/* Several threads share one frontend, each with its own work, and agree with one thread. */
struct thread_job {
    const struct frontend *fe;
    const float *x;
    long n;
    float *y;
    int rc;
};

static void *thread_run(void *arg)
{
    struct thread_job *j = arg;
    struct frontend_work *w;
    /* Plans made and destroyed concurrently: FFTW's planner runs under fft.c's lock. */
    for (int rep = 0; rep < 4; rep++) {
        struct fft *f;
        if ((j->rc = fft_create(&f, 480 + 32 * rep))) return NULL;
        fft_destroy(f);
    }
    j->rc = frontend_work_create(&w, j->fe);
    for (int rep = 0; rep < 3 && !j->rc; rep++) j->rc = frontend_compute(j->fe, w, j->x, j->n, j->y);
    frontend_work_destroy(w);
    return NULL;
}

static void test_frontend_shared_across_threads(void)
{
    struct frontend_params p;
    REQUIRE_OK(frontend_preset(&p, "panns16k"));
    struct frontend *fe;
    REQUIRE_OK(frontend_create(&fe, &p));
    long n = 16000;
    float *x = sine(n, 1234.0, 16000, 0.3);
    long size = 64 * frontend_frames(fe, n);
    struct thread_job jobs[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = (struct thread_job){fe, x, n, mem_alloc(sizeof(float) * size), 0};
        pthread_create(&th[i], NULL, thread_run, &jobs[i]);
    }
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++) {
        EXPECT_EQ_INT(jobs[i].rc, 0);
        EXPECT(memcmp(jobs[i].y, jobs[0].y, sizeof(float) * size) == 0);
    }
    for (int i = 0; i < 3; i++) mem_free(jobs[i].y);
    mem_free(x);
    frontend_destroy(fe);
}

const struct test tests_dsp[] = {
    TEST(test_fft_matches_naive_dft),
    TEST(test_fft_parseval),
    TEST(test_fft_sine_lands_in_its_bin),
    TEST(test_stft_frames_window_and_reflect_padding),
    TEST(test_mel_scales),
    TEST(test_mel_filterbank_matches_torchaudio),
    TEST(test_scale_log10_and_db),
    TEST(test_a_weighting),
    TEST(test_znorm_accumulator),
    TEST(test_presets_and_params),
    TEST(test_frontend_matches_naive_twin),
    TEST(test_fixture_cpjku),
    TEST(test_fixture_sp4asc),
    TEST(test_fixture_panns16k),
    TEST(test_fixture_panns32k),
    TEST(test_sine_peaks_in_its_mel_bin),
    TEST(test_frontend_batch_equals_single_and_checks_lengths),
    TEST(test_frontend_shared_across_threads),
    TEST(test_resample_sine),
    TEST(test_resample_layouts_agree),
    {0},
};
