/* test_canvas.c: the cell canvas: the same drawing printed as ASCII, UTF-8 and ANSI colour,
 * checked against hand-worked expected output. */
#include <stdlib.h>
#include <string.h>

#include "basin/core/status.h"
#include "canvas.h"
#include "test.h"

static char *printed(const struct canvas *c)
{
    static char *last;
    free(last);
    last = canvas_string(c);
    return last ? last : (char *)"";
}

/* Text, clipping and trimming: one line per row, trailing blanks gone. */
static void test_text_and_trim(void)
{
    struct canvas c;
    REQUIRE_OK(canvas_init(&c, 8, 3, CANVAS_ASCII));
    EXPECT_EQ_INT(canvas_text(&c, 1, 0, CANVAS_NONE, "abc"), 3);
    EXPECT_EQ_INT(canvas_text(&c, 5, 1, CANVAS_NONE, "clipped"), 3);
    canvas_text(&c, -2, 2, CANVAS_NONE, "xyz");      /* starts left of the canvas */
    canvas_text(&c, 0, 5, CANVAS_NONE, "nowhere");   /* below it */
    EXPECT_STR(printed(&c), " abc\n     cli\nz\n"); /* x and y fell off the left edge */
    canvas_clear(&c);
    canvas_text(&c, 0, 0, CANVAS_NONE, "\xc3\xa9t\xc3\xa9"); /* "été": 3 cells; ASCII shows '?' */
    EXPECT_STR(printed(&c), "?t?\n\n\n");
    canvas_fini(&c);
    REQUIRE_OK(canvas_init(&c, 4, 1, CANVAS_UTF8));
    canvas_text(&c, 0, 0, CANVAS_NONE, "\xc3\xa9t\xc3\xa9");
    EXPECT_STR(printed(&c), "\xc3\xa9t\xc3\xa9\n");
    canvas_fini(&c);
}

/* A 2 x 4 matrix (row 0 at the bottom) as a heatmap: the ramp in ASCII, half-blocks with
 * the ramp's colours in ANSI. */
static void test_heatmap_ascii_and_ansi(void)
{
    const float m[2 * 4] = {0, 1, 2, 3,    /* row 0: bottom */
                            9, 9, 9, NAN}; /* row 1: top; NaN draws nothing */
    struct canvas c;
    REQUIRE_OK(canvas_init(&c, 4, 2, CANVAS_ASCII));
    canvas_heatmap(&c, 0, 0, 4, 2, m, 2, 4, 0, 9);
    /* v/9 * 9.999 -> ramp index: 0 ' ', 1.11 '.', 2.22 ':', 3.33 '-', 9 '@' */
    EXPECT_STR(printed(&c), "@@@\n .:-\n");
    canvas_fini(&c);

    REQUIRE_OK(canvas_init(&c, 4, 1, CANVAS_COLOR));
    canvas_heatmap(&c, 0, 0, 4, 1, m, 2, 4, 0, 9);
    const struct canvas_cell *k = canvas_at(&c, 1, 0);
    REQUIRE(k);
    EXPECT_EQ_INT(k->ch, 0x2580);
    EXPECT_EQ_INT(k->fg, canvas_ramp_color(1.0));
    EXPECT_EQ_INT(k->bg, canvas_ramp_color(1.0 / 9));
    k = canvas_at(&c, 3, 0);
    EXPECT_EQ_INT(k->fg, CANVAS_NONE); /* the NaN pixel */
    char want[512];
    snprintf(want, sizeof want,
             "\x1b[0m\x1b[38;5;%dm\x1b[48;5;%dm\xe2\x96\x80"
             "\x1b[0m\x1b[38;5;%dm\x1b[48;5;%dm\xe2\x96\x80"
             "\x1b[0m\x1b[38;5;%dm\x1b[48;5;%dm\xe2\x96\x80"
             "\x1b[0m\x1b[48;5;%dm\xe2\x96\x80\x1b[0m\n",
             canvas_ramp_color(1), canvas_ramp_color(0), canvas_ramp_color(1), canvas_ramp_color(1.0 / 9),
             canvas_ramp_color(1), canvas_ramp_color(2.0 / 9), canvas_ramp_color(3.0 / 9));
    EXPECT_STR(printed(&c), want);
    canvas_fini(&c);

    /* A larger matrix is averaged into the cells: 4 x 4 into 2 x 2 ASCII cells. */
    const float big[16] = {0, 0, 9, 9, 0, 0, 9, 9, 9, 9, 0, 0, 9, 9, 0, 0};
    REQUIRE_OK(canvas_init(&c, 2, 2, CANVAS_ASCII));
    canvas_heatmap(&c, 0, 0, 2, 2, big, 4, 4, 0, 9);
    EXPECT_STR(printed(&c), "@\n @\n");
    canvas_fini(&c);
}

/* The ramp's ends and middle. */
static void test_ramp(void)
{
    EXPECT_EQ_INT(canvas_ramp_color(0), 16 + 1);           /* dark blue */
    EXPECT_EQ_INT(canvas_ramp_color(1), 16 + 36 * 5);      /* red */
    EXPECT_EQ_INT(canvas_ramp_color(-3), canvas_ramp_color(0));
    EXPECT_EQ_INT(canvas_ramp_color(NAN), canvas_ramp_color(0));
    EXPECT_EQ_INT(canvas_ramp_color(0.6), 16 + 36 * 4 + 6 * 5); /* yellow at 3/5 */
}

/* A diagonal line: '*' cells in ASCII; braille dots in UTF-8, coloured in ANSI. */
static void test_plot(void)
{
    const float y[3] = {0, 1, 2};
    struct canvas_series s = {NULL, y, 3, 196, '*'};
    struct canvas c;
    REQUIRE_OK(canvas_init(&c, 3, 3, CANVAS_ASCII));
    canvas_plot(&c, 0, 0, 3, 3, &s, 1, 0, 2, 0, 2);
    EXPECT_STR(printed(&c), "  *\n *\n*\n");
    canvas_fini(&c);
    /* 1 x 1 cell = 2 x 4 dots: from (0, 3) to (1, 0) Bresenham sets (0,3) (0,2) (1,1) (1,0) */
    REQUIRE_OK(canvas_init(&c, 1, 1, CANVAS_UTF8));
    const float y2[2] = {0, 1};
    struct canvas_series s2 = {NULL, y2, 2, 46, 'o'};
    canvas_plot(&c, 0, 0, 1, 1, &s2, 1, 0, 1, 0, 1);
    EXPECT_EQ_INT(canvas_at(&c, 0, 0)->ch, 0x2800 + (0x40 | 0x04 | 0x10 | 0x08));
    canvas_fini(&c);
    REQUIRE_OK(canvas_init(&c, 1, 1, CANVAS_COLOR));
    canvas_plot(&c, 0, 0, 1, 1, &s2, 1, 0, 1, 0, 1);
    EXPECT_STR(printed(&c), "\x1b[0m\x1b[38;5;46m\xe2\xa1\x9c\x1b[0m\n");
    canvas_fini(&c);
}

/* Bars in eighths and hashes; axes with their labels where they fit. */
static void test_bars_and_axes(void)
{
    struct canvas c;
    REQUIRE_OK(canvas_init(&c, 4, 1, CANVAS_UTF8));
    canvas_bar(&c, 0, 0, 4, 0.5 + 1.0 / 32, 0); /* 2 cells and one eighth */
    EXPECT_STR(printed(&c), "\xe2\x96\x88\xe2\x96\x88\xe2\x96\x8f\n");
    canvas_fini(&c);
    REQUIRE_OK(canvas_init(&c, 4, 1, CANVAS_ASCII));
    canvas_bar(&c, 0, 0, 4, 0.74, 0);
    EXPECT_STR(printed(&c), "###\n");
    canvas_fini(&c);

    REQUIRE_OK(canvas_init(&c, 20, 5, CANVAS_ASCII));
    canvas_axis_x(&c, 4, 4, 16, 0, 10, 3, "%.0f s");
    canvas_axis_y(&c, 4, 0, 4, 4, 0, 8, 3, "%.0fk");
    EXPECT_STR(printed(&c), "  8k\n  4k\n\n  0k\n    0 s    5 s  10 s\n");
    canvas_scale(&c, 0, 0, 10, -80, 0, "%.0f");
    EXPECT(!strncmp(printed(&c), " .:-=+*#%@", 10));
    canvas_fini(&c);
}

const struct test tests_canvas[] = {
    TEST(test_text_and_trim),
    TEST(test_heatmap_ascii_and_ansi),
    TEST(test_ramp),
    TEST(test_plot),
    TEST(test_bars_and_axes),
    {0},
};
