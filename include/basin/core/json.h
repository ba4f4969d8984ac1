/* json.h: a small JSON document API for every layer: model metadata (basin.config,
 * basin.frontend, basin.labels, basin.norm; DESIGN.md section 3), front-end parameters,
 * training state. It hides the JSON library (jansson) completely.
 *
 * A document is a tree of struct json values. A root comes from json_parse(),
 * json_create_object() or json_create_array() and is released with json_destroy(); every
 * value reached from it (json_find, json_at) is borrowed and valid until the root is
 * destroyed or the entry holding it is replaced. Objects keep their keys in the order of
 * the text (or of insertion) and never hold a key twice.
 *
 * Every root carries a label for messages ("m.safetensors: basin.config"); getters that
 * fail record a one-line detail naming the label and the path of the value
 * ("m.safetensors: basin.config: 'blocks[2]' is 2.5, expected an integer").
 *
 * Numbers: integers are 64-bit; reals are doubles, dumped in the shortest form that reads
 * back to the same double (Python's repr: 0.1, 1e-05, 3.0), so doubles round-trip exactly.
 * Strings are UTF-8 without NUL bytes. Dumps are compact (no spaces), UTF-8 unescaped.
 */
#ifndef BASIN_CORE_JSON_H
#define BASIN_CORE_JSON_H

#include <stddef.h>
#include <stdint.h>

struct json;

enum json_kind {
    JSON_KIND_NULL,
    JSON_KIND_BOOL,
    JSON_KIND_INT,
    JSON_KIND_REAL,
    JSON_KIND_STRING,
    JSON_KIND_ARRAY,
    JSON_KIND_OBJECT,
};

/* ----------------------------------------------------------------------------- parsing */

/* Parse text (NUL-terminated) into a new root whose messages are labelled with label
 * (copied; NULL means "JSON"). Duplicate keys in an object are an error. On success *out
 * is the root, to be released with json_destroy; on failure *out is NULL and the status is
 * STATUS_FORMAT ("<label>: line 1, column 12: ...") or STATUS_NOMEM. */
int json_parse(const char *text, const char *label, struct json **out);
/* Release a root and everything in it. NULL is a no-op; v must be a root (CHECK). */
void json_destroy(struct json *v);

/* What text[0..n) (up to a NUL) would cost, found without building anything (one pass,
 * no allocation):
 * the number of values (every scalar, array and object; object keys are not values), how
 * many of them are array items (at any depth), the deepest nesting, and the items (array)
 * or entries (object) of the top-level value.
 * Malformed text is counted as far as it goes; json_parse reports its errors. A parsed
 * tree costs about 100 bytes per value, so untrusted text is counted first. */
struct json_counts {
    long n_values;
    long n_items;
    long depth;
    long top_len;
};
void json_count(const char *text, size_t n, struct json_counts *out);
/* json_parse, refusing text of more than max_values values before anything is built:
 * STATUS_FORMAT "<label>: 16777217 values, more than the 11 it may hold". */
int json_parse_max(const char *text, const char *label, long max_values, struct json **out);

/* ----------------------------------------------------------------------------- reading */

enum json_kind json_kind_of(const struct json *v);
/* "null", "a boolean", "an integer", "a real number", "a string", "an array", "an object". */
const char *json_kind_name(enum json_kind kind);
/* Number of items of an array or entries of an object; 0 for any other kind. */
int json_len(const struct json *v);
/* The i-th item of an array or value of an object (0 <= i < json_len, CHECK). */
const struct json *json_at(const struct json *v, int i);
/* The i-th key of an object (0 <= i < json_len, CHECK): iterate keys to warn about unknown
 * ones. */
const char *json_key_at(const struct json *obj, int i);
/* The value of key in an object, or NULL when absent or when obj is not an object. */
const struct json *json_find(const struct json *obj, const char *key);

/* Value getters. Each returns 0 or STATUS_FORMAT (wrong kind) / STATUS_INVALID (out of
 * range, too many items), with a detail naming the label and path; *out is untouched on
 * failure.
 * - int / int64: an integer, or a real with an integral value, within the type's range;
 * - double: any number;  float: any number within the float range (rounded to nearest);
 * - bool: true or false only;  string: borrowed, valid as long as v.
 * Array getters read an array whose items all pass the item getter into out (at most cap
 * items, else STATUS_INVALID) and set *n to the item count. */
int json_to_int(const struct json *v, int *out);
int json_to_int64(const struct json *v, int64_t *out);
int json_to_double(const struct json *v, double *out);
int json_to_float(const struct json *v, float *out);
int json_to_bool(const struct json *v, int *out);
int json_to_string(const struct json *v, const char **out);
int json_to_ints(const struct json *v, int *out, int cap, int *n);
int json_to_doubles(const struct json *v, double *out, int cap, int *n);
int json_to_floats(const struct json *v, float *out, int cap, int *n);
int json_to_strings(const struct json *v, const char **out, int cap, int *n);

/* Keyed getters: json_find(obj, key) then the value getter. A missing key (or obj not an
 * object) is STATUS_NOT_FOUND ("<label>: no key 'width'"); check json_find() first for
 * optional keys. */
int json_get_int(const struct json *obj, const char *key, int *out);
int json_get_int64(const struct json *obj, const char *key, int64_t *out);
int json_get_double(const struct json *obj, const char *key, double *out);
int json_get_float(const struct json *obj, const char *key, float *out);
int json_get_bool(const struct json *obj, const char *key, int *out);
int json_get_string(const struct json *obj, const char *key, const char **out);
int json_get_ints(const struct json *obj, const char *key, int *out, int cap, int *n);
int json_get_doubles(const struct json *obj, const char *key, double *out, int cap, int *n);
int json_get_floats(const struct json *obj, const char *key, float *out, int cap, int *n);
int json_get_strings(const struct json *obj, const char *key, const char **out, int cap,
                     int *n);

/* ----------------------------------------------------------------------------- building */

/* New empty roots labelled "JSON"; NULL with STATUS_NOMEM recorded. */
struct json *json_create_object(void);
struct json *json_create_array(void);

/* Set key in an object (CHECK that obj is an object): a new key is appended, an existing
 * one has its value replaced in place (values previously borrowed from it become
 * invalid). Strings are copied and must be UTF-8 (STATUS_INVALID otherwise); doubles must
 * be finite (STATUS_INVALID: JSON has no NaN or infinity). Floats are stored as doubles and
 * dumped in the shortest form that reads back to the same float (0.1f as 0.1). Returns 0,
 * STATUS_INVALID or STATUS_NOMEM; obj is unchanged on failure. */
int json_set_int(struct json *obj, const char *key, int64_t v);
int json_set_double(struct json *obj, const char *key, double v);
int json_set_bool(struct json *obj, const char *key, int v);
int json_set_null(struct json *obj, const char *key);
int json_set_string(struct json *obj, const char *key, const char *v);
int json_set_ints(struct json *obj, const char *key, const int *v, int n);
int json_set_doubles(struct json *obj, const char *key, const double *v, int n);
int json_set_floats(struct json *obj, const char *key, const float *v, int n);
int json_set_strings(struct json *obj, const char *key, const char *const *v, int n);
/* Set key to a whole document: takes ownership of the root v in every case (on failure v
 * is destroyed), so nested objects read json_set_value(o, "stft", json_create_object()). */
int json_set_value(struct json *obj, const char *key, struct json *v);

/* Append to an array (CHECK that arr is an array); same rules as the setters. */
int json_push_int(struct json *arr, int64_t v);
int json_push_double(struct json *arr, double v);
int json_push_string(struct json *arr, const char *v);
int json_push_value(struct json *arr, struct json *v);

/* Dump v compactly ({"width":32,"damping":0.0,"blocks":[4,4,4]}) into a new
 * NUL-terminated string the caller frees with mem_free. Returns 0 or STATUS_NOMEM. */
int json_dump(const struct json *v, char **out);

/* ----------------------------------------------------------------------------- helpers */

/* 1 when s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or code points above
 * U+10FFFF) without NUL bytes, else 0. */
int json_utf8_valid(const char *s, size_t n);
/* s (valid UTF-8, CHECKed) as a quoted JSON string literal in a new string the caller
 * frees with mem_free; NULL with STATUS_NOMEM recorded. '"', '\\', \b \f \n \r \t get
 * their short escapes and other control characters \u00XX. ascii = 1 escapes the rest as
 * Python's json.dumps does by default: every character outside 0x20..0x7e as \uXXXX in
 * lowercase hex, with a surrogate pair above U+FFFF; ascii = 0 leaves it as UTF-8. */
char *json_quote(const char *s, int ascii);

#endif
