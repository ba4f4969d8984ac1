/* test_views.c: the workbench's figures drawn into canvases of several sizes and modes:
 * expected text where it is hand-worked, and no drawing outside the canvas anywhere. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/status.h"
#include "basin/dsp/frontend.h"
#include "basin/train/eval.h"
#include "canvas.h"
#include "test.h"
#include "views.h"

static char *as_text(const struct canvas *c)
{
    static char *last;
    free(last);
    last = canvas_string(c);
    return last ? last : (char *)"";
}

/* Probabilities: largest first, a bar and the percentage on each line. */
static void test_probs(void)
{
    const float p[3] = {0.2f, 0.7f, 0.1f};
    const char *labels[3] = {"airport", "park", "tram"};
    struct canvas c;
    REQUIRE_OK(canvas_init(&c, 40, 4, CANVAS_ASCII));
    view_probs(&c, "park.wav", p, 3, labels);
    /* bar width 40 - 28 = 12: 0.7 -> 8 cells, 0.2 -> 2, 0.1 -> 1 */
    EXPECT_STR(as_text(&c), "park.wav\n"
                            "park              ########      70.0 %\n"
                            "airport           ##            20.0 %\n"
                            "tram              #             10.0 %\n");
    canvas_fini(&c);
}

/* Per-device accuracy from a hand-made result: seen and unseen marked and pooled. */
static void test_devices(void)
{
    struct eval_group dev[2];
    memset(dev, 0, sizeof dev);
    dev[0].n = 4, dev[0].correct = 3, dev[0].acc = 0.75, dev[0].logloss = 0.5;
    dev[1].n = 2, dev[1].correct = 1, dev[1].acc = 0.5, dev[1].logloss = 1.0;
    int seen[2] = {1, 0};
    struct eval_result r;
    memset(&r, 0, sizeof r);
    r.n_devices = 2;
    r.per_device = dev;
    r.device_seen = seen;
    r.seen = dev[0];
    r.unseen = dev[1];
    const char *names[2] = {"a", "s4"};
    struct canvas c;
    REQUIRE_OK(canvas_init(&c, 44, 6, CANVAS_ASCII));
    view_devices(&c, "accuracy per device", &r, names);
    char *t = as_text(&c);
    EXPECT(strstr(t, "a      seen   ########") != NULL);   /* 0.75 of 10 cells: 8 */
    EXPECT(strstr(t, "s4     unseen #####") != NULL);
    EXPECT(strstr(t, " 75.0 % (4)") && strstr(t, " 50.0 % (2)"));
    EXPECT(strstr(t, "unseen        #####") != NULL);     /* the pooled line */
    canvas_fini(&c);
}

/* A spectrogram with its axes and scale fits any size; curves draw while empty and full. */
static void test_spec_and_curves_fit(void)
{
    struct frontend_params p;
    REQUIRE_OK(frontend_preset(&p, "demo"));
    enum { F = 64, T = 251 };
    float *y = malloc(sizeof(float) * F * T);
    for (int i = 0; i < F * T; i++) y[i] = (float)(i % T) / T * -80.0f;
    struct curves cv;
    curves_init(&cv);
    static const int sizes[][2] = {{80, 12}, {120, 30}, {20, 5}, {8, 3}};
    for (int mode = 0; mode < 3; mode++)
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            struct canvas c;
            REQUIRE_OK(canvas_init(&c, sizes[k][0], sizes[k][1], (enum canvas_mode)mode));
            view_spec(&c, "clip", y, F, T, &p, -80, 0, "dB");
            if (sizes[k][1] >= 12) {
                char *t = as_text(&c);
                EXPECT(strstr(t, "Hz") && strstr(t, " s") && strstr(t, "dB"));
            }
            canvas_clear(&c);
            view_curves(&c, &cv);
            canvas_fini(&c);
        }
    curves_reset(&cv, "train cpresnet", 4, 10);
    for (int s = 0; s < 40; s++) curves_add_step(&cv, s / 10.0, 2.3 * exp(-s / 20.0), s / 50.0);
    for (int e = 1; e <= 4; e++) curves_add_epoch(&cv, e, 2.0 / e, 0.2 * e, e == 2 ? NAN : 2.1 / e, 0.18 * e);
    struct canvas c;
    REQUIRE_OK(canvas_init(&c, 100, 20, CANVAS_ASCII));
    view_curves(&c, &cv);
    char *t = as_text(&c);
    EXPECT(strstr(t, "train cpresnet") && strstr(t, "loss") && strstr(t, "accuracy"));
    EXPECT(strchr(t, '*') && strchr(t, 'o'));
    canvas_fini(&c);
    curves_fini(&cv);
    free(y);
}

const struct test tests_views[] = {
    TEST(test_probs),
    TEST(test_devices),
    TEST(test_spec_and_curves_fit),
    {0},
};
