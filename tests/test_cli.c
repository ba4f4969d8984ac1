/* test_cli.c: the command layer, headless: in-process through app_run_line (output
 * captured), and the real binary through scripts and pipes (exit status, stdin mode). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "app.h"
#include "basin/audio/audio_file.h"
#include "basin/model/model.h"
#include "basin/model/safetensors.h"
#include "test.h"

/* Run lines through a fresh app; return captured stdout and stderr (static buffers). */
struct captured {
    char *out, *err;
    int n_errors;
};

static struct captured run(const char *script)
{
    static char *out, *err;
    size_t n_out, n_err;
    free(out);
    free(err);
    out = err = NULL;
    struct app a;
    app_init(&a);
    a.out = open_memstream(&out, &n_out);
    a.err = open_memstream(&err, &n_err);
    char *copy = strdup(script), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line && !a.quit; line = strtok_r(NULL, "\n", &save))
        app_run_line(&a, line);
    free(copy);
    struct captured c = {NULL, NULL, a.n_errors};
    fclose(a.out);
    fclose(a.err);
    app_fini(&a);
    c.out = out;
    c.err = err;
    return c;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void test_new_info_prints_the_table(void)
{
    struct captured c = run("new cpresnet width=32 rho=5\ninfo\n");
    EXPECT_EQ_INT(c.n_errors, 0);
    EXPECT(strstr(c.out, "total: 227,316 parameters") != NULL);
    EXPECT(strstr(c.out, "s1.b1.conv1") && strstr(c.out, "head.bn"));
    EXPECT(strstr(c.out, "receptive field 87 x 87") != NULL);
    EXPECT(strstr(c.out, "fp16 444.0 KiB") != NULL);
    c = run("new sepnet\ninfo\nnew cnn10\ninfo 64 1001\n");
    EXPECT_EQ_INT(c.n_errors, 0);
    EXPECT(strstr(c.out, "total: 62,922 parameters") != NULL);
    EXPECT(strstr(c.out, "total: 4,954,058 parameters") != NULL);
    c = run("new cpresnet width=48 rho=4 blocks=4,3,1 in_ch=2\n");
    EXPECT(strstr(c.out, "247,316 parameters") != NULL);
}

static void test_errors_are_one_line_and_the_session_goes_on(void)
{
    struct captured c = run("frobnicate\nnew resnet\nnew cpresnet width=abc\nnew cpresnet depth=3\n"
                            "load /nonexistent/m.safetensors\ninfo\nsave\nset threads=x\n"
                            "new cpresnet width=8 'unterminated\nnew cpresnet width=8\ninfo\n");
    EXPECT_EQ_INT(c.n_errors, 9);
    EXPECT_EQ_INT(count_lines(c.err), 9);
    EXPECT(strstr(c.err, "error: unknown command 'frobnicate'") != NULL);
    EXPECT(strstr(c.err, "unknown architecture 'resnet'") != NULL);
    EXPECT(strstr(c.err, "width=abc") != NULL);
    EXPECT(strstr(c.err, "no option 'depth'") != NULL);
    EXPECT(strstr(c.err, "/nonexistent/m.safetensors") != NULL);
    EXPECT(strstr(c.err, "unterminated quote") != NULL);
    EXPECT(strstr(c.out, "total:") != NULL); /* the last info ran */
}

static void test_save_load_through_commands(void)
{
    char script[1024];
    const char *p = test_path("cli.safetensors");
    snprintf(script, sizeof script,
             "new cpresnet width=8 rho=7 damping=0.1 seed=5\nsave %s\nload %s\ninfo\nsave %s checkpoint=1\nload %s\n", p, p,
             p, p);
    struct captured c = run(script);
    EXPECT_EQ_INT(c.n_errors, 0);
    EXPECT(strstr(c.out, "saved ") && strstr(c.out, "loaded "));
    EXPECT(strstr(c.out, "damping=0.1") != NULL);
    c = run("save x.safetensors\n");
    EXPECT(strstr(c.err, "no model") != NULL);
}

/* A model keeps the front end it was made with through save and load; spec then uses it. */
static void test_model_front_end_travels_with_the_model(void)
{
    const char *wav = test_path("fe.wav"), *m = test_path("fe.safetensors");
    struct audio_file af;
    REQUIRE_OK(audio_file_alloc(&af, 1, 44100, 44100));
    for (long i = 0; i < af.n_frames; i++) af.x[i] = 0.1f * (float)((i * 7919) % 201 - 100) / 100.0f;
    REQUIRE_OK(audio_file_write(wav, &af, AUDIO_FILE_WAV_16));
    audio_file_fini(&af);
    char script[2048];
    snprintf(script, sizeof script,
             "new sepnet\nsave %s\npreset panns32k\nload %s\nspec %s style=ascii\npreset\nnew cnn10\ninfo\n",
             m, m, wav);
    struct captured c = run(script);
    EXPECT_EQ_INT(c.n_errors, 0);
    EXPECT(strstr(c.out, "sp4asc front end (model), 256 mels x 44 frames") != NULL);
    EXPECT(strstr(c.out, "model front end: sp4asc") != NULL);
    /* a chosen session preset gives new models its mel bins: cnn10 with panns32k's 64 */
    EXPECT(strstr(c.out, "input 1 x 64 x 1001") != NULL);
}

static void test_help(void)
{
    struct captured c = run("help\nhelp new\nhelp nothing\n");
    EXPECT_EQ_INT(c.n_errors, 1);
    EXPECT(strstr(c.out, "new ARCH") && strstr(c.out, "quit"));
    EXPECT(strstr(c.out, "Example: new cpresnet") != NULL);
}

static void test_clip_spec_preset(void)
{
    const char *wav = test_path("tone.wav");
    struct audio_file af;
    REQUIRE_OK(audio_file_alloc(&af, 1, 22050, 22050));
    for (long i = 0; i < af.n_frames; i++) af.x[i] = 0.5f * (float)__builtin_sin(2 * 3.14159265358979 * 1000.0 * i / 22050);
    REQUIRE_OK(audio_file_write(wav, &af, AUDIO_FILE_WAV_16));
    audio_file_fini(&af);
    char script[2048];
    const char *csv = test_path("spec.csv");
    snprintf(script, sizeof script,
             "clip %s\nspec width=40 rows=16 style=ascii\npreset panns16k\nspec %s style=ascii csv=%s\n"
             "preset nothing\nclip %s/missing.wav\nspec style=weird\n",
             wav, wav, csv, test_dir());
    struct captured c = run(script);
    EXPECT_EQ_INT(c.n_errors, 3);
    EXPECT(strstr(c.out, "22050 Hz, 1 channel, 1.000 s") != NULL);
    EXPECT(strstr(c.out, "demo front end (session), 64 mels x 51 frames") != NULL);
    EXPECT(strstr(c.out, "panns16k front end") != NULL);
    EXPECT(strstr(c.err, "missing.wav") != NULL);
    FILE *f = fopen(csv, "r");
    REQUIRE(f);
    char line[65536];
    int rows = 0;
    while (fgets(line, sizeof line, f)) rows++;
    fclose(f);
    EXPECT_EQ_INT(rows, 1 + 64);
}

/* synth + data + spec + data export from one script, on a small synthetic set. */
static void test_synth_data_spec_export(void)
{
    char script[4096];
    const char *dir = test_path("syn"), *ex = test_path("ex.safetensors");
    setenv("XDG_CACHE_HOME", test_path("cache"), 1);
    snprintf(script, sizeof script, "synth out=%s clips=100 seconds=1 seed=3\n", dir);
    struct captured c = run(script);
    REQUIRE(c.n_errors == 0);
    char first[512] = "";
    snprintf(script, sizeof script, "%s/audio", dir);
    DIR *d = opendir(script);
    REQUIRE(d);
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, "-a.wav")) snprintf(first, sizeof first, "%s/audio/%s", dir, e->d_name);
    closedir(d);
    snprintf(script, sizeof script,
             "synth out=%s clips=100 seconds=1 seed=3\ndata %s\nspec %s style=ascii width=50\n"
             "data export %s split=evaluate\ndata export %s split=evaluate\ndata export %s split=bogus\n",
             dir, dir, first, ex, ex, ex);
    c = run(script);
    EXPECT_EQ_INT(c.n_errors, 1);
    EXPECT(strstr(c.err, "bogus") != NULL);
    EXPECT(strstr(c.out, "synth: ") && strstr(c.out, "clips in"));
    EXPECT(strstr(c.out, "DCASE layout") != NULL);
    EXPECT(strstr(c.out, "unseen s4, s5, s6") != NULL);
    EXPECT(strstr(c.out, "demo front end (session), 64 mels x 51 frames") != NULL);
    EXPECT(strstr(c.out, "0 clips computed") != NULL); /* the second export reads the cache */
    struct st_file *f;
    REQUIRE_OK(st_load(ex, &f));
    const struct st_tensor *x = st_find(f, "x"), *y = st_find(f, "y");
    REQUIRE(x && y);
    EXPECT_EQ_INT(x->n_dims, 4);
    EXPECT_EQ_INT(x->shape[2], 64);
    EXPECT_EQ_INT(y->dtype, ST_I64);
    EXPECT_EQ_INT(y->shape[0], x->shape[0]);
    EXPECT(st_meta(f, "basin.labels") && strstr(st_meta(f, "basin.labels"), "street_traffic"));
    st_destroy(f);
    unsetenv("XDG_CACHE_HOME");
}

/* `data default` generates the embedded set into the cache folder on first use. */
static void test_data_default(void)
{
    setenv("XDG_CACHE_HOME", test_path("cache-default"), 1);
    struct captured c = run("data default\n");
    EXPECT_EQ_INT(c.n_errors, 0);
    EXPECT(strstr(c.out, "clips     950") != NULL);
    EXPECT(strstr(c.out, "cache-default/basin/synth-") != NULL);
    /* naming no data set means the default one (already generated: reused) */
    c = run("data\n");
    EXPECT_EQ_INT(c.n_errors, 0);
    EXPECT(strstr(c.out, "cache-default/basin/synth-") && strstr(c.out, "clips     950"));
    unsetenv("XDG_CACHE_HOME");
}

/* The binary: a script's exit status is non-zero when a command failed; stdin works. */
static void test_binary_exit_status_and_stdin(void)
{
    const char *bin = getenv("BASIN_BIN");
    if (!bin) {
        printf("  (BASIN_BIN unset: binary test skipped; make test sets it)\n");
        return;
    }
    char cmd[2048];
    const char *ok = test_path("ok.basin"), *bad = test_path("bad.basin");
    FILE *f = fopen(ok, "w");
    fputs("# a comment\nnew cpresnet width=32 rho=5\ninfo\n", f);
    fclose(f);
    f = fopen(bad, "w");
    fputs("new cpresnet width=32\nbogus\ninfo\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' --script '%s' > /dev/null 2>&1", bin, ok);
    EXPECT_EQ_INT(WEXITSTATUS(system(cmd)), 0);
    snprintf(cmd, sizeof cmd, "'%s' --script '%s' > /dev/null 2>&1", bin, bad);
    EXPECT_EQ_INT(WEXITSTATUS(system(cmd)), 1);
    snprintf(cmd, sizeof cmd, "printf 'new cpresnet width=32 rho=5\\ninfo\\n' | '%s' 2>&1 | grep -c 'total: 227,316 parameters'", bin);
    FILE *p = popen(cmd, "r");
    REQUIRE(p);
    char buf[64] = "";
    if (!fgets(buf, sizeof buf, p)) buf[0] = 0;
    EXPECT_EQ_INT(pclose(p), 0);
    EXPECT_EQ_INT(atoi(buf), 1);
    snprintf(cmd, sizeof cmd, "'%s' --script /nonexistent > /dev/null 2>&1", bin);
    EXPECT(WEXITSTATUS(system(cmd)) != 0);
}

const struct test tests_cli[] = {
    TEST(test_new_info_prints_the_table),
    TEST(test_errors_are_one_line_and_the_session_goes_on),
    TEST(test_save_load_through_commands),
    TEST(test_model_front_end_travels_with_the_model),
    TEST(test_help),
    TEST(test_clip_spec_preset),
    TEST(test_synth_data_spec_export),
    TEST_HEAVY(test_data_default),
    TEST(test_binary_exit_status_and_stdin),
    {0},
};
