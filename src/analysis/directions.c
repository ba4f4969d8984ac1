/* directions.c: random filter-normalised direction pairs, their files and identities.
 *
 * Key idea: a direction lives in the parameter store's layout, so drawing, normalising,
 * perturbing and saving are each one loop over the graph's parameter tensors.
 *
 * ref: mission-anchors 1.1 (x then y, one Gaussian per tensor), 1.2 (filter
 *      normalisation d_i * ||w_i|| / (||d_i|| + 1e-10) over the first axis of every >= 2-D
 *      tensor), 1.3 (ignore 'biasbn': 1-D tensors zero); loss-landscape
 *      net_plotter.py:normalize_direction; ../shared/peers/basin_ref.py random_directions.
 */
#include "basin/analysis/directions.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/graph.h"
#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/data/hash.h"
#include "basin/model/model.h"
#include "basin/model/safetensors.h"

int directions_create(struct directions **out, const struct model *m)
{
    *out = NULL;
    const long n = m->g->store.n_params;
    struct directions *d = mem_calloc(1, sizeof *d);
    if (!d) return status_set(STATUS_NOMEM, "directions: out of memory");
    d->n_params = n;
    d->x = mem_calloc((size_t)(n > 0 ? n : 1), sizeof *d->x);
    d->y = mem_calloc((size_t)(n > 0 ? n : 1), sizeof *d->y);
    if (!d->x || !d->y) {
        directions_destroy(d);
        return status_set(STATUS_NOMEM, "directions: out of memory for 2 x %ld parameters", n);
    }
    snprintf(d->norm, sizeof d->norm, "filter");
    *out = d;
    return STATUS_OK;
}

void directions_destroy(struct directions *d)
{
    if (!d) return;
    mem_free(d->x);
    mem_free(d->y);
    mem_free(d);
}

void directions_filter_normalise(float *d, const struct model *m)
{
    const struct graph *g = m->g;
    const float *w = g->store.w, *mask = g->store.mask;
    for (int k = 0; k < g->n_tensors; k++) {
        const struct graph_tensor *t = &g->tensors[k];
        if (!tensor_kind_is_param(t->kind)) continue;
        float *dk = d + t->offset;
        if (t->n_dims < 2) {
            memset(dk, 0, sizeof *dk * (size_t)t->numel);
            continue;
        }
        const long per = t->numel / t->shape[0];
        const float *wk = w + t->offset, *mk = mask + t->offset;
        for (int i = 0; i < t->shape[0]; i++) {
            double wn = 0, dn = 0;
            for (long j = (long)i * per; j < (long)(i + 1) * per; j++) {
                if (mk[j] == 0) dk[j] = 0;
                double wj = (double)wk[j] * mk[j];
                wn += wj * wj;
                dn += (double)dk[j] * dk[j];
            }
            /* ref: loss-landscape normalize_direction: d * (||w|| / (||d|| + 1e-10)) */
            const float scale = (float)(sqrt(wn) / (sqrt(dn) + 1e-10));
            for (long j = (long)i * per; j < (long)(i + 1) * per; j++) dk[j] *= scale;
        }
    }
}

int directions_random(struct directions **out, const struct model *m, uint64_t seed)
{
    int s = directions_create(out, m);
    if (s) return s;
    struct directions *d = *out;
    const struct graph *g = m->g;
    struct rng base;
    rng_seed(&base, seed);
    for (int axis = 0; axis < 2; axis++) {
        float *v = axis ? d->y : d->x;
        for (int k = 0; k < g->n_tensors; k++) {
            const struct graph_tensor *t = &g->tensors[k];
            if (!tensor_kind_is_param(t->kind) || t->n_dims < 2) continue;
            struct rng r = rng_split(&base, 2 * (uint64_t)k + (uint64_t)axis);
            rng_fill_normal(&r, v + t->offset, t->numel, 0, 1);
        }
        directions_filter_normalise(v, m);
    }
    d->has_seed = 1;
    d->seed = seed;
    snprintf(d->norm, sizeof d->norm, "filter");
    return STATUS_OK;
}

int directions_save(const struct directions *d, const struct model *m, const char *path)
{
    const struct graph *g = m->g;
    CHECK(d->n_params == g->store.n_params);
    struct st_writer *w = st_writer_create();
    if (!w) return STATUS_NOMEM;
    char (*names)[80] = mem_calloc((size_t)(2 * g->n_tensors + 1), sizeof *names);
    char cfg[512], seed[32];
    int s = names ? STATUS_OK : STATUS_NOMEM;
    int n = 0;
    for (int axis = 0; axis < 2 && !s; axis++)
        for (int k = 0; k < g->n_tensors && !s; k++) {
            const struct graph_tensor *t = &g->tensors[k];
            if (!tensor_kind_is_param(t->kind)) continue;
            snprintf(names[n], sizeof names[n], "%c.%s", axis ? 'y' : 'x', t->name);
            s = st_writer_add_f32(w, names[n++], t->n_dims, t->shape, (axis ? d->y : d->x) + t->offset);
        }
    model_config_str(&m->cfg, cfg, sizeof cfg);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)d->seed);
    if (!s) s = st_writer_meta(w, "basin.format", "1");
    if (!s) s = st_writer_meta(w, "basin.kind", "directions");
    if (!s) s = st_writer_meta(w, "basin.arch", arch_name(m->cfg.arch));
    if (!s) s = st_writer_meta(w, "basin.model", cfg);
    if (!s) s = st_writer_meta(w, "basin.dir_norm", d->norm);
    if (!s) s = st_writer_meta(w, "basin.dir_ignore", "biasbn");
    if (!s && d->has_seed) s = st_writer_meta(w, "basin.seed", seed);
    if (!s) s = st_writer_write(w, path);
    if (s == STATUS_NOMEM) status_set(s, "%s: out of memory", path);
    st_writer_destroy(w);
    mem_free(names);
    return s;
}

int directions_load(struct directions **out, const struct model *m, const char *path)
{
    *out = NULL;
    const struct graph *g = m->g;
    struct st_file *f = NULL;
    int s = st_load(path, &f);
    if (s) return s;
    struct directions *d = NULL;
    if ((s = directions_create(&d, m))) goto done;
    int used = 0;
    for (int axis = 0; axis < 2 && !s; axis++)
        for (int k = 0; k < g->n_tensors && !s; k++) {
            const struct graph_tensor *t = &g->tensors[k];
            if (!tensor_kind_is_param(t->kind)) continue;
            char name[80];
            snprintf(name, sizeof name, "%c.%s", axis ? 'y' : 'x', t->name);
            const struct st_tensor *st = st_find(f, name);
            if (!st) {
                if (t->n_dims >= 2)
                    s = status_set(STATUS_NOT_FOUND, "%s: no direction tensor '%s' (the model's %s is %d-D)", path,
                                   name, t->name, t->n_dims);
                continue;
            }
            used++;
            s = st_read_f32(f, name, t->n_dims, t->shape, (axis ? d->y : d->x) + t->offset);
        }
    if (!s && used != st_count(f)) {
        for (int i = 0; i < st_count(f); i++) {
            const char *name = st_tensor_at(f, i)->name;
            int known = (name[0] == 'x' || name[0] == 'y') && name[1] == '.' && graph_find_tensor(g, name + 2) >= 0 &&
                        tensor_kind_is_param(g->tensors[graph_find_tensor(g, name + 2)].kind);
            if (!known) {
                s = status_set(STATUS_MISMATCH, "%s: tensor '%s' is not a direction of this %s's parameters", path,
                               name, arch_name(m->cfg.arch));
                break;
            }
        }
    }
    if (s) goto done;
    for (long j = 0; j < d->n_params; j++)
        if (g->store.mask[j] == 0) d->x[j] = d->y[j] = 0;
    for (long j = 0; j < d->n_params; j++)
        if (!isfinite(d->x[j]) || !isfinite(d->y[j])) {
            s = status_set(STATUS_FORMAT, "%s: a direction holds a value that is not finite", path);
            goto done;
        }
    const char *seed = st_meta(f, "basin.seed");
    if (seed) {
        char *end;
        unsigned long long v = strtoull(seed, &end, 10);
        if (end != seed && !*end) d->has_seed = 1, d->seed = v;
    }
    snprintf(d->norm, sizeof d->norm, "file");
done:
    st_destroy(f);
    if (s) directions_destroy(d);
    else *out = d;
    return s;
}

uint64_t directions_hash(const struct directions *d)
{
    struct hash_xxh64 h;
    hash_xxh64_init(&h, 0);
    hash_xxh64_update(&h, d->x, sizeof *d->x * (size_t)d->n_params);
    hash_xxh64_update(&h, d->y, sizeof *d->y * (size_t)d->n_params);
    return hash_xxh64_digest(&h);
}

uint64_t directions_model_hash(const struct model *m)
{
    const struct store *st = &m->g->store;
    struct hash_xxh64 h;
    hash_xxh64_init(&h, 0);
    hash_xxh64_update(&h, st->w, sizeof *st->w * (size_t)st->n_params);
    hash_xxh64_update(&h, st->mask, sizeof *st->mask * (size_t)st->n_params);
    hash_xxh64_update(&h, st->buf, sizeof *st->buf * (size_t)st->n_buffers);
    return hash_xxh64_digest(&h);
}
