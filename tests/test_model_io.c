/* test_model_io.c: models as .safetensors files: files made by the PyTorch reference load
 * and give its logits; basin's own files round-trip bit for bit; checkpoints keep optimiser
 * state and masks; every kind of bad file is a one-line error naming the file. Fixtures:
 * tests/data/models (make_fixtures.py says how they were made). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/graph.h"
#include "basin/core/status.h"
#include "basin/model/model.h"
#include "basin/model/safetensors.h"
#include "test.h"

#define FIXTURES "tests/data/models/"

static const char *const archs[] = {"cpresnet", "sepnet", "cnn10"};

static void test_reference_models_give_reference_logits(void)
{
    for (int k = 0; k < 3; k++) {
        char path[256], io[256];
        snprintf(path, sizeof path, FIXTURES "%s.safetensors", archs[k]);
        snprintf(io, sizeof io, FIXTURES "%s-io.safetensors", archs[k]);
        struct model *m;
        REQUIRE_OK(model_load(&m, path));
        EXPECT_STR(arch_name(m->cfg.arch), archs[k]);
        EXPECT_EQ_INT(m->n_labels, m->cfg.classes);
        EXPECT_STR(m->labels[1], "c1");
        struct st_file *f;
        REQUIRE_OK(st_load(io, &f));
        const struct st_tensor *x = st_find(f, "x"), *lg = st_find(f, "logits");
        REQUIRE(x && lg && x->n_dims == 4);
        int n = (int)x->shape[0];
        float *xs = malloc(x->numel * sizeof *xs), *want = malloc(lg->numel * sizeof *want);
        REQUIRE_OK(st_to_f32(x, xs));
        REQUIRE_OK(st_to_f32(lg, want));
        for (int flags = 0; flags <= PLAN_BACKWARD; flags += PLAN_BACKWARD) {
            struct plan *p;
            REQUIRE_OK(plan_create(&p, m->g, n, (int)x->shape[1], (int)x->shape[2], (int)x->shape[3], flags));
            REQUIRE_OK(plan_forward(p, n, xs, 0, NULL));
            double scale = 0;
            for (size_t i = 0; i < lg->numel; i++) scale = fmax(scale, fabs(want[i]));
            const float *got = plan_output(p);
            for (size_t i = 0; i < lg->numel; i++)
                EXPECT_MSG(fabs(got[i] - want[i]) <= 1e-4 * scale, "%s flags=%d: logit %zu = %.7g, PyTorch %.7g",
                           archs[k], flags, i, got[i], want[i]);
            plan_destroy(p);
        }
        free(xs);
        free(want);
        st_destroy(f);
        model_destroy(m);
    }
}

/* Every tensor of a file basin saved equals the model's, bit for bit, after a reload. */
static void test_save_load_round_trip_is_bit_exact(void)
{
    for (int k = 0; k < 3; k++) {
        char path[256];
        snprintf(path, sizeof path, FIXTURES "%s.safetensors", archs[k]);
        struct model *a, *b;
        REQUIRE_OK(model_load(&a, path));
        const char *out = test_path("rt.safetensors");
        REQUIRE_OK(model_save(a, out, 0, (const char *[]){"basin.note", "é", NULL}));
        REQUIRE_OK(model_load(&b, out));
        EXPECT(memcmp(&a->cfg, &b->cfg, sizeof a->cfg) == 0);
        EXPECT(memcmp(a->g->store.w, b->g->store.w, (size_t)a->g->store.n_params * sizeof(float)) == 0);
        EXPECT(memcmp(a->g->store.buf, b->g->store.buf, (size_t)a->g->store.n_buffers * sizeof(float)) == 0);
        EXPECT_EQ_INT(b->n_labels, a->n_labels);
        struct st_file *f;
        REQUIRE_OK(st_load(out, &f));
        EXPECT_STR(st_meta(f, "basin.format"), "1");
        EXPECT_STR(st_meta(f, "basin.arch"), archs[k]);
        EXPECT_STR(st_meta(f, "basin.note"), "é");
        EXPECT(st_find(f, "optim.fc1.weight.m") == NULL);
        st_destroy(f);
        model_destroy(a);
        model_destroy(b);
    }
}

static void test_checkpoint_keeps_moments_and_masks(void)
{
    struct model *a, *b;
    REQUIRE_OK(model_load(&a, FIXTURES "cpresnet.safetensors"));
    struct store *s = &a->g->store;
    for (long i = 0; i < s->n_params; i++) {
        s->m[i] = (float)i * 0.5f;
        s->v[i] = (float)i * 0.25f;
    }
    int k = graph_find_tensor(a->g, "s1.b1.conv1.weight");
    REQUIRE(k >= 0);
    s->mask[a->g->tensors[k].offset + 3] = 0;
    a->g->masked = 1;
    const char *out = test_path("ckpt.safetensors");
    REQUIRE_OK(model_save(a, out, 1, NULL));
    REQUIRE_OK(model_load(&b, out));
    EXPECT(memcmp(s->m, b->g->store.m, (size_t)s->n_params * sizeof(float)) == 0);
    EXPECT(memcmp(s->v, b->g->store.v, (size_t)s->n_params * sizeof(float)) == 0);
    EXPECT(memcmp(s->mask, b->g->store.mask, (size_t)s->n_params * sizeof(float)) == 0);
    EXPECT(b->g->masked == 1);
    model_destroy(a);
    model_destroy(b);
}

/* Write a copy of the cpresnet fixture with one change, for the error cases. */
enum edit { DROP_TENSOR, RESHAPE_TENSOR, EXTRA_TENSOR, BAD_CONFIG, BAD_ARCH, UNKNOWN_KEY, BAD_LABELS, NO_META, BAD_MASK };

static const char *edited(enum edit e)
{
    struct st_file *f;
    if (st_load(FIXTURES "cpresnet.safetensors", &f)) return NULL;
    struct st_writer *w = st_writer_create();
    float zero[8] = {0};
    for (int i = 0; i < st_count(f); i++) {
        const struct st_tensor *t = st_tensor_at(f, i);
        if (e == DROP_TENSOR && !strcmp(t->name, "s1.b2.bn1.bias")) continue;
        int64_t shape[8];
        memcpy(shape, t->shape, sizeof shape);
        if (e == RESHAPE_TENSOR && !strcmp(t->name, "stem.conv.weight")) shape[2] = 3, shape[3] = 3;
        if (e == RESHAPE_TENSOR && !strcmp(t->name, "stem.conv.weight"))
            st_writer_add(w, t->name, t->dtype, t->n_dims, shape, t->data);
        else
            st_writer_add(w, t->name, t->dtype, t->n_dims, t->shape, t->data);
    }
    if (e == EXTRA_TENSOR) st_writer_add_f32(w, "s4.b1.conv1.weight", 1, (int[]){8}, zero);
    if (e != NO_META) {
        for (int i = 0; i < st_meta_count(f); i++) {
            const char *key = st_meta_key_at(f, i), *val = st_meta_value_at(f, i);
            if (e == BAD_CONFIG && !strcmp(key, "basin.config")) val = "{\"width\": 8, \"rho\": \"seven\"}";
            if (e == UNKNOWN_KEY && !strcmp(key, "basin.config"))
                val = "{\"width\": 8, \"rho\": 7, \"damping\": 0.1, \"groups\": 2, \"roll\": 1, \"blocks\": [2, 2, 1], "
                      "\"in_ch\": 2, \"classes\": 5, \"future_option\": 3}";
            if (e == BAD_ARCH && !strcmp(key, "basin.arch")) val = "resnet50";
            if (e == BAD_LABELS && !strcmp(key, "basin.labels")) val = "[\"only\", \"two\"]";
            st_writer_meta(w, key, val);
        }
    }
    const char *out = test_path("edited.safetensors");
    int s = st_writer_write(w, out);
    st_writer_destroy(w);
    st_destroy(f);
    return s ? NULL : out;
}

static void expect_load_error(enum edit e, int status, const char *needle)
{
    const char *path = edited(e);
    if (e == BAD_MASK) {
        /* the writer refuses NULL data for 80 floats: build the mask from real data */
        struct model *m;
        if (model_load(&m, FIXTURES "cpresnet.safetensors")) return;
        int k = graph_find_tensor(m->g, "head.conv.weight");
        m->g->store.mask[m->g->tensors[k].offset] = 0.5f;
        path = test_path("badmask.safetensors");
        if (model_save(m, path, 1, NULL)) path = NULL;
        model_destroy(m);
    }
    REQUIRE(path);
    struct model *m = NULL;
    int got = model_load(&m, path);
    EXPECT_MSG(got == status, "edit %d: status %d (%s), expected %d", e, got, status_detail(), status);
    EXPECT(m == NULL);
    EXPECT_MSG(strstr(status_detail(), "edited.safetensors") || strstr(status_detail(), "badmask.safetensors"),
               "edit %d: message does not name the file: %s", e, status_detail());
    EXPECT_MSG(strstr(status_detail(), needle), "edit %d: message lacks '%s': %s", e, needle, status_detail());
    EXPECT(strchr(status_detail(), '\n') == NULL);
}

static void test_bad_files_are_one_line_errors(void)
{
    expect_load_error(DROP_TENSOR, STATUS_MISMATCH, "s1.b2.bn1.bias");
    expect_load_error(RESHAPE_TENSOR, STATUS_MISMATCH, "stem.conv.weight");
    expect_load_error(EXTRA_TENSOR, STATUS_MISMATCH, "s4.b1.conv1.weight");
    expect_load_error(BAD_CONFIG, STATUS_FORMAT, "rho");
    expect_load_error(BAD_ARCH, STATUS_FORMAT, "resnet50");
    expect_load_error(BAD_LABELS, STATUS_FORMAT, "labels");
    expect_load_error(NO_META, STATUS_FORMAT, "not a basin model");
    expect_load_error(BAD_MASK, STATUS_FORMAT, "mask");
    struct model *m = NULL;
    EXPECT(model_load(&m, test_path("missing.safetensors")) != 0);
    EXPECT(strstr(status_detail(), "missing.safetensors") != NULL);
    /* an unknown config key is a warning, not an error */
    const char *path = edited(UNKNOWN_KEY);
    REQUIRE(path);
    REQUIRE_OK(model_load(&m, path));
    model_destroy(m);
}

static void test_save_failure_leaves_nothing(void)
{
    struct model *m;
    REQUIRE_OK(model_load(&m, FIXTURES "sepnet.safetensors"));
    int s = model_save(m, test_path("no/such/dir/m.safetensors"), 0, NULL);
    EXPECT(s == STATUS_IO);
    EXPECT(strstr(status_detail(), "m.safetensors") != NULL);
    model_destroy(m);
}

const struct test tests_model_io[] = {
    TEST(test_reference_models_give_reference_logits),
    TEST(test_save_load_round_trip_is_bit_exact),
    TEST(test_checkpoint_keeps_moments_and_masks),
    TEST(test_bad_files_are_one_line_errors),
    TEST(test_save_failure_leaves_nothing),
    {0},
};
