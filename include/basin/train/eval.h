/* eval.h: how well a model does on a set of clips.
 *
 * Metrics of DCASE Task 1 and the seed papers (ref: mission-anchors 4.5, SP4ASC reports
 * macro accuracy and log loss, and both per device):
 *   accuracy   the share of clips whose most probable class (argmax, the first on ties) is
 *              the true one
 *   log loss   the mean of -ln p(true class), probabilities clipped to [1e-15, 1 - 1e-15]
 *              as sklearn.metrics.log_loss (eps 1e-15), so a confident mistake costs at most
 *              34.5 and not infinity (the DCASE metric)
 * each micro (over clips) and macro (the unweighted mean over the classes that have clips,
 * DCASE's "class-wise average"), for every clip, per class, per recording device and for
 * seen and unseen devices pooled (a device is seen when the data set's train split holds a
 * clip of it, dataset_device_seen); and the confusion matrix. The model runs in eval mode
 * (model/predict.h).
 *
 * CSV export (eval_write_csv), two files that pandas (pd.read_csv) and spreadsheets read as
 * they are:
 *   PATH             metrics in long format, header
 *                    split,group,name,seen,n,correct,acc,logloss,acc_macro,logloss_macro
 *                    one row per group: group "all" (name "all"), "class" (every class, in
 *                    class order), "device" (devices with clips, natural order; seen 1 or 0)
 *                    and "devices" (names "seen" and "unseen", when they have clips); acc in
 *                    [0, 1] (not percent), log loss in nats; seen is empty except for device
 *                    rows; a group without clips has n 0 and empty figures; a class row's
 *                    macro figures are its own
 *   the confusion    PATH with ".csv" replaced by "-confusion.csv" (or that appended):
 *                    header "true,<class 0>,...,<class M-1>", then one row per true class:
 *                    its name and the clip counts per predicted class
 *                    (pd.read_csv(p, index_col="true"))
 * Names holding a comma, quote or line break are quoted as RFC 4180 says.
 */
#ifndef BASIN_TRAIN_EVAL_H
#define BASIN_TRAIN_EVAL_H

#include <stddef.h>

#include "basin/core/progress.h"
#include "basin/data/dataset.h"

struct features;
struct frontend_params;
struct model;

/* One group of clips (all, a class, a device, seen or unseen devices). */
struct eval_group {
    long n;                  /* clips */
    long correct;
    double acc;              /* micro: correct / n; 0 when n = 0 */
    double logloss;          /* micro: mean -ln p(true); 0 when n = 0 */
    double acc_macro;        /* the mean over the group's classes that have clips */
    double logloss_macro;
    int n_classes;           /* classes with clips in the group */
};

struct eval_result {
    int n_classes;           /* M */
    int n_devices;           /* D (0 without devices) */
    struct eval_group all;   /* every clip */
    double acc_macro;        /* = all.acc_macro */
    double logloss_macro;    /* = all.logloss_macro */
    struct eval_group *per_class;    /* (M) */
    struct eval_group *per_device;   /* (D) */
    int *device_seen;                /* (D) 1 when the train split has the device */
    struct eval_group seen, unseen;  /* devices pooled */
    long *confusion;                 /* (M, M): [true][predicted], predicted = argmax */
    float *probs;                    /* (N, M) the probabilities behind every figure */
    int *labels;                     /* (N) true classes */
    int *devices;                    /* (N) device indices, or NULL */
    int n;                           /* N clips */
    enum dataset_split split;        /* what was evaluated, for the CSV: eval_dataset sets
                                      * it; DATASET_SPLIT_ANY ("all") otherwise, callers may
                                      * set it */
    /* Set by eval_dataset only (0 / "" otherwise): */
    int n_skipped;                   /* clips that failed to load (logged, left out) */
    long n_computed, n_cached;       /* features computed / read from the disk cache */
    long n_samples;                  /* clip length at the front end's rate */
    int n_frames;                    /* T */
    char preset[32];                 /* the front end's name */
    int normalised;                  /* 1: the model's basin.norm was applied */
};

/* Evaluate m on the clips of f (features of ds, already normalised as m expects), in
 * batches of `batch` (0: 32); p reports ("eval", clips done, N) and may cancel
 * (STATUS_CANCELLED). STATUS_MISMATCH when m does not fit the features. *out is owned by
 * the caller (eval_result_destroy). */
int eval_run(struct eval_result **out, struct model *m, const struct features *f,
             const struct dataset *ds, int batch, const struct progress *p);
/* The same figures from probabilities already computed: probs (n, M), labels (n) and
 * devices (n) (device indices of ds; NULL, or ds NULL: no per-device figures). probs,
 * labels and devices are copied. Labels must lie in [0, M) (CHECK). */
int eval_from_probs(struct eval_result **out, int n, int n_classes, const float *probs,
                    const int *labels, const int *devices, const struct dataset *ds);
void eval_result_destroy(struct eval_result *r);   /* NULL is a no-op */

/* What eval_dataset evaluates and how. Zeroed: the train split, the model's front end,
 * batches of 32, the data set's clip length, the default feature cache. */
struct eval_opts {
    enum dataset_split split;                /* DATASET_SPLIT_ANY: every clip */
    const struct frontend_params *frontend;  /* NULL: the model's (basin.frontend) */
    int batch;                               /* 0: 32 */
    long n_samples;                          /* 0: the data set's most common clip length
                                              * (features.h), as training takes it */
    const char *cache_dir;                   /* features_opts.cache_dir */
};

/* Evaluate m on a split of ds, the whole sequence: the split must have clips
 * (dataset_require_split: STATUS_INVALID), m must fit the data (pipeline_check:
 * STATUS_MISMATCH saying what differs), features through m's front end and the cache with
 * m's channel count and repeat padding, normalised with m's basin.norm when it has one
 * (features_prepare GIVEN, else NONE), then eval_run. p gets "features" then "eval" and
 * may cancel. *out is owned by the caller. */
int eval_dataset(struct eval_result **out, struct model *m, const struct dataset *ds,
                 const struct eval_opts *o, const struct progress *p);

/* The confusion file's path for metrics path (see above) into buf (n bytes);
 * STATUS_INVALID when it does not fit. */
int eval_confusion_path(const char *path, char *buf, size_t n);
/* Write the two CSV files (see above), each atomically; names from ds (NULL: "class k",
 * no device rows). The split column says r->split ("all" for DATASET_SPLIT_ANY). 0 or
 * STATUS_IO naming the file. */
int eval_write_csv(const struct eval_result *r, const struct dataset *ds, const char *path);

#endif
