#version 450
// Chunked cross-entropy, pass 1   (C twin: lgpu_ref_cross_entropy_stats)
// Folds one vocabulary chunk of logits z (M, C; row stride z_stride; ids
// v0 + c) into each row's running {max, sum of exp(z - max), target logit, 0};
// the last chunk also writes loss = max + log(sum) - target logit. Rows whose
// target is < 0 get zero statistics and loss 0.
// One workgroup per row (2D grid of rows). Each invocation keeps an online
// (max, sum of exp) over a strided slice of the chunk, so z is read once; a
// workgroup max and sum (fixed order) merge them, and invocation 0 merges the
// result with the row's statistics from earlier chunks.
#include "common.glsl"
#include "reduce.glsl"

layout(binding = 0) readonly buffer Z { float z[]; };
layout(binding = 1) readonly buffer T { int target[]; };
layout(binding = 2) buffer S { vec4 stats[]; };
layout(binding = 3) writeonly buffer L { float loss[]; };
layout(push_constant) uniform Params { uint M, C, z_stride, v0, first, last; } p;

void main() {
    uint row = wg_index();
    if (row >= p.M) return; // whole workgroup: uniform
    uint tid = gl_LocalInvocationID.x;
    int t = target[row];
    if (t < 0) { // whole workgroup: uniform
        if (tid == 0) {
            stats[row] = vec4(0.0);
            if (p.last != 0) loss[row] = 0.0;
        }
        return;
    }
    vec4 prev = p.first != 0 ? vec4(NEG_INF, 0.0, 0.0, 0.0) : stats[row]; // read before any write below
    uint base = row * p.z_stride;
    float m = NEG_INF, s = 0.0;
    for (uint i = tid; i < p.C; i += WG) {
        float v = z[base + i];
        if (v > m) {
            s = s * exp(m - v) + 1.0; // exp(-inf) = 0 on the first finite value
            m = v;
        } else if (v != NEG_INF) {
            s += exp(v - m);
        }
    }
    float gm = wg_max(m);
    float gs = wg_sum(m == NEG_INF ? 0.0 : s * exp(m - gm));
    if (tid == 0) {
        float mx = max(prev.x, gm);
        float sum = (prev.x == NEG_INF ? 0.0 : prev.y * exp(prev.x - mx)) + gs * exp(gm - mx);
        float tl = prev.z;
        uint ut = uint(t);
        if (ut >= p.v0 && ut - p.v0 < p.C) tl = z[base + (ut - p.v0)];
        stats[row] = vec4(mx, sum, tl, 0.0);
        if (p.last != 0) loss[row] = mx + log(sum) - tl;
    }
}
