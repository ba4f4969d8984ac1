/* test_dataset.c: data set listings (DCASE layout and CSV), their validation, names and
 * splits: setup files, split and fold columns, the seeded split by recording, empty splits.
 * Fixtures from data_util.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basin/core/status.h"
#include "basin/data/dataset.h"
#include "util.h"
#include "test.h"

static void test_dcase_layout(void)
{
    char dir[512], p[600];
    path_of(dir, sizeof dir, "dcase_full");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL | DC_TEST_LIST));
    struct dataset *ds;
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    EXPECT_EQ_INT(dataset_format(ds), DATASET_FORMAT_DCASE);
    EXPECT_EQ_INT(dataset_n_items(ds), 16);
    EXPECT_STR(dataset_split_source(ds), "evaluation_setup/fold1_*.csv");
    EXPECT(!dataset_split_seeded(ds));
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
    EXPECT_STR(dataset_split_source(ds), "by recording, seed 0, 30 % evaluate (no split or fold column)");
    EXPECT(dataset_split_seeded(ds));
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
    EXPECT_STR(dataset_split_source(ds), "fold column: fold 1 is evaluate, the others train");
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
    EXPECT_STR(dataset_split_source(ds),
               "by recording, seed 3, 50 % evaluate (no evaluation_setup/fold1_train.csv)");
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
    EXPECT_STR(dataset_split_source(ds), "by recording, seed 3, 50 % evaluate (evaluation_setup ignored)");
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


/* An empty split opens (a warning for `data`), and dataset_require_split names the split,
 * the listing and the rule; asking for a fold that the listing cannot give is refused. */
static void test_empty_splits_and_split_options(void)
{
    char p[512];
    struct dataset *ds;
    /* UrbanSound8K's metadata for one fold: every row in fold 1 -> evaluate only */
    path_of(p, sizeof p, "onefold.csv");
    REQUIRE(write_text(p, "filename,label,fold\na.wav,x,1\nb.wav,y,1\nc.wav,y,1\n"));
    REQUIRE_OK(dataset_open(&ds, p, NULL));
    EXPECT_EQ_INT(dataset_count(ds, DATASET_SPLIT_TRAIN, -1, -1), 0);
    EXPECT_EQ_INT(dataset_require_split(ds, DATASET_SPLIT_EVAL), 0);
    EXPECT_EQ_INT(dataset_require_split(ds, DATASET_SPLIT_TRAIN), STATUS_INVALID);
    char want[700];
    snprintf(want, sizeof want, "%s: the train split is empty (split: fold column: fold 1 is "
             "evaluate, the others train)", p);
    EXPECT_STR(status_detail(), want);
    EXPECT(!strchr(status_detail(), '\n'));
    dataset_destroy(ds);
    /* split by recording instead: both splits filled, recordings kept whole */
    struct dataset_opts o = {.seeded_split = 1, .split_seed = 3, .train_fraction = 0.5};
    REQUIRE_OK(dataset_open(&ds, p, &o));
    EXPECT_STR(dataset_split_source(ds), "by recording, seed 3, 50 % evaluate (fold column ignored)");
    EXPECT_EQ_INT(dataset_require_split(ds, DATASET_SPLIT_TRAIN), 0);
    EXPECT_EQ_INT(dataset_require_split(ds, DATASET_SPLIT_EVAL), 0);
    dataset_destroy(ds);

    /* one recording per class, split by recording: train only */
    path_of(p, sizeof p, "tiny.csv");
    REQUIRE(write_text(p, "filename,label\na.wav,x\nb.wav,y\n"));
    REQUIRE_OK(dataset_open(&ds, p, NULL));
    EXPECT_EQ_INT(dataset_count(ds, DATASET_SPLIT_TRAIN, -1, -1), 2);
    EXPECT_EQ_INT(dataset_require_split(ds, DATASET_SPLIT_EVAL), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "tiny.csv: the evaluate split is empty (split: by recording, "
                                   "seed 0, 30 % evaluate (no split or fold column))") != NULL);
    dataset_destroy(ds);
    o = (struct dataset_opts){.fold = 2};
    EXPECT_EQ_INT(dataset_open(&ds, p, &o), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "fold 2 asked for, but there is no fold column") != NULL);
    path_of(p, sizeof p, "splitcol.csv");
    REQUIRE(write_text(p, "filename,label,split\na.wav,x,train\nb.wav,y,test\n"));
    EXPECT_EQ_INT(dataset_open(&ds, p, &o), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "the split column decides") != NULL);

    /* a DCASE setup file with a header alone: that split is empty, not an error */
    char dir[512], f[700];
    path_of(dir, sizeof dir, "dcase_noeval");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL));
    snprintf(f, sizeof f, "%s/evaluation_setup/fold1_evaluate.csv", dir);
    REQUIRE(write_text(f, "filename\tscene_label\n"));
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    EXPECT_EQ_INT(dataset_count(ds, DATASET_SPLIT_EVAL, -1, -1), 0);
    EXPECT_EQ_INT(dataset_require_split(ds, DATASET_SPLIT_EVAL), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "the evaluate split is empty (split: evaluation_setup/fold1_*.csv)"));
    dataset_destroy(ds);
}

const struct test tests_dataset[] = {
    TEST(test_dcase_layout),
    TEST(test_dcase_names_from_filenames),
    TEST(test_natural_device_order),
    TEST(test_csv_format),
    TEST(test_fold_column),
    TEST(test_seeded_split_by_recording),
    TEST(test_malformed_listings),
    TEST(test_malformed_dcase_setup),
    TEST(test_split_names),
    TEST(test_empty_splits_and_split_options),
    {0},
};
