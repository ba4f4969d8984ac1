/* safetensors.c: the .safetensors reader and writer (see safetensors.h).
 *
 * Key idea: read the whole file into one buffer (its data area 64-byte aligned) and
 * validate the header completely before handing out a single pointer: jansson parses it
 * (strict UTF-8, duplicate keys rejected), this file checks every field, then checks that
 * the tensors' byte spans tile the data area exactly, so every st_tensor.data points to
 * n_bytes that lie inside the buffer and belong to that tensor alone. The writer prints
 * the header itself, so the bytes match Python's json.dumps and basin_ref.st_save, and
 * writes through a temporary file renamed over the target.
 * ref: huggingface/safetensors README "Format" (layout, dtypes, 100 MB header cap);
 *      peers/basin_ref.py st_save / st_load (the checks and byte layout matched here);
 *      Maratyszcza/FP16 fp16_ieee_from_fp32_value (half rounding, as PyTorch's .half());
 *      c10/util/BFloat16.h round_to_nearest_even (bfloat16 rounding).
 */
#include "basin/model/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basin/core/fs.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/core/strbuf.h"
#include "basin/core/json.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "basin assumes a little-endian host");

static const char *const dtype_names[ST_DTYPE_COUNT] = {"F64", "F32", "F16", "BF16", "I64",
                                                        "I32", "I16", "I8",  "U8",   "BOOL"};
static const unsigned char dtype_sizes[ST_DTYPE_COUNT] = {8, 4, 2, 2, 8, 4, 2, 1, 1, 1};

const char *st_dtype_name(enum st_dtype dtype)
{
    return (unsigned)dtype < ST_DTYPE_COUNT ? dtype_names[dtype] : "?";
}

size_t st_dtype_size(enum st_dtype dtype)
{
    return (unsigned)dtype < ST_DTYPE_COUNT ? dtype_sizes[dtype] : 0;
}

/* Copy s into buf (n bytes) for a one-line message: control bytes become '?', and a long
 * name is cut at a UTF-8 character boundary and ends with "...". */
static const char *clean(char *buf, size_t n, const char *s)
{
    size_t len = strlen(s), k = 0;
    size_t keep = len < n ? len : n - 4;
    while (keep < len && keep > 0 && ((unsigned char)s[keep] & 0xc0) == 0x80) keep--;
    for (; k < keep; k++) {
        unsigned char c = (unsigned char)s[k];
        buf[k] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (keep < len) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = 0;
    return buf;
}

#define NAME_BUF 160

int st_dtype_parse(const char *name, enum st_dtype *out)
{
    for (int i = 0; i < ST_DTYPE_COUNT; i++) {
        if (!strcmp(name, dtype_names[i])) {
            *out = (enum st_dtype)i;
            return STATUS_OK;
        }
    }
    char buf[NAME_BUF];
    return status_set(STATUS_UNSUPPORTED,
                      "dtype '%s' is not supported (F64, F32, F16, BF16, I64, I32, I16, I8, U8, "
                      "BOOL)",
                      clean(buf, sizeof buf, name));
}

/* "(3, 4)", "()" for a scalar. */
static const char *shape_str(char *buf, size_t n, int n_dims, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < n_dims && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, n_dims == 1 ? ",)" : ")");
    return buf;
}

/* ----------------------------------------------------------------------------- half floats */

static uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

uint16_t st_f32_to_f16(float x)
{
    uint32_t u = f32_bits(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    u &= 0x7fffffff;
    if (u > 0x7f800000) return sign | 0x7e00;   /* NaN */
    if (u >= 0x477ff000) return sign | 0x7c00;  /* >= 65520 rounds to infinity */
    if (u < 0x38800000) {                       /* below 2^-14: a half subnormal or zero */
        int e = (int)(u >> 23);                 /* |x| = m * 2^(e - 150) */
        if (e < 102) return sign;               /* below 2^-25: rounds to zero */
        uint32_t m = (u & 0x7fffff) | 0x800000;
        int shift = 126 - e;                    /* to units of 2^-24: 14..24 */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);            /* r = 0x400 is the smallest normal */
    }
    uint32_t r = (u >> 13) - (112u << 10);      /* rebias the exponent from 127 to 15 */
    uint32_t rem = u & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++; /* a carry moves up the exponent */
    return (uint16_t)(sign | r);
}

float st_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) return f32_from_bits(sign | 0x7f800000 | m << 13);
    if (e) return f32_from_bits(sign | (e + 112) << 23 | m << 13);
    return f32_from_bits(sign | f32_bits((float)m * 0x1p-24f)); /* zero or subnormal: exact */
}

uint16_t st_f32_to_bf16(float x)
{
    uint32_t u = f32_bits(x);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)(((u >> 16) & 0x8000) | 0x7fc0);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float st_bf16_to_f32(uint16_t h)
{
    return f32_from_bits((uint32_t)h << 16);
}

/* ----------------------------------------------------------------------------- reading */

struct st_file {
    char *path;
    unsigned char *block;     /* mem_alloc'd: padding, then the whole file */
    const unsigned char *data;
    size_t n_data;            /* bytes after the header */
    int n_tensors;
    struct st_tensor *tensors; /* (n_tensors), header order */
    int *by_name;             /* (n_tensors) tensor indices sorted by name */
    int n_meta;
    char **meta;              /* (2 n_meta): key, value, key, value ... */
};

void st_destroy(struct st_file *f)
{
    if (!f) return;
    for (int i = 0; i < f->n_tensors; i++) mem_free((char *)f->tensors[i].name);
    for (int i = 0; i < 2 * f->n_meta; i++) mem_free(f->meta[i]);
    mem_free(f->tensors);
    mem_free(f->by_name);
    mem_free(f->meta);
    mem_free(f->block);
    mem_free(f->path);
    mem_free(f);
}

/* Read exactly n bytes at offset off. */
static int read_at(int fd, unsigned char *buf, size_t n, off_t off, const char *path)
{
    while (n) {
        ssize_t k = pread(fd, buf, n > (1u << 30) ? (1u << 30) : n, off);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return status_set(STATUS_IO, "%s: %s", path, strerror(errno));
        if (k == 0) return status_set(STATUS_IO, "%s: file shrank while being read", path);
        buf += k;
        n -= (size_t)k;
        off += k;
    }
    return STATUS_OK;
}

/* Read the file into f->block so that the data area starts 64-byte aligned; set
 * f->data, f->n_data and the header span. */
static int read_file(struct st_file *f, const char **header, size_t *n_header)
{
    const char *path = f->path;
    int fd = open(path, O_RDONLY | O_CLOEXEC), s = STATUS_OK;
    if (fd < 0) return status_set(STATUS_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        s = status_set(STATUS_IO, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        s = status_set(STATUS_IO, "%s: not a regular file", path);
        goto done;
    }
    size_t size = (size_t)sb.st_size;
    if (sb.st_size < 8) {
        s = status_set(STATUS_FORMAT, "%s: not a safetensors file (%zu bytes, too short for "
                       "the 8-byte header length)", path, size);
        goto done;
    }
    unsigned char len8[8];
    if ((s = read_at(fd, len8, 8, 0, path)) != STATUS_OK) goto done;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
    if (n > size - 8) {
        /* Any other file (a WAV, a text) lands here: its first 8 bytes read as a length. */
        char len_s[32], size_s[32];
        if (n < 1000000000) snprintf(len_s, sizeof len_s, "%llu", (unsigned long long)n);
        else snprintf(len_s, sizeof len_s, "%.2g", (double)n);
        char *plus = strchr(len_s, '+');
        if (plus) memmove(plus, plus + 1, strlen(plus));
        if (size < 1024) snprintf(size_s, sizeof size_s, "%zu-byte", size);
        else mem_bytes_str(size_s, sizeof size_s, (double)size);
        s = status_set(STATUS_FORMAT,
                       "%s: not a safetensors file (header length %s does not fit the %s file)",
                       path, len_s, size_s);
        goto done;
    }
    if (n > ST_MAX_HEADER) {
        s = status_set(STATUS_FORMAT, "%s: header length %llu exceeds the limit of %u bytes",
                       path, (unsigned long long)n, ST_MAX_HEADER);
        goto done;
    }
    size_t pad = (64 - (8 + (size_t)n) % 64) % 64, avail = mem_available_bytes();
    if (size > avail) {
        char a[32], b[32];
        s = status_set(STATUS_NOMEM, "%s: the file is %s, this machine has %s available to read it",
                       path, mem_bytes_str(a, sizeof a, (double)size),
                       mem_bytes_str(b, sizeof b, (double)avail));
        goto done;
    }
    if (!(f->block = mem_alloc(pad + size))) {
        s = status_prefix(STATUS_NOMEM, "%s", path);
        goto done;
    }
    if ((s = read_at(fd, f->block + pad, size, 0, path)) != STATUS_OK) goto done;
    *header = (const char *)f->block + pad + 8;
    *n_header = (size_t)n;
    f->data = f->block + pad + 8 + n;
    f->n_data = size - 8 - (size_t)n;
done:
    close(fd);
    return s;
}

static const char *jtype(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Fill t from the header entry v of the tensor called name. */
static int parse_entry(struct st_file *f, struct st_tensor *t, const char *name, json_t *v)
{
    const char *path = f->path;
    char nm[NAME_BUF], sh[160];
    clean(nm, sizeof nm, name);
    if (!json_is_object(v))
        return status_set(STATUS_FORMAT, "%s: tensor '%s': entry is %s, expected an object",
                          path, nm, jtype(v));
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape");
    json_t *jo = json_object_get(v, "data_offsets");
    if (!jd || !js || !jo)
        return status_set(STATUS_FORMAT, "%s: tensor '%s' has no %s", path, nm,
                          !jd ? "dtype" : !js ? "shape" : "data_offsets");

    if (!json_is_string(jd))
        return status_set(STATUS_FORMAT, "%s: tensor '%s': dtype is %s, expected a string",
                          path, nm, jtype(jd));
    if (st_dtype_parse(json_string_value(jd), &t->dtype) != STATUS_OK)
        return status_prefix(STATUS_UNSUPPORTED, "%s: tensor '%s'", path, nm);
    size_t esize = dtype_sizes[t->dtype];

    if (!json_is_array(js))
        return status_set(STATUS_FORMAT, "%s: tensor '%s': shape is %s, expected an array",
                          path, nm, jtype(js));
    if (json_array_size(js) > ST_MAX_DIMS)
        return status_set(STATUS_FORMAT, "%s: tensor '%s': shape has %zu dims, at most %d allowed",
                          path, nm, json_array_size(js), ST_MAX_DIMS);
    t->n_dims = (int)json_array_size(js);
    int empty = 0;
    for (int i = 0; i < t->n_dims; i++) {
        json_t *d = json_array_get(js, (size_t)i);
        if (!json_is_integer(d))
            return status_set(STATUS_FORMAT,
                              "%s: tensor '%s': shape[%d] is %s, expected a non-negative integer",
                              path, nm, i, jtype(d));
        if (json_integer_value(d) < 0)
            return status_set(STATUS_FORMAT, "%s: tensor '%s': shape[%d] is negative (%lld)",
                              path, nm, i, (long long)json_integer_value(d));
        t->shape[i] = (int64_t)json_integer_value(d);
        empty |= t->shape[i] == 0;
    }
    /* numel * esize must not overflow; a zero dim makes the tensor empty whatever the rest. */
    size_t numel = 1;
    for (int i = 0; i < t->n_dims && !empty; i++) {
        uint64_t d = (uint64_t)t->shape[i];
        if (d > SIZE_MAX / esize / numel)
            return status_set(STATUS_FORMAT, "%s: tensor '%s': shape %s of %s overflows the size",
                              path, nm, shape_str(sh, sizeof sh, t->n_dims, t->shape),
                              dtype_names[t->dtype]);
        numel *= (size_t)d;
    }
    t->numel = empty ? 0 : numel;
    t->n_bytes = t->numel * esize;

    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return status_set(STATUS_FORMAT,
                          "%s: tensor '%s': data_offsets is %s, expected [begin, end]", path, nm,
                          json_is_array(jo) ? "an array of the wrong length" : jtype(jo));
    json_int_t off[2];
    for (int i = 0; i < 2; i++) {
        json_t *o = json_array_get(jo, (size_t)i);
        if (!json_is_integer(o))
            return status_set(STATUS_FORMAT,
                              "%s: tensor '%s': data_offsets[%d] is %s, expected an integer",
                              path, nm, i, jtype(o));
        off[i] = json_integer_value(o);
        if (off[i] < 0)
            return status_set(STATUS_FORMAT, "%s: tensor '%s': data_offsets[%d] is negative (%lld)",
                              path, nm, i, (long long)off[i]);
    }
    if (off[0] > off[1])
        return status_set(STATUS_FORMAT, "%s: tensor '%s' data_offsets %lld..%lld are reversed",
                          path, nm, (long long)off[0], (long long)off[1]);
    if ((uint64_t)off[1] > f->n_data)
        return status_set(STATUS_FORMAT,
                          "%s: tensor '%s' data_offsets %lld..%lld run past the %zu data bytes",
                          path, nm, (long long)off[0], (long long)off[1], f->n_data);
    if ((uint64_t)(off[1] - off[0]) != t->n_bytes)
        return status_set(STATUS_FORMAT,
                          "%s: tensor '%s' data_offsets %lld..%lld hold %lld bytes, but shape %s "
                          "of %s needs %zu",
                          path, nm, (long long)off[0], (long long)off[1],
                          (long long)(off[1] - off[0]),
                          shape_str(sh, sizeof sh, t->n_dims, t->shape), dtype_names[t->dtype],
                          t->n_bytes);
    t->data = f->data + off[0];
    t->file = f->path;
    return (t->name = mem_strdup(name)) ? STATUS_OK : status_prefix(STATUS_NOMEM, "%s", path);
}

static int cmp_span(const void *a, const void *b)
{
    const struct st_tensor *x = *(const struct st_tensor *const *)a;
    const struct st_tensor *y = *(const struct st_tensor *const *)b;
    const unsigned char *xb = x->data, *yb = y->data;
    if (xb != yb) return xb < yb ? -1 : 1;
    return x->n_bytes < y->n_bytes ? -1 : x->n_bytes > y->n_bytes;
}

/* The spans must tile the data area: sorted by (begin, end), each begins where the
 * previous one ended, the first at 0, the last ends at the end of the data. */
static int check_tiling(struct st_file *f)
{
    int s = STATUS_OK;
    const struct st_tensor **order = mem_calloc((size_t)f->n_tensors + 1, sizeof *order);
    if (!order) return status_prefix(STATUS_NOMEM, "%s", f->path);
    for (int i = 0; i < f->n_tensors; i++) order[i] = &f->tensors[i];
    qsort(order, (size_t)f->n_tensors, sizeof *order, cmp_span);
    size_t end = 0;
    const char *prev = NULL;
    char a[NAME_BUF], b[NAME_BUF];
    for (int i = 0; i < f->n_tensors && s == STATUS_OK; i++) {
        size_t begin = (size_t)((const unsigned char *)order[i]->data - f->data);
        if (begin < end)
            s = status_set(STATUS_FORMAT, "%s: tensors '%s' and '%s' overlap in the data", f->path,
                           clean(a, sizeof a, prev), clean(b, sizeof b, order[i]->name));
        else if (begin > end)
            s = status_set(STATUS_FORMAT, "%s: data bytes %zu..%zu before tensor '%s' belong to no "
                           "tensor (a gap)",
                           f->path, end, begin, clean(b, sizeof b, order[i]->name));
        end = begin + order[i]->n_bytes;
        prev = order[i]->name;
    }
    if (s == STATUS_OK && end != f->n_data)
        s = status_set(STATUS_FORMAT, "%s: %zu trailing data bytes after the last tensor",
                       f->path, f->n_data - end);
    mem_free(order);
    return s;
}

/* qsort_r is a GNU extension; the index sort gets its tensors through a wrapper array. */
struct name_ref {
    const char *name;
    int index;
};

static int cmp_name_ref(const void *a, const void *b)
{
    return strcmp(((const struct name_ref *)a)->name, ((const struct name_ref *)b)->name);
}

static int build_index(struct st_file *f)
{
    struct name_ref *refs = mem_calloc((size_t)f->n_tensors + 1, sizeof *refs);
    if (!refs) return status_prefix(STATUS_NOMEM, "%s", f->path);
    for (int i = 0; i < f->n_tensors; i++) refs[i] = (struct name_ref){f->tensors[i].name, i};
    qsort(refs, (size_t)f->n_tensors, sizeof *refs, cmp_name_ref);
    for (int i = 0; i < f->n_tensors; i++) f->by_name[i] = refs[i].index;
    mem_free(refs);
    return STATUS_OK;
}

/* A safetensors header holds arrays only as shapes (at most ST_MAX_DIMS items) and data
 * offsets (2): array items beyond that per entry are refused before jansson builds them,
 * since a tree costs ~50 bytes a value and "[0,0,...]" is 2 bytes a value. */
static int check_header_cost(const struct st_file *f, const char *text, size_t n)
{
    struct json_counts c;
    json_count(text, n, &c);
    long allowed = (ST_MAX_DIMS + 2) * c.top_len + 16;
    if (c.n_items > allowed)
        return status_set(STATUS_FORMAT,
                          "%s: header holds %ld array items for %ld entries; a safetensors header "
                          "holds only shapes (at most %d dims) and data offsets",
                          f->path, c.n_items, c.top_len, ST_MAX_DIMS);
    return STATUS_OK;
}

static int parse_header(struct st_file *f, const char *text, size_t n)
{
    const char *path = f->path;
    int cs = check_header_cost(f, text, n);
    if (cs) return cs;
    json_error_t err;
    json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        char msg[NAME_BUF];
        return status_set(STATUS_FORMAT, "%s: header is not valid JSON: line %d, column %d: %s",
                          path, err.line, err.column, clean(msg, sizeof msg, err.text));
    }
    int s = STATUS_OK;
    if (!json_is_object(root)) {
        s = status_set(STATUS_FORMAT, "%s: header is %s, expected a JSON object", path,
                       jtype(root));
        goto done;
    }
    json_t *meta = json_object_get(root, "__metadata__");
    size_t n_entries = json_object_size(root) - (meta != NULL);
    if (n_entries > INT_MAX / 2) {
        s = status_set(STATUS_FORMAT, "%s: header lists %zu tensors, too many", path, n_entries);
        goto done;
    }
    f->tensors = mem_calloc(n_entries + 1, sizeof *f->tensors);
    f->by_name = mem_calloc(n_entries + 1, sizeof *f->by_name);
    if (!f->tensors || !f->by_name) {
        s = status_prefix(STATUS_NOMEM, "%s", path);
        goto done;
    }

    const char *key;
    json_t *v;
    if (meta && !json_is_null(meta)) {
        if (!json_is_object(meta)) {
            s = status_set(STATUS_FORMAT, "%s: __metadata__ is %s, expected an object mapping "
                           "strings to strings", path, jtype(meta));
            goto done;
        }
        if (!(f->meta = mem_calloc(2 * json_object_size(meta) + 1, sizeof *f->meta))) {
            s = status_prefix(STATUS_NOMEM, "%s", path);
            goto done;
        }
        json_object_foreach(meta, key, v) {
            char k[NAME_BUF];
            if (!json_is_string(v)) {
                s = status_set(STATUS_FORMAT, "%s: __metadata__ '%s' is %s, expected a string",
                               path, clean(k, sizeof k, key), jtype(v));
                goto done;
            }
            char *kk = mem_strdup(key), *vv = mem_strdup(json_string_value(v));
            f->meta[2 * f->n_meta] = kk;
            f->meta[2 * f->n_meta + 1] = vv;
            f->n_meta++;
            if (!kk || !vv) {
                s = status_prefix(STATUS_NOMEM, "%s", path);
                goto done;
            }
        }
    }
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__")) continue;
        s = parse_entry(f, &f->tensors[f->n_tensors], key, v);
        if (f->tensors[f->n_tensors].name) f->n_tensors++;
        if (s != STATUS_OK) goto done;
    }
    if ((s = check_tiling(f)) == STATUS_OK) s = build_index(f);
done:
    json_decref(root);
    return s;
}

int st_load(const char *path, struct st_file **out)
{
    *out = NULL;
    struct st_file *f = mem_calloc(1, sizeof *f);
    if (!f) return status_prefix(STATUS_NOMEM, "%s", path);
    const char *header = NULL;
    size_t n_header = 0;
    int s;
    if (!(f->path = mem_strdup(path))) s = status_prefix(STATUS_NOMEM, "%s", path);
    else if ((s = read_file(f, &header, &n_header)) == STATUS_OK)
        s = parse_header(f, header, n_header);
    if (s != STATUS_OK) {
        st_destroy(f);
        return s;
    }
    *out = f;
    return STATUS_OK;
}

const char *st_path(const struct st_file *f)
{
    return f->path;
}

int st_count(const struct st_file *f)
{
    return f->n_tensors;
}

const struct st_tensor *st_tensor_at(const struct st_file *f, int i)
{
    CHECK(i >= 0 && i < f->n_tensors);
    return &f->tensors[i];
}

const struct st_tensor *st_find(const struct st_file *f, const char *name)
{
    int lo = 0, hi = f->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const struct st_tensor *t = &f->tensors[f->by_name[mid]];
        int c = strcmp(name, t->name);
        if (!c) return t;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

const char *st_meta(const struct st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
    return NULL;
}

int st_meta_count(const struct st_file *f)
{
    return f->n_meta;
}

const char *st_meta_key_at(const struct st_file *f, int i)
{
    CHECK(i >= 0 && i < f->n_meta);
    return f->meta[2 * i];
}

const char *st_meta_value_at(const struct st_file *f, int i)
{
    CHECK(i >= 0 && i < f->n_meta);
    return f->meta[2 * i + 1];
}

/* ----------------------------------------------------------------------------- conversion */

static int wrong_dtype(const struct st_tensor *t, const char *expected)
{
    char nm[NAME_BUF];
    return status_set(STATUS_MISMATCH, "%s: tensor '%s' is %s, expected %s",
                      t->file ? t->file : "safetensors", clean(nm, sizeof nm, t->name),
                      st_dtype_name(t->dtype), expected);
}

int st_to_f32(const struct st_tensor *t, float *out)
{
    const unsigned char *p = t->data;
    size_t n = t->numel;
    switch (t->dtype) {
    case ST_F32:
        if (n) memcpy(out, p, n * 4);
        return STATUS_OK;
    case ST_F16:
    case ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = t->dtype == ST_F16 ? st_f16_to_f32(h) : st_bf16_to_f32(h);
        }
        return STATUS_OK;
    case ST_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            if (isfinite(d) && fabs(d) >= 0x1.ffffffp127) { /* would round to infinity */
                char nm[NAME_BUF];
                return status_set(STATUS_NUMERIC,
                                  "%s: tensor '%s' value %g at index %zu overflows float32",
                                  t->file ? t->file : "safetensors",
                                  clean(nm, sizeof nm, t->name), d, i);
            }
            out[i] = (float)d;
        }
        return STATUS_OK;
    default: return wrong_dtype(t, "a floating-point dtype (F32, F16, BF16, F64)");
    }
}

int st_to_i32(const struct st_tensor *t, int32_t *out)
{
    const unsigned char *p = t->data;
    size_t n = t->numel;
    switch (t->dtype) {
    case ST_I64:
        for (size_t i = 0; i < n; i++) {
            int64_t x;
            memcpy(&x, p + 8 * i, 8);
            if (x < INT32_MIN || x > INT32_MAX) {
                char nm[NAME_BUF];
                return status_set(STATUS_INVALID,
                                  "%s: tensor '%s' value %lld at index %zu is out of int32 range",
                                  t->file ? t->file : "safetensors",
                                  clean(nm, sizeof nm, t->name), (long long)x, i);
            }
            out[i] = (int32_t)x;
        }
        return STATUS_OK;
    case ST_I32:
        if (n) memcpy(out, p, n * 4);
        return STATUS_OK;
    case ST_I16:
        for (size_t i = 0; i < n; i++) {
            int16_t x;
            memcpy(&x, p + 2 * i, 2);
            out[i] = x;
        }
        return STATUS_OK;
    case ST_I8:
        for (size_t i = 0; i < n; i++) out[i] = (int8_t)p[i];
        return STATUS_OK;
    case ST_U8:
        for (size_t i = 0; i < n; i++) out[i] = p[i];
        return STATUS_OK;
    case ST_BOOL:
        for (size_t i = 0; i < n; i++) out[i] = p[i] != 0;
        return STATUS_OK;
    default: return wrong_dtype(t, "an integer or BOOL dtype");
    }
}

int st_read_f32(const struct st_file *f, const char *name, int n_dims, const int *shape,
                float *out)
{
    CHECK(n_dims >= 0 && n_dims <= ST_MAX_DIMS);
    char nm[NAME_BUF];
    const struct st_tensor *t = st_find(f, name);
    if (!t)
        return status_set(STATUS_NOT_FOUND, "%s: no tensor '%s'", f->path,
                          clean(nm, sizeof nm, name));
    int same = t->n_dims == n_dims;
    int64_t want[ST_MAX_DIMS];
    for (int i = 0; i < n_dims; i++) {
        want[i] = shape[i];
        if (same && t->shape[i] != want[i]) same = 0;
    }
    if (!same) {
        char a[160], b[160];
        return status_set(STATUS_MISMATCH, "%s: tensor '%s' has shape %s, expected %s", f->path,
                          clean(nm, sizeof nm, name), shape_str(a, sizeof a, t->n_dims, t->shape),
                          shape_str(b, sizeof b, n_dims, want));
    }
    return st_to_f32(t, out);
}

/* ----------------------------------------------------------------------------- writing */

struct st_entry {
    char *name;
    enum st_dtype dtype;
    int n_dims;
    int64_t shape[ST_MAX_DIMS];
    size_t n_bytes;
    const void *data;   /* borrowed, or owned below */
    void *owned;        /* converted data (F16) the writer frees */
};

struct st_writer {
    struct st_entry *entries;
    int n, cap;
    char **meta;        /* (2 n_meta): key, value, ... */
    int n_meta, cap_meta;
};

struct st_writer *st_writer_create(void)
{
    return mem_calloc(1, sizeof(struct st_writer));
}

void st_writer_destroy(struct st_writer *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        mem_free(w->entries[i].name);
        mem_free(w->entries[i].owned);
    }
    for (int i = 0; i < 2 * w->n_meta; i++) mem_free(w->meta[i]);
    mem_free(w->entries);
    mem_free(w->meta);
    mem_free(w);
}

/* Check name, shape and size; fill e (without data) on success. */
static int make_entry(const struct st_writer *w, struct st_entry *e, const char *name,
                      enum st_dtype dtype, int n_dims, const int64_t *shape)
{
    char nm[NAME_BUF], sh[160];
    CHECK((unsigned)dtype < ST_DTYPE_COUNT);
    if (!json_utf8_valid(name, strlen(name)))
        return status_set(STATUS_INVALID, "tensor name '%s' is not valid UTF-8",
                          clean(nm, sizeof nm, name));
    if (!strcmp(name, "__metadata__"))
        return status_set(STATUS_INVALID, "tensor name '__metadata__' is reserved");
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->entries[i].name, name))
            return status_set(STATUS_INVALID, "tensor '%s' added twice", clean(nm, sizeof nm, name));
    if (n_dims < 0 || n_dims > ST_MAX_DIMS)
        return status_set(STATUS_INVALID, "tensor '%s' has %d dims, at most %d allowed",
                          clean(nm, sizeof nm, name), n_dims, ST_MAX_DIMS);
    size_t esize = dtype_sizes[dtype], n_bytes = esize;
    int empty = 0;
    for (int i = 0; i < n_dims; i++) {
        if (shape[i] < 0)
            return status_set(STATUS_INVALID, "tensor '%s' has negative dim %lld",
                              clean(nm, sizeof nm, name), (long long)shape[i]);
        empty |= shape[i] == 0;
    }
    for (int i = 0; i < n_dims && !empty; i++) {
        if ((uint64_t)shape[i] > SIZE_MAX / n_bytes)
            return status_set(STATUS_INVALID, "tensor '%s': shape %s overflows the size",
                              clean(nm, sizeof nm, name), shape_str(sh, sizeof sh, n_dims, shape));
        n_bytes *= (size_t)shape[i];
    }
    memset(e, 0, sizeof *e);
    e->dtype = dtype;
    e->n_dims = n_dims;
    for (int i = 0; i < n_dims; i++) e->shape[i] = shape[i];
    e->n_bytes = empty ? 0 : n_bytes;
    return STATUS_OK;
}

/* Append e (taking its owned buffer) under a copy of name. */
static int push_entry(struct st_writer *w, struct st_entry *e, const char *name)
{
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        struct st_entry *p = mem_realloc(w->entries, (size_t)cap * sizeof *p);
        if (!p) {
            mem_free(e->owned);
            return STATUS_NOMEM;
        }
        w->entries = p;
        w->cap = cap;
    }
    if (!(e->name = mem_strdup(name))) {
        mem_free(e->owned);
        return STATUS_NOMEM;
    }
    w->entries[w->n++] = *e;
    return STATUS_OK;
}

int st_writer_add(struct st_writer *w, const char *name, enum st_dtype dtype, int n_dims,
                  const int64_t *shape, const void *data)
{
    struct st_entry e;
    int s = make_entry(w, &e, name, dtype, n_dims, shape);
    if (s != STATUS_OK) return s;
    CHECK(data || e.n_bytes == 0);
    e.data = data;
    return push_entry(w, &e, name);
}

static void int_shape(int n_dims, const int *shape, int64_t *out)
{
    CHECK(n_dims >= 0 && n_dims <= ST_MAX_DIMS);
    for (int i = 0; i < n_dims; i++) out[i] = shape[i];
}

int st_writer_add_f32(struct st_writer *w, const char *name, int n_dims, const int *shape,
                      const float *data)
{
    int64_t sh[ST_MAX_DIMS];
    int_shape(n_dims, shape, sh);
    return st_writer_add(w, name, ST_F32, n_dims, sh, data);
}

int st_writer_add_f16(struct st_writer *w, const char *name, int n_dims, const int *shape,
                      const float *data)
{
    int64_t sh[ST_MAX_DIMS];
    int_shape(n_dims, shape, sh);
    struct st_entry e;
    int s = make_entry(w, &e, name, ST_F16, n_dims, sh);
    if (s != STATUS_OK) return s;
    CHECK(data || e.n_bytes == 0);
    size_t n = e.n_bytes / 2;
    uint16_t *h = mem_alloc(e.n_bytes);
    if (!h) return STATUS_NOMEM;
    for (size_t i = 0; i < n; i++) h[i] = st_f32_to_f16(data[i]);
    e.data = e.owned = h;
    return push_entry(w, &e, name);
}

int st_writer_meta(struct st_writer *w, const char *key, const char *value)
{
    char k[NAME_BUF];
    if (!json_utf8_valid(key, strlen(key)))
        return status_set(STATUS_INVALID, "metadata key '%s' is not valid UTF-8",
                          clean(k, sizeof k, key));
    if (!json_utf8_valid(value, strlen(value)))
        return status_set(STATUS_INVALID, "metadata '%s': value is not valid UTF-8",
                          clean(k, sizeof k, key));
    char *v = mem_strdup(value);
    if (!v) return STATUS_NOMEM;
    for (int i = 0; i < w->n_meta; i++) {
        if (strcmp(w->meta[2 * i], key)) continue;
        mem_free(w->meta[2 * i + 1]);
        w->meta[2 * i + 1] = v;
        return STATUS_OK;
    }
    if (w->n_meta == w->cap_meta) {
        int cap = w->cap_meta ? 2 * w->cap_meta : 8;
        char **p = mem_realloc(w->meta, 2 * (size_t)cap * sizeof *p);
        if (!p) {
            mem_free(v);
            return STATUS_NOMEM;
        }
        w->meta = p;
        w->cap_meta = cap;
    }
    char *kk = mem_strdup(key);
    if (!kk) {
        mem_free(v);
        return STATUS_NOMEM;
    }
    w->meta[2 * w->n_meta] = kk;
    w->meta[2 * w->n_meta + 1] = v;
    w->n_meta++;
    return STATUS_OK;
}

/* Larger elements first, then by name (byte order of UTF-8 is code-point order, which is
 * how Python sorts the names). */
static int cmp_entry(const void *a, const void *b)
{
    const struct st_entry *x = *(const struct st_entry *const *)a;
    const struct st_entry *y = *(const struct st_entry *const *)b;
    size_t sx = dtype_sizes[x->dtype], sy = dtype_sizes[y->dtype];
    if (sx != sy) return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}


static void hb_quoted(struct strbuf *b, const char *s)
{
    char *q = json_quote(s, 1);
    if (!q) b->failed = 1;
    else strbuf_puts(b, q);
    mem_free(q);
}

/* The header as Python's json.dumps(header, separators=(",", ":")) prints it, padded with
 * spaces to a multiple of 8; order[] is the data order. */
static int build_header(const struct st_writer *w, const struct st_entry **order,
                        struct strbuf *b)
{
    char num[64];
    strbuf_puts(b, "{");
    if (w->n_meta) {
        strbuf_puts(b, "\"__metadata__\":{");
        for (int i = 0; i < w->n_meta; i++) {
            if (i) strbuf_puts(b, ",");
            hb_quoted(b, w->meta[2 * i]);
            strbuf_puts(b, ":");
            hb_quoted(b, w->meta[2 * i + 1]);
        }
        strbuf_puts(b, "}");
    }
    size_t offset = 0;
    for (int i = 0; i < w->n; i++) {
        const struct st_entry *e = order[i];
        if (i || w->n_meta) strbuf_puts(b, ",");
        hb_quoted(b, e->name);
        strbuf_puts(b, ":{\"dtype\":\"");
        strbuf_puts(b, dtype_names[e->dtype]);
        strbuf_puts(b, "\",\"shape\":[");
        for (int d = 0; d < e->n_dims; d++) {
            snprintf(num, sizeof num, d ? ",%lld" : "%lld", (long long)e->shape[d]);
            strbuf_puts(b, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", offset, offset + e->n_bytes);
        strbuf_puts(b, num);
        offset += e->n_bytes;
    }
    strbuf_puts(b, "}");
    while (!b->failed && b->n % 8) strbuf_put(b, " ", 1);
    return b->failed ? status_set(STATUS_NOMEM, "out of memory building a safetensors header")
                     : STATUS_OK;
}

int st_writer_write(const struct st_writer *w, const char *path)
{
    const struct st_entry **order = mem_calloc((size_t)w->n + 1, sizeof *order);
    struct strbuf hb = {0};
    struct fs_atomic f;
    int s = STATUS_OK;
    if (!order) return status_prefix(STATUS_NOMEM, "%s", path);
    for (int i = 0; i < w->n; i++) order[i] = &w->entries[i];
    qsort(order, (size_t)w->n, sizeof *order, cmp_entry);
    if ((s = build_header(w, order, &hb)) != STATUS_OK) {
        s = status_prefix(s, "%s", path);
        goto done;
    }
    if ((s = fs_atomic_begin(&f, path, 0))) goto done;
    unsigned char len8[8];
    uint64_t n = hb.n;
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(n >> (8 * i));
    s = fs_atomic_write(&f, len8, 8);
    if (!s) s = fs_atomic_write(&f, hb.p, hb.n);
    for (int i = 0; i < w->n && !s; i++)
        if (order[i]->n_bytes) s = fs_atomic_write(&f, order[i]->data, order[i]->n_bytes);
    if (s) fs_atomic_abort(&f);
    else s = fs_atomic_commit(&f);
done:
    mem_free(hb.p);
    mem_free(order);
    return s;
}
