/* stft.c: centred, reflect-padded, Hann-windowed frames and their power or magnitude spectra.
 *
 * Key idea: the padded signal is never built. Interior frames read the clip directly; the
 * first and last few frames map padded indices back into the clip with numpy's reflect rule
 * (x[-i] = x[i], x[n-1+i] = x[n-1-i]). One real-to-complex FFT per frame (fft.c), then
 * re^2 + im^2 in one vectorised pass.
 *
 * ref: torch.stft(center=True, pad_mode="reflect", onesided=True) and librosa.stft: frames
 *      1 + n // hop, window padded to n_fft at the centre (left (n_fft - win_length) // 2).
 * ref: torch.hann_window(periodic=True): w[j] = 0.5 - 0.5 cos(2 pi j / N).
 */
#include "basin/dsp/stft.h"

#include <math.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/dsp/fft.h"

struct stft {
    int n_fft, hop, win_length;
    int n_bins;       /* K = n_fft/2 + 1 */
    float *window;    /* (n_fft) */
    struct fft *fft;
};

/* Floats rounded up to whole 64-byte lines, so carved scratch slices stay aligned. */
static size_t lines(size_t n_floats)
{
    return (n_floats + 15) / 16 * 16;
}

int stft_create(struct stft **out, int n_fft, int hop, int win_length)
{
    *out = NULL;
    if (n_fft < 2 || n_fft % 2)
        return status_set(STATUS_INVALID, "stft: n_fft %d must be even and at least 2", n_fft);
    if (hop < 1) return status_set(STATUS_INVALID, "stft: hop %d must be at least 1", hop);
    if (win_length < 1 || win_length > n_fft)
        return status_set(STATUS_INVALID, "stft: win_length %d must be in [1, n_fft %d]",
                          win_length, n_fft);
    struct stft *s = mem_calloc(1, sizeof *s);
    if (!s) return STATUS_NOMEM;
    s->n_fft = n_fft;
    s->hop = hop;
    s->win_length = win_length;
    s->n_bins = n_fft / 2 + 1;
    s->window = mem_calloc((size_t)n_fft, sizeof(float));
    int st = s->window ? fft_create(&s->fft, n_fft) : STATUS_NOMEM;
    if (st) {
        stft_destroy(s);
        return st;
    }
    /* ref: torch.stft pads a shorter window with zeros, (n_fft - win_length) // 2 on the left. */
    int left = (n_fft - win_length) / 2;
    for (int j = 0; j < win_length; j++)
        s->window[left + j] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * j / win_length));
    *out = s;
    return STATUS_OK;
}

void stft_destroy(struct stft *s)
{
    if (!s) return;
    fft_destroy(s->fft);
    mem_free(s->window);
    mem_free(s);
}

int stft_n_fft(const struct stft *s) { return s->n_fft; }
int stft_hop(const struct stft *s) { return s->hop; }
int stft_bins(const struct stft *s) { return s->n_bins; }
const float *stft_window(const struct stft *s) { return s->window; }

long stft_frames(const struct stft *s, long n_samples)
{
    return 1 + n_samples / s->hop;
}

int stft_check_length(const struct stft *s, long n_samples)
{
    /* ref: torch.nn.functional.pad(mode="reflect") needs the padding to be smaller than the
     * input, so n_fft/2 < n_samples (basin_ref.power_spectrogram raises the same). */
    if (n_samples <= s->n_fft / 2)
        return status_set(STATUS_INVALID,
                          "clip of %ld samples is too short for n_fft %d (reflect padding "
                          "needs more than %d)",
                          n_samples, s->n_fft, s->n_fft / 2);
    return STATUS_OK;
}

size_t stft_scratch_floats(const struct stft *s)
{
    /* frame (n_fft), spectrum (2K), and a row (K) for stft_spectrogram's transposition */
    return lines((size_t)s->n_fft) + lines(2 * (size_t)s->n_bins) + lines((size_t)s->n_bins);
}

void stft_frame(const struct stft *s, const float *x, long n_samples, long t, float *frame)
{
    const float *w = s->window;
    long start = t * s->hop - s->n_fft / 2;
    if (start >= 0 && start + s->n_fft <= n_samples) {
        const float *xs = x + start;
        for (int j = 0; j < s->n_fft; j++) frame[j] = xs[j] * w[j];
        return;
    }
    /* Edge frame: reflect once on either side (n_samples > n_fft/2 makes once enough). */
    for (int j = 0; j < s->n_fft; j++) {
        long p = start + j;
        if (p < 0) p = -p;
        else if (p >= n_samples) p = 2 * (n_samples - 1) - p;
        frame[j] = x[p] * w[j];
    }
}

float stft_frame_spectrum(const struct stft *s, const float *x, long n_samples, long t,
                          int power, float *out, float *scratch)
{
    CHECK(power == 1 || power == 2);
    float *frame = scratch, *spec = scratch + lines((size_t)s->n_fft);
    stft_frame(s, x, n_samples, t, frame);
    fft_forward(s->fft, frame, spec);
    float top = 0.0f;
    int k_n = s->n_bins;
#pragma omp simd reduction(max : top)
    for (int k = 0; k < k_n; k++) {
        float re = spec[2 * k], im = spec[2 * k + 1];
        float v = re * re + im * im;
        out[k] = v;
        top = v > top ? v : top;
    }
    if (power == 1) {
        for (int k = 0; k < k_n; k++) out[k] = sqrtf(out[k]);
        top = sqrtf(top);
    }
    return top;
}

int stft_spectrogram(const struct stft *s, const float *x, long n_samples, int power,
                     float *out, float *scratch)
{
    int st = stft_check_length(s, n_samples);
    if (st) return st;
    long n_t = stft_frames(s, n_samples);
    float *row = scratch + lines((size_t)s->n_fft) + lines(2 * (size_t)s->n_bins);
    for (long t = 0; t < n_t; t++) {
        stft_frame_spectrum(s, x, n_samples, t, power, row, scratch);
        for (int k = 0; k < s->n_bins; k++) out[k * n_t + t] = row[k];
    }
    return STATUS_OK;
}
