/* Host-side bookkeeping of the paged KV cache: which pool block holds which
 * tokens of which sequence. The device pools themselves (one K and one V
 * buffer per layer) live in lgpu_ctx; this file only hands out block ids.
 *
 * Blocks hold block_size consecutive token slots. A sequence owns a chain of
 * blocks (its block table); token j of a sequence lives in block j/block_size.
 *
 * Prefix sharing: when a block becomes full, its chain hash
 *     h = H(h_prev, tokens of the block)      (h_prev = the sequence's salt for the first block)
 * is registered in a hash map. A new sequence whose prompt starts with the
 * same full blocks attaches them (refcount + 1) instead of recomputing them.
 * The salt is 0 for a sequence of the plain model and a hash of its LoRA
 * adapters otherwise: K/V computed with other adapters never match.
 * Only full blocks are shared and a sequence only ever writes at positions
 * >= its length, which always fall in blocks it alone holds, so a shared
 * block is never written.
 *
 * Free blocks sit in one doubly linked list. Blocks whose refcount drops to 0
 * go back to it but keep their hash entry: an unhashed block is put at the
 * head (reused first), a hashed block at the tail, so cached prefixes are
 * evicted least-recently-freed first, and only when no other block is left.
 * Allocating a block drops its stale hash entry; attaching a cached free
 * block takes it out of the free list. */
#ifndef LGPU_MODEL_KV_CACHE_H
#define LGPU_MODEL_KV_CACHE_H

#include "lgpu/lgpu.h"

typedef struct lgpu_kv_seq {
    bool open;
    int32_t len;      /* tokens cached */
    int32_t n_blocks; /* blocks in the chain */
    int32_t *blocks;  /* max_blocks block ids */
    int32_t *tokens;  /* n_ctx token ids (for block hashes) */
    uint64_t *hashes; /* chain hash of each full block */
    uint64_t salt;    /* root of the chain hashes: 0, or the adapters' hash (set while empty) */
} lgpu_kv_seq;

typedef struct lgpu_kv_cache {
    uint32_t block_size, n_blocks, max_blocks, n_ctx, n_seq_max;
    /* per block */
    int32_t *ref;      /* sequences holding the block */
    uint8_t *hashed;   /* registered in the hash map */
    uint64_t *hash;    /* chain hash (valid if hashed) */
    int32_t *toks;     /* n_blocks * block_size tokens (checked on lookup) */
    int32_t *fprev, *fnext; /* free list links (-1: none) */
    int32_t free_head, free_tail;
    uint32_t n_free;
    int32_t *hnext;    /* hash bucket chains */
    int32_t *bucket;
    uint32_t n_buckets;
    lgpu_kv_seq *seq;
} lgpu_kv_cache;

int lgpu_kv_init(lgpu_kv_cache *kv, uint32_t n_seq_max, uint32_t n_ctx, uint32_t block_size, uint32_t n_blocks);
void lgpu_kv_destroy(lgpu_kv_cache *kv);

int lgpu_kv_seq_create(lgpu_kv_cache *kv, int *seq);
void lgpu_kv_seq_destroy(lgpu_kv_cache *kv, int seq);
bool lgpu_kv_seq_valid(const lgpu_kv_cache *kv, int seq);

/* Blocks needed to grow `seq` to new_len tokens. */
uint32_t lgpu_kv_blocks_needed(const lgpu_kv_cache *kv, int seq, int32_t new_len);
/* Grow the chain of `seq` to hold new_len tokens (caller checked n_free). */
void lgpu_kv_grow(lgpu_kv_cache *kv, int seq, int32_t new_len);
/* Undo grow: give back the blocks of `seq` beyond its first n_blocks. */
void lgpu_kv_shrink(lgpu_kv_cache *kv, int seq, int32_t n_blocks);
/* Record tokens[0..n) as appended to `seq` (blocks already grown) and
 * register the blocks this completes. */
void lgpu_kv_commit(lgpu_kv_cache *kv, int seq, const int32_t *tokens, int n);
/* See lgpu_seq_reuse_prefix. */
int lgpu_kv_reuse_prefix(lgpu_kv_cache *kv, int seq, const int32_t *tokens, int n);

#endif
