/* C twin of shaders/adamw.comp: torch.optim.AdamW's formulas in the order of
 * engine/params/adamw.h, each step in double from the float state (p, m, v
 * rounded once each when stored). Pointwise, so splitting it over threads
 * changes no bit. */
#include <math.h>

#include "core/parallel.h"
#include "ref/ref_ops.h"

typedef struct {
    const lgpu_adamw_params *p;
    float *param, *m, *v;
    const float *grad;
} adamw_job;

static void range(void *ctx, int64_t begin, int64_t end, int thread) {
    const adamw_job *j = ctx;
    const lgpu_adamw_params *p = j->p;
    const double lr = p->lr, b1 = p->beta1, b2 = p->beta2, eps = p->eps, decay = 1.0 - lr * p->weight_decay;
    const double a1 = p->one_minus_beta1, a2 = p->one_minus_beta2;
    const double step = lr * p->c1, c2 = p->c2, gs = p->grad_scale;
    (void)thread;
    for (int64_t i = begin; i < end; i++) {
        double g = j->grad[i] * gs;
        double w = j->param[i] * decay;
        double m = b1 * j->m[i] + a1 * g;
        double v = b2 * j->v[i] + a2 * g * g;
        w -= step * m / (sqrt(v) * c2 + eps);
        j->param[i] = (float)w;
        j->m[i] = (float)m;
        j->v[i] = (float)v;
    }
}

void lgpu_ref_adamw(const lgpu_adamw_params *p, float *param, const float *grad, float *m, float *v, int nthreads) {
    adamw_job j = {p, param, m, v, grad};
    lgpu_parallel_for(p->n < LGPU_REF_PARALLEL_MIN ? 1 : nthreads, p->n, range, &j);
}
