/* test_synth.c: the scene synthesiser: parameters, determinism, devices, class statistics,
 * the DCASE layout and its splits, exact clip counts, reuse, errors, cancellation (also
 * inside a segment, and a killed writer's temporary), modes and the cache directory.
 * Timing is never asserted here (generation speed is measured separately). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "basin/audio/audio_file.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/data/synth.h"
#include "basin/dsp/frontend.h"
#include "test.h"

/* A small data set: 3 classes x 3 locations (1 for evaluation) x 2 segments of 1 s; all
 * nine devices, s4-s6 unseen; train segments also on 2 seen devices, evaluate segments on
 * all 8 others, so every device shows up in evaluate. 3 * 2 * (2 * 3 + 1 * 9) = 90 clips. */
static void small_params(struct synth_params *p)
{
    synth_params_default(p);
    p->clip_s = 1.0;
    p->n_classes = 3;
    p->n_locations = 3;
    p->n_eval_locations = 1;
    p->n_segments = 2;
    p->train_devices = 2;
    p->eval_devices = 8;
    p->seed = 7;
}

/* ---- small file helpers ------------------------------------------------------------- */

static char *slurp(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = 0;
    if (len) *len = n;
    return buf;
}

static int same_file(const char *a, const char *b)
{
    long na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, (size_t)na);
    free(x);
    free(y);
    return same;
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Entries of dir whose name contains needle. */
static int count_entries(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, needle)) n++;
    closedir(d);
    return n;
}

/* Split a line in place at tabs; returns the field count (at most max). */
static int fields(char *line, char **f, int max)
{
    int n = 0;
    line[strcspn(line, "\r\n")] = 0;
    for (char *s = line; n < max;) {
        f[n++] = s;
        char *t = strchr(s, '\t');
        if (!t) break;
        *t = 0;
        s = t + 1;
    }
    return n;
}

static double correlation(const float *x, const float *y, long n)
{
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    for (long i = 0; i < n; i++) {
        sx += x[i], sy += y[i];
        sxx += (double)x[i] * x[i], syy += (double)y[i] * y[i], sxy += (double)x[i] * y[i];
    }
    double cov = sxy - sx * sy / n, vx = sxx - sx * sx / n, vy = syy - sy * sy / n;
    return cov / sqrt(vx * vy + 1e-30);
}

/* Correlation of two clips' log-mel spectrograms (demo front end at 22 050 Hz), each mel
 * bin's mean removed first: a device's fixed colouring shifts every bin by a constant, so
 * what is left is how the two spectrograms move together over time. The same sound field
 * through two devices gives a high value, two different fields a value near 0. */
static double logmel_correlation(const float *x, const float *y, long n)
{
    struct frontend_params fp;
    struct frontend *fe = NULL;
    struct frontend_work *w = NULL;
    if (frontend_preset(&fp, "demo") || frontend_params_set(&fp, "sr", "22050") ||
        frontend_create(&fe, &fp) || frontend_work_create(&w, fe))
        return NAN;
    long F = fp.n_mels, T = frontend_frames(fe, n);
    float *a = mem_alloc(F * T * sizeof *a), *b = mem_alloc(F * T * sizeof *b);
    double r = NAN;
    if (a && b && !frontend_compute(fe, w, x, n, a) && !frontend_compute(fe, w, y, n, b)) {
        for (long f = 0; f < F; f++) {
            double ma = 0, mb = 0;
            for (long t = 0; t < T; t++) ma += a[f * T + t], mb += b[f * T + t];
            for (long t = 0; t < T; t++)
                a[f * T + t] -= (float)(ma / T), b[f * T + t] -= (float)(mb / T);
        }
        r = correlation(a, b, F * T);
    }
    mem_free(a);
    mem_free(b);
    frontend_work_destroy(w);
    frontend_destroy(fe);
    return r;
}

/* ---- parameters and names ----------------------------------------------------------- */

static void test_params_defaults_and_validation(void)
{
    struct synth_params p, q;
    synth_params_default(&p);
    REQUIRE_OK(synth_params_validate(&p));
    EXPECT_EQ_INT(p.sample_rate_hz, 22050);
    EXPECT_EQ_INT(synth_clip_count(&p), 950);
    char s[512];
    EXPECT(synth_params_string(&p, s, sizeof s) < (int)sizeof s);
    EXPECT(strstr(s, "synth v1 sr=22050 clip_s=5 classes=10") == s);
    q = p;
    q.seed = 2;
    EXPECT(synth_params_hash(&p) != synth_params_hash(&q));
    EXPECT(synth_params_hash(&p) ==
           synth_params_hash(&(struct synth_params){
               p.sample_rate_hz, p.clip_s, p.n_classes, p.n_devices, p.n_unseen, p.n_locations,
               p.n_eval_locations, p.n_segments, p.train_devices, p.eval_devices, p.seed, 0}));

    q = p, q.n_unseen = 8;
    EXPECT_EQ_INT(synth_params_validate(&q), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "train_devices") != NULL);
    q = p, q.n_unseen = 9;
    EXPECT_EQ_INT(synth_params_validate(&q), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "n_unseen 9") != NULL);
    q = p, q.n_eval_locations = 8;
    EXPECT_EQ_INT(synth_params_validate(&q), STATUS_INVALID);
    q = p, q.n_classes = 11;
    EXPECT_EQ_INT(synth_params_validate(&q), STATUS_INVALID);
    q = p, q.sample_rate_hz = 100;
    EXPECT_EQ_INT(synth_params_validate(&q), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "100 Hz") != NULL);
    q = p, q.clip_s = 0;
    EXPECT_EQ_INT(synth_params_validate(&q), STATUS_INVALID);
    q = p, q.eval_devices = 0;
    EXPECT_EQ_INT(synth_params_validate(&q), STATUS_INVALID);
}

static void test_names(void)
{
    EXPECT_STR(synth_class_name(0), "airport");
    EXPECT_STR(synth_class_name(9), "tram");
    EXPECT(synth_class_name(10) == NULL && synth_class_name(-1) == NULL);
    EXPECT_STR(synth_device_name(0), "a");
    EXPECT_STR(synth_device_name(3), "s1");
    EXPECT_STR(synth_device_name(8), "s6");
    EXPECT(synth_device_name(9) == NULL);
    for (int k = 0; k < SYNTH_MAX_CLASSES; k++)
        EXPECT_EQ_INT(synth_class_index(synth_class_name(k)), k);
    for (int d = 0; d < SYNTH_MAX_DEVICES; d++)
        EXPECT_EQ_INT(synth_device_index(synth_device_name(d)), d);
    EXPECT_EQ_INT(synth_class_index("beach"), -1);
    EXPECT_EQ_INT(synth_device_index(NULL), -1);
}

/* ---- clips in memory ---------------------------------------------------------------- */

static void test_clip_deterministic_and_sane(void)
{
    long n = 22050;
    float *x = mem_alloc(n * sizeof *x), *y = mem_alloc(n * sizeof *y);
    REQUIRE(x && y);
    for (int k = 0; k < SYNTH_MAX_CLASSES; k++) {
        REQUIRE_OK(synth_clip(NULL, k, 0, 11, x, n));
        REQUIRE_OK(synth_clip(NULL, k, 0, 11, y, n));
        EXPECT_MSG(!memcmp(x, y, n * sizeof *x), "%s: same seed, different samples",
                   synth_class_name(k));
        double s = 0, peak = 0;
        int finite = 1;
        for (long i = 0; i < n; i++) {
            finite &= isfinite(x[i]);
            s += (double)x[i] * x[i];
            if (fabs(x[i]) > peak) peak = fabs(x[i]);
        }
        double rms_db = 10 * log10(s / n + 1e-30);
        EXPECT_MSG(finite && peak <= 1 && rms_db > -50 && rms_db < -12,
                   "%s: rms %.1f dBFS, peak %.3f", synth_class_name(k), rms_db, peak);
        REQUIRE_OK(synth_clip(NULL, k, 0, 12, y, n));
        EXPECT_MSG(memcmp(x, y, n * sizeof *x) != 0, "%s: seeds 11 and 12 give the same clip",
                   synth_class_name(k));
    }
    /* Other rates: filters and delays scale, nothing blows up. */
    struct synth_params p;
    synth_params_default(&p);
    for (int r = 0; r < 2; r++) {
        p.sample_rate_hz = r ? 48000 : 8000;
        long m = r ? n : 8000; /* x holds n samples */
        for (int k = 0; k < SYNTH_MAX_CLASSES; k++) {
            REQUIRE_OK(synth_clip(&p, k, 8, 3, x, m));
            double s = 0;
            int finite = 1;
            for (long i = 0; i < m; i++)
                finite &= isfinite(x[i]) && fabs(x[i]) <= 1, s += x[i] * x[i];
            EXPECT_MSG(finite && s > 0, "%s at %d Hz: non-finite, clipped or silent",
                       synth_class_name(k), p.sample_rate_hz);
        }
    }
    EXPECT_EQ_INT(synth_clip(NULL, 10, 0, 1, x, n), STATUS_INVALID);
    EXPECT_EQ_INT(synth_clip(NULL, 0, 9, 1, x, n), STATUS_INVALID);
    EXPECT_EQ_INT(synth_clip(NULL, 0, 0, 1, x, 0), STATUS_INVALID);
    mem_free(x);
    mem_free(y);
}

/* The same sound field through two devices is one recording coloured twice: different
 * samples, spectrograms that move together. Two different segments do not, on average (a
 * pair of slow, random traffic envelopes can correlate by chance, so per class only the
 * mean is bounded). */
static void test_clip_devices_colour_the_same_field(void)
{
    long n = 2 * 22050;
    float *a = mem_alloc(n * sizeof *a), *d = mem_alloc(n * sizeof *d);
    REQUIRE(a && d);
    double diff = 0;
    for (int k = 0; k < SYNTH_MAX_CLASSES; k++) {
        REQUIRE_OK(synth_clip(NULL, k, 0, 5, a, n));
        for (int dev = 1; dev < SYNTH_MAX_DEVICES; dev++) {
            if ((dev + k) % 3) continue; /* a third of the pairs, every device 3+ times */
            REQUIRE_OK(synth_clip(NULL, k, dev, 5, d, n));
            double r = logmel_correlation(a, d, n), rw = correlation(a, d, n);
            EXPECT_MSG(r > 0.75 && rw < 0.995, "%s on %s vs a: log-mel correlation %.3f, "
                       "waveform %.3f", synth_class_name(k), synth_device_name(dev), r, rw);
        }
        REQUIRE_OK(synth_clip(NULL, k, 0, 6, d, n));
        diff += logmel_correlation(a, d, n) / SYNTH_MAX_CLASSES;
    }
    EXPECT_MSG(diff < 0.25, "seeds 5 and 6: mean log-mel correlation %.3f", diff);
    mem_free(a);
    mem_free(d);
}

/* Mean log-mel spectra (demo front end at 22 050 Hz) differ between most pairs of classes
 * by more than they vary within a class. */
static void test_class_spectra_differ(void)
{
    enum { K = SYNTH_MAX_CLASSES, SEEDS = 3, F = 64 };
    long n = 2 * 22050;
    struct frontend_params fp;
    REQUIRE_OK(frontend_preset(&fp, "demo"));
    REQUIRE_OK(frontend_params_set(&fp, "sr", "22050"));
    struct frontend *fe = NULL;
    struct frontend_work *w = NULL;
    REQUIRE_OK(frontend_create(&fe, &fp));
    REQUIRE_OK(frontend_work_create(&w, fe));
    long T = frontend_frames(fe, n);
    float *x = mem_alloc(n * sizeof *x), *m = mem_alloc(F * T * sizeof *m);
    static double mean[K][SEEDS][F];
    REQUIRE(x && m);
    for (int k = 0; k < K; k++)
        for (int s = 0; s < SEEDS; s++) {
            REQUIRE_OK(synth_clip(NULL, k, 0, 100 + s, x, n));
            REQUIRE_OK(frontend_compute(fe, w, x, n, m));
            for (int f = 0; f < F; f++) {
                double acc = 0;
                for (long t = 0; t < T; t++) acc += m[f * T + t];
                mean[k][s][f] = acc / T;
            }
        }
    /* RMS difference in dB between class centroids, against the within-class spread. */
    double centroid[K][F] = {{0}}, within = 0;
    for (int k = 0; k < K; k++)
        for (int f = 0; f < F; f++) {
            for (int s = 0; s < SEEDS; s++) centroid[k][f] += mean[k][s][f] / SEEDS;
            for (int s = 0; s < SEEDS; s++)
                within += pow(mean[k][s][f] - centroid[k][f], 2) / (K * SEEDS * F);
        }
    within = sqrt(within);
    int pairs = 0, apart = 0;
    for (int i = 0; i < K; i++)
        for (int j = i + 1; j < K; j++) {
            double d = 0;
            for (int f = 0; f < F; f++) d += pow(centroid[i][f] - centroid[j][f], 2) / F;
            d = sqrt(d);
            pairs++;
            apart += d > within;
        }
    EXPECT_MSG(apart >= pairs * 8 / 10, "only %d of %d class pairs differ by more than the "
               "within-class spread (%.2f dB)", apart, pairs, within);
    mem_free(x);
    mem_free(m);
    frontend_work_destroy(w);
    frontend_destroy(fe);
}

/* ---- the data set on disk ----------------------------------------------------------- */

struct meta_row {
    char file[128], label[32], ident[48], dev[8];
    int split; /* -1 none, 0 train, 1 evaluate */
};

/* Read dir/meta.csv into rows (malloc'd); checks the header. Returns the count, -1 on error. */
static int read_meta(const char *dir, struct meta_row **out)
{
    char path[1024], line[200], *f[8];
    snprintf(path, sizeof path, "%s/meta.csv", dir);
    FILE *fp = fopen(path, "r");
    if (!fp) return -1;
    int n = 0, cap = 64;
    struct meta_row *rows = malloc(cap * sizeof *rows);
    if (!rows || !fgets(line, sizeof line, fp) ||
        strcmp(line, "filename\tscene_label\tidentifier\tsource_label\n")) {
        fclose(fp);
        free(rows);
        return -1;
    }
    while (fgets(line, sizeof line, fp)) {
        if (fields(line, f, 8) != 4) {
            n = -1;
            break;
        }
        if (n == cap) {
            struct meta_row *more = realloc(rows, (cap *= 2) * sizeof *rows);
            if (!more) {
                n = -1;
                break;
            }
            rows = more;
        }
        if (strlen(f[0]) >= sizeof rows[n].file || strlen(f[1]) >= sizeof rows[n].label ||
            strlen(f[2]) >= sizeof rows[n].ident || strlen(f[3]) >= sizeof rows[n].dev) {
            n = -1;
            break;
        }
        strcpy(rows[n].file, f[0]);
        strcpy(rows[n].label, f[1]);
        strcpy(rows[n].ident, f[2]);
        strcpy(rows[n].dev, f[3]);
        rows[n].split = -1;
        n++;
    }
    fclose(fp);
    if (n < 0) {
        free(rows);
        return -1;
    }
    *out = rows;
    return n;
}

static int find_row(struct meta_row *rows, int n, const char *file)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(rows[i].file, file)) return i;
    return -1;
}

static void test_write_layout_and_splits(void)
{
    struct synth_params p;
    small_params(&p);
    const char *dir = test_path("layout");
    REQUIRE_OK(synth_write(&p, dir, NULL));
    EXPECT_EQ_INT(count_entries(test_dir(), ".tmp-"), 0);

    struct meta_row *rows = NULL;
    int n = read_meta(dir, &rows);
    REQUIRE(n > 0);
    EXPECT_EQ_INT(n, synth_clip_count(&p));
    EXPECT_EQ_INT(n, 90);
    for (int i = 0; i + 1 < n; i++) EXPECT(strcmp(rows[i].file, rows[i + 1].file) < 0);

    /* Names: audio/<scene>-<city>-<location>-<segment>-<device>.wav, consistent with the
     * columns; every file a 1-s mono 16-bit clip at 22 050 Hz. */
    for (int i = 0; i < n; i++) {
        struct meta_row *r = &rows[i];
        char want[160];
        int seg = -1;
        const char *tail = r->file + 6 + strlen(r->label) + 1 + strlen(r->ident) + 1;
        EXPECT(!strncmp(r->file, "audio/", 6) && synth_class_index(r->label) >= 0 &&
               synth_device_index(r->dev) >= 0);
        if (strlen(r->file) > 6 + strlen(r->label) + strlen(r->ident) + 2) sscanf(tail, "%d", &seg);
        snprintf(want, sizeof want, "audio/%s-%s-%d-%s.wav", r->label, r->ident, seg, r->dev);
        EXPECT_STR(r->file, want);
        EXPECT(strchr(r->ident, '-') != NULL);
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, r->file);
        struct audio_file_info info;
        if (i % 7 == 0) {
            REQUIRE_OK(audio_file_probe(path, &info));
            EXPECT_EQ_INT(info.n_channels, 1);
            EXPECT_EQ_INT(info.sample_rate_hz, 22050);
            EXPECT_EQ_INT(info.n_frames, 22050);
            EXPECT(strstr(info.format, "16 bit") != NULL);
        } else {
            EXPECT(exists(path));
        }
    }

    /* The setup files: headers, every file in meta, each clip in exactly one split, test =
     * evaluate without labels. */
    static const char *const names[3] = {"fold1_train.csv", "fold1_evaluate.csv", "fold1_test.csv"};
    static const char *const headers[3] = {"filename\tscene_label\n", "filename\tscene_label\n",
                                           "filename\n"};
    int count[3] = {0};
    for (int s = 0; s < 3; s++) {
        char path[1024], line[1024], *f[4] = {0};
        snprintf(path, sizeof path, "%s/evaluation_setup/%s", dir, names[s]);
        FILE *fp = fopen(path, "r");
        REQUIRE(fp);
        EXPECT(fgets(line, sizeof line, fp) && !strcmp(line, headers[s]));
        while (fgets(line, sizeof line, fp)) {
            int nf = fields(line, f, 4);
            EXPECT_EQ_INT(nf, s < 2 ? 2 : 1);
            int i = find_row(rows, n, f[0]);
            EXPECT_MSG(i >= 0, "%s: %s is not in meta.csv", names[s], f[0]);
            if (i < 0) continue;
            count[s]++;
            if (s < 2) {
                if (nf == 2) EXPECT_STR(f[1], rows[i].label);
                EXPECT_MSG(rows[i].split == -1, "%s is in two splits", f[0]);
                rows[i].split = s;
            } else {
                EXPECT_MSG(rows[i].split == 1, "fold1_test: %s is not an evaluate clip", f[0]);
            }
        }
        fclose(fp);
    }
    EXPECT_EQ_INT(count[0] + count[1], n);
    EXPECT_EQ_INT(count[2], count[1]);
    EXPECT_EQ_INT(count[0], 3 * 2 * 2 * 3);

    /* Splits are disjoint by identifier; unseen devices never train; every device is in
     * evaluate; each identifier has one scene. */
    int dev_in[2][SYNTH_MAX_DEVICES] = {{0}};
    for (int i = 0; i < n; i++) {
        REQUIRE(rows[i].split >= 0);
        dev_in[rows[i].split][synth_device_index(rows[i].dev)]++;
        for (int j = 0; j < n; j++)
            if (!strcmp(rows[i].ident, rows[j].ident)) {
                EXPECT_MSG(rows[i].split == rows[j].split, "identifier %s in both splits",
                           rows[i].ident);
                EXPECT_STR(rows[i].label, rows[j].label);
            }
    }
    for (int d = 0; d < SYNTH_MAX_DEVICES; d++) {
        EXPECT_MSG(dev_in[1][d] > 0, "device %s not in evaluate", synth_device_name(d));
        if (d >= 6)
            EXPECT_MSG(dev_in[0][d] == 0, "unseen device %s in train", synth_device_name(d));
        else EXPECT_MSG(dev_in[0][d] > 0, "seen device %s not in train", synth_device_name(d));
    }

    /* Parallel recordings: an evaluate segment on a and on s6 is the same field coloured twice. */
    for (int i = 0; i < n; i++) {
        if (rows[i].split != 1 || strcmp(rows[i].dev, "a")) continue;
        char pa[1024], ps[1024];
        snprintf(pa, sizeof pa, "%s/%s", dir, rows[i].file);
        snprintf(ps, sizeof ps, "%.*s-s6.wav", (int)strlen(pa) - 6, pa);
        struct audio_file xa, xs;
        REQUIRE_OK(audio_file_read(&xa, pa, NULL));
        REQUIRE_OK(audio_file_read(&xs, ps, NULL));
        double r = logmel_correlation(xa.x, xs.x, xa.n_frames);
        EXPECT_MSG(r > 0.5 && memcmp(xa.x, xs.x, xa.n_frames * sizeof *xa.x),
                   "%s vs s6: log-mel correlation %.3f", rows[i].file, r);
        audio_file_fini(&xa);
        audio_file_fini(&xs);
        break;
    }

    char path[1024];
    snprintf(path, sizeof path, "%s/README.txt", dir);
    char *readme = slurp(path, NULL), ps[512], line[600];
    REQUIRE(readme);
    synth_params_string(&p, ps, sizeof ps);
    snprintf(line, sizeof line, "\nparameters: %s\n", ps);
    EXPECT(strstr(readme, line) != NULL);
    EXPECT(strstr(readme, "seed 7") != NULL);
    free(readme);
    free(rows);
}

/* Byte-identical across runs and thread counts; another seed changes the audio. */
static void test_write_deterministic(void)
{
    struct synth_params p;
    small_params(&p);
    p.n_classes = 2;
    const char *d1 = test_path("det1"), *d2 = test_path("det2"), *d3 = test_path("det3");
    threads_set(1);
    int st = synth_write(&p, d1, NULL);
    threads_set(2);
    REQUIRE_OK(st);
    REQUIRE_OK(synth_write(&p, d2, NULL));
    p.seed = 8;
    REQUIRE_OK(synth_write(&p, d3, NULL));
    struct meta_row *rows = NULL;
    int n = read_meta(d1, &rows);
    REQUIRE(n > 0);
    int differ = 0;
    for (int i = 0; i < n; i++) {
        char a[1024], b[1024], c[1024];
        snprintf(a, sizeof a, "%s/%s", d1, rows[i].file);
        snprintf(b, sizeof b, "%s/%s", d2, rows[i].file);
        snprintf(c, sizeof c, "%s/%s", d3, rows[i].file);
        EXPECT_MSG(same_file(a, b), "%s differs between 1 and 2 threads", rows[i].file);
        differ += exists(c) && !same_file(a, c);
    }
    EXPECT_MSG(differ > 0, "seeds 7 and 8 wrote the same audio");
    static const char *const text[] = {"meta.csv", "README.txt", "evaluation_setup/fold1_train.csv",
                                       "evaluation_setup/fold1_evaluate.csv",
                                       "evaluation_setup/fold1_test.csv"};
    for (int i = 0; i < 5; i++) {
        char a[1024], b[1024];
        snprintf(a, sizeof a, "%s/%s", d1, text[i]);
        snprintf(b, sizeof b, "%s/%s", d2, text[i]);
        EXPECT_MSG(same_file(a, b), "%s differs between runs", text[i]);
    }
    free(rows);
}

static int calls, cancel_after;
static long last_done, last_total;

/* Counts reports; checks label and order; cancels on report cancel_after + 1 (-1: never). */
static int count_progress(void *user, const char *label, long done, long total)
{
    (void)user;
    calls++;
    EXPECT_STR(label, "synth");
    EXPECT(done >= last_done && done <= total && total > 0);
    last_done = done, last_total = total;
    return cancel_after < 0 || calls <= cancel_after;
}

static const struct progress counting = {count_progress, NULL};

static void test_write_reuse_and_errors(void)
{
    struct synth_params p;
    small_params(&p);
    p.n_classes = 2;
    p.n_segments = 1;
    const char *dir = test_path("reuse");
    calls = 0, last_done = 0, cancel_after = -1;
    REQUIRE_OK(synth_write(&p, dir, &counting));
    /* the start, one per segment (2 threads: at least the calling thread's), the end */
    EXPECT(calls >= 3 && last_done == synth_clip_count(&p) && last_total == last_done);

    /* Same parameters: reused, nothing rewritten. */
    char meta[1024];
    snprintf(meta, sizeof meta, "%s/meta.csv", dir);
    struct stat before, after;
    REQUIRE(stat(meta, &before) == 0);
    calls = 0, last_done = 0;
    REQUIRE_OK(synth_write(&p, dir, &counting));
    REQUIRE(stat(meta, &after) == 0);
    EXPECT(before.st_ino == after.st_ino && before.st_mtim.tv_nsec == after.st_mtim.tv_nsec &&
           before.st_mtim.tv_sec == after.st_mtim.tv_sec);
    EXPECT_EQ_INT(calls, 1);

    /* Other parameters into it: refused, named. */
    struct synth_params q = p;
    q.seed = 99;
    EXPECT_EQ_INT(synth_write(&q, dir, NULL), STATUS_INVALID);
    EXPECT(strstr(status_detail(), dir) && strstr(status_detail(), "other parameters"));

    /* A data set with a file missing is not reused. */
    struct meta_row *rows = NULL;
    int n = read_meta(dir, &rows);
    REQUIRE(n > 0);
    char victim[1024];
    snprintf(victim, sizeof victim, "%s/%s", dir, rows[n / 2].file);
    free(rows);
    REQUIRE(unlink(victim) == 0);
    EXPECT_EQ_INT(synth_write(&p, dir, NULL), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "incomplete") != NULL);

    /* A foreign non-empty directory: refused, untouched. */
    const char *foreign = test_path("foreign");
    char keep[1024];
    REQUIRE(mkdir(foreign, 0777) == 0);
    snprintf(keep, sizeof keep, "%s/notes.txt", foreign);
    FILE *f = fopen(keep, "w");
    REQUIRE(f);
    fputs("mine\n", f);
    fclose(f);
    EXPECT_EQ_INT(synth_write(&p, foreign, NULL), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "not a synth data set") != NULL);
    EXPECT(exists(keep));
    EXPECT_EQ_INT(count_entries(foreign, ""), 3); /* ".", "..", notes.txt */

    /* A regular file as the target; a directory below a regular file (cannot be created). */
    EXPECT_EQ_INT(synth_write(&p, keep, NULL), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "not a directory") != NULL);
    char below[1100];
    snprintf(below, sizeof below, "%s/sub/ds", keep);
    EXPECT_EQ_INT(synth_write(&p, below, NULL), STATUS_IO);
    EXPECT(strstr(status_detail(), keep) != NULL);

    /* An unwritable parent (root ignores permissions, so only as another user). */
    if (geteuid() != 0) {
        const char *ro = test_path("readonly");
        char inside[1100];
        REQUIRE(mkdir(ro, 0555) == 0);
        snprintf(inside, sizeof inside, "%s/ds", ro);
        EXPECT_EQ_INT(synth_write(&p, inside, NULL), STATUS_IO);
        EXPECT(strstr(status_detail(), ro) != NULL);
        chmod(ro, 0755);
    }

    /* An empty directory is filled; missing parents are created; a trailing slash is fine. */
    const char *empty = test_path("empty");
    REQUIRE(mkdir(empty, 0777) == 0);
    REQUIRE_OK(synth_write(&p, empty, NULL));
    char nested[1100];
    snprintf(nested, sizeof nested, "%s/x/y/ds/", test_dir());
    REQUIRE_OK(synth_write(&p, nested, NULL));
    snprintf(meta, sizeof meta, "%s/x/y/ds/meta.csv", test_dir());
    EXPECT(exists(meta));
    EXPECT_EQ_INT(count_entries(test_dir(), ".tmp-"), 0);
}

static void test_write_cancel_leaves_nothing(void)
{
    struct synth_params p;
    small_params(&p);
    const char *dir = test_path("cancelled");
    calls = 0, last_done = 0, cancel_after = 1;
    EXPECT_EQ_INT(synth_write(&p, dir, &counting), STATUS_CANCELLED);
    EXPECT(!exists(dir));
    EXPECT_EQ_INT(count_entries(test_dir(), "cancelled"), 0);
    calls = 0, last_done = 0, cancel_after = 0;
    EXPECT_EQ_INT(synth_write(&p, dir, &counting), STATUS_CANCELLED);
    EXPECT_EQ_INT(count_entries(test_dir(), "cancelled"), 0);
    /* after a few segments, on both threads */
    calls = 0, last_done = 0, cancel_after = 4;
    EXPECT_EQ_INT(synth_write(&p, dir, &counting), STATUS_CANCELLED);
    EXPECT_EQ_INT(calls, 5);
    EXPECT(last_done > 0 && last_done < synth_clip_count(&p));
    EXPECT(!exists(dir));
    EXPECT_EQ_INT(count_entries(test_dir(), "cancelled"), 0);
}

static double seconds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int mid_reports;
static double cancelled_at;

/* Cancels at the first report that comes from inside a segment (done 0 after the start). */
static int cancel_mid_segment(void *user, const char *label, long done, long total)
{
    (void)user, (void)label, (void)total;
    if (++calls == 1 || done > 0) return 1;
    mid_reports++;
    cancelled_at = seconds_now();
    return 0;
}

/* A long segment is cancelled from inside: the calling thread reports while it renders, so
 * Ctrl-C does not wait for the segment to finish. Compared with the time one such segment
 * takes in this process (no absolute timing). */
static void test_write_cancel_inside_a_segment(void)
{
    struct synth_params p;
    synth_params_default(&p);
    p.clip_s = 60;
    p.n_classes = 2, p.n_locations = 2, p.n_eval_locations = 1, p.n_segments = 1;
    p.n_devices = 1, p.n_unseen = 0, p.train_devices = 0, p.eval_devices = 0;
    REQUIRE_OK(synth_params_validate(&p));
    long n = (long)(p.clip_s * p.sample_rate_hz);
    float *x = mem_alloc((size_t)n * sizeof *x);
    REQUIRE(x);
    double t0 = seconds_now();
    REQUIRE_OK(synth_clip(&p, 0, 0, 1, x, n));
    double segment_s = seconds_now() - t0;
    mem_free(x);
    const char *dir = test_path("cancel-inside");
    struct progress pr = {cancel_mid_segment, NULL};
    calls = 0, mid_reports = 0;
    threads_set(1);
    int st = synth_write(&p, dir, &pr);
    double after_cancel = seconds_now() - cancelled_at;
    threads_set(2);
    if (segment_s < 0.2) {
        printf("  (a 60 s segment took %.3f s here: too fast to see a report inside it)\n", segment_s);
        if (st == STATUS_CANCELLED) EXPECT(!exists(dir));
        return;
    }
    EXPECT_EQ_INT(st, STATUS_CANCELLED);
    EXPECT_EQ_INT(mid_reports, 1);
    EXPECT_MSG(after_cancel < 0.5 * segment_s, "cancel took %.3f s, a segment %.3f s",
               after_cancel, segment_s);
    EXPECT(!exists(dir));
    EXPECT_EQ_INT(count_entries(test_dir(), "cancel-inside"), 0);
}

/* A process killed while writing leaves "DIR.tmp-<pid>-*" behind; the next write to DIR
 * (here another synth_write, not synth_ensure) removes it. The real binary is killed. */
static void test_write_after_kill_removes_the_temporary(void)
{
    const char *bin = getenv("BASIN_BIN");
    if (!bin) {
        printf("  (BASIN_BIN unset: kill test skipped; make test sets it)\n");
        return;
    }
    const char *dir = test_path("killed"), *script = test_path("killed.basin");
    FILE *f = fopen(script, "w");
    REQUIRE(f);
    fprintf(f, "synth out=%s seconds=2\n", dir);
    fclose(f);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1), dup2(null, 2);
        execl(bin, bin, "--script", script, (char *)NULL);
        _exit(127);
    }
    /* Wait until it has written a few clips into its temporary, then kill it. */
    char prefix[64], tmp_audio[1024] = "";
    snprintf(prefix, sizeof prefix, "killed.tmp-%ld-", (long)pid);
    for (int i = 0; i < 3000; i++) {
        DIR *d = opendir(test_dir());
        for (struct dirent *e; d && (e = readdir(d));)
            if (!strncmp(e->d_name, prefix, strlen(prefix)))
                snprintf(tmp_audio, sizeof tmp_audio, "%s/%s/audio", test_dir(), e->d_name);
        if (d) closedir(d);
        if (tmp_audio[0] && count_entries(tmp_audio, ".wav") >= 5) break;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    int wst;
    waitpid(pid, &wst, 0);
    REQUIRE(tmp_audio[0]);
    EXPECT(WIFSIGNALED(wst));
    EXPECT_EQ_INT(count_entries(test_dir(), prefix), 1);
    EXPECT(!exists(dir));
    /* A temporary of a live process (pid 1) stays. */
    char live[1024];
    snprintf(live, sizeof live, "%s.tmp-1-abcdef", dir);
    REQUIRE(mkdir(live, 0777) == 0);
    struct synth_params p;
    small_params(&p);
    p.n_classes = 2, p.n_segments = 1;
    REQUIRE_OK(synth_write(&p, dir, NULL));
    EXPECT_EQ_INT(count_entries(test_dir(), prefix), 0);
    EXPECT(exists(live));
    char meta[1100];
    snprintf(meta, sizeof meta, "%s/meta.csv", dir);
    EXPECT(exists(meta));
    rmdir(live);
}

/* Data sets follow the user's umask, as mkdir and cp do (they were 0700). */
static void test_write_follows_umask(void)
{
    struct synth_params p;
    small_params(&p);
    p.n_classes = 2, p.n_segments = 1;
    const char *dir = test_path("mode/set");
    mode_t old = umask(002);
    int st = synth_write(&p, dir, NULL);
    umask(old);
    REQUIRE_OK(st);
    struct stat sb;
    char wav[1100];
    REQUIRE(stat(dir, &sb) == 0);
    EXPECT_EQ_INT(sb.st_mode & 0777, 0775);
    snprintf(wav, sizeof wav, "%s/audio", dir);
    REQUIRE(stat(wav, &sb) == 0);
    EXPECT_EQ_INT(sb.st_mode & 0777, 0775);
    snprintf(wav, sizeof wav, "%s/meta.csv", dir);
    REQUIRE(stat(wav, &sb) == 0);
    EXPECT_EQ_INT(sb.st_mode & 0777, 0664);
}

/* ---- exact clip counts -------------------------------------------------------------- */

/* Clips per class and split of a written data set (from its setup files). */
static void split_counts(const char *dir, int count[2][SYNTH_MAX_CLASSES], int dev[2][SYNTH_MAX_DEVICES])
{
    static const char *const names[2] = {"fold1_train.csv", "fold1_evaluate.csv"};
    memset(count, 0, sizeof(int) * 2 * SYNTH_MAX_CLASSES);
    memset(dev, 0, sizeof(int) * 2 * SYNTH_MAX_DEVICES);
    for (int s = 0; s < 2; s++) {
        char path[1024], line[1024], *f[4];
        snprintf(path, sizeof path, "%s/evaluation_setup/%s", dir, names[s]);
        FILE *fp = fopen(path, "r");
        if (!fp) continue;
        if (!fgets(line, sizeof line, fp)) line[0] = 0;
        while (fgets(line, sizeof line, fp)) {
            if (fields(line, f, 4) != 2) continue;
            int k = synth_class_index(f[1]);
            const char *d = strrchr(f[0], '-');
            if (k >= 0) count[s][k]++;
            if (d) {
                char name[8];
                snprintf(name, sizeof name, "%.*s", (int)strcspn(d + 1, "."), d + 1);
                if (synth_device_index(name) >= 0) dev[s][synth_device_index(name)]++;
            }
        }
        fclose(fp);
    }
}

static void test_exact_clip_counts(void)
{
    struct synth_params p, def;
    synth_params_default(&def);
    /* the default set keeps its description and cache key */
    char s[512];
    synth_params_string(&def, s, sizeof s);
    EXPECT_STR(s, "synth v1 sr=22050 clip_s=5 classes=10 devices=9 unseen=3 locations=8 "
                  "eval_locations=3 segments=5 train_devices=1 eval_devices=2 seed=1");
    EXPECT(synth_params_hash(&def) == 0x144fffd6f5c397fcull);   /* synth-144fffd6f5c397fc */

    p = def;
    REQUIRE_OK(synth_params_set_clips(&p, 500));
    EXPECT_EQ_INT(p.n_segments, 3);
    EXPECT_EQ_INT(p.n_clips, 500);
    EXPECT_EQ_INT(synth_clip_count(&p), 500);
    synth_params_string(&p, s, sizeof s);
    EXPECT(strstr(s, " segments=3 ") && strstr(s, " seed=1 clips=500"));
    long tr, ev;
    REQUIRE_OK(synth_split_counts(&p, &tr, &ev));
    EXPECT_EQ_INT(tr, 260);   /* 26 of 50 per class: the structure's 500 / 950 */
    EXPECT_EQ_INT(ev, 240);
    REQUIRE_OK(synth_split_counts(&def, &tr, &ev));
    EXPECT_EQ_INT(tr, 500);
    EXPECT_EQ_INT(ev, 450);
    p = def;
    REQUIRE_OK(synth_params_set_clips(&p, 950));   /* what the structure holds: no clips= */
    EXPECT_EQ_INT(p.n_clips, 0);
    EXPECT(synth_params_hash(&p) == synth_params_hash(&def));
    p = def;
    REQUIRE_OK(synth_params_set_clips(&p, 10));
    REQUIRE_OK(synth_split_counts(&p, &tr, &ev));
    EXPECT_EQ_INT(tr, 10);    /* one train clip per class, evaluate empty */
    EXPECT_EQ_INT(ev, 0);
    /* refused with what is possible */
    p = def;
    EXPECT_EQ_INT(synth_params_set_clips(&p, 9), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "clips=9 is fewer than the 10 classes") != NULL);
    EXPECT_EQ_INT(synth_params_set_clips(&p, 190001), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "at most 190000") != NULL);
    EXPECT_EQ_INT(p.n_segments, 5);   /* unchanged on failure */
    p = def, p.n_clips = 951;
    EXPECT_EQ_INT(synth_params_validate(&p), STATUS_INVALID);
    p = def, p.n_clips = 5;
    EXPECT_EQ_INT(synth_params_validate(&p), STATUS_INVALID);
}

/* A written subset: exactly N files, listed consistently, balanced by class, every class in
 * train, unseen devices only in evaluate, each clip byte-identical to the full set's. */
static void test_exact_clip_subset_written(void)
{
    struct synth_params full, p;
    small_params(&full);
    full.n_segments = 1;                 /* 45 clips: 3 classes x (2 x 3 + 1 x 9) */
    REQUIRE_OK(synth_params_validate(&full));
    EXPECT_EQ_INT(synth_clip_count(&full), 45);
    const char *dfull = test_path("subset-full"), *dsub = test_path("subset-20");
    REQUIRE_OK(synth_write(&full, dfull, NULL));
    small_params(&p);
    REQUIRE_OK(synth_params_set_clips(&p, 20));
    EXPECT_EQ_INT(p.n_segments, 1);
    REQUIRE_OK(synth_write(&p, dsub, NULL));

    struct meta_row *rows = NULL;
    int n = read_meta(dsub, &rows);
    EXPECT_EQ_INT(n, 20);
    char audio[1024];
    snprintf(audio, sizeof audio, "%s/audio", dsub);
    EXPECT_EQ_INT(count_entries(audio, ".wav"), 20);
    for (int i = 0; i < n; i++) {
        char a[1024], b[1024];
        snprintf(a, sizeof a, "%s/%s", dsub, rows[i].file);
        snprintf(b, sizeof b, "%s/%s", dfull, rows[i].file);
        EXPECT_MSG(same_file(a, b), "%s differs from the full structure's", rows[i].file);
    }
    free(rows);
    int count[2][SYNTH_MAX_CLASSES], dev[2][SYNTH_MAX_DEVICES];
    split_counts(dsub, count, dev);
    /* 20 = 7 + 7 + 6; train share 18 / 45 of each class, rounded, at least 1 */
    int want_train[3] = {3, 3, 2};
    for (int k = 0; k < 3; k++) {
        EXPECT_EQ_INT(count[0][k] + count[1][k], k < 2 ? 7 : 6);
        EXPECT_EQ_INT(count[0][k], want_train[k]);
    }
    for (int d = 6; d < 9; d++) {
        EXPECT_MSG(dev[0][d] == 0, "unseen %s in train", synth_device_name(d));
        EXPECT_MSG(dev[1][d] > 0, "unseen %s not in evaluate", synth_device_name(d));
    }
    EXPECT(dev[0][0] > 0 && dev[1][0] > 0);
    long tr, ev;
    REQUIRE_OK(synth_split_counts(&p, &tr, &ev));
    EXPECT_EQ_INT(tr, 8);
    EXPECT_EQ_INT(ev, 12);
    char path[1100];
    snprintf(path, sizeof path, "%s/README.txt", dsub);
    char *readme = slurp(path, NULL);
    REQUIRE(readme);
    EXPECT(strstr(readme, "; 20 clips.") != NULL);
    EXPECT(strstr(readme, "clips=20: exactly 20 of the 45 clips") != NULL);
    EXPECT(strstr(readme, "(6 each, the first 2 classes one more)") != NULL);
    free(readme);
    /* the same request again: recognised and reused */
    EXPECT(synth_present(&p, dsub));
    EXPECT(!synth_present(&full, dsub));
    REQUIRE_OK(synth_write(&p, dsub, NULL));

    /* as few clips as classes: train only; the setup lists a header for evaluate */
    const char *dmin = test_path("subset-3");
    small_params(&p);
    REQUIRE_OK(synth_params_set_clips(&p, 3));
    REQUIRE_OK(synth_write(&p, dmin, NULL));
    split_counts(dmin, count, dev);
    for (int k = 0; k < 3; k++) EXPECT(count[0][k] == 1 && count[1][k] == 0);
}

/* ---- the cache ---------------------------------------------------------------------- */

static char *save_env(const char *name)
{
    const char *v = getenv(name);
    return v ? strdup(v) : NULL;
}

static void restore_env(const char *name, char *v)
{
    if (v) setenv(name, v, 1);
    else unsetenv(name);
    free(v);
}

static void test_cache_dir_and_ensure(void)
{
    char *xdg = save_env("XDG_CACHE_HOME"), *home = save_env("HOME");
    char buf[SYNTH_PATH_MAX], want[SYNTH_PATH_MAX];
    struct synth_params p;
    synth_params_default(&p);
    snprintf(want, sizeof want, "/x/cache/basin/synth-%016llx",
             (unsigned long long)synth_params_hash(&p));
    setenv("XDG_CACHE_HOME", "/x/cache", 1);
    setenv("HOME", "/h", 1);
    EXPECT_EQ_INT(synth_cache_dir(NULL, buf, sizeof buf), 0);
    EXPECT_STR(buf, want);
    EXPECT_EQ_INT(synth_cache_dir(NULL, buf, 20), STATUS_INVALID);
    setenv("XDG_CACHE_HOME", "relative", 1);
    EXPECT_EQ_INT(synth_cache_dir(&p, buf, sizeof buf), 0);
    EXPECT(!strncmp(buf, "/h/.cache/basin/synth-", 22));
    unsetenv("XDG_CACHE_HOME");
    unsetenv("HOME");
    EXPECT_EQ_INT(synth_cache_dir(NULL, buf, sizeof buf), STATUS_NOT_FOUND);

    /* ensure: generates on first use, reuses after, and sweeps a dead process's temporary. */
    setenv("XDG_CACHE_HOME", test_dir(), 1);
    small_params(&p);
    p.n_classes = 2;
    p.n_segments = 1;
    char stale[SYNTH_PATH_MAX + 64], parent[SYNTH_PATH_MAX];
    REQUIRE_OK(synth_cache_dir(&p, buf, sizeof buf));
    snprintf(parent, sizeof parent, "%s/basin", test_dir());
    REQUIRE(mkdir(parent, 0777) == 0);
    snprintf(stale, sizeof stale, "%s.tmp-999999999-abcdef", buf);
    REQUIRE(mkdir(stale, 0777) == 0);
    char dir[SYNTH_PATH_MAX];
    int st = synth_ensure(&p, dir, sizeof dir, NULL);
    EXPECT_EQ_INT(st, 0);
    EXPECT_STR(dir, buf);
    EXPECT(!exists(stale));
    char meta[SYNTH_PATH_MAX + 16];
    snprintf(meta, sizeof meta, "%s/meta.csv", dir);
    EXPECT(exists(meta));
    EXPECT_EQ_INT(synth_ensure(&p, dir, sizeof dir, NULL), 0);
    restore_env("XDG_CACHE_HOME", xdg);
    restore_env("HOME", home);
}

const struct test tests_synth[] = {
    TEST(test_params_defaults_and_validation),
    TEST(test_names),
    TEST(test_clip_deterministic_and_sane),
    TEST(test_clip_devices_colour_the_same_field),
    TEST(test_class_spectra_differ),
    TEST(test_write_layout_and_splits),
    TEST(test_write_deterministic),
    TEST(test_write_reuse_and_errors),
    TEST(test_write_cancel_leaves_nothing),
    TEST(test_write_cancel_inside_a_segment),
    TEST(test_write_after_kill_removes_the_temporary),
    TEST(test_write_follows_umask),
    TEST(test_exact_clip_counts),
    TEST(test_exact_clip_subset_written),
    TEST(test_cache_dir_and_ensure),
    {0},
};
