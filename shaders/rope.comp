#version 450
// Rotary embedding in place, interleaved pairs   (C twins: lgpu_ref_rope, lgpu_ref_rope_backward)
// One invocation per (token, head, pair): a = pos[t] * inv_freq[i],
//   (x0, x1) <- (x0 cos a - x1 sin a, x0 sin a + x1 cos a)
// Specialization constant 1 (INVERSE) != 0 rotates by -a instead: the
// backward, dx <- R(a)^T dx (lgpu_op_rope_backward).
#include "common.glsl"

layout(constant_id = 1) const uint INVERSE = 0;

layout(binding = 0) buffer X { float x[]; };
layout(binding = 1) readonly buffer P { int pos[]; };
layout(binding = 2) readonly buffer F { float inv_freq[]; };
layout(push_constant) uniform Params { uint T, n_heads, head_dim, token_stride; } p;

void main() {
    uint half_dim = p.head_dim / 2;
    uint g = global_index();
    if (g >= p.T * p.n_heads * half_dim) return;
    uint i = g % half_dim, th = g / half_dim;
    uint h = th % p.n_heads, t = th / p.n_heads;
    float a = float(pos[t]) * inv_freq[i];
    // Reduce to about [-pi, pi] first (Cody-Waite: 2 pi split in three floats,
    // the first two short enough that k*C is exact for |k| < 2^16): GPU
    // sin/cos are only specified near 0, and angles reach 10^5 rad. `precise`
    // keeps compilers (llvmpipe's included) from re-associating it.
    precise float k = round(a * 0.15915494309189535);
    precise float r = ((a - k * 6.28125) - k * 0.00193023681640625) - k * 5.070363386039389e-06;
    float c = cos(r), s = INVERSE != 0 ? -sin(r) : sin(r);
    uint o = t * p.token_stride + h * p.head_dim + 2 * i;
    float x0 = x[o], x1 = x[o + 1];
    x[o] = x0 * c - x1 * s;
    x[o + 1] = x0 * s + x1 * c;
}
