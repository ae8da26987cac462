// Shared helpers for the non-matmul shaders (add, rmsnorm, rope, softmax, kv_store,
// attention, swiglu, scale, get_rows, argmax).
//
// Every shader that includes this file has a 1D workgroup whose size is the
// specialization constant 0 (WG), and may be launched on a 2D grid of
// workgroups: the op layer splits a large count over gl_NumWorkGroups.x/.y so
// that neither exceeds maxComputeWorkGroupCount (see engine/ops/op_common.h).

layout(constant_id = 0) const uint WG = 256;
layout(local_size_x_id = 0) in;

// Flat index of this workgroup on the 2D grid. May exceed the count the op
// asked for (the grid is a rectangle), so shaders bound-check it.
uint wg_index() {
    return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
}

// Flat index of this invocation, for elementwise shaders.
uint global_index() {
    return wg_index() * WG + gl_LocalInvocationID.x;
}

#define NEG_INF uintBitsToFloat(0xff800000u)
