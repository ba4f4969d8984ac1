/* train_parity.c: basin's side of basin_ref.py's training parity protocol, for `make
 * interop` (not a user command: training arrives with the train layer).
 *
 *   train_parity MODEL DATA OUT OPT LR STEPS BS [MOMENTUM NESTEROV WD [EPS]]
 *
 * Batch k is rows [k*bs, (k+1)*bs) of DATA's x (N, C, F, T) and y (N), wrapping around; no
 * shuffling, no augmentation; BN in train mode; dropout off; mean cross-entropy; the
 * optimiser's PyTorch update rules. Prints `step,loss` (the loss before each update) and
 * saves the trained model to OUT, as `basin_ref.py train` does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/graph.h"
#include "basin/core/loss.h"
#include "basin/core/optim.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/model/model.h"
#include "basin/model/safetensors.h"

static int fail(const char *what)
{
    fprintf(stderr, "train_parity: %s: %s\n", what, status_detail());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: train_parity MODEL DATA OUT sgd|adam|adamw LR STEPS BS [MOMENTUM NESTEROV WD [EPS]]\n");
        return 2;
    }
    threads_set(1);
    struct model *m;
    struct st_file *f;
    if (model_load(&m, argv[1])) return fail(argv[1]);
    if (st_load(argv[2], &f)) return fail(argv[2]);
    const struct st_tensor *tx = st_find(f, "x"), *ty = st_find(f, "y");
    if (!tx || !ty || tx->n_dims != 4 || ty->n_dims != 1 || ty->shape[0] != tx->shape[0]) {
        fprintf(stderr, "train_parity: %s: needs x (N, C, F, T) and y (N)\n", argv[2]);
        return 1;
    }
    int n = (int)tx->shape[0], c = (int)tx->shape[1], fr = (int)tx->shape[2], t = (int)tx->shape[3];
    float *x = malloc(tx->numel * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    if (st_to_f32(tx, x) || st_to_i32(ty, y)) return fail(argv[2]);
    struct optim o;
    enum optim_kind kind;
    if (optim_kind_parse(argv[4], &kind)) return fail(argv[4]);
    optim_init(&o, kind);
    o.lr = strtof(argv[5], NULL);
    int steps = atoi(argv[6]), bs = atoi(argv[7]);
    if (argc > 8) o.momentum = strtof(argv[8], NULL);
    if (argc > 9) o.nesterov = atoi(argv[9]);
    if (argc > 10) o.weight_decay = strtof(argv[10], NULL);
    if (argc > 11) o.eps = strtof(argv[11], NULL);
    if (optim_validate(&o)) return fail("optimiser");
    struct graph *g = m->g;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == OP_DROPOUT) g->nodes[i].p = 0;
    struct plan *p;
    if (plan_create(&p, g, bs, c, fr, t, PLAN_BACKWARD)) return fail("plan");
    long per = (long)c * fr * t;
    float *xb = malloc((size_t)bs * per * sizeof *xb), *dl = malloc((size_t)bs * m->cfg.classes * sizeof *dl);
    int *yb = malloc((size_t)bs * sizeof *yb);
    printf("step,loss\n");
    for (int k = 0; k < steps; k++) {
        for (int i = 0; i < bs; i++) {
            int row = (int)(((long)k * bs + i) % n);
            memcpy(xb + i * per, x + (long)row * per, (size_t)per * sizeof *xb);
            yb[i] = y[row];
        }
        if (plan_forward(p, bs, xb, 1, NULL)) return fail("forward");
        double loss = loss_cross_entropy(bs, m->cfg.classes, plan_output(p), yb, NULL, dl);
        if (plan_backward(p, dl, NULL)) return fail("backward");
        optim_step(&o, g->store.n_params, g->store.w, g->store.g, g->store.m, g->store.v, NULL);
        printf("%d,%.9g\n", k, loss);
    }
    if (model_save(m, argv[3], 0, NULL)) return fail(argv[3]);
    plan_destroy(p);
    st_destroy(f);
    model_destroy(m);
    free(x), free(y), free(xb), free(dl), free(yb);
    return 0;
}
