#version 450
// Dropout   (C twin: lgpu_ref_dropout; contract in engine/params/dropout.h)
//   v = bits(i) >= threshold ? x[i] * scale : 0;   y[i] = accumulate ? y[i] + v : v
// bits(i) = word i % 4 of Philox4x32-10 of the counter (i / 4, 0, 0, 0) under
// the key (seed_lo, seed_hi): integer arithmetic only, so the mask is the
// same on every device. One invocation per group of 4 elements (one Philox
// call); each reads x[i] before writing y[i], so y may be x.
#include "common.glsl"

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) buffer Y { float y[]; };
layout(push_constant) uniform Params {
    uint n;
    uint threshold;
    float scale;
    uint seed_lo, seed_hi;
    uint accumulate;
} p;

// Random123's philox4x32_R(10, ctr, key): round, then the key bumped by the
// Weyl steps before each later round.
uvec4 philox4x32_10(uvec4 c, uvec2 k) {
    for (int r = 0; r < 10; r++) {
        if (r > 0) k += uvec2(0x9E3779B9u, 0xBB67AE85u);
        uint hi0, lo0, hi1, lo1;
        umulExtended(0xD2511F53u, c.x, hi0, lo0);
        umulExtended(0xCD9E8D57u, c.z, hi1, lo1);
        c = uvec4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

void main() {
    uint g = global_index();
    // groups of 4: ceil(n / 4) without overflowing n + 3
    if (g >= (p.n >> 2) + ((p.n & 3u) != 0u ? 1u : 0u)) return;
    uvec4 bits = philox4x32_10(uvec4(g, 0u, 0u, 0u), uvec2(p.seed_lo, p.seed_hi));
    for (uint k = 0u; k < 4u; k++) {
        uint i = g * 4u + k;
        if (i >= p.n) break;
        // precise: no fused multiply-add, the twin's two roundings
        precise float v = bits[k] >= p.threshold ? x[i] * p.scale : 0.0;
        if (p.accumulate != 0u) {
            precise float s = y[i] + v;
            y[i] = s;
        } else {
            y[i] = v;
        }
    }
}
