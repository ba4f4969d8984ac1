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
 *
 * Fusion (none in PLAN_KEEP plans; the graph, its tensors and the double-precision
 * interpreter that checks it do not change, only the nodes a fusion computes without
 * storing them give NULL from plan_node_output):
 * - a pair of depthwise stride-1 convs of one input whose sum feeds a channel BN (SP4ASC's
 *   separable blocks) runs as one kernel (dwpair.c), with the 2x2 average pool after the
 *   BN and a 1x1 conv of one input channel before the pair folded in when they are there;
 *   the convs' outputs, their sum and (pooled) the BN's output are never stored, and in a
 *   training plan the pair's input gradient is written over its input;
 * - a residual add runs with the 2x2 max pool after it (one pass, an argmax byte per
 *   window for the backward) and, in training plans, with the BN (no relu) feeding it
 *   applied as the add reads it (GROUP_ADD);
 * - in training plans a BN whose only consumer is a conv running direct kernels is applied
 *   as that conv packs its input (conv2d_prologue), and a BN's backward statistics are
 *   summed by the backward-data pass of the conv that writes its gradient last
 *   (conv2d_bnstat), so its backward reads its tensors once. (Inference plans fold each
 *   BN into the conv before it instead.)
 *
 * Kernels and threads are fixed when a plan is made (struct plan_opts): each conv's kernel
 * per pass is measured (conv2d_tune) or forced, and the thread count is the plan's own.
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
    uint8_t *arg;               /* max pool fused with its add: each window's argmax (NULL
                                 * without a backward) */
    struct conv2d_shape conv;   /* conv2d, with n = planned batch */
    struct pool2d_shape pool;
    int max_consumer;           /* largest consumer index, or the node itself */
    int fused_bn;               /* conv: the BN node folded into it in eval forward, or -1 */
    int fused_into;             /* bn: the conv that does its work in eval forward, or -1 */
    int group;                  /* the fused group (struct fgroup) computing it, or -1 */
    int pro_into;               /* bn: the conv that applies it as it reads (conv2d_prologue) */
    int pro_from;               /* conv: that bn, or -1 */
    int gstat_by;               /* bn: the conv whose backward-data pass sums its backward
                                   statistics (conv2d_bnstat), or -1 */
    int gstat_for;              /* conv: that bn, or -1 */
    double *gsums;              /* bn with gstat_by: sum_g, sum_gx (2 C) */
    float *pro_mean, *pro_scale, *pro_shift; /* bn applied by a conv: its affine (C) */
    struct conv2d_algo algo;    /* conv: its kernels per pass */
};

/* Nodes run as one kernel at node `last`; the others are skipped:
 * GROUP_DWPAIR  depthwise pair + add + BN [+ 2x2 average pool] [with a 1x1 of one channel
 *               before] (dwpair_forward / dwpair_backward);
 * GROUP_ADD     a residual add (relu) [+ the BN (no relu) feeding one of its inputs, applied
 *               as the add reads it: its statistics are made, its output never stored; its
 *               backward runs at its own node as usual] [+ a 2x2 max pool after it]
 *               (add_bn_forward / addpool_forward; add_backward / addpool_backward). */
enum group_kind { GROUP_DWPAIR, GROUP_ADD };
struct fgroup {
    enum group_kind kind;
    int pw;                     /* folded 1x1 conv, or -1 */
    int a, b, add, bn, pool;    /* pool: -1 when the BN's output is the group's output;
                                   add + pool: a, b, bn, pw are -1 */
    int in;                     /* the node the group reads (pw's input, else a's) */
    int last;                   /* pool, or bn */
    int in_place;               /* training: in's gradient is written over in's output */
    int bn_input;               /* add: which input of the add the BN feeds */
    float *bn_mean, *bn_scale, *bn_shift; /* add with a BN: its affine (C) */
    struct dwpair_shape shape;  /* n = the planned batch */
};

struct plan {
    struct graph *g;
    int n, c, f, t, flags;
    struct pnode *pn;
    struct fgroup *groups;
    int n_groups;
    struct arena arena;
    int n_threads;
    int follow_threads;         /* plan_create: re-plan when threads_get() changes */
    const float *start_grad;    /* plan_backward_from a pooled group's BN: the caller's dnode */
    float *gw_tmp;              /* a group's three weight gradients, when weights are scaled */
    float *scratch;             /* conv scratch for n_threads threads (outside the arena) */
    size_t n_scratch;
    float *w_eff;               /* n_params: w * damping * mask, when any is in use */
    float *dw_tmp;              /* largest weight tensor */
    float *bn_scale, *bn_shift; /* eval-mode BN folding, largest channel count */
    unsigned char *has_grad;
    unsigned char *gready;      /* per backward: the bn's gsums were summed this pass */
    int last_n, last_train, forwarded;
    double *prof;               /* 2 * n_nodes seconds when profiling, else NULL */
    float *xq;                  /* simulated int8: a conv's or linear's quantised input (graph.h);
                                   allocated at the first such pass, NULL before */
    int aq_blocked;             /* fuses a conv whose input act_quant would quantise */
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

/* Floats of kernel scratch for nt threads: the largest any conv or fused group asks. */
static size_t scratch_floats(const struct plan *p, int nt)
{
    size_t need = 1;
    for (int i = 0; i < p->g->n_nodes; i++)
        if (p->g->nodes[i].op == OP_CONV2D && p->pn[i].group < 0) {
            size_t s = conv2d_scratch_floats(&p->pn[i].conv, nt);
            if (s > need) need = s;
        }
    for (int k = 0; k < p->n_groups; k++) {
        if (p->groups[k].kind != GROUP_DWPAIR) continue;
        size_t s = dwpair_scratch_floats(&p->groups[k].shape, nt);
        if (s > need) need = s;
    }
    return need;
}

static int size_scratch(struct plan *p, int nt)
{
    size_t need = scratch_floats(p, nt);
    float *scratch = mem_alloc(need * sizeof(float));
    if (!scratch) return STATUS_NOMEM; /* the old scratch stays, for the old count */
    /* Touched now, so the first pass does not pay the page faults. Kernels write before
     * they read, so only the pages count, not the zeros. */
    memset(scratch, 0, need * sizeof(float));
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
    if (p->follow_threads && threads_get() != p->n_threads && size_scratch(p, threads_get()))
        return -1;
    return threads_pin(p->n_threads);
}

/* ----------------------------------------------------------------------------- fusion */

static int uses_of(const struct graph *g, int a)
{
    int uses = 0;
    for (int j = 0; j < g->n_nodes; j++) uses += (g->nodes[j].in[0] == a) + (g->nodes[j].in[1] == a);
    return uses;
}

/* The one consumer of node a, or -1 when it has none or several. */
static int sole_consumer(const struct graph *g, int a)
{
    int who = -1;
    for (int j = 0; j < g->n_nodes; j++)
        for (int k = 0; k < 2; k++)
            if (g->nodes[j].in[k] == a) {
                if (who >= 0) return -1;
                who = j;
            }
    return who;
}

static int is_depthwise_s1(const struct graph *g, const struct pnode *pn, int i)
{
    const struct node *nd = &g->nodes[i];
    const struct conv2d_shape *s = &pn[i].conv;
    return nd->op == OP_CONV2D && s->groups == s->ci && s->groups == s->co && s->sf == 1 &&
           s->st == 1 && s->fo == s->fi && s->to == s->ti;
}

/* Find the depthwise pairs to fuse (see the top of this file); fills p->groups. */
static int find_groups(struct plan *p)
{
    const struct graph *g = p->g;
    int nn = g->n_nodes, n = 0;
    struct fgroup *gs = mem_calloc((size_t)nn, sizeof *gs);
    if (!gs) return STATUS_NOMEM;
    for (int i = 0; i < nn; i++) {
        const struct node *add = &g->nodes[i];
        if (add->op != OP_ADD || add->relu || add->in[0] == add->in[1] || i == g->output) continue;
        int a = add->in[0], b = add->in[1];
        if (!is_depthwise_s1(g, p->pn, a) || !is_depthwise_s1(g, p->pn, b)) continue;
        int h = g->nodes[a].in[0];
        if (g->nodes[b].in[0] != h || sole_consumer(g, a) != i || sole_consumer(g, b) != i) continue;
        int bn = sole_consumer(g, i);
        if (bn < 0 || g->nodes[bn].op != OP_BATCHNORM || g->nodes[bn].axis != 1) continue;
        struct fgroup G = {.pw = -1, .a = a, .b = b, .add = i, .bn = bn, .pool = -1, .in = h};
        int pool = bn == g->output ? -1 : sole_consumer(g, bn);
        if (pool >= 0) {
            const struct node *pl = &g->nodes[pool];
            if (pl->op == OP_AVGPOOL && pl->k[0] == 2 && pl->k[1] == 2 && pl->stride[0] == 2 &&
                pl->stride[1] == 2)
                G.pool = pool;
        }
        G.last = G.pool >= 0 ? G.pool : bn;
        const struct node *hn = &g->nodes[h];
        const struct conv2d_shape *hs = &p->pn[h].conv;
        int pointwise = h > 0 && hn->op == OP_CONV2D && hs->kf == 1 && hs->kt == 1 &&
                        hs->sf == 1 && hs->st == 1 && hs->pf == 0 && hs->pt == 0 &&
                        hs->groups == 1 && h != g->output && uses_of(g, h) == 2;
        if (pointwise && hs->ci == 1) { /* fold the 1x1 in: h is never stored */
            G.pw = h;
            G.in = hn->in[0];
        } else if (pointwise && (p->flags & PLAN_BACKWARD)) {
            G.in_place = 1; /* a conv's backward does not read its own output */
        }
        const struct conv2d_shape *sa = &p->pn[a].conv, *sb = &p->pn[b].conv;
        struct dwpair_shape *d = &G.shape;
        *d = (struct dwpair_shape){.n = p->n, .c = sa->co, .f = sa->fi, .t = sa->ti,
                                   .relu = g->nodes[bn].relu, .pool = G.pool >= 0, .pw = G.pw >= 0};
        const struct conv2d_shape *ss[2] = {sa, sb};
        for (int k = 0; k < 2; k++) {
            d->kf[k] = ss[k]->kf, d->kt[k] = ss[k]->kt, d->pf[k] = ss[k]->pf;
            d->pt[k] = ss[k]->pt, d->df[k] = ss[k]->df, d->dt[k] = ss[k]->dt;
        }
        if (dwpair_shape_check(d)) {
            status_clear();
            continue;
        }
        int members[6] = {G.pw, a, b, i, bn, G.pool}, taken = 0;
        for (int k = 0; k < 6; k++) taken |= members[k] >= 0 && p->pn[members[k]].group >= 0;
        if (taken) continue;
        for (int k = 0; k < 6; k++)
            if (members[k] >= 0) p->pn[members[k]].group = n;
        /* the group reads its input when it runs, at `last` (and its backward there) */
        if (p->pn[G.in].max_consumer < G.last) p->pn[G.in].max_consumer = G.last;
        gs[n++] = G;
    }
    /* add (relu) [+ the BN feeding it] [+ 2x2 max pool] */
    for (int i = 0; i < nn; i++) {
        const struct node *add = &g->nodes[i];
        if (add->op != OP_ADD || add->in[0] == add->in[1] || i == g->output || p->pn[i].group >= 0)
            continue;
        int pool = sole_consumer(g, i);
        if (pool >= 0) {
            const struct node *pl = &g->nodes[pool];
            if (p->pn[pool].group >= 0 || pl->op != OP_MAXPOOL || pl->k[0] != 2 || pl->k[1] != 2 ||
                pl->stride[0] != 2 || pl->stride[1] != 2)
                pool = -1;
        }
        /* A BN fused into the add saves its output pass in training plans; an inference plan
         * folds it into the conv before it instead. */
        int bn = -1, bn_input = 0;
        for (int k = 0; k < 2 && bn < 0 && (p->flags & PLAN_BACKWARD); k++) {
            int b = add->in[k];
            const struct node *bnn = &g->nodes[b];
            if (b > 0 && bnn->op == OP_BATCHNORM && bnn->axis == 1 && !bnn->relu &&
                p->pn[b].group < 0 && sole_consumer(g, b) == i && b != g->output &&
                (pool < 0 || p->pn[b].t <= ADDPOOL_BN_MAX_T))
                bn = b, bn_input = k;
        }
        if (pool < 0 && bn < 0) continue;
        struct fgroup G = {.kind = GROUP_ADD, .pw = -1, .a = -1, .b = -1, .add = i, .bn = bn,
                           .pool = pool, .in = -1, .last = pool >= 0 ? pool : i, .bn_input = bn_input};
        p->pn[i].group = n;
        if (pool >= 0) p->pn[pool].group = n;
        if (bn >= 0) p->pn[bn].group = n;
        /* the group reads its inputs (the BN's input) and writes their gradients (the BN's)
         * at its last node */
        for (int k = 0; k < 2; k++) {
            int src = add->in[k] == bn ? g->nodes[bn].in[0] : add->in[k];
            if (p->pn[src].max_consumer < G.last) p->pn[src].max_consumer = G.last;
        }
        if (bn >= 0 && p->pn[bn].max_consumer < G.last) p->pn[bn].max_consumer = G.last;
        gs[n++] = G;
    }
    p->groups = gs;
    p->n_groups = n;
    return STATUS_OK;
}

int plan_create(struct plan **out, struct graph *g, int n, int c, int f, int t, int flags)
{
    struct plan_opts o = {.flags = flags};
    int status = plan_create_opts(out, g, n, c, f, t, &o);
    if (!status) (*out)->follow_threads = 1;
    return status;
}

int plan_create_opts(struct plan **out, struct graph *g, int n, int c, int f, int t,
                     const struct plan_opts *opts)
{
    *out = NULL;
    int flags = opts->flags;
    if (!g->store.w) return status_set(STATUS_INVALID, "plan: graph is not finished");
    if (n < 1) return status_set(STATUS_INVALID, "plan: batch of %d", n);
    if (opts->n_threads < 0 || (unsigned)opts->conv_kernel >= CONV2D_KERNEL_COUNT)
        return status_set(STATUS_INVALID, "plan: %d threads, conv kernel %d", opts->n_threads,
                          (int)opts->conv_kernel);
    int nn = g->n_nodes, status = STATUS_NOMEM;
    int nt = opts->n_threads ? (opts->n_threads > 256 ? 256 : opts->n_threads) : threads_get();
    struct node_info *info = mem_calloc((size_t)nn, sizeof *info);
    struct interval *iv = mem_calloc((size_t)nn * 2, sizeof *iv);
    struct interval **tmp = mem_calloc((size_t)nn * 2, sizeof *tmp);
    struct plan *p = mem_calloc(1, sizeof *p);
    if (!info || !iv || !tmp || !p) goto fail;
    if ((status = graph_describe(g, c, f, t, info))) goto fail;
    status = STATUS_NOMEM;
    p->g = g, p->n = n, p->c = c, p->f = f, p->t = t, p->flags = flags, p->n_threads = nt;
    p->pn = mem_calloc((size_t)nn, sizeof *p->pn);
    p->has_grad = mem_calloc((size_t)nn, 1);
    if (!p->pn || !p->has_grad) goto fail;

    int backward = flags & PLAN_BACKWARD, keep = flags & (PLAN_BACKWARD | PLAN_KEEP);
    long last = 2L * nn - 1, max_w = 1, max_c = 1;
    for (int i = 0; i < nn; i++) {
        struct pnode *q = &p->pn[i];
        const struct node *nd = &g->nodes[i];
        q->c = info[i].c, q->f = info[i].f, q->t = info[i].t;
        q->size = (long)q->c * q->f * q->t;
        q->max_consumer = i;
        q->fused_bn = q->fused_into = q->group = q->pro_into = q->pro_from = -1;
        q->gstat_by = q->gstat_for = -1;
        if (q->c > max_c) max_c = q->c;
        for (int k = 0; k < 2; k++) {
            int a = nd->in[k];
            if (a >= 0 && i > p->pn[a].max_consumer) p->pn[a].max_consumer = i;
        }
        for (int k = 0; k < 4; k++)
            if (nd->tensor[k] >= 0 && g->tensors[nd->tensor[k]].numel > max_w)
                max_w = g->tensors[nd->tensor[k]].numel;
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
    /* with activation scales the inputs of every conv must exist to be quantised */
    int fuse = !opts->no_fuse && !g->act_quant;
    if (fuse && !(flags & PLAN_KEEP) && (status = find_groups(p))) goto fail;
    status = STATUS_NOMEM;
    /* Count consumers to find convs whose only consumer is a channel BN. */
    for (int i = 0; i < nn; i++) {
        const struct node *bn = &g->nodes[i];
        if (bn->op != OP_BATCHNORM || bn->axis != 1) continue;
        if (p->pn[i].group >= 0 && p->groups[p->pn[i].group].kind != GROUP_ADD) continue;
        int a = bn->in[0];
        if (g->nodes[a].op != OP_CONV2D || p->pn[a].group >= 0) continue;
        if (uses_of(g, a) == 1 && a != g->output) {
            p->pn[a].fused_bn = i;
            p->pn[i].fused_into = a;
        }
    }
    /* Each conv's kernels, per pass: forced, measured, or the built-in choice. */
    for (int i = 0; i < nn; i++) {
        struct pnode *q = &p->pn[i];
        if (g->nodes[i].op != OP_CONV2D || q->group >= 0) continue;
        for (int k = 0; k < CONV2D_PASSES; k++) {
            enum conv2d_kernel want = opts->conv_kernel;
            q->algo.k[k] = want != CONV2D_KERNEL_AUTO && conv2d_kernel_runs(&q->conv, (enum conv2d_pass)k, want)
                               ? want : conv2d_kernel_default(&q->conv, (enum conv2d_pass)k);
            if (opts->no_avx512 && q->algo.k[k] == CONV2D_KERNEL_DIRECT_AVX512)
                q->algo.k[k] = CONV2D_KERNEL_DIRECT_AVX2;
        }
        if (opts->conv_kernel == CONV2D_KERNEL_AUTO && !opts->no_tune &&
            (status = conv2d_tune(&q->conv, nt, opts->no_avx512 ? CONV2D_TUNE_NO_AVX512 : 0, &q->algo)))
            goto fail;
    }
    /* A BN whose only consumer is a conv running direct kernels in its forward and weight
     * gradient is applied as that conv packs its input (struct conv2d_prologue): in a
     * training plan its output is never stored (an inference plan folds it into the conv
     * before it instead). */
    for (int i = 0; i < nn && (flags & PLAN_BACKWARD) && fuse && !(flags & PLAN_KEEP); i++) {
        const struct node *bn = &g->nodes[i];
        struct pnode *q = &p->pn[i];
        if (bn->op != OP_BATCHNORM || bn->axis != 1 || q->group >= 0 || i == g->output) continue;
        int cv = sole_consumer(g, i);
        if (cv < 0 || g->nodes[cv].op != OP_CONV2D || p->pn[cv].group >= 0) continue;
        const struct pnode *qc = &p->pn[cv];
        if (!conv2d_prologue_runs(&qc->conv, qc->algo.k[CONV2D_FORWARD]) ||
            !conv2d_prologue_runs(&qc->conv, qc->algo.k[CONV2D_BACKWARD_WEIGHT]))
            continue;
        q->pro_into = cv;
        p->pn[cv].pro_from = i;
        int src = bn->in[0]; /* the conv reads the BN's input in its forward */
        if (p->pn[src].max_consumer < cv) p->pn[src].max_consumer = cv;
    }
    /* A BN's backward statistics summed by the backward-data pass of the conv that writes
     * its output gradient last (its consumer of smallest index), when that pass runs a
     * direct kernel: the BN's backward then makes one pass instead of two. */
    for (int i = 0; i < nn && (flags & PLAN_BACKWARD) && !opts->no_fuse; i++) {
        const struct node *bn = &g->nodes[i];
        struct pnode *q = &p->pn[i];
        if (bn->op != OP_BATCHNORM || bn->axis != 1 || i == g->output) continue;
        if (q->group >= 0 && p->groups[q->group].kind == GROUP_DWPAIR) continue;
        int j = -1;
        for (int k = i + 1; k < nn && j < 0; k++)
            if (g->nodes[k].in[0] == i || g->nodes[k].in[1] == i) j = k;
        if (j < 0 || g->nodes[j].op != OP_CONV2D || p->pn[j].group >= 0 || g->nodes[j].in[0] != i ||
            !conv2d_bnstat_runs(&p->pn[j].conv, p->pn[j].algo.k[CONV2D_BACKWARD_DATA]))
            continue;
        q->gstat_by = j;
        p->pn[j].gstat_for = i;
    }
    int n_iv = 0;
    for (int i = 0; i < nn; i++) {
        struct pnode *q = &p->pn[i];
        /* nodes a fused group computes without storing them (a BN fused into an add still
         * receives its gradient: its backward runs on its own) */
        int hidden = (q->group >= 0 && p->groups[q->group].last != i) || q->pro_into >= 0;
        int bn_of_add = q->pro_into >= 0 ||
                        (hidden && p->groups[q->group].kind == GROUP_ADD && p->groups[q->group].bn == i);
        if (hidden && !bn_of_add) continue;
        if (bn_of_add) {
            if (backward) {
                struct interval *d = &iv[n_iv++];
                d->bytes = arena_floats_size((size_t)n * q->size);
                d->dst = &q->dout;
                d->start = last - q->max_consumer;
                d->end = last - i;
            }
            continue;
        }
        struct interval *o = &iv[n_iv++];
        o->bytes = arena_floats_size((size_t)n * q->size);
        o->dst = &q->out;
        o->start = q->fused_into >= 0 ? q->fused_into : i;
        if (i == g->output || keep) o->end = backward ? last - i : last;
        else o->end = q->max_consumer;
        if (i == g->output) o->end = last;
        int aliased = 0;
        for (int k = 0; k < p->n_groups; k++) aliased |= p->groups[k].in_place && p->groups[k].in == i;
        if (backward && !aliased) {
            struct interval *d = &iv[n_iv++];
            d->bytes = o->bytes;
            d->dst = &q->dout;
            d->start = last - q->max_consumer;
            d->end = last - i;
        }
    }
    size_t act = place_intervals(iv, n_iv, tmp);
    size_t extra = 0;
    for (int i = 0; i < nn; i++) {
        const struct node *nd = &g->nodes[i];
        if (nd->op == OP_BATCHNORM) extra += 2 * arena_floats_size((size_t)nd->n_features);
        if (p->pn[i].fused_into >= 0) extra += arena_floats_size(4 * (size_t)nd->n_features);
        if (nd->op == OP_DROPOUT) extra += arena_floats_size((size_t)n * p->pn[i].size / 4 + 1);
        if (nd->op == OP_MAXPOOL && p->pn[i].group >= 0 && backward) /* argmax bytes */
            extra += arena_floats_size((size_t)n * p->pn[i].size / 4 + 1);
        if (nd->op == OP_BATCHNORM && (p->pn[i].group >= 0 || p->pn[i].pro_into >= 0 ||
                                       p->pn[i].gstat_by >= 0))
            extra += 3 * arena_floats_size((size_t)nd->n_features);
        if (p->pn[i].gstat_by >= 0) extra += arena_floats_size(4 * (size_t)nd->n_features);
    }
    extra += arena_floats_size((size_t)g->store.n_params) + arena_floats_size((size_t)max_w);
    extra += 2 * arena_floats_size((size_t)max_c);
    if (p->n_groups) extra += arena_floats_size(3 * (size_t)max_w);
    /* Everything this plan will allocate, checked against what the machine has left before
     * any of it is taken: a plan too big fails with a message, not the OOM killer. */
    size_t scratch = scratch_floats(p, nt) * sizeof(float);
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
    for (int k = 0; k < p->n_groups; k++)
        if (p->groups[k].in_place) p->pn[p->groups[k].in].dout = p->pn[p->groups[k].in].out;
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
        if (q->group >= 0 && p->groups[q->group].kind == GROUP_ADD && i == p->groups[q->group].pool &&
            backward) /* the argmax bytes, which only a backward reads */
            q->arg = (uint8_t *)arena_floats(&p->arena, (size_t)n * q->size / 4 + 1);
    }
    for (int i = 0; i < nn; i++) {
        struct pnode *q = &p->pn[i];
        if (q->pro_into < 0 && q->gstat_by < 0) continue;
        size_t nf = (size_t)g->nodes[i].n_features;
        q->pro_mean = arena_floats(&p->arena, nf);
        q->pro_scale = arena_floats(&p->arena, nf);
        q->pro_shift = arena_floats(&p->arena, nf);
        if (q->gstat_by >= 0) q->gsums = (double *)arena_floats(&p->arena, 4 * nf);
    }
    p->gready = mem_calloc((size_t)nn, 1);
    if (!p->gready) goto fail;
    for (int k = 0; k < p->n_groups; k++) {
        struct fgroup *G = &p->groups[k];
        if (G->kind != GROUP_ADD || G->bn < 0) continue;
        size_t nf = (size_t)g->nodes[G->bn].n_features;
        G->bn_mean = arena_floats(&p->arena, nf);
        G->bn_scale = arena_floats(&p->arena, nf);
        G->bn_shift = arena_floats(&p->arena, nf);
    }
    p->w_eff = arena_floats(&p->arena, (size_t)g->store.n_params);
    p->dw_tmp = arena_floats(&p->arena, (size_t)max_w);
    p->bn_scale = arena_floats(&p->arena, (size_t)max_c);
    p->bn_shift = arena_floats(&p->arena, (size_t)max_c);
    if (p->n_groups) p->gw_tmp = arena_floats(&p->arena, 3 * (size_t)max_w);
    if ((status = size_scratch(p, nt))) goto fail;
    for (int i = 0; i < nn; i++)
        p->aq_blocked |= p->pn[i].pro_from >= 0 ||
                         (p->pn[i].group >= 0 && p->groups[p->pn[i].group].kind == GROUP_DWPAIR);
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

int plan_threads(const struct plan *p)
{
    return p->n_threads;
}

int plan_conv_algo(const struct plan *p, int node, struct conv2d_algo *algo)
{
    if (node < 0 || node >= p->g->n_nodes || p->g->nodes[node].op != OP_CONV2D ||
        p->pn[node].group >= 0)
        return status_set(STATUS_INVALID, "plan: node %d is not a conv the plan runs as one", node);
    *algo = p->pn[node].algo;
    return STATUS_OK;
}

int plan_node_fused(const struct plan *p, int node)
{
    if (node < 0 || node >= p->g->n_nodes || p->pn[node].group < 0) return -1;
    return p->groups[p->pn[node].group].last;
}

void plan_destroy(struct plan *p)
{
    if (!p) return;
    arena_fini(&p->arena);
    mem_free(p->scratch);
    mem_free(p->pn);
    mem_free(p->groups);
    mem_free(p->has_grad);
    mem_free(p->gready);
    mem_free(p->prof);
    mem_free(p->xq);
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

float graph_act_quant(float x, float s)
{
    float q = nearbyintf(x / s);
    q = q > 127 ? 127 : q < -127 ? -127 : q;
    return q * s;
}

/* Simulated int8 input of conv / linear node i (graph.h): a, quantised into p->xq. */
static const float *act_quantised(struct plan *p, int i, int n, const float *a)
{
    float s = p->g->nodes[i].act_scale;
    long len = (long)n * p->pn[p->g->nodes[i].in[0]].size;
    for (long j = 0; j < len; j++) p->xq[j] = graph_act_quant(a[j], s);
    return p->xq;
}

/* The buffer act_quantised needs (the largest quantised input of a full batch), made once. */
static int act_quant_begin(struct plan *p)
{
    const struct graph *g = p->g;
    if (p->aq_blocked)
        return status_set(STATUS_INVALID, "forward: this plan fuses convs whose inputs the model's "
                          "int8 activation scales quantise (made before they were set); make a new plan");
    if (p->xq) return STATUS_OK;
    long need = 1;
    for (int i = 0; i < g->n_nodes; i++)
        if ((g->nodes[i].op == OP_CONV2D || g->nodes[i].op == OP_LINEAR) && g->nodes[i].act_scale > 0 &&
            p->pn[g->nodes[i].in[0]].size * p->n > need)
            need = p->pn[g->nodes[i].in[0]].size * p->n;
    return (p->xq = mem_alloc((size_t)need * sizeof(float))) ? STATUS_OK : STATUS_NOMEM;
}

/* A fused group's forward at its last node. */
static void group_forward(struct plan *p, const struct fgroup *G, int n, int train, int eff)
{
    struct graph *g = p->g;
    if (G->kind == GROUP_ADD) {
        const struct node *add = &g->nodes[G->add];
        struct add_bn ab, *bnp = NULL;
        const float *in[2] = {p->pn[add->in[0]].out, p->pn[add->in[1]].out};
        if (G->bn >= 0) {
            const struct node *bn = &g->nodes[G->bn];
            struct pnode *qb = &p->pn[G->bn];
            const float *gam = graph_tensor_data(g, bn->tensor[0]);
            const float *bet = graph_tensor_data(g, bn->tensor[1]);
            float *mu = graph_tensor_data(g, bn->tensor[2]), *var = graph_tensor_data(g, bn->tensor[3]);
            const float *x = p->pn[bn->in[0]].out;
            if (train) {
                struct bn_shape bs = bn_shape_of(p, G->bn, n);
                const double *sums = qb->fused_into >= 0 ? qb->sums : NULL;
                batchnorm_affine_train(&bs, x, gam, bet, mu, var, bn->momentum, bn->eps, qb->save_mean,
                                       qb->save_invstd, sums, sums ? sums + bn->n_features : NULL,
                                       G->bn_mean, G->bn_scale, G->bn_shift);
            } else {
                batchnorm_affine_eval(bn->n_features, gam, bet, mu, var, bn->eps, G->bn_mean,
                                      G->bn_scale, G->bn_shift);
            }
            ab = (struct add_bn){G->bn_input, bn->n_features, (long)qb->f * qb->t, G->bn_mean,
                                 G->bn_scale, G->bn_shift};
            bnp = &ab;
            in[G->bn_input] = x;
        }
        if (G->pool >= 0) {
            struct pnode *q = &p->pn[G->pool];
            struct pool2d_shape s = q->pool;
            s.n = n;
            addpool_forward(&s, q->out, q->arg, in[0], in[1], add->relu, bnp);
        } else {
            add_bn_forward((long)n * p->pn[G->add].size, p->pn[G->add].out, in[0], in[1],
                           add->relu, bnp);
        }
        return;
    }
    const struct node *bn = &g->nodes[G->bn];
    struct pnode *q = &p->pn[G->bn];
    struct dwpair_shape s = G->shape;
    s.n = n;
    const float *pw = G->pw >= 0 ? weight_of(p, g->nodes[G->pw].tensor[0], eff) : NULL;
    dwpair_forward(&s, train, p->pn[G->last].out, p->pn[G->in].out, pw,
                   weight_of(p, g->nodes[G->a].tensor[0], eff),
                   weight_of(p, g->nodes[G->b].tensor[0], eff), graph_tensor_data(g, bn->tensor[0]),
                   graph_tensor_data(g, bn->tensor[1]), graph_tensor_data(g, bn->tensor[2]),
                   graph_tensor_data(g, bn->tensor[3]), bn->momentum, bn->eps, q->save_mean,
                   q->save_invstd, p->scratch);
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
    int aq = g->act_quant && !train, st;
    if (aq && (st = act_quant_begin(p))) return st;
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
        if (q->group >= 0) {
            const struct fgroup *G = &p->groups[q->group];
            if (i == G->last) group_forward(p, G, n, train, eff);
            if (p->prof) p->prof[i] += wall() - t0;
            continue;
        }
        switch (nd->op) {
        case OP_CONV2D: {
            struct conv2d_shape s = q->conv;
            s.n = n;
            const float *w = weight_of(p, nd->tensor[0], eff);
            enum conv2d_kernel kf = q->algo.k[CONV2D_FORWARD];
            struct conv2d_prologue pro;
            if (q->pro_from >= 0) { /* the BN before it, applied as the input is read */
                const struct pnode *qb = &p->pn[q->pro_from];
                pro = (struct conv2d_prologue){qb->pro_mean, qb->pro_scale, qb->pro_shift,
                                               g->nodes[q->pro_from].relu};
                a = p->pn[g->nodes[q->pro_from].in[0]].out;
            }
            const struct conv2d_prologue *prp = q->pro_from >= 0 ? &pro : NULL;
            if (aq && nd->act_scale > 0) a = act_quantised(p, i, n, a);
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
                struct conv2d_fuse fz = {p->bn_scale, p->bn_shift, bn->relu, NULL, NULL, NULL};
                conv2d_forward_with(&s, kf, p->pn[q->fused_bn].out, a, w, &fz, p->scratch);
            } else if (train && q->fused_bn >= 0) {
                /* The BN's batch statistics are summed while the output is hot. */
                double *sums = p->pn[q->fused_bn].sums;
                memset(sums, 0, 2 * (size_t)nd->c * sizeof *sums);
                struct conv2d_fuse fz = {NULL, NULL, 0, sums, sums + nd->c, prp};
                conv2d_forward_with(&s, kf, q->out, a, w, &fz, p->scratch);
            } else {
                struct conv2d_fuse fz = {NULL, NULL, 0, NULL, NULL, prp};
                conv2d_forward_with(&s, kf, q->out, a, w, prp ? &fz : NULL, p->scratch);
            }
            break;
        }
        case OP_BATCHNORM: {
            if (fold && q->fused_into >= 0) break;
            struct bn_shape s = bn_shape_of(p, i, n);
            if (q->pro_into >= 0) { /* statistics and affine only: the conv applies it */
                const float *gam = graph_tensor_data(g, nd->tensor[0]);
                const float *bet = graph_tensor_data(g, nd->tensor[1]);
                float *mu = graph_tensor_data(g, nd->tensor[2]), *var = graph_tensor_data(g, nd->tensor[3]);
                const double *sums = q->fused_into >= 0 ? q->sums : NULL;
                if (train)
                    batchnorm_affine_train(&s, a, gam, bet, mu, var, nd->momentum, nd->eps, q->save_mean,
                                           q->save_invstd, sums, sums ? sums + nd->n_features : NULL,
                                           q->pro_mean, q->pro_scale, q->pro_shift);
                else
                    batchnorm_affine_eval(nd->n_features, gam, bet, mu, var, nd->eps, q->pro_mean,
                                          q->pro_scale, q->pro_shift);
                break;
            }
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
            if (aq && nd->act_scale > 0) a = act_quantised(p, i, n, a);
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

static void finish_weight_grad_from(struct plan *p, int node, int eff, const float *src)
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
                dst[j] = src[j] * d * m[j];
            }
        }
}

static void finish_weight_grad(struct plan *p, int node, int eff)
{
    finish_weight_grad_from(p, node, eff, p->dw_tmp);
}

/* A fused group's backward at node i: its last node (from the group output's gradient), or
 * its BN when the pool is fused and the backward started there (from start_grad). */
static void group_backward(struct plan *p, const struct fgroup *G, int i, int n, int train,
                           int eff, float *dx)
{
    struct graph *g = p->g;
    if (G->kind == GROUP_ADD) {
        int acc_a, acc_b;
        float *da = grad_target(p, G->add, 0, dx, &acc_a);
        float *db = grad_target(p, G->add, 1, dx, &acc_b);
        if (G->pool >= 0) {
            struct pnode *q = &p->pn[G->pool];
            struct pool2d_shape s = q->pool;
            s.n = n;
            addpool_backward(&s, da, db, q->dout, q->arg, acc_a, acc_b);
        } else {
            struct pnode *q = &p->pn[G->add];
            add_backward((long)n * q->size, da, db, q->dout, q->out, g->nodes[G->add].relu,
                         acc_a, acc_b);
        }
        return;
    }
    const struct node *bn = &g->nodes[G->bn];
    struct pnode *q = &p->pn[G->bn];
    struct dwpair_shape s = G->shape;
    s.n = n;
    int pooled = i == G->pool;
    const float *dy = pooled ? p->pn[G->pool].dout : i == G->last ? p->pn[G->bn].dout : p->start_grad;
    int in = G->in, acc = p->has_grad[in];
    float *target = in == 0 ? dx : p->pn[in].dout;
    if (!target) acc = 0, target = p->pn[0].dout; /* dx unwanted: a throwaway buffer */
    p->has_grad[in] = 1;
    const float *mu = graph_tensor_data(g, bn->tensor[2]), *var = graph_tensor_data(g, bn->tensor[3]);
    if (!train)
        for (int c = 0; c < bn->n_features; c++) {
            q->save_mean[c] = mu[c];
            q->save_invstd[c] = (float)(1.0 / sqrt((double)var[c] + bn->eps));
        }
    long wa_n = g->tensors[g->nodes[G->a].tensor[0]].numel;
    long wb_n = g->tensors[g->nodes[G->b].tensor[0]].numel;
    float *dwa = eff ? p->gw_tmp : p->g->store.g + g->tensors[g->nodes[G->a].tensor[0]].offset;
    float *dwb = eff ? p->gw_tmp + wa_n : p->g->store.g + g->tensors[g->nodes[G->b].tensor[0]].offset;
    float *dpw = NULL;
    const float *pw = NULL;
    if (G->pw >= 0) {
        int tw = g->nodes[G->pw].tensor[0];
        dpw = eff ? p->gw_tmp + wa_n + wb_n : p->g->store.g + g->tensors[tw].offset;
        pw = weight_of(p, tw, eff);
    }
    dwpair_backward(&s, train, pooled, target, dpw, dwa, dwb,
                    g->store.g + g->tensors[bn->tensor[0]].offset,
                    g->store.g + g->tensors[bn->tensor[1]].offset, dy, p->pn[in].out, pw,
                    weight_of(p, g->nodes[G->a].tensor[0], eff),
                    weight_of(p, g->nodes[G->b].tensor[0], eff), graph_tensor_data(g, bn->tensor[0]),
                    graph_tensor_data(g, bn->tensor[1]), q->save_mean, q->save_invstd, acc,
                    p->scratch);
    finish_weight_grad_from(p, G->a, eff, dwa);
    finish_weight_grad_from(p, G->b, eff, dwb);
    if (G->pw >= 0) finish_weight_grad_from(p, G->pw, eff, dpw);
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
    int start_group = p->pn[node].group;
    if (start_group >= 0) {
        const struct fgroup *G = &p->groups[start_group];
        if (node != G->last && !(node == G->bn && (G->pool >= 0 || G->kind == GROUP_ADD)))
            return status_set(STATUS_INVALID,
                              "backward: node %d (%s %s) is computed inside a fused block and not "
                              "stored; make the plan with PLAN_KEEP to start a backward there",
                              node, graph_op_name(g->nodes[node].op), g->nodes[node].name);
    }
    int pin = begin_pass(p);
    if (pin < 0) return STATUS_NOMEM;
    int n = p->last_n, train = p->last_train, eff = weights_need_eff(g);
    memset(p->has_grad, 0, (size_t)g->n_nodes);
    memset(p->gready, 0, (size_t)g->n_nodes);
    memset(g->store.g, 0, (size_t)g->store.n_params * sizeof(float));
    if (p->pn[node].dout) memcpy(p->pn[node].dout, dnode, (size_t)n * p->pn[node].size * sizeof(float));
    p->start_grad = dnode; /* a pooled group's BN has no gradient buffer: read it in place */
    p->has_grad[node] = 1;
    for (int i = node; i >= 1; i--) {
        if (!p->has_grad[i]) continue;
        const struct node *nd = &g->nodes[i];
        struct pnode *q = &p->pn[i];
        const float *dy = q->dout, *x = p->pn[nd->in[0]].out;
        long len = (long)n * q->size;
        int acc, acc_b;
        double t0 = p->prof ? wall() : 0;
        if (q->group >= 0 && !(p->groups[q->group].kind == GROUP_ADD && i == p->groups[q->group].bn)) {
            const struct fgroup *G = &p->groups[q->group];
            if (i == G->last || (i == G->bn && i == node)) group_backward(p, G, i, n, train, eff, dx);
            if (p->prof) p->prof[g->n_nodes + i] += wall() - t0;
            continue;
        }
        float *da = grad_target(p, i, 0, dx, &acc);
        switch (nd->op) {
        case OP_CONV2D: {
            struct conv2d_shape s = q->conv;
            s.n = n;
            const float *w = weight_of(p, nd->tensor[0], eff);
            if (q->pro_from >= 0) {
                const struct pnode *qb = &p->pn[q->pro_from];
                struct conv2d_prologue pro = {qb->pro_mean, qb->pro_scale, qb->pro_shift,
                                              g->nodes[q->pro_from].relu};
                conv2d_backward_weight_pro(&s, q->algo.k[CONV2D_BACKWARD_WEIGHT],
                                           weight_grad_dst(p, nd->tensor[0], eff), dy,
                                           p->pn[g->nodes[q->pro_from].in[0]].out, &pro, p->scratch);
            } else {
                conv2d_backward_weight_with(&s, q->algo.k[CONV2D_BACKWARD_WEIGHT],
                                            weight_grad_dst(p, nd->tensor[0], eff), dy, x, p->scratch);
            }
            finish_weight_grad(p, i, eff);
            if (da && q->gstat_for >= 0) { /* the BN before it: its backward statistics */
                int b = q->gstat_for;
                const struct node *bn = &g->nodes[b];
                struct pnode *qb = &p->pn[b];
                const float *gam = graph_tensor_data(g, bn->tensor[0]);
                const float *bet = graph_tensor_data(g, bn->tensor[1]);
                if (train)
                    for (int c = 0; c < bn->n_features; c++) {
                        qb->pro_mean[c] = qb->save_mean[c];
                        qb->pro_scale[c] = batchnorm_scale(gam ? gam[c] : 1.0f, qb->save_invstd[c]);
                        qb->pro_shift[c] = bet ? bet[c] : 0.0f;
                    }
                else
                    batchnorm_affine_eval(bn->n_features, gam, bet, graph_tensor_data(g, bn->tensor[2]),
                                          graph_tensor_data(g, bn->tensor[3]), bn->eps, qb->pro_mean,
                                          qb->pro_scale, qb->pro_shift);
                memset(qb->gsums, 0, 2 * (size_t)bn->n_features * sizeof(double));
                struct conv2d_bnstat bst = {p->pn[bn->in[0]].out, qb->pro_mean, qb->pro_scale,
                                            qb->pro_shift, bn->relu, qb->gsums,
                                            qb->gsums + bn->n_features};
                conv2d_backward_data_stat(&s, q->algo.k[CONV2D_BACKWARD_DATA], da, dy, w, acc, &bst,
                                          p->scratch);
                p->gready[b] = 1;
            } else if (da) {
                conv2d_backward_data_with(&s, q->algo.k[CONV2D_BACKWARD_DATA], da, dy, w, acc,
                                          p->scratch);
            }
            break;
        }
        case OP_BATCHNORM: {
            struct bn_shape s = bn_shape_of(p, i, n);
            float *dgam = g->store.g + g->tensors[nd->tensor[0]].offset;
            float *dbet = g->store.g + g->tensors[nd->tensor[1]].offset;
            const float *gam = graph_tensor_data(g, nd->tensor[0]);
            float *target = da ? da : p->pn[0].dout; /* dx unwanted: a throwaway buffer */
            if (!da) acc = 0;
            const float *bet = graph_tensor_data(g, nd->tensor[1]);
            /* the relu mask from x: the output need not be read (one pass fewer) */
            if (p->gready[i]) /* its statistics summed already: one pass */
                batchnorm_backward_sums(&s, train, target, dgam, dbet, dy, x, nd->relu, gam, bet,
                                        train ? q->save_mean : graph_tensor_data(g, nd->tensor[2]),
                                        train ? q->save_invstd : graph_tensor_data(g, nd->tensor[3]),
                                        nd->eps, q->gsums, q->gsums + nd->n_features, acc);
            else if (train)
                batchnorm_backward_train_x(&s, target, dgam, dbet, dy, x, nd->relu, gam, bet,
                                           q->save_mean, q->save_invstd, acc);
            else
                batchnorm_backward_eval_x(&s, target, dgam, dbet, dy, x, nd->relu, gam, bet,
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
