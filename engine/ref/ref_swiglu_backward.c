/* C twin of shaders/swiglu_backward.comp, in float like the forward twin
 * (expf; this runs for every hidden unit of every token). Pointwise, so
 * splitting it over threads changes no bit. */
#include <math.h>

#include "core/parallel.h"
#include "ref/ref_ops.h"

typedef struct {
    const float *g, *u, *dy;
    float *dg, *du;
} swb_job;

static void range(void *ctx, int64_t begin, int64_t end, int thread) {
    const swb_job *j = ctx;
    (void)thread;
    for (int64_t i = begin; i < end; i++) {
        float g = j->g[i], d = j->dy[i];
        float s = 1.0f / (1.0f + expf(-g)); /* g < -88: expf = inf, s = 0 */
        float dg = d * j->u[i] * s * (1.0f + g * (1.0f - s));
        float du = d * g * s;
        j->dg[i] = dg;
        j->du[i] = du;
    }
}

void lgpu_ref_swiglu_backward(const lgpu_swiglu_backward_params *p, const float *g, const float *u,
                              const float *dy, float *dg, float *du, int nthreads) {
    swb_job j = {g, u, dy, dg, du};
    lgpu_parallel_for(p->n < LGPU_REF_PARALLEL_MIN ? 1 : nthreads, p->n, range, &j);
}
