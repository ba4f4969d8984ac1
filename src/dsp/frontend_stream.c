/* frontend_stream.c: incremental front end of a sliding window (see frontend_stream.h).
 *
 * Key idea: a window's interior frames are the stream's frames, so they are computed once
 * into a cache (a ring of frames, mel-major: cache[m * C + g % C] for stream frame g) with
 * exactly the operations frontend.c uses (stft_frame_spectrum of the same samples, then 8
 * frames at a time through mel_bank_apply_block), and a window is assembled from the cache
 * plus its freshly computed edge frames; the dB step then runs over the whole window as in
 * frontend_compute. A stream frame g is computed from a pointer into the sample history
 * placed so that it is frame t_left of a "clip" just long enough to hold it whole: the STFT
 * takes its direct path, the one frontend_compute takes for an interior frame.
 *
 * ref: frontend.c (frontend_compute, mel_block, compute_a_weighted): the same steps in the
 *      same order, so the numbers are the same to the bit.
 */
#include "basin/dsp/frontend_stream.h"

#include <math.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/dsp/mel.h"
#include "basin/dsp/scale.h"
#include "basin/dsp/stft.h"

struct frontend_stream {
    struct frontend_params p;
    struct stft *stft;
    struct mel_bank *mel;
    int n_k, n_f, hop, half;    /* K bins, F mels, hop, n_fft / 2 */
    int a_weighted;
    float *a_weight;            /* (K) A-weighting of each bin in dB (cpjku), else NULL */
    long L, T;                  /* window samples and frames */
    long t_left, t_right;       /* the window's interior frames */

    float *hist;                /* samples [first, total) at hist[0 ..) */
    long cap, keep, n_hist, first, total;

    long C;                     /* cache frames */
    long *tag;                  /* (C) the stream frame a slot holds, -1: none */
    float *cache;               /* (F, C) mel values of cached frames */
    float *spec;                /* (C, K) power spectra (a-weighted only) */
    float *pmax;                /* (C) their maxima (a-weighted only) */
    float *floor_used;          /* (C) the dB floor the cached mel values used (a-weighted) */

    float *scratch;             /* stft_scratch_floats() */
    float *rows;                /* (MEL_BLOCK, stride) */
    float *block;               /* (K, MEL_BLOCK) */
    long stride;
    float *edge_spec;           /* (T_edge, K) the window's edge spectra (a-weighted) */
    float *edge_max;
    long n_computed;
};

void frontend_stream_destroy(struct frontend_stream *s)
{
    if (!s) return;
    stft_destroy(s->stft);
    mel_bank_destroy(s->mel);
    mem_free(s->a_weight);
    mem_free(s->hist);
    mem_free(s->tag);
    mem_free(s->cache);
    mem_free(s->spec);
    mem_free(s->pmax);
    mem_free(s->floor_used);
    mem_free(s->scratch);
    mem_free(s->rows);
    mem_free(s->block);
    mem_free(s->edge_spec);
    mem_free(s->edge_max);
    mem_free(s);
}

int frontend_stream_create(struct frontend_stream **out, const struct frontend_params *p,
                           long window_samples, long keep_samples)
{
    *out = NULL;
    int st = frontend_params_validate(p);
    if (st) return st;
    if (window_samples <= p->n_fft / 2 || window_samples > (1L << 28))
        return status_set(STATUS_INVALID, "a window of %ld samples: more than n_fft/2 = %d and at most 2^28",
                          window_samples, p->n_fft / 2);
    struct frontend_stream *s = mem_calloc(1, sizeof *s);
    if (!s) return STATUS_NOMEM;
    s->p = *p;
    s->n_k = p->n_fft / 2 + 1, s->n_f = p->n_mels, s->hop = p->hop, s->half = p->n_fft / 2;
    s->a_weighted = p->scale == FRONTEND_SCALE_A_WEIGHTED_DB_THEN_MEL;
    s->L = window_samples;
    s->T = 1 + window_samples / p->hop;
    s->t_left = (s->half + p->hop - 1) / p->hop;
    s->t_right = (s->L - s->half) / p->hop;
    s->keep = keep_samples > s->L ? keep_samples : s->L;
    s->cap = 2 * s->keep + 4096;
    s->C = s->T + 64;
    s->stride = (s->n_k + 15) / 16 * 16;
    long n_edge = s->t_left + (s->T - 1 - s->t_right) + MEL_BLOCK;
    if ((st = stft_create(&s->stft, p->n_fft, p->hop, p->win_length)) ||
        (st = mel_bank_create(&s->mel, p->sample_rate_hz, p->n_fft, p->n_mels, p->fmin_hz, p->fmax_hz, p->mel_scale,
                              p->mel_norm)))
        goto fail;
    s->hist = mem_alloc(sizeof(float) * (size_t)s->cap);
    s->tag = mem_alloc(sizeof(long) * (size_t)s->C);
    s->cache = mem_calloc((size_t)s->n_f * (size_t)s->C, sizeof(float));
    s->scratch = mem_alloc(sizeof(float) * stft_scratch_floats(s->stft));
    s->rows = mem_calloc((size_t)MEL_BLOCK * (size_t)s->stride, sizeof(float));
    s->block = mem_alloc(sizeof(float) * MEL_BLOCK * (size_t)s->n_k);
    if (!s->hist || !s->tag || !s->cache || !s->scratch || !s->rows || !s->block) goto nomem;
    if (s->a_weighted) {
        s->a_weight = mem_alloc(sizeof(float) * (size_t)s->n_k);
        s->spec = mem_alloc(mem_mul((size_t)s->C, sizeof(float) * (size_t)s->n_k));
        s->pmax = mem_alloc(sizeof(float) * (size_t)s->C);
        s->floor_used = mem_alloc(sizeof(float) * (size_t)s->C);
        s->edge_spec = mem_alloc(mem_mul((size_t)n_edge, sizeof(float) * (size_t)s->n_k));
        s->edge_max = mem_alloc(sizeof(float) * (size_t)n_edge);
        if (!s->a_weight || !s->spec || !s->pmax || !s->floor_used || !s->edge_spec || !s->edge_max) goto nomem;
        /* ref: frontend.c frontend_create: the same expression, so the same floats */
        for (int k = 0; k < s->n_k; k++)
            s->a_weight[k] = (float)scale_a_weighting((double)k * p->sample_rate_hz / p->n_fft, -80.0);
    }
    for (long i = 0; i < s->C; i++) s->tag[i] = -1;
    *out = s;
    return STATUS_OK;
nomem:
    st = STATUS_NOMEM;
fail:
    frontend_stream_destroy(s);
    return st;
}

long frontend_stream_window_samples(const struct frontend_stream *s)
{
    return s->L;
}

long frontend_stream_window_frames(const struct frontend_stream *s)
{
    return s->T;
}

long frontend_stream_total(const struct frontend_stream *s)
{
    return s->total;
}

long frontend_stream_first(const struct frontend_stream *s)
{
    return s->first;
}

long frontend_stream_frames_computed(const struct frontend_stream *s)
{
    return s->n_computed;
}

int frontend_stream_push(struct frontend_stream *s, const float *x, long n)
{
    for (long i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            frontend_stream_push(s, x, i);
            return status_set(STATUS_INVALID, "a non-finite sample at %ld of the stream", s->total);
        }
    while (n > 0) {
        if (s->n_hist == s->cap) { /* drop the oldest, keep the last `keep` */
            long drop = s->n_hist - s->keep;
            memmove(s->hist, s->hist + drop, sizeof(float) * (size_t)s->keep);
            s->n_hist = s->keep;
            s->first += drop;
        }
        long k = s->cap - s->n_hist < n ? s->cap - s->n_hist : n;
        memcpy(s->hist + s->n_hist, x, sizeof(float) * (size_t)k);
        s->n_hist += k, s->total += k, x += k, n -= k;
    }
    return STATUS_OK;
}

int frontend_stream_samples(const struct frontend_stream *s, long from, long n, float *y)
{
    if (from < s->first || n < 0 || from + n > s->total)
        return status_set(STATUS_INVALID, "samples %ld..%ld are not held (%ld..%ld are)", from, from + n, s->first,
                          s->total);
    memcpy(y, s->hist + (from - s->first), sizeof(float) * (size_t)n);
    return STATUS_OK;
}

/* The spectrum of stream frame g into out (K); returns its maximum. The frame's samples
 * are presented as frame t_left of a clip that holds it whole (the STFT's direct path). */
static float stream_frame(struct frontend_stream *s, long g, int power, float *out)
{
    const long base = (g - s->t_left) * s->hop;   /* >= first: the window start is held */
    const long n = s->t_left * s->hop + s->half;
    s->n_computed++;
    return stft_frame_spectrum(s->stft, s->hist + (base - s->first), n, s->t_left, power, out, s->scratch);
}

/* rows (n_valid, stride) (+ offset[k]) -> the mel filterbank -> y[m * y_stride + j]: the
 * block step of frontend.c's mel_block. */
static void mel_rows(struct frontend_stream *s, const float *offset, int n_valid, float *y, long y_stride)
{
    const int n_k = s->n_k;
    if (offset)
        for (int k = 0; k < n_k; k++)
            for (int i = 0; i < MEL_BLOCK; i++) s->block[k * MEL_BLOCK + i] = s->rows[i * s->stride + k] + offset[k];
    else
        for (int k = 0; k < n_k; k++)
            for (int i = 0; i < MEL_BLOCK; i++) s->block[k * MEL_BLOCK + i] = s->rows[i * s->stride + k];
    mel_bank_apply_block(s->mel, s->block, y, y_stride, n_valid);
}

/* Cache stream frames [g0, g1) (db / linear: their mel values). */
static void cache_frames(struct frontend_stream *s, long g0, long g1)
{
    long g = g0;
    while (g < g1) {
        if (s->tag[g % s->C] == g) {
            g++;
            continue;
        }
        /* a run of missing frames, at most a block, not across the ring's end */
        long slot0 = g % s->C;
        int n = 0;
        while (g + n < g1 && n < MEL_BLOCK && slot0 + n < s->C && s->tag[(g + n) % s->C] != g + n) n++;
        for (int i = 0; i < n; i++) {
            long slot = slot0 + i;
            if (s->a_weighted) s->pmax[slot] = stream_frame(s, g + i, 2, s->spec + slot * s->n_k);
            else stream_frame(s, g + i, s->p.power, s->rows + i * s->stride);
            s->tag[slot] = g + i;
            if (s->a_weighted) s->floor_used[slot] = NAN; /* no mel values yet */
        }
        if (!s->a_weighted) mel_rows(s, NULL, n, s->cache + slot0, s->C);
        g += n;
    }
}

/* The window's edge frames t in [t0, t1) from the window's own samples x (L), reflect
 * padded: into y (F, T) (db / linear), or their spectra into edge_spec from index e0. */
static void edge_frames(struct frontend_stream *s, const float *x, long t0, long t1, float *y, long e0)
{
    for (long t = t0; t < t1; t += MEL_BLOCK) {
        int n = t1 - t < MEL_BLOCK ? (int)(t1 - t) : MEL_BLOCK;
        for (int i = 0; i < n; i++) {
            s->n_computed++;
            if (s->a_weighted) {
                long e = e0 + (t - t0) + i;
                s->edge_max[e] = stft_frame_spectrum(s->stft, x, s->L, t + i, 2, s->edge_spec + e * s->n_k, s->scratch);
            } else {
                stft_frame_spectrum(s->stft, x, s->L, t + i, s->p.power, s->rows + i * s->stride, s->scratch);
            }
        }
        if (!s->a_weighted) mel_rows(s, NULL, n, y + t, s->T);
    }
}

/* cpjku: dB with the window's floor, A-weight, mel, for frames [t0, t1) whose spectra are
 * spec_of(t) -> y columns; interior frames reuse cached mel values made with this floor. */
static void a_weighted_frames(struct frontend_stream *s, long g0, long t0, long t1, float fl, float *y, int interior,
                              long e0)
{
    for (long t = t0; t < t1;) {
        if (interior) {
            long slot = (g0 + t) % s->C;
            if (s->floor_used[slot] == fl) { /* cached with this floor */
                for (int m = 0; m < s->n_f; m++) y[(long)m * s->T + t] = s->cache[(long)m * s->C + slot];
                t++;
                continue;
            }
        }
        /* a block of frames to (re)do: consecutive, not cached with this floor */
        int n = 0;
        while (t + n < t1 && n < MEL_BLOCK) {
            if (interior) {
                long slot = (g0 + t + n) % s->C;
                if (s->floor_used[slot] == fl) break;
            }
            const float *sp = interior ? s->spec + ((g0 + t + n) % s->C) * s->n_k : s->edge_spec + (e0 + t + n - t0) * s->n_k;
            scale_db(s->n_k, s->rows + n * s->stride, sp, fl, 10.0f);
            n++;
        }
        mel_rows(s, s->a_weight, n, y + t, s->T);
        if (interior)
            for (int i = 0; i < n; i++) {
                long slot = (g0 + t + i) % s->C;
                for (int m = 0; m < s->n_f; m++) s->cache[(long)m * s->C + slot] = y[(long)m * s->T + t + i];
                s->floor_used[slot] = fl;
            }
        t += n;
    }
}

int frontend_stream_window(struct frontend_stream *s, long start, float *y)
{
    if (start % s->hop || start < s->first || start + s->L > s->total)
        return status_set(STATUS_INVALID, "window %ld..%ld: starts must be multiples of %d within the held samples "
                          "%ld..%ld", start, start + s->L, s->hop, s->first, s->total);
    const float *x = s->hist + (start - s->first);
    const long T = s->T, g0 = start / s->hop, F = s->n_f;
    const long il = s->t_left, ir = s->t_right; /* interior: il..ir (empty when ir < il) */
    const long n_left = ir >= il ? il : T, right0 = ir >= il ? ir + 1 : T;
    if (ir >= il) cache_frames(s, g0 + il, g0 + ir + 1);
    if (!s->a_weighted) {
        edge_frames(s, x, 0, n_left, y, 0);
        edge_frames(s, x, right0, T, y, 0);
        /* the interior from the cache, in at most two pieces per mel row (the ring's end) */
        if (ir >= il)
            for (long m = 0; m < F; m++) {
                const float *row = s->cache + m * s->C;
                long t = il;
                while (t <= ir) {
                    long slot = (g0 + t) % s->C, k = ir - t + 1 < s->C - slot ? ir - t + 1 : s->C - slot;
                    memcpy(y + m * T + t, row + slot, sizeof(float) * (size_t)k);
                    t += k;
                }
            }
        if (s->p.scale == FRONTEND_SCALE_DB) {
            long n = F * T;
            /* ref: frontend.c frontend_compute: dB over the whole window, then top_db */
            float top = scale_db(n, y, y, (float)s->p.amin, s->p.power == 2 ? 10.0f : 20.0f);
            if (s->p.top_db > 0.0) scale_floor(n, y, top - (float)s->p.top_db);
        }
        return STATUS_OK;
    }
    /* cpjku: the edge spectra, then the window's top_db floor over every frame's maximum */
    edge_frames(s, x, 0, n_left, NULL, 0);
    edge_frames(s, x, right0, T, NULL, n_left);
    float p_max = 0.0f;
    for (long e = 0; e < n_left + (T - right0); e++) p_max = s->edge_max[e] > p_max ? s->edge_max[e] : p_max;
    for (long t = il; t <= ir; t++) {
        float m = s->pmax[(g0 + t) % s->C];
        p_max = m > p_max ? m : p_max;
    }
    /* ref: frontend.c compute_a_weighted */
    double fl = s->p.amin;
    if (s->p.top_db > 0.0) {
        double top = (p_max > s->p.amin ? p_max : s->p.amin) * pow(10.0, -s->p.top_db / 10.0);
        fl = top > fl ? top : fl;
    }
    a_weighted_frames(s, g0, 0, n_left, (float)fl, y, 0, 0);
    if (ir >= il) a_weighted_frames(s, g0, il, ir + 1, (float)fl, y, 1, 0);
    a_weighted_frames(s, g0, right0, T, (float)fl, y, 0, n_left);
    return STATUS_OK;
}
