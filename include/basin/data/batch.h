/* batch.h: seeded, shuffled mini-batches of features with augmentation.
 *
 * An iterator walks a struct features (features.h) epoch by epoch: the order of an epoch
 * is a permutation drawn from (seed, epoch), batch b of it is examples
 * perm[b*N .. (b+1)*N), the last partial batch kept or dropped. Every random draw of batch
 * b comes from a stream derived from (seed, epoch, b) and, per example, from its position
 * in the batch, so a batch is the same whatever the thread count and whether or not the
 * batches before it were drawn (training resumes mid-epoch exactly).
 *
 * Augmentations, each optional, applied in this order:
 *   1. time roll   per example, a circular shift along T by s ~ U{-R..R} frames,
 *                  y[t] = x[(t - s) mod T] (numpy / torch roll; CP-JKU uses R = 50,
 *                  ref: cpjku_dcase20 RollDataset, random_integers(-R, R) inclusive)
 *   2. gain        per example, g ~ U[-G, G] dB added to every feature. On log-mel (db
 *                  scale) features that is the clip played g dB louder, exactly where no
 *                  floor (amin, top_db) clips. On cpjku's mel-of-dB features an audio gain
 *                  would add g * sum_k mel[f][k] to bin f instead, so there it is a plain
 *                  offset. On z-normalised features (features.znormed) bin f gets g / std[f]
 *                  (g where std[f] = 0): the same offset in dB, normalised as the features
 *                  were, so G keeps its meaning in dB.
 *   3. mixup       (needs soft targets) partner p(i) from a permutation of the batch
 *                  (torch.randperm; a fixed point mixes an example with itself),
 *                  x_i = l_i x_i + (1 - l_i) x_p(i), targets_i = l_i onehot(y_i) +
 *                  (1 - l_i) onehot(y_p(i)), using the rolled / gained partner.
 *                  BATCH_MIXUP_SAMPLE (CP-JKU): l_i ~ Beta(a, a) per example, then
 *                  l_i = max(l_i, 1 - l_i) (mission-anchors 2.6, a = 0.3).
 *                  BATCH_MIXUP_BATCH (SP4ASC): one l ~ Beta(a, a) for the batch, no max
 *                  (mission-anchors 4.5, a = 0.2).
 *   4. SpecAugment per example, as torchlibrosa DropStripes (mission-anchors 4.4): time
 *                  stripes first, then frequency stripes; for each stripe a width
 *                  w ~ U{0..W-1} and a start s ~ U{0..len-w-1} (torch.randint's high is
 *                  exclusive), frames / bins [s, s + w) of every channel set to
 *                  specaug_value (0: torchlibrosa's value, the mean of z-normalised
 *                  features). W is clamped to len.
 *
 * The batch's labels are each example's own class; with mixup use targets for the loss.
 */
#ifndef BASIN_DATA_BATCH_H
#define BASIN_DATA_BATCH_H

#include <stdint.h>

#include "basin/core/rng.h"

struct features;

enum batch_mixup {
    BATCH_MIXUP_OFF,
    BATCH_MIXUP_SAMPLE,   /* CP-JKU: lambda per example, max(l, 1 - l) */
    BATCH_MIXUP_BATCH,    /* SP4ASC: one lambda per batch */
};

struct batch_opts {
    int batch_size;            /* N >= 1 */
    int drop_last;             /* 1: drop the last partial batch */
    int shuffle;               /* 0: the features' order every epoch (evaluation) */
    uint64_t seed;
    int roll_frames;           /* R: time roll by U{-R..R}; 0 off */
    double gain_db;            /* G: gain U[-G, G] dB; 0 off */
    enum batch_mixup mixup;
    double mixup_alpha;        /* a > 0 when mixup is on */
    int time_stripes, time_width;   /* SpecAugment along T: stripes, W; 0 off */
    int freq_stripes, freq_width;   /* SpecAugment along F */
    float specaug_value;       /* what masked stripes are set to */
};

/* batch 32, shuffled, seed 0, no augmentation. */
void batch_opts_default(struct batch_opts *o);
/* Training recipes: "none" (the default), "cpjku" (batch 10, roll 50, mixup SAMPLE 0.3;
 * mission-anchors 2.6), "sp4asc" (batch 32, drop_last, mixup BATCH 0.2, SpecAugment 128 x 2
 * along T and 32 x 2 along F; 4.4, 4.5). STATUS_NOT_FOUND listing the names otherwise. */
int batch_opts_preset(struct batch_opts *o, const char *name);
/* 0, or STATUS_INVALID naming the bad field ("batch: mixup alpha 0 must be > 0"). */
int batch_opts_validate(const struct batch_opts *o);

/* One mini-batch; the iterator owns the arrays, valid until its next batch_iter_get. */
struct batch {
    int n;             /* N examples (<= batch_size) */
    int index;         /* batch index in the epoch */
    float *x;          /* (N, C, F, T) */
    int *labels;       /* (N) each example's own class */
    float *targets;    /* (N, M) soft targets with mixup, else NULL */
    int *rows;         /* (N) row of each example in the features (features.items[row] is
                        * its data set item) */
    int *partner;      /* (N) row mixed into each example (its own row without mixup) */
    float *lambda;     /* (N) weight of the example's own features (1 without mixup) */
};

struct batch_iter;     /* opaque */

/* An iterator over f (borrowed: f must outlive it and not change). Starts at epoch 0.
 * STATUS_INVALID for bad options or f without clips. *out is owned by the caller. */
int batch_iter_create(struct batch_iter **out, const struct features *f,
                      const struct batch_opts *o);
void batch_iter_destroy(struct batch_iter *it);   /* NULL is a no-op */

/* Draw the order of epoch e (>= 0). */
void batch_iter_epoch(struct batch_iter *it, int epoch);
/* Batches per epoch: ceil(N_clips / N), or floor with drop_last. */
int batch_iter_n_batches(const struct batch_iter *it);
/* Batch b (0 <= b < batch_iter_n_batches) of the current epoch, augmented. */
const struct batch *batch_iter_get(struct batch_iter *it, int b);

/* The augmentations one at a time, on one example x (C, F, T), for tests and test-time
 * augmentation; r is advanced. */
void batch_roll(float *x, int n_channels, int n_mels, int n_frames, int shift);
void batch_spec_augment(float *x, int n_channels, int n_mels, int n_frames,
                        const struct batch_opts *o, struct rng *r);

#endif
