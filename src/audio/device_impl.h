/* device_impl.h: what the device backends share (private to src/audio).
 *
 * device.c owns the stream object, the spec parsing, the file and null backends and the
 * lock-free helpers every backend's callback uses; device_portaudio.c is the only file that
 * sees PortAudio and implements the functions declared at the end.
 */
#ifndef BASIN_AUDIO_DEVICE_IMPL_H
#define BASIN_AUDIO_DEVICE_IMPL_H

#include <stdatomic.h>

#include "basin/audio/device.h"

struct device_stream {
    enum device_backend backend;
    enum device_dir dir;
    double rate_hz;
    int n_channels;             /* the caller's frames */
    int dev_channels;           /* the device's frames */
    struct ring *ring;
    long max_frames;
    const float *play;          /* (n_play, n_channels) */
    long n_play;
    double latency_s;
    char name[DEVICE_NAME_MAX + 80];

    atomic_long frames;         /* moved so far */
    atomic_int done;            /* reached its natural end (max_frames, clip end, file end) */
    atomic_int ended;           /* nothing more will move: done, stopped or failed */
    atomic_int stopping;        /* device_stream_stop was called */
    atomic_long xruns;
    int started;
    int status;                 /* after it ended: 0 or the failure */
    char detail[512];

    void *impl;                 /* the backend's own state */
};

/* Callback side, lock-free and allocation-free. */

/* in: n frames of s->dev_channels from the device -> the ring (converted to n_channels),
 * at most up to max_frames. Returns 1 when max_frames is reached (the stream is done: the
 * ring is closed, `done` set). */
int device_push_input(struct device_stream *s, const float *in, long n);
/* out: n frames of s->dev_channels for the device, from the play buffer (converted),
 * silence after its end. Returns 1 once the whole buffer has been handed over. */
int device_pull_output(struct device_stream *s, float *out, long n);
/* The stream ended (from any thread): closes an input's ring, sets `ended`. */
void device_mark_ended(struct device_stream *s);

/* PortAudio (device_portaudio.c). */
int device_pa_list(struct device_info **out, int *n_out, char *version, size_t n);
int device_pa_negotiate(const struct device_spec *spec, enum device_dir dir, double want_rate_hz,
                        int want_channels, struct device_format *out);
int device_pa_open(struct device_stream *s, const struct device_spec *spec);
int device_pa_start(struct device_stream *s);
int device_pa_running(struct device_stream *s);
void device_pa_stop(struct device_stream *s);
void device_pa_close(struct device_stream *s);

#endif
