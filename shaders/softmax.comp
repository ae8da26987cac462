#version 450
// y[m, :] = softmax(x[m, :] * scale)   (C twin: lgpu_ref_softmax)
// One workgroup per row. Pass 1 keeps an online (max, sum of exp) per
// invocation, merged across the workgroup; pass 2 writes the probabilities.
// x and y may be the same memory: every element is read and written by the
// same invocation, and all reads of pass 1 end before the reductions.
#include "common.glsl"
#include "reduce.glsl"

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Params { uint M, N; float scale; } p;

void main() {
    uint row = wg_index();
    if (row >= p.M) return;
    uint tid = gl_LocalInvocationID.x, base = row * p.N;
    float m = NEG_INF, s = 0.0;
    for (uint i = tid; i < p.N; i += WG) {
        float v = x[base + i] * p.scale;
        if (v > m) {
            s = s * exp(m - v) + 1.0; // exp(-inf) = 0 on the first finite value
            m = v;
        } else if (v != NEG_INF) {
            s += exp(v - m);
        }
    }
    float gm = wg_max(m);
    float gs = wg_sum(m == NEG_INF ? 0.0 : s * exp(m - gm));
    for (uint i = tid; i < p.N; i += WG) y[base + i] = exp(x[base + i] * p.scale - gm) / gs;
}
