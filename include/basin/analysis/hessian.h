/* hessian.h: curvature of the loss: the Hessian's top eigenvalues (power iteration with
 * deflation) and its trace (Hutchinson's estimator with Rademacher probes), overall and per
 * parameter tensor, as PyHessian computes them (Yao et al. 2020; ref: mission-anchors 1.9,
 * 6 and 7) and with the per-layer figures its users ask for (PyHessian issue #10).
 *
 * The loss is the mean cross-entropy over a set of clips (by default a whole data set split;
 * PyHessian's maintainers warn that a batch of 128 gives eigenvalues that vary tenfold,
 * issue #5) with the model in eval mode: BN normalises with its running statistics and
 * dropout is off, so the loss is a fixed function of the weights, the sum over clips of
 * independent terms (DESIGN.md section 9: a product is a sum over data shards). PyHessian
 * also calls model.eval(), so the two compute the same function; a train-mode loss would
 * make each clip's term depend on its batch. The Hessian is taken over every trainable
 * parameter (conv and linear weights, biases, BN gamma and beta) as stored; pruned weights
 * (mask 0) have zero rows and columns.
 *
 * Hessian-vector products are exact by default: Pearlmutter's R-operator, a forward pass
 * that carries every activation's directional derivative along v and a backward pass that
 * carries every adjoint's, so H v = d/dt grad L(w + t v) at t = 0 with the ReLU masks, max
 * pool switches and the loss's softmax differentiated where they are, as PyTorch's double
 * backward (PyHessian's torch.autograd.grad of g . v) does. Cost: about three gradient
 * passes; float32 arithmetic, sums over batches in double. Tests check it against the
 * closed-form Hessian of a softmax regression and against PyTorch's on the same model,
 * clips and vector (tests/data/hessian).
 *
 * Finite differences are the alternative (hessian_opts.fd):
 *
 *   H v ~ (g(w + e v) - g(w - e v)) / (2 e),   e = step * rms(w) * sqrt(len) / |v|
 *
 * (v over len weights: every weight moves by about step * rms(w); step 1e-3 by default),
 * two gradient passes through a plan, the weights changed in place and restored bit for bit
 * after every product (also on error or cancel); the vector used is the one the float
 * weights realise, ((w + e v) - (w - e v)) / (2 e). Where the loss is smooth along v the
 * error is e^2/6 |d3L/dt3| (t along v) plus the gradients' float rounding over 2e (about
 * 1e-7 of the summed per-clip gradients, divided by 2e); tests check it against the exact
 * product on smooth graphs. Across a ReLU's kink or a max pool's switch the gradient jumps,
 * and the difference averages every jump within +-e into the product: it measures the
 * curvature of the loss at the scale e, not the Hessian. On the default CP-ResNet and the
 * default training split v.Hv by differences is about 3 times autograd's, at every step
 * from 1e-2 to 1e-4 (in float64 too), and grows without bound below: ReLU units sit
 * exactly at their kink there. Use it to see that curvature, not to compare with PyHessian.
 */
#ifndef BASIN_ANALYSIS_HESSIAN_H
#define BASIN_ANALYSIS_HESSIAN_H

#include <stdint.h>

#include "basin/core/progress.h"
#include "basin/data/dataset.h"

struct frontend_params;
struct graph;
struct model;

/* Defaults: PyHessian's maxIter and tol for the power iteration; probes for the trace. */
#define HESSIAN_DEFAULT_ITERS 100
#define HESSIAN_DEFAULT_TOL 1e-3
#define HESSIAN_DEFAULT_PROBES 100
#define HESSIAN_DEFAULT_TRACE_TOL 0.01
#define HESSIAN_DEFAULT_STEP 1e-3

/* One parameter tensor's diagonal block H_tt. */
struct hessian_layer {
    char name[64];          /* the tensor's state-dict name ("s1.b1.conv1.weight") */
    int tensor;             /* its index among the graph's tensors */
    long offset, numel;     /* its place in the parameter store */
    double eig;             /* top eigenvalue of H_tt (by_layer; NaN until computed) */
    int eig_iters;          /* products it took */
    int eig_converged;      /* 1: the relative change fell below tol */
    double trace, trace_se; /* Hutchinson's estimate of tr(H_tt) and its standard error, from
                             * the overall probes (E[z_t . (H z)_t] = tr(H_tt)); NaN without
                             * trace */
};

struct hessian_result {
    int n_clips;            /* clips the loss is the mean over */
    int n_split;            /* clips the split lists (some may have failed to load) */
    int subset;             /* 1: a subset of the split was asked for (hessian_opts.n) */
    long n_params;          /* trainable parameters */
    double loss, acc;       /* mean cross-entropy and accuracy (0..1) at the weights */
    double grad_norm;       /* |gradient| there */
    int top;                /* eigenvalues asked for (K) */
    int n_eig;              /* found so far */
    double *eig;            /* (K) top eigenvalues by magnitude, in the order found */
    int *eig_iters;         /* (K) products each took */
    int *eig_converged;     /* (K) 1: the relative change fell below tol */
    double current;         /* the running estimate of what is being computed now */
    int trace_on;
    double trace, trace_se; /* Hutchinson's estimate and its standard error (NaN before) */
    int n_probes;           /* probes so far */
    int by_layer;           /* per-tensor top eigenvalues were asked for */
    int n_layers;
    struct hessian_layer *layers;   /* (n_layers) every parameter tensor, in store order */
    int layers_done;        /* tensors whose eigenvalue is computed */
    int fd;                 /* 1: products by finite differences */
    double step;            /* their relative step */
    long n_hvp;             /* Hessian-vector products so far */
    double hvp_seconds;     /* mean wall time of one */
    double seconds;         /* wall time so far */
    char phase[128];        /* what runs now ("eigenvalue 2, iteration 7"), "done" at the end */
};

void hessian_result_destroy(struct hessian_result *r);   /* NULL is a no-op */
struct hessian_result *hessian_result_copy(const struct hessian_result *r);

struct hessian_opts {
    int top;                /* eigenvalues; 0: 1 */
    int iters;              /* power iterations per eigenvalue at most; 0: 100 */
    double tol;             /* stop when |new - old| / (|old| + 1e-6) < tol (PyHessian's
                             * rule); 0: 1e-3 */
    int no_trace;           /* 1: no trace */
    int probes;             /* Hutchinson probes at most; 0: 100 */
    double trace_tol;       /* stop the probes once the standard error is at most trace_tol
                             * of |trace| (after 10 probes); 0: 0.01; < 0: all probes */
    int by_layer;           /* 1: also each tensor's top eigenvalue (iters products each) */
    int fd;                 /* 1: products by finite differences of gradients (above) */
    double step;            /* their relative step; 0: 1e-3 */
    uint64_t seed;          /* start vectors and probes */
    int batch;              /* clips per pass; 0: 32 */
    int n_threads;          /* threads of every pass; 0: threads_get() at creation */
    enum dataset_split split;   /* hessian_model: the split (DATASET_SPLIT_ANY: every clip) */
    int n;                  /* hessian_model: 0 every clip of the split; else n of them,
                             * spread evenly over it (a subset, flagged in the result) */
    /* Called after every product with the result so far, on the calling thread; r is valid
     * during the call only. NULL: none. */
    void (*partial)(void *user, const struct hessian_result *r);
    void *user;
};

/* ----------------------------------------------------------------------------- products */

/* The loss of a finished graph over n clips x (n, C, F, T) with labels (n), and products
 * with its Hessian. Borrows g, x and labels (they must outlive it) and keeps a copy of the
 * weights, which must not change while it exists except through it. Exact products run in
 * batches of at most o->batch clips, fewer when the activations and their derivatives of
 * o->batch clips would take more than a quarter of the memory available; finite
 * differences make a PLAN_BACKWARD plan (allocating the graph's training state if it has
 * none). Errors: STATUS_MISMATCH (input does not fit), STATUS_INVALID (labels out of range
 * for the output), STATUS_NOMEM (not even one clip fits, with both figures). */
struct hessian;
int hessian_create(struct hessian **out, struct graph *g, int n, int c, int f, int t, const float *x,
                   const int *labels, const struct hessian_opts *o);
void hessian_destroy(struct hessian *h);   /* NULL is a no-op */

/* Mean loss and accuracy at the weights, and the gradient (n_params doubles; NULL: none).
 * One forward and backward pass over the clips; p gets ("hessian", batches, batches) and may
 * cancel (STATUS_CANCELLED). */
int hessian_loss_grad(struct hessian *h, double *loss, double *acc, double *grad, const struct progress *p);

/* hv = H_tt v for the block of tensor `tensor` (its numel values; -1: the whole Hessian over
 * n_params), exact or by finite differences (o->fd at creation); v is replaced by the vector
 * actually multiplied (rounded to float, or as the float weights realised it). One pass
 * over the clips (two with finite differences, which restore the weights bit for bit). p as
 * hessian_loss_grad. */
int hessian_hvp(struct hessian *h, int tensor, double *v, double *hv, const struct progress *p);

long hessian_n_params(const struct hessian *h);

/* ----------------------------------------------------------------------------- algorithms */

/* A symmetric operator y = A v on vectors of n doubles; it may replace v by the vector it
 * actually multiplied (as hessian_hvp does). Returns 0 or a status (which stops the
 * algorithm). */
typedef int (*hessian_op_fn)(void *user, double *v, double *y);

/* After every product: which eigenvalue k (0-based; -1 for the trace) and iteration or
 * probe `it` (1-based), the current estimate and (trace) its standard error. Returns 0 to
 * stop with STATUS_CANCELLED. NULL: none. */
typedef int (*hessian_step_fn)(void *user, int k, int it, double value, double se);

/* PyHessian's `eigenvalues`: for k = 0..K-1, from a random unit vector (seeded; the same
 * stream for every op of size n), power iteration on A, each vector orthogonalised against
 * the ones found (deflation), until the Rayleigh quotient's relative change is below tol or
 * after iters products. eig (K), vecs (K, n) or NULL, iters_used (K) and converged (K) or
 * NULL. Finds eigenvalues by magnitude (a negative one when it dominates). */
int hessian_power(hessian_op_fn op, void *user, long n, int k, int iters, double tol, uint64_t seed,
                  double *eig, double *vecs, int *iters_used, int *converged, hessian_step_fn step,
                  void *step_user);

/* Hutchinson's trace estimator: the mean over Rademacher probes z (seeded) of z . A z, with
 * its standard error (sample standard deviation / sqrt(probes); NaN with one probe), at
 * most `probes` of them, stopping after at least 10 once se <= rel_se |mean| (rel_se < 0:
 * never). With n_blocks > 0 also each block's trace, blocks given by start and len (their
 * z_b . (A z)_b; unbiased because E[z_b z_c^T] = 0 for b != c) into block_trace and
 * block_se. *used gets the probes made. */
int hessian_hutchinson(hessian_op_fn op, void *user, long n, int probes, double rel_se, uint64_t seed,
                       int n_blocks, const long *start, const long *len, double *trace, double *se,
                       double *block_trace, double *block_se, int *used, hessian_step_fn step,
                       void *step_user);

/* ----------------------------------------------------------------------------- runs */

/* Everything for the loss of h: loss, gradient norm, the top o->top eigenvalues, the trace
 * (unless o->no_trace) with per-tensor traces, and (o->by_layer) each tensor's top
 * eigenvalue, in that order, calling o->partial after every product. p gets ("hessian",
 * products done, planned at most) and may cancel: STATUS_CANCELLED with *out holding what
 * was done. *out is owned by the caller. */
int hessian_run(struct hessian_result **out, struct hessian *h, const struct hessian_opts *o,
                const struct progress *p);

/* The same for model m on o->split of ds (every clip, or o->n spread evenly: clip
 * floor(i * N / n)), through the model's front end (frontend NULL: basin.frontend) and
 * basin.norm at the data set's clip length. p gets "features" then "hessian". Errors as
 * hessian_create, plus those of loading features (dataset_require_split, pipeline_check). */
int hessian_model(struct hessian_result **out, struct model *m, const struct dataset *ds,
                  const struct frontend_params *frontend, const struct hessian_opts *o,
                  const struct progress *p);

#endif
