/* Parameters of the SwiGLU gate: the push-constant block of shaders/swiglu*.comp, shared by the op
 * layer (engine/ops) and the C twin (engine/ref). */
#ifndef LGPU_PARAMS_SWIGLU_H
#define LGPU_PARAMS_SWIGLU_H

#include "params/common.h"

/* y[i] = silu(g[i]) * u[i] = g/(1+exp(-g)) * u,  i < n */
typedef struct lgpu_swiglu_params {
    uint32_t n;
} lgpu_swiglu_params;
LGPU_PARAMS_CHECK(lgpu_swiglu_params);

#endif
