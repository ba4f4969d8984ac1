/* frontend_stream.h: the front end of a sliding window over a live stream, computing only
 * the frames it has not computed before.
 *
 * A listener classifies the last L samples every H samples. Each window is featurised as a
 * clip of its own (frontend_compute on exactly those samples: its own reflect padding at
 * both edges, its own dB and top_db), because that is what the model saw in training and
 * what `predict` does with the same audio. Most of a window's frames do not depend on where
 * the window starts: frame t covers samples [t*hop - n_fft/2, t*hop + n_fft/2) of the
 * window, and when that span lies inside the window (t_left <= t <= t_right, t_left =
 * ceil(n_fft/2 / hop), t_right = floor((L - n_fft/2) / hop)) the frame is the stream's own
 * frame start/hop + t, computed once and cached. Only the few edge frames (reflect padded,
 * 2 + 2 for the demo preset) are computed for every window. Window starts are multiples of
 * hop, so frames line up from window to window.
 *
 * Numbers: frontend_stream_window() equals frontend_compute() on the same L samples, bit
 * for bit (the same STFT frame, filterbank block and dB code; tested for every preset). The
 * scales: db caches mel energies and takes the dB (and top_db) over each assembled window;
 * linear caches the mel values; a_weighted_db_then_mel (cpjku) caches each frame's power
 * spectrum, and its mel values with the dB floor they were made with, redone only when the
 * window's top_db floor (its loudest bin) changes.
 *
 * Memory: the stream keeps the last keep_samples samples (at least L) and the frames of
 * about one window. One stream per thread at a time.
 */
#ifndef BASIN_DSP_FRONTEND_STREAM_H
#define BASIN_DSP_FRONTEND_STREAM_H

#include "basin/dsp/frontend.h"

struct frontend_stream;

/* A stream for windows of window_samples (L >= frontend_min_samples) through front end p,
 * keeping at least the last keep_samples (0 or less than L: L). 0,
 * STATUS_INVALID (parameters, L), STATUS_NOMEM. *out is owned by the caller. */
int frontend_stream_create(struct frontend_stream **out, const struct frontend_params *p,
                           long window_samples, long keep_samples);
void frontend_stream_destroy(struct frontend_stream *s);   /* NULL is a no-op */

long frontend_stream_window_samples(const struct frontend_stream *s);   /* L */
long frontend_stream_window_frames(const struct frontend_stream *s);    /* T = 1 + L / hop */

/* Append n samples (mono, at the front end's rate). 0 or STATUS_INVALID for non-finite
 * samples (the stream keeps the samples before the first bad one). */
int frontend_stream_push(struct frontend_stream *s, const float *x, long n);
/* Samples pushed in total, and the first one still held. */
long frontend_stream_total(const struct frontend_stream *s);
long frontend_stream_first(const struct frontend_stream *s);
/* Copy held samples [from, from + n) into y. STATUS_INVALID when not held. */
int frontend_stream_samples(const struct frontend_stream *s, long from, long n, float *y);

/* y (F, T): the features of samples [start, start + L), start a multiple of hop, every
 * sample held (first <= start, start + L <= total). STATUS_INVALID otherwise. */
int frontend_stream_window(struct frontend_stream *s, long start, float *y);
/* Frames computed so far (cached interior frames and edge frames), for tests and benches. */
long frontend_stream_frames_computed(const struct frontend_stream *s);

#endif
