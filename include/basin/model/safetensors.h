/* safetensors.h: read and write .safetensors files, the model and checkpoint format
 * (DESIGN.md section 3), interoperable with PyTorch's `safetensors` package and with
 * peers/basin_ref.py (st_save / st_load).
 *
 * File layout: u64 little-endian header length n, n bytes of UTF-8 JSON header (an object
 * {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}),
 * then the raw little-endian tensor data; offsets are relative to the data area.
 *
 * Reading: st_load() reads the whole file into memory and validates everything before it
 * hands anything out, so an untrusted file can never make basin read or write out of
 * bounds: header length within the file and at most ST_MAX_HEADER bytes; a UTF-8 JSON
 * object without duplicate keys; `__metadata__` (optional, may be null) mapping strings to
 * strings; per tensor a known dtype, a shape of at most ST_MAX_DIMS non-negative integers
 * whose byte size does not overflow, and data_offsets [begin, end] with begin <= end <=
 * data size and end - begin = numel * element size; the tensors' spans tile the data area
 * exactly (no gaps, overlaps or trailing bytes). Keys other than dtype, shape and
 * data_offsets in a tensor entry are ignored, as the official reader does. What reading
 * costs is bounded by the file: a file larger than the memory available is refused
 * before it is read, and a header holding more array items than its entries' shapes and
 * offsets can (10 an entry, + 16) is refused before it is parsed (json_count), so a
 * crafted header cannot make the JSON tree cost gigabytes. A file that is not a
 * safetensors file at all (its first 8 bytes, read as a length, do not fit it) says so
 * first: "text.wav: not a safetensors file (header length 7.5e18 does not fit the 117.2
 * KiB file)". Every failure returns a non-zero enum status with a one-line detail naming
 * the file and the problem.
 *
 * Writing: an st_writer collects tensors (borrowed data) and string metadata and writes
 * them exactly as basin_ref.st_save does, byte for byte: compact header (Python's
 * json.dumps(separators=(",", ":")), ASCII-escaped), padded with spaces to a multiple of 8,
 * `__metadata__` first when there is any, tensors ordered by element size (largest first)
 * then by name, so every tensor is aligned to its element size. The write is atomic.
 *
 * Data is little-endian; basin assumes a little-endian host (checked at compile time).
 */
#ifndef BASIN_MODEL_SAFETENSORS_H
#define BASIN_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER (100u << 20) /* bytes of JSON header accepted by st_load */

/* Element types; ST_DTYPE_COUNT is not one. Names as in the file ("F32", "BF16", ...). */
enum st_dtype {
    ST_F64,
    ST_F32,
    ST_F16,
    ST_BF16,
    ST_I64,
    ST_I32,
    ST_I16,
    ST_I8,
    ST_U8,
    ST_BOOL,
    ST_DTYPE_COUNT
};

/* "F64", "F32", ... ; "?" for a value out of range. */
const char *st_dtype_name(enum st_dtype dtype);
/* Bytes per element (8, 4, 2 or 1); 0 for a value out of range. */
size_t st_dtype_size(enum st_dtype dtype);
/* Parse a dtype name (exact, case-sensitive). Returns 0 or STATUS_UNSUPPORTED (with a
 * detail message) for any other name. */
int st_dtype_parse(const char *name, enum st_dtype *out);

/* ----------------------------------------------------------------------------- reading */

/* One tensor of a loaded file. Everything it points to is owned by the file and valid
 * until st_destroy(). */
struct st_tensor {
    const char *name;             /* UTF-8, no NUL inside */
    enum st_dtype dtype;
    int n_dims;                   /* 0 for a scalar */
    int64_t shape[ST_MAX_DIMS];   /* each >= 0; unused entries 0 */
    size_t numel;                 /* product of shape (1 for a scalar, 0 when empty) */
    size_t n_bytes;               /* numel * st_dtype_size(dtype) */
    /* n_bytes of raw little-endian data inside the file's buffer. The data area starts
     * 64-byte aligned, so data is aligned to its element size whenever its begin offset is
     * a multiple of the element size (always for files written by basin, basin_ref or the
     * safetensors package); other files may hold unaligned tensors, so read elements with
     * memcpy or the st_to_* converters rather than through a cast pointer. */
    const void *data;
    const char *file;             /* the path the file was loaded from, for messages */
};

struct st_file;

/* Read and validate the file at path. On success *out is a new file the caller releases
 * with st_destroy(); on failure *out is NULL and the status is STATUS_IO (cannot open or
 * read), STATUS_FORMAT (malformed: any check above), STATUS_UNSUPPORTED (a dtype basin
 * does not handle, such as F8_E4M3) or STATUS_NOMEM (also: larger than the memory
 * available, mem_available_bytes). */
int st_load(const char *path, struct st_file **out);
/* Release a file and everything its tensors point to. NULL is a no-op. */
void st_destroy(struct st_file *f);

/* The path given to st_load (owned by the file). */
const char *st_path(const struct st_file *f);
/* Number of tensors and the i-th, 0 <= i < st_count(f), in the order of the header. */
int st_count(const struct st_file *f);
const struct st_tensor *st_tensor_at(const struct st_file *f, int i);
/* The tensor with this exact name, or NULL (no status recorded). */
const struct st_tensor *st_find(const struct st_file *f, const char *name);

/* Metadata: the value of key, or NULL when absent (owned by the file). */
const char *st_meta(const struct st_file *f, const char *key);
/* Number of metadata entries and the i-th key / value, in the order of the header. */
int st_meta_count(const struct st_file *f);
const char *st_meta_key_at(const struct st_file *f, int i);
const char *st_meta_value_at(const struct st_file *f, int i);

/* Convert a tensor's numel elements to float32 into out (numel floats). F32 is copied,
 * F16 and BF16 widened exactly, F64 rounded to nearest (a finite value that would round
 * to infinity is STATUS_NUMERIC). Integer and BOOL tensors are STATUS_MISMATCH. */
int st_to_f32(const struct st_tensor *t, float *out);
/* Convert an integer or BOOL tensor to int32 into out (numel ints): I64 values outside
 * the int32 range are STATUS_INVALID naming the tensor and index; BOOL gives 0 or 1
 * (any non-zero byte is 1). Floating-point tensors are STATUS_MISMATCH. */
int st_to_i32(const struct st_tensor *t, int32_t *out);

/* Find `name`, check that its shape is exactly (shape[0], ..., shape[n_dims-1]) and
 * convert it with st_to_f32 into out. STATUS_NOT_FOUND when absent, STATUS_MISMATCH
 * ("m.safetensors: tensor 'stem.conv.weight' has shape (32, 1, 3, 3), expected
 * (32, 1, 5, 5)") when the shape differs. */
int st_read_f32(const struct st_file *f, const char *name, int n_dims, const int *shape,
                float *out);

/* ----------------------------------------------------------------------------- writing */

struct st_writer;

/* A new, empty writer; NULL with STATUS_NOMEM recorded. Release with st_writer_destroy
 * (NULL is a no-op). */
struct st_writer *st_writer_create(void);
void st_writer_destroy(struct st_writer *w);

/* Add a tensor. name (UTF-8, not "__metadata__", not already added) and shape are copied;
 * data (numel * element size bytes, may be NULL when that is 0) is borrowed: the caller
 * keeps it valid and unchanged until the last st_writer_write. Returns 0 or
 * STATUS_INVALID (bad name, duplicate, more than ST_MAX_DIMS dims, a negative dim, a byte
 * size that overflows) or STATUS_NOMEM; the writer is unchanged on failure. */
int st_writer_add(struct st_writer *w, const char *name, enum st_dtype dtype, int n_dims,
                  const int64_t *shape, const void *data);
/* As st_writer_add with dtype F32 and an int shape (struct tensor's). */
int st_writer_add_f32(struct st_writer *w, const char *name, int n_dims, const int *shape,
                      const float *data);
/* Add float32 data stored as F16: converted now (round to nearest even, overflow to
 * infinity, NaN kept) into a buffer the writer owns, so data need not outlive the call. */
int st_writer_add_f16(struct st_writer *w, const char *name, int n_dims, const int *shape,
                      const float *data);
/* Set metadata key to value (both UTF-8, copied); setting a key again replaces its value
 * in place. Keys are written in the order they were first set. Returns 0,
 * STATUS_INVALID (not UTF-8) or STATUS_NOMEM. */
int st_writer_meta(struct st_writer *w, const char *key, const char *value);

/* Write the file atomically: write PATH.tmp-<pid>-<n> in the same directory, flush and
 * fsync it, then rename it over path. On any failure the temporary file is removed, path
 * is left as it was, and the status is STATUS_IO (naming path and the system error) or
 * STATUS_NOMEM. May be called more than once. */
int st_writer_write(const struct st_writer *w, const char *path);

/* ----------------------------------------------------------------------------- half floats */

/* IEEE 754 binary16 <-> binary32. f32 -> f16 rounds to nearest even, overflows to
 * infinity, keeps subnormals and signed zeros, and maps NaN to a quiet NaN (sign | 0x7e00),
 * as PyTorch's Tensor.half() does. f16 -> f32 is exact. */
uint16_t st_f32_to_f16(float x);
float st_f16_to_f32(uint16_t h);
/* bfloat16 <-> binary32: round to nearest even as PyTorch's Tensor.bfloat16(), NaN to a
 * quiet NaN (sign | 0x7fc0; PyTorch 1.13 gives 0xffff); widening is exact. */
uint16_t st_f32_to_bf16(float x);
float st_bf16_to_f32(uint16_t h);

#endif
