/* loss.c: softmax, cross-entropy and focal loss on logits, mean over the batch.
 *
 * Key idea: every row is reduced to its log-probabilities l_k = x_k - lse in double, with
 * lse = max + log1p(sum over k != argmax of exp(x_k - max)), so logits of +-1e4 neither
 * overflow nor cancel, and log p is never taken of a probability that rounded to 0. For the
 * focal loss, 1 - p_k is computed as -expm1(l_k), accurate even when p_k rounds to 1.
 *
 * Focal loss per row, with q_k = 1 - p_k:  L = -sum_k t_k q_k^g l_k.  Using
 * dl_k/dx_j = d_kj - p_j and dq_k/dx_j = -p_k (d_kj - p_j):
 *   dL/dx_j = -a_j + p_j sum_k a_k,   a_k = t_k q_k^g (1 - g p_k l_k / q_k),
 * where l_k / q_k -> -1 as q_k -> 0, so no negative power of q_k is ever formed (g < 1 is
 * safe). g = 0 gives a_k = t_k: the cross-entropy gradient (sum_k t_k) p_j - t_j.
 *
 * ref: torch.nn.functional.cross_entropy (probability targets, torch >= 1.10)
 * ref: Lin et al. 2017, "Focal Loss for Dense Object Detection", eq. 5 (multi-class form)
 * ref: mission-anchors 4.5 (SP4ASC: focal loss gamma 1, mean over the batch, mixup targets)
 */
#include "basin/core/loss.h"

#include <math.h>
#include <stddef.h>

#include "basin/core/status.h"

/* Log-sum-exp of one row (m) in double. The maximum's own term is kept out of the sum and
 * added back through log1p, so its log-probability stays exact when the others are tiny.
 */
static double row_lse(int m, const float *x)
{
    int a = 0;
    for (int k = 1; k < m; k++)
        if (x[k] > x[a]) a = k;
    double mx = x[a], rest = 0;
    for (int k = 0; k < m; k++)
        if (k != a) rest += exp((double)x[k] - mx);
    return mx + log1p(rest);
}

void softmax(int n, int m, const float *logits, float *probs)
{
    CHECK(n >= 0 && m > 0 && logits && probs);
    for (int i = 0; i < n; i++) {
        const float *x = logits + (size_t)i * m;
        float *p = probs + (size_t)i * m;
        double lse = row_lse(m, x);
        for (int k = 0; k < m; k++) p[k] = (float)exp((double)x[k] - lse);
    }
}

static void check_targets(int n, int m, const float *logits, const int *labels,
                          const float *targets)
{
    CHECK(n > 0 && m > 0 && logits);
    CHECK((labels == NULL) != (targets == NULL));
    if (labels)
        for (int i = 0; i < n; i++) CHECK(labels[i] >= 0 && labels[i] < m);
}

/* Shared by both losses: gamma 0 is plain cross-entropy (q^0 = 1 and the focal term
 * vanishes), so one loop serves both and the two agree exactly.
 */
static double focal_rows(int n, int m, const float *logits, const int *labels,
                         const float *targets, double gamma, float *dlogits)
{
    double total = 0, inv_n = 1.0 / n;
    for (int i = 0; i < n; i++) {
        const float *x = logits + (size_t)i * m;
        const float *t = targets ? targets + (size_t)i * m : NULL;
        float *dx = dlogits ? dlogits + (size_t)i * m : NULL;
        double lse = row_lse(m, x);
        double row = 0, sum_a = 0;
        int k0 = labels ? labels[i] : 0, k1 = labels ? labels[i] + 1 : m;
        for (int k = k0; k < k1; k++) {
            double tk = t ? t[k] : 1.0;
            if (tk == 0) continue;
            double l = (double)x[k] - lse, p = exp(l), q = -expm1(l);
            double qg = gamma == 0 ? 1.0 : pow(q, gamma);
            row -= tk * qg * l;
            if (dx) sum_a += tk * qg * (1 - gamma * p * (q > 0 ? l / q : -1.0));
        }
        total += row;
        if (!dx) continue;
        for (int j = 0; j < m; j++) {
            double l = (double)x[j] - lse, p = exp(l), a = 0;
            double tj = t ? t[j] : (j == k0 ? 1.0 : 0.0);
            if (tj != 0) {
                double q = -expm1(l), qg = gamma == 0 ? 1.0 : pow(q, gamma);
                a = tj * qg * (1 - gamma * p * (q > 0 ? l / q : -1.0));
            }
            dx[j] = (float)((p * sum_a - a) * inv_n);
        }
    }
    return total * inv_n;
}

double loss_cross_entropy(int n, int m, const float *logits, const int *labels,
                          const float *targets, float *dlogits)
{
    check_targets(n, m, logits, labels, targets);
    return focal_rows(n, m, logits, labels, targets, 0.0, dlogits);
}

double loss_focal(int n, int m, const float *logits, const int *labels, const float *targets,
                  float gamma, float *dlogits)
{
    check_targets(n, m, logits, labels, targets);
    CHECK(gamma >= 0);
    return focal_rows(n, m, logits, labels, targets, gamma, dlogits);
}

int loss_correct(int n, int m, const float *logits, const int *labels)
{
    CHECK(n >= 0 && m > 0 && logits && labels);
    int correct = 0;
    for (int i = 0; i < n; i++) {
        const float *x = logits + (size_t)i * m;
        int a = 0;
        for (int k = 1; k < m; k++)
            if (x[k] > x[a]) a = k;
        CHECK(labels[i] >= 0 && labels[i] < m);
        correct += a == labels[i];
    }
    return correct;
}
