/* resample_stream.c: libsoxr's stream resampler, one mono channel (see resample_stream.h).
 *
 * Key idea: soxr_oneshot (resample.c) is this same stream resampler run once over a clip
 * and flushed, so feeding the clip in pieces gives the same samples, only spread over the
 * calls. soxr may return before it has consumed all the input when the output buffer
 * fills; the loop feeds the rest, so a caller hands every sample over exactly once.
 *
 * ref: libsoxr 0.1.3 soxr.h (soxr_create, soxr_process, soxr_delay; in NULL flushes).
 */
#include "basin/dsp/resample_stream.h"

#include <math.h>
#include <soxr.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/status.h"

struct resample_stream {
    soxr_t soxr;                /* NULL when the rates are equal */
    double rate_in, rate_out;
};

int resample_stream_create(struct resample_stream **out, double rate_in, double rate_out)
{
    *out = NULL;
    if (!(rate_in > 0 && rate_in <= 1e7 && rate_out > 0 && rate_out <= 1e7))
        return status_set(STATUS_INVALID, "resample: rates %g Hz -> %g Hz must be in (0, 1e7]", rate_in, rate_out);
    struct resample_stream *r = mem_calloc(1, sizeof *r);
    if (!r) return STATUS_NOMEM;
    r->rate_in = rate_in, r->rate_out = rate_out;
    if (rate_in != rate_out) {
        soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
        soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);   /* as resample.c */
        soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
        soxr_error_t err = NULL;
        r->soxr = soxr_create(rate_in, rate_out, 1, &err, &io, &quality, &runtime);
        if (!r->soxr || err) {
            int s = status_set(STATUS_NUMERIC, "resample %g Hz -> %g Hz: soxr: %s", rate_in, rate_out,
                               err ? err : "cannot create");
            if (r->soxr) soxr_delete(r->soxr);
            mem_free(r);
            return s;
        }
    }
    *out = r;
    return STATUS_OK;
}

void resample_stream_destroy(struct resample_stream *r)
{
    if (!r) return;
    if (r->soxr) soxr_delete(r->soxr);
    mem_free(r);
}

long resample_stream_max_out(const struct resample_stream *r, long n_in)
{
    if (!r->soxr) return n_in;
    /* what n_in new samples yield, plus everything that may be held back */
    return (long)ceil((double)n_in * r->rate_out / r->rate_in) + (long)ceil(soxr_delay(r->soxr)) + 64;
}

int resample_stream_process(struct resample_stream *r, const float *x, long n_in, float *y, long cap,
                            long *n_out)
{
    *n_out = 0;
    if (n_in < 0 || cap < resample_stream_max_out(r, x ? n_in : 0))
        return status_set(STATUS_INVALID, "resample: output room %ld samples for %ld input samples, need %ld", cap,
                          n_in, resample_stream_max_out(r, x ? n_in : 0));
    if (!r->soxr) {
        if (x && n_in) memcpy(y, x, sizeof *y * (size_t)n_in);
        *n_out = x ? n_in : 0;
        return STATUS_OK;
    }
    long used = 0, made = 0;
    for (;;) {
        size_t idone = 0, odone = 0;
        soxr_error_t err = soxr_process(r->soxr, x ? (const void *)(x + used) : NULL, x ? (size_t)(n_in - used) : 0,
                                        &idone, y + made, (size_t)(cap - made), &odone);
        if (err) return status_set(STATUS_NUMERIC, "resample %g Hz -> %g Hz: soxr: %s", r->rate_in, r->rate_out, err);
        used += (long)idone;
        made += (long)odone;
        if (x ? used >= n_in : odone == 0) break;
        if (made >= cap) return status_set(STATUS_INVALID, "resample: output room of %ld samples filled", cap);
        if (x && !idone && !odone) break;   /* nothing moves: soxr holds the rest */
    }
    *n_out = made;
    return STATUS_OK;
}

double resample_stream_delay(const struct resample_stream *r)
{
    return r->soxr ? soxr_delay(r->soxr) : 0.0;
}
