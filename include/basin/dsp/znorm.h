/* znorm.h: per-bin z-normalisation of features with statistics from a training split.
 *
 * An accumulator takes features (F, T) clip by clip (channels of a (C, F, T) clip are added
 * as separate (F, T) blocks: statistics are pooled over channels and time), then finishes to
 * a mean and a standard deviation per bin f. The standard deviation is the unbiased one
 * (divisor count - 1), as torch.Tensor.std in CP-ResNet's cal_std (mission-anchors 2.5).
 * Everything accumulates in double with Chan et al.'s pairwise update, so the result does
 * not drift with the size of the training set; for a given order of additions it is exact
 * to the bit on every run. Two accumulators (one per thread) combine with znorm_merge().
 *
 * znorm_apply() computes (x - mean[f]) / std[f] in place; a bin whose std is 0 (constant
 * over the whole training set) is only centred.
 */
#ifndef BASIN_DSP_ZNORM_H
#define BASIN_DSP_ZNORM_H

struct znorm {
    int n_bins;       /* F */
    long count;       /* values seen per bin (frames x channels) */
    double *mean;     /* (F) running mean */
    double *m2;       /* (F) running sum of squared deviations */
};

/* Returns 0 or STATUS_NOMEM; n_bins >= 1. */
int znorm_init(struct znorm *z, int n_bins);
void znorm_fini(struct znorm *z);   /* safe on a zeroed or finished struct */

/* Add one block x (F, T); T >= 1. */
void znorm_add(struct znorm *z, const float *x, long n_frames);
/* dst += src (same F). */
void znorm_merge(struct znorm *dst, const struct znorm *src);

/* mean (F), std (F). STATUS_INVALID when fewer than 2 values were added per bin. */
int znorm_finish(const struct znorm *z, float *mean, float *std);

/* x (F, T) = (x - mean[f]) / std[f] in place (std 0: x - mean[f]). */
void znorm_apply(int n_bins, long n_frames, float *x, const float *mean, const float *std);

#endif
