/* erf.h: effective receptive fields (Luo et al. 2016, "Understanding the Effective Receptive
 * Field in Deep CNNs"; used by Koutini et al. to study CP-ResNet's rho).
 *
 * The ERF of a feature map (a node of the graph, the "tap") is the gradient of its centre
 * unit with respect to the input:
 *
 *   unit u = sum over the tap's channels c of tap[c, H/2, W/2]   (integer division: H//2)
 *   map    = mean over the inputs x of sum over input channels of |d u / d x| : (F, T)
 *
 * computed with the model in eval mode (BN with its running statistics, dropout off), so
 * every input is independent of the others in its batch. ref: mission-anchors 2.7 and
 * ../shared/peers/basin_ref.py `erf` (the same unit, the same mean of |gradient|; its
 * (C, F, T) output is erf_result.channels here). Inputs are the clips of a data set split
 * through the model's front end and normalisation, zeros, or standard normal noise (Luo's
 * two data-free probes).
 *
 * The theoretical receptive field of the unit is a box in input cells (mel bins x frames):
 * the standard recurrence of graph_describe, carried with its position (each conv and pool
 * moves the box's start by -padding and its end by (k - 1) dil - padding, in input cells of
 * the layer's jump; a residual sum takes the union). Outside it the gradient is exactly 0.
 * Where the box runs past the input it covers zero padding; maps are reported cropped to
 * the box's intersection with the input.
 *
 * Size of the ERF: the area holding a fraction p (0.68 and 0.95: one and two standard
 * deviations of a Gaussian, Luo's sigma regions) of the gradient mass, two ways:
 *   cells  the smallest number of cells whose values sum to at least p of the total: sort
 *          the map's values in decreasing order and count until the running sum reaches
 *          p * total (erf_mass_cells); ties do not change the count
 *   box    the smallest box of (2a + 1) x (2b + 1) cells centred on the RF's centre cell
 *          (the middle cell of the theoretical box; the lower of the two middle cells when
 *          its extent is even) whose cells, clipped to the map, hold at least p of the
 *          total: smallest by clipped area, then by max(a, b), then by a (erf_mass_box)
 * "At least" is tested as sum >= p * total * (1 - 1e-12), so a map whose cells add up to
 * exactly p of the mass is not pushed one cell further by rounding. A map without mass
 * (all zeros) has area 0.
 */
#ifndef BASIN_ANALYSIS_ERF_H
#define BASIN_ANALYSIS_ERF_H

#include <stdint.h>

#include "basin/core/progress.h"
#include "basin/data/dataset.h"

struct frontend_params;
struct graph;
struct model;

enum erf_input {
    ERF_INPUT_DATA,     /* clips of a data set split (or inputs the caller gives) */
    ERF_INPUT_ZERO,     /* all-zero input (one pass: every zero input gives the same map) */
    ERF_INPUT_NOISE,    /* N(0, 1) in every cell, drawn from the seed */
};

/* "data", "zero", "noise"; parse returns STATUS_INVALID naming them. */
const char *erf_input_name(enum erf_input in);
int erf_input_parse(const char *name, enum erf_input *out);

/* Clips averaged by default over a split (spread evenly over it), and noise draws. */
#define ERF_DEFAULT_N 100

/* The area holding a fraction of the gradient mass (see above). */
struct erf_mass {
    double frac;        /* 0.68 or 0.95 */
    long cells;         /* the smallest number of cells holding it */
    int box_f, box_t;   /* the smallest centred box holding it: 2a + 1 bins x 2b + 1 frames
                         * (before clipping to the map) */
    long box_cells;     /* that box's area within the map */
};

struct erf_result {
    int n_channels, n_mels, n_frames;  /* C, F, T of the input */
    float *map;             /* (F, T) mean over inputs of sum_c |d unit / d x[c]| */
    float *channels;        /* (C, F, T) mean over inputs of |d unit / d x[c]| */
    int n;                  /* inputs averaged (so far, when cancelled or partial) */
    int n_total;            /* inputs asked for */
    enum erf_input input;
    int node;               /* the tap */
    char layer[48];         /* its name ("head.bn"; anonymous nodes: the name asked for) */
    int tap_c, tap_f, tap_t;           /* the tap's shape per input */
    int unit_f, unit_t;                /* the centre unit: (tap_f / 2, tap_t / 2) */
    long box[2][2];         /* theoretical RF of the unit: input rows box[0][0]..box[0][1] and
                             * frames box[1][0]..box[1][1], inclusive; may run past the input */
    long rf[2];             /* its extent (F, T): box[d][1] - box[d][0] + 1 */
    int whole[2];           /* 1: the unit sees the whole input along F (0) / T (1) */
    long crop[2][2];        /* the box clipped to the input, inclusive */
    int centre[2];          /* the cell centred boxes grow from (F, T) */
    double mass;            /* the map's total */
    double peak;            /* its largest value */
    struct erf_mass m68, m95;
};

void erf_result_destroy(struct erf_result *r);   /* NULL is a no-op */
/* A deep copy (for a view to keep while the job goes on); NULL when out of memory. */
struct erf_result *erf_result_copy(const struct erf_result *r);

struct erf_opts {
    const char *layer;      /* a node name ("s1.b1.conv1", "head.bn") or a module name
                             * whose output is meant ("stem", "s2", "s1.b3", "head", "b4":
                             * basin_ref.py's taps); NULL or "": the layer before the global
                             * pooling (model_summary.rf_layer); erf_run needs a node */
    enum erf_input input;
    int n;                  /* inputs to average: clips of the split (0: ERF_DEFAULT_N, or
                             * all when the split has fewer) or noise draws (0:
                             * ERF_DEFAULT_N); ignored for zero input */
    enum dataset_split split;   /* erf_model: the split (DATASET_SPLIT_ANY: every clip) */
    uint64_t seed;          /* noise */
    const float *x;         /* erf_model, ERF_INPUT_DATA: inputs the caller gives instead of a
                             * data set's clips: x_n of (in_ch, x_f, x_t) (NULL: ds's) */
    int x_n, x_f, x_t;
    int batch;              /* inputs per pass; 0: 16 */
    int n_threads;          /* the plan's threads; 0: threads_get() */
    /* Called after every batch with the result so far (mean over the inputs done, masses
     * updated), on the calling thread; r is valid during the call only. NULL: none. */
    void (*partial)(void *user, const struct erf_result *r);
    void *user;
};

/* The node a layer name means (see erf_opts.layer): an exact node name, else the module
 * prefix NAME (nodes named "NAME.<...>"): its last node, followed through an anonymous
 * residual sum (or relu) that consumes it, so "s2" is stage 2's output and "s1.b1" block 1's
 * (after its pool). STATUS_NOT_FOUND naming the modules there are. */
int erf_find_layer(const struct graph *g, const char *name, int *node);

/* The theoretical receptive field of unit (uf, ut) of node's output, for inputs of F x T:
 * the box (inclusive, may run past [0, F) x [0, T)) and the axes a global reduction made
 * whole (box = the whole input there). 0, or STATUS_INVALID / STATUS_MISMATCH from
 * graph_describe when the input does not fit the graph. */
int erf_rf_box(const struct graph *g, int node, int f, int t, int uf, int ut, long box[2][2],
               int whole[2]);

/* The mass measures on any map m (rows, cols) of non-negative values (see above); -1 when
 * out of memory. The number of cells holding frac of the mass: */
long erf_mass_cells(const float *m, int rows, int cols, double frac);
/* The centred box around (cf, ct) (moved inside the map): returns its area within the map
 * and its full size 2a+1, 2b+1 in *box_f, *box_t; 0 (and sizes 0) for a map without mass. */
long erf_mass_box(const float *m, int rows, int cols, int cf, int ct, double frac, int *box_f,
                  int *box_t);

/* The ERF of node `node` of g (a finished graph) over inputs of (c, f, t):
 *   ERF_INPUT_DATA   the n inputs x (n, C, F, T) the caller gives (basin_ref.py erf's
 *                    contract)
 *   ERF_INPUT_ZERO   one zero input (x NULL, n ignored)
 *   ERF_INPUT_NOISE  o->n draws (x NULL)
 * o->layer is ignored. Runs a PLAN_BACKWARD plan (which allocates the graph's training
 * state if it has none): eval-mode forward, then plan_backward_from at the tap with ones at
 * the centre unit of every channel. p gets ("erf", inputs done, total) after every batch and
 * may cancel: then STATUS_CANCELLED with *out holding the mean over the inputs done (NULL
 * when none was). Errors: STATUS_MISMATCH (input does not fit), STATUS_INVALID, STATUS_NOMEM.
 * *out is owned by the caller. */
int erf_run(struct erf_result **out, struct graph *g, int node, int c, int f, int t, int n,
            const float *x, const struct erf_opts *o, const struct progress *p);

/* The ERF of model m at o->layer (default: model_summary.rf_layer): for ERF_INPUT_DATA over
 * o->n clips of o->split of ds, spread evenly over the split's listing order (clip
 * floor(i * N / n) for i < n), through the model's front end (frontend NULL: basin.frontend)
 * and basin.norm, at the data set's clip length, or over the inputs o->x when given (ds may
 * then be NULL); for zero and noise inputs at the model's clip length (basin.input, else
 * 10 s; ds may be NULL). Errors as erf_run, plus those of loading features
 * (dataset_require_split, pipeline_check). p gets "features" then "erf". */
int erf_model(struct erf_result **out, struct model *m, const struct dataset *ds,
              const struct frontend_params *frontend, const struct erf_opts *o,
              const struct progress *p);

/* Write r as CSV (atomic), pandas-ready: a header `f,t,df,dt,erf,erf_rel` (then
 * `erf_c0,erf_c1,...`, one column per input channel, when C > 1) and one row per cell of the
 * crop (the RF box within the input; the gradient is 0 everywhere else), mel bin by mel bin
 * and frame by frame within each: f and t the input cell (0-based mel bin and frame), df
 * and dt its offset from the RF's centre cell, erf the map's value (mean over inputs of
 * sum_c |d unit / d x[c]|), erf_rel that over the map's peak (0 when the map is all
 * zeros), erf_cK channel K's part. Values with 9 significant digits. 0 or STATUS_IO naming
 * the file. */
int erf_write_csv(const struct erf_result *r, const char *path);

#endif
