/* admm.c: ADMM toward a structured budget (admm.h).
 *
 * Key idea: the projection is the structured pruning search itself, run on W + U instead
 * of W, so the structure ADMM drives the weights towards is exactly the one `prune
 * structured` will cut. ref: Boyd et al. 2011, "Distributed optimization and statistical
 * learning via ADMM", section 3.1.1 (scaled form); FAU DCASE23 report, section 3.1.
 */
#include "basin/train/admm.h"

#include <math.h>
#include <string.h>

#include "basin/core/graph.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/model/model.h"
#include "basin/model/structured.h"

void admm_destroy(struct admm *a)
{
    if (!a) return;
    mem_free(a->z);
    mem_free(a->u);
    mem_free(a->v);
    mem_free(a);
}

/* Z = P(v): v with the removed groups zeroed, outside the weights 0. */
static int project(struct admm *a, const float *v)
{
    const struct graph *g = a->m->g;
    struct structured_plan p;
    int s = structured_search_at(a->m, v, a->max_macs, a->max_params, a->f, a->t, &p);
    if (s) return s;
    memset(a->z, 0, sizeof(float) * (size_t)g->store.n_params);
    for (int i = 0; i < g->n_tensors; i++) {
        const struct graph_tensor *t = &g->tensors[i];
        if (t->kind == TENSOR_WEIGHT) memcpy(a->z + t->offset, v + t->offset, sizeof(float) * (size_t)t->numel);
    }
    structured_zero(a->m, &p, a->z);
    a->n_removed = p.n_removed, a->n_groups = p.n_groups;
    structured_plan_fini(&p);
    return STATUS_OK;
}

/* The figures of the last update: |W - Z| and |W| where Z is 0 but W + U was not. */
static void figures(struct admm *a)
{
    const struct graph *g = a->m->g;
    const float *w = g->store.w;
    double pr = 0, rm = 0;
    for (int i = 0; i < g->n_tensors; i++) {
        const struct graph_tensor *t = &g->tensors[i];
        if (t->kind != TENSOR_WEIGHT) continue;
        for (long j = t->offset; j < t->offset + t->numel; j++) {
            double d = (double)w[j] - a->z[j];
            pr += d * d;
            if (a->z[j] == 0 && a->v[j] != 0) rm += (double)w[j] * w[j];
        }
    }
    a->primal = sqrt(pr), a->removed_norm = sqrt(rm);
}

int admm_create(struct admm **out, struct model *m, double max_macs, long max_params, double rho, int f, int t)
{
    *out = NULL;
    if (!(rho > 0 && rho < 1e6)) return status_set(STATUS_INVALID, "admm: rho=%g must be > 0", rho);
    struct admm *a = mem_calloc(1, sizeof *a);
    size_t n = (size_t)m->g->store.n_params;
    if (!a || !(a->z = mem_calloc(n, sizeof(float))) || !(a->u = mem_calloc(n, sizeof(float))) ||
        !(a->v = mem_calloc(n, sizeof(float)))) {
        admm_destroy(a);
        return status_set(STATUS_NOMEM, "admm: out of memory");
    }
    a->m = m, a->max_macs = max_macs, a->max_params = max_params, a->rho = rho, a->f = f, a->t = t;
    memcpy(a->v, m->g->store.w, sizeof(float) * n);
    int s = project(a, a->v);
    if (s) {
        admm_destroy(a);
        return status_prefix(s, "admm");
    }
    figures(a);
    *out = a;
    return STATUS_OK;
}

void admm_gradient(const struct admm *a, const float *w, float *g)
{
    const struct graph *gr = a->m->g;
    const float rho = (float)a->rho;
    for (int i = 0; i < gr->n_tensors; i++) {
        const struct graph_tensor *t = &gr->tensors[i];
        if (t->kind != TENSOR_WEIGHT) continue;
        for (long j = t->offset; j < t->offset + t->numel; j++) g[j] += rho * (w[j] - a->z[j] + a->u[j]);
    }
}

int admm_update(struct admm *a)
{
    const struct graph *g = a->m->g;
    const float *w = g->store.w;
    for (long j = 0; j < g->store.n_params; j++) a->v[j] = w[j] + a->u[j];
    int s = project(a, a->v);
    if (s) return status_prefix(s, "admm");
    for (int i = 0; i < g->n_tensors; i++) {
        const struct graph_tensor *t = &g->tensors[i];
        if (t->kind != TENSOR_WEIGHT) continue;
        for (long j = t->offset; j < t->offset + t->numel; j++) a->u[j] += w[j] - a->z[j];
    }
    a->n_updates++;
    figures(a);
    return STATUS_OK;
}
