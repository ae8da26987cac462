#version 450
// Per-row LoRA update (C twin: lgpu_ref_lora; contract: engine/params/lora.h):
//   y[m, :] += s * B_a (A_a x[m, :])  for each adapter a of each listed row m.
// One workgroup per listed row. u = A x is computed in blocks of at most WG
// ranks: P = WG / rb invocations share a rank, each summing a strided slice
// of the dot product; the P partials are then added in order by one
// invocation. Then invocation i owns outputs i, i + WG, ...: a dot of B's
// row with u. Every sum has a fixed order, so reruns are bit-identical and a
// row's result does not depend on the rest of the batch.
#include "common.glsl"

#define MAX_RANK 1024

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) buffer Y { float y[]; };
layout(binding = 2) readonly buffer W { float w[]; };
layout(binding = 3) readonly buffer Tab { ivec4 tab[]; };
layout(binding = 4) readonly buffer Rows { int rows[]; };
layout(push_constant) uniform Params {
    uint n_rows, n_tokens;
    uint in_dim, out_dim;
    uint x_stride, y_stride;
    uint n_stack;
    uint n_adapters;
    uint table_stride, table_index;
    uint w_size;
} p;

shared float part[WG];
shared float u[MAX_RANK];

void main() {
    const uint e = wg_index();
    if (e >= p.n_rows) return; // uniform: the whole workgroup leaves
    const uint tid = gl_LocalInvocationID.x;
    const uint base = e * (1u + 2u * p.n_stack);
    const int mi = rows[base];
    if (mi < 0 || uint(mi) >= p.n_tokens) return;
    const uint xo = uint(mi) * p.x_stride, yo = uint(mi) * p.y_stride;
    for (uint k = 0; k < p.n_stack; k++) {
        const int a = rows[base + 1u + 2u * k];
        if (a < 0 || uint(a) >= p.n_adapters) continue;
        const float s = intBitsToFloat(rows[base + 2u + 2u * k]);
        const ivec4 t = tab[uint(a) * p.table_stride + p.table_index];
        const uint rank = uint(t.z), ao = uint(t.x), bo = uint(t.y);
        if (rank == 0u || rank > MAX_RANK) continue;
        // 64-bit-free range check: each product fits (rank <= 1024, dims < 2^21 in practice)
        if (ao > p.w_size || rank * p.in_dim > p.w_size - ao || bo > p.w_size || rank * p.out_dim > p.w_size - bo)
            continue;
        barrier(); // u and part of the previous adapter are no longer read
        for (uint j0 = 0; j0 < rank; j0 += WG) {
            const uint rb = min(WG, rank - j0), P = WG / rb;
            const uint j = tid / P, q = tid % P;
            float acc = 0.0;
            if (j < rb) {
                const uint arow = ao + (j0 + j) * p.in_dim;
                for (uint i = q; i < p.in_dim; i += P) acc += w[arow + i] * x[xo + i];
            }
            part[tid] = acc;
            barrier();
            if (tid < rb) {
                float sum = 0.0;
                for (uint r = 0; r < P; r++) sum += part[tid * P + r];
                u[j0 + tid] = sum;
            }
            barrier();
        }
        for (uint o = tid; o < p.out_dim; o += WG) {
            const uint brow = bo + o * rank;
            float acc = 0.0;
            for (uint j = 0; j < rank; j++) acc += w[brow + j] * u[j];
            y[yo + o] += s * acc;
        }
    }
}
