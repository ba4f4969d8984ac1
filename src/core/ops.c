/* ops.c: elementwise ops (relu, add), channel roll, linear and dropout.
 *
 * Key idea: these kernels are memory-bound, so each is one streaming pass, split over the
 * OpenMP threads only when the tensor is big enough to pay for the parallel region, with
 * inner loops the compiler vectorises. Dropout draws serially from the caller's rng so a
 * given rng state gives the same mask on every thread count.
 *
 * ref: torch.roll (shift semantics), torch.nn.functional.dropout (inverted dropout,
 *      scale 1 / (1 - p)), torch.nn.functional.linear (y = x w^T + b).
 */
#include <math.h>
#include <string.h>

#include "basin/core/gemm.h"
#include "basin/core/ops.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"

/* Below this many elements a parallel region costs more than it saves. */
#define OPS_PARALLEL_MIN 65536L

/* ----------------------------------------------------------------------------- elementwise */

void relu_forward(long n, float *y, const float *x)
{
#pragma omp parallel for simd schedule(static) num_threads(threads_get()) \
    if (n >= OPS_PARALLEL_MIN)
    for (long i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward(long n, float *dx, const float *dy, const float *y, int accumulate)
{
    if (accumulate) {
#pragma omp parallel for simd schedule(static) num_threads(threads_get()) \
    if (n >= OPS_PARALLEL_MIN)
        for (long i = 0; i < n; i++) dx[i] += y[i] > 0.0f ? dy[i] : 0.0f;
    } else {
#pragma omp parallel for simd schedule(static) num_threads(threads_get()) \
    if (n >= OPS_PARALLEL_MIN)
        for (long i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    }
}

void add_forward(long n, float *y, const float *a, const float *b, int relu)
{
    if (relu) {
#pragma omp parallel for simd schedule(static) num_threads(threads_get()) \
    if (n >= OPS_PARALLEL_MIN)
        for (long i = 0; i < n; i++) {
            float v = a[i] + b[i];
            y[i] = v > 0.0f ? v : 0.0f;
        }
    } else {
#pragma omp parallel for simd schedule(static) num_threads(threads_get()) \
    if (n >= OPS_PARALLEL_MIN)
        for (long i = 0; i < n; i++) y[i] = a[i] + b[i];
    }
}

void add_bn_forward(long n, float *y, const float *a, const float *b, int relu,
                    const struct add_bn *bn)
{
    if (!bn) {
        add_forward(n, y, a, b, relu);
        return;
    }
    const float *x = bn->input ? b : a, *o = bn->input ? a : b;
    long planes = n / bn->hw, hw = bn->hw;
#pragma omp parallel for schedule(static) num_threads(threads_get()) if (n >= OPS_PARALLEL_MIN)
    for (long p = 0; p < planes; p++) {
        int c = (int)(p % bn->c);
        float m = bn->mean[c], sc = bn->scale[c], sh = bn->shift[c];
        const float *xp = x + p * hw, *op = o + p * hw;
        float *yp = y + p * hw;
        /* in the operands' order: the BN's output v, then a + b as add_forward adds */
        if (relu) {
#pragma omp simd
            for (long i = 0; i < hw; i++) {
                float v = __builtin_fmaf(xp[i] - m, sc, sh);
                float s = bn->input ? op[i] + v : v + op[i];
                yp[i] = s > 0.0f ? s : 0.0f;
            }
        } else {
#pragma omp simd
            for (long i = 0; i < hw; i++) {
                float v = __builtin_fmaf(xp[i] - m, sc, sh);
                yp[i] = bn->input ? op[i] + v : v + op[i];
            }
        }
    }
}

/* Block by block: the masked gradient of a block goes to a small buffer first, so da or db
 * may alias dy and each loop stays branch-free. */
#define ADD_BLOCK 1024

void add_backward(long n, float *da, float *db, const float *dy, const float *y, int relu,
                  int accumulate_a, int accumulate_b)
{
    CHECK(!relu || y);
#pragma omp parallel for schedule(static) num_threads(threads_get()) if (n >= OPS_PARALLEL_MIN)
    for (long blk = 0; blk < n; blk += ADD_BLOCK) {
        long m = n - blk < ADD_BLOCK ? n - blk : ADD_BLOCK;
        float g[ADD_BLOCK];
        if (relu) {
#pragma omp simd
            for (long i = 0; i < m; i++) g[i] = y[blk + i] > 0.0f ? dy[blk + i] : 0.0f;
        } else {
            memcpy(g, dy + blk, sizeof(float) * (size_t)m);
        }
        float *d[2] = {da, db};
        int acc[2] = {accumulate_a, accumulate_b};
        for (int k = 0; k < 2; k++) {
            if (!d[k]) continue;
            float *o = d[k] + blk;
            if (acc[k]) {
#pragma omp simd
                for (long i = 0; i < m; i++) o[i] += g[i];
            } else {
                memcpy(o, g, sizeof(float) * (size_t)m);
            }
        }
    }
}

/* ----------------------------------------------------------------------------- roll */

static int mod_c(long a, int c)
{
    long r = a % c;
    return (int)(r < 0 ? r + c : r);
}

void roll_forward(int n, int c, long hw, int shift, float *y, const float *x)
{
    CHECK(y != x);
    long planes = (long)n * c;
#pragma omp parallel for schedule(static) num_threads(threads_get()) \
    if (planes * hw >= OPS_PARALLEL_MIN)
    for (long p = 0; p < planes; p++) {
        long s = p / c, j = p % c;
        memcpy(y + p * hw, x + (s * c + mod_c(j - shift, c)) * hw, sizeof(float) * (size_t)hw);
    }
}

void roll_backward(int n, int c, long hw, int shift, float *dx, const float *dy, int accumulate)
{
    CHECK(dx != dy);
    long planes = (long)n * c;
#pragma omp parallel for schedule(static) num_threads(threads_get()) \
    if (planes * hw >= OPS_PARALLEL_MIN)
    for (long p = 0; p < planes; p++) {
        long s = p / c, k = p % c;
        const float *src = dy + (s * c + mod_c(k + shift, c)) * hw;
        float *dst = dx + p * hw;
        if (accumulate) {
#pragma omp simd
            for (long i = 0; i < hw; i++) dst[i] += src[i];
        } else {
            memcpy(dst, src, sizeof(float) * (size_t)hw);
        }
    }
}

/* ----------------------------------------------------------------------------- linear */

void linear_forward(int n, int in, int out, float *y, const float *x, const float *w,
                    const float *b)
{
    gemm_parallel(0, 1, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    if (!b) return;
    for (int i = 0; i < n; i++) {
        float *yr = y + (long)i * out;
#pragma omp simd
        for (int o = 0; o < out; o++) yr[o] += b[o];
    }
}

void linear_backward(int n, int in, int out, float *dx, float *dw, float *db, const float *dy,
                     const float *x, const float *w, int accumulate)
{
    if (dx) gemm_parallel(0, 0, n, in, out, 1.0f, dy, out, w, in, accumulate ? 1.0f : 0.0f, dx, in);
    if (dw) gemm_parallel(1, 0, out, in, n, 1.0f, dy, out, x, in, 0.0f, dw, in);
    if (db) {
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int i = 0; i < n; i++) s += dy[(long)i * out + o];
            db[o] = (float)s;
        }
    }
}

/* ----------------------------------------------------------------------------- dropout */

/* keep = u >= p for u = rng_uniform(), compared in integers: u = (bits >> 11) * 2^-53, so
 * u >= p exactly when (bits >> 11) >= ceil(p * 2^53), and the draws match rng_uniform's.
 * p == 0 and p == 1 draw nothing: every element is kept, or none is (all zeros, as
 * PyTorch). The output is x * mask * (1 / (1 - p)), so a NaN stays NaN where dropped, as in
 * PyTorch's x * noise. */
void dropout_forward(long n, float *y, const float *x, float p, uint8_t *mask, struct rng *rng)
{
    CHECK(p >= 0.0f && p <= 1.0f);
    if (p == 0.0f) {
        if (y != x) memcpy(y, x, sizeof(float) * (size_t)n);
        memset(mask, 1, (size_t)n);
        return;
    }
    if (p == 1.0f) {
        memset(y, 0, sizeof(float) * (size_t)n);
        memset(mask, 0, (size_t)n);
        return;
    }
    uint64_t threshold = (uint64_t)ceil((double)p * 0x1p53);
    for (long i = 0; i < n; i++) mask[i] = (rng_u64(rng) >> 11) >= threshold;
    float scale = 1.0f / (1.0f - p);
#pragma omp parallel for simd schedule(static) num_threads(threads_get()) \
    if (n >= OPS_PARALLEL_MIN)
    for (long i = 0; i < n; i++) y[i] = x[i] * ((float)mask[i] * scale);
}

void dropout_backward(long n, float *dx, const float *dy, float p, const uint8_t *mask,
                      int accumulate)
{
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    if (accumulate) {
#pragma omp parallel for simd schedule(static) num_threads(threads_get()) \
    if (n >= OPS_PARALLEL_MIN)
        for (long i = 0; i < n; i++) dx[i] += dy[i] * ((float)mask[i] * scale);
    } else {
#pragma omp parallel for simd schedule(static) num_threads(threads_get()) \
    if (n >= OPS_PARALLEL_MIN)
        for (long i = 0; i < n; i++) dx[i] = dy[i] * ((float)mask[i] * scale);
    }
}
