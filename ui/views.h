/* views.h: the figures of the workbench, each drawn into a canvas of any size, for the
 * split view's pane and for headless output alike (DESIGN.md section 7, "Output").
 *
 * A view draws from the data it is given and nothing else; the app keeps that data
 * (the current clip's features, the training curves a job fills in, the last evaluation,
 * the last prediction) and calls the view whenever the pane needs redrawing.
 */
#ifndef BASIN_UI_VIEWS_H
#define BASIN_UI_VIEWS_H

#include <pthread.h>

#include "basin/dsp/frontend.h"
#include "canvas.h"

struct eval_result;

enum view_kind {
    VIEW_SPEC,        /* "spec": the current clip's log-mel spectrogram */
    VIEW_MODEL,       /* "model": the model table */
    VIEW_CURVES,      /* "curves": training loss and accuracy, live while training */
    VIEW_CONFUSION,   /* "confusion": the last evaluation's confusion matrix */
    VIEW_DEVICES,     /* "devices": the last evaluation's accuracy per device */
    VIEW_PROBS,       /* "probs": class probabilities of the last prediction */
    VIEW_ERF,         /* "erf": the effective receptive field (erf) */
    VIEW_LANDSCAPE,   /* "landscape": loss contours and the sharpness (landscape, sharpness) */
    VIEW_HESSIAN,     /* "hessian": curvature: top eigenvalues, trace, per layer (hessian) */
    VIEW_PRUNE,       /* "prune": the per-layer pruning table (prune) */
    VIEW_LISTEN,      /* "listen": the live microphone: scrolling spectrogram, scenes (listen) */
    VIEW_COUNT
};
const char *view_name(enum view_kind v);
/* "spec", "model", ...; -1 when unknown. */
int view_parse(const char *name);

/* The log-mel spectrogram y (F, T) of a clip computed with front end p: mel bins from the
 * bottom, labelled in Hz on the left; time in seconds below; the colour scale of [lo, hi]
 * in `unit` ("dB", "z-score") at the bottom; title on top. */
void view_spec(struct canvas *c, const char *title, const float *y, int n_mels, int n_frames,
               const struct frontend_params *p, float lo, float hi, const char *unit);

/* Training curves, filled by a training job's callbacks (under lock) and drawn by the UI. */
struct curves {
    pthread_mutex_t lock;
    char title[160];
    int n_epochs, steps_per_epoch;   /* the run's plan (0 before the first report) */
    int n_steps, cap_steps;          /* per step: x in epochs, batch loss and accuracy */
    float *step_x, *step_loss, *step_acc;
    int n_ep, cap_ep;                /* per epoch (x = epoch): train and eval figures */
    float *ep_x, *ep_train_loss, *ep_train_acc, *ep_eval_loss, *ep_eval_acc;
    unsigned long changes;           /* bumped on every addition */
};
void curves_init(struct curves *cv);
void curves_fini(struct curves *cv);
/* Start a new run (drops what was there). */
void curves_reset(struct curves *cv, const char *title, int n_epochs, int steps_per_epoch);
void curves_add_step(struct curves *cv, double epoch_x, double loss, double acc);
/* eval figures NaN when there is no evaluation. */
void curves_add_epoch(struct curves *cv, int epoch, double train_loss, double train_acc,
                      double eval_loss, double eval_acc);
/* Loss on the left, accuracy on the right, against epochs. */
void view_curves(struct canvas *c, struct curves *cv);

/* The confusion matrix of r with class names (rows true, columns predicted), shaded by
 * the share of each true class. */
void view_confusion(struct canvas *c, const char *title, const struct eval_result *r,
                    const char *const *labels);
/* Accuracy per device as bars, seen and unseen marked, with the pooled figures. */
void view_devices(struct canvas *c, const char *title, const struct eval_result *r,
                  const char *const *device_names);
/* Class probabilities as bars, largest first. */
void view_probs(struct canvas *c, const char *title, const float *probs, int n_classes,
                const char *const *labels);
/* Text lines (the model table), clipped to the canvas. */
void view_text(struct canvas *c, const char *text);

#endif
