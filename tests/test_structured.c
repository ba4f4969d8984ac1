/* test_structured.c: structured filter pruning (model/structured.h): both budgets met with
 * counts equal to a model built directly at the smaller widths and to a hand count, the
 * smaller model's logits equal to the masked model's, its file round trip, refusals, and
 * the command. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/graph.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/model/model.h"
#include "basin/model/predict.h"
#include "basin/model/structured.h"
#include "test.h"
#include "util.h"

/* Parameters of a cpresnet config from its widths, by hand (convs are bias-free; BN has
 * gamma and beta; projections at the first block of stages 2 and 3 when custom). */
static long hand_params(const struct model_config *c)
{
    int ks[3][4][2];
    cpresnet_kernels(c->rho, ks);
    long n = 0;
    int ci = c->stages[0] ? c->stages[0] : c->width;
    n += (long)c->in_ch * ci * 25 + 2 * ci;
    for (int s = 0, k = 0; s < 3; s++) {
        int co = c->stages[s] ? c->stages[s] : c->width << s;
        for (int b = 0; b < c->blocks[s]; b++, k++) {
            int mid = c->inner[k] ? c->inner[k] : co, k1 = ks[s][b][0], k2 = ks[s][b][1];
            n += (long)ci * mid * k1 * k1 + 2 * mid + (long)mid * co * k2 * k2 + 2 * co;
            if (s > 0 && b == 0) n += (long)ci * co + 2 * co;
            ci = co;
        }
    }
    return n + (long)ci * c->classes + 2 * c->classes;
}

static float *run(struct model *m, int n, int f, int t, uint64_t seed)
{
    long nx = (long)n * m->cfg.in_ch * f * t;
    float *x = malloc(sizeof(float) * (size_t)nx), *l = malloc(sizeof(float) * (size_t)(n * m->cfg.classes));
    struct rng r;
    rng_seed(&r, seed);
    rng_fill_normal(&r, x, nx, 0, 1);
    if (model_predict(m, n, m->cfg.in_ch, f, t, x, l)) {
        free(l);
        l = NULL;
    }
    free(x);
    return l;
}

/* Budgets at several levels on the default model: both met, the counts those of a model
 * built at the new widths and of the hand count; the smaller model computes what the
 * masked one computes. */
static void test_budgets_exact_and_equal_logits(void)
{
    const int F = 64, T = 100;
    const double fr[][2] = {{0.5, -1}, {-1, 0.6}, {0.7, 0.4}, {0.3, 0.5}};
    for (int c = 0; c < 4; c++) {
        struct model *m;
        REQUIRE_OK(model_load(&m, "assets/default-model.safetensors"));
        struct structured_plan p0;
        REQUIRE_OK(structured_search(m, -1, -1, F, T, &p0));
        EXPECT_EQ_INT(p0.n_removed, 0);
        double A = fr[c][0] < 0 ? -1 : fr[c][0] * p0.macs_before;
        long B = fr[c][1] < 0 ? -1 : (long)(fr[c][1] * (double)p0.params_before);
        structured_plan_fini(&p0);
        struct structured_plan p;
        REQUIRE_OK(structured_search(m, A, B, F, T, &p));
        EXPECT(p.n_removed > 0);
        if (A >= 0) EXPECT_MSG(p.macs_after <= A, "case %d: %g MACs > %g", c, p.macs_after, A);
        if (B >= 0) EXPECT_MSG(p.params_after <= B, "case %d: %ld params > %ld", c, p.params_after, B);
        struct model *direct;
        REQUIRE_OK(model_create(&direct, &p.cfg, 3));
        EXPECT_EQ_INT(graph_param_count(direct->g), p.params_after);
        EXPECT_EQ_INT(hand_params(&p.cfg), p.params_after);
        struct layer_row *rows = calloc((size_t)direct->g->n_nodes, sizeof *rows);
        struct model_summary sum;
        int n_rows;
        REQUIRE_OK(model_describe(direct, F, T, rows, &n_rows, &sum));
        EXPECT_NEAR(sum.macs, p.macs_after, 0);
        free(rows);
        model_destroy(direct);

        struct model *small;
        REQUIRE_OK(structured_extract(m, &p, &small));
        EXPECT_EQ_INT(graph_param_count(small->g), p.params_after);
        structured_apply(m, &p);
        float *lm = run(m, 3, F, T, 5), *ls = run(small, 3, F, T, 5);
        REQUIRE(lm && ls);
        double scale = 0;
        for (int i = 0; i < 30; i++) scale = fmax(scale, fabs(lm[i]));
        EXPECT_TENSOR_NEAR(ls, lm, 30, 1e-5 * scale, 1e-5);
        free(lm);
        free(ls);
        model_destroy(small);
        structured_plan_fini(&p);
        model_destroy(m);
    }
}

/* The smaller model saves and loads with its widths and gives the same logits; a random
 * 3-block model (projections, 1-block stages) prunes consistently too. */
static void test_small_model_round_trip(void)
{
    struct model_config c;
    model_config_default(&c, ARCH_CPRESNET);
    REQUIRE_OK(model_config_set(&c, "width", "6"));
    REQUIRE_OK(model_config_set(&c, "blocks", "1,2,1"));
    struct model *m;
    REQUIRE_OK(model_create(&m, &c, 17));
    /* Fixup zeroes some convs: draw every weight so the norms differ */
    struct rng r;
    rng_seed(&r, 8);
    rng_fill_normal(&r, m->g->store.w, m->g->store.n_params, 0, 0.3f);
    struct structured_plan p;
    REQUIRE_OK(structured_search(m, -1, graph_param_count(m->g) / 2, 40, 40, &p));
    struct model *small;
    REQUIRE_OK(structured_extract(m, &p, &small));
    structured_apply(m, &p);
    const char *path = test_path("structured.safetensors");
    REQUIRE_OK(model_save(small, path, 0, NULL));
    struct model *back;
    REQUIRE_OK(model_load(&back, path));
    EXPECT(memcmp(back->cfg.inner, p.cfg.inner, sizeof p.cfg.inner) == 0);
    EXPECT(memcmp(back->cfg.stages, p.cfg.stages, sizeof p.cfg.stages) == 0);
    float *a = run(m, 2, 40, 40, 2), *b = run(back, 2, 40, 40, 2);
    REQUIRE(a && b);
    EXPECT_TENSOR_NEAR(b, a, 20, 1e-5, 1e-5);
    free(a);
    free(b);
    model_destroy(back);
    model_destroy(small);
    structured_plan_fini(&p);
    model_destroy(m);
}

static void test_refusals(void)
{
    struct model *m;
    struct structured_plan p;
    REQUIRE_OK(model_load(&m, "tests/data/models/sepnet.safetensors"));
    EXPECT_EQ_INT(structured_search(m, 1e6, -1, 64, 64, &p), STATUS_UNSUPPORTED);
    model_destroy(m);
    REQUIRE_OK(model_load(&m, "tests/data/models/cpresnet.safetensors")); /* groups=2 */
    EXPECT_EQ_INT(structured_search(m, 1e6, -1, 64, 64, &p), STATUS_UNSUPPORTED);
    EXPECT(strstr(status_detail(), "groups=2") != NULL);
    model_destroy(m);
    REQUIRE_OK(model_load(&m, "assets/default-model.safetensors"));
    EXPECT_EQ_INT(structured_search(m, 10, -1, 64, 64, &p), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "one channel per layer") != NULL);
    model_destroy(m);
}

static void test_structured_command(void)
{
    struct cli_output o = cli_run("load assets/default-model.safetensors\nprune structured macs=50% params=8k\ninfo\n");
    EXPECT_EQ_INT(o.n_errors, 0);
    EXPECT_MSG(strstr(o.out, "largest difference 0 ") != NULL, "%s", o.out);
    EXPECT(strstr(o.out, "faster") != NULL);
    EXPECT(strstr(o.out, "stages=8,16,32 inner=") != NULL);
    o = cli_run("load assets/default-model.safetensors\nprune magnitude macs=50%\n");
    EXPECT_EQ_INT(o.n_errors, 1);
}

const struct test tests_structured[] = {
    TEST(test_budgets_exact_and_equal_logits),
    TEST(test_small_model_round_trip),
    TEST(test_refusals),
    TEST(test_structured_command),
    {0},
};
