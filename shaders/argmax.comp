#version 450
// idx[m] = the smallest n with x[m, n] maximal (NaNs are skipped; a row of
// only NaNs gives 0)   (C twin: lgpu_ref_argmax)
// One workgroup per row; each invocation scans a strided slice in increasing
// n, then the (value, index) pairs are merged: larger value wins, ties go to
// the smaller index.
#include "common.glsl"

#ifndef LGPU_NO_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer I { int idx[]; };
layout(push_constant) uniform Params { uint M, N; } p;

const uint NONE = 0xffffffffu; // "no candidate": loses every tie on index

shared float sh_v[WG];
shared uint sh_i[WG];

// (v, i) is better than (bv, bi)
bool better(float v, uint i, float bv, uint bi) {
    return v > bv || (v == bv && i < bi);
}

void main() {
    uint row = wg_index();
    if (row >= p.M) return;
    uint tid = gl_LocalInvocationID.x, base = row * p.N;
    float bv = NEG_INF;
    uint bi = NONE;
    for (uint n = tid; n < p.N; n += WG) {
        float v = x[base + n];
        if (!isnan(v) && (bi == NONE || v > bv)) {
            bv = v;
            bi = n;
        }
    }
#ifndef LGPU_NO_SUBGROUP
    float sm = subgroupMax(bv);
    uint si = subgroupMin(bv == sm ? bi : NONE);
    if (subgroupElect()) {
        sh_v[gl_SubgroupID] = sm;
        sh_i[gl_SubgroupID] = si;
    }
    barrier();
    if (tid == 0) {
        float rv = sh_v[0];
        uint ri = sh_i[0];
        for (uint s = 1; s < gl_NumSubgroups; s++)
            if (better(sh_v[s], sh_i[s], rv, ri)) {
                rv = sh_v[s];
                ri = sh_i[s];
            }
        idx[row] = ri == NONE ? 0 : int(ri);
    }
#else
    sh_v[tid] = bv;
    sh_i[tid] = bi;
    barrier();
    for (uint h = WG / 2; h > 0; h >>= 1) {
        if (tid < h && better(sh_v[tid + h], sh_i[tid + h], sh_v[tid], sh_i[tid])) {
            sh_v[tid] = sh_v[tid + h];
            sh_i[tid] = sh_i[tid + h];
        }
        barrier();
    }
    if (tid == 0) idx[row] = sh_i[0] == NONE ? 0 : int(sh_i[0]);
#endif
}
