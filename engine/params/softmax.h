/* Parameters of row softmax: the push-constant block of shaders/softmax*.comp, shared by the op layer
 * (engine/ops) and the C twin (engine/ref). */
#ifndef LGPU_PARAMS_SOFTMAX_H
#define LGPU_PARAMS_SOFTMAX_H

#include "params/common.h"

/* y[m, :] = softmax(x[m, :] * scale), x, y: (M, N) F32 (may alias) */
typedef struct lgpu_softmax_params {
    uint32_t M, N;
    float scale;
} lgpu_softmax_params;
LGPU_PARAMS_CHECK(lgpu_softmax_params);

#endif
