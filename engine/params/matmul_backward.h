/* Parameters of the matmul backward through a frozen weight: the push-constant block of
 * shaders/matmul_backward.comp (one build per weight type), shared by the op layer (engine/ops) and the
 * C twin (engine/ref). */
#ifndef LGPU_PARAMS_MATMUL_BACKWARD_H
#define LGPU_PARAMS_MATMUL_BACKWARD_H

#include "params/common.h"

/* The gradient of y = x W^T (lgpu_op_matmul) with respect to x, W frozen:
 *   dx[m, k] (+)= sum_n dy[m, n] * W[n, k]
 * W: (N, K) of `wtype` (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K), dequantized
 * on the fly block by block (never a dequantized copy of W); dy: (M, N) F32
 * with row stride dy_stride; dx: (M, K) F32 with row stride dx_stride.
 * accumulate != 0 adds to dx (the residual stream's gradient, several
 * projections reading one input). Sums over n run in increasing n, so
 * reruns are bit-identical. W may span several buffer segments: the op
 * layer dispatches once per segment, the later ones accumulating.
 * Strides 0 mean contiguous (N, K). M = 0 or K = 0 is an empty op; N = 0
 * gives dx = 0 (or leaves it when accumulating). The C twin computes
 * s = ((0 + p_0) + p_1) + ... then dx + s, the shader's order exactly (W
 * dequantized by lgpu_dequantize_row, which the shaders' types.glsl
 * mirrors); a device that fuses multiply-adds, or a W split over
 * segments (each adds its partial sum to dx), differs from it by at most
 * (N + 4 + segments) 2^-24 (sum_n |dy W| + |dx|) per element. */
typedef struct lgpu_matmul_backward_params {
    uint32_t M, N, K;
    uint32_t dy_stride, dx_stride;
    uint32_t accumulate;
    uint32_t wtype;
    /* Set by the op layer per W segment, as in lgpu_matmul_params: W rows
     * [row_offset, row_offset + N) pair with dy columns row_offset + n.
     * Callers pass 0 and the full N. */
    uint32_t row_offset;
    /* Host device only: W is Q4_0 repacked by lgpu_repack_q4_0_x8 (N % 8 == 0). */
    uint32_t w_x8;
} lgpu_matmul_backward_params;
LGPU_PARAMS_CHECK(lgpu_matmul_backward_params);

#endif
