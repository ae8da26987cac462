/* C twin of shaders/argmax.comp: first index of the maximum, NaNs skipped,
 * 0 for a row of only NaNs. */
#include <math.h>

#include "ref/ref_ops.h"

void lgpu_ref_argmax(const lgpu_argmax_params *p, const float *x, int32_t *idx) {
    for (uint32_t m = 0; m < p->M; m++) {
        const float *xr = x + (size_t)m * p->N;
        int32_t best = -1;
        for (uint32_t n = 0; n < p->N; n++)
            if (!isnan(xr[n]) && (best < 0 || xr[n] > xr[best])) best = (int32_t)n;
        idx[m] = best < 0 ? 0 : best;
    }
}
