/* C twin of shaders/attention.comp, and the host path's attention, so it is
 * written for speed as well: (token, head) pairs are spread over the thread
 * pool; each walks its keys in chunks of CHUNK with an online softmax (one
 * rescale per chunk whose maximum grows), float dot products with 8
 * independent partial sums (vectorizable), l in double. The heads of one KV
 * group are neighbours in the item order, so they share K/V rows in cache.
 * Results do not depend on the thread count: each pair is computed by one
 * thread in a fixed order. */
#include <math.h>
#include <string.h>

#include "core/parallel.h"
#include "ops/op_common.h"
#include "ref/ref_ops.h"

#define CHUNK 64

typedef struct {
    const lgpu_attention_params *p;
    const float *q;
    const int32_t *tok_seq, *tok_pos, *block_table;
    const float *k_pool, *v_pool;
    float *out;
} att_ctx;

static float dot(const float *a, const float *b, uint32_t n) {
    float s[8] = {0};
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += a[i + k] * b[i + k];
    float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

static void attend(const att_ctx *c, uint32_t t, uint32_t h) {
    const lgpu_attention_params *p = c->p;
    uint32_t D = p->head_dim, kv_dim = p->n_kv_heads * D, g = h / (p->n_heads / p->n_kv_heads);
    float *out = c->out + ((size_t)t * p->n_heads + h) * D;
    const float *q = c->q + (size_t)t * p->q_stride + (size_t)h * D;
    int32_t seq = c->tok_seq[t], pos = c->tok_pos[t];
    uint32_t n_keys = (seq < 0 || pos < 0) ? 0 : (uint32_t)pos + 1;
    const int32_t *table = c->block_table + (size_t)(seq < 0 ? 0 : seq) * p->max_blocks;

    float acc[LGPU_ATTN_MAX_HEAD_DIM];
    float sc[CHUNK];
    const float *vrow[CHUNK];
    float m = -INFINITY;
    double l = 0;
    memset(acc, 0, D * sizeof(float));
    for (uint32_t j0 = 0; j0 < n_keys; j0 += CHUNK) {
        uint32_t n = n_keys - j0 < CHUNK ? n_keys - j0 : CHUNK;
        float cmax = -INFINITY;
        for (uint32_t k = 0; k < n; k++) {
            uint32_t j = j0 + k, blk = j / p->block_size;
            int32_t b = blk < p->max_blocks ? table[blk] : -1;
            if (b < 0) {
                sc[k] = -INFINITY; /* masked, like an invalid slot in the shader */
                continue;
            }
            size_t off = ((size_t)b * p->block_size + j % p->block_size) * kv_dim + (size_t)g * D;
            vrow[k] = c->v_pool + off;
            sc[k] = dot(q, c->k_pool + off, D) * p->scale;
            if (sc[k] > cmax) cmax = sc[k];
        }
        if (cmax == -INFINITY) continue;
        if (cmax > m) {
            float alpha = m == -INFINITY ? 0.0f : expf(m - cmax);
            for (uint32_t d = 0; d < D; d++) acc[d] *= alpha;
            l *= alpha;
            m = cmax;
        }
        for (uint32_t k = 0; k < n; k++) {
            if (sc[k] == -INFINITY) continue;
            float w = expf(sc[k] - m);
            const float *v = vrow[k];
            l += w;
            for (uint32_t d = 0; d < D; d++) acc[d] += w * v[d];
        }
    }
    for (uint32_t d = 0; d < D; d++) out[d] = l > 0 ? (float)(acc[d] / l) : 0.0f;
}

static void att_range(void *vctx, int64_t begin, int64_t end, int thread) {
    const att_ctx *c = vctx;
    for (int64_t i = begin; i < end; i++)
        attend(c, (uint32_t)(i / c->p->n_heads), (uint32_t)(i % c->p->n_heads));
}

void lgpu_ref_attention(const lgpu_attention_params *p, const float *q, const int32_t *tok_seq,
                        const int32_t *tok_pos, const int32_t *block_table, const float *k_pool,
                        const float *v_pool, float *out, int nthreads) {
    att_ctx c = {p, q, tok_seq, tok_pos, block_table, k_pool, v_pool, out};
    lgpu_parallel_for(nthreads, (int64_t)p->T * p->n_heads, att_range, &c);
}
