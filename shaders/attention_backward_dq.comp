#version 450
// Attention backward, pass 1: D and dq   (C twin: lgpu_ref_attention_backward)
//
// Training layout (engine/params/attention_backward.h): B sequences of T rows,
// dense F32 q, o, dout, dq (rows, n_heads*head_dim) and k, v (rows,
// n_kv_heads*head_dim). One workgroup per (query row i, head h), flash-style:
//   D = dout_ih . o_ih, written to d (pass 2 reads it);
//   the keys j = first row of the sequence .. i are walked in tiles of WG:
//     1. invocation u recomputes key t0+u's P = exp(scale q.k - lse) and
//        dS = P (dout.v - D) (q and dout held in shared memory);
//     2. the invocations form R = WG / C key groups of C = head_dim/4
//        columns; group r accumulates dS_j k_j for keys r, r+R, ... of the
//        tile into its own vec4;
//   the R partials are summed in a fixed order at the end: dq = scale * sum.
// No reduction across invocations needs subgroups (every invocation computes
// D itself from shared memory), so there is one build. Everything is read as
// vec4 (head_dim is a multiple of 4, checked by the op layer).
#include "common.glsl"

layout(binding = 0) readonly buffer Q { vec4 q[]; };
layout(binding = 1) readonly buffer K { vec4 k[]; };
layout(binding = 2) readonly buffer V { vec4 v[]; };
layout(binding = 3) readonly buffer O { vec4 o[]; };
layout(binding = 4) readonly buffer DO { vec4 dout[]; };
layout(binding = 5) readonly buffer L { float lse[]; };
layout(binding = 6) writeonly buffer DD { float d[]; };
layout(binding = 7) writeonly buffer DQ { vec4 dq[]; };
layout(push_constant) uniform Params {
    uint B, T, n_heads, n_kv_heads, head_dim;
    float scale;
} p;

const uint DMAX4 = 64; // head_dim <= 256

shared vec4 qs[DMAX4], dos[DMAX4];
shared float sh_ds[WG];
shared vec4 sh_acc[WG];

void main() {
    uint item = wg_index(); // i * n_heads + h
    if (item >= p.B * p.T * p.n_heads) return; // whole workgroup: uniform
    uint i = item / p.n_heads, h = item % p.n_heads;
    uint g = h / (p.n_heads / p.n_kv_heads);
    uint D4 = p.head_dim / 4, kv4 = p.n_kv_heads * D4;
    uint tid = gl_LocalInvocationID.x;
    uint base = item * D4;

    for (uint x = tid; x < D4; x += WG) {
        qs[x] = q[base + x];
        dos[x] = dout[base + x];
    }
    barrier();
    float Di = 0.0; // every invocation the same sum, in the same order
    for (uint x = 0; x < D4; x++) Di += dot(dos[x], o[base + x]);
    if (tid == 0u) d[item] = Di;
    float li = lse[item];

    uint C = D4, R = WG / C;
    uint r = tid / C, c = tid % C;
    bool in_acc = r < R; // invocations past R*C only score keys
    vec4 acc = vec4(0.0);
    uint row0 = i - i % p.T, n_keys = i - row0 + 1u;
    uint kg = row0 * kv4 + g * D4; // key row0's slice of kv head g

    for (uint t0 = 0; t0 < n_keys; t0 += WG) {
        // 1. P and dS of key t0 + tid
        uint j = t0 + tid;
        float ds = 0.0;
        if (j < n_keys) {
            uint off = kg + j * kv4;
            float s = 0.0, dp = 0.0;
            for (uint x = 0; x < D4; x++) {
                s += dot(qs[x], k[off + x]);
                dp += dot(dos[x], v[off + x]);
            }
            ds = exp(s * p.scale - li) * (dp - Di);
        }
        sh_ds[tid] = ds;
        barrier();
        // 2. this group's keys of the tile into its columns
        if (in_acc) {
            uint nk = min(WG, n_keys - t0);
            for (uint kk = r; kk < nk; kk += R) acc += sh_ds[kk] * k[kg + (t0 + kk) * kv4 + c];
        }
        barrier(); // sh_ds is rewritten by the next tile
    }

    // merge the R partials in a fixed order
    if (in_acc) sh_acc[tid] = acc;
    barrier();
    if (tid < C) {
        vec4 a = vec4(0.0);
        for (uint rr = 0; rr < R; rr++) a += sh_acc[rr * C + c];
        dq[base + c] = a * p.scale;
    }
}
