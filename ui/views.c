/* views.c: the workbench's figures drawn into canvases (see views.h). */
#include "views.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/dsp/mel.h"
#include "basin/train/eval.h"

static const char *const names[VIEW_COUNT] = {"spec",      "model",   "curves", "confusion", "devices", "probs",
                                              "erf",       "landscape", "hessian", "prune",   "listen"};

const char *view_name(enum view_kind v)
{
    return (unsigned)v < VIEW_COUNT ? names[v] : "?";
}

int view_parse(const char *name)
{
    for (int i = 0; i < VIEW_COUNT; i++)
        if (!strcmp(names[i], name)) return i;
    return -1;
}

/* Colours of the series (xterm-256). */
enum { COLOR_TRAIN_STEP = 244, COLOR_TRAIN = 39, COLOR_EVAL = 208, COLOR_SEEN = 39, COLOR_UNSEEN = 208 };

/* ---- spectrogram ---------------------------------------------------------------------- */

void view_spec(struct canvas *c, const char *title, const float *y, int n_mels, int n_frames,
               const struct frontend_params *p, float lo, float hi, const char *unit)
{
    const int label_w = 7, x0 = label_w + 1;
    canvas_text(c, 0, 0, CANVAS_NONE, title);
    int w = c->w - x0, h = c->h - 4;
    if (w < 4 || h < 2) return;
    canvas_heatmap(c, x0, 1, w, h, y, n_mels, n_frames, lo, hi);
    /* Frequency labels: the centre of the mel band each labelled text row covers. */
    int per = c->mode == CANVAS_COLOR ? 2 : 1;
    int px_rows = n_mels < per * h ? n_mels : per * h, text_rows = (px_rows + per - 1) / per;
    int every = text_rows > 8 ? (text_rows + 7) / 8 : 1;
    double m0 = mel_from_hz(p->fmin_hz, p->mel_scale), m1 = mel_from_hz(p->fmax_hz, p->mel_scale);
    for (int tr = 0; tr < text_rows; tr += every) {
        double hz = mel_to_hz(m0 + (m1 - m0) * (tr + 0.5) / text_rows, p->mel_scale);
        char t[16];
        snprintf(t, sizeof t, hz >= 1000 ? "%.1fk" : "%.0f", hz >= 1000 ? hz / 1000 : hz);
        int len = (int)strlen(t);
        canvas_text(c, label_w - len, 1 + h - 1 - tr, CANVAS_NONE, t);
    }
    canvas_text(c, 0, 1, CANVAS_NONE, "Hz");
    double seconds = (double)(n_frames - 1) * p->hop / p->sample_rate_hz;
    int used = n_frames < w ? n_frames : w;
    canvas_axis_x(c, x0, 1 + h, used, 0, seconds, used >= 40 ? 5 : 2, seconds >= 10 ? "%.0f s" : "%.1f s");
    char fmt[32];
    snprintf(fmt, sizeof fmt, "%%.%df %s", hi - lo >= 20 ? 0 : 1, unit);
    int sw = w < 40 ? w : 40;
    canvas_scale(c, x0, c->h - 2, sw, lo, hi, fmt);
}

/* ---- training curves ------------------------------------------------------------------ */

void curves_init(struct curves *cv)
{
    memset(cv, 0, sizeof *cv);
    pthread_mutex_init(&cv->lock, NULL);
}

static void free_arrays(struct curves *cv)
{
    float **a[] = {&cv->step_x, &cv->step_loss, &cv->step_acc, &cv->ep_x, &cv->ep_train_loss,
                   &cv->ep_train_acc, &cv->ep_eval_loss, &cv->ep_eval_acc};
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) free(*a[i]), *a[i] = NULL;
    cv->n_steps = cv->cap_steps = cv->n_ep = cv->cap_ep = 0;
}

void curves_fini(struct curves *cv)
{
    free_arrays(cv);
    pthread_mutex_destroy(&cv->lock);
}

void curves_reset(struct curves *cv, const char *title, int n_epochs, int steps_per_epoch)
{
    pthread_mutex_lock(&cv->lock);
    free_arrays(cv);
    snprintf(cv->title, sizeof cv->title, "%s", title);
    cv->n_epochs = n_epochs, cv->steps_per_epoch = steps_per_epoch;
    cv->changes++;
    pthread_mutex_unlock(&cv->lock);
}

/* Grow each of the k arrays to hold n + 1 values. */
static int grow(float ***arrays, int k, int n, int *cap)
{
    if (n < *cap) return 1;
    int nc = *cap ? 2 * *cap : 256;
    for (int i = 0; i < k; i++) {
        float *p = realloc(*arrays[i], (size_t)nc * sizeof(float));
        if (!p) return 0;
        *arrays[i] = p;
    }
    *cap = nc;
    return 1;
}

void curves_add_step(struct curves *cv, double epoch_x, double loss, double acc)
{
    pthread_mutex_lock(&cv->lock);
    float **a[] = {&cv->step_x, &cv->step_loss, &cv->step_acc};
    if (grow(a, 3, cv->n_steps, &cv->cap_steps)) {
        cv->step_x[cv->n_steps] = (float)epoch_x;
        cv->step_loss[cv->n_steps] = (float)loss;
        cv->step_acc[cv->n_steps] = (float)acc;
        cv->n_steps++;
        cv->changes++;
    }
    pthread_mutex_unlock(&cv->lock);
}

void curves_add_epoch(struct curves *cv, int epoch, double train_loss, double train_acc,
                      double eval_loss, double eval_acc)
{
    pthread_mutex_lock(&cv->lock);
    float **a[] = {&cv->ep_x, &cv->ep_train_loss, &cv->ep_train_acc, &cv->ep_eval_loss, &cv->ep_eval_acc};
    if (grow(a, 5, cv->n_ep, &cv->cap_ep)) {
        int i = cv->n_ep++;
        cv->ep_x[i] = (float)epoch;
        cv->ep_train_loss[i] = (float)train_loss, cv->ep_train_acc[i] = (float)train_acc;
        cv->ep_eval_loss[i] = (float)eval_loss, cv->ep_eval_acc[i] = (float)eval_acc;
        cv->changes++;
    }
    pthread_mutex_unlock(&cv->lock);
}

/* One plot: a y axis, the series, an x axis in epochs. */
static void plot_panel(struct canvas *c, int x, int y, int w, int h, const char *name,
                       const struct canvas_series *s, int n, double x1, double y0, double y1,
                       const char *yfmt)
{
    const int lw = 6;
    canvas_text(c, x + lw, y, CANVAS_NONE, name);
    int pw = w - lw - 1, ph = h - 2;
    if (pw < 4 || ph < 2) return;
    canvas_axis_y(c, x + lw, y + 1, ph, lw, y0, y1, ph >= 8 ? 5 : 2, yfmt);
    canvas_plot(c, x + lw + 1, y + 1, pw, ph, s, n, 0, x1, y0, y1);
    canvas_axis_x(c, x + lw + 1, y + 1 + ph, pw, 0, x1, pw >= 30 ? 4 : 2, x1 >= 10 ? "%.0f" : "%.1f");
}

void view_curves(struct canvas *c, struct curves *cv)
{
    pthread_mutex_lock(&cv->lock);
    if (!cv->n_steps && !cv->n_ep) {
        canvas_text(c, 0, 0, CANVAS_NONE, "training curves: no training yet (train starts one)");
        pthread_mutex_unlock(&cv->lock);
        return;
    }
    canvas_textf(c, 0, 0, CANVAS_NONE, "%s", cv->title);
    double x1 = cv->n_epochs > 0 ? cv->n_epochs : 1, lmax = 0;
    for (int i = 0; i < cv->n_steps; i++) lmax = fmax(lmax, cv->step_loss[i]);
    for (int i = 0; i < cv->n_ep; i++) lmax = fmax(lmax, fmax(cv->ep_train_loss[i], cv->ep_eval_loss[i]));
    if (!(lmax > 0)) lmax = 1;
    /* step losses drawn thin (grey), epoch means and evaluation over them */
    struct canvas_series loss[3] = {{cv->step_x, cv->step_loss, cv->n_steps, COLOR_TRAIN_STEP, '.'},
                                    {cv->ep_x, cv->ep_train_loss, cv->n_ep, COLOR_TRAIN, '*'},
                                    {cv->ep_x, cv->ep_eval_loss, cv->n_ep, COLOR_EVAL, 'o'}};
    struct canvas_series acc[3] = {{cv->step_x, cv->step_acc, cv->n_steps, COLOR_TRAIN_STEP, '.'},
                                   {cv->ep_x, cv->ep_train_acc, cv->n_ep, COLOR_TRAIN, '*'},
                                   {cv->ep_x, cv->ep_eval_acc, cv->n_ep, COLOR_EVAL, 'o'}};
    int half = c->w / 2, h = c->h - 2;
    plot_panel(c, 0, 1, half, h, "loss", loss, 3, x1, 0, lmax * 1.05, "%.2f");
    plot_panel(c, half, 1, c->w - half, h, "accuracy", acc, 3, x1, 0, 1, "%.1f");
    int x = 0;
    x += canvas_text(c, x, c->h - 1, CANVAS_NONE, "epochs;  ");
    if (c->mode == CANVAS_ASCII) {
        canvas_text(c, x, c->h - 1, CANVAS_NONE, ". train (per step)  * train (epoch)  o evaluate");
    } else {
        x += canvas_text(c, x, c->h - 1, COLOR_TRAIN_STEP, "\xe2\x94\x80 train (per step)  ");
        x += canvas_text(c, x, c->h - 1, COLOR_TRAIN, "\xe2\x94\x80 train (epoch)  ");
        canvas_text(c, x, c->h - 1, COLOR_EVAL, "\xe2\x94\x80 evaluate");
    }
    pthread_mutex_unlock(&cv->lock);
}

/* ---- evaluation ----------------------------------------------------------------------- */

void view_confusion(struct canvas *c, const char *title, const struct eval_result *r,
                    const char *const *labels)
{
    canvas_text(c, 0, 0, CANVAS_NONE, title);
    if (!r) return;
    const int M = r->n_classes;
    int name_w = 0;
    for (int k = 0; k < M; k++) {
        int len = (int)strlen(labels[k]);
        if (len > name_w) name_w = len;
    }
    if (name_w > 16) name_w = 16;
    int cw = (c->w - name_w - 2) / (M > 0 ? M : 1);
    if (cw > 7) cw = 7;
    if (cw < 3) cw = 3;
    canvas_textf(c, 0, 1, CANVAS_NONE, "%-*s", name_w, "true \\ predicted");
    for (int k = 0; k < M; k++) canvas_textf(c, name_w + 1 + k * cw, 1, CANVAS_NONE, "%*.*s", cw - 1, cw - 1, labels[k]);
    for (int t = 0; t < M && 2 + t < c->h; t++) {
        canvas_textf(c, 0, 2 + t, CANVAS_NONE, "%-*.*s", name_w, name_w, labels[t]);
        long row = 0;
        for (int k = 0; k < M; k++) row += r->confusion[(long)t * M + k];
        for (int k = 0; k < M; k++) {
            long n = r->confusion[(long)t * M + k];
            int x = name_w + 1 + k * cw;
            double share = row ? (double)n / row : 0;
            if (c->mode == CANVAS_COLOR && n)
                for (int i = 0; i < cw - 1; i++) canvas_set(c, x + i, 2 + t, ' ', CANVAS_NONE, canvas_ramp_color(share));
            canvas_textf(c, x, 2 + t, c->mode == CANVAS_COLOR && share > 0.45 ? 16 : CANVAS_NONE, "%*ld", cw - 1, n);
        }
    }
    if (2 + M < c->h)
        canvas_textf(c, 0, 2 + M, CANVAS_NONE, "accuracy %.1f %% (macro %.1f %%), log loss %.3f, %ld clips",
                     100 * r->all.acc, 100 * r->acc_macro, r->all.logloss, r->all.n);
}

void view_devices(struct canvas *c, const char *title, const struct eval_result *r,
                  const char *const *device_names)
{
    canvas_text(c, 0, 0, CANVAS_NONE, title);
    if (!r) return;
    int bar_w = c->w - 34;
    if (bar_w < 10) bar_w = 10;
    int y = 1;
    for (int d = 0; d < r->n_devices && y < c->h; d++) {
        const struct eval_group *g = &r->per_device[d];
        if (!g->n) continue;
        int col = r->device_seen[d] ? COLOR_SEEN : COLOR_UNSEEN;
        canvas_textf(c, 0, y, CANVAS_NONE, "%-6.6s %-6s", device_names[d], r->device_seen[d] ? "seen" : "unseen");
        canvas_bar(c, 14, y, bar_w, g->acc, col);
        canvas_textf(c, 15 + bar_w, y, CANVAS_NONE, "%5.1f %% (%ld)", 100 * g->acc, g->n);
        y++;
    }
    const struct eval_group *pooled[2] = {&r->seen, &r->unseen};
    const char *pname[2] = {"seen", "unseen"};
    for (int k = 0; k < 2 && y < c->h; k++) {
        if (!pooled[k]->n) continue;
        canvas_textf(c, 0, y, CANVAS_NONE, "%-13s", pname[k]);
        canvas_bar(c, 14, y, bar_w, pooled[k]->acc, k ? COLOR_UNSEEN : COLOR_SEEN);
        canvas_textf(c, 15 + bar_w, y, CANVAS_NONE, "%5.1f %% (%ld)", 100 * pooled[k]->acc, pooled[k]->n);
        y++;
    }
}

void view_probs(struct canvas *c, const char *title, const float *probs, int n_classes,
                const char *const *labels)
{
    canvas_text(c, 0, 0, CANVAS_NONE, title);
    if (!probs) return;
    int order[256], n = n_classes < 256 ? n_classes : 256;
    for (int k = 0; k < n; k++) order[k] = k;
    for (int i = 1; i < n; i++) /* insertion sort, largest first, stable */
        for (int j = i; j > 0 && probs[order[j]] > probs[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    int bar_w = c->w - 28;
    if (bar_w < 10) bar_w = 10;
    for (int i = 0; i < n && 1 + i < c->h; i++) {
        int k = order[i];
        canvas_textf(c, 0, 1 + i, CANVAS_NONE, "%-17.17s", labels[k]);
        canvas_bar(c, 18, 1 + i, bar_w, probs[k], i == 0 ? COLOR_EVAL : COLOR_TRAIN);
        canvas_textf(c, 19 + bar_w, 1 + i, CANVAS_NONE, "%5.1f %%", 100 * probs[k]);
    }
}

void view_text(struct canvas *c, const char *text)
{
    int y = 0;
    while (*text && y < c->h) {
        size_t n = strcspn(text, "\n");
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line - 1 ? n : sizeof line - 1), text);
        canvas_text(c, 0, y++, CANVAS_NONE, line);
        text += n;
        if (*text) text++;
    }
}
