/* test_cache.c: the cache folder: sizes and the cap (default, file, environment), what
 * `cache` counts, least-recently-used trimming (a feature hit counts as a use), clearing.
 * Every case points XDG_CACHE_HOME at its own folder under test_dir(). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basin/core/fs.h"
#include "basin/core/status.h"
#include "basin/data/cache.h"
#include "basin/data/dataset.h"
#include "basin/data/features.h"
#include "basin/data/synth.h"
#include "basin/dsp/frontend.h"
#include "util.h"
#include "test.h"

static char *saved_xdg, *saved_max;

/* XDG_CACHE_HOME = test_dir()/name; BASIN_CACHE_MAX unset. Returns the basin folder. */
static const char *use_cache_home(const char *name)
{
    static char dir[600];
    saved_xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    saved_max = getenv("BASIN_CACHE_MAX") ? strdup(getenv("BASIN_CACHE_MAX")) : NULL;
    setenv("XDG_CACHE_HOME", test_path(name), 1);
    unsetenv("BASIN_CACHE_MAX");
    snprintf(dir, sizeof dir, "%s/basin", test_path(name));
    return dir;
}

static void restore_env(void)
{
    if (saved_xdg) setenv("XDG_CACHE_HOME", saved_xdg, 1);
    else unsetenv("XDG_CACHE_HOME");
    if (saved_max) setenv("BASIN_CACHE_MAX", saved_max, 1);
    else unsetenv("BASIN_CACHE_MAX");
    free(saved_xdg), free(saved_max);
    saved_xdg = saved_max = NULL;
}

/* A file of n bytes at path (parents made), modification time t seconds after the epoch
 * (t 0: now). */
static int make_file(const char *path, size_t n, long t)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0, mkdirs(dir);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    for (size_t i = 0; i < n; i++) fputc('x', f);
    if (fclose(f)) return 0;
    if (!t) return 1;
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    return utimensat(AT_FDCWD, path, ts, 0) == 0;
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void test_parse_size(void)
{
    static const struct {
        const char *text;
        unsigned long long bytes;
    } ok[] = {
        {"0", 0},           {"12345", 12345},          {"2G", 2ull << 30},
        {"500M", 500ull << 20}, {"1.5GiB", 3ull << 29}, {"64KB", 65536},
        {"1t", 1ull << 40}, {"10B", 10},               {"2g", 2ull << 30},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t b = 1;
        EXPECT_MSG(cache_parse_size(ok[i].text, &b) == 0 && b == ok[i].bytes, "%s -> %llu",
                   ok[i].text, (unsigned long long)b);
    }
    static const char *const bad[] = {"", "abc", "-1", "2X", "1e30", "2GG", "G"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t b;
        EXPECT_MSG(cache_parse_size(bad[i], &b) == STATUS_INVALID, "'%s' accepted", bad[i]);
        EXPECT(strstr(status_detail(), "is not a size") != NULL);
    }
}

/* The default cap, then the cap file, then the environment over it. */
static void test_cap_sources(void)
{
    const char *dir = use_cache_home("capsrc");
    uint64_t cap;
    enum cache_cap_source src;
    REQUIRE_OK(cache_cap(&cap, &src));
    EXPECT(cap == CACHE_DEFAULT_CAP && src == CACHE_CAP_DEFAULT);
    EXPECT(cap == 2ull << 30);
    REQUIRE_OK(cache_cap_set(300ull << 20));   /* makes the folder */
    char path[700];
    snprintf(path, sizeof path, "%s/cap", dir);
    EXPECT(exists(path));
    REQUIRE_OK(cache_cap(&cap, &src));
    EXPECT(cap == 300ull << 20 && src == CACHE_CAP_FILE);
    setenv("BASIN_CACHE_MAX", "1M", 1);
    REQUIRE_OK(cache_cap(&cap, &src));
    EXPECT(cap == 1ull << 20 && src == CACHE_CAP_ENV);
    setenv("BASIN_CACHE_MAX", "lots", 1);
    EXPECT_EQ_INT(cache_cap(&cap, &src), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "BASIN_CACHE_MAX: 'lots' is not a size") != NULL);
    /* a damaged cap file counts as none */
    unsetenv("BASIN_CACHE_MAX");
    REQUIRE(write_text(path, "garbage\n"));
    REQUIRE_OK(cache_cap(&cap, &src));
    EXPECT(cap == CACHE_DEFAULT_CAP && src == CACHE_CAP_DEFAULT);
    restore_env();
}

/* What cache_usage counts, and what cache_clear removes (and leaves). */
static void test_usage_and_clear(void)
{
    const char *dir = use_cache_home("usage");
    struct cache_usage u;
    REQUIRE_OK(cache_usage(&u));   /* no folder yet: all zero */
    EXPECT(u.total_bytes == 0 && u.feature_files == 0 && u.synth_sets == 0);
    char p[900], def[700];
    REQUIRE_OK(synth_cache_dir(NULL, def, sizeof def));
    snprintf(p, sizeof p, "%s/features/ab/ab01.feat", dir);
    REQUIRE(make_file(p, 1000, 0));
    snprintf(p, sizeof p, "%s/features/cd/cd02.feat", dir);
    REQUIRE(make_file(p, 500, 0));
    snprintf(p, sizeof p, "%s/meta.csv", def);                         /* the default set */
    REQUIRE(make_file(p, 300, 0));
    snprintf(p, sizeof p, "%s/synth-0123456789abcdef/audio/x.wav", dir); /* another set */
    REQUIRE(make_file(p, 200, 0));
    char dead[900], live[900];
    snprintf(dead, sizeof dead, "%s/synth-00000000000000aa.tmp-999999999-abc/audio/y.wav", dir);
    REQUIRE(make_file(dead, 70, 0));
    snprintf(live, sizeof live, "%s/synth-00000000000000aa.tmp-1-abc/z.wav", dir);
    REQUIRE(make_file(live, 30, 0));
    REQUIRE_OK(cache_cap_set(5000));
    REQUIRE_OK(cache_usage(&u));
    EXPECT_EQ_INT(u.feature_files, 2);
    EXPECT_EQ_INT(u.feature_bytes, 1500);
    EXPECT_EQ_INT(u.synth_sets, 2);
    EXPECT_EQ_INT(u.synth_bytes, 500);
    EXPECT_EQ_INT(u.default_set, 1);
    EXPECT_EQ_INT(u.default_bytes, 300);
    EXPECT_EQ_INT(u.other_bytes, 100 + 5);   /* two temporaries, the cap file "5000\n" */
    EXPECT_EQ_INT(u.total_bytes, 1500 + 500 + 105);
    EXPECT_EQ_INT(u.cap_bytes, 5000);
    EXPECT_EQ_INT(u.cap_source, CACHE_CAP_FILE);

    uint64_t freed = 0;
    REQUIRE_OK(cache_clear(&freed));
    EXPECT_EQ_INT(freed, 1500 + 500 + 70);
    REQUIRE_OK(cache_usage(&u));
    EXPECT(u.feature_files == 0 && u.synth_sets == 0 && !u.default_set);
    EXPECT_EQ_INT(u.total_bytes, 35);          /* the live temporary and the cap file stay */
    EXPECT(exists(live));
    EXPECT_EQ_INT(u.cap_bytes, 5000);
    REQUIRE_OK(cache_clear(&freed));           /* again: nothing to do */
    EXPECT_EQ_INT(freed, 0);
    restore_env();
}

/* Least recently used first: oldest modification time, then name; temporaries ignored. */
static void test_trim_lru(void)
{
    char dir[600], p[800];
    path_of(dir, sizeof dir, "trim/features");
    for (int i = 0; i < 10; i++) {
        snprintf(p, sizeof p, "%s/%02x/f%d.feat", dir, i % 3, i);
        REQUIRE(make_file(p, 100, 1000000 + (i * 7) % 10 * 100));   /* ages shuffled */
    }
    snprintf(p, sizeof p, "%s/00/f9.feat.tmp-1-0", dir);
    REQUIRE(make_file(p, 5000, 1000));
    uint64_t freed = 0;
    REQUIRE_OK(cache_trim(dir, 2000, &freed));  /* fits: nothing removed */
    EXPECT_EQ_INT(freed, 0);
    REQUIRE_OK(cache_trim(dir, 550, &freed));
    EXPECT_EQ_INT(freed, 500);
    /* file i has age rank (7 i) mod 10: the five oldest are i = 0, 3, 6, 9, 2 */
    for (int i = 0; i < 10; i++) {
        snprintf(p, sizeof p, "%s/%02x/f%d.feat", dir, i % 3, i);
        int rank = (i * 7) % 10;
        EXPECT_MSG(exists(p) == (rank >= 5), "f%d (age rank %d) %s", i, rank,
                   exists(p) ? "kept" : "removed");
    }
    snprintf(p, sizeof p, "%s/00/f9.feat.tmp-1-0", dir);
    EXPECT(exists(p));
    REQUIRE_OK(cache_trim(dir, 0, &freed));
    EXPECT_EQ_INT(freed, 500);
    path_of(p, sizeof p, "trim/missing");
    EXPECT_EQ_INT(cache_trim(p, 0, &freed), 0);
}

/* Features: a cache hit marks the file used, so the cap evicts the split not used lately;
 * a load that writes keeps the cache within the cap it is given. */
static void test_feature_cache_lru_and_cap(void)
{
    char set[512], cdir[512];
    path_of(set, sizeof set, "lru_set");
    path_of(cdir, sizeof cdir, "lru_cache/features");
    REQUIRE(make_dcase(set, DC_SETUP | DC_META_FULL | DC_AUDIO));
    struct dataset *ds;
    struct frontend *fe;
    REQUIRE_OK(dataset_open(&ds, set, NULL));
    REQUIRE(make_fe(&fe));
    struct features_opts o = {.cache_dir = cdir};
    struct features *f;
    REQUIRE_OK(features_load(&f, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL));
    EXPECT_EQ_INT(f->n_computed, 9);
    features_destroy(f);
    uint64_t one = 0;
    long n_files = 0;
    REQUIRE_OK(fs_tree_size(cdir, &one, &n_files));
    EXPECT_EQ_INT(n_files, 9);
    one /= 9;   /* bytes per feature file */
    /* compute evaluate, age every file, then hit train again: train is the latest use */
    REQUIRE_OK(features_load(&f, ds, DATASET_SPLIT_EVAL, fe, &o, NULL));
    EXPECT_EQ_INT(f->n_computed, 6);
    features_destroy(f);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "find '%s' -name '*.feat' -exec touch -m -d @1000000 {} +", cdir);
    REQUIRE(system(cmd) == 0);
    REQUIRE_OK(features_load(&f, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL));
    EXPECT_EQ_INT(f->n_cached, 9);
    features_destroy(f);
    /* now evaluate's files are the oldest use: a cap of 9 files keeps train only */
    uint64_t freed;
    REQUIRE_OK(cache_trim(cdir, 9 * one, &freed));
    EXPECT_EQ_INT(freed, 6 * one);
    REQUIRE_OK(features_load(&f, ds, DATASET_SPLIT_TRAIN, fe, &o, NULL));
    EXPECT_EQ_INT(f->n_cached, 9);
    features_destroy(f);
    /* a load given a cap of 4 files: its own newest files stay, the rest go */
    o.cache_max_bytes = 4 * one;
    REQUIRE_OK(features_load(&f, ds, DATASET_SPLIT_EVAL, fe, &o, NULL));
    EXPECT_EQ_INT(f->n_computed, 6);
    features_destroy(f);
    uint64_t bytes;
    REQUIRE_OK(fs_tree_size(cdir, &bytes, &n_files));
    EXPECT_EQ_INT(n_files, 4);
    frontend_destroy(fe);
    dataset_destroy(ds);
}

const struct test tests_cache[] = {
    TEST(test_parse_size),
    TEST(test_cap_sources),
    TEST(test_usage_and_clear),
    TEST(test_trim_lru),
    TEST(test_feature_cache_lru_and_cap),
    {0},
};
