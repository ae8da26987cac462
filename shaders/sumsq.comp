#version 450
// out[b] = sum of x[i]^2 over block b = [b * block, min(n, (b + 1) * block))
// (C twin: lgpu_ref_sumsq). One workgroup per block (2D grid): each
// invocation sums a strided slice, a workgroup reduction (fixed order) adds
// the slices, so reruns are bit-identical.
#include "common.glsl"
#include "reduce.glsl"

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer O { float outv[]; };
layout(push_constant) uniform Params { uint n, block; } p;

void main() {
    uint b = wg_index(), nblocks = p.n / p.block + (p.n % p.block != 0 ? 1 : 0); // no overflow near 2^32
    if (b >= nblocks) return; // whole workgroup: uniform
    uint i0 = b * p.block, len = min(p.block, p.n - i0);
    float s = 0.0;
    for (uint i = gl_LocalInvocationID.x; i < len; i += WG) {
        float v = x[i0 + i];
        s += v * v;
    }
    s = wg_sum(s);
    if (gl_LocalInvocationID.x == 0) outv[b] = s;
}
