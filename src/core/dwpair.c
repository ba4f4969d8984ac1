/* dwpair.c: SP4ASC's separable-block tail as one kernel (see ops.h, struct dwpair_shape):
 * two depthwise stride-1 convolutions of the same input, summed, batch-normalised per
 * channel, relu, and optionally a 2x2 average pool; also with the block's 1x1 conv folded
 * in when that conv has a single input channel (the first block).
 *
 * Key idea: the layers are memory-bound one by one (six FMAs per element for the two
 * depthwise convs), so the kernel keeps the sum s = conv_a(x) + conv_b(x) out of memory
 * altogether: the forward computes s row by row twice (once for the batch statistics, once
 * to normalise, relu and pool it), and the backward recomputes it from x where it needs it.
 * Only the (pooled) output is written, and the backward reads x and the output gradient and
 * writes the input gradient, in place over x when the caller wants (x's planes are
 * independent: each is copied to a per-thread buffer first). Work goes by (sample, channel)
 * planes; every reduction (batch statistics, BN and weight gradients) is summed per plane
 * in double and then over the planes in a fixed order, so results do not depend on the
 * thread count.
 *
 * One row of s is a short stencil over input rows: every tap (row, column offset, weight)
 * of both kernels is a vector FMA over the columns where all taps are inside the input,
 * with the few columns at each end done one by one with the same operation order (so a
 * value does not depend on which path computed it, and the backward's recomputation
 * equals the forward's bit for bit).
 *
 * ref: Puy et al. 2021 (SP4ASC, Cnn6_60k: separable blocks); torch.nn.BatchNorm2d (train:
 *      biased variance to normalise, unbiased into the running statistics); batchnorm.c
 *      (the backward's closed form); pool.c (the 2x2 average pool and its adjoint).
 */
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "basin/core/ops.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"

/* Taps of both kernels together. */
#define DWP_MAX_TAPS 64
/* Folded 1x1 with few samples: the input gradient of a sample sums its channels' planes in
 * this many chunks (partial planes added in order), a count fixed so that the result does
 * not depend on the thread count; from DWP_FEW samples on, each sample is one work item. */
#define DWP_CHUNKS 8
#define DWP_FEW 4

static int min_i(int a, int b)
{
    return a < b ? a : b;
}

static int max_i(int a, int b)
{
    return a > b ? a : b;
}

static long round16(long n)
{
    return (n + 15) / 16 * 16;
}

int dwpair_shape_check(const struct dwpair_shape *s)
{
    if (s->n <= 0 || s->c <= 0 || s->f <= 0 || s->t <= 0)
        return status_set(STATUS_INVALID, "dwpair: sizes must be positive (%d x %d x %d x %d)",
                          s->n, s->c, s->f, s->t);
    int taps = 0;
    for (int k = 0; k < 2; k++) {
        if (s->kf[k] <= 0 || s->kt[k] <= 0 || s->df[k] <= 0 || s->dt[k] <= 0 || s->pf[k] < 0 ||
            s->pt[k] < 0)
            return status_set(STATUS_INVALID, "dwpair: kernel %d is not a valid kernel", k);
        /* stride 1, output of the input's size */
        if (s->f + 2 * s->pf[k] - s->df[k] * (s->kf[k] - 1) != s->f ||
            s->t + 2 * s->pt[k] - s->dt[k] * (s->kt[k] - 1) != s->t)
            return status_set(STATUS_INVALID, "dwpair: kernel %d does not keep the map's size", k);
        taps += s->kf[k] * s->kt[k];
    }
    if (taps > DWP_MAX_TAPS) return status_set(STATUS_INVALID, "dwpair: %d taps (at most %d)", taps, DWP_MAX_TAPS);
    if (s->pool && (s->f < 2 || s->t < 2))
        return status_set(STATUS_INVALID, "dwpair: a %d x %d map is too small to pool", s->f, s->t);
    return STATUS_OK;
}

static int n_taps(const struct dwpair_shape *s)
{
    return s->kf[0] * s->kt[0] + s->kf[1] * s->kt[1];
}

/* ----------------------------------------------------------------------------- scratch */

/* Per thread: two rows, the gradient plane d and the copy of an x plane (in place). Then per
 * plane 2 doubles of sums and the weight-gradient dot products (doubles), per channel the
 * five BN constants, and the partial input-gradient planes of a folded 1x1 with few
 * samples. */
struct dwp_layout {
    long plane, per_thread, sums, dots, chan, chunks, total;
};

static int n_chunks(const struct dwpair_shape *s)
{
    return s->pw && s->n < DWP_FEW ? min_i(s->c, DWP_CHUNKS) : 0;
}

static void layout_of(const struct dwpair_shape *s, int nt, struct dwp_layout *l)
{
    long planes = (long)s->n * s->c;
    l->plane = round16((long)s->f * s->t);
    l->per_thread = 2 * round16(s->t) + 2 * l->plane;
    l->sums = (long)nt * l->per_thread;
    l->dots = l->sums + round16(2 * 2 * planes); /* a double takes two floats */
    l->chan = l->dots + round16(2 * planes * n_taps(s));
    l->chunks = l->chan + 5 * round16(s->c);
    l->total = l->chunks + n_chunks(s) * l->plane;
}

size_t dwpair_scratch_floats(const struct dwpair_shape *s, int n_threads)
{
    struct dwp_layout l;
    layout_of(s, n_threads, &l);
    return (size_t)l.total;
}

static float *thread_rows(const struct dwp_layout *l, float *scratch, int t)
{
    return scratch + (long)t * l->per_thread;
}

/* ----------------------------------------------------------------------------- stencil */

struct tap {
    const float *row;   /* source row */
    int off;            /* column offset: out[t] reads row[t + off] */
    int lo, hi;         /* t with 0 <= t + off < T */
    float w;
};

/* out[t] = sum over taps of w * row[t + off] (terms outside the row left out), taps in
 * order, one FMA chain per column on every path. The interior goes 32 columns at a time
 * (four accumulators per tap step), then 8, then one by one like the edges. */
static void stencil_row(const struct tap *tp, int n, int T, float *out, int accumulate)
{
    int lo = 0, hi = T;
    for (int k = 0; k < n; k++) lo = max_i(lo, tp[k].lo), hi = min_i(hi, tp[k].hi);
    if (hi < lo) hi = lo;
    const float *src[DWP_MAX_TAPS];
    for (int k = 0; k < n; k++) src[k] = tp[k].row + tp[k].off;
    int t = 0;
    for (;;) {
        for (; t < T && t < lo; t++) { /* edges: column by column */
            float a = 0.0f;
            for (int k = 0; k < n; k++)
                if (t >= tp[k].lo && t < tp[k].hi) a = __builtin_fmaf(tp[k].w, src[k][t], a);
            out[t] = accumulate ? out[t] + a : a;
        }
        if (t >= T) break;
        for (; t + 32 <= hi; t += 32) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int k = 0; k < n; k++) {
                __m256 w = _mm256_set1_ps(tp[k].w);
                const float *p = src[k] + t;
                a0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(p), a0);
                a1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(p + 8), a1);
                a2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(p + 16), a2);
                a3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(p + 24), a3);
            }
            if (accumulate) {
                a0 = _mm256_add_ps(a0, _mm256_loadu_ps(out + t));
                a1 = _mm256_add_ps(a1, _mm256_loadu_ps(out + t + 8));
                a2 = _mm256_add_ps(a2, _mm256_loadu_ps(out + t + 16));
                a3 = _mm256_add_ps(a3, _mm256_loadu_ps(out + t + 24));
            }
            _mm256_storeu_ps(out + t, a0);
            _mm256_storeu_ps(out + t + 8, a1);
            _mm256_storeu_ps(out + t + 16, a2);
            _mm256_storeu_ps(out + t + 24, a3);
        }
        for (; t + 8 <= hi; t += 8) {
            __m256 a = _mm256_setzero_ps();
            for (int k = 0; k < n; k++)
                a = _mm256_fmadd_ps(_mm256_set1_ps(tp[k].w), _mm256_loadu_ps(src[k] + t), a);
            if (accumulate) a = _mm256_add_ps(a, _mm256_loadu_ps(out + t));
            _mm256_storeu_ps(out + t, a);
        }
        lo = T; /* the rest: column by column */
    }
}

static void set_tap(struct tap *tp, const float *row, int off, int T, float w)
{
    tp->row = row;
    tp->off = off;
    tp->lo = max_i(0, -off);
    tp->hi = max_i(tp->lo, min_i(T, T - off));
    tp->w = w;
}

/* The taps of output row f of s = conv_a(x) + conv_b(x) on plane xp, weights w[k] * scale
 * (w: conv a's KF*KT weights, then conv b's). Taps whose input row is outside the map are
 * left out. Returns the count. */
static int row_taps(const struct dwpair_shape *s, const float *xp, const float *wa,
                    const float *wb, float scale, int f, struct tap *tp)
{
    int n = 0;
    for (int k = 0; k < 2; k++) {
        const float *w = k ? wb : wa;
        for (int i = 0; i < s->kf[k]; i++) {
            int ih = f - s->pf[k] + i * s->df[k];
            if (ih < 0 || ih >= s->f) continue;
            for (int j = 0; j < s->kt[k]; j++)
                set_tap(&tp[n++], xp + (long)ih * s->t, j * s->dt[k] - s->pt[k], s->t,
                        w[i * s->kt[k] + j] * scale);
        }
    }
    return n;
}

/* The taps of row r of the adjoint (input gradient) on gradient plane dp: tap (i, j) of
 * either kernel reads d[r + pf - i*df][u + pt - j*dt]. */
static int adjoint_taps(const struct dwpair_shape *s, const float *dp, const float *wa,
                        const float *wb, float scale, int r, struct tap *tp)
{
    int n = 0;
    for (int k = 0; k < 2; k++) {
        const float *w = k ? wb : wa;
        for (int i = 0; i < s->kf[k]; i++) {
            int fd = r + s->pf[k] - i * s->df[k];
            if (fd < 0 || fd >= s->f) continue;
            for (int j = 0; j < s->kt[k]; j++)
                set_tap(&tp[n++], dp + (long)fd * s->t, s->pt[k] - j * s->dt[k], s->t,
                        w[i * s->kt[k] + j] * scale);
        }
    }
    return n;
}

/* Row f of s into out. */
static void s_row(const struct dwpair_shape *s, const float *xp, const float *wa, const float *wb,
                  float scale, int f, float *out)
{
    struct tap tp[DWP_MAX_TAPS];
    int n = row_taps(s, xp, wa, wb, scale, f, tp);
    stencil_row(tp, n, s->t, out, 0);
}

/* Sum and sum of squares of a row, float lanes per row, returned in double. */
static void row_sums(const float *r, int T, double *sum, double *sumsq)
{
    __m256 a = _mm256_setzero_ps(), b = a;
    int t = 0;
    for (; t + 8 <= T; t += 8) {
        __m256 v = _mm256_loadu_ps(r + t);
        a = _mm256_add_ps(a, v);
        b = _mm256_fmadd_ps(v, v, b);
    }
    float la[8], lb[8];
    _mm256_storeu_ps(la, a);
    _mm256_storeu_ps(lb, b);
    double x = 0, y = 0;
    for (int k = 0; k < 8; k++) x += la[k], y += lb[k];
    for (; t < T; t++) x += r[t], y += (double)r[t] * r[t];
    *sum += x;
    *sumsq += y;
}

/* The plane of x that (sample, channel) p reads, and the folded 1x1 weight (1 without). */
static const float *x_plane(const struct dwpair_shape *s, const float *x, long p)
{
    long hw = (long)s->f * s->t;
    return s->pw ? x + p / s->c * hw : x + p * hw;
}

static float pw_of(const struct dwpair_shape *s, const float *pw, long p)
{
    return s->pw ? pw[p % s->c] : 1.0f;
}

/* The BN as y = fma(s, A, B), from the mean and invstd as floats (as save_mean / save_invstd
 * hold them), so that the backward, given those, recomputes the forward's relu mask bit
 * for bit. */
static void bn_affine(float mean, float invstd, const float *gamma, const float *beta, int c,
                      float *A, float *B)
{
    double g = gamma ? gamma[c] : 1.0;
    *A = (float)(g * (double)invstd);
    *B = (float)((beta ? beta[c] : 0.0) - (double)mean * g * (double)invstd);
}

/* ----------------------------------------------------------------------------- forward */

/* y rows 2r and 2r + 1 (or row r without pooling) normalised, relu'd and written to out. */
static void apply_plane(const struct dwpair_shape *s, float *op, const float *xp, const float *wa,
                        const float *wb, float scale, float A, float B, float *rows)
{
    int T = s->t, fo = s->pool ? s->f / 2 : s->f, to = s->pool ? T / 2 : T;
    float *r0 = rows, *r1 = rows + round16(T);
    for (int r = 0; r < fo; r++) {
        int n_rows = s->pool ? 2 : 1;
        for (int h = 0; h < n_rows; h++) {
            float *y = h ? r1 : r0;
            s_row(s, xp, wa, wb, scale, s->pool ? 2 * r + h : r, y);
            if (s->relu) {
#pragma omp simd
                for (int t = 0; t < T; t++) {
                    float v = __builtin_fmaf(y[t], A, B);
                    y[t] = v > 0.0f ? v : 0.0f;
                }
            } else {
#pragma omp simd
                for (int t = 0; t < T; t++) y[t] = __builtin_fmaf(y[t], A, B);
            }
        }
        float *o = op + (long)r * to;
        if (s->pool) {
#pragma omp simd
            for (int t = 0; t < to; t++)
                o[t] = ((r0[2 * t] + r0[2 * t + 1]) + (r1[2 * t] + r1[2 * t + 1])) * 0.25f;
        } else {
            memcpy(o, r0, sizeof(float) * (size_t)T);
        }
    }
}

static long out_plane(const struct dwpair_shape *s)
{
    return s->pool ? (long)(s->f / 2) * (s->t / 2) : (long)s->f * s->t;
}

void dwpair_forward(const struct dwpair_shape *s, int train, float *out, const float *x,
                    const float *pw, const float *wa, const float *wb, const float *gamma,
                    const float *beta, float *running_mean, float *running_var, float momentum,
                    float eps, float *save_mean, float *save_invstd, float *scratch)
{
    int nt = threads_get();
    struct dwp_layout l;
    layout_of(s, nt, &l);
    long planes = (long)s->n * s->c, cnt = (long)s->n * s->f * s->t;
    double *sums = (double *)(scratch + l.sums);
    int C = s->c;
    /* Scale and shift per channel, then the normalising pass; in train mode the batch
     * statistics come first. */
    float *A = scratch + l.chan, *B = A + round16(C);
    if (train) {
#pragma omp parallel for schedule(static) num_threads(nt)
        for (long p = 0; p < planes; p++) {
            float *row = thread_rows(&l, scratch, omp_get_thread_num());
            const float *xp = x_plane(s, x, p);
            double a = 0, b = 0;
            for (int f = 0; f < s->f; f++) {
                s_row(s, xp, wa + p % C * s->kf[0] * s->kt[0], wb + p % C * s->kf[1] * s->kt[1],
                      pw_of(s, pw, p), f, row);
                row_sums(row, s->t, &a, &b);
            }
            sums[2 * p] = a;
            sums[2 * p + 1] = b;
        }
        for (int c = 0; c < C; c++) {
            double a = 0, b = 0;
            for (int n = 0; n < s->n; n++) a += sums[2 * ((long)n * C + c)], b += sums[2 * ((long)n * C + c) + 1];
            double mean = a / cnt, var = b / cnt - mean * mean;
            if (var < 0) var = 0;
            double invstd = 1.0 / sqrt(var + eps);
            bn_affine((float)mean, (float)invstd, gamma, beta, c, &A[c], &B[c]);
            if (save_mean) save_mean[c] = (float)mean;
            if (save_invstd) save_invstd[c] = (float)invstd;
            double unbiased = cnt > 1 ? var * cnt / (cnt - 1) : var;
            if (running_mean) running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mean);
            if (running_var) running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
        }
    } else {
        for (int c = 0; c < C; c++) {
            double invstd = 1.0 / sqrt((double)running_var[c] + eps);
            bn_affine(running_mean[c], (float)invstd, gamma, beta, c, &A[c], &B[c]);
        }
    }
    long hw_out = out_plane(s);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (long p = 0; p < planes; p++) {
        int c = (int)(p % C);
        apply_plane(s, out + p * hw_out, x_plane(s, x, p), wa + c * s->kf[0] * s->kt[0],
                    wb + c * s->kf[1] * s->kt[1], pw_of(s, pw, p), A[c], B[c],
                    thread_rows(&l, scratch, omp_get_thread_num()));
    }
}

/* ----------------------------------------------------------------------------- backward */

/* The gradient reaching y at row f (before the relu mask): dy itself, or the pooled
 * gradient spread over its 2x2 window (zero in a row or column the pool dropped). */
static void dy_row(const struct dwpair_shape *s, int pooled, const float *dp, int f, float *g)
{
    int T = s->t;
    if (!pooled) {
        memcpy(g, dp + (long)f * T, sizeof(float) * (size_t)T);
        return;
    }
    int fo = s->f / 2, to = T / 2;
    if (f >= 2 * fo) {
        memset(g, 0, sizeof(float) * (size_t)T);
        return;
    }
    const float *r = dp + (long)(f / 2) * to;
    for (int t = 0; t < to; t++) g[2 * t] = g[2 * t + 1] = r[t] * 0.25f;
    for (int t = 2 * to; t < T; t++) g[t] = 0.0f;
}

/* s row f into srow and the masked gradient into grow. */
static void grad_row(const struct dwpair_shape *s, int pooled, const float *dp, const float *xp,
                     const float *wa, const float *wb, float scale, float A, float B, int f,
                     float *srow, float *grow)
{
    s_row(s, xp, wa, wb, scale, f, srow);
    dy_row(s, pooled, dp, f, grow);
    if (s->relu) {
#pragma omp simd
        for (int t = 0; t < s->t; t++) grow[t] = __builtin_fmaf(srow[t], A, B) > 0.0f ? grow[t] : 0.0f;
    }
}

/* Dot products of plane d with the shifted plane x, one per tap of both kernels (the weight
 * gradients before any 1x1 scale), into dots (double). */
static void tap_dots(const struct dwpair_shape *s, const float *dp, const float *xp, double *dots)
{
    int k0 = 0;
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < s->kf[k]; i++)
            for (int j = 0; j < s->kt[k]; j++) {
                int off = j * s->dt[k] - s->pt[k], lo = max_i(0, -off), hi = min_i(s->t, s->t - off);
                double acc = 0;
                for (int f = 0; f < s->f; f++) {
                    int ih = f - s->pf[k] + i * s->df[k];
                    if (ih < 0 || ih >= s->f || hi <= lo) continue;
                    const float *dr = dp + (long)f * s->t, *xr = xp + (long)ih * s->t + off;
                    __m256 a = _mm256_setzero_ps();
                    int t = lo;
                    for (; t + 8 <= hi; t += 8)
                        a = _mm256_fmadd_ps(_mm256_loadu_ps(dr + t), _mm256_loadu_ps(xr + t), a);
                    float la[8];
                    _mm256_storeu_ps(la, a);
                    double r = 0;
                    for (int u = 0; u < 8; u++) r += la[u];
                    for (; t < hi; t++) r += (double)dr[t] * xr[t];
                    acc += r;
                }
                dots[k0 + i * s->kt[k] + j] = acc;
            }
        k0 += s->kf[k] * s->kt[k];
    }
}

/* The channel sums of g and g (s - m) over plane p (the backward's first pass). */
static void plane_sums(const struct dwpair_shape *s, int pooled, const float *dp, const float *xp,
                       const float *wa, const float *wb, float scale, float A, float B, float m,
                       float *rows, double *sums)
{
    int T = s->t;
    float *srow = rows, *grow = rows + round16(T);
    double sg = 0, sgx = 0;
    for (int f = 0; f < s->f; f++) {
        grad_row(s, pooled, dp, xp, wa, wb, scale, A, B, f, srow, grow);
        double a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
        for (int t = 0; t < T; t++) {
            a += grow[t];
            b += (double)grow[t] * (srow[t] - m);
        }
        sg += a, sgx += b;
    }
    sums[0] = sg, sums[1] = sgx;
}

/* The gradient plane d = k1 g + k2 (s - m) + k3 of plane p into dbuf. */
static void d_plane(const struct dwpair_shape *s, int pooled, const float *dp, const float *xp,
                    const float *wa, const float *wb, float scale, float A, float B, float m,
                    float k1, float k2, float k3, float *rows, float *dbuf)
{
    int T = s->t;
    float *srow = rows, *grow = rows + round16(T);
    for (int f = 0; f < s->f; f++) {
        grad_row(s, pooled, dp, xp, wa, wb, scale, A, B, f, srow, grow);
        float *d = dbuf + (long)f * T;
#pragma omp simd
        for (int t = 0; t < T; t++) d[t] = grow[t] * k1 + (srow[t] - m) * k2 + k3;
    }
}

/* dx plane (+)= the adjoint of both kernels applied to d, weights scaled. */
static void adjoint_plane(const struct dwpair_shape *s, const float *dbuf, const float *wa,
                          const float *wb, float scale, float *dxp, int accumulate)
{
    struct tap tp[DWP_MAX_TAPS];
    for (int r = 0; r < s->f; r++) {
        int n = adjoint_taps(s, dbuf, wa, wb, scale, r, tp);
        if (n) stencil_row(tp, n, s->t, dxp + (long)r * s->t, accumulate);
        else if (!accumulate) memset(dxp + (long)r * s->t, 0, sizeof(float) * (size_t)s->t);
    }
}

void dwpair_backward(const struct dwpair_shape *s, int train, int pooled, float *dx, float *dpw,
                     float *dwa, float *dwb, float *dgamma, float *dbeta, const float *dout,
                     const float *x, const float *pw, const float *wa, const float *wb,
                     const float *gamma, const float *beta, const float *mean,
                     const float *invstd, int accumulate, float *scratch)
{
    int nt = threads_get(), C = s->c, K = n_taps(s), ka = s->kf[0] * s->kt[0];
    int kb = s->kf[1] * s->kt[1];
    CHECK(!pooled || s->pool);
    CHECK(!accumulate || dx != x);
    CHECK(!s->pw || dx != x); /* every channel of a sample reads x after the first wrote dx */
    struct dwp_layout l;
    layout_of(s, nt, &l);
    long planes = (long)s->n * C, cnt = (long)s->n * s->f * s->t, hw = (long)s->f * s->t;
    long hw_dy = pooled ? out_plane(s) : hw;
    double *sums = (double *)(scratch + l.sums), *dots = (double *)(scratch + l.dots);
    float *A = scratch + l.chan, *B = A + round16(C), *K1 = B + round16(C);
    float *K2 = K1 + round16(C), *K3 = K2 + round16(C);
    for (int c = 0; c < C; c++) bn_affine(mean[c], invstd[c], gamma, beta, c, &A[c], &B[c]);
    /* first pass: sums of g and g (s - m) per plane */
#pragma omp parallel for schedule(static) num_threads(nt)
    for (long p = 0; p < planes; p++) {
        int c = (int)(p % C);
        plane_sums(s, pooled, dout + p * hw_dy, x_plane(s, x, p), wa + c * ka, wb + c * kb,
                   pw_of(s, pw, p), A[c], B[c], mean[c], thread_rows(&l, scratch, omp_get_thread_num()),
                   sums + 2 * p);
    }
    for (int c = 0; c < C; c++) {
        double sg = 0, sgx = 0;
        for (int n = 0; n < s->n; n++) sg += sums[2 * ((long)n * C + c)], sgx += sums[2 * ((long)n * C + c) + 1];
        if (dbeta) dbeta[c] = (float)sg;
        if (dgamma) dgamma[c] = (float)(sgx * invstd[c]);
        double g = gamma ? gamma[c] : 1.0, is = invstd[c];
        K1[c] = (float)(g * is);
        K2[c] = train ? (float)(-g * is * is * is * sgx / cnt) : 0.0f;
        K3[c] = train ? (float)(-g * is * sg / cnt) : 0.0f;
    }
    /* second pass: the gradient plane d, the weight dot products and the input gradient */
    int fold = s->pw, chunks = n_chunks(s);
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        float *rows = thread_rows(&l, scratch, t), *dbuf = rows + 2 * round16(s->t);
        float *xcopy = dbuf + l.plane;
        if (!fold) {
#pragma omp for schedule(static)
            for (long p = 0; p < planes; p++) {
                int c = (int)(p % C);
                const float *xp = x + p * hw;
                if (dx == x) { /* in place: keep x's plane for the dot products */
                    memcpy(xcopy, xp, sizeof(float) * (size_t)hw);
                    xp = xcopy;
                }
                d_plane(s, pooled, dout + p * hw_dy, xp, wa + c * ka, wb + c * kb, 1.0f, A[c], B[c],
                        mean[c], K1[c], K2[c], K3[c], rows, dbuf);
                tap_dots(s, dbuf, xp, dots + p * K);
                adjoint_plane(s, dbuf, wa + c * ka, wb + c * kb, 1.0f, dx + p * hw, accumulate);
            }
        } else if (!chunks) { /* folded 1x1: the planes of a sample all add to its dx */
#pragma omp for schedule(static)
            for (long n = 0; n < s->n; n++)
                for (int c = 0; c < C; c++) {
                    long p = n * C + c;
                    const float *xp = x + n * hw;
                    d_plane(s, pooled, dout + p * hw_dy, xp, wa + c * ka, wb + c * kb, pw[c], A[c],
                            B[c], mean[c], K1[c], K2[c], K3[c], rows, dbuf);
                    tap_dots(s, dbuf, xp, dots + p * K);
                    adjoint_plane(s, dbuf, wa + c * ka, wb + c * kb, pw[c], dx + n * hw,
                                  accumulate || c > 0);
                }
        } else { /* few samples: chunks of channels into partial planes, added in order */
            for (long n = 0; n < s->n; n++) {
#pragma omp for schedule(static)
                for (int j = 0; j < chunks; j++) {
                    float *part = scratch + l.chunks + j * l.plane;
                    int c0 = C * j / chunks, c1 = C * (j + 1) / chunks;
                    for (int c = c0; c < c1; c++) {
                        long p = n * C + c;
                        const float *xp = x + n * hw;
                        d_plane(s, pooled, dout + p * hw_dy, xp, wa + c * ka, wb + c * kb, pw[c],
                                A[c], B[c], mean[c], K1[c], K2[c], K3[c], rows, dbuf);
                        tap_dots(s, dbuf, xp, dots + p * K);
                        adjoint_plane(s, dbuf, wa + c * ka, wb + c * kb, pw[c], part, c > c0);
                    }
                }
                float *dxn = dx + n * hw;
#pragma omp for schedule(static)
                for (long i = 0; i < hw; i++) {
                    float v = accumulate ? dxn[i] : 0.0f;
                    for (int j = 0; j < chunks; j++) v += scratch[l.chunks + j * l.plane + i];
                    dxn[i] = v;
                }
            }
        }
    }
    /* weight gradients: the dot products summed over the samples in order */
    for (int c = 0; c < C; c++) {
        double tot[DWP_MAX_TAPS] = {0};
        for (int n = 0; n < s->n; n++)
            for (int k = 0; k < K; k++) tot[k] += dots[((long)n * C + c) * K + k];
        float sc = fold ? pw[c] : 1.0f;
        for (int k = 0; k < ka; k++)
            if (dwa) dwa[c * ka + k] = (float)(tot[k] * sc);
        for (int k = 0; k < kb; k++)
            if (dwb) dwb[c * kb + k] = (float)(tot[ka + k] * sc);
        if (fold && dpw) {
            double v = 0;
            for (int k = 0; k < ka; k++) v += wa[c * ka + k] * tot[k];
            for (int k = 0; k < kb; k++) v += wb[c * kb + k] * tot[ka + k];
            dpw[c] = (float)v;
        }
    }
}
