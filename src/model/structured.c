/* structured.c: structured filter pruning of CP-ResNet under budgets (structured.h).
 *
 * Key idea: one walk over the architecture names every conv and BN with the channel set
 * its outputs and inputs belong to (a stage's residual stream, or a block's inner
 * channels); group norms, masks, the smaller config and the copy of the kept weights all
 * read that one table, so they cannot disagree about what depends on what.
 * ref: FAU DCASE23 report, Algorithm 1 (group filter norm thresholding by binary search
 * under |theta|_MAC <= A and |theta|_params <= B), mission-anchors 3.4.
 */
#include "basin/model/structured.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/graph.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"

/* One conv or BN module: the set of its output channels and of its input channels (-1:
 * not pruned: the network's input, the classes). */
struct tref {
    char name[40];              /* module name ("s1.b2.conv1") */
    int out_set, in_set;
    int bn;
};

#define MAX_REFS 64

static int stage_width(const struct model_config *c, int s)
{
    return c->stages[s] ? c->stages[s] : c->width << s;
}

/* The modules of a cpresnet config in graph order and the widths of its sets. */
static int walk(const struct model_config *c, struct tref *r, int *width)
{
    int n = 0;
    memset(width, 0, sizeof(int) * STRUCTURED_SETS);
#define REF(nm, o, i, b) (snprintf(r[n].name, sizeof r[n].name, "%s", nm), r[n].out_set = (o), r[n].in_set = (i), r[n++].bn = (b))
    REF("stem.conv", 0, -1, 0);
    REF("stem.bn", 0, -1, 1);
    width[0] = stage_width(c, 0);
    int cur = 0;
    for (int s = 0, k = 0; s < 3; s++)
        for (int b = 0; b < c->blocks[s]; b++, k++) {
            char nm[40];
            int S = s, K = 3 + k, in = b == 0 ? cur : S;
            width[S] = stage_width(c, s);
            width[K] = c->inner[k] ? c->inner[k] : stage_width(c, s);
            snprintf(nm, sizeof nm, "s%d.b%d.conv1", s + 1, b + 1), REF(nm, K, in, 0);
            snprintf(nm, sizeof nm, "s%d.b%d.bn1", s + 1, b + 1), REF(nm, K, -1, 1);
            snprintf(nm, sizeof nm, "s%d.b%d.conv2", s + 1, b + 1), REF(nm, S, K, 0);
            snprintf(nm, sizeof nm, "s%d.b%d.bn2", s + 1, b + 1), REF(nm, S, -1, 1);
            if (s > 0 && b == 0) {
                snprintf(nm, sizeof nm, "s%d.b%d.proj.conv", s + 1, b + 1), REF(nm, S, cur, 0);
                snprintf(nm, sizeof nm, "s%d.b%d.proj.bn", s + 1, b + 1), REF(nm, S, -1, 1);
            }
            if (b == 0) cur = S;
        }
    REF("head.conv", -1, cur, 0);
    REF("head.bn", -1, -1, 1);
#undef REF
    return n;
}

static int find(const struct graph *g, const char *module, const char *suffix)
{
    size_t n = strlen(module);
    for (int i = 0; i < g->n_tensors; i++) {
        const char *t = g->tensors[i].name;
        if (!strncmp(t, module, n) && t[n] == '.' && !strcmp(t + n + 1, suffix)) return i;
    }
    return -1;
}

static int supported(const struct model *m)
{
    if (m->cfg.arch != ARCH_CPRESNET)
        return status_set(STATUS_UNSUPPORTED, "structured pruning: %s is not supported (cpresnet is)",
                          arch_name(m->cfg.arch));
    if (m->cfg.groups != 1)
        return status_set(STATUS_UNSUPPORTED, "structured pruning: cpresnet groups=%d: grouped convs are not "
                          "supported (groups=1 is)", m->cfg.groups);
    /* the walk assumes projections exactly at the first block of stages 2 and 3 */
    for (int s = 1; s < 3; s++)
        if (m->cfg.blocks[s] > 0) {
            char nm[40];
            snprintf(nm, sizeof nm, "s%d.b1.proj.conv", s + 1);
            if (find(m->g, nm, "weight") < 0)
                return status_set(STATUS_UNSUPPORTED, "structured pruning: stage %d has no projection shortcut",
                                  s + 1);
        }
    return STATUS_OK;
}

/* Sum of squares of the slice of channel j of tensor t along dim (0: outputs, 1: inputs). */
static double slice_ss(const struct graph *g, const float *base, int t, int dim, int j)
{
    const struct graph_tensor *gt = &g->tensors[t];
    const float *w = base + gt->offset;
    long O = gt->shape[0], I = gt->n_dims > 1 ? gt->shape[1] : 1, K = gt->numel / (O * I);
    double ss = 0;
    for (long o = 0; o < O; o++)
        for (long i = 0; i < I; i++) {
            if ((dim == 0 && o != j) || (dim == 1 && i != j)) continue;
            for (long k = 0; k < K; k++) ss += (double)w[(o * I + i) * K + k] * w[(o * I + i) * K + k];
        }
    return ss;
}

struct group {
    double norm;
    int set, ch;
};

static int group_cmp(const void *pa, const void *pb)
{
    const struct group *a = pa, *b = pb;
    if (a->norm != b->norm) return a->norm < b->norm ? -1 : 1;
    if (a->set != b->set) return a->set - b->set;
    return a->ch - b->ch;
}

/* Parameters and MACs of cfg for (f, t), from its layout. */
static int count(const struct model_config *cfg, int f, int t, long *params, double *macs)
{
    struct graph *g;
    int s = model_build_layout(&g, cfg);
    if (s) return s;
    struct model tmp = {.cfg = *cfg, .g = g};
    struct layer_row *rows = mem_calloc((size_t)g->n_nodes, sizeof *rows);
    struct model_summary sum;
    int n;
    s = rows ? model_describe(&tmp, f, t, rows, &n, &sum) : STATUS_NOMEM;
    if (!s) *params = graph_param_count(g), *macs = sum.macs;
    mem_free(rows);
    graph_destroy(g);
    return s;
}

/* The config after removing the first k sorted groups (keep[] filled). */
static void config_after(const struct structured_plan *p, const struct model_config *c0, const struct group *gr,
                         int k, struct model_config *out, unsigned char **keep)
{
    for (int x = 0; x < STRUCTURED_SETS; x++)
        if (p->width[x]) memset(keep[x], 1, (size_t)p->width[x]);
    for (int i = 0; i < k; i++) keep[gr[i].set][gr[i].ch] = 0;
    *out = *c0;
    int kept[STRUCTURED_SETS] = {0};
    for (int x = 0; x < STRUCTURED_SETS; x++)
        for (int j = 0; j < p->width[x]; j++) kept[x] += keep[x][j];
    for (int s = 0; s < 3; s++) out->stages[s] = p->width[s] ? kept[s] : stage_width(c0, s);
    for (int b = 0; b < 12; b++) out->inner[b] = p->width[3 + b] ? kept[3 + b] : 0;
}

void structured_plan_fini(struct structured_plan *p)
{
    for (int x = 0; x < STRUCTURED_SETS; x++) mem_free(p->keep[x]);
    memset(p, 0, sizeof *p);
}

int structured_search(const struct model *m, double max_macs, long max_params, int f, int t,
                      struct structured_plan *p)
{
    const struct graph *g = m->g;
    if (!g->masked) return structured_search_at(m, g->store.w, max_macs, max_params, f, t, p);
    /* a weight an earlier pruning masked counts as the zero the forward sees */
    float *w = mem_alloc(sizeof(float) * (size_t)g->store.n_params);
    if (!w) return status_set(STATUS_NOMEM, "structured pruning: out of memory");
    for (long i = 0; i < g->store.n_params; i++) w[i] = g->store.w[i] * g->store.mask[i];
    int s = structured_search_at(m, w, max_macs, max_params, f, t, p);
    mem_free(w);
    return s;
}

int structured_search_at(const struct model *m, const float *values, double max_macs, long max_params, int f,
                         int t, struct structured_plan *p)
{
    memset(p, 0, sizeof *p);
    int s = supported(m);
    if (s) return s;
    const struct graph *g = m->g;
    struct tref refs[MAX_REFS];
    int n_refs = walk(&m->cfg, refs, p->width);
    snprintf(p->name[0], sizeof p->name[0], "stem+s1");
    snprintf(p->name[1], sizeof p->name[1], "s2");
    snprintf(p->name[2], sizeof p->name[2], "s3");
    for (int st = 0, k = 0; st < 3; st++)
        for (int b = 0; b < m->cfg.blocks[st]; b++, k++) snprintf(p->name[3 + k], sizeof p->name[3 + k], "s%d.b%d", st + 1, b + 1);
    long total = 0;
    for (int x = 0; x < STRUCTURED_SETS; x++) {
        total += p->width[x];
        if (p->width[x] && !(p->keep[x] = mem_alloc((size_t)p->width[x]))) {
            structured_plan_fini(p);
            return status_set(STATUS_NOMEM, "structured pruning: out of memory");
        }
    }
    struct group *gr = mem_alloc((size_t)total * sizeof *gr);
    if (!gr) {
        structured_plan_fini(p);
        return status_set(STATUS_NOMEM, "structured pruning: out of memory");
    }
    /* group norms; each set's largest stays (sorted last, left out of the candidates) */
    int n = 0;
    for (int x = 0; x < STRUCTURED_SETS; x++) {
        int best = -1;
        double best_norm = -1;
        int first = n;
        for (int j = 0; j < p->width[x]; j++) {
            double ss = 0;
            for (int r = 0; r < n_refs; r++) {
                int w = find(g, refs[r].name, "weight");
                if (w < 0) continue;
                if (refs[r].bn) {
                    if (refs[r].out_set != x) continue;
                    int bb = find(g, refs[r].name, "bias");
                    ss += slice_ss(g, values, w, 0, j) + slice_ss(g, values, bb, 0, j);
                    continue;
                }
                if (refs[r].out_set == x) ss += slice_ss(g, values, w, 0, j);
                if (refs[r].in_set == x) ss += slice_ss(g, values, w, 1, j);
            }
            gr[n++] = (struct group){sqrt(ss), x, j};
            if (sqrt(ss) > best_norm) best_norm = sqrt(ss), best = n - 1;
        }
        if (best >= 0) gr[best] = gr[--n];
        (void)first;
    }
    qsort(gr, (size_t)n, sizeof *gr, group_cmp);
    p->n_groups = n;
    struct model_config cfg;
    if ((s = count(&m->cfg, f, t, &p->params_before, &p->macs_before))) goto done;
    /* FAU Algorithm 1: the smallest k whose structure fits */
    int lo = 0, hi = n, best_k = -1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        long prm;
        double mac;
        config_after(p, &m->cfg, gr, mid, &cfg, p->keep);
        if ((s = count(&cfg, f, t, &prm, &mac))) goto done;
        if ((max_macs < 0 || mac <= max_macs) && (max_params < 0 || prm <= max_params)) best_k = mid, hi = mid - 1;
        else lo = mid + 1;
    }
    if (best_k < 0) {
        long prm;
        double mac;
        config_after(p, &m->cfg, gr, n, &cfg, p->keep);
        if (!(s = count(&cfg, f, t, &prm, &mac)))
            s = status_set(STATUS_INVALID, "structured pruning: one channel per layer still has %.4g MACs and %ld "
                           "parameters, over the budget (macs <= %.4g, params <= %ld)", mac, prm, max_macs, max_params);
        goto done;
    }
    config_after(p, &m->cfg, gr, best_k, &p->cfg, p->keep);
    p->n_removed = best_k;
    s = count(&p->cfg, f, t, &p->params_after, &p->macs_after);
done:
    mem_free(gr);
    if (s) structured_plan_fini(p);
    return s;
}

void structured_apply(struct model *m, const struct structured_plan *p)
{
    structured_zero(m, p, m->g->store.mask);
    m->g->masked = 1;
}

void structured_zero(const struct model *m, const struct structured_plan *p, float *x)
{
    const struct graph *g = m->g;
    struct tref refs[MAX_REFS];
    int width[STRUCTURED_SETS];
    int n_refs = walk(&m->cfg, refs, width);
    for (int r = 0; r < n_refs; r++) {
        if (refs[r].bn) continue;
        int w = find(g, refs[r].name, "weight");
        if (w < 0) continue;
        const struct graph_tensor *gt = &g->tensors[w];
        long O = gt->shape[0], I = gt->shape[1], K = gt->numel / (O * I);
        float *mk = x + gt->offset;
        for (long o = 0; o < O; o++)
            for (long i = 0; i < I; i++) {
                int gone = (refs[r].out_set >= 0 && !p->keep[refs[r].out_set][o]) ||
                           (refs[r].in_set >= 0 && !p->keep[refs[r].in_set][i]);
                if (!gone) continue;
                for (long k = 0; k < K; k++) mk[(o * I + i) * K + k] = 0;
            }
    }
}

/* Positions of the kept channels of a set (all of n for set -1). */
static int kept_list(const struct structured_plan *p, int set, int n, int *out)
{
    int k = 0;
    for (int j = 0; j < n; j++)
        if (set < 0 || p->keep[set][j]) out[k++] = j;
    return k;
}

int structured_extract(const struct model *m, const struct structured_plan *p, struct model **out)
{
    *out = NULL;
    struct model *nm;
    int s = model_create(&nm, &p->cfg, 0);
    if (s) return s;
    const struct graph *g = m->g;
    struct graph *ng = nm->g;
    struct tref refs[MAX_REFS];
    int width[STRUCTURED_SETS];
    int n_refs = walk(&m->cfg, refs, width);
    int *oi = mem_alloc(sizeof(int) * 65536), *ii = mem_alloc(sizeof(int) * 65536);
    if (!oi || !ii) {
        s = status_set(STATUS_NOMEM, "structured pruning: out of memory");
        goto fail;
    }
    static const char *const bn_parts[] = {"weight", "bias", "running_mean", "running_var"};
    for (int r = 0; r < n_refs; r++) {
        for (int part = 0; part < (refs[r].bn ? 4 : 1); part++) {
            int a = find(g, refs[r].name, bn_parts[part]), b = find(ng, refs[r].name, bn_parts[part]);
            CHECK(a >= 0 && b >= 0);
            const struct graph_tensor *ta = &g->tensors[a], *tb = &ng->tensors[b];
            int no = kept_list(p, refs[r].out_set, ta->shape[0], oi);
            CHECK(no == tb->shape[0]);
            if (refs[r].bn) {
                const float *src = graph_tensor_data(g, a);
                float *dst = graph_tensor_data(ng, b);
                for (int j = 0; j < no; j++) dst[j] = src[oi[j]];
                continue;
            }
            long I = ta->shape[1], K = ta->numel / (ta->shape[0] * I);
            int ni = kept_list(p, refs[r].in_set, (int)I, ii);
            CHECK(ni == tb->shape[1] && K == tb->numel / ((long)tb->shape[0] * tb->shape[1]));
            for (int o = 0; o < no; o++)
                for (int i = 0; i < ni; i++) {
                    long from = ta->offset + ((long)oi[o] * I + ii[i]) * K, to = tb->offset + ((long)o * ni + i) * K;
                    memcpy(ng->store.w + to, g->store.w + from, sizeof(float) * (size_t)K);
                    memcpy(ng->store.mask + to, g->store.mask + from, sizeof(float) * (size_t)K);
                }
        }
    }
    for (long i = 0; i < ng->store.n_params; i++)
        if (ng->store.mask[i] == 0) ng->masked = 1;
    /* the metadata that travels with the model */
    if ((m->frontend && !(nm->frontend = mem_strdup(m->frontend))) || (m->input && !(nm->input = mem_strdup(m->input))))
        goto nomem;
    if (m->labels) {
        if (!(nm->labels = mem_calloc((size_t)m->n_labels, sizeof *nm->labels))) goto nomem;
        nm->n_labels = m->n_labels;
        for (int i = 0; i < m->n_labels; i++)
            if (!(nm->labels[i] = mem_strdup(m->labels[i]))) goto nomem;
    }
    if (m->norm_mean) {
        if (!(nm->norm_mean = mem_alloc(sizeof(float) * (size_t)m->n_norm)) ||
            !(nm->norm_std = mem_alloc(sizeof(float) * (size_t)m->n_norm)))
            goto nomem;
        memcpy(nm->norm_mean, m->norm_mean, sizeof(float) * (size_t)m->n_norm);
        memcpy(nm->norm_std, m->norm_std, sizeof(float) * (size_t)m->n_norm);
        nm->n_norm = m->n_norm;
    }
    mem_free(oi);
    mem_free(ii);
    *out = nm;
    return STATUS_OK;
nomem:
    s = status_set(STATUS_NOMEM, "structured pruning: out of memory");
fail:
    mem_free(oi);
    mem_free(ii);
    model_destroy(nm);
    return s;
}
