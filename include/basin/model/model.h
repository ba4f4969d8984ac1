/* model.h: the model zoo (DESIGN.md section 4) and models as files.
 *
 * A model is an architecture config, the static graph the config builds (weights, BN
 * statistics and masks in its store) and the metadata that travels with it in a
 * .safetensors file: the front end it was trained on, the class labels and the feature
 * normalisation statistics.
 *
 * Architectures (tensor names in the README and in ../shared/peers/basin_ref.py):
 *   cpresnet  CP-ResNet (Koutini et al.): 5x5/2 stem, three stages of rho-sized basic
 *             blocks, 1x1 conv + BN head, global average pool. Options width, rho, damping,
 *             groups, roll, blocks, in_ch, classes; stages and inner (per-stage and
 *             per-block widths: what structured pruning leaves, basin only).
 *   sepnet    SP4ASC Cnn6_60k (Puy et al.): bn0 over mel bins, four separable blocks
 *             (1x1, then dilated depthwise along T and F, summed), mean/max head, MLP.
 *             Options channels, mels, classes, in_ch.
 *   cnn10     PANNs CNN10 as in ASC_Sharpness: bn0, four double-3x3 blocks, head, fc1,
 *             fc_out. Options width (multiplier), mels, classes, in_ch.
 */
#ifndef BASIN_MODEL_MODEL_H
#define BASIN_MODEL_MODEL_H

#include <stdint.h>

#include "basin/core/graph.h"
#include "basin/core/progress.h"

enum arch { ARCH_CPRESNET, ARCH_SEPNET, ARCH_CNN10, ARCH_COUNT };

#define MODEL_MAX_CHANNELS 8
#define MODEL_MAX_MELS 2048     /* sepnet, cnn10: largest mels a config accepts */

struct model_config {
    enum arch arch;
    int in_ch;                  /* input channels (1 mono, 2 stereo) */
    int classes;
    int mels;                   /* sepnet, cnn10: mel bins bn0 normalises */
    /* cpresnet */
    int width;                  /* c0; stages are c0, 2 c0, 4 c0 */
    int rho;                    /* receptive-field regulator, 0..15 */
    double damping;             /* frequency damping m, 0 = off */
    int groups;                 /* groups of both block convs */
    int roll;                   /* channel roll of the conv branch by one group */
    int blocks[3];              /* blocks per stage, 0..4 each */
    int stages[3];              /* channels of each stage's residual stream (the stem's for
                                 * stage 1); 0: width << stage (all 0 by default) */
    int inner[12];              /* channels inside each block (conv1's outputs, bn1), blocks
                                 * in order over the stages; 0: the stage's (all 0 by
                                 * default). Structured pruning (model/structured.h) sets
                                 * stages and inner; any non-zero makes every stage's first
                                 * block after stage 1 carry a projection shortcut. */
    /* sepnet */
    int channels[MODEL_MAX_CHANNELS];
    int n_channels;
    /* cnn10 */
    double width_mult;          /* scales the four block widths and fc1 */
};

const char *arch_name(enum arch a);
/* Parse "cpresnet", "sepnet", "cnn10"; STATUS_INVALID naming the known ones otherwise. */
int arch_parse(const char *name, enum arch *out);

/* The architecture's defaults: cpresnet width 128, rho 5 (exp_cp_resnet.py), no damping,
 * 1 group, blocks 4,4,4; sepnet channels 64,128,128,128 and 256 mels; cnn10 width 1 and
 * 64 mels; all with 1 input channel and 10 classes. */
void model_config_default(struct model_config *c, enum arch a);
/* Set one option from text ("width", "32"; "blocks", "4,3,1"). STATUS_INVALID with a
 * message naming the option when the key is not an option of this architecture or the
 * value does not parse. The result is checked by model_config_validate, not here. */
int model_config_set(struct model_config *c, const char *key, const char *value);
/* Check ranges and consistency (groups divide the widths, ...); message names the field.
 * sepnet and cnn10 also need mels >= the smallest input height their pools accept
 * (model_min_input): "cnn10: mels=1 is too small: the network's pools need at least 16
 * mel bins". */
int model_config_validate(const struct model_config *c);
/* The option names of an architecture, NULL-terminated (for help and completion). */
const char *const *model_config_keys(enum arch a);
/* One line "width=32 rho=5 ..." into buf. */
void model_config_str(const struct model_config *c, char *buf, int n_buf);

/* The kernel sizes of CP-ResNet's rho table (ref: mission-anchors 2.2,
 * get_model_based_on_rho): k[stage][block][0 or 1] for k1 and k2. */
void cpresnet_kernels(int rho, int k[3][4][2]);

/* Build the graph of a config (validated here; weights zero; see model_init_weights). */
int model_build(struct graph **out, const struct model_config *c);
/* The same without graph_finish: nodes and tensors (names, shapes) but no store, so a
 * config's size can be checked (graph_store_bytes, model_check_memory) and a file's
 * tensors compared with it before anything large is allocated. Finish it with
 * graph_finish or release it with graph_destroy. */
int model_build_layout(struct graph **out, const struct model_config *c);
/* The smallest input F and T (each on its own) a range-checked config's network accepts
 * (graph_min_input): 17 x 17 for cpresnet, 16 x 16 for four-block sepnet and cnn10. */
int model_min_input(const struct model_config *c, int *f, int *t);
/* 0, or STATUS_NOMEM when the store of `layout` (built from c; with training also the
 * gradients and optimiser moments) exceeds mem_available_bytes(), with a message giving
 * the config, the estimate and what is available ("cpresnet width=4096 ... needs about
 * 27.0 GiB for its 3.62 billion parameters (weights and pruning masks: 8 bytes each;
 * training adds 12), this machine has 21.3 GiB available"). */
int model_check_memory(const struct model_config *c, const struct graph *layout, int training);

struct model {
    struct model_config cfg;
    struct graph *g;
    char *frontend;             /* basin.frontend JSON, or NULL */
    char *input;                /* basin.input JSON, the clip length it was trained on
                                 * (train/predict.h reads and writes it), or NULL */
    char **labels;              /* classes names, or NULL */
    int n_labels;
    float *norm_mean, *norm_std;/* per-bin feature normalisation, or NULL */
    int n_norm;
};

/* Build and initialise a model as the reference code initialises it (cpresnet: Kaiming
 * normal then Fixup, ref: mission-anchors 2.1; sepnet: PyTorch's default init; cnn10:
 * Xavier uniform, ref 5), drawing from a generator seeded with `seed`. The store is checked
 * against the memory available before it is allocated (model_check_memory: STATUS_NOMEM
 * with the estimate); the training state (gradients, moments) is not allocated (see
 * graph_alloc_training), so a model costs 8 bytes per parameter until it trains. */
int model_create(struct model **out, const struct model_config *c, uint64_t seed);
/* The same, reporting to p ("model", weights drawn, of the parameter count) every 1M
 * weights or 1 % for models of at least 8M parameters (nothing for smaller ones), ending
 * with done == total; a cancel through p returns STATUS_CANCELLED and no model. */
int model_create_progress(struct model **out, const struct model_config *c, uint64_t seed,
                          const struct progress *p);
void model_destroy(struct model *m);
/* Re-draw every weight from `seed` (BN: gamma 1, beta 0, running mean 0, var 1; masks 1). */
void model_init_weights(struct model *m, uint64_t seed);

/* The input size the model is described at when no clip is given: F = the model's mel
 * bins (256 for cpresnet), T = the frames of 10 s at the model's front end (431 for the
 * CP-JKU and SP4ASC presets, 1001 for PANNs). */
void model_default_input(const struct model *m, int *f, int *t);

/* One row of the per-layer table: every node with parameters (conv, bn, linear) and every
 * local pool (maxpool, avgpool; named "s1.b1.pool", "b1.pool"). */
struct layer_row {
    char name[48];
    const char *op;             /* "conv", "bn", "linear", "maxpool", "avgpool" */
    int node;
    int c, f, t;                /* output shape per clip */
    long params;
    double macs;                /* multiply-accumulates per clip */
    long rf[2];                 /* receptive field (F, T) of one output unit, see below */
    int whole[2];               /* 1: rf[d] is the whole input (after a global pool) */
    char detail[48];            /* "3x3 s1 p1", "groups 4", "damped 0.1" */
};
struct model_summary {
    long params;                /* trainable parameters */
    long buffers;               /* BN running statistics */
    double macs;                /* per clip */
    long rf[2];                 /* the network's receptive field, see below */
    char rf_layer[48];          /* the layer it is the RF of ("head.bn", "b4.pool") */
    int f, t;                   /* the input size described */
    double bytes_fp32, bytes_fp16, bytes_int8; /* parameters only */
};
/* Fill rows (caller storage of m->g->n_nodes rows) and the summary for an input of
 * (in_ch, f, t); *n_rows receives the row count. STATUS_MISMATCH when the input size does
 * not fit the model, naming the layer and the smallest input the model takes ("input of
 * 256 x 10 is too small: s1.b4.pool gets a 31 x 1 map, too small for its 2x2 kernel (the
 * model takes inputs of at least 17 x 17)").
 *
 * Receptive field, per row: the theoretical maximum RF of one unit of the layer's output,
 * in input mel bins x frames, pool kernels included (graph.h, struct node_info): the
 * standard recurrence, independent of the input size and not clipped to it, so it can
 * exceed a small input as papers report it (the excess falls on zero padding). Layers
 * after the global pooling head (the linear layers of sepnet and cnn10) see every input
 * bin and frame: their RF is the whole input, F x T, and whole[] says so.
 * The summary's rf is the RF of the units the global pooling head reads, i.e. of the last
 * layer before global pooling, named in rf_layer; it equals that row's RF (87 x 87 for
 * cpresnet rho 5 at head.bn, pool kernels included, where CP-JKU's get_maxrf gives 81;
 * 76 x 76 at b4.pool for sepnet and cnn10). So the rows before the head never exceed it
 * and the rows after it show the whole input. */
int model_describe(const struct model *m, int f, int t, struct layer_row *rows, int *n_rows,
                   struct model_summary *sum);

/* ----------------------------------------------------------------------------- files */

/* Save as .safetensors (DESIGN.md section 3): state-dict tensors, basin.format "1",
 * basin.arch, basin.config, and basin.frontend / basin.input / basin.labels / basin.norm
 * when set.
 * `extra_meta` (NULL or key, value pairs, NULL-terminated) adds metadata such as training
 * state. With `checkpoint`, also optim.<name>.m / .v and prune.<name>.mask tensors; a pruned
 * model (g->masked) writes its prune.<name>.mask tensors in every file, a dense one never
 * does. The write is atomic. */
int model_save(const struct model *m, const char *path, int checkpoint,
               const char *const *extra_meta);
/* Load a model or checkpoint written by basin or by basin_ref.py. Strict: missing or
 * unexpected tensors, wrong shapes, unknown dtypes and bad metadata are errors naming the
 * file and the tensor. F16/BF16/F64 tensors are converted. Optimiser moments and masks are
 * loaded when present (moments allocate the training state). Unknown config keys are
 * ignored with a logged warning.
 *
 * The file is untrusted: every tensor's name, shape and dtype is checked against the
 * config's layout before the store is allocated (so a small file whose basin.config asks
 * for a huge model fails at once), the store is checked against the memory available
 * (model_check_memory), and the metadata JSON (config, front end, labels, norm) is
 * counted before it is parsed (json_parse_max), so what loading costs is bounded by a
 * small multiple of the file's size. */
int model_load(struct model **out, const char *path);
/* The same, reporting to p ("load", elements copied, of all the file's elements) after
 * each tensor for files of at least 8M elements; a cancel returns STATUS_CANCELLED and no
 * model. */
int model_load_progress(struct model **out, const char *path, const struct progress *p);

#endif
