/* frontend.h: audio -> (F, T) features: named presets, their parameters, and the front end.
 *
 * F = n_mels mel bins (rows), T = 1 + n_samples / hop frames (columns), float32, row-major,
 * as DESIGN.md section 2 lays features out. The input is mono float samples at the preset's
 * rate (resample.h converts other rates). Every preset uses periodic Hann, centred frames
 * with reflect padding and Slaney mel with Slaney normalisation (DESIGN.md section 5). Scales:
 *
 *   db                      mult * log10(max(mel(|X|^p), amin)), then top_db if set
 *                           (mult 10 for p = 2, 20 for p = 1: librosa power/amplitude_to_db)
 *   a_weighted_db_then_mel  mel(A(f) + max(10 log10(max(|X|^2, amin)), max - top_db)): the
 *                           A-weighted dB of every FFT bin (librosa.perceptual_weighting,
 *                           top_db over the whole clip), THEN the mel filterbank applied to
 *                           those dB values, as CP-ResNet does (mission-anchors 2.5, sic)
 *   linear                  mel(|X|^p), no logarithm
 *
 * Presets (every parameter as shared/peers/basin_ref.py PRESETS):
 *
 *   name      rate    n_fft hop   mels fmin-fmax (Hz)  scale                      after
 *   cpjku     22050   2048  512   256  0-11025         a_weighted_db_then_mel, 80 CP-ResNet
 *   sp4asc    44100   2048  1024  256  0-22050         db                         SP4ASC
 *   panns16k  16000   512   160   64   50-8000         db                         ASC_Sharpness
 *   panns32k  32000   1024  320   64   50-14000        db                         PANNs
 *   demo      16000   1024  320   64   50-8000         db                         basin default
 *
 * cpjku also sets znorm: its features are meant to be z-normalised per mel bin with
 * statistics of the training split (znorm.h; the model stores them as basin.norm). The front
 * end itself never applies them: frontend_compute() returns the features before that step.
 *
 * Threads: a frontend is read-only after creation and may be shared; each thread that calls
 * frontend_compute() brings its own struct frontend_work. frontend_compute_batch() spreads
 * clips over threads_get() OpenMP threads with workspaces the frontend keeps for that purpose
 * under a lock, so two batch calls on one frontend run one after the other.
 */
#ifndef BASIN_DSP_FRONTEND_H
#define BASIN_DSP_FRONTEND_H

#include <stddef.h>

#include "basin/dsp/mel.h"

#define FRONTEND_DEFAULT_PRESET "demo"
#define FRONTEND_NAME_MAX 32

enum frontend_scale {
    FRONTEND_SCALE_DB,                      /* "db" */
    FRONTEND_SCALE_A_WEIGHTED_DB_THEN_MEL,  /* "a_weighted_db_then_mel" */
    FRONTEND_SCALE_LINEAR,                  /* "linear" */
};

/* Plain data, so the model layer can store it as JSON (frontend_params_json) and read it
 * back key by key (frontend_params_set). The JSON key of each field is in quotes; its
 * names follow basin_ref.py's basin.frontend metadata where that has the field. */
struct frontend_params {
    char preset[FRONTEND_NAME_MAX]; /* "preset": name only (letters, digits, _ . + -); not
                                       compared by frontend_params_diff; rename an edited one */
    int sample_rate_hz;             /* "sr" */
    int n_fft;                      /* "n_fft": even */
    int hop;                        /* "hop": hop length in samples */
    int win_length;                 /* "win_length": <= n_fft, Hann zero-padded at the centre */
    int n_mels;                     /* "n_mels": F */
    double fmin_hz, fmax_hz;        /* "fmin", "fmax": 0 <= fmin < fmax <= sr / 2 */
    enum mel_scale mel_scale;       /* "mel_scale": "slaney" or "htk" */
    enum mel_norm mel_norm;         /* "norm": "slaney" or "none" */
    int power;                      /* "power": 2 power spectrum, 1 magnitude */
    enum frontend_scale scale;      /* "scale": "db", "a_weighted_db_then_mel", "linear" */
    double amin;                    /* "amin": floor before the log (1e-10) */
    double top_db;                  /* "top_db": dynamic range below the clip's maximum; 0 = none (JSON null) */
    int znorm;                      /* "znorm": 1 when features are z-normalised per bin (cpjku) */
};
/* Fixed conventions, written to JSON for readers and accepted only with these values:
 * "window": "hann", "center": true, "pad_mode": "reflect". */

/* ----------------------------------------------------------------------------- presets */

/* Fill p with the named preset. STATUS_NOT_FOUND listing the preset names otherwise. */
int frontend_preset(struct frontend_params *p, const char *name);
/* Preset names, NULL-terminated, the default first. */
const char *const *frontend_preset_names(void);

/* 0 when p is usable, else STATUS_INVALID naming the first bad field by its JSON key
 * ("frontend: fmax 30000 Hz is above sr/2 = 11025 Hz"). */
int frontend_params_validate(const struct frontend_params *p);

/* JSON keys, NULL-terminated, in the order frontend_params_json writes them. */
const char *const *frontend_params_keys(void);
/* Set one field from its text form ("sr", "22050"; "top_db", "null"). Does not validate
 * the whole struct. STATUS_NOT_FOUND for an unknown key, STATUS_INVALID for a bad value,
 * each naming the key. */
int frontend_params_set(struct frontend_params *p, const char *key, const char *value);
/* Text form of one field into buf (n bytes). STATUS_NOT_FOUND for an unknown key. */
int frontend_params_get(const struct frontend_params *p, const char *key, char *buf, size_t n);
/* One line of compact JSON holding every key (json.h's dump: {"preset":"demo","sr":16000,
 * ...,"top_db":null,...}), the form models store as basin.frontend, in a new string the
 * caller frees with mem_free. 0 or STATUS_NOMEM. */
int frontend_params_to_json(const struct frontend_params *p, char **out);
/* Parameters from JSON text such as a model's basin.frontend: start from the preset the
 * text names (the default preset when it names none or an unknown one), so keys an older
 * writer left out keep that preset's values; then set every key the text holds (unknown
 * keys are ignored) and validate. label names the text in messages ("m.safetensors:
 * basin.frontend"). 0 or STATUS_FORMAT naming the label and the key. */
int frontend_params_from_json(struct frontend_params *p, const char *text, const char *label);
/* The first key (other than "preset") whose values differ, or NULL when a and b compute the
 * same features. */
const char *frontend_params_diff(const struct frontend_params *a, const struct frontend_params *b);

/* ----------------------------------------------------------------------------- front end */

struct frontend;        /* opaque: window, FFT plan, filterbank, A-weights (shared) */
struct frontend_work;   /* opaque: one thread's scratch */

/* Validates p and builds everything once. *out is owned by the caller. */
int frontend_create(struct frontend **out, const struct frontend_params *p);
void frontend_destroy(struct frontend *fe);   /* NULL is a no-op */

const struct frontend_params *frontend_get_params(const struct frontend *fe);
long frontend_frames(const struct frontend *fe, long n_samples);   /* T */
/* Shortest clip accepted: n_fft/2 + 1 samples (reflect padding). */
long frontend_min_samples(const struct frontend *fe);

/* Scratch for one thread. It grows on demand to the longest clip seen (the A-weighted scale
 * keeps a clip's whole power spectrogram), so reuse it. *out is owned by the caller. */
int frontend_work_create(struct frontend_work **out, const struct frontend *fe);
void frontend_work_destroy(struct frontend_work *w);   /* NULL is a no-op */

/* x (n_samples) at the preset's rate -> y (F, T). Thread-safe with one work per thread.
 * STATUS_INVALID naming the length for a clip shorter than frontend_min_samples();
 * STATUS_NOMEM when the work cannot grow. */
int frontend_compute(const struct frontend *fe, struct frontend_work *w, const float *x,
                     long n_samples, float *y);

/* Clips x[i] (n_samples[i]) -> y[i] (F, T_i) for i < n_clips on threads_get() threads.
 * Lengths are checked before any work starts: a short clip is reported by index. */
int frontend_compute_batch(struct frontend *fe, int n_clips, const float *const *x,
                           const long *n_samples, float *const *y);

#endif
