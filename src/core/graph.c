/* graph.c: the static graph builder, the parameter store and graph descriptions.
 *
 * Builders append nodes and register their named tensors; graph_finish() lays every
 * parameter out in one array (store.w) in registration order, so the store's order is the
 * state_dict's order, and BN running statistics in a second one (store.buf). Plans
 * (plan.c) run the graph.
 */
#include "basin/core/graph.h"

#include <stdio.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/status.h"

struct graph *graph_create(void)
{
    struct graph *g = mem_calloc(1, sizeof *g);
    if (g) g->output = -1;
    return g;
}

void graph_destroy(struct graph *g)
{
    if (!g) return;
    mem_free(g->nodes);
    mem_free(g->tensors);
    mem_free(g->store.w);
    mem_free(g->store.g);
    mem_free(g->store.m);
    mem_free(g->store.v);
    mem_free(g->store.mask);
    mem_free(g->store.buf);
    mem_free(g);
}

/* Record the first build error; later builder calls see it and do nothing. */
static int build_error(struct graph *g, int status)
{
    if (!g->error) g->error = status;
    return -1;
}

static int check_input(struct graph *g, int in, const char *what)
{
    if (in < 0 || in >= g->n_nodes)
        return build_error(g, status_set(STATUS_INVALID, "%s: input node %d does not exist",
                                         what, in));
    return 0;
}

static struct node *add_node(struct graph *g, enum op_kind op, const char *name, int in0,
                             int in1, int c)
{
    if (g->error) return NULL;
    if (g->store.w) {
        build_error(g, status_set(STATUS_INVALID, "graph: node added after graph_finish"));
        return NULL;
    }
    if (op != OP_INPUT && check_input(g, in0, name && *name ? name : graph_op_name(op)))
        return NULL;
    if (in1 != -1 && check_input(g, in1, name && *name ? name : graph_op_name(op))) return NULL;
    if (c <= 0) {
        build_error(g, status_set(STATUS_INVALID, "%s: %d channels",
                                  name && *name ? name : graph_op_name(op), c));
        return NULL;
    }
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 64;
        struct node *p = mem_realloc(g->nodes, (size_t)cap * sizeof *p);
        if (!p) {
            build_error(g, STATUS_NOMEM);
            return NULL;
        }
        g->nodes = p;
        g->cap_nodes = cap;
    }
    struct node *n = &g->nodes[g->n_nodes++];
    memset(n, 0, sizeof *n);
    n->op = op;
    if (name) snprintf(n->name, sizeof n->name, "%s", name);
    n->in[0] = in0;
    n->in[1] = in1;
    n->c = c;
    n->groups = 1;
    for (int i = 0; i < 4; i++) n->tensor[i] = -1;
    return n;
}

static int node_index(struct graph *g, const struct node *n)
{
    return n ? (int)(n - g->nodes) : -1;
}

/* Register "<prefix>.<suffix>" of the given shape for node `node`; returns its index. */
static int add_tensor(struct graph *g, int node, const char *prefix, const char *suffix,
                      enum tensor_kind kind, int n_dims, int d0, int d1, int d2, int d3)
{
    if (g->error) return -1;
    if (g->n_tensors == g->cap_tensors) {
        int cap = g->cap_tensors ? 2 * g->cap_tensors : 128;
        struct graph_tensor *p = mem_realloc(g->tensors, (size_t)cap * sizeof *p);
        if (!p) return build_error(g, STATUS_NOMEM);
        g->tensors = p;
        g->cap_tensors = cap;
    }
    struct graph_tensor *t = &g->tensors[g->n_tensors];
    memset(t, 0, sizeof *t);
    int len = snprintf(t->name, sizeof t->name, "%s.%s", prefix, suffix);
    if (len >= (int)sizeof t->name)
        return build_error(g, status_set(STATUS_INVALID, "tensor name %s.%s is too long",
                                         prefix, suffix));
    if (graph_find_tensor(g, t->name) >= 0)
        return build_error(g, status_set(STATUS_INVALID, "tensor %s is defined twice", t->name));
    t->kind = kind;
    t->n_dims = n_dims;
    int d[4] = {d0, d1, d2, d3};
    t->numel = 1;
    for (int i = 0; i < n_dims; i++) {
        t->shape[i] = d[i];
        t->numel *= d[i];
    }
    t->node = node;
    return g->n_tensors++;
}

int graph_input(struct graph *g, int c)
{
    if (g->n_nodes)
        return build_error(g, status_set(STATUS_INVALID, "graph: the input must be node 0"));
    return node_index(g, add_node(g, OP_INPUT, "input", -1, -1, c));
}

int graph_conv2d(struct graph *g, const char *name, int in, int co, int kf, int kt, int sf,
                 int st, int pf, int pt, int df, int dt, int groups, float damping)
{
    if (g->error) return -1;
    if (check_input(g, in, name)) return -1;
    int ci = g->nodes[in].c;
    if (kf < 1 || kt < 1 || sf < 1 || st < 1 || pf < 0 || pt < 0 || df < 1 || dt < 1 ||
        groups < 1 || ci % groups || co % groups || damping < 0 || damping > 1)
        return build_error(g, status_set(STATUS_INVALID,
                                         "%s: bad conv (in %d, out %d, kernel %dx%d, groups %d, "
                                         "damping %g)", name, ci, co, kf, kt, groups, damping));
    struct node *n = add_node(g, OP_CONV2D, name, in, -1, co);
    int id = node_index(g, n);
    if (!n) return -1;
    n->k[0] = kf, n->k[1] = kt;
    n->stride[0] = sf, n->stride[1] = st;
    n->pad[0] = pf, n->pad[1] = pt;
    n->dil[0] = df, n->dil[1] = dt;
    n->groups = groups;
    n->damping = damping;
    n->tensor[0] = add_tensor(g, id, name, "weight", TENSOR_WEIGHT, 4, co, ci / groups, kf, kt);
    return g->error ? -1 : id;
}

static int add_bn(struct graph *g, const char *name, int in, int axis, int n_features, int relu)
{
    struct node *n = add_node(g, OP_BATCHNORM, name, in, -1, in >= 0 && in < g->n_nodes ? g->nodes[in].c : 0);
    int id = node_index(g, n);
    if (!n) return -1;
    n->axis = axis;
    n->n_features = n_features;
    n->relu = relu;
    n->eps = 1e-5f;      /* ref: torch.nn.BatchNorm2d defaults */
    n->momentum = 0.1f;
    n->tensor[0] = add_tensor(g, id, name, "weight", TENSOR_BN_WEIGHT, 1, n_features, 0, 0, 0);
    n->tensor[1] = add_tensor(g, id, name, "bias", TENSOR_BN_BIAS, 1, n_features, 0, 0, 0);
    n->tensor[2] = add_tensor(g, id, name, "running_mean", TENSOR_RUNNING_MEAN, 1, n_features, 0,
                              0, 0);
    n->tensor[3] = add_tensor(g, id, name, "running_var", TENSOR_RUNNING_VAR, 1, n_features, 0,
                              0, 0);
    return g->error ? -1 : id;
}

int graph_batchnorm(struct graph *g, const char *name, int in, int relu)
{
    if (g->error || check_input(g, in, name)) return -1;
    return add_bn(g, name, in, 1, g->nodes[in].c, relu);
}

int graph_batchnorm_freq(struct graph *g, const char *name, int in, int n_mels)
{
    if (g->error || check_input(g, in, name)) return -1;
    if (n_mels < 1)
        return build_error(g, status_set(STATUS_INVALID, "%s: %d mel bins", name, n_mels));
    return add_bn(g, name, in, 2, n_mels, 0);
}

static int simple(struct graph *g, enum op_kind op, int in, int in1)
{
    if (g->error || check_input(g, in, graph_op_name(op))) return -1;
    return node_index(g, add_node(g, op, "", in, in1, g->nodes[in].c));
}

int graph_relu(struct graph *g, int in)
{
    return simple(g, OP_RELU, in, -1);
}

int graph_add(struct graph *g, int a, int b, int relu)
{
    if (g->error || check_input(g, a, "add") || check_input(g, b, "add")) return -1;
    if (g->nodes[a].c != g->nodes[b].c)
        return build_error(g, status_set(STATUS_INVALID, "add: %d channels + %d channels",
                                         g->nodes[a].c, g->nodes[b].c));
    int id = simple(g, OP_ADD, a, b);
    if (id >= 0) g->nodes[id].relu = relu;
    return id;
}

int graph_roll(struct graph *g, int in, int shift)
{
    int id = simple(g, OP_ROLL, in, -1);
    if (id >= 0) g->nodes[id].shift = shift;
    return id;
}

static int pool(struct graph *g, enum op_kind op, const char *name, int in, int k, int stride)
{
    if (g->error) return -1;
    if (k < 1 || stride < 1)
        return build_error(g, status_set(STATUS_INVALID, "%s: kernel %d, stride %d",
                                         name && *name ? name : graph_op_name(op), k, stride));
    if (check_input(g, in, name && *name ? name : graph_op_name(op))) return -1;
    int id = node_index(g, add_node(g, op, name, in, -1, g->nodes[in].c));
    if (id < 0) return -1;
    struct node *n = &g->nodes[id];
    n->k[0] = n->k[1] = k;
    n->stride[0] = n->stride[1] = stride;
    return id;
}

int graph_maxpool(struct graph *g, const char *name, int in, int k, int stride)
{
    return pool(g, OP_MAXPOOL, name, in, k, stride);
}

int graph_avgpool(struct graph *g, const char *name, int in, int k, int stride)
{
    return pool(g, OP_AVGPOOL, name, in, k, stride);
}

static int reduce(struct graph *g, enum op_kind op, int in, int axis)
{
    if (axis != 2 && axis != 3)
        return build_error(g, status_set(STATUS_INVALID, "%s over axis %d (2 or 3 only)",
                                         graph_op_name(op), axis));
    int id = simple(g, op, in, -1);
    if (id >= 0) g->nodes[id].axis = axis;
    return id;
}

int graph_mean(struct graph *g, int in, int axis)
{
    return reduce(g, OP_MEAN, in, axis);
}

int graph_max(struct graph *g, int in, int axis)
{
    return reduce(g, OP_MAX, in, axis);
}

int graph_linear(struct graph *g, const char *name, int in, int out, int bias)
{
    if (g->error || check_input(g, in, name)) return -1;
    int ci = g->nodes[in].c;
    struct node *n = add_node(g, OP_LINEAR, name, in, -1, out);
    int id = node_index(g, n);
    if (!n) return -1;
    n->tensor[0] = add_tensor(g, id, name, "weight", TENSOR_WEIGHT, 2, out, ci, 0, 0);
    if (bias) n->tensor[1] = add_tensor(g, id, name, "bias", TENSOR_BIAS, 1, out, 0, 0, 0);
    return g->error ? -1 : id;
}

int graph_dropout(struct graph *g, int in, float p)
{
    if (!(p >= 0 && p < 1))
        return build_error(g, status_set(STATUS_INVALID, "dropout probability %g", p));
    int id = simple(g, OP_DROPOUT, in, -1);
    if (id >= 0) g->nodes[id].p = p;
    return id;
}

int graph_finish(struct graph *g)
{
    if (g->error) return g->error;
    if (g->n_nodes < 2) return status_set(STATUS_INVALID, "graph: no nodes after the input");
    if (g->store.w) return status_set(STATUS_INVALID, "graph: finished twice");
    struct store *s = &g->store;
    for (int i = 0; i < g->n_tensors; i++) {
        struct graph_tensor *t = &g->tensors[i];
        long *n = tensor_kind_is_param(t->kind) ? &s->n_params : &s->n_buffers;
        t->offset = *n;
        *n += t->numel;
    }
    size_t np = (size_t)(s->n_params ? s->n_params : 1), nb = (size_t)(s->n_buffers ? s->n_buffers : 1);
    s->w = mem_calloc(np, sizeof(float));
    s->mask = mem_alloc(np * sizeof(float));
    s->buf = mem_calloc(nb, sizeof(float));
    if (!s->w || !s->mask || !s->buf) {
        /* Leave the graph unfinished, not half-built (plans take store.w as "finished"). */
        float **arrays[] = {&s->w, &s->mask, &s->buf};
        for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
            mem_free(*arrays[i]);
            *arrays[i] = NULL;
        }
        s->n_params = s->n_buffers = 0;
        return STATUS_NOMEM;
    }
    for (size_t i = 0; i < np; i++) s->mask[i] = 1;
    for (int i = 0; i < g->n_tensors; i++) {
        struct graph_tensor *t = &g->tensors[i];
        float *d = graph_tensor_data(g, i);
        if (t->kind == TENSOR_BN_WEIGHT || t->kind == TENSOR_RUNNING_VAR)
            for (long j = 0; j < t->numel; j++) d[j] = 1;
    }
    g->output = g->n_nodes - 1;
    return STATUS_OK;
}

/* Parameter and buffer element counts of the registered tensors (the store's sizes). */
static void store_counts(const struct graph *g, long *n_params, long *n_buffers)
{
    *n_params = *n_buffers = 0;
    for (int i = 0; i < g->n_tensors; i++)
        *(tensor_kind_is_param(g->tensors[i].kind) ? n_params : n_buffers) += g->tensors[i].numel;
}

size_t graph_store_bytes(const struct graph *g, int training)
{
    long np, nb;
    store_counts(g, &np, &nb);
    return (size_t)((training ? 5 : 2) * np + nb) * sizeof(float);
}

size_t graph_training_bytes(const struct graph *g)
{
    if (g->store.g && g->store.m && g->store.v) return 0;
    long np, nb;
    store_counts(g, &np, &nb);
    return 3 * (size_t)(np ? np : 1) * sizeof(float);
}

int graph_alloc_training(struct graph *g)
{
    struct store *s = &g->store;
    if (!s->w) return status_set(STATUS_INVALID, "graph: training state before graph_finish");
    size_t need = graph_training_bytes(g), avail = mem_available_bytes();
    if (!need) return STATUS_OK;
    if (need > avail) {
        char a[32], b[32];
        return status_set(STATUS_NOMEM,
                          "training state of %ld parameters (gradients and two optimiser moments) "
                          "needs about %s, this machine has %s available",
                          s->n_params, mem_bytes_str(a, sizeof a, (double)need),
                          mem_bytes_str(b, sizeof b, (double)avail));
    }
    size_t np = (size_t)(s->n_params ? s->n_params : 1);
    float **arrays[] = {&s->g, &s->m, &s->v};
    for (size_t i = 0; i < 3; i++)
        if (!*arrays[i] && !(*arrays[i] = mem_calloc(np, sizeof(float)))) return STATUS_NOMEM;
    return STATUS_OK;
}

void graph_bn_reset_stats(struct graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const struct node *nd = &g->nodes[i];
        if (nd->op != OP_BATCHNORM) continue;
        float *mean = graph_tensor_data(g, nd->tensor[2]), *var = graph_tensor_data(g, nd->tensor[3]);
        for (long j = 0; j < g->tensors[nd->tensor[2]].numel; j++) mean[j] = 0, var[j] = 1;
    }
}

void graph_bn_set_momentum(struct graph *g, float momentum)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == OP_BATCHNORM) g->nodes[i].momentum = momentum;
}

int graph_find_tensor(const struct graph *g, const char *name)
{
    for (int i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return i;
    return -1;
}

int graph_find_node(const struct graph *g, const char *name)
{
    if (!name || !*name) return -1;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].name, name)) return i;
    return -1;
}

float *graph_tensor_data(const struct graph *g, int tensor)
{
    const struct graph_tensor *t = &g->tensors[tensor];
    return (tensor_kind_is_param(t->kind) ? g->store.w : g->store.buf) + t->offset;
}

long graph_param_count(const struct graph *g)
{
    long n = 0;
    for (int i = 0; i < g->n_tensors; i++)
        if (tensor_kind_is_param(g->tensors[i].kind)) n += g->tensors[i].numel;
    return n;
}

const char *graph_op_name(enum op_kind op)
{
    static const char *const names[OP_COUNT] = {
        [OP_INPUT] = "input", [OP_CONV2D] = "conv",     [OP_BATCHNORM] = "bn",
        [OP_RELU] = "relu",   [OP_ADD] = "add",         [OP_ROLL] = "roll",
        [OP_MAXPOOL] = "maxpool", [OP_AVGPOOL] = "avgpool", [OP_MEAN] = "mean",
        [OP_MAX] = "max",     [OP_LINEAR] = "linear",   [OP_DROPOUT] = "dropout",
    };
    return (unsigned)op < OP_COUNT ? names[op] : "?";
}

/* Output length along axis d (0: F, 1: T) of a conv or pool node for input length n, or
 * -1 when n (padding included) is shorter than the kernel's span. */
static long axis_out(const struct node *n, int d, long in)
{
    long dil = n->op == OP_CONV2D ? n->dil[d] : 1, pad = n->op == OP_CONV2D ? n->pad[d] : 0;
    long span = dil * (n->k[d] - 1) + 1;
    if (in + 2 * pad < span) return -1;
    return (in + 2 * pad - span) / n->stride[d] + 1;
}

/* 1 when an input of length n along axis d passes every conv and pool of g. len holds
 * n_nodes entries of scratch. */
static int axis_fits(const struct graph *g, int d, long n, long *len)
{
    len[0] = n;
    for (int i = 1; i < g->n_nodes; i++) {
        const struct node *nd = &g->nodes[i];
        long a = len[nd->in[0]];
        if (nd->op == OP_CONV2D || nd->op == OP_MAXPOOL || nd->op == OP_AVGPOOL) {
            if ((a = axis_out(nd, d, a)) < 1) return 0;
        } else if ((nd->op == OP_MEAN || nd->op == OP_MAX) && nd->axis - 2 == d) {
            a = 1;
        }
        len[i] = a;
    }
    return 1;
}

int graph_min_input(const struct graph *g, int *f, int *t)
{
    long *len = mem_calloc((size_t)g->n_nodes + 1, sizeof *len);
    if (!len) return STATUS_NOMEM;
    int *out[2] = {f, t};
    for (int d = 0; d < 2; d++) {
        /* Lengths only grow with the input: double until it fits, then bisect. */
        long lo = 0, hi = 1;
        while (!axis_fits(g, d, hi, len)) {
            lo = hi;
            if ((hi *= 2) > (1L << 30)) {
                mem_free(len);
                return status_set(STATUS_INVALID, "graph: no input %s fits its kernels",
                                  d ? "length" : "height");
            }
        }
        while (hi - lo > 1) {
            long mid = lo + (hi - lo) / 2;
            if (axis_fits(g, d, mid, len)) hi = mid;
            else lo = mid;
        }
        *out[d] = (int)hi;
    }
    mem_free(len);
    return STATUS_OK;
}

/* "s1.b2.pool", or "node 7 (maxpool)" for an anonymous node. */
static const char *node_label(const struct graph *g, int i, char *buf, size_t n)
{
    const struct node *nd = &g->nodes[i];
    if (nd->name[0]) snprintf(buf, n, "%s", nd->name);
    else snprintf(buf, n, "node %d (%s)", i, graph_op_name(nd->op));
    return buf;
}

/* The message for an input too small for node i, whose input map is a_f x a_t. */
static int too_small(const struct graph *g, int i, int f, int t, int a_f, int a_t)
{
    const struct node *nd = &g->nodes[i];
    char name[80], min[64] = "";
    int mf, mt;
    if (graph_min_input(g, &mf, &mt) == STATUS_OK)
        snprintf(min, sizeof min, " (the model takes inputs of at least %d x %d)", mf, mt);
    return status_set(STATUS_MISMATCH,
                      "input of %d x %d is too small: %s gets a %d x %d map, too small for its "
                      "%dx%d kernel%s",
                      f, t, node_label(g, i, name, sizeof name), a_f, a_t, nd->k[0], nd->k[1], min);
}

int graph_describe(const struct graph *g, int c, int f, int t, struct node_info *info)
{
    if (g->n_nodes == 0) return status_set(STATUS_INVALID, "graph: empty");
    if (c != g->nodes[0].c)
        return status_set(STATUS_MISMATCH, "input has %d channels, the model takes %d", c,
                          g->nodes[0].c);
    if (f < 1 || t < 1) return status_set(STATUS_INVALID, "input of %d x %d", f, t);
    for (int i = 0; i < g->n_nodes; i++) {
        const struct node *n = &g->nodes[i];
        struct node_info *o = &info[i];
        const struct node_info *a = n->in[0] >= 0 ? &info[n->in[0]] : NULL;
        memset(o, 0, sizeof *o);
        o->c = n->c;
        if (!a) {
            o->f = f, o->t = t;
            o->rf[0] = o->rf[1] = 1;
            o->jump[0] = o->jump[1] = 1;
            continue;
        }
        o->f = a->f, o->t = a->t;
        for (int d = 0; d < 2; d++) {
            o->rf[d] = a->rf[d];
            o->jump[d] = a->jump[d];
            o->whole[d] = a->whole[d];
        }
        for (int k = 0; k < 4; k++)
            if (n->tensor[k] >= 0 && tensor_kind_is_param(g->tensors[n->tensor[k]].kind))
                o->params += g->tensors[n->tensor[k]].numel;
        switch (n->op) {
        case OP_CONV2D:
        case OP_MAXPOOL:
        case OP_AVGPOOL: {
            long in_sz[2] = {a->f, a->t}, out_sz[2];
            for (int d = 0; d < 2; d++) {
                if ((out_sz[d] = axis_out(n, d, in_sz[d])) < 1)
                    return too_small(g, i, f, t, a->f, a->t);
                /* ref: Araujo et al. 2019 (distill), r_l = r_{l-1} + (k_l - 1) d_l j_{l-1} */
                long span = (n->op == OP_CONV2D ? n->dil[d] : 1) * (long)(n->k[d] - 1) + 1;
                if (!a->whole[d]) o->rf[d] = a->rf[d] + (span - 1) * a->jump[d];
                o->jump[d] = a->jump[d] * n->stride[d];
            }
            o->f = (int)out_sz[0], o->t = (int)out_sz[1];
            if (n->op == OP_CONV2D)
                o->macs = (double)o->f * o->t * n->c * (a->c / n->groups) * n->k[0] * n->k[1];
            break;
        }
        case OP_BATCHNORM:
            if (n->axis == 2 && a->f != n->n_features)
                return status_set(STATUS_MISMATCH, "%s: input has %d mel bins, the model takes %d",
                                  n->name, a->f, n->n_features);
            break;
        case OP_ADD: {
            const struct node_info *b = &info[n->in[1]];
            if (a->f != b->f || a->t != b->t)
                return status_set(STATUS_MISMATCH, "add: %d x %d + %d x %d", a->f, a->t, b->f,
                                  b->t);
            for (int d = 0; d < 2; d++) {
                if (b->rf[d] > o->rf[d]) o->rf[d] = b->rf[d];
                o->whole[d] |= b->whole[d];
            }
            break;
        }
        case OP_MEAN:
        case OP_MAX: {
            /* Every position along the axis feeds the unit: it sees the whole input there. */
            int d = n->axis - 2;
            if (d) o->t = 1;
            else o->f = 1;
            o->rf[d] = d ? t : f;
            o->whole[d] = 1;
            break;
        }
        case OP_LINEAR:
            if (a->f != 1 || a->t != 1)
                return status_set(STATUS_MISMATCH, "%s: input is %d x %d, needs 1 x 1", n->name,
                                  a->f, a->t);
            o->macs = (double)a->c * n->c;
            break;
        default:
            break;
        }
    }
    return STATUS_OK;
}
