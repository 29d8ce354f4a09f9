#version 450
// copy.comp - a plain vec4 copy, the device's shader-copy bandwidth limit
// (tfvk_measure_copy, G0 of make bench-vk). Not a kernel of any plan.
// Bindings as in common.glsl (same descriptor set layout: binding 0 the
// parameter block, 1 TFVK_INPUTS read-only buffers, 2 TFVK_OUTPUTS written
// ones), typed as uvec4 here, so common.glsl is not included:
//   p[0] chunks, p[1 + c] vec4s in chunk c; chunk c is I[c] -> O[c]
//   (a chunk stays within maxStorageBufferRange).
// Workgroups: x covers a chunk with a grid-stride loop, z = the chunk.
layout(local_size_x = 256) in;

layout(set = 0, binding = 0) readonly buffer Params { uint p[]; } P;
layout(set = 0, binding = 1) readonly restrict buffer In { uvec4 v[]; } I[16];
layout(set = 0, binding = 2) writeonly restrict buffer Out { uvec4 v[]; } O[12];

void main() {
    uint c = gl_WorkGroupID.z;          // uniform in the workgroup
    uint n = P.p[1u + c];
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < n; i += stride) O[c].v[i] = I[c].v[i];
}
