/* C twin of shaders/add.comp. */
#include "ref/ref_ops.h"

void lgpu_ref_add(const lgpu_add_params *p, const float *a, const float *b, float *y) {
    for (uint32_t i = 0; i < p->n; i++) y[i] = a[i] + b[i];
}
