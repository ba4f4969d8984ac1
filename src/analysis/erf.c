/* erf.c: effective receptive fields (see erf.h): the gradient of a feature map's centre unit
 * with respect to the input, |.| averaged over inputs, with the theoretical RF box it lives
 * in and the areas holding 68 % and 95 % of its mass.
 *
 * Key idea: in eval mode every input of a batch is independent, so one forward and one
 * backward from the tap (plan_backward_from, ones at the centre unit of every channel) give
 * the gradients of a whole batch at once.
 * ref: Luo et al. 2016; mission-anchors 2.7; ../shared/peers/basin_ref.py erf.
 */
#include "basin/analysis/erf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/fs.h"
#include "basin/core/graph.h"
#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/strbuf.h"
#include "basin/data/features.h"
#include "basin/dsp/frontend.h"
#include "basin/model/model.h"
#include "basin/train/pipeline.h"
#include "basin/train/predict.h"

/* Sums a fraction must reach: frac * total, less a relative 1e-12 so that rounding in the
 * product does not ask for one cell more than a map holding exactly frac of its mass. */
#define ERF_FRAC_SLACK 1e-12

static const char *const input_names[] = {"data", "zero", "noise"};

const char *erf_input_name(enum erf_input in)
{
    return (unsigned)in < 3 ? input_names[in] : "?";
}

int erf_input_parse(const char *name, enum erf_input *out)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, input_names[i])) {
            *out = (enum erf_input)i;
            return STATUS_OK;
        }
    return status_set(STATUS_INVALID, "input=%s: data, zero or noise", name);
}

void erf_result_destroy(struct erf_result *r)
{
    if (!r) return;
    mem_free(r->map);
    mem_free(r->channels);
    mem_free(r);
}

struct erf_result *erf_result_copy(const struct erf_result *r)
{
    struct erf_result *c = mem_alloc(sizeof *c);
    if (!c) return NULL;
    *c = *r;
    size_t cells = (size_t)r->n_mels * r->n_frames;
    c->map = mem_alloc(cells * sizeof *c->map);
    c->channels = mem_alloc(cells * r->n_channels * sizeof *c->channels);
    if (!c->map || !c->channels) {
        erf_result_destroy(c);
        return NULL;
    }
    memcpy(c->map, r->map, cells * sizeof *c->map);
    memcpy(c->channels, r->channels, cells * r->n_channels * sizeof *c->channels);
    return c;
}

/* ----------------------------------------------------------------------------- layers */

int erf_find_layer(const struct graph *g, const char *name, int *node)
{
    int i = name && *name ? graph_find_node(g, name) : -1;
    if (i >= 0) {
        *node = i;
        return STATUS_OK;
    }
    size_t k = name ? strlen(name) : 0;
    int last = -1;
    for (i = 0; k && i < g->n_nodes; i++)
        if (!strncmp(g->nodes[i].name, name, k) && g->nodes[i].name[k] == '.') last = i;
    if (last >= 0) {
        /* A module's output: its last node, through the anonymous residual sum (or relu)
         * that takes it, as a PyTorch module's forward returns. */
        while (last + 1 < g->n_nodes) {
            const struct node *nx = &g->nodes[last + 1];
            if (nx->name[0] || (nx->op != OP_ADD && nx->op != OP_RELU) || (nx->in[0] != last && nx->in[1] != last))
                break;
            last++;
        }
        *node = last;
        return STATUS_OK;
    }
    /* The top-level modules, in graph order, for the message. */
    struct strbuf b = {0};
    char seen[64][48];
    int n_seen = 0;
    for (i = 1; i < g->n_nodes && n_seen < 64; i++) {
        const char *nm = g->nodes[i].name;
        if (!*nm) continue;
        size_t l = strcspn(nm, ".");
        if (l >= sizeof seen[0]) continue;
        int dup = 0;
        for (int j = 0; j < n_seen && !dup; j++) dup = strlen(seen[j]) == l && !strncmp(seen[j], nm, l);
        if (dup) continue;
        memcpy(seen[n_seen], nm, l);
        seen[n_seen][l] = 0;
        strbuf_printf(&b, "%s%s", n_seen ? ", " : "", seen[n_seen]);
        n_seen++;
    }
    int s = status_set(STATUS_NOT_FOUND, "no layer '%s' (modules: %s; or a layer of `info`, e.g. %s)", name ? name : "",
                       b.p ? b.p : "none", g->n_nodes > 1 && g->nodes[1].name[0] ? g->nodes[1].name : "stem.conv");
    strbuf_fini(&b);
    return s;
}

/* floor(a / 2) for any sign. */
static long floor_half(long a)
{
    return a >= 0 ? a / 2 : -((-a + 1) / 2);
}

int erf_rf_box(const struct graph *g, int node, int f, int t, int uf, int ut, long box[2][2], int whole[2])
{
    CHECK(node >= 0 && node < g->n_nodes);
    struct node_info *info = mem_alloc(sizeof *info * (size_t)g->n_nodes);
    long(*lo)[2] = mem_alloc(sizeof *lo * (size_t)g->n_nodes);
    long(*hi)[2] = mem_alloc(sizeof *hi * (size_t)g->n_nodes);
    long(*jump)[2] = mem_alloc(sizeof *jump * (size_t)g->n_nodes);
    int(*wh)[2] = mem_alloc(sizeof *wh * (size_t)g->n_nodes);
    int s = STATUS_OK;
    if (!info || !lo || !hi || !jump || !wh) {
        s = status_set(STATUS_NOMEM, "erf: out of memory");
        goto done;
    }
    if ((s = graph_describe(g, g->nodes[0].c, f, t, info))) goto done;
    /* ref: Araujo et al. 2019, the RF recurrence of graph_describe, with the box's position:
     * unit 0 of a node sees input cells lo..hi; unit u sees lo + u jump .. hi + u jump. */
    for (int i = 0; i <= node; i++) {
        const struct node *n = &g->nodes[i];
        const int a = n->in[0], b = n->in[1];
        for (int d = 0; d < 2; d++) {
            if (a < 0) {
                lo[i][d] = hi[i][d] = 0, jump[i][d] = 1, wh[i][d] = 0;
                continue;
            }
            lo[i][d] = lo[a][d], hi[i][d] = hi[a][d], jump[i][d] = jump[a][d], wh[i][d] = wh[a][d];
            switch (n->op) {
            case OP_CONV2D:
            case OP_MAXPOOL:
            case OP_AVGPOOL: {
                long dil = n->op == OP_CONV2D ? n->dil[d] : 1, pad = n->op == OP_CONV2D ? n->pad[d] : 0;
                lo[i][d] -= pad * jump[a][d];
                hi[i][d] += ((long)(n->k[d] - 1) * dil - pad) * jump[a][d];
                jump[i][d] *= n->stride[d];
                break;
            }
            case OP_ADD:
                if (lo[b][d] < lo[i][d]) lo[i][d] = lo[b][d];
                if (hi[b][d] > hi[i][d]) hi[i][d] = hi[b][d];
                wh[i][d] |= wh[b][d];
                break;
            case OP_MEAN:
            case OP_MAX:
                if (n->axis - 2 == d) wh[i][d] = 1;
                break;
            default:
                break;
            }
        }
    }
    const long size[2] = {f, t}, unit[2] = {uf, ut};
    for (int d = 0; d < 2; d++) {
        whole[d] = wh[node][d];
        if (whole[d]) {
            box[d][0] = 0, box[d][1] = size[d] - 1;
        } else {
            box[d][0] = lo[node][d] + unit[d] * jump[node][d];
            box[d][1] = hi[node][d] + unit[d] * jump[node][d];
        }
    }
done:
    mem_free(info);
    mem_free(lo);
    mem_free(hi);
    mem_free(jump);
    mem_free(wh);
    return s;
}

/* ----------------------------------------------------------------------------- mass */

static int cmp_desc(const void *pa, const void *pb)
{
    float a = *(const float *)pa, b = *(const float *)pb;
    return (a < b) - (a > b);
}

long erf_mass_cells(const float *m, int rows, int cols, double frac)
{
    const long n = (long)rows * cols;
    double total = 0;
    for (long i = 0; i < n; i++) total += m[i];
    if (!(total > 0) || n == 0) return 0;
    float *v = mem_alloc(sizeof *v * (size_t)n);
    if (!v) return -1;
    memcpy(v, m, sizeof *v * (size_t)n);
    qsort(v, (size_t)n, sizeof *v, cmp_desc);
    const double target = frac * total * (1 - ERF_FRAC_SLACK);
    double run = 0;
    long k = 0;
    while (k < n && run < target) run += v[k++];
    mem_free(v);
    return k;
}

long erf_mass_box(const float *m, int rows, int cols, int cf, int ct, double frac, int *box_f, int *box_t)
{
    *box_f = *box_t = 0;
    if (rows < 1 || cols < 1) return 0;
    if (cf < 0) cf = 0;
    if (cf >= rows) cf = rows - 1;
    if (ct < 0) ct = 0;
    if (ct >= cols) ct = cols - 1;
    /* 2-D prefix sums S[i][j] = sum of m[0..i)[0..j) */
    const long W = cols + 1;
    double *S = mem_calloc((size_t)(rows + 1) * (size_t)W, sizeof *S);
    if (!S) return -1;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            S[(i + 1) * W + j + 1] = m[(long)i * cols + j] + S[i * W + j + 1] + S[(i + 1) * W + j] - S[i * W + j];
    const double total = S[rows * W + cols];
    long best = 0;
    if (total > 0) {
        const double target = frac * total * (1 - ERF_FRAC_SLACK);
        const int amax = cf > rows - 1 - cf ? cf : rows - 1 - cf, bmax = ct > cols - 1 - ct ? ct : cols - 1 - ct;
        int ba = -1, bb = -1;
        for (int a = 0; a <= amax; a++) {
            const int r0 = cf - a < 0 ? 0 : cf - a, r1 = cf + a >= rows ? rows : cf + a + 1;
#define BOX_SUM(bv)                                                                                             \
    (S[r1 * W + (ct + (bv) >= cols ? cols : ct + (bv) + 1)] - S[r0 * W + (ct + (bv) >= cols ? cols : ct + (bv) + 1)] - \
     S[r1 * W + (ct - (bv) < 0 ? 0 : ct - (bv))] + S[r0 * W + (ct - (bv) < 0 ? 0 : ct - (bv))])
            if (BOX_SUM(bmax) < target) continue;
            int l = 0, h = bmax; /* the smallest b whose box holds the target */
            while (l < h) {
                int mid = (l + h) / 2;
                if (BOX_SUM(mid) >= target) h = mid;
                else l = mid + 1;
            }
#undef BOX_SUM
            const int c0 = ct - l < 0 ? 0 : ct - l, c1 = ct + l >= cols ? cols : ct + l + 1;
            const long area = (long)(r1 - r0) * (c1 - c0);
            const int big = a > l ? a : l, bbig = ba > bb ? ba : bb;
            if (ba < 0 || area < best || (area == best && big < bbig)) best = area, ba = a, bb = l;
        }
        if (ba >= 0) *box_f = 2 * ba + 1, *box_t = 2 * bb + 1;
    }
    mem_free(S);
    return best;
}

/* ----------------------------------------------------------------------------- run */

/* Map, peak, total and masses of r from the per-channel sums over r->n inputs. */
static void finish(struct erf_result *r, const double *sums)
{
    const long cells = (long)r->n_mels * r->n_frames;
    const double inv = r->n ? 1.0 / r->n : 0;
    r->mass = 0, r->peak = 0;
    for (long i = 0; i < cells; i++) {
        double v = 0;
        for (int c = 0; c < r->n_channels; c++) {
            double x = sums[(long)c * cells + i] * inv;
            r->channels[(long)c * cells + i] = (float)x;
            v += x;
        }
        r->map[i] = (float)v;
        r->mass += v;
        if (v > r->peak) r->peak = v;
    }
    struct erf_mass *ms[2] = {&r->m68, &r->m95};
    for (int k = 0; k < 2; k++) {
        ms[k]->cells = erf_mass_cells(r->map, r->n_mels, r->n_frames, ms[k]->frac);
        ms[k]->box_cells = erf_mass_box(r->map, r->n_mels, r->n_frames, r->centre[0], r->centre[1], ms[k]->frac,
                                        &ms[k]->box_f, &ms[k]->box_t);
    }
}

int erf_run(struct erf_result **out, struct graph *g, int node, int c, int f, int t, int n, const float *x,
            const struct erf_opts *o, const struct progress *p)
{
    *out = NULL;
    const struct erf_opts none = {0};
    if (!o) o = &none;
    if (node < 1 || node >= g->n_nodes) return status_set(STATUS_INVALID, "erf: node %d out of range", node);
    const enum erf_input input = o->input;
    if (input == ERF_INPUT_ZERO) n = 1;
    else if (input == ERF_INPUT_NOISE) n = o->n > 0 ? o->n : ERF_DEFAULT_N;
    else if (!x || n < 1) return status_set(STATUS_INVALID, "erf: no inputs");
    struct node_info *info = mem_alloc(sizeof *info * (size_t)g->n_nodes);
    if (!info) return status_set(STATUS_NOMEM, "erf: out of memory");
    int s = graph_describe(g, c, f, t, info);
    const struct node_info tap = info[node];
    mem_free(info);
    if (s) return s;

    struct erf_result *r = mem_calloc(1, sizeof *r);
    double *sums = NULL;
    float *xb = NULL, *dnode = NULL, *dx = NULL;
    struct plan *plan = NULL;
    const long in_sz = (long)c * f * t, tap_sz = (long)tap.c * tap.f * tap.t;
    int batch = o->batch > 0 ? o->batch : 16;
    if (batch > n) batch = n;
    if (!r) {
        s = status_set(STATUS_NOMEM, "erf: out of memory");
        goto fail;
    }
    r->n_channels = c, r->n_mels = f, r->n_frames = t;
    r->n_total = n;
    r->input = input;
    r->node = node;
    if (g->nodes[node].name[0]) snprintf(r->layer, sizeof r->layer, "%s", g->nodes[node].name);
    else snprintf(r->layer, sizeof r->layer, "node %d", node);
    r->tap_c = tap.c, r->tap_f = tap.f, r->tap_t = tap.t;
    r->unit_f = tap.f / 2, r->unit_t = tap.t / 2;
    if ((s = erf_rf_box(g, node, f, t, r->unit_f, r->unit_t, r->box, r->whole))) goto fail;
    const long size[2] = {f, t};
    for (int d = 0; d < 2; d++) {
        r->rf[d] = r->box[d][1] - r->box[d][0] + 1;
        r->crop[d][0] = r->box[d][0] < 0 ? 0 : r->box[d][0];
        r->crop[d][1] = r->box[d][1] >= size[d] ? size[d] - 1 : r->box[d][1];
        long mid = floor_half(r->box[d][0] + r->box[d][1]);
        r->centre[d] = (int)(mid < 0 ? 0 : mid >= size[d] ? size[d] - 1 : mid);
    }
    r->m68.frac = 0.68, r->m95.frac = 0.95;
    r->map = mem_calloc((size_t)f * t, sizeof *r->map);
    r->channels = mem_calloc((size_t)in_sz, sizeof *r->channels);
    sums = mem_calloc((size_t)in_sz, sizeof *sums);
    dnode = mem_calloc((size_t)(batch * tap_sz), sizeof *dnode);
    dx = mem_alloc(sizeof *dx * (size_t)(batch * in_sz));
    if (input != ERF_INPUT_DATA) xb = mem_calloc((size_t)(batch * in_sz), sizeof *xb);
    if (!r->map || !r->channels || !sums || !dnode || !dx || (input != ERF_INPUT_DATA && !xb)) {
        s = status_set(STATUS_NOMEM, "erf: out of memory");
        goto fail;
    }
    /* the unit: the centre of every channel, summed */
    for (int i = 0; i < batch; i++)
        for (int k = 0; k < tap.c; k++)
            dnode[i * tap_sz + ((long)k * tap.f + r->unit_f) * tap.t + r->unit_t] = 1.0f;
    struct plan_opts po = {.flags = PLAN_BACKWARD, .n_threads = o->n_threads};
    if ((s = plan_create_opts(&plan, g, batch, c, f, t, &po))) goto fail;
    int fused = plan_node_fused(plan, node);
    if (fused >= 0 && fused != node && g->nodes[node].op != OP_BATCHNORM) {
        /* a node a fused group computes without storing: plan it unfused */
        plan_destroy(plan);
        plan = NULL;
        po.no_fuse = 1;
        if ((s = plan_create_opts(&plan, g, batch, c, f, t, &po))) goto fail;
    }
    struct rng base;
    rng_seed(&base, o->seed);
    for (int i0 = 0; i0 < n; i0 += batch) {
        const int nb = n - i0 < batch ? n - i0 : batch;
        const float *xin = x ? x + (long)i0 * in_sz : xb;
        if (input == ERF_INPUT_NOISE)
            for (int i = 0; i < nb; i++) {
                struct rng ri = rng_split(&base, (uint64_t)(i0 + i));
                rng_fill_normal(&ri, xb + (long)i * in_sz, in_sz, 0.0f, 1.0f);
            }
        if ((s = plan_forward(plan, nb, xin, 0, NULL))) goto fail;
        if ((s = plan_backward_from(plan, node, dnode, dx))) goto fail;
        for (int i = 0; i < nb; i++) {
            const float *d = dx + (long)i * in_sz;
            for (long j = 0; j < in_sz; j++) sums[j] += fabsf(d[j]);
        }
        r->n = i0 + nb;
        finish(r, sums);
        if (o->partial) o->partial(o->user, r);
        if (!progress_report(p, "erf", r->n, n)) {
            s = status_set(STATUS_CANCELLED, "erf: cancelled after %d of %d inputs", r->n, n);
            break;
        }
    }
    plan_destroy(plan);
    mem_free(sums);
    mem_free(xb);
    mem_free(dnode);
    mem_free(dx);
    *out = r;
    return s;
fail:
    plan_destroy(plan);
    mem_free(sums);
    mem_free(xb);
    mem_free(dnode);
    mem_free(dx);
    erf_result_destroy(r);
    return s;
}

/* ----------------------------------------------------------------------------- models */

int erf_model(struct erf_result **out, struct model *m, const struct dataset *ds,
              const struct frontend_params *frontend, const struct erf_opts *o, const struct progress *p)
{
    *out = NULL;
    const struct erf_opts none = {0};
    if (!o) o = &none;
    struct frontend_params fp;
    int s;
    if (frontend) fp = *frontend;
    else if (!(o->input == ERF_INPUT_DATA && o->x) && (s = pipeline_model_frontend(m, &fp))) return s;
    struct features *feat = NULL;
    int c = m->cfg.in_ch, f, t, n = 0;
    if (o->input == ERF_INPUT_DATA && o->x) {
        if (o->x_n < 1) return status_set(STATUS_INVALID, "erf: no inputs");
        f = o->x_f, t = o->x_t, n = o->x_n;
    } else if (o->input == ERF_INPUT_DATA) {
        if (!ds) return status_set(STATUS_INVALID, "erf: no data set (input=zero or input=noise need none)");
        if ((s = pipeline_features(&feat, m, ds, &fp, o->split, o->n > 0 ? o->n : ERF_DEFAULT_N, NULL, p))) return s;
        c = feat->n_channels, f = feat->n_mels, t = feat->n_frames, n = feat->n;
    } else {
        long samples;
        struct frontend *fe = NULL;
        if ((s = predict_window(m, &fp, &samples, NULL))) return s;
        if ((s = frontend_create(&fe, &fp))) return s;
        f = fp.n_mels;
        t = (int)frontend_frames(fe, samples);
        frontend_destroy(fe);
    }
    int node;
    char name[48];
    if (o->layer && *o->layer) {
        s = erf_find_layer(m->g, o->layer, &node);
        snprintf(name, sizeof name, "%s", o->layer);
    } else {
        struct layer_row *rows = mem_alloc(sizeof *rows * (size_t)m->g->n_nodes);
        struct model_summary sum;
        int n_rows;
        s = rows ? model_describe(m, f, t, rows, &n_rows, &sum) : (int)status_set(STATUS_NOMEM, "erf: out of memory");
        mem_free(rows);
        if (!s) s = erf_find_layer(m->g, sum.rf_layer, &node);
        if (!s) snprintf(name, sizeof name, "%s", sum.rf_layer);
    }
    if (!s) s = erf_run(out, m->g, node, c, f, t, n, feat ? feat->x : o->x, o, p);
    if (*out) snprintf((*out)->layer, sizeof (*out)->layer, "%s", name);
    features_destroy(feat);
    return s;
}

/* ----------------------------------------------------------------------------- CSV */

int erf_write_csv(const struct erf_result *r, const char *path)
{
    struct strbuf b = {0};
    strbuf_puts(&b, "f,t,df,dt,erf,erf_rel");
    if (r->n_channels > 1)
        for (int c = 0; c < r->n_channels; c++) strbuf_printf(&b, ",erf_c%d", c);
    strbuf_puts(&b, "\n");
    const long cells = (long)r->n_mels * r->n_frames;
    for (long i = r->crop[0][0]; i <= r->crop[0][1]; i++)
        for (long j = r->crop[1][0]; j <= r->crop[1][1]; j++) {
            const long k = i * r->n_frames + j;
            strbuf_printf(&b, "%ld,%ld,%ld,%ld,%.9g,%.9g", i, j, i - r->centre[0], j - r->centre[1], r->map[k],
                          r->peak > 0 ? r->map[k] / r->peak : 0.0);
            if (r->n_channels > 1)
                for (int c = 0; c < r->n_channels; c++) strbuf_printf(&b, ",%.9g", r->channels[c * cells + k]);
            strbuf_puts(&b, "\n");
        }
    int s = b.failed ? (int)status_set(STATUS_NOMEM, "%s: out of memory", path) : fs_write_file(path, b.p, b.n, 0);
    strbuf_fini(&b);
    return s;
}
