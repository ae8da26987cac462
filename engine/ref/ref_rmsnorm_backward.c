/* C twin of shaders/rmsnorm_backward.comp, in double: per row the mean
 * square and sum(g * x) are accumulated in increasing i, each dx rounded
 * once (after the add when accumulating). Rows are independent, so
 * splitting them over threads changes no bit. */
#include <math.h>

#include "core/parallel.h"
#include "ref/ref_ops.h"

typedef struct {
    const lgpu_rmsnorm_backward_params *p;
    const float *x, *w, *dy;
    float *dx;
} rmsb_job;

static void rows(void *ctx, int64_t begin, int64_t end, int thread) {
    const rmsb_job *j = ctx;
    const uint32_t N = j->p->N;
    (void)thread;
    for (int64_t m = begin; m < end; m++) {
        const float *xr = j->x + (size_t)m * N, *dyr = j->dy + (size_t)m * N;
        float *dxr = j->dx + (size_t)m * N;
        double ss = 0, gx = 0;
        for (uint32_t i = 0; i < N; i++) {
            ss += (double)xr[i] * xr[i];
            gx += (double)dyr[i] * j->w[i] * xr[i];
        }
        double r = 1.0 / sqrt(ss / N + j->p->eps);
        double coef = r * r * r * gx / N;
        for (uint32_t i = 0; i < N; i++) {
            double d = r * ((double)dyr[i] * j->w[i]) - xr[i] * coef;
            dxr[i] = (float)(j->p->accumulate ? dxr[i] + d : d);
        }
    }
}

void lgpu_ref_rmsnorm_backward(const lgpu_rmsnorm_backward_params *p, const float *x, const float *w,
                               const float *dy, float *dx, int nthreads) {
    rmsb_job j = {p, x, w, dy, dx};
    if ((uint64_t)p->M * p->N < LGPU_REF_PARALLEL_MIN) nthreads = 1;
    lgpu_parallel_for(nthreads, p->M, rows, &j);
}
