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
    EXPECT(s->m == NULL && s->v == NULL && s->g == NULL); /* inference only: no training state */
    REQUIRE_OK(graph_alloc_training(a->g));
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
enum edit { DROP_TENSOR, RESHAPE_TENSOR, EXTRA_TENSOR, BAD_CONFIG, BAD_ARCH, UNKNOWN_KEY, BAD_LABELS, NO_META, BAD_MASK,
            I64_TENSOR, WIDE_CONFIG, MANY_LABELS };

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
        else if (e == I64_TENSOR && !strcmp(t->name, "s1.b2.bn1.bias")) /* same bytes as I64 */
            st_writer_add(w, t->name, ST_I64, t->n_dims, (int64_t[]){t->shape[0] / 2}, t->data);
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
            if (e == MANY_LABELS && !strcmp(key, "basin.labels")) val = "[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]";
            if (e == WIDE_CONFIG && !strcmp(key, "basin.config"))
                val = "{\"width\": 4096, \"rho\": 7, \"damping\": 0.1, \"groups\": 2, \"roll\": 1, "
                      "\"blocks\": [2, 2, 1], \"in_ch\": 2, \"classes\": 5}";
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
    /* counted, not parsed: the list has the wrong length */
    expect_load_error(MANY_LABELS, STATUS_FORMAT, "must list 5 class names (it lists 17)");
    /* A legal but huge config in a small file: the first tensor's shape refuses it before
     * the store (4 GB here) is allocated. */
    expect_load_error(WIDE_CONFIG, STATUS_MISMATCH, "'stem.conv.weight' has shape (8, 2, 5, 5), the model needs (4096, 2, 5, 5)");
    /* One prefix: the file and the tensor are named once. */
    expect_load_error(I64_TENSOR, STATUS_MISMATCH,
                      "edited.safetensors: tensor 's1.b2.bn1.bias' is I64, expected a floating-point dtype");
    const char *d = status_detail(), *first = strstr(d, "s1.b2.bn1.bias");
    EXPECT_MSG(first && !strstr(first + 1, "s1.b2.bn1.bias"), "named twice: %s", d);
    first = strstr(d, "edited.safetensors");
    EXPECT_MSG(first && !strstr(first + 1, "edited.safetensors"), "file named twice: %s", d);
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

/* A model that never trained has no moments (8 bytes a parameter); as a checkpoint it
 * writes zero moments, and loading them makes the training state. */
static void test_training_state_is_lazy(void)
{
    struct model *a, *b;
    REQUIRE_OK(model_load(&a, FIXTURES "sepnet.safetensors"));
    EXPECT(a->g->store.g == NULL && a->g->store.m == NULL && a->g->store.v == NULL);
    EXPECT(a->g->store.w != NULL && a->g->store.mask != NULL);
    EXPECT_EQ_INT(graph_store_bytes(a->g, 0), 8 * a->g->store.n_params + 4 * a->g->store.n_buffers);
    EXPECT_EQ_INT(graph_store_bytes(a->g, 1), 20 * a->g->store.n_params + 4 * a->g->store.n_buffers);
    EXPECT_EQ_INT(graph_training_bytes(a->g), 12 * a->g->store.n_params);
    const char *out = test_path("lazy.safetensors");
    REQUIRE_OK(model_save(a, out, 1, NULL));
    struct st_file *f;
    REQUIRE_OK(st_load(out, &f));
    const struct st_tensor *t = st_find(f, "optim.fc1.weight.v");
    int k = graph_find_tensor(a->g, "fc1.weight");
    REQUIRE(t && k >= 0 && (long)t->numel == a->g->tensors[k].numel);
    float *v = malloc(t->numel * sizeof *v);
    REQUIRE_OK(st_to_f32(t, v));
    float mx = 0;
    for (size_t i = 0; i < t->numel; i++) mx = fmaxf(mx, fabsf(v[i]));
    EXPECT(mx == 0);
    free(v);
    st_destroy(f);
    REQUIRE_OK(model_load(&b, out));
    REQUIRE(b->g->store.m && b->g->store.v && b->g->store.g);
    EXPECT_EQ_INT(graph_training_bytes(b->g), 0);
    EXPECT(memcmp(a->g->store.w, b->g->store.w, (size_t)a->g->store.n_params * sizeof(float)) == 0);
    /* an inference plan leaves it alone, a training plan makes it */
    struct plan *p;
    REQUIRE_OK(plan_create(&p, a->g, 1, 1, 32, 40, 0));
    plan_destroy(p);
    EXPECT(a->g->store.g == NULL);
    REQUIRE_OK(plan_create(&p, a->g, 1, 1, 32, 40, PLAN_BACKWARD));
    plan_destroy(p);
    EXPECT(a->g->store.g && a->g->store.m && a->g->store.v);
    EXPECT_EQ_INT(a->g->store.m[7], 0);
    model_destroy(a);
    model_destroy(b);
}

struct calls {
    long n, last_done, last_total, cancel_at;
    int monotone;
    char label[16];
};

static int count_calls(void *user, const char *label, long done, long total)
{
    struct calls *c = user;
    if (c->n && done < c->last_done) c->monotone = 0;
    c->n++;
    c->last_done = done, c->last_total = total;
    snprintf(c->label, sizeof c->label, "%s", label);
    return !(c->cancel_at && c->n >= c->cancel_at);
}

/* Loading a large model reports progress and can be cancelled; small ones stay quiet. */
static void test_load_progress_and_cancel(void)
{
    struct model_config c;
    model_config_default(&c, ARCH_CNN10);
    REQUIRE_OK(model_config_set(&c, "width", "1.5")); /* 11 M parameters */
    struct model *m, *b = NULL;
    REQUIRE_OK(model_create(&m, &c, 3));
    const char *out = test_path("big.safetensors");
    REQUIRE_OK(model_save(m, out, 0, NULL));
    struct calls k = {0, 0, 0, 0, 1, ""};
    struct progress p = {count_calls, &k};
    REQUIRE_OK(model_load_progress(&b, out, &p));
    EXPECT(k.n >= 2 && k.monotone);
    EXPECT_STR(k.label, "load");
    EXPECT_EQ_INT(k.last_done, k.last_total);
    EXPECT_EQ_INT(k.last_total, graph_param_count(m->g) + m->g->store.n_buffers);
    EXPECT(memcmp(m->g->store.w, b->g->store.w, (size_t)m->g->store.n_params * sizeof(float)) == 0);
    model_destroy(b);
    k = (struct calls){0, 0, 0, 2, 1, ""};
    b = (struct model *)1;
    EXPECT_EQ_INT(model_load_progress(&b, out, &p), STATUS_CANCELLED);
    EXPECT(b == NULL);
    EXPECT(strstr(status_detail(), "big.safetensors") != NULL);
    k = (struct calls){0, 0, 0, 0, 1, ""};
    REQUIRE_OK(model_load_progress(&b, FIXTURES "cnn10.safetensors", &p));
    EXPECT_EQ_INT(k.n, 0);
    model_destroy(b);
    model_destroy(m);
}

const struct test tests_model_io[] = {
    TEST(test_reference_models_give_reference_logits),
    TEST(test_save_load_round_trip_is_bit_exact),
    TEST(test_checkpoint_keeps_moments_and_masks),
    TEST(test_bad_files_are_one_line_errors),
    TEST(test_save_failure_leaves_nothing),
    TEST(test_training_state_is_lazy),
    TEST(test_load_progress_and_cancel),
    {0},
};
