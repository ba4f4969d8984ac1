/* fft.h: real-to-complex FFT of one fixed size, the only door to FFTW (single precision).
 *
 * X[k] = sum_{j<n} x[j] exp(-2 pi i j k / n) for k = 0..n/2, unnormalised, as numpy.fft.rfft
 * and FFTW's r2c. A plan is made once per object (FFTW_ESTIMATE, so results do not depend on
 * timing) and reused; fft_forward() may be called from several threads at once on the same
 * object, each with its own buffers. Creation and destruction are serialised internally
 * (FFTW's planner is not thread-safe), so they too may be called from any thread.
 */
#ifndef BASIN_DSP_FFT_H
#define BASIN_DSP_FFT_H

struct fft;   /* opaque: hides the FFTW plan */

/* A transform of size n >= 1 (any size; powers of two and small primes are fastest).
 * Returns 0, STATUS_INVALID for n < 1, STATUS_NOMEM, or STATUS_UNSUPPORTED when FFTW cannot
 * plan it. *out is owned by the caller: fft_destroy() it. */
int fft_create(struct fft **out, int n);
void fft_destroy(struct fft *f);   /* NULL is a no-op */

int fft_size(const struct fft *f);   /* n */
int fft_bins(const struct fft *f);   /* n / 2 + 1 */

/* x (n) real -> spec (n/2 + 1) complex, interleaved (re, im): 2 * (n/2 + 1) floats. Both
 * buffers 16-byte aligned (mem_alloc gives 64) and not overlapping; x is not modified.
 * Thread-safe. */
void fft_forward(const struct fft *f, const float *x, float *spec);

#endif
