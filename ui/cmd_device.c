/* cmd_device.c: sound out and in: devices, device, play, record and listen, and the listen
 * view (DESIGN.md section 7: audio devices are backends behind one interface; long work is
 * a job).
 *
 * Playing, recording and listening are jobs: the prompt stays live, the status line shows
 * the position (play), the time and a level meter (record) or the top scene (listen), and
 * `stop` (or Ctrl-C) ends them at once, keeping what was done (a recording is written with
 * what was heard until then). One job runs at a time, so `play` during training is refused
 * with the usual "job N is running" message rather than competing with it for the cores.
 *
 * The session's choice of devices lives with the listen view's data (the app's view slot
 * for VIEW_LISTEN, released with the app), so each session has its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "basin/audio/audio_file.h"
#include "basin/audio/device.h"
#include "basin/audio/ring.h"
#include "basin/core/fs.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/dsp/frontend.h"
#include "basin/dsp/resample.h"
#include "basin/model/model.h"
#include "basin/train/listen.h"
#include "basin/train/predict.h"
#include "canvas.h"
#include "commands.h"
#include "job.h"
#include "session.h"
#include "views.h"

/* ----------------------------------------------------------------------------- state */

/* The session's devices and the listen view's data (guarded by lock: a listening job
 * writes it, the UI thread draws it). */
struct listen_ui {
    pthread_mutex_t lock;
    struct device_spec in, out;
    /* the view */
    int listening;              /* a listening job is running */
    int have;                   /* a window was classified */
    char source[400];           /* "3 default (ALSA) at 16000 Hz" */
    float *spec;                /* (F, T) the last window's features */
    int F, T;
    struct frontend_params fe;
    float lo, hi;
    float *probs;               /* (M) smoothed */
    int M;
    char **labels;              /* (M) */
    int top;
    long windows, dropped;
    double latency_s, compute_s, hop_s, window_s, cpu, level_db, heard_s;
    int partial;
    char note[300];             /* the last line: why it stopped, a warning */
};

static void listen_ui_release(void *data)
{
    struct listen_ui *u = data;
    if (!u) return;
    pthread_mutex_destroy(&u->lock);
    free(u->spec);
    free(u->probs);
    for (int k = 0; u->labels && k < u->M; k++) free(u->labels[k]);
    free(u->labels);
    free(u);
}

static void listen_draw(struct canvas *c, void *data);

/* The session's state, made on first use (without switching the view). */
static struct listen_ui *ui_of(struct app *a)
{
    struct app_view_slot *slot = &a->views.slots[VIEW_LISTEN];
    if (slot->data && slot->draw == listen_draw) return slot->data;
    struct listen_ui *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    pthread_mutex_init(&u->lock, NULL);
    device_spec_parse(&u->in, "default");
    device_spec_parse(&u->out, "default");
    if (slot->release && slot->data) slot->release(slot->data);
    slot->draw = listen_draw, slot->data = u, slot->release = listen_ui_release;
    return u;
}

/* In the split view nothing may write to the terminal behind ncurses' back: the audio
 * libraries' remaining stderr (what PortAudio's own thread may print when a device fails
 * mid-stream) goes to a log file for the rest of the session. */
static void quiet_stderr(struct app *a)
{
    if (!a->workbench || !isatty(STDERR_FILENO)) return;
    char path[FS_PATH_MAX];
    int fd = -1;
    if (!fs_state_dir("audio.log", path, sizeof path) && !fs_mkdir_parent(path))
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (fd < 0) fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return;
    dup2(fd, STDERR_FILENO);
    close(fd);
}

/* ----------------------------------------------------------------------------- helpers */

static int arg_real(struct app *a, const char *cmd, const char *key, const char *value, double lo, double hi,
                    double *out)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (!*value || *end || errno || !isfinite(v))
        return app_fail(a, STATUS_INVALID, "%s: %s=%s: not a number", cmd, key, value);
    if (!(v >= lo && v <= hi)) return app_fail(a, STATUS_INVALID, "%s: %s=%s: out of range %g..%g", cmd, key, value, lo, hi);
    *out = v;
    return STATUS_OK;
}

static void fmt_time(char *buf, size_t n, double s)
{
    int t = (int)(s < 0 ? 0 : s > 359999 ? 359999 : s);
    snprintf(buf, n, "%d:%02d", t / 60 % 10000, t % 60);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* An ASCII meter of a level in dBFS over -60..0: "[#####   ]". */
static void meter(char *buf, size_t n, double db, int width)
{
    int k = isfinite(db) ? (int)lround((db + 60) / 60 * width) : 0;
    k = k < 0 ? 0 : k > width ? width : k;
    snprintf(buf, n, "[%.*s%*s]", k, "##############################", width - k, "");
}

/* ----------------------------------------------------------------------------- devices */

int cmd_devices(struct app *a, int argc, char **argv)
{
    (void)argv;
    if (argc > 1) return app_fail(a, STATUS_INVALID, "devices takes no arguments");
    struct listen_ui *u = ui_of(a);
    if (!u) return app_fail(a, STATUS_NOMEM, "out of memory");
    quiet_stderr(a);
    struct device_info *list = NULL;
    int n = 0;
    char version[200] = "";
    int s = device_list(&list, &n, version, sizeof version);
    if (s) return app_fail_in(a, s, "devices");
    if (!n) {
        app_out(a, "%s: no audio devices (no sound card, or no access to it)\n", version);
    } else {
        int w = 4;
        for (int i = 0; i < n; i++)
            if ((int)strlen(list[i].name) > w) w = (int)strlen(list[i].name) < 48 ? (int)strlen(list[i].name) : 48;
        app_out(a, "%s: %d device%s\n", version, n, n == 1 ? "" : "s");
        app_out(a, "  %3s  %-*s  %-6s %4s %4s  %8s  %s\n", "#", w, "name", "host", "in", "out", "rate Hz", "latency in/out ms");
        for (int i = 0; i < n; i++) {
            const struct device_info *d = &list[i];
            char mark[40] = "";
            if (d->is_default_in || d->is_default_out)
                snprintf(mark, sizeof mark, "  (default %s%s%s)", d->is_default_in ? "in" : "",
                         d->is_default_in && d->is_default_out ? ", " : "", d->is_default_out ? "out" : "");
            char host[16];
            snprintf(host, sizeof host, "%.6s", d->host);
            app_out(a, "  %3d  %-*.*s  %-6s %4d %4d  %8.0f  %.1f / %.1f%s\n", d->index, w, w, d->name, host, d->max_in,
                    d->max_out, d->default_rate_hz, 1000 * d->in_latency_s, 1000 * d->out_latency_s, mark);
        }
    }
    mem_free(list);
    char in[300], out[300];
    pthread_mutex_lock(&u->lock);
    device_spec_text(&u->in, in, sizeof in);
    device_spec_text(&u->out, out, sizeof out);
    pthread_mutex_unlock(&u->lock);
    app_out(a, "also: null (silence in, nowhere out), file:PATH (a file as microphone or loudspeaker)\n"
               "chosen: in=%s out=%s (device in=... out=... chooses)\n", in, out);
    return STATUS_OK;
}

/* One line for a device choice: what it resolves to now. */
static void describe(struct app *a, const char *key, const struct device_spec *spec, enum device_dir dir)
{
    char text[300];
    device_spec_text(spec, text, sizeof text);
    struct device_format f;
    const char *pace = spec->backend == DEVICE_BACKEND_PORTAUDIO ? "" : spec->paced ? ", real time" : ", unpaced";
    if (device_negotiate(spec, dir, spec->rate_hz, 1, &f))
        app_out(a, "%s=%s: %s\n", key, text, status_detail());
    else if (spec->rate_hz > 0)
        app_out(a, "%s=%s: %s at %g Hz (forced with rate=)%s\n", key, text, f.name, f.rate_hz, pace);
    else
        app_out(a, "%s=%s: %s, %g Hz by default%s\n", key, text, f.name, f.default_rate_hz, pace);
}

/* device [in=SPEC] [out=SPEC] [pace=real|fast] [rate=HZ] */
int cmd_device(struct app *a, int argc, char **argv)
{
    struct listen_ui *u = ui_of(a);
    if (!u) return app_fail(a, STATUS_NOMEM, "out of memory");
    quiet_stderr(a);
    pthread_mutex_lock(&u->lock);
    struct device_spec in = u->in, out = u->out;
    pthread_mutex_unlock(&u->lock);
    int new_in = 0, new_out = 0, pace = -1;
    double rate = -1;
    for (int i = 1; i < argc; i++) {
        char *v = arg_split(argv[i]);
        if (!v) return app_fail(a, STATUS_INVALID, "device: expected key=value, got '%s' (in=, out=, pace=, rate=)", argv[i]);
        if (!strcmp(argv[i], "in") || !strcmp(argv[i], "out")) {
            struct device_spec sp;
            if (device_spec_parse(&sp, v)) return app_fail_in(a, STATUS_INVALID, "device");
            if (!strcmp(argv[i], "in")) in = sp, new_in = 1;
            else out = sp, new_out = 1;
        } else if (!strcmp(argv[i], "pace")) {
            if (!strcmp(v, "real")) pace = 1;
            else if (!strcmp(v, "fast")) pace = 0;
            else return app_fail(a, STATUS_INVALID, "device: pace=%s: real or fast", v);
        } else if (!strcmp(argv[i], "rate")) {
            if (!strcmp(v, "0") || !strcmp(v, "auto")) rate = 0;
            else if (arg_real(a, "device", "rate", v, DEVICE_MIN_RATE_HZ, DEVICE_MAX_RATE_HZ, &rate)) return STATUS_INVALID;
        } else {
            return app_fail(a, STATUS_INVALID, "device: unknown option '%s' (in=, out=, pace=, rate=)", argv[i]);
        }
    }
    if (pace >= 0) in.paced = out.paced = pace;
    if (rate >= 0) in.rate_hz = out.rate_hz = rate;
    /* a new choice must exist now, not at the next recording */
    struct device_format f;
    if (new_in && device_negotiate(&in, DEVICE_INPUT, 0, 1, &f)) return app_fail_in(a, STATUS_INVALID, "device");
    if (new_out && device_negotiate(&out, DEVICE_OUTPUT, 0, 1, &f)) return app_fail_in(a, STATUS_INVALID, "device");
    pthread_mutex_lock(&u->lock);
    u->in = in, u->out = out;
    pthread_mutex_unlock(&u->lock);
    describe(a, "in", &in, DEVICE_INPUT);
    describe(a, "out", &out, DEVICE_OUTPUT);
    return STATUS_OK;
}

/* ----------------------------------------------------------------------------- play */

struct play_job {
    struct app *a;
    struct device_spec spec;
    struct audio_file clip;     /* a copy: `clip` may replace the session's meanwhile */
    char label[1100];
    double from_s, to_s;
    /* results */
    char device[DEVICE_NAME_MAX + 80];
    double rate_hz, played_s, length_s;
    int stopped;
};

/* Frames [f0, f1) of clip interleaved, converted to rate (a new buffer, mem_free). */
static int segment(const struct audio_file *clip, long f0, long f1, double rate, float **out, long *n_out)
{
    const int C = clip->n_channels;
    const long n = f1 - f0;
    float *x = mem_alloc(mem_mul((size_t)(n > 0 ? n : 1), sizeof(float) * (size_t)C));
    if (!x) return STATUS_NOMEM;
    for (long i = 0; i < n; i++)
        for (int c = 0; c < C; c++) x[i * C + c] = audio_file_channel(clip, c)[f0 + i];
    if (rate == clip->sample_rate_hz) {
        *out = x, *n_out = n;
        return STATUS_OK;
    }
    long cap = resample_max_frames(n, clip->sample_rate_hz, rate);
    float *y = mem_alloc(mem_mul((size_t)cap, sizeof(float) * (size_t)C));
    int s = y ? resample(x, n, C, RESAMPLE_INTERLEAVED, clip->sample_rate_hz, rate, y, cap, n_out) : STATUS_NOMEM;
    mem_free(x);
    if (s) {
        mem_free(y);
        return s;
    }
    *out = y;
    return STATUS_OK;
}

static int play_work(struct job *j, void *arg)
{
    struct play_job *pj = arg;
    const struct audio_file *c = &pj->clip;
    const double rate_in = c->sample_rate_hz;
    long f0 = lround(pj->from_s * rate_in), f1 = pj->to_s > 0 ? lround(pj->to_s * rate_in) : c->n_frames;
    if (f1 > c->n_frames) f1 = c->n_frames;
    if (f0 >= f1) return status_set(STATUS_INVALID, "nothing to play between %.3f s and %.3f s (the clip is %.3f s)",
                                    pj->from_s, (double)f1 / rate_in, c->n_frames / rate_in);
    struct device_format f;
    int s = device_negotiate(&pj->spec, DEVICE_OUTPUT, rate_in, c->n_channels, &f);
    if (s) return s;
    float *buf = NULL;
    long n = 0;
    if ((s = segment(c, f0, f1, f.rate_hz, &buf, &n))) return s;
    struct device_stream *st = NULL;
    const struct device_stream_opts o = {.dir = DEVICE_OUTPUT, .rate_hz = f.rate_hz, .n_channels = c->n_channels,
                                         .play = buf, .n_play = n};
    s = device_stream_open(&st, &pj->spec, &o);
    if (!s) s = device_stream_start(st);
    if (!s) {
        snprintf(pj->device, sizeof pj->device, "%s", device_stream_name(st));
        pj->rate_hz = f.rate_hz;
        pj->length_s = n / f.rate_hz;
        const double lat = device_stream_latency(st);
        char total[16];
        fmt_time(total, sizeof total, pj->length_s);
        while (device_stream_running(st)) {
            /* where the listener is: what was handed over, less what the device holds */
            double at = device_stream_frames(st) / f.rate_hz - lat;
            at = at < 0 ? 0 : at > pj->length_s ? pj->length_s : at;
            char pos[16], label[48];
            fmt_time(pos, sizeof pos, at);
            snprintf(label, sizeof label, "play %s/%s", pos, total);
            const long xr = device_stream_xruns(st);
            if (xr) job_set_message(j, "playing %.60s on %.60s: %s / %s; warning: the device reported %ld underruns",
                                    pj->label, pj->device, pos, total, xr);
            else job_set_message(j, "playing %.60s on %.60s: %s / %s", pj->label, pj->device, pos, total);
            if (!progress_report(job_progress(j), label, lround(at * 100), lround(pj->length_s * 100))) {
                pj->stopped = 1;
                device_stream_stop(st);
                break;
            }
            sleep_ms(20);
        }
        long played = device_stream_frames(st) - (pj->stopped ? lround(lat * f.rate_hz) : 0);
        pj->played_s = (played > 0 ? played : 0) / f.rate_hz;
        s = device_stream_status(st);
    }
    device_stream_close(st);
    mem_free(buf);
    return s;
}

static void play_done(struct job *j, void *arg, int s)
{
    (void)j;
    struct play_job *pj = arg;
    if (s) app_fail_in(pj->a, s, "play");
    else
        app_out(pj->a, "%s %.2f s of %s on %s at %g Hz\n", pj->stopped ? "stopped after" : "played", pj->played_s,
                pj->label, pj->device, pj->rate_hz);
    audio_file_fini(&pj->clip);
    free(pj);
}

/* play [PATH] [from=S] [to=S] */
int cmd_play(struct app *a, int argc, char **argv)
{
    struct listen_ui *u = ui_of(a);
    if (!u) return app_fail(a, STATUS_NOMEM, "out of memory");
    const char *path = NULL;
    double from = 0, to = 0;
    for (int i = 1; i < argc; i++) {
        char *v = arg_split(argv[i]);
        if (!v) {
            if (path) return app_fail(a, STATUS_INVALID, "play: one clip at a time ('%s' and '%s')", path, argv[i]);
            path = argv[i];
        } else if (!strcmp(argv[i], "from")) {
            if (arg_real(a, "play", "from", v, 0, 1e7, &from)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "to")) {
            if (arg_real(a, "play", "to", v, 1e-6, 1e7, &to)) return STATUS_INVALID;
        } else {
            return app_fail(a, STATUS_INVALID, "play: unknown option '%s' (from=S, to=S)", argv[i]);
        }
    }
    if (to > 0 && to <= from) return app_fail(a, STATUS_INVALID, "play: to=%g is not after from=%g", to, from);
    if (!path && !a->clip.x) return app_fail(a, STATUS_INVALID, "play: which clip? (play PATH, or clip PATH first)");
    quiet_stderr(a);
    struct play_job *pj = calloc(1, sizeof *pj);
    if (!pj) return app_fail(a, STATUS_NOMEM, "out of memory");
    pj->a = a;
    pthread_mutex_lock(&u->lock);
    pj->spec = u->out;
    pthread_mutex_unlock(&u->lock);
    pj->from_s = from, pj->to_s = to;
    int s;
    if (path) {
        s = audio_file_read(&pj->clip, path, NULL);
        snprintf(pj->label, sizeof pj->label, "%s", path);
    } else {
        s = audio_file_alloc(&pj->clip, a->clip.n_channels, a->clip.n_frames, a->clip.sample_rate_hz);
        if (!s) memcpy(pj->clip.x, a->clip.x, sizeof(float) * (size_t)a->clip.n_channels * (size_t)a->clip.n_frames);
        snprintf(pj->label, sizeof pj->label, "%s", a->clip_path[0] ? a->clip_path : "the clip");
    }
    if (s) {
        free(pj);
        return app_fail(a, s, "%s", status_detail());
    }
    if (from >= (double)pj->clip.n_frames / pj->clip.sample_rate_hz) {
        double len = (double)pj->clip.n_frames / pj->clip.sample_rate_hz;
        audio_file_fini(&pj->clip);
        free(pj);
        return app_fail(a, STATUS_INVALID, "play: from=%g is past the clip's end (%.3f s)", from, len);
    }
    char name[1200];
    snprintf(name, sizeof name, "play %.1100s", pj->label);
    struct job_desc d = {.name = name, .threads = 1, .work = play_work, .done = play_done, .arg = pj};
    /* at an interactive prompt playing never blocks it (the split view runs every job in
     * the background anyway); a script or a pipe waits, so its next line hears the end */
    int saved = a->background;
    if (!a->script && isatty(STDIN_FILENO)) a->background = 1;
    int s2 = app_run_job(a, &d, 0);
    a->background = saved;
    return s2;
}

/* ----------------------------------------------------------------------------- record */

struct record_job {
    struct app *a;
    struct device_spec spec;
    double seconds, rate_hz;    /* rate 0: the device's */
    int channels;
    char out[FS_PATH_MAX];
    enum audio_file_format fmt;
    /* results */
    struct audio_file rec;
    char device[DEVICE_NAME_MAX + 80];
    double device_rate;
    long dropped;
    int stopped;
};

static int record_work(struct job *j, void *arg)
{
    struct record_job *rj = arg;
    struct device_format f;
    int s = device_negotiate(&rj->spec, DEVICE_INPUT, rj->rate_hz, rj->channels, &f);
    if (s) return s;
    const int C = rj->channels;
    const double R = f.rate_hz;
    const long want = lround(rj->seconds * R);
    if (want < 1) return status_set(STATUS_INVALID, "seconds=%g is less than one sample", rj->seconds);
    /* the ring holds the whole recording when it is short (an unpaced device delivers it
     * at once), else a few seconds the job drains as it goes */
    long ring_frames = want + (long)R / 2 < lround(60 * R) ? want + (long)R / 2 : lround(10 * R);
    struct ring *ring = NULL;
    struct device_stream *st = NULL;
    float *x = mem_alloc(mem_mul((size_t)want, sizeof(float) * (size_t)C));
    if (!x) return STATUS_NOMEM;
    s = ring_create(&ring, ring_frames, C);
    const struct device_stream_opts o = {.dir = DEVICE_INPUT, .rate_hz = R, .n_channels = C, .ring = ring,
                                         .max_frames = want};
    if (!s) s = device_stream_open(&st, &rj->spec, &o);
    if (!s) s = device_stream_start(st);
    long got = 0;
    if (!s) {
        snprintf(rj->device, sizeof rj->device, "%s", device_stream_name(st));
        rj->device_rate = R;
        char total[16];
        fmt_time(total, sizeof total, rj->seconds);
        double last = 0, idle = now_s();
        for (;;) {
            long k = ring_read(ring, x + got * C, want - got);
            if (k > 0) idle = now_s();
            got += k;
            if (got >= want || (ring_closed(ring) && !ring_available(ring))) break;
            if (!k && now_s() - idle > LISTEN_DEFAULT_STALL_S) {
                s = status_set(STATUS_DEVICE, "no audio from %s for %.0f s", rj->device, LISTEN_DEFAULT_STALL_S);
                break;
            }
            if (now_s() - last >= 0.05) { /* the level of the last 100 ms, the time */
                last = now_s();
                long span = lround(0.1 * R) < got ? lround(0.1 * R) : got;
                double sum2 = 0;
                for (long i = (got - span) * C; i < got * C; i++) sum2 += (double)x[i] * x[i];
                double db = span ? 10 * log10(sum2 / ((double)span * C) + 1e-20) : -INFINITY;
                char pos[16], bar[16], label[64];
                fmt_time(pos, sizeof pos, got / R);
                meter(bar, sizeof bar, db, 8);
                const long lost = (long)ring_dropped(ring), xr = device_stream_xruns(st);
                char warn[96] = "";
                if (lost) snprintf(warn, sizeof warn, "; warning: %ld frames lost in %ld overruns", lost,
                                   (long)ring_overruns(ring));
                else if (xr) snprintf(warn, sizeof warn, "; warning: the device reported %ld overruns", xr);
                if (lost || xr) snprintf(label, sizeof label, "rec %s/%s overruns!", pos, total);
                else snprintf(label, sizeof label, "rec %s/%s %s", pos, total, bar);
                job_set_message(j, "recording from %.60s: %s / %s  %s %.0f dBFS%s", rj->device, pos, total, bar, db, warn);
                if (!progress_report(job_progress(j), label, got, want)) {
                    rj->stopped = 1;
                    device_stream_stop(st);
                    got += ring_read(ring, x + got * C, want - got); /* what arrived before the stop */
                    break;
                }
            }
            if (!k) sleep_ms(5);
        }
        rj->dropped = (long)ring_dropped(ring);
        if (!s) s = device_stream_status(st);
    }
    device_stream_close(st);
    ring_destroy(ring);
    if (!s && got == 0) s = status_set(STATUS_DEVICE, "nothing was recorded");
    if (!s) { /* planar, at the rate asked for */
        struct audio_file raw;
        s = audio_file_alloc(&raw, C, got, (int)lround(R));
        for (long i = 0; !s && i < got; i++)
            for (int c = 0; c < C; c++) audio_file_channel(&raw, c)[i] = x[i * C + c];
        if (!s && rj->rate_hz > 0 && rj->rate_hz != R) {
            long cap = resample_max_frames(got, R, rj->rate_hz), n_out = 0;
            s = audio_file_alloc(&rj->rec, C, cap, (int)lround(rj->rate_hz));
            if (!s) s = resample(raw.x, got, C, RESAMPLE_PLANAR, R, rj->rate_hz, rj->rec.x, cap, &n_out);
            if (!s) rj->rec.n_frames = n_out; /* planar output is packed at n_out */
            audio_file_fini(&raw);
        } else if (!s) {
            rj->rec = raw;
        }
    }
    mem_free(x);
    if (!s) s = audio_file_write(rj->out, &rj->rec, rj->fmt);
    return s;
}

static void record_done(struct job *j, void *arg, int s)
{
    (void)j;
    struct record_job *rj = arg;
    struct app *a = rj->a;
    if (s) {
        app_fail_in(a, s, "record");
    } else {
        const struct audio_file *r = &rj->rec;
        double peak = 0, sum2 = 0;
        long n = (long)r->n_channels * r->n_frames;
        for (long i = 0; i < n; i++) {
            double v = fabs(r->x[i]);
            peak = v > peak ? v : peak;
            sum2 += v * v;
        }
        char level[80];
        if (peak == 0) snprintf(level, sizeof level, "digital silence");
        else snprintf(level, sizeof level, "peak %.1f dBFS, rms %.1f dBFS", 20 * log10(peak), 10 * log10(sum2 / n));
        app_out(a, "%s %.2f s from %s at %g Hz, %d channel%s: %s -> %s (%s)%s\n", rj->stopped ? "stopped: recorded" : "recorded",
                (double)r->n_frames / r->sample_rate_hz, rj->device, rj->device_rate, r->n_channels,
                r->n_channels == 1 ? "" : "s", level, rj->out, audio_file_format_name(rj->fmt),
                rj->dropped ? "; frames were lost (the machine was too busy)" : "");
        /* the recording is the current clip: spec and predict follow */
        audio_file_fini(&a->clip);
        a->clip = rj->rec;
        audio_file_init(&rj->rec);
        snprintf(a->clip_path, sizeof a->clip_path, "%.1000s", rj->out);
        app_clip_to_view(a);
    }
    audio_file_fini(&rj->rec);
    free(rj);
}

/* The format a file name asks for (16-bit for wav, flac and aiff, as synth). */
static int format_of(const char *path, enum audio_file_format *fmt)
{
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (int f = 0; f < AUDIO_FILE_FORMAT_COUNT; f++) {
            if (f == AUDIO_FILE_WAV_U8) continue;
            if (!strcasecmp(dot + 1, audio_file_format_ext((enum audio_file_format)f))) {
                *fmt = (enum audio_file_format)f;
                return STATUS_OK;
            }
        }
    return STATUS_INVALID;
}

/* record [seconds=S] [out=PATH] [rate=HZ] [channels=N] [format=NAME] */
int cmd_record(struct app *a, int argc, char **argv)
{
    struct listen_ui *u = ui_of(a);
    if (!u) return app_fail(a, STATUS_NOMEM, "out of memory");
    double seconds = 10, rate = 0;
    long channels = 1;
    const char *out = NULL, *format = NULL;
    for (int i = 1; i < argc; i++) {
        char *v = arg_split(argv[i]);
        if (!v) return app_fail(a, STATUS_INVALID, "record: expected key=value, got '%s'", argv[i]);
        if (!strcmp(argv[i], "seconds")) {
            if (arg_real(a, "record", "seconds", v, 0.01, 3600, &seconds)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "out")) {
            out = v;
        } else if (!strcmp(argv[i], "rate")) {
            if (arg_real(a, "record", "rate", v, DEVICE_MIN_RATE_HZ, DEVICE_MAX_RATE_HZ, &rate)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "channels")) {
            if (arg_int(a, "channels", v, 1, 64, &channels)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "format")) {
            format = v;
        } else {
            return app_fail(a, STATUS_INVALID, "record: unknown option '%s' (seconds=, out=, rate=, channels=, format=)",
                            argv[i]);
        }
    }
    struct record_job *rj = calloc(1, sizeof *rj);
    if (!rj) return app_fail(a, STATUS_NOMEM, "out of memory");
    audio_file_init(&rj->rec);
    if (out && *out) {
        snprintf(rj->out, sizeof rj->out, "%s", out);
    } else {
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(rj->out, sizeof rj->out, "recording-%Y%m%d-%H%M%S.wav", &tm);
    }
    int bad = format ? (int)audio_file_format_parse(format, &rj->fmt) : format_of(rj->out, &rj->fmt);
    if (bad) {
        free(rj);
        if (format) return app_fail(a, STATUS_INVALID, "record: %s", status_detail());
        return app_fail(a, STATUS_INVALID, "record: out=%s: name the format by its extension (.wav, .flac, .ogg, ...) "
                        "or with format=", out);
    }
    quiet_stderr(a);
    rj->a = a;
    pthread_mutex_lock(&u->lock);
    rj->spec = u->in;
    pthread_mutex_unlock(&u->lock);
    rj->seconds = seconds, rj->rate_hz = rate, rj->channels = (int)channels;
    char name[FS_PATH_MAX + 64];
    snprintf(name, sizeof name, "record seconds=%g out=%s", seconds, rj->out);
    struct job_desc d = {.name = name, .threads = 1, .work = record_work, .done = record_done, .arg = rj};
    return app_run_job(a, &d, 0);
}

/* ----------------------------------------------------------------------------- listen */

struct listen_job {
    struct app *a;
    struct listen_ui *ui;
    struct model *m;
    struct device_spec spec;
    struct frontend_params fp;
    struct listen_opts o;
    struct job *j;
    struct device_stream *st;   /* while listening (its xrun count is atomic) */
    int print;                  /* headless: a line per window */
    /* results */
    struct listen_stats stats;
    long overruns, xruns;       /* the ring's and the device's, as last seen */
    char device[DEVICE_NAME_MAX + 80];
    double rate_hz;
    char top[64];
    float top_p;
    int stopped;
};

/* After each window, on the job's thread: the view's data, the status line. */
static int on_window(void *user, const struct listen_update *up)
{
    struct listen_job *lj = user;
    struct listen_ui *u = lj->ui;
    char nb[32];
    const char *top = predict_label(lj->m, up->top, nb, sizeof nb);
    const size_t FT = (size_t)up->n_mels * (size_t)up->n_frames;
    pthread_mutex_lock(&u->lock);
    if (u->F * u->T != (int)FT || !u->spec) {
        free(u->spec);
        u->spec = malloc(sizeof(float) * FT);
    }
    if (u->spec) {
        memcpy(u->spec, up->features, sizeof(float) * FT);
        u->F = up->n_mels, u->T = up->n_frames;
        float lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < FT; i++) lo = fminf(lo, up->features[i]), hi = fmaxf(hi, up->features[i]);
        u->lo = up->frontend->scale == FRONTEND_SCALE_DB ? fmaxf(lo, hi - 80) : lo, u->hi = hi;
        u->fe = *up->frontend;
    }
    if (u->probs && u->M == up->n_classes) memcpy(u->probs, up->smoothed, sizeof(float) * (size_t)up->n_classes);
    u->top = up->top;
    u->have = 1;
    u->windows = up->index + 1, u->dropped = up->dropped;
    u->latency_s = up->latency_s, u->compute_s = up->compute_s, u->hop_s = up->hop_s, u->window_s = up->window_s;
    u->cpu = up->cpu, u->level_db = up->level_db, u->heard_s = up->heard_s, u->partial = up->partial;
    pthread_mutex_unlock(&u->lock);
    app_views_changed(lj->a);
    snprintf(lj->top, sizeof lj->top, "%s", top);
    lj->top_p = up->smoothed[up->top];
    lj->overruns = up->overruns;
    lj->xruns = lj->st ? device_stream_xruns(lj->st) : 0;
    /* lost audio is a warning on the status line, never a printed line mid-view */
    char lost[96] = "";
    if (up->dropped) snprintf(lost, sizeof lost, "; warning: %ld frames lost in %ld overruns", up->dropped, up->overruns);
    else if (lj->xruns) snprintf(lost, sizeof lost, "; warning: the device reported %ld overruns", lj->xruns);
    job_set_message(lj->j, "listening: %s %.0f %%  (%ld windows, latency %.0f ms, CPU %.0f %%)%s", top,
                    100 * up->smoothed[up->top], up->index + 1, 1000 * up->latency_s, 100 * up->cpu, lost);
    if (lj->print) {
        int best = 0;
        for (int k = 1; k < up->n_classes; k++)
            if (up->probs[k] > up->probs[best]) best = k;
        char nb2[32];
        const int rate = up->frontend->sample_rate_hz;
        char span[64];
        snprintf(span, sizeof span, "%.2f-%.2f s%s", (double)up->window_start / rate, (double)up->window_end / rate,
                 up->partial ? " (tiled)" : "");
        app_out(lj->a, "  %4ld  %-21s  %-14s %.4f   smoothed: %s %.4f\n", up->index + 1, span,
                predict_label(lj->m, best, nb2, sizeof nb2), up->probs[best], top, up->smoothed[up->top]);
    }
    return 1;
}

/* The job's progress as the status line shows it: the top scene and the window count as
 * the label (it changes every window, so no rate or ETA is made up for an endless job),
 * the top probability as the bar; the job's cancel flag comes back. */
static int listen_progress(void *user, const char *label, long done, long total)
{
    (void)label, (void)total;
    struct listen_job *lj = user;
    char l[48];
    long lost = lj->overruns + lj->xruns;
    if (lj->top[0] && lost) snprintf(l, sizeof l, "%.14s (%ld overruns!)", lj->top, lost);
    else if (lj->top[0]) snprintf(l, sizeof l, "%.16s (window %ld)", lj->top, done);
    else snprintf(l, sizeof l, "starting");
    return progress_report(job_progress(lj->j), l, lj->top[0] ? lround(100 * lj->top_p) : 0, 100);
}

static int listen_work(struct job *j, void *arg)
{
    struct listen_job *lj = arg;
    lj->j = j;
    struct device_format f;
    int s = device_negotiate(&lj->spec, DEVICE_INPUT, lj->fp.sample_rate_hz, 1, &f);
    if (s) return s;
    const double R = f.rate_hz;
    lj->rate_hz = R;
    /* the ring: a few seconds; with windows=N all the audio N windows need, so an unpaced
     * input (a file, a test) loses nothing */
    long need = 0;
    if (lj->o.max_windows > 0) {
        long L = 0;
        double w = lj->o.window_s;
        if (w <= 0 && !predict_window(lj->m, &lj->fp, &L, NULL)) w = (double)L / lj->fp.sample_rate_hz;
        double h = lj->o.hop_s > 0 ? lj->o.hop_s : LISTEN_DEFAULT_HOP_S;
        need = lround((w + (lj->o.max_windows + 1) * (h + 0.05) + 1.0) * R);
        if (need > lround(600 * R)) need = 0;
    }
    long ring_frames = need > lround(4 * R) ? need : lround(4 * R);
    struct ring *ring = NULL;
    struct device_stream *st = NULL;
    s = ring_create(&ring, ring_frames, 1);
    const struct device_stream_opts o = {.dir = DEVICE_INPUT, .rate_hz = R, .n_channels = 1, .ring = ring,
                                         .max_frames = need};
    if (!s) s = device_stream_open(&st, &lj->spec, &o);
    if (!s) s = device_stream_start(st);
    if (!s) {
        snprintf(lj->device, sizeof lj->device, "%s", device_stream_name(st));
        pthread_mutex_lock(&lj->ui->lock);
        snprintf(lj->ui->source, sizeof lj->ui->source, "%s at %g Hz", lj->device, R);
        pthread_mutex_unlock(&lj->ui->lock);
        lj->o.input_rate_hz = R;
        lj->st = st;
        const struct progress p = {listen_progress, lj};
        s = listen_run(lj->m, ring, &lj->o, on_window, lj, &p, &lj->stats);
        if (s == STATUS_CANCELLED) {
            lj->stopped = 1;
            s = STATUS_OK;
        }
        /* the device's verdict before stopping it: a stream that ended by itself short of
         * its end is a device that went away (a stop would make it look deliberate) */
        int ds = device_stream_status(st);
        device_stream_stop(st);
        lj->xruns = device_stream_xruns(st);
        lj->st = NULL;
        if (ds && (!s || s == STATUS_DEVICE)) s = ds; /* the device's reason first */
    }
    device_stream_close(st);
    ring_destroy(ring);
    return s;
}

static void listen_done(struct job *j, void *arg, int s)
{
    (void)j;
    struct listen_job *lj = arg;
    struct app *a = lj->a;
    const struct listen_stats *t = &lj->stats;
    pthread_mutex_lock(&lj->ui->lock);
    lj->ui->listening = 0;
    if (s) snprintf(lj->ui->note, sizeof lj->ui->note, "stopped: %s", status_detail());
    else snprintf(lj->ui->note, sizeof lj->ui->note, "%s after %.1f s", lj->stopped ? "stopped" : t->input_ended ? "the input ended" : "done", t->heard_s);
    pthread_mutex_unlock(&lj->ui->lock);
    app_views_changed(a);
    if (s) {
        app_fail_in(a, s, "listen");
    } else if (!t->windows) {
        app_out(a, "listened %.1f s to %s: not enough audio for a window\n", t->heard_s, lj->device);
    } else {
        app_out(a, "listened %.1f s to %s at %g Hz: %ld windows of %.2f s every %.2f s; top scene %s (%.2f)\n",
                t->heard_s, lj->device, lj->rate_hz, t->windows, t->window_s, t->hop_s, lj->top, lj->top_p);
        app_out(a, "latency %.0f ms mean, %.0f ms max (from the ring to the probabilities); %.1f ms a window "
                   "(%.1f %% of the hop); CPU %.0f %% of a core%s\n",
                1000 * t->latency_mean_s, 1000 * t->latency_max_s, 1000 * t->compute_mean_s,
                100 * t->compute_mean_s / t->hop_s, 100 * t->cpu,
                t->dropped ? "" : "; no audio lost");
        if (t->dropped)
            app_out(a, "warning: %ld frames lost in %ld overruns (the machine was too busy)\n", t->dropped, t->overruns);
        if (lj->xruns)
            app_out(a, "warning: the device reported %ld over- or underruns (audio it could not deliver in time)\n",
                    lj->xruns);
    }
    free(lj);
}

/* listen [window=S] [hop=S] [smooth=S] [first=S] [windows=N] */
int cmd_listen(struct app *a, int argc, char **argv)
{
    struct listen_ui *u = ui_of(a);
    if (!u) return app_fail(a, STATUS_NOMEM, "out of memory");
    struct listen_opts o = {0};
    long windows = 0;
    for (int i = 1; i < argc; i++) {
        char *v = arg_split(argv[i]);
        if (!v) return app_fail(a, STATUS_INVALID, "listen: expected key=value, got '%s'", argv[i]);
        if (!strcmp(argv[i], "window")) {
            if (arg_real(a, "listen", "window", v, 0.05, 600, &o.window_s)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "hop")) {
            if (arg_real(a, "listen", "hop", v, 0.01, 600, &o.hop_s)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "smooth")) {
            if (arg_real(a, "listen", "smooth", v, 0, 3600, &o.smooth_s)) return STATUS_INVALID;
            if (o.smooth_s == 0) o.smooth_s = -1; /* smooth=0: none */
        } else if (!strcmp(argv[i], "first")) {
            if (arg_real(a, "listen", "first", v, 0.05, 3600, &o.first_s)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "windows")) {
            if (arg_int(a, "windows", v, 1, 1000000, &windows)) return STATUS_INVALID;
        } else {
            return app_fail(a, STATUS_INVALID, "listen: unknown option '%s' (window=, hop=, smooth=, first=, windows=)",
                            argv[i]);
        }
    }
    if (o.hop_s > 0 && o.window_s > 0 && o.hop_s > o.window_s)
        return app_fail(a, STATUS_INVALID, "listen: hop=%g is longer than window=%g: windows would skip audio", o.hop_s,
                        o.window_s);
    if (app_need_model(a, "listen")) return STATUS_INVALID;
    quiet_stderr(a);
    struct listen_job *lj = calloc(1, sizeof *lj);
    if (!lj) return app_fail(a, STATUS_NOMEM, "out of memory");
    lj->a = a, lj->ui = u, lj->m = a->model;
    const char *from;
    session_frontend(a, &lj->fp, &from);
    o.frontend = &lj->fp;
    o.max_windows = windows;
    o.every_window = windows > 0; /* a fixed number: each window in turn, none skipped */
    lj->o = o;
    lj->o.frontend = &lj->fp;
    lj->print = !a->workbench;
    /* the view: labels of the model's classes, the probabilities the job fills */
    const int M = a->model->cfg.classes;
    pthread_mutex_lock(&u->lock);
    lj->spec = u->in;
    for (int k = 0; u->labels && k < u->M; k++) free(u->labels[k]);
    free(u->labels);
    free(u->probs);
    u->labels = calloc((size_t)M, sizeof *u->labels);
    u->probs = calloc((size_t)M, sizeof *u->probs);
    u->M = u->labels && u->probs ? M : 0;
    char nb[32];
    for (int k = 0; k < u->M; k++) u->labels[k] = strdup(predict_label(a->model, k, nb, sizeof nb));
    u->have = 0, u->listening = 1, u->windows = 0, u->note[0] = 0;
    device_spec_text(&lj->spec, u->source, sizeof u->source);
    pthread_mutex_unlock(&u->lock);
    app_view_set(a, VIEW_LISTEN, listen_draw, u, listen_ui_release);
    char name[200];
    snprintf(name, sizeof name, "listen");
    for (int i = 1; i < argc; i++) {
        size_t k = strlen(name);
        snprintf(name + k, sizeof name - k, " %s=%s", argv[i], argv[i] + strlen(argv[i]) + 1);
    }
    if (lj->print)
        app_out(a, "listening with %s (%s front end, %d Hz); stop or Ctrl-C ends it\n"
                   "  window  seconds                this window's top       smoothed\n",
                a->model_name, lj->fp.preset, lj->fp.sample_rate_hz);
    /* one thread: a window costs well under a millisecond, and a second thread only adds a
     * barrier per layer, which on a busy machine waits for a time slice (bench listen) */
    struct job_desc d = {.name = name, .threads = 1, .work = listen_work, .done = listen_done, .arg = lj,
                         .holds = a->model};
    return app_run_job(a, &d, APP_HOLD_MODEL_READ);
}

/* ----------------------------------------------------------------------------- the view */

/* Copy canvas src into c at (x, y). */
static void blit(struct canvas *c, const struct canvas *src, int x, int y)
{
    for (int r = 0; r < src->h; r++)
        for (int k = 0; k < src->w; k++) {
            const struct canvas_cell *cell = canvas_at(src, k, r);
            if (cell) canvas_set(c, x + k, y + r, cell->ch, cell->fg, cell->bg);
        }
}

static void listen_draw(struct canvas *c, void *data)
{
    struct listen_ui *u = data;
    pthread_mutex_lock(&u->lock);
    char in[300], out[300];
    device_spec_text(&u->in, in, sizeof in);
    device_spec_text(&u->out, out, sizeof out);
    if (!u->have) {
        if (u->listening)
            canvas_textf(c, 0, 0, CANVAS_NONE, "listening to %s: the first probabilities come after a second", u->source);
        else
            canvas_textf(c, 0, 0, CANVAS_NONE, "listen: not listening (`listen` starts, `stop` ends it)");
        canvas_textf(c, 0, 1, CANVAS_NONE, "input %s, output %s (`devices` lists them, `device in=N` chooses)", in, out);
        if (u->note[0]) canvas_text(c, 0, 2, CANVAS_NONE, u->note);
        pthread_mutex_unlock(&u->lock);
        return;
    }
    char title[600];
    snprintf(title, sizeof title, "%s %s: %s %.0f %%  | %ld windows of %.2f s every %.2f s%s | latency %.0f ms | "
             "%.1f ms a window | CPU %.0f %%%s",
             u->listening ? "listening to" : "listened to", u->source, u->labels ? u->labels[u->top] : "?",
             100 * (u->probs ? u->probs[u->top] : 0), u->windows, u->window_s, u->hop_s, u->partial ? " (filling)" : "",
             1000 * u->latency_s, 1000 * u->compute_s, 100 * u->cpu, u->dropped ? " | audio lost" : "");
    canvas_text(c, 0, 0, CANVAS_NONE, title);
    /* the probabilities at the bottom (or on the right when wide), the spectrogram above */
    int M = u->M, rows_p = M + 1;
    int side = c->w >= 110 && c->h < M + 12;
    int pw = side ? 50 : c->w, ph = side ? c->h - 2 : rows_p;
    int sw = side ? c->w - pw - 1 : c->w, sh = side ? c->h - 2 : c->h - 2 - rows_p;
    struct canvas sub;
    if (u->spec && sw >= 20 && sh >= 5 && !canvas_init(&sub, sw, sh, c->mode)) {
        char t[200];
        snprintf(t, sizeof t, "the last window (%s front end, dB)", u->fe.preset);
        view_spec(&sub, t, u->spec, u->F, u->T, &u->fe, u->lo, u->hi, "dB");
        blit(c, &sub, 0, 1);
        canvas_fini(&sub);
    }
    if (u->probs && ph >= 2 && !canvas_init(&sub, pw, ph, c->mode)) {
        view_probs(&sub, "scene probabilities (smoothed)", u->probs, M, (const char *const *)u->labels);
        blit(c, &sub, side ? sw + 1 : 0, side ? 1 : c->h - 1 - rows_p);
        canvas_fini(&sub);
    }
    char foot[400];
    char bar[16];
    meter(bar, sizeof bar, u->level_db, 10);
    snprintf(foot, sizeof foot, "level %s %.0f dBFS  heard %.1f s%s%s", bar, u->level_db, u->heard_s, u->note[0] ? "  " : "",
             u->note);
    canvas_text(c, 0, c->h - 1, CANVAS_NONE, foot);
    pthread_mutex_unlock(&u->lock);
}
