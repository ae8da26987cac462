/* Parameters of row argmax: the push-constant block of shaders/argmax*.comp, shared by the op layer
 * (engine/ops) and the C twin (engine/ref). */
#ifndef LGPU_PARAMS_ARGMAX_H
#define LGPU_PARAMS_ARGMAX_H

#include "params/common.h"

/* idx[m] = the smallest n with x[m, n] maximal. x: (M, N) F32; idx: I32 (M) */
typedef struct lgpu_argmax_params {
    uint32_t M, N;
} lgpu_argmax_params;
LGPU_PARAMS_CHECK(lgpu_argmax_params);

#endif
