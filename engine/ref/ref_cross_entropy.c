/* C twins of shaders/cross_entropy_stats.comp and cross_entropy_grad.comp,
 * in double: a chunk's sum of exp(z - max) is accumulated in increasing c
 * and merged with the running row statistics, which are stored rounded to
 * float (the same memory the shader keeps between chunks). Rows are
 * independent, so splitting them over threads changes no bit. */
#include <math.h>
#include <string.h>

#include "core/parallel.h"
#include "ref/ref_ops.h"

typedef struct {
    const lgpu_cross_entropy_stats_params *sp;
    const lgpu_cross_entropy_grad_params *gp;
    const int32_t *target;
    const float *zc;
    float *z, *stats, *loss;
} ce_job;

static void stats_rows(void *ctx, int64_t begin, int64_t end, int thread) {
    const ce_job *j = ctx;
    const lgpu_cross_entropy_stats_params *p = j->sp;
    (void)thread;
    for (int64_t m = begin; m < end; m++) {
        float *st = j->stats + (size_t)m * 4;
        int32_t t = j->target[m];
        if (t < 0) { /* masked row: no statistics, loss 0 */
            memset(st, 0, 4 * sizeof(float));
            if (p->last) j->loss[m] = 0.0f;
            continue;
        }
        const float *zr = j->zc + (size_t)m * p->z_stride;
        float cmax = -INFINITY;
        for (uint32_t c = 0; c < p->C; c++) cmax = fmaxf(cmax, zr[c]);
        float mx = p->first ? cmax : fmaxf(st[0], cmax);
        double sum = p->first ? 0.0 : (double)st[1] * exp((double)st[0] - mx);
        for (uint32_t c = 0; c < p->C; c++) sum += exp((double)zr[c] - mx);
        float tl = p->first ? 0.0f : st[2];
        if ((uint32_t)t >= p->v0 && (uint32_t)t - p->v0 < p->C) tl = zr[(uint32_t)t - p->v0];
        st[0] = mx;
        st[1] = (float)sum;
        st[2] = tl;
        st[3] = 0.0f;
        if (p->last) j->loss[m] = (float)((double)mx + log(sum) - tl);
    }
}

void lgpu_ref_cross_entropy_stats(const lgpu_cross_entropy_stats_params *p, const float *z, const int32_t *target,
                                  float *stats, float *loss, int nthreads) {
    ce_job j = {.sp = p, .target = target, .zc = z, .stats = stats, .loss = loss};
    if ((uint64_t)p->M * p->C < LGPU_REF_PARALLEL_MIN) nthreads = 1;
    lgpu_parallel_for(nthreads, p->M, stats_rows, &j);
}

static void grad_rows(void *ctx, int64_t begin, int64_t end, int thread) {
    const ce_job *j = ctx;
    const lgpu_cross_entropy_grad_params *p = j->gp;
    (void)thread;
    for (int64_t m = begin; m < end; m++) {
        float *zr = j->z + (size_t)m * p->z_stride;
        int32_t t = j->target[m];
        if (t < 0) {
            memset(zr, 0, (size_t)p->C * sizeof(float));
            continue;
        }
        const float *st = j->stats + (size_t)m * 4;
        double lse = (double)st[0] + log((double)st[1]);
        for (uint32_t c = 0; c < p->C; c++) {
            double g = exp((double)zr[c] - lse) - (p->v0 + c == (uint32_t)t ? 1.0 : 0.0);
            zr[c] = (float)(g * p->grad_scale);
        }
    }
}

void lgpu_ref_cross_entropy_grad(const lgpu_cross_entropy_grad_params *p, float *z, const int32_t *target,
                                 const float *stats, int nthreads) {
    ce_job j = {.gp = p, .target = target, .z = z, .stats = (float *)stats};
    if ((uint64_t)p->M * p->C < LGPU_REF_PARALLEL_MIN) nthreads = 1;
    lgpu_parallel_for(nthreads, p->M, grad_rows, &j);
}
