#version 450
// matmul.comp - matrix-product groups: out(m, n) = sum_k a(k, m) * b(k, n)
// for up to two products of one output shape (gate and up of a GLU), then
// the group's element-wise epilogue on the results in registers. Tiles of
// 64 x 64 outputs, 16 values of k at a time in shared memory; 256
// invocations, 4 x 4 outputs each. Workgroup z: the batch (dims 2 and 3;
// a's broadcast over b's by division). An output that comes out inf or NaN
// from finite inputs (an f32 partial sum overflowed) is summed again,
// scaled by the largest magnitudes of its two rows.
// K0: products (1 or 2); K1, K2: product 0's descriptors a and b; K3, K4:
// product 1's.
#include "common.glsl"
#define BM 64
#define BN 64
#define BK 16
layout(local_size_x = 256) in;

float mmv[2];
float row_value(int k, float x, float m) { return f_nan(); }
float mm_value(int product) { return mmv[product]; }
#include "program.glsl"

shared float As[BK][BM];
shared float Bs[BK][BN];

#include "product.glsl"

void main() {
    uvec4 ne = space();
    uint t = gl_LocalInvocationID.x;
    uint tx = t % 16u, ty = t / 16u;
    uint m0 = gl_WorkGroupID.x * BM, n0 = gl_WorkGroupID.y * BN;
    uint z = gl_WorkGroupID.z;
    uint i2 = z % ne.z, i3 = z / ne.z;
    float acc[2][16];
    [[unroll]] for (int p = 0; p < 2; p++)
        [[unroll]] for (int q = 0; q < 16; q++) acc[p][q] = 0.0;
    [[unroll]] for (int p = 0; p < 2; p++) {
        if (p >= K0) break;
        int da = p == 0 ? K1 : K3, db = p == 0 ? K2 : K4;
        Tens A = tens(da), B = tens(db);
        uint K = desc_ne(da, 0);
        uint a2 = i2 / (desc_ne(db, 2) / desc_ne(da, 2)), a3 = i3 / (desc_ne(db, 3) / desc_ne(da, 3));
        uint abase = A.off + a2 * A.nb2 + a3 * A.nb3;
        uint bbase = B.off + i2 * B.nb2 + i3 * B.nb3;
        for (uint k0 = 0u; k0 < K; k0 += BK) {
            [[unroll]] for (uint q = 0u; q < 4u; q++) {
                uint l = t + 256u * q;
                uint kk = l % BK, rr = l / BK;
                uint kg = k0 + kk;
                As[kk][rr] = (kg < K && m0 + rr < ne.x) ? load_e(A.bnd, A.type, abase + kg * A.nb0 + (m0 + rr) * A.nb1) : 0.0;
                Bs[kk][rr] = (kg < K && n0 + rr < ne.y) ? load_e(B.bnd, B.type, bbase + kg * B.nb0 + (n0 + rr) * B.nb1) : 0.0;
            }
            barrier();
            [[unroll]] for (uint kk = 0u; kk < BK; kk++) {
                float av[4], bv[4];
                [[unroll]] for (uint i = 0u; i < 4u; i++) av[i] = As[kk][tx + 16u * i];
                [[unroll]] for (uint j = 0u; j < 4u; j++) bv[j] = Bs[kk][ty + 16u * j];
                [[unroll]] for (uint j = 0u; j < 4u; j++)
                    [[unroll]] for (uint i = 0u; i < 4u; i++) acc[p][j * 4u + i] += av[i] * bv[j];
            }
            barrier();
        }
    }
    [[unroll]] for (uint j = 0u; j < 4u; j++)
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            uint m = m0 + tx + 16u * i, n = n0 + ty + 16u * j;
            if (m >= ne.x || n >= ne.y) continue;
            [[unroll]] for (int p = 0; p < 2; p++) {
                if (p >= K0) break;
                float a = acc[p][j * 4u + i];
                if (!(abs(a) < f_inf())) {
                    int da = p == 0 ? K1 : K3, db = p == 0 ? K2 : K4;
                    Tens A = tens(da), B = tens(db);
                    uint a2 = i2 / (desc_ne(db, 2) / desc_ne(da, 2)), a3 = i3 / (desc_ne(db, 3) / desc_ne(da, 3));
                    uint ea = A.off + a2 * A.nb2 + a3 * A.nb3 + m * A.nb1, eb = B.off + i2 * B.nb2 + i3 * B.nb3 + n * B.nb1;
                    a = prod_rescue(A, B, ea, eb, desc_ne(da, 0), 0u, 1u, a);
                }
                mmv[p] = a;
            }
            g_i0 = m;
            g_i1 = n;
            g_i2 = i2;
            g_i3 = i3;
            eval(MAXI);
            store_all();
        }
}
