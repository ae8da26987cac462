/* Parameters of matrix multiplication through a weight of any loaded type: the push-constant block of
 * shaders/matmul*.comp, shared by the op layer (engine/ops) and the C twin (engine/ref). */
#ifndef LGPU_PARAMS_MATMUL_H
#define LGPU_PARAMS_MATMUL_H

#include "params/common.h"

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

#endif
