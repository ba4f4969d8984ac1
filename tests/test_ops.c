/* test_ops.c: every kernel of ops.h against its naive double twin (tests/ref/naive.c), a
 * finite-difference gradient check in double for every backward pass, accumulate / NULL
 * semantics, batch-norm running statistics, and 1 vs 2 threads.
 *
 * Gradient checks: with the naive forward f in double and a random upstream r, the
 * gradient of L = sum(r * f) by central differences (h = 1e-6 relative) is the reference
 * for the float backward kernel run with dy = r; they agree to 1e-3 of the gradient's
 * largest magnitude.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/ops.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "ref/naive.h"
#include "test.h"

#define GRAD_TOL 1e-3 /* finite differences vs float kernels, relative to max |gradient| */
#define FWD_TOL 2e-5  /* float kernels vs double twins, relative to max |output| */

/* ----------------------------------------------------------------------------- helpers */

static float *falloc(long n)
{
    float *p = mem_alloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    CHECK(p);
    return p;
}

static double *dalloc(long n)
{
    double *p = mem_alloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    CHECK(p);
    return p;
}

static void fill(struct rng *r, float *x, long n)
{
    rng_fill_uniform(r, x, n, -1.0f, 1.0f);
}

static double *to_double(const float *x, long n)
{
    double *d = dalloc(n);
    for (long i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* Distinct values, at least 2/n apart, in random order: no ties for max and max pool. */
static void fill_distinct(struct rng *r, float *x, long n)
{
    int *idx = malloc(sizeof(int) * (size_t)n);
    CHECK(idx);
    for (long i = 0; i < n; i++) idx[i] = (int)i;
    rng_shuffle(r, idx, (int)n);
    for (long i = 0; i < n; i++) x[i] = (float)((idx[i] + 0.5) / n * 2.0 - 1.0);
    free(idx);
}

static double max_abs(const double *b, long n)
{
    double m = 0;
    for (long i = 0; i < n; i++) m = fmax(m, fabs(b[i]));
    return m;
}

/* max |a - b| <= tol * scale (a float result, b its double reference); scale 0 means
 * max |b|. An affine epilogue y = x * s + t can cancel to values far below its terms, so its
 * checks pass the magnitude of the terms as the scale. */
static int close_to_scale(const char *what, const float *a, const double *b, long n, double tol,
                          double scale, const char *file, int line)
{
    double worst = 0;
    if (scale == 0) scale = max_abs(b, n);
    long at = 0;
    for (long i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= worst)) {
            worst = e;
            at = i;
        }
    }
    if (!(worst <= tol * fmax(scale, 1e-30))) {
        test_fail(file, line, "%s: |diff| %.3g at [%ld] (%.9g vs %.9g) > %g * max %.3g", what,
                  worst, at, (double)a[at], b[at], tol, scale);
        return 0;
    }
    return 1;
}
#define EXPECT_CLOSE(what, a, b, n, tol) close_to_scale(what, a, b, n, tol, 0, __FILE__, __LINE__)
#define EXPECT_CLOSE_TO(what, a, b, n, tol, scale) \
    close_to_scale(what, a, b, n, tol, scale, __FILE__, __LINE__)

/* Same, float against float. */
static int close_rel_f(const char *what, const float *a, const float *b, long n, double tol,
                       const char *file, int line)
{
    double *bd = to_double(b, n);
    int ok = close_to_scale(what, a, bd, n, tol, 0, file, line);
    mem_free(bd);
    return ok;
}
#define EXPECT_CLOSE_F(what, a, b, n, tol) close_rel_f(what, a, b, n, tol, __FILE__, __LINE__)

/* Central differences of loss(ctx) w.r.t. each of p[0..n). */
static void fd_grad(double *p, long n, double (*loss)(void *), void *ctx, double *grad)
{
    for (long i = 0; i < n; i++) {
        double old = p[i], h = 1e-6 * fmax(1.0, fabs(old));
        p[i] = old + h;
        double lp = loss(ctx);
        p[i] = old - h;
        double lm = loss(ctx);
        p[i] = old;
        grad[i] = (lp - lm) / (2 * h);
    }
}

static double dot(const double *a, const double *b, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* ----------------------------------------------------------------------------- conv2d */

struct conv_case {
    const char *name;
    int n, ci, fi, ti, co, kf, kt, sf, st, pf, pt, df, dt, groups;
};

/* Small enough for finite differences. */
static const struct conv_case conv_small[] = {
    {"3x3 pad 1", 2, 3, 7, 9, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"stem 5x5 stride 2 pad 1", 2, 1, 12, 15, 3, 5, 5, 2, 2, 1, 1, 1, 1, 1},
    {"1x1", 2, 5, 4, 7, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1},
    {"1x1 grouped", 2, 4, 5, 3, 6, 1, 1, 1, 1, 0, 0, 1, 1, 2},
    {"1x1 stride 2", 1, 3, 7, 6, 2, 1, 1, 2, 2, 0, 0, 1, 1, 1},
    {"1x1 pad 1", 1, 2, 4, 5, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"grouped 3x3", 2, 4, 6, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2},
    {"dilated 3x3 d2 pad 2", 1, 3, 8, 9, 2, 3, 3, 1, 1, 2, 2, 2, 2, 1},
    {"strided 3x3 s2 no pad", 2, 2, 9, 8, 3, 3, 3, 2, 2, 0, 0, 1, 1, 1},
    {"stride (2, 1) pad (0, 1)", 1, 3, 8, 6, 2, 3, 3, 2, 1, 0, 1, 1, 1, 1},
    {"1x3 dilation (1, 2) pad (0, 2)", 2, 3, 4, 9, 2, 1, 3, 1, 1, 0, 2, 1, 2, 1},
    {"3x1 dilation (2, 1) pad (2, 0)", 2, 3, 9, 4, 2, 3, 1, 1, 1, 2, 0, 2, 1, 1},
    {"depthwise 1x3 dilation (1, 2)", 2, 4, 5, 9, 4, 1, 3, 1, 1, 0, 2, 1, 2, 4},
    {"depthwise 3x1 dilation (2, 1)", 2, 4, 9, 5, 4, 3, 1, 1, 1, 2, 0, 2, 1, 4},
    {"depthwise 3x3 stride 2", 1, 3, 9, 8, 3, 3, 3, 2, 2, 1, 1, 1, 1, 3},
    {"rectangular 2x4 pad > reach", 1, 2, 5, 7, 3, 2, 4, 1, 1, 2, 3, 1, 1, 1},
    {"grouped strided dilated", 1, 4, 9, 10, 4, 3, 2, 2, 3, 1, 2, 2, 1, 2},
    {"one sample, 5 in channels, stride 2", 1, 5, 7, 7, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1},
    {"4x2 stride 2 pad (2, 0), odd sizes", 2, 2, 11, 9, 5, 4, 2, 2, 2, 2, 0, 1, 1, 1},
};

/* Big enough for several column tiles per sample with conv2d.c's 256 K-float tile budget
 * (tile = budget / (I/g*KF*KT + max(I, O)) positions, then evened out), tiles crossing
 * output rows, and channel chunks in the strided backward pass (one sample). */
static const struct conv_case conv_big[] = {
    {"tiled 3x3 (3 tiles)", 1, 64, 30, 37, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"tiled grouped 3x3 (2 tiles)", 1, 128, 20, 30, 128, 3, 3, 1, 1, 1, 1, 1, 1, 2},
    {"tiled 1x1 (3 tiles)", 2, 256, 30, 40, 64, 1, 1, 1, 1, 0, 0, 1, 1, 1},
    {"tiled strided 5x5 (2 tiles)", 1, 16, 61, 83, 16, 5, 5, 2, 2, 1, 1, 1, 1, 1},
    {"tiled depthwise 3x1 dilation 2", 2, 8, 40, 33, 8, 3, 1, 1, 1, 2, 0, 2, 1, 8},
    {"CP-ResNet stem", 1, 1, 64, 87, 8, 5, 5, 2, 2, 1, 1, 1, 1, 1},
};

/* Shapes for the direct stride-1 kernels of conv2d.c (conv2d_direct.h), each taking them
 * in all three passes unless noted (conv2d.c's direct_band_ok / direct_wband_ok): flattened
 * band rows narrower than a vector (several rows per vector), exactly one vector wide and
 * odd widths; output channels not a multiple of the 8-channel register block, groups, 5x5
 * (the generic tap loop), dilation, padding 0 and padding past the kernel's reach (a crop
 * in backward data); many bands per sample; output-channel counts that take each
 * weight-gradient block shape (16, 32, 48, 64 + 16 lanes); pointwise in one chunk, many
 * chunks with a ragged tail, a tail alone, and grouped; and shapes that take the direct
 * kernels in some passes only (one input channel: backward data alone; 3 outputs per
 * group: GEMM throughout). */
static const struct conv_case conv_direct[] = {
    {"direct 3x3 T 5 (rows narrower than a vector)", 2, 8, 9, 5, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"direct 3x3 T 14 (padded rows of 16), 17 out", 1, 8, 7, 14, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"direct 3x3 pad 0, 16 out", 2, 8, 10, 17, 16, 3, 3, 1, 1, 0, 0, 1, 1, 1},
    {"direct 3x3 wide odd T 101", 1, 8, 11, 101, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"direct grouped 3x3, 2 groups of 8 -> 16", 2, 16, 12, 19, 32, 3, 3, 1, 1, 1, 1, 1, 1, 2},
    {"direct grouped 3x3, 20 out per group", 1, 32, 9, 23, 40, 3, 3, 1, 1, 1, 1, 1, 1, 2},
    {"direct 5x5 pad 2", 1, 4, 13, 21, 16, 5, 5, 1, 1, 2, 2, 1, 1, 1},
    {"direct 3x3 dilation (2, 3)", 1, 8, 15, 20, 16, 3, 3, 1, 1, 2, 3, 2, 3, 1},
    {"direct 3x3 pad 3 (crop in backward data)", 1, 8, 6, 8, 16, 3, 3, 1, 1, 3, 3, 1, 1, 1},
    {"direct 3x3 40 in 40 out", 1, 40, 8, 30, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"direct 3x3 72 out", 1, 8, 6, 35, 72, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"direct 3x3 many bands", 1, 48, 150, 60, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"direct 2x2 pad (1, 0)", 2, 16, 9, 12, 16, 2, 2, 1, 1, 1, 0, 1, 1, 1},
    {"direct 1x1 one chunk", 2, 32, 7, 13, 32, 1, 1, 1, 1, 0, 0, 1, 1, 1},
    {"direct 1x1 many chunks", 1, 64, 40, 53, 40, 1, 1, 1, 1, 0, 0, 1, 1, 1},
    {"direct 1x1 tail only", 2, 16, 3, 5, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1},
    {"direct 1x1 grouped", 2, 64, 9, 11, 64, 1, 1, 1, 1, 0, 0, 1, 1, 2},
    {"pointwise 1x1 two chunks, 12 out", 1, 8, 40, 90, 12, 1, 1, 1, 1, 0, 0, 1, 1, 1},
    {"direct 3x3 one input channel (backward data only)", 2, 1, 10, 33, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"grouped 3x3, 3 out per group (GEMM)", 2, 8, 12, 19, 12, 3, 3, 1, 1, 1, 1, 1, 1, 4},
};

static struct conv2d_shape conv_shape_of(const struct conv_case *c)
{
    struct conv2d_shape s = {
        .n = c->n, .ci = c->ci, .fi = c->fi, .ti = c->ti, .co = c->co, .kf = c->kf,
        .kt = c->kt, .sf = c->sf, .st = c->st, .pf = c->pf, .pt = c->pt, .df = c->df,
        .dt = c->dt, .groups = c->groups,
    };
    CHECK(conv2d_shape_init(&s) == 0);
    return s;
}

static long conv_nx(const struct conv2d_shape *s)
{
    return (long)s->n * s->ci * s->fi * s->ti;
}

static long conv_nw(const struct conv2d_shape *s)
{
    return (long)s->co * (s->ci / s->groups) * s->kf * s->kt;
}

static long conv_ny(const struct conv2d_shape *s)
{
    return (long)s->n * s->co * s->fo * s->to;
}

static float *conv_scratch(const struct conv2d_shape *s)
{
    return falloc((long)conv2d_scratch_floats(s, threads_get()));
}

static void test_conv2d_shape_init(void)
{
    struct conv2d_shape s = {.n = 16, .ci = 1, .fi = 256, .ti = 431, .co = 32, .kf = 5, .kt = 5,
                             .sf = 2, .st = 2, .pf = 1, .pt = 1, .df = 1, .dt = 1, .groups = 1};
    REQUIRE_OK(conv2d_shape_init(&s));
    EXPECT_EQ_INT(s.fo, 127);
    EXPECT_EQ_INT(s.to, 215);
    struct conv2d_shape d = {.n = 1, .ci = 64, .fi = 128, .ti = 200, .co = 64, .kf = 3, .kt = 1,
                             .sf = 1, .st = 1, .pf = 2, .pt = 0, .df = 2, .dt = 1, .groups = 64};
    REQUIRE_OK(conv2d_shape_init(&d));
    EXPECT_EQ_INT(d.fo, 128);
    EXPECT_EQ_INT(d.to, 200);
    struct conv2d_shape bad = s;
    bad.groups = 3;
    EXPECT_EQ_INT(conv2d_shape_init(&bad), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "groups") != NULL);
    bad = s;
    bad.fi = 2;
    bad.pf = 0;
    EXPECT_EQ_INT(conv2d_shape_init(&bad), STATUS_INVALID);
    bad = s;
    bad.st = 0;
    EXPECT_EQ_INT(conv2d_shape_init(&bad), STATUS_INVALID);
    bad = s;
    bad.n = 0;
    EXPECT_EQ_INT(conv2d_shape_init(&bad), STATUS_INVALID);
}

/* Forward (plain and fused), backward data (write and accumulate) and backward weight of
 * one case against the naive twins, with kernel k in all three passes. */
static void conv_check_kernel(const struct conv_case *c, uint64_t seed, enum conv2d_kernel k)
{
    struct conv2d_shape s = conv_shape_of(c);
    long nx = conv_nx(&s), nw = conv_nw(&s), ny = conv_ny(&s);
    struct rng r;
    rng_seed(&r, seed);
    float *x = falloc(nx), *w = falloc(nw), *y = falloc(ny), *dy = falloc(ny);
    float *dx = falloc(nx), *dw = falloc(nw), *scratch = conv_scratch(&s);
    fill(&r, x, nx);
    fill(&r, w, nw);
    fill(&r, dy, ny);
    double *xd = to_double(x, nx), *wd = to_double(w, nw), *dyd = to_double(dy, ny);
    double *yr = dalloc(ny), *dxr = dalloc(nx), *dwr = dalloc(nw);
    naive_conv2d(&s, yr, xd, wd);
    naive_conv2d_backward_data(&s, dxr, dyd, wd);
    naive_conv2d_backward_weight(&s, dwr, dyd, xd);

    char what[160];
    snprintf(what, sizeof what, "%s [%s] forward", c->name, conv2d_kernel_name(k));
    conv2d_forward_with(&s, k, y, x, w, NULL, scratch);
    EXPECT_CLOSE(what, y, yr, ny, FWD_TOL);

    /* Fused scale, shift, relu and statistics, with sum / sumsq added to what is there. */
    float *scale = falloc(s.co), *shift = falloc(s.co);
    double *sum = dalloc(s.co), *sumsq = dalloc(s.co), *ys = dalloc(ny);
    fill(&r, scale, s.co);
    fill(&r, shift, s.co);
    for (int o = 0; o < s.co; o++) sum[o] = sumsq[o] = 1.0;
    struct conv2d_fuse fuse = {
        .scale = scale, .shift = shift, .relu = 1, .sum = sum, .sumsq = sumsq};
    conv2d_forward_with(&s, k, y, x, w, &fuse, scratch);
    double *esum = dalloc(s.co), *esumsq = dalloc(s.co);
    for (int o = 0; o < s.co; o++) esum[o] = esumsq[o] = 1.0;
    long hw = (long)s.fo * s.to;
    double terms = 0; /* the largest |x * s| + |t|, what the epilogue's rounding scales with */
    for (long i = 0; i < ny; i++) {
        int o = (int)(i / hw % s.co);
        double v = yr[i] * scale[o] + shift[o];
        terms = fmax(terms, fabs(yr[i] * scale[o]) + fabs(shift[o]));
        ys[i] = v > 0 ? v : 0;
        esum[o] += ys[i];
        esumsq[o] += ys[i] * ys[i];
    }
    snprintf(what, sizeof what, "%s [%s] fused forward", c->name, conv2d_kernel_name(k));
    EXPECT_CLOSE_TO(what, y, ys, ny, FWD_TOL, terms);
    float *sumf = falloc(s.co), *sumsqf = falloc(s.co);
    for (int o = 0; o < s.co; o++) {
        sumf[o] = (float)sum[o];
        sumsqf[o] = (float)sumsq[o];
    }
    snprintf(what, sizeof what, "%s [%s] fused sum", c->name, conv2d_kernel_name(k));
    EXPECT_CLOSE(what, sumf, esum, s.co, 1e-4);
    snprintf(what, sizeof what, "%s [%s] fused sumsq", c->name, conv2d_kernel_name(k));
    EXPECT_CLOSE(what, sumsqf, esumsq, s.co, 1e-4);

    /* Scale and shift alone, no relu, no statistics. */
    struct conv2d_fuse affine = {.scale = scale, .shift = shift};
    conv2d_forward_with(&s, k, y, x, w, &affine, scratch);
    for (long i = 0; i < ny; i++) {
        int o = (int)(i / hw % s.co);
        ys[i] = yr[i] * scale[o] + shift[o];
    }
    snprintf(what, sizeof what, "%s [%s] scale/shift forward", c->name, conv2d_kernel_name(k));
    EXPECT_CLOSE_TO(what, y, ys, ny, FWD_TOL, terms);
    /* and with relu (inference's conv + BN + relu: the kernels' plain-store epilogues) */
    affine.relu = 1;
    conv2d_forward_with(&s, k, y, x, w, &affine, scratch);
    for (long i = 0; i < ny; i++) ys[i] = ys[i] > 0 ? ys[i] : 0;
    snprintf(what, sizeof what, "%s [%s] scale/shift/relu forward", c->name, conv2d_kernel_name(k));
    EXPECT_CLOSE_TO(what, y, ys, ny, FWD_TOL, terms);

    snprintf(what, sizeof what, "%s [%s] backward data", c->name, conv2d_kernel_name(k));
    for (long i = 0; i < nx; i++) dx[i] = NAN; /* written, not accumulated */
    conv2d_backward_data_with(&s, k, dx, dy, w, 0, scratch);
    EXPECT_CLOSE(what, dx, dxr, nx, FWD_TOL);
    snprintf(what, sizeof what, "%s [%s] backward data accumulate", c->name, conv2d_kernel_name(k));
    double *acc = dalloc(nx);
    for (long i = 0; i < nx; i++) {
        dx[i] = (float)(i % 7) - 3.0f;
        acc[i] = dx[i] + dxr[i];
    }
    conv2d_backward_data_with(&s, k, dx, dy, w, 1, scratch);
    EXPECT_CLOSE(what, dx, acc, nx, FWD_TOL);

    snprintf(what, sizeof what, "%s [%s] backward weight", c->name, conv2d_kernel_name(k));
    for (long i = 0; i < nw; i++) dw[i] = NAN;
    conv2d_backward_weight_with(&s, k, dw, dy, x, scratch);
    EXPECT_CLOSE(what, dw, dwr, nw, FWD_TOL);

    mem_free(x), mem_free(w), mem_free(y), mem_free(dy), mem_free(dx), mem_free(dw);
    mem_free(scratch), mem_free(xd), mem_free(wd), mem_free(dyd), mem_free(yr), mem_free(dxr);
    mem_free(dwr), mem_free(scale), mem_free(shift), mem_free(sum), mem_free(sumsq);
    mem_free(ys), mem_free(esum), mem_free(esumsq), mem_free(sumf), mem_free(sumsqf);
    mem_free(acc);
}

static void conv_check_vs_naive(const struct conv_case *c, uint64_t seed)
{
    conv_check_kernel(c, seed, CONV2D_KERNEL_AUTO);
}

/* Every kernel that runs the case (GEMM always; the direct kernels of both vector widths
 * this CPU runs, on stride-1 shapes and the forward of stride-2 ones; depthwise loops),
 * checked against the naive twins. */
static void conv_check_every_kernel(const struct conv_case *c, uint64_t seed)
{
    struct conv2d_shape s = conv_shape_of(c);
    for (int k = CONV2D_KERNEL_GEMM; k < CONV2D_KERNEL_COUNT; k++)
        if (conv2d_kernel_runs(&s, CONV2D_FORWARD, (enum conv2d_kernel)k))
            conv_check_kernel(c, seed, (enum conv2d_kernel)k);
}

static void test_conv2d_vs_naive(void)
{
    for (size_t i = 0; i < sizeof conv_small / sizeof conv_small[0]; i++)
        conv_check_vs_naive(&conv_small[i], 100 + i);
}

static void test_conv2d_tiled_vs_naive(void)
{
    for (size_t i = 0; i < sizeof conv_big / sizeof conv_big[0]; i++)
        conv_check_vs_naive(&conv_big[i], 200 + i);
}

static void test_conv2d_direct_vs_naive(void)
{
    for (size_t i = 0; i < sizeof conv_direct / sizeof conv_direct[0]; i++)
        conv_check_vs_naive(&conv_direct[i], 400 + i);
}

/* Every case again on im2col + GEMM, the path a CPU without AVX-512 takes (on such a CPU
 * this repeats the tests above). */
static void test_conv2d_gemm_path_vs_naive(void)
{
    enum conv2d_impl old = conv2d_set_impl(CONV2D_IMPL_GEMM);
    for (size_t i = 0; i < sizeof conv_small / sizeof conv_small[0]; i++)
        conv_check_vs_naive(&conv_small[i], 100 + i);
    for (size_t i = 0; i < sizeof conv_big / sizeof conv_big[0]; i++)
        conv_check_vs_naive(&conv_big[i], 200 + i);
    for (size_t i = 0; i < sizeof conv_direct / sizeof conv_direct[0]; i++)
        conv_check_vs_naive(&conv_direct[i], 400 + i);
    conv2d_set_impl(old);
}

/* The two implementations agree, and the scratch sized once serves both. */
static void test_conv2d_direct_vs_gemm(void)
{
    struct rng r;
    rng_seed(&r, 500);
    for (size_t k = 0; k < sizeof conv_direct / sizeof conv_direct[0]; k++) {
        struct conv2d_shape s = conv_shape_of(&conv_direct[k]);
        long nx = conv_nx(&s), nw = conv_nw(&s), ny = conv_ny(&s);
        float *x = falloc(nx), *w = falloc(nw), *dy = falloc(ny), *scratch = conv_scratch(&s);
        float *out[2][3];
        fill(&r, x, nx);
        fill(&r, w, nw);
        fill(&r, dy, ny);
        for (int m = 0; m < 2; m++) {
            enum conv2d_impl old = conv2d_set_impl(m ? CONV2D_IMPL_GEMM : CONV2D_IMPL_AUTO);
            out[m][0] = falloc(ny), out[m][1] = falloc(nx), out[m][2] = falloc(nw);
            conv2d_forward(&s, out[m][0], x, w, NULL, scratch);
            conv2d_backward_data(&s, out[m][1], dy, w, 0, scratch);
            conv2d_backward_weight(&s, out[m][2], dy, x, scratch);
            conv2d_set_impl(old);
        }
        EXPECT_CLOSE_F(conv_direct[k].name, out[0][0], out[1][0], ny, 1e-5);
        EXPECT_CLOSE_F(conv_direct[k].name, out[0][1], out[1][1], nx, 1e-5);
        EXPECT_CLOSE_F(conv_direct[k].name, out[0][2], out[1][2], nw, 1e-5);
        for (int m = 0; m < 2; m++)
            for (int i = 0; i < 3; i++) mem_free(out[m][i]);
        mem_free(x), mem_free(w), mem_free(dy), mem_free(scratch);
    }
}

/* Every kernel on every listed case, forced through conv2d_*_with (a plan's choice). */
static void test_conv2d_every_kernel_vs_naive(void)
{
    for (size_t i = 0; i < sizeof conv_small / sizeof conv_small[0]; i++)
        conv_check_every_kernel(&conv_small[i], 100 + i);
    for (size_t i = 0; i < sizeof conv_big / sizeof conv_big[0]; i++)
        conv_check_every_kernel(&conv_big[i], 200 + i);
    for (size_t i = 0; i < sizeof conv_direct / sizeof conv_direct[0]; i++)
        conv_check_every_kernel(&conv_direct[i], 400 + i);
}

/* A direct, Winograd or pointwise kernel reading its input through a prologue (a BN, relu or not,
 * applied as the band is packed) gives the bits it gives on the transformed input itself,
 * in the forward and the weight gradient; padding stays zero. */
static void test_conv2d_prologue(void)
{
    struct rng r;
    rng_seed(&r, 520);
    for (size_t k = 0; k < sizeof conv_direct / sizeof conv_direct[0]; k++) {
        struct conv2d_shape s = conv_shape_of(&conv_direct[k]);
        long nx = conv_nx(&s), nw = conv_nw(&s), ny = conv_ny(&s), hw = (long)s.fi * s.ti;
        float *x = falloc(nx), *xt = falloc(nx), *w = falloc(nw), *dy = falloc(ny);
        float *y1 = falloc(ny), *y2 = falloc(ny), *dw1 = falloc(nw), *dw2 = falloc(nw);
        float *mean = falloc(s.ci), *scale = falloc(s.ci), *shift = falloc(s.ci);
        float *scratch = conv_scratch(&s);
        fill(&r, x, nx);
        fill(&r, w, nw);
        fill(&r, dy, ny);
        fill(&r, mean, s.ci);
        fill(&r, scale, s.ci);
        fill(&r, shift, s.ci);
        struct conv2d_prologue pro = {mean, scale, shift, (int)(k % 2)};
        for (long i = 0; i < nx; i++) {
            int c = (int)(i / hw % s.ci);
            float v = batchnorm_value(x[i], mean[c], scale[c], shift[c]);
            xt[i] = pro.relu && !(v > 0.0f) ? 0.0f : v;
        }
        static const enum conv2d_kernel with_pro[] = {
            CONV2D_KERNEL_DIRECT_AVX512, CONV2D_KERNEL_DIRECT_AVX2, CONV2D_KERNEL_WINOGRAD,
            CONV2D_KERNEL_POINTWISE};
        for (size_t kk = 0; kk < sizeof with_pro / sizeof with_pro[0]; kk++) {
            enum conv2d_kernel kern = with_pro[kk];
            if (!conv2d_prologue_runs(&s, kern)) continue;
            double sum1[128] = {0}, sum2[128] = {0};
            struct conv2d_fuse f1 = {.sum = sum1}, f2 = {.sum = sum2, .pro = &pro};
            conv2d_forward_with(&s, kern, y1, xt, w, &f1, scratch);
            conv2d_forward_with(&s, kern, y2, x, w, &f2, scratch);
            EXPECT_MSG(memcmp(y1, y2, sizeof(float) * (size_t)ny) == 0, "%s [%s] forward",
                       conv_direct[k].name, conv2d_kernel_name(kern));
            if (!conv2d_kernel_runs(&s, CONV2D_BACKWARD_WEIGHT, kern)) continue; /* forward only */
            conv2d_backward_weight_with(&s, kern, dw1, dy, xt, scratch);
            conv2d_backward_weight_pro(&s, kern, dw2, dy, x, &pro, scratch);
            EXPECT_MSG(memcmp(dw1, dw2, sizeof(float) * (size_t)nw) == 0, "%s [%s] weight",
                       conv_direct[k].name, conv2d_kernel_name(kern));
        }
        mem_free(x), mem_free(xt), mem_free(w), mem_free(dy), mem_free(y1), mem_free(y2);
        mem_free(dw1), mem_free(dw2), mem_free(mean), mem_free(scale), mem_free(shift);
        mem_free(scratch);
    }
}

/* A direct backward-data pass summing the statistics of the BN whose output gradient it
 * writes: the sums equal those of the written values (masked by the BN's relu) in double,
 * writing and accumulating; and the BN backward from those sums equals the one that sums
 * itself. */
static void test_conv2d_backward_data_bnstat(void)
{
    struct rng r;
    rng_seed(&r, 530);
    for (size_t k = 0; k < sizeof conv_direct / sizeof conv_direct[0]; k++) {
        struct conv2d_shape s = conv_shape_of(&conv_direct[k]);
        long nx = conv_nx(&s), nw = conv_nw(&s), ny = conv_ny(&s), hw = (long)s.fi * s.ti;
        float *x = falloc(nx), *w = falloc(nw), *dy = falloc(ny), *dx = falloc(nx);
        float *mean = falloc(s.ci), *scale = falloc(s.ci), *shift = falloc(s.ci);
        float *scratch = conv_scratch(&s);
        fill(&r, x, nx);
        fill(&r, w, nw);
        fill(&r, dy, ny);
        fill(&r, mean, s.ci);
        rng_fill_uniform(&r, scale, s.ci, 0.5f, 1.5f);
        fill(&r, shift, s.ci);
        for (int kk = CONV2D_KERNEL_DIRECT_AVX512; kk <= CONV2D_KERNEL_DIRECT_AVX2; kk++) {
            enum conv2d_kernel kern = (enum conv2d_kernel)kk;
            if (!conv2d_bnstat_runs(&s, kern)) continue;
            for (int mode = 0; mode < 4; mode++) {
                int relu = mode & 1, acc = mode >> 1;
                double sg[128] = {0}, sgx[128] = {0}, eg[128] = {0}, egx[128] = {0};
                for (long i = 0; i < nx; i++) dx[i] = acc ? (float)(i % 3) - 1.0f : NAN;
                struct conv2d_bnstat bst = {x, mean, scale, shift, relu, sg, sgx};
                conv2d_backward_data_stat(&s, kern, dx, dy, w, acc, &bst, scratch);
                for (long i = 0; i < nx; i++) {
                    int c = (int)(i / hw % s.ci);
                    double d = x[i] - mean[c];
                    float y = batchnorm_value(x[i], mean[c], scale[c], shift[c]);
                    double g = !relu || y > 0.0f ? dx[i] : 0.0;
                    eg[c] += g;
                    egx[c] += g * d;
                }
                double big = 0;
                for (int c = 0; c < s.ci; c++) big = fmax(big, fmax(fabs(eg[c]), fabs(egx[c])));
                for (int c = 0; c < s.ci; c++) {
                    EXPECT_MSG(fabs(sg[c] - eg[c]) <= 1e-5 * (1 + big), "%s [%s] mode %d sum_g[%d] %g vs %g",
                               conv_direct[k].name, conv2d_kernel_name(kern), mode, c, sg[c], eg[c]);
                    EXPECT_MSG(fabs(sgx[c] - egx[c]) <= 1e-5 * (1 + big), "%s [%s] mode %d sum_gx[%d]",
                               conv_direct[k].name, conv2d_kernel_name(kern), mode, c);
                }
            }
        }
        mem_free(x), mem_free(w), mem_free(dy), mem_free(dx), mem_free(mean), mem_free(scale);
        mem_free(shift), mem_free(scratch);
    }
    /* the BN backward from given sums */
    struct bn_shape bs = {3, 4, 50};
    long n = (long)bs.outer * bs.c * bs.inner;
    float *x = falloc(n), *dy = falloc(n), *y = falloc(n), *dx1 = falloc(n), *dx2 = falloc(n);
    float g[4] = {1, 0.5f, 2, -1}, b[4] = {0, 1, -1, 0.25f}, sm[4], si[4], dg1[4], db1[4], dg2[4], db2[4];
    fill(&r, x, n);
    fill(&r, dy, n);
    for (int train = 0; train < 2; train++) {
        float rm[4] = {0.1f, -0.2f, 0, 0.3f}, rv[4] = {1, 2, 0.5f, 1.5f};
        batchnorm_forward_train(&bs, y, x, g, b, NULL, NULL, 0.1f, 1e-5f, sm, si, 1);
        const float *mu = train ? sm : rm;
        double sg[4] = {0}, sgx[4] = {0};
        for (long i = 0; i < n; i++) {
            int c = (int)(i / bs.inner % bs.c);
            float inv = train ? si[c] : (float)(1.0 / sqrt((double)rv[c] + 1e-5));
            float v = batchnorm_value(x[i], mu[c], batchnorm_scale(g[c], inv), b[c]);
            double gg = v > 0.0f ? dy[i] : 0.0;
            sg[c] += gg;
            sgx[c] += gg * (x[i] - mu[c]);
        }
        if (train)
            batchnorm_backward_train_x(&bs, dx1, dg1, db1, dy, x, 1, g, b, sm, si, 0);
        else
            batchnorm_backward_eval_x(&bs, dx1, dg1, db1, dy, x, 1, g, b, rm, rv, 1e-5f, 0);
        batchnorm_backward_sums(&bs, train, dx2, dg2, db2, dy, x, 1, g, b, mu, train ? si : rv,
                                1e-5f, sg, sgx, 0);
        EXPECT_CLOSE_F("bn backward from sums dx", dx2, dx1, n, 1e-5);
        EXPECT_CLOSE_F("bn backward from sums dgamma", dg2, dg1, 4, 1e-5);
        EXPECT_CLOSE_F("bn backward from sums dbeta", db2, db1, 4, 1e-5);
    }
    mem_free(x), mem_free(dy), mem_free(y), mem_free(dx1), mem_free(dx2);
}

/* Which kernels run which shapes, names round-trip, and the default never says AUTO. */
static void test_conv2d_kernel_choice(void)
{
    struct conv2d_shape dw = conv_shape_of(&conv_small[12]); /* depthwise */
    struct conv2d_shape st = conv_shape_of(&conv_small[1]);  /* stride 2 */
    struct conv2d_shape d3 = conv_shape_of(&conv_direct[9]); /* 40 -> 40 3x3 */
    EXPECT(conv2d_kernel_runs(&dw, CONV2D_FORWARD, CONV2D_KERNEL_DEPTHWISE));
    EXPECT(!conv2d_kernel_runs(&d3, CONV2D_FORWARD, CONV2D_KERNEL_DEPTHWISE));
    /* stride 2: the direct kernels run its forward over the input's phases, not the rest */
    EXPECT_EQ_INT(conv2d_kernel_runs(&st, CONV2D_FORWARD, CONV2D_KERNEL_DIRECT_AVX2), __builtin_cpu_supports("avx2") &&
                                                                                   __builtin_cpu_supports("fma"));
    EXPECT(!conv2d_kernel_runs(&st, CONV2D_BACKWARD_DATA, CONV2D_KERNEL_DIRECT_AVX2));
    EXPECT(!conv2d_kernel_runs(&st, CONV2D_BACKWARD_WEIGHT, CONV2D_KERNEL_DIRECT_AVX2));
    EXPECT(!conv2d_prologue_runs(&st, CONV2D_KERNEL_DIRECT_AVX2));
    EXPECT(!conv2d_kernel_runs(&dw, CONV2D_BACKWARD_DATA, CONV2D_KERNEL_DIRECT_AVX2));
    EXPECT(conv2d_kernel_runs(&d3, CONV2D_BACKWARD_WEIGHT, CONV2D_KERNEL_DIRECT_AVX2));
    for (int k = 0; k < CONV2D_KERNEL_COUNT; k++) {
        EXPECT(conv2d_kernel_runs(&st, CONV2D_FORWARD, CONV2D_KERNEL_GEMM));
        enum conv2d_kernel back;
        REQUIRE_OK(conv2d_kernel_parse(conv2d_kernel_name((enum conv2d_kernel)k), &back));
        EXPECT_EQ_INT(back, k);
    }
    EXPECT(conv2d_kernel_parse("fast", &(enum conv2d_kernel){0}) == STATUS_INVALID);
    for (int p = 0; p < CONV2D_PASSES; p++) {
        EXPECT_EQ_INT(conv2d_kernel_default(&dw, (enum conv2d_pass)p), CONV2D_KERNEL_DEPTHWISE);
        EXPECT_EQ_INT(conv2d_kernel_default(&st, (enum conv2d_pass)p), CONV2D_KERNEL_GEMM);
        enum conv2d_kernel k = conv2d_kernel_default(&d3, (enum conv2d_pass)p);
        EXPECT(k != CONV2D_KERNEL_AUTO && conv2d_kernel_runs(&d3, (enum conv2d_pass)p, k));
    }
    enum conv2d_impl old = conv2d_set_impl(CONV2D_IMPL_GEMM);
    EXPECT_EQ_INT(conv2d_kernel_default(&d3, CONV2D_FORWARD), CONV2D_KERNEL_GEMM);
    conv2d_set_impl(old);
}

struct conv_fd {
    const struct conv2d_shape *s;
    double *x, *w, *r, *y;
};

static double conv_loss(void *p)
{
    struct conv_fd *c = p;
    naive_conv2d(c->s, c->y, c->x, c->w);
    return dot(c->r, c->y, conv_ny(c->s));
}

static void test_conv2d_gradients(void)
{
    for (size_t k = 0; k < sizeof conv_small / sizeof conv_small[0]; k++) {
        const struct conv_case *c = &conv_small[k];
        struct conv2d_shape s = conv_shape_of(c);
        long nx = conv_nx(&s), nw = conv_nw(&s), ny = conv_ny(&s);
        struct rng r;
        rng_seed(&r, 300 + k);
        float *x = falloc(nx), *w = falloc(nw), *dy = falloc(ny), *dx = falloc(nx);
        float *dw = falloc(nw), *scratch = conv_scratch(&s);
        fill(&r, x, nx);
        fill(&r, w, nw);
        fill(&r, dy, ny);
        struct conv_fd f = {&s, to_double(x, nx), to_double(w, nw), to_double(dy, ny), dalloc(ny)};
        double *gx = dalloc(nx), *gw = dalloc(nw);
        fd_grad(f.x, nx, conv_loss, &f, gx);
        fd_grad(f.w, nw, conv_loss, &f, gw);
        conv2d_backward_data(&s, dx, dy, w, 0, scratch);
        conv2d_backward_weight(&s, dw, dy, x, scratch);
        char what[160];
        snprintf(what, sizeof what, "%s dx", c->name);
        EXPECT_CLOSE(what, dx, gx, nx, GRAD_TOL);
        snprintf(what, sizeof what, "%s dw", c->name);
        EXPECT_CLOSE(what, dw, gw, nw, GRAD_TOL);
        /* The naive adjoints, which check the tiled cases, are exact. */
        double *ax = dalloc(nx), *aw = dalloc(nw);
        naive_conv2d_backward_data(&s, ax, f.r, f.w);
        naive_conv2d_backward_weight(&s, aw, f.r, f.x);
        for (long i = 0; i < nx; i++) EXPECT_NEAR(ax[i], gx[i], 1e-7 * (1 + max_abs(gx, nx)));
        for (long i = 0; i < nw; i++) EXPECT_NEAR(aw[i], gw[i], 1e-7 * (1 + max_abs(gw, nw)));
        mem_free(x), mem_free(w), mem_free(dy), mem_free(dx), mem_free(dw), mem_free(scratch);
        mem_free(f.x), mem_free(f.w), mem_free(f.r), mem_free(f.y), mem_free(gx), mem_free(gw);
        mem_free(ax), mem_free(aw);
    }
}

/* ----------------------------------------------------------------------------- batch norm */

struct bn_case {
    const char *name;
    struct bn_shape s;
    int relu;
};

static const struct bn_case bn_cases[] = {
    {"channels (N, C, F, T)", {3, 4, 5 * 6}, 0},
    {"channels with relu", {2, 3, 7 * 5}, 1},
    {"mel bins (N*C, F, T)", {2 * 2, 6, 9}, 0},
    {"mel bins with relu", {3, 5, 8}, 1},
    {"one sample, many channels", {1, 9, 4}, 0},
};

static long bn_numel(const struct bn_shape *s)
{
    return (long)s->outer * s->c * s->inner;
}

/* x with a different offset and spread per channel, so the statistics matter. */
static void bn_fill(struct rng *r, const struct bn_shape *s, float *x)
{
    fill(r, x, bn_numel(s));
    for (int o = 0; o < s->outer; o++)
        for (int c = 0; c < s->c; c++)
            for (long i = 0; i < s->inner; i++) {
                float *v = &x[((long)o * s->c + c) * s->inner + i];
                *v = *v * (0.5f + 0.3f * c) + 0.7f * (c - 1);
            }
}

static void test_batchnorm_vs_naive(void)
{
    for (size_t k = 0; k < sizeof bn_cases / sizeof bn_cases[0]; k++) {
        const struct bn_case *b = &bn_cases[k];
        const struct bn_shape *s = &b->s;
        long n = bn_numel(s);
        struct rng r;
        rng_seed(&r, 400 + k);
        float *x = falloc(n), *y = falloc(n), *gamma = falloc(s->c), *beta = falloc(s->c);
        float *rm = falloc(s->c), *rv = falloc(s->c), *smean = falloc(s->c), *sinv = falloc(s->c);
        bn_fill(&r, s, x);
        rng_fill_uniform(&r, gamma, s->c, 0.5f, 1.5f);
        fill(&r, beta, s->c);
        rng_fill_uniform(&r, rm, s->c, -0.5f, 0.5f);
        rng_fill_uniform(&r, rv, s->c, 0.5f, 2.0f);
        double *xd = to_double(x, n), *gd = to_double(gamma, s->c), *bd = to_double(beta, s->c);
        double *rmd = to_double(rm, s->c), *rvd = to_double(rv, s->c), *yr = dalloc(n);
        double *mean = dalloc(s->c), *var = dalloc(s->c), *invstd = dalloc(s->c);
        char what[160];

        /* Eval first, with the running statistics as they are. */
        naive_batchnorm_eval(s, yr, xd, gd, bd, rmd, rvd, 1e-5, b->relu);
        batchnorm_forward_eval(s, y, x, gamma, beta, rm, rv, 1e-5f, b->relu);
        snprintf(what, sizeof what, "%s eval", b->name);
        EXPECT_CLOSE(what, y, yr, n, FWD_TOL);

        naive_batchnorm_train(s, yr, xd, gd, bd, rmd, rvd, 0.1, 1e-5, mean, var, b->relu);
        batchnorm_forward_train(s, y, x, gamma, beta, rm, rv, 0.1f, 1e-5f, smean, sinv, b->relu);
        snprintf(what, sizeof what, "%s train", b->name);
        EXPECT_CLOSE(what, y, yr, n, FWD_TOL);
        for (int c = 0; c < s->c; c++) invstd[c] = 1 / sqrt(var[c] + 1e-5);
        snprintf(what, sizeof what, "%s save_mean", b->name);
        EXPECT_CLOSE(what, smean, mean, s->c, 1e-6);
        snprintf(what, sizeof what, "%s save_invstd", b->name);
        EXPECT_CLOSE(what, sinv, invstd, s->c, 1e-6);
        snprintf(what, sizeof what, "%s running_mean", b->name);
        EXPECT_CLOSE(what, rm, rmd, s->c, 1e-6);
        snprintf(what, sizeof what, "%s running_var", b->name);
        EXPECT_CLOSE(what, rv, rvd, s->c, 1e-6);

        /* In place: y may equal x. */
        float *z = falloc(n);
        memcpy(z, x, sizeof(float) * (size_t)n);
        batchnorm_forward_train(s, z, z, gamma, beta, NULL, NULL, 0.1f, 1e-5f, NULL, NULL, b->relu);
        snprintf(what, sizeof what, "%s train in place", b->name);
        EXPECT_CLOSE(what, z, yr, n, FWD_TOL);
        mem_free(z);

        mem_free(x), mem_free(y), mem_free(gamma), mem_free(beta), mem_free(rm), mem_free(rv);
        mem_free(smean), mem_free(sinv), mem_free(xd), mem_free(gd), mem_free(bd);
        mem_free(rmd), mem_free(rvd), mem_free(yr), mem_free(mean), mem_free(var);
        mem_free(invstd);
    }
}

/* Running statistics after two train steps follow r = 0.9 r + 0.1 s with the unbiased
 * variance; eval mode then normalises with them. */
static void test_batchnorm_running_stats(void)
{
    struct bn_shape s = {2, 3, 10};
    long n = bn_numel(&s);
    struct rng r;
    rng_seed(&r, 450);
    float *x = falloc(n), *y = falloc(n), rm[3] = {0, 0, 0}, rv[3] = {1, 1, 1};
    double em[3] = {0, 0, 0}, ev[3] = {1, 1, 1};
    for (int step = 0; step < 2; step++) {
        bn_fill(&r, &s, x);
        for (int c = 0; c < s.c; c++) {
            double m = 0, v = 0;
            for (int o = 0; o < s.outer; o++)
                for (long i = 0; i < s.inner; i++) m += x[(o * s.c + c) * s.inner + i];
            m /= 20;
            for (int o = 0; o < s.outer; o++)
                for (long i = 0; i < s.inner; i++) {
                    double d = x[(o * s.c + c) * s.inner + i] - m;
                    v += d * d;
                }
            em[c] = 0.9 * em[c] + 0.1 * m;
            ev[c] = 0.9 * ev[c] + 0.1 * v / 19;
        }
        batchnorm_forward_train(&s, y, x, NULL, NULL, rm, rv, 0.1f, 1e-5f, NULL, NULL, 0);
    }
    for (int c = 0; c < s.c; c++) {
        EXPECT_NEAR(rm[c], em[c], 1e-6);
        EXPECT_NEAR(rv[c], ev[c], 1e-6);
    }
    batchnorm_forward_eval(&s, y, x, NULL, NULL, rm, rv, 1e-5f, 0);
    for (int c = 0; c < s.c; c++) {
        long k = (1 * s.c + c) * s.inner + 4;
        EXPECT_NEAR(y[k], (x[k] - em[c]) / sqrt(ev[c] + 1e-5), 1e-5);
    }
    mem_free(x), mem_free(y);
}

struct bn_fd {
    const struct bn_shape *s;
    int train, relu;
    double *x, *gamma, *beta, *rm, *rv, *r, *y;
};

static double bn_loss(void *p)
{
    struct bn_fd *b = p;
    if (b->train)
        naive_batchnorm_train(b->s, b->y, b->x, b->gamma, b->beta, NULL, NULL, 0.1, 1e-5, NULL,
                              NULL, b->relu);
    else
        naive_batchnorm_eval(b->s, b->y, b->x, b->gamma, b->beta, b->rm, b->rv, 1e-5, b->relu);
    return dot(b->r, b->y, bn_numel(b->s));
}

static void test_batchnorm_gradients(void)
{
    for (int train = 0; train < 2; train++) {
        for (size_t k = 0; k < sizeof bn_cases / sizeof bn_cases[0]; k++) {
            const struct bn_case *b = &bn_cases[k];
            const struct bn_shape *s = &b->s;
            long n = bn_numel(s);
            struct rng r;
            rng_seed(&r, 500 + k);
            float *x = falloc(n), *y = falloc(n), *dy = falloc(n), *dx = falloc(n);
            float *gamma = falloc(s->c), *beta = falloc(s->c), *rm = falloc(s->c);
            float *rv = falloc(s->c), *smean = falloc(s->c), *sinv = falloc(s->c);
            float *dg = falloc(s->c), *db = falloc(s->c), *dx2 = falloc(n);
            bn_fill(&r, s, x);
            fill(&r, dy, n);
            rng_fill_uniform(&r, gamma, s->c, 0.5f, 1.5f);
            fill(&r, beta, s->c);
            rng_fill_uniform(&r, rm, s->c, -0.5f, 0.5f);
            rng_fill_uniform(&r, rv, s->c, 0.5f, 2.0f);
            struct bn_fd f = {s, train, b->relu, to_double(x, n), to_double(gamma, s->c),
                              to_double(beta, s->c), to_double(rm, s->c), to_double(rv, s->c),
                              to_double(dy, n), dalloc(n)};
            double *gx = dalloc(n), *gg = dalloc(s->c), *gb = dalloc(s->c);
            fd_grad(f.x, n, bn_loss, &f, gx);
            fd_grad(f.gamma, s->c, bn_loss, &f, gg);
            fd_grad(f.beta, s->c, bn_loss, &f, gb);
            for (int c = 0; c < s->c; c++) dg[c] = db[c] = NAN; /* written, not accumulated */
            if (train) {
                batchnorm_forward_train(s, y, x, gamma, beta, NULL, NULL, 0.1f, 1e-5f, smean,
                                        sinv, b->relu);
                batchnorm_backward_train(s, dx, dg, db, dy, x, y, b->relu, gamma, smean, sinv, 0);
            } else {
                batchnorm_forward_eval(s, y, x, gamma, beta, rm, rv, 1e-5f, b->relu);
                batchnorm_backward_eval(s, dx, dg, db, dy, x, y, b->relu, gamma, rm, rv, 1e-5f, 0);
            }
            char what[160];
            const char *mode = train ? "train" : "eval";
            snprintf(what, sizeof what, "%s %s dx", b->name, mode);
            EXPECT_CLOSE(what, dx, gx, n, GRAD_TOL);
            snprintf(what, sizeof what, "%s %s dgamma", b->name, mode);
            EXPECT_CLOSE(what, dg, gg, s->c, GRAD_TOL);
            snprintf(what, sizeof what, "%s %s dbeta", b->name, mode);
            EXPECT_CLOSE(what, db, gb, s->c, GRAD_TOL);

            /* accumulate adds; NULL parameter gradients change nothing else. */
            double *acc = dalloc(n);
            for (long i = 0; i < n; i++) {
                dx2[i] = 0.25f * (float)(i % 5);
                acc[i] = dx2[i] + (double)dx[i];
            }
            if (train)
                batchnorm_backward_train(s, dx2, NULL, NULL, dy, x, y, b->relu, gamma, smean,
                                         sinv, 1);
            else
                batchnorm_backward_eval(s, dx2, NULL, NULL, dy, x, y, b->relu, gamma, rm, rv,
                                        1e-5f, 1);
            snprintf(what, sizeof what, "%s %s accumulate", b->name, mode);
            EXPECT_CLOSE(what, dx2, acc, n, 1e-6);
            mem_free(acc);

            /* the relu mask recomputed from x is y > 0 exactly: the same bits */
            float *dg2 = falloc(s->c), *db2 = falloc(s->c);
            if (train)
                batchnorm_backward_train_x(s, dx2, dg2, db2, dy, x, b->relu, gamma, beta, smean,
                                           sinv, 0);
            else
                batchnorm_backward_eval_x(s, dx2, dg2, db2, dy, x, b->relu, gamma, beta, rm, rv,
                                          1e-5f, 0);
            EXPECT(memcmp(dx2, dx, sizeof(float) * (size_t)n) == 0);
            EXPECT(memcmp(dg2, dg, sizeof(float) * (size_t)s->c) == 0);
            EXPECT(memcmp(db2, db, sizeof(float) * (size_t)s->c) == 0);
            mem_free(dg2), mem_free(db2);

            mem_free(x), mem_free(y), mem_free(dy), mem_free(dx), mem_free(gamma);
            mem_free(beta), mem_free(rm), mem_free(rv), mem_free(smean), mem_free(sinv);
            mem_free(dg), mem_free(db), mem_free(dx2), mem_free(f.x), mem_free(f.gamma);
            mem_free(f.beta), mem_free(f.rm), mem_free(f.rv), mem_free(f.r), mem_free(f.y);
            mem_free(gx), mem_free(gg), mem_free(gb);
        }
    }
}

/* ----------------------------------------------------------------------------- elementwise */

/* Values at least 0.05 away from 0, so h never crosses relu's kink. */
static void fill_off_zero(struct rng *r, float *x, long n)
{
    fill(r, x, n);
    for (long i = 0; i < n; i++) x[i] += x[i] >= 0 ? 0.05f : -0.05f;
}

struct ew_fd {
    int op; /* 0 relu, 1 add, 2 add + relu, 3 roll, 4 dropout */
    long n;
    int rn, rc, shift;
    long rhw;
    double p;
    const uint8_t *mask;
    double *a, *b, *r, *y;
};

static double ew_loss(void *p)
{
    struct ew_fd *e = p;
    switch (e->op) {
    case 0: naive_relu(e->n, e->y, e->a); break;
    case 1: naive_add(e->n, e->y, e->a, e->b, 0); break;
    case 2: naive_add(e->n, e->y, e->a, e->b, 1); break;
    case 3: naive_roll(e->rn, e->rc, e->rhw, e->shift, e->y, e->a); break;
    default: naive_dropout(e->n, e->y, e->a, e->p, e->mask); break;
    }
    return dot(e->r, e->y, e->n);
}

static void test_relu_add(void)
{
    long n = 301;
    struct rng r;
    rng_seed(&r, 600);
    float *a = falloc(n), *b = falloc(n), *y = falloc(n), *dy = falloc(n), *da = falloc(n);
    float *db = falloc(n), *z = falloc(n);
    fill_off_zero(&r, a, n);
    fill_off_zero(&r, b, n);
    for (long i = 0; i < n; i++) b[i] = b[i] * 0.5f + (i % 3 ? 0.1f : -0.1f); /* a+b off 0 */
    for (long i = 0; i < n; i++)
        if (fabsf(a[i] + b[i]) < 0.02f) b[i] += 0.05f;
    fill(&r, dy, n);
    struct ew_fd f = {.n = n, .a = to_double(a, n), .b = to_double(b, n), .r = to_double(dy, n),
                      .y = dalloc(n)};
    double *ga = dalloc(n), *gb = dalloc(n), *yr = dalloc(n), *acc = dalloc(n);

    /* relu */
    naive_relu(n, yr, f.a);
    relu_forward(n, y, a);
    EXPECT_CLOSE("relu forward", y, yr, n, 0);
    f.op = 0;
    fd_grad(f.a, n, ew_loss, &f, ga);
    relu_backward(n, da, dy, y, 0);
    EXPECT_CLOSE("relu dx", da, ga, n, GRAD_TOL);
    for (long i = 0; i < n; i++) acc[i] = (double)da[i] + da[i];
    relu_backward(n, da, dy, y, 1);
    EXPECT_CLOSE("relu accumulate", da, acc, n, 1e-7);
    memcpy(z, a, sizeof(float) * (size_t)n);
    relu_forward(n, z, z);
    EXPECT_CLOSE("relu in place", z, yr, n, 0);

    for (int relu = 0; relu < 2; relu++) {
        naive_add(n, yr, f.a, f.b, relu);
        add_forward(n, y, a, b, relu);
        EXPECT_CLOSE("add forward", y, yr, n, 1e-7);
        f.op = 1 + relu;
        fd_grad(f.a, n, ew_loss, &f, ga);
        fd_grad(f.b, n, ew_loss, &f, gb);
        add_backward(n, da, db, dy, y, relu, 0, 0);
        EXPECT_CLOSE(relu ? "add+relu da" : "add da", da, ga, n, GRAD_TOL);
        EXPECT_CLOSE(relu ? "add+relu db" : "add db", db, gb, n, GRAD_TOL);
        /* accumulate one, write the other; NULL skips. */
        for (long i = 0; i < n; i++) acc[i] = 2.0 * da[i];
        add_backward(n, da, NULL, dy, y, relu, 1, 0);
        EXPECT_CLOSE("add accumulate a", da, acc, n, 1e-7);
        for (long i = 0; i < n; i++) db[i] = 5.0f;
        add_backward(n, NULL, db, dy, y, relu, 0, 0);
        EXPECT_CLOSE("add write b", db, gb, n, GRAD_TOL);
        /* y may equal a: in place. */
        memcpy(z, a, sizeof(float) * (size_t)n);
        add_forward(n, z, z, b, relu);
        EXPECT_CLOSE("add in place", z, yr, n, 1e-7);
    }
    mem_free(a), mem_free(b), mem_free(y), mem_free(dy), mem_free(da), mem_free(db);
    mem_free(z), mem_free(f.a), mem_free(f.b), mem_free(f.r), mem_free(f.y), mem_free(ga);
    mem_free(gb), mem_free(yr), mem_free(acc);
}

static void test_roll(void)
{
    int nn = 2, c = 5;
    long hw = 6, n = nn * c * hw;
    int shifts[] = {1, -2, 7, 0, 5};
    struct rng r;
    rng_seed(&r, 650);
    float *x = falloc(n), *y = falloc(n), *dy = falloc(n), *dx = falloc(n);
    fill(&r, x, n);
    fill(&r, dy, n);
    struct ew_fd f = {.op = 3, .n = n, .rn = nn, .rc = c, .rhw = hw, .a = to_double(x, n),
                      .r = to_double(dy, n), .y = dalloc(n)};
    double *yr = dalloc(n), *g = dalloc(n), *acc = dalloc(n);
    for (size_t k = 0; k < sizeof shifts / sizeof shifts[0]; k++) {
        f.shift = shifts[k];
        naive_roll(nn, c, hw, shifts[k], yr, f.a);
        roll_forward(nn, c, hw, shifts[k], y, x);
        EXPECT_CLOSE("roll forward", y, yr, n, 0);
        fd_grad(f.a, n, ew_loss, &f, g);
        roll_backward(nn, c, hw, shifts[k], dx, dy, 0);
        EXPECT_CLOSE("roll dx", dx, g, n, GRAD_TOL);
        for (long i = 0; i < n; i++) acc[i] = 2.0 * dx[i];
        roll_backward(nn, c, hw, shifts[k], dx, dy, 1);
        EXPECT_CLOSE("roll accumulate", dx, acc, n, 1e-7);
    }
    /* torch.roll(x, 1, 1) puts channel C-1 first. */
    roll_forward(nn, c, hw, 1, y, x);
    EXPECT(y[0] == x[(c - 1) * hw]);
    mem_free(x), mem_free(y), mem_free(dy), mem_free(dx), mem_free(f.a), mem_free(f.r);
    mem_free(f.y), mem_free(yr), mem_free(g), mem_free(acc);
}

static void test_dropout(void)
{
    long n = 4000;
    float p = 0.2f;
    struct rng r, r2;
    rng_seed(&r, 700);
    float *x = falloc(n), *y = falloc(n), *y2 = falloc(n), *dy = falloc(n), *dx = falloc(n);
    uint8_t *mask = malloc((size_t)n), *mask2 = malloc((size_t)n);
    REQUIRE(mask && mask2);
    fill(&r, x, n);
    fill(&r, dy, n);
    rng_seed(&r, 701);
    r2 = r;
    dropout_forward(n, y, x, p, mask, &r);
    memcpy(y2, x, sizeof(float) * (size_t)n);
    dropout_forward(n, y2, y2, p, mask2, &r2); /* same stream, in place */
    EXPECT(memcmp(mask, mask2, (size_t)n) == 0);
    EXPECT(memcmp(y, y2, sizeof(float) * (size_t)n) == 0);
    EXPECT(rng_u64(&r) == rng_u64(&r2));
    long kept = 0;
    for (long i = 0; i < n; i++) kept += mask[i];
    EXPECT_NEAR((double)kept / n, 1 - p, 0.03);
    double *xd = to_double(x, n), *yr = dalloc(n);
    naive_dropout(n, yr, xd, p, mask);
    EXPECT_CLOSE("dropout forward", y, yr, n, 1e-7);

    struct ew_fd f = {.op = 4, .n = n, .p = p, .mask = mask, .a = xd, .r = to_double(dy, n),
                      .y = dalloc(n)};
    double *g = dalloc(n), *acc = dalloc(n);
    fd_grad(f.a, n, ew_loss, &f, g);
    dropout_backward(n, dx, dy, p, mask, 0);
    EXPECT_CLOSE("dropout dx", dx, g, n, GRAD_TOL);
    for (long i = 0; i < n; i++) acc[i] = 2.0 * dx[i];
    dropout_backward(n, dx, dy, p, mask, 1);
    EXPECT_CLOSE("dropout accumulate", dx, acc, n, 1e-7);

    /* p == 0: a copy, everything kept. */
    dropout_forward(n, y, x, 0.0f, mask, &r);
    EXPECT(memcmp(y, x, sizeof(float) * (size_t)n) == 0);
    kept = 0;
    for (long i = 0; i < n; i++) kept += mask[i];
    EXPECT_EQ_INT(kept, n);
    mem_free(x), mem_free(y), mem_free(y2), mem_free(dy), mem_free(dx), free(mask);
    free(mask2), mem_free(xd), mem_free(yr), mem_free(f.r), mem_free(f.y), mem_free(g);
    mem_free(acc);
}

/* ----------------------------------------------------------------------------- pooling */

struct pool_case {
    const char *name;
    int n, c, fi, ti, kf, kt, sf, st;
};

static const struct pool_case pool_cases[] = {
    {"2x2 even", 2, 3, 6, 8, 2, 2, 2, 2},
    {"2x2 odd sizes (floor)", 2, 2, 7, 9, 2, 2, 2, 2},
    {"3x3 stride 2 overlapping", 1, 2, 9, 8, 3, 3, 2, 2},
    {"3x2 stride (1, 2)", 1, 3, 6, 7, 3, 2, 1, 2},
    {"1x4 stride 3", 2, 1, 3, 13, 1, 4, 1, 3},
    {"2x2 big (parallel)", 4, 16, 33, 41, 2, 2, 2, 2},
};

static struct pool2d_shape pool_shape_of(const struct pool_case *c)
{
    struct pool2d_shape s = {.n = c->n, .c = c->c, .fi = c->fi, .ti = c->ti, .kf = c->kf,
                             .kt = c->kt, .sf = c->sf, .st = c->st};
    CHECK(pool2d_shape_init(&s) == 0);
    return s;
}

struct pool_fd {
    const struct pool2d_shape *s;
    int max;
    double *x, *r, *y;
};

static double pool_loss(void *p)
{
    struct pool_fd *f = p;
    if (f->max) naive_maxpool2d(f->s, f->y, f->x);
    else naive_avgpool2d(f->s, f->y, f->x);
    return dot(f->r, f->y, (long)f->s->n * f->s->c * f->s->fo * f->s->to);
}

static void test_pool2d_shape_init(void)
{
    struct pool2d_shape s = {
        .n = 1, .c = 32, .fi = 127, .ti = 215, .kf = 2, .kt = 2, .sf = 2, .st = 2};
    REQUIRE_OK(pool2d_shape_init(&s));
    EXPECT_EQ_INT(s.fo, 63);
    EXPECT_EQ_INT(s.to, 107);
    s.kf = 200;
    EXPECT_EQ_INT(pool2d_shape_init(&s), STATUS_INVALID);
    s.kf = 2;
    s.sf = 0;
    EXPECT_EQ_INT(pool2d_shape_init(&s), STATUS_INVALID);
}

static void test_pool2d(void)
{
    for (size_t k = 0; k < sizeof pool_cases / sizeof pool_cases[0]; k++) {
        const struct pool_case *c = &pool_cases[k];
        struct pool2d_shape s = pool_shape_of(c);
        long nx = (long)s.n * s.c * s.fi * s.ti, ny = (long)s.n * s.c * s.fo * s.to;
        int big = nx > 10000; /* finite differences only on the small cases */
        struct rng r;
        rng_seed(&r, 800 + k);
        float *x = falloc(nx), *y = falloc(ny), *dy = falloc(ny), *dx = falloc(nx);
        fill_distinct(&r, x, nx);
        fill(&r, dy, ny);
        struct pool_fd f = {&s, 0, to_double(x, nx), to_double(dy, ny), dalloc(ny)};
        double *yr = dalloc(ny), *g = dalloc(nx), *acc = dalloc(nx);
        char what[160];
        for (int max = 0; max < 2; max++) {
            const char *op = max ? "maxpool" : "avgpool";
            f.max = max;
            if (max) {
                naive_maxpool2d(&s, yr, f.x);
                maxpool2d_forward(&s, y, x);
            } else {
                naive_avgpool2d(&s, yr, f.x);
                avgpool2d_forward(&s, y, x);
            }
            snprintf(what, sizeof what, "%s %s forward", op, c->name);
            EXPECT_CLOSE(what, y, yr, ny, FWD_TOL);
            if (big) {
                /* The adjoint identity <dy, pool(x)> = <pool^T(dy), x> for linear avg pool, and
                 * the gradient landing on the argmax for max pool. */
                if (max) maxpool2d_backward(&s, dx, dy, x, y, 0);
                else avgpool2d_backward(&s, dx, dy, 0);
                double lhs = dot(f.r, yr, ny), rhs = 0;
                for (long i = 0; i < nx; i++) rhs += (double)dx[i] * f.x[i];
                snprintf(what, sizeof what, "%s %s adjoint", op, c->name);
                EXPECT_MSG(fabs(lhs - rhs) <= 1e-4 * (1 + fabs(lhs)), "%s: %g vs %g", what, lhs,
                           rhs);
                continue;
            }
            fd_grad(f.x, nx, pool_loss, &f, g);
            if (max) maxpool2d_backward(&s, dx, dy, x, y, 0);
            else avgpool2d_backward(&s, dx, dy, 0);
            snprintf(what, sizeof what, "%s %s dx", op, c->name);
            EXPECT_CLOSE(what, dx, g, nx, GRAD_TOL);
            for (long i = 0; i < nx; i++) acc[i] = 2.0 * dx[i];
            if (max) maxpool2d_backward(&s, dx, dy, x, y, 1);
            else avgpool2d_backward(&s, dx, dy, 1);
            snprintf(what, sizeof what, "%s %s accumulate", op, c->name);
            EXPECT_CLOSE(what, dx, acc, nx, 1e-6);
        }
        mem_free(x), mem_free(y), mem_free(dy), mem_free(dx), mem_free(f.x), mem_free(f.r);
        mem_free(f.y), mem_free(yr), mem_free(g), mem_free(acc);
    }
}

/* Ties go to the first maximum of the window, as PyTorch. */
static void test_maxpool_ties(void)
{
    struct pool2d_shape s = {.n = 1, .c = 1, .fi = 2, .ti = 4, .kf = 2, .kt = 2, .sf = 2, .st = 2};
    REQUIRE_OK(pool2d_shape_init(&s));
    float x[8] = {1, 3, 5, 2, 3, 3, 5, 5}, y[2], dy[2] = {1, 10}, dx[8];
    maxpool2d_forward(&s, y, x);
    EXPECT(y[0] == 3 && y[1] == 5);
    maxpool2d_backward(&s, dx, dy, x, y, 0);
    float want[8] = {0, 1, 10, 0, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++) EXPECT(dx[i] == want[i]);
    float xm[6] = {2, 7, 7, 1, 7, 0}, ym[2], dym[2] = {1, 2}, dxm[6];
    max_forward(1, 3, 2, ym, xm); /* (1, 3, 2): columns (2, 7, 7) and (7, 1, 0) */
    EXPECT(ym[0] == 7 && ym[1] == 7);
    max_backward(1, 3, 2, dxm, dym, xm, ym, 0);
    float wantm[6] = {0, 2, 1, 0, 0, 0};
    for (int i = 0; i < 6; i++) EXPECT(dxm[i] == wantm[i]);
}

/* NaN propagates, as in PyTorch, and takes the gradient (the first NaN of a window). */
static void test_max_nan(void)
{
    float x[8] = {1, NAN, 5, 2, 3, 9, NAN, NAN}, y[2], dy[2] = {1, 10}, dx[8];
    struct pool2d_shape s = {.n = 1, .c = 1, .fi = 2, .ti = 4, .kf = 2, .kt = 2, .sf = 2, .st = 2};
    REQUIRE_OK(pool2d_shape_init(&s));
    maxpool2d_forward(&s, y, x);
    EXPECT(isnan(y[0]) && isnan(y[1]));
    maxpool2d_backward(&s, dx, dy, x, NULL, 0);
    float want[8] = {0, 1, 0, 0, 0, 0, 10, 0};
    for (int i = 0; i < 8; i++) EXPECT(dx[i] == want[i]);
    /* The generic window path (2 x 3). */
    struct pool2d_shape g = {.n = 1, .c = 1, .fi = 2, .ti = 4, .kf = 2, .kt = 3, .sf = 1, .st = 1};
    REQUIRE_OK(pool2d_shape_init(&g));
    maxpool2d_forward(&g, y, x);
    EXPECT(isnan(y[0]) && isnan(y[1]));
    maxpool2d_backward(&g, dx, dy, x, NULL, 0);
    float wantg[8] = {0, 11, 0, 0, 0, 0, 0, 0}; /* both windows start at the NaN at [1] */
    for (int i = 0; i < 8; i++) EXPECT(dx[i] == wantg[i]);
    /* Reductions: along a row (inner 1) and across rows. */
    max_forward(2, 4, 1, y, x);
    EXPECT(isnan(y[0]) && isnan(y[1]));
    max_backward(2, 4, 1, dx, dy, x, NULL, 0);
    float wantr[8] = {0, 1, 0, 0, 0, 0, 10, 0};
    for (int i = 0; i < 8; i++) EXPECT(dx[i] == wantr[i]);
    max_forward(1, 4, 2, y, x); /* columns (1, 5, 3, NaN) and (NaN, 2, 9, NaN) */
    EXPECT(isnan(y[0]) && isnan(y[1]));
}

/* ----------------------------------------------------------------------------- reductions */

struct red_fd {
    int outer, len, max;
    long inner;
    double *x, *r, *y;
};

static double red_loss(void *p)
{
    struct red_fd *f = p;
    if (f->max) naive_max(f->outer, f->len, f->inner, f->y, f->x);
    else naive_mean(f->outer, f->len, f->inner, f->y, f->x);
    return dot(f->r, f->y, (long)f->outer * f->inner);
}

static void test_reductions(void)
{
    int cases[][3] = {{6, 5, 7}, {4, 9, 1}, {2, 4, 300}, {3, 1, 5}, {64, 40, 30}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int outer = cases[k][0], len = cases[k][1];
        long inner = cases[k][2], nx = (long)outer * len * inner, ny = (long)outer * inner;
        int big = nx > 10000;
        struct rng r;
        rng_seed(&r, 900 + k);
        float *x = falloc(nx), *y = falloc(ny), *dy = falloc(ny), *dx = falloc(nx);
        fill_distinct(&r, x, nx);
        fill(&r, dy, ny);
        struct red_fd f = {outer, len, 0, inner, to_double(x, nx), to_double(dy, ny), dalloc(ny)};
        double *yr = dalloc(ny), *g = dalloc(nx), *acc = dalloc(nx);
        char what[160];
        for (int max = 0; max < 2; max++) {
            const char *op = max ? "max" : "mean";
            f.max = max;
            if (max) {
                naive_max(outer, len, inner, yr, f.x);
                max_forward(outer, len, inner, y, x);
            } else {
                naive_mean(outer, len, inner, yr, f.x);
                mean_forward(outer, len, inner, y, x);
            }
            snprintf(what, sizeof what, "%s (%d, %d, %ld) forward", op, outer, len, inner);
            EXPECT_CLOSE(what, y, yr, ny, FWD_TOL);
            if (max) max_backward(outer, len, inner, dx, dy, x, y, 0);
            else mean_backward(outer, len, inner, dx, dy, 0);
            if (!big) {
                fd_grad(f.x, nx, red_loss, &f, g);
                snprintf(what, sizeof what, "%s (%d, %d, %ld) dx", op, outer, len, inner);
                EXPECT_CLOSE(what, dx, g, nx, GRAD_TOL);
            }
            for (long i = 0; i < nx; i++) acc[i] = 2.0 * dx[i];
            if (max) max_backward(outer, len, inner, dx, dy, x, y, 1);
            else mean_backward(outer, len, inner, dx, dy, 1);
            snprintf(what, sizeof what, "%s (%d, %d, %ld) accumulate", op, outer, len, inner);
            EXPECT_CLOSE(what, dx, acc, nx, 1e-6);
        }
        mem_free(x), mem_free(y), mem_free(dy), mem_free(dx), mem_free(f.x), mem_free(f.r);
        mem_free(f.y), mem_free(yr), mem_free(g), mem_free(acc);
    }
}

/* ----------------------------------------------------------------------------- linear */

struct lin_fd {
    int n, in, out;
    double *x, *w, *b, *r, *y;
};

static double lin_loss(void *p)
{
    struct lin_fd *f = p;
    naive_linear(f->n, f->in, f->out, f->y, f->x, f->w, f->b);
    return dot(f->r, f->y, (long)f->n * f->out);
}

static void test_linear(void)
{
    int n = 5, in = 7, out = 4;
    long nx = n * in, nw = out * in, ny = n * out;
    struct rng r;
    rng_seed(&r, 1000);
    float *x = falloc(nx), *w = falloc(nw), *b = falloc(out), *y = falloc(ny);
    float *dy = falloc(ny), *dx = falloc(nx), *dw = falloc(nw), *db = falloc(out);
    fill(&r, x, nx);
    fill(&r, w, nw);
    fill(&r, b, out);
    fill(&r, dy, ny);
    struct lin_fd f = {n, in, out, to_double(x, nx), to_double(w, nw), to_double(b, out),
                       to_double(dy, ny), dalloc(ny)};
    double *yr = dalloc(ny), *gx = dalloc(nx), *gw = dalloc(nw), *gb = dalloc(out);
    double *acc = dalloc(nx);
    naive_linear(n, in, out, yr, f.x, f.w, f.b);
    linear_forward(n, in, out, y, x, w, b);
    EXPECT_CLOSE("linear forward", y, yr, ny, FWD_TOL);
    naive_linear(n, in, out, yr, f.x, f.w, NULL);
    linear_forward(n, in, out, y, x, w, NULL);
    EXPECT_CLOSE("linear forward no bias", y, yr, ny, FWD_TOL);

    fd_grad(f.x, nx, lin_loss, &f, gx);
    fd_grad(f.w, nw, lin_loss, &f, gw);
    fd_grad(f.b, out, lin_loss, &f, gb);
    for (long i = 0; i < nw; i++) dw[i] = NAN;
    for (int o = 0; o < out; o++) db[o] = NAN;
    linear_backward(n, in, out, dx, dw, db, dy, x, w, 0);
    EXPECT_CLOSE("linear dx", dx, gx, nx, GRAD_TOL);
    EXPECT_CLOSE("linear dw", dw, gw, nw, GRAD_TOL);
    EXPECT_CLOSE("linear db", db, gb, out, GRAD_TOL);
    for (long i = 0; i < nx; i++) acc[i] = 2.0 * dx[i];
    linear_backward(n, in, out, dx, NULL, NULL, dy, x, w, 1);
    EXPECT_CLOSE("linear accumulate", dx, acc, nx, 1e-6);
    for (long i = 0; i < nw; i++) dw[i] = NAN;
    linear_backward(n, in, out, NULL, dw, NULL, dy, x, w, 0);
    EXPECT_CLOSE("linear dw alone", dw, gw, nw, GRAD_TOL);
    EXPECT_CLOSE("linear dx untouched", dx, acc, nx, 1e-6);
    mem_free(x), mem_free(w), mem_free(b), mem_free(y), mem_free(dy), mem_free(dx);
    mem_free(dw), mem_free(db), mem_free(f.x), mem_free(f.w), mem_free(f.b), mem_free(f.r);
    mem_free(f.y), mem_free(yr), mem_free(gx), mem_free(gw), mem_free(gb), mem_free(acc);
}

/* ----------------------------------------------------------------------------- add + pool */

/* The fused residual sum + 2x2 max pool equals add_forward then maxpool2d_forward, and its
 * backward maxpool2d_backward then add_backward, bit for bit: odd sizes, ties (zeros after
 * the relu), a NaN, with and without relu, writing and accumulating. */
static void test_addpool_matches_add_then_pool(void)
{
    struct rng r;
    rng_seed(&r, 1500);
    /* widths whose rows end in 2, 1, 0, 7 and 6 windows past the last eight */
    static const int widths[] = {37, 3, 16, 31, 29};
    for (int relu = 0; relu < 2; relu++)
        for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
            struct pool2d_shape s = {
                .n = 2, .c = 3, .fi = 7, .ti = widths[wi], .kf = 2, .kt = 2, .sf = 2, .st = 2};
            REQUIRE_OK(pool2d_shape_init(&s));
            long n = (long)s.n * s.c * s.fi * s.ti, no = (long)s.n * s.c * s.fo * s.to;
            float *a = falloc(n), *b = falloc(n), *v = falloc(n), *y1 = falloc(no),
                  *y2 = falloc(no);
            float *dy = falloc(no), *g = falloc(n), *da1 = falloc(n), *db1 = falloc(n);
            float *da2 = falloc(n), *db2 = falloc(n);
            uint8_t *arg = malloc((size_t)no);
            fill(&r, a, n);
            fill(&r, b, n);
            fill(&r, dy, no);
            for (long i = 0; i < n; i += 5) b[i] = -a[i]; /* exact zeros: ties */
            a[17] = NAN;
            add_forward(n, v, a, b, relu);
            maxpool2d_forward(&s, y1, v);
            addpool_forward(&s, y2, NULL, a, b, relu, NULL); /* no argmax: the same maxima */
            EXPECT(memcmp(y1, y2, sizeof(float) * (size_t)no) == 0);
            addpool_forward(&s, y2, arg, a, b, relu, NULL);
            EXPECT(memcmp(y1, y2, sizeof(float) * (size_t)no) == 0);
            /* a BN of either input applied as the add reads it: what the BN would have written */
            for (int input = 0; input < 2; input++) {
                struct bn_shape bs = {s.n, s.c, (long)s.fi * s.ti};
                float mean[3], scale[3], shift[3], g3[3] = {0.5f, 1.5f, -1},
                                                   b3[3] = {0.1f, -0.2f, 0};
                float *bnout = falloc(n), *v2 = falloc(n), *y3 = falloc(no), *y4 = falloc(no);
                const float *x = input ? b : a;
                batchnorm_forward_train(&bs, bnout, x, g3, b3, NULL, NULL, 0.1f, 1e-5f, NULL, NULL,
                                        0);
                batchnorm_affine_train(&bs, x, g3, b3, NULL, NULL, 0.1f, 1e-5f, NULL, NULL, NULL,
                                       NULL, mean, scale, shift);
                struct add_bn ab = {input, s.c, (long)s.fi * s.ti, mean, scale, shift};
                add_forward(n, v, input ? a : bnout, input ? bnout : b, relu);
                add_bn_forward(n, v2, a, b, relu, &ab);
                EXPECT(memcmp(v, v2, sizeof(float) * (size_t)n) == 0);
                maxpool2d_forward(&s, y3, v);
                addpool_forward(&s, y4, arg, a, b, relu, &ab);
                EXPECT(memcmp(y3, y4, sizeof(float) * (size_t)no) == 0);
                mem_free(bnout), mem_free(v2), mem_free(y3), mem_free(y4);
            }
            add_forward(n, v, a, b, relu);
            addpool_forward(&s, y2, arg, a, b, relu, NULL);
            for (int acc = 0; acc < 2; acc++) {
                for (long i = 0; i < n; i++)
                    da1[i] = da2[i] = (float)(i % 3), db1[i] = db2[i] = (float)(i % 4);
                maxpool2d_backward(&s, g, dy, v, y1, 0);
                add_backward(n, da1, db1, g, v, relu, acc, 1);
                addpool_backward(&s, da2, db2, dy, arg, acc, 1);
                EXPECT(memcmp(da1, da2, sizeof(float) * (size_t)n) == 0);
                EXPECT(memcmp(db1, db2, sizeof(float) * (size_t)n) == 0);
            }
            mem_free(a), mem_free(b), mem_free(v), mem_free(y1), mem_free(y2), mem_free(dy);
            mem_free(g), mem_free(da1), mem_free(db1), mem_free(da2), mem_free(db2);
            free(arg);
        }
}

/* ----------------------------------------------------------------------------- dwpair */

struct dwp_case {
    const char *name;
    int n, c, f, t;
    int generic; /* 0: SP4ASC's (1, 3) dilated (1, 2) and (3, 1) dilated (2, 1); 1: 3x3 + 1x5 */
    int relu, pool, pw;
};

static const struct dwp_case dwp_cases[] = {
    {"sp4asc pair, relu, pool, odd sizes", 2, 3, 9, 11, 0, 1, 1, 0},
    {"sp4asc pair, no relu, no pool", 2, 2, 6, 13, 0, 0, 0, 0},
    {"sp4asc pair, folded 1x1, one sample", 1, 4, 8, 10, 0, 1, 1, 1},
    {"sp4asc pair, folded 1x1, three samples", 3, 3, 7, 9, 0, 1, 1, 1},
    {"3x3 + 1x5, relu, no pool, wide rows", 2, 2, 5, 37, 1, 1, 0, 0},
};

static struct dwpair_shape dwp_shape_of(const struct dwp_case *c)
{
    struct dwpair_shape s = {.n = c->n, .c = c->c, .f = c->f, .t = c->t, .relu = c->relu,
                             .pool = c->pool, .pw = c->pw};
    if (c->generic) {
        int kf[2] = {3, 1}, kt[2] = {3, 5}, pf[2] = {1, 0}, pt[2] = {1, 2};
        for (int k = 0; k < 2; k++)
            s.kf[k] = kf[k], s.kt[k] = kt[k], s.pf[k] = pf[k], s.pt[k] = pt[k], s.df[k] = s.dt[k] = 1;
    } else {
        int kf[2] = {1, 3}, kt[2] = {3, 1}, pf[2] = {0, 2}, pt[2] = {2, 0};
        int df[2] = {1, 2}, dt[2] = {2, 1};
        for (int k = 0; k < 2; k++)
            s.kf[k] = kf[k], s.kt[k] = kt[k], s.pf[k] = pf[k], s.pt[k] = pt[k], s.df[k] = df[k],
            s.dt[k] = dt[k];
    }
    CHECK(dwpair_shape_check(&s) == 0);
    return s;
}

/* The tensors of one case, float and double. */
struct dwp_data {
    struct dwpair_shape s;
    long nx, nout, na, nb;
    float *x, *pw, *wa, *wb, *g, *b;
    double *xd, *pwd, *wad, *wbd, *gd, *bd, *r, *out;
    int train;
};

static void dwp_init(struct dwp_data *d, const struct dwp_case *c, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    d->s = dwp_shape_of(c);
    const struct dwpair_shape *s = &d->s;
    d->nx = (long)s->n * (s->pw ? 1 : s->c) * s->f * s->t;
    d->nout = (long)s->n * s->c * (s->pool ? (long)(s->f / 2) * (s->t / 2) : (long)s->f * s->t);
    d->na = (long)s->c * s->kf[0] * s->kt[0], d->nb = (long)s->c * s->kf[1] * s->kt[1];
    d->x = falloc(d->nx), d->pw = falloc(s->c), d->wa = falloc(d->na), d->wb = falloc(d->nb);
    d->g = falloc(s->c), d->b = falloc(s->c);
    fill(&r, d->x, d->nx);
    rng_fill_uniform(&r, d->pw, s->c, 0.5f, 1.5f);
    fill(&r, d->wa, d->na);
    fill(&r, d->wb, d->nb);
    rng_fill_uniform(&r, d->g, s->c, 0.5f, 1.5f);
    fill(&r, d->b, s->c);
    float *rf = falloc(d->nout);
    fill(&r, rf, d->nout);
    d->r = to_double(rf, d->nout);
    mem_free(rf);
    d->xd = to_double(d->x, d->nx), d->pwd = to_double(d->pw, s->c);
    d->wad = to_double(d->wa, d->na), d->wbd = to_double(d->wb, d->nb);
    d->gd = to_double(d->g, s->c), d->bd = to_double(d->b, s->c);
    d->out = dalloc(d->nout);
}

static void dwp_fini(struct dwp_data *d)
{
    mem_free(d->x), mem_free(d->pw), mem_free(d->wa), mem_free(d->wb), mem_free(d->g);
    mem_free(d->b), mem_free(d->xd), mem_free(d->pwd), mem_free(d->wad), mem_free(d->wbd);
    mem_free(d->gd), mem_free(d->bd), mem_free(d->r), mem_free(d->out);
}

/* Running statistics for eval mode: mean 0.1 c, var 0.5 + 0.25 c. */
static void dwp_running(int c, double *rm, double *rv)
{
    for (int k = 0; k < c; k++) rm[k] = 0.1 * k, rv[k] = 0.5 + 0.25 * k;
}

static double dwp_loss(void *ctx)
{
    struct dwp_data *d = ctx;
    double rm[64], rv[64];
    dwp_running(d->s.c, rm, rv);
    naive_dwpair(&d->s, d->train, d->out, d->xd, d->pwd, d->wad, d->wbd, d->gd, d->bd,
                 d->train ? NULL : rm, d->train ? NULL : rv, 0.1, 1e-5, NULL, NULL);
    return dot(d->out, d->r, d->nout);
}

/* Forward (train and eval: output, saved and running statistics) against the naive pair. */
static void test_dwpair_vs_naive(void)
{
    for (size_t k = 0; k < sizeof dwp_cases / sizeof dwp_cases[0]; k++) {
        struct dwp_data d;
        dwp_init(&d, &dwp_cases[k], 1300 + k);
        const struct dwpair_shape *s = &d.s;
        float *out = falloc(d.nout), *scratch = falloc((long)dwpair_scratch_floats(s, threads_get()));
        for (int train = 0; train < 2; train++) {
            double rmd[64], rvd[64], mean[64], var[64];
            float rm[64], rv[64], sm[64], si[64];
            dwp_running(s->c, rmd, rvd);
            for (int c = 0; c < s->c; c++) rm[c] = (float)rmd[c], rv[c] = (float)rvd[c];
            naive_dwpair(s, train, d.out, d.xd, d.pwd, d.wad, d.wbd, d.gd, d.bd, rmd, rvd, 0.1,
                         1e-5, mean, var);
            dwpair_forward(s, train, out, d.x, d.pw, d.wa, d.wb, d.g, d.b, rm, rv, 0.1f, 1e-5f, sm,
                           si, scratch);
            char what[160];
            snprintf(what, sizeof what, "%s train=%d forward", dwp_cases[k].name, train);
            EXPECT_CLOSE(what, out, d.out, d.nout, FWD_TOL);
            for (int c = 0; c < s->c; c++) {
                EXPECT_NEAR(rm[c], rmd[c], 1e-5 * (1 + fabs(rmd[c])));
                EXPECT_NEAR(rv[c], rvd[c], 1e-5 * (1 + fabs(rvd[c])));
                if (!train) continue;
                EXPECT_NEAR(sm[c], mean[c], 1e-5 * (1 + sqrt(var[c])));
                EXPECT_NEAR(si[c], 1 / sqrt(var[c] + 1e-5), 1e-4 / sqrt(var[c] + 1e-5));
            }
        }
        mem_free(out), mem_free(scratch);
        dwp_fini(&d);
    }
}

/* Backward against finite differences of the naive pair (train and eval), from the pooled
 * gradient and from the full-size one (a backward started at the batch norm); in place and
 * accumulating; and the same bits on one and two threads. */
static void test_dwpair_gradients(void)
{
    for (size_t k = 0; k < sizeof dwp_cases / sizeof dwp_cases[0]; k++)
        for (int train = 0; train < 2; train++) {
            struct dwp_data d;
            dwp_init(&d, &dwp_cases[k], 1400 + k);
            d.train = train;
            struct dwpair_shape *s = &d.s;
            int C = s->c;
            long nh = (long)s->n * C * s->f * s->t;
            float *scratch = falloc((long)dwpair_scratch_floats(s, 2));
            float *out = falloc(nh), sm[64], si[64], mean[64], invstd[64];
            double rmd[64], rvd[64];
            dwp_running(C, rmd, rvd);
            if (train) {
                dwpair_forward(s, 1, out, d.x, d.pw, d.wa, d.wb, d.g, d.b, NULL, NULL, 0.1f, 1e-5f,
                               sm, si, scratch);
                memcpy(mean, sm, sizeof mean), memcpy(invstd, si, sizeof invstd);
            } else {
                for (int c = 0; c < C; c++)
                    mean[c] = (float)rmd[c], invstd[c] = (float)(1 / sqrt((float)rvd[c] + 1e-5f));
            }
            float *dout = falloc(d.nout);
            for (long i = 0; i < d.nout; i++) dout[i] = (float)d.r[i];
            float *dx = falloc(d.nx), *dpw = falloc(C), *dwa = falloc(d.na), *dwb = falloc(d.nb);
            float *dg = falloc(C), *db = falloc(C);
            dwpair_backward(s, train, s->pool, dx, s->pw ? dpw : NULL, dwa, dwb, dg, db, dout, d.x,
                            d.pw, d.wa, d.wb, d.g, d.b, mean, invstd, 0, scratch);
            double *gx = dalloc(d.nx), *gpw = dalloc(C), *ga = dalloc(d.na), *gb = dalloc(d.nb);
            double *gg = dalloc(C), *gbe = dalloc(C);
            fd_grad(d.xd, d.nx, dwp_loss, &d, gx);
            fd_grad(d.wad, d.na, dwp_loss, &d, ga);
            fd_grad(d.wbd, d.nb, dwp_loss, &d, gb);
            fd_grad(d.gd, C, dwp_loss, &d, gg);
            fd_grad(d.bd, C, dwp_loss, &d, gbe);
            if (s->pw) fd_grad(d.pwd, C, dwp_loss, &d, gpw);
            char what[200];
            const char *nm = dwp_cases[k].name;
#define DWP_CHECK(label, a, b, n)                                                            \
    do {                                                                                  \
        snprintf(what, sizeof what, "%s train=%d %s", nm, train, label);                  \
        EXPECT_CLOSE(what, a, b, n, GRAD_TOL);                                            \
    } while (0)
            DWP_CHECK("dx", dx, gx, d.nx);
            DWP_CHECK("dw_a", dwa, ga, d.na);
            DWP_CHECK("dw_b", dwb, gb, d.nb);
            DWP_CHECK("dgamma", dg, gg, C);
            DWP_CHECK("dbeta", db, gbe, C);
            /* In train mode the batch norm undoes the 1x1's scale: its gradient is near zero
             * (eps alone), so it is compared on the scale of the other weights' gradients. */
            snprintf(what, sizeof what, "%s train=%d dpw", nm, train);
            if (s->pw) EXPECT_CLOSE_TO(what, dpw, gpw, C, GRAD_TOL, fmax(max_abs(gpw, C), max_abs(ga, d.na)));

            /* two threads give the same bits as one */
            float *dx1 = falloc(d.nx), *dwa1 = falloc(d.na), *dg1 = falloc(C);
            int saved = threads_get();
            threads_set(1);
            dwpair_backward(s, train, s->pool, dx1, NULL, dwa1, NULL, dg1, NULL, dout, d.x, d.pw,
                            d.wa, d.wb, d.g, d.b, mean, invstd, 0, scratch);
            threads_set(saved);
            EXPECT(memcmp(dx1, dx, sizeof(float) * (size_t)d.nx) == 0);
            EXPECT(memcmp(dwa1, dwa, sizeof(float) * (size_t)d.na) == 0);
            EXPECT(memcmp(dg1, dg, sizeof(float) * (size_t)C) == 0);

            /* accumulate adds; in place (dx over x) equals the separate result */
            for (long i = 0; i < d.nx; i++) dx1[i] = (float)(i % 5) - 2.0f;
            dwpair_backward(s, train, s->pool, dx1, NULL, NULL, NULL, NULL, NULL, dout, d.x, d.pw,
                            d.wa, d.wb, d.g, d.b, mean, invstd, 1, scratch);
            for (long i = 0; i < d.nx; i++)
                if (!(fabsf(dx1[i] - ((float)(i % 5) - 2.0f + dx[i])) <= 1e-5f * (1 + fabsf(dx[i])))) {
                    test_fail(__FILE__, __LINE__, "%s accumulate: dx[%ld] = %g", nm, i, dx1[i]);
                    break;
                }
            if (!s->pw) {
                float *xin = falloc(d.nx);
                memcpy(xin, d.x, sizeof(float) * (size_t)d.nx);
                dwpair_backward(s, train, s->pool, xin, NULL, NULL, NULL, NULL, NULL, dout, xin,
                                d.pw, d.wa, d.wb, d.g, d.b, mean, invstd, 0, scratch);
                EXPECT(memcmp(xin, dx, sizeof(float) * (size_t)d.nx) == 0);
                mem_free(xin);
            }

            /* from the full-size gradient of y: the same as the unpooled shape's backward */
            if (s->pool) {
                struct dwpair_shape u = *s;
                u.pool = 0;
                float *full = falloc(nh), *dxa = falloc(d.nx), *dxb = falloc(d.nx);
                fill(&(struct rng){{1, 2, 3, 4}, 0, 0}, full, nh);
                dwpair_backward(s, train, 0, dxa, NULL, NULL, NULL, NULL, NULL, full, d.x, d.pw,
                                d.wa, d.wb, d.g, d.b, mean, invstd, 0, scratch);
                dwpair_backward(&u, train, 0, dxb, NULL, NULL, NULL, NULL, NULL, full, d.x, d.pw,
                                d.wa, d.wb, d.g, d.b, mean, invstd, 0, scratch);
                EXPECT(memcmp(dxa, dxb, sizeof(float) * (size_t)d.nx) == 0);
                mem_free(full), mem_free(dxa), mem_free(dxb);
            }
#undef DWP_CHECK
            mem_free(scratch), mem_free(out), mem_free(dout), mem_free(dx), mem_free(dpw);
            mem_free(dwa), mem_free(dwb), mem_free(dg), mem_free(db), mem_free(gx), mem_free(gpw);
            mem_free(ga), mem_free(gb), mem_free(gg), mem_free(gbe), mem_free(dx1), mem_free(dwa1);
            mem_free(dg1);
            dwp_fini(&d);
        }
}

/* ----------------------------------------------------------------------------- threads */

/* Every kernel with 1 and with 2 threads: equal up to float summation order. */
static void test_threads_1_vs_2(void)
{
    struct rng r;
    rng_seed(&r, 1100);
    size_t n_big = sizeof conv_big / sizeof conv_big[0];
    size_t n_direct = sizeof conv_direct / sizeof conv_direct[0];
    for (size_t k = 0; k < n_big + n_direct; k++) {
        const struct conv_case *cc = k < n_big ? &conv_big[k] : &conv_direct[k - n_big];
        struct conv2d_shape s = conv_shape_of(cc);
        long nx = conv_nx(&s), nw = conv_nw(&s), ny = conv_ny(&s);
        float *x = falloc(nx), *w = falloc(nw), *dy = falloc(ny);
        float *scratch = falloc((long)conv2d_scratch_floats(&s, 2));
        float *out[2][3];
        double sum[2][128] = {{0}};
        fill(&r, x, nx);
        fill(&r, w, nw);
        fill(&r, dy, ny);
        for (int t = 0; t < 2; t++) {
            threads_set(t + 1);
            out[t][0] = falloc(ny), out[t][1] = falloc(nx), out[t][2] = falloc(nw);
            struct conv2d_fuse fuse = {.relu = 1, .sum = sum[t]};
            conv2d_forward(&s, out[t][0], x, w, &fuse, scratch);
            conv2d_backward_data(&s, out[t][1], dy, w, 0, scratch);
            conv2d_backward_weight(&s, out[t][2], dy, x, scratch);
        }
        threads_set(2);
        EXPECT_CLOSE_F(cc->name, out[0][0], out[1][0], ny, 1e-6);
        EXPECT_CLOSE_F(cc->name, out[0][1], out[1][1], nx, 1e-6);
        EXPECT_CLOSE_F(cc->name, out[0][2], out[1][2], nw, 1e-5);
        for (int o = 0; o < s.co; o++)
            EXPECT_NEAR(sum[0][o], sum[1][o], 1e-9 * (1 + fabs(sum[1][o])));
        for (int t = 0; t < 2; t++)
            for (int i = 0; i < 3; i++) mem_free(out[t][i]);
        mem_free(x), mem_free(w), mem_free(dy), mem_free(scratch);
    }

    /* Batch norm, pooling, reductions, elementwise on a big activation. */
    struct bn_shape bs = {4, 8, 40 * 50};
    long n = bn_numel(&bs);
    float *x = falloc(n), *dy = falloc(n), *res[2][6];
    float g[8], b[8], sm[2][8], si[2][8], dg[2][8], db[2][8];
    fill(&r, x, n);
    fill(&r, dy, n);
    rng_fill_uniform(&r, g, 8, 0.5f, 1.5f);
    fill(&r, b, 8);
    struct pool2d_shape ps = {
        .n = 4, .c = 8, .fi = 40, .ti = 50, .kf = 2, .kt = 2, .sf = 2, .st = 2};
    REQUIRE_OK(pool2d_shape_init(&ps));
    long np = (long)ps.n * ps.c * ps.fo * ps.to;
    for (int t = 0; t < 2; t++) {
        threads_set(t + 1);
        for (int i = 0; i < 6; i++) res[t][i] = falloc(n);
        batchnorm_forward_train(&bs, res[t][0], x, g, b, NULL, NULL, 0.1f, 1e-5f, sm[t], si[t], 1);
        batchnorm_backward_train(&bs, res[t][1], dg[t], db[t], dy, x, res[t][0], 1, g, sm[t],
                                 si[t], 0);
        maxpool2d_forward(&ps, res[t][2], x);
        maxpool2d_backward(&ps, res[t][3], dy, x, res[t][2], 0);
        mean_forward(32, 40, 50, res[t][4], x);
        add_backward(n, res[t][5], NULL, dy, x, 1, 0, 0);
    }
    threads_set(2);
    EXPECT_CLOSE_F("bn train y", res[0][0], res[1][0], n, 1e-6);
    EXPECT_CLOSE_F("bn train dx", res[0][1], res[1][1], n, 1e-6);
    EXPECT_CLOSE_F("bn dgamma", dg[0], dg[1], 8, 1e-6);
    EXPECT_CLOSE_F("bn dbeta", db[0], db[1], 8, 1e-6);
    EXPECT_CLOSE_F("maxpool", res[0][2], res[1][2], np, 0);
    EXPECT_CLOSE_F("maxpool dx", res[0][3], res[1][3], n, 0);
    EXPECT_CLOSE_F("mean", res[0][4], res[1][4], 32 * 50, 1e-6);
    EXPECT_CLOSE_F("add backward", res[0][5], res[1][5], n, 0);
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < 6; i++) mem_free(res[t][i]);
    mem_free(x), mem_free(dy);
}


static void test_conv2d_fuzz(void)
{
    struct rng r;
    rng_seed(&r, 777);
    static char names[400][256];
    for (int it = 0; it < 400; it++) {
        struct conv_case c;
        memset(&c, 0, sizeof c);
        int g = 1 + (int)rng_below(&r, 3);
        int kind = (int)rng_below(&r, 4);
        c.n = 1 + (int)rng_below(&r, 3);
        c.ci = g * (1 + (int)rng_below(&r, kind == 0 ? 40 : 6));
        c.co = g * (1 + (int)rng_below(&r, kind == 0 ? 40 : 6));
        if (kind == 1) c.co = c.ci = g; /* depthwise */
        if (kind == 2) { c.ci = g; c.co = 2 * g; } /* multiplier */
        c.kf = 1 + (int)rng_below(&r, 5);
        c.kt = 1 + (int)rng_below(&r, 5);
        c.sf = 1 + (int)rng_below(&r, rng_below(&r, 2) ? 1 : 3);
        c.st = 1 + (int)rng_below(&r, rng_below(&r, 2) ? 1 : 3);
        c.df = 1 + (int)rng_below(&r, 3);
        c.dt = 1 + (int)rng_below(&r, 3);
        c.pf = (int)rng_below(&r, 5);
        c.pt = (int)rng_below(&r, 5);
        c.groups = g;
        c.fi = 1 + (int)rng_below(&r, 30);
        c.ti = 1 + (int)rng_below(&r, 70);
        struct conv2d_shape s = {.n = c.n, .ci = c.ci, .fi = c.fi, .ti = c.ti, .co = c.co, .kf = c.kf,
                                 .kt = c.kt, .sf = c.sf, .st = c.st, .pf = c.pf, .pt = c.pt, .df = c.df,
                                 .dt = c.dt, .groups = c.groups};
        if (conv2d_shape_init(&s)) continue;
        snprintf(names[it], sizeof names[it], "fuzz %d n%d %d->%d %dx%d %dx%d k%dx%d s%d,%d p%d,%d d%d,%d g%d", it,
                 c.n, c.ci, c.co, c.fi, c.ti, s.fo, s.to, c.kf, c.kt, c.sf, c.st, c.pf, c.pt, c.df, c.dt, c.groups);
        c.name = names[it];
        int fails = test_failures;
        conv_check_every_kernel(&c, 900 + it);
        if (test_failures > fails + 10) return;
    }
}

const struct test tests_ops[] = {
    TEST(test_conv2d_shape_init),
    TEST(test_conv2d_vs_naive),
    TEST(test_conv2d_tiled_vs_naive),
    TEST(test_conv2d_direct_vs_naive),
    TEST(test_conv2d_gemm_path_vs_naive),
    TEST(test_conv2d_direct_vs_gemm),
    TEST(test_conv2d_every_kernel_vs_naive),
    TEST(test_conv2d_kernel_choice),
    TEST(test_conv2d_prologue),
    TEST(test_conv2d_backward_data_bnstat),
    TEST(test_conv2d_gradients),
    TEST(test_batchnorm_vs_naive),
    TEST(test_batchnorm_running_stats),
    TEST(test_batchnorm_gradients),
    TEST(test_relu_add),
    TEST(test_roll),
    TEST(test_dropout),
    TEST(test_pool2d_shape_init),
    TEST(test_pool2d),
    TEST(test_maxpool_ties),
    TEST(test_max_nan),
    TEST(test_reductions),
    TEST(test_linear),
    TEST(test_addpool_matches_add_then_pool),
    TEST(test_dwpair_vs_naive),
    TEST(test_dwpair_gradients),
    TEST(test_threads_1_vs_2),
    TEST(test_conv2d_fuzz),
    {0},
};
