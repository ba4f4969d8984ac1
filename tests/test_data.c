/* test_data.c: data sets (DCASE layout and CSV), splits, features and their cache, batches
 * and augmentation.
 *
 * Every fixture is made here in test_dir(): tiny DCASE-layout and CSV data sets with a few
 * 0.25 s clips (8 kHz, written as float WAVs so the samples read back exactly), several
 * classes, devices, cities and recordings. A small front end (8 kHz, n_fft 256, hop 128,
 * 16 mels) keeps every case fast.
 */
#include <math.h>
#include <stdarg.h>
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
#include "basin/data/batch.h"
#include "basin/data/dataset.h"
#include "basin/data/features.h"
#include "basin/data/hash.h"
#include "basin/data/synth.h"
#include "basin/dsp/frontend.h"
#include "basin/dsp/resample.h"
#include "test.h"

#define SR 8000
#define CLIP 2000   /* samples: 0.25 s */

/* ---- helpers ----------------------------------------------------------------------- */

static char *path_of(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static char *path_of(char *buf, size_t n, const char *fmt, ...)
{
    int k = snprintf(buf, n, "%s/", test_dir());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + k, n - (size_t)k, fmt, ap);
    va_end(ap);
    return buf;
}

static void mkdirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fputs(text, f);
    return fclose(f) == 0;
}

/* A seeded clip: channel c is a sine at f0 (c + 1) Hz plus noise, float WAV. */
static int write_clip(const char *path, int n_channels, long n_frames, int rate, double f0,
                      uint64_t seed)
{
    struct audio_file af;
    if (audio_file_alloc(&af, n_channels, n_frames, rate)) return 0;
    struct rng r;
    rng_seed(&r, seed);
    for (int c = 0; c < n_channels; c++) {
        float *x = audio_file_channel(&af, c);
        for (long t = 0; t < n_frames; t++)
            x[t] = (float)(0.3 * sin(2 * M_PI * f0 * (c + 1) * t / rate) +
                           0.05 * (rng_uniform(&r) - 0.5));
    }
    int ok = audio_file_write(path, &af, AUDIO_FILE_WAV_F32) == STATUS_OK;
    audio_file_fini(&af);
    return ok;
}

static int make_fe(struct frontend **fe)
{
    struct frontend_params p;
    if (frontend_preset(&p, "demo")) return 0;
    p.sample_rate_hz = SR;
    p.n_fft = 256;
    p.win_length = 256;
    p.hop = 128;
    p.n_mels = 16;
    p.fmin_hz = 0;
    p.fmax_hz = SR / 2;
    return frontend_create(fe, &p) == STATUS_OK;
}

/* The DCASE fixture: 3 classes x 2 recordings (lyon: devices a, b, c, in train; paris:
 * devices a, s1, in evaluate) plus one clip no setup file lists: 16 clips. */
enum { DC_SETUP = 1, DC_META_FULL = 2, DC_AUDIO = 4, DC_TEST_LIST = 8 };
static const char *const dc_classes[3] = {"street_traffic", "airport", "park"};

static int make_dcase(const char *dir, int flags)
{
    char p[1024], meta[8192], train[4096], eval[4096], test[4096];
    snprintf(p, sizeof p, "%s/audio", dir);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/evaluation_setup", dir);
    if (flags & DC_SETUP) mkdirs(p);
    int km = snprintf(meta, sizeof meta, "%s\n",
                      flags & DC_META_FULL ? "filename\tscene_label\tidentifier\tsource_label"
                                           : "filename\tscene_label");
    int kt = snprintf(train, sizeof train, "filename\tscene_label\n");
    int ke = snprintf(eval, sizeof eval, "filename\tscene_label\n");
    int kx = snprintf(test, sizeof test, "filename\n");
    static const char *const devs[2][3] = {{"a", "b", "c"}, {"a", "s1", NULL}};
    for (int c = 0; c < 3; c++)
        for (int r = 0; r < 2; r++)
            for (int d = 0; d < 3 && devs[r][d]; d++) {
                const char *city = r ? "paris" : "lyon";
                int rec = 100 * c + r;
                char name[256];
                snprintf(name, sizeof name, "audio/%s-%s-%d-7-%s.wav", dc_classes[c], city, rec,
                         devs[r][d]);
                if (flags & DC_META_FULL)
                    km += snprintf(meta + km, sizeof meta - (size_t)km, "%s\t%s\t%s-%d\t%s\n", name,
                                   dc_classes[c], city, rec, devs[r][d]);
                else
                    km += snprintf(meta + km, sizeof meta - (size_t)km, "%s\t%s\n", name,
                                   dc_classes[c]);
                if (r == 0) kt += snprintf(train + kt, sizeof train - (size_t)kt, "%s\t%s\n", name, dc_classes[c]);
                else ke += snprintf(eval + ke, sizeof eval - (size_t)ke, "%s\t%s\n", name, dc_classes[c]);
                if (r == 1) kx += snprintf(test + kx, sizeof test - (size_t)kx, "%s\n", name);
                if (flags & DC_AUDIO) {
                    snprintf(p, sizeof p, "%s/%s", dir, name);
                    if (!write_clip(p, 1, CLIP, SR, 300.0 + 150.0 * c + 20.0 * d, (uint64_t)(rec * 10 + d)))
                        return 0;
                }
            }
    const char *extra = flags & DC_META_FULL ? "audio/airport-lyon-200-3-b.wav\tairport\tlyon-200\tb\n"
                                             : "audio/airport-lyon-200-3-b.wav\tairport\n";
    km += snprintf(meta + km, sizeof meta - (size_t)km, "%s", extra);
    if (flags & DC_AUDIO) {
        snprintf(p, sizeof p, "%s/audio/airport-lyon-200-3-b.wav", dir);
        if (!write_clip(p, 1, CLIP, SR, 500.0, 77)) return 0;
    }
    snprintf(p, sizeof p, "%s/meta.csv", dir);
    if (!write_text(p, meta)) return 0;
    if (flags & DC_SETUP) {
        snprintf(p, sizeof p, "%s/evaluation_setup/fold1_train.csv", dir);
        if (!write_text(p, train)) return 0;
        snprintf(p, sizeof p, "%s/evaluation_setup/fold1_evaluate.csv", dir);
        if (!write_text(p, eval)) return 0;
        if (flags & DC_TEST_LIST) {
            snprintf(p, sizeof p, "%s/evaluation_setup/fold1_test.csv", dir);
            if (!write_text(p, test)) return 0;
        }
    }
    return 1;
}

/* Warnings captured while a test runs (the runner's sink is put back after). */
static char captured[8192];
static int n_captured;

static void capture_sink(enum log_level level, const char *msg, void *user)
{
    (void)user;
    if (level < LOG_WARN) return;
    size_t k = strlen(captured);
    snprintf(captured + k, sizeof captured - k, "%s\n", msg);
    n_captured++;
}

static void stderr_sink(enum log_level level, const char *msg, void *user)
{
    (void)user;
    if (level >= LOG_WARN) fprintf(stderr, "  log: %s\n", msg);
}

static void capture_start(void)
{
    captured[0] = 0;
    n_captured = 0;
    log_set_sink(capture_sink, NULL, LOG_WARN);
}

static void capture_stop(void)
{
    log_set_sink(stderr_sink, NULL, LOG_WARN);
}

static int count_char(const char *s, char c)
{
    int n = 0;
    for (; *s; s++) n += *s == c;
    return n;
}

/* ---- hash ---------------------------------------------------------------------------- */

static void test_xxh64_vectors(void)
{
    /* ref: xxHash reference values (python-xxhash, XXH64, seed 0). */
    EXPECT(hash_xxh64("", 0, 0) == 0xef46db3751d8e999ull);
    EXPECT(hash_xxh64("a", 1, 0) == 0xd24ec4f1a98c6e5bull);
    EXPECT(hash_xxh64("abc", 3, 0) == 0x44bc2cf5ad770999ull);
    const char *s = "Nobody inspects the spammish repetition";
    EXPECT(hash_xxh64(s, strlen(s), 0) == 0xfbcea83c8a378bf1ull);
    /* streaming in odd pieces gives the one-shot value */
    unsigned char buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (unsigned char)(i * 7 + 3);
    struct hash_xxh64 h;
    hash_xxh64_init(&h, 42);
    for (size_t k = 0, step = 1; k < 1000; k += step, step = step * 3 % 37 + 1)
        hash_xxh64_update(&h, buf + k, k + step > 1000 ? 1000 - k : step);
    EXPECT(hash_xxh64_digest(&h) == hash_xxh64(buf, 1000, 42));
}

/* ---- data sets ----------------------------------------------------------------------- */

static void test_dcase_layout(void)
{
    char dir[512], p[600];
    path_of(dir, sizeof dir, "dcase_full");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL | DC_TEST_LIST));
    struct dataset *ds;
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    EXPECT_EQ_INT(dataset_format(ds), DATASET_FORMAT_DCASE);
    EXPECT_EQ_INT(dataset_n_items(ds), 16);
    EXPECT_STR(dataset_split_source(ds), "evaluation_setup fold 1");
    REQUIRE(dataset_n_classes(ds) == 3);
    EXPECT_STR(dataset_class_name(ds, 0), "airport");
    EXPECT_STR(dataset_class_name(ds, 1), "park");
    EXPECT_STR(dataset_class_name(ds, 2), "street_traffic");
    EXPECT_EQ_INT(dataset_class_index(ds, "park"), 1);
    EXPECT_EQ_INT(dataset_class_index(ds, "nope"), -1);
    REQUIRE(dataset_n_devices(ds) == 4);
    EXPECT_STR(dataset_device_name(ds, 0), "a");
    EXPECT_STR(dataset_device_name(ds, 3), "s1");
    for (int d = 0; d < 3; d++) EXPECT(dataset_device_seen(ds, d));
    EXPECT(!dataset_device_seen(ds, 3));
    REQUIRE(dataset_n_cities(ds) == 2);
    EXPECT_STR(dataset_city_name(ds, 0), "lyon");
    EXPECT_STR(dataset_city_name(ds, 1), "paris");
    EXPECT_EQ_INT(dataset_count(ds, DATASET_SPLIT_TRAIN, -1, -1), 9);
    EXPECT_EQ_INT(dataset_count(ds, DATASET_SPLIT_EVAL, -1, -1), 6);
    EXPECT_EQ_INT(dataset_count(ds, DATASET_SPLIT_TEST, -1, -1), 0);   /* test = evaluate */
    EXPECT_EQ_INT(dataset_count(ds, DATASET_SPLIT_NONE, -1, -1), 1);
    EXPECT_EQ_INT(dataset_count(ds, DATASET_SPLIT_EVAL, -1, 3), 3);
    EXPECT_EQ_INT(dataset_count(ds, DATASET_SPLIT_ANY, 0, -1), 6);
    /* first row: street_traffic-lyon-0-7-a */
    const struct dataset_item *it = dataset_item(ds, 0);
    EXPECT_STR(it->filename, "audio/street_traffic-lyon-0-7-a.wav");
    snprintf(p, sizeof p, "%s/audio/street_traffic-lyon-0-7-a.wav", dir);
    EXPECT_STR(it->path, p);
    EXPECT_STR(it->recording, "lyon-0");
    EXPECT_EQ_INT(it->label, 2);
    EXPECT_EQ_INT(it->device, 0);
    EXPECT_EQ_INT(it->city, 0);
    EXPECT_EQ_INT(it->split, DATASET_SPLIT_TRAIN);
    EXPECT_EQ_INT(it->line, 2);
    it = dataset_item(ds, 15);
    EXPECT_EQ_INT(it->split, DATASET_SPLIT_NONE);
    EXPECT_STR(it->recording, "lyon-200");
    char sum[4096];
    int n = dataset_summary(ds, sum, sizeof sum);
    EXPECT(n > 0 && n < (int)sizeof sum);
    EXPECT(strstr(sum, "clips     16: train 9, evaluate 6, unused 1") != NULL);
    EXPECT(strstr(sum, "classes   3: airport, park, street_traffic") != NULL);
    EXPECT(strstr(sum, "devices   4: seen a, b, c; unseen s1") != NULL);
    EXPECT(strstr(sum, "cities    2: lyon, paris") != NULL);
    EXPECT(strstr(sum, "s1      unseen") != NULL);
    EXPECT_EQ_INT(dataset_summary(ds, NULL, 0), n);
    char small[20];
    EXPECT_EQ_INT(dataset_summary(ds, small, sizeof small), n);
    EXPECT_EQ_INT(strlen(small), sizeof small - 1);
    dataset_destroy(ds);

    /* meta.csv's path opens the same data set */
    snprintf(p, sizeof p, "%s/meta.csv", dir);
    REQUIRE_OK(dataset_open(&ds, p, NULL));
    EXPECT_EQ_INT(dataset_format(ds), DATASET_FORMAT_DCASE);
    EXPECT_EQ_INT(dataset_count(ds, DATASET_SPLIT_TRAIN, -1, -1), 9);
    dataset_destroy(ds);
    dataset_destroy(NULL);

    /* fold 2 asked for, absent */
    struct dataset_opts o = {.fold = 2};
    EXPECT_EQ_INT(dataset_open(&ds, dir, &o), STATUS_NOT_FOUND);
    EXPECT(strstr(status_detail(), "fold2_train.csv: no such file") != NULL);
}

static void test_dcase_names_from_filenames(void)
{
    /* meta.csv without identifier / source_label: devices from the "-a.wav" suffix, cities
     * from "<label>-<city>-", recordings from the name without the device suffix. */
    char dir[512];
    path_of(dir, sizeof dir, "dcase_short");
    REQUIRE(make_dcase(dir, DC_SETUP));
    struct dataset *ds;
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    REQUIRE(dataset_n_devices(ds) == 4);
    EXPECT_STR(dataset_device_name(ds, 2), "c");
    EXPECT_STR(dataset_device_name(ds, 3), "s1");
    EXPECT_EQ_INT(dataset_n_cities(ds), 2);
    const struct dataset_item *it = dataset_item(ds, 1);
    EXPECT_STR(dataset_device_name(ds, it->device), "b");
    EXPECT_STR(dataset_city_name(ds, it->city), "lyon");
    EXPECT_STR(it->recording, "street_traffic-lyon-0-7");
    EXPECT_STR(dataset_item(ds, 0)->recording, it->recording);
    dataset_destroy(ds);
}

static void test_natural_device_order(void)
{
    char p[512];
    path_of(p, sizeof p, "devices.csv");
    REQUIRE(write_text(p, "filename,label,device\n"
                          "1.wav,x,s10\n2.wav,x,s2\n3.wav,x,b\n4.wav,y,s1\n5.wav,y,a\n"));
    struct dataset *ds;
    REQUIRE_OK(dataset_open(&ds, p, NULL));
    static const char *const want[] = {"a", "b", "s1", "s2", "s10"};
    REQUIRE(dataset_n_devices(ds) == 5);
    for (int d = 0; d < 5; d++) EXPECT_STR(dataset_device_name(ds, d), want[d]);
    EXPECT_EQ_INT(dataset_device_index(ds, "s10"), 4);
    dataset_destroy(ds);
}

static void test_csv_format(void)
{
    char p[512], sub[512], want[600];
    path_of(sub, sizeof sub, "csvset");
    mkdirs(sub);
    path_of(p, sizeof p, "csvset/list.csv");
    /* BOM, CRLF, quotes, spaces, column order, aliases, an absolute path, a blank line */
    REQUIRE(write_text(p, "\xEF\xBB\xBFSplit , File,Scene , device,Identifier\r\n"
                          "train, \"clips/a, b.wav\", park, a, r1\r\n"
                          "\r\n"
                          "val,clips/c.wav,\"air\"\"port\",b,r2\r\n"
                          "test,/abs/d.wav,park,,r3\r\n"));
    struct dataset *ds;
    REQUIRE_OK(dataset_open(&ds, p, NULL));
    EXPECT_EQ_INT(dataset_format(ds), DATASET_FORMAT_CSV);
    EXPECT_STR(dataset_split_source(ds), "split column");
    REQUIRE(dataset_n_items(ds) == 3);
    const struct dataset_item *a = dataset_item(ds, 0), *c = dataset_item(ds, 1), *d = dataset_item(ds, 2);
    EXPECT_STR(a->filename, "clips/a, b.wav");
    snprintf(want, sizeof want, "%s/clips/a, b.wav", sub);
    EXPECT_STR(a->path, want);
    EXPECT_STR(d->path, "/abs/d.wav");
    EXPECT_EQ_INT(a->split, DATASET_SPLIT_TRAIN);
    EXPECT_EQ_INT(c->split, DATASET_SPLIT_EVAL);
    EXPECT_EQ_INT(d->split, DATASET_SPLIT_TEST);
    EXPECT_EQ_INT(c->line, 4);
    EXPECT_STR(dataset_class_name(ds, c->label), "air\"port");
    EXPECT_STR(dataset_device_name(ds, d->device), "unknown");
    EXPECT_STR(a->recording, "r1");
    EXPECT(dataset_device_seen(ds, a->device));
    EXPECT(!dataset_device_seen(ds, c->device));
    dataset_destroy(ds);

    /* tab-separated, no split column: seeded split; recording from the file name */
    path_of(p, sizeof p, "csvset/tabs.csv");
    REQUIRE(write_text(p, "filename\tlabel\n"
                          "x/park-1.wav\tpark\nx/park-2.wav\tpark\nx/bus-1.wav\tbus\n"
                          "x/bus-2.wav\tbus\n"));
    REQUIRE_OK(dataset_open(&ds, p, NULL));
    EXPECT_EQ_INT(dataset_n_items(ds), 4);
    EXPECT_STR(dataset_item(ds, 0)->recording, "park-1");
    EXPECT(strstr(dataset_split_source(ds), "seeded by recording") != NULL);
    /* two recordings per class, fraction 0.7: one train and one evaluate each */
    EXPECT_EQ_INT(dataset_count(ds, DATASET_SPLIT_TRAIN, 0, -1), 1);
    EXPECT_EQ_INT(dataset_count(ds, DATASET_SPLIT_EVAL, 1, -1), 1);
    dataset_destroy(ds);
}

static void test_fold_column(void)
{
    char p[512];
    path_of(p, sizeof p, "folds.csv");
    REQUIRE(write_text(p, "filename,label,fold\n"
                          "a.wav,x,1\nb.wav,x,2\nc.wav,y,2\nd.wav,y,3\n"));
    struct dataset *ds;
    REQUIRE_OK(dataset_open(&ds, p, NULL));
    EXPECT_STR(dataset_split_source(ds), "fold column, fold 1 evaluates");
    EXPECT_EQ_INT(dataset_item(ds, 0)->split, DATASET_SPLIT_EVAL);
    EXPECT_EQ_INT(dataset_item(ds, 1)->split, DATASET_SPLIT_TRAIN);
    EXPECT_EQ_INT(dataset_item(ds, 3)->fold, 3);
    dataset_destroy(ds);
    struct dataset_opts o = {.fold = 2};
    REQUIRE_OK(dataset_open(&ds, p, &o));
    EXPECT_EQ_INT(dataset_count(ds, DATASET_SPLIT_EVAL, -1, -1), 2);
    EXPECT_EQ_INT(dataset_item(ds, 2)->split, DATASET_SPLIT_EVAL);
    dataset_destroy(ds);
    o.fold = 4;
    EXPECT_EQ_INT(dataset_open(&ds, p, &o), STATUS_FORMAT);
    EXPECT(strstr(status_detail(), "folds.csv: no clip in fold 4 (folds go up to 3)") != NULL);
}

/* A CSV of n_rec recordings per class over 4 classes, each recording on 1-3 devices and
 * in 1-2 segments: the seeded split must keep every recording on one side. */
static void test_seeded_split_by_recording(void)
{
    char p[512];
    path_of(p, sizeof p, "many.csv");
    char *text = malloc(1 << 16);
    REQUIRE(text);
    int k = snprintf(text, 1 << 16, "filename,label,device,identifier\n");
    static const char *const labels[4] = {"bus", "metro", "park", "tram"};
    int n_items = 0;
    for (int c = 0; c < 4; c++)
        for (int r = 0; r < 10; r++)
            for (int s = 0; s < 1 + r % 2; s++)
                for (int d = 0; d < 1 + (r + c) % 3; d++) {
                    k += snprintf(text + k, (size_t)(1 << 16) - (size_t)k,
                                  "a/%s-%d-%d-%c.wav,%s,%c,city-%d\n", labels[c], r, s, 'a' + d,
                                  labels[c], 'a' + d, 100 * c + r);
                    n_items++;
                }
    REQUIRE(write_text(p, text));
    free(text);
    struct dataset *ds, *ds2, *ds3;
    struct dataset_opts o = {.split_seed = 7};
    REQUIRE_OK(dataset_open(&ds, p, &o));
    REQUIRE_OK(dataset_open(&ds2, p, &o));
    o.split_seed = 8;
    REQUIRE_OK(dataset_open(&ds3, p, &o));
    REQUIRE(dataset_n_items(ds) == n_items);
    int differs = 0;
    for (int i = 0; i < n_items; i++) {
        const struct dataset_item *a = dataset_item(ds, i);
        EXPECT(a->split == DATASET_SPLIT_TRAIN || a->split == DATASET_SPLIT_EVAL);
        EXPECT_EQ_INT(a->split, dataset_item(ds2, i)->split);   /* deterministic */
        differs += a->split != dataset_item(ds3, i)->split;
        for (int j = 0; j < i; j++)
            if (!strcmp(a->recording, dataset_item(ds, j)->recording))
                EXPECT_EQ_INT(a->split, dataset_item(ds, j)->split);   /* no leak */
    }
    EXPECT(differs > 0);
    /* 10 recordings per class, fraction 0.7: 7 train recordings each */
    for (int c = 0; c < 4; c++) {
        int n_train = 0;
        for (int r = 0; r < 10; r++) {
            char key[32];
            snprintf(key, sizeof key, "city-%d", 100 * c + r);
            for (int i = 0; i < n_items; i++)
                if (!strcmp(dataset_item(ds, i)->recording, key)) {
                    n_train += dataset_item(ds, i)->split == DATASET_SPLIT_TRAIN;
                    break;
                }
        }
        EXPECT_EQ_INT(n_train, 7);
    }
    EXPECT_STR(dataset_city_name(ds, 0), "city");
    dataset_destroy(ds);
    dataset_destroy(ds2);
    dataset_destroy(ds3);

    /* DCASE without setup files, and with seeded_split forced: recordings kept whole */
    char dir[512];
    path_of(dir, sizeof dir, "dcase_nosetup");
    REQUIRE(make_dcase(dir, DC_META_FULL));
    struct dataset_opts so = {.split_seed = 3, .train_fraction = 0.5};
    REQUIRE_OK(dataset_open(&ds, dir, &so));
    EXPECT(strstr(dataset_split_source(ds), "seed 3, train fraction 0.50") != NULL);
    for (int i = 0; i < dataset_n_items(ds); i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(dataset_item(ds, i)->recording, dataset_item(ds, j)->recording))
                EXPECT_EQ_INT(dataset_item(ds, i)->split, dataset_item(ds, j)->split);
    EXPECT(dataset_count(ds, DATASET_SPLIT_TRAIN, -1, -1) > 0);
    EXPECT(dataset_count(ds, DATASET_SPLIT_EVAL, -1, -1) > 0);
    dataset_destroy(ds);
    path_of(dir, sizeof dir, "dcase_full");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL));
    so.seeded_split = 1;
    REQUIRE_OK(dataset_open(&ds, dir, &so));
    EXPECT(strstr(dataset_split_source(ds), "seeded") != NULL);
    EXPECT_EQ_INT(dataset_count(ds, DATASET_SPLIT_NONE, -1, -1), 0);
    dataset_destroy(ds);
}

/* Every malformed listing: the status and the one-line message naming file and line. */
static void test_malformed_listings(void)
{
    static const struct {
        const char *text;
        int status;
        const char *message;   /* after "<test dir>/bad.csv" */
    } cases[] = {
        {"filename,device\na.wav,a\n", STATUS_FORMAT,
         ":1: missing column 'label' (header: filename, device)"},
        {"label\nx\n", STATUS_FORMAT, ":1: missing column 'filename' (header: label)"},
        {"filename,label,split\na.wav,x,train\nb.wav,x,trian\n", STATUS_FORMAT,
         ":3: unknown split 'trian'"},
        {"filename,label\na.wav,x\nb.wav,y\n./a.wav,x\n", STATUS_FORMAT,
         ":4: duplicate './a.wav' (first on line 2)"},
        {"filename,label\na.wav,x\nb.wav\n", STATUS_FORMAT, ":3: 1 field, the header has 2"},
        {"filename,label\na.wav,x,y,z\n", STATUS_FORMAT, ":2: 4 fields, the header has 2"},
        {"filename,label\n", STATUS_FORMAT, ": lists no clips"},
        {"", STATUS_FORMAT, ": empty file (no header)"},
        {"filename,label\n\"a.wav,x\n", STATUS_FORMAT, ":2: unterminated quote"},
        {"filename,label\n\"a\"b.wav,x\n", STATUS_FORMAT, ":2: text after a closing quote"},
        {"filename,label,fold\na.wav,x,one\n", STATUS_FORMAT, ":2: fold 'one' is not a positive integer"},
        {"filename,label,fold\na.wav,x,0\n", STATUS_FORMAT, ":2: fold '0' is not a positive integer"},
        {"filename,label\na.wav,\n", STATUS_FORMAT, ":2: empty label"},
        {"filename,label\n,x\n", STATUS_FORMAT, ":2: empty filename"},
        {"filename,label,Label\na,b,c\n", STATUS_FORMAT, ":1: column 'Label' appears twice"},
    };
    char p[512];
    path_of(p, sizeof p, "bad.csv");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        REQUIRE(write_text(p, cases[i].text));
        struct dataset *ds = (struct dataset *)1;
        status_clear();
        int st = dataset_open(&ds, p, NULL);
        char want[1024];
        snprintf(want, sizeof want, "%s%s", p, cases[i].message);
        EXPECT_MSG(st == cases[i].status, "case %zu: status %d, expected %d (%s)", i, st,
                   cases[i].status, status_detail());
        EXPECT_MSG(!strncmp(status_detail(), want, strlen(want)), "case %zu: \"%s\", expected \"%s...\"",
                   i, status_detail(), want);
        EXPECT_MSG(!strchr(status_detail(), '\n'), "case %zu: message has a newline", i);
        EXPECT(ds == NULL);
    }
    /* a NUL byte */
    FILE *f = fopen(p, "wb");
    REQUIRE(f);
    fwrite("filename,label\na\0b,x\n", 1, 21, f);
    fclose(f);
    struct dataset *ds;
    EXPECT_EQ_INT(dataset_open(&ds, p, NULL), STATUS_FORMAT);
    EXPECT(strstr(status_detail(), "not a text file (NUL byte at offset 16)") != NULL);
    /* missing files */
    path_of(p, sizeof p, "nope.csv");
    EXPECT_EQ_INT(dataset_open(&ds, p, NULL), STATUS_NOT_FOUND);
    path_of(p, sizeof p, "empty_dir");
    mkdirs(p);
    EXPECT_EQ_INT(dataset_open(&ds, p, NULL), STATUS_NOT_FOUND);
    EXPECT(strstr(status_detail(), "empty_dir/meta.csv: ") != NULL);
    struct dataset_opts o = {.train_fraction = 1.5};
    EXPECT_EQ_INT(dataset_open(&ds, p, &o), STATUS_INVALID);
}

/* Damaged DCASE setups, each on a fresh copy of the fixture. */
static void test_malformed_dcase_setup(void)
{
    static const struct {
        const char *file;      /* under evaluation_setup/, or meta.csv */
        const char *text;
        int status;
        const char *message;   /* after "<dir>/" */
    } cases[] = {
        {"evaluation_setup/fold1_train.csv",
         "filename\tscene_label\naudio/park-lyon-200-7-a.wav\tpark\naudio/zzz.wav\tpark\n",
         STATUS_FORMAT, "evaluation_setup/fold1_train.csv:3: 'audio/zzz.wav' is not in "},
        {"evaluation_setup/fold1_train.csv",
         "filename\tscene_label\naudio/park-lyon-200-7-a.wav\tairport\n", STATUS_FORMAT,
         "evaluation_setup/fold1_train.csv:2: 'audio/park-lyon-200-7-a.wav' is labelled "
         "'airport' here, 'park' in "},
        {"evaluation_setup/fold1_train.csv",
         "filename\tscene_label\naudio/park-paris-201-7-a.wav\tpark\n", STATUS_FORMAT,
         "evaluation_setup/fold1_evaluate.csv:"},
        {"evaluation_setup/fold1_train.csv",
         "filename\tscene_label\naudio/park-lyon-200-7-a.wav\tpark\naudio/park-lyon-200-7-a.wav\tpark\n",
         STATUS_FORMAT, "evaluation_setup/fold1_train.csv:3: duplicate 'audio/park-lyon-200-7-a.wav'"},
        {"evaluation_setup/fold1_train.csv", "filename\tscene_label\n", STATUS_FORMAT,
         "evaluation_setup/fold1_train.csv: lists no clips"},
        {"evaluation_setup/fold1_train.csv", "filename\naudio/park-lyon-200-7-a.wav\n",
         STATUS_FORMAT, "evaluation_setup/fold1_train.csv:1: missing column 'scene_label'"},
        {"evaluation_setup/fold1_test.csv",
         "filename\naudio/park-lyon-200-7-a.wav\n", STATUS_FORMAT,
         "evaluation_setup/fold1_test.csv:2: 'audio/park-lyon-200-7-a.wav' is also in "},
        {"evaluation_setup/fold1_test.csv",
         "filename\naudio/park-paris-201-7-a.wav\naudio/park-paris-201-7-a.wav\n", STATUS_FORMAT,
         "evaluation_setup/fold1_test.csv:3: duplicate 'audio/park-paris-201-7-a.wav'"},
        {"evaluation_setup/fold1_evaluate.csv", NULL, STATUS_NOT_FOUND,
         "evaluation_setup/fold1_evaluate.csv: "},
        {"meta.csv", "filename\tscene_label\taudio/x.wav\n", STATUS_FORMAT,
         "meta.csv: lists no clips"},
        {"meta.csv", "filename\tidentifier\naudio/x.wav\tlyon-1\n", STATUS_FORMAT,
         "meta.csv:1: missing column 'scene_label'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[512], p[700];
        path_of(dir, sizeof dir, "dcase_bad%zu", i);
        REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL));
        snprintf(p, sizeof p, "%s/%s", dir, cases[i].file);
        if (cases[i].text) REQUIRE(write_text(p, cases[i].text));
        else unlink(p);
        struct dataset *ds;
        int st = dataset_open(&ds, dir, NULL);
        char want[1024];
        snprintf(want, sizeof want, "%s/%s", dir, cases[i].message);
        EXPECT_MSG(st == cases[i].status, "case %zu: status %d, expected %d (%s)", i, st,
                   cases[i].status, status_detail());
        EXPECT_MSG(!strncmp(status_detail(), want, strlen(want)),
                   "case %zu: \"%s\", expected \"%s...\"", i, status_detail(), want);
        EXPECT_MSG(!strchr(status_detail(), '\n'), "case %zu: message has a newline", i);
    }
    /* the DCASE 2020 test list (the evaluate files again) is fine */
    char dir[512];
    path_of(dir, sizeof dir, "dcase_testlist");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL | DC_TEST_LIST));
    struct dataset *ds;
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    dataset_destroy(ds);
}

static void test_split_names(void)
{
    enum dataset_split s;
    REQUIRE_OK(dataset_split_parse("Validation", &s));
    EXPECT_EQ_INT(s, DATASET_SPLIT_EVAL);
    REQUIRE_OK(dataset_split_parse("test", &s));
    EXPECT_EQ_INT(s, DATASET_SPLIT_TEST);
    EXPECT_EQ_INT(dataset_split_parse("dev", &s), STATUS_INVALID);
    EXPECT_STR(dataset_split_name(DATASET_SPLIT_EVAL), "evaluate");
    EXPECT_STR(dataset_split_name(DATASET_SPLIT_NONE), "unused");
    EXPECT_STR(dataset_split_name(DATASET_SPLIT_ANY), "any");
}

/* ---- features ------------------------------------------------------------------------ */

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
    REQUIRE_OK(features_load(&f, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL, NULL));
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
    int st1 = features_load(&g1, ds, DATASET_SPLIT_ANY, fe, &o, NULL, NULL);
    threads_set(2);
    REQUIRE_OK(st1);
    REQUIRE_OK(features_load(&g2, ds, DATASET_SPLIT_ANY, fe, &o, NULL, NULL));
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
        REQUIRE_OK(features_load(&f, ds, DATASET_SPLIT_ANY, fe, &o, NULL, NULL));
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
    REQUIRE_OK(features_load(&f, ds, DATASET_SPLIT_ANY, fe, &o, NULL, NULL));
    EXPECT_EQ_INT(f->n_frames, 1 + 1024 / 128);
    features_destroy(f);
    o.n_samples = 100;   /* below n_fft / 2 + 1 */
    EXPECT_EQ_INT(features_load(&f, ds, DATASET_SPLIT_ANY, fe, &o, NULL, NULL), STATUS_INVALID);
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
    REQUIRE_OK(features_load(&f, ds, DATASET_SPLIT_ANY, fe, &o, NULL, NULL));
    REQUIRE(f->n == 3);
    for (long t = 0; t < CLIP; t++) m[t] = (st.x[t] + st.x[CLIP + t]) / 2.0f;
    REQUIRE(direct_features(fe, m, CLIP, y));
    EXPECT_TENSOR_NEAR(features_clip_data(f, 0), y, per, 0.0, 0.0);
    features_destroy(f);

    /* in_ch 2: stereo kept, mono duplicated, 3 channels -> the first two */
    o.in_ch = 2;
    REQUIRE_OK(features_load(&f, ds, DATASET_SPLIT_ANY, fe, &o, NULL, NULL));
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
    int rc = features_load(&f, ds, DATASET_SPLIT_ANY, fe, &o, NULL, NULL);
    capture_stop();
    REQUIRE_OK(rc);
    EXPECT_EQ_INT(f->n, 2);
    REQUIRE(f->n_skipped == 1);
    EXPECT_EQ_INT(f->skipped[0], 0);
    EXPECT(strstr(f->skipped_reason[0], "stereo.wav: 2 channels cannot feed a 3-channel model") != NULL);
    EXPECT(strstr(captured, "stereo.wav: 2 channels") != NULL);
    features_destroy(f);
    o.in_ch = 65;
    EXPECT_EQ_INT(features_load(&f, ds, DATASET_SPLIT_ANY, fe, &o, NULL, NULL), STATUS_INVALID);
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
    int rc = features_load(&f, ds, DATASET_SPLIT_ANY, fe, &o, NULL, NULL);
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
    REQUIRE_OK(features_load_items(&g, ds, 3, good, fe, &o, NULL, NULL));
    EXPECT(!memcmp(f->x, g->x, sizeof(float) * (size_t)(3L * 16 * f->n_frames)));
    features_destroy(g);
    features_destroy(f);

    /* nothing loadable: an error naming the first reason */
    int bad[2] = {1, 3};
    capture_start();
    rc = features_load_items(&f, ds, 2, bad, fe, &o, NULL, NULL);
    capture_stop();
    EXPECT_EQ_INT(rc, STATUS_FORMAT);
    EXPECT(strstr(status_detail(), "none of the 2 clips could be loaded (first: ") != NULL);
    EXPECT(f == NULL);
    frontend_destroy(fe);
    dataset_destroy(ds);
}

static int cancel_after_first(void *user, long done, long total)
{
    int *calls = user;
    (*calls)++;
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
    REQUIRE_OK(features_load(&f1, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL, NULL));
    EXPECT_EQ_INT(f1->n_computed, 9);
    EXPECT_EQ_INT(f1->n_cached, 0);
    size_t bytes = sizeof(float) * (size_t)f1->n * 16 * (size_t)f1->n_frames;

    /* second run: everything from the cache, the same bits */
    REQUIRE_OK(features_load(&f2, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL, NULL));
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
    REQUIRE_OK(features_load(&f3, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL, NULL));
    EXPECT_EQ_INT(f3->n_cache_invalid, 3);
    EXPECT_EQ_INT(f3->n_computed, 3);
    EXPECT_EQ_INT(f3->n_cached, 6);
    EXPECT(!memcmp(f1->x, f3->x, bytes));
    features_destroy(f3);
    /* ... and rewritten */
    REQUIRE_OK(features_load(&f4, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL, NULL));
    EXPECT_EQ_INT(f4->n_cached, 9);
    EXPECT(!memcmp(f1->x, f4->x, bytes));
    features_destroy(f4);

    /* new audio content -> a new key; another front end or length -> new keys */
    const struct dataset_item *it = dataset_item(ds, f1->items[0]);
    REQUIRE(write_clip(it->path, 1, CLIP, SR, 1234.0, 99));
    REQUIRE_OK(features_load(&f4, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL, NULL));
    EXPECT_EQ_INT(f4->n_computed, 1);
    EXPECT_EQ_INT(f4->n_cache_invalid, 0);
    EXPECT(memcmp(f1->x, f4->x, bytes) != 0);
    features_destroy(f4);
    struct features_opts o2 = o;
    o2.pad = FEATURES_PAD_ZERO;
    REQUIRE_OK(features_load(&f4, ds, DATASET_SPLIT_TRAIN, fe, &o2, NULL, NULL));
    EXPECT_EQ_INT(f4->n_computed, 9);
    features_destroy(f4);
    struct frontend_params p = *frontend_get_params(fe);
    p.n_mels = 12;
    struct frontend *fe2;
    REQUIRE_OK(frontend_create(&fe2, &p));
    REQUIRE_OK(features_load(&f4, ds, DATASET_SPLIT_TRAIN, fe2, &o, NULL, NULL));
    EXPECT_EQ_INT(f4->n_computed, 9);
    EXPECT_EQ_INT(f4->n_mels, 12);
    features_destroy(f4);
    frontend_destroy(fe2);

    /* cancellation: the callback says stop */
    int calls = 0;
    struct features_opts o3 = {.cache_dir = ""};
    threads_set(1);   /* chunks of 4 clips: the callback runs before the end */
    int rc = features_load(&f4, ds, DATASET_SPLIT_ANY, fe, &o3, cancel_after_first, &calls);
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
    rc = features_load(&f4, ds, DATASET_SPLIT_EVAL, fe, &o4, NULL, NULL);
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
    REQUIRE_OK(features_load(&tr, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL, NULL));
    REQUIRE_OK(features_load(&ev, ds, DATASET_SPLIT_EVAL, fe, &o, NULL, NULL));
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
    REQUIRE_OK(synth_write(&sp, dir, NULL, NULL));
    struct dataset *ds;
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    EXPECT_EQ_INT(dataset_n_items(ds), synth_clip_count(&sp));
    EXPECT_STR(dataset_split_source(ds), "evaluation_setup fold 1");
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
    REQUIRE_OK(features_load(&f, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL, NULL));
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

/* ---- batches ------------------------------------------------------------------------- */

/* Hand-made features: n clips of (C, F, T), clip i's values 1 + i + small distinct offsets
 * (never 0), label i % m. */
static struct features *fake_features(int n, int c, int fb, int t, int m)
{
    struct features *f = mem_calloc(1, sizeof *f);
    if (!f) return NULL;
    f->n = n;
    f->n_channels = c;
    f->n_mels = fb;
    f->n_frames = t;
    f->n_classes = m;
    long clip = (long)c * fb * t;
    f->x = mem_alloc(sizeof(float) * (size_t)(n * clip));
    f->labels = mem_alloc(sizeof(int) * (size_t)n);
    f->items = mem_alloc(sizeof(int) * (size_t)n);
    f->mean = mem_calloc((size_t)fb, sizeof(float));
    f->std = mem_calloc((size_t)fb, sizeof(float));
    if (!f->x || !f->labels || !f->items || !f->mean || !f->std) {
        features_destroy(f);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        f->labels[i] = i % m;
        f->items[i] = i;
        for (long j = 0; j < clip; j++) f->x[i * clip + j] = 1.0f + (float)i + 0.001f * (float)(j % 997);
    }
    return f;
}

static void test_batches_cover_epoch(void)
{
    struct features *f = fake_features(23, 1, 4, 6, 3);
    REQUIRE(f);
    struct batch_opts o;
    batch_opts_default(&o);
    o.batch_size = 5;
    o.seed = 11;
    struct batch_iter *it, *it2;
    REQUIRE_OK(batch_iter_create(&it, f, &o));
    REQUIRE_OK(batch_iter_create(&it2, f, &o));
    EXPECT_EQ_INT(batch_iter_n_batches(it), 5);
    long clip = 24;
    int order[2][23];
    for (int e = 0; e < 2; e++) {
        batch_iter_epoch(it, e);
        int seen[23] = {0}, k = 0;
        for (int b = 0; b < batch_iter_n_batches(it); b++) {
            const struct batch *bt = batch_iter_get(it, b);
            EXPECT_EQ_INT(bt->n, b < 4 ? 5 : 3);
            EXPECT_EQ_INT(bt->index, b);
            EXPECT(bt->targets == NULL);
            for (int i = 0; i < bt->n; i++) {
                int r = bt->rows[i];
                REQUIRE(r >= 0 && r < 23);
                seen[r]++;
                order[e][k++] = r;
                EXPECT_EQ_INT(bt->labels[i], f->labels[r]);
                EXPECT(!memcmp(bt->x + i * clip, f->x + r * clip, sizeof(float) * (size_t)clip));
                EXPECT_EQ_INT(bt->partner[i], r);
                EXPECT_NEAR(bt->lambda[i], 1.0, 0.0);
            }
        }
        for (int r = 0; r < 23; r++) EXPECT_EQ_INT(seen[r], 1);   /* every clip exactly once */
    }
    EXPECT(memcmp(order[0], order[1], sizeof order[0]) != 0);   /* epochs differ */
    /* same seed, same order, batches drawn in any order */
    batch_iter_epoch(it2, 1);
    for (int b = batch_iter_n_batches(it2) - 1; b >= 0; b--) {
        const struct batch *bt = batch_iter_get(it2, b);
        for (int i = 0; i < bt->n; i++) EXPECT_EQ_INT(bt->rows[i], order[1][b * 5 + i]);
    }
    batch_iter_destroy(it2);
    batch_iter_destroy(it);
    batch_iter_destroy(NULL);

    /* drop_last; no shuffle */
    o.drop_last = 1;
    o.shuffle = 0;
    REQUIRE_OK(batch_iter_create(&it, f, &o));
    EXPECT_EQ_INT(batch_iter_n_batches(it), 4);
    const struct batch *bt = batch_iter_get(it, 3);
    EXPECT_EQ_INT(bt->n, 5);
    EXPECT_EQ_INT(bt->rows[0], 15);
    batch_iter_destroy(it);
    /* a batch larger than the data */
    o.batch_size = 40;
    o.drop_last = 0;
    REQUIRE_OK(batch_iter_create(&it, f, &o));
    EXPECT_EQ_INT(batch_iter_n_batches(it), 1);
    EXPECT_EQ_INT(batch_iter_get(it, 0)->n, 23);
    batch_iter_destroy(it);
    /* bad options */
    o.batch_size = 0;
    EXPECT_EQ_INT(batch_iter_create(&it, f, &o), STATUS_INVALID);
    batch_opts_default(&o);
    o.mixup = BATCH_MIXUP_SAMPLE;
    EXPECT_EQ_INT(batch_iter_create(&it, f, &o), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "mixup alpha") != NULL);
    EXPECT_EQ_INT(batch_opts_preset(&o, "cpjku"), STATUS_OK);
    EXPECT_EQ_INT(o.batch_size, 10);
    EXPECT_EQ_INT(o.roll_frames, 50);
    EXPECT_EQ_INT(batch_opts_preset(&o, "sp4asc"), STATUS_OK);
    EXPECT_EQ_INT(o.time_width, 128);
    EXPECT_EQ_INT(batch_opts_preset(&o, "bogus"), STATUS_NOT_FOUND);
    features_destroy(f);
}

static void test_batches_thread_independent(void)
{
    struct features *f = fake_features(37, 2, 8, 20, 4);
    REQUIRE(f);
    struct batch_opts o;
    batch_opts_default(&o);
    o.batch_size = 16;
    o.seed = 5;
    o.roll_frames = 7;
    o.gain_db = 3;
    o.mixup = BATCH_MIXUP_SAMPLE;
    o.mixup_alpha = 0.3;
    o.time_stripes = 2;
    o.time_width = 5;
    o.freq_stripes = 2;
    o.freq_width = 3;
    long clip = 2 * 8 * 20;
    float *x1 = malloc(sizeof(float) * (size_t)(37 * clip));
    REQUIRE(x1);
    for (int pass = 0; pass < 2; pass++) {
        threads_set(pass ? 1 : 2);
        struct batch_iter *it;
        int rc = batch_iter_create(&it, f, &o);
        if (rc) threads_set(2);
        REQUIRE_OK(rc);
        batch_iter_epoch(it, 3);
        long off = 0;
        for (int b = 0; b < batch_iter_n_batches(it); b++) {
            const struct batch *bt = batch_iter_get(it, b);
            if (pass == 0) memcpy(x1 + off, bt->x, sizeof(float) * (size_t)(bt->n * clip));
            else EXPECT_MSG(!memcmp(x1 + off, bt->x, sizeof(float) * (size_t)(bt->n * clip)),
                            "batch %d differs between 1 and 2 threads", b);
            off += bt->n * clip;
        }
        batch_iter_destroy(it);
    }
    threads_set(2);
    free(x1);
    features_destroy(f);
}

static void test_spec_augment(void)
{
    enum { C = 2, F = 6, T = 12 };
    float x[C * F * T];
    struct batch_opts o;
    batch_opts_default(&o);
    o.time_stripes = 1;
    o.time_width = 5;
    struct rng r;
    rng_seed(&r, 1);
    int widths[5] = {0};
    for (int trial = 0; trial < 400; trial++) {
        for (int i = 0; i < C * F * T; i++) x[i] = 1.0f;
        batch_spec_augment(x, C, F, T, &o, &r);
        /* zeros are whole columns (every channel and bin), one run of width 0..4, never
         * reaching the last frame (torch.randint's exclusive high) */
        int first = -1, n = 0;
        for (int t = 0; t < T; t++) {
            int z = x[t] == 0.0f;
            for (int i = 0; i < C * F; i++) EXPECT_EQ_INT(x[i * T + t] == 0.0f, z);
            if (z) {
                if (first < 0) first = t;
                EXPECT_EQ_INT(t, first + n);
                n++;
            }
        }
        EXPECT(n <= 4);
        EXPECT(n == 0 || first + n <= T - 1);
        if (n <= 4) widths[n]++;
    }
    for (int w = 0; w < 5; w++) EXPECT_MSG(widths[w] > 40, "width %d drawn %d times", w, widths[w]);

    /* frequency stripes: whole rows of every channel */
    o.time_stripes = 0;
    o.freq_stripes = 2;
    o.freq_width = 3;
    for (int trial = 0; trial < 200; trial++) {
        for (int i = 0; i < C * F * T; i++) x[i] = 1.0f;
        batch_spec_augment(x, C, F, T, &o, &r);
        int n = 0;
        for (int fb = 0; fb < F; fb++) {
            int z = x[fb * T] == 0.0f;
            for (int c = 0; c < C; c++)
                for (int t = 0; t < T; t++) EXPECT_EQ_INT(x[(c * F + fb) * T + t] == 0.0f, z);
            n += z;
        }
        EXPECT(n <= 4);
    }
    /* a width above the length is clamped; a fill value other than 0 */
    o.freq_stripes = 0;
    o.time_stripes = 3;
    o.time_width = 100;
    o.specaug_value = -7.0f;
    for (int trial = 0; trial < 50; trial++) {
        for (int i = 0; i < C * F * T; i++) x[i] = 1.0f;
        batch_spec_augment(x, C, F, T, &o, &r);
        for (int i = 0; i < C * F * T; i++) EXPECT(x[i] == 1.0f || x[i] == -7.0f);
        for (int i = 0; i < C * F; i++) EXPECT(x[i * T + T - 1] == 1.0f);
    }

    /* through the iterator: time, then frequency, on every example */
    struct features *f = fake_features(8, 1, 6, 12, 2);
    REQUIRE(f);
    batch_opts_default(&o);
    o.batch_size = 8;
    o.time_stripes = 2;
    o.time_width = 4;
    o.freq_stripes = 1;
    o.freq_width = 3;
    struct batch_iter *it;
    REQUIRE_OK(batch_iter_create(&it, f, &o));
    const struct batch *bt = batch_iter_get(it, 0);
    int any = 0;
    for (int i = 0; i < 8; i++) {
        const float *y = bt->x + i * 72, *src = f->x + bt->rows[i] * 72;
        int zc = 0;
        for (int j = 0; j < 72; j++) {
            EXPECT(y[j] == 0.0f || y[j] == src[j]);
            zc += y[j] == 0.0f;
        }
        EXPECT(zc <= 2 * 3 * 6 + 2 * 12);
        any += zc > 0;
    }
    EXPECT(any > 0);
    batch_iter_destroy(it);
    features_destroy(f);
}

static void test_mixup(void)
{
    struct features *f = fake_features(40, 1, 3, 5, 4);
    REQUIRE(f);
    for (int mode = 0; mode < 2; mode++) {
        struct batch_opts o;
        batch_opts_default(&o);
        o.batch_size = 10;
        o.seed = 9;
        o.mixup = mode ? BATCH_MIXUP_BATCH : BATCH_MIXUP_SAMPLE;
        o.mixup_alpha = mode ? 0.2 : 0.3;
        struct batch_iter *it;
        REQUIRE_OK(batch_iter_create(&it, f, &o));
        int below_half = 0, mixed = 0;
        for (int e = 0; e < 5; e++) {
            batch_iter_epoch(it, e);
            for (int b = 0; b < batch_iter_n_batches(it); b++) {
                const struct batch *bt = batch_iter_get(it, b);
                REQUIRE(bt->targets);
                for (int i = 0; i < bt->n; i++) {
                    float l = bt->lambda[i];
                    EXPECT(l >= 0.0f && l <= 1.0f);
                    if (mode == 0) EXPECT(l >= 0.5f);
                    else EXPECT(l == bt->lambda[0]);   /* one lambda per batch */
                    below_half += l < 0.5f;
                    const float *t = bt->targets + i * 4;
                    double s = 0;
                    for (int k = 0; k < 4; k++) s += t[k];
                    EXPECT_NEAR(s, 1.0, 1e-6);
                    int r = bt->rows[i], p = bt->partner[i];
                    EXPECT_EQ_INT(bt->labels[i], f->labels[r]);
                    if (f->labels[r] == f->labels[p]) EXPECT_NEAR(t[f->labels[r]], 1.0, 1e-6);
                    else {
                        EXPECT_NEAR(t[f->labels[r]], l, 1e-6);
                        EXPECT_NEAR(t[f->labels[p]], 1 - l, 1e-6);
                    }
                    mixed += p != r;
                    /* the partner is in this batch */
                    int in = 0;
                    for (int j = 0; j < bt->n; j++) in |= bt->rows[j] == p;
                    EXPECT(in);
                    for (int j = 0; j < 15; j++)
                        EXPECT_NEAR(bt->x[i * 15 + j], l * f->x[r * 15 + j] + (1 - l) * f->x[p * 15 + j],
                                    1e-4);
                }
            }
        }
        EXPECT(mixed > 0);
        if (mode == 1) EXPECT(below_half > 0);   /* SP4ASC: no max(l, 1 - l) */
        batch_iter_destroy(it);
    }
    features_destroy(f);
}

static void test_time_roll(void)
{
    enum { C = 2, F = 3, T = 10 };
    float x[C * F * T], y[C * F * T];
    for (int i = 0; i < C * F * T; i++) x[i] = (float)i;
    for (int s = -23; s <= 23; s++) {
        memcpy(y, x, sizeof x);
        batch_roll(y, C, F, T, s);
        for (int r = 0; r < C * F; r++)
            for (int t = 0; t < T; t++)
                EXPECT_EQ_INT((int)y[r * T + t], (int)x[r * T + (((t - s) % T) + T) % T]);
    }
    /* through the iterator: each example is its clip rolled by one shift in [-R, R] */
    struct features *f = fake_features(30, 2, 3, 16, 3);
    REQUIRE(f);
    for (int i = 0; i < 30 * 96; i++) f->x[i] = (float)i;   /* every value distinct */
    struct batch_opts o;
    batch_opts_default(&o);
    o.batch_size = 30;
    o.roll_frames = 4;
    struct batch_iter *it;
    REQUIRE_OK(batch_iter_create(&it, f, &o));
    const struct batch *bt = batch_iter_get(it, 0);
    int hist[9] = {0};
    for (int i = 0; i < 30; i++) {
        const float *src = f->x + bt->rows[i] * 96, *dst = bt->x + i * 96;
        int s = (int)(dst[0] - src[0]);   /* dst[0] = src[(0 - s) mod T] */
        int shift = s <= 0 ? -s : 16 - s;
        if (shift > 8) shift -= 16;
        REQUIRE(shift >= -4 && shift <= 4);
        hist[shift + 4]++;
        float tmp[96];
        memcpy(tmp, src, sizeof tmp);
        batch_roll(tmp, 2, 3, 16, shift);
        EXPECT(!memcmp(tmp, dst, sizeof tmp));
    }
    int kinds = 0;
    for (int k = 0; k < 9; k++) kinds += hist[k] > 0;
    EXPECT(kinds >= 4);
    batch_iter_destroy(it);
    features_destroy(f);
}

static void test_gain(void)
{
    struct features *f = fake_features(20, 2, 4, 5, 2);
    REQUIRE(f);
    struct batch_opts o;
    batch_opts_default(&o);
    o.batch_size = 20;
    o.gain_db = 6;
    struct batch_iter *it;
    REQUIRE_OK(batch_iter_create(&it, f, &o));
    const struct batch *bt = batch_iter_get(it, 0);
    double lo = 1e9, hi = -1e9;
    for (int i = 0; i < 20; i++) {
        const float *src = f->x + bt->rows[i] * 40, *dst = bt->x + i * 40;
        double g = dst[0] - src[0];
        EXPECT(g >= -6.0 && g <= 6.0);
        for (int j = 0; j < 40; j++) EXPECT_NEAR(dst[j] - src[j], g, 1e-5);
        lo = g < lo ? g : lo;
        hi = g > hi ? g : hi;
    }
    EXPECT(lo < -1 && hi > 1);
    batch_iter_destroy(it);

    /* z-normalised features: bin k gets g / std[k] (std 0: g) */
    static const float mean[4] = {0, 0, 0, 0}, std[4] = {2.0f, 0.5f, 0.0f, 4.0f};
    features_znorm_apply(f, mean, std);
    REQUIRE_OK(batch_iter_create(&it, f, &o));
    bt = batch_iter_get(it, 0);
    for (int i = 0; i < 20; i++) {
        const float *src = f->x + bt->rows[i] * 40, *dst = bt->x + i * 40;
        double g = (dst[0] - src[0]) * 2.0;   /* bin 0 has std 2 */
        EXPECT(g >= -6.0 - 1e-4 && g <= 6.0 + 1e-4);
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 4; k++) {
                double want = std[k] > 0 ? g / std[k] : g;
                for (int t = 0; t < 5; t++) {
                    int j = (c * 4 + k) * 5 + t;
                    EXPECT_NEAR(dst[j] - src[j], want, 1e-4);
                }
            }
    }
    batch_iter_destroy(it);
    features_destroy(f);
}

const struct test tests_data[] = {
    TEST(test_xxh64_vectors),
    TEST(test_dcase_layout),
    TEST(test_dcase_names_from_filenames),
    TEST(test_natural_device_order),
    TEST(test_csv_format),
    TEST(test_fold_column),
    TEST(test_seeded_split_by_recording),
    TEST(test_malformed_listings),
    TEST(test_malformed_dcase_setup),
    TEST(test_split_names),
    TEST(test_features_match_frontend),
    TEST(test_features_resample_and_length),
    TEST(test_features_channels),
    TEST(test_features_skip_bad_files),
    TEST(test_features_cache),
    TEST(test_features_znorm),
    TEST(test_synth_data_set),
    TEST(test_batches_cover_epoch),
    TEST(test_batches_thread_independent),
    TEST(test_spec_augment),
    TEST(test_mixup),
    TEST(test_time_roll),
    TEST(test_gain),
    {0},
};
