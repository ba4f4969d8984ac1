/* conv2d_tune.c: choosing a convolution kernel per shape by measuring it (see ops.h,
 * conv2d_tune).
 *
 * Key idea: which kernel is fastest depends on the shape and on the CPU (Zen 5 runs
 * AVX-512 at full width, Zen 4 splits it in two, Intel cores differ again), so a threshold
 * tuned on one machine does not carry to the next. A plan instead times every kernel that
 * can run each pass of a conv on a crop of the real shape (the real channel counts, width,
 * kernel, padding and thread count; a band of output rows and one sample per thread, or
 * several whole samples per thread when one is less work), which
 * costs a few milliseconds per distinct shape, and keeps the fastest. Choices are remembered
 * in the process and in a small text file per CPU model under the cache folder, so they are
 * measured once per machine, and a run that is resumed in another process makes the same
 * choices (hence the same floating-point results).
 *
 * The cache file is plain text, one line per shape and thread count:
 *   i32 o32 f127 t215 k3x3 s1x1 p1x1 d1x1 g1 n2 = direct-avx512 direct-avx512 direct-avx2
 * (input and output channels, input height and width, kernel, stride, padding, dilation,
 * groups, threads = forward, backward-data and backward-weight kernels). Unknown or
 * malformed lines are ignored; a kernel that cannot run the shape on this CPU falls back to
 * the default. Deleting the file re-measures.
 */
#include <cpuid.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basin/core/fs.h"
#include "basin/core/log.h"
#include "basin/core/mem.h"
#include "basin/core/ops.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"

/* Work of one timed run of a candidate, per thread: about 0.1 ms at the speeds these
 * kernels reach, long enough to be timed, short enough that a shape costs a few ms. */
#define TUNE_FLOPS_PER_THREAD 1.2e7
/* Rounds of timed runs, each running every candidate once in turn (after one untimed run
 * each): a burst of noise from another process hits all candidates of a round, not all
 * runs of one candidate. The minimum over the rounds counts. */
#define TUNE_ROUNDS 5
/* The default keeps its place unless a candidate is faster by this fraction: near ties
 * would otherwise flip with the noise of a shared machine. */
#define TUNE_MARGIN 0.03
/* Format version: bump when kernels change enough to invalidate remembered choices. */
/* 2: the direct kernels run stride-2 forwards; 3: the winograd and pointwise kernels */
#define TUNE_FILE_VERSION 3

struct tune_entry {
    char key[96];
    struct conv2d_algo algo;
};

static pthread_mutex_t tune_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tune_entry *memo;   /* choices known to this process, guarded by tune_lock */
static int n_memo, cap_memo;
static char memo_path[FS_PATH_MAX]; /* the cache file they belong to ("" none yet) */
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static char cpu_model[160];

static void read_cpu_model(void)
{
    unsigned a, b, c, d, brand[12] = {0};
    char name[49] = "unknown CPU";
    if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000004) {
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002 + i, &brand[4 * i], &brand[4 * i + 1], &brand[4 * i + 2],
                        &brand[4 * i + 3]);
        memcpy(name, brand, 48);
        name[48] = 0;
    }
    /* trim the padding spaces some vendors put around the brand */
    char *s = name;
    while (*s == ' ') s++;
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ') s[--n] = 0;
    unsigned family = 0, model = 0, stepping = 0;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        family = (a >> 8) & 0xF;
        model = (a >> 4) & 0xF;
        stepping = a & 0xF;
        if (family == 0xF) family += (a >> 20) & 0xFF;
        if (family >= 6) model += ((a >> 16) & 0xF) << 4;
    }
    snprintf(cpu_model, sizeof cpu_model, "%s (family %u model %u stepping %u)", s, family, model,
             stepping);
}

const char *conv2d_cpu_model(void)
{
    pthread_once(&cpu_once, read_cpu_model);
    return cpu_model;
}

static void key_of(const struct conv2d_shape *s, int n_threads, int flags, char *key, size_t n)
{
    snprintf(key, n, "i%d o%d f%d t%d k%dx%d s%dx%d p%dx%d d%dx%d g%d n%d%s", s->ci, s->co, s->fi,
             s->ti, s->kf, s->kt, s->sf, s->st, s->pf, s->pt, s->df, s->dt, s->groups, n_threads,
             flags & CONV2D_TUNE_NO_AVX512 ? " noavx512" : "");
}

/* Whether kernel k is a candidate under flags, and the default it starts from. */
static int allowed(enum conv2d_kernel k, int flags)
{
    return !(k == CONV2D_KERNEL_DIRECT_AVX512 && (flags & CONV2D_TUNE_NO_AVX512));
}

static enum conv2d_kernel default_of(const struct conv2d_shape *s, enum conv2d_pass pass, int flags)
{
    enum conv2d_kernel k = conv2d_kernel_default(s, pass);
    return allowed(k, flags) ? k : CONV2D_KERNEL_DIRECT_AVX2; /* runs where AVX-512's does */
}

/* The cache file of this CPU model: "<cache>/kernels/<model, one word>.v<N>.txt". */
static int cache_path(char *path, size_t n, char *dir, size_t n_dir)
{
    if (fs_cache_dir("kernels", dir, n_dir)) return -1;
    char word[160];
    const char *m = conv2d_cpu_model();
    size_t k = 0;
    for (; *m && k + 1 < sizeof word; m++) {
        char ch = *m;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (ok) word[k++] = ch;
        else if (k && word[k - 1] != '-') word[k++] = '-';
    }
    while (k && word[k - 1] == '-') k--;
    word[k] = 0;
    int w = snprintf(path, n, "%s/%s.v%d.txt", dir, word, TUNE_FILE_VERSION);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

static struct tune_entry *memo_find(const char *key)
{
    for (int i = 0; i < n_memo; i++)
        if (!strcmp(memo[i].key, key)) return &memo[i];
    return NULL;
}

static void memo_put(const char *key, const struct conv2d_algo *a)
{
    struct tune_entry *e = memo_find(key);
    if (!e) {
        if (n_memo == cap_memo) {
            int cap = cap_memo ? 2 * cap_memo : 64;
            struct tune_entry *m = realloc(memo, (size_t)cap * sizeof *m);
            if (!m) return; /* not remembered: measured again next time */
            memo = m, cap_memo = cap;
        }
        e = &memo[n_memo++];
        snprintf(e->key, sizeof e->key, "%s", key);
    }
    e->algo = *a;
}

/* Parse "key = k0 k1 k2" into the memo (lines that do not parse are skipped). */
static void parse_line(char *line)
{
    char *eq = strstr(line, " = ");
    if (!eq || line[0] == '#') return;
    *eq = 0;
    char names[3][32];
    if (sscanf(eq + 3, "%31s %31s %31s", names[0], names[1], names[2]) != 3) return;
    struct conv2d_algo a;
    for (int p = 0; p < CONV2D_PASSES; p++) {
        enum conv2d_kernel k;
        if (conv2d_kernel_parse(names[p], &k)) {
            status_clear();
            return;
        }
        a.k[p] = k;
    }
    if (strlen(line) < sizeof memo[0].key) memo_put(line, &a);
}

/* Merge the cache file into the memo (entries already known stay as they are). */
static void load_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char copy[256];
        memcpy(copy, line, sizeof copy);
        char *eq = strstr(copy, " = ");
        if (!eq) continue;
        *eq = 0;
        if (!memo_find(copy)) parse_line(line);
    }
    fclose(f);
}

/* Rewrite the cache file with the memo (after merging what other processes wrote). */
static void save_file(const char *path, const char *dir)
{
    load_file(path);
    if (fs_mkdir_p(dir)) {
        status_clear();
        return;
    }
    size_t cap = 256 + (size_t)n_memo * 160, len = 0;
    char *buf = malloc(cap);
    if (!buf) return;
    len += (size_t)snprintf(buf + len, cap - len,
                            "# basin conv kernel choices for %s, measured by conv2d_tune\n"
                            "# channels in, out, input height, width, kernel, stride, padding, "
                            "dilation, groups, threads = forward, backward-data, "
                            "backward-weight\n",
                            conv2d_cpu_model());
    for (int i = 0; i < n_memo && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s = %s %s %s\n", memo[i].key,
                                conv2d_kernel_name(memo[i].algo.k[0]),
                                conv2d_kernel_name(memo[i].algo.k[1]),
                                conv2d_kernel_name(memo[i].algo.k[2]));
    if (len < cap && fs_write_file(path, buf, len, FS_ATOMIC_NO_SYNC)) status_clear();
    free(buf);
}

static double wall(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* The buffers of one crop. */
struct bench {
    struct conv2d_shape s;
    float *x, *w, *y, *dx, *dw, *scratch;
    double *sums;
};

static void run_pass(const struct bench *b, enum conv2d_pass pass, enum conv2d_kernel k)
{
    if (pass == CONV2D_FORWARD) {
        /* as a training forward runs it: BN statistics summed in the epilogue */
        struct conv2d_fuse f = {NULL, NULL, 0, b->sums, b->sums + b->s.co, NULL};
        conv2d_forward_with(&b->s, k, b->y, b->x, b->w, &f, b->scratch);
    } else if (pass == CONV2D_BACKWARD_DATA) {
        conv2d_backward_data_with(&b->s, k, b->dx, b->y, b->w, 0, b->scratch);
    } else {
        conv2d_backward_weight_with(&b->s, k, b->dw, b->y, b->x, b->scratch);
    }
}

static double time_pass(const struct bench *b, enum conv2d_pass pass, enum conv2d_kernel k)
{
    double t0 = wall();
    run_pass(b, pass, k);
    return wall() - t0;
}

/* A crop of s for n_threads threads: about TUNE_FLOPS_PER_THREAD of work per thread, as a
 * band of output rows of n_threads samples, or, when a whole sample is less, whole samples
 * (as many per thread as make it). */
static struct conv2d_shape crop_of(const struct conv2d_shape *s, int n_threads)
{
    struct conv2d_shape c = *s;
    c.n = n_threads;
    double per_row = 2.0 * s->co * (s->ci / s->groups) * s->kf * s->kt * s->to;
    long rows = (long)(TUNE_FLOPS_PER_THREAD / per_row);
    if (rows < 2) rows = 2;
    if (rows < s->fo) {
        long fi = (rows - 1) * s->sf + (long)s->df * (s->kf - 1) + 1 - 2L * s->pf;
        if (fi >= 1 && fi < s->fi) c.fi = (int)fi;
    } else {
        c.n = n_threads * (int)(rows / s->fo < 64 ? rows / s->fo : 64);
    }
    if (conv2d_shape_init(&c)) {
        status_clear();
        c = *s;
        c.n = n_threads;
    }
    return c;
}

/* Measure every candidate of every pass; returns 0 or STATUS_NOMEM. */
static int measure(const struct conv2d_shape *s, int n_threads, int flags, struct conv2d_algo *algo,
                   double ms[CONV2D_PASSES][CONV2D_KERNEL_COUNT])
{
    struct bench b = {.s = crop_of(s, n_threads)};
    long nx = (long)b.s.n * b.s.ci * b.s.fi * b.s.ti, ny = (long)b.s.n * b.s.co * b.s.fo * b.s.to;
    long nw = (long)b.s.co * (b.s.ci / b.s.groups) * b.s.kf * b.s.kt;
    b.x = mem_alloc(sizeof(float) * (size_t)nx);
    b.dx = mem_alloc(sizeof(float) * (size_t)nx);
    b.y = mem_alloc(sizeof(float) * (size_t)ny);
    b.w = mem_alloc(sizeof(float) * (size_t)nw);
    b.dw = mem_alloc(sizeof(float) * (size_t)nw);
    b.sums = mem_alloc(sizeof(double) * 2 * (size_t)b.s.co);
    b.scratch = mem_alloc(sizeof(float) * conv2d_scratch_floats(&b.s, n_threads));
    int status = STATUS_OK;
    if (!b.x || !b.dx || !b.y || !b.w || !b.dw || !b.sums || !b.scratch) {
        status = STATUS_NOMEM;
        goto done;
    }
    struct rng r;
    rng_seed(&r, 1);
    rng_fill_uniform(&r, b.x, nx, -1, 1);
    rng_fill_uniform(&r, b.y, ny, -1, 1);
    rng_fill_uniform(&r, b.w, nw, -1, 1);
    memset(b.sums, 0, sizeof(double) * 2 * (size_t)b.s.co);
    int pin = threads_pin(n_threads);
    for (int p = 0; p < CONV2D_PASSES; p++) {
        enum conv2d_pass pass = (enum conv2d_pass)p;
        enum conv2d_kernel def = default_of(s, pass, flags), cand[CONV2D_KERNEL_COUNT];
        int n_cand = 0;
        cand[n_cand++] = def;
        for (int k = CONV2D_KERNEL_GEMM; k < CONV2D_KERNEL_COUNT; k++)
            if (k != (int)def && conv2d_kernel_runs(s, pass, (enum conv2d_kernel)k) &&
                allowed((enum conv2d_kernel)k, flags))
                cand[n_cand++] = (enum conv2d_kernel)k;
        if (n_cand == 1) { /* nothing to choose (a stride-2 shape's backward passes) */
            algo->k[p] = def;
            continue;
        }
        double best_t[CONV2D_KERNEL_COUNT];
        for (int c = 0; c < n_cand; c++) {
            run_pass(&b, pass, cand[c]); /* warm: code, caches, packed weights */
            best_t[c] = 1e30;
        }
        for (int round = 0; round < TUNE_ROUNDS; round++)
            for (int c = 0; c < n_cand; c++) {
                double t = time_pass(&b, pass, cand[c]);
                if (t < best_t[c]) best_t[c] = t;
            }
        int best = 0;
        for (int c = 1; c < n_cand; c++) {
            double bar = best == 0 ? best_t[0] * (1.0 - TUNE_MARGIN) : best_t[best];
            if (best_t[c] < bar) best = c;
        }
        for (int c = 0; c < n_cand; c++) ms[p][cand[c]] = best_t[c] * 1e3;
        algo->k[p] = cand[best];
    }
    threads_pin(pin);
done:
    mem_free(b.x), mem_free(b.dx), mem_free(b.y), mem_free(b.w), mem_free(b.dw);
    mem_free(b.sums), mem_free(b.scratch);
    return status;
}

int conv2d_tune(const struct conv2d_shape *s, int n_threads, int flags, struct conv2d_algo *algo)
{
    if (n_threads < 1) n_threads = 1;
    int candidates = 0;
    for (int p = 0; p < CONV2D_PASSES; p++) {
        algo->k[p] = default_of(s, (enum conv2d_pass)p, flags);
        int c = 0;
        for (int k = CONV2D_KERNEL_GEMM; k < CONV2D_KERNEL_COUNT; k++)
            c += conv2d_kernel_runs(s, (enum conv2d_pass)p, (enum conv2d_kernel)k) &&
                 allowed((enum conv2d_kernel)k, flags);
        if (c > candidates) candidates = c;
    }
    double flops = 2.0 * s->co * (s->ci / s->groups) * s->kf * s->kt * s->fo * s->to;
    if (candidates < 2 || flops < CONV2D_TUNE_MIN_FLOPS) return STATUS_OK;
    char key[96], path[FS_PATH_MAX], dir[FS_PATH_MAX];
    key_of(s, n_threads, flags, key, sizeof key);
    int have_cache = cache_path(path, sizeof path, dir, sizeof dir) == 0;
    if (!have_cache) status_clear();
    pthread_mutex_lock(&tune_lock);
    /* the choices belong to a cache file: another one (XDG_CACHE_HOME changed) starts afresh,
     * so one file's entries are never written into another */
    if (have_cache && strcmp(memo_path, path)) {
        n_memo = 0;
        snprintf(memo_path, sizeof memo_path, "%s", path);
    }
    struct tune_entry *e = memo_find(key);
    if (!e && have_cache && !(flags & CONV2D_TUNE_FRESH)) {
        load_file(path);
        e = memo_find(key);
    }
    if (e && !(flags & CONV2D_TUNE_FRESH)) {
        for (int p = 0; p < CONV2D_PASSES; p++)
            if (conv2d_kernel_runs(s, (enum conv2d_pass)p, e->algo.k[p]) && allowed(e->algo.k[p], flags))
                algo->k[p] = e->algo.k[p];
        pthread_mutex_unlock(&tune_lock);
        return STATUS_OK;
    }
    pthread_mutex_unlock(&tune_lock);
    /* Without a cache folder the choice could not be remembered across processes, and a
     * resumed run could then pick other kernels: keep the defaults, which do not vary. */
    if (!have_cache) return STATUS_OK;
    double ms[CONV2D_PASSES][CONV2D_KERNEL_COUNT] = {{0}};
    struct conv2d_algo found = *algo;
    int status = measure(s, n_threads, flags, &found, ms);
    if (status) return status;
    *algo = found;
    log_debug("conv2d_tune %s: %s %s %s (forward gemm %.3f avx512 %.3f avx2 %.3f winograd %.3f "
              "pointwise %.3f ms)",
              key, conv2d_kernel_name(found.k[0]), conv2d_kernel_name(found.k[1]),
              conv2d_kernel_name(found.k[2]), ms[0][CONV2D_KERNEL_GEMM],
              ms[0][CONV2D_KERNEL_DIRECT_AVX512], ms[0][CONV2D_KERNEL_DIRECT_AVX2],
              ms[0][CONV2D_KERNEL_WINOGRAD], ms[0][CONV2D_KERNEL_POINTWISE]);
    pthread_mutex_lock(&tune_lock);
    memo_put(key, &found);
    save_file(path, dir);
    pthread_mutex_unlock(&tune_lock);
    return STATUS_OK;
}
