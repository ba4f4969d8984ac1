/* bench.c: basin's benchmarks (make bench; never part of make test).
 *
 *   bench conv                  conv2d forward / backward GFLOP/s on the CP-ResNet layer shapes
 *                               (width 32 and 128, 256 x 431 input) for every kernel, the one
 *                               the autotuner picks, and OpenBLAS sgemm on the same GEMM shapes;
 *                               each layer's output checked against the naive twin
 *   bench dwpair                sepnet's fused block (depthwise pair + BN + relu + pool, the
 *                               first block's 1x1 folded in) on its real shape, timed and checked
 *                               against the naive twin (the unfused graph ops in double)
 *   bench train MODEL N T [avx2]  one training step (forward in train mode, cross-entropy,
 *                               backward, Adam) of MODEL at batch N on T threads; avx2: no
 *                               AVX-512 conv kernels (what a CPU without it runs; run.sh also
 *                               points OpenBLAS at its Haswell kernels for that case)
 *   bench infer MODEL N T [avx2]  eval-mode forward at batch N on T threads (N = 1: the
 *                               latency of one clip)
 *   bench loop MODEL N T        the real training loop (bench_pipeline.c)
 *   bench predict MODEL T       predict on one 10-second clip, file to probabilities
 *   bench logmel                the log-mel front ends against the bare FFTs
 *   bench listen [SECONDS]      the listening pipeline: cost per window, live latency (bench_listen.c)
 *   bench machine               the machine line alone (CPU, cpuid, OpenBLAS kernel)
 *   bench all                   all of the above in one process (default; the peak RSS figures
 *                               then accumulate: run.sh runs each case in its own process)
 * MODEL: cpresnet (width 32, rho 5) or sepnet (SP4ASC Cnn6_60k); input 1 x 256 x 431.
 *
 * Every figure is a median over repetitions after warm-up. Lines starting with "RESULT"
 * are for tests/bench/run.sh, which sets them beside the PyTorch peer's numbers. A case is
 * one entry of `cases` below: a name and a function of (model, batch, threads).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <omp.h>

#include "basin/core/gemm.h"
#include "basin/core/graph.h"
#include "basin/core/loss.h"
#include "basin/core/mem.h"
#include "basin/core/ops.h"
#include "basin/core/optim.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/dsp/fft.h"
#include "basin/dsp/frontend.h"
#include "basin/model/model.h"
#include "bench_listen.h"
#include "bench_prune.h"
#include "bench_pipeline.h"
#include "ref/naive.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#define TIME_MEDIAN(result, reps, warm, body)                                               \
    do {                                                                                    \
        double t_[64];                                                                      \
        for (int w_ = 0; w_ < (warm); w_++) { body; }                                       \
        for (int r_ = 0; r_ < (reps); r_++) {                                               \
            double t0_ = now();                                                             \
            body;                                                                           \
            t_[r_] = now() - t0_;                                                           \
        }                                                                                   \
        result = median(t_, reps);                                                          \
    } while (0)

static void die(const char *what)
{
    fprintf(stderr, "bench: %s: %s\n", what, status_detail());
    exit(1);
}

static float *alloc_fill(long n, struct rng *r)
{
    float *p = mem_alloc((size_t)n * sizeof *p);
    if (!p) die("out of memory");
    rng_fill_normal(r, p, n, 0, 1);
    return p;
}

/* Peak resident memory of this process so far, MiB. */
static double peak_rss_mib(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss / 1024.0;
}

/* ----------------------------------------------------------------------------- conv */

/* sgemm alone on the conv's GEMM shape: per sample C (O, positions) = W (O, K) B (K,
 * positions), samples spread over the threads as the conv kernel spreads them. */
static void sgemm_samples(const struct conv2d_shape *s, const float *w, const float *b, float *c)
{
    int m = s->co / s->groups, k = s->ci / s->groups * s->kf * s->kt, n = s->fo * s->to;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < s->n * s->groups; i++)
        gemm(0, 0, m, n, k, 1.0f, w, k, b + (long)omp_get_thread_num() * k * n, n, 0.0f,
             c + (long)i * m * n, n);
}

static double sgemm_seconds(const struct conv2d_shape *s, float *w, float *b, float *c)
{
    double t;
    TIME_MEDIAN(t, 5, 1, sgemm_samples(s, w, b, c));
    return t;
}

/* Largest relative error of the fast forward against the naive twin on sample 0. */
static double check_against_naive(const struct conv2d_shape *s, const float *x, const float *w,
                                  const float *y)
{
    struct conv2d_shape one = *s;
    one.n = 1;
    long nx = (long)s->ci * s->fi * s->ti, nw = (long)s->co * (s->ci / s->groups) * s->kf * s->kt;
    long ny = (long)s->co * s->fo * s->to;
    double *xd = malloc((size_t)nx * sizeof *xd), *wd = malloc((size_t)nw * sizeof *wd);
    double *yd = malloc((size_t)ny * sizeof *yd), err = 0, scale = 0;
    for (long i = 0; i < nx; i++) xd[i] = x[i];
    for (long i = 0; i < nw; i++) wd[i] = w[i];
    naive_conv2d(&one, yd, xd, wd);
    for (long i = 0; i < ny; i++) scale = fmax(scale, fabs(yd[i]));
    for (long i = 0; i < ny; i++) err = fmax(err, fabs(y[i] - yd[i]) / scale);
    free(xd), free(wd), free(yd);
    return err;
}

static const char *short_kernel(enum conv2d_kernel k)
{
    return k == CONV2D_KERNEL_DIRECT_AVX512 ? "d512"
           : k == CONV2D_KERNEL_DIRECT_AVX2 ? "d256"
           : k == CONV2D_KERNEL_GEMM        ? "gemm"
                                            : conv2d_kernel_name(k);
}

static void bench_conv_model(int width, int batch)
{
    struct model_config c;
    model_config_default(&c, ARCH_CPRESNET);
    c.width = width;
    c.rho = 5;
    struct graph *g;
    if (model_build(&g, &c)) die("model");
    struct node_info *info = calloc((size_t)g->n_nodes, sizeof *info);
    graph_describe(g, 1, 256, 431, info);
    struct conv2d_shape seen[64];
    int n_seen = 0, nt = threads_get();
    printf("\ncpresnet width %d, rho 5, input 256 x 431, batch %d, %d threads (GFLOP/s; the tuned "
           "kernel's figures)\n", width, batch, nt);
    printf("%-28s %7s %7s %7s %7s %6s %7s %7s %-14s %9s\n", "layer (O<-I KxK @ FxT)", "sgemm", "fwd",
           "bwd-dat", "bwd-wt", "fwd/sg", "gemm-fw", "d256-fw", "tuned f/d/w", "naive err");
    struct rng r;
    rng_seed(&r, 1);
    for (int i = 1; i < g->n_nodes; i++) {
        const struct node *nd = &g->nodes[i];
        if (nd->op != OP_CONV2D) continue;
        const struct node_info *a = &info[nd->in[0]];
        struct conv2d_shape s = {batch, a->c, a->f, a->t, nd->c, nd->k[0], nd->k[1], nd->stride[0],
                                 nd->stride[1], nd->pad[0], nd->pad[1], nd->dil[0], nd->dil[1],
                                 nd->groups, 0, 0};
        conv2d_shape_init(&s);
        if ((long)s.fo * s.to < 2000) continue; /* the large layers carry the cost */
        int dup = 0;
        for (int k = 0; k < n_seen; k++) dup |= !memcmp(&seen[k], &s, sizeof s);
        if (dup) continue;
        seen[n_seen++] = s;
        long nx = (long)batch * s.ci * s.fi * s.ti, ny = (long)batch * s.co * s.fo * s.to;
        long nw = (long)s.co * (s.ci / s.groups) * s.kf * s.kt;
        long kk = (long)(s.ci / s.groups) * s.kf * s.kt, pos = (long)s.fo * s.to;
        float *x = alloc_fill(nx, &r), *w = alloc_fill(nw, &r), *y = alloc_fill(ny, &r);
        float *dy = alloc_fill(ny, &r), *dx = alloc_fill(nx, &r), *dw = alloc_fill(nw, &r);
        float *b = alloc_fill(kk * pos * nt, &r);
        float *scratch = alloc_fill((long)conv2d_scratch_floats(&s, nt), &r);
        double flops = 2.0 * batch * s.co * (double)kk * pos;
        struct conv2d_algo al;
        if (conv2d_tune(&s, nt, 0, &al)) die("tune");
        double t_sg = sgemm_seconds(&s, w, b, y), t_f, t_d, t_w, t_g = 0, t_2 = 0;
        TIME_MEDIAN(t_f, 5, 1, conv2d_forward_with(&s, al.k[0], y, x, w, NULL, scratch));
        double err = check_against_naive(&s, x, w, y);
        TIME_MEDIAN(t_d, 5, 1, conv2d_backward_data_with(&s, al.k[1], dx, dy, w, 0, scratch));
        TIME_MEDIAN(t_w, 5, 1, conv2d_backward_weight_with(&s, al.k[2], dw, dy, x, scratch));
        TIME_MEDIAN(t_g, 3, 1, conv2d_forward_with(&s, CONV2D_KERNEL_GEMM, y, x, w, NULL, scratch));
        if (conv2d_kernel_runs(&s, CONV2D_FORWARD, CONV2D_KERNEL_DIRECT_AVX2))
            TIME_MEDIAN(t_2, 3, 1, conv2d_forward_with(&s, CONV2D_KERNEL_DIRECT_AVX2, y, x, w, NULL, scratch));
        char label[64], tuned[64];
        snprintf(label, sizeof label, "%d<-%d %dx%d%s @ %dx%d", s.co, s.ci, s.kf, s.kt,
                 s.sf > 1 ? "/2" : "", s.fo, s.to);
        snprintf(tuned, sizeof tuned, "%s/%s/%s", short_kernel(al.k[0]), short_kernel(al.k[1]),
                 short_kernel(al.k[2]));
        char avx2[16] = "-";
        if (t_2 > 0) snprintf(avx2, sizeof avx2, "%.1f", flops / t_2 * 1e-9);
        printf("%-28s %7.1f %7.1f %7.1f %7.1f %5.0f%% %7.1f %7s %-14s %9.1e\n", label,
               flops / t_sg * 1e-9, flops / t_f * 1e-9, flops / t_d * 1e-9, flops / t_w * 1e-9,
               100 * t_sg / t_f, flops / t_g * 1e-9, avx2, tuned, err);
        printf("RESULT conv w%d t%d %s sgemm %.2f fwd %.2f bwd_data %.2f bwd_weight %.2f gemm_fwd %.2f "
               "avx2_fwd %.2f tuned %s naive_err %.2e\n",
               width, nt, label, flops / t_sg * 1e-9, flops / t_f * 1e-9, flops / t_d * 1e-9,
               flops / t_w * 1e-9, flops / t_g * 1e-9, t_2 > 0 ? flops / t_2 * 1e-9 : 0.0, tuned, err);
        if (err > 1e-4) printf("  WARNING: the fast conv disagrees with the naive twin\n");
        mem_free(x), mem_free(w), mem_free(y), mem_free(dy), mem_free(dx), mem_free(dw);
        mem_free(b), mem_free(scratch);
    }
    free(info);
    graph_destroy(g);
}

/* ----------------------------------------------------------------------------- dwpair */

/* Sepnet's first block as the plan fuses it (x (1, 1, 256, 431) -> 1x1 to 64 channels ->
 * depthwise (1, 3) and (3, 1) -> sum -> BN -> relu -> 2x2 average pool), on one sample:
 * forward (train, eval) and backward times, and the output against the naive twin. */
static void bench_dwpair(void)
{
    struct dwpair_shape s = {.n = 1, .c = 64, .f = 256, .t = 431, .relu = 1, .pool = 1, .pw = 1};
    int kf[2] = {1, 3}, kt[2] = {3, 1}, pf[2] = {0, 2}, pt[2] = {2, 0}, df[2] = {1, 2}, dt[2] = {2, 1};
    for (int k = 0; k < 2; k++)
        s.kf[k] = kf[k], s.kt[k] = kt[k], s.pf[k] = pf[k], s.pt[k] = pt[k], s.df[k] = df[k], s.dt[k] = dt[k];
    if (dwpair_shape_check(&s)) die("dwpair shape");
    int nt = threads_get();
    struct rng r;
    rng_seed(&r, 9);
    long nx = (long)s.f * s.t, no = (long)s.c * (s.f / 2) * (s.t / 2);
    float *x = alloc_fill(nx, &r), *pw = alloc_fill(s.c, &r), *wa = alloc_fill(3L * s.c, &r);
    float *wb = alloc_fill(3L * s.c, &r), *gam = alloc_fill(s.c, &r), *bet = alloc_fill(s.c, &r);
    float *out = alloc_fill(no, &r), *dout = alloc_fill(no, &r), *dx = alloc_fill(nx, &r);
    float *sm = alloc_fill(s.c, &r), *si = alloc_fill(s.c, &r), *rm = alloc_fill(s.c, &r);
    float *rv = alloc_fill(s.c, &r), *g6 = alloc_fill(8L * s.c, &r);
    for (int c = 0; c < s.c; c++) rv[c] = 1.0f + 0.5f * fabsf(rv[c]);
    float *scratch = alloc_fill((long)dwpair_scratch_floats(&s, nt), &r);
    double t_train, t_eval, t_back;
    TIME_MEDIAN(t_train, 7, 1, dwpair_forward(&s, 1, out, x, pw, wa, wb, gam, bet, NULL, NULL, 0.1f, 1e-5f, sm, si, scratch));
    TIME_MEDIAN(t_back, 7, 1, dwpair_backward(&s, 1, 1, dx, g6, g6 + s.c, g6 + 4 * s.c, g6 + 7 * s.c, NULL, dout, x, pw, wa, wb, gam, bet, sm, si, 0, scratch));
    TIME_MEDIAN(t_eval, 7, 1, dwpair_forward(&s, 0, out, x, pw, wa, wb, gam, bet, rm, rv, 0.1f, 1e-5f, NULL, NULL, scratch));
    /* the eval output against the naive twin in double */
    double *xd = malloc(sizeof(double) * (size_t)nx), *od = malloc(sizeof(double) * (size_t)no);
    double p[7][64];
    const float *src[7] = {pw, wa, wb, gam, bet, rm, rv};
    double *pd[7];
    for (int k = 0; k < 7; k++) {
        int len = (k == 1 || k == 2) ? 3 * s.c : s.c;
        pd[k] = k == 1 || k == 2 ? malloc(sizeof(double) * (size_t)len) : p[k];
        for (int i = 0; i < len; i++) pd[k][i] = src[k][i];
    }
    for (long i = 0; i < nx; i++) xd[i] = x[i];
    naive_dwpair(&s, 0, od, xd, pd[0], pd[1], pd[2], pd[3], pd[4], pd[5], pd[6], 0.1, 1e-5, NULL, NULL);
    double err = 0, scale = 0;
    for (long i = 0; i < no; i++) scale = fmax(scale, fabs(od[i]));
    for (long i = 0; i < no; i++) err = fmax(err, fabs(out[i] - od[i]) / scale);
    printf("\nsepnet block 1 fused (1x1 of 1 channel -> 64, depthwise pair, BN, relu, pool) on "
           "one 256 x 431 sample, %d threads: forward train %.2f ms, eval %.2f ms, backward %.2f ms; "
           "max error vs naive %.1e\n", nt, t_train * 1e3, t_eval * 1e3, t_back * 1e3, err);
    printf("RESULT dwpair t%d fwd_train_ms %.3f fwd_eval_ms %.3f bwd_ms %.3f naive_err %.2e\n", nt,
           t_train * 1e3, t_eval * 1e3, t_back * 1e3, err);
    if (err > 1e-4) printf("  WARNING: the fused block disagrees with the naive twin\n");
    free(xd), free(od), free(pd[1]), free(pd[2]);
    mem_free(x), mem_free(pw), mem_free(wa), mem_free(wb), mem_free(gam), mem_free(bet);
    mem_free(out), mem_free(dout), mem_free(dx), mem_free(sm), mem_free(si), mem_free(rm);
    mem_free(rv), mem_free(g6), mem_free(scratch);
}

/* ----------------------------------------------------------------------------- models */

static int model_of(const char *name, struct model_config *c)
{
    if (!strcmp(name, "cpresnet")) {
        model_config_default(c, ARCH_CPRESNET);
        c->width = 32;
        c->rho = 5;
        return 0;
    }
    if (!strcmp(name, "sepnet")) {
        model_config_default(c, ARCH_SEPNET);
        return 0;
    }
    return -1;
}

/* Per-node profile of a few passes (BENCH_PROFILE=1). */
static void profile(struct plan *p, struct graph *g, double t_step, void (*pass)(void *), void *ctx)
{
    plan_profile(p, 1);
    for (int k = 0; k < 3; k++) pass(ctx);
    const double *sec = plan_profile_seconds(p);
    double by_op[OP_COUNT][2] = {{0}};
    for (int i = 0; i < g->n_nodes; i++)
        for (int d = 0; d < 2; d++) by_op[g->nodes[i].op][d] += sec[d * g->n_nodes + i] / 3;
    printf("  per pass by op (forward / backward ms; a fused group counts at its last node):");
    for (int k = 0; k < OP_COUNT; k++)
        if (by_op[k][0] + by_op[k][1] > 1e-4)
            printf(" %s %.1f/%.1f", graph_op_name((enum op_kind)k), by_op[k][0] * 1e3, by_op[k][1] * 1e3);
    printf("\n");
    for (int i = 0; i < g->n_nodes; i++) {
        double tf = sec[i] / 3, tb = sec[g->n_nodes + i] / 3;
        struct conv2d_algo a;
        char kern[40] = "";
        if (g->nodes[i].op == OP_CONV2D && !plan_conv_algo(p, i, &a))
            snprintf(kern, sizeof kern, "%s/%s/%s", short_kernel(a.k[0]), short_kernel(a.k[1]), short_kernel(a.k[2]));
        if (tf + tb > 0.004 * t_step)
            printf("    %-18s %-8s fwd %6.2f ms  bwd %6.2f ms  %s\n", g->nodes[i].name,
                   graph_op_name(g->nodes[i].op), tf * 1e3, tb * 1e3, kern);
    }
    plan_profile(p, 0);
}

struct step_ctx {
    struct plan *p;
    struct graph *g;
    struct optim *o;
    int batch, classes;
    const float *x;
    float *dl;
    const int *y;
    struct rng *dr;
};

static void train_step(void *v)
{
    struct step_ctx *c = v;
    plan_forward(c->p, c->batch, c->x, 1, c->dr);
    loss_cross_entropy(c->batch, c->classes, plan_output(c->p), c->y, NULL, c->dl);
    plan_backward(c->p, c->dl, NULL);
    optim_step(c->o, c->g->store.n_params, c->g->store.w, c->g->store.g, c->g->store.m,
               c->g->store.v, NULL);
}

static void infer_pass(void *v)
{
    struct step_ctx *c = v;
    plan_forward(c->p, c->batch, c->x, 0, NULL);
}

/* One case: a training step (train 1) or an eval forward (train 0) of model `name`. */
static void bench_model(const char *name, int batch, int nt, int train, int avx2)
{
    struct model_config c;
    if (model_of(name, &c)) {
        fprintf(stderr, "bench: unknown model %s (cpresnet, sepnet)\n", name);
        exit(2);
    }
    const int f = 256, t = 431;
    struct model *m;
    if (model_create(&m, &c, 1)) die("model");
    struct graph *g = m->g;
    struct rng r;
    rng_seed(&r, 2);
    float *x = alloc_fill((long)batch * c.in_ch * f * t, &r), *dl = alloc_fill((long)batch * c.classes, &r);
    int *y = malloc((size_t)batch * sizeof *y);
    for (int i = 0; i < batch; i++) y[i] = i % c.classes;
    struct plan *p;
    struct plan_opts opts = {.flags = train ? PLAN_BACKWARD : 0, .n_threads = nt, .no_avx512 = avx2};
    double t0 = now();
    if (plan_create_opts(&p, g, batch, c.in_ch, f, t, &opts)) die("plan");
    double t_plan = now() - t0;
    struct optim o;
    optim_init(&o, OPTIM_ADAM);
    struct rng dr;
    rng_seed(&dr, 3);
    struct step_ctx ctx = {p, g, &o, batch, c.classes, x, dl, y, &dr};
    void (*pass)(void *) = train ? train_step : infer_pass;
    /* about 3 s of timing, 3 to 15 repetitions after two warm-up passes */
    double t_first = now();
    pass(&ctx);
    t_first = now() - t_first;
    int reps = (int)(3.0 / (t_first > 1e-3 ? t_first : 1e-3));
    reps = reps < 3 ? 3 : reps > 15 ? 15 : reps;
    double t_pass;
    TIME_MEDIAN(t_pass, reps, 1, pass(&ctx));
    double rss = peak_rss_mib();
    const char *what = train ? "train" : "infer";
    printf("%-8s %-9s batch %2d, %d thread%s%s: %8.2f ms per %s, %7.2f samples/s; plan %5.0f MiB "
           "made in %.2f s; peak RSS %5.0f MiB\n", what, name, batch, nt, nt > 1 ? "s" : " ",
           avx2 ? " (no AVX-512)" : "", t_pass * 1e3, train ? "step" : "batch", batch / t_pass,
           plan_bytes(p) / 1048576.0, t_plan, rss);
    printf("RESULT %s %s batch %d threads %d isa %s ms %.4f samples_per_s %.3f plan_s %.3f "
           "plan_mib %.1f rss_mib %.1f\n", what, name, batch, nt, avx2 ? "avx2" : "best",
           t_pass * 1e3, batch / t_pass, t_plan, plan_bytes(p) / 1048576.0, rss);
    if (getenv("BENCH_PROFILE")) profile(p, g, t_pass, pass, &ctx);
    plan_destroy(p);
    mem_free(x), mem_free(dl);
    free(y);
    model_destroy(m);
}

/* ----------------------------------------------------------------------------- logmel */

/* Log-mel of one 10-second clip (1 thread), the bare FFTs of the same frames, and a batch
 * of 64 clips on 1 and 2 threads, for a preset. */
static void bench_logmel_preset(const char *name)
{
    struct frontend_params p;
    struct frontend *fe;
    struct frontend_work *w;
    if (frontend_preset(&p, name) || frontend_create(&fe, &p) || frontend_work_create(&w, fe))
        die("front end");
    long n = 10L * p.sample_rate_hz, t = frontend_frames(fe, n);
    struct rng r;
    rng_seed(&r, 5);
    float *x = alloc_fill(n, &r), *y = alloc_fill((long)p.n_mels * t, &r);
    for (long i = 0; i < n; i++) x[i] *= 0.1f;
    threads_set(1);
    double t_clip, t_fft;
    TIME_MEDIAN(t_clip, 21, 3, frontend_compute(fe, w, x, n, y));
    struct fft *f;
    fft_create(&f, p.n_fft);
    float *frame = alloc_fill(p.n_fft, &r), *spec = alloc_fill(p.n_fft + 2, &r);
    TIME_MEDIAN(t_fft, 21, 3, for (long k = 0; k < t; k++) fft_forward(f, frame, spec));
    printf("%-9s 10 s clip (%ld frames): %6.3f ms per clip on 1 thread; bare FFTs %6.3f ms (ratio %.2f)\n",
           name, t, t_clip * 1e3, t_fft * 1e3, t_clip / t_fft);
    printf("RESULT logmel %s clip_ms %.4f fft_ms %.4f\n", name, t_clip * 1e3, t_fft * 1e3);
    enum { B = 64 };
    const float *xs[B];
    float *ys[B];
    long ns[B];
    float *yb = alloc_fill((long)B * p.n_mels * t, &r);
    for (int i = 0; i < B; i++) {
        xs[i] = x;
        ns[i] = n;
        ys[i] = yb + (long)i * p.n_mels * t;
    }
    for (int nt = 1; nt <= 2; nt++) {
        threads_set(nt);
        double t_batch;
        TIME_MEDIAN(t_batch, 5, 1, frontend_compute_batch(fe, B, xs, ns, ys));
        printf("%-9s batch of 64 on %d thread%s: %6.3f ms per clip\n", name, nt, nt > 1 ? "s" : "", t_batch / B * 1e3);
        printf("RESULT logmel_batch %s threads %d clip_ms %.4f\n", name, nt, t_batch / B * 1e3);
    }
    mem_free(x), mem_free(y), mem_free(frame), mem_free(spec), mem_free(yb);
    fft_destroy(f);
    frontend_work_destroy(w);
    frontend_destroy(fe);
}

/* ----------------------------------------------------------------------------- main */

static void run_conv(void)
{
    for (int nt = 2; nt >= 1; nt--) {
        threads_set(nt);
        bench_conv_model(32, 16);
        if (nt == 2) bench_conv_model(128, 4);
    }
}

static void run_dwpair(void)
{
    for (int nt = 1; nt <= 2; nt++) {
        threads_set(nt);
        bench_dwpair();
    }
}

static void run_logmel(void)
{
    printf("\nlog-mel front ends\n");
    bench_logmel_preset("cpjku");
    bench_logmel_preset("sp4asc");
}

/* The training and inference cases run.sh times one process each (for the peak RSS);
 * `bench all` runs them here in turn. Add a row to add a case. */
static const struct {
    const char *what, *model;
    int batch, threads;
} model_cases[] = {
    {"train", "cpresnet", 16, 1}, {"train", "cpresnet", 16, 2}, {"train", "cpresnet", 32, 1},
    {"train", "cpresnet", 32, 2}, {"train", "sepnet", 16, 1},   {"train", "sepnet", 16, 2},
    {"train", "sepnet", 32, 1},   {"train", "sepnet", 32, 2},   {"infer", "cpresnet", 1, 1},
    {"infer", "cpresnet", 1, 2},  {"infer", "cpresnet", 16, 1}, {"infer", "cpresnet", 16, 2},
    {"infer", "sepnet", 1, 1},    {"infer", "sepnet", 1, 2},    {"infer", "sepnet", 16, 1},
    {"infer", "sepnet", 16, 2},
};

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "all";
    char cpu[512] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "model name", 10)) {
                char *colon = strchr(line, ':');
                snprintf(cpu, sizeof cpu, "%s", colon ? colon + 2 : line);
                cpu[strcspn(cpu, "\n")] = 0;
                break;
            }
        fclose(f);
    }
    time_t tt = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&tt));
    if (!strcmp(what, "loop") || !strcmp(what, "predict")) {
        int loop = !strcmp(what, "loop");
        if (argc != (loop ? 5 : 4)) {
            fprintf(stderr, "usage: bench %s\n", loop ? "loop cpresnet|sepnet BATCH THREADS" : "predict cpresnet|sepnet THREADS");
            return 2;
        }
        int nt = atoi(argv[loop ? 4 : 3]);
        threads_set(nt);
        return loop ? bench_loop(argv[2], atoi(argv[3]), nt) : bench_predict(argv[2], nt);
    }
    if (!strcmp(what, "train") || !strcmp(what, "infer")) {
        if (argc != 5 && !(argc == 6 && !strcmp(argv[5], "avx2"))) {
            fprintf(stderr, "usage: bench %s cpresnet|sepnet BATCH THREADS [avx2]\n", what);
            return 2;
        }
        int nt = atoi(argv[4]);
        threads_set(nt);
        bench_model(argv[2], atoi(argv[3]), nt, !strcmp(what, "train"), argc == 6);
        return 0;
    }
    printf("basin bench, %s, CPU %s (cpuid: %s), OpenBLAS kernel %s\n", date, cpu,
           conv2d_cpu_model(), gemm_backend());
    printf("RESULT machine cpu \"%s\" cpuid \"%s\" blas %s date %s\n", cpu, conv2d_cpu_model(),
           gemm_backend(), date);
    if (!strcmp(what, "machine")) return 0;
    int all = !strcmp(what, "all");
    if (all || !strcmp(what, "conv")) run_conv();
    if (all || !strcmp(what, "dwpair")) run_dwpair();
    if (all) {
        printf("\n(peak RSS accumulates over the cases of one process: run.sh runs each apart)\n");
        for (size_t k = 0; k < sizeof model_cases / sizeof model_cases[0]; k++) {
            threads_set(model_cases[k].threads);
            bench_model(model_cases[k].model, model_cases[k].batch, model_cases[k].threads,
                        !strcmp(model_cases[k].what, "train"), 0);
        }
    }
    if (all || !strcmp(what, "logmel")) run_logmel();
    if (all || !strcmp(what, "listen")) bench_listen(argc > 2 ? atof(argv[2]) : 0);
    if (all || !strcmp(what, "prune")) bench_prune();
    return 0;
}
