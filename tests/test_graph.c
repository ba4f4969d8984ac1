/* test_graph.c: whole models through plans: forward against the double-precision graph
 * interpreter, gradients against finite differences in double (damped, grouped, rolled,
 * masked, strided, dilated convs; BN in train and eval mode; residual fan-out), input
 * gradients from intermediate nodes, BN folding, plan errors. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/fs.h"
#include "basin/core/graph.h"
#include "basin/core/ops.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
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
    check_gradients(&setups[1], 1, 1); /* masked weights through sepnet's fused blocks */
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


/* Every node's output of one forward, copied (NULL where the plan does not keep it). */
static float **copy_outputs(const struct plan *p, const struct graph *g, int n)
{
    float **o = calloc((size_t)g->n_nodes, sizeof *o);
    for (int i = 0; i < g->n_nodes; i++) {
        const float *v = plan_node_output(p, i);
        int c, f, t;
        plan_node_shape(p, i, &c, &f, &t);
        if (!v) continue;
        long len = (long)n * c * f * t;
        o[i] = malloc((size_t)len * sizeof(float));
        memcpy(o[i], v, (size_t)len * sizeof(float));
    }
    return o;
}

static void free_outputs(float **o, int n)
{
    for (int i = 0; i < n; i++) free(o[i]);
    free(o);
}

/* PLAN_KEEP keeps every node's output readable, in eval mode too (where an inference plan
 * folds BN into the conv before it and never writes the conv's own output). */
static void test_keep_plan_outputs_in_eval(void)
{
    const struct setup *s = &setups[0];
    struct model *m = make(s, 23);
    REQUIRE(m);
    struct graph *g = m->g;
    int in_ch = m->cfg.in_ch;
    long nx = (long)s->n * in_ch * s->f * s->t;
    float *x = malloc((size_t)nx * sizeof *x);
    struct rng r;
    rng_seed(&r, 2);
    rng_fill_normal(&r, x, nx, 0, 1);
    struct plan *pk, *pb;
    REQUIRE_OK(plan_create(&pk, g, s->n, in_ch, s->f, s->t, PLAN_KEEP));
    REQUIRE_OK(plan_create(&pb, g, s->n, in_ch, s->f, s->t, PLAN_BACKWARD));
    /* Poison the keep plan's buffers with a train-mode pass on other data first. */
    float *x2 = malloc((size_t)nx * sizeof *x2);
    rng_fill_normal(&r, x2, nx, 5, 3);
    float *saved = malloc((size_t)g->store.n_buffers * sizeof(float));
    memcpy(saved, g->store.buf, (size_t)g->store.n_buffers * sizeof(float));
    REQUIRE_OK(plan_forward(pk, s->n, x2, 1, NULL));
    memcpy(g->store.buf, saved, (size_t)g->store.n_buffers * sizeof(float));
    REQUIRE_OK(plan_forward(pk, s->n, x, 0, NULL));
    REQUIRE_OK(plan_forward(pb, s->n, x, 0, NULL));
    int bad = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const float *a = plan_node_output(pk, i), *b = plan_node_output(pb, i);
        REQUIRE(a);
        if (!b) { /* a node the backward plan computes inside a fused group */
            EXPECT(plan_node_fused(pb, i) >= 0 && plan_node_fused(pk, i) < 0);
            continue;
        }
        int c, f, t;
        plan_node_shape(pk, i, &c, &f, &t);
        long len = (long)s->n * c * f * t;
        for (long j = 0; j < len; j++)
            if (!(fabs(a[j] - b[j]) <= 1e-4 + 1e-4 * fabs(b[j]))) {
                if (bad++ < 3)
                    test_fail(__FILE__, __LINE__, "node %d (%s %s)[%ld] = %g, backward plan %g", i,
                              graph_op_name(g->nodes[i].op), g->nodes[i].name, j, a[j], b[j]);
                break;
            }
    }
    plan_destroy(pk);
    plan_destroy(pb);
    free(x), free(x2), free(saved);
    model_destroy(m);
}

/* The output node is always readable through plan_node_output, also when it is a BN that
 * an inference plan folds into the conv before it. */
static void test_output_node_readable(void)
{
    struct graph *g = graph_create();
    REQUIRE(g);
    int in = graph_input(g, 2);
    int cv = graph_conv2d(g, "conv", in, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0);
    graph_batchnorm(g, "bn", cv, 0);
    REQUIRE_OK(graph_finish(g));
    struct rng r;
    rng_seed(&r, 3);
    rng_fill_normal(&r, g->store.w, g->store.n_params, 0, 0.5f);
    float x[2 * 2 * 5 * 6];
    rng_fill_normal(&r, x, 2 * 2 * 5 * 6, 0, 1);
    struct plan *p;
    REQUIRE_OK(plan_create(&p, g, 2, 2, 5, 6, 0));
    REQUIRE_OK(plan_forward(p, 2, x, 0, NULL));
    EXPECT(plan_node_output(p, g->output) == plan_output(p));
    EXPECT(plan_node_output(p, cv) == NULL);
    plan_destroy(p);
    graph_destroy(g);
}

/* A backward consumes its forward (gradients reuse the activations' memory): a second
 * backward is refused rather than run on overwritten activations, node outputs other than
 * the logits are no longer offered, and a new forward, after a full backward or one from an
 * intermediate node, gives exactly the first pass's gradients again. */
static void test_backward_needs_its_own_forward(void)
{
    const struct setup *s = &setups[0];
    struct model *m = make(s, 29);
    REQUIRE(m);
    struct graph *g = m->g;
    int in_ch = m->cfg.in_ch, n = s->n, tap = graph_find_node(g, "s2.b1.bn2");
    REQUIRE(tap > 0);
    long nx = (long)n * in_ch * s->f * s->t, nout = (long)n * m->cfg.classes;
    float *x = malloc((size_t)nx * sizeof *x), *dx1 = malloc((size_t)nx * sizeof *dx1);
    float *dx2 = malloc((size_t)nx * sizeof *dx2), *rw = malloc((size_t)nout * sizeof *rw);
    float *g1 = malloc((size_t)g->store.n_params * sizeof *g1);
    float *saved = malloc((size_t)g->store.n_buffers * sizeof(float));
    struct rng r;
    rng_seed(&r, 6);
    rng_fill_normal(&r, x, nx, 0, 1);
    rng_fill_normal(&r, rw, nout, 0, 1);
    int c, f, t;
    struct plan *p;
    REQUIRE_OK(plan_create(&p, g, n, in_ch, s->f, s->t, PLAN_BACKWARD));
    plan_node_shape(p, tap, &c, &f, &t);
    float *dtap = malloc((size_t)n * c * f * t * sizeof *dtap);
    rng_fill_normal(&r, dtap, (long)n * c * f * t, 0, 1);
    memcpy(saved, g->store.buf, (size_t)g->store.n_buffers * sizeof(float));
    for (int train = 0; train < 2; train++) {
        REQUIRE_OK(plan_forward(p, n, x, train, NULL));
        float **outs = copy_outputs(p, g, n);
        REQUIRE_OK(plan_backward(p, rw, dx1));
        memcpy(g1, g->store.g, (size_t)g->store.n_params * sizeof *g1);
        EXPECT(plan_backward(p, rw, dx2) == STATUS_INVALID);
        EXPECT(plan_backward_from(p, tap, dtap, dx2) == STATUS_INVALID);
        for (int i = 0; i < g->n_nodes; i++) {
            const float *v = plan_node_output(p, i);
            plan_node_shape(p, i, &c, &f, &t);
            EXPECT((v != NULL) == (i == g->output));
            if (v && outs[i])
                EXPECT_MSG(memcmp(v, outs[i], (size_t)n * c * f * t * sizeof(float)) == 0,
                           "train=%d: node %d changed by backward", train, i);
        }
        free_outputs(outs, g->n_nodes);
        for (int from_tap = 0; from_tap < 2; from_tap++) {
            REQUIRE_OK(plan_forward(p, n, x, train, NULL));
            if (from_tap) {
                REQUIRE_OK(plan_backward_from(p, tap, dtap, dx2));
                REQUIRE_OK(plan_forward(p, n, x, train, NULL));
            }
            REQUIRE_OK(plan_backward(p, rw, dx2));
            EXPECT(memcmp(dx2, dx1, (size_t)nx * sizeof *dx1) == 0);
            EXPECT(memcmp(g->store.g, g1, (size_t)g->store.n_params * sizeof *g1) == 0);
        }
        memcpy(g->store.buf, saved, (size_t)g->store.n_buffers * sizeof(float));
    }
    plan_destroy(p);
    free(x), free(dx1), free(dx2), free(rw), free(g1), free(saved), free(dtap);
    model_destroy(m);
}

/* The thread count may change between forward and backward: the plan re-plans its scratch
 * (under ASan a scratch sized for fewer threads overflows). */
static void test_threads_change_between_forward_and_backward(void)
{
    const struct setup *s = &setups[2];
    struct model *m = make(s, 31);
    REQUIRE(m);
    struct graph *g = m->g;
    int in_ch = m->cfg.in_ch, n = s->n;
    long nx = (long)n * in_ch * s->f * s->t, nout = (long)n * m->cfg.classes;
    float *x = malloc((size_t)nx * sizeof *x), *dx = malloc((size_t)nx * sizeof *dx);
    float *dx1 = malloc((size_t)nx * sizeof *dx1), *rw = malloc((size_t)nout * sizeof *rw);
    struct rng r;
    rng_seed(&r, 8);
    rng_fill_normal(&r, x, nx, 0, 1);
    rng_fill_normal(&r, rw, nout, 0, 1);
    int saved = threads_get();
    threads_set(1);
    struct plan *p;
    REQUIRE_OK(plan_create(&p, g, n, in_ch, s->f, s->t, PLAN_BACKWARD));
    REQUIRE_OK(plan_forward(p, n, x, 0, NULL));
    REQUIRE_OK(plan_backward(p, rw, dx1));
    REQUIRE_OK(plan_forward(p, n, x, 0, NULL));
    threads_set(6);
    REQUIRE_OK(plan_backward(p, rw, dx));
    threads_set(saved);
    EXPECT_TENSOR_NEAR(dx, dx1, nx, 1e-6, 1e-4);
    plan_destroy(p);
    free(x), free(dx), free(dx1), free(rw);
    model_destroy(m);
}


static void *toggle_threads(void *arg)
{
    int *stop = arg;
    for (int k = 0; !__atomic_load_n(stop, __ATOMIC_RELAXED); k++) threads_set(k % 2 ? 1 : 6);
    return NULL;
}

/* threads_set() from another thread (the UI's `set threads` while a job trains) during
 * forward and backward passes: each pass keeps the count its scratch was sized for (under
 * ASan a kernel running more threads than the scratch holds overflows it). */
static void test_threads_change_during_passes(void)
{
    const struct setup *s = &setups[2];
    struct model *m = make(s, 37);
    REQUIRE(m);
    struct graph *g = m->g;
    int in_ch = m->cfg.in_ch, n = s->n;
    long nx = (long)n * in_ch * s->f * s->t, nout = (long)n * m->cfg.classes;
    float *x = malloc((size_t)nx * sizeof *x), *rw = malloc((size_t)nout * sizeof *rw);
    struct rng r;
    rng_seed(&r, 10);
    rng_fill_normal(&r, x, nx, 0, 1);
    rng_fill_normal(&r, rw, nout, 0, 1);
    int saved = threads_get();
    threads_set(1);
    struct plan *p;
    REQUIRE_OK(plan_create(&p, g, n, in_ch, s->f, s->t, PLAN_BACKWARD));
    int stop = 0;
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, toggle_threads, &stop) == 0);
    for (int k = 0; k < 20; k++) {
        EXPECT_EQ_INT(plan_forward(p, n, x, 0, NULL), 0);
        EXPECT_EQ_INT(plan_backward(p, rw, NULL), 0);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    threads_set(saved);
    plan_destroy(p);
    free(x), free(rw);
    model_destroy(m);
}


/* add(a, a) (a residual sum of a node with itself) is a valid graph: its backward sends
 * twice the gradient to a. Checked against the same model with the conv's weight doubled
 * and no add. */
static void test_add_of_a_node_with_itself(void)
{
    struct graph *g[2];
    for (int k = 0; k < 2; k++) {
        g[k] = graph_create();
        REQUIRE(g[k]);
        int in = graph_input(g[k], 2);
        int cv = graph_conv2d(g[k], "conv", in, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0);
        int a = k == 0 ? graph_add(g[k], cv, cv, 1) : graph_relu(g[k], cv);
        graph_linear(g[k], "fc", graph_mean(g[k], graph_mean(g[k], a, 2), 3), 2, 1);
        REQUIRE_OK(graph_finish(g[k]));
        struct rng r;
        rng_seed(&r, 4);
        rng_fill_normal(&r, g[k]->store.w, g[k]->store.n_params, 0, 0.5f);
    }
    long nw = g[0]->tensors[0].numel;
    for (long i = 0; i < nw; i++) g[1]->store.w[i] = 2 * g[0]->store.w[i];
    float x[2 * 2 * 5 * 6], dout[4] = {1, -2, 0.5f, 3}, dx[2][2 * 2 * 5 * 6];
    struct rng r;
    rng_seed(&r, 5);
    rng_fill_normal(&r, x, 2 * 2 * 5 * 6, 0, 1);
    const float *out[2];
    struct plan *p[2];
    for (int k = 0; k < 2; k++) {
        REQUIRE_OK(plan_create(&p[k], g[k], 2, 2, 5, 6, PLAN_BACKWARD));
        REQUIRE_OK(plan_forward(p[k], 2, x, 1, NULL));
        out[k] = plan_output(p[k]);
        REQUIRE_OK(plan_backward(p[k], dout, dx[k]));
    }
    EXPECT_TENSOR_NEAR(out[0], out[1], 4, 1e-6, 1e-5);
    EXPECT_TENSOR_NEAR(dx[0], dx[1], 2 * 2 * 5 * 6, 1e-6, 1e-5);
    float dw1[3 * 2 * 3 * 3];
    for (long i = 0; i < nw; i++) dw1[i] = 2 * g[1]->store.g[i];
    EXPECT_TENSOR_NEAR(g[0]->store.g, dw1, nw, 1e-6, 1e-5);
    for (int k = 0; k < 2; k++) {
        plan_destroy(p[k]);
        graph_destroy(g[k]);
    }
}


/* A batch smaller than planned (train mode, dropout on) gives what a plan of exactly that
 * batch gives: logits, input and parameter gradients, running statistics. */
static void test_smaller_batch_than_planned(void)
{
    for (size_t k = 0; k < sizeof setups / sizeof setups[0]; k++) {
        const struct setup *s = &setups[k];
        struct model *m = make(s, 41);
        REQUIRE(m);
        struct graph *g = m->g;
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].op == OP_DROPOUT) g->nodes[i].p = 0.2f;
        int in_ch = m->cfg.in_ch, n = s->n - 1 > 0 ? s->n - 1 : 1;
        long nx = (long)n * in_ch * s->f * s->t, nout = (long)n * m->cfg.classes;
        float *x = malloc((size_t)nx * sizeof *x), *rw = malloc((size_t)nout * sizeof *rw);
        float *dx[2], *gr[2], *bf[2], *lo[2];
        long np = g->store.n_params, nb = g->store.n_buffers;
        float *buf0 = malloc((size_t)nb * sizeof(float));
        memcpy(buf0, g->store.buf, (size_t)nb * sizeof(float));
        struct rng r;
        rng_seed(&r, 12);
        rng_fill_normal(&r, x, nx, 0, 1);
        rng_fill_normal(&r, rw, nout, 0, 1);
        for (int big = 0; big < 2; big++) {
            struct plan *p;
            REQUIRE_OK(plan_create(&p, g, n + 3 * big, in_ch, s->f, s->t, PLAN_BACKWARD));
            struct rng dr;
            rng_seed(&dr, 99);
            memcpy(g->store.buf, buf0, (size_t)nb * sizeof(float));
            REQUIRE_OK(plan_forward(p, n, x, 1, &dr));
            lo[big] = malloc((size_t)nout * sizeof(float));
            memcpy(lo[big], plan_output(p), (size_t)nout * sizeof(float));
            dx[big] = malloc((size_t)nx * sizeof(float));
            REQUIRE_OK(plan_backward(p, rw, dx[big]));
            gr[big] = malloc((size_t)np * sizeof(float));
            memcpy(gr[big], g->store.g, (size_t)np * sizeof(float));
            bf[big] = malloc((size_t)nb * sizeof(float));
            memcpy(bf[big], g->store.buf, (size_t)nb * sizeof(float));
            plan_destroy(p);
        }
        EXPECT_TENSOR_NEAR(lo[1], lo[0], nout, 1e-6, 1e-5);
        EXPECT_TENSOR_NEAR(dx[1], dx[0], nx, 1e-6, 1e-5);
        EXPECT_TENSOR_NEAR(gr[1], gr[0], np, 1e-6, 1e-5);
        EXPECT_TENSOR_NEAR(bf[1], bf[0], nb, 1e-6, 1e-5);
        for (int big = 0; big < 2; big++) free(dx[big]), free(gr[big]), free(bf[big]), free(lo[big]);
        free(x), free(rw), free(buf0);
        model_destroy(m);
    }
}

/* Sepnet's fused blocks (depthwise pair + add + BN + relu + pool, the first block's 1x1
 * folded in) against the same graph planned without fusion: logits, running statistics,
 * every gradient, in train and eval mode; backward from a block's BN and from a fused
 * block's last node; the nodes a group hides are reported and not offered; less memory. */
static void test_fused_sepnet_matches_unfused(void)
{
    const struct setup *s = &setups[1];
    struct model *m = make(s, 43);
    REQUIRE(m);
    struct graph *g = m->g;
    int in_ch = m->cfg.in_ch, n = s->n;
    long nx = (long)n * in_ch * s->f * s->t, nout = (long)n * m->cfg.classes;
    long np = g->store.n_params, nb = g->store.n_buffers;
    float *x = malloc((size_t)nx * sizeof *x), *rw = malloc((size_t)nout * sizeof *rw);
    float *buf0 = malloc((size_t)nb * sizeof(float));
    memcpy(buf0, g->store.buf, (size_t)nb * sizeof(float));
    struct rng r;
    rng_seed(&r, 14);
    rng_fill_normal(&r, x, nx, 0, 1);
    rng_fill_normal(&r, rw, nout, 0, 1);
    int b1bn = graph_find_node(g, "b1.bn"), b2bn = graph_find_node(g, "b2.bn");
    int b1pool = graph_find_node(g, "b1.pool"), b1pw = graph_find_node(g, "b1.pw");
    int b2pw = graph_find_node(g, "b2.pw"), dwt = graph_find_node(g, "b1.dw_t");
    REQUIRE(b1bn > 0 && b2bn > 0 && b1pool > 0 && b1pw > 0 && b2pw > 0 && dwt > 0);
    struct plan *p[2];
    for (int k = 0; k < 2; k++) {
        struct plan_opts o = {.flags = PLAN_BACKWARD, .no_fuse = k};
        REQUIRE_OK(plan_create_opts(&p[k], g, n, in_ch, s->f, s->t, &o));
    }
    EXPECT(plan_bytes(p[0]) < plan_bytes(p[1]));
    EXPECT_EQ_INT(plan_node_fused(p[0], b1pw), b1pool); /* one input channel: folded */
    EXPECT_EQ_INT(plan_node_fused(p[0], dwt), b1pool);
    EXPECT_EQ_INT(plan_node_fused(p[0], b1bn), b1pool);
    EXPECT_EQ_INT(plan_node_fused(p[0], b1pool), b1pool);
    EXPECT_EQ_INT(plan_node_fused(p[0], b2pw), -1); /* four input channels: a conv of its own */
    EXPECT_EQ_INT(plan_node_fused(p[1], dwt), -1);
    struct conv2d_algo algo;
    EXPECT(plan_conv_algo(p[0], dwt, &algo) == STATUS_INVALID);
    REQUIRE_OK(plan_conv_algo(p[1], dwt, &algo));
    EXPECT_EQ_INT(algo.k[0], CONV2D_KERNEL_DEPTHWISE);
    for (int train = 0; train < 2; train++) {
        float *lo[2], *gr[2], *dx[2], *bf[2];
        for (int k = 0; k < 2; k++) {
            memcpy(g->store.buf, buf0, (size_t)nb * sizeof(float));
            REQUIRE_OK(plan_forward(p[k], n, x, train, NULL));
            EXPECT((plan_node_output(p[k], dwt) == NULL) == (k == 0));
            EXPECT((plan_node_output(p[k], b1bn) == NULL) == (k == 0));
            EXPECT(plan_node_output(p[k], b1pool) != NULL);
            lo[k] = malloc((size_t)nout * sizeof(float));
            memcpy(lo[k], plan_output(p[k]), (size_t)nout * sizeof(float));
            bf[k] = malloc((size_t)nb * sizeof(float));
            memcpy(bf[k], g->store.buf, (size_t)nb * sizeof(float));
            dx[k] = malloc((size_t)nx * sizeof(float));
            REQUIRE_OK(plan_backward(p[k], rw, dx[k]));
            gr[k] = malloc((size_t)np * sizeof(float));
            memcpy(gr[k], g->store.g, (size_t)np * sizeof(float));
        }
        EXPECT_TENSOR_NEAR(lo[0], lo[1], nout, 1e-5, 1e-4);
        EXPECT_TENSOR_NEAR(bf[0], bf[1], nb, 1e-6, 1e-5);
        EXPECT_TENSOR_NEAR(dx[0], dx[1], nx, 1e-5, 1e-3);
        double gmax = 0;
        for (long i = 0; i < np; i++) gmax = fmax(gmax, fabs(gr[1][i]));
        EXPECT_TENSOR_NEAR(gr[0], gr[1], np, 1e-4 * gmax, 1e-3);
        /* from a block's BN (the pooled group's BN has no buffer: read in place) and from
         * the second block's pool (a fused group's last node) */
        for (int tap_k = 0; tap_k < 2; tap_k++) {
            int tap = tap_k ? graph_find_node(g, "b2.pool") : b1bn, c, f, t;
            plan_node_shape(p[0], tap, &c, &f, &t);
            long nd = (long)n * c * f * t;
            float *d = malloc((size_t)nd * sizeof *d);
            rng_fill_normal(&r, d, nd, 0, 1);
            for (int k = 0; k < 2; k++) {
                memcpy(g->store.buf, buf0, (size_t)nb * sizeof(float));
                REQUIRE_OK(plan_forward(p[k], n, x, train, NULL));
                REQUIRE_OK(plan_backward_from(p[k], tap, d, dx[k]));
                memcpy(gr[k], g->store.g, (size_t)np * sizeof(float));
            }
            EXPECT_TENSOR_NEAR(dx[0], dx[1], nx, 1e-5, 1e-3);
            gmax = 0;
            for (long i = 0; i < np; i++) gmax = fmax(gmax, fabs(gr[1][i]));
            EXPECT_TENSOR_NEAR(gr[0], gr[1], np, 1e-4 * gmax, 1e-3);
            free(d);
        }
        for (int k = 0; k < 2; k++) free(lo[k]), free(gr[k]), free(dx[k]), free(bf[k]);
    }
    /* not from inside a group */
    REQUIRE_OK(plan_forward(p[0], n, x, 0, NULL));
    float *d = calloc((size_t)n * 64 * s->f * s->t, sizeof *d);
    EXPECT(plan_backward_from(p[0], dwt, d, NULL) == STATUS_INVALID);
    EXPECT(strstr(status_detail(), "fused") != NULL);
    free(d);
    for (int k = 0; k < 2; k++) plan_destroy(p[k]);
    memcpy(g->store.buf, buf0, (size_t)nb * sizeof(float));
    free(x), free(rw), free(buf0);
    model_destroy(m);
}

/* CP-ResNet's fusions in a training plan (a BN applied as the conv after it packs its
 * input, a BN applied as the residual add reads it, the add and its max pool in one pass)
 * against the same graph planned without fusion, with the direct kernels forced so that
 * the input prologue is taken: logits, running statistics and every gradient, train and
 * eval mode, and a backward from a BN whose output is not stored. */
static void test_fused_cpresnet_matches_unfused(void)
{
    const struct setup *s = &setups[0];
    struct model *m = make(s, 53);
    REQUIRE(m);
    struct graph *g = m->g;
    int in_ch = m->cfg.in_ch, n = s->n;
    long nx = (long)n * in_ch * s->f * s->t, nout = (long)n * m->cfg.classes;
    long np = g->store.n_params, nb = g->store.n_buffers;
    float *x = malloc((size_t)nx * sizeof *x), *rw = malloc((size_t)nout * sizeof *rw);
    float *buf0 = malloc((size_t)nb * sizeof(float));
    memcpy(buf0, g->store.buf, (size_t)nb * sizeof(float));
    struct rng r;
    rng_seed(&r, 16);
    rng_fill_normal(&r, x, nx, 0, 1);
    rng_fill_normal(&r, rw, nout, 0, 1);
    int bn1 = graph_find_node(g, "s1.b1.bn1"), bn2 = graph_find_node(g, "s1.b1.bn2");
    int pool = graph_find_node(g, "s1.b1.pool");
    REQUIRE(bn1 > 0 && bn2 > 0 && pool > 0);
    struct plan *p[2];
    for (int k = 0; k < 2; k++) {
        struct plan_opts o = {.flags = PLAN_BACKWARD, .no_fuse = k,
                              .conv_kernel = CONV2D_KERNEL_DIRECT_AVX2};
        REQUIRE_OK(plan_create_opts(&p[k], g, n, in_ch, s->f, s->t, &o));
    }
    EXPECT(plan_bytes(p[0]) < plan_bytes(p[1]));
    EXPECT_EQ_INT(plan_node_fused(p[0], pool - 1), pool); /* the add */
    EXPECT_EQ_INT(plan_node_fused(p[0], bn2), pool);
    for (int train = 0; train < 2; train++) {
        float *lo[2], *gr[2], *dx[2], *bf[2];
        for (int k = 0; k < 2; k++) {
            memcpy(g->store.buf, buf0, (size_t)nb * sizeof(float));
            REQUIRE_OK(plan_forward(p[k], n, x, train, NULL));
            EXPECT((plan_node_output(p[k], bn1) == NULL) == (k == 0)); /* applied by conv2 */
            lo[k] = malloc((size_t)nout * sizeof(float));
            memcpy(lo[k], plan_output(p[k]), (size_t)nout * sizeof(float));
            bf[k] = malloc((size_t)nb * sizeof(float));
            memcpy(bf[k], g->store.buf, (size_t)nb * sizeof(float));
            dx[k] = malloc((size_t)nx * sizeof(float));
            REQUIRE_OK(plan_backward(p[k], rw, dx[k]));
            gr[k] = malloc((size_t)np * sizeof(float));
            memcpy(gr[k], g->store.g, (size_t)np * sizeof(float));
        }
        EXPECT_TENSOR_NEAR(lo[0], lo[1], nout, 1e-5, 1e-4);
        EXPECT_TENSOR_NEAR(bf[0], bf[1], nb, 1e-6, 1e-5);
        double dmax = 0, gmax = 0;
        for (long i = 0; i < nx; i++) dmax = fmax(dmax, fabs(dx[1][i]));
        for (long i = 0; i < np; i++) gmax = fmax(gmax, fabs(gr[1][i]));
        EXPECT_TENSOR_NEAR(dx[0], dx[1], nx, 1e-4 * dmax, 1e-3);
        EXPECT_TENSOR_NEAR(gr[0], gr[1], np, 1e-4 * gmax, 1e-3);
        /* from a BN whose output the fused plan does not store */
        int c, f, t;
        plan_node_shape(p[0], bn1, &c, &f, &t);
        long nd = (long)n * c * f * t;
        float *d = malloc((size_t)nd * sizeof *d);
        rng_fill_normal(&r, d, nd, 0, 1);
        for (int k = 0; k < 2; k++) {
            memcpy(g->store.buf, buf0, (size_t)nb * sizeof(float));
            REQUIRE_OK(plan_forward(p[k], n, x, train, NULL));
            REQUIRE_OK(plan_backward_from(p[k], bn1, d, dx[k]));
        }
        dmax = 0;
        for (long i = 0; i < nx; i++) dmax = fmax(dmax, fabs(dx[1][i]));
        EXPECT_TENSOR_NEAR(dx[0], dx[1], nx, 1e-4 * dmax, 1e-3);
        free(d);
        for (int k = 0; k < 2; k++) free(lo[k]), free(gr[k]), free(dx[k]), free(bf[k]);
    }
    for (int k = 0; k < 2; k++) plan_destroy(p[k]);
    memcpy(g->store.buf, buf0, (size_t)nb * sizeof(float));
    free(x), free(rw), free(buf0);
    model_destroy(m);
}

/* A plan keeps the thread count and kernels it was made with: threads_set() meanwhile
 * changes neither; a forced kernel is what plan_conv_algo reports where it runs, and gives
 * the same logits as the measured choice. */
static void test_plan_opts_fix_threads_and_kernels(void)
{
    const struct setup *s = &setups[0];
    struct model *m = make(s, 47);
    REQUIRE(m);
    struct graph *g = m->g;
    int in_ch = m->cfg.in_ch, n = s->n, saved = threads_get();
    long nx = (long)n * in_ch * s->f * s->t, nout = (long)n * m->cfg.classes;
    float *x = malloc((size_t)nx * sizeof *x), *lo = malloc((size_t)nout * sizeof *lo);
    struct rng r;
    rng_seed(&r, 15);
    rng_fill_normal(&r, x, nx, 0, 1);
    struct plan *p;
    struct plan_opts o = {.flags = PLAN_BACKWARD, .n_threads = 2};
    threads_set(1);
    REQUIRE_OK(plan_create_opts(&p, g, n, in_ch, s->f, s->t, &o));
    EXPECT_EQ_INT(plan_threads(p), 2);
    threads_set(5);
    REQUIRE_OK(plan_forward(p, n, x, 0, NULL));
    EXPECT_EQ_INT(plan_threads(p), 2);
    memcpy(lo, plan_output(p), (size_t)nout * sizeof *lo);
    plan_destroy(p);
    threads_set(saved);
    int stem = graph_find_node(g, "stem.conv"), c1 = graph_find_node(g, "s1.b1.conv1");
    for (int k = CONV2D_KERNEL_GEMM; k < CONV2D_KERNEL_COUNT; k++) {
        struct plan_opts f = {.conv_kernel = (enum conv2d_kernel)k};
        REQUIRE_OK(plan_create_opts(&p, g, n, in_ch, s->f, s->t, &f));
        EXPECT_EQ_INT(plan_threads(p), saved);
        struct conv2d_algo a, st;
        REQUIRE_OK(plan_conv_algo(p, c1, &a));
        REQUIRE_OK(plan_conv_algo(p, stem, &st));
        for (int pass = 0; pass < CONV2D_PASSES; pass++) {
            EXPECT(a.k[pass] != CONV2D_KERNEL_AUTO && st.k[pass] != CONV2D_KERNEL_AUTO);
            if (k == CONV2D_KERNEL_GEMM) EXPECT_EQ_INT(a.k[pass], CONV2D_KERNEL_GEMM);
            if (k == CONV2D_KERNEL_DIRECT_AVX2) EXPECT_EQ_INT(a.k[pass], CONV2D_KERNEL_DIRECT_AVX2);
            /* the stem has stride 2: the direct kernels run its forward only (its phases) */
            if (pass == CONV2D_FORWARD && k == CONV2D_KERNEL_DIRECT_AVX2)
                EXPECT_EQ_INT(st.k[pass], __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                                              ? CONV2D_KERNEL_DIRECT_AVX2 : CONV2D_KERNEL_GEMM);
            if (pass != CONV2D_FORWARD) EXPECT(st.k[pass] != CONV2D_KERNEL_DIRECT_AVX2);
        }
        REQUIRE_OK(plan_forward(p, n, x, 0, NULL));
        EXPECT_TENSOR_NEAR(plan_output(p), lo, nout, 1e-5, 1e-4);
        plan_destroy(p);
    }
    struct plan_opts bad = {.n_threads = -1};
    EXPECT(plan_create_opts(&p, g, n, in_ch, s->f, s->t, &bad) == STATUS_INVALID);
    free(x), free(lo);
    model_destroy(m);
}

/* conv2d_tune remembers its choices in the cache folder, one text line per shape: a line
 * written there is what a plan of that shape then runs (a kernel that cannot run the
 * shape falls back to the default), and a measured shape is written down. */
static void test_conv_tune_cache(void)
{
    char *saved = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    setenv("XDG_CACHE_HOME", test_path("cache"), 1);
    char dir[4096], path[4096 + 300];
    snprintf(dir, sizeof dir, "%s/basin/kernels", test_path("cache"));
    REQUIRE_OK(fs_mkdir_p(dir));
    /* the file name: the CPU model in one word */
    char word[256];
    size_t k = 0;
    for (const char *c = conv2d_cpu_model(); *c && k + 1 < sizeof word; c++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9');
        if (ok) word[k++] = *c;
        else if (k && word[k - 1] != '-') word[k++] = '-';
    }
    while (k && word[k - 1] == '-') k--;
    word[k] = 0;
    snprintf(path, sizeof path, "%s/%s.v3.txt", dir, word); /* conv2d_tune.c's TUNE_FILE_VERSION */
    /* shapes no other test plans: 36 -> 36 and 44 -> 44, 3x3, 40 x 61 */
    struct conv2d_shape a = {.n = 2, .ci = 36, .fi = 40, .ti = 61, .co = 36, .kf = 3, .kt = 3,
                             .sf = 1, .st = 1, .pf = 1, .pt = 1, .df = 1, .dt = 1, .groups = 1};
    struct conv2d_shape b = a;
    b.ci = b.co = 44;
    REQUIRE_OK(conv2d_shape_init(&a));
    REQUIRE_OK(conv2d_shape_init(&b));
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fprintf(f, "# a comment\ni36 o36 f40 t61 k3x3 s1x1 p1x1 d1x1 g1 n2 = gemm depthwise direct-avx2\n"
               "garbage line\n");
    fclose(f);
    struct conv2d_algo al;
    REQUIRE_OK(conv2d_tune(&a, 2, 0, &al));
    EXPECT_EQ_INT(al.k[0], CONV2D_KERNEL_GEMM);
    EXPECT_EQ_INT(al.k[1], conv2d_kernel_default(&a, CONV2D_BACKWARD_DATA)); /* cannot run */
    EXPECT_EQ_INT(al.k[2], CONV2D_KERNEL_DIRECT_AVX2);
    REQUIRE_OK(conv2d_tune(&b, 2, 0, &al)); /* measured, then written down */
    struct conv2d_algo again;
    REQUIRE_OK(conv2d_tune(&b, 2, 0, &again));
    EXPECT(memcmp(&al, &again, sizeof al) == 0);
    f = fopen(path, "r");
    REQUIRE(f);
    char line[256], want[300];
    snprintf(want, sizeof want, "i44 o44 f40 t61 k3x3 s1x1 p1x1 d1x1 g1 n2 = %s %s %s\n",
             conv2d_kernel_name(al.k[0]), conv2d_kernel_name(al.k[1]), conv2d_kernel_name(al.k[2]));
    int found_a = 0, found_b = 0;
    while (fgets(line, sizeof line, f)) {
        found_a |= !strncmp(line, "i36 o36 f40 t61", 15);
        found_b |= !strcmp(line, want);
    }
    fclose(f);
    EXPECT(found_a && found_b);
    for (int pass = 0; pass < CONV2D_PASSES; pass++)
        EXPECT(conv2d_kernel_runs(&b, (enum conv2d_pass)pass, al.k[pass]));
    if (saved) setenv("XDG_CACHE_HOME", saved, 1);
    else unsetenv("XDG_CACHE_HOME");
    free(saved);
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
    /* the layer and the smallest input are named */
    EXPECT_STR(status_detail(), "input of 12 x 1 is too small: b1.pool gets a 12 x 1 map, too small "
                                "for its 2x2 kernel (the model takes inputs of at least 4 x 4)");
    /* A plan bigger than any machine is refused before anything is allocated. */
    EXPECT(plan_create(&p, m->g, 1000, 1, 12, 10000000, PLAN_BACKWARD) == STATUS_NOMEM);
    EXPECT(p == NULL);
    EXPECT_MSG(strstr(status_detail(), "a plan for 1000 x 1 x 12 x 10000000 needs about") &&
               strstr(status_detail(), "TiB") && strstr(status_detail(), "available"),
               "%s", status_detail());
    EXPECT(m->g->store.g == NULL); /* refused before the training state too */
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
    TEST(test_keep_plan_outputs_in_eval),
    TEST(test_output_node_readable),
    TEST(test_backward_needs_its_own_forward),
    TEST(test_threads_change_between_forward_and_backward),
    TEST(test_threads_change_during_passes),
    TEST(test_add_of_a_node_with_itself),
    TEST(test_smaller_batch_than_planned),
    TEST(test_fused_sepnet_matches_unfused),
    TEST(test_fused_cpresnet_matches_unfused),
    TEST(test_plan_opts_fix_threads_and_kernels),
    TEST(test_conv_tune_cache),
    {0},
};
