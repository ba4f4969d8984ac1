/* test_prune.c: pruning masks and unstructured pruning (model/prune.h): masks through
 * save/load and into the gradient, dense models without a trace of them, magnitude pruning
 * at exact sparsity under caps, the ramps, static random pruning exact and seeded. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/graph.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/model/model.h"
#include "basin/model/prune.h"
#include "basin/model/safetensors.h"
#include "basin/core/mem.h"
#include "basin/data/features.h"
#include "basin/train/train.h"
#include "test.h"
#include "util.h"

/* A small CP-ResNet: width 8, one block per stage, 4 classes. */
static struct model *small_model(uint64_t seed)
{
    struct model_config c;
    model_config_default(&c, ARCH_CPRESNET);
    if (model_config_set(&c, "width", "8") || model_config_set(&c, "blocks", "1,1,1") ||
        model_config_set(&c, "classes", "4"))
        return NULL;
    struct model *m;
    return model_create(&m, &c, seed) ? NULL : m;
}

static long masked_in(const struct graph *g, int tensor)
{
    const struct graph_tensor *t = &g->tensors[tensor];
    long n = 0;
    for (long j = 0; j < t->numel; j++) n += g->store.mask[t->offset + j] == 0;
    return n;
}

static long masked_all(const struct graph *g)
{
    long n = 0;
    for (int i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].kind == TENSOR_WEIGHT) n += masked_in(g, i);
    return n;
}

static void fill_input(float *x, long n, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    rng_fill_normal(&r, x, n, 0, 1);
}

/* A pruned model's file holds prune.<name>.mask for every weight and loads pruned, masks
 * bit for bit; a dense model's file holds none and loads dense. */
static void test_masks_survive_save_load(void)
{
    struct model *m = small_model(3);
    REQUIRE(m);
    const char *dense = test_path("dense.safetensors"), *pruned = test_path("pruned.safetensors");
    REQUIRE_OK(model_save(m, dense, 0, NULL));
    struct st_file *f;
    REQUIRE_OK(st_load(dense, &f));
    int n_masks = 0;
    for (int i = 0; i < st_count(f); i++) n_masks += !strncmp(st_tensor_at(f, i)->name, "prune.", 6);
    EXPECT_EQ_INT(n_masks, 0);
    st_destroy(f);

    long target = graph_param_count(m->g) / 3;
    REQUIRE_OK(prune_random(m->g, target, 11));
    REQUIRE_OK(model_save(m, pruned, 0, NULL));
    REQUIRE_OK(st_load(pruned, &f));
    n_masks = 0;
    for (int i = 0; i < st_count(f); i++) n_masks += !strncmp(st_tensor_at(f, i)->name, "prune.", 6);
    int n_weights = 0;
    for (int i = 0; i < m->g->n_tensors; i++) n_weights += m->g->tensors[i].kind == TENSOR_WEIGHT;
    EXPECT_EQ_INT(n_masks, n_weights);
    st_destroy(f);

    struct model *b;
    REQUIRE_OK(model_load(&b, pruned));
    EXPECT(b->g->masked);
    EXPECT(memcmp(b->g->store.mask, m->g->store.mask, (size_t)m->g->store.n_params * sizeof(float)) == 0);
    EXPECT_EQ_INT(prune_kept_params(b->g), target);
    model_destroy(b);
    REQUIRE_OK(model_load(&b, dense));
    EXPECT(!b->g->masked);
    model_destroy(b);
    model_destroy(m);
}

/* The masked forward equals the forward of the weights with the pruned ones set to 0, and
 * the gradient of every pruned weight is exactly 0 while the kept ones get theirs. */
static void test_masks_zero_gradient_and_match_hard_zeros(void)
{
    struct model *m = small_model(5), *z = small_model(5);
    REQUIRE(m && z);
    REQUIRE_OK(prune_random(m->g, graph_param_count(m->g) / 2, 2));
    for (long i = 0; i < m->g->store.n_params; i++) z->g->store.w[i] *= m->g->store.mask[i];
    const int N = 2, F = 40, T = 40;
    long nx = (long)N * F * T;
    float *x = malloc((size_t)nx * sizeof *x), dl[8];
    fill_input(x, nx, 9);
    for (int i = 0; i < 8; i++) dl[i] = (float)(i % 3) - 0.7f;
    struct plan *pm, *pz;
    REQUIRE_OK(plan_create(&pm, m->g, N, 1, F, T, PLAN_BACKWARD));
    REQUIRE_OK(plan_create(&pz, z->g, N, 1, F, T, PLAN_BACKWARD));
    REQUIRE_OK(plan_forward(pz, N, x, 0, NULL));
    REQUIRE_OK(plan_forward(pm, N, x, 0, NULL));
    EXPECT_TENSOR_NEAR(plan_output(pm), plan_output(pz), N * 4, 1e-6, 1e-5);
    /* training-mode passes of both, then the gradients: the kept weights get the hard-zero
     * model's gradient, the pruned ones exactly 0 (the hard-zero model's are not 0) */
    REQUIRE_OK(plan_forward(pm, N, x, 1, NULL));
    REQUIRE_OK(plan_backward(pm, dl, NULL));
    REQUIRE_OK(plan_forward(pz, N, x, 1, NULL));
    REQUIRE_OK(plan_backward(pz, dl, NULL));
    long zero_pruned = 0, n_pruned = 0, nonzero_hard = 0, n_kept = 0, same_kept = 0;
    const struct store *s = &m->g->store, *sz = &z->g->store;
    double scale = 0;
    for (long j = 0; j < s->n_params; j++) scale = fmax(scale, fabs(sz->g[j]));
    for (int i = 0; i < m->g->n_tensors; i++) {
        const struct graph_tensor *t = &m->g->tensors[i];
        if (t->kind != TENSOR_WEIGHT) continue;
        for (long j = t->offset; j < t->offset + t->numel; j++) {
            if (s->mask[j] == 0) {
                n_pruned++, zero_pruned += s->g[j] == 0.0f, nonzero_hard += sz->g[j] != 0.0f;
            } else {
                n_kept++, same_kept += fabs(s->g[j] - sz->g[j]) <= 1e-5 * scale;
            }
        }
    }
    EXPECT(n_pruned > 0);
    EXPECT_EQ_INT(zero_pruned, n_pruned);
    EXPECT(nonzero_hard > 0);
    EXPECT_EQ_INT(same_kept, n_kept);
    plan_destroy(pm);
    plan_destroy(pz);
    free(x);
    model_destroy(m);
    model_destroy(z);
}

/* Global: exactly round(p N) pruned; the classifier, made the smallest so the ranking
 * would take all of it, stops at its cap and the others make up the count. */
static void test_magnitude_global_exact_under_cap(void)
{
    struct model *m = small_model(7);
    REQUIRE(m);
    struct graph *g = m->g;
    int cls = prune_classifier_tensor(g);
    REQUIRE(cls >= 0);
    const struct graph_tensor *ct = &g->tensors[cls];
    /* Fixup leaves some convs at 0: draw every weight so the ranking is by these values */
    fill_input(g->store.w, g->store.n_params, 21);
    for (long j = 0; j < ct->numel; j++) g->store.w[ct->offset + j] = 1e-6f * (float)(j + 1);
    double *caps = malloc((size_t)g->n_tensors * sizeof *caps);
    prune_caps_default(g, PRUNE_CLASSIFIER_CAP, caps);
    long N = prune_prunable(g);
    for (double p = 0.1; p < 0.95; p += 0.2) {
        REQUIRE_OK(prune_magnitude(g, p, PRUNE_GLOBAL, caps));
        EXPECT_EQ_INT(masked_all(g), lround(p * (double)N));
        EXPECT(masked_in(g, cls) <= ct->numel / 2);
        EXPECT_EQ_INT(masked_in(g, cls), ct->numel / 2 < lround(p * (double)N) ? ct->numel / 2
                                                                                : lround(p * (double)N));
        /* every kept uncapped weight is at least as large as every pruned uncapped one */
        float max_pruned = 0, min_kept = INFINITY;
        for (int i = 0; i < g->n_tensors; i++) {
            const struct graph_tensor *t = &g->tensors[i];
            if (t->kind != TENSOR_WEIGHT || i == cls) continue;
            for (long j = t->offset; j < t->offset + t->numel; j++) {
                float a = fabsf(g->store.w[j]);
                if (g->store.mask[j] == 0) max_pruned = fmaxf(max_pruned, a);
                else min_kept = fminf(min_kept, a);
            }
        }
        EXPECT(max_pruned <= min_kept);
    }
    /* uncapped, the tiny classifier goes entirely at 90 % */
    REQUIRE_OK(prune_magnitude(g, 0.9, PRUNE_GLOBAL, NULL));
    EXPECT_EQ_INT(masked_in(g, cls), ct->numel);
    free(caps);
    model_destroy(m);
}

/* Per layer: each tensor exactly round(p numel), the classifier capped. */
static void test_magnitude_layer_exact(void)
{
    struct model *m = small_model(8);
    REQUIRE(m);
    struct graph *g = m->g;
    double *caps = malloc((size_t)g->n_tensors * sizeof *caps);
    prune_caps_default(g, 0.25, caps);
    int cls = prune_classifier_tensor(g);
    REQUIRE_OK(prune_magnitude(g, 0.6, PRUNE_LAYER, caps));
    for (int i = 0; i < g->n_tensors; i++) {
        const struct graph_tensor *t = &g->tensors[i];
        if (t->kind != TENSOR_WEIGHT) continue;
        long want = i == cls ? (long)floor(0.25 * (double)t->numel) : lround(0.6 * (double)t->numel);
        EXPECT_MSG(masked_in(g, i) == want, "%s: %ld masked, want %ld", t->name, masked_in(g, i), want);
    }
    free(caps);
    model_destroy(m);
}

/* Masks are recomputed from all weights: a pruned weight that grew comes back. */
static void test_magnitude_revives(void)
{
    struct model *m = small_model(9);
    REQUIRE(m);
    struct graph *g = m->g;
    REQUIRE_OK(prune_magnitude(g, 0.5, PRUNE_GLOBAL, NULL));
    long j = -1;
    for (long i = 0; i < g->store.n_params && j < 0; i++)
        if (g->store.mask[i] == 0) j = i;
    REQUIRE(j >= 0);
    g->store.w[j] = 100;
    REQUIRE_OK(prune_magnitude(g, 0.5, PRUNE_GLOBAL, NULL));
    EXPECT(g->store.mask[j] == 1);
    EXPECT_EQ_INT(masked_all(g), lround(0.5 * (double)prune_prunable(g)));
    model_destroy(m);
}

static void test_ramps(void)
{
    EXPECT_NEAR(prune_ramp_at(PRUNE_RAMP_LINEAR, 0, 50), 0, 0);
    EXPECT_NEAR(prune_ramp_at(PRUNE_RAMP_LINEAR, 25, 50), 0.5, 1e-15);
    EXPECT_NEAR(prune_ramp_at(PRUNE_RAMP_LINEAR, 80, 50), 1, 0);
    EXPECT_NEAR(prune_ramp_at(PRUNE_RAMP_EXP, 0, 50), exp(-1.0), 1e-15);
    EXPECT_NEAR(prune_ramp_at(PRUNE_RAMP_EXP, 25, 50), exp(-0.125), 1e-15);
    EXPECT_NEAR(prune_ramp_at(PRUNE_RAMP_EXP, 50, 50), 1, 0);
}

/* Random: kept parameters exactly the target, spread in proportion, the same masks for
 * the same seed and others for another. */
static void test_random_exact_and_seeded(void)
{
    struct model *m = small_model(4);
    REQUIRE(m);
    struct graph *g = m->g;
    long total = graph_param_count(g), N = prune_prunable(g);
    long target = total - N / 3 - 17;
    REQUIRE_OK(prune_random(g, target, 42));
    EXPECT_EQ_INT(prune_kept_params(g), target);
    for (int i = 0; i < g->n_tensors; i++) {
        const struct graph_tensor *t = &g->tensors[i];
        if (t->kind != TENSOR_WEIGHT) continue;
        double share = (double)(total - target) * (double)t->numel / (double)N;
        EXPECT(fabs((double)masked_in(g, i) - share) < 1.0);
    }
    size_t bytes = (size_t)g->store.n_params * sizeof(float);
    float *first = malloc(bytes);
    memcpy(first, g->store.mask, bytes);
    REQUIRE_OK(prune_random(g, target, 42));
    EXPECT(memcmp(first, g->store.mask, bytes) == 0);
    REQUIRE_OK(prune_random(g, target, 43));
    EXPECT(memcmp(first, g->store.mask, bytes) != 0);
    EXPECT_EQ_INT(prune_kept_params(g), target);
    EXPECT_EQ_INT(prune_random(g, total + 1, 1), STATUS_INVALID);
    EXPECT_EQ_INT(prune_random(g, total - N - 1, 1), STATUS_INVALID);
    double p;
    REQUIRE_OK(prune_fraction_for(g, total - N / 2, &p));
    EXPECT_NEAR(p, (double)(N / 2) / (double)N, 1e-12);
    free(first);
    model_destroy(m);
}

/* ----------------------------------------------------------------------------- training */

/* n clips (1, f, t) of noise with a class band, labels i % m (as test_train.c's). */
static struct features *noise_feats(int n, int f, int t, int m, uint64_t seed)
{
    struct features *x = mem_calloc(1, sizeof *x);
    x->n = n, x->n_channels = 1, x->n_mels = f, x->n_frames = t, x->n_classes = m;
    long clip = (long)f * t;
    x->x = mem_alloc(sizeof(float) * (size_t)(n * clip));
    x->labels = mem_alloc(sizeof(int) * (size_t)n);
    x->items = mem_alloc(sizeof(int) * (size_t)n);
    fill_input(x->x, n * clip, seed);
    for (int i = 0; i < n; i++) {
        x->labels[i] = i % m, x->items[i] = i;
        for (int b = i % m; b < f; b += m)
            for (int j = 0; j < t; j++) x->x[i * clip + (long)b * t + j] += 1.0f;
    }
    return x;
}

struct prune_watch {
    const struct model *m;
    long masked[8];         /* by epoch (1-based): masked weights during it */
    float *w_epoch3;        /* the weights after the first step of epoch 3 */
    int bad;                /* the count changed within an epoch */
};

static int watch_step(void *user, const struct train_step_report *r)
{
    struct prune_watch *w = user;
    long n = masked_all(w->m->g);
    if (r->batch == 1) w->masked[r->epoch] = n;
    else if (w->masked[r->epoch] != n) w->bad = 1;
    if (r->epoch == 3 && r->batch == 1)
        memcpy(w->w_epoch3, w->m->g->store.w, (size_t)w->m->g->store.n_params * sizeof(float));
    return TRAIN_GO_ON;
}

/* train prune=0.5 over a linear ramp of 2 epochs: epoch 1 dense, epoch 2 exactly a
 * quarter, epoch 3 exactly half of the prunable weights pruned, fixed within each epoch;
 * pruned weights do not move; the model saves and reloads pruned. */
static void test_training_prunes_on_the_ramp(void)
{
    struct model *m = small_model(12);
    REQUIRE(m);
    struct features *f = noise_feats(12, 24, 24, 4, 3);
    struct train_opts o;
    train_opts_default(&o);
    o.epochs = 3, o.batch.batch_size = 4, o.threads = 2, o.eval = 0;
    o.optim.lr = 1e-2f;
    o.prune.target = 0.5, o.prune.ramp_epochs = 2;
    struct prune_watch w = {.m = m};
    w.w_epoch3 = malloc((size_t)m->g->store.n_params * sizeof(float));
    struct trainer *t;
    REQUIRE_OK(train_create(&t, m, f, NULL, NULL, &o, NULL, NULL));
    struct train_callbacks cb = {watch_step, NULL, &w};
    REQUIRE_OK(train_run(t, &cb, NULL));
    train_destroy(t);
    long N = prune_prunable(m->g);
    EXPECT_EQ_INT(w.masked[1], 0);
    EXPECT_EQ_INT(w.masked[2], lround(0.25 * (double)N));
    EXPECT_EQ_INT(w.masked[3], lround(0.5 * (double)N));
    EXPECT(!w.bad);
    long moved = 0;
    for (long j = 0; j < m->g->store.n_params; j++)
        if (m->g->store.mask[j] == 0) moved += m->g->store.w[j] != w.w_epoch3[j];
    EXPECT_EQ_INT(moved, 0);
    /* the options travel in checkpoints */
    char *json;
    struct train_opts back;
    REQUIRE_OK(train_opts_to_json(&o, &json));
    REQUIRE_OK(train_opts_from_json(&back, json, "test"));
    EXPECT_NEAR(back.prune.target, 0.5, 0);
    EXPECT_EQ_INT(back.prune.ramp_epochs, 2);
    mem_free(json);
    o.prune.target_params = 1000;
    EXPECT_EQ_INT(train_opts_validate(&o), STATUS_INVALID);
    free(w.w_epoch3);
    features_destroy(f);
    model_destroy(m);
}

/* The command: magnitude to a fraction, random to a count, the table's total line, new
 * with sparse=, and one-line errors. */
static void test_prune_command(void)
{
    struct cli_output o = cli_run("load tests/data/models/cpresnet.safetensors\n"
                                  "prune magnitude target=0.5\n");
    EXPECT_EQ_INT(o.n_errors, 0);
    EXPECT(strstr(o.out, "head.conv") != NULL);
    EXPECT(strstr(o.out, "(50.00% of the 3,824 prunable weights pruned)") != NULL);
    o = cli_run("load tests/data/models/cpresnet.safetensors\nprune random params=2000 seed=5\n");
    EXPECT_EQ_INT(o.n_errors, 0);
    EXPECT(strstr(o.out, "total: 2,000 of 4,266 parameters kept") != NULL);
    o = cli_run("new cpresnet width=16 blocks=1,1,1 sparse=3000 seed=2\n");
    EXPECT_EQ_INT(o.n_errors, 0);
    EXPECT(strstr(o.out, "(3,000 kept by the pruning masks)") != NULL);
    /* the prune view: a bar per layer with its sparsity, and the total */
    o = cli_run("load tests/data/models/cpresnet.safetensors\nprune magnitude target=0.5 scope=layer cap=1\n"
                "view prune\n");
    EXPECT_EQ_INT(o.n_errors, 0);
    const char *view = strstr(o.out, "prune: magnitude (layer)");
    view = view ? strstr(view + 1, "prune: magnitude (layer)") : NULL;   /* the view's title, after the table's */
    EXPECT_MSG(view && strstr(view, "s3.b1.proj.conv") && strstr(view, "#####") && strstr(view, "50.0%"), "%s", o.out);
    o = cli_run("load tests/data/models/cpresnet.safetensors\nprune magnitude target=1.5\n");
    EXPECT_EQ_INT(o.n_errors, 1);
    EXPECT(strstr(o.err, "target=1.5") != NULL && count_char(o.err, '\n') == 1);
    o = cli_run("load tests/data/models/cpresnet.safetensors\nprune magnitude params=10\n");
    EXPECT_EQ_INT(o.n_errors, 1);
    EXPECT(strstr(o.err, "params=10") != NULL);
}

const struct test tests_prune[] = {
    TEST(test_masks_survive_save_load),
    TEST(test_masks_zero_gradient_and_match_hard_zeros),
    TEST(test_magnitude_global_exact_under_cap),
    TEST(test_magnitude_layer_exact),
    TEST(test_magnitude_revives),
    TEST(test_ramps),
    TEST(test_random_exact_and_seeded),
    TEST(test_prune_command),
    TEST(test_training_prunes_on_the_ramp),
    {0},
};
