// common.glsl - what every tensorfuse kernel shares: the memory bindings, the
// tensor descriptors in the group's parameter block, typed loads and stores,
// the element-wise operations and the group's program held in
// specialisation constants. Included by every shader in this folder;
// tools/embed_spirv.sh compiles them into tensorfuse_vk.h.
//
// Binding 0: the group's parameter block (uints, written once at compile):
//   [0..3]  ne of the iteration space        [4..7] kernel-specific
//   [8 + 12*d ...] descriptor d: binding, first element, ne[4], nb[4] (in
//   elements of the tensor's type), column offset, unused
// Binding 1: TFVK_INPUTS read-only storage buffers (the operands), binding
// 2: TFVK_OUTPUTS written ones (the stores), each a range of one tensor's
// bytes (the runtime binds per tensor, never the whole arena). Reads and
// writes in separate arrays tell synchronisation validation which is which.

#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_spirv_intrinsics : require

// IEEE arithmetic on inf and NaN: the SignedZeroInfNanPreserve execution
// mode (SPV_KHR_float_controls; the runtime requires the device's
// shaderSignedZeroInfNanPreserveFloat32), so no driver folds x - x to 0,
// max(x, 0) for x < 0 ? 0 : x, or NaN compares away
spirv_execution_mode(extensions = ["SPV_KHR_float_controls"], capabilities = [4466], 4461, 32);

#define TFVK_INPUTS 16
#define TFVK_OUTPUTS 12
#define MAXI 12                 // instruction slots of a program

layout(set = 0, binding = 0) readonly buffer Params { uint p[]; } P;
layout(set = 0, binding = 1) readonly buffer In { uint w[]; } I[TFVK_INPUTS];
layout(set = 0, binding = 2) buffer Out { uint w[]; } O[TFVK_OUTPUTS];

// types (the runtime's TFVK_X_T_*)
#define T_F32 0
#define T_F16 1
#define T_BF16 2
#define T_I32 3

// operation codes (the runtime's TFVK_X_OP_*); -1: unused slot
#define OP_COPY 0
#define OP_ADD 1
#define OP_SUB 2
#define OP_MUL 3
#define OP_DIV 4
#define OP_SCALE 5
#define OP_CLAMP 6
#define OP_NEG 7
#define OP_ABS 8
#define OP_SQR 9
#define OP_SQRT 10
#define OP_EXP 11
#define OP_LOG 12
#define OP_SIN 13
#define OP_COS 14
#define OP_TANH 15
#define OP_SIGMOID 16
#define OP_RELU 17
#define OP_GELU 18
#define OP_GELU_ERF 19
#define OP_SILU 20
#define OP_GLU 21
#define OP_RMS_NORM 22
#define OP_NORM 23
#define OP_SOFT_MAX 24
#define OP_MUL_MAT 25

#define DESC(d) (8u + 12u * uint(d))

float f_nan() { return uintBitsToFloat(0x7FC00000u); }
float f_inf() { return uintBitsToFloat(0x7F800000u); }
// on the bits, which no float rule can fold
bool is_nan(float x) { return (floatBitsToUint(x) & 0x7FFFFFFFu) > 0x7F800000u; }

// f32 -> f16 bits, round to nearest even (as tfu_f32_to_f16 does), so every
// driver stores the same halves
uint f32_to_f16(float f) {
    uint x = floatBitsToUint(f);
    uint sign = (x >> 16) & 0x8000u;
    uint a = x & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return sign | 0x7E00u | ((a >> 13) & 0x3FFu);
    if (a >= 0x477FF000u) return sign | 0x7C00u;          // overflows to inf
    if (a >= 0x38800000u) {                                // normal half
        uint r = a + 0xFFFu + ((a >> 13) & 1u);
        return sign | ((r - 0x38000000u) >> 13);
    }
    if (a < 0x33000001u) return sign;                      // rounds to zero
    {
        uint e = a >> 23;
        uint m = (a & 0x7FFFFFu) | 0x800000u;
        uint sh = 126u - e;                                // 14..24
        uint h = m >> sh;
        uint rem = m & ((1u << sh) - 1u);
        uint half_ = 1u << (sh - 1u);
        if (rem > half_ || (rem == half_ && (h & 1u) != 0u)) h++;
        return sign | h;
    }
}

uint f32_to_bf16(float f) {
    uint x = floatBitsToUint(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (x >> 16) | 0x40u;
    return (x + 0x7FFFu + ((x >> 16) & 1u)) >> 16;
}

float f16_to_f32(uint h) {
    uint sign = (h & 0x8000u) << 16;
    uint e = (h >> 10) & 0x1Fu;
    uint m = h & 0x3FFu;
    if (e == 0x1Fu) return uintBitsToFloat(sign | 0x7F800000u | (m << 13));
    if (e == 0u) {
        // subnormal half: m * 2^-24, exact in f32
        float v = float(m) * 5.9604644775390625e-8;
        return sign != 0u ? -v : v;
    }
    return uintBitsToFloat(sign | ((e + 112u) << 23) | (m << 13));
}

// the binding slot of descriptor d: in I for operands, in O for stores
uint d_binding(int d) { return P.p[DESC(d)]; }

// element (i0..i3) of descriptor d, broadcasting (index modulo ne) and
// shifted by the descriptor's column offset
uint d_index(int d, uint i0, uint i1, uint i2, uint i3) {
    uint b = DESC(d);
    uint e = P.p[b + 1u];
    e += (i0 % P.p[b + 2u] + P.p[b + 10u]) * P.p[b + 6u];
    e += (i1 % P.p[b + 3u]) * P.p[b + 7u];
    e += (i2 % P.p[b + 4u]) * P.p[b + 8u];
    e += (i3 % P.p[b + 5u]) * P.p[b + 9u];
    return e;
}

// exact index, no broadcasting (stores, explicit reads)
uint d_at(int d, uint i0, uint i1, uint i2, uint i3) {
    uint b = DESC(d);
    return P.p[b + 1u] + (i0 + P.p[b + 10u]) * P.p[b + 6u] + i1 * P.p[b + 7u] + i2 * P.p[b + 8u] + i3 * P.p[b + 9u];
}

float load_e(uint bnd, int type, uint e) {
    if (type == T_F32) return uintBitsToFloat(I[bnd].w[e]);
    if (type == T_I32) return float(int(I[bnd].w[e]));
    uint word = I[bnd].w[e >> 1u];
    uint h = (e & 1u) != 0u ? word >> 16 : word & 0xFFFFu;
    if (type == T_F16) return f16_to_f32(h);
    return uintBitsToFloat(h << 16);
}

void store_e(uint bnd, int type, uint e, float v) {
    if (type == T_F32) {
        O[bnd].w[e] = floatBitsToUint(v);
        return;
    }
    if (type == T_I32) {
        O[bnd].w[e] = uint(int(v));
        return;
    }
    // a half of a word another invocation may write at the same time:
    // clear ours, then set it, each atomically
    uint h = type == T_F16 ? f32_to_f16(v) : f32_to_bf16(v);
    uint sh = (e & 1u) * 16u;
    atomicAnd(O[bnd].w[e >> 1u], ~(0xFFFFu << sh));
    atomicOr(O[bnd].w[e >> 1u], h << sh);
}

// --- element-wise arithmetic, IEEE on the definitions (NaN in, NaN out) ---

// a / b, exact where the device's division is not: Vulkan promises 2.5 ulp
// only for |b| in [2^-126, 2^126]; outside, both scale by a power of two
float op_div(float a, float b) {
    float ab = abs(b);
    if (ab > 8.507059e37) return ldexp(a, -4) / ldexp(b, -4);
    if (ab < 1.1754944e-38 && ab > 0.0) return ldexp(a, 24) / ldexp(b, 24);
    return a / b;
}
float op_exp(float x) { return exp(x); }
float op_log(float x) {
    if (x < 0.0) return f_nan();
    if (x == 0.0) return -f_inf();
    return log(x);
}
float op_sqrt(float x) {
    if (x < 0.0) return f_nan();
    return sqrt(x);
}
float op_tanh(float x) {
    float a = abs(x);
    if (is_nan(x)) return x;
    if (a < 0.125) {
        float x2 = x * x;
        return x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (62.0 / 2835.0)))));
    }
    // above 10, tanh is 1 in f32 (and 2 / inf is left unspecified by Vulkan)
    float t = a > 10.0 ? 1.0 : 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
    return x < 0.0 ? -t : t;
}
// 1 / (1 + e^-x), with e^-x = inf (x < -88.7) giving 0 rather than a
// division by inf, which Vulkan leaves unspecified
float op_sigmoid(float x) {
    float e = exp(-x);
    if (e == f_inf()) return 0.0;
    return op_div(1.0, 1.0 + e);
}
// gelu in forms that do not cancel for negative x (1 + tanh z and 1 + erf u
// lose every digit below x = -5), as the CPU kernels do:
// 0.5 (1 + tanh z) = sigmoid(2z), and 1 + erf u = erfc(-u)
float op_gelu(float x) { return x * op_sigmoid(2.0 * 0.7978845608028654 * (x + 0.044715 * x * x * x)); }
// erfc |u| = t exp(-u^2 + P(t)), t = 1 / (1 + |u|/2), P of degree 9 (the
// Chebyshev fit in Numerical Recipes, relative error < 1.2e-7 for every |u|);
// then 1 + erf u is that for u < 0 and 2 - that otherwise
float op_gelu_erf(float x) {
    float a = abs(x * 0.7071067811865476);
    float t = 1.0 / (1.0 + 0.5 * a);
    float p = ((((((((0.17087277 * t - 0.82215223) * t + 1.48851587) * t - 1.13520398) * t + 0.27886807) * t - 0.18628806) * t
                + 0.09678418) * t + 0.37409196) * t + 1.00002368) * t - 1.26551223;
    float q = t * exp(p - a * a);
    if (is_nan(x)) return x;
    return 0.5 * x * (x < 0.0 ? q : 2.0 - q);
}

float op_relu(float x) { return is_nan(x) ? x : (x < 0.0 ? 0.0 : x); }

// one element-wise operation; a, b: its sources; pa, pb: its float
// parameters; aux: the GLU kind, or for SCALE the power of two a subnormal
// pa was scaled by on the host (devices may flush subnormals). The result is precise: drivers may not
// fold x - x to 0 or x * 0 to 0 (wrong for inf and NaN) nor fuse into FMA.
float elt(int op, int aux, float pa, float pb, float a, float b) {
    precise float r = f_nan();
    switch (op) {
    case OP_COPY: r = a; break;
    case OP_ADD: r = a + b; break;
    case OP_SUB: r = a - b; break;
    case OP_MUL: r = a * b; break;
    case OP_DIV: r = op_div(a, b); break;
    case OP_SCALE: r = ldexp(a * pa, -aux) + pb; break;   // aux: a subnormal pa scaled by 2^aux
    case OP_CLAMP: r = is_nan(a) ? a : (a < pa ? pa : (a > pb ? pb : a)); break;
    case OP_NEG: r = -a; break;
    case OP_ABS: r = abs(a); break;
    case OP_SQR: r = a * a; break;
    case OP_SQRT: r = op_sqrt(a); break;
    case OP_EXP: r = op_exp(a); break;
    case OP_LOG: r = op_log(a); break;
    case OP_SIN: r = sin(a); break;
    case OP_COS: r = cos(a); break;
    case OP_TANH: r = op_tanh(a); break;
    case OP_SIGMOID: r = op_sigmoid(a); break;
    case OP_RELU: r = op_relu(a); break;
    case OP_GELU: r = op_gelu(a); break;
    case OP_GELU_ERF: r = op_gelu_erf(a); break;
    case OP_SILU: r = a * op_sigmoid(a); break;
    case OP_GLU:
        if (aux == 0) r = op_relu(a) * b;
        else if (aux == 1) r = op_gelu(a) * b;
        else if (aux == 2) r = op_gelu_erf(a) * b;
        else r = a * op_sigmoid(a) * b;
        break;
    }
    return r;
}
