/* cmd_audio.c: clip, preset and spec: looking at sound before a model sees it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "basin/audio/audio_file.h"
#include "basin/core/status.h"
#include "basin/dsp/frontend.h"
#include "basin/dsp/mel.h"
#include "basin/dsp/resample.h"
#include "basin/model/model.h"
#include "basin/train/pipeline.h"
#include "commands.h"
#include "render.h"
#include "session.h"

int cmd_clip(struct app *a, int argc, char **argv)
{
    if (argc != 2) return app_fail(a, STATUS_INVALID, "usage: clip PATH");
    struct audio_file af;
    int status = audio_file_read(&af, argv[1], NULL);
    if (status) return app_fail(a, status, "%s", status_detail());
    audio_file_fini(&a->clip);
    a->clip = af;
    snprintf(a->clip_path, sizeof a->clip_path, "%s", argv[1]);
    double peak = 0, sum2 = 0;
    long n = (long)af.n_channels * af.n_frames;
    for (long i = 0; i < n; i++) {
        double v = fabs(af.x[i]);
        if (v > peak) peak = v;
        sum2 += v * v;
    }
    double rms = n ? sqrt(sum2 / n) : 0;
    struct audio_file_info info;
    const char *fmt = audio_file_probe(argv[1], &info) ? "" : info.format;
    char level[64];
    if (peak == 0) snprintf(level, sizeof level, "digital silence");
    else snprintf(level, sizeof level, "peak %.1f dBFS, rms %.1f dBFS", 20 * log10(peak), 20 * log10(rms));
    app_out(a, "%s: %d Hz, %d channel%s, %.3f s (%ld frames), %s%s%s\n", argv[1], af.sample_rate_hz,
            af.n_channels, af.n_channels == 1 ? "" : "s", (double)af.n_frames / af.sample_rate_hz,
            af.n_frames, level, *fmt ? ", " : "", fmt);
    return STATUS_OK;
}

/* What a front end's numbers are, for labels: "dB", "z-score", ... */
static const char *scale_words(const struct frontend_params *p)
{
    switch (p->scale) {
    case FRONTEND_SCALE_DB: return "dB";
    case FRONTEND_SCALE_A_WEIGHTED_DB_THEN_MEL: return "A-weighted dB, then mel";
    case FRONTEND_SCALE_LINEAR: return p->power == 2 ? "mel power" : "mel magnitude";
    }
    return "";
}

static void print_preset_row(struct app *a, const char *mark, const struct frontend_params *p)
{
    char range[32];
    snprintf(range, sizeof range, "%g-%g", p->fmin_hz, p->fmax_hz);
    app_out(a, "  %-3s%-10s %6d %6d %5d %5d  %-13s %s%s\n", mark, p->preset, p->sample_rate_hz, p->n_fft,
            p->hop, p->n_mels, range, scale_words(p), p->znorm ? ", per-bin z-norm" : "");
}

int cmd_preset(struct app *a, int argc, char **argv)
{
    if (argc > 2) return app_fail(a, STATUS_INVALID, "usage: preset [NAME]");
    if (argc == 2) {
        struct frontend_params p;
        if (frontend_preset(&p, argv[1])) return app_fail(a, STATUS_INVALID, "%s", status_detail());
        a->preset = p;
        a->preset_chosen = 1;
        app_out(a, "preset %s: %d Hz, n_fft %d, hop %d, %d mels %g-%g Hz, %s\n", p.preset, p.sample_rate_hz,
                p.n_fft, p.hop, p.n_mels, p.fmin_hz, p.fmax_hz, scale_words(&p));
        if (a->model) app_out(a, "(the loaded model keeps its own front end; new models take this one)\n");
        return STATUS_OK;
    }
    struct frontend_params mp;
    int has_model_fe = a->model && !pipeline_model_frontend(a->model, &mp);
    app_out(a, "  %-3s%-10s %6s %6s %5s %5s  %-13s %s\n", "", "preset", "Hz", "n_fft", "hop", "mels",
            "fmin-fmax Hz", "scale");
    for (const char *const *n = frontend_preset_names(); *n; n++) {
        struct frontend_params p;
        frontend_preset(&p, *n);
        int session = !strcmp(a->preset.preset, *n) && !frontend_params_diff(&a->preset, &p);
        int model = has_model_fe && !frontend_params_diff(&mp, &p);
        print_preset_row(a, session && model ? "*m" : session ? "*" : model ? "m" : "", &p);
    }
    int session_custom = 1, model_custom = has_model_fe;
    for (const char *const *n = frontend_preset_names(); *n; n++) {
        struct frontend_params p;
        frontend_preset(&p, *n);
        if (!frontend_params_diff(&a->preset, &p)) session_custom = 0;
        if (has_model_fe && !frontend_params_diff(&mp, &p)) model_custom = 0;
    }
    if (session_custom) print_preset_row(a, "*", &a->preset);
    if (model_custom) print_preset_row(a, "m", &mp);
    app_out(a, "* the session's front end (%s)%s\n", a->preset_chosen ? "chosen with preset NAME" : "the default",
            has_model_fe ? "; m the current model's, which spec and data use while it is loaded" : "");
    return STATUS_OK;
}

/* Mono samples of clip at the front end's rate, in a new buffer (free). */
static int clip_at_rate(const struct audio_file *clip, int rate, float **out, long *n_out)
{
    struct audio_file mono = *clip;
    float *m = NULL;
    if (clip->n_channels > 1) {
        m = malloc((size_t)clip->n_frames * sizeof *m);
        if (!m) return status_set(STATUS_NOMEM, "out of memory");
        for (long i = 0; i < clip->n_frames; i++) {
            float s = 0;
            for (int c = 0; c < clip->n_channels; c++) s += clip->x[(long)c * clip->n_frames + i];
            m[i] = s / clip->n_channels;
        }
        mono.x = m;
    }
    long cap = resample_max_frames(clip->n_frames, clip->sample_rate_hz, rate);
    float *y = malloc((size_t)(cap > 0 ? cap : 1) * sizeof *y);
    int s = y ? resample(mono.x, clip->n_frames, 1, RESAMPLE_PLANAR, clip->sample_rate_hz, rate, y, cap, n_out)
              : (int)status_set(STATUS_NOMEM, "out of memory");
    free(m);
    if (s) {
        free(y);
        return s;
    }
    *out = y;
    return STATUS_OK;
}

struct axis {
    const struct frontend_params *p;
};

/* Label a text row with the centre frequency of the mel bands it covers. */
static void freq_label(void *user, double lo, double hi, char *buf, int n)
{
    const struct frontend_params *p = ((struct axis *)user)->p;
    double m0 = mel_from_hz(p->fmin_hz, p->mel_scale), m1 = mel_from_hz(p->fmax_hz, p->mel_scale);
    double hz = mel_to_hz(m0 + (m1 - m0) * 0.5 * (lo + hi), p->mel_scale);
    snprintf(buf, (size_t)n, hz >= 1000 ? "%.1fk" : "%.0f", hz >= 1000 ? hz / 1000 : hz);
}

static int write_csv(const char *path, const struct frontend_params *p, const float *y, int rows, long cols)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return status_set(STATUS_IO, "%s: cannot write", path);
    double m0 = mel_from_hz(p->fmin_hz, p->mel_scale), m1 = mel_from_hz(p->fmax_hz, p->mel_scale);
    fprintf(f, "bin,hz");
    for (long t = 0; t < cols; t++) fprintf(f, ",%.4f", (double)t * p->hop / p->sample_rate_hz);
    fputc('\n', f);
    for (int r = 0; r < rows; r++) {
        fprintf(f, "%d,%.2f", r, mel_to_hz(m0 + (m1 - m0) * (r + 1) / (rows + 1), p->mel_scale));
        for (long t = 0; t < cols; t++) fprintf(f, ",%.6g", y[(long)r * cols + t]);
        fputc('\n', f);
    }
    int bad = ferror(f);
    if (fclose(f) || bad || rename(tmp, path)) {
        remove(tmp);
        return status_set(STATUS_IO, "%s: write failed", path);
    }
    return STATUS_OK;
}

int cmd_spec(struct app *a, int argc, char **argv)
{
    const char *path = NULL, *csv = NULL, *preset = NULL;
    enum render_style style = render_style_for(a->out);
    long width = render_columns(a->out) - 10, range = 80;
    /* 32 rows, fewer when the terminal is lower: title, rows, time axis and the prompt fit */
    long rows = render_lines(a->out) > 0 ? render_lines(a->out) - 4 : 32;
    rows = rows > 32 ? 32 : rows < 4 ? 4 : rows;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--csv") && i + 1 < argc) {
            csv = argv[++i];
            continue;
        }
        char *v = arg_split(argv[i]);
        if (!v) {
            if (path) return app_fail(a, STATUS_INVALID, "spec: one clip at a time ('%s')", argv[i]);
            path = argv[i];
        } else if (!strcmp(argv[i], "preset")) {
            preset = v;
        } else if (!strcmp(argv[i], "csv")) {
            csv = v;
        } else if (!strcmp(argv[i], "style")) {
            if (!strcmp(v, "ascii")) style = RENDER_ASCII;
            else if (!strcmp(v, "color") || !strcmp(v, "colour")) style = RENDER_COLOR;
            else return app_fail(a, STATUS_INVALID, "spec: style=%s (ascii or color)", v);
        } else if (!strcmp(argv[i], "width")) {
            if (arg_int(a, "width", v, 10, 2000, &width)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "rows")) {
            if (arg_int(a, "rows", v, 2, 500, &rows)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "range")) {
            if (arg_int(a, "range", v, 1, 300, &range)) return STATUS_INVALID;
        } else {
            return app_fail(a, STATUS_INVALID, "spec: unknown option '%s' (preset, csv, style, width, rows, range)", argv[i]);
        }
    }
    struct frontend_params p;
    const char *from;
    session_frontend(a, &p, &from);
    if (preset) {
        if (frontend_preset(&p, preset)) return app_fail(a, STATUS_INVALID, "%s", status_detail());
        from = "preset=";
    }
    struct audio_file own, *clip = &a->clip;
    const char *label = a->clip_path;
    if (path) {
        int s = audio_file_read(&own, path, NULL);
        if (s) return app_fail(a, s, "%s", status_detail());
        clip = &own;
        label = path;
    } else if (!a->clip.x) {
        return app_fail(a, STATUS_INVALID, "spec: which clip? (spec PATH, or clip PATH first)");
    }
    float *x = NULL, *y = NULL;
    long n = 0;
    struct frontend *fe = NULL;
    struct frontend_work *w = NULL;
    int s = clip_at_rate(clip, p.sample_rate_hz, &x, &n);
    if (!s) s = frontend_create(&fe, &p);
    if (!s) s = frontend_work_create(&w, fe);
    long t = fe ? frontend_frames(fe, n) : 0;
    if (!s && !(y = malloc((size_t)p.n_mels * (size_t)(t > 0 ? t : 1) * sizeof *y))) s = status_set(STATUS_NOMEM, "out of memory");
    if (!s) s = frontend_compute(fe, w, x, n, y);
    /* What the model sees: its per-bin normalisation when the front end asks for one and
     * the model carries the statistics. */
    int normed = 0;
    if (!s && p.znorm && !preset && a->model && a->model->n_norm == p.n_mels) {
        for (int r = 0; r < p.n_mels; r++)
            for (long k = 0; k < t; k++) {
                float *v = &y[(long)r * t + k];
                *v = (*v - a->model->norm_mean[r]) / a->model->norm_std[r];
            }
        normed = 1;
    }
    if (!s && csv) s = write_csv(csv, &p, y, p.n_mels, t);
    if (!s) {
        float hi = -INFINITY, lo = INFINITY;
        for (long i = 0; i < (long)p.n_mels * t; i++) {
            if (y[i] > hi) hi = y[i];
            if (y[i] < lo) lo = y[i];
        }
        /* range= is in dB: it applies to dB features only */
        int in_db = p.scale == FRONTEND_SCALE_DB && !normed;
        float shown_lo = in_db ? fmaxf(lo, hi - (float)range) : lo;
        const char *where = !strcmp(from, "preset=") ? "given with preset=" :
                            !strcmp(from, "model") ? "the model's" : a->preset_chosen ? "the session's" :
                            "the default";
        app_out(a, "%s: %s front end (%s), %d mels x %ld frames (%.2f s), %.1f .. %.1f %s\n", label, p.preset,
                where, p.n_mels, t, (double)n / p.sample_rate_hz, lo, hi,
                normed ? "z-score (the model's per-bin normalisation)" : scale_words(&p));
        struct axis ax = {&p};
        fflush(a->out);
        render_heatmap(a->out, style, y, p.n_mels, (int)t, (int)rows, (int)width, shown_lo, hi, freq_label, &ax);
        app_out(a, "%8s 0 s%*s%.1f s\n", "", (int)(width < t ? width : t) - 8, "", (double)n / p.sample_rate_hz);
        if (csv) app_out(a, "wrote %s (%d mel bins x %ld frames)\n", csv, p.n_mels, t);
    }
    free(x);
    free(y);
    frontend_work_destroy(w);
    frontend_destroy(fe);
    if (path) audio_file_fini(&own);
    if (s) return app_fail(a, s, "spec: %s", status_detail());
    return STATUS_OK;
}
