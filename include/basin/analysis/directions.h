/* directions.h: pairs of directions in a model's parameter space, the axes of a loss
 * landscape (Li et al. 2018, "Visualizing the loss landscape of neural nets").
 *
 * A direction pair is two vectors x, y in the layout of the model's parameter store
 * (store.w: every conv / linear weight, bias and BN affine parameter, n_params floats;
 * BN running statistics are buffers, never perturbed). The weights at grid point (a, b)
 * are w + a x + b y (landscape.h).
 *
 * Random pairs (ref: mission-anchors 1.1-1.3, loss-landscape net_plotter.py with
 * dir_type 'weights', norm 'filter', ignore 'biasbn', as both seed papers use it):
 *   - x then y, each an i.i.d. standard normal draw per parameter tensor;
 *   - tensors of >= 2 dimensions (conv (O, I/groups, KF, KT), linear (O, I)) are
 *     filter-normalised: each output filter i (one slice along the first axis) is rescaled
 *     to d_i * ||w_i|| / (||d_i|| + 1e-10), Frobenius norms, w the stored weight as the
 *     forward uses it before damping (undamped, times its pruning mask);
 *   - 1-D tensors (biases, BN gamma and beta) are zero;
 *   - pruned weights (mask 0) get 0, before the normalisation, so a landscape never
 *     revives a pruned weight and the norms are those of the weights that exist.
 * The draw is basin's own generator (rng.h), deterministic by seed on every machine and
 * thread count: tensor k (its index in the graph, state-dict order) of axis x draws from
 * rng_split(seed, 2k), of y from rng_split(seed, 2k + 1), so each tensor's direction is
 * independent of the others and
 * can be derived alone (DESIGN.md section 9). It is not PyTorch's stream: to compute the
 * same grid elsewhere, save the pair and load it there (basin_ref.py landscape DIRS).
 *
 * Files: safetensors with "x.<param>" and "y.<param>" (the model's state-dict names,
 * float32, the parameter's shape) for every parameter, 1-D ones zero, and metadata
 * basin.format "1", basin.kind "directions", basin.arch, basin.model (the config line),
 * basin.dir_norm ("filter", or what made them: "pca"), basin.dir_ignore "biasbn" and
 * basin.seed when drawn from a seed: the format basin_ref.py make-dirs writes and its
 * landscape reads.
 */
#ifndef BASIN_ANALYSIS_DIRECTIONS_H
#define BASIN_ANALYSIS_DIRECTIONS_H

#include <stdint.h>

struct model;

struct directions {
    long n_params;          /* the model's store.n_params */
    float *x, *y;           /* (n_params) each, the store's layout; owned */
    int has_seed;           /* 1: drawn from seed */
    uint64_t seed;
    char norm[16];          /* "filter" (random, filter-normalised), "pca" (trajectory.h),
                             * "file" (loaded, as it was saved) */
};

/* A random filter-normalised pair for m from seed (see above). *out is owned by the
 * caller (directions_destroy). STATUS_NOMEM. */
int directions_random(struct directions **out, const struct model *m, uint64_t seed);
/* A zeroed pair for m, to fill by hand (tests, PCA directions). */
int directions_create(struct directions **out, const struct model *m);
void directions_destroy(struct directions *d);   /* NULL is a no-op */

/* Filter-normalise direction d (n_params, the store's layout) in place against m's
 * weights as directions_random does (1-D tensors zeroed, pruned weights zeroed). */
void directions_filter_normalise(float *d, const struct model *m);

/* Save d for m (atomic). STATUS_IO naming the file, STATUS_NOMEM. */
int directions_save(const struct directions *d, const struct model *m, const char *path);
/* Load a pair for m: every >= 2-D parameter needs x.<name> and y.<name> of its shape;
 * a 1-D one may be absent (zero). Values at pruned positions are set to 0. Errors name
 * the file and the tensor: STATUS_IO, STATUS_FORMAT, STATUS_NOT_FOUND (a missing
 * tensor), STATUS_MISMATCH (a wrong shape, a tensor the model does not have). The
 * seed is taken from basin.seed when present; norm is "file". */
int directions_load(struct directions **out, const struct model *m, const char *path);

/* XXH64 of the pair's values: the identity a landscape file records. */
uint64_t directions_hash(const struct directions *d);
/* XXH64 of m's parameters (store.w) and BN statistics: which weights a landscape is of. */
uint64_t directions_model_hash(const struct model *m);

#endif
