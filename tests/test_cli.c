/* test_cli.c: the command layer, headless: in-process through app_run_line (output
 * captured), and the real binary through scripts and pipes (exit status, stdin mode). */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app.h"
#include "basin/audio/audio_file.h"
#include "basin/model/model.h"
#include "basin/model/safetensors.h"
#include "test.h"
#include "util.h"

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void test_new_info_prints_the_table(void)
{
    struct cli_output c = cli_run("new cpresnet width=32 rho=5\ninfo\n");
    EXPECT_EQ_INT(c.n_errors, 0);
    EXPECT(strstr(c.out, "total: 227,316 parameters") != NULL);
    EXPECT(strstr(c.out, "s1.b1.conv1") && strstr(c.out, "head.bn"));
    EXPECT(strstr(c.out, "receptive field 87 x 87") != NULL);
    EXPECT(strstr(c.out, "fp16 444.0 KiB") != NULL);
    c = cli_run("new sepnet\ninfo\nnew cnn10\ninfo 64 1001\n");
    EXPECT_EQ_INT(c.n_errors, 0);
    EXPECT(strstr(c.out, "total: 62,922 parameters") != NULL);
    EXPECT(strstr(c.out, "total: 4,954,058 parameters") != NULL);
    c = cli_run("new cpresnet width=48 rho=4 blocks=4,3,1 in_ch=2\n");
    EXPECT(strstr(c.out, "247,316 parameters") != NULL);
}

static void test_errors_are_one_line_and_the_session_goes_on(void)
{
    setenv("BASIN_ASSETS", "/nonexistent", 1); /* `info` with no model: no default to fall back on */
    struct cli_output c = cli_run("frobnicate\nnew resnet\nnew cpresnet width=abc\nnew cpresnet depth=3\n"
                            "load /nonexistent/m.safetensors\ninfo\nsave\nset threads=x\n"
                            "new cpresnet width=8 'unterminated\nnew cpresnet width=8\ninfo\n");
    unsetenv("BASIN_ASSETS");
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
    struct cli_output c = cli_run(script);
    EXPECT_EQ_INT(c.n_errors, 0);
    EXPECT(strstr(c.out, "saved ") && strstr(c.out, "loaded "));
    EXPECT(strstr(c.out, "damping=0.1") != NULL);
    c = cli_run("save x.safetensors\n");
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
    struct cli_output c = cli_run(script);
    EXPECT_EQ_INT(c.n_errors, 0);
    EXPECT(strstr(c.out, "sp4asc front end (the model's), 256 mels x 44 frames") != NULL);
    EXPECT(strstr(c.out, "  m  sp4asc") != NULL); /* the preset table marks the model's */
    /* a chosen session preset gives new models its mel bins: cnn10 with panns32k's 64 */
    EXPECT(strstr(c.out, "input 1 x 64 x 1001") != NULL);
}

static void test_help(void)
{
    struct cli_output c = cli_run("help\nhelp new\nhelp nothing\n");
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
    struct cli_output c = cli_run(script);
    EXPECT_EQ_INT(c.n_errors, 3);
    EXPECT(strstr(c.out, "22050 Hz, 1 channel, 1.000 s") != NULL);
    EXPECT(strstr(c.out, "demo front end (the default), 64 mels x 51 frames") != NULL);
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
    struct cli_output c = cli_run(script);
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
    c = cli_run(script);
    EXPECT_EQ_INT(c.n_errors, 1);
    EXPECT(strstr(c.err, "bogus") != NULL);
    EXPECT(strstr(c.out, "synth: ") && strstr(c.out, "clips in"));
    EXPECT(strstr(c.out, "DCASE layout") != NULL);
    EXPECT(strstr(c.out, "unseen s4, s5, s6") != NULL);
    EXPECT(strstr(c.out, "demo front end (the default), 64 mels x 51 frames") != NULL);
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
    struct cli_output c = cli_run("data default\n");
    EXPECT_EQ_INT(c.n_errors, 0);
    EXPECT(strstr(c.out, "clips     950") != NULL);
    EXPECT(strstr(c.out, "cache-default/basin/synth-") != NULL);
    /* naming no data set means the default one (already generated: reused) */
    c = cli_run("data\n");
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

/* Comments after a command and '~' for the home folder, in lines as in scripts. */
static void test_comments_and_home_folder(void)
{
    const char *home = test_path("home-cli");
    mkdir(home, 0777);
    char wav[700], old_home[1024];
    snprintf(old_home, sizeof old_home, "%s", getenv("HOME") ? getenv("HOME") : "");
    setenv("HOME", home, 1);
    snprintf(wav, sizeof wav, "%s/park.wav", home);
    struct audio_file af;
    REQUIRE_OK(audio_file_alloc(&af, 1, 16000, 16000));
    for (long i = 0; i < af.n_frames; i++) af.x[i] = 0.25f * (float)((i * 7919) % 201 - 100) / 100.0f;
    REQUIRE_OK(audio_file_write(wav, &af, AUDIO_FILE_WAV_16));
    audio_file_fini(&af);
    struct cli_output c = cli_run("new cpresnet width=8 rho=5   # a small model\n"
                            "info   # per-layer shapes\n"
                            "# a whole-line comment\n"
                            "clip ~/park.wav # any format\n"
                            "spec ~/park.wav style=ascii csv=~/park.csv\n"
                            "clip '~/park.wav'\n"
                            "clip \"#not-a-comment.wav\"\n");
    EXPECT_EQ_INT(c.n_errors, 2);
    EXPECT(strstr(c.out, "total: 15,372 parameters") != NULL);
    EXPECT(strstr(c.out, "/park.wav: 16000 Hz, 1 channel") != NULL);
    char csv[700];
    snprintf(csv, sizeof csv, "%s/park.csv", home);
    EXPECT(access(csv, F_OK) == 0);
    EXPECT(strstr(c.err, "~/park.wav") != NULL);         /* quoted: taken literally */
    EXPECT(strstr(c.err, "#not-a-comment.wav") != NULL); /* quoted '#' is no comment */
    setenv("HOME", old_home, 1);
}

/* Every error names its command; a key given twice and an integer too large for its range
 * are refused as such. */
static void test_argument_errors(void)
{
    struct cli_output c = cli_run("set seed=abc\nset seed=99999999999999999999\nnew cpresnet width=32 width=64\n"
                            "spec style=weird\nload\nhelp nothing\nnew\nnew cpresnet width=99999999999999999999\n");
    EXPECT_EQ_INT(c.n_errors, 8);
    EXPECT(strstr(c.err, "error: new: width=99999999999999999999: out of range") != NULL);
    EXPECT(strstr(c.err, "error: set: seed=abc: not an integer") != NULL);
    EXPECT(strstr(c.err, "error: set: seed=99999999999999999999: out of range") != NULL);
    EXPECT(strstr(c.err, "error: new: width= is given twice") != NULL);
    EXPECT(strstr(c.err, "error: spec: style=weird") != NULL);
    EXPECT(strstr(c.err, "error: load: usage: load PATH") != NULL);
    EXPECT(strstr(c.err, "error: help: unknown command 'nothing'") != NULL);
    EXPECT(strstr(c.err, "error: new: which architecture?") != NULL);
    for (const char *l = c.err; *l; l = strchr(l, '\n') + 1) {
        EXPECT_MSG(!strncmp(l, "error: ", 7), "not an error line: %.60s", l);
        if (!strchr(l, '\n')) break;
    }
}

/* ${NAME:-default} in scripts and lessons: the variable, else the default; an unquoted word
 * that comes out empty is no word (as in sh), a quoted one stays; malformed ones refused. */
static void test_variables(void)
{
    setenv("BASIN_TEST_SEED", "42", 1);
    unsetenv("BASIN_TEST_UNSET");
    struct cli_output c = cli_run("set seed=${BASIN_TEST_SEED:-7}\nset\nset seed=${BASIN_TEST_UNSET:-9} ${BASIN_TEST_UNSET:-}\n"
                                  "set\nset seed=3 ''\nset seed=${BASIN_TEST_UNSET}\nset seed=${BASIN_TEST_SEED\n"
                                  "set seed=${BASIN_TEST_SEED:+1}\n${BASIN_TEST_UNSET:-}\n");
    EXPECT(strstr(c.out, "seed=42\n") && strstr(c.out, "seed=9\n"));
    EXPECT_EQ_INT(c.n_errors, 4);
    EXPECT(strstr(c.err, "expected key=value, got ''") != NULL);
    EXPECT(strstr(c.err, "an unset variable in ${NAME}") != NULL);
    EXPECT(strstr(c.err, "unterminated ${") != NULL);
    EXPECT(strstr(c.err, "only ${NAME} and ${NAME:-default} are understood") != NULL);
    unsetenv("BASIN_TEST_SEED");
}

/* Output a newcomer reads: help aligned with each command once, silence named, the front
 * end's origin and units said right, the preset table. */
static void test_messages(void)
{
    struct cli_output c = cli_run("help\n");
    EXPECT(strstr(c.out, "exit ") == NULL); /* an alias of quit, not listed twice */
    EXPECT(strstr(c.out, "quit") != NULL);
    int col = -1, bad = 0;
    for (const char *l = c.out; (l = strstr(l, "\n  ")); l++) {
        const char *p = l + 3, *gap = strstr(p, "  ");
        const char *eol = strchr(p, '\n');
        if (!gap || (eol && gap > eol)) continue; /* a long usage line alone */
        while (*gap == ' ') gap++;
        int at = (int)(gap - (l + 1));
        if (col < 0) col = at;
        else bad += at != col;
    }
    EXPECT_EQ_INT(bad, 0);

    const char *silent = test_path("silent.wav"), *tone = test_path("tone-z.wav");
    struct audio_file af;
    REQUIRE_OK(audio_file_alloc(&af, 1, 22050, 22050));
    REQUIRE_OK(audio_file_write(silent, &af, AUDIO_FILE_WAV_16));
    for (long i = 0; i < af.n_frames; i++) af.x[i] = 0.3f * (float)((i * 7919) % 201 - 100) / 100.0f;
    REQUIRE_OK(audio_file_write(tone, &af, AUDIO_FILE_WAV_16));
    audio_file_fini(&af);
    char script[2048];
    snprintf(script, sizeof script,
             "clip %s\nnew sepnet\nspec %s preset=demo style=ascii\nspec %s style=ascii\n"
             "preset cpjku\nnew cpresnet width=8\nspec %s style=ascii\npreset\n",
             silent, tone, tone, tone);
    c = cli_run(script);
    EXPECT_EQ_INT(c.n_errors, 0);
    EXPECT(strstr(c.out, "digital silence") != NULL);
    EXPECT(strstr(c.out, "-200") == NULL);
    EXPECT(strstr(c.out, "demo front end (given with preset=)") != NULL);
    EXPECT(strstr(c.out, "sp4asc front end (the model's)") != NULL);
    EXPECT(strstr(c.out, "cpjku front end (the model's)") != NULL);
    EXPECT(strstr(c.out, "A-weighted dB, then mel") != NULL);
    EXPECT(strstr(c.out, "{") == NULL); /* no raw JSON */
    EXPECT(strstr(c.out, "*m cpjku") != NULL); /* the session's and the model's */
}

/* The binary's own errors: --script without a file, a script that cannot be opened (with
 * the reason), and FILE:LINE: in front of a failing script line. */
static void test_script_errors_name_file_and_line(void)
{
    const char *bin = getenv("BASIN_BIN");
    if (!bin) return;
    const char *script = test_path("lines.basin");
    FILE *f = fopen(script, "w");
    REQUIRE(f);
    fputs("# first\nnew cpresnet width=8\n\nbogus\ninfo 1 2 3\n", f);
    fclose(f);
    char cmd[2048];
    char buf[4096], want[1024];
    snprintf(cmd, sizeof cmd, "'%s' --script '%s' 2>&1 > /dev/null", bin, script);
    EXPECT_EQ_INT(shell_output(cmd, buf, sizeof buf), 1);
    snprintf(want, sizeof want, "%s:4: error: unknown command 'bogus'", script);
    EXPECT_MSG(strstr(buf, want) != NULL, "missing '%s' in: %s", want, buf);
    snprintf(want, sizeof want, "%s:5: error: info: ", script);
    EXPECT_MSG(strstr(buf, want) != NULL, "missing '%s' in: %s", want, buf);
    snprintf(cmd, sizeof cmd, "printf 'new cpresnet width=8\\nnope\\n' | '%s' 2>&1 >/dev/null", bin);
    EXPECT_EQ_INT(shell_output(cmd, buf, sizeof buf), 1);
    EXPECT_MSG(strstr(buf, "stdin:2: error: unknown command 'nope'") != NULL, "got: %s", buf);
    snprintf(cmd, sizeof cmd, "'%s' --script 2>&1", bin);
    EXPECT_EQ_INT(shell_output(cmd, buf, sizeof buf), 2);
    EXPECT_MSG(strstr(buf, "--script needs a FILE") != NULL, "got: %s", buf);
    snprintf(cmd, sizeof cmd, "'%s' --script /nonexistent/x.basin 2>&1", bin);
    EXPECT_EQ_INT(shell_output(cmd, buf, sizeof buf), 2);
    EXPECT_MSG(strstr(buf, "/nonexistent/x.basin: No such file or directory") != NULL, "got: %s", buf);
}

/* SIGKILL at random moments of repeated saves: the target is always a whole model, and
 * the next save removes the temporaries the killed processes left. */
static void test_kill9_during_save_leaves_nothing(void)
{
    const char *bin = getenv("BASIN_BIN");
    if (!bin) return;
    char script[600], model[600], dir[600];
    snprintf(script, sizeof script, "%s", test_path("saves.basin"));
    snprintf(model, sizeof model, "%s", test_path("k9/model.safetensors"));
    snprintf(dir, sizeof dir, "%s", test_path("k9"));
    mkdir(dir, 0777);
    FILE *f = fopen(script, "w");
    REQUIRE(f);
    fprintf(f, "new cnn10\n");
    for (int i = 0; i < 200; i++) fprintf(f, "save %s\n", model);
    fclose(f);
    unsigned seed = 12345;
    int left = 0;
    for (int round = 0; round < 12; round++) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1), dup2(null, 2);
            execl(bin, "basin", "--script", script, (char *)NULL);
            _exit(127);
        }
        seed = seed * 1103515245u + 12345u;
        usleep(150 * 1000 + (seed >> 8) % (400 * 1000));
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        DIR *d = opendir(dir);
        REQUIRE(d);
        for (struct dirent *e; (e = readdir(d));) left += strstr(e->d_name, ".tmp-") != NULL;
        closedir(d);
    }
    EXPECT_MSG(left > 0, "no kill landed inside a save: the test proves nothing");
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof cmd, "printf 'load %s\\nsave %s\\n' | '%s' 2>&1", model, model, bin);
    int rc = shell_output(cmd, out, sizeof out);
    EXPECT_MSG(rc == 0, "load and save after the kills: %s", out); /* never torn */
    DIR *d = opendir(dir);
    REQUIRE(d);
    int files = 0, temps = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        files++;
        temps += strstr(e->d_name, ".tmp-") != NULL;
    }
    closedir(d);
    EXPECT_EQ_INT(temps, 0);
    EXPECT_EQ_INT(files, 1);
}

/* The README's first session, pasted line by line as it stands, runs without an error in
 * an empty scratch folder (its assets/ paths name the files shipped with basin). */
static void test_readme_first_session(void)
{
    const char *bin = getenv("BASIN_BIN");
    FILE *f = fopen("README.md", "r");
    if (!bin || !f) {
        if (f) fclose(f);
        printf("  (README.md or BASIN_BIN missing: skipped)\n");
        return;
    }
    char line[1024], script[600], dir[600];
    snprintf(script, sizeof script, "%s", test_path("readme.basin"));
    snprintf(dir, sizeof dir, "%s", test_path("readme"));
    mkdir(dir, 0777);
    FILE *out = fopen(script, "w");
    REQUIRE(out);
    int in_session = 0, n = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "A first session")) in_session = 1;
        else if (in_session && !strncmp(line, "basin> ", 7)) fputs(line + 7, out), n++;
        else if (in_session && n && !strncmp(line, "```", 3)) break;
    }
    fclose(f);
    fclose(out);
    EXPECT_MSG(n >= 5, "found %d command lines in the README's first session", n);
    char cmd[4096], buf[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && XDG_CACHE_HOME='%s' '%s' --script '%s' 2>&1", dir,
             test_path("cache-readme"), bin, script);
    int rc = shell_output(cmd, buf, sizeof buf);
    EXPECT_MSG(rc == 0 && !strstr(buf, "error"), "the README's session failed (%d): %s", rc, buf);
    EXPECT(strstr(buf, "227,316 parameters") != NULL);
}

/* With no model, predict, eval and info use the shipped default model and say so; it
 * classifies the shipped demo clips (recorded by a seen and an unseen device). save does
 * not: it saves only what the session made. */
static void test_default_model(void)
{
    const char *bin = getenv("BASIN_BIN");
    if (!bin || access("assets/default-model.safetensors", R_OK)) {
        printf("  (no assets/default-model.safetensors: skipped; make assets makes it)\n");
        return;
    }
    char cmd[2048], buf[32768]; /* the info table alone is 6 KiB */
    snprintf(cmd, sizeof cmd,
             "printf 'save %s\\npredict assets/park.wav top=1\\npredict assets/street-traffic-s5.wav top=1\\n"
             "predict assets/metro-station-b.wav top=1\\ninfo 64 251\\n' | '%s' 2>&1",
             test_path("nothing.safetensors"), bin);
    EXPECT_EQ_INT(shell_output(cmd, buf, sizeof buf), 1); /* the save */
    EXPECT_MSG(strstr(buf, "stdin:1: error: save: no model") != NULL, "got: %s", buf);
    EXPECT_MSG(strstr(buf, "(no model: using the default model ") != NULL, "got: %s", buf);
    EXPECT(strstr(buf, "1. park ") && strstr(buf, "1. street_traffic ") && strstr(buf, "1. metro_station "));
    EXPECT(strstr(buf, "total: 15,372 parameters") != NULL);
}

const struct test tests_cli[] = {
    TEST(test_default_model),
    TEST_HEAVY(test_readme_first_session),
    TEST(test_comments_and_home_folder),
    TEST(test_argument_errors),
    TEST(test_variables),
    TEST(test_messages),
    TEST(test_script_errors_name_file_and_line),
    TEST_HEAVY(test_kill9_during_save_leaves_nothing),
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
