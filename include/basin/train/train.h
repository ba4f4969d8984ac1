/* train.h: the training loop: options, schedules, the loop, its reports, checkpoints and
 * resumption.
 *
 * A trainer trains one model on one set of training features (features.h, normalised as
 * the model expects) and optionally evaluates it on another after every epoch. Everything
 * a step needs (the training plan, the batch iterator, the loss gradient, the last-good
 * copy, the evaluation predictor) is made by train_create; a step allocates nothing.
 * train_run runs on the calling thread with its own pinned thread count and returns at the
 * end of the run, when a callback or the progress cancels (at a step boundary), or when a
 * loss, gradient or weight is not finite.
 *
 * One step, for batch b of epoch e (0-based; global step k):
 *   lr    = train_lr_at(opts, steps_per_epoch, k)           (schedule x warm-up)
 *   x, y  = batch b of epoch e (batch.h: shuffle, roll, gain, mixup, SpecAugment from
 *           (seed, e, b)); in parity mode rows [k*N, (k+1)*N) mod n, nothing else
 *   loss  = mean cross-entropy or focal loss of the train-mode forward (dropout drawn from
 *           (seed, k); BN batch statistics, running statistics updated), soft targets
 *           with mixup; the loss reported is the one before the update
 *   grads = backward; global norm |g| (reported); clipped to clip_norm when set
 *           (torch.nn.utils.clip_grad_norm_: g *= c / (|g| + 1e-6) when that is < 1)
 *   w     = optimiser step (optim.h, PyTorch's rules; pruned weights stay pruned)
 * Every random draw is addressed by (seed, epoch, batch) or (seed, step), never consumed
 * from a stream, so the seed is the whole random state: the same seed and thread count
 * give the same weights bit for bit, and a run resumed from a checkpoint at any step ends
 * with exactly the weights of an uninterrupted one.
 *
 * At the start of every epoch with pruning (opts.prune): the masks are recomputed by
 * magnitude to the ramp's fraction (prune_epoch, CP-JKU); masked weights get no gradient
 * and no update.
 * At the end of every epoch: the weights and BN statistics are checked for NaN / Inf; the
 * SWA average is updated when the epoch is in the window; the evaluate features (if any,
 * when opts.eval) are evaluated; a row goes to epochs.tsv; the checkpoint is written; the
 * epoch callback runs. After the last epoch with SWA, the weights become the average and
 * the BN running statistics are recomputed by one pass over the training features in
 * train mode, without augmentation, in order, with a cumulative average over batches
 * (torch.optim.swa_utils.update_bn, momentum None; ref: mission-anchors 2.6).
 *
 * Files (when an output folder is given; the folder is made if needed):
 *   trainlog.tsv            one row per step (TRAIN_STEP_COLUMNS), appended and flushed
 *                           as the run goes (a viewer may tail it)
 *   epochs.tsv              one row per epoch (TRAIN_EPOCH_COLUMNS)
 *   checkpoint.safetensors  the state after the last complete epoch (and after a stop):
 *                           model_save(checkpoint = 1) with basin.train (the options) and
 *                           basin.train_state (train_state) metadata; atomic
 *   swa-<n>.safetensors     the running SWA average of n models (weights only), written
 *                           before the checkpoint that names it; older ones removed after
 *   model.safetensors       the trained model when the run completes (after SWA)
 *   checkpoint-<e>.safetensors  with keep_checkpoints: a copy of the checkpoint of the
 *                           start of a new run (e = 0) and of the end of every epoch e
 *                           (1-based), kept, for training trajectories (analysis/
 *                           trajectory.h); each also resumes the run from that epoch
 * Both .tsv files have a header line, tab-separated plain numbers ("nan" where a value does
 * not exist, e.g. evaluation metrics when there is no evaluation), steps and epochs
 * counted from 1. A resumed run cuts them back to its checkpoint and appends.
 *
 * Non-finite values: the loss and the gradient norm are checked at every step before the
 * update, the weights and BN statistics at every epoch end before the checkpoint. On a NaN
 * or Inf the run stops with STATUS_NUMERIC naming the step and what was not finite, after
 * restoring the last good point: the weights, BN statistics, optimiser moments and step
 * count at the start of the current epoch (copied once per epoch: 3 floats per parameter
 * kept aside), which is also what the checkpoint on disk holds.
 *
 * Threads: opts.threads is pinned (threads_pin) on the calling thread for train_create and
 * train_run, so `set threads=` meanwhile changes nothing. A trainer belongs to one thread.
 */
#ifndef BASIN_TRAIN_TRAIN_H
#define BASIN_TRAIN_TRAIN_H

#include <stdint.h>

#include "basin/core/optim.h"
#include "basin/core/progress.h"
#include "basin/data/batch.h"
#include "basin/model/prune.h"

struct dataset;
struct eval_result;
struct features;
struct model;

enum train_sched {
    TRAIN_SCHED_CONSTANT,   /* "constant" */
    TRAIN_SCHED_LINEAR,     /* "linear": Koutini et al.: constant, linear decay, then lr_min */
    TRAIN_SCHED_COSINE,     /* "cosine": annealing from lr to lr_min over the run */
    TRAIN_SCHED_STEP,       /* "step": lr * gamma^floor(e / k) */
};

enum train_loss {
    TRAIN_LOSS_CE,          /* "ce": cross-entropy (hard, or soft targets with mixup) */
    TRAIN_LOSS_FOCAL,       /* "focal": -(1 - p)^gamma log p (SP4ASC, gamma 1) */
};

/* Every option of a run; train_opts_default fills them, train_opts_validate checks them.
 * Schedules are functions of the epoch index e (0-based, constant within an epoch, as
 * PyTorch's per-epoch schedulers and the CP-JKU code step them) and of E, the run's length
 * in epochs (epochs, or ceil(steps / steps per epoch)). */
struct train_opts {
    int epochs;                 /* E >= 1 (used when steps is 0) */
    long steps;                 /* > 0: train exactly this many steps instead */
    struct batch_opts batch;    /* batch size, drop_last, augmentation (batch.seed is
                                 * ignored: the run's seed is used) */
    struct optim optim;         /* kind, base lr, momentum, nesterov, weight decay, betas,
                                 * eps (optim.step is ignored: the state's is used) */
    enum train_sched sched;
    double lr_min;              /* linear: the rate after the decay; cosine: the floor;
                                 * < 0: lr / 100 (CP-JKU's after_lr; SP4ASC's 1e-5 for 1e-3) */
    int decay_start, decay_end; /* linear: lr before decay_start, lr (1 - (e - s) / (d - s))
                                 * until decay_end, lr_min from it; 0: round(E/7) and
                                 * round(5E/7) (CP-JKU's 50 and 250 of 350) */
    int step_every;             /* step: k epochs (0: max(1, round(E / 3))) */
    double step_gamma;          /* step: factor (0.1) */
    double warmup_epochs;       /* W: lr scaled by (k + 1) / ceil(W * steps per epoch) for the
                                 * first steps k (linear warm-up per step); 0 off */
    enum train_loss loss;
    double focal_gamma;         /* focal: gamma >= 0 (1) */
    double clip_norm;           /* clip gradients to this global L2 norm; 0 off */
    int swa_epochs;             /* SWA: average the weights at the end of the last N epochs
                                 * (every swa_every-th, counted back from the last); 0 off;
                                 * -1 auto (train_swa_epochs); needs epochs (not steps) */
    int swa_every;              /* >= 1 (CP-JKU: 3) */
    int bn_final;               /* 1: after the last step, recompute the BN running
                                 * statistics over the training features for the final
                                 * weights (compress_update_bn), as SWA does; a short run's
                                 * statistics otherwise lag its weights */
    uint64_t seed;              /* every random draw of the run */
    int threads;                /* threads for the run; 0: threads_get() at train_create */
    int eval;                   /* 1: evaluate after every epoch (when evaluate features
                                 * are given) */
    int eval_batch;             /* clips per evaluation batch (0: the batch size) */
    int parity;                 /* basin_ref.py train's protocol: batch k is rows
                                 * [k N, (k+1) N) mod n of the features, no shuffle, no
                                 * augmentation, dropout off; steps must be set */
    int keep_checkpoints;       /* 1: also keep checkpoint-<e>.safetensors per epoch (see
                                 * Files above); needs an output folder to matter */
    struct prune_opts prune;    /* iterative magnitude pruning (model/prune.h, prune_epoch)
                                 * at the start of every epoch of a new or resumed run
                                 * (not mid-epoch); off by default */
};

/* PyTorch-like defaults: 10 epochs, batch 32 shuffled (batch_opts_default), Adam lr 1e-3,
 * constant schedule, cross-entropy, no clipping, no SWA, seed 1, evaluation on. */
void train_opts_default(struct train_opts *o);
/* The defaults, then a paper's recipe:
 *   "none"    the defaults;
 *   "cpjku"   CP-ResNet (mission-anchors 2.6): Adam lr 1e-4, wd 0, batch 10, 350 epochs,
 *             linear schedule (50, 250, lr/100), mixup per example alpha 0.3 with
 *             max(l, 1 - l), time roll 50, SWA over the epochs from the decay's end (100
 *             of 350, every 3rd);
 *   "sp4asc"  SP4ASC (4.4, 4.5): AdamW lr 1e-3, wd 1e-5, batch 32 drop_last, 200 epochs,
 *             cosine to 1e-5, mixup per batch alpha 0.2, SpecAugment 128 x 2 frames and
 *             32 x 2 bins, cross-entropy.
 * STATUS_NOT_FOUND listing the names otherwise. */
int train_opts_preset(struct train_opts *o, const char *name);
/* 0, or STATUS_INVALID naming the bad option ("train: lr 0 must be > 0"). */
int train_opts_validate(const struct train_opts *o);

/* Names <-> values ("cosine", "focal"); parse returns STATUS_INVALID listing the names. */
const char *train_sched_name(enum train_sched s);
int train_sched_parse(const char *name, enum train_sched *out);
const char *train_loss_name(enum train_loss l);
int train_loss_parse(const char *name, enum train_loss *out);

/* The run's length in epochs (E) and in steps for steps_per_epoch (>= 1). */
int train_total_epochs(const struct train_opts *o, int steps_per_epoch);
long train_total_steps(const struct train_opts *o, int steps_per_epoch);
/* The learning rate of global step k (0-based): the schedule at epoch k / steps_per_epoch
 * times the warm-up factor. */
double train_lr_at(const struct train_opts *o, int steps_per_epoch, long step);
/* The SWA window in epochs for a run of n_epochs: swa_epochs, or for -1 (the cpjku
 * recipe's "auto") the epochs from the linear decay's end (CP-JKU: 250 of 350), or
 * round(2E/7) with another schedule. */
int train_swa_epochs(const struct train_opts *o, int n_epochs);
/* 1 when the weights are averaged at the end of epoch e (0-based) of n_epochs. */
int train_swa_at(const struct train_opts *o, int n_epochs, int epoch);

/* The options as one line of JSON (every field; what basin.train holds) in a new string
 * the caller frees with mem_free, and back: from_json starts from train_opts_default and
 * sets the keys the text holds (label names the text in messages). 0, STATUS_NOMEM,
 * STATUS_FORMAT naming the key. */
int train_opts_to_json(const struct train_opts *o, char **out);
int train_opts_from_json(struct train_opts *o, const char *text, const char *label);

/* Where a run stands; saved in checkpoints as basin.train_state. */
struct train_state {
    int epoch;                  /* the epoch in progress or next to start (0-based) */
    int batch;                  /* batches of it done */
    long step;                  /* optimiser steps done in all */
    long optim_step;            /* the optimiser's step count (Adam's bias correction) */
    int steps_per_epoch;
    long total_steps;
    double lr;                  /* the rate of the last step */
    double loss_sum;            /* this epoch so far: sum of batch loss * batch size, */
    long correct, seen;         /* examples counted right (own label, argmax) and seen */
    int swa_n;                  /* models in the SWA average (swa-<n>.safetensors) */
    int done;                   /* 1 when the run has completed */
    double seconds;             /* training time so far, over every session of the run */
    double train_loss, train_acc;    /* the last complete epoch's */
    double eval_loss, eval_acc;      /* its evaluation (micro); -1 when none */
    double best_eval_acc;            /* best evaluation accuracy so far (-1: none) */
    int best_epoch;                  /* its epoch (1-based; 0: none) */
    uint64_t data_hash;         /* XXH64 of the training features (shape, labels, values) */
    int n_train;                /* training clips */
};

/* The state as one line of JSON, and back (STATUS_FORMAT naming the key). */
int train_state_to_json(const struct train_state *s, char **out);
int train_state_from_json(struct train_state *s, const char *text, const char *label);

/* What the step callback gets after every step. */
struct train_step_report {
    int epoch;                  /* 1-based */
    int n_epochs;               /* E */
    int batch;                  /* 1-based within the epoch */
    int steps_per_epoch;
    long step;                  /* 1-based global step */
    long total_steps;
    int n;                      /* examples in the batch */
    double loss;                /* the batch's loss (before the update) */
    double acc;                 /* the batch's accuracy against each example's own label */
    double epoch_loss, epoch_acc;   /* running means over the epoch so far */
    double lr;
    double grad_norm;           /* global L2 norm of the gradient before clipping */
    double samples_per_s;       /* over this epoch's steps in this session */
    double eta_s;               /* time left for the remaining steps at that rate (without
                                 * evaluation) */
    double elapsed_s;           /* training time of the run so far */
};

/* What the epoch callback gets after every epoch (checkpoint written). */
struct train_epoch_report {
    int epoch;                  /* 1-based */
    int n_epochs;
    long step;
    double lr;                  /* the rate of the epoch's last step */
    double train_loss, train_acc;   /* means over the epoch's batches (augmented data) */
    const struct eval_result *eval; /* the evaluation, or NULL (borrowed for the call) */
    int swa_n;                  /* models in the SWA average after this epoch */
    int swa_final;              /* 1: the weights are now the SWA average (last epoch) */
    int bn_final;               /* 1: the BN statistics were recomputed (last epoch) */
    double seconds;             /* this epoch's wall time, evaluation included */
    double elapsed_s;
    const char *checkpoint;     /* the checkpoint written, or NULL */
};

/* Callback return values. */
enum train_action {
    TRAIN_STOP = 0,             /* stop at this step boundary (STATUS_CANCELLED) */
    TRAIN_GO_ON = 1,
    TRAIN_SAVE = 2,             /* write a checkpoint now, then go on */
};

struct train_callbacks {
    int (*step)(void *user, const struct train_step_report *r);    /* NULL: none */
    int (*epoch)(void *user, const struct train_epoch_report *r);  /* NULL: none */
    void *user;
};

/* The columns of trainlog.tsv and epochs.tsv (their header lines, tab-separated). */
#define TRAIN_STEP_COLUMNS "step\tepoch\tbatch\tlr\tloss\tacc\tgrad_norm\tsamples_per_s\telapsed_s"
#define TRAIN_EPOCH_COLUMNS                                                                 \
    "epoch\tstep\tlr\ttrain_loss\ttrain_acc\teval_loss\teval_acc\teval_loss_macro\t"         \
    "eval_acc_macro\tseen_acc\tunseen_acc\tswa\tseconds\telapsed_s"

struct trainer;

/* Make a trainer of m on `train` (borrowed; clips already normalised as m expects) with
 * options o. eval (may be NULL) is evaluated after each epoch when o->eval; ds (may be
 * NULL) is the data set both come from, for per-device figures (no per-epoch evaluation
 * without it). resume (NULL: a new run) continues from a checkpoint's state: the model
 * must hold that checkpoint's weights, moments and statistics (train_checkpoint_load), and
 * the training features must hash to its data_hash. out_dir (NULL: no files) receives the
 * files above; a new run refuses a folder that already holds a checkpoint.safetensors.
 *
 * Errors: STATUS_INVALID (options; no training clips; a new run into a used folder),
 * STATUS_MISMATCH (features that do not fit the model, or not the checkpoint's data),
 * STATUS_NOMEM (plans, with the estimate), STATUS_IO (the folder or logs). The model is
 * borrowed until train_destroy and must not be used elsewhere meanwhile. */
int train_create(struct trainer **out, struct model *m, const struct features *train,
                 const struct features *eval, const struct dataset *ds,
                 const struct train_opts *o, const struct train_state *resume,
                 const char *out_dir);
void train_destroy(struct trainer *t);   /* NULL is a no-op; the model keeps its weights */

/* Train until the run completes (0), a callback returns TRAIN_STOP or p cancels
 * (STATUS_CANCELLED: stopped after a complete step, with a checkpoint of that point written
 * when there is an output folder), a non-finite value is met (STATUS_NUMERIC, last good
 * point restored; message "step 57 (epoch 3, batch 7): the loss is nan; restored the
 * weights of step 40 (the start of epoch 3)", or "...: the gradient of 'fc1.weight' is not
 * finite; ...", or "...: epoch 3 ended with a non-finite weight in '...'; ..."), or a file
 * cannot be written (STATUS_IO; the model is consistent). Cancelled, the message is
 * "stopped after step 57 (epoch 3, batch 7 of 20)". p gets ("train", steps done, total)
 * after every step and may cancel the per-epoch evaluation. May be called again after a
 * cancel to go on. In every case the model holds consistent weights and statistics and
 * stays usable. */
int train_run(struct trainer *t, const struct train_callbacks *cb, const struct progress *p);

/* Distil from d's cached teacher targets (distill.h; borrowed until train_destroy or the
 * next call; NULL: stop): every later step's loss and gradient become distill_loss's.
 * Not saved in checkpoints (a resumed run sets it again). STATUS_INVALID in parity mode,
 * STATUS_MISMATCH when d was made for other clips or classes. */
struct distill;
int train_set_distill(struct trainer *t, const struct distill *d);
/* ADMM toward a structured budget (admm.h; borrowed until train_destroy or the next call;
 * NULL: stop): every later step adds rho (W - Z + U) to the gradient (before the norm and
 * clipping), and every epoch's start after the first updates Z and U. Not saved in
 * checkpoints. STATUS_INVALID in parity mode, STATUS_MISMATCH for another model's state. */
struct admm;
int train_set_admm(struct trainer *t, struct admm *a);

const struct train_state *train_get_state(const struct trainer *t);
const struct train_opts *train_get_opts(const struct trainer *t);
/* The path of the checkpoint in the output folder ("" without one). */
const char *train_checkpoint_path(const struct trainer *t);

/* Write a checkpoint of the current state to path (model_save with checkpoint = 1 and the
 * basin.train / basin.train_state metadata; atomic). Between steps only. */
int train_save_checkpoint(struct trainer *t, const char *path);

/* Load a checkpoint written by a trainer: the model (with moments, masks, BN statistics,
 * front end, labels, normalisation), its options and state. STATUS_FORMAT when the file is
 * a model without training state ("m.safetensors: not a training checkpoint (no
 * basin.train_state)"). *m is owned by the caller. */
int train_checkpoint_load(const char *path, struct model **m, struct train_opts *o,
                          struct train_state *s);

/* The XXH64 train_create compares on resume: clip count, shape, labels and values of f. */
uint64_t train_data_hash(const struct features *f);

#endif
