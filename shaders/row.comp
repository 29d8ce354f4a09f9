#version 450
// row.comp - row groups: one workgroup per row of the iteration space (ne0
// elements). Each row instruction (rms_norm, norm, soft_max) gets its row
// statistics in reduction passes that re-evaluate the program before it
// (prologue values are recomputed, never stored), then one pass evaluates
// the whole program and stores. Sums whose f32 value cannot be trusted
// (overflow, underflow) are redone scaled by the row's largest magnitude.
// Built twice: with TFVK_SUBGROUP (row_sg: subgroup reductions, then one
// value per subgroup through shared memory, two barriers a reduction) for
// devices with subgroup arithmetic, and without (a shared-memory tree).
#ifdef TFVK_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common.glsl"
#define WG 256
layout(local_size_x = WG) in;

// row statistics per slot: y = (x * 2^-st[0] - st[1]) * st[2] (norms: a
// power of two scales, exactly, where a division by a huge value would
// not be exact on every device);
// soft_max: y = exp(x - st[0]) / st[1], st[2] = 1 for a row of NaN
shared float st[MAXI * 3];
shared float red0[WG];
shared float red1[WG];
shared float red2[WG];

int op_of(int k);
float pa_of(int k);
int ax_of(int k);
float row_value(int k, float x, float m) {
    int op = op_of(k);
    if (op == OP_SOFT_MAX) {
        float a = ldexp(x * pa_of(k), -ax_of(k)) + m;
        if (st[k * 3 + 2] != 0.0) return f_nan();
        return exp(a - st[k * 3]) / st[k * 3 + 1];
    }
    return (ldexp(x, -int(st[k * 3])) - st[k * 3 + 1]) * st[k * 3 + 2];
}
float mm_value(int product) { return f_nan(); }
#include "program.glsl"

const float TINY_SUM = 8.077935669463161e-28;   // 2^-90: below, squares may have underflowed

// the value slot r reduces over, at element i0 of the current row
uint g_row0;   // the flat index of the row's first element
float input_of(int r, uint i0, out float mask) {
    g_i0 = i0;
    g_e = g_row0 + i0;
    eval(r);
    mask = src_val(sb_of(r));
    return src_val(sa_of(r));
}

// (max, sum of exp) pairs: the sum of both, at the larger maximum
void soft_pair(inout float m1, inout float s1, float m2, float s2) {
    float mx = max(m1, m2);
    float t1 = s1 == 0.0 ? 0.0 : s1 * exp(m1 - mx);
    float t2 = s2 == 0.0 ? 0.0 : s2 * exp(m2 - mx);
    m1 = mx;
    s1 = t1 + t2;
}

// three sums (or maxima) over the workgroup
#ifdef TFVK_SUBGROUP
void reduce3(inout float a, inout float b, inout float c, int mode) {
    if (mode == 0) {                // sum, max, max
        a = subgroupAdd(a);
        b = subgroupMax(b);
    } else {                        // softmax (max, sum), max
        float mx = subgroupMax(a);
        b = subgroupAdd(b == 0.0 ? 0.0 : b * exp(a - mx));
        a = mx;
    }
    c = subgroupMax(c);
    if (subgroupElect()) {
        red0[gl_SubgroupID] = a;
        red1[gl_SubgroupID] = b;
        red2[gl_SubgroupID] = c;
    }
    barrier();
    a = red0[0];
    b = red1[0];
    c = red2[0];
    for (uint s = 1u; s < gl_NumSubgroups; s++) {
        if (mode == 0) {
            a += red0[s];
            b = max(b, red1[s]);
        } else {
            soft_pair(a, b, red0[s], red1[s]);
        }
        c = max(c, red2[s]);
    }
    barrier();
}
#else
void reduce3(inout float a, inout float b, inout float c, int mode) {
    uint t = gl_LocalInvocationID.x;
    red0[t] = a;
    red1[t] = b;
    red2[t] = c;
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (t < s) {
            if (mode == 0) {            // sum, max, max
                red0[t] += red0[t + s];
                red1[t] = max(red1[t], red1[t + s]);
            } else {                    // softmax (max, sum), max
                float m1 = red0[t], s1 = red1[t];
                soft_pair(m1, s1, red0[t + s], red1[t + s]);
                red0[t] = m1;
                red1[t] = s1;
            }
            red2[t] = max(red2[t], red2[t + s]);
        }
        barrier();
    }
    a = red0[0];
    b = red1[0];
    c = red2[0];
    barrier();
}
#endif

// c such that y = (x * 2^-e - mu) * c, from q = sum((x * 2^-e - mu)^2) over n
float norm_scale(float q, float nf, int e, float eps) {
    return 1.0 / sqrt(q / nf + ldexp(eps, -2 * e));
}

// pass modes: what one pass over the row sums
#define M_RMS 0        // x^2, max |x|, NaN/inf
#define M_NORM 1       // x, max |x|, NaN/inf
#define M_SQ 2         // (x * 2^-e - mu)^2
#define M_SUM 3        // x * 2^-e
#define M_SOFT 4       // online max and sum of exp
#define M_DONE 5

// The statistics of row slot r: passes over the row until its mode is
// M_DONE. One loop body for every pass keeps one copy of the program.
void reduce_slot(int r, uint n) {
    int op = op_of(r);
    float nf = float(n);
    float eps = pa_of(r);
    float scale = pa_of(r);
    int scale_exp = ax_of(r);            // a subnormal scale, scaled up by 2^scale_exp
    uint t = gl_LocalInvocationID.x;
    int mode = op == OP_SOFT_MAX ? M_SOFT : op == OP_RMS_NORM ? M_RMS : M_NORM;
    float mu = 0.0, c = 1.0, mean = 0.0, mx = 0.0;
    int e = 0;                          // x is scaled by 2^-e
    int step = 0;                       // norm: 0 mean, 1 squares, 2 scaled squares
    for (int pass = 0; pass < 5 && mode != M_DONE; pass++) {
        float a = mode == M_SOFT ? -f_inf() : 0.0, b = 0.0, bad = 0.0, mk;
        for (uint i0 = t; i0 < n; i0 += WG) {
            float x = input_of(r, i0, mk);
            if (mode == M_SOFT) {
                x = ldexp(x * scale, -scale_exp) + mk;
                if (x > a) {
                    b = b * exp(a - x) + 1.0;
                    a = x;
                } else if (!(x == -f_inf() && a == -f_inf())) {
                    b += exp(x - a);
                }
                if (is_nan(x)) bad = 1.0;
            } else if (mode == M_RMS || mode == M_NORM) {
                a += mode == M_RMS ? x * x : x;
                if (is_nan(x)) bad = 2.0;
                else if (abs(x) == f_inf()) bad = max(bad, 1.0);
                else b = max(b, abs(x));
            } else {
                float y = ldexp(x, -e) - mu;
                a += mode == M_SQ ? y * y : y;
            }
        }
        reduce3(a, b, bad, mode == M_SOFT ? 1 : 0);
        // the next pass, decided alike by every invocation
        if (mode == M_SOFT) {
            if (t == 0u) {
                st[r * 3] = a;
                st[r * 3 + 1] = b;
                st[r * 3 + 2] = (bad != 0.0 || is_nan(b) || a == f_inf() || a == -f_inf()) ? 1.0 : 0.0;
            }
            mode = M_DONE;
        } else if (mode == M_RMS || mode == M_NORM) {
            mx = b;
            if (bad == 2.0 || (bad == 1.0 && mode == M_NORM)) {
                c = f_nan();                         // NaN everywhere, as the reference
                mode = M_DONE;
            } else if (bad == 1.0) {
                c = 0.0;                             // rms: x * 0 (inf * 0 = NaN)
                mode = M_DONE;
            } else if (mode == M_RMS && a < f_inf() && !(a < TINY_SUM && mx > 0.0)) {
                c = 1.0 / sqrt(a / nf + eps);
                mode = M_DONE;
            } else if (mode == M_RMS) {
                frexp(mx, e);                        // redo scaled: |x * 2^-e| < 1
                mode = M_SQ;
                step = 2;
            } else if (abs(a) < f_inf()) {
                mean = a / nf;
                mu = mean;
                mode = M_SQ;
                step = 1;
            } else {
                frexp(mx, e);                        // the sum overflowed: sum x * 2^-e
                mode = M_SUM;
            }
        } else if (mode == M_SUM) {
            mean = ldexp(a / nf, e);
            e = 0;
            mu = mean;
            mode = M_SQ;
            step = 1;
        } else if (step == 1 && a < f_inf() && !(a < TINY_SUM && mx > 0.0)) {
            c = 1.0 / sqrt(a / nf + eps);            // norm: (x - mean) * c
            mode = M_DONE;
        } else if (step == 1) {
            frexp(mx, e);                            // norm: redo scaled
            mu = ldexp(mean, -e);
            step = 2;
        } else {
            // scaled squares q = a: c for y = (x * 2^-e - mu) * c
            if (mx * mx == 0.0 && eps > 0.0) {
                // eps dominates mean(x^2): unscaled, (x - mean) / sqrt(eps)
                c = 1.0 / sqrt(ldexp(a / nf, 2 * e) + eps);
                mu = ldexp(mu, e);
                e = 0;
            } else {
                c = norm_scale(a, nf, e, eps);
                if (!(c < f_inf())) {
                    // q = 0 and eps * 2^-2e flushed to 0 (devices without
                    // subnormals): the deviations are 0 and (x - mean) /
                    // sqrt(eps) is, unscaled
                    c = 1.0 / sqrt(ldexp(a / nf, 2 * e) + eps);
                    mu = ldexp(mu, e);
                    e = 0;
                }
            }
            mode = M_DONE;
        }
    }
    if (op != OP_SOFT_MAX && t == 0u) {
        st[r * 3] = float(e);
        st[r * 3 + 1] = mu;
        st[r * 3 + 2] = c;
    }
    barrier();
}

void main() {
    uvec4 ne = space();
    uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (row >= ne.y * ne.z * ne.w) return;
    g_row0 = row * ne.x;
    g_i1 = row % ne.y;
    g_i2 = (row / ne.y) % ne.z;
    g_i3 = row / (ne.y * ne.z);
    for (int r = 0; r < NI; r++)
        if (is_row_op(op_of(r))) reduce_slot(r, ne.x);
    for (uint i0 = gl_LocalInvocationID.x; i0 < ne.x; i0 += WG) {
        g_i0 = i0;
        g_e = g_row0 + i0;
        eval(MAXI);
        store_all();
    }
}
