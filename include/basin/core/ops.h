/* ops.h: forward and backward kernels of every graph op, on raw float32 NCHW buffers.
 *
 * Contract shared by all kernels:
 * - Shapes come in a small struct or as arguments; buffers are dense and row-major.
 * - Backward kernels take `accumulate` for the input gradient: 0 writes dx, 1 adds to it
 *   (a node whose output feeds two consumers, as a residual input does, receives the sum).
 *   Parameter gradients (dw, dgamma, dbeta, db) are always written, never accumulated; a
 *   NULL parameter-gradient pointer skips that work.
 * - Kernels parallelise internally over threads_get() OpenMP threads and never allocate:
 *   the scratch they need is sized by a *_scratch_floats() function and passed in.
 * - Results do not depend on the thread count except for floating-point summation order
 *   in reductions (BN statistics, weight gradients), which is fixed per thread count.
 */
#ifndef BASIN_CORE_OPS_H
#define BASIN_CORE_OPS_H

#include <stddef.h>
#include <stdint.h>

struct rng;

/* ----------------------------------------------------------------------------- conv2d */

struct conv2d_shape {
    int n;            /* N */
    int ci, fi, ti;   /* input (N, I, F, T) */
    int co, kf, kt;   /* weight (O, I/groups, KF, KT) */
    int sf, st;       /* stride along F, T */
    int pf, pt;       /* zero padding along F, T */
    int df, dt;       /* dilation along F, T */
    int groups;       /* divides ci and co */
    int fo, to;       /* output (N, O, FO, TO); set by conv2d_shape_init */
};

/* Compute fo, to. Returns 0, or STATUS_INVALID with a detail message when a size is not
 * positive, groups does not divide ci and co, or the output would be empty. */
int conv2d_shape_init(struct conv2d_shape *s);

/* Optional work fused into the forward pass, applied per output channel o in this order:
 *   y = y * scale[o] + shift[o]     (scale, shift may be NULL: identity)
 *   y = max(y, 0)                   (relu)
 * and, when sum / sumsq are not NULL, sum[o] += sum of y and sumsq[o] += sum of y^2 over
 * N, FO, TO (double, for batch-norm statistics). */
struct conv2d_fuse {
    const float *scale, *shift;
    int relu;
    double *sum, *sumsq;
};

/* Floats of scratch the conv kernels need with n_threads threads (im2col tiles, per-thread
 * weight-gradient partial sums). The kernels run threads_get() threads, so size it with
 * n_threads = threads_get() and re-plan (size again, reallocate) after the thread count
 * changes. The scratch holds doubles: it must be 8-byte aligned (mem_alloc and arena_floats
 * give 64). */
size_t conv2d_scratch_floats(const struct conv2d_shape *s, int n_threads);

/* y (N, O, FO, TO) = conv(x (N, I, F, T), w (O, I/groups, KF, KT)), no bias; fuse may be
 * NULL. */
void conv2d_forward(const struct conv2d_shape *s, float *y, const float *x, const float *w,
                    const struct conv2d_fuse *fuse, float *scratch);
/* dx (N, I, F, T) (+)= conv_transpose(dy (N, O, FO, TO), w). */
void conv2d_backward_data(const struct conv2d_shape *s, float *dx, const float *dy,
                          const float *w, int accumulate, float *scratch);
/* dw (O, I/groups, KF, KT) = correlation of dy with x, summed over the batch. */
void conv2d_backward_weight(const struct conv2d_shape *s, float *dw, const float *dy,
                            const float *x, float *scratch);

/* Which conv2d implementation runs. CONV2D_IMPL_AUTO (the default) takes the direct
 * AVX-512 kernels for stride-1, non-depthwise convolutions when the CPU has AVX-512 F and
 * im2col + GEMM otherwise; CONV2D_IMPL_GEMM forces im2col + GEMM everywhere (what a CPU
 * without AVX-512 runs), so tests and benchmarks can check and time both paths on one
 * machine. Process-wide: change it only while no conv2d kernel runs. The scratch sized by
 * conv2d_scratch_floats() suits both. Returns the previous setting. */
enum conv2d_impl { CONV2D_IMPL_AUTO, CONV2D_IMPL_GEMM };
enum conv2d_impl conv2d_set_impl(enum conv2d_impl impl);

/* ----------------------------------------------------------------------------- batch norm */

/* x is viewed as (outer, C, inner); statistics per c over outer * inner elements.
 * Channels of (N, C, F, T): outer N, inner F*T. Mel bins (bn0): outer N*C, C = F, inner T. */
struct bn_shape {
    int outer, c;
    long inner;
};

/* Train mode, as torch.nn.BatchNorm2d: normalise with the batch mean and biased variance;
 * running_mean/var (C) are updated in place with `momentum` (0.1) using the unbiased
 * variance; save_mean, save_invstd (C) keep what the backward pass needs. relu fuses
 * y = max(y, 0). y may equal x. */
void batchnorm_forward_train(const struct bn_shape *s, float *y, const float *x,
                             const float *gamma, const float *beta, float *running_mean,
                             float *running_var, float momentum, float eps, float *save_mean,
                             float *save_invstd, int relu);
/* The same with the batch statistics already summed: sum[c] and sumsq[c] (C) of x and
 * x^2 over the channel's outer * inner elements, as the conv epilogue (conv2d_fuse)
 * accumulates them, so the forward reads x once. Variance from E[x^2] - E[x]^2 in double. */
void batchnorm_forward_train_sums(const struct bn_shape *s, float *y, const float *x,
                                  const float *gamma, const float *beta, float *running_mean,
                                  float *running_var, float momentum, float eps,
                                  float *save_mean, float *save_invstd, int relu,
                                  const double *sum, const double *sumsq);
/* Eval mode: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta (+ relu). */
void batchnorm_forward_eval(const struct bn_shape *s, float *y, const float *x,
                            const float *gamma, const float *beta, const float *running_mean,
                            const float *running_var, float eps, int relu);
/* Backward of the train-mode forward. x is the forward input; y the forward output, used
 * only when relu is set (the gradient passes where y > 0); x must not alias y then.
 * In all four batch-norm kernels gamma / beta may be NULL (1 / 0) and dx may be NULL when
 * only the parameter gradients are wanted; in forward_train the running statistics and
 * save_mean / save_invstd may be NULL (not updated, not saved). */
void batchnorm_backward_train(const struct bn_shape *s, float *dx, float *dgamma, float *dbeta,
                              const float *dy, const float *x, const float *y, int relu,
                              const float *gamma, const float *save_mean,
                              const float *save_invstd, int accumulate);
/* Backward of the eval-mode forward (statistics are constants). */
void batchnorm_backward_eval(const struct bn_shape *s, float *dx, float *dgamma, float *dbeta,
                             const float *dy, const float *x, const float *y, int relu,
                             const float *gamma, const float *running_mean,
                             const float *running_var, float eps, int accumulate);

/* ----------------------------------------------------------------------------- elementwise */

/* y = max(x, 0); y may equal x. */
void relu_forward(long n, float *y, const float *x);
/* dx (+)= dy where y > 0. */
void relu_backward(long n, float *dx, const float *dy, const float *y, int accumulate);

/* y = a + b (then max(y, 0) when relu); y may equal a or b. */
void add_forward(long n, float *y, const float *a, const float *b, int relu);
/* g = dy (masked by y > 0 when relu); da (+)= g, db (+)= g, in that order; da or db may be
 * NULL, either may alias dy, and da may equal db (a + a: 2g with accumulate_b set). */
void add_backward(long n, float *da, float *db, const float *dy, const float *y, int relu,
                  int accumulate_a, int accumulate_b);

/* Channel roll of x (N, C, HW): y[:, j] = x[:, (j - shift) mod C], as torch.roll(x, shift, 1).
 * y must not alias x (nor dx dy below). */
void roll_forward(int n, int c, long hw, int shift, float *y, const float *x);
/* dx (+)= the inverse roll of dy. */
void roll_backward(int n, int c, long hw, int shift, float *dx, const float *dy, int accumulate);

/* ----------------------------------------------------------------------------- pooling */

/* Pooling without padding; output size floor((F - KF) / SF) + 1 as PyTorch. */
struct pool2d_shape {
    int n, c, fi, ti;
    int kf, kt, sf, st;
    int fo, to;       /* set by pool2d_shape_init */
};
int pool2d_shape_init(struct pool2d_shape *s);

void maxpool2d_forward(const struct pool2d_shape *s, float *y, const float *x);
/* The gradient goes to the first maximum of each window (PyTorch's choice on ties). The
 * argmax is found again from x: y is not read and may be NULL (likewise in max_backward). */
void maxpool2d_backward(const struct pool2d_shape *s, float *dx, const float *dy,
                        const float *x, const float *y, int accumulate);
void avgpool2d_forward(const struct pool2d_shape *s, float *y, const float *x);
void avgpool2d_backward(const struct pool2d_shape *s, float *dx, const float *dy,
                        int accumulate);

/* ----------------------------------------------------------------------------- reductions */

/* x viewed as (outer, len, inner) -> y (outer, inner): mean or max over the middle axis.
 * Mean over F of (N, C, F, T): outer N*C, len F, inner T. */
void mean_forward(int outer, int len, long inner, float *y, const float *x);
void mean_backward(int outer, int len, long inner, float *dx, const float *dy, int accumulate);
void max_forward(int outer, int len, long inner, float *y, const float *x);
/* The gradient goes to the first maximum along the axis. */
void max_backward(int outer, int len, long inner, float *dx, const float *dy, const float *x,
                  const float *y, int accumulate);

/* ----------------------------------------------------------------------------- linear */

/* y (N, O) = x (N, I) w^T (O, I) + b (O); b may be NULL. */
void linear_forward(int n, int in, int out, float *y, const float *x, const float *w,
                    const float *b);
/* dx (N, I) (+)= dy w; dw (O, I) = dy^T x; db (O) = sum over N of dy. dx, dw, db may be
 * NULL. */
void linear_backward(int n, int in, int out, float *dx, float *dw, float *db, const float *dy,
                     const float *x, const float *w, int accumulate);

/* ----------------------------------------------------------------------------- dropout */

/* Train mode: keep each element with probability 1 - p and scale it by 1 / (1 - p), as
 * torch.nn.functional.dropout; mask (n bytes) records what was kept. Draws come from rng
 * in element order (deterministic for a given rng state), one rng_u64() per element. p == 0
 * copies x and sets mask to all ones, p == 1 zeroes y and mask; neither draws. y may equal
 * x. */
void dropout_forward(long n, float *y, const float *x, float p, uint8_t *mask, struct rng *rng);
void dropout_backward(long n, float *dx, const float *dy, float p, const uint8_t *mask,
                      int accumulate);

#endif
