/* listen.c: ring -> mono -> front-end rate -> incremental features -> model -> smoothed
 * probabilities (see listen.h).
 *
 * Key idea: the reader never waits on the producer. It drains whatever the ring holds (at
 * most a chunk at a time), converts and appends it, then classifies every window that is
 * now complete (or only the newest, when live and behind), and sleeps a few milliseconds
 * only when the ring is empty. Everything is allocated before the loop; a window costs the
 * new frames of the front end, its edge frames, one forward pass and a softmax.
 *
 * ref: predict.c (the window as a clip of its own, basin.norm, tiling a short clip, the
 *      model checks), DESIGN.md section 7 (the ring, cancellation at a safe point).
 */
#include "basin/train/listen.h"

#include <math.h>
#include <string.h>
#include <time.h>

#include "basin/audio/ring.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/dsp/frontend.h"
#include "basin/dsp/frontend_stream.h"
#include "basin/dsp/resample_stream.h"
#include "basin/dsp/znorm.h"
#include "basin/model/model.h"
#include "basin/model/predict.h"
#include "basin/train/pipeline.h"
#include "basin/train/predict.h"

#define CHUNK 4096          /* ring frames read at a time */
#define MAX_STAMPS 8192

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Everything listen_run allocates. */
struct listener {
    struct frontend_params fp;
    int C, F, M, rate;
    long L, H, T, first_n;
    struct resample_stream *rs;
    struct frontend_stream *fs;
    struct frontend *fe;            /* partial windows: the tiled audio as one clip */
    struct frontend_work *work;
    struct predictor *pr;
    float *rd, *mono, *conv, *feat, *x, *probs, *smooth, *tile;
    long conv_cap;
    struct ring_stamp *stamps;      /* ring writes not yet behind the newest window, in order */
    int n_stamps;
};

static void listener_free(struct listener *l)
{
    resample_stream_destroy(l->rs);
    frontend_stream_destroy(l->fs);
    frontend_work_destroy(l->work);
    frontend_destroy(l->fe);
    predictor_destroy(l->pr);
    float *bufs[] = {l->rd, l->mono, l->conv, l->feat, l->x, l->probs, l->smooth, l->tile};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) mem_free(bufs[i]);
    mem_free(l->stamps);
}

/* The options against the model, as predict.c's resolve does for a file. */
static int setup(struct listener *l, struct model *m, const struct ring *ring, const struct listen_opts *o)
{
    if (!(o->input_rate_hz >= 1000 && o->input_rate_hz <= 768000))
        return status_set(STATUS_INVALID, "listen: input rate %g Hz (1000..768000)", o->input_rate_hz);
    if (!(o->window_s >= 0 && o->window_s <= 3600)) return status_set(STATUS_INVALID, "listen: window %g s (0..3600)", o->window_s);
    if (!(o->hop_s >= 0 && o->hop_s <= 3600)) return status_set(STATUS_INVALID, "listen: hop %g s (0..3600)", o->hop_s);
    if (!(o->first_s >= 0) || isnan(o->smooth_s) || o->max_windows < 0 || isnan(o->stall_s) || o->poll_ms < 0)
        return status_set(STATUS_INVALID, "listen: bad options");
    int s;
    if (o->frontend) l->fp = *o->frontend;
    else if ((s = pipeline_model_frontend(m, &l->fp))) return s;
    const struct frontend_params *p = &l->fp;
    l->C = m->cfg.in_ch, l->F = p->n_mels, l->M = m->cfg.classes, l->rate = p->sample_rate_hz;
    if (m->cfg.arch != ARCH_CPRESNET && m->cfg.mels != l->F)
        return status_set(STATUS_MISMATCH, "the model normalises %d mel bins (mels=%d), the %s front end gives %d",
                          m->cfg.mels, m->cfg.mels, p->preset, l->F);
    if (m->n_norm && m->n_norm != l->F)
        return status_set(STATUS_MISMATCH, "the model's normalisation (basin.norm) has %d bins, the %s front end gives %d",
                          m->n_norm, p->preset, l->F);
    if (o->window_s > 0) l->L = lround(o->window_s * l->rate);
    else if ((s = predict_window(m, p, &l->L, NULL))) return s;
    const long min = p->n_fft / 2 + 1;
    if (l->L < min)
        return status_set(STATUS_INVALID, "a window of %ld samples (%.4f s) is below the %s front end's minimum of %ld",
                          l->L, (double)l->L / l->rate, p->preset, min);
    l->T = 1 + l->L / p->hop;
    int fmin, tmin;
    if (!model_min_input(&m->cfg, &fmin, &tmin) && (l->T < tmin || l->F < fmin))
        return status_set(STATUS_MISMATCH, "a window of %.3f s gives %d x %ld features; the model takes at least %d x %d",
                          (double)l->L / l->rate, l->F, l->T, fmin, tmin);
    long frames = lround((o->hop_s > 0 ? o->hop_s : LISTEN_DEFAULT_HOP_S) * l->rate / p->hop);
    l->H = (frames > 0 ? frames : 1) * p->hop;
    if (l->H > l->L)
        return status_set(STATUS_INVALID, "hop %.3f s is longer than the window (%.3f s): windows would skip audio",
                          (double)l->H / l->rate, (double)l->L / l->rate);
    double first = o->first_s > 0 ? o->first_s : LISTEN_DEFAULT_FIRST_S;
    l->first_n = first * l->rate >= (double)l->L ? l->L : lround(first * l->rate);
    if (l->first_n < min) l->first_n = min;
    const int rc = ring_channels(ring);
    if ((s = resample_stream_create(&l->rs, o->input_rate_hz, l->rate))) return s;
    l->conv_cap = resample_stream_max_out(l->rs, CHUNK) + 4096; /* grown in the loop if need be */
    const long keep = l->L + l->H + 2 * l->conv_cap + 65536;
    if ((s = frontend_stream_create(&l->fs, p, l->L, keep))) return s;
    if ((s = frontend_create(&l->fe, p)) || (s = frontend_work_create(&l->work, l->fe))) return s;
    if ((s = predictor_create(&l->pr, m, 1, l->C, l->F, (int)l->T))) return s;
    const size_t FT = (size_t)l->F * (size_t)l->T;
    l->rd = mem_alloc(sizeof(float) * CHUNK * (size_t)rc);
    l->mono = mem_alloc(sizeof(float) * CHUNK);
    l->conv = mem_alloc(sizeof(float) * (size_t)l->conv_cap);
    l->feat = mem_alloc(sizeof(float) * FT);
    l->x = mem_alloc(sizeof(float) * FT * (size_t)l->C);
    l->probs = mem_alloc(sizeof(float) * (size_t)l->M);
    l->smooth = mem_alloc(sizeof(float) * (size_t)l->M);
    l->tile = mem_alloc(sizeof(float) * (size_t)l->L);
    l->stamps = mem_alloc(sizeof *l->stamps * MAX_STAMPS);
    if (!l->rd || !l->mono || !l->conv || !l->feat || !l->x || !l->probs || !l->smooth || !l->tile || !l->stamps)
        return STATUS_NOMEM;
    return STATUS_OK;
}

/* Keep the ring's new stamps (oldest dropped when there are too many). */
static void take_stamps(struct listener *l, struct ring *ring)
{
    for (;;) {
        if (l->n_stamps > MAX_STAMPS - 256) {
            memmove(l->stamps, l->stamps + MAX_STAMPS / 2, sizeof *l->stamps * (size_t)(l->n_stamps - MAX_STAMPS / 2));
            l->n_stamps -= MAX_STAMPS / 2;
        }
        int k = ring_take_stamps(ring, l->stamps + l->n_stamps, 256);
        l->n_stamps += k;
        if (k < 256) return;
    }
}

/* When ring frame f entered the ring (the write that brought it), in seconds; < 0 when no
 * stamp tells. Stamps before it are dropped (windows only move forward). */
static double entered(struct listener *l, int64_t f)
{
    int i = 0;
    while (i < l->n_stamps && l->stamps[i].end <= f) i++;
    if (i == l->n_stamps || (i == 0 && l->stamps[0].end - f > CHUNK * 64)) return -1;
    double t = l->stamps[i].t_ns * 1e-9;
    if (i > 1) {
        memmove(l->stamps, l->stamps + (i - 1), sizeof *l->stamps * (size_t)(l->n_stamps - (i - 1)));
        l->n_stamps -= i - 1;
    }
    return t;
}

/* The model's probabilities for the features in l->feat (F, T): basin.norm, channels. */
static int classify(struct listener *l, const struct model *m)
{
    const size_t FT = (size_t)l->F * (size_t)l->T;
    memcpy(l->x, l->feat, sizeof(float) * FT);
    if (m->n_norm) znorm_apply(l->F, l->T, l->x, m->norm_mean, m->norm_std);
    for (int c = 1; c < l->C; c++) memcpy(l->x + c * FT, l->x, sizeof(float) * FT); /* a mono input, as features.h */
    return predictor_probs(l->pr, 1, l->x, l->probs, NULL);
}

int listen_run(struct model *m, struct ring *ring, const struct listen_opts *o, listen_fn on_update,
               void *user, const struct progress *p, struct listen_stats *stats)
{
    struct listen_stats none;
    if (!stats) stats = &none;
    memset(stats, 0, sizeof *stats);
    struct listener l;
    memset(&l, 0, sizeof l);
    int s = setup(&l, m, ring, o);
    if (s) {
        listener_free(&l);
        return s;
    }
    const int rc = ring_channels(ring), M = l.M;
    const double rin = o->input_rate_hz, stall = o->stall_s == 0 ? LISTEN_DEFAULT_STALL_S : o->stall_s;
    const double smooth_s = o->smooth_s == 0 ? LISTEN_DEFAULT_SMOOTH_S : o->smooth_s;
    const double alpha = smooth_s > 0 ? exp(-((double)l.H / l.rate) / smooth_s) : 0.0;
    const int poll = o->poll_ms > 0 ? o->poll_ms : 5;
    stats->hop_s = (double)l.H / l.rate, stats->window_s = (double)l.L / l.rate, stats->rate_hz = l.rate;
    const double wall0 = clock_s(CLOCK_MONOTONIC), cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    double idle_since = wall0, sum2 = 0, compute_sum = 0, latency_sum = 0;
    long n_level = 0, next_partial = l.first_n < l.L ? l.first_n : l.L, next_full = 0;
    int64_t frames_read = 0;
    while (s == STATUS_OK) {
        if (!progress_report(p, "listen", stats->windows, o->max_windows)) {
            s = status_set(STATUS_CANCELLED, "listen: stopped after %ld windows", stats->windows);
            break;
        }
        long n = ring_read(ring, l.rd, CHUNK);
        take_stamps(&l, ring);
        if (n == 0) {
            if (ring_closed(ring) && ring_available(ring) == 0) {
                stats->input_ended = 1;
                break;
            }
            double now = clock_s(CLOCK_MONOTONIC);
            if (stall > 0 && now - idle_since > stall) {
                s = status_set(STATUS_DEVICE, "no audio from the input for %.1f s", now - idle_since);
                break;
            }
            sleep_ms(poll);
            continue;
        }
        idle_since = clock_s(CLOCK_MONOTONIC);
        frames_read += n;
        const float *mono = l.rd;
        if (rc > 1) { /* the mean over channels, summed in order, as audio_file_to_mono */
            for (long i = 0; i < n; i++) {
                float sum = 0.0f;
                for (int c = 0; c < rc; c++) sum += l.rd[i * rc + c];
                l.mono[i] = sum / (float)rc;
            }
            mono = l.mono;
        }
        for (long i = 0; i < n; i++) sum2 += (double)mono[i] * mono[i];
        n_level += n;
        long n_out = 0, need = resample_stream_max_out(l.rs, n);
        if (need > l.conv_cap) { /* the resampler's hold-back grew (once, early on) */
            float *conv = mem_alloc(sizeof(float) * (size_t)need);
            if (!conv) {
                s = STATUS_NOMEM;
                break;
            }
            mem_free(l.conv);
            l.conv = conv, l.conv_cap = need;
        }
        if ((s = resample_stream_process(l.rs, mono, n, l.conv, l.conv_cap, &n_out))) break;
        if ((s = frontend_stream_push(l.fs, l.conv, n_out))) break;
        /* classify what is complete now */
        while (s == STATUS_OK) {
            const long total = frontend_stream_total(l.fs);
            long start = 0, end;
            int partial = 0;
            if (next_partial < l.L && (o->every_window || total < l.L)) {
                if (total < next_partial) break;
                end = o->every_window ? next_partial : total;
                partial = 1;
                next_partial = end + l.H;
            } else {
                next_partial = l.L;
                if (total < next_full + l.L) break;
                start = next_full;
                if (!o->every_window && (total - l.L) / l.H * l.H > start) start = (total - l.L) / l.H * l.H;
                end = start + l.L;
                next_full = start + l.H;
            }
            const double t0 = clock_s(CLOCK_MONOTONIC);
            if (partial) { /* the audio so far, tiled to L, as one clip (predict's short clip) */
                if ((s = frontend_stream_samples(l.fs, 0, end, l.tile))) break;
                for (long i = end; i < l.L; i++) l.tile[i] = l.tile[i % end];
                s = frontend_compute(l.fe, l.work, l.tile, l.L, l.feat);
            } else {
                s = frontend_stream_window(l.fs, start, l.feat);
            }
            if (!s) s = classify(&l, m);
            if (s) break;
            const double t1 = clock_s(CLOCK_MONOTONIC);
            for (int k = 0; k < M; k++)
                l.smooth[k] = stats->windows == 0 ? l.probs[k] : (float)(alpha * l.smooth[k] + (1 - alpha) * l.probs[k]);
            int top = 0;
            for (int k = 1; k < M; k++)
                if (l.smooth[k] > l.smooth[top]) top = k;
            /* the ring frame holding the window's last sample (resampled time) */
            double when = entered(&l, (int64_t)ceil((double)end * rin / l.rate) - 1);
            struct listen_update u = {
                .index = stats->windows, .partial = partial, .n_classes = M, .probs = l.probs, .smoothed = l.smooth,
                .top = top, .features = l.feat, .n_mels = l.F, .n_frames = (int)l.T, .frontend = &l.fp,
                .window_start = partial ? 0 : start, .window_end = end, .heard_s = frames_read / rin,
                .latency_s = when >= 0 ? t1 - when : -1, .compute_s = t1 - t0, .hop_s = stats->hop_s,
                .window_s = stats->window_s, .level_db = n_level ? 10 * log10(sum2 / n_level) : -INFINITY,
                .cpu = t1 > wall0 ? (clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / (t1 - wall0) : 0,
                .dropped = (long)ring_dropped(ring), .overruns = (long)ring_overruns(ring),
            };
            sum2 = 0, n_level = 0;
            stats->windows++;
            compute_sum += u.compute_s;
            if (u.compute_s > stats->compute_max_s) stats->compute_max_s = u.compute_s;
            if (u.latency_s >= 0) {
                latency_sum += u.latency_s;
                stats->latency_n++;
                if (u.latency_s > stats->latency_max_s) stats->latency_max_s = u.latency_s;
            }
            int go = on_update ? on_update(user, &u) : 1;
            if (!go || (o->max_windows > 0 && stats->windows >= o->max_windows)) goto done;
            if (!progress_report(p, "listen", stats->windows, o->max_windows)) { /* a window is a safe point */
                s = status_set(STATUS_CANCELLED, "listen: stopped after %ld windows", stats->windows);
                goto done;
            }
        }
    }
done:;
    const double wall = clock_s(CLOCK_MONOTONIC) - wall0;
    stats->heard_s = frames_read / rin;
    stats->wall_s = wall;
    stats->cpu = wall > 0 ? (clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / wall : 0;
    stats->compute_mean_s = stats->windows ? compute_sum / stats->windows : 0;
    stats->latency_mean_s = stats->latency_n ? latency_sum / stats->latency_n : 0;
    stats->resampler_delay_s = resample_stream_delay(l.rs) / l.rate;
    stats->dropped = (long)ring_dropped(ring), stats->overruns = (long)ring_overruns(ring);
    listener_free(&l);
    return s;
}
