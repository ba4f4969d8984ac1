/* frontend.c: presets, their parameter table, and the log-mel front end (see frontend.h).
 *
 * Key idea: everything that depends only on the parameters (window, FFT plan, sparse mel
 * filterbank, A-weights per FFT bin) is built once in frontend_create; a clip then costs one
 * real FFT per frame plus O(K) vectorised work per frame. Frames go in blocks of 8: each
 * frame's |X|^2 (window, FFT, power, all in L1), then the block is transposed to bin-major so
 * the sparse filterbank multiplies 8 frames per instruction, and dB is taken once at the end
 * over F*T mel energies (db scale). cpjku's top_db depends on the clip's maximum, so its power
 * spectrogram is kept whole in the work and a second pass takes the dB of every bin, adds the
 * A-weight and applies the filterbank; max(10 log10 max(P, amin), max_db - top_db) is
 * computed as 10 log10(max(P, floor)), floor = max(amin, max(P_max, amin) 10^(-top_db/10)),
 * the same value with one logarithm per bin.
 *
 * The parameters are a plain struct described by a key table, so JSON output, key-by-key
 * input (for the model layer's JSON reader), comparison and validation messages all come
 * from one list and name fields by their JSON keys.
 *
 * ref: DESIGN.md section 5; mission-anchors 2.5 (cpjku), 4.1 (sp4asc), 5 (panns);
 *      shared/peers/basin_ref.py PRESETS and features(); librosa.perceptual_weighting,
 *      librosa.power_to_db; torchlibrosa / torchaudio MelSpectrogram (power -> mel -> dB).
 */
#include "basin/dsp/frontend.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/json.h"
#include "basin/core/log.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/dsp/scale.h"
#include "basin/dsp/stft.h"

/* ----------------------------------------------------------------------------- presets */

/* The demo preset (basin's default) is chosen for a live microphone demo on a laptop:
 * - 16 kHz: 48 kHz and 32 kHz devices resample by an integer ratio, speech and most scene
 *   cues lie below 8 kHz, and a third of 48 kHz's samples to move;
 * - n_fft 1024 (64 ms window, 15.6 Hz bins: even the lowest of 64 mels spans several bins),
 *   hop 320 (20 ms): 50 columns a second scroll smoothly, a 10 s clip is 501 frames;
 * - 64 mels, 50-8000 Hz, plain dB, no top_db (so a streamed window and the same audio as a
 *   clip give the same numbers): 64 rows fit a terminal (32 text rows with half blocks),
 *   and the model input (64 x 501) is 3.4 times smaller than cpjku's (256 x 431), so the
 *   CNN, which dominates the cost, trains and infers several times faster. The front end
 *   itself costs about 0.4 ms per 10 s clip on one core. PANNs' 16 kHz band and mel count
 *   (panns16k) with window and hop twice as long: half the frames, finer low frequencies. */
static const struct frontend_params presets[] = {
    {"demo", 16000, 1024, 320, 1024, 64, 50.0, 8000.0, MEL_SCALE_SLANEY, MEL_NORM_SLANEY, 2,
     FRONTEND_SCALE_DB, 1e-10, 0.0, 0},
    /* ref: mission-anchors 2.5: 22.05 kHz, 2048/512, perceptual weighting (top_db 80), then
     * 256 Slaney mels to sr/2, per-bin z-norm. */
    {"cpjku", 22050, 2048, 512, 2048, 256, 0.0, 11025.0, MEL_SCALE_SLANEY, MEL_NORM_SLANEY, 2,
     FRONTEND_SCALE_A_WEIGHTED_DB_THEN_MEL, 1e-10, 80.0, 1},
    /* ref: mission-anchors 4.1: 44.1 kHz, 2048/1024, 256 mels 0-22050, 10 log10(max(x, 1e-10)). */
    {"sp4asc", 44100, 2048, 1024, 2048, 256, 0.0, 22050.0, MEL_SCALE_SLANEY, MEL_NORM_SLANEY, 2,
     FRONTEND_SCALE_DB, 1e-10, 0.0, 0},
    /* ref: mission-anchors 5: ASC_Sharpness training/melspects.py (torchlibrosa). */
    {"panns16k", 16000, 512, 160, 512, 64, 50.0, 8000.0, MEL_SCALE_SLANEY, MEL_NORM_SLANEY, 2,
     FRONTEND_SCALE_DB, 1e-10, 0.0, 0},
    /* ref: mission-anchors 5: PANNs pytorch/main.py defaults. */
    {"panns32k", 32000, 1024, 320, 1024, 64, 50.0, 14000.0, MEL_SCALE_SLANEY, MEL_NORM_SLANEY,
     2, FRONTEND_SCALE_DB, 1e-10, 0.0, 0},
};
#define N_PRESETS ((int)(sizeof presets / sizeof presets[0]))

static const char *const preset_names[] = {"demo", "cpjku", "sp4asc", "panns16k", "panns32k",
                                           NULL};

const char *const *frontend_preset_names(void)
{
    return preset_names;
}

int frontend_preset(struct frontend_params *p, const char *name)
{
    for (int i = 0; i < N_PRESETS; i++)
        if (!strcmp(presets[i].preset, name)) {
            *p = presets[i];
            return STATUS_OK;
        }
    return status_set(STATUS_NOT_FOUND,
                      "unknown front-end preset '%s' (presets: demo, cpjku, sp4asc, panns16k, "
                      "panns32k)",
                      name);
}

/* ----------------------------------------------------------------------------- key table */

enum field_kind { FIELD_NAME, FIELD_INT, FIELD_DOUBLE, FIELD_ENUM, FIELD_FIXED };

struct field {
    const char *key;
    enum field_kind kind;
    size_t offset;
    const char *const *names;   /* FIELD_ENUM: names by value; FIELD_FIXED: {json, text} */
};

static const char *const scale_names[] = {"db", "a_weighted_db_then_mel", "linear", NULL};
static const char *const mel_scale_names[] = {"slaney", "htk", NULL};
static const char *const norm_names[] = {"none", "slaney", NULL};
static const char *const fixed_window[] = {"\"hann\"", "hann", NULL};
static const char *const fixed_center[] = {"true", "true", NULL};
static const char *const fixed_pad[] = {"\"reflect\"", "reflect", NULL};

_Static_assert(sizeof(enum mel_scale) == sizeof(int) && sizeof(enum mel_norm) == sizeof(int) &&
                   sizeof(enum frontend_scale) == sizeof(int),
               "the key table stores enums as int");

#define FIELD(key, kind, member, names) {key, kind, offsetof(struct frontend_params, member), names}
static const struct field fields[] = {
    FIELD("preset", FIELD_NAME, preset, NULL),
    FIELD("sr", FIELD_INT, sample_rate_hz, NULL),
    FIELD("n_fft", FIELD_INT, n_fft, NULL),
    FIELD("hop", FIELD_INT, hop, NULL),
    FIELD("win_length", FIELD_INT, win_length, NULL),
    FIELD("n_mels", FIELD_INT, n_mels, NULL),
    FIELD("fmin", FIELD_DOUBLE, fmin_hz, NULL),
    FIELD("fmax", FIELD_DOUBLE, fmax_hz, NULL),
    FIELD("mel_scale", FIELD_ENUM, mel_scale, mel_scale_names),
    FIELD("norm", FIELD_ENUM, mel_norm, norm_names),
    FIELD("power", FIELD_INT, power, NULL),
    FIELD("scale", FIELD_ENUM, scale, scale_names),
    FIELD("amin", FIELD_DOUBLE, amin, NULL),
    FIELD("top_db", FIELD_DOUBLE, top_db, NULL),
    FIELD("znorm", FIELD_INT, znorm, NULL),
    {"window", FIELD_FIXED, 0, fixed_window},
    {"center", FIELD_FIXED, 0, fixed_center},
    {"pad_mode", FIELD_FIXED, 0, fixed_pad},
};
#undef FIELD
#define N_FIELDS ((int)(sizeof fields / sizeof fields[0]))

static const char *const field_keys[] = {"preset", "sr", "n_fft", "hop", "win_length",
                                         "n_mels", "fmin", "fmax", "mel_scale", "norm",
                                         "power", "scale", "amin", "top_db", "znorm",
                                         "window", "center", "pad_mode", NULL};

const char *const *frontend_params_keys(void)
{
    return field_keys;
}

static const struct field *find_field(const char *key)
{
    for (int i = 0; i < N_FIELDS; i++)
        if (!strcmp(fields[i].key, key)) return &fields[i];
    return NULL;
}

/* Shortest text that reads back as exactly v: integers plainly ("80"), others by %g. */
static void format_double(char *buf, size_t n, double v)
{
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, n, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static int field_text(const struct frontend_params *p, const struct field *f, char *buf,
                      size_t n, int json)
{
    const char *base = (const char *)p + f->offset;
    switch (f->kind) {
    case FIELD_NAME:
        return snprintf(buf, n, json ? "\"%s\"" : "%s", base);
    case FIELD_INT: {
        int v;
        memcpy(&v, base, sizeof v);
        return snprintf(buf, n, "%d", v);
    }
    case FIELD_DOUBLE: {
        double v;
        memcpy(&v, base, sizeof v);
        if (!strcmp(f->key, "top_db") && v == 0.0) return snprintf(buf, n, json ? "null" : "none");
        char tmp[32];
        format_double(tmp, sizeof tmp, v);
        return snprintf(buf, n, "%s", tmp);
    }
    case FIELD_ENUM: {
        int v, n_names = 0;
        memcpy(&v, base, sizeof v);
        while (f->names[n_names]) n_names++;
        if (v < 0 || v >= n_names) return snprintf(buf, n, "%d", v); /* invalid: show it */
        return snprintf(buf, n, json ? "\"%s\"" : "%s", f->names[v]);
    }
    case FIELD_FIXED:
        return snprintf(buf, n, "%s", f->names[json ? 0 : 1]);
    }
    return 0;
}

int frontend_params_get(const struct frontend_params *p, const char *key, char *buf, size_t n)
{
    const struct field *f = find_field(key);
    if (!f) return status_set(STATUS_NOT_FOUND, "frontend: unknown parameter '%s'", key);
    field_text(p, f, buf, n, 0);
    return STATUS_OK;
}

int frontend_params_to_json(const struct frontend_params *p, char **out)
{
    *out = NULL;
    struct json *o = json_create_object();
    if (!o) return STATUS_NOMEM;
    int s = STATUS_OK;
    for (int i = 0; i < N_FIELDS && !s; i++) {
        const struct field *f = &fields[i];
        const char *base = (const char *)p + f->offset;
        int iv;
        double dv;
        switch (f->kind) {
        case FIELD_NAME:
            s = json_set_string(o, f->key, base);
            break;
        case FIELD_INT:
            memcpy(&iv, base, sizeof iv);
            s = json_set_int(o, f->key, iv);
            break;
        case FIELD_DOUBLE:
            memcpy(&dv, base, sizeof dv);
            s = !strcmp(f->key, "top_db") && dv == 0.0 ? json_set_null(o, f->key) : json_set_double(o, f->key, dv);
            break;
        case FIELD_ENUM: {
            int n_names = 0;
            memcpy(&iv, base, sizeof iv);
            while (f->names[n_names]) n_names++;
            s = iv >= 0 && iv < n_names ? json_set_string(o, f->key, f->names[iv]) : json_set_int(o, f->key, iv);
            break;
        }
        case FIELD_FIXED:
            s = !strcmp(f->names[1], "true") ? json_set_bool(o, f->key, 1) : json_set_string(o, f->key, f->names[1]);
            break;
        }
    }
    if (!s) s = json_dump(o, out);
    json_destroy(o);
    return s;
}

int frontend_params_from_json(struct frontend_params *p, const char *text, const char *label)
{
    struct json *root;
    int s = json_parse_max(text, label, 4 * N_FIELDS, &root);
    if (s) return s;
    if (json_kind_of(root) != JSON_KIND_OBJECT) {
        s = status_set(STATUS_FORMAT, "%s: is %s, expected an object", label,
                       json_kind_name(json_kind_of(root)));
        json_destroy(root);
        return s;
    }
    /* Start from the named preset, so keys an older writer left out keep its values. */
    const struct json *name = json_find(root, "preset");
    const char *pname = NULL;
    if (!name || json_to_string(name, &pname) || frontend_preset(p, pname))
        frontend_preset(p, FRONTEND_DEFAULT_PRESET);
    status_clear();
    for (int i = 0; i < json_len(root) && !s; i++) {
        const struct json *v = json_at(root, i);
        const char *key = json_key_at(root, i), *str;
        char text_value[64];
        int64_t iv;
        double dv;
        int bv;
        switch (json_kind_of(v)) {
        case JSON_KIND_STRING:
            json_to_string(v, &str);
            snprintf(text_value, sizeof text_value, "%s", str);
            break;
        case JSON_KIND_INT:
            json_to_int64(v, &iv);
            snprintf(text_value, sizeof text_value, "%lld", (long long)iv);
            break;
        case JSON_KIND_REAL:
            json_to_double(v, &dv);
            snprintf(text_value, sizeof text_value, "%.17g", dv);
            break;
        case JSON_KIND_BOOL:
            json_to_bool(v, &bv);
            snprintf(text_value, sizeof text_value, "%s", bv ? "true" : "false");
            break;
        case JSON_KIND_NULL:
            snprintf(text_value, sizeof text_value, "null");
            break;
        default:
            s = status_set(STATUS_FORMAT, "'%s' is %s", key, json_kind_name(json_kind_of(v)));
            continue;
        }
        /* Unknown keys (a newer writer's) are ignored; bad values are errors. */
        if (frontend_params_set(p, key, text_value) == STATUS_INVALID) s = STATUS_FORMAT;
    }
    json_destroy(root);
    if (!s) s = frontend_params_validate(p);
    return s ? status_prefix(STATUS_FORMAT, "%s", label) : STATUS_OK;
}

int frontend_params_set(struct frontend_params *p, const char *key, const char *value)
{
    const struct field *f = find_field(key);
    if (!f) return status_set(STATUS_NOT_FOUND, "frontend: unknown parameter '%s'", key);
    char *base = (char *)p + f->offset, *end;
    switch (f->kind) {
    case FIELD_NAME:
        if (strlen(value) >= FRONTEND_NAME_MAX)
            return status_set(STATUS_INVALID, "frontend: preset name '%s' is longer than %d",
                              value, FRONTEND_NAME_MAX - 1);
        strcpy(base, value);
        return STATUS_OK;
    case FIELD_INT: {
        errno = 0;
        long v = strtol(value, &end, 10);
        /* JSON readers may hand integers over as "22050.0". */
        if (*end == '.' && strspn(end + 1, "0") == strlen(end + 1)) end += strlen(end);
        if (errno || end == value || *end || v < -2147483647L || v > 2147483647L)
            return status_set(STATUS_INVALID, "frontend: %s '%s' is not an integer", key, value);
        int iv = (int)v;
        memcpy(base, &iv, sizeof iv);
        return STATUS_OK;
    }
    case FIELD_DOUBLE: {
        if (!strcmp(key, "top_db") && (!strcmp(value, "null") || !strcmp(value, "none"))) {
            double zero = 0.0;
            memcpy(base, &zero, sizeof zero);
            return STATUS_OK;
        }
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v))
            return status_set(STATUS_INVALID, "frontend: %s '%s' is not a number", key, value);
        memcpy(base, &v, sizeof v);
        return STATUS_OK;
    }
    case FIELD_ENUM:
        for (int i = 0; f->names[i]; i++)
            if (!strcmp(f->names[i], value)) {
                memcpy(base, &i, sizeof i);
                return STATUS_OK;
            }
        return status_set(STATUS_INVALID, "frontend: %s '%s' is not one of %s%s%s%s%s", key,
                          value, f->names[0], f->names[1] ? ", " : "",
                          f->names[1] ? f->names[1] : "", f->names[1] && f->names[2] ? ", " : "",
                          f->names[1] && f->names[2] ? f->names[2] : "");
    case FIELD_FIXED:
        if (!strcmp(value, f->names[1]) || (!strcmp(f->key, "center") && !strcmp(value, "1")))
            return STATUS_OK;
        return status_set(STATUS_UNSUPPORTED, "frontend: %s '%s' is not supported (only %s)",
                          key, value, f->names[1]);
    }
    return STATUS_OK;
}

const char *frontend_params_diff(const struct frontend_params *a, const struct frontend_params *b)
{
    for (int i = 0; i < N_FIELDS; i++) {
        const struct field *f = &fields[i];
        if (f->kind == FIELD_NAME || f->kind == FIELD_FIXED) continue;
        size_t size = f->kind == FIELD_DOUBLE ? sizeof(double) : sizeof(int);
        if (memcmp((const char *)a + f->offset, (const char *)b + f->offset, size)) return f->key;
    }
    return NULL;
}

int frontend_params_validate(const struct frontend_params *p)
{
#define BAD(...) return status_set(STATUS_INVALID, "frontend: " __VA_ARGS__)
    if (!memchr(p->preset, 0, FRONTEND_NAME_MAX)) BAD("preset name is not terminated");
    /* The name goes into JSON unescaped: keep it to a plain identifier. */
    if (strspn(p->preset, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-") !=
        strlen(p->preset))
        BAD("preset name '%s' may hold only letters, digits and _ . + -", p->preset);
    if (p->sample_rate_hz < 1 || p->sample_rate_hz > 1000000)
        BAD("sr %d Hz is outside 1..1000000", p->sample_rate_hz);
    if (p->n_fft < 2 || p->n_fft > (1 << 20) || p->n_fft % 2)
        BAD("n_fft %d must be even and in 2..1048576", p->n_fft);
    if (p->hop < 1) BAD("hop %d must be at least 1", p->hop);
    if (p->win_length < 1 || p->win_length > p->n_fft)
        BAD("win_length %d must be in 1..n_fft (%d)", p->win_length, p->n_fft);
    if (p->n_mels < 1 || p->n_mels > 4096) BAD("n_mels %d must be in 1..4096", p->n_mels);
    if (!(p->fmin_hz >= 0.0)) BAD("fmin %g Hz must be at least 0", p->fmin_hz);
    if (!(p->fmax_hz > p->fmin_hz)) BAD("fmax %g Hz must be above fmin %g Hz", p->fmax_hz, p->fmin_hz);
    if (p->fmax_hz > p->sample_rate_hz / 2.0)
        BAD("fmax %g Hz is above sr/2 = %g Hz", p->fmax_hz, p->sample_rate_hz / 2.0);
    if ((unsigned)p->mel_scale > MEL_SCALE_HTK) BAD("mel_scale %d is not slaney or htk", (int)p->mel_scale);
    if ((unsigned)p->mel_norm > MEL_NORM_SLANEY) BAD("norm %d is not none or slaney", (int)p->mel_norm);
    if (p->power != 1 && p->power != 2) BAD("power %d must be 1 (magnitude) or 2 (power)", p->power);
    if ((unsigned)p->scale > FRONTEND_SCALE_LINEAR) BAD("scale %d is not a known scale", (int)p->scale);
    if (p->scale == FRONTEND_SCALE_A_WEIGHTED_DB_THEN_MEL && p->power != 2)
        BAD("power %d: scale a_weighted_db_then_mel needs power 2", p->power);
    /* The fast log needs normal floats: amin is where the spectrum is floored. */
    if (!(p->amin >= 1e-30 && p->amin <= 1.0)) BAD("amin %g must be in 1e-30..1", p->amin);
    if (!(p->top_db >= 0.0)) BAD("top_db %g must be at least 0 (0: none)", p->top_db);
    if (p->znorm != 0 && p->znorm != 1) BAD("znorm %d must be 0 or 1", p->znorm);
#undef BAD
    return STATUS_OK;
}

/* ----------------------------------------------------------------------------- front end */

struct frontend_work {
    const struct frontend *fe;
    float *scratch;   /* stft_scratch_floats() */
    float *rows;      /* (MEL_BLOCK, row_stride) a block of frames' spectra or weighted dB */
    float *block;     /* (K, MEL_BLOCK) the same, transposed for mel_bank_apply_block */
    long row_stride;  /* K rounded up to whole cache lines */
    float *spec;      /* (cap_frames, K) the clip's power spectrogram (A-weighted scale only) */
    long cap_frames;
};

struct frontend {
    struct frontend_params p;
    struct stft *stft;
    struct mel_bank *mel;
    int n_bins;                     /* K */
    float *a_weight;                /* (K) A-weighting in dB of each FFT bin, or NULL */
    pthread_mutex_t pool_lock;      /* guards pool during frontend_compute_batch */
    int n_pool;
    struct frontend_work **pool;    /* (n_pool) workspaces for batch threads */
};

int frontend_create(struct frontend **out, const struct frontend_params *p)
{
    *out = NULL;
    int st = frontend_params_validate(p);
    if (st) return st;
    struct frontend *fe = mem_calloc(1, sizeof *fe);
    if (!fe) return STATUS_NOMEM;
    fe->p = *p;
    pthread_mutex_init(&fe->pool_lock, NULL);
    fe->n_bins = p->n_fft / 2 + 1;
    st = stft_create(&fe->stft, p->n_fft, p->hop, p->win_length);
    if (!st)
        st = mel_bank_create(&fe->mel, p->sample_rate_hz, p->n_fft, p->n_mels, p->fmin_hz,
                             p->fmax_hz, p->mel_scale, p->mel_norm);
    if (st) goto fail;
    if (p->scale == FRONTEND_SCALE_A_WEIGHTED_DB_THEN_MEL) {
        fe->a_weight = mem_alloc(sizeof(float) * (size_t)fe->n_bins);
        if (!fe->a_weight) {
            st = STATUS_NOMEM;
            goto fail;
        }
        /* ref: librosa.perceptual_weighting -> frequency_weighting("A", min_db=-80) at
         * librosa.fft_frequencies (k * sr / n_fft). */
        for (int k = 0; k < fe->n_bins; k++)
            fe->a_weight[k] = (float)scale_a_weighting((double)k * p->sample_rate_hz / p->n_fft, -80.0);
    }
    /* ref: librosa.filters.mel warns about empty filters and keeps them (all-zero rows). */
    if (mel_bank_empty(fe->mel))
        log_warn("front end '%s': %d of %d mel filters are empty (n_mels too large for n_fft %d)",
                 p->preset, mel_bank_empty(fe->mel), p->n_mels, p->n_fft);
    *out = fe;
    return STATUS_OK;
fail:
    frontend_destroy(fe);
    return status_prefix(st, "front end '%s'", p->preset);
}

void frontend_destroy(struct frontend *fe)
{
    if (!fe) return;
    for (int i = 0; i < fe->n_pool; i++) frontend_work_destroy(fe->pool[i]);
    mem_free(fe->pool);
    pthread_mutex_destroy(&fe->pool_lock);
    stft_destroy(fe->stft);
    mel_bank_destroy(fe->mel);
    mem_free(fe->a_weight);
    mem_free(fe);
}

const struct frontend_params *frontend_get_params(const struct frontend *fe)
{
    return &fe->p;
}

long frontend_frames(const struct frontend *fe, long n_samples)
{
    return stft_frames(fe->stft, n_samples);
}

long frontend_min_samples(const struct frontend *fe)
{
    return fe->p.n_fft / 2 + 1;
}

int frontend_work_create(struct frontend_work **out, const struct frontend *fe)
{
    *out = NULL;
    struct frontend_work *w = mem_calloc(1, sizeof *w);
    if (!w) return STATUS_NOMEM;
    w->fe = fe;
    w->row_stride = (fe->n_bins + 15) / 16 * 16;
    w->scratch = mem_alloc(sizeof(float) * stft_scratch_floats(fe->stft));
    w->rows = mem_calloc((size_t)(MEL_BLOCK * w->row_stride), sizeof(float));
    w->block = mem_alloc(sizeof(float) * MEL_BLOCK * (size_t)fe->n_bins);
    if (!w->scratch || !w->rows || !w->block) {
        frontend_work_destroy(w);
        return STATUS_NOMEM;
    }
    *out = w;
    return STATUS_OK;
}

void frontend_work_destroy(struct frontend_work *w)
{
    if (!w) return;
    mem_free(w->scratch);
    mem_free(w->rows);
    mem_free(w->block);
    mem_free(w->spec);
    mem_free(w);
}

/* Make room for a clip of n_t frames (only the A-weighted scale keeps the spectrogram). */
static int work_reserve(struct frontend_work *w, long n_t)
{
    const struct frontend *fe = w->fe;
    if (fe->p.scale != FRONTEND_SCALE_A_WEIGHTED_DB_THEN_MEL || n_t <= w->cap_frames) return 0;
    size_t n = mem_mul((size_t)n_t, sizeof(float) * (size_t)fe->n_bins);
    float *spec = n ? mem_alloc(n) : NULL;
    if (!spec) return STATUS_NOMEM;
    mem_free(w->spec);
    w->spec = spec;
    w->cap_frames = n_t;
    return STATUS_OK;
}

/* The mel product of the n_valid frames in w->rows plus offset[k] (NULL: none), into
 * columns t0.. of y (F, T): the rows are transposed to bin-major once so the filterbank
 * works on 8 frames per instruction. Rows past n_valid hold stale but finite values (the
 * rows start zeroed); their outputs are not stored. */
static void mel_block(const struct frontend *fe, struct frontend_work *w, const float *offset,
                      int n_valid, float *y, long t0, long n_t)
{
    int n_k = fe->n_bins;
    long stride = w->row_stride;
    const float *rows = w->rows;
    float *block = w->block;
    if (offset)
        for (int k = 0; k < n_k; k++)
            for (int i = 0; i < MEL_BLOCK; i++)
                block[k * MEL_BLOCK + i] = rows[i * stride + k] + offset[k];
    else
        for (int k = 0; k < n_k; k++)
            for (int i = 0; i < MEL_BLOCK; i++) block[k * MEL_BLOCK + i] = rows[i * stride + k];
    mel_bank_apply_block(fe->mel, block, y + t0, n_t, n_valid);
}

/* cpjku: A-weighted dB of every bin (top_db over the clip), then the mel filterbank. */
static void compute_a_weighted(const struct frontend *fe, struct frontend_work *w,
                               const float *x, long n_samples, long n_t, float *y)
{
    int n_k = fe->n_bins;
    float p_max = 0.0f;
    for (long t = 0; t < n_t; t++) {
        float m = stft_frame_spectrum(fe->stft, x, n_samples, t, 2, w->spec + t * n_k, w->scratch);
        p_max = m > p_max ? m : p_max;
    }
    /* ref: librosa.power_to_db: max(db, db.max() - top_db) with db = 10 log10(max(P, amin));
     * the dB floor is a power floor because log10 is monotonic. */
    double floor = fe->p.amin;
    if (fe->p.top_db > 0.0) {
        double top = (p_max > fe->p.amin ? p_max : fe->p.amin) * pow(10.0, -fe->p.top_db / 10.0);
        floor = top > floor ? top : floor;
    }
    for (long t0 = 0; t0 < n_t; t0 += MEL_BLOCK) {
        int n_valid = n_t - t0 < MEL_BLOCK ? (int)(n_t - t0) : MEL_BLOCK;
        for (int i = 0; i < n_valid; i++)
            scale_db(n_k, w->rows + i * w->row_stride, w->spec + (t0 + i) * n_k, (float)floor,
                     10.0f);
        /* ref: librosa.perceptual_weighting: A-weight (dB) + power_to_db, per FFT bin. */
        mel_block(fe, w, fe->a_weight, n_valid, y, t0, n_t);
    }
}

int frontend_compute(const struct frontend *fe, struct frontend_work *w, const float *x,
                     long n_samples, float *y)
{
    CHECK(w && w->fe == fe);
    int st = stft_check_length(fe->stft, n_samples);
    if (st) return st;
    long n_t = frontend_frames(fe, n_samples);
    if ((st = work_reserve(w, n_t))) return st;
    const struct frontend_params *p = &fe->p;
    if (p->scale == FRONTEND_SCALE_A_WEIGHTED_DB_THEN_MEL) {
        compute_a_weighted(fe, w, x, n_samples, n_t, y);
        return STATUS_OK;
    }
    for (long t0 = 0; t0 < n_t; t0 += MEL_BLOCK) {
        int n_valid = n_t - t0 < MEL_BLOCK ? (int)(n_t - t0) : MEL_BLOCK;
        for (int i = 0; i < n_valid; i++)
            stft_frame_spectrum(fe->stft, x, n_samples, t0 + i, p->power,
                                w->rows + i * w->row_stride, w->scratch);
        mel_block(fe, w, NULL, n_valid, y, t0, n_t);
    }
    if (p->scale == FRONTEND_SCALE_DB) {
        long n = (long)p->n_mels * n_t;
        /* ref: librosa.power_to_db (10) / amplitude_to_db (20), ref 1, amin, top_db. */
        float top = scale_db(n, y, y, (float)p->amin, p->power == 2 ? 10.0f : 20.0f);
        if (p->top_db > 0.0) scale_floor(n, y, top - (float)p->top_db);
    }
    return STATUS_OK;
}

int frontend_compute_batch(struct frontend *fe, int n_clips, const float *const *x,
                           const long *n_samples, float *const *y)
{
    long max_t = 0;
    for (int i = 0; i < n_clips; i++) {
        int st = stft_check_length(fe->stft, n_samples[i]);
        if (st) return status_prefix(st, "clip %d", i);
        long n_t = frontend_frames(fe, n_samples[i]);
        max_t = n_t > max_t ? n_t : max_t;
    }
    if (n_clips <= 0) return STATUS_OK;
    int n_threads = threads_get() < n_clips ? threads_get() : n_clips;
    int st = STATUS_OK;
    pthread_mutex_lock(&fe->pool_lock);
    if (fe->n_pool < n_threads) {
        struct frontend_work **pool = mem_calloc((size_t)n_threads, sizeof *pool);
        if (!pool) {
            st = STATUS_NOMEM;
            goto done;
        }
        for (int i = 0; i < fe->n_pool; i++) pool[i] = fe->pool[i];
        mem_free(fe->pool);
        fe->pool = pool;
        for (; fe->n_pool < n_threads; fe->n_pool++)
            if ((st = frontend_work_create(&fe->pool[fe->n_pool], fe))) goto done;
    }
    /* Size every workspace before the parallel region, so the workers cannot fail. */
    for (int i = 0; i < n_threads; i++)
        if ((st = work_reserve(fe->pool[i], max_t))) goto done;
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
    for (int i = 0; i < n_clips; i++) {
        int rc = frontend_compute(fe, fe->pool[omp_get_thread_num()], x[i], n_samples[i], y[i]);
        CHECK(rc == STATUS_OK);
    }
done:
    pthread_mutex_unlock(&fe->pool_lock);
    return st;
}
