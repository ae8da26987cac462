/* C twin of shaders/dropout.comp: the same Philox4x32-10 words, the same
 * select, multiply and add per element, so the two agree bit for bit. One
 * Philox call gives the mask bits of 4 elements; the thread pool gets whole
 * groups of 4, so the split changes no bit. */
#include "core/parallel.h"
#include "ref/ref_ops.h"

/* Random123's philox4x32 constants: the multipliers and the Weyl key steps */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void lgpu_ref_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        if (r) k0 += PHILOX_W0, k1 += PHILOX_W1; /* the key is bumped between rounds */
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1, n3 = (uint32_t)p0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

typedef struct {
    const lgpu_dropout_params *p;
    const float *x;
    float *y;
} dropout_job;

static void range(void *ctx, int64_t begin, int64_t end, int thread) {
    const dropout_job *j = ctx;
    const lgpu_dropout_params *p = j->p;
    const uint32_t key[2] = {p->seed_lo, p->seed_hi};
    (void)thread;
    for (int64_t g = begin; g < end; g++) {
        uint32_t ctr[4] = {(uint32_t)g, 0, 0, 0}, bits[4];
        lgpu_ref_philox4x32_10(ctr, key, bits);
        for (uint32_t k = 0; k < 4; k++) {
            uint64_t i = (uint64_t)g * 4 + k;
            if (i >= p->n) break;
            float v = bits[k] >= p->threshold ? j->x[i] * p->scale : 0.0f;
            j->y[i] = p->accumulate ? j->y[i] + v : v;
        }
    }
}

void lgpu_ref_dropout(const lgpu_dropout_params *p, const float *x, float *y, int nthreads) {
    dropout_job j = {p, x, y};
    int64_t groups = ((int64_t)p->n + 3) / 4;
    lgpu_parallel_for(p->n < LGPU_REF_PARALLEL_MIN ? 1 : nthreads, groups, range, &j);
}
