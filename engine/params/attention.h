/* Parameters of causal grouped-query attention over the paged cache: the push-constant block of
 * shaders/attention*.comp, shared by the op layer (engine/ops) and the C twin (engine/ref). */
#ifndef LGPU_PARAMS_ATTENTION_H
#define LGPU_PARAMS_ATTENTION_H

#include "params/kv_store.h" /* the paged cache layout */

/* Largest head_dim attention supports (shader shared memory, twin stack). */
#define LGPU_ATTN_MAX_HEAD_DIM 256

/* Causal grouped-query attention over the paged cache, one pass with an
 * online softmax (no score matrix). For token t (seq s = tok_seq[t], position
 * p = tok_pos[t]) and query head h (kv head g = h / (n_heads / n_kv_heads)):
 *   out[t, h, :] = sum_{j<=p} softmax_j(scale * q[t,h,:] . K[s,j,g,:]) V[s,j,g,:]
 * q: (T, n_heads*head_dim) with row stride q_stride; out: (T, n_heads*head_dim) contiguous.
 * Training also saves each row's softmax statistics for the backward: when
 * the op is given an lse operand (lse.buf != NULL), lse[t, h] = m + log(l),
 * the natural log of sum_j exp(scale * q[t,h,:] . K[s,j,g,:]) (m the running
 * max, l the sum of exp(score - m)); F32 (T, n_heads). A row with no valid
 * key (negative position, every key masked) gets lse = -inf and out = 0.
 * Saving lse does not change out by a bit. */
typedef struct lgpu_attention_params {
    uint32_t T, n_heads, n_kv_heads, head_dim;
    uint32_t q_stride;
    uint32_t block_size, max_blocks;
    float scale;
    uint32_t kv_type;  /* pool elements: LGPU_TYPE_F32 or LGPU_TYPE_F16 */
    uint32_t save_lse; /* set by lgpu_op_attention from its lse operand (the caller's value is ignored) */
} lgpu_attention_params;
LGPU_PARAMS_CHECK(lgpu_attention_params);

#endif
