/* features.c: clips -> (C, F, T) features, split loading over threads, the disk cache.
 *
 * Key idea: a clip's features depend only on the audio file's bytes, the clip options and
 * the front end's parameters, so that triple, hashed, names a cache file; whatever is
 * found under that name is checked (size, magic, key, shape, payload hash) before it is
 * used, and anything doubtful is recomputed. Loading runs clips in chunks of a few per
 * thread under OpenMP, each thread with its own front-end workspace; between chunks the
 * calling thread logs skipped files in item order and asks the progress callback whether
 * to go on, so warnings, results and cancellation do not depend on the thread count.
 *
 * ref: DESIGN.md sections 2 (data flow), 5 (front ends); mission-anchors 2.5 (cpjku per-bin
 *      z-norm over training frames), 4.1 (SP4ASC crops to 10 s); librosa.load (duration
 *      crop, to_mono mean); XDG Base Directory Specification (XDG_CACHE_HOME).
 */
#include "basin/data/features.h"

#include <errno.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basin/audio/audio_file.h"
#include "basin/core/fs.h"
#include "basin/core/log.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/data/cache.h"
#include "basin/data/hash.h"
#include "basin/dsp/frontend.h"
#include "basin/dsp/resample.h"
#include "basin/dsp/znorm.h"

#define MAX_IN_CH 64
#define CACHE_MAGIC "BASINFT1"
#define CACHE_HEADER_BYTES 64
#define CACHE_BOM 0x01020304u
/* Decoded past n_samples when resampling, so the resampler's filter sees real signal up to
 * the crop point (soxr's filters are a few ms long). */
#define RESAMPLE_MARGIN_S 0.1

/* ----------------------------------------------------------------------------- one clip */

long features_frames(const struct frontend *fe, long n_samples)
{
    return frontend_frames(fe, n_samples);
}

/* Output samples for n_in input frames, as resample.h gives them: rounded, halves up. */
static long converted_frames(long n_in, int rate_in, int rate_out)
{
    if (n_in <= 0 || n_in > (1L << 40)) return -1;   /* absurd header; rates are < 2^20 */
    unsigned long long num = (unsigned long long)n_in * (unsigned)rate_out * 2u + (unsigned)rate_in;
    return (long)(num / ((unsigned long long)rate_in * 2u));
}

int features_channels(const struct audio_file *af, int in_ch, const float **src, int *n_src,
                      float **owned)
{
    const int n_file = af->n_channels;
    const long n = af->n_frames;
    *owned = NULL;
    if (n <= 0 || !af->x) return status_set(STATUS_FORMAT, "no samples");
    *src = af->x;
    if (in_ch == 1 && n_file > 1) {
        /* ref: librosa.to_mono / audio_file_to_mono: summed in channel order, then divided. */
        float *mono = mem_alloc(sizeof *mono * (size_t)n);
        if (!mono) return STATUS_NOMEM;
        for (long t = 0; t < n; t++) {
            float s = 0.0f;
            for (int c = 0; c < n_file; c++) s += af->x[(long)c * n + t];
            mono[t] = s / (float)n_file;
        }
        *src = *owned = mono;
        *n_src = 1;
    } else if (n_file >= in_ch) {
        *n_src = in_ch;     /* planar: the first in_ch channels are the first in_ch rows */
    } else if (n_file == 1) {
        *n_src = 1;         /* the caller duplicates it */
    } else {
        return status_set(STATUS_UNSUPPORTED, "%d channels cannot feed a %d-channel model "
                          "(mono is duplicated, extra channels dropped)", n_file, in_ch);
    }
    return STATUS_OK;
}

int features_clip(const struct frontend *fe, struct frontend_work *w, const struct audio_file *af,
                  const struct features_opts *opts, float *y)
{
    int in_ch = opts->in_ch ? opts->in_ch : 1;
    long len = opts->n_samples;
    CHECK(len > 0 && in_ch >= 1);
    const struct frontend_params *p = frontend_get_params(fe);
    if (len < frontend_min_samples(fe))
        return status_set(STATUS_INVALID, "clip length %ld samples is below the front end's "
                          "minimum of %ld", len, frontend_min_samples(fe));
    long n = af->n_frames;
    int n_src;              /* channels carried through resampling: 1 or in_ch */
    const float *src;
    float *mono, *res = NULL, *clip = NULL;
    int st = features_channels(af, in_ch, &src, &n_src, &mono);
    if (st) return st;
    if (af->sample_rate_hz != p->sample_rate_hz) {
        long cap = resample_max_frames(n, af->sample_rate_hz, p->sample_rate_hz), n_out = 0;
        if (!(res = mem_alloc(mem_mul((size_t)cap, sizeof *res * (size_t)n_src)))) {
            st = STATUS_NOMEM;
            goto done;
        }
        if ((st = resample(src, n, n_src, RESAMPLE_PLANAR, af->sample_rate_hz, p->sample_rate_hz,
                           res, cap, &n_out)))
            goto done;
        src = res;
        n = n_out;
        if (n <= 0) {
            st = status_set(STATUS_FORMAT, "no samples after resampling");
            goto done;
        }
    }
    if (n != len) {
        if (!(clip = mem_alloc(mem_mul((size_t)len, sizeof *clip * (size_t)n_src)))) {
            st = STATUS_NOMEM;
            goto done;
        }
        for (int c = 0; c < n_src; c++) {
            const float *s = src + (long)c * n;
            float *d = clip + (long)c * len;
            if (n >= len) {
                memcpy(d, s, sizeof *d * (size_t)len);
            } else if (opts->pad == FEATURES_PAD_ZERO) {
                memcpy(d, s, sizeof *d * (size_t)n);
                memset(d + n, 0, sizeof *d * (size_t)(len - n));
            } else {
                for (long t = 0; t < len; t += n)
                    memcpy(d + t, s, sizeof *d * (size_t)(len - t < n ? len - t : n));
            }
        }
        src = clip;
    }
    long n_ft = (long)p->n_mels * frontend_frames(fe, len);
    for (int c = 0; c < in_ch; c++) {
        if (c >= n_src) {
            memcpy(y + c * n_ft, y, sizeof *y * (size_t)n_ft);
            continue;
        }
        if ((st = frontend_compute(fe, w, src + (long)c * len, len, y + c * n_ft))) goto done;
    }
done:
    mem_free(mono);
    mem_free(res);
    mem_free(clip);
    return st;
}

int features_file(const struct frontend *fe, struct frontend_work *w, const char *path,
                  const struct features_opts *opts, float *y)
{
    int in_ch = opts->in_ch ? opts->in_ch : 1;
    CHECK(opts->n_samples > 0);
    const struct frontend_params *p = frontend_get_params(fe);
    struct audio_file_read_opts ro = {
        .duration_s = (double)opts->n_samples / p->sample_rate_hz + RESAMPLE_MARGIN_S,
        .mono = in_ch == 1,
    };
    struct audio_file af;
    int st = audio_file_read(&af, path, &ro);
    if (st) return st;   /* audio_file's messages start with the path */
    st = features_clip(fe, w, &af, opts, y);
    audio_file_fini(&af);
    if (st && st != STATUS_NOMEM) return status_prefix(st, "%s", path);
    return st;
}

/* ----------------------------------------------------------------------------- lengths */

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int features_clip_samples(const struct dataset *ds, const struct frontend *fe, long *n_samples)
{
    int n = dataset_n_items(ds);
    int sr = frontend_get_params(fe)->sample_rate_hz;
    long *len = mem_alloc(sizeof *len * (size_t)(n ? n : 1));
    if (!len) return STATUS_NOMEM;
#pragma omp parallel for num_threads(threads_get()) schedule(dynamic, 16)
    for (int i = 0; i < n; i++) {
        struct audio_file_info info;
        len[i] = -1;
        if (audio_file_probe(dataset_item(ds, i)->path, &info) == STATUS_OK && info.n_frames > 0)
            len[i] = converted_frames(info.n_frames, info.sample_rate_hz, sr);
    }
    status_clear();
    int m = 0;
    for (int i = 0; i < n; i++)
        if (len[i] > 0) len[m++] = len[i];
    if (m == 0) {
        mem_free(len);
        return status_set(STATUS_NOT_FOUND, "%s: no clip header gives a length (missing "
                          "files?); set the clip length", dataset_listing(ds));
    }
    qsort(len, (size_t)m, sizeof *len, cmp_long);
    long best = len[0];
    int best_n = 0;
    for (int i = 0; i < m;) {
        int j = i;
        while (j < m && len[j] == len[i]) j++;
        if (j - i >= best_n) {   /* ascending, so ties go to the longer length */
            best_n = j - i;
            best = len[i];
        }
        i = j;
    }
    mem_free(len);
    *n_samples = best;
    return STATUS_OK;
}

/* ----------------------------------------------------------------------------- cache */

int features_cache_dir_default(char *buf, size_t n)
{
    int st = fs_cache_dir("features", buf, n);
    if (st == STATUS_NOT_FOUND)
        return status_set(st, "feature cache: neither XDG_CACHE_HOME nor HOME is set");
    if (st) return status_set(st, "feature cache: path too long");
    return STATUS_OK;
}

/* Content hash and size of the file at path; nonzero when it cannot be read. */
static int hash_file(const char *path, uint64_t *hash, uint64_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    struct hash_xxh64 h;
    hash_xxh64_init(&h, 0);
    unsigned char *buf = mem_alloc(1 << 20);
    if (!buf) {
        fclose(f);
        return -1;
    }
    size_t k;
    while ((k = fread(buf, 1, 1 << 20, f)) > 0) hash_xxh64_update(&h, buf, k);
    int err = ferror(f);
    fclose(f);
    mem_free(buf);
    if (err) return -1;
    *hash = hash_xxh64_digest(&h);
    *size = h.total;
    return 0;
}

struct cache_header {
    uint64_t key[2];
    int32_t c, f, t;
    int64_t n_samples;
    uint64_t check;     /* XXH64 of the payload */
};

static void header_pack(unsigned char *b, const struct cache_header *h)
{
    uint32_t bom = CACHE_BOM, version = FEATURES_CACHE_VERSION, zero = 0;
    memset(b, 0, CACHE_HEADER_BYTES);
    memcpy(b, CACHE_MAGIC, 8);
    memcpy(b + 8, &bom, 4);
    memcpy(b + 12, &version, 4);
    memcpy(b + 16, h->key, 16);
    memcpy(b + 32, &h->c, 4);
    memcpy(b + 36, &h->f, 4);
    memcpy(b + 40, &h->t, 4);
    memcpy(b + 44, &zero, 4);
    memcpy(b + 48, &h->n_samples, 8);
    memcpy(b + 56, &h->check, 8);
}

/* 1: y filled from a valid file; 0: no file; -1: a file that fails validation. A valid
 * file's modification time is set to the present: it records the last use, which
 * cache_trim evicts by. */
static int cache_read(const char *path, const struct cache_header *want, float *y)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n_floats = (size_t)want->c * (size_t)want->f * (size_t)want->t;
    struct stat st;
    unsigned char got[CACHE_HEADER_BYTES], expect[CACHE_HEADER_BYTES];
    int ok = fstat(fileno(f), &st) == 0 &&
             (uint64_t)st.st_size == CACHE_HEADER_BYTES + n_floats * sizeof(float) &&
             fread(got, 1, sizeof got, f) == sizeof got &&
             fread(y, sizeof(float), n_floats, f) == n_floats;
    if (ok) {
        struct cache_header h = *want;
        h.check = hash_xxh64(y, n_floats * sizeof(float), 0);
        header_pack(expect, &h);
        ok = !memcmp(got, expect, sizeof got);
    }
    if (ok) (void)futimens(fileno(f), NULL);   /* best effort: a read-only cache still works */
    fclose(f);
    return ok ? 1 : -1;
}

/* Write atomically (fs_atomic, no fsync: a torn file fails validation). 0 or -1. */
static int cache_write(const char *path, const struct cache_header *hd, const float *y)
{
    size_t n_floats = (size_t)hd->c * (size_t)hd->f * (size_t)hd->t;
    struct cache_header h = *hd;
    h.check = hash_xxh64(y, n_floats * sizeof(float), 0);
    unsigned char b[CACHE_HEADER_BYTES];
    header_pack(b, &h);
    struct fs_atomic w;
    if (fs_atomic_begin(&w, path, FS_ATOMIC_NO_SYNC)) return -1;
    if (fs_atomic_write(&w, b, sizeof b) || fs_atomic_write(&w, y, n_floats * sizeof(float))) {
        fs_atomic_abort(&w);
        return -1;
    }
    return fs_atomic_commit(&w) ? -1 : 0;
}

/* ----------------------------------------------------------------------------- loading */

struct load_ctx {
    const struct dataset *ds;
    const struct frontend *fe;
    struct features_opts opts;
    const char *cache_dir;      /* NULL: no disk cache */
    char *key_text;             /* options + front end, hashed with each file's content */
    int c, f, t;
};

enum clip_result { CLIP_COMPUTED, CLIP_CACHED, CLIP_FAILED };

struct clip_out {
    unsigned char result;       /* enum clip_result */
    unsigned char cache_invalid;
    unsigned char cache_write_failed;
    int status;
    char *reason;               /* CLIP_FAILED: owned */
};

static void clip_load(const struct load_ctx *ctx, struct frontend_work *w, int item, float *y,
                      struct clip_out *out)
{
    const char *path = dataset_item(ctx->ds, item)->path;
    char cpath[4200];
    struct cache_header hd = {.c = ctx->c, .f = ctx->f, .t = ctx->t,
                              .n_samples = ctx->opts.n_samples};
    int have_key = 0;
    uint64_t content, size;
    if (ctx->cache_dir && hash_file(path, &content, &size) == 0) {
        struct hash_xxh64 h[2];
        char head[64];
        int k = snprintf(head, sizeof head, "%016llx %llu|", (unsigned long long)content,
                         (unsigned long long)size);
        for (int s = 0; s < 2; s++) {
            hash_xxh64_init(&h[s], s ? 0x9e3779b97f4a7c15ull : 0);
            hash_xxh64_update(&h[s], head, (size_t)k);
            hash_xxh64_update(&h[s], ctx->key_text, strlen(ctx->key_text));
            hd.key[s] = hash_xxh64_digest(&h[s]);
        }
        char hex[33];
        snprintf(hex, sizeof hex, "%016llx%016llx", (unsigned long long)hd.key[0],
                 (unsigned long long)hd.key[1]);
        snprintf(cpath, sizeof cpath, "%s/%.2s/%s.feat", ctx->cache_dir, hex, hex);
        have_key = 1;
        int r = cache_read(cpath, &hd, y);
        if (r == 1) {
            out->result = CLIP_CACHED;
            return;
        }
        out->cache_invalid = r < 0;
    }
    int st = features_file(ctx->fe, w, path, &ctx->opts, y);
    if (st) {
        out->result = CLIP_FAILED;
        out->status = st;
        const char *d = status_detail();
        size_t np = strlen(path), nd = strlen(d);
        int has_path = !strncmp(d, path, np) && d[np] == ':';
        if ((out->reason = mem_alloc(np + nd + 3)))
            snprintf(out->reason, np + nd + 3, "%s%s%s", has_path ? "" : path,
                     has_path ? "" : ": ", d);
        return;
    }
    out->result = CLIP_COMPUTED;
    if (have_key) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(cpath, '/') - cpath), cpath);
        if (fs_mkdir_p(dir) || cache_write(cpath, &hd, y)) out->cache_write_failed = 1;
    }
}

int features_load(struct features **out, const struct dataset *ds, enum dataset_split split,
                  const struct frontend *fe, const struct features_opts *opts,
                  const struct progress *progress)
{
    *out = NULL;
    int st = dataset_require_split(ds, split);
    if (st) return st;
    int *idx = mem_alloc(sizeof *idx * (size_t)(dataset_n_items(ds) + 1));
    if (!idx) return STATUS_NOMEM;
    int n = dataset_split_items(ds, split, idx);
    st = features_load_items(out, ds, n, idx, fe, opts, progress);
    mem_free(idx);
    return st;
}

int features_keep_device(struct features *f, const struct dataset *ds, int device)
{
    const long per = (long)f->n_channels * f->n_mels * f->n_frames;
    int k = 0;
    for (int i = 0; i < f->n; i++) {
        if (dataset_item(ds, f->items[i])->device != device) continue;
        if (k != i) {
            memmove(f->x + k * per, f->x + i * per, sizeof *f->x * (size_t)per);
            f->labels[k] = f->labels[i], f->items[k] = f->items[i];
        }
        k++;
    }
    return f->n = k;
}

void features_destroy(struct features *f)
{
    if (!f) return;
    mem_free(f->x);
    mem_free(f->labels);
    mem_free(f->items);
    mem_free(f->skipped);
    for (int i = 0; f->skipped_reason && i < f->n_skipped; i++) mem_free(f->skipped_reason[i]);
    mem_free(f->skipped_reason);
    mem_free(f->mean);
    mem_free(f->std);
    mem_free(f);
}

int features_load_items(struct features **out, const struct dataset *ds, int n, const int *idx,
                        const struct frontend *fe, const struct features_opts *opts,
                        const struct progress *progress)
{
    *out = NULL;
    struct load_ctx ctx = {.ds = ds, .fe = fe};
    if (opts) ctx.opts = *opts;
    if (ctx.opts.in_ch == 0) ctx.opts.in_ch = 1;
    if (ctx.opts.in_ch < 1 || ctx.opts.in_ch > MAX_IN_CH)
        return status_set(STATUS_INVALID, "features: in_ch %d is not in 1..%d", ctx.opts.in_ch,
                          MAX_IN_CH);
    if (ctx.opts.pad != FEATURES_PAD_REPEAT && ctx.opts.pad != FEATURES_PAD_ZERO)
        return status_set(STATUS_INVALID, "features: unknown pad policy %d", (int)ctx.opts.pad);
    if (ctx.opts.n_samples < 0)
        return status_set(STATUS_INVALID, "features: clip length %ld is negative", ctx.opts.n_samples);
    if (n <= 0) return status_set(STATUS_INVALID, "%s: no clips to load", dataset_listing(ds));
    int st;
    if (ctx.opts.n_samples == 0 && (st = features_clip_samples(ds, fe, &ctx.opts.n_samples)))
        return st;
    const struct frontend_params *p = frontend_get_params(fe);
    if (ctx.opts.n_samples < frontend_min_samples(fe))
        return status_set(STATUS_INVALID, "features: clip length %ld samples is below the "
                          "front end's minimum of %ld", ctx.opts.n_samples, frontend_min_samples(fe));
    long t_frames = frontend_frames(fe, ctx.opts.n_samples);
    if (t_frames > (1L << 30))
        return status_set(STATUS_INVALID, "features: clip of %ld samples is too long", ctx.opts.n_samples);
    ctx.c = ctx.opts.in_ch;
    ctx.f = p->n_mels;
    ctx.t = (int)t_frames;
    size_t clip_floats = (size_t)ctx.c * (size_t)ctx.f * (size_t)ctx.t;

    struct features *f = mem_calloc(1, sizeof *f);
    struct frontend_work **works = NULL;
    struct clip_out *res = NULL;
    char cache_dir[4096];
    int n_threads = threads_get();
    if (!f) return STATUS_NOMEM;
    f->n_channels = ctx.c;
    f->n_mels = ctx.f;
    f->n_frames = ctx.t;
    f->n_classes = dataset_n_classes(ds);
    f->n_samples = ctx.opts.n_samples;
    size_t bytes = mem_mul(mem_mul((size_t)n, clip_floats), sizeof(float));
    if (!bytes || !(f->x = mem_alloc(bytes))) {
        st = status_set(STATUS_NOMEM, "features: %.1f MB for %d clips of (%d, %d, %d) do not fit "
                        "in memory", (double)n * (double)clip_floats * 4e-6, n, ctx.c, ctx.f, ctx.t);
        goto fail;
    }
    f->labels = mem_alloc(sizeof *f->labels * (size_t)n);
    f->items = mem_alloc(sizeof *f->items * (size_t)n);
    f->mean = mem_calloc((size_t)ctx.f, sizeof *f->mean);
    f->std = mem_calloc((size_t)ctx.f, sizeof *f->std);
    res = mem_calloc((size_t)n, sizeof *res);
    works = mem_calloc((size_t)n_threads, sizeof *works);
    if (!f->labels || !f->items || !f->mean || !f->std || !res || !works) {
        st = STATUS_NOMEM;
        goto fail;
    }
    for (int i = 0; i < n_threads; i++)
        if ((st = frontend_work_create(&works[i], fe))) goto fail;

    /* The cache key text: everything but the file's content that shapes the features. */
    struct frontend_params pk = *p;
    memset(pk.preset, 0, sizeof pk.preset);
    char *fe_json;
    if ((st = frontend_params_to_json(&pk, &fe_json))) goto fail;
    size_t n_json = strlen(fe_json);
    if (!(ctx.key_text = mem_alloc(n_json + 128))) {
        mem_free(fe_json);
        st = STATUS_NOMEM;
        goto fail;
    }
    int k = snprintf(ctx.key_text, 128, "basin-features %d|in_ch %d|n_samples %ld|pad %d|",
                     FEATURES_CACHE_VERSION, ctx.c, ctx.opts.n_samples, (int)ctx.opts.pad);
    memcpy(ctx.key_text + k, fe_json, n_json + 1);
    mem_free(fe_json);
    if (!ctx.opts.cache_dir) {
        if (features_cache_dir_default(cache_dir, sizeof cache_dir) == STATUS_OK)
            ctx.cache_dir = cache_dir;
        else
            log_warn("%s; features are not cached on disk", status_detail());
    } else if (ctx.opts.cache_dir[0]) {
        ctx.cache_dir = ctx.opts.cache_dir;
    }
    if (ctx.cache_dir && fs_mkdir_p(ctx.cache_dir)) {
        log_warn("feature cache: %s; features are not cached on disk", status_detail());
        ctx.cache_dir = NULL;
    }
    status_clear();

    int chunk = 4 * n_threads, write_warned = 0;
    for (int start = 0; start < n; start += chunk) {
        int end = start + chunk < n ? start + chunk : n;
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
        for (int i = start; i < end; i++)
            clip_load(&ctx, works[omp_get_thread_num()], idx[i], f->x + (size_t)i * clip_floats,
                      &res[i]);
        for (int i = start; i < end; i++) {
            if (res[i].result == CLIP_FAILED) {
                if (!res[i].reason) {
                    st = STATUS_NOMEM;
                    goto fail;
                }
                log_warn("skipped %s", res[i].reason);
            }
            if (res[i].cache_write_failed && !write_warned) {
                log_warn("feature cache: cannot write in %s; features are not cached on disk",
                         ctx.cache_dir);
                write_warned = 1;
            }
        }
        if (!progress_report(progress, "features", end, n)) {
            st = status_set(STATUS_CANCELLED, "loading features: cancelled after %d of %d clips",
                            end, n);
            goto fail;
        }
    }

    /* Compact: loaded clips keep their order, skipped ones move to the skipped list. */
    int n_fail = 0;
    for (int i = 0; i < n; i++) n_fail += res[i].result == CLIP_FAILED;
    if (n_fail == n) {
        st = status_set(STATUS_FORMAT, "%s: none of the %d clips could be loaded (first: %s)",
                        dataset_listing(ds), n, res[0].reason);
        goto fail;
    }
    if (n_fail) {
        f->skipped = mem_alloc(sizeof *f->skipped * (size_t)n_fail);
        f->skipped_reason = mem_calloc((size_t)n_fail, sizeof *f->skipped_reason);
        if (!f->skipped || !f->skipped_reason) {
            st = STATUS_NOMEM;
            goto fail;
        }
    }
    for (int i = 0; i < n; i++) {
        const struct dataset_item *it = dataset_item(ds, idx[i]);
        if (res[i].result == CLIP_FAILED) {
            f->skipped[f->n_skipped] = idx[i];
            f->skipped_reason[f->n_skipped++] = res[i].reason;
            res[i].reason = NULL;
            continue;
        }
        if (f->n != i)
            memcpy(f->x + (size_t)f->n * clip_floats, f->x + (size_t)i * clip_floats,
                   clip_floats * sizeof(float));
        f->labels[f->n] = it->label;
        f->items[f->n] = idx[i];
        f->n++;
        f->n_computed += res[i].result == CLIP_COMPUTED;
        f->n_cached += res[i].result == CLIP_CACHED;
        f->n_cache_invalid += res[i].cache_invalid;
    }
    /* Keep the disk cache within its cap, now that this load's files are the newest. */
    long n_written = 0;
    for (int i = 0; i < n; i++)
        n_written += res[i].result == CLIP_COMPUTED && !res[i].cache_write_failed;
    if (ctx.cache_dir && n_written) {
        uint64_t cap = ctx.opts.cache_max_bytes;
        if (!cap && cache_cap(&cap, NULL)) {
            log_warn("feature cache: %s; using the default cap", status_detail());
            cap = CACHE_DEFAULT_CAP;
        }
        if (cache_trim(ctx.cache_dir, cap, NULL)) log_warn("feature cache: trimming failed");
        status_clear();
    }
    st = STATUS_OK;
    *out = f;
    f = NULL;
fail:
    for (int i = 0; res && i < n; i++) mem_free(res[i].reason);
    mem_free(res);
    for (int i = 0; works && i < n_threads; i++) frontend_work_destroy(works[i]);
    mem_free(works);
    mem_free(ctx.key_text);
    features_destroy(f);
    return st;
}

/* ----------------------------------------------------------------------------- z-norm */

int features_znorm_fit(const struct features *f, float *mean, float *std)
{
    if (f->znormed)
        return status_set(STATUS_INVALID, "features: statistics asked of normalised features");
    if ((long)f->n * f->n_channels * f->n_frames < 2)
        return status_set(STATUS_INVALID, "features: fewer than 2 frames for statistics");
    int n_bins = f->n_mels, failed = 0;
    long t = f->n_frames, c_stride = (long)n_bins * t;
    /* One accumulator per bin, clips and channels in order: the same sums on any number
     * of threads. */
#pragma omp parallel for num_threads(threads_get()) schedule(dynamic, 1) reduction(| : failed) \
    if ((long)f->n * f->n_channels * f->n_mels * t >= (1L << 16))
    for (int b = 0; b < n_bins; b++) {
        struct znorm z;
        if (znorm_init(&z, 1)) {
            failed = 1;
            continue;
        }
        for (long i = 0; i < (long)f->n * f->n_channels; i++)
            znorm_add(&z, f->x + i * c_stride + (long)b * t, t);
        if (znorm_finish(&z, mean + b, std + b)) failed = 1;
        znorm_fini(&z);
    }
    if (failed) return status_set(STATUS_NOMEM, "features: z-norm statistics failed");
    return STATUS_OK;
}

void features_znorm_apply(struct features *f, const float *mean, const float *std)
{
    CHECK(!f->znormed);
    long per = (long)f->n_mels * f->n_frames;
    long n = (long)f->n * f->n_channels;
#pragma omp parallel for num_threads(threads_get()) schedule(static) if (n * per >= (1L << 16))
    for (long i = 0; i < n; i++) znorm_apply(f->n_mels, f->n_frames, f->x + i * per, mean, std);
    memcpy(f->mean, mean, sizeof *mean * (size_t)f->n_mels);
    memcpy(f->std, std, sizeof *std * (size_t)f->n_mels);
    f->znormed = 1;
}

int features_prepare(struct features **out, const struct dataset *ds, enum dataset_split split,
                     const struct frontend *fe, const struct features_opts *opts,
                     enum features_norm norm, const float *mean, const float *std,
                     float *mean_out, float *std_out, const struct progress *p)
{
    *out = NULL;
    const int F = frontend_get_params(fe)->n_mels;
    CHECK(norm != FEATURES_NORM_GIVEN || (mean && std));
    struct features *f = NULL, *ftrain = NULL;
    float *m = NULL, *sd = NULL;
    int s = features_load(&f, ds, split, fe, opts, p);
    if (!s && f->n == 0)
        s = status_set(STATUS_NOT_FOUND, "%s: no clip of the %s split loads", dataset_listing(ds),
                       split == DATASET_SPLIT_ANY ? "whole" : dataset_split_name(split));
    if (!s && norm == FEATURES_NORM_FIT) {
        m = mem_alloc((size_t)F * sizeof *m);
        sd = mem_alloc((size_t)F * sizeof *sd);
        if (!m || !sd) s = STATUS_NOMEM;
        if (!s && split != DATASET_SPLIT_TRAIN) s = features_load(&ftrain, ds, DATASET_SPLIT_TRAIN, fe, opts, p);
        if (!s) s = features_znorm_fit(ftrain ? ftrain : f, m, sd);
        if (!s) {
            features_znorm_apply(f, m, sd);
            if (mean_out) memcpy(mean_out, m, (size_t)F * sizeof *m);
            if (std_out) memcpy(std_out, sd, (size_t)F * sizeof *sd);
        }
    } else if (!s && norm == FEATURES_NORM_GIVEN) {
        features_znorm_apply(f, mean, std);
    }
    mem_free(m);
    mem_free(sd);
    features_destroy(ftrain);
    if (s) {
        features_destroy(f);
        return s;
    }
    *out = f;
    return STATUS_OK;
}
