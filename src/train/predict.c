/* predict.c: one clip -> class probabilities through the model's front end, normalisation,
 * windows and optional test-time augmentation (see predict.h).
 *
 * The clip is brought to the model's channels and the front end's rate once; each window
 * is then an ordinary clip for features_clip (the training path: same channel rule, same
 * repeat padding), normalised with basin.norm, and its SpecAugment draws are queued into
 * fixed-size batches for one eval-mode predictor, so memory stays (batch + 1) windows of
 * features whatever the clip's length.
 */
#include "basin/train/predict.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "basin/audio/audio_file.h"
#include "basin/core/json.h"
#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/data/batch.h"
#include "basin/data/features.h"
#include "basin/dsp/frontend.h"
#include "basin/dsp/resample.h"
#include "basin/dsp/znorm.h"
#include "basin/model/model.h"
#include "basin/model/predict.h"
#include "basin/train/pipeline.h"

/* ref: mission-anchors 4.4: SP4ASC's specAugment [128, 2, 32, 2] on (431 frames, 256 mels). */
#define SP4ASC_TIME_WIDTH 128
#define SP4ASC_FRAMES 431
#define SP4ASC_FREQ_WIDTH 32
#define SP4ASC_MELS 256
#define SP4ASC_STRIPES 2

/* Longest window basin.input may ask for: an hour at the front end's rate. */
#define PREDICT_MAX_WINDOW_S 3600.0
/* Most windows one clip may be cut into (a day of audio in 0.1 s hops). */
#define PREDICT_MAX_WINDOWS 1000000L

void predict_result_destroy(struct predict_result *r)
{
    if (!r) return;
    mem_free(r->probs);
    mem_free(r->window_probs);
    mem_free(r->window_start);
    mem_free(r);
}

/* ----------------------------------------------------------------------------- basin.input */

int predict_input_set(struct model *m, const struct frontend_params *p, long n_samples)
{
    CHECK(n_samples > 0 && p->hop > 0 && p->sample_rate_hz > 0);
    struct json *o = json_create_object();
    char *text = NULL;
    int s = o ? STATUS_OK : STATUS_NOMEM;
    if (!s) s = json_set_int(o, "sr", p->sample_rate_hz);
    if (!s) s = json_set_int(o, "samples", n_samples);
    if (!s) s = json_set_int(o, "frames", 1 + n_samples / p->hop);   /* frontend_frames */
    if (!s) s = json_set_double(o, "seconds", (double)n_samples / p->sample_rate_hz);
    if (!s) s = json_dump(o, &text);
    json_destroy(o);
    if (s) return s;
    mem_free(m->input);
    m->input = text;
    return STATUS_OK;
}

int predict_window(const struct model *m, const struct frontend_params *p, long *n_samples,
                   enum predict_window_source *from)
{
    const double rate = p->sample_rate_hz;
    if (!m->input) {
        *n_samples = lround(PREDICT_DEFAULT_SECONDS * rate);
        if (from) *from = PREDICT_WINDOW_DEFAULT;
        return STATUS_OK;
    }
    struct json *j;
    int s = json_parse_max(m->input, "basin.input", 16, &j);
    if (s) return s;
    double seconds = -1, samples = -1, sr = -1, frames = -1;
    if (json_find(j, "samples") && (s = json_get_double(j, "samples", &samples))) goto done;
    if (json_find(j, "sr") && (s = json_get_double(j, "sr", &sr))) goto done;
    if (json_find(j, "seconds") && (s = json_get_double(j, "seconds", &seconds))) goto done;
    if (json_find(j, "frames") && (s = json_get_double(j, "frames", &frames))) goto done;
    if (samples > 0 && sr > 0) seconds = samples / sr;
    else if (!(seconds > 0) && frames >= 1) seconds = (frames - 1) * p->hop / rate;  /* T = 1 + n / hop */
    if (!(seconds > 0 && seconds <= PREDICT_MAX_WINDOW_S)) {
        s = status_set(STATUS_FORMAT, "basin.input: give the training clip length as samples and sr, "
                       "seconds, or frames (0 < length <= %g s)", PREDICT_MAX_WINDOW_S);
        goto done;
    }
    /* samples at the front end's own rate are taken as they are, not through seconds */
    *n_samples = samples > 0 && sr == rate ? (long)samples : lround(seconds * rate);
    if (*n_samples < 1) *n_samples = 1;
    if (from) *from = PREDICT_WINDOW_MODEL;
done:
    json_destroy(j);
    return s;
}

/* ----------------------------------------------------------------------------- top-k, labels */

void predict_top(const float *probs, int m, int k, int *idx)
{
    CHECK(k >= 0 && k <= m);
    /* selection: k is small (top 3, top 10) */
    for (int i = 0; i < k; i++) {
        int best = -1;
        for (int c = 0; c < m; c++) {
            int taken = 0;
            for (int j = 0; j < i && !taken; j++) taken = idx[j] == c;
            if (!taken && (best < 0 || probs[c] > probs[best])) best = c;
        }
        idx[i] = best;
    }
}

const char *predict_label(const struct model *m, int k, char *buf, size_t n)
{
    if (m->labels && k < m->n_labels) return m->labels[k];
    snprintf(buf, n, "class %d", k);
    return buf;
}

/* ----------------------------------------------------------------------------- the clip */

/* af with features.h's channel rule for a model of in_ch channels, resampled to rate: *y
 * (n_src, *n) planar, n_src 1 or in_ch (a mono file for a multi-channel model stays mono;
 * features_clip duplicates it). */
static int clip_convert(const struct audio_file *af, int in_ch, int rate, struct audio_file *y)
{
    audio_file_init(y);
    const long n = af->n_frames;
    int n_src;
    const float *src;
    float *mono;
    int st = features_channels(af, in_ch, &src, &n_src, &mono);
    if (st) return st;
    long cap = af->sample_rate_hz == rate ? n : resample_max_frames(n, af->sample_rate_hz, rate);
    int s = audio_file_alloc(y, n_src, cap > 0 ? cap : 1, rate);
    if (!s && af->sample_rate_hz == rate) {
        memcpy(y->x, src, sizeof *src * (size_t)n * (size_t)n_src);
    } else if (!s) {
        long n_out = 0;
        s = resample(src, n, n_src, RESAMPLE_PLANAR, af->sample_rate_hz, rate, y->x, cap, &n_out);
        if (!s && n_out <= 0) s = status_set(STATUS_FORMAT, "no samples after resampling");
        y->n_frames = n_out;   /* planar output is packed at n_out */
    }
    mem_free(mono);
    if (s) audio_file_fini(y);
    return s;
}

/* Window starts for a clip of n samples, windows of len, hop: see predict.h. Returns W;
 * starts may be NULL (count only). */
static int window_starts(long n, long len, long hop, long *starts)
{
    if (n <= len) {
        if (starts) starts[0] = 0;
        return 1;
    }
    int w = 0;
    long s = 0;
    for (; s + len <= n; s += hop, w++)
        if (starts) starts[w] = s;
    long last_end = (long)(w - 1) * hop + len;
    if (last_end < n) {
        if (starts) starts[w] = n - len;
        w++;
    }
    return w;
}

/* One TTA draw on a window x (C, F, T): SpecAugment stripes set to fill[f] (per mel bin).
 * batch_spec_augment sets stripes to one value; NaN marks them (features are finite), then
 * each marked cell gets its bin's value. */
static void augment(float *x, int c, int f, int t, const struct batch_opts *bo, struct rng *r,
                    const float *fill)
{
    batch_spec_augment(x, c, f, t, bo, r);
    for (int ch = 0; ch < c; ch++)
        for (int k = 0; k < f; k++) {
            float *row = x + ((long)ch * f + k) * t;
            for (int j = 0; j < t; j++)
                if (isnan(row[j])) row[j] = fill[k];
        }
}

static int check_opts(const struct predict_opts *o)
{
    if (!(o->window_s >= 0 && o->window_s <= PREDICT_MAX_WINDOW_S))
        return status_set(STATUS_INVALID, "window %g s: 0 (the model's) or up to %g s", o->window_s,
                          PREDICT_MAX_WINDOW_S);
    if (!(o->hop_s >= 0 && o->hop_s <= PREDICT_MAX_WINDOW_S))
        return status_set(STATUS_INVALID, "hop %g s: 0 (the window's length) or up to %g s", o->hop_s,
                          PREDICT_MAX_WINDOW_S);
    if (o->tta < 0 || o->tta > 100000) return status_set(STATUS_INVALID, "tta %d: 0..100000 draws", o->tta);
    if (o->batch < 0) return status_set(STATUS_INVALID, "batch %d: must be >= 0", o->batch);
    if (o->time_stripes < 0 || o->time_width < 0 || o->freq_stripes < 0 || o->freq_width < 0)
        return status_set(STATUS_INVALID, "tta stripes and widths must be >= 0");
    return STATUS_OK;
}

static int max_i(int a, int b)
{
    return a > b ? a : b;
}

/* Everything predict needs to know before any audio is touched, every check included: the
 * front end, the window L and hop H in samples at its rate and where L came from. */
static int resolve(const struct model *m, const struct predict_opts *o, struct frontend_params *fp, long *L,
                   long *H, enum predict_window_source *from)
{
    int s = check_opts(o);
    if (s) return s;
    if (o->frontend) *fp = *o->frontend;
    else if ((s = pipeline_model_frontend(m, fp))) return s;
    const int F = fp->n_mels, rate = fp->sample_rate_hz;
    if (m->cfg.arch != ARCH_CPRESNET && m->cfg.mels != F)
        return status_set(STATUS_MISMATCH, "the model normalises %d mel bins (mels=%d), the %s front end "
                          "gives %d", m->cfg.mels, m->cfg.mels, fp->preset, F);
    if (m->n_norm && m->n_norm != F)
        return status_set(STATUS_MISMATCH, "the model's normalisation (basin.norm) has %d bins, the %s "
                          "front end gives %d", m->n_norm, fp->preset, F);
    *from = PREDICT_WINDOW_GIVEN;
    if (o->window_s > 0) *L = lround(o->window_s * rate);
    else if ((s = predict_window(m, fp, L, from))) return s;
    *H = o->hop_s > 0 ? lround(o->hop_s * rate) : *L;
    if (*H < 1) *H = 1;
    if (*H > *L)
        return status_set(STATUS_INVALID, "hop %.3f s is longer than the window (%.3f s): windows would "
                          "skip audio", (double)*H / rate, (double)*L / rate);
    const long min = fp->n_fft / 2 + 1;   /* frontend_min_samples: reflect padding */
    if (*L < min)
        return status_set(STATUS_INVALID, "a window of %ld samples (%.4f s) is below the %s front end's "
                          "minimum of %ld", *L, (double)*L / rate, fp->preset, min);
    int fmin, tmin;
    long t = 1 + *L / fp->hop;
    if (!model_min_input(&m->cfg, &fmin, &tmin) && t < tmin)
        return status_set(STATUS_MISMATCH, "a window of %.3f s gives %ld frames; the model takes at least %d",
                          (double)*L / rate, t, tmin);
    if (!model_min_input(&m->cfg, &fmin, &tmin) && F < fmin)
        return status_set(STATUS_MISMATCH, "the %s front end gives %d mel bins, the model needs at least %d",
                          fp->preset, F, fmin);
    return STATUS_OK;
}

int predict_clip(struct predict_result **out, struct model *m, const struct audio_file *af,
                 const struct predict_opts *o, const struct progress *p)
{
    *out = NULL;
    const struct predict_opts none = {0};
    if (!o) o = &none;
    struct frontend_params fp;
    long L = 0, H = 0;
    enum predict_window_source from;
    int s = resolve(m, o, &fp, &L, &H, &from);
    if (s) return s;
    const int C = m->cfg.in_ch, F = fp.n_mels, M = m->cfg.classes, rate = fp.sample_rate_hz;

    struct frontend *fe = NULL;
    struct frontend_work *work = NULL;
    struct predictor *pr = NULL;
    struct predict_result *r = NULL;
    struct audio_file clip, win;
    float *feat = NULL, *xb = NULL, *pb = NULL, *fill = NULL;
    int *slot_window = NULL;
    audio_file_init(&clip);
    audio_file_init(&win);
    if ((s = frontend_create(&fe, &fp))) goto fail;
    CHECK(L >= frontend_min_samples(fe) && frontend_frames(fe, L) == 1 + L / fp.hop);
    if ((s = frontend_work_create(&work, fe))) goto fail;
    if ((s = clip_convert(af, C, rate, &clip))) goto fail;

    const long n = clip.n_frames;
    if (n > L && (n - L) / H + 2 > PREDICT_MAX_WINDOWS) {
        s = status_set(STATUS_INVALID, "a hop of %.4f s cuts this %.1f s clip into more than %ld windows",
                       (double)H / rate, (double)n / rate, PREDICT_MAX_WINDOWS);
        goto fail;
    }
    const int W = window_starts(n, L, H, NULL);
    const int T = (int)frontend_frames(fe, L);
    const long per = (long)C * F * T;
    const int draws = o->tta > 0 ? o->tta : 1;
    const long K = (long)W * draws;                  /* forward inputs in all */
    const int B = (int)(K < (o->batch ? o->batch : 16) ? K : (o->batch ? o->batch : 16));
    if (!(r = mem_calloc(1, sizeof *r))) {
        s = STATUS_NOMEM;
        goto fail;
    }
    *r = (struct predict_result){
        .n_classes = M, .n_windows = W, .sample_rate_hz = rate, .n_samples = n, .window_samples = L,
        .hop_samples = H, .window_from = from, .tiled = n < L, .n_channels = C, .n_mels = F,
        .n_frames = T, .file_channels = af->n_channels, .file_rate_hz = af->sample_rate_hz,
        .tta = o->tta, .normalised = m->n_norm > 0,
    };
    r->probs = mem_calloc((size_t)M, sizeof *r->probs);
    r->window_probs = mem_calloc((size_t)W * M, sizeof *r->window_probs);
    r->window_start = mem_calloc((size_t)W, sizeof *r->window_start);
    feat = mem_alloc(sizeof *feat * (size_t)per);
    xb = mem_alloc(mem_mul((size_t)B, sizeof *xb * (size_t)per));
    pb = mem_alloc(sizeof *pb * (size_t)B * (size_t)M);
    fill = mem_calloc((size_t)F, sizeof *fill);
    slot_window = mem_alloc(sizeof *slot_window * (size_t)B);
    if (!r->probs || !r->window_probs || !r->window_start || !feat || !xb || !pb || !fill || !slot_window) {
        s = STATUS_NOMEM;
        goto fail;
    }
    window_starts(n, L, H, r->window_start);
    const long wlen = n < L ? n : L;
    if ((s = audio_file_alloc(&win, clip.n_channels, wlen, rate))) goto fail;

    struct batch_opts bo;
    batch_opts_default(&bo);
    if (o->tta > 0) {
        int tw = (int)lround((double)SP4ASC_TIME_WIDTH * T / SP4ASC_FRAMES);
        int fw = (int)lround((double)SP4ASC_FREQ_WIDTH * F / SP4ASC_MELS);
        int dflt_t = !o->time_stripes && !o->time_width, dflt_f = !o->freq_stripes && !o->freq_width;
        bo.time_stripes = dflt_t ? SP4ASC_STRIPES : o->time_stripes;
        bo.time_width = dflt_t ? max_i(tw, 1) : o->time_width;
        bo.freq_stripes = dflt_f ? SP4ASC_STRIPES : o->freq_stripes;
        bo.freq_width = dflt_f ? max_i(fw, 1) : o->freq_width;
        bo.specaug_value = NAN;   /* marks the stripes, see augment() */
        r->time_stripes = bo.time_stripes, r->time_width = bo.time_width;
        r->freq_stripes = bo.freq_stripes, r->freq_width = bo.freq_width;
    }
    if ((s = predictor_create(&pr, m, B, C, F, T))) goto fail;

    struct rng base;
    rng_seed(&base, o->seed);
    const struct features_opts fo = {.in_ch = C, .n_samples = L, .pad = FEATURES_PAD_REPEAT, .cache_dir = ""};
    int cur = -1, fill_n = 0;
    for (long k = 0; k < K; k++) {
        int w = (int)(k / draws), d = (int)(k % draws);
        if (w != cur) {
            /* the window as a clip of its own, then the model's normalisation */
            for (int ch = 0; ch < clip.n_channels; ch++)
                memcpy(audio_file_channel(&win, ch), audio_file_channel(&clip, ch) + r->window_start[w],
                       sizeof *win.x * (size_t)wlen);
            if ((s = features_clip(fe, work, &win, &fo, feat))) goto fail;
            if (m->n_norm)
                for (int ch = 0; ch < C; ch++)
                    znorm_apply(F, T, feat + (long)ch * F * T, m->norm_mean, m->norm_std);
            if (o->tta > 0 && !m->n_norm) {
                /* a stripe is the mean: each bin's over the window (over channels too) */
                for (int b = 0; b < F; b++) {
                    double sum = 0;
                    for (int ch = 0; ch < C; ch++)
                        for (int t = 0; t < T; t++) sum += feat[((long)ch * F + b) * T + t];
                    fill[b] = (float)(sum / ((double)C * T));
                }
            }
            cur = w;
        }
        float *x = xb + (long)fill_n * per;
        memcpy(x, feat, sizeof *x * (size_t)per);
        if (o->tta > 0) {
            struct rng rd = rng_split(&base, (uint64_t)w << 32 | (uint64_t)d);
            augment(x, C, F, T, &bo, &rd, fill);
        }
        slot_window[fill_n++] = w;
        if (fill_n == B || k == K - 1) {
            if ((s = predictor_probs(pr, fill_n, xb, pb, NULL))) goto fail;
            for (int i = 0; i < fill_n; i++)
                for (int c = 0; c < M; c++)
                    r->window_probs[(long)slot_window[i] * M + c] += pb[(long)i * M + c] / (float)draws;
            int done = (int)((k + 1) / draws);
            fill_n = 0;
            if ((W > 1 || K > B) && !progress_report(p, "predict", done, W)) {
                s = status_set(STATUS_CANCELLED, "predict: cancelled after %d of %d windows", done, W);
                goto fail;
            }
        }
    }
    for (int w = 0; w < W; w++)
        for (int c = 0; c < M; c++) r->probs[c] += r->window_probs[(long)w * M + c] / (float)W;
    *out = r;
    r = NULL;
fail:
    predict_result_destroy(r);
    predictor_destroy(pr);
    frontend_work_destroy(work);
    frontend_destroy(fe);
    audio_file_fini(&clip);
    audio_file_fini(&win);
    mem_free(feat);
    mem_free(xb);
    mem_free(pb);
    mem_free(fill);
    mem_free(slot_window);
    return s;
}

int predict_file(struct predict_result **out, struct model *m, const char *path,
                 const struct predict_opts *o, const struct progress *p)
{
    *out = NULL;
    /* the options and the model first: nothing is decoded for a call that cannot run */
    const struct predict_opts none = {0};
    struct frontend_params fp;
    long L = 0, H = 0;
    enum predict_window_source from;
    int s = resolve(m, o ? o : &none, &fp, &L, &H, &from);
    if (s) return s;
    struct audio_file af;
    s = audio_file_read(&af, path, NULL);
    if (s) return s;   /* audio_file's messages start with the path */
    s = predict_clip(out, m, &af, o, p);
    audio_file_fini(&af);
    if (s && s != STATUS_NOMEM && s != STATUS_CANCELLED) return status_prefix(s, "%s", path);
    return s;
}
