#version 450
// y[m, :] = x[m, :] / sqrt(mean(x[m, :]^2) + eps) * w[:]   (C twin: lgpu_ref_rmsnorm)
// One workgroup per row (2D grid of rows); each invocation sums a strided
// slice of squares, then a workgroup reduction gives the row's mean square.
#include "common.glsl"
#include "reduce.glsl"

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer W { float w[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Params { uint M, N; float eps; } p;

void main() {
    uint row = wg_index();
    if (row >= p.M) return; // whole workgroup: uniform
    uint tid = gl_LocalInvocationID.x, base = row * p.N;
    float ss = 0.0;
    for (uint i = tid; i < p.N; i += WG) {
        float v = x[base + i];
        ss += v * v;
    }
    ss = wg_sum(ss);
    float rstd = 1.0 / sqrt(ss / float(p.N) + p.eps);
    for (uint i = tid; i < p.N; i += WG) y[base + i] = x[base + i] * rstd * w[i];
}
