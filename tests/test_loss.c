/* test_loss.c: softmax, cross-entropy (hard and soft targets), focal loss and accuracy.
 *
 * Hand-worked cases, PyTorch reference numbers (below), finite-difference gradient checks in
 * double through the float API, and extreme logits. */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basin/core/loss.h"
#include "basin/core/rng.h"
#include "test.h"

/* Reference numbers printed by `/usr/bin/python3 tests/data/optim/make_ref.py` (torch 1.13,
 * float64 losses and autograd gradients from float32 logits), pasted verbatim. */
static const float logits_a[12] = {1.5f, -0.25f, 2.0f, 0.125f, -1.0f, 0.5f,
                                   0.75f, -2.0f, 3.0f, 2.875f, -0.5f, 1.0f};
static const int labels_a[3] = {2, 0, 3};
static const float soft_a[12] = {0.0f, 0.3f, 0.7f, 0.0f, 0.6f, 0.0f,
                                 0.0f, 0.4f, 0.25f, 0.25f, 0.25f, 0.25f};

static const double ref_ce_hard_loss = 1.9305521801351848;
static const float ref_ce_hard_grad[12] = {0.108389282, 0.018835233, -0.154629618, 0.0274051024, -0.30460803, 0.128737876, 0.165302705, 0.0105674484, 0.162758067, 0.14363349, 0.00491486775, -0.311306424};
static const double ref_ce_soft_loss = 2.0909688820814889;
static const float ref_ce_soft_grad[12] = {0.108389282, -0.0811647709, -0.0546296139, 0.0274051024, -0.171274704, 0.12873788, 0.16530271, -0.122765887, 0.0794247334, 0.0603001564, -0.0784184656, -0.0613064243};
static const double ref_focal1_hard_loss = 1.6888852027178169;
static const float ref_focal1_hard_grad[12] = {0.0865063456, 0.0150325488, -0.123411124, 0.0218722295, -0.342706169, 0.144839466, 0.185977555, 0.0118891474, 0.181223385, 0.159929076, 0.00547247206, -0.346624934};
static const double ref_focal2_hard_loss = 1.5169671583107223;
static const float ref_focal2_hard_grad[12] = {0.0569340584, 0.00989365585, -0.0812228986, 0.0143951843, -0.371975917, 0.157209872, 0.201861472, 0.0129045722, 0.196537591, 0.173443816, 0.005934921, -0.375916328};
static const double ref_focal1_soft_loss = 1.8603670870537918;
static const float ref_focal1_soft_grad[12] = {0.0965134069, -0.0938143446, -0.0271014731, 0.0244024108, -0.193240645, 0.142400729, 0.182846155, -0.13200624, 0.0890937883, 0.0643445209, -0.0824269947, -0.0710113145};
static const double ref_focal05_soft_loss = 1.9629446506405313;
static const float ref_focal05_soft_grad[12] = {0.104594377, -0.0873156387, -0.0437243386, 0.0264456001, -0.18296127, 0.135909535, 0.174511298, -0.127459563, 0.0843050202, 0.0620972875, -0.0803650776, -0.0660372301};
static const float ref_softmax[12] = {0.325167847, 0.0565056991, 0.536111146, 0.0822153071, 0.086175909, 0.386213629, 0.495908116, 0.0317023452, 0.4882742, 0.430900469, 0.0147446032, 0.0660807272};

static const float logits_e[8] = {1e4f, -1e4f, 0.0f, 1e4f - 3.0f, -1e4f, -1e4f, -1e4f + 1.0f, -1e4f};
static const int labels_e[2] = {1, 2};
static const double ref_extreme_ce_loss = 10000.396127866103;
static const float ref_extreme_ce_grad[8] = {0.476287063, -0.5, 0, 0.0237129366, 0.0874388523, 0.0874388523, -0.262316557, 0.0874388523};
static const double ref_extreme_focal1_loss = 10000.219370204788;
static const float ref_extreme_focal1_grad[8] = {0.476287063, -0.5, 0, 0.0237129366, 0.0767842914, 0.0767842914, -0.230352874, 0.0767842914};

static int all_finite(const float *x, int n)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static void test_softmax_hand_and_torch(void)
{
    float x[2] = {0.0f, (float)log(3.0)}, p[2];
    softmax(1, 2, x, p);
    EXPECT_NEAR(p[0], 0.25, 1e-7);
    EXPECT_NEAR(p[1], 0.75, 1e-7);
    float q[12];
    softmax(3, 4, logits_a, q);
    EXPECT_TENSOR_NEAR(q, ref_softmax, 12, 1e-8, 1e-6);
    /* In place gives the same floats. */
    float y[12];
    memcpy(y, logits_a, sizeof y);
    softmax(3, 4, y, y);
    EXPECT(memcmp(y, q, sizeof y) == 0);
}

static void test_softmax_rows_sum_to_one(void)
{
    struct rng r;
    rng_seed(&r, 7);
    enum { N = 16, M = 37 };
    static float x[N * M], p[N * M];
    rng_fill_normal(&r, x, N * M, 0.0f, 5.0f);
    x[3] = 1e4f;      /* one row dominated by a huge logit */
    x[M + 5] = -1e4f; /* one with a huge negative one */
    softmax(N, M, x, p);
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int k = 0; k < M; k++) {
            EXPECT(p[i * M + k] >= 0 && p[i * M + k] <= 1);
            s += p[i * M + k];
        }
        EXPECT_NEAR(s, 1.0, 1e-6);
    }
    EXPECT_NEAR(p[3], 1.0, 0);
    EXPECT(all_finite(p, N * M));
}

static void test_ce_hand(void)
{
    /* Equal logits: loss log M, gradient (1/M - [k == y]) / N. */
    float x[8] = {2, 2, 2, 2, -1, -1, -1, -1}, dx[8];
    int y[2] = {1, 3};
    double loss = loss_cross_entropy(2, 4, x, y, NULL, dx);
    EXPECT_NEAR(loss, log(4.0), 1e-15);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++)
            EXPECT_NEAR(dx[i * 4 + k], (0.25 - (k == y[i])) / 2, 1e-8);
    /* Two classes, logits (0, log 3): p = (1/4, 3/4). */
    float z[2] = {0.0f, (float)log(3.0)}, dz[2];
    int y0 = 0;
    EXPECT_NEAR(loss_cross_entropy(1, 2, z, &y0, NULL, dz), log(4.0), 1e-7);
    EXPECT_NEAR(dz[0], -0.75, 1e-7);
    EXPECT_NEAR(dz[1], 0.75, 1e-7);
    /* Soft one-hot targets equal hard labels; NULL dlogits still gives the loss. */
    float t[8] = {0, 1, 0, 0, 0, 0, 0, 1}, dt[8];
    EXPECT_NEAR(loss_cross_entropy(2, 4, x, NULL, t, dt), loss, 1e-15);
    EXPECT_TENSOR_NEAR(dt, dx, 8, 0, 0);
    EXPECT_NEAR(loss_cross_entropy(2, 4, x, y, NULL, NULL), loss, 0);
}

static void test_ce_vs_torch(void)
{
    float dx[12];
    EXPECT_NEAR(loss_cross_entropy(3, 4, logits_a, labels_a, NULL, dx), ref_ce_hard_loss, 1e-12);
    EXPECT_TENSOR_NEAR(dx, ref_ce_hard_grad, 12, 1e-8, 1e-6);
    EXPECT_NEAR(loss_cross_entropy(3, 4, logits_a, NULL, soft_a, dx), ref_ce_soft_loss, 1e-7);
    EXPECT_TENSOR_NEAR(dx, ref_ce_soft_grad, 12, 1e-8, 1e-6);
}

static void test_focal_hand(void)
{
    /* Two equal logits, label 0, gamma 1: p = q = 1/2, loss = log(2)/2;
     * a = q (1 - p log p / q) = (1 + log 2) / 2, dx = a (p - [k == 0]). */
    float x[2] = {0.5f, 0.5f}, dx[2];
    int y = 0;
    EXPECT_NEAR(loss_focal(1, 2, x, &y, NULL, 1.0f, dx), 0.5 * log(2.0), 1e-15);
    EXPECT_NEAR(dx[0], -0.25 * (1 + log(2.0)), 1e-7);
    EXPECT_NEAR(dx[1], 0.25 * (1 + log(2.0)), 1e-7);
    /* gamma 2: loss = log(2)/4; a = q^2 (1 - 2 p log p / q) = (1 + 2 log 2) / 4. */
    EXPECT_NEAR(loss_focal(1, 2, x, &y, NULL, 2.0f, dx), 0.25 * log(2.0), 1e-15);
    EXPECT_NEAR(dx[0], -0.125 * (1 + 2 * log(2.0)), 1e-7);
}

static void test_focal_vs_torch(void)
{
    float dx[12];
    EXPECT_NEAR(loss_focal(3, 4, logits_a, labels_a, NULL, 1.0f, dx), ref_focal1_hard_loss, 1e-12);
    EXPECT_TENSOR_NEAR(dx, ref_focal1_hard_grad, 12, 1e-8, 1e-6);
    EXPECT_NEAR(loss_focal(3, 4, logits_a, labels_a, NULL, 2.0f, dx), ref_focal2_hard_loss, 1e-12);
    EXPECT_TENSOR_NEAR(dx, ref_focal2_hard_grad, 12, 1e-8, 1e-6);
    EXPECT_NEAR(loss_focal(3, 4, logits_a, NULL, soft_a, 1.0f, dx), ref_focal1_soft_loss, 1e-7);
    EXPECT_TENSOR_NEAR(dx, ref_focal1_soft_grad, 12, 1e-8, 1e-6);
    EXPECT_NEAR(loss_focal(3, 4, logits_a, NULL, soft_a, 0.5f, dx), ref_focal05_soft_loss, 1e-7);
    EXPECT_TENSOR_NEAR(dx, ref_focal05_soft_grad, 12, 1e-8, 1e-6);
}

static void test_focal_gamma0_is_ce(void)
{
    float a[12], b[12];
    EXPECT_NEAR(loss_focal(3, 4, logits_a, labels_a, NULL, 0.0f, a),
                loss_cross_entropy(3, 4, logits_a, labels_a, NULL, b), 0);
    EXPECT(memcmp(a, b, sizeof a) == 0);
    EXPECT_NEAR(loss_focal(3, 4, logits_a, NULL, soft_a, 0.0f, a),
                loss_cross_entropy(3, 4, logits_a, NULL, soft_a, b), 0);
    EXPECT(memcmp(a, b, sizeof a) == 0);
}

/* Central differences of the double loss through the float API. The step is a power of two,
 * so x +- h is exact in float for |x| < 8 and the difference quotient sees exactly 2h. */
static void fd_check(const char *what, int n, int m, const float *x0, const int *labels,
                     const float *targets, float gamma)
{
    enum { MAXN = 64 };
    float x[MAXN], dx[MAXN], scratch[MAXN];
    REQUIRE(n * m <= MAXN);
    memcpy(x, x0, sizeof(float) * n * m);
    loss_focal(n, m, x, labels, targets, gamma, dx);
    const float h = 1.0f / 1024;
    double worst = 0;
    for (int j = 0; j < n * m; j++) {
        float keep = x[j];
        x[j] = keep + h;
        double lp = loss_focal(n, m, x, labels, targets, gamma, scratch);
        x[j] = keep - h;
        double lm = loss_focal(n, m, x, labels, targets, gamma, NULL);
        x[j] = keep;
        double fd = (lp - lm) / (2.0 * h), err = fabs(fd - dx[j]);
        if (err > worst) worst = err;
        EXPECT_MSG(err <= 2e-6 + 1e-5 * fabs(fd), "%s gamma %g: d[%d] = %.9g, fd %.9g", what,
                   (double)gamma, j, (double)dx[j], fd);
    }
    EXPECT(worst < 1e-5);
}

static void test_gradients_finite_difference(void)
{
    struct rng r;
    rng_seed(&r, 2024);
    enum { N = 5, M = 7 };
    float x[N * M], t[N * M];
    int y[N];
    rng_fill_normal(&r, x, N * M, 0.0f, 1.5f);
    /* Soft targets as mixup makes them: lambda on one class, 1 - lambda on another; the last
     * row is a dense distribution. */
    memset(t, 0, sizeof t);
    for (int i = 0; i < N; i++) {
        y[i] = (int)rng_below(&r, M);
        float lam = (float)rng_beta(&r, 0.2, 0.2);
        t[i * M + y[i]] += lam;
        t[i * M + (y[i] + 1 + (int)rng_below(&r, M - 1)) % M] += 1 - lam;
    }
    double s = 0;
    for (int k = 0; k < M; k++) s += t[(N - 1) * M + k] = (float)rng_uniform(&r);
    for (int k = 0; k < M; k++) t[(N - 1) * M + k] = (float)(t[(N - 1) * M + k] / s);

    fd_check("ce hard", N, M, x, y, NULL, 0.0f);
    fd_check("ce soft", N, M, x, NULL, t, 0.0f);
    const float gammas[4] = {0.0f, 1.0f, 2.0f, 0.5f};
    for (int g = 0; g < 4; g++) {
        fd_check("focal hard", N, M, x, y, NULL, gammas[g]);
        fd_check("focal soft", N, M, x, NULL, t, gammas[g]);
    }
    /* A confident row (p_y near 1) stresses the (1 - p)^(gamma - 1) term for gamma < 1. */
    float xc[3] = {6.0f, -1.0f, 0.5f};
    int yc = 0;
    fd_check("focal confident", 1, 3, xc, &yc, NULL, 0.5f);
    fd_check("focal confident", 1, 3, xc, &yc, NULL, 2.0f);
}

static void test_extreme_logits(void)
{
    float dx[8];
    double l = loss_cross_entropy(2, 4, logits_e, labels_e, NULL, dx);
    EXPECT_NEAR(l, ref_extreme_ce_loss, 1e-9 * ref_extreme_ce_loss);
    EXPECT_TENSOR_NEAR(dx, ref_extreme_ce_grad, 8, 1e-8, 1e-6);
    l = loss_focal(2, 4, logits_e, labels_e, NULL, 1.0f, dx);
    EXPECT_NEAR(l, ref_extreme_focal1_loss, 1e-9 * ref_extreme_focal1_loss);
    EXPECT_TENSOR_NEAR(dx, ref_extreme_focal1_grad, 8, 1e-8, 1e-6);

    /* p rounds to exactly 1 (and 0): every gamma stays finite; the loss is 0 on the right
     * class and 2e4 on the wrong one. */
    float x[2] = {1e4f, -1e4f};
    int right = 0, wrong = 1;
    float soft[2] = {0.5f, 0.5f};
    const float gammas[4] = {0.0f, 0.5f, 1.0f, 2.0f};
    for (int g = 0; g < 4; g++) {
        float d[2];
        EXPECT_NEAR(loss_focal(1, 2, x, &right, NULL, gammas[g], d), 0.0, 0);
        EXPECT(all_finite(d, 2));
        EXPECT_NEAR(d[0], 0.0, 0);
        EXPECT_NEAR(loss_focal(1, 2, x, &wrong, NULL, gammas[g], d), 2e4, 0);
        EXPECT_NEAR(d[0], 1.0, 0);
        EXPECT_NEAR(d[1], -1.0, 0);
        EXPECT_NEAR(loss_focal(1, 2, x, NULL, soft, gammas[g], d), 1e4, 0);
        EXPECT(all_finite(d, 2));
    }
    float p[2];
    softmax(1, 2, x, p);
    EXPECT(p[0] == 1.0f && p[1] == 0.0f);
}

static void test_correct_first_max(void)
{
    float x[12] = {0.1f, 0.9f, 0.3f,   /* argmax 1 */
                   0.5f, 0.5f, 0.2f,   /* tie: first maximum, 0 */
                   -3.0f, -2.0f, -1.0f, /* argmax 2 */
                   1.0f, 1.0f, 1.0f};  /* all tied: 0 */
    int y[4] = {1, 1, 2, 0};
    EXPECT_EQ_INT(loss_correct(4, 3, x, y), 3);
    int z[4] = {0, 0, 0, 2};
    EXPECT_EQ_INT(loss_correct(4, 3, x, z), 1);
    EXPECT_EQ_INT(loss_correct(0, 3, x, y), 0);
}

/* An out-of-range label is a programmer error: CHECK aborts (in a child process). */
static int aborts(int which)
{
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) dup2(fd, 2);
        float x[3] = {0, 1, 2};
        int bad = which == 0 ? 3 : -1;
        if (which < 2) loss_cross_entropy(1, 3, x, &bad, NULL, NULL);
        else loss_focal(1, 3, x, NULL, NULL, 1.0f, NULL); /* neither labels nor targets */
        _exit(0);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) return -1;
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void test_invalid_label_checks(void)
{
    EXPECT_EQ_INT(aborts(0), 1);
    EXPECT_EQ_INT(aborts(1), 1);
    EXPECT_EQ_INT(aborts(2), 1);
}

const struct test tests_loss[] = {
    TEST(test_softmax_hand_and_torch),
    TEST(test_softmax_rows_sum_to_one),
    TEST(test_ce_hand),
    TEST(test_ce_vs_torch),
    TEST(test_focal_hand),
    TEST(test_focal_vs_torch),
    TEST(test_focal_gamma0_is_ce),
    TEST(test_gradients_finite_difference),
    TEST(test_extreme_logits),
    TEST(test_correct_first_max),
    TEST(test_invalid_label_checks),
    {0},
};
