/* zoo.c: the model zoo: configs, graph builders, initialisation and the per-layer table.
 *
 * The builders follow DESIGN.md section 4 and the PyTorch reference modules in
 * shared/peers/basin_ref.py tensor for tensor, so state dicts map one to one.
 * ref: mission-anchors 2.1-2.4 (CP-ResNet), 4.2 (SP4ASC Cnn6_60k), 5 (PANNs CNN10).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/progress.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/model/model.h"

static const char *const arch_names[ARCH_COUNT] = {"cpresnet", "sepnet", "cnn10"};

const char *arch_name(enum arch a)
{
    return (unsigned)a < ARCH_COUNT ? arch_names[a] : "?";
}

int arch_parse(const char *name, enum arch *out)
{
    for (int a = 0; a < ARCH_COUNT; a++)
        if (!strcmp(name, arch_names[a])) {
            *out = (enum arch)a;
            return STATUS_OK;
        }
    return status_set(STATUS_INVALID, "unknown architecture '%s' (cpresnet, sepnet, cnn10)", name);
}

void model_config_default(struct model_config *c, enum arch a)
{
    memset(c, 0, sizeof *c);
    c->arch = a;
    c->in_ch = 1;
    c->classes = 10;
    c->groups = 1;
    switch (a) {
    case ARCH_CPRESNET:
        c->width = 128; /* ref: mission-anchors 2.1, --width default */
        c->rho = 5;     /* ref: exp_cp_resnet.py default */
        c->blocks[0] = c->blocks[1] = c->blocks[2] = 4;
        break;
    case ARCH_SEPNET:
        c->mels = 256;
        c->n_channels = 4;
        c->channels[0] = 64;
        c->channels[1] = c->channels[2] = c->channels[3] = 128;
        break;
    case ARCH_CNN10:
        c->mels = 64;
        c->width_mult = 1.0;
        break;
    default:
        break;
    }
}

static const char *const keys_cpresnet[] = {"width", "rho", "damping", "groups", "roll",
                                            "blocks", "in_ch", "classes", "stages", "inner", NULL};
static const char *const keys_sepnet[] = {"channels", "mels", "classes", "in_ch", NULL};
static const char *const keys_cnn10[] = {"width", "mels", "classes", "in_ch", NULL};

const char *const *model_config_keys(enum arch a)
{
    return a == ARCH_CPRESNET ? keys_cpresnet : a == ARCH_SEPNET ? keys_sepnet : keys_cnn10;
}

static int parse_int(const char *key, const char *v, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || (errno && errno != ERANGE))
        return status_set(STATUS_INVALID, "%s=%s: not an integer", key, v);
    if (errno == ERANGE || x < -1000000000L || x > 1000000000L)
        return status_set(STATUS_INVALID, "%s=%s: out of range (far beyond any model)", key, v);
    *out = (int)x;
    return STATUS_OK;
}

static int parse_double(const char *key, const char *v, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || (errno && errno != ERANGE))
        return status_set(STATUS_INVALID, "%s=%s: not a number", key, v);
    if (errno == ERANGE || !isfinite(x))
        return status_set(STATUS_INVALID, "%s=%s: out of range", key, v);
    *out = x;
    return STATUS_OK;
}

/* "4,3,1" or "[4, 3, 1]" into out[0..max); returns the count through n. */
static int parse_list(const char *key, const char *v, int *out, int max, int *n)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", v);
    char *s = buf;
    size_t len = strlen(s);
    if (len && s[0] == '[' && s[len - 1] == ']') {
        s[len - 1] = 0;
        s++;
    }
    *n = 0;
    for (char *tok = strtok(s, ", "); tok; tok = strtok(NULL, ", ")) {
        if (*n == max)
            return status_set(STATUS_INVALID, "%s=%s: more than %d values", key, v, max);
        if (parse_int(key, tok, &out[(*n)++])) return status_set(STATUS_INVALID, "%s=%s: '%s' is not an integer", key, v, tok);
    }
    if (!*n) return status_set(STATUS_INVALID, "%s=%s: no values", key, v);
    return STATUS_OK;
}

int model_config_set(struct model_config *c, const char *key, const char *value)
{
    const char *const *keys = model_config_keys(c->arch);
    int known = 0;
    for (int i = 0; keys[i]; i++) known |= !strcmp(keys[i], key);
    if (!known) {
        char list[160] = "";
        for (int i = 0; keys[i]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", keys[i]);
        return status_set(STATUS_INVALID, "%s has no option '%s' (options: %s)", arch_name(c->arch),
                          key, list);
    }
    if (!strcmp(key, "in_ch")) return parse_int(key, value, &c->in_ch);
    if (!strcmp(key, "classes")) return parse_int(key, value, &c->classes);
    if (!strcmp(key, "mels")) return parse_int(key, value, &c->mels);
    if (!strcmp(key, "rho")) return parse_int(key, value, &c->rho);
    if (!strcmp(key, "groups")) return parse_int(key, value, &c->groups);
    if (!strcmp(key, "roll")) return parse_int(key, value, &c->roll);
    if (!strcmp(key, "damping")) return parse_double(key, value, &c->damping);
    if (!strcmp(key, "width"))
        return c->arch == ARCH_CNN10 ? parse_double(key, value, &c->width_mult)
                                     : parse_int(key, value, &c->width);
    if (!strcmp(key, "blocks")) {
        int b[3], n;
        if (parse_list(key, value, b, 3, &n)) return STATUS_INVALID;
        if (n != 3) return status_set(STATUS_INVALID, "blocks=%s: needs three counts (stages 1, 2, 3)", value);
        memcpy(c->blocks, b, sizeof b);
        return STATUS_OK;
    }
    if (!strcmp(key, "channels"))
        return parse_list(key, value, c->channels, MODEL_MAX_CHANNELS, &c->n_channels);
    if (!strcmp(key, "stages") || !strcmp(key, "inner")) {
        int v[12], n, want = key[0] == 's' ? 3 : 12;
        if (parse_list(key, value, v, want, &n)) return STATUS_INVALID;
        if (n != want) return status_set(STATUS_INVALID, "%s=%s: needs %d widths", key, value, want);
        memcpy(key[0] == 's' ? c->stages : c->inner, v, sizeof(int) * (size_t)want);
        return STATUS_OK;
    }
    return status_set(STATUS_INVALID, "option '%s' is not handled", key);
}

/* 1 when a cpresnet config sets stages or inner (structured pruning's widths). */
static int cpresnet_custom(const struct model_config *c)
{
    int any = 0;
    for (int i = 0; i < 3; i++) any |= c->stages[i] != 0;
    for (int i = 0; i < 12; i++) any |= c->inner[i] != 0;
    return any;
}

static int cpresnet_stage_width(const struct model_config *c, int s)
{
    return c->stages[s] ? c->stages[s] : c->width << s;
}

int model_config_validate(const struct model_config *c)
{
    const char *a = arch_name(c->arch);
    if ((unsigned)c->arch >= ARCH_COUNT) return status_set(STATUS_INVALID, "unknown architecture");
    if (c->in_ch < 1 || c->in_ch > 64) return status_set(STATUS_INVALID, "%s: in_ch=%d (1..64)", a, c->in_ch);
    if (c->classes < 1 || c->classes > 100000)
        return status_set(STATUS_INVALID, "%s: classes=%d (1..100000)", a, c->classes);
    switch (c->arch) {
    case ARCH_CPRESNET:
        if (c->width < 1 || c->width > 4096)
            return status_set(STATUS_INVALID, "cpresnet: width=%d (1..4096)", c->width);
        if (c->rho < 0 || c->rho > 30) return status_set(STATUS_INVALID, "cpresnet: rho=%d (0..30)", c->rho);
        if (!(c->damping >= 0 && c->damping <= 1))
            return status_set(STATUS_INVALID, "cpresnet: damping=%g (0 = off, or 0 < m <= 1)", c->damping);
        if (c->groups < 1 || c->width % c->groups)
            return status_set(STATUS_INVALID, "cpresnet: groups=%d must divide width=%d", c->groups, c->width);
        for (int i = 0; i < 15; i++) {
            int w = i < 3 ? c->stages[i] : c->inner[i - 3];
            if (w < 0 || w > 65536 || (w && c->groups > 0 && w % c->groups))
                return status_set(STATUS_INVALID, "cpresnet: %s width %d (0, or 1..65536 divisible by groups=%d)",
                                  i < 3 ? "stage" : "block", w, c->groups);
        }
        if (c->roll != 0 && c->roll != 1) return status_set(STATUS_INVALID, "cpresnet: roll=%d (0 or 1)", c->roll);
        for (int s = 0; s < 3; s++)
            if (c->blocks[s] < 0 || c->blocks[s] > 4)
                return status_set(STATUS_INVALID, "cpresnet: blocks=%d,%d,%d (each 0..4)", c->blocks[0],
                                  c->blocks[1], c->blocks[2]);
        break;
    case ARCH_SEPNET:
        if (c->n_channels < 1 || c->n_channels > MODEL_MAX_CHANNELS)
            return status_set(STATUS_INVALID, "sepnet: %d blocks (1..%d)", c->n_channels, MODEL_MAX_CHANNELS);
        for (int i = 0; i < c->n_channels; i++)
            if (c->channels[i] < 1 || c->channels[i] > 4096)
                return status_set(STATUS_INVALID, "sepnet: channels[%d]=%d (1..4096)", i, c->channels[i]);
        __attribute__((fallthrough)); /* and check mels */
    case ARCH_CNN10:
        if (c->mels < 1 || c->mels > MODEL_MAX_MELS)
            return status_set(STATUS_INVALID, "%s: mels=%d (1..%d)", a, c->mels, MODEL_MAX_MELS);
        if (c->arch == ARCH_CNN10 && !(c->width_mult > 0 && c->width_mult <= 16))
            return status_set(STATUS_INVALID, "cnn10: width=%g (0 < width <= 16)", c->width_mult);
        {
            /* bn0 fixes F at mels: it must survive every pool (and conv) of the network. */
            int f, t, s = model_min_input(c, &f, &t);
            if (s) return s;
            if (c->mels < f)
                return status_set(STATUS_INVALID,
                                  "%s: mels=%d is too small: the network's pools need at least %d "
                                  "mel bins", a, c->mels, f);
        }
        break;
    default:
        break;
    }
    return STATUS_OK;
}

void model_config_str(const struct model_config *c, char *buf, int n_buf)
{
    size_t n = (size_t)n_buf;
    switch (c->arch) {
    case ARCH_CPRESNET:
        snprintf(buf, n, "width=%d rho=%d damping=%g groups=%d roll=%d blocks=%d,%d,%d in_ch=%d classes=%d",
                 c->width, c->rho, c->damping, c->groups, c->roll, c->blocks[0], c->blocks[1],
                 c->blocks[2], c->in_ch, c->classes);
        if (cpresnet_custom(c)) {
            snprintf(buf + strlen(buf), n - strlen(buf), " stages=%d,%d,%d inner=", c->stages[0], c->stages[1],
                     c->stages[2]);
            for (int i = 0; i < 12; i++)
                snprintf(buf + strlen(buf), n - strlen(buf), "%s%d", i ? "," : "", c->inner[i]);
        }
        break;
    case ARCH_SEPNET: {
        char ch[96] = "";
        for (int i = 0; i < c->n_channels; i++)
            snprintf(ch + strlen(ch), sizeof ch - strlen(ch), "%s%d", i ? "," : "", c->channels[i]);
        snprintf(buf, n, "channels=%s mels=%d in_ch=%d classes=%d", ch, c->mels, c->in_ch, c->classes);
        break;
    }
    default:
        snprintf(buf, n, "width=%g mels=%d in_ch=%d classes=%d", c->width_mult, c->mels, c->in_ch,
                 c->classes);
        break;
    }
}

void cpresnet_kernels(int rho, int k[3][4][2])
{
    /* ref: mission-anchors 2.2; cpjku_dcase20 models/cp_resnet.py get_model_based_on_rho.
     * Each step of rho turns one more 1x1 into a 3x3. */
    int e = rho - 7;
    int k1[3][4] = {{3, 3 - 2 * (-e > 6), 3 - 2 * (-e > 4), 3 - 2 * (-e > 2)},
                    {3 - 2 * (-e > 0), 1 + 2 * (e > 1), 1 + 2 * (e > 3), 1 + 2 * (e > 5)},
                    {1 + 2 * (e > 7), 1 + 2 * (e > 9), 1 + 2 * (e > 11), 1 + 2 * (e > 13)}};
    int k2[3][4] = {{1, 3 - 2 * (-e > 5), 3 - 2 * (-e > 3), 3 - 2 * (-e > 1)},
                    {1 + 2 * (e > 0), 1 + 2 * (e > 2), 1 + 2 * (e > 4), 1 + 2 * (e > 6)},
                    {1 + 2 * (e > 8), 1 + 2 * (e > 10), 1 + 2 * (e > 12), 1 + 2 * (e > 14)}};
    for (int s = 0; s < 3; s++)
        for (int b = 0; b < 4; b++) {
            k[s][b][0] = k1[s][b];
            k[s][b][1] = k2[s][b];
        }
}

static void build_cpresnet(struct graph *g, const struct model_config *c)
{
    int ks[3][4][2];
    cpresnet_kernels(c->rho, ks);
    float m = (float)c->damping;
    int custom = cpresnet_custom(c);
    int x = graph_input(g, c->in_ch);
    x = graph_conv2d(g, "stem.conv", x, cpresnet_stage_width(c, 0), 5, 5, 2, 2, 1, 1, 1, 1, 1, m);
    x = graph_batchnorm(g, "stem.bn", x, 1);
    int ci = cpresnet_stage_width(c, 0);
    for (int s = 0, k = 0; s < 3; s++) {
        int co = cpresnet_stage_width(c, s);
        for (int b = 0; b < c->blocks[s]; b++, k++) {
            int mid = c->inner[k] ? c->inner[k] : co;
            char name[48];
            int k1 = ks[s][b][0], k2 = ks[s][b][1];
            /* Channel roll (DCASE21 report 3.3; basin_ref Block): the conv branch sees the
             * input rotated by one group, the shortcut the input itself. */
            int br = (c->roll && c->groups > 1) ? graph_roll(g, x, ci / c->groups) : x;
            snprintf(name, sizeof name, "s%d.b%d.conv1", s + 1, b + 1);
            /* ref: mission-anchors 2.1, padding k // 3 */
            int h = graph_conv2d(g, name, br, mid, k1, k1, 1, 1, k1 / 3, k1 / 3, 1, 1, c->groups, m);
            snprintf(name, sizeof name, "s%d.b%d.bn1", s + 1, b + 1);
            h = graph_batchnorm(g, name, h, 1);
            snprintf(name, sizeof name, "s%d.b%d.conv2", s + 1, b + 1);
            h = graph_conv2d(g, name, h, co, k2, k2, 1, 1, k2 / 3, k2 / 3, 1, 1, c->groups, m);
            snprintf(name, sizeof name, "s%d.b%d.bn2", s + 1, b + 1);
            h = graph_batchnorm(g, name, h, 0);
            int sc = x;
            /* with default widths ci != co exactly at the first block of stages 2 and 3 */
            if (ci != co || (custom && s > 0 && b == 0)) {
                snprintf(name, sizeof name, "s%d.b%d.proj.conv", s + 1, b + 1);
                sc = graph_conv2d(g, name, x, co, 1, 1, 1, 1, 0, 0, 1, 1, 1, m);
                snprintf(name, sizeof name, "s%d.b%d.proj.bn", s + 1, b + 1);
                sc = graph_batchnorm(g, name, sc, 0);
            }
            x = graph_add(g, h, sc, 1);
            ci = co;
            /* ref: mission-anchors 2.1, maxpool after stage-1 blocks 1, 2 and 4 */
            if (s == 0 && (b == 0 || b == 1 || b == 3)) {
                snprintf(name, sizeof name, "s1.b%d.pool", b + 1);
                x = graph_maxpool(g, name, x, 2, 2);
            }
        }
    }
    x = graph_conv2d(g, "head.conv", x, c->classes, 1, 1, 1, 1, 0, 0, 1, 1, 1, m);
    x = graph_batchnorm(g, "head.bn", x, 0);
    x = graph_mean(g, x, 2);
    graph_mean(g, x, 3);
}

/* Mean over F, then max + mean over T (ref: mission-anchors 4.2, 5). */
static int pool_head(struct graph *g, int x)
{
    x = graph_mean(g, x, 2);
    return graph_add(g, graph_max(g, x, 3), graph_mean(g, x, 3), 0);
}

static void build_sepnet(struct graph *g, const struct model_config *c)
{
    int x = graph_input(g, c->in_ch);
    x = graph_batchnorm_freq(g, "bn0", x, c->mels);
    for (int b = 0; b < c->n_channels; b++) {
        char name[48];
        int co = c->channels[b];
        snprintf(name, sizeof name, "b%d.pw", b + 1);
        int h = graph_conv2d(g, name, x, co, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0);
        /* ref: mission-anchors 4.2: (1, 3) along T dilated (1, 2) and (3, 1) along F dilated
         * (2, 1), both depthwise, summed */
        snprintf(name, sizeof name, "b%d.dw_t", b + 1);
        int ht = graph_conv2d(g, name, h, co, 1, 3, 1, 1, 0, 2, 1, 2, co, 0);
        snprintf(name, sizeof name, "b%d.dw_f", b + 1);
        int hf = graph_conv2d(g, name, h, co, 3, 1, 1, 1, 2, 0, 2, 1, co, 0);
        snprintf(name, sizeof name, "b%d.bn", b + 1);
        h = graph_batchnorm(g, name, graph_add(g, ht, hf, 0), 1);
        snprintf(name, sizeof name, "b%d.pool", b + 1);
        x = graph_avgpool(g, name, h, 2, 2);
    }
    int ch = c->channels[c->n_channels - 1];
    x = graph_dropout(g, pool_head(g, x), 0.2f);
    x = graph_relu(g, graph_linear(g, "fc1", x, ch, 1));
    x = graph_dropout(g, x, 0.2f);
    graph_linear(g, "fc2", x, c->classes, 1);
}

static void cnn10_widths(const struct model_config *c, int ch[4])
{
    static const int base[4] = {64, 128, 256, 512};
    for (int i = 0; i < 4; i++) {
        /* basin_ref: max(1, int(round(c * width))); Python rounds half to even, as nearbyint */
        double v = nearbyint(base[i] * c->width_mult);
        ch[i] = v < 1 ? 1 : (int)v;
    }
}

static void build_cnn10(struct graph *g, const struct model_config *c)
{
    int ch[4];
    cnn10_widths(c, ch);
    int x = graph_input(g, c->in_ch);
    x = graph_batchnorm_freq(g, "bn0", x, c->mels);
    for (int b = 0; b < 4; b++) {
        char name[48];
        snprintf(name, sizeof name, "b%d.conv1", b + 1);
        x = graph_conv2d(g, name, x, ch[b], 3, 3, 1, 1, 1, 1, 1, 1, 1, 0);
        snprintf(name, sizeof name, "b%d.bn1", b + 1);
        x = graph_batchnorm(g, name, x, 1);
        snprintf(name, sizeof name, "b%d.conv2", b + 1);
        x = graph_conv2d(g, name, x, ch[b], 3, 3, 1, 1, 1, 1, 1, 1, 1, 0);
        snprintf(name, sizeof name, "b%d.bn2", b + 1);
        x = graph_batchnorm(g, name, x, 1);
        snprintf(name, sizeof name, "b%d.pool", b + 1);
        x = graph_dropout(g, graph_avgpool(g, name, x, 2, 2), 0.2f);
    }
    x = pool_head(g, x);
    x = graph_relu(g, graph_linear(g, "fc1", x, ch[3], 1));
    graph_linear(g, "fc_out", x, c->classes, 1);
}

/* The nodes and tensors of a range-checked config, without the store. */
static int build_nodes(struct graph **out, const struct model_config *c)
{
    *out = NULL;
    struct graph *g = graph_create();
    if (!g) return STATUS_NOMEM;
    if (c->arch == ARCH_CPRESNET) build_cpresnet(g, c);
    else if (c->arch == ARCH_SEPNET) build_sepnet(g, c);
    else build_cnn10(g, c);
    if (g->error) {
        int status = g->error;
        graph_destroy(g);
        return status;
    }
    *out = g;
    return STATUS_OK;
}

int model_build_layout(struct graph **out, const struct model_config *c)
{
    *out = NULL;
    int status = model_config_validate(c);
    return status ? status : build_nodes(out, c);
}

int model_build(struct graph **out, const struct model_config *c)
{
    struct graph *g;
    int status = model_build_layout(&g, c);
    if (status) return status;
    if ((status = graph_finish(g))) {
        graph_destroy(g);
        return status;
    }
    *out = g;
    return STATUS_OK;
}

int model_min_input(const struct model_config *c, int *f, int *t)
{
    struct graph *g;
    int status = build_nodes(&g, c);
    if (!status) status = graph_min_input(g, f, t);
    graph_destroy(g);
    return status;
}

/* ----------------------------------------------------------------------------- init */

static long fan_in(const struct graph_tensor *t)
{
    return t->numel / t->shape[0];
}

static long fan_out(const struct graph_tensor *t)
{
    return t->n_dims == 4 ? (long)t->shape[0] * t->shape[2] * t->shape[3] : t->shape[0];
}

/* Models of at least this many parameters report progress while their weights are drawn,
 * every INIT_CHUNK weights (~30 ms of drawing) or 1 % of them, whichever comes first. */
#define INIT_REPORT_MIN (1L << 23)
#define INIT_CHUNK (1L << 20)

struct init_progress {
    const struct progress *p;
    long done, total, next;
    int reported;
};

/* Fill n floats of d in chunks, reporting to ip; the generator's stream is the same as
 * one call's (it keeps its spare normal between calls). */
static int fill(struct init_progress *ip, struct rng *r, float *d, long n, int normal, float a,
                float b)
{
    for (long i = 0; i < n; i += INIT_CHUNK) {
        long k = n - i < INIT_CHUNK ? n - i : INIT_CHUNK;
        if (normal) rng_fill_normal(r, d + i, k, a, b);
        else rng_fill_uniform(r, d + i, k, a, b);
        ip->done += k;
        if (ip->total >= INIT_REPORT_MIN && ip->done >= ip->next) {
            long step = ip->total / 100 > INIT_CHUNK ? INIT_CHUNK : ip->total / 100;
            ip->next = ip->done + step;
            ip->reported = 1;
            if (!progress_report(ip->p, "model", ip->done, ip->total))
                return status_set(STATUS_CANCELLED, "cancelled");
        }
    }
    return STATUS_OK;
}

static int init_weights(struct model *m, uint64_t seed, const struct progress *p)
{
    struct init_progress ip = {p, 0, graph_param_count(m->g), 0, 0};
    int status = STATUS_OK;
    struct graph *g = m->g;
    struct rng r;
    rng_seed(&r, seed);
    for (long i = 0; i < g->store.n_params; i++) g->store.mask[i] = 1;
    g->masked = 0;
    int n_blocks = m->cfg.blocks[0] + m->cfg.blocks[1] + m->cfg.blocks[2];
    for (int i = 0; i < g->n_tensors; i++) {
        const struct graph_tensor *t = &g->tensors[i];
        float *d = graph_tensor_data(g, i);
        const char *nm = t->name;
        switch (t->kind) {
        case TENSOR_BN_WEIGHT:
        case TENSOR_RUNNING_VAR:
            for (long j = 0; j < t->numel; j++) d[j] = 1;
            continue;
        case TENSOR_BN_BIAS:
        case TENSOR_RUNNING_MEAN:
            memset(d, 0, (size_t)t->numel * sizeof *d);
            continue;
        case TENSOR_BIAS:
            if (m->cfg.arch == ARCH_SEPNET) {
                /* PyTorch's nn.Linear: bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
                const struct graph_tensor *w = &g->tensors[i - 1];
                float b = (float)(1.0 / sqrt((double)fan_in(w)));
                status = fill(&ip, &r, d, t->numel, 0, -b, b);
            } else {
                memset(d, 0, (size_t)t->numel * sizeof *d);
            }
            if (status) return status;
            continue;
        case TENSOR_WEIGHT:
            break;
        }
        if (m->cfg.arch == ARCH_CPRESNET) {
            /* ref: mission-anchors 2.1 and cp_resnet.py (weight_init "fixup"): Kaiming normal
             * (fan_in, relu) everywhere, the classifier zero, then per block conv1 ~
             * N(0, L^-1/2 sqrt(2 / (k k out))), conv2 zero, shortcut ~ N(0, sqrt(2 / out)),
             * L the number of blocks. */
            size_t len = strlen(nm);
            double std = sqrt(2.0 / (double)fan_in(t));
            if (!strcmp(nm, "head.conv.weight") || (len > 13 && !strcmp(nm + len - 13, ".conv2.weight")))
                std = 0;
            else if (len > 13 && !strcmp(nm + len - 13, ".conv1.weight"))
                std = pow((double)n_blocks, -0.5) * sqrt(2.0 / (double)fan_out(t));
            else if (strstr(nm, ".proj.conv.weight"))
                std = sqrt(2.0 / (double)fan_out(t));
            status = fill(&ip, &r, d, t->numel, 1, 0.0f, (float)std);
        } else if (m->cfg.arch == ARCH_SEPNET) {
            /* PyTorch's default: kaiming_uniform(a = sqrt 5), i.e. U(+-1/sqrt(fan_in)) */
            float b = (float)(1.0 / sqrt((double)fan_in(t)));
            status = fill(&ip, &r, d, t->numel, 0, -b, b);
        } else {
            /* ref: mission-anchors 5, PANNs init_layer: Xavier uniform */
            float b = (float)sqrt(6.0 / (double)(fan_in(t) + fan_out(t)));
            status = fill(&ip, &r, d, t->numel, 0, -b, b);
        }
        if (status) return status;
    }
    if (g->store.m) memset(g->store.m, 0, (size_t)g->store.n_params * sizeof(float));
    if (g->store.v) memset(g->store.v, 0, (size_t)g->store.n_params * sizeof(float));
    if (ip.reported && !progress_report(p, "model", ip.total, ip.total))
        return status_set(STATUS_CANCELLED, "cancelled");
    return STATUS_OK;
}

void model_init_weights(struct model *m, uint64_t seed)
{
    init_weights(m, seed, NULL);
}

int model_check_memory(const struct model_config *c, const struct graph *layout, int training)
{
    size_t need = graph_store_bytes(layout, training), avail = mem_available_bytes();
    if (need <= avail) return STATUS_OK;
    char cfg[256], n[32], a[32], count[32];
    double np = (double)graph_param_count(layout);
    model_config_str(c, cfg, sizeof cfg);
    if (np >= 1e9) snprintf(count, sizeof count, "%.2f billion", np / 1e9);
    else snprintf(count, sizeof count, "%.1f million", np / 1e6);
    return status_set(STATUS_NOMEM,
                      "%s %s needs about %s for its %s parameters (%s), this machine has %s "
                      "available",
                      arch_name(c->arch), cfg, mem_bytes_str(n, sizeof n, (double)need), count,
                      training ? "weights, masks, gradients and optimiser moments: 20 bytes each"
                               : "weights and pruning masks: 8 bytes each; training adds 12",
                      mem_bytes_str(a, sizeof a, (double)avail));
}

int model_create_progress(struct model **out, const struct model_config *c, uint64_t seed,
                          const struct progress *p)
{
    *out = NULL;
    struct graph *g;
    int status = model_build_layout(&g, c);
    if (status) return status;
    struct model *m = NULL;
    if ((status = model_check_memory(c, g, 0)) || (status = graph_finish(g))) goto fail;
    if (!(m = mem_calloc(1, sizeof *m))) {
        status = STATUS_NOMEM;
        goto fail;
    }
    m->cfg = *c;
    m->g = g;
    g = NULL;
    if ((status = init_weights(m, seed, p))) goto fail;
    *out = m;
    return STATUS_OK;
fail:
    graph_destroy(g);
    model_destroy(m);
    return status;
}

int model_create(struct model **out, const struct model_config *c, uint64_t seed)
{
    return model_create_progress(out, c, seed, NULL);
}

void model_destroy(struct model *m)
{
    if (!m) return;
    graph_destroy(m->g);
    mem_free(m->frontend);
    mem_free(m->input);
    for (int i = 0; i < m->n_labels; i++) mem_free(m->labels[i]);
    mem_free(m->labels);
    mem_free(m->norm_mean);
    mem_free(m->norm_std);
    mem_free(m);
}

void model_default_input(const struct model *m, int *f, int *t)
{
    *f = m->cfg.arch == ARCH_CPRESNET ? 256 : m->cfg.mels;
    *t = m->cfg.arch == ARCH_CNN10 ? 1001 : 431;
}

int model_describe(const struct model *m, int f, int t, struct layer_row *rows, int *n_rows,
                   struct model_summary *sum)
{
    const struct graph *g = m->g;
    struct node_info *info = mem_calloc((size_t)g->n_nodes, sizeof *info);
    if (!info) return STATUS_NOMEM;
    int status = graph_describe(g, m->cfg.in_ch, f, t, info);
    if (status) {
        mem_free(info);
        return status;
    }
    memset(sum, 0, sizeof *sum);
    sum->f = f, sum->t = t;
    /* The network's receptive field: that of the map the global pooling head reads (the
     * input of the first global reduction), reported under the nearest named layer. */
    int head = g->output;
    for (int i = 1; i < g->n_nodes; i++)
        if (g->nodes[i].op == OP_MEAN || g->nodes[i].op == OP_MAX) {
            head = g->nodes[i].in[0];
            break;
        }
    sum->rf[0] = info[head].rf[0], sum->rf[1] = info[head].rf[1];
    while (!g->nodes[head].name[0] && g->nodes[head].in[0] >= 0 && g->nodes[head].in[1] < 0)
        head = g->nodes[head].in[0];
    snprintf(sum->rf_layer, sizeof sum->rf_layer, "%s", g->nodes[head].name);
    int k = 0;
    for (int i = 1; i < g->n_nodes; i++) {
        const struct node *nd = &g->nodes[i];
        const struct node_info *ni = &info[i];
        sum->macs += ni->macs;
        if (nd->op != OP_CONV2D && nd->op != OP_BATCHNORM && nd->op != OP_LINEAR &&
            nd->op != OP_MAXPOOL && nd->op != OP_AVGPOOL)
            continue;
        struct layer_row *r = &rows[k++];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "%s", nd->name);
        r->op = graph_op_name(nd->op);
        r->node = i;
        r->c = ni->c, r->f = ni->f, r->t = ni->t;
        r->params = ni->params;
        r->macs = ni->macs;
        r->rf[0] = ni->rf[0], r->rf[1] = ni->rf[1];
        r->whole[0] = ni->whole[0], r->whole[1] = ni->whole[1];
        if (nd->op == OP_CONV2D) {
            int n = snprintf(r->detail, sizeof r->detail, "%dx%d", nd->k[0], nd->k[1]);
            if (nd->stride[0] > 1 || nd->stride[1] > 1)
                n += snprintf(r->detail + n, sizeof r->detail - (size_t)n, " s%d", nd->stride[0]);
            if (nd->dil[0] > 1 || nd->dil[1] > 1)
                n += snprintf(r->detail + n, sizeof r->detail - (size_t)n, " d%d,%d", nd->dil[0], nd->dil[1]);
            if (nd->groups > 1)
                n += snprintf(r->detail + n, sizeof r->detail - (size_t)n,
                              nd->groups == nd->c ? " dw" : " g%d", nd->groups);
            if (nd->damping > 0 && nd->k[0] >= 3)
                snprintf(r->detail + n, sizeof r->detail - (size_t)n, " damp %g", nd->damping);
        } else if (nd->op == OP_MAXPOOL || nd->op == OP_AVGPOOL) {
            snprintf(r->detail, sizeof r->detail, "%dx%d s%d", nd->k[0], nd->k[1], nd->stride[0]);
        } else if (nd->op == OP_BATCHNORM) {
            snprintf(r->detail, sizeof r->detail, nd->axis == 2 ? "over mels" : "%s", nd->relu ? "+relu" : "");
        } else {
            snprintf(r->detail, sizeof r->detail, "%d->%d", info[nd->in[0]].c, nd->c);
        }
    }
    *n_rows = k;
    sum->params = graph_param_count(g);
    sum->buffers = g->store.n_buffers;
    sum->bytes_fp32 = 4.0 * sum->params;
    sum->bytes_fp16 = 2.0 * sum->params;
    sum->bytes_int8 = 1.0 * sum->params;
    mem_free(info);
    return STATUS_OK;
}
