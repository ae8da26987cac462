/* The op interface: every op is one function taking an exec, a parameter
 * struct and operand refs. On the host device it calls the op's C twin
 * (engine/ref); on Vulkan it records the matching shader (shaders/<op>*.comp).
 *
 * Each *_params struct is, field for field, the shader's push-constant block
 * (<= 128 bytes, 4-byte fields). The C twins in engine/ref/ref_ops.h take the
 * same struct plus plain host pointers.
 *
 * Layout conventions (GGUF order: ne[0] is the fastest-varying dimension):
 *   a matrix W of N rows and K columns stores row n at W + n*row_bytes(type,K);
 *   activations are F32, row-major, contiguous unless a stride is given. */
#ifndef LGPU_OPS_OPS_H
#define LGPU_OPS_OPS_H

#include "ops/device.h"

#define LGPU_PARAMS_CHECK(T) _Static_assert(sizeof(T) <= 128 && sizeof(T) % 4 == 0, #T " must fit push constants")

/* y[m, n] (+)= sum_k W[n, k] * x[m, k]
 * W: (N, K) of type `wtype` (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K);
 * x: (M, K) F32 with row stride x_stride elements; y: (M, N) F32, row stride y_stride.
 * accumulate != 0 adds to y (used to fold residual adds into the output projection).
 * The implementation picks matrix-vector (small M), tiled matrix-matrix or a
 * cooperative-matrix variant; W may span several buffer segments. */
typedef struct lgpu_matmul_params {
    uint32_t M, N, K;
    uint32_t x_stride, y_stride;
    uint32_t accumulate;
    uint32_t wtype;
    /* Set by the op layer when W spans segments: this dispatch covers W rows
     * [row_offset, row_offset + N) and writes y columns row_offset + n; the W
     * binding starts at row row_offset. Callers pass 0 and the full N. */
    uint32_t row_offset;
    /* Host device only: W is Q4_0 repacked by lgpu_repack_q4_0_x8 (N % 8 == 0). */
    uint32_t w_x8;
} lgpu_matmul_params;
LGPU_PARAMS_CHECK(lgpu_matmul_params);
int lgpu_op_matmul(lgpu_exec *ex, const lgpu_matmul_params *p, lgpu_ref w, lgpu_ref x, lgpu_ref y);

/* y[m, :] = x[m, :] / sqrt(mean(x[m, :]^2) + eps) * w[:]   x, y: (M, N); w: (N) F32 */
typedef struct lgpu_rmsnorm_params {
    uint32_t M, N;
    float eps;
} lgpu_rmsnorm_params;
LGPU_PARAMS_CHECK(lgpu_rmsnorm_params);
int lgpu_op_rmsnorm(lgpu_exec *ex, const lgpu_rmsnorm_params *p, lgpu_ref x, lgpu_ref w, lgpu_ref y);

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
int lgpu_op_rope(lgpu_exec *ex, const lgpu_rope_params *p, lgpu_ref x, lgpu_ref pos, lgpu_ref inv_freq);

/* LLaMA-3.1 RoPE scaling (rope_type "llama3"); factor <= 0 means none. */
typedef struct lgpu_rope_scaling {
    float factor, low_freq_factor, high_freq_factor;
    uint32_t original_ctx;
} lgpu_rope_scaling;
/* inv_freq[i] = theta^(-2i/head_dim), then LLaMA-3.1 scaling when given. */
void lgpu_rope_inv_freq(float theta, uint32_t head_dim, const lgpu_rope_scaling *scaling, float *inv_freq);

/* y[m, :] = softmax(x[m, :] * scale), x, y: (M, N) F32 (may alias) */
typedef struct lgpu_softmax_params {
    uint32_t M, N;
    float scale;
} lgpu_softmax_params;
LGPU_PARAMS_CHECK(lgpu_softmax_params);
int lgpu_op_softmax(lgpu_exec *ex, const lgpu_softmax_params *p, lgpu_ref x, lgpu_ref y);

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
int lgpu_op_kv_store(lgpu_exec *ex, const lgpu_kv_store_params *p, lgpu_ref k, lgpu_ref v, lgpu_ref tok_seq,
                     lgpu_ref tok_pos, lgpu_ref block_table, lgpu_ref k_pool, lgpu_ref v_pool);

/* Causal grouped-query attention over the paged cache, one pass with an
 * online softmax (no score matrix). For token t (seq s = tok_seq[t], position
 * p = tok_pos[t]) and query head h (kv head g = h / (n_heads / n_kv_heads)):
 *   out[t, h, :] = sum_{j<=p} softmax_j(scale * q[t,h,:] . K[s,j,g,:]) V[s,j,g,:]
 * q: (T, n_heads*head_dim) with row stride q_stride; out: (T, n_heads*head_dim) contiguous. */
typedef struct lgpu_attention_params {
    uint32_t T, n_heads, n_kv_heads, head_dim;
    uint32_t q_stride;
    uint32_t block_size, max_blocks;
    float scale;
    uint32_t kv_type; /* pool elements: LGPU_TYPE_F32 or LGPU_TYPE_F16 */
} lgpu_attention_params;
LGPU_PARAMS_CHECK(lgpu_attention_params);
int lgpu_op_attention(lgpu_exec *ex, const lgpu_attention_params *p, lgpu_ref q, lgpu_ref tok_seq, lgpu_ref tok_pos,
                      lgpu_ref block_table, lgpu_ref k_pool, lgpu_ref v_pool, lgpu_ref out);

/* y[i] = silu(g[i]) * u[i] = g/(1+exp(-g)) * u,  i < n */
typedef struct lgpu_swiglu_params {
    uint32_t n;
} lgpu_swiglu_params;
LGPU_PARAMS_CHECK(lgpu_swiglu_params);
int lgpu_op_swiglu(lgpu_exec *ex, const lgpu_swiglu_params *p, lgpu_ref g, lgpu_ref u, lgpu_ref y);

/* y[i] = a[i] + b[i] */
typedef struct lgpu_add_params {
    uint32_t n;
} lgpu_add_params;
LGPU_PARAMS_CHECK(lgpu_add_params);
int lgpu_op_add(lgpu_exec *ex, const lgpu_add_params *p, lgpu_ref a, lgpu_ref b, lgpu_ref y);

/* y[i] = x[i] * s */
typedef struct lgpu_scale_params {
    uint32_t n;
    float s;
} lgpu_scale_params;
LGPU_PARAMS_CHECK(lgpu_scale_params);
int lgpu_op_scale(lgpu_exec *ex, const lgpu_scale_params *p, lgpu_ref x, lgpu_ref y);

/* Embedding gather: y[t, :] = dequant(E[ids[t], :]) for t < T.
 * E: (n_rows, K) of `etype` (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K); ids: I32 (T); y: (T, K) F32.
 * An id outside [0, n_rows) gives a zero row (the op layer also reports it). */
typedef struct lgpu_get_rows_params {
    uint32_t T, K, n_rows;
    uint32_t etype;
    /* Set by the op layer per segment: the E binding starts at row row_offset
     * and holds n_rows rows; only tokens with ids in that range are written.
     * Callers pass 0 and the full n_rows. */
    uint32_t row_offset;
    uint32_t e_x8; /* host device only: E is Q4_0 repacked by lgpu_repack_q4_0_x8 */
} lgpu_get_rows_params;
LGPU_PARAMS_CHECK(lgpu_get_rows_params);
int lgpu_op_get_rows(lgpu_exec *ex, const lgpu_get_rows_params *p, lgpu_ref e, lgpu_ref ids, lgpu_ref y);

/* idx[m] = the smallest n with x[m, n] maximal. x: (M, N) F32; idx: I32 (M) */
typedef struct lgpu_argmax_params {
    uint32_t M, N;
} lgpu_argmax_params;
LGPU_PARAMS_CHECK(lgpu_argmax_params);
int lgpu_op_argmax(lgpu_exec *ex, const lgpu_argmax_params *p, lgpu_ref x, lgpu_ref idx);

#endif
