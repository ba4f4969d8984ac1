/* conv2d_winograd.c: the forward pass of 3x3 stride-1 convolutions as Winograd F(2x2, 3x3).
 *
 * Key idea: each 2x2 block of outputs (a tile) is A^T [(G g G^T) . (B^T d B)] A, where d is
 * the 4x4 input patch under the tile and g the 3x3 kernel: 16 multiplications per tile,
 * input channel and output channel instead of 36 (Lavin & Gray 2016). Summed over the input
 * channels, the 16 products become 16 independent 1x1 convolutions of the transformed
 * input V (16, I, tiles) with the transformed weights U (16, O, I), which the pointwise
 * kernel (conv2d_direct.h, struct pw_rows) runs; the transforms themselves are additions.
 * It pays where the channels are many enough for the products to outweigh the transforms
 * (on Zen 3: 1.24x the direct kernel at 32 -> 32 channels on 127 x 215, 0.8x at 8 -> 8),
 * which the tuner measures.
 *
 * Work goes in bands of tile rows, as the direct convolution's does, so a band's input,
 * V and M (the 16 products) stay in a core's L2:
 * 1. pack: each input row of the band is copied zero-padded (through the input prologue,
 *    when there is one) and split into its even and odd columns, E and O. Tile p of a row
 *    then reads columns 2p .. 2p+3 as E[p], O[p], E[p+1], O[p+1]: eight tiles per vector,
 *    with no shuffle in the transform;
 * 2. V = B^T d B for eight tiles at a time (32 additions, 16 stores per input channel);
 * 3. M[k] = U[k] V[k] for k < 16 (conv2d_pointwise.c's rows, reading V in place);
 * 4. Y = A^T M A, the fused epilogue (scale, shift, relu, statistics), the even and odd
 *    columns interleaved back and stored, masked at the end of a row.
 * F(2x2, 3x3)'s transforms have coefficients 0, +-1 and 1/2 only, so it loses little
 * precision: within a few float roundings of the direct kernels.
 *
 * ref: Lavin & Gray 2016, "Fast algorithms for convolutional neural networks" (F(2x2,3x3),
 *      the matrices B^T, G, A^T); conv2d.c's direct section (bands, packing, threads).
 */
#include <omp.h>
#include <string.h>

#include <immintrin.h>

#include "basin/core/ops.h"
#include "basin/core/threads.h"
#include "conv2d_direct.h"

/* Floats a band may take per thread (its packed input, V and M): a Zen 3 L2. */
#define WINO_BAND_FLOATS (96 * 1024)
/* A band of at least this many tiles is worth splitting off (a one-clip predict spreads
 * over the threads). */
#define WINO_MIN_TILES 192

int conv2d_winograd_shape(const struct conv2d_shape *s)
{
    return s->kf == 3 && s->kt == 3 && s->sf == 1 && s->st == 1 && s->df == 1 && s->dt == 1 &&
           !(s->groups == s->ci && s->groups == s->co && s->groups > 1) && s->pf >= 0 && s->pt >= 0;
}

/* The geometry of one call (a function of the shape alone, so the scratch sized for it
 * fits whatever the thread count). */
struct wino {
    int n, groups, cin, cout; /* cin, cout per group */
    int h, w, ho, wo, pf, pt;
    int tp, tpv; /* tiles per row; rounded up to 8 */
    int le;      /* floats of an E or O row */
    int ntr;     /* tile rows per band */
    int n_bands;
    int in_rows; /* input rows of a band: 2 ntr + 2 */
    long nq;     /* tiles of a band, rounded up to DIRECT_QB */
    int n_ob;
    long u;       /* floats of U, shared */
    long d, v, m; /* floats per thread: packed band, V, M */
    long stats;   /* floats per thread for 2 x O doubles */
    long per_thread;
};

static void wino_plan(const struct conv2d_shape *s, struct wino *g)
{
    *g = (struct wino){
        .n = s->n,
        .groups = s->groups,
        .cin = s->ci / s->groups,
        .cout = s->co / s->groups,
        .h = s->fi,
        .w = s->ti,
        .ho = s->fo,
        .wo = s->to,
        .pf = s->pf,
        .pt = s->pt,
    };
    g->tp = (g->wo + 1) / 2;
    g->tpv = (int)round_up(g->tp, 8);
    g->le = g->tpv + 8;
    g->n_ob = (g->cout + DIRECT_OB - 1) / DIRECT_OB;
    const int tile_rows = (g->ho + 1) / 2;
    const long per_row = 16L * (g->cin + DIRECT_OB * g->n_ob) * g->tpv + 4L * g->cin * g->le;
    long ntr = (WINO_BAND_FLOATS - 4L * g->cin * g->le) / per_row;
    if (ntr < 1) ntr = 1;
    if (ntr > tile_rows) ntr = tile_rows;
    int n_bands = (int)((tile_rows + ntr - 1) / ntr);
    if (n_bands == 1 && (long)tile_rows * g->tpv >= 2 * WINO_MIN_TILES && tile_rows >= 2)
        n_bands = 2;
    g->n_bands = n_bands;
    g->ntr = (tile_rows + n_bands - 1) / n_bands;
    g->in_rows = 2 * g->ntr + 2;
    g->nq = round_up((long)g->ntr * g->tpv, DIRECT_QB);
    g->u = round16(16L * g->groups * g->n_ob * DIRECT_OB * g->cin);
    g->d = round16((long)g->cin * g->in_rows * 2 * g->le + 2L * g->le);
    g->v = round16(16L * g->cin * g->nq);
    g->m = round16(16L * g->n_ob * DIRECT_OB * g->nq);
    g->stats = round16(4L * g->groups * g->cout);
    g->per_thread = g->d + g->v + g->m + g->stats;
}

size_t conv2d_winograd_scratch_floats(const struct conv2d_shape *s, int n_threads)
{
    if (!conv2d_winograd_shape(s)) return 0;
    struct wino g;
    wino_plan(s, &g);
    return (size_t)(g.u + (long)n_threads * g.per_thread);
}

/* U (16, groups, n_ob, cin, DIRECT_OB) = G g G^T for every (output, input) channel pair,
 * zero past cout: the pointwise kernel's packed weights, one set per k. Blocks
 * of DIRECT_OB output channels are shared out over the threads of the enclosing region. */
static void transform_weights(const struct wino *g, const float *w, float *u)
{
    const long blocks = (long)g->groups * g->n_ob, per_k = blocks * DIRECT_OB * g->cin;
#pragma omp for schedule(static)
    for (long blk = 0; blk < blocks; blk++) {
        const long gr = blk / g->n_ob, ob = blk % g->n_ob;
        for (int c = 0; c < g->cin; c++)
            for (int oo = 0; oo < DIRECT_OB; oo++) {
                const long o = ob * DIRECT_OB + oo;
                float t[4][4] = {{0}};
                if (o < g->cout) {
                    const float *k = w + ((gr * g->cout + o) * g->cin + c) * 9;
                    float a[4][3]; /* G g */
                    for (int j = 0; j < 3; j++) {
                        a[0][j] = k[j];
                        a[1][j] = 0.5f * (k[j] + k[3 + j] + k[6 + j]);
                        a[2][j] = 0.5f * (k[j] - k[3 + j] + k[6 + j]);
                        a[3][j] = k[6 + j];
                    }
                    for (int i = 0; i < 4; i++) { /* (G g) G^T */
                        t[i][0] = a[i][0];
                        t[i][1] = 0.5f * (a[i][0] + a[i][1] + a[i][2]);
                        t[i][2] = 0.5f * (a[i][0] - a[i][1] + a[i][2]);
                        t[i][3] = a[i][2];
                    }
                }
                for (int kk = 0; kk < 16; kk++)
                    u[kk * per_k + (blk * g->cin + c) * DIRECT_OB + oo] = t[kk / 4][kk % 4];
            }
    }
}

/* Input rows [ih0, ih0 + in_rows) of the cin planes x as even and odd columns of the
 * zero-padded rows (column j of a padded row is input column j - pt): row r of channel c
 * at d + (c * in_rows + r) * 2 le, E first, then O. */
static void pack_band(const struct wino *g, const float *x, int ih0, float *d,
                      const struct conv2d_prologue *pro, int c0)
{
    const long hw = (long)g->h * g->w, cs = (long)g->in_rows * 2 * g->le;
    float *row = d + (long)g->cin * cs; /* 2 le floats: one padded row */
    const int n2 = 2 * g->le;
    const int j0 = g->pt < n2 ? g->pt : n2, j1 = min_int(n2, g->pt + g->w);
    for (int c = 0; c < g->cin; c++) {
        float mu = 0, sc = 1, sh = 0;
        if (pro) mu = pro->mean[c0 + c], sc = pro->scale[c0 + c], sh = pro->shift[c0 + c];
        for (int r = 0; r < g->in_rows; r++) {
            float *e = d + c * cs + (long)r * n2, *o = e + g->le;
            const int ih = ih0 + r;
            if (ih < 0 || ih >= g->h || j0 >= j1) {
                memset(e, 0, sizeof(float) * (size_t)n2);
                continue;
            }
            const float *src = x + c * hw + (long)ih * g->w; /* padded column j: src[j - pt] */
            memset(row, 0, sizeof(float) * (size_t)j0);
            if (!pro) {
                memcpy(row + j0, src + (j0 - g->pt), sizeof(float) * (size_t)(j1 - j0));
            } else if (pro->relu) {
#pragma omp simd
                for (int j = j0; j < j1; j++) {
                    float v = __builtin_fmaf(src[j - g->pt] - mu, sc, sh);
                    row[j] = v > 0.0f ? v : 0.0f;
                }
            } else {
#pragma omp simd
                for (int j = j0; j < j1; j++) row[j] = __builtin_fmaf(src[j - g->pt] - mu, sc, sh);
            }
            memset(row + j1, 0, sizeof(float) * (size_t)(n2 - j1));
            for (int j = 0; j < n2; j += 16) {
                __m256 a = _mm256_loadu_ps(row + j), b = _mm256_loadu_ps(row + j + 8);
                /* within 128-bit lanes: evens a0 a2 b0 b2 | a4 a6 b4 b6, then lanes 0 2 1 3 */
                __m256 ev = _mm256_shuffle_ps(a, b, 0x88), od = _mm256_shuffle_ps(a, b, 0xDD);
                ev = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xD8));
                od = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), 0xD8));
                _mm256_storeu_ps(e + j / 2, ev);
                _mm256_storeu_ps(o + j / 2, od);
            }
        }
    }
}

/* V[k][c][tr * tpv + p] = (B^T d B)[k / 4][k % 4] for the tiles of ntr tile rows. */
static void transform_input(const struct wino *g, const float *d, int ntr, float *v)
{
    const long cs = (long)g->in_rows * 2 * g->le, rs = 2L * g->le, vk = (long)g->cin * g->nq;
    for (int c = 0; c < g->cin; c++)
        for (int tr = 0; tr < ntr; tr++) {
            const float *r0 = d + c * cs + 2L * tr * rs;
            float *dst = v + (long)c * g->nq + (long)tr * g->tpv;
            for (int p = 0; p < g->tpv; p += 8) {
                __m256 t[4][4]; /* rows (B^T d), at E p, O p, E p+1, O p+1 */
                __m256 x[4][4];
                for (int i = 0; i < 4; i++) {
                    const float *ri = r0 + i * rs + p;
                    x[i][0] = _mm256_loadu_ps(ri);
                    x[i][1] = _mm256_loadu_ps(ri + g->le);
                    x[i][2] = _mm256_loadu_ps(ri + 1);
                    x[i][3] = _mm256_loadu_ps(ri + g->le + 1);
                }
                for (int j = 0; j < 4; j++) {
                    t[0][j] = _mm256_sub_ps(x[0][j], x[2][j]);
                    t[1][j] = _mm256_add_ps(x[1][j], x[2][j]);
                    t[2][j] = _mm256_sub_ps(x[2][j], x[1][j]);
                    t[3][j] = _mm256_sub_ps(x[1][j], x[3][j]);
                }
                for (int i = 0; i < 4;
                     i++) { /* columns d0 = E p, d1 = O p, d2 = E p+1, d3 = O p+1 */
                    float *o = dst + (long)(4 * i) * vk + p;
                    _mm256_storeu_ps(o, _mm256_sub_ps(t[i][0], t[i][2]));
                    _mm256_storeu_ps(o + vk, _mm256_add_ps(t[i][1], t[i][2]));
                    _mm256_storeu_ps(o + 2 * vk, _mm256_sub_ps(t[i][2], t[i][1]));
                    _mm256_storeu_ps(o + 3 * vk, _mm256_sub_ps(t[i][1], t[i][3]));
                }
            }
        }
}

/* One output row segment: even columns ev, odd od of eight tiles from column col; the
 * epilogue, the interleave, a store masked at the row's end, the statistics. */
static inline __attribute__((always_inline)) void store_pair(float *row, int col, int wo, __m256 ev,
                                                             __m256 od, __m256 sc, __m256 sh,
                                                             int affine, int relu, int stats,
                                                             __m256 *s1, __m256 *s2)
{
    __m256 lo = _mm256_unpacklo_ps(ev, od), hi = _mm256_unpackhi_ps(ev, od);
    __m256 y[2] = {_mm256_permute2f128_ps(lo, hi, 0x20), _mm256_permute2f128_ps(lo, hi, 0x31)};
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int h = 0; h < 2; h++) {
        const int at = col + 8 * h;
        if (at >= wo) break;
        __m256 v = y[h];
        if (affine) v = _mm256_fmadd_ps(v, sc, sh);
        if (relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
        if (at + 8 <= wo) {
            _mm256_storeu_ps(row + at, v);
        } else {
            __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(wo - at), iota);
            _mm256_maskstore_ps(row + at, m, v);
            v = _mm256_and_ps(v, _mm256_castsi256_ps(m));
        }
        if (stats) {
            *s1 = _mm256_add_ps(*s1, v);
            *s2 = _mm256_fmadd_ps(v, v, *s2);
        }
    }
}

/* Y = A^T M A for output channel o of the band's tiles, into output rows [oh0, oh0 + nr)
 * of the plane y, with the epilogue; the statistics go to st1, st2. */
static void transform_output(const struct wino *g, const float *m, int o, int nr, float *y,
                             const struct conv2d_fuse *f, int c, double *st1, double *st2)
{
    const long mk = (long)DIRECT_OB * g->n_ob * g->nq;
    const int affine = f && (f->scale || f->shift), relu = f && f->relu, stats = st1 || st2;
    const __m256 sc = _mm256_set1_ps(f && f->scale ? f->scale[c] : 1.0f);
    const __m256 sh = _mm256_set1_ps(f && f->shift ? f->shift[c] : 0.0f);
    __m256 s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps();
    for (int tr = 0; 2 * tr < nr; tr++) {
        const float *src = m + (long)o * g->nq + (long)tr * g->tpv;
        float *row0 = y + (long)(2 * tr) * g->wo, *row1 = row0 + g->wo;
        for (int p = 0; p < g->tp; p += 8) {
            __m256 a[4], b[4]; /* A^T over rows: a = m0 + m1 + m2, b = m1 - m2 - m3, per column */
            for (int j = 0; j < 4; j++) {
                __m256 m0 = _mm256_loadu_ps(src + j * mk + p),
                       m1 = _mm256_loadu_ps(src + (4 + j) * mk + p);
                __m256 m2 = _mm256_loadu_ps(src + (8 + j) * mk + p),
                       m3 = _mm256_loadu_ps(src + (12 + j) * mk + p);
                a[j] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
                b[j] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
            }
            __m256 e0 = _mm256_add_ps(_mm256_add_ps(a[0], a[1]), a[2]);
            __m256 o0 = _mm256_sub_ps(_mm256_sub_ps(a[1], a[2]), a[3]);
            store_pair(row0, 2 * p, g->wo, e0, o0, sc, sh, affine, relu, stats, &s1, &s2);
            if (2 * tr + 1 < nr) {
                __m256 e1 = _mm256_add_ps(_mm256_add_ps(b[0], b[1]), b[2]);
                __m256 o1 = _mm256_sub_ps(_mm256_sub_ps(b[1], b[2]), b[3]);
                store_pair(row1, 2 * p, g->wo, e1, o1, sc, sh, affine, relu, stats, &s1, &s2);
            }
        }
    }
    if (st1) *st1 += sum8_pd(s1);
    if (st2) *st2 += sum8_pd(s2);
}

void conv2d_winograd_forward(const struct conv2d_shape *s, float *y, const float *x, const float *w,
                             const struct conv2d_fuse *fuse, float *scratch)
{
    struct wino g;
    wino_plan(s, &g);
    const struct conv2d_prologue *pro = fuse ? fuse->pro : NULL;
    const long hw_in = (long)g.h * g.w, hw_out = (long)g.ho * g.wo;
    const long items = (long)g.n * g.groups * g.n_bands;
    const int cout = g.groups * g.cout, stats = fuse && (fuse->sum || fuse->sumsq);
    const long per_k = (long)g.groups * g.n_ob * DIRECT_OB * g.cin;
    float *u = scratch;
    int nth_used = 1;
#pragma omp parallel num_threads(threads_get())
    {
        const int t = omp_get_thread_num(), nth = omp_get_num_threads();
        float *d = scratch + g.u + (long)t * g.per_thread, *v = d + g.d, *m = v + g.v;
        double *st = (double *)(m + g.m);
        if (t == 0) nth_used = nth;
        if (stats) memset(st, 0, sizeof(double) * 2 * (size_t)cout);
        transform_weights(&g, w, u); /* ends with a barrier */
        const long i0 = items * t / nth, i1 = items * (t + 1) / nth;
        for (long it = i0; it < i1; it++) {
            const int band = (int)(it % g.n_bands);
            const long ng = it / g.n_bands; /* sample * groups + group */
            const int gr = (int)(ng % g.groups), c0 = gr * g.cout;
            const int oh0 = 2 * band * g.ntr, nr = min_int(2 * g.ntr, g.ho - oh0);
            if (nr <= 0) continue;
            const int ntr = (nr + 1) / 2;
            pack_band(&g, x + ng * g.cin * hw_in, oh0 - g.pf, d, pro, gr * g.cin);
            transform_input(&g, d, ntr, v);
            for (int k = 0; k < 16; k++) {
                const struct pw_rows r = {
                    .in = v + (long)k * g.cin * g.nq,
                    .in_cs = g.nq,
                    .cin = g.cin,
                    .wpk = u + k * per_k + (long)gr * g.n_ob * DIRECT_OB * g.cin,
                    .n_ob = g.n_ob,
                    .out = m + (long)k * DIRECT_OB * g.n_ob * g.nq,
                    .out_cs = g.nq,
                    .cout = g.cout,
                    .n = (long)ntr * g.tpv,
                };
                conv2d_pw_rows(&r);
            }
            float *out = y + ng * g.cout * hw_out + (long)oh0 * g.wo;
            for (int o = 0; o < g.cout; o++)
                transform_output(&g, m, o, nr, out + o * hw_out, fuse, c0 + o,
                                 stats && fuse->sum ? &st[c0 + o] : NULL,
                                 stats && fuse->sumsq ? &st[cout + c0 + o] : NULL);
        }
    }
    if (stats)
        for (int t = 0; t < nth_used; t++) {
            const double *st =
                (const double *)(scratch + g.u + (long)t * g.per_thread + g.d + g.v + g.m);
            for (int o = 0; o < cout; o++) {
                if (fuse->sum) fuse->sum[o] += st[o];
                if (fuse->sumsq) fuse->sumsq[o] += st[cout + o];
            }
        }
}
