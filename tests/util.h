/* util.h: helpers shared by test files: running command lines through a fresh app with
 * the output captured, running a shell command, and the data-layer fixtures (test_dataset.c,
 * test_features.c, test_cache.c, test_cli_data.c): tiny DCASE-layout data sets with a few 0.25 s clips
 * (8 kHz, written as float WAVs so the samples read back exactly), a small front end
 * (8 kHz, n_fft 256, hop 128, 16 mels) and the warnings logged meanwhile. Every file
 * goes under test_dir(). */
#ifndef BASIN_TESTS_UTIL_H
#define BASIN_TESTS_UTIL_H

#include <stddef.h>
#include <stdint.h>

struct frontend;

#define SR 8000
#define CLIP 2000   /* samples: 0.25 s */

/* test_dir() + "/" + the formatted name, into buf. */
char *path_of(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* mkdir -p (best effort). */
void mkdirs(const char *path);
/* 1 when text was written to path. */
int write_text(const char *path, const char *text);
/* A seeded clip: channel c is a sine at f0 (c + 1) Hz plus noise, float WAV; 1 on success. */
int write_clip(const char *path, int n_channels, long n_frames, int rate, double f0,
               uint64_t seed);
/* The small front end; 1 on success. */
int make_fe(struct frontend **fe);

/* The DCASE fixture: 3 classes x 2 recordings (lyon: devices a, b, c, in train; paris:
 * devices a, s1, in evaluate) plus one clip no setup file lists: 16 clips. */
enum { DC_SETUP = 1, DC_META_FULL = 2, DC_AUDIO = 4, DC_TEST_LIST = 8 };
int make_dcase(const char *dir, int flags);

/* Warnings logged between capture_start and capture_stop (through the runner's test_log),
 * one a line, and how many. */
extern char captured[8192];
extern int n_captured;
void capture_start(void);
void capture_stop(void);

int count_char(const char *s, char c);

/* What a run of command lines printed: stdout, the error lines, the warnings logged. */
struct cli_output {
    char *out, *err, *log;
    int n_errors;
};
/* Run the lines of script through a fresh app (as app_run_line, headless), capturing its
 * output; the result lives until the next cli_run. */
struct cli_output cli_run(const char *script);
/* Run cmd with sh, its standard output (and error, when cmd redirects it) into buf (n);
 * returns the exit status (-1 when it did not exit). */
int shell_output(const char *cmd, char *buf, size_t n);
/* The whole file at path as a new NUL-terminated string (free it), or NULL. */
char *file_text(const char *path);
/* The size of the PNG image at path from its IHDR chunk (1), or 0 when the file is not a
 * PNG; *bytes gets the file's size (may be NULL). */
int png_size(const char *path, int *w, int *h, long *bytes);

/* A split-view test's private tmux server (tmux -L sock -f /dev/null) and its pane "wb". */
struct tmux_pane {
    char sock[64];
    char screen[65536];     /* the last capture */
};
/* Run a tmux command on t's server, its output into buf (n; may be NULL); the exit status. */
int tmux_cmd(struct tmux_pane *t, char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The pane's text now (into t->screen). */
const char *tmux_capture(struct tmux_pane *t);
/* Poll the pane until it shows s (1) or timeout_s passes (0): no fixed sleeps. */
int tmux_wait_for(struct tmux_pane *t, const char *s, double timeout_s);

#endif
