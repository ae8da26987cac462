#version 450
// SwiGLU backward   (C twin: lgpu_ref_swiglu_backward)
//   s = sigmoid(g);  dg = dy * u * s * (1 + g * (1 - s));  du = dy * g * s
// One invocation per element; each reads its inputs before writing, so dg
// and du may be the memory of g and u.
#include "common.glsl"

layout(binding = 0) readonly buffer G { float g[]; };
layout(binding = 1) readonly buffer U { float u[]; };
layout(binding = 2) readonly buffer DY { float dy[]; };
layout(binding = 3) writeonly buffer DG { float dg[]; };
layout(binding = 4) writeonly buffer DU { float du[]; };
layout(push_constant) uniform Params { uint n; } p;

void main() {
    uint i = global_index();
    if (i >= p.n) return;
    float v = g[i], d = dy[i], uu = u[i];
    float s = 1.0 / (1.0 + exp(-v)); // v < -88: exp = inf, s = 0
    dg[i] = d * uu * s * (1.0 + v * (1.0 - s));
    du[i] = d * v * s;
}
