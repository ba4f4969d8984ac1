/* structured.h: structured filter pruning of a CP-ResNet under a MAC and a parameter budget
 * (FAU, DCASE 2023: group norms of whole filters, the threshold found by binary search),
 * ending in a physically smaller model.
 *
 * Groups. A channel is removed with everything that exists only for it:
 *   inner channel o of block k   conv1's filter o, bn1's channel o, conv2's input slice o;
 *   stream channel j of a stage  every filter j writing the stage's residual stream (the
 *                                stem or the first block's conv2 and projection, each
 *                                later block's conv2) with their BN channels, and every
 *                                input slice j reading it (the blocks' conv1s, the next
 *                                stage's projection, the head conv).
 * A group's norm is the L2 norm of all of those weights (masked ones as 0) and BN gammas
 * and betas. Every
 * layer keeps at least its largest-norm channel; the classifier's outputs are never
 * removed.
 * Search (ref: FAU DCASE23 report, Algorithm 1, ../shared/seeds): the groups sorted by norm
 * (ties by position), binary search for the smallest k such that removing the k smallest
 * leaves MACs <= A and parameters <= B, both counted exactly on the smaller structure
 * (model_build_layout + model_describe of the config at the new widths). Removing more
 * never adds MACs or parameters, so the search is exact.
 * Masks: structured_apply zeroes the masks of every removed group's weights in m, so the
 * masked model computes what the smaller one computes (a removed channel's BN still adds
 * a constant, but every reader of that channel is masked); structured_extract builds the
 * smaller model with the kept channels' weights, BN statistics and m's metadata.
 * Supported: cpresnet with groups=1 (STATUS_UNSUPPORTED otherwise, naming why).
 */
#ifndef BASIN_MODEL_STRUCTURED_H
#define BASIN_MODEL_STRUCTURED_H

#include "basin/model/model.h"

#define STRUCTURED_SETS 15          /* 3 stage streams, then 12 blocks' inner channels */

struct structured_plan {
    struct model_config cfg;        /* the smaller widths (stages, inner) */
    int width[STRUCTURED_SETS];     /* channels of each set before (0: the set does not exist) */
    unsigned char *keep[STRUCTURED_SETS]; /* (width) 1 kept, 0 removed; owned */
    int n_groups, n_removed;        /* channel groups that could go, and those removed */
    long params_before, params_after;
    double macs_before, macs_after; /* per clip of the input searched for */
    char name[STRUCTURED_SETS][16]; /* "stem+s1", "s2", "s3", "s1.b1", ... */
};

/* Search the pruning of m meeting macs <= max_macs and params <= max_params (a negative
 * limit: none) for inputs of (f, t). STATUS_UNSUPPORTED (not cpresnet groups=1),
 * STATUS_INVALID when even the smallest structure (one channel per layer) misses a limit
 * (saying what it reaches), STATUS_NOMEM. m is not changed. Release with
 * structured_plan_fini. */
int structured_search(const struct model *m, double max_macs, long max_params, int f, int t,
                      struct structured_plan *p);
void structured_plan_fini(struct structured_plan *p);
/* The same with the group norms taken from w (n_params floats in the store's layout)
 * instead of m's weights: ADMM projects W + U (train/admm.h). */
int structured_search_at(const struct model *m, const float *w, double max_macs, long max_params, int f, int t,
                         struct structured_plan *p);
/* Zero, in x (n_params floats in the store's layout), every weight of the removed groups. */
void structured_zero(const struct model *m, const struct structured_plan *p, float *x);

/* Zero the masks of the removed groups' weights in m (g->masked set). */
void structured_apply(struct model *m, const struct structured_plan *p);

/* The smaller model: p->cfg with the kept channels' weights, masks, BN parameters and
 * statistics, and m's front end, input, labels and normalisation. *out owned by the caller.
 * Errors as model_create and STATUS_NOMEM. */
int structured_extract(const struct model *m, const struct structured_plan *p, struct model **out);

#endif
