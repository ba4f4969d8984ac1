/* conv2d_avx2.c: AVX2 + FMA micro-kernels of conv2d.c's direct stride-1 convolution, for CPUs
 * without AVX-512 (AVX2 and FMA are in the build's x86-64-v3 baseline, so no dispatch is
 * needed to call them, only to prefer them).
 *
 * Same contracts and layouts as the AVX-512 kernels (conv2d_direct.h): packed weights in
 * blocks of DIRECT_OB = 8 output channels, bands in blocks of DIRECT_QB = 48 flattened
 * positions. With 16 vector registers the register block is 4 output channels x 3 vectors
 * of 8 positions (12 accumulators): each step loads three input vectors at the tap's offset
 * and broadcasts four weights, so every load feeds four FMAs and every weight three. A
 * DIRECT_OB x DIRECT_QB block is four such register blocks. The weight gradient keeps
 * 6 (channel, tap) rows x 16 output channels in registers; every position costs six
 * broadcasts of the input and two loads of the transposed output gradient for 12 FMAs.
 *
 * Vectors that straddle the end of a band row (where the junk columns lie) go through a
 * small buffer and are stored lane by lane; all others are stored whole. Each band function
 * is compiled once per epilogue: inference's plain ones (none, scale + shift, and relu)
 * store whole register blocks without a test per vector, which took a tenth of a 3x3
 * 8 -> 8 layer's time and of the stem's on Zen 3. Output positions advance without a
 * division.
 *
 * ref: conv2d_avx512.c (the same algorithm with 16-float vectors).
 */
#include <immintrin.h>
#include <string.h>

#include "conv2d_direct.h"

#define INLINE static inline __attribute__((always_inline))

/* Which of the 8 flattened positions q..q+7 are outputs (mask bit l: position q + l) and
 * the output index of the first of them; valid outputs are consecutive in the output. */
static void dest8(const struct direct_band *b, long q, unsigned *m, long *at)
{
    long row = q / b->wp;
    int col = (int)(q % b->wp);
    *at = row * b->wo + (col < b->wo ? col : b->wo);
    unsigned mask = 0;
    for (int l = 0; l < 8 && row < b->rows; row++, col = 0) {
        int seg = b->wp - col < 8 - l ? b->wp - col : 8 - l;
        int valid = b->wo - col < seg ? b->wo - col : seg;
        if (valid > 0) mask |= ((1u << valid) - 1) << l;
        l += seg;
    }
    *m = mask;
}

/* Epilogue and store of one vector of output channel o (see struct direct_band). */
INLINE void finish8(const struct direct_band *b, int o, __m256 v, unsigned m, float *dst,
                    __m256 *s, __m256 *s2)
{
    float sc = b->scale ? b->scale[o] : 1.0f, sh = b->shift ? b->shift[o] : 0.0f;
    int affine = b->scale || b->shift;
    if (m == 0xFF) {
        if (b->accumulate) v = _mm256_add_ps(v, _mm256_loadu_ps(dst));
        if (affine) v = _mm256_fmadd_ps(v, _mm256_set1_ps(sc), _mm256_set1_ps(sh));
        if (b->relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
        _mm256_storeu_ps(dst, v);
        if (s) {
            *s = _mm256_add_ps(*s, v);
            *s2 = _mm256_fmadd_ps(v, v, *s2);
        }
        return;
    }
    if (!m) return;
    float t[8], c[8] = {0};
    _mm256_storeu_ps(t, v);
    int k = 0;
    for (int l = 0; l < 8; l++) {
        if (!(m >> l & 1)) continue;
        float u = t[l];
        if (b->accumulate) u += dst[k];
        if (affine) u = __builtin_fmaf(u, sc, sh);
        if (b->relu) u = u > 0.0f ? u : 0.0f;
        dst[k] = u;
        c[k++] = u;
    }
    if (s) {
        __m256 w = _mm256_loadu_ps(c);
        *s = _mm256_add_ps(*s, w);
        *s2 = _mm256_fmadd_ps(w, w, *s2);
    }
}

/* The epilogues a band may have: EPI_ANY covers every case (struct direct_band); the others
 * are the common plain stores, with none of accumulate, statistics or aux: the value as it
 * is, through the affine map, or through the affine map and relu. */
enum { EPI_ANY, EPI_NONE, EPI_AFFINE, EPI_AFFINE_RELU };

/* finish8 of a whole vector under a plain epilogue. */
INLINE void finish8_plain(const struct direct_band *b, int o, const int epi, __m256 v,
                          float *dst)
{
    if (epi != EPI_NONE) {
        __m256 sc = _mm256_set1_ps(b->scale ? b->scale[o] : 1.0f);
        v = _mm256_fmadd_ps(v, sc, _mm256_set1_ps(b->shift ? b->shift[o] : 0.0f));
    }
    if (epi == EPI_AFFINE_RELU) v = _mm256_max_ps(v, _mm256_setzero_ps());
    _mm256_storeu_ps(dst, v);
}

/* Store of one vector of channel o of a BN's output gradient, summing the BN's backward
 * statistics (see struct direct_band, aux). */
INLINE void finish8_aux(const struct direct_band *b, int o, __m256 v, unsigned m, float *dst,
                        const float *xa, __m256 *s, __m256 *s2)
{
    float mu = b->aux_mean[o], sc = b->aux_scale[o], sh = b->aux_shift[o];
    if (m == 0xFF) {
        if (b->accumulate) v = _mm256_add_ps(v, _mm256_loadu_ps(dst));
        _mm256_storeu_ps(dst, v);
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xa), _mm256_set1_ps(mu)), g = v;
        if (b->aux_relu) {
            __m256 y = _mm256_fmadd_ps(d, _mm256_set1_ps(sc), _mm256_set1_ps(sh));
            g = _mm256_and_ps(_mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ), v);
        }
        *s = _mm256_add_ps(*s, g);
        *s2 = _mm256_fmadd_ps(g, d, *s2);
        return;
    }
    if (!m) return;
    float t[8], gv[8] = {0}, dv[8] = {0};
    _mm256_storeu_ps(t, v);
    int k = 0;
    for (int l = 0; l < 8; l++) {
        if (!(m >> l & 1)) continue;
        float u = t[l];
        if (b->accumulate) u += dst[k];
        dst[k] = u;
        float d = xa[k] - mu;
        gv[k] = !b->aux_relu || __builtin_fmaf(d, sc, sh) > 0.0f ? u : 0.0f;
        dv[k++] = d;
    }
    __m256 g = _mm256_loadu_ps(gv);
    *s = _mm256_add_ps(*s, g);
    *s2 = _mm256_fmadd_ps(g, _mm256_loadu_ps(dv), *s2);
}

/* Register block: output channels ob * 8 + half * 4 + [0, 4) x positions [q, q + 24). */
INLINE void block(const struct direct_band *b, long q, int ob, int half, const int n_taps,
                  const int ragged, const int epi, const unsigned *m, const long *at)
{
    const float *in = b->in + q;
    const long w_ob = ragged ? b->w_ob : (long)b->cin * n_taps * DIRECT_OB;
    const float *w = b->wpk + ob * w_ob + half * 4;
    long in_cs = b->in_cs;
    /* Named accumulators for AVX2_BLOCK_STEP. */
    __m256 z = _mm256_setzero_ps();
    __m256 c00 = z, c01 = z, c02 = z, c10 = z, c11 = z, c12 = z;
    __m256 c20 = z, c21 = z, c22 = z, c30 = z, c31 = z, c32 = z;
    for (int c = 0; c < b->cin; c++) {
        const float *ic = in + c * in_cs;
        const int *tap = ragged ? b->ctap + c * n_taps : b->tap, nt = ragged ? b->cnt[c] : n_taps;
#pragma GCC unroll 1
        for (int k = 0; k < nt; k++) {
            const float *p = ic + tap[k];
            __m256 x0 = _mm256_loadu_ps(p), x1 = _mm256_loadu_ps(p + 8);
            __m256 x2 = _mm256_loadu_ps(p + 16);
            AVX2_BLOCK_STEP(w, x0, x1, x2);
            w += DIRECT_OB;
        }
    }
    __m256 a0[4] = {c00, c10, c20, c30}, a1[4] = {c01, c11, c21, c31};
    __m256 a2[4] = {c02, c12, c22, c32};
    if (epi != EPI_ANY && (m[0] & m[1] & m[2]) == 0xFF) {
        for (int oo = 0; oo < 4; oo++) {
            int o = ob * DIRECT_OB + half * 4 + oo;
            if (o >= b->cout) break;
            float *dst = b->out + o * b->out_cs;
            finish8_plain(b, o, epi, a0[oo], dst + at[0]);
            finish8_plain(b, o, epi, a1[oo], dst + at[1]);
            finish8_plain(b, o, epi, a2[oo], dst + at[2]);
        }
        return;
    }
    int stats = b->sum || b->sumsq;
    for (int oo = 0; oo < 4; oo++) {
        int o = ob * DIRECT_OB + half * 4 + oo;
        if (o >= b->cout) break;
        float *dst = b->out + o * b->out_cs;
        if (b->aux) {
            const float *xa = b->aux + o * b->out_cs;
            float *st = b->stat + o * 32;
            __m256 s = _mm256_loadu_ps(st), s2 = _mm256_loadu_ps(st + 16);
            finish8_aux(b, o, a0[oo], m[0], dst + at[0], xa + at[0], &s, &s2);
            finish8_aux(b, o, a1[oo], m[1], dst + at[1], xa + at[1], &s, &s2);
            finish8_aux(b, o, a2[oo], m[2], dst + at[2], xa + at[2], &s, &s2);
            _mm256_storeu_ps(st, s);
            _mm256_storeu_ps(st + 16, s2);
            continue;
        }
        if (!stats) {
            finish8(b, o, a0[oo], m[0], dst + at[0], NULL, NULL);
            finish8(b, o, a1[oo], m[1], dst + at[1], NULL, NULL);
            finish8(b, o, a2[oo], m[2], dst + at[2], NULL, NULL);
            continue;
        }
        float *st = b->stat + o * 32; /* lanes 0..7: sums, 16..23: sums of squares */
        __m256 s = _mm256_loadu_ps(st), s2 = _mm256_loadu_ps(st + 16);
        finish8(b, o, a0[oo], m[0], dst + at[0], &s, &s2);
        finish8(b, o, a1[oo], m[1], dst + at[1], &s, &s2);
        finish8(b, o, a2[oo], m[2], dst + at[2], &s, &s2);
        _mm256_storeu_ps(st, s);
        _mm256_storeu_ps(st + 16, s2);
    }
}

/* dest8 of the position row * wp + col, col < wp, without a division where the eight
 * positions are outputs of one row. */
INLINE void dest8_at(const struct direct_band *b, long row, int col, unsigned *m, long *at)
{
    if (col + 8 <= b->wo && row < b->rows) {
        *m = 0xFF;
        *at = row * b->wo + col;
        return;
    }
    dest8(b, row * b->wp + col, m, at);
}

INLINE void band(const struct direct_band *b, const int n_taps, const int ragged, const int epi)
{
    int stats = b->sum || b->sumsq || b->aux;
    if (stats) memset(b->stat, 0, sizeof(float) * 32 * (size_t)b->cout);
    long row = 0; /* of position q = row * wp + col */
    int col = 0;
    for (long q = 0; q < b->nq; q += DIRECT_QB) {
        if (n_taps == 1 && q + 2 * DIRECT_QB <= b->nq) /* pointwise: many streams, prefetch */
            for (int c = 0; c < b->cin; c++) {
                const char *p = (const char *)(b->in + c * b->in_cs + q + DIRECT_QB);
                _mm_prefetch(p, _MM_HINT_T0);
                _mm_prefetch(p + 64, _MM_HINT_T0);
                _mm_prefetch(p + 128, _MM_HINT_T0);
            }
        for (int sub = 0; sub < 2; sub++) {
            long qs = q + 24 * sub;
            unsigned m[3];
            long at[3];
            for (int v = 0; v < 3; v++) {
                dest8_at(b, row, col, &m[v], &at[v]);
                for (col += 8; col >= b->wp; col -= b->wp) row++;
            }
            for (int ob = 0; ob < b->n_ob; ob++) {
                block(b, qs, ob, 0, n_taps, ragged, epi, m, at);
                if (ob * DIRECT_OB + 4 < b->cout) block(b, qs, ob, 1, n_taps, ragged, epi, m, at);
            }
        }
    }
    if (stats)
        for (int o = 0; o < b->cout; o++) {
            double *s1 = b->aux ? b->gsum : b->sum, *s2 = b->aux ? b->gsumx : b->sumsq;
            if (s1) s1[o] += sum8_pd(_mm256_loadu_ps(b->stat + 32 * o));
            if (s2) s2[o] += sum8_pd(_mm256_loadu_ps(b->stat + 32 * o + 16));
        }
}

/* One band function per tap pattern and epilogue, each with its loops specialised. */
#define BAND_FNS(name, n_taps, ragged)                                                        \
    static void name(const struct direct_band *b, int epi)                                     \
    {                                                                                          \
        switch (epi) {                                                                         \
        case EPI_NONE: band(b, n_taps, ragged, EPI_NONE); break;                               \
        case EPI_AFFINE: band(b, n_taps, ragged, EPI_AFFINE); break;                           \
        case EPI_AFFINE_RELU: band(b, n_taps, ragged, EPI_AFFINE_RELU); break;                 \
        default: band(b, n_taps, ragged, EPI_ANY);                                             \
        }                                                                                      \
    }
BAND_FNS(band_3x3, 9, 0)
BAND_FNS(band_1x1, 1, 0)
BAND_FNS(band_any, b->n_taps, 0)
BAND_FNS(band_ragged, b->n_taps, 1)

void conv2d_avx2_band(const struct direct_band *b)
{
    int epi = EPI_ANY;
    if (!b->accumulate && !b->sum && !b->sumsq && !b->aux) {
        if (b->scale || b->shift) epi = b->relu ? EPI_AFFINE_RELU : EPI_AFFINE;
        else if (!b->relu) epi = EPI_NONE;
    }
    if (b->cnt)
        band_ragged(b, epi);
    else if (b->n_taps == 9)
        band_3x3(b, epi);
    else if (b->n_taps == 1)
        band_1x1(b, epi);
    else
        band_any(b, epi);
}

/* ----------------------------------------------------------------------------- weight */

/* 8 x 8 transpose: rows r[0..8) become its columns. */
INLINE void transpose8(__m256 *r)
{
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

/* dyt (nq, DIRECT_WLD(cout)) from the band's dy, in 8 x 8 blocks; zero at the junk columns,
 * past the last row and past cout. */
static void transpose_dy(const struct direct_wband *b)
{
    long ld = DIRECT_WLD(b->cout);
    for (long q0 = 0; q0 < b->nq; q0 += 8) {
        int row = (int)(q0 / b->wp), t0 = (int)(q0 % b->wp);
        int whole = row < b->rows && t0 + 8 <= b->wo; /* eight outputs of one row */
        long off[8];
        int ok[8];
        if (!whole)
            for (int l = 0, r = row, t = t0; l < 8; l++) {
                ok[l] = r < b->rows && t < b->wo;
                off[l] = (long)r * b->dy_ld + t;
                if (++t == b->wp) t = 0, r++;
            }
        for (long o0 = 0; o0 < ld; o0 += 8) {
            __m256 r[8];
            for (int o = 0; o < 8; o++) {
                if (o0 + o >= b->cout) {
                    r[o] = _mm256_setzero_ps();
                    continue;
                }
                const float *src = b->dy + (o0 + o) * b->dy_cs;
                if (whole) {
                    r[o] = _mm256_loadu_ps(src + (long)row * b->dy_ld + t0);
                } else {
                    float v[8];
                    for (int l = 0; l < 8; l++) v[l] = ok[l] ? src[off[l]] : 0.0f;
                    r[o] = _mm256_loadu_ps(v);
                }
            }
            transpose8(r);
            for (int k = 0; k < 8; k++) _mm256_storeu_ps(b->dyt + (q0 + k) * ld + o0, r[k]);
        }
    }
}

/* Register block: 6 rows (channel, tap) x 16 output channels, loaded from and stored back to
 * dwt, summed over the band's positions. */
INLINE void wblock(const struct direct_wband *b, int r0, long o0)
{
    long ld = DIRECT_WLD(b->cout);
    int n_rows = b->cin * b->n_taps;
    const float *x[6];
    for (int m = 0; m < 6; m++) { /* padding rows read a real row; their sums are dropped */
        int r = r0 + m < n_rows ? r0 + m : n_rows - 1;
        x[m] = b->in + (long)(r / b->n_taps) * b->in_cs + b->tap[r % b->n_taps];
    }
    float *dwt = b->dwt + (long)r0 * ld + o0;
    __m256 acc[6][2];
    for (int m = 0; m < 6; m++)
        for (int v = 0; v < 2; v++) acc[m][v] = _mm256_loadu_ps(dwt + m * ld + 8 * v);
    const float *dq = b->dyt + o0;
    for (long q = 0; q < b->nq; q++) {
        __m256 d0 = _mm256_loadu_ps(dq + q * ld), d1 = _mm256_loadu_ps(dq + q * ld + 8);
#pragma GCC unroll 6
        for (int m = 0; m < 6; m++) {
            __m256 xv = _mm256_broadcast_ss(x[m] + q);
            acc[m][0] = _mm256_fmadd_ps(xv, d0, acc[m][0]);
            acc[m][1] = _mm256_fmadd_ps(xv, d1, acc[m][1]);
        }
    }
    for (int m = 0; m < 6; m++)
        for (int v = 0; v < 2; v++) _mm256_storeu_ps(dwt + m * ld + 8 * v, acc[m][v]);
}

void conv2d_avx2_wband(const struct direct_wband *b)
{
    transpose_dy(b);
    int n_rows = b->cin * b->n_taps;
    long ld = DIRECT_WLD(b->cout);
    for (int r0 = 0; r0 < n_rows; r0 += 24)
        for (long o0 = 0; o0 < ld; o0 += 16)
            for (int m = 0; m < 24 && r0 + m < n_rows; m += 6) wblock(b, r0 + m, o0);
}
