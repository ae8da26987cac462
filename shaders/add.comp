#version 450
// y[i] = a[i] + b[i]   (C twin: lgpu_ref_add)
layout(local_size_x = 256) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Params { uint n; } p;

void main() {
    // 2D grid: x * 65535-capped groups, so n may exceed maxComputeWorkGroupCount[0]*256
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i < p.n) y[i] = a[i] + b[i];
}
