/* bench.c: basin's benchmarks (make bench; never part of make test).
 *
 *   bench conv    conv2d forward / backward GFLOP/s on the CP-ResNet layer shapes (width 32
 *                 and 128, 256 x 431 input), next to OpenBLAS sgemm on the same GEMM shapes
 *                 in the same run; each layer's output checked against the naive twin
 *   bench train   one training step (forward, cross-entropy, backward, Adam) of cpresnet
 *                 width 32 rho 5 and sepnet at batch 16, 1 and 2 threads; eval forward too
 *   bench all     both (default)
 *
 * Every figure is a median over repetitions after warm-up. Lines starting with "RESULT"
 * are for tests/bench/run.sh, which sets them beside the PyTorch peer's numbers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static float *alloc_fill(long n, struct rng *r)
{
    float *p = mem_alloc((size_t)n * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench: out of memory (%ld floats)\n", n);
        exit(1);
    }
    rng_fill_normal(r, p, n, 0, 1);
    return p;
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

static void bench_conv_model(int width, int batch)
{
    struct model_config c;
    model_config_default(&c, ARCH_CPRESNET);
    c.width = width;
    c.rho = 5;
    struct graph *g;
    if (model_build(&g, &c)) {
        fprintf(stderr, "bench: %s\n", status_detail());
        exit(1);
    }
    struct node_info *info = calloc((size_t)g->n_nodes, sizeof *info);
    graph_describe(g, 1, 256, 431, info);
    struct conv2d_shape seen[64];
    int n_seen = 0;
    printf("\ncpresnet width %d, rho 5, input 256 x 431, batch %d, %d threads\n", width, batch, threads_get());
    printf("%-34s %8s %8s %8s %8s %7s %9s %9s\n", "layer (O<-I KxK @ FxT)", "sgemm", "fwd", "bwd-dat",
           "bwd-wt", "fwd/sg", "naive err", "GFLOP");
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
        int nt = threads_get();
        long kk = (long)(s.ci / s.groups) * s.kf * s.kt, pos = (long)s.fo * s.to;
        float *x = alloc_fill(nx, &r), *w = alloc_fill(nw, &r), *y = alloc_fill(ny, &r);
        float *dy = alloc_fill(ny, &r), *dx = alloc_fill(nx, &r), *dw = alloc_fill(nw, &r);
        float *b = alloc_fill(kk * pos * nt, &r);
        float *scratch = alloc_fill((long)conv2d_scratch_floats(&s, nt), &r);
        double flops = 2.0 * batch * s.co * (double)kk * pos;
        double t_sg = sgemm_seconds(&s, w, b, y), t_f, t_d, t_w;
        TIME_MEDIAN(t_f, 5, 1, conv2d_forward(&s, y, x, w, NULL, scratch));
        double err = check_against_naive(&s, x, w, y);
        TIME_MEDIAN(t_d, 5, 1, conv2d_backward_data(&s, dx, dy, w, 0, scratch));
        TIME_MEDIAN(t_w, 5, 1, conv2d_backward_weight(&s, dw, dy, x, scratch));
        char label[64];
        snprintf(label, sizeof label, "%d<-%d %dx%d%s @ %dx%d", s.co, s.ci, s.kf, s.kt,
                 s.sf > 1 ? "/2" : "", s.fo, s.to);
        printf("%-34s %8.1f %8.1f %8.1f %8.1f %6.0f%% %9.1e %9.2f\n", label, flops / t_sg * 1e-9,
               flops / t_f * 1e-9, flops / t_d * 1e-9, flops / t_w * 1e-9, 100 * t_sg / t_f, err,
               flops * 1e-9);
        printf("RESULT conv w%d t%d %s sgemm %.2f fwd %.2f bwd_data %.2f bwd_weight %.2f naive_err %.2e\n",
               width, threads_get(), label, flops / t_sg * 1e-9, flops / t_f * 1e-9, flops / t_d * 1e-9,
               flops / t_w * 1e-9, err);
        if (err > 1e-4) printf("  WARNING: the fast conv disagrees with the naive twin\n");
        mem_free(x), mem_free(w), mem_free(y), mem_free(dy), mem_free(dx), mem_free(dw);
        mem_free(b), mem_free(scratch);
    }
    free(info);
    graph_destroy(g);
}

/* ----------------------------------------------------------------------------- train */

static void bench_train(const char *label, const struct model_config *c, int batch, int f, int t)
{
    struct model *m;
    if (model_create(&m, c, 1)) {
        fprintf(stderr, "bench: %s\n", status_detail());
        exit(1);
    }
    struct graph *g = m->g;
    struct rng r;
    rng_seed(&r, 2);
    long nx = (long)batch * c->in_ch * f * t;
    float *x = alloc_fill(nx, &r), *dl = alloc_fill((long)batch * c->classes, &r);
    int *y = malloc((size_t)batch * sizeof *y);
    for (int i = 0; i < batch; i++) y[i] = i % c->classes;
    struct plan *p, *pe;
    double t0 = now();
    if (plan_create(&p, g, batch, c->in_ch, f, t, PLAN_BACKWARD) ||
        plan_create(&pe, g, batch, c->in_ch, f, t, 0)) {
        fprintf(stderr, "bench: %s\n", status_detail());
        exit(1);
    }
    double t_plan = now() - t0;
    struct optim o;
    optim_init(&o, OPTIM_ADAM);
    struct rng dr;
    rng_seed(&dr, 3);
    double t_step, t_fwd, t_infer;
    TIME_MEDIAN(t_step, 7, 2, {
        plan_forward(p, batch, x, 1, &dr);
        loss_cross_entropy(batch, c->classes, plan_output(p), y, NULL, dl);
        plan_backward(p, dl, NULL);
        optim_step(&o, g->store.n_params, g->store.w, g->store.g, g->store.m, g->store.v, NULL);
    });
    TIME_MEDIAN(t_fwd, 7, 1, plan_forward(p, batch, x, 1, &dr));
    TIME_MEDIAN(t_infer, 7, 1, plan_forward(pe, batch, x, 0, NULL));
    printf("%-28s %2d threads: step %7.1f ms (%5.1f samples/s; train forward %6.1f ms), "
           "eval forward %6.1f ms (%5.1f samples/s); plans %4.0f MiB + %3.0f MiB, made in %.2f s\n",
           label, threads_get(), t_step * 1e3, batch / t_step, t_fwd * 1e3, t_infer * 1e3,
           batch / t_infer, plan_bytes(p) / 1048576.0, plan_bytes(pe) / 1048576.0, t_plan);
    if (getenv("BENCH_PROFILE")) {
        plan_profile(p, 1);
        double t_other = 0;
        for (int k = 0; k < 3; k++) {
            plan_forward(p, batch, x, 1, &dr);
            loss_cross_entropy(batch, c->classes, plan_output(p), y, NULL, dl);
            plan_backward(p, dl, NULL);
            double t1 = now();
            optim_step(&o, g->store.n_params, g->store.w, g->store.g, g->store.m, g->store.v, NULL);
            t_other += now() - t1;
        }
        const double *sec = plan_profile_seconds(p);
        double by_op[OP_COUNT][2] = {{0}};
        for (int i = 0; i < g->n_nodes; i++)
            for (int d = 0; d < 2; d++) by_op[g->nodes[i].op][d] += sec[d * g->n_nodes + i] / 3;
        printf("  per step by op (forward / backward ms):");
        for (int k = 0; k < OP_COUNT; k++)
            if (by_op[k][0] + by_op[k][1] > 1e-4)
                printf(" %s %.1f/%.1f", graph_op_name((enum op_kind)k), by_op[k][0] * 1e3, by_op[k][1] * 1e3);
        printf("; adam %.1f\n", t_other / 3 * 1e3);
        for (int i = 0; i < g->n_nodes; i++) {
            double tf = sec[i] / 3, tb = sec[g->n_nodes + i] / 3;
            if (tf + tb > 0.004 * t_step)
                printf("    %-20s %-8s fwd %6.2f ms  bwd %6.2f ms\n", g->nodes[i].name, graph_op_name(g->nodes[i].op), tf * 1e3, tb * 1e3);
        }
        plan_profile(p, 0);
    }
    printf("RESULT train %s threads %d step_s %.5f samples_per_s %.2f infer_samples_per_s %.2f\n", label,
           threads_get(), t_step, batch / t_step, batch / t_infer);
    plan_destroy(p);
    plan_destroy(pe);
    mem_free(x), mem_free(dl);
    free(y);
    model_destroy(m);
}

static void bench_train_all(void)
{
    printf("\ntraining step: forward (train mode), cross-entropy, backward, Adam; batch 16\n");
    for (int nt = 1; nt <= 2; nt++) {
        threads_set(nt);
        struct model_config c;
        model_config_default(&c, ARCH_CPRESNET);
        c.width = 32;
        c.rho = 5;
        bench_train("cpresnet-w32-rho5", &c, 16, 256, 431);
        model_config_default(&c, ARCH_SEPNET);
        bench_train("sepnet", &c, 16, 256, 431);
    }
}

/* ----------------------------------------------------------------------------- logmel */

/* Log-mel of one 10-second clip (1 thread), the bare FFTs of the same frames, and a batch
 * of 64 clips on 1 and 2 threads, for a preset. */
static void bench_logmel_preset(const char *name)
{
    struct frontend_params p;
    struct frontend *fe;
    struct frontend_work *w;
    if (frontend_preset(&p, name) || frontend_create(&fe, &p) || frontend_work_create(&w, fe)) {
        fprintf(stderr, "bench: %s\n", status_detail());
        exit(1);
    }
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
    printf("basin bench, %s, CPU %s, OpenBLAS kernel %s\n", date, cpu, gemm_backend());
    printf("RESULT machine cpu \"%s\" blas %s date %s\n", cpu, gemm_backend(), date);
    if (!strcmp(what, "conv") || !strcmp(what, "all")) {
        for (int nt = 2; nt >= 1; nt--) {
            threads_set(nt);
            bench_conv_model(32, 16);
            if (nt == 2) bench_conv_model(128, 4);
        }
    }
    if (!strcmp(what, "train") || !strcmp(what, "all")) bench_train_all();
    if (!strcmp(what, "logmel") || !strcmp(what, "all")) {
        printf("\nlog-mel front ends\n");
        bench_logmel_preset("cpjku");
        bench_logmel_preset("sp4asc");
    }
    return 0;
}
