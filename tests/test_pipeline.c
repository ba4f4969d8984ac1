/* test_pipeline.c: the batched predictor (model layer) and the model <-> data contract
 * (train layer): logits equal to a single plan's, any n, probabilities, cancellation;
 * front end, labels and normalisation metadata; mismatches named; feature preparation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/graph.h"
#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/data/dataset.h"
#include "basin/data/features.h"
#include "basin/dsp/frontend.h"
#include "basin/model/model.h"
#include "basin/model/predict.h"
#include "basin/train/pipeline.h"
#include "test.h"
#include "util.h"

static struct model *small_sepnet(int mels, int classes)
{
    struct model_config c;
    model_config_default(&c, ARCH_SEPNET);
    c.mels = mels, c.classes = classes;
    c.n_channels = 4;
    c.channels[0] = 8, c.channels[1] = c.channels[2] = c.channels[3] = 16;
    struct model *m;
    return model_create(&m, &c, 3) ? NULL : m;
}

static int stop_after_first(void *user, const char *label, long done, long total)
{
    (void)label, (void)total;
    *(long *)user = done;
    return 0;
}

/* Logits of 7 clips in batches of 3 equal those of one plan over all 7 (BN in eval mode:
 * each clip's result is its own); softmax rows sum to 1; a cancel stops after a batch. */
static void test_predictor_batches(void)
{
    struct model *m = small_sepnet(16, 5);
    REQUIRE(m);
    const int n = 7, F = 16, T = 40;
    float *x = malloc(sizeof(float) * n * F * T), *a = malloc(sizeof(float) * n * 5), *b = malloc(sizeof(float) * n * 5);
    struct rng r;
    rng_seed(&r, 11);
    rng_fill_normal(&r, x, (long)n * F * T, 0, 1);
    struct plan *p;
    REQUIRE_OK(plan_create(&p, m->g, n, 1, F, T, 0));
    REQUIRE_OK(plan_forward(p, n, x, 0, NULL));
    memcpy(a, plan_output(p), sizeof(float) * n * 5);
    plan_destroy(p);
    struct predictor *pr;
    REQUIRE_OK(predictor_create(&pr, m, 3, 1, F, T));
    REQUIRE_OK(predictor_logits(pr, n, x, b, NULL));
    EXPECT_TENSOR_NEAR(b, a, n * 5, 1e-5, 1e-5);
    REQUIRE_OK(predictor_probs(pr, n, x, b, NULL));
    for (int i = 0; i < n; i++) {
        double sum = 0;
        for (int k = 0; k < 5; k++) sum += b[i * 5 + k];
        EXPECT_NEAR(sum, 1.0, 1e-5);
    }
    long done = -1;
    struct progress stop = {stop_after_first, &done};
    EXPECT_EQ_INT(predictor_logits(pr, n, x, b, &stop), STATUS_CANCELLED);
    EXPECT_EQ_INT(done, 3);
    REQUIRE_OK(model_predict(m, n, 1, F, T, x, b));
    EXPECT_TENSOR_NEAR(b, a, n * 5, 1e-5, 1e-5);
    predictor_destroy(pr);
    /* an input the model cannot take is refused when the predictor is made */
    EXPECT_EQ_INT(predictor_create(&pr, m, 2, 1, 8, T), STATUS_MISMATCH);
    free(x), free(a), free(b);
    model_destroy(m);
}

/* Front end, labels and norm round-trip through a model file; mismatches say what differs. */
static void test_model_metadata_and_checks(void)
{
    char dir[600];
    path_of(dir, sizeof dir, "pipe-dcase");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL | DC_AUDIO));
    struct dataset *ds;
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    struct frontend_params fe, back;
    REQUIRE_OK(frontend_preset(&fe, "demo"));
    fe.n_mels = 16;
    snprintf(fe.preset, sizeof fe.preset, "small");
    struct model *m = small_sepnet(16, dataset_n_classes(ds));
    REQUIRE(m);
    EXPECT_EQ_INT(pipeline_model_frontend(m, &back), STATUS_NOT_FOUND);
    REQUIRE_OK(pipeline_set_model_frontend(m, &fe));
    REQUIRE_OK(pipeline_set_model_labels(m, ds));
    float mean[16], std[16];
    for (int i = 0; i < 16; i++) mean[i] = (float)i, std[i] = 1.0f + (float)i;
    REQUIRE_OK(pipeline_set_model_norm(m, mean, std, 16));
    EXPECT_EQ_INT(pipeline_check(m, &fe, ds), STATUS_OK);
    const char *path = test_path("pipe.safetensors");
    REQUIRE_OK(model_save(m, path, 0, NULL));
    struct model *l;
    REQUIRE_OK(model_load(&l, path));
    REQUIRE_OK(pipeline_model_frontend(l, &back));
    EXPECT(frontend_params_diff(&fe, &back) == NULL);
    EXPECT_STR(back.preset, "small");
    EXPECT_EQ_INT(l->n_labels, dataset_n_classes(ds));
    EXPECT_EQ_INT(l->n_norm, 16);
    EXPECT_NEAR(l->norm_std[15], 16.0, 0);
    /* mismatches */
    struct frontend_params wide = fe;
    wide.n_mels = 32;
    EXPECT_EQ_INT(pipeline_check(l, &wide, ds), STATUS_MISMATCH);
    EXPECT(strstr(status_detail(), "16 mel bins") != NULL);
    struct model *other = small_sepnet(16, dataset_n_classes(ds) + 2);
    REQUIRE(other);
    EXPECT_EQ_INT(pipeline_check(other, &fe, ds), STATUS_MISMATCH);
    EXPECT(strstr(status_detail(), "classes") && strstr(status_detail(), dataset_class_name(ds, 0)));
    mem_free(l->labels[0]);
    l->labels[0] = mem_strdup("zebra");
    EXPECT_EQ_INT(pipeline_check(l, &fe, ds), STATUS_MISMATCH);
    EXPECT(strstr(status_detail(), "zebra") != NULL);
    model_destroy(other);
    model_destroy(l);
    model_destroy(m);
    dataset_destroy(ds);
}

/* features_prepare: FIT normalises the split with the train split's statistics (returned);
 * GIVEN applies the statistics given; NONE leaves the front end's numbers. */
static void test_features_prepare(void)
{
    char dir[600];
    path_of(dir, sizeof dir, "prep-dcase");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL | DC_AUDIO));
    struct dataset *ds;
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    struct frontend *fe;
    REQUIRE(make_fe(&fe));
    struct features_opts o = {.in_ch = 1, .cache_dir = ""};
    struct features *raw, *tr, *ev, *given;
    float mean[16], std[16], mean2[16], std2[16];
    REQUIRE_OK(features_prepare(&raw, ds, DATASET_SPLIT_TRAIN, fe, &o, FEATURES_NORM_NONE, NULL, NULL, NULL, NULL, NULL));
    REQUIRE_OK(features_znorm_fit(raw, mean2, std2));
    REQUIRE_OK(features_prepare(&tr, ds, DATASET_SPLIT_TRAIN, fe, &o, FEATURES_NORM_FIT, NULL, NULL, mean, std, NULL));
    EXPECT_TENSOR_NEAR(mean, mean2, 16, 0, 0);
    EXPECT_TENSOR_NEAR(std, std2, 16, 0, 0);
    REQUIRE_OK(features_prepare(&ev, ds, DATASET_SPLIT_EVAL, fe, &o, FEATURES_NORM_FIT, NULL, NULL, mean2, std2, NULL));
    EXPECT_TENSOR_NEAR(mean2, mean, 16, 0, 0); /* the train split's statistics, not evaluate's */
    REQUIRE_OK(features_prepare(&given, ds, DATASET_SPLIT_EVAL, fe, &o, FEATURES_NORM_GIVEN, mean, std, NULL, NULL, NULL));
    long n = (long)ev->n * ev->n_channels * ev->n_mels * ev->n_frames;
    EXPECT_TENSOR_NEAR(given->x, ev->x, n, 0, 0);
    EXPECT(given->znormed && !raw->znormed);
    features_destroy(raw), features_destroy(tr), features_destroy(ev), features_destroy(given);
    frontend_destroy(fe);
    dataset_destroy(ds);
}

const struct test tests_pipeline[] = {
    TEST(test_predictor_batches),
    TEST(test_model_metadata_and_checks),
    TEST(test_features_prepare),
    {0},
};
