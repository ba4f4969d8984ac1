/* prune.c: unstructured pruning through the store's masks (prune.h).
 *
 * Key idea: a mask is recomputed from scratch from the magnitudes of all weights (masked
 * ones keep theirs, as the optimiser never moves them), by one sort of (|w|, position):
 * exact counts whatever the ties, and a cap is a quota a tensor cannot exceed while the
 * walk up the sorted magnitudes goes on through the other tensors.
 *
 * ref: mission-anchors 3.1 (CP-JKU cp_resnet_prune.py: masks over every >= 2-D weight,
 * k = 1 + round(p (N - 1)) there, exactly round(p N) here; trainer.py: P from
 * prune_target_params; utils_funcs.customsigmoid_rampup), 3.2 (the classifier's
 * weight_anticolapse_limit 0.5), 3.3 (Golubeva et al.: a static random mask, uniform per
 * layer, so the non-zero count matches a narrower model).
 */
#include "basin/model/prune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"

static const char *const scope_names[] = {"global", "layer"};
static const char *const ramp_names[] = {"linear", "exp"};

void prune_opts_default(struct prune_opts *o)
{
    memset(o, 0, sizeof *o);
    o->scope = PRUNE_GLOBAL;
    o->ramp = PRUNE_RAMP_LINEAR;
    o->ramp_epochs = 50;
    o->classifier_cap = PRUNE_CLASSIFIER_CAP;
}

const char *prune_scope_name(enum prune_scope s) { return scope_names[s]; }
const char *prune_ramp_name(enum prune_ramp r) { return ramp_names[r]; }

int prune_scope_parse(const char *name, enum prune_scope *out)
{
    for (int i = 0; i < 2; i++)
        if (!strcmp(name, scope_names[i])) return *out = (enum prune_scope)i, STATUS_OK;
    return status_set(STATUS_INVALID, "unknown pruning scope '%s' (global, layer)", name);
}

int prune_ramp_parse(const char *name, enum prune_ramp *out)
{
    for (int i = 0; i < 2; i++)
        if (!strcmp(name, ramp_names[i])) return *out = (enum prune_ramp)i, STATUS_OK;
    return status_set(STATUS_INVALID, "unknown pruning ramp '%s' (linear, exp)", name);
}

double prune_ramp_at(enum prune_ramp r, int epoch, int ramp_epochs)
{
    int L = ramp_epochs < 1 ? 1 : ramp_epochs;
    double e = epoch < 0 ? 0 : epoch > L ? L : epoch;
    if (r == PRUNE_RAMP_LINEAR) return e / L;
    double u = 1.0 - e / L;
    return exp(-u * u * u);
}

long prune_prunable(const struct graph *g)
{
    long n = 0;
    for (int i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].kind == TENSOR_WEIGHT) n += g->tensors[i].numel;
    return n;
}

long prune_kept_params(const struct graph *g)
{
    long n = graph_param_count(g);
    for (int i = 0; i < g->n_tensors; i++) {
        const struct graph_tensor *t = &g->tensors[i];
        if (t->kind != TENSOR_WEIGHT) continue;
        const float *m = g->store.mask + t->offset;
        for (long j = 0; j < t->numel; j++) n -= m[j] == 0;
    }
    return n;
}

int prune_fraction_for(const struct graph *g, long target_params, double *p)
{
    long total = graph_param_count(g), prunable = prune_prunable(g);
    long fixed = total - prunable;
    if (target_params > total)
        return status_set(STATUS_INVALID, "prune: params=%ld is more than the model's %ld parameters",
                          target_params, total);
    double f = prunable > 0 ? (double)(total - target_params) / (double)prunable : 1;
    if (target_params < fixed || f >= 0.9999)
        return status_set(STATUS_INVALID, "prune: params=%ld would prune %.4g%% of the %ld prunable weights "
                          "(at most 99.99%%; %ld parameters are BN and biases, never pruned)",
                          target_params, 100 * f, prunable, fixed);
    *p = f;
    return STATUS_OK;
}

int prune_classifier_tensor(const struct graph *g)
{
    int last = -1;
    for (int i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].kind == TENSOR_WEIGHT) last = i;
    return last;
}

void prune_caps_default(const struct graph *g, double classifier_cap, double *caps)
{
    for (int i = 0; i < g->n_tensors; i++) caps[i] = 1;
    int c = prune_classifier_tensor(g);
    if (c >= 0) caps[c] = classifier_cap;
}

void prune_reset(struct graph *g)
{
    for (long i = 0; i < g->store.n_params; i++) g->store.mask[i] = 1;
    g->masked = 0;
}

/* ----------------------------------------------------------------------------- magnitude */

struct mag {
    float a;        /* |w| */
    int t;          /* tensor */
    long j;         /* position in the store */
};

static int mag_cmp(const void *pa, const void *pb)
{
    const struct mag *a = pa, *b = pb;
    if (a->a != b->a) return a->a < b->a ? -1 : 1;
    return (a->j > b->j) - (a->j < b->j);
}

static long cap_count(const struct graph_tensor *t, const double *caps, int i)
{
    double c = caps ? caps[i] : 1;
    if (c >= 1) return t->numel;
    if (c <= 0) return 0;
    return (long)floor(c * (double)t->numel + 1e-9);
}

/* Prune the n smallest of the n_m sorted magnitudes whose tensors have quota left. */
static int prune_sorted(struct graph *g, struct mag *v, long n_m, long n, const double *caps)
{
    long *left = mem_calloc((size_t)g->n_tensors, sizeof *left);
    if (!left) return STATUS_NOMEM;
    for (int i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].kind == TENSOR_WEIGHT) left[i] = cap_count(&g->tensors[i], caps, i);
    long done = 0;
    for (long k = 0; k < n_m && done < n; k++) {
        if (left[v[k].t] <= 0) continue;
        left[v[k].t]--;
        g->store.mask[v[k].j] = 0;
        done++;
    }
    mem_free(left);
    if (done) g->masked = 1;
    return done == n ? STATUS_OK : STATUS_INVALID;
}

int prune_magnitude(struct graph *g, double p, enum prune_scope scope, const double *caps)
{
    CHECK(p >= 0 && p < 1);
    long prunable = prune_prunable(g);
    long largest = 0;
    for (int i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].kind == TENSOR_WEIGHT && g->tensors[i].numel > largest) largest = g->tensors[i].numel;
    struct mag *v = mem_alloc((size_t)(scope == PRUNE_GLOBAL ? prunable : largest) * sizeof *v + 1);
    if (!v) return STATUS_NOMEM;
    prune_reset(g);
    int s = STATUS_OK;
    if (scope == PRUNE_GLOBAL) {
        long n = 0;
        for (int i = 0; i < g->n_tensors; i++) {
            const struct graph_tensor *t = &g->tensors[i];
            if (t->kind != TENSOR_WEIGHT) continue;
            for (long j = 0; j < t->numel; j++)
                v[n++] = (struct mag){fabsf(g->store.w[t->offset + j]), i, t->offset + j};
        }
        qsort(v, (size_t)n, sizeof *v, mag_cmp);
        long want = lround(p * (double)prunable);
        if ((s = prune_sorted(g, v, n, want, caps)) == STATUS_INVALID)
            s = status_set(STATUS_INVALID, "prune: the layer caps leave fewer than the %ld weights "
                           "(%.4g%%) to prune", want, 100 * p);
    } else {
        for (int i = 0; i < g->n_tensors && !s; i++) {
            const struct graph_tensor *t = &g->tensors[i];
            if (t->kind != TENSOR_WEIGHT) continue;
            for (long j = 0; j < t->numel; j++)
                v[j] = (struct mag){fabsf(g->store.w[t->offset + j]), i, t->offset + j};
            qsort(v, (size_t)t->numel, sizeof *v, mag_cmp);
            long want = lround(p * (double)t->numel), cap = cap_count(t, caps, i);
            for (long k = 0; k < (want < cap ? want : cap); k++) g->store.mask[v[k].j] = 0;
            if (want > 0 && cap > 0) g->masked = 1;
        }
    }
    if (s == STATUS_NOMEM) status_set(STATUS_NOMEM, "prune: out of memory");
    mem_free(v);
    return s;
}

int prune_opts_on(const struct prune_opts *o)
{
    return o->target > 0 || o->target_params > 0;
}

int prune_epoch(struct graph *g, const struct prune_opts *o, int epoch)
{
    if (!prune_opts_on(o)) return STATUS_OK;
    double P = o->target;
    int s;
    if (o->target_params > 0 && (s = prune_fraction_for(g, o->target_params, &P))) return s;
    double *caps = mem_alloc((size_t)g->n_tensors * sizeof *caps);
    if (!caps) return status_set(STATUS_NOMEM, "prune: out of memory");
    prune_caps_default(g, o->classifier_cap, caps);
    s = prune_magnitude(g, P * prune_ramp_at(o->ramp, epoch, o->ramp_epochs), o->scope, caps);
    mem_free(caps);
    return s;
}

/* ----------------------------------------------------------------------------- random */

int prune_random(struct graph *g, long target_params, uint64_t seed)
{
    double p;
    int s = prune_fraction_for(g, target_params, &p);
    if (s) return s;
    prune_reset(g);
    long prunable = prune_prunable(g);
    long remove = graph_param_count(g) - target_params;
    /* per tensor: floor of its share, then the largest remainders (first in graph order on
     * ties) take the rest, so the total is exact */
    long *cnt = mem_calloc((size_t)g->n_tensors, sizeof *cnt);
    double *rem = mem_calloc((size_t)g->n_tensors, sizeof *rem);
    long largest = 1;
    for (int i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].numel > largest) largest = g->tensors[i].numel;
    long *perm = mem_alloc((size_t)largest * sizeof *perm);
    if (!cnt || !rem || !perm) {
        s = status_set(STATUS_NOMEM, "prune: out of memory");
        goto done;
    }
    long given = 0;
    for (int i = 0; i < g->n_tensors; i++) {
        if (g->tensors[i].kind != TENSOR_WEIGHT) continue;
        double share = (double)remove * (double)g->tensors[i].numel / (double)prunable;
        cnt[i] = (long)floor(share);
        rem[i] = share - (double)cnt[i];
        given += cnt[i];
    }
    while (given < remove) {
        int best = -1;
        for (int i = 0; i < g->n_tensors; i++)
            if (g->tensors[i].kind == TENSOR_WEIGHT && cnt[i] < g->tensors[i].numel &&
                (best < 0 || rem[i] > rem[best]))
                best = i;
        CHECK(best >= 0);
        cnt[best]++, rem[best] = -1, given++;
    }
    struct rng base;
    rng_seed(&base, seed);
    for (int i = 0; i < g->n_tensors; i++) {
        const struct graph_tensor *t = &g->tensors[i];
        if (t->kind != TENSOR_WEIGHT || !cnt[i]) continue;
        /* a partial Fisher-Yates shuffle: the first cnt positions are a uniform draw */
        struct rng r = rng_split(&base, (uint64_t)i);
        for (long j = 0; j < t->numel; j++) perm[j] = j;
        for (long k = 0; k < cnt[i]; k++) {
            long j = k + (long)rng_below(&r, (uint64_t)(t->numel - k));
            long tmp = perm[k];
            perm[k] = perm[j], perm[j] = tmp;
            g->store.mask[t->offset + perm[k]] = 0;
        }
        g->masked = 1;
    }
done:
    mem_free(cnt);
    mem_free(rem);
    mem_free(perm);
    return s;
}

/* ----------------------------------------------------------------------------- table */

int prune_layers(const struct model *m, int f, int t, struct prune_layer *rows, int *n)
{
    const struct graph *g = m->g;
    *n = 0;
    struct layer_row *lr = mem_calloc((size_t)g->n_nodes, sizeof *lr);
    if (!lr) return status_set(STATUS_NOMEM, "prune: out of memory");
    struct model_summary sum;
    int n_rows, s = model_describe(m, f, t, lr, &n_rows, &sum);
    if (s) {
        mem_free(lr);
        return s;
    }
    for (int i = 0; i < g->n_tensors; i++) {
        const struct graph_tensor *gt = &g->tensors[i];
        if (gt->kind != TENSOR_WEIGHT) continue;
        struct prune_layer *r = &rows[(*n)++];
        memset(r, 0, sizeof *r);
        r->tensor = i, r->node = gt->node, r->numel = gt->numel;
        r->filters = gt->shape[0];
        const float *mk = g->store.mask + gt->offset;
        long per = gt->numel / (gt->shape[0] > 0 ? gt->shape[0] : 1);
        for (int o = 0; o < r->filters; o++) {
            long kept = 0;
            for (long j = 0; j < per; j++) kept += mk[o * per + j] != 0;
            r->kept += kept;
            r->filters_removed += kept == 0;
        }
        for (int k = 0; k < n_rows; k++)
            if (lr[k].node == gt->node) r->macs = lr[k].macs;
        r->macs_kept = gt->numel ? r->macs * (double)r->kept / (double)gt->numel : 0;
    }
    mem_free(lr);
    return STATUS_OK;
}
