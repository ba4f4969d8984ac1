/* test_landscape.c: loss landscapes, epsilon-sharpness and training trajectories
 * (src/analysis): the sharpness of an analytic bowl and of a tiny model whose loss is known
 * in closed form; a landscape point against a direct evaluation with the weights perturbed
 * by hand; the weights bit-identical after a landscape (masks respected, also after a
 * cancel); basin's grid against basin_ref.py landscape on committed fixtures
 * (tests/data/landscape, make_fixture.py); resumption from a partial CSV; per-device
 * grids pooling to the overall one; the PCA of a synthetic path with known directions;
 * `train keep=all` then `trajectory`, and the commands' errors and outputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "basin/analysis/directions.h"
#include "basin/analysis/landscape.h"
#include "basin/analysis/sharpness.h"
#include "basin/analysis/trajectory.h"
#include "basin/core/graph.h"
#include "basin/core/loss.h"
#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/model/model.h"
#include "basin/model/predict.h"
#include "basin/model/safetensors.h"
#include "test.h"
#include "util.h"

/* ----------------------------------------------------------------------------- fixtures */

/* A small random model: cpresnet width 4, one block per stage (damping when asked), or a
 * sepnet with channels 4, 8, 8, 8 over 16 mel bins; random BN statistics so eval mode
 * matters. */
static struct model *small_model(enum arch arch, int classes, double damping, uint64_t seed)
{
    struct model_config c;
    model_config_default(&c, arch);
    c.classes = classes;
    if (arch == ARCH_SEPNET) {
        c.mels = 16;
        c.n_channels = 4;
        c.channels[0] = 4, c.channels[1] = 8, c.channels[2] = 8, c.channels[3] = 8;
    } else {
        c.width = 4, c.rho = 5, c.damping = damping;
        c.blocks[0] = c.blocks[1] = c.blocks[2] = 1;
    }
    struct model *m;
    if (model_create(&m, &c, seed)) return NULL;
    struct rng r;
    rng_seed(&r, seed + 1);
    struct graph *g = m->g;
    /* cpresnet's Fixup init zeroes conv2 and the classifier: give every weight some size */
    for (int k = 0; k < g->n_tensors; k++) {
        struct graph_tensor *t = &g->tensors[k];
        float *d = graph_tensor_data(g, k);
        if (t->kind == TENSOR_WEIGHT) rng_fill_normal(&r, d, t->numel, 0, 0.4f);
        else if (t->kind == TENSOR_RUNNING_MEAN) rng_fill_normal(&r, d, t->numel, 0, 0.2f);
        else if (t->kind == TENSOR_RUNNING_VAR) rng_fill_uniform(&r, d, t->numel, 0.5f, 1.5f);
        else if (t->kind == TENSOR_BN_WEIGHT) rng_fill_uniform(&r, d, t->numel, 0.5f, 1.5f);
    }
    return m;
}

struct clipset {
    int n, c, f, t;
    float *x;
    int *labels, *groups;
};

static void clipset_fini(struct clipset *s)
{
    free(s->x), free(s->labels), free(s->groups);
}

static int clipset_random(struct clipset *s, int n, int f, int t, int classes, int groups, uint64_t seed)
{
    s->n = n, s->c = 1, s->f = f, s->t = t;
    s->x = malloc(sizeof *s->x * (size_t)n * f * t);
    s->labels = malloc(sizeof *s->labels * (size_t)n);
    s->groups = malloc(sizeof *s->groups * (size_t)n);
    if (!s->x || !s->labels || !s->groups) return 0;
    struct rng r;
    rng_seed(&r, seed);
    rng_fill_normal(&r, s->x, (long)n * f * t, 0, 1);
    for (int i = 0; i < n; i++) s->labels[i] = (int)rng_below(&r, (uint64_t)classes), s->groups[i] = (i * 7) % groups;
    return 1;
}

static struct landscape_clips clips_of(const struct clipset *s, int groups)
{
    return (struct landscape_clips){s->n, s->c, s->f, s->t, s->x, s->labels, groups ? s->groups : NULL, groups};
}

/* ----------------------------------------------------------------------------- sharpness */

/* L = 1 + k (a^2 + b^2) on 11 x 11 over +-0.25: the disc of radius 0.25 (R = 5 cells)
 * holds 81 points in index space, its maximum is at distance exactly 0.25 (e.g. (3, 4)
 * cells), so S = 100 k 0.0625 / 2. */
static void test_sharpness_of_a_bowl(void)
{
    const int n = 11;
    const double r = 0.25, k = 7.0;
    double loss[121];
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++) {
            double a = landscape_coord(i, n, r), b = landscape_coord(j, n, r);
            loss[j * n + i] = 1 + k * (a * a + b * b);
        }
    EXPECT_EQ_INT(landscape_coord(5, 11, 0.25) == 0.0, 1);
    EXPECT_EQ_INT(sharpness_radius(0.25, 0.25, 11), 5);
    EXPECT_EQ_INT(sharpness_radius(0.25, 1.0, 51), 6);   /* li18: 0.25 / 0.04 = 6.25 */
    EXPECT_EQ_INT(sharpness_radius(0.1, 0.25, 11), 2);
    struct sharpness s;
    sharpness_of(loss, n, n, 5, &s);
    EXPECT_EQ_INT(s.n_disc, 81);   /* the reference's float test counts 77 (mission-anchors 1.6) */
    EXPECT_EQ_INT(s.n_disc_missing, 0);
    EXPECT_NEAR(s.min_grid, 1.0, 0);
    EXPECT_NEAR(s.max_disc, 1 + k * 0.0625, 1e-12);
    EXPECT_NEAR(s.s, 100 * k * 0.0625 / 2, 1e-9);
    /* the disc is symmetric: (3, 4) and (4, 3) cells in, (4, 4) out */
    EXPECT(sharpness_in_disc(5 + 3, 5 + 4, n, n, 5) && sharpness_in_disc(5 - 4, 5 - 3, n, n, 5));
    EXPECT(!sharpness_in_disc(5 + 4, 5 + 4, n, n, 5));
    /* an even grid: the centre lies between points; 10 x 10 over +-0.25, R = round(0.25 /
     * (0.5/9)) = 5 (4.5 rounds up): the doubled offsets 1, 3, ..., 9 with dx^2 + dy^2 <= 100 */
    EXPECT_EQ_INT(sharpness_radius(0.25, 0.25, 10), 5);
    double even[100];
    for (int q = 0; q < 100; q++) even[q] = 2.0;
    sharpness_of(even, 10, 10, 5, &s);
    int want = 0;
    for (int j = 0; j < 10; j++)
        for (int i = 0; i < 10; i++) want += (2 * i - 9) * (2 * i - 9) + (2 * j - 9) * (2 * j - 9) <= 100;
    EXPECT_EQ_INT(s.n_disc, want);
    EXPECT_NEAR(s.s, 0, 0);
    /* live: missing points are left out and counted */
    loss[5 * n + 5 + 3] = NAN;  /* in the disc */
    loss[0] = NAN;              /* a corner, outside */
    sharpness_of(loss, n, n, 5, &s);
    EXPECT_EQ_INT(s.n_disc_missing, 1);
    EXPECT_EQ_INT(s.n_missing, 2);
    EXPECT_NEAR(s.s, 100 * k * 0.0625 / 2, 1e-9);
    /* a 1-D slice: the interval |i - c| <= R */
    double slice[11];
    for (int i = 0; i < 11; i++) slice[i] = 1 + k * landscape_coord(i, 11, 0.5) * landscape_coord(i, 11, 0.5);
    sharpness_of(slice, 11, 1, 2, &s);   /* eps 0.2 on +-0.5: 2 cells of 0.1 */
    EXPECT_EQ_INT(s.n_disc, 5);
    EXPECT_NEAR(s.s, 100 * k * 0.04 / 2, 1e-9);
    /* over pairs: mean, sample std (the paper's table: 13.518, 13.197, 16.845 -> 2.0198), max */
    const double v[3] = {13.51809093, 13.19714092, 16.84495099};
    struct sharpness_stats st;
    sharpness_stats(v, 3, &st);
    EXPECT_NEAR(st.mean, 14.52006095, 1e-7);
    EXPECT_NEAR(st.std, 2.019798879, 1e-7);
    EXPECT_NEAR(st.max, 16.84495099, 0);
    const double one[2] = {NAN, 4.0};
    sharpness_stats(one, 2, &st);
    EXPECT_EQ_INT(st.n, 1);
    EXPECT_NEAR(st.std, 0, 0);
}

static void test_ring_order(void)
{
    int order[121];
    landscape_order(11, 11, order);
    EXPECT_EQ_INT(order[0], 60);  /* the centre */
    int seen[121] = {0};
    long last = -1;
    for (int k = 0; k < 121; k++) {
        seen[order[k]]++;
        int ix = order[k] % 11, iy = order[k] / 11;
        long d = (long)(ix - 5) * (ix - 5) + (long)(iy - 5) * (iy - 5);
        EXPECT(d >= last);
        last = d;
    }
    for (int k = 0; k < 121; k++) EXPECT_EQ_INT(seen[k], 1);
    /* the 81 disc points come first: the sharpness disc fills before the corners */
    for (int k = 0; k < 81; k++) EXPECT(sharpness_in_disc(order[k] % 11, order[k] / 11, 11, 11, 5));
    int even[4];
    landscape_order(2, 2, even);
    EXPECT_EQ_INT(even[0], 0);
}

/* ----------------------------------------------------------------------------- points */

/* A sepnet whose every weight is zero except fc2's, fc1's bias c > 0: the features never
 * reach fc2 (the zero convs give zero maps, fc1 gives relu(c) = c), filter normalisation
 * gives every zero weight a zero direction, so the logits at (a, b) are exactly
 * fc2.bias + (W + a Dx + b Dy) c: a loss known in closed form, for any clips. */
static void test_tiny_model_with_a_known_loss(void)
{
    const int M = 3;
    struct model *m = small_model(ARCH_SEPNET, M, 0, 5);
    REQUIRE(m);
    struct graph *g = m->g;
    for (int k = 0; k < g->n_tensors; k++)
        if (g->tensors[k].kind == TENSOR_WEIGHT || g->tensors[k].kind == TENSOR_BIAS)
            memset(graph_tensor_data(g, k), 0, sizeof(float) * (size_t)g->tensors[k].numel);
    float *b1 = graph_tensor_data(g, graph_find_tensor(g, "fc1.bias"));
    float *w2 = graph_tensor_data(g, graph_find_tensor(g, "fc2.weight"));
    float *b2 = graph_tensor_data(g, graph_find_tensor(g, "fc2.bias"));
    const int H = g->tensors[graph_find_tensor(g, "fc1.bias")].shape[0];
    struct rng r;
    rng_seed(&r, 9);
    for (int h = 0; h < H; h++) b1[h] = 0.1f + 0.05f * (float)(h % 5);
    rng_fill_normal(&r, w2, (long)M * H, 0, 0.5f);
    for (int k = 0; k < M; k++) b2[k] = 0.2f * (float)k;
    struct clipset cs;
    REQUIRE(clipset_random(&cs, 9, 16, 20, M, 1, 3));
    struct landscape_clips cl = clips_of(&cs, 0);
    struct landscape_eval *e;
    struct directions *d;
    struct landscape *L;
    REQUIRE_OK(landscape_eval_create(&e, m, &cl, 4));
    REQUIRE_OK(directions_random(&d, m, 42));
    const long ow = g->tensors[graph_find_tensor(g, "fc2.weight")].offset;
    /* only fc2.weight moves */
    long nonzero = 0;
    for (long j = 0; j < d->n_params; j++) nonzero += d->x[j] != 0 || d->y[j] != 0;
    EXPECT_EQ_INT(nonzero, (long)M * H);
    const struct landscape_opts o = {5, 0.5, 2};
    REQUIRE_OK(landscape_create(&L, e, d, &o));
    REQUIRE_OK(landscape_run(L, NULL, NULL, NULL));
    const struct landscape_surface *s = landscape_surface(L);
    double worst = 0;
    for (int iy = 0; iy < 5; iy++)
        for (int ix = 0; ix < 5; ix++) {
            const double a = landscape_coord(ix, 5, 0.5), b = landscape_coord(iy, 5, 0.5);
            double z[8], want = 0;
            for (int k = 0; k < M; k++) {
                z[k] = b2[k];
                for (int h = 0; h < H; h++) {
                    long j = ow + (long)k * H + h;
                    z[k] += ((double)w2[k * H + h] + a * d->x[j] + b * d->y[j]) * b1[h];
                }
            }
            double mx = z[0];
            for (int k = 1; k < M; k++) mx = fmax(mx, z[k]);
            double se = 0;
            for (int k = 0; k < M; k++) se += exp(z[k] - mx);
            for (int i = 0; i < cs.n; i++) want += log(se) + mx - z[cs.labels[i]];
            want /= cs.n;
            worst = fmax(worst, fabs(s->loss[iy * 5 + ix] - want) / want);
        }
    EXPECT_MSG(worst < 1e-5, "worst relative difference %g", worst);
    landscape_destroy(L);
    directions_destroy(d);
    landscape_eval_destroy(e);
    /* all weights zero: a flat landscape at ln M, sharpness 0 */
    memset(w2, 0, sizeof *w2 * (size_t)M * H);
    memset(b2, 0, sizeof *b2 * (size_t)M);
    REQUIRE_OK(landscape_eval_create(&e, m, &cl, 0));
    REQUIRE_OK(directions_random(&d, m, 43));
    REQUIRE_OK(landscape_create(&L, e, d, NULL));
    REQUIRE_OK(landscape_run(L, NULL, NULL, NULL));
    s = landscape_surface(L);
    struct sharpness sh;
    sharpness_of(s->loss, 11, 11, 5, &sh);
    EXPECT_NEAR(s->loss[37], log(3.0), 1e-6);
    EXPECT_NEAR(sh.s, 0, 1e-6);
    landscape_destroy(L);
    directions_destroy(d);
    landscape_eval_destroy(e);
    clipset_fini(&cs);
    model_destroy(m);
}

/* One point equals the loss of the model with the weights set by hand to w + a x + b y,
 * through a predictor of its own; and the store is bit-identical after a whole landscape,
 * after a cancel, and with pruned weights (which stay pruned meanwhile). */
static int cancel_after;
static int cancel_fn(void *user, const char *label, long done, long total)
{
    (void)user, (void)label, (void)total;
    return done < cancel_after;
}

static void test_point_equals_direct_evaluation_and_weights_restored(void)
{
    const int M = 4;
    struct model *m = small_model(ARCH_CPRESNET, M, 0.1, 11);
    REQUIRE(m);
    struct graph *g = m->g;
    /* prune a few weights of one conv */
    const int ts = graph_find_tensor(g, "s2.b1.conv1.weight");
    REQUIRE(ts >= 0);
    for (long j = 0; j < g->tensors[ts].numel; j += 3) g->store.mask[g->tensors[ts].offset + j] = 0;
    g->masked = 1;
    const long P = g->store.n_params, B = g->store.n_buffers;
    float *w_before = malloc(sizeof(float) * (size_t)P), *buf_before = malloc(sizeof(float) * (size_t)B);
    REQUIRE(w_before && buf_before);
    memcpy(w_before, g->store.w, sizeof(float) * (size_t)P);
    memcpy(buf_before, g->store.buf, sizeof(float) * (size_t)B);
    struct clipset cs;
    REQUIRE(clipset_random(&cs, 13, 20, 24, M, 1, 4));
    struct landscape_clips cl = clips_of(&cs, 0);
    struct landscape_eval *e;
    struct directions *d;
    struct landscape *L;
    REQUIRE_OK(landscape_eval_create(&e, m, &cl, 5));
    REQUIRE_OK(directions_random(&d, m, 42));
    /* directions: zero on 1-D tensors and on pruned weights, filter norms = weight norms */
    for (int k = 0; k < g->n_tensors; k++) {
        const struct graph_tensor *t = &g->tensors[k];
        if (!tensor_kind_is_param(t->kind)) continue;
        if (t->n_dims < 2) {
            for (long j = 0; j < t->numel; j++) EXPECT(d->x[t->offset + j] == 0 && d->y[t->offset + j] == 0);
            continue;
        }
        const long per = t->numel / t->shape[0];
        for (int i = 0; i < t->shape[0]; i++) {
            double wn = 0, dn = 0;
            for (long j = t->offset + i * per; j < t->offset + (i + 1) * per; j++) {
                wn += (double)g->store.w[j] * g->store.mask[j] * g->store.w[j] * g->store.mask[j];
                dn += (double)d->x[j] * d->x[j];
                if (g->store.mask[j] == 0) EXPECT(d->x[j] == 0 && d->y[j] == 0);
            }
            EXPECT_NEAR(sqrt(dn), sqrt(wn), 1e-5 * sqrt(wn) + 1e-9);
        }
    }
    const struct landscape_opts o = {5, 0.4, 2};
    REQUIRE_OK(landscape_create(&L, e, d, &o));
    REQUIRE_OK(landscape_point(L, 1, 3, NULL));
    EXPECT(!memcmp(w_before, g->store.w, sizeof(float) * (size_t)P));
    const double got = landscape_surface(L)->loss[3 * 5 + 1];
    /* by hand */
    const float a = (float)landscape_coord(1, 5, 0.4), b = (float)landscape_coord(3, 5, 0.4);
    for (long j = 0; j < P; j++) g->store.w[j] = w_before[j] + a * d->x[j] + b * d->y[j];
    float *logits = malloc(sizeof(float) * (size_t)cs.n * M);
    REQUIRE(logits);
    REQUIRE_OK(model_predict(m, cs.n, 1, cs.f, cs.t, cs.x, logits));
    const double want = loss_cross_entropy(cs.n, M, logits, cs.labels, NULL, NULL);
    memcpy(g->store.w, w_before, sizeof(float) * (size_t)P);
    EXPECT_NEAR(got, want, 1e-5 * want);
    EXPECT_NEAR(landscape_surface(L)->acc[3 * 5 + 1], 100.0 * loss_correct(cs.n, M, logits, cs.labels) / cs.n, 1e-9);
    /* the centre is the unperturbed model */
    REQUIRE_OK(model_predict(m, cs.n, 1, cs.f, cs.t, cs.x, logits));
    REQUIRE_OK(landscape_point(L, 2, 2, NULL));
    EXPECT_NEAR(landscape_surface(L)->loss[12], loss_cross_entropy(cs.n, M, logits, cs.labels, NULL, NULL), 1e-6);
    /* a cancel within a point: nothing of it stays, the weights are back */
    cancel_after = 7;
    const struct progress pc = {cancel_fn, NULL};
    EXPECT_EQ_INT(landscape_run(L, NULL, NULL, &pc), STATUS_CANCELLED);
    EXPECT(!memcmp(w_before, g->store.w, sizeof(float) * (size_t)P));
    EXPECT_EQ_INT(landscape_surface(L)->n_done, 2);
    /* the rest, then the store is bit-identical: weights, BN statistics, masks */
    REQUIRE_OK(landscape_run(L, NULL, NULL, NULL));
    EXPECT_EQ_INT(landscape_surface(L)->n_done, 25);
    EXPECT(!memcmp(w_before, g->store.w, sizeof(float) * (size_t)P));
    EXPECT(!memcmp(buf_before, g->store.buf, sizeof(float) * (size_t)B));
    for (long j = 0; j < g->tensors[ts].numel; j++)
        EXPECT_EQ_INT(g->store.mask[g->tensors[ts].offset + j], j % 3 ? 1 : 0);
    free(logits);
    free(w_before), free(buf_before);
    landscape_destroy(L);
    directions_destroy(d);
    landscape_eval_destroy(e);
    clipset_fini(&cs);
    model_destroy(m);
}

/* ----------------------------------------------------------------------------- PyTorch */

/* The committed fixtures: basin's grid on basin_ref.py's model, data and directions equals
 * basin_ref.py landscape's CSV within 1e-4 relative, and so does the sharpness. */
static void check_fixture(const char *arch)
{
    char path[256], line[256];
    snprintf(path, sizeof path, "tests/data/landscape/%s.safetensors", arch);
    struct model *m;
    REQUIRE_OK(model_load(&m, path));
    snprintf(path, sizeof path, "tests/data/landscape/%s-data.safetensors", arch);
    struct st_file *f;
    REQUIRE_OK(st_load(path, &f));
    const struct st_tensor *x = st_find(f, "x"), *y = st_find(f, "y");
    REQUIRE(x && y && x->n_dims == 4);
    const int n = (int)x->shape[0];
    float *xs = malloc(x->n_bytes);
    int32_t *ys = malloc(sizeof *ys * (size_t)n);
    int *labels = malloc(sizeof *labels * (size_t)n);
    REQUIRE(xs && ys && labels);
    REQUIRE_OK(st_to_f32(x, xs));
    REQUIRE_OK(st_to_i32(y, ys));
    for (int i = 0; i < n; i++) labels[i] = ys[i];
    const struct landscape_clips cl = {n, (int)x->shape[1], (int)x->shape[2], (int)x->shape[3], xs, labels, NULL, 0};
    struct landscape_eval *e;
    struct directions *d;
    struct landscape *L;
    REQUIRE_OK(landscape_eval_create(&e, m, &cl, 16));
    snprintf(path, sizeof path, "tests/data/landscape/%s-dirs.safetensors", arch);
    REQUIRE_OK(directions_load(&d, m, path));
    const struct landscape_opts o = {5, 0.5, 2};
    REQUIRE_OK(landscape_create(&L, e, d, &o));
    REQUIRE_OK(landscape_run(L, NULL, NULL, NULL));
    const struct landscape_surface *s = landscape_surface(L);
    snprintf(path, sizeof path, "tests/data/landscape/%s-ref.csv", arch);
    FILE *csv = fopen(path, "r");
    REQUIRE(csv);
    int rows = 0;
    double worst = 0, ref_s = NAN;
    while (fgets(line, sizeof line, csv)) {
        int ix, iy;
        double a, b, loss, acc;
        if (sscanf(line, "%d,%d,%lf,%lf,%lf,%lf", &ix, &iy, &a, &b, &loss, &acc) == 6) {
            REQUIRE(ix >= 0 && ix < 5 && iy >= 0 && iy < 5);
            EXPECT_NEAR(s->coords[ix], a, 1e-9);
            worst = fmax(worst, fabs(s->loss[iy * 5 + ix] - loss) / fabs(loss));
            EXPECT_NEAR(s->acc[iy * 5 + ix], acc, 1e-6);
            rows++;
        }
        sscanf(line, "# sharpness %lf", &ref_s);
    }
    fclose(csv);
    EXPECT_EQ_INT(rows, 25);
    EXPECT_MSG(worst < 1e-4, "%s: worst relative difference from basin_ref.py %g", arch, worst);
    struct sharpness sh;
    sharpness_of(s->loss, 5, 5, sharpness_radius(0.5, 0.5, 5), &sh);
    EXPECT_NEAR(sh.s, ref_s, 1e-4 * fabs(ref_s));
    /* loaded directions save back to the same values */
    REQUIRE_OK(directions_save(d, m, test_path("dirs-again.safetensors")));
    struct directions *d2;
    REQUIRE_OK(directions_load(&d2, m, test_path("dirs-again.safetensors")));
    EXPECT(!memcmp(d->x, d2->x, sizeof(float) * (size_t)d->n_params));
    EXPECT(!memcmp(d->y, d2->y, sizeof(float) * (size_t)d->n_params));
    directions_destroy(d2);
    landscape_destroy(L);
    directions_destroy(d);
    landscape_eval_destroy(e);
    free(xs), free(ys), free(labels);
    st_destroy(f);
    model_destroy(m);
}

static void test_grid_equals_basin_ref(void)
{
    check_fixture("cpresnet");
    check_fixture("sepnet");
}

static void test_directions_file_errors(void)
{
    struct model *m = small_model(ARCH_CPRESNET, 4, 0, 2), *other = small_model(ARCH_SEPNET, 4, 0, 2);
    REQUIRE(m && other);
    struct directions *d, *l = NULL;
    REQUIRE_OK(directions_random(&d, m, 1));
    REQUIRE_OK(directions_save(d, m, test_path("d.safetensors")));
    EXPECT(directions_load(&l, other, test_path("d.safetensors")) != 0);
    EXPECT(strstr(status_detail(), "d.safetensors") != NULL);
    EXPECT(l == NULL);
    EXPECT(directions_load(&l, m, test_path("missing.safetensors")) == STATUS_IO);
    /* the same seed gives the same pair, another seed another one */
    struct directions *d2, *d3;
    REQUIRE_OK(directions_random(&d2, m, 1));
    REQUIRE_OK(directions_random(&d3, m, 2));
    EXPECT(directions_hash(d) == directions_hash(d2));
    EXPECT(directions_hash(d) != directions_hash(d3));
    directions_destroy(d), directions_destroy(d2), directions_destroy(d3);
    model_destroy(m), model_destroy(other);
}

/* ----------------------------------------------------------------------------- files */

/* The rows of a landscape CSV (no comment lines). */
static char *rows_of(const char *path)
{
    char *t = file_text(path);
    if (!t) return NULL;
    char *h = strstr(t, "\n#");
    if (h) h[1] = 0;
    return t;
}

/* A run stopped after some points writes them; a new landscape reads them back and computes
 * the rest: the same grid as a run never stopped. Files from two halves merge. */
static void test_resume_from_a_partial_csv(void)
{
    const int M = 3;
    struct model *m = small_model(ARCH_CPRESNET, M, 0, 21);
    REQUIRE(m);
    struct clipset cs;
    REQUIRE(clipset_random(&cs, 10, 20, 20, M, 1, 6));
    struct landscape_clips cl = clips_of(&cs, 0);
    struct landscape_eval *e;
    struct directions *d;
    struct landscape *full, *part, *again;
    REQUIRE_OK(landscape_eval_create(&e, m, &cl, 0));
    REQUIRE_OK(directions_random(&d, m, 44));
    const struct landscape_opts o = {7, 0.3, 2};
    REQUIRE_OK(landscape_create(&full, e, d, &o));
    REQUIRE_OK(landscape_run(full, NULL, NULL, NULL));
    REQUIRE_OK(landscape_csv_write(landscape_surface(full), -1, test_path("full.csv"), "# basin test\nfull"));
    REQUIRE_OK(landscape_create(&part, e, d, &o));
    cancel_after = 10 * 17 + 1; /* 17 points of 10 clips, the 18th stopped in its first batch */
    const struct progress pc = {cancel_fn, NULL};
    EXPECT_EQ_INT(landscape_run(part, NULL, NULL, &pc), STATUS_CANCELLED);
    EXPECT_EQ_INT(landscape_surface(part)->n_done, 17);
    REQUIRE_OK(landscape_csv_write(landscape_surface(part), -1, test_path("part.csv"), NULL));
    REQUIRE_OK(landscape_create(&again, e, d, &o));
    char trailer[256];
    int rows;
    REQUIRE_OK(landscape_csv_load(again, -1, test_path("part.csv"), trailer, sizeof trailer, &rows));
    EXPECT_EQ_INT(rows, 17);
    EXPECT_EQ_INT(landscape_surface(again)->n_done, 17);
    REQUIRE_OK(landscape_run(again, NULL, NULL, NULL));
    EXPECT_EQ_INT(landscape_surface(again)->n_computed, 49 - 17);
    REQUIRE_OK(landscape_csv_write(landscape_surface(again), -1, test_path("again.csv"), NULL));
    char *a = rows_of(test_path("full.csv")), *b = rows_of(test_path("again.csv"));
    REQUIRE(a && b);
    EXPECT_STR(a, b);
    /* the comment lines of the full file come back */
    landscape_destroy(part);
    REQUIRE_OK(landscape_create(&part, e, d, &o));
    REQUIRE_OK(landscape_csv_load(part, -1, test_path("full.csv"), trailer, sizeof trailer, &rows));
    EXPECT_STR(trailer, "basin test\nfull\n");
    EXPECT_EQ_INT(landscape_surface(part)->n_done, 49);
    /* the same file again merges (same values); a conflicting value is an error naming the line */
    REQUIRE_OK(landscape_csv_load(part, -1, test_path("part.csv"), NULL, 0, NULL));
    write_text(test_path("bad.csv"), "ix,iy,alpha,beta,loss,acc\n3,3,0,0,99,1\n");
    EXPECT_EQ_INT(landscape_csv_load(part, -1, test_path("bad.csv"), NULL, 0, NULL), STATUS_FORMAT);
    EXPECT(strstr(status_detail(), "bad.csv:2") != NULL);
    write_text(test_path("off.csv"), "ix,iy,alpha,beta,loss,acc\n1,1,0.5,0.5,1,1\n");
    EXPECT_EQ_INT(landscape_csv_load(part, -1, test_path("off.csv"), NULL, 0, NULL), STATUS_FORMAT);
    EXPECT(strstr(status_detail(), "this grid") != NULL);
    write_text(test_path("hdr.csv"), "a,b\n");
    EXPECT_EQ_INT(landscape_csv_load(part, -1, test_path("hdr.csv"), NULL, 0, NULL), STATUS_FORMAT);
    free(a), free(b);
    landscape_destroy(full), landscape_destroy(part), landscape_destroy(again);
    directions_destroy(d);
    landscape_eval_destroy(e);
    clipset_fini(&cs);
    model_destroy(m);
}

/* by device: one surface per group from the same passes; weighted by their clip counts they
 * pool to the overall surface, loss and accuracy. */
static void test_groups_pool_to_the_whole(void)
{
    const int M = 4, G = 3;
    struct model *m = small_model(ARCH_SEPNET, M, 0, 31);
    REQUIRE(m);
    struct clipset cs;
    REQUIRE(clipset_random(&cs, 17, 16, 20, M, G, 8));
    struct landscape_clips cl = clips_of(&cs, G);
    struct landscape_eval *e;
    struct directions *d;
    struct landscape *L;
    REQUIRE_OK(landscape_eval_create(&e, m, &cl, 6));
    REQUIRE_OK(directions_random(&d, m, 7));
    const struct landscape_opts o = {3, 0.5, 2};
    REQUIRE_OK(landscape_create(&L, e, d, &o));
    REQUIRE_OK(landscape_run(L, NULL, NULL, NULL));
    const struct landscape_surface *s = landscape_surface(L);
    EXPECT_EQ_INT(s->n_groups, G);
    long total = 0;
    for (int g = 0; g < G; g++) total += s->group_n[g];
    EXPECT_EQ_INT(total, 17);
    for (int k = 0; k < s->n_points; k++) {
        double loss = 0, acc = 0;
        for (int g = 0; g < G; g++) {
            loss += s->group_n[g] * s->group_loss[(long)g * s->n_points + k];
            acc += s->group_n[g] * s->group_acc[(long)g * s->n_points + k];
        }
        EXPECT_NEAR(loss / 17, s->loss[k], 1e-12 * s->loss[k]);
        EXPECT_NEAR(acc / 17, s->acc[k], 1e-9);
    }
    /* per-group files read back */
    REQUIRE_OK(landscape_csv_write(s, 1, test_path("g1.csv"), NULL));
    struct landscape *L2;
    REQUIRE_OK(landscape_create(&L2, e, d, &o));
    REQUIRE_OK(landscape_csv_load(L2, 1, test_path("g1.csv"), NULL, 0, NULL));
    EXPECT_EQ_INT(landscape_surface(L2)->n_done, 0);  /* the overall value and the other groups are missing */
    EXPECT_NEAR(landscape_surface(L2)->group_loss[landscape_surface(L2)->n_points + 4],
                s->group_loss[s->n_points + 4], 1e-8 * s->group_loss[s->n_points + 4]);
    landscape_destroy(L2);
    landscape_destroy(L);
    directions_destroy(d);
    landscape_eval_destroy(e);
    clipset_fini(&cs);
    model_destroy(m);
}

static int cancel_at_once(void *user, const char *label, long done, long total)
{
    (void)label, (void)done, (void)total;
    ++*(int *)user;
    return 0;
}

/* Workers: with three threads the clips are shared out among three one-thread predictors;
 * every loss and accuracy (overall, per group) is bit-identical to one thread's, and a
 * cancel from the calling thread's report stops them all. */
static void test_workers_equal_one_thread(void)
{
    const int M = 4, G = 3;
    struct model *m = small_model(ARCH_CPRESNET, M, 0.1, 41);
    REQUIRE(m);
    struct clipset cs;
    REQUIRE(clipset_random(&cs, 23, 20, 24, M, G, 9));
    struct landscape_clips cl = clips_of(&cs, G);
    double loss[2], acc[2], gl[2][3], ga[2][3];
    for (int k = 0; k < 2; k++) {
        const int pin = threads_pin(k ? 3 : 1);
        struct landscape_eval *e;
        REQUIRE_OK(landscape_eval_create(&e, m, &cl, 4));
        EXPECT_EQ_INT(landscape_eval_workers(e), k ? 3 : 1);
        EXPECT_EQ_INT(landscape_eval_batch(e), 4);
        REQUIRE_OK(landscape_eval_run(e, &loss[k], &acc[k], gl[k], ga[k], NULL, 0, 0));
        if (k) {
            int calls = 0;
            double l, a;
            const struct progress p = {cancel_at_once, &calls};
            EXPECT_EQ_INT(landscape_eval_run(e, &l, &a, NULL, NULL, &p, 0, 23), STATUS_CANCELLED);
            EXPECT_EQ_INT(calls, 1);
        }
        landscape_eval_destroy(e);
        threads_pin(pin);
    }
    EXPECT(loss[0] == loss[1] && acc[0] == acc[1]);
    for (int g = 0; g < G; g++) EXPECT(gl[0][g] == gl[1][g] && ga[0][g] == ga[1][g]);
    clipset_fini(&cs);
    model_destroy(m);
}

/* ----------------------------------------------------------------------------- trajectory */

/* A path w_e = w_end + a_e v1 + b_e v2 with orthonormal v1, v2, a_e of larger spread than
 * b_e and uncorrelated with it: the PCA finds +-v1, +-v2, the coordinates are a_e and b_e
 * (uncentred, so the end is the origin), the start has non-positive coordinates. */
static void test_trajectory_pca_of_a_known_path(void)
{
    const long P = 600;
    const int E = 8, n = E + 1;
    float *v1 = calloc((size_t)P, sizeof *v1), *v2 = calloc((size_t)P, sizeof *v2), *end = calloc((size_t)P, sizeof *end);
    unsigned char *use = calloc((size_t)P, 1);
    float *w[9];
    REQUIRE(v1 && v2 && end && use);
    struct rng r;
    rng_seed(&r, 3);
    rng_fill_normal(&r, v1, P, 0, 1);
    rng_fill_normal(&r, v2, P, 0, 1);
    rng_fill_normal(&r, end, P, 0, 1);
    for (long p = 0; p < P; p++) use[p] = p % 10 != 0;
    /* Gram-Schmidt over the used entries; unused entries zero */
    double n1 = 0, dot = 0, n2 = 0;
    for (long p = 0; p < P; p++) {
        if (!use[p]) v1[p] = v2[p] = 0;
        n1 += (double)v1[p] * v1[p];
    }
    for (long p = 0; p < P; p++) v1[p] = (float)(v1[p] / sqrt(n1));
    for (long p = 0; p < P; p++) dot += (double)v1[p] * v2[p];
    for (long p = 0; p < P; p++) v2[p] = (float)(v2[p] - dot * v1[p]);
    for (long p = 0; p < P; p++) n2 += (double)v2[p] * v2[p];
    for (long p = 0; p < P; p++) v2[p] = (float)(v2[p] / sqrt(n2));
    const double bs[8] = {1, -1, -1, 1, 1, -1, -1, 1};
    double a[9], b[9];
    for (int e = 0; e < n; e++) {
        w[e] = malloc(sizeof(float) * (size_t)P);
        REQUIRE(w[e]);
        a[e] = e < E ? 4.0 * (e - 3.5) + 20 : 0;  /* mean 20: the PCA centres it away */
        b[e] = e < E ? bs[e] : 0;
        for (long p = 0; p < P; p++) w[e][p] = (float)(end[p] + a[e] * v1[p] + b[e] * v2[p]);
        /* the unused entries move too, without effect */
        for (long p = 0; p < P; p += 10) w[e][p] += (float)(e * 100);
    }
    struct trajectory t;
    REQUIRE_OK(trajectory_pca(&t, (const float *const *)w, n, P, use));
    double c1 = 0, c2 = 0;
    for (long p = 0; p < P; p++) c1 += (double)t.d1[p] * v1[p], c2 += (double)t.d2[p] * v2[p];
    EXPECT_NEAR(fabs(c1), 1, 1e-5);
    EXPECT_NEAR(fabs(c2), 1, 1e-5);
    for (long p = 0; p < P; p += 10) EXPECT(t.d1[p] == 0 && t.d2[p] == 0);
    /* variances of the centred coordinates: a 4(e - 3.5) -> 16 * 42 / 8 ... vs b 1 */
    double va = 0, vb = 0;
    for (int e = 0; e < E; e++) va += 16 * (e - 3.5) * (e - 3.5), vb += 1;
    EXPECT_NEAR(t.explained[0], va / (va + vb), 1e-6);
    EXPECT_NEAR(t.explained[1], vb / (va + vb), 1e-6);
    EXPECT(t.xy[0] <= 0 && t.xy[1] <= 0);
    for (int e = 0; e < n; e++) {
        EXPECT_NEAR(t.xy[2 * e], (c1 > 0 ? 1 : -1) * a[e], 1e-3);
        EXPECT_NEAR(t.xy[2 * e + 1], (c2 > 0 ? 1 : -1) * b[e], 1e-3);
        EXPECT_NEAR(t.residual[e], 0, 1e-2);
    }
    EXPECT_NEAR(t.xy[2 * E], 0, 0);
    trajectory_fini(&t);
    /* too few points; a path along one line */
    EXPECT_EQ_INT(trajectory_pca(&t, (const float *const *)w, 2, P, use), STATUS_INVALID);
    for (int e = 0; e < n; e++)
        for (long p = 0; p < P; p++) w[e][p] = (float)(end[p] + (e - E) * v1[p]);
    EXPECT_EQ_INT(trajectory_pca(&t, (const float *const *)w, n, P, NULL), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "two independent directions") != NULL);
    for (int e = 0; e < n; e++) free(w[e]);
    free(v1), free(v2), free(end), free(use);
    /* a run's checkpoints, in epoch order */
    const char *dir = test_path("ck");
    mkdirs(dir);
    char p[600];
    const int ep[] = {10, 0, 2};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/checkpoint-%d.safetensors", dir, ep[i]);
        write_text(p, "x");
    }
    snprintf(p, sizeof p, "%s/checkpoint.safetensors", dir);
    write_text(p, "x");
    snprintf(p, sizeof p, "%s/checkpoint-3.safetensors.tmp-1-2", dir);
    write_text(p, "x");
    char **paths;
    int *epochs, k;
    REQUIRE_OK(trajectory_list(dir, &paths, &epochs, &k));
    EXPECT_EQ_INT(k, 3);
    EXPECT(k == 3 && epochs[0] == 0 && epochs[1] == 2 && epochs[2] == 10);
    EXPECT(k == 3 && strstr(paths[2], "checkpoint-10.safetensors") != NULL);
    trajectory_list_free(paths, epochs, k);
    EXPECT_EQ_INT(trajectory_list(test_path("nothing-here"), &paths, &epochs, &k), STATUS_IO);
}

/* ----------------------------------------------------------------------------- commands */

static void test_command_errors(void)
{
    struct cli_output c = cli_run("landscape grid=1\nlandscape range=-1\nlandscape preset=li20\nlandscape frob=1\n"
                                  "landscape pairs=2 dirs=x.safetensors\nlandscape eps=0.5\nlandscape by=class\n"
                                  "landscape resume=/nonexistent/l.csv\nsharpness compare=x\ntrajectory /nonexistent\n"
                                  "landscape split=unused\nlandscape seed=4,x\nexport landscape x.png\n");
    EXPECT_EQ_INT(c.n_errors, 13);
    EXPECT_EQ_INT(count_char(c.err, '\n'), 13);
    EXPECT(strstr(c.err, "the landscape view has no image export (nothing to show yet)") != NULL);
    EXPECT(strstr(c.err, "grid=1: out of range 2..1001") != NULL);
    EXPECT(strstr(c.err, "range=-1: more than 0") != NULL);
    EXPECT(strstr(c.err, "preset=li20: milling24") != NULL);
    EXPECT(strstr(c.err, "unknown option 'frob'") != NULL);
    EXPECT(strstr(c.err, "dirs= gives one pair") != NULL);
    EXPECT(strstr(c.err, "eps=0.5 is larger than range=0.25") != NULL);
    EXPECT(strstr(c.err, "by=class") != NULL);
    EXPECT(strstr(c.err, "resume=/nonexistent/l.csv: no such file") != NULL);
    EXPECT(strstr(c.err, "sharpness: unknown option 'compare'") != NULL);
    EXPECT(strstr(c.err, "/nonexistent") != NULL);
    EXPECT(strstr(c.err, "split=unused") != NULL);
    EXPECT(strstr(c.err, "seed=4,x") != NULL);
    EXPECT(strstr(c.out, "landscape:") == NULL); /* nothing started */
}

/* Through the commands on a tiny synthesised data set: train keeping every epoch, a
 * landscape by device (files, summary, view), sharpness reusing it, a resume of a
 * truncated file giving the same rows, and the trajectory of the run. */
static void test_commands_end_to_end(void)
{
    char ds[512], run[512], l[512], script[8192];
    snprintf(ds, sizeof ds, "%s", test_path("ls-ds"));
    snprintf(run, sizeof run, "%s", test_path("ls-run"));
    snprintf(l, sizeof l, "%s", test_path("ls.csv"));
    setenv("XDG_CACHE_HOME", test_path("ls-cache"), 1);
    snprintf(script, sizeof script,
             "synth out=%s clips=20 seconds=0.5\ndata %s\npreset demo\nnew sepnet channels=4,8,8,8 mels=16\n"
             "train epochs=3 bs=4 keep=all out=%s eval=0\n"
             "landscape grid=5 by=device save-dirs=%s/d.safetensors --csv %s\n"
             "view landscape rows=24\n"
             "sharpness grid=5 eps=0.25 pairs=1 by=device --csv %s/sharp.csv\n",
             ds, ds, run, run, l, run);
    struct cli_output c = cli_run(script);
    EXPECT_EQ_INT(c.n_errors, 0);
    EXPECT_MSG(strstr(c.out, "landscape: sepnet") != NULL, "%s%s", c.out, c.err);
    EXPECT(strstr(c.out, "clips, the whole train split;") != NULL);
    EXPECT(strstr(c.out, "sharpness by device") != NULL);
    EXPECT(strstr(c.out, "25 points computed") != NULL);
    EXPECT(strstr(c.out, "S ") != NULL && strstr(c.out, "levels") != NULL); /* the view */
    EXPECT_MSG(strstr(c.out, "25 points reused from the session's landscapes") != NULL, "%s", c.out);
    EXPECT(strstr(c.out, "kept ") != NULL);
    char p[700];
    struct stat st;
    for (int e = 0; e <= 3; e++) {
        snprintf(p, sizeof p, "%s/checkpoint-%d.safetensors", run, e);
        EXPECT_MSG(stat(p, &st) == 0, "%s", p);
    }
    snprintf(p, sizeof p, "%s/d.safetensors", run);
    EXPECT(stat(p, &st) == 0);
    snprintf(p, sizeof p, "%s/sharp.csv", run);
    char *sharp = file_text(p);
    const char *head = "device,seed,eps,radius,disc_points,min_loss,max_disc_loss,sharpness,clips,subset\nall,42,";
    EXPECT(sharp && !strncmp(sharp, head, strlen(head)));
    EXPECT(sharp && strstr(sharp, "\nall,std,0.25,,,,,") != NULL);
    free(sharp);
    char *full = rows_of(l);
    REQUIRE(full);
    char *whole = file_text(l);
    REQUIRE(whole);
    EXPECT(strstr(whole, "# basin landscape grid=5 dims=2 range=0.25 seeds=42 split=train") != NULL);
    EXPECT(strstr(whole, "by=device") != NULL);
    /* a device file */
    snprintf(p, sizeof p, "%s", test_path("ls-dev-a.csv"));
    EXPECT_MSG(stat(p, &st) == 0, "%s", p);
    /* cut the file to its first rows and resume: the same rows come back */
    char *cut = strdup(whole);
    REQUIRE(cut);
    char *at = cut;
    for (int k = 0; k < 8 && at; k++) at = strchr(at + 1, '\n');
    REQUIRE(at);
    char *trailer = strstr(whole, "\n#");
    REQUIRE(trailer);
    strcpy(at + 1, trailer + 1);  /* rows 1..7 and the comment lines */
    write_text(l, cut);
    /* the device files are cut too: drop them, so those points are recomputed */
    snprintf(script, sizeof script, "data %s\nload %s/model.safetensors\nlandscape resume=%s\n", ds, run, l);
    c = cli_run(script);
    EXPECT_EQ_INT(c.n_errors, 0);
    EXPECT_MSG(strstr(c.out, "7 points read back") != NULL, "%s%s", c.out, c.err);
    char *again = rows_of(l);
    REQUIRE(again);
    EXPECT_STR(again, full);
    /* another model's weights: refused */
    snprintf(script, sizeof script, "data %s\nload %s/checkpoint-1.safetensors\nlandscape resume=%s\n", ds, run, l);
    c = cli_run(script);
    EXPECT_EQ_INT(c.n_errors, 1);
    EXPECT(strstr(c.err, "computed on other weights") != NULL);
    /* the trajectory of the run */
    snprintf(script, sizeof script, "data %s\ntrajectory %s grid=5 --csv %s/t.csv\nview landscape\n"
                                    "export landscape %s/t.png width=640 height=400\n", ds, run, run, run);
    c = cli_run(script);
    EXPECT_EQ_INT(c.n_errors, 0);
    EXPECT_MSG(strstr(c.out, "trajectory: ") && strstr(c.out, "PC1 "), "%s%s", c.out, c.err);
    /* the view's figure as an image: the contours and the path (issue 12's export) */
    snprintf(p, sizeof p, "%s/t.png", run);
    int pw = 0, ph = 0;
    long bytes = 0;
    EXPECT_MSG(png_size(p, &pw, &ph, &bytes) && pw == 640 && ph == 400, "%s: %d x %d", p, pw, ph);
    EXPECT(bytes > 5000);  /* a figure, not a blank image */
    EXPECT(strstr(c.out, "wrote ") && strstr(c.out, "t.png (640 x 400, the landscape view)"));
    snprintf(p, sizeof p, "%s/t-path.csv", run);
    char *path = file_text(p);
    EXPECT(path && !strncmp(path, "epoch,x,y,distance,residual,loss,acc\n0,", 39));
    EXPECT(path && strstr(path, "\n3,0,0,0,0,") != NULL);   /* the end is the origin */
    free(path), free(cut), free(whole), free(full), free(again);
    unsetenv("XDG_CACHE_HOME");
}

/* landscape_parity.sh (make interop): a fresh grid against basin_ref.py landscape, with
 * basin's saved directions and with basin_ref's, within 1e-4. Skipped without PyTorch. */
static void test_landscape_parity_pytorch(void)
{
    const char *bin = getenv("BASIN_BIN");
    char out[4096], cmd[2048];
    FILE *f = fopen("../shared/peers/basin_ref.py", "r"), *g = fopen("tests/interop/landscape_parity.sh", "r");
    int have = f && g && bin;
    if (f) fclose(f);
    if (g) fclose(g);
    if (!have || shell_output("/usr/bin/python3 -c 'import torch' 2>/dev/null", out, sizeof out) != 0) {
        printf("  (PyTorch reference unavailable: landscape parity skipped; make interop runs it)\n");
        return;
    }
    snprintf(cmd, sizeof cmd, "BASIN='%s' REF=../shared/peers/basin_ref.py sh tests/interop/landscape_parity.sh 2>&1",
             bin);
    int rc = shell_output(cmd, out, sizeof out);
    EXPECT_MSG(rc == 0, "landscape_parity.sh exited %d:\n%s", rc, out);
    EXPECT(strstr(out, "basin's directions") && strstr(out, "basin_ref's directions") && strstr(out, "1-D slice"));
}

const struct test tests_landscape[] = {
    TEST(test_sharpness_of_a_bowl),
    TEST(test_ring_order),
    TEST(test_tiny_model_with_a_known_loss),
    TEST(test_point_equals_direct_evaluation_and_weights_restored),
    TEST(test_grid_equals_basin_ref),
    TEST(test_directions_file_errors),
    TEST(test_resume_from_a_partial_csv),
    TEST(test_groups_pool_to_the_whole),
    TEST(test_workers_equal_one_thread),
    TEST(test_trajectory_pca_of_a_known_path),
    TEST(test_command_errors),
    TEST(test_commands_end_to_end),
    TEST_HEAVY(test_landscape_parity_pytorch),
    {0},
};
