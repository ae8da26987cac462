/* C twin of shaders/softmax.comp, in double. x and y may alias. */
#include <math.h>

#include "ref/ref_ops.h"

void lgpu_ref_softmax(const lgpu_softmax_params *p, const float *x, float *y) {
    for (uint32_t m = 0; m < p->M; m++) {
        const float *xr = x + (size_t)m * p->N;
        float *yr = y + (size_t)m * p->N;
        double mx = -INFINITY, sum = 0;
        for (uint32_t i = 0; i < p->N; i++) mx = fmax(mx, (double)(xr[i] * p->scale));
        for (uint32_t i = 0; i < p->N; i++) sum += exp((double)(xr[i] * p->scale) - mx);
        for (uint32_t i = 0; i < p->N; i++) yr[i] = (float)(exp((double)(xr[i] * p->scale) - mx) / sum);
    }
}
