/* listen.h: the listening pipeline: a ring of captured audio -> the model's front end over a
 * sliding window, computed incrementally -> the model -> smoothed class probabilities,
 * several times a second.
 *
 * The consumer side of a live input (DESIGN.md section 7): a device callback fills the ring
 * (audio/ring.h); listen_run() reads it on the caller's thread (a job), mixes the frames to
 * mono, converts them to the front end's rate as they come (resample_stream.h), appends
 * them to an incremental front end (frontend_stream.h) and classifies the last L samples
 * every H samples through one reusable predictor (model/predict.h).
 *
 * The same class as offline `predict`: a window is featurised as a clip of its own, with
 * the model's front end and basin.norm, exactly as predict.h does for a window of a file,
 * so window k (starting at k*H samples of the converted stream) gets the probabilities
 * predict gives to the same window of a recording of the stream (the streamed and the
 * whole-file resampling agree to about 1e-6). Before the first whole window (L samples),
 * the audio so far (from first_s on, every H) is tiled to L, as predict does with a
 * shorter clip, so the first probabilities come after a second, not after L.
 *
 * Live or complete: by default a listener that fell behind (a slow machine, a busy core)
 * skips to the newest whole window, since probabilities about stale audio help nobody; with
 * every_window each window is classified in turn (a file or a test, where no window may
 * be skipped).
 *
 * Latency: every ring write is stamped (ring.h); for each window the update reports the
 * time from the moment the window's last sample entered the ring to the moment its
 * probabilities were ready (the resampler's look-ahead, the wait for the reader's next
 * poll, the front end and the model). A sound at a random moment waits on average H/2 more
 * for the next window to end.
 *
 * Threads: the predictor runs with the calling thread's threads_get().
 */
#ifndef BASIN_TRAIN_LISTEN_H
#define BASIN_TRAIN_LISTEN_H

#include "basin/core/progress.h"

struct frontend_params;
struct model;
struct ring;

#define LISTEN_DEFAULT_HOP_S 0.25
#define LISTEN_DEFAULT_SMOOTH_S 1.0
#define LISTEN_DEFAULT_FIRST_S 1.0
#define LISTEN_DEFAULT_STALL_S 3.0

struct listen_opts {
    const struct frontend_params *frontend;  /* NULL: the model's (basin.frontend) */
    double input_rate_hz;   /* the ring's frames (the device stream's rate) */
    double window_s;        /* 0: the model's training length (predict_window) */
    double hop_s;           /* between classifications, rounded to whole frames; 0: 0.25 s */
    double smooth_s;        /* exponential smoothing's time constant; 0: 1 s; < 0: none */
    double first_s;         /* first (tiled) classification after this much audio; 0: 1 s;
                             * >= the window: whole windows only */
    int every_window;       /* 1: classify every window in turn (see above); 0: skip to the
                             * newest when behind */
    long max_windows;       /* stop after this many classifications; 0: no limit */
    double stall_s;         /* no audio for this long (the ring not closed) is an error;
                             * 0: 3 s; < 0: never */
    int poll_ms;            /* how often an empty ring is looked at; 0: 5 ms */
};

/* What one classification gives; the pointers are valid during the callback only. */
struct listen_update {
    long index;             /* 0, 1, ... */
    int partial;            /* 1: fewer than L samples so far, tiled to L */
    int n_classes;          /* M */
    const float *probs;     /* (M) this window's */
    const float *smoothed;  /* (M) smoothed over windows */
    int top;                /* argmax of smoothed */
    const float *features;  /* (F, T) the window's features before basin.norm */
    int n_mels, n_frames;
    const struct frontend_params *frontend;
    long window_start, window_end;  /* samples at the front end's rate */
    double heard_s;         /* audio read from the ring so far, in seconds */
    double latency_s;       /* see above; < 0 when unknown */
    double compute_s;       /* the front end and the model for this window */
    double hop_s;           /* H in seconds */
    double window_s;        /* L in seconds */
    double level_db;        /* RMS of the audio since the last update, dBFS (-inf: silence) */
    double cpu;             /* process CPU time / wall time since listening started (1 = a core) */
    long dropped, overruns; /* frames the ring dropped when full, and how often */
};

/* Called after each classification (on listen_run's thread); return 0 to stop. */
typedef int (*listen_fn)(void *user, const struct listen_update *u);

struct listen_stats {
    long windows;           /* classifications */
    double heard_s;         /* audio read */
    double wall_s;
    double cpu;             /* process CPU time / wall time */
    double latency_mean_s, latency_max_s;   /* over windows with a known latency */
    long latency_n;
    double compute_mean_s, compute_max_s;
    double hop_s, window_s;
    int rate_hz;            /* the front end's */
    double resampler_delay_s;  /* the stream resampler's hold-back at the end */
    long dropped, overruns;
    int input_ended;        /* 1: the ring was closed and drained */
};

/* Listen to ring (frames of ring_channels(ring) at o->input_rate_hz) with model m until p
 * cancels (STATUS_CANCELLED), the callback returns 0 or max_windows were classified (0),
 * or the input ends (0, stats->input_ended). Errors: as predict (STATUS_NOT_FOUND: no front
 * end; STATUS_MISMATCH: the model does not fit it), STATUS_INVALID (options),
 * STATUS_DEVICE (no audio for stall_s), STATUS_NOMEM. stats may be NULL; it is filled on
 * every return. */
int listen_run(struct model *m, struct ring *ring, const struct listen_opts *o, listen_fn on_update,
               void *user, const struct progress *p, struct listen_stats *stats);

#endif
