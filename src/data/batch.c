/* batch.c: seeded shuffled mini-batches with time roll, gain, mixup and SpecAugment.
 *
 * Key idea: randomness is addressed, not consumed: the epoch's permutation comes from
 * rng_split(seed, epoch), batch b's draws from rng_split(epoch stream, b), example i's from
 * rng_split(batch stream, i), mixup's from a tag of its own. So the examples of a batch can
 * be augmented in parallel, any batch can be drawn first, and nothing depends on threads.
 *
 * ref: mission-anchors 2.6 (CP-JKU mixup and time roll), 4.4 (torchlibrosa DropStripes),
 *      4.5 (SP4ASC mixup per batch); torchlibrosa/augmentation.py; cpjku_dcase20
 *      RollDataset and mixup in the training loop.
 */
#include "basin/data/batch.h"

#include <math.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/data/features.h"

/* rng_split tags beside the batch and example indices. */
#define SHUFFLE_TAG UINT64_MAX
#define MIXUP_TAG (UINT64_MAX - 1)
/* A batch smaller than this is augmented on the calling thread. */
#define PARALLEL_MIN_FLOATS (1L << 16)

struct batch_iter {
    const struct features *f;
    struct batch_opts o;
    struct rng base;        /* from the seed */
    struct rng epoch;       /* rng_split(base, epoch) */
    int *perm;              /* (n) rows in epoch order */
    float *mix;             /* (N, C, F, T) the batch before mixup */
    int *mix_perm;          /* (N) partner positions in the batch */
    struct rng *ex_rng;     /* (N) each example's stream, from roll and gain to SpecAugment */
    struct batch b;
};

void batch_opts_default(struct batch_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch_size = 32;
    o->shuffle = 1;
}

int batch_opts_preset(struct batch_opts *o, const char *name)
{
    batch_opts_default(o);
    if (!strcmp(name, "none")) return STATUS_OK;
    if (!strcmp(name, "cpjku")) {
        /* ref: mission-anchors 2.6: batch 10, mixup 0.3 with max(l, 1 - l), roll 50. */
        o->batch_size = 10;
        o->roll_frames = 50;
        o->mixup = BATCH_MIXUP_SAMPLE;
        o->mixup_alpha = 0.3;
        return STATUS_OK;
    }
    if (!strcmp(name, "sp4asc")) {
        /* ref: mission-anchors 4.4, 4.5: batch 32 drop_last, mixup 0.2 per batch,
         * specAugment [128, 2, 32, 2]. */
        o->batch_size = 32;
        o->drop_last = 1;
        o->mixup = BATCH_MIXUP_BATCH;
        o->mixup_alpha = 0.2;
        o->time_width = 128;
        o->time_stripes = 2;
        o->freq_width = 32;
        o->freq_stripes = 2;
        return STATUS_OK;
    }
    return status_set(STATUS_NOT_FOUND, "batch: unknown recipe '%s' (none, cpjku, sp4asc)", name);
}

int batch_opts_validate(const struct batch_opts *o)
{
    if (o->batch_size < 1)
        return status_set(STATUS_INVALID, "batch: batch size %d must be >= 1", o->batch_size);
    if (o->roll_frames < 0)
        return status_set(STATUS_INVALID, "batch: roll %d must be >= 0", o->roll_frames);
    if (!(o->gain_db >= 0 && o->gain_db < 1e4))
        return status_set(STATUS_INVALID, "batch: gain %g dB must be >= 0", o->gain_db);
    if (o->mixup != BATCH_MIXUP_OFF && o->mixup != BATCH_MIXUP_SAMPLE && o->mixup != BATCH_MIXUP_BATCH)
        return status_set(STATUS_INVALID, "batch: unknown mixup mode %d", (int)o->mixup);
    if (o->mixup != BATCH_MIXUP_OFF && !(o->mixup_alpha > 0 && o->mixup_alpha < 1e6))
        return status_set(STATUS_INVALID, "batch: mixup alpha %g must be > 0", o->mixup_alpha);
    if (o->time_stripes < 0 || o->time_width < 0 || o->freq_stripes < 0 || o->freq_width < 0)
        return status_set(STATUS_INVALID, "batch: SpecAugment stripes and widths must be >= 0");
    if (!isfinite(o->specaug_value))
        return status_set(STATUS_INVALID, "batch: SpecAugment value must be finite");
    return STATUS_OK;
}

int batch_iter_create(struct batch_iter **out, const struct features *f,
                      const struct batch_opts *o)
{
    *out = NULL;
    int st = batch_opts_validate(o);
    if (st) return st;
    if (f->n < 1) return status_set(STATUS_INVALID, "batch: no clips");
    CHECK(f->n_classes >= 1 && f->n_channels >= 1 && f->n_mels >= 1 && f->n_frames >= 1);
    struct batch_iter *it = mem_calloc(1, sizeof *it);
    if (!it) return STATUS_NOMEM;
    it->f = f;
    it->o = *o;
    int nb = o->batch_size < f->n ? o->batch_size : f->n;
    size_t clip = (size_t)f->n_channels * (size_t)f->n_mels * (size_t)f->n_frames;
    size_t xb = mem_mul(mem_mul((size_t)nb, clip), sizeof(float));
    it->perm = mem_alloc(sizeof *it->perm * (size_t)f->n);
    it->b.x = xb ? mem_alloc(xb) : NULL;
    it->b.labels = mem_alloc(sizeof(int) * (size_t)nb);
    it->b.rows = mem_alloc(sizeof(int) * (size_t)nb);
    it->b.partner = mem_alloc(sizeof(int) * (size_t)nb);
    it->b.lambda = mem_alloc(sizeof(float) * (size_t)nb);
    it->mix_perm = mem_alloc(sizeof(int) * (size_t)nb);
    it->ex_rng = mem_alloc(sizeof(struct rng) * (size_t)nb);
    int ok = it->perm && it->b.x && it->b.labels && it->b.rows && it->b.partner && it->b.lambda &&
             it->mix_perm && it->ex_rng;
    if (ok && o->mixup != BATCH_MIXUP_OFF) {
        it->mix = mem_alloc(xb);
        it->b.targets = mem_alloc(sizeof(float) * (size_t)nb * (size_t)f->n_classes);
        ok = it->mix && it->b.targets;
    }
    if (!ok) {
        batch_iter_destroy(it);
        return STATUS_NOMEM;
    }
    rng_seed(&it->base, o->seed);
    batch_iter_epoch(it, 0);
    *out = it;
    return STATUS_OK;
}

void batch_iter_destroy(struct batch_iter *it)
{
    if (!it) return;
    mem_free(it->perm);
    mem_free(it->mix);
    mem_free(it->mix_perm);
    mem_free(it->ex_rng);
    mem_free(it->b.x);
    mem_free(it->b.labels);
    mem_free(it->b.targets);
    mem_free(it->b.rows);
    mem_free(it->b.partner);
    mem_free(it->b.lambda);
    mem_free(it);
}

void batch_iter_epoch(struct batch_iter *it, int epoch)
{
    CHECK(epoch >= 0);
    it->epoch = rng_split(&it->base, (uint64_t)epoch);
    for (int i = 0; i < it->f->n; i++) it->perm[i] = i;
    if (it->o.shuffle) {
        struct rng r = rng_split(&it->epoch, SHUFFLE_TAG);
        rng_shuffle(&r, it->perm, it->f->n);
    }
}

int batch_iter_n_batches(const struct batch_iter *it)
{
    int n = it->f->n, b = it->o.batch_size;
    return it->o.drop_last ? n / b : (n + b - 1) / b;
}

static void reverse(float *x, long n)
{
    for (long i = 0, j = n - 1; i < j; i++, j--) {
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
}

void batch_roll(float *x, int n_channels, int n_mels, int n_frames, int shift)
{
    long t = n_frames;
    long s = ((shift % t) + t) % t;
    if (s == 0) return;
    /* y[t] = x[(t - s) mod T]: a right rotation by s, as three reversals. */
    for (long r = 0; r < (long)n_channels * n_mels; r++) {
        float *row = x + r * t;
        reverse(row, t);
        reverse(row, s);
        reverse(row + s, t - s);
    }
}

void batch_spec_augment(float *x, int n_channels, int n_mels, int n_frames,
                        const struct batch_opts *o, struct rng *r)
{
    long t = n_frames, ft = (long)n_mels * n_frames;
    float v = o->specaug_value;
    /* ref: torchlibrosa DropStripes.transform_slice: distance = randint(0, W),
     * bgn = randint(0, total - distance), [bgn, bgn + distance) zeroed; time, then freq. */
    int wt = o->time_width < n_frames ? o->time_width : n_frames;
    for (int k = 0; wt > 0 && k < o->time_stripes; k++) {
        long w = (long)rng_below(r, (uint64_t)wt);
        long s = (long)rng_below(r, (uint64_t)(t - w));
        for (long row = 0; row < (long)n_channels * n_mels; row++)
            for (long j = s; j < s + w; j++) x[row * t + j] = v;
    }
    int wf = o->freq_width < n_mels ? o->freq_width : n_mels;
    for (int k = 0; wf > 0 && k < o->freq_stripes; k++) {
        long w = (long)rng_below(r, (uint64_t)wf);
        long s = (long)rng_below(r, (uint64_t)(n_mels - w));
        for (int c = 0; c < n_channels; c++)
            for (long j = (long)c * ft + s * t; j < (long)c * ft + (s + w) * t; j++) x[j] = v;
    }
}

const struct batch *batch_iter_get(struct batch_iter *it, int b)
{
    CHECK(b >= 0 && b < batch_iter_n_batches(it));
    const struct features *f = it->f;
    const struct batch_opts *o = &it->o;
    struct batch *out = &it->b;
    int start = b * o->batch_size;
    int n = f->n - start < o->batch_size ? f->n - start : o->batch_size;
    int n_c = f->n_channels, n_f = f->n_mels, n_t = f->n_frames, m = f->n_classes;
    long clip = (long)n_c * n_f * n_t;
    struct rng rb = rng_split(&it->epoch, (uint64_t)b);
    int big = (long)n * clip >= PARALLEL_MIN_FLOATS;   /* else threads cost more than they save */
    out->n = n;
    out->index = b;
    for (int i = 0; i < n; i++) {
        out->rows[i] = it->perm[start + i];
        out->labels[i] = f->labels[out->rows[i]];
        out->partner[i] = out->rows[i];
        out->lambda[i] = 1.0f;
    }

    /* 1-2: copy with the roll, then the gain, per example. The example's stream goes on
     * to SpecAugment below, so it is kept. */
#pragma omp parallel for num_threads(threads_get()) schedule(static) if (big)
    for (int i = 0; i < n; i++) {
        struct rng r = rng_split(&rb, (uint64_t)i);
        const float *src = f->x + (long)out->rows[i] * clip;
        float *dst = out->x + (long)i * clip;
        long s = 0;
        if (o->roll_frames > 0) {
            s = (long)rng_below(&r, 2 * (uint64_t)o->roll_frames + 1) - o->roll_frames;
            s = ((s % n_t) + n_t) % n_t;
        }
        for (long row = 0; row < (long)n_c * n_f; row++) {
            memcpy(dst + row * n_t + s, src + row * n_t, sizeof(float) * (size_t)(n_t - s));
            memcpy(dst + row * n_t, src + row * n_t + n_t - s, sizeof(float) * (size_t)s);
        }
        if (o->gain_db > 0) {
            double g = (2.0 * rng_uniform(&r) - 1.0) * o->gain_db;
            for (int c = 0; c < n_c; c++)
                for (int k = 0; k < n_f; k++) {
                    float add = (float)g;
                    if (f->znormed && f->std[k] > 0) add = (float)(g / f->std[k]);
                    float *row = dst + ((long)c * n_f + k) * n_t;
                    for (long j = 0; j < n_t; j++) row[j] += add;
                }
        }
        it->ex_rng[i] = r;
    }

    /* 3: mixup over the batch. */
    if (o->mixup != BATCH_MIXUP_OFF) {
        struct rng r = rng_split(&rb, MIXUP_TAG);
        int *perm = it->mix_perm;
        for (int i = 0; i < n; i++) perm[i] = i;
        rng_shuffle(&r, perm, n);
        double lam_batch = o->mixup == BATCH_MIXUP_BATCH ? rng_beta(&r, o->mixup_alpha, o->mixup_alpha) : 0;
        for (int i = 0; i < n; i++) {
            double l = lam_batch;
            if (o->mixup == BATCH_MIXUP_SAMPLE) {
                l = rng_beta(&r, o->mixup_alpha, o->mixup_alpha);
                l = l > 1 - l ? l : 1 - l;
            }
            out->lambda[i] = (float)l;
            out->partner[i] = out->rows[perm[i]];
        }
        memcpy(it->mix, out->x, sizeof(float) * (size_t)(n * clip));
#pragma omp parallel for num_threads(threads_get()) schedule(static) if (big)
        for (int i = 0; i < n; i++) {
            float l = out->lambda[i], l1 = 1.0f - l;
            const float *a = it->mix + (long)i * clip, *p = it->mix + (long)perm[i] * clip;
            float *d = out->x + (long)i * clip;
            for (long j = 0; j < clip; j++) d[j] = l * a[j] + l1 * p[j];
        }
        for (int i = 0; i < n; i++) {
            float *t = out->targets + (long)i * m;
            memset(t, 0, sizeof *t * (size_t)m);
            t[out->labels[i]] += out->lambda[i];
            t[f->labels[out->partner[i]]] += 1.0f - out->lambda[i];
        }
    }

    /* 4: SpecAugment, per example, on the stream the example's roll and gain used. */
    if ((o->time_stripes > 0 && o->time_width > 0) || (o->freq_stripes > 0 && o->freq_width > 0)) {
#pragma omp parallel for num_threads(threads_get()) schedule(static) if (big)
        for (int i = 0; i < n; i++)
            batch_spec_augment(out->x + (long)i * clip, n_c, n_f, n_t, o, &it->ex_rng[i]);
    }
    return out;
}
