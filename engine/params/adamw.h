/* Parameters of the AdamW step: the push-constant block of shaders/adamw.comp, shared by the op layer
 * (engine/ops) and the C twin (engine/ref). */
#ifndef LGPU_PARAMS_ADAMW_H
#define LGPU_PARAMS_ADAMW_H

#include "params/common.h"

/* One step of torch.optim.AdamW (decoupled weight decay, bias correction)
 * over n parameters, in its order of operations:
 *   g = grad[i] * grad_scale
 *   p = p * (1 - lr * weight_decay)
 *   m = beta1 * m + one_minus_beta1 * g
 *   v = beta2 * v + one_minus_beta2 * g * g
 *   p = p - lr * c1 * m / (sqrt(v) * c2 + eps)
 * with c1 = 1 / (1 - beta1^t) and c2 = 1 / sqrt(1 - beta2^t) for step t >= 1,
 * and one_minus_beta1/2 = 1 - beta1/2, all computed by the caller in double
 * from the configured betas and rounded once, as torch rounds its double
 * scalars: in float, 1.0f - 0.999f is 1.3e-5 away from 0.001f, a bias
 * of every v. param, grad, m, v: F32 (n). grad_scale carries global-norm
 * clipping (min(1, max_norm / norm)). The op rejects one_minus_beta1/2 <= 0
 * (left unset). */
typedef struct lgpu_adamw_params {
    uint32_t n;
    float lr, beta1, beta2, eps, weight_decay;
    float c1, c2;
    float grad_scale;
    float one_minus_beta1, one_minus_beta2;
} lgpu_adamw_params;
LGPU_PARAMS_CHECK(lgpu_adamw_params);

#endif
