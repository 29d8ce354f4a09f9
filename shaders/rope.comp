#version 450
// rope.comp - rotary position embedding, one invocation per output
// element. The frequencies base^(-2i/n_dims) are computed on the host in
// double and kept in the parameter block after the descriptors; with
// TFVK_F64 (devices with shaderFloat64) the angle pos * freq is reduced
// modulo 2 pi in double, so large positions keep f32 accuracy; without,
// in f32 (an angle of magnitude A is then off by about A * 6e-8).
// K1: n_dims, K2: 1 for NEOX. Descriptors: 0 a, 1 pos (I32), ST0 the result.
#include "common.glsl"
#ifdef TFVK_F64
#extension GL_ARB_gpu_shader_fp64 : require
#endif
layout(local_size_x = 256) in;

float row_value(int k, float x, float m) { return f_nan(); }
float mm_value(int product) { return f_nan(); }
#include "program.glsl"

float ld(int d, uint i0, uint i1, uint i2, uint i3) { return load_e(d_binding(d), type_of(d), d_at(d, i0, i1, i2, i3)); }

// the angle modulo 2 pi for position pos and pair ip; per pair the
// parameter block holds the frequency as a double (two words) and as f32
float angle(float pos, uint ip) {
    uint at = DESC(3) + 3u * ip;
#ifdef TFVK_F64
    double f = packDouble2x32(uvec2(P.p[at], P.p[at + 1u]));
    double th = double(pos) * f;
    double two_pi = 6.283185307179586476925286766559LF;
    th -= two_pi * floor(th / two_pi);
    return float(th);
#else
    float th = pos * uintBitsToFloat(P.p[at + 2u]);
    return th - 6.2831853071795864 * floor(th / 6.2831853071795864);
#endif
}

void main() {
    uvec4 ne = space();
    uint e = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
    if (e >= ne.x * ne.y * ne.z * ne.w) return;
    uint i0 = e % ne.x, r = e / ne.x;
    uint i1 = r % ne.y;
    r /= ne.y;
    uint i2 = r % ne.z, i3 = r / ne.z;
    uint nd = uint(K1);
    if (i0 >= nd) {
        store_e(d_binding(ST0), SY0, d_at(ST0, i0, i1, i2, i3), ld(0, i0, i1, i2, i3));
        return;
    }
    uint half_ = nd / 2u;
    uint ip = K2 != 0 ? i0 % half_ : i0 / 2u;
    bool first = K2 != 0 ? i0 < half_ : (i0 % 2u) == 0u;
    uint j0 = K2 != 0 ? ip : 2u * ip, j1 = K2 != 0 ? ip + half_ : 2u * ip + 1u;
    float pos = ld(1, i2, 0u, 0u, 0u);
    float th = angle(pos, ip);
    float c = cos(th), s = sin(th);
    float x0 = ld(0, j0, i1, i2, i3), x1 = ld(0, j1, i1, i2, i3);
    float y = first ? x0 * c - x1 * s : x0 * s + x1 * c;
    store_e(d_binding(ST0), SY0, d_at(ST0, i0, i1, i2, i3), y);
}
