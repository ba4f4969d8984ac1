/* test_erf.c: effective receptive fields (src/analysis/erf.c): a single conv's ERF is its
 * kernel's footprint; the mass measures on hand-made maps; the RF box against
 * graph_describe and against where the gradient is; layer names; basin_ref.py erf's
 * fixture for the three architectures; batches and inputs; the CSV; the command. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/analysis/erf.h"
#include "basin/core/graph.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/data/dataset.h"
#include "basin/dsp/frontend.h"
#include "basin/model/model.h"
#include "basin/model/safetensors.h"
#include "basin/train/pipeline.h"
#include "test.h"
#include "util.h"

/* A graph of one conv (ci -> co, k x k, padding, dilation) on inputs of ci channels, with
 * seeded weights. */
static struct graph *one_conv(int ci, int co, int k, int pad, int dil, int stride, uint64_t seed)
{
    struct graph *g = graph_create();
    if (!g) return NULL;
    int in = graph_input(g, ci);
    graph_conv2d(g, "conv", in, co, k, k, stride, stride, pad, pad, dil, dil, 1, 0);
    if (graph_finish(g)) {
        graph_destroy(g);
        return NULL;
    }
    struct rng r;
    rng_seed(&r, seed);
    rng_fill_normal(&r, g->store.w, g->store.n_params, 0, 1);
    return g;
}

/* The ERF of a single 3 x 3 conv is its kernel's footprint: at the centre unit's window,
 * |sum over output channels of w[o, c]| per input channel, zero everywhere else; the RF box
 * is that window. Also dilated (the taps spread) and strided (the window moves). */
static void test_single_conv_footprint(void)
{
    const struct {
        int pad, dil, stride;
    } cases[] = {{1, 1, 1}, {0, 1, 1}, {2, 2, 1}, {1, 1, 2}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const int C = 2, O = 3, F = 11, T = 14, pad = cases[k].pad, dil = cases[k].dil, st = cases[k].stride;
        struct graph *g = one_conv(C, O, 3, pad, dil, st, 7 + k);
        REQUIRE(g);
        struct erf_result *r = NULL;
        const struct erf_opts o = {.input = ERF_INPUT_NOISE, .n = 5, .seed = 3};
        REQUIRE_OK(erf_run(&r, g, 1, C, F, T, 0, NULL, &o, NULL));
        const int fo = (F + 2 * pad - dil * 2 - 1) / st + 1, to = (T + 2 * pad - dil * 2 - 1) / st + 1;
        EXPECT_EQ_INT(r->tap_f, fo);
        EXPECT_EQ_INT(r->tap_t, to);
        EXPECT_EQ_INT(r->n, 5);
        const int uf = fo / 2, ut = to / 2, f0 = uf * st - pad, t0 = ut * st - pad;
        EXPECT_EQ_INT(r->box[0][0], f0);
        EXPECT_EQ_INT(r->box[0][1], f0 + 2 * dil);
        EXPECT_EQ_INT(r->box[1][0], t0);
        EXPECT_EQ_INT(r->box[1][1], t0 + 2 * dil);
        EXPECT_EQ_INT(r->rf[0], 2 * dil + 1);
        const float *w = g->store.w;
        long nonzero = 0;
        double worst = 0;
        for (int c = 0; c < C; c++)
            for (int i = 0; i < F; i++)
                for (int j = 0; j < T; j++) {
                    double want = 0;
                    int di = i - f0, dj = j - t0;
                    if (di >= 0 && dj >= 0 && di % dil == 0 && dj % dil == 0 && di / dil < 3 && dj / dil < 3) {
                        double s = 0;
                        for (int o2 = 0; o2 < O; o2++) s += w[((o2 * C + c) * 3 + di / dil) * 3 + dj / dil];
                        want = fabs(s);
                    }
                    double got = r->channels[((long)c * F + i) * T + j];
                    nonzero += got != 0;
                    if (fabs(got - want) > worst) worst = fabs(got - want);
                }
        EXPECT_MSG(worst < 1e-6, "case %zu: max difference %g from the kernel's footprint", k, worst);
        EXPECT_EQ_INT(nonzero, 2 * 9);
        /* the summed map and its masses: at most the 9 taps */
        EXPECT(r->m95.cells >= 1 && r->m95.cells <= 9 && r->m68.cells <= r->m95.cells);
        EXPECT(r->m95.box_f <= 2 * dil + 1 && r->m95.box_t <= 2 * dil + 1);
        erf_result_destroy(r);
        graph_destroy(g);
    }
}

/* Hand-worked maps for the two mass measures. */
static void test_mass_measures(void)
{
    /* one peak: one cell, a 1 x 1 box */
    float m[5 * 7] = {0};
    int bf, bt;
    m[2 * 7 + 3] = 4;
    EXPECT_EQ_INT(erf_mass_cells(m, 5, 7, 0.95), 1);
    EXPECT_EQ_INT(erf_mass_box(m, 5, 7, 2, 3, 0.95, &bf, &bt), 1);
    EXPECT(bf == 1 && bt == 1);
    /* a uniform map of 16 cells: 68 % needs 10.88 cells -> 11; exactly half -> 8 */
    float u[4 * 4];
    for (int i = 0; i < 16; i++) u[i] = 0.25f;
    EXPECT_EQ_INT(erf_mass_cells(u, 4, 4, 0.68), 11);
    EXPECT_EQ_INT(erf_mass_cells(u, 4, 4, 0.5), 8);
    EXPECT_EQ_INT(erf_mass_cells(u, 4, 4, 1.0), 16);
    /* a fraction met exactly is not pushed a cell further by rounding (0.68 * 100 = 68) */
    float e[3] = {68, 20, 12};
    EXPECT_EQ_INT(erf_mass_cells(e, 1, 3, 0.68), 1);
    EXPECT_EQ_INT(erf_mass_cells(e, 1, 3, 0.69), 2);
    float t[4] = {34, 34, 20, 12};
    EXPECT_EQ_INT(erf_mass_cells(t, 2, 2, 0.68), 2);
    /* no mass: area 0 */
    float z[6] = {0};
    EXPECT_EQ_INT(erf_mass_cells(z, 2, 3, 0.68), 0);
    EXPECT_EQ_INT(erf_mass_box(z, 2, 3, 1, 1, 0.68, &bf, &bt), 0);
    EXPECT(bf == 0 && bt == 0);
    /* a cross centred on (2, 3): 3 units in the centre, 1 on each of its four arms at
     * distance 1 (sum 7); 68 % = 4.76 needs the centre and 2 arms (3 cells); the centred
     * box holding it: 3 x 1 or 1 x 3 (5 cells of mass 5), the smaller a first: 1 x 3 */
    float x[5 * 7] = {0};
    x[2 * 7 + 3] = 3, x[1 * 7 + 3] = x[3 * 7 + 3] = x[2 * 7 + 2] = x[2 * 7 + 4] = 1;
    EXPECT_EQ_INT(erf_mass_cells(x, 5, 7, 0.68), 3);
    EXPECT_EQ_INT(erf_mass_box(x, 5, 7, 2, 3, 0.68, &bf, &bt), 3);
    EXPECT(bf == 1 && bt == 3);
    /* 95 % = 6.65: all five cells, the 3 x 3 box (9 cells) */
    EXPECT_EQ_INT(erf_mass_cells(x, 5, 7, 0.95), 5);
    EXPECT_EQ_INT(erf_mass_box(x, 5, 7, 2, 3, 0.95, &bf, &bt), 9);
    EXPECT(bf == 3 && bt == 3);
    /* a box clipped by the map's edge counts only the cells inside: centre at the corner */
    float c[3 * 3];
    for (int i = 0; i < 9; i++) c[i] = 1;
    EXPECT_EQ_INT(erf_mass_box(c, 3, 3, 0, 0, 1.0, &bf, &bt), 9);
    EXPECT(bf == 5 && bt == 5);
    /* a wide Gaussian (sigma 2 bins x 6 frames): its boxes are wider in time; its 68 %
     * cells near the 1-sigma ellipse's area pi * 2 * 6 * 2.28 (the 2-D 68 % contour) */
    enum { R = 41, K = 61 };
    static float gsn[R * K];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < K; j++) gsn[i * K + j] = (float)exp(-0.5 * ((i - 20) * (i - 20) / 4.0 + (j - 30) * (j - 30) / 36.0));
    long a68 = erf_mass_cells(gsn, R, K, 0.68);
    EXPECT_MSG(fabs(a68 - M_PI * 2 * 6 * 2.279) < 8, "68 %% area %ld", a68);
    erf_mass_box(gsn, R, K, 20, 30, 0.95, &bf, &bt);
    EXPECT_MSG(bt > 2 * bf, "95 %% box %d x %d", bf, bt);
}

/* The RF box of every named node agrees with graph_describe's extent, and the gradient of
 * a unit near the border (with padding) lies inside its box. */
static void test_rf_box_matches_describe(void)
{
    const char *archs[] = {"cpresnet", "sepnet", "cnn10"};
    for (int k = 0; k < 3; k++) {
        char path[256];
        snprintf(path, sizeof path, "tests/data/models/%s.safetensors", archs[k]);
        struct model *m;
        REQUIRE_OK(model_load(&m, path));
        const int F = 32, T = 64;
        struct node_info *info = malloc(sizeof *info * (size_t)m->g->n_nodes);
        REQUIRE(info);
        REQUIRE_OK(graph_describe(m->g, m->cfg.in_ch, F, T, info));
        for (int i = 1; i < m->g->n_nodes; i++) {
            long box[2][2];
            int whole[2];
            REQUIRE_OK(erf_rf_box(m->g, i, F, T, info[i].f / 2, info[i].t / 2, box, whole));
            for (int d = 0; d < 2; d++) {
                if (whole[d]) continue;
                EXPECT_MSG(box[d][1] - box[d][0] + 1 == info[i].rf[d], "%s node %d (%s) axis %d: box %ld..%ld, rf %ld",
                           archs[k], i, m->g->nodes[i].name, d, box[d][0], box[d][1], info[i].rf[d]);
            }
        }
        free(info);
        model_destroy(m);
    }
}

/* Layer names: nodes, modules (basin_ref.py's taps) and the error for an unknown one. */
static void test_layer_names(void)
{
    struct model *m;
    REQUIRE_OK(model_load(&m, "tests/data/models/cpresnet.safetensors"));
    const struct graph *g = m->g;
    int node;
    REQUIRE_OK(erf_find_layer(g, "head.bn", &node));
    EXPECT_EQ_INT(node, graph_find_node(g, "head.bn"));
    REQUIRE_OK(erf_find_layer(g, "head", &node));
    EXPECT_EQ_INT(node, graph_find_node(g, "head.bn"));
    REQUIRE_OK(erf_find_layer(g, "stem", &node));
    EXPECT_EQ_INT(node, graph_find_node(g, "stem.bn"));
    REQUIRE_OK(erf_find_layer(g, "s1", &node)); /* blocks 2,2,1: pools after b1 and b2 */
    EXPECT_EQ_INT(node, graph_find_node(g, "s1.b2.pool"));
    REQUIRE_OK(erf_find_layer(g, "s2", &node)); /* the residual sum after s2.b2.bn2 */
    EXPECT(g->nodes[node].op == OP_ADD && !g->nodes[node].name[0]);
    EXPECT(g->nodes[node].in[0] == graph_find_node(g, "s2.b2.bn2") || g->nodes[node].in[1] == graph_find_node(g, "s2.b2.bn2"));
    EXPECT_EQ_INT(erf_find_layer(g, "s", &node), STATUS_NOT_FOUND);
    EXPECT(strstr(status_detail(), "no layer 's'") && strstr(status_detail(), "stem, s1, s2, s3, head"));
    EXPECT_EQ_INT(erf_find_layer(g, "s1.b9", &node), STATUS_NOT_FOUND);
    model_destroy(m);
}

/* basin_ref.py erf's maps (tests/data/erf, made by make_fixtures.py there) for every
 * architecture and several taps, on the model fixtures and their inputs. */
static void test_matches_reference_fixture(void)
{
    const char *archs[] = {"cpresnet", "sepnet", "cnn10"};
    for (int k = 0; k < 3; k++) {
        char path[256];
        struct model *m;
        struct st_file *io, *fx;
        snprintf(path, sizeof path, "tests/data/models/%s.safetensors", archs[k]);
        REQUIRE_OK(model_load(&m, path));
        snprintf(path, sizeof path, "tests/data/models/%s-io.safetensors", archs[k]);
        REQUIRE_OK(st_load(path, &io));
        snprintf(path, sizeof path, "tests/data/erf/%s.safetensors", archs[k]);
        REQUIRE_OK(st_load(path, &fx));
        const struct st_tensor *tx = st_find(io, "x");
        REQUIRE(tx && tx->n_dims == 4);
        float *x = malloc(sizeof *x * (size_t)tx->numel), *want = malloc(sizeof *want * (size_t)tx->numel / tx->shape[0]);
        REQUIRE(x && want);
        REQUIRE_OK(st_to_f32(tx, x));
        char taps[128];
        snprintf(taps, sizeof taps, "%s", st_meta(fx, "basin.taps"));
        int n_taps = 0;
        for (char *tap = strtok(taps, ","); tap; tap = strtok(NULL, ","), n_taps++) {
            snprintf(path, sizeof path, "erf.%s", tap);
            const struct st_tensor *te = st_find(fx, path);
            REQUIRE(te);
            REQUIRE_OK(st_to_f32(te, want));
            struct erf_opts o = {.layer = tap, .input = ERF_INPUT_DATA, .x = x, .x_n = (int)tx->shape[0],
                                 .x_f = (int)tx->shape[2], .x_t = (int)tx->shape[3], .batch = 2};
            struct erf_result *r = NULL;
            REQUIRE_OK(erf_model(&r, m, NULL, NULL, &o, NULL));
            double peak = 0, worst = 0;
            for (size_t i = 0; i < te->numel; i++) peak = fmax(peak, want[i]);
            for (size_t i = 0; i < te->numel; i++) worst = fmax(worst, fabs(r->channels[i] - want[i]));
            EXPECT_MSG(worst <= 1e-5 * peak, "%s %s: max difference %g of a peak %g", archs[k], tap, worst, peak);
            /* nothing outside the box */
            for (int c = 0; c < r->n_channels; c++)
                for (int i = 0; i < r->n_mels; i++)
                    for (int j = 0; j < r->n_frames; j++)
                        if (i < r->crop[0][0] || i > r->crop[0][1] || j < r->crop[1][0] || j > r->crop[1][1])
                            EXPECT(want[((long)c * r->n_mels + i) * r->n_frames + j] == 0);
            erf_result_destroy(r);
        }
        EXPECT_EQ_INT(n_taps, 4);
        free(x), free(want);
        st_destroy(io), st_destroy(fx);
        model_destroy(m);
    }
}

/* The default layer is model_summary.rf_layer; batches of 1 and of 16 give the same map
 * (eval mode: inputs independent); noise is deterministic by seed; zero input is one
 * pass; the CSV has the crop's cells with offsets from the centre; a stop keeps the mean
 * so far. */
static int stop_after_two(void *user, const char *label, long done, long total)
{
    (void)user, (void)label, (void)total;
    return done < 2;
}

static void test_inputs_batches_csv_cancel(void)
{
    struct model *m;
    REQUIRE_OK(model_load(&m, "tests/data/models/sepnet.safetensors"));
    struct frontend_params fp;
    REQUIRE_OK(frontend_preset(&fp, "demo"));
    fp.n_mels = 32;
    const int F = 32, T = 48;
    enum { N = 5 };
    static float x[N * 32 * 48];
    struct rng rg;
    rng_seed(&rg, 4);
    rng_fill_normal(&rg, x, N * F * T, 0, 1);
    struct erf_result *a = NULL, *b = NULL;
    struct erf_opts o = {.input = ERF_INPUT_DATA, .x = x, .x_n = N, .x_f = F, .x_t = T, .batch = 1};
    REQUIRE_OK(erf_model(&a, m, NULL, &fp, &o, NULL));
    EXPECT_STR(a->layer, "b4.pool");
    o.batch = 16;
    REQUIRE_OK(erf_model(&b, m, NULL, &fp, &o, NULL));
    double worst = 0;
    for (long i = 0; i < (long)F * T; i++) worst = fmax(worst, fabs(a->map[i] - b->map[i]));
    EXPECT_MSG(worst <= 1e-6 * a->peak, "batch 1 vs 16: %g", worst);
    EXPECT(a->m68.cells == b->m68.cells && a->m95.box_t == b->m95.box_t);
    erf_result_destroy(b);
    /* CSV: header, one row per cell of the crop, the centre at offset 0 */
    const char *csv = test_path("erf.csv");
    REQUIRE_OK(erf_write_csv(a, csv));
    FILE *f = fopen(csv, "r");
    REQUIRE(f);
    char line[256];
    long rows = 0, centre = 0;
    EXPECT(fgets(line, sizeof line, f) && !strcmp(line, "f,t,df,dt,erf,erf_rel\n"));
    while (fgets(line, sizeof line, f)) {
        long fi, ti, df, dt;
        if (sscanf(line, "%ld,%ld,%ld,%ld,", &fi, &ti, &df, &dt) == 4) {
            rows++;
            EXPECT(fi - df == a->centre[0] && ti - dt == a->centre[1]);
            centre += df == 0 && dt == 0;
        }
    }
    fclose(f);
    EXPECT_EQ_INT(rows, (a->crop[0][1] - a->crop[0][0] + 1) * (a->crop[1][1] - a->crop[1][0] + 1));
    EXPECT_EQ_INT(centre, 1);
    erf_result_destroy(a);
    /* noise: the same seed the same map, another seed another; zero: one pass */
    struct erf_opts on = {.input = ERF_INPUT_NOISE, .n = 3, .seed = 11, .layer = "b2"};
    REQUIRE_OK(erf_model(&a, m, NULL, &fp, &on, NULL));
    REQUIRE_OK(erf_model(&b, m, NULL, &fp, &on, NULL));
    EXPECT(a->n == 3 && a->n_mels == 32 && !memcmp(a->map, b->map, sizeof(float) * (size_t)a->n_mels * a->n_frames));
    erf_result_destroy(b);
    on.seed = 12;
    REQUIRE_OK(erf_model(&b, m, NULL, &fp, &on, NULL));
    EXPECT(memcmp(a->map, b->map, sizeof(float) * (size_t)a->n_mels * a->n_frames) != 0);
    erf_result_destroy(a), erf_result_destroy(b);
    struct erf_opts oz = {.input = ERF_INPUT_ZERO, .n = 50};
    REQUIRE_OK(erf_model(&a, m, NULL, &fp, &oz, NULL));
    EXPECT(a->n == 1 && a->n_total == 1 && a->mass > 0);
    erf_result_destroy(a);
    /* a stop after the second batch keeps the mean over the inputs done */
    const struct progress stop = {stop_after_two, NULL};
    o.batch = 1;
    EXPECT_EQ_INT(erf_model(&a, m, NULL, &fp, &o, &stop), STATUS_CANCELLED);
    REQUIRE(a);
    EXPECT(a->n == 2 && a->n_total == N && a->mass > 0);
    erf_result_destroy(a);
    /* errors */
    struct erf_opts bad = {.layer = "nothing", .input = ERF_INPUT_ZERO};
    EXPECT_EQ_INT(erf_model(&a, m, NULL, &fp, &bad, NULL), STATUS_NOT_FOUND);
    EXPECT(a == NULL);
    struct erf_opts nods = {.input = ERF_INPUT_DATA};
    EXPECT_EQ_INT(erf_model(&a, m, NULL, &fp, &nods, NULL), STATUS_INVALID);
    model_destroy(m);
}

/* The command headless on the eval fixture: the summary, the figure with its box, the CSV;
 * errors on one line each before any work. */
static void test_erf_command(void)
{
    char dir[600], model[700], csv[700], script[4096];
    path_of(dir, sizeof dir, "erf-cli");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL | DC_AUDIO));
    struct dataset *ds;
    REQUIRE_OK(dataset_open(&ds, dir, NULL));
    struct model_config c;
    model_config_default(&c, ARCH_SEPNET);
    c.mels = 16, c.classes = 3, c.n_channels = 4;
    c.channels[0] = 8, c.channels[1] = c.channels[2] = c.channels[3] = 16;
    struct model *m;
    REQUIRE_OK(model_create(&m, &c, 3));
    struct frontend *fe;
    REQUIRE(make_fe(&fe));
    struct frontend_params p = *frontend_get_params(fe);
    frontend_destroy(fe);
    snprintf(p.preset, sizeof p.preset, "fixture");
    REQUIRE_OK(pipeline_set_model_frontend(m, &p));
    REQUIRE_OK(pipeline_set_model_labels(m, ds));
    snprintf(model, sizeof model, "%s", test_path("erf-cli.safetensors"));
    REQUIRE_OK(model_save(m, model, 0, NULL));
    snprintf(csv, sizeof csv, "%s", test_path("erf-cli.csv"));
    char png[700];
    snprintf(png, sizeof png, "%s", test_path("erf-cli.png"));
    snprintf(script, sizeof script, "load %s\ndata %s\nerf\nerf layer=b2 n=3 split=all --csv %s\nerf input=noise n=2\n"
                                    "view erf\nexport erf %s width=500 height=320\n", model, dir, csv, png);
    struct cli_output o = cli_run(script);
    EXPECT_EQ_INT(o.n_errors, 0);
    EXPECT(strstr(o.out, "erf: b4.pool, mean over 9 of the 9 clips of the train split") != NULL);
    EXPECT(strstr(o.out, "erf: b2, mean over 3 of the 16 clips of the data set (spread evenly)") != NULL);
    EXPECT(strstr(o.out, "over 2 N(0, 1) noise inputs") != NULL);
    EXPECT(strstr(o.out, "68 % of the gradient mass: ") && strstr(o.out, "95 % of the gradient mass: "));
    EXPECT(strstr(o.out, "ERF of b2, unit (") && strstr(o.out, "|d unit / d input| / peak"));
    EXPECT(strstr(o.out, "wrote ") && strstr(o.out, "f,t,df,dt,erf,erf_rel"));
    int pw = 0, ph = 0;
    EXPECT_MSG(png_size(png, &pw, &ph, NULL) && pw == 500 && ph == 320, "%s: %d x %d", png, pw, ph);
    char head[64] = "";
    FILE *f = fopen(csv, "r");
    EXPECT(f && fgets(head, sizeof head, f) && !strcmp(head, "f,t,df,dt,erf,erf_rel\n"));
    if (f) fclose(f);
    snprintf(script, sizeof script, "load %s\ndata %s\nerf layer=nope\nerf n=0\nerf input=sideways\nerf split=bogus\n"
                                    "erf stray\nerf --csv\n", model, dir);
    o = cli_run(script);
    EXPECT_EQ_INT(o.n_errors, 6);
    EXPECT_MSG(strstr(o.err, "no layer 'nope' (modules: bn0, b1, b2, b3, b4, fc1, fc2") != NULL, "%s", o.err);
    EXPECT(strstr(o.err, "n=0: out of range") != NULL);
    EXPECT(strstr(o.err, "input=sideways: data, zero, noise or a .safetensors file") != NULL);
    EXPECT(strstr(o.err, "split=bogus") != NULL);
    EXPECT(strstr(o.err, "unexpected 'stray'") != NULL);
    EXPECT(strstr(o.err, "--csv needs a FILE") != NULL);
    model_destroy(m);
    dataset_destroy(ds);
}

/* erf compare=PATH: both models on the same inputs, side by side, both areas and their
 * difference. The default model against itself: the two maps equal bit for bit (the CSVs
 * byte for byte) and a difference of 0; against a copy with half its weights pruned: the
 * maps differ, and so does A's map from a plain erf of the same inputs not at all. The
 * PNG export writes both figures. */
static void test_erf_compare(void)
{
    char pruned[700], a[700], b[700], a2[720], b2[720], plain[700], png[700], png2[720], script[4800];
    snprintf(pruned, sizeof pruned, "%s", test_path("erf-pruned.safetensors"));
    snprintf(a, sizeof a, "%s", test_path("erf-same.csv"));
    snprintf(a2, sizeof a2, "%s", test_path("erf-same-compare.csv"));
    snprintf(b, sizeof b, "%s", test_path("erf-pruned.csv"));
    snprintf(b2, sizeof b2, "%s", test_path("erf-pruned-compare.csv"));
    snprintf(plain, sizeof plain, "%s", test_path("erf-plain.csv"));
    snprintf(png, sizeof png, "%s", test_path("erf-cmp.png"));
    snprintf(png2, sizeof png2, "%s", test_path("erf-cmp-compare.png"));
    snprintf(script, sizeof script,
             "load assets/default-model.safetensors\nprune magnitude target=0.5\nsave %s\n"
             "load assets/default-model.safetensors\n"
             "erf input=noise n=3 compare=assets/default-model.safetensors --csv %s\n"
             "erf input=noise n=3 compare=%s --csv %s\n"
             "view erf\nexport erf %s width=400 height=300\n"
             "erf input=noise n=3 --csv %s\n"
             "erf input=noise compare=nowhere.safetensors\n",
             pruned, a, pruned, b, png, plain);
    struct cli_output o = cli_run(script);
    EXPECT_EQ_INT(o.n_errors, 1);
    EXPECT(strstr(o.err, "erf: compare=") && strstr(o.err, "nowhere.safetensors"));
    EXPECT(strstr(o.out, "erf: A (assets/default-model.safetensors), head.bn, over 3 N(0, 1) noise inputs") != NULL);
    EXPECT(strstr(o.out, "erf: B (assets/default-model.safetensors), head.bn, over 3 N(0, 1) noise inputs") != NULL);
    const char *same = strstr(o.out, "erf compare (B - A): 68 % of the mass in ");
    REQUIRE(same);
    const char *eol = strchr(same, '\n');
    REQUIRE(eol);
    char line[600];
    snprintf(line, sizeof line, "%.*s", (int)(eol - same), same);
    EXPECT_MSG(strstr(line, "(+0, +0.0 %); 95 %") && strstr(line, "(+0, +0.0 %); maps") &&
               strstr(line, "differ by 0 in total variation"), "%s", line);
    const char *other = strstr(eol, "erf compare (B - A): ");
    REQUIRE(other);
    EXPECT_MSG(!strstr(other, "differ by 0 in total variation"), "%.300s", other);
    const char *left = strstr(o.out, "\nA (default-model.safetensors): ERF of head.bn"); /* side by side */
    REQUIRE(left);
    const char *right = strstr(left, "B (default-model.safetensors): ERF of head.bn");
    EXPECT(right && right < strchr(left + 1, '\n'));
    char *ta = file_text(a), *ta2 = file_text(a2), *tb = file_text(b), *tb2 = file_text(b2), *tp = file_text(plain);
    REQUIRE(ta && ta2 && tb && tb2 && tp);
    EXPECT(!strcmp(ta, ta2));
    EXPECT(!strcmp(ta, tb) && !strcmp(ta, tp));
    EXPECT(strcmp(tb, tb2) != 0);
    free(ta), free(ta2), free(tb), free(tb2), free(tp);
    int w = 0, h = 0;
    EXPECT(png_size(png, &w, &h, NULL) && w == 400 && h == 300);
    EXPECT(png_size(png2, &w, &h, NULL) && w == 400 && h == 300);
}

const struct test tests_erf[] = {
    TEST(test_single_conv_footprint),
    TEST(test_mass_measures),
    TEST(test_rf_box_matches_describe),
    TEST(test_layer_names),
    TEST(test_matches_reference_fixture),
    TEST(test_inputs_batches_csv_cancel),
    TEST(test_erf_command),
    TEST(test_erf_compare),
    {0},
};
