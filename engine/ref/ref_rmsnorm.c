/* C twin of shaders/rmsnorm.comp: the mean square is accumulated in double.
 * Rows are independent, so splitting them over threads changes no bit. */
#include <math.h>

#include "core/parallel.h"
#include "ref/ref_ops.h"

typedef struct {
    const lgpu_rmsnorm_params *p;
    const float *x, *w;
    float *y;
} rms_job;

static void rows(void *ctx, int64_t begin, int64_t end, int thread) {
    const rms_job *j = ctx;
    const uint32_t N = j->p->N;
    (void)thread;
    for (int64_t m = begin; m < end; m++) {
        const float *xr = j->x + (size_t)m * N;
        float *yr = j->y + (size_t)m * N;
        double ss = 0;
        for (uint32_t i = 0; i < N; i++) ss += (double)xr[i] * xr[i];
        double rstd = 1.0 / sqrt(ss / N + j->p->eps);
        for (uint32_t i = 0; i < N; i++) yr[i] = (float)(xr[i] * rstd * j->w[i]);
    }
}

void lgpu_ref_rmsnorm(const lgpu_rmsnorm_params *p, const float *x, const float *w, float *y, int nthreads) {
    rms_job j = {p, x, w, y};
    if ((uint64_t)p->M * p->N < LGPU_REF_PARALLEL_MIN) nthreads = 1;
    lgpu_parallel_for(nthreads, p->M, rows, &j);
}
