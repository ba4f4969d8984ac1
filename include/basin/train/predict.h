/* predict.h: class probabilities for one audio clip, as the model was trained to see it.
 *
 * A clip (any file audio_file.h decodes: any rate, any channel count) goes through the
 * model's own front end (basin.frontend, pipeline.h) and per-bin normalisation
 * (basin.norm: (x - mean[f]) / std[f] when the model has it) into the model in eval mode
 * (model/predict.h), then softmax.
 *
 * Channels and rate: the channel rule of features.h (a mono model gets the mean over the
 * file's channels, librosa.to_mono; a stereo model keeps two channels, duplicates a mono
 * file's), then the whole clip is resampled once to the front end's rate (libsoxr).
 *
 * Windows. The model sees clips of the length it was trained on, L samples at the front
 * end's rate: basin.input when the model has it (predict_input_set), else 10 s (the DCASE
 * clip length, as model_default_input). A clip of n samples:
 *   n <= L   one window, the whole clip, tiled to L when shorter (FEATURES_PAD_REPEAT, as
 *            training pads: a scene is a stationary texture) and flagged `tiled`
 *   n > L    windows of L samples starting every H samples (H = hop, 1 <= H <= L, default
 *            L: windows do not overlap): starts 0, H, 2H, ... while start + L <= n; when the
 *            last one ends before the clip does, one more window ends exactly at the clip's
 *            end (start n - L), so every sample is classified and every window is real
 *            audio (a 25-s clip in 10-s windows: 0-10, 10-20 and 15-25 s).
 * Each window is cut from the resampled samples and featurised as a clip of its own (its
 * own reflect padding at both edges), exactly as a file holding only those samples would
 * be in training. The clip's probabilities are the mean over windows of each window's
 * probabilities (mean softmax); the per-window probabilities are kept.
 *
 * Test-time augmentation (tta = N >= 1; ref: mission-anchors 4.4, SP4ASC testing.py): a
 * window's probabilities are the mean softmax over N SpecAugment draws of its features
 * (batch_spec_augment: time stripes first, then frequency stripes, torchlibrosa's
 * DropStripes), the un-augmented pass not included, as SP4ASC. Default stripes are
 * SP4ASC's (2 x 128 frames of 431, 2 x 32 bins of 256), in proportion to the model's
 * input: width_T = round(128 T / 431), width_F = round(32 F / 256), at least 1 (the sp4asc
 * front end gets exactly 128 and 32; 64 mel bins get 8, PANNs' value). A stripe is set to
 * the features' mean, as torchlibrosa sets it to 0 after bn0: 0 for z-normalised features
 * (a model with basin.norm), else each mel bin's mean over the window. Draw d of window w
 * comes from rng_split(seed, w << 32 | d): the result depends only on the seed, not on
 * the batch size or thread count.
 *
 * Threads: as model/predict.h (the calling thread's threads_get()).
 */
#ifndef BASIN_TRAIN_PREDICT_H
#define BASIN_TRAIN_PREDICT_H

#include <stddef.h>
#include <stdint.h>

#include "basin/core/progress.h"

struct audio_file;
struct frontend_params;
struct model;

/* The clip length the model takes by default when it has no basin.input: 10 s. */
#define PREDICT_DEFAULT_SECONDS 10.0

struct predict_opts {
    const struct frontend_params *frontend;  /* NULL: the model's (basin.frontend); a model
                                              * without one is STATUS_NOT_FOUND */
    double window_s;        /* window length in seconds; 0: the model's (predict_window) */
    double hop_s;           /* between window starts; 0: the window length */
    int tta;                /* SpecAugment draws per window; 0: none */
    uint64_t seed;          /* TTA's random stream */
    int time_stripes, time_width;   /* TTA stripes along T; 0 and 0: the defaults above */
    int freq_stripes, freq_width;   /* along F */
    int batch;              /* inputs per forward; 0: 16 */
};

/* Where the window length came from. */
enum predict_window_source {
    PREDICT_WINDOW_GIVEN,   /* predict_opts.window_s */
    PREDICT_WINDOW_MODEL,   /* the model's basin.input */
    PREDICT_WINDOW_DEFAULT, /* 10 s */
};

struct predict_result {
    int n_classes;          /* M */
    float *probs;           /* (M) mean over windows */
    int n_windows;          /* W */
    float *window_probs;    /* (W, M) */
    long *window_start;     /* (W) first sample of each window at the front end's rate */
    int sample_rate_hz;     /* the front end's */
    long n_samples;         /* the clip at the front end's rate */
    long window_samples;    /* L */
    long hop_samples;       /* H */
    enum predict_window_source window_from;
    int tiled;              /* 1: the clip was shorter than L and tiled to it */
    int n_channels, n_mels, n_frames;  /* (C, F, T) of one window */
    int file_channels, file_rate_hz;   /* of the clip as decoded */
    int tta;                /* draws per window (0: none) */
    int time_stripes, time_width, freq_stripes, freq_width;  /* TTA's, as used */
    int normalised;         /* 1: basin.norm applied */
};

/* The clip length m takes, in samples at front end p's rate: from basin.input, else 10 s.
 * *from (may be NULL) says which. STATUS_FORMAT when basin.input is unreadable (naming the
 * key). */
int predict_window(const struct model *m, const struct frontend_params *p, long *n_samples,
                   enum predict_window_source *from);

/* Record that m was trained on clips of n_samples at front end p's rate, as the model's
 * basin.input: {"sr": rate, "samples": n, "frames": T, "seconds": n / rate}. Training
 * calls this before it saves. 0 or STATUS_NOMEM. */
int predict_input_set(struct model *m, const struct frontend_params *p, long n_samples);

/* Probabilities of m for the decoded clip af. Errors (one line): STATUS_NOT_FOUND (no
 * front end), STATUS_MISMATCH (the model's mel bins or normalisation statistics do not fit
 * the front end, an input smaller than the model takes), STATUS_UNSUPPORTED (a channel
 * count the channel rule refuses), STATUS_INVALID (bad options), STATUS_CANCELLED through
 * p ("predict", windows done, W). *out is owned by the caller. */
int predict_clip(struct predict_result **out, struct model *m, const struct audio_file *af,
                 const struct predict_opts *o, const struct progress *p);
/* The same for the file at path, decoded whole after the options and the model were checked
 * (nothing is read for a call that cannot run); errors start with the path. */
int predict_file(struct predict_result **out, struct model *m, const char *path,
                 const struct predict_opts *o, const struct progress *p);
void predict_result_destroy(struct predict_result *r);   /* NULL is a no-op */

/* The k largest of probs (m) into idx (k <= m), largest first; ties: the lower class. */
void predict_top(const float *probs, int m, int k, int *idx);
/* Class k's name: the model's basin.labels, else "class k" (into buf). */
const char *predict_label(const struct model *m, int k, char *buf, size_t n);

#endif
