/* Parameters of rotary position embedding: the push-constant block of shaders/rope*.comp, shared by
 * the op layer (engine/ops) and the C twin (engine/ref). */
#ifndef LGPU_PARAMS_ROPE_H
#define LGPU_PARAMS_ROPE_H

#include "lgpu/llama.h" /* lgpu_rope_scaling */
#include "params/common.h"

/* Rotary embedding in place, interleaved pairs (GGUF/llama.cpp "normal" mode):
 * for token t, head h, pair i < head_dim/2, with p = pos[t], a = p * inv_freq[i]:
 *   (x0, x1) = x[t*token_stride + h*head_dim + 2i + {0,1}]
 *   x0' = x0 cos a - x1 sin a ;  x1' = x0 sin a + x1 cos a
 * x: F32; pos: I32 (T); inv_freq: F32 (head_dim/2), from lgpu_rope_inv_freq()
 * (theta and the LLaMA-3.1 frequency scaling are folded into inv_freq). */
typedef struct lgpu_rope_params {
    uint32_t T, n_heads, head_dim;
    uint32_t token_stride;
} lgpu_rope_params;
LGPU_PARAMS_CHECK(lgpu_rope_params);

/* inv_freq[i] = theta^(-2i/head_dim), then LLaMA-3.1 scaling when given. */
void lgpu_rope_inv_freq(float theta, uint32_t head_dim, const lgpu_rope_scaling *scaling, float *inv_freq);

#endif
