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
 * Progress and cancellation: long calls take a synth_progress_fn, called on the calling
 * thread with the fraction done in [0, 1]; it returns non-zero to go on, 0 to cancel (the
 * call then returns STATUS_CANCELLED and leaves nothing behind). NULL: no reports.
 */
#ifndef BASIN_DATA_SYNTH_H
#define BASIN_DATA_SYNTH_H

#include <stddef.h>
#include <stdint.h>

/* Bumped whenever the generator's output changes, so cached data sets are regenerated. */
#define SYNTH_VERSION 1
#define SYNTH_MAX_CLASSES 10
#define SYNTH_MAX_DEVICES 9
/* Enough for a path under $XDG_CACHE_HOME / ~/.cache. */
#define SYNTH_PATH_MAX 4096

/* Returns 0 to cancel, non-zero to go on. Called on the calling thread only. */
typedef int (*synth_progress_fn)(void *user, double fraction);

/* Plain data: compared and hashed field by field (synth_params_string). Clip count:
 * n_classes * n_segments * ((n_locations - n_eval_locations) * (1 + train_devices)
 *                            + n_eval_locations * (1 + eval_devices)). */
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
};

/* The embedded default: 10 classes x 8 locations x 5 segments of 5 s at 22 050 Hz; 950 clips
 * (500 train: 250 on a, 50 on each of b, c, s1, s2, s3; 450 evaluate: 150 on a, 37 or 38 on
 * each other device), about 210 MB, generated in a few seconds. */
void synth_params_default(struct synth_params *p);
/* 0, or STATUS_INVALID naming the first bad field ("synth: n_unseen 9 leaves no seen
 * device besides a"). */
int synth_params_validate(const struct synth_params *p);
/* Canonical one-line form ("synth v1 sr=22050 clip_s=5 classes=10 ..."), written to
 * README.txt and used to recognise a previous output. Returns the length it needs, as
 * snprintf does. */
int synth_params_string(const struct synth_params *p, char *buf, size_t n);
/* 64-bit FNV-1a of synth_params_string(). */
uint64_t synth_params_hash(const struct synth_params *p);
/* Number of clips (WAV files) synth_write() writes for p (valid p). */
long synth_clip_count(const struct synth_params *p);

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
 * set is written into "<out_dir>.tmp-<pid>-XXXXXX" and renamed to out_dir at the end, so an
 * interrupted run never leaves a partial data set under out_dir (a killed process leaves its
 * temporary directory behind; synth_ensure() removes those of dead processes).
 *
 * An existing out_dir is fine when it is empty (replaced) or holds a complete synth output
 * with identical parameters (reused: nothing is written, returns 0). Otherwise:
 * STATUS_INVALID for an out_dir that is not a directory or is a non-empty directory of
 * something else (or synth output with other parameters); STATUS_IO for a directory that
 * cannot be created or written; STATUS_CANCELLED when progress returned 0; STATUS_NOMEM.
 * Clips are spread over threads_get() OpenMP threads; the output does not depend on it. */
int synth_write(const struct synth_params *p, const char *out_dir, synth_progress_fn progress,
                void *user);

/* The cache directory for p (NULL: defaults): "$XDG_CACHE_HOME/basin/synth-<16 hex digits
 * of synth_params_hash>", or "$HOME/.cache/basin/..." when XDG_CACHE_HOME is unset or not
 * absolute. STATUS_NOT_FOUND when neither variable gives a directory, STATUS_INVALID when buf
 * (n bytes) is too small. Nothing is created. */
int synth_cache_dir(const struct synth_params *p, char *buf, size_t n);

/* Make sure the data set for p (NULL: the embedded default) exists in its cache directory,
 * generating it on first use; the directory is returned in buf (n bytes). Temporary
 * directories left there by dead processes are removed first. Errors as synth_cache_dir
 * and synth_write. */
int synth_ensure(const struct synth_params *p, char *buf, size_t n, synth_progress_fn progress,
                 void *user);
/* synth_ensure(NULL, ...): the embedded default data set. */
int synth_ensure_default(char *buf, size_t n, synth_progress_fn progress, void *user);

#endif
