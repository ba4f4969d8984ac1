/* util.c: helpers shared by test files (see util.h). */
#include "util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "app.h"
#include "basin/audio/audio_file.h"
#include "basin/core/log.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/dsp/frontend.h"
#include "test.h"

char *path_of(char *buf, size_t n, const char *fmt, ...)
{
    int k = snprintf(buf, n, "%s/", test_dir());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + k, n - (size_t)k, fmt, ap);
    va_end(ap);
    return buf;
}

void mkdirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fputs(text, f);
    return fclose(f) == 0;
}

int write_clip(const char *path, int n_channels, long n_frames, int rate, double f0,
                      uint64_t seed)
{
    struct audio_file af;
    if (audio_file_alloc(&af, n_channels, n_frames, rate)) return 0;
    struct rng r;
    rng_seed(&r, seed);
    for (int c = 0; c < n_channels; c++) {
        float *x = audio_file_channel(&af, c);
        for (long t = 0; t < n_frames; t++)
            x[t] = (float)(0.3 * sin(2 * M_PI * f0 * (c + 1) * t / rate) +
                           0.05 * (rng_uniform(&r) - 0.5));
    }
    int ok = audio_file_write(path, &af, AUDIO_FILE_WAV_F32) == STATUS_OK;
    audio_file_fini(&af);
    return ok;
}

int make_fe(struct frontend **fe)
{
    struct frontend_params p;
    if (frontend_preset(&p, "demo")) return 0;
    p.sample_rate_hz = SR;
    p.n_fft = 256;
    p.win_length = 256;
    p.hop = 128;
    p.n_mels = 16;
    p.fmin_hz = 0;
    p.fmax_hz = SR / 2;
    return frontend_create(fe, &p) == STATUS_OK;
}

static const char *const dc_classes[3] = {"street_traffic", "airport", "park"};

int make_dcase(const char *dir, int flags)
{
    char p[1024], meta[8192], train[4096], eval[4096], test[4096];
    snprintf(p, sizeof p, "%s/audio", dir);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/evaluation_setup", dir);
    if (flags & DC_SETUP) mkdirs(p);
    int km = snprintf(meta, sizeof meta, "%s\n",
                      flags & DC_META_FULL ? "filename\tscene_label\tidentifier\tsource_label"
                                           : "filename\tscene_label");
    int kt = snprintf(train, sizeof train, "filename\tscene_label\n");
    int ke = snprintf(eval, sizeof eval, "filename\tscene_label\n");
    int kx = snprintf(test, sizeof test, "filename\n");
    static const char *const devs[2][3] = {{"a", "b", "c"}, {"a", "s1", NULL}};
    for (int c = 0; c < 3; c++)
        for (int r = 0; r < 2; r++)
            for (int d = 0; d < 3 && devs[r][d]; d++) {
                const char *city = r ? "paris" : "lyon";
                int rec = 100 * c + r;
                char name[256];
                snprintf(name, sizeof name, "audio/%s-%s-%d-7-%s.wav", dc_classes[c], city, rec,
                         devs[r][d]);
                if (flags & DC_META_FULL)
                    km += snprintf(meta + km, sizeof meta - (size_t)km, "%s\t%s\t%s-%d\t%s\n", name,
                                   dc_classes[c], city, rec, devs[r][d]);
                else
                    km += snprintf(meta + km, sizeof meta - (size_t)km, "%s\t%s\n", name,
                                   dc_classes[c]);
                if (r == 0) kt += snprintf(train + kt, sizeof train - (size_t)kt, "%s\t%s\n", name, dc_classes[c]);
                else ke += snprintf(eval + ke, sizeof eval - (size_t)ke, "%s\t%s\n", name, dc_classes[c]);
                if (r == 1) kx += snprintf(test + kx, sizeof test - (size_t)kx, "%s\n", name);
                if (flags & DC_AUDIO) {
                    snprintf(p, sizeof p, "%s/%s", dir, name);
                    if (!write_clip(p, 1, CLIP, SR, 300.0 + 150.0 * c + 20.0 * d, (uint64_t)(rec * 10 + d)))
                        return 0;
                }
            }
    const char *extra = flags & DC_META_FULL ? "audio/airport-lyon-200-3-b.wav\tairport\tlyon-200\tb\n"
                                             : "audio/airport-lyon-200-3-b.wav\tairport\n";
    km += snprintf(meta + km, sizeof meta - (size_t)km, "%s", extra);
    if (flags & DC_AUDIO) {
        snprintf(p, sizeof p, "%s/audio/airport-lyon-200-3-b.wav", dir);
        if (!write_clip(p, 1, CLIP, SR, 500.0, 77)) return 0;
    }
    snprintf(p, sizeof p, "%s/meta.csv", dir);
    if (!write_text(p, meta)) return 0;
    if (flags & DC_SETUP) {
        snprintf(p, sizeof p, "%s/evaluation_setup/fold1_train.csv", dir);
        if (!write_text(p, train)) return 0;
        snprintf(p, sizeof p, "%s/evaluation_setup/fold1_evaluate.csv", dir);
        if (!write_text(p, eval)) return 0;
        if (flags & DC_TEST_LIST) {
            snprintf(p, sizeof p, "%s/evaluation_setup/fold1_test.csv", dir);
            if (!write_text(p, test)) return 0;
        }
    }
    return 1;
}

char captured[8192];
int n_captured;

void capture_start(void)
{
    captured[0] = 0;
    n_captured = 0;
    test_log_clear();
}

void capture_stop(void)
{
    const char *log = test_log();
    snprintf(captured, sizeof captured, "%s", log);
    n_captured = count_char(captured, '\n');
}

int count_char(const char *s, char c)
{
    int n = 0;
    for (; *s; s++) n += *s == c;
    return n;
}

struct cli_output cli_run(const char *script)
{
    static char *out, *err, *log;
    size_t n_out, n_err;
    free(out), free(err), free(log);
    out = err = NULL;
    struct app a;
    app_init(&a);
    a.out = open_memstream(&out, &n_out);
    a.err = open_memstream(&err, &n_err);
    capture_start();
    char *copy = strdup(script), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line && !a.quit; line = strtok_r(NULL, "\n", &save))
        app_run_line(&a, line);
    free(copy);
    capture_stop();
    log = strdup(captured);
    struct cli_output r = {NULL, NULL, log, a.n_errors};
    fclose(a.out);
    fclose(a.err);
    app_fini(&a);
    r.out = out;
    r.err = err;
    return r;
}

char *file_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *text = NULL;
    size_t n = 0, cap = 0, k;
    char chunk[65536];
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (n + k + 1 > cap) {
            cap = 2 * (n + k + 1);
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                fclose(f);
                return NULL;
            }
            text = t;
        }
        memcpy(text + n, chunk, k);
        n += k;
    }
    fclose(f);
    if (!text) text = calloc(1, 1);
    else text[n] = 0;
    return text;
}

int shell_output(const char *cmd, char *buf, size_t n)
{
    buf[0] = 0;
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t k = fread(buf, 1, n - 1, p);
    buf[k] = 0;
    long more = 0;
    while (fgetc(p) != EOF) more++;
    if (more) /* in the test's log: a test that then misses a string says why */
        log_warn("shell_output: %ld bytes past the %zu-byte buffer were dropped", more, n - 1);
    int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int png_size(const char *path, int *w, int *h, long *bytes)
{
    unsigned char b[24];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    const size_t k = fread(b, 1, sizeof b, f);
    fseek(f, 0, SEEK_END);
    if (bytes) *bytes = ftell(f);
    fclose(f);
    if (k < sizeof b || memcmp(b, "\x89PNG\r\n\x1a\n", 8) || memcmp(b + 12, "IHDR", 4)) return 0;
    *w = (int)((unsigned)b[16] << 24 | (unsigned)b[17] << 16 | (unsigned)b[18] << 8 | b[19]);
    *h = (int)((unsigned)b[20] << 24 | (unsigned)b[21] << 16 | (unsigned)b[22] << 8 | b[23]);
    return 1;
}

int tmux_cmd(struct tmux_pane *t, char *buf, size_t n, const char *fmt, ...)
{
    char args[4096], cmd[4400], ignore[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "tmux -L %s -f /dev/null %s 2>&1", t->sock, args);
    return shell_output(cmd, buf ? buf : ignore, buf ? n : sizeof ignore);
}

const char *tmux_capture(struct tmux_pane *t)
{
    tmux_cmd(t, t->screen, sizeof t->screen, "capture-pane -t wb -p");
    return t->screen;
}

int tmux_wait_for(struct tmux_pane *t, const char *s, double timeout_s)
{
    struct timespec t0, now, nap = {0, 100 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        if (strstr(tmux_capture(t), s)) return 1;
        nanosleep(&nap, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) * 1e-9 < timeout_s);
    return 0;
}
