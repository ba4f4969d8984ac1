/* conv2d_direct.h: what conv2d.c shares with its micro-kernels (conv2d_avx512.c, conv2d_avx2.c).
 * Not a public header: the public contract is include/basin/core/ops.h.
 *
 * The direct stride-1 convolution of conv2d.c works on bands of output rows. A band's input
 * rows are copied, zero-padded, into a per-thread buffer whose rows are WP = WO + (KT-1)*DT
 * floats long, so output position (r, t) of the band reads buffer element
 * r*WP + t + i*DF*WP + j*DT for tap (i, j): one constant offset per tap along the flattened
 * band. The kernels compute the flattened band (including the WP - WO junk columns of each
 * row, which they drop when storing) as a 1-D correlation, with no edge cases in the inner
 * loop. A pointwise convolution needs no padding: its planes are read in place as one
 * long row.
 */
#ifndef BASIN_SRC_CORE_CONV2D_DIRECT_H
#define BASIN_SRC_CORE_CONV2D_DIRECT_H

#include <stddef.h>

#include <immintrin.h>

/* Small arithmetic shared by conv2d.c and its kernels' files. */
static inline long round16(long n)
{
    return (n + 15) / 16 * 16;
}

static inline long round_up(long n, long m)
{
    return (n + m - 1) / m * m;
}

static inline int min_int(int a, int b)
{
    return a < b ? a : b;
}

static inline int max_int(int a, int b)
{
    return a > b ? a : b;
}

/* Sum of 8 float lanes in double: the halves' pairs, then pairwise. */
static inline double sum8_pd(__m256 v)
{
    __m256d d = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                              _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    double t[4];
    _mm256_storeu_pd(t, d);
    return (t[0] + t[1]) + (t[2] + t[3]);
}

/* One step of the AVX2 register block of 4 output channels x 3 vectors of positions
 * (conv2d_avx2.c, conv2d_pointwise.c): the caller's accumulators cIJ (channel I, vector J)
 * += w[I] * xJ. A macro over named locals: with arrays GCC stored the accumulators to the
 * stack on every step. */
#define AVX2_BLOCK_STEP(w, x0, x1, x2)                                                             \
    do {                                                                                           \
        __m256 bw_ = _mm256_broadcast_ss(w);                                                       \
        c00 = _mm256_fmadd_ps(bw_, x0, c00);                                                       \
        c01 = _mm256_fmadd_ps(bw_, x1, c01);                                                       \
        c02 = _mm256_fmadd_ps(bw_, x2, c02);                                                       \
        bw_ = _mm256_broadcast_ss((w) + 1);                                                        \
        c10 = _mm256_fmadd_ps(bw_, x0, c10);                                                       \
        c11 = _mm256_fmadd_ps(bw_, x1, c11);                                                       \
        c12 = _mm256_fmadd_ps(bw_, x2, c12);                                                       \
        bw_ = _mm256_broadcast_ss((w) + 2);                                                        \
        c20 = _mm256_fmadd_ps(bw_, x0, c20);                                                       \
        c21 = _mm256_fmadd_ps(bw_, x1, c21);                                                       \
        c22 = _mm256_fmadd_ps(bw_, x2, c22);                                                       \
        bw_ = _mm256_broadcast_ss((w) + 3);                                                        \
        c30 = _mm256_fmadd_ps(bw_, x0, c30);                                                       \
        c31 = _mm256_fmadd_ps(bw_, x1, c31);                                                       \
        c32 = _mm256_fmadd_ps(bw_, x2, c32);                                                       \
    } while (0)

/* Output channels per register block, and flattened positions per register block (three
 * 16-float vectors): 8 x 3 accumulators, each step 3 vector loads, 8 broadcasts, 24 FMAs. */
#define DIRECT_OB 8
#define DIRECT_QB 48

/* One band, forward correlation:
 *   acc[o][q] = sum over c < cin, k < n_taps of wpk[o / OB][c][k][o % OB] * in[c][q + tap[k]]
 * for q in [0, nq) (nq a multiple of DIRECT_QB) and o < n_ob * DIRECT_OB, every
 * in[c][q + tap[k]] read lying inside the caller's buffer. The kernel finishes each value
 * in registers and stores it to its output position: flattened position q = r * wp + t
 * with r < rows and t < wo goes to out[o * out_cs + r * wo + t], for o < cout; the junk
 * positions are dropped. On the way: v = acc (+ the value already there, accumulate),
 * v = v * scale[o] + shift[o] (when scale / shift are not NULL: 1 / 0 otherwise), relu,
 * and sum[o] += v, sumsq[o] += v * v (when not NULL). */
struct direct_band {
    const float *in;    /* (cin, in_cs) padded band input */
    long in_cs;
    int cin;
    const int *tap;     /* (n_taps) offsets within a channel's band input */
    int n_taps;
    const float *wpk;   /* (n_ob, cin, n_taps, DIRECT_OB) packed weights */
    int n_ob;
    long nq;
    float *out;         /* the band's first output row in channel 0 */
    long out_cs;        /* floats between output channels */
    int cout, rows, wo, wp;
    int accumulate, relu;
    const float *scale, *shift;  /* (cout) or NULL */
    double *sum, *sumsq;         /* (cout) or NULL */
    float *stat;        /* (cout, 32) scratch for the statistics' partial sums */
    /* A backward-data pass writing a BN's output gradient (aux not NULL; no scale, shift
     * or relu then): with v the value stored at an output position and x = aux at the same
     * position (the BN's input, laid out as out), g = v where the BN's relu passes
     * (fma(x - aux_mean[o], aux_scale[o], aux_shift[o]) > 0; everywhere without relu), and
     * gsum[o] += g, gsumx[o] += g * (x - aux_mean[o]). */
    const float *aux;
    const float *aux_mean, *aux_scale, *aux_shift;
    int aux_relu;
    double *gsum, *gsumx;
    /* Ragged taps (the AVX2 kernel's forward only; NULL: every channel has every tap):
     * channel c has the cnt[c] taps ctap[c * n_taps + j], and wpk holds (n_ob, sum of cnt,
     * DIRECT_OB), w_ob floats per block of output channels. A stride-2 conv's phases are
     * such channels: a 5x5 kernel leaves 25 of the 36 taps of its 3x3 phase kernels. */
    const int *ctap, *cnt;
    long w_ob;
};

/* One band, weight gradient, with the output channels along the vector lanes:
 *   dwt[c * n_taps + k][o] += sum over q < nq of in[c][q + tap[k]] * dy(o, q)
 * for c < cin, o < cout, where dy(o, q) is the band's output gradient at flattened position
 * q = r * wp + t: dy[o * dy_cs + r * dy_ld + t] for r < rows, t < wo, and zero elsewhere.
 * The kernel first transposes dy into dyt (nq, DIRECT_WLD(cout)) floats, zero-padded.
 * dwt has DIRECT_WROWS(cin * n_taps) rows of DIRECT_WLD(cout) floats; the padding rows
 * receive junk. */
#define DIRECT_WLD(cout) (((cout) + 15) / 16 * 16)
#define DIRECT_WROWS(rows) (((rows) + 23) / 24 * 24)
struct direct_wband {
    const float *in;    /* (cin, in_cs) padded band input */
    long in_cs;
    int cin;
    const int *tap;     /* (n_taps) */
    int n_taps;
    const float *dy;    /* first output row of the band in channel 0 */
    long dy_cs;         /* floats between channels of dy */
    int dy_ld;          /* floats between rows of dy */
    int cout, rows, wo, wp;
    long nq;            /* a multiple of 16, at least rows * wp */
    float *dyt;         /* (nq, DIRECT_WLD(cout)) scratch */
    float *dwt;         /* (DIRECT_WROWS(cin * n_taps), DIRECT_WLD(cout)), added to */
};

/* 1 when the CPU runs AVX-512 F (and the kernel was compiled in). */
int conv2d_avx512_available(void);
void conv2d_avx512_band(const struct direct_band *b);
void conv2d_avx512_wband(const struct direct_wband *b);

/* The same contracts with AVX2 + FMA (conv2d_avx2.c): every x86-64-v3 CPU runs them. */
void conv2d_avx2_band(const struct direct_band *b);
void conv2d_avx2_wband(const struct direct_wband *b);

/* Pointwise rows (conv2d_pointwise.c): out[o][q] = epilogue(sum over c < cin of
 * wpk[o / DIRECT_OB][c][o % DIRECT_OB] * pro(in[c][q])) for q < n (any n) and o < cout,
 * read and written in place; the epilogue is v * scale[o] + shift[o] (when either is not
 * NULL), relu, and, when part is not NULL, part[16 o + l] += v and part[16 o + 8 + l] +=
 * v * v over the lanes l of the stored vectors (masked lanes count zero). pro applies
 * relu?(fma(x - pro_mean[c], pro_scale[c], pro_shift[c])) when pro_mean is not NULL. */
struct pw_rows {
    const float *in;
    long in_cs;
    int cin;
    const float *wpk;   /* (n_ob, cin, DIRECT_OB) */
    int n_ob;
    float *out;
    long out_cs;
    int cout;
    long n;
    const float *scale, *shift;
    int relu;
    const float *pro_mean, *pro_scale, *pro_shift;
    int pro_relu;
    float *part;
};
void conv2d_pw_rows(const struct pw_rows *a);
/* Packed weights wpk (groups, n_ob, cin, kk, DIRECT_OB), zero past cout, from w (groups *
 * cout, cin, kk); transposed: w is a forward conv's (groups * cin, cout, kk), read with in
 * and out swapped and the taps flipped. Ragged (rn not NULL): channel c has only the rn[c]
 * taps rk[c * kk + j], packed one after the other. The blocks of DIRECT_OB output channels
 * are shared out over the enclosing parallel region's threads (ends with its barrier). */
void conv2d_pack_weights(const float *w, int groups, int cin, int cout, int kk, int transposed,
                         const int *rk, const int *rn, float *wpk);
/* The 1x1 stride-1 unpadded forward on them (any groups but depthwise), every x86-64-v3
 * CPU; with the prologue and the whole epilogue. Scratch: the floats it returns. */
struct conv2d_shape;
struct conv2d_fuse;
int conv2d_pointwise_shape(const struct conv2d_shape *s);
size_t conv2d_pointwise_scratch_floats(const struct conv2d_shape *s, int n_threads);
void conv2d_pointwise_forward(const struct conv2d_shape *s, float *y, const float *x,
                              const float *w, const struct conv2d_fuse *fuse, float *scratch);

/* Winograd F(2x2, 3x3) forward of 3x3 stride-1 convolutions (conv2d_winograd.c), for any
 * groups but depthwise, padding >= 0, with the prologue and the whole epilogue; every
 * x86-64-v3 CPU. Scratch: the floats it returns. */
int conv2d_winograd_shape(const struct conv2d_shape *s);
size_t conv2d_winograd_scratch_floats(const struct conv2d_shape *s, int n_threads);
void conv2d_winograd_forward(const struct conv2d_shape *s, float *y, const float *x, const float *w,
                             const struct conv2d_fuse *fuse, float *scratch);

#endif
