/* distill.h: knowledge distillation (Hinton et al. 2015) for the training loop: a teacher
 * model's soft targets, computed once per training clip and cached, and the loss
 *
 *   L = (1 - alpha) L_hard + alpha T^2 (1/N) sum_i KL(q_i || softmax(z_i / T))
 *
 * where L_hard is the loop's own loss (cross-entropy or focal, with mixup targets), z_i the
 * student's logits and q_i the teacher's softmax(z_t / T) of example i's clip; with mixup,
 * q_i = lambda_i q[row_i] + (1 - lambda_i) q[partner_i], the same mix as the features. The
 * T^2 keeps the soft term's gradient on the scale of the hard one's:
 *   dL/dz_i = (1 - alpha) dL_hard/dz_i + alpha T (softmax(z_i / T) - q_i) / N.
 * The teacher sees the clips as they are (no augmentation), in eval mode, once; so its
 * targets are fixed for the whole run, as FAU's DCASE23 pipeline (ref: mission-anchors
 * 3.4) distils from a fixed teacher ensemble's predictions.
 */
#ifndef BASIN_TRAIN_DISTILL_H
#define BASIN_TRAIN_DISTILL_H

#include "basin/core/progress.h"

struct features;
struct model;

struct distill {
    int n, m;                   /* N clips, M classes */
    double alpha, T;            /* weight of the soft term in [0, 1]; temperature > 0 */
    float *q;                   /* (N, M) the teacher's softmax(z / T) of every clip */
};

/* Run teacher (eval mode) over every clip of f (as the student is trained on them) and keep
 * softmax(logits / T). STATUS_MISMATCH when the teacher's classes differ from f's or it
 * does not take f's clips; STATUS_INVALID for alpha outside [0, 1] or T <= 0; STATUS_NOMEM;
 * STATUS_CANCELLED through p ("forward", clips done, N). *out is owned by the caller. */
int distill_create(struct distill **out, struct model *teacher, const struct features *f, double alpha,
                   double T, const struct progress *p);
void distill_destroy(struct distill *d);   /* NULL is a no-op */

/* The combined loss of one batch: logits (n, M) of the examples whose clips are rows
 * (n) mixed with partner (n) by lambda (n) (partner and lambda may be NULL: no mixup);
 * hard is the batch's own loss and dl (n, M) holds its gradient on entry and the combined
 * gradient on return. Returns L above. */
double distill_loss(const struct distill *d, int n, const float *logits, const int *rows, const int *partner,
                    const float *lambda, double hard, float *dl);

#endif
