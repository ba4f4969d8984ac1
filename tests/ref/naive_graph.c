/* naive_graph.c: the double-precision graph interpreter (see naive_graph.h). */
#include "ref/naive_graph.h"

#include <stdlib.h>
#include <string.h>

#include "ref/naive.h"

int naive_graph_forward(const struct graph *g, int n, int c, int f, int t, const double *x,
                        const double *w, const double *buf, int train, int tap, double *out,
                        long *size)
{
    struct node_info *info = calloc((size_t)g->n_nodes, sizeof *info);
    double **y = calloc((size_t)g->n_nodes, sizeof *y);
    if (graph_describe(g, c, f, t, info)) {
        free(info);
        free(y);
        return -1;
    }
    if (tap < 0) tap = g->output;
    for (int i = 0; i <= tap; i++) {
        const struct node *nd = &g->nodes[i];
        const struct node_info *o = &info[i];
        long len = (long)n * o->c * o->f * o->t;
        y[i] = calloc((size_t)len, sizeof(double));
        const double *a = i ? y[nd->in[0]] : NULL;
        const struct node_info *ai = i ? &info[nd->in[0]] : NULL;
        switch (nd->op) {
        case OP_INPUT:
            memcpy(y[i], x, (size_t)len * sizeof(double));
            break;
        case OP_CONV2D: {
            const struct graph_tensor *gt = &g->tensors[nd->tensor[0]];
            double *we = malloc((size_t)gt->numel * sizeof(double));
            int rows = nd->k[0], cols = nd->k[1];
            for (long j = 0; j < gt->numel; j++) {
                int r = (int)(j / cols % rows);
                double cc = (rows - 1) / 2.0, d = 1;
                if (nd->damping > 0 && rows >= 3) d = 1 - (1 - nd->damping) * (r > cc ? r - cc : cc - r) / cc;
                we[j] = w[gt->offset + j] * d * g->store.mask[gt->offset + j];
            }
            struct conv2d_shape s = {n, ai->c, ai->f, ai->t, nd->c, nd->k[0], nd->k[1],
                                     nd->stride[0], nd->stride[1], nd->pad[0], nd->pad[1],
                                     nd->dil[0], nd->dil[1], nd->groups, 0, 0};
            conv2d_shape_init(&s);
            naive_conv2d(&s, y[i], a, we);
            free(we);
            break;
        }
        case OP_BATCHNORM: {
            struct bn_shape s;
            if (nd->axis == 1) s.outer = n, s.c = ai->c, s.inner = (long)ai->f * ai->t;
            else s.outer = n * ai->c, s.c = ai->f, s.inner = ai->t;
            const double *gam = w + g->tensors[nd->tensor[0]].offset;
            const double *bet = w + g->tensors[nd->tensor[1]].offset;
            const double *mu = buf + g->tensors[nd->tensor[2]].offset;
            const double *var = buf + g->tensors[nd->tensor[3]].offset;
            if (train)
                naive_batchnorm_train(&s, y[i], a, gam, bet, NULL, NULL, nd->momentum, nd->eps,
                                      NULL, NULL, nd->relu);
            else
                naive_batchnorm_eval(&s, y[i], a, gam, bet, mu, var, nd->eps, nd->relu);
            break;
        }
        case OP_RELU:
            naive_relu(len, y[i], a);
            break;
        case OP_ADD:
            naive_add(len, y[i], a, y[nd->in[1]], nd->relu);
            break;
        case OP_ROLL:
            naive_roll(n, o->c, (long)o->f * o->t, nd->shift, y[i], a);
            break;
        case OP_MAXPOOL:
        case OP_AVGPOOL: {
            struct pool2d_shape s = {n, o->c, ai->f, ai->t, nd->k[0], nd->k[1], nd->stride[0],
                                     nd->stride[1], 0, 0};
            pool2d_shape_init(&s);
            if (nd->op == OP_MAXPOOL) naive_maxpool2d(&s, y[i], a);
            else naive_avgpool2d(&s, y[i], a);
            break;
        }
        case OP_MEAN:
        case OP_MAX:
            if (nd->axis == 2) {
                if (nd->op == OP_MEAN) naive_mean(n * ai->c, ai->f, ai->t, y[i], a);
                else naive_max(n * ai->c, ai->f, ai->t, y[i], a);
            } else {
                if (nd->op == OP_MEAN) naive_mean(n * ai->c * ai->f, ai->t, 1, y[i], a);
                else naive_max(n * ai->c * ai->f, ai->t, 1, y[i], a);
            }
            break;
        case OP_LINEAR: {
            const struct graph_tensor *gt = &g->tensors[nd->tensor[0]];
            double *we = malloc((size_t)gt->numel * sizeof(double));
            for (long j = 0; j < gt->numel; j++) we[j] = w[gt->offset + j] * g->store.mask[gt->offset + j];
            naive_linear(n, ai->c, nd->c, y[i], a, we,
                         nd->tensor[1] >= 0 ? w + g->tensors[nd->tensor[1]].offset : NULL);
            free(we);
            break;
        }
        case OP_DROPOUT:
            memcpy(y[i], a, (size_t)len * sizeof(double));
            break;
        default:
            break;
        }
    }
    *size = (long)info[tap].c * info[tap].f * info[tap].t;
    memcpy(out, y[tap], (size_t)(n * *size) * sizeof(double));
    for (int i = 0; i <= tap; i++) free(y[i]);
    free(y);
    free(info);
    return 0;
}
