/* eval.c: accuracy, log loss, micro and macro, per class, per device, seen / unseen,
 * confusion; a split of a data set end to end; CSV export (see eval.h).
 *
 * Every group keeps per-class sums, so its macro figures (the mean over the classes it has
 * clips of) come from the same pass as its micro ones.
 */
#include "basin/train/eval.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "basin/core/fs.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/core/strbuf.h"
#include "basin/data/features.h"
#include "basin/dsp/frontend.h"
#include "basin/model/model.h"
#include "basin/model/predict.h"
#include "basin/train/pipeline.h"

/* ref: sklearn.metrics.log_loss clips probabilities to [eps, 1 - eps], eps 1e-15. */
#define EVAL_EPS 1e-15

void eval_result_destroy(struct eval_result *r)
{
    if (!r) return;
    mem_free(r->per_class);
    mem_free(r->per_device);
    mem_free(r->device_seen);
    mem_free(r->confusion);
    mem_free(r->probs);
    mem_free(r->labels);
    mem_free(r->devices);
    mem_free(r);
}

/* Per-class sums of one group: n, correct and summed -ln p per class (M). */
struct sums {
    long *n, *correct;
    double *nll;
};

static void add(struct eval_group *g, struct sums *cs, int y, int correct, double nll)
{
    g->n++;
    g->correct += correct;
    g->logloss += nll; /* a sum until finish() */
    cs->n[y]++;
    cs->correct[y] += correct;
    cs->nll[y] += nll;
}

static void finish(struct eval_group *g, const struct sums *cs, int m)
{
    g->acc = g->n ? (double)g->correct / g->n : 0;
    g->logloss = g->n ? g->logloss / g->n : 0;
    g->acc_macro = g->logloss_macro = 0;
    g->n_classes = 0;
    for (int k = 0; k < m; k++) {
        if (!cs->n[k]) continue;
        g->n_classes++;
        g->acc_macro += (double)cs->correct[k] / cs->n[k];
        g->logloss_macro += cs->nll[k] / cs->n[k];
    }
    if (g->n_classes) {
        g->acc_macro /= g->n_classes;
        g->logloss_macro /= g->n_classes;
    }
}

int eval_from_probs(struct eval_result **out, int n, int n_classes, const float *probs,
                    const int *labels, const int *devices, const struct dataset *ds)
{
    *out = NULL;
    const int M = n_classes, D = devices && ds ? dataset_n_devices(ds) : 0;
    /* groups: 0 all, 1..D devices, D+1 seen, D+2 unseen; each with M per-class sums */
    const int G = D + 3;
    struct eval_result *r = mem_calloc(1, sizeof *r);
    long *cn = mem_calloc((size_t)G * M + 1, sizeof *cn), *cc = mem_calloc((size_t)G * M + 1, sizeof *cc);
    double *cl = mem_calloc((size_t)G * M + 1, sizeof *cl);
    int s = r && cn && cc && cl ? STATUS_OK : STATUS_NOMEM;
    if (!s) {
        r->n_classes = M, r->n_devices = D, r->n = n, r->split = DATASET_SPLIT_ANY;
        r->per_class = mem_calloc((size_t)M, sizeof *r->per_class);
        r->per_device = mem_calloc((size_t)D + 1, sizeof *r->per_device);
        r->device_seen = mem_calloc((size_t)D + 1, sizeof *r->device_seen);
        r->confusion = mem_calloc((size_t)M * M, sizeof *r->confusion);
        r->probs = mem_alloc(((size_t)n * M + 1) * sizeof *r->probs);
        r->labels = mem_alloc(((size_t)n + 1) * sizeof *r->labels);
        if (D) r->devices = mem_alloc(((size_t)n + 1) * sizeof *r->devices);
        if (!r->per_class || !r->per_device || !r->device_seen || !r->confusion || !r->probs ||
            !r->labels || (D && !r->devices))
            s = STATUS_NOMEM;
    }
    if (s) {
        eval_result_destroy(r);
        mem_free(cn), mem_free(cc), mem_free(cl);
        return s;
    }
    struct sums *sums = mem_alloc(sizeof *sums * (size_t)G);
    if (!sums) {
        eval_result_destroy(r);
        mem_free(cn), mem_free(cc), mem_free(cl);
        return STATUS_NOMEM;
    }
    for (int g = 0; g < G; g++) sums[g] = (struct sums){cn + (long)g * M, cc + (long)g * M, cl + (long)g * M};
    memcpy(r->probs, probs, (size_t)n * M * sizeof *probs);
    memcpy(r->labels, labels, (size_t)n * sizeof *labels);
    if (D) memcpy(r->devices, devices, (size_t)n * sizeof *devices);
    for (int d = 0; d < D; d++) r->device_seen[d] = dataset_device_seen(ds, d);
    for (int i = 0; i < n; i++) {
        const float *p = probs + (long)i * M;
        int y = labels[i], best = 0;
        CHECK(y >= 0 && y < M);
        for (int k = 1; k < M; k++)
            if (p[k] > p[best]) best = k;
        double q = p[y] < EVAL_EPS ? EVAL_EPS : p[y] > 1 - EVAL_EPS ? 1 - EVAL_EPS : p[y];
        if (!(q == q)) q = EVAL_EPS;   /* NaN: counted as the worst case, not propagated */
        double nll = -log(q);
        int ok = best == y;
        r->confusion[(long)y * M + best]++;
        add(&r->all, &sums[0], y, ok, nll);
        r->per_class[y].n++;
        r->per_class[y].correct += ok;
        r->per_class[y].logloss += nll;
        if (D) {
            int d = devices[i];
            CHECK(d >= 0 && d < D);
            add(&r->per_device[d], &sums[1 + d], y, ok, nll);
            add(r->device_seen[d] ? &r->seen : &r->unseen, &sums[r->device_seen[d] ? D + 1 : D + 2], y, ok, nll);
        }
    }
    finish(&r->all, &sums[0], M);
    finish(&r->seen, &sums[D + 1], M);
    finish(&r->unseen, &sums[D + 2], M);
    for (int d = 0; d < D; d++) finish(&r->per_device[d], &sums[1 + d], M);
    for (int k = 0; k < M; k++) {
        struct eval_group *g = &r->per_class[k];
        g->acc = g->n ? (double)g->correct / g->n : 0;
        g->logloss = g->n ? g->logloss / g->n : 0;
        g->acc_macro = g->acc, g->logloss_macro = g->logloss, g->n_classes = g->n > 0;
    }
    r->acc_macro = r->all.acc_macro;
    r->logloss_macro = r->all.logloss_macro;
    mem_free(cn), mem_free(cc), mem_free(cl);
    mem_free(sums);
    *out = r;
    return STATUS_OK;
}

/* Relabels the predictor's "forward" reports as "eval". */
struct relabel {
    const struct progress *to;
};

static int relabel_fn(void *user, const char *label, long done, long total)
{
    (void)label;
    return progress_report(((struct relabel *)user)->to, "eval", done, total);
}

int eval_run(struct eval_result **out, struct model *m, const struct features *f,
             const struct dataset *ds, int batch, const struct progress *p)
{
    *out = NULL;
    const int M = m->cfg.classes, n = f->n;
    if (M != f->n_classes)
        return status_set(STATUS_MISMATCH, "the model has %d classes, the features %d", M, f->n_classes);
    if (batch <= 0) batch = 32;
    if (batch > n) batch = n > 0 ? n : 1;
    float *probs = mem_alloc(((size_t)n * M + 1) * sizeof *probs);
    int *devices = mem_alloc(((size_t)n + 1) * sizeof *devices);
    struct predictor *pr = NULL;
    struct relabel rl = {p};
    struct progress pe = {relabel_fn, &rl};
    int s = probs && devices ? STATUS_OK : STATUS_NOMEM;
    if (!s) s = predictor_create(&pr, m, batch, f->n_channels, f->n_mels, f->n_frames);
    if (!s) s = predictor_probs(pr, n, f->x, probs, &pe);
    if (s == STATUS_CANCELLED) s = status_set(STATUS_CANCELLED, "eval: cancelled");
    for (int i = 0; i < n && !s; i++) devices[i] = dataset_item(ds, f->items[i])->device;
    if (!s) s = eval_from_probs(out, n, M, probs, f->labels, devices, ds);
    predictor_destroy(pr);
    mem_free(probs);
    mem_free(devices);
    return s;
}

int eval_dataset(struct eval_result **out, struct model *m, const struct dataset *ds,
                 const struct eval_opts *o, const struct progress *p)
{
    *out = NULL;
    const struct eval_opts none = {0};
    if (!o) o = &none;
    struct frontend_params fp;
    int s;
    if (o->frontend) fp = *o->frontend;
    else if ((s = pipeline_model_frontend(m, &fp))) return s;
    if ((s = dataset_require_split(ds, o->split))) return s;
    if ((s = pipeline_check(m, &fp, ds))) return s;
    struct frontend *fe = NULL;
    struct features *f = NULL;
    const struct features_opts fo = {.in_ch = m->cfg.in_ch, .n_samples = o->n_samples,
                                     .pad = FEATURES_PAD_REPEAT, .cache_dir = o->cache_dir};
    const int normed = m->n_norm > 0;
    if (!(s = frontend_create(&fe, &fp)))
        s = features_prepare(&f, ds, o->split, fe, &fo, normed ? FEATURES_NORM_GIVEN : FEATURES_NORM_NONE,
                             m->norm_mean, m->norm_std, NULL, NULL, p);
    if (!s) s = eval_run(out, m, f, ds, o->batch, p);
    if (!s) {
        struct eval_result *r = *out;
        r->split = o->split;
        r->n_skipped = f->n_skipped;
        r->n_computed = f->n_computed, r->n_cached = f->n_cached;
        r->n_samples = f->n_samples, r->n_frames = f->n_frames;
        snprintf(r->preset, sizeof r->preset, "%s", fp.preset);
        r->normalised = normed;
    }
    features_destroy(f);
    frontend_destroy(fe);
    return s;
}

/* ----------------------------------------------------------------------------- CSV */

int eval_confusion_path(const char *path, char *buf, size_t n)
{
    size_t k = strlen(path);
    int w = k >= 4 && !strcmp(path + k - 4, ".csv")
                ? snprintf(buf, n, "%.*s-confusion.csv", (int)(k - 4), path)
                : snprintf(buf, n, "%s-confusion.csv", path);
    if (w < 0 || (size_t)w >= n) return status_set(STATUS_INVALID, "%s: path too long", path);
    return STATUS_OK;
}

/* One CSV field: quoted (RFC 4180) when it holds a comma, a quote or a line break. */
static void csv_field(struct strbuf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        strbuf_puts(b, s);
        return;
    }
    strbuf_puts(b, "\"");
    for (; *s; s++) {
        if (*s == '"') strbuf_puts(b, "\"\"");
        else strbuf_put(b, s, 1);
    }
    strbuf_puts(b, "\"");
}

static const char *class_name(const struct dataset *ds, int k, char *buf, size_t n)
{
    if (ds && k < dataset_n_classes(ds)) return dataset_class_name(ds, k);
    snprintf(buf, n, "class %d", k);
    return buf;
}

/* split,group,name,seen,n,correct,acc,logloss,acc_macro,logloss_macro */
static void csv_row(struct strbuf *b, const char *split, const char *group, const char *name, int seen,
                    const struct eval_group *g)
{
    strbuf_printf(b, "%s,%s,", split, group);
    csv_field(b, name);
    if (seen >= 0) strbuf_printf(b, ",%d", seen);
    else strbuf_puts(b, ",");
    strbuf_printf(b, ",%ld,%ld", g->n, g->correct);
    if (g->n) strbuf_printf(b, ",%.6f,%.6f,%.6f,%.6f\n", g->acc, g->logloss, g->acc_macro, g->logloss_macro);
    else strbuf_puts(b, ",,,,\n");
}

static int write_text(const char *path, const struct strbuf *b)
{
    if (b->failed) return STATUS_NOMEM;
    return fs_write_file(path, b->p ? b->p : "", b->n, 0);
}

int eval_write_csv(const struct eval_result *r, const struct dataset *ds, const char *path)
{
    char conf[FS_PATH_MAX], nb[32];
    int s = eval_confusion_path(path, conf, sizeof conf);
    if (s) return s;
    const char *split = r->split == DATASET_SPLIT_ANY ? "all" : dataset_split_name(r->split);
    const int M = r->n_classes;
    struct strbuf b = {0};
    strbuf_puts(&b, "split,group,name,seen,n,correct,acc,logloss,acc_macro,logloss_macro\n");
    csv_row(&b, split, "all", "all", -1, &r->all);
    for (int k = 0; k < M; k++) csv_row(&b, split, "class", class_name(ds, k, nb, sizeof nb), -1, &r->per_class[k]);
    for (int d = 0; ds && d < r->n_devices; d++)
        if (r->per_device[d].n)
            csv_row(&b, split, "device", dataset_device_name(ds, d), r->device_seen[d], &r->per_device[d]);
    if (r->seen.n) csv_row(&b, split, "devices", "seen", -1, &r->seen);
    if (r->unseen.n) csv_row(&b, split, "devices", "unseen", -1, &r->unseen);
    s = write_text(path, &b);
    strbuf_fini(&b);
    if (s) return s;
    strbuf_puts(&b, "true");
    for (int k = 0; k < M; k++) {
        strbuf_puts(&b, ",");
        csv_field(&b, class_name(ds, k, nb, sizeof nb));
    }
    strbuf_puts(&b, "\n");
    for (int y = 0; y < M; y++) {
        csv_field(&b, class_name(ds, y, nb, sizeof nb));
        for (int k = 0; k < M; k++) strbuf_printf(&b, ",%ld", r->confusion[(long)y * M + k]);
        strbuf_puts(&b, "\n");
    }
    s = write_text(conf, &b);
    strbuf_fini(&b);
    return s;
}
