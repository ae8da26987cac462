/* C twin of shaders/swiglu.comp, in float like the shader (expf is several
 * times faster than exp, and this runs for every hidden unit of every token). */
#include <math.h>

#include "ref/ref_ops.h"

void lgpu_ref_swiglu(const lgpu_swiglu_params *p, const float *g, const float *u, float *y) {
    for (uint32_t i = 0; i < p->n; i++) {
        float v = g[i];
        y[i] = v / (1.0f + expf(-v)) * u[i];
    }
}
