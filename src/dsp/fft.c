/* fft.c: real-to-complex FFT of one fixed size over FFTW3 single precision (see fft.h).
 *
 * Key idea: one plan per size, made once with FFTW_ESTIMATE (deterministic: the plan does not
 * depend on timing measurements) on 64-byte aligned scratch arrays, then executed on the
 * caller's arrays with fftwf_execute_dft_r2c, FFTW's "new-array execute", which is
 * thread-safe as long as the new arrays have the alignment the plan was made for
 * (fftwf_alignment_of equal, i.e. 0 here; 16 bytes on x86) and the same in-place/out-of-place shape.
 * The planner itself, and fftwf_destroy_plan, touch FFTW's global state and are not
 * thread-safe, so both run under one process-wide mutex: the only global in src/dsp, and
 * it guards a library's global, not ours.
 *
 * ref: FFTW 3.3 manual, sections 4.6 "New-array Execute Functions" and 5.4 "Thread safety".
 */
#include "basin/dsp/fft.h"

#include <fftw3.h>
#include <pthread.h>

#include "basin/core/mem.h"
#include "basin/core/status.h"

struct fft {
    int n;            /* transform size */
    fftwf_plan plan;  /* out-of-place r2c of size n, made on 64-byte aligned arrays */
};

static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;

int fft_create(struct fft **out, int n)
{
    *out = NULL;
    if (n < 1) return status_set(STATUS_INVALID, "fft: size %d, expected at least 1", n);
    struct fft *f = mem_calloc(1, sizeof *f);
    float *x = mem_alloc(sizeof(float) * (size_t)n);
    float *spec = mem_alloc(sizeof(float) * 2 * (size_t)(n / 2 + 1));
    if (!f || !x || !spec) {
        mem_free(f);
        mem_free(x);
        mem_free(spec);
        return STATUS_NOMEM;
    }
    f->n = n;
    pthread_mutex_lock(&planner_lock);
    /* ref: FFTW manual 4.3.2: r2c plans preserve their input by default. */
    f->plan = fftwf_plan_dft_r2c_1d(n, x, (fftwf_complex *)spec, FFTW_ESTIMATE);
    pthread_mutex_unlock(&planner_lock);
    mem_free(x);
    mem_free(spec);
    if (!f->plan) {
        mem_free(f);
        return status_set(STATUS_UNSUPPORTED, "fft: FFTW could not plan a real FFT of size %d", n);
    }
    *out = f;
    return STATUS_OK;
}

void fft_destroy(struct fft *f)
{
    if (!f) return;
    pthread_mutex_lock(&planner_lock);
    fftwf_destroy_plan(f->plan);
    pthread_mutex_unlock(&planner_lock);
    mem_free(f);
}

int fft_size(const struct fft *f)
{
    return f->n;
}

int fft_bins(const struct fft *f)
{
    return f->n / 2 + 1;
}

void fft_forward(const struct fft *f, const float *x, float *spec)
{
    /* The plan was made on 64-byte aligned arrays, whose alignment_of is 0. */
    CHECK(fftwf_alignment_of((float *)x) == 0 && fftwf_alignment_of(spec) == 0);
    CHECK((const float *)spec + 2 * (f->n / 2 + 1) <= x || x + f->n <= (const float *)spec);
    /* The cast drops const only for FFTW's signature: r2c plans never write their input. */
    fftwf_execute_dft_r2c(f->plan, (float *)x, (fftwf_complex *)spec);
}
