/* bench_listen.c: how much headroom the live demo has (see bench_listen.h).
 *
 * 1. Cost per window, the default model (assets/default-model.safetensors: demo front end,
 *    5 s windows) classified every hop (0.26 s, 13 frames): the incremental front end (the
 *    new frames and the edge frames), the whole front end of a window for comparison, one
 *    forward pass, and their sum as a share of the hop. Medians over 60 windows.
 * 2. A live run: a producer thread plays a sound card, writing 10 ms blocks into the ring on
 *    an absolute clock (a park scene with a loud burst every 0.77 s); listen_run reads it as
 *    the listen command does (live: skipping to the newest window when behind). Reported:
 *    the latency from a window's last sample entering the ring to its probabilities (mean,
 *    median, max), the onset latency (a burst entering the ring -> the first probabilities
 *    of a window holding it: the wait for the window to end, about hop/2 on average, plus
 *    the former), and the process's CPU time over wall time (1 = one core busy).
 */
#include "bench_listen.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basin/audio/ring.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/data/synth.h"
#include "basin/dsp/frontend.h"
#include "basin/dsp/frontend_stream.h"
#include "basin/dsp/resample.h"
#include "basin/dsp/znorm.h"
#include "basin/model/model.h"
#include "basin/model/predict.h"
#include "basin/train/listen.h"
#include "basin/train/pipeline.h"
#include "basin/train/predict.h"

#define MODEL_PATH "assets/default-model.safetensors"
#define HOP_FRAMES 13

static double clock_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n ? v[n / 2] : 0;
}

/* A scene at rate: the synthesiser's park at 22 050 Hz, resampled; bursts (white noise at
 * full scale, 50 ms) every `every` seconds when every > 0, their first samples in *bursts. */
static float *scene(double seconds, int rate, double every, long *n_out, long *bursts, int *n_bursts)
{
    long n22 = lround(seconds * 22050), cap = resample_max_frames(n22, 22050, rate), n = 0;
    float *x22 = malloc(sizeof *x22 * n22), *x = malloc(sizeof *x * cap);
    if (!x22 || !x || synth_clip(NULL, synth_class_index("park"), 0, 3, x22, n22) ||
        resample(x22, n22, 1, RESAMPLE_PLANAR, 22050, rate, x, cap, &n)) {
        free(x22), free(x);
        return NULL;
    }
    free(x22);
    int k = 0;
    unsigned seed = 1;
    for (double t = 1.0; every > 0 && t + 0.05 < seconds && k < 64; t += every, k++) {
        long b = lround(t * rate);
        bursts[k] = b;
        for (long i = b; i < b + lround(0.05 * rate) && i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            x[i] = (float)((seed >> 8) / 16777216.0 * 2 - 1);
        }
    }
    *n_bursts = k;
    *n_out = n;
    return x;
}

/* ----------------------------------------------------------------------------- cost */

static void cost(struct model *m, const struct frontend_params *p, int nt)
{
    threads_set(nt);
    const long L = 5 * p->sample_rate_hz, H = (long)HOP_FRAMES * p->hop;
    enum { W = 60 };
    long n = 0, b[1];
    int nb = 0;
    float *x = scene((double)(L + (W + 5) * H) / p->sample_rate_hz + 0.1, p->sample_rate_hz, 0, &n, b, &nb);
    struct frontend_stream *fs = NULL;
    struct frontend *fe = NULL;
    struct frontend_work *w = NULL;
    struct predictor *pr = NULL;
    const long T = 1 + L / p->hop, FT = (long)p->n_mels * T;
    float *y = mem_alloc(sizeof(float) * FT), *probs = mem_alloc(sizeof(float) * m->cfg.classes);
    if (!x || !y || !probs || frontend_stream_create(&fs, p, L, 0) || frontend_create(&fe, p) ||
        frontend_work_create(&w, fe) || predictor_create(&pr, m, 1, m->cfg.in_ch, p->n_mels, (int)T)) {
        printf("listen cost: setup failed: %s\n", status_detail());
        goto done;
    }
    double t_inc[W], t_full[W], t_fwd[W], t_win[W];
    frontend_stream_push(fs, x, L);
    frontend_stream_window(fs, 0, y); /* the first window computes all its frames */
    long f0 = frontend_stream_frames_computed(fs);
    for (int k = 0; k < W; k++) {
        long start = (k + 1) * H;
        frontend_stream_push(fs, x + L + k * H, H);
        double t0 = clock_now();
        frontend_stream_window(fs, start, y);
        double t1 = clock_now();
        if (m->n_norm) znorm_apply(p->n_mels, T, y, m->norm_mean, m->norm_std);
        predictor_probs(pr, 1, y, probs, NULL);
        double t2 = clock_now();
        frontend_compute(fe, w, x + start, L, y);
        double t3 = clock_now();
        t_inc[k] = t1 - t0, t_fwd[k] = t2 - t1, t_full[k] = t3 - t2, t_win[k] = t2 - t0;
    }
    double frames = (double)(frontend_stream_frames_computed(fs) - f0) / W;
    double hop_s = (double)H / p->sample_rate_hz;
    double inc = median_of(t_inc, W), full = median_of(t_full, W), fwd = median_of(t_fwd, W), win = median_of(t_win, W);
    printf("listen: per window (5 s, every %.2f s) on %d thread%s: front end %.3f ms incremental (%.1f frames of %ld) "
           "vs %.3f ms whole; model %.3f ms; total %.3f ms = %.2f %% of the hop\n",
           hop_s, nt, nt == 1 ? "" : "s", inc * 1e3, frames, T, full * 1e3, fwd * 1e3, win * 1e3, 100 * win / hop_s);
    printf("RESULT listen_cost threads %d hop_ms %.1f frontend_inc_ms %.4f frames_per_window %.1f frontend_full_ms %.4f "
           "model_ms %.4f window_ms %.4f hop_share_pct %.3f\n",
           nt, hop_s * 1e3, inc * 1e3, frames, full * 1e3, fwd * 1e3, win * 1e3, 100 * win / hop_s);
done:
    mem_free(y), mem_free(probs);
    predictor_destroy(pr);
    frontend_work_destroy(w);
    frontend_destroy(fe);
    frontend_stream_destroy(fs);
    free(x);
}

/* ----------------------------------------------------------------------------- live */

struct card {
    struct ring *ring;
    const float *x;
    long n, block;
    int rate;
    double *written_at;     /* (n / block + 1) when block i entered the ring */
    volatile int stop;
};

static void *card_run(void *arg)
{
    struct card *c = arg;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long i = 0, k = 0;
    for (; i < c->n && !c->stop; i += c->block, k++) {
        long due_ns = (long)((double)(i + c->block) / c->rate * 1e9); /* a block is ready when it was heard */
        struct timespec at = {t0.tv_sec + (t0.tv_nsec + due_ns) / 1000000000L, (t0.tv_nsec + due_ns) % 1000000000L};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL)) {}
        long len = c->n - i < c->block ? c->n - i : c->block;
        ring_write(c->ring, c->x + i, len);
        c->written_at[k] = clock_now();
    }
    ring_close(c->ring);
    return NULL;
}

struct seen {
    int n;
    double at[4096], latency[4096];
    long end[4096];
    int rate;
};

static int on_update(void *user, const struct listen_update *u)
{
    struct seen *s = user;
    if (s->n < 4096) {
        s->at[s->n] = clock_now();
        s->latency[s->n] = u->latency_s;
        s->end[s->n] = u->window_end;
        s->n++;
    }
    return 1;
}

static void live(struct model *m, const struct frontend_params *p, int nt, int rate, double seconds)
{
    threads_set(nt);
    long n = 0, bursts[64];
    int nb = 0;
    float *x = scene(seconds, rate, 0.77, &n, bursts, &nb); /* bursts at every phase of the hop */
    struct ring *ring = NULL;
    struct seen *s = calloc(1, sizeof *s);
    struct card c = {.x = x, .n = n, .block = rate / 100, .rate = rate};
    c.written_at = calloc((size_t)(n / c.block + 2), sizeof *c.written_at);
    if (!x || !s || !c.written_at || ring_create(&ring, 4 * rate, 1)) {
        printf("listen live: setup failed\n");
        goto done;
    }
    c.ring = ring;
    s->rate = p->sample_rate_hz;
    struct listen_opts o = {.frontend = p, .input_rate_hz = rate, .hop_s = (double)HOP_FRAMES * p->hop / p->sample_rate_hz};
    struct listen_stats st;
    pthread_t th;
    if (pthread_create(&th, NULL, card_run, &c)) goto done;
    int rc = listen_run(m, ring, &o, on_update, s, NULL, &st);
    c.stop = 1;
    pthread_join(th, NULL);
    if (rc) {
        printf("listen live: %s\n", status_detail());
        goto done;
    }
    /* window latency: the first windows (the front end and the model warming up) aside */
    double lat[4096];
    int k = 0;
    for (int i = 2; i < s->n; i++)
        if (s->latency[i] >= 0) lat[k++] = s->latency[i];
    double mean = 0, max = 0;
    for (int i = 0; i < k; i++) mean += lat[i] / k, max = lat[i] > max ? lat[i] : max;
    double med = median_of(lat, k);
    /* onset latency: a burst entering the ring -> the first window that holds it */
    double onset[64], onset_mean = 0, onset_max = 0;
    int no = 0;
    for (int b = 0; b < nb; b++) {
        long blk = bursts[b] / c.block;
        long b_fe = (long)ceil((double)bursts[b] * p->sample_rate_hz / rate);
        for (int i = 0; i < s->n; i++)
            if (s->end[i] > b_fe) {
                onset[no++] = s->at[i] - c.written_at[blk];
                break;
            }
    }
    for (int i = 0; i < no; i++) onset_mean += onset[i] / no, onset_max = onset[i] > onset_max ? onset[i] : onset_max;
    printf("listen: live %.0f s at %d Hz on %d thread%s: %ld windows every %.2f s; latency (ring -> probabilities) "
           "mean %.1f ms, median %.1f ms, max %.1f ms; onset (a burst -> a window holding it) mean %.0f ms, max %.0f ms "
           "over %d bursts; CPU %.1f %% of a core; %ld frames dropped\n",
           st.heard_s, rate, nt, nt == 1 ? "" : "s", st.windows, st.hop_s, mean * 1e3, med * 1e3, max * 1e3,
           onset_mean * 1e3, onset_max * 1e3, no, 100 * st.cpu, st.dropped);
    printf("RESULT listen_live threads %d rate %d hop_ms %.1f windows %ld latency_mean_ms %.3f latency_median_ms %.3f "
           "latency_max_ms %.3f onset_mean_ms %.3f onset_max_ms %.3f cpu_pct %.3f dropped %ld\n",
           nt, rate, st.hop_s * 1e3, st.windows, mean * 1e3, med * 1e3, max * 1e3, onset_mean * 1e3, onset_max * 1e3,
           100 * st.cpu, st.dropped);
done:
    ring_destroy(ring);
    free(c.written_at);
    free(s);
    free(x);
}

int bench_listen(double seconds)
{
    struct model *m = NULL;
    struct frontend_params p;
    if (model_load(&m, MODEL_PATH) || pipeline_model_frontend(m, &p)) {
        printf("listen: %s: %s (make assets makes it)\n", MODEL_PATH, status_detail());
        model_destroy(m);
        return 1;
    }
    if (!(seconds > 2)) seconds = 6;
    const int saved = threads_get();
    for (int nt = 1; nt <= 2; nt++) cost(m, &p, nt);
    for (int nt = 1; nt <= 2; nt++) {
        live(m, &p, nt, 48000, seconds);
        live(m, &p, nt, p.sample_rate_hz, seconds);
    }
    threads_set(saved);
    model_destroy(m);
    return 0;
}
