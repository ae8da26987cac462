/* safetensors writer: tensors added by name (copied), then written as one
 * file atomically (core/atomic_file.h). As the reference implementation
 * does, the data section has no holes, tensors ordered by element size
 * (largest first) then name so each starts aligned to its element, and the
 * header is padded with spaces to a multiple of 8 bytes. */
#ifndef LGPU_FORMAT_SAFETENSORS_WRITE_H
#define LGPU_FORMAT_SAFETENSORS_WRITE_H

#include "format/safetensors.h"

typedef struct lgpu_st_writer lgpu_st_writer;

int lgpu_st_writer_create(lgpu_st_writer **out);
void lgpu_st_writer_destroy(lgpu_st_writer *w); /* NULL: no-op */
/* dtype: "F32", "F16", "BF16", "F64", "I32", "I64" ...; shape slowest-first;
 * nbytes must equal the product of the shape times the dtype's size. */
int lgpu_st_writer_add(lgpu_st_writer *w, const char *name, const char *dtype, uint32_t n_dims, const int64_t *shape,
                       const void *data, size_t nbytes);
/* A "__metadata__" string entry (PEFT writes {"format": "pt"}). */
int lgpu_st_writer_meta(lgpu_st_writer *w, const char *key, const char *value);
int lgpu_st_writer_write(lgpu_st_writer *w, const char *path);

#endif
