/* device.h: audio devices behind one interface: PortAudio (default), a file, or nothing.
 *
 * A device is named by a spec the user types (device_spec_parse):
 *   "default"          PortAudio's default input or output device (its default host API)
 *   "3"                PortAudio device 3, as device_list numbers them
 *   "USB Mic", "hw:1"  the PortAudio device whose name (or "host/name") is that text, else
 *                      the one device whose "host/name" contains it (case-insensitive)
 *   "file:PATH"        input: the audio of PATH (any format audio_file.h reads) as if a
 *                      microphone heard it; output: what is played, written to PATH as a
 *                      float WAV (another extension: its format, as audio_file.h writes it)
 *   "null"             input: digital silence; output: sound goes nowhere
 * The file and null backends run on a thread of their own, paced in real time or, unpaced,
 * as fast as the other side goes (an unpaced input waits for room in the ring instead of
 * dropping frames, so a test hears every sample).
 *
 * A stream moves interleaved float frames. An input stream's frames go into a lock-free
 * SPSC ring (ring.h): the device's callback only converts channels and copies (no locks,
 * allocation or I/O); a job reads the ring. An output stream plays a buffer the caller
 * keeps alive until the stream is closed. Streams end by themselves (max_frames captured,
 * the whole buffer played, the input file's end) or by device_stream_stop.
 *
 * Formats: device_negotiate picks the rate a stream opens at (the rate the work needs when
 * the device takes it, else the device's default rate; the caller then converts with
 * libsoxr, resample.h / resample_stream.h) and the device-side channels (what the caller
 * asks for when the device takes it, else mono <-> stereo, converted in the callback: the
 * mean of the channels for a mono reader, a mono signal copied to every output channel).
 * A spec's forced rate (rate_hz > 0) is used as it is or refused.
 *
 * Failures are one-line messages (status.h): no device at all, no device by that name,
 * several devices matching a name (listed), a busy device, a rate or channel count the
 * device refuses (STATUS_UNSUPPORTED), a device that stops delivering mid-stream (reported
 * by device_stream_status: STATUS_DEVICE). PortAudio, ALSA and JACK print diagnostics on
 * stderr; this module silences them (the libraries' error hooks, and stderr pointed at
 * /dev/null around PortAudio's own calls; BASIN_AUDIO_VERBOSE=1 in the environment lets
 * them through), so they cannot scribble over a full-screen UI. What PortAudio's callback
 * thread itself might print mid-stream cannot be bracketed: a curses UI sends fd 2 to a log
 * for its session anyway.
 *
 * Threads: every function may be called from any thread; PortAudio's calls are serialised
 * inside. A stream belongs to one thread at a time.
 */
#ifndef BASIN_AUDIO_DEVICE_H
#define BASIN_AUDIO_DEVICE_H

#include <stddef.h>

struct ring;
struct device_stream;

enum device_backend { DEVICE_BACKEND_PORTAUDIO, DEVICE_BACKEND_FILE, DEVICE_BACKEND_NULL };
enum device_dir { DEVICE_INPUT, DEVICE_OUTPUT };

#define DEVICE_NAME_MAX 256
#define DEVICE_SPEC_MAX 4096
/* Rates a stream may use (the audio file limits). */
#define DEVICE_MIN_RATE_HZ 1000
#define DEVICE_MAX_RATE_HZ 768000

struct device_spec {
    enum device_backend backend;
    char name[DEVICE_SPEC_MAX];  /* portaudio: "default", an index or a name; file: the path */
    int paced;                   /* file, null: 1 real time (default), 0 as fast as possible */
    double rate_hz;              /* 0: negotiated (see above); else the rate streams must use */
};

/* Parse text (above) into s; paced 1, rate 0. STATUS_INVALID for an empty text or an
 * empty file path. */
int device_spec_parse(struct device_spec *s, const char *text);
/* The text form ("default", "file:x.wav", "null", "3") into buf. */
void device_spec_text(const struct device_spec *s, char *buf, size_t n);

/* One PortAudio device. */
struct device_info {
    int index;                  /* what "device in=N" takes */
    char name[DEVICE_NAME_MAX];
    char host[64];              /* its host API: "ALSA", "JACK Audio Connection Kit", "OSS" */
    int max_in, max_out;        /* channels */
    double default_rate_hz;
    double in_latency_s, out_latency_s;  /* default low latencies */
    int is_default_in, is_default_out;
};

/* PortAudio's devices into *out (mem_free it; NULL when there are none) and their count,
 * with PortAudio's version text in version (n bytes, may be NULL). STATUS_DEVICE when
 * PortAudio cannot start (its message). */
int device_list(struct device_info **out, int *n_out, char *version, size_t n);

/* What a stream on spec would use. */
struct device_format {
    double rate_hz;             /* the stream's rate */
    double default_rate_hz;     /* the device's own default */
    int device_channels;        /* channels opened on the device */
    char name[DEVICE_NAME_MAX + 80];  /* "default (ALSA)", "file:x.wav", "null" */
};

/* Resolve spec for dir and choose the format for a caller that wants want_rate_hz (0: the
 * device's default) and want_channels (1..256) frames: see above. Errors: STATUS_NOT_FOUND
 * (no such device, no default device: "no input device: PortAudio sees none"),
 * STATUS_INVALID (several match; a name for the wrong direction), STATUS_UNSUPPORTED (a
 * forced rate, or channels, the device refuses), STATUS_DEVICE (PortAudio failed), and the
 * audio_file.h errors of an input file. */
int device_negotiate(const struct device_spec *spec, enum device_dir dir, double want_rate_hz,
                     int want_channels, struct device_format *out);

struct device_stream_opts {
    enum device_dir dir;
    double rate_hz;             /* the negotiated rate */
    int n_channels;             /* frames the caller sees: the ring's or the play buffer's */
    /* input */
    struct ring *ring;          /* captured frames go here (ring_channels == n_channels) */
    long max_frames;            /* end after this many frames; 0: until stopped */
    /* output */
    const float *play;          /* (n_play, n_channels) interleaved, alive until close */
    long n_play;
    double latency_s;           /* suggested device latency; 0: the device's default */
};

/* Open (not start) a stream on spec with o. Same errors as device_negotiate, plus a busy
 * device (STATUS_DEVICE, "busy or unavailable"). *out is owned by the caller. */
int device_stream_open(struct device_stream **out, const struct device_spec *spec,
                       const struct device_stream_opts *o);
int device_stream_start(struct device_stream *s);
/* 1 while the stream runs; 0 once it ended by itself, failed or was stopped. */
int device_stream_running(struct device_stream *s);
/* Frames moved so far: input: captured (into the ring or dropped when it was full);
 * output: handed to the device (the device plays them a latency later). */
long device_stream_frames(const struct device_stream *s);
/* Over- and underruns the device itself reported (PortAudio's status flags). */
long device_stream_xruns(const struct device_stream *s);
/* Stop now (output: without waiting for the device to play what it holds). */
void device_stream_stop(struct device_stream *s);
/* After the stream ended: 0 when it ended by itself or was stopped, else STATUS_DEVICE
 * with the reason ("the input device stopped delivering audio (disconnected?)") on the
 * calling thread; also STATUS_IO / STATUS_NOMEM when a file output could not be written. */
int device_stream_status(struct device_stream *s);
const char *device_stream_name(const struct device_stream *s);
double device_stream_rate(const struct device_stream *s);
int device_stream_device_channels(const struct device_stream *s);
double device_stream_latency(const struct device_stream *s);   /* seconds, as reported */
/* Stop if running, then release everything (a file output is written here if it was not
 * yet). NULL is a no-op. */
void device_stream_close(struct device_stream *s);

#endif
