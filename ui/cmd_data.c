/* cmd_data.c: synth, data and cache: making, opening, summarising and exporting data sets,
 * and the cache folder that holds generated data sets and features. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "app.h"
#include "basin/audio/audio_file.h"
#include "basin/core/log.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/data/cache.h"
#include "basin/data/dataset.h"
#include "basin/data/features.h"
#include "basin/data/synth.h"
#include "basin/dsp/frontend.h"
#include "basin/model/model.h"
#include "basin/train/pipeline.h"
#include "commands.h"
#include "render.h"
#include "session.h"

/* A warning through the log sink ("warning: ..." headless), after the output so far. */
static void warn(struct app *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct app *a, const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fflush(a->out);
    log_warn("%s", msg);
}

/* Say what is about to be written, and where, before a data set is generated. */
static void announce_synth(struct app *a, const struct synth_params *p, const char *dir,
                           const char *what)
{
    if (synth_present(p, dir)) return;
    char size[32];
    fmt_bytes(size, sizeof size, (double)synth_bytes(p));
    app_out(a, "generating %s (%ld clips, about %s) in %s\n", what, synth_clip_count(p), size,
            dir);
}

/* synth scene=NAME out=FILE: one clip, in the format its extension names (the first format
 * with that extension: 16-bit for wav, flac and aiff). */
static int synth_one_clip(struct app *a, const struct synth_params *p, const char *scene,
                          const char *device, const char *out)
{
    int k = synth_class_index(scene), d = synth_device_index(device ? device : "a");
    if (k < 0) return app_fail(a, STATUS_INVALID, "scene=%s: not a scene (airport, bus, metro, metro_station, "
                                                  "park, public_square, shopping_mall, street_pedestrian, "
                                                  "street_traffic, tram)", scene);
    if (d < 0) return app_fail(a, STATUS_INVALID, "device=%s: not a device (a, b, c, s1..s6)", device);
    if (!out) return app_fail(a, STATUS_INVALID, "scene= writes one clip: give out=FILE.wav");
    const char *dot = strrchr(out, '.');
    enum audio_file_format fmt = AUDIO_FILE_FORMAT_COUNT;
    for (int f = AUDIO_FILE_FORMAT_COUNT - 1; dot && f >= 0; f--) {
        enum audio_file_format e = (enum audio_file_format)f;
        if (strcasecmp(dot + 1, audio_file_format_ext(e))) continue;
        if (fmt == AUDIO_FILE_FORMAT_COUNT || strstr(audio_file_format_name(e), "16")) fmt = e;
    }
    if (fmt == AUDIO_FILE_FORMAT_COUNT)
        return app_fail(a, STATUS_INVALID, "out=%s: name the format by its extension (.wav, .flac, .ogg, ...)", out);
    struct audio_file af;
    long n = (long)(p->clip_s * p->sample_rate_hz + 0.5);
    int s = audio_file_alloc(&af, 1, n, p->sample_rate_hz);
    if (!s) s = synth_clip(p, k, d, p->seed, af.x, n);
    if (!s) s = audio_file_write(out, &af, fmt);
    audio_file_fini(&af);
    if (s) return app_fail_in(a, s, "synth");
    app_out(a, "synth: %s on device %s, %.2f s at %d Hz (seed %llu) in %s\n", scene, device ? device : "a",
            p->clip_s, p->sample_rate_hz, (unsigned long long)p->seed, out);
    return STATUS_OK;
}

int cmd_synth(struct app *a, int argc, char **argv)
{
    struct synth_params p;
    synth_params_default(&p);
    const char *out = NULL, *scene = NULL, *device = NULL;
    char dir[SYNTH_PATH_MAX];
    long clips = 0;
    for (int i = 1; i < argc; i++) {
        char *v = arg_split(argv[i]);
        long x;
        if (!v) return app_fail(a, STATUS_INVALID, "synth: expected key=value, got '%s'", argv[i]);
        if (!strcmp(argv[i], "out")) {
            out = v;
        } else if (!strcmp(argv[i], "clips")) {
            if (arg_int(a, "clips", v, 1, 1000000, &clips)) return STATUS_INVALID;
        } else if (!strcmp(argv[i], "seconds")) {
            char *end;
            double s = strtod(v, &end);
            if (*end || !(s >= 0.5 && s <= 600))
                return app_fail(a, STATUS_INVALID, "seconds=%s: a clip length in 0.5..600 s", v);
            p.clip_s = s;
        } else if (!strcmp(argv[i], "seed")) {
            if (arg_int(a, "seed", v, 0, 0x7fffffffffffffffL, &x)) return STATUS_INVALID;
            p.seed = (uint64_t)x;
        } else if (!strcmp(argv[i], "rate")) {
            if (arg_int(a, "rate", v, 8000, 96000, &x)) return STATUS_INVALID;
            p.sample_rate_hz = (int)x;
        } else if (!strcmp(argv[i], "scene")) {
            scene = v;
        } else if (!strcmp(argv[i], "device")) {
            device = v;
        } else {
            return app_fail(a, STATUS_INVALID, "synth: unknown option '%s' (out, clips, seconds, seed, rate, "
                                               "scene, device)", argv[i]);
        }
    }
    if (scene) {
        if (clips) return app_fail(a, STATUS_INVALID, "clips= makes a data set, scene= one clip: not both");
        return synth_one_clip(a, &p, scene, device, out);
    }
    if (device) return app_fail(a, STATUS_INVALID, "device= goes with scene= (one clip)");
    if (clips && synth_params_set_clips(&p, clips)) return app_fail_in(a, STATUS_INVALID, "synth");
    if (synth_params_validate(&p)) return app_fail_in(a, STATUS_INVALID, "synth");
    int s = out ? (snprintf(dir, sizeof dir, "%s", out), 0) : synth_cache_dir(&p, dir, sizeof dir);
    if (s) return app_fail_in(a, s, "synth");
    announce_synth(a, &p, dir, "a data set");
    if ((s = synth_write(&p, dir, &a->progress))) return app_fail_in(a, s, "synth");
    long n_train = 0, n_eval = 0;
    if ((s = synth_split_counts(&p, &n_train, &n_eval))) return app_fail_in(a, s, "synth");
    char desc[512];
    synth_params_string(&p, desc, sizeof desc);
    app_out(a, "synth: %ld clips in %s: train %ld, evaluate %ld (%s)\n", synth_clip_count(&p), dir,
            n_train, n_eval, desc);
    if (!n_eval)
        warn(a, "the evaluate split of %s is empty: clips=%ld gives every class one train clip; "
                 "clips=%d or more give every class an evaluate clip too", dir, synth_clip_count(&p),
                 2 * p.n_classes);
    return STATUS_OK;
}

/* Open path ("default": the embedded synthetic set, generated on first use) with opts. */
static int open_dataset(struct app *a, const char *path, const struct dataset_opts *opts,
                        struct dataset **out, char *where, size_t n)
{
    if (!strcmp(path, "default")) {
        struct synth_params p;
        synth_params_default(&p);
        int s = synth_cache_dir(&p, where, n);
        if (s) return s;
        announce_synth(a, &p, where, "the default data set");
        if ((s = synth_ensure_default(where, n, &a->progress))) return s;
    } else {
        snprintf(where, n, "%s", path);
    }
    return dataset_open(out, where, opts);
}

/* Open path (or "default") and make it the session's data set. */
static int use_dataset(struct app *a, const char *path, const struct dataset_opts *opts)
{
    struct dataset *ds;
    char where[SYNTH_PATH_MAX];
    int s = open_dataset(a, path, opts, &ds, where, sizeof where);
    if (s) return app_fail(a, s, "%s", status_detail());
    dataset_destroy(a->ds);
    a->ds = ds;
    snprintf(a->ds_path, sizeof a->ds_path, "%s", where);
    return STATUS_OK;
}

/* The default split options: a split by recording (when the data set lists none) uses the
 * session seed. */
static void default_opts(const struct app *a, struct dataset_opts *o)
{
    *o = (struct dataset_opts){.split_seed = a->seed};
}

/* data export PATH [split=NAME] [norm=model|train|none] */
static int data_export(struct app *a, int argc, char **argv)
{
    if (argc < 3) return app_fail(a, STATUS_INVALID, "usage: data export PATH.safetensors [split=train|evaluate|test|all] [norm=model|train|none]");
    struct dataset_opts o;
    default_opts(a, &o);
    if (!a->ds && use_dataset(a, "default", &o)) return STATUS_INVALID;
    const char *path = argv[2], *norm = NULL;
    enum dataset_split split = DATASET_SPLIT_TRAIN;
    for (int i = 3; i < argc; i++) {
        char *v = arg_split(argv[i]);
        if (v && !strcmp(argv[i], "split")) {
            if (!strcmp(v, "all")) split = DATASET_SPLIT_ANY;
            else if (dataset_split_parse(v, &split)) return app_fail(a, STATUS_INVALID, "data export: %s", status_detail());
        } else if (v && !strcmp(argv[i], "norm") && (!strcmp(v, "model") || !strcmp(v, "train") || !strcmp(v, "none"))) {
            norm = v;
        } else {
            return app_fail(a, STATUS_INVALID, "data export: unknown option '%s' (split=..., norm=model|train|none)", argv[i]);
        }
    }
    struct frontend_params p;
    const char *from;
    session_frontend(a, &p, &from);
    struct model *m = a->model;
    if (!norm) norm = m && m->n_norm ? "model" : "none";
    if (!strcmp(norm, "model") && !(m && m->n_norm == p.n_mels))
        return app_fail(a, STATUS_INVALID, "data export: norm=model needs a model with %d-bin normalisation statistics", p.n_mels);
    if (dataset_require_split(a->ds, split) || (!strcmp(norm, "train") && dataset_require_split(a->ds, DATASET_SPLIT_TRAIN)))
        return app_fail_in(a, STATUS_INVALID, "data export");
    /* The first use of the feature cache says where it is and what bounds it. */
    char cdir[4096];
    struct stat sb;
    uint64_t cap;
    if (!features_cache_dir_default(cdir, sizeof cdir) && stat(cdir, &sb) != 0 && !cache_cap(&cap, NULL)) {
        char capt[32];
        app_out(a, "caching features in %s (up to %s, least recently used first out; `cache` shows it)\n", cdir,
                fmt_bytes(capt, sizeof capt, (double)cap));
    }
    status_clear();
    struct frontend *fe = NULL;
    struct features *f = NULL;
    struct features_opts fo = {.in_ch = m ? m->cfg.in_ch : 1, .pad = FEATURES_PAD_REPEAT};
    enum features_norm how = !strcmp(norm, "train") ? FEATURES_NORM_FIT :
                             !strcmp(norm, "model") ? FEATURES_NORM_GIVEN : FEATURES_NORM_NONE;
    const char *split_name = split == DATASET_SPLIT_ANY ? "all" : dataset_split_name(split);
    int s = frontend_create(&fe, &p);
    if (!s) s = features_prepare(&f, a->ds, split, fe, &fo, how, m ? m->norm_mean : NULL, m ? m->norm_std : NULL,
                                 NULL, NULL, &a->progress);
    if (!s) s = pipeline_export(path, f, a->ds, &p, split_name, norm);
    if (!s)
        app_out(a, "wrote %s: x (%d, %d, %d, %d), y (%d), device (%d); %s front end (%s), normalisation %s; "
                   "%ld clips computed, %ld from the cache, %d skipped\n",
                path, f->n, f->n_channels, f->n_mels, f->n_frames, f->n, f->n, p.preset, from, norm,
                f->n_computed, f->n_cached, f->n_skipped);
    features_destroy(f);
    frontend_destroy(fe);
    if (s) return app_fail_in(a, s, "data export");
    return STATUS_OK;
}

/* Parse `data` options (argv[from..argc)) into o; *path gets a PATH argument or stays. */
static int parse_data_options(struct app *a, int argc, char **argv, int from, const char **path,
                        struct dataset_opts *o)
{
    int seeded = 0, fold = 0;
    default_opts(a, o);
    for (int i = from; i < argc; i++) {
        char *v = arg_split(argv[i]);
        long x;
        if (!v) {
            if (*path) return app_fail(a, STATUS_INVALID, "data: one data set at a time ('%s' and '%s')", *path, argv[i]);
            *path = argv[i];
        } else if (!strcmp(argv[i], "seed")) {
            if (arg_int(a, "seed", v, 0, 0x7fffffffffffffffL, &x)) return STATUS_INVALID;
            o->split_seed = (uint64_t)x;
            seeded = 1;
        } else if (!strcmp(argv[i], "evaluate")) {
            char *end;
            errno = 0;
            double f = strtod(v, &end);
            if (end != v && *end == '%' && !end[1]) f /= 100, end++;
            if (end == v || *end || errno || !(f > 0 && f < 1))
                return app_fail(a, STATUS_INVALID, "evaluate=%s: the share of recordings to evaluate, between 0 and 1 (0.3 or 30%%)", v);
            o->train_fraction = 1 - f;
            seeded = 1;
        } else if (!strcmp(argv[i], "fold")) {
            if (arg_int(a, "fold", v, 1, 1000000, &x)) return STATUS_INVALID;
            o->fold = fold = (int)x;
        } else if (!strcmp(argv[i], "split")) {
            if (strcmp(v, "recording"))
                return app_fail(a, STATUS_INVALID, "data: split=%s: opening a data set takes split=recording only (data export takes split=train|evaluate|test|all)", v);
            seeded = 1;
        } else {
            return app_fail(a, STATUS_INVALID, "data: unknown option '%s=%s' (seed=N, evaluate=F, fold=K, split=recording)", argv[i], v);
        }
    }
    if (seeded && fold)
        return app_fail(a, STATUS_INVALID, "data: fold= uses the listed folds; seed=, evaluate= and split=recording split by recording instead: one or the other");
    o->seeded_split = seeded;
    return STATUS_OK;
}

/* 1 when some class has two recordings or more, so a split by recording fills both splits. */
static int splittable(const struct dataset *ds)
{
    int m = dataset_n_classes(ds), found = 0;
    const char **first = calloc((size_t)m, sizeof *first);
    if (!first) return 1;
    for (int i = 0; i < dataset_n_items(ds) && !found; i++) {
        const struct dataset_item *it = dataset_item(ds, i);
        if (!first[it->label]) first[it->label] = it->recording;
        else found = strcmp(first[it->label], it->recording) != 0;
    }
    free(first);
    return found;
}

/* Warn about an empty train or evaluate split: training and evaluation will refuse it. */
static void warn_empty_splits(struct app *a, const struct dataset *ds)
{
    for (int s = DATASET_SPLIT_TRAIN; s <= DATASET_SPLIT_EVAL; s++) {
        if (!dataset_require_split(ds, (enum dataset_split)s)) continue;
        if (!splittable(ds))
            warn(a, "%s; every class has a single recording, so no split by recording can fill both", status_detail());
        else if (!dataset_split_seeded(ds))
            warn(a, "%s; `data PATH split=recording` (or seed=N, evaluate=F) splits by recording instead", status_detail());
        else
            warn(a, "%s", status_detail());
    }
    status_clear();
}

/* data [PATH|default] [seed=N] [evaluate=F] [fold=K] [split=recording] | data export ... */
int cmd_data(struct app *a, int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "export")) return data_export(a, argc, argv);
    const char *path = NULL;
    struct dataset_opts o;
    if (parse_data_options(a, argc, argv, 1, &path, &o)) return STATUS_INVALID;
    /* Options alone re-split the open data set (or the default one). */
    int opts_given = argc > (path ? 2 : 1);
    if (path || opts_given || !a->ds) {
        char again[sizeof a->ds_path];
        snprintf(again, sizeof again, "%s", a->ds ? a->ds_path : "default");
        int s = use_dataset(a, path ? path : again, &o);
        if (s) return s;
    }
    int n = dataset_summary(a->ds, NULL, 0);
    char *buf = malloc((size_t)n + 1);
    if (!buf) return app_fail(a, STATUS_NOMEM, "data: out of memory");
    dataset_summary(a->ds, buf, (size_t)n + 1);
    app_out(a, "%s", buf);
    if (n && buf[n - 1] != '\n') app_out(a, "\n");
    free(buf);
    warn_empty_splits(a, a->ds);
    return STATUS_OK;
}

static const char *cap_source_name(enum cache_cap_source src)
{
    return src == CACHE_CAP_ENV ? "from BASIN_CACHE_MAX" : src == CACHE_CAP_FILE ? "set by cache cap=" : "the default";
}

/* cache | cache clear | cache cap=SIZE */
int cmd_cache(struct app *a, int argc, char **argv)
{
    char dir[4096], b1[32], b2[32];
    int s = cache_dir(dir, sizeof dir);
    if (s) return app_fail_in(a, s, "cache");
    if (argc == 2 && !strcmp(argv[1], "clear")) {
        /* The session's data set goes too when it lives in the cache. */
        size_t n = strlen(dir);
        if (a->ds && !strncmp(a->ds_path, dir, n) && a->ds_path[n] == '/') {
            dataset_destroy(a->ds);
            a->ds = NULL;
            app_out(a, "closed the data set %s (it was in the cache)\n", a->ds_path);
            a->ds_path[0] = 0;
        }
        uint64_t freed = 0;
        if ((s = cache_clear(&freed))) return app_fail_in(a, s, "cache clear");
        app_out(a, "cache clear: freed %s in %s (features and generated data sets)\n",
                fmt_bytes(b1, sizeof b1, (double)freed), dir);
        return STATUS_OK;
    }
    if (argc == 2 && !strncmp(argv[1], "cap=", 4)) {
        uint64_t cap, freed = 0;
        if (cache_parse_size(argv[1] + 4, &cap)) return app_fail_in(a, STATUS_INVALID, "cache cap");
        if ((s = cache_cap_set(cap))) return app_fail_in(a, s, "cache cap");
        char fdir[4096];
        if (!features_cache_dir_default(fdir, sizeof fdir)) cache_trim(fdir, cap, &freed);
        app_out(a, "cache cap: features up to %s (kept in %s/cap)", fmt_bytes(b1, sizeof b1, (double)cap), dir);
        if (freed) app_out(a, "; freed %s", fmt_bytes(b2, sizeof b2, (double)freed));
        app_out(a, "\n");
        const char *env = getenv("BASIN_CACHE_MAX");
        if (env && *env) warn(a, "BASIN_CACHE_MAX=%s is set and overrides this cap", env);
        return STATUS_OK;
    }
    if (argc != 1) return app_fail(a, STATUS_INVALID, "usage: cache | cache clear | cache cap=SIZE");
    struct cache_usage u;
    if ((s = cache_usage(&u))) return app_fail_in(a, s, "cache");
    app_out(a, "cache      %s\n", dir);
    app_out(a, "features   %ld files, %s (cap %s, %s; least recently used go first)\n", u.feature_files,
            fmt_bytes(b1, sizeof b1, (double)u.feature_bytes), fmt_bytes(b2, sizeof b2, (double)u.cap_bytes),
            cap_source_name(u.cap_source));
    app_out(a, "data sets  %d generated, %s", u.synth_sets, fmt_bytes(b1, sizeof b1, (double)u.synth_bytes));
    if (u.default_set) app_out(a, " (the default data set: %s)", fmt_bytes(b2, sizeof b2, (double)u.default_bytes));
    app_out(a, "; not capped, removed by cache clear only\n");
    if (u.other_bytes) app_out(a, "other      %s\n", fmt_bytes(b1, sizeof b1, (double)u.other_bytes));
    app_out(a, "total      %s\n", fmt_bytes(b1, sizeof b1, (double)u.total_bytes));
    return STATUS_OK;
}
