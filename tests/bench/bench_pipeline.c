/* bench_pipeline.c: what a user waits for, end to end (called from bench.c):
 *
 *   bench loop MODEL N T      the real training loop (train_run: batches drawn and augmented
 *                             with the paper's recipe, forward, backward, the optimiser, the
 *                             schedule, the per-step report) on in-memory features of
 *                             1 x 256 x 431; two epochs of four steps, the second epoch timed
 *   bench predict MODEL T     predict_file on one 10-second 22 050 Hz WAV: decoding, the cpjku
 *                             front end, the model's normalisation, the plan, the forward and
 *                             the softmax; the first call in the process and the median of
 *                             the next ones
 * Each prints a "RESULT loop ..." or "RESULT predict ..." line with the peak resident memory
 * of its process (run.sh runs every case in a process of its own).
 */
#include "bench_pipeline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "basin/audio/audio_file.h"
#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/data/features.h"
#include "basin/dsp/frontend.h"
#include "basin/model/model.h"
#include "basin/train/pipeline.h"
#include "basin/train/predict.h"
#include "basin/train/train.h"

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int config_of(const char *name, struct model_config *c)
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
    fprintf(stderr, "bench: unknown model %s (cpresnet, sepnet)\n", name);
    return -1;
}

/* ---------------------------------------------------------------------------- loop */

enum { LOOP_STEPS = 4, LOOP_EPOCHS = 2 };

struct loop_clock {
    double t[LOOP_STEPS * LOOP_EPOCHS + 1];
    int n;
};

static int on_step(void *user, const struct train_step_report *r)
{
    struct loop_clock *c = user;
    (void)r;
    if (c->n < (int)(sizeof c->t / sizeof c->t[0])) c->t[c->n++] = seconds_now();
    return TRAIN_GO_ON;
}

int bench_loop(const char *name, int batch, int nt)
{
    struct model_config c;
    if (config_of(name, &c)) return 2;
    const int F = 256, T = 431, n = batch * LOOP_STEPS;
    struct model *m = NULL;
    struct features *f = mem_calloc(1, sizeof *f);
    if (!f || model_create(&m, &c, 1)) goto fail;
    f->n = n, f->n_channels = 1, f->n_mels = F, f->n_frames = T, f->n_classes = c.classes;
    f->n_samples = 220500;
    f->x = mem_alloc(sizeof *f->x * (size_t)n * F * T);
    f->labels = mem_alloc(sizeof *f->labels * (size_t)n);
    f->items = mem_alloc(sizeof *f->items * (size_t)n);
    if (!f->x || !f->labels || !f->items) goto fail;
    struct rng r;
    rng_seed(&r, 5);
    for (long i = 0; i < (long)n * F * T; i++) f->x[i] = (float)rng_normal(&r);
    for (int i = 0; i < n; i++) f->labels[i] = i % c.classes, f->items[i] = i;

    struct train_opts o;
    train_opts_preset(&o, !strcmp(name, "cpresnet") ? "cpjku" : "sp4asc");
    o.epochs = LOOP_EPOCHS;
    o.batch.batch_size = batch;
    o.batch.drop_last = 1;
    o.swa_epochs = 0;
    o.eval = 0;
    o.threads = nt;
    struct trainer *t = NULL;
    double t0 = seconds_now();
    if (train_create(&t, m, f, NULL, NULL, &o, NULL, NULL)) goto fail;
    double t_create = seconds_now() - t0;
    struct loop_clock clock = {.n = 0};
    clock.t[clock.n++] = seconds_now();
    struct train_callbacks cb = {.step = on_step, .user = &clock};
    int s = train_run(t, &cb, NULL);
    train_destroy(t);
    if (s || clock.n != LOOP_STEPS * LOOP_EPOCHS + 1) goto fail;
    /* the second epoch's steps: median step time */
    double d[LOOP_STEPS];
    for (int k = 0; k < LOOP_STEPS; k++) d[k] = clock.t[LOOP_STEPS + k + 1] - clock.t[LOOP_STEPS + k];
    qsort(d, LOOP_STEPS, sizeof d[0], cmp_d);
    double step = 0.5 * (d[(LOOP_STEPS - 1) / 2] + d[LOOP_STEPS / 2]);
    double rss = peak_mib();
    printf("loop     %-9s batch %2d, %d thread%s: %8.2f ms per step, %7.2f samples/s (recipe %s); "
           "trainer made in %.2f s; peak RSS %5.0f MiB\n", name, batch, nt, nt > 1 ? "s" : " ",
           step * 1e3, batch / step, !strcmp(name, "cpresnet") ? "cpjku" : "sp4asc", t_create, rss);
    printf("RESULT loop %s batch %d threads %d isa best ms %.4f samples_per_s %.3f create_s %.3f "
           "rss_mib %.1f\n", name, batch, nt, step * 1e3, batch / step, t_create, rss);
    features_destroy(f);
    model_destroy(m);
    return 0;
fail:
    fprintf(stderr, "bench loop %s: %s\n", name, status_detail());
    features_destroy(f);
    model_destroy(m);
    return 1;
}

/* ------------------------------------------------------------------------- predict */

int bench_predict(const char *name, int nt)
{
    struct model_config c;
    if (config_of(name, &c)) return 2;
    struct frontend_params p;
    struct model *m = NULL;
    struct audio_file af;
    audio_file_init(&af);
    char path[64];
    snprintf(path, sizeof path, "/tmp/basin-bench-predict-%d.wav", (int)getpid());
    const char *preset = !strcmp(name, "cpresnet") ? "cpjku" : "sp4asc";
    if (frontend_preset(&p, preset) || model_create(&m, &c, 1) || pipeline_set_model_frontend(m, &p)) goto fail;
    /* 10 s of pink-ish noise with a tone, at the front end's rate, 16-bit */
    if (audio_file_alloc(&af, 1, 10L * p.sample_rate_hz, p.sample_rate_hz)) goto fail;
    struct rng r;
    rng_seed(&r, 9);
    float prev = 0;
    for (long i = 0; i < af.n_frames; i++) {
        prev = 0.97f * prev + 0.03f * (float)rng_normal(&r);
        af.x[i] = 0.5f * prev + 0.1f * sinf(2.0f * 3.14159265f * 440.0f * (float)i / (float)p.sample_rate_hz);
    }
    if (audio_file_write(path, &af, AUDIO_FILE_WAV_16)) goto fail;
    audio_file_fini(&af);
    threads_set(nt);
    struct predict_opts o = {0};
    struct predict_result *res = NULL;
    double t0 = seconds_now();
    if (predict_file(&res, m, path, &o, NULL)) goto fail;
    double cold = seconds_now() - t0;
    predict_result_destroy(res);
    double d[9];
    for (int k = 0; k < 9; k++) {
        t0 = seconds_now();
        if (predict_file(&res, m, path, &o, NULL)) goto fail;
        d[k] = seconds_now() - t0;
        predict_result_destroy(res);
    }
    qsort(d, 9, sizeof d[0], cmp_d);
    double rss = peak_mib();
    printf("predict  %-9s one 10 s clip (%s, %d Hz), %d thread%s: first %.1f ms, then %.1f ms; "
           "peak RSS %5.0f MiB\n", name, preset, p.sample_rate_hz, nt, nt > 1 ? "s" : " ", cold * 1e3,
           d[4] * 1e3, rss);
    printf("RESULT predict %s batch 1 threads %d isa best first_ms %.3f ms %.3f rss_mib %.1f\n", name, nt,
           cold * 1e3, d[4] * 1e3, rss);
    unlink(path);
    model_destroy(m);
    return 0;
fail:
    fprintf(stderr, "bench predict %s: %s\n", name, status_detail());
    audio_file_fini(&af);
    unlink(path);
    model_destroy(m);
    return 1;
}
