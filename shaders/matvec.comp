#version 450
// matvec.comp - matrix-product groups with few output columns (decoding:
// b has K5 <= 8 columns): out(m, n) = sum_k a(k, m) * b(k, n) for up to two
// products of one output shape (gate and up of a GLU), then the group's
// element-wise epilogue, as matmul.comp computes them. Where matmul.comp's
// 64 x 64 tiles would leave 63 of 64 columns idle, this kernel streams a:
// one subgroup per output row m, consecutive invocations on consecutive k
// (coalesced), an f16 or bf16 row read a 32-bit word (two values) at a
// time, b's K5 columns (small, read again from cache) summed in registers,
// then subgroupAdd. P.p[4] rows per workgroup (the host's WG / subgroup
// size; any subgroup size computes the same), workgroups over x * y,
// workgroup z the batch (dims 2 and 3; a's broadcast over b's by
// division). An output that comes out inf or NaN from finite inputs (an
// f32 partial sum overflowed) is summed again scaled by powers of two, as
// matmul.comp does (product.glsl), by the whole subgroup.
// K0: products (1 or 2); K1, K2: product 0's descriptors a and b; K3, K4:
// product 1's; K5: columns of the output (ne1, 1..NMAX).
// Needs GL_KHR_shader_subgroup_arithmetic: the runtime creates this module
// only where the device supports it in compute shaders.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "common.glsl"
#define WG 128
#define NMAX 8          // the runtime's TFVK_X_MATVEC_N
#define UNROLL 8        // words (or values) in flight per invocation
layout(local_size_x = WG) in;

float mmv[2];
float row_value(int k, float x, float m) { return f_nan(); }
float mm_value(int product) { return mmv[product]; }
#include "program.glsl"

#define PR_MAX(x) subgroupMax(x)
#define PR_ADD(x) subgroupAdd(x)
#include "product.glsl"

// the two halves of an f16 word: the device's conversion (exact) for
// normal halves; zero, subnormal, inf and NaN halves bit by bit, as
// load_e converts them (a device may flush f16 subnormals)
vec2 f16x2_to_f32(uint w) {
    vec2 r = unpackHalf2x16(w);
    uint e0 = w & 0x7C00u, e1 = w & 0x7C000000u;
    // one test for the common case (both halves normal), so the bit-by-bit
    // conversion is a branch taken rarely rather than work done always
    if (e0 == 0u || e0 == 0x7C00u || e1 == 0u || e1 == 0x7C000000u) {
        if (e0 == 0u || e0 == 0x7C00u) r.x = f16_to_f32(w & 0xFFFFu);
        if (e1 == 0u || e1 == 0x7C000000u) r.y = f16_to_f32(w >> 16);
    }
    return r;
}

vec2 half_pair(int type, uint w) {
    if (type == T_F16) return f16x2_to_f32(w);
    return vec2(uintBitsToFloat(w << 16), uintBitsToFloat(w & 0xFFFF0000u));
}

float acc[2][NMAX];

// acc[p][n] += the lane's share of sum_k a(k) b(k, n): a's row starts at
// element ea, b's column 0 at eb; lane, S: the invocation's place in its
// subgroup and the subgroup's size
void row_sums(int p, Tens A, Tens B, uint ea, uint eb, uint K, uint lane, uint S) {
    if (A.type != T_F32 && A.nb0 == 1u) {
        // words w0 .. w1-1 hold a's elements ea .. ea+K-1 (and, at the
        // ends, a neighbour's half, masked: k = 2 j - ea outside [0, K),
        // k = -1 wrapping to a large uint)
        uint w0 = ea >> 1u, w1 = (ea + K + 1u) >> 1u;
        for (uint j = w0 + lane; j < w1; j += UNROLL * S) {
            uint wd[UNROLL];
            [[unroll]] for (uint q = 0u; q < UNROLL; q++) {
                uint jq = j + q * S;
                wd[q] = jq < w1 ? I[A.bnd].w[jq] : 0u;
            }
            if (B.type == T_F32 && B.nb0 == 1u) {
                // b contiguous f32 (activations, the decoding case): read
                // directly, no type dispatch or stride per value
                [[unroll]] for (uint q = 0u; q < UNROLL; q++) {
                    uint k = 2u * (j + q * S) - ea;
                    vec2 x = half_pair(A.type, wd[q]);
                    bool lo = k < K, hi = k + 1u < K;
                    [[unroll]] for (int n = 0; n < NMAX; n++) {
                        if (n >= K5) break;
                        uint e = eb + uint(n) * B.nb1 + k;
                        if (lo) acc[p][n] += x.x * uintBitsToFloat(I[B.bnd].w[e]);
                        if (hi) acc[p][n] += x.y * uintBitsToFloat(I[B.bnd].w[e + 1u]);
                    }
                }
                continue;
            }
            [[unroll]] for (uint q = 0u; q < UNROLL; q++) {
                uint k = 2u * (j + q * S) - ea;
                vec2 x = half_pair(A.type, wd[q]);
                bool lo = k < K, hi = k + 1u < K;
                [[unroll]] for (int n = 0; n < NMAX; n++) {
                    if (n >= K5) break;
                    uint e = eb + uint(n) * B.nb1 + k * B.nb0;
                    if (lo) acc[p][n] += x.x * load_e(B.bnd, B.type, e);
                    if (hi) acc[p][n] += x.y * load_e(B.bnd, B.type, e + B.nb0);
                }
            }
        }
        return;
    }
    if (A.type == T_F32 && A.nb0 == 1u && B.type == T_F32 && B.nb0 == 1u) {
        // both contiguous f32: direct loads
        for (uint k0 = lane; k0 < K; k0 += UNROLL * S) {
            float xs[UNROLL];
            [[unroll]] for (uint q = 0u; q < UNROLL; q++) {
                uint k = k0 + q * S;
                xs[q] = k < K ? uintBitsToFloat(I[A.bnd].w[ea + k]) : 0.0;
            }
            [[unroll]] for (uint q = 0u; q < UNROLL; q++) {
                uint k = k0 + q * S;
                if (k >= K) break;
                [[unroll]] for (int n = 0; n < NMAX; n++) {
                    if (n >= K5) break;
                    acc[p][n] += xs[q] * uintBitsToFloat(I[B.bnd].w[eb + uint(n) * B.nb1 + k]);
                }
            }
        }
        return;
    }
    for (uint k0 = lane; k0 < K; k0 += UNROLL * S) {
        float xs[UNROLL];
        [[unroll]] for (uint q = 0u; q < UNROLL; q++) {
            uint k = k0 + q * S;
            xs[q] = k < K ? load_e(A.bnd, A.type, ea + k * A.nb0) : 0.0;
        }
        [[unroll]] for (uint q = 0u; q < UNROLL; q++) {
            uint k = k0 + q * S;
            if (k >= K) break;
            [[unroll]] for (int n = 0; n < NMAX; n++) {
                if (n >= K5) break;
                acc[p][n] += xs[q] * load_e(B.bnd, B.type, eb + uint(n) * B.nb1 + k * B.nb0);
            }
        }
    }
}

void main() {
    uvec4 ne = space();
    uint rows = P.p[4];
    uint block = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint lane = gl_SubgroupInvocationID, S = gl_SubgroupSize;
    uint z = gl_WorkGroupID.z;
    uint i2 = z % ne.z, i3 = z / ne.z;
    for (uint r = gl_SubgroupID; r < rows; r += gl_NumSubgroups) {
        uint m = block * rows + r;
        if (m >= ne.x) break;   // alike for the whole subgroup
        [[unroll]] for (int p = 0; p < 2; p++)
            [[unroll]] for (int n = 0; n < NMAX; n++) acc[p][n] = 0.0;
        [[unroll]] for (int p = 0; p < 2; p++) {
            if (p >= K0) break;
            int da = p == 0 ? K1 : K3, db = p == 0 ? K2 : K4;
            Tens A = tens(da), B = tens(db);
            uint K = desc_ne(da, 0);
            uint a2 = i2 / (desc_ne(db, 2) / desc_ne(da, 2)), a3 = i3 / (desc_ne(db, 3) / desc_ne(da, 3));
            uint ea = A.off + a2 * A.nb2 + a3 * A.nb3 + m * A.nb1;
            uint eb = B.off + i2 * B.nb2 + i3 * B.nb3;
            row_sums(p, A, B, ea, eb, K, lane, S);
            [[unroll]] for (int n = 0; n < NMAX; n++) {
                if (n >= K5) break;
                float s = subgroupAdd(acc[p][n]);
                // decided alike by the subgroup (a maximum is exact)
                float bad = subgroupMax(abs(s) < f_inf() ? 0.0 : 1.0);
                if (bad != 0.0) s = prod_rescue(A, B, ea, eb + uint(n) * B.nb1, K, lane, S, s);
                acc[p][n] = s;
            }
        }
        // the epilogue: invocation `lane` of the subgroup takes column lane
        for (uint n0 = 0u; n0 < uint(K5); n0 += S) {
            uint n = n0 + lane;
            if (n >= uint(K5)) continue;
            [[unroll]] for (int p = 0; p < 2; p++) {
                float x = 0.0;
                [[unroll]] for (int q = 0; q < NMAX; q++)
                    if (uint(q) == n) x = acc[p][q];
                mmv[p] = x;
            }
            g_i0 = m;
            g_i1 = n;
            g_i2 = i2;
            g_i3 = i3;
            eval(MAXI);
            store_all();
        }
    }
}
