/* conv2d_avx512.c: AVX-512 micro-kernels of conv2d.c's direct stride-1 convolution.
 *
 * Key idea: a register block of DIRECT_OB output channels x DIRECT_QB flattened output
 * positions (8 x 3 zmm accumulators) walks over input channels and kernel taps; each step
 * loads three unaligned input vectors at the tap's offset and broadcasts eight weights, so
 * every loaded vector feeds eight FMAs and every weight three. The build targets x86-64-v3;
 * these functions carry their own target attribute and conv2d.c calls them only when
 * conv2d_avx512_available() says the CPU has AVX-512 F.
 *
 * ref: Georganas et al. 2018, "Anatomy of high-performance deep learning convolutions on
 *      SIMD architectures" (direct convolution, register blocking over output channels and
 *      positions); Zhang, Franchetti, Low 2018, "High performance zero-memory overhead direct
 *      convolutions".
 */
#include "conv2d_direct.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

#include <immintrin.h>

#define TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma,prfchw")))
#define INLINE static inline __attribute__((always_inline))

int conv2d_avx512_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
}

/* Where the three vectors of a register block go: the lanes that are outputs (mask) and
 * the output index of the first of them (valid outputs are consecutive in the output). */
struct dest {
    __mmask16 m[3];
    long at[3];
};

/* Output positions of flattened positions q..q+15: a row boundary may fall inside. */
static TARGET_AVX512 void dest_of(const struct direct_band *b, long q, __mmask16 *m, long *at)
{
    long row = q / b->wp;
    int col = (int)(q % b->wp);
    *at = row * b->wo + (col < b->wo ? col : b->wo);
    unsigned mask = 0;
    for (int l = 0; l < 16 && row < b->rows; row++, col = 0) {
        int seg = b->wp - col < 16 - l ? b->wp - col : 16 - l;
        int valid = b->wo - col < seg ? b->wo - col : seg;
        if (valid > 0) mask |= ((1u << valid) - 1) << l;
        l += seg;
    }
    *m = (__mmask16)mask;
}

/* Epilogue and store of one vector of channel o (see struct direct_band). */
INLINE TARGET_AVX512 void finish(const struct direct_band *b, int o, __m512 v, __mmask16 m,
                                 float *dst, __m512 *s, __m512 *s2)
{
    if (m == 0xFFFF) {
        if (b->accumulate) v = _mm512_add_ps(v, _mm512_loadu_ps(dst));
    } else {
        /* register compress (the memory form is slow on AMD), then a masked run */
        v = _mm512_maskz_compress_ps(m, v);
        m = (__mmask16)((1u << __builtin_popcount(m)) - 1);
        if (b->accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, dst));
    }
    if (b->scale || b->shift)
        v = _mm512_fmadd_ps(v, _mm512_set1_ps(b->scale ? b->scale[o] : 1.0f),
                            _mm512_set1_ps(b->shift ? b->shift[o] : 0.0f));
    if (b->relu) v = _mm512_max_ps(v, _mm512_setzero_ps());
    if (m == 0xFFFF)
        _mm512_storeu_ps(dst, v);
    else if (m)
        _mm512_mask_storeu_ps(dst, m, v);
    if (s) { /* a partial run: lanes past it may hold shift or junk */
        if (m != 0xFFFF) v = _mm512_maskz_mov_ps(m, v);
        *s = _mm512_add_ps(*s, v);
        *s2 = _mm512_fmadd_ps(v, v, *s2);
    }
}

/* Store of one vector of channel o of a BN's output gradient, summing the BN's backward
 * statistics (see struct direct_band, aux). */
INLINE TARGET_AVX512 void finish_aux(const struct direct_band *b, int o, __m512 v, __mmask16 m,
                                     float *dst, const float *xa, __m512 *s, __m512 *s2)
{
    __m512 x;
    if (m == 0xFFFF) {
        if (b->accumulate) v = _mm512_add_ps(v, _mm512_loadu_ps(dst));
        _mm512_storeu_ps(dst, v);
        x = _mm512_loadu_ps(xa);
    } else {
        v = _mm512_maskz_compress_ps(m, v);
        m = (__mmask16)((1u << __builtin_popcount(m)) - 1);
        if (!m) return;
        if (b->accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, dst));
        _mm512_mask_storeu_ps(dst, m, v);
        x = _mm512_maskz_loadu_ps(m, xa);
        v = _mm512_maskz_mov_ps(m, v);
    }
    __m512 d = _mm512_sub_ps(x, _mm512_set1_ps(b->aux_mean[o])), g = v;
    if (b->aux_relu) {
        __m512 y = _mm512_fmadd_ps(d, _mm512_set1_ps(b->aux_scale[o]), _mm512_set1_ps(b->aux_shift[o]));
        g = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_GT_OQ), v);
    }
    *s = _mm512_add_ps(*s, g);
    *s2 = _mm512_fmadd_ps(g, d, *s2);
}

/* One register block: 8 channels x positions [q, q + 48). n_taps is a constant at the call
 * sites that matter (9), so the tap loop specialises there. */
INLINE TARGET_AVX512 void block(const struct direct_band *b, long q, int ob, const int n_taps,
                                const struct dest *d)
{
    const float *in = b->in + q, *w = b->wpk + (long)ob * b->cin * n_taps * DIRECT_OB;
    long in_cs = b->in_cs;
    __m512 a0[DIRECT_OB], a1[DIRECT_OB], a2[DIRECT_OB];
#pragma GCC unroll 8
    for (int o = 0; o < DIRECT_OB; o++) a0[o] = a1[o] = a2[o] = _mm512_setzero_ps();
    for (int c = 0; c < b->cin; c++) {
        const float *ic = in + c * in_cs;
#pragma GCC unroll 1
        for (int k = 0; k < n_taps; k++) {
            const float *p = ic + b->tap[k];
            __m512 x0 = _mm512_loadu_ps(p), x1 = _mm512_loadu_ps(p + 16);
            __m512 x2 = _mm512_loadu_ps(p + 32);
#pragma GCC unroll 8
            for (int o = 0; o < DIRECT_OB; o++) {
                __m512 bw = _mm512_set1_ps(w[o]);
                a0[o] = _mm512_fmadd_ps(bw, x0, a0[o]);
                a1[o] = _mm512_fmadd_ps(bw, x1, a1[o]);
                a2[o] = _mm512_fmadd_ps(bw, x2, a2[o]);
            }
            w += DIRECT_OB;
        }
    }
    int stats = b->sum || b->sumsq;
    for (int oo = 0; oo < DIRECT_OB; oo++) {
        int o = ob * DIRECT_OB + oo;
        if (o >= b->cout) break;
        float *dst = b->out + o * b->out_cs;
        if (b->aux) {
            const float *xa = b->aux + o * b->out_cs;
            float *st = b->stat + o * 32;
            __m512 s = _mm512_loadu_ps(st), s2 = _mm512_loadu_ps(st + 16);
            finish_aux(b, o, a0[oo], d->m[0], dst + d->at[0], xa + d->at[0], &s, &s2);
            finish_aux(b, o, a1[oo], d->m[1], dst + d->at[1], xa + d->at[1], &s, &s2);
            finish_aux(b, o, a2[oo], d->m[2], dst + d->at[2], xa + d->at[2], &s, &s2);
            _mm512_storeu_ps(st, s);
            _mm512_storeu_ps(st + 16, s2);
            continue;
        }
        if (!stats) {
            finish(b, o, a0[oo], d->m[0], dst + d->at[0], NULL, NULL);
            finish(b, o, a1[oo], d->m[1], dst + d->at[1], NULL, NULL);
            finish(b, o, a2[oo], d->m[2], dst + d->at[2], NULL, NULL);
            continue;
        }
        float *st = b->stat + o * 32; /* per-lane partial sums over the band */
        __m512 s = _mm512_loadu_ps(st), s2 = _mm512_loadu_ps(st + 16);
        finish(b, o, a0[oo], d->m[0], dst + d->at[0], &s, &s2);
        finish(b, o, a1[oo], d->m[1], dst + d->at[1], &s, &s2);
        finish(b, o, a2[oo], d->m[2], dst + d->at[2], &s, &s2);
        _mm512_storeu_ps(st, s);
        _mm512_storeu_ps(st + 16, s2);
    }
}

/* Sum of 16 float lanes in double. */
INLINE TARGET_AVX512 double sum_pd(__m512 v)
{
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    __m512d hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
    return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}

/* Statistics: each lane of a channel's float partial sums covers at most a band's
 * positions / 16 values; the band's total goes to sum / sumsq in double. */
INLINE TARGET_AVX512 void band(const struct direct_band *b, const int n_taps)
{
    int stats = b->sum || b->sumsq || b->aux;
    if (stats)
        for (int i = 0; i < 32 * b->cout; i++) b->stat[i] = 0.0f;
    for (long q = 0; q < b->nq; q += DIRECT_QB) {
        /* Pointwise reads the input planes in place, one stream per channel, more than the
         * hardware prefetcher follows: fetch the next block's lines (measured: 1x1 32 -> 32
         * at 127 x 215, 98 -> 112 GFLOP/s on one thread, 190 -> 220 on two). */
        if (n_taps == 1 && q + 2 * DIRECT_QB <= b->nq)
            for (int c = 0; c < b->cin; c++) {
                const char *p = (const char *)(b->in + c * b->in_cs + q + DIRECT_QB);
                _mm_prefetch(p, _MM_HINT_T0);
                _mm_prefetch(p + 64, _MM_HINT_T0);
                _mm_prefetch(p + 128, _MM_HINT_T0);
            }
        struct dest d;
        for (int v = 0; v < 3; v++) dest_of(b, q + 16 * v, &d.m[v], &d.at[v]);
        for (int ob = 0; ob < b->n_ob; ob++) block(b, q, ob, n_taps, &d);
    }
    if (stats)
        for (int o = 0; o < b->cout; o++) {
            double *s1 = b->aux ? b->gsum : b->sum, *s2 = b->aux ? b->gsumx : b->sumsq;
            if (s1) s1[o] += sum_pd(_mm512_loadu_ps(b->stat + 32 * o));
            if (s2) s2[o] += sum_pd(_mm512_loadu_ps(b->stat + 32 * o + 16));
        }
}

static TARGET_AVX512 void band_3x3(const struct direct_band *b)
{
    band(b, 9);
}

static TARGET_AVX512 void band_1x1(const struct direct_band *b)
{
    band(b, 1);
}

static TARGET_AVX512 void band_any(const struct direct_band *b)
{
    band(b, b->n_taps);
}

/* 16 x 16 transpose: rows r[0..16) of a block become its columns. */
INLINE TARGET_AVX512 void transpose16(__m512 *r)
{
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++) {
            __m512d a = _mm512_castps_pd(t[4 * i + j]), b = _mm512_castps_pd(t[4 * i + j + 2]);
            r[4 * i + 2 * j] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
            r[4 * i + 2 * j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            t[8 * i + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + j + 4], 0x88);
            t[8 * i + j + 4] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + j + 4], 0xDD);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xDD);
    }
}

/* dyt (nq, ld) from the band's dy rows, in 16 x 16 blocks; zero at the junk columns, past
 * the last row and past cout. */
static TARGET_AVX512 void transpose_dy(const struct direct_wband *b)
{
    long ld = DIRECT_WLD(b->cout);
    for (int o0 = 0; o0 < ld; o0 += 16) {
        __mmask16 ok = 0; /* channels of this block that exist */
        for (int o = 0; o < 16; o++)
            if (o0 + o < b->cout) ok |= (__mmask16)(1u << o);
        for (long q0 = 0; q0 < b->nq; q0 += 16) {
            __m512 r[16];
            int row = (int)(q0 / b->wp), t0 = (int)(q0 % b->wp);
            /* positions q0..q0+15 of channel o: gather the run of each row they cross */
            for (int o = 0; o < 16; o++) r[o] = _mm512_setzero_ps();
            for (int k = 0; k < 16;) {
                int n = b->wp - t0 < 16 - k ? b->wp - t0 : 16 - k; /* positions in this row */
                int valid = row < b->rows ? (b->wo - t0 < n ? b->wo - t0 : n) : 0;
                if (valid > 0) {
                    __mmask16 m = (__mmask16)(((1u << valid) - 1) << k);
                    const float *src = b->dy + (long)row * b->dy_ld + t0 - k;
                    for (int o = 0; o < 16; o++)
                        if (ok >> o & 1)
                            r[o] = _mm512_mask_loadu_ps(r[o], m, src + (long)(o0 + o) * b->dy_cs);
                }
                k += n;
                row++;
                t0 = 0;
            }
            transpose16(r);
            for (int k = 0; k < 16; k++) _mm512_storeu_ps(b->dyt + (q0 + k) * ld + o0, r[k]);
        }
    }
}

/* Register block: MR rows (channel, tap) x NR vectors of 16 output channels, loaded from
 * and stored back to dwt, summed over the band's positions. Each position costs MR
 * broadcasts of the input and NR loads of dyt. The MR row pointers do not all fit in
 * general registers when MR is 12 or 24, so U positions are taken per pass, each reloaded
 * pointer serving U broadcasts (the U * NR dyt vectors stay in registers). */
INLINE TARGET_AVX512 void wblock(const struct direct_wband *b, int r0, int o0, const int MR,
                                 const int NR, const int U)
{
    long ld = DIRECT_WLD(b->cout);
    int n_rows = b->cin * b->n_taps;
    const float *x[24];
    for (int m = 0; m < MR; m++) { /* padding rows read a real row; their sums are dropped */
        int r = r0 + m < n_rows ? r0 + m : n_rows - 1;
        x[m] = b->in + (long)(r / b->n_taps) * b->in_cs + b->tap[r % b->n_taps];
    }
    __m512 acc[24];
    float *dwt = b->dwt + (long)r0 * ld + o0;
    for (int m = 0; m < MR; m++)
        for (int v = 0; v < NR; v++) acc[m * NR + v] = _mm512_loadu_ps(dwt + m * ld + 16 * v);
    const float *dq = b->dyt + o0;
    for (long q = 0; q < b->nq; q += U) { /* nq is a multiple of 16 */
        __m512 d[4];
        for (int u = 0; u < U; u++)
            for (int v = 0; v < NR; v++) d[u * NR + v] = _mm512_loadu_ps(dq + (q + u) * ld + 16 * v);
        for (int m = 0; m < MR; m++) {
            const float *xm = x[m] + q;
            for (int u = 0; u < U; u++) {
                __m512 xv = _mm512_set1_ps(xm[u]);
                for (int v = 0; v < NR; v++)
                    acc[m * NR + v] = _mm512_fmadd_ps(xv, d[u * NR + v], acc[m * NR + v]);
            }
        }
    }
    for (int m = 0; m < MR; m++)
        for (int v = 0; v < NR; v++) _mm512_storeu_ps(dwt + m * ld + 16 * v, acc[m * NR + v]);
}

static TARGET_AVX512 void wband(const struct direct_wband *b)
{
    transpose_dy(b);
    int n_rows = b->cin * b->n_taps, nv = DIRECT_WLD(b->cout) / 16;
    for (int r0 = 0; r0 < n_rows; r0 += 24) {
        int o0 = 0;
        for (; nv - o0 / 16 >= 4; o0 += 64)
            for (int m = 0; m < 24 && r0 + m < n_rows; m += 6) wblock(b, r0 + m, o0, 6, 4, 1);
        switch (nv - o0 / 16) {
        case 3:
            for (int m = 0; m < 24 && r0 + m < n_rows; m += 8) wblock(b, r0 + m, o0, 8, 3, 1);
            break;
        case 2:
            for (int m = 0; m < 24 && r0 + m < n_rows; m += 12) wblock(b, r0 + m, o0, 12, 2, 1);
            break;
        case 1:
            wblock(b, r0, o0, 24, 1, 4);
            break;
        default:
            break;
        }
    }
}

void conv2d_avx512_wband(const struct direct_wband *b)
{
    wband(b);
}

void conv2d_avx512_band(const struct direct_band *b)
{
    if (b->n_taps == 9)
        band_3x3(b);
    else if (b->n_taps == 1)
        band_1x1(b);
    else
        band_any(b);
}

#else

int conv2d_avx512_available(void)
{
    return 0;
}

void conv2d_avx512_band(const struct direct_band *b)
{
    (void)b;
}

void conv2d_avx512_wband(const struct direct_wband *b)
{
    (void)b;
}

#endif
