/* cmd_audio.c: clip, preset and spec: looking at sound before a model sees it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "basin/audio/audio_file.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/data/features.h"
#include "basin/dsp/frontend.h"
#include "basin/dsp/mel.h"
#include "basin/dsp/resample.h"
#include "basin/model/model.h"
#include "basin/train/pipeline.h"
#include "commands.h"
#include "canvas.h"
#include "render.h"
#include "views.h"
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
    app_clip_to_view(a);
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
    const float *src;
    float *mono;
    int n_src;
    int s = features_channels(clip, 1, &src, &n_src, &mono);
    if (s) return s;
    long cap = resample_max_frames(clip->n_frames, clip->sample_rate_hz, rate);
    float *y = malloc((size_t)(cap > 0 ? cap : 1) * sizeof *y);
    s = y ? resample(src, clip->n_frames, 1, RESAMPLE_PLANAR, clip->sample_rate_hz, rate, y, cap, n_out)
          : (int)status_set(STATUS_NOMEM, "out of memory");
    mem_free(mono);
    if (s) {
        free(y);
        return s;
    }
    *out = y;
    return STATUS_OK;
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

/* The features of clip through front end p (normalised with the model's statistics when
 * the front end asks for them and p is the model's own): y (F, T) in a new buffer (free),
 * the value range and what the numbers are. */
struct spec_data {
    float *y;
    long t, n;                  /* frames, samples at the front end's rate */
    float lo, hi;
    int normed;
};

static int spec_compute(struct app *a, const struct audio_file *clip, const struct frontend_params *p, int own_model,
                        struct spec_data *d)
{
    memset(d, 0, sizeof *d);
    float *x = NULL;
    struct frontend *fe = NULL;
    struct frontend_work *w = NULL;
    int s = clip_at_rate(clip, p->sample_rate_hz, &x, &d->n);
    if (!s) s = frontend_create(&fe, p);
    if (!s) s = frontend_work_create(&w, fe);
    d->t = fe ? frontend_frames(fe, d->n) : 0;
    if (!s && !(d->y = malloc((size_t)p->n_mels * (size_t)(d->t > 0 ? d->t : 1) * sizeof *d->y)))
        s = status_set(STATUS_NOMEM, "out of memory");
    if (!s) s = frontend_compute(fe, w, x, d->n, d->y);
    /* What the model sees: its per-bin normalisation when the front end asks for one and
     * the model carries the statistics. */
    if (!s && p->znorm && own_model && a->model && a->model->n_norm == p->n_mels) {
        for (int r = 0; r < p->n_mels; r++)
            for (long k = 0; k < d->t; k++) {
                float *v = &d->y[(long)r * d->t + k];
                *v = (*v - a->model->norm_mean[r]) / a->model->norm_std[r];
            }
        d->normed = 1;
    }
    d->hi = -INFINITY, d->lo = INFINITY;
    for (long i = 0; !s && i < (long)p->n_mels * d->t; i++) {
        if (d->y[i] > d->hi) d->hi = d->y[i];
        if (d->y[i] < d->lo) d->lo = d->y[i];
    }
    free(x);
    frontend_work_destroy(w);
    frontend_destroy(fe);
    if (s) {
        free(d->y);
        d->y = NULL;
    }
    return s;
}

/* Keep d (taken over) as the spectrogram view. */
static void spec_to_view(struct app *a, struct spec_data *d, const struct frontend_params *p, const char *title,
                         float lo, const char *unit)
{
    struct app_views *v = &a->views;
    free(v->spec);
    v->spec = d->y;
    d->y = NULL;
    v->spec_mels = p->n_mels, v->spec_frames = (int)d->t;
    v->spec_lo = lo, v->spec_hi = d->hi;
    v->spec_fe = *p;
    snprintf(v->spec_unit, sizeof v->spec_unit, "%s", unit);
    snprintf(v->spec_title, sizeof v->spec_title, "%.299s", title);
    app_views_changed(a);
}

/* The current clip through the session's front end, as the spectrogram view (after
 * `clip`); failures leave the view as it was. */
void app_clip_to_view(struct app *a)
{
    struct frontend_params p;
    const char *from;
    session_frontend(a, &p, &from);
    struct spec_data d;
    if (!a->clip.x || spec_compute(a, &a->clip, &p, 1, &d)) return;
    char title[400];
    const char *unit = d.normed ? "z-score" : p.scale == FRONTEND_SCALE_DB ? "dB" : scale_words(&p);
    snprintf(title, sizeof title, "%.250s: %s front end, %d mels x %ld frames (%.2f s)", a->clip_path, p.preset,
             p.n_mels, d.t, (double)d.n / p.sample_rate_hz);
    float lo = p.scale == FRONTEND_SCALE_DB && !d.normed ? fmaxf(d.lo, d.hi - 80) : d.lo;
    spec_to_view(a, &d, &p, title, lo, unit);
}

int cmd_spec(struct app *a, int argc, char **argv)
{
    const char *path = NULL, *csv = NULL, *preset = NULL;
    enum canvas_mode mode = canvas_mode_for(a->out);
    long width = render_columns(a->out) - 10, range = 80;
    /* 32 rows, fewer when the terminal is lower: title, rows, time axis, scale and the
     * prompt fit */
    long rows = render_lines(a->out) > 0 ? render_lines(a->out) - 6 : 32;
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
            if (!strcmp(v, "ascii")) mode = CANVAS_ASCII;
            else if (!strcmp(v, "color") || !strcmp(v, "colour")) mode = CANVAS_COLOR;
            else if (!strcmp(v, "utf8")) mode = CANVAS_UTF8;
            else return app_fail(a, STATUS_INVALID, "spec: style=%s (ascii, utf8 or color)", v);
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
    struct spec_data d;
    int s = spec_compute(a, clip, &p, !preset, &d);
    if (!s && csv) s = write_csv(csv, &p, d.y, p.n_mels, d.t);
    if (!s) {
        /* range= is in dB: it applies to dB features only */
        int in_db = p.scale == FRONTEND_SCALE_DB && !d.normed;
        float shown_lo = in_db ? fmaxf(d.lo, d.hi - (float)range) : d.lo;
        const char *where = !strcmp(from, "preset=") ? "given with preset=" :
                            !strcmp(from, "model") ? "the model's" : a->preset_chosen ? "the session's" :
                            "the default";
        char title[600];
        snprintf(title, sizeof title, "%.300s: %s front end (%s), %d mels x %ld frames (%.2f s), %.1f .. %.1f %s", label,
                 p.preset, where, p.n_mels, d.t, (double)d.n / p.sample_rate_hz, d.lo, d.hi,
                 d.normed ? "z-score (the model's per-bin normalisation)" : scale_words(&p));
        const char *unit = d.normed ? "z-score" : in_db ? "dB" : "";
        /* the figure: labels (8 columns), the map, its time axis and colour scale */
        struct canvas c;
        int per = mode == CANVAS_COLOR ? 2 : 1;
        long map_rows = (p.n_mels + per - 1) / per < rows ? (p.n_mels + per - 1) / per : rows;
        long cols = d.t < width ? d.t : width;
        int cw = (int)(cols + 8 < 48 ? 48 : cols + 8), tl = (int)strlen(title);
        if (a->workbench) /* the view pane shows the figure; the log gets its title */
            app_out(a, "%s\n", title);
        else if (!(s = canvas_init(&c, cw > tl ? cw : tl, (int)map_rows + 4, mode))) {
            view_spec(&c, title, d.y, p.n_mels, (int)d.t, &p, shown_lo, d.hi, unit);
            fflush(a->out);
            canvas_print(&c, a->out);
            canvas_fini(&c);
        }
        if (csv) app_out(a, "wrote %s (%d mel bins x %ld frames)\n", csv, p.n_mels, d.t);
        if (csv) app_result_add(a, csv);
        spec_to_view(a, &d, &p, title, shown_lo, unit);
        a->views.current = VIEW_SPEC;
    }
    free(d.y);
    if (path) audio_file_fini(&own);
    if (s) return app_fail(a, s, "spec: %s", status_detail());
    return STATUS_OK;
}
