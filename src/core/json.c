/* json.c: the small JSON document API of json.h, over jansson.
 *
 * Key idea: jansson only parses (strict UTF-8, duplicate keys rejected, nesting depth
 * capped); the result is copied at once into basin's own tree, so no jansson type leaks out
 * and borrowed values have stable addresses. Dumping is done here too, because jansson
 * prints reals with 17 digits (0.1 as 0.10000000000000001): we print the shortest digits
 * that read back to the same double, in the layout of Python's repr, so a config written
 * by basin looks like one written by Python and every double round-trips exactly.
 * ref: RFC 8259 (JSON); Python Lib/json/encoder.py (ensure_ascii escaping);
 *      Python's float repr (shortest round-trip, fixed notation for 1e-4 <= |x| < 1e16).
 */
#include "basin/core/json.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/core/strbuf.h"

struct json {
    enum json_kind kind;
    int single;              /* JSON_KIND_REAL set from a float: dump the shortest float form */
    struct json *parent;     /* NULL for a root */
    int index;               /* position in the parent */
    char *label;             /* roots only: the name used in messages */
    union {
        int b;
        int64_t i;
        double d;
        char *s;
    } u;
    int n, cap;              /* items of an array or object */
    struct json **items;     /* (n) */
    char **keys;             /* (n), objects only */
};

/* ----------------------------------------------------------------------------- nodes */

static struct json *node_new(enum json_kind kind)
{
    struct json *v = mem_calloc(1, sizeof *v);
    if (v) v->kind = kind;
    return v;
}

static void node_free(struct json *v)
{
    if (!v) return;
    for (int i = 0; i < v->n; i++) {
        node_free(v->items[i]);
        if (v->keys) mem_free(v->keys[i]);
    }
    mem_free(v->items);
    mem_free(v->keys);
    if (v->kind == JSON_KIND_STRING) mem_free(v->u.s);
    mem_free(v->label);
    mem_free(v);
}

void json_destroy(struct json *v)
{
    if (!v) return;
    CHECK(!v->parent);
    node_free(v);
}

static int reserve(struct json *c, int n)
{
    if (n <= c->cap) return STATUS_OK;
    int cap = c->cap ? c->cap * 2 : 4;
    while (cap < n) cap *= 2;
    struct json **items = mem_realloc(c->items, (size_t)cap * sizeof *items);
    if (!items) return STATUS_NOMEM;
    c->items = items;
    if (c->kind == JSON_KIND_OBJECT) {
        char **keys = mem_realloc(c->keys, (size_t)cap * sizeof *keys);
        if (!keys) return STATUS_NOMEM;
        c->keys = keys;
    }
    c->cap = cap;
    return STATUS_OK;
}

/* Append child (owned from now on) to a container, under key for an object. On failure
 * child is freed. */
static int append(struct json *c, const char *key, struct json *child)
{
    char *k = NULL;
    if (reserve(c, c->n + 1) != STATUS_OK || (key && !(k = mem_strdup(key)))) {
        node_free(child);
        return STATUS_NOMEM;
    }
    child->parent = c;
    child->index = c->n;
    c->items[c->n] = child;
    if (c->kind == JSON_KIND_OBJECT) c->keys[c->n] = k;
    c->n++;
    return STATUS_OK;
}

/* ----------------------------------------------------------------------------- parsing */

/* A copy of jansson's tree; NULL on allocation failure. Depth is bounded by jansson's
 * JSON_PARSER_MAX_DEPTH, so the recursion is too. */
static struct json *convert(json_t *j)
{
    struct json *v = NULL;
    switch (json_typeof(j)) {
    case JSON_NULL: return node_new(JSON_KIND_NULL);
    case JSON_TRUE:
    case JSON_FALSE:
        if ((v = node_new(JSON_KIND_BOOL))) v->u.b = json_is_true(j);
        return v;
    case JSON_INTEGER:
        if ((v = node_new(JSON_KIND_INT))) v->u.i = (int64_t)json_integer_value(j);
        return v;
    case JSON_REAL:
        if ((v = node_new(JSON_KIND_REAL))) v->u.d = json_real_value(j);
        return v;
    case JSON_STRING:
        if (!(v = node_new(JSON_KIND_STRING))) return NULL;
        if (!(v->u.s = mem_strdup(json_string_value(j)))) {
            node_free(v);
            return NULL;
        }
        return v;
    case JSON_ARRAY: {
        if (!(v = node_new(JSON_KIND_ARRAY))) return NULL;
        size_t i;
        json_t *item;
        json_array_foreach(j, i, item) {
            struct json *c = convert(item);
            if (!c || append(v, NULL, c) != STATUS_OK) {
                node_free(v);
                return NULL;
            }
        }
        return v;
    }
    case JSON_OBJECT: {
        if (!(v = node_new(JSON_KIND_OBJECT))) return NULL;
        const char *key;
        json_t *item;
        json_object_foreach(j, key, item) {
            struct json *c = convert(item);
            if (!c || append(v, key, c) != STATUS_OK) {
                node_free(v);
                return NULL;
            }
        }
        return v;
    }
    }
    return NULL;
}

/* Copy src into dst (n bytes) for a one-line message: control bytes become '?'. */
static void printable(char *dst, size_t n, const char *src)
{
    size_t k = 0;
    for (; src[k] && k + 1 < n; k++) {
        unsigned char c = (unsigned char)src[k];
        dst[k] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    dst[k] = 0;
}

int json_parse(const char *text, const char *label, struct json **out)
{
    *out = NULL;
    const char *name = label ? label : "JSON";
    json_error_t err;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (!j) {
        char msg[sizeof err.text];
        printable(msg, sizeof msg, err.text);
        return status_set(STATUS_FORMAT, "%s: line %d, column %d: %s", name, err.line,
                          err.column, msg);
    }
    struct json *v = convert(j);
    json_decref(j);
    if (!v || !(v->label = mem_strdup(name))) {
        node_free(v);
        return status_prefix(STATUS_NOMEM, "%s", name);
    }
    *out = v;
    return STATUS_OK;
}

void json_count(const char *text, size_t n, struct json_counts *out)
{
    memset(out, 0, sizeof *out);
    /* The kinds of the open containers, as bits (1: array), for the first 4096 levels
     * (jansson refuses more than 2048); deeper ones count as arrays. */
    uint64_t arrays[64] = {0};
    long depth = 0;
    const char *p = text, *end = text + n;
    while (p < end && *p) {
        unsigned char c = (unsigned char)*p;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == ':') {
            p++;
            continue;
        }
        if (c == ']' || c == '}') {
            if (depth > 0) depth--;
            p++;
            continue;
        }
        int is_value = 1;
        if (c == '"') {
            for (p++; p < end && *p && *p != '"'; p++)
                if (*p == '\\' && p + 1 < end && p[1]) p++;
            if (p < end && *p) p++;
            const char *q = p;
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')) q++;
            is_value = q == end || *q != ':'; /* a key, not a value */
        }
        if (is_value) {
            out->n_values++;
            if (depth == 1) out->top_len++;
            long up = depth - 1;
            if (depth > 0 && (up >= 4096 || (arrays[up / 64] >> (up % 64) & 1))) out->n_items++;
        }
        if (c == '[' || c == '{') {
            if (depth < 4096) {
                uint64_t bit = (uint64_t)1 << (depth % 64);
                if (c == '[') arrays[depth / 64] |= bit;
                else arrays[depth / 64] &= ~bit;
            }
            if (++depth > out->depth) out->depth = depth;
            p++;
        } else if (c != '"') {
            /* a number or literal: up to the next delimiter */
            while (p < end && *p && !strchr(" \t\n\r,:[]{}\"", *p)) p++;
        }
    }
}

int json_parse_max(const char *text, const char *label, long max_values, struct json **out)
{
    *out = NULL;
    struct json_counts n;
    json_count(text, strlen(text), &n);
    if (n.n_values > max_values)
        return status_set(STATUS_FORMAT, "%s: %ld values, more than the %ld it may hold",
                          label ? label : "JSON", n.n_values, max_values);
    return json_parse(text, label, out);
}

/* ----------------------------------------------------------------------------- reading */

enum json_kind json_kind_of(const struct json *v)
{
    return v->kind;
}

const char *json_kind_name(enum json_kind kind)
{
    static const char *const names[] = {"null", "a boolean", "an integer", "a real number",
                                        "a string", "an array", "an object"};
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

int json_len(const struct json *v)
{
    return v->kind == JSON_KIND_ARRAY || v->kind == JSON_KIND_OBJECT ? v->n : 0;
}

const struct json *json_at(const struct json *v, int i)
{
    CHECK((v->kind == JSON_KIND_ARRAY || v->kind == JSON_KIND_OBJECT) && i >= 0 && i < v->n);
    return v->items[i];
}

const char *json_key_at(const struct json *obj, int i)
{
    CHECK(obj->kind == JSON_KIND_OBJECT && i >= 0 && i < obj->n);
    return obj->keys[i];
}

const struct json *json_find(const struct json *obj, const char *key)
{
    if (!obj || obj->kind != JSON_KIND_OBJECT) return NULL;
    for (int i = 0; i < obj->n; i++)
        if (!strcmp(obj->keys[i], key)) return obj->items[i];
    return NULL;
}

static const char *label_of(const struct json *v)
{
    while (v->parent) v = v->parent;
    return v->label ? v->label : "JSON";
}

/* The path of v below its root ("norm.mean[3]"), "" for the root itself. */
static void path_of(const struct json *v, char *buf, size_t n)
{
    if (!v->parent) {
        buf[0] = 0;
        return;
    }
    path_of(v->parent, buf, n);
    size_t k = strlen(buf);
    if (v->parent->kind == JSON_KIND_OBJECT)
        snprintf(buf + k, n - k, "%s%s", k ? "." : "", v->parent->keys[v->index]);
    else
        snprintf(buf + k, n - k, "[%d]", v->index);
}

static void format_real(char *buf, size_t n, double d, int single);

/* "2.5", "a string": what v is, for a message. */
static const char *describe(const struct json *v, char *buf, size_t n)
{
    switch (v->kind) {
    case JSON_KIND_INT: snprintf(buf, n, "%lld", (long long)v->u.i); return buf;
    case JSON_KIND_REAL: format_real(buf, n, v->u.d, v->single); return buf;
    case JSON_KIND_BOOL: return v->u.b ? "true" : "false";
    default: return json_kind_name(v->kind);
    }
}

/* Record "<label>: '<path>' <what>" and return s. */
static int fail(int s, const struct json *v, const char *what)
{
    char path[256], p[256];
    path_of(v, path, sizeof path);
    printable(p, sizeof p, path);
    if (p[0]) return status_set(s, "%s: '%s' %s", label_of(v), p, what);
    return status_set(s, "%s: the value %s", label_of(v), what);
}

static int fail_kind(const struct json *v, const char *expected)
{
    char buf[64], what[160];
    snprintf(what, sizeof what, "is %s, expected %s", describe(v, buf, sizeof buf), expected);
    return fail(STATUS_FORMAT, v, what);
}

static int out_of_range(const struct json *v, const char *type, int64_t lo, int64_t hi)
{
    char buf[64], what[200];
    snprintf(what, sizeof what, "is %s, out of range for %s [%lld, %lld]",
             describe(v, buf, sizeof buf), type, (long long)lo, (long long)hi);
    return fail(STATUS_INVALID, v, what);
}

/* An integer, or a real with an integral value, within [lo, hi]. */
static int to_integer(const struct json *v, int64_t lo, int64_t hi, const char *type,
                      int64_t *out)
{
    int64_t x;
    if (v->kind == JSON_KIND_INT) {
        x = v->u.i;
    } else if (v->kind == JSON_KIND_REAL && isfinite(v->u.d) && v->u.d == floor(v->u.d)) {
        const double two63 = 9223372036854775808.0;
        if (v->u.d < -two63 || v->u.d >= two63) return out_of_range(v, type, lo, hi);
        x = (int64_t)v->u.d;
    } else {
        return fail_kind(v, "an integer");
    }
    if (x < lo || x > hi) return out_of_range(v, type, lo, hi);
    *out = x;
    return STATUS_OK;
}

int json_to_int64(const struct json *v, int64_t *out)
{
    return to_integer(v, INT64_MIN, INT64_MAX, "a 64-bit integer", out);
}

int json_to_int(const struct json *v, int *out)
{
    int64_t x = 0;
    int s = to_integer(v, INT32_MIN, INT32_MAX, "an int", &x);
    if (s == STATUS_OK) *out = (int)x;
    return s;
}

int json_to_double(const struct json *v, double *out)
{
    if (v->kind == JSON_KIND_INT) *out = (double)v->u.i;
    else if (v->kind == JSON_KIND_REAL) *out = v->u.d;
    else return fail_kind(v, "a number");
    return STATUS_OK;
}

int json_to_float(const struct json *v, float *out)
{
    double d = 0;
    int s = json_to_double(v, &d);
    if (s != STATUS_OK) return s;
    if (fabs(d) >= 0x1.ffffffp127) { /* rounds to infinity */
        char buf[64], what[160];
        snprintf(what, sizeof what, "is %s, out of range for a float", describe(v, buf, sizeof buf));
        return fail(STATUS_INVALID, v, what);
    }
    *out = (float)d;
    return STATUS_OK;
}

int json_to_bool(const struct json *v, int *out)
{
    if (v->kind != JSON_KIND_BOOL) return fail_kind(v, "true or false");
    *out = v->u.b;
    return STATUS_OK;
}

int json_to_string(const struct json *v, const char **out)
{
    if (v->kind != JSON_KIND_STRING) return fail_kind(v, "a string");
    *out = v->u.s;
    return STATUS_OK;
}

static int check_array(const struct json *v, int cap, const char *items)
{
    if (v->kind != JSON_KIND_ARRAY) {
        char expected[64];
        snprintf(expected, sizeof expected, "an array of %s", items);
        return fail_kind(v, expected);
    }
    if (v->n > cap) {
        char what[128];
        snprintf(what, sizeof what, "has %d items, at most %d expected", v->n, cap);
        return fail(STATUS_INVALID, v, what);
    }
    return STATUS_OK;
}

/* One array getter per item type; items are converted into a scratch copy first so out
 * is untouched on failure. */
#define ARRAY_GETTER(fn, item_fn, type, what)                                               \
    int fn(const struct json *v, type *out, int cap, int *n)                               \
    {                                                                                       \
        int s = check_array(v, cap, what);                                                  \
        if (s != STATUS_OK) return s;                                                       \
        for (int i = 0; i < v->n; i++) {                                                    \
            type x = 0;                                                                     \
            if ((s = item_fn(v->items[i], &x)) != STATUS_OK) return s;                      \
        }                                                                                   \
        for (int i = 0; i < v->n; i++) item_fn(v->items[i], &out[i]);                       \
        *n = v->n;                                                                          \
        return STATUS_OK;                                                                   \
    }

ARRAY_GETTER(json_to_ints, json_to_int, int, "integers")
ARRAY_GETTER(json_to_doubles, json_to_double, double, "numbers")
ARRAY_GETTER(json_to_floats, json_to_float, float, "numbers")
ARRAY_GETTER(json_to_strings, json_to_string, const char *, "strings")

static const struct json *find_or_fail(const struct json *obj, const char *key)
{
    const struct json *v = json_find(obj, key);
    if (!v) {
        char k[200];
        printable(k, sizeof k, key);
        if (obj->kind != JSON_KIND_OBJECT) fail_kind(obj, "an object");
        else if (obj->parent) {
            char path[256], p[256];
            path_of(obj, path, sizeof path);
            printable(p, sizeof p, path);
            status_set(STATUS_NOT_FOUND, "%s: no key '%s' in '%s'", label_of(obj), k, p);
        } else {
            status_set(STATUS_NOT_FOUND, "%s: no key '%s'", label_of(obj), k);
        }
    }
    return v;
}

#define KEYED_GETTER(fn, value_fn, type)                                                    \
    int fn(const struct json *obj, const char *key, type *out)                             \
    {                                                                                       \
        const struct json *v = find_or_fail(obj, key);                                      \
        if (!v) return obj->kind == JSON_KIND_OBJECT ? STATUS_NOT_FOUND : STATUS_FORMAT;    \
        return value_fn(v, out);                                                            \
    }
#define KEYED_ARRAY_GETTER(fn, value_fn, type)                                              \
    int fn(const struct json *obj, const char *key, type *out, int cap, int *n)            \
    {                                                                                       \
        const struct json *v = find_or_fail(obj, key);                                      \
        if (!v) return obj->kind == JSON_KIND_OBJECT ? STATUS_NOT_FOUND : STATUS_FORMAT;    \
        return value_fn(v, out, cap, n);                                                    \
    }

KEYED_GETTER(json_get_int, json_to_int, int)
KEYED_GETTER(json_get_int64, json_to_int64, int64_t)
KEYED_GETTER(json_get_double, json_to_double, double)
KEYED_GETTER(json_get_float, json_to_float, float)
KEYED_GETTER(json_get_bool, json_to_bool, int)
KEYED_GETTER(json_get_string, json_to_string, const char *)
KEYED_ARRAY_GETTER(json_get_ints, json_to_ints, int)
KEYED_ARRAY_GETTER(json_get_doubles, json_to_doubles, double)
KEYED_ARRAY_GETTER(json_get_floats, json_to_floats, float)
KEYED_ARRAY_GETTER(json_get_strings, json_to_strings, const char *)

/* ----------------------------------------------------------------------------- building */

static struct json *create_root(enum json_kind kind)
{
    struct json *v = node_new(kind);
    if (v && !(v->label = mem_strdup("JSON"))) {
        node_free(v);
        v = NULL;
    }
    return v;
}

struct json *json_create_object(void)
{
    return create_root(JSON_KIND_OBJECT);
}

struct json *json_create_array(void)
{
    return create_root(JSON_KIND_ARRAY);
}

/* Put child (owned from now on; freed on failure) under key in obj, replacing in place. */
static int put(struct json *obj, const char *key, struct json *child)
{
    CHECK(obj->kind == JSON_KIND_OBJECT && key);
    if (!child) return STATUS_NOMEM;
    if (!json_utf8_valid(key, strlen(key))) {
        node_free(child);
        return status_set(STATUS_INVALID, "%s: key is not valid UTF-8", label_of(obj));
    }
    for (int i = 0; i < obj->n; i++) {
        if (strcmp(obj->keys[i], key)) continue;
        node_free(obj->items[i]);
        child->parent = obj;
        child->index = i;
        obj->items[i] = child;
        return STATUS_OK;
    }
    return append(obj, key, child);
}

static struct json *new_int(int64_t x)
{
    struct json *v = node_new(JSON_KIND_INT);
    if (v) v->u.i = x;
    return v;
}

static struct json *new_real(double x, int single)
{
    struct json *v = node_new(JSON_KIND_REAL);
    if (v) {
        v->u.d = x;
        v->single = single;
    }
    return v;
}

static struct json *new_string(const char *x)
{
    struct json *v = node_new(JSON_KIND_STRING);
    if (v && !(v->u.s = mem_strdup(x))) {
        node_free(v);
        v = NULL;
    }
    return v;
}

static int check_finite(const struct json *c, const char *key, double x)
{
    if (isfinite(x)) return STATUS_OK;
    char k[200];
    printable(k, sizeof k, key ? key : "");
    return status_set(STATUS_INVALID, "%s: %s%s%s is %g; JSON has no NaN or infinity",
                      label_of(c), key ? "'" : "a value", k, key ? "'" : "", x);
}

static int check_utf8(const struct json *c, const char *key, const char *x)
{
    if (json_utf8_valid(x, strlen(x))) return STATUS_OK;
    char k[200];
    printable(k, sizeof k, key ? key : "");
    return status_set(STATUS_INVALID, "%s: %s%s%s: string is not valid UTF-8", label_of(c),
                      key ? "'" : "a value", k, key ? "'" : "");
}

int json_set_int(struct json *obj, const char *key, int64_t v)
{
    return put(obj, key, new_int(v));
}

int json_set_double(struct json *obj, const char *key, double v)
{
    int s = check_finite(obj, key, v);
    return s != STATUS_OK ? s : put(obj, key, new_real(v, 0));
}

int json_set_null(struct json *obj, const char *key)
{
    return put(obj, key, node_new(JSON_KIND_NULL));
}

int json_set_bool(struct json *obj, const char *key, int v)
{
    struct json *b = node_new(JSON_KIND_BOOL);
    if (b) b->u.b = v != 0;
    return put(obj, key, b);
}

int json_set_string(struct json *obj, const char *key, const char *v)
{
    int s = check_utf8(obj, key, v);
    return s != STATUS_OK ? s : put(obj, key, new_string(v));
}

/* An array of n items made by make(i); NULL on allocation failure. */
#define ARRAY_OF(make)                                                                      \
    do {                                                                                    \
        struct json *a = node_new(JSON_KIND_ARRAY);                                         \
        if (!a || reserve(a, n) != STATUS_OK) {                                             \
            node_free(a);                                                                   \
            return put(obj, key, NULL);                                                     \
        }                                                                                   \
        for (int i = 0; i < n; i++) {                                                       \
            struct json *c = make;                                                          \
            if (!c || append(a, NULL, c) != STATUS_OK) {                                    \
                node_free(a);                                                               \
                return put(obj, key, NULL);                                                 \
            }                                                                               \
        }                                                                                   \
        return put(obj, key, a);                                                            \
    } while (0)

int json_set_ints(struct json *obj, const char *key, const int *v, int n)
{
    CHECK(n >= 0);
    ARRAY_OF(new_int(v[i]));
}

int json_set_doubles(struct json *obj, const char *key, const double *v, int n)
{
    CHECK(n >= 0);
    for (int i = 0; i < n; i++)
        if (check_finite(obj, key, v[i]) != STATUS_OK) return STATUS_INVALID;
    ARRAY_OF(new_real(v[i], 0));
}

int json_set_floats(struct json *obj, const char *key, const float *v, int n)
{
    CHECK(n >= 0);
    for (int i = 0; i < n; i++)
        if (check_finite(obj, key, v[i]) != STATUS_OK) return STATUS_INVALID;
    ARRAY_OF(new_real(v[i], 1));
}

int json_set_strings(struct json *obj, const char *key, const char *const *v, int n)
{
    CHECK(n >= 0);
    for (int i = 0; i < n; i++)
        if (check_utf8(obj, key, v[i]) != STATUS_OK) return STATUS_INVALID;
    ARRAY_OF(new_string(v[i]));
}

/* Detach a root so it can become a child: its label goes, its parent comes with append. */
static struct json *adopt(struct json *v)
{
    CHECK(v == NULL || v->parent == NULL);
    if (v) {
        mem_free(v->label);
        v->label = NULL;
    }
    return v;
}

int json_set_value(struct json *obj, const char *key, struct json *v)
{
    return put(obj, key, adopt(v));
}

static int push(struct json *arr, struct json *child)
{
    CHECK(arr->kind == JSON_KIND_ARRAY);
    if (!child) return STATUS_NOMEM;
    return append(arr, NULL, child);
}

int json_push_int(struct json *arr, int64_t v)
{
    return push(arr, new_int(v));
}

int json_push_double(struct json *arr, double v)
{
    int s = check_finite(arr, NULL, v);
    return s != STATUS_OK ? s : push(arr, new_real(v, 0));
}

int json_push_string(struct json *arr, const char *v)
{
    int s = check_utf8(arr, NULL, v);
    return s != STATUS_OK ? s : push(arr, new_string(v));
}

int json_push_value(struct json *arr, struct json *v)
{
    return push(arr, adopt(v));
}

/* ----------------------------------------------------------------------------- dumping */


/* Does text read back (in the current locale, as it was printed) to exactly d? */
static int reads_back(const char *text, double d, int single)
{
    double r = strtod(text, NULL);
    if (single) {
        float a = (float)r, f = (float)d;
        return memcmp(&a, &f, sizeof a) == 0;
    }
    return memcmp(&r, &d, sizeof r) == 0;
}

/* The shortest decimal that reads back to d (to (float)d when single), laid out as
 * Python's repr: fixed notation for exponents -4..15 with at least one decimal ("3.0"),
 * else "1e-05" / "1.5e+20". The decimal point is always '.', whatever the locale. */
static void format_real(char *buf, size_t n, double d, int single)
{
    char sci[40];
    int digits = 1, max_digits = single ? 9 : 17;
    for (; digits < max_digits; digits++) {
        snprintf(sci, sizeof sci, "%.*e", digits - 1, d);
        if (reads_back(sci, d, single)) break;
    }
    snprintf(sci, sizeof sci, "%.*e", digits - 1, d);
    const char *e = strchr(sci, 'e');
    int exp10 = e ? atoi(e + 1) : 0;
    if (exp10 >= -4 && exp10 < 16) {
        int decimals = digits - 1 - exp10;
        snprintf(buf, n, "%.*f", decimals > 0 ? decimals : 0, d);
    } else {
        snprintf(buf, n, "%s", sci);
    }
    int has_point = 0;
    for (char *p = buf; *p; p++) {
        if (*p == 'e') has_point = 1; /* scientific: no ".0" needed */
        if (!(*p >= '0' && *p <= '9') && *p != '-' && *p != '+' && *p != 'e') {
            *p = '.';
            has_point = 1;
        }
    }
    if (!has_point && strlen(buf) + 3 <= n) strcat(buf, ".0");
}

/* Decode one UTF-8 sequence of valid text at s; returns its length and sets *cp. */
static int utf8_decode(const unsigned char *s, unsigned *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] < 0xe0) {
        *cp = (s[0] & 0x1fu) << 6 | (s[1] & 0x3fu);
        return 2;
    }
    if (s[0] < 0xf0) {
        *cp = (s[0] & 0x0fu) << 12 | (s[1] & 0x3fu) << 6 | (s[2] & 0x3fu);
        return 3;
    }
    *cp = (s[0] & 0x07u) << 18 | (s[1] & 0x3fu) << 12 | (s[2] & 0x3fu) << 6 | (s[3] & 0x3fu);
    return 4;
}

int json_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c == 0) return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        int len;
        unsigned min;
        if (c >= 0xc2 && c <= 0xdf) len = 2, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef) len = 3, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4) len = 4, min = 0x10000;
        else return 0;
        if (n - i < (size_t)len) return 0;
        for (int k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80) return 0;
        unsigned cp;
        utf8_decode(s + i, &cp);
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += (size_t)len;
    }
    return 1;
}

static void sb_quote(struct strbuf *b, const char *str, int ascii)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    strbuf_put(b, "\"", 1);
    while (*s) {
        const unsigned char *run = s;
        while (*s >= 0x20 && *s != '"' && *s != '\\' && (!ascii || *s < 0x7f)) s++;
        strbuf_put(b, (const char *)run, (size_t)(s - run));
        if (!*s) break;
        unsigned cp;
        s += utf8_decode(s, &cp);
        char esc[16];
        switch (cp) {
        case '"': strbuf_put(b, "\\\"", 2); continue;
        case '\\': strbuf_put(b, "\\\\", 2); continue;
        case '\b': strbuf_put(b, "\\b", 2); continue;
        case '\f': strbuf_put(b, "\\f", 2); continue;
        case '\n': strbuf_put(b, "\\n", 2); continue;
        case '\r': strbuf_put(b, "\\r", 2); continue;
        case '\t': strbuf_put(b, "\\t", 2); continue;
        default: break;
        }
        unsigned units[2] = {cp, 0};
        int n_units = 1;
        if (cp >= 0x10000) { /* UTF-16 surrogate pair, as Python writes it */
            units[0] = 0xd800 + ((cp - 0x10000) >> 10);
            units[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
            n_units = 2;
        }
        for (int k = 0; k < n_units; k++) {
            unsigned u = units[k];
            esc[0] = '\\';
            esc[1] = 'u';
            esc[2] = hex[u >> 12 & 15];
            esc[3] = hex[u >> 8 & 15];
            esc[4] = hex[u >> 4 & 15];
            esc[5] = hex[u & 15];
            strbuf_put(b, esc, 6);
        }
    }
    strbuf_put(b, "\"", 1);
}

char *json_quote(const char *s, int ascii)
{
    CHECK(json_utf8_valid(s, strlen(s)));
    struct strbuf b = {0};
    sb_quote(&b, s, ascii);
    if (b.failed) {
        mem_free(b.p);
        status_set(STATUS_NOMEM, "out of memory quoting a JSON string");
        return NULL;
    }
    return b.p;
}

static void dump(struct strbuf *b, const struct json *v)
{
    char num[64];
    switch (v->kind) {
    case JSON_KIND_NULL: strbuf_puts(b, "null"); break;
    case JSON_KIND_BOOL: strbuf_puts(b, v->u.b ? "true" : "false"); break;
    case JSON_KIND_INT:
        snprintf(num, sizeof num, "%lld", (long long)v->u.i);
        strbuf_puts(b, num);
        break;
    case JSON_KIND_REAL:
        format_real(num, sizeof num, v->u.d, v->single);
        strbuf_puts(b, num);
        break;
    case JSON_KIND_STRING: sb_quote(b, v->u.s, 0); break;
    case JSON_KIND_ARRAY:
    case JSON_KIND_OBJECT:
        strbuf_puts(b, v->kind == JSON_KIND_ARRAY ? "[" : "{");
        for (int i = 0; i < v->n; i++) {
            if (i) strbuf_puts(b, ",");
            if (v->kind == JSON_KIND_OBJECT) {
                sb_quote(b, v->keys[i], 0);
                strbuf_puts(b, ":");
            }
            dump(b, v->items[i]);
        }
        strbuf_puts(b, v->kind == JSON_KIND_ARRAY ? "]" : "}");
        break;
    }
}

int json_dump(const struct json *v, char **out)
{
    struct strbuf b = {0};
    dump(&b, v);
    if (b.failed) {
        mem_free(b.p);
        *out = NULL;
        return status_set(STATUS_NOMEM, "%s: out of memory dumping JSON", label_of(v));
    }
    *out = b.p;
    return STATUS_OK;
}
