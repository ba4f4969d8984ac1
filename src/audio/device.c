/* device.c: the device interface, its file and null backends, and the lock-free helpers
 * every backend's callback uses (see device.h).
 *
 * Key idea: a backend only moves device frames; device_push_input / device_pull_output do
 * the rest (channel conversion, the ring, the frame count, the natural end) without locks or
 * allocation, so the PortAudio callback and the file / null threads behave the same. The
 * file and null backends stand in for a sound card on a thread of their own that delivers
 * 10 ms blocks, paced by an absolute clock (no drift) or unpaced; an unpaced input waits for
 * room in the ring rather than dropping, so tests hear every sample.
 *
 * ref: cava's input backends (one file per backend behind one interface, a fifo backend so
 *      tests run without hardware); PortAudio's callback contract (no blocking calls).
 */
#include "basin/audio/device.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "basin/audio/audio_file.h"
#include "basin/audio/ring.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "device_impl.h"

/* ----------------------------------------------------------------------------- specs */

int device_spec_parse(struct device_spec *s, const char *text)
{
    memset(s, 0, sizeof *s);
    s->paced = 1;
    if (!text || !*text) return status_set(STATUS_INVALID, "an empty device name (default, N, NAME, file:PATH or null)");
    if (strlen(text) >= sizeof s->name) return status_set(STATUS_INVALID, "device name too long");
    if (!strcasecmp(text, "null")) {
        s->backend = DEVICE_BACKEND_NULL;
        return STATUS_OK;
    }
    if (!strncmp(text, "file:", 5)) {
        if (!text[5]) return status_set(STATUS_INVALID, "file: needs a path (file:PATH)");
        s->backend = DEVICE_BACKEND_FILE;
        snprintf(s->name, sizeof s->name, "%s", text + 5);
        return STATUS_OK;
    }
    s->backend = DEVICE_BACKEND_PORTAUDIO;
    snprintf(s->name, sizeof s->name, "%s", text);
    return STATUS_OK;
}

void device_spec_text(const struct device_spec *s, char *buf, size_t n)
{
    switch (s->backend) {
    case DEVICE_BACKEND_NULL: snprintf(buf, n, "null"); break;
    case DEVICE_BACKEND_FILE: snprintf(buf, n, "file:%s", s->name); break;
    case DEVICE_BACKEND_PORTAUDIO: snprintf(buf, n, "%s", s->name[0] ? s->name : "default"); break;
    }
}

int device_list(struct device_info **out, int *n_out, char *version, size_t n)
{
    return device_pa_list(out, n_out, version, n);
}

/* ----------------------------------------------------------------------------- helpers */

/* y (n, cout) from x (n, cin): the same, the mean over channels (summed in channel order,
 * then divided, as audio_file_to_mono), one channel copied to all, or the first channels
 * (extra output channels silent). */
static void convert_channels(const float *x, int cin, float *y, int cout, long n)
{
    if (cin == cout) {
        memcpy(y, x, sizeof *y * (size_t)(n * cin));
    } else if (cout == 1) {
        for (long i = 0; i < n; i++) {
            float sum = 0.0f;
            for (int c = 0; c < cin; c++) sum += x[i * cin + c];
            y[i] = sum / (float)cin;
        }
    } else if (cin == 1) {
        for (long i = 0; i < n; i++)
            for (int c = 0; c < cout; c++) y[i * cout + c] = x[i];
    } else {
        for (long i = 0; i < n; i++)
            for (int c = 0; c < cout; c++) y[i * cout + c] = c < cin ? x[i * cin + c] : 0.0f;
    }
}

void device_mark_ended(struct device_stream *s)
{
    if (s->dir == DEVICE_INPUT && s->ring) ring_close(s->ring);
    atomic_store(&s->ended, 1);
}

int device_push_input(struct device_stream *s, const float *in, long n)
{
    long have = atomic_load_explicit(&s->frames, memory_order_relaxed);
    if (s->max_frames > 0 && n > s->max_frames - have) n = s->max_frames - have;
    if (n > 0) {
        if (s->dev_channels == s->n_channels) {
            ring_write(s->ring, in, n);
        } else {
            enum { BUF = 2048 };
            float buf[BUF];
            int wide = s->dev_channels > s->n_channels ? s->dev_channels : s->n_channels;
            long per = BUF / wide > 0 ? BUF / wide : 1;
            for (long i = 0; i < n; i += per) {
                long k = n - i < per ? n - i : per;
                convert_channels(in + i * s->dev_channels, s->dev_channels, buf, s->n_channels, k);
                ring_write(s->ring, buf, k);
            }
        }
        atomic_store_explicit(&s->frames, have + n, memory_order_relaxed);
    }
    if (s->max_frames > 0 && have + n >= s->max_frames) {
        atomic_store(&s->done, 1);
        ring_close(s->ring);
        return 1;
    }
    return 0;
}

int device_pull_output(struct device_stream *s, float *out, long n)
{
    long have = atomic_load_explicit(&s->frames, memory_order_relaxed);
    long k = s->n_play - have;
    if (k > n) k = n;
    if (k < 0) k = 0;
    if (k > 0) convert_channels(s->play + have * s->n_channels, s->n_channels, out, s->dev_channels, k);
    if (k < n) memset(out + k * s->dev_channels, 0, sizeof *out * (size_t)((n - k) * s->dev_channels));
    atomic_store_explicit(&s->frames, have + k, memory_order_relaxed);
    if (have + k >= s->n_play) {
        atomic_store(&s->done, 1);
        return 1;
    }
    return 0;
}

/* ----------------------------------------------------------------------------- file, null */

/* The stand-in for a sound card: a thread moving 10 ms blocks. */
struct sim {
    pthread_t thread;
    int have_thread;
    int paced;
    char path[DEVICE_SPEC_MAX];
    struct audio_file clip;     /* file input: the audio, planar (C, T) */
    float *block;               /* (block, dev_channels) */
    long block_frames;
    float *played;              /* file output: (n_play, dev_channels) */
    long n_played;
};

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void sleep_until(int64_t t_ns)
{
    struct timespec ts = {(time_t)(t_ns / 1000000000), (long)(t_ns % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

static void sleep_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* The output file's format: by extension, float WAV for .wav (what was played, exactly). */
static int output_format(const char *path, enum audio_file_format *fmt)
{
    const char *dot = strrchr(path, '.');
    if (!dot || strchr(dot, '/') || !strcasecmp(dot + 1, "wav")) {
        *fmt = AUDIO_FILE_WAV_F32;
        return STATUS_OK;
    }
    for (int f = 0; f < AUDIO_FILE_FORMAT_COUNT; f++)
        if (!strcasecmp(dot + 1, audio_file_format_ext((enum audio_file_format)f)) && f != AUDIO_FILE_WAV_U8) {
            *fmt = (enum audio_file_format)f;
            return STATUS_OK;
        }
    return status_set(STATUS_INVALID, "file:%s: name the format by its extension (.wav, .flac, .ogg, ...)", path);
}

static int write_played(struct device_stream *s, struct sim *m)
{
    enum audio_file_format fmt;
    int st = output_format(m->path, &fmt);
    struct audio_file af;
    if (!st) st = audio_file_alloc(&af, s->dev_channels, m->n_played, (int)s->rate_hz);
    if (st) return st;
    for (long i = 0; i < m->n_played; i++)
        for (int c = 0; c < s->dev_channels; c++)
            audio_file_channel(&af, c)[i] = m->played[i * s->dev_channels + c];
    st = audio_file_write(m->path, &af, fmt);
    audio_file_fini(&af);
    return st;
}

static void *sim_run(void *arg)
{
    struct device_stream *s = arg;
    struct sim *m = s->impl;
    const int C = s->dev_channels;
    const int64_t t0 = now_ns();
    long moved = 0;
    while (!atomic_load(&s->stopping)) {
        long n = m->block_frames;
        if (s->dir == DEVICE_INPUT) {
            if (s->backend == DEVICE_BACKEND_FILE) {
                long left = m->clip.n_frames - moved;
                if (left <= 0) { /* the file's end: the input ends */
                    atomic_store(&s->done, 1);
                    break;
                }
                if (n > left) n = left;
                for (long i = 0; i < n; i++)
                    for (int c = 0; c < C; c++) m->block[i * C + c] = audio_file_channel(&m->clip, c)[moved + i];
            }
            /* unpaced: as fast as the reader takes it, never dropping */
            while (!m->paced && ring_space(s->ring) < n && !atomic_load(&s->stopping)) sleep_ms(1);
            if (atomic_load(&s->stopping)) break;
            int end = device_push_input(s, m->block, n);
            moved += n;
            if (end) break;
        } else {
            int end = device_pull_output(s, m->block, n);
            if (m->played) {
                long k = s->n_play - m->n_played < n ? s->n_play - m->n_played : n;
                if (k > 0) memcpy(m->played + m->n_played * C, m->block, sizeof(float) * (size_t)(k * C));
                m->n_played += k > 0 ? k : 0;
            }
            moved += n;
            if (end) break;
        }
        if (m->paced) sleep_until(t0 + (int64_t)((double)moved / s->rate_hz * 1e9));
    }
    if (s->dir == DEVICE_OUTPUT && m->played) {
        int st = write_played(s, m);
        if (st) {
            s->status = st;
            snprintf(s->detail, sizeof s->detail, "%s", status_detail());
        }
    }
    device_mark_ended(s);
    return NULL;
}

/* The rates and channels the stand-ins take. */
static int sim_negotiate(const struct device_spec *spec, enum device_dir dir, double want_rate, int want_ch,
                         struct device_format *out)
{
    memset(out, 0, sizeof *out);
    double rate = 48000; /* null's default, as most sound cards */
    int ch = want_ch;
    if (spec->backend == DEVICE_BACKEND_FILE) {
        snprintf(out->name, sizeof out->name, "file:%.300s", spec->name);
        if (dir == DEVICE_INPUT) {
            struct audio_file_info info;
            int st = audio_file_probe(spec->name, &info);
            if (st) return st;
            rate = info.sample_rate_hz;
            /* a file's audio has its rate: a different one is the reader's to convert */
            out->default_rate_hz = rate;
            if (spec->rate_hz > 0 && spec->rate_hz != rate)
                return status_set(STATUS_UNSUPPORTED, "file:%s is %g Hz; a file input cannot change its rate to %g Hz",
                                  spec->name, rate, spec->rate_hz);
            out->rate_hz = rate;
            ch = info.n_channels;
            if (ch != want_ch && want_ch != 1 && ch != 1)
                return status_set(STATUS_UNSUPPORTED, "file:%s has %d channels, not %d", spec->name, ch, want_ch);
            out->device_channels = ch;
            return STATUS_OK;
        }
        if (want_rate <= 0) want_rate = 48000;
    } else {
        snprintf(out->name, sizeof out->name, "null");
        if (want_rate <= 0) want_rate = rate;
    }
    out->default_rate_hz = rate;
    out->rate_hz = spec->rate_hz > 0 ? spec->rate_hz : want_rate;
    if (out->rate_hz < DEVICE_MIN_RATE_HZ || out->rate_hz > DEVICE_MAX_RATE_HZ)
        return status_set(STATUS_UNSUPPORTED, "%s does not take %g Hz (%d..%d)", out->name, out->rate_hz,
                          DEVICE_MIN_RATE_HZ, DEVICE_MAX_RATE_HZ);
    if (ch < 1 || ch > 64) return status_set(STATUS_UNSUPPORTED, "%s takes 1..64 channels, not %d", out->name, ch);
    out->device_channels = ch;
    return STATUS_OK;
}

static int sim_open(struct device_stream *s, const struct device_spec *spec)
{
    struct device_format f;
    int st = sim_negotiate(spec, s->dir, s->rate_hz, s->n_channels, &f);
    if (st) return st;
    if (f.rate_hz != s->rate_hz)
        return status_set(STATUS_UNSUPPORTED, "%s runs at %g Hz, not %g Hz", f.name, f.rate_hz, s->rate_hz);
    struct sim *m = mem_calloc(1, sizeof *m);
    if (!m) return STATUS_NOMEM;
    s->impl = m;
    audio_file_init(&m->clip);
    m->paced = spec->paced;
    snprintf(m->path, sizeof m->path, "%s", spec->name);
    snprintf(s->name, sizeof s->name, "%s", f.name);
    s->dev_channels = f.device_channels;
    m->block_frames = (long)(s->rate_hz / 100);
    if (m->block_frames < 1) m->block_frames = 1;
    if (m->block_frames > 4096) m->block_frames = 4096;
    if (!(m->block = mem_calloc((size_t)m->block_frames * (size_t)s->dev_channels, sizeof(float)))) return STATUS_NOMEM;
    if (s->backend == DEVICE_BACKEND_FILE && s->dir == DEVICE_INPUT) {
        st = audio_file_read(&m->clip, spec->name, NULL);
        if (st) return st;
        if (m->clip.n_channels != s->dev_channels || m->clip.sample_rate_hz != (int)s->rate_hz)
            return status_set(STATUS_DEVICE, "file:%s changed while it was opened", spec->name);
    }
    if (s->backend == DEVICE_BACKEND_FILE && s->dir == DEVICE_OUTPUT) {
        enum audio_file_format fmt;
        if ((st = output_format(spec->name, &fmt))) return st;
        if (!audio_file_format_supported(fmt, (int)s->rate_hz, s->dev_channels))
            return status_set(STATUS_UNSUPPORTED, "file:%s: %s cannot store %g Hz, %d channels", spec->name,
                              audio_file_format_name(fmt), s->rate_hz, s->dev_channels);
        if (!(m->played = mem_alloc(mem_mul((size_t)(s->n_play > 0 ? s->n_play : 1),
                                            sizeof(float) * (size_t)s->dev_channels))))
            return STATUS_NOMEM;
    }
    s->latency_s = m->block_frames / s->rate_hz;
    return STATUS_OK;
}

static void sim_stop(struct device_stream *s)
{
    struct sim *m = s->impl;
    if (m && m->have_thread) {
        pthread_join(m->thread, NULL);
        m->have_thread = 0;
    }
}

static void sim_close(struct device_stream *s)
{
    struct sim *m = s->impl;
    if (!m) return;
    sim_stop(s);
    audio_file_fini(&m->clip);
    mem_free(m->block);
    mem_free(m->played);
    mem_free(m);
    s->impl = NULL;
}

/* ----------------------------------------------------------------------------- streams */

int device_negotiate(const struct device_spec *spec, enum device_dir dir, double want_rate_hz,
                     int want_channels, struct device_format *out)
{
    if (want_channels < 1 || want_channels > 256)
        return status_set(STATUS_INVALID, "%d channels: 1..256", want_channels);
    if (spec->backend == DEVICE_BACKEND_PORTAUDIO)
        return device_pa_negotiate(spec, dir, want_rate_hz, want_channels, out);
    return sim_negotiate(spec, dir, want_rate_hz, want_channels, out);
}

int device_stream_open(struct device_stream **out, const struct device_spec *spec,
                       const struct device_stream_opts *o)
{
    *out = NULL;
    if (!(o->rate_hz >= DEVICE_MIN_RATE_HZ && o->rate_hz <= DEVICE_MAX_RATE_HZ))
        return status_set(STATUS_INVALID, "%g Hz: a stream runs at %d..%d Hz", o->rate_hz, DEVICE_MIN_RATE_HZ,
                          DEVICE_MAX_RATE_HZ);
    if (o->n_channels < 1 || o->n_channels > 256) return status_set(STATUS_INVALID, "%d channels: 1..256", o->n_channels);
    if (o->dir == DEVICE_INPUT && (!o->ring || ring_channels(o->ring) != o->n_channels))
        return status_set(STATUS_INVALID, "an input stream needs a ring of %d channels", o->n_channels);
    if (o->dir == DEVICE_OUTPUT && (!o->play || o->n_play < 0))
        return status_set(STATUS_INVALID, "an output stream needs something to play");
    struct device_stream *s = mem_calloc(1, sizeof *s);
    if (!s) return STATUS_NOMEM;
    s->backend = spec->backend;
    s->dir = o->dir;
    s->rate_hz = o->rate_hz;
    s->n_channels = s->dev_channels = o->n_channels;
    s->ring = o->ring;
    s->max_frames = o->max_frames;
    s->play = o->play;
    s->n_play = o->n_play;
    s->latency_s = o->latency_s;
    atomic_init(&s->frames, 0);
    atomic_init(&s->done, 0);
    atomic_init(&s->ended, 0);
    atomic_init(&s->stopping, 0);
    atomic_init(&s->xruns, 0);
    int st = spec->backend == DEVICE_BACKEND_PORTAUDIO ? device_pa_open(s, spec) : sim_open(s, spec);
    if (st) {
        device_stream_close(s);
        return st;
    }
    *out = s;
    return STATUS_OK;
}

int device_stream_start(struct device_stream *s)
{
    if (s->started) return STATUS_OK;
    int st;
    if (s->backend == DEVICE_BACKEND_PORTAUDIO) {
        st = device_pa_start(s);
    } else {
        struct sim *m = s->impl;
        st = pthread_create(&m->thread, NULL, sim_run, s) ? status_set(STATUS_DEVICE, "%s: cannot start a thread", s->name)
                                                          : STATUS_OK;
        m->have_thread = !st;
    }
    s->started = !st;
    return st;
}

int device_stream_running(struct device_stream *s)
{
    if (!s->started || atomic_load(&s->ended)) return 0;
    if (s->backend == DEVICE_BACKEND_PORTAUDIO) return device_pa_running(s);
    return 1;
}

long device_stream_frames(const struct device_stream *s)
{
    return atomic_load(&((struct device_stream *)s)->frames);
}

long device_stream_xruns(const struct device_stream *s)
{
    return atomic_load(&((struct device_stream *)s)->xruns);
}

void device_stream_stop(struct device_stream *s)
{
    if (!s->started) return;
    atomic_store(&s->stopping, 1);
    if (s->backend == DEVICE_BACKEND_PORTAUDIO) device_pa_stop(s);
    else sim_stop(s);
    device_mark_ended(s);
}

int device_stream_status(struct device_stream *s)
{
    /* ended without reaching its end and without being stopped: the device went away */
    if (!s->status && s->started && atomic_load(&s->ended) && !atomic_load(&s->done) && !atomic_load(&s->stopping)) {
        s->status = STATUS_DEVICE;
        snprintf(s->detail, sizeof s->detail, "%s stopped %s mid-stream (disconnected?)", s->name,
                 s->dir == DEVICE_INPUT ? "delivering audio" : "playing");
    }
    if (s->status) return status_set(s->status, "%s", s->detail);
    return STATUS_OK;
}

const char *device_stream_name(const struct device_stream *s)
{
    return s->name;
}

double device_stream_rate(const struct device_stream *s)
{
    return s->rate_hz;
}

int device_stream_device_channels(const struct device_stream *s)
{
    return s->dev_channels;
}

double device_stream_latency(const struct device_stream *s)
{
    return s->latency_s;
}

void device_stream_close(struct device_stream *s)
{
    if (!s) return;
    if (s->started) device_stream_stop(s);
    if (s->backend == DEVICE_BACKEND_PORTAUDIO) device_pa_close(s);
    else sim_close(s);
    mem_free(s);
}
