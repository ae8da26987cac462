#version 450
// y[i] = silu(g[i]) * u[i] = g / (1 + exp(-g)) * u   (C twin: lgpu_ref_swiglu)
#include "common.glsl"

layout(binding = 0) readonly buffer G { float g[]; };
layout(binding = 1) readonly buffer U { float u[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Params { uint n; } p;

void main() {
    uint i = global_index();
    if (i >= p.n) return;
    float v = g[i];
    y[i] = v / (1.0 + exp(-v)) * u[i];
}
