/* model_io.c: models and checkpoints as .safetensors files (DESIGN.md section 3).
 *
 * The tensors are the graph's state dict under their PyTorch names; metadata carries
 * basin.format, basin.arch, basin.config (the constructor arguments of the matching module
 * in shared/peers/basin_ref.py), and basin.frontend / basin.labels / basin.norm when the
 * model has them. A checkpoint adds optim.<name>.m / .v and prune.<name>.mask; a pruned model
 * writes its masks in every file. Loading is
 * strict and checks everything before the model is handed out.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/log.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/core/tensor.h"
#include "basin/core/json.h"
#include "basin/model/model.h"
#include "basin/model/safetensors.h"

#define MODEL_FORMAT "1"

/* basin.config as basin_ref's constructors take it. */
static int config_json(const struct model_config *c, char **out)
{
    struct json *o = json_create_object();
    if (!o) return STATUS_NOMEM;
    int s = 0;
    switch (c->arch) {
    case ARCH_CPRESNET:
        s |= json_set_int(o, "width", c->width);
        s |= json_set_int(o, "rho", c->rho);
        s |= json_set_double(o, "damping", c->damping);
        s |= json_set_int(o, "groups", c->groups);
        s |= json_set_int(o, "roll", c->roll);
        s |= json_set_ints(o, "blocks", c->blocks, 3);
        {
            /* structured pruning's widths, only when set: other files stay as they were */
            int custom = 0;
            for (int i = 0; i < 3; i++) custom |= c->stages[i] != 0;
            for (int i = 0; i < 12; i++) custom |= c->inner[i] != 0;
            if (custom) {
                s |= json_set_ints(o, "stages", c->stages, 3);
                s |= json_set_ints(o, "inner", c->inner, 12);
            }
        }
        break;
    case ARCH_SEPNET:
        s |= json_set_ints(o, "channels", c->channels, c->n_channels);
        s |= json_set_int(o, "mels", c->mels);
        break;
    default:
        s |= json_set_double(o, "width", c->width_mult);
        s |= json_set_int(o, "mels", c->mels);
        break;
    }
    s |= json_set_int(o, "in_ch", c->in_ch);
    s |= json_set_int(o, "classes", c->classes);
    if (!s) s = json_dump(o, out);
    json_destroy(o);
    return s ? STATUS_NOMEM : STATUS_OK;
}

static int labels_json(const struct model *m, char **out)
{
    struct json *a = json_create_array();
    if (!a) return STATUS_NOMEM;
    int s = 0;
    for (int i = 0; i < m->n_labels && !s; i++) s = json_push_string(a, m->labels[i]);
    if (!s) s = json_dump(a, out);
    json_destroy(a);
    return s;
}

static int norm_json(const struct model *m, char **out)
{
    struct json *o = json_create_object();
    if (!o) return STATUS_NOMEM;
    int s = json_set_floats(o, "mean", m->norm_mean, m->n_norm);
    if (!s) s = json_set_floats(o, "std", m->norm_std, m->n_norm);
    if (!s) s = json_dump(o, out);
    json_destroy(o);
    return s;
}

/* basin.quant: {"act_scale": {"<conv or linear>": s, ...}}, the int8 activation scales
 * (model/compress.h); written only when the model has some. */
static int quant_json(const struct graph *g, char **out)
{
    struct json *o = json_create_object(), *sc = json_create_object();
    int s = o && sc ? 0 : STATUS_NOMEM;
    for (int i = 0; i < g->n_nodes && !s; i++)
        if (g->nodes[i].act_scale > 0) s = json_set_double(sc, g->nodes[i].name, g->nodes[i].act_scale);
    if (!s) s = json_set_string(o, "scheme", "int8 per-tensor symmetric: clamp(round(x / s), -127, 127) * s");
    if (!s) {
        s = json_set_value(o, "act_scale", sc);
        sc = NULL;
    }
    if (!s) s = json_dump(o, out);
    json_destroy(sc);
    json_destroy(o);
    return s;
}

int model_save(const struct model *m, const char *path, int checkpoint,
               const char *const *extra_meta)
{
    const struct graph *g = m->g;
    struct st_writer *w = st_writer_create();
    char *cfg = NULL, *labels = NULL, *norm = NULL, *quant = NULL;
    char (*names)[96] = NULL;
    float *zeros = NULL;
    int status = STATUS_NOMEM;
    if (!w) goto done;
    if ((status = config_json(&m->cfg, &cfg))) goto done;
    if (m->n_labels && (status = labels_json(m, &labels))) goto done;
    if (m->n_norm && (status = norm_json(m, &norm))) goto done;
    if (g->act_quant && (status = quant_json(g, &quant))) goto done;
    status = st_writer_meta(w, "basin.format", MODEL_FORMAT);
    if (!status) status = st_writer_meta(w, "basin.arch", arch_name(m->cfg.arch));
    if (!status) status = st_writer_meta(w, "basin.config", cfg);
    if (!status && m->frontend) status = st_writer_meta(w, "basin.frontend", m->frontend);
    if (!status && m->input) status = st_writer_meta(w, "basin.input", m->input);
    if (!status && labels) status = st_writer_meta(w, "basin.labels", labels);
    if (!status && norm) status = st_writer_meta(w, "basin.norm", norm);
    if (!status && quant) status = st_writer_meta(w, "basin.quant", quant);
    for (int i = 0; extra_meta && extra_meta[i] && !status; i += 2)
        status = st_writer_meta(w, extra_meta[i], extra_meta[i + 1]);
    if (status) goto done;
    names = mem_calloc((size_t)g->n_tensors * 3 + 1, sizeof *names);
    if (!names) {
        status = STATUS_NOMEM;
        goto done;
    }
    /* A model that never trained has no moments yet: they are zero, written from one
     * buffer of the largest tensor's size (the writer borrows it until the write). */
    const float *mom_m = g->store.m, *mom_v = g->store.v;
    if (checkpoint && (!mom_m || !mom_v)) {
        long largest = 1;
        for (int i = 0; i < g->n_tensors; i++)
            if (g->tensors[i].numel > largest) largest = g->tensors[i].numel;
        if (!(zeros = mem_calloc((size_t)largest, sizeof *zeros))) {
            status = STATUS_NOMEM;
            goto done;
        }
    }
    int k = 0;
    for (int i = 0; i < g->n_tensors && !status; i++) {
        const struct graph_tensor *t = &g->tensors[i];
        status = st_writer_add_f32(w, t->name, t->n_dims, t->shape, graph_tensor_data(g, i));
        if (g->masked && !checkpoint && t->kind == TENSOR_WEIGHT && !status) {
            /* a pruned model keeps its masks in every file, so it loads pruned */
            snprintf(names[k], sizeof names[k], "prune.%s.mask", t->name);
            status = st_writer_add_f32(w, names[k++], t->n_dims, t->shape, g->store.mask + t->offset);
        }
        if (!checkpoint || !tensor_kind_is_param(t->kind) || status) continue;
        snprintf(names[k], sizeof names[k], "optim.%s.m", t->name);
        status = st_writer_add_f32(w, names[k++], t->n_dims, t->shape,
                                   mom_m ? mom_m + t->offset : zeros);
        snprintf(names[k], sizeof names[k], "optim.%s.v", t->name);
        if (!status)
            status = st_writer_add_f32(w, names[k++], t->n_dims, t->shape,
                                       mom_v ? mom_v + t->offset : zeros);
        if (t->kind != TENSOR_WEIGHT || status) continue;
        snprintf(names[k], sizeof names[k], "prune.%s.mask", t->name);
        status = st_writer_add_f32(w, names[k++], t->n_dims, t->shape, g->store.mask + t->offset);
    }
    if (!status) status = st_writer_write(w, path);
done:
    st_writer_destroy(w);
    mem_free(cfg);
    mem_free(labels);
    mem_free(norm);
    mem_free(quant);
    mem_free(names);
    mem_free(zeros);
    return status;
}

/* ----------------------------------------------------------------------------- loading */

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* What a metadata value may hold, in JSON values, so untrusted text is refused before it
 * is parsed (a parsed value costs ~100 bytes; "[0,0,...]" is 2 bytes a value). */
#define CONFIG_MAX_VALUES 256       /* a dozen keys, channels lists of 8 */
#define FRONTEND_MAX_VALUES 1024    /* a flat object of a few dozen parameters */
#define NORM_MAX_BINS 65536         /* per-bin statistics: far above any front end's bins */

static int config_from_json(const char *path, const char *text, enum arch arch,
                            struct model_config *c)
{
    struct json *root;
    char label[600];
    snprintf(label, sizeof label, "%s: basin.config", path);
    int s = json_parse_max(text, label, CONFIG_MAX_VALUES, &root);
    if (s) return s;
    model_config_default(c, arch);
    if (json_kind_of(root) != JSON_KIND_OBJECT) {
        json_destroy(root);
        return status_set(STATUS_FORMAT, "%s: basin.config is not a JSON object", path);
    }
    for (int i = 0; i < json_len(root) && !s; i++) {
        const char *key = json_key_at(root, i);
        const struct json *v = json_at(root, i);
        int n;
        if (!strcmp(key, "in_ch")) s = json_to_int(v, &c->in_ch);
        else if (!strcmp(key, "classes")) s = json_to_int(v, &c->classes);
        else if (!strcmp(key, "mels") && arch != ARCH_CPRESNET) s = json_to_int(v, &c->mels);
        else if (!strcmp(key, "width") && arch == ARCH_CNN10) s = json_to_double(v, &c->width_mult);
        else if (!strcmp(key, "width") && arch == ARCH_CPRESNET) s = json_to_int(v, &c->width);
        else if (!strcmp(key, "rho") && arch == ARCH_CPRESNET) s = json_to_int(v, &c->rho);
        else if (!strcmp(key, "damping") && arch == ARCH_CPRESNET) s = json_to_double(v, &c->damping);
        else if (!strcmp(key, "groups") && arch == ARCH_CPRESNET) s = json_to_int(v, &c->groups);
        else if (!strcmp(key, "roll") && arch == ARCH_CPRESNET) s = json_to_int(v, &c->roll);
        else if (!strcmp(key, "blocks") && arch == ARCH_CPRESNET) {
            s = json_to_ints(v, c->blocks, 3, &n);
            if (!s && n != 3) s = status_set(STATUS_FORMAT, "%s: blocks has %d counts, not 3", label, n);
        } else if (!strcmp(key, "stages") && arch == ARCH_CPRESNET) {
            s = json_to_ints(v, c->stages, 3, &n);
            if (!s && n != 3) s = status_set(STATUS_FORMAT, "%s: stages has %d widths, not 3", label, n);
        } else if (!strcmp(key, "inner") && arch == ARCH_CPRESNET) {
            s = json_to_ints(v, c->inner, 12, &n);
            if (!s && n != 12) s = status_set(STATUS_FORMAT, "%s: inner has %d widths, not 12", label, n);
        } else if (!strcmp(key, "channels") && arch == ARCH_SEPNET)
            s = json_to_ints(v, c->channels, MODEL_MAX_CHANNELS, &c->n_channels);
        else
            log_warn("%s: ignoring unknown %s option '%s'", path, arch_name(arch), key);
    }
    json_destroy(root);
    if (s) return s;
    if ((s = model_config_validate(c))) return status_prefix(s, "%s: basin.config", path);
    return STATUS_OK;
}

static int load_labels(struct model *m, const char *path, const char *text)
{
    struct json *root;
    char label[600];
    snprintf(label, sizeof label, "%s: basin.labels", path);
    /* Count before parsing: a list of the wrong length is refused without building it. */
    struct json_counts n_json;
    json_count(text, strlen(text), &n_json);
    const char *q = text + strspn(text, " \t\r\n");
    if (*q == '[' && n_json.top_len != m->cfg.classes)
        return status_set(STATUS_FORMAT, "%s: basin.labels must list %d class names (it lists %ld)",
                          path, m->cfg.classes, n_json.top_len);
    int s = json_parse_max(text, label, 1L + m->cfg.classes, &root);
    if (s) return s;
    int n = json_len(root);
    if (json_kind_of(root) != JSON_KIND_ARRAY || n != m->cfg.classes) {
        json_destroy(root);
        return status_set(STATUS_FORMAT, "%s: basin.labels must list %d class names", path,
                          m->cfg.classes);
    }
    m->labels = mem_calloc((size_t)n, sizeof *m->labels);
    if (!m->labels) s = STATUS_NOMEM;
    for (int i = 0; i < n && !s; i++) {
        const char *str;
        if ((s = json_to_string(json_at(root, i), &str))) break;
        if (!(m->labels[i] = mem_strdup(str))) s = STATUS_NOMEM;
        else m->n_labels = i + 1;
    }
    json_destroy(root);
    return s;
}

static int load_norm(struct model *m, const char *path, const char *text)
{
    struct json *root;
    char label[600];
    snprintf(label, sizeof label, "%s: basin.norm", path);
    int s = json_parse_max(text, label, 3 + 2L * NORM_MAX_BINS, &root);
    if (s) return s;
    const struct json *mean = json_find(root, "mean"), *std = json_find(root, "std");
    int n = mean ? json_len(mean) : 0;
    if (!mean || !std || n < 1 || json_len(std) != n) {
        json_destroy(root);
        return status_set(STATUS_FORMAT, "%s: basin.norm needs 'mean' and 'std' lists of equal length", path);
    }
    m->norm_mean = mem_alloc((size_t)n * sizeof(float));
    m->norm_std = mem_alloc((size_t)n * sizeof(float));
    int k;
    if (!m->norm_mean || !m->norm_std) s = STATUS_NOMEM;
    if (!s) s = json_to_floats(mean, m->norm_mean, n, &k);
    if (!s) s = json_to_floats(std, m->norm_std, n, &k);
    for (int i = 0; i < n && !s; i++)
        if (!(m->norm_std[i] > 0))
            s = status_set(STATUS_FORMAT, "%s: basin.norm std[%d] = %g is not positive", path, i, m->norm_std[i]);
    if (!s) m->n_norm = n;
    json_destroy(root);
    return s;
}

/* basin.quant (see quant_json) into the nodes' act_scale: each key a conv or linear of the
 * model, each scale a positive finite number. */
static int load_quant(struct graph *g, const char *path, const char *text)
{
    struct json *root;
    char label[600];
    snprintf(label, sizeof label, "%s: basin.quant", path);
    int s = json_parse_max(text, label, 4L + 2L * g->n_nodes, &root);
    if (s) return s;
    const struct json *sc = json_find(root, "act_scale");
    if (!sc || json_kind_of(sc) != JSON_KIND_OBJECT)
        s = status_set(STATUS_FORMAT, "%s: basin.quant needs an 'act_scale' object", path);
    for (int i = 0; !s && i < json_len(sc); i++) {
        const char *name = json_key_at(sc, i);
        int k = graph_find_node(g, name);
        float v;
        if (k < 0 || (g->nodes[k].op != OP_CONV2D && g->nodes[k].op != OP_LINEAR))
            s = status_set(STATUS_FORMAT, "%s: basin.quant: '%s' is not a conv or linear of this model", path, name);
        else if (json_to_float(json_at(sc, i), &v) || !(v > 0) || !isfinite(v))
            s = status_set(STATUS_FORMAT, "%s: basin.quant: the scale of '%s' is not a positive number", path, name);
        else
            g->nodes[k].act_scale = v, g->act_quant++;
    }
    json_destroy(root);
    return s;
}

/* The role of a file tensor: a parameter or buffer, or the optimiser moment or pruning
 * mask of one ("optim.<name>.m", "optim.<name>.v", "prune.<name>.mask"). */
enum role { ROLE_TENSOR, ROLE_M, ROLE_V, ROLE_MASK };

static const char *role_name(enum role r)
{
    return r == ROLE_M || r == ROLE_V ? "optimiser state" : r == ROLE_MASK ? "mask" : "tensor";
}

/* The graph tensor a file tensor belongs to, or -1 when it has none (unexpected); *role
 * receives its role. Returns -2 for tensors that are skipped (num_batches_tracked). */
static int match_tensor(const struct graph *g, const char *name, enum role *role)
{
    char base[96];
    if (has_suffix(name, ".num_batches_tracked")) return -2;
    *role = ROLE_TENSOR;
    if (!strncmp(name, "optim.", 6) && has_suffix(name, ".m")) *role = ROLE_M;
    else if (!strncmp(name, "optim.", 6) && has_suffix(name, ".v")) *role = ROLE_V;
    else if (!strncmp(name, "prune.", 6) && has_suffix(name, ".mask")) *role = ROLE_MASK;
    if (*role == ROLE_TENSOR) return graph_find_tensor(g, name);
    size_t len = strlen(name) - 6 - (*role == ROLE_MASK ? 5 : 2);
    if (len >= sizeof base) return -1;
    memcpy(base, name + 6, len);
    base[len] = 0;
    int k = graph_find_tensor(g, base);
    if (k < 0) return -1;
    if (*role != ROLE_MASK && !tensor_kind_is_param(g->tensors[k].kind)) return -1;
    if (*role == ROLE_MASK && g->tensors[k].kind != TENSOR_WEIGHT) return -1;
    return k;
}

/* Check a file tensor against its graph tensor: a floating-point dtype and the same
 * shape. One message naming the file and the tensor. */
static int check_tensor(const char *path, const struct st_tensor *t, const struct graph_tensor *gt,
                        enum role role)
{
    const char *what = role_name(role);
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16 && t->dtype != ST_F64)
        return status_set(STATUS_MISMATCH,
                          "%s: %s '%s' is %s, expected a floating-point dtype (F32, F16, BF16, F64)",
                          path, what, t->name, st_dtype_name(t->dtype));
    int ok = t->n_dims == gt->n_dims;
    for (int d = 0; ok && d < gt->n_dims; d++) ok = t->shape[d] == gt->shape[d];
    if (!ok) {
        char want[64], got[96] = "(";
        tensor_shape_str(want, sizeof want, gt->n_dims, gt->shape);
        for (int d = 0; d < t->n_dims; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), d ? ", %lld" : "%lld", (long long)t->shape[d]);
        snprintf(got + strlen(got), sizeof got - strlen(got), t->n_dims == 1 ? ",)" : ")");
        return status_set(STATUS_MISMATCH, "%s: %s '%s' has shape %s, the model needs %s", path,
                          what, t->name, got, want);
    }
    return STATUS_OK;
}

/* Every tensor of f against the layout g (not yet allocated): the model's tensors in the
 * graph's order (present, a float dtype, the same shape), then the file's other tensors
 * (optimiser state and masks of known tensors only). *moments is set when the file holds
 * optimiser state. */
static int check_file_tensors(const char *path, const struct st_file *f, const struct graph *g,
                              const struct model_config *cfg, int *moments)
{
    int s = STATUS_OK;
    *moments = 0;
    for (int k = 0; k < g->n_tensors && !s; k++) {
        const struct st_tensor *t = st_find(f, g->tensors[k].name);
        if (!t)
            s = status_set(STATUS_MISMATCH, "%s: tensor '%s' is missing (%s)", path,
                           g->tensors[k].name, arch_name(cfg->arch));
        else
            s = check_tensor(path, t, &g->tensors[k], ROLE_TENSOR);
    }
    for (int i = 0; i < st_count(f) && !s; i++) {
        const struct st_tensor *t = st_tensor_at(f, i);
        enum role role;
        int k = match_tensor(g, t->name, &role);
        if (k == -2 || (k >= 0 && role == ROLE_TENSOR)) continue;
        if (k < 0) {
            char cfgs[256];
            model_config_str(cfg, cfgs, sizeof cfgs);
            s = status_set(STATUS_MISMATCH, "%s: unexpected tensor '%s' for %s %s", path, t->name,
                           arch_name(cfg->arch), cfgs);
            break;
        }
        s = check_tensor(path, t, &g->tensors[k], role);
        if (role == ROLE_M || role == ROLE_V) *moments = 1;
    }
    return s;
}

int model_load_progress(struct model **out, const char *path, const struct progress *p)
{
    *out = NULL;
    struct st_file *f = NULL;
    struct model *m = NULL;
    struct graph *g = NULL;
    int s = st_load(path, &f);
    if (s) return s;
    const char *format = st_meta(f, "basin.format"), *arch_s = st_meta(f, "basin.arch");
    const char *cfg_s = st_meta(f, "basin.config");
    enum arch arch;
    struct model_config cfg;
    if (format && strcmp(format, MODEL_FORMAT)) {
        s = status_set(STATUS_UNSUPPORTED, "%s: basin.format '%s' (this basin reads '%s')", path,
                       format, MODEL_FORMAT);
        goto fail;
    }
    if (!arch_s || !cfg_s) {
        s = status_set(STATUS_FORMAT, "%s: not a basin model (no basin.arch / basin.config metadata; "
                       "PANNs or SP4ASC checkpoints need an importer)", path);
        goto fail;
    }
    if (arch_parse(arch_s, &arch)) {
        s = status_prefix(STATUS_FORMAT, "%s: basin.arch", path);
        goto fail;
    }
    if ((s = config_from_json(path, cfg_s, arch, &cfg))) goto fail;
    if (!(m = mem_calloc(1, sizeof *m))) {
        s = STATUS_NOMEM;
        goto fail;
    }
    m->cfg = cfg;

    /* Metadata first: it is cheap to check (counted before it is parsed). */
    const char *fe = st_meta(f, "basin.frontend"), *labels = st_meta(f, "basin.labels");
    const char *norm = st_meta(f, "basin.norm");
    if (fe) {
        struct json *probe;
        char label[600];
        snprintf(label, sizeof label, "%s: basin.frontend", path);
        if ((s = json_parse_max(fe, label, FRONTEND_MAX_VALUES, &probe))) goto fail;
        json_destroy(probe);
        if (!(m->frontend = mem_strdup(fe))) {
            s = STATUS_NOMEM;
            goto fail;
        }
    }
    const char *input = st_meta(f, "basin.input");
    if (input) {
        /* basin.input: a few numbers (train/predict.h interprets them) */
        struct json *probe;
        char label[600];
        snprintf(label, sizeof label, "%s: basin.input", path);
        if ((s = json_parse_max(input, label, 16, &probe))) goto fail;
        json_destroy(probe);
        if (!(m->input = mem_strdup(input))) {
            s = STATUS_NOMEM;
            goto fail;
        }
    }
    if (labels && (s = load_labels(m, path, labels))) goto fail;
    if (norm && (s = load_norm(m, path, norm))) goto fail;

    /* The tensors against the config's layout before the store exists: a small file whose
     * config asks for a huge model is refused here, having allocated nothing large. */
    int moments;
    if ((s = model_build_layout(&g, &cfg))) {
        s = status_prefix(s, "%s: basin.config", path);
        goto fail;
    }
    if ((s = check_file_tensors(path, f, g, &cfg, &moments))) goto fail;
    if ((s = model_check_memory(&cfg, g, moments))) {
        s = status_prefix(s, "%s", path);
        goto fail;
    }
    if ((s = graph_finish(g))) goto fail;
    m->g = g;
    g = NULL;
    if (moments && (s = graph_alloc_training(m->g))) goto fail;

    struct graph *mg = m->g;
    long total = 0, done = 0;
    for (int i = 0; i < st_count(f); i++) total += (long)st_tensor_at(f, i)->numel;
    for (int i = 0; i < st_count(f); i++) {
        const struct st_tensor *t = st_tensor_at(f, i);
        enum role role;
        int k = match_tensor(mg, t->name, &role);
        if (k < 0) continue; /* num_batches_tracked */
        const struct graph_tensor *gt = &mg->tensors[k];
        float *dst = role == ROLE_M ? mg->store.m + gt->offset : role == ROLE_V ? mg->store.v + gt->offset
                   : role == ROLE_MASK ? mg->store.mask + gt->offset : graph_tensor_data(mg, k);
        /* st_to_f32's messages name the file and the tensor already */
        if ((s = st_to_f32(t, dst))) goto fail;
        if (role == ROLE_MASK) {
            for (long j = 0; j < gt->numel; j++) {
                if (dst[j] != 0 && dst[j] != 1) {
                    s = status_set(STATUS_FORMAT, "%s: mask '%s' holds %g (masks are 0 or 1)", path,
                                   t->name, dst[j]);
                    goto fail;
                }
                if (dst[j] == 0) mg->masked = 1;
            }
        }
        done += (long)t->numel;
        if (total >= (1L << 23) && !progress_report(p, "load", done, total)) {
            s = status_set(STATUS_CANCELLED, "%s: loading cancelled", path);
            goto fail;
        }
    }
    const char *quant = st_meta(f, "basin.quant");
    if (quant && (s = load_quant(mg, path, quant))) goto fail;
    st_destroy(f);
    *out = m;
    return STATUS_OK;
fail:
    graph_destroy(g);
    model_destroy(m);
    st_destroy(f);
    return s;
}

int model_load(struct model **out, const char *path)
{
    return model_load_progress(out, path, NULL);
}
