/* C twin of shaders/kv_store.comp. Tokens with a negative sequence, position
 * or block id, or a block index past max_blocks, are skipped like in the
 * shader; the op layer has already checked the slots against the pools.
 * F16 pools get each value rounded to nearest even (lgpu_f32_to_f16, which
 * shaders/kv_f16.glsl mirrors bit for bit). */
#include <string.h>

#include "quant/quant.h"
#include "ref/ref_ops.h"

void lgpu_ref_kv_store(const lgpu_kv_store_params *p, const float *k, const float *v, const int32_t *tok_seq,
                       const int32_t *tok_pos, const int32_t *block_table, void *k_pool, void *v_pool) {
    for (uint32_t t = 0; t < p->T; t++) {
        int32_t seq = tok_seq[t], pos = tok_pos[t];
        if (seq < 0 || pos < 0 || (uint32_t)pos / p->block_size >= p->max_blocks) continue;
        int32_t b = block_table[(size_t)seq * p->max_blocks + (uint32_t)pos / p->block_size];
        if (b < 0) continue;
        size_t slot = (size_t)b * p->block_size + (uint32_t)pos % p->block_size;
        const float *ks = k + (size_t)t * p->src_stride, *vs = v + (size_t)t * p->src_stride;
        if (p->kv_type == LGPU_TYPE_F16) {
            lgpu_f16 *kd = (lgpu_f16 *)k_pool + slot * p->kv_dim, *vd = (lgpu_f16 *)v_pool + slot * p->kv_dim;
            for (uint32_t e = 0; e < p->kv_dim; e++) {
                kd[e] = lgpu_f32_to_f16(ks[e]);
                vd[e] = lgpu_f32_to_f16(vs[e]);
            }
        } else {
            memcpy((float *)k_pool + slot * p->kv_dim, ks, p->kv_dim * sizeof(float));
            memcpy((float *)v_pool + slot * p->kv_dim, vs, p->kv_dim * sizeof(float));
        }
    }
}
