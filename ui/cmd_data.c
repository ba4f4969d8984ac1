/* cmd_data.c: synth and data: making, opening, summarising and exporting data sets. */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/data/dataset.h"
#include "basin/data/features.h"
#include "basin/data/synth.h"
#include "basin/dsp/frontend.h"
#include "basin/model/json.h"
#include "basin/model/model.h"
#include "basin/model/safetensors.h"
#include "commands.h"
#include "session.h"

static int synth_progress(void *user, double fraction)
{
    return app_progress(user, "synth", fraction);
}

int cmd_synth(struct app *a, int argc, char **argv)
{
    struct synth_params p;
    synth_params_default(&p);
    const char *out = NULL;
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
        } else {
            return app_fail(a, STATUS_INVALID, "synth: unknown option '%s' (out, clips, seconds, seed, rate)", argv[i]);
        }
    }
    /* clips=N: scale the segments recorded per location so the set has about N clips. */
    if (clips) {
        long per_segment = synth_clip_count(&p) / (p.n_segments > 0 ? p.n_segments : 1);
        long seg = (clips + per_segment / 2) / (per_segment > 0 ? per_segment : 1);
        p.n_segments = (int)(seg < 1 ? 1 : seg);
    }
    if (synth_params_validate(&p)) return app_fail(a, STATUS_INVALID, "synth: %s", status_detail());
    int s;
    if (out) {
        snprintf(dir, sizeof dir, "%s", out);
        s = synth_write(&p, dir, synth_progress, a);
    } else {
        s = synth_ensure(&p, dir, sizeof dir, synth_progress, a);
    }
    if (s) return app_fail(a, s, "synth: %s", status_detail());
    char desc[512];
    synth_params_string(&p, desc, sizeof desc);
    app_out(a, "synth: %ld clips in %s (%s)\n", synth_clip_count(&p), dir, desc);
    return STATUS_OK;
}

/* Open path ("default": the embedded synthetic set, generated on first use). */
static int open_dataset(struct app *a, const char *path, struct dataset **out, char *where, size_t n)
{
    if (!strcmp(path, "default")) {
        int s = synth_ensure_default(where, n, synth_progress, a);
        if (s) return s;
    } else {
        snprintf(where, n, "%s", path);
    }
    return dataset_open(out, where, NULL);
}

/* Open path (or "default") and make it the session's data set. */
static int use_dataset(struct app *a, const char *path)
{
    struct dataset *ds;
    char where[SYNTH_PATH_MAX];
    int s = open_dataset(a, path, &ds, where, sizeof where);
    if (s) return app_fail(a, s, "%s", status_detail());
    dataset_destroy(a->ds);
    a->ds = ds;
    snprintf(a->ds_path, sizeof a->ds_path, "%s", where);
    return STATUS_OK;
}

static int load_progress(void *user, long done, long total)
{
    return app_progress(user, "features", total > 0 ? (double)done / total : 1.0);
}

/* data export PATH [split=NAME] [norm=model|train|none] */
static int data_export(struct app *a, int argc, char **argv)
{
    if (argc < 3) return app_fail(a, STATUS_INVALID, "usage: data export PATH.safetensors [split=train|evaluate|test|all] [norm=model|train|none]");
    if (!a->ds && use_dataset(a, "default")) return STATUS_INVALID;
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
    struct frontend *fe = NULL;
    struct features *f = NULL, *ftrain = NULL;
    float *mean = NULL, *std = NULL;
    int64_t *y = NULL, *dev = NULL;
    struct st_writer *w = NULL;
    char *labels = NULL, *devices = NULL, fejson[1024];
    int s = frontend_create(&fe, &p);
    struct features_opts fo = {m ? m->cfg.in_ch : 1, 0, FEATURES_PAD_REPEAT, NULL};
    if (!s) s = features_load(&f, a->ds, split, fe, &fo, load_progress, a);
    if (!s && f->n == 0) s = status_set(STATUS_NOT_FOUND, "split %s has no clips that load", split == DATASET_SPLIT_ANY ? "all" : dataset_split_name(split));
    if (!s && !strcmp(norm, "train")) {
        mean = malloc((size_t)p.n_mels * sizeof *mean);
        std = malloc((size_t)p.n_mels * sizeof *std);
        s = split == DATASET_SPLIT_TRAIN ? 0 : features_load(&ftrain, a->ds, DATASET_SPLIT_TRAIN, fe, &fo, load_progress, a);
        if (!s) s = features_znorm_fit(split == DATASET_SPLIT_TRAIN ? f : ftrain, mean, std);
        if (!s) features_znorm_apply(f, mean, std);
    } else if (!s && !strcmp(norm, "model")) {
        features_znorm_apply(f, m->norm_mean, m->norm_std);
    }
    if (!s) {
        y = malloc((size_t)f->n * sizeof *y);
        dev = malloc((size_t)f->n * sizeof *dev);
        for (int i = 0; i < f->n; i++) {
            y[i] = f->labels[i];
            dev[i] = dataset_item(a->ds, f->items[i])->device;
        }
        struct json *jl = json_create_array(), *jd = json_create_array();
        for (int k = 0; k < dataset_n_classes(a->ds); k++) json_push_string(jl, dataset_class_name(a->ds, k));
        for (int k = 0; k < dataset_n_devices(a->ds); k++) json_push_string(jd, dataset_device_name(a->ds, k));
        json_dump(jl, &labels);
        json_dump(jd, &devices);
        json_destroy(jl);
        json_destroy(jd);
        frontend_params_json(&p, fejson, sizeof fejson);
        w = st_writer_create();
        int64_t shape[4] = {f->n, f->n_channels, f->n_mels, f->n_frames}, n1[1] = {f->n};
        s = st_writer_add(w, "x", ST_F32, 4, shape, f->x);
        if (!s) s = st_writer_add(w, "y", ST_I64, 1, n1, y);
        if (!s) s = st_writer_add(w, "device", ST_I64, 1, n1, dev);
        if (!s) s = st_writer_meta(w, "basin.format", "1");
        if (!s) s = st_writer_meta(w, "basin.frontend", fejson);
        if (!s) s = st_writer_meta(w, "basin.labels", labels);
        if (!s) s = st_writer_meta(w, "basin.devices", devices);
        if (!s) s = st_writer_meta(w, "basin.split", split == DATASET_SPLIT_ANY ? "all" : dataset_split_name(split));
        if (!s) s = st_writer_meta(w, "basin.znorm", norm);
        if (!s) s = st_writer_write(w, path);
    }
    if (!s) {
        app_out(a, "wrote %s: x (%d, %d, %d, %d), y (%d), device (%d); %s front end (%s), normalisation %s; "
                   "%ld clips computed, %ld from the cache, %d skipped\n",
                path, f->n, f->n_channels, f->n_mels, f->n_frames, f->n, f->n, p.preset, from, norm,
                f->n_computed, f->n_cached, f->n_skipped);
        for (int i = 0; i < f->n_skipped; i++) app_out(a, "  skipped %s\n", f->skipped_reason[i]);
    }
    st_writer_destroy(w);
    free(y), free(dev), free(mean), free(std);
    mem_free(labels), mem_free(devices);
    features_destroy(f);
    features_destroy(ftrain);
    frontend_destroy(fe);
    if (s) return app_fail(a, s, "data export: %s", status_detail());
    return STATUS_OK;
}

int cmd_data(struct app *a, int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "export")) return data_export(a, argc, argv);
    if (argc > 2) return app_fail(a, STATUS_INVALID, "usage: data [PATH|default] | data export PATH [split=...]");
    if (argc == 2 || !a->ds) {
        int s = use_dataset(a, argc == 2 ? argv[1] : "default");
        if (s) return s;
    }
    int n = dataset_summary(a->ds, NULL, 0);
    char *buf = malloc((size_t)n + 1);
    if (!buf) return app_fail(a, STATUS_NOMEM, "data: out of memory");
    dataset_summary(a->ds, buf, (size_t)n + 1);
    app_out(a, "%s\n%s", a->ds_path, buf);
    if (n && buf[n - 1] != '\n') app_out(a, "\n");
    free(buf);
    return STATUS_OK;
}

int cmd_cache(struct app *a, int argc, char **argv)
{
    (void)argc, (void)argv;
    return app_fail(a, STATUS_UNSUPPORTED, "cache: not yet");
}
