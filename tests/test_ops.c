/* test_ops.c - every operation of tensorfuse against a plain double-precision
   reference computed here, independent of the library.

   Every case builds a small graph, then runs it three ways:
     ref    tfu_graph_compute_ref (run once, poison the output, run again)
     fused  tfu_plan_compile with default options
     split  tfu_plan_compile with no_fusion = 1 and n_threads = 2
   and compares each against the double reference with tt_max_err. Outputs are
   poisoned (NaN bytes) before the compared run, so an unwritten element fails.

   Inputs come in several layouts: a plain leaf, a transposed view, a permuted
   view, a view with row padding and an offset, and a reshape of a leaf. The
   reference reads a logical element straight from the leaf with its own index
   arithmetic (tfu_get_f32 on the leaf), so it does not trust the library's view
   strides. F16 and BF16 leaves are read back after rounding, so the reference
   sees what the library sees and tolerances stay tight.

   Besides one op per case: saturating inputs of the transcendental ops
   (overflow must give inf, as the reference executor does), softmax also
   checked with a relative error, and chains of ops that the planner fuses
   (norm epilogues, matmul epilogues, row after row, views of computed values,
   copies read back inside the graph, computed indices).

   Every failure prints "[seed N] op shapes [how]: max err E > tol T"; the
   run is deterministic for a given --seed. TFU_NO_SIMD=1 in the environment
   runs the same cases on the scalar kernels (make test does both).
   Usage: test_ops [--seed S] [--n CASES_PER_OP] [--verbose 1] */
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include "tfu_test.h"

#define T_PI 3.14159265358979323846
#define CTX_BYTES ((size_t)160 << 20)

static tfu_context *ctx;
static char desc[640];
static uint64_t seed_base = 1;
static int n_cases = 32;
static uint64_t cur_seed;

/* ---- inputs -------------------------------------------------------------- */

enum { IN_PLAIN, IN_TRANS, IN_PERM, IN_PAD, IN_RESHAPE, IN_KINDS };
static const char *kind_name[IN_KINDS] = { "plain", "trans", "perm", "pad", "reshape" };

typedef struct tin {
    tfu_tensor *leaf, *t;   /* the leaf holding data, the tensor the op sees */
    int kind, ax[4];
    int64_t off0, ne[4];    /* pad: element offset inside the row; logical shape */
} tin;

static tfu_tensor *new4(tfu_type ty, const int64_t ne[4]) {
    return tfu_new_tensor_4d(ctx, ty, ne[0], ne[1], ne[2], ne[3]);
}

static void rand_perm(int ax[4]) {
    int i;
    for (i = 0; i < 4; i++) ax[i] = i;
    for (i = 3; i > 0; i--) { int j = tt_int(0, i), t = ax[i]; ax[i] = ax[j]; ax[j] = t; }
}

/* a tensor of logical shape ne, type ty, in layout kind; filled in [lo,hi] */
static int mk_in(tin *x, tfu_type ty, const int64_t ne[4], int kind, float lo, float hi) {
    int64_t l[4];
    int i;
    memset(x, 0, sizeof *x);
    x->kind = kind;
    for (i = 0; i < 4; i++) x->ne[i] = ne[i];
    switch (kind) {
    case IN_PLAIN:
        x->leaf = new4(ty, ne); x->t = x->leaf; break;
    case IN_TRANS:
        l[0] = ne[1]; l[1] = ne[0]; l[2] = ne[2]; l[3] = ne[3];
        x->leaf = new4(ty, l); x->t = tfu_transpose(ctx, x->leaf); break;
    case IN_PERM:
        rand_perm(x->ax);
        for (i = 0; i < 4; i++) l[i] = ne[x->ax[i]];   /* result ne[ax[i]] = leaf ne[i] */
        x->leaf = new4(ty, l);
        x->t = tfu_permute(ctx, x->leaf, x->ax[0], x->ax[1], x->ax[2], x->ax[3]); break;
    case IN_PAD: {
        int64_t pad = tt_int(1, 4);
        x->off0 = tt_int(0, (int)pad);
        for (i = 0; i < 4; i++) l[i] = ne[i];
        l[0] += pad;
        x->leaf = new4(ty, l);
        /* tfu_view takes nb[1..n_dims-1] */
        if (x->leaf) x->t = tfu_view(ctx, x->leaf, 4, ne, &x->leaf->nb[1], (size_t)x->off0 * tfu_type_size(ty));
        break; }
    case IN_RESHAPE:
        x->leaf = tfu_new_tensor_2d(ctx, ty, ne[0] * ne[1], ne[2] * ne[3]);
        x->t = tfu_reshape(ctx, x->leaf, 4, ne); break;
    }
    if (x->leaf) tt_fill(x->leaf, lo, hi);
    return x->leaf && x->t;
}

/* logical element j of x, read from the leaf */
static double inv(const tin *x, int64_t j0, int64_t j1, int64_t j2, int64_t j3) {
    int64_t j[4], s[4], L;
    int i;
    j[0] = j0; j[1] = j1; j[2] = j2; j[3] = j3;
    switch (x->kind) {
    case IN_TRANS: return tfu_get_f32(x->leaf, j1, j0, j2, j3);
    case IN_PERM:
        for (i = 0; i < 4; i++) s[i] = j[x->ax[i]];
        return tfu_get_f32(x->leaf, s[0], s[1], s[2], s[3]);
    case IN_PAD: return tfu_get_f32(x->leaf, j0 + x->off0, j1, j2, j3);
    case IN_RESHAPE:
        L = j0 + x->ne[0] * (j1 + x->ne[1] * (j2 + x->ne[2] * j3));
        return tfu_get_f32(x->leaf, L % (x->ne[0] * x->ne[1]), L / (x->ne[0] * x->ne[1]), 0, 0);
    default: return tfu_get_f32(x->leaf, j0, j1, j2, j3);
    }
}

static const char *tyn(tfu_type t) {
    return t == TFU_F32 ? "f32" : t == TFU_F16 ? "f16" : t == TFU_BF16 ? "bf16" : "i32";
}

/* appends "f16[7,3,1,1]/trans" to desc */
static void dcat_in(const char *label, const tin *x) {
    size_t n = strlen(desc);
    snprintf(desc + n, sizeof desc - n, " %s=%s[%lld,%lld,%lld,%lld]/%s", label, tyn(x->leaf->type),
             (long long)x->ne[0], (long long)x->ne[1], (long long)x->ne[2], (long long)x->ne[3],
             kind_name[x->kind]);
}
static void dcat(const char *fmt_s, double v) {
    size_t n = strlen(desc);
    snprintf(desc + n, sizeof desc - n, " %s=%g", fmt_s, v);
}
static void dstart(const char *op) { snprintf(desc, sizeof desc, "[seed %llu] %s", (unsigned long long)cur_seed, op); }

/* random types and layouts */
static tfu_type rand_ftype(void) { int r = tt_int(0, 5); return r < 3 ? TFU_F32 : r < 5 ? TFU_F16 : TFU_BF16; }
static int rand_kind(void) { return tt_int(0, IN_KINDS - 1); }

static const int64_t SZ[] = { 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 64, 65, 127, 257 };
static const int64_t BIG[] = { 1025, 1031, 1100, 2053, 4099 };
#define NSZ ((int)(sizeof SZ / sizeof SZ[0]))

static int64_t rdim(int upto) { return SZ[tt_int(0, upto < NSZ - 1 ? upto : NSZ - 1)]; }

/* random 4-d shape with at most max_el elements; sometimes a long ne0 */
static void rand_shape(int64_t ne[4], int64_t max_el, int allow_big) {
    int i;
    ne[0] = (allow_big && tt_int(0, 3) == 0) ? BIG[tt_int(0, 4)] : rdim(NSZ - 1);
    for (i = 1; i < 4; i++) ne[i] = tt_int(0, 2) == 0 ? 1 : rdim(i == 1 ? 12 : 6);
    while (ne[0] * ne[1] * ne[2] * ne[3] > max_el) {
        for (i = 3; i >= 1 && ne[i] == 1; i--) {}
        if (i == 0) break;
        ne[i] = (ne[i] + 1) / 2;
    }
}

static int64_t nel4(const int64_t ne[4]) { return ne[0] * ne[1] * ne[2] * ne[3]; }
static double *refbuf(const int64_t ne[4]) { return (double *)calloc((size_t)nel4(ne), sizeof(double)); }
#define IDX(ne, i0, i1, i2, i3) ((i0) + (ne)[0] * ((i1) + (ne)[1] * ((i2) + (ne)[2] * (i3))))
#define FOR4(ne) for (i3 = 0; i3 < (ne)[3]; i3++) for (i2 = 0; i2 < (ne)[2]; i2++) \
                 for (i1 = 0; i1 < (ne)[1]; i1++) for (i0 = 0; i0 < (ne)[0]; i0++)

/* ---- running ------------------------------------------------------------- */

/* checks the result's shape and type (and contiguity when asked) */
static int check_meta(const tfu_tensor *out, const int64_t ne[4], int type, int want_contig) {
    int ok;
    TT_CHECK(out != NULL, "%s: builder returned NULL (%s)", desc, tfu_last_error_msg(ctx));
    if (!out) return 0;
    ok = out->ne[0] == ne[0] && out->ne[1] == ne[1] && out->ne[2] == ne[2] && out->ne[3] == ne[3];
    TT_CHECK(ok, "%s: result shape [%lld,%lld,%lld,%lld], want [%lld,%lld,%lld,%lld]", desc,
             (long long)out->ne[0], (long long)out->ne[1], (long long)out->ne[2], (long long)out->ne[3],
             (long long)ne[0], (long long)ne[1], (long long)ne[2], (long long)ne[3]);
    if (type >= 0) TT_CHECK((int)out->type == type, "%s: result type %s, want %s", desc, tyn(out->type), tyn((tfu_type)type));
    if (want_contig) TT_CHECK(tfu_is_contiguous(out), "%s: result not contiguous", desc);
    return ok && (type < 0 || (int)out->type == type);
}

static void report(const char *how, double err, double tol) {
    TT_CHECK(err <= tol, "%s [%s]: max err %.3g > tol %.3g", desc, how, err, tol);
    if (tt_verbose && err <= tol) printf("ok %s [%s] err %.3g\n", desc, how, err);
}

/* relative error, for outputs whose scale is far below 1 (softmax rows of
   thousands of probabilities): |v - r| / |r|, and v must be 0 where r is */
static double max_rel_err(const tfu_tensor *t, const double *ref) {
    double worst = 0;
    int64_t i0, i1, i2, i3, k = 0;
    FOR4(t->ne) {
        double v = tfu_get_f32(t, i0, i1, i2, i3), r = ref[k++], d;
        if (v != v) return INFINITY;
        d = r == 0 ? (v == 0 ? 0 : INFINITY) : fabs(v - r) / fabs(r);
        if (d > worst) worst = d;
    }
    return worst;
}

static int rel_mode;   /* run3 compares with max_rel_err instead of tt_max_err */
static double out_err(const tfu_tensor *t, const double *ref) { return rel_mode ? max_rel_err(t, ref) : tt_max_err(t, ref); }

/* user memory the graph writes besides the output (cpy destinations read
   back inside the graph): poisoned before every run along with the output */
static tfu_tensor *extra_poison[4];
static int n_extra_poison;
static void poison_out(tfu_tensor *out) {
    int i;
    tt_poison(out->data, tfu_nbytes(out));
    for (i = 0; i < n_extra_poison; i++) tt_poison(extra_poison[i]->data, tfu_nbytes(extra_poison[i]));
}

/* runs out's graph three ways; each compared to ref (contiguous, out's shape) */
static void run3(tfu_tensor *out, const double *ref, double tol) {
    tfu_graph *g;
    tfu_result r;
    int pass;
    g = tfu_graph_build(ctx, out);
    TT_CHECK(g != NULL, "%s: graph_build failed (%s)", desc, tfu_last_error_msg(ctx));
    if (!g) return;

    /* 1. reference executor */
    r = tfu_graph_compute_ref(g);
    TT_CHECK(r == TFU_OK && out->data, "%s [ref]: compute_ref -> %s", desc, tfu_result_str(r));
    if (r == TFU_OK && out->data) {
        poison_out(out);
        r = tfu_graph_compute_ref(g);
        TT_CHECK(r == TFU_OK, "%s [ref]: second compute_ref -> %s", desc, tfu_result_str(r));
        report("ref", out_err(out, ref), tol);
    }

    /* 2. fused plan, 3. unfused plan on two threads */
    for (pass = 0; pass < 2; pass++) {
        const char *how = pass ? "plan-unfused-2t" : "plan-fused";
        tfu_plan_options o = tfu_plan_default_options();
        tfu_plan *p;
        if (pass) { o.no_fusion = 1; o.n_threads = 2; }
        p = tfu_plan_compile(g, &o);
        TT_CHECK(p != NULL, "%s [%s]: compile failed (%s)", desc, how, tfu_last_error_msg(ctx));
        if (!p) continue;
        TT_CHECK(out->data != NULL, "%s [%s]: output has no data after compile", desc, how);
        if (out->data) {
            void *d0 = out->data;
            poison_out(out);
            r = tfu_plan_run(p);
            TT_CHECK(r == TFU_OK, "%s [%s]: run -> %s", desc, how, tfu_result_str(r));
            /* the run must write where compile said, else the poison proved nothing */
            TT_CHECK(out->data == d0, "%s [%s]: output moved from %p to %p during the run", desc, how, d0, out->data);
            report(how, out_err(out, ref), tol);
        }
        tfu_plan_free(p);
    }
}

static void begin_case(uint64_t s) {
    cur_seed = s;
    tt_seed(s);
    tfu_reset(ctx);
    tfu_clear_error(ctx);
    n_extra_poison = 0;
}

/* ---- rounding to storage types (for cpy) ---------------------------------- */

static double round_f16(double v) {
    int e;
    double q;
    if (v == 0) return v;
    frexp(v, &e);                 /* v = m * 2^e, 0.5 <= |m| < 1: exponent e-1 */
    e -= 1;
    if (e < -14) e = -14;          /* subnormal quantum 2^-24 */
    q = ldexp(1.0, e - 10);
    return rint(v / q) * q;
}
static double round_bf16(double v) {
    int e;
    double q;
    if (v == 0) return v;
    frexp(v, &e);
    e -= 1;
    if (e < -126) e = -126;
    q = ldexp(1.0, e - 7);
    return rint(v / q) * q;
}
static double round_to(tfu_type t, double v) {
    return t == TFU_F16 ? round_f16(v) : t == TFU_BF16 ? round_bf16(v) : (double)(float)v;
}

/* ---- element-wise: unary --------------------------------------------------- */

static double r_neg(double x) { return -x; }
static double r_abs(double x) { return fabs(x); }
static double r_sqr(double x) { return x * x; }
static double r_sqrt(double x) { return sqrt(x); }
static double r_exp(double x) { return exp(x); }
static double r_log(double x) { return log(x); }
static double r_sin(double x) { return sin(x); }
static double r_cos(double x) { return cos(x); }
static double r_tanh(double x) { return tanh(x); }
static double r_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double r_relu(double x) { return x > 0 ? x : 0; }
static double r_gelu(double x) { return 0.5 * x * (1.0 + tanh(sqrt(2.0 / T_PI) * (x + 0.044715 * x * x * x))); }
static double r_gelu_erf(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
static double r_silu(double x) { return x / (1.0 + exp(-x)); }

typedef struct unop {
    const char *name;
    tfu_op op;
    tfu_tensor *(*fn)(tfu_context *, tfu_tensor *);
    double (*ref)(double);
    float lo, hi;
    double tol;
} unop;

static const unop UNOPS[] = {
    { "neg",      TFU_OP_NEG,      tfu_neg,      r_neg,      -3, 3,    1e-6 },
    { "abs",      TFU_OP_ABS,      tfu_abs,      r_abs,      -3, 3,    1e-6 },
    { "sqr",      TFU_OP_SQR,      tfu_sqr,      r_sqr,      -3, 3,    1e-5 },
    { "sqrt",     TFU_OP_SQRT,     tfu_sqrt,     r_sqrt,     0.001f, 50, 1e-5 },
    { "exp",      TFU_OP_EXP,      tfu_exp,      r_exp,      -6, 6,    1e-4 },
    { "log",      TFU_OP_LOG,      tfu_log,      r_log,      0.001f, 100, 1e-4 },
    { "sin",      TFU_OP_SIN,      tfu_sin,      r_sin,      -12, 12,  1e-4 },
    { "cos",      TFU_OP_COS,      tfu_cos,      r_cos,      -12, 12,  1e-4 },
    { "tanh",     TFU_OP_TANH,     tfu_tanh,     r_tanh,     -6, 6,    1e-4 },
    { "sigmoid",  TFU_OP_SIGMOID,  tfu_sigmoid,  r_sigmoid,  -12, 12,  1e-4 },
    { "relu",     TFU_OP_RELU,     tfu_relu,     r_relu,     -3, 3,    1e-6 },
    { "gelu",     TFU_OP_GELU,     tfu_gelu,     r_gelu,     -6, 6,    1e-4 },
    { "gelu_erf", TFU_OP_GELU_ERF, tfu_gelu_erf, r_gelu_erf, -6, 6,    1e-4 },
    { "silu",     TFU_OP_SILU,     tfu_silu,     r_silu,     -12, 12,  1e-4 },
};
#define N_UNOPS ((int)(sizeof UNOPS / sizeof UNOPS[0]))

static void test_unary(void) {
    int u, c;
    for (u = 0; u < N_UNOPS; u++) {
        const unop *U = &UNOPS[u];
        for (c = 0; c < n_cases; c++) {
            int64_t ne[4], i0, i1, i2, i3;
            tin a;
            tfu_tensor *out;
            double *ref;
            int via_unary;
            begin_case(seed_base * 1000003u + 100u * (uint64_t)u + (uint64_t)c);
            rand_shape(ne, 40000, 1);
            if (!mk_in(&a, rand_ftype(), ne, c == 0 ? IN_PLAIN : rand_kind(), U->lo, U->hi)) {
                TT_CHECK(0, "%s: input build failed", U->name); continue;
            }
            via_unary = (c % 3) == 2;
            dstart(U->name);
            if (via_unary) { size_t n = strlen(desc); snprintf(desc + n, sizeof desc - n, " (tfu_unary)"); }
            dcat_in("a", &a);
            out = via_unary ? tfu_unary(ctx, a.t, U->op) : U->fn(ctx, a.t);
            if (!check_meta(out, ne, TFU_F32, 1)) continue;
            TT_CHECK(out->op == U->op, "%s: op %s", desc, tfu_op_name(out->op));
            ref = refbuf(ne);
            FOR4(ne) ref[IDX(ne, i0, i1, i2, i3)] = U->ref(inv(&a, i0, i1, i2, i3));
            run3(out, ref, U->tol);
            free(ref);
        }
    }
}

/* like tt_max_err, but a reference infinity must be met by the same infinity
   (tt_max_err reports inf == inf as an infinite error) */
static double max_err_inf(const tfu_tensor *t, const double *ref) {
    double worst = 0;
    int64_t i0, i1, i2, i3, k = 0;
    FOR4(t->ne) {
        double v = tfu_get_f32(t, i0, i1, i2, i3), r = ref[k++], d;
        if (isinf(r)) { if (v != r) return INFINITY; continue; }
        if (v != v) return INFINITY;
        d = fabs(v - r) / (fabs(r) > 1.0 ? fabs(r) : 1.0);
        if (d != d) return INFINITY;
        if (d > worst) worst = d;
    }
    return worst;
}

/* saturating inputs: overflow to inf, underflow to 0, large arguments.
   A row of 3*16+5 values so every input meets the SIMD body and the tail. */
static void test_extremes(void) {
    static const float XS[] = { -200, -100, -88, -60, -20, 20, 60, 88, 89, 100, 200 };
    static const int ops[] = { 4, 9, 8, 13, 11, 12 };   /* exp sigmoid tanh silu gelu gelu_erf (UNOPS) */
    int u, pass, i;
    for (u = 0; u < (int)(sizeof ops / sizeof ops[0]); u++) {
        const unop *U = &UNOPS[ops[u]];
        int64_t n = 53;
        tfu_tensor *a, *out;
        double *ref;
        tfu_graph *g;
        begin_case(seed_base * 1000003u + 1500u + (uint64_t)u);
        a = tfu_new_tensor_1d(ctx, TFU_F32, n);
        if (!a) { TT_CHECK(0, "input build failed"); continue; }
        for (i = 0; i < n; i++) tfu_set_f32(a, i, 0, 0, 0, XS[(i * 7) % (int)(sizeof XS / sizeof XS[0])]);
        dstart(U->name); strcat(desc, " extreme inputs (|x| 20..200)");
        out = U->fn(ctx, a);
        g = out ? tfu_graph_build(ctx, out) : NULL;
        TT_CHECK(g != NULL, "%s: build failed (%s)", desc, tfu_last_error_msg(ctx));
        if (!g) continue;
        ref = (double *)malloc(sizeof(double) * (size_t)n);
        for (i = 0; i < n; i++) {
            double r = U->ref((double)tfu_get_f32(a, i, 0, 0, 0));
            ref[i] = fabs(r) > 3.4028234663852886e38 ? (r > 0 ? INFINITY : -INFINITY) : r;   /* f32 overflow */
        }
        /* the same three runs as run3, compared with the inf-aware error */
        for (pass = 0; pass < 3; pass++) {
            static const char *hows[3] = { "ref", "plan-fused", "plan-unfused-2t" };
            tfu_plan *p = NULL;
            tfu_result r;
            if (pass == 0) {
                r = tfu_graph_compute_ref(g);
                if (r == TFU_OK && out->data) { tt_poison(out->data, tfu_nbytes(out)); r = tfu_graph_compute_ref(g); }
            } else {
                tfu_plan_options o = tfu_plan_default_options();
                if (pass == 2) { o.no_fusion = 1; o.n_threads = 2; }
                p = tfu_plan_compile(g, &o);
                r = p && out->data ? TFU_OK : TFU_ERR_GRAPH;
                if (r == TFU_OK) { tt_poison(out->data, tfu_nbytes(out)); r = tfu_plan_run(p); }
            }
            TT_CHECK(r == TFU_OK, "%s [%s]: run -> %s", desc, hows[pass], tfu_result_str(r));
            if (r == TFU_OK) {
                double err = max_err_inf(out, ref);
                TT_CHECK(err <= 1e-5, "%s [%s]: max err %.3g (inf must stay inf)", desc, hows[pass], err);
                if (err > 1e-5) for (i = 0; i < 11; i++) {
                    double v = tfu_get_f32(out, i, 0, 0, 0);
                    if (isinf(ref[i]) ? v != ref[i] : !(fabs(v - ref[i]) <= 1e-5 * (fabs(ref[i]) > 1 ? fabs(ref[i]) : 1)))
                        printf("  x=%g: got %g, want %g\n", tfu_get_f32(a, i, 0, 0, 0), v, ref[i]);
                }
            }
            if (p) tfu_plan_free(p);
        }
        free(ref);
    }
}

/* scale, scale_bias, clamp */
static void test_scale_clamp(void) {
    int w, c;
    for (w = 0; w < 3; w++) for (c = 0; c < n_cases; c++) {
        int64_t ne[4], i0, i1, i2, i3;
        tin a;
        tfu_tensor *out;
        double *ref;
        float s, b, lo, hi;
        begin_case(seed_base * 1000003u + 2000u + 100u * (uint64_t)w + (uint64_t)c);
        rand_shape(ne, 40000, 1);
        if (!mk_in(&a, rand_ftype(), ne, rand_kind(), -3, 3)) { TT_CHECK(0, "input build failed"); continue; }
        s = tt_rand(-2.5f, 2.5f); b = tt_rand(-2, 2);
        lo = tt_rand(-2, 0.2f); hi = lo + tt_rand(0.01f, 2.5f);
        ref = refbuf(ne);
        if (w == 0) {
            dstart("scale"); dcat("s", s); dcat_in("a", &a);
            out = tfu_scale(ctx, a.t, s);
            FOR4(ne) ref[IDX(ne, i0, i1, i2, i3)] = inv(&a, i0, i1, i2, i3) * (double)s;
        } else if (w == 1) {
            dstart("scale_bias"); dcat("s", s); dcat("b", b); dcat_in("a", &a);
            out = tfu_scale_bias(ctx, a.t, s, b);
            FOR4(ne) ref[IDX(ne, i0, i1, i2, i3)] = inv(&a, i0, i1, i2, i3) * (double)s + (double)b;
        } else {
            dstart("clamp"); dcat("lo", lo); dcat("hi", hi); dcat_in("a", &a);
            out = tfu_clamp(ctx, a.t, lo, hi);
            FOR4(ne) {
                double v = inv(&a, i0, i1, i2, i3);
                ref[IDX(ne, i0, i1, i2, i3)] = v < lo ? lo : v > hi ? hi : v;
            }
        }
        if (check_meta(out, ne, TFU_F32, 1)) run3(out, ref, 1e-5);
        free(ref);
    }
}

/* ---- element-wise: binary with broadcasting --------------------------------- */

static int64_t rand_divisor(int64_t n) {   /* a random divisor of n, 1 and n included */
    int64_t d, divs[64];
    int nd = 0;
    for (d = 1; d <= n && nd < 64; d++) if (n % d == 0) divs[nd++] = d;
    return divs[tt_int(0, nd - 1)];
}

/* fill with |v| in [lo,hi] and a random sign (divisors away from zero) */
static void fill_mag(tfu_tensor *t, float lo, float hi) {
    int64_t i0, i1, i2, i3;
    FOR4(t->ne) {
        float v = tt_rand(lo, hi);
        tfu_set_f32(t, i0, i1, i2, i3, (tt_u64() & 1) ? -v : v);
    }
}

static void test_binary(void) {
    static const char *names[4] = { "add", "sub", "mul", "div" };
    int w, c, i;
    for (w = 0; w < 4; w++) for (c = 0; c < 2 * n_cases; c++) {
        int64_t ne[4], nb_[4], i0, i1, i2, i3;
        tin a, b;
        tfu_tensor *out = NULL;
        double *ref;
        begin_case(seed_base * 1000003u + 3000u + 100u * (uint64_t)w + (uint64_t)c);
        rand_shape(ne, 40000, 1);
        for (i = 0; i < 4; i++) {
            int r = c < n_cases / 2 ? 0 : tt_int(0, 2);    /* first cases: same shape */
            nb_[i] = r == 0 ? ne[i] : r == 1 ? 1 : rand_divisor(ne[i]);
        }
        if (!mk_in(&a, rand_ftype(), ne, rand_kind(), -3, 3) ||
            !mk_in(&b, rand_ftype(), nb_, rand_kind(), -3, 3)) { TT_CHECK(0, "input build failed"); continue; }
        if (w == 3) fill_mag(b.leaf, 0.25f, 3);
        dstart(names[w]); dcat_in("a", &a); dcat_in("b", &b);
        switch (w) {
        case 0: out = tfu_add(ctx, a.t, b.t); break;
        case 1: out = tfu_sub(ctx, a.t, b.t); break;
        case 2: out = tfu_mul(ctx, a.t, b.t); break;
        case 3: out = tfu_div(ctx, a.t, b.t); break;
        }
        if (!check_meta(out, ne, TFU_F32, 1)) continue;
        ref = refbuf(ne);
        FOR4(ne) {
            double x = inv(&a, i0, i1, i2, i3);
            double y = inv(&b, i0 % nb_[0], i1 % nb_[1], i2 % nb_[2], i3 % nb_[3]);
            ref[IDX(ne, i0, i1, i2, i3)] = w == 0 ? x + y : w == 1 ? x - y : w == 2 ? x * y : x / y;
        }
        run3(out, ref, 1e-5);
        free(ref);
    }
}

/* ---- GLU ----------------------------------------------------------------------- */

static double glu_act(int kind, double g) {
    switch (kind) {
    case TFU_GLU_REGLU: return r_relu(g);
    case TFU_GLU_GEGLU: return r_gelu(g);
    case TFU_GLU_GEGLU_ERF: return r_gelu_erf(g);
    default: return r_silu(g);
    }
}
static const char *glu_name[4] = { "reglu", "geglu", "geglu_erf", "swiglu" };

static void test_glu(void) {
    int k, c;
    for (k = 0; k < 4; k++) for (c = 0; c < n_cases; c++) {
        int64_t ne[4], ni[4], n, i0, i1, i2, i3;
        tin a;
        tfu_tensor *out;
        double *ref;
        int swapped, helper;
        begin_case(seed_base * 1000003u + 4000u + 100u * (uint64_t)k + (uint64_t)c);
        rand_shape(ne, 20000, 1);
        n = ne[0];
        ni[0] = 2 * n; ni[1] = ne[1]; ni[2] = ne[2]; ni[3] = ne[3];
        swapped = tt_int(0, 1);
        helper = (c % 4 == 3) && k != TFU_GLU_GEGLU_ERF;   /* tfu_reglu / geglu / swiglu */
        if (helper) swapped = 0;
        if (!mk_in(&a, rand_ftype(), ni, rand_kind(), -4, 4)) { TT_CHECK(0, "input build failed"); continue; }
        dstart("glu"); { size_t l = strlen(desc); snprintf(desc + l, sizeof desc - l, " %s%s%s", glu_name[k], swapped ? " swapped" : "", helper ? " (helper)" : ""); }
        dcat_in("a", &a);
        if (helper) out = k == TFU_GLU_REGLU ? tfu_reglu(ctx, a.t) : k == TFU_GLU_GEGLU ? tfu_geglu(ctx, a.t) : tfu_swiglu(ctx, a.t);
        else out = tfu_glu(ctx, a.t, (tfu_glu_kind)k, swapped);
        if (!check_meta(out, ne, TFU_F32, 1)) continue;
        ref = refbuf(ne);
        FOR4(ne) {
            double x0 = inv(&a, i0, i1, i2, i3), x1 = inv(&a, i0 + n, i1, i2, i3);
            double g = swapped ? x1 : x0, v = swapped ? x0 : x1;
            ref[IDX(ne, i0, i1, i2, i3)] = glu_act(k, g) * v;
        }
        run3(out, ref, 1e-4);
        free(ref);
    }
    /* split form */
    for (k = 0; k < 4; k++) for (c = 0; c < n_cases; c++) {
        int64_t ne[4], i0, i1, i2, i3;
        tin g, v;
        tfu_tensor *out;
        double *ref;
        int helper = (k == TFU_GLU_SWIGLU) && (c % 2 == 1);
        begin_case(seed_base * 1000003u + 4500u + 100u * (uint64_t)k + (uint64_t)c);
        rand_shape(ne, 20000, 1);
        if (!mk_in(&g, rand_ftype(), ne, rand_kind(), -4, 4) ||
            !mk_in(&v, rand_ftype(), ne, rand_kind(), -4, 4)) { TT_CHECK(0, "input build failed"); continue; }
        dstart("glu_split"); { size_t l = strlen(desc); snprintf(desc + l, sizeof desc - l, " %s%s", glu_name[k], helper ? " (swiglu_split)" : ""); }
        dcat_in("gate", &g); dcat_in("value", &v);
        out = helper ? tfu_swiglu_split(ctx, g.t, v.t) : tfu_glu_split(ctx, g.t, v.t, (tfu_glu_kind)k);
        if (!check_meta(out, ne, TFU_F32, 1)) continue;
        ref = refbuf(ne);
        FOR4(ne) ref[IDX(ne, i0, i1, i2, i3)] = glu_act(k, inv(&g, i0, i1, i2, i3)) * inv(&v, i0, i1, i2, i3);
        run3(out, ref, 1e-4);
        free(ref);
    }
}

/* ---- row ops ------------------------------------------------------------------ */

static void test_norms(void) {
    int w, c;
    static const float epss[3] = { 1e-5f, 1e-6f, 0.1f };
    for (w = 0; w < 2; w++) for (c = 0; c < n_cases; c++) {
        int64_t ne[4], i0, i1, i2, i3;
        tin a;
        tfu_tensor *out;
        double *ref;
        float eps = epss[tt_int(0, 2)], off = (float)tt_int(-2, 2);
        begin_case(seed_base * 1000003u + 5000u + 100u * (uint64_t)w + (uint64_t)c);
        rand_shape(ne, 40000, 1);
        if (!mk_in(&a, rand_ftype(), ne, rand_kind(), off - 2, off + 2)) { TT_CHECK(0, "input build failed"); continue; }
        dstart(w ? "norm" : "rms_norm"); dcat("eps", eps); dcat_in("a", &a);
        out = w ? tfu_norm(ctx, a.t, eps) : tfu_rms_norm(ctx, a.t, eps);
        if (!check_meta(out, ne, TFU_F32, 1)) continue;
        ref = refbuf(ne);
        for (i3 = 0; i3 < ne[3]; i3++) for (i2 = 0; i2 < ne[2]; i2++) for (i1 = 0; i1 < ne[1]; i1++) {
            double s = 0, s2 = 0, mean, d;
            for (i0 = 0; i0 < ne[0]; i0++) s += inv(&a, i0, i1, i2, i3);
            mean = s / (double)ne[0];
            for (i0 = 0; i0 < ne[0]; i0++) {
                double x = inv(&a, i0, i1, i2, i3) - (w ? mean : 0.0);
                s2 += x * x;
            }
            d = 1.0 / sqrt(s2 / (double)ne[0] + (double)eps);
            for (i0 = 0; i0 < ne[0]; i0++)
                ref[IDX(ne, i0, i1, i2, i3)] = (inv(&a, i0, i1, i2, i3) - (w ? mean : 0.0)) * d;
        }
        run3(out, ref, 1e-4);
        free(ref);
    }
}

/* softmax of row (a*scale + mask row) into dst */
static void ref_softmax_row(const tin *a, int64_t i1, int64_t i2, int64_t i3, double scale,
                            const tfu_tensor *mask, double *dst) {
    int64_t k, n = a->ne[0];
    double mx = -INFINITY, sum = 0;
    for (k = 0; k < n; k++) {
        double v = inv(a, k, i1, i2, i3) * scale + (mask ? tfu_get_f32(mask, k, i1, i2 % mask->ne[2], i3 % mask->ne[3]) : 0.0);
        dst[k] = v;
        if (v > mx) mx = v;
    }
    for (k = 0; k < n; k++) { dst[k] = exp(dst[k] - mx); sum += dst[k]; }
    for (k = 0; k < n; k++) dst[k] /= sum;
}

static void test_softmax(void) {
    int w, c;
    for (w = 0; w < 3; w++) for (c = 0; c < n_cases; c++) {
        int64_t ne[4], i1, i2, i3;
        tin a;
        tfu_tensor *out, *mask = NULL;
        double *ref;
        float scale = 1.0f;
        begin_case(seed_base * 1000003u + 6000u + 100u * (uint64_t)w + (uint64_t)c);
        rand_shape(ne, 40000, 1);
        if (w == 2 && ne[0] < ne[1]) { int64_t t = ne[0]; ne[0] = ne[1]; ne[1] = t; }
        if (!mk_in(&a, rand_ftype(), ne, rand_kind(), -5, 5)) { TT_CHECK(0, "input build failed"); continue; }
        if (w == 0) {
            dstart("soft_max"); dcat_in("a", &a);
            out = tfu_soft_max(ctx, a.t);
        } else if (w == 1) {
            /* random mask with some -inf (never a whole row), more rows than a */
            int64_t mr = ne[1] + tt_int(0, 3), q, k;
            tfu_type mt = tt_int(0, 2) == 0 ? TFU_F16 : TFU_F32;
            int64_t m2 = 1, m3 = 1, j2, j3;
            if (c % 2) { m2 = rand_divisor(ne[2]); m3 = rand_divisor(ne[3]); }  /* per-head masks, broadcast */
            mask = tfu_new_tensor_4d(ctx, mt, ne[0], mr, m2, m3);
            if (!mask) { TT_CHECK(0, "mask build failed"); continue; }
            tt_fill(mask, -4, 1);
            for (j3 = 0; j3 < m3; j3++) for (j2 = 0; j2 < m2; j2++) for (q = 0; q < mr; q++) {
                int64_t keep = tt_int(0, (int)ne[0] - 1);
                for (k = 0; k < ne[0]; k++) if (k != keep && tt_int(0, 4) == 0) tfu_set_f32(mask, k, q, j2, j3, -INFINITY);
            }
            scale = tt_int(0, 3) == 0 ? 1.0f : tt_rand(0.05f, 2.0f);
            dstart("soft_max_ext"); dcat("scale", scale);
            { size_t l = strlen(desc); snprintf(desc + l, sizeof desc - l, " mask=%s[%lld,%lld,%lld,%lld]", tyn(mt), (long long)ne[0], (long long)mr, (long long)m2, (long long)m3); }
            if (c == 1) { mask = NULL; strcat(desc, " (mask NULL)"); }
            dcat_in("a", &a);
            out = tfu_soft_max_ext(ctx, a.t, mask, scale);
        } else {
            scale = tt_rand(0.05f, 1.0f);
            mask = tfu_causal_mask(ctx, ne[0], ne[1]);
            if (!mask) { TT_CHECK(0, "causal_mask failed"); continue; }
            dstart("soft_max_ext causal"); dcat("scale", scale); dcat_in("a", &a);
            out = tfu_soft_max_ext(ctx, a.t, mask, scale);
        }
        if (!check_meta(out, ne, TFU_F32, 1)) continue;
        ref = refbuf(ne);
        for (i3 = 0; i3 < ne[3]; i3++) for (i2 = 0; i2 < ne[2]; i2++) for (i1 = 0; i1 < ne[1]; i1++)
            ref_softmax_row(&a, i1, i2, i3, scale, mask, ref + IDX(ne, 0, i1, i2, i3));
        run3(out, ref, 1e-5);
        strcat(desc, " (relative)");
        rel_mode = 1;
        run3(out, ref, 1e-4);
        rel_mode = 0;
        free(ref);
    }
}

/* out's graph fused and unfused (SIMD on, one thread): the same bits */
static void same_fused_unfused(tfu_tensor *out) {
    tfu_graph *g = tfu_graph_build(ctx, out);
    size_t nb = tfu_nbytes(out);
    unsigned char *fused = (unsigned char *)malloc(nb);
    int pass, ok = g != NULL && fused != NULL;
    for (pass = 0; ok && pass < 2; pass++) {
        tfu_plan_options o = tfu_plan_default_options();
        tfu_plan *p;
        o.no_fusion = pass;
        p = tfu_plan_compile(g, &o);
        ok = p != NULL;
        if (!p) break;
        poison_out(out);
        ok = tfu_plan_run(p) == TFU_OK;
        if (ok && pass == 0) memcpy(fused, out->data, nb);
        if (ok && pass == 1) ok = memcmp(fused, out->data, nb) == 0;
        tfu_plan_free(p);
    }
    TT_CHECK(ok, "%s: fused and unfused plans differ (or failed: %s)", desc, tfu_last_error_msg(ctx));
    free(fused);
}

/* softmax behind its prologue written out, the forms the CPU executor
   takes into the softmax kernel (tfu_x_soft_max_fold) and some it must
   not: 0 soft_max(x*s + m), 1 soft_max(m + x*s), 2 soft_max(x*s),
   3 soft_max(x + m), 4 x*s read again after the softmax (not folded),
   5 x*s + b with a bias (not folded), 6 the mask from an op of the group
   (m = exp(-|y|)... computed before x*s). Against the double reference and
   fused against unfused, bit for bit (a fold must not change a result). */
static void test_softmax_prologue(void) {
    int w, c;
    for (w = 0; w < 7; w++) for (c = 0; c < n_cases; c++) {
        int64_t ne[4], i1, i2, i3, i0;
        tin a;
        tfu_tensor *out, *mask = NULL, *sc, *mref, *y = NULL;
        double *ref;
        float scale = w == 3 ? 1.0f : tt_rand(0.05f, 1.0f);
        begin_case(seed_base * 1000003u + 6200u + 100u * (uint64_t)w + (uint64_t)c);
        rand_shape(ne, 40000, 1);
        if (ne[0] < ne[1]) { int64_t t = ne[0]; ne[0] = ne[1]; ne[1] = t; }
        if (!mk_in(&a, rand_ftype(), ne, rand_kind(), -5, 5)) { TT_CHECK(0, "input build failed"); continue; }
        if (c % 2 && w != 1) mask = tfu_causal_mask(ctx, ne[0], ne[1]);
        else if (w == 1) {   /* m + x*s: m has the whole shape, some -inf */
            mask = tfu_new_tensor_4d(ctx, TFU_F32, ne[0], ne[1], ne[2], ne[3]);
            if (mask) {
                tt_fill(mask, -4, 1);
                for (i0 = 1; i0 < tfu_nelements(mask); i0 += 3)
                    if (i0 % ne[0]) ((float *)mask->data)[i0] = -INFINITY;   /* never column 0: no row all -inf */
            }
        } else {
            mask = tfu_new_tensor_4d(ctx, TFU_F32, ne[0], ne[1], rand_divisor(ne[2]), rand_divisor(ne[3]));
            if (mask) tt_fill(mask, -4, 1);
        }
        if (!mask) { TT_CHECK(0, "mask build failed"); continue; }
        mref = mask;
        dstart("soft_max prologue"); dcat("form", w); dcat("scale", scale); dcat_in("a", &a);
        if (c % 2 && w != 1) strcat(desc, " causal");
        if (w == 6) {   /* the mask computed in the group: -|y| */
            y = tfu_new_tensor_4d(ctx, TFU_F32, ne[0], ne[1], ne[2], ne[3]);
            if (!y) { TT_CHECK(0, "y build failed"); continue; }
            tt_fill(y, -4, 4);
            mask = tfu_neg(ctx, tfu_abs(ctx, y));
        }
        sc = w == 5 ? tfu_scale_bias(ctx, a.t, scale, 0.25f) : w == 3 ? a.t : tfu_scale(ctx, a.t, scale);
        if (w == 1) out = tfu_soft_max(ctx, tfu_add(ctx, mask, sc));
        else if (w == 2) out = tfu_soft_max(ctx, sc);
        else out = tfu_soft_max(ctx, tfu_add(ctx, sc, mask));
        if (w == 4) out = tfu_add(ctx, out, sc);
        if (!check_meta(out, ne, TFU_F32, 1)) continue;
        ref = refbuf(ne);
        for (i3 = 0; i3 < ne[3]; i3++) for (i2 = 0; i2 < ne[2]; i2++) for (i1 = 0; i1 < ne[1]; i1++) {
            double *row = ref + IDX(ne, 0, i1, i2, i3), mx = -INFINITY, sum = 0;
            for (i0 = 0; i0 < ne[0]; i0++) {
                double v = inv(&a, i0, i1, i2, i3) * scale + (w == 5 ? 0.25 : 0.0), m = 0;
                if (w == 6) m = -fabs((double)tfu_get_f32(y, i0, i1, i2, i3));
                else if (w != 2) m = tfu_get_f32(mref, i0, i1, i2 % mref->ne[2], i3 % mref->ne[3]);
                row[i0] = v + m;
                if (row[i0] > mx) mx = row[i0];
            }
            for (i0 = 0; i0 < ne[0]; i0++) {
                row[i0] = exp(row[i0] - mx);
                sum += row[i0];
            }
            for (i0 = 0; i0 < ne[0]; i0++) {
                row[i0] /= sum;
                if (w == 4) row[i0] += inv(&a, i0, i1, i2, i3) * scale;
            }
        }
        run3(out, ref, w == 4 ? 1e-5 * 5 : 1e-5);
        same_fused_unfused(out);
        free(ref);
    }
}

/* causal mask helper: values checked directly (tt_max_err cannot compare -inf) */
static void test_causal_mask(void) {
    static const int64_t sizes[][2] = { {1, 1}, {5, 5}, {7, 3}, {33, 1}, {65, 17}, {1031, 4} };
    int c;
    for (c = 0; c < (int)(sizeof sizes / sizeof sizes[0]); c++) {
        int64_t n_kv = sizes[c][0], n_q = sizes[c][1], kv, q, bad = 0;
        tfu_tensor *m;
        begin_case(seed_base * 1000003u + 6500u + (uint64_t)c);
        m = tfu_causal_mask(ctx, n_kv, n_q);
        dstart("causal_mask");
        { size_t l = strlen(desc); snprintf(desc + l, sizeof desc - l, " n_kv=%lld n_q=%lld", (long long)n_kv, (long long)n_q); }
        TT_CHECK(m != NULL, "%s: NULL (%s)", desc, tfu_last_error_msg(ctx));
        if (!m) continue;
        TT_CHECK(m->type == TFU_F32 && m->ne[0] == n_kv && m->ne[1] == n_q && m->ne[2] == 1 && m->ne[3] == 1 && m->data,
                 "%s: type %s shape [%lld,%lld,%lld,%lld] data %p", desc, tyn(m->type), (long long)m->ne[0],
                 (long long)m->ne[1], (long long)m->ne[2], (long long)m->ne[3], m->data);
        if (!m->data || m->ne[0] != n_kv || m->ne[1] != n_q) continue;
        for (q = 0; q < n_q; q++) for (kv = 0; kv < n_kv; kv++) {
            float v = tfu_get_f32(m, kv, q, 0, 0);
            int ok = kv <= q + (n_kv - n_q) ? v == 0.0f : (isinf(v) && v < 0);
            if (!ok && bad++ < 3) printf("  %s: at kv=%lld q=%lld got %g\n", desc, (long long)kv, (long long)q, v);
        }
        TT_CHECK(bad == 0, "%s: %lld wrong values", desc, (long long)bad);
    }
}

static void test_reductions(void) {
    int w, c;
    static const char *names[3] = { "sum_rows", "mean", "argmax" };
    for (w = 0; w < 3; w++) for (c = 0; c < n_cases; c++) {
        int64_t ne[4], no[4], i0, i1, i2, i3;
        tin a;
        tfu_tensor *out;
        double *ref;
        double tol;
        begin_case(seed_base * 1000003u + 7000u + 100u * (uint64_t)w + (uint64_t)c);
        rand_shape(ne, 40000, 1);
        no[0] = 1; no[1] = ne[1]; no[2] = ne[2]; no[3] = ne[3];
        if (!mk_in(&a, rand_ftype(), ne, rand_kind(), -2, 2)) { TT_CHECK(0, "input build failed"); continue; }
        if (w == 2) {
            /* one unique maximum per row (stored types round, so ties are likely otherwise) */
            for (i3 = 0; i3 < ne[3]; i3++) for (i2 = 0; i2 < ne[2]; i2++) for (i1 = 0; i1 < ne[1]; i1++) {
                int64_t k = tt_int(0, (int)ne[0] - 1), s[4], j[4];
                int d;
                j[0] = k; j[1] = i1; j[2] = i2; j[3] = i3;
                /* the logical element's leaf coordinates */
                switch (a.kind) {
                case IN_TRANS: s[0] = j[1]; s[1] = j[0]; s[2] = j[2]; s[3] = j[3]; break;
                case IN_PERM: for (d = 0; d < 4; d++) s[d] = j[a.ax[d]]; break;
                case IN_PAD: s[0] = j[0] + a.off0; s[1] = j[1]; s[2] = j[2]; s[3] = j[3]; break;
                case IN_RESHAPE: {
                    int64_t L = IDX(ne, j[0], j[1], j[2], j[3]);
                    s[0] = L % (ne[0] * ne[1]); s[1] = L / (ne[0] * ne[1]); s[2] = s[3] = 0; break; }
                default: for (d = 0; d < 4; d++) s[d] = j[d];
                }
                tfu_set_f32(a.leaf, s[0], s[1], s[2], s[3], 3.0f + (float)tt_unif());
            }
        }
        dstart(names[w]); dcat_in("a", &a);
        out = w == 0 ? tfu_sum_rows(ctx, a.t) : w == 1 ? tfu_mean(ctx, a.t) : tfu_argmax(ctx, a.t);
        if (!check_meta(out, no, w == 2 ? TFU_I32 : TFU_F32, 1)) continue;
        ref = refbuf(no);
        for (i3 = 0; i3 < ne[3]; i3++) for (i2 = 0; i2 < ne[2]; i2++) for (i1 = 0; i1 < ne[1]; i1++) {
            double s = 0, mx = -INFINITY;
            int64_t am = 0;
            for (i0 = 0; i0 < ne[0]; i0++) {
                double v = inv(&a, i0, i1, i2, i3);
                s += v;
                if (v > mx) { mx = v; am = i0; }
            }
            ref[IDX(no, 0, i1, i2, i3)] = w == 0 ? s : w == 1 ? s / (double)ne[0] : (double)am;
        }
        tol = w == 2 ? 0 : 2e-6 * sqrt((double)ne[0]) + 1e-6;
        run3(out, ref, tol);
        free(ref);
    }
}

/* ---- mul_mat ------------------------------------------------------------------ */

static void test_mul_mat(void) {
    static const int64_t KS[] = { 1, 2, 3, 7, 16, 31, 32, 33, 64, 65, 128, 257, 1031, 2053 };
    static const int64_t MS[] = { 1, 2, 3, 7, 8, 16, 17, 33, 65, 130 };
    static const int64_t NS[] = { 1, 2, 3, 4, 7, 16, 33, 65, 129 };
    int c;
    for (c = 0; c < 4 * n_cases; c++) {
        int64_t K, M, N, A2, A3, r2, r3, na[4], nbb[4], no[4], i0, i1, i2, i3, k;
        tin a, b;
        tfu_tensor *out;
        double *ref;
        tfu_type at;
        begin_case(seed_base * 1000003u + 8000u + (uint64_t)c);
        K = KS[tt_int(0, (int)(sizeof KS / sizeof KS[0]) - 1)];
        M = MS[tt_int(0, (int)(sizeof MS / sizeof MS[0]) - 1)];
        N = NS[tt_int(0, (int)(sizeof NS / sizeof NS[0]) - 1)];
        A2 = tt_int(0, 2) ? 1 : tt_int(1, 3); A3 = tt_int(0, 3) ? 1 : 2;
        r2 = tt_int(0, 2) ? 1 : tt_int(1, 3); r3 = tt_int(0, 3) ? 1 : 2;
        while (K * (M + N) * A2 * r2 * A3 * r3 > 300000 && (M > 1 || N > 1)) { M = (M + 1) / 2; N = (N + 1) / 2; }
        na[0] = K; na[1] = M; na[2] = A2; na[3] = A3;
        nbb[0] = K; nbb[1] = N; nbb[2] = A2 * r2; nbb[3] = A3 * r3;
        no[0] = M; no[1] = N; no[2] = nbb[2]; no[3] = nbb[3];
        at = c < 3 ? (tfu_type)c : rand_ftype();
        if (!mk_in(&a, at, na, c % 3 == 1 ? IN_PLAIN : rand_kind(), -1, 1) ||
            !mk_in(&b, TFU_F32, nbb, c % 3 == 0 ? IN_PLAIN : rand_kind(), -1, 1)) { TT_CHECK(0, "input build failed"); continue; }
        dstart("mul_mat"); dcat_in("a", &a); dcat_in("b", &b);
        out = tfu_mul_mat(ctx, a.t, b.t);
        if (!check_meta(out, no, TFU_F32, 1)) continue;
        ref = refbuf(no);
        FOR4(no) {
            double s = 0;
            int64_t a2 = i2 / r2, a3 = i3 / r3;   /* i0 = m, i1 = n */
            for (k = 0; k < K; k++) s += inv(&a, k, i0, a2, a3) * inv(&b, k, i1, i2, i3);
            ref[IDX(no, i0, i1, i2, i3)] = s;
        }
        run3(out, ref, 3e-6 * sqrt((double)K) + 1e-6);
        free(ref);
    }
}

/* ---- get_rows ------------------------------------------------------------------ */

static void test_get_rows(void) {
    int c;
    for (c = 0; c < 2 * n_cases; c++) {
        int64_t ne[4], R, n, m, no[4], i0, i1, i2, i3, i;
        tin a;
        tfu_tensor *idx, *out;
        double *ref;
        begin_case(seed_base * 1000003u + 9000u + (uint64_t)c);
        R = rdim(NSZ - 1);
        ne[0] = tt_int(0, 3) == 0 ? BIG[tt_int(0, 4)] : rdim(NSZ - 1);
        ne[1] = R; ne[2] = ne[3] = 1;
        n = rdim(12);
        m = c % 3 == 2 ? tt_int(2, 4) : 1;
        if (!mk_in(&a, c < 3 ? (tfu_type)c : rand_ftype(), ne, tt_int(0, 1) ? IN_PLAIN : IN_PAD, -3, 3)) { TT_CHECK(0, "input build failed"); continue; }
        if (c % 4 == 1) {   /* idx: a view at an offset into a longer i32 leaf, rows padded */
            int64_t off = tt_int(1, 5), pad = tt_int(0, 2);
            tfu_tensor *il = tfu_new_tensor_2d(ctx, TFU_I32, n + pad + off, m);
            if (!il || !il->data) { TT_CHECK(0, "idx build failed"); continue; }
            for (i = 0; i < (n + pad + off) * m; i++) ((int32_t *)il->data)[i] = -7;   /* never read */
            idx = tfu_view_2d(ctx, il, n, m, il->nb[1], (size_t)off * 4);
            if (!idx) { TT_CHECK(0, "idx view failed"); continue; }
        } else idx = m > 1 ? tfu_new_tensor_2d(ctx, TFU_I32, n, m) : tfu_new_tensor_1d(ctx, TFU_I32, n);
        if (!idx || !idx->data) { TT_CHECK(0, "idx build failed"); continue; }
        for (i = 0; i < n * m; i++) {
            int r = tt_int(0, 3);
            int32_t v = (int32_t)(r == 0 ? 0 : r == 1 ? R - 1 : tt_int(0, (int)R - 1));
            memcpy((char *)idx->data + (size_t)(i % n) * idx->nb[0] + (size_t)(i / n) * idx->nb[1], &v, 4);
        }
        no[0] = ne[0]; no[1] = n; no[2] = m; no[3] = 1;
        dstart("get_rows"); dcat_in("a", &a);
        { size_t l = strlen(desc); snprintf(desc + l, sizeof desc - l, " idx=i32[%lld,%lld]%s", (long long)n, (long long)m, c % 4 == 1 ? "/view" : ""); }
        out = tfu_get_rows(ctx, a.t, idx);
        if (!check_meta(out, no, TFU_F32, 1)) continue;
        ref = refbuf(no);
        FOR4(no) {
            int32_t row;
            memcpy(&row, (const char *)idx->data + (size_t)i1 * idx->nb[0] + (size_t)i2 * idx->nb[1], 4);
            ref[IDX(no, i0, i1, i2, i3)] = inv(&a, i0, row, 0, 0);
        }
        run3(out, ref, 0);
        free(ref);
    }
}

/* ---- rope ---------------------------------------------------------------------- */

static void test_rope(void) {
    static const int64_t HD[] = { 2, 4, 6, 8, 10, 16, 34, 64, 128 };
    static const float BASES[] = { 10000.0f, 500000.0f, 100.0f };
    int c;
    for (c = 0; c < 3 * n_cases; c++) {
        int64_t ne[4], hd, nd, T, i0, i1, i2, i3, pmax;
        tin a;
        tfu_tensor *pos, *out;
        double *ref;
        int mode = tt_int(0, 1) ? TFU_ROPE_NEOX : TFU_ROPE_NORMAL, kind;
        float base = BASES[tt_int(0, 2)];
        begin_case(seed_base * 1000003u + 10000u + (uint64_t)c);
        hd = HD[tt_int(0, (int)(sizeof HD / sizeof HD[0]) - 1)];
        nd = tt_int(0, 2) == 0 ? 2 * tt_int(1, (int)hd / 2) : hd;
        T = rdim(10);
        ne[0] = hd; ne[1] = rdim(6); ne[2] = T; ne[3] = tt_int(0, 3) == 0 ? 2 : 1;
        pmax = c % 4 == 3 ? 2048 : 64;
        kind = c < 4 ? IN_PLAIN : rand_kind();
        if (!mk_in(&a, c % 5 == 4 ? rand_ftype() : TFU_F32, ne, kind, -2, 2)) { TT_CHECK(0, "input build failed"); continue; }
        if (c % 3 == 1) {   /* pos: a strided view (every other entry of a leaf, at an offset) */
            tfu_tensor *pl = tfu_new_tensor_1d(ctx, TFU_I32, 2 * T + 3);
            if (!pl || !pl->data) { TT_CHECK(0, "pos build failed"); continue; }
            for (i2 = 0; i2 < 2 * T + 3; i2++) ((int32_t *)pl->data)[i2] = -100000;   /* never read */
            /* 1 x T with rows 8 bytes apart, transposed: T x 1 with nb0 = 8, from entry 1 */
            pos = tfu_transpose(ctx, tfu_view_2d(ctx, pl, 1, T, 8, 4));
            if (!pos) { TT_CHECK(0, "pos view failed (%s)", tfu_last_error_msg(ctx)); continue; }
            for (i2 = 0; i2 < T; i2++) ((int32_t *)pl->data)[1 + 2 * i2] = (int32_t)tt_int(0, (int)pmax);
        } else {
            pos = tfu_new_tensor_1d(ctx, TFU_I32, T);
            if (!pos || !pos->data) { TT_CHECK(0, "pos build failed"); continue; }
            for (i2 = 0; i2 < T; i2++) ((int32_t *)pos->data)[i2] = (int32_t)tt_int(0, (int)pmax);
        }
        dstart(mode == TFU_ROPE_NEOX ? "rope neox" : "rope normal");
        if (c % 3 == 1) strcat(desc, " pos=strided view");
        dcat("n_dims", (double)nd); dcat("base", base); dcat("pos_max", (double)pmax); dcat_in("a", &a);
        out = tfu_rope(ctx, a.t, pos, (int)nd, (tfu_rope_mode)mode, base);
        if (!check_meta(out, ne, TFU_F32, 1)) continue;
        ref = refbuf(ne);
        for (i3 = 0; i3 < ne[3]; i3++) for (i2 = 0; i2 < ne[2]; i2++) for (i1 = 0; i1 < ne[1]; i1++) {
            int32_t pi;
            double p, *r = ref + IDX(ne, 0, i1, i2, i3);
            memcpy(&pi, (const char *)pos->data + (size_t)i2 * pos->nb[0], 4);
            p = (double)pi;
            for (i0 = 0; i0 < hd; i0++) r[i0] = inv(&a, i0, i1, i2, i3);
            for (i0 = 0; i0 < nd / 2; i0++) {
                double th = p * pow((double)base, -2.0 * (double)i0 / (double)nd);
                int64_t j0 = mode == TFU_ROPE_NEOX ? i0 : 2 * i0;
                int64_t j1 = mode == TFU_ROPE_NEOX ? i0 + nd / 2 : 2 * i0 + 1;
                double x0 = inv(&a, j0, i1, i2, i3), x1 = inv(&a, j1, i1, i2, i3);
                r[j0] = x0 * cos(th) - x1 * sin(th);
                r[j1] = x0 * sin(th) + x1 * cos(th);
            }
        }
        /* theta in f32 would carry ~6e-8*pos radians of error: allow a few times that */
        run3(out, ref, 1e-5 + 2e-7 * (double)pmax);
        free(ref);
    }
}

/* rope at far positions: both sides of where the kernel's own sin/cos hands
   over to libm's (|theta| = 2^19 pi/2), negative ones, int32's ends; tokens
   that repeat a position (the table is kept) and heads of odd pair counts;
   a base below 1 makes frequencies above 1 (angles beyond the position).
   theta is the same double in the kernel and here, so the f32 rounding of
   cos and sin and of the rotation is all that remains. */
static void test_rope_far(void) {
    static const int32_t FAR_POS[] = { 0, 1, -1, 823548, 823549, 823550, -823549, 1048576, 12345678,
                                   2147483647, -2147483647, 999999999 };
    static const int64_t HD[] = { 2, 6, 10, 34, 64, 128 };
    int c;
    for (c = 0; c < n_cases; c++) {
        int64_t ne[4], hd, nd, T, i0, i1, i2, i3;
        tin a;
        tfu_tensor *pos, *out;
        double *ref;
        int mode = c % 2 ? TFU_ROPE_NEOX : TFU_ROPE_NORMAL;
        float base = c % 4 == 3 ? 0.5f : 10000.0f;
        begin_case(seed_base * 1000003u + 10500u + (uint64_t)c);
        hd = HD[tt_int(0, (int)(sizeof HD / sizeof HD[0]) - 1)];
        nd = tt_int(0, 1) ? hd : 2 * tt_int(1, (int)hd / 2);
        T = 12;
        ne[0] = hd; ne[1] = tt_int(1, 5); ne[2] = T; ne[3] = 1;
        if (!mk_in(&a, c % 3 == 2 ? rand_ftype() : TFU_F32, ne, c < 2 ? IN_PLAIN : rand_kind(), -2, 2)) { TT_CHECK(0, "input build failed"); continue; }
        pos = tfu_new_tensor_1d(ctx, TFU_I32, T);
        if (!pos || !pos->data) { TT_CHECK(0, "pos build failed"); continue; }
        for (i2 = 0; i2 < T; i2++) {
            int32_t v = FAR_POS[tt_int(0, (int)(sizeof FAR_POS / sizeof FAR_POS[0]) - 1)];
            if (i2 > 0 && tt_int(0, 3) == 0) v = ((int32_t *)pos->data)[i2 - 1];   /* a repeated position */
            ((int32_t *)pos->data)[i2] = v;
        }
        dstart(mode == TFU_ROPE_NEOX ? "rope far neox" : "rope far normal");
        dcat("n_dims", (double)nd); dcat("base", base); dcat_in("a", &a);
        out = tfu_rope(ctx, a.t, pos, (int)nd, (tfu_rope_mode)mode, base);
        if (!check_meta(out, ne, TFU_F32, 1)) continue;
        ref = refbuf(ne);
        for (i3 = 0; i3 < ne[3]; i3++) for (i2 = 0; i2 < ne[2]; i2++) for (i1 = 0; i1 < ne[1]; i1++) {
            double p = (double)((int32_t *)pos->data)[i2], *r = ref + IDX(ne, 0, i1, i2, i3);
            for (i0 = 0; i0 < hd; i0++) r[i0] = inv(&a, i0, i1, i2, i3);
            for (i0 = 0; i0 < nd / 2; i0++) {
                double th = p * pow((double)base, -2.0 * (double)i0 / (double)nd);
                int64_t j0 = mode == TFU_ROPE_NEOX ? i0 : 2 * i0;
                int64_t j1 = mode == TFU_ROPE_NEOX ? i0 + nd / 2 : 2 * i0 + 1;
                double x0 = inv(&a, j0, i1, i2, i3), x1 = inv(&a, j1, i1, i2, i3);
                r[j0] = x0 * cos(th) - x1 * sin(th);
                r[j1] = x0 * sin(th) + x1 * cos(th);
            }
        }
        run3(out, ref, 1e-5);
        free(ref);
    }
}

/* ---- concat -------------------------------------------------------------------- */

static void test_concat(void) {
    int d, c;
    for (d = 0; d < 4; d++) for (c = 0; c < n_cases; c++) {
        int64_t ne[4], nb_[4], no[4], i0, i1, i2, i3, j[4];
        tin a, b;
        tfu_tensor *out;
        double *ref;
        tfu_type t;
        int i;
        begin_case(seed_base * 1000003u + 11000u + 100u * (uint64_t)d + (uint64_t)c);
        rand_shape(ne, 20000, 1);
        for (i = 0; i < 4; i++) nb_[i] = no[i] = ne[i];
        nb_[d] = rdim(8);
        no[d] = ne[d] + nb_[d];
        t = c % 3 == 2 ? rand_ftype() : TFU_F32;
        if (!mk_in(&a, t, ne, rand_kind(), -3, 3) || !mk_in(&b, t, nb_, rand_kind(), -3, 3)) { TT_CHECK(0, "input build failed"); continue; }
        dstart("concat"); dcat("dim", d); dcat_in("a", &a); dcat_in("b", &b);
        out = tfu_concat(ctx, a.t, b.t, d);
        if (!check_meta(out, no, -1, 1)) continue;
        ref = refbuf(no);
        FOR4(no) {
            j[0] = i0; j[1] = i1; j[2] = i2; j[3] = i3;
            if (j[d] < ne[d]) ref[IDX(no, i0, i1, i2, i3)] = inv(&a, i0, i1, i2, i3);
            else { j[d] -= ne[d]; ref[IDX(no, i0, i1, i2, i3)] = inv(&b, j[0], j[1], j[2], j[3]); }
        }
        run3(out, ref, 0);
        free(ref);
    }
}

/* ---- cont, cpy ------------------------------------------------------------------ */

static void test_cont(void) {
    int c;
    for (c = 0; c < 2 * n_cases; c++) {
        int64_t ne[4], i0, i1, i2, i3;
        tin a;
        tfu_tensor *out;
        double *ref;
        begin_case(seed_base * 1000003u + 12000u + (uint64_t)c);
        rand_shape(ne, 40000, 1);
        if (!mk_in(&a, rand_ftype(), ne, c < IN_KINDS ? c : rand_kind(), -3, 3)) { TT_CHECK(0, "input build failed"); continue; }
        dstart("cont"); dcat_in("a", &a);
        out = tfu_cont(ctx, a.t);
        if (!check_meta(out, ne, TFU_F32, 1)) continue;
        ref = refbuf(ne);
        FOR4(ne) ref[IDX(ne, i0, i1, i2, i3)] = inv(&a, i0, i1, i2, i3);
        run3(out, ref, 0);
        free(ref);
    }
    /* tfu_view_1d / _2d / _3d with offsets, fed to an element-wise op */
    for (c = 0; c < 3 * n_cases; c++) {
        int64_t ne[4], L[4], o0, o1, o2, i0, i1, i2, i3;
        tfu_tensor *leaf, *v = NULL, *out;
        double *ref;
        int nd = 1 + c % 3;
        tfu_type ty = rand_ftype();
        size_t es = tfu_type_size(ty);
        begin_case(seed_base * 1000003u + 12500u + (uint64_t)c);
        rand_shape(ne, 20000, 1);
        ne[3] = 1;
        if (nd < 3) ne[2] = 1;
        if (nd < 2) ne[1] = 1;
        o0 = tt_int(0, 3); o1 = tt_int(0, 2); o2 = tt_int(0, 2);
        L[0] = ne[0] + o0 + tt_int(0, 2); L[1] = ne[1] + o1 + tt_int(0, 1); L[2] = ne[2] + o2; L[3] = 1;
        leaf = new4(ty, L);
        if (!leaf) { TT_CHECK(0, "leaf build failed"); continue; }
        tt_fill(leaf, -3, 3);
        {
            size_t off = (size_t)o0 * es + (size_t)o1 * leaf->nb[1] + (size_t)o2 * leaf->nb[2];
            if (nd == 1) { ne[0] = L[0] - o0 - (L[0] > o0 + 1 ? 1 : 0); v = tfu_view_1d(ctx, leaf, ne[0], (size_t)o0 * es); o1 = o2 = 0; }
            else if (nd == 2) v = tfu_view_2d(ctx, leaf, ne[0], ne[1], leaf->nb[1], off - (size_t)o2 * leaf->nb[2]);
            else v = tfu_view_3d(ctx, leaf, ne[0], ne[1], ne[2], leaf->nb[1], leaf->nb[2], off);
            if (nd == 2) o2 = 0;
        }
        dstart("sqr(view_nd)"); dcat("nd", nd); dcat("ne0", (double)ne[0]); dcat("ne1", (double)ne[1]); dcat("ne2", (double)ne[2]);
        { size_t l = strlen(desc); snprintf(desc + l, sizeof desc - l, " %s", tyn(ty)); }
        out = tfu_sqr(ctx, v);
        if (!check_meta(out, ne, TFU_F32, 1)) continue;
        ref = refbuf(ne);
        FOR4(ne) { double x = tfu_get_f32(leaf, i0 + o0, i1 + o1, i2 + o2, 0); ref[IDX(ne, i0, i1, i2, i3)] = x * x; }
        run3(out, ref, 1e-6);
        free(ref);
    }
}

static void test_cpy(void) {
    int c;
    for (c = 0; c < 3 * n_cases; c++) {
        int64_t ne[4], i0, i1, i2, i3;
        tin a;
        tfu_tensor *dst, *dleaf, *out;
        double *ref;
        tfu_type dt = (tfu_type)(c % 3);
        int dk = c % 4;   /* 0,1 plain dst, 2: view into a larger tensor, 3: transposed dst */
        size_t l;
        begin_case(seed_base * 1000003u + 13000u + (uint64_t)c);
        rand_shape(ne, 40000, 1);
        if (dk >= 2) ne[2] = ne[3] = 1;
        if (!mk_in(&a, rand_ftype(), ne, rand_kind(), -3, 3)) { TT_CHECK(0, "input build failed"); continue; }
        if (dk == 2) {
            /* like a KV cache write: rows [r0, r0+ne1) of a cache with padded rows */
            int64_t r0 = tt_int(0, 5), pad = tt_int(0, 3);
            dleaf = tfu_new_tensor_2d(ctx, dt, ne[0] + pad, ne[1] + r0 + tt_int(0, 3));
            if (!dleaf) { TT_CHECK(0, "dst build failed"); continue; }
            tt_fill(dleaf, 5, 6);
            dst = tfu_view_2d(ctx, dleaf, ne[0], ne[1], dleaf->nb[1], (size_t)r0 * dleaf->nb[1]);
        } else if (dk == 3) {
            dleaf = tfu_new_tensor_2d(ctx, dt, ne[1], ne[0]);
            if (!dleaf) { TT_CHECK(0, "dst build failed"); continue; }
            tt_fill(dleaf, 5, 6);
            dst = tfu_transpose(ctx, dleaf);
        } else {
            dleaf = dst = new4(dt, ne);
            if (dst) tt_fill(dst, 5, 6);
        }
        if (!dst) { TT_CHECK(0, "dst build failed"); continue; }
        dstart("cpy"); dcat_in("a", &a);
        l = strlen(desc);
        snprintf(desc + l, sizeof desc - l, " dst=%s/%s", tyn(dt), dk == 2 ? "view" : dk == 3 ? "trans" : "plain");
        out = tfu_cpy(ctx, a.t, dst);
        if (!check_meta(out, ne, (int)dt, 0)) continue;
        ref = refbuf(ne);
        FOR4(ne) ref[IDX(ne, i0, i1, i2, i3)] = round_to(dt, inv(&a, i0, i1, i2, i3));
        run3(out, ref, 0);
        /* what the result shows is what dst holds */
        if (out->data) {
            float *o = tt_copy_out(out);
            int64_t bad = 0;
            FOR4(ne) if (o[IDX(ne, i0, i1, i2, i3)] != tfu_get_f32(dst, i0, i1, i2, i3)) bad++;
            TT_CHECK(bad == 0, "%s: %lld elements of the result differ from dst", desc, (long long)bad);
            free(o);
        }
        free(ref);
    }
}

/* ---- chains: fusion candidates, compared fused / unfused / reference -------------- */

static void test_chains(void) {
    int w, c;
    for (w = 0; w < 7; w++) for (c = 0; c < n_cases; c++) {
        int64_t ne[4], i0, i1, i2, i3, k;
        tfu_tensor *out = NULL;
        double *ref = NULL, tol = 1e-4;
        tin a, b, x;
        begin_case(seed_base * 1000003u + 14000u + 100u * (uint64_t)w + (uint64_t)c);
        rand_shape(ne, 20000, 1);
        if (w == 1 && c == 0) {   /* over 1 MiB: the group fetches ahead of its loop (TFU_X_PF_MIN) */
            ne[0] = 1000 + tt_int(0, 37); ne[1] = 120; ne[2] = ne[3] = 1;
        }
        if (w == 0) {
            /* rms_norm(x) * w : row op with an epilogue, w broadcast over rows */
            int64_t nw[4];
            float eps = 1e-5f;
            nw[0] = ne[0]; nw[1] = nw[2] = nw[3] = 1;
            if (!mk_in(&x, rand_ftype(), ne, rand_kind(), -2, 2) || !mk_in(&b, rand_ftype(), nw, IN_PLAIN, -2, 2)) { TT_CHECK(0, "chain %d: input build failed", w); continue; }
            dstart("chain mul(rms_norm(x),w)"); dcat_in("x", &x);
            out = tfu_mul(ctx, tfu_rms_norm(ctx, x.t, eps), b.t);
            if (!check_meta(out, ne, TFU_F32, 1)) continue;
            ref = refbuf(ne);
            for (i3 = 0; i3 < ne[3]; i3++) for (i2 = 0; i2 < ne[2]; i2++) for (i1 = 0; i1 < ne[1]; i1++) {
                double s2 = 0, d;
                for (i0 = 0; i0 < ne[0]; i0++) { double v = inv(&x, i0, i1, i2, i3); s2 += v * v; }
                d = 1.0 / sqrt(s2 / (double)ne[0] + eps);
                for (i0 = 0; i0 < ne[0]; i0++) ref[IDX(ne, i0, i1, i2, i3)] = inv(&x, i0, i1, i2, i3) * d * inv(&b, i0, 0, 0, 0);
            }
        } else if (w == 1) {
            /* gelu(a*s + b) with a second consumer of the sum: t = a*s+b; out = t * exp(-t^2) ... */
            float s = tt_rand(-2, 2);
            tfu_tensor *t;
            if (!mk_in(&a, rand_ftype(), ne, rand_kind(), -2, 2) || !mk_in(&b, rand_ftype(), ne, rand_kind(), -2, 2)) { TT_CHECK(0, "chain %d: input build failed", w); continue; }
            dstart("chain add(gelu(t),mul(t,sigmoid(t))), t=a*s+b"); dcat_in("a", &a); dcat_in("b", &b);
            t = tfu_add(ctx, tfu_scale(ctx, a.t, s), b.t);
            out = tfu_add(ctx, tfu_gelu(ctx, t), tfu_mul(ctx, t, tfu_sigmoid(ctx, t)));
            if (!check_meta(out, ne, TFU_F32, 1)) continue;
            ref = refbuf(ne);
            FOR4(ne) {
                double tv = inv(&a, i0, i1, i2, i3) * s + inv(&b, i0, i1, i2, i3);
                ref[IDX(ne, i0, i1, i2, i3)] = r_gelu(tv) + tv * r_sigmoid(tv);
            }
        } else if (w == 2) {
            /* add(mul_mat(W, x), bias) then silu : matmul with an epilogue */
            int64_t K = rdim(NSZ - 1), M = rdim(14), N = rdim(8), na[4], nx[4], no[4], nbias[4];
            na[0] = K; na[1] = M; na[2] = na[3] = 1;
            nx[0] = K; nx[1] = N; nx[2] = nx[3] = 1;
            no[0] = M; no[1] = N; no[2] = no[3] = 1;
            nbias[0] = M; nbias[1] = nbias[2] = nbias[3] = 1;
            if (!mk_in(&a, rand_ftype(), na, IN_PLAIN, -1, 1) || !mk_in(&x, TFU_F32, nx, IN_PLAIN, -1, 1) ||
                !mk_in(&b, TFU_F32, nbias, IN_PLAIN, -1, 1)) { TT_CHECK(0, "chain %d: input build failed", w); continue; }
            dstart("chain silu(add(mul_mat(W,x),bias))"); dcat_in("W", &a); dcat_in("x", &x);
            out = tfu_silu(ctx, tfu_add(ctx, tfu_mul_mat(ctx, a.t, x.t), b.t));
            if (!check_meta(out, no, TFU_F32, 1)) continue;
            ref = refbuf(no);
            for (i1 = 0; i1 < N; i1++) for (i0 = 0; i0 < M; i0++) {
                double s = 0;
                for (k = 0; k < K; k++) s += inv(&a, k, i0, 0, 0) * inv(&x, k, i1, 0, 0);
                ref[i0 + M * i1] = r_silu(s + inv(&b, i0, 0, 0, 0));
            }
            tol = 3e-6 * sqrt((double)K) + 1e-5;
        } else if (w == 3) {
            /* soft_max_ext(mul_mat(K, Q), causal, scale): attention scores */
            int64_t D = rdim(12), nkv = rdim(13), nq, H = tt_int(1, 3), nk[4], nqq[4], no[4];
            float scale = 1.0f / sqrtf((float)D);
            tfu_tensor *mask, *kq;
            nq = tt_int(1, (int)nkv);
            nk[0] = D; nk[1] = nkv; nk[2] = H; nk[3] = 1;
            nqq[0] = D; nqq[1] = nq; nqq[2] = H; nqq[3] = 1;
            no[0] = nkv; no[1] = nq; no[2] = H; no[3] = 1;
            if (!mk_in(&a, rand_ftype(), nk, IN_PLAIN, -2, 2) || !mk_in(&x, TFU_F32, nqq, tt_int(0, 1) ? IN_PLAIN : IN_PERM, -2, 2)) { TT_CHECK(0, "chain %d: input build failed", w); continue; }
            mask = tfu_causal_mask(ctx, nkv, nq);
            dstart("chain soft_max_ext(mul_mat(k,q),causal)"); dcat_in("k", &a); dcat_in("q", &x);
            kq = tfu_mul_mat(ctx, a.t, x.t);
            out = tfu_soft_max_ext(ctx, kq, mask, scale);
            if (!check_meta(out, no, TFU_F32, 1)) continue;
            ref = refbuf(no);
            for (i2 = 0; i2 < H; i2++) for (i1 = 0; i1 < nq; i1++) {
                double *r = ref + IDX(no, 0, i1, i2, 0), mx = -INFINITY, sum = 0;
                for (i0 = 0; i0 < nkv; i0++) {
                    double s = 0;
                    for (k = 0; k < D; k++) s += inv(&a, k, i0, i2, 0) * inv(&x, k, i1, i2, 0);
                    r[i0] = s * scale + (i0 <= i1 + (nkv - nq) ? 0.0 : -INFINITY);
                    if (r[i0] > mx) mx = r[i0];
                }
                for (i0 = 0; i0 < nkv; i0++) { r[i0] = exp(r[i0] - mx); sum += r[i0]; }
                for (i0 = 0; i0 < nkv; i0++) r[i0] /= sum;
            }
            tol = 3e-5;
        } else if (w == 4) {
            /* x + norm(x) * g + bias: residual with a row op in the middle */
            int64_t nw[4];
            float eps = 1e-5f;
            tfu_tensor *g;
            nw[0] = ne[0]; nw[1] = nw[2] = nw[3] = 1;
            if (!mk_in(&x, rand_ftype(), ne, rand_kind(), -2, 3) || !mk_in(&b, TFU_F32, nw, IN_PLAIN, -2, 2) ||
                !mk_in(&a, TFU_F32, nw, IN_PLAIN, -2, 2)) { TT_CHECK(0, "chain %d: input build failed", w); continue; }
            dstart("chain x+add(mul(norm(x),g),bias)"); dcat_in("x", &x);
            g = tfu_add(ctx, tfu_mul(ctx, tfu_norm(ctx, x.t, eps), a.t), b.t);
            out = tfu_add(ctx, x.t, g);
            if (!check_meta(out, ne, TFU_F32, 1)) continue;
            ref = refbuf(ne);
            for (i3 = 0; i3 < ne[3]; i3++) for (i2 = 0; i2 < ne[2]; i2++) for (i1 = 0; i1 < ne[1]; i1++) {
                double s = 0, s2 = 0, mean, d;
                for (i0 = 0; i0 < ne[0]; i0++) s += inv(&x, i0, i1, i2, i3);
                mean = s / (double)ne[0];
                for (i0 = 0; i0 < ne[0]; i0++) { double v = inv(&x, i0, i1, i2, i3) - mean; s2 += v * v; }
                d = 1.0 / sqrt(s2 / (double)ne[0] + eps);
                for (i0 = 0; i0 < ne[0]; i0++) {
                    double v = inv(&x, i0, i1, i2, i3);
                    ref[IDX(ne, i0, i1, i2, i3)] = v + (v - mean) * d * inv(&a, i0, 0, 0, 0) + inv(&b, i0, 0, 0, 0);
                }
            }
        } else if (w == 5) {
            /* swiglu_split(mul_mat(Wg,x), mul_mat(Wu,x)) then mul_mat(Wd, .): an MLP */
            int64_t E = rdim(13), F = rdim(12), N = rdim(8), nwg[4], nx[4], nwd[4], no[4];
            tin wg, wu, wd;
            double *h;
            nwg[0] = E; nwg[1] = F; nwg[2] = nwg[3] = 1;
            nx[0] = E; nx[1] = N; nx[2] = nx[3] = 1;
            nwd[0] = F; nwd[1] = E; nwd[2] = nwd[3] = 1;
            no[0] = E; no[1] = N; no[2] = no[3] = 1;
            if (!mk_in(&wg, rand_ftype(), nwg, IN_PLAIN, -1, 1) || !mk_in(&wu, rand_ftype(), nwg, IN_PLAIN, -1, 1) ||
                !mk_in(&wd, rand_ftype(), nwd, IN_PLAIN, -1, 1) || !mk_in(&x, TFU_F32, nx, IN_PLAIN, -1, 1)) { TT_CHECK(0, "chain %d: input build failed", w); continue; }
            dstart("chain mlp mul_mat(Wd,swiglu_split(mul_mat(Wg,x),mul_mat(Wu,x)))"); dcat_in("Wg", &wg); dcat_in("x", &x);
            out = tfu_mul_mat(ctx, wd.t, tfu_swiglu_split(ctx, tfu_mul_mat(ctx, wg.t, x.t), tfu_mul_mat(ctx, wu.t, x.t)));
            if (!check_meta(out, no, TFU_F32, 1)) continue;
            ref = refbuf(no);
            h = (double *)malloc((size_t)(F * N) * sizeof(double));
            for (i1 = 0; i1 < N; i1++) for (i0 = 0; i0 < F; i0++) {
                double sg = 0, su = 0;
                for (k = 0; k < E; k++) {
                    sg += inv(&wg, k, i0, 0, 0) * inv(&x, k, i1, 0, 0);
                    su += inv(&wu, k, i0, 0, 0) * inv(&x, k, i1, 0, 0);
                }
                h[i0 + F * i1] = r_silu(sg) * su;
            }
            for (i1 = 0; i1 < N; i1++) for (i0 = 0; i0 < E; i0++) {
                double s = 0;
                for (k = 0; k < F; k++) s += inv(&wd, k, i0, 0, 0) * h[k + F * i1];
                ref[i0 + E * i1] = s;
            }
            free(h);
            tol = 1e-5 * sqrt((double)(E + F)) + 1e-5;
        } else {
            /* rope(reshape(x)) then permute + cont: q path of attention */
            int64_t hd = 2 * tt_int(1, 16), H = tt_int(1, 4), T = rdim(8), nx[4], no[4];
            tfu_tensor *pos, *r;
            nx[0] = hd * H; nx[1] = T; nx[2] = nx[3] = 1;
            if (!mk_in(&x, TFU_F32, nx, IN_PLAIN, -2, 2)) { TT_CHECK(0, "chain %d: input build failed", w); continue; }
            pos = tfu_new_tensor_1d(ctx, TFU_I32, T);
            if (!pos || !pos->data) { TT_CHECK(0, "pos build failed"); continue; }
            for (i2 = 0; i2 < T; i2++) ((int32_t *)pos->data)[i2] = (int32_t)(i2 + 3);
            dstart("chain cont(permute(rope(reshape(x)),0,2,1,3))"); dcat_in("x", &x);
            r = tfu_rope(ctx, tfu_reshape_3d(ctx, x.t, hd, H, T), pos, (int)hd, TFU_ROPE_NEOX, 10000.0f);
            out = tfu_cont(ctx, tfu_permute(ctx, r, 0, 2, 1, 3));
            no[0] = hd; no[1] = T; no[2] = H; no[3] = 1;
            if (!check_meta(out, no, TFU_F32, 1)) continue;
            ref = refbuf(no);
            for (i2 = 0; i2 < T; i2++) for (i1 = 0; i1 < H; i1++) {   /* token i2, head i1 */
                double p = (double)(i2 + 3);
                for (i0 = 0; i0 < hd / 2; i0++) {
                    double th = p * pow(10000.0, -2.0 * (double)i0 / (double)hd);
                    double x0 = inv(&x, i0 + hd * i1, i2, 0, 0), x1 = inv(&x, i0 + hd / 2 + hd * i1, i2, 0, 0);
                    ref[IDX(no, i0, i2, i1, 0)] = x0 * cos(th) - x1 * sin(th);
                    ref[IDX(no, i0 + hd / 2, i2, i1, 0)] = x0 * sin(th) + x1 * cos(th);
                }
            }
        }
        if (out && ref) run3(out, ref, tol);
        free(ref);
    }
}

/* rope of one row in double: r[0..hd) from x[0..hd) */
static void ref_rope_row(const double *x, double *r, int64_t hd, int64_t nd, int neox, double pos, double base) {
    int64_t i;
    for (i = 0; i < hd; i++) r[i] = x[i];
    for (i = 0; i < nd / 2; i++) {
        double th = pos * pow(base, -2.0 * (double)i / (double)nd);
        int64_t j0 = neox ? i : 2 * i, j1 = neox ? i + nd / 2 : 2 * i + 1;
        r[j0] = x[j0] * cos(th) - x[j1] * sin(th);
        r[j1] = x[j0] * sin(th) + x[j1] * cos(th);
    }
}

/* more chains: views of computed values, copies inside graphs, computed
   indices, row ops after row ops, matmul epilogues with odd operands */
static void test_chains2(void) {
    int w, c;
    for (w = 0; w < 10; w++) for (c = 0; c < n_cases; c++) {
        int64_t ne[4], i0, i1, i2, i3, k;
        tfu_tensor *out = NULL;
        double *ref = NULL, tol = 1e-5;
        tin a, b, x;
        begin_case(seed_base * 1000003u + 16000u + 100u * (uint64_t)w + (uint64_t)c);
        rand_shape(ne, 20000, 1);
        if (w == 0) {
            /* cont(transpose(exp(x))) and add(view_2d(sqr(x), rows r0..), y): views of computed values */
            int64_t n2[4], r0, nr;
            tfu_tensor *e, *q, *sv;
            ne[2] = ne[3] = 1;
            if (ne[1] < 2) ne[1] = 3;
            r0 = tt_int(0, (int)ne[1] - 1); nr = tt_int(1, (int)(ne[1] - r0));
            if (!mk_in(&x, rand_ftype(), ne, rand_kind(), -2, 2)) { TT_CHECK(0, "chain2 %d: input build failed", w); continue; }
            n2[0] = ne[1]; n2[1] = ne[0]; n2[2] = n2[3] = 1;
            if (!mk_in(&b, TFU_F32, n2, IN_PLAIN, -2, 2)) { TT_CHECK(0, "chain2 %d: input build failed", w); continue; }
            dstart("chain2 add(cont(transpose(exp(x))),y)+view"); dcat_in("x", &x); dcat("r0", (double)r0); dcat("nr", (double)nr);
            e = tfu_exp(ctx, x.t);
            q = tfu_add(ctx, tfu_cont(ctx, tfu_transpose(ctx, e)), b.t);          /* ne1 x ne0 */
            sv = tfu_sqr(ctx, x.t);
            sv = sv ? tfu_view_2d(ctx, sv, ne[0], nr, sv->nb[1], (size_t)r0 * sv->nb[1]) : NULL;
            /* out = q^T restricted to rows r0.. plus the view: shape ne0 x nr */
            out = q ? tfu_add(ctx, tfu_cont(ctx, tfu_view_2d(ctx, tfu_cont(ctx, tfu_transpose(ctx, q)), ne[0], nr, (size_t)ne[0] * 4, (size_t)r0 * (size_t)ne[0] * 4)), sv) : NULL;
            n2[0] = ne[0]; n2[1] = nr;
            if (!check_meta(out, n2, TFU_F32, 1)) continue;
            ref = refbuf(n2);
            for (i1 = 0; i1 < nr; i1++) for (i0 = 0; i0 < ne[0]; i0++) {
                double xv = inv(&x, i0, i1 + r0, 0, 0);
                ref[i0 + ne[0] * i1] = exp(xv) + inv(&b, i1 + r0, i0, 0, 0) + xv * xv;
            }
            tol = 1e-4;
        } else if (w == 1) {
            /* get_rows(emb, argmax(logits)): a computed index */
            int64_t V = rdim(14), R = rdim(10), E = rdim(NSZ - 1), nl[4], nemb[4], no[4];
            tfu_tensor *am;
            nl[0] = V; nl[1] = R; nl[2] = nl[3] = 1;
            nemb[0] = E; nemb[1] = V; nemb[2] = nemb[3] = 1;
            if (!mk_in(&x, TFU_F32, nl, IN_PLAIN, -2, 2) || !mk_in(&a, rand_ftype(), nemb, IN_PLAIN, -3, 3)) { TT_CHECK(0, "chain2 %d: input build failed", w); continue; }
            for (i1 = 0; i1 < R; i1++) tfu_set_f32(x.leaf, tt_int(0, (int)V - 1), i1, 0, 0, 5.0f);
            dstart("chain2 get_rows(emb,argmax(scale(logits)))"); dcat_in("logits", &x); dcat_in("emb", &a);
            am = tfu_argmax(ctx, tfu_scale(ctx, x.t, 0.5f));
            out = tfu_get_rows(ctx, a.t, am);
            no[0] = E; no[1] = 1; no[2] = R; no[3] = 1;
            if (!check_meta(out, no, TFU_F32, 1)) continue;
            ref = refbuf(no);
            for (i1 = 0; i1 < R; i1++) {
                int64_t best = 0;
                for (i0 = 1; i0 < V; i0++) if (inv(&x, i0, i1, 0, 0) > inv(&x, best, i1, 0, 0)) best = i0;
                for (i0 = 0; i0 < E; i0++) ref[i0 + E * i1] = inv(&a, i0, best, 0, 0);
            }
            tol = 0;
        } else if (w == 2) {
            /* exp(cpy(mul(a,b), dst)) with dst f16/bf16: the reader sees the stored values */
            tfu_type dt = c % 2 ? TFU_F16 : TFU_BF16;
            tfu_tensor *dst, *cp;
            if (!mk_in(&a, rand_ftype(), ne, rand_kind(), -1.5f, 1.5f) || !mk_in(&b, TFU_F32, ne, rand_kind(), -1.5f, 1.5f)) { TT_CHECK(0, "chain2 %d: input build failed", w); continue; }
            dst = new4(dt, ne);
            if (!dst) { TT_CHECK(0, "dst build failed"); continue; }
            tt_fill(dst, 7, 8);
            extra_poison[n_extra_poison++] = dst;
            dstart("chain2 exp(cpy(mul(a,b),dst))"); dcat_in("a", &a); dcat_in("b", &b);
            { size_t l = strlen(desc); snprintf(desc + l, sizeof desc - l, " dst=%s", tyn(dt)); }
            cp = tfu_cpy(ctx, tfu_mul(ctx, a.t, b.t), dst);
            out = tfu_exp(ctx, cp);
            if (!check_meta(out, ne, TFU_F32, 1)) continue;
            ref = refbuf(ne);
            FOR4(ne) ref[IDX(ne, i0, i1, i2, i3)] = exp(round_to(dt, (double)(float)(inv(&a, i0, i1, i2, i3) * inv(&b, i0, i1, i2, i3))));
            tol = 1e-5;
        } else if (w == 3) {
            /* kq = mul_mat(permute(rope(k)), permute(rope(q))): a product of computed, permuted views */
            int64_t hd = 2 * tt_int(1, 12), H = tt_int(1, 3), T = rdim(9), nk[4], no[4], h, t1, t2;
            tfu_tensor *pos, *rk, *rq;
            double *rkd, *rqd, *tmp;
            int neox = tt_int(0, 1);
            nk[0] = hd; nk[1] = H; nk[2] = T; nk[3] = 1;
            if (!mk_in(&a, TFU_F32, nk, IN_PLAIN, -1, 1) || !mk_in(&x, TFU_F32, nk, c % 2 ? IN_PLAIN : IN_PAD, -1, 1)) { TT_CHECK(0, "chain2 %d: input build failed", w); continue; }
            pos = tfu_new_tensor_1d(ctx, TFU_I32, T);
            if (!pos || !pos->data) { TT_CHECK(0, "pos build failed"); continue; }
            for (t1 = 0; t1 < T; t1++) ((int32_t *)pos->data)[t1] = (int32_t)(t1 * 2 + 1);
            dstart("chain2 mul_mat(permute(rope(k)),permute(rope(q)))"); dcat_in("k", &a); dcat_in("q", &x); dcat("neox", neox);
            rk = tfu_rope(ctx, a.t, pos, (int)hd, neox ? TFU_ROPE_NEOX : TFU_ROPE_NORMAL, 10000.0f);
            rq = tfu_rope(ctx, x.t, pos, (int)hd, neox ? TFU_ROPE_NEOX : TFU_ROPE_NORMAL, 10000.0f);
            out = tfu_mul_mat(ctx, tfu_permute(ctx, rk, 0, 2, 1, 3), tfu_permute(ctx, rq, 0, 2, 1, 3));
            no[0] = T; no[1] = T; no[2] = H; no[3] = 1;
            if (!check_meta(out, no, TFU_F32, 1)) continue;
            ref = refbuf(no);
            rkd = (double *)malloc(sizeof(double) * (size_t)(hd * H * T));
            rqd = (double *)malloc(sizeof(double) * (size_t)(hd * H * T));
            tmp = (double *)malloc(sizeof(double) * (size_t)hd);
            for (t1 = 0; t1 < T; t1++) for (h = 0; h < H; h++) {
                for (i0 = 0; i0 < hd; i0++) tmp[i0] = inv(&a, i0, h, t1, 0);
                ref_rope_row(tmp, rkd + hd * (h + H * t1), hd, hd, neox, (double)(t1 * 2 + 1), 10000.0);
                for (i0 = 0; i0 < hd; i0++) tmp[i0] = inv(&x, i0, h, t1, 0);
                ref_rope_row(tmp, rqd + hd * (h + H * t1), hd, hd, neox, (double)(t1 * 2 + 1), 10000.0);
            }
            for (h = 0; h < H; h++) for (t2 = 0; t2 < T; t2++) for (t1 = 0; t1 < T; t1++) {
                double sum = 0;   /* out[t2][t1] (i0 = t1 over k tokens, i1 = t2 over q tokens) */
                for (k = 0; k < hd; k++) sum += rkd[k + hd * (h + H * t1)] * rqd[k + hd * (h + H * t2)];
                ref[IDX(no, t1, t2, h, 0)] = sum;
            }
            free(rkd); free(rqd); free(tmp);
            tol = 1e-4;
        } else if (w == 4) {
            /* soft_max(rms_norm(add(x,y))): row after row, with a prologue */
            if (!mk_in(&x, rand_ftype(), ne, rand_kind(), -2, 2) || !mk_in(&b, rand_ftype(), ne, rand_kind(), -2, 2)) { TT_CHECK(0, "chain2 %d: input build failed", w); continue; }
            dstart("chain2 soft_max(rms_norm(add(x,y)))"); dcat_in("x", &x); dcat_in("y", &b);
            out = tfu_soft_max(ctx, tfu_rms_norm(ctx, tfu_add(ctx, x.t, b.t), 1e-6f));
            if (!check_meta(out, ne, TFU_F32, 1)) continue;
            ref = refbuf(ne);
            for (i3 = 0; i3 < ne[3]; i3++) for (i2 = 0; i2 < ne[2]; i2++) for (i1 = 0; i1 < ne[1]; i1++) {
                double s2 = 0, d, mx = -INFINITY, sum = 0, *r = ref + IDX(ne, 0, i1, i2, i3);
                for (i0 = 0; i0 < ne[0]; i0++) { r[i0] = (double)(float)(inv(&x, i0, i1, i2, i3) + inv(&b, i0, i1, i2, i3)); s2 += r[i0] * r[i0]; }
                d = 1.0 / sqrt(s2 / (double)ne[0] + 1e-6);
                for (i0 = 0; i0 < ne[0]; i0++) { r[i0] *= d; if (r[i0] > mx) mx = r[i0]; }
                for (i0 = 0; i0 < ne[0]; i0++) { r[i0] = exp(r[i0] - mx); sum += r[i0]; }
                for (i0 = 0; i0 < ne[0]; i0++) r[i0] /= sum;
            }
        } else if (w == 5) {
            /* scale(concat(exp(a), sqr(b), d)) */
            int d = tt_int(0, 3), i;
            int64_t nb_[4], no[4], j[4];
            for (i = 0; i < 4; i++) nb_[i] = no[i] = ne[i];
            nb_[d] = rdim(6); no[d] = ne[d] + nb_[d];
            if (!mk_in(&a, rand_ftype(), ne, rand_kind(), -2, 2) || !mk_in(&b, rand_ftype(), nb_, rand_kind(), -2, 2)) { TT_CHECK(0, "chain2 %d: input build failed", w); continue; }
            dstart("chain2 scale(concat(exp(a),sqr(b)))"); dcat("dim", d); dcat_in("a", &a); dcat_in("b", &b);
            out = tfu_scale(ctx, tfu_concat(ctx, tfu_exp(ctx, a.t), tfu_sqr(ctx, b.t), d), 0.75f);
            if (!check_meta(out, no, TFU_F32, 1)) continue;
            ref = refbuf(no);
            FOR4(no) {
                j[0] = i0; j[1] = i1; j[2] = i2; j[3] = i3;
                if (j[d] < ne[d]) ref[IDX(no, i0, i1, i2, i3)] = 0.75 * exp(inv(&a, i0, i1, i2, i3));
                else { double v; j[d] -= ne[d]; v = inv(&b, j[0], j[1], j[2], j[3]); ref[IDX(no, i0, i1, i2, i3)] = 0.75 * v * v; }
            }
            tol = 1e-5;
        } else if (w == 6) {
            /* mul(add(mul_mat(W,x), transpose(y)), s) with s of shape 1 x N: matmul epilogue with a
               strided operand and a per-row broadcast */
            int64_t K = rdim(NSZ - 1), M = rdim(14), N = rdim(10), na[4], nx[4], ny[4], ns[4], no[4];
            tin y, sc;
            na[0] = K; na[1] = M; na[2] = na[3] = 1;
            nx[0] = K; nx[1] = N; nx[2] = nx[3] = 1;
            ny[0] = M; ny[1] = N; ny[2] = ny[3] = 1;
            ns[0] = 1; ns[1] = N; ns[2] = ns[3] = 1;
            no[0] = M; no[1] = N; no[2] = no[3] = 1;
            if (!mk_in(&a, rand_ftype(), na, IN_PLAIN, -1, 1) || !mk_in(&x, TFU_F32, nx, rand_kind(), -1, 1) ||
                !mk_in(&y, rand_ftype(), ny, IN_TRANS, -1, 1) || !mk_in(&sc, TFU_F32, ns, IN_PLAIN, -2, 2)) { TT_CHECK(0, "chain2 %d: input build failed", w); continue; }
            dstart("chain2 mul(add(mul_mat(W,x),transpose(y)),s)"); dcat_in("W", &a); dcat_in("x", &x);
            out = tfu_mul(ctx, tfu_add(ctx, tfu_mul_mat(ctx, a.t, x.t), y.t), sc.t);
            if (!check_meta(out, no, TFU_F32, 1)) continue;
            ref = refbuf(no);
            for (i1 = 0; i1 < N; i1++) for (i0 = 0; i0 < M; i0++) {
                double s = 0;
                for (k = 0; k < K; k++) s += inv(&a, k, i0, 0, 0) * inv(&x, k, i1, 0, 0);
                ref[i0 + M * i1] = (s + inv(&y, i0, i1, 0, 0)) * inv(&sc, 0, i1, 0, 0);
            }
            tol = 6e-6 * sqrt((double)K) + 1e-5;
        } else if (w == 9) {
            /* one tensor as both operands: glu_split(y, y) with y = mul(x, x); mul_mat(x, x) */
            if (c % 2) {
                if (!mk_in(&x, rand_ftype(), ne, rand_kind(), -2, 2)) { TT_CHECK(0, "chain2 %d: input build failed", w); continue; }
                dstart("chain2 glu_split(y,y), y=mul(x,x)"); dcat_in("x", &x);
                {
                    tfu_tensor *y = tfu_mul(ctx, x.t, x.t);
                    out = tfu_glu_split(ctx, y, y, TFU_GLU_SWIGLU);
                }
                if (!check_meta(out, ne, TFU_F32, 1)) continue;
                ref = refbuf(ne);
                FOR4(ne) { double v = inv(&x, i0, i1, i2, i3), y = (double)(float)(v * v); ref[IDX(ne, i0, i1, i2, i3)] = r_silu(y) * y; }
                tol = 1e-5;
            } else {
                int64_t no[4];
                ne[2] = ne[3] = 1;
                if (ne[1] > 65) ne[1] = 65;
                if (!mk_in(&x, TFU_F32, ne, rand_kind(), -1, 1)) { TT_CHECK(0, "chain2 %d: input build failed", w); continue; }
                dstart("chain2 mul_mat(x,x)"); dcat_in("x", &x);
                out = tfu_mul_mat(ctx, x.t, x.t);
                no[0] = ne[1]; no[1] = ne[1]; no[2] = no[3] = 1;
                if (!check_meta(out, no, TFU_F32, 1)) continue;
                ref = refbuf(no);
                for (i1 = 0; i1 < ne[1]; i1++) for (i0 = 0; i0 < ne[1]; i0++) {
                    double sum = 0;
                    for (k = 0; k < ne[0]; k++) sum += inv(&x, k, i0, 0, 0) * inv(&x, k, i1, 0, 0);
                    ref[i0 + ne[1] * i1] = sum;
                }
                tol = 3e-6 * sqrt((double)ne[0]) + 1e-6;
            }
        } else if (w == 8) {
            /* add(e, mul_mat(W, e)), e = exp(x) or rms_norm(x): e feeds the product and its
               epilogue, so e cannot join the product's group (that would be a cycle) */
            int64_t K = rdim(13), N = rdim(10), nw[4], nx[4];
            tfu_tensor *e;
            double *ev;
            int norm = c % 2;
            nw[0] = K; nw[1] = K; nw[2] = nw[3] = 1;
            nx[0] = K; nx[1] = N; nx[2] = nx[3] = 1;
            if (!mk_in(&a, rand_ftype(), nw, IN_PLAIN, -1, 1) || !mk_in(&x, rand_ftype(), nx, rand_kind(), -1, 1)) { TT_CHECK(0, "chain2 %d: input build failed", w); continue; }
            dstart(norm ? "chain2 add(e,mul_mat(W,e)), e=rms_norm(x)" : "chain2 add(e,mul_mat(W,e)), e=exp(x)"); dcat_in("W", &a); dcat_in("x", &x);
            e = norm ? tfu_rms_norm(ctx, x.t, 1e-5f) : tfu_exp(ctx, x.t);
            out = tfu_add(ctx, e, tfu_mul_mat(ctx, a.t, e));
            if (!check_meta(out, nx, TFU_F32, 1)) continue;
            ref = refbuf(nx);
            ev = (double *)malloc(sizeof(double) * (size_t)(K * N));
            for (i1 = 0; i1 < N; i1++) {
                double s2 = 0, d = 1;
                for (i0 = 0; i0 < K; i0++) { double v = inv(&x, i0, i1, 0, 0); s2 += v * v; }
                if (norm) d = 1.0 / sqrt(s2 / (double)K + 1e-5);
                for (i0 = 0; i0 < K; i0++) { double v = inv(&x, i0, i1, 0, 0); ev[i0 + K * i1] = norm ? v * d : exp(v); }
            }
            for (i1 = 0; i1 < N; i1++) for (i0 = 0; i0 < K; i0++) {
                double sum = 0;
                for (k = 0; k < K; k++) sum += inv(&a, k, i0, 0, 0) * ev[k + K * i1];
                ref[i0 + K * i1] = ev[i0 + K * i1] + sum;
            }
            free(ev);
            tol = 1e-5 * sqrt((double)K) + 1e-5;
        } else {
            /* swiglu(exp-scaled x) then mul: a fused-row GLU of a computed value, consumed in a chain */
            int64_t ng[4];
            tfu_tensor *h;
            ng[0] = 2 * ne[0]; ng[1] = ne[1]; ng[2] = ne[2]; ng[3] = ne[3];
            if (!mk_in(&x, rand_ftype(), ng, rand_kind(), -2, 2) || !mk_in(&b, rand_ftype(), ne, rand_kind(), -2, 2)) { TT_CHECK(0, "chain2 %d: input build failed", w); continue; }
            dstart("chain2 mul(glu(scale(x)),y)"); dcat_in("x", &x); dcat_in("y", &b);
            h = tfu_glu(ctx, tfu_scale(ctx, x.t, 1.5f), TFU_GLU_SWIGLU, c % 2);
            out = tfu_mul(ctx, h, b.t);
            if (!check_meta(out, ne, TFU_F32, 1)) continue;
            ref = refbuf(ne);
            FOR4(ne) {
                double g = 1.5 * inv(&x, i0 + (c % 2 ? ne[0] : 0), i1, i2, i3), v = 1.5 * inv(&x, i0 + (c % 2 ? 0 : ne[0]), i1, i2, i3);
                ref[IDX(ne, i0, i1, i2, i3)] = r_silu(g) * v * inv(&b, i0, i1, i2, i3);
            }
            tol = 1e-4;
        }
        if (out && ref) run3(out, ref, tol);
        free(ref);
    }
}

/* a sum of n products mul_mat(W_i, x_i): every product is a producer the
   adds may take into one matmul group, so one group can hold many of them */
static void test_many_matmuls(void) {
    static const int counts[] = { 2, 3, 7, 8, 9, 12, 17 };
    int c;
    for (c = 0; c < (int)(sizeof counts / sizeof counts[0]); c++) {
        int nmm = counts[c], i;
        int64_t K = rdim(12), M = rdim(14), N = rdim(10), na[4], nx[4], no[4], i0, i1, k;
        tin w[17], x[17];
        tfu_tensor *acc = NULL;
        double *ref;
        int ok = 1;
        begin_case(seed_base * 1000003u + 17000u + (uint64_t)c);
        na[0] = K; na[1] = M; na[2] = na[3] = 1;
        nx[0] = K; nx[1] = N; nx[2] = nx[3] = 1;
        no[0] = M; no[1] = N; no[2] = no[3] = 1;
        for (i = 0; i < nmm && ok; i++) {
            ok = mk_in(&w[i], rand_ftype(), na, IN_PLAIN, -1, 1) && mk_in(&x[i], TFU_F32, nx, i % 2 ? IN_PLAIN : rand_kind(), -1, 1);
            if (ok) { tfu_tensor *mm = tfu_mul_mat(ctx, w[i].t, x[i].t); acc = acc ? tfu_add(ctx, acc, mm) : mm; }
        }
        if (!ok) { TT_CHECK(0, "input build failed"); continue; }
        dstart("sum of mul_mats"); dcat("n", nmm); dcat("K", (double)K); dcat("M", (double)M); dcat("N", (double)N);
        if (!check_meta(acc, no, TFU_F32, 1)) continue;
        ref = refbuf(no);
        for (i1 = 0; i1 < N; i1++) for (i0 = 0; i0 < M; i0++) {
            double s = 0;
            for (i = 0; i < nmm; i++) for (k = 0; k < K; k++) s += inv(&w[i], k, i0, 0, 0) * inv(&x[i], k, i1, 0, 0);
            ref[i0 + M * i1] = s;
        }
        fflush(stdout);   /* a crash here must not lose what was printed */
        run3(acc, ref, 3e-6 * sqrt((double)(K * nmm)) + 1e-5);
        free(ref);
    }
}

int main(int argc, char **argv) {
    seed_base = (uint64_t)tt_arg_int(argc, argv, "--seed", 1);
    n_cases = tt_arg_int(argc, argv, "--n", 32);
    tt_verbose = tt_arg_int(argc, argv, "--verbose", 0);
    ctx = tfu_init_malloc(CTX_BYTES, 0);
    if (!ctx) { printf("cannot create a context\n"); tt_failed++; return tt_summary(); }

    test_unary();
    test_extremes();
    test_scale_clamp();
    test_binary();
    test_glu();
    test_norms();
    test_softmax();
    test_softmax_prologue();
    test_causal_mask();
    test_reductions();
    test_mul_mat();
    test_get_rows();
    test_rope();
    test_rope_far();
    test_concat();
    test_cont();
    test_cpy();
    test_chains();
    test_chains2();
    test_many_matmuls();

    tfu_free(ctx);
    return tt_summary();
}
