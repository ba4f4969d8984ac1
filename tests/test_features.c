/* test_features.c: clips to features (channels, resampling, lengths), loading splits over
 * threads, skipped files, the disk cache and its cap, z-normalisation, and features of a
 * synthesised data set. Fixtures from data_util.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basin/audio/audio_file.h"
#include "basin/core/log.h"
#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/data/dataset.h"
#include "basin/data/features.h"
#include "basin/data/synth.h"
#include "basin/dsp/frontend.h"
#include "basin/dsp/resample.h"
#include "util.h"
#include "test.h"

/* Front-end features of samples x (n) computed directly: y (F, T). */
static int direct_features(const struct frontend *fe, const float *x, long n, float *y)
{
    struct frontend_work *w;
    if (frontend_work_create(&w, fe)) return 0;
    int st = frontend_compute(fe, w, x, n, y);
    frontend_work_destroy(w);
    return st == STATUS_OK;
}

static void test_features_match_frontend(void)
{
    char dir[512];
    path_of(dir, sizeof dir, "dcase_audio");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL | DC_AUDIO));
    struct dataset *ds;
    struct frontend *fe;
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    REQUIRE(make_fe(&fe));
    long n_samples = 0;
    REQUIRE_OK(features_clip_samples(ds, fe, &n_samples));
    EXPECT_EQ_INT(n_samples, CLIP);
    struct features_opts o = {.cache_dir = ""};
    struct features *f;
    REQUIRE_OK(features_load(&f, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL));
    EXPECT_EQ_INT(f->n, 9);
    EXPECT_EQ_INT(f->n_channels, 1);
    EXPECT_EQ_INT(f->n_mels, 16);
    EXPECT_EQ_INT(f->n_frames, 1 + CLIP / 128);
    EXPECT_EQ_INT(f->n_classes, 3);
    EXPECT_EQ_INT(f->n_samples, CLIP);
    EXPECT_EQ_INT(f->n_computed, 9);
    EXPECT_EQ_INT(f->n_cached, 0);
    EXPECT_EQ_INT(f->n_skipped, 0);
    long per = (long)f->n_mels * f->n_frames;
    float *y = malloc(sizeof *y * (size_t)per);
    REQUIRE(y);
    for (int i = 0; i < f->n; i++) {
        const struct dataset_item *it = dataset_item(ds, f->items[i]);
        EXPECT_EQ_INT(it->split, DATASET_SPLIT_TRAIN);
        EXPECT_EQ_INT(f->labels[i], it->label);
        struct audio_file af;
        REQUIRE_OK(audio_file_read(&af, it->path, NULL));
        REQUIRE(direct_features(fe, af.x, af.n_frames, y));
        EXPECT_TENSOR_NEAR(features_clip_data(f, i), y, per, 0.0, 0.0);
        audio_file_fini(&af);
    }
    /* items in order, train then evaluate clips */
    EXPECT(f->items[0] < f->items[1]);
    free(y);
    features_destroy(f);
    features_destroy(NULL);

    /* loading one thread or two gives the same bits */
    struct features *g1, *g2;
    threads_set(1);
    int st1 = features_load(&g1, ds, DATASET_SPLIT_ANY, fe, &o, NULL);
    threads_set(2);
    REQUIRE_OK(st1);
    REQUIRE_OK(features_load(&g2, ds, DATASET_SPLIT_ANY, fe, &o, NULL));
    REQUIRE(g1->n == 16 && g2->n == 16);
    EXPECT(!memcmp(g1->x, g2->x, sizeof(float) * (size_t)(16 * per)));
    features_destroy(g1);
    features_destroy(g2);
    frontend_destroy(fe);
    dataset_destroy(ds);
}

/* A CSV data set of the given clips (name, channels, frames, rate) with one label. */
struct clip_spec {
    const char *name;
    int channels;
    long frames;
    int rate;
};

static struct dataset *clip_set(const char *set, const struct clip_spec *clips, int n)
{
    char dir[512], p[700], text[4096];
    path_of(dir, sizeof dir, "%s", set);
    mkdirs(dir);
    int k = snprintf(text, sizeof text, "filename,label,split\n");
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, clips[i].name);
        if (clips[i].frames > 0 &&
            !write_clip(p, clips[i].channels, clips[i].frames, clips[i].rate, 220.0 + 40 * i,
                        (uint64_t)(1000 + i)))
            return NULL;
        k += snprintf(text + k, sizeof text - (size_t)k, "%s,%s,train\n", clips[i].name,
                      i % 2 ? "odd" : "even");
    }
    snprintf(p, sizeof p, "%s/list.csv", dir);
    if (!write_text(p, text)) return NULL;
    struct dataset *ds;
    return dataset_open(&ds, p, NULL) ? NULL : ds;
}

static void test_features_resample_and_length(void)
{
    static const struct clip_spec clips[] = {
        {"base.wav", 1, CLIP, SR},          /* the common length */
        {"fast.wav", 1, 2 * CLIP, 2 * SR},  /* same duration at 16 kHz: resampled */
        {"short.wav", 1, 1500, SR},         /* padded */
        {"long.wav", 1, 2600, SR},          /* cropped */
        {"base2.wav", 1, CLIP, SR},
    };
    struct dataset *ds = clip_set("lengths", clips, 5);
    REQUIRE(ds);
    struct frontend *fe;
    REQUIRE(make_fe(&fe));
    long n_samples;
    REQUIRE_OK(features_clip_samples(ds, fe, &n_samples));
    EXPECT_EQ_INT(n_samples, CLIP);   /* three clips of 2000 at 8 kHz */
    long per = 16L * (1 + CLIP / 128);
    float *y = malloc(sizeof *y * (size_t)per), *x = malloc(sizeof *x * 8 * CLIP);
    REQUIRE(y && x);
    for (int pad = 0; pad < 2; pad++) {
        struct features_opts o = {.cache_dir = "", .pad = pad ? FEATURES_PAD_ZERO : FEATURES_PAD_REPEAT};
        struct features *f;
        REQUIRE_OK(features_load(&f, ds, DATASET_SPLIT_ANY, fe, &o, NULL));
        REQUIRE(f->n == 5);
        for (int i = 0; i < 5; i++) {
            struct audio_file af;
            REQUIRE_OK(audio_file_read(&af, dataset_item(ds, i)->path, NULL));
            long n = af.n_frames;
            if (af.sample_rate_hz != SR) {
                long n_out;
                REQUIRE_OK(resample(af.x, n, 1, RESAMPLE_PLANAR, af.sample_rate_hz, SR, x,
                                    8 * CLIP, &n_out));
                EXPECT_EQ_INT(n_out, CLIP);
                n = n_out;
            } else {
                memcpy(x, af.x, sizeof *x * (size_t)n);
            }
            for (long t = n; t < CLIP; t++) x[t] = pad ? 0.0f : x[t % n];
            REQUIRE(direct_features(fe, x, CLIP, y));
            EXPECT_MSG(!memcmp(features_clip_data(f, i), y, sizeof *y * (size_t)per),
                       "clip %d (pad %d) differs from the front end on the same samples", i, pad);
            audio_file_fini(&af);
        }
        features_destroy(f);
    }
    /* an explicit length: every clip cropped / padded to it */
    struct features_opts o = {.cache_dir = "", .n_samples = 1024};
    struct features *f;
    REQUIRE_OK(features_load(&f, ds, DATASET_SPLIT_ANY, fe, &o, NULL));
    EXPECT_EQ_INT(f->n_frames, 1 + 1024 / 128);
    features_destroy(f);
    o.n_samples = 100;   /* below n_fft / 2 + 1 */
    EXPECT_EQ_INT(features_load(&f, ds, DATASET_SPLIT_ANY, fe, &o, NULL), STATUS_INVALID);
    free(x);
    free(y);
    frontend_destroy(fe);
    dataset_destroy(ds);

    /* the mode's tie goes to the longer length */
    static const struct clip_spec tie[] = {
        {"t1.wav", 1, 1000, SR}, {"t2.wav", 1, 1500, SR}, {"t3.wav", 1, 1000, SR},
        {"t4.wav", 1, 1500, SR}, {"t5.wav", 1, 0, SR},   /* missing: left out */
    };
    REQUIRE((ds = clip_set("tie", tie, 5)));
    REQUIRE(make_fe(&fe));
    REQUIRE_OK(features_clip_samples(ds, fe, &n_samples));
    EXPECT_EQ_INT(n_samples, 1500);
    frontend_destroy(fe);
    dataset_destroy(ds);
}

static void test_features_channels(void)
{
    static const struct clip_spec clips[] = {
        {"stereo.wav", 2, CLIP, SR},
        {"mono.wav", 1, CLIP, SR},
        {"three.wav", 3, CLIP, SR},
    };
    struct dataset *ds = clip_set("channels", clips, 3);
    REQUIRE(ds);
    struct frontend *fe;
    REQUIRE(make_fe(&fe));
    long per = 16L * (1 + CLIP / 128);
    float *y = malloc(sizeof *y * (size_t)per), *m = malloc(sizeof *m * CLIP);
    REQUIRE(y && m);
    struct audio_file st, mo, th;
    REQUIRE_OK(audio_file_read(&st, dataset_item(ds, 0)->path, NULL));
    REQUIRE_OK(audio_file_read(&mo, dataset_item(ds, 1)->path, NULL));
    REQUIRE_OK(audio_file_read(&th, dataset_item(ds, 2)->path, NULL));

    /* in_ch 1: the mean of the channels */
    struct features_opts o = {.cache_dir = "", .in_ch = 1};
    struct features *f;
    REQUIRE_OK(features_load(&f, ds, DATASET_SPLIT_ANY, fe, &o, NULL));
    REQUIRE(f->n == 3);
    for (long t = 0; t < CLIP; t++) m[t] = (st.x[t] + st.x[CLIP + t]) / 2.0f;
    REQUIRE(direct_features(fe, m, CLIP, y));
    EXPECT_TENSOR_NEAR(features_clip_data(f, 0), y, per, 0.0, 0.0);
    features_destroy(f);

    /* in_ch 2: stereo kept, mono duplicated, 3 channels -> the first two */
    o.in_ch = 2;
    REQUIRE_OK(features_load(&f, ds, DATASET_SPLIT_ANY, fe, &o, NULL));
    REQUIRE(f->n == 3);
    EXPECT_EQ_INT(f->n_channels, 2);
    const struct audio_file *src[3] = {&st, &mo, &th};
    for (int i = 0; i < 3; i++)
        for (int c = 0; c < 2; c++) {
            const float *x = src[i]->n_channels == 1 ? src[i]->x : audio_file_channel(src[i], c);
            REQUIRE(direct_features(fe, x, CLIP, y));
            EXPECT_MSG(!memcmp(features_clip_data(f, i) + c * per, y, sizeof *y * (size_t)per),
                       "clip %d channel %d", i, c);
        }
    features_destroy(f);

    /* in_ch 3: the stereo file cannot feed it: skipped with the reason */
    o.in_ch = 3;
    capture_start();
    int rc = features_load(&f, ds, DATASET_SPLIT_ANY, fe, &o, NULL);
    capture_stop();
    REQUIRE_OK(rc);
    EXPECT_EQ_INT(f->n, 2);
    REQUIRE(f->n_skipped == 1);
    EXPECT_EQ_INT(f->skipped[0], 0);
    EXPECT(strstr(f->skipped_reason[0], "stereo.wav: 2 channels cannot feed a 3-channel model") != NULL);
    EXPECT(strstr(captured, "stereo.wav: 2 channels") != NULL);
    features_destroy(f);
    o.in_ch = 65;
    EXPECT_EQ_INT(features_load(&f, ds, DATASET_SPLIT_ANY, fe, &o, NULL), STATUS_INVALID);
    audio_file_fini(&st);
    audio_file_fini(&mo);
    audio_file_fini(&th);
    free(y);
    free(m);
    frontend_destroy(fe);
    dataset_destroy(ds);
}

static void test_features_skip_bad_files(void)
{
    static const struct clip_spec clips[] = {
        {"good1.wav", 1, CLIP, SR}, {"missing.wav", 1, 0, SR}, {"good2.wav", 1, CLIP, SR},
        {"corrupt.wav", 1, 0, SR},  {"good3.wav", 1, CLIP, SR},
    };
    char p[600];
    path_of(p, sizeof p, "skip/corrupt.wav");
    mkdirs(path_of(p, sizeof p, "skip"));
    path_of(p, sizeof p, "skip/corrupt.wav");
    REQUIRE(write_text(p, "this is not audio at all, just some text pretending to be a wav"));
    struct dataset *ds = clip_set("skip", clips, 5);
    REQUIRE(ds);
    struct frontend *fe;
    REQUIRE(make_fe(&fe));
    char cache[512];
    path_of(cache, sizeof cache, "skip_cache");
    struct features_opts o = {.cache_dir = cache};
    struct features *f;
    capture_start();
    int rc = features_load(&f, ds, DATASET_SPLIT_ANY, fe, &o, NULL);
    capture_stop();
    REQUIRE_OK(rc);
    EXPECT_EQ_INT(f->n, 3);
    EXPECT_EQ_INT(f->items[0], 0);
    EXPECT_EQ_INT(f->items[1], 2);
    EXPECT_EQ_INT(f->items[2], 4);
    EXPECT_EQ_INT(f->labels[1], dataset_item(ds, 2)->label);
    REQUIRE(f->n_skipped == 2);
    EXPECT_EQ_INT(f->skipped[0], 1);
    EXPECT_EQ_INT(f->skipped[1], 3);
    EXPECT(strstr(f->skipped_reason[0], dataset_item(ds, 1)->path) == f->skipped_reason[0]);
    EXPECT(strstr(f->skipped_reason[1], dataset_item(ds, 3)->path) == f->skipped_reason[1]);
    EXPECT_EQ_INT(n_captured, 2);
    EXPECT(strstr(captured, "missing.wav") != NULL && strstr(captured, "corrupt.wav") != NULL);
    EXPECT_EQ_INT(count_char(f->skipped_reason[0], '\n'), 0);
    /* the good clips match a load of the good clips alone */
    int good[3] = {0, 2, 4};
    struct features *g;
    REQUIRE_OK(features_load_items(&g, ds, 3, good, fe, &o, NULL));
    EXPECT(!memcmp(f->x, g->x, sizeof(float) * (size_t)(3L * 16 * f->n_frames)));
    features_destroy(g);
    features_destroy(f);

    /* nothing loadable: an error naming the first reason */
    int bad[2] = {1, 3};
    capture_start();
    rc = features_load_items(&f, ds, 2, bad, fe, &o, NULL);
    capture_stop();
    EXPECT_EQ_INT(rc, STATUS_FORMAT);
    EXPECT(strstr(status_detail(), "none of the 2 clips could be loaded (first: ") != NULL);
    EXPECT(f == NULL);
    frontend_destroy(fe);
    dataset_destroy(ds);
}

static int cancel_after_first(void *user, const char *label, long done, long total)
{
    int *calls = user;
    (*calls)++;
    EXPECT_STR(label, "features");
    return done < total && *calls < 1;
}

static void test_features_cache(void)
{
    char dir[512], cache[512];
    path_of(dir, sizeof dir, "dcase_cache");
    path_of(cache, sizeof cache, "cache/deep/features");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL | DC_AUDIO));
    struct dataset *ds;
    struct frontend *fe;
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    REQUIRE(make_fe(&fe));
    struct features_opts o = {.cache_dir = cache};
    struct features *f1, *f2, *f3, *f4;
    REQUIRE_OK(features_load(&f1, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL));
    EXPECT_EQ_INT(f1->n_computed, 9);
    EXPECT_EQ_INT(f1->n_cached, 0);
    size_t bytes = sizeof(float) * (size_t)f1->n * 16 * (size_t)f1->n_frames;

    /* second run: everything from the cache, the same bits */
    REQUIRE_OK(features_load(&f2, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL));
    EXPECT_EQ_INT(f2->n_computed, 0);
    EXPECT_EQ_INT(f2->n_cached, 9);
    EXPECT_EQ_INT(f2->n_cache_invalid, 0);
    EXPECT(!memcmp(f1->x, f2->x, bytes));
    features_destroy(f2);

    /* find the cache files: <cache>/<2 hex>/<32 hex>.feat */
    char cmd[1200], list[600];
    path_of(list, sizeof list, "cache_files.txt");
    snprintf(cmd, sizeof cmd, "find '%s' -name '*.feat' | sort > '%s'", cache, list);
    REQUIRE(system(cmd) == 0);
    FILE *lf = fopen(list, "r");
    REQUIRE(lf);
    char files[16][700];
    int n_files = 0;
    while (n_files < 16 && fgets(files[n_files], sizeof files[0], lf)) {
        files[n_files][strcspn(files[n_files], "\n")] = 0;
        n_files++;
    }
    fclose(lf);
    EXPECT_EQ_INT(n_files, 9);
    REQUIRE(n_files >= 3);
    const char *base = strrchr(files[0], '/') + 1;
    EXPECT_EQ_INT(strlen(base), 32 + 5);
    EXPECT(!strncmp(base, strrchr(files[0], '/') - 2, 2));   /* sharded by the first 2 digits */

    /* corrupt one payload byte, truncate another, damage a third's magic: recomputed */
    FILE *cf = fopen(files[0], "r+b");
    REQUIRE(cf);
    fseek(cf, 64 + 100, SEEK_SET);
    int ch = fgetc(cf);
    fseek(cf, 64 + 100, SEEK_SET);
    fputc(ch ^ 0x40, cf);
    fclose(cf);
    REQUIRE(truncate(files[1], 64 + 40) == 0);
    cf = fopen(files[2], "r+b");
    REQUIRE(cf);
    fputc('X', cf);
    fclose(cf);
    REQUIRE_OK(features_load(&f3, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL));
    EXPECT_EQ_INT(f3->n_cache_invalid, 3);
    EXPECT_EQ_INT(f3->n_computed, 3);
    EXPECT_EQ_INT(f3->n_cached, 6);
    EXPECT(!memcmp(f1->x, f3->x, bytes));
    features_destroy(f3);
    /* ... and rewritten */
    REQUIRE_OK(features_load(&f4, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL));
    EXPECT_EQ_INT(f4->n_cached, 9);
    EXPECT(!memcmp(f1->x, f4->x, bytes));
    features_destroy(f4);

    /* new audio content -> a new key; another front end or length -> new keys */
    const struct dataset_item *it = dataset_item(ds, f1->items[0]);
    REQUIRE(write_clip(it->path, 1, CLIP, SR, 1234.0, 99));
    REQUIRE_OK(features_load(&f4, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL));
    EXPECT_EQ_INT(f4->n_computed, 1);
    EXPECT_EQ_INT(f4->n_cache_invalid, 0);
    EXPECT(memcmp(f1->x, f4->x, bytes) != 0);
    features_destroy(f4);
    struct features_opts o2 = o;
    o2.pad = FEATURES_PAD_ZERO;
    REQUIRE_OK(features_load(&f4, ds, DATASET_SPLIT_TRAIN, fe, &o2, NULL));
    EXPECT_EQ_INT(f4->n_computed, 9);
    features_destroy(f4);
    struct frontend_params p = *frontend_get_params(fe);
    p.n_mels = 12;
    struct frontend *fe2;
    REQUIRE_OK(frontend_create(&fe2, &p));
    REQUIRE_OK(features_load(&f4, ds, DATASET_SPLIT_TRAIN, fe2, &o, NULL));
    EXPECT_EQ_INT(f4->n_computed, 9);
    EXPECT_EQ_INT(f4->n_mels, 12);
    features_destroy(f4);
    frontend_destroy(fe2);

    /* cancellation: the callback says stop */
    int calls = 0;
    struct features_opts o3 = {.cache_dir = ""};
    threads_set(1);   /* chunks of 4 clips: the callback runs before the end */
    struct progress cancel = {cancel_after_first, &calls};
    int rc = features_load(&f4, ds, DATASET_SPLIT_ANY, fe, &o3, &cancel);
    threads_set(2);
    EXPECT_EQ_INT(rc, STATUS_CANCELLED);
    EXPECT_EQ_INT(calls, 1);
    EXPECT(f4 == NULL);

    /* a cache directory that cannot be made: a warning, the load goes on */
    char file[512], bad[600];
    path_of(file, sizeof file, "plainfile");
    REQUIRE(write_text(file, "x"));
    snprintf(bad, sizeof bad, "%s/sub", file);
    struct features_opts o4 = {.cache_dir = bad};
    capture_start();
    rc = features_load(&f4, ds, DATASET_SPLIT_EVAL, fe, &o4, NULL);
    capture_stop();
    REQUIRE_OK(rc);
    EXPECT_EQ_INT(f4->n, 6);
    EXPECT_EQ_INT(n_captured, 1);
    EXPECT(strstr(captured, "feature cache: ") != NULL);
    features_destroy(f4);

    char def[512];
    REQUIRE_OK(features_cache_dir_default(def, sizeof def));
    EXPECT(strstr(def, "basin/features") != NULL);
    features_destroy(f1);
    frontend_destroy(fe);
    dataset_destroy(ds);
}

static void test_features_znorm(void)
{
    char dir[512];
    path_of(dir, sizeof dir, "dcase_znorm");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL | DC_AUDIO));
    struct dataset *ds;
    struct frontend *fe;
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    REQUIRE(make_fe(&fe));
    struct features_opts o = {.cache_dir = ""};
    struct features *tr, *ev;
    REQUIRE_OK(features_load(&tr, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL));
    REQUIRE_OK(features_load(&ev, ds, DATASET_SPLIT_EVAL, fe, &o, NULL));
    float mean[16], std[16], mean1[16], std1[16];
    REQUIRE_OK(features_znorm_fit(tr, mean, std));
    threads_set(1);
    int rc = features_znorm_fit(tr, mean1, std1);
    threads_set(2);
    REQUIRE_OK(rc);
    EXPECT(!memcmp(mean, mean1, sizeof mean) && !memcmp(std, std1, sizeof std));
    /* against a plain double computation over clips and frames */
    int t = tr->n_frames;
    for (int b = 0; b < 16; b++) {
        double s = 0, s2 = 0;
        long n = (long)tr->n * t;
        for (int i = 0; i < tr->n; i++)
            for (int j = 0; j < t; j++) s += features_clip_data(tr, i)[b * t + j];
        double mu = s / n;
        for (int i = 0; i < tr->n; i++)
            for (int j = 0; j < t; j++) {
                double d = features_clip_data(tr, i)[b * t + j] - mu;
                s2 += d * d;
            }
        EXPECT_NEAR(mean[b], mu, 1e-4 * fabs(mu) + 1e-5);
        EXPECT_NEAR(std[b], sqrt(s2 / (n - 1)), 1e-4 * sqrt(s2 / (n - 1)) + 1e-6);
    }
    features_znorm_apply(tr, mean, std);
    features_znorm_apply(ev, mean, std);
    EXPECT(tr->znormed && ev->znormed);
    EXPECT(!memcmp(ev->mean, mean, sizeof mean));
    /* the training split is now mean 0, std 1 per bin */
    float m2[16], s2[16];
    tr->znormed = 0;
    REQUIRE_OK(features_znorm_fit(tr, m2, s2));
    tr->znormed = 1;
    for (int b = 0; b < 16; b++) {
        EXPECT_NEAR(m2[b], 0.0, 1e-4);
        EXPECT_NEAR(s2[b], 1.0, 1e-4);
    }
    EXPECT_EQ_INT(features_znorm_fit(tr, m2, s2), STATUS_INVALID);
    features_destroy(tr);
    features_destroy(ev);
    frontend_destroy(fe);
    dataset_destroy(ds);
}

/* The synthesiser's DCASE-layout output opens and loads as it is. */
static void test_synth_data_set(void)
{
    struct synth_params sp;
    synth_params_default(&sp);
    sp.sample_rate_hz = 16000;
    sp.clip_s = 0.5;
    sp.n_classes = 2;
    sp.n_locations = 3;
    sp.n_eval_locations = 1;
    sp.n_segments = 1;
    sp.train_devices = 1;
    sp.eval_devices = 2;
    REQUIRE_OK(synth_params_validate(&sp));
    char dir[512];
    path_of(dir, sizeof dir, "synth");
    REQUIRE_OK(synth_write(&sp, dir, NULL));
    struct dataset *ds;
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    EXPECT_EQ_INT(dataset_n_items(ds), synth_clip_count(&sp));
    EXPECT_STR(dataset_split_source(ds), "evaluation_setup/fold1_*.csv");
    REQUIRE(dataset_n_classes(ds) == 2);
    EXPECT_STR(dataset_class_name(ds, 0), synth_class_name(0));
    EXPECT_STR(dataset_class_name(ds, 1), synth_class_name(1));
    EXPECT_EQ_INT(dataset_count(ds, DATASET_SPLIT_NONE, -1, -1), 0);
    int a = dataset_device_index(ds, "a");
    REQUIRE(a >= 0);
    EXPECT(dataset_device_seen(ds, a));
    for (int d = 0; d < dataset_n_devices(ds); d++)
        if (dataset_device_seen(ds, d))
            EXPECT(dataset_count(ds, DATASET_SPLIT_TRAIN, -1, d) > 0);
    for (int i = 0; i < dataset_n_items(ds); i++) {
        const struct dataset_item *it = dataset_item(ds, i);
        EXPECT(strcmp(dataset_city_name(ds, it->city), "unknown") != 0);
        for (int j = 0; j < i; j++)
            if (!strcmp(it->recording, dataset_item(ds, j)->recording))
                EXPECT_EQ_INT(it->split, dataset_item(ds, j)->split);
    }
    struct frontend *fe;
    REQUIRE(make_fe(&fe));
    struct features_opts o = {.cache_dir = ""};
    struct features *f;
    REQUIRE_OK(features_load(&f, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL));
    EXPECT_EQ_INT(f->n, dataset_count(ds, DATASET_SPLIT_TRAIN, -1, -1));
    EXPECT_EQ_INT(f->n_skipped, 0);
    EXPECT_EQ_INT(f->n_samples, SR / 2);   /* 0.5 s at 16 kHz, resampled to 8 kHz */
    long n = (long)f->n * f->n_mels * f->n_frames;
    for (long i = 0; i < n; i++)
        if (!isfinite(f->x[i])) {
            EXPECT_MSG(0, "feature %ld is %g", i, f->x[i]);
            break;
        }
    features_destroy(f);
    frontend_destroy(fe);
    dataset_destroy(ds);
}


const struct test tests_features[] = {
    TEST(test_features_match_frontend),
    TEST(test_features_resample_and_length),
    TEST(test_features_channels),
    TEST(test_features_skip_bad_files),
    TEST(test_features_cache),
    TEST(test_features_znorm),
    TEST(test_synth_data_set),
    {0},
};
