/* resample_stream.h: sample-rate conversion of a live stream, piece by piece (libsoxr).
 *
 * The streaming twin of resample.h for one mono channel: the same soxr high-quality filter
 * (SOXR_HQ, linear phase), fed as the audio arrives. Output sample j is at time j / rate_out
 * from the stream's start, as resample() gives for the whole recording, so a window cut
 * from the stream has the samples the same window of the recording, resampled at once,
 * would have (tested within 1e-6). soxr computes an output sample only once the input past
 * it (half its filter) has arrived: the output lags the input by resample_stream_delay()
 * samples, part of the listening latency. Equal rates copy, with no delay.
 *
 * One stream per resampler, used from one thread at a time.
 */
#ifndef BASIN_DSP_RESAMPLE_STREAM_H
#define BASIN_DSP_RESAMPLE_STREAM_H

struct resample_stream;

/* A resampler from rate_in to rate_out (Hz, in (0, 1e7]). 0, STATUS_INVALID naming a bad
 * rate, or STATUS_NOMEM / STATUS_NUMERIC with soxr's message. *out is owned by the caller. */
int resample_stream_create(struct resample_stream **out, double rate_in, double rate_out);
void resample_stream_destroy(struct resample_stream *r);   /* NULL is a no-op */

/* Output room enough for n_in more input samples now (it includes what is held back, which
 * grows over the first calls: ask again before each call). */
long resample_stream_max_out(const struct resample_stream *r, long n_in);
/* Take all of x (n_in samples; x NULL: the stream ended, flush what is held back) and write
 * what can be computed to y (cap >= resample_stream_max_out(r, n_in), or, to flush, at
 * least resample_stream_max_out(r, 0)); *n_out gets the samples written. 0, STATUS_INVALID
 * for too small a cap, STATUS_NUMERIC with soxr's message. */
int resample_stream_process(struct resample_stream *r, const float *x, long n_in, float *y, long cap,
                            long *n_out);
/* Output samples held back now (soxr_delay): output lags input by this much. */
double resample_stream_delay(const struct resample_stream *r);

#endif
