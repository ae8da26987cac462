/* C twin of shaders/scale.comp. */
#include "ref/ref_ops.h"

void lgpu_ref_scale(const lgpu_scale_params *p, const float *x, float *y) {
    for (uint32_t i = 0; i < p->n; i++) y[i] = x[i] * p->s;
}
