/* test_listen.c: the streaming path: the stream resampler against the whole-clip one, the
 * incremental front end against frontend_compute (bit for bit, every preset), the listening
 * pipeline against offline predict (the same windows, the same probabilities), partial
 * (tiled) windows, latency stamps, overruns, stalls, cancelling; the listen, record and play
 * commands through the file backend, and the listen view. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "basin/audio/audio_file.h"
#include "basin/audio/ring.h"
#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/data/synth.h"
#include "basin/dsp/frontend.h"
#include "basin/dsp/frontend_stream.h"
#include "basin/dsp/resample.h"
#include "basin/dsp/resample_stream.h"
#include "basin/model/model.h"
#include "basin/train/listen.h"
#include "basin/train/pipeline.h"
#include "basin/train/predict.h"
#include "canvas.h"
#include "test.h"
#include "util.h"
#include "views.h"

/* A deterministic test signal: tones, a chirp and noise, with loud and quiet stretches so
 * cpjku's top_db floor moves from window to window. */
static void signal_fill(float *x, long n, int rate, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    for (long i = 0; i < n; i++) {
        double t = (double)i / rate;
        double env = 0.2 + 0.8 * (0.5 + 0.5 * sin(2 * M_PI * 0.7 * t));
        double v = 0.3 * sin(2 * M_PI * 440 * t) + 0.2 * sin(2 * M_PI * (200 + 900 * fmod(t, 1.3)) * t);
        v += 0.1 * (rng_uniform(&r) - 0.5);
        x[i] = (float)(env * v * (i > n / 3 && i < n / 3 + rate / 4 ? 0.01 : 1.0));
    }
}

/* ----------------------------------------------------------------------------- resampler */

static void test_resample_stream_matches_whole(void)
{
    const int rin = 44100, rout = 16000;
    const long n = 3 * rin;
    float *x = malloc(sizeof *x * n);
    signal_fill(x, n, rin, 7);
    long cap = resample_max_frames(n, rin, rout), n_ref = 0;
    float *ref = malloc(sizeof *ref * cap), *y = malloc(sizeof *y * (cap + 4096));
    REQUIRE_OK(resample(x, n, 1, RESAMPLE_PLANAR, rin, rout, ref, cap, &n_ref));
    struct resample_stream *rs;
    REQUIRE_OK(resample_stream_create(&rs, rin, rout));
    long got = 0, pos = 0;
    struct rng r;
    rng_seed(&r, 3);
    while (pos < n) { /* pieces of 1 to 3000 samples, as a device delivers them */
        long k = 1 + (long)(rng_uniform(&r) * 3000);
        if (k > n - pos) k = n - pos;
        long out = 0;
        REQUIRE_OK(resample_stream_process(rs, x + pos, k, y + got, resample_stream_max_out(rs, k), &out));
        pos += k, got += out;
        EXPECT(got <= n_ref);
    }
    EXPECT(resample_stream_delay(rs) > 0); /* soxr holds the filter's look-ahead back */
    long out = 0;
    REQUIRE_OK(resample_stream_process(rs, NULL, 0, y + got, resample_stream_max_out(rs, 0) + 4096, &out));
    got += out;
    EXPECT_EQ_INT(got, n_ref);
    EXPECT_TENSOR_NEAR(y, ref, n_ref, 1e-6, 0);
    resample_stream_destroy(rs);
    /* equal rates: a copy with no delay */
    REQUIRE_OK(resample_stream_create(&rs, rout, rout));
    REQUIRE_OK(resample_stream_process(rs, x, 1000, y, 1000, &out));
    EXPECT_EQ_INT(out, 1000);
    EXPECT(!memcmp(x, y, 1000 * sizeof *x));
    EXPECT(resample_stream_process(rs, x, 1000, y, 999, &out) == STATUS_INVALID);
    resample_stream_destroy(rs);
    EXPECT(resample_stream_create(&rs, 0, rout) == STATUS_INVALID);
    free(x), free(ref), free(y);
}

/* ----------------------------------------------------------------------------- front end */

/* Windows of `seconds` every `hop_frames` frames over a streamed signal equal
 * frontend_compute on the same samples, to the bit; only new frames are computed. */
static void check_stream(const char *preset, double seconds, int hop_frames)
{
    struct frontend_params p;
    REQUIRE_OK(frontend_preset(&p, preset));
    const long L = lround(seconds * p.sample_rate_hz), H = (long)hop_frames * p.hop;
    const long n = L + 6 * H + 777;
    float *x = malloc(sizeof *x * n);
    signal_fill(x, n, p.sample_rate_hz, 11);
    struct frontend *fe;
    struct frontend_work *w;
    struct frontend_stream *s;
    REQUIRE_OK(frontend_create(&fe, &p));
    REQUIRE_OK(frontend_work_create(&w, fe));
    REQUIRE_OK(frontend_stream_create(&s, &p, L, L + 2 * H));
    const long T = frontend_frames(fe, L), F = p.n_mels;
    EXPECT_EQ_INT(frontend_stream_window_frames(s), T);
    float *ref = mem_alloc(sizeof(float) * F * T), *y = mem_alloc(sizeof(float) * F * T);
    long pushed = 0, next = 0, windows = 0, computed_before = 0;
    struct rng r;
    rng_seed(&r, 5);
    while (pushed < n) {
        long k = 1 + (long)(rng_uniform(&r) * 2000);
        if (k > n - pushed) k = n - pushed;
        REQUIRE_OK(frontend_stream_push(s, x + pushed, k));
        pushed += k;
        while (next + L <= pushed) {
            REQUIRE_OK(frontend_stream_window(s, next, y));
            REQUIRE_OK(frontend_compute(fe, w, x + next, L, ref));
            long bad = -1;
            for (long i = 0; i < F * T && bad < 0; i++)
                if (memcmp(&y[i], &ref[i], sizeof(float))) bad = i;
            EXPECT_MSG(bad < 0, "%s window %ld (start %ld): y[%ld] = %.9g, frontend_compute %.9g", preset, windows, next,
                       bad, bad >= 0 ? y[bad] : 0.0, bad >= 0 ? ref[bad] : 0.0);
            long computed = frontend_stream_frames_computed(s);
            if (windows > 0) { /* the new frames and the edge frames only */
                long t_left = (p.n_fft / 2 + p.hop - 1) / p.hop, t_right = (L - p.n_fft / 2) / p.hop;
                long edges = t_left + (T - 1 - t_right);
                EXPECT_MSG(computed - computed_before <= hop_frames + edges, "%s: %ld frames for a window, expected %ld",
                           preset, computed - computed_before, hop_frames + edges);
            }
            computed_before = computed;
            windows++;
            next += H;
        }
    }
    EXPECT(windows >= 6);
    /* out of range: not a hop multiple, no longer held, not yet there */
    EXPECT(frontend_stream_window(s, next + 1, y) == STATUS_INVALID);
    EXPECT(frontend_stream_window(s, next, y) == STATUS_INVALID);
    mem_free(ref), mem_free(y);
    frontend_stream_destroy(s);
    frontend_work_destroy(w);
    frontend_destroy(fe);
    free(x);
}

static void test_frontend_stream_equals_frontend_compute(void)
{
    check_stream("demo", 5.0, 13);      /* the default listener: 5 s every 0.26 s */
    check_stream("demo", 1.01, 7);
    check_stream("panns16k", 1.0, 3);
    check_stream("panns32k", 0.5, 4);
    check_stream("sp4asc", 1.0, 2);
    check_stream("cpjku", 1.0, 5);      /* A-weighted dB then mel, top_db over the window */
    check_stream("cpjku", 0.06, 1);     /* shorter than two FFTs: edge frames only */
}

static void test_frontend_stream_history(void)
{
    struct frontend_params p;
    REQUIRE_OK(frontend_preset(&p, "demo"));
    struct frontend_stream *s;
    REQUIRE_OK(frontend_stream_create(&s, &p, 16000, 0));
    float *x = calloc(200000, sizeof *x);
    for (int i = 0; i < 4; i++) REQUIRE_OK(frontend_stream_push(s, x, 50000));
    EXPECT_EQ_INT(frontend_stream_total(s), 200000);
    EXPECT(frontend_stream_first(s) <= 200000 - 16000);
    float y[10];
    EXPECT(frontend_stream_samples(s, 0, 10, y) == STATUS_INVALID); /* long gone */
    REQUIRE_OK(frontend_stream_samples(s, 200000 - 10, 10, y));
    x[5] = NAN;
    EXPECT(frontend_stream_push(s, x, 10) == STATUS_INVALID);
    EXPECT_EQ_INT(frontend_stream_total(s), 200005);
    frontend_stream_destroy(s);
    EXPECT(frontend_stream_create(&s, &p, 100, 0) == STATUS_INVALID); /* below n_fft/2 */
    EXPECT(s == NULL);
    frontend_stream_destroy(NULL);
    free(x);
}

/* ----------------------------------------------------------------------------- pipeline */

static struct model *default_model(void)
{
    char path[4300];
    struct model *m = NULL;
    if (app_asset_path(APP_DEFAULT_MODEL, path, sizeof path) || model_load(&m, path)) return NULL;
    return m;
}

/* A park scene of `seconds` at `rate` (the synthesiser at 22 050 Hz, resampled). */
static int scene(const char *name, double seconds, int rate, struct audio_file *af)
{
    const long n22 = lround(seconds * 22050);
    float *x = malloc(sizeof *x * n22);
    int s = synth_clip(NULL, synth_class_index(name), synth_device_index("a"), 7, x, n22);
    long cap = resample_max_frames(n22, 22050, rate), n = 0;
    if (!s) s = audio_file_alloc(af, 1, cap, rate);
    if (!s) s = resample(x, n22, 1, RESAMPLE_PLANAR, 22050, rate, af->x, cap, &n);
    if (!s) af->n_frames = n;
    free(x);
    return s;
}

struct feeder {
    struct ring *ring;
    const float *x;
    long n, block;
    int paced_ms;           /* sleep between blocks (0: as fast as there is room) */
    int drop;               /* write even when full (overruns) */
    volatile int stop;      /* the reader is gone */
};

static void *feed(void *arg)
{
    struct feeder *f = arg;
    for (long i = 0; i < f->n; i += f->block) {
        long k = f->n - i < f->block ? f->n - i : f->block;
        while (!f->drop && ring_space(f->ring) < k && !f->stop) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
        ring_write(f->ring, f->x + i, k);
        if (f->paced_ms) {
            struct timespec ts = {0, f->paced_ms * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    ring_close(f->ring);
    return NULL;
}

struct collected {
    int n;
    float probs[64][16];
    long start[64], end[64];
    int partial[64], top[64];
    double latency[64];
    long dropped;
};

static int collect(void *user, const struct listen_update *u)
{
    struct collected *c = user;
    if (c->n < 64) {
        memcpy(c->probs[c->n], u->probs, sizeof(float) * (size_t)u->n_classes);
        c->start[c->n] = u->window_start, c->end[c->n] = u->window_end;
        c->partial[c->n] = u->partial, c->top[c->n] = u->top;
        c->latency[c->n] = u->latency_s;
        c->n++;
    }
    c->dropped = u->dropped;
    return 1;
}

static void test_listen_matches_predict(void)
{
    struct model *m = default_model();
    REQUIRE(m);
    struct audio_file af;
    REQUIRE_OK(scene("park", 9.0, 44100, &af)); /* a device at 44.1 kHz: the listener resamples */
    struct ring *ring;
    REQUIRE_OK(ring_create(&ring, 1 << 16, 1));
    struct feeder f = {ring, af.x, af.n_frames, 441, 0, 0, 0};
    pthread_t th;
    REQUIRE(!pthread_create(&th, NULL, feed, &f));
    struct collected c = {0};
    struct listen_opts o = {.input_rate_hz = 44100, .window_s = 5, .hop_s = 1, .first_s = 5, .every_window = 1};
    struct listen_stats st;
    int s = listen_run(m, ring, &o, collect, &c, NULL, &st);
    f.stop = 1;
    pthread_join(th, NULL);
    REQUIRE_OK(s);
    EXPECT(st.input_ended);
    /* windows at 0, 1, 2, 3 s (the last whole one the streamed audio holds: the resampler
     * still holds back the end) */
    EXPECT(c.n >= 4);
    struct predict_result *r;
    const struct predict_opts po = {.window_s = 5, .hop_s = 1};
    REQUIRE_OK(predict_clip(&r, m, &af, &po, NULL));
    const int M = m->cfg.classes;
    for (int k = 0; k < c.n && k < r->n_windows; k++) {
        EXPECT_EQ_INT(c.start[k], r->window_start[k]);
        EXPECT(!c.partial[k]);
        int best = 0, best_ref = 0;
        for (int j = 1; j < M; j++) {
            if (c.probs[k][j] > c.probs[k][best]) best = j;
            if (r->window_probs[k * M + j] > r->window_probs[k * M + best_ref]) best_ref = j;
        }
        EXPECT_EQ_INT(best, best_ref);
        EXPECT_TENSOR_NEAR(c.probs[k], r->window_probs + k * M, M, 1e-4, 0);
    }
    EXPECT_EQ_INT(c.top[c.n - 1], synth_class_index("park")); /* the default model knows a park */
    EXPECT(st.latency_n == c.n);                                /* every window's is known */
    EXPECT_EQ_INT(st.dropped, 0);
    predict_result_destroy(r);
    ring_destroy(ring);
    audio_file_fini(&af);
    model_destroy(m);
}

/* Before a whole window: the audio so far tiled, as predict does with a short clip. */
static void test_listen_partial_windows(void)
{
    struct model *m = default_model();
    REQUIRE(m);
    struct audio_file af;
    REQUIRE_OK(scene("tram", 3.0, 16000, &af));
    struct ring *ring;
    REQUIRE_OK(ring_create(&ring, af.n_frames, 1));
    EXPECT_EQ_INT(ring_write(ring, af.x, af.n_frames), af.n_frames);
    ring_close(ring);
    struct collected c = {0};
    struct listen_opts o = {.input_rate_hz = 16000, .hop_s = 0.5, .first_s = 1, .every_window = 1, .smooth_s = -1};
    REQUIRE_OK(listen_run(m, ring, &o, collect, &c, NULL, NULL));
    EXPECT_EQ_INT(c.n, 5); /* 1, 1.5, 2, 2.5, 3 s; a whole window (5 s) never comes */
    for (int k = 0; k < c.n; k++) {
        EXPECT(c.partial[k]);
        EXPECT_EQ_INT(c.end[k], 16000 + k * 8000);
        struct audio_file part;
        REQUIRE_OK(audio_file_alloc(&part, 1, c.end[k], 16000));
        memcpy(part.x, af.x, sizeof(float) * (size_t)c.end[k]);
        struct predict_result *r;
        REQUIRE_OK(predict_clip(&r, m, &part, NULL, NULL));
        EXPECT(r->tiled);
        EXPECT_TENSOR_NEAR(c.probs[k], r->probs, m->cfg.classes, 1e-6, 0);
        predict_result_destroy(r);
        audio_file_fini(&part);
    }
    ring_destroy(ring);
    audio_file_fini(&af);
    model_destroy(m);
}

static int stop_after(void *user, const char *label, long done, long total)
{
    (void)label, (void)total;
    return done < *(long *)user;
}

static void test_listen_live_overruns_stall_cancel(void)
{
    struct model *m = default_model();
    REQUIRE(m);
    struct audio_file af;
    REQUIRE_OK(scene("bus", 8.0, 16000, &af));
    /* live (not every window): a fast producer into a small ring drops frames, counted */
    struct ring *ring;
    REQUIRE_OK(ring_create(&ring, 4096, 1));
    struct feeder f = {ring, af.x, af.n_frames, 1024, 1, 1, 0}; /* 16 times real time */
    pthread_t th;
    REQUIRE(!pthread_create(&th, NULL, feed, &f));
    struct collected c = {0};
    struct listen_opts o = {.input_rate_hz = 16000, .window_s = 1, .hop_s = 0.1};
    struct listen_stats st;
    int s = listen_run(m, ring, &o, collect, &c, NULL, &st);
    pthread_join(th, NULL);
    EXPECT_MSG(s == STATUS_OK, "%s", status_detail());
    EXPECT(c.n > 0);
    EXPECT(st.dropped > 0 && st.overruns > 0);
    EXPECT_EQ_INT(st.dropped + (long)(st.heard_s * 16000 + 0.5), af.n_frames);
    ring_destroy(ring);
    /* stall: nothing comes */
    REQUIRE_OK(ring_create(&ring, 4096, 1));
    struct listen_opts o2 = {.input_rate_hz = 16000, .stall_s = 0.1};
    EXPECT(listen_run(m, ring, &o2, NULL, NULL, NULL, NULL) == STATUS_DEVICE);
    EXPECT(strstr(status_detail(), "no audio") != NULL);
    /* cancelled through the progress callback after 2 windows */
    REQUIRE_OK(ring_write(ring, af.x, 4096) == 4096 ? STATUS_OK : STATUS_INVALID);
    long after = 2;
    const struct progress p = {stop_after, &after};
    struct listen_opts o3 = {.input_rate_hz = 16000, .hop_s = 0.05, .first_s = 0.1, .every_window = 1, .stall_s = -1};
    struct feeder f2 = {ring, af.x + 4096, af.n_frames - 4096, 512, 1, 0, 0};
    REQUIRE(!pthread_create(&th, NULL, feed, &f2));
    struct collected c2 = {0};
    EXPECT(listen_run(m, ring, &o3, collect, &c2, &p, NULL) == STATUS_CANCELLED);
    EXPECT_EQ_INT(c2.n, 2);
    f2.stop = 1;
    pthread_join(th, NULL);
    ring_destroy(ring);
    /* bad options and a model that does not fit */
    REQUIRE_OK(ring_create(&ring, 4096, 1));
    struct listen_opts bad = {.input_rate_hz = 16000, .window_s = 1, .hop_s = 2};
    EXPECT(listen_run(m, ring, &bad, NULL, NULL, NULL, NULL) == STATUS_INVALID);
    bad = (struct listen_opts){.input_rate_hz = 10};
    EXPECT(listen_run(m, ring, &bad, NULL, NULL, NULL, NULL) == STATUS_INVALID);
    ring_destroy(ring);
    audio_file_fini(&af);
    model_destroy(m);
}

/* ----------------------------------------------------------------------------- commands */

/* A park scene as a 22 050 Hz float WAV (the file backend hands it over as it is). */
static const char *park_wav(void)
{
    static char path[512];
    snprintf(path, sizeof path, "%s", test_path("park22.wav"));
    struct audio_file af;
    audio_file_init(&af);
    if (scene("park", 9.0, 22050, &af) || audio_file_write(path, &af, AUDIO_FILE_WAV_F32)) path[0] = 0;
    audio_file_fini(&af);
    return path;
}

/* "  N  a-b s  label p" lines of listen (skip 2 words), predict's "  N  start  label p"
 * (skip 1): the label and probability of window k. */
static int window_label(const char *out, const char *after, int k, int skip, char *label, double *p)
{
    const char *s = strstr(out, after);
    if (!s) return 0;
    char pat[16];
    snprintf(pat, sizeof pat, skip == 2 ? "\n  %4d " : "\n  %6d ", k);
    const char *l = strstr(s, pat);
    if (!l) return 0;
    l += strlen(pat);
    return sscanf(l, skip == 2 ? " %*s %*s %63s %lf" : " %*s %63s %lf", label, p) == 2;
}

static void test_listen_command_file_backend(void)
{
    const char *wav = park_wav();
    REQUIRE(wav[0]);
    char script[2000];
    snprintf(script, sizeof script,
             "device in=file:%s pace=fast\n"
             "listen windows=3 hop=1 first=5\n"
             "predict %s hop=1\n",
             wav, wav);
    struct cli_output r = cli_run(script);
    EXPECT_MSG(r.n_errors == 0, "errors: %s", r.err);
    EXPECT(strstr(r.out, "listened ") && strstr(r.out, "3 windows of 5.00 s every 1.00 s"));
    EXPECT(strstr(r.out, "no audio lost"));
    for (int k = 1; k <= 3; k++) {
        char a[64], b[64];
        double pa = 0, pb = 0;
        EXPECT_MSG(window_label(r.out, "window  seconds", k, 2, a, &pa), "no listen line %d in %s", k, r.out);
        EXPECT_MSG(window_label(r.out, "window  start s", k, 1, b, &pb), "no predict line %d in %s", k, r.out);
        EXPECT_STR(a, b);
        EXPECT_NEAR(pa, pb, 2e-3); /* streamed vs whole-file resampling to 16 kHz */
    }
    EXPECT(strstr(r.out, "park"));
    /* options that cannot work */
    r = cli_run("listen hop=10 window=5\nlisten bogus=1\nlisten hop=x\n");
    EXPECT_EQ_INT(r.n_errors, 3);
    EXPECT(strstr(r.err, "hop=10 is longer than window=5"));
    /* the listen view, drawn after a run */
    snprintf(script, sizeof script, "device in=file:%s pace=fast\nlisten windows=2 first=0.5\nview listen rows=30\n", wav);
    r = cli_run(script);
    EXPECT_MSG(r.n_errors == 0, "errors: %s", r.err);
    EXPECT(strstr(r.out, "scene probabilities (smoothed)"));
    EXPECT(strstr(r.out, "listened to file:"));
    EXPECT(strstr(r.out, "the last window (demo front end, dB)"));
}

static void test_record_and_play_file_backend(void)
{
    const char *wav = park_wav();
    REQUIRE(wav[0]);
    char script[3000];
    const char *rec = test_path("rec.wav"), *played = test_path("played.wav");
    snprintf(script, sizeof script,
             "device in=file:%s out=file:%s pace=fast\n"
             "record seconds=1.5 out=%s format=wav-f32\n"
             "predict\n"
             "play from=0.5 to=1\n"
             "record seconds=1 out=%s.flac rate=16000\n",
             wav, played, rec, rec);
    struct cli_output r = cli_run(script);
    EXPECT_MSG(r.n_errors == 0, "errors: %s", r.err);
    EXPECT(strstr(r.out, "recorded 1.50 s from file:"));
    EXPECT(strstr(r.out, "park")); /* predict used the recording: the current clip */
    struct audio_file src, got, out;
    REQUIRE_OK(audio_file_read(&src, wav, NULL));
    REQUIRE_OK(audio_file_read(&got, rec, NULL));
    EXPECT_EQ_INT(got.n_frames, lround(1.5 * 22050));
    EXPECT_EQ_INT(got.sample_rate_hz, 22050);
    EXPECT(!memcmp(got.x, src.x, sizeof(float) * (size_t)got.n_frames)); /* float WAV: exact */
    /* play wrote the recording's 0.5..1 s into the output file, exactly */
    REQUIRE_OK(audio_file_read(&out, played, NULL));
    EXPECT_EQ_INT(out.n_frames, lround(0.5 * 22050));
    EXPECT(!memcmp(out.x, got.x + lround(0.5 * 22050), sizeof(float) * (size_t)out.n_frames));
    audio_file_fini(&out);
    /* rate=16000 from a 22 050 Hz input: recorded at the device's rate, converted */
    char flac[600];
    snprintf(flac, sizeof flac, "%s.flac", rec);
    REQUIRE_OK(audio_file_read(&out, flac, NULL));
    EXPECT_EQ_INT(out.sample_rate_hz, 16000);
    EXPECT_EQ_INT(out.n_frames, 16000);
    audio_file_fini(&out);
    audio_file_fini(&src);
    audio_file_fini(&got);
    /* what cannot be done is one line each */
    snprintf(script, sizeof script,
             "device in=file:/nonexistent/x.wav\n"
             "device pace=slow\n"
             "device rate=12\n"
             "record rate=500\n"
             "record seconds=0\n"
             "record out=x.unknown\n"
             "play\n"
             "play /nonexistent.wav\n"
             "device in=null out=null pace=fast\n"
             "record seconds=0.2 out=%s\n", test_path("silence.wav"));
    r = cli_run(script);
    EXPECT_EQ_INT(r.n_errors, 8);
    EXPECT(strstr(r.err, "error: device: /nonexistent/x.wav"));
    EXPECT(strstr(r.err, "pace=slow: real or fast"));
    EXPECT(strstr(r.err, "rate=12: out of range"));
    EXPECT(strstr(r.err, "rate=500: out of range"));
    EXPECT(strstr(r.err, "seconds=0: out of range"));
    EXPECT(strstr(r.err, "out=x.unknown: name the format"));
    EXPECT(strstr(r.err, "play: which clip?"));
    EXPECT(strstr(r.err, "/nonexistent.wav"));
    EXPECT(strstr(r.out, "recorded 0.20 s from null") && strstr(r.out, "digital silence"));
}

/* stop while playing and recording in real time: what was done is kept */
static void run(struct app *a, const char *line)
{
    if (app_run_line(a, line)) test_fail(__FILE__, __LINE__, "'%s' failed", line);
}

static void test_stop_play_and_record(void)
{
    const char *wav = park_wav();
    REQUIRE(wav[0]);
    char line[2000], *out = NULL, *err = NULL;
    size_t n_out, n_err;
    const char *played = test_path("stopped.wav"), *rec = test_path("stopped-rec.wav");
    struct app a;
    app_init(&a);
    a.out = open_memstream(&out, &n_out);
    a.err = open_memstream(&err, &n_err);
    const struct timespec pause = {0, 300 * 1000000L};
    snprintf(line, sizeof line, "device in=file:%s out=file:%s pace=real", wav, played);
    run(&a, line);
    snprintf(line, sizeof line, "play %s &", wav);
    run(&a, line);
    nanosleep(&pause, NULL);
    run(&a, "stop");
    run(&a, "wait");
    snprintf(line, sizeof line, "record seconds=20 out=%s &", rec);
    run(&a, line);
    nanosleep(&pause, NULL);
    run(&a, "stop");
    run(&a, "wait");
    fflush(a.out), fflush(a.err);
    EXPECT_EQ_INT(a.n_errors, 0);
    EXPECT_MSG(strstr(out, "stopped after"), "%s", out);
    EXPECT_MSG(strstr(out, "stopped: recorded"), "%s", out);
    EXPECT_STR(a.clip_path, rec); /* the recording is the current clip */
    EXPECT(a.clip.n_frames > 0 && a.clip.n_frames < 20 * 22050);
    struct audio_file af;
    if (!audio_file_read(&af, played, NULL)) {
        EXPECT(af.n_frames > 0 && af.n_frames < 9 * 22050); /* not the whole clip */
        audio_file_fini(&af);
    } else {
        test_fail(__FILE__, __LINE__, "%s: %s", played, status_detail());
    }
    fclose(a.out), fclose(a.err);
    app_fini(&a);
    free(out), free(err);
}

const struct test tests_listen[] = {
    TEST(test_resample_stream_matches_whole),
    TEST(test_frontend_stream_equals_frontend_compute),
    TEST(test_frontend_stream_history),
    TEST_HEAVY(test_listen_matches_predict),
    TEST(test_listen_partial_windows),
    TEST(test_listen_live_overruns_stall_cancel),
    TEST_HEAVY(test_listen_command_file_backend),
    TEST(test_record_and_play_file_backend),
    TEST(test_stop_play_and_record),
    {0},
};
