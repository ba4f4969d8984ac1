/* test_export.c: PNG figures decode to images of the size asked, with the colour ramp where
 * the data is; the export command writes the views' figures and refuses what it cannot. */
#include <cairo.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/status.h"
#include "export.h"
#include "test.h"
#include "util.h"

/* The colour of pixel (x, y) of a PNG file (0xRRGGBB), or -1. */
static long pixel(const char *path, int x, int y, int *w, int *h)
{
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        return -1;
    }
    cairo_surface_flush(s);
    *w = cairo_image_surface_get_width(s);
    *h = cairo_image_surface_get_height(s);
    const unsigned char *d = cairo_image_surface_get_data(s);
    uint32_t v = 0;
    memcpy(&v, d + (long)y * cairo_image_surface_get_stride(s) + 4L * x, 4);
    cairo_surface_destroy(s);
    return (long)(v & 0xffffff);
}

static void test_heatmap_png(void)
{
    /* a 2 x 2 matrix: bottom row 0, 1; top row 1, 0 */
    const float m[4] = {0, 1, 1, 0};
    struct export_axis x = {.lo = 0, .hi = 2, .label = "x"}, y = {.lo = 0, .hi = 2, .label = "y"};
    const char *path = test_path("heat.png");
    REQUIRE_OK(export_heatmap_png(path, 500, 300, "title", m, 2, 2, 0, 1, "unit", &x, &y));
    int w = 0, h = 0;
    /* the plot area is x 80..310, y 40..240: bottom-left cell (value 0) and top-left (1) */
    EXPECT_EQ_INT(pixel(path, 100, 220, &w, &h), export_ramp_rgb(0));
    EXPECT_EQ_INT(pixel(path, 100, 60, &w, &h), export_ramp_rgb(1));
    EXPECT_EQ_INT(w, 500);
    EXPECT_EQ_INT(h, 300);
    EXPECT_EQ_INT(pixel(path, 499, 299, &w, &h), 0xffffff); /* the white margin */
    /* a folder that does not exist: one error naming the path, no file */
    EXPECT_EQ_INT(export_heatmap_png("/nonexistent/x.png", 500, 300, "t", m, 2, 2, 0, 1, "u", &x, &y), STATUS_IO);
    EXPECT(strstr(status_detail(), "/nonexistent/x.png") != NULL);
}

static void test_export_command(void)
{
    char script[2048];
    const char *wav = test_path("exp.wav"), *spec = test_path("spec.png"), *bad = test_path("spec.jpg");
    snprintf(script, sizeof script,
             "synth scene=tram seconds=2 out=%s\nclip %s\nexport spec %s width=640 height=400\nexport spec %s\n"
             "export model %s\nexport probs %s\nexport nothing %s\n",
             wav, wav, spec, bad, spec, spec, spec);
    struct cli_output o = cli_run(script);
    EXPECT_EQ_INT(o.n_errors, 4);
    EXPECT(strstr(o.err, "name it .png") && strstr(o.err, "no figure 'model'") && strstr(o.err, "no prediction yet"));
    int w = 0, h = 0;
    EXPECT(pixel(spec, 0, 0, &w, &h) == 0xffffff);
    EXPECT_EQ_INT(w, 640);
    EXPECT_EQ_INT(h, 400);
}

const struct test tests_export[] = {
    TEST(test_heatmap_png),
    TEST(test_export_command),
    {0},
};
