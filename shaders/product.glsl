// product.glsl - what the two matrix-product kernels share (matmul.comp,
// matvec.comp): a tensor's addressing read from the parameter block once,
// and the overflow rescue. Included after common.glsl. A kernel that sums
// the rescue with a whole subgroup defines PR_MAX and PR_ADD (subgroupMax,
// subgroupAdd) before including this file; without them one invocation
// sums alone.
#ifndef PR_MAX
#define PR_MAX(x) (x)
#define PR_ADD(x) (x)
#endif

uint desc_ne(int d, int i) { return P.p[DESC(d) + 2u + uint(i)]; }

struct Tens {
    uint bnd, off, nb0, nb1, nb2, nb3;
    int type;
};

Tens tens(int d) {
    uint b = DESC(d);
    Tens t;
    t.bnd = P.p[b];
    t.off = P.p[b + 1u] + P.p[b + 10u] * P.p[b + 6u];
    t.nb0 = P.p[b + 6u];
    t.nb1 = P.p[b + 7u];
    t.nb2 = P.p[b + 8u];
    t.nb3 = P.p[b + 9u];
    t.type = type_of(d);
    return t;
}

// One output of a product whose f32 sum came out inf or NaN, summed again
// with each term scaled by powers of two to magnitude < 1 (exact; no
// division by a huge value): a's row starts at element ea, b's column at
// eb, K terms; this invocation takes k = lane, lane + S, ... (lane 0, S 1
// alone). Returns acc where an input is inf or NaN (the inputs make it
// so). With PR_MAX/PR_ADD, call in subgroup-uniform control flow.
float prod_rescue(Tens A, Tens B, uint ea, uint eb, uint K, uint lane, uint S, float acc) {
    float ma = 0.0, mb = 0.0, bad = 0.0;
    int xa, xb;
    for (uint k = lane; k < K; k += S) {
        float x = load_e(A.bnd, A.type, ea + k * A.nb0), y = load_e(B.bnd, B.type, eb + k * B.nb0);
        if (!(abs(x) < f_inf()) || !(abs(y) < f_inf())) bad = 1.0;
        else {
            ma = max(ma, abs(x));
            mb = max(mb, abs(y));
        }
    }
    bad = PR_MAX(bad);
    ma = PR_MAX(ma);
    mb = PR_MAX(mb);
    if (bad != 0.0) return acc;
    if (ma == 0.0 || mb == 0.0) return 0.0;
    frexp(ma, xa);
    frexp(mb, xb);
    float s = 0.0;
    for (uint k = lane; k < K; k += S)
        s += ldexp(load_e(A.bnd, A.type, ea + k * A.nb0), -xa) * ldexp(load_e(B.bnd, B.type, eb + k * B.nb0), -xb);
    s = PR_ADD(s);
    return ldexp(s, xa + xb);
}
