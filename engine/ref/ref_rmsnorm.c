/* C twin of shaders/rmsnorm.comp: the mean square is accumulated in double. */
#include <math.h>

#include "ref/ref_ops.h"

void lgpu_ref_rmsnorm(const lgpu_rmsnorm_params *p, const float *x, const float *w, float *y) {
    for (uint32_t m = 0; m < p->M; m++) {
        const float *xr = x + (size_t)m * p->N;
        float *yr = y + (size_t)m * p->N;
        double ss = 0;
        for (uint32_t i = 0; i < p->N; i++) ss += (double)xr[i] * xr[i];
        double rstd = 1.0 / sqrt(ss / p->N + p->eps);
        for (uint32_t i = 0; i < p->N; i++) yr[i] = (float)(xr[i] * rstd * w[i]);
    }
}
