/* lgpu — GGUF v2/v3 files: a validating, memory-mapped reader and a streaming writer.
 *
 * Reader: lgpu_gguf_create() maps the file and checks everything before it is
 * used (magic, version, counts vs file size, every string/array inside the
 * file, known tensor types, positive dims without overflow, aligned data
 * offsets inside the file, nbytes = row_bytes(type, ne0) * rows, unique
 * keys and names, no overlapping data). Any failure is LGPU_EFORMAT
 * (LGPU_EUNSUPPORTED for a tensor type lgpu does not handle, GGUF v1,
 * big-endian files, arrays of arrays; LGPU_ENOTFOUND / LGPU_EIO when the file
 * cannot be opened) with one detail naming the file and the problem. After a
 * successful open every accessor is safe and the handle is read-only (usable
 * from several threads).
 *
 * Strings: keys, tensor names and string values returned by lgpu_gguf_key(),
 * lgpu_gguf_get_str() and lgpu_gguf_tensor::name are NUL-terminated copies
 * owned by the handle. Elements of string arrays (lgpu_gguf_arr_str) point
 * into the mapping and are NOT NUL-terminated: use the returned length.
 * Numeric array data (lgpu_gguf_get_arr) also points into the mapping and may
 * be unaligned: read elements with memcpy or the lgpu_gguf_arr_* helpers.
 * All pointers live until lgpu_gguf_destroy().
 *
 * Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md */
#ifndef LGPU_GGUF_H
#define LGPU_GGUF_H

#include "lgpu/lgpu.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LGPU_GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define LGPU_GGUF_DEFAULT_ALIGNMENT 32
#define LGPU_GGUF_MAX_DIMS 4

/* Metadata value types (GGUF ids). */
typedef enum lgpu_gguf_vtype {
    LGPU_GGUF_U8 = 0,
    LGPU_GGUF_I8 = 1,
    LGPU_GGUF_U16 = 2,
    LGPU_GGUF_I16 = 3,
    LGPU_GGUF_U32 = 4,
    LGPU_GGUF_I32 = 5,
    LGPU_GGUF_F32 = 6,
    LGPU_GGUF_BOOL = 7,
    LGPU_GGUF_STRING = 8,
    LGPU_GGUF_ARRAY = 9,
    LGPU_GGUF_U64 = 10,
    LGPU_GGUF_I64 = 11,
    LGPU_GGUF_F64 = 12,
    LGPU_GGUF_VTYPE_COUNT_
} lgpu_gguf_vtype;

/* "u32", "string", ... ("?" for an unknown id) */
const char *lgpu_gguf_vtype_name(int vtype);
/* Bytes of one element of a fixed-size type; 0 for STRING/ARRAY/unknown. */
size_t lgpu_gguf_vtype_size(int vtype);

typedef struct lgpu_gguf lgpu_gguf;

typedef struct lgpu_gguf_tensor {
    const char *name;
    int type;           /* lgpu_type (GGML id) */
    uint32_t n_dims;    /* 1..4 */
    int64_t ne[4];      /* ne[0] fastest-varying (row length); unused dims = 1 */
    uint64_t offset;    /* relative to the data section */
    const void *data;   /* into the mapping, aligned to the file's alignment */
    size_t nbytes;
} lgpu_gguf_tensor;

/* ---- reading ---------------------------------------------------------- */

int lgpu_gguf_create(const char *path, lgpu_gguf **out);
void lgpu_gguf_destroy(lgpu_gguf *g); /* NULL: no-op */
/* True when the file at path starts with the GGUF magic (false when it cannot
 * be read: the caller's loader then reports the error). */
bool lgpu_gguf_file_is_gguf(const char *path);

const char *lgpu_gguf_path(const lgpu_gguf *g);
/* Base name of the path, for error details. */
const char *lgpu_gguf_file_name(const lgpu_gguf *g);
uint32_t lgpu_gguf_version(const lgpu_gguf *g);
size_t lgpu_gguf_alignment(const lgpu_gguf *g);
uint64_t lgpu_gguf_data_offset(const lgpu_gguf *g); /* file offset of the data section */
uint64_t lgpu_gguf_file_size(const lgpu_gguf *g);

/* Metadata by index 0..n_kv-1 */
int64_t lgpu_gguf_n_kv(const lgpu_gguf *g);
const char *lgpu_gguf_key(const lgpu_gguf *g, int64_t key_idx);
int lgpu_gguf_kv_type(const lgpu_gguf *g, int64_t key_idx); /* lgpu_gguf_vtype, -1 if idx out of range */
/* Index of `key`, -1 if absent. */
int64_t lgpu_gguf_find_key(const lgpu_gguf *g, const char *key);

/* Typed getters by key name; the default is returned when the key is absent
 * or its value does not convert: integer getters accept any integer type
 * (and BOOL) whose value fits, get_f32 accepts F32/F64 and integers,
 * get_bool accepts BOOL and integers. */
uint32_t lgpu_gguf_get_u32(const lgpu_gguf *g, const char *key, uint32_t def);
int32_t lgpu_gguf_get_i32(const lgpu_gguf *g, const char *key, int32_t def);
uint64_t lgpu_gguf_get_u64(const lgpu_gguf *g, const char *key, uint64_t def);
float lgpu_gguf_get_f32(const lgpu_gguf *g, const char *key, float def);
bool lgpu_gguf_get_bool(const lgpu_gguf *g, const char *key, bool def);
/* NUL-terminated copy owned by g (a string value with an embedded NUL is
 * truncated there; use lgpu_gguf_kv_str for the full length). */
const char *lgpu_gguf_get_str(const lgpu_gguf *g, const char *key, const char *def);

/* Scalar by index into the wider type: 0, or LGPU_EINVAL (with a detail) if
 * the value is not of a compatible type / does not fit. */
int lgpu_gguf_kv_int(const lgpu_gguf *g, int64_t key_idx, int64_t *out); /* any integer or BOOL; U64 > INT64_MAX fails */
int lgpu_gguf_kv_uint(const lgpu_gguf *g, int64_t key_idx, uint64_t *out); /* any non-negative integer or BOOL */
int lgpu_gguf_kv_float(const lgpu_gguf *g, int64_t key_idx, double *out);  /* F32/F64/integers */
/* String value: NUL-terminated pointer owned by g, *len (may be NULL) its byte length. */
const char *lgpu_gguf_kv_str(const lgpu_gguf *g, int64_t key_idx, size_t *len);

/* Array by key name: element type, count and raw little-endian data (NULL
 * for string arrays: use lgpu_gguf_arr_str). Returns 0, LGPU_ENOTFOUND if
 * the key is absent, LGPU_EINVAL if it is not an array. Any out pointer may be NULL. */
int lgpu_gguf_get_arr(const lgpu_gguf *g, const char *key, int *elem_type, uint64_t *n, const void **data);
/* Same by index. */
int lgpu_gguf_kv_arr(const lgpu_gguf *g, int64_t key_idx, int *elem_type, uint64_t *n, const void **data);
/* Element i of the string array at key_idx (NOT NUL-terminated; *len its
 * length); NULL if key_idx is not a string array or i is out of range. */
const char *lgpu_gguf_arr_str(const lgpu_gguf *g, int64_t key_idx, uint64_t i, size_t *len);
/* Element i of a numeric array converted (any integer / float type; BOOL
 * as 0/1); `def` when out of range or not numeric. */
int64_t lgpu_gguf_arr_int(const lgpu_gguf *g, int64_t key_idx, uint64_t i, int64_t def);
double lgpu_gguf_arr_float(const lgpu_gguf *g, int64_t key_idx, uint64_t i, double def);

/* Tensors */
int64_t lgpu_gguf_n_tensors(const lgpu_gguf *g);
const lgpu_gguf_tensor *lgpu_gguf_tensor_at(const lgpu_gguf *g, int64_t i); /* NULL if out of range */
const lgpu_gguf_tensor *lgpu_gguf_find_tensor(const lgpu_gguf *g, const char *name); /* NULL if absent */

/* ---- writing ---------------------------------------------------------- */

/* Usage: create; set_* metadata; add_tensor for every tensor (in file order);
 * then either write_file (all tensors given with data) or begin + tensor_data
 * (streaming, in add order, any chunking) + finish. Output goes to
 * "<path>.tmp" and is renamed over <path> only by a successful finish, so a
 * failed or abandoned write never leaves a partial file at <path>.
 * Setting an existing key replaces its value (keeping its position). */
typedef struct lgpu_gguf_writer lgpu_gguf_writer;

int lgpu_gguf_writer_create(lgpu_gguf_writer **out);
void lgpu_gguf_writer_destroy(lgpu_gguf_writer *w); /* removes the temp file if not finished */

/* general.alignment is written only if != 32 (a power of two). */
int lgpu_gguf_writer_set_alignment(lgpu_gguf_writer *w, uint32_t alignment);
int lgpu_gguf_set_u8(lgpu_gguf_writer *w, const char *key, uint8_t v);
int lgpu_gguf_set_i8(lgpu_gguf_writer *w, const char *key, int8_t v);
int lgpu_gguf_set_u16(lgpu_gguf_writer *w, const char *key, uint16_t v);
int lgpu_gguf_set_i16(lgpu_gguf_writer *w, const char *key, int16_t v);
int lgpu_gguf_set_u32(lgpu_gguf_writer *w, const char *key, uint32_t v);
int lgpu_gguf_set_i32(lgpu_gguf_writer *w, const char *key, int32_t v);
int lgpu_gguf_set_u64(lgpu_gguf_writer *w, const char *key, uint64_t v);
int lgpu_gguf_set_i64(lgpu_gguf_writer *w, const char *key, int64_t v);
int lgpu_gguf_set_f32(lgpu_gguf_writer *w, const char *key, float v);
int lgpu_gguf_set_f64(lgpu_gguf_writer *w, const char *key, double v);
int lgpu_gguf_set_bool(lgpu_gguf_writer *w, const char *key, bool v);
int lgpu_gguf_set_str(lgpu_gguf_writer *w, const char *key, const char *v);
/* Numeric array: n elements of elem_type (not STRING/ARRAY), little-endian, copied. */
int lgpu_gguf_set_arr(lgpu_gguf_writer *w, const char *key, int elem_type, uint64_t n, const void *data);
/* String array: strs[i] of lens[i] bytes (lens NULL: NUL-terminated), copied. */
int lgpu_gguf_set_arr_str(lgpu_gguf_writer *w, const char *key, uint64_t n, const char *const *strs,
                          const size_t *lens);
/* Copy the value (any type, arrays included) of src's key src_idx under the same key. */
int lgpu_gguf_writer_copy_kv(lgpu_gguf_writer *w, const lgpu_gguf *src, int64_t src_idx);
/* Remove a key if present (returns 0 either way). */
int lgpu_gguf_writer_remove_key(lgpu_gguf_writer *w, const char *key);

/* Declare a tensor: ne[0] is the row length (a multiple of the type's block
 * size). data may be NULL when the data is streamed with tensor_data;
 * otherwise it must stay valid until write_file returns. */
int lgpu_gguf_writer_add_tensor(lgpu_gguf_writer *w, const char *name, int type, uint32_t n_dims,
                                const int64_t *ne, const void *data);
int64_t lgpu_gguf_writer_n_tensors(const lgpu_gguf_writer *w);

/* One shot: every tensor must have been given data. */
int lgpu_gguf_writer_write_file(lgpu_gguf_writer *w, const char *path);
/* Streaming: writes header, metadata and tensor infos to <path>.tmp ... */
int lgpu_gguf_writer_begin(lgpu_gguf_writer *w, const char *path);
/* ... then appends data of the current tensor (tensors in add order; a
 * tensor's bytes may come in several calls; padding is inserted between
 * tensors) ... */
int lgpu_gguf_writer_tensor_data(lgpu_gguf_writer *w, const void *data, size_t nbytes);
/* ... and checks all data arrived, flushes, fsyncs and renames to <path>. */
int lgpu_gguf_writer_finish(lgpu_gguf_writer *w);

#ifdef __cplusplus
}
#endif
#endif
