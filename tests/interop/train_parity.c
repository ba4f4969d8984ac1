/* train_parity.c: basin's side of basin_ref.py's training parity protocol, for `make
 * interop`, through the real training loop (src/train, train_opts.parity).
 *
 *   train_parity MODEL DATA OUT OPT LR STEPS BS [MOMENTUM NESTEROV WD [EPS]]
 *
 * Batch k is rows [k*bs, (k+1)*bs) of DATA's x (N, C, F, T) and y (N), wrapping around; no
 * shuffling, no augmentation; BN in train mode; dropout off; mean cross-entropy; the
 * optimiser's PyTorch update rules; a constant learning rate. Prints `step,loss` (the loss
 * before each update) and saves the trained model to OUT, as `basin_ref.py train` does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/data/features.h"
#include "basin/model/model.h"
#include "basin/model/safetensors.h"
#include "basin/train/train.h"

static int fail(const char *what)
{
    fprintf(stderr, "train_parity: %s: %s\n", what, status_detail());
    return 1;
}

static int print_step(void *user, const struct train_step_report *r)
{
    (void)user;
    printf("%ld,%.9g\n", r->step - 1, r->loss);
    return TRAIN_GO_ON;
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
    /* the data as training features */
    struct features *feat = mem_calloc(1, sizeof *feat);
    if (!feat) return fail("features");
    feat->n = (int)tx->shape[0];
    feat->n_channels = (int)tx->shape[1];
    feat->n_mels = (int)tx->shape[2];
    feat->n_frames = (int)tx->shape[3];
    feat->n_classes = m->cfg.classes;
    feat->x = mem_alloc(tx->numel * sizeof *feat->x);
    feat->labels = mem_alloc((size_t)feat->n * sizeof *feat->labels);
    feat->items = mem_alloc((size_t)feat->n * sizeof *feat->items);
    if (!feat->x || !feat->labels || !feat->items) return fail("features");
    if (st_to_f32(tx, feat->x) || st_to_i32(ty, feat->labels)) return fail(argv[2]);
    for (int i = 0; i < feat->n; i++) feat->items[i] = i;

    struct train_opts o;
    train_opts_default(&o);
    enum optim_kind kind;
    if (optim_kind_parse(argv[4], &kind)) return fail(argv[4]);
    optim_init(&o.optim, kind);
    o.optim.lr = strtof(argv[5], NULL);
    o.steps = atol(argv[6]);
    o.epochs = 0;
    o.batch.batch_size = atoi(argv[7]);
    if (argc > 8) o.optim.momentum = strtof(argv[8], NULL);
    if (argc > 9) o.optim.nesterov = atoi(argv[9]);
    if (argc > 10) o.optim.weight_decay = strtof(argv[10], NULL);
    if (argc > 11) o.optim.eps = strtof(argv[11], NULL);
    o.parity = 1;
    o.threads = 1;
    o.eval = 0;

    struct trainer *t;
    if (train_create(&t, m, feat, NULL, NULL, &o, NULL, NULL)) return fail("train");
    printf("step,loss\n");
    struct train_callbacks cb = {print_step, NULL, NULL};
    if (train_run(t, &cb, NULL)) return fail("train");
    train_destroy(t);
    if (model_save(m, argv[3], 0, NULL)) return fail(argv[3]);
    features_destroy(feat);
    st_destroy(f);
    model_destroy(m);
    return 0;
}
