// Workgroup-wide reductions (include after common.glsl).
//
// Two builds of each reducing shader: the default uses subgroup arithmetic
// (subgroupAdd/Max, one shared slot per subgroup); LGPU_NO_SUBGROUP builds a
// shared-memory tree for devices without it (WG must then be a power of two).
// Both are deterministic: partials are always combined in the same order, and
// every invocation combines them itself, so all invocations get the same
// bit-identical result without a broadcast.
//
// Each call contains barriers: call it from uniform control flow only. It ends
// with a barrier so red_sh may be reused by the next call at once.

#ifndef LGPU_NO_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

shared float red_sh[WG];

float wg_sum(float v) {
#ifndef LGPU_NO_SUBGROUP
    v = subgroupAdd(v);
    if (subgroupElect()) red_sh[gl_SubgroupID] = v;
    barrier();
    float s = 0.0;
    for (uint i = 0; i < gl_NumSubgroups; i++) s += red_sh[i];
    barrier();
    return s;
#else
    uint tid = gl_LocalInvocationID.x;
    red_sh[tid] = v;
    barrier();
    for (uint h = WG / 2; h > 0; h >>= 1) {
        if (tid < h) red_sh[tid] += red_sh[tid + h];
        barrier();
    }
    float s = red_sh[0];
    barrier();
    return s;
#endif
}

float wg_max(float v) {
#ifndef LGPU_NO_SUBGROUP
    v = subgroupMax(v);
    if (subgroupElect()) red_sh[gl_SubgroupID] = v;
    barrier();
    float m = NEG_INF;
    for (uint i = 0; i < gl_NumSubgroups; i++) m = max(m, red_sh[i]);
    barrier();
    return m;
#else
    uint tid = gl_LocalInvocationID.x;
    red_sh[tid] = v;
    barrier();
    for (uint h = WG / 2; h > 0; h >>= 1) {
        if (tid < h) red_sh[tid] = max(red_sh[tid], red_sh[tid + h]);
        barrier();
    }
    float m = red_sh[0];
    barrier();
    return m;
#endif
}
