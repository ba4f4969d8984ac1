/* pipeline.c: a model's front end, labels and normalisation; model vs data checks; feature
 * exports (see pipeline.h). */
#include "basin/train/pipeline.h"

#include <stdio.h>
#include <string.h>

#include "basin/core/json.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/data/dataset.h"
#include "basin/data/features.h"
#include "basin/model/model.h"
#include "basin/model/safetensors.h"

int pipeline_model_frontend(const struct model *m, struct frontend_params *out)
{
    if (!m->frontend) return status_set(STATUS_NOT_FOUND, "the model has no front-end metadata");
    return frontend_params_from_json(out, m->frontend, "basin.frontend");
}

int pipeline_set_model_frontend(struct model *m, const struct frontend_params *p)
{
    char *text;
    int s = frontend_params_to_json(p, &text);
    if (s) return s;
    mem_free(m->frontend);
    m->frontend = text;
    return STATUS_OK;
}

int pipeline_set_model_norm(struct model *m, const float *mean, const float *std, int n)
{
    float *a = mem_alloc((size_t)n * sizeof *a), *b = mem_alloc((size_t)n * sizeof *b);
    if (!a || !b) {
        mem_free(a);
        mem_free(b);
        return STATUS_NOMEM;
    }
    memcpy(a, mean, (size_t)n * sizeof *a);
    memcpy(b, std, (size_t)n * sizeof *b);
    mem_free(m->norm_mean);
    mem_free(m->norm_std);
    m->norm_mean = a, m->norm_std = b, m->n_norm = n;
    return STATUS_OK;
}

int pipeline_set_model_labels(struct model *m, const struct dataset *ds)
{
    int n = dataset_n_classes(ds);
    char **labels = mem_calloc((size_t)n + 1, sizeof *labels);
    if (!labels) return STATUS_NOMEM;
    for (int k = 0; k < n; k++)
        if (!(labels[k] = mem_strdup(dataset_class_name(ds, k)))) {
            for (int j = 0; j < k; j++) mem_free(labels[j]);
            mem_free(labels);
            return STATUS_NOMEM;
        }
    for (int k = 0; k < m->n_labels; k++) mem_free(m->labels[k]);
    mem_free(m->labels);
    m->labels = labels, m->n_labels = n;
    return STATUS_OK;
}

/* "airport, bus, ... (10)" for messages. */
static void class_list(const struct dataset *ds, char *buf, size_t n)
{
    size_t k = 0;
    int m = dataset_n_classes(ds);
    buf[0] = 0;
    for (int i = 0; i < m && k + 40 < n; i++) {
        if (i == 6 && m > 7) {
            k += (size_t)snprintf(buf + k, n - k, ", ...");
            break;
        }
        k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? ", " : "", dataset_class_name(ds, i));
    }
}

int pipeline_check(const struct model *m, const struct frontend_params *p, const struct dataset *ds)
{
    int classes = dataset_n_classes(ds);
    char names[400];
    if (m->cfg.classes != classes) {
        class_list(ds, names, sizeof names);
        return status_set(STATUS_MISMATCH, "the model has %d classes, the data set %d (%s): make a "
                          "model with classes=%d", m->cfg.classes, classes, names, classes);
    }
    for (int k = 0; k < m->n_labels && k < classes; k++)
        if (strcmp(m->labels[k], dataset_class_name(ds, k)))
            return status_set(STATUS_MISMATCH, "class %d is '%s' for the model and '%s' in the data set",
                              k, m->labels[k], dataset_class_name(ds, k));
    if (m->cfg.arch != ARCH_CPRESNET && m->cfg.mels != p->n_mels)
        return status_set(STATUS_MISMATCH, "the model normalises %d mel bins (mels=%d), the %s front end "
                          "gives %d", m->cfg.mels, m->cfg.mels, p->preset, p->n_mels);
    if (m->n_norm && m->n_norm != p->n_mels)
        return status_set(STATUS_MISMATCH, "the model's normalisation (basin.norm) has %d bins, the %s "
                          "front end gives %d", m->n_norm, p->preset, p->n_mels);
    int fmin, tmin;
    if (!model_min_input(&m->cfg, &fmin, &tmin) && p->n_mels < fmin)
        return status_set(STATUS_MISMATCH, "the %s front end gives %d mel bins, the model needs at least %d",
                          p->preset, p->n_mels, fmin);
    return STATUS_OK;
}

int pipeline_export(const char *path, const struct features *f, const struct dataset *ds,
                    const struct frontend_params *p, const char *split, const char *norm)
{
    int64_t *y = mem_alloc((size_t)(f->n + 1) * sizeof *y), *dev = mem_alloc((size_t)(f->n + 1) * sizeof *dev);
    struct json *jl = json_create_array(), *jd = json_create_array();
    struct st_writer *w = st_writer_create();
    char *labels = NULL, *devices = NULL, *fe = NULL;
    int s = y && dev && jl && jd && w ? STATUS_OK : STATUS_NOMEM;
    for (int i = 0; i < f->n && !s; i++) {
        y[i] = f->labels[i];
        dev[i] = dataset_item(ds, f->items[i])->device;
    }
    for (int k = 0; k < dataset_n_classes(ds) && !s; k++) s = json_push_string(jl, dataset_class_name(ds, k));
    for (int k = 0; k < dataset_n_devices(ds) && !s; k++) s = json_push_string(jd, dataset_device_name(ds, k));
    if (!s) s = json_dump(jl, &labels);
    if (!s) s = json_dump(jd, &devices);
    if (!s) s = frontend_params_to_json(p, &fe);
    int64_t shape[4] = {f->n, f->n_channels, f->n_mels, f->n_frames}, n1[1] = {f->n};
    if (!s) s = st_writer_add(w, "x", ST_F32, 4, shape, f->x);
    if (!s) s = st_writer_add(w, "y", ST_I64, 1, n1, y);
    if (!s) s = st_writer_add(w, "device", ST_I64, 1, n1, dev);
    if (!s) s = st_writer_meta(w, "basin.format", "1");
    if (!s) s = st_writer_meta(w, "basin.frontend", fe);
    if (!s) s = st_writer_meta(w, "basin.labels", labels);
    if (!s) s = st_writer_meta(w, "basin.devices", devices);
    if (!s) s = st_writer_meta(w, "basin.split", split);
    if (!s) s = st_writer_meta(w, "basin.znorm", norm);
    if (!s) s = st_writer_write(w, path);
    st_writer_destroy(w);
    json_destroy(jl);
    json_destroy(jd);
    mem_free(labels), mem_free(devices), mem_free(fe);
    mem_free(y), mem_free(dev);
    return s;
}

int pipeline_features(struct features **out, const struct model *m, const struct dataset *ds,
                      const struct frontend_params *p, enum dataset_split split, int n, int *n_split,
                      const struct progress *progress)
{
    *out = NULL;
    int s;
    if ((s = dataset_require_split(ds, split))) return s;
    if ((s = pipeline_check(m, p, ds))) return s;
    struct frontend *fe = NULL;
    if ((s = frontend_create(&fe, p))) return s;
    int *idx = mem_alloc(sizeof *idx * (size_t)dataset_n_items(ds));
    if (!idx) {
        frontend_destroy(fe);
        return STATUS_NOMEM;
    }
    const int total = dataset_split_items(ds, split, idx);
    if (n_split) *n_split = total;
    if (n > 0 && n < total)
        for (int i = 0; i < n; i++) idx[i] = idx[(long)i * total / n];
    else
        n = total;
    const struct features_opts fo = {.in_ch = m->cfg.in_ch, .pad = FEATURES_PAD_REPEAT};
    s = features_load_items(out, ds, n, idx, fe, &fo, progress);
    if (!s && m->n_norm > 0) features_znorm_apply(*out, m->norm_mean, m->norm_std);
    mem_free(idx);
    frontend_destroy(fe);
    return s;
}
