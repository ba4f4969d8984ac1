/* mel.c: Slaney and HTK mel scales, librosa's triangular filterbank, and its sparse form.
 *
 * Key idea: the filterbank is computed once in double exactly as librosa does (ramps between
 * mel points converted back to Hz, then area normalisation), and each filter is kept as its
 * contiguous non-zero range. Neighbouring triangles overlap by one edge, so a spectrum of K
 * bins costs about 2K multiply-adds instead of M*K. The block form takes 8 spectra
 * transposed (bin-major), so each weight multiplies one vector of 8 frames: no horizontal
 * sums, no short-loop overhead per filter, contiguous output stores.
 *
 * ref: librosa.filters.mel (librosa 0.10), librosa.hz_to_mel / mel_to_hz (htk=False: Slaney's
 *      Auditory Toolbox, f_sp = 200/3, linear below 1 kHz, log step ln(6.4)/27 above),
 *      librosa.fft_frequencies (k * sr / n_fft), torchaudio.functional.melscale_fbanks.
 */
#include "basin/dsp/mel.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/status.h"

/* ref: librosa.hz_to_mel (htk=False) constants. */
#define SLANEY_F_SP (200.0 / 3.0)
#define SLANEY_MIN_LOG_HZ 1000.0
#define SLANEY_MIN_LOG_MEL (SLANEY_MIN_LOG_HZ / SLANEY_F_SP)
#define SLANEY_LOGSTEP (log(6.4) / 27.0)

double mel_from_hz(double hz, enum mel_scale scale)
{
    if (scale == MEL_SCALE_HTK) return 2595.0 * log10(1.0 + hz / 700.0);
    if (hz >= SLANEY_MIN_LOG_HZ)
        return SLANEY_MIN_LOG_MEL + log(hz / SLANEY_MIN_LOG_HZ) / SLANEY_LOGSTEP;
    return hz / SLANEY_F_SP;
}

double mel_to_hz(double mel, enum mel_scale scale)
{
    if (scale == MEL_SCALE_HTK) return 700.0 * (pow(10.0, mel / 2595.0) - 1.0);
    if (mel >= SLANEY_MIN_LOG_MEL)
        return SLANEY_MIN_LOG_HZ * exp(SLANEY_LOGSTEP * (mel - SLANEY_MIN_LOG_MEL));
    return SLANEY_F_SP * mel;
}

/* Hz of mel point i of n, equally spaced in mel from fmin to fmax: ref librosa.mel_frequencies
 * (np.linspace: lo + i * step, the last point exactly hi). */
static double mel_point(int i, int n, double fmin, double fmax, enum mel_scale scale)
{
    double lo = mel_from_hz(fmin, scale), hi = mel_from_hz(fmax, scale);
    return mel_to_hz(i == n - 1 ? hi : lo + i * ((hi - lo) / (n - 1)), scale);
}

/* Weight of frequency hz in the filter through mel points f[0..2] (ref: librosa.filters.mel:
 * max(0, min(lower, upper)) of the two ramps, times enorm = 2 / (f[2] - f[0])). */
static double weight(const double f[3], double hz, enum mel_norm norm)
{
    double lower = (hz - f[0]) / (f[1] - f[0]);
    double upper = (f[2] - hz) / (f[2] - f[1]);
    double w = lower < upper ? lower : upper;
    if (!(w > 0.0)) return 0.0;
    if (norm == MEL_NORM_SLANEY) w *= 2.0 / (f[2] - f[0]);
    return w;
}

static void filter_points(double f[3], int m, int n_mels, double fmin, double fmax,
                          enum mel_scale scale)
{
    for (int i = 0; i < 3; i++) f[i] = mel_point(m + i, n_mels + 2, fmin, fmax, scale);
}

void mel_filterbank(double *fb, double rate_hz, int n_fft, int n_mels, double fmin_hz,
                    double fmax_hz, enum mel_scale scale, enum mel_norm norm)
{
    CHECK(n_mels >= 1 && n_fft >= 2 && fmin_hz >= 0 && fmax_hz > fmin_hz);
    int n_bins = n_fft / 2 + 1;
    for (int m = 0; m < n_mels; m++) {
        double f[3];
        filter_points(f, m, n_mels, fmin_hz, fmax_hz, scale);
        for (int k = 0; k < n_bins; k++)
            fb[(long)m * n_bins + k] = weight(f, k * rate_hz / n_fft, norm);
    }
}

struct mel_bank {
    int n_mels, n_bins;
    int *start;    /* (M) first non-zero bin of each filter */
    int *len;      /* (M) non-zero range length (0 for an empty filter) */
    long *offset;  /* (M) where each filter's weights begin in w */
    float *w;      /* packed weights */
    int n_empty;
};

int mel_bank_create(struct mel_bank **out, double rate_hz, int n_fft, int n_mels,
                    double fmin_hz, double fmax_hz, enum mel_scale scale, enum mel_norm norm)
{
    *out = NULL;
    if (n_mels < 1) return status_set(STATUS_INVALID, "mel: n_mels %d must be at least 1", n_mels);
    if (n_fft < 2) return status_set(STATUS_INVALID, "mel: n_fft %d must be at least 2", n_fft);
    if (!(fmin_hz >= 0 && fmax_hz > fmin_hz))
        return status_set(STATUS_INVALID, "mel: need 0 <= fmin < fmax, got fmin %g Hz, fmax %g Hz",
                          fmin_hz, fmax_hz);
    int n_bins = n_fft / 2 + 1;
    struct mel_bank *b = mem_calloc(1, sizeof *b);
    if (!b) return STATUS_NOMEM;
    b->n_mels = n_mels;
    b->n_bins = n_bins;
    b->start = mem_calloc((size_t)n_mels, sizeof(int));
    b->len = mem_calloc((size_t)n_mels, sizeof(int));
    b->offset = mem_calloc((size_t)n_mels, sizeof(long));
    if (!b->start || !b->len || !b->offset) goto nomem;
    long total = 0;
    for (int m = 0; m < n_mels; m++) {
        double f[3];
        filter_points(f, m, n_mels, fmin_hz, fmax_hz, scale);
        int first = -1, last = -1;
        for (int k = 0; k < n_bins; k++)
            if (weight(f, k * rate_hz / n_fft, norm) > 0.0) {
                if (first < 0) first = k;
                last = k;
            }
        b->start[m] = first < 0 ? 0 : first;
        b->len[m] = first < 0 ? 0 : last - first + 1;
        b->offset[m] = total;
        total += b->len[m];
        b->n_empty += first < 0;
    }
    b->w = mem_alloc(sizeof(float) * (size_t)(total ? total : 1));
    if (!b->w) goto nomem;
    for (int m = 0; m < n_mels; m++) {
        double f[3];
        filter_points(f, m, n_mels, fmin_hz, fmax_hz, scale);
        for (int j = 0; j < b->len[m]; j++)
            b->w[b->offset[m] + j] = (float)weight(f, (b->start[m] + j) * rate_hz / n_fft, norm);
    }
    *out = b;
    return STATUS_OK;
nomem:
    mel_bank_destroy(b);
    return STATUS_NOMEM;
}

void mel_bank_destroy(struct mel_bank *b)
{
    if (!b) return;
    mem_free(b->start);
    mem_free(b->len);
    mem_free(b->offset);
    mem_free(b->w);
    mem_free(b);
}

int mel_bank_mels(const struct mel_bank *b) { return b->n_mels; }
int mel_bank_bins(const struct mel_bank *b) { return b->n_bins; }
int mel_bank_empty(const struct mel_bank *b) { return b->n_empty; }

const float *mel_bank_filter(const struct mel_bank *b, int m, int *start, int *len)
{
    CHECK(m >= 0 && m < b->n_mels);
    *start = b->start[m];
    *len = b->len[m];
    return b->w + b->offset[m];
}

void mel_bank_apply(const struct mel_bank *b, const float *x, float *y, long y_stride)
{
    for (int m = 0; m < b->n_mels; m++) {
        const float *w = b->w + b->offset[m], *xm = x + b->start[m];
        int n = b->len[m];
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int j = 0; j < n; j++) acc += w[j] * xm[j];
        y[m * y_stride] = acc;
    }
}

/* Eight floats as one value (GCC vector extension; one AVX register on x86-64-v3). */
typedef float block_vec __attribute__((vector_size(MEL_BLOCK * sizeof(float))));

void mel_bank_apply_block(const struct mel_bank *b, const float *xt, float *y, long y_stride,
                          int n_valid)
{
    CHECK(n_valid >= 0 && n_valid <= MEL_BLOCK);
    CHECK(((uintptr_t)xt & (sizeof(block_vec) - 1)) == 0);
    const block_vec *x = (const block_vec *)xt;
    for (int m = 0; m < b->n_mels; m++) {
        const float *w = b->w + b->offset[m];
        const block_vec *xm = x + b->start[m];
        block_vec acc = {0};
        for (int j = 0; j < b->len[m]; j++) acc += w[j] * xm[j];
        float *ym = y + m * y_stride;
        if (n_valid == MEL_BLOCK) memcpy(ym, &acc, sizeof acc);
        else
            for (int i = 0; i < n_valid; i++) ym[i] = acc[i];
    }
}
