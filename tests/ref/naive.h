/* naive.h: direct double-precision twins of the ops in basin/core/ops.h.
 *
 * Written as plainly as possible, one loop nest per definition, so they can serve as the
 * reference for every fast kernel (tests), the baseline of the benchmarks and the forward
 * function of finite-difference gradient checks. Same shapes and layouts as ops.h; every
 * output is written (never accumulated), buffers do not alias.
 */
#ifndef BASIN_TESTS_NAIVE_H
#define BASIN_TESTS_NAIVE_H

#include <stdint.h>

#include "basin/core/ops.h"

/* y (N, O, FO, TO) = conv(x (N, I, F, T), w (O, I/groups, KF, KT)); s set by
 * conv2d_shape_init. */
void naive_conv2d(const struct conv2d_shape *s, double *y, const double *x, const double *w);
/* The adjoints, by the same loop nest: dx (N, I, F, T) and dw (O, I/groups, KF, KT). */
void naive_conv2d_backward_data(const struct conv2d_shape *s, double *dx, const double *dy,
                                const double *w);
void naive_conv2d_backward_weight(const struct conv2d_shape *s, double *dw, const double *dy,
                                  const double *x);

/* Train mode: batch mean and biased variance; running_mean / running_var (C), when not
 * NULL, updated with momentum and the unbiased variance; mean / var (C), when not NULL,
 * receive the batch statistics (var biased). gamma, beta NULL: 1, 0. */
void naive_batchnorm_train(const struct bn_shape *s, double *y, const double *x,
                           const double *gamma, const double *beta, double *running_mean,
                           double *running_var, double momentum, double eps, double *mean,
                           double *var, int relu);
void naive_batchnorm_eval(const struct bn_shape *s, double *y, const double *x,
                          const double *gamma, const double *beta, const double *running_mean,
                          const double *running_var, double eps, int relu);

void naive_relu(long n, double *y, const double *x);
void naive_add(long n, double *y, const double *a, const double *b, int relu);
void naive_roll(int n, int c, long hw, int shift, double *y, const double *x);

/* s set by pool2d_shape_init. */
void naive_maxpool2d(const struct pool2d_shape *s, double *y, const double *x);
void naive_avgpool2d(const struct pool2d_shape *s, double *y, const double *x);

/* x (outer, len, inner) -> y (outer, inner). */
void naive_mean(int outer, int len, long inner, double *y, const double *x);
void naive_max(int outer, int len, long inner, double *y, const double *x);

/* y (N, O) = x (N, I) w^T + b; b may be NULL. */
void naive_linear(int n, int in, int out, double *y, const double *x, const double *w,
                  const double *b);

/* y = x * mask / (1 - p) with the mask given. */
void naive_dropout(long n, double *y, const double *x, double p, const uint8_t *mask);

/* The depthwise pair of ops.h (dwpair_forward) composed from the twins above: [pw 1x1,]
 * conv_a + conv_b, batch norm (train: batch statistics, mean / var receive them (var biased)
 * when not NULL, running statistics updated when not NULL; eval: the running ones), relu,
 * [2x2 average pool]. */
void naive_dwpair(const struct dwpair_shape *s, int train, double *out, const double *x,
                  const double *pw, const double *wa, const double *wb, const double *gamma,
                  const double *beta, double *running_mean, double *running_var,
                  double momentum, double eps, double *mean, double *var);

#endif
