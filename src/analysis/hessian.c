/* hessian.c: the loss's curvature (see hessian.h): Hessian-vector products, exact (an
 * R-op pass through the graph) or as central differences of gradients, PyHessian's power
 * iteration with deflation and Hutchinson's trace estimator on them, overall and per
 * parameter tensor.
 *
 * Key idea: the loss over the clips is a sum of independent eval-mode terms, so a gradient
 * or a product is a sum over batches, accumulated in double. The exact product is
 * Pearlmutter's R-operator: with v a direction in weight space, the forward pass carries
 * each activation a and its directional derivative Ra = d a(w + t v)/dt at t = 0; the
 * backward pass carries each adjoint d = dL/da and its derivative Rd; the product is the
 * derivative of the weight gradient, H v = R{dL/dw}. It costs about as much as three
 * gradient passes and runs on the core's kernels (ops.h), op by op, without a plan.
 * ReLUs, max pools and the loss's max are differentiated where they are (their masks and
 * switches fixed), as autograd's double backward does.
 * ref: Pearlmutter 1994 ("Fast exact multiplication by the Hessian"); Yao et al. 2020
 * (PyHessian: hessian.py eigenvalues, trace); Hutchinson 1990; mission-anchors 1.9, 6, 7.
 */
#include "basin/analysis/hessian.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "basin/core/graph.h"
#include "basin/core/loss.h"
#include "basin/core/mem.h"
#include "basin/core/ops.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/data/features.h"
#include "basin/dsp/frontend.h"
#include "basin/model/model.h"
#include "basin/train/pipeline.h"

/* Probes the trace takes before its standard error may stop it. */
#define HESSIAN_MIN_PROBES 10

/* The exact products' buffers: per node its activation a, tangent Ra, adjoint d and its
 * derivative Rd for a batch of b clips; the weights and the direction as the kernels use
 * them (conv and linear weights times damping and mask). */
struct rop {
    int b;
    int threads;                /* every pass runs with this count (the scratch's) */
    struct node_info *info;     /* (n_nodes) shapes per clip */
    float **a, **ra, **d, **rd; /* (n_nodes) each (b, c, f, t); a[0] points into the clips */
    float *arena;
    float *tmp;                 /* (b, the largest node) */
    float *wmul;                /* (n_params) damping * mask of conv and linear weights, else 1 */
    float *weff, *veff;         /* (n_params) w * wmul, v * wmul */
    float *tw, *tw2;            /* (the largest tensor) parameter-gradient parts */
    float *zeros;               /* (the most channels or mel bins a BN has) */
    float *scratch;             /* conv kernels' */
    double *acc_g, *acc_hv;     /* (n_params) sums over batches */
};

struct hessian {
    struct graph *g;
    int exact;              /* 1: R-op products; 0: finite differences */
    int n, c, f, t;         /* clips and their shape (N, C, F, T) */
    int classes;            /* M */
    int batch;
    long in_sz;             /* C F T */
    const float *x;         /* (N, C, F, T), borrowed */
    const int *labels;      /* (N), borrowed */
    long n_params;
    float *w0;              /* (n_params) the weights, restored after every FD product */
    double rms;             /* sqrt(mean w0^2) */
    double step;            /* relative FD step */
    /* finite differences: a plan, gradients at w + e v and w - e v */
    struct plan *plan;
    float *dlogits;         /* (batch, M) */
    double *gp, *gm;        /* (n_params) */
    /* exact */
    struct rop rop;
    /* progress over a run: batches done before the running pass, and planned */
    long prog_done, prog_total;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static long n_batches(const struct hessian *h)
{
    return (h->n + h->batch - 1) / h->batch;
}

/* Batches of a product: two gradient passes (FD) or one R-op pass. */
static long product_batches(const struct hessian *h)
{
    return h->exact ? n_batches(h) : 2 * n_batches(h);
}

long hessian_n_params(const struct hessian *h)
{
    return h->n_params;
}

/* Report batch b (0-based) of a pass of nb_all batches; 0 when cancelled. */
static int report(struct hessian *h, const struct progress *p, long b, long nb_all)
{
    long done = h->prog_total ? h->prog_done + b + 1 : b + 1, total = h->prog_total ? h->prog_total : nb_all;
    if (done > total) total = done;
    return progress_report(p, "hessian", done, total);
}

/* ----------------------------------------------------------------------------- exact products */

static void rop_fini(struct rop *r)
{
    mem_free(r->info);
    mem_free(r->a);
    mem_free(r->ra);
    mem_free(r->d);
    mem_free(r->rd);
    mem_free(r->arena);
    mem_free(r->tmp);
    mem_free(r->wmul);
    mem_free(r->weff);
    mem_free(r->veff);
    mem_free(r->tw);
    mem_free(r->tw2);
    mem_free(r->zeros);
    mem_free(r->scratch);
    mem_free(r->acc_g);
    mem_free(r->acc_hv);
}

static long node_size(const struct node_info *i)
{
    return (long)i->c * i->f * i->t;
}

/* Conv shape of node i for a batch of n. */
static struct conv2d_shape conv_shape(const struct graph *g, const struct node_info *info, int i, int n)
{
    const struct node *nd = &g->nodes[i];
    const struct node_info *a = &info[nd->in[0]];
    struct conv2d_shape s = {.n = n, .ci = a->c, .fi = a->f, .ti = a->t, .co = nd->c, .kf = nd->k[0], .kt = nd->k[1],
                             .sf = nd->stride[0], .st = nd->stride[1], .pf = nd->pad[0], .pt = nd->pad[1],
                             .df = nd->dil[0], .dt = nd->dil[1], .groups = nd->groups};
    CHECK(conv2d_shape_init(&s) == 0);
    return s;
}

static struct pool2d_shape pool_shape(const struct graph *g, const struct node_info *info, int i, int n)
{
    const struct node *nd = &g->nodes[i];
    const struct node_info *a = &info[nd->in[0]];
    struct pool2d_shape s = {.n = n, .c = a->c, .fi = a->f, .ti = a->t, .kf = nd->k[0], .kt = nd->k[1],
                             .sf = nd->stride[0], .st = nd->stride[1]};
    CHECK(pool2d_shape_init(&s) == 0);
    return s;
}

/* A BN's view of its input (N, C, F, T): per channel, or per mel bin (bn0). */
static struct bn_shape bn_shape_of(const struct node *nd, const struct node_info *a, int n)
{
    if (nd->axis == 2) return (struct bn_shape){.outer = n * a->c, .c = a->f, .inner = a->t};
    return (struct bn_shape){.outer = n, .c = a->c, .inner = (long)a->f * a->t};
}

/* A reduction's view (outer, len, inner) of its input. */
static void reduce_view(const struct node *nd, const struct node_info *a, int n, int *outer, int *len, long *inner)
{
    if (nd->axis == 2) *outer = n * a->c, *len = a->f, *inner = a->t;
    else *outer = n * a->c * a->f, *len = a->t, *inner = 1;
}

/* The damping factor of kernel row r (ref: mission-anchors 2.3; the plan's damping_row). */
static float damping_row(const struct node *nd, int r)
{
    int k = nd->k[0];
    if (nd->op != OP_CONV2D || !(nd->damping > 0) || k < 3) return 1.0f;
    double c = (k - 1) / 2.0;
    return (float)(1.0 - (1.0 - nd->damping) * (r > c ? r - c : c - r) / c);
}

static int rop_init(struct hessian *h, int batch, int n_threads)
{
    struct rop *r = &h->rop;
    const struct graph *g = h->g;
    const int nn = g->n_nodes;
    r->info = mem_alloc(sizeof *r->info * (size_t)nn);
    if (!r->info) return status_set(STATUS_NOMEM, "hessian: out of memory");
    int s = graph_describe(g, h->c, h->f, h->t, r->info);
    if (s) return s;
    long per = 0, biggest = 0, tmax = 1, cmax = 1;
    for (int i = 1; i < nn; i++) {
        long z = node_size(&r->info[i]);
        per += 4 * z;
        if (z > biggest) biggest = z;
        const struct node *nd = &g->nodes[i];
        if (nd->op == OP_BATCHNORM && nd->axis == 2 && nd->n_features > cmax) cmax = nd->n_features;
        if (r->info[i].c > cmax) cmax = r->info[i].c;
    }
    for (int i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].numel > tmax) tmax = g->tensors[i].numel;
    /* the batch: what fits in a quarter of the memory available, at most `batch` */
    double avail = (double)mem_available_bytes() / 4;
    long fit = (long)(avail / ((double)(per + biggest) * sizeof(float)));
    if (fit < 1) {
        char need[32], have[32];
        return status_set(STATUS_NOMEM, "hessian: one clip's activations and their derivatives need %s, %s available",
                          mem_bytes_str(need, sizeof need, (double)(per + biggest) * sizeof(float)),
                          mem_bytes_str(have, sizeof have, (double)mem_available_bytes()));
    }
    r->b = batch < fit ? batch : (int)fit;
    h->batch = r->b;
    r->threads = n_threads > 0 ? n_threads : threads_get();
    size_t scratch = 0;
    for (int i = 1; i < nn; i++)
        if (g->nodes[i].op == OP_CONV2D) {
            struct conv2d_shape cs = conv_shape(g, r->info, i, r->b);
            size_t z = conv2d_scratch_floats(&cs, r->threads);
            if (z > scratch) scratch = z;
        }
    r->a = mem_calloc((size_t)nn, sizeof *r->a);
    r->ra = mem_calloc((size_t)nn, sizeof *r->ra);
    r->d = mem_calloc((size_t)nn, sizeof *r->d);
    r->rd = mem_calloc((size_t)nn, sizeof *r->rd);
    r->arena = mem_alloc(sizeof *r->arena * (size_t)(per + 2 * h->in_sz) * (size_t)r->b);
    r->tmp = mem_alloc(sizeof *r->tmp * (size_t)(biggest > h->in_sz ? biggest : h->in_sz) * (size_t)r->b);
    r->wmul = mem_alloc(sizeof *r->wmul * (size_t)h->n_params);
    r->weff = mem_alloc(sizeof *r->weff * (size_t)h->n_params);
    r->veff = mem_calloc((size_t)h->n_params, sizeof *r->veff);
    r->tw = mem_alloc(sizeof *r->tw * (size_t)tmax);
    r->tw2 = mem_alloc(sizeof *r->tw2 * (size_t)tmax);
    r->zeros = mem_calloc((size_t)cmax, sizeof *r->zeros);
    r->scratch = mem_alloc(sizeof *r->scratch * (scratch ? scratch : 1));
    r->acc_g = mem_alloc(sizeof *r->acc_g * (size_t)h->n_params);
    r->acc_hv = mem_alloc(sizeof *r->acc_hv * (size_t)h->n_params);
    if (!r->a || !r->ra || !r->d || !r->rd || !r->arena || !r->tmp || !r->wmul || !r->weff || !r->veff || !r->tw ||
        !r->tw2 || !r->zeros || !r->scratch || !r->acc_g || !r->acc_hv)
        return status_set(STATUS_NOMEM, "hessian: out of memory");
    float *q = r->arena;
    /* the input's tangent and adjoints exist but stay zero (clips do not depend on w) */
    r->ra[0] = q, q += h->in_sz * r->b;
    memset(r->ra[0], 0, sizeof(float) * (size_t)(h->in_sz * r->b));
    r->d[0] = r->rd[0] = q, q += h->in_sz * r->b;
    for (int i = 1; i < nn; i++) {
        long z = node_size(&r->info[i]) * r->b;
        r->a[i] = q, q += z;
        r->ra[i] = q, q += z;
        r->d[i] = q, q += z;
        r->rd[i] = q, q += z;
    }
    /* damping * mask of every conv and linear weight, as the plans apply them */
    for (long k = 0; k < h->n_params; k++) r->wmul[k] = 1.0f;
    for (int i = 0; i < nn; i++) {
        const struct node *nd = &g->nodes[i];
        if (nd->op != OP_CONV2D && nd->op != OP_LINEAR) continue;
        const struct graph_tensor *t = &g->tensors[nd->tensor[0]];
        const int rows = nd->op == OP_CONV2D ? nd->k[0] : 1;
        const long cols = nd->op == OP_CONV2D ? nd->k[1] : t->numel;
        const long filters = t->numel / (rows * cols);
        for (long fl = 0; fl < filters; fl++)
            for (int rw = 0; rw < rows; rw++) {
                float dm = damping_row(nd, rw);
                for (long k = 0; k < cols; k++) {
                    long j = t->offset + (fl * rows + rw) * cols + k;
                    r->wmul[j] = g->store.mask[j] * dm;
                }
            }
    }
    return STATUS_OK;
}

/* y[i] = x[i] where m[i] > 0, else 0 (the relu's mask from its output m); y may be x. */
static void mask_by(long n, float *y, const float *x, const float *m)
{
    for (long i = 0; i < n; i++) y[i] = m[i] > 0 ? x[i] : 0.0f;
}

static void add_to(long n, float *y, const float *x)
{
    for (long i = 0; i < n; i++) y[i] += x[i];
}

/* y = x at each pooling window's first maximum of a (the forward's choice). */
static void maxpool_gather(const struct pool2d_shape *s, float *y, const float *x, const float *a)
{
    const long planes = (long)s->n * s->c, hw_in = (long)s->fi * s->ti, hw_out = (long)s->fo * s->to;
    for (long p = 0; p < planes; p++)
        for (int oh = 0; oh < s->fo; oh++)
            for (int ow = 0; ow < s->to; ow++) {
                const float *ap = a + p * hw_in;
                long best = (long)oh * s->sf * s->ti + (long)ow * s->st;
                float m = ap[best];
                for (int i = 0; i < s->kf; i++)
                    for (int j = 0; j < s->kt; j++) {
                        long k = ((long)oh * s->sf + i) * s->ti + (long)ow * s->st + j;
                        if (ap[k] > m) m = ap[k], best = k;
                    }
                y[p * hw_out + (long)oh * s->to + ow] = x[p * hw_in + best];
            }
}

/* y = x at the first maximum of a along the middle axis of (outer, len, inner). */
static void max_gather(int outer, int len, long inner, float *y, const float *x, const float *a)
{
    for (int o = 0; o < outer; o++)
        for (long i = 0; i < inner; i++) {
            const float *ao = a + (long)o * len * inner;
            int best = 0;
            float m = ao[i];
            for (int l = 1; l < len; l++)
                if (ao[(long)l * inner + i] > m) m = ao[(long)l * inner + i], best = l;
            y[(long)o * inner + i] = x[((long)o * len + best) * inner + i];
        }
}

/* dst[k] += (a[k] (+ b[k])) * wmul[k] over a tensor. */
static void acc_param(double *dst, const float *a, const float *b, const float *wmul, long n)
{
    for (long k = 0; k < n; k++) dst[k] += (double)(b ? a[k] + b[k] : a[k]) * wmul[k];
}

/* One batch of nb clips from clip i0: forward (and its tangent along veff when hv), the
 * loss, then the backward (and its derivative): the gradient into acc_g (grad) and the
 * product into acc_hv (hv), each as the batch's share of the mean over all clips. */
static void rop_batch(struct hessian *h, int i0, int nb, int grad, int hv, double *loss, long *correct)
{
    struct rop *r = &h->rop;
    const struct graph *g = h->g;
    const struct node_info *info = r->info;
    const float *W = r->weff, *V = r->veff;
    const int M = h->classes, out = g->output;
    float **a = r->a, **ra = r->ra, **d = r->d, **rd = r->rd;
    a[0] = (float *)(h->x + (long)i0 * h->in_sz);
    /* forward and tangent */
    for (int i = 1; i < g->n_nodes; i++) {
        const struct node *nd = &g->nodes[i];
        const int in = nd->in[0];
        const struct node_info *ai = &info[in];
        const long len = (long)nb * node_size(&info[i]), len_in = (long)nb * node_size(ai);
        float *y = a[i], *ry = ra[i], *tmp = r->tmp;
        const float *x = a[in], *rx = ra[in];
        switch (nd->op) {
        case OP_CONV2D: {
            struct conv2d_shape cs = conv_shape(g, info, i, nb);
            const long off = g->tensors[nd->tensor[0]].offset;
            conv2d_forward(&cs, y, x, W + off, NULL, r->scratch);
            if (hv) {
                conv2d_forward(&cs, ry, rx, W + off, NULL, r->scratch);
                conv2d_forward(&cs, tmp, x, V + off, NULL, r->scratch);
                add_to(len, ry, tmp);
            }
            break;
        }
        case OP_BATCHNORM: {
            struct bn_shape bs = bn_shape_of(nd, ai, nb);
            const float *gam = g->store.w + g->tensors[nd->tensor[0]].offset;
            const float *bet = g->store.w + g->tensors[nd->tensor[1]].offset;
            const float *mu = graph_tensor_data(g, nd->tensor[2]), *var = graph_tensor_data(g, nd->tensor[3]);
            batchnorm_forward_eval(&bs, y, x, gam, bet, mu, var, nd->eps, nd->relu);
            if (hv) {
                /* R{gamma (x - mu) / s + beta} = gamma Rx / s + Vbeta + Vgamma (x - mu) / s */
                const float *vg = V + g->tensors[nd->tensor[0]].offset, *vb = V + g->tensors[nd->tensor[1]].offset;
                batchnorm_forward_eval(&bs, ry, rx, gam, vb, r->zeros, var, nd->eps, 0);
                batchnorm_forward_eval(&bs, tmp, x, vg, r->zeros, mu, var, nd->eps, 0);
                add_to(len, ry, tmp);
                if (nd->relu) mask_by(len, ry, ry, y);
            }
            break;
        }
        case OP_RELU:
            relu_forward(len, y, x);
            if (hv) mask_by(len, ry, rx, y);
            break;
        case OP_ADD:
            add_forward(len, y, x, a[nd->in[1]], nd->relu);
            if (hv) {
                add_forward(len, ry, rx, ra[nd->in[1]], 0);
                if (nd->relu) mask_by(len, ry, ry, y);
            }
            break;
        case OP_ROLL:
            roll_forward(nb, ai->c, (long)ai->f * ai->t, nd->shift, y, x);
            if (hv) roll_forward(nb, ai->c, (long)ai->f * ai->t, nd->shift, ry, rx);
            break;
        case OP_MAXPOOL: {
            struct pool2d_shape ps = pool_shape(g, info, i, nb);
            maxpool2d_forward(&ps, y, x);
            if (hv) maxpool_gather(&ps, ry, rx, x);
            break;
        }
        case OP_AVGPOOL: {
            struct pool2d_shape ps = pool_shape(g, info, i, nb);
            avgpool2d_forward(&ps, y, x);
            if (hv) avgpool2d_forward(&ps, ry, rx);
            break;
        }
        case OP_MEAN:
        case OP_MAX: {
            int outer, rl;
            long inner;
            reduce_view(nd, ai, nb, &outer, &rl, &inner);
            if (nd->op == OP_MEAN) {
                mean_forward(outer, rl, inner, y, x);
                if (hv) mean_forward(outer, rl, inner, ry, rx);
            } else {
                max_forward(outer, rl, inner, y, x);
                if (hv) max_gather(outer, rl, inner, ry, rx, x);
            }
            break;
        }
        case OP_LINEAR: {
            const int ci = ai->c, co = nd->c;
            const long off = g->tensors[nd->tensor[0]].offset, boff = nd->tensor[1] >= 0 ? g->tensors[nd->tensor[1]].offset : -1;
            linear_forward(nb, ci, co, y, x, W + off, boff >= 0 ? g->store.w + boff : NULL);
            if (hv) {
                linear_forward(nb, ci, co, ry, rx, W + off, NULL);
                linear_forward(nb, ci, co, tmp, x, V + off, boff >= 0 ? V + boff : NULL);
                add_to(len, ry, tmp);
            }
            break;
        }
        case OP_DROPOUT: /* eval mode: the identity */
            memcpy(y, x, sizeof *y * (size_t)len_in);
            if (hv) memcpy(ry, rx, sizeof *ry * (size_t)len_in);
            break;
        default:
            CHECK(0);
        }
    }
    /* the loss: mean cross-entropy; the batch's share of the mean over all N clips */
    const float *z = a[out], *rz = ra[out];
    float *dz = d[out], *rdz = rd[out];
    *loss += loss_cross_entropy(nb, M, z, h->labels + i0, NULL, dz) * nb;
    *correct += loss_correct(nb, M, z, h->labels + i0);
    const float share = (float)nb / (float)h->n;
    for (long k = 0; k < (long)nb * M; k++) dz[k] *= share;
    if (hv) {
        /* R{dL/dz} = (diag(p) - p p^T) Rz / N per clip */
        softmax(nb, M, z, r->tmp);
        for (int i = 0; i < nb; i++) {
            const float *p = r->tmp + (long)i * M, *q = rz + (long)i * M;
            double pq = 0;
            for (int k = 0; k < M; k++) pq += (double)p[k] * q[k];
            for (int k = 0; k < M; k++) rdz[(long)i * M + k] = (float)(p[k] * (q[k] - pq) / h->n);
        }
    }
    /* backward and its derivative; every adjoint accumulates, from zero */
    for (int i = 1; i < out; i++) {
        long z_ = (long)nb * node_size(&info[i]);
        memset(d[i], 0, sizeof(float) * (size_t)z_);
        if (hv) memset(rd[i], 0, sizeof(float) * (size_t)z_);
    }
    for (int i = out; i >= 1; i--) {
        const struct node *nd = &g->nodes[i];
        const int in = nd->in[0], to_in = in > 0; /* no adjoint for the clips themselves */
        const struct node_info *ai = &info[in];
        const long len = (long)nb * node_size(&info[i]);
        const float *y = a[i], *x = a[in], *rx = ra[in], *dy = d[i], *rdy = rd[i];
        float *dx = d[in], *rdx = rd[in];
        switch (nd->op) {
        case OP_CONV2D: {
            struct conv2d_shape cs = conv_shape(g, info, i, nb);
            const struct graph_tensor *t = &g->tensors[nd->tensor[0]];
            const float *w = W + t->offset, *v = V + t->offset, *wm = r->wmul + t->offset;
            if (to_in) {
                conv2d_backward_data(&cs, dx, dy, w, 1, r->scratch);
                if (hv) {
                    conv2d_backward_data(&cs, rdx, rdy, w, 1, r->scratch);
                    conv2d_backward_data(&cs, rdx, dy, v, 1, r->scratch);
                }
            }
            if (grad) {
                conv2d_backward_weight(&cs, r->tw, dy, x, r->scratch);
                acc_param(r->acc_g + t->offset, r->tw, NULL, wm, t->numel);
            }
            if (hv) {
                conv2d_backward_weight(&cs, r->tw, rdy, x, r->scratch);
                conv2d_backward_weight(&cs, r->tw2, dy, rx, r->scratch);
                acc_param(r->acc_hv + t->offset, r->tw, r->tw2, wm, t->numel);
            }
            break;
        }
        case OP_BATCHNORM: {
            struct bn_shape bs = bn_shape_of(nd, ai, nb);
            const struct graph_tensor *tg = &g->tensors[nd->tensor[0]], *tb = &g->tensors[nd->tensor[1]];
            const float *gam = g->store.w + tg->offset;
            const float *mu = graph_tensor_data(g, nd->tensor[2]), *var = graph_tensor_data(g, nd->tensor[3]);
            float *dg = r->tw, *db = r->tw2;
            batchnorm_backward_eval(&bs, to_in ? dx : NULL, grad ? dg : NULL, grad ? db : NULL, dy, x, y, nd->relu, gam,
                                    mu, var, nd->eps, 1);
            if (grad) {
                acc_param(r->acc_g + tg->offset, dg, NULL, r->wmul + tg->offset, tg->numel);
                acc_param(r->acc_g + tb->offset, db, NULL, r->wmul + tb->offset, tb->numel);
            }
            if (hv) {
                /* R{dx} = m (gamma Rdy + Vgamma dy) / s; R{dgamma} = sum m (Rdy xhat + dy Rx / s);
                 * R{dbeta} = sum m Rdy */
                const float *vg = V + tg->offset;
                batchnorm_backward_eval(&bs, to_in ? rdx : NULL, dg, db, rdy, x, y, nd->relu, gam, mu, var, nd->eps, 1);
                acc_param(r->acc_hv + tb->offset, db, NULL, r->wmul + tb->offset, tb->numel);
                acc_param(r->acc_hv + tg->offset, dg, NULL, r->wmul + tg->offset, tg->numel);
                /* with Rx for x and a zero mean, the kernel's dgamma is sum m dy Rx / s (gamma
                 * only scales dx: by Vgamma here) */
                batchnorm_backward_eval(&bs, to_in ? rdx : NULL, dg, NULL, dy, rx, y, nd->relu, vg, r->zeros, var,
                                        nd->eps, 1);
                acc_param(r->acc_hv + tg->offset, dg, NULL, r->wmul + tg->offset, tg->numel);
            }
            break;
        }
        case OP_RELU:
            if (to_in) {
                relu_backward(len, dx, dy, y, 1);
                if (hv) relu_backward(len, rdx, rdy, y, 1);
            }
            break;
        case OP_ADD: {
            const int in2 = nd->in[1];
            add_backward(len, to_in ? dx : NULL, in2 > 0 ? d[in2] : NULL, dy, y, nd->relu, 1, 1);
            if (hv) add_backward(len, to_in ? rdx : NULL, in2 > 0 ? rd[in2] : NULL, rdy, y, nd->relu, 1, 1);
            break;
        }
        case OP_ROLL:
            if (to_in) {
                roll_backward(nb, ai->c, (long)ai->f * ai->t, nd->shift, dx, dy, 1);
                if (hv) roll_backward(nb, ai->c, (long)ai->f * ai->t, nd->shift, rdx, rdy, 1);
            }
            break;
        case OP_MAXPOOL:
        case OP_AVGPOOL: {
            if (!to_in) break;
            struct pool2d_shape ps = pool_shape(g, info, i, nb);
            if (nd->op == OP_MAXPOOL) {
                maxpool2d_backward(&ps, dx, dy, x, y, 1);
                if (hv) maxpool2d_backward(&ps, rdx, rdy, x, y, 1);
            } else {
                avgpool2d_backward(&ps, dx, dy, 1);
                if (hv) avgpool2d_backward(&ps, rdx, rdy, 1);
            }
            break;
        }
        case OP_MEAN:
        case OP_MAX: {
            if (!to_in) break;
            int outer, rl;
            long inner;
            reduce_view(nd, ai, nb, &outer, &rl, &inner);
            if (nd->op == OP_MEAN) {
                mean_backward(outer, rl, inner, dx, dy, 1);
                if (hv) mean_backward(outer, rl, inner, rdx, rdy, 1);
            } else {
                max_backward(outer, rl, inner, dx, dy, x, y, 1);
                if (hv) max_backward(outer, rl, inner, rdx, rdy, x, y, 1);
            }
            break;
        }
        case OP_LINEAR: {
            const int ci = ai->c, co = nd->c;
            const struct graph_tensor *t = &g->tensors[nd->tensor[0]];
            const struct graph_tensor *tb = nd->tensor[1] >= 0 ? &g->tensors[nd->tensor[1]] : NULL;
            const float *w = W + t->offset, *v = V + t->offset;
            float *dw = r->tw, *dbias = r->tw2;
            linear_backward(nb, ci, co, to_in ? dx : NULL, grad ? dw : NULL, grad && tb ? dbias : NULL, dy, x, w, 1);
            if (grad) {
                acc_param(r->acc_g + t->offset, dw, NULL, r->wmul + t->offset, t->numel);
                if (tb) acc_param(r->acc_g + tb->offset, dbias, NULL, r->wmul + tb->offset, tb->numel);
            }
            if (hv) {
                /* R{dx} = Rdy w + dy v; R{dw} = Rdy^T x + dy^T Rx; R{db} = sum Rdy */
                linear_backward(nb, ci, co, to_in ? rdx : NULL, dw, tb ? dbias : NULL, rdy, x, w, 1);
                acc_param(r->acc_hv + t->offset, dw, NULL, r->wmul + t->offset, t->numel);
                if (tb) acc_param(r->acc_hv + tb->offset, dbias, NULL, r->wmul + tb->offset, tb->numel);
                linear_backward(nb, ci, co, to_in ? rdx : NULL, dw, NULL, dy, rx, v, 1);
                acc_param(r->acc_hv + t->offset, dw, NULL, r->wmul + t->offset, t->numel);
            }
            break;
        }
        case OP_DROPOUT:
            if (to_in) {
                add_to(len, dx, dy);
                if (hv) add_to(len, rdx, rdy);
            }
            break;
        default:
            CHECK(0);
        }
    }
}

/* A pass over every clip: loss, accuracy, and the gradient (grad) and product (hv) summed
 * into rop.acc_g / acc_hv. */
static int rop_pass(struct hessian *h, int grad, int hv, double *loss, double *acc, const struct progress *p)
{
    struct rop *r = &h->rop;
    if (grad) memset(r->acc_g, 0, sizeof *r->acc_g * (size_t)h->n_params);
    if (hv) memset(r->acc_hv, 0, sizeof *r->acc_hv * (size_t)h->n_params);
    for (long k = 0; k < h->n_params; k++) r->weff[k] = h->g->store.w[k] * r->wmul[k];
    double total = 0;
    long correct = 0;
    const long nb_all = n_batches(h);
    for (int i0 = 0, b = 0; i0 < h->n; i0 += h->batch, b++) {
        const int nb = h->n - i0 < h->batch ? h->n - i0 : h->batch;
        const int pin = threads_pin(r->threads);
        rop_batch(h, i0, nb, grad, hv, &total, &correct);
        threads_pin(pin);
        if (!report(h, p, b, nb_all)) return status_set(STATUS_CANCELLED, "hessian: cancelled");
    }
    if (h->prog_total) h->prog_done += nb_all;
    if (loss) *loss = total / h->n;
    if (acc) *acc = (double)correct / h->n;
    return STATUS_OK;
}

/* ----------------------------------------------------------------------------- set-up */

void hessian_destroy(struct hessian *h)
{
    if (!h) return;
    plan_destroy(h->plan);
    rop_fini(&h->rop);
    mem_free(h->w0);
    mem_free(h->dlogits);
    mem_free(h->gp);
    mem_free(h->gm);
    mem_free(h);
}

int hessian_create(struct hessian **out, struct graph *g, int n, int c, int f, int t, const float *x,
                   const int *labels, const struct hessian_opts *o)
{
    *out = NULL;
    const struct hessian_opts none = {0};
    if (!o) o = &none;
    if (n < 1 || !x || !labels) return status_set(STATUS_INVALID, "hessian: no clips");
    if (!g->store.w) return status_set(STATUS_INVALID, "hessian: the graph is not finished");
    const int classes = g->nodes[g->output].c;
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= classes)
            return status_set(STATUS_INVALID, "hessian: clip %d has label %d, the model has %d classes", i, labels[i],
                              classes);
    struct hessian *h = mem_calloc(1, sizeof *h);
    if (!h) return status_set(STATUS_NOMEM, "hessian: out of memory");
    h->g = g, h->n = n, h->c = c, h->f = f, h->t = t, h->classes = classes;
    h->exact = !o->fd;
    h->x = x, h->labels = labels;
    h->in_sz = (long)c * f * t;
    h->batch = o->batch > 0 ? o->batch : 32;
    if (h->batch > n) h->batch = n;
    h->step = o->step > 0 ? o->step : HESSIAN_DEFAULT_STEP;
    h->n_params = g->store.n_params;
    int s;
    if (h->exact) {
        if ((s = rop_init(h, h->batch, o->n_threads))) goto fail;
    } else {
        const struct plan_opts po = {.flags = PLAN_BACKWARD, .n_threads = o->n_threads};
        if ((s = plan_create_opts(&h->plan, g, h->batch, c, f, t, &po))) goto fail;
        h->dlogits = mem_alloc(sizeof *h->dlogits * (size_t)h->batch * classes);
        h->gp = mem_alloc(sizeof *h->gp * (size_t)h->n_params);
        h->gm = mem_alloc(sizeof *h->gm * (size_t)h->n_params);
        if (!h->dlogits || !h->gp || !h->gm) {
            s = status_set(STATUS_NOMEM, "hessian: out of memory");
            goto fail;
        }
    }
    h->w0 = mem_alloc(sizeof *h->w0 * (size_t)h->n_params);
    if (!h->w0) {
        s = status_set(STATUS_NOMEM, "hessian: out of memory");
        goto fail;
    }
    memcpy(h->w0, g->store.w, sizeof *h->w0 * (size_t)h->n_params);
    double ss = 0;
    for (long i = 0; i < h->n_params; i++) ss += (double)h->w0[i] * h->w0[i];
    h->rms = h->n_params ? sqrt(ss / h->n_params) : 0;
    *out = h;
    return STATUS_OK;
fail:
    hessian_destroy(h);
    return s;
}

/* ----------------------------------------------------------------------------- finite differences */

/* One pass over the clips through the plan at the graph's current weights: the mean loss
 * and accuracy, and the gradient's entries [off, off + len) summed in double into grad
 * (NULL: no backward). */
static int fd_pass(struct hessian *h, long off, long len, double *grad, double *loss, double *acc,
                   const struct progress *p)
{
    const int M = h->classes;
    double total = 0;
    long correct = 0;
    if (grad) memset(grad, 0, sizeof *grad * (size_t)len);
    const float *gs = h->g->store.g + off;
    const long nb_all = n_batches(h);
    int s = STATUS_OK;
    for (int i0 = 0, b = 0; i0 < h->n; i0 += h->batch, b++) {
        const int nb = h->n - i0 < h->batch ? h->n - i0 : h->batch;
        if ((s = plan_forward(h->plan, nb, h->x + (long)i0 * h->in_sz, 0, NULL))) return s;
        const float *logits = plan_output(h->plan);
        total += loss_cross_entropy(nb, M, logits, h->labels + i0, NULL, h->dlogits) * nb;
        correct += loss_correct(nb, M, logits, h->labels + i0);
        if (grad) {
            /* the batch's share of the mean over all clips */
            const float scale = (float)nb / (float)h->n;
            for (long k = 0; k < (long)nb * M; k++) h->dlogits[k] *= scale;
            if ((s = plan_backward(h->plan, h->dlogits, NULL))) return s;
            for (long k = 0; k < len; k++) grad[k] += gs[k];
        }
        if (!report(h, p, b, nb_all)) return status_set(STATUS_CANCELLED, "hessian: cancelled");
    }
    if (h->prog_total) h->prog_done += nb_all;
    if (loss) *loss = total / h->n;
    if (acc) *acc = (double)correct / h->n;
    return s;
}

int hessian_loss_grad(struct hessian *h, double *loss, double *acc, double *grad, const struct progress *p)
{
    if (!h->exact) return fd_pass(h, 0, h->n_params, grad, loss, acc, p);
    int s = rop_pass(h, grad != NULL, 0, loss, acc, p);
    if (!s && grad)
        for (long k = 0; k < h->n_params; k++) grad[k] = h->rop.acc_g[k];
    return s;
}

/* The block [off, off + len) of a tensor (-1: every parameter). */
static void block_of(const struct hessian *h, int tensor, long *off, long *len)
{
    if (tensor < 0) {
        *off = 0, *len = h->n_params;
        return;
    }
    CHECK(tensor < h->g->n_tensors && tensor_kind_is_param(h->g->tensors[tensor].kind));
    *off = h->g->tensors[tensor].offset, *len = h->g->tensors[tensor].numel;
}

static int fd_hvp(struct hessian *h, long off, long len, double *v, double *hv, const struct progress *p)
{
    double nv = 0;
    for (long k = 0; k < len; k++) nv += v[k] * v[k];
    nv = sqrt(nv);
    if (!(nv > 0)) {
        memset(hv, 0, sizeof *hv * (size_t)len);
        return STATUS_OK;
    }
    /* every weight moves by about step * rms(w), whatever the block's size */
    const double e = h->step * (h->rms > 0 ? h->rms : 1.0) * sqrt((double)len) / nv;
    float *w = h->g->store.w + off;
    const float *w0 = h->w0 + off;
    for (long k = 0; k < len; k++) w[k] = (float)(w0[k] + e * v[k]);
    int s = fd_pass(h, off, len, h->gp, NULL, NULL, p);
    if (!s) {
        for (long k = 0; k < len; k++) w[k] = (float)(w0[k] - e * v[k]);
        s = fd_pass(h, off, len, h->gm, NULL, NULL, p);
    }
    memcpy(w, w0, sizeof *w * (size_t)len);
    if (s) return s;
    const double inv = 1.0 / (2 * e);
    for (long k = 0; k < len; k++) {
        /* the vector the float weights realise, exactly (the same roundings as above) */
        const double wp = (float)(w0[k] + e * v[k]), wm = (float)(w0[k] - e * v[k]);
        v[k] = (wp - wm) * inv;
        hv[k] = (h->gp[k] - h->gm[k]) * inv;
    }
    return STATUS_OK;
}

int hessian_hvp(struct hessian *h, int tensor, double *v, double *hv, const struct progress *p)
{
    long off, len;
    block_of(h, tensor, &off, &len);
    if (!h->exact) return fd_hvp(h, off, len, v, hv, p);
    /* the direction as the kernels use it: v in float (what is multiplied), times damping
     * and mask; zero outside the block */
    struct rop *r = &h->rop;
    memset(r->veff, 0, sizeof *r->veff * (size_t)h->n_params);
    for (long k = 0; k < len; k++) {
        float vf = (float)v[k];
        v[k] = vf;
        r->veff[off + k] = vf * r->wmul[off + k];
    }
    int s = rop_pass(h, 0, 1, NULL, NULL, p);
    if (s) return s;
    memcpy(hv, r->acc_hv + off, sizeof *hv * (size_t)len);
    return STATUS_OK;
}

/* ----------------------------------------------------------------------------- algorithms */

static double dot(const double *a, const double *b, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* v minus its projections on the k rows of q (Gram-Schmidt, twice for stability), then
 * normalised. Returns the norm before normalising. */
static double orthonormalise(double *v, const double *q, int k, long n)
{
    for (int pass_ = 0; pass_ < 2; pass_++)
        for (int j = 0; j < k; j++) {
            const double *qj = q + (long)j * n;
            double c = dot(v, qj, n);
            for (long i = 0; i < n; i++) v[i] -= c * qj[i];
        }
    double nv = sqrt(dot(v, v, n));
    if (nv > 0)
        for (long i = 0; i < n; i++) v[i] /= nv;
    return nv;
}

int hessian_power(hessian_op_fn op, void *user, long n, int k, int iters, double tol, uint64_t seed, double *eig,
                  double *vecs, int *iters_used, int *converged, hessian_step_fn step, void *step_user)
{
    if (n < 1 || k < 1 || iters < 1) return status_set(STATUS_INVALID, "hessian: power iteration of size %ld, %d, %d", n, k, iters);
    if (k > n) return status_set(STATUS_INVALID, "hessian: %d eigenvalues of a %ld x %ld matrix", k, n, n);
    double *q = vecs ? vecs : mem_alloc(sizeof *q * (size_t)k * (size_t)n);
    double *v = mem_alloc(sizeof *v * (size_t)n), *y = mem_alloc(sizeof *y * (size_t)n);
    int s = STATUS_OK;
    if (!q || !v || !y) {
        s = status_set(STATUS_NOMEM, "hessian: out of memory");
        goto done;
    }
    struct rng base;
    rng_seed(&base, seed);
    for (int e = 0; e < k && !s; e++) {
        /* ref: PyHessian hessian.eigenvalues: a random start, orthonormalised against the
         * eigenvectors found, Rayleigh quotient, next vector H v / |H v| */
        struct rng r = rng_split(&base, (uint64_t)e);
        for (long i = 0; i < n; i++) v[i] = rng_normal(&r);
        double val = 0, prev = 0;
        int it, conv = 0;
        for (it = 1; it <= iters; it++) {
            if (!(orthonormalise(v, q, e, n) > 0)) {
                /* the start lay in the span found: draw another */
                for (long i = 0; i < n; i++) v[i] = rng_normal(&r);
                if (!(orthonormalise(v, q, e, n) > 0)) break;
            }
            if ((s = op(user, v, y))) break;
            const double vv = dot(v, v, n);
            val = vv > 0 ? dot(v, y, n) / vv : 0;
            const double ny = sqrt(dot(y, y, n));
            if (ny > 0)
                for (long i = 0; i < n; i++) v[i] = y[i] / ny;
            if (it > 1 && fabs(val - prev) / (fabs(prev) + 1e-6) < tol) conv = 1;
            if (!(ny > 0)) conv = 1; /* A v = 0: v is an eigenvector of eigenvalue 0 */
            prev = val;
            if (step && !step(step_user, e, it, val, NAN)) {
                s = status_set(STATUS_CANCELLED, "hessian: cancelled");
                break;
            }
            if (conv) break;
        }
        if (s) break;
        eig[e] = val;
        if (iters_used) iters_used[e] = it > iters ? iters : it;
        if (converged) converged[e] = conv;
        orthonormalise(v, q, e, n);
        memcpy(q + (long)e * n, v, sizeof *v * (size_t)n);
    }
done:
    if (q != vecs) mem_free(q);
    mem_free(v);
    mem_free(y);
    return s;
}

int hessian_hutchinson(hessian_op_fn op, void *user, long n, int probes, double rel_se, uint64_t seed, int n_blocks,
                       const long *start, const long *len, double *trace, double *se, double *block_trace,
                       double *block_se, int *used, hessian_step_fn step, void *step_user)
{
    if (n < 1 || probes < 1) return status_set(STATUS_INVALID, "hessian: trace of size %ld with %d probes", n, probes);
    double *z = mem_alloc(sizeof *z * (size_t)n), *y = mem_alloc(sizeof *y * (size_t)n);
    /* Welford: running mean and sum of squared deviations, the whole trace first */
    double *mean = mem_calloc((size_t)n_blocks + 1, sizeof *mean), *m2 = mem_calloc((size_t)n_blocks + 1, sizeof *m2);
    int s = STATUS_OK, m = 0;
    if (!z || !y || !mean || !m2) {
        s = status_set(STATUS_NOMEM, "hessian: out of memory");
        goto done;
    }
    struct rng base;
    rng_seed(&base, seed ^ 0x7261646578ULL); /* not the power iteration's stream */
    for (int i = 1; i <= probes; i++) {
        struct rng r = rng_split(&base, (uint64_t)i);
        for (long j = 0; j < n; j += 64) {
            uint64_t bits = rng_u64(&r);
            for (long b = 0; b < 64 && j + b < n; b++) z[j + b] = (bits >> b) & 1 ? 1.0 : -1.0;
        }
        if ((s = op(user, z, y))) break;
        m = i;
        for (int b = 0; b <= n_blocks; b++) {
            double x = b == 0 ? dot(z, y, n) : dot(z + start[b - 1], y + start[b - 1], len[b - 1]);
            double d = x - mean[b];
            mean[b] += d / m;
            m2[b] += d * (x - mean[b]);
        }
        const double sd = m > 1 ? sqrt(m2[0] / (m - 1) / m) : NAN;
        if (step && !step(step_user, -1, m, mean[0], sd)) {
            s = status_set(STATUS_CANCELLED, "hessian: cancelled");
            break;
        }
        if (rel_se >= 0 && m >= HESSIAN_MIN_PROBES && sd <= rel_se * fabs(mean[0])) break;
    }
    if (m > 0) {
        *trace = mean[0];
        *se = m > 1 ? sqrt(m2[0] / (m - 1) / m) : NAN;
        for (int b = 0; b < n_blocks; b++) {
            block_trace[b] = mean[b + 1];
            block_se[b] = m > 1 ? sqrt(m2[b + 1] / (m - 1) / m) : NAN;
        }
    }
    if (used) *used = m;
done:
    mem_free(z);
    mem_free(y);
    mem_free(mean);
    mem_free(m2);
    return s;
}

/* ----------------------------------------------------------------------------- runs */

void hessian_result_destroy(struct hessian_result *r)
{
    if (!r) return;
    mem_free(r->eig);
    mem_free(r->eig_iters);
    mem_free(r->eig_converged);
    mem_free(r->layers);
    mem_free(r);
}

struct hessian_result *hessian_result_copy(const struct hessian_result *r)
{
    struct hessian_result *c = mem_alloc(sizeof *c);
    if (!c) return NULL;
    *c = *r;
    const size_t k = (size_t)(r->top > 0 ? r->top : 1), nl = (size_t)(r->n_layers > 0 ? r->n_layers : 1);
    c->eig = mem_alloc(sizeof *c->eig * k);
    c->eig_iters = mem_alloc(sizeof *c->eig_iters * k);
    c->eig_converged = mem_alloc(sizeof *c->eig_converged * k);
    c->layers = mem_alloc(sizeof *c->layers * nl);
    if (!c->eig || !c->eig_iters || !c->eig_converged || !c->layers) {
        hessian_result_destroy(c);
        return NULL;
    }
    memcpy(c->eig, r->eig, sizeof *c->eig * (size_t)r->top);
    memcpy(c->eig_iters, r->eig_iters, sizeof *c->eig_iters * (size_t)r->top);
    memcpy(c->eig_converged, r->eig_converged, sizeof *c->eig_converged * (size_t)r->top);
    memcpy(c->layers, r->layers, sizeof *c->layers * (size_t)r->n_layers);
    return c;
}

/* What the operators and step callbacks of a run share. */
struct run {
    struct hessian *h;
    struct hessian_result *r;
    const struct hessian_opts *o;
    const struct progress *p;
    int tensor;             /* the block of the running operator (-1: all) */
    int layer;              /* its row in r->layers (by_layer), else -1 */
    double t0;
};

static int run_op(void *user, double *v, double *y)
{
    struct run *u = user;
    double t0 = now_s();
    int s = hessian_hvp(u->h, u->tensor, v, y, u->p);
    if (s) return s;
    struct hessian_result *r = u->r;
    r->hvp_seconds = (r->hvp_seconds * r->n_hvp + (now_s() - t0)) / (r->n_hvp + 1);
    r->n_hvp++;
    return STATUS_OK;
}

static int run_step(void *user, int k, int it, double value, double se)
{
    struct run *u = user;
    struct hessian_result *r = u->r;
    r->current = value;
    r->seconds = now_s() - u->t0;
    if (u->layer >= 0) {
        snprintf(r->phase, sizeof r->phase, "layer %d of %d (%.60s), iteration %d", u->layer + 1, r->n_layers,
                 r->layers[u->layer].name, it);
    } else if (k < 0) {
        r->n_probes = it;
        r->trace = value, r->trace_se = se;
        snprintf(r->phase, sizeof r->phase, "trace, probe %d", it);
    } else {
        snprintf(r->phase, sizeof r->phase, "eigenvalue %d of %d, iteration %d", k + 1, r->top, it);
    }
    if (u->o->partial) u->o->partial(u->o->user, r);
    return 1;
}

int hessian_run(struct hessian_result **out, struct hessian *h, const struct hessian_opts *o, const struct progress *p)
{
    *out = NULL;
    const struct hessian_opts none = {0};
    if (!o) o = &none;
    const int top = o->top > 0 ? o->top : 1, iters = o->iters > 0 ? o->iters : HESSIAN_DEFAULT_ITERS;
    const int probes = o->probes > 0 ? o->probes : HESSIAN_DEFAULT_PROBES;
    const double tol = o->tol > 0 ? o->tol : HESSIAN_DEFAULT_TOL;
    const double trace_tol = o->trace_tol != 0 ? o->trace_tol : HESSIAN_DEFAULT_TRACE_TOL;
    if (top > h->n_params) return status_set(STATUS_INVALID, "hessian: top=%d, but the model has %ld parameters", top, h->n_params);
    const struct graph *g = h->g;
    const double t0 = now_s();
    struct hessian_result *r = mem_calloc(1, sizeof *r);
    long *start = NULL, *len = NULL;
    double *btrace = NULL, *bse = NULL;
    if (!r) return status_set(STATUS_NOMEM, "hessian: out of memory");
    int nl = 0;
    for (int i = 0; i < g->n_tensors; i++) nl += tensor_kind_is_param(g->tensors[i].kind);
    r->top = top;
    r->eig = mem_calloc((size_t)top, sizeof *r->eig);
    r->eig_iters = mem_calloc((size_t)top, sizeof *r->eig_iters);
    r->eig_converged = mem_calloc((size_t)top, sizeof *r->eig_converged);
    r->layers = mem_calloc((size_t)(nl > 0 ? nl : 1), sizeof *r->layers);
    start = mem_alloc(sizeof *start * (size_t)(nl > 0 ? nl : 1));
    len = mem_alloc(sizeof *len * (size_t)(nl > 0 ? nl : 1));
    btrace = mem_alloc(sizeof *btrace * (size_t)(nl > 0 ? nl : 1));
    bse = mem_alloc(sizeof *bse * (size_t)(nl > 0 ? nl : 1));
    int s = STATUS_OK;
    if (!r->eig || !r->eig_iters || !r->eig_converged || !r->layers || !start || !len || !btrace || !bse) {
        s = status_set(STATUS_NOMEM, "hessian: out of memory");
        goto done;
    }
    r->n_clips = r->n_split = h->n;
    r->n_params = h->n_params;
    r->trace_on = !o->no_trace;
    r->trace = r->trace_se = NAN;
    r->by_layer = o->by_layer;
    r->fd = !h->exact;
    r->step = h->step;
    r->current = NAN;
    for (int i = 0, l = 0; i < g->n_tensors; i++) {
        const struct graph_tensor *gt = &g->tensors[i];
        if (!tensor_kind_is_param(gt->kind)) continue;
        struct hessian_layer *L = &r->layers[l];
        snprintf(L->name, sizeof L->name, "%s", gt->name);
        L->tensor = i, L->offset = gt->offset, L->numel = gt->numel;
        L->eig = L->trace = L->trace_se = NAN;
        start[l] = gt->offset, len[l] = gt->numel;
        l++;
    }
    r->n_layers = nl;
    struct run u = {.h = h, .r = r, .o = o, .p = p, .tensor = -1, .layer = -1, .t0 = t0};
    /* planned batches: the gradient, then at most every product of every phase */
    const long per = product_batches(h);
    long planned = (long)top * iters + (r->trace_on ? probes : 0) + (o->by_layer ? (long)nl * iters : 0);
    h->prog_done = 0;
    h->prog_total = n_batches(h) + per * planned;

    snprintf(r->phase, sizeof r->phase, "loss and gradient");
    double *grad = mem_alloc(sizeof *grad * (size_t)h->n_params);
    if (!grad) {
        s = status_set(STATUS_NOMEM, "hessian: out of memory");
        goto done;
    }
    s = hessian_loss_grad(h, &r->loss, &r->acc, grad, p);
    if (!s) r->grad_norm = sqrt(dot(grad, grad, h->n_params));
    mem_free(grad);
    if (s) goto done;
    if (o->partial) o->partial(o->user, r);

    /* top eigenvalues; what they did not use comes off the plan */
    s = hessian_power(run_op, &u, h->n_params, top, iters, tol, o->seed, r->eig, NULL, r->eig_iters, r->eig_converged,
                      run_step, &u);
    if (s) goto done;
    r->n_eig = top;
    long used = 0;
    for (int k = 0; k < top; k++) used += r->eig_iters[k];
    h->prog_total -= per * ((long)top * iters - used);

    if (r->trace_on) {
        s = hessian_hutchinson(run_op, &u, h->n_params, probes, trace_tol, o->seed, nl, start, len, &r->trace,
                               &r->trace_se, btrace, bse, &r->n_probes, run_step, &u);
        if (s) goto done;
        for (int l = 0; l < nl; l++) r->layers[l].trace = btrace[l], r->layers[l].trace_se = bse[l];
        h->prog_total -= per * (probes - r->n_probes);
    }

    for (int l = 0; o->by_layer && l < nl; l++) {
        struct hessian_layer *L = &r->layers[l];
        u.tensor = L->tensor, u.layer = l;
        double e;
        int it = 0, conv = 0;
        s = hessian_power(run_op, &u, L->numel, 1, iters, tol, o->seed + 1 + (uint64_t)l, &e, NULL, &it, &conv,
                          run_step, &u);
        if (s) goto done;
        L->eig = e, L->eig_iters = it, L->eig_converged = conv;
        r->layers_done = l + 1;
        h->prog_total -= per * (iters - it);
    }
    snprintf(r->phase, sizeof r->phase, "done");
done:
    if (r) {
        r->seconds = now_s() - t0;
        if (s && s != STATUS_CANCELLED) {
            hessian_result_destroy(r);
            r = NULL;
        } else if (s) {
            snprintf(r->phase, sizeof r->phase, "cancelled");
        }
    }
    h->prog_total = h->prog_done = 0;
    mem_free(start);
    mem_free(len);
    mem_free(btrace);
    mem_free(bse);
    *out = r;
    return s;
}

int hessian_model(struct hessian_result **out, struct model *m, const struct dataset *ds,
                  const struct frontend_params *frontend, const struct hessian_opts *o, const struct progress *p)
{
    *out = NULL;
    const struct hessian_opts none = {0};
    if (!o) o = &none;
    struct frontend_params fp;
    int s, n_split = 0;
    if (frontend) fp = *frontend;
    else if ((s = pipeline_model_frontend(m, &fp))) return s;
    struct features *f = NULL;
    struct hessian *h = NULL;
    if ((s = pipeline_features(&f, m, ds, &fp, o->split, o->n, &n_split, p))) return s;
    s = hessian_create(&h, m->g, f->n, f->n_channels, f->n_mels, f->n_frames, f->x, f->labels, o);
    if (!s) s = hessian_run(out, h, o, p);
    if (*out) {
        (*out)->n_split = n_split;
        (*out)->subset = o->n > 0 && o->n < n_split;
    }
    hessian_destroy(h);
    features_destroy(f);
    return s;
}
