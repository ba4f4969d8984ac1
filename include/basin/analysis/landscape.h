/* landscape.h: 2-D loss landscapes and 1-D slices (Li et al. 2018; ASC_Sharpness).
 *
 * The loss at grid point (ix, iy) is the mean cross-entropy, over every clip given, of
 * the model with weights w + a x + b y, where (x, y) is a direction pair (directions.h),
 * a = c[ix], b = c[iy] and c[i] = (i - (n-1)/2) 2 range / (n-1), so the centre is exactly
 * 0 (ref: mission-anchors 1.4, 1.5; basin_ref.py grid_coords). The model runs in eval
 * mode: BN with its stored running statistics (never perturbed), dropout off; the
 * accuracy (in %, as loss-landscape and basin_ref.py report it) comes from the same pass.
 * A 1-D slice is the row b = 0 along x (n x 1 points).
 *
 * The units are explicit, so a landscape can be split across processes and merged
 * (DESIGN.md section 9): a landscape is a list of independent grid points, each
 * identified by its indices (ix, iy) and computed by landscape_point from the saved or
 * seed-derived directions alone; a surface records which points it has; a CSV of some of
 * the points (landscape_csv_write) loads back into a surface (landscape_csv_load), so a
 * run resumes from its file and partial files merge.
 *
 * Weights are perturbed in place in the model's parameter store and restored after every
 * point (also after an error or a cancel) by copying back the saved values of the tensors
 * the directions touch, so the store is bit-identical afterwards; pruned weights stay
 * pruned (the directions are zero there, and the forward multiplies by the mask). No copy
 * of the model is made: the inference predictors (BN folded, model/predict.h; one per
 * worker thread, all reading the same store) are made per evaluator and reused for every
 * point, over clips kept in memory.
 *
 * Order: landscape_run computes the missing points centre first, then by distance from
 * the centre (rings), ties by iy then ix (landscape_order), with a callback after each,
 * so a view and the sharpness figure (sharpness.h) are live and the sharpness disc fills
 * in first.
 *
 * CSV (DESIGN.md section 6): long format, header "ix,iy,alpha,beta,loss,acc", one row per
 * computed point in row-major order (iy, then ix), alpha and beta with %.6g, loss %.9g,
 * acc (%) %.6g, as basin_ref.py landscape prints it; then comment lines starting with '#'
 * that the caller gives (what the grid is of; pandas: read_csv(path, comment="#")). A
 * 1-D slice has iy 0 and beta 0.
 */
#ifndef BASIN_ANALYSIS_LANDSCAPE_H
#define BASIN_ANALYSIS_LANDSCAPE_H

#include <stddef.h>
#include <stdint.h>

#include "basin/core/progress.h"
#include "basin/data/dataset.h"

struct directions;
struct features;
struct frontend_params;
struct model;

#define LANDSCAPE_MAX_N 1001   /* points along an axis */

/* ----------------------------------------------------------------------------- clips */

/* The clips a landscape is computed over (borrowed). */
struct landscape_clips {
    int n;                      /* N clips */
    int c, f, t;                /* each (C, F, T) */
    const float *x;             /* (N, C, F, T), normalised as the model expects */
    const int *labels;          /* (N) class indices */
    const int *groups;          /* (N) group of each clip (its device) in [0, n_groups), or NULL */
    int n_groups;               /* 0 without groups */
};

/* The features of (a subset of) a data set split as a model takes them, and the device
 * of every clip: landscape_data_load fills it, landscape_data_fini releases it. */
struct landscape_data {
    struct features *f;         /* owned */
    int *devices;               /* (N) device index of every clip; owned */
    int n_devices;              /* the data set's device count */
    int n_split;                /* clips listed in the split */
    int subset;                 /* 1: fewer clips than the split has were asked for */
    uint64_t subset_seed;       /* the seed that chose them */
    struct landscape_clips clips;   /* into f, groups = devices */
};

/* Load the clips of `split` of ds (DATASET_SPLIT_ANY: every clip) through the model's
 * front end (fp, or NULL: the model's basin.frontend) and its basin.norm, as eval does
 * (the split must have clips, the model must fit the data: pipeline_check). n > 0 asks
 * for a subset: n clips of the split drawn without replacement with subset_seed (kept in
 * listing order); n <= 0 or n >= the split's size takes the whole split. Clips that fail
 * to load are skipped (logged). p gets "features". Errors as eval_dataset. */
int landscape_data_load(struct landscape_data *d, const struct model *m, const struct dataset *ds,
                        enum dataset_split split, int n, uint64_t subset_seed,
                        const struct frontend_params *fp, const struct progress *p);
void landscape_data_fini(struct landscape_data *d);

/* ----------------------------------------------------------------------------- evaluator */

struct landscape_eval;

/* An evaluator of m over clips (m borrowed, it must outlive the evaluator; the clips
 * struct is copied, the arrays it points to borrowed). With T = threads_get() of the
 * calling thread, the clips are shared out among min(T, batches) workers, each running
 * its own one-thread inference predictor on batches of `batch` clips (0: automatic:
 * min(N, LANDSCAPE_AUTO_BATCH), halved while the plans do not fit the memory available);
 * with one worker (N clips fit one batch), the predictor uses the caller's T. A clip's
 * loss does not depend on which worker computes it, so every T > 1 with more than one
 * batch gives the bits of T = 1 (a T-thread predictor may take other conv kernels, which
 * agree within rounding). STATUS_MISMATCH (the clips do not fit the model),
 * STATUS_NOMEM. */
#define LANDSCAPE_AUTO_BATCH 8
int landscape_eval_create(struct landscape_eval **out, struct model *m, const struct landscape_clips *clips,
                          int batch);
void landscape_eval_destroy(struct landscape_eval *e);   /* NULL is a no-op */
int landscape_eval_batch(const struct landscape_eval *e);     /* clips per pass of a worker */
int landscape_eval_workers(const struct landscape_eval *e);
struct model *landscape_eval_model(const struct landscape_eval *e);
const struct landscape_clips *landscape_eval_clips(const struct landscape_eval *e);

/* The mean cross-entropy (double, a max-shifted log-sum-exp per clip, as
 * torch.nn.functional.cross_entropy) and accuracy (%, argmax, first maximum on ties) of
 * the model's current weights over all the clips, and per group when group_loss /
 * group_acc (n_groups each) are not NULL (NaN for a group without clips). p (NULL: none)
 * gets ("landscape", done + clips so far, total) from the calling thread after each batch
 * it computes (with several workers, the clips all workers have finished), and once more
 * at the end; a cancel stops every worker at its next batch and returns STATUS_CANCELLED. */
int landscape_eval_run(struct landscape_eval *e, double *loss, double *acc, double *group_loss, double *group_acc,
                       const struct progress *p, long done, long total);

/* ----------------------------------------------------------------------------- surfaces */

struct landscape_opts {
    int n;                      /* points along an axis, 2..LANDSCAPE_MAX_N (11) */
    double range;               /* half-width r > 0 of the grid (0.25) */
    int dims;                   /* 2: n x n grid (default, 0 means 2); 1: a slice along x */
};

/* One surface, filled as points are computed (all arrays owned by the landscape). */
struct landscape_surface {
    int n_x, n_y;               /* n and n (a slice: n and 1) */
    double range;
    double *coords;             /* (n_x) the coordinates c[i] of both axes */
    double *loss, *acc;         /* (n_y, n_x), [iy * n_x + ix]; NaN where not computed */
    unsigned char *done;        /* (n_y, n_x) 1 when the point (every group too) is there */
    int n_points, n_done;
    int n_groups;               /* groups of the clips (0: none) */
    double *group_loss, *group_acc; /* (n_groups, n_y, n_x) */
    long *group_n;              /* (n_groups) clips of each group */
    int n_computed;             /* points computed by this landscape (not loaded) */
    double seconds;             /* wall time of those */
};

struct landscape;

/* The coordinate of index i of n on [-range, range]: (i - (n-1)/2) 2 range / (n-1). */
double landscape_coord(int i, int n, double range);
/* The order landscape_run visits the n_x x n_y points in: point indices iy * n_x + ix,
 * centre first, then by squared distance from the centre (in doubled index units, so an
 * even n works), ties by iy then ix. order holds n_x * n_y ints. */
void landscape_order(int n_x, int n_y, int *order);

/* A landscape of e's model along d (borrowed; d->n_params must match the model) on the
 * grid of o (NULL: 11 x 11 on +-0.25). Saves the unperturbed values of the tensors d
 * touches (those where x or y is not zero). STATUS_INVALID (options), STATUS_NOMEM. */
int landscape_create(struct landscape **out, struct landscape_eval *e, const struct directions *d,
                     const struct landscape_opts *o);
void landscape_destroy(struct landscape *L);   /* NULL is a no-op */
const struct landscape_surface *landscape_surface(const struct landscape *L);
struct landscape_eval *landscape_evaluator(const struct landscape *L);

/* Compute point (ix, iy): set the weights to w + c[ix] x + c[iy] y, evaluate, restore the
 * weights bit for bit, store loss and accuracy (and per group) in the surface. A point
 * already there is computed again. p as landscape_eval_run (units: clips over the whole
 * grid). STATUS_INVALID for indices outside the grid; STATUS_CANCELLED keeps the surface
 * as it was. */
int landscape_point(struct landscape *L, int ix, int iy, const struct progress *p);

/* Called after every point landscape_run computes; return 0 to stop (STATUS_CANCELLED). */
typedef int (*landscape_point_fn)(void *user, const struct landscape *L, int ix, int iy);

/* Compute every missing point in landscape_order, calling on_point (may be NULL) after
 * each. p reports ("landscape", clips evaluated, clips of the missing points) within every
 * point and may cancel: the point under way is dropped, the ones done stay. Returns 0
 * when the surface is complete, STATUS_CANCELLED, or an evaluation's error. */
int landscape_run(struct landscape *L, landscape_point_fn on_point, void *user, const struct progress *p);

/* Store a value computed elsewhere (a file, another process): group -1 is the overall
 * surface, else that group's. The point counts as done once the overall value and every
 * group with clips have one. STATUS_INVALID for indices or a group out of range. */
int landscape_set(struct landscape *L, int group, int ix, int iy, double loss, double acc);

/* Write the points of surface s that are there (group -1: overall, else that group) as
 * the CSV above, then `trailer` (lines starting with '#', may be NULL), atomically.
 * STATUS_IO naming the file. */
int landscape_csv_write(const struct landscape_surface *s, int group, const char *path, const char *trailer);

/* Read the CSV at path into group `group` of L (-1: overall; landscape_set for each row).
 * Every row must lie on L's grid: ix, iy within it and alpha, beta equal to its
 * coordinates (within the 6 digits written); a point given twice with different values,
 * a bad header or field is STATUS_FORMAT naming the file and line; a missing file is
 * STATUS_IO. The comment lines (without their '#' and leading spaces, one per line) go
 * to trailer (n bytes, may be NULL). *n_rows gets the rows read (may be NULL). */
int landscape_csv_load(struct landscape *L, int group, const char *path, char *trailer, size_t n,
                       int *n_rows);

#endif
