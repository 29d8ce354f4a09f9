/* test_random.c - random graphs: the compiled plan against the reference.

   Every graph is built twice from one seed, in two contexts (so the
   reference executor and the plan have separate memory) with identical
   input data. The reference runs on one copy, a compiled plan on the other
   (cycling: fused on 1 thread, fused on 2 threads, unfused; some with a
   caller arena, some with a caller parallel-for). Every OUTPUT and KEEP
   tensor is compared, and the plan's own bookkeeping is checked: no two
   values live at the same time share bytes, elided values really are
   internal to their group, producers run in earlier stages.

     test_random [--graphs N] [--seed S] [--only I] [--v 1]
                 [--views-cpy 0] [--special 0] [--variants 0]

   Features (each on by default, off with 0):
     --views-cpy  copies into (possibly overlapping) views of leaves, and
                  reads of those leaves before and after the copy
     --special    NaN and infinities in some inputs; rows of huge values
                  (1e20, 3e38) into rms_norm, norm and soft_max
     --variants   two more plan variants: SIMD off (TFU_NO_SIMD=1 while
                  compiling) and a caller arena given at compile time

   A failure prints "seed S graph I": rerun with --seed S --only I --v 1. */
#define _POSIX_C_SOURCE 200809L
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include "tfu_test.h"
#include <setjmp.h>
#include <signal.h>

/* an internal assertion (abort) inside tfu_plan_compile is reported as a
   failure of that graph, and the run goes on with the next one */
static sigjmp_buf g_abort_env;
static volatile sig_atomic_t g_abort_armed;
static void on_abort(int sig) {
    if (g_abort_armed) { g_abort_armed = 0; siglongjmp(g_abort_env, 1); }
    signal(sig, SIG_DFL);
    raise(sig);
}

#define MAXV   160     /* values in the pool of one graph            */
#define MAXC   64      /* tensors compared per graph                 */
#define CTX_MB 24

typedef struct val_t {
    tfu_tensor *t;
    float mag;    /* rough bound of |value|                           */
    float tolf;   /* tolerance factor (grows through matmuls)         */
    int   leaf;   /* a leaf (never an output)                         */
    int   view;   /* a VIEW (may be non-contiguous)                   */
} val_t;

typedef struct gen_t {
    tfu_context *ctx;
    val_t v[MAXV];
    int   nv;
    tfu_tensor *chk[MAXC];     /* outputs and keeps, compared          */
    float chk_tol[MAXC];
    int   nchk;
    tfu_tensor *out[8];
    int   nout;
    int   bad;                 /* line where a builder returned NULL   */
    int   nops;                /* steps taken (for the report)         */
    int   cpy_into_input;      /* a cpy rewrites an input: run once    */
} gen_t;

static int g_verbose;
static int g_views_cpy = 1, g_special = 1, g_variants = 1;
static const char *g_op_trace[256];
static int g_n_trace;

#define CK(g, x) do { if (!(x)) { if (!(g)->bad) (g)->bad = __LINE__; return; } } while (0)

static float fmaxf_(float a, float b) { return a > b ? a : b; }

static int n_dims_of(const int64_t *ne) {
    int d = 4;
    while (d > 1 && ne[d - 1] == 1) d--;
    return d;
}

static tfu_tensor *leaf(gen_t *g, tfu_type type, const int64_t *ne, float lo, float hi) {
    tfu_tensor *t = tfu_new_tensor(g->ctx, type, n_dims_of(ne), ne);
    if (!t) return NULL;
    if (type == TFU_I32) {
        memset(t->data, 0, tfu_nbytes(t));
    } else {
        tt_fill(t, lo, hi);
        if (g_special && tt_int(0, 15) == 0) {
            /* one NaN or infinity: IEEE rules on every path */
            static const float special[3] = { NAN, INFINITY, -INFINITY };
            int64_t n = tfu_nelements(t), e = tt_int(0, (int)n - 1);
            tfu_set_f32(t, e % t->ne[0], (e / t->ne[0]) % t->ne[1], (e / (t->ne[0] * t->ne[1])) % t->ne[2],
                        e / (t->ne[0] * t->ne[1] * t->ne[2]), special[tt_int(0, 2)]);
        }
    }
    if (tt_int(0, 3) == 0) tfu_set_input(t);
    return t;
}

static void push(gen_t *g, tfu_tensor *t, float mag, float tolf) {
    val_t *v;
    if (!t) { if (!g->bad) g->bad = -1; return; }
    if (g->nv >= MAXV) return;
    v = &g->v[g->nv++];
    v->t = t; v->mag = mag; v->tolf = tolf;
    v->leaf = t->op == TFU_OP_NONE;
    v->view = t->op == TFU_OP_VIEW;
    /* random KEEP on computed values */
    if (!v->leaf && !v->view && t->type == TFU_F32 && tt_int(0, 11) == 0 && g->nchk < MAXC) {
        tfu_set_keep(t);
        g->chk[g->nchk] = t; g->chk_tol[g->nchk] = tolf; g->nchk++;
    }
}

/* a value of magnitude <= limit: v[i] itself or v[i] scaled down (scaling
   keeps relative errors, so large values never turn rounding noise into
   large absolute errors further down) */
static int tame(gen_t *g, int i, float limit) {
    tfu_tensor *t;
    if (g->v[i].mag <= limit || g->nv >= MAXV) return i;
    t = tfu_scale(g->ctx, g->v[i].t, 0.5f * limit / g->v[i].mag);
    if (!t) { if (!g->bad) g->bad = __LINE__; return i; }
    push(g, t, 0.5f * limit, g->v[i].tolf);
    return g->nv - 1;
}

/* a pool value, recent ones preferred; F32 only (I32 values are terminal) */
static int pick_lim(gen_t *g, float limit) {
    int i, tries;
    for (tries = 0; tries < 64; tries++) {
        if (tt_int(0, 9) < 6) i = g->nv - 1 - tt_int(0, g->nv < 4 ? g->nv - 1 : 3);
        else i = tt_int(0, g->nv - 1);
        if (g->v[i].t->type == TFU_F32) return tame(g, i, limit);
    }
    for (i = g->nv - 1; i >= 0; i--) if (g->v[i].t->type == TFU_F32) return tame(g, i, limit);
    return 0;
}
static int pick(gen_t *g) { return pick_lim(g, 24.0f); }

static int broadcasts(const tfu_tensor *a, const tfu_tensor *b) {
    int i;
    for (i = 0; i < 4; i++) if (b->ne[i] == 0 || a->ne[i] % b->ne[i] != 0) return 0;
    return 1;
}

/* a pool value b (F32) that broadcasts into a, or -1 */
static int pick_compatible(gen_t *g, const tfu_tensor *a) {
    int cand[MAXV], n = 0, i;
    for (i = 0; i < g->nv; i++)
        if (g->v[i].t->type == TFU_F32 && broadcasts(a, g->v[i].t)) cand[n++] = i;
    if (!n) return -1;
    return cand[tt_int(0, n - 1)];
}

static tfu_type rand_ftype(void) {
    int r = tt_int(0, 5);
    return r < 3 ? TFU_F32 : r < 5 ? TFU_F16 : TFU_BF16;
}

/* a new leaf that broadcasts into a: some dims set to 1, maybe F16/BF16,
   maybe a transposed (non-contiguous) view of a leaf */
static tfu_tensor *operand_leaf(gen_t *g, const tfu_tensor *a, float lo, float hi) {
    int64_t ne[4]; int i; tfu_type ty = rand_ftype();
    for (i = 0; i < 4; i++) ne[i] = (tt_int(0, 3) == 0) ? 1 : a->ne[i];
    if (tt_int(0, 2) == 0) for (i = 0; i < 4; i++) ne[i] = a->ne[i];
    if (tt_int(0, 5) == 0 && ne[0] > 1 && ne[1] > 1) {
        int64_t te[4]; tfu_tensor *t;
        te[0] = ne[1]; te[1] = ne[0]; te[2] = ne[2]; te[3] = ne[3];
        t = leaf(g, ty, te, lo, hi);
        if (!t) return NULL;
        return tfu_transpose(g->ctx, t);
    }
    return leaf(g, ty, ne, lo, hi);
}

/* --- steps ------------------------------------------------------------ */

static void step_unary(gen_t *g) {
    static const tfu_op ops[] = { TFU_OP_NEG, TFU_OP_ABS, TFU_OP_SIN, TFU_OP_COS, TFU_OP_TANH,
                                  TFU_OP_SIGMOID, TFU_OP_RELU, TFU_OP_GELU, TFU_OP_GELU_ERF,
                                  TFU_OP_SILU, TFU_OP_SQR };
    int i = pick(g); val_t x = g->v[i]; tfu_op op; tfu_tensor *t; float mag = x.mag;
    do { op = ops[tt_int(0, (int)(sizeof ops / sizeof ops[0]) - 1)]; } while (op == TFU_OP_SQR && x.mag > 6);
    if (tt_int(0, 1)) t = tfu_unary(g->ctx, x.t, op);
    else switch (op) {
        case TFU_OP_NEG: t = tfu_neg(g->ctx, x.t); break;
        case TFU_OP_ABS: t = tfu_abs(g->ctx, x.t); break;
        case TFU_OP_SIN: t = tfu_sin(g->ctx, x.t); break;
        case TFU_OP_COS: t = tfu_cos(g->ctx, x.t); break;
        case TFU_OP_TANH: t = tfu_tanh(g->ctx, x.t); break;
        case TFU_OP_SIGMOID: t = tfu_sigmoid(g->ctx, x.t); break;
        case TFU_OP_RELU: t = tfu_relu(g->ctx, x.t); break;
        case TFU_OP_GELU: t = tfu_gelu(g->ctx, x.t); break;
        case TFU_OP_GELU_ERF: t = tfu_gelu_erf(g->ctx, x.t); break;
        case TFU_OP_SILU: t = tfu_silu(g->ctx, x.t); break;
        default: t = tfu_sqr(g->ctx, x.t); break;
    }
    CK(g, t);
    if (op == TFU_OP_SIN || op == TFU_OP_COS || op == TFU_OP_TANH || op == TFU_OP_SIGMOID) mag = 1;
    if (op == TFU_OP_SQR) mag = x.mag * x.mag;
    /* sin and cos turn the relative error of a large input into an absolute one */
    push(g, t, mag, (op == TFU_OP_SIN || op == TFU_OP_COS) && x.mag > 2 ? x.tolf * x.mag * 0.5f : x.tolf);
}

/* log(1+|x|), sqrt(1+|x|), exp(clamp(x)) - well conditioned */
static void step_safe_fn(gen_t *g) {
    int i = pick(g); val_t x = g->v[i]; tfu_tensor *t; int k = tt_int(0, 2); float mag;
    if (k < 2) {
        CK(g, t = tfu_abs(g->ctx, x.t));
        CK(g, t = tfu_scale_bias(g->ctx, t, 1.0f, 1.0f));
        CK(g, t = k == 0 ? tfu_log(g->ctx, t) : tfu_sqrt(g->ctx, t));
        mag = k == 0 ? (float)log(1.0 + x.mag) : (float)sqrt(1.0 + x.mag);
    } else {
        CK(g, t = tfu_clamp(g->ctx, x.t, -3.0f, 2.5f));
        CK(g, t = tfu_exp(g->ctx, t));
        mag = 12.2f;
    }
    push(g, t, mag, x.tolf);
}

static void step_scale(gen_t *g) {
    int i = pick(g); val_t x = g->v[i]; tfu_tensor *t; int k = tt_int(0, 2);
    float s = tt_rand(0.25f, 2.0f) * (tt_int(0, 1) ? 1.0f : -1.0f), b = tt_rand(-1.0f, 1.0f), mag = x.mag;
    if (x.mag > 20) s = 1.0f / x.mag;
    if (k == 0) { CK(g, t = tfu_scale(g->ctx, x.t, s)); mag = fabsf(s) * x.mag; }
    else if (k == 1) { CK(g, t = tfu_scale_bias(g->ctx, x.t, s, b)); mag = fabsf(s) * x.mag + 1; }
    else {
        float lo = -tt_rand(0.1f, 1.0f) * x.mag, hi = tt_rand(0.1f, 1.0f) * x.mag;
        CK(g, t = tfu_clamp(g->ctx, x.t, lo, hi));
    }
    push(g, t, mag, x.tolf);
}

static void step_binary(gen_t *g) {
    int i = pick(g), j = -1; val_t a = g->v[i]; tfu_tensor *b, *t; float mb = 1, tb = 1;
    int k = tt_int(0, 2);
    if (tt_int(0, 1)) j = pick_compatible(g, a.t);
    if (j >= 0) { b = g->v[j].t; mb = g->v[j].mag; tb = g->v[j].tolf; }
    else CK(g, b = operand_leaf(g, a.t, -1.0f, 1.0f));
    if (k == 2 && a.mag * mb > 60) k = 0;
    /* both orders when the shapes agree */
    if (tfu_same_shape(a.t, b) && tt_int(0, 1)) { tfu_tensor *s = a.t; a.t = b; b = s; }
    if (k == 0) t = tfu_add(g->ctx, a.t, b);
    else if (k == 1) t = tfu_sub(g->ctx, a.t, b);
    else t = tfu_mul(g->ctx, a.t, b);
    CK(g, t);
    push(g, t, k == 2 ? a.mag * mb : a.mag + mb, fmaxf_(a.tolf, tb));
}

/* a / (1 + |b|) */
static void step_div(gen_t *g) {
    int i = pick(g), j = -1; val_t a = g->v[i]; tfu_tensor *b, *t; float tb = 1;
    if (tt_int(0, 1)) j = pick_compatible(g, a.t);
    if (j >= 0) { b = g->v[j].t; tb = g->v[j].tolf; }
    else CK(g, b = operand_leaf(g, a.t, -2.0f, 2.0f));
    CK(g, b = tfu_abs(g->ctx, b));
    CK(g, b = tfu_scale_bias(g->ctx, b, 1.0f, 1.0f));
    CK(g, t = tfu_div(g->ctx, a.t, b));
    push(g, t, a.mag, fmaxf_(a.tolf, tb));
}

/* rms_norm / norm, optional * w (+ b) epilogue */
static void step_norm(gen_t *g) {
    int i = pick(g); val_t x = g->v[i]; tfu_tensor *t, *w; int64_t ne[4] = {1, 1, 1, 1};
    static const float eps[] = { 1e-5f, 1e-2f, 1e-3f };
    float e = eps[tt_int(0, 2)], mag;
    int rms = tt_int(0, 1);
    CK(g, t = rms ? tfu_rms_norm(g->ctx, x.t, e) : tfu_norm(g->ctx, x.t, e));
    mag = (float)sqrt((double)x.t->ne[0]) + 0.5f;
    if (tt_int(0, 2)) {
        ne[0] = x.t->ne[0];
        if (tt_int(0, 3) == 0) { ne[1] = x.t->ne[1]; }
        CK(g, w = leaf(g, tt_int(0, 3) ? TFU_F32 : TFU_F16, ne, 0.5f, 1.5f));
        CK(g, t = tfu_mul(g->ctx, t, w));
        mag *= 1.5f;
        if (tt_int(0, 1)) {
            int j = pick_compatible(g, t);
            if (j >= 0 && tt_int(0, 1)) { CK(g, t = tfu_add(g->ctx, t, g->v[j].t)); mag += g->v[j].mag; }
            else { CK(g, w = leaf(g, TFU_F32, ne, -1.0f, 1.0f)); CK(g, t = tfu_add(g->ctx, t, w)); mag += 1; }
        }
    }
    /* rounding noise in rows of tiny values is amplified up to 1/sqrt(eps) */
    push(g, t, mag, x.tolf * (2.0f + 0.05f / sqrtf(e)));
}

static void step_softmax(gen_t *g) {
    int i = pick(g); val_t x = g->v[i]; tfu_tensor *t, *mask = NULL; int k = tt_int(0, 3);
    static const float scales[] = { 1.0f, 0.125f, 0.5f, 2.0f };
    float sc = scales[tt_int(0, 3)];
    if (x.mag * sc > 30) sc = 30.0f / x.mag;
    if (k == 0) { CK(g, t = tfu_soft_max(g->ctx, x.t)); }
    else {
        if (k == 1 && x.t->ne[0] >= x.t->ne[1]) {
            CK(g, mask = tfu_causal_mask(g->ctx, x.t->ne[0], x.t->ne[1]));
        } else if (k >= 2) {
            int64_t ne[4] = {1, 1, 1, 1};
            ne[0] = x.t->ne[0]; ne[1] = x.t->ne[1] + tt_int(0, 2);
            CK(g, mask = leaf(g, tt_int(0, 2) ? TFU_F32 : TFU_F16, ne, -2.0f, 2.0f));
        }
        if (tt_int(0, 1)) {
            /* the prologue written out: soft_max(x*scale + mask) */
            CK(g, t = tfu_scale(g->ctx, x.t, sc));
            if (mask && mask->ne[1] == x.t->ne[1] && mask->type == TFU_F32) CK(g, t = tfu_add(g->ctx, t, mask));
            else if (mask) { CK(g, t = tfu_soft_max_ext(g->ctx, t, mask, 1.0f)); push(g, t, 1, x.tolf * 2); return; }
            CK(g, t = tfu_soft_max(g->ctx, t));
        } else {
            CK(g, t = tfu_soft_max_ext(g->ctx, x.t, mask, sc));
        }
    }
    push(g, t, 1, x.tolf * 2);
}

static int64_t pick_m(const tfu_tensor *x) {
    int r = tt_int(0, 3);
    if (r == 0) return x->ne[0];
    return tt_int(1, 24);
}

/* mul_mat with an optional epilogue: bias, activation, residual */
static void step_matmul(gen_t *g) {
    int i = pick_lim(g, 8.0f); val_t x = g->v[i]; tfu_tensor *w, *t; int64_t K = x.t->ne[0], M = pick_m(x.t);
    int64_t ne[4] = {1, 1, 1, 1}; float mag, tolf;
    static const tfu_op acts[] = { TFU_OP_GELU, TFU_OP_SILU, TFU_OP_RELU, TFU_OP_TANH, TFU_OP_GELU_ERF };
    int j;
    if (tt_int(0, 4) == 0) {
        /* a computed left operand: x^T x (K x N x ...) is N x N x ... */
        w = x.t; M = x.t->ne[1];
        mag = x.mag * x.mag * (float)sqrt((double)K);
    } else {
        ne[0] = K; ne[1] = M;
        if (tt_int(0, 3) == 0) ne[2] = x.t->ne[2];
        if (tt_int(0, 5) == 0) ne[3] = x.t->ne[3];
        {
            float r = (float)sqrt(3.0 / (double)K);
            CK(g, w = leaf(g, rand_ftype(), ne, -r, r));
        }
        if (tt_int(0, 5) == 0) tfu_set_flags(w, TFU_FLAG_PARAM);
        mag = x.mag * 2;
    }
    CK(g, t = tfu_mul_mat(g->ctx, w, x.t));
    tolf = x.tolf + (float)sqrt((double)K);
    if (tt_int(0, 1)) {
        int64_t bn[4] = {1, 1, 1, 1}; tfu_tensor *b;
        bn[0] = t->ne[0];
        CK(g, b = leaf(g, TFU_F32, bn, -1.0f, 1.0f));
        CK(g, t = tfu_add(g->ctx, t, b));
        mag += 1;
    }
    if (tt_int(0, 1)) {
        if (mag > 6) { CK(g, t = tfu_tanh(g->ctx, t)); mag = 1; }
        else CK(g, t = tfu_unary(g->ctx, t, acts[tt_int(0, 4)]));
    }
    if (tt_int(0, 1) && (j = pick_compatible(g, t)) >= 0) {
        CK(g, t = tfu_add(g->ctx, t, g->v[j].t));
        mag += g->v[j].mag; tolf = fmaxf_(tolf, g->v[j].tolf);
    }
    push(g, t, mag, tolf);
}

/* the FFN: glu_split(mul_mat(Wg,x), mul_mat(Wu,x)), maybe down-projected */
static void step_ffn(gen_t *g) {
    int i = pick_lim(g, 6.0f); val_t x = g->v[i]; tfu_tensor *wg, *wu, *gt, *ut, *t;
    int64_t K = x.t->ne[0], F = tt_int(1, 24), ne[4] = {1, 1, 1, 1};
    float r = (float)sqrt(3.0 / (double)K), tolf = x.tolf + (float)sqrt((double)K), mag;
    tfu_type ty = rand_ftype();
    ne[0] = K; ne[1] = F;
    CK(g, wg = leaf(g, ty, ne, -r, r));
    CK(g, wu = leaf(g, ty, ne, -r, r));
    CK(g, gt = tfu_mul_mat(g->ctx, wg, x.t));
    CK(g, ut = tfu_mul_mat(g->ctx, wu, x.t));
    if (tt_int(0, 1)) CK(g, t = tfu_swiglu_split(g->ctx, gt, ut));
    else CK(g, t = tfu_glu_split(g->ctx, gt, ut, (tfu_glu_kind)tt_int(0, 3)));
    mag = 4 * x.mag * x.mag + 1;
    if (tt_int(0, 1)) {
        tfu_tensor *wd;
        ne[0] = F; ne[1] = K; r = (float)sqrt(3.0 / (double)F);
        CK(g, wd = leaf(g, ty, ne, -r, r));
        CK(g, t = tfu_mul_mat(g->ctx, wd, t));
        tolf += (float)sqrt((double)F);
        if (tt_int(0, 1)) { CK(g, t = tfu_add(g->ctx, t, x.t)); mag += x.mag; }
    }
    push(g, t, mag, tolf);
}

/* fused-row GLU: rows of 2n -> n */
static void step_glu(gen_t *g) {
    int i = pick_lim(g, 6.0f), k; val_t x = g->v[i]; tfu_tensor *t;
    if (x.t->ne[0] % 2 != 0) {
        /* make an even row: concat with itself along dim 0 */
        CK(g, t = tfu_concat(g->ctx, x.t, x.t, 0));
        x.t = t;
    }
    k = tt_int(0, 5);
    if (k == 0) t = tfu_swiglu(g->ctx, x.t);
    else if (k == 1) t = tfu_geglu(g->ctx, x.t);
    else if (k == 2) t = tfu_reglu(g->ctx, x.t);
    else t = tfu_glu(g->ctx, x.t, (tfu_glu_kind)tt_int(0, 3), tt_int(0, 1));
    CK(g, t);
    push(g, t, x.mag * x.mag + 1, x.tolf);
}

static void step_view(gen_t *g) {
    int i = pick(g), k = tt_int(0, 5); val_t x = g->v[i]; tfu_tensor *t = NULL;
    const tfu_tensor *a = x.t;
    if (k == 0 && a->ne[0] > 1 && a->ne[1] > 1) {
        CK(g, t = tfu_transpose(g->ctx, x.t));
        if (tt_int(0, 2)) CK(g, t = tfu_cont(g->ctx, t));
    } else if (k == 1 && a->ne[1] > 1 && tfu_is_contiguous(a)) {
        /* rows [r0, r0 + n) of dim 1 */
        int64_t ne[4]; int64_t r0 = tt_int(0, (int)a->ne[1] - 1), n = tt_int(1, (int)(a->ne[1] - r0));
        ne[0] = a->ne[0]; ne[1] = n; ne[2] = a->ne[2]; ne[3] = a->ne[3];
        CK(g, t = tfu_view(g->ctx, x.t, 4, ne, a->nb + 1, (size_t)r0 * a->nb[1]));
    } else if (k == 2 && a->ne[0] > 1 && tfu_is_contiguous(a)) {
        /* columns [c0, c0 + n) of every row */
        int64_t ne[4]; int64_t c0 = tt_int(0, (int)a->ne[0] - 1), n = tt_int(1, (int)(a->ne[0] - c0));
        ne[0] = n; ne[1] = a->ne[1]; ne[2] = a->ne[2]; ne[3] = a->ne[3];
        CK(g, t = tfu_view(g->ctx, x.t, 4, ne, a->nb + 1, (size_t)c0 * a->nb[0]));
    } else if (k == 3 && tfu_is_contiguous(a)) {
        if (tt_int(0, 1)) CK(g, t = tfu_reshape_2d(g->ctx, x.t, a->ne[0] * a->ne[1], a->ne[2] * a->ne[3]));
        else CK(g, t = tfu_reshape_3d(g->ctx, x.t, a->ne[0], a->ne[1] * a->ne[2], a->ne[3]));
    } else if (k == 4) {
        static const int perms[][4] = { {0, 2, 1, 3}, {1, 2, 0, 3}, {2, 0, 1, 3}, {1, 0, 2, 3}, {0, 1, 3, 2} };
        const int *p = perms[tt_int(0, 4)];
        CK(g, t = tfu_permute(g->ctx, x.t, p[0], p[1], p[2], p[3]));
        CK(g, t = tfu_cont(g->ctx, t));
    } else if (tfu_is_contiguous(a) && a->ne[0] * a->ne[1] > 1) {
        /* a flat 1-d window */
        int64_t n = tfu_nelements(a), o = tt_int(0, (int)(n - 1)), m = tt_int(1, (int)(n - o));
        CK(g, t = tfu_view_1d(g->ctx, x.t, m, (size_t)o * sizeof(float)));
    } else {
        CK(g, t = tfu_cont(g->ctx, x.t));
    }
    push(g, t, x.mag, x.tolf);
    /* a view is mostly consumed right away */
    if (t->op == TFU_OP_VIEW && tt_int(0, 2)) {
        if (tt_int(0, 1)) step_unary(g); else step_binary(g);
    }
}

static void step_other(gen_t *g) {
    int i = pick(g), k = tt_int(0, 6); val_t x = g->v[i]; tfu_tensor *t;
    if (k == 0) {
        /* x - mean(x) (a broadcast of a reduction) */
        CK(g, t = tfu_mean(g->ctx, x.t));
        push(g, t, x.mag, x.tolf);
        CK(g, t = tfu_sub(g->ctx, x.t, t));
        push(g, t, 2 * x.mag, x.tolf);
    } else if (k == 1) {
        CK(g, t = tfu_sum_rows(g->ctx, x.t));
        push(g, t, x.mag * (float)x.t->ne[0], x.tolf * 2);
    } else if (k == 2 && g->nchk < MAXC) {
        /* argmax: terminal, compared by value */
        CK(g, t = tfu_argmax(g->ctx, x.t));
        tfu_set_name(t, "argmax");
        g->chk[g->nchk] = t; g->chk_tol[g->nchk] = x.tolf; g->nchk++;
        if (g->nout < 8) g->out[g->nout++] = t;
    } else if (k == 3) {
        /* get_rows from a leaf table or from a computed 2-d value */
        int64_t ne[4] = {1, 1, 1, 1}, V, n, j; tfu_tensor *tab, *idx;
        if (x.t->ne[2] == 1 && x.t->ne[3] == 1 && tt_int(0, 1)) { tab = x.t; }
        else { ne[0] = tt_int(1, 20); ne[1] = tt_int(1, 12); CK(g, tab = leaf(g, rand_ftype(), ne, -1, 1)); }
        V = tab->ne[1];
        ne[0] = n = tt_int(1, 8); ne[1] = tt_int(1, 2); ne[2] = 1;
        CK(g, idx = leaf(g, TFU_I32, ne, 0, 0));
        for (j = 0; j < n * ne[1]; j++) ((int32_t *)idx->data)[j] = tt_int(0, (int)V - 1);
        CK(g, t = tfu_get_rows(g->ctx, tab, idx));
        push(g, t, tab == x.t ? x.mag : 1, tab == x.t ? x.tolf : 1);
    } else if (k == 4 && x.t->ne[0] % 2 == 0 && x.t->ne[3] == 1) {
        int64_t ne[4] = {1, 1, 1, 1}, j; tfu_tensor *pos; int nd = 2 * tt_int(1, (int)(x.t->ne[0] / 2));
        ne[0] = x.t->ne[2];
        CK(g, pos = leaf(g, TFU_I32, ne, 0, 0));
        for (j = 0; j < ne[0]; j++) ((int32_t *)pos->data)[j] = tt_int(0, 60);
        CK(g, t = tfu_rope(g->ctx, x.t, pos, nd, tt_int(0, 1) ? TFU_ROPE_NEOX : TFU_ROPE_NORMAL, 10000.0f));
        push(g, t, x.mag * 1.5f, x.tolf * 2);
    } else {
        int d = tt_int(0, 3); int64_t ne[4]; tfu_tensor *b;
        memcpy(ne, x.t->ne, sizeof ne);
        ne[d] = tt_int(1, 4);
        CK(g, b = leaf(g, tt_int(0, 2) ? TFU_F32 : TFU_F16, ne, -1, 1));
        CK(g, t = tt_int(0, 1) ? tfu_concat(g->ctx, x.t, b, d) : tfu_concat(g->ctx, b, x.t, d));
        push(g, t, x.mag > 1 ? x.mag : 1, x.tolf);
    }
}

/* cpy: into a fresh leaf, or into the leaf the producing chain reads */
static void step_cpy(gen_t *g) {
    int i = pick(g); val_t x = g->v[i]; tfu_tensor *d, *t, *c; int64_t ne[4];
    memcpy(ne, x.t->ne, sizeof ne);
    if (tt_int(0, 1)) {
        CK(g, d = leaf(g, tt_int(0, 2) ? TFU_F32 : TFU_F16, ne, -1, 1));
        CK(g, c = tfu_cpy(g->ctx, x.t, d));
        push(g, c, x.mag, x.tolf * (d->type == TFU_F16 ? 25 : 1));
    } else {
        /* d is read only by the chain that produces what is copied into it */
        g->cpy_into_input = 1;
        CK(g, d = leaf(g, TFU_F32, ne, -1, 1));
        CK(g, t = tfu_mul(g->ctx, d, x.t));
        CK(g, t = tfu_scale_bias(g->ctx, t, 0.5f, 1.0f));
        CK(g, t = tfu_tanh(g->ctx, t));
        if (tt_int(0, 1)) push(g, t, 1, x.tolf);
        CK(g, c = tfu_cpy(g->ctx, t, d));
        push(g, c, 1, x.tolf);
    }
}

/* a copy of x into a view of a leaf L (a column window at offset 0 or 1 of
   rows one longer, so another window overlaps it); reads of L's bytes
   through an overlapping view before and after the copy */
static void step_cpy_view(gen_t *g) {
    int i = pick(g); val_t x = g->v[i]; tfu_tensor *L, *dst, *before, *after, *c, *t;
    int64_t ne[4]; int off = tt_int(0, 1);
    memcpy(ne, x.t->ne, sizeof ne);
    ne[0] += 1;
    g->cpy_into_input = 1;
    CK(g, L = leaf(g, TFU_F32, ne, -1, 1));
    /* a window shifted by one element against the destination */
    CK(g, before = tfu_view(g->ctx, L, 4, x.t->ne, L->nb + 1, (size_t)(1 - off) * L->nb[0]));
    CK(g, t = tfu_neg(g->ctx, before));
    push(g, t, 1, 1);
    CK(g, dst = tfu_view(g->ctx, L, 4, x.t->ne, L->nb + 1, (size_t)off * L->nb[0]));
    CK(g, c = tfu_cpy(g->ctx, x.t, dst));
    push(g, c, x.mag, x.tolf);
    CK(g, after = tfu_view(g->ctx, L, 4, x.t->ne, L->nb + 1, (size_t)(1 - off) * L->nb[0]));
    CK(g, t = tfu_add(g->ctx, after, c));
    push(g, t, x.mag + 1, x.tolf);
}

/* rows of huge values (1e20 or 3e38) into rms_norm, norm or soft_max */
static void step_huge(gen_t *g) {
    int64_t ne[4] = {1, 1, 1, 1}; tfu_tensor *x, *t; int k = tt_int(0, 2);
    float big = tt_int(0, 1) ? 1e20f : 3e38f;
    ne[0] = tt_int(1, 40); ne[1] = tt_int(1, 3);
    CK(g, x = leaf(g, TFU_F32, ne, -1, 1));
    CK(g, t = tfu_scale(g->ctx, x, 1.0f));   /* the reduction reads a computed value: fusable */
    {
        /* scale of 1 keeps the leaf's values; write the huge ones into the leaf */
        int64_t e, n = tfu_nelements(x);
        for (e = 0; e < n; e++) ((float *)x->data)[e] = big * tt_rand(-1.0f, 1.0f);
    }
    if (k == 0) CK(g, t = tfu_rms_norm(g->ctx, t, 1e-5f));
    else if (k == 1) CK(g, t = tfu_norm(g->ctx, t, 1e-5f));
    else CK(g, t = tfu_soft_max_ext(g->ctx, t, NULL, 1.0f / big));
    push(g, t, (float)sqrt((double)ne[0]) + 1, 4);
}

/* build one random graph; returns the graph or NULL (g->bad says where) */
static tfu_graph *build(gen_t *g, uint64_t seed) {
    int64_t ne[4]; int n_steps, s, i; tfu_graph *gr;
    tt_seed(seed);
    g->nv = 0; g->nchk = 0; g->nout = 0; g->bad = 0; g_n_trace = 0; g->cpy_into_input = 0;
    ne[0] = tt_int(0, 3) == 0 ? tt_int(1, 40) : tt_int(1, 12);
    ne[1] = tt_int(1, 6);
    ne[2] = tt_int(0, 2) == 0 ? tt_int(1, 3) : 1;
    ne[3] = tt_int(0, 5) == 0 ? 2 : 1;
    push(g, leaf(g, TFU_F32, ne, -2, 2), 2, 1);
    if (tt_int(0, 1)) push(g, leaf(g, rand_ftype(), ne, -2, 2), 2, 1);
    n_steps = tt_int(3, 24);
    for (s = 0; s < n_steps && !g->bad && g->nv < MAXV - 16; s++) {
        int r = tt_int(0, 99);
        const char *what;
        /* tame large values first */
        if (g->v[g->nv - 1].mag > 50 && g->v[g->nv - 1].t->type == TFU_F32) {
            tfu_tensor *t = tfu_tanh(g->ctx, g->v[g->nv - 1].t);
            push(g, t, 1, g->v[g->nv - 1].tolf);
            continue;
        }
        if (r < 18)      { what = "unary"; step_unary(g); }
        else if (r < 24) { what = "safe_fn"; step_safe_fn(g); }
        else if (r < 32) { what = "scale"; step_scale(g); }
        else if (r < 50) { what = "binary"; step_binary(g); }
        else if (r < 54) { what = "div"; step_div(g); }
        else if (r < 62) { what = "norm"; step_norm(g); }
        else if (r < 68) { what = "softmax"; step_softmax(g); }
        else if (r < 76) { what = "matmul"; step_matmul(g); }
        else if (r < 80) { what = "ffn"; step_ffn(g); }
        else if (r < 83) { what = "glu"; step_glu(g); }
        else if (r < 91) { what = "view"; step_view(g); }
        else if (r < 96) { what = "other"; step_other(g); }
        else if (r < 98 || !g_views_cpy) { what = "cpy"; step_cpy(g); }
        else             { what = "cpy_view"; step_cpy_view(g); }
        if (g_special && tt_int(0, 79) == 0) { what = "huge"; step_huge(g); }
        if (g_n_trace < 256) g_op_trace[g_n_trace++] = what;
    }
    g->nops = s;
    if (g->bad) return NULL;
    /* outputs: the last computed value and a few others */
    for (i = g->nv - 1; i >= 0; i--) if (!g->v[i].leaf) { if (g->nout < 8) g->out[g->nout++] = g->v[i].t; break; }
    for (s = tt_int(0, 3); s > 0 && g->nout < 8; s--) {
        i = tt_int(0, g->nv - 1);
        if (g->v[i].leaf || (g->v[i].view && tt_int(0, 3))) continue;
        g->out[g->nout++] = g->v[i].t;
    }
    if (g->nout == 0) {
        /* nothing computed yet: one op on the input */
        tfu_tensor *t = tfu_sqr(g->ctx, g->v[0].t);
        if (!t) { g->bad = __LINE__; return NULL; }
        push(g, t, 4, 1);
        g->out[g->nout++] = t;
    }
    gr = tfu_graph_new(g->ctx, 2048);
    if (!gr) { g->bad = __LINE__; return NULL; }
    for (i = 0; i < g->nout; i++) {
        if (tfu_graph_build_expand(gr, g->out[i]) != TFU_OK) { g->bad = __LINE__; return NULL; }
        if (g->out[i]->type != TFU_I32 && g->nchk < MAXC) {
            int k, seen = 0;
            for (k = 0; k < g->nchk; k++) if (g->chk[k] == g->out[i]) seen = 1;
            if (!seen) {
                for (k = 0; k < g->nv; k++) if (g->v[k].t == g->out[i]) break;
                g->chk[g->nchk] = g->out[i];
                g->chk_tol[g->nchk] = k < g->nv ? g->v[k].tolf : 1;
                g->nchk++;
            }
        }
    }
    return gr;
}

/* --- plan checks ------------------------------------------------------- */

/* the tensor whose memory t reads (views resolved) */
static const tfu_tensor *base_of(const tfu_tensor *t) {
    while (t && t->op == TFU_OP_VIEW) t = t->src[0];
    return t;
}

static int n_nonview_of(tfu_graph *gr) {
    int i, n = 0;
    for (i = 0; i < tfu_graph_n_nodes(gr); i++) if (tfu_graph_node(gr, i)->op != TFU_OP_VIEW) n++;
    return n;
}

static int check_plan(tfu_plan *p, tfu_graph *gr, int no_fusion, const char *where) {
    int n = tfu_graph_n_nodes(gr), i, j, s, fails = 0, n_nonview = 0, n_elided = 0, sum_nodes = 0;
    tfu_plan_stats st = tfu_plan_get_stats(p);
    size_t arena = tfu_plan_arena_bytes(p);
    int ng = tfu_plan_n_groups(p);
#define PF(cond, ...) do { if (!(cond)) { fails++; if (fails < 6) { printf("  %s: ", where); printf(__VA_ARGS__); printf("\n"); } } } while (0)
    PF(st.n_groups == ng, "stats n_groups %d != %d", st.n_groups, ng);
    PF(st.n_barriers == (st.n_stages > 0 ? st.n_stages - 1 : 0), "n_barriers %d n_stages %d", st.n_barriers, st.n_stages);
    PF(st.n_stages >= 1 || n_nonview_of(gr) == 0, "%d stages", st.n_stages);
    PF(st.arena_bytes == arena, "stats arena %zu != %zu", st.arena_bytes, arena);
    for (i = 0; i < ng; i++) {
        int stg = tfu_plan_group_stage(p, i);
        PF(stg >= 0 && stg < st.n_stages, "group %d stage %d of %d", i, stg, st.n_stages);
        sum_nodes += tfu_plan_group_n_nodes(p, i);
    }
    for (i = 0; i < n; i++) {
        tfu_tensor *t = tfu_graph_node(gr, i);
        int grp = tfu_plan_group_of(p, t), mat = tfu_plan_is_materialized(p, t);
        int64_t off = tfu_plan_value_offset(p, t);
        if (t->op == TFU_OP_VIEW) {
            PF(grp == -1, "view %s in group %d", t->name, grp);
            continue;
        }
        n_nonview++;
        PF(grp >= 0 && grp < ng, "node %d (%s) group %d", i, tfu_op_name(t->op), grp);
        if (!mat) {
            n_elided++;
            PF(off == -1, "elided node %d has offset %lld", i, (long long)off);
            PF(!(t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)), "node %d (%s) flagged but elided", i, tfu_op_name(t->op));
            for (j = 0; j < n; j++) {
                tfu_tensor *c = tfu_graph_node(gr, j); int k;
                for (k = 0; k < TFU_MAX_SRC; k++) if (c->src[k] == t) {
                    PF(c->op != TFU_OP_VIEW, "elided node %d (%s) read through a view", i, tfu_op_name(t->op));
                    PF(c->op == TFU_OP_VIEW || tfu_plan_group_of(p, c) == grp,
                       "elided node %d (%s, group %d) read by node %d (%s) in group %d", i, tfu_op_name(t->op), grp,
                       j, tfu_op_name(c->op), tfu_plan_group_of(p, c));
                }
            }
        }
        if (no_fusion) PF(mat, "no_fusion: node %d elided", i);
        if (t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)) PF(mat, "node %d (%s) flagged, not materialised", i, tfu_op_name(t->op));
        if (off >= 0) {
            int f = -1, l = -1;
            PF(mat, "node %d has offset but is not materialised", i);
            PF((size_t)off + tfu_nbytes(t) <= arena, "node %d [%lld,+%zu) past arena %zu", i, (long long)off, tfu_nbytes(t), arena);
            tfu_plan_value_lifetime(p, t, &f, &l);
            PF(f >= 0 && f <= l && l < st.n_stages, "node %d lifetime [%d,%d] of %d stages", i, f, l, st.n_stages);
            if (grp >= 0) PF(tfu_plan_group_stage(p, grp) >= f && tfu_plan_group_stage(p, grp) <= l,
                             "node %d produced in stage %d outside lifetime [%d,%d]", i, tfu_plan_group_stage(p, grp), f, l);
        }
        /* producers in earlier stages; readers inside the lifetime */
        for (s = 0; s < TFU_MAX_SRC; s++) {
            const tfu_tensor *b = base_of(t->src[s]);
            int gb, f = -1, l = -1;
            if (!b || b->op == TFU_OP_NONE || !tfu_graph_contains(gr, b)) continue;
            gb = tfu_plan_group_of(p, b);
            if (gb < 0 || grp < 0) continue;
            if (gb != grp)
                PF(tfu_plan_group_stage(p, gb) < tfu_plan_group_stage(p, grp),
                   "node %d (%s) stage %d reads node %s (%s) of stage %d", i, tfu_op_name(t->op),
                   tfu_plan_group_stage(p, grp), b->name, tfu_op_name(b->op), tfu_plan_group_stage(p, gb));
            if (t->src[s] != b) {
                PF(tfu_plan_is_materialized(p, b), "node %d reads %s (%s) through a view, not materialised",
                   i, b->name, tfu_op_name(b->op));
                PF(gb != grp, "node %d (%s) reads a view of %s (%s) of its own group %d", i,
                   tfu_op_name(t->op), b->name, tfu_op_name(b->op), grp);
            }
            if (gb != grp && tfu_plan_value_offset(p, b) >= 0) {
                tfu_plan_value_lifetime(p, b, &f, &l);
                PF(tfu_plan_group_stage(p, grp) <= l, "node %d (stage %d) reads %s after its lifetime [%d,%d]",
                   i, tfu_plan_group_stage(p, grp), tfu_op_name(b->op), f, l);
            }
        }
    }
    PF(sum_nodes == n_nonview, "groups hold %d nodes, graph has %d non-view nodes", sum_nodes, n_nonview);
    PF(st.n_values_elided == n_elided, "stats n_values_elided %d, counted %d", st.n_values_elided, n_elided);
    if (no_fusion) PF(ng == n_nonview, "no_fusion: %d groups for %d nodes", ng, n_nonview);
    /* no two values alive at once share bytes */
    for (i = 0; i < n; i++) {
        tfu_tensor *a = tfu_graph_node(gr, i); int64_t oa = tfu_plan_value_offset(p, a); int fa, la;
        if (a->op == TFU_OP_VIEW || oa < 0) continue;
        tfu_plan_value_lifetime(p, a, &fa, &la);
        for (j = i + 1; j < n; j++) {
            tfu_tensor *b = tfu_graph_node(gr, j); int64_t ob = tfu_plan_value_offset(p, b); int fb, lb;
            if (b->op == TFU_OP_VIEW || ob < 0) continue;
            tfu_plan_value_lifetime(p, b, &fb, &lb);
            if (fa > lb || fb > la) continue;
            PF(oa + (int64_t)tfu_nbytes(a) <= ob || ob + (int64_t)tfu_nbytes(b) <= oa,
               "nodes %d (%s) [%lld,+%zu) life [%d,%d] and %d (%s) [%lld,+%zu) life [%d,%d] overlap",
               i, tfu_op_name(a->op), (long long)oa, tfu_nbytes(a), fa, la,
               j, tfu_op_name(b->op), (long long)ob, tfu_nbytes(b), fb, lb);
        }
    }
#undef PF
    return fails;
}

/* --- comparison -------------------------------------------------------- */

static int compare(const tfu_tensor *r, const tfu_tensor *p, float tolf, const char *where, int idx) {
    int64_t n = tfu_nelements(r), k; float *a, *b; double worst = 0; int64_t wk = -1; int bad = 0;
    double tol = 1e-4 * tolf;
    if (n != tfu_nelements(p)) { printf("  %s: check %d: %lld vs %lld elements\n", where, idx, (long long)n, (long long)tfu_nelements(p)); return 1; }
    if (!p->data) { printf("  %s: check %d (%s %s): no data\n", where, idx, tfu_op_name(p->op), p->name); return 1; }
    a = tt_copy_out(r); b = tt_copy_out(p);
    if (r->op == TFU_OP_ARGMAX) {
        /* equal, or the plan's pick is (within rounding) as large in the reference input */
        const tfu_tensor *x = r->src[0];
        for (k = 0; k < n && !bad; k++) if (a[k] != b[k]) {
            int64_t i1 = k % r->ne[1], i2 = (k / r->ne[1]) % r->ne[2], i3 = k / (r->ne[1] * r->ne[2]);
            int64_t pi = (int64_t)b[k];
            if (pi < 0 || pi >= x->ne[0] ||
                fabs(tfu_get_f32(x, pi, i1, i2, i3) - tfu_get_f32(x, (int64_t)a[k], i1, i2, i3)) > tol * 10) {
                bad = 1; wk = k; worst = b[k];
            }
        }
        if (bad) printf("  %s: check %d argmax: element %lld is %g, reference %g\n", where, idx, (long long)wk, worst, a[wk]);
    } else {
        for (k = 0; k < n; k++) {
            double v = b[k], ref = a[k], d;
            if (ref != ref) { if (v == v) { worst = INFINITY; wk = k; } continue; }
            if (isinf(ref) && v == ref) continue;
            d = fabs(v - ref) / (fabs(ref) > 1.0 ? fabs(ref) : 1.0);
            if (d != d) d = INFINITY;
            if (d > worst) { worst = d; wk = k; }
        }
        if (worst > tol) {
            bad = 1;
            printf("  %s: check %d (%s '%s', %lldx%lldx%lldx%lld): err %.3g > tol %.3g at %lld: %.8g vs ref %.8g\n",
                   where, idx, tfu_op_name(p->op), p->name, (long long)p->ne[0], (long long)p->ne[1],
                   (long long)p->ne[2], (long long)p->ne[3], worst, tol, (long long)wk, b[wk], a[wk]);
        }
    }
    free(a); free(b);
    return bad;
}

/* the graph, one node per line (for --v 2) */
static void dump_graph(tfu_graph *gr) {
    int i, s, n = tfu_graph_n_nodes(gr);
    for (i = 0; i < n; i++) {
        tfu_tensor *t = tfu_graph_node(gr, i);
        printf("  #%-3d %-9s %s %lldx%lldx%lldx%lld nb %zu,%zu,%zu,%zu%s%s src", i, tfu_op_name(t->op), tfu_type_name(t->type),
               (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
               t->nb[0], t->nb[1], t->nb[2], t->nb[3],
               (t->flags & TFU_FLAG_OUTPUT) ? " OUT" : "", (t->flags & TFU_FLAG_KEEP) ? " KEEP" : "");
        for (s = 0; s < TFU_MAX_SRC; s++) if (t->src[s]) {
            int k;
            for (k = 0; k < n; k++) if (tfu_graph_node(gr, k) == t->src[s]) break;
            if (k < n) printf(" #%d", k);
            else printf(" leaf(%s %lldx%lldx%lldx%lld)", tfu_type_name(t->src[s]->type), (long long)t->src[s]->ne[0],
                        (long long)t->src[s]->ne[1], (long long)t->src[s]->ne[2], (long long)t->src[s]->ne[3]);
        }
        if (t->op == TFU_OP_VIEW || t->op == TFU_OP_CPY) printf(" offs %zu", t->view_offs);
        printf(" use %d\n", tfu_graph_use_count(gr, t));
    }
}

/* --- a counting allocator: every block a plan takes it gives back ------ */
static long g_live_blocks;
static void *count_alloc(size_t n, void *user) { (void)user; g_live_blocks++; return malloc(n); }
static void count_free(void *ptr, void *user) { (void)user; if (ptr) g_live_blocks--; free(ptr); }

/* --- eval callback: counts the flagged tensors it is shown ------------- */
static int g_eval_calls, g_eval_bad;
static int count_eval(const tfu_tensor *t, void *user) {
    g_eval_calls++;
    if (!(t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)) || !tfu_graph_contains((tfu_graph *)user, t) || !t->data) g_eval_bad++;
    return 0;
}

/* --- caller parallel-for ------------------------------------------------ */
static int g_pf_calls;
static void serial_for(void *user, int n, void (*task)(void *, int), void *task_ctx) {
    int i;
    (void)user;
    g_pf_calls++;
    for (i = n - 1; i >= 0; i--) task(task_ctx, i);   /* any order must do */
}

static tfu_plan *guarded_compile(tfu_graph *gr, const tfu_plan_options *o, int *aborted) {
    tfu_plan *p;
    *aborted = 0;
    signal(SIGABRT, on_abort);   /* abort() may have reset it */
    g_abort_armed = 1;
    if (sigsetjmp(g_abort_env, 1)) { *aborted = 1; return NULL; }
    p = tfu_plan_compile(gr, o);
    g_abort_armed = 0;
    return p;
}

static void *ctx_mem[2];
#if defined(__GNUC__) || defined(__clang__)
static unsigned char g_arena_buf[1 << 20] __attribute__((aligned(64)));
#else
static unsigned char g_arena_buf[1 << 20];
#endif
static size_t ctx_size;

int main(int argc, char **argv) {
    int n_graphs = tt_arg_int(argc, argv, "--graphs", 40000);
    int seed = tt_arg_int(argc, argv, "--seed", 1);
    int only = tt_arg_int(argc, argv, "--only", -1);
    int gi, n_built = 0, n_bad_build = 0, n_fused_groups = 0, n_elided = 0, graph_fail = 0;
    static gen_t gen[2];
    setvbuf(stdout, NULL, _IOLBF, 0);   /* a crash still shows the graph */
    signal(SIGABRT, on_abort);
    g_verbose = tt_verbose = tt_arg_int(argc, argv, "--v", 0);
    g_views_cpy = tt_arg_int(argc, argv, "--views-cpy", 1);
    g_special = tt_arg_int(argc, argv, "--special", 1);
    g_variants = tt_arg_int(argc, argv, "--variants", 1);
    (void)tt_max_err;
    ctx_size = (size_t)CTX_MB << 20;
    ctx_mem[0] = malloc(ctx_size); ctx_mem[1] = malloc(ctx_size);
    if (!ctx_mem[0] || !ctx_mem[1]) { printf("no memory\n"); return 1; }

    if (only >= 0) n_graphs = only + 1;
    for (gi = only >= 0 ? only : 0; gi < n_graphs; gi++) {
        uint64_t gseed = (uint64_t)seed * 1000003ull + (uint64_t)gi;
        tfu_graph *gr[2];
        tfu_plan_options o = tfu_plan_default_options();
        tfu_plan *p;
        int mode = gi % (g_variants ? 5 : 3), k, fails = 0, nf, aborted = 0;
        char where[96];
        void *arena = NULL;
        tfu_result rr;
        if (only >= 0 && gi != only) continue;
        snprintf(where, sizeof where, "seed %d graph %d", seed, gi);
        for (k = 0; k < 2; k++) {
            tfu_context_params cp;
            cp.mem = ctx_mem[k]; cp.mem_size = ctx_size; cp.no_alloc = 0;
            gen[k].ctx = tfu_init(cp);
            if (!gen[k].ctx) { printf("tfu_init failed\n"); return 1; }
            gr[k] = build(&gen[k], gseed);
        }
        if (!gr[0] || !gr[1]) {
            n_bad_build++;
            TT_CHECK(0, "%s: a builder failed at test line %d: %s (%s)", where, gen[0].bad,
                     tfu_last_error_msg(gen[0].ctx), tfu_result_str(tfu_last_error(gen[0].ctx)));
            if (gen[0].bad > 0 && g_verbose) { int q; for (q = 0; q < g_n_trace; q++) printf(" %s", g_op_trace[q]); printf("\n"); }
            goto next;
        }
        n_built++;
        if (g_verbose) {
            int q; printf("%s: %d nodes, steps:", where, tfu_graph_n_nodes(gr[0]));
            for (q = 0; q < g_n_trace; q++) printf(" %s", g_op_trace[q]);
            printf("\n");
        }
        if (g_verbose > 1) dump_graph(gr[1]);
        TT_CHECK(tfu_graph_hash(gr[0]) == tfu_graph_hash(gr[1]), "%s: two builds hash differently", where);
        rr = tfu_graph_compute_ref(gr[0]);
        if (rr != TFU_OK) {
            TT_CHECK(0, "%s: compute_ref: %s (%s)", where, tfu_result_str(rr), tfu_last_error_msg(gen[0].ctx));
            goto next;
        }

        /* the plan on the second copy */
        o.n_threads = mode == 1 ? 2 + (gi / 3) % 3 : 1;
        g_eval_calls = 0;
        if ((gi / 3) % 11 == 4) { o.eval_cb = count_eval; o.eval_user = gr[1]; }
        o.no_fusion = mode == 2;
        if ((gi / 3) % 4 == 1 && mode != 1) { o.parallel_for = serial_for; o.parallel_for_user = NULL; }
        if ((gi / 3) % 5 == 2) { o.allocator.alloc_fn = count_alloc; o.allocator.free_fn = count_free; g_live_blocks = 0; }
        if ((gi / 3) % 7 == 3 && (gi / 3) % 2 == 0) {
            /* caller memory given at compile time, larger than needed */
            o.arena = g_arena_buf; o.arena_size = sizeof g_arena_buf;
            tt_poison(g_arena_buf, sizeof g_arena_buf);
        }
        if (mode == 4) {
            /* the caller arena at compile time */
            o.arena = g_arena_buf; o.arena_size = sizeof g_arena_buf;
            tt_poison(g_arena_buf, sizeof g_arena_buf);
        }
        if (mode == 3) setenv("TFU_NO_SIMD", "1", 1);
        p = guarded_compile(gr[1], &o, &aborted);
        if (mode == 3) unsetenv("TFU_NO_SIMD");
        if (aborted) {
            TT_CHECK(0, "%s: the library aborted inside tfu_plan_compile (mode %d; message on stderr)", where, mode);
            graph_fail++;
            goto next;
        }
        if (!p) {
            TT_CHECK(0, "%s: compile (mode %d): %s", where, mode, tfu_last_error_msg(gen[1].ctx));
            goto next;
        }
        nf = check_plan(p, gr[1], o.no_fusion, where);
        if (o.arena) {
            /* every materialised value lives in the caller's memory */
            int q, outside = 0;
            for (q = 0; q < tfu_graph_n_nodes(gr[1]); q++) {
                tfu_tensor *t = tfu_graph_node(gr[1], q);
                int64_t off = tfu_plan_value_offset(p, t);
                if (off >= 0 && (unsigned char *)t->data != g_arena_buf + off) outside++;
            }
            TT_CHECK(outside == 0, "%s: %d values not at arena + offset in the caller's arena", where, outside);
        }
        TT_CHECK(nf == 0, "%s: plan invariants (mode %d): %d failures", where, mode, nf);
        {
            tfu_plan_stats st = tfu_plan_get_stats(p);
            n_fused_groups += st.n_nodes_fused; n_elided += st.n_values_elided;
        }
        if ((gi / 3) % 2 == 1 && !o.arena) {
            /* a caller arena, all poisoned */
            size_t ab = tfu_plan_arena_bytes(p);
            unsigned char *al;
            arena = malloc(ab + 64);
            al = (unsigned char *)arena + (64 - (uintptr_t)arena % 64) % 64;   /* 64-byte aligned */
            tt_poison(al, ab);
            rr = tfu_plan_set_arena(p, al, ab);
            TT_CHECK(rr == TFU_OK, "%s: set_arena: %s", where, tfu_result_str(rr));
        } else {
            /* the plan's own arena: poison what it will write */
            for (k = 0; k < gen[1].nchk; k++) {
                tfu_tensor *t = gen[1].chk[k];
                if (tfu_graph_contains(gr[1], t) && t->data && tfu_plan_value_offset(p, t) >= 0)
                    tt_poison(t->data, tfu_nbytes(t));
            }
        }
        rr = tfu_plan_run(p);
        TT_CHECK(rr == TFU_OK, "%s: plan_run (mode %d): %s", where, mode, tfu_result_str(rr));
        if (o.eval_cb) {
            int q, want = 0;
            for (q = 0; q < tfu_graph_n_nodes(gr[1]); q++) {
                tfu_tensor *t = tfu_graph_node(gr[1], q);
                /* views too, except views of leaves, which no stage computes */
                if ((t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)) && base_of(t)->op != TFU_OP_NONE) want++;
            }
            TT_CHECK(g_eval_calls == want && g_eval_bad == 0, "%s: eval callback called %d times (want %d), %d bad",
                     where, g_eval_calls, want, g_eval_bad);
            g_eval_calls = g_eval_bad = 0;
        }
        if (rr == TFU_OK && mode == 1 && !gen[1].cpy_into_input) {
            /* threaded plans run a second time, outputs poisoned in between */
            for (k = 0; k < gen[1].nchk; k++) {
                tfu_tensor *t = gen[1].chk[k];
                if (tfu_graph_contains(gr[1], t) && t->data && tfu_plan_value_offset(p, t) >= 0)
                    tt_poison(t->data, tfu_nbytes(t));
            }
            rr = tfu_plan_run(p);
            TT_CHECK(rr == TFU_OK, "%s: second plan_run (mode %d): %s", where, mode, tfu_result_str(rr));
        }
        if (rr == TFU_OK) {
            for (k = 0; k < gen[0].nchk; k++) {
                if (!tfu_graph_contains(gr[0], gen[0].chk[k])) continue;
                if (compare(gen[0].chk[k], gen[1].chk[k], gen[1].chk_tol[k], where, k)) fails++;
                else tt_passed++;
            }
            TT_CHECK(fails == 0, "%s (mode %d%s%s): %d mismatches", where, mode,
                     o.parallel_for ? ", parallel_for" : "", arena ? ", caller arena" : "", fails);
        }
        if ((fails || nf) && g_verbose) {
            /* every value the plan kept in memory, against the reference */
            int q, nn = tfu_graph_n_nodes(gr[1]);
            for (q = 0; q < nn; q++) {
                tfu_tensor *a = tfu_graph_node(gr[0], q), *b = tfu_graph_node(gr[1], q);
                float *x, *y; int64_t e, ne = tfu_nelements(a); double w = 0; int64_t wk = 0;
                if (b->op == TFU_OP_VIEW || !tfu_plan_is_materialized(p, b) || !b->data) continue;
                x = tt_copy_out(a); y = tt_copy_out(b);
                for (e = 0; e < ne; e++) {
                    double d = fabs((double)x[e] - y[e]) / (fabs(x[e]) > 1 ? fabs(x[e]) : 1);
                    if (d != d) d = INFINITY;
                    if (d > w) { w = d; wk = e; }
                }
                {
                    int f0 = -1, l0 = -1;
                    tfu_plan_value_lifetime(p, b, &f0, &l0);
                    printf("  node %2d %-9s %lldx%lldx%lldx%lld group %d life [%d,%d]%s: max err %.3g at %lld (%.9g vs ref %.9g)\n", q,
                           tfu_op_name(b->op), (long long)b->ne[0], (long long)b->ne[1], (long long)b->ne[2],
                           (long long)b->ne[3], tfu_plan_group_of(p, b), f0, l0,
                           (b->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)) ? "" : " (memory may be reused)", w, (long long)wk, y[wk], x[wk]);
                }
                free(x); free(y);
            }
        }
        if ((fails || nf) && g_verbose) {
            size_t need = tfu_plan_report(p, NULL, 0);
            char *buf = (char *)malloc(need + 1);
            tfu_plan_report(p, buf, need + 1);
            printf("%s\n", buf);
            free(buf);
        }
        if (fails || nf) graph_fail++;
        tfu_plan_free(p);
        if (o.allocator.alloc_fn) TT_CHECK(g_live_blocks == 0, "%s: %ld allocator blocks not given back", where, g_live_blocks);
    next:
        free(arena);
        if (graph_fail > 20) { printf("too many failing graphs, stopping\n"); break; }
    }
    printf("random: %d graphs built (%d failed to build), %d fused nodes, %d elided values, %d caller parallel-for calls\n",
           n_built, n_bad_build, n_fused_groups, n_elided, g_pf_calls);
    free(ctx_mem[0]); free(ctx_mem[1]);
    return tt_summary();
}
