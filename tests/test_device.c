/* test_device.c: the lock-free ring (wrap, overruns, stamps, a producer and a consumer
 * thread), device specs, the null and file backends, and the real PortAudio path through
 * ALSA's file plugin with a hermetic ALSA_CONFIG_PATH (tests/data/audio/asound-ci.conf):
 * record of a known signal, play of a clip, listen against offline predict, no device, a
 * refused rate, device names, and no library noise on stderr. The PortAudio cases run the
 * basin binary in an environment of their own; they say why when they skip. */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "basin/audio/audio_file.h"
#include "basin/audio/device.h"
#include "basin/audio/ring.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/data/synth.h"
#include "basin/dsp/resample.h"
#include "test.h"
#include "util.h"

#include "../src/audio/device_impl.h" /* device_mark_ended: a device that goes away */

/* ----------------------------------------------------------------------------- ring */

static void test_ring_basics(void)
{
    struct ring *r;
    REQUIRE_OK(ring_create(&r, 100, 2));
    EXPECT_EQ_INT(ring_capacity(r), 128); /* a power of two */
    EXPECT_EQ_INT(ring_channels(r), 2);
    float x[2 * 300], y[2 * 300];
    for (int i = 0; i < 600; i++) x[i] = (float)i;
    /* wrap around the end several times, in odd pieces */
    long written = 0, read = 0;
    for (int round = 0; round < 20; round++) {
        long k = 1 + (round * 37) % 90;
        EXPECT_EQ_INT(ring_write(r, x + (written % 200) * 2, k), k);
        written += k;
        EXPECT_EQ_INT(ring_available(r), written - read);
        long got = ring_read(r, y, k);
        EXPECT_EQ_INT(got, k);
        EXPECT(!memcmp(y, x + (read % 200) * 2, sizeof(float) * 2 * (size_t)k));
        read += got;
    }
    EXPECT_EQ_INT(ring_written(r), written);
    EXPECT_EQ_INT(ring_read_total(r), read);
    /* full: the newest frames are dropped and counted */
    EXPECT_EQ_INT(ring_write(r, x, 100), 100);
    EXPECT_EQ_INT(ring_space(r), 28);
    EXPECT_EQ_INT(ring_write(r, x + 200, 50), 28);
    EXPECT_EQ_INT(ring_dropped(r), 22);
    EXPECT_EQ_INT(ring_overruns(r), 1);
    EXPECT_EQ_INT(ring_read(r, y, 300), 128);
    EXPECT(!memcmp(y, x, sizeof(float) * 200) && !memcmp(y + 200, x + 200, sizeof(float) * 56));
    EXPECT(!ring_closed(r));
    ring_close(r);
    EXPECT(ring_closed(r));
    /* stamps: one per write, in order, with the running frame count */
    struct ring_stamp st[64];
    int n = ring_take_stamps(r, st, 64);
    EXPECT(n == 22);
    for (int i = 1; i < n; i++) EXPECT(st[i].end > st[i - 1].end && st[i].t_ns >= st[i - 1].t_ns);
    EXPECT_EQ_INT(st[n - 1].end, ring_written(r));
    EXPECT_EQ_INT(ring_take_stamps(r, st, 64), 0);
    ring_destroy(r);
    EXPECT(ring_create(&r, 0, 1) == STATUS_INVALID);
    EXPECT(ring_create(&r, 10, 0) == STATUS_INVALID);
    ring_destroy(NULL);
}

struct producer {
    struct ring *r;
    long n;
    int lossless;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    float buf[3 * 97];
    long i = 0, k = 1;
    while (i < p->n) {
        k = 1 + (k * 31 + 7) % 97;
        if (k > p->n - i) k = p->n - i;
        for (long j = 0; j < k; j++)
            for (int c = 0; c < 3; c++) buf[j * 3 + c] = (float)(i + j) + 0.25f * c;
        if (p->lossless)
            while (ring_space(p->r) < k) {}
        long w = ring_write(p->r, buf, k);
        i += p->lossless ? w : k;
    }
    ring_close(p->r);
    return NULL;
}

/* One producer and one consumer thread: every frame arrives once, in order, whole. */
static void test_ring_two_threads(void)
{
    struct ring *r;
    REQUIRE_OK(ring_create(&r, 256, 3));
    struct producer p = {r, 400000, 1};
    pthread_t th;
    REQUIRE(!pthread_create(&th, NULL, produce, &p));
    float buf[3 * 50];
    long next = 0, bad = -1;
    for (;;) {
        long k = ring_read(r, buf, 1 + next % 50);
        for (long j = 0; j < k && bad < 0; j++)
            for (int c = 0; c < 3; c++)
                if (buf[j * 3 + c] != (float)(next + j) + 0.25f * c) bad = next + j;
        next += k;
        if (!k && ring_closed(r) && !ring_available(r)) break;
    }
    pthread_join(th, NULL);
    EXPECT_MSG(bad < 0, "frame %ld came wrong", bad);
    EXPECT_EQ_INT(next, 400000);
    EXPECT_EQ_INT(ring_dropped(r), 0);
    ring_destroy(r);
    /* a producer that never waits: what it loses is counted, what arrives is in order */
    REQUIRE_OK(ring_create(&r, 64, 3));
    p = (struct producer){r, 200000, 0};
    REQUIRE(!pthread_create(&th, NULL, produce, &p));
    long got = 0;
    float last = -1;
    int ordered = 1;
    for (;;) {
        long k = ring_read(r, buf, 50);
        for (long j = 0; j < k; j++) {
            ordered &= buf[j * 3] > last && buf[j * 3 + 1] == buf[j * 3] + 0.25f;
            last = buf[j * 3];
        }
        got += k;
        if (!k && ring_closed(r) && !ring_available(r)) break;
    }
    pthread_join(th, NULL);
    EXPECT(ordered);
    EXPECT_EQ_INT(got + ring_dropped(r), 200000);
    ring_destroy(r);
}

/* ----------------------------------------------------------------------------- specs */

static void test_device_specs(void)
{
    struct device_spec s;
    char text[300];
    REQUIRE_OK(device_spec_parse(&s, "default"));
    EXPECT(s.backend == DEVICE_BACKEND_PORTAUDIO && s.paced && s.rate_hz == 0);
    REQUIRE_OK(device_spec_parse(&s, "NULL"));
    EXPECT(s.backend == DEVICE_BACKEND_NULL);
    REQUIRE_OK(device_spec_parse(&s, "file:a b.wav"));
    EXPECT(s.backend == DEVICE_BACKEND_FILE);
    EXPECT_STR(s.name, "a b.wav");
    device_spec_text(&s, text, sizeof text);
    EXPECT_STR(text, "file:a b.wav");
    REQUIRE_OK(device_spec_parse(&s, "3"));
    device_spec_text(&s, text, sizeof text);
    EXPECT_STR(text, "3");
    EXPECT(device_spec_parse(&s, "") == STATUS_INVALID);
    EXPECT(device_spec_parse(&s, "file:") == STATUS_INVALID);
}

/* ----------------------------------------------------------------------------- null, file */

static void test_null_and_file_backends(void)
{
    /* a stereo float WAV as the microphone; a mono reader gets the mean of the channels */
    const char *in = test_path("stereo.wav"), *out = test_path("out.wav");
    REQUIRE(write_clip(in, 2, 12345, 22050, 300, 9));
    struct audio_file src;
    REQUIRE_OK(audio_file_read(&src, in, NULL));
    struct device_spec spec;
    char text[600];
    snprintf(text, sizeof text, "file:%s", in);
    REQUIRE_OK(device_spec_parse(&spec, text));
    spec.paced = 0;
    struct device_format f;
    REQUIRE_OK(device_negotiate(&spec, DEVICE_INPUT, 16000, 1, &f));
    EXPECT_EQ_INT(f.rate_hz, 22050); /* a file keeps its rate: the reader converts */
    EXPECT_EQ_INT(f.device_channels, 2);
    struct ring *r;
    REQUIRE_OK(ring_create(&r, 1024, 1)); /* smaller than the file: unpaced waits for room */
    struct device_stream *st;
    const struct device_stream_opts o = {.dir = DEVICE_INPUT, .rate_hz = f.rate_hz, .n_channels = 1, .ring = r};
    REQUIRE_OK(device_stream_open(&st, &spec, &o));
    REQUIRE_OK(device_stream_start(st));
    float *y = malloc(sizeof *y * 20000);
    long got = 0;
    for (;;) {
        long k = ring_read(r, y + got, 20000 - got);
        got += k;
        if (!k && ring_closed(r) && !ring_available(r)) break;
    }
    EXPECT_EQ_INT(got, 12345);
    long bad = -1;
    for (long i = 0; i < got && bad < 0; i++) {
        float mean = (audio_file_channel(&src, 0)[i] + audio_file_channel(&src, 1)[i]) / 2.0f;
        if (y[i] != mean) bad = i;
    }
    EXPECT_MSG(bad < 0, "frame %ld", bad);
    EXPECT(!device_stream_running(st));
    REQUIRE_OK(device_stream_status(st));
    device_stream_close(st);
    /* max_frames ends an input early; a forced rate a file does not have is refused */
    ring_destroy(r);
    REQUIRE_OK(ring_create(&r, 20000, 2));
    const struct device_stream_opts o2 = {.dir = DEVICE_INPUT, .rate_hz = 22050, .n_channels = 2, .ring = r,
                                          .max_frames = 1000};
    REQUIRE_OK(device_stream_open(&st, &spec, &o2));
    REQUIRE_OK(device_stream_start(st));
    while (device_stream_running(st)) {}
    EXPECT_EQ_INT(device_stream_frames(st), 1000);
    EXPECT_EQ_INT(ring_available(r), 1000);
    EXPECT(ring_closed(r));
    device_stream_close(st);
    EXPECT(device_negotiate(&spec, DEVICE_INPUT, 0, 3, &f) == STATUS_UNSUPPORTED); /* 2 channels, not 3 */
    EXPECT(strstr(status_detail(), "has 2 channels, not 3"));
    spec.rate_hz = 16000;
    EXPECT(device_negotiate(&spec, DEVICE_INPUT, 0, 1, &f) == STATUS_UNSUPPORTED);
    spec.rate_hz = 0;
    /* output: a mono buffer played on a file device, unpaced, written exactly */
    snprintf(text, sizeof text, "file:%s", out);
    REQUIRE_OK(device_spec_parse(&spec, text));
    spec.paced = 0;
    REQUIRE_OK(device_negotiate(&spec, DEVICE_OUTPUT, 44100, 1, &f));
    EXPECT_EQ_INT(f.rate_hz, 44100);
    const struct device_stream_opts o3 = {.dir = DEVICE_OUTPUT, .rate_hz = 44100, .n_channels = 1,
                                          .play = audio_file_channel(&src, 1), .n_play = src.n_frames};
    REQUIRE_OK(device_stream_open(&st, &spec, &o3));
    REQUIRE_OK(device_stream_start(st));
    while (device_stream_running(st)) {}
    EXPECT_EQ_INT(device_stream_frames(st), src.n_frames);
    REQUIRE_OK(device_stream_status(st));
    device_stream_close(st);
    struct audio_file played;
    REQUIRE_OK(audio_file_read(&played, out, NULL));
    EXPECT_EQ_INT(played.sample_rate_hz, 44100);
    EXPECT_EQ_INT(played.n_frames, src.n_frames);
    EXPECT(!memcmp(played.x, audio_file_channel(&src, 1), sizeof(float) * (size_t)src.n_frames));
    audio_file_fini(&played);
    /* null: silence in, paced in real time: not done at once; stop ends it cleanly */
    REQUIRE_OK(device_spec_parse(&spec, "null"));
    REQUIRE_OK(device_negotiate(&spec, DEVICE_INPUT, 0, 1, &f));
    EXPECT_EQ_INT(f.rate_hz, 48000);
    ring_destroy(r);
    REQUIRE_OK(ring_create(&r, 48000, 1));
    const struct device_stream_opts o4 = {.dir = DEVICE_INPUT, .rate_hz = 48000, .n_channels = 1, .ring = r,
                                          .max_frames = 24000};
    REQUIRE_OK(device_stream_open(&st, &spec, &o4));
    REQUIRE_OK(device_stream_start(st));
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    EXPECT(device_stream_running(st));
    EXPECT(device_stream_frames(st) < 24000);
    device_stream_stop(st);
    EXPECT(!device_stream_running(st));
    REQUIRE_OK(device_stream_status(st)); /* stopped is not a failure */
    device_stream_close(st);
    /* wrong options are refused before anything opens */
    struct device_stream_opts bad_o = {.dir = DEVICE_INPUT, .rate_hz = 10, .n_channels = 1, .ring = r};
    EXPECT(device_stream_open(&st, &spec, &bad_o) == STATUS_INVALID);
    bad_o.rate_hz = 48000, bad_o.n_channels = 2;
    EXPECT(device_stream_open(&st, &spec, &bad_o) == STATUS_INVALID); /* the ring is mono */
    ring_destroy(r);
    free(y);
    audio_file_fini(&src);
}

/* A device that goes away mid-stream: the backend sees its stream end (PortAudio's
 * finished callback, device_mark_ended) short of its end and without a stop. Simulated on
 * the null backend through the backends' shared hook (white box: device_impl.h): the
 * reader's ring closes at once, and the stream's status is the one-line reason. */
static void test_device_gone_mid_stream(void)
{
    struct device_spec spec;
    REQUIRE_OK(device_spec_parse(&spec, "null"));
    spec.paced = 0;
    struct ring *r;
    REQUIRE_OK(ring_create(&r, 4096, 1));
    struct device_stream *st;
    struct device_stream_opts o = {.dir = DEVICE_INPUT, .rate_hz = 48000, .n_channels = 1, .ring = r};
    REQUIRE_OK(device_stream_open(&st, &spec, &o));
    REQUIRE_OK(device_stream_start(st));
    while (ring_available(r) < 4096 - 1024) {} /* unpaced: it fills the ring, then waits */
    device_mark_ended(st);                     /* the device vanished */
    EXPECT(ring_closed(r));
    EXPECT(!device_stream_running(st));
    EXPECT(device_stream_status(st) == STATUS_DEVICE);
    EXPECT_MSG(strstr(status_detail(), "null stopped delivering audio mid-stream (disconnected?)"), "%s",
               status_detail());
    EXPECT(!strchr(status_detail(), '\n'));
    device_stream_close(st);
    /* the same end after a stop is deliberate, not a failure */
    ring_destroy(r);
    REQUIRE_OK(ring_create(&r, 4096, 1));
    o.ring = r;
    REQUIRE_OK(device_stream_open(&st, &spec, &o));
    REQUIRE_OK(device_stream_start(st));
    device_stream_stop(st);
    device_mark_ended(st);
    REQUIRE_OK(device_stream_status(st));
    device_stream_close(st);
    ring_destroy(r);
}

/* ----------------------------------------------------------------------------- PortAudio */

/* The environment of a PortAudio run: the hermetic ALSA configuration (or the one without
 * devices), the capture file, the playback file, and no JACK server. */
static const char *pa_env(char *buf, size_t n, const char *conf, const char *in_raw, const char *out_wav)
{
    char abs_conf[PATH_MAX];
    if (!realpath(conf, abs_conf)) snprintf(abs_conf, sizeof abs_conf, "%s", conf);
    snprintf(buf, n,
             "env ALSA_CONFIG_PATH='%.600s' BASIN_TEST_AUDIO_IN='%.500s' BASIN_TEST_AUDIO_OUT='%.500s' "
             "JACK_DEFAULT_SERVER=basin-test-no-server JACK_NO_START_SERVER=1 BASIN_AUDIO_VERBOSE=0",
             abs_conf, in_raw, out_wav);
    return buf;
}

/* Run a script through the binary with env; stdout into out, stderr into err. Returns the
 * exit status, or -2 (with a printed reason) when the binary is not there. */
static int run_basin(const char *env, const char *script, char *out, size_t n_out, char *err, size_t n_err)
{
    const char *bin = getenv("BASIN_BIN");
    if (!bin) return -2;
    const char *sp = test_path("pa-script.basin"), *ep = test_path("pa-stderr.txt");
    if (!write_text(sp, script)) return -1;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' --script '%s' 2>'%s'", test_dir(), env, bin, sp, ep);
    int rc = shell_output(cmd, out, n_out);
    err[0] = 0;
    FILE *f = fopen(ep, "r");
    if (f) {
        size_t k = fread(err, 1, n_err - 1, f);
        err[k] = 0;
        fclose(f);
    }
    return rc;
}

/* A raw float32 mono file of x (the ALSA file plugin's capture input). */
static int write_raw(const char *path, const float *x, long n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(x, sizeof *x, (size_t)n, f) == (size_t)n;
    return fclose(f) == 0 && ok;
}

/* 1 when PortAudio sees the test configuration's devices; else prints why it skips. */
static int pa_ready(const char *test)
{
    static int state = -1;
    static char why[300];
    if (state < 0) {
        char env[2000], out[8192], err[4096];
        const char *raw = test_path("probe.raw");
        float z[64] = {0};
        write_raw(raw, z, 64);
        int rc = run_basin(pa_env(env, sizeof env, "tests/data/audio/asound-ci.conf", raw, "/dev/null"), "devices\n",
                           out, sizeof out, err, sizeof err);
        state = rc == 0 && strstr(out, "ci_rec") && strstr(out, "default");
        if (rc == -2) snprintf(why, sizeof why, "BASIN_BIN unset (make test sets it)");
        else if (!state) snprintf(why, sizeof why, "PortAudio does not list ALSA's file-plugin devices (rc %d): %.200s", rc, out);
    }
    if (!state) printf("  skip %s: the audio stack is absent: %s\n", test, why);
    return state;
}

/* The lag (0..max) at which got holds ref, and the largest difference there. */
static long align(const float *ref, long n_ref, const float *got, long n_got, long max, double *diff)
{
    long best = -1;
    double best_err = INFINITY;
    for (long lag = 0; lag <= max && lag + n_ref <= n_got; lag++) {
        double e = 0;
        for (long i = 0; i < n_ref && e < best_err; i++) e = fmax(e, fabs(ref[i] - got[lag + i]));
        if (e < best_err) best_err = e, best = lag;
    }
    *diff = best_err;
    return best;
}

static void test_portaudio_record_and_play(void)
{
    if (!pa_ready("test_portaudio_record_and_play")) return;
    /* a known signal, 3 s at 44.1 kHz (the devices' default rate), longer than the
     * recording: the plugin repeats stale audio past the end of its input */
    const int rate = 44100;
    const long n = 3 * rate;
    float *x = malloc(sizeof *x * n);
    struct rng g;
    rng_seed(&g, 21);
    for (long i = 0; i < n; i++)
        x[i] = (float)(0.4 * sin(2 * M_PI * 523.25 * i / rate) + 0.2 * (rng_uniform(&g) - 0.5));
    const char *raw = test_path("known.raw"), *played = test_path("played-pa.wav"), *rec = test_path("rec-pa.wav");
    REQUIRE(write_raw(raw, x, n));
    char env[2000], script[2000], out[16384], err[8192];
    pa_env(env, sizeof env, "tests/data/audio/asound-ci.conf", raw, played);
    snprintf(script, sizeof script, "record seconds=2 out=%s\nplay\n", rec);
    int rc = run_basin(env, script, out, sizeof out, err, sizeof err);
    EXPECT_MSG(rc == 0, "rc %d: %s %s", rc, out, err);
    EXPECT_MSG(!err[0], "stderr: %s", err); /* no ALSA, JACK or PortAudio noise */
    EXPECT(strstr(out, "recorded 2.00 s from 3 default (ALSA) at 44100 Hz, 1 channel"));
    /* record: the file holds the signal, aligned, within 16-bit quantisation */
    struct audio_file r;
    REQUIRE_OK(audio_file_read(&r, rec, NULL));
    EXPECT_EQ_INT(r.sample_rate_hz, rate);
    EXPECT_EQ_INT(r.n_frames, 2 * rate);
    double diff;
    long lag = align(r.x, r.n_frames - 2000, x, n, 2000, &diff);
    EXPECT_EQ_INT(lag, 0);
    EXPECT_MSG(diff <= 1e-3, "max difference %g", diff);
    /* play (the recording, the current clip): the played file holds it after the silence
     * PortAudio primes the device with */
    struct audio_file p;
    REQUIRE_OK(audio_file_read(&p, played, NULL));
    EXPECT_EQ_INT(p.sample_rate_hz, rate);
    lag = align(r.x, r.n_frames, p.x, p.n_frames, 4096, &diff);
    EXPECT_MSG(lag >= 0 && diff <= 1e-3, "lag %ld, max difference %g", lag, diff);
    for (long i = 0; i < lag; i++) EXPECT(p.x[i] == 0.0f);
    audio_file_fini(&p);
    /* a clip at another rate plays at its own rate (the devices take any), from..to */
    snprintf(script, sizeof script, "play %s from=0.5 to=1.5\n", rec);
    rc = run_basin(env, script, out, sizeof out, err, sizeof err);
    EXPECT_MSG(rc == 0 && strstr(out, "played 1.00 s of"), "rc %d: %s %s", rc, out, err);
    REQUIRE_OK(audio_file_read(&p, played, NULL));
    lag = align(r.x + rate / 2, rate, p.x, p.n_frames, 4096, &diff);
    EXPECT_MSG(lag >= 0 && diff <= 1e-3, "lag %ld, max difference %g", lag, diff);
    audio_file_fini(&p);
    audio_file_fini(&r);
    free(x);
}

/* listen through PortAudio on a recorded scene gives offline predict's windows */
static void test_portaudio_listen(void)
{
    if (!pa_ready("test_portaudio_listen")) return;
    /* a park scene from the synthesiser, as the data set records it (device a), brought to
     * 16 kHz (the demo front end's rate: the device takes it, so nothing is converted) */
    const long n22 = 12 * 22050;
    float *x22 = malloc(sizeof *x22 * n22);
    REQUIRE_OK(synth_clip(NULL, synth_class_index("park"), synth_device_index("a"), 3, x22, n22));
    struct audio_file af;
    long cap = resample_max_frames(n22, 22050, 16000), n = 0;
    REQUIRE_OK(audio_file_alloc(&af, 1, cap, 16000));
    REQUIRE_OK(resample(x22, n22, 1, RESAMPLE_PLANAR, 22050, 16000, af.x, cap, &n));
    af.n_frames = n;
    const char *raw = test_path("scene.raw"), *wav = test_path("scene16.wav");
    REQUIRE(write_raw(raw, af.x, n));
    REQUIRE_OK(audio_file_write(wav, &af, AUDIO_FILE_WAV_F32));
    char env[2000], script[2000], out[16384], err[8192];
    pa_env(env, sizeof env, "tests/data/audio/asound-ci.conf", raw, "/dev/null");
    snprintf(script, sizeof script, "listen windows=4 hop=1 first=5\npredict %s hop=1\n", wav);
    int rc = run_basin(env, script, out, sizeof out, err, sizeof err);
    EXPECT_MSG(rc == 0, "rc %d: %s %s", rc, out, err);
    EXPECT_MSG(!err[0], "stderr: %s", err);
    EXPECT(strstr(out, "to 3 default (ALSA) at 16000 Hz: 4 windows of 5.00 s every 1.00 s"));
    EXPECT(strstr(out, "no audio lost"));
    /* each window: the class and probability offline predict gives the same 5 s */
    for (int k = 1; k <= 4; k++) {
        char pat[32], a[64] = "", b[64] = "";
        double pa = -1, pb = -2;
        snprintf(pat, sizeof pat, "\n  %4d ", k);
        const char *l = strstr(out, pat);
        EXPECT(l && sscanf(l + strlen(pat), " %*s %*s %63s %lf", a, &pa) == 2);
        snprintf(pat, sizeof pat, "\n  %6d ", k);
        l = strstr(out, "window  start s");
        l = l ? strstr(l, pat) : NULL;
        EXPECT(l && sscanf(l + strlen(pat), " %*s %63s %lf", b, &pb) == 2);
        EXPECT_STR(a, b);
        EXPECT_NEAR(pa, pb, 1e-4);
    }
    EXPECT(strstr(out, "top scene park"));
    audio_file_fini(&af);
    free(x22);
}

static void test_portaudio_failures(void)
{
    if (!pa_ready("test_portaudio_failures")) return;
    char env[2000], out[16384], err[8192];
    const char *raw = test_path("short.raw");
    float z[4096] = {0};
    REQUIRE(write_raw(raw, z, 4096));
    /* no device at all (an ALSA configuration whose only device cannot open, no JACK):
     * each command says so on one line, and nothing else reaches stderr */
    pa_env(env, sizeof env, "tests/data/audio/asound-nodev.conf", raw, "/dev/null");
    int rc = run_basin(env, "devices\nrecord seconds=1\nplay /nonexistent.wav\nlisten\ndevice in=0\n", out, sizeof out,
                       err, sizeof err);
    EXPECT_EQ_INT(rc, 1);
    EXPECT(strstr(out, "no audio devices"));
    EXPECT_MSG(strstr(err, ":2: error: record: no input device: PortAudio sees no audio device at all"), "%s", err);
    EXPECT(strstr(err, ":4: error: listen: no input device"));
    EXPECT(strstr(err, ":5: error: device: no device 0: PortAudio sees 0, none at all"));
    int lines = count_char(err, '\n');
    EXPECT_MSG(lines == 4, "stderr has %d lines: %s", lines, err);
    /* a rate the device refuses, channels it does not have, names */
    pa_env(env, sizeof env, "tests/data/audio/asound-ci.conf", raw, "/dev/null");
    rc = run_basin(env,
                   "device rate=768000\n"
                   "record seconds=0.05\n"
                   "device rate=0\n"
                   "record seconds=0.05 channels=200\n"
                   "device in=99\n"
                   "device in=ci_\n"
                   "device in=nosuchcard\n"
                   "device in=ci_rec out=0\n"
                   "device in=2\n",
                   out, sizeof out, err, sizeof err);
    EXPECT_EQ_INT(rc, 1);
    EXPECT_MSG(strstr(err, ":2: error: record: device 3 default (ALSA) does not take 768000 Hz for input"), "%s", err);
    EXPECT(strstr(err, ":4: error: record: channels=200: out of range 1..64"));
    EXPECT(strstr(err, ":5: error: device: no device 99: PortAudio sees 4"));
    EXPECT(strstr(err, ":6: error: device: 'ci_' matches 3 input devices: 0 'ci_play', 1 'ci_play_file', 2 'ci_rec'"));
    EXPECT(strstr(err, ":7: error: device: no input device is called 'nosuchcard'"));
    EXPECT(strstr(out, "in=ci_rec: 2 ci_rec (ALSA), 44100 Hz by default"));
    EXPECT(strstr(out, "out=0: 0 ci_play (ALSA)"));
    EXPECT(strstr(out, "in=2: 2 ci_rec (ALSA)"));
    EXPECT_EQ_INT(count_char(err, '\n'), 5);
    /* the machine's own ALSA configuration: whatever it has, no library noise */
    char plain[256];
    snprintf(plain, sizeof plain, "env JACK_DEFAULT_SERVER=basin-test-no-server JACK_NO_START_SERVER=1");
    rc = run_basin(plain, "devices\n", out, sizeof out, err, sizeof err);
    EXPECT_MSG(rc == 0 && !err[0], "rc %d, stderr: %s", rc, err);
}

/* The split view while PortAudio starts (with the machine's own ALSA configuration, which on
 * a machine without a sound card makes alsa-lib print ~60 lines) and while listening and
 * playing: nothing of the libraries' noise reaches the screen; the listen view fills (the
 * spectrogram, the probability bars, the top scene), the status line follows the job, and
 * `stop` ends listening and playing with their one-line summaries. */
static void test_listen_in_split_view(void)
{
    const char *bin = getenv("BASIN_BIN");
    char out[4096];
    if (!bin || shell_output("tmux -V", out, sizeof out) != 0) {
        printf("  skip test_listen_in_split_view: %s\n", bin ? "tmux is missing (make deps installs it)"
                                                              : "BASIN_BIN unset (make test sets it)");
        return;
    }
    static struct tmux_pane t;
    snprintf(t.sock, sizeof t.sock, "basin-audio-%ld", (long)getpid());
    char dir[600], wav[700], script[700], cmd[8192];
    snprintf(dir, sizeof dir, "%s", test_path("wb-audio"));
    snprintf(wav, sizeof wav, "%s/park.wav", dir);
    snprintf(script, sizeof script, "%s/run.sh", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/home'", dir);
    REQUIRE(system(cmd) == 0);
    const long n = 12 * 22050;
    struct audio_file af;
    REQUIRE_OK(audio_file_alloc(&af, 1, n, 22050));
    REQUIRE_OK(synth_clip(NULL, synth_class_index("park"), synth_device_index("a"), 5, af.x, n));
    REQUIRE_OK(audio_file_write(wav, &af, AUDIO_FILE_WAV_F32));
    audio_file_fini(&af);
    FILE *f = fopen(script, "w");
    REQUIRE(f);
    fprintf(f, "cd '%s' && unset ALSA_CONFIG_PATH BASIN_AUDIO_VERBOSE; HOME='%s/home' XDG_STATE_HOME='%s/state' "
               "XDG_CACHE_HOME='%s/cache' TERM=tmux-256color LANG=C.UTF-8 INPUTRC=/dev/null "
               "JACK_DEFAULT_SERVER=basin-test-no-server JACK_NO_START_SERVER=1 '%s'; echo ALL-DONE; sleep 30\n",
            dir, dir, dir, dir, bin);
    fclose(f);
    tmux_cmd(&t, NULL, 0, "kill-server");
    EXPECT_EQ_INT(tmux_cmd(&t, out, sizeof out, "new-session -d -s wb -x 120 -y 40 'sh %s'", script), 0);
    EXPECT_MSG(tmux_wait_for(&t, "basin>", 15), "no prompt: %s", t.screen);
    EXPECT_MSG(tmux_wait_for(&t, "data set: the embedded default", 90), "no default data set: %s", t.screen);
    /* PortAudio starts: its list, and no library noise on the screen */
    tmux_cmd(&t, NULL, 0, "send-keys -t wb C-u 'devices' Enter"); /* C-u: a clean line to type on */
    EXPECT_MSG(tmux_wait_for(&t, "also: null", 15), "devices: %s", t.screen);
    tmux_cmd(&t, NULL, 0, "send-keys -t wb \"device in=file:%s out=null\" Enter", wav);
    EXPECT_MSG(tmux_wait_for(&t, "out=null: null", 10), "device: %s", t.screen);
    /* listen: the view fills, the status line names the job and the top scene */
    tmux_cmd(&t, NULL, 0, "send-keys -t wb 'listen' Enter");
    EXPECT_MSG(tmux_wait_for(&t, "scene probabilities (smoothed)", 15), "no listen view: %s", t.screen);
    EXPECT_MSG(tmux_wait_for(&t, "listen park (window", 15), "status line: %s", t.screen);
    EXPECT(strstr(t.screen, "listening to file:") && strstr(t.screen, "the last window (demo front end, dB)"));
    tmux_cmd(&t, NULL, 0, "send-keys -t wb 'stop' Enter");
    EXPECT_MSG(tmux_wait_for(&t, "\nlistened ", 15), "listen's summary: %s", t.screen);
    EXPECT_MSG(tmux_wait_for(&t, "\nlatency ", 5), "listen's summary: %s", t.screen); /* (lines cut at 120) */
    /* play: not blocking, its position in the status line, stop ends it */
    tmux_cmd(&t, NULL, 0, "send-keys -t wb \"play %s\" Enter", wav);
    EXPECT_MSG(tmux_wait_for(&t, "/0:12", 10), "play's position: %s", t.screen);
    tmux_cmd(&t, NULL, 0, "send-keys -t wb 'stop' Enter");
    EXPECT_MSG(tmux_wait_for(&t, "stopped after", 10), "play's summary: %s", t.screen);
    static const char *const noise[] = {"ALSA lib", "jack server", "Cannot connect", "Expression '", "PaAlsa", "JackShm"};
    for (int i = 0; i < (int)(sizeof noise / sizeof noise[0]); i++)
        EXPECT_MSG(!strstr(tmux_capture(&t), noise[i]), "'%s' on the screen: %s", noise[i], t.screen);
    tmux_cmd(&t, NULL, 0, "send-keys -t wb 'quit' Enter");
    EXPECT_MSG(tmux_wait_for(&t, "ALL-DONE", 15), "quit: %s", t.screen);
    tmux_cmd(&t, NULL, 0, "kill-server");
}

const struct test tests_device[] = {
    TEST(test_ring_basics),
    TEST(test_ring_two_threads),
    TEST(test_device_specs),
    TEST(test_null_and_file_backends),
    TEST(test_device_gone_mid_stream),
    TEST(test_portaudio_record_and_play),
    TEST(test_portaudio_listen),
    TEST(test_portaudio_failures),
    TEST_HEAVY(test_listen_in_split_view),
    {0},
};
