/* synth.c: the scene synthesiser's data set writer: parameters, layout, splits, files,
 * the cache of the embedded default.
 *
 * Key idea: the data set is a pure function of its parameters. A job is one segment (one
 * location's stretch of sound): its sound field is rendered once from streams split off the
 * seed by (class, location, segment), then recorded by each of its devices, one WAV each.
 * Jobs run on threads_get() OpenMP threads in any order; nothing depends on the order. The
 * whole tree is written into a temporary directory beside the target and renamed into place
 * at the end, so a data set directory is either complete or absent.
 *
 * Splits follow TAU 2020 Mobile's development setup: whole recording locations go to
 * fold1_train or fold1_evaluate (fold1_test lists the evaluate clips without labels); every
 * segment is recorded by device a, train segments also by train_devices seen devices in
 * turn, evaluate segments by eval_devices of all the others in turn, so the unseen devices
 * appear in evaluate only.
 *
 * ref: TAU Urban Acoustic Scenes 2020 Mobile, development set (Zenodo 3819968): meta.csv and
 *      evaluation_setup/fold1_*.csv layouts, file naming scene-city-location-segment-device.
 */
#include "synth_internal.h"

#include <dirent.h>
#include <errno.h>
#include <omp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "basin/audio/audio_file.h"
#include "basin/core/fs.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/data/synth.h"

/* Stream tags: the top bits keep the families apart. */
#define TAG_SPLIT (1ull << 60)
#define TAG_LOC (2ull << 60)
#define TAG_SEG (3ull << 60)
#define TAG_DEV (4ull << 60)
#define TAG_CLIP (5ull << 60)

static const char *const cities[12] = {
    "amsterdam", "barcelona", "helsinki", "lisbon", "london", "lyon",
    "madrid", "milan", "paris", "prague", "stockholm", "vienna",
};

/* ---- parameters --------------------------------------------------------------------- */

#define MAX_SEGMENTS 1000

/* Clips of the full structure: every segment on a, and on its extra devices. */
static long structure_count(const struct synth_params *p)
{
    long n_train = p->n_locations - p->n_eval_locations;
    return (long)p->n_classes * p->n_segments *
           (n_train * (1 + p->train_devices) + (long)p->n_eval_locations * (1 + p->eval_devices));
}

void synth_params_default(struct synth_params *p)
{
    *p = (struct synth_params){
        .sample_rate_hz = 22050,
        .clip_s = 5.0,
        .n_classes = 10,
        .n_devices = 9,
        .n_unseen = 3,
        .n_locations = 8,
        .n_eval_locations = 3,
        .n_segments = 5,
        .train_devices = 1,
        .eval_devices = 2,
        .seed = 1,
    };
}

int synth_params_validate(const struct synth_params *p)
{
    if (p->sample_rate_hz < 8000 || p->sample_rate_hz > 192000)
        return status_set(STATUS_INVALID, "synth: sample rate %d Hz is outside 8000..192000",
                          p->sample_rate_hz);
    if (!(p->clip_s >= 0.5 && p->clip_s <= 600))
        return status_set(STATUS_INVALID, "synth: clip length %g s is outside 0.5..600", p->clip_s);
    if (p->n_classes < 2 || p->n_classes > SYNTH_MAX_CLASSES)
        return status_set(STATUS_INVALID, "synth: n_classes %d is outside 2..%d", p->n_classes,
                          SYNTH_MAX_CLASSES);
    if (p->n_devices < 1 || p->n_devices > SYNTH_MAX_DEVICES)
        return status_set(STATUS_INVALID, "synth: n_devices %d is outside 1..%d", p->n_devices,
                          SYNTH_MAX_DEVICES);
    if (p->n_unseen < 0 || p->n_unseen > p->n_devices - 1)
        return status_set(STATUS_INVALID,
                          "synth: n_unseen %d must leave device a seen (n_devices %d)", p->n_unseen,
                          p->n_devices);
    if (p->n_locations < 2 || p->n_locations > 1000)
        return status_set(STATUS_INVALID, "synth: n_locations %d is outside 2..1000",
                          p->n_locations);
    if (p->n_eval_locations < 1 || p->n_eval_locations >= p->n_locations)
        return status_set(STATUS_INVALID,
                          "synth: n_eval_locations %d must be in 1..n_locations-1 (%d)",
                          p->n_eval_locations, p->n_locations - 1);
    if (p->n_segments < 1 || p->n_segments > MAX_SEGMENTS)
        return status_set(STATUS_INVALID, "synth: n_segments %d is outside 1..%d", p->n_segments,
                          MAX_SEGMENTS);
    int seen_other = p->n_devices - p->n_unseen - 1;
    if (p->train_devices < 0 || p->train_devices > seen_other)
        return status_set(STATUS_INVALID,
                          "synth: train_devices %d is outside 0..%d (seen devices besides a)",
                          p->train_devices, seen_other);
    if (p->eval_devices < 0 || p->eval_devices > p->n_devices - 1)
        return status_set(STATUS_INVALID,
                          "synth: eval_devices %d is outside 0..%d (devices besides a)",
                          p->eval_devices, p->n_devices - 1);
    if (p->n_unseen > 0 && p->eval_devices == 0)
        return status_set(STATUS_INVALID, "synth: n_unseen %d devices but eval_devices 0: they "
                                          "would never be recorded", p->n_unseen);
    long full = structure_count(p);
    if (p->n_clips < 0 || p->n_clips > full)
        return status_set(STATUS_INVALID, "synth: clips=%ld is outside 1..%ld (what %d segments "
                                          "per location hold)", p->n_clips, full, p->n_segments);
    if (p->n_clips > 0 && p->n_clips < p->n_classes)
        return status_set(STATUS_INVALID, "synth: clips=%ld is fewer than the %d classes (at "
                                          "least %d: one train clip per class; %d or more also "
                                          "give every class an evaluate clip)", p->n_clips,
                          p->n_classes, p->n_classes, 2 * p->n_classes);
    return 0;
}

int synth_params_set_clips(struct synth_params *p, long n)
{
    struct synth_params q = *p;
    q.n_segments = 1;
    q.n_clips = 0;
    long per = structure_count(&q);   /* clips per segment of every location */
    if (n < p->n_classes)
        return status_set(STATUS_INVALID, "synth: clips=%ld is fewer than the %d classes (at "
                                          "least %d: one train clip per class; %d or more also "
                                          "give every class an evaluate clip)", n, p->n_classes,
                          p->n_classes, 2 * p->n_classes);
    if (per <= 0 || (n + per - 1) / per > MAX_SEGMENTS)
        return status_set(STATUS_INVALID, "synth: clips=%ld is more than %d segments per location "
                                          "hold (at most %ld)", n, MAX_SEGMENTS,
                          per * MAX_SEGMENTS);
    q.n_segments = (int)((n + per - 1) / per);
    q.n_clips = structure_count(&q) == n ? 0 : n;
    int st = synth_params_validate(&q);
    if (!st) *p = q;
    return st;
}

int synth_params_string(const struct synth_params *p, char *buf, size_t n)
{
    /* " clips=N" only when set: the full structure keeps the description (and so the
     * cache directory) it had before exact clip counts existed. */
    char clips[32] = "";
    if (p->n_clips) snprintf(clips, sizeof clips, " clips=%ld", p->n_clips);
    return snprintf(buf, n,
                    "synth v%d sr=%d clip_s=%.17g classes=%d devices=%d unseen=%d locations=%d "
                    "eval_locations=%d segments=%d train_devices=%d eval_devices=%d seed=%llu%s",
                    SYNTH_VERSION, p->sample_rate_hz, p->clip_s, p->n_classes, p->n_devices,
                    p->n_unseen, p->n_locations, p->n_eval_locations, p->n_segments,
                    p->train_devices, p->eval_devices, (unsigned long long)p->seed, clips);
}

uint64_t synth_params_hash(const struct synth_params *p)
{
    char buf[512];
    synth_params_string(p, buf, sizeof buf);
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *c = buf; *c; c++) h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
    return h;
}

long synth_clip_count(const struct synth_params *p)
{
    return p->n_clips ? p->n_clips : structure_count(p);
}

int synth_class_index(const char *name)
{
    for (int k = 0; k < SYNTH_MAX_CLASSES; k++)
        if (name && !strcmp(name, synth_class_name(k))) return k;
    return -1;
}

int synth_device_index(const char *name)
{
    for (int d = 0; d < SYNTH_MAX_DEVICES; d++)
        if (name && !strcmp(name, synth_device_name(d))) return d;
    return -1;
}

static long clip_samples(const struct synth_params *p)
{
    return (long)(p->clip_s * p->sample_rate_hz + 0.5);
}

/* ---- one clip in memory ------------------------------------------------------------- */

int synth_clip(const struct synth_params *p, int scene, int device, uint64_t seed, float *out,
               long n)
{
    struct synth_params def;
    if (!p) synth_params_default(&def), p = &def;
    if (scene < 0 || scene >= SYNTH_MAX_CLASSES)
        return status_set(STATUS_INVALID, "synth: no scene %d (0..%d)", scene,
                          SYNTH_MAX_CLASSES - 1);
    if (device < 0 || device >= SYNTH_MAX_DEVICES)
        return status_set(STATUS_INVALID, "synth: no device %d (0..%d)", device,
                          SYNTH_MAX_DEVICES - 1);
    if (p->sample_rate_hz < 8000 || p->sample_rate_hz > 192000)
        return status_set(STATUS_INVALID, "synth: sample rate %d Hz is outside 8000..192000",
                          p->sample_rate_hz);
    if (n < 1 || n > 600L * p->sample_rate_hz)
        return status_set(STATUS_INVALID, "synth: clip of %ld samples is outside 1..600 s", n);
    struct synth_work *w = synth_work_create(n);
    float *x = mem_alloc((size_t)n * sizeof *x);
    int st = STATUS_NOMEM;
    if (!w || !x) goto done;
    struct rng root, loc, seg, dev;
    rng_seed(&root, seed);
    loc = rng_split(&root, TAG_CLIP | 1);
    seg = rng_split(&root, TAG_CLIP | 2);
    dev = rng_split(&seg, TAG_DEV | (uint64_t)device);
    if ((st = synth_scene_render(scene, &loc, &seg, p->sample_rate_hz, x, n, w))) goto done;
    synth_device_render(device, &dev, p->sample_rate_hz, x, out, w->a, n);
done:
    mem_free(x);
    synth_work_destroy(w);
    return st;
}

/* ---- the layout --------------------------------------------------------------------- */

/* One segment: rendered once, recorded by n_dev devices. */
struct job {
    int k, loc, seg, eval;
    int n_dev, dev[SYNTH_MAX_DEVICES];
};

/* One WAV file, a row of meta.csv. */
struct row {
    char file[128];     /* "audio/park-lyon-3-12-s2.wav" */
    char ident[48];     /* "lyon-3" */
    int k, d, eval;
    int loc, seg;
    int keep;           /* in the data set (all rows unless n_clips is set) */
};

static void identifier(const struct synth_params *p, int k, int loc, char *buf, size_t n)
{
    int g = k * p->n_locations + loc;
    snprintf(buf, n, "%s-%d", cities[g % 12], g / 12);
}

/* Every row of the full structure, in (class, location, segment, device) order. */
static int plan_rows(const struct synth_params *p, struct row **rows_out, long *n_rows)
{
    long nr = structure_count(p);
    struct row *rows = mem_calloc((size_t)nr, sizeof *rows);
    int *order = mem_alloc((size_t)p->n_locations * sizeof *order);
    char *is_eval = mem_calloc((size_t)p->n_locations, 1);
    if (!rows || !order || !is_eval) {
        mem_free(rows), mem_free(order), mem_free(is_eval);
        return STATUS_NOMEM;
    }
    struct rng root;
    rng_seed(&root, p->seed);
    int seen_other = p->n_devices - p->n_unseen - 1, other = p->n_devices - 1;
    long next_train = 0, next_eval = 0, r = 0;
    for (int k = 0; k < p->n_classes; k++) {
        struct rng sr = rng_split(&root, TAG_SPLIT | (uint64_t)k);
        for (int i = 0; i < p->n_locations; i++) order[i] = i, is_eval[i] = 0;
        rng_shuffle(&sr, order, p->n_locations);
        for (int i = 0; i < p->n_eval_locations; i++) is_eval[order[i]] = 1;
        for (int loc = 0; loc < p->n_locations; loc++) {
            char ident[48];
            identifier(p, k, loc, ident, sizeof ident);
            for (int seg = 0; seg < p->n_segments; seg++) {
                int eval = is_eval[loc];
                /* Device a, then other devices in turn: 1..seen_other for train, 1..other
                 * for evaluate. */
                int extra = eval ? p->eval_devices : p->train_devices;
                int pool = eval ? other : seen_other;
                long *next = eval ? &next_eval : &next_train;
                int chosen[SYNTH_MAX_DEVICES] = {1};
                for (int e = 0; e < extra; e++) chosen[1 + (int)((*next)++ % pool)] = 1;
                for (int d = 0; d < p->n_devices; d++) {
                    if (!chosen[d]) continue;
                    struct row *rw = &rows[r++];
                    snprintf(rw->file, sizeof rw->file, "audio/%s-%s-%d-%s.wav",
                             synth_class_name(k), ident, seg, synth_device_name(d));
                    snprintf(rw->ident, sizeof rw->ident, "%s", ident);
                    rw->k = k, rw->d = d, rw->eval = eval, rw->loc = loc, rw->seg = seg;
                    rw->keep = 1;
                }
            }
        }
    }
    CHECK(r == nr);
    mem_free(order);
    mem_free(is_eval);
    *rows_out = rows, *n_rows = nr;
    return 0;
}

/* A candidate row of one class and split, sorted into pick order: segment, then location
 * (then device). */
struct cand {
    int seg, loc, d;
    long row;
};

static int cand_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->seg != y->seg) return x->seg < y->seg ? -1 : 1;
    if (x->loc != y->loc) return x->loc < y->loc ? -1 : 1;
    return (x->d > y->d) - (x->d < y->d);
}

/* Keep exactly p->n_clips rows (the subset documented in synth.h). */
static int select_clips(const struct synth_params *p, struct row *rows, long nr)
{
    long share[2][SYNTH_MAX_DEVICES] = {{0}}, count[2][SYNTH_MAX_DEVICES] = {{0}};
    long per_class[2] = {0};
    for (long i = 0; i < nr; i++) {
        rows[i].keep = 0;
        share[rows[i].eval][rows[i].d]++;
        if (rows[i].k == 0) per_class[rows[i].eval]++;
    }
    long n_class = per_class[0] + per_class[1];
    struct cand *cand = mem_alloc((size_t)n_class * sizeof *cand);
    long *head = mem_alloc((size_t)n_class * sizeof *head);
    if (!cand || !head) {
        mem_free(cand), mem_free(head);
        return STATUS_NOMEM;
    }
    long first = 0;   /* rows are grouped by class */
    for (int k = 0; k < p->n_classes; k++) {
        long q = p->n_clips / p->n_classes + (k < p->n_clips % p->n_classes);
        long t = (long)((double)q * (double)per_class[0] / (double)n_class + 0.5);
        if (q >= 1 && t < 1) t = 1;
        if (q >= 2 && t > q - 1) t = q - 1;
        if (t > per_class[0]) t = per_class[0];
        if (q - t > per_class[1]) t = q - per_class[1];
        long want[2] = {t, q - t};
        for (int e = 0; e < 2; e++) {
            /* This class's rows of split e, bucketed by device in pick order. */
            long m = 0;
            for (long i = first; i < first + n_class; i++)
                if (rows[i].eval == e)
                    cand[m++] = (struct cand){rows[i].seg, rows[i].loc, rows[i].d, i};
            qsort(cand, (size_t)m, sizeof *cand, cand_cmp);
            long start[SYNTH_MAX_DEVICES + 1] = {0}, at[SYNTH_MAX_DEVICES];
            for (long j = 0; j < m; j++) start[cand[j].d + 1]++;
            for (int d = 0; d < SYNTH_MAX_DEVICES; d++) start[d + 1] += start[d];
            for (int d = 0; d < SYNTH_MAX_DEVICES; d++) at[d] = start[d];
            for (long j = 0; j < m; j++) head[at[cand[j].d]++] = cand[j].row;
            for (int d = 0; d < SYNTH_MAX_DEVICES; d++) at[d] = start[d];
            for (long pick = 0; pick < want[e]; pick++) {
                /* The device furthest below its share: least (count + 1) / share. */
                int best = -1;
                for (int d = 0; d < SYNTH_MAX_DEVICES; d++) {
                    if (at[d] == start[d + 1]) continue;
                    if (best < 0 || (count[e][d] + 1) * share[e][best] <
                                        (count[e][best] + 1) * share[e][d])
                        best = d;
                }
                if (best < 0) break;   /* not reached: want <= candidates (plan CHECKs) */
                rows[head[at[best]++]].keep = 1;
                count[e][best]++;
            }
        }
        first += n_class;
    }
    mem_free(cand);
    mem_free(head);
    return 0;
}

/* The kept rows and the jobs (segments with at least one kept row) that write them. */
static int plan(const struct synth_params *p, struct job **jobs_out, int *n_jobs,
                struct row **rows_out, long *n_rows)
{
    struct row *rows = NULL;
    long nr = 0;
    int st = plan_rows(p, &rows, &nr);
    if (!st && p->n_clips) st = select_clips(p, rows, nr);
    if (st) {
        mem_free(rows);
        return st;
    }
    int max_jobs = p->n_classes * p->n_locations * p->n_segments;
    struct job *jobs = mem_calloc((size_t)max_jobs, sizeof *jobs);
    if (!jobs) {
        mem_free(rows);
        return STATUS_NOMEM;
    }
    int nj = 0;
    long kept = 0;
    for (long i = 0; i < nr; i++) {
        const struct row *rw = &rows[i];
        if (!rw->keep) continue;
        struct job *jb = nj ? &jobs[nj - 1] : NULL;
        if (!jb || jb->k != rw->k || jb->loc != rw->loc || jb->seg != rw->seg) {
            jb = &jobs[nj++];
            jb->k = rw->k, jb->loc = rw->loc, jb->seg = rw->seg, jb->eval = rw->eval;
        }
        jb->dev[jb->n_dev++] = rw->d;
        rows[kept++] = *rw;
    }
    CHECK(kept == synth_clip_count(p) && nj <= max_jobs);
    *jobs_out = jobs, *n_jobs = nj, *rows_out = rows, *n_rows = kept;
    return 0;
}

static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const struct row *)a)->file, ((const struct row *)b)->file);
}

int synth_split_counts(const struct synth_params *p, long *n_train, long *n_evaluate)
{
    struct job *jobs = NULL;
    struct row *rows = NULL;
    int nj = 0;
    long nr = 0;
    int st = plan(p, &jobs, &nj, &rows, &nr);
    if (st) return st;
    *n_train = *n_evaluate = 0;
    for (long i = 0; i < nr; i++) *(rows[i].eval ? n_evaluate : n_train) += 1;
    mem_free(jobs);
    mem_free(rows);
    return 0;
}

uint64_t synth_bytes(const struct synth_params *p)
{
    /* A 44-byte WAV header and 16-bit samples per clip; about 200 bytes of listings. */
    return (uint64_t)synth_clip_count(p) * (44 + 2 * (uint64_t)clip_samples(p) + 200);
}

/* ---- files and directories ---------------------------------------------------------- */

static int dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = 0;
            break;
        }
    closedir(d);
    return empty;
}

/* 1: dir holds a complete synth output with exactly these parameters; 0: dir holds
 * synth output with other parameters or an incomplete one (why in *why); -1: not synth
 * output at all. */
static int previous_output(const char *dir, const struct synth_params *p, const char **why)
{
    char path[SYNTH_PATH_MAX + 64], line[1024], want[512];
    synth_params_string(p, want, sizeof want);
    snprintf(path, sizeof path, "%s/README.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int found = 0, synth = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "parameters: synth v", 19)) synth = 1;
        if (!strncmp(line, "parameters: ", 12) && !strcmp(line + 12, want)) found = 1;
    }
    fclose(f);
    if (!synth) return -1;
    if (!found) return *why = "holds a synth data set with other parameters", 0;
    static const char *const setup[] = {"evaluation_setup/fold1_train.csv",
                                        "evaluation_setup/fold1_evaluate.csv",
                                        "evaluation_setup/fold1_test.csv"};
    struct stat sb;
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, setup[i]);
        if (stat(path, &sb) != 0) return *why = "holds an incomplete synth data set", 0;
    }
    snprintf(path, sizeof path, "%s/meta.csv", dir);
    if (!(f = fopen(path, "r"))) return *why = "holds an incomplete synth data set", 0;
    long n = 0;
    int ok = fgets(line, sizeof line, f) != NULL;
    while (ok && fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        if (!tab) break;
        *tab = 0;
        snprintf(path, sizeof path, "%s/%s", dir, line);
        if (stat(path, &sb) != 0 || sb.st_size <= 44) ok = 0;
        n++;
    }
    fclose(f);
    if (!ok || n != synth_clip_count(p)) return *why = "holds an incomplete synth data set", 0;
    return 1;
}

static int write_text(const char *dir, const char *name, const char *text)
{
    char path[SYNTH_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return status_set(STATUS_IO, "%s: cannot create: %s", path, strerror(errno));
    int bad = fputs(text, f) < 0;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) bad = 1;
    if (fclose(f) != 0 || bad)
        return status_set(STATUS_IO, "%s: write failed: %s", path, strerror(errno));
    return 0;
}

/* A growing text buffer. */
struct text {
    char *s;
    size_t len, cap;
};

static int text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int text_add(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return status_set(STATUS_INVALID, "synth: formatting failed");
        if (t->s && t->len + (size_t)k < t->cap) {
            t->len += (size_t)k;
            return 0;
        }
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap < t->len + (size_t)k + 1) cap *= 2;
        char *s = mem_realloc(t->s, cap);
        if (!s) return STATUS_NOMEM;
        t->s = s, t->cap = cap;
    }
}

static int write_csvs(const char *dir, const struct synth_params *p, struct row *rows, long nr)
{
    qsort(rows, (size_t)nr, sizeof *rows, row_cmp);
    struct text meta = {0}, train = {0}, eval = {0}, test = {0};
    int st = text_add(&meta, "filename\tscene_label\tidentifier\tsource_label\n");
    st = st ? st : text_add(&train, "filename\tscene_label\n");
    st = st ? st : text_add(&eval, "filename\tscene_label\n");
    st = st ? st : text_add(&test, "filename\n");
    for (long i = 0; i < nr && !st; i++) {
        const struct row *r = &rows[i];
        const char *label = synth_class_name(r->k);
        st = text_add(&meta, "%s\t%s\t%s\t%s\n", r->file, label, r->ident, synth_device_name(r->d));
        if (st) break;
        if (r->eval) {
            st = text_add(&eval, "%s\t%s\n", r->file, label);
            st = st ? st : text_add(&test, "%s\n", r->file);
        } else {
            st = text_add(&train, "%s\t%s\n", r->file, label);
        }
    }
    (void)p;
    st = st ? st : write_text(dir, "meta.csv", meta.s);
    st = st ? st : write_text(dir, "evaluation_setup/fold1_train.csv", train.s);
    st = st ? st : write_text(dir, "evaluation_setup/fold1_evaluate.csv", eval.s);
    st = st ? st : write_text(dir, "evaluation_setup/fold1_test.csv", test.s);
    mem_free(meta.s), mem_free(train.s), mem_free(eval.s), mem_free(test.s);
    return st;
}

static int write_readme(const char *dir, const struct synth_params *p, const struct row *rows,
                        long nr)
{
    char ps[512];
    synth_params_string(p, ps, sizeof ps);
    long count[2][SYNTH_MAX_DEVICES] = {{0}};
    for (long i = 0; i < nr; i++) count[rows[i].eval][rows[i].d]++;
    struct text t = {0};
    int st = text_add(&t,
        "basin scene synthesiser: a procedural acoustic scene data set\n"
        "\n"
        "Generated by basin's scene synthesiser (src/data/synth*.c), version %d. The same\n"
        "parameters give byte-identical files on every run and machine.\n"
        "\n"
        "parameters: %s\n"
        "\n"
        "seed %llu, %d Hz, 16-bit PCM mono, %g s clips; %d classes, %d recording locations per\n"
        "class (%d for evaluation), %d segments per location; %ld clips.\n",
        SYNTH_VERSION, ps, (unsigned long long)p->seed, p->sample_rate_hz, p->clip_s, p->n_classes,
        p->n_locations, p->n_eval_locations, p->n_segments, nr);
    if (!st && p->n_clips) {
        long each = p->n_clips / p->n_classes, extra = p->n_clips % p->n_classes;
        char per[96];
        if (extra) snprintf(per, sizeof per, "%ld each, the first %ld classes one more", each, extra);
        else snprintf(per, sizeof per, "%ld each", each);
        st = text_add(&t,
            "\n"
            "clips=%ld: exactly %ld of the %ld clips this structure holds, chosen class by class\n"
            "(%s), split between train and evaluate in the structure's proportion\n"
            "(at least one train clip per class), devices in their share of each split, the\n"
            "earliest segments and locations first. A clip is byte-identical to the same clip of\n"
            "the full structure.\n",
            p->n_clips, p->n_clips, structure_count(p), per);
    }
    st = st ? st : text_add(&t,
        "\n"
        "Layout (as TAU Urban Acoustic Scenes 2020 Mobile, development set):\n"
        "  audio/<scene>-<city>-<location>-<segment>-<device>.wav\n"
        "  meta.csv                          filename, scene_label, identifier, source_label\n"
        "  evaluation_setup/fold1_train.csv     filename, scene_label\n"
        "  evaluation_setup/fold1_evaluate.csv  filename, scene_label\n"
        "  evaluation_setup/fold1_test.csv      filename (the evaluate clips, unlabelled)\n"
        "Files are tab-separated with a header, sorted by filename. The identifier\n"
        "(<city>-<location>) is a recording location: whole locations go to train or evaluate,\n"
        "so no recording leaks across the split. Every segment is recorded by device a; train\n"
        "segments also by %d seen device(s) in turn, evaluate segments by %d of the other\n"
        "devices in turn (parallel recordings of the same sound field). Devices never in\n"
        "fold1_train:",
        p->train_devices, p->eval_devices);
    for (int d = p->n_devices - p->n_unseen; d < p->n_devices && !st; d++)
        st = text_add(&t, " %s", synth_device_name(d));
    st = st ? st : text_add(&t, "%s\n\nClips per device (train / evaluate):\n",
                            p->n_unseen ? "" : " none");
    for (int d = 0; d < p->n_devices && !st; d++)
        st = text_add(&t, "  %-3s %4ld / %4ld\n", synth_device_name(d), count[0][d], count[1][d]);
    st = st ? st : text_add(&t, "\nScenes (each a mixture of shared ingredients; levels, "
                                "densities and spectra are\ndrawn per location and varied per "
                                "segment):\n");
    for (int k = 0; k < p->n_classes && !st; k++)
        st = text_add(&t, "  %s\n", synth_scene_describe(k));
    st = st ? st : text_add(&t, "\nDevices (fixed filters, gain, saturation and noise floor):\n");
    for (int d = 0; d < p->n_devices && !st; d++)
        st = text_add(&t, "  %s\n", synth_device_describe(d));
    st = st ? st : write_text(dir, "README.txt", t.s);
    mem_free(t.s);
    return st;
}

/* ---- writing the data set ----------------------------------------------------------- */

/* Reports from inside a segment come at most this often (a render polls at the start of
 * every ingredient; the calling thread then reports when this much time has passed). */
#define POLL_NS 50000000L

struct shared {
    const struct synth_params *p;
    const char *dir;
    const struct progress *progress;
    struct rng root;
    atomic_int stop;          /* 1: an error or a cancel; workers abandon their job */
    atomic_long done;         /* clips written */
    long total;               /* clips to write */
    long last_report_ns;      /* calling thread only */
    int status;               /* the first error, its message in msg */
    char msg[1024];
};

/* One thread's view of the shared state, for the render's poll. */
struct poller {
    struct shared *sh;
    int caller;               /* 1 on the calling thread: it reports progress */
};

static long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

/* Report progress (calling thread only); 0 when cancelled. */
static int report(struct shared *sh)
{
    sh->last_report_ns = now_ns();
    if (!progress_report(sh->progress, "synth", atomic_load(&sh->done), sh->total)) {
        atomic_store(&sh->stop, 1);
        return 0;
    }
    return 1;
}

/* The render's poll: non-zero to abandon the segment. The calling thread reports when
 * POLL_NS has passed since its last report, so a long segment stays cancellable. */
static int poll_stop(void *user)
{
    struct poller *pl = user;
    struct shared *sh = pl->sh;
    if (atomic_load(&sh->stop)) return 1;
    if (pl->caller && now_ns() - sh->last_report_ns >= POLL_NS && !report(sh)) return 1;
    return 0;
}

static void fail_shared(struct shared *sh, int st)
{
#pragma omp critical(synth_fail)
    {
        if (!sh->status) {
            sh->status = st;
            snprintf(sh->msg, sizeof sh->msg, "%s", status_detail());
        }
    }
    atomic_store(&sh->stop, 1);
}

/* Render one segment and record it on its devices. STATUS_CANCELLED when stopped. */
static int run_job(struct shared *sh, const struct job *jb, struct synth_work *w, float *x,
                   float *y)
{
    const struct synth_params *p = sh->p;
    long n = clip_samples(p);
    uint64_t li = (uint64_t)jb->k * 1000 + (uint64_t)jb->loc;
    struct rng loc = rng_split(&sh->root, TAG_LOC | li);
    struct rng seg = rng_split(&sh->root, TAG_SEG | (li * 1000 + (uint64_t)jb->seg));
    int st = synth_scene_render(jb->k, &loc, &seg, p->sample_rate_hz, x, n, w);
    if (st) return st;
    char ident[48], path[SYNTH_PATH_MAX + 160];
    identifier(p, jb->k, jb->loc, ident, sizeof ident);
    for (int e = 0; e < jb->n_dev; e++) {
        if (w->poll && w->poll(w->poll_user)) return STATUS_CANCELLED;
        int d = jb->dev[e];
        struct rng dr = rng_split(&seg, TAG_DEV | (uint64_t)d);
        synth_device_render(d, &dr, p->sample_rate_hz, x, y, w->a, n);
        snprintf(path, sizeof path, "%s/audio/%s-%s-%d-%s.wav", sh->dir, synth_class_name(jb->k),
                 ident, jb->seg, synth_device_name(d));
        struct audio_file af = {.x = y, .n_channels = 1, .n_frames = n,
                                .sample_rate_hz = p->sample_rate_hz};
        if ((st = audio_file_write(path, &af, AUDIO_FILE_WAV_16))) return st;
        atomic_fetch_add(&sh->done, 1);
    }
    return 0;
}

/* Render every job into dir (which exists, with audio/ and evaluation_setup/). */
static int render_all(struct shared *sh, const struct job *jobs, int nj)
{
    long n = clip_samples(sh->p);
    int nt = threads_get();
    if (nt > nj) nt = nj;
#pragma omp parallel num_threads(nt)
    {
        struct synth_work *w = synth_work_create(n);
        float *x = mem_alloc((size_t)n * sizeof *x), *y = mem_alloc((size_t)n * sizeof *y);
        /* OpenMP's thread 0 is the calling thread: it alone reports progress. */
        struct poller pl = {sh, omp_get_thread_num() == 0};
        if (!w || !x || !y) fail_shared(sh, STATUS_NOMEM);
        else w->poll = poll_stop, w->poll_user = &pl;
#pragma omp for schedule(dynamic, 1)
        for (int j = 0; j < nj; j++) {
            if (atomic_load(&sh->stop)) continue;
            int st = run_job(sh, &jobs[j], w, x, y);
            if (st == STATUS_CANCELLED && atomic_load(&sh->stop)) continue;
            if (st) {
                fail_shared(sh, st);
                continue;
            }
            if (pl.caller) report(sh);
        }
        synth_work_destroy(w);
        mem_free(x);
        mem_free(y);
    }
    if (sh->status) return status_set(sh->status, "%s", sh->msg);
    if (atomic_load(&sh->stop)) return status_set(STATUS_CANCELLED, "synth: cancelled");
    return 0;
}

/* out_dir without trailing slashes, in buf. */
static int clean_dir(const char *out_dir, char *buf, size_t n)
{
    size_t len = strlen(out_dir);
    while (len > 1 && out_dir[len - 1] == '/') len--;
    if (len == 0) return status_set(STATUS_INVALID, "synth: empty output directory name");
    if (len + 32 >= n) return status_set(STATUS_INVALID, "synth: output directory name too long");
    memcpy(buf, out_dir, len);
    buf[len] = 0;
    return 0;
}

int synth_present(const struct synth_params *p, const char *dir)
{
    const char *why;
    char d[SYNTH_PATH_MAX];
    return !synth_params_validate(p) && !clean_dir(dir, d, sizeof d) &&
           previous_output(d, p, &why) == 1;
}

int synth_write(const struct synth_params *p, const char *out_dir,
                const struct progress *progress)
{
    int st = synth_params_validate(p);
    if (st) return st;
    char dir[SYNTH_PATH_MAX], tmp[SYNTH_PATH_MAX + 64], sub[SYNTH_PATH_MAX + 96];
    if ((st = clean_dir(out_dir, dir, sizeof dir))) return st;
    const char *why = NULL;
    long total = synth_clip_count(p);
    struct stat sb;
    if (stat(dir, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return status_set(STATUS_INVALID, "%s: exists and is not a directory", dir);
        if (!dir_is_empty(dir)) {
            int prev = previous_output(dir, p, &why);
            if (prev == 1) {
                fs_clean_stale(dir);
                progress_report(progress, "synth", total, total);
                return 0;
            }
            if (prev == 0) return status_set(STATUS_INVALID, "%s: %s; remove it or choose another "
                                                             "directory", dir, why);
            return status_set(STATUS_INVALID, "%s: exists, is not empty and is not a synth data "
                                              "set", dir);
        }
    } else if (errno != ENOENT) {
        return status_set(STATUS_IO, "%s: %s", dir, strerror(errno));
    } else if ((st = fs_mkdir_parent(dir))) {
        return st;
    }
    /* Also removes the temporaries of dead processes beside dir. */
    if ((st = fs_temp_dir(dir, tmp, sizeof tmp))) return st;
    struct job *jobs = NULL;
    struct row *rows = NULL;
    int nj = 0;
    long nr = 0;
    struct shared sh = {.p = p, .dir = tmp, .progress = progress, .total = total};
    rng_seed(&sh.root, p->seed);
    atomic_init(&sh.stop, 0);
    atomic_init(&sh.done, 0);
    if ((st = plan(p, &jobs, &nj, &rows, &nr))) goto fail;
    snprintf(sub, sizeof sub, "%s/audio", tmp);
    if (mkdir(sub, 0777) != 0) goto fail_io;
    snprintf(sub, sizeof sub, "%s/evaluation_setup", tmp);
    if (mkdir(sub, 0777) != 0) goto fail_io;
    if (!report(&sh)) {
        st = status_set(STATUS_CANCELLED, "synth: cancelled");
        goto fail;
    }
    if ((st = render_all(&sh, jobs, nj))) goto fail;
    if ((st = write_csvs(tmp, p, rows, nr))) goto fail;
    if ((st = write_readme(tmp, p, rows, nr))) goto fail;
    if (!report(&sh)) {
        st = status_set(STATUS_CANCELLED, "synth: cancelled");
        goto fail;
    }
    /* An empty out_dir is replaced; a non-empty one appeared meanwhile (another process
     * finished the same data set first): reuse it when it matches. */
    if (rename(tmp, dir) != 0) {
        int err = errno;
        if ((err == ENOTEMPTY || err == EEXIST) && previous_output(dir, p, &why) == 1) {
            fs_remove_tree(tmp);
            st = 0;
            goto done;
        }
        st = status_set(STATUS_IO, "%s: cannot rename %s into place: %s", dir, tmp, strerror(err));
        goto fail;
    }
    fs_sync_parent(dir);
    st = 0;
    goto done;
fail_io:
    st = status_set(STATUS_IO, "%s: %s", sub, strerror(errno));
fail:
    fs_remove_tree(tmp);
done:
    mem_free(jobs);
    mem_free(rows);
    return st;
}

/* ---- the cache ---------------------------------------------------------------------- */

int synth_cache_dir(const struct synth_params *p, char *buf, size_t n)
{
    struct synth_params def;
    if (!p) synth_params_default(&def), p = &def;
    char sub[32];
    snprintf(sub, sizeof sub, "synth-%016llx", (unsigned long long)synth_params_hash(p));
    int st = fs_cache_dir(sub, buf, n);
    if (st == STATUS_NOT_FOUND)
        return status_set(st, "synth: no cache directory: neither XDG_CACHE_HOME nor HOME is set");
    if (st) return status_set(st, "synth: cache directory name longer than %zu bytes", n);
    return 0;
}

int synth_ensure(const struct synth_params *p, char *buf, size_t n,
                 const struct progress *progress)
{
    struct synth_params def;
    if (!p) synth_params_default(&def), p = &def;
    int st = synth_cache_dir(p, buf, n);
    if (st) return st;
    return synth_write(p, buf, progress);
}

int synth_ensure_default(char *buf, size_t n, const struct progress *progress)
{
    return synth_ensure(NULL, buf, n, progress);
}
