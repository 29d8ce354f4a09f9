/* test_fusion.c - fusion asserted, not assumed.

   Fixed graphs whose grouping the planner must get exactly: what is fused,
   what is elided, what must stay in memory, how the groups are staged, how
   the arena shrinks. Every case also runs the plan and compares every OUTPUT
   and KEEP tensor with the reference executor on a separate context built
   from the same seed. */
#define _POSIX_C_SOURCE 200809L
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include "tfu_test.h"
#include "examples/llama.h"

#define CTX_BYTES ((size_t)48 << 20)

/* a fixture: one build of a graph in its own context */
typedef struct fx {
    tfu_context *ctx;
    tfu_graph   *g;
    tfu_tensor  *t[32];   /* tensors a case wants to look at */
    void        *arg;
} fx;
typedef int (*build_fn)(fx *f);

static int fx_make(fx *f, build_fn fn, void *arg, uint64_t seed) {
    memset(f, 0, sizeof *f);
    f->arg = arg;
    f->ctx = tfu_init_malloc(CTX_BYTES, 0);
    if (!f->ctx) return -1;
    f->g = tfu_graph_new(f->ctx, 4096);
    if (!f->g) return -1;
    tt_seed(seed);
    return fn(f);
}

static void fx_free(fx *f) { if (f->ctx) tfu_free(f->ctx); memset(f, 0, sizeof *f); }

static tfu_tensor *rnd(fx *f, tfu_type ty, int64_t n0, int64_t n1, float lo, float hi) {
    tfu_tensor *t = n1 > 1 ? tfu_new_tensor_2d(f->ctx, ty, n0, n1) : tfu_new_tensor_1d(f->ctx, ty, n0);
    if (t) tt_fill(t, lo, hi);
    return t;
}

static int out(fx *f, tfu_tensor *t) { return t && tfu_graph_build_expand(f->g, t) == TFU_OK ? 0 : -1; }

#define TRY(x) do { if (!(x)) return -1; } while (0)

/* --- plan invariants (as in test_random) -------------------------------- */
static const tfu_tensor *base_of(const tfu_tensor *t) {
    while (t && t->op == TFU_OP_VIEW) t = t->src[0];
    return t;
}

static int n_nonview(tfu_graph *g) {
    int i, n = 0;
    for (i = 0; i < tfu_graph_n_nodes(g); i++) if (tfu_graph_node(g, i)->op != TFU_OP_VIEW) n++;
    return n;
}

/* no two values alive in overlapping stages share bytes; producers run in
   earlier stages than consumers; elided values are internal */
static int check_plan(tfu_plan *p, tfu_graph *gr, const char *where) {
    int n = tfu_graph_n_nodes(gr), i, j, s, fails = 0;
    tfu_plan_stats st = tfu_plan_get_stats(p);
#define PF(cond, ...) do { if (!(cond)) { fails++; if (fails < 6) { printf("  %s: ", where); printf(__VA_ARGS__); printf("\n"); } } } while (0)
    PF(st.n_stages >= 1 && st.n_barriers == st.n_stages - 1, "n_barriers %d n_stages %d", st.n_barriers, st.n_stages);
    for (i = 0; i < n; i++) {
        tfu_tensor *t = tfu_graph_node(gr, i);
        int grp = tfu_plan_group_of(p, t);
        if (t->op == TFU_OP_VIEW) { PF(grp == -1, "view node %d in group %d", i, grp); continue; }
        PF(grp >= 0, "node %d (%s) in no group", i, tfu_op_name(t->op));
        if (!tfu_plan_is_materialized(p, t)) {
            PF(tfu_plan_value_offset(p, t) == -1, "elided node %d has an offset", i);
            PF(!(t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)), "flagged node %d elided", i);
            for (j = 0; j < n; j++) {
                tfu_tensor *c = tfu_graph_node(gr, j); int k;
                for (k = 0; k < TFU_MAX_SRC; k++) if (c->src[k] == t)
                    PF(c->op != TFU_OP_VIEW && tfu_plan_group_of(p, c) == grp,
                       "elided node %d (%s) used by node %d (%s) outside its group", i, tfu_op_name(t->op), j, tfu_op_name(c->op));
            }
        }
        for (s = 0; s < TFU_MAX_SRC; s++) {
            const tfu_tensor *b = base_of(t->src[s]); int gb;
            if (!b || b->op == TFU_OP_NONE || !tfu_graph_contains(gr, b)) continue;
            gb = tfu_plan_group_of(p, b);
            if (gb >= 0 && grp >= 0 && gb != grp)
                PF(tfu_plan_group_stage(p, gb) < tfu_plan_group_stage(p, grp),
                   "node %d (%s) in stage %d reads a value of stage %d", i, tfu_op_name(t->op),
                   tfu_plan_group_stage(p, grp), tfu_plan_group_stage(p, gb));
        }
    }
    for (i = 0; i < n; i++) {
        tfu_tensor *a = tfu_graph_node(gr, i); int64_t oa = tfu_plan_value_offset(p, a); int fa = -1, la = -1;
        if (a->op == TFU_OP_VIEW || oa < 0) continue;
        tfu_plan_value_lifetime(p, a, &fa, &la);
        PF((size_t)oa + tfu_nbytes(a) <= st.arena_bytes, "node %d past the arena", i);
        for (j = i + 1; j < n; j++) {
            tfu_tensor *b = tfu_graph_node(gr, j); int64_t ob = tfu_plan_value_offset(p, b); int fb = -1, lb = -1;
            if (b->op == TFU_OP_VIEW || ob < 0) continue;
            tfu_plan_value_lifetime(p, b, &fb, &lb);
            if (fa > lb || fb > la) continue;
            PF(oa + (int64_t)tfu_nbytes(a) <= ob || ob + (int64_t)tfu_nbytes(b) <= oa,
               "live values %d (%s) and %d (%s) overlap", i, tfu_op_name(a->op), j, tfu_op_name(b->op));
        }
    }
#undef PF
    return fails;
}

/* compare every OUTPUT/KEEP node of the plan's graph with the reference's */
static int compare_graphs(tfu_graph *ref, tfu_graph *pl, double tol, const char *where) {
    int i, n = tfu_graph_n_nodes(ref), bad = 0, seen = 0;
    if (n != tfu_graph_n_nodes(pl)) { printf("  %s: node counts differ\n", where); return 1; }
    for (i = 0; i < n; i++) {
        tfu_tensor *r = tfu_graph_node(ref, i), *p = tfu_graph_node(pl, i);
        float *a, *b; int64_t k, ne = tfu_nelements(r); double worst = 0; int64_t wk = 0;
        if (!(p->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP))) continue;
        seen++;
        if (!p->data) { printf("  %s: node %d (%s) has no data\n", where, i, tfu_op_name(p->op)); bad++; continue; }
        a = tt_copy_out(r); b = tt_copy_out(p);
        for (k = 0; k < ne; k++) {
            double d = fabs((double)b[k] - a[k]) / (fabs(a[k]) > 1.0 ? fabs(a[k]) : 1.0);
            if (d != d) d = INFINITY;
            if (d > worst) { worst = d; wk = k; }
        }
        if (worst > tol) {
            printf("  %s: node %d (%s '%s'): err %.3g at %lld: %.8g vs ref %.8g\n", where, i, tfu_op_name(p->op),
                   p->name, worst, (long long)wk, b[wk], a[wk]);
            bad++;
        }
        free(a); free(b);
    }
    if (!seen) { printf("  %s: nothing to compare\n", where); bad++; }
    return bad;
}

/* poison the flagged values the plan will write */
static void poison_outputs(tfu_plan *p, tfu_graph *g) {
    int i;
    for (i = 0; i < tfu_graph_n_nodes(g); i++) {
        tfu_tensor *t = tfu_graph_node(g, i);
        if ((t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)) && t->data && tfu_plan_value_offset(p, t) >= 0)
            tt_poison(t->data, tfu_nbytes(t));
    }
}

/* test_seam.c includes this file (with TEST_FUSION_NO_MAIN) and sees every
   case through this hook: its builder, options and reference, to run a
   fresh build through a second executor. */
typedef void (*case_hook_fn)(const char *name, build_fn fn, void *arg, const tfu_plan_options *opts, double tol, fx *ref);
static case_hook_fn g_case_hook;

/* A case: reference on one build, plan on another; plan checked, run and
   compared. Leaves the plan (caller frees) and both fixtures. */
static tfu_plan *run_case(const char *name, build_fn fn, void *arg, const tfu_plan_options *opts,
                          double tol, fx *ref, fx *pl) {
    tfu_plan *p; tfu_result r; int f;
    tfu_plan_options o = opts ? *opts : tfu_plan_default_options();
    if (fx_make(ref, fn, arg, 7) != 0 || fx_make(pl, fn, arg, 7) != 0) {
        TT_CHECK(0, "%s: build failed: %s", name, tfu_last_error_msg(ref->ctx ? ref->ctx : pl->ctx));
        return NULL;
    }
    r = tfu_graph_compute_ref(ref->g);
    TT_CHECK(r == TFU_OK, "%s: compute_ref: %s", name, tfu_result_str(r));
    p = tfu_plan_compile(pl->g, &o);
    TT_CHECK(p != NULL, "%s: compile: %s", name, tfu_last_error_msg(pl->ctx));
    if (!p) return NULL;
    f = check_plan(p, pl->g, name);
    TT_CHECK(f == 0, "%s: plan invariants: %d failures", name, f);
    poison_outputs(p, pl->g);
    r = tfu_plan_run(p);
    TT_CHECK(r == TFU_OK, "%s: run: %s", name, tfu_result_str(r));
    f = compare_graphs(ref->g, pl->g, tol, name);
    TT_CHECK(f == 0, "%s: %d tensors differ from the reference", name, f);
    if (g_case_hook) g_case_hook(name, fn, arg, &o, tol, ref);
    return p;
}

static void end_case(tfu_plan *p, fx *ref, fx *pl) {
    if (p) tfu_plan_free(p);
    fx_free(ref); fx_free(pl);
}

#define G(t) tfu_plan_group_of(p, (t))
#define MAT(t) tfu_plan_is_materialized(p, (t))

/* --- builders ------------------------------------------------------------ */

/* y = rms_norm(x) * w + r            t: 0 x, 1 n, 2 m, 3 y */
static int b_rms(fx *f) {
    tfu_tensor *x, *w, *r;
    TRY(x = rnd(f, TFU_F32, 64, 8, -2, 2));
    TRY(w = rnd(f, TFU_F32, 64, 1, 0.5f, 1.5f));
    TRY(r = rnd(f, TFU_F32, 64, 8, -1, 1));
    f->t[0] = x;
    TRY(f->t[1] = tfu_rms_norm(f->ctx, x, 1e-5f));
    TRY(f->t[2] = tfu_mul(f->ctx, f->t[1], w));
    TRY(f->t[3] = tfu_add(f->ctx, f->t[2], r));
    return out(f, f->t[3]);
}

/* x = a + b; y = rms_norm(x) * w + r; x KEEP (arg 0) or also read by a
   mul_mat (arg 1)      t: 0 x, 1 n, 2 m, 3 y, 4 mm */
static int b_add_rms(fx *f) {
    tfu_tensor *a, *b, *w, *r, *W;
    int mode = *(int *)f->arg;
    TRY(a = rnd(f, TFU_F32, 32, 6, -2, 2));
    TRY(b = rnd(f, TFU_F32, 32, 6, -2, 2));
    TRY(w = rnd(f, TFU_F32, 32, 1, 0.5f, 1.5f));
    TRY(r = rnd(f, TFU_F32, 32, 6, -1, 1));
    TRY(f->t[0] = tfu_add(f->ctx, a, b));
    tfu_set_name(f->t[0], "x");
    if (mode == 0) tfu_set_keep(f->t[0]);
    TRY(f->t[1] = tfu_rms_norm(f->ctx, f->t[0], 1e-5f));
    TRY(f->t[2] = tfu_mul(f->ctx, f->t[1], w));
    TRY(f->t[3] = tfu_add(f->ctx, f->t[2], r));
    if (out(f, f->t[3])) return -1;
    if (mode == 1) {
        TRY(W = rnd(f, TFU_F32, 32, 16, -0.3f, 0.3f));
        TRY(f->t[4] = tfu_mul_mat(f->ctx, W, f->t[0]));
        return out(f, f->t[4]);
    }
    return 0;
}

/* a chain of 12 element-wise ops      t: 0..11 the chain */
static int b_chain12(fx *f) {
    tfu_tensor *x, *c, *d, *t;
    TRY(x = rnd(f, TFU_F32, 37, 5, -1, 1));
    TRY(c = rnd(f, TFU_F32, 37, 5, -1, 1));
    TRY(d = rnd(f, TFU_F32, 37, 1, 0.5f, 1.5f));    /* a broadcast row */
    TRY(t = f->t[0] = tfu_add(f->ctx, x, c));
    TRY(t = f->t[1] = tfu_tanh(f->ctx, t));
    TRY(t = f->t[2] = tfu_mul(f->ctx, t, d));
    TRY(t = f->t[3] = tfu_scale(f->ctx, t, 1.5f));
    TRY(t = f->t[4] = tfu_sub(f->ctx, t, x));
    TRY(t = f->t[5] = tfu_sigmoid(f->ctx, t));
    TRY(t = f->t[6] = tfu_div(f->ctx, t, d));
    TRY(t = f->t[7] = tfu_silu(f->ctx, t));
    TRY(t = f->t[8] = tfu_clamp(f->ctx, t, -0.5f, 0.9f));
    TRY(t = f->t[9] = tfu_sqr(f->ctx, t));
    TRY(t = f->t[10] = tfu_add(f->ctx, t, c));
    TRY(t = f->t[11] = tfu_gelu(f->ctx, t));
    return out(f, t);
}

/* variants of a short chain a+b -> tanh -> *c with a flag or a view on the
   middle value: arg 0 OUTPUT, 1 KEEP, 2 transposed view consumed, 3 a second
   consumer (mul_mat)    t: 0 s, 1 h (middle), 2 y, 3 view consumer */
static int b_mid(fx *f) {
    tfu_tensor *a, *b, *c, *W;
    int mode = *(int *)f->arg;
    TRY(a = rnd(f, TFU_F32, 16, 16, -2, 2));
    TRY(b = rnd(f, TFU_F32, 16, 16, -2, 2));
    TRY(c = rnd(f, TFU_F32, 16, 16, -2, 2));
    TRY(f->t[0] = tfu_add(f->ctx, a, b));
    TRY(f->t[1] = tfu_tanh(f->ctx, f->t[0]));
    tfu_set_name(f->t[1], "mid");
    TRY(f->t[2] = tfu_mul(f->ctx, f->t[1], c));
    if (mode == 1) tfu_set_keep(f->t[1]);
    if (out(f, f->t[2])) return -1;
    if (mode == 0) return out(f, f->t[1]);
    if (mode == 2) {
        tfu_tensor *v;
        TRY(v = tfu_transpose(f->ctx, f->t[1]));
        TRY(f->t[3] = tfu_add(f->ctx, v, c));
        f->t[4] = v;
        return out(f, f->t[3]);
    }
    if (mode == 3) {
        TRY(W = rnd(f, TFU_F32, 16, 8, -0.5f, 0.5f));
        TRY(f->t[3] = tfu_mul_mat(f->ctx, W, f->t[1]));
        return out(f, f->t[3]);
    }
    return 0;
}

/* fused-row GLU: s = a + b (rows of 2n), h = swiglu(s), y = h * c
   t: 0 s, 1 h, 2 y */
static int b_glu_row(fx *f) {
    tfu_tensor *a, *b, *c;
    TRY(a = rnd(f, TFU_F32, 20, 6, -2, 2));
    TRY(b = rnd(f, TFU_F32, 20, 6, -2, 2));
    TRY(c = rnd(f, TFU_F32, 10, 6, -2, 2));
    TRY(f->t[0] = tfu_add(f->ctx, a, b));
    TRY(f->t[1] = tfu_swiglu(f->ctx, f->t[0]));
    TRY(f->t[2] = tfu_mul(f->ctx, f->t[1], c));
    return out(f, f->t[2]);
}

/* soft_max(x * 0.125 + mask)          t: 0 s, 1 a, 2 sm */
static int b_softmax(fx *f) {
    tfu_tensor *x, *mask;
    TRY(x = rnd(f, TFU_F32, 24, 10, -8, 8));
    TRY(mask = rnd(f, TFU_F32, 24, 10, -2, 2));
    TRY(f->t[0] = tfu_scale(f->ctx, x, 0.125f));
    TRY(f->t[1] = tfu_add(f->ctx, f->t[0], mask));
    TRY(f->t[2] = tfu_soft_max(f->ctx, f->t[1]));
    return out(f, f->t[2]);
}

/* gelu(mul_mat(W, x) + bias), W f16 if arg   t: 0 mm, 1 add, 2 gelu */
static int b_mm_bias_gelu(fx *f) {
    tfu_tensor *W, *x, *bias;
    TRY(W = rnd(f, *(int *)f->arg ? TFU_F16 : TFU_F32, 48, 40, -0.25f, 0.25f));
    TRY(x = rnd(f, TFU_F32, 48, 7, -1, 1));
    TRY(bias = rnd(f, TFU_F32, 40, 1, -1, 1));
    TRY(f->t[0] = tfu_mul_mat(f->ctx, W, x));
    TRY(f->t[1] = tfu_add(f->ctx, f->t[0], bias));
    TRY(f->t[2] = tfu_gelu(f->ctx, f->t[1]));
    return out(f, f->t[2]);
}

/* swiglu_split(mul_mat(Wg, x), mul_mat(Wu, x))   t: 0 g, 1 u, 2 h */
static int b_ffn(fx *f) {
    tfu_tensor *Wg, *Wu, *x;
    TRY(Wg = rnd(f, TFU_F32, 32, 40, -0.3f, 0.3f));
    TRY(Wu = rnd(f, TFU_F32, 32, 40, -0.3f, 0.3f));
    TRY(x = rnd(f, TFU_F32, 32, 5, -1, 1));
    TRY(f->t[0] = tfu_mul_mat(f->ctx, Wg, x));
    TRY(f->t[1] = tfu_mul_mat(f->ctx, Wu, x));
    TRY(f->t[2] = tfu_swiglu_split(f->ctx, f->t[0], f->t[1]));
    return out(f, f->t[2]);
}

/* cpy of a chain into memory the chain reads. arg 0: y = x*2+1 into x
   itself; arg 1: rows shifted by one (reads rows 0..n-2, writes rows 1..n-1)
   t: 0 first op, 1 last op, 2 cpy, 3 x */
static int b_cpy_alias(fx *f) {
    tfu_tensor *x, *src, *dst;
    int mode = *(int *)f->arg;
    TRY(x = rnd(f, TFU_F32, 16, 9, -1, 1));
    f->t[3] = x;
    if (mode == 0) { src = x; dst = x; }
    else {
        TRY(src = tfu_view_2d(f->ctx, x, 16, 8, x->nb[1], 0));
        TRY(dst = tfu_view_2d(f->ctx, x, 16, 8, x->nb[1], x->nb[1]));
    }
    TRY(f->t[0] = tfu_scale(f->ctx, src, 2.0f));
    TRY(f->t[1] = tfu_scale_bias(f->ctx, f->t[0], 1.0f, 1.0f));
    TRY(f->t[2] = tfu_cpy(f->ctx, f->t[1], dst));
    return out(f, f->t[2]);
}

/* attention-like: xn = rms_norm(x)*w; q, k, v = mul_mat(W*, xn) each used
   t: 0 q, 1 k, 2 v, 3 out */
static int b_qkv(fx *f) {
    tfu_tensor *x, *w, *wq, *wk, *wv, *xn, *kq, *vt, *o;
    const int D = 32, T = 6;
    TRY(x = rnd(f, TFU_F32, D, T, -1, 1));
    TRY(w = rnd(f, TFU_F32, D, 1, 0.5f, 1.5f));
    TRY(wq = rnd(f, TFU_F32, D, D, -0.3f, 0.3f));
    TRY(wk = rnd(f, TFU_F32, D, D, -0.3f, 0.3f));
    TRY(wv = rnd(f, TFU_F32, D, D, -0.3f, 0.3f));
    TRY(xn = tfu_rms_norm(f->ctx, x, 1e-5f));
    TRY(xn = tfu_mul(f->ctx, xn, w));
    TRY(f->t[0] = tfu_mul_mat(f->ctx, wq, xn));
    TRY(f->t[1] = tfu_mul_mat(f->ctx, wk, xn));
    TRY(f->t[2] = tfu_mul_mat(f->ctx, wv, xn));
    TRY(kq = tfu_mul_mat(f->ctx, f->t[1], f->t[0]));                  /* T x T */
    TRY(kq = tfu_soft_max_ext(f->ctx, kq, NULL, 0.2f));
    TRY(vt = tfu_cont(f->ctx, tfu_transpose(f->ctx, f->t[2])));       /* T x D */
    TRY(o = tfu_mul_mat(f->ctx, vt, kq));                             /* D x T */
    TRY(f->t[3] = tfu_add(f->ctx, o, x));
    return out(f, f->t[3]);
}

static llama_config small_llama(int n_layers) {
    llama_config c = llama_default_config();
    c.dim = 64; c.n_heads = 4; c.n_kv_heads = 2; c.head_dim = 16; c.ffn = 96;
    c.n_layers = n_layers; c.T = 7; c.seed = 99;
    return c;
}

/* a llama block from examples/llama.h; arg: llama_config*; data seed ignored */
static int b_llama(fx *f) {
    llama_model m;
    llama_config *c = (llama_config *)f->arg;
    if (llama_build(f->ctx, c, &m) != 0) return -1;
    f->t[0] = m.out; f->t[1] = m.x;
    return out(f, m.out);
}

/* --- the cases ----------------------------------------------------------- */

static void test_rms(void) {
    fx r, l; tfu_plan *p = run_case("rms_norm*w+r", b_rms, NULL, NULL, 1e-4, &r, &l);
    if (p) {
        tfu_plan_stats st = tfu_plan_get_stats(p);
        TT_CHECK(st.n_groups == 1, "rms_norm*w+r: %d groups, want 1", st.n_groups);
        TT_CHECK(G(l.t[1]) == G(l.t[3]) && G(l.t[2]) == G(l.t[3]), "rms_norm*w+r: norm, mul, add not in one group");
        TT_CHECK(tfu_plan_group_kind(p, G(l.t[3])) == TFU_GROUP_ROW, "rms_norm*w+r: kind %d, want ROW", tfu_plan_group_kind(p, G(l.t[3])));
        TT_CHECK(tfu_plan_group_n_nodes(p, G(l.t[3])) == 3, "rms_norm*w+r: group of %d nodes", tfu_plan_group_n_nodes(p, G(l.t[3])));
        TT_CHECK(!MAT(l.t[1]) && !MAT(l.t[2]), "rms_norm*w+r: norm/mul materialised");
        TT_CHECK(tfu_plan_value_offset(p, l.t[1]) == -1 && tfu_plan_value_offset(p, l.t[2]) == -1, "rms_norm*w+r: elided values have offsets");
        TT_CHECK(MAT(l.t[3]) && tfu_plan_value_offset(p, l.t[3]) >= 0, "rms_norm*w+r: output not materialised");
        TT_CHECK(st.n_values_elided == 2, "rms_norm*w+r: %d values elided, want 2", st.n_values_elided);
        TT_CHECK(st.n_nodes_fused == 3, "rms_norm*w+r: %d nodes fused, want 3", st.n_nodes_fused);
        TT_CHECK(st.n_stages == 1 && st.n_barriers == 0, "rms_norm*w+r: %d stages %d barriers", st.n_stages, st.n_barriers);
        TT_CHECK(st.arena_bytes >= 64 * 8 * 4 && st.arena_bytes < st.arena_bytes_unfused,
                 "rms_norm*w+r: arena %zu (unfused %zu)", st.arena_bytes, st.arena_bytes_unfused);
        TT_CHECK(st.value_bytes_total == 3 * 64 * 8 * 4, "rms_norm*w+r: value_bytes_total %zu", st.value_bytes_total);
        TT_CHECK(st.n_groups_kind[TFU_GROUP_ROW] == 1, "rms_norm*w+r: n_groups_kind[ROW] %d", st.n_groups_kind[TFU_GROUP_ROW]);
    }
    end_case(p, &r, &l);
}

static void test_add_rms_keep(void) {
    fx r, l; int mode = 0;
    tfu_plan *p = run_case("x=a+b kept; rms_norm(x)*w+r", b_add_rms, &mode, NULL, 1e-4, &r, &l);
    if (p) {
        TT_CHECK(G(l.t[0]) == G(l.t[3]) && G(l.t[1]) == G(l.t[3]) && G(l.t[2]) == G(l.t[3]),
                 "add+rms keep: not one group (%d %d %d %d)", G(l.t[0]), G(l.t[1]), G(l.t[2]), G(l.t[3]));
        TT_CHECK(tfu_plan_group_kind(p, G(l.t[3])) == TFU_GROUP_ROW, "add+rms keep: kind %d", tfu_plan_group_kind(p, G(l.t[3])));
        TT_CHECK(MAT(l.t[0]) && tfu_plan_value_offset(p, l.t[0]) >= 0, "add+rms keep: kept x not materialised");
        TT_CHECK(!MAT(l.t[1]) && !MAT(l.t[2]), "add+rms keep: norm/mul materialised");
        TT_CHECK(tfu_plan_get_stats(p).n_groups == 1, "add+rms keep: %d groups", tfu_plan_get_stats(p).n_groups);
    }
    end_case(p, &r, &l);

    mode = 1;   /* x also read by a mul_mat: a second consumer outside */
    p = run_case("x=a+b also in mul_mat; rms_norm(x)*w+r", b_add_rms, &mode, NULL, 1e-3, &r, &l);
    if (p) {
        TT_CHECK(MAT(l.t[0]) && tfu_plan_value_offset(p, l.t[0]) >= 0, "add+rms mm: x not materialised");
        TT_CHECK(G(l.t[4]) != G(l.t[0]), "add+rms mm: the mul_mat fused with its input's group");
        TT_CHECK(!MAT(l.t[1]) && !MAT(l.t[2]), "add+rms mm: norm/mul materialised");
        TT_CHECK(G(l.t[1]) == G(l.t[3]), "add+rms mm: norm and its epilogue apart");
    }
    end_case(p, &r, &l);
}

static void test_chain12(void) {
    fx r, l; tfu_plan *p = run_case("chain of 12", b_chain12, NULL, NULL, 1e-4, &r, &l);
    if (p) {
        tfu_plan_stats st = tfu_plan_get_stats(p); int i, same = 1, elided = 0;
        for (i = 0; i < 12; i++) { if (G(l.t[i]) != G(l.t[11])) same = 0; if (!MAT(l.t[i])) elided++; }
        TT_CHECK(st.n_groups == 1 && same, "chain12: %d groups", st.n_groups);
        TT_CHECK(tfu_plan_group_kind(p, G(l.t[11])) == TFU_GROUP_ELTWISE, "chain12: kind %d", tfu_plan_group_kind(p, G(l.t[11])));
        TT_CHECK(tfu_plan_group_n_nodes(p, G(l.t[11])) == 12, "chain12: group of %d nodes", tfu_plan_group_n_nodes(p, G(l.t[11])));
        TT_CHECK(elided == 11 && st.n_values_elided == 11, "chain12: %d elided (stats %d), want 11", elided, st.n_values_elided);
        TT_CHECK(MAT(l.t[11]), "chain12: result not materialised");
        TT_CHECK(st.n_nodes_fused == 12, "chain12: n_nodes_fused %d", st.n_nodes_fused);
        TT_CHECK(st.arena_bytes == 37 * 5 * 4 || st.arena_bytes <= 37 * 5 * 4 + 256, "chain12: arena %zu for one value", st.arena_bytes);
        TT_CHECK(st.n_groups_kind[TFU_GROUP_ELTWISE] == 1, "chain12: kinds");
    }
    end_case(p, &r, &l);
}

static void test_softmax(void) {
    fx r, l; tfu_plan *p = run_case("soft_max(x*0.125+mask)", b_softmax, NULL, NULL, 1e-4, &r, &l);
    if (p) {
        tfu_plan_stats st = tfu_plan_get_stats(p);
        TT_CHECK(st.n_groups == 1 && G(l.t[0]) == G(l.t[2]) && G(l.t[1]) == G(l.t[2]), "softmax: %d groups", st.n_groups);
        TT_CHECK(tfu_plan_group_kind(p, G(l.t[2])) == TFU_GROUP_ROW, "softmax: kind %d", tfu_plan_group_kind(p, G(l.t[2])));
        TT_CHECK(!MAT(l.t[0]) && !MAT(l.t[1]) && MAT(l.t[2]), "softmax: materialisation");
        TT_CHECK(st.n_values_elided == 2, "softmax: elided %d", st.n_values_elided);
    }
    end_case(p, &r, &l);
}

static void test_glu_row(void) {
    fx r, l; tfu_plan *p = run_case("swiglu(a+b)*c", b_glu_row, NULL, NULL, 1e-4, &r, &l);
    if (p) {
        TT_CHECK(MAT(l.t[0]) && tfu_plan_value_offset(p, l.t[0]) >= 0, "glu row: the GLU input is not materialised");
        TT_CHECK(G(l.t[0]) != G(l.t[1]), "glu row: the GLU shares a group with the producer of its input");
        TT_CHECK(G(l.t[1]) == G(l.t[2]) && !MAT(l.t[1]), "glu row: GLU and its consumer not fused");
        TT_CHECK(tfu_plan_group_kind(p, G(l.t[2])) == TFU_GROUP_ELTWISE, "glu row: kind %d", tfu_plan_group_kind(p, G(l.t[2])));
    }
    end_case(p, &r, &l);
}

static void test_mm_epilogue(void) {
    int f16;
    for (f16 = 0; f16 < 2; f16++) {
        fx r, l; tfu_plan *p = run_case(f16 ? "gelu(mul_mat(W f16,x)+b)" : "gelu(mul_mat(W,x)+b)",
                                        b_mm_bias_gelu, &f16, NULL, 1e-3, &r, &l);
        if (p) {
            tfu_plan_stats st = tfu_plan_get_stats(p);
            TT_CHECK(st.n_groups == 1 && G(l.t[0]) == G(l.t[2]) && G(l.t[1]) == G(l.t[2]), "mm epilogue: %d groups", st.n_groups);
            TT_CHECK(tfu_plan_group_kind(p, G(l.t[2])) == TFU_GROUP_MATMUL, "mm epilogue: kind %d", tfu_plan_group_kind(p, G(l.t[2])));
            TT_CHECK(!MAT(l.t[0]) && !MAT(l.t[1]) && MAT(l.t[2]), "mm epilogue: materialisation");
            TT_CHECK(st.n_values_elided == 2, "mm epilogue: elided %d", st.n_values_elided);
        }
        end_case(p, &r, &l);
    }
}

static void test_ffn(void) {
    fx r, l; tfu_plan *p = run_case("swiglu_split(mm,mm)", b_ffn, NULL, NULL, 1e-3, &r, &l);
    if (p) {
        tfu_plan_stats st = tfu_plan_get_stats(p);
        TT_CHECK(st.n_groups == 1 && G(l.t[0]) == G(l.t[2]) && G(l.t[1]) == G(l.t[2]), "ffn: %d groups (%d %d %d)",
                 st.n_groups, G(l.t[0]), G(l.t[1]), G(l.t[2]));
        TT_CHECK(tfu_plan_group_kind(p, G(l.t[2])) == TFU_GROUP_MATMUL, "ffn: kind %d", tfu_plan_group_kind(p, G(l.t[2])));
        TT_CHECK(!MAT(l.t[0]) && !MAT(l.t[1]) && MAT(l.t[2]), "ffn: gate/up materialised");
        TT_CHECK(st.n_values_elided == 2, "ffn: elided %d", st.n_values_elided);
    }
    end_case(p, &r, &l);
}

static void test_negative(void) {
    static const char *names[] = { "middle OUTPUT", "middle KEEP", "middle viewed", "middle also in mul_mat" };
    int mode;
    for (mode = 0; mode < 4; mode++) {
        fx r, l; tfu_plan *p = run_case(names[mode], b_mid, &mode, NULL, 1e-3, &r, &l);
        if (p) {
            TT_CHECK(MAT(l.t[1]) && tfu_plan_value_offset(p, l.t[1]) >= 0, "%s: middle value not materialised", names[mode]);
            TT_CHECK(!MAT(l.t[0]), "%s: first value (all uses inside) materialised", names[mode]);
            if (mode < 2)
                TT_CHECK(G(l.t[0]) == G(l.t[2]) && G(l.t[1]) == G(l.t[2]), "%s: flagged value left its group", names[mode]);
            if (mode == 2) {
                TT_CHECK(G(l.t[4]) == -1, "%s: the view is in group %d", names[mode], G(l.t[4]));
                TT_CHECK(G(l.t[3]) != G(l.t[1]) && G(l.t[3]) >= 0, "%s: view consumer in the producer's group", names[mode]);
                TT_CHECK(tfu_plan_group_stage(p, G(l.t[3])) > tfu_plan_group_stage(p, G(l.t[1])), "%s: stages", names[mode]);
            }
            if (mode == 3) {
                TT_CHECK(G(l.t[3]) != G(l.t[1]), "%s: mul_mat in the eltwise group", names[mode]);
                TT_CHECK(tfu_plan_group_kind(p, G(l.t[3])) == TFU_GROUP_MATMUL, "%s: mul_mat kind", names[mode]);
            }
        }
        end_case(p, &r, &l);
    }
}

static void test_cpy_alias(void) {
    int mode;
    for (mode = 0; mode < 2; mode++) {
        fx r, l; tfu_plan *p = run_case(mode ? "cpy into shifted rows" : "cpy into its source", b_cpy_alias, &mode, NULL, 1e-5, &r, &l);
        if (p) {
            TT_CHECK(G(l.t[2]) >= 0 && G(l.t[2]) != G(l.t[1]), "cpy alias %d: cpy fused with the chain reading its destination", mode);
            TT_CHECK(G(l.t[2]) >= 0 && G(l.t[2]) != G(l.t[0]), "cpy alias %d: cpy fused with the chain's first op", mode);
            /* the whole destination, x, against the reference */
            {
                float *a = tt_copy_out(r.t[3]), *b = tt_copy_out(l.t[3]); int64_t k, n = tfu_nelements(r.t[3]); int bad = 0;
                for (k = 0; k < n; k++) if (fabsf(a[k] - b[k]) > 1e-5f * (1 + fabsf(a[k]))) bad++;
                TT_CHECK(bad == 0, "cpy alias %d: %d elements of the destination differ", mode, bad);
                free(a); free(b);
            }
        }
        end_case(p, &r, &l);
    }
}

static void test_no_fusion(void) {
    llama_config c = small_llama(1);
    tfu_plan_options o = tfu_plan_default_options();
    fx r, l; tfu_plan *p;
    o.no_fusion = 1;
    p = run_case("llama no_fusion option", b_llama, &c, &o, 2e-3, &r, &l);
    if (p) {
        tfu_plan_stats st = tfu_plan_get_stats(p);
        TT_CHECK(st.n_groups == n_nonview(l.g), "no_fusion: %d groups for %d non-view nodes", st.n_groups, n_nonview(l.g));
        TT_CHECK(st.n_values_elided == 0 && st.n_nodes_fused == 0, "no_fusion: %d elided %d fused", st.n_values_elided, st.n_nodes_fused);
    }
    end_case(p, &r, &l);
    setenv("TFU_NO_FUSION", "1", 1);
    p = run_case("llama TFU_NO_FUSION=1", b_llama, &c, NULL, 2e-3, &r, &l);
    unsetenv("TFU_NO_FUSION");
    if (p) {
        tfu_plan_stats st = tfu_plan_get_stats(p);
        TT_CHECK(st.n_groups == n_nonview(l.g), "TFU_NO_FUSION: %d groups for %d non-view nodes", st.n_groups, n_nonview(l.g));
        TT_CHECK(st.n_values_elided == 0, "TFU_NO_FUSION: %d elided", st.n_values_elided);
    }
    end_case(p, &r, &l);
    /* and the small fused cases unfused */
    setenv("TFU_NO_FUSION", "1", 1);
    p = run_case("rms TFU_NO_FUSION=1", b_rms, NULL, NULL, 1e-4, &r, &l);
    unsetenv("TFU_NO_FUSION");
    if (p) TT_CHECK(tfu_plan_get_stats(p).n_groups == 3 && MAT(l.t[1]) && MAT(l.t[2]), "rms unfused: %d groups", tfu_plan_get_stats(p).n_groups);
    end_case(p, &r, &l);
}

static void test_schedule(void) {
    fx r, l; tfu_plan *p = run_case("qkv", b_qkv, NULL, NULL, 2e-3, &r, &l);
    if (p) {
        tfu_plan_stats st = tfu_plan_get_stats(p);
        int sq = tfu_plan_group_stage(p, G(l.t[0])), sk = tfu_plan_group_stage(p, G(l.t[1])), sv = tfu_plan_group_stage(p, G(l.t[2]));
        TT_CHECK(sq == sk && sk == sv, "qkv: Q, K, V in stages %d %d %d", sq, sk, sv);
        TT_CHECK(st.n_barriers == st.n_stages - 1, "qkv: %d barriers, %d stages", st.n_barriers, st.n_stages);
    }
    end_case(p, &r, &l);
}

/* examples/llama.h with Q8_0 weights (quantized row by row at build): the
   plan against the reference over the same blocks */
static void test_llama_q8(void) {
    llama_config c = small_llama(2);
    fx r, l; tfu_plan *p;
    c.wtype = TFU_Q8_0;
    p = run_case("llama q8_0", b_llama, &c, NULL, 2e-3, &r, &l);
    if (p) {
        TT_CHECK(l.t[0] && tfu_plan_get_stats(p).n_groups_kind[TFU_GROUP_ATTENTION] == 2, "llama q8_0: %d ATTENTION groups",
                 tfu_plan_get_stats(p).n_groups_kind[TFU_GROUP_ATTENTION]);
    }
    end_case(p, &r, &l);
}

static void test_memory(void) {
    llama_config c = small_llama(2);
    fx r, l; tfu_plan *p = run_case("llama 2 layers", b_llama, &c, NULL, 2e-3, &r, &l);
    if (p) {
        tfu_plan_stats st = tfu_plan_get_stats(p);
        tfu_plan_options o = tfu_plan_default_options(); tfu_plan *pu;
        TT_CHECK(st.arena_bytes < st.arena_bytes_unfused, "llama: arena %zu not below unfused %zu", st.arena_bytes, st.arena_bytes_unfused);
        TT_CHECK(st.arena_bytes <= st.value_bytes_total, "llama: arena %zu above the sum of values %zu", st.arena_bytes, st.value_bytes_total);
        TT_CHECK(st.n_values_elided > 0 && st.n_nodes_fused > 0, "llama: nothing fused");
        TT_CHECK(st.n_groups_kind[TFU_GROUP_ROW] >= 2 && st.n_groups_kind[TFU_GROUP_MATMUL] >= 4,
                 "llama: %d ROW, %d MATMUL groups", st.n_groups_kind[TFU_GROUP_ROW], st.n_groups_kind[TFU_GROUP_MATMUL]);
        TT_CHECK(st.n_groups_kind[TFU_GROUP_ATTENTION] == 2, "llama: %d ATTENTION groups, want one a layer", st.n_groups_kind[TFU_GROUP_ATTENTION]);
        /* arena_bytes_unfused agrees with an unfused plan */
        o.no_fusion = 1;
        pu = tfu_plan_compile(l.g, &o);
        TT_CHECK(pu != NULL, "llama: unfused compile");
        if (pu) {
            TT_CHECK(tfu_plan_arena_bytes(pu) == st.arena_bytes_unfused, "llama: unfused plan arena %zu, stats said %zu",
                     tfu_plan_arena_bytes(pu), st.arena_bytes_unfused);
            TT_CHECK(check_plan(pu, l.g, "llama unfused") == 0, "llama unfused: invariants");
            tfu_plan_free(pu);
        }
    }
    end_case(p, &r, &l);
}

/* plan cache: the same structure with new data hits, a new shape misses */
static int b_cache(fx *f) {
    int n0 = *(int *)f->arg;
    tfu_tensor *x, *w, *W, *t;
    TRY(x = rnd(f, TFU_F32, n0, 5, -2, 2));
    TRY(w = rnd(f, TFU_F32, n0, 1, 0.5f, 1.5f));
    TRY(W = rnd(f, TFU_F16, n0, 24, -0.3f, 0.3f));
    TRY(t = tfu_rms_norm(f->ctx, x, 1e-5f));
    TRY(t = tfu_mul(f->ctx, t, w));
    TRY(t = tfu_mul_mat(f->ctx, W, t));
    TRY(t = tfu_silu(f->ctx, t));
    return out(f, t);
}

static void test_cache(void) {
    tfu_plan_options o = tfu_plan_default_options();
    tfu_plan_cache *c = tfu_plan_cache_new(&o, 4);
    int n0 = 32, was = -1, seed, i;
    tfu_plan *first = NULL;
    TT_CHECK(c != NULL, "cache_new");
    if (!c) return;
    for (i = 0; i < 3; i++) {
        fx r, l; tfu_plan *p; tfu_result rr; char name[64];
        seed = 100 + i;
        n0 = i < 2 ? 32 : 40;
        snprintf(name, sizeof name, "cache %d", i);
        if (fx_make(&r, b_cache, &n0, (uint64_t)seed) || fx_make(&l, b_cache, &n0, (uint64_t)seed)) {
            TT_CHECK(0, "%s: build", name); fx_free(&r); fx_free(&l); continue;
        }
        tfu_graph_compute_ref(r.g);
        p = tfu_plan_cache_get(c, l.g, &was);
        TT_CHECK(p != NULL, "%s: cache_get", name);
        if (i == 0) { first = p; TT_CHECK(was == 0, "%s: was_cached %d on a new graph", name, was); }
        if (i == 1) {
            TT_CHECK(was == 1, "%s: identical structure not cached (was_cached %d)", name, was);
            TT_CHECK(p == first, "%s: a different plan for the same structure", name);
        }
        if (i == 2) TT_CHECK(was == 0 && p != first, "%s: a new shape reported cached", name);
        if (p) {
            poison_outputs(p, l.g);
            rr = tfu_plan_run(p);
            TT_CHECK(rr == TFU_OK, "%s: run %s", name, tfu_result_str(rr));
            TT_CHECK(compare_graphs(r.g, l.g, 1e-3, name) == 0, "%s: results differ from the reference", name);
        }
        fx_free(&r); fx_free(&l);
    }
    tfu_plan_cache_free(c);
}

/* rebind: a plan moved to a structurally identical graph, and STALE for a different one */
static void test_rebind(void) {
    int n0 = 32, n1 = 40;
    fx a, b, r, d; tfu_plan *p; tfu_result rr;
    if (fx_make(&a, b_cache, &n0, 1) || fx_make(&b, b_cache, &n0, 2) || fx_make(&r, b_cache, &n0, 2) ||
        fx_make(&d, b_cache, &n1, 2)) { TT_CHECK(0, "rebind: build"); goto done; }
    p = tfu_plan_compile(a.g, NULL);
    TT_CHECK(p != NULL, "rebind: compile with NULL options: %s", tfu_last_error_msg(a.ctx));
    if (!p) goto done;
    tfu_graph_compute_ref(r.g);
    rr = tfu_plan_rebind(p, b.g);
    TT_CHECK(rr == TFU_OK, "rebind: %s", tfu_result_str(rr));
    poison_outputs(p, b.g);
    TT_CHECK(tfu_plan_run(p) == TFU_OK, "rebind: run");
    TT_CHECK(compare_graphs(r.g, b.g, 1e-3, "rebind") == 0, "rebind: results");
    rr = tfu_plan_rebind(p, d.g);
    TT_CHECK(rr == TFU_ERR_STALE, "rebind to another shape: %s, want STALE", tfu_result_str(rr));
    tfu_plan_free(p);
done:
    fx_free(&a); fx_free(&b); fx_free(&r); fx_free(&d);
}

static void test_report(void) {
    llama_config c = small_llama(1);
    fx r, l; tfu_plan *p = run_case("llama report", b_llama, &c, NULL, 2e-3, &r, &l);
    if (p) {
        size_t n = tfu_plan_report(p, NULL, 0), m, k;
        char *buf = (char *)malloc(n + 1), small[16];
        TT_CHECK(n > 0, "report: empty");
        m = tfu_plan_report(p, buf, n + 1);
        TT_CHECK(m == n && strlen(buf) == n, "report: length %zu, %zu, strlen %zu", n, m, strlen(buf));
        TT_CHECK(strstr(buf, "MATMUL") || strstr(buf, "matmul"), "report: no matmul group mentioned");
        if (tt_verbose) printf("%s\n", buf);
        k = tfu_plan_report(p, small, sizeof small);
        TT_CHECK(k == n && strlen(small) == sizeof small - 1, "report: truncation (%zu, strlen %zu)", k, strlen(small));
        free(buf);
        n = tfu_plan_dot(p, NULL, 0);
        buf = (char *)malloc(n + 1);
        m = tfu_plan_dot(p, buf, n + 1);
        TT_CHECK(n > 0 && m == n && strlen(buf) == n, "dot: length %zu %zu", n, m);
        TT_CHECK(strstr(buf, "digraph") != NULL && strstr(buf, "cluster") != NULL, "dot: no digraph/cluster");
        free(buf);
    }
    end_case(p, &r, &l);
}

/* eval callback: every KEEP and OUTPUT tensor is seen, with its final values */
typedef struct eval_state { fx *ref; int seen[64]; tfu_tensor *want[64]; int n_want; int n_calls; int bad; int stop_after; } eval_state;

static int eval_cb(const tfu_tensor *t, void *user) {
    eval_state *s = (eval_state *)user; int i;
    s->n_calls++;
    for (i = 0; i < s->n_want; i++) if (s->want[i] == t) {
        tfu_tensor *rt = tfu_graph_get_tensor(s->ref->g, t->name);
        s->seen[i]++;
        if (!rt || !t->data) s->bad++;
        else {
            float *a = tt_copy_out(rt), *b = tt_copy_out(t); int64_t k;
            for (k = 0; k < tfu_nelements(t); k++)
                if (!(fabs(a[k] - b[k]) <= 1e-3 * (1 + fabs(a[k])))) { s->bad++; break; }
            free(a); free(b);
        }
    }
    return s->stop_after > 0 && s->n_calls >= s->stop_after;
}

static int b_keeps(fx *f) {
    tfu_tensor *x, *w, *W, *t;
    TRY(x = rnd(f, TFU_F32, 32, 4, -2, 2));
    TRY(w = rnd(f, TFU_F32, 32, 1, 0.5f, 1.5f));
    TRY(W = rnd(f, TFU_F32, 32, 32, -0.3f, 0.3f));
    TRY(t = f->t[0] = tfu_tanh(f->ctx, x));  tfu_set_keep(tfu_set_name(t, "k0"));
    TRY(t = tfu_rms_norm(f->ctx, t, 1e-5f));
    TRY(t = f->t[1] = tfu_mul(f->ctx, t, w)); tfu_set_keep(tfu_set_name(t, "k1"));
    TRY(t = tfu_mul_mat(f->ctx, W, t));
    TRY(t = f->t[2] = tfu_gelu(f->ctx, t));   tfu_set_keep(tfu_set_name(t, "k2"));
    TRY(t = tfu_add(f->ctx, t, x));
    TRY(t = f->t[3] = tfu_scale(f->ctx, t, 0.5f)); tfu_set_name(t, "out");
    return out(f, t);
}

static void test_eval_cb(void) {
    int pass;
    for (pass = 0; pass < 3; pass++) {
        fx r, l; eval_state s; tfu_plan *p; int i, all = 1;
        tfu_plan_options o = tfu_plan_default_options();
        memset(&s, 0, sizeof s);
        if (fx_make(&r, b_keeps, NULL, 3) || fx_make(&l, b_keeps, NULL, 3)) { TT_CHECK(0, "eval: build"); fx_free(&r); fx_free(&l); continue; }
        tfu_graph_compute_ref(r.g);
        s.ref = &r;
        for (i = 0; i < 4; i++) s.want[s.n_want++] = l.t[i];
        o.eval_cb = eval_cb; o.eval_user = &s;
        o.n_threads = pass == 1 ? 2 : 1;
        if (pass == 2) s.stop_after = 1;
        p = tfu_plan_compile(l.g, &o);
        TT_CHECK(p != NULL, "eval: compile");
        if (!p) { fx_free(&r); fx_free(&l); continue; }
        for (i = 0; i < 3; i++) TT_CHECK(MAT(l.t[i]), "eval: KEEP k%d not materialised", i);
        TT_CHECK(tfu_plan_run(p) == TFU_OK, "eval: run (pass %d)", pass);
        if (pass < 2) {
            for (i = 0; i < s.n_want; i++) if (s.seen[i] != 1) all = 0;
            TT_CHECK(all, "eval pass %d: seen %d %d %d %d times", pass, s.seen[0], s.seen[1], s.seen[2], s.seen[3]);
            TT_CHECK(s.bad == 0, "eval pass %d: %d tensors with wrong values at callback time", pass, s.bad);
        } else {
            TT_CHECK(s.n_calls == 1, "eval stop: %d calls after asking to stop at 1", s.n_calls);
        }
        tfu_plan_free(p);
        fx_free(&r); fx_free(&l);
    }
}

/* repeated runs of one plan with changing inputs */
static void test_rerun(void) {
    fx r, l; tfu_plan *p = run_case("rerun rms", b_rms, NULL, NULL, 1e-4, &r, &l);
    int it;
    if (p) {
        for (it = 0; it < 3; it++) {
            tt_seed(500 + (uint64_t)it);
            tt_fill(r.t[0], -3, 3);
            tt_seed(500 + (uint64_t)it);
            tt_fill(l.t[0], -3, 3);
            tfu_graph_compute_ref(r.g);
            poison_outputs(p, l.g);
            TT_CHECK(tfu_plan_run(p) == TFU_OK, "rerun %d", it);
            TT_CHECK(compare_graphs(r.g, l.g, 1e-4, "rerun") == 0, "rerun %d: results", it);
        }
    }
    end_case(p, &r, &l);
}

/* two fusible producers (a matmul with an epilogue, a softmax with an
   epilogue) each feeding a consumer that also reads the other: whichever
   group each consumer joins, the groups must not end up reading each other
   (a cycle between groups cannot be staged)   t: 0 A, 1 S, 2 m, 3 d */
static int b_cross(fx *f) {
    tfu_tensor *x, *W, *y, *w;
    TRY(x = rnd(f, TFU_F32, 3, 4, -1, 1));
    TRY(W = rnd(f, TFU_F32, 3, 3, -1, 1));
    TRY(y = rnd(f, TFU_F32, 3, 4, -1, 1));
    TRY(w = rnd(f, TFU_F32, 3, 4, -1, 1));
    TRY(f->t[0] = tfu_mul_mat(f->ctx, W, x));
    TRY(f->t[1] = tfu_soft_max(f->ctx, y));
    TRY(f->t[2] = tfu_mul(f->ctx, tfu_abs(f->ctx, f->t[0]), f->t[1]));
    TRY(f->t[3] = tfu_div(f->ctx, tfu_mul(f->ctx, f->t[1], w),
                          tfu_scale_bias(f->ctx, tfu_abs(f->ctx, f->t[0]), 1.0f, 1.0f)));
    if (out(f, f->t[2])) return -1;
    return out(f, f->t[3]);
}

static void test_cross(void) {
    fx r, l; tfu_plan *p;
    fflush(stdout);   /* a failed internal assertion must not swallow the results so far */
    p = run_case("cross reads between two groups", b_cross, NULL, NULL, 1e-4, &r, &l);
    if (p) {
        int i, ok = 1;
        for (i = 0; i < tfu_plan_n_groups(p); i++)
            if (tfu_plan_group_stage(p, i) < 0 || tfu_plan_group_stage(p, i) >= tfu_plan_get_stats(p).n_stages) ok = 0;
        TT_CHECK(ok && tfu_plan_get_stats(p).n_stages >= 2, "cross: groups not staged (%d stages)", tfu_plan_get_stats(p).n_stages);
    }
    end_case(p, &r, &l);
}

/* every case, in order */
static void fusion_cases(void) {
    test_rms();
    test_add_rms_keep();
    test_chain12();
    test_softmax();
    test_mm_epilogue();
    test_glu_row();
    test_ffn();
    test_negative();
    test_cpy_alias();
    test_no_fusion();
    test_schedule();
    test_memory();
    test_llama_q8();
    test_cache();
    test_rebind();
    test_report();
    test_eval_cb();
    test_rerun();
    printf("fusion: so far %d checks passed, %d failed\n", tt_passed, tt_failed);
    test_cross();   /* last: it has aborted on an internal assertion */
}

#ifndef TEST_FUSION_NO_MAIN
int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    tt_verbose = tt_arg_int(argc, argv, "--v", 0);
    (void)tt_max_err; (void)tt_int;
    fusion_cases();
    return tt_summary();
}
#endif
