#version 450
// eltwise.comp - every element-wise group: one invocation per element of
// the iteration space, the group's program (program.glsl) straight-line.
// Workgroups: x * y covers the elements (the runtime splits past 65535).
#include "common.glsl"
layout(local_size_x = 256) in;

float row_value(int k, float x, float m) { return f_nan(); }
float mm_value(int product) { return f_nan(); }
#include "program.glsl"

void main() {
    uvec4 ne = space();
    uint e = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
    if (e >= ne.x * ne.y * ne.z * ne.w) return;
    g_e = e;
    // the coordinates only where an operand's mode needs them (K6)
    if (K6 == 0) {
        g_i0 = e % ne.x;
        uint r = e / ne.x;
        g_i1 = r % ne.y;
        r /= ne.y;
        g_i2 = r % ne.z;
        g_i3 = r / ne.z;
    } else if (K6 == 1) {
        g_i0 = e % ne.x;
    }
    eval(MAXI);
    store_all();
}
