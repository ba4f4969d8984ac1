/* cmd_train.c: train and resume: options checked, the model <-> data contract, features
 * (normalisation fitted on train when the front end or the user asks), then the training
 * loop of src/train with a line per epoch (and a live line on a terminal). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/data/dataset.h"
#include "basin/data/features.h"
#include "basin/model/compress.h"
#include "basin/model/model.h"
#include "basin/train/admm.h"
#include "basin/train/distill.h"
#include "basin/train/eval.h"
#include "basin/train/pipeline.h"
#include "basin/train/predict.h"
#include "basin/train/train.h"
#include "commands.h"
#include "job.h"
#include "views.h"
#include "session.h"

/* ----------------------------------------------------------------------------- options */

static int arg_real(struct app *a, const char *key, const char *value, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (!*value || *end || !isfinite(v)) return app_fail(a, STATUS_INVALID, "%s=%s: not a number", key, value);
    if (!(v >= lo && v <= hi)) return app_fail(a, STATUS_INVALID, "%s=%s: out of range %g..%g", key, value, lo, hi);
    *out = v;
    return STATUS_OK;
}

/* One of the names in list ("a|b|c"); its index in *out. */
static int arg_choice(struct app *a, const char *key, const char *value, const char *list, int *out)
{
    int i = 0;
    for (const char *p = list; *p; i++) {
        const char *e = strchr(p, '|');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (strlen(value) == n && !strncmp(value, p, n)) return *out = i, STATUS_OK;
        p += n + (e != NULL);
    }
    return app_fail(a, STATUS_INVALID, "%s=%s: expected %s", key, value, list);
}

/* prune=: a fraction pruned (0.8, 80%), or from 1 up the parameters to keep (250000, 250k). */
static int arg_prune(struct app *a, const char *v, struct prune_opts *p)
{
    char *end;
    double d = strtod(v, &end);
    p->target = 0, p->target_params = 0;
    if (end != v && *end == '%' && !end[1] && d >= 0 && d < 99.99) return p->target = d / 100, STATUS_OK;
    if (end != v && !*end && d >= 0 && d < 1) return p->target = d, STATUS_OK;
    double n;
    if (arg_count(a, "train", "prune", v, 0, &n)) return STATUS_INVALID;
    if (n < 1 || n > 1e15) return app_fail(a, STATUS_INVALID, "train: prune=%s: a fraction below 1 or a parameter count", v);
    p->target_params = (long)n;
    return STATUS_OK;
}

/* What the command line asked for beyond the options (where, how to normalise). */
struct train_cli {
    char out[2048];
    char teacher[2048];  /* distil from this model ("" none) */
    double kd, T;        /* its weight alpha and temperature */
    char admm[64];       /* "MACS,PARAMS" ("" none) */
    double rho;
    int norm;            /* -1 default, 0 none, 1 train, 2 model */
    int specaug_scale;   /* SpecAugment widths are SP4ASC's for 431 x 256: scale them */
};

/* Parse train's options into o (recipe first, then the rest over it, in any order). */
static int parse_train(struct app *a, int argc, char **argv, struct train_opts *o, struct train_cli *cli)
{
    const char *recipe = "none";
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "recipe=", 7)) recipe = argv[i] + 7;
    if (train_opts_preset(o, recipe)) return app_fail(a, STATUS_INVALID, "%s", status_detail());
    int recipe_given = strcmp(recipe, "none") != 0;
    cli->specaug_scale = !strcmp(recipe, "sp4asc");
    cli->out[0] = 0;
    cli->teacher[0] = 0;
    cli->kd = 0.5, cli->T = 2;
    cli->admm[0] = 0, cli->rho = 1e-2;
    cli->norm = -1;
    o->seed = a->seed;
    int epochs_given = 0, steps_given = 0, mixup_mode = -1, k;
    long x;
    double d;
    /* opt= first: it resets the optimiser's own defaults, which lr= and the rest then override */
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "opt=", 4)) continue;
        enum optim_kind kind;
        if (optim_kind_parse(argv[i] + 4, &kind)) return app_fail(a, STATUS_INVALID, "opt=%s: expected sgd|adam|adamw", argv[i] + 4);
        float lr = o->optim.lr, wd = o->optim.weight_decay;
        optim_init(&o->optim, kind);
        if (recipe_given) o->optim.lr = lr, o->optim.weight_decay = wd;
    }
    for (int i = 1; i < argc; i++) {
        char *v = arg_split(argv[i]);
        const char *key = argv[i];
        if (!v) return app_fail(a, STATUS_INVALID, "expected key=value, got '%s' (help train)", argv[i]);
        if (!strcmp(key, "recipe") || !strcmp(key, "opt")) continue;
        if (!strcmp(key, "epochs")) {
            if (arg_int(a, key, v, 1, 1000000, &x)) return STATUS_INVALID;
            o->epochs = (int)x, epochs_given = 1;
        } else if (!strcmp(key, "steps")) {
            if (arg_int(a, key, v, 1, 1000000000000L, &x)) return STATUS_INVALID;
            o->steps = x, steps_given = 1;
        } else if (!strcmp(key, "lr")) {
            if (arg_real(a, key, v, 1e-30, 1e30, &d)) return STATUS_INVALID;
            o->optim.lr = (float)d;
        } else if (!strcmp(key, "wd")) {
            if (arg_real(a, key, v, 0, 1e6, &d)) return STATUS_INVALID;
            o->optim.weight_decay = (float)d;
        } else if (!strcmp(key, "momentum")) {
            if (arg_real(a, key, v, 0, 1, &d)) return STATUS_INVALID;
            o->optim.momentum = (float)d;
        } else if (!strcmp(key, "nesterov")) {
            if (arg_int(a, key, v, 0, 1, &x)) return STATUS_INVALID;
            o->optim.nesterov = (int)x;
        } else if (!strcmp(key, "beta1") || !strcmp(key, "beta2")) {
            if (arg_real(a, key, v, 0, 0.999999999, &d)) return STATUS_INVALID;
            *(key[4] == '1' ? &o->optim.beta1 : &o->optim.beta2) = (float)d;
        } else if (!strcmp(key, "eps")) {
            if (arg_real(a, key, v, 1e-30, 1, &d)) return STATUS_INVALID;
            o->optim.eps = (float)d;
        } else if (!strcmp(key, "bs")) {
            if (arg_int(a, key, v, 1, 65536, &x)) return STATUS_INVALID;
            o->batch.batch_size = (int)x;
        } else if (!strcmp(key, "drop_last")) {
            if (arg_int(a, key, v, 0, 1, &x)) return STATUS_INVALID;
            o->batch.drop_last = (int)x;
        } else if (!strcmp(key, "sched")) {
            if (arg_choice(a, key, v, "constant|linear|cosine|step", &k)) return STATUS_INVALID;
            o->sched = (enum train_sched)k;
        } else if (!strcmp(key, "lr_min")) {
            if (arg_real(a, key, v, 0, 1e30, &d)) return STATUS_INVALID;
            o->lr_min = d;
        } else if (!strcmp(key, "decay")) {
            int s0, s1, used = 0;
            if (sscanf(v, "%d,%d%n", &s0, &s1, &used) != 2 || v[used] || s0 < 0 || s1 <= s0 || s1 > 1000000)
                return app_fail(a, STATUS_INVALID, "decay=%s: expected START,END epochs with 0 <= START < END", v);
            o->decay_start = s0, o->decay_end = s1;
        } else if (!strcmp(key, "step_every")) {
            if (arg_int(a, key, v, 1, 1000000, &x)) return STATUS_INVALID;
            o->step_every = (int)x;
        } else if (!strcmp(key, "step_gamma")) {
            if (arg_real(a, key, v, 1e-9, 1e3, &d)) return STATUS_INVALID;
            o->step_gamma = d;
        } else if (!strcmp(key, "warmup")) {
            if (arg_real(a, key, v, 0, 1e6, &d)) return STATUS_INVALID;
            o->warmup_epochs = d;
        } else if (!strcmp(key, "loss")) {
            if (arg_choice(a, key, v, "ce|focal", &k)) return STATUS_INVALID;
            o->loss = (enum train_loss)k;
        } else if (!strcmp(key, "gamma")) {
            if (arg_real(a, key, v, 0, 100, &d)) return STATUS_INVALID;
            o->focal_gamma = d;
        } else if (!strcmp(key, "mixup")) {
            if (arg_real(a, key, v, 0, 1e6, &d)) return STATUS_INVALID;
            if (d == 0) o->batch.mixup = BATCH_MIXUP_OFF;
            else if (o->batch.mixup == BATCH_MIXUP_OFF) o->batch.mixup = BATCH_MIXUP_BATCH;
            o->batch.mixup_alpha = d;
        } else if (!strcmp(key, "mixup_mode")) {
            if (arg_choice(a, key, v, "sample|batch", &mixup_mode)) return STATUS_INVALID;
        } else if (!strcmp(key, "specaug")) {
            int tw, ts, fw, fs, used = 0;
            if (!strcmp(v, "on")) {
                o->batch.time_width = 128, o->batch.time_stripes = 2;
                o->batch.freq_width = 32, o->batch.freq_stripes = 2;
                cli->specaug_scale = 1;
            } else if (!strcmp(v, "off")) {
                o->batch.time_stripes = o->batch.freq_stripes = 0;
                o->batch.time_width = o->batch.freq_width = 0;
                cli->specaug_scale = 0;
            } else if (sscanf(v, "%d,%d,%d,%d%n", &tw, &ts, &fw, &fs, &used) == 4 && !v[used] && tw >= 0 &&
                       ts >= 0 && fw >= 0 && fs >= 0 && tw < 100000 && ts < 1000 && fw < 100000 && fs < 1000) {
                o->batch.time_width = tw, o->batch.time_stripes = ts;
                o->batch.freq_width = fw, o->batch.freq_stripes = fs;
                cli->specaug_scale = 0;
            } else {
                return app_fail(a, STATUS_INVALID, "specaug=%s: expected on, off or TIME_WIDTH,STRIPES,FREQ_WIDTH,STRIPES", v);
            }
        } else if (!strcmp(key, "roll")) {
            if (arg_int(a, key, v, 0, 100000, &x)) return STATUS_INVALID;
            o->batch.roll_frames = (int)x;
        } else if (!strcmp(key, "gain")) {
            if (arg_real(a, key, v, 0, 100, &d)) return STATUS_INVALID;
            o->batch.gain_db = d;
        } else if (!strcmp(key, "swa")) {
            if (!strcmp(v, "auto")) o->swa_epochs = -1;
            else if (arg_int(a, key, v, 0, 1000000, &x)) return STATUS_INVALID;
            else o->swa_epochs = (int)x;
        } else if (!strcmp(key, "bnstats")) {
            if (arg_int(a, key, v, 0, 1, &x)) return STATUS_INVALID;
            o->bn_final = (int)x;
        } else if (!strcmp(key, "swa_every")) {
            if (arg_int(a, key, v, 1, 1000000, &x)) return STATUS_INVALID;
            o->swa_every = (int)x;
        } else if (!strcmp(key, "clip")) {
            if (arg_real(a, key, v, 0, 1e30, &d)) return STATUS_INVALID;
            o->clip_norm = d;
        } else if (!strcmp(key, "seed")) {
            if (arg_int(a, key, v, 0, 0x7fffffffffffffffL, &x)) return STATUS_INVALID;
            o->seed = (uint64_t)x;
        } else if (!strcmp(key, "out")) {
            if (!*v || strlen(v) >= sizeof cli->out - 64) return app_fail(a, STATUS_INVALID, "out=%s: a folder name", v);
            snprintf(cli->out, sizeof cli->out, "%s", v);
        } else if (!strcmp(key, "keep")) {
            if (arg_choice(a, key, v, "last|all", &k)) return STATUS_INVALID;
            o->keep_checkpoints = k;
        } else if (!strcmp(key, "eval")) {
            if (arg_int(a, key, v, 0, 1, &x)) return STATUS_INVALID;
            o->eval = (int)x;
        } else if (!strcmp(key, "norm")) {
            if (arg_choice(a, key, v, "none|train|model", &k)) return STATUS_INVALID;
            cli->norm = k;
        } else if (!strcmp(key, "prune")) {
            if (arg_prune(a, v, &o->prune)) return STATUS_INVALID;
        } else if (!strcmp(key, "teacher")) {
            if (!*v || strlen(v) >= sizeof cli->teacher) return app_fail(a, STATUS_INVALID, "teacher=%s: a model file", v);
            snprintf(cli->teacher, sizeof cli->teacher, "%s", v);
        } else if (!strcmp(key, "admm")) {
            if (!strchr(v, ',') || strlen(v) >= sizeof cli->admm)
                return app_fail(a, STATUS_INVALID, "admm=%s: expected MACS,PARAMS (5M,8k; either may be -)", v);
            snprintf(cli->admm, sizeof cli->admm, "%s", v);
        } else if (!strcmp(key, "rho")) {
            if (arg_real(a, key, v, 1e-9, 1e6, &cli->rho)) return STATUS_INVALID;
        } else if (!strcmp(key, "kd")) {
            if (arg_real(a, key, v, 0, 1, &cli->kd)) return STATUS_INVALID;
        } else if (!strcmp(key, "T")) {
            if (arg_real(a, key, v, 1e-3, 1e3, &cli->T)) return STATUS_INVALID;
        } else if (!strcmp(key, "prune_ramp")) {
            if (arg_choice(a, key, v, "linear|exp", &k)) return STATUS_INVALID;
            o->prune.ramp = (enum prune_ramp)k;
        } else if (!strcmp(key, "prune_scope")) {
            if (arg_choice(a, key, v, "global|layer", &k)) return STATUS_INVALID;
            o->prune.scope = (enum prune_scope)k;
        } else if (!strcmp(key, "prune_len")) {
            if (arg_int(a, key, v, 1, 1000000, &x)) return STATUS_INVALID;
            o->prune.ramp_epochs = (int)x;
        } else if (!strcmp(key, "prune_cap")) {
            if (arg_real(a, key, v, 0, 1, &d)) return STATUS_INVALID;
            o->prune.classifier_cap = d;
        } else {
            return app_fail(a, STATUS_INVALID, "unknown option '%s' (help train lists them)", key);
        }
    }
    if (epochs_given && steps_given) return app_fail(a, STATUS_INVALID, "epochs= and steps=: give one of them");
    if (steps_given) o->epochs = 0;
    if (mixup_mode >= 0 && o->batch.mixup == BATCH_MIXUP_OFF)
        return app_fail(a, STATUS_INVALID, "mixup_mode= needs mixup=ALPHA");
    if (mixup_mode >= 0) o->batch.mixup = mixup_mode ? BATCH_MIXUP_BATCH : BATCH_MIXUP_SAMPLE;
    if (train_opts_validate(o)) return app_fail(a, STATUS_INVALID, "%s", status_detail());
    return STATUS_OK;
}

/* ----------------------------------------------------------------------------- the run */

/* A training run as a job: what the work needs, made on the UI thread by train or
 * resume; the work loads the features, makes the trainer and runs it; the done step
 * reports on the UI thread. */
struct train_job {
    struct app *a;
    struct job *job;
    struct model *m;            /* the session's model, trained in place */
    struct train_opts o;
    int specaug_scale;
    struct frontend_params fe;
    int norm, want_eval, set_labels;
    const struct train_state *resume;   /* NULL: a new run */
    struct train_state resume_state;
    char dir[2048];
    struct features *tr, *ev;
    struct trainer *t;
    int created;                /* train_create succeeded */
    struct model *teacher;      /* distillation (owned), or NULL */
    double admm_macs, rho;      /* ADMM: the budget (< 0: no limit), rho; want_admm set */
    long admm_params;
    int want_admm, admm_f, admm_t;
    struct admm *admm;          /* its state, made on the job's thread */
    double kd, T;
    struct distill *distill;    /* its targets, made on the job's thread */
};

static void fmt_time(char *buf, size_t n, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

static int on_step(void *user, const struct train_step_report *r)
{
    struct train_job *tj = user;
    if (tj->a->curves) curves_add_step(tj->a->curves, r->epoch - 1 + (double)r->batch / r->steps_per_epoch, r->loss, r->acc);
    job_set_message(tj->job, "epoch %d/%d step %d/%d  loss %.4f  acc %.1f%%  lr %.3g  %.0f samples/s", r->epoch,
                    r->n_epochs, r->batch, r->steps_per_epoch, r->epoch_loss, 100 * r->epoch_acc, r->lr,
                    r->samples_per_s);
    app_views_changed(tj->a);
    return job_cancelled(tj->job) ? TRAIN_STOP : TRAIN_GO_ON;
}

static int on_epoch(void *user, const struct train_epoch_report *r)
{
    struct train_job *tj = user;
    struct app *a = tj->a;
    char line[512];
    int k = snprintf(line, sizeof line, "epoch %d/%d  loss %.4f  acc %.1f%%", r->epoch, r->n_epochs, r->train_loss,
                     100 * r->train_acc);
    if (r->eval) {
        k += snprintf(line + k, sizeof line - (size_t)k, "  eval acc %.1f%%  logloss %.4f", 100 * r->eval->all.acc,
                      r->eval->all.logloss);
        if (r->eval->unseen.n)
            k += snprintf(line + k, sizeof line - (size_t)k, " (seen %.1f%%, unseen %.1f%%)", 100 * r->eval->seen.acc,
                          100 * r->eval->unseen.acc);
    }
    k += snprintf(line + k, sizeof line - (size_t)k, "  lr %.3g  %.1f s", r->lr, r->seconds);
    if (tj->admm)
        k += snprintf(line + k, sizeof line - (size_t)k, "  admm |W-Z| %.3g, groups to go |W| %.3g", tj->admm->primal,
                      tj->admm->removed_norm);
    if (r->swa_final) snprintf(line + k, sizeof line - (size_t)k, "  (SWA average of %d, BN recomputed)", r->swa_n);
    else if (r->bn_final) snprintf(line + k, sizeof line - (size_t)k, "  (BN statistics recomputed)");
    else if (r->swa_n) snprintf(line + k, sizeof line - (size_t)k, "  swa %d", r->swa_n);
    app_out(a, "%s\n", line);
    fflush(a->out);
    if (a->curves)
        curves_add_epoch(a->curves, r->epoch, r->train_loss, r->train_acc, r->eval ? r->eval->all.logloss : NAN,
                         r->eval ? r->eval->all.acc : NAN);
    app_views_changed(a);
    return job_cancelled(tj->job) ? TRAIN_STOP : TRAIN_GO_ON;
}

static int load_features(struct app *a, struct model *m, const struct frontend_params *fe, int norm,
                         int want_eval, struct features **train, struct features **eval,
                         const struct progress *p);
static void describe_run(struct app *a, const struct model *m, const struct train_opts *o, const struct features *tr,
                         const struct features *ev, const struct frontend_params *fe, const char *dir,
                         const struct train_state *st);
static void scale_specaug(struct train_opts *o, const struct features *f);

/* The work, on the job's thread. */
static int train_work(struct job *j, void *arg)
{
    struct train_job *tj = arg;
    struct app *a = tj->a;
    tj->job = j;
    const struct progress *p = job_progress(j);
    int s = STATUS_OK;
    if (tj->set_labels) {
        s = tj->m->frontend ? STATUS_OK : pipeline_set_model_frontend(tj->m, &tj->fe);
        if (!s) s = pipeline_set_model_labels(tj->m, a->ds);
    }
    if (!s) s = load_features(a, tj->m, &tj->fe, tj->norm, tj->want_eval, &tj->tr, &tj->ev, p);
    if (!s && tj->specaug_scale) scale_specaug(&tj->o, tj->tr);
    if (!s) s = train_create(&tj->t, tj->m, tj->tr, tj->ev, a->ds, &tj->o, tj->resume, tj->dir);
    if (s) return s;
    tj->created = 1;
    if (tj->teacher) {
        /* the teacher sees the student's features: its normalisation must be the same */
        const struct model *te = tj->teacher, *st = tj->m;
        if (te->n_norm != st->n_norm ||
            (te->n_norm && (memcmp(te->norm_mean, st->norm_mean, sizeof(float) * (size_t)te->n_norm) ||
                            memcmp(te->norm_std, st->norm_std, sizeof(float) * (size_t)te->n_norm))))
            return status_set(STATUS_MISMATCH, "teacher: its feature normalisation (basin.norm) differs from the "
                              "student's; distil from a teacher trained on the same data and front end");
        if ((s = distill_create(&tj->distill, tj->teacher, tj->tr, tj->kd, tj->T, p)) ||
            (s = train_set_distill(tj->t, tj->distill)))
            return s;
        app_out(a, "train: distilling from the teacher (kd=%g, T=%g): its targets for %d clips cached\n", tj->kd, tj->T,
                tj->tr->n);
    }
    if (tj->want_admm) {
        if ((s = admm_create(&tj->admm, tj->m, tj->admm_macs, tj->admm_params, tj->rho, tj->admm_f, tj->admm_t)) ||
            (s = train_set_admm(tj->t, tj->admm)))
            return s;
        app_out(a, "train: ADMM (rho %g) toward %d of %d channel groups removed (MACs <= %.4g, params <= %ld)\n",
                tj->rho, tj->admm->n_removed, tj->admm->n_groups, tj->admm_macs, tj->admm_params);
    }
    if (!tj->want_eval && tj->o.eval && !tj->resume)
        app_out(a, "train: no evaluate split in the data set: no per-epoch evaluation\n");
    describe_run(a, tj->m, train_get_opts(tj->t), tj->tr, tj->ev, &tj->fe, tj->dir, train_get_state(tj->t));
    if (a->curves)
        curves_reset(a->curves, tj->dir, train_total_epochs(train_get_opts(tj->t), train_get_state(tj->t)->steps_per_epoch),
                     train_get_state(tj->t)->steps_per_epoch);
    struct train_callbacks cb = {on_step, on_epoch, tj};
    return train_run(tj->t, &cb, p);
}

/* The report, on the UI thread; the model stays usable whatever happened. */
static void train_done(struct job *j, void *arg, int s)
{
    (void)j;
    struct train_job *tj = arg;
    struct app *a = tj->a;
    if (!tj->created) {
        if (s) app_fail(a, s, "%s", status_detail());
    } else {
        snprintf(a->run_dir, sizeof a->run_dir, "%s", tj->dir);
        const struct train_state *st = train_get_state(tj->t);
        char took[32];
        fmt_time(took, sizeof took, st->seconds);
        if (s == STATUS_CANCELLED) {
            char detail[256];
            snprintf(detail, sizeof detail, "%s", status_detail());
            app_fail(a, s, "cancelled: %s; the model keeps the weights of step %ld; checkpoint %s (resume %s goes on)",
                     detail, st->step, train_checkpoint_path(tj->t), train_checkpoint_path(tj->t));
        } else if (s) {
            app_fail(a, s, "%s", status_detail());
        } else {
            app_out(a, "trained %d epochs, %ld steps in %s", train_total_epochs(train_get_opts(tj->t), st->steps_per_epoch),
                    st->step, took);
            if (st->eval_acc >= 0) app_out(a, "; eval acc %.1f%% logloss %.4f", 100 * st->eval_acc, st->eval_loss);
            if (st->best_epoch) app_out(a, " (best %.1f%% at epoch %d)", 100 * st->best_eval_acc, st->best_epoch);
            app_out(a, "\nmodel: %s/model.safetensors, log: %s/trainlog.tsv, %s/epochs.tsv\n", tj->dir, tj->dir, tj->dir);
            if (train_get_opts(tj->t)->keep_checkpoints)
                app_out(a, "kept %s/checkpoint-<epoch>.safetensors for every epoch (trajectory %s draws the path)\n",
                        tj->dir, tj->dir);
        }
    }
    train_destroy(tj->t);
    if (tj->admm && s == STATUS_OK)
        app_out(a, "admm: the weights of the %d channel groups to remove are now |W| %.3g; `prune structured` with the "
                "same budget cuts them\n", tj->admm->n_removed, tj->admm->removed_norm);
    admm_destroy(tj->admm);
    distill_destroy(tj->distill);
    model_destroy(tj->teacher);
    features_destroy(tj->tr);
    features_destroy(tj->ev);
    free(tj);
}

/* Start the run as a job holding the model and the data set. */
static int start_training(struct app *a, struct train_job *tj, const char *name)
{
    a->views.current = VIEW_CURVES; /* the split view follows the run */
    struct job_desc d = {.name = name, .threads = tj->o.threads, .work = train_work, .done = train_done, .arg = tj};
    return app_run_job(a, &d, APP_HOLD_MODEL_WRITE | APP_HOLD_DATA);
}

/* A new folder runs/<date>-<time>[-k] under the current one. */
static int default_out(char *buf, size_t n)
{
    time_t now = time(NULL);
    struct tm tm;
    char stamp[32];
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    struct stat sb;
    for (int k = 1; k < 1000; k++) {
        if (k == 1) snprintf(buf, n, "runs/%s", stamp);
        else snprintf(buf, n, "runs/%s-%d", stamp, k);
        if (stat(buf, &sb) != 0) return STATUS_OK;
    }
    return status_set(STATUS_IO, "runs/%s: no free folder name", stamp);
}

/* The training and evaluate features of the session's data set through the model's front
 * end; norm: 0 none, 1 fit on train (stored in the model), 2 the model's statistics. */
static int load_features(struct app *a, struct model *m, const struct frontend_params *fe, int norm,
                         int want_eval, struct features **train, struct features **eval,
                         const struct progress *p)
{
    struct frontend *f = NULL;
    struct features_opts fo = {.in_ch = m->cfg.in_ch, .pad = FEATURES_PAD_REPEAT};
    int M = fe->n_mels;
    float *mean = mem_alloc(sizeof(float) * (size_t)M), *std = mem_alloc(sizeof(float) * (size_t)M);
    int s = mean && std ? frontend_create(&f, fe) : STATUS_NOMEM;
    enum features_norm how = norm == 1 ? FEATURES_NORM_FIT : norm == 2 ? FEATURES_NORM_GIVEN : FEATURES_NORM_NONE;
    if (!s) s = features_prepare(train, a->ds, DATASET_SPLIT_TRAIN, f, &fo, how, m->norm_mean, m->norm_std, mean, std,
                                 p);
    if (!s && norm == 1) s = pipeline_set_model_norm(m, mean, std, M);
    if (!s && want_eval)
        s = features_prepare(eval, a->ds, DATASET_SPLIT_EVAL, f, &fo, norm ? FEATURES_NORM_GIVEN : FEATURES_NORM_NONE,
                             m->norm_mean, m->norm_std, NULL, NULL, p);
    if (!s) s = predict_input_set(m, fe, (*train)->n_samples);
    frontend_destroy(f);
    mem_free(mean);
    mem_free(std);
    return s;
}

static void describe_run(struct app *a, const struct model *m, const struct train_opts *o, const struct features *tr,
                         const struct features *ev, const struct frontend_params *fe, const char *dir,
                         const struct train_state *st)
{
    int spe = st->steps_per_epoch;
    app_out(a, "train: %s on %d clips (%d x %d x %d, %s front end%s)", arch_name(m->cfg.arch), tr->n, tr->n_channels,
            tr->n_mels, tr->n_frames, fe->preset, tr->znormed ? ", z-normalised" : "");
    if (ev) app_out(a, ", evaluating on %d", ev->n);
    app_out(a, "\n  %d epochs x %d steps of %d, %s lr %g, %s schedule, %s loss", train_total_epochs(o, spe), spe,
            o->batch.batch_size, optim_kind_name(o->optim.kind), o->optim.lr, train_sched_name(o->sched),
            train_loss_name(o->loss));
    if (o->batch.mixup) app_out(a, ", mixup %g", o->batch.mixup_alpha);
    if (o->batch.time_stripes || o->batch.freq_stripes)
        app_out(a, ", SpecAugment %dx%d / %dx%d", o->batch.time_stripes, o->batch.time_width, o->batch.freq_stripes,
                o->batch.freq_width);
    if (train_swa_epochs(o, train_total_epochs(o, spe))) app_out(a, ", SWA %d", train_swa_epochs(o, train_total_epochs(o, spe)));
    app_out(a, ", seed %llu, %d threads\n  writing to %s\n", (unsigned long long)o->seed, o->threads, dir);
    if (st->step) app_out(a, "  resuming after step %ld of %ld (epoch %d, batch %d)\n", st->step, st->total_steps,
                          st->epoch + 1, st->batch);
}

/* Scale SpecAugment widths given for SP4ASC's 431 frames x 256 bins to the features. */
static void scale_specaug(struct train_opts *o, const struct features *f)
{
    if (o->batch.time_stripes) {
        long w = lround(o->batch.time_width * (double)f->n_frames / 431.0);
        o->batch.time_width = (int)(w < 1 ? 1 : w);
    }
    if (o->batch.freq_stripes) {
        long w = lround(o->batch.freq_width * (double)f->n_mels / 256.0);
        o->batch.freq_width = (int)(w < 1 ? 1 : w);
    }
}

/* admm=MACS,PARAMS: counts (5M, 8k) or percentages of the model's today, "-" for none;
 * MACs per 10-second clip at the model's front end, as `prune structured` counts them. */
static int parse_admm(struct app *a, const struct model *m, const struct train_cli *cli, struct train_job *tj)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", cli->admm);
    char *comma = strchr(buf, ',');
    *comma = 0;
    struct frontend_params fe;
    int f, t;
    if (!pipeline_model_frontend(m, &fe)) f = fe.n_mels, t = (int)(1 + 10L * fe.sample_rate_hz / fe.hop);
    else model_default_input(m, &f, &t);
    struct budget_counts c;
    if (compress_counts(m, f, t, &c)) return app_fail(a, STATUS_INVALID, "admm: %s", status_detail());
    double macs = -1, params = -1;
    if (strcmp(buf, "-") && arg_count(a, "train", "admm", buf, c.macs, &macs)) return STATUS_INVALID;
    if (strcmp(comma + 1, "-") && arg_count(a, "train", "admm", comma + 1, (double)c.params, &params))
        return STATUS_INVALID;
    tj->want_admm = 1, tj->admm_macs = macs, tj->admm_params = (long)params, tj->admm_f = f, tj->admm_t = t;
    return STATUS_OK;
}

int cmd_train(struct app *a, int argc, char **argv)
{
    struct train_opts o;
    struct train_cli cli;
    if (parse_train(a, argc, argv, &o, &cli)) return STATUS_INVALID;
    struct model *m = a->model;
    if (!m) return app_fail(a, STATUS_INVALID, "no model (new or load one first)");
    if (!a->ds) return app_fail(a, STATUS_INVALID, "no data set (data PATH, or data default)");
    if (dataset_require_split(a->ds, DATASET_SPLIT_TRAIN)) return app_fail(a, STATUS_INVALID, "%s", status_detail());
    struct frontend_params fe;
    session_frontend(a, &fe, NULL);
    if (pipeline_check(m, &fe, a->ds)) return app_fail(a, STATUS_MISMATCH, "%s", status_detail());
    int norm = cli.norm;
    if (norm == 2 && !(m->n_norm == fe.n_mels))
        return app_fail(a, STATUS_INVALID, "norm=model: the model has no %d-bin normalisation statistics", fe.n_mels);
    if (norm < 0) norm = m->n_norm == fe.n_mels ? 2 : fe.znorm ? 1 : 0;
    if (!cli.out[0] && default_out(cli.out, sizeof cli.out)) return app_fail(a, STATUS_IO, "%s", status_detail());
    char ckpt[sizeof cli.out + 32];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", cli.out);
    if (access(ckpt, F_OK) == 0)
        return app_fail(a, STATUS_INVALID, "out=%s already holds a training run: `resume %s` goes on with it; "
                        "choose another out= to start anew", cli.out, ckpt);
    o.threads = threads_get();
    struct model *teacher = NULL;
    if (cli.teacher[0]) {
        if (model_load(&teacher, cli.teacher)) return app_fail(a, STATUS_INVALID, "teacher=%s", status_detail());
        if (teacher->cfg.classes != m->cfg.classes || pipeline_check(teacher, &fe, a->ds)) {
            model_destroy(teacher);
            return app_fail(a, STATUS_MISMATCH, "teacher=%s: it does not take this data set at the student's front "
                            "end (%s)", cli.teacher, status_detail());
        }
    }
    struct train_job *tj = calloc(1, sizeof *tj);
    if (!tj) {
        model_destroy(teacher);
        return app_fail(a, STATUS_NOMEM, "out of memory");
    }
    *tj = (struct train_job){.a = a, .m = m, .o = o, .specaug_scale = cli.specaug_scale, .fe = fe, .norm = norm,
                             .want_eval = o.eval && dataset_count(a->ds, DATASET_SPLIT_EVAL, -1, -1) > 0,
                             .set_labels = 1, .teacher = teacher, .kd = cli.kd, .T = cli.T, .rho = cli.rho};
    if (cli.admm[0] && parse_admm(a, m, &cli, tj)) {
        model_destroy(teacher);
        free(tj);
        return STATUS_INVALID;
    }
    snprintf(tj->dir, sizeof tj->dir, "%s", cli.out);
    char name[2100];
    snprintf(name, sizeof name, "train out=%s", cli.out);
    return start_training(a, tj, name);
}

int cmd_resume(struct app *a, int argc, char **argv)
{
    if (argc < 2) return app_fail(a, STATUS_INVALID, "usage: resume PATH/checkpoint.safetensors [eval=0|1]");
    int eval = -1;
    for (int i = 2; i < argc; i++) {
        char *v = arg_split(argv[i]);
        long x;
        if (!v || strcmp(argv[i], "eval")) return app_fail(a, STATUS_INVALID, "unknown option '%s' (eval=0|1)", argv[i]);
        if (arg_int(a, "eval", v, 0, 1, &x)) return STATUS_INVALID;
        eval = (int)x;
    }
    const char *path = argv[1];
    if (!a->ds)
        return app_fail(a, STATUS_INVALID, "open the data set the run trained on first (data PATH), then resume %s", path);
    struct model *m;
    struct train_opts o;
    struct train_state st;
    int s = train_checkpoint_load(path, &m, &o, &st);
    if (s) return app_fail(a, s, "%s", status_detail());
    if (st.done || st.step >= st.total_steps) {
        model_destroy(m);
        return app_fail(a, STATUS_INVALID, "%s: the run is complete (%ld steps); load its model.safetensors to use it",
                        path, st.step);
    }
    if (eval >= 0) o.eval = eval;
    char dir[2048];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    struct frontend_params fe;
    if ((s = pipeline_model_frontend(m, &fe)) || (s = dataset_require_split(a->ds, DATASET_SPLIT_TRAIN)) ||
        (s = pipeline_check(m, &fe, a->ds))) {
        model_destroy(m);
        return app_fail(a, s, "%s: %s", path, status_detail());
    }
    struct train_job *tj = calloc(1, sizeof *tj);
    if (!tj) {
        model_destroy(m);
        return app_fail(a, STATUS_NOMEM, "out of memory");
    }
    /* the session's model is the resumed one from here on, whatever happens */
    model_destroy(a->model);
    a->model = m;
    snprintf(a->model_name, sizeof a->model_name, "%.255s", path);
    *tj = (struct train_job){.a = a, .m = m, .o = o, .fe = fe, .norm = m->n_norm == fe.n_mels ? 2 : 0,
                             .want_eval = o.eval && dataset_count(a->ds, DATASET_SPLIT_EVAL, -1, -1) > 0,
                             .resume_state = st};
    tj->resume = &tj->resume_state;
    snprintf(tj->dir, sizeof tj->dir, "%s", dir);
    char name[2100];
    snprintf(name, sizeof name, "resume %s", path);
    return start_training(a, tj, name);
}
