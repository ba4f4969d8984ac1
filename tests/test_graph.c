/* test_graph.c: whole models through plans: forward against the double-precision graph
 * interpreter, gradients against finite differences in double (damped, grouped, rolled,
 * masked, strided, dilated convs; BN in train and eval mode; residual fan-out), input
 * gradients from intermediate nodes, BN folding, plan errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/graph.h"
#include "basin/core/ops.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/model/model.h"
#include "ref/naive_graph.h"
#include "test.h"

struct setup {
    const char *label;
    enum arch arch;
    const char *const *kv;
    int n, f, t;
};

static const struct setup setups[] = {
    {"cpresnet grouped, rolled, damped, 2 channels", ARCH_CPRESNET,
     (const char *[]){"width", "4", "rho", "9", "damping", "0.1", "groups", "2", "roll", "1",
                      "blocks", "2,2,1", "in_ch", "2", "classes", "3", NULL},
     2, 20, 18},
    {"sepnet", ARCH_SEPNET, (const char *[]){"channels", "4,6", "mels", "12", "classes", "3", NULL}, 3, 12, 16},
    {"cnn10", ARCH_CNN10, (const char *[]){"width", "0.0625", "mels", "16", "classes", "4", NULL}, 2, 16, 32},
};

/* A model with every weight random (Fixup zeros some), BN statistics and affines random,
 * dropout off (training finite differences need a deterministic function). */
static struct model *make(const struct setup *s, uint64_t seed)
{
    struct model_config c;
    model_config_default(&c, s->arch);
    for (int i = 0; s->kv[i]; i += 2)
        if (model_config_set(&c, s->kv[i], s->kv[i + 1])) return NULL;
    struct model *m;
    if (model_create(&m, &c, seed)) return NULL;
    struct graph *g = m->g;
    struct rng r;
    rng_seed(&r, seed + 100);
    for (int i = 0; i < g->n_tensors; i++) {
        const struct graph_tensor *t = &g->tensors[i];
        float *d = graph_tensor_data(g, i);
        if (t->kind == TENSOR_RUNNING_VAR || t->kind == TENSOR_BN_WEIGHT)
            rng_fill_uniform(&r, d, t->numel, 0.5f, 1.5f);
        else if (t->kind == TENSOR_WEIGHT)
            rng_fill_normal(&r, d, t->numel, 0, (float)(1.0 / sqrt((double)t->numel / t->shape[0])));
        else
            rng_fill_normal(&r, d, t->numel, 0, 0.1f);
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == OP_DROPOUT) g->nodes[i].p = 0;
    return m;
}

static double *to_double(const float *x, long n)
{
    double *d = malloc((size_t)n * sizeof *d);
    for (long i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static void test_forward_matches_double_interpreter(void)
{
    for (size_t k = 0; k < sizeof setups / sizeof setups[0]; k++) {
        const struct setup *s = &setups[k];
        struct model *m = make(s, 7);
        REQUIRE(m);
        struct graph *g = m->g;
        int in_ch = m->cfg.in_ch;
        long nx = (long)s->n * in_ch * s->f * s->t;
        float *x = malloc((size_t)nx * sizeof *x);
        struct rng r;
        rng_seed(&r, 3);
        rng_fill_normal(&r, x, nx, 0, 1);
        double *xd = to_double(x, nx), *w = to_double(g->store.w, g->store.n_params);
        double *buf = to_double(g->store.buf, g->store.n_buffers), ref[64];
        long size;
        for (int train = 0; train < 2; train++) {
            for (int flags = 0; flags <= PLAN_BACKWARD; flags += PLAN_BACKWARD) {
                struct plan *p;
                REQUIRE_OK(plan_create(&p, g, s->n, in_ch, s->f, s->t, flags));
                float *saved = malloc((size_t)g->store.n_buffers * sizeof(float));
                memcpy(saved, g->store.buf, (size_t)g->store.n_buffers * sizeof(float));
                REQUIRE_OK(plan_forward(p, s->n, x, train, NULL));
                memcpy(g->store.buf, saved, (size_t)g->store.n_buffers * sizeof(float));
                free(saved);
                REQUIRE(naive_graph_forward(g, s->n, in_ch, s->f, s->t, xd, w, buf, train, -1, ref, &size) == 0);
                double scale = 0;
                for (long i = 0; i < s->n * size; i++) scale = fmax(scale, fabs(ref[i]));
                const float *out = plan_output(p);
                for (long i = 0; i < s->n * size; i++)
                    EXPECT_MSG(fabs(out[i] - ref[i]) <= 1e-4 * scale + 1e-5,
                               "%s train=%d flags=%d: logit %ld = %.7g, reference %.7g", s->label,
                               train, flags, i, out[i], ref[i]);
                plan_destroy(p);
            }
        }
        free(x);
        free(xd);
        free(w);
        free(buf);
        model_destroy(m);
    }
}

/* Loss L = sum(r * logits); analytic gradients from plan_backward(r) against central
 * differences of the double interpreter, for a spread of parameters and inputs. */
static void check_gradients(const struct setup *s, int train, int masked)
{
    struct model *m = make(s, 11);
    REQUIRE(m);
    struct graph *g = m->g;
    struct rng r;
    rng_seed(&r, 5);
    if (masked) {
        for (int ti = 0; ti < g->n_tensors; ti++) {
            const struct graph_tensor *t = &g->tensors[ti];
            if (t->kind != TENSOR_WEIGHT) continue;
            for (long i = 0; i < t->numel; i++)
                if (rng_uniform(&r) < 0.3) g->store.mask[t->offset + i] = 0;
        }
        g->masked = 1;
    }
    int in_ch = m->cfg.in_ch, n = s->n;
    long nx = (long)n * in_ch * s->f * s->t, nout = (long)n * m->cfg.classes;
    float *x = malloc((size_t)nx * sizeof *x), *dx = malloc((size_t)nx * sizeof *dx);
    float *rw = malloc((size_t)nout * sizeof *rw);
    rng_fill_normal(&r, x, nx, 0, 1);
    rng_fill_normal(&r, rw, nout, 0, 1);
    struct plan *p;
    REQUIRE_OK(plan_create(&p, g, n, in_ch, s->f, s->t, PLAN_BACKWARD));
    float *buf0 = malloc((size_t)g->store.n_buffers * sizeof(float));
    memcpy(buf0, g->store.buf, (size_t)g->store.n_buffers * sizeof(float));
    REQUIRE_OK(plan_forward(p, n, x, train, NULL));
    REQUIRE_OK(plan_backward(p, rw, dx));
    memcpy(g->store.buf, buf0, (size_t)g->store.n_buffers * sizeof(float));
    double *xd = to_double(x, nx), *w = to_double(g->store.w, g->store.n_params);
    double *buf = to_double(g->store.buf, g->store.n_buffers), *out = malloc((size_t)nout * sizeof(double));
    long size;
    /* Evaluate L at the current xd, w. */
#define LOSS(dst)                                                                           \
    do {                                                                                    \
        naive_graph_forward(g, n, in_ch, s->f, s->t, xd, w, buf, train, -1, out, &size);    \
        double acc_ = 0;                                                                    \
        for (long i_ = 0; i_ < nout; i_++) acc_ += rw[i_] * out[i_];                        \
        dst = acc_;                                                                         \
    } while (0)
    int checked = 0, bad = 0, kinks = 0;
    double l0;
    LOSS(l0);
    for (int ti = 0; ti < g->n_tensors; ti++) {
        const struct graph_tensor *t = &g->tensors[ti];
        if (!tensor_kind_is_param(t->kind)) continue;
        for (int pick = 0; pick < 3; pick++) {
            long j = t->offset + (long)rng_below(&r, (uint64_t)t->numel);
            double h = 1e-5 * fmax(1.0, fabs(w[j])), lp, lm, keep = w[j];
            w[j] = keep + h;
            LOSS(lp);
            w[j] = keep - h;
            LOSS(lm);
            w[j] = keep;
            double fd = (lp - lm) / (2 * h), an = g->store.g[j];
            /* A relu or max switching inside [w - h, w + h] makes the one-sided slopes
             * disagree: such a point has no derivative to check. */
            if (fabs((lp - l0) / h - (l0 - lm) / h) > 1e-3 * fabs(fd) + 1e-4) {
                kinks++;
                continue;
            }
            checked++;
            if (!(fabs(an - fd) <= 2e-3 * fabs(fd) + 2e-4) && bad++ < 5)
                test_fail(__FILE__, __LINE__, "%s train=%d masked=%d: d/d %s[%ld] = %.7g, finite difference %.7g",
                          s->label, train, masked, t->name, j - t->offset, an, fd);
            if (masked && g->store.mask[j] == 0) EXPECT(an == 0);
        }
    }
    EXPECT_MSG(kinks * 10 < checked, "%d of %d points sat on a kink", kinks, checked + kinks);
    for (int pick = 0; pick < 12; pick++) {
        long j = (long)rng_below(&r, (uint64_t)nx);
        double h = 1e-5, lp, lm, keep = xd[j];
        xd[j] = keep + h;
        LOSS(lp);
        xd[j] = keep - h;
        LOSS(lm);
        xd[j] = keep;
        double fd = (lp - lm) / (2 * h);
        EXPECT_MSG(fabs(dx[j] - fd) <= 2e-3 * fabs(fd) + 2e-4,
                   "%s train=%d: d/dx[%ld] = %.7g, finite difference %.7g", s->label, train, j, dx[j], fd);
    }
#undef LOSS
    EXPECT(checked > 10);
    plan_destroy(p);
    free(x), free(dx), free(rw), free(buf0), free(xd), free(w), free(buf), free(out);
    model_destroy(m);
}

static void test_gradients_train_mode(void)
{
    for (size_t k = 0; k < sizeof setups / sizeof setups[0]; k++) check_gradients(&setups[k], 1, 0);
}

static void test_gradients_eval_mode(void)
{
    for (size_t k = 0; k < sizeof setups / sizeof setups[0]; k++) check_gradients(&setups[k], 0, 0);
}

static void test_gradients_with_pruning_masks(void)
{
    check_gradients(&setups[0], 1, 1);
    check_gradients(&setups[2], 1, 1);
}

/* ERF path: the input gradient of one node's summed centre unit, eval mode. */
static void test_backward_from_intermediate_node(void)
{
    const struct setup *s = &setups[0];
    struct model *m = make(s, 13);
    REQUIRE(m);
    struct graph *g = m->g;
    int tap = graph_find_node(g, "s2.b1.bn2");
    REQUIRE(tap > 0);
    int in_ch = m->cfg.in_ch, n = 1;
    long nx = (long)in_ch * s->f * s->t;
    float *x = malloc((size_t)nx * sizeof *x), *dx = malloc((size_t)nx * sizeof *dx);
    struct rng r;
    rng_seed(&r, 9);
    rng_fill_normal(&r, x, nx, 0, 1);
    struct plan *p;
    REQUIRE_OK(plan_create(&p, g, n, in_ch, s->f, s->t, PLAN_BACKWARD));
    REQUIRE_OK(plan_forward(p, n, x, 0, NULL));
    int c, f, t;
    plan_node_shape(p, tap, &c, &f, &t);
    float *d = calloc((size_t)c * f * t, sizeof *d);
    double *rd = malloc((size_t)c * f * t * sizeof *rd);
    for (int k = 0; k < c; k++) d[((long)k * f + f / 2) * t + t / 2] = 1;
    for (long i = 0; i < (long)c * f * t; i++) rd[i] = d[i];
    REQUIRE_OK(plan_backward_from(p, tap, d, dx));
    double *xd = to_double(x, nx), *w = to_double(g->store.w, g->store.n_params);
    double *buf = to_double(g->store.buf, g->store.n_buffers), *out = malloc((size_t)c * f * t * sizeof(double));
    long size;
    int nonzero = 0;
    for (long j = 0; j < nx; j += 7) {
        double h = 1e-5, lp = 0, lm = 0, keep = xd[j];
        xd[j] = keep + h;
        naive_graph_forward(g, n, in_ch, s->f, s->t, xd, w, buf, 0, tap, out, &size);
        for (long i = 0; i < size; i++) lp += rd[i] * out[i];
        xd[j] = keep - h;
        naive_graph_forward(g, n, in_ch, s->f, s->t, xd, w, buf, 0, tap, out, &size);
        for (long i = 0; i < size; i++) lm += rd[i] * out[i];
        xd[j] = keep;
        double fd = (lp - lm) / (2 * h);
        nonzero += fd != 0;
        EXPECT_MSG(fabs(dx[j] - fd) <= 2e-3 * fabs(fd) + 1e-4, "dx[%ld] = %.7g, finite difference %.7g", j, dx[j], fd);
    }
    EXPECT(nonzero > 3);
    plan_destroy(p);
    free(x), free(dx), free(d), free(rd), free(xd), free(w), free(buf), free(out);
    model_destroy(m);
}

/* An inference plan (BN folded into the convs, buffers reused) and a backward plan (every
 * activation kept) give the same eval-mode logits; repeated forwards are bit-identical. */
static void test_inference_plan_matches_backward_plan(void)
{
    const struct setup *s = &setups[0];
    struct model *m = make(s, 17);
    REQUIRE(m);
    int in_ch = m->cfg.in_ch;
    long nx = (long)s->n * in_ch * s->f * s->t, nout = (long)s->n * m->cfg.classes;
    float *x = malloc((size_t)nx * sizeof *x), *a = malloc((size_t)nout * sizeof *a);
    struct rng r;
    rng_seed(&r, 1);
    rng_fill_normal(&r, x, nx, 0, 1);
    struct plan *pi, *pb;
    REQUIRE_OK(plan_create(&pi, m->g, s->n, in_ch, s->f, s->t, 0));
    REQUIRE_OK(plan_create(&pb, m->g, s->n, in_ch, s->f, s->t, PLAN_BACKWARD));
    EXPECT(plan_bytes(pi) < plan_bytes(pb));
    REQUIRE_OK(plan_forward(pi, s->n, x, 0, NULL));
    memcpy(a, plan_output(pi), (size_t)nout * sizeof *a);
    REQUIRE_OK(plan_forward(pi, s->n, x, 0, NULL));
    EXPECT(memcmp(a, plan_output(pi), (size_t)nout * sizeof *a) == 0);
    REQUIRE_OK(plan_forward(pb, s->n, x, 0, NULL));
    EXPECT_TENSOR_NEAR(plan_output(pb), a, nout, 1e-5, 1e-4);
    /* A smaller batch through the same plan. */
    REQUIRE_OK(plan_forward(pi, 1, x, 0, NULL));
    EXPECT_TENSOR_NEAR(plan_output(pi), a, m->cfg.classes, 1e-5, 1e-4);
    plan_destroy(pi);
    plan_destroy(pb);
    free(x), free(a);
    model_destroy(m);
}

/* Train-mode forward updates BN running statistics as PyTorch: momentum 0.1, unbiased
 * variance (checked on sepnet's bn0, whose input is the clip itself). */
static void test_running_statistics_update(void)
{
    const struct setup *s = &setups[1];
    struct model *m = make(s, 19);
    REQUIRE(m);
    struct graph *g = m->g;
    int n = s->n, F = s->f, T = s->t;
    float *x = malloc((size_t)n * F * T * sizeof *x);
    struct rng r;
    rng_seed(&r, 4);
    rng_fill_normal(&r, x, (long)n * F * T, 2, 3);
    float *mu = graph_tensor_data(g, graph_find_tensor(g, "bn0.running_mean"));
    float *var = graph_tensor_data(g, graph_find_tensor(g, "bn0.running_var"));
    double mu0 = mu[5], var0 = var[5], sum = 0, sum2 = 0;
    for (int k = 0; k < n; k++)
        for (int j = 0; j < T; j++) {
            double v = x[((long)k * F + 5) * T + j];
            sum += v, sum2 += v * v;
        }
    double cnt = (double)n * T, bm = sum / cnt, bv = (sum2 - cnt * bm * bm) / (cnt - 1);
    struct plan *p;
    REQUIRE_OK(plan_create(&p, g, n, 1, F, T, PLAN_BACKWARD));
    REQUIRE_OK(plan_forward(p, n, x, 1, NULL));
    EXPECT_NEAR(mu[5], 0.9 * mu0 + 0.1 * bm, 1e-5);
    EXPECT_NEAR(var[5], 0.9 * var0 + 0.1 * bv, 1e-4);
    plan_destroy(p);
    free(x);
    model_destroy(m);
}

/* The train-mode BN fed by precomputed sums (the conv epilogue's) equals the one that
 * sums itself, including the running statistics. */
static void test_batchnorm_from_conv_sums(void)
{
    struct bn_shape s = {3, 4, 50};
    long n = (long)s.outer * s.c * s.inner;
    float *x = malloc((size_t)n * sizeof *x), *y1 = malloc((size_t)n * sizeof *y1), *y2 = malloc((size_t)n * sizeof *y2);
    struct rng r;
    rng_seed(&r, 21);
    rng_fill_normal(&r, x, n, 0.5f, 2.0f);
    float gam[4] = {1, 0.5f, 2, -1}, bet[4] = {0, 1, -1, 0.25f}, m1[4] = {0}, v1[4] = {1, 1, 1, 1};
    float m2[4] = {0}, v2[4] = {1, 1, 1, 1}, sm1[4], si1[4], sm2[4], si2[4];
    double sums[8] = {0};
    for (int o = 0; o < s.outer; o++)
        for (int c = 0; c < s.c; c++)
            for (long i = 0; i < s.inner; i++) {
                double v = x[((long)o * s.c + c) * s.inner + i];
                sums[c] += v;
                sums[4 + c] += v * v;
            }
    batchnorm_forward_train(&s, y1, x, gam, bet, m1, v1, 0.1f, 1e-5f, sm1, si1, 1);
    batchnorm_forward_train_sums(&s, y2, x, gam, bet, m2, v2, 0.1f, 1e-5f, sm2, si2, 1, sums, sums + 4);
    EXPECT_TENSOR_NEAR(y2, y1, n, 1e-5, 1e-5);
    EXPECT_TENSOR_NEAR(m2, m1, 4, 1e-6, 1e-6);
    EXPECT_TENSOR_NEAR(v2, v1, 4, 1e-6, 1e-6);
    EXPECT_TENSOR_NEAR(si2, si1, 4, 1e-6, 1e-6);
    free(x), free(y1), free(y2);
}

static void test_plan_errors(void)
{
    struct model *m = make(&setups[1], 1);
    REQUIRE(m);
    struct plan *p = NULL;
    EXPECT(plan_create(&p, m->g, 2, 2, 12, 16, 0) == STATUS_MISMATCH);
    EXPECT(strstr(status_detail(), "channels") != NULL);
    EXPECT(plan_create(&p, m->g, 2, 1, 64, 16, 0) == STATUS_MISMATCH);
    EXPECT(strstr(status_detail(), "bn0") && strstr(status_detail(), "64"));
    EXPECT(plan_create(&p, m->g, 2, 1, 12, 1, 0) == STATUS_MISMATCH);
    EXPECT(p == NULL);
    REQUIRE_OK(plan_create(&p, m->g, 2, 1, 12, 16, 0));
    float x[3 * 12 * 16] = {0};
    EXPECT(plan_forward(p, 3, x, 0, NULL) == STATUS_INVALID);
    EXPECT(plan_backward(p, x, NULL) == STATUS_INVALID);
    plan_destroy(p);
    plan_destroy(NULL);
    model_destroy(m);
}

const struct test tests_graph[] = {
    TEST(test_forward_matches_double_interpreter),
    TEST(test_gradients_train_mode),
    TEST(test_gradients_eval_mode),
    TEST(test_gradients_with_pruning_masks),
    TEST(test_backward_from_intermediate_node),
    TEST(test_inference_plan_matches_backward_plan),
    TEST(test_running_statistics_update),
    TEST(test_batchnorm_from_conv_sums),
    TEST(test_plan_errors),
    {0},
};
