/* eval.c: accuracy, log loss, per class, per device, seen / unseen, confusion (eval.h). */
#include "basin/train/eval.h"

#include <math.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/data/dataset.h"
#include "basin/data/features.h"
#include "basin/model/model.h"
#include "basin/model/predict.h"

/* ref: sklearn.metrics.log_loss clips probabilities to [eps, 1 - eps], eps 1e-15. */
#define EVAL_EPS 1e-15

void eval_result_destroy(struct eval_result *r)
{
    if (!r) return;
    mem_free(r->per_class);
    mem_free(r->per_device);
    mem_free(r->device_seen);
    mem_free(r->confusion);
    mem_free(r->probs);
    mem_free(r);
}

static void add(struct eval_group *g, int correct, double nll)
{
    g->n++;
    g->correct += correct;
    g->logloss += nll; /* a sum until finish() */
}

static void finish(struct eval_group *g)
{
    g->acc = g->n ? (double)g->correct / g->n : 0;
    g->logloss = g->n ? g->logloss / g->n : 0;
}

int eval_from_probs(struct eval_result **out, int n, int n_classes, const float *probs,
                    const int *labels, const int *devices, const struct dataset *ds)
{
    *out = NULL;
    const int M = n_classes, D = devices && ds ? dataset_n_devices(ds) : 0;
    struct eval_result *r = mem_calloc(1, sizeof *r);
    if (!r) return STATUS_NOMEM;
    r->n_classes = M, r->n_devices = D, r->n = n;
    r->per_class = mem_calloc((size_t)M, sizeof *r->per_class);
    r->per_device = mem_calloc((size_t)D + 1, sizeof *r->per_device);
    r->device_seen = mem_calloc((size_t)D + 1, sizeof *r->device_seen);
    r->confusion = mem_calloc((size_t)M * M, sizeof *r->confusion);
    r->probs = mem_alloc(((size_t)n * M + 1) * sizeof *r->probs);
    if (!r->per_class || !r->per_device || !r->device_seen || !r->confusion || !r->probs) {
        eval_result_destroy(r);
        return STATUS_NOMEM;
    }
    memcpy(r->probs, probs, (size_t)n * M * sizeof *probs);
    for (int d = 0; d < D; d++) r->device_seen[d] = dataset_device_seen(ds, d);
    for (int i = 0; i < n; i++) {
        const float *p = probs + (long)i * M;
        int y = labels[i], best = 0;
        CHECK(y >= 0 && y < M);
        for (int k = 1; k < M; k++)
            if (p[k] > p[best]) best = k;
        double q = p[y] < EVAL_EPS ? EVAL_EPS : p[y] > 1 - EVAL_EPS ? 1 - EVAL_EPS : p[y];
        double nll = -log(q);
        int ok = best == y;
        r->confusion[(long)y * M + best]++;
        add(&r->all, ok, nll);
        add(&r->per_class[y], ok, nll);
        if (D) {
            int d = devices[i];
            CHECK(d >= 0 && d < D);
            add(&r->per_device[d], ok, nll);
            add(r->device_seen[d] ? &r->seen : &r->unseen, ok, nll);
        }
    }
    finish(&r->all);
    finish(&r->seen);
    finish(&r->unseen);
    int classes_present = 0;
    for (int k = 0; k < M; k++) {
        finish(&r->per_class[k]);
        if (r->per_class[k].n) {
            classes_present++;
            r->acc_macro += r->per_class[k].acc;
            r->logloss_macro += r->per_class[k].logloss;
        }
    }
    if (classes_present) {
        r->acc_macro /= classes_present;
        r->logloss_macro /= classes_present;
    }
    for (int d = 0; d < D; d++) finish(&r->per_device[d]);
    *out = r;
    return STATUS_OK;
}

int eval_run(struct eval_result **out, struct model *m, const struct features *f,
             const struct dataset *ds, int batch, const struct progress *p)
{
    *out = NULL;
    const int M = m->cfg.classes, n = f->n;
    if (M != f->n_classes)
        return status_set(STATUS_MISMATCH, "the model has %d classes, the features %d", M, f->n_classes);
    if (batch <= 0) batch = 32;
    if (batch > n) batch = n > 0 ? n : 1;
    float *probs = mem_alloc(((size_t)n * M + 1) * sizeof *probs);
    int *devices = mem_alloc(((size_t)n + 1) * sizeof *devices);
    struct predictor *pr = NULL;
    int s = probs && devices ? STATUS_OK : STATUS_NOMEM;
    if (!s) s = predictor_create(&pr, m, batch, f->n_channels, f->n_mels, f->n_frames);
    if (!s) s = predictor_probs(pr, n, f->x, probs, p);
    for (int i = 0; i < n && !s; i++) devices[i] = dataset_item(ds, f->items[i])->device;
    if (!s) s = eval_from_probs(out, n, M, probs, f->labels, devices, ds);
    predictor_destroy(pr);
    mem_free(probs);
    mem_free(devices);
    return s;
}
