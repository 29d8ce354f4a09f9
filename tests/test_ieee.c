/* test_ieee.c - NaN, infinities, huge and tiny values through every op.

   The rule: NaN in, NaN out; infinities, overflow and underflow exactly as
   the double-precision reference executor gives them, whatever position an
   element has in its row (SIMD body or scalar tail) and whichever path
   computes it. Every case builds rows of a length around the vector widths
   (1..67, and one long row of 1031) in seven flavours, one per row:
     plain   random values only
     nan     NaN at one to three positions (first, last or anywhere)
     +inf    +inf likewise
     -inf    -inf likewise
     huge    1e20 or 3e38 (either sign) likewise, or every value about 1e20,
             or every value 3e4 plus a random one (large logits)
     tiny    every value about 1e-30 (their squares underflow f32)
     mix     a quarter of the values NaN, +-inf, huge or tiny
   and runs the graph five ways: the reference executor, a fused plan, an
   unfused plan, a fused plan on two threads and a plan compiled with the
   SIMD kernels off (TFU_NO_SIMD=1 while it compiles). Outputs are poisoned
   before each run and compared with a double reference computed here,
   NaN-aware (tt_ieee_mismatches): NaN expected <=> NaN got, infinities
   equal, finite values within the op's tolerance. Lengths divisible by 3
   feed the op through an element-wise producer, lengths 1 mod 3 add an
   element-wise consumer, so fused prologues and epilogues see the values
   too. Inputs are f32, f16 or bf16 at random. The no-SIMD plans come from
   options.no_simd and from TFU_NO_SIMD=1 in turns. Last, test_simd_per_plan:
   the kernel set is a property of each plan.

   Usage: test_ieee [--seed S] [--verbose 1] */
#define _POSIX_C_SOURCE 200112L   /* setenv */
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include "tfu_test.h"
#include <float.h>

#define CTX_BYTES ((size_t)64 << 20)
#define LONG_N 1031
#define MAX_SHOWN 40

enum { FL_PLAIN, FL_NAN, FL_PINF, FL_NINF, FL_HUGE, FL_TINY, FL_MIX, FL_COUNT };
static const char *fl_name[FL_COUNT] = { "plain", "nan", "+inf", "-inf", "huge", "tiny", "mix" };

static tfu_context *ctx;
static char desc[256];
static uint64_t seed_base = 1;
static int n_shown;
static int row_fl0;   /* flavour of the first input row (mul_mat: of B) */

/* ---- inputs -------------------------------------------------------------- */

static float special(void) {
    static const float S[9] = { NAN, INFINITY, -INFINITY, 1e20f, -1e20f, 3e38f, -3e38f, 1e-30f, -1e-30f };
    return S[tt_int(0, 8)];
}

static float huge_val(void) {
    static const float H[4] = { 1e20f, -1e20f, 3e38f, -3e38f };
    return H[tt_int(0, 3)];
}

static float signed_rand(float lo, float hi) {
    float v = tt_rand(lo, hi);
    return tt_int(0, 1) ? v : -v;
}

/* a position in a row of n: the first (in the SIMD body once n reaches the
   vector width), the last (in the scalar tail unless n is a multiple of
   it) or any */
static int64_t pick_pos(int64_t n) {
    int r = tt_int(0, 2);
    if (r == 0) return 0;
    if (r == 1) return n - 1;
    return tt_int(0, (int)n - 1);
}

/* row r of t (dims 1..3 flattened) gets flavour (r + fl0) % FL_COUNT:
   random values in [lo, hi], then the flavour's specials */
static void fill(tfu_tensor *t, float lo, float hi, int fl0) {
    int64_t n = t->ne[0], rows = tfu_nrows(t), r, i;
    for (r = 0; r < rows; r++) {
        int64_t i1 = r % t->ne[1], i2 = (r / t->ne[1]) % t->ne[2], i3 = r / (t->ne[1] * t->ne[2]);
        int fl = (int)((r + fl0) % FL_COUNT), k, nk = tt_int(1, 3);
        int all_huge = fl == FL_HUGE ? tt_int(0, 2) : 0;   /* 1: all about 1e20, 2: all 3e4 + [lo, hi] */
        for (i = 0; i < n; i++) {
            float v = tt_rand(lo, hi);
            if (fl == FL_TINY) v = signed_rand(1e-30f, 2e-30f);
            if (all_huge == 1) v = signed_rand(0.5e20f, 2e20f);
            if (all_huge == 2) v += 3e4f;
            if (fl == FL_MIX && tt_int(0, 3) == 0) v = special();
            tfu_set_f32(t, i, i1, i2, i3, v);
        }
        if (fl == FL_PLAIN || fl == FL_TINY || fl == FL_MIX || all_huge) continue;
        for (k = 0; k < nk; k++) {
            float v = fl == FL_NAN ? NAN : fl == FL_PINF ? INFINITY : fl == FL_NINF ? -INFINITY : huge_val();
            tfu_set_f32(t, pick_pos(n), i1, i2, i3, v);
        }
    }
}

static tfu_type rand_type(void) {
    int r = tt_int(0, 3);
    return r < 2 ? TFU_F32 : r == 2 ? TFU_F16 : TFU_BF16;
}

static double *dalloc(int64_t n) { return (double *)calloc((size_t)n, sizeof(double)); }

/* t's values as stored (after rounding to its type), ne0 fastest */
static double *values(const tfu_tensor *t) {
    double *v = dalloc(tfu_nelements(t));
    int64_t i0, i1, i2, i3, k = 0;
    for (i3 = 0; i3 < t->ne[3]; i3++) for (i2 = 0; i2 < t->ne[2]; i2++)
    for (i1 = 0; i1 < t->ne[1]; i1++) for (i0 = 0; i0 < t->ne[0]; i0++) v[k++] = tfu_get_f32(t, i0, i1, i2, i3);
    return v;
}

/* a double result as an f32 result holds it: rounded, overflowing to inf
   from the midpoint between FLT_MAX and 2^128 */
static double f32r(double r) {
    if (fabs(r) >= 3.4028235677973366e38) return r > 0 ? INFINITY : -INFINITY;
    return (double)(float)r;
}

static double rel(double want, double rtol) { return rtol * (fabs(want) > 1.0 ? fabs(want) : 1.0); }

/* n % 3 == 0: the op reads a computed value (a producer the planner can fuse
   in front); x*1 + 0 is x (but for the sign of zero) */
static tfu_tensor *pro(tfu_tensor *a, int64_t n) { return n % 3 == 0 ? tfu_scale(ctx, a, 1.0f) : a; }
/* n % 3 == 1: an element-wise consumer behind the op (a fused epilogue) */
static tfu_tensor *epi(tfu_tensor *t, int64_t n) { return n % 3 == 1 ? tfu_scale(ctx, t, 1.0f) : t; }

static void begin(const char *op, int64_t n, uint64_t salt) {
    tt_seed(seed_base * 1000003u + salt * 4096u + (uint64_t)n);
    tfu_reset(ctx);
    tfu_clear_error(ctx);
    row_fl0 = 0;
    snprintf(desc, sizeof desc, "[seed %llu] %s n=%lld", (unsigned long long)seed_base, op, (long long)n);
}

/* appends " name=v" to the case's description */
static void desc_num(const char *name, double v) {
    size_t l = strlen(desc);
    snprintf(desc + l, sizeof desc - l, " %s=%g", name, v);
}

/* ok, or a failure: an input could not be built */
static int inputs_ok(int ok) {
    if (!ok) TT_CHECK(0, "%s: input build failed", desc);
    return ok;
}

/* ---- running ------------------------------------------------------------- */

static void check(const char *how, tfu_tensor *out, const double *want, const double *tol) {
    int64_t first, bad = tt_ieee_mismatches(out, want, tol, &first);
    TT_CHECK(bad == 0, "%s [%s]: %lld of %lld values differ", desc, how, (long long)bad, (long long)tfu_nelements(out));
    if (bad && n_shown++ < MAX_SHOWN) {
        int64_t i0 = first % out->ne[0], r = first / out->ne[0];
        printf("  first at column %lld of row %lld (%s): got %.9g, want %.9g (tol %.3g)\n", (long long)i0, (long long)r,
               fl_name[(r + row_fl0) % FL_COUNT], tfu_get_f32(out, i0, r % out->ne[1], (r / out->ne[1]) % out->ne[2],
               r / (out->ne[1] * out->ne[2])), want[first], tol[first]);
    }
    if (tt_verbose && !bad) printf("ok %s [%s]\n", desc, how);
}

/* compiles g; env_no_simd: with TFU_NO_SIMD=1 in the environment while it
   compiles (and only then) */
static tfu_plan *compile(tfu_graph *g, const tfu_plan_options *o, int env_no_simd) {
    tfu_plan *p;
    int had = getenv("TFU_NO_SIMD") != NULL;
    if (env_no_simd && !had) setenv("TFU_NO_SIMD", "1", 1);
    p = tfu_plan_compile(g, o);
    if (env_no_simd && !had) unsetenv("TFU_NO_SIMD");
    return p;
}

/* out's graph five ways, each compared with want (contiguous, out's shape);
   the SIMD kernels are switched off by the option and by the environment in
   turns */
static void run_all(tfu_tensor *out, const double *want, const double *tol) {
    static const char *hows[5] = { "ref", "fused", "unfused", "2 threads", "no SIMD" };
    static int by_env;
    tfu_graph *g;
    tfu_result r;
    int v;
    TT_CHECK(out != NULL, "%s: builder returned NULL (%s)", desc, tfu_last_error_msg(ctx));
    if (!out) return;
    g = tfu_graph_build(ctx, out);
    TT_CHECK(g != NULL, "%s: graph_build failed (%s)", desc, tfu_last_error_msg(ctx));
    if (!g) return;
    r = tfu_graph_compute_ref(g);
    if (r == TFU_OK) {
        tt_poison(out->data, tfu_nbytes(out));
        r = tfu_graph_compute_ref(g);
    }
    TT_CHECK(r == TFU_OK, "%s [ref]: %s", desc, tfu_result_str(r));
    if (r == TFU_OK) check(hows[0], out, want, tol);
    for (v = 1; v < 5; v++) {
        tfu_plan_options o = tfu_plan_default_options();
        tfu_plan *p;
        if (v == 2) o.no_fusion = 1;
        if (v == 3) o.n_threads = 2;
        if (v == 4) by_env = !by_env;
        if (v == 4 && !by_env) o.no_simd = 1;
        p = compile(g, &o, v == 4 && by_env);
        TT_CHECK(p != NULL, "%s [%s]: compile failed (%s)", desc, hows[v], tfu_last_error_msg(ctx));
        if (!p) continue;
        tt_poison(out->data, tfu_nbytes(out));
        r = tfu_plan_run(p);
        TT_CHECK(r == TFU_OK, "%s [%s]: run -> %s", desc, hows[v], tfu_result_str(r));
        if (r == TFU_OK) check(hows[v], out, want, tol);
        tfu_plan_free(p);
    }
}

/* ---- double references (the library's definitions, evaluated in IEEE
   double: an infinity times zero is NaN, as the reference executor has it) */

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }
/* 0.5 (1 + tanh z) as 1 / (1 + e^-2z) and 1 + erf u as erfc(-u): in double,
   1 + tanh z and 1 + erf u cancel below x = -7, where the tail cases look */
static double gelu(double x) { return x / (1.0 + exp(-2.0 * 0.7978845608028654 * (x + 0.044715 * x * x * x))); }
static double gelu_erf(double x) { return 0.5 * x * erfc(x * -0.7071067811865476); }
static double relu(double x) { return x < 0 ? 0 : x; }   /* NaN stays NaN */

static double u_apply(tfu_op op, double x, double p0, double p1) {
    switch (op) {
    case TFU_OP_SCALE: return x * p0 + p1;
    case TFU_OP_CLAMP: return x < p0 ? p0 : x > p1 ? p1 : x;
    case TFU_OP_NEG: return -x;
    case TFU_OP_ABS: return fabs(x);
    case TFU_OP_SQR: return x * x;
    case TFU_OP_SQRT: return sqrt(x);
    case TFU_OP_EXP: return exp(x);
    case TFU_OP_LOG: return log(x);
    case TFU_OP_SIN: return sin(x);
    case TFU_OP_COS: return cos(x);
    case TFU_OP_TANH: return tanh(x);
    case TFU_OP_SIGMOID: return sigm(x);
    case TFU_OP_RELU: return relu(x);
    case TFU_OP_GELU: return gelu(x);
    case TFU_OP_GELU_ERF: return gelu_erf(x);
    case TFU_OP_SILU: return x * sigm(x);
    default: return NAN;
    }
}

static double glu_act(int kind, double g) {
    switch (kind) {
    case TFU_GLU_REGLU: return relu(g);
    case TFU_GLU_GEGLU: return gelu(g);
    case TFU_GLU_GEGLU_ERF: return gelu_erf(g);
    default: return g * sigm(g);
    }
}

/* ---- cases --------------------------------------------------------------- */

typedef struct unop {
    const char *name;
    tfu_op op;
    float p0, p1, lo, hi;
    double tol;   /* relative to max(1, |want|); negative: to |want| alone */
} unop;

static const unop UNOPS[] = {
    { "scale",      TFU_OP_SCALE,     0.5f, 0.25f, -4, 4,  1e-6 },
    { "scale_bias", TFU_OP_SCALE,     3.0f, -1.0f, -4, 4,  1e-6 },
    { "clamp",      TFU_OP_CLAMP,    -2.0f,  3.0f, -4, 4,  0 },
    { "neg",        TFU_OP_NEG,       0, 0, -4, 4,         0 },
    { "abs",        TFU_OP_ABS,       0, 0, -4, 4,         0 },
    { "sqr",        TFU_OP_SQR,       0, 0, -4, 4,         1e-6 },
    { "sqrt",       TFU_OP_SQRT,      0, 0, 0.001f, 50,    1e-6 },
    { "exp",        TFU_OP_EXP,       0, 0, -6, 6,         1e-4 },
    { "log",        TFU_OP_LOG,       0, 0, 0.001f, 100,   1e-4 },
    { "sin",        TFU_OP_SIN,       0, 0, -12, 12,       1e-4 },
    { "cos",        TFU_OP_COS,       0, 0, -12, 12,       1e-4 },
    { "tanh",       TFU_OP_TANH,      0, 0, -6, 6,         1e-4 },
    { "sigmoid",    TFU_OP_SIGMOID,   0, 0, -12, 12,       1e-4 },
    { "relu",       TFU_OP_RELU,      0, 0, -4, 4,         0 },
    { "gelu",       TFU_OP_GELU,      0, 0, -6, 6,         1e-4 },
    { "gelu_erf",   TFU_OP_GELU_ERF,  0, 0, -6, 6,         1e-4 },
    { "silu",       TFU_OP_SILU,      0, 0, -12, 12,       1e-4 },
    /* the negative tails, where 1 + tanh and 1 + erf cancel: every digit of
       the small results counts */
    { "gelu tail",     TFU_OP_GELU,     0, 0, -9, -3,      -1e-4 },
    { "gelu_erf tail", TFU_OP_GELU_ERF, 0, 0, -12, -3,     -1e-4 },
    { "silu tail",     TFU_OP_SILU,     0, 0, -80, -10,    -1e-4 },
};
#define N_UNOPS ((int)(sizeof UNOPS / sizeof UNOPS[0]))

static void case_unary(int u, int64_t n) {
    const unop *U = &UNOPS[u];
    int64_t k, ne;
    tfu_tensor *a, *in, *out;
    double *x, *want, *tol;
    begin(U->name, n, 1 + (uint64_t)u);
    a = tfu_new_tensor_2d(ctx, rand_type(), n, FL_COUNT);
    if (!inputs_ok(a != NULL)) return;
    fill(a, U->lo, U->hi, 0);
    in = pro(a, n);
    if (U->op == TFU_OP_SCALE) out = tfu_scale_bias(ctx, in, U->p0, U->p1);
    else if (U->op == TFU_OP_CLAMP) out = tfu_clamp(ctx, in, U->p0, U->p1);
    else out = tfu_unary(ctx, in, U->op);
    out = epi(out, n);
    ne = n * FL_COUNT;
    x = values(a);
    want = dalloc(ne);
    tol = dalloc(ne);
    for (k = 0; k < ne; k++) {
        want[k] = f32r(u_apply(U->op, x[k], U->p0, U->p1));
        tol[k] = U->tol < 0 ? -U->tol * fabs(want[k]) : rel(want[k], U->tol);
    }
    run_all(out, want, tol);
    free(x);
    free(want);
    free(tol);
}

/* b is a's shape (odd n) or one value per row, broadcast along it */
static void case_binary(tfu_op op, int64_t n) {
    int64_t k, ne = n * FL_COUNT, bn = n % 2 ? n : 1;
    tfu_tensor *a, *b, *out;
    double *x, *y, *want, *tol;
    begin(tfu_op_name(op), n, 40 + (uint64_t)op);
    a = tfu_new_tensor_2d(ctx, rand_type(), n, FL_COUNT);
    b = tfu_new_tensor_2d(ctx, rand_type(), bn, FL_COUNT);
    if (!inputs_ok(a && b)) return;
    fill(a, -3, 3, 0);
    fill(b, -3, 3, 0);
    if (bn == 1) strcat(desc, " (b broadcast)");
    if (op == TFU_OP_ADD) out = tfu_add(ctx, pro(a, n), b);
    else if (op == TFU_OP_SUB) out = tfu_sub(ctx, pro(a, n), b);
    else if (op == TFU_OP_MUL) out = tfu_mul(ctx, pro(a, n), b);
    else out = tfu_div(ctx, pro(a, n), b);
    out = epi(out, n);
    x = values(a);
    y = values(b);
    want = dalloc(ne);
    tol = dalloc(ne);
    for (k = 0; k < ne; k++) {
        double p = x[k], q = y[bn == 1 ? k / n : k], r;
        if (op == TFU_OP_ADD) r = p + q;
        else if (op == TFU_OP_SUB) r = p - q;
        else if (op == TFU_OP_MUL) r = p * q;
        else r = p / q;
        want[k] = f32r(r);
        tol[k] = rel(want[k], 1e-7);
    }
    run_all(out, want, tol);
    free(x);
    free(y);
    free(want);
    free(tol);
}

/* form 0: rows of [gate | value], 1: [value | gate], 2: split */
static void case_glu(int kind, int form, int64_t n) {
    static const char *names[4] = { "reglu", "geglu", "geglu_erf", "swiglu" };
    static const char *forms[3] = { "", " swapped", " split" };
    int64_t i, r, ne = n * FL_COUNT;
    tfu_tensor *a, *v = NULL, *out;
    double *x, *y = NULL, *want, *tol;
    begin(names[kind], n, 60 + 3 * (uint64_t)kind + (uint64_t)form);
    strcat(desc, forms[form]);
    a = tfu_new_tensor_2d(ctx, rand_type(), form == 2 ? n : 2 * n, FL_COUNT);
    if (form == 2) v = tfu_new_tensor_2d(ctx, rand_type(), n, FL_COUNT);
    if (!inputs_ok(a && (form != 2 || v))) return;
    fill(a, -4, 4, 0);
    if (v) fill(v, -4, 4, 0);
    if (form == 2) out = tfu_glu_split(ctx, pro(a, n), v, (tfu_glu_kind)kind);
    else out = tfu_glu(ctx, pro(a, n), (tfu_glu_kind)kind, form);
    out = epi(out, n);
    x = values(a);
    if (v) y = values(v);
    want = dalloc(ne);
    tol = dalloc(ne);
    for (r = 0; r < FL_COUNT; r++) for (i = 0; i < n; i++) {
        double g, val;
        int64_t k = i + n * r;
        if (form == 2) {
            g = x[k];
            val = y[k];
        } else if (form == 1) {
            g = x[i + n + 2 * n * r];
            val = x[i + 2 * n * r];
        } else {
            g = x[i + 2 * n * r];
            val = x[i + n + 2 * n * r];
        }
        want[k] = f32r(glu_act(kind, g) * val);
        /* the activation's own error (absolute below 1) times the value */
        tol[k] = rel(glu_act(kind, g), 1e-4) * (fabs(val) > 1.0 ? fabs(val) : 1.0);
    }
    run_all(out, want, tol);
    free(x);
    free(y);
    free(want);
    free(tol);
}

static void case_norm(int is_norm, float eps, int64_t n) {
    int64_t i, r, ne = n * FL_COUNT;
    tfu_tensor *a, *out;
    double *x, *want, *tol;
    begin(is_norm ? "norm" : "rms_norm", n, 80 + 2 * (uint64_t)is_norm + (eps == 0.0f));
    desc_num("eps", eps);
    a = tfu_new_tensor_2d(ctx, rand_type(), n, FL_COUNT);
    if (!inputs_ok(a != NULL)) return;
    fill(a, -1, 3, 0);
    out = is_norm ? tfu_norm(ctx, pro(a, n), eps) : tfu_rms_norm(ctx, pro(a, n), eps);
    out = epi(out, n);
    x = values(a);
    want = dalloc(ne);
    tol = dalloc(ne);
    for (r = 0; r < FL_COUNT; r++) {
        const double *row = x + n * r;
        double s = 0, s2 = 0, mean = 0, scale;
        for (i = 0; i < n; i++) s += row[i];
        if (is_norm) mean = s / (double)n;
        for (i = 0; i < n; i++) s2 += (row[i] - mean) * (row[i] - mean);
        scale = 1.0 / sqrt(s2 / (double)n + (double)eps);
        for (i = 0; i < n; i++) {
            want[i + n * r] = f32r((row[i] - mean) * scale);
            tol[i + n * r] = rel(want[i + n * r], is_norm ? 1e-4 : 1e-5);
        }
    }
    run_all(out, want, tol);
    free(x);
    free(want);
    free(tol);
}

/* 0: soft_max; 1: a mask (f32 or f16: 0, small values, -inf, one row all
   -inf) and scale 0.5; 2: no mask, scale 2 (3e38*2 overflows f32, not the
   double reference) */
static void case_soft_max(int variant, int64_t n) {
    int64_t i, r, ne = n * FL_COUNT;
    tfu_tensor *a, *mask = NULL, *out;
    double *x, *m = NULL, *want, *tol;
    float scale = variant == 0 ? 1.0f : variant == 1 ? 0.5f : 2.0f;
    begin(variant == 0 ? "soft_max" : variant == 1 ? "soft_max_ext mask" : "soft_max_ext scale=2", n, 90 + (uint64_t)variant);
    a = tfu_new_tensor_2d(ctx, rand_type(), n, FL_COUNT);
    if (variant == 1) mask = tfu_new_tensor_2d(ctx, tt_int(0, 1) ? TFU_F32 : TFU_F16, n, FL_COUNT);
    if (!inputs_ok(a && (variant != 1 || mask))) return;
    fill(a, -3, 3, 0);
    if (mask) {
        int64_t dead = tt_int(0, FL_COUNT - 1);
        for (r = 0; r < FL_COUNT; r++) for (i = 0; i < n; i++) {
            int c = tt_int(0, 3);
            float v = c == 0 ? -INFINITY : c == 1 ? 0.0f : tt_rand(-2, 1);
            tfu_set_f32(mask, i, r, 0, 0, r == dead ? -INFINITY : v);
        }
    }
    out = variant == 0 ? tfu_soft_max(ctx, pro(a, n)) : tfu_soft_max_ext(ctx, pro(a, n), mask, scale);
    out = epi(out, n);
    x = values(a);
    if (mask) m = values(mask);
    want = dalloc(ne);
    tol = dalloc(ne);
    for (r = 0; r < FL_COUNT; r++) {
        double mx = -INFINITY, e = 0;
        for (i = 0; i < n; i++) {
            double v = x[i + n * r] * (double)scale;
            if (m) v += m[i + n * r];
            want[i + n * r] = v;
            if (v > mx) mx = v;
        }
        for (i = 0; i < n; i++) e += exp(want[i + n * r] - mx);
        for (i = 0; i < n; i++) {
            want[i + n * r] = f32r(exp(want[i + n * r] - mx) / e);
            tol[i + n * r] = 1e-5;
        }
    }
    run_all(out, want, tol);
    free(x);
    free(m);
    free(want);
    free(tol);
}

/* 0 sum_rows, 1 mean, 2 argmax: the first NaN if the row has one, else the
   first maximum */
static void case_reduce(int which, int64_t n) {
    static const char *names[3] = { "sum_rows", "mean", "argmax" };
    int64_t i, r;
    tfu_tensor *a, *out;
    double *x, *want, *tol;
    begin(names[which], n, 100 + (uint64_t)which);
    a = tfu_new_tensor_2d(ctx, rand_type(), n, FL_COUNT);
    if (!inputs_ok(a != NULL)) return;
    fill(a, -2, 2, 0);
    out = which == 0 ? tfu_sum_rows(ctx, pro(a, n)) : which == 1 ? tfu_mean(ctx, pro(a, n)) : tfu_argmax(ctx, pro(a, n));
    if (which < 2) out = epi(out, n);
    x = values(a);
    want = dalloc(FL_COUNT);
    tol = dalloc(FL_COUNT);
    for (r = 0; r < FL_COUNT; r++) {
        const double *row = x + n * r;
        double s = 0, sa = 0, mx = -INFINITY;
        int64_t best = 0, first_nan = -1;
        for (i = 0; i < n; i++) {
            s += row[i];
            sa += fabs(row[i]);
            if (row[i] != row[i] && first_nan < 0) first_nan = i;
            if (row[i] > mx) {
                mx = row[i];
                best = i;
            }
        }
        if (which == 2) want[r] = (double)(first_nan >= 0 ? first_nan : best);
        else want[r] = f32r(which == 1 ? s / (double)n : s);
        tol[r] = which == 2 ? 0 : 1e-5 * (which == 1 ? sa / (double)n : sa) + 1e-40;
    }
    run_all(out, want, tol);
    free(x);
    free(want);
    free(tol);
}

/* a: K x 7 weights (one flavour per row), b: K x nb activations */
static void case_mul_mat(int nb, int64_t k_len) {
    const int64_t M = FL_COUNT;
    int64_t i, j, k;
    tfu_tensor *a, *b, *out;
    double *x, *y, *want, *tol;
    begin(nb == 1 ? "mul_mat vec" : "mul_mat", k_len, 110 + (uint64_t)nb);
    a = tfu_new_tensor_2d(ctx, rand_type(), k_len, M);
    b = tfu_new_tensor_2d(ctx, TFU_F32, k_len, nb);
    if (!inputs_ok(a && b)) return;
    fill(a, -2, 2, 0);
    row_fl0 = tt_int(0, FL_COUNT - 1);
    fill(b, -2, 2, row_fl0);
    out = epi(tfu_mul_mat(ctx, a, pro(b, k_len)), k_len);
    x = values(a);
    y = values(b);
    want = dalloc(M * nb);
    tol = dalloc(M * nb);
    for (j = 0; j < nb; j++) for (i = 0; i < M; i++) {
        double s = 0, sa = 0;
        for (k = 0; k < k_len; k++) {
            s += x[k + k_len * i] * y[k + k_len * j];
            sa += fabs(x[k + k_len * i] * y[k + k_len * j]);
        }
        want[i + M * j] = f32r(s);
        tol[i + M * j] = 1e-5 * (1.0 + (double)k_len / 128.0) * sa + 1e-40;
    }
    run_all(out, want, tol);
    free(x);
    free(y);
    free(want);
    free(tol);
}

static void case_get_rows(int64_t n) {
    int64_t i, r, n_idx = 6;
    tfu_tensor *a, *idx, *out;
    double *x, *want, *tol;
    int32_t rows[6];
    begin("get_rows", n, 120);
    a = tfu_new_tensor_2d(ctx, rand_type(), n, FL_COUNT);
    idx = tfu_new_tensor_1d(ctx, TFU_I32, n_idx);
    if (!inputs_ok(a && idx)) return;
    fill(a, -3, 3, 0);
    for (r = 0; r < n_idx; r++) {
        rows[r] = (int32_t)tt_int(0, FL_COUNT - 1);
        ((int32_t *)idx->data)[r] = rows[r];
    }
    out = epi(tfu_get_rows(ctx, a, idx), n);
    x = values(a);
    want = dalloc(n * n_idx);
    tol = dalloc(n * n_idx);
    for (r = 0; r < n_idx; r++) for (i = 0; i < n; i++) want[i + n * r] = x[i + n * rows[r]];
    run_all(out, want, tol);
    free(x);
    free(want);
    free(tol);
}

/* a: head_dim n x 7 heads (one flavour each) x 3 tokens */
static void case_rope(int neox, int64_t n) {
    const int64_t H = FL_COUNT, T = 3;
    int64_t i, h, t, ne = n * H * T;
    int nd;
    tfu_tensor *a, *pos, *out;
    double *x, *want, *tol;
    int32_t p[3];
    begin(neox ? "rope neox" : "rope", n, 130 + (uint64_t)neox);
    nd = 2 * tt_int(1, (int)(n / 2));
    desc_num("n_dims", nd);
    a = tfu_new_tensor_3d(ctx, rand_type(), n, H, T);
    pos = tfu_new_tensor_1d(ctx, TFU_I32, T);
    if (!inputs_ok(a && pos)) return;
    fill(a, -3, 3, 0);
    for (t = 0; t < T; t++) {
        p[t] = (int32_t)tt_int(0, 1000);
        ((int32_t *)pos->data)[t] = p[t];
    }
    out = epi(tfu_rope(ctx, pro(a, n), pos, nd, neox ? TFU_ROPE_NEOX : TFU_ROPE_NORMAL, 10000.0f), n);
    x = values(a);
    want = dalloc(ne);
    tol = dalloc(ne);
    for (t = 0; t < T; t++) for (h = 0; h < H; h++) {
        int64_t o = n * (h + H * t);
        for (i = nd; i < n; i++) want[o + i] = x[o + i];
        for (i = 0; i < nd / 2; i++) {
            double th = (double)p[t] * pow(10000.0, -2.0 * (double)i / (double)nd), c = cos(th), s = sin(th);
            int64_t j0 = neox ? i : 2 * i, j1 = neox ? i + nd / 2 : 2 * i + 1;
            double x0 = x[o + j0], x1 = x[o + j1], mag = fabs(x0) + fabs(x1);
            want[o + j0] = f32r(x0 * c - x1 * s);
            want[o + j1] = f32r(x0 * s + x1 * c);
            tol[o + j0] = tol[o + j1] = 1e-5 * (mag > 1.0 ? mag : 1.0);
        }
    }
    run_all(out, want, tol);
    free(x);
    free(want);
    free(tol);
}

static void case_concat(int dim, int64_t n) {
    int64_t i, r, bn, br = dim == 0 ? FL_COUNT : 3, on, orows = dim == 0 ? FL_COUNT : FL_COUNT + br;
    tfu_tensor *a, *b, *out;
    double *x, *y, *want, *tol;
    begin(dim == 0 ? "concat dim 0" : "concat dim 1", n, 140 + (uint64_t)dim);
    bn = dim == 0 ? tt_int(1, 9) : n;
    on = dim == 0 ? n + bn : n;
    a = tfu_new_tensor_2d(ctx, rand_type(), n, FL_COUNT);
    b = tfu_new_tensor_2d(ctx, rand_type(), bn, br);
    if (!inputs_ok(a && b)) return;
    fill(a, -3, 3, 0);
    fill(b, -3, 3, 0);
    out = epi(tfu_concat(ctx, a, b, dim), n);
    x = values(a);
    y = values(b);
    want = dalloc(on * orows);
    tol = dalloc(on * orows);
    for (r = 0; r < orows; r++) for (i = 0; i < on; i++) {
        double v;
        if (dim == 0) v = i < n ? x[i + n * r] : y[i - n + bn * r];
        else v = r < FL_COUNT ? x[i + n * r] : y[i + n * (r - FL_COUNT)];
        want[i + on * r] = v;
    }
    run_all(out, want, tol);
    free(x);
    free(y);
    free(want);
    free(tol);
}

/* cont of a transposed view: rows of n gathered at a stride */
static void case_cont(int64_t n) {
    int64_t ne = n * FL_COUNT;
    tfu_tensor *leaf, *view, *out;
    double *x, *want, *tol;
    begin("cont", n, 150);
    leaf = tfu_new_tensor_2d(ctx, rand_type(), FL_COUNT, n);
    view = leaf ? tfu_transpose(ctx, leaf) : NULL;
    if (!inputs_ok(view != NULL)) return;
    fill(view, -3, 3, 0);
    out = epi(tfu_cont(ctx, view), n);
    x = values(view);
    want = x;
    tol = dalloc(ne);
    run_all(out, want, tol);
    free(x);
    free(tol);
}

/* cpy of f32 values into an f32, f16 or bf16 leaf */
static void case_cpy(tfu_type dt, int64_t n) {
    int64_t k, ne = n * FL_COUNT;
    tfu_tensor *a, *dst, *out;
    double *x, *want, *tol;
    begin(dt == TFU_F32 ? "cpy f32" : dt == TFU_F16 ? "cpy f16" : "cpy bf16", n, 160 + (uint64_t)dt);
    a = tfu_new_tensor_2d(ctx, TFU_F32, n, FL_COUNT);
    dst = tfu_new_tensor_2d(ctx, dt, n, FL_COUNT);
    if (!inputs_ok(a && dst)) return;
    fill(a, -3, 3, 0);
    fill(dst, -3, 3, 0);
    out = tfu_cpy(ctx, pro(a, n), dst);
    x = values(a);
    want = dalloc(ne);
    tol = dalloc(ne);
    for (k = 0; k < ne; k++) {
        float v = (float)x[k];
        if (dt == TFU_F16) v = tfu_f16_to_f32(tfu_f32_to_f16(v));
        if (dt == TFU_BF16) v = tfu_bf16_to_f32(tfu_f32_to_bf16(v));
        want[k] = v;
    }
    run_all(out, want, tol);
    free(x);
    free(want);
    free(tol);
}

/* ---- the kernel set belongs to the plan -------------------------------------
   Plan A compiles with the SIMD kernels, then plan B with TFU_NO_SIMD=1 in
   the environment: A run again gives the bits of its first run, B matches
   the reference. Then C with options.no_simd (A still unchanged, C gives
   B's bits), and D with SIMD again: B run again keeps its bits, D gives
   A's. Transcendental ops, so that SIMD and scalar results differ in the
   last bits (skipped where they do not: no vector layer). */
static float *run_copy(tfu_plan *p, tfu_tensor *out, const char *name) {
    tfu_result r;
    tt_poison(out->data, tfu_nbytes(out));
    r = tfu_plan_run(p);
    TT_CHECK(r == TFU_OK, "%s: plan %s: run -> %s", desc, name, tfu_result_str(r));
    return tt_copy_out(out);
}

static int same_bits(const float *x, const float *y, int64_t n) { return memcmp(x, y, (size_t)n * sizeof(float)) == 0; }

static void test_simd_per_plan(void) {
    const int64_t n0 = 257, n1 = 16, ne = n0 * n1;
    tfu_tensor *x, *out;
    tfu_graph *g;
    tfu_plan *pa, *pb, *pc, *pd;
    tfu_plan_options o = tfu_plan_default_options(), os = tfu_plan_default_options();
    double *ref;
    float *a1, *a2, *a3, *b1, *b2, *c1, *d1;
    int64_t k, n_diff = 0;
    if (getenv("TFU_NO_SIMD")) {   /* plan A would be scalar too */
        tt_skipped++;
        return;
    }
    begin("simd per plan", n0, 200);
    x = tfu_new_tensor_2d(ctx, TFU_F32, n0, n1);
    if (!inputs_ok(x != NULL)) return;
    tt_fill(x, -6, 6);
    out = tfu_soft_max(ctx, tfu_add(ctx, tfu_gelu(ctx, x), tfu_exp(ctx, tfu_tanh(ctx, x))));
    g = out ? tfu_graph_build(ctx, out) : NULL;
    TT_CHECK(g != NULL, "%s: build failed (%s)", desc, tfu_last_error_msg(ctx));
    if (!g) return;
    TT_CHECK(tfu_graph_compute_ref(g) == TFU_OK, "%s: compute_ref failed", desc);
    ref = values(out);
    os.no_simd = 1;
    pa = compile(g, &o, 0);
    TT_CHECK(pa != NULL, "%s: compile A failed (%s)", desc, tfu_last_error_msg(ctx));
    if (!pa) {
        free(ref);
        return;
    }
    a1 = run_copy(pa, out, "A");
    pb = compile(g, &o, 1);
    TT_CHECK(pb != NULL, "%s: compile B failed (%s)", desc, tfu_last_error_msg(ctx));
    if (!pb) {
        tfu_plan_free(pa);
        free(ref);
        free(a1);
        return;
    }
    a2 = run_copy(pa, out, "A");
    TT_CHECK(same_bits(a1, a2, ne), "%s: plan A changed its results after plan B compiled with TFU_NO_SIMD=1", desc);
    b1 = run_copy(pb, out, "B");
    TT_CHECK(tt_max_err(out, ref) <= 1e-5, "%s: plan B (TFU_NO_SIMD=1) against the reference: err %.3g", desc, tt_max_err(out, ref));
    pc = compile(g, &os, 0);
    TT_CHECK(pc != NULL, "%s: compile C failed (%s)", desc, tfu_last_error_msg(ctx));
    a3 = run_copy(pa, out, "A");
    TT_CHECK(same_bits(a1, a3, ne), "%s: plan A changed its results after plan C compiled with options.no_simd", desc);
    c1 = pc ? run_copy(pc, out, "C") : NULL;
    TT_CHECK(c1 && same_bits(b1, c1, ne), "%s: plan C (options.no_simd) differs from plan B (TFU_NO_SIMD=1)", desc);
    pd = compile(g, &o, 0);
    TT_CHECK(pd != NULL, "%s: compile D failed (%s)", desc, tfu_last_error_msg(ctx));
    b2 = run_copy(pb, out, "B");
    TT_CHECK(same_bits(b1, b2, ne), "%s: plan B changed its results after plan D compiled with SIMD", desc);
    d1 = pd ? run_copy(pd, out, "D") : NULL;
    TT_CHECK(d1 && same_bits(a1, d1, ne), "%s: plan D (SIMD, compiled last) differs from plan A", desc);
    for (k = 0; k < ne; k++) n_diff += memcmp(&a1[k], &b1[k], sizeof(float)) != 0;
    if (n_diff == 0) tt_skipped++;   /* SIMD and scalar agree bit for bit: nothing was proven */
    if (tt_verbose) printf("%s: %lld of %lld values differ between SIMD and scalar\n", desc, (long long)n_diff, (long long)ne);
    tfu_plan_free(pa);
    tfu_plan_free(pb);
    if (pc) tfu_plan_free(pc);
    if (pd) tfu_plan_free(pd);
    free(ref);
    free(a1);
    free(a2);
    free(a3);
    free(b1);
    free(b2);
    free(c1);
    free(d1);
}

static void run_length(int64_t n) {
    int u, k, f;
    for (u = 0; u < N_UNOPS; u++) case_unary(u, n);
    case_binary(TFU_OP_ADD, n);
    case_binary(TFU_OP_SUB, n);
    case_binary(TFU_OP_MUL, n);
    case_binary(TFU_OP_DIV, n);
    for (k = 0; k < 4; k++) for (f = 0; f < 3; f++) case_glu(k, f, n);
    case_norm(0, 1e-5f, n);
    case_norm(0, 0.0f, n);
    case_norm(1, 1e-5f, n);
    case_norm(1, 0.0f, n);
    for (k = 0; k < 3; k++) case_soft_max(k, n);
    for (k = 0; k < 3; k++) case_reduce(k, n);
    case_mul_mat(1, n);
    case_mul_mat(5, n);
    case_get_rows(n);
    if (n >= 2) case_rope(0, n);
    if (n >= 2) case_rope(1, n);
    case_concat(0, n);
    case_concat(1, n);
    case_cont(n);
    case_cpy(TFU_F32, n);
    case_cpy(TFU_F16, n);
    case_cpy(TFU_BF16, n);
}

int main(int argc, char **argv) {
    int64_t n;
    seed_base = (uint64_t)tt_arg_int(argc, argv, "--seed", 1);
    tt_verbose = tt_arg_int(argc, argv, "--verbose", 0);
    ctx = tfu_init_malloc(CTX_BYTES, 0);
    if (!ctx) {
        printf("cannot create a context\n");
        tt_failed++;
        return tt_summary();
    }
    for (n = 1; n <= 67; n++) run_length(n);
    run_length(LONG_N);
    test_simd_per_plan();
    tfu_free(ctx);
    return tt_summary();
}
