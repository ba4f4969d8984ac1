/* graph.h: a static graph of ops over one parameter store, and the plans that run it.
 *
 * An architecture builder adds nodes in topological order (each refers to earlier nodes),
 * naming every parameter tensor as PyTorch's state_dict would ("s1.b1.conv1.weight").
 * graph_finish() then allocates the store: all parameters in one contiguous array, with
 * their pruning masks in an array of the same layout, and the BN running statistics in a
 * buffer array. Gradients and optimiser moments, in the same layout too, are training
 * state: graph_alloc_training() allocates them, and a PLAN_BACKWARD plan does so when it
 * is made, so a model used only for inference costs 8 bytes per parameter, not 20.
 * Optimiser steps, pruning, landscape directions and checkpoint I/O are each one loop over
 * these arrays.
 *
 * A plan is the graph made runnable for one input size (N, C, F, T): node shapes, every
 * activation, gradient and scratch buffer, allocated once in one arena whose pages are
 * touched at creation and reused on every step. Several plans may share one graph (a
 * training plan and an inference plan); they share the parameters but not the buffers.
 *
 * Shapes are per sample (C, F, T); a plan's batch is N. A linear node needs a (C, 1, 1)
 * input, which the pooling heads produce.
 */
#ifndef BASIN_CORE_GRAPH_H
#define BASIN_CORE_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "basin/core/ops.h"

struct rng;

enum op_kind {
    OP_INPUT,
    OP_CONV2D,
    OP_BATCHNORM,   /* axis 1: per channel; axis 2: per mel bin (bn0) */
    OP_RELU,
    OP_ADD,         /* residual sum, optionally followed by relu */
    OP_ROLL,        /* channel roll */
    OP_MAXPOOL,
    OP_AVGPOOL,
    OP_MEAN,        /* mean over axis 2 (F) or 3 (T); that axis becomes 1 */
    OP_MAX,         /* max over axis 2 or 3 */
    OP_LINEAR,
    OP_DROPOUT,
    OP_COUNT
};

/* What a stored tensor is; decides pruning, directions and optimiser handling. */
enum tensor_kind {
    TENSOR_WEIGHT,       /* conv or linear weight (>= 2-D): prunable, filter-normalised */
    TENSOR_BIAS,         /* linear bias (1-D) */
    TENSOR_BN_WEIGHT,    /* gamma (1-D) */
    TENSOR_BN_BIAS,      /* beta (1-D) */
    TENSOR_RUNNING_MEAN, /* buffer, not a parameter */
    TENSOR_RUNNING_VAR,  /* buffer, not a parameter */
};

static inline int tensor_kind_is_param(enum tensor_kind k)
{
    return k != TENSOR_RUNNING_MEAN && k != TENSOR_RUNNING_VAR;
}

struct graph_tensor {
    char name[64];          /* state-dict name */
    enum tensor_kind kind;
    int n_dims;
    int shape[4];
    long numel;
    long offset;            /* into store.w/g/m/v/mask (parameters) or store.buf (buffers) */
    int node;               /* the node that uses it */
};

/* The parameter store. w, g, m, v and mask have n_params floats in the same layout.
 * g, m and v are NULL until graph_alloc_training() (or a PLAN_BACKWARD plan_create) made
 * them; then they stay for the graph's life. */
struct store {
    long n_params;
    float *w;               /* weights as stored (undamped, unmasked) */
    float *g;               /* gradients w.r.t. w, written by plan_backward; NULL before training */
    float *m, *v;           /* optimiser moments (zero when made); NULL before training */
    float *mask;            /* pruning masks: 1 keep, 0 pruned; all 1 at creation */
    long n_buffers;
    float *buf;             /* BN running means and variances */
};

struct node {
    enum op_kind op;
    char name[48];          /* module name ("s1.b1.conv1"), "" for anonymous nodes */
    int in[2];              /* input nodes, -1 when unused */
    int c;                  /* output channels (known at build time) */
    /* attributes, by op */
    int k[2], stride[2], pad[2], dil[2], groups; /* conv2d; k and stride for pools */
    float damping;          /* conv2d: frequency damping m (0 = off) */
    int axis;               /* batchnorm: 1 or 2; mean/max: 2 or 3 */
    int n_features;         /* batchnorm axis 2: mel bins it normalises */
    int relu;               /* batchnorm, add: fused relu on the output */
    int shift;              /* roll: channels rotated (torch.roll(x, shift, 1)) */
    float p;                /* dropout probability */
    float eps, momentum;    /* batchnorm */
    int tensor[4];          /* conv/linear: weight, bias (-1); bn: gamma, beta, mean, var */
    float act_scale;        /* conv/linear: int8 scale of its input (0: float); see below */
};

struct graph {
    int n_nodes, cap_nodes;
    struct node *nodes;
    int n_tensors, cap_tensors;
    struct graph_tensor *tensors;
    struct store store;
    int output;             /* the logits node: the last one added */
    int error;              /* first build error (enum status), reported by graph_finish */
    int masked;             /* set by whoever zeroes a mask: plans then use w * mask */
    int act_quant;          /* nodes with act_scale > 0 (model/compress.h calibrates them) */
};

/* Simulated int8 activations: when g->act_quant is set, an eval-mode forward (train 0) gives
 * every conv and linear node with act_scale s > 0 its input fake-quantised, each value x
 * replaced by graph_act_quant(x, s) = clamp(nearbyintf(x / s), -127, 127) * s (per-tensor
 * symmetric int8, ties to even), what an int8 kernel consumes; the node's input buffer
 * itself (read by other consumers too) is left as it is. Plans made while act_quant is
 * set do not fuse (fusion hides the inputs of a dwpair group's convs); an inference pass
 * on a plan made before the scales were set that fuses such convs fails with
 * STATUS_INVALID. With act_quant 0 nothing of this runs. Training passes never quantise. */
float graph_act_quant(float x, float s);

/* ----------------------------------------------------------------------------- building */

/* An empty graph; NULL with STATUS_NOMEM. */
struct graph *graph_create(void);
void graph_destroy(struct graph *g);

/* Builders return the new node's index. They never fail on their own: the first error
 * (bad argument, out of memory) is kept in g->error, later calls return -1, and
 * graph_finish() reports it. */
int graph_input(struct graph *g, int c);
/* Bias-free conv named `name` (its weight is "<name>.weight", (O, I/groups, KF, KT)).
 * damping m > 0 multiplies kernel row i by 1 - (1 - m)|i - c|/c, c = (KF - 1)/2, on every
 * forward (ref: mission-anchors 2.3); the stored weight stays raw. */
int graph_conv2d(struct graph *g, const char *name, int in, int co, int kf, int kt, int sf,
                 int st, int pf, int pt, int df, int dt, int groups, float damping);
/* BatchNorm2d over channels ("<name>.weight/.bias/.running_mean/.running_var"). */
int graph_batchnorm(struct graph *g, const char *name, int in, int relu);
/* BatchNorm over the mel-bin axis F (statistics over N, C, T), as PANNs' and SP4ASC's bn0;
 * the plan checks that the input has n_mels bins. */
int graph_batchnorm_freq(struct graph *g, const char *name, int in, int n_mels);
int graph_relu(struct graph *g, int in);
int graph_add(struct graph *g, int a, int b, int relu);
int graph_roll(struct graph *g, int in, int shift);
/* k x k pools with the given stride, named `name` ("s1.b1.pool") for tables and messages. */
int graph_maxpool(struct graph *g, const char *name, int in, int k, int stride);
int graph_avgpool(struct graph *g, const char *name, int in, int k, int stride);
int graph_mean(struct graph *g, int in, int axis);
int graph_max(struct graph *g, int in, int axis);
/* Linear on a (C, 1, 1) input: "<name>.weight" (O, C) and, when bias, "<name>.bias" (O). */
int graph_linear(struct graph *g, const char *name, int in, int out, int bias);
int graph_dropout(struct graph *g, int in, float p);

/* Allocate the store (weights 0; BN gamma 1, beta 0, running mean 0, var 1; masks 1) and
 * make the last node the output. Returns 0 or the first build error. Training state (g, m,
 * v) is not allocated here: see graph_alloc_training. */
int graph_finish(struct graph *g);

/* Bytes of the store of a built graph (finished or not, so it can be checked before
 * graph_finish allocates): weights, pruning masks and BN buffers, 8 bytes per parameter;
 * with training, also gradients and the two optimiser moments (20 bytes per parameter). */
size_t graph_store_bytes(const struct graph *g, int training);
/* Bytes graph_alloc_training would still allocate (0 once the training state exists). */
size_t graph_training_bytes(const struct graph *g);
/* Allocate the training state of a finished graph: store.g, store.m and store.v, zeroed,
 * unless they exist. Returns 0, STATUS_INVALID (not finished) or STATUS_NOMEM, refusing
 * before allocating when graph_training_bytes exceeds mem_available_bytes(). */
int graph_alloc_training(struct graph *g);

/* Every BN's running statistics back to their initial values (mean 0, var 1), and every
 * BN's momentum (the weight of a train-mode batch in the running statistics; 0.1 as
 * PyTorch's default, 1/k for the k-th batch of a cumulative average). */
void graph_bn_reset_stats(struct graph *g);
void graph_bn_set_momentum(struct graph *g, float momentum);

/* ----------------------------------------------------------------------------- queries */

/* Index of the tensor named `name`, or -1. */
int graph_find_tensor(const struct graph *g, const char *name);
/* Index of the node named `name` (module name, e.g. "s1.b1.conv1"), or -1. */
int graph_find_node(const struct graph *g, const char *name);
/* Pointer to a tensor's data in w (parameters) or buf (buffers). */
float *graph_tensor_data(const struct graph *g, int tensor);
/* Trainable parameters (conv and linear weights and biases, BN gamma and beta). */
long graph_param_count(const struct graph *g);
/* Kind name for tables: "conv", "bn", "linear", ... */
const char *graph_op_name(enum op_kind op);

/* Per-node facts for one input size (C, F, T): the output shape, multiply-accumulates per
 * sample, parameters used, and the receptive field of one output unit.
 *
 * Receptive field (F, T extent in input bins and frames): the theoretical maximum, from
 * the recurrence r = r_in + (k - 1) * dilation * jump_in over every conv and pool (pool
 * kernels included; ref: Araujo et al., "Computing receptive fields of CNNs", 2019). It
 * does not depend on the input size and is not clipped to it: a unit near the border sees
 * padding, and a deep unit's RF may exceed a small input (CP-ResNet's does, by design).
 * Along an axis that a global reduction (OP_MEAN / OP_MAX) has collapsed, every input
 * position feeds the unit: its RF there is the whole input (F or T) and whole[] is set;
 * later convs and pools leave it so. */
struct node_info {
    int c, f, t;
    double macs;
    long params;
    long rf[2];
    long jump[2];           /* input bins per output step */
    int whole[2];           /* 1: the unit sees the whole input along F (0) / T (1) */
};
/* Fill info[0..g->n_nodes). Returns 0, or STATUS_MISMATCH / STATUS_INVALID when the input
 * size does not fit the graph (channels, mel bins, a map shrinking below a kernel: the
 * message names the node and the smallest input the graph takes). */
int graph_describe(const struct graph *g, int c, int f, int t, struct node_info *info);
/* The smallest input height F and length T (each on its own) whose maps never shrink
 * below a conv or pool kernel, from the kernels, strides, dilations and padding. (A bn0's
 * mel-bin count is a separate, exact constraint on F.) Returns 0, STATUS_NOMEM, or
 * STATUS_INVALID when no input up to 2^30 fits. */
int graph_min_input(const struct graph *g, int *f, int *t);

/* ----------------------------------------------------------------------------- running */

struct plan;

enum plan_flags {
    PLAN_BACKWARD = 1,      /* keep activations and allocate gradients for backward */
    PLAN_KEEP = 2,          /* keep every node's output readable after forward (taps) */
};

/* A plan's run settings, fixed when it is made, so that a job's plan runs as it was made
 * whatever happens meanwhile (a `set threads=` typed while the job runs changes the
 * process setting, not the plan). Zero-initialise and set what you need:
 *   flags        enum plan_flags
 *   n_threads    threads every pass of this plan runs (each pass pins them with
 *                threads_pin); 0: threads_get() when the plan is made
 *   conv_kernel  CONV2D_KERNEL_AUTO: each conv's kernel per pass is measured on its shape
 *                when the plan is made (conv2d_tune: a few ms per distinct shape, then
 *                remembered in the cache folder per CPU model, so later plans and later
 *                processes reuse the choice); any other kernel is used wherever it runs
 *                (the rest take the built-in choice): tests and benchmarks force kernels so
 *   no_tune      1: AUTO means the built-in choice (conv2d_kernel_default), nothing measured
 *   no_fuse      1: no fused groups (see below); for tests
 *   no_avx512    1: no AVX-512 conv kernels (what a CPU without AVX-512 runs; benchmarks time
 *                that case on an AVX-512 machine with it)
 * Every kernel computes the same function within float rounding; the same plan settings
 * on the same machine (hence the same kernels) give the same bits. */
struct plan_opts {
    int flags;
    int n_threads;
    enum conv2d_kernel conv_kernel;
    int no_tune;
    int no_fuse;
    int no_avx512;
};

/* Plan g for batches of at most n clips of (c, f, t) with the settings in opts. Returns 0,
 * STATUS_MISMATCH when the input does not fit the model (naming what), STATUS_INVALID (bad
 * settings) or STATUS_NOMEM: before allocating, the arena, the kernel scratch and
 * (PLAN_BACKWARD) the graph's training state are estimated and refused with a message
 * giving both figures when they exceed mem_available_bytes(). A PLAN_BACKWARD plan
 * allocates the graph's training state (graph_alloc_training) if it is not there yet. The
 * plan borrows g, which must outlive it.
 *
 * Fusion (PLAN_KEEP plans do not fuse; the graph and its tensors are unchanged):
 * - two depthwise stride-1 convs of the same input whose sum feeds a channel BN (sepnet's
 *   blocks) run as one kernel with the BN, its relu, a 2x2 average pool after it and a 1x1
 *   conv of one input channel before them (ops.h, dwpair_forward);
 * - a residual add runs with the 2x2 max pool after it and, in PLAN_BACKWARD plans, with
 *   the BN (no relu) feeding it (ops.h, addpool_forward, add_bn_forward);
 * - in PLAN_BACKWARD plans a BN whose only consumer is a conv on direct kernels is applied
 *   as that conv reads its input (ops.h, struct conv2d_prologue).
 * The nodes a fusion computes without storing (the pair's convs and sum, a folded 1x1, a
 * fused BN's or a pooled add's output) give NULL from plan_node_output; a backward can
 * start at a group's last node or at a BN (plan_backward_from), not at the other nodes
 * inside a group (plan_node_fused says which nodes a group covers). */
int plan_create_opts(struct plan **out, struct graph *g, int n, int c, int f, int t,
                     const struct plan_opts *opts);
/* plan_create_opts with opts {flags}, except for threads: such a plan follows the process
 * setting, re-planning its scratch at the next pass when threads_get() changed since it
 * was made (each pass still pins its count, so threads_set() may run meanwhile). Jobs that
 * must not be affected by `set threads=` use plan_create_opts with their own count. */
int plan_create(struct plan **out, struct graph *g, int n, int c, int f, int t, int flags);
void plan_destroy(struct plan *p);

/* The thread count the plan's next pass runs with. */
int plan_threads(const struct plan *p);
/* The kernels the plan runs for conv node `node`: 0, or STATUS_INVALID when the node is
 * not a conv or a fused group computes it. */
int plan_conv_algo(const struct plan *p, int node, struct conv2d_algo *algo);
/* The last node of the fused group that computes `node`, or -1 when it runs on its own. */
int plan_node_fused(const struct plan *p, int node);

/* Forward n <= planned clips x (n, C, F, T). train selects batch statistics (updating the
 * running statistics) and dropout drawn from rng (which may be NULL when not training, or
 * when no dropout has p > 0). Conv weights are used as w * damping * mask. Returns 0,
 * STATUS_INVALID (n out of range, dropout without rng) or STATUS_NOMEM (re-planning the
 * scratch after a thread-count change). */
int plan_forward(struct plan *p, int n, const float *x, int train, struct rng *rng);
/* The output node's values after plan_forward: (n, classes). */
const float *plan_output(const struct plan *p);
/* A node's output after plan_forward: (n, c, f, t) with the shape from plan_node_shape.
 * Only the output node is kept by a plan made without PLAN_BACKWARD or PLAN_KEEP; other
 * nodes' buffers are reused as soon as their consumers have run (NULL is returned). NULL
 * too for every node but the output before the first forward and after a backward, and
 * for the nodes a fused group computes without storing (see plan_create_opts). */
const float *plan_node_output(const struct plan *p, int node);
void plan_node_shape(const struct plan *p, int node, int *c, int *f, int *t);

/* Backward of the last forward (which must have been run on a PLAN_BACKWARD plan), from
 * dout (n, classes) at the output node: writes the parameter gradients into g->store.g
 * (damping and masks applied, so they are gradients w.r.t. the stored weights) and, when
 * dx is not NULL, the input gradient (n, C, F, T). A backward consumes its forward: the
 * gradients reuse the memory of activations it is done with, so only the output node's
 * values survive, and another backward needs another plan_forward. Returns 0,
 * STATUS_INVALID (no plan_forward since the last backward, a plan without PLAN_BACKWARD)
 * or STATUS_NOMEM (re-planning the scratch after a thread-count change). */
int plan_backward(struct plan *p, const float *dout, float *dx);
/* The same from any node: dnode has that node's shape (n, c, f, t). Parameters after it get
 * zero gradient. Used for effective receptive fields. STATUS_INVALID for a node inside a
 * fused group (plan_node_fused; its BN and its last node are fine). */
int plan_backward_from(struct plan *p, int node, const float *dnode, float *dx);

/* Bytes of the plan's arena, for reports. */
long plan_bytes(const struct plan *p);

/* Per-node timing: with on, every forward and backward adds each node's wall time to
 * seconds[node] (forward) and seconds[n_nodes + node] (backward); plan_profile(p, 1) also
 * zeroes them. The array (2 * n_nodes) is owned by the plan; NULL when profiling is off. */
void plan_profile(struct plan *p, int on);
const double *plan_profile_seconds(const struct plan *p);

#endif
