/* C twin of shaders/sumsq.comp: each block's sum of squares in double, in
 * increasing i, rounded once. Blocks are independent, so splitting them over
 * threads changes no bit. */
#include "core/parallel.h"
#include "ref/ref_ops.h"

typedef struct {
    const lgpu_sumsq_params *p;
    const float *x;
    float *out;
} sumsq_job;

static void blocks(void *ctx, int64_t begin, int64_t end, int thread) {
    const sumsq_job *j = ctx;
    const uint64_t n = j->p->n, bs = j->p->block;
    (void)thread;
    for (int64_t b = begin; b < end; b++) {
        uint64_t i0 = (uint64_t)b * bs, i1 = i0 + bs < n ? i0 + bs : n;
        double s = 0;
        for (uint64_t i = i0; i < i1; i++) s += (double)j->x[i] * j->x[i];
        j->out[b] = (float)s;
    }
}

void lgpu_ref_sumsq(const lgpu_sumsq_params *p, const float *x, float *out, int nthreads) {
    if (!p->block) return;
    sumsq_job j = {p, x, out};
    lgpu_parallel_for(p->n < LGPU_REF_PARALLEL_MIN ? 1 : nthreads, ((int64_t)p->n + p->block - 1) / p->block, blocks,
                      &j);
}
