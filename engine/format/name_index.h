/* A small open-addressing hash from names to indices, used for GGUF keys,
 * tensor names and model-file lookups (files can hold 100k+ entries, so
 * linear scans and O(n^2) duplicate checks are out). */
#ifndef LGPU_MODEL_NAME_INDEX_H
#define LGPU_MODEL_NAME_INDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct lgpu_name_index {
    struct lgpu_name_slot *slots;
    uint64_t mask; /* capacity - 1 (capacity a power of two, >= 2 * entries) */
} lgpu_name_index;

/* Room for n entries; 0 or LGPU_ENOMEM. */
int lgpu_name_index_init(lgpu_name_index *ix, int64_t n);
void lgpu_name_index_destroy(lgpu_name_index *ix);
/* Inserts name (len bytes; the pointer must outlive the index) -> idx.
 * Returns the index already stored under that name, or -1 if it was new. */
int64_t lgpu_name_index_put(lgpu_name_index *ix, const char *name, size_t len, int64_t idx);
int64_t lgpu_name_index_get(const lgpu_name_index *ix, const char *name, size_t len); /* -1 if absent */

#endif
