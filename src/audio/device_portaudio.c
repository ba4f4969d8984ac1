/* device_portaudio.c: the PortAudio backend, the only file that includes portaudio.h.
 *
 * Key ideas:
 * - PortAudio is one process-wide library (Pa_Initialize is reference-counted and not
 *   thread-safe), so every call into it is serialised by one mutex here: the only global
 *   state in the audio layer, and it mirrors PortAudio's own. Each listing initialises and
 *   terminates PortAudio for the call (so a device plugged in since is seen); each stream
 *   holds one initialisation until it is closed.
 * - The callback only converts channels and copies (device_push_input /
 *   device_pull_output): no locks, allocation or I/O; over- and underrun flags are counted.
 * - Quiet: alsa-lib and libjack print diagnostics on stderr (about 60 lines when
 *   Pa_Initialize probes a machine without a sound card), and PortAudio prints its own
 *   failures there too ("Expression '...' failed in 'src/hostapi/alsa/pa_linux_alsa.c'",
 *   from PaUtil_DebugPrint, which Debian's build neither disables nor exports a hook for).
 *   alsa-lib's and libjack's error hooks are set to no-ops (found with dlsym: Debian's
 *   libportaudio links both, so the hooks reach the instances it uses, without linking
 *   them here), and fd 2 points at /dev/null around every PortAudio call. A failure is
 *   reported through status.h instead. BASIN_AUDIO_VERBOSE=1 lets the noise through.
 *
 * ref: shared/reference/audio-ui-testability.md sections 1-2 (pa_io.c, pa_init_quiet);
 *      portaudio.h (19.6): Pa_OpenStream, Pa_IsFormatSupported, the callback contract;
 *      alsa/error.h: snd_lib_error_set_handler; jack/jack.h: jack_set_error_function.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <portaudio.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "device_impl.h"

static pthread_mutex_t pa_lock = PTHREAD_MUTEX_INITIALIZER;
static int hooks_set;

struct pa {
    PaStream *stream;
    int up;                     /* holds one Pa_Initialize */
};

/* ----------------------------------------------------------------------------- quiet */

static int verbose(void)
{
    const char *v = getenv("BASIN_AUDIO_VERBOSE");
    return v && *v && strcmp(v, "0");
}

static void alsa_quiet(const char *file, int line, const char *function, int err, const char *fmt, ...)
{
    (void)file, (void)line, (void)function, (void)err, (void)fmt;
}

static void jack_quiet(const char *msg)
{
    (void)msg;
}

/* alsa-lib's and libjack's error hooks, when PortAudio brought those libraries in. */
static void set_hooks(void)
{
    if (hooks_set || verbose()) return;
    hooks_set = 1;
    typedef void (*alsa_handler)(const char *, int, const char *, int, const char *, ...);
    typedef void (*jack_handler)(const char *);
    void *sym = dlsym(RTLD_DEFAULT, "snd_lib_error_set_handler");
    if (sym) {
        int (*set)(alsa_handler);
        memcpy(&set, &sym, sizeof set);
        set(alsa_quiet);
    }
    static const char *const jack_setters[] = {"jack_set_error_function", "jack_set_info_function"};
    for (int i = 0; i < 2; i++)
        if ((sym = dlsym(RTLD_DEFAULT, jack_setters[i]))) {
            void (*set)(jack_handler);
            memcpy(&set, &sym, sizeof set);
            set(jack_quiet);
        }
}

/* Point fd 2 at /dev/null; returns the saved descriptor (-1: nothing to restore). */
static int mute_begin(void)
{
    if (verbose()) return -1;
    fflush(stderr);
    int saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved < 0 || nul < 0) {
        if (saved >= 0) close(saved);
        if (nul >= 0) close(nul);
        return -1;
    }
    dup2(nul, STDERR_FILENO);
    close(nul);
    return saved;
}

static void mute_end(int saved)
{
    if (saved < 0) return;
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
}

/* Everything below runs with pa_lock held and stderr muted: lock() ... unlock(). */
static int lock(void)
{
    pthread_mutex_lock(&pa_lock);
    set_hooks();
    return mute_begin();
}

static void unlock(int muted)
{
    mute_end(muted);
    pthread_mutex_unlock(&pa_lock);
}

/* ----------------------------------------------------------------------------- helpers */

static const char *error_text(PaError e)
{
    static __thread char buf[400];
    if (e == paUnanticipatedHostError) {
        const PaHostErrorInfo *h = Pa_GetLastHostErrorInfo();
        snprintf(buf, sizeof buf, "%s%s%s", Pa_GetErrorText(e), h && h->errorText && *h->errorText ? ": " : "",
                 h && h->errorText ? h->errorText : "");
        return buf;
    }
    return Pa_GetErrorText(e);
}

static int up(void)
{
    PaError e = Pa_Initialize();
    if (e != paNoError) return status_set(STATUS_DEVICE, "PortAudio cannot start: %s", error_text(e));
    return STATUS_OK;
}

static const char *dir_word(enum device_dir dir)
{
    return dir == DEVICE_INPUT ? "input" : "output";
}

static int channels_of(const PaDeviceInfo *d, enum device_dir dir)
{
    return dir == DEVICE_INPUT ? d->maxInputChannels : d->maxOutputChannels;
}

static const char *host_of(const PaDeviceInfo *d)
{
    const PaHostApiInfo *h = Pa_GetHostApiInfo(d->hostApi);
    return h && h->name ? h->name : "?";
}

/* Case-insensitive substring. */
static int contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (!strncasecmp(hay, needle, n)) return 1;
    return !n;
}

/* The device spec names for dir (PortAudio up). */
static int resolve(const struct device_spec *spec, enum device_dir dir, PaDeviceIndex *out)
{
    const int n = Pa_GetDeviceCount();
    if (n < 0) return status_set(STATUS_DEVICE, "PortAudio: %s", error_text(n));
    const char *name = spec->name[0] ? spec->name : "default", *what = dir_word(dir);
    const char *key = dir == DEVICE_INPUT ? "in" : "out";
    if (!strcasecmp(name, "default")) {
        PaDeviceIndex d = dir == DEVICE_INPUT ? Pa_GetDefaultInputDevice() : Pa_GetDefaultOutputDevice();
        if (d == paNoDevice) {
            if (n == 0)
                return status_set(STATUS_NOT_FOUND, "no %s device: PortAudio sees no audio device at all (no sound "
                                  "card, or no access to it; `device %s=file:PATH` or %s=null work without one)",
                                  what, key, key);
            return status_set(STATUS_NOT_FOUND, "no default %s device among the %d PortAudio sees (`devices` lists "
                              "them; `device %s=N` chooses one)", what, n, key);
        }
        *out = d;
        return STATUS_OK;
    }
    char *end;
    long k = strtol(name, &end, 10);
    if (!*end) {
        if (k < 0 || k >= n)
            return status_set(STATUS_NOT_FOUND, "no device %ld: PortAudio sees %d%s (`devices` lists them)", k, n,
                              n ? "" : ", none at all");
        const PaDeviceInfo *d = Pa_GetDeviceInfo((PaDeviceIndex)k);
        if (channels_of(d, dir) < 1)
            return status_set(STATUS_INVALID, "device %ld (%s) has no %s channels", k, d->name, what);
        *out = (PaDeviceIndex)k;
        return STATUS_OK;
    }
    /* the exact name (or host/name), then the one name containing the text */
    char full[DEVICE_NAME_MAX + 80];
    for (int pass = 0; pass < 2; pass++) {
        int found = -1, n_found = 0;
        char list[600] = "";
        for (int i = 0; i < n; i++) {
            const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
            if (!d || channels_of(d, dir) < 1) continue;
            snprintf(full, sizeof full, "%s/%s", host_of(d), d->name);
            int hit = pass == 0 ? !strcasecmp(d->name, name) || !strcasecmp(full, name) : contains(full, name);
            if (!hit) continue;
            if (n_found++ == 0) found = i;
            size_t len = strlen(list);
            if (len < sizeof list - 80)
                snprintf(list + len, sizeof list - len, "%s%d '%s'", len ? ", " : "", i, d->name);
        }
        if (n_found == 1 || (pass == 0 && n_found > 1)) {
            *out = found;
            return STATUS_OK;
        }
        if (n_found > 1)
            return status_set(STATUS_INVALID, "'%s' matches %d %s devices: %s (give the number)", name, n_found, what,
                              list);
    }
    return status_set(STATUS_NOT_FOUND, "no %s device is called '%s' (`devices` lists the %d PortAudio sees)", what,
                      name, n);
}

static int supported(PaDeviceIndex d, enum device_dir dir, int channels, double rate)
{
    const PaDeviceInfo *info = Pa_GetDeviceInfo(d);
    PaStreamParameters p = {.device = d, .channelCount = channels, .sampleFormat = paFloat32,
                            .suggestedLatency = dir == DEVICE_INPUT ? info->defaultLowInputLatency
                                                                    : info->defaultLowOutputLatency};
    return Pa_IsFormatSupported(dir == DEVICE_INPUT ? &p : NULL, dir == DEVICE_OUTPUT ? &p : NULL, rate) ==
           paFormatIsSupported;
}

/* device_negotiate's rule on device d (PortAudio up). */
static int choose(PaDeviceIndex d, const struct device_spec *spec, enum device_dir dir, double want_rate,
                  int want_ch, struct device_format *out)
{
    const PaDeviceInfo *info = Pa_GetDeviceInfo(d);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%d %s (%s)", d, info->name, host_of(info));
    out->default_rate_hz = info->defaultSampleRate;
    const int max = channels_of(info, dir);
    const char *what = dir_word(dir);
    if (max < 1) return status_set(STATUS_INVALID, "device %s has no %s channels", out->name, what);
    /* channels: as asked, else mono <-> stereo */
    int ch = want_ch;
    if (ch > max) {
        if (want_ch == 2) ch = 1;
        else return status_set(STATUS_UNSUPPORTED, "device %s has %d %s channel%s; %d were asked for", out->name, max,
                               what, max == 1 ? "" : "s", want_ch);
    }
    double probe = spec->rate_hz > 0 ? spec->rate_hz : want_rate > 0 ? want_rate : info->defaultSampleRate;
    if (!supported(d, dir, ch, probe) && want_ch == 1 && max >= 2 && supported(d, dir, 2, probe)) ch = 2;
    /* rate: forced, else wanted, else the device's default */
    if (spec->rate_hz > 0) {
        if (!supported(d, dir, ch, spec->rate_hz))
            return status_set(STATUS_UNSUPPORTED, "device %s does not take %g Hz for %s (its default is %g Hz)",
                              out->name, spec->rate_hz, what, info->defaultSampleRate);
        out->rate_hz = spec->rate_hz;
    } else if (want_rate > 0 && supported(d, dir, ch, want_rate)) {
        out->rate_hz = want_rate;
    } else if (supported(d, dir, ch, info->defaultSampleRate)) {
        out->rate_hz = info->defaultSampleRate;
    } else {
        return status_set(STATUS_UNSUPPORTED, "device %s takes neither %g Hz nor its default %g Hz with %d channel%s",
                          out->name, want_rate, info->defaultSampleRate, ch, ch == 1 ? "" : "s");
    }
    out->device_channels = ch;
    return STATUS_OK;
}

/* ----------------------------------------------------------------------------- listing */

int device_pa_list(struct device_info **out, int *n_out, char *version, size_t n)
{
    *out = NULL;
    *n_out = 0;
    if (version && n) snprintf(version, n, "%s", Pa_GetVersionText());
    int muted = lock();
    int st = up();
    if (!st) {
        int count = Pa_GetDeviceCount();
        if (count < 0) {
            st = status_set(STATUS_DEVICE, "PortAudio: %s", error_text(count));
        } else if (count > 0) {
            struct device_info *list = mem_calloc((size_t)count, sizeof *list);
            if (!list) st = STATUS_NOMEM;
            PaDeviceIndex din = Pa_GetDefaultInputDevice(), dout = Pa_GetDefaultOutputDevice();
            for (int i = 0; list && i < count; i++) {
                const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
                struct device_info *x = &list[i];
                x->index = i;
                snprintf(x->name, sizeof x->name, "%s", d->name);
                snprintf(x->host, sizeof x->host, "%s", host_of(d));
                x->max_in = d->maxInputChannels, x->max_out = d->maxOutputChannels;
                x->default_rate_hz = d->defaultSampleRate;
                x->in_latency_s = d->defaultLowInputLatency, x->out_latency_s = d->defaultLowOutputLatency;
                x->is_default_in = i == din, x->is_default_out = i == dout;
            }
            *out = list;
            *n_out = list ? count : 0;
        }
        Pa_Terminate();
    }
    unlock(muted);
    return st;
}

int device_pa_negotiate(const struct device_spec *spec, enum device_dir dir, double want_rate_hz,
                        int want_channels, struct device_format *out)
{
    memset(out, 0, sizeof *out);
    int muted = lock();
    int st = up();
    if (!st) {
        PaDeviceIndex d;
        st = resolve(spec, dir, &d);
        if (!st) st = choose(d, spec, dir, want_rate_hz, want_channels, out);
        Pa_Terminate();
    }
    unlock(muted);
    return st;
}

/* ----------------------------------------------------------------------------- streams */

static int on_audio(const void *in, void *out, unsigned long n, const PaStreamCallbackTimeInfo *time,
                    PaStreamCallbackFlags flags, void *user)
{
    (void)time;
    struct device_stream *s = user;
    if (flags & (paInputOverflow | paInputUnderflow | paOutputUnderflow | paOutputOverflow))
        atomic_fetch_add_explicit(&s->xruns, 1, memory_order_relaxed);
    if (atomic_load_explicit(&s->stopping, memory_order_relaxed)) {
        if (out) memset(out, 0, sizeof(float) * n * (size_t)s->dev_channels);
        return paAbort;
    }
    if (s->dir == DEVICE_INPUT) return in && device_push_input(s, in, (long)n) ? paComplete : paContinue;
    return device_pull_output(s, out, (long)n) ? paComplete : paContinue;
}

static void on_finished(void *user)
{
    device_mark_ended(user);
}

static int open_error(PaError e, const char *name, const struct device_stream *s)
{
    const char *what = dir_word(s->dir);
    switch (e) {
    case paDeviceUnavailable:
        return status_set(STATUS_DEVICE, "device %s is busy or unavailable (another program may be using it)", name);
    case paInvalidSampleRate:
        return status_set(STATUS_UNSUPPORTED, "device %s does not take %g Hz for %s", name, s->rate_hz, what);
    case paInvalidChannelCount:
        return status_set(STATUS_UNSUPPORTED, "device %s does not take %d %s channels", name, s->dev_channels, what);
    default:
        return status_set(STATUS_DEVICE, "cannot open %s device %s: %s", what, name, error_text(e));
    }
}

int device_pa_open(struct device_stream *s, const struct device_spec *spec)
{
    struct pa *p = mem_calloc(1, sizeof *p);
    if (!p) return STATUS_NOMEM;
    s->impl = p;
    int muted = lock();
    int st = up();
    p->up = !st;
    PaDeviceIndex d = paNoDevice;
    struct device_format f = {0};
    if (!st) st = resolve(spec, s->dir, &d);
    if (!st) st = choose(d, spec, s->dir, s->rate_hz, s->n_channels, &f);
    if (!st && f.rate_hz != s->rate_hz)
        st = status_set(STATUS_UNSUPPORTED, "device %s does not take %g Hz for %s", f.name, s->rate_hz, dir_word(s->dir));
    if (!st) {
        const PaDeviceInfo *info = Pa_GetDeviceInfo(d);
        snprintf(s->name, sizeof s->name, "%s", f.name);
        s->dev_channels = f.device_channels;
        PaStreamParameters prm = {
            .device = d, .channelCount = s->dev_channels, .sampleFormat = paFloat32,
            .suggestedLatency = s->latency_s > 0 ? s->latency_s
                                : s->dir == DEVICE_INPUT ? info->defaultLowInputLatency : info->defaultLowOutputLatency};
        PaError e = Pa_OpenStream(&p->stream, s->dir == DEVICE_INPUT ? &prm : NULL, s->dir == DEVICE_OUTPUT ? &prm : NULL,
                                  s->rate_hz, paFramesPerBufferUnspecified, paClipOff | paDitherOff, on_audio, s);
        if (e != paNoError) {
            p->stream = NULL;
            st = open_error(e, f.name, s);
        } else {
            Pa_SetStreamFinishedCallback(p->stream, on_finished);
            const PaStreamInfo *si = Pa_GetStreamInfo(p->stream);
            if (si) s->latency_s = s->dir == DEVICE_INPUT ? si->inputLatency : si->outputLatency;
        }
    }
    unlock(muted);
    return st;
}

int device_pa_start(struct device_stream *s)
{
    struct pa *p = s->impl;
    int muted = lock();
    PaError e = Pa_StartStream(p->stream);
    unlock(muted);
    if (e != paNoError) return status_set(STATUS_DEVICE, "cannot start %s: %s", s->name, error_text(e));
    return STATUS_OK;
}

int device_pa_running(struct device_stream *s)
{
    struct pa *p = s->impl;
    /* polled every few milliseconds while the UI prints: the lock only, stderr left alone
     * (muting it process-wide here could swallow a line another thread writes) */
    pthread_mutex_lock(&pa_lock);
    PaError e = Pa_IsStreamActive(p->stream);
    pthread_mutex_unlock(&pa_lock);
    if (e == 1) return 1;
    if (e < 0 && !s->status) {
        s->status = STATUS_DEVICE;
        snprintf(s->detail, sizeof s->detail, "%.200s stopped: %.250s", s->name, error_text(e));
    }
    device_mark_ended(s);
    return 0;
}

void device_pa_stop(struct device_stream *s)
{
    struct pa *p = s->impl;
    if (!p || !p->stream) return;
    int muted = lock();
    if (Pa_IsStreamStopped(p->stream) == 0) Pa_AbortStream(p->stream);
    unlock(muted);
}

void device_pa_close(struct device_stream *s)
{
    struct pa *p = s->impl;
    if (!p) return;
    int muted = lock();
    if (p->stream) Pa_CloseStream(p->stream);
    if (p->up) Pa_Terminate();
    unlock(muted);
    mem_free(p);
    s->impl = NULL;
}
