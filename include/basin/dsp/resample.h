/* resample.h: whole-clip sample-rate conversion (libsoxr, high quality).
 *
 * Any rate to any rate, any number of channels, float32. Layouts: interleaved frames
 * (x[i * C + c], as WAV files and libsndfile deliver them) or planar channels (x[c * n + i],
 * as (C, T) tensors hold them); input and output share the layout. The whole clip goes
 * through in one call and the resampler is flushed at the end, so the output has the length
 * soxr gives a complete signal: n_in * rate_out / rate_in rounded to the nearest integer
 * (halves up), with soxr's filter delay removed (output sample j is at time j / rate_out).
 * Equal rates copy. Thread-safe: every call has its own resampler, on the calling thread.
 */
#ifndef BASIN_DSP_RESAMPLE_H
#define BASIN_DSP_RESAMPLE_H

enum resample_layout { RESAMPLE_INTERLEAVED, RESAMPLE_PLANAR };

/* An upper bound on the output frames for n_in input frames (the capacity to allocate). */
long resample_max_frames(long n_in, double rate_in, double rate_out);

/* x (n_in frames of n_channels) at rate_in -> y at rate_out; y holds cap frames (cap >=
 * resample_max_frames()); *n_out gets the frames written. Planar output is packed:
 * channel c at y + c * *n_out. Returns 0, STATUS_INVALID naming a bad rate, channel count
 * or capacity, or STATUS_NUMERIC with soxr's message. */
int resample(const float *x, long n_in, int n_channels, enum resample_layout layout,
             double rate_in, double rate_out, float *y, long cap, long *n_out);

#endif
