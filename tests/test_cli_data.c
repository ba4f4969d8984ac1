/* test_cli_data.c: the synth, data and cache commands, headless: in-process through
 * app_run_line (output and warnings captured) and the real binary (Ctrl-C during synth).
 * Every case that touches the cache points XDG_CACHE_HOME at its own folder. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app.h"
#include "basin/core/fs.h"
#include "basin/core/status.h"
#include "basin/data/synth.h"
#include "util.h"
#include "test.h"

static int occurrences(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static int lines_in(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

static char *saved_xdg;

static void use_cache_home(const char *name)
{
    saved_xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    setenv("XDG_CACHE_HOME", test_path(name), 1);
    unsetenv("BASIN_CACHE_MAX");
}

static void restore_cache_home(void)
{
    if (saved_xdg) setenv("XDG_CACHE_HOME", saved_xdg, 1);
    else unsetenv("XDG_CACHE_HOME");
    free(saved_xdg);
    saved_xdg = NULL;
}

/* clips=N makes exactly N clips (it rounded to multiples of 190) and says how they split;
 * fewer than the classes is refused with what is possible; help documents rate=. */
static void test_synth_exact_clips(void)
{
    char script[2048], meta[700];
    const char *dir = test_path("cli-syn37");
    snprintf(script, sizeof script, "synth out=%s clips=37 seconds=0.5\nsynth out=%s clips=37 seconds=0.5\n",
             dir, dir);
    struct cli_output r = cli_run(script);
    EXPECT_EQ_INT(r.n_errors, 0);
    EXPECT_EQ_INT(occurrences(r.out, "generating a data set (37 clips, about "), 1);  /* reused the 2nd time */
    EXPECT_EQ_INT(occurrences(r.out, "synth: 37 clips in "), 2);
    EXPECT(strstr(r.out, ": train 20, evaluate 17 (") != NULL);
    snprintf(meta, sizeof meta, "%s/meta.csv", dir);
    EXPECT_EQ_INT(lines_in(meta), 1 + 37);
    snprintf(meta, sizeof meta, "%s/evaluation_setup/fold1_evaluate.csv", dir);
    EXPECT_EQ_INT(lines_in(meta), 1 + 17);

    r = cli_run("synth clips=1\nsynth clips=9 out=/nonexistent/x\nsynth clips=190001\n");
    EXPECT_EQ_INT(r.n_errors, 3);
    EXPECT(strstr(r.err, "error: synth: clips=1 is fewer than the 10 classes (at least 10: one "
                         "train clip per class; 20 or more") != NULL);
    EXPECT(strstr(r.err, "at most 190000") != NULL);
    EXPECT(!strstr(r.err, "synth: synth:"));

    /* ten clips: one per class, all train; said, and warned */
    dir = test_path("cli-syn10");
    snprintf(script, sizeof script, "synth out=%s clips=10 seconds=0.5\ndata %s\n", dir, dir);
    r = cli_run(script);
    EXPECT_EQ_INT(r.n_errors, 0);
    EXPECT(strstr(r.out, "synth: 10 clips in ") && strstr(r.out, ": train 10, evaluate 0 ("));
    EXPECT(strstr(r.log, "the evaluate split of ") && strstr(r.log, "clips=20 or more"));
    EXPECT(strstr(r.log, "meta.csv: the evaluate split is empty (split: evaluation_setup/fold1_*.csv); "
                         "every class has a single recording") != NULL);

    r = cli_run("help synth\n");
    EXPECT(strstr(r.out, "rate=HZ") && strstr(r.out, "8000..96000"));
    EXPECT(strstr(r.out, "10 TAU 2020 scene classes") && !strstr(r.out, "8+"));
}

/* UrbanSound8K's metadata for one fold: every clip evaluate. A warning at `data`, an error
 * for `data export` of the empty split; split options fix it and the summary says how. */
static void test_data_empty_split_and_split_options(void)
{
    char csv[512], script[4096];
    path_of(csv, sizeof csv, "us8k-fold1.csv");
    REQUIRE(write_text(csv, "slice_file_name,filename,fold,classID,label\n"
                            "1.wav,a/100-0-0.wav,1,0,dog\n2.wav,a/100-0-1.wav,1,0,dog\n"
                            "3.wav,a/101-0-0.wav,1,0,dog\n4.wav,a/200-0-0.wav,1,1,siren\n"
                            "5.wav,a/201-0-0.wav,1,1,siren\n6.wav,a/202-0-0.wav,1,1,siren\n"));
    snprintf(script, sizeof script, "data %s\ndata export %s split=train\n", csv,
             test_path("x.safetensors"));
    struct cli_output r = cli_run(script);
    EXPECT_EQ_INT(r.n_errors, 1);
    EXPECT(strncmp(r.out, "data set  ", 10) == 0);   /* no bare path line before the summary */
    EXPECT_EQ_INT(occurrences(r.out, csv), 1);
    EXPECT(strstr(r.out, "splits    fold column: fold 1 is evaluate, the others train") != NULL);
    EXPECT(strstr(r.out, "clips     6: train 0, evaluate 6") != NULL);
    EXPECT_EQ_INT(occurrences(r.log, "the train split is empty (split: fold column: fold 1 is "
                                     "evaluate, the others train); `data PATH split=recording`"), 1);
    EXPECT(strstr(r.err, "error: data export: ") && strstr(r.err, "the train split is empty"));

    /* split by recording: the session seed by default, then seed=, evaluate=, options alone */
    snprintf(script, sizeof script,
             "data %s split=recording\nset seed=7\ndata %s split=recording\n"
             "data %s seed=3 evaluate=0.5\ndata evaluate=40%%\ndata %s fold=1\n", csv, csv, csv, csv);
    r = cli_run(script);
    EXPECT_EQ_INT(r.n_errors, 0);
    EXPECT(strstr(r.out, "splits    by recording, seed 1, 30 % evaluate (fold column ignored)"));
    EXPECT(strstr(r.out, "splits    by recording, seed 7, 30 % evaluate (fold column ignored)"));
    EXPECT(strstr(r.out, "splits    by recording, seed 3, 50 % evaluate (fold column ignored)"));
    EXPECT(strstr(r.out, "splits    by recording, seed 7, 40 % evaluate (fold column ignored)"));
    EXPECT_EQ_INT(occurrences(r.out, "splits    fold column: fold 1 is evaluate"), 1);
    EXPECT_EQ_INT(occurrences(r.log, "split is empty"), 1);   /* only the fold=1 one */

    snprintf(script, sizeof script,
             "data %s fold=2 seed=3\ndata %s evaluate=2\ndata %s fold=9\ndata %s colour=red\n"
             "data %s %s\n", csv, csv, csv, csv, csv, csv);
    r = cli_run(script);
    EXPECT_EQ_INT(r.n_errors, 5);
    EXPECT(strstr(r.err, "fold= uses the listed folds; seed=, evaluate= and split=recording split "
                         "by recording instead: one or the other"));
    EXPECT(strstr(r.err, "evaluate=2: the share of recordings to evaluate"));
    EXPECT(strstr(r.err, "no clip in fold 9 (folds go up to 1)"));
    EXPECT(strstr(r.err, "unknown option 'colour=red'"));
    EXPECT(strstr(r.err, "one data set at a time"));

    r = cli_run("help data\n");
    EXPECT(strstr(r.out, "seed=N") && strstr(r.out, "evaluate=F") && strstr(r.out, "fold=K") &&
           strstr(r.out, "split=recording") && strstr(r.out, "the session seed"));
}

/* A clip that fails to load is reported once (a warning), not also on standard output. */
static void test_data_export_reports_a_skip_once(void)
{
    char dir[512], bad[700], script[2048];
    use_cache_home("cli-skip-cache");
    path_of(dir, sizeof dir, "cli-skip");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL | DC_AUDIO));
    snprintf(bad, sizeof bad, "%s/audio/airport-lyon-100-7-b.wav", dir);
    REQUIRE(write_text(bad, "RIFF junk"));
    snprintf(script, sizeof script, "data %s\ndata export %s split=train\n", dir,
             test_path("skip.safetensors"));
    struct cli_output r = cli_run(script);
    EXPECT_EQ_INT(r.n_errors, 0);
    EXPECT(strstr(r.out, "1 skipped") != NULL);
    EXPECT_EQ_INT(occurrences(r.out, bad) + occurrences(r.err, bad) + occurrences(r.log, bad), 1);
    EXPECT_EQ_INT(occurrences(r.log, "skipped "), 1);
    /* the feature cache announced itself on first use, with its cap */
    EXPECT(strstr(r.out, "caching features in ") && strstr(r.out, "cli-skip-cache/basin/features (up to 2.0 GiB"));
    r = cli_run(script);
    EXPECT(!strstr(r.out, "caching features in "));
    restore_cache_home();
}

/* `cache`: where, how much, the cap; `cache cap=` bounds the features at once and later;
 * `cache clear` empties it, says how much, and closes a data set that lived there. */
static void test_cache_command(void)
{
    use_cache_home("cli-cache");
    char dir[512], script[2048], setdir[700];
    path_of(dir, sizeof dir, "cli-cache-set");
    REQUIRE(make_dcase(dir, DC_SETUP | DC_META_FULL | DC_AUDIO));
    struct cli_output r = cli_run("cache\n");
    EXPECT_EQ_INT(r.n_errors, 0);
    EXPECT(strstr(r.out, "cache      ") && strstr(r.out, "cli-cache/basin\n"));
    EXPECT(strstr(r.out, "features   0 files, 0 B (cap 2.0 GiB, the default;"));
    EXPECT(strstr(r.out, "data sets  0 generated"));

    snprintf(script, sizeof script, "data %s\ndata export %s split=evaluate\ncache\n", dir,
             test_path("c.safetensors"));
    r = cli_run(script);
    EXPECT_EQ_INT(r.n_errors, 0);
    EXPECT(strstr(r.out, "features   6 files, ") != NULL);

    /* a tiny cap: trimmed now, and after the next export */
    snprintf(script, sizeof script, "cache cap=8K\ncache\ndata %s\ndata export %s split=train\ncache\n"
             "cache cap=lots\n", dir, test_path("c.safetensors"));
    r = cli_run(script);
    EXPECT_EQ_INT(r.n_errors, 1);
    EXPECT(strstr(r.out, "cache cap: features up to 8.0 KiB") && strstr(r.out, "; freed "));
    EXPECT(strstr(r.out, "(cap 8.0 KiB, set by cache cap=;"));
    EXPECT(strstr(r.err, "'lots' is not a size"));
    struct stat sb;
    char fdir[700];
    snprintf(fdir, sizeof fdir, "%s/basin/features", test_path("cli-cache"));
    uint64_t bytes = 0;
    long files = 0;
    REQUIRE_OK(fs_tree_size(fdir, &bytes, &files));
    EXPECT(bytes <= 8 * 1024);
    EXPECT(files > 0);

    /* a generated set in the cache, opened, then cleared */
    struct synth_params p;
    synth_params_default(&p);
    p.clip_s = 0.5;
    REQUIRE_OK(synth_params_set_clips(&p, 10));
    REQUIRE_OK(synth_cache_dir(&p, setdir, sizeof setdir));
    snprintf(script, sizeof script, "synth clips=10 seconds=0.5\ndata %s\ncache\ncache clear\ncache\n", setdir);
    r = cli_run(script);
    EXPECT_EQ_INT(r.n_errors, 0);
    EXPECT(strstr(r.out, "generating a data set (10 clips, about ") && strstr(r.out, setdir));
    EXPECT(strstr(r.out, "data sets  1 generated, ") != NULL);
    EXPECT(strstr(r.out, "closed the data set ") != NULL);
    EXPECT(strstr(r.out, "cache clear: freed ") != NULL);
    EXPECT(strstr(r.out, "data sets  0 generated, 0 B") && strstr(r.out, "features   0 files, 0 B (cap 8.0 KiB"));
    EXPECT(stat(setdir, &sb) != 0);
    r = cli_run("cache bogus\nhelp cache\n");
    EXPECT_EQ_INT(r.n_errors, 1);
    EXPECT(strstr(r.err, "usage: cache | cache clear | cache cap=SIZE"));
    EXPECT(strstr(r.out, "BASIN_CACHE_MAX") && strstr(r.out, "least recently"));
    restore_cache_home();
}

/* `data default` says what it is about to write, and where, the first time only. */
static void test_data_default_announced(void)
{
    use_cache_home("cli-default");
    struct cli_output r = cli_run("data default\ncache\ndata default\n");
    EXPECT_EQ_INT(r.n_errors, 0);
    EXPECT_EQ_INT(occurrences(r.out, "generating the default data set (950 clips, about 200.0 MiB) in "), 1);
    EXPECT(strstr(r.out, "cli-default/basin/synth-144fffd6f5c397fc\n") != NULL);
    EXPECT(strstr(r.out, "data sets  1 generated, ") && strstr(r.out, "(the default data set: 199.9 MiB)"));
    r = cli_run("cache clear\n");
    EXPECT(strstr(r.out, "cache clear: freed 199.9 MiB") != NULL);
    restore_cache_home();
}

/* Ctrl-C during `synth` in the real binary: it stops, fails the command, and leaves no
 * temporary folder and no data set behind. */
static void test_synth_interrupted_leaves_nothing(void)
{
    const char *bin = getenv("BASIN_BIN");
    if (!bin) {
        printf("  (BASIN_BIN unset: binary test skipped; make test sets it)\n");
        return;
    }
    const char *dir = test_path("cli-int"), *script = test_path("cli-int.basin"),
               *errf = test_path("cli-int.err");
    FILE *f = fopen(script, "w");
    REQUIRE(f);
    fprintf(f, "synth out=%s seconds=2\n", dir);
    fclose(f);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY), err = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(null, 1), dup2(err, 2);
        execl(bin, bin, "--script", script, (char *)NULL);
        _exit(127);
    }
    char prefix[64], audio[1024] = "";
    snprintf(prefix, sizeof prefix, "cli-int.tmp-%ld-", (long)pid);
    for (int i = 0; i < 3000; i++) {
        DIR *d = opendir(test_dir());
        for (struct dirent *e; d && (e = readdir(d));)
            if (!strncmp(e->d_name, prefix, strlen(prefix)))
                snprintf(audio, sizeof audio, "%s/%s/audio", test_dir(), e->d_name);
        if (d) closedir(d);
        int n = 0;
        DIR *a = audio[0] ? opendir(audio) : NULL;
        for (struct dirent *e; a && (e = readdir(a));) n += strstr(e->d_name, ".wav") != NULL;
        if (a) closedir(a);
        if (n >= 5) break;
        usleep(10000);
    }
    kill(pid, SIGINT);
    int st;
    waitpid(pid, &st, 0);
    REQUIRE(audio[0]);
    EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 130);
    struct stat sb;
    EXPECT(stat(dir, &sb) != 0);
    DIR *d = opendir(test_dir());
    int left = 0;
    for (struct dirent *e; d && (e = readdir(d));) left += !strncmp(e->d_name, "cli-int.tmp-", 12);
    if (d) closedir(d);
    EXPECT_EQ_INT(left, 0);
    f = fopen(errf, "r");
    char line[512], all[4096] = "";
    while (f && fgets(line, sizeof line, f)) strncat(all, line, sizeof all - strlen(all) - 1);
    if (f) fclose(f);
    EXPECT_MSG(strstr(all, "error: synth: cancelled") != NULL, "stderr: %s", all);
}

const struct test tests_cli_data[] = {
    TEST(test_synth_exact_clips),
    TEST(test_data_empty_split_and_split_options),
    TEST(test_data_export_reports_a_skip_once),
    TEST(test_cache_command),
    TEST_HEAVY(test_data_default_announced),
    TEST(test_synth_interrupted_leaves_nothing),
    {0},
};
