/* C twin of shaders/attention_backward_dq.comp and attention_backward_dkv.comp,
 * and the host path's attention backward (engine/params/attention_backward.h).
 *
 * Flash-style, as the shaders: the softmax is recomputed from the forward's
 * lse, never stored. Two passes, each spread over the thread pool:
 *   1. one item per (query row i, head h): D_ih = do_ih . o_ih (written to
 *      d), then the keys j <= i of its sequence in order, accumulating
 *      dq_ih = scale * sum_j dS_ij k_jg;
 *   2. one item per (key row j, kv head g): the queries i >= j of its
 *      sequence and, for each, the heads of group g in order, accumulating
 *      dk_jg = scale * sum dS_ij q_ih and dv_jg = sum P_ij do_ih.
 * Scores and the do.v dots are fp32 dots with 8 fixed lanes (the forward
 * twin's precision); P, dS and the accumulators are double, rounded once.
 * Every item is computed by one thread in a fixed order, so the result does
 * not depend on the thread count; plain C (no ISA switch), so one build. */
#include <math.h>
#include <string.h>

#include "core/parallel.h"
#include "ref/ref_ops.h"

typedef float v8f __attribute__((vector_size(32)));

typedef struct {
    const lgpu_attention_backward_params *p;
    const float *q, *k, *v, *o, *dout, *lse;
    float *d, *dq, *dk, *dv;
} bw_ctx;

/* a . b over n floats: 8 lanes, then ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)),
 * then the tail in order. */
static inline float dot_f(const float *a, const float *b, uint32_t n) {
    v8f s = {0};
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f x, y;
        memcpy(&x, a + i, sizeof x);
        memcpy(&y, b + i, sizeof y);
        s += x * y;
    }
    float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

/* pass 1: item = i * n_heads + h */
static void pass_dq(void *vctx, int64_t begin, int64_t end, int thread) {
    const bw_ctx *c = vctx;
    const lgpu_attention_backward_params *p = c->p;
    const uint32_t H = p->n_heads, D = p->head_dim, rep = H / p->n_kv_heads, kv_dim = p->n_kv_heads * D;
    double acc[LGPU_ATTN_MAX_HEAD_DIM];
    (void)thread;
    for (int64_t item = begin; item < end; item++) {
        const size_t i = (size_t)item / H, h = (size_t)item % H, g = h / rep;
        const size_t row0 = i - i % p->T; /* first row of the sequence */
        const float *q = c->q + (size_t)item * D, *dout = c->dout + (size_t)item * D, *o = c->o + (size_t)item * D;
        double dd = 0;
        for (uint32_t x = 0; x < D; x++) dd += (double)dout[x] * o[x];
        const float Di = (float)dd; /* the value pass 2 reads back */
        c->d[item] = Di;
        const double lse = c->lse[item];
        memset(acc, 0, D * sizeof acc[0]);
        for (size_t j = row0; j <= i; j++) {
            const float *kj = c->k + j * kv_dim + g * D, *vj = c->v + j * kv_dim + g * D;
            double P = exp((double)(dot_f(q, kj, D) * p->scale) - lse);
            double dS = P * ((double)dot_f(dout, vj, D) - Di);
            for (uint32_t x = 0; x < D; x++) acc[x] += dS * kj[x];
        }
        float *dq = c->dq + (size_t)item * D;
        for (uint32_t x = 0; x < D; x++) dq[x] = (float)(p->scale * acc[x]);
    }
}

/* pass 2: item = j * n_kv_heads + g */
static void pass_dkv(void *vctx, int64_t begin, int64_t end, int thread) {
    const bw_ctx *c = vctx;
    const lgpu_attention_backward_params *p = c->p;
    const uint32_t H = p->n_heads, G = p->n_kv_heads, D = p->head_dim, rep = H / G;
    double adk[LGPU_ATTN_MAX_HEAD_DIM], adv[LGPU_ATTN_MAX_HEAD_DIM];
    (void)thread;
    for (int64_t item = begin; item < end; item++) {
        const size_t j = (size_t)item / G, g = (size_t)item % G;
        const size_t row_end = j - j % p->T + p->T; /* one past the sequence's last row */
        const float *kj = c->k + (size_t)item * D, *vj = c->v + (size_t)item * D;
        memset(adk, 0, D * sizeof adk[0]);
        memset(adv, 0, D * sizeof adv[0]);
        for (size_t i = j; i < row_end; i++)
            for (size_t h = g * rep; h < (g + 1) * rep; h++) {
                const size_t qi = i * H + h;
                const float *q = c->q + qi * D, *dout = c->dout + qi * D;
                double P = exp((double)(dot_f(q, kj, D) * p->scale) - (double)c->lse[qi]);
                double dS = P * ((double)dot_f(dout, vj, D) - c->d[qi]);
                for (uint32_t x = 0; x < D; x++) {
                    adk[x] += dS * q[x];
                    adv[x] += P * dout[x];
                }
            }
        float *dk = c->dk + (size_t)item * D, *dv = c->dv + (size_t)item * D;
        for (uint32_t x = 0; x < D; x++) {
            dk[x] = (float)(p->scale * adk[x]);
            dv[x] = (float)adv[x];
        }
    }
}

void lgpu_ref_attention_backward(const lgpu_attention_backward_params *p, const float *q, const float *k,
                                 const float *v, const float *o, const float *dout, const float *lse, float *d,
                                 float *dq, float *dk, float *dv, int nthreads) {
    if (!p->B || !p->T || !p->n_heads || !p->n_kv_heads || !p->head_dim) return;
    bw_ctx c = {p, q, k, v, o, dout, lse, d, dq, dk, dv};
    const int64_t rows = (int64_t)p->B * p->T;
    /* each item walks up to T rows: few items are enough work for a thread */
    const int nt = rows * p->T * p->head_dim < LGPU_REF_PARALLEL_MIN ? 1 : nthreads;
    lgpu_parallel_for(nt, rows * p->n_heads, pass_dq, &c);   /* writes d */
    lgpu_parallel_for(nt, rows * p->n_kv_heads, pass_dkv, &c); /* reads d */
}
