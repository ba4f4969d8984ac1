/* prune.h: unstructured pruning of a model's weights through the masks of its store
 * (graph.h, store.mask): global or per-layer magnitude pruning with a per-layer cap against
 * layer collapse (CP-JKU), its ramps over epochs, and static random pruning to an exact
 * parameter count (Golubeva et al.; Koutini et al.).
 *
 * What is prunable: every weight tensor of >= 2 dimensions (TENSOR_WEIGHT: every conv,
 * shortcut, the classifier conv or linear), as CP-JKU's prune_method "all" gathers them; BN
 * parameters and biases stay dense. A mask of 0 removes a weight from the forward (w * mask)
 * and from its gradient (d(w * mask)/dw = mask); the optimiser leaves it untouched, so its
 * old magnitude stays and a later magnitude step may revive it (ref: mission-anchors 3.1).
 * Every function here sets g->masked when it zeroes a mask.
 *
 * Counts: "parameters" are the trainable parameters (graph_param_count: weights, biases,
 * BN gamma and beta), "kept" ones those whose mask is 1 (biases and BN always count).
 * ref: mission-anchors 3.1 (cp_resnet_prune.py, trainer.py), 3.2 (weight_anticolapse_limit),
 * 3.3 (static random sparsity).
 */
#ifndef BASIN_MODEL_PRUNE_H
#define BASIN_MODEL_PRUNE_H

#include <stdint.h>

#include "basin/core/graph.h"
#include "basin/model/model.h"

enum prune_scope {
    PRUNE_GLOBAL,               /* "global": one ranking over every prunable weight */
    PRUNE_LAYER,                /* "layer": the same fraction of each layer */
};

enum prune_ramp {
    PRUNE_RAMP_LINEAR,          /* "linear": r = clip(e / L, 0, 1) (CP-JKU's CLI default) */
    PRUNE_RAMP_EXP,             /* "exp": r = exp(-(1 - clip(e, 0, L) / L)^3) */
};

#define PRUNE_CLASSIFIER_CAP 0.5    /* weight_anticolapse_limit of the classifier */

/* The options of iterative pruning in a training run (train.h: train_opts.prune). */
struct prune_opts {
    double target;              /* P, the fraction of the prunable weights pruned at the end
                                 * of the ramp, in [0, 1); 0: off (unless target_params) */
    long target_params;         /* > 0: P from the parameters to keep (prune_fraction_for) */
    enum prune_scope scope;
    enum prune_ramp ramp;
    int ramp_epochs;            /* L >= 1 (CP-JKU's prune_rampup_len: 50) */
    double classifier_cap;      /* the classifier's largest pruned fraction (0.5) */
};

/* Off; global, linear over 50 epochs, classifier cap 0.5. */
void prune_opts_default(struct prune_opts *o);
const char *prune_scope_name(enum prune_scope s);
int prune_scope_parse(const char *name, enum prune_scope *out);
const char *prune_ramp_name(enum prune_ramp r);
int prune_ramp_parse(const char *name, enum prune_ramp *out);

/* The ramp r(e, L) in [0, 1] for epoch e (0-based): the fraction of P pruned at the start
 * of epoch e. linear: r(0) = 0; exp: r(0) = e^-1 ~ 0.368; both r(L) = 1. */
double prune_ramp_at(enum prune_ramp r, int epoch, int ramp_epochs);

/* Weights of every prunable tensor (their count), and those kept (mask 1). */
long prune_prunable(const struct graph *g);
/* Trainable parameters kept: graph_param_count minus the masked weights. */
long prune_kept_params(const struct graph *g);

/* P for a target of parameters to keep: (trainable - target) / prunable (ref:
 * mission-anchors 3.1). STATUS_INVALID when the target is above the trainable count or
 * would leave P >= 0.9999 ("prune: params=1000 is below what cannot be pruned (...)"). */
int prune_fraction_for(const struct graph *g, long target_params, double *p);

/* The classifier: the last prunable tensor in graph order (cpresnet's 1x1 head conv,
 * sepnet's and cnn10's last linear), or -1. */
int prune_classifier_tensor(const struct graph *g);

/* Caps: caps[t] for every tensor t (n_tensors of them) is the largest fraction of tensor t
 * that may be pruned, in [0, 1]; 1 = uncapped. prune_caps_default fills 1 everywhere and
 * classifier_cap for the classifier. */
void prune_caps_default(const struct graph *g, double classifier_cap, double *caps);

/* Magnitude pruning to fraction p in [0, 1) of the prunable weights, masks recomputed from
 * the magnitudes of all weights (pruned ones included), ties broken by position.
 *   global: exactly round(p * prunable) weights are pruned, the smallest |w| first, except
 *     that a tensor is never pruned past floor(caps[t] * numel): its smallest weights beyond
 *     that stay, and the next smallest of the other tensors go instead, so the total is
 *     still exact (the global threshold with capped layers saturated, ref: 3.2).
 *     STATUS_INVALID when the caps leave fewer than that many prunable weights.
 *   layer: exactly min(round(p * numel), floor(caps[t] * numel)) of each tensor.
 * caps may be NULL (uncapped). Allocates a sort buffer of 16 bytes per prunable weight:
 * STATUS_NOMEM. */
int prune_magnitude(struct graph *g, double p, enum prune_scope scope, const double *caps);

/* Static random pruning to exactly target_params kept trainable parameters: the weights
 * to remove are spread over the prunable tensors in proportion to their sizes (largest
 * remainders, so the total is exact) and drawn uniformly within each tensor from a
 * generator seeded with seed (the same seed, the same masks). Masks are reset to 1 first.
 * STATUS_INVALID as prune_fraction_for. */
int prune_random(struct graph *g, long target_params, uint64_t seed);

/* The start of training epoch e (0-based) under o (train.h: train_opts.prune): magnitude
 * pruning to P r(e, L) with P = o->target or from o->target_params, o's scope and the
 * classifier capped at o->classifier_cap. Nothing (0) when pruning is off. Errors as
 * prune_fraction_for and prune_magnitude. */
int prune_epoch(struct graph *g, const struct prune_opts *o, int epoch);
/* 1 when o asks for pruning. */
int prune_opts_on(const struct prune_opts *o);

/* Every mask back to 1 (g->masked cleared). */
void prune_reset(struct graph *g);

/* One row per prunable tensor, for the per-layer table. */
struct prune_layer {
    int tensor;                 /* index into g->tensors */
    int node;                   /* the node using it */
    long numel, kept;
    int filters;                /* output filters (shape[0]) */
    int filters_removed;        /* filters whose weights are all masked */
    double macs, macs_kept;     /* per clip (from model_describe), and times kept / numel */
};
/* The rows of m's prunable tensors in graph order (caller storage of n_tensors rows; *n
 * receives the count), MACs for an input of (in_ch, f, t). Errors as model_describe;
 * STATUS_NOMEM. */
int prune_layers(const struct model *m, int f, int t, struct prune_layer *rows, int *n);

#endif
