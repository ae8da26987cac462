#version 450
// y[i] = x[i] * s   (C twin: lgpu_ref_scale)
#include "common.glsl"

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Params { uint n; float s; } p;

void main() {
    uint i = global_index();
    if (i < p.n) y[i] = x[i] * p.s;
}
