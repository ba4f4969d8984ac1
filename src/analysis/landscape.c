/* landscape.c: loss surfaces over a direction pair, point by point, resumable from CSV.
 *
 * Key idea: a grid point is an independent unit (indices -> perturb -> one eval-mode pass
 * over clips in memory -> restore), so the order, the resumption and a later split across
 * processes are bookkeeping around landscape_point. The forward passes dominate: one
 * predictor per worker thread (inference plan, BN folded into the convs, weights read from
 * the store at every pass) is made per evaluator and reused for every point and every pair.
 *
 * ref: mission-anchors 1.4 (w + a dx + b dy; eval mode; mean cross-entropy over the whole
 *      partition, sum of loss * batch / N; accuracy in %), 1.5 (grids), 1.6 (the
 *      sharpness disc that the ring order fills first); basin_ref.py landscape
 *      (p.copy_(w0 + a * dx + b * dy), in float32, x direction along the columns).
 */
#include "basin/analysis/landscape.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basin/analysis/directions.h"
#include "basin/core/fs.h"
#include "basin/core/graph.h"
#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/strbuf.h"
#include "basin/core/threads.h"
#include "basin/data/features.h"
#include "basin/dsp/frontend.h"
#include "basin/model/model.h"
#include "basin/model/predict.h"
#include "basin/train/pipeline.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ----------------------------------------------------------------------------- data */

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int landscape_data_load(struct landscape_data *d, const struct model *m, const struct dataset *ds,
                        enum dataset_split split, int n, uint64_t subset_seed,
                        const struct frontend_params *fp, const struct progress *p)
{
    memset(d, 0, sizeof *d);
    struct frontend_params own;
    int s;
    if (!fp) {
        if ((s = pipeline_model_frontend(m, &own))) return s;
        fp = &own;
    }
    if ((s = dataset_require_split(ds, split))) return s;
    if ((s = pipeline_check(m, fp, ds))) return s;
    struct frontend *fe = NULL;
    int *idx = mem_alloc(sizeof *idx * (size_t)(dataset_n_items(ds) + 1));
    if (!idx) return status_set(STATUS_NOMEM, "landscape: out of memory");
    int k = dataset_split_items(ds, split, idx);
    d->n_split = k;
    d->subset_seed = subset_seed;
    if (n > 0 && n < k) {
        /* loss-landscape's --data_split draws a random subset too (numpy seed 0) */
        struct rng r;
        rng_seed(&r, subset_seed);
        rng_shuffle(&r, idx, k);
        qsort(idx, (size_t)n, sizeof *idx, cmp_int);
        k = n;
        d->subset = 1;
    }
    const struct features_opts fo = {.in_ch = m->cfg.in_ch, .pad = FEATURES_PAD_REPEAT};
    s = frontend_create(&fe, fp);
    if (!s) s = features_load_items(&d->f, ds, k, idx, fe, &fo, p);
    mem_free(idx);
    frontend_destroy(fe);
    if (!s && d->f->n == 0)
        s = status_set(STATUS_NOT_FOUND, "%s: no clip of the %s split loads", dataset_listing(ds),
                       split == DATASET_SPLIT_ANY ? "whole" : dataset_split_name(split));
    if (!s && m->n_norm > 0) features_znorm_apply(d->f, m->norm_mean, m->norm_std);
    if (!s && !(d->devices = mem_alloc(sizeof *d->devices * (size_t)d->f->n)))
        s = status_set(STATUS_NOMEM, "landscape: out of memory");
    if (s) {
        landscape_data_fini(d);
        return s;
    }
    const struct features *f = d->f;
    for (int i = 0; i < f->n; i++) d->devices[i] = dataset_item(ds, f->items[i])->device;
    d->n_devices = dataset_n_devices(ds);
    d->clips = (struct landscape_clips){.n = f->n, .c = f->n_channels, .f = f->n_mels, .t = f->n_frames,
                                        .x = f->x, .labels = f->labels, .groups = d->devices,
                                        .n_groups = d->n_devices};
    return STATUS_OK;
}

void landscape_data_fini(struct landscape_data *d)
{
    features_destroy(d->f);
    mem_free(d->devices);
    memset(d, 0, sizeof *d);
}

/* ----------------------------------------------------------------------------- evaluator */

/* Workers: with T > 1 threads the clips are split, not the layers. Each of T workers runs
 * its own one-thread predictor on batches of clips it takes in turn, so the network's
 * narrow layers run without a barrier between them and a batch's activations stay in the
 * worker's caches; a clip's loss is the same whichever worker computes it (the same plan,
 * the same batch boundaries), and the losses are summed in clip order afterwards. */
struct worker {
    struct predictor *pred;
    float *logits;              /* (batch, M) */
};

struct landscape_eval {
    struct model *m;
    struct landscape_clips clips;
    struct worker *w;
    int n_workers;
    int batch, classes;         /* batch: clips per forward pass of a worker */
    double *closs;              /* (N) each clip's loss, summed in order */
    int *cbest;                 /* (N) each clip's predicted class */
    double *gsum;               /* (n_groups) loss sums */
    long *gcorrect, *gn;        /* (n_groups) */
};

/* Workers' predictors, one-thread each (T = 1: one predictor with the caller's count). */
static int make_workers(struct landscape_eval *e, int batch)
{
    const struct landscape_clips *c = &e->clips;
    for (int k = 0; k < e->n_workers; k++) {
        int pin = e->n_workers > 1 ? threads_pin(1) : -1;
        int s = predictor_create(&e->w[k].pred, e->m, batch, c->c, c->f, c->t);
        if (pin >= 0) threads_pin(pin);
        if (s) return s;
        if (!(e->w[k].logits = mem_alloc(sizeof(float) * (size_t)batch * (size_t)e->classes)))
            return status_set(STATUS_NOMEM, "landscape: out of memory");
    }
    return STATUS_OK;
}

static void free_workers(struct landscape_eval *e)
{
    for (int k = 0; e->w && k < e->n_workers; k++) {
        predictor_destroy(e->w[k].pred);
        mem_free(e->w[k].logits);
        e->w[k] = (struct worker){0};
    }
}

int landscape_eval_create(struct landscape_eval **out, struct model *m, const struct landscape_clips *clips,
                          int batch)
{
    *out = NULL;
    CHECK(clips->n >= 1 && clips->x && clips->labels);
    CHECK(!clips->groups || clips->n_groups >= 1);
    struct landscape_eval *e = mem_calloc(1, sizeof *e);
    if (!e) return status_set(STATUS_NOMEM, "landscape: out of memory");
    e->m = m;
    e->clips = *clips;
    e->classes = m->cfg.classes;
    const int T = threads_get();
    int s = STATUS_OK;
    if (batch > 0) e->batch = batch < clips->n ? batch : clips->n;
    else e->batch = LANDSCAPE_AUTO_BATCH < clips->n ? LANDSCAPE_AUTO_BATCH : clips->n;
    /* no more workers than batches: each takes whole batches */
    const int nb = (clips->n + e->batch - 1) / e->batch;
    e->n_workers = T < nb ? T : nb;
    if (!(e->w = mem_calloc((size_t)e->n_workers, sizeof *e->w)))
        s = status_set(STATUS_NOMEM, "landscape: out of memory");
    /* automatic: halve the batch while the plans do not fit the memory available */
    while (!s && (s = make_workers(e, e->batch)) == STATUS_NOMEM && batch <= 0 && e->batch > 1) {
        free_workers(e);
        e->batch = (e->batch + 1) / 2;
        status_clear();
        s = STATUS_OK;
    }
    const int G = clips->groups ? clips->n_groups : 0;
    if (!s && (!(e->closs = mem_alloc(sizeof *e->closs * (size_t)clips->n)) ||
               !(e->cbest = mem_alloc(sizeof *e->cbest * (size_t)clips->n)) ||
               !(e->gsum = mem_calloc((size_t)G + 1, sizeof *e->gsum)) ||
               !(e->gcorrect = mem_calloc((size_t)G + 1, sizeof *e->gcorrect)) ||
               !(e->gn = mem_calloc((size_t)G + 1, sizeof *e->gn))))
        s = status_set(STATUS_NOMEM, "landscape: out of memory");
    for (int i = 0; !s && i < clips->n; i++) {
        if (clips->labels[i] < 0 || clips->labels[i] >= e->classes)
            s = status_set(STATUS_MISMATCH, "landscape: clip %d has label %d, the model %d classes", i,
                           clips->labels[i], e->classes);
        else if (G && (clips->groups[i] < 0 || clips->groups[i] >= G))
            s = status_set(STATUS_INVALID, "landscape: clip %d is in group %d of %d", i, clips->groups[i], G);
    }
    if (s) {
        landscape_eval_destroy(e);
        return s;
    }
    *out = e;
    return STATUS_OK;
}

void landscape_eval_destroy(struct landscape_eval *e)
{
    if (!e) return;
    free_workers(e);
    mem_free(e->w);
    mem_free(e->closs);
    mem_free(e->cbest);
    mem_free(e->gsum);
    mem_free(e->gcorrect);
    mem_free(e->gn);
    mem_free(e);
}

int landscape_eval_batch(const struct landscape_eval *e)
{
    return e->batch;
}

struct model *landscape_eval_model(const struct landscape_eval *e)
{
    return e->m;
}

const struct landscape_clips *landscape_eval_clips(const struct landscape_eval *e)
{
    return &e->clips;
}

int landscape_eval_workers(const struct landscape_eval *e)
{
    return e->n_workers;
}

/* Clips [i, i + k) through worker w: each clip's loss and predicted class. */
static int eval_clips(struct landscape_eval *e, struct worker *w, int i, int k)
{
    const struct landscape_clips *c = &e->clips;
    const int M = e->classes;
    const long per = (long)c->c * c->f * c->t;
    int s = predictor_logits(w->pred, k, c->x + (long)i * per, w->logits, NULL);
    if (s) return s;
    for (int r = 0; r < k; r++) {
        const float *z = w->logits + (long)r * M;
        /* ref: torch cross_entropy: log-sum-exp shifted by the maximum, in double */
        int best = 0;
        for (int j = 1; j < M; j++)
            if (z[j] > z[best]) best = j;
        double se = 1; /* exp(0) of the maximum itself */
        for (int j = 0; j < M; j++)
            if (j != best) se += exp((double)z[j] - z[best]);
        e->closs[i + r] = log(se) + z[best] - z[c->labels[i + r]];
        e->cbest[i + r] = best;
    }
    return STATUS_OK;
}

/* The shared state of one pass over the clips. */
struct pass {
    struct landscape_eval *e;
    const struct progress *p;
    long done, total;
    int next, finished, reported, stop, err;
    char msg[1024]; /* status.c's detail holds as much */
};

static void pass_fail(struct pass *a, int s, const char *msg)
{
#pragma omp critical(landscape_error)
    if (!a->err) {
        a->err = s;
        snprintf(a->msg, sizeof a->msg, "%s", msg);
    }
    __atomic_store_n(&a->stop, 1, __ATOMIC_RELAXED);
}

/* Worker t takes batches until none is left or the pass stops; worker 0 (the calling
 * thread) reports progress. */
static void pass_work(struct pass *a, int t)
{
    struct landscape_eval *e = a->e;
    const int n = e->clips.n, B = e->batch;
    while (!__atomic_load_n(&a->stop, __ATOMIC_RELAXED)) {
        const int i = __atomic_fetch_add(&a->next, B, __ATOMIC_RELAXED);
        if (i >= n) break;
        const int k = n - i < B ? n - i : B;
        int s = eval_clips(e, &e->w[t], i, k);
        if (s) {
            pass_fail(a, s, status_detail());
            break;
        }
        const int f = __atomic_add_fetch(&a->finished, k, __ATOMIC_RELAXED);
        if (t != 0) continue;
        a->reported = f;
        if (!progress_report(a->p, "landscape", a->done + f, a->total))
            pass_fail(a, STATUS_CANCELLED, "landscape: cancelled");
    }
}

/* Every clip through the workers. The first error (its message carried over to the calling
 * thread) or a cancel stops every worker at its next batch. A single worker runs on the
 * calling thread, outside any parallel region, so its predictor's kernels use the caller's
 * threads. */
static int eval_all(struct landscape_eval *e, const struct progress *p, long done, long total)
{
    struct pass a = {.e = e, .p = p, .done = done, .total = total};
    if (e->n_workers == 1) {
        pass_work(&a, 0);
    } else {
#pragma omp parallel num_threads(e->n_workers)
        {
            const int pin = threads_pin(1);
            pass_work(&a, omp_get_thread_num());
            threads_pin(pin);
        }
    }
    if (a.err) return status_set(a.err, "%s", a.msg);
    /* the last batches may have been other workers' */
    if (a.reported != e->clips.n && !progress_report(p, "landscape", done + e->clips.n, total))
        return status_set(STATUS_CANCELLED, "landscape: cancelled");
    return STATUS_OK;
}

int landscape_eval_run(struct landscape_eval *e, double *loss, double *acc, double *group_loss, double *group_acc,
                       const struct progress *p, long done, long total)
{
    const struct landscape_clips *c = &e->clips;
    const int G = c->groups ? c->n_groups : 0;
    int s = eval_all(e, p, done, total);
    if (s) return s;
    double sum = 0;
    long correct = 0;
    for (int g = 0; g < G; g++) e->gsum[g] = 0, e->gcorrect[g] = e->gn[g] = 0;
    for (int i = 0; i < c->n; i++) {
        const int ok = e->cbest[i] == c->labels[i];
        sum += e->closs[i];
        correct += ok;
        if (G) {
            const int g = c->groups[i];
            e->gsum[g] += e->closs[i];
            e->gcorrect[g] += ok;
            e->gn[g]++;
        }
    }
    *loss = sum / c->n;
    *acc = 100.0 * (double)correct / c->n;
    for (int g = 0; g < G; g++) {
        if (group_loss) group_loss[g] = e->gn[g] ? e->gsum[g] / e->gn[g] : NAN;
        if (group_acc) group_acc[g] = e->gn[g] ? 100.0 * (double)e->gcorrect[g] / e->gn[g] : NAN;
    }
    return STATUS_OK;
}

/* ----------------------------------------------------------------------------- surfaces */

struct span {
    long offset, n;             /* a tensor the directions touch, in the store */
};

struct landscape {
    struct landscape_eval *e;
    const struct directions *d;
    struct landscape_opts o;
    struct landscape_surface s;
    int *order;                 /* (n_points) */
    unsigned char *have;        /* (n_points) the overall value is there */
    unsigned char *ghave;       /* (n_groups, n_points) */
    double *gl, *ga;            /* (n_groups) scratch */
    struct span *spans;
    int n_spans;
    float *w0;                  /* the unperturbed values of the spans, concatenated */
};

double landscape_coord(int i, int n, double range)
{
    /* ref: basin_ref.py grid_coords: (i - (n-1)/2) * 2r/(n-1), so the centre is exactly 0 */
    return (i - (n - 1) / 2.0) * 2.0 * range / (n - 1);
}

static long ring_key(int k, int n_x, int n_y)
{
    long dx = 2L * (k % n_x) - (n_x - 1), dy = 2L * (k / n_x) - (n_y - 1);
    return dx * dx + dy * dy;
}

struct keyed {
    long key;
    int k;
};

static int cmp_keyed(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->k > y->k) - (x->k < y->k);   /* row-major index: iy, then ix */
}

void landscape_order(int n_x, int n_y, int *order)
{
    const int n = n_x * n_y;
    struct keyed *v = mem_alloc(sizeof *v * (size_t)n);
    if (!v) { /* row-major then: still every point, only not centre first */
        for (int k = 0; k < n; k++) order[k] = k;
        return;
    }
    for (int k = 0; k < n; k++) v[k] = (struct keyed){ring_key(k, n_x, n_y), k};
    qsort(v, (size_t)n, sizeof *v, cmp_keyed);
    for (int k = 0; k < n; k++) order[k] = v[k].k;
    mem_free(v);
}

static void update_done(struct landscape *L, int k)
{
    struct landscape_surface *s = &L->s;
    int ok = L->have[k];
    for (int g = 0; ok && g < s->n_groups; g++)
        if (s->group_n[g] > 0 && !L->ghave[(long)g * s->n_points + k]) ok = 0;
    if (ok && !s->done[k]) s->n_done++;
    if (!ok && s->done[k]) s->n_done--;
    s->done[k] = (unsigned char)ok;
}

int landscape_create(struct landscape **out, struct landscape_eval *e, const struct directions *d,
                     const struct landscape_opts *o)
{
    *out = NULL;
    const struct landscape_opts def = {11, 0.25, 2};
    struct landscape_opts opt = o ? *o : def;
    if (!opt.dims) opt.dims = 2;
    if (opt.n < 2 || opt.n > LANDSCAPE_MAX_N)
        return status_set(STATUS_INVALID, "landscape: grid=%d: out of range 2..%d", opt.n, LANDSCAPE_MAX_N);
    if (!(opt.range > 0) || !isfinite(opt.range) || opt.range > 1e6)
        return status_set(STATUS_INVALID, "landscape: range=%g: more than 0 and at most 1e6", opt.range);
    if (opt.dims != 1 && opt.dims != 2)
        return status_set(STATUS_INVALID, "landscape: dims=%d: 1 (a slice) or 2 (a grid)", opt.dims);
    const struct graph *g = e->m->g;
    CHECK(d->n_params == g->store.n_params);
    struct landscape *L = mem_calloc(1, sizeof *L);
    if (!L) return status_set(STATUS_NOMEM, "landscape: out of memory");
    L->e = e, L->d = d, L->o = opt;
    struct landscape_surface *s = &L->s;
    s->n_x = opt.n;
    s->n_y = opt.dims == 2 ? opt.n : 1;
    s->range = opt.range;
    s->n_points = s->n_x * s->n_y;
    const struct landscape_clips *c = &e->clips;
    s->n_groups = c->groups ? c->n_groups : 0;
    const size_t np = (size_t)s->n_points, ng = (size_t)s->n_groups;
    int ok = (s->coords = mem_alloc(sizeof *s->coords * (size_t)s->n_x)) && (s->loss = mem_alloc(sizeof *s->loss * np)) &&
             (s->acc = mem_alloc(sizeof *s->acc * np)) && (s->done = mem_calloc(np, 1)) &&
             (L->order = mem_alloc(sizeof *L->order * np)) && (L->have = mem_calloc(np, 1)) &&
             (L->ghave = mem_calloc(ng * np + 1, 1)) && (s->group_loss = mem_alloc(sizeof(double) * (ng * np + 1))) &&
             (s->group_acc = mem_alloc(sizeof(double) * (ng * np + 1))) && (s->group_n = mem_calloc(ng + 1, sizeof(long))) &&
             (L->gl = mem_alloc(sizeof(double) * (ng + 1))) && (L->ga = mem_alloc(sizeof(double) * (ng + 1))) &&
             (L->spans = mem_alloc(sizeof *L->spans * (size_t)(g->n_tensors + 1)));
    if (!ok) {
        landscape_destroy(L);
        return status_set(STATUS_NOMEM, "landscape: out of memory");
    }
    for (int i = 0; i < s->n_x; i++) s->coords[i] = landscape_coord(i, s->n_x, s->range);
    for (size_t k = 0; k < np; k++) s->loss[k] = s->acc[k] = NAN;
    for (size_t k = 0; k < ng * np; k++) s->group_loss[k] = s->group_acc[k] = NAN;
    for (int i = 0; i < c->n && s->n_groups; i++) s->group_n[c->groups[i]]++;
    landscape_order(s->n_x, s->n_y, L->order);
    /* the tensors the pair touches, and their unperturbed values */
    long saved = 0;
    for (int k = 0; k < g->n_tensors; k++) {
        const struct graph_tensor *t = &g->tensors[k];
        if (!tensor_kind_is_param(t->kind)) continue;
        int any = 0;
        for (long j = t->offset; j < t->offset + t->numel && !any; j++) any = d->x[j] != 0 || d->y[j] != 0;
        if (!any) continue;
        L->spans[L->n_spans++] = (struct span){t->offset, t->numel};
        saved += t->numel;
    }
    if (!(L->w0 = mem_alloc(sizeof *L->w0 * (size_t)(saved + 1)))) {
        landscape_destroy(L);
        return status_set(STATUS_NOMEM, "landscape: out of memory");
    }
    for (int k = 0, at = 0; k < L->n_spans; at += (int)L->spans[k].n, k++)
        memcpy(L->w0 + at, g->store.w + L->spans[k].offset, sizeof *L->w0 * (size_t)L->spans[k].n);
    *out = L;
    return STATUS_OK;
}

void landscape_destroy(struct landscape *L)
{
    if (!L) return;
    struct landscape_surface *s = &L->s;
    mem_free(s->coords);
    mem_free(s->loss);
    mem_free(s->acc);
    mem_free(s->done);
    mem_free(s->group_loss);
    mem_free(s->group_acc);
    mem_free(s->group_n);
    mem_free(L->order);
    mem_free(L->have);
    mem_free(L->ghave);
    mem_free(L->gl);
    mem_free(L->ga);
    mem_free(L->spans);
    mem_free(L->w0);
    mem_free(L);
}

const struct landscape_surface *landscape_surface(const struct landscape *L)
{
    return &L->s;
}

struct landscape_eval *landscape_evaluator(const struct landscape *L)
{
    return L->e;
}

/* w = w0 + a x + b y over the touched tensors (float32, as PyTorch's w0 + a * dx + b * dy),
 * or back to w0 exactly. */
static void set_weights(struct landscape *L, double a, double b, int restore)
{
    float *w = L->e->m->g->store.w;
    const float fa = (float)a, fb = (float)b, *x = L->d->x, *y = L->d->y;
    long at = 0;
    for (int k = 0; k < L->n_spans; k++) {
        const long o = L->spans[k].offset, n = L->spans[k].n;
        const float *w0 = L->w0 + at;
        if (restore) {
            memcpy(w + o, w0, sizeof *w * (size_t)n);
        } else {
            for (long j = 0; j < n; j++) {
                float t = w0[j] + fa * x[o + j];
                w[o + j] = t + fb * y[o + j];
            }
        }
        at += n;
    }
}

static int point(struct landscape *L, int ix, int iy, const struct progress *p, long done, long total)
{
    struct landscape_surface *s = &L->s;
    if (ix < 0 || ix >= s->n_x || iy < 0 || iy >= s->n_y)
        return status_set(STATUS_INVALID, "landscape: point (%d, %d) is outside the %d x %d grid", ix, iy, s->n_x,
                          s->n_y);
    const double t0 = now_s();
    set_weights(L, s->coords[ix], s->n_y > 1 ? s->coords[iy] : 0.0, 0);
    double loss, acc;
    int st = landscape_eval_run(L->e, &loss, &acc, L->gl, L->ga, p, done, total);
    set_weights(L, 0, 0, 1);
    if (st) return st;
    const int k = iy * s->n_x + ix;
    s->loss[k] = loss, s->acc[k] = acc;
    L->have[k] = 1;
    for (int g = 0; g < s->n_groups; g++) {
        s->group_loss[(long)g * s->n_points + k] = L->gl[g];
        s->group_acc[(long)g * s->n_points + k] = L->ga[g];
        L->ghave[(long)g * s->n_points + k] = 1;
    }
    update_done(L, k);
    s->n_computed++;
    s->seconds += now_s() - t0;
    return STATUS_OK;
}

int landscape_point(struct landscape *L, int ix, int iy, const struct progress *p)
{
    const long n = L->e->clips.n;
    return point(L, ix, iy, p, 0, n);
}

int landscape_run(struct landscape *L, landscape_point_fn on_point, void *user, const struct progress *p)
{
    struct landscape_surface *s = &L->s;
    const long n = L->e->clips.n;
    long missing = s->n_points - s->n_done, done = 0;
    for (int i = 0; i < s->n_points; i++) {
        const int k = L->order[i];
        if (s->done[k]) continue;
        int st = point(L, k % s->n_x, k / s->n_x, p, done * n, missing * n);
        if (st == STATUS_CANCELLED)
            return status_set(st, "landscape: stopped with %d of %d points", s->n_done, s->n_points);
        if (st) return st;
        done++;
        if (on_point && !on_point(user, L, k % s->n_x, k / s->n_x))
            return status_set(STATUS_CANCELLED, "landscape: stopped with %d of %d points", s->n_done, s->n_points);
    }
    return STATUS_OK;
}

int landscape_set(struct landscape *L, int group, int ix, int iy, double loss, double acc)
{
    struct landscape_surface *s = &L->s;
    if (ix < 0 || ix >= s->n_x || iy < 0 || iy >= s->n_y)
        return status_set(STATUS_INVALID, "landscape: point (%d, %d) is outside the %d x %d grid", ix, iy, s->n_x,
                          s->n_y);
    if (group < -1 || group >= s->n_groups)
        return status_set(STATUS_INVALID, "landscape: group %d of %d", group, s->n_groups);
    const int k = iy * s->n_x + ix;
    if (group < 0) {
        s->loss[k] = loss, s->acc[k] = acc;
        L->have[k] = 1;
    } else {
        const long gk = (long)group * s->n_points + k;
        s->group_loss[gk] = loss, s->group_acc[gk] = acc;
        L->ghave[gk] = 1;
    }
    update_done(L, k);
    return STATUS_OK;
}

/* ----------------------------------------------------------------------------- CSV */

#define CSV_HEADER "ix,iy,alpha,beta,loss,acc"

int landscape_csv_write(const struct landscape_surface *s, int group, const char *path, const char *trailer)
{
    CHECK(group >= -1 && group < s->n_groups);
    struct strbuf b = {0};
    strbuf_puts(&b, CSV_HEADER "\n");
    const double *loss = group < 0 ? s->loss : s->group_loss + (long)group * s->n_points;
    const double *acc = group < 0 ? s->acc : s->group_acc + (long)group * s->n_points;
    for (int iy = 0; iy < s->n_y; iy++)
        for (int ix = 0; ix < s->n_x; ix++) {
            const int k = iy * s->n_x + ix;
            /* a group's value may be there while the point is not done: write what is there */
            int have = group < 0 ? !isnan(loss[k]) || s->done[k] : !isnan(loss[k]) || !isnan(acc[k]);
            if (!have) continue;
            strbuf_printf(&b, "%d,%d,%.6g,%.6g,%.9g,%.6g\n", ix, iy, s->coords[ix], s->n_y > 1 ? s->coords[iy] : 0.0,
                          loss[k], acc[k]);
        }
    for (const char *t = trailer; t && *t;) {
        const char *e = strchr(t, '\n');
        size_t n = e ? (size_t)(e - t) : strlen(t);
        if (t[0] != '#') strbuf_puts(&b, "# ");
        strbuf_put(&b, t, n);
        strbuf_puts(&b, "\n");
        t += n + (e ? 1 : 0);
    }
    int st = b.failed ? status_set(STATUS_NOMEM, "%s: out of memory", path) : STATUS_OK;
    if (!st) st = fs_mkdir_parent(path);
    if (!st) st = fs_write_file(path, b.p, b.n, 0);
    strbuf_fini(&b);
    return st;
}

/* A whole text file into a new string (mem_free). */
static int read_text(const char *path, char **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return status_set(STATUS_IO, "%s: %s", path, strerror(errno));
    struct strbuf b = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) strbuf_put(&b, buf, n);
    int err = ferror(f);
    fclose(f);
    if (err || b.failed) {
        strbuf_fini(&b);
        return err ? status_set(STATUS_IO, "%s: read error", path) : status_set(STATUS_NOMEM, "%s: out of memory", path);
    }
    *out = b.p ? b.p : mem_strdup("");
    return *out ? STATUS_OK : status_set(STATUS_NOMEM, "%s: out of memory", path);
}

/* A double field of a CSV row: strtod to the next comma or the end. */
static int field_double(const char **p, double *v, int last)
{
    char *end;
    errno = 0;
    *v = strtod(*p, &end);
    if (end == *p || errno == ERANGE) return 0;
    if (last ? *end != '\0' : *end != ',') return 0;
    *p = end + (last ? 0 : 1);
    return 1;
}

static int field_int(const char **p, int *v)
{
    char *end;
    errno = 0;
    long x = strtol(*p, &end, 10);
    if (end == *p || *end != ',' || errno || x < 0 || x > 1000000) return 0;
    *v = (int)x;
    *p = end + 1;
    return 1;
}

static int close_to(double a, double b, double scale)
{
    return fabs(a - b) <= 1e-6 * scale + 1e-5 * fabs(b);
}

int landscape_csv_load(struct landscape *L, int group, const char *path, char *trailer, size_t n, int *n_rows)
{
    struct landscape_surface *s = &L->s;
    if (group < -1 || group >= s->n_groups) return status_set(STATUS_INVALID, "landscape: group %d of %d", group, s->n_groups);
    if (trailer && n) trailer[0] = '\0';
    if (n_rows) *n_rows = 0;
    char *text;
    int st = read_text(path, &text);
    if (st) return st;
    size_t tl = 0;
    int line_no = 0, header = 0, rows = 0;
    for (char *line = text; line && *line && !st;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        line_no++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r') line[--len] = '\0';
        if (line[0] == '#') {
            const char *c = line + 1;
            while (*c == ' ') c++;
            if (trailer && n) {
                int w = snprintf(trailer + tl, n - tl, "%s\n", c);
                if (w > 0) tl = tl + (size_t)w < n ? tl + (size_t)w : n - 1;
            }
        } else if (len == 0) {
            /* blank lines are skipped */
        } else if (!header) {
            if (strcmp(line, CSV_HEADER))
                st = status_set(STATUS_FORMAT, "%s:%d: the header is '%.60s', expected '" CSV_HEADER "'", path, line_no,
                                line);
            header = 1;
        } else {
            const char *p = line;
            int ix, iy;
            double a, b, loss, acc;
            if (!field_int(&p, &ix) || !field_int(&p, &iy) || !field_double(&p, &a, 0) || !field_double(&p, &b, 0) ||
                !field_double(&p, &loss, 0) || !field_double(&p, &acc, 1)) {
                st = status_set(STATUS_FORMAT, "%s:%d: expected ix,iy,alpha,beta,loss,acc numbers, got '%.60s'", path,
                                line_no, line);
                break;
            }
            if (ix >= s->n_x || iy >= s->n_y) {
                st = status_set(STATUS_FORMAT, "%s:%d: point (%d, %d) is outside the %d x %d grid", path, line_no, ix,
                                iy, s->n_x, s->n_y);
                break;
            }
            const double ca = s->coords[ix], cb = s->n_y > 1 ? s->coords[iy] : 0.0;
            if (!close_to(a, ca, s->range) || !close_to(b, cb, s->range)) {
                st = status_set(STATUS_FORMAT, "%s:%d: point (%d, %d) is at (%g, %g), but this grid (%d points on "
                                "+-%g) has it at (%g, %g)", path, line_no, ix, iy, a, b, s->n_x, s->range, ca, cb);
                break;
            }
            const int k = iy * s->n_x + ix;
            const int had = group < 0 ? L->have[k] : L->ghave[(long)group * s->n_points + k];
            const double old = group < 0 ? s->loss[k] : s->group_loss[(long)group * s->n_points + k];
            if (had && !(old == loss || fabs(old - loss) <= 1e-8 * fabs(loss) || (isnan(old) && isnan(loss)))) {
                st = status_set(STATUS_FORMAT, "%s:%d: point (%d, %d) has loss %.9g here and %.9g already", path,
                                line_no, ix, iy, loss, old);
                break;
            }
            st = landscape_set(L, group, ix, iy, loss, acc);
            rows++;
        }
        line = next;
    }
    if (!st && !header) st = status_set(STATUS_FORMAT, "%s: no '" CSV_HEADER "' header: not a landscape file", path);
    mem_free(text);
    if (n_rows) *n_rows = rows;
    return st;
}
