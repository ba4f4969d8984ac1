/* cmd_session.c: session save / load / list: a session folder holds what brings a session
 * back without recomputing (state.json, the model, results) and the commands that made it
 * (commands.log, replayable with basin --script).
 *
 *   sessions/NAME/commands.log      "# ..." header lines, then one command a line
 *   sessions/NAME/state.json        {"format": 1, "basin": version, settings, what to reload}
 *   sessions/NAME/model.safetensors the session's model (when it has one)
 *   sessions/NAME/eval.safetensors  the last evaluation: probs (N, M), labels, devices (I32)
 *   sessions/NAME/trainlog.tsv, epochs.tsv   the last training run's logs
 *   sessions/NAME/results/          copies of the files the commands wrote (CSV tables,
 *                                   saved directions, PNG figures), listed in state.json;
 *                                   the last landscape is shown again from its CSV on load
 *
 * A folder is written beside its target and renamed into place, so a saved session is never
 * half written. A newer format is refused with a message saying so.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "basin/core/fs.h"
#include "basin/core/json.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/data/dataset.h"
#include "basin/model/model.h"
#include "basin/model/safetensors.h"
#include "basin/train/eval.h"
#include "commands.h"
#include "views.h"

#define SESSION_FORMAT 1
#define SESSION_VERSION "0.2.0"

static int session_dir(const char *name, char *buf, size_t n)
{
    int k = strchr(name, '/') ? snprintf(buf, n, "%s", name) : snprintf(buf, n, "sessions/%s", name);
    if (k <= 0 || (size_t)k >= n) return status_set(STATUS_INVALID, "%s: name too long", name);
    size_t len = strlen(buf);
    while (len > 1 && buf[len - 1] == '/') buf[--len] = 0;
    return STATUS_OK;
}

/* Copy the file src to dst (a plain copy; dst is inside a folder being written). */
static int copy_file(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb");
    if (!in) return status_set(STATUS_IO, "%s: %s", src, strerror(errno));
    FILE *out = fopen(dst, "wb");
    if (!out) {
        fclose(in);
        return status_set(STATUS_IO, "%s: %s", dst, strerror(errno));
    }
    char buf[65536];
    size_t k;
    int bad = 0;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0) bad |= fwrite(buf, 1, k, out) != k;
    bad |= ferror(in);
    fclose(in);
    bad |= fclose(out) != 0;
    return bad ? status_set(STATUS_IO, "%s: copy failed", dst) : STATUS_OK;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return status_set(STATUS_IO, "%s: %s", path, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    return bad ? status_set(STATUS_IO, "%s: write failed", path) : STATUS_OK;
}

static int save_eval(const struct app *a, const char *path)
{
    const struct eval_result *r = a->views.eval;
    int *lab = calloc((size_t)r->n + 1, sizeof *lab), *dev = calloc((size_t)r->n + 1, sizeof *dev);
    struct st_writer *w = st_writer_create();
    int s = lab && dev && w ? STATUS_OK : STATUS_NOMEM;
    for (int i = 0; !s && i < r->n; i++) lab[i] = r->labels[i], dev[i] = r->devices ? r->devices[i] : 0;
    int64_t shape_p[2] = {r->n, r->n_classes}, shape_n[1] = {r->n};
    if (!s) s = st_writer_add(w, "probs", ST_F32, 2, shape_p, r->probs);
    if (!s) s = st_writer_add(w, "labels", ST_I32, 1, shape_n, lab);
    if (!s && r->devices) s = st_writer_add(w, "devices", ST_I32, 1, shape_n, dev);
    if (!s) s = st_writer_meta(w, "basin.format", "1");
    if (!s) s = st_writer_meta(w, "basin.title", a->views.eval_title);
    if (!s) s = st_writer_write(w, path);
    st_writer_destroy(w);
    free(lab), free(dev);
    return s;
}

static int session_save(struct app *a, const char *name)
{
    char dir[FS_PATH_MAX], tmp[FS_PATH_MAX + 64], path[FS_PATH_MAX + 128], cwd[2048] = "";
    int s = session_dir(name, dir, sizeof dir);
    if (!s) s = fs_mkdir_parent(dir);
    if (!s) s = fs_temp_dir(dir, tmp, sizeof tmp);
    if (s) return app_fail(a, s, "%s", status_detail());
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M", localtime(&now));
    /* commands.log: a header of comments, the thread count, then the commands */
    struct strbuf log = {0};
    strbuf_printf(&log, "# basin session (format %d), basin %s, %s\n", SESSION_FORMAT, SESSION_VERSION, date);
    strbuf_printf(&log, "# replay from %s: basin --script %s/commands.log\n", cwd, dir);
    strbuf_printf(&log, "set threads=%d\n", a->start_threads);
    if (a->log.p) strbuf_puts(&log, a->log.p);
    snprintf(path, sizeof path, "%s/commands.log", tmp);
    s = log.failed ? STATUS_NOMEM : write_text(path, log.p);
    strbuf_fini(&log);
    /* the model and the results */
    if (!s && a->model) {
        snprintf(path, sizeof path, "%s/model.safetensors", tmp);
        s = model_save(a->model, path, 0, NULL);
    }
    if (!s && a->views.eval) {
        snprintf(path, sizeof path, "%s/eval.safetensors", tmp);
        s = save_eval(a, path);
    }
    static const char *const logs[] = {"trainlog.tsv", "epochs.tsv"};
    int have_logs = 0;
    for (int i = 0; !s && a->run_dir[0] && i < 2; i++) {
        char src[FS_PATH_MAX];
        snprintf(src, sizeof src, "%.2000s/%s", a->run_dir, logs[i]);
        if (access(src, R_OK)) continue;
        snprintf(path, sizeof path, "%s/%s", tmp, logs[i]);
        s = copy_file(src, path);
        have_logs++;
    }
    /* the files the session's commands wrote, under results/ (a name taken twice gets a
     * number in front) */
    const char *files[APP_RESULTS_MAX];
    char names[APP_RESULTS_MAX][300];
    int n_files = 0;
    if (!s && a->n_results) {
        snprintf(path, sizeof path, "%s/results", tmp);
        if (mkdir(path, 0777)) s = status_set(STATUS_IO, "%s: %s", path, strerror(errno));
    }
    for (int i = 0; !s && i < a->n_results; i++) {
        if (access(a->results[i], R_OK)) continue;   /* removed since */
        const char *base = strrchr(a->results[i], '/');
        base = base ? base + 1 : a->results[i];
        snprintf(names[n_files], sizeof names[0], "results/%.200s", base);
        for (int k = 0; k < n_files; k++)
            if (!strcmp(names[k], names[n_files])) snprintf(names[n_files], sizeof names[0], "results/%d-%.200s", i, base);
        snprintf(path, sizeof path, "%s/%s", tmp, names[n_files]);
        s = copy_file(a->results[i], path);
        files[n_files] = names[n_files];
        n_files++;
    }
    /* state.json */
    struct json *st = json_create_object(), *res = json_create_object();
    char *fe = NULL, *text = NULL;
    if (!st || !res) s = s ? s : STATUS_NOMEM;
    if (!s) s = json_set_int(st, "format", SESSION_FORMAT);
    if (!s) s = json_set_string(st, "basin", SESSION_VERSION);
    if (!s) s = json_set_string(st, "cwd", cwd);
    if (!s) s = json_set_int(st, "threads", threads_get());
    if (!s) s = json_set_int(st, "seed", (int64_t)(a->seed & 0x7fffffffffffffffULL));
    if (!s) s = frontend_params_to_json(&a->preset, &fe);
    if (!s) s = json_set_string(st, "preset", fe);
    if (!s) s = json_set_bool(st, "preset_chosen", a->preset_chosen);
    if (!s && a->model) s = json_set_string(st, "model", "model.safetensors");
    if (!s && a->model) s = json_set_string(st, "model_name", a->model_name);
    if (!s && a->ds && a->data_line[0]) s = json_set_string(st, "data", a->data_line);
    if (!s && a->clip.x) s = json_set_string(st, "clip", a->clip_path);
    if (!s) s = json_set_string(st, "view", view_name((enum view_kind)a->views.current));
    if (!s && a->views.eval) s = json_set_string(res, "eval", "eval.safetensors");
    if (!s && have_logs) s = json_set_string(res, "trainlog", "trainlog.tsv");
    if (!s && n_files) s = json_set_strings(res, "files", files, n_files);
    if (!s) s = json_set_value(st, "results", res), res = NULL;
    if (!s) s = json_dump(st, &text);
    if (!s) {
        snprintf(path, sizeof path, "%s/state.json", tmp);
        s = write_text(path, text);
    }
    json_destroy(st);
    json_destroy(res);
    mem_free(fe);
    mem_free(text);
    /* into place: an older session of that name is replaced whole */
    if (!s) {
        char old[FS_PATH_MAX + 64];
        snprintf(old, sizeof old, "%s.old-%ld", dir, (long)getpid());
        struct stat sb;
        int had = stat(dir, &sb) == 0;
        if (had && rename(dir, old) != 0) s = status_set(STATUS_IO, "%s: %s", dir, strerror(errno));
        if (!s && rename(tmp, dir) != 0) {
            s = status_set(STATUS_IO, "%s: %s", dir, strerror(errno));
            if (had) rename(old, dir);
        }
        if (!s && had) fs_remove_tree(old);
        if (!s) fs_sync_parent(dir);
    }
    if (s) {
        fs_remove_tree(tmp);
        return app_fail(a, s, "%s", status_detail());
    }
    app_out(a, "saved the session in %s: commands.log (%s), state.json%s%s%s", dir,
            a->log.n ? "replayable" : "no commands yet", a->model ? ", model.safetensors" : "",
            a->views.eval ? ", eval.safetensors" : "", have_logs ? ", the training logs" : "");
    if (n_files) app_out(a, ", %d result file%s in results/", n_files, n_files > 1 ? "s" : "");
    app_out(a, "\n");
    return STATUS_OK;
}

/* Read a whole small file into a new string (free). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&buf, &n);
    char chunk[4096];
    size_t k;
    while (m && (k = fread(chunk, 1, sizeof chunk, f)) > 0) fwrite(chunk, 1, k, m);
    fclose(f);
    if (m) fclose(m);
    return buf;
}

/* Training curves back from the run's logs. */
static void load_curves(struct app *a, const char *dir)
{
    char path[FS_PATH_MAX + 64], line[1024];
    snprintf(path, sizeof path, "%s/trainlog.tsv", dir);
    FILE *f = fopen(path, "r");
    if (!f || !a->curves) {
        if (f) fclose(f);
        return;
    }
    int steps_per_epoch = 0, n_epochs = 0;
    snprintf(path, sizeof path, "%s/epochs.tsv", dir);
    FILE *e = fopen(path, "r");
    /* epochs first: the run's length */
    double ep[16];
    int have_e = 0;
    struct {
        double train_loss, train_acc, eval_loss, eval_acc;
    } rows[4096];
    while (e && fgets(line, sizeof line, e)) {
        if (!have_e++) continue; /* the header */
        char *save = NULL, *tok = strtok_r(line, "\t\n", &save);
        int k = 0;
        while (tok && k < 16) ep[k++] = strtod(tok, NULL), tok = strtok_r(NULL, "\t\n", &save);
        if (k >= 7 && n_epochs < 4096) {
            rows[n_epochs].train_loss = ep[3], rows[n_epochs].train_acc = ep[4];
            rows[n_epochs].eval_loss = ep[5], rows[n_epochs].eval_acc = ep[6];
            n_epochs++;
        }
    }
    if (e) fclose(e);
    /* steps: step epoch batch lr loss acc ... */
    struct step {
        double epoch, batch, loss, acc;
    } *st = NULL;
    int n_st = 0, cap = 0, head = 0;
    while (fgets(line, sizeof line, f)) {
        if (!head++) continue;
        double v[9];
        char *save = NULL, *tok = strtok_r(line, "\t\n", &save);
        int k = 0;
        while (tok && k < 9) v[k++] = strtod(tok, NULL), tok = strtok_r(NULL, "\t\n", &save);
        if (k < 6) continue;
        if (n_st == cap) {
            cap = cap ? 2 * cap : 1024;
            struct step *p = realloc(st, sizeof *st * (size_t)cap);
            if (!p) break;
            st = p;
        }
        st[n_st++] = (struct step){v[1], v[2], v[4], v[5]};
        if ((int)v[2] > steps_per_epoch) steps_per_epoch = (int)v[2];
    }
    fclose(f);
    curves_reset(a->curves, dir, n_epochs > 0 ? n_epochs : 1, steps_per_epoch);
    for (int i = 0; i < n_st; i++)
        curves_add_step(a->curves, st[i].epoch - 1 + st[i].batch / (steps_per_epoch ? steps_per_epoch : 1), st[i].loss,
                        st[i].acc);
    for (int i = 0; i < n_epochs; i++)
        curves_add_epoch(a->curves, i + 1, rows[i].train_loss, rows[i].train_acc, rows[i].eval_loss, rows[i].eval_acc);
    free(st);
}

static int load_eval(struct app *a, const char *path)
{
    if (!a->ds) return status_set(STATUS_INVALID, "%s: the evaluation needs its data set", path);
    struct st_file *f;
    int s = st_load(path, &f);
    if (s) return s;
    const struct st_tensor *p = st_find(f, "probs"), *l = st_find(f, "labels"), *d = st_find(f, "devices");
    if (!p || !l || p->n_dims != 2 || l->n_dims != 1 || l->shape[0] != p->shape[0] ||
        p->shape[1] != dataset_n_classes(a->ds)) {
        st_destroy(f);
        return status_set(STATUS_FORMAT, "%s: not an evaluation of this data set", path);
    }
    int n = (int)p->shape[0], M = (int)p->shape[1];
    float *probs = malloc(sizeof *probs * (size_t)n * M + 1);
    int32_t *lab = malloc(sizeof *lab * (size_t)n + 1), *dev = d ? malloc(sizeof *dev * (size_t)n + 1) : NULL;
    int *li = malloc(sizeof *li * (size_t)n + 1), *di = d ? malloc(sizeof *di * (size_t)n + 1) : NULL;
    s = probs && lab && li && (!d || (dev && di)) ? STATUS_OK : STATUS_NOMEM;
    if (!s) s = st_to_f32(p, probs);
    if (!s) s = st_to_i32(l, lab);
    if (!s && d) s = st_to_i32(d, dev);
    for (int i = 0; !s && i < n; i++) {
        li[i] = lab[i];
        if (d) di[i] = dev[i];
        if (li[i] < 0 || li[i] >= M || (d && (di[i] < 0 || di[i] >= dataset_n_devices(a->ds))))
            s = status_set(STATUS_FORMAT, "%s: label or device out of range at clip %d", path, i);
    }
    struct eval_result *r = NULL;
    if (!s) s = eval_from_probs(&r, n, M, probs, li, d ? di : NULL, a->ds);
    if (!s) {
        const char *title = st_meta(f, "basin.title");
        app_set_eval(a, r, title ? title : "evaluation");
    }
    st_destroy(f);
    free(probs), free(lab), free(dev), free(li), free(di);
    return s;
}

/* An optional string of a JSON object (NULL when absent or not a string). */
static const char *opt_string(const struct json *o, const char *key)
{
    const char *v = NULL;
    if (json_find(o, key) && json_get_string(o, key, &v)) v = NULL;
    return v;
}

static int session_load(struct app *a, const char *name)
{
    char dir[FS_PATH_MAX], path[FS_PATH_MAX + 64];
    int s = session_dir(name, dir, sizeof dir);
    if (s) return app_fail(a, s, "%s", status_detail());
    snprintf(path, sizeof path, "%s/state.json", dir);
    char *text = slurp(path);
    if (!text) {
        struct stat sb;
        return app_fail(a, STATUS_NOT_FOUND, "%s: %s", dir,
                        stat(dir, &sb) ? "no such session (session list shows them)"
                                       : "not a basin session folder (no state.json)");
    }
    struct json *st;
    s = json_parse_max(text, path, 4096, &st);
    free(text);
    if (s) return app_fail(a, s, "%s", status_detail());
    int format = 0;
    if (json_get_int(st, "format", &format) || format < 1) {
        json_destroy(st);
        return app_fail(a, STATUS_FORMAT, "%s: no session format number: damaged or not a basin session", path);
    }
    if (format > SESSION_FORMAT) {
        const char *by = "a newer basin";
        json_get_string(st, "basin", &by);
        app_fail(a, STATUS_UNSUPPORTED, "%s: session format %d (written by basin %s) is newer than this basin "
                 "reads (%d, basin %s): update basin", dir, format, by, SESSION_FORMAT, SESSION_VERSION);
        json_destroy(st);
        return STATUS_UNSUPPORTED;
    }
    /* the model first: everything else refers to it */
    const char *model = opt_string(st, "model"), *model_name = opt_string(st, "model_name");
    const char *data = opt_string(st, "data"), *clip = opt_string(st, "clip"), *view = opt_string(st, "view");
    const char *preset = opt_string(st, "preset");
    struct model *m = NULL;
    if (model) {
        snprintf(path, sizeof path, "%s/%s", dir, model);
        if ((s = model_load(&m, path))) {
            json_destroy(st);
            return app_fail(a, s, "%s", status_detail());
        }
    }
    struct frontend_params fe = a->preset;
    if (preset && (s = frontend_params_from_json(&fe, preset, "state.json: preset"))) {
        model_destroy(m);
        json_destroy(st);
        return app_fail(a, s, "%s", status_detail());
    }
    /* from here on the session changes */
    int threads = 0, chosen = 0;
    int64_t seed = 1;
    if (!json_get_int(st, "threads", &threads) && threads > 0) threads_set(threads);
    if (!json_get_int64(st, "seed", &seed)) a->seed = (uint64_t)seed;
    if (json_find(st, "preset_chosen")) json_get_bool(st, "preset_chosen", &chosen);
    a->preset = fe, a->preset_chosen = chosen;
    if (m) {
        model_destroy(a->model);
        a->model = m;
        snprintf(a->model_name, sizeof a->model_name, "%.255s", model_name ? model_name : path);
    }
    int problems = 0;
    char line[4400];
    const char *saved = a->cmd;
    if (data) problems += app_run_line(a, data) != 0;
    if (clip) {
        snprintf(line, sizeof line, "clip '%s'", clip);
        problems += app_run_line(a, line) != 0;
    }
    a->cmd = saved;
    const struct json *res = json_find(st, "results");
    const char *ev = NULL;
    if (res && json_find(res, "eval") && !json_get_string(res, "eval", &ev)) {
        snprintf(path, sizeof path, "%s/%s", dir, ev);
        if (load_eval(a, path)) {
            app_fail(a, STATUS_FORMAT, "%s", status_detail());
            problems++;
        }
    }
    if (res && json_find(res, "trainlog")) load_curves(a, dir);
    const char *files[APP_RESULTS_MAX];
    int n_files = 0;
    if (res && json_find(res, "files") && json_get_strings(res, "files", files, APP_RESULTS_MAX, &n_files)) {
        app_fail(a, STATUS_FORMAT, "%s/state.json: results.files: %s", dir, status_detail());
        problems++, n_files = 0;
    }
    a->n_results = 0;
    for (int i = 0; i < n_files; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (strstr(files[i], "..") || access(path, R_OK)) {
            app_fail(a, STATUS_FORMAT, "%s: a result the session lists is missing", path);
            problems++;
            continue;
        }
        app_result_add(a, path);
    }
    /* the last landscape comes back from its CSV, every point read back, none recomputed */
    for (int i = a->n_results - 1; i >= 0 && a->model && a->ds; i--) {
        const char *base = strrchr(a->results[i], '/');
        base = base ? base + 1 : a->results[i];
        size_t n = strlen(base);
        if (n < 4 || strcmp(base + n - 4, ".csv") || strstr(base, "-dev-") || strstr(base, "-compare")) continue;
        /* a landscape's own CSV: its header, and a "# basin landscape " settings line (not a
         * trajectory's plane or a sharpness table) */
        char *csv = slurp(a->results[i]);
        int is_landscape = csv && !strncmp(csv, "ix,iy,alpha,beta,loss,acc\n", 26) && strstr(csv, "\n# basin landscape ");
        free(csv);
        if (!is_landscape) continue;
        snprintf(line, sizeof line, "landscape resume='%.1100s'", a->results[i]);
        problems += app_run_line(a, line) != 0;
        a->cmd = saved;
        break;
    }
    if (view && view_parse(view) >= 0) a->views.current = view_parse(view);
    /* the commands go on from where the saved session stopped */
    snprintf(path, sizeof path, "%s/commands.log", dir);
    char *cmds = slurp(path);
    strbuf_fini(&a->log);
    for (char *p = cmds, *nl; p && *p; p = nl ? nl + 1 : p + strlen(p)) {
        nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (*p != '#' && strncmp(p, "set threads=", 12)) strbuf_printf(&a->log, "%.*s\n", (int)n, p);
    }
    free(cmds);
    json_destroy(st);
    app_views_changed(a);
    app_out(a, "loaded the session %s%s%s%s\n", dir, a->model ? ": model " : "", a->model ? a->model_name : "",
            problems ? " (with the problems above)" : "");
    for (int i = 0; i < a->n_results; i++) app_out(a, "  result: %s\n", a->results[i]);
    return problems ? STATUS_INVALID : STATUS_OK;
}

static int session_list(struct app *a)
{
    DIR *d = opendir("sessions");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[FS_PATH_MAX];
        snprintf(path, sizeof path, "sessions/%.200s/state.json", e->d_name);
        if (access(path, R_OK)) continue;
        struct stat sb;
        char date[32] = "";
        if (!stat(path, &sb)) strftime(date, sizeof date, "%Y-%m-%d %H:%M", localtime(&sb.st_mtime));
        app_out(a, "  %-24s %s\n", e->d_name, date);
        n++;
    }
    if (d) closedir(d);
    if (!n) app_out(a, "no saved sessions in sessions/ (session save NAME makes one)\n");
    return STATUS_OK;
}

int cmd_session(struct app *a, int argc, char **argv)
{
    if (argc == 1 || (argc == 2 && !strcmp(argv[1], "list"))) return session_list(a);
    if (argc != 3 || (strcmp(argv[1], "save") && strcmp(argv[1], "load")))
        return app_fail(a, STATUS_INVALID, "usage: session save NAME | session load NAME | session list");
    return !strcmp(argv[1], "save") ? session_save(a, argv[2]) : session_load(a, argv[2]);
}
