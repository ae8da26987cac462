#version 450
// y[i] = a[i] + b[i]   (C twin: lgpu_ref_add)
#include "common.glsl"

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Params { uint n; } p;

void main() {
    uint i = global_index();
    if (i < p.n) y[i] = a[i] + b[i];
}
