/* C twin of shaders/swiglu.comp, in double. */
#include <math.h>

#include "ref/ref_ops.h"

void lgpu_ref_swiglu(const lgpu_swiglu_params *p, const float *g, const float *u, float *y) {
    for (uint32_t i = 0; i < p->n; i++) {
        double v = g[i];
        y[i] = (float)(v / (1.0 + exp(-v)) * u[i]);
    }
}
