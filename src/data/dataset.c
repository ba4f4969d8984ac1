/* dataset.c: DCASE-layout and plain-CSV data set listings, splits, classes, devices, cities.
 *
 * Key idea: every listing (meta.csv, the evaluation_setup files, a plain CSV) goes through
 * one small table reader (header + rows, quoted fields, line numbers kept), so every
 * validation message names the file and the line the same way. Items are then matched by
 * file name through one sorted index (duplicates show up as neighbours, setup rows are
 * found by binary search), and names (classes, devices, cities) are interned as sorted
 * unique lists so an item holds indices. The seeded split works on recordings, not clips,
 * so the segments of one recording (and the parallel recordings of one segment on several
 * devices) never straddle train and evaluate.
 *
 * ref: DESIGN.md section 3 (formats); DCASE 2020 task 1a development set layout (meta.csv,
 *      evaluation_setup/fold1_{train,evaluate,test}.csv); mission-anchors 4.5 (per-device
 *      metrics need the device of every clip).
 */
#include "basin/data/dataset.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"

#define UNKNOWN_NAME "unknown"

/* ----------------------------------------------------------------------------- strings */

/* A string pool: items' strings live in a few large blocks freed together. */
struct pool_block {
    struct pool_block *next;
    size_t used, cap;
    char data[];
};

struct dataset {
    enum dataset_format format;
    char *dir;                  /* base of relative file names; "" for the working directory */
    char *listing;              /* meta.csv or the CSV, as opened */
    char split_source[200];
    int seeded;                 /* split by recording with a seed */
    int n_items;
    struct dataset_item *items; /* (n_items) */
    int n_classes, n_devices, n_cities;
    const char **classes;       /* (n_classes) sorted, in the pool */
    const char **devices;       /* (n_devices) natural order */
    const char **cities;        /* (n_cities) sorted */
    int *device_seen;           /* (n_devices) */
    struct pool_block *pool;
};

static const char *pool_strn(struct dataset *ds, const char *s, size_t n)
{
    struct pool_block *b = ds->pool;
    if (!b || b->cap - b->used < n + 1) {
        size_t cap = n + 1 > 65536 ? n + 1 : 65536;
        b = mem_alloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = ds->pool;
        b->used = 0;
        b->cap = cap;
        ds->pool = b;
    }
    char *d = b->data + b->used;
    memcpy(d, s, n);
    d[n] = 0;
    b->used += n + 1;
    return d;
}

static const char *pool_str(struct dataset *ds, const char *s)
{
    return pool_strn(ds, s, strlen(s));
}

/* Natural order: digit runs compare as numbers, so s2 < s10. */
static int natural_cmp(const char *a, const char *b)
{
    const char *a0 = a, *b0 = b;
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            while (*a == '0') a++;
            while (*b == '0') b++;
            size_t na = 0, nb = 0;
            while (isdigit((unsigned char)a[na])) na++;
            while (isdigit((unsigned char)b[nb])) nb++;
            if (na != nb) return na < nb ? -1 : 1;
            int c = strncmp(a, b, na);
            if (c) return c;
            a += na;
            b += nb;
        } else {
            if (*a != *b) return (unsigned char)*a - (unsigned char)*b;
            a++;
            b++;
        }
    }
    if (*a || *b) return (unsigned char)*a - (unsigned char)*b;
    return strcmp(a0, b0);
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static int cmp_natural(const void *x, const void *y)
{
    return natural_cmp(*(const char *const *)x, *(const char *const *)y);
}

/* Sorted unique copy of names[0..n) into *out (pool strings); returns the count or -1. */
static int intern(struct dataset *ds, const char **names, int n,
                  int (*cmp)(const void *, const void *), const char ***out)
{
    const char **sorted = mem_alloc(sizeof *sorted * (size_t)(n ? n : 1));
    if (!sorted) return -1;
    memcpy(sorted, names, sizeof *sorted * (size_t)n);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || strcmp(sorted[m - 1], sorted[i])) sorted[m++] = sorted[i];
    for (int i = 0; i < m; i++)
        if (!(sorted[i] = pool_str(ds, sorted[i]))) {
            mem_free(sorted);
            return -1;
        }
    *out = sorted;
    return m;
}

static int lookup(const char *const *names, int n, const char *s,
                  int (*cmp)(const void *, const void *))
{
    const char *const *hit = bsearch(&s, names, (size_t)n, sizeof *names, cmp);
    return hit ? (int)(hit - names) : -1;
}

/* "./audio/a.wav" and "audio/a.wav" name the same file. */
static const char *norm_name(const char *s)
{
    while (s[0] == '.' && s[1] == '/') s += 2;
    return s;
}

/* The file name without directory and extension: start and length. */
static void stem_of(const char *filename, const char **start, size_t *len)
{
    const char *base = strrchr(filename, '/');
    base = base ? base + 1 : filename;
    const char *dot = strrchr(base, '.');
    *start = base;
    *len = dot && dot > base ? (size_t)(dot - base) : strlen(base);
}

/* DCASE device suffix "-<dev>" at the end of the stem: 1-3 letters/digits, a letter first. */
static int device_suffix(const char *filename, char *dev, size_t n_dev)
{
    const char *stem;
    size_t len;
    stem_of(filename, &stem, &len);
    size_t k = len;
    while (k > 0 && stem[k - 1] != '-') k--;
    if (k == 0) return 0;
    size_t m = len - k;
    if (m < 1 || m > 3 || m + 1 > n_dev || !isalpha((unsigned char)stem[k])) return 0;
    for (size_t i = 0; i < m; i++)
        if (!isalnum((unsigned char)stem[k + i])) return 0;
    memcpy(dev, stem + k, m);
    dev[m] = 0;
    return 1;
}

/* ----------------------------------------------------------------------------- tables */

/* A delimited text file: a header and rows of exactly n_cols fields, split in place. */
struct table {
    const char *path;   /* for messages */
    char *text;
    int n_cols;
    char **head;        /* (n_cols) */
    int n_rows;
    char **cells;       /* (n_rows, n_cols) */
    int *lines;         /* (n_rows) 1-based line numbers */
    int cap_rows;
};

static void table_fini(struct table *t)
{
    mem_free(t->text);
    mem_free(t->head);
    mem_free(t->cells);
    mem_free(t->lines);
    memset(t, 0, sizeof *t);
}

static int is_pad(char c, char delim)
{
    return c == ' ' || (c == '\t' && delim != '\t');
}

/* Split line s at delim in place into fields (growing *fields); quoted fields allowed. */
static int split_fields(const struct table *t, int line, char *s, char delim, char ***fields,
                        int *n, int *cap)
{
    *n = 0;
    for (;;) {
        while (is_pad(*s, delim)) s++;
        char *start = s, *w = s;
        if (*s == '"') {
            start = w = ++s;
            for (;;) {
                if (!*s)
                    return status_set(STATUS_FORMAT, "%s:%d: unterminated quote", t->path, line);
                if (*s == '"') {
                    if (s[1] == '"') {
                        *w++ = '"';
                        s += 2;
                        continue;
                    }
                    s++;
                    break;
                }
                *w++ = *s++;
            }
            while (is_pad(*s, delim)) s++;
            if (*s && *s != delim)
                return status_set(STATUS_FORMAT, "%s:%d: text after a closing quote", t->path,
                                  line);
        } else {
            while (*s && *s != delim) s++;
            w = s;
            while (w > start && is_pad(w[-1], delim)) w--;
        }
        char end = *s;
        *w = 0;
        if (*n == *cap) {
            int c = *cap ? 2 * *cap : 8;
            char **f = mem_realloc(*fields, sizeof *f * (size_t)c);
            if (!f) return STATUS_NOMEM;
            *fields = f;
            *cap = c;
        }
        (*fields)[(*n)++] = start;
        if (!end) return STATUS_OK;
        s++;
    }
}

static int read_text(const char *path, char **out, size_t *len)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return status_set(errno == ENOENT ? STATUS_NOT_FOUND : STATUS_IO, "%s: %s", path,
                          strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        return status_set(STATUS_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    char *text = mem_alloc(n + 1);
    if (!text) {
        fclose(f);
        return STATUS_NOMEM;
    }
    size_t got = fread(text, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != n) {
        mem_free(text);
        return status_set(STATUS_IO, "%s: read error", path);
    }
    text[n] = 0;
    *out = text;
    *len = n;
    return STATUS_OK;
}

/* Read path into t. The delimiter is a tab when the header has a tab and no comma, else a
 * comma. Blank lines are skipped; rows must have the header's field count (extra empty
 * trailing fields are tolerated). */
static int table_read(struct table *t, const char *path)
{
    memset(t, 0, sizeof *t);
    t->path = path;
    size_t len = 0;
    int st = read_text(path, &t->text, &len);
    if (st) return st;
    if (memchr(t->text, 0, len)) {
        st = status_set(STATUS_FORMAT, "%s: not a text file (NUL byte at offset %zu)", path,
                        (size_t)((char *)memchr(t->text, 0, len) - t->text));
        goto fail;
    }
    char *p = t->text;
    if ((unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB && (unsigned char)p[2] == 0xBF)
        p += 3;
    char delim = 0, **fields = NULL;
    int n_fields = 0, cap_fields = 0;
    for (int line = 1; *p; line++) {
        char *eol = strchr(p, '\n'), *next;
        if (eol) {
            *eol = 0;
            next = eol + 1;
        } else {
            next = p + strlen(p);
        }
        size_t n = strlen(p);
        if (n && p[n - 1] == '\r') p[--n] = 0;
        size_t k = 0;
        while (p[k] == ' ' || p[k] == '\t') k++;
        if (p[k] == 0) {
            p = next;
            continue;
        }
        if (!delim) delim = strchr(p, '\t') && !strchr(p, ',') ? '\t' : ',';
        if ((st = split_fields(t, line, p, delim, &fields, &n_fields, &cap_fields))) {
            mem_free(fields);
            goto fail;
        }
        if (!t->head) {
            t->n_cols = n_fields;
            if (!(t->head = mem_alloc(sizeof *t->head * (size_t)n_fields))) {
                mem_free(fields);
                st = STATUS_NOMEM;
                goto fail;
            }
            memcpy(t->head, fields, sizeof *t->head * (size_t)n_fields);
            for (int i = 0; i < n_fields; i++)
                for (int j = 0; j < i; j++)
                    if (!strcasecmp(t->head[i], t->head[j])) {
                        mem_free(fields);
                        st = status_set(STATUS_FORMAT, "%s:%d: column '%s' appears twice", path,
                                        line, t->head[i]);
                        goto fail;
                    }
        } else {
            int n_used = n_fields;
            while (n_used > t->n_cols && fields[n_used - 1][0] == 0) n_used--;
            if (n_used != t->n_cols) {
                mem_free(fields);
                st = status_set(STATUS_FORMAT, "%s:%d: %d field%s, the header has %d", path,
                                line, n_used, n_used == 1 ? "" : "s", t->n_cols);
                goto fail;
            }
            if (t->n_rows == t->cap_rows) {
                int c = t->cap_rows ? 2 * t->cap_rows : 256;
                char **cells = mem_realloc(t->cells, sizeof *cells * (size_t)c * (size_t)t->n_cols);
                int *lines = cells ? mem_realloc(t->lines, sizeof *lines * (size_t)c) : NULL;
                if (cells) t->cells = cells;
                if (!lines) {
                    mem_free(fields);
                    st = STATUS_NOMEM;
                    goto fail;
                }
                t->lines = lines;
                t->cap_rows = c;
            }
            memcpy(t->cells + (size_t)t->n_rows * (size_t)t->n_cols, fields,
                   sizeof *fields * (size_t)t->n_cols);
            t->lines[t->n_rows++] = line;
        }
        p = next;
    }
    mem_free(fields);
    if (!t->head) {
        st = status_set(STATUS_FORMAT, "%s: empty file (no header)", path);
        goto fail;
    }
    return STATUS_OK;
fail:
    table_fini(t);
    return st;
}

static const char *cell(const struct table *t, int row, int col)
{
    return col < 0 ? "" : t->cells[(size_t)row * (size_t)t->n_cols + (size_t)col];
}

/* Column index of the first of names (aliases, case-insensitive), or -1. */
static int table_col(const struct table *t, const char *const *names)
{
    for (const char *const *n = names; *n; n++)
        for (int i = 0; i < t->n_cols; i++)
            if (!strcasecmp(t->head[i], *n)) return i;
    return -1;
}

static int missing_column(const struct table *t, const char *name)
{
    char have[256] = "";
    size_t k = 0;
    for (int i = 0; i < t->n_cols && k < sizeof have - 1; i++)
        k += (size_t)snprintf(have + k, sizeof have - k, "%s%s", i ? ", " : "", t->head[i]);
    return status_set(STATUS_FORMAT, "%s:1: missing column '%s' (header: %s)", t->path, name,
                      have);
}

static const char *const COL_FILENAME[] = {"filename", "file", "path", NULL};
static const char *const COL_LABEL[] = {"label", "scene_label", "scene", "class", NULL};
static const char *const COL_DEVICE[] = {"device", "source_label", NULL};
static const char *const COL_IDENTIFIER[] = {"identifier", "recording", NULL};
static const char *const COL_SPLIT[] = {"split", NULL};
static const char *const COL_FOLD[] = {"fold", NULL};
static const char *const COL_CITY[] = {"city", NULL};

/* ----------------------------------------------------------------------------- splits */

static const char *const SPLIT_NAMES[DATASET_SPLIT_COUNT] = {"train", "evaluate", "test",
                                                              "unused"};

const char *dataset_split_name(enum dataset_split split)
{
    if (split == DATASET_SPLIT_ANY) return "any";
    return (unsigned)split < DATASET_SPLIT_COUNT ? SPLIT_NAMES[split] : "?";
}

int dataset_split_parse(const char *name, enum dataset_split *out)
{
    static const struct {
        const char *name;
        enum dataset_split split;
    } names[] = {
        {"train", DATASET_SPLIT_TRAIN},      {"evaluate", DATASET_SPLIT_EVAL},
        {"eval", DATASET_SPLIT_EVAL},        {"val", DATASET_SPLIT_EVAL},
        {"valid", DATASET_SPLIT_EVAL},       {"validation", DATASET_SPLIT_EVAL},
        {"test", DATASET_SPLIT_TEST},        {"unused", DATASET_SPLIT_NONE},
        {"none", DATASET_SPLIT_NONE},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(name, names[i].name)) {
            *out = names[i].split;
            return STATUS_OK;
        }
    return status_set(STATUS_INVALID,
                      "unknown split '%s' (train, val|valid|validation|eval|evaluate, test, "
                      "unused|none)", name);
}

/* ----------------------------------------------------------------------------- items */

struct columns {
    int filename, label, device, identifier, split, fold, city;
};

/* Scratch kept while the items are built: the names as strings, before interning. */
struct names {
    const char **label, **device, **city;   /* (n_items) */
};

static char *join_path(const char *dir, const char *name)
{
    if (name[0] == '/' || !dir[0]) return mem_strdup(name);
    size_t a = strlen(dir), b = strlen(name);
    char *p = mem_alloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* City from an identifier "lyon-1162" -> "lyon" (a trailing -<digits> removed); NULL when
 * the identifier has no such tail. */
static const char *city_from_identifier(struct dataset *ds, const char *id)
{
    const char *dash = strrchr(id, '-');
    if (!dash || dash == id || !dash[1]) return NULL;
    for (const char *q = dash + 1; *q; q++)
        if (!isdigit((unsigned char)*q)) return NULL;
    return pool_strn(ds, id, (size_t)(dash - id));
}

/* City from a DCASE file name "<label>-<city>-...": NULL when it does not start so. */
static const char *city_from_filename(struct dataset *ds, const char *filename, const char *label)
{
    const char *stem;
    size_t len, n = strlen(label);
    stem_of(filename, &stem, &len);
    if (len <= n + 1 || strncmp(stem, label, n) || stem[n] != '-') return NULL;
    const char *c = stem + n + 1, *end = stem + len;
    const char *dash = memchr(c, '-', (size_t)(end - c));
    size_t m = (size_t)((dash ? dash : end) - c);
    return m ? pool_strn(ds, c, m) : NULL;
}

/* Fill ds->items from the rows of t; strings of labels / devices / cities go to nm. */
static int build_items(struct dataset *ds, const struct table *t, const struct columns *col,
                       struct names *nm)
{
    int n = t->n_rows;
    if (n == 0) return status_set(STATUS_FORMAT, "%s: lists no clips", t->path);
    ds->items = mem_calloc((size_t)n, sizeof *ds->items);
    nm->label = mem_calloc((size_t)n, sizeof *nm->label);
    nm->device = mem_calloc((size_t)n, sizeof *nm->device);
    nm->city = mem_calloc((size_t)n, sizeof *nm->city);
    if (!ds->items || !nm->label || !nm->device || !nm->city) return STATUS_NOMEM;
    ds->n_items = n;
    for (int r = 0; r < n; r++) {
        struct dataset_item *it = &ds->items[r];
        int line = t->lines[r];
        const char *fname = cell(t, r, col->filename), *label = cell(t, r, col->label);
        if (!fname[0]) return status_set(STATUS_FORMAT, "%s:%d: empty filename", t->path, line);
        if (!label[0]) return status_set(STATUS_FORMAT, "%s:%d: empty label", t->path, line);
        it->line = line;
        it->split = DATASET_SPLIT_NONE;
        if (col->split >= 0) {
            const char *s = cell(t, r, col->split);
            if (dataset_split_parse(s, &it->split))
                return status_prefix(STATUS_FORMAT, "%s:%d", t->path, line);
        }
        if (col->fold >= 0) {
            const char *s = cell(t, r, col->fold);
            char *end;
            errno = 0;
            long f = strtol(s, &end, 10);
            if (!s[0] || *end || errno || f < 1 || f > 1000000)
                return status_set(STATUS_FORMAT, "%s:%d: fold '%s' is not a positive integer",
                                  t->path, line, s);
            it->fold = (int)f;
        }
        char *path = join_path(ds->dir, fname);
        if (!path) return STATUS_NOMEM;
        it->path = pool_str(ds, path);
        mem_free(path);
        it->filename = pool_str(ds, fname);
        nm->label[r] = pool_str(ds, label);
        if (!it->path || !it->filename || !nm->label[r]) return STATUS_NOMEM;

        char dev[8];
        const char *device = cell(t, r, col->device);
        if (device[0]) nm->device[r] = pool_str(ds, device);
        else if (ds->format == DATASET_FORMAT_DCASE && device_suffix(fname, dev, sizeof dev))
            nm->device[r] = pool_str(ds, dev);
        else nm->device[r] = UNKNOWN_NAME;

        const char *id = cell(t, r, col->identifier);
        if (id[0]) {
            it->recording = pool_str(ds, id);
        } else {
            /* The stem without its "-<device>" suffix: one key for the parallel recordings
             * of a segment on several devices. */
            const char *stem;
            size_t len;
            stem_of(fname, &stem, &len);
            size_t m = nm->device[r] ? strlen(nm->device[r]) : 0;
            if (m && len > m + 1 && stem[len - m - 1] == '-' &&
                !strncmp(stem + len - m, nm->device[r], m))
                len -= m + 1;
            it->recording = pool_strn(ds, stem, len);
        }
        const char *city = cell(t, r, col->city);
        if (city[0]) nm->city[r] = pool_str(ds, city);
        else if (!(id[0] && (nm->city[r] = city_from_identifier(ds, id))) &&
                 !(nm->city[r] = city_from_filename(ds, fname, label)))
            nm->city[r] = UNKNOWN_NAME;
        if (!it->recording || !nm->device[r] || !nm->city[r]) return STATUS_NOMEM;
    }
    return STATUS_OK;
}

/* Intern names and set every item's label, device and city index. */
static int index_names(struct dataset *ds, const struct names *nm)
{
    int n = ds->n_items;
    if ((ds->n_classes = intern(ds, nm->label, n, cmp_str, &ds->classes)) < 0 ||
        (ds->n_devices = intern(ds, nm->device, n, cmp_natural, &ds->devices)) < 0 ||
        (ds->n_cities = intern(ds, nm->city, n, cmp_str, &ds->cities)) < 0)
        return STATUS_NOMEM;
    for (int i = 0; i < n; i++) {
        ds->items[i].label = lookup(ds->classes, ds->n_classes, nm->label[i], cmp_str);
        ds->items[i].device = lookup(ds->devices, ds->n_devices, nm->device[i], cmp_natural);
        ds->items[i].city = lookup(ds->cities, ds->n_cities, nm->city[i], cmp_str);
        CHECK(ds->items[i].label >= 0 && ds->items[i].device >= 0 && ds->items[i].city >= 0);
    }
    return STATUS_OK;
}

/* Items sorted by normalised file name (then line), for duplicate checks and lookups. */
struct name_key {
    const char *name;   /* normalised file name */
    int item;
};

static int cmp_name_key(const void *x, const void *y)
{
    const struct name_key *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    return c ? c : a->item - b->item;
}

static int *sorted_by_name(const struct dataset *ds)
{
    struct name_key *keys = mem_alloc(sizeof *keys * (size_t)ds->n_items);
    int *idx = mem_alloc(sizeof *idx * (size_t)ds->n_items);
    if (!keys || !idx) {
        mem_free(keys);
        mem_free(idx);
        return NULL;
    }
    for (int i = 0; i < ds->n_items; i++) {
        keys[i].name = norm_name(ds->items[i].filename);
        keys[i].item = i;
    }
    qsort(keys, (size_t)ds->n_items, sizeof *keys, cmp_name_key);
    for (int i = 0; i < ds->n_items; i++) idx[i] = keys[i].item;
    mem_free(keys);
    return idx;
}

static int find_name(const struct dataset *ds, const int *sorted, const char *name)
{
    name = norm_name(name);
    int lo = 0, hi = ds->n_items;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(norm_name(ds->items[sorted[mid]].filename), name);
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo < ds->n_items && !strcmp(norm_name(ds->items[sorted[lo]].filename), name))
        return sorted[lo];
    return -1;
}

static int check_duplicates(const struct dataset *ds, const int *sorted)
{
    int bad = -1, first = -1;
    for (int k = 1; k < ds->n_items; k++) {
        const struct dataset_item *a = &ds->items[sorted[k - 1]], *b = &ds->items[sorted[k]];
        if (strcmp(norm_name(a->filename), norm_name(b->filename))) continue;
        if (bad < 0 || b->line < ds->items[bad].line) {
            bad = sorted[k];
            first = sorted[k - 1];
            /* the first occurrence of this name */
            for (int j = k - 1; j >= 0 && !strcmp(norm_name(ds->items[sorted[j]].filename),
                                                  norm_name(b->filename)); j--)
                first = sorted[j];
        }
    }
    if (bad < 0) return STATUS_OK;
    return status_set(STATUS_FORMAT, "%s:%d: duplicate '%s' (first on line %d)", ds->listing,
                      ds->items[bad].line, ds->items[bad].filename, ds->items[first].line);
}

/* Seeded split by recording, stratified by class (see dataset.h). */
struct rec {
    const char *key;
    int first;      /* first item (listing order) */
    int split;
};

struct rec_key {
    const char *key;
    int item;
};

static int cmp_rec_key(const void *x, const void *y)
{
    const struct rec_key *a = x, *b = y;
    int c = strcmp(a->key, b->key);
    return c ? c : a->item - b->item;
}

static int seeded_split(struct dataset *ds, double fraction, uint64_t seed)
{
    int n = ds->n_items, st = STATUS_NOMEM;
    struct rec_key *order = mem_alloc(sizeof *order * (size_t)n);
    int *rec_of = mem_alloc(sizeof *rec_of * (size_t)n);
    struct rec *recs = mem_alloc(sizeof *recs * (size_t)n);
    int *pick = mem_alloc(sizeof *pick * (size_t)n);
    if (!order || !rec_of || !recs || !pick) goto done;
    for (int i = 0; i < n; i++) order[i] = (struct rec_key){ds->items[i].recording, i};
    qsort(order, (size_t)n, sizeof *order, cmp_rec_key);
    int n_rec = 0;
    for (int k = 0; k < n; k++) {
        int i = order[k].item;
        if (n_rec == 0 || strcmp(recs[n_rec - 1].key, ds->items[i].recording)) {
            recs[n_rec].key = ds->items[i].recording;
            recs[n_rec].first = i;   /* order is by (key, index): the first is the smallest */
            recs[n_rec].split = DATASET_SPLIT_EVAL;
            n_rec++;
        }
        rec_of[i] = n_rec - 1;
    }
    struct rng base;
    rng_seed(&base, seed);
    for (int c = 0; c < ds->n_classes; c++) {
        int m = 0;
        for (int r = 0; r < n_rec; r++)
            if (ds->items[recs[r].first].label == c) pick[m++] = r;
        if (m == 0) continue;
        struct rng rc = rng_split(&base, (uint64_t)c);
        rng_shuffle(&rc, pick, m);
        int n_train = (int)(fraction * m + 0.5);
        if (m >= 2) n_train = n_train < 1 ? 1 : n_train > m - 1 ? m - 1 : n_train;
        for (int k = 0; k < n_train; k++) recs[pick[k]].split = DATASET_SPLIT_TRAIN;
    }
    for (int i = 0; i < n; i++) ds->items[i].split = (enum dataset_split)recs[rec_of[i]].split;
    st = STATUS_OK;
done:
    mem_free(order);
    mem_free(rec_of);
    mem_free(recs);
    mem_free(pick);
    return st;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* One DCASE setup file: mark its items with split (see the rules in dataset.h). */
static int apply_setup(struct dataset *ds, const int *sorted, const char *path,
                       enum dataset_split split, const char *const *names,
                       unsigned char *in_test)
{
    struct table t;
    int st = table_read(&t, path);
    if (st) return st;
    int c_file = table_col(&t, COL_FILENAME), c_label = table_col(&t, COL_LABEL);
    if (c_file < 0) {
        st = missing_column(&t, "filename");
        goto done;
    }
    if (c_label < 0 && split != DATASET_SPLIT_TEST) {
        st = missing_column(&t, "scene_label");
        goto done;
    }
    /* A header alone is an empty split: allowed (a 10-clip set has no evaluate clips), and
     * reported by dataset_require_split to whoever needs the split. */
    for (int r = 0; r < t.n_rows; r++) {
        int line = t.lines[r];
        const char *fname = cell(&t, r, c_file);
        if (!fname[0]) {
            st = status_set(STATUS_FORMAT, "%s:%d: empty filename", path, line);
            goto done;
        }
        int i = find_name(ds, sorted, fname);
        if (i < 0) {
            st = status_set(STATUS_FORMAT, "%s:%d: '%s' is not in %s", path, line, fname,
                            ds->listing);
            goto done;
        }
        struct dataset_item *it = &ds->items[i];
        const char *label = cell(&t, r, c_label);
        if (label[0] && strcmp(label, ds->classes[it->label])) {
            st = status_set(STATUS_FORMAT, "%s:%d: '%s' is labelled '%s' here, '%s' in %s",
                            path, line, fname, label, ds->classes[it->label], ds->listing);
            goto done;
        }
        if (it->split == split || (split == DATASET_SPLIT_TEST && in_test[i])) {
            st = status_set(STATUS_FORMAT, "%s:%d: duplicate '%s'", path, line, fname);
            goto done;
        }
        if (split == DATASET_SPLIT_TEST && it->split == DATASET_SPLIT_EVAL) {
            in_test[i] = 1;   /* the development set's unlabelled view of evaluate */
            continue;
        }
        if (it->split != DATASET_SPLIT_NONE) {
            st = status_set(STATUS_FORMAT, "%s:%d: '%s' is also in %s", path, line, fname,
                            names[it->split]);
            goto done;
        }
        it->split = split;
    }
done:
    table_fini(&t);
    return st;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return mem_strdup("");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = mem_alloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int open_dcase(struct dataset *ds, const struct dataset_opts *o, struct names *nm)
{
    struct table t;
    int st = table_read(&t, ds->listing);
    if (st) return st;
    struct columns col = {
        .filename = table_col(&t, COL_FILENAME),
        .label = table_col(&t, COL_LABEL),
        .device = table_col(&t, COL_DEVICE),
        .identifier = table_col(&t, COL_IDENTIFIER),
        .split = -1,
        .fold = -1,
        .city = -1,
    };
    if (col.filename < 0) st = missing_column(&t, "filename");
    else if (col.label < 0) st = missing_column(&t, "scene_label");
    else st = build_items(ds, &t, &col, nm);
    if (!st) st = index_names(ds, nm);
    table_fini(&t);
    if (st) return st;

    int *sorted = sorted_by_name(ds);
    unsigned char *in_test = mem_calloc((size_t)ds->n_items, 1);
    if (!sorted || !in_test) {
        st = STATUS_NOMEM;
        goto done;
    }
    if ((st = check_duplicates(ds, sorted))) goto done;
    int fold = o->fold ? o->fold : 1;
    char paths[3][4096];
    static const char *const kinds[3] = {"train", "evaluate", "test"};
    for (int k = 0; k < 3; k++)
        snprintf(paths[k], sizeof paths[k], "%s%sevaluation_setup/fold%d_%s.csv", ds->dir,
                 ds->dir[0] ? "/" : "", fold, kinds[k]);
    if (!o->seeded_split && file_exists(paths[0])) {
        const char *names[DATASET_SPLIT_COUNT] = {paths[0], paths[1], paths[2], ""};
        if ((st = apply_setup(ds, sorted, paths[0], DATASET_SPLIT_TRAIN, names, in_test)) ||
            (st = apply_setup(ds, sorted, paths[1], DATASET_SPLIT_EVAL, names, in_test)))
            goto done;
        if (file_exists(paths[2]) &&
            (st = apply_setup(ds, sorted, paths[2], DATASET_SPLIT_TEST, names, in_test)))
            goto done;
        snprintf(ds->split_source, sizeof ds->split_source, "evaluation_setup/fold%d_*.csv",
                 fold);
    } else if (!o->seeded_split && o->fold) {
        st = status_set(STATUS_NOT_FOUND, "%s: no such file", paths[0]);
        goto done;
    } else {
        st = -1;   /* seeded: done by the caller */
        snprintf(ds->split_source, sizeof ds->split_source, "%s",
                 !o->seeded_split ? "(no evaluation_setup/fold1_train.csv)"
                 : file_exists(paths[0]) ? "(evaluation_setup ignored)" : "");
    }
done:
    mem_free(sorted);
    mem_free(in_test);
    return st;
}

static int open_csv(struct dataset *ds, const struct dataset_opts *o, struct names *nm)
{
    struct table t;
    int st = table_read(&t, ds->listing);
    if (st) return st;
    struct columns col = {
        .filename = table_col(&t, COL_FILENAME),
        .label = table_col(&t, COL_LABEL),
        .device = table_col(&t, COL_DEVICE),
        .identifier = table_col(&t, COL_IDENTIFIER),
        .split = table_col(&t, COL_SPLIT),
        .fold = table_col(&t, COL_FOLD),
        .city = table_col(&t, COL_CITY),
    };
    if (col.filename < 0) st = missing_column(&t, "filename");
    else if (col.label < 0) st = missing_column(&t, "label");
    else st = build_items(ds, &t, &col, nm);
    if (!st) st = index_names(ds, nm);
    table_fini(&t);
    if (st) return st;

    int *sorted = sorted_by_name(ds);
    if (!sorted) return STATUS_NOMEM;
    st = check_duplicates(ds, sorted);
    mem_free(sorted);
    if (st) return st;
    if (!o->seeded_split && o->fold && col.split < 0 && col.fold < 0)
        return status_set(STATUS_INVALID, "%s: fold %d asked for, but there is no fold column",
                          ds->listing, o->fold);
    if (o->seeded_split || (col.split < 0 && col.fold < 0)) {
        snprintf(ds->split_source, sizeof ds->split_source, "%s",
                 !o->seeded_split ? "(no split or fold column)"
                 : col.split >= 0 ? "(split column ignored)"
                 : col.fold >= 0  ? "(fold column ignored)" : "");
        return -1;
    }
    if (o->fold && col.split >= 0)
        return status_set(STATUS_INVALID, "%s: fold %d asked for, but the split column decides "
                          "the splits (ask for a split by recording instead)", ds->listing,
                          o->fold);
    if (col.split >= 0) {
        snprintf(ds->split_source, sizeof ds->split_source, "split column");
        return STATUS_OK;
    }
    int fold = o->fold ? o->fold : 1, n_in = 0, max_fold = 0;
    for (int i = 0; i < ds->n_items; i++) {
        n_in += ds->items[i].fold == fold;
        max_fold = ds->items[i].fold > max_fold ? ds->items[i].fold : max_fold;
    }
    if (n_in == 0)
        return status_set(STATUS_FORMAT, "%s: no clip in fold %d (folds go up to %d)",
                          ds->listing, fold, max_fold);
    for (int i = 0; i < ds->n_items; i++)
        ds->items[i].split = ds->items[i].fold == fold ? DATASET_SPLIT_EVAL : DATASET_SPLIT_TRAIN;
    snprintf(ds->split_source, sizeof ds->split_source,
             "fold column: fold %d is evaluate, the others train", fold);
    return STATUS_OK;
}

int dataset_open(struct dataset **out, const char *path, const struct dataset_opts *opts)
{
    *out = NULL;
    struct dataset_opts o = {0};
    if (opts) o = *opts;
    if (o.train_fraction == 0) o.train_fraction = DATASET_DEFAULT_TRAIN_FRACTION;
    if (!(o.train_fraction > 0 && o.train_fraction < 1))
        return status_set(STATUS_INVALID, "%s: train fraction %g is not in (0, 1)", path,
                          o.train_fraction);
    if (o.fold < 0) return status_set(STATUS_INVALID, "%s: fold %d is negative", path, o.fold);
    struct dataset *ds = mem_calloc(1, sizeof *ds);
    if (!ds) return STATUS_NOMEM;
    struct names nm = {0};
    int st;
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (is_dir(path)) {
        ds->format = DATASET_FORMAT_DCASE;
        ds->dir = mem_alloc(n + 1);
        ds->listing = mem_alloc(n + 10);
        if (!ds->dir || !ds->listing) {
            st = STATUS_NOMEM;
            goto fail;
        }
        memcpy(ds->dir, path, n);
        ds->dir[n] = 0;
        snprintf(ds->listing, n + 10, "%s/meta.csv", ds->dir);
    } else {
        ds->format = !strcmp(base, "meta.csv") ? DATASET_FORMAT_DCASE : DATASET_FORMAT_CSV;
        ds->dir = dir_of(path);
        ds->listing = mem_strdup(path);
        if (!ds->dir || !ds->listing) {
            st = STATUS_NOMEM;
            goto fail;
        }
    }
    st = ds->format == DATASET_FORMAT_DCASE ? open_dcase(ds, &o, &nm) : open_csv(ds, &o, &nm);
    if (st == -1) {
        if ((st = seeded_split(ds, o.train_fraction, o.split_seed))) goto fail;
        char why[64];
        snprintf(why, sizeof why, "%.63s", ds->split_source);
        snprintf(ds->split_source, sizeof ds->split_source, "by recording, seed %llu, %.3g %% "
                 "evaluate%s%s", (unsigned long long)o.split_seed,
                 100.0 * (1.0 - o.train_fraction), why[0] ? " " : "", why);
        ds->seeded = 1;
    }
    if (st) goto fail;
    if (!(ds->device_seen = mem_calloc((size_t)ds->n_devices, sizeof *ds->device_seen))) {
        st = STATUS_NOMEM;
        goto fail;
    }
    for (int i = 0; i < ds->n_items; i++)
        if (ds->items[i].split == DATASET_SPLIT_TRAIN) ds->device_seen[ds->items[i].device] = 1;
    mem_free(nm.label);
    mem_free(nm.device);
    mem_free(nm.city);
    *out = ds;
    return STATUS_OK;
fail:
    mem_free(nm.label);
    mem_free(nm.device);
    mem_free(nm.city);
    dataset_destroy(ds);
    return st;
}

void dataset_destroy(struct dataset *ds)
{
    if (!ds) return;
    while (ds->pool) {
        struct pool_block *next = ds->pool->next;
        mem_free(ds->pool);
        ds->pool = next;
    }
    mem_free(ds->items);
    mem_free(ds->classes);
    mem_free(ds->devices);
    mem_free(ds->cities);
    mem_free(ds->device_seen);
    mem_free(ds->dir);
    mem_free(ds->listing);
    mem_free(ds);
}

/* ----------------------------------------------------------------------------- queries */

enum dataset_format dataset_format(const struct dataset *ds) { return ds->format; }
const char *dataset_listing(const struct dataset *ds) { return ds->listing; }
const char *dataset_split_source(const struct dataset *ds) { return ds->split_source; }
int dataset_split_seeded(const struct dataset *ds) { return ds->seeded; }
int dataset_n_items(const struct dataset *ds) { return ds->n_items; }

const struct dataset_item *dataset_item(const struct dataset *ds, int i)
{
    CHECK(i >= 0 && i < ds->n_items);
    return &ds->items[i];
}

int dataset_n_classes(const struct dataset *ds) { return ds->n_classes; }

const char *dataset_class_name(const struct dataset *ds, int label)
{
    CHECK(label >= 0 && label < ds->n_classes);
    return ds->classes[label];
}

int dataset_class_index(const struct dataset *ds, const char *name)
{
    return lookup(ds->classes, ds->n_classes, name, cmp_str);
}

int dataset_n_devices(const struct dataset *ds) { return ds->n_devices; }

const char *dataset_device_name(const struct dataset *ds, int device)
{
    CHECK(device >= 0 && device < ds->n_devices);
    return ds->devices[device];
}

int dataset_device_index(const struct dataset *ds, const char *name)
{
    return lookup(ds->devices, ds->n_devices, name, cmp_natural);
}

int dataset_device_seen(const struct dataset *ds, int device)
{
    CHECK(device >= 0 && device < ds->n_devices);
    return ds->device_seen[device];
}

int dataset_n_cities(const struct dataset *ds) { return ds->n_cities; }

const char *dataset_city_name(const struct dataset *ds, int city)
{
    CHECK(city >= 0 && city < ds->n_cities);
    return ds->cities[city];
}

int dataset_count(const struct dataset *ds, enum dataset_split split, int label, int device)
{
    int n = 0;
    for (int i = 0; i < ds->n_items; i++) {
        const struct dataset_item *it = &ds->items[i];
        n += (split == DATASET_SPLIT_ANY || it->split == split) && (label < 0 || it->label == label) &&
             (device < 0 || it->device == device);
    }
    return n;
}

int dataset_split_items(const struct dataset *ds, enum dataset_split split, int *idx)
{
    int n = 0;
    for (int i = 0; i < ds->n_items; i++)
        if (split == DATASET_SPLIT_ANY || ds->items[i].split == split) idx[n++] = i;
    return n;
}

int dataset_require_split(const struct dataset *ds, enum dataset_split split)
{
    if (dataset_count(ds, split, -1, -1) > 0) return STATUS_OK;
    if (split == DATASET_SPLIT_ANY)
        return status_set(STATUS_INVALID, "%s: the data set is empty", ds->listing);
    return status_set(STATUS_INVALID, "%s: the %s split is empty (split: %s)", ds->listing,
                      dataset_split_name(split), ds->split_source);
}

/* ----------------------------------------------------------------------------- summary */

struct sbuf {
    char *buf;
    size_t n, len;
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *dst = b->len < b->n ? b->buf + b->len : NULL;
    int k = vsnprintf(dst, dst ? b->n - b->len : 0, fmt, ap);
    va_end(ap);
    if (k > 0) b->len += (size_t)k;
}

/* One table: rows of counts per split (only splits with clips, train and evaluate always). */
static void sb_table(struct sbuf *b, const struct dataset *ds, int by_device, const int *show)
{
    int n_rows = by_device ? ds->n_devices : ds->n_classes;
    int w = by_device ? 6 : 5;
    for (int r = 0; r < n_rows; r++) {
        int k = (int)strlen(by_device ? ds->devices[r] : ds->classes[r]);
        w = k > w ? k : w;
    }
    sb_printf(b, "%-*s", w, by_device ? "device" : "class");
    if (by_device) sb_printf(b, "  %-6s", "seen");
    for (int s = 0; s < DATASET_SPLIT_COUNT; s++)
        if (show[s]) sb_printf(b, "  %8s", SPLIT_NAMES[s]);
    sb_printf(b, "  %8s\n", "total");
    for (int r = 0; r < n_rows; r++) {
        sb_printf(b, "%-*s", w, by_device ? ds->devices[r] : ds->classes[r]);
        if (by_device) sb_printf(b, "  %-6s", ds->device_seen[r] ? "seen" : "unseen");
        for (int s = 0; s < DATASET_SPLIT_COUNT; s++)
            if (show[s])
                sb_printf(b, "  %8d", by_device ? dataset_count(ds, (enum dataset_split)s, -1, r)
                                                : dataset_count(ds, (enum dataset_split)s, r, -1));
        sb_printf(b, "  %8d\n", by_device ? dataset_count(ds, DATASET_SPLIT_ANY, -1, r)
                                          : dataset_count(ds, DATASET_SPLIT_ANY, r, -1));
    }
    sb_printf(b, "%-*s", w, "total");
    if (by_device) sb_printf(b, "  %-6s", "");
    for (int s = 0; s < DATASET_SPLIT_COUNT; s++)
        if (show[s]) sb_printf(b, "  %8d", dataset_count(ds, (enum dataset_split)s, -1, -1));
    sb_printf(b, "  %8d\n", ds->n_items);
}

int dataset_summary(const struct dataset *ds, char *buf, size_t n)
{
    struct sbuf b = {buf, n, 0};
    if (n) buf[0] = 0;
    int show[DATASET_SPLIT_COUNT];
    for (int s = 0; s < DATASET_SPLIT_COUNT; s++)
        show[s] = s <= DATASET_SPLIT_EVAL || dataset_count(ds, (enum dataset_split)s, -1, -1) > 0;
    sb_printf(&b, "data set  %s (%s)\n", ds->listing,
              ds->format == DATASET_FORMAT_DCASE ? "DCASE layout" : "CSV");
    sb_printf(&b, "splits    %s\n", ds->split_source);
    sb_printf(&b, "clips     %d:", ds->n_items);
    for (int s = 0; s < DATASET_SPLIT_COUNT; s++)
        if (show[s])
            sb_printf(&b, "%s %s %d", s ? "," : "", SPLIT_NAMES[s],
                      dataset_count(ds, (enum dataset_split)s, -1, -1));
    sb_printf(&b, "\nclasses   %d:", ds->n_classes);
    for (int c = 0; c < ds->n_classes; c++) sb_printf(&b, "%s %s", c ? "," : "", ds->classes[c]);
    sb_printf(&b, "\ndevices   %d: seen", ds->n_devices);
    int k = 0;
    for (int d = 0; d < ds->n_devices; d++)
        if (ds->device_seen[d]) sb_printf(&b, "%s %s", k++ ? "," : "", ds->devices[d]);
    if (!k) sb_printf(&b, " none");
    sb_printf(&b, "; unseen");
    k = 0;
    for (int d = 0; d < ds->n_devices; d++)
        if (!ds->device_seen[d]) sb_printf(&b, "%s %s", k++ ? "," : "", ds->devices[d]);
    if (!k) sb_printf(&b, " none");
    sb_printf(&b, "\ncities    %d:", ds->n_cities);
    for (int c = 0; c < ds->n_cities; c++) sb_printf(&b, "%s %s", c ? "," : "", ds->cities[c]);
    sb_printf(&b, "\n\n");
    sb_table(&b, ds, 0, show);
    sb_printf(&b, "\n");
    sb_table(&b, ds, 1, show);
    return (int)b.len;
}
