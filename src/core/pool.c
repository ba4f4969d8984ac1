/* pool.c: 2-D max and average pooling (no padding) and mean / max over one axis.
 *
 * Key idea: every (sample, channel) plane, or every (outer, inner block) of a reduction, is
 * independent, so threads split those; a backward pass that scatters (overlapping windows)
 * stays inside one plane and one thread. Max pooling recomputes the argmax in the backward
 * pass with the forward's exact scan (first maximum, NaN wins) instead of storing indices.
 *
 * ref: torch.nn.MaxPool2d / AvgPool2d (output size floor((F - KF) / SF) + 1; the first
 *      maximum of a window gets the gradient; NaN propagates),
 *      aten/src/ATen/native/cpu/MaxPoolKernel.cpp.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "basin/core/ops.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"

#define POOL_PARALLEL_MIN 65536L

int pool2d_shape_init(struct pool2d_shape *s)
{
    if (s->n <= 0 || s->c <= 0 || s->fi <= 0 || s->ti <= 0 || s->kf <= 0 || s->kt <= 0 ||
        s->sf <= 0 || s->st <= 0)
        return status_set(STATUS_INVALID,
                          "pool2d: sizes must be positive (n %d, c %d, in %d x %d, kernel %d x "
                          "%d, stride %d x %d)",
                          s->n, s->c, s->fi, s->ti, s->kf, s->kt, s->sf, s->st);
    if (s->kf > s->fi || s->kt > s->ti)
        return status_set(STATUS_INVALID, "pool2d: kernel %d x %d is larger than input %d x %d",
                          s->kf, s->kt, s->fi, s->ti);
    s->fo = (s->fi - s->kf) / s->sf + 1;
    s->to = (s->ti - s->kt) / s->st + 1;
    return STATUS_OK;
}

/* Index in the plane of the first maximum of window (oh, ow), as PyTorch scans it. */
static long window_argmax(const struct pool2d_shape *s, const float *xp, int oh, int ow)
{
    long best = (long)oh * s->sf * s->ti + (long)ow * s->st;
    float m = xp[best];
    for (int i = 0; i < s->kf; i++) {
        const float *xr = xp + (long)(oh * s->sf + i) * s->ti + (long)ow * s->st;
        for (int j = 0; j < s->kt; j++) {
            if (xr[j] > m || (isnan(xr[j]) && !isnan(m))) {
                m = xr[j];
                best = (xr + j) - xp;
            }
        }
    }
    return best;
}

void maxpool2d_forward(const struct pool2d_shape *s, float *y, const float *x)
{
    long planes = (long)s->n * s->c, hw_in = (long)s->fi * s->ti, hw_out = (long)s->fo * s->to;
#pragma omp parallel for schedule(static) num_threads(threads_get()) \
    if (planes * hw_in >= POOL_PARALLEL_MIN)
    for (long p = 0; p < planes; p++) {
        const float *xp = x + p * hw_in;
        float *yp = y + p * hw_out;
        if (s->kf == 2 && s->kt == 2 && s->sf == 2 && s->st == 2) {
            /* The CP-ResNet pool: two rows, pairs of columns; vectorises. */
            for (int oh = 0; oh < s->fo; oh++) {
                const float *r0 = xp + (long)2 * oh * s->ti, *r1 = r0 + s->ti;
                float *yr = yp + (long)oh * s->to;
#pragma omp simd
                for (int ow = 0; ow < s->to; ow++) {
                    float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
                    float m = a;
                    m = b > m || (b != b && m == m) ? b : m;
                    m = c > m || (c != c && m == m) ? c : m;
                    m = d > m || (d != d && m == m) ? d : m;
                    yr[ow] = m;
                }
            }
            continue;
        }
        for (int oh = 0; oh < s->fo; oh++)
            for (int ow = 0; ow < s->to; ow++)
                yp[(long)oh * s->to + ow] = xp[window_argmax(s, xp, oh, ow)];
    }
}

void maxpool2d_backward(const struct pool2d_shape *s, float *dx, const float *dy,
                        const float *x, const float *y, int accumulate)
{
    (void)y; /* the argmax is recomputed from x, which also settles ties and NaNs exactly */
    long planes = (long)s->n * s->c, hw_in = (long)s->fi * s->ti, hw_out = (long)s->fo * s->to;
#pragma omp parallel for schedule(static) num_threads(threads_get()) \
    if (planes * hw_in >= POOL_PARALLEL_MIN)
    for (long p = 0; p < planes; p++) {
        const float *xp = x + p * hw_in, *dyp = dy + p * hw_out;
        float *dxp = dx + p * hw_in;
        if (!accumulate) memset(dxp, 0, sizeof(float) * (size_t)hw_in);
        if (s->kf == 2 && s->kt == 2 && s->sf == 2 && s->st == 2) {
            /* Branch-free and vectorised, each window's argmax found by the same scan as
             * window_argmax. */
            for (int oh = 0; oh < s->fo; oh++) {
                const float *r0 = xp + (long)2 * oh * s->ti, *r1 = r0 + s->ti;
                float *d0 = dxp + (long)2 * oh * s->ti, *d1 = d0 + s->ti;
                const float *g = dyp + (long)oh * s->to;
#pragma omp simd
                for (int ow = 0; ow < s->to; ow++) {
                    float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
                    /* The forward's scan, carrying the winner's index k. Written so GCC
                     * if-converts it (the four gradients computed before any store). */
                    float m = a, k = 0.0f;
                    int tb = b > m || (b != b && m == m);
                    m = tb ? b : m;
                    k = tb ? 1.0f : k;
                    int tc = c > m || (c != c && m == m);
                    m = tc ? c : m;
                    k = tc ? 2.0f : k;
                    int td = d > m || (d != d && m == m);
                    k = td ? 3.0f : k;
                    float gg = g[ow];
                    float e0 = k == 0.0f ? gg : 0.0f, e1 = k == 1.0f ? gg : 0.0f;
                    float e2 = k == 2.0f ? gg : 0.0f, e3 = k == 3.0f ? gg : 0.0f;
                    d0[2 * ow] += e0;
                    d0[2 * ow + 1] += e1;
                    d1[2 * ow] += e2;
                    d1[2 * ow + 1] += e3;
                }
            }
            continue;
        }
        for (int oh = 0; oh < s->fo; oh++)
            for (int ow = 0; ow < s->to; ow++)
                dxp[window_argmax(s, xp, oh, ow)] += dyp[(long)oh * s->to + ow];
    }
}

/* ----------------------------------------------------------------------------- add + max pool */

/* y = maxpool 2x2 / 2 of v = relu?(a + b): the sum is never stored. Per window the index of
 * the first maximum (the forward scan of maxpool2d_forward) goes to arg, with bit 2 set
 * when the gradient passes the relu there (its value > 0; always without relu). */
/* The even and odd elements of the 2 nw floats at p (nw <= 8; past them, zeros: the end
 * of a row goes through masked loads). */
static inline void deinterleave(const float *p, int nw, __m256 *even, __m256 *odd)
{
    __m256 lo, hi;
    if (nw == 8) {
        lo = _mm256_loadu_ps(p), hi = _mm256_loadu_ps(p + 8);
    } else {
        const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        lo = _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(2 * nw), iota));
        hi = _mm256_maskload_ps(p + 8, _mm256_cmpgt_epi32(_mm256_set1_epi32(2 * nw - 8), iota));
    }
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(
        _mm256_castps_pd(_mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0))), _MM_SHUFFLE(3, 1, 2, 0)));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(
        _mm256_castps_pd(_mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1))), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* The scan step "v > m, or v is NaN and m is not" of maxpool2d_forward, on 8 lanes. */
static inline __m256 scan_takes(__m256 v, __m256 m)
{
    __m256 nan_v = _mm256_cmp_ps(v, v, _CMP_UNORD_Q), num_m = _mm256_cmp_ps(m, m, _CMP_ORD_Q);
    return _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_and_ps(nan_v, num_m));
}

/* A row of a BN'd input into buf (the add then reads buf): the BN's output values. */
static const float *bn_row(const float *x, float m, float sc, float sh, int n, float *buf)
{
#pragma omp simd
    for (int i = 0; i < n; i++) buf[i] = __builtin_fmaf(x[i] - m, sc, sh);
    return buf;
}

/* nw <= 8 windows of rows (a0 + b0, a1 + b1) from column 0: their maxima (the first
 * maximum, NaN winning, as maxpool2d_forward scans) to y, and the argmax bytes to k when
 * it is not NULL (bits 0-1: the position in the window; bit 2: the relu passes there). A
 * row's last windows go through masked loads and stores, with the same operations. */
static inline void windows8(const float *a0, const float *a1, const float *b0, const float *b1,
                            int nw, int relu, float *y, uint8_t *k)
{
    __m256 ae, ao, be, bo, ce, co, de, dd;
    deinterleave(a0, nw, &ae, &ao);
    deinterleave(b0, nw, &be, &bo);
    deinterleave(a1, nw, &ce, &co);
    deinterleave(b1, nw, &de, &dd);
    __m256 v0 = _mm256_add_ps(ae, be), v1 = _mm256_add_ps(ao, bo);
    __m256 v2 = _mm256_add_ps(ce, de), v3 = _mm256_add_ps(co, dd);
    __m256 z = _mm256_setzero_ps();
    if (relu) {
        v0 = _mm256_max_ps(v0, z), v1 = _mm256_max_ps(v1, z);
        v2 = _mm256_max_ps(v2, z), v3 = _mm256_max_ps(v3, z);
    }
    __m256 m = v0, kv = z, t = scan_takes(v1, m);
    m = _mm256_blendv_ps(m, v1, t);
    kv = _mm256_blendv_ps(kv, _mm256_set1_ps(1.0f), t);
    t = scan_takes(v2, m);
    m = _mm256_blendv_ps(m, v2, t);
    kv = _mm256_blendv_ps(kv, _mm256_set1_ps(2.0f), t);
    t = scan_takes(v3, m);
    m = _mm256_blendv_ps(m, v3, t);
    kv = _mm256_blendv_ps(kv, _mm256_set1_ps(3.0f), t);
    if (nw == 8)
        _mm256_storeu_ps(y, m);
    else
        _mm256_maskstore_ps(y, _mm256_cmpgt_epi32(_mm256_set1_epi32(nw), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
                            m);
    if (!k) return;
    __m256 pass = relu ? _mm256_cmp_ps(m, z, _CMP_GT_OQ) : _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    kv = _mm256_add_ps(kv, _mm256_and_ps(pass, _mm256_set1_ps(4.0f)));
    __m256i ki = _mm256_cvtps_epi32(kv);
    __m128i k16 = _mm_packs_epi32(_mm256_castsi256_si128(ki), _mm256_extracti128_si256(ki, 1));
    uint8_t bytes[16];
    _mm_storeu_si128((__m128i *)bytes, _mm_packus_epi16(k16, k16));
    memcpy(k, bytes, (size_t)nw);
}

void addpool_forward(const struct pool2d_shape *s, float *y, uint8_t *arg, const float *a,
                     const float *b, int relu, const struct add_bn *bn)
{
    CHECK(s->kf == 2 && s->kt == 2 && s->sf == 2 && s->st == 2);
    CHECK(!bn || s->ti <= ADDPOOL_BN_MAX_T);
    long planes = (long)s->n * s->c, hw_in = (long)s->fi * s->ti, hw_out = (long)s->fo * s->to;
#pragma omp parallel for schedule(static) num_threads(threads_get()) \
    if (planes * hw_in >= POOL_PARALLEL_MIN)
    for (long p = 0; p < planes; p++) {
        const float *ap = a + p * hw_in, *bp = b + p * hw_in;
        float *yp = y + p * hw_out;
        uint8_t *kp = arg ? arg + p * hw_out : NULL;
        float mu = 0, sc = 1, sh = 0, rows[2][ADDPOOL_BN_MAX_T];
        int c = (int)(p % s->c);
        if (bn) mu = bn->mean[c], sc = bn->scale[c], sh = bn->shift[c];
        for (int oh = 0; oh < s->fo; oh++) {
            const float *a0 = ap + (long)2 * oh * s->ti, *a1 = a0 + s->ti;
            const float *b0 = bp + (long)2 * oh * s->ti, *b1 = b0 + s->ti;
            if (bn && bn->input == 0) {
                a0 = bn_row(a0, mu, sc, sh, s->ti, rows[0]);
                a1 = bn_row(a1, mu, sc, sh, s->ti, rows[1]);
            } else if (bn) {
                b0 = bn_row(b0, mu, sc, sh, s->ti, rows[0]);
                b1 = bn_row(b1, mu, sc, sh, s->ti, rows[1]);
            }
            float *yr = yp + (long)oh * s->to;
            uint8_t *kr = kp ? kp + (long)oh * s->to : NULL;
            for (int ow = 0; ow < s->to; ow += 8) {
                const int nw = s->to - ow < 8 ? s->to - ow : 8;
                windows8(a0 + 2 * ow, a1 + 2 * ow, b0 + 2 * ow, b1 + 2 * ow, nw, relu, yr + ow,
                         kr ? kr + ow : NULL);
            }
        }
    }
}

/* The gradient of each window to its recorded position (when it passes the relu), zero
 * elsewhere: da (+)= g, db (+)= g, as add_backward after maxpool2d_backward. */
void addpool_backward(const struct pool2d_shape *s, float *da, float *db, const float *dy,
                      const uint8_t *arg, int accumulate_a, int accumulate_b)
{
    long planes = (long)s->n * s->c, hw_in = (long)s->fi * s->ti, hw_out = (long)s->fo * s->to;
#pragma omp parallel for schedule(static) num_threads(threads_get()) \
    if (planes * hw_in >= POOL_PARALLEL_MIN)
    for (long p = 0; p < planes; p++) {
        const float *dyp = dy + p * hw_out;
        const uint8_t *kp = arg + p * hw_out;
        float *dst[2] = {da ? da + p * hw_in : NULL, db ? db + p * hw_in : NULL};
        int acc[2] = {accumulate_a, accumulate_b};
        for (int u = 0; u < 2; u++) {
            float *d = dst[u];
            if (!d) continue;
            for (int oh = 0; oh < s->fo; oh++) {
                float *d0 = d + (long)2 * oh * s->ti, *d1 = d0 + s->ti;
                const float *g = dyp + (long)oh * s->to;
                const uint8_t *kr = kp + (long)oh * s->to;
                if (acc[u]) {
#pragma omp simd
                    for (int ow = 0; ow < s->to; ow++) {
                        int k = kr[ow];
                        float gg = k & 4 ? g[ow] : 0.0f;
                        d0[2 * ow] += (k & 3) == 0 ? gg : 0.0f;
                        d0[2 * ow + 1] += (k & 3) == 1 ? gg : 0.0f;
                        d1[2 * ow] += (k & 3) == 2 ? gg : 0.0f;
                        d1[2 * ow + 1] += (k & 3) == 3 ? gg : 0.0f;
                    }
                } else {
#pragma omp simd
                    for (int ow = 0; ow < s->to; ow++) {
                        int k = kr[ow];
                        float gg = k & 4 ? g[ow] : 0.0f;
                        d0[2 * ow] = (k & 3) == 0 ? gg : 0.0f;
                        d0[2 * ow + 1] = (k & 3) == 1 ? gg : 0.0f;
                        d1[2 * ow] = (k & 3) == 2 ? gg : 0.0f;
                        d1[2 * ow + 1] = (k & 3) == 3 ? gg : 0.0f;
                    }
                    /* a column or row no window covers (odd sizes) */
                    if (s->ti > 2 * s->to) d0[2 * s->to] = d1[2 * s->to] = 0.0f;
                }
            }
            if (!acc[u] && s->fi > 2 * s->fo)
                memset(d + (long)2 * s->fo * s->ti, 0, sizeof(float) * (size_t)s->ti);
        }
    }
}

void avgpool2d_forward(const struct pool2d_shape *s, float *y, const float *x)
{
    long planes = (long)s->n * s->c, hw_in = (long)s->fi * s->ti, hw_out = (long)s->fo * s->to;
    float inv = 1.0f / (float)(s->kf * s->kt);
#pragma omp parallel for schedule(static) num_threads(threads_get()) \
    if (planes * hw_in >= POOL_PARALLEL_MIN)
    for (long p = 0; p < planes; p++) {
        const float *xp = x + p * hw_in;
        float *yp = y + p * hw_out;
        for (int oh = 0; oh < s->fo; oh++) {
            float *yr = yp + (long)oh * s->to;
            if (s->kf == 2 && s->kt == 2 && s->sf == 2 && s->st == 2) {
                const float *r0 = xp + (long)2 * oh * s->ti, *r1 = r0 + s->ti;
#pragma omp simd
                for (int ow = 0; ow < s->to; ow++)
                    yr[ow] = ((r0[2 * ow] + r0[2 * ow + 1]) + (r1[2 * ow] + r1[2 * ow + 1])) * inv;
                continue;
            }
            for (int ow = 0; ow < s->to; ow++) {
                float acc = 0.0f;
                for (int i = 0; i < s->kf; i++) {
                    const float *xr = xp + (long)(oh * s->sf + i) * s->ti + (long)ow * s->st;
                    for (int j = 0; j < s->kt; j++) acc += xr[j];
                }
                yr[ow] = acc * inv;
            }
        }
    }
}

void avgpool2d_backward(const struct pool2d_shape *s, float *dx, const float *dy, int accumulate)
{
    long planes = (long)s->n * s->c, hw_in = (long)s->fi * s->ti, hw_out = (long)s->fo * s->to;
    float inv = 1.0f / (float)(s->kf * s->kt);
#pragma omp parallel for schedule(static) num_threads(threads_get()) \
    if (planes * hw_in >= POOL_PARALLEL_MIN)
    for (long p = 0; p < planes; p++) {
        const float *dyp = dy + p * hw_out;
        float *dxp = dx + p * hw_in;
        if (!accumulate) memset(dxp, 0, sizeof(float) * (size_t)hw_in);
        for (int oh = 0; oh < s->fo; oh++) {
            const float *dyr = dyp + (long)oh * s->to;
            for (int i = 0; i < s->kf; i++) {
                float *xr = dxp + (long)(oh * s->sf + i) * s->ti;
                for (int j = 0; j < s->kt; j++) {
                    if (s->st == 1) {
#pragma omp simd
                        for (int ow = 0; ow < s->to; ow++) xr[ow + j] += dyr[ow] * inv;
                    } else {
                        for (int ow = 0; ow < s->to; ow++)
                            xr[(long)ow * s->st + j] += dyr[ow] * inv;
                    }
                }
            }
        }
    }
}

/* ----------------------------------------------------------------------------- reductions */

/* Inner positions handled per work item; the running sums of one block live on the stack
 * in double. */
#define RED_BLOCK 256

void mean_forward(int outer, int len, long inner, float *y, const float *x)
{
    long blocks = (inner + RED_BLOCK - 1) / RED_BLOCK, items = (long)outer * blocks;
#pragma omp parallel for schedule(static) num_threads(threads_get()) \
    if ((long)outer * len * inner >= POOL_PARALLEL_MIN)
    for (long it = 0; it < items; it++) {
        long o = it / blocks, i0 = it % blocks * RED_BLOCK;
        long nb = inner - i0 < RED_BLOCK ? inner - i0 : RED_BLOCK;
        const float *xo = x + o * len * inner + i0;
        if (nb == 1) {
            double acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int l = 0; l < len; l++) acc += xo[(long)l * inner];
            y[o * inner + i0] = (float)(acc / len);
            continue;
        }
        double acc[RED_BLOCK];
        for (long i = 0; i < nb; i++) acc[i] = 0;
        for (int l = 0; l < len; l++) {
            const float *xr = xo + (long)l * inner;
#pragma omp simd
            for (long i = 0; i < nb; i++) acc[i] += xr[i];
        }
        for (long i = 0; i < nb; i++) y[o * inner + i0 + i] = (float)(acc[i] / len);
    }
}

void mean_backward(int outer, int len, long inner, float *dx, const float *dy, int accumulate)
{
    float inv = 1.0f / (float)len;
#pragma omp parallel for schedule(static) num_threads(threads_get()) \
    if ((long)outer * len * inner >= POOL_PARALLEL_MIN)
    for (long r = 0; r < (long)outer * len; r++) {
        const float *g = dy + r / len * inner;
        float *dxr = dx + r * inner;
        if (accumulate) {
#pragma omp simd
            for (long i = 0; i < inner; i++) dxr[i] += g[i] * inv;
        } else {
#pragma omp simd
            for (long i = 0; i < inner; i++) dxr[i] = g[i] * inv;
        }
    }
}

void max_forward(int outer, int len, long inner, float *y, const float *x)
{
#pragma omp parallel for schedule(static) num_threads(threads_get()) \
    if ((long)outer * len * inner >= POOL_PARALLEL_MIN)
    for (int o = 0; o < outer; o++) {
        const float *xo = x + (long)o * len * inner;
        float *yo = y + (long)o * inner;
        if (inner == 1) {
            /* Along a contiguous row: a max reduction in vector lanes plus a NaN flag (any
             * NaN makes the result NaN, as the ordered scan does). */
            float m = xo[0];
            int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
            for (int l = 0; l < len; l++) {
                m = xo[l] > m ? xo[l] : m;
                nan |= xo[l] != xo[l];
            }
            yo[0] = nan ? NAN : m;
            continue;
        }
        memcpy(yo, xo, sizeof(float) * (size_t)inner);
        for (int l = 1; l < len; l++) {
            const float *xr = xo + (long)l * inner;
#pragma omp simd
            for (long i = 0; i < inner; i++)
                yo[i] = xr[i] > yo[i] || (xr[i] != xr[i] && yo[i] == yo[i]) ? xr[i] : yo[i];
        }
    }
}

void max_backward(int outer, int len, long inner, float *dx, const float *dy, const float *x,
                  const float *y, int accumulate)
{
    (void)y; /* the first maximum is found again with the forward's scan */
#pragma omp parallel for schedule(static) num_threads(threads_get()) \
    if ((long)outer * len * inner >= POOL_PARALLEL_MIN)
    for (int o = 0; o < outer; o++) {
        const float *xo = x + (long)o * len * inner, *g = dy + (long)o * inner;
        float *dxo = dx + (long)o * len * inner;
        if (!accumulate) memset(dxo, 0, sizeof(float) * (size_t)len * (size_t)inner);
        for (long i = 0; i < inner; i++) {
            int best = 0;
            float m = xo[i];
            for (int l = 1; l < len; l++) {
                float v = xo[(long)l * inner + i];
                if (v > m || (isnan(v) && !isnan(m))) {
                    m = v;
                    best = l;
                }
            }
            dxo[(long)best * inner + i] += g[i];
        }
    }
}
