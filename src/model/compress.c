/* compress.c: BN folding, fp16 and int8 weight rounding, budget counts (compress.h).
 *
 * Key idea: every transformation rewrites values in the store and leaves the graph alone,
 * so a compressed model runs, saves and loads (in basin and in PyTorch) as any other, and
 * its accuracy is measured by the same evaluation.
 * ref: mission-anchors 4.3 (SP4ASC merge_conv_bn: s = gamma / sqrt(var), no eps; the
 * shift on one of the two summed depthwise convs; .half().float() for fp16 storage).
 */
#include "basin/model/compress.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "basin/core/graph.h"
#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/model/prune.h"

/* ----------------------------------------------------------------------------- folding */

/* A channel BN that compress_fold left: gamma 1, mean 0 and var 1 - eps on every channel. */
static int bn_folded(const struct graph *g, const struct node *bn)
{
    if (bn->op != OP_BATCHNORM || bn->axis != 1) return 0;
    const float *gamma = graph_tensor_data(g, bn->tensor[0]), *mean = graph_tensor_data(g, bn->tensor[2]);
    const float *var = graph_tensor_data(g, bn->tensor[3]);
    const float unit = (float)(1.0 - bn->eps);
    for (long k = 0; k < g->tensors[bn->tensor[0]].numel; k++)
        if (gamma[k] != 1 || mean[k] != 0 || var[k] != unit) return 0;
    return 1;
}

static int consumers(const struct graph *g, int node)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += (g->nodes[i].in[0] == node) + (g->nodes[i].in[1] == node);
    return n;
}

static int is_conv_only_into(const struct graph *g, int node)
{
    return node >= 0 && g->nodes[node].op == OP_CONV2D && consumers(g, node) == 1;
}

/* Multiply output filter o of conv node c by s[o]. */
static void scale_filters(struct graph *g, int c, const double *s)
{
    const struct graph_tensor *t = &g->tensors[g->nodes[c].tensor[0]];
    long per = t->numel / t->shape[0];
    float *w = g->store.w + t->offset;
    for (int o = 0; o < t->shape[0]; o++)
        for (long j = 0; j < per; j++) w[o * per + j] = (float)(w[o * per + j] * s[o]);
}

void compress_fold(struct model *m, enum fold_mode mode, struct fold_report *r)
{
    struct graph *g = m->g;
    memset(r, 0, sizeof *r);
    for (int i = 0; i < g->n_nodes; i++) {
        const struct node *bn = &g->nodes[i];
        if (bn->op != OP_BATCHNORM || bn->axis != 1) continue;
        int in = bn->in[0], convs[2] = {-1, -1};
        if (is_conv_only_into(g, in)) {
            convs[0] = in;
        } else if (in >= 0 && g->nodes[in].op == OP_ADD && consumers(g, in) == 1 &&
                   is_conv_only_into(g, g->nodes[in].in[0]) && is_conv_only_into(g, g->nodes[in].in[1])) {
            convs[0] = g->nodes[in].in[0], convs[1] = g->nodes[in].in[1];
        } else {
            r->n_left++;
            continue;
        }
        float *gamma = graph_tensor_data(g, bn->tensor[0]), *beta = graph_tensor_data(g, bn->tensor[1]);
        float *mean = graph_tensor_data(g, bn->tensor[2]), *var = graph_tensor_data(g, bn->tensor[3]);
        int C = g->tensors[bn->tensor[0]].shape[0];
        double *s = mem_alloc((size_t)C * sizeof *s);
        CHECK(s != NULL);
        double eps = mode == FOLD_EXACT ? bn->eps : 0;
        for (int c = 0; c < C; c++) s[c] = gamma[c] / sqrt((double)var[c] + eps);
        for (int k = 0; k < 2; k++)
            if (convs[k] >= 0) scale_filters(g, convs[k], s);
        /* the BN is now x + (beta - s mu): invstd of var 1 - eps is 1 to rounding */
        float unit = (float)(1.0 - bn->eps);
        for (int c = 0; c < C; c++) {
            beta[c] = (float)(beta[c] - s[c] * mean[c]);
            gamma[c] = 1, mean[c] = 0, var[c] = unit;
        }
        mem_free(s);
        r->n_folded++;
        r->channels += C;
    }
}

/* ----------------------------------------------------------------------------- rounding */

float compress_fp16_round(float x)
{
    if (!isfinite(x)) return x;
    double a = fabs(x);
    if (a >= 65520.0) return x > 0 ? INFINITY : -INFINITY;
    int e;
    frexp(a, &e);                      /* a = f 2^e, f in [0.5, 1) */
    int exp2 = e - 1;                  /* a = 1.xxx 2^exp2 */
    if (exp2 < -14) exp2 = -14;        /* subnormals: a fixed step of 2^-24 */
    double step = ldexp(1.0, exp2 - 10);
    double q = nearbyint(a / step) * step;   /* ties to even under the default mode */
    return (float)(x < 0 ? -q : q);
}

void compress_quantize(struct model *m, enum quant_kind k, struct quant_report *r)
{
    struct graph *g = m->g;
    memset(r, 0, sizeof *r);
    if (k == QUANT_FP16) {
        float *arrays[2] = {g->store.w, g->store.buf};
        long n[2] = {g->store.n_params, g->store.n_buffers};
        for (int a = 0; a < 2; a++)
            for (long i = 0; i < n[a]; i++) {
                float q = compress_fp16_round(arrays[a][i]);
                double d = fabs((double)q - arrays[a][i]);
                if (d > r->max_abs_change) r->max_abs_change = d;
                arrays[a][i] = q;
                r->n_values++;
            }
        return;
    }
    for (int i = 0; i < g->n_tensors; i++) {
        const struct graph_tensor *t = &g->tensors[i];
        if (t->kind != TENSOR_WEIGHT) continue;
        long per = t->numel / t->shape[0];
        for (int o = 0; o < t->shape[0]; o++) {
            float *w = g->store.w + t->offset + o * per;
            const float *mk = g->store.mask + t->offset + o * per;
            double mx = 0;
            for (long j = 0; j < per; j++)
                if (mk[j] != 0 && fabs(w[j]) > mx) mx = fabs(w[j]);
            if (mx == 0) continue;
            double scale = mx / 127;
            for (long j = 0; j < per; j++) {
                double q = nearbyint(w[j] / scale);
                if (q > 127) q = 127;
                if (q < -127) q = -127;
                float v = (float)(q * scale);
                double d = fabs((double)v - w[j]);
                if (mk[j] != 0 && d > r->max_abs_change) r->max_abs_change = d;
                w[j] = v;
                r->n_values++;
            }
        }
    }
}

/* ----------------------------------------------------------------------------- activations */

static int quantised_op(const struct node *nd)
{
    return nd->op == OP_CONV2D || nd->op == OP_LINEAR;
}

void compress_act_clear(struct model *m)
{
    struct graph *g = m->g;
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i].act_scale = 0;
    g->act_quant = 0;
}

int compress_calibrate(struct model *m, const float *x, int n_total, int c, int f, int t, int n,
                       const struct progress *pr, struct calib_report *r)
{
    struct graph *g = m->g;
    memset(r, 0, sizeof *r);
    if (n < 1 || n_total < 1) return status_set(STATUS_INVALID, "calibrate: %d of %d clips", n, n_total);
    if (n > n_total) n = n_total;
    compress_act_clear(m);
    const int batch = n < 16 ? n : 16;
    const long per = (long)c * f * t;
    double *mx = mem_calloc((size_t)g->n_nodes, sizeof *mx);
    float *xb = mem_alloc((size_t)batch * per * sizeof *xb);
    struct plan *p = NULL;
    int s = mx && xb ? STATUS_OK : STATUS_NOMEM;
    if (!s) s = plan_create(&p, g, batch, c, f, t, PLAN_KEEP);
    for (int done = 0; done < n && !s;) {
        int b = n - done < batch ? n - done : batch;
        for (int k = 0; k < b; k++)
            memcpy(xb + k * per, x + (long)(done + k) * n_total / n * per, (size_t)per * sizeof *xb);
        if ((s = plan_forward(p, b, xb, 0, NULL))) break;
        for (int i = 0; i < g->n_nodes; i++) {
            if (!quantised_op(&g->nodes[i])) continue;
            int in = g->nodes[i].in[0], ci, fi, ti;
            plan_node_shape(p, in, &ci, &fi, &ti);
            const float *a = plan_node_output(p, in);
            CHECK(a != NULL);
            long len = (long)b * ci * fi * ti;
            for (long j = 0; j < len; j++)
                if (fabsf(a[j]) > mx[i]) mx[i] = fabsf(a[j]);
        }
        done += b;
        if (!progress_report(pr, "calibrate", done, n)) s = status_set(STATUS_CANCELLED, "calibrate: cancelled");
    }
    if (!s) {
        for (int i = 0; i < g->n_nodes; i++) {
            if (!quantised_op(&g->nodes[i])) continue;
            float sc = (float)(mx[i] / 127);
            if (!(sc > 0) || !isfinite(sc)) {
                r->n_zero++;
                continue;
            }
            g->nodes[i].act_scale = sc;
            if (!r->n_inputs || sc < r->min_scale) r->min_scale = sc;
            if (sc > r->max_scale) r->max_scale = sc;
            r->n_inputs++;
        }
        g->act_quant = r->n_inputs;
        r->n_clips = n;
    }
    plan_destroy(p);
    mem_free(mx);
    mem_free(xb);
    return s;
}

/* ----------------------------------------------------------------------------- BN statistics */

int compress_update_bn(struct model *m, struct plan *plan, const float *x, int n_total, int c, int f, int t, int n,
                       int batch, uint64_t seed, const struct progress *pr, struct bnstats_report *r)
{
    struct graph *g = m->g;
    memset(r, 0, sizeof *r);
    if (n < 1 || n_total < 1 || batch < 1)
        return status_set(STATUS_INVALID, "bnstats: %d of %d clips in batches of %d", n, n_total, batch);
    if (n > n_total) n = n_total;
    if (batch > n) batch = n;
    long n_stats = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct node *bn = &g->nodes[i];
        if (bn->op != OP_BATCHNORM) continue;
        if (bn_folded(g, bn))
            return status_set(STATUS_INVALID, "bnstats: '%s' is folded into its conv (its gamma lives in the conv "
                              "now): recompute the statistics before folding", bn->name);
        r->n_bn++;
        r->channels += g->tensors[bn->tensor[2]].numel;
        n_stats += 2 * g->tensors[bn->tensor[2]].numel;
    }
    if (!r->n_bn) return status_set(STATUS_INVALID, "bnstats: the model has no batch norm");
    const long per = (long)c * f * t;
    float *xb = mem_alloc((size_t)batch * per * sizeof *xb), *old = mem_alloc((size_t)n_stats * sizeof *old);
    struct plan *p = plan;
    int cleared = 0;
    int s = xb && old ? STATUS_OK : status_set(STATUS_NOMEM, "bnstats: out of memory for a batch of %d clips", batch);
    if (!s && !p) s = plan_create(&p, g, batch, c, f, t, 0);
    if (!s) { /* the old statistics, for the report */
        float *o = old;
        for (int i = 0; i < g->n_nodes; i++) {
            const struct node *bn = &g->nodes[i];
            if (bn->op != OP_BATCHNORM) continue;
            long k = g->tensors[bn->tensor[2]].numel;
            memcpy(o, graph_tensor_data(g, bn->tensor[2]), sizeof *o * (size_t)k);
            memcpy(o + k, graph_tensor_data(g, bn->tensor[3]), sizeof *o * (size_t)k);
            o += 2 * k;
        }
        graph_bn_reset_stats(g);
        cleared = 1;
    }
    struct rng base;
    rng_seed(&base, seed);
    /* batch b holds clips b, b + nb, b + 2 nb, ... of the n: each batch samples the whole
     * split (features are often stored class by class; batches of neighbours would each see
     * one class, and the mean of their variances would miss the spread between them) */
    const int nb = (n + batch - 1) / batch;
    for (int done = 0, b = 0; b < nb && !s; b++) {
        int k = (n - b + nb - 1) / nb;
        for (int j = 0; j < k; j++)
            memcpy(xb + j * per, x + (long)(b + j * nb) * n_total / n * per, (size_t)per * sizeof *xb);
        graph_bn_set_momentum(g, 1.0f / (float)(b + 1));
        struct rng rb = rng_split(&base, (uint64_t)b);
        if ((s = plan_forward(p, k, xb, 1, &rb))) break;
        done += k;
        r->n_clips = done, r->n_batches = b + 1;
        if (k > r->batch) r->batch = k;
        if (!progress_report(pr, "bnstats", done, n)) s = status_set(STATUS_CANCELLED, "bnstats: cancelled");
    }
    graph_bn_set_momentum(g, 0.1f);
    if (cleared) {
        const float *o = old;
        r->var_ratio_min = INFINITY, r->var_ratio_max = 0;
        for (int i = 0; i < g->n_nodes; i++) {
            const struct node *bn = &g->nodes[i];
            if (bn->op != OP_BATCHNORM) continue;
            long k = g->tensors[bn->tensor[2]].numel;
            float *mean = graph_tensor_data(g, bn->tensor[2]), *var = graph_tensor_data(g, bn->tensor[3]);
            if (s) { /* cancelled or failed: the old statistics back */
                memcpy(mean, o, sizeof *o * (size_t)k);
                memcpy(var, o + k, sizeof *o * (size_t)k);
            }
            for (long j = 0; j < k && !s; j++) {
                double d = fabs((double)mean[j] - o[j]), q = (double)var[j] / o[k + j];
                if (d > r->mean_shift) r->mean_shift = d;
                if (q < r->var_ratio_min) r->var_ratio_min = q;
                if (q > r->var_ratio_max) r->var_ratio_max = q;
            }
            o += 2 * k;
        }
    }
    if (p != plan) plan_destroy(p);
    mem_free(xb);
    mem_free(old);
    return s;
}

/* ----------------------------------------------------------------------------- counts */

int compress_counts(const struct model *m, int f, int t, struct budget_counts *c)
{
    memset(c, 0, sizeof *c);
    struct layer_row *rows = mem_calloc((size_t)m->g->n_nodes, sizeof *rows);
    if (!rows) return status_set(STATUS_NOMEM, "budget: out of memory");
    struct model_summary s;
    int n, st = model_describe(m, f, t, rows, &n, &s);
    mem_free(rows);
    if (st) return st;
    const struct graph *g = m->g;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct node *bn = &g->nodes[i];
        if (bn->op != OP_BATCHNORM || bn->axis != 1) continue;
        if (bn_folded(g, bn)) c->folded += g->tensors[bn->tensor[0]].shape[0];
    }
    c->params = graph_param_count(g);
    c->params_kept = prune_kept_params(g) - c->folded;
    c->macs = s.macs;
    c->bytes_fp32 = 4.0 * (double)c->params_kept;
    c->bytes_fp16 = 2.0 * (double)c->params_kept;
    c->bytes_int8 = 1.0 * (double)c->params_kept;
    return STATUS_OK;
}
