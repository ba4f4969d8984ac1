/* test_safetensors.c: the .safetensors reader and writer and the JSON module.
 *
 * Round trips bit-exact for every dtype (scalars and empty tensors too); a file written by
 * the PyTorch reference (tests/data/safetensors, see README.txt there) read back and
 * rewritten byte for byte; half / bfloat16 rounding against a naive twin and PyTorch;
 * every malformed header we can think of, truncation at every byte and a deterministic
 * fuzz loop (all must fail cleanly with a message naming the file, never crash: this runs
 * under ASan in `make sanitize`); atomic writes; JSON parsing, getters, building, dumping.
 */
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "basin/core/json.h"
#include "basin/model/safetensors.h"
#include "test.h"

#define REF_FILE "tests/data/safetensors/ref.safetensors"

/* ----------------------------------------------------------------------------- helpers */

/* The whole file in a malloc'd buffer (NULL if unreadable); *n its size. */
static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size + 1);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *n = (size_t)size;
    return buf;
}

static int spit(const char *path, const void *buf, size_t n)
{
    /* A new file rather than a truncated one: ext4 flushes a truncated-and-rewritten file
     * on close (auto_da_alloc), which costs milliseconds per fuzz case. */
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(buf, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Write a file with the given header length field, header text and data bytes. */
static void write_raw_len(const char *path, uint64_t len, const char *header, size_t n_header,
                          const void *data, size_t n_data)
{
    unsigned char *buf = malloc(8 + n_header + n_data + 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(len >> (8 * i));
    memcpy(buf + 8, header, n_header);
    if (n_data) memcpy(buf + 8 + n_header, data, n_data);
    if (spit(path, buf, 8 + n_header + n_data) != 0) test_fail(__FILE__, __LINE__, "cannot write %s", path);
    free(buf);
}

static void write_raw(const char *path, const char *header, size_t n_data)
{
    static const unsigned char zeros[256];
    write_raw_len(path, strlen(header), header, strlen(header), zeros, n_data);
}

/* st_load must fail with want (0: any non-zero status), a detail naming the file and
 * containing needle (NULL: anything). Returns 1 when it did. */
static int expect_reject(const char *path, int want, const char *needle, int line)
{
    struct st_file *f = (struct st_file *)1;
    status_clear();
    int s = st_load(path, &f);
    const char *d = status_detail();
    int ok = s != 0 && f == NULL && strstr(d, path) && (!want || s == want) &&
             (!needle || strstr(d, needle));
    if (!ok) test_fail(__FILE__, line, "st_load(%s) = %d (%s), expected %d with \"%s\"", path, s, d,
                       want, needle ? needle : "");
    if (s == 0) st_destroy(f);
    return ok;
}
#define EXPECT_REJECT(path, want, needle) expect_reject(path, want, needle, __LINE__)

static int count_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp-") != NULL;
    closedir(d);
    return n;
}

/* A small valid file with metadata and a few dtypes, scalar and empty tensors. */
static void write_small(const char *path)
{
    static const float a[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
    static const int64_t c = -5;
    static const unsigned char e[3] = {1, 0, 1};
    struct st_writer *w = st_writer_create();
    int sa[2] = {2, 3}, sb[1] = {4};
    float b[4] = {0.5f, -0.25f, 65504, 1e-7f};
    int64_t se[1] = {3}, sd[1] = {0};
    int ok = w && !st_writer_add_f32(w, "a", 2, sa, a) && !st_writer_add_f16(w, "b", 1, sb, b) &&
             !st_writer_add(w, "c", ST_I64, 0, NULL, &c) &&
             !st_writer_add(w, "d", ST_U8, 1, sd, NULL) && !st_writer_add(w, "e", ST_BOOL, 1, se, e) &&
             !st_writer_meta(w, "k", "v") && !st_writer_meta(w, "\xc3\xa9", "\xc3\xbc") &&
             !st_writer_write(w, path);
    if (!ok) test_fail(__FILE__, __LINE__, "write_small: %s", status_detail());
    st_writer_destroy(w);
}

/* Touch every byte of every tensor through the converters (ASan checks the bounds). */
static void touch_all(const struct st_file *f)
{
    for (int i = 0; i < st_count(f); i++) {
        const struct st_tensor *t = st_tensor_at(f, i);
        void *buf = malloc(t->numel * 4 + 4);
        if (st_to_f32(t, buf) != 0) st_to_i32(t, buf);
        free(buf);
        EXPECT(st_find(f, t->name) == t);
    }
    for (int i = 0; i < st_meta_count(f); i++)
        EXPECT(st_meta(f, st_meta_key_at(f, i)) != NULL);
}

/* ----------------------------------------------------------------------------- half floats */

static uint32_t f32_bits_of(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

/* Naive twin of st_f32_to_f16: binary search the sorted positive halves, then pick the
 * nearer neighbour in double arithmetic (exact here), ties to the even code. */
static uint16_t naive_f16(float x)
{
    if (isnan(x)) return signbit(x) ? 0xfe00 : 0x7e00;
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    double a = fabs((double)x);
    if (a >= 65520.0) return sign | 0x7c00;
    unsigned lo = 0, hi = 0x7bff; /* largest code with value <= a */
    while (lo < hi) {
        unsigned mid = (lo + hi + 1) / 2;
        if ((double)st_f16_to_f32((uint16_t)mid) <= a) lo = mid;
        else hi = mid - 1;
    }
    double below = st_f16_to_f32((uint16_t)lo), above = lo == 0x7bff ? 65536.0 : st_f16_to_f32((uint16_t)(lo + 1));
    unsigned code = lo;
    if (a - below > above - a || (a - below == above - a && (lo & 1))) code = lo + 1;
    return (uint16_t)(sign | code);
}

static void test_half_conversions(void)
{
    /* f16 -> f32 against the definition, and f16 -> f32 -> f16 is the identity. */
    int bad = 0;
    for (unsigned h = 0; h < 65536; h++) {
        unsigned e = h >> 10 & 31, m = h & 1023;
        double want = e == 31 ? (m ? NAN : INFINITY) : e ? ldexp(1024 + m, (int)e - 25) : ldexp(m, -24);
        if (h & 0x8000) want = -want;
        float got = st_f16_to_f32((uint16_t)h);
        if (e == 31 && m) bad += !isnan(got) || (signbit(got) != 0) != ((h & 0x8000) != 0);
        else bad += (double)got != want || !signbit(got) != !signbit(want);
        uint16_t back = st_f32_to_f16(got);
        if (e == 31 && m) bad += (back & 0x7e00) != 0x7e00 || (back & 0x8000) != (h & 0x8000);
        else bad += back != h;
        uint16_t b16 = st_f32_to_bf16(st_bf16_to_f32((uint16_t)h));
        if ((h & 0x7f80) == 0x7f80 && (h & 0x7f)) bad += (b16 & 0x7fc0) != 0x7fc0;
        else bad += b16 != h;
    }
    EXPECT_EQ_INT(bad, 0);
    /* f32 -> f16 against the naive twin: random bit patterns and values near every tie. */
    struct rng r;
    rng_seed(&r, 11);
    bad = 0;
    for (int i = 0; i < 200000; i++) {
        uint32_t u = (uint32_t)rng_u64(&r);
        if (i & 1) { /* a half's value plus or minus a few float ulps around the tie */
            uint32_t hb = f32_bits_of(st_f16_to_f32((uint16_t)(rng_u64(&r) & 0x7bff)));
            u = hb + 0x1000 + (uint32_t)(int)(rng_below(&r, 5) - 2) + (uint32_t)(rng_u64(&r) & 0x80000000u);
        }
        float x;
        memcpy(&x, &u, 4);
        if (st_f32_to_f16(x) != naive_f16(x)) {
            if (bad++ < 5) test_fail(__FILE__, __LINE__, "f16(%a) = %04x, naive %04x", (double)x, st_f32_to_f16(x), naive_f16(x));
        }
    }
    EXPECT_EQ_INT(bad, 0);
    EXPECT_EQ_INT(st_f32_to_f16(65519.0f), 0x7bff);
    EXPECT_EQ_INT(st_f32_to_f16(65520.0f), 0x7c00);
    EXPECT_EQ_INT(st_f32_to_f16(0x1p-25f), 0);
    EXPECT_EQ_INT(st_f32_to_f16(0x1.8p-25f), 1);
    EXPECT_EQ_INT(st_f32_to_f16(-0.0f), 0x8000);
    EXPECT_EQ_INT(st_f32_to_f16(1.0f + 0x1p-11f), 0x3c00); /* tie to even */
    EXPECT_EQ_INT(st_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    EXPECT_EQ_INT(st_f32_to_bf16(1.0f + 0x1.8p-7f), 0x3f82);
    EXPECT_EQ_INT(st_f32_to_bf16(FLT_MAX), 0x7f80);
}

/* ----------------------------------------------------------------------------- round trips */

static void test_dtypes(void)
{
    enum st_dtype d;
    for (int i = 0; i < ST_DTYPE_COUNT; i++) {
        REQUIRE_OK(st_dtype_parse(st_dtype_name((enum st_dtype)i), &d));
        EXPECT_EQ_INT(d, i);
    }
    EXPECT_EQ_INT(st_dtype_size(ST_BF16), 2);
    EXPECT_EQ_INT(st_dtype_size(ST_I64), 8);
    EXPECT_EQ_INT(st_dtype_parse("f32", &d), STATUS_UNSUPPORTED);
    EXPECT_STR(st_dtype_name(ST_DTYPE_COUNT), "?");
}

static void test_roundtrip_every_dtype(void)
{
    const char *path = test_path("rt.safetensors");
    struct rng r;
    rng_seed(&r, 3);
    unsigned char bytes[ST_DTYPE_COUNT][3][64];
    char names[ST_DTYPE_COUNT][3][32];
    int64_t shapes[3][3] = {{3, 2, 1}, {0}, {2, 0, 5}};
    int dims[3] = {3, 0, 3}; /* (3, 2, 1), a scalar, (2, 0, 5) empty */
    struct st_writer *w = st_writer_create();
    REQUIRE(w);
    for (int t = ST_DTYPE_COUNT - 1; t >= 0; t--) {
        for (int k = 0; k < 3; k++) {
            for (int i = 0; i < 64; i++) bytes[t][k][i] = (unsigned char)rng_u64(&r);
            if (t == ST_BOOL)
                for (int i = 0; i < 64; i++) bytes[t][k][i] &= 1;
            snprintf(names[t][k], sizeof names[t][k], "%s.%s", st_dtype_name((enum st_dtype)t),
                     k == 0 ? "dense" : k == 1 ? "scalar" : "empty");
            REQUIRE_OK(st_writer_add(w, names[t][k], (enum st_dtype)t, dims[k], shapes[k], bytes[t][k]));
        }
    }
    REQUIRE_OK(st_writer_meta(w, "basin.format", "1"));
    REQUIRE_OK(st_writer_meta(w, "note", "caf\xc3\xa9 \xe2\x98\x95 \xf0\x9f\x9a\x87 \"q\" \\ \n\t\x01"));
    REQUIRE_OK(st_writer_meta(w, "basin.format", "2")); /* replaced in place */
    REQUIRE_OK(st_writer_write(w, path));
    st_writer_destroy(w);

    struct st_file *f;
    REQUIRE_OK(st_load(path, &f));
    EXPECT_EQ_INT(st_count(f), 3 * ST_DTYPE_COUNT);
    EXPECT_STR(st_path(f), path);
    EXPECT_EQ_INT(st_meta_count(f), 2);
    EXPECT_STR(st_meta_key_at(f, 0), "basin.format");
    EXPECT_STR(st_meta(f, "basin.format"), "2");
    EXPECT_STR(st_meta(f, "note"), "caf\xc3\xa9 \xe2\x98\x95 \xf0\x9f\x9a\x87 \"q\" \\ \n\t\x01");
    EXPECT(st_meta(f, "absent") == NULL);
    EXPECT(st_find(f, "absent") == NULL);
    for (int t = 0; t < ST_DTYPE_COUNT; t++) {
        for (int k = 0; k < 3; k++) {
            const struct st_tensor *x = st_find(f, names[t][k]);
            REQUIRE(x);
            EXPECT_EQ_INT(x->dtype, t);
            EXPECT_EQ_INT(x->n_dims, dims[k]);
            for (int i = 0; i < dims[k]; i++) EXPECT_EQ_INT(x->shape[i], shapes[k][i]);
            EXPECT_EQ_INT(x->numel, k == 0 ? 6 : k == 1 ? 1 : 0);
            EXPECT_EQ_INT(x->n_bytes, x->numel * st_dtype_size((enum st_dtype)t));
            EXPECT(x->n_bytes == 0 || memcmp(x->data, bytes[t][k], x->n_bytes) == 0);
            EXPECT(((uintptr_t)x->data % st_dtype_size((enum st_dtype)t)) == 0);
        }
    }
    /* Tensors sit in the data area ordered by element size, then name. */
    const struct st_tensor *a = st_find(f, "F64.dense"), *b = st_find(f, "I64.dense");
    const struct st_tensor *c = st_find(f, "BOOL.dense"), *d = st_find(f, "U8.scalar");
    REQUIRE(a && b && c && d);
    EXPECT((const char *)a->data < (const char *)b->data);
    EXPECT((const char *)b->data < (const char *)c->data && (const char *)c->data < (const char *)d->data);
    st_destroy(f);
    st_destroy(NULL);

    size_t n;
    unsigned char *raw = slurp(path, &n);
    REQUIRE(raw);
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = len << 8 | raw[i];
    EXPECT_EQ_INT(len % 8, 0);
    EXPECT(raw[8 + len - 1] == ' ' || raw[8 + len - 1] == '}');
    free(raw);
}

static void test_empty_file_roundtrip(void)
{
    const char *path = test_path("empty.safetensors");
    struct st_writer *w = st_writer_create();
    REQUIRE(w);
    REQUIRE_OK(st_writer_write(w, path));
    st_writer_destroy(w);
    size_t n;
    unsigned char *raw = slurp(path, &n);
    REQUIRE(raw);
    EXPECT_EQ_INT(n, 16);
    EXPECT(memcmp(raw + 8, "{}      ", 8) == 0);
    free(raw);
    struct st_file *f;
    REQUIRE_OK(st_load(path, &f));
    EXPECT_EQ_INT(st_count(f), 0);
    EXPECT_EQ_INT(st_meta_count(f), 0);
    st_destroy(f);
    write_raw(test_path("nullmeta.safetensors"), "{\"__metadata__\":null}", 0);
    REQUIRE_OK(st_load(test_path("nullmeta.safetensors"), &f));
    EXPECT_EQ_INT(st_meta_count(f), 0);
    st_destroy(f);
}

static void test_f16_writer_and_converters(void)
{
    const char *path = test_path("f16.safetensors");
    float x[7] = {0.1f, -3.14159f, 65504, 70000, 1e-6f, -0.0f, 2.5f};
    double x64[2] = {1e300, 0.5};
    int32_t labels[3] = {2, 0, 9};
    int64_t labels64[3] = {2, 0, (int64_t)1 << 40};
    int shape[2] = {7, 1};
    int64_t s2[1] = {2}, s3[1] = {3};
    struct st_writer *w = st_writer_create();
    REQUIRE(w);
    REQUIRE_OK(st_writer_add_f16(w, "h", 2, shape, x));
    REQUIRE_OK(st_writer_add(w, "big", ST_F64, 1, s2, x64));
    REQUIRE_OK(st_writer_add(w, "y", ST_I32, 1, s3, labels));
    REQUIRE_OK(st_writer_add(w, "y64", ST_I64, 1, s3, labels64));
    REQUIRE_OK(st_writer_write(w, path));
    st_writer_destroy(w);

    struct st_file *f;
    REQUIRE_OK(st_load(path, &f));
    const struct st_tensor *h = st_find(f, "h");
    REQUIRE(h && h->dtype == ST_F16 && h->n_bytes == 14);
    float back[7], want[7];
    int shape_bad[2] = {1, 7};
    REQUIRE_OK(st_read_f32(f, "h", 2, shape, back));
    for (int i = 0; i < 7; i++) want[i] = st_f16_to_f32(st_f32_to_f16(x[i]));
    EXPECT(memcmp(back, want, sizeof back) == 0);
    EXPECT(isinf(back[3]));
    EXPECT_EQ_INT(st_read_f32(f, "h", 2, shape_bad, back), STATUS_MISMATCH);
    EXPECT(strstr(status_detail(), "has shape (7, 1), expected (1, 7)"));
    EXPECT_EQ_INT(st_read_f32(f, "nope", 2, shape, back), STATUS_NOT_FOUND);
    EXPECT(strstr(status_detail(), path) && strstr(status_detail(), "'nope'"));
    EXPECT_EQ_INT(st_to_f32(st_find(f, "big"), back), STATUS_NUMERIC);
    EXPECT(strstr(status_detail(), "'big'") && strstr(status_detail(), "index 0"));
    EXPECT_EQ_INT(st_to_f32(st_find(f, "y"), back), STATUS_MISMATCH);
    EXPECT(strstr(status_detail(), path) && strstr(status_detail(), "is I32"));
    int32_t y[3];
    REQUIRE_OK(st_to_i32(st_find(f, "y"), y));
    EXPECT(y[0] == 2 && y[1] == 0 && y[2] == 9);
    EXPECT_EQ_INT(st_to_i32(st_find(f, "y64"), y), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "1099511627776 at index 2"));
    EXPECT_EQ_INT(st_to_i32(h, y), STATUS_MISMATCH);
    st_destroy(f);
}

static void test_writer_rejects(void)
{
    float v[2] = {1, 2};
    int64_t ok_shape[1] = {2}, neg[1] = {-1}, huge[3] = {INT64_MAX, INT64_MAX, 2};
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 2};
    struct st_writer *w = st_writer_create();
    REQUIRE(w);
    REQUIRE_OK(st_writer_add(w, "x", ST_F32, 1, ok_shape, v));
    EXPECT_EQ_INT(st_writer_add(w, "x", ST_F32, 1, ok_shape, v), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "twice"));
    EXPECT_EQ_INT(st_writer_add(w, "__metadata__", ST_F32, 1, ok_shape, v), STATUS_INVALID);
    EXPECT_EQ_INT(st_writer_add(w, "bad\xff", ST_F32, 1, ok_shape, v), STATUS_INVALID);
    EXPECT_EQ_INT(st_writer_add(w, "bad\xed\xa0\x80", ST_F32, 1, ok_shape, v), STATUS_INVALID); /* surrogate */
    EXPECT_EQ_INT(st_writer_add(w, "neg", ST_F32, 1, neg, v), STATUS_INVALID);
    EXPECT_EQ_INT(st_writer_add(w, "huge", ST_F32, 3, huge, v), STATUS_INVALID);
    EXPECT_EQ_INT(st_writer_add(w, "nine", ST_F32, 9, nine, v), STATUS_INVALID);
    EXPECT_EQ_INT(st_writer_meta(w, "k", "\xc0\xaf"), STATUS_INVALID); /* overlong '/' */
    EXPECT_EQ_INT(st_writer_meta(w, "\xf5\x80\x80\x80", "v"), STATUS_INVALID);
    REQUIRE_OK(st_writer_write(w, test_path("rejects.safetensors")));
    st_writer_destroy(w);
    st_writer_destroy(NULL);
    struct st_file *f;
    REQUIRE_OK(st_load(test_path("rejects.safetensors"), &f));
    EXPECT_EQ_INT(st_count(f), 1);
    EXPECT_EQ_INT(st_meta_count(f), 0);
    st_destroy(f);
}

/* ----------------------------------------------------------------------------- the Python reference */

static void test_reads_python_reference(void)
{
    struct st_file *f;
    REQUIRE_OK(st_load(REF_FILE, &f));
    EXPECT_EQ_INT(st_count(f), 17);
    EXPECT_STR(st_meta(f, "basin.format"), "1");
    EXPECT_STR(st_meta(f, "basin.arch"), "cpresnet");
    EXPECT_STR(st_meta(f, "basin.note"),
               "\xc3\xa9 \"quoted\" \\ tab\t newline\n ctrl\x01 del\x7f \xf0\x9f\x9a\x87 /");
    EXPECT_STR(st_meta_key_at(f, 5), "basin.note");

    /* Integers. */
    int64_t i64[4];
    const struct st_tensor *t = st_find(f, "i64");
    REQUIRE(t && t->dtype == ST_I64 && t->numel == 4);
    memcpy(i64, t->data, sizeof i64);
    EXPECT(i64[0] == -((int64_t)1 << 62) && i64[1] == -1 && i64[3] == 7);
    int32_t iv[8];
    EXPECT_EQ_INT(st_to_i32(t, iv), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "'i64'") && strstr(status_detail(), "index 0"));
    REQUIRE_OK(st_to_i32(st_find(f, "i32"), iv));
    EXPECT(iv[0] == INT32_MAX && iv[1] == INT32_MIN);
    REQUIRE_OK(st_to_i32(st_find(f, "i16"), iv));
    EXPECT(iv[0] == -32768 && iv[1] == 32767 && iv[2] == 5);
    REQUIRE_OK(st_to_i32(st_find(f, "i8"), iv));
    for (int i = 0; i < 8; i++) EXPECT_EQ_INT(iv[i], i - 4);
    REQUIRE_OK(st_to_i32(st_find(f, "u8"), iv));
    for (int i = 0; i < 6; i++) EXPECT_EQ_INT(iv[i], 250 + i);
    REQUIRE_OK(st_to_i32(st_find(f, "bool"), iv));
    EXPECT(iv[0] == 1 && iv[1] == 0 && iv[2] == 1);

    /* Floats, a scalar, an empty tensor, a UTF-8 name. */
    float x[64];
    t = st_find(f, "scalar");
    REQUIRE(t && t->n_dims == 0 && t->numel == 1);
    REQUIRE_OK(st_to_f32(t, x));
    EXPECT(x[0] == 3.5f);
    t = st_find(f, "empty");
    REQUIRE(t && t->n_dims == 2 && t->shape[0] == 0 && t->shape[1] == 3 && t->numel == 0);
    REQUIRE_OK(st_to_f32(t, x));
    int sh[4] = {2, 1, 3, 3};
    REQUIRE_OK(st_read_f32(f, "s1.b1.bn1.weight", 4, sh, x));
    for (int i = 0; i < 18; i++) EXPECT(x[i] >= 0 && x[i] < 1);
    int two = 2;
    REQUIRE_OK(st_read_f32(f, "caf\xc3\xa9.\xf0\x9f\x9a\x87", 1, &two, x));
    EXPECT(x[0] == 1 && x[1] == 2);
    double f64[6];
    t = st_find(f, "f64");
    REQUIRE(t && t->dtype == ST_F64);
    memcpy(f64, t->data, sizeof f64);
    REQUIRE_OK(st_to_f32(t, x));
    for (int i = 0; i < 6; i++) EXPECT(x[i] == (float)f64[i]);

    /* Half and bfloat16 rounding exactly as PyTorch's .half() / .bfloat16(). */
    float src[64], via[64];
    t = st_find(f, "conv.src");
    REQUIRE(t && t->numel == 64);
    REQUIRE_OK(st_to_f32(t, src));
    const struct st_tensor *h = st_find(f, "conv.f16"), *b = st_find(f, "conv.bf16");
    REQUIRE(h && b && h->dtype == ST_F16 && b->dtype == ST_BF16);
    int bad = 0;
    for (int i = 0; i < 64; i++) {
        uint16_t hv, bv;
        memcpy(&hv, (const char *)h->data + 2 * i, 2);
        memcpy(&bv, (const char *)b->data + 2 * i, 2);
        if (st_f32_to_f16(src[i]) != hv || st_f32_to_bf16(src[i]) != bv) {
            if (bad++ < 5)
                test_fail(__FILE__, __LINE__, "src[%d] = %a: f16 %04x (torch %04x), bf16 %04x (torch %04x)", i,
                          (double)src[i], st_f32_to_f16(src[i]), hv, st_f32_to_bf16(src[i]), bv);
        }
    }
    EXPECT_EQ_INT(bad, 0);
    REQUIRE_OK(st_to_f32(h, via));
    for (int i = 0; i < 64; i++) EXPECT(memcmp(&via[i], &(float){st_f16_to_f32(st_f32_to_f16(src[i]))}, 4) == 0);

    /* The metadata JSON as Python's json.dumps wrote it. */
    struct json *cfg, *labels, *norm;
    REQUIRE_OK(json_parse(st_meta(f, "basin.config"), "ref: basin.config", &cfg));
    int width, blocks[3], nb;
    double damping;
    REQUIRE_OK(json_get_int(cfg, "width", &width));
    REQUIRE_OK(json_get_double(cfg, "damping", &damping));
    REQUIRE_OK(json_get_ints(cfg, "blocks", blocks, 3, &nb));
    EXPECT(width == 32 && damping == 0.1 && nb == 3 && blocks[2] == 4);
    json_destroy(cfg);
    REQUIRE_OK(json_parse(st_meta(f, "basin.labels"), "ref: basin.labels", &labels));
    const char *names[8];
    int n_names;
    REQUIRE_OK(json_to_strings(labels, names, 8, &n_names));
    EXPECT_EQ_INT(n_names, 4);
    EXPECT_STR(names[2], "caf\xc3\xa9 \xe2\x98\x95");
    EXPECT_STR(names[3], "m\xc3\xa9tro \xf0\x9f\x9a\x87");
    json_destroy(labels);
    REQUIRE_OK(json_parse(st_meta(f, "basin.norm"), "ref: basin.norm", &norm));
    double mean[3], std[3];
    int nm, ns;
    REQUIRE_OK(json_get_doubles(norm, "mean", mean, 3, &nm));
    REQUIRE_OK(json_get_doubles(norm, "std", std, 3, &ns));
    EXPECT(mean[0] == 0.1 && mean[1] == -2.5 && mean[2] == 1e-05);
    EXPECT(std[1] == 0.1 + 0.2 && std[2] == 1e20);
    json_destroy(norm);
    st_destroy(f);
}

/* Given the same tensors and metadata, basin writes the reference file byte for byte. */
static void test_writes_python_bytes(void)
{
    const char *path = test_path("rewritten.safetensors");
    struct st_file *f;
    REQUIRE_OK(st_load(REF_FILE, &f));
    struct st_writer *w = st_writer_create();
    REQUIRE(w);
    for (int i = st_count(f) - 1; i >= 0; i--) { /* reverse order: the writer sorts */
        const struct st_tensor *t = st_tensor_at(f, i);
        REQUIRE_OK(st_writer_add(w, t->name, t->dtype, t->n_dims, t->shape, t->data));
    }
    for (int i = 0; i < st_meta_count(f); i++)
        REQUIRE_OK(st_writer_meta(w, st_meta_key_at(f, i), st_meta_value_at(f, i)));
    REQUIRE_OK(st_writer_write(w, path));
    st_writer_destroy(w);
    st_destroy(f);
    size_t n_ref, n_out;
    unsigned char *ref = slurp(REF_FILE, &n_ref), *out = slurp(path, &n_out);
    REQUIRE(ref && out);
    EXPECT_EQ_INT(n_out, n_ref);
    size_t first = 0;
    while (first < n_ref && first < n_out && ref[first] == out[first]) first++;
    EXPECT_MSG(first == n_ref && n_out == n_ref, "files differ at byte %zu", first);
    free(ref);
    free(out);
}

/* ----------------------------------------------------------------------------- malformed files */

static void test_truncated_at_every_byte(void)
{
    const char *good = test_path("small.safetensors"), *cut = test_path("cut.safetensors");
    write_small(good);
    size_t n;
    unsigned char *raw = slurp(good, &n);
    REQUIRE(raw);
    struct st_file *f;
    REQUIRE_OK(st_load(good, &f));
    touch_all(f);
    st_destroy(f);
    int rejected = 0;
    for (size_t k = 0; k < n; k++) {
        REQUIRE(spit(cut, raw, k) == 0);
        rejected += EXPECT_REJECT(cut, 0, NULL);
    }
    EXPECT_EQ_INT(rejected, n);
    free(raw);
}

static void test_rejects_malformed_headers(void)
{
    const char *p = test_path("bad.safetensors");
    static const unsigned char zeros[64];

    /* Files too short, lengths that do not fit, absurd lengths. */
    write_raw_len(p, 0, "", 0, NULL, 0);
    EXPECT_REJECT(p, STATUS_FORMAT, "not valid JSON");
    REQUIRE(spit(p, "abc", 3) == 0);
    EXPECT_REJECT(p, STATUS_FORMAT, "not a safetensors file (3 bytes, too short");
    write_raw_len(p, 100, "{}", 2, NULL, 0);
    EXPECT_REJECT(p, STATUS_FORMAT, "not a safetensors file (header length 100 does not fit the 10-byte file)");
    write_raw_len(p, UINT64_MAX, "{}", 2, NULL, 0);
    EXPECT_REJECT(p, STATUS_FORMAT, "not a safetensors file (header length 1.8e19 does not fit the 10-byte file)");
    {
        /* Any other file reads its first 8 bytes as the length: say what it is first, once. */
        char text[3000];
        for (size_t i = 0; i < sizeof text; i++) text[i] = "Some text, not a model.\n"[i % 24];
        REQUIRE(spit(p, text, sizeof text) == 0);
        EXPECT_REJECT(p, STATUS_FORMAT, ": not a safetensors file (header length 8.7e18 does not fit the 2.9 KiB file)");
        EXPECT(strstr(status_detail(), p) == status_detail());
        EXPECT(strstr(status_detail() + 1, p) == NULL);
    }
    write_raw_len(p, (uint64_t)1 << 63, "{}", 2, NULL, 0);
    EXPECT_REJECT(p, STATUS_FORMAT, "does not fit");
    {
        /* A header length over the cap in a (sparse) file large enough to hold it. */
        write_raw_len(p, ST_MAX_HEADER + 8ull, "{}", 2, NULL, 0);
        REQUIRE(truncate(p, (off_t)ST_MAX_HEADER + 64) == 0);
        EXPECT_REJECT(p, STATUS_FORMAT, "exceeds the limit");
    }

    /* Not JSON, not an object, not UTF-8. */
    struct {
        const char *header;
        size_t n_data;
        int status;
        const char *needle;
    } cases[] = {
        {"hello   ", 0, STATUS_FORMAT, "not valid JSON"},
        {"{\"a\":", 0, STATUS_FORMAT, "not valid JSON"},
        {"[]      ", 0, STATUS_FORMAT, "header is an array"},
        {"\"x\"", 0, STATUS_FORMAT, "not valid JSON"},
        {"{\"\xff\":{}}", 0, STATUS_FORMAT, "not valid JSON"},
        {"{\"a\xc0\xaf\":{}}", 0, STATUS_FORMAT, "not valid JSON"},
        {"{} x", 0, STATUS_FORMAT, "not valid JSON"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}", 1,
         STATUS_FORMAT, "not valid JSON"},
        /* Duplicate keys, top level and inside an entry. */
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2, STATUS_FORMAT, "duplicate"},
        {"{\"a\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
         STATUS_FORMAT, "duplicate"},
        /* Metadata. */
        {"{\"__metadata__\":[1]}", 0, STATUS_FORMAT, "__metadata__ is an array"},
        {"{\"__metadata__\":\"x\"}", 0, STATUS_FORMAT, "__metadata__ is a string"},
        {"{\"__metadata__\":{\"k\":1}}", 0, STATUS_FORMAT, "__metadata__ 'k' is an integer"},
        {"{\"__metadata__\":{\"k\":{\"n\":\"v\"}}}", 0, STATUS_FORMAT, "expected a string"},
        {"{\"__metadata__\":{\"k\":null}}", 0, STATUS_FORMAT, "expected a string"},
        {"{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", 0, STATUS_FORMAT, "duplicate"},
        /* Entries. */
        {"{\"a\":1}", 0, STATUS_FORMAT, "tensor 'a': entry is an integer"},
        {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1, STATUS_FORMAT, "has no dtype"},
        {"{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1, STATUS_FORMAT, "has no shape"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, STATUS_FORMAT, "has no data_offsets"},
        {"{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
         STATUS_UNSUPPORTED, "dtype 'F8_E4M3' is not supported"},
        {"{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, STATUS_UNSUPPORTED, "'f32'"},
        {"{\"a\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, STATUS_FORMAT,
         "dtype is an integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,12]}}", 12, STATUS_FORMAT,
         "shape is an integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0, STATUS_FORMAT,
         "shape[0] is negative"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, STATUS_FORMAT,
         "shape[0] is a real number"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, STATUS_FORMAT,
         "shape[0] is a string"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,[2]],\"data_offsets\":[0,8]}}", 8, STATUS_FORMAT,
         "shape[1] is an array"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
         STATUS_FORMAT, "9 dims, at most 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
         "\"data_offsets\":[0,4]}}", 4, STATUS_FORMAT, "overflows"},
        {"{\"a\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,8]}}", 8,
         STATUS_FORMAT, "overflows"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[9223372036854775807,9223372036854775807],"
         "\"data_offsets\":[0,4]}}", 4, STATUS_FORMAT, "overflows"},
        /* Offsets. */
        {"{\"s1.b1.bn1.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[96,80]}}", 100,
         STATUS_FORMAT, "tensor 's1.b1.bn1.weight' data_offsets 96..80 are reversed"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12, STATUS_FORMAT,
         "run past the 12 data bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[-16,0]}}", 16, STATUS_FORMAT,
         "data_offsets[0] is negative"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}", 12, STATUS_FORMAT,
         "hold 12 bytes, but shape (4,) of F32 needs 16"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,0]}}", 0, STATUS_FORMAT,
         "shape () of F32 needs 4"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0]}}", 16, STATUS_FORMAT,
         "expected [begin, end]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16,16]}}", 16, STATUS_FORMAT,
         "expected [begin, end]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":{\"b\":0}}}", 16, STATUS_FORMAT,
         "data_offsets is an object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[\"0\",16]}}", 16, STATUS_FORMAT,
         "data_offsets[0] is a string"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16.0]}}", 16, STATUS_FORMAT,
         "data_offsets[1] is a real number"},
        /* Tiling: overlaps, gaps, trailing bytes. */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, STATUS_FORMAT,
         "tensors 'a' and 'b' overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, STATUS_FORMAT, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}", 8, STATUS_FORMAT, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, STATUS_FORMAT,
         "data bytes 8..12 before tensor 'b' belong to no tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, STATUS_FORMAT,
         "data bytes 0..4"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, STATUS_FORMAT,
         "4 trailing data bytes"},
        {"{}", 3, STATUS_FORMAT, "3 trailing data bytes"},
        {"{\"__metadata__\":{\"a\":\"b\"}}    ", 1, STATUS_FORMAT, "trailing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_raw(p, cases[i].header, cases[i].n_data);
        if (!EXPECT_REJECT(p, cases[i].status, cases[i].needle))
            test_fail(__FILE__, __LINE__, "case %zu: %s", i, cases[i].header);
    }

    /* A NUL byte, a control character and deep nesting inside the header. */
    write_raw_len(p, 12, "{\"a\":\0\"x\"}  ", 12, NULL, 0);
    EXPECT_REJECT(p, STATUS_FORMAT, "not valid JSON");
    write_raw_len(p, 8, "{\"\x01\":1}", 8, NULL, 0);
    EXPECT_REJECT(p, STATUS_FORMAT, "not valid JSON");
    {
        size_t depth = 100000, n = 2 * depth + 20;
        char *deep = malloc(n + 1);
        size_t k = (size_t)snprintf(deep, n, "{\"__metadata__\":");
        for (size_t i = 0; i < depth; i++) deep[k++] = '[';
        for (size_t i = 0; i < depth; i++) deep[k++] = ']';
        deep[k++] = '}';
        write_raw_len(p, k, deep, k, NULL, 0);
        EXPECT_REJECT(p, STATUS_FORMAT, "array items");
        /* nested deeper than jansson goes, with few items: jansson's own refusal */
        k = (size_t)snprintf(deep, n, "{\"__metadata__\":");
        for (size_t i = 0; i < 3000; i++) deep[k++] = '{', deep[k++] = '"', deep[k++] = 'a', deep[k++] = '"', deep[k++] = ':';
        deep[k++] = '0';
        for (size_t i = 0; i < 3000; i++) deep[k++] = '}';
        deep[k++] = '}';
        write_raw_len(p, k, deep, k, NULL, 0);
        EXPECT_REJECT(p, STATUS_FORMAT, "not valid JSON");
        free(deep);
    }
    {
        /* Arrays only hold shapes and offsets: 10 items an entry. An extra key with a big
         * array (ignored when small) is refused before it is parsed. */
        char hdr[600];
        snprintf(hdr, sizeof hdr, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1],\"data_offsets\":[0,1],"
                 "\"extra\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}}");
        write_raw(p, hdr, 1);
        struct st_file *ok;
        REQUIRE_OK(st_load(p, &ok));
        st_destroy(ok);
        size_t zeros_n = 100000, len = 0;
        char *big = malloc(2 * zeros_n + 200);
        len += (size_t)sprintf(big, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"extra\":[");
        for (size_t i = 0; i < zeros_n; i++) big[len++] = '0', big[len++] = ',';
        len += (size_t)sprintf(big + len - 1, "]}}") - 1;
        big[len] = 0;
        write_raw(p, big, 1);
        EXPECT_REJECT(p, STATUS_FORMAT, "header holds 100003 array items for 1 entries");
        free(big);
    }

    /* Tensor names with control characters stay on one line in messages. */
    write_raw(p, "{\"a\\nb\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,0]}}", 16);
    EXPECT_REJECT(p, STATUS_FORMAT, "tensor 'a?b' data_offsets 8..0 are reversed");
    EXPECT(!strchr(status_detail(), '\n'));

    /* Valid edge cases: extra keys in an entry are ignored; an empty tensor with a huge dim. */
    struct st_file *f;
    write_raw(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[0,9223372036854775807],\"data_offsets\":[0,0],"
                 "\"extra\":1},\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
    REQUIRE_OK(st_load(p, &f));
    EXPECT_EQ_INT(st_find(f, "a")->numel, 0);
    touch_all(f);
    st_destroy(f);

    /* Unaligned data (header not padded to 8, odd offsets) still loads and converts. */
    float v[2] = {1.5f, -2};
    unsigned char data[9] = {7};
    memcpy(data + 1, v, 8);
    char hdr[] = "{\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                 "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]}}";
    write_raw_len(p, strlen(hdr), hdr, strlen(hdr), data, 9);
    REQUIRE_OK(st_load(p, &f));
    float back[2];
    REQUIRE_OK(st_to_f32(st_find(f, "f"), back));
    EXPECT(back[0] == 1.5f && back[1] == -2);
    st_destroy(f);
    (void)zeros;

    /* Not a file. */
    EXPECT_REJECT(test_path("does-not-exist.safetensors"), STATUS_IO, "No such file");
    EXPECT_REJECT(test_dir(), STATUS_IO, "not a regular file");
}

/* Random byte flips, truncations and header edits of a valid file: st_load either fails
 * with a message naming the file or returns tensors whose every byte can be read. */
static void test_fuzz_never_crashes(void)
{
    const char *good = test_path("fuzz-base.safetensors"), *p = test_path("fuzz.safetensors");
    write_small(good);
    size_t n;
    unsigned char *raw = slurp(good, &n);
    REQUIRE(raw);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | raw[i];
    unsigned char *buf = malloc(n + 64);
    struct rng r;
    rng_seed(&r, 2024);
    int loaded = 0, rejected = 0;
    static const char tokens[] = "{}[]:,\"0123456789-.eE \\";
    for (int it = 0; it < 4000; it++) {
        memcpy(buf, raw, n);
        size_t m = n;
        int kind = (int)rng_below(&r, 6);
        int edits = 1 + (int)rng_below(&r, 4);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)rng_below(&r, m);
            switch (kind) {
            case 0: buf[at] ^= (unsigned char)(1u << rng_below(&r, 8)); break;   /* bit flip */
            case 1: buf[at] = (unsigned char)rng_u64(&r); break;                  /* byte */
            case 2: m = (size_t)rng_below(&r, m + 1); e = edits; break;           /* truncate */
            case 3: /* a header byte to a JSON token, keeping the length */
                buf[8 + rng_below(&r, hlen)] = (unsigned char)tokens[rng_below(&r, sizeof tokens - 1)];
                break;
            case 4: /* a digit in the header to another digit (shapes, offsets) */
                for (size_t k = 0; k < hlen; k++) {
                    size_t j = 8 + (at + k) % hlen;
                    if (buf[j] >= '0' && buf[j] <= '9') {
                        buf[j] = (unsigned char)('0' + rng_below(&r, 10));
                        break;
                    }
                }
                break;
            default: /* the length field: a random byte, or a small shift of the header end */
                if (rng_below(&r, 2)) {
                    buf[rng_below(&r, 8)] = (unsigned char)rng_u64(&r);
                } else {
                    uint64_t len = hlen + rng_below(&r, 33) - 16;
                    for (int k = 0; k < 8; k++) buf[k] = (unsigned char)(len >> (8 * k));
                }
                break;
            }
            if (m == 0) break;
        }
        REQUIRE(spit(p, buf, m) == 0);
        struct st_file *f = NULL;
        status_clear();
        int s = st_load(p, &f);
        if (s == 0) {
            loaded++;
            touch_all(f);
            st_destroy(f);
        } else {
            rejected++;
            EXPECT_MSG(f == NULL && strstr(status_detail(), p) && !strchr(status_detail(), '\n'),
                       "iteration %d: status %d, detail \"%s\"", it, s, status_detail());
        }
    }
    EXPECT(rejected > 1000);
    EXPECT(loaded > 0); /* flips inside tensor data leave valid files */
    free(buf);
    free(raw);
}

/* ----------------------------------------------------------------------------- atomic writes */

static void test_atomic_write(void)
{
    float big[4096];
    for (int i = 0; i < 4096; i++) big[i] = (float)i;
    int n_big = 4096, n_small = 4;
    struct st_writer *small = st_writer_create(), *large = st_writer_create();
    REQUIRE(small && large);
    REQUIRE_OK(st_writer_add_f32(small, "w", 1, &n_small, big));
    REQUIRE_OK(st_writer_add_f32(large, "w", 1, &n_big, big));

    /* A path in a directory that does not exist: a clean error, nothing created. */
    const char *nodir = test_path("no-such-dir/m.safetensors");
    status_clear();
    EXPECT_EQ_INT(st_writer_write(small, nodir), STATUS_IO);
    EXPECT(strstr(status_detail(), nodir) != NULL);
    struct stat sb;
    EXPECT(stat(test_path("no-such-dir"), &sb) != 0);

    /* Replace an existing file. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s", test_path("atomic"));
    REQUIRE(mkdir(dir, 0777) == 0);
    char path[600];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    REQUIRE_OK(st_writer_write(small, path));
    size_t n_a, n_b;
    unsigned char *a = slurp(path, &n_a);
    REQUIRE_OK(st_writer_write(large, path));
    unsigned char *b = slurp(path, &n_b);
    REQUIRE(a && b);
    EXPECT(n_b > n_a + 16000);
    EXPECT_EQ_INT(count_tmp_files(dir), 0);

    /* A write that fails half-way (file size limit): the old file stays, no temp file. */
    REQUIRE_OK(st_writer_write(small, path));
    struct rlimit old;
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
    struct rlimit lim = old;
    lim.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    status_clear();
    int s = st_writer_write(large, path);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_handler);
    EXPECT_EQ_INT(s, STATUS_IO);
    EXPECT(strstr(status_detail(), path) != NULL);
    size_t n_c;
    unsigned char *c = slurp(path, &n_c);
    REQUIRE(c);
    EXPECT(n_c == n_a && memcmp(a, c, n_a) == 0);
    EXPECT_EQ_INT(count_tmp_files(dir), 0);

    /* rename fails (the target is a non-empty directory): the temp file is removed. */
    char sub[700], inner[800];
    snprintf(sub, sizeof sub, "%s/taken", dir);
    snprintf(inner, sizeof inner, "%s/x", sub);
    REQUIRE(mkdir(sub, 0777) == 0);
    REQUIRE(spit(inner, "x", 1) == 0);
    EXPECT_EQ_INT(st_writer_write(small, sub), STATUS_IO);
    EXPECT(strstr(status_detail(), sub) != NULL);
    EXPECT_EQ_INT(count_tmp_files(dir), 0);

    free(a);
    free(b);
    free(c);
    st_writer_destroy(small);
    st_writer_destroy(large);
}

/* ----------------------------------------------------------------------------- JSON */

static void test_json_parse_errors(void)
{
    struct json *v = (struct json *)1;
    EXPECT_EQ_INT(json_parse("{\"a\":1,}", "cfg", &v), STATUS_FORMAT);
    EXPECT(v == NULL);
    EXPECT(strstr(status_detail(), "cfg: line 1, column 8") != NULL);
    EXPECT_EQ_INT(json_parse("{\n  \"a\": 1,\n  \"b\": tru\n}", "m.safetensors: basin.config", &v),
                  STATUS_FORMAT);
    EXPECT(strstr(status_detail(), "m.safetensors: basin.config: line 3") != NULL);
    EXPECT_EQ_INT(json_parse("{\"a\":1,\"a\":2}", "cfg", &v), STATUS_FORMAT);
    EXPECT(strstr(status_detail(), "duplicate") != NULL);
    EXPECT_EQ_INT(json_parse("", NULL, &v), STATUS_FORMAT);
    EXPECT(strncmp(status_detail(), "JSON: ", 6) == 0);
    EXPECT_EQ_INT(json_parse("[\"\xff\"]", "x", &v), STATUS_FORMAT);
    EXPECT_EQ_INT(json_parse("[NaN]", "x", &v), STATUS_FORMAT);
    EXPECT_EQ_INT(json_parse("[1e999]", "x", &v), STATUS_FORMAT);
    EXPECT_EQ_INT(json_parse("\"\\u0000\"", "x", &v), STATUS_FORMAT);
    REQUIRE_OK(json_parse(" 42 ", "x", &v));
    EXPECT_EQ_INT(json_kind_of(v), JSON_KIND_INT);
    json_destroy(v);
    json_destroy(NULL);
}

static void count_text(const char *text, struct json_counts *c)
{
    json_count(text, strlen(text), c);
}

/* json_count sees a text's cost without building it; json_parse_max refuses before. */
static void test_json_count_and_parse_max(void)
{
    struct json_counts c;
    count_text("[0,0,0]", &c);
    EXPECT_EQ_INT(c.n_values, 4);
    EXPECT_EQ_INT(c.n_items, 3);
    EXPECT_EQ_INT(c.top_len, 3);
    EXPECT_EQ_INT(c.depth, 1);
    count_text(" {\"a\" : [1, {\"b\":\"x,]\\\"\"}], \"c\":true, \"d\": {}} ", &c);
    EXPECT_EQ_INT(c.n_values, 7); /* root, array, 1, object, "x,]\"", true, {} */
    EXPECT_EQ_INT(c.n_items, 2);
    EXPECT_EQ_INT(c.top_len, 3);
    EXPECT_EQ_INT(c.depth, 3);
    count_text("\"just a string\"", &c);
    EXPECT_EQ_INT(c.n_values, 1);
    EXPECT_EQ_INT(c.top_len, 0);
    count_text("[[[[", &c); /* malformed: counted as far as it goes */
    EXPECT_EQ_INT(c.n_values, 4);
    EXPECT_EQ_INT(c.depth, 4);
    json_count("[0,\"a\"]  [1,2,3]", 7, &c); /* the length bounds the text, not the NUL */
    EXPECT_EQ_INT(c.n_values, 3);
    EXPECT_EQ_INT(c.n_items, 2);
    /* Values at every depth count, keys and strings holding delimiters do not mislead it. */
    const char *doc = "{\"width\":32,\"blocks\":[4,4,4],\"nested\":{\"x\":[[1,2],[]],\"y\":null},\"s\":\"a:b\"}";
    count_text(doc, &c);
    EXPECT_EQ_INT(c.n_values, 14);
    struct json *v = NULL;
    REQUIRE_OK(json_parse_max(doc, "doc", 14, &v));
    json_destroy(v);
    EXPECT_EQ_INT(json_parse_max(doc, "doc", 13, &v), STATUS_FORMAT);
    EXPECT(v == NULL);
    EXPECT_STR(status_detail(), "doc: 14 values, more than the 13 it may hold");
    /* the refusal costs nothing: 4 million zeros are counted, never built */
    size_t n = 4000000;
    char *zeros = malloc(2 * n + 2);
    zeros[0] = '[';
    for (size_t i = 0; i < n; i++) zeros[1 + 2 * i] = '0', zeros[2 + 2 * i] = ',';
    zeros[2 * n] = ']';
    zeros[2 * n + 1] = 0;
    EXPECT_EQ_INT(json_parse_max(zeros, "labels", 11, &v), STATUS_FORMAT);
    EXPECT(strstr(status_detail(), "4000001 values") != NULL);
    free(zeros);
}

static void test_json_getters(void)
{
    const char *text = "{\"width\":32,\"rho\":5,\"damping\":0.0,\"groups\":1,\"roll\":0,"
                       "\"blocks\":[4,4,4],\"in_ch\":1,\"classes\":10,\"big\":3000000000,"
                       "\"half\":2.5,\"whole\":8.0,\"name\":\"caf\\u00e9\",\"on\":true,"
                       "\"norm\":{\"mean\":[0.5,-1,\"x\"],\"std\":[1e-3,2]},\"labels\":[\"a\",\"b\"],"
                       "\"nothing\":null,\"huge\":1e300}";
    struct json *cfg;
    REQUIRE_OK(json_parse(text, "m.safetensors: basin.config", &cfg));
    EXPECT_EQ_INT(json_kind_of(cfg), JSON_KIND_OBJECT);
    EXPECT_EQ_INT(json_len(cfg), 17);
    EXPECT_STR(json_key_at(cfg, 0), "width");
    EXPECT_STR(json_key_at(cfg, 16), "huge");
    EXPECT_EQ_INT(json_kind_of(json_at(cfg, 5)), JSON_KIND_ARRAY);
    EXPECT_STR(json_kind_name(JSON_KIND_REAL), "a real number");

    int i = -1, b = -1;
    int64_t i64 = 0;
    double d = -1;
    float fl = -1;
    const char *s = NULL;
    REQUIRE_OK(json_get_int(cfg, "width", &i));
    EXPECT_EQ_INT(i, 32);
    REQUIRE_OK(json_get_double(cfg, "damping", &d));
    EXPECT(d == 0.0);
    REQUIRE_OK(json_get_double(cfg, "rho", &d)); /* an integer is a number */
    EXPECT(d == 5.0);
    REQUIRE_OK(json_get_int(cfg, "whole", &i)); /* an integral real is an integer */
    EXPECT_EQ_INT(i, 8);
    REQUIRE_OK(json_get_int64(cfg, "big", &i64));
    EXPECT_EQ_INT(i64, 3000000000LL);
    REQUIRE_OK(json_get_bool(cfg, "on", &b));
    EXPECT_EQ_INT(b, 1);
    REQUIRE_OK(json_get_string(cfg, "name", &s));
    EXPECT_STR(s, "caf\xc3\xa9");
    REQUIRE_OK(json_get_float(cfg, "half", &fl));
    EXPECT(fl == 2.5f);

    i = 7;
    EXPECT_EQ_INT(json_get_int(cfg, "half", &i), STATUS_FORMAT);
    EXPECT_STR(status_detail(), "m.safetensors: basin.config: 'half' is 2.5, expected an integer");
    EXPECT_EQ_INT(i, 7);
    EXPECT_EQ_INT(json_get_int(cfg, "big", &i), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "'big' is 3000000000, out of range for an int") != NULL);
    EXPECT_EQ_INT(json_get_int64(cfg, "huge", &i64), STATUS_INVALID);
    EXPECT_EQ_INT(json_get_float(cfg, "huge", &fl), STATUS_INVALID);
    EXPECT_EQ_INT(json_get_int(cfg, "name", &i), STATUS_FORMAT);
    EXPECT(strstr(status_detail(), "'name' is a string, expected an integer") != NULL);
    EXPECT_EQ_INT(json_get_bool(cfg, "width", &b), STATUS_FORMAT);
    EXPECT(strstr(status_detail(), "'width' is 32, expected true or false") != NULL);
    EXPECT_EQ_INT(json_get_string(cfg, "nothing", &s), STATUS_FORMAT);
    EXPECT_EQ_INT(json_get_double(cfg, "on", &d), STATUS_FORMAT);
    EXPECT_EQ_INT(json_get_int(cfg, "depth", &i), STATUS_NOT_FOUND);
    EXPECT_STR(status_detail(), "m.safetensors: basin.config: no key 'depth'");
    EXPECT(json_find(cfg, "depth") == NULL);
    EXPECT(json_find(json_find(cfg, "blocks"), "x") == NULL);

    /* Arrays. */
    int blocks[4], nb = -1;
    REQUIRE_OK(json_get_ints(cfg, "blocks", blocks, 4, &nb));
    EXPECT(nb == 3 && blocks[0] == 4 && blocks[2] == 4);
    EXPECT_EQ_INT(json_get_ints(cfg, "blocks", blocks, 2, &nb), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "'blocks' has 3 items, at most 2 expected") != NULL);
    EXPECT_EQ_INT(json_get_ints(cfg, "width", blocks, 4, &nb), STATUS_FORMAT);
    EXPECT(strstr(status_detail(), "expected an array of integers") != NULL);
    const struct json *norm = json_find(cfg, "norm");
    REQUIRE(norm);
    double mean[3] = {9, 9, 9}, std[2];
    float stdf[2];
    int nm = -1;
    EXPECT_EQ_INT(json_get_doubles(norm, "mean", mean, 3, &nm), STATUS_FORMAT);
    EXPECT_STR(status_detail(), "m.safetensors: basin.config: 'norm.mean[2]' is a string, expected a number");
    EXPECT(mean[0] == 9 && nm == -1); /* untouched on failure */
    REQUIRE_OK(json_get_doubles(norm, "std", std, 2, &nm));
    EXPECT(std[0] == 1e-3 && std[1] == 2);
    REQUIRE_OK(json_get_floats(norm, "std", stdf, 2, &nm));
    EXPECT(stdf[0] == 1e-3f);
    EXPECT_EQ_INT(json_get_int(norm, "x", &i), STATUS_NOT_FOUND);
    EXPECT_STR(status_detail(), "m.safetensors: basin.config: no key 'x' in 'norm'");
    const char *labels[2];
    REQUIRE_OK(json_get_strings(cfg, "labels", labels, 2, &nm));
    EXPECT(nm == 2 && !strcmp(labels[1], "b"));
    EXPECT_EQ_INT(json_get_strings(cfg, "blocks", labels, 4, &nm), STATUS_FORMAT);
    EXPECT(strstr(status_detail(), "'blocks[0]' is 4, expected a string") != NULL);
    EXPECT_EQ_INT(json_get_int(json_find(cfg, "blocks"), "x", &i), STATUS_FORMAT);
    json_destroy(cfg);

    /* A root that is not an object. */
    struct json *arr;
    REQUIRE_OK(json_parse("[1, 2.5]", "labels", &arr));
    EXPECT_EQ_INT(json_len(arr), 2);
    EXPECT_EQ_INT(json_to_int(json_at(arr, 1), &i), STATUS_FORMAT);
    EXPECT_STR(status_detail(), "labels: '[1]' is 2.5, expected an integer");
    EXPECT_EQ_INT(json_to_string(arr, &s), STATUS_FORMAT);
    EXPECT_STR(status_detail(), "labels: the value is an array, expected a string");
    json_destroy(arr);
}

static void test_json_doubles_roundtrip(void)
{
    struct {
        double v;
        const char *text;
    } fixed[] = {
        {0.0, "0.0"},        {-0.0, "-0.0"},          {0.1, "0.1"},
        {1e-05, "1e-05"},    {0.0001, "0.0001"},      {3.0, "3.0"},
        {1e16, "1e+16"},     {1e15, "1000000000000000.0"}, {-2.5, "-2.5"},
        {0.1 + 0.2, "0.30000000000000004"}, {5e-324, "5e-324"},
        {DBL_MAX, "1.7976931348623157e+308"}, {123456.789, "123456.789"},
    };
    struct json *o = json_create_object();
    REQUIRE(o);
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        REQUIRE_OK(json_set_double(o, "x", fixed[i].v));
        char *text;
        REQUIRE_OK(json_dump(o, &text));
        char want[64];
        snprintf(want, sizeof want, "{\"x\":%s}", fixed[i].text);
        EXPECT_STR(text, want);
        mem_free(text);
    }
    json_destroy(o);

    /* Random doubles of every magnitude read back bit for bit. */
    struct rng r;
    rng_seed(&r, 99);
    double vals[500];
    for (int i = 0; i < 500; i++) {
        uint64_t u;
        do {
            u = rng_u64(&r);
            memcpy(&vals[i], &u, 8);
        } while (!isfinite(vals[i]));
        if (i % 5 == 0) vals[i] = rng_uniform(&r);
    }
    o = json_create_object();
    REQUIRE(o);
    REQUIRE_OK(json_set_doubles(o, "v", vals, 500));
    float fv[3] = {0.1f, 1e-45f, FLT_MAX};
    REQUIRE_OK(json_set_floats(o, "f", fv, 3));
    char *text;
    REQUIRE_OK(json_dump(o, &text));
    EXPECT(strstr(text, "\"f\":[0.1,1e-45,3.4028235e+38]") != NULL);
    json_destroy(o);
    struct json *back;
    REQUIRE_OK(json_parse(text, "dump", &back));
    mem_free(text);
    double got[500];
    float gf[3];
    int n;
    REQUIRE_OK(json_get_doubles(back, "v", got, 500, &n));
    EXPECT_EQ_INT(n, 500);
    EXPECT(memcmp(got, vals, sizeof got) == 0);
    REQUIRE_OK(json_get_floats(back, "f", gf, 3, &n));
    EXPECT(memcmp(gf, fv, sizeof gf) == 0);
    json_destroy(back);
}

static void test_json_build_and_dump(void)
{
    struct json *cfg = json_create_object();
    REQUIRE(cfg);
    int blocks[3] = {4, 4, 4};
    REQUIRE_OK(json_set_int(cfg, "width", 32));
    REQUIRE_OK(json_set_int(cfg, "rho", 5));
    REQUIRE_OK(json_set_double(cfg, "damping", 0.0));
    REQUIRE_OK(json_set_int(cfg, "groups", 1));
    REQUIRE_OK(json_set_int(cfg, "roll", 0));
    REQUIRE_OK(json_set_ints(cfg, "blocks", blocks, 3));
    REQUIRE_OK(json_set_int(cfg, "in_ch", 1));
    REQUIRE_OK(json_set_int(cfg, "classes", 10));
    char *text;
    REQUIRE_OK(json_dump(cfg, &text));
    EXPECT_STR(text, "{\"width\":32,\"rho\":5,\"damping\":0.0,\"groups\":1,\"roll\":0,"
                     "\"blocks\":[4,4,4],\"in_ch\":1,\"classes\":10}");
    mem_free(text);

    /* Replacing keeps the position; booleans, strings, nested values, empty arrays. */
    REQUIRE_OK(json_set_double(cfg, "rho", 7.5));
    REQUIRE_OK(json_set_bool(cfg, "fast", 1));
    REQUIRE_OK(json_set_string(cfg, "note", "caf\xc3\xa9 \"q\" \\ \n\x01\x7f"));
    const char *names[2] = {"airport", "m\xc3\xa9tro \xf0\x9f\x9a\x87"};
    REQUIRE_OK(json_set_strings(cfg, "labels", names, 2));
    REQUIRE_OK(json_set_ints(cfg, "none", NULL, 0));
    struct json *norm = json_create_object();
    float mean[2] = {0.5f, -1.25f};
    REQUIRE(norm);
    REQUIRE_OK(json_set_floats(norm, "mean", mean, 2));
    REQUIRE_OK(json_set_value(cfg, "norm", norm));
    REQUIRE_OK(json_dump(cfg, &text));
    EXPECT_STR(text, "{\"width\":32,\"rho\":7.5,\"damping\":0.0,\"groups\":1,\"roll\":0,"
                     "\"blocks\":[4,4,4],\"in_ch\":1,\"classes\":10,\"fast\":true,"
                     "\"note\":\"caf\xc3\xa9 \\\"q\\\" \\\\ \\n\\u0001\x7f\","
                     "\"labels\":[\"airport\",\"m\xc3\xa9tro \xf0\x9f\x9a\x87\"],\"none\":[],"
                     "\"norm\":{\"mean\":[0.5,-1.25]}}");
    struct json *back;
    REQUIRE_OK(json_parse(text, "back", &back));
    mem_free(text);
    const char *note;
    REQUIRE_OK(json_get_string(back, "note", &note));
    EXPECT_STR(note, "caf\xc3\xa9 \"q\" \\ \n\x01\x7f");
    json_destroy(back);

    /* Errors leave the object unchanged. */
    EXPECT_EQ_INT(json_set_double(cfg, "rho", NAN), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "'rho'") != NULL);
    double bad[2] = {1, INFINITY};
    EXPECT_EQ_INT(json_set_doubles(cfg, "v", bad, 2), STATUS_INVALID);
    EXPECT_EQ_INT(json_set_string(cfg, "s", "\xe2\x82"), STATUS_INVALID);
    EXPECT_EQ_INT(json_set_int(cfg, "\xff", 1), STATUS_INVALID);
    EXPECT(json_find(cfg, "v") == NULL && json_find(cfg, "s") == NULL);
    double rho;
    REQUIRE_OK(json_get_double(cfg, "rho", &rho));
    EXPECT(rho == 7.5);
    json_destroy(cfg);

    /* A root array: basin.labels. */
    struct json *labels = json_create_array();
    REQUIRE(labels);
    REQUIRE_OK(json_push_string(labels, "bus"));
    REQUIRE_OK(json_push_int(labels, -3));
    REQUIRE_OK(json_push_double(labels, 1e-7));
    REQUIRE_OK(json_push_value(labels, json_create_array()));
    EXPECT_EQ_INT(json_push_double(labels, NAN), STATUS_INVALID);
    REQUIRE_OK(json_dump(labels, &text));
    EXPECT_STR(text, "[\"bus\",-3,1e-07,[]]");
    mem_free(text);
    json_destroy(labels);
}

static void test_json_quote_matches_python(void)
{
    /* json.dumps("é\"\\\n\x01\x7f🚇/") in Python, ensure_ascii on by default. */
    char *q = json_quote("\xc3\xa9\"\\\n\x01\x7f\xf0\x9f\x9a\x87/\b\f\r\t", 1);
    REQUIRE(q);
    EXPECT_STR(q, "\"\\u00e9\\\"\\\\\\n\\u0001\\u007f\\ud83d\\ude87/\\b\\f\\r\\t\"");
    mem_free(q);
    q = json_quote("\xc3\xa9\x7f", 0);
    REQUIRE(q);
    EXPECT_STR(q, "\"\xc3\xa9\x7f\"");
    mem_free(q);
    EXPECT(json_utf8_valid("a\xc3\xa9\xe2\x98\x95\xf0\x9f\x9a\x87", 10));
    EXPECT(!json_utf8_valid("\xc3", 1));
    EXPECT(!json_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
    EXPECT(!json_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    EXPECT(!json_utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    EXPECT(!json_utf8_valid("a\0b", 3));
}

const struct test tests_safetensors[] = {
    TEST(test_dtypes),
    TEST(test_half_conversions),
    TEST(test_roundtrip_every_dtype),
    TEST(test_empty_file_roundtrip),
    TEST(test_f16_writer_and_converters),
    TEST(test_writer_rejects),
    TEST(test_reads_python_reference),
    TEST(test_writes_python_bytes),
    TEST(test_truncated_at_every_byte),
    TEST(test_rejects_malformed_headers),
    TEST(test_fuzz_never_crashes),
    TEST(test_atomic_write),
    TEST(test_json_parse_errors),
    TEST(test_json_count_and_parse_max),
    TEST(test_json_getters),
    TEST(test_json_doubles_roundtrip),
    TEST(test_json_build_and_dump),
    TEST(test_json_quote_matches_python),
    {0},
};
