/* test_session.c: session save / load / replay: the state comes back without recomputing,
 * a replay of commands.log reaches the same numbers, damaged and too-new folders are
 * refused with a clear message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "util.h"

/* The line of text starting with prefix (up to its newline), into buf. */
static const char *line_of(const char *text, const char *prefix, char *buf, size_t n)
{
    const char *p = text ? strstr(text, prefix) : NULL;
    buf[0] = 0;
    if (p) snprintf(buf, n, "%.*s", (int)strcspn(p, "\n"), p);
    return buf;
}

static void test_save_load_replay(void)
{
    char data[600], sess[600], script[4096], run[600], csv[600], path[700];
    path_of(data, sizeof data, "sess-data");
    path_of(sess, sizeof sess, "sess/first");
    path_of(run, sizeof run, "sess-run");
    path_of(csv, sizeof csv, "sess-eval.csv");
    snprintf(script, sizeof script,
             "synth out=%s clips=40 seconds=1 seed=5\nset seed=7\ndata %s\npreset demo\n"
             "new cpresnet width=4 rho=3 blocks=1,1,1\ntrain epochs=2 bs=8 out=%s\neval --csv %s\n"
             "landscape grid=3 --csv %s-land.csv\nsession save %s\n",
             data, data, run, csv, csv, sess);
    struct cli_output o = cli_run(script);
    REQUIRE(o.n_errors == 0);
    /* the files the commands wrote are kept under results/, byte for byte */
    EXPECT(strstr(o.out, "3 result files in results/") != NULL);
    snprintf(path, sizeof path, "%s/results/sess-eval.csv", sess);
    char *kept = file_text(path), *orig = file_text(csv);
    EXPECT(kept && orig && !strcmp(kept, orig));
    free(kept), free(orig);
    snprintf(path, sizeof path, "%s/results/sess-eval-confusion.csv", sess);
    EXPECT(access(path, R_OK) == 0);
    snprintf(path, sizeof path, "%s/results/sess-eval.csv-land.csv", sess);
    EXPECT(access(path, R_OK) == 0);
    char before[512], after[512];
    line_of(o.out, "overall:", before, sizeof before);
    REQUIRE(before[0]);
    /* load in a fresh session: the same model (eval gives the same figures), the curves and
     * the evaluation back without recomputing them, and the session folder untouched */
    struct stat st0, st1;
    REQUIRE(stat(path, &st0) == 0);
    snprintf(script, sizeof script, "session load %s\nview devices\nview curves\neval\n", sess);
    o = cli_run(script);
    EXPECT_EQ_INT(o.n_errors, 0);
    EXPECT(strstr(o.out, "loaded the session") != NULL);
    REQUIRE(stat(path, &st1) == 0);
    EXPECT(st0.st_ino == st1.st_ino && st0.st_mtim.tv_sec == st1.st_mtim.tv_sec &&
           st0.st_mtim.tv_nsec == st1.st_mtim.tv_nsec);
    EXPECT(strstr(o.out, "  unchanged ") && strstr(o.out, "results/sess-eval.csv-land.csv"));
    EXPECT(strstr(o.out, "  result: ") && strstr(o.out, "results/sess-eval-confusion.csv\n"));
    EXPECT_MSG(strstr(o.out, "9 points read back from the files (resume=)") && !strstr(o.out, "points computed"), "%s", o.out);
    EXPECT(strstr(o.out, "seen") && strstr(o.out, "epochs;"));
    EXPECT_STR(line_of(o.out, "overall:", after, sizeof after), before);
    /* replay from scratch through the binary: the same numbers */
    const char *bin = getenv("BASIN_BIN");
    if (bin) {
        char cmd[2048], out[65536];
        snprintf(cmd, sizeof cmd, "cd '%s' && '%s' --script '%s/commands.log' 2>&1", test_dir(), bin, sess);
        EXPECT_EQ_INT(shell_output(cmd, out, sizeof out), 0);
        EXPECT_STR(line_of(out, "overall:", after, sizeof after), before);
    }
}

/* A command whose job fails only at its end (the CSV it could not write) is an error, and
 * is not in the session's commands.log */
static void test_failed_job_not_logged(void)
{
    char data[600], sess[600], script[4096], path[700];
    path_of(data, sizeof data, "sess-fail-data");
    path_of(sess, sizeof sess, "sess/failed");
    snprintf(script, sizeof script,
             "synth out=%s clips=20 seconds=1 seed=5\ndata %s\npreset demo\nnew cpresnet width=4 rho=3 blocks=1,1,1\n"
             "eval --csv /nonexistent-basin-dir/x.csv\nsession save %s\n",
             data, data, sess);
    struct cli_output o = cli_run(script);
    EXPECT_EQ_INT(o.n_errors, 1);
    EXPECT(strstr(o.err, "/nonexistent-basin-dir/x.csv") != NULL);
    snprintf(path, sizeof path, "%s/commands.log", sess);
    char *log = file_text(path);
    EXPECT(log && strstr(log, "new cpresnet width=4") && !strstr(log, "eval"));
    free(log);
}

static void test_damaged_and_too_new(void)
{
    char dir[600], path[700], script[2048];
    path_of(dir, sizeof dir, "sess/bad");
    mkdirs(dir);
    struct cli_output o;
    /* no state.json */
    snprintf(script, sizeof script, "session load %s\n", dir);
    o = cli_run(script);
    EXPECT(strstr(o.err, "not a basin session folder") != NULL);
    /* garbage */
    snprintf(path, sizeof path, "%s/state.json", dir);
    REQUIRE(write_text(path, "{\"format\": 1, \"model\": "));
    o = cli_run(script);
    EXPECT_EQ_INT(o.n_errors, 1);
    EXPECT(strstr(o.err, "state.json") != NULL);
    /* too new */
    REQUIRE(write_text(path, "{\"format\": 99, \"basin\": \"9.0\"}"));
    o = cli_run(script);
    EXPECT(strstr(o.err, "newer than this basin") && strstr(o.err, "9.0"));
    /* a model file that is not there */
    REQUIRE(write_text(path, "{\"format\": 1, \"model\": \"model.safetensors\"}"));
    o = cli_run(script);
    EXPECT(strstr(o.err, "model.safetensors") != NULL);
    /* a result it lists that is not there: named, the rest loads */
    REQUIRE(write_text(path, "{\"format\": 1, \"results\": {\"files\": [\"results/gone.csv\"]}}"));
    o = cli_run(script);
    EXPECT(strstr(o.err, "results/gone.csv: a result the session lists is missing") != NULL);
    /* nothing of that name */
    o = cli_run("session load no-such-session-here\n");
    EXPECT(strstr(o.err, "no such session") != NULL);
}

/* Every lesson that ships runs headless in its quick form (the settings its header names),
 * in a folder of its own (or the repository's, for one whose paths are relative to it), each step narrated, to its end; the figures it exists to show are
 * all printed, and every figure is finite. */
static void test_lessons_run(void)
{
    const char *bin = getenv("BASIN_BIN");
    if (!bin || access("sessions/lessons", R_OK)) {
        printf("  (no sessions/lessons here or BASIN_BIN unset: skipped)\n");
        return;
    }
    static const struct {
        const char *name, *quick;
        int here;               /* 1: run from the repository's folder (its paths are relative) */
        const char *must[6];    /* lines the lesson's claims rest on */
        int count[6];           /* how many times each appears (0: at least once) */
    } lessons[] = {
        {"tour", "EPOCHS=1", 1, {"overall: accuracy", "trained 1 epochs", "bnstats: 28 BN layers", "  all    "}, {2, 1, 1, 1}},
        {"flat-vs-sharp", "EPOCHS=1 GRID=3 PAIRS=2 SUBSET=n=32", 0,
         {"sharpness over 2 pairs: mean ", "overall: accuracy", "A - B: sharpness", "A - B: accuracy"},
         {2, 2, 1, 1}},
        {"width-vs-pruning", "EPOCHS=1 ERF_N=4", 0,
         {"overall: accuracy", "68 % of the gradient mass", "(15,372 kept by the pruning masks)", "A - B: accuracy"},
         {2, 2, 1, 1}},
        {"big-to-small", "EPOCHS=1 OUT=@", 1,
         {"overall: accuracy", "  MACs ", "OVER (", "the model fits the budget"},
         {3, 0, 3, 1}},
        {"microphone", "MIC=file:assets/park.wav PACE=fast REC_S=3 WINDOWS=4 OUT=@", 1,
         {"recorded 3.00 s", "   1. park ", "     4  ", "top scene park"},
         {1, 1, 1, 1}},
    };
    for (size_t i = 0; i < sizeof lessons / sizeof lessons[0]; i++) {
        char cmd[6144], dir[700];
        static char out[1 << 18];
        if (lessons[i].here) snprintf(dir, sizeof dir, ".");
        else snprintf(dir, sizeof dir, "%s-%s", test_path("lesson"), lessons[i].name);
        /* OUT=@: the lesson's output in the test's own folder */
        char quick[1200], *at;
        snprintf(quick, sizeof quick, "%s", lessons[i].quick);
        if ((at = strchr(quick, '@'))) {
            *at = 0;
            char rest[1200];
            snprintf(rest, sizeof rest, "%.300s%.600s-out%.200s", quick, test_path(lessons[i].name), at + 1);
            snprintf(quick, sizeof quick, "%s", rest);
        }
        snprintf(cmd, sizeof cmd,
                 "mkdir -p '%s' && cd '%s' && printf 'lesson %s\\n' | %s XDG_CACHE_HOME='%s' '%s' 2>&1", dir,
                 dir, lessons[i].name, quick, test_path("lesson-cache"), bin);
        int rc = shell_output(cmd, out, sizeof out);
        char done[128];
        snprintf(done, sizeof done, "[lesson %s: done,", lessons[i].name);
        EXPECT_MSG(rc == 0 && strstr(out, done), "lesson %s: rc %d: %s", lessons[i].name, rc, out);
        EXPECT_MSG(!strstr(out, "nan") && !strstr(out, "inf "), "lesson %s printed a non-finite figure: %s",
                   lessons[i].name, out);
        for (int k = 0; k < 6 && lessons[i].must[k]; k++) {
            int n = 0;
            for (const char *p = out; (p = strstr(p, lessons[i].must[k])); p++) n++;
            if (lessons[i].count[k]) EXPECT_MSG(n == lessons[i].count[k], "lesson %s: '%s' %d times, expected %d",
                                                lessons[i].name, lessons[i].must[k], n, lessons[i].count[k]);
            else EXPECT_MSG(n > 0, "lesson %s: no '%s'", lessons[i].name, lessons[i].must[k]);
        }
    }
}

const struct test tests_session[] = {
    TEST_HEAVY(test_lessons_run),
    TEST_HEAVY(test_save_load_replay),
    TEST(test_failed_job_not_logged),
    TEST(test_damaged_and_too_new),
    {0},
};
