#version 450
// Attention backward, pass 2: dk and dv   (C twin: lgpu_ref_attention_backward)
//
// Runs after pass 1 (attention_backward_dq.comp), which wrote D = dout.o per
// (row, head); the exec orders the passes by the d binding. One workgroup per
// (key row j, kv head g): the (query row i, head h) pairs with i = j .. the
// sequence's last row and h in group g (h fastest) are walked in tiles of WG:
//   1. invocation u recomputes pair t0+u's P = exp(scale q.k - lse) and
//      dS = P (dout.v - D) (k_j and v_j held in shared memory);
//   2. the invocations form R = WG / C pair groups of C = head_dim/4
//      columns; group r accumulates P do and dS q for pairs r, r+R, ... of the
//      tile into its own two vec4s;
//   the R partials are summed in a fixed order at the end:
//   dk = scale * sum dS q, dv = sum P do.
// No subgroup operations, so one build. Everything is read as vec4.
#include "common.glsl"

layout(binding = 0) readonly buffer Q { vec4 q[]; };
layout(binding = 1) readonly buffer K { vec4 k[]; };
layout(binding = 2) readonly buffer V { vec4 v[]; };
layout(binding = 3) readonly buffer DO { vec4 dout[]; };
layout(binding = 4) readonly buffer L { float lse[]; };
layout(binding = 5) readonly buffer DD { float d[]; };
layout(binding = 6) writeonly buffer DK { vec4 dk[]; };
layout(binding = 7) writeonly buffer DV { vec4 dv[]; };
layout(push_constant) uniform Params {
    uint B, T, n_heads, n_kv_heads, head_dim;
    float scale;
} p;

const uint DMAX4 = 64; // head_dim <= 256

shared vec4 ks[DMAX4], vs[DMAX4];
shared vec2 sh_w[WG]; // per pair of the tile: (P, dS)
shared vec4 sh_dk[WG], sh_dv[WG];

void main() {
    uint item = wg_index(); // j * n_kv_heads + g
    if (item >= p.B * p.T * p.n_kv_heads) return; // whole workgroup: uniform
    uint j = item / p.n_kv_heads, g = item % p.n_kv_heads;
    uint rep = p.n_heads / p.n_kv_heads;
    uint D4 = p.head_dim / 4, q4 = p.n_heads * D4;
    uint tid = gl_LocalInvocationID.x;
    uint base = item * D4;

    for (uint x = tid; x < D4; x += WG) {
        ks[x] = k[base + x];
        vs[x] = v[base + x];
    }
    barrier();

    uint C = D4, R = WG / C;
    uint r = tid / C, c = tid % C;
    bool in_acc = r < R; // invocations past R*C only score pairs
    vec4 adk = vec4(0.0), adv = vec4(0.0);
    uint n_pairs = (p.T - j % p.T) * rep;
    uint h0 = j * p.n_heads + g * rep; // (row j, first head of the group)

    for (uint t0 = 0; t0 < n_pairs; t0 += WG) {
        // 1. P and dS of pair t0 + tid: row j + u / rep, head g*rep + u % rep
        uint u = t0 + tid;
        vec2 w = vec2(0.0);
        if (u < n_pairs) {
            uint qi = h0 + (u / rep) * p.n_heads + u % rep, off = qi * D4;
            float s = 0.0, dp = 0.0;
            for (uint x = 0; x < D4; x++) {
                s += dot(q[off + x], ks[x]);
                dp += dot(dout[off + x], vs[x]);
            }
            float P = exp(s * p.scale - lse[qi]);
            w = vec2(P, P * (dp - d[qi]));
        }
        sh_w[tid] = w;
        barrier();
        // 2. this group's pairs of the tile into its columns
        if (in_acc) {
            uint nu = min(WG, n_pairs - t0);
            for (uint kk = r; kk < nu; kk += R) {
                uint uu = t0 + kk, off = (h0 + (uu / rep) * p.n_heads + uu % rep) * D4 + c;
                vec2 ww = sh_w[kk];
                adv += ww.x * dout[off];
                adk += ww.y * q[off];
            }
        }
        barrier(); // sh_w is rewritten by the next tile
    }

    // merge the R partials in a fixed order
    if (in_acc) {
        sh_dk[tid] = adk;
        sh_dv[tid] = adv;
    }
    barrier();
    if (tid < C) {
        vec4 a = vec4(0.0), b = vec4(0.0);
        for (uint rr = 0; rr < R; rr++) {
            a += sh_dk[rr * C + c];
            b += sh_dv[rr * C + c];
        }
        dk[base + c] = a * p.scale;
        dv[base + c] = b;
    }
}
