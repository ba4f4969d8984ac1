/* cmd_model.c: new, load, save and info: making, reading, writing and describing models. */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "basin/core/graph.h"
#include "basin/core/status.h"
#include "basin/model/model.h"
#include "basin/model/predict.h"
#include "basin/model/prune.h"
#include "basin/model/safetensors.h"
#include "basin/train/pipeline.h"
#include "commands.h"
#include "render.h"
#include "session.h"

static void replace_model(struct app *a, struct model *m, const char *name)
{
    model_destroy(a->model);
    a->model = m;
    snprintf(a->model_name, sizeof a->model_name, "%s", name);
}

static void print_summary_line(struct app *a)
{
    char cfg[256], n[32];
    model_config_str(&a->model->cfg, cfg, sizeof cfg);
    app_out(a, "%s %s: %s parameters", arch_name(a->model->cfg.arch), cfg,
            fmt_count(n, sizeof n, graph_param_count(a->model->g)));
    if (a->model->g->masked)
        app_out(a, " (%s kept by the pruning masks)", fmt_count(n, sizeof n, prune_kept_params(a->model->g)));
    app_out(a, "\n");
}

int cmd_new(struct app *a, int argc, char **argv)
{
    if (argc < 2) return app_fail(a, STATUS_INVALID, "new: which architecture? (cpresnet, sepnet, cnn10)");
    enum arch arch;
    if (arch_parse(argv[1], &arch)) return app_fail(a, STATUS_INVALID, "new: %s", status_detail());
    struct model_config c;
    model_config_default(&c, arch);
    uint64_t seed = a->seed;
    const char *sparse = NULL;
    for (int i = 2; i < argc; i++) {
        char *v = arg_split(argv[i]);
        if (!v) return app_fail(a, STATUS_INVALID, "new: expected key=value, got '%s'", argv[i]);
        if (!strcmp(argv[i], "sparse")) {
            sparse = v;
            continue;
        }
        if (!strcmp(argv[i], "seed")) {
            long s;
            if (arg_int(a, "seed", v, 0, 0x7fffffffffffffffL, &s)) return STATUS_INVALID;
            seed = (uint64_t)s;
            continue;
        }
        if (model_config_set(&c, argv[i], v))
            return app_fail(a, STATUS_INVALID, "new: %s", status_detail());
    }
    /* The front end: the session's when the user chose one, else the paper's. sepnet and
     * cnn10 normalise a fixed number of mel bins, so mels follows the front end unless
     * given explicitly (then the front end follows mels). */
    struct frontend_params fe = a->preset;
    if (!a->preset_chosen) frontend_preset(&fe, session_arch_preset(arch));
    int mels_given = 0;
    for (int i = 2; i < argc; i++) mels_given |= !strcmp(argv[i], "mels");
    if (arch != ARCH_CPRESNET) {
        if (mels_given && c.mels != fe.n_mels) {
            fe.n_mels = c.mels;
            snprintf(fe.preset, sizeof fe.preset, "custom");
        } else {
            c.mels = fe.n_mels;
        }
    }
    struct model *m;
    int status = model_create_progress(&m, &c, seed, &a->progress);
    if (status) return app_fail(a, status, "new: %s", status_detail());
    if ((status = frontend_params_validate(&fe)) || (status = pipeline_set_model_frontend(m, &fe))) {
        model_destroy(m);
        return app_fail(a, status, "new: front end: %s", status_detail());
    }
    if (sparse) {
        /* a static random mask from the same seed (model/prune.h) */
        double params;
        if (arg_count(a, "new", "sparse", sparse, (double)graph_param_count(m->g), &params)) {
            model_destroy(m);
            return STATUS_INVALID;
        }
        if ((status = prune_random(m->g, (long)params, seed))) {
            model_destroy(m);
            return app_fail(a, status, "new: sparse=%s: %s", sparse, status_detail());
        }
    }
    char name[64];
    snprintf(name, sizeof name, "new %s", arch_name(arch));
    replace_model(a, m, name);
    print_summary_line(a);
    return STATUS_OK;
}

int cmd_load(struct app *a, int argc, char **argv)
{
    if (argc != 2) return app_fail(a, STATUS_INVALID, "usage: load PATH");
    struct model *m;
    int status = model_load_progress(&m, argv[1], &a->progress);
    if (status) return app_fail(a, status, "%s", status_detail());
    replace_model(a, m, argv[1]);
    app_out(a, "loaded %s\n", argv[1]);
    print_summary_line(a);
    return STATUS_OK;
}

int cmd_save(struct app *a, int argc, char **argv)
{
    if (argc < 2) return app_fail(a, STATUS_INVALID, "usage: save PATH [checkpoint=1]");
    if (!a->model) return app_fail(a, STATUS_INVALID, "save: no model (new or load one first)");
    long checkpoint = 0;
    for (int i = 2; i < argc; i++) {
        char *v = arg_split(argv[i]);
        if (!v || strcmp(argv[i], "checkpoint"))
            return app_fail(a, STATUS_INVALID, "save: unknown option '%s' (checkpoint=0|1)", argv[i]);
        if (arg_int(a, "checkpoint", v, 0, 1, &checkpoint)) return STATUS_INVALID;
    }
    int status = model_save(a->model, argv[1], (int)checkpoint, NULL);
    if (status) return app_fail(a, status, "%s", status_detail());
    app_out(a, "saved %s\n", argv[1]);
    return STATUS_OK;
}

int cmd_info(struct app *a, int argc, char **argv)
{
    if (app_need_model(a, "info")) return STATUS_INVALID;
    int f, t;
    struct frontend_params fe;
    if (!pipeline_model_frontend(a->model, &fe)) {
        f = fe.n_mels; /* 10 s of audio at the model's front end */
        t = (int)(1 + 10L * fe.sample_rate_hz / fe.hop);
    } else {
        model_default_input(a->model, &f, &t);
    }
    if (argc == 3) {
        long lf, lt;
        if (arg_int(a, "F", argv[1], 1, 100000, &lf) || arg_int(a, "T", argv[2], 1, 10000000, &lt))
            return STATUS_INVALID;
        f = (int)lf, t = (int)lt;
    } else if (argc != 1) {
        return app_fail(a, STATUS_INVALID, "usage: info [F T]");
    }
    const struct model *m = a->model;
    struct layer_row *rows = calloc((size_t)m->g->n_nodes, sizeof *rows);
    if (!rows) return app_fail(a, STATUS_NOMEM, "info: out of memory");
    struct model_summary s;
    int n, status = model_describe(m, f, t, rows, &n, &s);
    if (status) {
        free(rows);
        return app_fail(a, status, "info: %s", status_detail());
    }
    char cfg[256], b1[32], b2[32], b3[32], b4[32], b5[32], shape[32], rf[24];
    model_config_str(&m->cfg, cfg, sizeof cfg);
    app_out(a, "%s %s  (%s)\n", arch_name(m->cfg.arch), cfg, a->model_name);
    app_out(a, "input %d x %d x %d (channels x mel bins x frames)%s\n", m->cfg.in_ch, f, t,
            argc == 1 && m->frontend ? ": 10 s at the model's front end" : "");
    app_out(a, "%-24s %-7s %-14s %10s %8s %9s %9s %9s %9s  %s\n", "layer", "op", "output", "params",
            "MACs", "RF FxT", "fp32", "fp16", "int8", "detail");
    for (int i = 0; i < n; i++) {
        const struct layer_row *r = &rows[i];
        snprintf(shape, sizeof shape, "%dx%dx%d", r->c, r->f, r->t);
        snprintf(rf, sizeof rf, "%ldx%ld", r->rf[0], r->rf[1]);
        app_out(a, "%-24s %-7s %-14s %10s %8s %9s %9s %9s %9s  %s\n", r->name, r->op, shape,
                fmt_count(b1, sizeof b1, r->params), r->macs > 0 ? fmt_si(b2, sizeof b2, r->macs) : "-",
                rf, fmt_bytes(b3, sizeof b3, 4.0 * r->params), fmt_bytes(b4, sizeof b4, 2.0 * r->params),
                fmt_bytes(b5, sizeof b5, 1.0 * r->params), r->detail);
    }
    /* RF: the theoretical maximum of one unit (not clipped to the input); the total is that
     * of the map the global pooling head reads, and rows after the head see the whole
     * input (model.h, model_describe). */
    app_out(a, "total: %s parameters (+ %s BN statistics), %s MACs per clip, receptive field %ld x %ld "
            "(%s, before global pooling)\n",
            fmt_count(b1, sizeof b1, s.params), fmt_count(b2, sizeof b2, s.buffers),
            fmt_si(b3, sizeof b3, s.macs), s.rf[0], s.rf[1], s.rf_layer[0] ? s.rf_layer : "output");
    app_out(a, "size: fp32 %s, fp16 %s, int8 %s\n", fmt_bytes(b1, sizeof b1, s.bytes_fp32),
            fmt_bytes(b2, sizeof b2, s.bytes_fp16), fmt_bytes(b3, sizeof b3, s.bytes_int8));
    free(rows);
    return STATUS_OK;
}

/* forward IN OUT: the contract of basin_ref.py forward: IN holds 'x' (N, C, F, T); OUT gets
 * 'logits' (N, classes) computed in eval mode. */
int cmd_forward(struct app *a, int argc, char **argv)
{
    if (argc != 3) return app_fail(a, STATUS_INVALID, "usage: forward IN.safetensors OUT.safetensors");
    if (!a->model) return app_fail(a, STATUS_INVALID, "forward: no model (new or load one first)");
    struct st_file *f = NULL;
    float *x = NULL;
    int status = st_load(argv[1], &f);
    if (status) return app_fail(a, status, "%s", status_detail());
    const struct st_tensor *t = st_find(f, "x");
    if (!t || t->n_dims != 4 || t->numel == 0) {
        status = app_fail(a, STATUS_FORMAT, "%s: needs a tensor 'x' of shape (N, C, F, T)", argv[1]);
        goto done;
    }
    int n = (int)t->shape[0], c = (int)t->shape[1], fr = (int)t->shape[2], tt = (int)t->shape[3];
    if (!(x = malloc(t->numel * sizeof *x))) {
        status = app_fail(a, STATUS_NOMEM, "forward: out of memory");
        goto done;
    }
    if ((status = st_to_f32(t, x))) {
        status = app_fail(a, status, "%s", status_detail());
        goto done;
    }
    int classes = a->model->cfg.classes;
    float *logits = malloc((size_t)n * classes * sizeof *logits);
    if (!logits) {
        status = app_fail(a, STATUS_NOMEM, "forward: out of memory");
        goto done;
    }
    struct predictor *p = NULL;
    status = predictor_create(&p, a->model, n < 32 ? n : 32, c, fr, tt);
    if (!status) status = predictor_logits(p, n, x, logits, &a->progress);
    predictor_destroy(p);
    struct st_writer *w = status ? NULL : st_writer_create();
    if (!status && !w) status = STATUS_NOMEM;
    if (!status) status = st_writer_add_f32(w, "logits", 2, (int[]){n, classes}, logits);
    if (!status) status = st_writer_meta(w, "basin.format", "1");
    if (!status) status = st_writer_write(w, argv[2]);
    st_writer_destroy(w);
    free(logits);
    if (status) status = app_fail(a, status, "%s: %s", argv[1], status_detail());
    else app_out(a, "wrote logits (%d, %d) to %s\n", n, classes, argv[2]);
done:
    free(x);
    st_destroy(f);
    return status;
}
