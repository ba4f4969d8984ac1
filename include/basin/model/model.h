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
 *             groups, roll, blocks, in_ch, classes.
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

enum arch { ARCH_CPRESNET, ARCH_SEPNET, ARCH_CNN10, ARCH_COUNT };

#define MODEL_MAX_CHANNELS 8

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
/* Check ranges and consistency (groups divide the widths, ...); message names the field. */
int model_config_validate(const struct model_config *c);
/* The option names of an architecture, NULL-terminated (for help and completion). */
const char *const *model_config_keys(enum arch a);
/* One line "width=32 rho=5 ..." into buf. */
void model_config_str(const struct model_config *c, char *buf, int n_buf);

/* The kernel sizes of CP-ResNet's rho table (ref: mission-anchors 2.2,
 * get_model_based_on_rho): k[stage][block][0 or 1] for k1 and k2. */
void cpresnet_kernels(int rho, int k[3][4][2]);

/* Build the graph of a validated config (weights zero; see model_init_weights). */
int model_build(struct graph **out, const struct model_config *c);

struct model {
    struct model_config cfg;
    struct graph *g;
    char *frontend;             /* basin.frontend JSON, or NULL */
    char **labels;              /* classes names, or NULL */
    int n_labels;
    float *norm_mean, *norm_std;/* per-bin feature normalisation, or NULL */
    int n_norm;
};

/* Build and initialise a model as the reference code initialises it (cpresnet: Kaiming
 * normal then Fixup, ref: mission-anchors 2.1; sepnet: PyTorch's default init; cnn10:
 * Xavier uniform, ref 5), drawing from a generator seeded with `seed`. */
int model_create(struct model **out, const struct model_config *c, uint64_t seed);
void model_destroy(struct model *m);
/* Re-draw every weight from `seed` (BN: gamma 1, beta 0, running mean 0, var 1; masks 1). */
void model_init_weights(struct model *m, uint64_t seed);

/* The input size the model is described at when no clip is given: F = the model's mel
 * bins (256 for cpresnet), T = the frames of 10 s at the model's front end (431 for the
 * CP-JKU and SP4ASC presets, 1001 for PANNs). */
void model_default_input(const struct model *m, int *f, int *t);

/* One row of the per-layer table: every node with parameters (conv, bn, linear). */
struct layer_row {
    char name[48];
    const char *op;             /* "conv", "bn", "linear" */
    int node;
    int c, f, t;                /* output shape per clip */
    long params;
    double macs;                /* multiply-accumulates per clip */
    long rf[2];                 /* theoretical maximum receptive field (F, T) */
    char detail[48];            /* "3x3 s1 p1", "groups 4", "damped 0.1" */
};
struct model_summary {
    long params;                /* trainable parameters */
    long buffers;               /* BN running statistics */
    double macs;                /* per clip */
    long rf[2];                 /* of the last spatial layer */
    int f, t;                   /* the input size described */
    double bytes_fp32, bytes_fp16, bytes_int8; /* parameters only */
};
/* Fill rows (caller storage of m->g->n_nodes rows) and the summary for an input of
 * (in_ch, f, t); *n_rows receives the row count. STATUS_MISMATCH when the input size does
 * not fit the model. */
int model_describe(const struct model *m, int f, int t, struct layer_row *rows, int *n_rows,
                   struct model_summary *sum);

/* ----------------------------------------------------------------------------- files */

/* Save as .safetensors (DESIGN.md section 3): state-dict tensors, basin.format "1",
 * basin.arch, basin.config, and basin.frontend / basin.labels / basin.norm when set.
 * `extra_meta` (NULL or key, value pairs, NULL-terminated) adds metadata such as training
 * state. With `checkpoint`, also optim.<name>.m / .v and prune.<name>.mask tensors. The
 * write is atomic. */
int model_save(const struct model *m, const char *path, int checkpoint,
               const char *const *extra_meta);
/* Load a model or checkpoint written by basin or by basin_ref.py. Strict: missing or
 * unexpected tensors, wrong shapes, unknown dtypes and bad metadata are errors naming the
 * file and the tensor. F16/BF16/F64 tensors are converted. Optimiser moments and masks are
 * loaded when present. Unknown config keys are ignored with a logged warning. */
int model_load(struct model **out, const char *path);

#endif
