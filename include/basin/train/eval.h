/* eval.h: how well a model does on a set of clips.
 *
 * Metrics of DCASE Task 1 and the seed papers: accuracy and log loss (the mean of
 * -log p(true class), probabilities clipped to [1e-15, 1 - 1e-15] as sklearn's log_loss),
 * each micro (over clips) and macro (the mean over classes that have clips, DCASE's
 * "class-wise average"); per class; per recording device with seen and unseen devices
 * pooled (a device is seen when the data set's train split holds a clip of it); and the
 * confusion matrix. The model runs in eval mode (predict.h).
 */
#ifndef BASIN_TRAIN_EVAL_H
#define BASIN_TRAIN_EVAL_H

#include "basin/core/progress.h"

struct dataset;
struct features;
struct model;

/* One group of clips (all, a class, a device, seen or unseen devices). */
struct eval_group {
    long n;                  /* clips */
    long correct;
    double acc;              /* correct / n; 0 when n = 0 */
    double logloss;          /* mean -log p(true); 0 when n = 0 */
};

struct eval_result {
    int n_classes;           /* M */
    int n_devices;           /* D */
    struct eval_group all;   /* micro */
    double acc_macro;        /* mean over classes with clips */
    double logloss_macro;
    struct eval_group *per_class;    /* (M) */
    struct eval_group *per_device;   /* (D) */
    int *device_seen;                /* (D) 1 when the train split has the device */
    struct eval_group seen, unseen;  /* devices pooled */
    long *confusion;                 /* (M, M): [true][predicted], predicted = argmax */
    float *probs;                    /* (N, M) the probabilities behind every figure */
    int n;                           /* N clips */
};

/* Evaluate m on the clips of f (features of ds, already normalised as m expects), in
 * batches of `batch` (0: 32); p reports ("eval", clips done, N) and may cancel
 * (STATUS_CANCELLED). STATUS_MISMATCH when m does not fit the features. *out is owned by
 * the caller (eval_result_destroy). */
int eval_run(struct eval_result **out, struct model *m, const struct features *f,
             const struct dataset *ds, int batch, const struct progress *p);
/* The same figures from probabilities already computed: probs (n, M), labels (n) and
 * devices (n) (device indices of ds; NULL: no per-device figures). probs is copied. */
int eval_from_probs(struct eval_result **out, int n, int n_classes, const float *probs,
                    const int *labels, const int *devices, const struct dataset *ds);
void eval_result_destroy(struct eval_result *r);   /* NULL is a no-op */

#endif
