/* test_model.c: the model zoo: parameter counts against the reference numbers, tensor
 * names and shapes, the rho table, receptive fields and MACs. */
#include <string.h>

#include "basin/core/progress.h"
#include "basin/core/status.h"
#include "basin/model/model.h"
#include "test.h"

static struct model *make(enum arch a, const char *const *kv)
{
    struct model_config c;
    model_config_default(&c, a);
    for (int i = 0; kv && kv[i]; i += 2)
        if (model_config_set(&c, kv[i], kv[i + 1])) return NULL;
    struct model *m = NULL;
    if (model_create(&m, &c, 1)) return NULL;
    return m;
}

static long count(enum arch a, const char *const *kv)
{
    struct model *m = make(a, kv);
    if (!m) {
        test_fail(__FILE__, __LINE__, "model: %s", status_detail());
        return -1;
    }
    long n = graph_param_count(m->g);
    model_destroy(m);
    return n;
}

/* basin_ref.py counts (shared/peers/README.md), which reproduce the published figures. */
static void test_param_counts_match_reference(void)
{
    EXPECT_EQ_INT(count(ARCH_CPRESNET, (const char *[]){"width", "32", "rho", "4", NULL}), 219124);
    EXPECT_EQ_INT(count(ARCH_CPRESNET, (const char *[]){"width", "32", "rho", "5", NULL}), 227316);
    EXPECT_EQ_INT(count(ARCH_CPRESNET, (const char *[]){"width", "32", "rho", "7", NULL}), 251892);
    EXPECT_EQ_INT(count(ARCH_CPRESNET, (const char *[]){"width", "128", "rho", "7", NULL}), 3956628);
    EXPECT_EQ_INT(count(ARCH_CPRESNET, (const char *[]){"width", "48", "rho", "4", "blocks", "4,3,1",
                                                        "in_ch", "2", NULL}),
                  247316);
    EXPECT_EQ_INT(count(ARCH_SEPNET, NULL), 62922);
    EXPECT_EQ_INT(count(ARCH_CNN10, NULL), 4954058);
}

/* SP4ASC reports 64,335 state-dict entries (running stats and num_batches_tracked
 * included) and 62,474 parameters after folding BN gamma, beta into a bias. */
static void test_sepnet_state_dict_and_folded_counts(void)
{
    struct model *m = make(ARCH_SEPNET, NULL);
    REQUIRE(m);
    long params = graph_param_count(m->g), bn_tensors = 0, block_bn = 0;
    for (int i = 0; i < m->g->n_tensors; i++) {
        const struct graph_tensor *t = &m->g->tensors[i];
        if (t->kind == TENSOR_BN_WEIGHT) bn_tensors++;
        if (t->kind == TENSOR_BN_WEIGHT && strcmp(t->name, "bn0.weight")) block_bn += t->numel;
    }
    /* one num_batches_tracked scalar per BN in PyTorch's state dict */
    EXPECT_EQ_INT(params + m->g->store.n_buffers + bn_tensors, 64335);
    EXPECT_EQ_INT(params - block_bn, 62474);
    model_destroy(m);
}

static void test_tensor_names_and_shapes(void)
{
    struct {
        enum arch a;
        const char *const *kv;
        const char *name;
        int n_dims, shape[4];
    } cases[] = {
        {ARCH_CPRESNET, (const char *[]){"width", "8", NULL}, "stem.conv.weight", 4, {8, 1, 5, 5}},
        {ARCH_CPRESNET, (const char *[]){"width", "8", NULL}, "s1.b1.conv1.weight", 4, {8, 8, 3, 3}},
        {ARCH_CPRESNET, (const char *[]){"width", "8", NULL}, "s1.b1.conv2.weight", 4, {8, 8, 1, 1}},
        {ARCH_CPRESNET, (const char *[]){"width", "8", NULL}, "s2.b1.proj.conv.weight", 4, {16, 8, 1, 1}},
        {ARCH_CPRESNET, (const char *[]){"width", "8", NULL}, "s3.b1.proj.bn.running_mean", 1, {32}},
        {ARCH_CPRESNET, (const char *[]){"width", "8", NULL}, "head.conv.weight", 4, {10, 32, 1, 1}},
        {ARCH_CPRESNET, (const char *[]){"width", "8", "groups", "2", NULL}, "s1.b2.conv1.weight", 4, {8, 4, 3, 3}},
        {ARCH_SEPNET, NULL, "bn0.running_var", 1, {256}},
        {ARCH_SEPNET, NULL, "b1.pw.weight", 4, {64, 1, 1, 1}},
        {ARCH_SEPNET, NULL, "b4.dw_t.weight", 4, {128, 1, 1, 3}},
        {ARCH_SEPNET, NULL, "b4.dw_f.weight", 4, {128, 1, 3, 1}},
        {ARCH_SEPNET, NULL, "fc2.bias", 1, {10}},
        {ARCH_CNN10, NULL, "bn0.weight", 1, {64}},
        {ARCH_CNN10, NULL, "b4.conv2.weight", 4, {512, 512, 3, 3}},
        {ARCH_CNN10, NULL, "fc1.weight", 2, {512, 512}},
        {ARCH_CNN10, NULL, "fc_out.weight", 2, {10, 512}},
        {ARCH_CNN10, (const char *[]){"width", "0.25", NULL}, "fc1.weight", 2, {128, 128}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct model *m = make(cases[i].a, cases[i].kv);
        REQUIRE(m);
        int k = graph_find_tensor(m->g, cases[i].name);
        EXPECT_MSG(k >= 0, "%s: no tensor %s", arch_name(cases[i].a), cases[i].name);
        if (k >= 0) {
            const struct graph_tensor *t = &m->g->tensors[k];
            EXPECT_EQ_INT(t->n_dims, cases[i].n_dims);
            for (int d = 0; d < t->n_dims; d++) EXPECT_EQ_INT(t->shape[d], cases[i].shape[d]);
        }
        model_destroy(m);
    }
    struct model *m = make(ARCH_CPRESNET, (const char *[]){"width", "8", NULL});
    REQUIRE(m);
    EXPECT(graph_find_tensor(m->g, "s1.b1.proj.conv.weight") < 0);
    EXPECT(graph_find_tensor(m->g, "stem.bn.num_batches_tracked") < 0);
    model_destroy(m);
}

/* ref: mission-anchors 2.2: each step of rho turns one more 1x1 into a 3x3. */
static void test_rho_table(void)
{
    int k[3][4][2], prev = -1;
    cpresnet_kernels(5, k);
    int want1[4] = {3, 3, 3, 3}, want2[4] = {1, 3, 3, 1};
    for (int b = 0; b < 4; b++) {
        EXPECT_EQ_INT(k[0][b][0], want1[b]);
        EXPECT_EQ_INT(k[0][b][1], want2[b]);
        EXPECT_EQ_INT(k[1][b][0], 1);
        EXPECT_EQ_INT(k[2][b][1], 1);
    }
    for (int rho = 0; rho <= 15; rho++) {
        cpresnet_kernels(rho, k);
        int n3 = 0;
        for (int s = 0; s < 3; s++)
            for (int b = 0; b < 4; b++) n3 += (k[s][b][0] == 3) + (k[s][b][1] == 3);
        if (prev >= 0) EXPECT_MSG(n3 == prev + 1, "rho %d: %d 3x3 kernels after %d", rho, n3, prev);
        prev = n3;
    }
}

/* Receptive fields, pool kernels included (mission-anchors 2.2 table, last column), at
 * the 256 x 431 input; and the MACs of the stem. */
static void test_receptive_field_and_macs(void)
{
    int rhos[] = {0, 1, 2, 3, 4, 5, 7}, rf[] = {23, 31, 39, 55, 71, 87, 135};
    for (size_t i = 0; i < sizeof rhos / sizeof rhos[0]; i++) {
        char r[8];
        snprintf(r, sizeof r, "%d", rhos[i]);
        struct model *m = make(ARCH_CPRESNET, (const char *[]){"width", "8", "rho", r, NULL});
        REQUIRE(m);
        struct layer_row rows[256];
        struct model_summary s;
        int n;
        REQUIRE_OK(model_describe(m, 256, 431, rows, &n, &s));
        EXPECT_MSG(s.rf[0] == rf[i] && s.rf[1] == rf[i], "rho %d: rf %ld x %ld, expected %d",
                   rhos[i], s.rf[0], s.rf[1], rf[i]);
        EXPECT_STR(rows[0].name, "stem.conv");
        EXPECT_EQ_INT(rows[0].f, 127);
        EXPECT_EQ_INT(rows[0].t, 215);
        EXPECT_NEAR(rows[0].macs, 127.0 * 215 * 8 * 25, 0);
        model_destroy(m);
    }
}

static void test_config_errors(void)
{
    struct model_config c;
    model_config_default(&c, ARCH_CPRESNET);
    EXPECT(model_config_set(&c, "depth", "26") == STATUS_INVALID);
    EXPECT(strstr(status_detail(), "depth") && strstr(status_detail(), "options"));
    EXPECT(model_config_set(&c, "width", "3x") == STATUS_INVALID);
    EXPECT(model_config_set(&c, "blocks", "4,4") == STATUS_INVALID);
    REQUIRE_OK(model_config_set(&c, "groups", "3"));
    EXPECT(model_config_validate(&c) == STATUS_INVALID);
    EXPECT(strstr(status_detail(), "groups=3") != NULL);
    model_config_default(&c, ARCH_SEPNET);
    EXPECT(model_config_set(&c, "rho", "5") == STATUS_INVALID);
    enum arch a;
    EXPECT(arch_parse("resnet", &a) == STATUS_INVALID);
}

/* The RF of a row is its units' theoretical maximum; the total is that of the layer the
 * global pooling head reads, which is a row of the table; no earlier row exceeds it; rows
 * after the head see the whole input (model.h, model_describe). */
static void test_receptive_field_rows_and_total_agree(void)
{
    struct {
        enum arch a;
        const char *const *kv;
        int f, t;
        const char *head;
        long rf;
    } cases[] = {
        {ARCH_CNN10, (const char *[]){"width", "0.25", NULL}, 64, 100, "b4.pool", 76},
        {ARCH_SEPNET, NULL, 256, 431, "b4.pool", 76},
        {ARCH_CPRESNET, (const char *[]){"width", "8", "rho", "5", NULL}, 256, 431, "head.bn", 87},
        {ARCH_CPRESNET, (const char *[]){"width", "8", "rho", "7", NULL}, 40, 30, "head.bn", 135},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct model *m = make(cases[i].a, cases[i].kv);
        REQUIRE(m);
        struct layer_row rows[256];
        struct model_summary s;
        int n, head = -1;
        REQUIRE_OK(model_describe(m, cases[i].f, cases[i].t, rows, &n, &s));
        EXPECT_STR(s.rf_layer, cases[i].head);
        EXPECT_EQ_INT(s.rf[0], cases[i].rf);
        EXPECT_EQ_INT(s.rf[1], cases[i].rf);
        for (int r = 0; r < n; r++)
            if (!strcmp(rows[r].name, s.rf_layer)) head = r;
        REQUIRE(head >= 0);
        EXPECT(rows[head].rf[0] == s.rf[0] && rows[head].rf[1] == s.rf[1]);
        for (int r = 0; r < n; r++) {
            if (r <= head) {
                EXPECT_MSG(rows[r].rf[0] <= s.rf[0] && rows[r].rf[1] <= s.rf[1] && !rows[r].whole[0],
                           "%s: row %s rf %ld x %ld exceeds the total", arch_name(cases[i].a),
                           rows[r].name, rows[r].rf[0], rows[r].rf[1]);
            } else {
                /* after global pooling: the whole input, never more */
                EXPECT_MSG(rows[r].whole[0] && rows[r].whole[1] && rows[r].rf[0] == cases[i].f &&
                           rows[r].rf[1] == cases[i].t,
                           "%s: row %s after the head has rf %ld x %ld", arch_name(cases[i].a),
                           rows[r].name, rows[r].rf[0], rows[r].rf[1]);
            }
        }
        model_destroy(m);
    }
}

/* Pools are rows with names; an input too small names the layer and the minimum, which is
 * exact: the minimum passes, one less fails, on each axis. */
static void test_min_input_and_too_small_messages(void)
{
    struct model *m = make(ARCH_CPRESNET, NULL);
    REQUIRE(m);
    struct layer_row rows[256];
    struct model_summary s;
    int n, f, t;
    EXPECT_EQ_INT(model_describe(m, 256, 10, rows, &n, &s), STATUS_MISMATCH);
    EXPECT_STR(status_detail(), "input of 256 x 10 is too small: s1.b4.pool gets a 31 x 1 map, too "
                                "small for its 2x2 kernel (the model takes inputs of at least 17 x 17)");
    REQUIRE_OK(model_min_input(&m->cfg, &f, &t));
    EXPECT(f == 17 && t == 17);
    model_destroy(m);
    struct {
        enum arch a;
        const char *const *kv;
        int f, t;
    } cases[] = {
        {ARCH_CPRESNET, (const char *[]){"width", "4", NULL}, 17, 17},
        {ARCH_CPRESNET, (const char *[]){"width", "4", "blocks", "1,0,2", NULL}, 5, 5},
        {ARCH_CPRESNET, (const char *[]){"width", "4", "blocks", "0,2,2", NULL}, 3, 3},
        {ARCH_SEPNET, (const char *[]){"channels", "4,4", "mels", "4", NULL}, 4, 4},
        {ARCH_SEPNET, (const char *[]){"mels", "16", NULL}, 16, 16},
        {ARCH_CNN10, (const char *[]){"width", "0.0625", "mels", "16", NULL}, 16, 16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        m = make(cases[i].a, cases[i].kv);
        REQUIRE(m);
        REQUIRE_OK(model_min_input(&m->cfg, &f, &t));
        EXPECT_MSG(f == cases[i].f && t == cases[i].t, "case %zu: min %d x %d, expected %d x %d", i,
                   f, t, cases[i].f, cases[i].t);
        int mf = cases[i].a == ARCH_CPRESNET ? f : m->cfg.mels; /* bn0 fixes F */
        REQUIRE_OK(model_describe(m, mf, t, rows, &n, &s));
        EXPECT_EQ_INT(model_describe(m, mf, t - 1, rows, &n, &s), t > 1 ? STATUS_MISMATCH : STATUS_INVALID);
        if (cases[i].a == ARCH_CPRESNET && f > 1)
            EXPECT_EQ_INT(model_describe(m, f - 1, t, rows, &n, &s), STATUS_MISMATCH);
        char want[64];
        snprintf(want, sizeof want, "(the model takes inputs of at least %d x %d)", f, t);
        EXPECT_MSG(strstr(status_detail(), want), "case %zu: %s", i, status_detail());
        model_destroy(m);
    }
}

/* sepnet and cnn10 fix F at mels: a mels no input could pass the pools is refused, with
 * the minimum computed from the network. */
static void test_mels_below_the_pools_are_refused(void)
{
    struct model_config c;
    model_config_default(&c, ARCH_CNN10);
    REQUIRE_OK(model_config_set(&c, "mels", "1"));
    EXPECT_EQ_INT(model_config_validate(&c), STATUS_INVALID);
    EXPECT_STR(status_detail(), "cnn10: mels=1 is too small: the network's pools need at least 16 mel bins");
    REQUIRE_OK(model_config_set(&c, "mels", "15"));
    EXPECT_EQ_INT(model_config_validate(&c), STATUS_INVALID);
    REQUIRE_OK(model_config_set(&c, "mels", "16"));
    REQUIRE_OK(model_config_validate(&c));
    model_config_default(&c, ARCH_SEPNET);
    REQUIRE_OK(model_config_set(&c, "channels", "8,8,8"));
    REQUIRE_OK(model_config_set(&c, "mels", "7"));
    EXPECT_EQ_INT(model_config_validate(&c), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "at least 8 mel bins") != NULL);
    REQUIRE_OK(model_config_set(&c, "mels", "8"));
    REQUIRE_OK(model_config_validate(&c));
}

struct calls {
    long n, last_done, last_total, cancel_at;
    char label[16];
};

static int count_calls(void *user, const char *label, long done, long total)
{
    struct calls *c = user;
    c->n++;
    c->last_done = done, c->last_total = total;
    snprintf(c->label, sizeof c->label, "%s", label);
    return !(c->cancel_at && c->n >= c->cancel_at);
}

/* Creating a large model reports progress and can be cancelled; the weights do not depend
 * on the progress chunks. Small models make no reports. A model costs 8 bytes a parameter
 * until it trains. */
static void test_create_progress_cancel_and_store_size(void)
{
    struct model_config c;
    model_config_default(&c, ARCH_CNN10);
    REQUIRE_OK(model_config_set(&c, "width", "1.5")); /* 11 M parameters */
    struct calls k = {0, 0, 0, 0, ""};
    struct progress p = {count_calls, &k};
    struct model *a, *b;
    REQUIRE_OK(model_create_progress(&a, &c, 7, &p));
    long np = graph_param_count(a->g);
    EXPECT(k.n >= 2);
    EXPECT_STR(k.label, "model");
    EXPECT(k.last_done == np && k.last_total == np);
    EXPECT(a->g->store.g == NULL && a->g->store.m == NULL && a->g->store.v == NULL);
    REQUIRE_OK(model_create(&b, &c, 7));
    EXPECT(memcmp(a->g->store.w, b->g->store.w, (size_t)np * sizeof(float)) == 0);
    model_destroy(b);
    model_destroy(a);
    k = (struct calls){0, 0, 0, 1, ""};
    a = (struct model *)1;
    EXPECT_EQ_INT(model_create_progress(&a, &c, 7, &p), STATUS_CANCELLED);
    EXPECT(a == NULL);
    k = (struct calls){0, 0, 0, 0, ""};
    model_config_default(&c, ARCH_CPRESNET);
    REQUIRE_OK(model_create_progress(&a, &c, 7, &p));
    EXPECT_EQ_INT(k.n, 0);
    /* the estimate used before allocating, from the layout alone */
    struct graph *layout;
    REQUIRE_OK(model_build_layout(&layout, &c));
    EXPECT(layout->store.w == NULL);
    EXPECT_EQ_INT(graph_store_bytes(layout, 0), 8L * 3563412 + 4L * a->g->store.n_buffers);
    REQUIRE_OK(model_check_memory(&c, layout, 1));
    graph_destroy(layout);
    model_destroy(a);
}

const struct test tests_model[] = {
    TEST(test_param_counts_match_reference),
    TEST(test_sepnet_state_dict_and_folded_counts),
    TEST(test_tensor_names_and_shapes),
    TEST(test_rho_table),
    TEST(test_receptive_field_and_macs),
    TEST(test_config_errors),
    TEST(test_receptive_field_rows_and_total_agree),
    TEST(test_min_input_and_too_small_messages),
    TEST(test_mels_below_the_pools_are_refused),
    TEST(test_create_progress_cancel_and_store_size),
    {0},
};
