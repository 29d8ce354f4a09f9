#version 450
// other.comp - the ops with their own kernel, as the reference executor
// computes them. K0 picks the op: 0 get_rows, 1 concat (K1: the dim), 5
// set_rows, one invocation per output element (set_rows: per element of
// the rows written); 2 sum_rows, 3 mean, 4 argmax, one workgroup per row.
// Descriptors: 0 a, 1 b (get_rows, set_rows: the indices; concat: the
// second tensor), ST0 the result (type SY0; set_rows: dst's bytes).
#include "common.glsl"
#define WG 256
layout(local_size_x = WG) in;

float row_value(int k, float x, float m) { return f_nan(); }
float mm_value(int product) { return f_nan(); }
#include "program.glsl"

shared float rv[WG];
shared float rx[WG];
shared uint ri[WG];
shared uint rn[WG];

uint dne(int d, int i) { return P.p[DESC(d) + 2u + uint(i)]; }
float ld(int d, uint i0, uint i1, uint i2, uint i3) { return load_e(d_binding(d), type_of(d), d_at(d, i0, i1, i2, i3)); }
void st_out(uint i0, uint i1, uint i2, uint i3, float x) { store_e(d_binding(ST0), SY0, d_at(ST0, i0, i1, i2, i3), x); }

void elementwise_op(uvec4 ne) {
    uint e = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * WG + gl_LocalInvocationID.x;
    if (e >= ne.x * ne.y * ne.z * ne.w) return;
    uint i0 = e % ne.x, r = e / ne.x;
    uint i1 = r % ne.y;
    r /= ne.y;
    uint i2 = r % ne.z, i3 = r / ne.z;
    if (K0 == 5) {
        // row i1 of a goes to row idx[i1, i2 % idx.ne1, i3 % idx.ne2] of the result
        int row = int(ld(1, i1, i2 % dne(1, 1), i3 % dne(1, 2), 0u));
        int rows = int(P.p[DESC(ST0) + 3u]);
        row = row < 0 ? 0 : (row >= rows ? rows - 1 : row);
        st_out(i0, uint(row), i2, i3, ld(0, i0, i1, i2, i3));
        return;
    }
    if (K0 == 0) {
        // index element (i1, i2, i3) picks a row of a; computed indices are clamped
        float fi = ld(1, i1, i2, i3, 0u);
        int row = is_nan(fi) ? 0 : int(clamp(fi, -1.0, 2147483520.0));
        if (row < 0) row = 0;
        if (uint(row) >= dne(0, 1)) row = int(dne(0, 1)) - 1;
        st_out(i0, i1, i2, i3, ld(0, i0, uint(row), 0u, 0u));
        return;
    }
    uvec4 ix = uvec4(i0, i1, i2, i3);
    uint na = dne(0, K1);
    if (ix[K1] < na) {
        st_out(i0, i1, i2, i3, ld(0, ix.x, ix.y, ix.z, ix.w));
    } else {
        ix[K1] -= na;
        st_out(i0, i1, i2, i3, ld(1, ix.x, ix.y, ix.z, ix.w));
    }
}

void row_op(uvec4 ne) {
    uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (row >= ne.y * ne.z * ne.w) return;
    uint i1 = row % ne.y, i2 = (row / ne.y) % ne.z, i3 = row / (ne.y * ne.z);
    uint n = dne(0, 0), t = gl_LocalInvocationID.x;
    float s = 0.0, mx = 0.0, best = -f_inf();
    uint bi = 0xFFFFFFFFu, first_nan = 0xFFFFFFFFu;
    bool finite = true;
    for (uint i0 = t; i0 < n; i0 += WG) {
        float x = ld(0, i0, i1, i2, i3);
        s += x;
        if (is_nan(x)) {
            first_nan = min(first_nan, i0);
            finite = false;
        } else {
            if (x > best || bi == 0xFFFFFFFFu) {
                if (x > best || bi == 0xFFFFFFFFu) { best = x; bi = i0; }
            }
            if (abs(x) == f_inf()) finite = false;
            else mx = max(mx, abs(x));
        }
    }
    rv[t] = s;
    rx[t] = K0 == 4 ? best : mx;
    ri[t] = bi;
    rn[t] = first_nan | (finite ? 0u : 0x80000000u);
    barrier();
    for (uint h = WG / 2; h > 0; h >>= 1) {
        if (t < h) {
            rv[t] += rv[t + h];
            if (K0 == 4) {
                // the larger value; the smaller index on ties (an index of
                // 0xFFFFFFFF: nothing seen yet)
                bool take = ri[t + h] != 0xFFFFFFFFu &&
                            (ri[t] == 0xFFFFFFFFu || rx[t + h] > rx[t] || (rx[t + h] == rx[t] && ri[t + h] < ri[t]));
                if (take) {
                    rx[t] = rx[t + h];
                    ri[t] = ri[t + h];
                }
            } else {
                rx[t] = max(rx[t], rx[t + h]);
            }
            uint fa = rn[t] & 0x7FFFFFFFu, fb = rn[t + h] & 0x7FFFFFFFu;
            rn[t] = min(fa, fb) | ((rn[t] | rn[t + h]) & 0x80000000u);
        }
        barrier();
    }
    if (t != 0u) return;
    uint fnan = rn[0] & 0x7FFFFFFFu;
    if (K0 == 4) {
        // the first NaN, else the first largest (a row of -inf gives 0)
        uint idx = fnan != 0x7FFFFFFFu ? fnan : (ri[0] == 0xFFFFFFFFu ? 0u : ri[0]);
        if (fnan == 0x7FFFFFFFu && rx[0] == -f_inf()) idx = ri[0] == 0xFFFFFFFFu ? 0u : ri[0];
        st_out(0u, i1, i2, i3, float(idx));
        return;
    }
    float sum = rv[0];
    if (!(abs(sum) < f_inf()) && (rn[0] & 0x80000000u) == 0u && rx[0] > 0.0) {
        // f32 overflowed on finite values: sum x * 2^-e (|x * 2^-e| < 1), then scale back
        float q = 0.0;
        int e;
        frexp(rx[0], e);
        for (uint i0 = 0u; i0 < n; i0++) q += ldexp(ld(0, i0, i1, i2, i3), -e);
        sum = K0 == 3 ? ldexp(q / float(n), e) : ldexp(q, e);
        st_out(0u, i1, i2, i3, sum);
        return;
    }
    st_out(0u, i1, i2, i3, K0 == 3 ? sum / float(n) : sum);
}

void main() {
    uvec4 ne = space();
    if (K0 <= 1 || K0 == 5) elementwise_op(ne);
    else row_op(ne);
}
