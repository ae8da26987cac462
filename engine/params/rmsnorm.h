/* Parameters of RMS normalisation: the push-constant block of shaders/rmsnorm*.comp, shared by the op
 * layer (engine/ops) and the C twin (engine/ref). */
#ifndef LGPU_PARAMS_RMSNORM_H
#define LGPU_PARAMS_RMSNORM_H

#include "params/common.h"

/* y[m, :] = x[m, :] / sqrt(mean(x[m, :]^2) + eps) * w[:]   x, y: (M, N); w: (N) F32 */
typedef struct lgpu_rmsnorm_params {
    uint32_t M, N;
    float eps;
} lgpu_rmsnorm_params;
LGPU_PARAMS_CHECK(lgpu_rmsnorm_params);

#endif
