/* train_opts.c: training options, the papers' recipes, learning-rate schedules, and the
 * options and state as JSON (the basin.train / basin.train_state checkpoint metadata).
 *
 * Key idea: a schedule is a pure function of (options, steps per epoch, global step), so a
 * resumed run needs no schedule state beyond its step count.
 *
 * ref: mission-anchors 2.6 (CP-JKU: Adam 1e-4, batch 10, linear schedule 50 / 250 /
 *      lr/100, mixup 0.3, SWA from 250 every 3), cpjku_dcase20 helpers/utils.py
 *      Linear_schedule.step (lr_init - lr_init (e - start) / (epochs - start));
 *      mission-anchors 4.5 (SP4ASC: AdamW 1e-3, wd 1e-5, CosineAnnealingLR(200, 1e-5),
 *      batch 32 drop_last, mixup 0.2, focal gamma 1); torch.optim.lr_scheduler
 *      CosineAnnealingLR / StepLR closed forms.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "basin/core/json.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/train/train.h"

static const char *const sched_names[] = {"constant", "linear", "cosine", "step"};
static const char *const loss_names[] = {"ce", "focal"};
static const char *const mixup_names[] = {"off", "sample", "batch"};

void train_opts_default(struct train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = 10;
    batch_opts_default(&o->batch);
    optim_init(&o->optim, OPTIM_ADAM);
    o->sched = TRAIN_SCHED_CONSTANT;
    o->lr_min = -1;
    o->step_gamma = 0.1;
    o->loss = TRAIN_LOSS_CE;
    o->focal_gamma = 1;
    o->swa_every = 1;
    o->seed = 1;
    o->eval = 1;
    prune_opts_default(&o->prune);
}

int train_opts_preset(struct train_opts *o, const char *name)
{
    train_opts_default(o);
    if (!strcmp(name, "none")) return STATUS_OK;
    if (!strcmp(name, "cpjku")) {
        /* ref: mission-anchors 2.6 */
        batch_opts_preset(&o->batch, "cpjku");
        optim_init(&o->optim, OPTIM_ADAM);
        o->optim.lr = 1e-4f;
        o->epochs = 350;
        o->sched = TRAIN_SCHED_LINEAR;    /* 50, 250 = round(350/7), round(5*350/7) */
        o->swa_epochs = -1;               /* from the decay's end: 100 of 350 */
        o->swa_every = 3;
        return STATUS_OK;
    }
    if (!strcmp(name, "sp4asc")) {
        /* ref: mission-anchors 4.4, 4.5 */
        batch_opts_preset(&o->batch, "sp4asc");
        optim_init(&o->optim, OPTIM_ADAMW);
        o->optim.lr = 1e-3f;
        o->optim.weight_decay = 1e-5f;
        o->epochs = 200;
        o->sched = TRAIN_SCHED_COSINE;
        o->lr_min = 1e-5;
        return STATUS_OK;
    }
    return status_set(STATUS_NOT_FOUND, "train: unknown recipe '%s' (none, cpjku, sp4asc)", name);
}

const char *train_sched_name(enum train_sched s)
{
    return (unsigned)s <= TRAIN_SCHED_STEP ? sched_names[s] : "?";
}

int train_sched_parse(const char *name, enum train_sched *out)
{
    for (int i = 0; i <= TRAIN_SCHED_STEP; i++)
        if (!strcmp(name, sched_names[i])) return *out = (enum train_sched)i, STATUS_OK;
    return status_set(STATUS_INVALID, "unknown schedule '%s' (constant, linear, cosine, step)", name);
}

const char *train_loss_name(enum train_loss l)
{
    return (unsigned)l <= TRAIN_LOSS_FOCAL ? loss_names[l] : "?";
}

int train_loss_parse(const char *name, enum train_loss *out)
{
    for (int i = 0; i <= TRAIN_LOSS_FOCAL; i++)
        if (!strcmp(name, loss_names[i])) return *out = (enum train_loss)i, STATUS_OK;
    return status_set(STATUS_INVALID, "unknown loss '%s' (ce, focal)", name);
}

static int finite_in(double x, double lo, double hi)
{
    return isfinite(x) && x >= lo && x <= hi;
}

int train_opts_validate(const struct train_opts *o)
{
    if (o->steps < 0 || o->steps > 1000000000000L)
        return status_set(STATUS_INVALID, "train: steps %ld out of range 1..1e12", o->steps);
    if (!o->steps && (o->epochs < 1 || o->epochs > 1000000))
        return status_set(STATUS_INVALID, "train: epochs %d out of range 1..1000000", o->epochs);
    if (o->batch.batch_size > 65536)
        return status_set(STATUS_INVALID, "train: batch size %d out of range 1..65536", o->batch.batch_size);
    int s = batch_opts_validate(&o->batch);
    if (s) return status_prefix(s, "train");
    if ((s = optim_validate(&o->optim))) return status_prefix(s, "train");
    if (!(o->optim.lr > 0 && isfinite(o->optim.lr)))
        return status_set(STATUS_INVALID, "train: lr %g must be > 0", o->optim.lr);
    if ((unsigned)o->sched > TRAIN_SCHED_STEP)
        return status_set(STATUS_INVALID, "train: unknown schedule %d", (int)o->sched);
    if (!(o->lr_min < 0 || finite_in(o->lr_min, 0, 1e30)))
        return status_set(STATUS_INVALID, "train: lr_min %g must be >= 0", o->lr_min);
    if (o->decay_start < 0 || o->decay_end < 0 || (o->decay_end && o->decay_end <= o->decay_start))
        return status_set(STATUS_INVALID, "train: decay %d,%d: need 0 <= start < end (epochs)",
                          o->decay_start, o->decay_end);
    if (o->step_every < 0) return status_set(STATUS_INVALID, "train: step_every %d must be >= 1", o->step_every);
    if (!finite_in(o->step_gamma, 1e-30, 1e30))
        return status_set(STATUS_INVALID, "train: step_gamma %g must be > 0", o->step_gamma);
    if (!finite_in(o->warmup_epochs, 0, 1e6))
        return status_set(STATUS_INVALID, "train: warmup %g must be in 0..1e6 epochs", o->warmup_epochs);
    if ((unsigned)o->loss > TRAIN_LOSS_FOCAL) return status_set(STATUS_INVALID, "train: unknown loss %d", (int)o->loss);
    if (!finite_in(o->focal_gamma, 0, 100))
        return status_set(STATUS_INVALID, "train: focal gamma %g out of range 0..100", o->focal_gamma);
    if (!finite_in(o->clip_norm, 0, 1e30))
        return status_set(STATUS_INVALID, "train: clip %g must be >= 0 (0: off)", o->clip_norm);
    if (o->swa_epochs < -1 || o->swa_every < 1)
        return status_set(STATUS_INVALID, "train: swa %d every %d: need swa >= 0 and every >= 1",
                          o->swa_epochs, o->swa_every);
    if (o->swa_epochs && o->steps)
        return status_set(STATUS_INVALID, "train: swa= averages the last epochs: give epochs=, not steps=");
    if (o->swa_epochs > 0 && o->swa_epochs > o->epochs)
        return status_set(STATUS_INVALID, "train: swa=%d is more than the %d epochs", o->swa_epochs, o->epochs);
    if (o->bn_final != 0 && o->bn_final != 1)
        return status_set(STATUS_INVALID, "train: bn_final %d must be 0 or 1", o->bn_final);
    if (o->threads < 0 || o->threads > 256)
        return status_set(STATUS_INVALID, "train: threads %d out of range 0..256", o->threads);
    if (o->eval_batch < 0 || o->eval_batch > 65536)
        return status_set(STATUS_INVALID, "train: eval batch %d out of range 0..65536", o->eval_batch);
    if (o->keep_checkpoints < 0 || o->keep_checkpoints > 1)
        return status_set(STATUS_INVALID, "train: keep_checkpoints %d is 0 or 1", o->keep_checkpoints);
    const struct prune_opts *pr = &o->prune;
    if (!finite_in(pr->target, 0, 0.9999) || pr->target_params < 0 || (pr->target > 0 && pr->target_params > 0))
        return status_set(STATUS_INVALID, "train: prune %g / %ld: a fraction in [0, 0.9999] or a parameter count",
                          pr->target, pr->target_params);
    if (pr->ramp_epochs < 1 || (unsigned)pr->ramp > PRUNE_RAMP_EXP || (unsigned)pr->scope > PRUNE_LAYER ||
        !finite_in(pr->classifier_cap, 0, 1))
        return status_set(STATUS_INVALID, "train: prune_len %d must be >= 1 and prune_cap %g in 0..1",
                          pr->ramp_epochs, pr->classifier_cap);
    if (o->parity && prune_opts_on(pr))
        return status_set(STATUS_INVALID, "train: the parity protocol does not prune");
    if (o->parity && !o->steps)
        return status_set(STATUS_INVALID, "train: the parity protocol counts steps: give steps=");
    return STATUS_OK;
}

/* ----------------------------------------------------------------------------- schedule */

int train_total_epochs(const struct train_opts *o, int steps_per_epoch)
{
    if (steps_per_epoch < 1) steps_per_epoch = 1;
    if (o->steps > 0) return (int)((o->steps + steps_per_epoch - 1) / steps_per_epoch);
    return o->epochs;
}

long train_total_steps(const struct train_opts *o, int steps_per_epoch)
{
    if (steps_per_epoch < 1) steps_per_epoch = 1;
    return o->steps > 0 ? o->steps : (long)o->epochs * steps_per_epoch;
}

/* The linear schedule's decay window (defaults scaled from CP-JKU's 50 and 250 of 350). */
static void decay_window(const struct train_opts *o, int n_epochs, int *start, int *end)
{
    *start = o->decay_start ? o->decay_start : (int)lround(n_epochs / 7.0);
    *end = o->decay_end ? o->decay_end : (int)lround(5.0 * n_epochs / 7.0);
    if (*end <= *start) *end = *start + 1;
}

double train_lr_at(const struct train_opts *o, int steps_per_epoch, long step)
{
    if (steps_per_epoch < 1) steps_per_epoch = 1;
    int n_epochs = train_total_epochs(o, steps_per_epoch);
    long e = step / steps_per_epoch;
    double lr = o->optim.lr, lr_min = o->lr_min >= 0 ? o->lr_min : lr / 100, r = lr;
    switch (o->sched) {
    case TRAIN_SCHED_CONSTANT:
        break;
    case TRAIN_SCHED_LINEAR: {
        /* ref: cpjku_dcase20 Linear_schedule.step: decays to 0 at `end`, then after_lr */
        int s, d;
        decay_window(o, n_epochs, &s, &d);
        if (e < s) r = lr;
        else if (e >= d) r = lr_min;
        else r = lr - lr * (double)(e - s) / (double)(d - s);
        break;
    }
    case TRAIN_SCHED_COSINE:
        /* ref: CosineAnnealingLR closed form, T_max = the run's epochs */
        r = lr_min + (lr - lr_min) * (1 + cos(M_PI * (double)e / n_epochs)) / 2;
        break;
    case TRAIN_SCHED_STEP: {
        long k = o->step_every ? o->step_every : (long)lround(n_epochs / 3.0);
        if (k < 1) k = 1;
        r = lr * pow(o->step_gamma, (double)(e / k));
        break;
    }
    }
    if (o->warmup_epochs > 0) {
        long w = (long)ceil(o->warmup_epochs * steps_per_epoch);
        if (step < w) r *= (double)(step + 1) / (double)w;
    }
    return r;
}

/* ----------------------------------------------------------------------------- JSON */

enum field_type { F_INT, F_LONG, F_U64, F_DOUBLE, F_FLOAT, F_SCHED, F_LOSS, F_MIXUP, F_OPTIM };

struct field {
    const char *key;
    enum field_type type;
    size_t offset;
};

#define OPT(key, type, member) {key, type, offsetof(struct train_opts, member)}
static const struct field opt_fields[] = {
    OPT("epochs", F_INT, epochs),
    OPT("steps", F_LONG, steps),
    OPT("batch_size", F_INT, batch.batch_size),
    OPT("drop_last", F_INT, batch.drop_last),
    OPT("shuffle", F_INT, batch.shuffle),
    OPT("roll", F_INT, batch.roll_frames),
    OPT("gain_db", F_DOUBLE, batch.gain_db),
    OPT("mixup", F_MIXUP, batch.mixup),
    OPT("mixup_alpha", F_DOUBLE, batch.mixup_alpha),
    OPT("time_stripes", F_INT, batch.time_stripes),
    OPT("time_width", F_INT, batch.time_width),
    OPT("freq_stripes", F_INT, batch.freq_stripes),
    OPT("freq_width", F_INT, batch.freq_width),
    OPT("specaug_value", F_FLOAT, batch.specaug_value),
    OPT("optimizer", F_OPTIM, optim.kind),
    OPT("lr", F_FLOAT, optim.lr),
    OPT("momentum", F_FLOAT, optim.momentum),
    OPT("dampening", F_FLOAT, optim.dampening),
    OPT("nesterov", F_INT, optim.nesterov),
    OPT("weight_decay", F_FLOAT, optim.weight_decay),
    OPT("beta1", F_FLOAT, optim.beta1),
    OPT("beta2", F_FLOAT, optim.beta2),
    OPT("eps", F_FLOAT, optim.eps),
    OPT("sched", F_SCHED, sched),
    OPT("lr_min", F_DOUBLE, lr_min),
    OPT("decay_start", F_INT, decay_start),
    OPT("decay_end", F_INT, decay_end),
    OPT("step_every", F_INT, step_every),
    OPT("step_gamma", F_DOUBLE, step_gamma),
    OPT("warmup_epochs", F_DOUBLE, warmup_epochs),
    OPT("loss", F_LOSS, loss),
    OPT("focal_gamma", F_DOUBLE, focal_gamma),
    OPT("clip_norm", F_DOUBLE, clip_norm),
    OPT("swa_epochs", F_INT, swa_epochs),
    OPT("swa_every", F_INT, swa_every),
    OPT("bn_final", F_INT, bn_final),
    OPT("seed", F_U64, seed),
    OPT("threads", F_INT, threads),
    OPT("eval", F_INT, eval),
    OPT("eval_batch", F_INT, eval_batch),
    OPT("parity", F_INT, parity),
    OPT("keep_checkpoints", F_INT, keep_checkpoints),
    OPT("prune", F_DOUBLE, prune.target),
    OPT("prune_params", F_LONG, prune.target_params),
    OPT("prune_scope", F_INT, prune.scope),
    OPT("prune_ramp", F_INT, prune.ramp),
    OPT("prune_len", F_INT, prune.ramp_epochs),
    OPT("prune_cap", F_DOUBLE, prune.classifier_cap),
};
#undef OPT

#define ST(key, type, member) {key, type, offsetof(struct train_state, member)}
static const struct field state_fields[] = {
    ST("epoch", F_INT, epoch),
    ST("batch", F_INT, batch),
    ST("step", F_LONG, step),
    ST("optim_step", F_LONG, optim_step),
    ST("steps_per_epoch", F_INT, steps_per_epoch),
    ST("total_steps", F_LONG, total_steps),
    ST("lr", F_DOUBLE, lr),
    ST("loss_sum", F_DOUBLE, loss_sum),
    ST("correct", F_LONG, correct),
    ST("seen", F_LONG, seen),
    ST("swa_n", F_INT, swa_n),
    ST("done", F_INT, done),
    ST("seconds", F_DOUBLE, seconds),
    ST("train_loss", F_DOUBLE, train_loss),
    ST("train_acc", F_DOUBLE, train_acc),
    ST("eval_loss", F_DOUBLE, eval_loss),
    ST("eval_acc", F_DOUBLE, eval_acc),
    ST("best_eval_acc", F_DOUBLE, best_eval_acc),
    ST("best_epoch", F_INT, best_epoch),
    ST("data_hash", F_U64, data_hash),
    ST("n_train", F_INT, n_train),
};
#undef ST

static int fields_to_json(const void *base, const struct field *f, int n, char **out)
{
    struct json *o = json_create_object();
    if (!o) return STATUS_NOMEM;
    int s = STATUS_OK;
    for (int i = 0; i < n && !s; i++) {
        const char *p = (const char *)base + f[i].offset;
        switch (f[i].type) {
        case F_INT: s = json_set_int(o, f[i].key, *(const int *)p); break;
        case F_LONG: s = json_set_int(o, f[i].key, *(const long *)p); break;
        /* 64 random bits: the int64 with the same bits (read back the same way) */
        case F_U64: s = json_set_int(o, f[i].key, (int64_t) * (const uint64_t *)p); break;
        case F_DOUBLE: s = json_set_double(o, f[i].key, *(const double *)p); break;
        case F_FLOAT: s = json_set_double(o, f[i].key, *(const float *)p); break;
        case F_SCHED: s = json_set_string(o, f[i].key, train_sched_name(*(const enum train_sched *)p)); break;
        case F_LOSS: s = json_set_string(o, f[i].key, train_loss_name(*(const enum train_loss *)p)); break;
        case F_MIXUP: {
            unsigned k = (unsigned)*(const enum batch_mixup *)p;
            s = json_set_string(o, f[i].key, k <= BATCH_MIXUP_BATCH ? mixup_names[k] : "?");
            break;
        }
        case F_OPTIM: s = json_set_string(o, f[i].key, optim_kind_name(*(const enum optim_kind *)p)); break;
        }
    }
    if (!s) s = json_dump(o, out);
    json_destroy(o);
    return s;
}

/* Set the fields of base that the object text holds; unknown keys (a newer writer's) are
 * ignored. */
static int fields_from_json(void *base, const struct field *f, int n, const char *text, const char *label)
{
    struct json *root;
    int s = json_parse_max(text, label, 4 * n + 16, &root);
    if (s) return s;
    if (json_kind_of(root) != JSON_KIND_OBJECT) {
        s = status_set(STATUS_FORMAT, "%s: is %s, expected an object", label, json_kind_name(json_kind_of(root)));
        json_destroy(root);
        return s;
    }
    for (int i = 0; i < n && !s; i++) {
        const struct json *v = json_find(root, f[i].key);
        if (!v) continue;
        char *p = (char *)base + f[i].offset;
        int64_t i64;
        const char *str = NULL;
        switch (f[i].type) {
        case F_INT: s = json_to_int(v, (int *)p); break;
        case F_LONG:
            if (!(s = json_to_int64(v, &i64))) *(long *)p = (long)i64;
            break;
        case F_U64:
            if (!(s = json_to_int64(v, &i64))) *(uint64_t *)p = (uint64_t)i64;
            break;
        case F_DOUBLE: s = json_to_double(v, (double *)p); break;
        case F_FLOAT: s = json_to_float(v, (float *)p); break;
        case F_SCHED:
            if (!(s = json_to_string(v, &str))) s = train_sched_parse(str, (enum train_sched *)p);
            break;
        case F_LOSS:
            if (!(s = json_to_string(v, &str))) s = train_loss_parse(str, (enum train_loss *)p);
            break;
        case F_MIXUP:
            if (!(s = json_to_string(v, &str))) {
                s = STATUS_FORMAT;
                for (int k = 0; k <= BATCH_MIXUP_BATCH; k++)
                    if (!strcmp(str, mixup_names[k])) *(enum batch_mixup *)p = (enum batch_mixup)k, s = STATUS_OK;
                if (s) status_set(s, "'%s' is '%s' (off, sample, batch)", f[i].key, str);
            }
            break;
        case F_OPTIM:
            if (!(s = json_to_string(v, &str))) s = optim_kind_parse(str, (enum optim_kind *)p);
            break;
        }
        if (s && f[i].type >= F_SCHED) s = status_prefix(STATUS_FORMAT, "%s: '%s'", label, f[i].key);
    }
    json_destroy(root);
    return s ? STATUS_FORMAT : STATUS_OK;
}

int train_opts_to_json(const struct train_opts *o, char **out)
{
    return fields_to_json(o, opt_fields, (int)(sizeof opt_fields / sizeof *opt_fields), out);
}

int train_opts_from_json(struct train_opts *o, const char *text, const char *label)
{
    train_opts_default(o);
    return fields_from_json(o, opt_fields, (int)(sizeof opt_fields / sizeof *opt_fields), text, label);
}

int train_state_to_json(const struct train_state *s, char **out)
{
    return fields_to_json(s, state_fields, (int)(sizeof state_fields / sizeof *state_fields), out);
}

int train_state_from_json(struct train_state *s, const char *text, const char *label)
{
    memset(s, 0, sizeof *s);
    return fields_from_json(s, state_fields, (int)(sizeof state_fields / sizeof *state_fields), text, label);
}

int train_swa_epochs(const struct train_opts *o, int n_epochs)
{
    if (o->swa_epochs >= 0) return o->swa_epochs < n_epochs ? o->swa_epochs : n_epochs;
    int s, d;
    decay_window(o, n_epochs, &s, &d);
    int n = o->sched == TRAIN_SCHED_LINEAR ? n_epochs - d : (int)lround(2.0 * n_epochs / 7.0);
    return n < 1 ? 1 : n > n_epochs ? n_epochs : n;
}

int train_swa_at(const struct train_opts *o, int n_epochs, int epoch)
{
    int n = train_swa_epochs(o, n_epochs);
    return n > 0 && epoch >= n_epochs - n && epoch < n_epochs && (n_epochs - 1 - epoch) % o->swa_every == 0;
}
