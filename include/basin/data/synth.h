/* synth.h: the scene synthesiser, basin's embedded default data set.
 *
 * synth_write() renders a data set of procedural soundscapes in the layout of TAU Urban
 * Acoustic Scenes 2020 Mobile (DESIGN.md sections 3 and 7), deterministically from a seed:
 *
 *   OUT/audio/<scene>-<city>-<location>-<segment>-<device>.wav   16-bit PCM mono
 *   OUT/meta.csv                         filename  scene_label  identifier  source_label
 *   OUT/evaluation_setup/fold1_train.csv     filename  scene_label
 *   OUT/evaluation_setup/fold1_evaluate.csv  filename  scene_label
 *   OUT/evaluation_setup/fold1_test.csv      filename   (the evaluate clips, unlabelled)
 *   OUT/README.txt                       generator, version, seed, parameters, counts
 *
 * CSV files are tab-separated with a header line, rows sorted by filename, filenames relative
 * to OUT ("audio/park-lyon-3-12-s2.wav"); identifier is "<city>-<location>" ("lyon-3") and
 * source_label the device ("s2"). Files end with a newline.
 *
 * The scenes are the ten labels of TAU 2020 (airport, bus, metro, metro_station, park,
 * public_square, shopping_mall, street_pedestrian, street_traffic, tram), each a mixture of
 * shared ingredients (traffic rumble and passing vehicles, babble, footsteps, birds, wind,
 * train rumble, motor whine and rail clatter, diesel hum, chimes, bells, music...) with its own
 * levels, densities, spectra and room reverberation. Parameters are drawn per recording
 * location (identifier) and varied again per segment (clip).
 *
 * Devices are a (the reference: flat, clean), b, c, s1..s6 as in DCASE: each colours the same
 * sound with its own frequency response (high-pass, low-pass, resonances, shelves), gain,
 * noise floor and soft (asymmetric) saturation. Every segment is rendered once as a sound
 * field and then "recorded" by device a and by a few other devices (parallel recordings, as
 * TAU's), so those clips share their content exactly. The last n_unseen devices (s4, s5, s6
 * by default) never appear in fold1_train: accuracy on them measures generalisation to
 * unseen devices. The train / evaluate split is by recording location, never by clip.
 *
 * Determinism: the same parameters give byte-identical files on every run, machine and
 * thread count. Each clip's random stream is derived from the seed and the clip's indices
 * (rng_split), and the sample path uses only +, -, *, /, sqrt and the generator's own
 * polynomial sin / cos / exp2 (no libm transcendentals, no FMA contraction).
 *
 * Exact clip counts: n_clips > 0 keeps exactly n_clips of the clips the structure above
 * holds (synth_params_set_clips picks the smallest n_segments that holds them). The subset
 * is deterministic and balanced: class k gets n_clips / n_classes clips (the first
 * n_clips % n_classes classes one more); a class's clips are split between train and
 * evaluate in the full structure's proportion, rounded, with at least one train clip, and
 * at least one evaluate clip when the class has two or more; within a split, each pick
 * takes the device that is furthest below its share of that split in the full structure
 * (ties: the lower device index), and for that device the earliest segment, then the
 * earliest location, so the clips spread over locations and devices and the unseen
 * devices still appear in evaluate. A kept clip is byte-identical to the same clip of the
 * full structure. meta.csv, the setup files and README.txt list exactly the kept clips.
 * Fewer clips than classes are refused (every class gets a train clip); n_classes to
 * 2 n_classes - 1 clips leave some classes without an evaluate clip, and exactly
 * n_classes clips leave evaluate empty.
 *
 * Progress and cancellation: long calls take a `const struct progress *` (NULL: no
 * reports), reported with the label "synth" in clips written out of the total, from the
 * calling thread only: at the start, after each of the calling thread's segments, inside a
 * long segment whenever 50 ms have passed since the last report (checked as each of its
 * ingredients starts and before each device's recording), and once with done = total
 * before the data set is moved into place. A report that returns 0 stops every thread
 * within one ingredient; the call then removes its temporary directory and returns
 * STATUS_CANCELLED.
 */
#ifndef BASIN_DATA_SYNTH_H
#define BASIN_DATA_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "basin/core/progress.h"

/* Bumped whenever the generator's output changes, so cached data sets are regenerated. */
#define SYNTH_VERSION 1
#define SYNTH_MAX_CLASSES 10
#define SYNTH_MAX_DEVICES 9
/* Enough for a path under $XDG_CACHE_HOME / ~/.cache. */
#define SYNTH_PATH_MAX 4096

/* Plain data: compared and hashed field by field (synth_params_string). The structure
 * holds n_classes * n_segments * ((n_locations - n_eval_locations) * (1 + train_devices)
 *                                 + n_eval_locations * (1 + eval_devices)) clips; all of
 * them are written when n_clips is 0, else exactly n_clips of them (see above). */
struct synth_params {
    int sample_rate_hz;    /* 22050: cpjku's rate; written as 16-bit PCM WAV */
    double clip_s;         /* 5.0 seconds per clip */
    int n_classes;         /* 10: the first n of synth_class_name(0..9) */
    int n_devices;         /* 9: the first n of a, b, c, s1..s6 */
    int n_unseen;          /* 3: the last n devices never appear in fold1_train */
    int n_locations;       /* 8 recording locations (identifiers) per class */
    int n_eval_locations;  /* 3 of them form fold1_evaluate, the rest fold1_train */
    int n_segments;        /* 5 segments (clips' content) per location */
    int train_devices;     /* 1: seen devices besides a recording each train segment */
    int eval_devices;      /* 2: devices besides a recording each evaluate segment */
    uint64_t seed;         /* 1 */
    long n_clips;          /* 0: every clip of the structure; else exactly this many */
};

/* The embedded default: 10 classes x 8 locations x 5 segments of 5 s at 22 050 Hz; 950 clips
 * (500 train: 250 on a, 50 on each of b, c, s1, s2, s3; 450 evaluate: 150 on a, 37 or 38 on
 * each other device), about 210 MB, generated in a few seconds. */
void synth_params_default(struct synth_params *p);
/* 0, or STATUS_INVALID naming the first bad field ("synth: n_unseen 9 leaves no seen
 * device besides a"; "synth: clips=5 is fewer than the 10 classes"). */
int synth_params_validate(const struct synth_params *p);
/* Ask for exactly n clips: n_segments becomes the smallest count whose structure holds n
 * clips, and n_clips becomes n (0 when the structure holds exactly n, so the same data set
 * has one description). STATUS_INVALID, saying what is possible, when n is fewer than
 * n_classes or more than 1000 segments hold. p's other fields must be valid. */
int synth_params_set_clips(struct synth_params *p, long n);
/* Canonical one-line form ("synth v1 sr=22050 clip_s=5 classes=10 ... seed=1", then
 * " clips=N" when n_clips is set), written to README.txt and used to recognise a previous
 * output. Returns the length it needs, as snprintf does. */
int synth_params_string(const struct synth_params *p, char *buf, size_t n);
/* 64-bit FNV-1a of synth_params_string(). */
uint64_t synth_params_hash(const struct synth_params *p);
/* Number of clips (WAV files) synth_write() writes for p (valid p): n_clips when set. */
long synth_clip_count(const struct synth_params *p);
/* Clips of fold1_train and fold1_evaluate for p (valid p). 0 or STATUS_NOMEM. */
int synth_split_counts(const struct synth_params *p, long *n_train, long *n_evaluate);
/* About how many bytes the data set for p takes on disk (WAV files and listings). */
uint64_t synth_bytes(const struct synth_params *p);
/* 1 when dir holds the complete data set for p (synth_write would reuse it), else 0. */
int synth_present(const struct synth_params *p, const char *dir);

/* Scene labels in catalogue order ("airport" .. "tram"); NULL outside 0..SYNTH_MAX_CLASSES-1. */
const char *synth_class_name(int k);
/* Device names "a", "b", "c", "s1".."s6"; NULL outside 0..SYNTH_MAX_DEVICES-1. */
const char *synth_device_name(int d);
/* Index of a name, or -1. */
int synth_class_index(const char *name);
int synth_device_index(const char *name);

/* Render one clip into memory: scene k (catalogue index) recorded by device d, n samples at
 * p->sample_rate_hz (p NULL: defaults). seed picks the location and the segment; the same
 * (k, seed) through two devices is the same sound field recorded twice (a parallel
 * recording). out: (n), caller storage, values in [-1, 1]. Only p's sample rate is used.
 * STATUS_INVALID for a bad index, rate or length; STATUS_NOMEM. */
int synth_clip(const struct synth_params *p, int scene, int device, uint64_t seed, float *out,
               long n);

/* Write the data set for p into out_dir. Missing parent directories are created. The data
 * set is written into "<out_dir>.tmp-<pid>-XXXXXX" (fs_temp_dir: folders and files follow
 * the user's umask) and renamed to out_dir at the end, so an interrupted run never leaves a
 * partial data set under out_dir. A cancelled or failed run removes its temporary; a
 * killed process leaves it behind, and the next synth_write to the same out_dir (from any
 * process) removes the temporaries of processes that no longer exist.
 *
 * An existing out_dir is fine when it is empty (replaced) or holds a complete synth output
 * with identical parameters (reused: nothing is written, returns 0). Otherwise:
 * STATUS_INVALID for an out_dir that is not a directory or is a non-empty directory of
 * something else (or synth output with other parameters); STATUS_IO for a directory that
 * cannot be created or written; STATUS_CANCELLED when progress returned 0; STATUS_NOMEM.
 * Clips are spread over threads_get() OpenMP threads; the output does not depend on it. */
int synth_write(const struct synth_params *p, const char *out_dir,
                const struct progress *progress);

/* The cache directory for p (NULL: defaults): fs_cache_dir("synth-<16 hex digits of
 * synth_params_hash>"), i.e. "$XDG_CACHE_HOME/basin/synth-..." or
 * "$HOME/.cache/basin/synth-..." when XDG_CACHE_HOME is unset or not absolute.
 * STATUS_NOT_FOUND when neither variable gives a directory, STATUS_INVALID when buf (n
 * bytes) is too small. Nothing is created. */
int synth_cache_dir(const struct synth_params *p, char *buf, size_t n);

/* Make sure the data set for p (NULL: the embedded default) exists in its cache directory,
 * generating it on first use (synth_write); the directory is returned in buf (n bytes).
 * Errors as synth_cache_dir and synth_write. */
int synth_ensure(const struct synth_params *p, char *buf, size_t n,
                 const struct progress *progress);
/* synth_ensure(NULL, ...): the embedded default data set. */
int synth_ensure_default(char *buf, size_t n, const struct progress *progress);

#endif
