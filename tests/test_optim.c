/* test_optim.c: SGD, Adam and AdamW against torch.optim 1.13, masks, validation, threads.
 *
 * The reference weights come from 5 steps of each PyTorch optimiser on the same float32
 * start vector and gradient sequence. optim.c replicates PyTorch's operations and roundings,
 * so beyond the 1e-6 relative tolerance the weights are expected to be bit-identical. */
#include <math.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/optim.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "test.h"

enum { NW = 20, NSTEPS = 5 };

/* Printed by `/usr/bin/python3 tests/data/optim/make_ref.py` (torch 1.13, foreach=False,
 * float32 parameters), pasted verbatim: start weights w0 (NW), gradients (NSTEPS, NW), and
 * the weights after NSTEPS steps of each configuration. */
static const float w0[20] = {0.255600005, -2.02320004, -1.86409998, 0, 1.55630004, -0.170599997, 0.188099995, 2.02449989, 1.15639997, 1.58840001, -1.24860001, 1.50440001, 1.13440001, -0.0926999971, 0.423400015, -0.607900023, 0.286000013, -0.699000001, 3.34559989, -1.41550004};
static const float grads[100] = {-0.121100001, 0.611199975, 0, -0.656000018, -0.31400001, -0.130999997, 0.712100029, -0.202000007, -0.8398, -0.414200008, 0.838500023, -0.281300008, 0.0474999994, 0.0810000002, -0.110399999, 0.479400009, 0.334699988, 0.640799999, -1.14839995, -0.0869999975, 0.406800002, -1.17630005, -0.0529000014, 0.298200011, 0.378100008, -0.493999988, -1.02139997, 0.408100009, -0.518999994, 0.36649999, 0.697300017, -0.554400027, -0.386999995, -0.435400009, 0.136199996, -0.442999989, 0.0364000015, 0, 0.0176999997, 0.586099982, 0.225600004, 1.15209997, 0.152899995, 0.455900013, 0.4102, -0.428900003, -1.2299, 0.196899995, 0.247999996, 0.536300004, -0.300399989, -0.405800015, -0.251100004, 0.654100001, -0.279599994, -0.452899992, 0.69630003, -0.0913000032, 0.0414999984, -0.748600006, 0.264400005, -0.636500001, -0.111100003, 0.381399989, 0, -0.799700022, -0.247600004, -0.907800019, -0.299600005, -0.441100001, -0.629400015, 0.408100009, 0.0852999985, -0.0839999989, 0.91960001, -0.236300007, 0.296299994, 0.236100003, -0.48969999, -0.127599999, 0.300700009, -0.524800003, 0.349599987, -0.515200019, -0.409500003, 0, -1.23119998, 0.559499979, 0.357800007, 0.873399973, -0.101000004, 0.883099973, -0.314799994, -0.640999973, -0.241099998, 0.889500022, 0.393000007, -0.0197000001, 0.346899986, -0.115099996};
static const float ref_sgd_plain[20] = {0.147959992, -1.96577024, -1.89795005, 0.00356999924, 1.54982007, 0.0147600034, 0.489900023, 2.01902986, 1.2616601, 1.49631011, -1.29910004, 1.49943006, 1.21640992, -0.0501700044, 0.380930007, -0.631569982, 0.110330008, -0.775590003, 3.46880007, -1.36627996};
static const float ref_sgd_momentum[20] = {0.0238495506, -2.0077672, -1.90119457, 0.0215926729, 1.48464334, 0.321107328, 0.751214206, 2.03004766, 1.63272655, 1.48311138, -1.62068129, 1.75437629, 1.33135867, -0.0733373463, 0.346928328, -0.573188543, -0.147875234, -0.979560733, 3.85690069, -1.34280789};
static const float ref_sgd_dampening[20] = {0.164520621, -2.14062977, -1.88264728, 0.145115629, 1.58476484, 0.102076568, 0.323851079, 2.06863427, 1.5665164, 1.6205653, -1.60632765, 1.68698573, 1.22315335, -0.0996038243, 0.407769114, -0.688703775, 0.000530876452, -0.970487356, 3.83639097, -1.36134017};
static const float ref_sgd_nesterov[20] = {-0.060615398, -1.95188046, -1.93133509, 0.0230034143, 1.48532903, 0.45729658, 0.99670279, 2.02402258, 1.69035399, 1.40155041, -1.633973, 1.72440839, 1.39367282, -0.0327435918, 0.312105536, -0.600329697, -0.280157715, -1.02809465, 3.92897058, -1.30085695};
static const float ref_sgd_wd[20] = {0.142357603, -1.91540468, -1.85179317, 0.00335832988, 1.51164985, 0.0171575509, 0.483782738, 1.96887147, 1.23069358, 1.45703447, -1.26610482, 1.46060765, 1.18764102, -0.0477541424, 0.370615363, -0.61680311, 0.104812585, -0.756989896, 3.38353562, -1.33135307};
static const float ref_sgd_all[20] = {0.100680985, -1.84091175, -1.76545608, 0.00166975928, 1.41867268, 0.104903594, 0.535399139, 1.88314724, 1.27818108, 1.38791895, -1.29585183, 1.47034085, 1.16467524, -0.0564895123, 0.342045695, -0.563655734, 0.0279793199, -0.777746797, 3.33542085, -1.26257384};
static const float ref_adam[20] = {0.23811236, -2.02974534, -1.8648895, 0.00819647685, 1.55589831, -0.12499088, 0.198500082, 2.02840519, 1.19086623, 1.58987164, -1.2760607, 1.53652811, 1.15054166, -0.098393701, 0.430358052, -0.610810935, 0.243117839, -0.729447126, 3.37635517, -1.40494728};
static const float ref_adam_wd[20] = {0.236311883, -2.02180791, -1.82178116, 0.00813686661, 1.54256928, -0.124661848, 0.197901055, 1.99409091, 1.18527734, 1.57823813, -1.27038765, 1.52949703, 1.13538301, -0.0975520089, 0.423696965, -0.606168449, 0.242159143, -0.722943783, 3.35663629, -1.39479053};
static const float ref_adam_betas[20] = {0.159131259, -2.05101585, -1.87310672, 0.0301194545, 1.54970884, 0.0610813983, 0.251420528, 2.04184937, 1.31587422, 1.58606112, -1.3703984, 1.65403426, 1.2192359, -0.11842896, 0.451913059, -0.616246819, 0.0706131756, -0.840187907, 3.48794436, -1.35905612};
static const float ref_adamw[20] = {0.236833304, -2.01961637, -1.85560226, 0.00815383717, 1.54811072, -0.124234378, 0.19757767, 2.01828122, 1.18500972, 1.58191442, -1.26974797, 1.52892864, 1.14488065, -0.0979026034, 0.428204656, -0.607749999, 0.241777956, -0.725885391, 3.35958552, -1.39791107};
static const float ref_adamw_default[20] = {0.25383842, -2.02375293, -1.86408544, 0.000819604727, 1.55618191, -0.166030645, 0.189130604, 2.02478909, 1.15978885, 1.58846772, -1.25128353, 1.50753748, 1.13595748, -0.0932646915, 0.424074531, -0.608160675, 0.281697601, -0.702009618, 3.34850717, -1.41437387};

/* The configurations of make_ref.py's OPTIMS, in its order. */
struct config {
    const char *name;
    enum optim_kind kind;
    float lr, momentum, dampening;
    int nesterov;
    float weight_decay;
    float beta1, beta2, eps; /* 0: keep optim_init's default */
    const float *ref;
};

static const struct config configs[] = {
    {"sgd_plain", OPTIM_SGD, 0.1f, 0, 0, 0, 0, 0, 0, 0, ref_sgd_plain},
    {"sgd_momentum", OPTIM_SGD, 0.1f, 0.9f, 0, 0, 0, 0, 0, 0, ref_sgd_momentum},
    {"sgd_dampening", OPTIM_SGD, 0.1f, 0.9f, 0.5f, 0, 0, 0, 0, 0, ref_sgd_dampening},
    {"sgd_nesterov", OPTIM_SGD, 0.1f, 0.9f, 0, 1, 0, 0, 0, 0, ref_sgd_nesterov},
    {"sgd_wd", OPTIM_SGD, 0.1f, 0, 0, 0, 0.05f, 0, 0, 0, ref_sgd_wd},
    {"sgd_all", OPTIM_SGD, 0.05f, 0.8f, 0, 1, 0.1f, 0, 0, 0, ref_sgd_all},
    {"adam", OPTIM_ADAM, 0.01f, 0, 0, 0, 0, 0, 0, 0, ref_adam},
    {"adam_wd", OPTIM_ADAM, 0.01f, 0, 0, 0, 0.1f, 0, 0, 0, ref_adam_wd},
    {"adam_betas", OPTIM_ADAM, 0.05f, 0, 0, 0, 0, 0.8f, 0.99f, 1e-3f, ref_adam_betas},
    {"adamw", OPTIM_ADAMW, 0.01f, 0, 0, 0, 0.1f, 0, 0, 0, ref_adamw},
    {"adamw_default", OPTIM_ADAMW, 1e-3f, 0, 0, 0, 0.01f, 0, 0, 0, ref_adamw_default},
};

static void config_apply(const struct config *c, struct optim *o)
{
    optim_init(o, c->kind);
    o->lr = c->lr;
    o->momentum = c->momentum;
    o->dampening = c->dampening;
    o->nesterov = c->nesterov;
    o->weight_decay = c->weight_decay;
    if (c->beta1) o->beta1 = c->beta1;
    if (c->beta2) o->beta2 = c->beta2;
    if (c->eps) o->eps = c->eps;
}

static void test_optim_defaults_and_names(void)
{
    struct optim o;
    optim_init(&o, OPTIM_SGD);
    EXPECT(o.lr == 0.01f && o.momentum == 0 && o.dampening == 0 && !o.nesterov);
    EXPECT(o.weight_decay == 0 && o.step == 0);
    optim_init(&o, OPTIM_ADAM);
    EXPECT(o.lr == 1e-3f && o.beta1 == 0.9f && o.beta2 == 0.999f && o.eps == 1e-8f);
    EXPECT(o.weight_decay == 0);
    optim_init(&o, OPTIM_ADAMW);
    EXPECT(o.lr == 1e-3f && o.weight_decay == 0.01f && o.kind == OPTIM_ADAMW);
    EXPECT_EQ_INT(optim_validate(&o), 0);

    enum optim_kind k = OPTIM_SGD;
    EXPECT_EQ_INT(optim_kind_parse("adamw", &k), 0);
    EXPECT_EQ_INT(k, OPTIM_ADAMW);
    EXPECT_EQ_INT(optim_kind_parse("Adam", &k), 0);
    EXPECT_EQ_INT(k, OPTIM_ADAM);
    EXPECT_EQ_INT(optim_kind_parse("SGD", &k), 0);
    EXPECT_EQ_INT(k, OPTIM_SGD);
    EXPECT_EQ_INT(optim_kind_parse("rmsprop", &k), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "rmsprop") != NULL);
    EXPECT_EQ_INT(k, OPTIM_SGD);
    EXPECT_STR(optim_kind_name(OPTIM_SGD), "sgd");
    EXPECT_STR(optim_kind_name(OPTIM_ADAM), "adam");
    EXPECT_STR(optim_kind_name(OPTIM_ADAMW), "adamw");
}

/* One step by hand: SGD w - lr g; Adam's first step moves each weight by lr * sign(g)
 * (m/(1-b1) = g, sqrt(v/(1-b2)) = |g|); AdamW first shrinks w by 1 - lr*wd. */
static void test_optim_first_step_by_hand(void)
{
    struct optim o;
    float w[3] = {1.0f, -2.0f, 0.5f}, g[3] = {0.5f, -0.25f, 0.0f}, m[3] = {0}, v[3] = {0};
    optim_init(&o, OPTIM_SGD);
    o.lr = 0.1f;
    optim_step(&o, 3, w, g, NULL, NULL, NULL);
    EXPECT_EQ_INT(o.step, 1);
    EXPECT_NEAR(w[0], 0.95, 1e-7);
    EXPECT_NEAR(w[1], -1.975, 1e-7);
    EXPECT_NEAR(w[2], 0.5, 0);

    float a[3] = {1.0f, -2.0f, 0.5f};
    optim_init(&o, OPTIM_ADAM);
    o.lr = 0.1f;
    optim_step(&o, 3, a, g, m, v, NULL);
    EXPECT_NEAR(a[0], 0.9, 1e-6);
    EXPECT_NEAR(a[1], -1.9, 1e-6);
    EXPECT_NEAR(a[2], 0.5, 0); /* zero gradient: m = 0, denom = eps */
    /* 1 - beta is taken from the decimals 0.9 and 0.999, as PyTorch's Python floats: with
     * 1 - (double)0.999f, v would be 1.3e-5 relative smaller. */
    EXPECT(m[0] == (float)(1 - 0.9) * 0.5f);
    EXPECT(v[0] == (float)(1 - 0.999) * 0.25f);

    float b[3] = {1.0f, -2.0f, 0.5f};
    memset(m, 0, sizeof m);
    memset(v, 0, sizeof v);
    optim_init(&o, OPTIM_ADAMW);
    o.lr = 0.1f;
    o.weight_decay = 0.5f;
    optim_step(&o, 3, b, g, m, v, NULL);
    EXPECT_NEAR(b[0], 0.95 - 0.1, 1e-6);
    EXPECT_NEAR(b[1], -1.9 + 0.1, 1e-6);
    EXPECT_NEAR(b[2], 0.475, 1e-7);
}

static void test_optim_vs_torch(void)
{
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        struct optim o;
        config_apply(&configs[c], &o);
        REQUIRE_OK(optim_validate(&o));
        float w[NW], m[NW] = {0}, v[NW] = {0};
        memcpy(w, w0, sizeof w);
        for (int s = 0; s < NSTEPS; s++) optim_step(&o, NW, w, grads + s * NW, m, v, NULL);
        EXPECT_EQ_INT(o.step, NSTEPS);
        const float *ref = configs[c].ref;
        int differ = 0;
        for (int i = 0; i < NW; i++) {
            EXPECT_MSG(fabs(w[i] - ref[i]) <= 1e-7 + 1e-6 * fabs(ref[i]),
                       "%s: w[%d] = %.9g, torch %.9g", configs[c].name, i, (double)w[i],
                       (double)ref[i]);
            differ += w[i] != ref[i];
        }
        EXPECT_MSG(differ == 0, "%s: %d of %d weights not bit-identical to torch's",
                   configs[c].name, differ, NW);
    }
}

/* Masked elements keep w, m and v bit for bit, with weight decay and momentum on; the
 * others move exactly as without a mask. */
static void test_optim_mask(void)
{
    const float mask[NW] = {1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1};
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        struct optim a, b;
        config_apply(&configs[c], &a);
        if (a.weight_decay == 0) a.weight_decay = 0.1f;
        b = a;
        float wa[NW], wb[NW], ma[NW], mb[NW], va[NW], vb[NW];
        memcpy(wa, w0, sizeof wa);
        memcpy(wb, w0, sizeof wb);
        for (int i = 0; i < NW; i++) ma[i] = mb[i] = va[i] = vb[i] = 0.125f * (float)i;
        /* A pruned weight is zero; start two different ones non-zero so decay would show. */
        wa[1] = wb[1] = 0.75f;
        for (int s = 0; s < NSTEPS; s++) {
            optim_step(&a, NW, wa, grads + s * NW, ma, va, mask);
            optim_step(&b, NW, wb, grads + s * NW, mb, vb, NULL);
        }
        for (int i = 0; i < NW; i++) {
            if (mask[i] == 0) {
                float w_start = i == 1 ? 0.75f : w0[i];
                EXPECT_MSG(wa[i] == w_start && ma[i] == 0.125f * (float)i &&
                               va[i] == 0.125f * (float)i,
                           "%s: masked element %d changed", configs[c].name, i);
            } else {
                EXPECT_MSG(wa[i] == wb[i] && ma[i] == mb[i] && va[i] == vb[i],
                           "%s: element %d differs from the unmasked run", configs[c].name, i);
            }
        }
    }
}

static void expect_invalid(const struct optim *o, const char *needle)
{
    status_clear();
    EXPECT_EQ_INT(optim_validate(o), STATUS_INVALID);
    EXPECT_MSG(strstr(status_detail(), needle) != NULL, "detail \"%s\" lacks \"%s\"",
               status_detail(), needle);
}

static void test_optim_validate(void)
{
    struct optim o;
    for (int k = OPTIM_SGD; k <= OPTIM_ADAMW; k++) {
        optim_init(&o, (enum optim_kind)k);
        EXPECT_EQ_INT(optim_validate(&o), 0);
        o.lr = -1e-3f;
        expect_invalid(&o, "learning rate");
        o.lr = NAN;
        expect_invalid(&o, "learning rate");
        optim_init(&o, (enum optim_kind)k);
        o.weight_decay = -0.1f;
        expect_invalid(&o, "weight_decay");
        o.lr = 0; /* lr 0 is allowed, as in PyTorch */
        o.weight_decay = 0;
        EXPECT_EQ_INT(optim_validate(&o), 0);
    }
    optim_init(&o, OPTIM_SGD);
    o.momentum = -0.5f;
    expect_invalid(&o, "momentum");
    o.momentum = 0;
    o.nesterov = 1;
    expect_invalid(&o, "nesterov");
    o.momentum = 0.9f;
    EXPECT_EQ_INT(optim_validate(&o), 0);
    o.dampening = 0.1f;
    expect_invalid(&o, "nesterov");
    o.nesterov = 0;
    EXPECT_EQ_INT(optim_validate(&o), 0); /* dampening is unchecked, as in PyTorch */
    o.beta1 = 2; /* betas do not concern SGD */
    EXPECT_EQ_INT(optim_validate(&o), 0);

    for (int k = OPTIM_ADAM; k <= OPTIM_ADAMW; k++) {
        optim_init(&o, (enum optim_kind)k);
        o.beta1 = 1.0f;
        expect_invalid(&o, "beta parameter at index 0");
        o.beta1 = -0.1f;
        expect_invalid(&o, "beta parameter at index 0");
        o.beta1 = 0;
        EXPECT_EQ_INT(optim_validate(&o), 0);
        o.beta2 = 1.0f;
        expect_invalid(&o, "beta parameter at index 1");
        o.beta2 = 0.999f;
        o.eps = -1e-8f;
        expect_invalid(&o, "epsilon");
        o.eps = 0;
        o.momentum = -1; /* momentum does not concern Adam */
        EXPECT_EQ_INT(optim_validate(&o), 0);
    }
    o.kind = (enum optim_kind)7;
    expect_invalid(&o, "kind");
}

/* A parameter store large enough to run in parallel gives the same weights with 1 and 2
 * threads, and the same as stepping it in chunks too small to be parallelised. */
static void test_optim_threads(void)
{
    const long n = 300001;
    float *w[3], *m[3], *v[3];
    float *g = mem_alloc(n * sizeof(float)), *mask = mem_alloc(n * sizeof(float));
    REQUIRE(g && mask);
    struct rng r;
    rng_seed(&r, 5);
    rng_fill_normal(&r, g, n, 0.0f, 1.0f);
    for (long i = 0; i < n; i++) mask[i] = (i % 7) != 3;
    int saved = threads_get();
    for (int k = OPTIM_SGD; k <= OPTIM_ADAMW; k++) {
        for (int j = 0; j < 3; j++) {
            w[j] = mem_alloc(n * sizeof(float));
            m[j] = mem_calloc(n, sizeof(float));
            v[j] = mem_calloc(n, sizeof(float));
            REQUIRE(w[j] && m[j] && v[j]);
            for (long i = 0; i < n; i++) w[j][i] = (float)(i % 101) * 0.01f - 0.5f;
        }
        struct optim o[3];
        for (int j = 0; j < 3; j++) {
            optim_init(&o[j], (enum optim_kind)k);
            o[j].momentum = k == OPTIM_SGD ? 0.9f : 0;
            o[j].weight_decay = 0.01f;
        }
        for (int s = 0; s < 3; s++) {
            threads_set(1);
            optim_step(&o[0], n, w[0], g, m[0], v[0], mask);
            threads_set(2);
            optim_step(&o[1], n, w[1], g, m[1], v[1], mask);
            /* Chunks below the parallel threshold, all stepping with the same counter. */
            long step = o[2].step;
            for (long i0 = 0; i0 < n; i0 += 1000) {
                long len = n - i0 < 1000 ? n - i0 : 1000;
                o[2].step = step;
                optim_step(&o[2], len, w[2] + i0, g + i0, m[2] + i0, v[2] + i0, mask + i0);
            }
        }
        /* Elementwise with explicit fmaf: bit-identical however the work is split. */
        for (int j = 1; j < 3; j++) {
            EXPECT(memcmp(w[j], w[0], n * sizeof(float)) == 0);
            EXPECT(memcmp(m[j], m[0], n * sizeof(float)) == 0);
            EXPECT(memcmp(v[j], v[0], n * sizeof(float)) == 0);
        }
        for (int j = 0; j < 3; j++) {
            mem_free(w[j]);
            mem_free(m[j]);
            mem_free(v[j]);
        }
    }
    threads_set(saved);
    mem_free(g);
    mem_free(mask);
}

const struct test tests_optim[] = {
    TEST(test_optim_defaults_and_names),
    TEST(test_optim_first_step_by_hand),
    TEST(test_optim_vs_torch),
    TEST(test_optim_mask),
    TEST(test_optim_validate),
    TEST(test_optim_threads),
    {0},
};
