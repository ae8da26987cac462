/* Parameters of the RMSNorm backward: the push-constant block of shaders/rmsnorm_backward.comp, shared by
 * the op layer (engine/ops) and the C twin (engine/ref). */
#ifndef LGPU_PARAMS_RMSNORM_BACKWARD_H
#define LGPU_PARAMS_RMSNORM_BACKWARD_H

#include "params/common.h"

/* The gradient of y = x * r * w, r = 1 / sqrt(mean(x^2) + eps) (lgpu_op_rmsnorm),
 * with respect to x, w frozen, row by row:
 *   g = dy * w;   dx = r * g - x * r^3 * sum(g * x) / N     (dx += ... when accumulate)
 * x, dy, dx: (M, N) F32 contiguous; w: (N) F32. r is recomputed from x.
 * dx may be dy (in place). Sums over the row in a fixed order: reruns are
 * bit-identical. */
typedef struct lgpu_rmsnorm_backward_params {
    uint32_t M, N;
    float eps;
    uint32_t accumulate;
} lgpu_rmsnorm_backward_params;
LGPU_PARAMS_CHECK(lgpu_rmsnorm_backward_params);

#endif
