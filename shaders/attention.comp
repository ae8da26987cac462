#version 450
// Causal grouped-query attention over the paged KV cache, one pass with an
// online softmax   (C twin: lgpu_ref_attention)
//
// One workgroup per (token t, query head h); no score matrix is stored. The
// keys 0..pos[t] are walked in tiles of WG keys:
//   1. scores: invocation i scores key t0+i against q (held in shared memory);
//   2. the tile maximum (workgroup reduction) updates the running max m, and
//      every accumulator is rescaled by exp(m_old - m_new);
//   3. P.V: the invocations form R = WG / C key groups of C = D/4 columns;
//      group r accumulates keys r, r+R, ... of the tile into its own partial
//      state (l_r, acc_r) for the dims 4c .. 4c+3.
// At the end the R partial states, which share m, are merged in a fixed
// order: out = sum_r acc_r / sum_r l_r. So long contexts are split across the
// workgroup's invocations (flash-decoding style) and the result is
// deterministic. K, V and the output are read and written as vec4 (head_dim
// is a multiple of 4): on lavapipe every load is a per-lane loop, so fewer,
// wider loads matter; on GPUs they coalesce better. A key whose slot is invalid (bad block id, slot outside the
// pool bindings) is masked out, so a bad block table never reads out of
// bounds. KV_F16: the pools hold F16 values, read 4 at a time as a uvec2.
// Training (save_lse = 1, set by the op layer when given an lse operand):
// invocation 0 also writes lse = m + log(l) at the very end; otherwise
// binding 7 is a dummy buffer and nothing else changes.
#include "common.glsl"
#include "reduce.glsl"
#ifdef KV_F16
#include "kv_f16.glsl"
#define POOL4_T uvec2
#define LOAD4(x) unpack_f16x4(x)
#else
#define POOL4_T vec4
#define LOAD4(x) (x)
#endif

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer S { int tok_seq[]; };
layout(binding = 2) readonly buffer P { int tok_pos[]; };
layout(binding = 3) readonly buffer B { int block_table[]; };
layout(binding = 4) readonly buffer KP { POOL4_T k_pool[]; };
layout(binding = 5) readonly buffer VP { POOL4_T v_pool[]; };
layout(binding = 6) writeonly buffer O { vec4 o[]; };
layout(binding = 7) writeonly buffer LSE { float lse[]; };
layout(push_constant) uniform Params {
    uint T, n_heads, n_kv_heads, head_dim, q_stride, block_size, max_blocks;
    float scale;
    uint kv_type, save_lse;
} p;

// head_dim % 4 == 0, head_dim <= 4 * DMAX4 and head_dim / 4 <= WG: checked by the op layer
const uint DMAX4 = 64;

shared vec4 qs[DMAX4];
shared uvec2 sh_key[WG]; // per key of the tile: (bits of exp(score - m), vec4 offset of its row)
shared vec4 sh_acc[WG];
shared float sh_l[WG];

void main() {
    uint item = wg_index();
    if (item >= p.T * p.n_heads) return; // whole workgroup: uniform
    uint t = item / p.n_heads, h = item % p.n_heads;
    uint D4 = p.head_dim / 4, kv_dim4 = p.n_kv_heads * D4;
    uint g = h / (p.n_heads / p.n_kv_heads);
    uint tid = gl_LocalInvocationID.x;

    int seq = tok_seq[t], pos = tok_pos[t];
    uint n_keys = (seq < 0 || pos < 0) ? 0u : uint(pos) + 1u;
    uint n_blk_slots = (min(uint(k_pool.length()), uint(v_pool.length())) / kv_dim4) / p.block_size;
    uint bt_len = uint(block_table.length());

    uint qb = t * p.q_stride + h * p.head_dim; // q rows need not be 16-byte aligned
    for (uint i = tid; i < D4; i += WG) qs[i] = vec4(q[qb + 4 * i], q[qb + 4 * i + 1], q[qb + 4 * i + 2], q[qb + 4 * i + 3]);
    barrier();

    uint C = D4, R = WG / C;
    uint r = tid / C, c = tid % C;
    bool in_pv = r < R; // invocations past R*C only score keys
    vec4 acc = vec4(0.0);
    float m = NEG_INF, l = 0.0;

    for (uint t0 = 0; t0 < n_keys; t0 += WG) {
        // 1. score key j
        uint j = t0 + tid, off = 0;
        float s = NEG_INF;
        if (j < n_keys) {
            uint blk = j / p.block_size, bt = uint(seq) * p.max_blocks + blk;
            int b = (blk < p.max_blocks && bt < bt_len) ? block_table[bt] : -1;
            if (b >= 0 && uint(b) < n_blk_slots) {
                off = (uint(b) * p.block_size + j % p.block_size) * kv_dim4 + g * D4;
                float d = 0.0;
                for (uint i = 0; i < D4; i++) d += dot(qs[i], LOAD4(k_pool[off + i]));
                s = d * p.scale;
            }
        }
        // 2. running max and rescale
        float m_new = max(m, wg_max(s)); // -inf while no valid key was seen
        sh_key[tid] = uvec2(floatBitsToUint(s == NEG_INF ? 0.0 : exp(s - m_new)), off);
        barrier();
        float alpha = m == NEG_INF ? 0.0 : exp(m - m_new); // acc, l are 0 while m = -inf
        m = m_new;
        l *= alpha;
        acc *= alpha;
        // 3. P.V for this invocation's key group and dims. The next tile only
        // writes sh_key after the barriers inside its wg_max.
        if (in_pv) {
            uint nk = min(WG, n_keys - t0);
            for (uint k = r; k < nk; k += R) {
                uvec2 kk = sh_key[k];
                float w = uintBitsToFloat(kk.x);
                if (w == 0.0) continue;
                l += w;
                acc += w * LOAD4(v_pool[kk.y + c]);
            }
        }
    }

    // merge the R partial states (same m) in a fixed order
    if (in_pv) {
        sh_acc[tid] = acc;
        if (c == 0) sh_l[r] = l;
    }
    barrier();
    if (tid < C) {
        float L = 0.0;
        vec4 a = vec4(0.0);
        for (uint rr = 0; rr < R; rr++) {
            L += sh_l[rr];
            a += sh_acc[rr * C + c];
        }
        o[item * D4 + c] = L > 0.0 ? a / L : vec4(0.0);
        if (p.save_lse != 0u && tid == 0u) lse[item] = L > 0.0 ? m + log(L) : NEG_INF;
    }
}
