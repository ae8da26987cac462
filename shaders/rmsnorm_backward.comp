#version 450
// RMSNorm backward, w frozen   (C twin: lgpu_ref_rmsnorm_backward)
//   g = dy * w;  r = 1 / sqrt(mean(x^2) + eps);  dx (+)= r * g - x * r^3 * sum(g * x) / N
// One workgroup per row (2D grid of rows): each invocation sums a strided
// slice of x^2 and g*x, two workgroup reductions (fixed order) give the row's
// sums, then each invocation writes its slice.
#include "common.glsl"
#include "reduce.glsl"

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer W { float w[]; };
layout(binding = 2) readonly buffer DY { float dy[]; };
layout(binding = 3) buffer DX { float dx[]; };
layout(push_constant) uniform Params { uint M, N; float eps; uint accumulate; } p;

void main() {
    uint row = wg_index();
    if (row >= p.M) return; // whole workgroup: uniform
    uint tid = gl_LocalInvocationID.x, base = row * p.N;
    float ss = 0.0, gx = 0.0;
    for (uint i = tid; i < p.N; i += WG) {
        float v = x[base + i];
        ss += v * v;
        gx += dy[base + i] * w[i] * v;
    }
    ss = wg_sum(ss);
    gx = wg_sum(gx);
    float r = 1.0 / sqrt(ss / float(p.N) + p.eps);
    float coef = r * r * r * gx / float(p.N);
    for (uint i = tid; i < p.N; i += WG) {
        float d = r * (dy[base + i] * w[i]) - x[base + i] * coef;
        dx[base + i] = p.accumulate != 0 ? dx[base + i] + d : d;
    }
}
