/* test_train.c: the training loop (src/train/train.h) and the train / resume commands:
 * schedules worked by hand, options and state as JSON, gradient clipping, determinism,
 * cancellation at a step boundary, resumption (in process, and through the binary after
 * SIGKILL), SWA with the BN recompute, a NaN and the last good point, the logs' columns,
 * option errors, and parity with PyTorch (skipped without /usr/bin/python3 and torch). */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "basin/core/graph.h"
#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/data/features.h"
#include "basin/model/model.h"
#include "basin/model/safetensors.h"
#include "basin/train/train.h"
#include "test.h"
#include "util.h"

/* ----------------------------------------------------------------------------- fixtures */

/* n clips of (c, f, t): noise plus a class-dependent offset on a band of bins, so there is
 * something to learn; labels i % m. */
static struct features *feats(int n, int c, int f, int t, int m, uint64_t seed)
{
    struct features *x = mem_calloc(1, sizeof *x);
    if (!x) return NULL;
    x->n = n, x->n_channels = c, x->n_mels = f, x->n_frames = t, x->n_classes = m;
    long clip = (long)c * f * t;
    x->x = mem_alloc(sizeof(float) * (size_t)(n * clip));
    x->labels = mem_alloc(sizeof(int) * (size_t)n);
    x->items = mem_alloc(sizeof(int) * (size_t)n);
    if (!x->x || !x->labels || !x->items) {
        features_destroy(x);
        return NULL;
    }
    struct rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        x->labels[i] = i % m;
        x->items[i] = i;
        float *p = x->x + i * clip;
        rng_fill_normal(&r, p, clip, 0, 1);
        for (int ch = 0; ch < c; ch++)
            for (int b = 0; b < f; b++)
                if (b % m == x->labels[i])
                    for (int j = 0; j < t; j++) p[((long)ch * f + b) * t + j] += 1.0f;
    }
    return x;
}

/* A tiny sepnet (dropout, bn0) or cpresnet (no dropout) for 3 classes. */
static struct model *tiny(enum arch a, int mels, uint64_t seed)
{
    struct model_config c;
    model_config_default(&c, a);
    c.classes = 3;
    if (a == ARCH_SEPNET) {
        c.mels = mels;
        c.n_channels = 4;
        c.channels[0] = 4, c.channels[1] = 8, c.channels[2] = 8, c.channels[3] = 8;
    } else {
        c.width = 4;
        c.rho = 4;
        c.blocks[0] = 1, c.blocks[1] = 1, c.blocks[2] = 1;
    }
    struct model *m;
    return model_create(&m, &c, seed) ? NULL : m;
}

static void quick_opts(struct train_opts *o, int epochs, int bs)
{
    train_opts_default(o);
    o->epochs = epochs;
    o->batch.batch_size = bs;
    o->threads = 2;
    o->eval = 0;
}

/* The opts of the determinism and resume cases: every random draw there is (shuffle,
 * roll, gain, mixup, SpecAugment, dropout), a schedule with warm-up, clipping, SWA. */
static void busy_opts(struct train_opts *o, int epochs)
{
    quick_opts(o, epochs, 5);
    o->batch.roll_frames = 3;
    o->batch.gain_db = 2;
    o->batch.mixup = BATCH_MIXUP_SAMPLE;
    o->batch.mixup_alpha = 0.3;
    o->batch.time_stripes = 1, o->batch.time_width = 4;
    o->batch.freq_stripes = 1, o->batch.freq_width = 3;
    o->optim.lr = 3e-3f;
    o->sched = TRAIN_SCHED_COSINE;
    o->warmup_epochs = 0.5;
    o->clip_norm = 5;
    o->swa_epochs = 3;
    o->seed = 77;
}

static int same_store(const struct model *a, const struct model *b)
{
    const struct store *x = &a->g->store, *y = &b->g->store;
    return x->n_params == y->n_params && x->n_buffers == y->n_buffers &&
           !memcmp(x->w, y->w, sizeof(float) * (size_t)x->n_params) &&
           !memcmp(x->buf, y->buf, sizeof(float) * (size_t)x->n_buffers);
}

static int stop_at;   /* the step callback stops after this step (0: never) */
static int stop_cb(void *user, const struct train_step_report *r)
{
    (void)user;
    return stop_at && r->step == stop_at ? TRAIN_STOP : TRAIN_GO_ON;
}

/* ----------------------------------------------------------------------------- schedules */

static void test_schedules_by_hand(void)
{
    struct train_opts o;
    train_opts_default(&o);
    o.optim.lr = 1e-4f;
    const double lr = (double)1e-4f;
    /* CP-JKU's linear schedule, 350 epochs: lr to 50, lr (1 - (e - 50)/200) to 250, lr/100 */
    o.epochs = 350;
    o.sched = TRAIN_SCHED_LINEAR;
    EXPECT_NEAR(train_lr_at(&o, 1, 0), lr, 1e-18);
    EXPECT_NEAR(train_lr_at(&o, 1, 49), lr, 1e-18);
    EXPECT_NEAR(train_lr_at(&o, 1, 50), lr, 1e-18);
    EXPECT_NEAR(train_lr_at(&o, 1, 150), lr / 2, 1e-18);
    EXPECT_NEAR(train_lr_at(&o, 1, 249), lr / 200, 1e-18);
    EXPECT_NEAR(train_lr_at(&o, 1, 250), lr / 100, 1e-18);
    EXPECT_NEAR(train_lr_at(&o, 1, 349), lr / 100, 1e-18);
    /* per epoch, whatever the steps: epoch 150 of 10 steps each */
    EXPECT_NEAR(train_lr_at(&o, 10, 1505), lr / 2, 1e-18);
    /* explicit window and floor */
    o.decay_start = 2, o.decay_end = 6, o.lr_min = 1e-7, o.epochs = 10;
    EXPECT_NEAR(train_lr_at(&o, 1, 3), lr * 0.75, 1e-18);
    EXPECT_NEAR(train_lr_at(&o, 1, 6), 1e-7, 1e-20);
    /* SP4ASC's cosine: 200 epochs from 1e-3 to 1e-5 */
    train_opts_preset(&o, "sp4asc");
    const double l3 = (double)1e-3f;
    EXPECT_NEAR(train_lr_at(&o, 7, 0), l3, 1e-15);
    EXPECT_NEAR(train_lr_at(&o, 7, 7 * 100), (l3 + 1e-5) / 2, 1e-15);
    EXPECT_NEAR(train_lr_at(&o, 7, 7 * 50), 1e-5 + (l3 - 1e-5) * (1 + cos(M_PI / 4)) / 2, 1e-15);
    EXPECT_NEAR(train_lr_at(&o, 7, 7 * 199 + 6), 1e-5 + (l3 - 1e-5) * (1 + cos(M_PI * 199 / 200)) / 2, 1e-15);
    /* cosine default floor lr / 100 */
    o.lr_min = -1;
    EXPECT_NEAR(train_lr_at(&o, 1, 100), (l3 + l3 / 100) / 2, 1e-15);
    /* step: gamma 0.1 every 10 epochs */
    train_opts_default(&o);
    o.epochs = 30, o.sched = TRAIN_SCHED_STEP, o.step_every = 10;
    const double l = (double)1e-3f;
    EXPECT_NEAR(train_lr_at(&o, 2, 19), l, 1e-18);
    EXPECT_NEAR(train_lr_at(&o, 2, 20), l * 0.1, 1e-18);
    EXPECT_NEAR(train_lr_at(&o, 2, 51), l * 0.01, 1e-18);
    o.step_every = 0; /* default: E / 3 = 10 */
    EXPECT_NEAR(train_lr_at(&o, 1, 10), l * 0.1, 1e-18);
    /* warm-up of 2 epochs of 5 steps, on the constant schedule: (k + 1) / 10 */
    train_opts_default(&o);
    o.warmup_epochs = 2;
    EXPECT_NEAR(train_lr_at(&o, 5, 0), l / 10, 1e-18);
    EXPECT_NEAR(train_lr_at(&o, 5, 4), l / 2, 1e-18);
    EXPECT_NEAR(train_lr_at(&o, 5, 9), l, 1e-18);
    EXPECT_NEAR(train_lr_at(&o, 5, 10), l, 1e-18);
    /* steps instead of epochs: E = ceil(steps / steps per epoch) */
    o.steps = 11, o.epochs = 0;
    EXPECT_EQ_INT(train_total_epochs(&o, 5), 3);
    EXPECT_EQ_INT(train_total_steps(&o, 5), 11);
    /* SWA windows: CP-JKU's auto window is the 100 epochs after the decay, every 3rd */
    train_opts_preset(&o, "cpjku");
    EXPECT_EQ_INT(train_swa_epochs(&o, 350), 100);
    EXPECT(train_swa_at(&o, 350, 349) && train_swa_at(&o, 350, 346) && train_swa_at(&o, 350, 250));
    EXPECT(!train_swa_at(&o, 350, 347) && !train_swa_at(&o, 350, 249) && !train_swa_at(&o, 350, 247));
    train_opts_default(&o);
    o.swa_epochs = 2;
    EXPECT(!train_swa_at(&o, 10, 7) && train_swa_at(&o, 10, 8) && train_swa_at(&o, 10, 9));
}

static void test_opts_and_state_round_trip_and_validation(void)
{
    struct train_opts o, back;
    REQUIRE_OK(train_opts_preset(&o, "cpjku"));
    o.seed = 0xfedcba9876543210ULL;
    o.focal_gamma = 0.1;
    o.optim.beta2 = 0.98f;
    char *json;
    REQUIRE_OK(train_opts_to_json(&o, &json));
    REQUIRE_OK(train_opts_from_json(&back, json, "test"));
    EXPECT(!memcmp(&o, &back, sizeof o)); /* every field, padding zeroed by both */
    EXPECT(strstr(json, "\"sched\":\"linear\"") && strstr(json, "\"mixup\":\"sample\""));
    mem_free(json);
    struct train_state s, s2;
    memset(&s, 0, sizeof s); /* padding too, for the memcmp */
    s.epoch = 3, s.batch = 2, s.step = 38, s.optim_step = 38, s.steps_per_epoch = 12, s.total_steps = 120;
    s.lr = 0.1 / 3, s.loss_sum = 12.25, s.correct = 7, s.seen = 10, s.swa_n = 1, s.seconds = 1.5;
    s.train_loss = 0.7, s.train_acc = 0.5, s.eval_loss = -1, s.eval_acc = -1, s.best_eval_acc = -1;
    s.best_epoch = 2, s.data_hash = 0x8000000000000001ULL, s.n_train = 99;
    REQUIRE_OK(train_state_to_json(&s, &json));
    REQUIRE_OK(train_state_from_json(&s2, json, "test"));
    EXPECT(!memcmp(&s, &s2, sizeof s));
    mem_free(json);
    EXPECT_EQ_INT(train_opts_from_json(&back, "{\"sched\":\"zigzag\"}", "ckpt"), STATUS_FORMAT);
    EXPECT(strstr(status_detail(), "ckpt") && strstr(status_detail(), "zigzag"));
    /* validation */
    train_opts_default(&o);
    o.steps = 10;
    o.swa_epochs = 2;
    EXPECT_EQ_INT(train_opts_validate(&o), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "swa") != NULL);
    train_opts_default(&o);
    o.parity = 1;
    EXPECT_EQ_INT(train_opts_validate(&o), STATUS_INVALID);
    train_opts_default(&o);
    o.optim.lr = 0;
    EXPECT_EQ_INT(train_opts_validate(&o), STATUS_INVALID);
    train_opts_default(&o);
    o.swa_epochs = 11;
    EXPECT_EQ_INT(train_opts_validate(&o), STATUS_INVALID);
    EXPECT_EQ_INT(train_opts_preset(&o, "imagenet"), STATUS_NOT_FOUND);
}

/* ----------------------------------------------------------------------------- the loop */

static double store_g_norm(const struct model *m)
{
    double s = 0;
    for (long i = 0; i < m->g->store.n_params; i++) s += (double)m->g->store.g[i] * m->g->store.g[i];
    return sqrt(s);
}

static double last_grad_norm;
static int record_norm(void *user, const struct train_step_report *r)
{
    (void)user;
    last_grad_norm = r->grad_norm;
    return TRAIN_GO_ON;
}

/* Clipping: the gradient the optimiser gets has the clip norm; plain SGD with lr 1 then
 * moves the weights by exactly that vector. */
static void test_gradient_clipping(void)
{
    struct model *m = tiny(ARCH_CPRESNET, 20, 3);
    struct features *f = feats(8, 1, 20, 24, 3, 4);
    REQUIRE(m && f);
    struct train_opts o;
    quick_opts(&o, 1, 8);
    o.steps = 1, o.epochs = 0;
    optim_init(&o.optim, OPTIM_SGD);
    o.optim.lr = 1;
    o.clip_norm = 1e-3;
    o.batch.shuffle = 0;
    long np = m->g->store.n_params;
    float *w0 = malloc(sizeof(float) * (size_t)np);
    REQUIRE(w0);
    memcpy(w0, m->g->store.w, sizeof(float) * (size_t)np);
    struct trainer *t;
    REQUIRE_OK(train_create(&t, m, f, NULL, NULL, &o, NULL, NULL));
    struct train_callbacks cb = {record_norm, NULL, NULL};
    REQUIRE_OK(train_run(t, &cb, NULL));
    EXPECT(last_grad_norm > 1e-2); /* reported before clipping */
    EXPECT_NEAR(store_g_norm(m), 1e-3, 1e-8);
    double dw = 0;
    for (long i = 0; i < np; i++) dw += ((double)m->g->store.w[i] - w0[i]) * ((double)m->g->store.w[i] - w0[i]);
    EXPECT_NEAR(sqrt(dw), 1e-3, 1e-6);
    train_destroy(t);
    /* a clip above the norm changes nothing: the gradient keeps its norm */
    model_destroy(m);
    m = tiny(ARCH_CPRESNET, 20, 3);
    REQUIRE(m);
    o.clip_norm = 1e6;
    REQUIRE_OK(train_create(&t, m, f, NULL, NULL, &o, NULL, NULL));
    REQUIRE_OK(train_run(t, &cb, NULL));
    EXPECT_NEAR(store_g_norm(m), last_grad_norm, 1e-6 * last_grad_norm);
    train_destroy(t);
    free(w0);
    model_destroy(m);
    features_destroy(f);
}

/* The same seed and threads give the same weights bit for bit, with every random draw on;
 * another seed does not. */
static void test_deterministic(void)
{
    struct features *f = feats(23, 1, 16, 20, 3, 5);
    REQUIRE(f);
    struct model *m[3];
    for (int k = 0; k < 3; k++) {
        m[k] = tiny(ARCH_SEPNET, 16, 9);
        REQUIRE(m[k]);
        struct train_opts o;
        busy_opts(&o, 4);
        if (k == 2) o.seed = 78;
        struct trainer *t;
        REQUIRE_OK(train_create(&t, m[k], f, NULL, NULL, &o, NULL, NULL));
        REQUIRE_OK(train_run(t, NULL, NULL));
        EXPECT_EQ_INT(train_get_state(t)->step, 20);
        EXPECT_EQ_INT(train_get_state(t)->done, 1);
        train_destroy(t);
    }
    EXPECT(same_store(m[0], m[1]));
    EXPECT(!same_store(m[0], m[2]));
    for (int k = 0; k < 3; k++) model_destroy(m[k]);
    features_destroy(f);
}

static float *snap_w;   /* weights and BN statistics kept by snap_cb at snap_step */
static float *snap_buf;
static long snap_step;
static struct model *snap_model;
static int snap_cb(void *user, const struct train_step_report *r)
{
    (void)user;
    if (r->step == snap_step) {
        memcpy(snap_w, snap_model->g->store.w, sizeof(float) * (size_t)snap_model->g->store.n_params);
        memcpy(snap_buf, snap_model->g->store.buf, sizeof(float) * (size_t)snap_model->g->store.n_buffers);
    }
    return stop_cb(user, r);
}

/* A stop mid-epoch leaves exactly the weights and BN statistics of that step (those an
 * uninterrupted run has there), writes a checkpoint, and a trainer made from the
 * checkpoint ends with the weights of the uninterrupted run, its SWA average included;
 * the logs are cut back and continued so they hold every step once. */
static void test_cancel_and_resume_in_process(void)
{
    struct features *f = feats(23, 1, 16, 20, 3, 5);
    struct model *a = tiny(ARCH_SEPNET, 16, 9), *b = tiny(ARCH_SEPNET, 16, 9);
    REQUIRE(f && a && b);
    struct train_opts o;
    busy_opts(&o, 4); /* 5 steps an epoch, SWA over epochs 2..4 */
    char da[600], db[600], ck[700];
    snprintf(da, sizeof da, "%s", test_path("resume-a"));
    snprintf(db, sizeof db, "%s", test_path("resume-b"));
    snap_w = malloc(sizeof(float) * (size_t)a->g->store.n_params);
    snap_buf = malloc(sizeof(float) * (size_t)a->g->store.n_buffers);
    REQUIRE(snap_w && snap_buf);
    /* a: uninterrupted, keeping step 12's weights */
    struct trainer *t;
    REQUIRE_OK(train_create(&t, a, f, NULL, NULL, &o, NULL, da));
    snap_step = 12, snap_model = a, stop_at = 0;
    struct train_callbacks cb = {snap_cb, NULL, NULL};
    REQUIRE_OK(train_run(t, &cb, NULL));
    train_destroy(t);
    /* b: stopped after step 12 (epoch 3, batch 2; one model in the SWA average) */
    REQUIRE_OK(train_create(&t, b, f, NULL, NULL, &o, NULL, db));
    stop_at = 12;
    struct train_callbacks stop = {stop_cb, NULL, NULL};
    int s = train_run(t, &stop, NULL);
    stop_at = 0;
    EXPECT_EQ_INT(s, STATUS_CANCELLED);
    EXPECT_MSG(strstr(status_detail(), "after step 12 (epoch 3, batch 2 of 5)") != NULL, "%s", status_detail());
    EXPECT_EQ_INT(train_get_state(t)->step, 12);
    EXPECT_EQ_INT(train_get_state(t)->swa_n, 1);
    EXPECT(!memcmp(snap_w, b->g->store.w, sizeof(float) * (size_t)b->g->store.n_params));
    EXPECT(!memcmp(snap_buf, b->g->store.buf, sizeof(float) * (size_t)b->g->store.n_buffers));
    train_destroy(t);
    /* a new run may not reuse the folder */
    EXPECT_EQ_INT(train_create(&t, b, f, NULL, NULL, &o, NULL, db), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "already holds a training run") != NULL);
    /* resume from the checkpoint into a fresh model object */
    struct model *c;
    struct train_opts oc;
    struct train_state sc;
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", db);
    REQUIRE_OK(train_checkpoint_load(ck, &c, &oc, &sc));
    EXPECT_EQ_INT(sc.step, 12);
    EXPECT_EQ_INT(sc.batch, 2);
    EXPECT(!memcmp(&oc, &o, sizeof o));
    /* the wrong data is refused */
    struct features *other = feats(23, 1, 16, 20, 3, 6);
    REQUIRE(other);
    EXPECT_EQ_INT(train_create(&t, c, other, NULL, NULL, &oc, &sc, db), STATUS_MISMATCH);
    EXPECT(strstr(status_detail(), "other features") != NULL);
    features_destroy(other);
    REQUIRE_OK(train_create(&t, c, f, NULL, NULL, &oc, &sc, db));
    REQUIRE_OK(train_run(t, NULL, NULL));
    EXPECT_EQ_INT(train_get_state(t)->swa_n, 3);
    train_destroy(t);
    EXPECT_MSG(same_store(a, c), "the resumed run's weights differ from the uninterrupted run's");
    /* the logs: every step once, the same losses */
    char pa[700], pb[700], la[8192], lb[8192], cmd[1600];
    snprintf(pa, sizeof pa, "%s/trainlog.tsv", da);
    snprintf(pb, sizeof pb, "%s/trainlog.tsv", db);
    snprintf(cmd, sizeof cmd, "cut -f1-7 '%s'", pa);
    EXPECT_EQ_INT(shell_output(cmd, la, sizeof la), 0);
    snprintf(cmd, sizeof cmd, "cut -f1-7 '%s'", pb);
    EXPECT_EQ_INT(shell_output(cmd, lb, sizeof lb), 0);
    EXPECT_STR(lb, la);
    EXPECT_EQ_INT(count_char(la, '\n'), 21);
    snprintf(cmd, sizeof cmd, "cut -f1-5,12 '%s/epochs.tsv'", da);
    EXPECT_EQ_INT(shell_output(cmd, la, sizeof la), 0);
    snprintf(cmd, sizeof cmd, "cut -f1-5,12 '%s/epochs.tsv'", db);
    EXPECT_EQ_INT(shell_output(cmd, lb, sizeof lb), 0);
    EXPECT_STR(lb, la);
    EXPECT_EQ_INT(count_char(la, '\n'), 5);
    /* a finished run's checkpoint says so */
    struct model *d;
    REQUIRE_OK(train_checkpoint_load(ck, &d, &oc, &sc));
    EXPECT_EQ_INT(sc.done, 1);
    model_destroy(d);
    free(snap_w), free(snap_buf);
    model_destroy(a), model_destroy(b), model_destroy(c);
    features_destroy(f);
}

static float *epoch_w[8];   /* the trained weights at each epoch's end */
static struct model *watch;
static int keep_step(void *user, const struct train_step_report *r)
{
    (void)user;
    if (r->batch == r->steps_per_epoch && r->epoch <= 8)
        memcpy(epoch_w[r->epoch - 1], watch->g->store.w, sizeof(float) * (size_t)watch->g->store.n_params);
    return TRAIN_GO_ON;
}

/* SWA: the weights are the mean of the last epochs' weights and every BN's running
 * statistics the mean over the training batches (each sampling the whole set: clips b,
 * b + 3, b + 6, b + 9) of its batch statistics at those weights (worked here with
 * momentum 1 on a plan of our own, then averaged by hand). sepnet's
 * dropout comes after its last BN, so it does not move the statistics. */
static void swa_case(enum arch arch)
{
    struct features *f = feats(12, 1, 20, 24, 3, 8);
    struct model *m = tiny(arch, 20, 4);
    REQUIRE(f && m);
    long np = m->g->store.n_params, nbuf = m->g->store.n_buffers;
    for (int e = 0; e < 4; e++) REQUIRE((epoch_w[e] = malloc(sizeof(float) * (size_t)np)));
    struct train_opts o;
    quick_opts(&o, 4, 4); /* 3 batches an epoch */
    o.optim.lr = 1e-2f;
    o.swa_epochs = 3;
    struct trainer *t;
    REQUIRE_OK(train_create(&t, m, f, NULL, NULL, &o, NULL, NULL));
    watch = m;
    struct train_callbacks cb = {keep_step, NULL, NULL};
    REQUIRE_OK(train_run(t, &cb, NULL));
    EXPECT_EQ_INT(train_get_state(t)->swa_n, 3);
    train_destroy(t);
    double worst = 0;
    for (long i = 0; i < np; i++) {
        double mean = ((double)epoch_w[1][i] + epoch_w[2][i] + epoch_w[3][i]) / 3;
        double d = fabs(m->g->store.w[i] - mean) / (fabs(mean) + 1e-3);
        if (d > worst) worst = d;
    }
    EXPECT_MSG(worst < 1e-6, "%s: SWA weights off the mean by %g", arch_name(arch), worst);
    /* BN by hand: momentum 1 makes the running statistics one batch's */
    float *got = malloc(sizeof(float) * (size_t)nbuf);
    double *acc = calloc((size_t)nbuf, sizeof *acc);
    REQUIRE(got && acc);
    memcpy(got, m->g->store.buf, sizeof(float) * (size_t)nbuf);
    struct plan *p;
    REQUIRE_OK(plan_create(&p, m->g, 4, 1, 20, 24, PLAN_BACKWARD));
    for (int i = 0; i < m->g->n_nodes; i++)
        if (m->g->nodes[i].op == OP_BATCHNORM) m->g->nodes[i].momentum = 1;
    long clip = 20 * 24;
    struct rng r;
    rng_seed(&r, 1);
    float *xb = malloc(sizeof(float) * 4 * (size_t)clip);
    REQUIRE(xb);
    for (int b = 0; b < 3; b++) { /* batch b: clips b, b + 3, b + 6, b + 9 */
        for (int k = 0; k < 4; k++) memcpy(xb + k * clip, f->x + (b + 3 * k) * clip, sizeof(float) * (size_t)clip);
        REQUIRE_OK(plan_forward(p, 4, xb, 1, &r));
        for (long j = 0; j < nbuf; j++) acc[j] += m->g->store.buf[j] / 3.0;
    }
    free(xb);
    for (int i = 0; i < m->g->n_nodes; i++)
        if (m->g->nodes[i].op == OP_BATCHNORM) m->g->nodes[i].momentum = 0.1f;
    plan_destroy(p);
    EXPECT_TENSOR_NEAR(got, acc, nbuf, 1e-6, 1e-5);
    free(got), free(acc);
    for (int e = 0; e < 4; e++) free(epoch_w[e]);
    model_destroy(m);
    features_destroy(f);
}

static void test_swa_average_and_bn_recompute(void)
{
    swa_case(ARCH_CPRESNET);
    swa_case(ARCH_SEPNET);
}

static int poison_at;
static int poison(void *user, const struct train_step_report *r)
{
    (void)user;
    if (r->step == poison_at) graph_tensor_data(watch->g, graph_find_tensor(watch->g, "fc2.bias"))[1] = NAN;
    if (r->step == -poison_at) graph_tensor_data(watch->g, graph_find_tensor(watch->g, "bn0.weight"))[3] = NAN;
    return TRAIN_GO_ON;
}
static int keep_epoch(void *user, const struct train_epoch_report *r)
{
    (void)user;
    if (r->epoch <= 8) memcpy(epoch_w[r->epoch - 1], watch->g->store.w, sizeof(float) * (size_t)watch->g->store.n_params);
    return TRAIN_GO_ON;
}

/* A NaN in the weights after step 7 (epoch 2) makes step 8's loss NaN: the run stops
 * naming step 8 and restores the weights of the start of epoch 2 (step 5). A NaN the loss
 * does not see (max pooling drops it) shows in the gradient at the same step. */
static void test_nan_restores_last_good_weights(void)
{
    struct features *f = feats(20, 1, 16, 20, 3, 5);
    struct model *m = tiny(ARCH_SEPNET, 16, 9);
    REQUIRE(f && m);
    long np = m->g->store.n_params;
    REQUIRE((epoch_w[0] = malloc(sizeof(float) * (size_t)np)));
    struct train_opts o;
    quick_opts(&o, 3, 4);
    struct trainer *t;
    REQUIRE_OK(train_create(&t, m, f, NULL, NULL, &o, NULL, NULL));
    watch = m, poison_at = 7;
    struct train_callbacks cb = {poison, keep_epoch, NULL};
    int s = train_run(t, &cb, NULL);
    EXPECT_EQ_INT(s, STATUS_NUMERIC);
    EXPECT_MSG(strstr(status_detail(), "step 8 (epoch 2, batch 3): the loss is nan; restored the weights of step 5 "
                                       "(the start of epoch 2)") != NULL, "%s", status_detail());
    EXPECT(!memcmp(m->g->store.w, epoch_w[0], sizeof(float) * (size_t)np));
    EXPECT_EQ_INT(train_get_state(t)->step, 5);
    train_destroy(t);
    /* in bn0, before the max over time: the loss stays finite, the gradient does not */
    model_destroy(m);
    REQUIRE((m = tiny(ARCH_SEPNET, 16, 9)));
    REQUIRE_OK(train_create(&t, m, f, NULL, NULL, &o, NULL, NULL));
    watch = m, poison_at = -7;
    EXPECT_EQ_INT(train_run(t, &cb, NULL), STATUS_NUMERIC);
    EXPECT_MSG(strstr(status_detail(), "step 8 (epoch 2, batch 3): the gradient of 'bn0.weight' is not finite; "
                                       "restored the weights of step 5") != NULL, "%s", status_detail());
    EXPECT(!memcmp(m->g->store.w, epoch_w[0], sizeof(float) * (size_t)np));
    train_destroy(t);
    free(epoch_w[0]);
    model_destroy(m);
    features_destroy(f);
}

/* trainlog.tsv and epochs.tsv: the documented header, one row per step / epoch, every
 * field a number ("nan" for evaluation figures without evaluation). */
static void test_trainlog_columns(void)
{
    struct features *f = feats(10, 1, 16, 20, 3, 2);
    struct model *m = tiny(ARCH_SEPNET, 16, 1);
    REQUIRE(f && m);
    struct train_opts o;
    quick_opts(&o, 2, 4); /* 3 steps an epoch */
    struct trainer *t;
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s", test_path("logs"));
    REQUIRE_OK(train_create(&t, m, f, NULL, NULL, &o, NULL, dir));
    REQUIRE_OK(train_run(t, NULL, NULL));
    train_destroy(t);
    const char *names[2] = {"trainlog.tsv", "epochs.tsv"}, *heads[2] = {TRAIN_STEP_COLUMNS, TRAIN_EPOCH_COLUMNS};
    int rows[2] = {6, 2};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        FILE *in = fopen(path, "r");
        REQUIRE(in);
        char line[1024];
        REQUIRE(fgets(line, sizeof line, in));
        line[strcspn(line, "\n")] = 0;
        EXPECT_STR(line, heads[k]);
        int cols = count_char(heads[k], '\t') + 1, n = 0;
        while (fgets(line, sizeof line, in)) {
            n++;
            EXPECT_EQ_INT(count_char(line, '\t') + 1, cols);
            char *p = line;
            for (int c = 0; c < cols; c++) {
                char *end;
                double v = strtod(p, &end);
                EXPECT_MSG(end != p, "%s row %d column %d is not a number: %s", names[k], n, c + 1, p);
                if (c == 0) EXPECT_EQ_INT((long)v, n);
                p = end + 1;
            }
        }
        fclose(in);
        EXPECT_EQ_INT(n, rows[k]);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    EXPECT(access(path, F_OK) == 0);
    model_destroy(m);
    features_destroy(f);
}

/* ----------------------------------------------------------------------------- commands */

static void test_train_command_errors(void)
{
    const char *ds = test_path("tr-ds");
    char script[4096];
    snprintf(script, sizeof script,
             "train\n"                                            /* no model */
             "new sepnet channels=4,8,8,8 mels=16\n"
             "train\n"                                            /* no data set */
             "synth out=%s clips=20 seconds=0.5\n"
             "data %s\n"
             "train frobnicate=1\n"
             "train epochs=0\n"
             "train lr=-1\n"
             "train epochs=3 steps=4\n"
             "train sched=zigzag\n"
             "train swa=2 steps=10\n"
             "train specaug=1,2\n"
             "train opt=rmsprop\n"
             "new sepnet channels=4,8,8,8 mels=16 classes=4\n"
             "train epochs=1\n"                                   /* 4 classes, 10 in the data */
             "resume %s/nothing.safetensors\n",
             ds, ds, ds);
    setenv("XDG_CACHE_HOME", test_path("tr-cache"), 1);
    struct cli_output c = cli_run(script);
    unsetenv("XDG_CACHE_HOME");
    EXPECT_EQ_INT(c.n_errors, 12);
    EXPECT_EQ_INT(count_char(c.err, '\n'), 12);
    EXPECT(strstr(c.err, "error: train: no model") != NULL);
    EXPECT(strstr(c.err, "error: train: no data set") != NULL);
    EXPECT(strstr(c.err, "unknown option 'frobnicate'") != NULL);
    EXPECT(strstr(c.err, "epochs=0: out of range 1..1000000") != NULL);
    EXPECT(strstr(c.err, "lr=-1: out of range") != NULL);
    EXPECT(strstr(c.err, "epochs= and steps=") != NULL);
    EXPECT(strstr(c.err, "sched=zigzag: expected constant|linear|cosine|step") != NULL);
    EXPECT(strstr(c.err, "swa= averages the last epochs") != NULL);
    EXPECT(strstr(c.err, "specaug=1,2") != NULL);
    EXPECT(strstr(c.err, "opt=rmsprop") != NULL);
    EXPECT_MSG(strstr(c.err, "the model has 4 classes, the data set 10") != NULL, "%s", c.err);
    EXPECT(strstr(c.err, "nothing.safetensors") != NULL);
    EXPECT(strstr(c.out, "train:") == NULL); /* nothing started */
}

/* Train through the command, save, and check the model carries what training set:
 * labels, normalisation (cpjku-style znorm asked with norm=train), the training length. */
static void test_train_command_runs(void)
{
    const char *ds = test_path("tc-ds"), *out = test_path("tc-run"), *saved = test_path("tc.safetensors");
    char script[4096];
    snprintf(script, sizeof script,
             "synth out=%s clips=20 seconds=0.5\ndata %s\npreset demo\nnew sepnet channels=4,8,8,8 mels=16\n"
             "train epochs=2 bs=4 out=%s norm=train sched=cosine mixup=0.2 specaug=on recipe=none\nsave %s\n"
             "train epochs=1 out=%s\n",
             ds, ds, out, saved, out);
    setenv("XDG_CACHE_HOME", test_path("tr-cache"), 1);
    struct cli_output c = cli_run(script);
    unsetenv("XDG_CACHE_HOME");
    EXPECT_EQ_INT(c.n_errors, 1); /* the second train into the same folder */
    EXPECT_MSG(strstr(c.out, "epoch 1/2  loss ") && strstr(c.out, "epoch 2/2  loss "), "%s", c.out);
    EXPECT(strstr(c.out, "eval acc ") != NULL);
    EXPECT(strstr(c.out, "trained 2 epochs, 6 steps") != NULL);
    EXPECT(strstr(c.err, "already holds a training run: `resume") != NULL);
    struct model *m;
    REQUIRE_OK(model_load(&m, saved));
    EXPECT_EQ_INT(m->n_labels, 10);
    EXPECT_EQ_INT(m->n_norm, 16);
    EXPECT(m->input != NULL);
    model_destroy(m);
}

/* Through the binary: kill -9 a training run after its first checkpoints, resume it, and
 * end with the weights (bit for bit) of a run that was never interrupted. Then Ctrl-C
 * (SIGINT) stops a run after a step, saying what was kept, and an lr of 1e30 stops at the
 * step whose loss is not finite with the weights restored. */
static int file_rows(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int n = 0;
    for (int ch; (ch = fgetc(f)) != EOF;) n += ch == '\n';
    fclose(f);
    return n - 1;
}

static pid_t spawn(const char *bin, const char *script, const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1), dup2(fd, 2);
        execl(bin, "basin", "--script", script, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int tensors_equal(const char *a, const char *b)
{
    struct st_file *fa, *fb;
    if (st_load(a, &fa)) return 0;
    if (st_load(b, &fb)) return st_destroy(fa), 0;
    int ok = st_count(fa) == st_count(fb);
    for (int i = 0; ok && i < st_count(fa); i++) {
        const struct st_tensor *x = st_tensor_at(fa, i), *y = st_find(fb, x->name);
        ok = y && x->n_bytes == y->n_bytes && !memcmp(x->data, y->data, x->n_bytes);
    }
    st_destroy(fa), st_destroy(fb);
    return ok;
}

static void test_kill9_resume_equals_uninterrupted(void)
{
    const char *bin = getenv("BASIN_BIN");
    if (!bin) return;
    char ds[600], s0[600], s1[600], s2[600], r1[600], r2[600], lg[600], path[800], ck[800], cmd[4096], out[8192];
    snprintf(ds, sizeof ds, "%s", test_path("k9t-ds"));
    snprintf(r1, sizeof r1, "%s", test_path("k9t-whole"));
    snprintf(r2, sizeof r2, "%s", test_path("k9t-killed"));
    snprintf(s0, sizeof s0, "%s", test_path("k9t-0.basin"));
    snprintf(s1, sizeof s1, "%s", test_path("k9t-1.basin"));
    snprintf(s2, sizeof s2, "%s", test_path("k9t-2.basin"));
    snprintf(lg, sizeof lg, "%s", test_path("k9t.log"));
    setenv("XDG_CACHE_HOME", test_path("k9t-cache"), 1);
    const char *setup = "data %s\npreset demo\nset threads=2\nnew sepnet channels=8,16,16,16 mels=16 seed=3\n";
    const char *train = "train epochs=%d bs=4 seed=5 mixup=0.3 specaug=on roll=5 swa=3 sched=cosine warmup=1 out=%s\n";
    FILE *f = fopen(s0, "w");
    REQUIRE(f);
    fprintf(f, "synth out=%s clips=40 seconds=1\n", ds);
    fprintf(f, setup, ds);
    fprintf(f, train, 30, r1);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' --script '%s' 2>&1", bin, s0);
    EXPECT_EQ_INT(shell_output(cmd, out, sizeof out), 0);
    REQUIRE(strstr(out, "trained 30 epochs, 150 steps"));
    /* the same run, killed once its trainlog shows epoch 3 under way */
    f = fopen(s1, "w");
    REQUIRE(f);
    fprintf(f, setup, ds);
    fprintf(f, train, 30, r2);
    fclose(f);
    snprintf(path, sizeof path, "%s/trainlog.tsv", r2);
    int killed_after = -1;
    pid_t pid = spawn(bin, s1, lg);
    REQUIRE(pid > 0);
    for (int i = 0; i < 200000; i++) {
        int rows = file_rows(path);
        if (rows >= 12) {
            kill(pid, SIGKILL);
            killed_after = rows;
            break;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            pid = -1;
            break;
        }
        usleep(200);
    }
    if (pid > 0) waitpid(pid, NULL, 0);
    REQUIRE(killed_after >= 12);
    EXPECT_MSG(killed_after < 150, "the run ended before the kill (%d steps logged)", killed_after);
    /* resume (a fresh process with the data set open), then compare every tensor */
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", r2);
    f = fopen(s2, "w");
    REQUIRE(f);
    fprintf(f, "data %s\nresume %s\n", ds, ck);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' --script '%s' 2>&1", bin, s2);
    EXPECT_EQ_INT(shell_output(cmd, out, sizeof out), 0);
    EXPECT_MSG(strstr(out, "resuming after step ") != NULL, "%s", out);
    char ma[800], mb[800];
    snprintf(ma, sizeof ma, "%s/model.safetensors", r1);
    snprintf(mb, sizeof mb, "%s/model.safetensors", r2);
    EXPECT_MSG(tensors_equal(ma, mb), "killed at %d steps and resumed: the weights differ", killed_after);
    EXPECT_EQ_INT(file_rows(path), 150);

    /* Ctrl-C: SIGINT after a few steps stops after a step, keeps a checkpoint, says so */
    char r3[600];
    snprintf(r3, sizeof r3, "%s", test_path("k9t-int"));
    f = fopen(s1, "w");
    REQUIRE(f);
    fprintf(f, setup, ds);
    fprintf(f, train, 30, r3);
    fclose(f);
    snprintf(path, sizeof path, "%s/trainlog.tsv", r3);
    pid = spawn(bin, s1, lg);
    REQUIRE(pid > 0);
    for (int i = 0; i < 200000 && file_rows(path) < 3; i++) usleep(200);
    kill(pid, SIGINT);
    int st;
    waitpid(pid, &st, 0);
    EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 130);
    FILE *in = fopen(lg, "r");
    REQUIRE(in);
    size_t n = fread(out, 1, sizeof out - 1, in);
    out[n] = 0;
    fclose(in);
    EXPECT_MSG(strstr(out, "error: train: cancelled: stopped after step ") && strstr(out, "checkpoint.safetensors"),
               "%s", out);
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", r3);
    EXPECT(access(ck, F_OK) == 0);

    /* lr 1e30: the second step's loss is not finite; the weights of step 0 come back */
    char before[800], after[800], r4[600];
    snprintf(before, sizeof before, "%s", test_path("k9t-before.safetensors"));
    snprintf(after, sizeof after, "%s", test_path("k9t-after.safetensors"));
    snprintf(r4, sizeof r4, "%s", test_path("k9t-nan"));
    f = fopen(s1, "w");
    REQUIRE(f);
    fprintf(f, setup, ds);
    fprintf(f, "save %s\ntrain epochs=2 bs=4 opt=sgd lr=1e30 out=%s\nsave %s\n", before, r4, after);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' --script '%s' 2>&1", bin, s1);
    EXPECT_EQ_INT(shell_output(cmd, out, sizeof out), 1);
    EXPECT_MSG(strstr(out, "error: train: step 2 (epoch 1, batch 2): the loss is ") &&
               strstr(out, "restored the weights of step 0 (the start of epoch 1)"), "%s", out);
    EXPECT(tensors_equal(before, after));
    unsetenv("XDG_CACHE_HOME");
}

/* ----------------------------------------------------------------------------- parity */

static double losses[64];
static int n_losses;
static int record_loss(void *user, const struct train_step_report *r)
{
    (void)user;
    if (n_losses < 64) losses[n_losses++] = r->loss;
    return TRAIN_GO_ON;
}

/* The real loop against PyTorch (basin_ref.py train's protocol) for every architecture and
 * optimiser: 20 steps, loss curves within 1e-3 relative. Skipped without torch. */
static void test_parity_with_pytorch(void)
{
    char out[8192], cmd[4096];
    if (shell_output("/usr/bin/python3 -c 'import torch' 2>/dev/null && test -f ../shared/peers/basin_ref.py && echo yes",
                     out, sizeof out) != 0 || strncmp(out, "yes", 3)) {
        printf("  (no /usr/bin/python3 with torch or no ../shared/peers/basin_ref.py: parity test skipped)\n");
        return;
    }
    const char *py = test_path("parity.py");
    FILE *f = fopen(py, "w");
    REQUIRE(f);
    /* the data (as tests/interop/run.sh makes it) and basin_ref train with dropout off and
     * Adam's eps 1e-4, printing step,loss */
    fputs("import functools, sys, torch, torch.nn.functional as F\n"
          "sys.path.insert(0, '../shared/peers')\n"
          "F.dropout = lambda x, p=0.5, training=True, inplace=False: x\n"
          "for n in ('Adam', 'AdamW'): setattr(torch.optim, n, functools.partial(getattr(torch.optim, n), eps=1e-4))\n"
          "import basin_ref as r\n"
          "x = r.st_load(sys.argv[1])[0]['x']\n"
          "g = torch.Generator().manual_seed(7)\n"
          "x = torch.cat([x, x.flip(0) * 0.5 + 0.1])\n"
          "y = torch.randint(0, 4, (len(x),), generator=g)\n"
          "r.st_save(sys.argv[2], {'x': x, 'y': y}, {'basin.format': '1'})\n"
          "sys.exit(r.main(sys.argv[3:]))\n",
          f);
    fclose(f);
    const char *archs[3] = {"cpresnet", "sepnet", "cnn10"};
    struct {
        const char *name;
        enum optim_kind kind;
        float lr, momentum, wd;
        int nesterov;
    } opts[3] = {{"sgd", OPTIM_SGD, 0.01f, 0.9f, 1e-4f, 1}, {"adam", OPTIM_ADAM, 1e-3f, 0, 0, 0},
                 {"adamw", OPTIM_ADAMW, 2e-3f, 0, 0.01f, 0}};
    enum { STEPS = 20 };
    for (int a = 0; a < 3; a++) {
        for (int k = 0; k < 3; k++) {
            char data[700], model[300];
            snprintf(data, sizeof data, "%s/parity-%s.safetensors", test_dir(), archs[a]);
            snprintf(model, sizeof model, "tests/data/models/%s.safetensors", archs[a]);
            snprintf(cmd, sizeof cmd,
                     "/usr/bin/python3 '%s' tests/data/models/%s-io.safetensors '%s' train '%s' '%s' '%s/ref.safetensors' "
                     "--opt %s --lr %g --momentum %g %s --wd %g --bs 4 --steps %d 2>&1",
                     py, archs[a], data, model, data, test_dir(), opts[k].name, opts[k].lr, opts[k].momentum,
                     opts[k].nesterov ? "--nesterov" : "", opts[k].wd, STEPS);
            REQUIRE(shell_output(cmd, out, sizeof out) == 0);
            double ref[STEPS];
            int n = 0;
            for (char *l = strchr(out, '\n'); l && n < STEPS; l = strchr(l + 1, '\n'))
                if (strchr(l + 1, ',')) ref[n++] = atof(strchr(l + 1, ',') + 1);
            REQUIRE(n == STEPS);
            /* basin, in process, through the real loop */
            struct model *m;
            struct st_file *sf;
            REQUIRE_OK(model_load(&m, model));
            REQUIRE_OK(st_load(data, &sf));
            const struct st_tensor *tx = st_find(sf, "x"), *ty = st_find(sf, "y");
            REQUIRE(tx && ty);
            struct features *ft = feats((int)tx->shape[0], (int)tx->shape[1], (int)tx->shape[2], (int)tx->shape[3],
                                        m->cfg.classes, 1);
            REQUIRE(ft);
            REQUIRE_OK(st_to_f32(tx, ft->x));
            REQUIRE_OK(st_to_i32(ty, ft->labels));
            struct train_opts o;
            quick_opts(&o, 1, 4);
            o.steps = STEPS, o.epochs = 0, o.parity = 1, o.threads = 1;
            optim_init(&o.optim, opts[k].kind);
            o.optim.lr = opts[k].lr, o.optim.momentum = opts[k].momentum, o.optim.weight_decay = opts[k].wd;
            o.optim.nesterov = opts[k].nesterov, o.optim.eps = 1e-4f;
            struct trainer *t;
            REQUIRE_OK(train_create(&t, m, ft, NULL, NULL, &o, NULL, NULL));
            n_losses = 0;
            struct train_callbacks cb = {record_loss, NULL, NULL};
            REQUIRE_OK(train_run(t, &cb, NULL));
            train_destroy(t);
            EXPECT_EQ_INT(n_losses, STEPS);
            double worst = 0;
            for (int s = 0; s < STEPS && s < n_losses; s++) {
                double d = fabs(losses[s] - ref[s]) / fmax(fabs(ref[s]), 1e-6);
                if (d > worst) worst = d;
            }
            EXPECT_MSG(worst < 1e-3, "%s %s: loss curves differ by %.2e relative (first %.6f vs %.6f)", archs[a],
                       opts[k].name, worst, losses[0], ref[0]);
            model_destroy(m);
            st_destroy(sf);
            features_destroy(ft);
        }
    }
}

const struct test tests_train[] = {
    TEST(test_schedules_by_hand),
    TEST(test_opts_and_state_round_trip_and_validation),
    TEST(test_gradient_clipping),
    TEST(test_deterministic),
    TEST(test_cancel_and_resume_in_process),
    TEST(test_swa_average_and_bn_recompute),
    TEST(test_nan_restores_last_good_weights),
    TEST(test_trainlog_columns),
    TEST(test_train_command_errors),
    TEST(test_train_command_runs),
    TEST_HEAVY(test_kill9_resume_equals_uninterrupted),
    TEST_HEAVY(test_parity_with_pytorch),
    {0},
};
