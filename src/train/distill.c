/* distill.c: a teacher's cached soft targets and the distillation loss (distill.h).
 *
 * Key idea: the teacher runs once, before training, over the unaugmented clips; a step
 * only mixes two cached rows per example, so distillation costs the loop nothing but the
 * (N, M) table. ref: Hinton, Vinyals, Dean 2015, "Distilling the knowledge in a neural
 * network" (the T^2 scaling, section 2).
 */
#include "basin/train/distill.h"

#include <math.h>
#include <string.h>

#include "basin/core/loss.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/data/features.h"
#include "basin/model/model.h"
#include "basin/model/predict.h"

int distill_create(struct distill **out, struct model *teacher, const struct features *f, double alpha,
                   double T, const struct progress *p)
{
    *out = NULL;
    if (!(alpha >= 0 && alpha <= 1)) return status_set(STATUS_INVALID, "distillation: kd=%g must be in 0..1", alpha);
    if (!(T > 0 && T < 1e6)) return status_set(STATUS_INVALID, "distillation: T=%g must be > 0", T);
    if (teacher->cfg.classes != f->n_classes)
        return status_set(STATUS_MISMATCH, "distillation: the teacher has %d classes, the data %d",
                          teacher->cfg.classes, f->n_classes);
    struct distill *d = mem_calloc(1, sizeof *d);
    float *z = NULL;
    struct predictor *pr = NULL;
    int s = STATUS_NOMEM;
    const int M = f->n_classes;
    if (!d || !(d->q = mem_alloc(sizeof(float) * (size_t)f->n * (size_t)M)) ||
        !(z = mem_alloc(sizeof(float) * (size_t)f->n * (size_t)M)))
        goto fail;
    d->n = f->n, d->m = M, d->alpha = alpha, d->T = T;
    if ((s = predictor_create(&pr, teacher, 32, f->n_channels, f->n_mels, f->n_frames))) {
        s = status_prefix(s, "distillation: the teacher");
        goto fail;
    }
    if ((s = predictor_logits(pr, f->n, f->x, z, p))) goto fail;
    for (long i = 0; i < (long)f->n * M; i++) z[i] = (float)(z[i] / T);
    softmax(f->n, M, z, d->q);
    predictor_destroy(pr);
    mem_free(z);
    *out = d;
    return STATUS_OK;
fail:
    predictor_destroy(pr);
    mem_free(z);
    distill_destroy(d);
    if (s == STATUS_NOMEM) status_set(STATUS_NOMEM, "distillation: out of memory for %d clips", f->n);
    return s;
}

void distill_destroy(struct distill *d)
{
    if (!d) return;
    mem_free(d->q);
    mem_free(d);
}

double distill_loss(const struct distill *d, int n, const float *logits, const int *rows, const int *partner,
                    const float *lambda, double hard, float *dl)
{
    const int M = d->m;
    const double a = d->alpha, T = d->T;
    double kl = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (long)i * M;
        const float *qa = d->q + (long)rows[i] * M;
        const float *qb = partner ? d->q + (long)partner[i] * M : qa;
        double l = lambda ? lambda[i] : 1;
        /* log softmax(z / T) in double, around the max */
        double mx = -INFINITY, sum = 0;
        for (int k = 0; k < M; k++) mx = fmax(mx, z[k] / T);
        for (int k = 0; k < M; k++) sum += exp(z[k] / T - mx);
        double lse = mx + (sum > 0 ? log(sum) : 0); /* sum >= 1: the max term is 1 */
        for (int k = 0; k < M; k++) {
            double q = l * qa[k] + (1 - l) * qb[k];
            double logp = z[k] / T - lse;
            if (q > 0) kl += q * (log(q) - logp);
            float *g = dl + (long)i * M + k;
            *g = (float)((1 - a) * *g + a * T * (exp(logp) - q) / n);
        }
    }
    return (1 - a) * hard + a * T * T * kl / n;
}
