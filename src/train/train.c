/* train.c: the training loop (train.h): steps, epoch ends, SWA, the last good point,
 * checkpoints, logs and resumption.
 *
 * Key idea: the loop's position (epoch, batch, step) and the seed determine everything it
 * draws, and a checkpoint holds the rest exactly (float32 weights, BN statistics and
 * optimiser moments, the optimiser's step count, the SWA average in its own file), so
 * stopping and resuming at any step boundary is invisible in the weights.
 *
 * ref: torch.nn.utils.clip_grad_norm_ (coefficient max_norm / (norm + 1e-6), applied when
 *      below 1); torch.optim.swa_utils.AveragedModel (avg + (w - avg) / (n + 1)) and
 *      update_bn (running statistics reset, momentum None: a cumulative average over
 *      batches); mission-anchors 2.6 (CP-JKU SWA with BN update).
 */
#include "basin/train/train.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "basin/core/fs.h"
#include "basin/core/graph.h"
#include "basin/core/log.h"
#include "basin/core/loss.h"
#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/data/dataset.h"
#include "basin/data/features.h"
#include "basin/data/hash.h"
#include "basin/model/compress.h"
#include "basin/model/model.h"
#include "basin/model/predict.h"
#include "basin/model/safetensors.h"
#include "basin/train/admm.h"
#include "basin/train/distill.h"
#include "basin/train/eval.h"

/* rng_split tags of the run's seed: dropout (then split by global step) and the SWA BN
 * pass (then split by batch). */
#define TAG_DROPOUT 0x64726f70ULL
#define TAG_BN_PASS 0x626e7061ULL

struct trainer {
    struct model *m;
    struct graph *g;
    const struct features *train, *eval;
    const struct dataset *ds;
    struct train_opts o;
    struct train_state st;
    struct optim optim;         /* the working optimiser: lr set per step, step = state's */
    int n_epochs;               /* E */
    int cap;                    /* batch capacity of the plan */
    struct plan *plan;
    struct batch_iter *it;      /* training batches (not in parity mode) */
    struct predictor *pred;     /* per-epoch evaluation */
    float *probs;               /* (N_eval, M) */
    int *devices;               /* (N_eval) */
    float *xb;                  /* parity batch (cap, C, F, T) */
    int *yb;                    /* parity labels (cap) */
    float *dl;                  /* (cap, M) loss gradient */
    float *good_w, *good_m, *good_v, *good_buf;  /* the last good point */
    struct train_state good_st;
    float *swa;                 /* (n_params) SWA average, or NULL */
    float *saved_p;             /* (n_nodes) dropout p, kept while parity zeroes it */
    struct rng drop_base, bn_base;
    char *opts_json;
    char dir[FS_PATH_MAX];      /* "" without output files */
    char ckpt[FS_PATH_MAX + 32];
    int log_fd, epoch_fd;
    int log_warned;
    double mark;                /* last time st.seconds was advanced */
    double epoch_t0;            /* first step of the epoch in this session */
    long epoch_n, epoch_steps;  /* samples and steps of the epoch in this session */
    const struct distill *kd;   /* distillation targets (borrowed), or NULL */
    struct admm *admm;          /* ADMM toward a structured budget (borrowed), or NULL */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Advance the run's training time to now. */
static void tick(struct trainer *t)
{
    double n = now_s();
    t->st.seconds += n - t->mark;
    t->mark = n;
}

uint64_t train_data_hash(const struct features *f)
{
    struct hash_xxh64 h;
    hash_xxh64_init(&h, 0x62617369ULL);
    int32_t head[5] = {f->n, f->n_channels, f->n_mels, f->n_frames, f->n_classes};
    hash_xxh64_update(&h, head, sizeof head);
    for (int i = 0; i < f->n; i++) {
        int32_t y = f->labels[i];
        hash_xxh64_update(&h, &y, sizeof y);
    }
    hash_xxh64_update(&h, f->x, sizeof(float) * (size_t)f->n * f->n_channels * f->n_mels * f->n_frames);
    return hash_xxh64_digest(&h);
}

/* ----------------------------------------------------------------------------- files */

/* Append one line to a log; a failure is warned about once and training goes on (the
 * checkpoints are what must not fail). */
static void log_line(struct trainer *t, int fd, const char *line)
{
    if (fd < 0) return;
    size_t n = strlen(line), k = 0;
    while (k < n) {
        ssize_t w = write(fd, line + k, n - k);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (!t->log_warned) log_warn("train: cannot write the training log in %s: %s", t->dir, strerror(errno));
            t->log_warned = 1;
            return;
        }
        k += (size_t)w;
    }
}

/* Read a whole small file into a new NUL-terminated buffer (NULL when absent). */
static char *read_text(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = mem_alloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len - 1, f);
        if (len < cap - 1) break;
        char *b = mem_realloc(buf, cap * 2);
        if (!b) {
            mem_free(buf);
            buf = NULL;
            break;
        }
        buf = b, cap *= 2;
    }
    fclose(f);
    if (buf) buf[len] = 0, *n = len;
    return buf;
}

/* Open a log for appending. A new run starts it with its header; a resumed one keeps the
 * header and the rows whose first field is at most keep (rows written after the
 * checkpoint by a run that was killed are dropped). */
static int open_log(const char *path, const char *header, int resume, long keep, int *fd)
{
    char *old = NULL;
    size_t n = 0;
    if (resume) old = read_text(path, &n);
    size_t cap = strlen(header) + 2 + n, len;
    char *text = mem_alloc(cap);
    if (!text) {
        mem_free(old);
        return STATUS_NOMEM;
    }
    len = (size_t)snprintf(text, cap, "%s\n", header);
    const char *line = old ? strchr(old, '\n') : NULL; /* past the old header */
    while (line && *++line) {
        const char *end = strchr(line, '\n');
        if (!end) break; /* a torn last line */
        char *num_end;
        double v = strtod(line, &num_end);
        if (num_end == line || v > (double)keep) break;
        memcpy(text + len, line, (size_t)(end - line + 1));
        len += (size_t)(end - line + 1);
        line = end;
    }
    mem_free(old);
    int s = fs_write_file(path, text, len, 0);
    mem_free(text);
    if (s) return s;
    *fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (*fd < 0) return status_set(STATUS_IO, "%s: %s", path, strerror(errno));
    return STATUS_OK;
}

static int save_with_state(struct trainer *t, const struct model *m, const char *path, int checkpoint)
{
    char *state = NULL;
    t->st.optim_step = t->optim.step;
    int s = train_state_to_json(&t->st, &state);
    const char *meta[] = {"basin.train", t->opts_json, "basin.train_state", state, NULL};
    if (!s) s = model_save(m, path, checkpoint, meta);
    mem_free(state);
    return s;
}

int train_save_checkpoint(struct trainer *t, const char *path)
{
    return save_with_state(t, t->m, path, 1);
}

static void swa_path(const struct trainer *t, int n, char *buf, size_t len)
{
    snprintf(buf, len, "%s/swa-%d.safetensors", t->dir, n);
}

/* The SWA average as a model file of its own (the model with the average as weights). */
static int save_swa(struct trainer *t)
{
    char path[FS_PATH_MAX + 48], meta_n[48];
    swa_path(t, t->st.swa_n, path, sizeof path);
    struct graph gc = *t->g;
    gc.store.w = t->swa;
    struct model mc = *t->m;
    mc.g = &gc;
    snprintf(meta_n, sizeof meta_n, "{\"n\":%d}", t->st.swa_n);
    const char *meta[] = {"basin.swa", meta_n, NULL};
    return model_save(&mc, path, 0, meta);
}

static int load_swa(struct trainer *t)
{
    char path[FS_PATH_MAX + 48];
    swa_path(t, t->st.swa_n, path, sizeof path);
    struct model *sm;
    int s = model_load(&sm, path);
    if (s) return status_prefix(s, "the SWA average of the checkpoint");
    if (sm->g->store.n_params != t->g->store.n_params) {
        model_destroy(sm);
        return status_set(STATUS_MISMATCH, "%s: not the SWA average of this model", path);
    }
    memcpy(t->swa, sm->g->store.w, sizeof(float) * (size_t)t->g->store.n_params);
    model_destroy(sm);
    return STATUS_OK;
}

/* The checkpoint of an epoch end or a stop: the SWA average first (the checkpoint names
 * it), then the checkpoint, then the average it replaced goes. */
static int write_checkpoint(struct trainer *t, int swa_changed)
{
    if (!t->dir[0]) return STATUS_OK;
    int s = STATUS_OK;
    if (swa_changed && t->st.swa_n > 0) s = save_swa(t);
    if (!s) s = save_with_state(t, t->m, t->ckpt, 1);
    if (!s && swa_changed && t->st.swa_n > 1) {
        char old[FS_PATH_MAX + 48];
        swa_path(t, t->st.swa_n - 1, old, sizeof old);
        unlink(old);
    }
    return s;
}

/* With keep_checkpoints: the checkpoint of epoch e kept as checkpoint-<e>.safetensors
 * (e = 0: the start of a new run), for trajectories. */
static int keep_checkpoint(struct trainer *t, int epoch)
{
    if (!t->o.keep_checkpoints || !t->dir[0]) return STATUS_OK;
    char path[FS_PATH_MAX + 48];
    snprintf(path, sizeof path, "%s/checkpoint-%d.safetensors", t->dir, epoch);
    return save_with_state(t, t->m, path, 1);
}

/* ----------------------------------------------------------------------------- create */

const struct train_state *train_get_state(const struct trainer *t)
{
    return &t->st;
}

const struct train_opts *train_get_opts(const struct trainer *t)
{
    return &t->o;
}

const char *train_checkpoint_path(const struct trainer *t)
{
    return t->dir[0] ? t->ckpt : "";
}

void train_destroy(struct trainer *t)
{
    if (!t) return;
    plan_destroy(t->plan);
    batch_iter_destroy(t->it);
    predictor_destroy(t->pred);
    mem_free(t->probs);
    mem_free(t->devices);
    mem_free(t->xb);
    mem_free(t->yb);
    mem_free(t->dl);
    mem_free(t->good_w);
    mem_free(t->good_m);
    mem_free(t->good_v);
    mem_free(t->good_buf);
    mem_free(t->swa);
    mem_free(t->saved_p);
    mem_free(t->opts_json);
    if (t->log_fd >= 0) close(t->log_fd);
    if (t->epoch_fd >= 0) close(t->epoch_fd);
    mem_free(t);
}

/* Keep the current point as the last good one. */
static void keep_good(struct trainer *t)
{
    const struct store *s = &t->g->store;
    memcpy(t->good_w, s->w, sizeof(float) * (size_t)s->n_params);
    memcpy(t->good_m, s->m, sizeof(float) * (size_t)s->n_params);
    memcpy(t->good_v, s->v, sizeof(float) * (size_t)s->n_params);
    memcpy(t->good_buf, s->buf, sizeof(float) * (size_t)s->n_buffers);
    t->st.optim_step = t->optim.step;
    t->good_st = t->st;
}

static void restore_good(struct trainer *t)
{
    const struct store *s = &t->g->store;
    memcpy(s->w, t->good_w, sizeof(float) * (size_t)s->n_params);
    memcpy(s->m, t->good_m, sizeof(float) * (size_t)s->n_params);
    memcpy(s->v, t->good_v, sizeof(float) * (size_t)s->n_params);
    memcpy(s->buf, t->good_buf, sizeof(float) * (size_t)s->n_buffers);
    double seconds = t->st.seconds;
    t->st = t->good_st;
    t->st.seconds = seconds;
    t->optim.step = t->st.optim_step;
}

static int open_output(struct trainer *t, const char *out_dir, int resume)
{
    if (strlen(out_dir) >= sizeof t->dir - 32)
        return status_set(STATUS_INVALID, "train: output folder name too long");
    snprintf(t->dir, sizeof t->dir, "%s", out_dir);
    snprintf(t->ckpt, sizeof t->ckpt, "%s/checkpoint.safetensors", out_dir);
    int s = fs_mkdir_p(out_dir);
    if (s) return s;
    if (!resume && access(t->ckpt, F_OK) == 0)
        return status_set(STATUS_INVALID, "%s already holds a training run (checkpoint.safetensors): resume it, "
                          "or train into another folder", out_dir);
    char path[FS_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/trainlog.tsv", out_dir);
    if ((s = open_log(path, TRAIN_STEP_COLUMNS, resume, t->st.step, &t->log_fd))) return s;
    snprintf(path, sizeof path, "%s/epochs.tsv", out_dir);
    return open_log(path, TRAIN_EPOCH_COLUMNS, resume, t->st.epoch, &t->epoch_fd);
}

static int create_eval(struct trainer *t, const struct features *ev, int bs)
{
    const struct features *tr = t->train;
    if (ev->n_channels != tr->n_channels || ev->n_mels != tr->n_mels || ev->n_frames != tr->n_frames ||
        ev->n_classes != tr->n_classes)
        return status_set(STATUS_MISMATCH, "train: evaluate features (%d, %d, %d; %d classes) differ from the "
                          "training features (%d, %d, %d; %d classes)", ev->n_channels, ev->n_mels, ev->n_frames,
                          ev->n_classes, tr->n_channels, tr->n_mels, tr->n_frames, tr->n_classes);
    int nb = t->o.eval_batch ? t->o.eval_batch : bs;
    if (nb > ev->n) nb = ev->n;
    int s = predictor_create(&t->pred, t->m, nb, ev->n_channels, ev->n_mels, ev->n_frames);
    if (s) return s;
    t->probs = mem_alloc(sizeof(float) * (size_t)ev->n * (size_t)t->m->cfg.classes);
    t->devices = mem_alloc(sizeof(int) * (size_t)ev->n);
    if (!t->probs || !t->devices) return STATUS_NOMEM;
    for (int i = 0; i < ev->n; i++) t->devices[i] = dataset_item(t->ds, ev->items[i])->device;
    t->eval = ev;
    return STATUS_OK;
}

static int create(struct trainer *t, const struct features *train, const struct features *eval,
                  const struct train_state *resume, const char *out_dir)
{
    struct model *m = t->m;
    struct graph *g = t->g;
    const struct train_opts *o = &t->o;
    int M = m->cfg.classes, s;
    if (train->n < 1) return status_set(STATUS_INVALID, "train: no training clips");
    if (train->n_classes != M)
        return status_set(STATUS_MISMATCH, "train: the model has %d classes, the features %d", M, train->n_classes);
    if (train->n_channels != m->cfg.in_ch)
        return status_set(STATUS_MISMATCH, "train: the model takes %d input channel%s, the features have %d",
                          m->cfg.in_ch, m->cfg.in_ch == 1 ? "" : "s", train->n_channels);
    /* batches */
    struct batch_opts bo = o->batch;
    bo.seed = o->seed;
    int bs = bo.batch_size, spe;
    if (o->parity) {
        t->cap = bs;
        spe = (train->n + bs - 1) / bs;
    } else {
        if ((s = batch_iter_create(&t->it, train, &bo))) return s;
        spe = batch_iter_n_batches(t->it);
        t->cap = bs < train->n ? bs : train->n;
    }
    if (spe < 1)
        return status_set(STATUS_INVALID, "train: batches of %d with drop_last leave no batch of the %d training clips",
                          bs, train->n);
    t->n_epochs = train_total_epochs(o, spe);
    if ((s = plan_create(&t->plan, g, t->cap, train->n_channels, train->n_mels, train->n_frames, PLAN_BACKWARD)))
        return s;
    long np = g->store.n_params;
    t->dl = mem_alloc(sizeof(float) * (size_t)t->cap * (size_t)M);
    t->good_w = mem_alloc(sizeof(float) * (size_t)np + 64);
    t->good_m = mem_alloc(sizeof(float) * (size_t)np + 64);
    t->good_v = mem_alloc(sizeof(float) * (size_t)np + 64);
    t->good_buf = mem_alloc(sizeof(float) * (size_t)g->store.n_buffers + 64);
    t->saved_p = mem_alloc(sizeof(float) * (size_t)g->n_nodes);
    if (!t->dl || !t->good_w || !t->good_m || !t->good_v || !t->good_buf || !t->saved_p) return STATUS_NOMEM;
    if (o->parity) {
        t->xb = mem_alloc(sizeof(float) * (size_t)t->cap * train->n_channels * train->n_mels * train->n_frames);
        t->yb = mem_alloc(sizeof(int) * (size_t)t->cap);
        if (!t->xb || !t->yb) return STATUS_NOMEM;
    }
    if (eval && eval->n > 0 && t->ds && o->eval && (s = create_eval(t, eval, bs))) return s;
    if (train_swa_epochs(o, t->n_epochs) > 0) {
        if (!(t->swa = mem_alloc(sizeof(float) * (size_t)np + 64))) return STATUS_NOMEM;
    }
    struct rng base;
    rng_seed(&base, o->seed);
    t->drop_base = rng_split(&base, TAG_DROPOUT);
    t->bn_base = rng_split(&base, TAG_BN_PASS);
    /* state */
    uint64_t hash = train_data_hash(train);
    if (resume) {
        if (resume->data_hash != hash || resume->n_train != train->n)
            return status_set(STATUS_MISMATCH, "train: the checkpoint was trained on %d clips with other features "
                              "(data hash %016llx; these %d clips hash to %016llx): open the same data set, split "
                              "and front end", resume->n_train, (unsigned long long)resume->data_hash, train->n,
                              (unsigned long long)hash);
        if (resume->steps_per_epoch != spe)
            return status_set(STATUS_MISMATCH, "train: the checkpoint has %d steps per epoch, these batches %d",
                              resume->steps_per_epoch, spe);
        t->st = *resume;
    } else {
        t->st = (struct train_state){.steps_per_epoch = spe, .train_loss = -1, .train_acc = -1, .eval_loss = -1,
                                     .eval_acc = -1, .best_eval_acc = -1, .data_hash = hash, .n_train = train->n};
        /* a new run starts its optimiser afresh, whatever the model held */
        memset(g->store.m, 0, sizeof(float) * (size_t)np);
        memset(g->store.v, 0, sizeof(float) * (size_t)np);
    }
    t->st.total_steps = train_total_steps(o, spe);
    t->optim = o->optim;
    t->optim.step = t->st.optim_step;
    if ((s = train_opts_to_json(o, &t->opts_json))) return s;
    if (out_dir && (s = open_output(t, out_dir, resume != NULL))) return s;
    if (!resume && (s = keep_checkpoint(t, 0))) return s;
    if (resume && t->st.swa_n > 0) {
        if (!t->swa || !t->dir[0])
            return status_set(STATUS_INVALID, "train: the checkpoint holds an SWA average but no folder to read it from");
        if ((s = load_swa(t))) return s;
    }
    keep_good(t);
    return STATUS_OK;
}

int train_create(struct trainer **out, struct model *m, const struct features *train,
                 const struct features *eval, const struct dataset *ds,
                 const struct train_opts *o, const struct train_state *resume,
                 const char *out_dir)
{
    *out = NULL;
    int s = train_opts_validate(o);
    if (s) return s;
    struct trainer *t = mem_calloc(1, sizeof *t);
    if (!t) return STATUS_NOMEM;
    t->m = m;
    t->g = m->g;
    t->train = train;
    t->ds = ds;
    t->o = *o;
    t->log_fd = t->epoch_fd = -1;
    if (!t->o.threads) t->o.threads = threads_get();
    int pin = threads_pin(t->o.threads);
    s = create(t, train, eval, resume, out_dir);
    threads_pin(pin);
    if (s) {
        train_destroy(t);
        return s;
    }
    *out = t;
    return STATUS_OK;
}

int train_checkpoint_load(const char *path, struct model **m, struct train_opts *o,
                          struct train_state *st)
{
    *m = NULL;
    struct st_file *f;
    int s = st_load(path, &f);
    if (s) return s;
    const char *jo = st_meta(f, "basin.train"), *js = st_meta(f, "basin.train_state");
    char label[FS_PATH_MAX + 32];
    if (!jo || !js) {
        s = status_set(STATUS_FORMAT, "%s: not a training checkpoint (no basin.train_state metadata)", path);
    } else {
        snprintf(label, sizeof label, "%s: basin.train", path);
        s = train_opts_from_json(o, jo, label);
        snprintf(label, sizeof label, "%s: basin.train_state", path);
        if (!s) s = train_state_from_json(st, js, label);
    }
    st_destroy(f);
    if (!s) s = model_load(m, path);
    return s;
}

/* ----------------------------------------------------------------------------- run */

/* The first element of x (n) that is not finite, or -1. */
static long first_bad(const float *x, long n)
{
    for (long i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}

/* The name of the tensor holding element i of the parameters (buffers when buf). */
static const char *tensor_at(const struct graph *g, long i, int buf)
{
    for (int k = 0; k < g->n_tensors; k++) {
        const struct graph_tensor *tt = &g->tensors[k];
        if (tensor_kind_is_param(tt->kind) == !buf && i >= tt->offset && i < tt->offset + tt->numel) return tt->name;
    }
    return "?";
}

/* Stop on a non-finite value: restore the last good point and say so. */
static int numeric_stop(struct trainer *t, const char *what)
{
    long step = t->st.step + 1;
    int epoch = t->st.epoch + 1, batch = t->st.batch + 1;
    char where[96];
    restore_good(t);
    if (t->st.batch == 0)
        snprintf(where, sizeof where, "the start of epoch %d", t->st.epoch + 1);
    else
        snprintf(where, sizeof where, "where this run resumed, epoch %d batch %d", t->st.epoch + 1, t->st.batch);
    return status_set(STATUS_NUMERIC, "step %ld (epoch %d, batch %d): %s; restored the weights of step %ld (%s)",
                      step, epoch, batch, what, t->st.step, where);
}

static void fill_parity_batch(struct trainer *t)
{
    const struct features *f = t->train;
    long clip = (long)f->n_channels * f->n_mels * f->n_frames;
    for (int i = 0; i < t->cap; i++) {
        int row = (int)(((long)t->st.step * t->cap + i) % f->n);
        memcpy(t->xb + i * clip, f->x + row * clip, sizeof(float) * (size_t)clip);
        t->yb[i] = f->labels[row];
    }
}

static int one_step(struct trainer *t, struct train_step_report *r)
{
    struct graph *g = t->g;
    struct store *st = &g->store;
    const int M = t->m->cfg.classes, spe = t->st.steps_per_epoch;
    const float *x, *targets = NULL, *lambda = NULL;
    const int *labels, *rows = NULL, *partner = NULL;
    int n;
    if (t->o.parity) {
        fill_parity_batch(t);
        x = t->xb, labels = t->yb, n = t->cap;
    } else {
        const struct batch *b = batch_iter_get(t->it, t->st.batch);
        x = b->x, labels = b->labels, targets = b->targets, n = b->n;
        rows = b->rows, partner = b->partner, lambda = b->lambda;
    }
    long k = t->st.step;
    double lr = train_lr_at(&t->o, spe, k);
    t->optim.lr = (float)lr;
    struct rng drop = rng_split(&t->drop_base, (uint64_t)k);
    int s = plan_forward(t->plan, n, x, 1, &drop);
    if (s) return s;
    const float *logits = plan_output(t->plan);
    const int *hard = targets ? NULL : labels;
    double loss = t->o.loss == TRAIN_LOSS_FOCAL
                      ? loss_focal(n, M, logits, hard, targets, (float)t->o.focal_gamma, t->dl)
                      : loss_cross_entropy(n, M, logits, hard, targets, t->dl);
    if (t->kd) loss = distill_loss(t->kd, n, logits, rows, partner, lambda, loss, t->dl);
    int correct = loss_correct(n, M, logits, labels);
    char what[160];
    if (!isfinite(loss)) {
        snprintf(what, sizeof what, "the loss is %g", loss);
        return numeric_stop(t, what);
    }
    if ((s = plan_backward(t->plan, t->dl, NULL))) return s;
    if (t->admm) admm_gradient(t->admm, st->w, st->g);
    double ss = 0;
    for (long i = 0; i < st->n_params; i++) ss += (double)st->g[i] * st->g[i];
    double norm = sqrt(ss);
    if (!isfinite(norm)) {
        long i = first_bad(st->g, st->n_params);
        snprintf(what, sizeof what, "the gradient of '%s' is not finite", i >= 0 ? tensor_at(g, i, 0) : "?");
        return numeric_stop(t, what);
    }
    if (t->o.clip_norm > 0) {
        double c = t->o.clip_norm / (norm + 1e-6);
        if (c < 1) {
            float cf = (float)c;
            for (long i = 0; i < st->n_params; i++) st->g[i] *= cf;
        }
    }
    optim_step(&t->optim, st->n_params, st->w, st->g, st->m, st->v, g->masked ? st->mask : NULL);
    /* the step is complete: account for it */
    t->st.batch++;
    t->st.step++;
    t->st.optim_step = t->optim.step;
    t->st.lr = lr;
    t->st.loss_sum += loss * n;
    t->st.correct += correct;
    t->st.seen += n;
    tick(t);
    t->epoch_n += n;
    t->epoch_steps++;
    double dt = t->mark - t->epoch_t0;
    double rate = dt > 0 ? t->epoch_n / dt : 0;
    long left = t->st.total_steps - t->st.step;
    *r = (struct train_step_report){
        .epoch = t->st.epoch + 1,
        .n_epochs = t->n_epochs,
        .batch = t->st.batch,
        .steps_per_epoch = spe,
        .step = t->st.step,
        .total_steps = t->st.total_steps,
        .n = n,
        .loss = loss,
        .acc = (double)correct / n,
        .epoch_loss = t->st.loss_sum / (double)t->st.seen,
        .epoch_acc = (double)t->st.correct / (double)t->st.seen,
        .lr = lr,
        .grad_norm = norm,
        .samples_per_s = rate,
        .eta_s = t->epoch_steps ? left * dt / t->epoch_steps : 0,
        .elapsed_s = t->st.seconds,
    };
    char line[256];
    snprintf(line, sizeof line, "%ld\t%d\t%d\t%.9g\t%.9g\t%.6g\t%.9g\t%.1f\t%.3f\n", r->step, r->epoch, r->batch,
             lr, loss, r->acc, norm, rate, t->st.seconds);
    log_line(t, t->log_fd, line);
    return STATUS_OK;
}

/* Recompute the BN running statistics of the current weights: one pass over the training
 * features in train mode, without augmentation, each batch weighing the same, on the run's
 * plan (compress_update_bn; ref: torch.optim.swa_utils.update_bn with momentum None: 1/k
 * for batch k, over the shuffled train loader, where basin's batches each sample the
 * whole split in a fixed order). */
static int recompute_bn(struct trainer *t)
{
    const struct features *f = t->train;
    struct rng r = t->bn_base;
    struct bnstats_report rep;
    return compress_update_bn(t->m, t->plan, f->x, f->n, f->n_channels, f->n_mels, f->n_frames, f->n, t->cap,
                              rng_u64(&r), NULL, &rep);
}

static int end_epoch(struct trainer *t, const struct train_callbacks *cb, const struct progress *p, int *stop)
{
    struct graph *g = t->g;
    struct store *st = &g->store;
    double t0 = t->epoch_t0;
    int e = t->st.epoch; /* 0-based, ending */
    char what[160];
    long i = first_bad(st->w, st->n_params);
    if (i >= 0) {
        snprintf(what, sizeof what, "epoch %d ended with a non-finite weight in '%s'", e + 1, tensor_at(g, i, 0));
        t->st.step--, t->st.batch--; /* numeric_stop names the last step */
        return numeric_stop(t, what);
    }
    if ((i = first_bad(st->buf, st->n_buffers)) >= 0) {
        snprintf(what, sizeof what, "epoch %d ended with a non-finite BN statistic in '%s'", e + 1, tensor_at(g, i, 1));
        t->st.step--, t->st.batch--;
        return numeric_stop(t, what);
    }
    struct train_epoch_report r = {.epoch = e + 1, .n_epochs = t->n_epochs, .step = t->st.step, .lr = t->st.lr};
    r.train_loss = t->st.seen ? t->st.loss_sum / (double)t->st.seen : 0;
    r.train_acc = t->st.seen ? (double)t->st.correct / (double)t->st.seen : 0;
    int swa_changed = 0, s;
    if (t->swa && train_swa_at(&t->o, t->n_epochs, e)) {
        long np = st->n_params;
        if (t->st.swa_n == 0) {
            memcpy(t->swa, st->w, sizeof(float) * (size_t)np);
        } else {
            float k = (float)(t->st.swa_n + 1);
            for (long j = 0; j < np; j++) t->swa[j] += (st->w[j] - t->swa[j]) / k;
        }
        t->st.swa_n++;
        swa_changed = 1;
    }
    int last = e + 1 >= t->n_epochs || t->st.step >= t->st.total_steps;
    if (last && t->swa && t->st.swa_n > 0) {
        memcpy(st->w, t->swa, sizeof(float) * (size_t)st->n_params);
        if ((s = recompute_bn(t))) return s;
        r.swa_final = 1;
    } else if (last && t->o.bn_final) {
        if ((s = recompute_bn(t))) return s;
        r.bn_final = 1;
    }
    struct eval_result *ev = NULL;
    if (t->pred) {
        s = predictor_probs(t->pred, t->eval->n, t->eval->x, t->probs, p);
        if (s == STATUS_CANCELLED) *stop = 1;
        else if (!s) s = eval_from_probs(&ev, t->eval->n, t->m->cfg.classes, t->probs, t->eval->labels, t->devices, t->ds);
        if (s && s != STATUS_CANCELLED) return s;
        status_clear();
    }
    /* the state of the next epoch's start */
    t->st.epoch++;
    t->st.batch = 0;
    t->st.loss_sum = 0;
    t->st.correct = t->st.seen = 0;
    t->st.train_loss = r.train_loss;
    t->st.train_acc = r.train_acc;
    t->st.eval_loss = ev ? ev->all.logloss : -1;
    t->st.eval_acc = ev ? ev->all.acc : -1;
    if (ev && ev->all.acc > t->st.best_eval_acc) t->st.best_eval_acc = ev->all.acc, t->st.best_epoch = e + 1;
    if (last) t->st.done = 1;
    tick(t);
    r.seconds = t->mark - t0;
    r.elapsed_s = t->st.seconds;
    r.swa_n = t->st.swa_n;
    r.eval = ev;
    char line[512];
    const double nanv = NAN;
    snprintf(line, sizeof line, "%d\t%ld\t%.9g\t%.9g\t%.6g\t%.9g\t%.6g\t%.9g\t%.6g\t%.6g\t%.6g\t%d\t%.3f\t%.3f\n",
             e + 1, t->st.step, t->st.lr, r.train_loss, r.train_acc, ev ? ev->all.logloss : nanv,
             ev ? ev->all.acc : nanv, ev ? ev->logloss_macro : nanv, ev ? ev->acc_macro : nanv,
             ev && ev->seen.n ? ev->seen.acc : nanv, ev && ev->unseen.n ? ev->unseen.acc : nanv, t->st.swa_n,
             r.seconds, t->st.seconds);
    log_line(t, t->epoch_fd, line);
    s = STATUS_OK;
    if (t->dir[0]) {
        if (last) {
            char path[FS_PATH_MAX + 32];
            snprintf(path, sizeof path, "%s/model.safetensors", t->dir);
            s = save_with_state(t, t->m, path, 0);
        }
        if (!s) s = write_checkpoint(t, swa_changed);
        if (!s) s = keep_checkpoint(t, e + 1);
        if (!s) r.checkpoint = t->ckpt;
    }
    if (!s && cb && cb->epoch && cb->epoch(cb->user, &r) == TRAIN_STOP) *stop = 1;
    eval_result_destroy(ev);
    if (!s) keep_good(t);
    return s;
}

static int run_loop(struct trainer *t, const struct train_callbacks *cb, const struct progress *p)
{
    const long total = t->st.total_steps;
    const int spe = t->st.steps_per_epoch;
    int it_epoch = -1, s;
    t->mark = now_s();
    while (t->st.step < total) {
        if (it_epoch != t->st.epoch) {
            if (t->it) batch_iter_epoch(t->it, t->st.epoch);
            it_epoch = t->st.epoch;
            t->epoch_t0 = now_s();
            t->epoch_n = t->epoch_steps = 0;
            /* pruning at an epoch's start only: a run resumed mid-epoch has its masks */
            if (t->st.batch == 0 && (s = prune_epoch(t->g, &t->o.prune, t->st.epoch))) return s;
            if (t->admm && t->st.batch == 0 && t->st.epoch > 0 && (s = admm_update(t->admm))) return s;
        }
        struct train_step_report r;
        if ((s = one_step(t, &r))) return s;
        int action = cb && cb->step ? cb->step(cb->user, &r) : TRAIN_GO_ON;
        if (!progress_report(p, "train", t->st.step, total)) action = TRAIN_STOP;
        int saved = 0, stop = action == TRAIN_STOP;
        if (t->st.batch >= spe || t->st.step >= total) {
            if ((s = end_epoch(t, cb, p, &stop))) return s;
            saved = 1;
            if (t->st.done) return STATUS_OK;
        }
        if ((stop || action == TRAIN_SAVE) && !saved && (s = write_checkpoint(t, 0))) return s;
        if (stop)
            return status_set(STATUS_CANCELLED, "stopped after step %ld (epoch %d, batch %d of %d)", t->st.step,
                              t->st.batch ? t->st.epoch + 1 : t->st.epoch, t->st.batch ? t->st.batch : spe, spe);
    }
    return STATUS_OK;
}

int train_set_distill(struct trainer *t, const struct distill *d)
{
    if (d && t->o.parity) return status_set(STATUS_INVALID, "train: the parity protocol does not distil");
    if (d && (d->n != t->train->n || d->m != t->m->cfg.classes))
        return status_set(STATUS_MISMATCH, "train: the teacher's targets are for %d clips of %d classes, "
                          "the run has %d of %d", d->n, d->m, t->train->n, t->m->cfg.classes);
    t->kd = d;
    return STATUS_OK;
}

int train_set_admm(struct trainer *t, struct admm *a)
{
    if (a && t->o.parity) return status_set(STATUS_INVALID, "train: the parity protocol does not use ADMM");
    if (a && a->m != t->m) return status_set(STATUS_MISMATCH, "train: the ADMM state is for another model");
    t->admm = a;
    return STATUS_OK;
}

int train_run(struct trainer *t, const struct train_callbacks *cb, const struct progress *p)
{
    if (t->st.done || t->st.step >= t->st.total_steps) return STATUS_OK;
    int pin = threads_pin(t->o.threads);
    struct graph *g = t->g;
    if (t->o.parity)
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].op == OP_DROPOUT) t->saved_p[i] = g->nodes[i].p, g->nodes[i].p = 0;
    int s = run_loop(t, cb, p);
    if (t->o.parity)
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].op == OP_DROPOUT) g->nodes[i].p = t->saved_p[i];
    threads_pin(pin);
    return s;
}
