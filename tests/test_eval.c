/* test_eval.c: evaluation (train/eval.h): hand-worked figures on tiny probability tables
 * (micro vs macro on unbalanced classes, log-loss clipping, ties, seen / unseen devices),
 * eval_run vs eval_from_probs vs eval_dataset, the CSV files, and the `eval` command. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/loss.h"
#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/data/dataset.h"
#include "basin/data/features.h"
#include "basin/dsp/frontend.h"
#include "basin/model/model.h"
#include "basin/model/predict.h"
#include "basin/train/eval.h"
#include "basin/train/pipeline.h"
#include "test.h"
#include "util.h"

/* The fixture front end of util.c (8 kHz, n_fft 256, hop 128, 16 mels) as parameters. */
static void fixture_params(struct frontend_params *p)
{
    struct frontend *fe;
    CHECK(make_fe(&fe));
    *p = *frontend_get_params(fe);
    snprintf(p->preset, sizeof p->preset, "fixture");
    frontend_destroy(fe);
}

/* A tiny sepnet (8, 16, 16, 16 channels) for the fixture front end, with its front end set. */
static struct model *tiny_sepnet(int classes, uint64_t seed)
{
    struct model_config c;
    model_config_default(&c, ARCH_SEPNET);
    c.mels = 16, c.classes = classes, c.n_channels = 4;
    c.channels[0] = 8, c.channels[1] = c.channels[2] = c.channels[3] = 16;
    struct model *m;
    if (model_create(&m, &c, seed)) return NULL;
    struct frontend_params p;
    fixture_params(&p);
    if (pipeline_set_model_frontend(m, &p)) {
        model_destroy(m);
        return NULL;
    }
    return m;
}

/* -ln(p) as the metric computes it. */
static double nll(double p)
{
    return -log(p);
}

/* Five clips, three classes, class 0 four times, class 1 once, class 2 never: micro counts
 * clips, macro averages the two classes that have clips. */
static void test_eval_hand_worked(void)
{
    const float probs[5 * 3] = {
        0.7f, 0.2f, 0.1f,   /* y 0, right */
        0.5f, 0.4f, 0.1f,   /* y 0, right */
        0.2f, 0.3f, 0.5f,   /* y 0, predicted 2 */
        0.6f, 0.3f, 0.1f,   /* y 0, right */
        0.6f, 0.3f, 0.1f,   /* y 1, predicted 0 */
    };
    const int labels[5] = {0, 0, 0, 0, 1};
    struct eval_result *r;
    REQUIRE_OK(eval_from_probs(&r, 5, 3, probs, labels, NULL, NULL));
    EXPECT_EQ_INT(r->n, 5);
    EXPECT_EQ_INT(r->n_devices, 0);
    EXPECT_EQ_INT(r->all.n, 5);
    EXPECT_EQ_INT(r->all.correct, 3);
    EXPECT_NEAR(r->all.acc, 0.6, 1e-12);
    EXPECT_NEAR(r->acc_macro, (0.75 + 0.0) / 2, 1e-12);   /* class 2 has no clips: left out */
    EXPECT_NEAR(r->all.acc_macro, r->acc_macro, 0);
    EXPECT_EQ_INT(r->all.n_classes, 2);
    double l0 = (nll(0.7f) + nll(0.5f) + nll(0.2f) + nll(0.6f)) / 4, l1 = nll(0.3f);
    EXPECT_NEAR(r->all.logloss, (4 * l0 + l1) / 5, 1e-9);
    EXPECT_NEAR(r->logloss_macro, (l0 + l1) / 2, 1e-9);
    EXPECT_NEAR(r->per_class[0].acc, 0.75, 1e-12);
    EXPECT_NEAR(r->per_class[0].logloss, l0, 1e-9);
    EXPECT_NEAR(r->per_class[1].acc, 0, 0);
    EXPECT_NEAR(r->per_class[1].logloss, l1, 1e-9);
    EXPECT_EQ_INT(r->per_class[2].n, 0);
    EXPECT_NEAR(r->per_class[2].acc, 0, 0);
    const long want[9] = {3, 0, 1, 1, 0, 0, 0, 0, 0};
    for (int i = 0; i < 9; i++) EXPECT_EQ_INT(r->confusion[i], want[i]);
    EXPECT_EQ_INT(r->labels[4], 1);
    EXPECT_NEAR(r->probs[14], 0.1, 1e-7);
    EXPECT_EQ_INT(r->split, DATASET_SPLIT_ANY);
    EXPECT_EQ_INT(r->seen.n + r->unseen.n, 0);
    eval_result_destroy(r);
    eval_result_destroy(NULL);
}

/* Probabilities are clipped to [1e-15, 1 - 1e-15] (sklearn's log_loss): a certain mistake
 * costs -ln 1e-15 = 34.54, a certain hit about 1e-15; a NaN counts as the worst case; a tie
 * goes to the first class. */
static void test_eval_logloss_clipping_and_ties(void)
{
    const float probs[4 * 2] = {0.0f, 1.0f, 1.0f, 0.0f, 0.5f, 0.5f, NAN, 0.5f};
    const int labels[4] = {0, 0, 1, 0};
    struct eval_result *r;
    REQUIRE_OK(eval_from_probs(&r, 4, 2, probs, labels, NULL, NULL));
    EXPECT_NEAR(-log(1e-15), 34.538776394910684, 1e-12);
    const double worst = 34.538776394910684, best = -log(1 - 1e-15), half = log(2.0);
    EXPECT_NEAR(r->per_class[0].logloss, (worst + best + worst) / 3, 1e-9);
    EXPECT_NEAR(r->per_class[1].logloss, half, 1e-12);
    EXPECT(best > 0 && best < 2e-15);
    /* ties and a NaN row: argmax is the first maximum (class 0) */
    EXPECT_EQ_INT(r->confusion[1 * 2 + 0], 1);
    EXPECT_EQ_INT(r->per_class[0].correct, 2);
    EXPECT(isfinite(r->all.logloss));
    eval_result_destroy(r);
}

/* Devices: the fixture's train split has a, b, c (lyon), evaluate a and s1 (paris): s1 is
 * unseen. Per device and pooled, micro and macro, worked by hand. */
static void test_eval_seen_unseen(void)
{
    char dir[600];
    path_of(dir, sizeof dir, "eval-devices");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL));
    struct dataset *ds;
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    REQUIRE(dataset_n_devices(ds) == 4);
    const int a = dataset_device_index(ds, "a"), b = dataset_device_index(ds, "b");
    const int s1 = dataset_device_index(ds, "s1");
    REQUIRE(a >= 0 && b >= 0 && s1 >= 0);
    EXPECT(dataset_device_seen(ds, a) && dataset_device_seen(ds, b) && !dataset_device_seen(ds, s1));
    /* clip: device, class, p(true) (right when > 0.5 with two classes) */
    const int dev[6] = {a, a, b, s1, s1, s1};
    const int lab[6] = {0, 1, 1, 0, 0, 1};
    const float pt[6] = {0.9f, 0.2f, 0.6f, 0.4f, 0.8f, 0.1f};
    float probs[12];
    for (int i = 0; i < 6; i++) probs[2 * i + lab[i]] = pt[i], probs[2 * i + 1 - lab[i]] = 1 - pt[i];
    struct eval_result *r;
    REQUIRE_OK(eval_from_probs(&r, 6, 2, probs, lab, dev, ds));
    EXPECT_EQ_INT(r->n_devices, 4);
    EXPECT_EQ_INT(r->device_seen[s1], 0);
    EXPECT_EQ_INT(r->per_device[a].n, 2);
    EXPECT_NEAR(r->per_device[a].acc, 0.5, 1e-12);
    EXPECT_NEAR(r->per_device[a].acc_macro, 0.5, 1e-12);   /* class 0 right, class 1 wrong */
    EXPECT_NEAR(r->per_device[a].logloss, (nll(0.9f) + nll(0.2f)) / 2, 1e-9);
    EXPECT_EQ_INT(r->per_device[dataset_device_index(ds, "c")].n, 0);
    /* seen = a, b: 3 clips, 2 right; classes 0 (1/1) and 1 (1/2) */
    EXPECT_EQ_INT(r->seen.n, 3);
    EXPECT_NEAR(r->seen.acc, 2.0 / 3, 1e-12);
    EXPECT_NEAR(r->seen.acc_macro, (1.0 + 0.5) / 2, 1e-12);
    EXPECT_NEAR(r->seen.logloss_macro, (nll(0.9f) + (nll(0.2f) + nll(0.6f)) / 2) / 2, 1e-9);
    /* unseen = s1: 3 clips, 1 right; class 0 (1/2), class 1 (0/1) */
    EXPECT_EQ_INT(r->unseen.n, 3);
    EXPECT_NEAR(r->unseen.acc, 1.0 / 3, 1e-12);
    EXPECT_NEAR(r->unseen.acc_macro, (0.5 + 0.0) / 2, 1e-12);
    EXPECT_NEAR(r->unseen.logloss, (nll(0.4f) + nll(0.8f) + nll(0.1f)) / 3, 1e-9);
    EXPECT_NEAR(r->per_device[s1].logloss_macro, ((nll(0.4f) + nll(0.8f)) / 2 + nll(0.1f)) / 2, 1e-9);
    /* the whole: micro over 6 clips, macro over both classes */
    EXPECT_NEAR(r->all.acc, 3.0 / 6, 1e-12);
    EXPECT_NEAR(r->acc_macro, (2.0 / 3 + 1.0 / 3) / 2, 1e-12);
    eval_result_destroy(r);
    dataset_destroy(ds);
}

/* eval_run equals softmax(model_predict) through eval_from_probs; eval_dataset equals
 * features_prepare + eval_run, with and without the model's normalisation. */
static void test_eval_run_consistency(void)
{
    char dir[600];
    path_of(dir, sizeof dir, "eval-run");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL | DC_AUDIO));
    struct dataset *ds;
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    struct model *m = tiny_sepnet(dataset_n_classes(ds), 5);
    REQUIRE(m);
    struct frontend *fe;
    REQUIRE(make_fe(&fe));
    struct features_opts fo = {.in_ch = 1, .cache_dir = "", .pad = FEATURES_PAD_REPEAT};
    struct features *f;
    REQUIRE_OK(features_load(&f, ds, DATASET_SPLIT_ANY, fe, &fo, NULL));
    const int n = f->n, M = f->n_classes;
    struct eval_result *r, *q, *e;
    REQUIRE_OK(eval_run(&r, m, f, ds, 4, NULL));
    float *logits = malloc(sizeof(float) * (size_t)n * M);
    int *dev = malloc(sizeof(int) * (size_t)n);
    REQUIRE_OK(model_predict(m, n, 1, f->n_mels, f->n_frames, f->x, logits));
    softmax(n, M, logits, logits);
    for (int i = 0; i < n; i++) dev[i] = dataset_item(ds, f->items[i])->device;
    REQUIRE_OK(eval_from_probs(&q, n, M, logits, f->labels, dev, ds));
    EXPECT_EQ_INT(r->n, n);
    EXPECT_TENSOR_NEAR(r->probs, q->probs, (long)n * M, 1e-6, 1e-5);
    EXPECT_NEAR(r->all.logloss, q->all.logloss, 1e-5);
    EXPECT_NEAR(r->acc_macro, q->acc_macro, 1e-12);
    EXPECT_NEAR(r->unseen.logloss, q->unseen.logloss, 1e-5);
    for (int i = 0; i < M * M; i++) EXPECT_EQ_INT(r->confusion[i], q->confusion[i]);
    /* the whole sequence */
    struct frontend_params p;
    fixture_params(&p);
    struct eval_opts o = {.split = DATASET_SPLIT_ANY, .cache_dir = "", .batch = 3};
    REQUIRE_OK(eval_dataset(&e, m, ds, &o, NULL));
    EXPECT_EQ_INT(e->n, n);
    EXPECT_TENSOR_NEAR(e->probs, r->probs, (long)n * M, 1e-6, 1e-5);
    EXPECT_EQ_INT(e->split, DATASET_SPLIT_ANY);
    EXPECT_EQ_INT(e->n_samples, CLIP);
    EXPECT_EQ_INT(e->n_frames, f->n_frames);
    EXPECT_EQ_INT(e->n_computed, n);
    EXPECT_STR(e->preset, "fixture");
    EXPECT_EQ_INT(e->normalised, 0);
    eval_result_destroy(e);
    /* with basin.norm: features normalised with the model's statistics */
    float mean[16], std[16];
    for (int k = 0; k < 16; k++) mean[k] = -50.0f + k, std[k] = 10.0f + 0.5f * k;
    REQUIRE_OK(pipeline_set_model_norm(m, mean, std, 16));
    o.split = DATASET_SPLIT_EVAL;
    o.frontend = &p;
    REQUIRE_OK(eval_dataset(&e, m, ds, &o, NULL));
    struct features *g;
    REQUIRE_OK(features_prepare(&g, ds, DATASET_SPLIT_EVAL, fe, &fo, FEATURES_NORM_GIVEN, mean, std, NULL, NULL, NULL));
    struct eval_result *h;
    REQUIRE_OK(eval_run(&h, m, g, ds, 0, NULL));
    EXPECT_EQ_INT(e->n, g->n);
    EXPECT_EQ_INT(e->split, DATASET_SPLIT_EVAL);
    EXPECT_EQ_INT(e->normalised, 1);
    EXPECT_TENSOR_NEAR(e->probs, h->probs, (long)g->n * M, 1e-7, 1e-6);
    EXPECT(fabs(e->all.logloss - r->all.logloss) > 1e-6);   /* the normalisation changed something */
    eval_result_destroy(h);
    eval_result_destroy(e);
    features_destroy(g);
    free(logits), free(dev);
    eval_result_destroy(r), eval_result_destroy(q);
    features_destroy(f);
    frontend_destroy(fe);
    model_destroy(m);
    dataset_destroy(ds);
}

static int stop_at_eval(void *user, const char *label, long done, long total)
{
    (void)done, (void)total;
    snprintf((char *)user, 32, "%s", label);
    return strcmp(label, "eval") != 0;
}

/* What eval_dataset refuses, naming the problem; a cancel during the forward passes. */
static void test_eval_dataset_errors(void)
{
    char dir[600];
    path_of(dir, sizeof dir, "eval-errors");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL | DC_AUDIO));
    struct dataset *ds;
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    struct model *m = tiny_sepnet(5, 1);
    REQUIRE(m);
    struct eval_result *r = (struct eval_result *)1;
    struct eval_opts o = {.split = DATASET_SPLIT_EVAL, .cache_dir = ""};
    EXPECT_EQ_INT(eval_dataset(&r, m, ds, &o, NULL), STATUS_MISMATCH);
    EXPECT(strstr(status_detail(), "the model has 5 classes, the data set 3") != NULL);
    EXPECT(r == NULL);
    model_destroy(m);
    m = tiny_sepnet(3, 1);
    REQUIRE(m);
    o.split = DATASET_SPLIT_TEST;   /* no fold1_test.csv: empty */
    EXPECT_EQ_INT(eval_dataset(&r, m, ds, &o, NULL), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "test split is empty") != NULL);
    /* a model without a front end needs one given */
    free(m->frontend);
    m->frontend = NULL;
    o.split = DATASET_SPLIT_EVAL;
    EXPECT_EQ_INT(eval_dataset(&r, m, ds, &o, NULL), STATUS_NOT_FOUND);
    struct frontend_params p;
    fixture_params(&p);
    o.frontend = &p;
    char last[32] = "";
    struct progress stop = {stop_at_eval, last};
    o.batch = 1;
    EXPECT_EQ_INT(eval_dataset(&r, m, ds, &o, &stop), STATUS_CANCELLED);
    EXPECT_STR(last, "eval");
    EXPECT(r == NULL);
    REQUIRE_OK(eval_dataset(&r, m, ds, &o, NULL));
    EXPECT_EQ_INT(r->n, 6);
    eval_result_destroy(r);
    model_destroy(m);
    dataset_destroy(ds);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* The two CSV files, exactly; names with a comma quoted; the confusion file's name. */
static void test_eval_csv(void)
{
    char dir[600], buf[700];
    path_of(dir, sizeof dir, "eval-csv");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL));
    struct dataset *ds;
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    /* airport, park, street_traffic; devices a, b, c, s1 */
    const int dev[4] = {0, 0, 1, 3};
    const int lab[4] = {0, 2, 2, 1};
    const float probs[12] = {0.8f, 0.1f, 0.1f, 0.5f, 0.25f, 0.25f, 0, 0, 1, 0.25f, 0.5f, 0.25f};
    struct eval_result *r;
    REQUIRE_OK(eval_from_probs(&r, 4, 3, probs, lab, dev, ds));
    r->split = DATASET_SPLIT_EVAL;
    const char *path = test_path("ev.csv");
    REQUIRE_OK(eval_write_csv(r, ds, path));
    char *text = slurp(path);
    REQUIRE(text);
    char want[4096];
    double lla = nll(0.8f), llp = nll(0.5f), lls = (nll(0.25f) + nll(1 - 1e-15)) / 2, llo = (nll(0.8f) + nll(0.25f)) / 2;
    snprintf(want, sizeof want,
             "split,group,name,seen,n,correct,acc,logloss,acc_macro,logloss_macro\n"
             "evaluate,all,all,,4,3,0.750000,%.6f,0.833333,%.6f\n"
             "evaluate,class,airport,,1,1,1.000000,%.6f,1.000000,%.6f\n"
             "evaluate,class,park,,1,1,1.000000,%.6f,1.000000,%.6f\n"
             "evaluate,class,street_traffic,,2,1,0.500000,%.6f,0.500000,%.6f\n"
             "evaluate,device,a,1,2,1,0.500000,%.6f,0.500000,%.6f\n"
             "evaluate,device,b,1,1,1,1.000000,%.6f,1.000000,%.6f\n"
             "evaluate,device,s1,0,1,1,1.000000,%.6f,1.000000,%.6f\n"
             "evaluate,devices,seen,,3,2,0.666667,%.6f,0.750000,%.6f\n"
             "evaluate,devices,unseen,,1,1,1.000000,%.6f,1.000000,%.6f\n",
             (lla + llp + 2 * lls) / 4, (lla + llp + lls) / 3, lla, lla, llp, llp, lls, lls, llo, llo,
             nll(1 - 1e-15), nll(1 - 1e-15), llp, llp,
             (lla + 2 * lls) / 3, (lla + lls) / 2, llp, llp);
    EXPECT_STR(text, want);
    REQUIRE_OK(eval_confusion_path(path, buf, sizeof buf));
    EXPECT(strstr(buf, "/ev-confusion.csv") != NULL);
    text = slurp(buf);
    REQUIRE(text);
    EXPECT_STR(text, "true,airport,park,street_traffic\n"
                     "airport,1,0,0\n"
                     "park,0,1,0\n"
                     "street_traffic,1,0,1\n");
    eval_result_destroy(r);
    dataset_destroy(ds);
    /* confusion file names */
    REQUIRE_OK(eval_confusion_path("out", buf, sizeof buf));
    EXPECT_STR(buf, "out-confusion.csv");
    REQUIRE_OK(eval_confusion_path("d.v1/out.txt", buf, sizeof buf));
    EXPECT_STR(buf, "d.v1/out.txt-confusion.csv");
    char tiny[8];
    EXPECT_EQ_INT(eval_confusion_path("abcdef.csv", tiny, sizeof tiny), STATUS_INVALID);
    /* a class name with a comma and a quote, from a plain CSV data set */
    char listing[700];
    path_of(listing, sizeof listing, "eval-quoted.csv");
    REQUIRE(write_text(listing, "filename,label,device\n1.wav,\"x, \"\"y\"\"\",a\n2.wav,plain,b\n"));
    REQUIRE_OK(dataset_open(&ds, listing, NULL));
    const float p2[4] = {0.3f, 0.7f, 0.6f, 0.4f};
    const int l2[2] = {1, 0}, d2[2] = {0, 1};
    REQUIRE_OK(eval_from_probs(&r, 2, 2, p2, l2, d2, ds));
    REQUIRE_OK(eval_write_csv(r, ds, path));
    text = slurp(path);
    EXPECT(text && strstr(text, "all,class,\"x, \"\"y\"\"\",,1,1,") != NULL);
    text = slurp(test_path("ev-confusion.csv"));
    EXPECT(text && strstr(text, "true,plain,\"x, \"\"y\"\"\"\n") != NULL);
    eval_result_destroy(r);
    dataset_destroy(ds);
    /* without a data set: "class k", no device rows */
    REQUIRE_OK(eval_from_probs(&r, 2, 2, p2, l2, NULL, NULL));
    REQUIRE_OK(eval_write_csv(r, NULL, path));
    text = slurp(path);
    EXPECT(text && strstr(text, "all,class,class 1,,1,1,") && !strstr(text, "device"));
    eval_result_destroy(r);
    /* a folder that does not exist: an error naming the file */
    REQUIRE_OK(eval_from_probs(&r, 2, 2, p2, l2, NULL, NULL));
    EXPECT_EQ_INT(eval_write_csv(r, NULL, test_path("no/such/dir/x.csv")), STATUS_IO);
    EXPECT(strstr(status_detail(), "x.csv") != NULL);
    eval_result_destroy(r);
}

static char *saved_xdg;

static void use_cache_home(const char *name)
{
    saved_xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    setenv("XDG_CACHE_HOME", test_path(name), 1);
}

static void restore_cache_home(void)
{
    if (saved_xdg) setenv("XDG_CACHE_HOME", saved_xdg, 1);
    else unsetenv("XDG_CACHE_HOME");
    free(saved_xdg);
    saved_xdg = NULL;
}

/* The eval command on the fixture: the table per device and per class, the confusion
 * matrix with class names, the CSV files; every option checked before any work. */
static void test_eval_command(void)
{
    use_cache_home("eval-cli-cache");
    char dir[600], model[700], csv[700], conf[700], script[4096];
    path_of(dir, sizeof dir, "eval-cli");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL | DC_AUDIO));
    struct dataset *ds;
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    struct model *m = tiny_sepnet(3, 2);
    REQUIRE(m);
    REQUIRE_OK(pipeline_set_model_labels(m, ds));
    snprintf(model, sizeof model, "%s", test_path("eval-cli.safetensors"));
    REQUIRE_OK(model_save(m, model, 0, NULL));
    snprintf(csv, sizeof csv, "%s", test_path("eval-cli.csv"));
    snprintf(conf, sizeof conf, "%s", test_path("eval-cli-confusion.csv"));
    snprintf(script, sizeof script, "load %s\ndata %s\neval\neval split=all by=class --csv %s\n", model, dir, csv);
    struct cli_output o = cli_run(script);
    EXPECT_EQ_INT(o.n_errors, 0);
    EXPECT(strstr(o.out, "eval: sepnet on the evaluate split of") && strstr(o.out, ": 6 clips"));
    EXPECT(strstr(o.out, "fixture front end (the model's)") != NULL);
    EXPECT(strstr(o.out, "overall: accuracy ") && strstr(o.out, "log loss "));
    EXPECT(strstr(o.out, "  s1 ") && strstr(o.out, "unseen") && strstr(o.out, "seen devices") &&
           strstr(o.out, "unseen devices"));
    EXPECT(strstr(o.out, "confusion (rows: true class") && strstr(o.out, " 2 street_traffic"));
    EXPECT(strstr(o.out, "eval: sepnet on all clips of") && strstr(o.out, ": 16 clips"));
    EXPECT(strstr(o.out, "  park ") != NULL);
    EXPECT(strstr(o.out, "wrote ") && strstr(o.out, "-confusion.csv (confusion)"));
    char *text = slurp(csv);
    EXPECT(text && !strncmp(text, "split,group,name,seen,", 22) && strstr(text, "\nall,all,all,,16,"));
    EXPECT(text && count_char(text, '\n') == 1 + 1 + 3 + 4 + 2);
    text = slurp(conf);
    EXPECT(text && !strncmp(text, "true,airport,park,street_traffic\n", 33) && count_char(text, '\n') == 4);
    /* compare: the same model twice, each side named above the columns, no difference */
    snprintf(script, sizeof script, "load %s\ndata %s\ncompare %s current\ncompare %s\n", model, dir, model, model);
    o = cli_run(script);
    EXPECT_EQ_INT(o.n_errors, 1);
    EXPECT(strstr(o.out, "A: ") && strstr(o.out, "eval-cli.safetensors\nB: "));
    EXPECT(strstr(o.out, "A - B: accuracy +0.0 points (seen +0.0, unseen +0.0), log loss +0.000") != NULL);
    EXPECT(strstr(o.err, "usage: compare A B") != NULL);
    /* errors, each one line naming the option, before any work */
    snprintf(script, sizeof script,
             "eval\nload %s\ndata %s\neval split=bogus\neval by=city\neval nonsense=1\neval stray\neval --csv\n"
             "eval split=test\n", model, dir);
    setenv("BASIN_ASSETS", "/nonexistent", 1); /* no default model to fall back on */
    o = cli_run(script);
    unsetenv("BASIN_ASSETS");
    EXPECT_EQ_INT(o.n_errors, 7);
    EXPECT(strstr(o.err, "eval: no model") != NULL);
    EXPECT(strstr(o.err, "split=bogus: train, evaluate, test or all") != NULL);
    EXPECT(strstr(o.err, "by=city: device or class") != NULL);
    EXPECT(strstr(o.err, "unknown option 'nonsense'") != NULL);
    EXPECT(strstr(o.err, "unexpected 'stray'") != NULL);
    EXPECT(strstr(o.err, "--csv needs a FILE") != NULL);
    EXPECT(strstr(o.err, "test split is empty") != NULL);
    /* a model that does not fit the data says what differs */
    struct model *five = tiny_sepnet(5, 2);
    REQUIRE(five);
    REQUIRE_OK(model_save(five, model, 0, NULL));
    snprintf(script, sizeof script, "load %s\ndata %s\neval\n", model, dir);
    o = cli_run(script);
    EXPECT_EQ_INT(o.n_errors, 1);
    EXPECT(strstr(o.err, "eval: the model has 5 classes, the data set 3") != NULL);
    model_destroy(five);
    model_destroy(m);
    dataset_destroy(ds);
    restore_cache_home();
}

const struct test tests_eval[] = {
    TEST(test_eval_hand_worked),
    TEST(test_eval_logloss_clipping_and_ties),
    TEST(test_eval_seen_unseen),
    TEST(test_eval_run_consistency),
    TEST(test_eval_dataset_errors),
    TEST(test_eval_csv),
    TEST(test_eval_command),
    {0},
};
