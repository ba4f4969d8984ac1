/* features.h: clips -> (C, F, T) features, for one clip or a whole split, with a disk cache.
 *
 * One clip: decode (audio_file.h), apply the channel rule, resample to the front end's rate
 * when the file's rate differs (resample.h), fix the length, then run the front end on each
 * channel (frontend.h) -> (C, F, T), C = in_ch, F = n_mels, T = frontend_frames(n_samples).
 *
 * Channel rule (in_ch is what the model takes):
 *   in_ch 1            the mean over the file's channels (librosa.to_mono)
 *   file has in_ch     kept as is
 *   file is mono       the channel is duplicated in_ch times
 *   file has more      its first in_ch channels (a stereo model on a 4-channel file gets
 *                      channels 0 and 1)
 *   otherwise          (1 < file channels < in_ch) the clip is refused, STATUS_UNSUPPORTED
 *
 * Length policy: every clip of a data set gets the same n_samples (at the front end's rate)
 * and so the same T. n_samples is opts.n_samples when set, else the data set's most common
 * clip length (ties: the longest), read from the file headers (features_clip_samples). A
 * longer clip is cropped to its first n_samples (as librosa.load(duration=) and SP4ASC's
 * 10 s crop). A shorter clip is padded on the samples, before the front end:
 *   FEATURES_PAD_REPEAT (default)  the clip is tiled (x[i mod n]): a scene is a stationary
 *                      texture, so repeating it keeps the feature statistics, where digital
 *                      silence would put a block of floor values (10 log10(amin) = -100 dB)
 *                      into the features, an outlier after z-normalisation that also tells
 *                      the model the clip's length; time roll is circular too
 *   FEATURES_PAD_ZERO  zeros (digital silence) appended
 * DCASE clips are all 10 s and the synthesiser's clips all have one length, so neither
 * applies there.
 *
 * Disk cache: a directory (default $XDG_CACHE_HOME/basin/features, else
 * ~/.cache/basin/features) of one file per clip, <dir>/<k0k1>/<32 hex digits>.feat, named by
 * a 128-bit key hashed (XXH64, two seeds) from the audio file's content hash and size,
 * in_ch, n_samples, the pad policy, the front end's parameters (frontend_params_json
 * without the preset name) and FEATURES_CACHE_VERSION. A file holds a 64-byte header
 * (magic "BASINFT1", byte-order mark, key, C, F, T, n_samples, XXH64 of the payload) and
 * the (C, F, T) floats. It is written atomically (fs_atomic, FS_ATOMIC_NO_SYNC: a torn
 * file fails validation), and validated on every read (size, magic, byte order, key,
 * shape, payload checksum): a stale or corrupt file is recomputed and rewritten, never
 * trusted; a valid file's modification time is set to the present (its last use). After a
 * load that wrote files, the least recently used files are removed until the cache fits
 * its cap (cache.h; 2 GiB by default). A run that finds every clip cached still reads each
 * audio file once (to hash it) but decodes and transforms nothing. Cache trouble (a
 * directory that cannot be made, a failed write) is logged once per load as a warning and
 * never fails the load.
 *
 * Failures: a clip that cannot be loaded (a missing, unreadable, truncated or corrupt file, a
 * channel count the rule above refuses) is skipped, never fatal: a warning "skipped <path>:
 * <reason>" goes through the log sink, and the item index and "<path>: <reason>" are kept
 * in features.skipped / skipped_reason. The load fails only on bad options, when nothing
 * at all loads, on allocation failure, or when cancelled (STATUS_CANCELLED; the cache files
 * written so far stay, so the next run resumes quickly).
 *
 * Threads: clips are spread over threads_get() OpenMP threads, each with its own front-end
 * workspace; results do not depend on the thread count. Warnings are logged in item order
 * from the calling thread, which also calls the progress callback.
 */
#ifndef BASIN_DATA_FEATURES_H
#define BASIN_DATA_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "basin/core/progress.h"
#include "basin/data/dataset.h"

struct audio_file;
struct frontend;
struct frontend_work;

/* Bump when the front end's numbers change for the same parameters, so old cache files
 * stop matching. */
#define FEATURES_CACHE_VERSION 1

enum features_pad { FEATURES_PAD_REPEAT, FEATURES_PAD_ZERO };

/* Zeroed is the default: mono, the data set's clip length, repeat padding, default cache. */
struct features_opts {
    int in_ch;                 /* C; 0 means 1 */
    long n_samples;            /* clip length at the front end's rate; 0: features_clip_samples */
    enum features_pad pad;
    const char *cache_dir;     /* NULL: the default directory; "": no disk cache */
    uint64_t cache_max_bytes;  /* the disk cache's cap after a load that wrote to it (least
                                * recently used files go first, cache.h); 0: cache_cap() */
};

/* The features of a set of clips. Created by features_load*, released by
 * features_destroy; every array is owned by the struct. */
struct features {
    int n;                  /* N clips loaded */
    int n_channels;         /* C */
    int n_mels;             /* F */
    int n_frames;           /* T */
    int n_classes;          /* M: the data set's class count */
    long n_samples;         /* clip length at the front end's rate */
    float *x;               /* (N, C, F, T) */
    int *labels;            /* (N) class indices */
    int *items;             /* (N) the data set's item index of each clip */
    int n_skipped;
    int *skipped;           /* (n_skipped) item indices of clips that failed to load */
    char **skipped_reason;  /* (n_skipped) "<path>: <reason>" */
    long n_computed;        /* clips decoded and transformed by this load */
    long n_cached;          /* clips read from the disk cache */
    long n_cache_invalid;   /* cache files found stale or corrupt (then recomputed) */
    int znormed;            /* 1 after features_znorm_apply */
    float *mean, *std;      /* (F) the statistics applied, valid when znormed */
};

/* The most common clip length over every item of ds (all splits), in samples at the
 * front end's rate (a header's frames * rate_fe / rate_file, rounded; ties: the longest).
 * Files whose header cannot be read or does not give a length are left out;
 * STATUS_NOT_FOUND when no file gives one. */
int features_clip_samples(const struct dataset *ds, const struct frontend *fe, long *n_samples);

/* T for clips of n_samples. */
long features_frames(const struct frontend *fe, long n_samples);

/* The channel rule above for a model of in_ch channels: the planar rows of af to carry on,
 * *src, *n_src of them (1 or in_ch; a mono file for a multi-channel model stays one row,
 * for the caller to duplicate), each af->n_frames long. When the channels are mixed to mono
 * the mix is a new buffer returned in *owned (mem_free), else *owned is NULL. 0,
 * STATUS_FORMAT (no samples), STATUS_UNSUPPORTED (the rule refuses), STATUS_NOMEM. */
int features_channels(const struct audio_file *af, int in_ch, const float **src, int *n_src,
                      float **owned);

/* One decoded clip af -> y (C, F, T) with the channel rule, resampling and length policy
 * above; opts->n_samples must be set (> 0). STATUS_UNSUPPORTED for the channel rule,
 * STATUS_FORMAT for an empty clip, STATUS_INVALID for n_samples shorter than the front
 * end's minimum. w is the calling thread's workspace. */
int features_clip(const struct frontend *fe, struct frontend_work *w, const struct audio_file *af,
                  const struct features_opts *opts, float *y);

/* features_clip on the file at path (decoding only what n_samples needs), no cache.
 * Errors start with the path. */
int features_file(const struct frontend *fe, struct frontend_work *w, const char *path,
                  const struct features_opts *opts, float *y);

/* Load the clips of one split of ds (DATASET_SPLIT_ANY: all) through the cache; an empty
 * split is STATUS_INVALID (dataset_require_split's message). progress (NULL: none) gets
 * "features" with clips done out of the total after every chunk of a few clips per thread.
 * *out is owned by the caller. */
int features_load(struct features **out, const struct dataset *ds, enum dataset_split split,
                  const struct frontend *fe, const struct features_opts *opts,
                  const struct progress *progress);
/* The same for the items idx[0..n) (in that order). */
int features_load_items(struct features **out, const struct dataset *ds, int n, const int *idx,
                        const struct frontend *fe, const struct features_opts *opts,
                        const struct progress *progress);
void features_destroy(struct features *f);   /* NULL is a no-op */
/* Keep only the clips of f that ds's item says device recorded, in their order (x, labels
 * and items compacted, n updated): how many are left. */
int features_keep_device(struct features *f, const struct dataset *ds, int device);

/* Clip i of f: (C, F, T). */
static inline float *features_clip_data(const struct features *f, int i)
{
    return f->x + (long)i * f->n_channels * f->n_mels * f->n_frames;
}

/* How features_prepare normalises. */
enum features_norm {
    FEATURES_NORM_NONE,     /* as the front end computes them */
    FEATURES_NORM_GIVEN,    /* (x - mean[f]) / std[f] with statistics given (a model's) */
    FEATURES_NORM_FIT,      /* statistics fitted on the train split, then applied */
};

/* The features of one split of ds, normalised: features_load, then the normalisation.
 * GIVEN needs mean and std (F = the front end's mel bins). FIT fits the statistics on the
 * train split (loading it too when split is another; an empty train split is an error) and,
 * when mean_out / std_out are not NULL, copies them there (F) so evaluation and prediction
 * can apply the same ones. Errors as features_load; STATUS_NOT_FOUND when no clip of the
 * split loads. *out is owned by the caller. */
int features_prepare(struct features **out, const struct dataset *ds, enum dataset_split split,
                     const struct frontend *fe, const struct features_opts *opts,
                     enum features_norm norm, const float *mean, const float *std,
                     float *mean_out, float *std_out, const struct progress *p);

/* Per-mel-bin mean and (unbiased) std (F) over every clip, channel and frame of f (use the
 * training split), as znorm.h computes them; the result does not depend on the thread
 * count. STATUS_INVALID when f has fewer than 2 values per bin or is already normalised. */
int features_znorm_fit(const struct features *f, float *mean, float *std);
/* x = (x - mean[f]) / std[f] in place (znorm_apply); keeps copies in f->mean / f->std and
 * sets f->znormed. CHECKs that f is not normalised yet. */
void features_znorm_apply(struct features *f, const float *mean, const float *std);

/* The default cache directory into buf: fs_cache_dir("features"), i.e.
 * $XDG_CACHE_HOME/basin/features when XDG_CACHE_HOME is set and absolute, else
 * $HOME/.cache/basin/features. STATUS_NOT_FOUND when neither variable is usable,
 * STATUS_INVALID when buf is too small. */
int features_cache_dir_default(char *buf, size_t n);

#endif
