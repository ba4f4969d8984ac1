/* compress.h: making a trained model smaller for deployment without retraining: batch-norm
 * folding, fp16 storage and int8 post-training quantisation of the weights, simulated in
 * float (every value is replaced by the value its low-precision form represents), and the
 * sizes a DCASE-style budget counts.
 *
 * Folding (eval-mode BN after a conv, y = gamma (x - mu) / sqrt(var + eps) + beta):
 *   s = gamma / sqrt(var + eps) is multiplied into the conv's output filters and the BN
 *   becomes a per-channel shift (gamma 1, mean 0, var 1 - eps, beta - s mu), which an
 *   eval-mode BN computes as x + b: the model keeps its graph and file layout (and still
 *   loads in basin_ref.py), the logits change only by rounding. A BN after the sum of two
 *   convs (sepnet's depthwise pair) scales both; the shift goes once, into the BN.
 *   "sp4asc" mode drops eps (s = gamma / sqrt(var), ref: mission-anchors 4.3,
 *   merge_conv_bn), as SP4ASC does: the logits move a little.
 *   BNs that do not follow a conv consumed by them alone (bn0 over mel bins) stay.
 *   Folded models are for inference: training them again would give the BN batch statistics
 *   back.
 * int8: per output channel (filter of a conv, row of a linear) symmetric: scale
 *   max|w| / 127, w -> round(w / scale) * scale, so every channel holds at most 255 levels
 *   and zeros (pruned weights) stay zero. Biases and BN parameters stay float (they would
 *   be int32 / folded on a device).
 * int8 activations (compress_calibrate): the input of every conv and linear node (what an
 *   int8 kernel consumes: the log-mel input of the first conv, post-ReLU maps, the pooled
 *   embedding of the classifier) gets one per-tensor symmetric scale s = max|x| / 127, the
 *   largest |x| over the calibration clips run in eval mode with float activations (the
 *   weights as they are, int8 when quantised first); from then on every eval-mode forward
 *   replaces that input by clamp(round(x / s), -127, 127) * s (graph.h, graph_act_quant).
 *   Symmetric, so post-ReLU inputs use only 0..127 (one bit less than asymmetric uint8
 *   would), but one scheme throughout and no zero points. With int8 weights w = k_w s_w the
 *   conv then computes, in float, sum k_w k_x (s_w s_x): an int8 kernel's int32 accumulator
 *   times one rescale, equal to it up to float rounding of the products and sums (exactly
 *   when s_w and s_x are powers of two). The scales are saved with the model (basin.quant).
 *   They are for inference: training passes never quantise, but a model trained again
 *   keeps its scales (its evaluations quantise with them) until it is calibrated again or
 *   compress_act_clear removes them; backward passes (ERF, Hessian) go straight through
 *   the rounding.
 * fp16: every parameter and BN statistic rounded to the nearest half (ties to even,
 *   overflow to +-inf, as torch's .half()).
 */
#ifndef BASIN_MODEL_COMPRESS_H
#define BASIN_MODEL_COMPRESS_H

#include "basin/core/progress.h"
#include "basin/model/model.h"

struct plan;

enum fold_mode {
    FOLD_EXACT,                 /* "exact": with eps */
    FOLD_SP4ASC,                /* "sp4asc": without eps */
};

struct fold_report {
    int n_folded;               /* BNs folded into their convs */
    int n_left;                 /* channel BNs left as they were */
    long channels;              /* folded channels: gamma gone, beta become a bias */
};

/* Fold every channel BN that follows a conv (or the sum of two) into it. Never fails. */
void compress_fold(struct model *m, enum fold_mode mode, struct fold_report *r);

enum quant_kind {
    QUANT_FP16,                 /* "fp16" */
    QUANT_INT8,                 /* "int8": weights per output channel */
};

struct quant_report {
    long n_values;              /* values rounded */
    double max_abs_change;      /* the largest |w - q(w)| */
};

/* Replace the values by their fp16 or int8 representatives (see above). Never fails. */
void compress_quantize(struct model *m, enum quant_kind k, struct quant_report *r);

/* Clips `quantize int8` calibrates on by default (all when the split is smaller). */
#define QUANT_CALIB_N 256

struct calib_report {
    int n_inputs;               /* conv / linear inputs given a scale */
    int n_zero;                 /* inputs that were all zero on every clip (left float) */
    int n_clips;                /* clips run */
    double min_scale, max_scale;
};

/* Calibrate the int8 activation scales (see above) on n clips of x, which holds n_total
 * clips of (c, f, t) floats each, spread evenly over them (all when n >= n_total), in
 * batches of at most 16. Scales set before are cleared first (calibration runs float
 * activations). Returns 0, STATUS_INVALID (n or n_total < 1), STATUS_MISMATCH (the input
 * does not fit the model), STATUS_NOMEM or STATUS_CANCELLED (reported as "calibrate"; the
 * model then has no scales). */
int compress_calibrate(struct model *m, const float *x, int n_total, int c, int f, int t, int n,
                       const struct progress *p, struct calib_report *r);
/* Remove every activation scale: the model computes in float again. */
void compress_act_clear(struct model *m);

/* What compress_update_bn did. */
struct bnstats_report {
    int n_bn;                   /* BN layers recomputed */
    long channels;              /* their channels (or mel bins) */
    int n_clips, n_batches;
    int batch;                  /* the largest batch run */
    double mean_shift;          /* largest |new - old| running mean, over every channel */
    double var_ratio_min, var_ratio_max; /* range of new / old running variance */
};

/* BN statistics: every BN's running mean and variance recomputed for the weights as they
 * are, from n clips of x (n_total clips of (c, f, t) floats, spread evenly over them; all
 * when n >= n_total) run in train mode, without augmentation, in nb = ceil(n / batch)
 * batches, batch b holding clips b, b + nb, b + 2 nb, ... (so each batch samples the whole
 * set even when it is stored class by class), every batch weighing the same: the
 * statistics start from mean 0, var 1 and batch k enters with momentum 1/k, a cumulative
 * average (ref: torch.optim.swa_utils.update_bn with momentum None, as after SWA, which
 * runs it over its shuffled train loader). plan: one of m's graph for at least `batch`
 * clips of (c, f, t) (a trainer's own), or NULL to make one. Useful after pruning
 * or averaging, after a short run whose running statistics still lag the weights, or over
 * the clips of one recording device (adaptive BN). Dropout draws from `seed`. Folded BNs
 * (see above) are refused, as their gammas now live in the convs. Every BN's momentum is
 * 0.1 again after. Returns 0, STATUS_INVALID (n, n_total or batch < 1, folded BNs, no BN),
 * STATUS_MISMATCH (the input does not fit the model), STATUS_NOMEM or STATUS_CANCELLED
 * (reported as "bnstats"); on any error the old statistics stay. */
int compress_update_bn(struct model *m, struct plan *plan, const float *x, int n_total, int c, int f, int t, int n,
                       int batch, uint64_t seed, const struct progress *p, struct bnstats_report *r);

/* x rounded to the nearest fp16 value, as a float (ties to even; beyond 65520 -> inf). */
float compress_fp16_round(float x);

/* What a budget counts: parameters (all trainable; and those deployed: kept by the masks,
 * as DCASE counts non-zero ones, less the gammas of folded BNs, recognised by gamma 1,
 * mean 0 and var 1 - eps on every channel), MACs per clip of the input (f, t)
 * (model_describe; unstructured sparsity does not reduce them), and the bytes of the
 * deployed parameters at 4, 2 and 1 byte each. Errors as model_describe. */
struct budget_counts {
    long params, params_kept;
    long folded;                /* channels of folded BNs (their gammas are not counted) */
    double macs;
    double bytes_fp32, bytes_fp16, bytes_int8;
};
int compress_counts(const struct model *m, int f, int t, struct budget_counts *c);

#endif
