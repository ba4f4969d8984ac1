/* loss.h: classification losses on logits, mean over the batch.
 *
 * logits (N, M). Targets are either hard labels (N) in [0, M) or soft targets (N, M) whose
 * rows sum to 1 (mixup); pass exactly one, the other NULL. The gradient dlogits (N, M) is
 * written when not NULL and already includes the 1/N of the mean. Computed with a
 * max-shifted log-sum-exp in double, so large logits neither overflow nor lose precision.
 */
#ifndef BASIN_CORE_LOSS_H
#define BASIN_CORE_LOSS_H

/* Row-wise softmax: probs (N, M); probs may equal logits. */
void softmax(int n, int m, const float *logits, float *probs);

/* Mean cross-entropy -sum_k t_k log p_k, as torch.nn.functional.cross_entropy (with
 * probabilities as targets for soft ones). */
double loss_cross_entropy(int n, int m, const float *logits, const int *labels,
                          const float *targets, float *dlogits);

/* Mean focal loss -sum_k t_k (1 - p_k)^gamma log p_k (Lin et al.; SP4ASC uses gamma 1,
 * ref: mission-anchors 4.5). gamma 0 is cross-entropy. */
double loss_focal(int n, int m, const float *logits, const int *labels, const float *targets,
                  float gamma, float *dlogits);

/* Number of rows whose largest logit is at labels[i] (first maximum on ties). */
int loss_correct(int n, int m, const float *logits, const int *labels);

#endif
