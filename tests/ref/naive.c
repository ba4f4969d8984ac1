/* naive.c: the reference definitions of basin's ops, in double, straight from the formulas.
 *
 * Key idea: no tiling, no threads, no shortcuts; one loop nest per definition, so a reader
 * can check each against PyTorch's documentation line by line. Speed does not matter.
 *
 * ref: torch.nn.Conv2d, BatchNorm2d, MaxPool2d, AvgPool2d, Linear, functional.dropout and
 *      torch.roll documentation (definitions and output sizes).
 */
#include "ref/naive.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* x (N, I, F, T) at (n, c, h, w), or 0 in the zero padding. */
static double conv_input(const struct conv2d_shape *s, const double *x, int n, int c, int h,
                         int w)
{
    if (h < 0 || h >= s->fi || w < 0 || w >= s->ti) return 0.0;
    return x[(((long)n * s->ci + c) * s->fi + h) * s->ti + w];
}

void naive_conv2d(const struct conv2d_shape *s, double *y, const double *x, const double *w)
{
    int cig = s->ci / s->groups, cog = s->co / s->groups;
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < s->co; o++)
            for (int oh = 0; oh < s->fo; oh++)
                for (int ow = 0; ow < s->to; ow++) {
                    int g = o / cog;
                    double acc = 0;
                    for (int c = 0; c < cig; c++)
                        for (int i = 0; i < s->kf; i++)
                            for (int j = 0; j < s->kt; j++) {
                                int h = oh * s->sf - s->pf + i * s->df;
                                int v = ow * s->st - s->pt + j * s->dt;
                                acc += w[(((long)o * cig + c) * s->kf + i) * s->kt + j] *
                                       conv_input(s, x, n, g * cig + c, h, v);
                            }
                    y[(((long)n * s->co + o) * s->fo + oh) * s->to + ow] = acc;
                }
}

/* The same loop nest as naive_conv2d, each product's contribution sent back to its
 * input (data) or weight. */
void naive_conv2d_backward_data(const struct conv2d_shape *s, double *dx, const double *dy,
                                const double *w)
{
    int cig = s->ci / s->groups, cog = s->co / s->groups;
    memset(dx, 0, sizeof(double) * (size_t)s->n * s->ci * s->fi * s->ti);
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < s->co; o++)
            for (int oh = 0; oh < s->fo; oh++)
                for (int ow = 0; ow < s->to; ow++) {
                    int g = o / cog;
                    double d = dy[(((long)n * s->co + o) * s->fo + oh) * s->to + ow];
                    for (int c = 0; c < cig; c++)
                        for (int i = 0; i < s->kf; i++)
                            for (int j = 0; j < s->kt; j++) {
                                int h = oh * s->sf - s->pf + i * s->df;
                                int v = ow * s->st - s->pt + j * s->dt;
                                if (h < 0 || h >= s->fi || v < 0 || v >= s->ti) continue;
                                dx[(((long)n * s->ci + g * cig + c) * s->fi + h) * s->ti + v] +=
                                    d * w[(((long)o * cig + c) * s->kf + i) * s->kt + j];
                            }
                }
}

void naive_conv2d_backward_weight(const struct conv2d_shape *s, double *dw, const double *dy,
                                  const double *x)
{
    int cig = s->ci / s->groups, cog = s->co / s->groups;
    memset(dw, 0, sizeof(double) * (size_t)s->co * cig * s->kf * s->kt);
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < s->co; o++)
            for (int oh = 0; oh < s->fo; oh++)
                for (int ow = 0; ow < s->to; ow++) {
                    int g = o / cog;
                    double d = dy[(((long)n * s->co + o) * s->fo + oh) * s->to + ow];
                    for (int c = 0; c < cig; c++)
                        for (int i = 0; i < s->kf; i++)
                            for (int j = 0; j < s->kt; j++) {
                                int h = oh * s->sf - s->pf + i * s->df;
                                int v = ow * s->st - s->pt + j * s->dt;
                                dw[(((long)o * cig + c) * s->kf + i) * s->kt + j] +=
                                    d * conv_input(s, x, n, g * cig + c, h, v);
                            }
                }
}

static long bn_index(const struct bn_shape *s, int o, int c, long i)
{
    return ((long)o * s->c + c) * s->inner + i;
}

static double relu_if(double v, int relu)
{
    return relu && v < 0 ? 0.0 : v;
}

void naive_batchnorm_train(const struct bn_shape *s, double *y, const double *x,
                           const double *gamma, const double *beta, double *running_mean,
                           double *running_var, double momentum, double eps, double *mean,
                           double *var, int relu)
{
    double cnt = (double)s->outer * s->inner;
    for (int c = 0; c < s->c; c++) {
        double m = 0, v = 0;
        for (int o = 0; o < s->outer; o++)
            for (long i = 0; i < s->inner; i++) m += x[bn_index(s, o, c, i)];
        m /= cnt;
        for (int o = 0; o < s->outer; o++)
            for (long i = 0; i < s->inner; i++) {
                double d = x[bn_index(s, o, c, i)] - m;
                v += d * d;
            }
        v /= cnt;
        double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
        for (int o = 0; o < s->outer; o++)
            for (long i = 0; i < s->inner; i++) {
                long k = bn_index(s, o, c, i);
                y[k] = relu_if((x[k] - m) / sqrt(v + eps) * g + b, relu);
            }
        if (running_mean) running_mean[c] = (1 - momentum) * running_mean[c] + momentum * m;
        if (running_var)
            running_var[c] = (1 - momentum) * running_var[c] + momentum * v * cnt / (cnt - 1);
        if (mean) mean[c] = m;
        if (var) var[c] = v;
    }
}

void naive_batchnorm_eval(const struct bn_shape *s, double *y, const double *x,
                          const double *gamma, const double *beta, const double *running_mean,
                          const double *running_var, double eps, int relu)
{
    for (int c = 0; c < s->c; c++) {
        double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
        for (int o = 0; o < s->outer; o++)
            for (long i = 0; i < s->inner; i++) {
                long k = bn_index(s, o, c, i);
                y[k] = relu_if((x[k] - running_mean[c]) / sqrt(running_var[c] + eps) * g + b,
                               relu);
            }
    }
}

void naive_relu(long n, double *y, const double *x)
{
    for (long i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0.0;
}

void naive_add(long n, double *y, const double *a, const double *b, int relu)
{
    for (long i = 0; i < n; i++) y[i] = relu_if(a[i] + b[i], relu);
}

void naive_roll(int n, int c, long hw, int shift, double *y, const double *x)
{
    for (int s = 0; s < n; s++)
        for (int j = 0; j < c; j++) {
            int from = ((j - shift) % c + c) % c;
            for (long i = 0; i < hw; i++)
                y[((long)s * c + j) * hw + i] = x[((long)s * c + from) * hw + i];
        }
}

void naive_maxpool2d(const struct pool2d_shape *s, double *y, const double *x)
{
    for (long p = 0; p < (long)s->n * s->c; p++)
        for (int oh = 0; oh < s->fo; oh++)
            for (int ow = 0; ow < s->to; ow++) {
                double m = -INFINITY;
                for (int i = 0; i < s->kf; i++)
                    for (int j = 0; j < s->kt; j++) {
                        double v = x[(p * s->fi + oh * s->sf + i) * s->ti + ow * s->st + j];
                        if (v > m) m = v;
                    }
                y[(p * s->fo + oh) * s->to + ow] = m;
            }
}

void naive_avgpool2d(const struct pool2d_shape *s, double *y, const double *x)
{
    for (long p = 0; p < (long)s->n * s->c; p++)
        for (int oh = 0; oh < s->fo; oh++)
            for (int ow = 0; ow < s->to; ow++) {
                double acc = 0;
                for (int i = 0; i < s->kf; i++)
                    for (int j = 0; j < s->kt; j++)
                        acc += x[(p * s->fi + oh * s->sf + i) * s->ti + ow * s->st + j];
                y[(p * s->fo + oh) * s->to + ow] = acc / (s->kf * s->kt);
            }
}

void naive_mean(int outer, int len, long inner, double *y, const double *x)
{
    for (int o = 0; o < outer; o++)
        for (long i = 0; i < inner; i++) {
            double acc = 0;
            for (int l = 0; l < len; l++) acc += x[((long)o * len + l) * inner + i];
            y[(long)o * inner + i] = acc / len;
        }
}

void naive_max(int outer, int len, long inner, double *y, const double *x)
{
    for (int o = 0; o < outer; o++)
        for (long i = 0; i < inner; i++) {
            double m = -INFINITY;
            for (int l = 0; l < len; l++) {
                double v = x[((long)o * len + l) * inner + i];
                if (v > m) m = v;
            }
            y[(long)o * inner + i] = m;
        }
}

void naive_linear(int n, int in, int out, double *y, const double *x, const double *w,
                  const double *b)
{
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double acc = b ? b[o] : 0.0;
            for (int k = 0; k < in; k++) acc += x[(long)i * in + k] * w[(long)o * in + k];
            y[(long)i * out + o] = acc;
        }
}

void naive_dropout(long n, double *y, const double *x, double p, const uint8_t *mask)
{
    for (long i = 0; i < n; i++) y[i] = mask[i] ? x[i] / (1 - p) : 0.0;
}

/* The depthwise pair as the graph spells it: [1x1 of one channel,] conv_a, conv_b, add,
 * batch norm (relu), [2x2 average pool]. */
void naive_dwpair(const struct dwpair_shape *s, int train, double *out, const double *x,
                  const double *pw, const double *wa, const double *wb, const double *gamma,
                  const double *beta, double *running_mean, double *running_var,
                  double momentum, double eps, double *mean, double *var)
{
    long hw = (long)s->f * s->t, nh = (long)s->n * s->c * hw;
    double *h = malloc(sizeof(double) * (size_t)nh), *a = malloc(sizeof(double) * (size_t)nh);
    double *b = malloc(sizeof(double) * (size_t)nh), *y = malloc(sizeof(double) * (size_t)nh);
    if (s->pw) {
        struct conv2d_shape p = {s->n, 1, s->f, s->t, s->c, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0};
        conv2d_shape_init(&p);
        naive_conv2d(&p, h, x, pw);
    } else {
        memcpy(h, x, sizeof(double) * (size_t)nh);
    }
    for (int k = 0; k < 2; k++) {
        struct conv2d_shape d = {s->n, s->c, s->f, s->t, s->c, s->kf[k], s->kt[k], 1, 1,
                                 s->pf[k], s->pt[k], s->df[k], s->dt[k], s->c, 0, 0};
        conv2d_shape_init(&d);
        naive_conv2d(&d, k ? b : a, h, k ? wb : wa);
    }
    naive_add(nh, a, a, b, 0);
    struct bn_shape bs = {s->n, s->c, hw};
    if (train)
        naive_batchnorm_train(&bs, y, a, gamma, beta, running_mean, running_var, momentum, eps,
                              mean, var, s->relu);
    else
        naive_batchnorm_eval(&bs, y, a, gamma, beta, running_mean, running_var, eps, s->relu);
    if (s->pool) {
        struct pool2d_shape ps = {s->n, s->c, s->f, s->t, 2, 2, 2, 2, 0, 0};
        pool2d_shape_init(&ps);
        naive_avgpool2d(&ps, out, y);
    } else {
        memcpy(out, y, sizeof(double) * (size_t)nh);
    }
    free(h), free(a), free(b), free(y);
}
