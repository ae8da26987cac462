#version 450
// Embedding gather: y[t, k] = dequant(E[ids[t], k])   (C twin: lgpu_ref_get_rows)
// Built once per embedding type (DATA_A_<TYPE>, see types.glsl); one
// invocation per output element. The E binding starts at row row_offset and
// holds n_rows rows (one buffer segment); tokens whose id lies outside it are
// left alone, except by the dispatch with row_offset 0, which writes zeros
// for them (so a later segment's dispatch, ordered after it, fills in its
// own rows and ids outside the whole table stay zero).
#include "common.glsl"
#define A_BINDING 0
#include "types.glsl"

layout(binding = 1) readonly buffer I { int ids[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Params { uint T, K, n_rows, etype, row_offset; } p;

void main() {
    uint g = global_index();
    if (g >= p.T * p.K) return;
    uint t = g / p.K, k = g % p.K;
    int id = ids[t];
    // local row; a negative id or one below row_offset wraps to a huge value
    uint r = uint(id) - p.row_offset;
    if (id < 0 || uint(id) < p.row_offset || r >= p.n_rows) {
        if (p.row_offset == 0) y[g] = 0.0;
        return;
    }
    uint ib = r * (p.K / QUANT_K) + k / QUANT_K;
    y[g] = dequant1(ib, k % QUANT_K);
}
