/* Parameters of writing K/V rows into the paged cache: the push-constant block of
 * shaders/kv_store*.comp, shared by the op layer (engine/ops) and the C twin (engine/ref). */
#ifndef LGPU_PARAMS_KV_STORE_H
#define LGPU_PARAMS_KV_STORE_H

#include "params/common.h"

/* Paged KV cache. A pool holds n_blocks blocks of block_size token slots; slot
 * s of a pool stores n_kv_heads*head_dim values (F32 or F16, the ops'
 * kv_type) at element s*kv_dim.
 * Token j of sequence `seq` lives in slot
 *   block_table[seq*max_blocks + j/block_size]*block_size + j%block_size.
 * block_table: I32 (n_seqs, max_blocks). */

/* Write K and V rows of T tokens into their slots:
 * k_pool[slot(tok_seq[t], tok_pos[t])] = k[t*src_stride .. +kv_dim], same for v.
 * tok_seq, tok_pos: I32 (T). */
typedef struct lgpu_kv_store_params {
    uint32_t T, kv_dim, src_stride;
    uint32_t block_size, max_blocks;
    uint32_t kv_type; /* pool elements: LGPU_TYPE_F32, or LGPU_TYPE_F16 (rounded to nearest even; kv_dim even) */
} lgpu_kv_store_params;
LGPU_PARAMS_CHECK(lgpu_kv_store_params);

/* Bytes per KV pool element of kv_type (F32 or F16), 0 for another type. */
static inline size_t lgpu_kv_elem_bytes(uint32_t kv_type) {
    return kv_type == LGPU_TYPE_F32 ? 4 : kv_type == LGPU_TYPE_F16 ? 2 : 0;
}

#endif
