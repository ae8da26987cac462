/* Parameters of the SwiGLU backward: the push-constant block of shaders/swiglu_backward.comp, shared by
 * the op layer (engine/ops) and the C twin (engine/ref). */
#ifndef LGPU_PARAMS_SWIGLU_BACKWARD_H
#define LGPU_PARAMS_SWIGLU_BACKWARD_H

#include "params/common.h"

/* The gradients of y = silu(g) * u (lgpu_op_swiglu), s = sigmoid(g):
 *   dg[i] = dy[i] * u[i] * s * (1 + g * (1 - s));   du[i] = dy[i] * g * s      (i < n)
 * All F32 (n). dg may be g and du may be u (in place); dg and du differ. */
typedef struct lgpu_swiglu_backward_params {
    uint32_t n;
} lgpu_swiglu_backward_params;
LGPU_PARAMS_CHECK(lgpu_swiglu_backward_params);

#endif
