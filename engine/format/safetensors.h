/* safetensors files: an 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 * "__metadata__": {..}}, then the data (offsets relative to its start).
 * Opening maps the file and validates every entry (known dtype, shape
 * product * dtype size == end - begin, offsets inside the file, no overlap);
 * failures are LGPU_EFORMAT with a detail naming the file and the tensor. */
#ifndef LGPU_MODEL_SAFETENSORS_H
#define LGPU_MODEL_SAFETENSORS_H

#include "lgpu/lgpu.h"

#define LGPU_ST_MAX_DIMS 8

typedef struct lgpu_safetensors lgpu_safetensors;

typedef struct lgpu_st_tensor {
    const char *name;
    char dtype[12];    /* as in the file: "F32", "BF16", "I64", ... */
    int type;          /* lgpu_type for F32/F16/BF16, -1 for other dtypes */
    uint32_t n_dims;   /* 0 (scalar) .. LGPU_ST_MAX_DIMS */
    int64_t shape[LGPU_ST_MAX_DIMS]; /* slowest-varying first, as in the file */
    const void *data;  /* into the mapping; may be unaligned */
    size_t nbytes;
} lgpu_st_tensor;

/* Bytes per element of a dtype name ("F32" -> 4), 0 if unknown. */
int lgpu_st_dtype_size(const char *dtype);

int lgpu_safetensors_create(const char *path, lgpu_safetensors **out);
void lgpu_safetensors_destroy(lgpu_safetensors *st); /* NULL: no-op */
const char *lgpu_safetensors_path(const lgpu_safetensors *st);
int64_t lgpu_safetensors_n_tensors(const lgpu_safetensors *st);
const lgpu_st_tensor *lgpu_safetensors_tensor_at(const lgpu_safetensors *st, int64_t i);
const lgpu_st_tensor *lgpu_safetensors_find(const lgpu_safetensors *st, const char *name); /* NULL if absent */

#endif
