/* batchnorm.c: batch normalisation over a generic (outer, C, inner) view, train and eval.
 *
 * Key idea: one view covers channel BN of (N, C, F, T) (outer N, inner F*T) and BN over mel
 * bins (outer N*C, C = F, inner T). Threads split the channels, so each channel's statistics
 * are summed by one thread in a fixed order (the result does not depend on the thread
 * count). Sums are in double around a shift (the channel's first element), which keeps the
 * one-pass variance exact enough even when the mean is large against the spread.
 *
 * ref: torch.nn.BatchNorm2d (biased variance to normalise, unbiased variance in the running
 *      update, running = (1 - momentum) * running + momentum * batch statistic);
 *      aten/src/ATen/native/Normalization.cpp, batch_norm_cpu_update_stats_template and
 *      batch_norm_backward_cpu_template; Chan, Golub, LeVeque 1983 (shifted sums).
 */
#include <math.h>
#include <string.h>

#include "basin/core/ops.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"

/* Below this many elements a parallel region costs more than it saves. */
#define BN_PARALLEL_MIN 32768L
/* Elements of the on-stack buffer of masked gradients. */
#define BN_BLOCK 1024

static long bn_count(const struct bn_shape *s)
{
    return (long)s->outer * s->inner;
}

static const float *row_of(const struct bn_shape *s, const float *p, int o, int c)
{
    return p + ((long)o * s->c + c) * s->inner;
}

/* The scale the forward applies, gamma * invstd, from the float invstd it saves, so that
 * a backward given save_invstd (or computing it from the running variance the same way)
 * gets the very same float and can recompute the forward's values bit for bit. */
static float bn_scale(double gamma, double invstd)
{
    return (float)(gamma * (double)(float)invstd);
}

/* One normalised value, as every kernel here computes it (an explicit FMA: the same on the
 * vector and scalar paths). */
static inline float bn_value(float x, float m, float a, float b)
{
    return __builtin_fmaf(x - m, a, b);
}

/* y = (x - m) * a + b over one channel, with relu when asked. */
static void bn_apply(const struct bn_shape *s, int c, float *y, const float *x, float m,
                     float a, float b, int relu)
{
    for (int o = 0; o < s->outer; o++) {
        const float *xr = row_of(s, x, o, c);
        float *yr = y + (xr - x);
        if (relu) {
#pragma omp simd
            for (long i = 0; i < s->inner; i++) {
                float v = bn_value(xr[i], m, a, b);
                yr[i] = v > 0.0f ? v : 0.0f;
            }
        } else {
#pragma omp simd
            for (long i = 0; i < s->inner; i++) yr[i] = bn_value(xr[i], m, a, b);
        }
    }
}

/* Where a train-mode forward that does not write y leaves the affine it would apply. */
struct bn_affine {
    float *mean, *scale, *shift;
};

/* Normalise channel c from its statistics (sums of x - shift over cnt elements) and
 * update the running and saved statistics: the second half of a train-mode forward. With
 * af set, y is not written: the mean, scale and shift go to af. */
static void bn_finish_channel(const struct bn_shape *s, int c, float *y, const float *x,
                              double shift, double sum, double sumsq, const float *gamma,
                              const float *beta, float *running_mean, float *running_var,
                              float momentum, float eps, float *save_mean, float *save_invstd,
                              int relu, const struct bn_affine *af)
{
    long cnt = bn_count(s);
    double dmean = sum / cnt;
    double var = (sumsq - sum * dmean) / cnt;
    if (var < 0) var = 0;
    double mean = shift + dmean;
    double invstd = 1.0 / sqrt(var + eps);
    double g = gamma ? gamma[c] : 1.0;
    if (af) {
        af->mean[c] = (float)mean;
        af->scale[c] = bn_scale(g, invstd);
        af->shift[c] = beta ? beta[c] : 0.0f;
    } else {
        bn_apply(s, c, y, x, (float)mean, bn_scale(g, invstd), beta ? beta[c] : 0.0f, relu);
    }
    if (save_mean) save_mean[c] = (float)mean;
    if (save_invstd) save_invstd[c] = (float)invstd;
    /* A single element per channel has no unbiased variance (PyTorch refuses to train
     * on it); the biased one, 0, is used instead of dividing by zero. */
    double unbiased = cnt > 1 ? var * cnt / (cnt - 1) : var;
    if (running_mean)
        running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mean);
    if (running_var)
        running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
}

static void forward_train(const struct bn_shape *s, float *y, const float *x,
                          const float *gamma, const float *beta, float *running_mean,
                          float *running_var, float momentum, float eps, float *save_mean,
                          float *save_invstd, int relu, const struct bn_affine *af)
{
    long cnt = bn_count(s);
    CHECK(s->outer > 0 && s->c > 0 && s->inner > 0);
#pragma omp parallel for schedule(static) num_threads(threads_get()) \
    if (cnt * s->c >= BN_PARALLEL_MIN)
    for (int c = 0; c < s->c; c++) {
        double shift = row_of(s, x, 0, c)[0], sum = 0, sumsq = 0;
        for (int o = 0; o < s->outer; o++) {
            const float *xr = row_of(s, x, o, c);
            double a = 0, a2 = 0;
#pragma omp simd reduction(+ : a, a2)
            for (long i = 0; i < s->inner; i++) {
                double d = xr[i] - shift;
                a += d;
                a2 += d * d;
            }
            sum += a;
            sumsq += a2;
        }
        bn_finish_channel(s, c, y, x, shift, sum, sumsq, gamma, beta, running_mean, running_var,
                          momentum, eps, save_mean, save_invstd, relu, af);
    }
}

void batchnorm_forward_train(const struct bn_shape *s, float *y, const float *x,
                             const float *gamma, const float *beta, float *running_mean,
                             float *running_var, float momentum, float eps, float *save_mean,
                             float *save_invstd, int relu)
{
    forward_train(s, y, x, gamma, beta, running_mean, running_var, momentum, eps, save_mean,
                  save_invstd, relu, NULL);
}

static void forward_train_sums(const struct bn_shape *s, float *y, const float *x,
                               const float *gamma, const float *beta, float *running_mean,
                               float *running_var, float momentum, float eps, float *save_mean,
                               float *save_invstd, int relu, const double *sum,
                               const double *sumsq, const struct bn_affine *af)
{
    long cnt = bn_count(s);
    CHECK(s->outer > 0 && s->c > 0 && s->inner > 0);
#pragma omp parallel for schedule(static) num_threads(threads_get()) \
    if (cnt * s->c >= BN_PARALLEL_MIN)
    for (int c = 0; c < s->c; c++)
        bn_finish_channel(s, c, y, x, 0.0, sum[c], sumsq[c], gamma, beta, running_mean,
                          running_var, momentum, eps, save_mean, save_invstd, relu, af);
}

void batchnorm_forward_train_sums(const struct bn_shape *s, float *y, const float *x,
                                  const float *gamma, const float *beta, float *running_mean,
                                  float *running_var, float momentum, float eps,
                                  float *save_mean, float *save_invstd, int relu,
                                  const double *sum, const double *sumsq)
{
    forward_train_sums(s, y, x, gamma, beta, running_mean, running_var, momentum, eps, save_mean,
                       save_invstd, relu, sum, sumsq, NULL);
}

void batchnorm_affine_train(const struct bn_shape *s, const float *x, const float *gamma,
                            const float *beta, float *running_mean, float *running_var,
                            float momentum, float eps, float *save_mean, float *save_invstd,
                            const double *sum, const double *sumsq, float *mean, float *scale,
                            float *shift)
{
    struct bn_affine af = {mean, scale, shift};
    if (sum)
        forward_train_sums(s, NULL, x, gamma, beta, running_mean, running_var, momentum, eps,
                           save_mean, save_invstd, 0, sum, sumsq, &af);
    else
        forward_train(s, NULL, x, gamma, beta, running_mean, running_var, momentum, eps, save_mean,
                      save_invstd, 0, &af);
}

void batchnorm_affine_eval(int c, const float *gamma, const float *beta, const float *running_mean,
                           const float *running_var, float eps, float *mean, float *scale,
                           float *shift)
{
    for (int k = 0; k < c; k++) {
        double invstd = 1.0 / sqrt((double)running_var[k] + eps), g = gamma ? gamma[k] : 1.0;
        mean[k] = running_mean[k];
        scale[k] = bn_scale(g, invstd);
        shift[k] = beta ? beta[k] : 0.0f;
    }
}

float batchnorm_value(float x, float mean, float scale, float shift)
{
    return bn_value(x, mean, scale, shift);
}

void batchnorm_forward_eval(const struct bn_shape *s, float *y, const float *x,
                            const float *gamma, const float *beta, const float *running_mean,
                            const float *running_var, float eps, int relu)
{
    CHECK(s->outer > 0 && s->c > 0 && s->inner > 0);
#pragma omp parallel for schedule(static) num_threads(threads_get()) \
    if (bn_count(s) * s->c >= BN_PARALLEL_MIN)
    for (int c = 0; c < s->c; c++) {
        double invstd = 1.0 / sqrt((double)running_var[c] + eps);
        double g = gamma ? gamma[c] : 1.0;
        bn_apply(s, c, y, x, running_mean[c], bn_scale(g, invstd), beta ? beta[c] : 0.0f, relu);
    }
}

/* Where the relu passes the gradient: y > 0 read from the forward output (y not NULL), or
 * recomputed from x with the forward's constants (mask.a, mask.b; the same float value). */
struct bn_mask {
    const float *y;
    float a, b;
};

static void mask_block(const struct bn_mask *mk, long off, const float *xr, const float *dyr,
                       float m, long n, float *g)
{
    if (mk->y) {
        const float *yr = mk->y + off;
#pragma omp simd
        for (long i = 0; i < n; i++) g[i] = yr[i] > 0.0f ? dyr[i] : 0.0f;
    } else {
        float a = mk->a, b = mk->b;
#pragma omp simd
        for (long i = 0; i < n; i++) g[i] = bn_value(xr[i], m, a, b) > 0.0f ? dyr[i] : 0.0f;
    }
}

/* Sums over one channel of g = dy (masked by the relu) and of g * (x - m). */
static void bn_grad_sums(const struct bn_shape *s, int c, const float *dy, const float *x,
                         const struct bn_mask *mk, int relu, float m, double *sum_g,
                         double *sum_gx)
{
    double sg = 0, sgx = 0;
    for (int o = 0; o < s->outer; o++) {
        long off = ((long)o * s->c + c) * s->inner;
        const float *dyr = dy + off, *xr = x + off;
        double a = 0, b = 0;
        if (relu) {
            /* The masked gradient goes through a small buffer: with the select and the
             * double sums in one loop GCC left a branch per element (16x slower). */
            for (long i0 = 0; i0 < s->inner; i0 += BN_BLOCK) {
                long n = s->inner - i0 < BN_BLOCK ? s->inner - i0 : BN_BLOCK;
                float g[BN_BLOCK];
                struct bn_mask mo = *mk;
                if (mo.y) mo.y += i0;
                mask_block(&mo, off, xr + i0, dyr + i0, m, n, g);
#pragma omp simd reduction(+ : a, b)
                for (long i = 0; i < n; i++) {
                    a += g[i];
                    b += (double)g[i] * (xr[i0 + i] - m);
                }
            }
        } else {
#pragma omp simd reduction(+ : a, b)
            for (long i = 0; i < s->inner; i++) {
                a += dyr[i];
                b += (double)dyr[i] * (xr[i] - m);
            }
        }
        sg += a;
        sgx += b;
    }
    *sum_g = sg;
    *sum_gx = sgx;
}

/* dx (+)= g * k1 + (x - m) * k2 + k3 over one channel, g = dy masked as above. */
static void bn_dx(const struct bn_shape *s, int c, float *dx, const float *dy, const float *x,
                  const struct bn_mask *mk, int relu, float m, float k1, float k2, float k3,
                  int accumulate)
{
    for (int o = 0; o < s->outer; o++) {
        long off = ((long)o * s->c + c) * s->inner;
        const float *dyr = dy + off, *xr = x + off;
        float *dxr = dx + off;
        if (relu && mk->y) {
            const float *yr = mk->y + off;
#pragma omp simd
            for (long i = 0; i < s->inner; i++) {
                float g = yr[i] > 0.0f ? dyr[i] : 0.0f;
                float v = g * k1 + (xr[i] - m) * k2 + k3;
                dxr[i] = accumulate ? dxr[i] + v : v;
            }
        } else if (relu) {
            float a = mk->a, b = mk->b;
#pragma omp simd
            for (long i = 0; i < s->inner; i++) {
                float g = bn_value(xr[i], m, a, b) > 0.0f ? dyr[i] : 0.0f;
                float v = g * k1 + (xr[i] - m) * k2 + k3;
                dxr[i] = accumulate ? dxr[i] + v : v;
            }
        } else {
#pragma omp simd
            for (long i = 0; i < s->inner; i++) {
                float v = dyr[i] * k1 + (xr[i] - m) * k2 + k3;
                dxr[i] = accumulate ? dxr[i] + v : v;
            }
        }
    }
}

/* dx = gamma * invstd * (g - mean(g) - xhat * mean(g * xhat)), xhat = (x - mean) * invstd;
 * dgamma = sum g * xhat; dbeta = sum g. The relu mask from y, or from x when y is NULL. */
static void backward_train(const struct bn_shape *s, float *dx, float *dgamma, float *dbeta,
                           const float *dy, const float *x, const float *y, int relu,
                           const float *gamma, const float *beta, const float *save_mean,
                           const float *save_invstd, const double *sums_g,
                           const double *sums_gx, int accumulate)
{
    long cnt = bn_count(s);
#pragma omp parallel for schedule(static) num_threads(threads_get()) \
    if (cnt * s->c >= BN_PARALLEL_MIN)
    for (int c = 0; c < s->c; c++) {
        float m = save_mean[c];
        double invstd = save_invstd[c], sum_g, sum_gx, g = gamma ? gamma[c] : 1.0;
        struct bn_mask mk = {y, bn_scale(g, invstd), beta ? beta[c] : 0.0f};
        if (sums_g) sum_g = sums_g[c], sum_gx = sums_gx[c];
        else bn_grad_sums(s, c, dy, x, &mk, relu, m, &sum_g, &sum_gx);
        if (dbeta) dbeta[c] = (float)sum_g;
        if (dgamma) dgamma[c] = (float)(sum_gx * invstd);
        if (dx) {
            double k1 = g * invstd;
            double k2 = -g * invstd * invstd * invstd * sum_gx / cnt;
            double k3 = -g * invstd * sum_g / cnt;
            bn_dx(s, c, dx, dy, x, &mk, relu, m, (float)k1, (float)k2, (float)k3, accumulate);
        }
    }
}

static void backward_eval(const struct bn_shape *s, float *dx, float *dgamma, float *dbeta,
                          const float *dy, const float *x, const float *y, int relu,
                          const float *gamma, const float *beta, const float *running_mean,
                          const float *running_var, float eps, const double *sums_g,
                          const double *sums_gx, int accumulate)
{
#pragma omp parallel for schedule(static) num_threads(threads_get()) \
    if (bn_count(s) * s->c >= BN_PARALLEL_MIN)
    for (int c = 0; c < s->c; c++) {
        float m = running_mean[c];
        double invstd = 1.0 / sqrt((double)running_var[c] + eps), g = gamma ? gamma[c] : 1.0;
        struct bn_mask mk = {y, bn_scale(g, invstd), beta ? beta[c] : 0.0f};
        if (dgamma || dbeta) {
            double sum_g, sum_gx;
            if (sums_g) sum_g = sums_g[c], sum_gx = sums_gx[c];
            else bn_grad_sums(s, c, dy, x, &mk, relu, m, &sum_g, &sum_gx);
            if (dbeta) dbeta[c] = (float)sum_g;
            if (dgamma) dgamma[c] = (float)(sum_gx * invstd);
        }
        if (dx) bn_dx(s, c, dx, dy, x, &mk, relu, m, (float)(g * invstd), 0.0f, 0.0f, accumulate);
    }
}

void batchnorm_backward_train(const struct bn_shape *s, float *dx, float *dgamma, float *dbeta,
                              const float *dy, const float *x, const float *y, int relu,
                              const float *gamma, const float *save_mean,
                              const float *save_invstd, int accumulate)
{
    CHECK(!relu || (y && y != x));
    backward_train(s, dx, dgamma, dbeta, dy, x, y, relu, gamma, NULL, save_mean, save_invstd,
                   NULL, NULL, accumulate);
}

void batchnorm_backward_eval(const struct bn_shape *s, float *dx, float *dgamma, float *dbeta,
                             const float *dy, const float *x, const float *y, int relu,
                             const float *gamma, const float *running_mean,
                             const float *running_var, float eps, int accumulate)
{
    CHECK(!relu || (y && y != x));
    backward_eval(s, dx, dgamma, dbeta, dy, x, y, relu, gamma, NULL, running_mean, running_var,
                  eps, NULL, NULL, accumulate);
}

void batchnorm_backward_train_x(const struct bn_shape *s, float *dx, float *dgamma,
                                float *dbeta, const float *dy, const float *x, int relu,
                                const float *gamma, const float *beta, const float *save_mean,
                                const float *save_invstd, int accumulate)
{
    backward_train(s, dx, dgamma, dbeta, dy, x, NULL, relu, gamma, beta, save_mean, save_invstd,
                   NULL, NULL, accumulate);
}

void batchnorm_backward_eval_x(const struct bn_shape *s, float *dx, float *dgamma, float *dbeta,
                               const float *dy, const float *x, int relu, const float *gamma,
                               const float *beta, const float *running_mean,
                               const float *running_var, float eps, int accumulate)
{
    backward_eval(s, dx, dgamma, dbeta, dy, x, NULL, relu, gamma, beta, running_mean,
                  running_var, eps, NULL, NULL, accumulate);
}

void batchnorm_backward_sums(const struct bn_shape *s, int train, float *dx, float *dgamma,
                             float *dbeta, const float *dy, const float *x, int relu,
                             const float *gamma, const float *beta, const float *mean,
                             const float *invstd_or_var, float eps, const double *sum_g,
                             const double *sum_gx, int accumulate)
{
    if (train)
        backward_train(s, dx, dgamma, dbeta, dy, x, NULL, relu, gamma, beta, mean, invstd_or_var,
                       sum_g, sum_gx, accumulate);
    else
        backward_eval(s, dx, dgamma, dbeta, dy, x, NULL, relu, gamma, beta, mean, invstd_or_var,
                      eps, sum_g, sum_gx, accumulate);
}

float batchnorm_scale(float gamma, float invstd)
{
    return bn_scale(gamma, invstd);
}
