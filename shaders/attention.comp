#version 450
// Causal grouped-query attention over the paged KV cache, one pass with an
// online softmax   (C twin: lgpu_ref_attention)
//
// One workgroup per (token t, query head h); no score matrix is stored. The
// keys 0..pos[t] are walked in tiles of WG keys:
//   1. scores: invocation i scores key t0+i against q (held in shared memory);
//   2. the tile maximum (workgroup reduction) updates the running max m, and
//      every accumulator is rescaled by exp(m_old - m_new);
//   3. P.V: the invocations form R = WG / C key groups of C = min(D, WG)
//      columns; group r accumulates keys r, r+R, ... of the tile into its own
//      partial state (l_r, acc_r[dims]) for the dims c, c+C, ... < D.
// At the end the R partial states, which share m, are merged in a fixed
// order: out = sum_r acc_r / sum_r l_r. So long contexts are split across the
// workgroup's invocations (flash-decoding style) and the result is
// deterministic. A key whose slot is invalid (bad block id, slot outside the
// pool bindings) is masked out, so a bad block table never reads out of
// bounds.
#include "common.glsl"
#include "reduce.glsl"

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer S { int tok_seq[]; };
layout(binding = 2) readonly buffer P { int tok_pos[]; };
layout(binding = 3) readonly buffer B { int block_table[]; };
layout(binding = 4) readonly buffer KP { float k_pool[]; };
layout(binding = 5) readonly buffer VP { float v_pool[]; };
layout(binding = 6) writeonly buffer O { float o[]; };
layout(push_constant) uniform Params {
    uint T, n_heads, n_kv_heads, head_dim, q_stride, block_size, max_blocks;
    float scale;
} p;

// head_dim <= min(DMAX, NACC * WG): checked by the op layer
const uint DMAX = 256, NACC = 4;

shared float qs[DMAX];
shared float sh_p[WG];        // exp(score - m) of the tile's keys
shared uint sh_off[WG];       // element offset of each key's row in the pools
shared float sh_acc[NACC * WG];
shared float sh_l[WG];

void main() {
    uint item = wg_index();
    if (item >= p.T * p.n_heads) return; // whole workgroup: uniform
    uint t = item / p.n_heads, h = item % p.n_heads;
    uint D = p.head_dim, kv_dim = p.n_kv_heads * D;
    uint g = h / (p.n_heads / p.n_kv_heads);
    uint tid = gl_LocalInvocationID.x;

    int seq = tok_seq[t], pos = tok_pos[t];
    uint n_keys = (seq < 0 || pos < 0) ? 0u : uint(pos) + 1u;
    uint n_blk_slots = (min(uint(k_pool.length()), uint(v_pool.length())) / kv_dim) / p.block_size;
    uint bt_len = uint(block_table.length());

    for (uint d = tid; d < D; d += WG) qs[d] = q[t * p.q_stride + h * D + d];
    barrier();

    uint C = min(D, WG), R = WG / C;
    uint r = tid / C, c = tid % C;
    bool in_pv = r < R; // invocations past R*C only score keys
    float acc[NACC] = float[NACC](0.0, 0.0, 0.0, 0.0);
    float m = NEG_INF, l = 0.0;

    for (uint t0 = 0; t0 < n_keys; t0 += WG) {
        // 1. score key j
        uint j = t0 + tid, off = 0;
        float s = NEG_INF;
        if (j < n_keys) {
            uint blk = j / p.block_size, bt = uint(seq) * p.max_blocks + blk;
            int b = (blk < p.max_blocks && bt < bt_len) ? block_table[bt] : -1;
            if (b >= 0 && uint(b) < n_blk_slots) {
                off = (uint(b) * p.block_size + j % p.block_size) * kv_dim + g * D;
                float dot = 0.0;
                for (uint d = 0; d < D; d++) dot += qs[d] * k_pool[off + d];
                s = dot * p.scale;
            }
        }
        // 2. running max and rescale
        float m_new = max(m, wg_max(s)); // -inf while no valid key was seen
        sh_p[tid] = s == NEG_INF ? 0.0 : exp(s - m_new);
        sh_off[tid] = off;
        barrier();
        float alpha = m == NEG_INF ? 0.0 : exp(m - m_new); // acc, l are 0 while m = -inf
        m = m_new;
        l *= alpha;
        for (uint n = 0; n < NACC; n++) acc[n] *= alpha;
        // 3. P.V for this invocation's key group and dims. The next tile only
        // writes sh_p/sh_off after the barriers inside its wg_max.
        if (in_pv) {
            uint nk = min(WG, n_keys - t0);
            for (uint k = r; k < nk; k += R) {
                float w = sh_p[k];
                if (w == 0.0) continue;
                l += w;
                uint vo = sh_off[k];
                for (uint n = 0; n < NACC; n++) {
                    uint d = c + n * C;
                    if (d < D) acc[n] += w * v_pool[vo + d];
                }
            }
        }
    }

    // merge the R partial states (same m) in a fixed order
    if (in_pv) {
        for (uint n = 0; n < NACC; n++) sh_acc[n * WG + tid] = acc[n];
        if (c == 0) sh_l[r] = l;
    }
    barrier();
    if (tid < C) {
        float L = 0.0;
        for (uint rr = 0; rr < R; rr++) L += sh_l[rr];
        for (uint n = 0; n < NACC; n++) {
            uint d = c + n * C;
            if (d >= D) break;
            float a = 0.0;
            for (uint rr = 0; rr < R; rr++) a += sh_acc[n * WG + rr * C + c];
            o[item * D + d] = L > 0.0 ? a / L : 0.0;
        }
    }
}
