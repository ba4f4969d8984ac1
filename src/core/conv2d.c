/* conv2d.c: 2-D convolution (forward, backward data, backward weight).
 *
 * Four kernels (ops.h, enum conv2d_kernel) run all three passes of the shapes they take
 * (the direct ones also the forward of stride-2 shapes), two more the forward only; which one runs is the
 * caller's choice (a plan measures them, conv2d_tune.c), or the built-in default:
 * - direct, stride-1, not depthwise (the "direct" section below; micro-kernels in
 *   conv2d_avx512.c and conv2d_avx2.c): bands of output rows are copied zero-padded into a
 *   per-thread buffer and convolved as one flat 1-D correlation, output channels x
 *   positions in registers. The copy can apply a batch norm to the input as it goes
 *   (struct conv2d_prologue), and the backward-data pass can sum the backward statistics
 *   of the BN whose gradient it writes (struct conv2d_bnstat). A stride-2 forward runs on
 *   them as a stride-1 convolution over the four phases of its input (the "stride 2"
 *   section);
 * - depthwise (groups == I == O): direct loops;
 * - GEMM, for every shape, lowered as follows;
 * - forward only: winograd (conv2d_winograd.c) and pointwise (conv2d_pointwise.c, whose
 *   weights are packed as the direct kernels', conv2d_pack_weights).
 *
 * Key idea: the output positions of each sample are cut into tiles small enough that the
 * im2col columns of one tile ((I/groups)*KF*KT rows) and its output stay in a core's L2
 * (CONV2D_TILE_FLOATS); OpenMP threads take
 * contiguous runs of (sample, tile) work items, lower the tile into their own slice of the
 * scratch, call the single-threaded gemm() on it, and apply the fused epilogue while the
 * output tile is still in cache. Three shapes skip the general path:
 * - 1x1, stride 1, no padding: the input planes already are the column matrix;
 * - depthwise (groups == I == O): direct loops; a GEMM with one input row is all overhead;
 * - backward data at stride 1 is itself a stride-1 convolution of dy with the flipped,
 *   transposed kernel and padding (K-1)*d - p, so it reuses the forward lowering and
 *   accumulates into dx through the GEMM's beta. Strided convs scatter columns back
 *   (col2im) instead, threads owning disjoint (sample, channel) slices of dx so they never
 *   write the same element.
 * Weight gradients are summed per thread into scratch and reduced in thread order at the
 * end, so the result is fixed for a given thread count.
 *
 * ref: Chellapilla, Puri, Simard 2006, "High performance convolutional neural networks for
 *      document processing" (im2col); Dumoulin & Visin 2016, "A guide to convolution
 *      arithmetic", section 4 (transposed convolution of a stride-1 convolution);
 *      PyTorch aten/src/ATen/native/ConvolutionMM2d.cpp (slow_conv2d, col2im);
 *      Georganas et al. 2018, "Anatomy of high-performance deep learning convolutions on
 *      SIMD architectures" (direct convolution).
 */
#include <omp.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "basin/core/gemm.h"
#include "basin/core/ops.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "conv2d_direct.h"

/* Tile budget in floats per thread for the columns plus the output tile: 1 MB, a Zen 4/5
 * L2. Measured on the CP-ResNet layers (batch 16, 2 threads), 64 K and 128 K floats were
 * 5-10% slower on the stem and the 31 x 53 maps and no faster elsewhere: fewer, larger
 * gemm() calls repack the weights less often, and OpenBLAS streams the columns through its
 * own packed panels anyway. */
#ifndef CONV2D_TILE_FLOATS
#define CONV2D_TILE_FLOATS (256 * 1024)
#endif
/* Fewer columns than this makes each gemm() call too thin to run at speed. */
#define CONV2D_TILE_MIN 128

int conv2d_shape_init(struct conv2d_shape *s)
{
    if (s->n <= 0 || s->ci <= 0 || s->fi <= 0 || s->ti <= 0 || s->co <= 0 || s->kf <= 0 ||
        s->kt <= 0)
        return status_set(STATUS_INVALID, "conv2d: sizes must be positive (n %d, in %d x %d x %d, "
                                          "out %d, kernel %d x %d)",
                          s->n, s->ci, s->fi, s->ti, s->co, s->kf, s->kt);
    if (s->sf <= 0 || s->st <= 0 || s->df <= 0 || s->dt <= 0 || s->pf < 0 || s->pt < 0)
        return status_set(STATUS_INVALID,
                          "conv2d: stride (%d, %d) and dilation (%d, %d) must be positive, "
                          "padding (%d, %d) not negative",
                          s->sf, s->st, s->df, s->dt, s->pf, s->pt);
    if (s->groups <= 0 || s->ci % s->groups || s->co % s->groups)
        return status_set(STATUS_INVALID, "conv2d: groups %d must divide in %d and out %d channels",
                          s->groups, s->ci, s->co);
    long nf = (long)s->fi + 2L * s->pf - (long)s->df * (s->kf - 1) - 1;
    long nt = (long)s->ti + 2L * s->pt - (long)s->dt * (s->kt - 1) - 1;
    if (nf < 0 || nt < 0)
        return status_set(STATUS_INVALID,
                          "conv2d: kernel %d x %d (dilation %d, %d) does not fit input %d x %d "
                          "padded by (%d, %d)",
                          s->kf, s->kt, s->df, s->dt, s->fi, s->ti, s->pf, s->pt);
    s->fo = (int)(nf / s->sf + 1);
    s->to = (int)(nt / s->st + 1);
    return STATUS_OK;
}

static int is_depthwise(const struct conv2d_shape *s)
{
    return s->groups == s->ci && s->groups == s->co;
}

static int is_pointwise(const struct conv2d_shape *s)
{
    return s->kf == 1 && s->kt == 1 && s->sf == 1 && s->st == 1 && s->pf == 0 && s->pt == 0;
}

/* ----------------------------------------------------------------------------- scratch */

/* Per-thread slices of the scratch, in floats, each a multiple of 16 so every slice keeps
 * the 64-byte alignment of the block (no false sharing, aligned column rows). */
struct layout {
    long tile;      /* output positions per tile, a multiple of 16 */
    long wt;        /* flipped, transposed weights for backward data (shared) */
    long col;       /* im2col tile */
    long dwp;       /* weight-gradient partial sums */
    long stats;     /* 2 * O doubles of fused statistics */
    long per_thread;
};

static void layout_of(const struct conv2d_shape *s, struct layout *l)
{
    long kmax = (long)max_int(s->ci, s->co) / s->groups * s->kf * s->kt;
    /* The columns and the output tile (which the epilogue reads back) share the budget;
     * the output positions are then cut into equal tiles, so no thin remainder tile
     * (a gemm() of a few columns) is left at the end of each sample. */
    long tile = CONV2D_TILE_FLOATS / (kmax + max_int(s->ci, s->co)) / 16 * 16;
    if (tile < CONV2D_TILE_MIN) tile = CONV2D_TILE_MIN;
    long out = (long)s->fo * s->to, n_tiles = (out + tile - 1) / tile;
    tile = round16((out + n_tiles - 1) / n_tiles);
    memset(l, 0, sizeof *l);
    l->tile = tile;
    l->stats = round16(4L * s->co);
    /* Depthwise shapes too: GEMM runs them when a plan asks for it (tests do). */
    l->dwp = round16((long)s->co * (s->ci / s->groups) * s->kf * s->kt);
    int strided = s->sf != 1 || s->st != 1;
    if (!is_pointwise(s)) l->col = kmax * tile;
    if (!strided && !is_pointwise(s)) l->wt = l->dwp;
    l->per_thread = l->col + l->dwp + l->stats;
}

static int direct_shape(const struct conv2d_shape *s);
static size_t direct_scratch_floats(const struct conv2d_shape *s, int n_threads);
static size_t s2d_scratch_floats(const struct conv2d_shape *s, int n_threads);

/* The caller sizes the scratch for the thread count the kernels will run with; the kernels
 * use threads_get() threads, so a caller that changes the thread count re-plans (calls this
 * again and reallocates) before the next kernel call. */
size_t conv2d_scratch_floats(const struct conv2d_shape *s, int n_threads)
{
    struct layout l;
    CHECK(n_threads >= 1);
    layout_of(s, &l);
    size_t n = (size_t)(l.wt + (long)n_threads * l.per_thread);
    if (direct_shape(s)) {
        size_t nd = direct_scratch_floats(s, n_threads);
        if (nd > n) n = nd;
    }
    size_t nw = conv2d_winograd_scratch_floats(s, n_threads);
    if (nw > n) n = nw;
    size_t np = conv2d_pointwise_scratch_floats(s, n_threads);
    if (np > n) n = np;
    size_t ns = s2d_scratch_floats(s, n_threads);
    return ns > n ? ns : n;
}

static float *thread_col(const struct layout *l, float *scratch, int t)
{
    return scratch + l->wt + (long)t * l->per_thread;
}

static float *thread_dwp(const struct layout *l, float *scratch, int t)
{
    return thread_col(l, scratch, t) + l->col;
}

static double *thread_stats(const struct layout *l, float *scratch, int t)
{
    return (double *)(thread_dwp(l, scratch, t) + l->dwp);
}

/* ----------------------------------------------------------------------------- lowering */

/* One convolution as the GEMM sees it: per group, out (cout_g, HO*WO) = wm (cout_g, k) *
 * columns (k, HO*WO) with k = cin_g*KF*KT. Padding may be negative (a crop): the transposed
 * convolution of backward data uses (K-1)*d - p. */
struct lowering {
    int n, groups;
    int cin_g, cout_g;
    int h, w, ho, wo;
    int kf, kt, sf, st, pf, pt, df, dt;
    int direct;   /* 1x1, stride 1, no padding: the input planes are the columns */
    int trans_w;  /* wm holds (k, cout_g) per group, read transposed (direct only) */
};

/* Output columns [lo, hi) whose input column ow*st + off lies in [0, w). */
static void valid_cols(int off, int st, int w, int wo, int *lo, int *hi)
{
    int a = off >= 0 ? 0 : (-off + st - 1) / st;
    int b = w - 1 - off >= 0 ? (w - 1 - off) / st + 1 : 0;
    *lo = min_int(a, wo);
    *hi = max_int(*lo, min_int(b, wo));
}

/* Columns (rows (c, i, j), ld floats apart) of output positions [p0, p1) from the n_ch
 * input planes x. Each row is, per output row, a run of zeros, a copy (a memcpy at stride 1)
 * and another run of zeros, so lowering costs about a memcpy of the tile. Positions are
 * walked row by row without dividing: on narrow maps a division per segment cost as much
 * as the copy. */
static void im2col(const struct lowering *L, int n_ch, const float *x, long p0, long p1,
                   float *col, long ld)
{
    long hw = (long)L->h * L->w, np = p1 - p0;
    int oh_first = (int)(p0 / L->wo), ow_first = (int)(p0 % L->wo);
    for (int c = 0; c < n_ch; c++) {
        const float *xc = x + c * hw;
        for (int i = 0; i < L->kf; i++) {
            for (int j = 0; j < L->kt; j++) {
                float *row = col + ((long)(c * L->kf + i) * L->kt + j) * ld;
                int off = j * L->dt - L->pt, lo, hi; /* input column of output column 0 */
                valid_cols(off, L->st, L->w, L->wo, &lo, &hi);
                int oh = oh_first, ow0 = ow_first;
                for (long q = 0; q < np; oh++) {
                    int ow1 = (int)(np - q + ow0 < L->wo ? np - q + ow0 : L->wo);
                    float *d = row + q; /* d[ow - ow0] is output column ow */
                    int ih = oh * L->sf - L->pf + i * L->df;
                    if (ih < 0 || ih >= L->h) {
                        for (int k = 0; k < ow1 - ow0; k++) d[k] = 0.0f;
                    } else {
                        const float *xr = xc + (long)ih * L->w;
                        int a = min_int(max_int(lo, ow0), ow1), b = min_int(max_int(hi, a), ow1);
                        for (int ow = ow0; ow < a; ow++) d[ow - ow0] = 0.0f;
                        if (L->st == 1) {
                            memcpy(d + (a - ow0), xr + a + off, sizeof(float) * (size_t)(b - a));
                        } else if (L->st == 2) { /* the stem; a constant stride vectorises */
                            for (int ow = a; ow < b; ow++) d[ow - ow0] = xr[2 * ow + off];
                        } else {
                            for (int ow = a; ow < b; ow++) d[ow - ow0] = xr[ow * L->st + off];
                        }
                        for (int ow = b; ow < ow1; ow++) d[ow - ow0] = 0.0f;
                    }
                    q += ow1 - ow0;
                    ow0 = 0;
                }
            }
        }
    }
}

/* The adjoint of im2col: dx planes (n_ch of them) += the columns of positions [p0, p1). */
static void col2im(const struct lowering *L, int n_ch, float *dx, long p0, long p1,
                   const float *col, long ld)
{
    long hw = (long)L->h * L->w, np = p1 - p0;
    int oh_first = (int)(p0 / L->wo), ow_first = (int)(p0 % L->wo);
    for (int c = 0; c < n_ch; c++) {
        float *xc = dx + c * hw;
        for (int i = 0; i < L->kf; i++) {
            for (int j = 0; j < L->kt; j++) {
                const float *row = col + ((long)(c * L->kf + i) * L->kt + j) * ld;
                int off = j * L->dt - L->pt, lo, hi;
                valid_cols(off, L->st, L->w, L->wo, &lo, &hi);
                int oh = oh_first, ow0 = ow_first;
                for (long q = 0; q < np; oh++) {
                    int ow1 = (int)(np - q + ow0 < L->wo ? np - q + ow0 : L->wo);
                    const float *d = row + q;
                    int ih = oh * L->sf - L->pf + i * L->df;
                    if (ih >= 0 && ih < L->h) {
                        float *xr = xc + (long)ih * L->w;
                        int a = min_int(max_int(lo, ow0), ow1), b = min_int(max_int(hi, a), ow1);
                        if (L->st == 1) {
#pragma omp simd
                            for (int ow = a; ow < b; ow++) xr[ow + off] += d[ow - ow0];
                        } else if (L->st == 2) {
                            for (int ow = a; ow < b; ow++) xr[2 * ow + off] += d[ow - ow0];
                        } else {
                            for (int ow = a; ow < b; ow++) xr[ow * L->st + off] += d[ow - ow0];
                        }
                    }
                    q += ow1 - ow0;
                    ow0 = 0;
                }
            }
        }
    }
}

/* y = y * scale + shift, relu, and the row's sum and sum of squares, in one pass over the
 * hot tile. The sums run in float vectors (independent accumulators, so the adds pipeline)
 * over blocks of EPI_BLOCK elements, each block's total then added in double: a float
 * partial never covers more than EPI_BLOCK / 16 values. */
#define EPI_BLOCK 1024

#if defined(__AVX2__) && defined(__FMA__)
/* Written with intrinsics: GCC does not if-convert the relu once the sums share its loop,
 * and a mispredicted branch per element cost 8x. max_ps(v, 0) gives 0 for NaN, as the
 * portable v > 0 ? v : 0 does. */
static void epilogue_block(float *b, long m, float scale, float shift, int relu, double *sum,
                           double *sumsq)
{
    __m256 vs = _mm256_set1_ps(scale), vh = _mm256_set1_ps(shift), z = _mm256_setzero_ps();
    __m256 s0 = z, s1 = z, q0 = z, q1 = z;
    long i = 0;
    for (; i + 16 <= m; i += 16) {
        __m256 v0 = _mm256_fmadd_ps(_mm256_loadu_ps(b + i), vs, vh);
        __m256 v1 = _mm256_fmadd_ps(_mm256_loadu_ps(b + i + 8), vs, vh);
        if (relu) {
            v0 = _mm256_max_ps(v0, z);
            v1 = _mm256_max_ps(v1, z);
        }
        _mm256_storeu_ps(b + i, v0);
        _mm256_storeu_ps(b + i + 8, v1);
        s0 = _mm256_add_ps(s0, v0);
        s1 = _mm256_add_ps(s1, v1);
        q0 = _mm256_fmadd_ps(v0, v0, q0);
        q1 = _mm256_fmadd_ps(v1, v1, q1);
    }
    s0 = _mm256_add_ps(s0, s1);
    q0 = _mm256_add_ps(q0, q1);
    __m256d sd = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(s0)),
                               _mm256_cvtps_pd(_mm256_extractf128_ps(s0, 1)));
    __m256d qd = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(q0)),
                               _mm256_cvtps_pd(_mm256_extractf128_ps(q0, 1)));
    double t[4], u[4];
    _mm256_storeu_pd(t, sd);
    _mm256_storeu_pd(u, qd);
    double a = (t[0] + t[1]) + (t[2] + t[3]), c = (u[0] + u[1]) + (u[2] + u[3]);
    for (; i < m; i++) {
        float v = b[i] * scale + shift;
        if (relu) v = v > 0.0f ? v : 0.0f;
        b[i] = v;
        a += v;
        c += (double)v * v;
    }
    *sum += a;
    *sumsq += c;
}
#else
static void epilogue_block(float *b, long m, float scale, float shift, int relu, double *sum,
                           double *sumsq)
{
    float s[16] = {0}, s2[16] = {0};
    if (relu) {
#pragma omp simd
        for (long i = 0; i < m; i++) {
            float v = b[i] * scale + shift;
            b[i] = v > 0.0f ? v : 0.0f;
        }
    } else {
#pragma omp simd
        for (long i = 0; i < m; i++) b[i] = b[i] * scale + shift;
    }
    long i = 0;
    for (; i + 16 <= m; i += 16)
        for (int k = 0; k < 16; k++) {
            s[k] += b[i + k];
            s2[k] += b[i + k] * b[i + k];
        }
    double a = 0, c = 0;
    for (int k = 0; k < 16; k++) {
        a += s[k];
        c += s2[k];
    }
    for (; i < m; i++) {
        a += b[i];
        c += (double)b[i] * b[i];
    }
    *sum += a;
    *sumsq += c;
}
#endif

static void epilogue_row(float *y, long n, float scale, float shift, int relu, double *sum,
                         double *sumsq)
{
    if (!sum && !sumsq) {
        if (relu) {
#pragma omp simd
            for (long i = 0; i < n; i++) {
                float v = y[i] * scale + shift; /* exact when scale 1, shift 0 */
                y[i] = v > 0.0f ? v : 0.0f;
            }
        } else if (scale != 1.0f || shift != 0.0f) {
#pragma omp simd
            for (long i = 0; i < n; i++) y[i] = y[i] * scale + shift;
        }
        return;
    }
    double ds = 0, ds2 = 0;
    for (long i0 = 0; i0 < n; i0 += EPI_BLOCK)
        epilogue_block(y + i0, n - i0 < EPI_BLOCK ? n - i0 : EPI_BLOCK, scale, shift, relu, &ds,
                       &ds2);
    if (sum) *sum += ds;
    if (sumsq) *sumsq += ds2;
}

static int fuse_active(const struct conv2d_fuse *f)
{
    return f && (f->scale || f->shift || f->relu || f->sum || f->sumsq);
}

/* Partial sums of the fused statistics per thread, added to fuse->sum / sumsq in thread
 * order once every thread is done. */
static void stats_reduce(const struct layout *l, float *scratch, int nth, int co,
                         const struct conv2d_fuse *f)
{
    for (int t = 0; t < nth; t++) {
        const double *st = thread_stats(l, scratch, t);
        for (int o = 0; o < co; o++) {
            if (f->sum) f->sum[o] += st[o];
            if (f->sumsq) f->sumsq[o] += st[co + o];
        }
    }
}

/* out (N, groups*cout_g, HO, WO) = beta * out + the lowered convolution of in with wm,
 * then the fused epilogue (fuse may be NULL). wm holds per group a (cout_g, k) matrix. */
static void lowered_run(const struct lowering *L, const struct layout *l, float *out,
                        const float *in, const float *wm, float beta,
                        const struct conv2d_fuse *fuse, float *scratch)
{
    long hw_in = (long)L->h * L->w, hw_out = (long)L->ho * L->wo;
    long k = (long)L->cin_g * L->kf * L->kt;
    long n_tiles = (hw_out + l->tile - 1) / l->tile;
    long items = (long)L->n * n_tiles;
    int cout = L->cout_g * L->groups, fused = fuse_active(fuse);
    int stats = fused && (fuse->sum || fuse->sumsq);
    int nth_used = 1;
#pragma omp parallel num_threads(threads_get())
    {
        int t = omp_get_thread_num(), nth = omp_get_num_threads();
        float *col = thread_col(l, scratch, t);
        double *st = stats ? thread_stats(l, scratch, t) : NULL;
        if (t == 0) nth_used = nth;
        if (st) memset(st, 0, sizeof(double) * 2 * (size_t)cout);
        long i0 = items * t / nth, i1 = items * (t + 1) / nth;
        for (long it = i0; it < i1; it++) {
            int n = (int)(it / n_tiles);
            long p0 = it % n_tiles * l->tile;
            long p1 = p0 + l->tile < hw_out ? p0 + l->tile : hw_out;
            int np = (int)(p1 - p0);
            for (int g = 0; g < L->groups; g++) {
                const float *xin = in + ((long)n * L->groups + g) * L->cin_g * hw_in;
                float *o = out + ((long)n * L->groups + g) * L->cout_g * hw_out + p0;
                const float *a = wm + (long)g * L->cout_g * k;
                if (L->direct) {
                    gemm(L->trans_w, 0, L->cout_g, np, (int)k, 1.0f, a,
                         L->trans_w ? L->cout_g : (int)k, xin + p0, (int)hw_in, beta, o,
                         (int)hw_out);
                } else {
                    im2col(L, L->cin_g, xin, p0, p1, col, l->tile);
                    gemm(0, 0, L->cout_g, np, (int)k, 1.0f, a, (int)k, col, (int)l->tile, beta,
                         o, (int)hw_out);
                }
            }
            if (fused) {
                for (int c = 0; c < cout; c++) {
                    float *row = out + ((long)n * cout + c) * hw_out + p0;
                    epilogue_row(row, np, fuse->scale ? fuse->scale[c] : 1.0f,
                                 fuse->shift ? fuse->shift[c] : 0.0f, fuse->relu,
                                 st && fuse->sum ? &st[c] : NULL,
                                 st && fuse->sumsq ? &st[cout + c] : NULL);
                }
            }
        }
    }
    if (stats) stats_reduce(l, scratch, nth_used, cout, fuse);
}

static void lowering_forward(const struct conv2d_shape *s, struct lowering *L)
{
    *L = (struct lowering){
        .n = s->n, .groups = s->groups, .cin_g = s->ci / s->groups, .cout_g = s->co / s->groups,
        .h = s->fi, .w = s->ti, .ho = s->fo, .wo = s->to,
        .kf = s->kf, .kt = s->kt, .sf = s->sf, .st = s->st, .pf = s->pf, .pt = s->pt,
        .df = s->df, .dt = s->dt, .direct = is_pointwise(s),
    };
}

/* ----------------------------------------------------------------------------- direct */

/* Stride-1 convolutions without im2col (conv2d_direct.h has the band layout and the
 * kernels' contracts). OpenBLAS's sgemm runs the CP-ResNet layers (32 to 128 output
 * channels, a 288 to 1152 deep reduction) at about half the AVX-512 FMA peak; the direct
 * kernels run at 75-80% of it on whole layers (93% inside a band): no column matrix, the
 * outputs written once from registers with the epilogue applied, the weight gradient
 * accumulated in registers across a band with no horizontal sums.
 * Backward data is the forward kernel on dy with the weights packed flipped and
 * transposed. Pointwise convolutions read and write the planes in place. */

/* Band budget in floats per thread: a band's padded input plus its transposed output
 * gradient. Measured on the CP-ResNet step (2 threads) on Zen 5: 32 K floats 5% slower,
 * 64 K to 256 K the same. On an Intel Xeon with 2 MB of L2 (32 -> 32 3x3 at 127 x 215, one
 * thread), 64 K ran at 121 / 110 / 105 GFLOP/s (forward, backward data, weight), 256 K at
 * 128 / 127 / 126: taller bands copy fewer halo rows. */
#ifndef DIRECT_BAND_FLOATS
#define DIRECT_BAND_FLOATS (256 * 1024)
#endif

/* Larger kernels (none in the zoo) stay on im2col + GEMM. */
#define DIRECT_MAX_TAPS 64

static enum conv2d_impl impl_setting = CONV2D_IMPL_AUTO;

enum conv2d_impl conv2d_set_impl(enum conv2d_impl impl)
{
    enum conv2d_impl old = __atomic_exchange_n(&impl_setting, impl, __ATOMIC_SEQ_CST);
    return old;
}

static int avx512_ok(void)
{
    static int have = -1; /* the CPU does not change; racing first calls agree */
    int h = __atomic_load_n(&have, __ATOMIC_RELAXED);
    if (h < 0) {
        h = conv2d_avx512_available();
        __atomic_store_n(&have, h, __ATOMIC_RELAXED);
    }
    return h;
}

static int avx2_ok(void)
{
    static int have = -1;
    int h = __atomic_load_n(&have, __ATOMIC_RELAXED);
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        __atomic_store_n(&have, h, __ATOMIC_RELAXED);
    }
    return h;
}

/* The shapes the direct kernels take (either vector width). */
static int direct_shape(const struct conv2d_shape *s)
{
    return s->sf == 1 && s->st == 1 && !is_depthwise(s) && s->kf * s->kt <= DIRECT_MAX_TAPS;
}

/* One stride-1 convolution as the direct kernels run it: out (N, groups*cout_g, HO, WO) from
 * in (N, groups*cin_g, H, W). For backward data the weights are those of the forward conv
 * whose adjoint this is (transposed), and the padding (K-1)*d - p may be negative. */
struct direct {
    int avx512;      /* which micro-kernels: conv2d_avx512.c (1) or conv2d_avx2.c (0) */
    int n, groups, cin_g, cout_g;
    int h, w, ho, wo;
    int kf, kt, pf, pt, df, dt;
    int transposed;
    int pointwise;   /* 1x1 without padding: the kernels read and write the planes in place,
                        in chunks of `rows` positions (n_bands chunks per plane) */
    int wp;          /* padded row length WO + (KT-1)*DT */
    int halo;        /* extra input rows of a band, (KF-1)*DF */
    int rows;        /* output rows per band */
    int n_bands;
    int n_ob;        /* blocks of DIRECT_OB output channels */
    long in_cs;      /* floats per channel of a band's padded input */
    long out_cs;     /* floats per channel of a band's output */
    long wpk;        /* floats of packed weights (shared) */
    long stats;      /* per thread: 2 * O doubles of fused statistics, then the kernel's
                        (O/groups, 32) float partial sums */
    long outbuf;     /* floats per thread of the band output, or of dy transposed */
    long dwp;        /* weight-gradient partial sums per thread, (c, k) rows of o */
    long per_thread;
    /* Ragged taps (forward, AVX2 kernel; NULL: none): input channel c uses the rn[c] taps
     * rk[c * KF*KT + j] of the KF x KT grid, n_rw of them in all; cin_g * KF*KT (the size
     * of rk and of the kernel's tap table) at most RAGGED_MAX. */
    const int *rk, *rn;
    int n_rw;
};

#define RAGGED_MAX 1024

/* Bands: as many output rows as keep a band's padded input and its transposed output
 * gradient (backward weight) within DIRECT_BAND_FLOATS, evened out. Pointwise: chunks of
 * positions under the same budget, a multiple of DIRECT_QB; the per-thread input buffer
 * then only holds a chunk's ragged tail. */
static void direct_plan(struct direct *d)
{
    long wld = DIRECT_WLD(d->cout_g), wrows = DIRECT_WROWS((long)d->cin_g * d->kf * d->kt);
    d->pointwise = d->kf == 1 && d->kt == 1 && d->pf == 0 && d->pt == 0;
    d->n_ob = (d->cout_g + DIRECT_OB - 1) / DIRECT_OB;
    if (d->pointwise) {
        long hw = (long)d->ho * d->wo;
        long chunk = DIRECT_BAND_FLOATS / (d->cin_g + wld) / DIRECT_QB * DIRECT_QB;
        if (chunk < DIRECT_QB) chunk = DIRECT_QB;
        d->n_bands = (int)((hw + chunk - 1) / chunk);
        d->rows = (int)round_up((hw + d->n_bands - 1) / d->n_bands, DIRECT_QB);
        d->wp = d->wo;
        d->halo = 0;
        d->out_cs = d->rows;
        d->in_cs = d->rows;
    } else {
        d->wp = d->wo + (d->kt - 1) * d->dt;
        d->halo = (d->kf - 1) * d->df;
        long max_tap = (long)d->halo * d->wp + (long)(d->kt - 1) * d->dt;
        long per_row = (long)(d->cin_g + wld) * d->wp;
        long fixed = (long)d->cin_g * (max_tap + DIRECT_QB + 16);
        long rows = (DIRECT_BAND_FLOATS - fixed) / per_row;
        /* At least 12 register blocks per band: the last block's rounding (and the halo)
         * cost too much in shorter bands (128 -> 128 at 63 x 107 in one-row bands: 76% of
         * the positions computed were outputs). Wide layers then overrun the budget. */
        long min_rows = (12 * DIRECT_QB + d->wp - 1) / d->wp;
        if (rows < min_rows) rows = min_rows;
        if (rows > d->ho) rows = d->ho;
        d->n_bands = (int)((d->ho + rows - 1) / rows);
        d->rows = (d->ho + d->n_bands - 1) / d->n_bands; /* even bands, no thin last one */
        d->out_cs = round_up((long)d->rows * d->wp, DIRECT_QB);
        d->in_cs = round16(d->out_cs + max_tap);
    }
    d->wpk = round16((long)d->groups * d->n_ob * DIRECT_OB * d->cin_g * d->kf * d->kt);
    d->stats = round16(4L * d->groups * d->cout_g) + round16(32L * d->cout_g);
    d->dwp = (long)d->groups * wrows * wld;
    d->outbuf = d->out_cs * wld;
    d->per_thread = (long)d->cin_g * d->in_cs + d->outbuf + d->stats + d->dwp;
}

/* Thread t's slices: the band input, the band output (or dy for the weight gradient), the
 * fused statistics and the weight-gradient partial sums. */
static float *direct_inbuf(const struct direct *d, float *scratch, int t)
{
    return scratch + d->wpk + (long)t * d->per_thread;
}

static float *direct_outbuf(const struct direct *d, float *scratch, int t)
{
    return direct_inbuf(d, scratch, t) + (long)d->cin_g * d->in_cs;
}

static double *direct_stats(const struct direct *d, float *scratch, int t)
{
    return (double *)(direct_outbuf(d, scratch, t) + d->outbuf);
}

static float *direct_dwp(const struct direct *d, float *scratch, int t)
{
    return (float *)direct_stats(d, scratch, t) + d->stats;
}

static void run_band(const struct direct *d, const struct direct_band *b)
{
    if (d->avx512) conv2d_avx512_band(b);
    else conv2d_avx2_band(b);
}

static void run_wband(const struct direct *d, const struct direct_wband *b)
{
    if (d->avx512) conv2d_avx512_wband(b);
    else conv2d_avx2_wband(b);
}

static void direct_taps(const struct direct *d, int *tap)
{
    for (int i = 0; i < d->kf; i++)
        for (int j = 0; j < d->kt; j++) tap[i * d->kt + j] = i * d->df * d->wp + j * d->dt;
}

/* Whether the direct kernels beat im2col + GEMM on d, measured on 16 x 128 x 215 maps (2
 * threads). The band kernel (forward, backward data) needs a reduction long enough to pay
 * for its stores: 1 -> 32 and 4 -> 32 3x3 lost, 8 -> 32 won by 1.5x; pointwise lost with
 * 1 or 4 channels on either side, broke even at 8 -> 64 and won from 16 in, 8 out. The
 * weight-gradient kernel fills 16 output channels per vector: cout 1, 4 and 8 lost 1.5 to
 * 2.4x, 16 won 1.8x on 3x3; pointwise it won at 32 -> 32, tied at 128 -> 128 and lost at
 * 16 -> 64 and 64 -> 16. */
static int direct_band_ok(const struct direct *d)
{
    if (d->pointwise) return d->cin_g >= 16 && d->cout_g >= 8;
    return (long)d->cin_g * d->kf * d->kt >= 64;
}

static int direct_wband_ok(const struct direct *d)
{
    if (d->pointwise) return d->cin_g >= 32 && d->cout_g >= 32;
    return d->cout_g >= 16 && (long)d->cin_g * d->kf * d->kt >= 64;
}

static void direct_of_forward(const struct conv2d_shape *s, struct direct *d, int avx512)
{
    *d = (struct direct){
        .avx512 = avx512, .n = s->n, .groups = s->groups, .cin_g = s->ci / s->groups, .cout_g = s->co / s->groups,
        .h = s->fi, .w = s->ti, .ho = s->fo, .wo = s->to, .kf = s->kf, .kt = s->kt,
        .pf = s->pf, .pt = s->pt, .df = s->df, .dt = s->dt,
    };
    direct_plan(d);
}

/* Backward data at stride 1: the convolution of dy with the flipped, transposed kernel. */
static void direct_of_backward_data(const struct conv2d_shape *s, struct direct *d, int avx512)
{
    *d = (struct direct){
        .avx512 = avx512, .n = s->n, .groups = s->groups, .cin_g = s->co / s->groups, .cout_g = s->ci / s->groups,
        .h = s->fo, .w = s->to, .ho = s->fi, .wo = s->ti, .kf = s->kf, .kt = s->kt,
        .pf = (s->kf - 1) * s->df - s->pf, .pt = (s->kt - 1) * s->dt - s->pt,
        .df = s->df, .dt = s->dt, .transposed = 1,
    };
    direct_plan(d);
}

static size_t direct_scratch_floats(const struct conv2d_shape *s, int n_threads)
{
    struct direct f, b;
    direct_of_forward(s, &f, 1);
    direct_of_backward_data(s, &b, 1);
    long nf = f.wpk + n_threads * f.per_thread, nb = b.wpk + n_threads * b.per_thread;
    return (size_t)(nf > nb ? nf : nb);
}

/* Rows [oh0 - pf, oh0 - pf + nr) of the cin_g planes x, zero-padded to the band layout:
 * buffer column u holds input column u - pt; rows outside the input are zeros, and so is
 * the tail of each channel that the last register blocks read past the band. */
/* n values of channel c of the input into dst, through the prologue when there is one. */
static void copy_in(float *dst, const float *src, long n, const struct conv2d_prologue *pro,
                    int c)
{
    if (!pro) {
        memcpy(dst, src, sizeof(float) * (size_t)n);
        return;
    }
    float m = pro->mean[c], a = pro->scale[c], b = pro->shift[c];
    if (pro->relu) {
#pragma omp simd
        for (long i = 0; i < n; i++) {
            float v = __builtin_fmaf(src[i] - m, a, b);
            dst[i] = v > 0.0f ? v : 0.0f;
        }
    } else {
#pragma omp simd
        for (long i = 0; i < n; i++) dst[i] = __builtin_fmaf(src[i] - m, a, b);
    }
}

static void direct_pack_input(const struct direct *d, const float *x, int oh0, int nr,
                              float *buf, const struct conv2d_prologue *pro, int c0)
{
    long hw = (long)d->h * d->w;
    int u0 = max_int(0, d->pt), u1 = min_int(d->wp, d->pt + d->w);
    for (int c = 0; c < d->cin_g; c++) {
        float *dst = buf + c * d->in_cs;
        const float *src = x + c * hw;
        for (int r = 0; r < nr; r++) {
            float *row = dst + (long)r * d->wp;
            int ih = oh0 - d->pf + r;
            if (ih < 0 || ih >= d->h || u0 >= u1) {
                memset(row, 0, sizeof(float) * (size_t)d->wp);
                continue;
            }
            memset(row, 0, sizeof(float) * (size_t)u0);
            copy_in(row + u0, src + (long)ih * d->w + (u0 - d->pt), u1 - u0, pro, c0 + c);
            memset(row + u1, 0, sizeof(float) * (size_t)(d->wp - u1));
        }
        memset(dst + (long)nr * d->wp, 0, sizeof(float) * (size_t)(d->in_cs - (long)nr * d->wp));
    }
}

void conv2d_pack_weights(const float *w, int groups, int cin, int cout, int kk, int transposed,
                         const int *rk, const int *rn, float *wpk)
{
    const int n_ob = (cout + DIRECT_OB - 1) / DIRECT_OB;
    const long blocks = (long)groups * n_ob;
    long pairs = (long)cin * kk; /* (channel, tap) pairs per block */
    if (rn)
        for (int c = pairs = 0; c < cin; c++) pairs += rn[c];
    /* Blocks of DIRECT_OB output channels over the threads; plain loops, no divisions per
     * element (packing runs on every call, and a tuning crop is small). */
#pragma omp for schedule(static)
    for (long blk = 0; blk < blocks; blk++) {
        long g = blk / n_ob, ob = blk % n_ob;
        float *dst = wpk + blk * DIRECT_OB * pairs;
        for (long c = 0; c < cin; c++)
            for (long j = 0, nt = rn ? rn[c] : kk; j < nt; j++, dst += DIRECT_OB) {
                long k = rn ? rk[c * kk + j] : j;
                for (long oo = 0; oo < DIRECT_OB; oo++) {
                    long o = ob * DIRECT_OB + oo;
                    float v = 0.0f;
                    if (o < cout)
                        v = transposed ? w[((g * cin + c) * cout + o) * kk + (kk - 1 - k)]
                                       : w[((g * cout + o) * cin + c) * kk + k];
                    dst[oo] = v;
                }
            }
    }
}

/* Pointwise chunk [p0, p0 + rows) of the planes x (cin_g, hw) into y, through buf: each
 * plane's run copied in turn (one stream at a time) and zero-padded to whole register
 * blocks. Reading the cin_g planes in place instead streams them all at once, which ran at
 * half speed or full speed depending on how the input and output buffers happened to be
 * placed relative to each other (1x1 32 -> 32 at 127 x 215: 7.1 or 13.5 ms; the caches'
 * sets, not bandwidth). b holds the rest of the kernel's arguments. */
static void direct_pointwise_band(const struct direct *d, struct direct_band *b, const float *x,
                                  float *y, long p0, float *buf,
                                  const struct conv2d_prologue *pro, int c0)
{
    long hw = (long)d->ho * d->wo, len = hw - p0 < d->rows ? hw - p0 : d->rows;
    long nq = round_up(len, DIRECT_QB);
    for (int c = 0; c < d->cin_g; c++) {
        copy_in(buf + c * d->in_cs, x + c * hw + p0, len, pro, c0 + c);
        memset(buf + c * d->in_cs + len, 0, sizeof(float) * (size_t)(nq - len));
    }
    b->in = buf, b->in_cs = d->in_cs, b->nq = nq;
    b->out = y + p0, b->wo = b->wp = (int)len;
    run_band(d, b);
}

/* The BN statistics of a backward-data pass (bst, or none): the band's aux is the BN's
 * input at the band's output position (same layout as out). */
static void set_aux(struct direct_band *b, const struct conv2d_bnstat *bst, const float *out,
                    const float *band_out, int c0, double *st, int cout)
{
    if (!bst) return;
    b->aux = bst->x + (band_out - out);
    b->aux_mean = bst->mean + c0, b->aux_scale = bst->scale + c0, b->aux_shift = bst->shift + c0;
    b->aux_relu = bst->relu;
    b->gsum = st + c0, b->gsumx = st + cout + c0;
}

/* out = (out +) the convolution, then the fused epilogue (fuse may be NULL). Work items
 * (sample, group, band) are split in contiguous runs over the threads; each thread packs a
 * band into its buffer and the kernel writes the band's outputs in place. */
static void direct_run(const struct direct *d, float *out, const float *in, const float *w,
                       int accumulate, const struct conv2d_fuse *fuse,
                       const struct conv2d_bnstat *bst, float *scratch)
{
    const struct conv2d_prologue *pro = fuse ? fuse->pro : NULL;
    long hw_in = (long)d->h * d->w, hw_out = (long)d->ho * d->wo;
    long items = (long)d->n * d->groups * d->n_bands;
    int kk = d->kf * d->kt, cout = d->groups * d->cout_g, fused = fuse_active(fuse);
    int stats = (fuse && (fuse->sum || fuse->sumsq)) || bst; /* fuse's stats imply fused */
    int tap[DIRECT_MAX_TAPS], ctap[RAGGED_MAX];
    CHECK(kk <= DIRECT_MAX_TAPS);
    direct_taps(d, tap);
    if (d->rn) {
        CHECK((long)d->cin_g * kk <= RAGGED_MAX && !d->avx512 && !d->transposed && !d->pointwise);
        for (int c = 0; c < d->cin_g; c++)
            for (int j = 0; j < d->rn[c]; j++) ctap[c * kk + j] = tap[d->rk[c * kk + j]];
    }
    const long w_group = (long)d->n_ob * DIRECT_OB * (d->rn ? d->n_rw : d->cin_g * kk);
    float *wpk = scratch;
    int nth_used = 1;
#pragma omp parallel num_threads(threads_get())
    {
        int t = omp_get_thread_num(), nth = omp_get_num_threads();
        float *inbuf = direct_inbuf(d, scratch, t);
        double *st = stats ? direct_stats(d, scratch, t) : NULL;
        float *stat = (float *)direct_stats(d, scratch, t) + round16(4L * cout);
        if (t == 0) nth_used = nth;
        if (st) memset(st, 0, sizeof(double) * 2 * (size_t)cout);
        conv2d_pack_weights(w, d->groups, d->cin_g, d->cout_g, kk, d->transposed, d->rk, d->rn,
                            wpk); /* ends with a barrier */
        long i0 = items * t / nth, i1 = items * (t + 1) / nth;
        for (long it = i0; it < i1; it++) {
            int band = (int)(it % d->n_bands);
            long ng = it / d->n_bands; /* sample * groups + group */
            int g = (int)(ng % d->groups), c0 = g * d->cout_g;
            if (d->pointwise) {
                struct direct_band b = {
                    .in_cs = hw_in, .cin = d->cin_g, .tap = tap, .n_taps = 1,
                    .wpk = wpk + (long)g * d->n_ob * DIRECT_OB * d->cin_g, .n_ob = d->n_ob,
                    .out_cs = hw_out, .cout = d->cout_g, .rows = 1,
                    .accumulate = accumulate, .relu = fused && fuse->relu,
                    .scale = fused && fuse->scale ? fuse->scale + c0 : NULL,
                    .shift = fused && fuse->shift ? fuse->shift + c0 : NULL,
                    .sum = st && fuse && fuse->sum ? st + c0 : NULL,
                    .sumsq = st && fuse && fuse->sumsq ? st + cout + c0 : NULL, .stat = stat,
                };
                set_aux(&b, bst, out, out + ng * d->cout_g * hw_out + (long)band * d->rows, c0,
                        st, cout);
                direct_pointwise_band(d, &b, in + ng * d->cin_g * hw_in,
                                      out + ng * d->cout_g * hw_out, (long)band * d->rows, inbuf,
                                      pro, g * d->cin_g);
                continue;
            }
            int oh0 = band * d->rows, nr = min_int(d->rows, d->ho - oh0);
            direct_pack_input(d, in + ng * d->cin_g * hw_in, oh0, nr + d->halo, inbuf, pro,
                              g * d->cin_g);
            struct direct_band b = {
                .in = inbuf, .in_cs = d->in_cs, .cin = d->cin_g, .tap = tap, .n_taps = kk,
                .wpk = wpk + g * w_group, .n_ob = d->n_ob,
                .nq = round_up((long)nr * d->wp, DIRECT_QB),
                .out = out + ng * d->cout_g * hw_out + (long)oh0 * d->wo, .out_cs = hw_out,
                .cout = d->cout_g, .rows = nr, .wo = d->wo, .wp = d->wp,
                .accumulate = accumulate, .relu = fused && fuse->relu,
                .scale = fused && fuse->scale ? fuse->scale + c0 : NULL,
                .shift = fused && fuse->shift ? fuse->shift + c0 : NULL,
                .sum = st && fuse && fuse->sum ? st + c0 : NULL,
                .sumsq = st && fuse && fuse->sumsq ? st + cout + c0 : NULL, .stat = stat,
                .ctap = d->rn ? ctap : NULL, .cnt = d->rn, .w_ob = (long)DIRECT_OB * d->n_rw,
            };
            set_aux(&b, bst, out, b.out, c0, st, cout);
            run_band(d, &b);
        }
    }
    if (stats) {
        for (int t = 0; t < nth_used; t++) {
            const double *st = direct_stats(d, scratch, t);
            double *s1 = bst ? bst->sum_g : fuse->sum, *s2 = bst ? bst->sum_gx : fuse->sumsq;
            for (int o = 0; o < cout; o++) {
                if (s1) s1[o] += st[o];
                if (s2) s2[o] += st[cout + o];
            }
        }
    }
}

/* dw = the correlation of dy with x over the batch. Work items as in direct_run; each
 * thread packs the band of x, and the kernel adds the band's products into the thread's
 * partial sums, kept with the output channels innermost (dwt, conv2d_direct.h). The
 * partials are then added in thread order and transposed into dw. */
static void direct_backward_weight(const struct direct *d, float *dw, const float *dy,
                                   const float *x, const struct conv2d_prologue *pro,
                                   float *scratch)
{
    long hw_in = (long)d->h * d->w, hw_out = (long)d->ho * d->wo;
    long items = (long)d->n * d->groups * d->n_bands;
    int kk = d->kf * d->kt, rows = d->cin_g * kk;
    long wrows = DIRECT_WROWS((long)rows), wld = DIRECT_WLD(d->cout_g);
    long n_w = (long)d->groups * d->cout_g * rows;
    int tap[DIRECT_MAX_TAPS];
    CHECK(kk <= DIRECT_MAX_TAPS);
    direct_taps(d, tap);
#pragma omp parallel num_threads(threads_get())
    {
        int t = omp_get_thread_num(), nth = omp_get_num_threads();
        float *inbuf = direct_inbuf(d, scratch, t), *part = direct_dwp(d, scratch, t);
        memset(part, 0, sizeof(float) * (size_t)d->dwp);
        long i0 = items * t / nth, i1 = items * (t + 1) / nth;
        for (long it = i0; it < i1; it++) {
            int band = (int)(it % d->n_bands);
            long ng = it / d->n_bands;
            int g = (int)(ng % d->groups);
            if (d->pointwise) {
                /* the chunk of each input plane copied in turn (as direct_pointwise_band),
                 * zero-padded to whole vectors */
                long p0 = (long)band * d->rows, len = hw_in - p0 < d->rows ? hw_in - p0 : d->rows;
                long nq = round16(len);
                const float *xs = x + ng * d->cin_g * hw_in + p0;
                for (int c = 0; c < d->cin_g; c++) {
                    copy_in(inbuf + c * d->in_cs, xs + c * hw_in, len, pro, g * d->cin_g + c);
                    memset(inbuf + c * d->in_cs + len, 0, sizeof(float) * (size_t)(nq - len));
                }
                struct direct_wband b = {
                    .in = inbuf, .in_cs = d->in_cs, .cin = d->cin_g, .tap = tap, .n_taps = 1,
                    .dy = dy + ng * d->cout_g * hw_out + p0, .dy_cs = hw_out, .dy_ld = (int)len,
                    .cout = d->cout_g, .rows = 1, .wo = (int)len, .wp = (int)len, .nq = nq,
                    .dyt = direct_outbuf(d, scratch, t), .dwt = part + g * wrows * wld,
                };
                run_wband(d, &b);
                continue;
            }
            int oh0 = band * d->rows, nr = min_int(d->rows, d->ho - oh0);
            direct_pack_input(d, x + ng * d->cin_g * hw_in, oh0, nr + d->halo, inbuf, pro,
                              g * d->cin_g);
            struct direct_wband b = {
                .in = inbuf, .in_cs = d->in_cs, .cin = d->cin_g, .tap = tap, .n_taps = kk,
                .dy = dy + ng * d->cout_g * hw_out + (long)oh0 * d->wo, .dy_cs = hw_out,
                .dy_ld = d->wo, .cout = d->cout_g, .rows = nr, .wo = d->wo, .wp = d->wp,
                .nq = round16((long)nr * d->wp), .dyt = direct_outbuf(d, scratch, t),
                .dwt = part + g * wrows * wld,
            };
            run_wband(d, &b);
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (long e = 0; e < n_w; e++) {
            long r = e % rows, o = e / rows % d->cout_g, g = e / rows / d->cout_g;
            long at = (g * wrows + r) * wld + o;
            float v = direct_dwp(d, scratch, 0)[at];
            for (int u = 1; u < nth; u++) v += direct_dwp(d, scratch, u)[at];
            dw[e] = v;
        }
    }
}

/* ----------------------------------------------------------------------------- depthwise */

static void depthwise_forward(const struct conv2d_shape *s, const struct layout *l, float *y,
                              const float *x, const float *w, const struct conv2d_fuse *fuse,
                              float *scratch)
{
    long hw_in = (long)s->fi * s->ti, hw_out = (long)s->fo * s->to;
    long planes = (long)s->n * s->co;
    int kk = s->kf * s->kt, fused = fuse_active(fuse);
    int stats = fused && (fuse->sum || fuse->sumsq);
    int nth_used = 1;
#pragma omp parallel num_threads(threads_get())
    {
        int t = omp_get_thread_num(), nth = omp_get_num_threads();
        double *st = stats ? thread_stats(l, scratch, t) : NULL;
        if (t == 0) nth_used = nth;
        if (st) memset(st, 0, sizeof(double) * 2 * (size_t)s->co);
        long i0 = planes * t / nth, i1 = planes * (t + 1) / nth;
        for (long pl = i0; pl < i1; pl++) {
            int c = (int)(pl % s->co);
            const float *xp = x + pl * hw_in, *wc = w + (long)c * kk;
            float *yp = y + pl * hw_out;
            for (int oh = 0; oh < s->fo; oh++) {
                float *yr = yp + (long)oh * s->to;
                memset(yr, 0, sizeof(float) * (size_t)s->to);
                for (int i = 0; i < s->kf; i++) {
                    int ih = oh * s->sf - s->pf + i * s->df;
                    if (ih < 0 || ih >= s->fi) continue;
                    const float *xr = xp + (long)ih * s->ti;
                    for (int j = 0; j < s->kt; j++) {
                        int off = j * s->dt - s->pt, lo, hi;
                        float wv = wc[i * s->kt + j];
                        valid_cols(off, s->st, s->ti, s->to, &lo, &hi);
                        if (s->st == 1) {
#pragma omp simd
                            for (int ow = lo; ow < hi; ow++) yr[ow] += wv * xr[ow + off];
                        } else {
                            for (int ow = lo; ow < hi; ow++) yr[ow] += wv * xr[ow * s->st + off];
                        }
                    }
                }
            }
            if (fused)
                epilogue_row(yp, hw_out, fuse->scale ? fuse->scale[c] : 1.0f,
                             fuse->shift ? fuse->shift[c] : 0.0f, fuse->relu,
                             st && fuse->sum ? &st[c] : NULL,
                             st && fuse->sumsq ? &st[s->co + c] : NULL);
        }
    }
    if (stats) stats_reduce(l, scratch, nth_used, s->co, fuse);
}

static void depthwise_backward_data(const struct conv2d_shape *s, float *dx, const float *dy,
                                    const float *w, int accumulate)
{
    long hw_in = (long)s->fi * s->ti, hw_out = (long)s->fo * s->to;
    long planes = (long)s->n * s->ci;
    int kk = s->kf * s->kt;
#pragma omp parallel for schedule(static) num_threads(threads_get())
    for (long pl = 0; pl < planes; pl++) {
        int c = (int)(pl % s->ci);
        const float *dyp = dy + pl * hw_out, *wc = w + (long)c * kk;
        float *dxp = dx + pl * hw_in;
        if (!accumulate) memset(dxp, 0, sizeof(float) * (size_t)hw_in);
        for (int oh = 0; oh < s->fo; oh++) {
            const float *dyr = dyp + (long)oh * s->to;
            for (int i = 0; i < s->kf; i++) {
                int ih = oh * s->sf - s->pf + i * s->df;
                if (ih < 0 || ih >= s->fi) continue;
                float *xr = dxp + (long)ih * s->ti;
                for (int j = 0; j < s->kt; j++) {
                    int off = j * s->dt - s->pt, lo, hi;
                    float wv = wc[i * s->kt + j];
                    valid_cols(off, s->st, s->ti, s->to, &lo, &hi);
                    if (s->st == 1) {
#pragma omp simd
                        for (int ow = lo; ow < hi; ow++) xr[ow + off] += wv * dyr[ow];
                    } else {
                        for (int ow = lo; ow < hi; ow++) xr[ow * s->st + off] += wv * dyr[ow];
                    }
                }
            }
        }
    }
}

/* One thread per channel: each weight is a dot product of dy with a shifted x, summed over
 * the batch in double, so no partial sums need reducing. */
static void depthwise_backward_weight(const struct conv2d_shape *s, float *dw, const float *dy,
                                      const float *x)
{
    long hw_in = (long)s->fi * s->ti, hw_out = (long)s->fo * s->to;
    int kk = s->kf * s->kt;
#pragma omp parallel for schedule(static) num_threads(threads_get())
    for (int c = 0; c < s->co; c++) {
        for (int ij = 0; ij < kk; ij++) {
            int i = ij / s->kt, j = ij % s->kt;
            int off = j * s->dt - s->pt, lo, hi;
            valid_cols(off, s->st, s->ti, s->to, &lo, &hi);
            double sum = 0;
            for (int n = 0; n < s->n; n++) {
                const float *dyp = dy + ((long)n * s->co + c) * hw_out;
                const float *xp = x + ((long)n * s->ci + c) * hw_in;
                for (int oh = 0; oh < s->fo; oh++) {
                    int ih = oh * s->sf - s->pf + i * s->df;
                    if (ih < 0 || ih >= s->fi) continue;
                    const float *dyr = dyp + (long)oh * s->to, *xr = xp + (long)ih * s->ti;
                    double r = 0;
                    if (s->st == 1) {
#pragma omp simd reduction(+ : r)
                        for (int ow = lo; ow < hi; ow++) r += (double)dyr[ow] * xr[ow + off];
                    } else {
                        for (int ow = lo; ow < hi; ow++)
                            r += (double)dyr[ow] * xr[ow * s->st + off];
                    }
                    sum += r;
                }
            }
            dw[(long)c * kk + ij] = (float)sum;
        }
    }
}

/* ----------------------------------------------------------------------------- stride 2 */

/* A stride-2 convolution is a stride-1 one over the four phases of its input (space to
 * depth): with x_rs[c][m][n] = x[c][2m + r - pf][2n + s - pt] (zero outside x) and
 * w'[o][4c + 2r + s][a][b] = w[o][c][2a + r][2b + s] (zero past the kernel),
 *   y[o][i][j] = sum over c, r, s, a, b of w'[o][4c + 2r + s][a][b] x_rs[c][i + a][j + b],
 * an unpadded stride-1 correlation with a ceil(KF/2) x ceil(KT/2) kernel over 4 I channels
 * of FO + KA - 1 by TO + KB - 1, which the direct kernels run. The phases cost one pass
 * over the input (im2col writes KF*KT values per output); the direct kernels then do
 * 4 ceil(K/2)^2 / K^2 times the multiplications (1.44 for CP-ResNet's 5 x 5 stem), at their
 * speed rather than sgemm's on a GEMM 25 deep. Forward only; a plan measures it against
 * GEMM (conv2d_tune). */
static int s2d_shape(const struct conv2d_shape *s, struct conv2d_shape *d)
{
    if (s->sf != 2 || s->st != 2 || s->df != 1 || s->dt != 1 || s->groups != 1 || s->pf < 0 || s->pt < 0)
        return 0;
    *d = (struct conv2d_shape){
        .n = s->n, .ci = 4 * s->ci, .co = s->co, .kf = (s->kf + 1) / 2, .kt = (s->kt + 1) / 2,
        .sf = 1, .st = 1, .df = 1, .dt = 1, .groups = 1,
    };
    d->fi = s->fo + d->kf - 1, d->ti = s->to + d->kt - 1;
    d->fo = s->fo, d->to = s->to; /* what conv2d_shape_init gives for an unpadded stride 1 */
    return direct_shape(d);
}

static size_t s2d_scratch_floats(const struct conv2d_shape *s, int n_threads)
{
    struct conv2d_shape d;
    if (!s2d_shape(s, &d) || !avx2_ok()) return 0; /* no direct kernel to run it */
    return (size_t)(round16((long)d.n * d.ci * d.fi * d.ti) + round16((long)d.co * d.ci * d.kf * d.kt)) +
           direct_scratch_floats(&d, n_threads);
}

/* y (N, O, FO, TO) = conv(x (N, I, F, T), w (O, I, KF, KT)) at stride 2, through the phases
 * (built in scratch) on the direct kernels of the given width. */
static void s2d_forward(const struct conv2d_shape *s, int avx512, float *y, const float *x, const float *w,
                        const struct conv2d_fuse *fuse, float *scratch)
{
    struct conv2d_shape d;
    CHECK(s2d_shape(s, &d));
    long plane = (long)d.fi * d.ti, hw = (long)s->fi * s->ti;
    float *xp = scratch, *wp = xp + round16((long)d.n * d.ci * plane);
    float *rest = wp + round16((long)d.co * d.ci * d.kf * d.kt);
    for (int o = 0; o < s->co; o++) /* w' (O, 4I, KA, KB) */
        for (int c = 0; c < d.ci; c++)
            for (int a = 0; a < d.kf; a++)
                for (int b = 0; b < d.kt; b++) {
                    int u = 2 * a + (c >> 1 & 1), v = 2 * b + (c & 1);
                    wp[((long)(o * d.ci + c) * d.kf + a) * d.kt + b] =
                        u < s->kf && v < s->kt ? w[((long)(o * s->ci + (c >> 2)) * s->kf + u) * s->kt + v] : 0.0f;
                }
    long planes = (long)d.n * d.ci;
#pragma omp parallel for num_threads(threads_get()) schedule(static)
    for (long q = 0; q < planes; q++) { /* x' plane q: sample q / 4I, channel q % 4I */
        int c = (int)(q % d.ci), r = c >> 1 & 1, sh = c & 1;
        const float *xc = x + (q / d.ci * s->ci + (c >> 2)) * hw;
        float *dst = xp + q * plane;
        for (int m = 0; m < d.fi; m++) {
            int ih = 2 * m + r - s->pf;
            float *row = dst + (long)m * d.ti;
            if (ih < 0 || ih >= s->fi) {
                memset(row, 0, sizeof(float) * (size_t)d.ti);
                continue;
            }
            /* row[k] = x[ih][2k + sh - pt] for k in [k0, k1), zeros around */
            const float *src = xc + (long)ih * s->ti;
            const int off = sh - s->pt;
            int k0 = (s->pt - sh + 1) / 2, k1 = (s->ti + s->pt - sh + 1) / 2;
            k0 = max_int(k0, 0), k1 = min_int(k1, d.ti);
            for (int k = 0; k < k0; k++) row[k] = 0.0f;
            for (int k = k0; k < k1; k++) row[k] = src[2 * k + off];
            for (int k = max_int(k1, k0); k < d.ti; k++) row[k] = 0.0f;
        }
    }
    struct direct dd;
    direct_of_forward(&d, &dd, avx512);
    /* Phase (r, sh) of a KF x KT kernel only has the taps (a, b) with 2a + r < KF and
     * 2b + sh < KT (25 of the 36 of a 5x5's 3x3 phase kernels): the AVX2 kernel skips
     * the others (the AVX-512 one multiplies their zeros). */
    int rk[RAGGED_MAX], rn[RAGGED_MAX];
    long kk = (long)d.kf * d.kt;
    if (!avx512 && !dd.pointwise && d.ci * kk <= RAGGED_MAX) {
        dd.n_rw = 0;
        for (int c = 0; c < d.ci; c++) {
            rn[c] = 0;
            for (int a = 0; a < d.kf; a++)
                for (int b = 0; b < d.kt; b++)
                    if (2 * a + (c >> 1 & 1) < s->kf && 2 * b + (c & 1) < s->kt)
                        rk[c * kk + rn[c]++] = a * d.kt + b;
            dd.n_rw += rn[c];
        }
        dd.rk = rk, dd.rn = rn;
    }
    direct_run(&dd, y, xp, wp, 0, fuse, NULL, rest);
}

/* ----------------------------------------------------------------------------- kernels */

static const char *const kernel_names[CONV2D_KERNEL_COUNT] = {
    "auto", "gemm", "direct-avx512", "direct-avx2", "depthwise", "winograd", "pointwise",
};

const char *conv2d_kernel_name(enum conv2d_kernel k)
{
    return (unsigned)k < CONV2D_KERNEL_COUNT ? kernel_names[k] : NULL;
}

int conv2d_kernel_parse(const char *name, enum conv2d_kernel *out)
{
    for (int k = 0; k < CONV2D_KERNEL_COUNT; k++)
        if (!strcmp(name, kernel_names[k])) {
            *out = (enum conv2d_kernel)k;
            return STATUS_OK;
        }
    return status_set(STATUS_INVALID, "unknown conv kernel '%s' (auto, gemm, direct-avx512, "
                                      "direct-avx2, depthwise, winograd, pointwise)", name);
}

/* Stride-1 shapes in every pass; stride-2 ones through their phases, forward only. */
static int direct_runs(const struct conv2d_shape *s, enum conv2d_pass pass)
{
    struct conv2d_shape d;
    return direct_shape(s) || (pass == CONV2D_FORWARD && s2d_shape(s, &d));
}

int conv2d_kernel_runs(const struct conv2d_shape *s, enum conv2d_pass pass, enum conv2d_kernel k)
{
    switch (k) {
    case CONV2D_KERNEL_AUTO:
    case CONV2D_KERNEL_GEMM:
        return 1;
    case CONV2D_KERNEL_DIRECT_AVX512:
        return direct_runs(s, pass) && avx512_ok();
    case CONV2D_KERNEL_DIRECT_AVX2:
        return direct_runs(s, pass) && avx2_ok();
    case CONV2D_KERNEL_DEPTHWISE:
        return is_depthwise(s);
    case CONV2D_KERNEL_WINOGRAD:
        return pass == CONV2D_FORWARD && conv2d_winograd_shape(s) && avx2_ok();
    case CONV2D_KERNEL_POINTWISE:
        return pass == CONV2D_FORWARD && conv2d_pointwise_shape(s) && avx2_ok();
    default:
        return 0;
    }
}

/* The direct kernels need a reduction long enough to pay for their stores (forward and
 * backward data) or enough output channels to fill the vector lanes (weight gradient):
 * direct_band_ok / direct_wband_ok, measured with the AVX-512 kernels on Zen 5; 1x1
 * forwards of up to 64 input channels take the pointwise kernel. Plans measure instead
 * (conv2d_tune); this is the choice without measuring. */
enum conv2d_kernel conv2d_kernel_default(const struct conv2d_shape *s, enum conv2d_pass pass)
{
    if (is_depthwise(s)) return CONV2D_KERNEL_DEPTHWISE;
    if (!direct_shape(s) || __atomic_load_n(&impl_setting, __ATOMIC_RELAXED) != CONV2D_IMPL_AUTO)
        return CONV2D_KERNEL_GEMM;
    /* Narrow 1x1 forwards (most too small for the tuner to measure): the in-place kernel
     * ran 1.2-2x faster than GEMM and the direct band from 8 to 32 channels on Zen 3. */
    if (pass == CONV2D_FORWARD && conv2d_pointwise_shape(s) && avx2_ok() && s->ci / s->groups <= 64)
        return CONV2D_KERNEL_POINTWISE;
    enum conv2d_kernel direct = avx512_ok() ? CONV2D_KERNEL_DIRECT_AVX512
                              : avx2_ok()   ? CONV2D_KERNEL_DIRECT_AVX2
                                            : CONV2D_KERNEL_GEMM;
    struct direct d;
    if (pass == CONV2D_BACKWARD_DATA) direct_of_backward_data(s, &d, 1);
    else direct_of_forward(s, &d, 1);
    int ok = pass == CONV2D_BACKWARD_WEIGHT ? direct_wband_ok(&d) : direct_band_ok(&d);
    return ok ? direct : CONV2D_KERNEL_GEMM;
}

static enum conv2d_kernel resolve(const struct conv2d_shape *s, enum conv2d_pass pass,
                                  enum conv2d_kernel k)
{
    if (k == CONV2D_KERNEL_AUTO || !conv2d_kernel_runs(s, pass, k))
        return conv2d_kernel_default(s, pass);
    return k;
}

void conv2d_forward(const struct conv2d_shape *s, float *y, const float *x, const float *w,
                    const struct conv2d_fuse *fuse, float *scratch)
{
    conv2d_forward_with(s, CONV2D_KERNEL_AUTO, y, x, w, fuse, scratch);
}

void conv2d_forward_with(const struct conv2d_shape *s, enum conv2d_kernel k, float *y,
                         const float *x, const float *w, const struct conv2d_fuse *fuse,
                         float *scratch)
{
    struct layout l;
    layout_of(s, &l);
    CHECK(((uintptr_t)scratch & 7) == 0);
    k = resolve(s, CONV2D_FORWARD, k);
    CHECK(!fuse || !fuse->pro || conv2d_prologue_runs(s, k));
    if (k == CONV2D_KERNEL_DEPTHWISE) {
        depthwise_forward(s, &l, y, x, w, fuse, scratch);
        return;
    }
    if (k == CONV2D_KERNEL_WINOGRAD) {
        conv2d_winograd_forward(s, y, x, w, fuse, scratch);
        return;
    }
    if (k == CONV2D_KERNEL_POINTWISE) {
        conv2d_pointwise_forward(s, y, x, w, fuse, scratch);
        return;
    }
    if ((k == CONV2D_KERNEL_DIRECT_AVX512 || k == CONV2D_KERNEL_DIRECT_AVX2) && !direct_shape(s)) {
        s2d_forward(s, k == CONV2D_KERNEL_DIRECT_AVX512, y, x, w, fuse, scratch);
        return;
    }
    if (k == CONV2D_KERNEL_DIRECT_AVX512 || k == CONV2D_KERNEL_DIRECT_AVX2) {
        struct direct d;
        direct_of_forward(s, &d, k == CONV2D_KERNEL_DIRECT_AVX512);
        direct_run(&d, y, x, w, 0, fuse, NULL, scratch);
        return;
    }
    struct lowering L;
    lowering_forward(s, &L);
    lowered_run(&L, &l, y, x, w, 0.0f, fuse, scratch);
}

/* Strided backward data: dx slices (sample, group, channel chunk) are owned by one thread,
 * which turns each tile of dy into columns (w^T dy) and scatters them into its slice. */
static void backward_data_col2im(const struct conv2d_shape *s, const struct layout *l,
                                 float *dx, const float *dy, const float *w, int accumulate,
                                 float *scratch)
{
    struct lowering L;
    lowering_forward(s, &L);
    long hw_in = (long)s->fi * s->ti, hw_out = (long)s->fo * s->to;
    int cig = s->ci / s->groups, cog = s->co / s->groups, kk = s->kf * s->kt;
    long kg = (long)cig * kk;
    long n_tiles = (hw_out + l->tile - 1) / l->tile;
    int nt = threads_get(), per_sample = s->n * s->groups;
    /* Split channels only when samples x groups alone would leave threads idle. */
    int chunks = 1;
    if (per_sample < 4 * nt && per_sample % nt)
        chunks = min_int(cig, (4 * nt + per_sample - 1) / per_sample);
    int chunk = (cig + chunks - 1) / chunks;
    chunks = (cig + chunk - 1) / chunk;
    long items = (long)per_sample * chunks;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), nth = omp_get_num_threads();
        float *col = thread_col(l, scratch, t);
        long i0 = items * t / nth, i1 = items * (t + 1) / nth;
        for (long it = i0; it < i1; it++) {
            int n = (int)(it / ((long)s->groups * chunks));
            int g = (int)(it / chunks % s->groups);
            int c0 = (int)(it % chunks) * chunk, nc = min_int(chunk, cig - c0);
            float *dxs = dx + ((long)n * s->ci + (long)g * cig + c0) * hw_in;
            const float *dys = dy + ((long)n * s->co + (long)g * cog) * hw_out;
            const float *a = w + (long)g * cog * kg + (long)c0 * kk;
            if (!accumulate) memset(dxs, 0, sizeof(float) * (size_t)(nc * hw_in));
            for (long tile = 0; tile < n_tiles; tile++) {
                long p0 = tile * l->tile;
                long p1 = p0 + l->tile < hw_out ? p0 + l->tile : hw_out;
                gemm(1, 0, nc * kk, (int)(p1 - p0), cog, 1.0f, a, (int)kg, dys + p0,
                     (int)hw_out, 0.0f, col, (int)l->tile);
                col2im(&L, nc, dxs, p0, p1, col, l->tile);
            }
        }
    }
}

void conv2d_backward_data(const struct conv2d_shape *s, float *dx, const float *dy,
                          const float *w, int accumulate, float *scratch)
{
    conv2d_backward_data_with(s, CONV2D_KERNEL_AUTO, dx, dy, w, accumulate, scratch);
}

void conv2d_backward_data_with(const struct conv2d_shape *s, enum conv2d_kernel k, float *dx,
                               const float *dy, const float *w, int accumulate, float *scratch)
{
    conv2d_backward_data_stat(s, k, dx, dy, w, accumulate, NULL, scratch);
}

int conv2d_bnstat_runs(const struct conv2d_shape *s, enum conv2d_kernel k)
{
    return k == CONV2D_KERNEL_DIRECT_AVX512 || k == CONV2D_KERNEL_DIRECT_AVX2 ?
               conv2d_kernel_runs(s, CONV2D_BACKWARD_DATA, k) : 0;
}

void conv2d_backward_data_stat(const struct conv2d_shape *s, enum conv2d_kernel k, float *dx,
                               const float *dy, const float *w, int accumulate,
                               const struct conv2d_bnstat *bst, float *scratch)
{
    struct layout l;
    layout_of(s, &l);
    CHECK(((uintptr_t)scratch & 7) == 0);
    k = resolve(s, CONV2D_BACKWARD_DATA, k);
    CHECK(!bst || conv2d_bnstat_runs(s, k));
    if (k == CONV2D_KERNEL_DEPTHWISE) {
        depthwise_backward_data(s, dx, dy, w, accumulate);
        return;
    }
    if (k == CONV2D_KERNEL_DIRECT_AVX512 || k == CONV2D_KERNEL_DIRECT_AVX2) {
        struct direct d;
        direct_of_backward_data(s, &d, k == CONV2D_KERNEL_DIRECT_AVX512);
        direct_run(&d, dx, dy, w, accumulate, NULL, bst, scratch);
        return;
    }
    if (s->sf != 1 || s->st != 1) {
        backward_data_col2im(s, &l, dx, dy, w, accumulate, scratch);
        return;
    }
    int cig = s->ci / s->groups, cog = s->co / s->groups, kf = s->kf, kt = s->kt;
    struct lowering L = {
        .n = s->n, .groups = s->groups, .cin_g = cog, .cout_g = cig,
        .h = s->fo, .w = s->to, .ho = s->fi, .wo = s->ti,
        .kf = kf, .kt = kt, .sf = 1, .st = 1,
        .pf = (kf - 1) * s->df - s->pf, .pt = (kt - 1) * s->dt - s->pt,
        .df = s->df, .dt = s->dt, .direct = is_pointwise(s),
    };
    if (L.direct) {
        /* dx_g (I/g, P) (+)= w_g^T dy_g: the stored (O/g, I/g) matrix read transposed. */
        L.trans_w = 1;
        lowered_run(&L, &l, dx, dy, w, accumulate ? 1.0f : 0.0f, NULL, scratch);
        return;
    }
    /* wt (groups, I/g, O/g, KF, KT): the kernel flipped in both axes, in and out swapped. */
    float *wt = scratch;
    long kk = (long)kf * kt, n_w = (long)s->co * cig * kk;
#pragma omp parallel for schedule(static) num_threads(threads_get()) if (n_w > 65536)
    for (long e = 0; e < n_w; e++) {
        long ij = e % kk, c = e / kk % cig, o = e / kk / cig; /* e indexes w[o][c][i][j] */
        long g = o / cog, og = o % cog, i = ij / kt, j = ij % kt;
        wt[((g * cig + c) * cog + og) * kk + (kf - 1 - i) * kt + (kt - 1 - j)] = w[e];
    }
    lowered_run(&L, &l, dx, dy, wt, accumulate ? 1.0f : 0.0f, NULL, scratch);
}

/* Work items (sample, tile) as in the forward pass; each thread sums its items' products
 * dy_tile columns^T into its own (O, I/g*KF*KT) partial (thread 0 straight into dw), and
 * the partials are added in thread order. */
void conv2d_backward_weight(const struct conv2d_shape *s, float *dw, const float *dy,
                            const float *x, float *scratch)
{
    conv2d_backward_weight_with(s, CONV2D_KERNEL_AUTO, dw, dy, x, scratch);
}

void conv2d_backward_weight_with(const struct conv2d_shape *s, enum conv2d_kernel k, float *dw,
                                 const float *dy, const float *x, float *scratch)
{
    conv2d_backward_weight_pro(s, k, dw, dy, x, NULL, scratch);
}

int conv2d_prologue_runs(const struct conv2d_shape *s, enum conv2d_kernel k)
{
    if (k == CONV2D_KERNEL_WINOGRAD || k == CONV2D_KERNEL_POINTWISE)
        return conv2d_kernel_runs(s, CONV2D_FORWARD, k);
    return (k == CONV2D_KERNEL_DIRECT_AVX512 || k == CONV2D_KERNEL_DIRECT_AVX2) && direct_shape(s) &&
           conv2d_kernel_runs(s, CONV2D_FORWARD, k);
}

void conv2d_backward_weight_pro(const struct conv2d_shape *s, enum conv2d_kernel k, float *dw,
                                const float *dy, const float *x,
                                const struct conv2d_prologue *pro, float *scratch)
{
    struct layout l;
    layout_of(s, &l);
    CHECK(((uintptr_t)scratch & 7) == 0);
    k = resolve(s, CONV2D_BACKWARD_WEIGHT, k);
    CHECK(!pro || conv2d_prologue_runs(s, k));
    if (k == CONV2D_KERNEL_DEPTHWISE) {
        depthwise_backward_weight(s, dw, dy, x);
        return;
    }
    if (k == CONV2D_KERNEL_DIRECT_AVX512 || k == CONV2D_KERNEL_DIRECT_AVX2) {
        struct direct d;
        direct_of_forward(s, &d, k == CONV2D_KERNEL_DIRECT_AVX512);
        direct_backward_weight(&d, dw, dy, x, pro, scratch);
        return;
    }
    struct lowering L;
    lowering_forward(s, &L);
    long hw_in = (long)s->fi * s->ti, hw_out = (long)s->fo * s->to;
    int cig = L.cin_g, cog = L.cout_g;
    long kg = (long)cig * s->kf * s->kt, n_w = (long)s->co * kg;
    long n_tiles = (hw_out + l.tile - 1) / l.tile;
    long items = (long)s->n * n_tiles;
#pragma omp parallel num_threads(threads_get())
    {
        int t = omp_get_thread_num(), nth = omp_get_num_threads();
        float *col = thread_col(&l, scratch, t);
        float *part = t == 0 ? dw : thread_dwp(&l, scratch, t);
        float beta = 0.0f;
        long i0 = items * t / nth, i1 = items * (t + 1) / nth;
        for (long it = i0; it < i1; it++) {
            int n = (int)(it / n_tiles);
            long p0 = it % n_tiles * l.tile;
            long p1 = p0 + l.tile < hw_out ? p0 + l.tile : hw_out;
            int np = (int)(p1 - p0);
            for (int g = 0; g < s->groups; g++) {
                const float *xin = x + ((long)n * s->ci + (long)g * cig) * hw_in;
                const float *dyt = dy + ((long)n * s->co + (long)g * cog) * hw_out + p0;
                float *c = part + (long)g * cog * kg;
                if (L.direct) {
                    gemm(0, 1, cog, cig, np, 1.0f, dyt, (int)hw_out, xin + p0, (int)hw_in, beta,
                         c, (int)kg);
                } else {
                    im2col(&L, cig, xin, p0, p1, col, l.tile);
                    gemm(0, 1, cog, (int)kg, np, 1.0f, dyt, (int)hw_out, col, (int)l.tile, beta,
                         c, (int)kg);
                }
            }
            beta = 1.0f;
        }
        if (beta == 0.0f) memset(part, 0, sizeof(float) * (size_t)n_w);
#pragma omp barrier
        if (nth > 1) {
#pragma omp for schedule(static)
            for (long e = 0; e < n_w; e++) {
                float v = dw[e];
                for (int u = 1; u < nth; u++) v += thread_dwp(&l, scratch, u)[e];
                dw[e] = v;
            }
        }
    }
}
