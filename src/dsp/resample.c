/* resample.c: whole-clip resampling with libsoxr at high quality (see resample.h).
 *
 * Key idea: soxr_oneshot() is a complete stream resampler run once over the clip and
 * flushed, so the output is the full-length, delay-compensated signal. SOXR_HQ is 20-bit
 * precision (about 120 dB of stopband), linear phase, passband to 0.913 of Nyquist. Planar
 * data uses soxr's "split" types; soxr writes each output channel into its own buffer of cap
 * frames, which are then packed to (C, n_out). One thread per call (runtime spec 1), so
 * callers parallelise over clips without oversubscription.
 *
 * ref: libsoxr 0.1.3 soxr.h (soxr_oneshot, soxr_quality_spec(SOXR_HQ, 0), SOXR_FLOAT32_I/_S);
 *      librosa.resample(res_type="soxr_hq") makes the same call.
 */
#include "basin/dsp/resample.h"

#include <math.h>
#include <soxr.h>
#include <string.h>

#include "basin/core/status.h"

long resample_max_frames(long n_in, double rate_in, double rate_out)
{
    return (long)ceil((double)n_in * rate_out / rate_in) + 2;
}

int resample(const float *x, long n_in, int n_channels, enum resample_layout layout,
             double rate_in, double rate_out, float *y, long cap, long *n_out)
{
    *n_out = 0;
    if (!(rate_in > 0 && rate_in <= 1e7 && rate_out > 0 && rate_out <= 1e7))
        return status_set(STATUS_INVALID, "resample: rates %g Hz -> %g Hz must be in (0, 1e7]",
                          rate_in, rate_out);
    if (n_channels < 1 || n_channels > 256)
        return status_set(STATUS_INVALID, "resample: %d channels, expected 1..256", n_channels);
    if (n_in < 0) return status_set(STATUS_INVALID, "resample: %ld input frames", n_in);
    if (cap < resample_max_frames(n_in, rate_in, rate_out))
        return status_set(STATUS_INVALID, "resample: output capacity %ld frames, need %ld", cap,
                          resample_max_frames(n_in, rate_in, rate_out));
    if (n_in == 0) return STATUS_OK;
    if (rate_in == rate_out) {
        /* Either layout: planar channel c lands at c * n_in = c * n_out, packed already. */
        memcpy(y, x, sizeof(float) * (size_t)n_in * (size_t)n_channels);
        *n_out = n_in;
        return STATUS_OK;
    }
    soxr_io_spec_t io = soxr_io_spec(layout == RESAMPLE_PLANAR ? SOXR_FLOAT32_S : SOXR_FLOAT32_I,
                                     layout == RESAMPLE_PLANAR ? SOXR_FLOAT32_S : SOXR_FLOAT32_I);
    soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
    soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
    size_t done_in = 0, done_out = 0;
    soxr_error_t err;
    if (layout == RESAMPLE_INTERLEAVED) {
        err = soxr_oneshot(rate_in, rate_out, (unsigned)n_channels, x, (size_t)n_in, &done_in, y,
                           (size_t)cap, &done_out, &io, &quality, &runtime);
    } else {
        const float *in[256];
        float *out[256];
        for (int c = 0; c < n_channels; c++) {
            in[c] = x + (long)c * n_in;
            out[c] = y + (long)c * cap;
        }
        err = soxr_oneshot(rate_in, rate_out, (unsigned)n_channels, in, (size_t)n_in, &done_in,
                           out, (size_t)cap, &done_out, &io, &quality, &runtime);
        /* Pack channel c from offset c * cap down to c * done_out (memmove: may overlap). */
        if (!err)
            for (int c = 1; c < n_channels; c++)
                memmove(y + (long)c * (long)done_out, y + (long)c * cap,
                        sizeof(float) * done_out);
    }
    if (err)
        return status_set(STATUS_NUMERIC, "resample %g Hz -> %g Hz: soxr: %s", rate_in, rate_out,
                          err);
    *n_out = (long)done_out;
    return STATUS_OK;
}
