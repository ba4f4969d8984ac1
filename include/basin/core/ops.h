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
struct conv2d_prologue;
struct conv2d_fuse {
    const float *scale, *shift;
    int relu;
    double *sum, *sumsq;
    const struct conv2d_prologue *pro; /* optional: see below */
};

/* Work fused into the reading of the input, per input channel c: the kernel sees
 * relu?(batchnorm_value(x, mean[c], scale[c], shift[c])) where x holds the raw values (the
 * zero padding stays zero): a plan applies a BN this way when the conv is its only consumer,
 * so the BN's output is never stored. The direct kernels run it (conv2d_prologue_runs), in
 * the forward (conv2d_fuse.pro) and the weight gradient (conv2d_backward_weight_pro), and
 * so do the forward-only winograd and pointwise kernels; the backward data pass does not
 * read the input. */
struct conv2d_prologue {
    const float *mean, *scale, *shift; /* (I) */
    int relu;
};

/* Floats of scratch the conv kernels need with n_threads threads (im2col tiles, per-thread
 * weight-gradient partial sums; for a stride-2 shape on a CPU with the direct kernels, also
 * the four phases of the whole input, about the size of x). The kernels run threads_get() threads, so size it with
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

/* The kernels that can run a convolution, per pass. Every kernel computes the same
 * function (equal to the naive twin within float rounding); they differ in speed, which
 * depends on the shape and the CPU, so plans choose among them by measuring
 * (conv2d_tune) rather than by thresholds.
 *   GEMM            im2col (or, 1x1, the input planes themselves) + OpenBLAS sgemm, tiles
 *                   sized for L2; runs every shape.
 *   DIRECT_AVX512   direct stride-1 kernels (conv2d_avx512.c): bands of padded rows
 *                   convolved as one flat correlation, 8 output channels x 48 positions in
 *                   registers; stride 1, not depthwise, at most 64 taps, AVX-512 CPUs; and
 *                   the forward pass of stride-2 convs (groups 1, dilation 1) as a stride-1
 *                   conv over the four phases of the input (space to depth).
 *   DIRECT_AVX2     the same algorithm with 8-float vectors (conv2d_avx2.c), for CPUs
 *                   without AVX-512 (every x86-64-v3 CPU runs it); the same shapes.
 *   DEPTHWISE       direct loops for groups == I == O, any stride and dilation.
 *   WINOGRAD        Winograd F(2x2, 3x3) (conv2d_winograd.c): 3x3, stride 1, dilation 1,
 *                   not depthwise, forward only (with the prologue and the whole epilogue);
 *                   2.25x fewer multiplications, its 16 products on the pointwise
 *                   kernel's rows; every x86-64-v3 CPU. Within a few roundings of the
 *                   others, not bit-equal to them.
 *   POINTWISE       1x1, stride 1, no padding, not depthwise, forward only (prologue and
 *                   epilogue too): the planes read in place, the reduction over the input
 *                   channels in registers (conv2d_pointwise.c), for narrow layers where
 *                   GEMM and the direct band pay more for packing than for the FLOPs.
 * CONV2D_KERNEL_AUTO stands for the built-in choice (conv2d_kernel_default). */
enum conv2d_kernel {
    CONV2D_KERNEL_AUTO,
    CONV2D_KERNEL_GEMM,
    CONV2D_KERNEL_DIRECT_AVX512,
    CONV2D_KERNEL_DIRECT_AVX2,
    CONV2D_KERNEL_DEPTHWISE,
    CONV2D_KERNEL_WINOGRAD,
    CONV2D_KERNEL_POINTWISE,
    CONV2D_KERNEL_COUNT
};
enum conv2d_pass { CONV2D_FORWARD, CONV2D_BACKWARD_DATA, CONV2D_BACKWARD_WEIGHT, CONV2D_PASSES };

/* One kernel per pass, e.g. what a plan chose for one conv node. */
struct conv2d_algo {
    enum conv2d_kernel k[CONV2D_PASSES];
};

/* "gemm", "direct-avx512", "direct-avx2", "depthwise", "winograd", "pointwise" ("auto" for
 * AUTO); NULL when out of
 * range. conv2d_kernel_parse is its inverse: 0, or STATUS_INVALID naming the choices. */
const char *conv2d_kernel_name(enum conv2d_kernel k);
int conv2d_kernel_parse(const char *name, enum conv2d_kernel *out);
/* 1 when kernel k runs pass of shape s on this CPU (AUTO always does), else 0. */
int conv2d_kernel_runs(const struct conv2d_shape *s, enum conv2d_pass pass, enum conv2d_kernel k);
/* The built-in choice, made without measuring: depthwise shapes take DEPTHWISE; the
 * forward of 1x1 stride-1 unpadded shapes of up to 64 input channels a group takes
 * POINTWISE; other stride-1 shapes take the direct kernels of the best vector width the
 * CPU has where the reduction is deep enough to pay for them; everything else GEMM.
 * conv2d_set_impl(CONV2D_IMPL_GEMM) turns the direct and pointwise choices into GEMM.
 * Never returns AUTO. */
enum conv2d_kernel conv2d_kernel_default(const struct conv2d_shape *s, enum conv2d_pass pass);

/* The three passes with an explicit kernel: k (AUTO, or one that conv2d_kernel_runs) runs
 * the pass; a kernel that cannot run s falls back to the default. Same contracts and
 * scratch (conv2d_scratch_floats serves every kernel) as the functions above, which are
 * these with CONV2D_KERNEL_AUTO. */
void conv2d_forward_with(const struct conv2d_shape *s, enum conv2d_kernel k, float *y,
                         const float *x, const float *w, const struct conv2d_fuse *fuse,
                         float *scratch);
void conv2d_backward_data_with(const struct conv2d_shape *s, enum conv2d_kernel k, float *dx,
                               const float *dy, const float *w, int accumulate, float *scratch);
void conv2d_backward_weight_with(const struct conv2d_shape *s, enum conv2d_kernel k, float *dw,
                                 const float *dy, const float *x, float *scratch);

/* 1 when kernel k runs s with an input prologue (struct conv2d_prologue). */
int conv2d_prologue_runs(const struct conv2d_shape *s, enum conv2d_kernel k);
/* conv2d_backward_weight_with reading its input through pro (NULL: none). */
void conv2d_backward_weight_pro(const struct conv2d_shape *s, enum conv2d_kernel k, float *dw,
                                const float *dy, const float *x,
                                const struct conv2d_prologue *pro, float *scratch);

/* A backward-data pass that writes (or completes, accumulating) the output gradient dy of
 * a batch norm feeding this conv can sum that BN's backward statistics on the way (one
 * pass over the tensor fewer for the BN): with x the BN's input (laid out as dx) and v
 * the final value written at a position, g = v where the BN's relu passed in the forward
 * (batchnorm_value(x, mean[c], scale[c], shift[c]) > 0; everywhere without relu), and
 * sum_g[c] += sum of g, sum_gx[c] += sum of g * (x - mean[c]) (double, (I)). Only the
 * direct kernels run it (conv2d_bnstat_runs). */
struct conv2d_bnstat {
    const float *x;
    const float *mean, *scale, *shift; /* (I): the BN's forward affine */
    int relu;
    double *sum_g, *sum_gx;
};
int conv2d_bnstat_runs(const struct conv2d_shape *s, enum conv2d_kernel k);
void conv2d_backward_data_stat(const struct conv2d_shape *s, enum conv2d_kernel k, float *dx,
                               const float *dy, const float *w, int accumulate,
                               const struct conv2d_bnstat *bst, float *scratch);

/* Process-wide switch kept for tests and benchmarks: CONV2D_IMPL_GEMM makes the default
 * choice (AUTO) GEMM wherever a direct kernel would be taken, what an old CPU ran before
 * the AVX2 kernels. Change it only while no conv2d kernel runs. Plans resolve AUTO when
 * they are made (struct plan_opts), so a plan made before the switch keeps its kernels.
 * Returns the previous setting. */
enum conv2d_impl { CONV2D_IMPL_AUTO, CONV2D_IMPL_GEMM };
enum conv2d_impl conv2d_set_impl(enum conv2d_impl impl);

/* Autotuning: time every kernel that runs s (each pass), on a crop of s (n_threads samples,
 * a band of output rows sized to a fraction of a millisecond; several whole samples per
 * thread when one is less), with n_threads threads, and
 * return the fastest per pass in algo. Bounded: a few milliseconds per distinct shape.
 * Results are remembered per shape and thread count in the process and, when the user has
 * a cache folder, in fs_cache_dir("kernels") in a text file per CPU model (the brand string
 * with the cpuid family, model and stepping), so the next process (and every later plan of
 * the same shape) reuses the choice instead of measuring: a training run and its resumption
 * pick the same kernels, hence the same floating-point results. Shapes too small for a
 * measurement to mean anything (under CONV2D_TUNE_MIN_FLOPS per sample) and processes
 * without a cache folder take conv2d_kernel_default. flags: CONV2D_TUNE_FRESH measures
 * again (and overwrites the remembered choice); CONV2D_TUNE_NO_AVX512 below. Returns 0 or STATUS_NOMEM (algo then holds
 * the defaults). Thread-safe. */
#define CONV2D_TUNE_MIN_FLOPS 2e5
/* CONV2D_TUNE_NO_AVX512: choose among the kernels a CPU without AVX-512 has (to time
 * that case on this machine), remembered apart. */
enum conv2d_tune_flags { CONV2D_TUNE_FRESH = 1, CONV2D_TUNE_NO_AVX512 = 2 };
int conv2d_tune(const struct conv2d_shape *s, int n_threads, int flags, struct conv2d_algo *algo);
/* The CPU model as the tuning cache names it (brand string, family, model, stepping). */
const char *conv2d_cpu_model(void);

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
/* The train-mode forward without writing y: statistics (from sum / sumsq, or from x when
 * sum is NULL), running and saved statistics as batchnorm_forward_train(_sums), and the
 * affine it would apply per channel: y = batchnorm_value(x, mean[c], scale[c], shift[c])
 * is bit for bit what it writes (mean, scale, shift: (C)). For kernels that apply the BN
 * as they read x (a plan fuses a BN into the add it feeds). */
void batchnorm_affine_train(const struct bn_shape *s, const float *x, const float *gamma,
                            const float *beta, float *running_mean, float *running_var,
                            float momentum, float eps, float *save_mean, float *save_invstd,
                            const double *sum, const double *sumsq, float *mean, float *scale,
                            float *shift);
/* The same for eval mode (the running statistics), c channels. */
void batchnorm_affine_eval(int c, const float *gamma, const float *beta, const float *running_mean,
                           const float *running_var, float eps, float *mean, float *scale,
                           float *shift);
/* One normalised value, fma(x - mean, scale, shift): what every batch-norm kernel computes,
 * with scale = batchnorm_scale(gamma, invstd) (invstd as save_invstd holds it, or
 * 1 / sqrt(running_var + eps) in eval mode). */
float batchnorm_value(float x, float mean, float scale, float shift);
float batchnorm_scale(float gamma, float invstd);

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
/* The two backward passes with the relu mask recomputed from x instead of read from y:
 * the forward's value fma(x - mean, gamma * invstd, beta) (invstd as a float, as save_invstd
 * holds it), the same float the forward computed, so the mask is exactly y > 0. y is not
 * read (one tensor pass fewer per pass); beta must be the forward's (NULL: 0). */
void batchnorm_backward_train_x(const struct bn_shape *s, float *dx, float *dgamma,
                                float *dbeta, const float *dy, const float *x, int relu,
                                const float *gamma, const float *beta, const float *save_mean,
                                const float *save_invstd, int accumulate);
void batchnorm_backward_eval_x(const struct bn_shape *s, float *dx, float *dgamma, float *dbeta,
                               const float *dy, const float *x, int relu, const float *gamma,
                               const float *beta, const float *running_mean,
                               const float *running_var, float eps, int accumulate);
/* The _x backward (train, or eval with train 0) with the sums over each channel of
 * g = dy masked by the relu and of g * (x - mean) given (sum_g, sum_gx (C), as a
 * backward-data pass summed them, struct conv2d_bnstat): one pass over the tensors, not
 * two. mean / invstd_or_var: save_mean / save_invstd (train) or the running mean / variance
 * (eval, with eps). */
void batchnorm_backward_sums(const struct bn_shape *s, int train, float *dx, float *dgamma,
                             float *dbeta, const float *dy, const float *x, int relu,
                             const float *gamma, const float *beta, const float *mean,
                             const float *invstd_or_var, float eps, const double *sum_g,
                             const double *sum_gx, int accumulate);

/* ----------------------------------------------------------------------------- depthwise pair */

/* SP4ASC's separable-block tail as one kernel (dwpair.c), what a plan runs in place of
 * conv_a, conv_b, add, batch norm (relu) [, 2x2 average pool] when the two convs are
 * depthwise, stride 1, size-preserving and read the same input, each feeding only the add:
 *   s = conv_a(h) + conv_b(h);  y = relu?((s - mean) * invstd * gamma + beta);
 *   out = y, or its 2x2 stride-2 average pool (floor sizes, as avgpool2d) with pool set.
 * With pw set (a 1x1 conv of one input channel before the pair, SP4ASC's first block) the
 * input is x (N, 1, F, T) and h = pw[c] * x is never stored. The sum s is never stored
 * either: the forward computes it twice (statistics, then the output) and the backward
 * recomputes it, so training keeps only x and out. */
struct dwpair_shape {
    int n, c, f, t;              /* h (N, C, F, T); x is h, or (N, 1, F, T) with pw */
    int kf[2], kt[2];            /* kernels of conv_a and conv_b: weights (C, 1, KF, KT) */
    int pf[2], pt[2], df[2], dt[2]; /* padding and dilation (stride 1, output F x T) */
    int relu, pool;
    int pw;                      /* 1: x (N, 1, F, T) through a folded 1x1 conv, weights pw (C) */
};
/* 0, or STATUS_INVALID naming what does not fit (a kernel that changes the map's size, too
 * many taps, a map too small to pool). */
int dwpair_shape_check(const struct dwpair_shape *s);
size_t dwpair_scratch_floats(const struct dwpair_shape *s, int n_threads);
/* train: batch statistics (biased variance to normalise, unbiased into running_var, both
 * with momentum; save_mean / save_invstd kept for the backward; any of the four may be
 * NULL), as batchnorm_forward_train; else the running statistics (eps). out: (N, C, F, T),
 * or (N, C, F/2, T/2) with pool. gamma / beta may be NULL (1 / 0); pw as in the shape. */
void dwpair_forward(const struct dwpair_shape *s, int train, float *out, const float *x,
                    const float *pw, const float *wa, const float *wb, const float *gamma,
                    const float *beta, float *running_mean, float *running_var, float momentum,
                    float eps, float *save_mean, float *save_invstd, float *scratch);
/* Backward of the forward above, from dout: the pooled gradient (pooled set; s->pool must
 * be set) or the gradient of y at full size (a backward started at the batch norm). mean
 * and invstd: the saved batch statistics (train) or the running mean and
 * 1 / sqrt(running_var + eps) (eval, train 0). Writes dwa, dwb, dgamma, dbeta and, with pw,
 * dpw (any may be NULL); dx (x's shape) is written, or added to with accumulate; dx may
 * equal x (in place, not with accumulate). Weight gradients are summed per plane and then
 * over samples in order: the result does not depend on the thread count. */
void dwpair_backward(const struct dwpair_shape *s, int train, int pooled, float *dx, float *dpw,
                     float *dwa, float *dwb, float *dgamma, float *dbeta, const float *dout,
                     const float *x, const float *pw, const float *wa, const float *wb,
                     const float *gamma, const float *beta, const float *mean,
                     const float *invstd, int accumulate, float *scratch);

/* ----------------------------------------------------------------------------- elementwise */

/* y = max(x, 0); y may equal x. */
void relu_forward(long n, float *y, const float *x);
/* dx (+)= dy where y > 0. */
void relu_backward(long n, float *dx, const float *dy, const float *y, int accumulate);

/* y = a + b (then max(y, 0) when relu); y may equal a or b. */
void add_forward(long n, float *y, const float *a, const float *b, int relu);
/* A batch norm (no relu) of one input of an add, applied as the add reads it: that input
 * holds x (N, C, HW) and the add sees batchnorm_value(x, mean[c], scale[c], shift[c]), bit
 * for bit what the BN would have written (batchnorm_affine_train / _eval give the arrays).
 * A plan fuses a BN into the add it feeds so, and never stores the BN's output. */
struct add_bn {
    int input;                        /* 0: a, 1: b */
    int c;
    long hw;
    const float *mean, *scale, *shift; /* (C) */
};
/* add_forward with bn applied to one input (bn NULL: add_forward). */
void add_bn_forward(long n, float *y, const float *a, const float *b, int relu,
                    const struct add_bn *bn);

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

/* A residual sum (relu) feeding a 2x2 stride-2 max pool, as one pass (CP-ResNet's pools;
 * a plan fuses add + maxpool so): y = maxpool(relu?(a + b)), the sum never stored. arg (one
 * byte per output) keeps the first maximum's position in its window (bits 0-1) and whether
 * the gradient passes the relu there (bit 2), which is all the backward needs (NULL: not
 * kept, for a pass no backward follows). s must be
 * 2x2 stride 2; bn (or NULL) as in add_bn_forward, its c and hw those of s's planes, with
 * rows at most ADDPOOL_BN_MAX_T wide. */
#define ADDPOOL_BN_MAX_T 1024
void addpool_forward(const struct pool2d_shape *s, float *y, uint8_t *arg, const float *a,
                     const float *b, int relu, const struct add_bn *bn);
/* da (+)= g and db (+)= g, g the pooled gradient dy at each window's recorded position (zero
 * elsewhere and where the relu stopped it); da or db may be NULL. */
void addpool_backward(const struct pool2d_shape *s, float *da, float *db, const float *dy,
                      const uint8_t *arg, int accumulate_a, int accumulate_b);

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
