/* test_hessian.c: curvature (src/analysis/hessian.c): power iteration and Hutchinson on
 * explicit matrices; a softmax regression, whose Hessian is known in closed form
 * (mean over clips of (diag(p) - p p^T) (x) phi phi^T, phi = [x; 1]); exact products equal
 * finite differences of gradients on a smooth graph of every smooth op, and are symmetric;
 * PyTorch's exact Hessian of the model fixtures (tests/data/hessian, made by
 * make_fixtures.py there): products, eigenvalues, trace, per-tensor blocks; weights left as
 * they were; a stop keeps what was done; the command. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/analysis/hessian.h"
#include "basin/core/graph.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/data/dataset.h"
#include "basin/dsp/frontend.h"
#include "basin/model/model.h"
#include "basin/model/safetensors.h"
#include "basin/train/pipeline.h"
#include "test.h"
#include "util.h"

/* ----------------------------------------------------------------------------- helpers */

/* Eigenvalues of the symmetric n x n matrix a (destroyed) by cyclic Jacobi rotations. */
static void jacobi_eigenvalues(double *a, int n, double *ev)
{
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
        if (off < 1e-26) break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                if (fabs(a[p * n + q]) < 1e-300) continue;
                double theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q]);
                double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; k++) {
                    double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq, a[k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) {
                    double apk = a[p * n + k], aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk, a[q * n + k] = s * apk + c * aqk;
                }
            }
    }
    for (int i = 0; i < n; i++) ev[i] = a[i * n + i];
}

/* The k eigenvalues of largest magnitude, largest first. */
static void top_by_magnitude(double *ev, int n, int k)
{
    for (int i = 0; i < k; i++)
        for (int j = i + 1; j < n; j++)
            if (fabs(ev[j]) > fabs(ev[i])) {
                double t = ev[i];
                ev[i] = ev[j], ev[j] = t;
            }
}

static double rel_err(const double *a, const double *b, long n)
{
    double d = 0, s = 0;
    for (long i = 0; i < n; i++) d += (a[i] - b[i]) * (a[i] - b[i]), s += b[i] * b[i];
    return sqrt(d / (s > 0 ? s : 1));
}

/* An explicit matrix as an operator. */
struct mat {
    const double *a;
    long n;
};

static int mat_op(void *user, double *v, double *y)
{
    const struct mat *m = user;
    for (long i = 0; i < m->n; i++) {
        double s = 0;
        for (long j = 0; j < m->n; j++) s += m->a[i * m->n + j] * v[j];
        y[i] = s;
    }
    return 0;
}

/* ----------------------------------------------------------------------------- algorithms */

/* Power iteration with deflation finds eigenvalues by magnitude with their signs; the
 * trace of a diagonal matrix is exact from one Rademacher probe (z^T D z = tr D), blocks
 * too; on a dense matrix the mean lies within a few standard errors of the trace and the
 * standard error matches Var(z^T A z) = 2 (|A|_F^2 - sum A_ii^2). */
static void test_algorithms_on_matrices(void)
{
    enum { N = 40 };
    static double a[N * N], q[N * N], ev[N];
    struct rng r;
    rng_seed(&r, 5);
    /* diagonal */
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++) a[i * N + j] = 0;
        a[i * N + i] = i == 7 ? -9 : i == 20 ? 8 : i == 33 ? 6.5 : rng_uniform(&r) * 4 - 2;
    }
    struct mat m = {a, N};
    double eig[3], tr, se, bt[2], bse[2];
    int used = 0, it[3], conv[3];
    REQUIRE_OK(hessian_power(mat_op, &m, N, 3, 2000, 1e-12, 1, eig, NULL, it, conv, NULL, NULL));
    EXPECT_NEAR(eig[0], -9, 1e-8);
    EXPECT_NEAR(eig[1], 8, 1e-8);
    EXPECT_NEAR(eig[2], 6.5, 1e-8);
    EXPECT(conv[0] && conv[1] && conv[2]);
    const long start[2] = {0, 10}, len[2] = {10, 30};
    REQUIRE_OK(hessian_hutchinson(mat_op, &m, N, 1, -1, 3, 2, start, len, &tr, &se, bt, bse, &used, NULL, NULL));
    double want = 0, want0 = 0;
    for (int i = 0; i < N; i++) want += a[i * N + i], want0 += i < 10 ? a[i * N + i] : 0;
    EXPECT_EQ_INT(used, 1);
    EXPECT_NEAR(tr, want, 1e-12);
    EXPECT_NEAR(bt[0], want0, 1e-12);
    EXPECT_NEAR(bt[1], want - want0, 1e-12);
    EXPECT(isnan(se));
    /* dense: Q diag(lambda) Q^T with Q from Gram-Schmidt on random vectors */
    for (int i = 0; i < N * N; i++) q[i] = rng_normal(&r);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < i; j++) {
            double c = 0;
            for (int k = 0; k < N; k++) c += q[i * N + k] * q[j * N + k];
            for (int k = 0; k < N; k++) q[i * N + k] -= c * q[j * N + k];
        }
        double s = 0;
        for (int k = 0; k < N; k++) s += q[i * N + k] * q[i * N + k];
        for (int k = 0; k < N; k++) q[i * N + k] /= sqrt(s);
    }
    for (int i = 0; i < N; i++) ev[i] = i == 0 ? 10 : i == 1 ? -7 : i == 2 ? 5 : rng_uniform(&r) * 2 - 1;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < N; k++) s += q[k * N + i] * ev[k] * q[k * N + j];
            a[i * N + j] = s;
        }
    REQUIRE_OK(hessian_power(mat_op, &m, N, 3, 5000, 1e-13, 2, eig, NULL, it, conv, NULL, NULL));
    EXPECT_NEAR(eig[0], 10, 1e-6);
    EXPECT_NEAR(eig[1], -7, 1e-6);
    EXPECT_NEAR(eig[2], 5, 1e-6);
    double trace = 0, fro = 0, diag = 0;
    for (int i = 0; i < N; i++) {
        trace += a[i * N + i], diag += a[i * N + i] * a[i * N + i];
        for (int j = 0; j < N; j++) fro += a[i * N + j] * a[i * N + j];
    }
    REQUIRE_OK(hessian_hutchinson(mat_op, &m, N, 4000, -1, 4, 0, NULL, NULL, &tr, &se, NULL, NULL, &used, NULL, NULL));
    EXPECT_EQ_INT(used, 4000);
    EXPECT_MSG(fabs(tr - trace) < 4 * se, "trace %g, exact %g, se %g", tr, trace, se);
    double se_theory = sqrt(2 * (fro - diag) / 4000);
    EXPECT_MSG(fabs(se / se_theory - 1) < 0.1, "se %g, theory %g", se, se_theory);
    /* the standard error stops the probes: at least 10 */
    REQUIRE_OK(hessian_hutchinson(mat_op, &m, N, 4000, 0.5, 4, 0, NULL, NULL, &tr, &se, NULL, NULL, &used, NULL, NULL));
    EXPECT(used >= 10 && used < 4000 && se <= 0.5 * fabs(tr));
}

/* ----------------------------------------------------------------------------- softmax regression */

enum { SR_C = 4, SR_M = 3, SR_N = 20, SR_P = SR_M * SR_C + SR_M };

struct softreg {
    struct graph *g;
    float x[SR_N * SR_C];
    int y[SR_N];
    double H[SR_P * SR_P];   /* in the store's order */
    double grad[SR_P];
    double loss;
};

/* y = W x + b on (C, 1, 1) inputs, and its loss's gradient and Hessian in closed form. */
static int softreg_make(struct softreg *s, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->g = graph_create();
    if (!s->g) return 0;
    int in = graph_input(s->g, SR_C);
    graph_linear(s->g, "fc", in, SR_M, 1);
    if (graph_finish(s->g)) return 0;
    struct rng r;
    rng_seed(&r, seed);
    rng_fill_normal(&r, s->g->store.w, s->g->store.n_params, 0, 0.8f);
    rng_fill_normal(&r, s->x, SR_N * SR_C, 0, 1);
    for (int i = 0; i < SR_N; i++) s->y[i] = (int)rng_below(&r, SR_M);
    const long ow = s->g->tensors[graph_find_tensor(s->g, "fc.weight")].offset;
    const long ob = s->g->tensors[graph_find_tensor(s->g, "fc.bias")].offset;
    const float *w = s->g->store.w;
    for (int n = 0; n < SR_N; n++) {
        double z[SR_M], p[SR_M], phi[SR_C + 1], mx = -1e300, sum = 0;
        for (int j = 0; j < SR_C; j++) phi[j] = s->x[n * SR_C + j];
        phi[SR_C] = 1;
        for (int k = 0; k < SR_M; k++) {
            z[k] = w[ob + k];
            for (int j = 0; j < SR_C; j++) z[k] += (double)w[ow + k * SR_C + j] * phi[j];
            if (z[k] > mx) mx = z[k];
        }
        for (int k = 0; k < SR_M; k++) sum += p[k] = exp(z[k] - mx);
        for (int k = 0; k < SR_M; k++) p[k] /= sum;
        s->loss += -log(p[s->y[n]]) / SR_N;
        /* the index of W[k][j] (j < C) or b[k] (j = C) in the store */
#define IDX(k, j) ((j) < SR_C ? ow + (k) * SR_C + (j) : ob + (k))
        for (int k = 0; k < SR_M; k++)
            for (int j = 0; j <= SR_C; j++) {
                s->grad[IDX(k, j)] += (p[k] - (k == s->y[n])) * phi[j] / SR_N;
                for (int k2 = 0; k2 < SR_M; k2++)
                    for (int j2 = 0; j2 <= SR_C; j2++)
                        s->H[IDX(k, j) * SR_P + IDX(k2, j2)] += ((k == k2) * p[k] - p[k] * p[k2]) * phi[j] * phi[j2] / SR_N;
            }
#undef IDX
    }
    return 1;
}

/* An operator that multiplies through hessian_hvp and adds up each probe's quadratic form
 * z^T H z with the closed-form H: what Hutchinson's estimate over those probes must be. */
struct probe_rec {
    struct hessian *h;
    const double *H;
    int n;
    double sum, sum2;
};

static int probe_rec_op(void *user, double *v, double *y)
{
    struct probe_rec *r = user;
    int s = hessian_hvp(r->h, -1, v, y, NULL);
    if (s) return s;
    double q = 0;
    for (int i = 0; i < SR_P; i++)
        for (int j = 0; j < SR_P; j++) q += v[i] * r->H[i * SR_P + j] * v[j];
    r->n++, r->sum += q, r->sum2 += q * q;
    return 0;
}

/* The Hessian, eigenvalues, trace, per-tensor traces, gradient and loss of a softmax
 * regression against the closed form, exact and by finite differences. */
static void test_softmax_regression(void)
{
    static struct softreg s;
    REQUIRE(softreg_make(&s, 3));
    REQUIRE(s.g->store.n_params == SR_P);
    float w0[SR_P];
    memcpy(w0, s.g->store.w, sizeof w0);
    for (int fd = 0; fd < 2; fd++) {
        struct hessian *h;
        const struct hessian_opts o = {.fd = fd, .batch = 7, .n_threads = 1};
        REQUIRE_OK(hessian_create(&h, s.g, SR_N, SR_C, 1, 1, s.x, s.y, &o));
        double loss, acc, g[SR_P], v[SR_P], v0[SR_P], hv[SR_P], want[SR_P];
        REQUIRE_OK(hessian_loss_grad(h, &loss, &acc, g, NULL));
        EXPECT_NEAR(loss, s.loss, 1e-6);
        EXPECT_MSG(rel_err(g, s.grad, SR_P) < 1e-5, "gradient: %g", rel_err(g, s.grad, SR_P));
        struct rng r;
        rng_seed(&r, 8);
        for (int k = 0; k < 5; k++) {
            for (int i = 0; i < SR_P; i++) v0[i] = v[i] = rng_normal(&r);
            REQUIRE_OK(hessian_hvp(h, -1, v, hv, NULL));
            /* the vector used is the one given, rounded (to float, or by the float weights) */
            EXPECT(rel_err(v, v0, SR_P) < (fd ? 1e-3 : 1e-7));
            for (int i = 0; i < SR_P; i++) {
                want[i] = 0;
                for (int j = 0; j < SR_P; j++) want[i] += s.H[i * SR_P + j] * v[j];
            }
            double e = rel_err(hv, want, SR_P);
            EXPECT_MSG(e < (fd ? 1e-3 : 1e-5), "%s product %d: relative error %g", fd ? "fd" : "exact", k, e);
        }
        EXPECT(!memcmp(w0, s.g->store.w, sizeof w0)); /* the weights as they were, bit for bit */
        /* Hutchinson's estimate is exactly the mean of z^T H z over its probes, with the
         * closed-form H (the products are exact: only float rounding is left), and its
         * standard error the sample deviation of those over sqrt(probes) */
        struct probe_rec rec = {h, s.H, 0, 0, 0};
        double tr, se;
        int used;
        REQUIRE_OK(hessian_hutchinson(probe_rec_op, &rec, SR_P, 40, -1, 9, 0, NULL, NULL, &tr, &se, NULL, NULL, &used,
                                      NULL, NULL));
        EXPECT_EQ_INT(used, 40);
        EXPECT_EQ_INT(rec.n, 40);
        const double mean = rec.sum / 40, sd = sqrt((rec.sum2 - 40 * mean * mean) / 39);
        EXPECT_MSG(fabs(tr - mean) < (fd ? 1e-3 : 1e-5) * fabs(mean), "%s: Hutchinson %.9g, closed form over its probes %.9g",
                   fd ? "fd" : "exact", tr, mean);
        EXPECT_NEAR(se, sd / sqrt(40.0), (fd ? 1e-2 : 1e-4) * se);
        /* eigenvalues and trace through hessian_run */
        double m[SR_P * SR_P], ev[SR_P];
        memcpy(m, s.H, sizeof m);
        jacobi_eigenvalues(m, SR_P, ev);
        top_by_magnitude(ev, SR_P, 3);
        struct hessian_result *res = NULL;
        const struct hessian_opts ro = {.top = 3, .iters = 5000, .tol = 1e-10, .probes = 3000, .trace_tol = -1};
        REQUIRE_OK(hessian_run(&res, h, &ro, NULL));
        for (int k = 0; k < 3; k++)
            EXPECT_MSG(fabs(res->eig[k] - ev[k]) < (fd ? 1e-3 : 1e-5) * fabs(ev[0]), "%s eigenvalue %d: %.9g, exact %.9g",
                       fd ? "fd" : "exact", k + 1, res->eig[k], ev[k]);
        double trace = 0;
        for (int i = 0; i < SR_P; i++) trace += s.H[i * SR_P + i];
        EXPECT_MSG(fabs(res->trace - trace) < 4 * res->trace_se, "trace %g +- %g, exact %g", res->trace, res->trace_se,
                   trace);
        EXPECT_EQ_INT(res->n_probes, 3000);
        EXPECT_EQ_INT(res->n_layers, 2);
        double sum = 0;
        for (int l = 0; l < res->n_layers; l++) {
            const struct hessian_layer *L = &res->layers[l];
            double bt = 0;
            for (long i = L->offset; i < L->offset + L->numel; i++) bt += s.H[i * SR_P + i];
            EXPECT_MSG(fabs(L->trace - bt) < 4 * L->trace_se + 1e-9, "%s: trace %g +- %g, exact %g", L->name, L->trace,
                       L->trace_se, bt);
            sum += L->trace;
        }
        EXPECT_NEAR(sum, res->trace, 1e-9 * fabs(res->trace) + 1e-12);
        EXPECT(!strcmp(res->phase, "done") && res->fd == fd);
        EXPECT_NEAR(res->loss, s.loss, 1e-6);
        hessian_result_destroy(res);
        EXPECT(!memcmp(w0, s.g->store.w, sizeof w0));
        hessian_destroy(h);
    }
    graph_destroy(s.g);
}

/* ----------------------------------------------------------------------------- smooth graph */

/* Exact products equal central differences of gradients (error O(e^2) where the loss is
 * smooth) on a graph of every smooth op: BN over mel bins, a damped conv, BN, average pool,
 * a grouped 1x1 conv with a residual sum, channel roll, means, a linear head with bias,
 * dropout (eval: identity), and pruned weights; exact products are symmetric. */
static void test_exact_equals_finite_differences(void)
{
    struct graph *g = graph_create();
    REQUIRE(g);
    int x = graph_input(g, 2);
    x = graph_batchnorm_freq(g, "bn0", x, 8);
    x = graph_conv2d(g, "c1", x, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0.3f);
    x = graph_batchnorm(g, "bn1", x, 0);
    x = graph_avgpool(g, "pool", x, 2, 2);
    int h = graph_conv2d(g, "c2", x, 4, 1, 1, 1, 1, 0, 0, 1, 1, 2, 0);
    x = graph_add(g, x, h, 0);
    x = graph_roll(g, x, 1);
    x = graph_mean(g, x, 2);
    x = graph_mean(g, x, 3);
    x = graph_dropout(g, x, 0.2f);
    graph_linear(g, "fc", x, 3, 1);
    REQUIRE_OK(graph_finish(g));
    struct rng r;
    rng_seed(&r, 12);
    rng_fill_normal(&r, g->store.w, g->store.n_params, 0, 0.7f);
    for (int i = 0; i < g->n_tensors; i++) {
        struct graph_tensor *t = &g->tensors[i];
        float *d = graph_tensor_data(g, i);
        if (t->kind == TENSOR_RUNNING_VAR) rng_fill_uniform(&r, d, t->numel, 0.5f, 1.5f);
        if (t->kind == TENSOR_RUNNING_MEAN) rng_fill_normal(&r, d, t->numel, 0, 0.3f);
    }
    const long oc = g->tensors[graph_find_tensor(g, "c1.weight")].offset;
    g->store.mask[oc + 4] = g->store.mask[oc + 11] = 0, g->masked = 1;
    enum { N = 6, F = 8, T = 10 };
    static float xs[N * 2 * F * T];
    int ys[N];
    rng_fill_normal(&r, xs, N * 2 * F * T, 0, 1);
    for (int i = 0; i < N; i++) ys[i] = (int)rng_below(&r, 3);
    const long P = g->store.n_params;
    double *v = malloc(sizeof *v * (size_t)P), *u = malloc(sizeof *u * (size_t)P), *he = malloc(sizeof *he * (size_t)P),
           *hf = malloc(sizeof *hf * (size_t)P), *hu = malloc(sizeof *hu * (size_t)P);
    REQUIRE(v && u && he && hf && hu);
    struct hessian *ex, *fd;
    const struct hessian_opts oe = {.batch = 4, .n_threads = 1}, of = {.batch = 4, .fd = 1, .step = 3e-3, .n_threads = 1};
    REQUIRE_OK(hessian_create(&ex, g, N, 2, F, T, xs, ys, &oe));
    REQUIRE_OK(hessian_create(&fd, g, N, 2, F, T, xs, ys, &of));
    for (int k = 0; k < 3; k++) {
        for (long i = 0; i < P; i++) v[i] = rng_normal(&r), u[i] = rng_normal(&r);
        REQUIRE_OK(hessian_hvp(ex, -1, v, he, NULL));
        memcpy(hf, v, sizeof *v * (size_t)P); /* (finite differences change the vector they get) */
        REQUIRE_OK(hessian_hvp(fd, -1, hf, hu, NULL));
        double e = rel_err(hu, he, P);
        EXPECT_MSG(e < 2e-4, "product %d: exact vs finite differences %g", k, e);
        REQUIRE_OK(hessian_hvp(ex, -1, u, hu, NULL));
        double uhv = 0, vhu = 0, s = 0;
        for (long i = 0; i < P; i++) uhv += u[i] * he[i], vhu += v[i] * hu[i], s += fabs(u[i] * he[i]);
        EXPECT_MSG(fabs(uhv - vhu) < 1e-5 * s, "u.Hv %g, v.Hu %g", uhv, vhu);
    }
    /* a block: H_tt v_t of c1's weight (differences of a block lose more to the gradients'
     * rounding: |H_tt v_t| is smaller than the gradient's noise over 2e is) */
    const int tw = graph_find_tensor(g, "c1.weight");
    const long n = g->tensors[tw].numel;
    for (long i = 0; i < n; i++) v[i] = rng_normal(&r);
    REQUIRE_OK(hessian_hvp(ex, tw, v, he, NULL));
    REQUIRE_OK(hessian_hvp(fd, tw, v, hf, NULL));
    EXPECT_MSG(rel_err(hf, he, n) < 2e-3, "block: %g", rel_err(hf, he, n));
    EXPECT(he[4] == 0 && he[11] == 0); /* pruned weights: zero rows */
    hessian_destroy(ex), hessian_destroy(fd);
    free(v), free(u), free(he), free(hf), free(hu);
    graph_destroy(g);
}

/* ----------------------------------------------------------------------------- PyTorch */

struct fixture {
    struct model *m;
    struct st_file *io, *fx;
    float *x;
    int *y;
    int n, c, f, t;
};

static int fixture_load(struct fixture *fx, const char *arch)
{
    char path[256];
    memset(fx, 0, sizeof *fx);
    snprintf(path, sizeof path, "tests/data/models/%s.safetensors", arch);
    if (model_load(&fx->m, path)) return 0;
    snprintf(path, sizeof path, "tests/data/models/%s-io.safetensors", arch);
    if (st_load(path, &fx->io)) return 0;
    snprintf(path, sizeof path, "tests/data/hessian/%s.safetensors", arch);
    if (st_load(path, &fx->fx)) return 0;
    const struct st_tensor *tx = st_find(fx->io, "x"), *ty = st_find(fx->fx, "y");
    if (!tx || !ty) return 0;
    fx->n = (int)tx->shape[0], fx->c = (int)tx->shape[1], fx->f = (int)tx->shape[2], fx->t = (int)tx->shape[3];
    fx->x = malloc(sizeof *fx->x * (size_t)tx->numel);
    fx->y = malloc(sizeof *fx->y * (size_t)ty->numel);
    return fx->x && fx->y && !st_to_f32(tx, fx->x) && !st_to_i32(ty, (int32_t *)fx->y);
}

static void fixture_free(struct fixture *fx)
{
    model_destroy(fx->m);
    st_destroy(fx->io), st_destroy(fx->fx);
    free(fx->x), free(fx->y);
}

static double fixture_scalar(const struct fixture *fx, const char *name)
{
    const struct st_tensor *t = st_find(fx->fx, name);
    double v[3] = {NAN, NAN, NAN};
    float f[3];
    if (t && t->numel <= 3 && !st_to_f32(t, f))
        for (size_t i = 0; i < t->numel; i++) v[i] = f[i];
    return v[0];
}

/* The model fixtures against PyTorch's exact (float64, autograd) Hessian: the loss and the
 * gradient's norm, one product (double backward), the three eigenvalues of largest
 * magnitude, the trace, and every tensor block's trace and top eigenvalue. */
static void test_matches_pytorch(void)
{
    const char *archs[] = {"cpresnet", "sepnet"};
    for (int k = 0; k < 2; k++) {
        struct fixture fx;
        REQUIRE(fixture_load(&fx, archs[k]));
        struct graph *g = fx.m->g;
        const long P = g->store.n_params;
        float *w0 = malloc(sizeof *w0 * (size_t)P);
        double *v = malloc(sizeof *v * (size_t)P), *hv = malloc(sizeof *hv * (size_t)P), *want = malloc(sizeof *want * (size_t)P);
        REQUIRE(w0 && v && hv && want);
        memcpy(w0, g->store.w, sizeof *w0 * (size_t)P);
        float *tmp = malloc(sizeof *tmp * (size_t)P);
        REQUIRE(tmp);
        for (int i = 0; i < g->n_tensors; i++) {
            const struct graph_tensor *t = &g->tensors[i];
            if (!tensor_kind_is_param(t->kind)) continue;
            char name[96];
            snprintf(name, sizeof name, "v.%s", t->name);
            REQUIRE_OK(st_read_f32(fx.fx, name, t->n_dims, t->shape, tmp));
            for (long j = 0; j < t->numel; j++) v[t->offset + j] = tmp[j];
            snprintf(name, sizeof name, "hv.%s", t->name);
            REQUIRE_OK(st_read_f32(fx.fx, name, t->n_dims, t->shape, tmp));
            for (long j = 0; j < t->numel; j++) want[t->offset + j] = tmp[j];
        }
        struct hessian *h;
        const struct hessian_opts o = {.batch = 2, .n_threads = 1}; /* tiny: one thread is fastest */
        REQUIRE_OK(hessian_create(&h, g, fx.n, fx.c, fx.f, fx.t, fx.x, fx.y, &o));
        double loss, acc;
        REQUIRE_OK(hessian_loss_grad(h, &loss, &acc, hv, NULL));
        double gn = 0;
        for (long i = 0; i < P; i++) gn += hv[i] * hv[i];
        EXPECT_MSG(fabs(loss / fixture_scalar(&fx, "loss") - 1) < 1e-5, "%s loss %.9g", archs[k], loss);
        EXPECT_MSG(fabs(sqrt(gn) / fixture_scalar(&fx, "grad_norm") - 1) < 1e-4, "%s |g| %.9g", archs[k], sqrt(gn));
        REQUIRE_OK(hessian_hvp(h, -1, v, hv, NULL));
        double e = rel_err(hv, want, P);
        EXPECT_MSG(e < 1e-4, "%s: product vs PyTorch's: relative error %g", archs[k], e);
        /* eigenvalues and trace */
        struct hessian_result *r = NULL;
        const struct hessian_opts ro = {.top = 3, .iters = 3000, .tol = 1e-8, .probes = 1500, .trace_tol = -1, .seed = 3};
        REQUIRE_OK(hessian_run(&r, h, &ro, NULL));
        float eig[3];
        REQUIRE_OK(st_read_f32(fx.fx, "eig", 1, (int[]){3}, eig));
        for (int j = 0; j < 3; j++)
            EXPECT_MSG(fabs(r->eig[j] - eig[j]) < 1e-4 * fabs(eig[0]), "%s eigenvalue %d: %.9g, PyTorch %.9g", archs[k],
                       j + 1, r->eig[j], eig[j]);
        const double tr = fixture_scalar(&fx, "trace");
        EXPECT_MSG(fabs(r->trace - tr) < 4 * r->trace_se, "%s trace %g +- %g, exact %g", archs[k], r->trace, r->trace_se, tr);
        for (int l = 0; l < r->n_layers; l++) {
            const struct hessian_layer *L = &r->layers[l];
            char name[96];
            snprintf(name, sizeof name, "bt.%s", L->name);
            const double bt = fixture_scalar(&fx, name);
            EXPECT_MSG(fabs(L->trace - bt) < 4 * L->trace_se + 1e-6 * fabs(tr), "%s %s: trace %g +- %g, exact %g", archs[k],
                       L->name, L->trace, L->trace_se, bt);
        }
        hessian_result_destroy(r);
        /* every block's top eigenvalue */
        const struct hessian_opts rb = {.top = 1, .iters = 300, .tol = 1e-6, .no_trace = 1, .by_layer = 1, .seed = 4};
        REQUIRE_OK(hessian_run(&r, h, &rb, NULL));
        int converged = 0;
        for (int l = 0; l < r->n_layers; l++) {
            const struct hessian_layer *L = &r->layers[l];
            char name[96];
            snprintf(name, sizeof name, "be.%s", L->name);
            const double be = fixture_scalar(&fx, name);
            /* a block whose extreme eigenvalues are +-lambda does not converge by power
             * iteration (as in PyHessian); the others must match */
            if (L->eig_converged) {
                converged++;
                EXPECT_MSG(fabs(L->eig - be) < 1e-3 * fabs(be) + 1e-6 * fabs(eig[0]), "%s %s: top eigenvalue %.9g, exact %.9g",
                           archs[k], L->name, L->eig, be);
            }
        }
        EXPECT_MSG(converged >= r->n_layers * 3 / 4, "%s: %d of %d blocks converged", archs[k], converged, r->n_layers);
        EXPECT(!memcmp(w0, g->store.w, sizeof *w0 * (size_t)P));
        hessian_result_destroy(r);
        hessian_destroy(h);
        free(w0), free(v), free(hv), free(want), free(tmp);
        fixture_free(&fx);
    }
}

/* ----------------------------------------------------------------------------- stops */

static int stop_at(void *user, const char *label, long done, long total)
{
    (void)label, (void)total;
    return done < *(long *)user;
}

/* A stop mid-run returns what was done (the loss, a partial phase) and leaves the weights
 * exactly as they were, also by finite differences (stopped between w + e v and w - e v). */
static void test_stop_keeps_weights(void)
{
    static struct softreg s;
    REQUIRE(softreg_make(&s, 4));
    float w0[SR_P];
    memcpy(w0, s.g->store.w, sizeof w0);
    for (int fd = 0; fd < 2; fd++) {
        struct hessian *h;
        const struct hessian_opts o = {.fd = fd, .batch = 5, .top = 2, .n_threads = 1};
        REQUIRE_OK(hessian_create(&h, s.g, SR_N, SR_C, 1, 1, s.x, s.y, &o));
        long when = 5 + 4 * fd; /* batches: the gradient (4), then into the first product */
        const struct progress p = {stop_at, &when};
        struct hessian_result *r = NULL;
        EXPECT_EQ_INT(hessian_run(&r, h, &o, &p), STATUS_CANCELLED);
        REQUIRE(r);
        EXPECT_STR(r->phase, "cancelled");
        EXPECT_NEAR(r->loss, s.loss, 1e-6);
        EXPECT(r->n_eig == 0);
        EXPECT(!memcmp(w0, s.g->store.w, sizeof w0));
        hessian_result_destroy(r);
        hessian_destroy(h);
    }
    graph_destroy(s.g);
}

/* ----------------------------------------------------------------------------- command */

/* The command headless on the eval fixture: the whole split or a flagged subset, the
 * tables, the CSV; every option checked before any work. */
static void test_hessian_command(void)
{
    char dir[600], model[700], csv[700], script[4096];
    path_of(dir, sizeof dir, "hessian-cli");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL | DC_AUDIO));
    struct dataset *ds;
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    struct model_config c;
    model_config_default(&c, ARCH_SEPNET);
    c.mels = 16, c.classes = 3, c.n_channels = 4;
    c.channels[0] = 4, c.channels[1] = c.channels[2] = c.channels[3] = 8;
    struct model *m;
    REQUIRE_OK(model_create(&m, &c, 3));
    struct frontend *fe;
    REQUIRE(make_fe(&fe));
    struct frontend_params p = *frontend_get_params(fe);
    frontend_destroy(fe);
    snprintf(p.preset, sizeof p.preset, "fixture");
    REQUIRE_OK(pipeline_set_model_frontend(m, &p));
    REQUIRE_OK(pipeline_set_model_labels(m, ds));
    snprintf(model, sizeof model, "%s", test_path("hessian-cli.safetensors"));
    REQUIRE_OK(model_save(m, model, 0, NULL));
    snprintf(csv, sizeof csv, "%s", test_path("hessian-cli.csv"));
    snprintf(script, sizeof script,
             "set threads=1\nload %s\ndata %s\nhessian top=2 iters=20 probes=12\nhessian n=4 iters=5 probes=3 by=layer --csv %s\n"
             "hessian split=all trace=off hvp=fd iters=3\nview hessian\n", model, dir, csv);
    struct cli_output o = cli_run(script);
    EXPECT_EQ_INT(o.n_errors, 0);
    EXPECT(strstr(o.out, "hessian: sepnet over the train split of ") && strstr(o.out, ": 9 clips, "));
    EXPECT(strstr(o.out, "a subset of 4 of its 9 clips: 4 clips (A SUBSET: n= was given)") != NULL);
    EXPECT(strstr(o.out, "exact Hessian-vector products (R-op)") != NULL);
    EXPECT(strstr(o.out, "by finite differences of gradients (step 0.001)") != NULL);
    EXPECT(strstr(o.out, "over every clip of ") && strstr(o.out, ": 16 clips, "));
    EXPECT(strstr(o.out, "top eigenvalues (power iteration") && strstr(o.out, "\n     2  "));
    EXPECT(strstr(o.out, "trace ") && strstr(o.out, "Rademacher probes"));
    EXPECT(strstr(o.out, "per tensor (diagonal blocks)") && strstr(o.out, "b1.pw.weight"));
    EXPECT(strstr(o.out, "Hessian of the mean cross-entropy (eval mode)") != NULL);
    char head[128] = "";
    FILE *f = fopen(csv, "r");
    EXPECT(f && fgets(head, sizeof head, f) && !strcmp(head, "block,params,eig1,trace,trace_se\n"));
    int rows = 0;
    while (f && fgets(head, sizeof head, f)) rows++;
    if (f) fclose(f);
    int tensors = 0;
    for (int i = 0; i < m->g->n_tensors; i++) tensors += tensor_kind_is_param(m->g->tensors[i].kind);
    EXPECT_EQ_INT(rows, 1 + tensors); /* all, then every parameter tensor */
    snprintf(script, sizeof script, "load %s\ndata %s\nhessian top=0\nhessian trace=maybe\nhessian by=city\n"
                                    "hessian hvp=bogus\nhessian step=abc\nhessian stray\nhessian top=999999\n", model, dir);
    o = cli_run(script);
    EXPECT_EQ_INT(o.n_errors, 7);
    EXPECT(strstr(o.err, "top=0: out of range") != NULL);
    EXPECT(strstr(o.err, "trace=maybe: on or off") != NULL);
    EXPECT(strstr(o.err, "by=city: layer") != NULL);
    EXPECT(strstr(o.err, "hvp=bogus: exact (R-op) or fd") != NULL);
    EXPECT(strstr(o.err, "step=abc: not a number") != NULL);
    EXPECT(strstr(o.err, "unexpected 'stray'") != NULL);
    EXPECT(strstr(o.err, "top=999999: out of range") != NULL);
    model_destroy(m);
    dataset_destroy(ds);
}

const struct test tests_hessian[] = {
    TEST(test_algorithms_on_matrices),
    TEST(test_softmax_regression),
    TEST(test_exact_equals_finite_differences),
    TEST(test_matches_pytorch),
    TEST(test_stop_keeps_weights),
    TEST(test_hessian_command),
    {0},
};
