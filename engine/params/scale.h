/* Parameters of elementwise scale: the push-constant block of shaders/scale*.comp, shared by the op
 * layer (engine/ops) and the C twin (engine/ref). */
#ifndef LGPU_PARAMS_SCALE_H
#define LGPU_PARAMS_SCALE_H

#include "params/common.h"

/* y[i] = x[i] * s */
typedef struct lgpu_scale_params {
    uint32_t n;
    float s;
} lgpu_scale_params;
LGPU_PARAMS_CHECK(lgpu_scale_params);

#endif
