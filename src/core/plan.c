/* plan.c: a graph made runnable for one input size (see graph.h).
 *
 * Memory: every activation and gradient buffer is an interval on one timeline (forward
 * step i = i, backward step of node i = 2N - 1 - i) and a greedy first-fit places the
 * intervals in one arena, so buffers whose lifetimes do not overlap share memory. The arena
 * is allocated and touched once; steps never allocate.
 *
 * Eval-mode forward on an inference plan folds each channel BN into the conv before it
 * (scale and shift in the conv's epilogue, relu too), so the landscape and live
 * classification paths make one pass over each activation.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basin/core/graph.h"
#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"

struct pnode {
    int c, f, t;
    long size;                  /* floats per sample */
    float *out, *dout;
    float *save_mean, *save_invstd; /* batchnorm, train mode */
    double *sums;               /* batchnorm fed by a conv: sum and sum of squares (2 C),
                                 * accumulated by the conv's epilogue in train mode */
    uint8_t *drop_mask;         /* dropout */
    struct conv2d_shape conv;   /* conv2d, with n = planned batch */
    struct pool2d_shape pool;
    int max_consumer;           /* largest consumer index, or the node itself */
    int fused_bn;               /* conv: the BN node folded into it in eval forward, or -1 */
    int fused_into;             /* bn: the conv that does its work in eval forward, or -1 */
};

struct plan {
    struct graph *g;
    int n, c, f, t, flags;
    struct pnode *pn;
    struct arena arena;
    int n_threads;
    float *scratch;             /* conv scratch for n_threads threads (outside the arena) */
    size_t n_scratch;
    float *w_eff;               /* n_params: w * damping * mask, when any is in use */
    float *dw_tmp;              /* largest weight tensor */
    float *bn_scale, *bn_shift; /* eval-mode BN folding, largest channel count */
    unsigned char *has_grad;
    int last_n, last_train, forwarded;
    double *prof;               /* 2 * n_nodes seconds when profiling, else NULL */
};

static double wall(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* ----------------------------------------------------------------------------- memory */

struct interval {
    long start, end;            /* inclusive timeline steps */
    size_t bytes, offset;
    float **dst;
};

static int by_size_desc(const void *a, const void *b)
{
    const struct interval *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int by_offset(const void *a, const void *b)
{
    const struct interval *x = *(struct interval *const *)a, *y = *(struct interval *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Greedy first-fit of intervals into one block; returns the block size in bytes. */
static size_t place_intervals(struct interval *iv, int n, struct interval **tmp)
{
    qsort(iv, (size_t)n, sizeof *iv, by_size_desc);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        for (int j = 0; j < i; j++)
            if (iv[j].start <= iv[i].end && iv[i].start <= iv[j].end) tmp[k++] = &iv[j];
        qsort(tmp, (size_t)k, sizeof *tmp, by_offset);
        size_t off = 0;
        for (int j = 0; j < k; j++) {
            if (off + iv[i].bytes <= tmp[j]->offset) break;
            if (tmp[j]->offset + tmp[j]->bytes > off) off = tmp[j]->offset + tmp[j]->bytes;
        }
        iv[i].offset = off;
        if (off + iv[i].bytes > total) total = off + iv[i].bytes;
    }
    return total;
}

/* ----------------------------------------------------------------------------- planning */

static int weights_need_eff(const struct graph *g)
{
    if (g->masked) return 1;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == OP_CONV2D && g->nodes[i].damping > 0 && g->nodes[i].k[0] >= 3)
            return 1;
    return 0;
}

/* Floats of conv scratch for nt threads: the largest any conv asks. */
static size_t scratch_floats(const struct plan *p, int nt)
{
    size_t need = 1;
    for (int i = 0; i < p->g->n_nodes; i++)
        if (p->g->nodes[i].op == OP_CONV2D) {
            size_t s = conv2d_scratch_floats(&p->pn[i].conv, nt);
            if (s > need) need = s;
        }
    return need;
}

static int size_scratch(struct plan *p)
{
    int nt = threads_get();
    size_t need = scratch_floats(p, nt);
    float *scratch = mem_alloc(need * sizeof(float));
    if (!scratch) return STATUS_NOMEM; /* the old scratch stays, for the old count */
    memset(scratch, 0, need * sizeof(float)); /* touch the pages now */
    mem_free(p->scratch);
    p->scratch = scratch;
    p->n_scratch = need;
    p->n_threads = nt;
    return STATUS_OK;
}

/* Before a pass: re-plan the scratch if threads_get() changed since it was sized, then pin
 * the calling thread to the count it was sized for, so a threads_set() from another thread
 * during the pass cannot make a kernel run more threads than the scratch holds. Returns
 * the previous pin (for threads_pin) or -1 when the scratch could not be re-planned. */
static int begin_pass(struct plan *p)
{
    if (threads_get() != p->n_threads && size_scratch(p)) return -1;
    return threads_pin(p->n_threads);
}

int plan_create(struct plan **out, struct graph *g, int n, int c, int f, int t, int flags)
{
    *out = NULL;
    if (!g->store.w) return status_set(STATUS_INVALID, "plan: graph is not finished");
    if (n < 1) return status_set(STATUS_INVALID, "plan: batch of %d", n);
    int nn = g->n_nodes, status = STATUS_NOMEM;
    struct node_info *info = mem_calloc((size_t)nn, sizeof *info);
    struct interval *iv = mem_calloc((size_t)nn * 2, sizeof *iv);
    struct interval **tmp = mem_calloc((size_t)nn * 2, sizeof *tmp);
    struct plan *p = mem_calloc(1, sizeof *p);
    if (!info || !iv || !tmp || !p) goto fail;
    if ((status = graph_describe(g, c, f, t, info))) goto fail;
    status = STATUS_NOMEM;
    p->g = g, p->n = n, p->c = c, p->f = f, p->t = t, p->flags = flags;
    p->pn = mem_calloc((size_t)nn, sizeof *p->pn);
    p->has_grad = mem_calloc((size_t)nn, 1);
    if (!p->pn || !p->has_grad) goto fail;

    int backward = flags & PLAN_BACKWARD, keep = flags & (PLAN_BACKWARD | PLAN_KEEP);
    long last = 2L * nn - 1, max_w = 1, max_c = 1;
    for (int i = 0; i < nn; i++) {
        struct pnode *q = &p->pn[i];
        q->c = info[i].c, q->f = info[i].f, q->t = info[i].t;
        q->size = (long)q->c * q->f * q->t;
        q->max_consumer = i;
        q->fused_bn = q->fused_into = -1;
        if (q->c > max_c) max_c = q->c;
        for (int k = 0; k < 2; k++) {
            int a = g->nodes[i].in[k];
            if (a >= 0 && i > p->pn[a].max_consumer) p->pn[a].max_consumer = i;
        }
        for (int k = 0; k < 4; k++)
            if (g->nodes[i].tensor[k] >= 0 && g->tensors[g->nodes[i].tensor[k]].numel > max_w)
                max_w = g->tensors[g->nodes[i].tensor[k]].numel;
    }
    /* Count consumers to find convs whose only consumer is a channel BN. */
    for (int i = 0; i < nn; i++) {
        const struct node *bn = &g->nodes[i];
        if (bn->op != OP_BATCHNORM || bn->axis != 1) continue;
        int a = bn->in[0], uses = 0;
        if (g->nodes[a].op != OP_CONV2D) continue;
        for (int j = 0; j < nn; j++) uses += (g->nodes[j].in[0] == a) + (g->nodes[j].in[1] == a);
        if (uses == 1 && a != g->output) {
            p->pn[a].fused_bn = i;
            p->pn[i].fused_into = a;
        }
    }
    int n_iv = 0;
    for (int i = 0; i < nn; i++) {
        struct pnode *q = &p->pn[i];
        const struct node *nd = &g->nodes[i];
        struct interval *o = &iv[n_iv++];
        o->bytes = arena_floats_size((size_t)n * q->size);
        o->dst = &q->out;
        o->start = q->fused_into >= 0 ? q->fused_into : i;
        if (i == g->output || keep) o->end = backward ? last - i : last;
        else o->end = q->max_consumer;
        if (i == g->output) o->end = last;
        if (backward) {
            struct interval *d = &iv[n_iv++];
            d->bytes = o->bytes;
            d->dst = &q->dout;
            d->start = last - q->max_consumer;
            d->end = last - i;
        }
        if (nd->op == OP_CONV2D) {
            const struct node *a = &g->nodes[nd->in[0]];
            struct conv2d_shape *s = &q->conv;
            s->n = n, s->ci = a->c, s->fi = info[nd->in[0]].f, s->ti = info[nd->in[0]].t;
            s->co = nd->c, s->kf = nd->k[0], s->kt = nd->k[1];
            s->sf = nd->stride[0], s->st = nd->stride[1], s->pf = nd->pad[0], s->pt = nd->pad[1];
            s->df = nd->dil[0], s->dt = nd->dil[1], s->groups = nd->groups;
            if ((status = conv2d_shape_init(s))) goto fail;
            status = STATUS_NOMEM;
        } else if (nd->op == OP_MAXPOOL || nd->op == OP_AVGPOOL) {
            struct pool2d_shape *s = &q->pool;
            s->n = n, s->c = nd->c, s->fi = info[nd->in[0]].f, s->ti = info[nd->in[0]].t;
            s->kf = nd->k[0], s->kt = nd->k[1], s->sf = nd->stride[0], s->st = nd->stride[1];
            if ((status = pool2d_shape_init(s))) goto fail;
            status = STATUS_NOMEM;
        }
    }
    size_t act = place_intervals(iv, n_iv, tmp);
    size_t extra = 0;
    for (int i = 0; i < nn; i++) {
        const struct node *nd = &g->nodes[i];
        if (nd->op == OP_BATCHNORM) extra += 2 * arena_floats_size((size_t)nd->n_features);
        if (p->pn[i].fused_into >= 0) extra += arena_floats_size(4 * (size_t)nd->n_features);
        if (nd->op == OP_DROPOUT) extra += arena_floats_size((size_t)n * p->pn[i].size / 4 + 1);
    }
    extra += arena_floats_size((size_t)g->store.n_params) + arena_floats_size((size_t)max_w);
    extra += 2 * arena_floats_size((size_t)max_c);
    /* Everything this plan will allocate, checked against what the machine has left before
     * any of it is taken: a plan too big fails with a message, not the OOM killer. */
    size_t scratch = scratch_floats(p, threads_get()) * sizeof(float);
    size_t train = backward ? graph_training_bytes(g) : 0;
    size_t avail = mem_available_bytes();
    double need = (double)act + (double)extra + (double)scratch + (double)train;
    if (need > (double)avail) {
        char b[6][32];
        status = status_set(STATUS_NOMEM,
                            "a plan for %d x %d x %d x %d needs about %s (activations%s %s, "
                            "weights and statistics %s, conv scratch %s%s%s), this machine has %s "
                            "available",
                            n, c, f, t, mem_bytes_str(b[0], sizeof b[0], need),
                            backward ? " and gradients" : "", mem_bytes_str(b[1], sizeof b[1], (double)act),
                            mem_bytes_str(b[2], sizeof b[2], (double)extra),
                            mem_bytes_str(b[3], sizeof b[3], (double)scratch),
                            train ? ", training state " : "",
                            train ? mem_bytes_str(b[4], sizeof b[4], (double)train) : "",
                            mem_bytes_str(b[5], sizeof b[5], (double)avail));
        goto fail;
    }
    if (backward && (status = graph_alloc_training(g))) goto fail;
    status = STATUS_NOMEM;
    if (arena_init(&p->arena, act + extra)) goto fail;
    for (int i = 0; i < n_iv; i++) *iv[i].dst = (float *)(p->arena.base + iv[i].offset);
    p->arena.used = act;
    for (int i = 0; i < nn; i++) {
        const struct node *nd = &g->nodes[i];
        struct pnode *q = &p->pn[i];
        if (nd->op == OP_BATCHNORM) {
            q->save_mean = arena_floats(&p->arena, (size_t)nd->n_features);
            q->save_invstd = arena_floats(&p->arena, (size_t)nd->n_features);
        }
        if (q->fused_into >= 0) q->sums = (double *)arena_floats(&p->arena, 4 * (size_t)nd->n_features);
        if (nd->op == OP_DROPOUT)
            q->drop_mask = (uint8_t *)arena_floats(&p->arena, (size_t)n * q->size / 4 + 1);
    }
    p->w_eff = arena_floats(&p->arena, (size_t)g->store.n_params);
    p->dw_tmp = arena_floats(&p->arena, (size_t)max_w);
    p->bn_scale = arena_floats(&p->arena, (size_t)max_c);
    p->bn_shift = arena_floats(&p->arena, (size_t)max_c);
    if ((status = size_scratch(p))) goto fail;
    mem_free(info);
    mem_free(iv);
    mem_free(tmp);
    *out = p;
    return STATUS_OK;
fail:
    mem_free(info);
    mem_free(iv);
    mem_free(tmp);
    plan_destroy(p);
    return status;
}

void plan_destroy(struct plan *p)
{
    if (!p) return;
    arena_fini(&p->arena);
    mem_free(p->scratch);
    mem_free(p->pn);
    mem_free(p->has_grad);
    mem_free(p->prof);
    mem_free(p);
}

void plan_profile(struct plan *p, int on)
{
    mem_free(p->prof);
    p->prof = on ? mem_calloc(2 * (size_t)p->g->n_nodes, sizeof(double)) : NULL;
}

const double *plan_profile_seconds(const struct plan *p)
{
    return p->prof;
}

long plan_bytes(const struct plan *p)
{
    return (long)p->arena.size + (long)(p->n_scratch * sizeof(float));
}

/* ----------------------------------------------------------------------------- forward */

/* The frequency-damping factor of kernel row r of node nd (1 for linears, 1x1 kernels and
 * undamped convs). ref: mission-anchors 2.3, cp_resnet_freq_damp.py:
 * D[i] = 1 - (1 - m)|i - c|/c with c = (K - 1)/2. */
static float damping_row(const struct node *nd, int r)
{
    int k = nd->k[0];
    if (nd->op != OP_CONV2D || !(nd->damping > 0) || k < 3) return 1.0f;
    double c = (k - 1) / 2.0;
    return (float)(1.0 - (1.0 - nd->damping) * (r > c ? r - c : c - r) / c);
}

/* w * damping * mask for every weight tensor, into p->w_eff (same layout as store.w). */
static void make_effective_weights(struct plan *p)
{
    const struct graph *g = p->g;
    const struct store *s = &g->store;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct node *nd = &g->nodes[i];
        if (nd->op != OP_CONV2D && nd->op != OP_LINEAR) continue;
        const struct graph_tensor *t = &g->tensors[nd->tensor[0]];
        const float *w = s->w + t->offset, *m = s->mask + t->offset;
        float *e = p->w_eff + t->offset;
        int rows = nd->op == OP_CONV2D ? nd->k[0] : 1;
        long cols = nd->op == OP_CONV2D ? nd->k[1] : t->numel;
        long n_filters = t->numel / (rows * cols);
        for (long f = 0; f < n_filters; f++)
            for (int r = 0; r < rows; r++) {
                float d = damping_row(nd, r);
                for (long k = 0; k < cols; k++) {
                    long j = (f * rows + r) * cols + k;
                    e[j] = w[j] * m[j] * d;
                }
            }
    }
}

static const float *weight_of(const struct plan *p, int tensor, int eff)
{
    const struct graph_tensor *t = &p->g->tensors[tensor];
    return (eff ? p->w_eff : p->g->store.w) + t->offset;
}

static struct bn_shape bn_shape_of(const struct plan *p, int i, int n)
{
    const struct node *nd = &p->g->nodes[i];
    const struct pnode *a = &p->pn[nd->in[0]];
    struct bn_shape s;
    if (nd->axis == 1) s.outer = n, s.c = a->c, s.inner = (long)a->f * a->t;
    else s.outer = n * a->c, s.c = a->f, s.inner = a->t;
    return s;
}

/* Reduction view of node i's input: (outer, len, inner) over the node's axis. */
static void reduce_view(const struct plan *p, int i, int n, int *outer, int *len, long *inner)
{
    const struct node *nd = &p->g->nodes[i];
    const struct pnode *a = &p->pn[nd->in[0]];
    if (nd->axis == 2) *outer = n * a->c, *len = a->f, *inner = a->t;
    else *outer = n * a->c * a->f, *len = a->t, *inner = 1;
}

int plan_forward(struct plan *p, int n, const float *x, int train, struct rng *rng)
{
    struct graph *g = p->g;
    if (n < 1 || n > p->n)
        return status_set(STATUS_INVALID, "forward: batch of %d, plan holds %d", n, p->n);
    if (train && !rng)
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].op == OP_DROPOUT && g->nodes[i].p > 0)
                return status_set(STATUS_INVALID, "forward: training with dropout needs an rng");
    int pin = begin_pass(p);
    if (pin < 0) return STATUS_NOMEM;
    int eff = weights_need_eff(g);
    if (eff) make_effective_weights(p);
    /* Folding never writes the conv's own output, which a PLAN_KEEP plan must show. */
    int fold = !train && !(p->flags & (PLAN_BACKWARD | PLAN_KEEP));
    memcpy(p->pn[0].out, x, (size_t)n * p->pn[0].size * sizeof(float));
    for (int i = 1; i < g->n_nodes; i++) {
        const struct node *nd = &g->nodes[i];
        struct pnode *q = &p->pn[i];
        const float *a = p->pn[nd->in[0]].out;
        long len = (long)n * q->size;
        double t0 = p->prof ? wall() : 0;
        switch (nd->op) {
        case OP_CONV2D: {
            struct conv2d_shape s = q->conv;
            s.n = n;
            const float *w = weight_of(p, nd->tensor[0], eff);
            if (fold && q->fused_bn >= 0) {
                const struct node *bn = &g->nodes[q->fused_bn];
                const float *gam = graph_tensor_data(g, bn->tensor[0]);
                const float *bet = graph_tensor_data(g, bn->tensor[1]);
                const float *mu = graph_tensor_data(g, bn->tensor[2]);
                const float *var = graph_tensor_data(g, bn->tensor[3]);
                for (int c = 0; c < nd->c; c++) {
                    float inv = 1.0f / sqrtf(var[c] + bn->eps);
                    p->bn_scale[c] = gam[c] * inv;
                    p->bn_shift[c] = bet[c] - mu[c] * gam[c] * inv;
                }
                struct conv2d_fuse fz = {p->bn_scale, p->bn_shift, bn->relu, NULL, NULL};
                conv2d_forward(&s, p->pn[q->fused_bn].out, a, w, &fz, p->scratch);
            } else if (train && q->fused_bn >= 0) {
                /* The BN's batch statistics are summed while the output is hot. */
                double *sums = p->pn[q->fused_bn].sums;
                memset(sums, 0, 2 * (size_t)nd->c * sizeof *sums);
                struct conv2d_fuse fz = {NULL, NULL, 0, sums, sums + nd->c};
                conv2d_forward(&s, q->out, a, w, &fz, p->scratch);
            } else {
                conv2d_forward(&s, q->out, a, w, NULL, p->scratch);
            }
            break;
        }
        case OP_BATCHNORM: {
            if (fold && q->fused_into >= 0) break;
            struct bn_shape s = bn_shape_of(p, i, n);
            const float *gam = graph_tensor_data(g, nd->tensor[0]);
            const float *bet = graph_tensor_data(g, nd->tensor[1]);
            float *mu = graph_tensor_data(g, nd->tensor[2]);
            float *var = graph_tensor_data(g, nd->tensor[3]);
            if (train && q->fused_into >= 0)
                batchnorm_forward_train_sums(&s, q->out, a, gam, bet, mu, var, nd->momentum,
                                             nd->eps, q->save_mean, q->save_invstd, nd->relu,
                                             q->sums, q->sums + nd->n_features);
            else if (train)
                batchnorm_forward_train(&s, q->out, a, gam, bet, mu, var, nd->momentum, nd->eps,
                                        q->save_mean, q->save_invstd, nd->relu);
            else
                batchnorm_forward_eval(&s, q->out, a, gam, bet, mu, var, nd->eps, nd->relu);
            break;
        }
        case OP_RELU:
            relu_forward(len, q->out, a);
            break;
        case OP_ADD:
            add_forward(len, q->out, a, p->pn[nd->in[1]].out, nd->relu);
            break;
        case OP_ROLL:
            roll_forward(n, q->c, (long)q->f * q->t, nd->shift, q->out, a);
            break;
        case OP_MAXPOOL:
        case OP_AVGPOOL: {
            struct pool2d_shape s = q->pool;
            s.n = n;
            if (nd->op == OP_MAXPOOL) maxpool2d_forward(&s, q->out, a);
            else avgpool2d_forward(&s, q->out, a);
            break;
        }
        case OP_MEAN:
        case OP_MAX: {
            int outer, rl;
            long inner;
            reduce_view(p, i, n, &outer, &rl, &inner);
            if (nd->op == OP_MEAN) mean_forward(outer, rl, inner, q->out, a);
            else max_forward(outer, rl, inner, q->out, a);
            break;
        }
        case OP_LINEAR: {
            const float *b = nd->tensor[1] >= 0 ? graph_tensor_data(g, nd->tensor[1]) : NULL;
            linear_forward(n, p->pn[nd->in[0]].c, nd->c, q->out, a,
                           weight_of(p, nd->tensor[0], eff), b);
            break;
        }
        case OP_DROPOUT:
            if (train && nd->p > 0) dropout_forward(len, q->out, a, nd->p, q->drop_mask, rng);
            else memcpy(q->out, a, (size_t)len * sizeof(float));
            break;
        default:
            CHECK(!"unknown op");
        }
        if (p->prof) p->prof[i] += wall() - t0;
    }
    threads_pin(pin);
    p->last_n = n;
    p->last_train = train;
    p->forwarded = 1;
    return STATUS_OK;
}

const float *plan_output(const struct plan *p)
{
    return p->pn[p->g->output].out;
}

const float *plan_node_output(const struct plan *p, int node)
{
    if (node < 0 || node >= p->g->n_nodes) return NULL;
    if (node != p->g->output && (!p->forwarded || !(p->flags & (PLAN_BACKWARD | PLAN_KEEP))))
        return NULL;
    return p->pn[node].out;
}

void plan_node_shape(const struct plan *p, int node, int *c, int *f, int *t)
{
    *c = p->pn[node].c;
    *f = p->pn[node].f;
    *t = p->pn[node].t;
}

/* ----------------------------------------------------------------------------- backward */

/* Where node i's input k receives its gradient, and whether to add to it. NULL when the
 * input is the graph input and nobody asked for dx. */
static float *grad_target(struct plan *p, int i, int k, float *dx, int *acc)
{
    int a = p->g->nodes[i].in[k];
    *acc = p->has_grad[a];
    if (a == 0 && !dx) return NULL;
    p->has_grad[a] = 1;
    return a == 0 ? dx : p->pn[a].dout;
}

/* Gradient of a weight tensor: straight into store.g, or through dw_tmp when damping or
 * masks scale the effective weight (d/dw of w * D * M is D * M). */
static float *weight_grad_dst(struct plan *p, int tensor, int eff)
{
    return eff ? p->dw_tmp : p->g->store.g + p->g->tensors[tensor].offset;
}

static void finish_weight_grad(struct plan *p, int node, int eff)
{
    if (!eff) return;
    const struct graph *g = p->g;
    const struct node *nd = &g->nodes[node];
    const struct graph_tensor *t = &g->tensors[nd->tensor[0]];
    const float *m = g->store.mask + t->offset;
    float *dst = g->store.g + t->offset;
    int rows = nd->op == OP_CONV2D ? nd->k[0] : 1;
    long cols = nd->op == OP_CONV2D ? nd->k[1] : t->numel;
    long n_filters = t->numel / (rows * cols);
    for (long f = 0; f < n_filters; f++)
        for (int r = 0; r < rows; r++) {
            float d = damping_row(nd, r);
            for (long k = 0; k < cols; k++) {
                long j = (f * rows + r) * cols + k;
                dst[j] = p->dw_tmp[j] * d * m[j];
            }
        }
}

int plan_backward_from(struct plan *p, int node, const float *dnode, float *dx)
{
    struct graph *g = p->g;
    if (!(p->flags & PLAN_BACKWARD))
        return status_set(STATUS_INVALID, "backward: the plan was made without PLAN_BACKWARD");
    if (!p->forwarded)
        return status_set(STATUS_INVALID, "backward: no forward pass to go back through "
                                          "(each backward needs its own forward)");
    if (node < 1 || node >= g->n_nodes)
        return status_set(STATUS_INVALID, "backward: node %d does not exist", node);
    int pin = begin_pass(p);
    if (pin < 0) return STATUS_NOMEM;
    int n = p->last_n, train = p->last_train, eff = weights_need_eff(g);
    memset(p->has_grad, 0, (size_t)g->n_nodes);
    memset(g->store.g, 0, (size_t)g->store.n_params * sizeof(float));
    memcpy(p->pn[node].dout, dnode, (size_t)n * p->pn[node].size * sizeof(float));
    p->has_grad[node] = 1;
    for (int i = node; i >= 1; i--) {
        if (!p->has_grad[i]) continue;
        const struct node *nd = &g->nodes[i];
        struct pnode *q = &p->pn[i];
        const float *dy = q->dout, *x = p->pn[nd->in[0]].out;
        long len = (long)n * q->size;
        int acc, acc_b;
        float *da = grad_target(p, i, 0, dx, &acc);
        double t0 = p->prof ? wall() : 0;
        switch (nd->op) {
        case OP_CONV2D: {
            struct conv2d_shape s = q->conv;
            s.n = n;
            const float *w = weight_of(p, nd->tensor[0], eff);
            conv2d_backward_weight(&s, weight_grad_dst(p, nd->tensor[0], eff), dy, x, p->scratch);
            finish_weight_grad(p, i, eff);
            if (da) conv2d_backward_data(&s, da, dy, w, acc, p->scratch);
            break;
        }
        case OP_BATCHNORM: {
            struct bn_shape s = bn_shape_of(p, i, n);
            float *dgam = g->store.g + g->tensors[nd->tensor[0]].offset;
            float *dbet = g->store.g + g->tensors[nd->tensor[1]].offset;
            const float *gam = graph_tensor_data(g, nd->tensor[0]);
            float *target = da ? da : p->pn[0].dout; /* dx unwanted: a throwaway buffer */
            if (!da) acc = 0;
            if (train)
                batchnorm_backward_train(&s, target, dgam, dbet, dy, x, q->out, nd->relu, gam,
                                         q->save_mean, q->save_invstd, acc);
            else
                batchnorm_backward_eval(&s, target, dgam, dbet, dy, x, q->out, nd->relu, gam,
                                        graph_tensor_data(g, nd->tensor[2]),
                                        graph_tensor_data(g, nd->tensor[3]), nd->eps, acc);
            break;
        }
        case OP_RELU:
            if (da) relu_backward(len, da, dy, q->out, acc);
            break;
        case OP_ADD: {
            /* add(a, a): db is da, which then accumulates the second share (add_backward
             * reads dy into a block buffer before writing either). */
            float *db = grad_target(p, i, 1, dx, &acc_b);
            add_backward(len, da, db, dy, q->out, nd->relu, acc, acc_b);
            break;
        }
        case OP_ROLL:
            if (da) roll_backward(n, q->c, (long)q->f * q->t, nd->shift, da, dy, acc);
            break;
        case OP_MAXPOOL:
        case OP_AVGPOOL: {
            struct pool2d_shape s = q->pool;
            s.n = n;
            if (!da) break;
            if (nd->op == OP_MAXPOOL) maxpool2d_backward(&s, da, dy, x, q->out, acc);
            else avgpool2d_backward(&s, da, dy, acc);
            break;
        }
        case OP_MEAN:
        case OP_MAX: {
            int outer, rl;
            long inner;
            reduce_view(p, i, n, &outer, &rl, &inner);
            if (!da) break;
            if (nd->op == OP_MEAN) mean_backward(outer, rl, inner, da, dy, acc);
            else max_backward(outer, rl, inner, da, dy, x, q->out, acc);
            break;
        }
        case OP_LINEAR: {
            float *db = nd->tensor[1] >= 0 ? g->store.g + g->tensors[nd->tensor[1]].offset : NULL;
            linear_backward(n, p->pn[nd->in[0]].c, nd->c, da,
                            weight_grad_dst(p, nd->tensor[0], eff), db, dy, x,
                            weight_of(p, nd->tensor[0], eff), acc);
            finish_weight_grad(p, i, eff);
            break;
        }
        case OP_DROPOUT:
            if (!da) break;
            if (train && nd->p > 0) dropout_backward(len, da, dy, nd->p, q->drop_mask, acc);
            else if (acc)
                for (long j = 0; j < len; j++) da[j] += dy[j];
            else
                memcpy(da, dy, (size_t)len * sizeof(float));
            break;
        default:
            CHECK(!"unknown op");
        }
        if (p->prof) p->prof[g->n_nodes + i] += wall() - t0;
    }
    if (dx && !p->has_grad[0]) memset(dx, 0, (size_t)n * p->pn[0].size * sizeof(float));
    threads_pin(pin);
    /* Gradients took the memory of activations that the pass had finished with: only the
     * output node's values survive, and another backward needs another forward. */
    p->forwarded = 0;
    return STATUS_OK;
}

int plan_backward(struct plan *p, const float *dout, float *dx)
{
    return plan_backward_from(p, p->g->output, dout, dx);
}
