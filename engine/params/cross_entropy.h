/* Parameters of the chunked cross-entropy: the push-constant blocks of shaders/cross_entropy_*.comp,
 * shared by the op layer (engine/ops) and the C twin (engine/ref).
 *
 * The loss is fused with the output head and chunked over the vocabulary, so
 * no n_tokens x n_vocab buffer exists: for each chunk of C vocabulary rows
 * [v0, v0 + C) the caller computes z = h W_out[v0 .. v0+C)^T (lgpu_op_matmul
 * into an M x C buffer), then
 *   pass 1, every chunk: lgpu_op_cross_entropy_stats folds z into each row's
 *     running (max, sum of exp, target logit); the last chunk writes the
 *     row's loss;
 *   pass 2, every chunk again: recompute z, lgpu_op_cross_entropy_grad turns
 *     it into dL/dz in place, and dh += z W_out[v0..]  (lgpu_op_matmul_backward
 *     with accumulate).
 * A row whose target is < 0 (prompt tokens, padding) has loss 0 and zero
 * gradient. stats: (M, 4) F32 per row {max, sum of exp(z - max), target
 * logit, 0}; a row with target < 0 gets {0, 0, 0, 0}. A target must be a
 * vocabulary id (< n_vocab): the ops cannot check ids on the device.
 * Every op binding starts at a multiple of LGPU_REF_ALIGN (256 bytes), so
 * pick C with C * (W_out row bytes) a multiple of 256 for the chunk's
 * W_out rows to start aligned. Each chunk's row sums run in a fixed order:
 * reruns are bit-identical. */
#ifndef LGPU_PARAMS_CROSS_ENTROPY_H
#define LGPU_PARAMS_CROSS_ENTROPY_H

#include "params/common.h"

/* z: (M, C) F32 with row stride z_stride, logits of vocabulary ids v0 + c;
 * target: I32 (M). first != 0 starts the rows' statistics with this chunk;
 * last != 0 also writes loss[m] = max + log(sum) - target logit (0 when
 * target[m] < 0); loss: (M) F32, only bound when last (may be a NULL ref
 * otherwise). Columns c >= C of a padded row are not touched. */
typedef struct lgpu_cross_entropy_stats_params {
    uint32_t M, C, z_stride, v0;
    uint32_t first, last;
} lgpu_cross_entropy_stats_params;
LGPU_PARAMS_CHECK(lgpu_cross_entropy_stats_params);

/* In place: z[m, c] = (exp(z[m, c] - lse_m) - (v0 + c == target[m])) * grad_scale,
 * lse_m = max + log(sum) from stats; rows with target[m] < 0 become 0.
 * grad_scale is dLoss/dloss_m: 1 / (tokens counted in the optimizer step). */
typedef struct lgpu_cross_entropy_grad_params {
    uint32_t M, C, z_stride, v0;
    float grad_scale;
} lgpu_cross_entropy_grad_params;
LGPU_PARAMS_CHECK(lgpu_cross_entropy_grad_params);

#endif
