/* Parameters of the sum of squares: the push-constant block of shaders/sumsq*.comp, shared by the op
 * layer (engine/ops) and the C twin (engine/ref). Gradient clipping's global norm is the square root of
 * the sum of these partials over every trained tensor, added up on the host in double. */
#ifndef LGPU_PARAMS_SUMSQ_H
#define LGPU_PARAMS_SUMSQ_H

#include "params/common.h"

/* out[b] = sum of x[i]^2 for i in [b * block, min(n, (b + 1) * block)),
 * b < ceil(n / block), each in a fixed order (bit-identical reruns).
 * x, out: F32. block: a multiple of 1024, at most 1 << 20. */
typedef struct lgpu_sumsq_params {
    uint32_t n, block;
} lgpu_sumsq_params;
LGPU_PARAMS_CHECK(lgpu_sumsq_params);

#endif
