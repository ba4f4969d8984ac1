/* predict.c: batched eval-mode forward through one reused inference plan (see predict.h). */
#include "basin/model/predict.h"

#include <string.h>

#include "basin/core/graph.h"
#include "basin/core/loss.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/model/model.h"

struct predictor {
    struct model *m;
    struct plan *plan;
    int max_batch, c, f, t;
};

int predictor_create(struct predictor **out, struct model *m, int max_batch, int c, int f, int t)
{
    *out = NULL;
    CHECK(max_batch >= 1);
    struct predictor *p = mem_calloc(1, sizeof *p);
    if (!p) return STATUS_NOMEM;
    *p = (struct predictor){m, NULL, max_batch, c, f, t};
    int s = plan_create(&p->plan, m->g, max_batch, c, f, t, 0);
    if (s) {
        mem_free(p);
        return s;
    }
    *out = p;
    return STATUS_OK;
}

void predictor_destroy(struct predictor *p)
{
    if (!p) return;
    plan_destroy(p->plan);
    mem_free(p);
}

void predictor_shape(const struct predictor *p, int *max_batch, int *c, int *f, int *t)
{
    *max_batch = p->max_batch, *c = p->c, *f = p->f, *t = p->t;
}

int predictor_logits(struct predictor *p, int n, const float *x, float *logits,
                     const struct progress *pr)
{
    const long per = (long)p->c * p->f * p->t;
    const int classes = p->m->cfg.classes;
    for (int i = 0; i < n; i += p->max_batch) {
        int k = n - i < p->max_batch ? n - i : p->max_batch;
        int s = plan_forward(p->plan, k, x + (long)i * per, 0, NULL);
        if (s) return s;
        memcpy(logits + (long)i * classes, plan_output(p->plan), (size_t)k * classes * sizeof *logits);
        if (n > p->max_batch && !progress_report(pr, "forward", i + k, n))
            return status_set(STATUS_CANCELLED, "forward: cancelled after %d of %d clips", i + k, n);
    }
    return STATUS_OK;
}

int predictor_probs(struct predictor *p, int n, const float *x, float *probs,
                    const struct progress *pr)
{
    int s = predictor_logits(p, n, x, probs, pr);
    if (!s) softmax(n, p->m->cfg.classes, probs, probs);
    return s;
}

int model_predict(struct model *m, int n, int c, int f, int t, const float *x, float *logits)
{
    struct predictor *p;
    int s = predictor_create(&p, m, n < 32 ? (n > 0 ? n : 1) : 32, c, f, t);
    if (s) return s;
    s = predictor_logits(p, n, x, logits, NULL);
    predictor_destroy(p);
    return s;
}
