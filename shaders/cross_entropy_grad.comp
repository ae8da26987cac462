#version 450
// Chunked cross-entropy, pass 2   (C twin: lgpu_ref_cross_entropy_grad)
// In place on one vocabulary chunk of logits z (M, C; row stride z_stride):
//   z[m, c] = (exp(z[m, c] - lse_m) - (v0 + c == target[m])) * grad_scale,
//   lse_m = max + log(sum) from the row's statistics; rows with target < 0
//   become 0.
// One invocation per element of the M x C chunk (flat index on a 2D grid, so
// no lanes idle when C is small).
#include "common.glsl"

layout(binding = 0) buffer Z { float z[]; };
layout(binding = 1) readonly buffer T { int target[]; };
layout(binding = 2) readonly buffer S { vec4 stats[]; };
layout(push_constant) uniform Params { uint M, C, z_stride, v0; float grad_scale; } p;

void main() {
    uint g = global_index();
    if (g >= p.M * p.C) return; // the op layer keeps M * C below 2^32
    uint row = g / p.C, c = g - row * p.C;
    uint o = row * p.z_stride + c;
    int t = target[row];
    if (t < 0) {
        z[o] = 0.0;
        return;
    }
    vec4 st = stats[row];
    float lse = st.x + log(st.y);
    float onehot = uint(t) == p.v0 + c ? 1.0 : 0.0;
    z[o] = (exp(z[o] - lse) - onehot) * p.grad_scale;
}
