/* mel.h: mel scales and triangular mel filterbanks, exactly as librosa.filters.mel.
 *
 * Filter m (0 <= m < M) over FFT bin k (0 <= k < K = n_fft/2 + 1, frequency k * rate / n_fft
 * Hz) is the triangle through the mel points m, m+1, m+2 of M + 2 points equally spaced on
 * the mel scale from fmin to fmax, evaluated in Hz; with Slaney ("area") normalisation each
 * triangle is scaled by 2 / (width in Hz), so filters have equal area. Identical to
 * torchaudio.functional.melscale_fbanks(norm="slaney", mel_scale="slaney") (transposed).
 *
 * The dense filterbank is computed in double (for tests and export); a mel_bank keeps each
 * filter's non-zero range only, in float, and applies it to one spectrum at a time.
 */
#ifndef BASIN_DSP_MEL_H
#define BASIN_DSP_MEL_H

enum mel_scale {
    MEL_SCALE_SLANEY,   /* linear below 1 kHz, logarithmic above (Auditory Toolbox) */
    MEL_SCALE_HTK,      /* 2595 log10(1 + f / 700) */
};

enum mel_norm {
    MEL_NORM_NONE,      /* triangles peak at 1 */
    MEL_NORM_SLANEY,    /* equal area: triangle scaled by 2 / (f[m+2] - f[m]) */
};

double mel_from_hz(double hz, enum mel_scale scale);
double mel_to_hz(double mel, enum mel_scale scale);

/* fb (M, K) in double, K = n_fft/2 + 1. Needs 0 <= fmin < fmax, n_mels >= 1, n_fft >= 2. */
void mel_filterbank(double *fb, double rate_hz, int n_fft, int n_mels, double fmin_hz,
                    double fmax_hz, enum mel_scale scale, enum mel_norm norm);

struct mel_bank;   /* opaque: sparse filters */

/* The same filters in sparse form. Returns 0, STATUS_INVALID naming a bad argument, or
 * STATUS_NOMEM. *out is owned by the caller. */
int mel_bank_create(struct mel_bank **out, double rate_hz, int n_fft, int n_mels,
                    double fmin_hz, double fmax_hz, enum mel_scale scale, enum mel_norm norm);
void mel_bank_destroy(struct mel_bank *b);   /* NULL is a no-op */

int mel_bank_mels(const struct mel_bank *b);    /* M */
int mel_bank_bins(const struct mel_bank *b);    /* K */
/* Filters with no non-zero weight (too many mels for the FFT size; librosa warns too). */
int mel_bank_empty(const struct mel_bank *b);
/* Non-zero range [*start, *start + *len) of filter m and its weights (len floats). */
const float *mel_bank_filter(const struct mel_bank *b, int m, int *start, int *len);

/* y[m * y_stride] = sum_k fb[m, k] x[k] for m < M: x (K). Thread-safe. */
void mel_bank_apply(const struct mel_bank *b, const float *x, float *y, long y_stride);

/* MEL_BLOCK spectra at once, transposed so that one weight multiplies a vector of frames:
 * y[m * y_stride + j] = sum_k fb[m, k] xt[k * MEL_BLOCK + j] for m < M, j < n_valid, with
 * xt (K, MEL_BLOCK), 32-byte aligned. The front end's fast path. Thread-safe. */
#define MEL_BLOCK 8
void mel_bank_apply_block(const struct mel_bank *b, const float *xt, float *y, long y_stride,
                          int n_valid);

#endif
