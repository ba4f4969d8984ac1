/* predict.h: a model's eval-mode forward over any number of clips.
 *
 * One inference plan for clips of one size (C, F, T), made once and reused batch after
 * batch: `forward`, evaluation, prediction, loss landscapes and the live demo all run
 * models through it. BN uses its running statistics, dropout is off, convolution weights
 * are used as w * damping * mask, read from the model's store on every call (so a caller
 * may change the weights between calls, as a landscape does).
 *
 * Threads: the plan runs with the calling thread's threads_get() at creation (a job pins
 * its own count with threads_pin before creating one). A predictor belongs to one thread
 * at a time; the model must outlive it and keep its graph.
 */
#ifndef BASIN_MODEL_PREDICT_H
#define BASIN_MODEL_PREDICT_H

#include "basin/core/progress.h"

struct model;
struct predictor;

/* A predictor of m for clips of (c, f, t), run in batches of at most max_batch (>= 1).
 * STATUS_MISMATCH when the input does not fit the model (naming what), STATUS_NOMEM (with
 * the memory it would need). *out is owned by the caller. */
int predictor_create(struct predictor **out, struct model *m, int max_batch, int c, int f,
                     int t);
void predictor_destroy(struct predictor *p);   /* NULL is a no-op */

/* The input size and batch the predictor was made for. */
void predictor_shape(const struct predictor *p, int *max_batch, int *c, int *f, int *t);

/* logits (n, classes) of x (n, C, F, T), any n >= 0, in batches; p reports ("forward",
 * clips done, n) after each batch when n is more than one batch, and a cancel returns
 * STATUS_CANCELLED with the logits so far. */
int predictor_logits(struct predictor *p, int n, const float *x, float *logits,
                     const struct progress *pr);
/* The same as softmax probabilities (n, classes). */
int predictor_probs(struct predictor *p, int n, const float *x, float *probs,
                    const struct progress *pr);

/* One-shot: a predictor for (c, f, t) in batches of up to 32, the logits, released. */
int model_predict(struct model *m, int n, int c, int f, int t, const float *x, float *logits);

#endif
