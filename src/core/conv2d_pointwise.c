/* conv2d_pointwise.c: the forward pass of 1x1 stride-1 convolutions without padding, read
 * in place, for the narrow layers where im2col-free GEMM and the direct band both lose to
 * their overheads.
 *
 * Key idea: a 1x1 convolution of a plane is out[o][q] = sum over c of w[o][c] in[c][q], a
 * (cout x cin) by (cin x positions) product whose reduction is only cin deep (8 in
 * CP-ResNet's first stage, 16 to 32 in its later ones). OpenBLAS packs both operands and
 * runs a beta pass for it; the direct band copies every input plane into its buffer and
 * goes through its generic epilogue per vector; either costs more than the 2 x cin x cout
 * FLOPs per position. Here the input planes are read where they are, 4 output channels x
 * 24 positions accumulate in registers over the channels (3 loads and 4 broadcasts feed
 * 12 FMAs), and the epilogue (scale, shift, relu, the BN statistics) runs on the registers
 * before the one store; positions past a multiple of 8 are loaded and stored masked. An
 * input prologue (a BN, with relu or not) is applied to each vector as it is loaded, in
 * blocks of 8 positions (with 24 its constants would not fit the registers, and spilled
 * accumulators chain every FMA through a store and a load).
 *
 * ref: conv2d_avx2.c (the same register block), conv2d.c's direct section (packed weights
 *      (n_ob, cin, DIRECT_OB), work items over threads, statistics reduced in thread order).
 */
#include <omp.h>
#include <string.h>

#include <immintrin.h>

#include "basin/core/ops.h"
#include "basin/core/threads.h"
#include "conv2d_direct.h"

#define INLINE static inline __attribute__((always_inline))

/* Positions per work item: a plane is cut so that one sample spreads over the threads,
 * in pieces long enough to keep the loop overheads small. */
#define PW_CHUNK (96 * 32)

int conv2d_pointwise_shape(const struct conv2d_shape *s)
{
    return s->kf == 1 && s->kt == 1 && s->sf == 1 && s->st == 1 && s->pf == 0 && s->pt == 0 &&
           !(s->groups == s->ci && s->groups == s->co && s->groups > 1);
}

static void geometry(const struct conv2d_shape *s, int *cin, int *cout, int *n_ob, long *wpk,
                     long *per_thread)
{
    *cin = s->ci / s->groups, *cout = s->co / s->groups;
    *n_ob = (*cout + DIRECT_OB - 1) / DIRECT_OB;
    *wpk = round16((long)s->groups * *n_ob * DIRECT_OB * *cin);
    *per_thread = round16(4L * s->co) + round16(16L * *n_ob * DIRECT_OB);
}

size_t conv2d_pointwise_scratch_floats(const struct conv2d_shape *s, int n_threads)
{
    if (!conv2d_pointwise_shape(s)) return 0;
    int cin, cout, n_ob;
    long wpk, per_thread;
    geometry(s, &cin, &cout, &n_ob, &wpk, &per_thread);
    return (size_t)(wpk + (long)n_threads * per_thread);
}

/* The 8 floats at p, the lanes outside m zero when masked (and not read). */
INLINE __m256 load8(const float *p, int masked, __m256i m)
{
    return masked ? _mm256_maskload_ps(p, m) : _mm256_loadu_ps(p);
}

/* The epilogue and store of one vector of output channel o, and its statistics. */
INLINE void finish(const struct pw_rows *a, int o, __m256 v, float *dst, int masked, __m256i m)
{
    if (a->scale || a->shift)
        v = _mm256_fmadd_ps(v, _mm256_set1_ps(a->scale ? a->scale[o] : 1.0f),
                            _mm256_set1_ps(a->shift ? a->shift[o] : 0.0f));
    if (a->relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
    if (masked) {
        _mm256_maskstore_ps(dst, m, v);
        v = _mm256_and_ps(v, _mm256_castsi256_ps(m));
    } else {
        _mm256_storeu_ps(dst, v);
    }
    if (a->part) {
        float *pt = a->part + 16L * o;
        _mm256_storeu_ps(pt, _mm256_add_ps(_mm256_loadu_ps(pt), v));
        _mm256_storeu_ps(pt + 8, _mm256_fmadd_ps(v, v, _mm256_loadu_ps(pt + 8)));
    }
}

/* Output channels ob * 8 + half * 4 + [0, 4) x positions [q, q + 24), no prologue: the 12
 * accumulators, 3 inputs and a broadcast weight fill the 16 registers exactly. masked: the
 * positions at or past n are neither read nor written (the row's last block; 8-position
 * blocks there ran 4 dependent FMA chains, a third of the time of a 32 -> 32 layer on
 * 3 x 15 maps). */
INLINE void block3(const struct pw_rows *a, long q, int ob, int half, const int masked)
{
    const float *w = a->wpk + (long)ob * a->cin * DIRECT_OB + half * 4;
    const float *in = a->in + q;
    const long cs = a->in_cs;
    const int cin = a->cin;
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i m[3];
    for (int v = 0; v < 3; v++)
        m[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(a->n - q - 8 * v)), iota);
    __m256 z = _mm256_setzero_ps();
    __m256 c00 = z, c01 = z, c02 = z, c10 = z, c11 = z, c12 = z;
    __m256 c20 = z, c21 = z, c22 = z, c30 = z, c31 = z, c32 = z;
    for (int c = 0; c < cin; c++, w += DIRECT_OB, in += cs) {
        __m256 x0 = load8(in, masked, m[0]), x1 = load8(in + 8, masked, m[1]);
        __m256 x2 = load8(in + 16, masked, m[2]);
        AVX2_BLOCK_STEP(w, x0, x1, x2);
    }
    const __m256 r0[4] = {c00, c10, c20, c30}, r1[4] = {c01, c11, c21, c31},
                 r2[4] = {c02, c12, c22, c32};
    for (int oo = 0; oo < 4; oo++) {
        const int o = ob * DIRECT_OB + half * 4 + oo;
        if (o >= a->cout) break;
        float *dst = a->out + o * a->out_cs + q;
        finish(a, o, r0[oo], dst, masked, m[0]);
        finish(a, o, r1[oo], dst + 8, masked, m[1]);
        finish(a, o, r2[oo], dst + 16, masked, m[2]);
    }
}

/* The same for the 8 positions [q, q + 8) (lanes at or past n masked), with the prologue
 * when there is one: few enough registers that nothing spills. */
INLINE void block1(const struct pw_rows *a, long q, int ob, int half)
{
    const float *w = a->wpk + (long)ob * a->cin * DIRECT_OB + half * 4;
    const float *in = a->in + q;
    const long cs = a->in_cs;
    const int cin = a->cin, masked = q + 8 > a->n;
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(a->n - q)),
                                         _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
    for (int c = 0; c < cin; c++, w += DIRECT_OB, in += cs) {
        __m256 x = load8(in, masked, m);
        if (a->pro_mean) {
            x = _mm256_fmadd_ps(_mm256_sub_ps(x, _mm256_set1_ps(a->pro_mean[c])),
                                _mm256_set1_ps(a->pro_scale[c]), _mm256_set1_ps(a->pro_shift[c]));
            if (a->pro_relu) x = _mm256_max_ps(x, _mm256_setzero_ps());
        }
        c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(w), x, c0);
        c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(w + 1), x, c1);
        c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(w + 2), x, c2);
        c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(w + 3), x, c3);
    }
    const __m256 r[4] = {c0, c1, c2, c3};
    for (int oo = 0; oo < 4; oo++) {
        const int o = ob * DIRECT_OB + half * 4 + oo;
        if (o >= a->cout) break;
        finish(a, o, r[oo], a->out + o * a->out_cs + q, masked, m);
    }
}

void conv2d_pw_rows(const struct pw_rows *a)
{
    long q = 0;
    if (!a->pro_mean) {
        for (; q < a->n; q += 24)
            for (int ob = 0; ob < a->n_ob; ob++) {
                const int h2 = ob * DIRECT_OB + 4 < a->cout;
                if (q + 24 <= a->n) {
                    block3(a, q, ob, 0, 0);
                    if (h2) block3(a, q, ob, 1, 0);
                } else {
                    block3(a, q, ob, 0, 1);
                    if (h2) block3(a, q, ob, 1, 1);
                }
            }
        return;
    }
    for (; q < a->n; q += 8)
        for (int ob = 0; ob < a->n_ob; ob++) {
            block1(a, q, ob, 0);
            if (ob * DIRECT_OB + 4 < a->cout) block1(a, q, ob, 1);
        }
}

/* Sum of 8 float lanes in double. */
static double sum8(const float *v)
{
    return (((double)v[0] + v[1]) + ((double)v[2] + v[3])) +
           (((double)v[4] + v[5]) + ((double)v[6] + v[7]));
}

void conv2d_pointwise_forward(const struct conv2d_shape *s, float *y, const float *x,
                              const float *w, const struct conv2d_fuse *fuse, float *scratch)
{
    int cin, cout, n_ob;
    long nwpk, per_thread;
    geometry(s, &cin, &cout, &n_ob, &nwpk, &per_thread);
    const long hw = (long)s->fi * s->ti;
    const long n_chunks = (hw + PW_CHUNK - 1) / PW_CHUNK, items = (long)s->n * s->groups * n_chunks;
    const int stats = fuse && (fuse->sum || fuse->sumsq);
    const struct conv2d_prologue *pro = fuse ? fuse->pro : NULL;
    float *wpk = scratch;
    int nth_used = 1;
#pragma omp parallel num_threads(threads_get())
    {
        const int t = omp_get_thread_num(), nth = omp_get_num_threads();
        double *st = (double *)(scratch + nwpk + (long)t * per_thread);
        float *part = (float *)st + round16(4L * s->co);
        if (t == 0) nth_used = nth;
        if (stats) memset(st, 0, sizeof(double) * 2 * (size_t)s->co);
        /* ends with a barrier */
        conv2d_pack_weights(w, s->groups, cin, cout, 1, 0, NULL, NULL, wpk);
        const long i0 = items * t / nth, i1 = items * (t + 1) / nth;
        for (long it = i0; it < i1; it++) {
            const long ng = it / n_chunks,
                       p0 = it % n_chunks * PW_CHUNK; /* sample * groups + group */
            const int g = (int)(ng % s->groups), c0 = g * cout, ci0 = g * cin;
            const long len = hw - p0 < PW_CHUNK ? hw - p0 : PW_CHUNK;
            struct pw_rows a = {
                .in = x + ng * cin * hw + p0,
                .in_cs = hw,
                .cin = cin,
                .wpk = wpk + (long)g * n_ob * DIRECT_OB * cin,
                .n_ob = n_ob,
                .out = y + ng * cout * hw + p0,
                .out_cs = hw,
                .cout = cout,
                .n = len,
                .scale = fuse && fuse->scale ? fuse->scale + c0 : NULL,
                .shift = fuse && fuse->shift ? fuse->shift + c0 : NULL,
                .relu = fuse && fuse->relu,
                .part = stats ? part : NULL,
            };
            if (pro) {
                a.pro_mean = pro->mean + ci0, a.pro_scale = pro->scale + ci0,
                a.pro_shift = pro->shift + ci0;
                a.pro_relu = pro->relu;
            }
            if (stats) memset(part, 0, sizeof(float) * 16 * (size_t)cout);
            conv2d_pw_rows(&a);
            if (stats)
                for (int o = 0; o < cout; o++) {
                    st[c0 + o] += sum8(part + 16 * o);
                    st[s->co + c0 + o] += sum8(part + 16 * o + 8);
                }
        }
    }
    if (stats)
        for (int t = 0; t < nth_used; t++) {
            const double *st = (const double *)(scratch + nwpk + (long)t * per_thread);
            for (int o = 0; o < s->co; o++) {
                if (fuse->sum) fuse->sum[o] += st[o];
                if (fuse->sumsq) fuse->sumsq[o] += st[s->co + o];
            }
        }
}
