/* Parameters of the attention backward: the push-constant block of shaders/attention_backward*.comp,
 * shared by the op layer (engine/ops) and the C twin (engine/ref). */
#ifndef LGPU_PARAMS_ATTENTION_BACKWARD_H
#define LGPU_PARAMS_ATTENTION_BACKWARD_H

#include "params/common.h"

/* Gradients of causal grouped-query attention (lgpu_op_attention) in the
 * training layout: B sequences of T token slots each, sequence b in rows
 * b*T .. b*T+T-1 of every operand, row b*T+t at position t (the training
 * context gives each sequence the KV pool slots b*T.. through an identity
 * block table, so its F32 K/V pools are these dense k and v). Flash-style:
 * the softmax is recomputed from the forward's saved log-sum-exp, never
 * materialised as a T x T matrix. For query row i = b*T + t, query head h,
 * kv head g = h / (n_heads / n_kv_heads), keys j = b*T + t', t' <= t:
 *   P_ij = exp(scale * q_ih . k_jg - lse_ih)
 *   D_ih = do_ih . o_ih
 *   dS_ij = P_ij * (do_ih . v_jg - D_ih)
 *   dq_ih = scale * sum_j dS_ij k_jg
 *   dk_jg = scale * sum_{h in g} sum_{i >= j} dS_ij q_ih
 *   dv_jg = sum_{h in g} sum_{i >= j} P_ij do_ih
 * q, o, dout, dq: (B*T, n_heads*head_dim); k, v, dk, dv: (B*T,
 * n_kv_heads*head_dim); lse and the scratch d (D above, written by the op):
 * (B*T, n_heads). All F32, contiguous; the outputs (d, dq, dk, dv) must not
 * overlap the inputs. dq, dk, dv are written, not accumulated. Sums run in a
 * fixed order (no atomics): reruns are bit-identical. The forward that made
 * o and lse is lgpu_op_attention over F32 pools with block_size dividing T
 * and the identity table (table[b*max_blocks + n] = b*max_blocks + n,
 * max_blocks = T / block_size; tok_seq = b, tok_pos = t), so k and v may be
 * the pool buffers themselves. A T padded up to a multiple of the block size
 * works unchanged when the padding rows have dout = 0: the real rows'
 * gradients are those of the unpadded T, the padding rows' are 0. head_dim
 * <= LGPU_ATTN_MAX_HEAD_DIM, and on Vulkan a multiple of 4 (vec4 columns),
 * as for lgpu_op_attention. */
typedef struct lgpu_attention_backward_params {
    uint32_t B, T, n_heads, n_kv_heads, head_dim;
    float scale;
} lgpu_attention_backward_params;
LGPU_PARAMS_CHECK(lgpu_attention_backward_params);

#endif
