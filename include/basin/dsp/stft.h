/* stft.h: short-time Fourier transform with torch.stft / librosa.stft conventions.
 *
 * Frames are centred: frame t covers samples [t*hop - n_fft/2, t*hop + n_fft/2) of the clip
 * reflect-padded by n_fft/2 on each side (numpy "reflect": the edge sample is not repeated),
 * times a periodic Hann window of win_length samples zero-padded to n_fft at the centre.
 * A clip of n samples gives T = 1 + n / hop frames (integer division) and K = n_fft/2 + 1
 * bins. Reflect padding needs n > n_fft/2; shorter clips are an error naming their length.
 *
 * An stft object is immutable after creation and may be shared by threads; every function
 * that transforms takes the caller's scratch (stft_scratch_floats() floats, 64-byte aligned:
 * mem_alloc), so each thread brings its own.
 */
#ifndef BASIN_DSP_STFT_H
#define BASIN_DSP_STFT_H

#include <stddef.h>

struct stft;   /* opaque: window and FFT plan */

/* n_fft even and >= 2, 1 <= hop, 1 <= win_length <= n_fft. Returns 0, or STATUS_INVALID
 * naming the bad argument, or STATUS_NOMEM. *out is owned by the caller. */
int stft_create(struct stft **out, int n_fft, int hop, int win_length);
void stft_destroy(struct stft *s);   /* NULL is a no-op */

int stft_n_fft(const struct stft *s);
int stft_hop(const struct stft *s);
int stft_bins(const struct stft *s);                   /* K = n_fft/2 + 1 */
const float *stft_window(const struct stft *s);        /* (n_fft), owned by s */
long stft_frames(const struct stft *s, long n_samples); /* T = 1 + n_samples / hop */

/* 0 when a clip of n_samples can be framed (n_samples > n_fft/2), else STATUS_INVALID with
 * "clip of N samples is too short for n_fft M (reflect padding needs more than M/2)". */
int stft_check_length(const struct stft *s, long n_samples);

/* Floats of scratch the transforms below need: a frame, its spectrum and one row for
 * stft_spectrogram, carved at 64-byte boundaries from the caller's 64-byte aligned block. */
size_t stft_scratch_floats(const struct stft *s);

/* Windowed frame t (0 <= t < T) of x (n_samples) into frame (n_fft). */
void stft_frame(const struct stft *s, const float *x, long n_samples, long t, float *frame);

/* Spectrum of frame t: out (K) = |X|^power, power 1 (magnitude) or 2 (power). Returns the
 * largest value written. The clip length must have passed stft_check_length(). */
float stft_frame_spectrum(const struct stft *s, const float *x, long n_samples, long t,
                          int power, float *out, float *scratch);

/* Whole spectrogram: out (K, T) = |X|^power. Returns 0 or the stft_check_length() error. */
int stft_spectrogram(const struct stft *s, const float *x, long n_samples, int power,
                     float *out, float *scratch);

#endif
