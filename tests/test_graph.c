/* test_graph.c - graph bookkeeping and error paths.

   Part 1: use counts (the number of (consumer, operand) edges inside the
   graph pointing at a tensor) after every kind of construction, topological
   order, flags and the structural hash.
   Part 2: every bad input gives NULL (builders) or the error code, the
   context keeps code, message and tensor, and stays usable afterwards.
   Part 3: plan API error paths (compile, arena, rebind). */
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include "tfu_test.h"

static tfu_context *big_ctx(void) { return tfu_init_malloc((size_t)16 << 20, 0); }

/* ---- graph helpers ------------------------------------------------------ */

static int node_index(const tfu_graph *g, const tfu_tensor *t) {
    int i;
    for (i = 0; i < tfu_graph_n_nodes(g); i++) if (tfu_graph_node(g, i) == t) return i;
    return -1;
}

static int leaf_index(const tfu_graph *g, const tfu_tensor *t) {
    int i;
    for (i = 0; i < tfu_graph_n_leafs(g); i++) if (tfu_graph_leaf(g, i) == t) return i;
    return -1;
}

/* use count recomputed from the graph's edges */
static int edge_count(const tfu_graph *g, const tfu_tensor *t) {
    int i, j, n = 0;
    for (i = 0; i < tfu_graph_n_nodes(g); i++) {
        const tfu_tensor *nd = tfu_graph_node(g, i);
        for (j = 0; j < TFU_MAX_SRC; j++) if (nd->src[j] == t) n++;
    }
    return n;
}

/* every node and leaf: right op kind, listed once, use count equal to its
   edges; every source of node i a leaf of g or a node with index < i */
static void check_graph(const tfu_graph *g, const char *what) {
    int n = tfu_graph_n_nodes(g), nl = tfu_graph_n_leafs(g), i, j, bad_order = 0, bad_count = 0, dup = 0;
    for (i = 0; i < n; i++) {
        const tfu_tensor *t = tfu_graph_node(g, i);
        TT_CHECK(t != NULL && t->op != TFU_OP_NONE, "%s: node %d is NULL or a leaf", what, i);
        if (!t) continue;
        if (node_index(g, t) != i) dup++;
        if (!tfu_graph_contains(g, t)) bad_order++;
        for (j = 0; j < TFU_MAX_SRC; j++) {
            const tfu_tensor *s = t->src[j];
            if (!s) continue;
            if (s->op == TFU_OP_NONE) { if (leaf_index(g, s) < 0) bad_order++; }
            else { int k = node_index(g, s); if (k < 0 || k >= i) bad_order++; }
        }
        if (t->view_src) {
            const tfu_tensor *s = t->view_src;
            if (s->op == TFU_OP_NONE) { if (leaf_index(g, s) < 0) bad_order++; }
            else { int k = node_index(g, s); if (k < 0 || k >= i) bad_order++; }
        }
        if (tfu_graph_use_count(g, t) != edge_count(g, t)) {
            bad_count++;
            printf("  %s: node %d (%s, %s) use count %d, edges %d\n", what, i, t->name,
                   tfu_op_name(t->op), tfu_graph_use_count(g, t), edge_count(g, t));
        }
    }
    for (i = 0; i < nl; i++) {
        const tfu_tensor *t = tfu_graph_leaf(g, i);
        TT_CHECK(t != NULL && t->op == TFU_OP_NONE, "%s: leaf %d is NULL or computed", what, i);
        if (!t) continue;
        if (leaf_index(g, t) != i) dup++;
        if (!tfu_graph_contains(g, t)) bad_order++;
        if (tfu_graph_use_count(g, t) != edge_count(g, t)) {
            bad_count++;
            printf("  %s: leaf %d (%s) use count %d, edges %d\n", what, i, t->name,
                   tfu_graph_use_count(g, t), edge_count(g, t));
        }
    }
    TT_CHECK(dup == 0, "%s: %d tensors listed twice", what, dup);
    TT_CHECK(bad_order == 0, "%s: %d sources not in the graph or not before their users", what, bad_order);
    TT_CHECK(bad_count == 0, "%s: %d use counts differ from the edge counts", what, bad_count);
}

#define USES(g, t, n) TT_CHECK(tfu_graph_use_count((g), (t)) == (n), \
    "use count of %s: %d, want %d", #t, tfu_graph_use_count((g), (t)), (n))

static tfu_tensor *leaf(tfu_context *ctx, tfu_type type, int64_t ne0, int64_t ne1, const char *name) {
    tfu_tensor *t = tfu_new_tensor_2d(ctx, type, ne0, ne1);
    if (t) { tfu_set_name(t, name); if (t->data) tt_fill(t, -1.0f, 1.0f); }
    return t;
}

/* ---- error helpers ------------------------------------------------------ */

/* after an error: clearing works, and a small graph builds and computes
   the right value in the same context */
static void check_usable(tfu_context *ctx, const char *what) {
    tfu_tensor *a, *b, *c;
    tfu_graph *g;
    int64_t i, bad = 0;
    tfu_clear_error(ctx);
    TT_CHECK(tfu_last_error(ctx) == TFU_OK, "%s: error not cleared", what);
    TT_CHECK(tfu_last_error_tensor(ctx) == NULL, "%s: error tensor not cleared", what);
    static float mem_a[5], mem_b[5];   /* for contexts with no_alloc */
    a = tfu_new_tensor_1d(ctx, TFU_F32, 5);
    b = tfu_new_tensor_1d(ctx, TFU_F32, 5);
    if (!a || !b) { TT_CHECK(0, "%s: context unusable (%s)", what, tfu_last_error_msg(ctx)); return; }
    if (!a->data) a->data = mem_a;
    if (!b->data) b->data = mem_b;
    for (i = 0; i < 5; i++) { tfu_set_f32(a, i, 0, 0, 0, (float)i + 1); tfu_set_f32(b, i, 0, 0, 0, 0.5f); }
    c = tfu_scale_bias(ctx, tfu_add(ctx, a, b), 2.0f, 1.0f);   /* 2(a+b)+1 */
    g = tfu_graph_new(ctx, 8);
    if (!g || tfu_graph_build_expand(g, c) != TFU_OK) { TT_CHECK(0, "%s: cannot build after error (%s)", what, tfu_last_error_msg(ctx)); return; }
    if (tfu_graph_compute_ref(g) != TFU_OK) { TT_CHECK(0, "%s: cannot compute after error (%s)", what, tfu_last_error_msg(ctx)); return; }
    for (i = 0; i < 5; i++) if (tfu_get_f32(c, i, 0, 0, 0) != 2.0f * ((float)i + 1.5f) + 1.0f) bad++;
    TT_CHECK(bad == 0, "%s: wrong value after error", what);
    TT_CHECK(tfu_last_error(ctx) == TFU_OK, "%s: valid work left an error %d", what, (int)tfu_last_error(ctx));
}

/* result r of `what` must be NULL with code want (or want2 if nonzero), a
   message, and (if about given) an error tensor among about[0..1] */
static void expect_fail(tfu_context *ctx, const void *r, tfu_result want, tfu_result want2,
                        const tfu_tensor *about0, const tfu_tensor *about1, const char *what) {
    tfu_result e = tfu_last_error(ctx);
    const char *msg = tfu_last_error_msg(ctx);
    TT_CHECK(r == NULL, "%s: expected NULL", what);
    if (want2 != TFU_OK)
        TT_CHECK(e == want || e == want2, "%s: error %s, want %s or %s", what, tfu_result_str(e), tfu_result_str(want), tfu_result_str(want2));
    else
        TT_CHECK(e == want, "%s: error %s, want %s", what, tfu_result_str(e), tfu_result_str(want));
    TT_CHECK(msg != NULL && msg[0] != '\0', "%s: empty message", what);
    if (about0) {
        const tfu_tensor *et = tfu_last_error_tensor(ctx);
        TT_CHECK(et == about0 || (about1 && et == about1), "%s: error tensor %p is not the operand", what, (const void *)et);
    }
    check_usable(ctx, what);
}

#define FAILS(ctx, expr, code) expect_fail(ctx, (const void *)(expr), code, TFU_OK, NULL, NULL, #expr)
#define FAILS2(ctx, expr, code, code2) expect_fail(ctx, (const void *)(expr), code, code2, NULL, NULL, #expr)
#define FAILS_T(ctx, expr, code, t0, t1) expect_fail(ctx, (const void *)(expr), code, TFU_OK, t0, t1, #expr)

/* ======================================================================== */
/* part 1: use counts                                                       */
/* ======================================================================== */

static void test_chain(void) {
    tfu_context *ctx = big_ctx();
    tfu_tensor *a, *b, *c, *d;
    tfu_graph *g;
    a = leaf(ctx, TFU_F32, 8, 1, "a");
    b = tfu_neg(ctx, a);
    c = tfu_exp(ctx, b);
    d = tfu_scale(ctx, c, 2.0f);
    g = tfu_graph_build(ctx, d);
    TT_CHECK(g != NULL, "chain: build failed: %s", tfu_last_error_msg(ctx));
    if (!g) { tfu_free(ctx); return; }
    TT_CHECK(tfu_graph_n_nodes(g) == 3, "chain: %d nodes", tfu_graph_n_nodes(g));
    TT_CHECK(tfu_graph_n_leafs(g) == 1, "chain: %d leafs", tfu_graph_n_leafs(g));
    TT_CHECK(tfu_graph_node(g, 0) == b && tfu_graph_node(g, 1) == c && tfu_graph_node(g, 2) == d, "chain: node order");
    TT_CHECK(tfu_graph_leaf(g, 0) == a, "chain: leaf");
    USES(g, a, 1); USES(g, b, 1); USES(g, c, 1); USES(g, d, 0);
    TT_CHECK(tfu_graph_context(g) == ctx, "chain: graph context");
    TT_CHECK((d->flags & TFU_FLAG_OUTPUT) != 0, "chain: result not OUTPUT");
    TT_CHECK((c->flags & TFU_FLAG_OUTPUT) == 0 && (a->flags & TFU_FLAG_OUTPUT) == 0, "chain: non-results marked OUTPUT");
    check_graph(g, "chain");
    {   /* a tensor of the context outside the graph */
        tfu_tensor *other = tfu_neg(ctx, a);
        TT_CHECK(tfu_graph_use_count(g, other) == -1, "chain: tensor outside graph has use count %d", tfu_graph_use_count(g, other));
        TT_CHECK(!tfu_graph_contains(g, other), "chain: contains a tensor outside");
        TT_CHECK(tfu_graph_contains(g, a) && tfu_graph_contains(g, c), "chain: contains");
        /* building the outside tensor into the SAME graph must not have
           happened by itself */
        TT_CHECK(tfu_graph_n_nodes(g) == 3, "chain: graph grew by building outside");
    }
    tfu_free(ctx);
}

static void test_shared(void) {
    tfu_context *ctx = big_ctx();
    tfu_tensor *x = leaf(ctx, TFU_F32, 8, 2, "x"), *y = leaf(ctx, TFU_F32, 8, 2, "y");
    tfu_tensor *s = tfu_add(ctx, x, y);
    tfu_tensor *u = tfu_mul(ctx, s, x);
    tfu_tensor *v = tfu_sub(ctx, s, y);
    tfu_tensor *w = tfu_add(ctx, u, v);
    tfu_graph *g = tfu_graph_build(ctx, w);
    TT_CHECK(g != NULL, "shared: build failed");
    if (!g) { tfu_free(ctx); return; }
    TT_CHECK(tfu_graph_n_nodes(g) == 4 && tfu_graph_n_leafs(g) == 2, "shared: %d nodes %d leafs", tfu_graph_n_nodes(g), tfu_graph_n_leafs(g));
    USES(g, x, 2); USES(g, y, 2); USES(g, s, 2); USES(g, u, 1); USES(g, v, 1); USES(g, w, 0);
    check_graph(g, "shared");
    tfu_free(ctx);
}

static void test_same_operand(void) {
    tfu_context *ctx = big_ctx();
    tfu_tensor *x = leaf(ctx, TFU_F32, 8, 8, "x");
    tfu_tensor *m = tfu_mul(ctx, x, x);                 /* x: 2 */
    tfu_tensor *a = tfu_add(ctx, m, x);                 /* x: 3 */
    tfu_tensor *gs = tfu_glu_split(ctx, a, a, TFU_GLU_GEGLU); /* a: 2 */
    tfu_tensor *mm = tfu_mul_mat(ctx, gs, gs);          /* gs: 2 (8x8 by 8x8) */
    tfu_tensor *cc = tfu_concat(ctx, mm, mm, 1);        /* mm: 2 */
    tfu_graph *g = tfu_graph_build(ctx, cc);
    TT_CHECK(g != NULL, "same operand: build failed: %s", tfu_last_error_msg(ctx));
    if (!g) { tfu_free(ctx); return; }
    USES(g, x, 3); USES(g, m, 1); USES(g, a, 2); USES(g, gs, 2); USES(g, mm, 2); USES(g, cc, 0);
    TT_CHECK(tfu_graph_n_nodes(g) == 5 && tfu_graph_n_leafs(g) == 1, "same operand: %d nodes %d leafs", tfu_graph_n_nodes(g), tfu_graph_n_leafs(g));
    check_graph(g, "same operand");
    tfu_free(ctx);
}

static void test_views(void) {
    tfu_context *ctx = big_ctx();
    tfu_tensor *a = leaf(ctx, TFU_F32, 4, 6, "a");
    tfu_tensor *v1 = tfu_view_2d(ctx, a, 4, 3, a->nb[1], 0);              /* rows 0..2 */
    tfu_tensor *v2 = tfu_view_2d(ctx, a, 4, 3, a->nb[1], 3 * a->nb[1]);   /* rows 3..5 */
    tfu_tensor *s = tfu_add(ctx, v1, v2);
    tfu_tensor *p = tfu_mul(ctx, v1, s);
    tfu_tensor *rs = tfu_reshape_2d(ctx, a, 8, 3);
    tfu_tensor *o2 = tfu_scale(ctx, rs, 2.0f);
    tfu_tensor *tr = tfu_transpose(ctx, a);
    tfu_tensor *ct = tfu_cont(ctx, tr);
    tfu_tensor *vv = tfu_view_1d(ctx, v1, 4, 4 * sizeof(float));          /* view of a view: row 1 */
    tfu_tensor *n = tfu_neg(ctx, vv);
    tfu_tensor *pm = tfu_permute(ctx, a, 1, 0, 2, 3);
    tfu_tensor *pa = tfu_add(ctx, pm, pm);
    tfu_graph *g = tfu_graph_new(ctx, 64);
    TT_CHECK(g && v1 && v2 && rs && tr && vv && pm, "views: build failed: %s", tfu_last_error_msg(ctx));
    if (!g || !v1 || !v2 || !rs || !tr || !vv || !pm) { tfu_free(ctx); return; }
    TT_CHECK(v1->op == TFU_OP_VIEW && rs->op == TFU_OP_VIEW && tr->op == TFU_OP_VIEW && pm->op == TFU_OP_VIEW, "views: op is not VIEW");
    TT_CHECK(tfu_graph_build_expand(g, p) == TFU_OK, "views: expand p");
    TT_CHECK(tfu_graph_build_expand(g, o2) == TFU_OK, "views: expand o2");
    TT_CHECK(tfu_graph_build_expand(g, ct) == TFU_OK, "views: expand ct");
    TT_CHECK(tfu_graph_build_expand(g, n) == TFU_OK, "views: expand n");
    TT_CHECK(tfu_graph_build_expand(g, pa) == TFU_OK, "views: expand pa");
    /* a: one edge per view node (v1, v2, rs, tr, pm); vv views v1, not a */
    USES(g, a, 5);
    USES(g, v1, 3); USES(g, v2, 1); USES(g, s, 1); USES(g, rs, 1); USES(g, tr, 1);
    USES(g, vv, 1); USES(g, pm, 2); USES(g, p, 0); USES(g, o2, 0); USES(g, ct, 0); USES(g, n, 0); USES(g, pa, 0);
    TT_CHECK(tfu_graph_n_leafs(g) == 1, "views: %d leafs", tfu_graph_n_leafs(g));
    TT_CHECK(tfu_graph_n_nodes(g) == 12, "views: %d nodes, want 12", tfu_graph_n_nodes(g));
    check_graph(g, "views");
    /* the views compute what they alias */
    TT_CHECK(tfu_graph_compute_ref(g) == TFU_OK, "views: compute: %s", tfu_last_error_msg(ctx));
    {
        int64_t i, j, bad = 0;
        for (i = 0; i < 4; i++) {
            if (tfu_get_f32(n, i, 0, 0, 0) != -tfu_get_f32(a, i, 1, 0, 0)) bad++;
            for (j = 0; j < 6; j++) if (tfu_get_f32(ct, j, i, 0, 0) != tfu_get_f32(a, i, j, 0, 0)) bad++;
            for (j = 0; j < 3; j++) {
                float x1 = tfu_get_f32(a, i, j, 0, 0), x2 = tfu_get_f32(a, i, j + 3, 0, 0);
                if (fabsf(tfu_get_f32(p, i, j, 0, 0) - x1 * (x1 + x2)) > 1e-6f) bad++;
            }
        }
        TT_CHECK(bad == 0, "views: %d wrong values", (int)bad);
    }
    tfu_free(ctx);
}

static void snapshot(const tfu_graph *g, tfu_tensor **ts, int n, int *counts) {
    int i;
    for (i = 0; i < n; i++) counts[i] = tfu_graph_use_count(g, ts[i]);
}

static void test_expand(void) {
    tfu_context *ctx = big_ctx();
    tfu_tensor *x = leaf(ctx, TFU_F32, 8, 4, "x"), *w = leaf(ctx, TFU_F32, 8, 4, "w"), *b = leaf(ctx, TFU_F32, 8, 1, "b");
    tfu_tensor *mid = tfu_mul(ctx, x, w);
    tfu_tensor *y1 = tfu_add(ctx, mid, b);
    tfu_tensor *y2, *y3, *all[7];
    int before[7], after[7], i, n0, same = 1;
    tfu_graph *g = tfu_graph_new(ctx, 32);
    TT_CHECK(g != NULL, "expand: graph_new");
    if (!g) { tfu_free(ctx); return; }
    TT_CHECK(tfu_graph_n_nodes(g) == 0 && tfu_graph_n_leafs(g) == 0, "expand: new graph not empty");
    TT_CHECK(tfu_graph_build_expand(g, y1) == TFU_OK, "expand: y1");
    USES(g, x, 1); USES(g, w, 1); USES(g, b, 1); USES(g, mid, 1); USES(g, y1, 0);
    n0 = tfu_graph_n_nodes(g);
    all[0] = x; all[1] = w; all[2] = b; all[3] = mid; all[4] = y1;
    snapshot(g, all, 5, before);

    /* the same result again: nothing changes */
    TT_CHECK(tfu_graph_build_expand(g, y1) == TFU_OK, "expand: y1 again");
    snapshot(g, all, 5, after);
    for (i = 0; i < 5; i++) same &= before[i] == after[i];
    TT_CHECK(same && tfu_graph_n_nodes(g) == n0, "expand: re-adding y1 changed counts or nodes");

    /* an intermediate already in the graph: becomes OUTPUT, nothing counted */
    TT_CHECK((mid->flags & TFU_FLAG_OUTPUT) == 0, "expand: mid OUTPUT too early");
    TT_CHECK(tfu_graph_build_expand(g, mid) == TFU_OK, "expand: mid");
    snapshot(g, all, 5, after);
    same = 1;
    for (i = 0; i < 5; i++) same &= before[i] == after[i];
    TT_CHECK(same && tfu_graph_n_nodes(g) == n0, "expand: re-adding mid changed counts or nodes");
    TT_CHECK((mid->flags & TFU_FLAG_OUTPUT) != 0, "expand: mid not OUTPUT");

    /* a new result sharing mid and b: only its own edges */
    y2 = tfu_sub(ctx, mid, b);
    TT_CHECK(tfu_graph_build_expand(g, y2) == TFU_OK, "expand: y2");
    USES(g, x, 1); USES(g, w, 1); USES(g, b, 2); USES(g, mid, 2); USES(g, y1, 0); USES(g, y2, 0);
    TT_CHECK(tfu_graph_n_nodes(g) == n0 + 1, "expand: y2 added %d nodes", tfu_graph_n_nodes(g) - n0);

    /* a new result consuming an earlier result */
    y3 = tfu_relu(ctx, tfu_add(ctx, y1, y2));
    TT_CHECK(tfu_graph_build_expand(g, y3) == TFU_OK, "expand: y3");
    USES(g, y1, 1); USES(g, y2, 1); USES(g, mid, 2); USES(g, b, 2); USES(g, y3, 0);
    TT_CHECK(tfu_graph_n_nodes(g) == n0 + 3, "expand: y3 added %d nodes", tfu_graph_n_nodes(g) - n0 - 1);
    TT_CHECK((y1->flags & TFU_FLAG_OUTPUT) && (y2->flags & TFU_FLAG_OUTPUT) && (y3->flags & TFU_FLAG_OUTPUT), "expand: outputs not flagged");
    /* adding y1 once more after y3: still nothing */
    all[5] = y2; all[6] = y3;
    snapshot(g, all, 7, before);
    TT_CHECK(tfu_graph_build_expand(g, y1) == TFU_OK, "expand: y1 third time");
    snapshot(g, all, 7, after);
    same = 1;
    for (i = 0; i < 7; i++) same &= before[i] == after[i];
    TT_CHECK(same && tfu_graph_n_nodes(g) == n0 + 3, "expand: re-adding y1 after y3 changed counts");
    check_graph(g, "expand");
    tfu_free(ctx);
}

static void test_op_edges(void) {
    tfu_context *ctx = big_ctx();
    tfu_tensor *kq = leaf(ctx, TFU_F32, 8, 4, "kq");
    tfu_tensor *mask = tfu_causal_mask(ctx, 8, 4);
    tfu_tensor *sm = tfu_soft_max_ext(ctx, kq, mask, 0.5f);
    tfu_tensor *sm0 = tfu_soft_max_ext(ctx, kq, NULL, 0.5f);             /* no mask: one edge */
    tfu_tensor *w = leaf(ctx, TFU_F16, 16, 8, "w");
    tfu_tensor *xb = leaf(ctx, TFU_F32, 16, 4, "xb");
    tfu_tensor *mm = tfu_mul_mat(ctx, w, xb);                             /* 8 x 4 */
    tfu_tensor *q = tfu_new_tensor_3d(ctx, TFU_F32, 8, 2, 3);
    tfu_tensor *pos = tfu_new_tensor_1d(ctx, TFU_I32, 3);
    tfu_tensor *ro, *gate, *val, *gl, *emb, *idx, *gr, *out, *out2;
    tfu_graph *g;
    int i;
    if (q) tt_fill(q, -1, 1);
    if (pos) for (i = 0; i < 3; i++) ((int32_t *)pos->data)[i] = i + 5;
    ro = tfu_rope(ctx, q, pos, 8, TFU_ROPE_NEOX, 10000.0f);
    gate = leaf(ctx, TFU_F32, 8, 4, "gate"); val = leaf(ctx, TFU_F32, 8, 4, "val");
    gl = tfu_glu_split(ctx, gate, val, TFU_GLU_SWIGLU);
    emb = leaf(ctx, TFU_BF16, 8, 10, "emb");
    idx = tfu_new_tensor_1d(ctx, TFU_I32, 4);
    if (idx) for (i = 0; i < 4; i++) ((int32_t *)idx->data)[i] = 9 - 2 * i;
    gr = tfu_get_rows(ctx, emb, idx);                                     /* 8 x 4 */
    /* combine: everything 8 x 4 */
    out = tfu_add(ctx, tfu_add(ctx, sm, mm), tfu_mul(ctx, gl, gr));
    out2 = tfu_add(ctx, tfu_reshape_2d(ctx, ro, 12, 4), tfu_sum_rows(ctx, sm0)); /* 12x4 + 1x4 */
    g = tfu_graph_new(ctx, 64);
    TT_CHECK(out && out2 && g, "op edges: build failed: %s", tfu_last_error_msg(ctx));
    if (!out || !out2 || !g) { tfu_free(ctx); return; }
    TT_CHECK(tfu_graph_build_expand(g, out) == TFU_OK && tfu_graph_build_expand(g, out2) == TFU_OK, "op edges: expand");
    USES(g, kq, 2); USES(g, mask, 1); USES(g, sm, 1); USES(g, sm0, 1);
    USES(g, w, 1); USES(g, xb, 1); USES(g, mm, 1);
    USES(g, q, 1); USES(g, pos, 1); USES(g, ro, 1);
    USES(g, gate, 1); USES(g, val, 1); USES(g, gl, 1);
    USES(g, emb, 1); USES(g, idx, 1); USES(g, gr, 1);
    TT_CHECK(tfu_graph_n_leafs(g) == 10, "op edges: %d leafs, want 10", tfu_graph_n_leafs(g));
    check_graph(g, "op edges");
    TT_CHECK(tfu_graph_compute_ref(g) == TFU_OK, "op edges: compute: %s", tfu_last_error_msg(ctx));
    {   /* softmax rows with the mask still sum to 1 */
        int64_t r, c; int bad = 0;
        for (r = 0; r < 4; r++) {
            double s = 0;
            for (c = 0; c < 8; c++) s += tfu_get_f32(sm, c, r, 0, 0);
            if (fabs(s - 1.0) > 1e-5) bad++;
        }
        TT_CHECK(bad == 0, "op edges: masked softmax rows do not sum to 1");
    }
    tfu_free(ctx);
}

/* random DAGs of 8x8 tensors: use counts equal the operand edges made */
static void test_random_dags(void) {
    enum { MAXT = 48 };
    int trial;
    for (trial = 0; trial < 30; trial++) {
        tfu_context *ctx = big_ctx();
        tfu_tensor *pool[MAXT];
        int expect[MAXT], order[MAXT], n_leaf = tt_int(1, 4), n = 0, i, bad = 0;
        tfu_graph *g = tfu_graph_new(ctx, 2 * MAXT);
        for (i = 0; i < n_leaf; i++) { expect[n] = 0; pool[n++] = leaf(ctx, TFU_F32, 8, 8, "leaf"); }
        while (n < MAXT) {
            int a = tt_int(0, n - 1), b = tt_int(0, n - 1), kind = tt_int(0, 7);
            tfu_tensor *t;
            switch (kind) {
            case 0: t = tfu_add(ctx, pool[a], pool[b]); break;
            case 1: t = tfu_mul(ctx, pool[a], pool[b]); break;
            case 2: t = tfu_mul_mat(ctx, pool[a], pool[b]); break;
            case 3: t = tfu_glu_split(ctx, pool[a], pool[b], TFU_GLU_SWIGLU); break;
            case 4: t = tfu_transpose(ctx, pool[a]); b = -1; break;
            case 5: t = tfu_view_2d(ctx, pool[a], 8, 8, pool[a]->nb[1], 0); b = -1; break;
            case 6: t = tfu_soft_max_ext(ctx, pool[a], tfu_is_contiguous(pool[b]) ? pool[b] : NULL, 0.5f);
                    if (!tfu_is_contiguous(pool[b])) b = -1;
                    break;
            default: t = tfu_scale(ctx, pool[a], 0.5f); b = -1; break;
            }
            if (!t) { TT_CHECK(0, "random dag: op %d failed: %s", kind, tfu_last_error_msg(ctx)); break; }
            expect[a]++;
            if (b >= 0) expect[b]++;
            expect[n] = 0; pool[n++] = t;
        }
        /* add every computed tensor as a result, in random order */
        for (i = 0; i < n; i++) order[i] = i;
        for (i = n - 1; i > 0; i--) { int j = tt_int(0, i), k = order[i]; order[i] = order[j]; order[j] = k; }
        for (i = 0; i < n; i++)
            if (pool[order[i]]->op != TFU_OP_NONE && tfu_graph_build_expand(g, pool[order[i]]) != TFU_OK) bad++;
        TT_CHECK(bad == 0, "random dag %d: %d expands failed", trial, bad);
        for (i = 0, bad = 0; i < n; i++) {
            int want = pool[i]->op == TFU_OP_NONE && expect[i] == 0 ? -1 : expect[i];
            if (tfu_graph_use_count(g, pool[i]) != want) bad++;
        }
        TT_CHECK(bad == 0, "random dag %d: %d use counts differ from the edges made", trial, bad);
        TT_CHECK(tfu_graph_n_nodes(g) == n - n_leaf, "random dag %d: %d nodes, want %d", trial, tfu_graph_n_nodes(g), n - n_leaf);
        check_graph(g, "random dag");
        tfu_free(ctx);
    }
}

static void test_flags(void) {
    tfu_context *ctx = big_ctx();
    tfu_tensor *x = leaf(ctx, TFU_F32, 4, 1, "x");
    tfu_tensor *h = tfu_neg(ctx, x);
    tfu_tensor *y = tfu_exp(ctx, h);
    tfu_graph *g;
    TT_CHECK(tfu_set_input(x) == x && (x->flags & TFU_FLAG_INPUT), "flags: set_input");
    TT_CHECK(tfu_set_keep(h) == h && (h->flags & TFU_FLAG_KEEP), "flags: set_keep");
    TT_CHECK(tfu_set_flags(x, TFU_FLAG_PARAM) == x && x->flags == (TFU_FLAG_INPUT | TFU_FLAG_PARAM), "flags: set_flags does not OR");
    TT_CHECK(tfu_set_output(h) == h && h->flags == (TFU_FLAG_KEEP | TFU_FLAG_OUTPUT), "flags: set_output");
    TT_CHECK(y->flags == 0, "flags: fresh node has flags %u", (unsigned)y->flags);
    g = tfu_graph_build(ctx, y);
    TT_CHECK(g && (y->flags & TFU_FLAG_OUTPUT), "flags: build marks result OUTPUT");
    TT_CHECK(x->flags == (TFU_FLAG_INPUT | TFU_FLAG_PARAM), "flags: build changed leaf flags to %u", (unsigned)x->flags);
    TT_CHECK(tfu_set_name(y, "result") == y && strcmp(y->name, "result") == 0, "flags: set_name");
    TT_CHECK(g && tfu_graph_get_tensor(g, "result") == y && tfu_graph_get_tensor(g, "x") == x, "flags: get_tensor");
    TT_CHECK(g && tfu_graph_get_tensor(g, "nope") == NULL, "flags: get_tensor of a missing name");
    {   /* long names are truncated, NUL-terminated */
        char longname[200];
        memset(longname, 'n', sizeof longname - 1); longname[sizeof longname - 1] = 0;
        tfu_set_name(h, longname);
        TT_CHECK(strlen(h->name) == TFU_MAX_NAME - 1, "flags: name not truncated (%u)", (unsigned)strlen(h->name));
    }
    TT_CHECK(x->index < h->index && h->index < y->index, "flags: creation index order");
    tfu_free(ctx);
}

/* ---- hash --------------------------------------------------------------- */

enum { HV_BASE, HV_SHAPE, HV_OP, HV_PARAM, HV_FLAG, HV_TYPE, HV_ROPE_MODE, HV_COUNT };

static tfu_graph *hash_graph(tfu_context *ctx, int variant) {
    int64_t m = variant == HV_SHAPE ? 12 : 8;
    tfu_tensor *x = tfu_set_input(leaf(ctx, TFU_F32, 16, 4, "x"));
    tfu_tensor *w = tfu_set_flags(leaf(ctx, variant == HV_TYPE ? TFU_F16 : TFU_F32, 16, m, "w"), TFU_FLAG_PARAM);
    tfu_tensor *b = leaf(ctx, TFU_F32, m, 1, "b");
    tfu_tensor *pos = tfu_new_tensor_1d(ctx, TFU_I32, 4);
    tfu_tensor *h, *r, *y;
    int i;
    if (pos) for (i = 0; i < 4; i++) ((int32_t *)pos->data)[i] = i;
    h = tfu_mul_mat(ctx, w, x);                                   /* m x 4 */
    h = variant == HV_OP ? tfu_sub(ctx, h, b) : tfu_add(ctx, h, b);
    if (variant == HV_FLAG) tfu_set_keep(h);
    h = tfu_scale(ctx, tfu_gelu(ctx, h), variant == HV_PARAM ? 0.25f : 0.5f);
    r = tfu_rope(ctx, tfu_reshape_3d(ctx, h, 4, m / 4, 4), pos, 4,
                 variant == HV_ROPE_MODE ? TFU_ROPE_NORMAL : TFU_ROPE_NEOX, 10000.0f);
    y = tfu_soft_max(ctx, tfu_reshape_2d(ctx, r, m, 4));
    return tfu_graph_build(ctx, y);
}

static void test_hash(void) {
    tfu_context *c1 = big_ctx(), *c2 = big_ctx();
    tfu_graph *g1, *g2;
    uint64_t h1, h2;
    int v;
    tt_seed(1); g1 = hash_graph(c1, HV_BASE);
    tt_seed(2); g2 = hash_graph(c2, HV_BASE);
    TT_CHECK(g1 && g2, "hash: build failed: %s / %s", tfu_last_error_msg(c1), tfu_last_error_msg(c2));
    if (!g1 || !g2) { tfu_free(c1); tfu_free(c2); return; }
    TT_CHECK(tfu_graph_leaf(g1, 0)->data != tfu_graph_leaf(g2, 0)->data, "hash: same data pointers?");
    h1 = tfu_graph_hash(g1); h2 = tfu_graph_hash(g2);
    TT_CHECK(h1 == h2, "hash: identical graphs in two contexts differ: %llx %llx", (unsigned long long)h1, (unsigned long long)h2);
    TT_CHECK(tfu_graph_hash(g1) == h1, "hash: not stable");
    /* computing (assigning data to computed tensors) does not change it */
    TT_CHECK(tfu_graph_compute_ref(g1) == TFU_OK, "hash: compute: %s", tfu_last_error_msg(c1));
    TT_CHECK(tfu_graph_hash(g1) == h1, "hash: changed by compute");
    for (v = HV_SHAPE; v < HV_COUNT; v++) {
        tfu_graph *gv;
        tfu_reset(c2);
        tt_seed(2); gv = hash_graph(c2, v);
        TT_CHECK(gv != NULL, "hash: variant %d build failed: %s", v, tfu_last_error_msg(c2));
        if (gv) TT_CHECK(tfu_graph_hash(gv) != h1, "hash: variant %d has the base hash", v);
    }
    /* an extra output flag on an intermediate is a structural change */
    tfu_reset(c2);
    tt_seed(2); g2 = hash_graph(c2, HV_BASE);
    if (g2) {
        TT_CHECK(tfu_graph_hash(g2) == h1, "hash: base after reset differs");
        TT_CHECK(tfu_graph_build_expand(g2, tfu_graph_node(g2, 1)) == TFU_OK, "hash: expand intermediate");
        TT_CHECK(tfu_graph_hash(g2) != h1, "hash: OUTPUT on an intermediate not hashed");
    }
    tfu_free(c1); tfu_free(c2);
}

/* ======================================================================== */
/* part 2: errors                                                           */
/* ======================================================================== */

static void test_result_strings(void) {
    int i, j, distinct = 1, nonempty = 1;
    for (i = 0; i < TFU_RESULT_COUNT; i++) {
        const char *s = tfu_result_str((tfu_result)i);
        if (!s || !s[0]) { nonempty = 0; printf("  result %d has no string\n", i); continue; }
        for (j = 0; j < i; j++) {
            const char *t = tfu_result_str((tfu_result)j);
            if (t && !strcmp(s, t)) distinct = 0;
        }
    }
    TT_CHECK(nonempty, "result strings: some empty");
    TT_CHECK(distinct, "result strings: not distinct");
    TT_CHECK(tfu_result_str(TFU_RESULT_COUNT) != NULL && tfu_result_str((tfu_result)1000) != NULL, "result strings: out of range gives NULL");
    for (i = 0, distinct = 1, nonempty = 1; i < TFU_OP_COUNT; i++) {
        const char *s = tfu_op_name((tfu_op)i);
        if (!s || !s[0]) { nonempty = 0; continue; }
        for (j = 0; j < i; j++) if (tfu_op_name((tfu_op)j) && !strcmp(s, tfu_op_name((tfu_op)j))) distinct = 0;
    }
    TT_CHECK(nonempty && distinct, "op names: empty or not distinct");
    for (i = 0, distinct = 1, nonempty = 1; i < TFU_TYPE_COUNT; i++) {
        const char *s = tfu_type_name((tfu_type)i);
        if (!s || !s[0]) { nonempty = 0; continue; }
        for (j = 0; j < i; j++) if (tfu_type_name((tfu_type)j) && !strcmp(s, tfu_type_name((tfu_type)j))) distinct = 0;
    }
    TT_CHECK(nonempty && distinct, "type names: empty or not distinct");
    TT_CHECK(tfu_type_size(TFU_F32) == 4 && tfu_type_size(TFU_F16) == 2 && tfu_type_size(TFU_BF16) == 2 && tfu_type_size(TFU_I32) == 4, "type sizes");
}

static void test_init(void) {
    static uint64_t small[8];
    tfu_context_params p;
    size_t need;
    void *mem;
    tfu_context *ctx;
    p.no_alloc = 0;
    p.mem = NULL; p.mem_size = (size_t)1 << 20;
    TT_CHECK(tfu_init(p) == NULL, "init: NULL memory accepted");
    p.mem = small; p.mem_size = sizeof small;
    TT_CHECK(tfu_init(p) == NULL, "init: %u bytes accepted", (unsigned)sizeof small);
    p.mem_size = 0;
    TT_CHECK(tfu_init(p) == NULL, "init: 0 bytes accepted");
    tfu_free(NULL);   /* no crash */

    /* tfu_context_size is enough for what it promises */
    need = tfu_context_size(2, 2 * 64 * sizeof(float));
    mem = malloc(need);
    p.mem = mem; p.mem_size = need;
    ctx = tfu_init(p);
    TT_CHECK(ctx != NULL, "init: tfu_context_size(2, 512) = %u bytes not enough for init", (unsigned)need);
    if (ctx) {
        tfu_tensor *a = tfu_new_tensor_1d(ctx, TFU_F32, 64), *b = tfu_new_tensor_1d(ctx, TFU_F32, 64);
        TT_CHECK(a && b && a->data && b->data, "init: context_size(2, 512) holds no two 64-float tensors: %s", tfu_last_error_msg(ctx));
        TT_CHECK(tfu_used_mem(ctx) <= need, "init: used %u > size %u", (unsigned)tfu_used_mem(ctx), (unsigned)need);
        TT_CHECK(tfu_new_tensor_1d(ctx, TFU_F32, 4096) == NULL && tfu_last_error(ctx) == TFU_ERR_NO_MEMORY,
                 "init: 4096 floats fit in context_size(2, 512): %s", tfu_result_str(tfu_last_error(ctx)));
    }
    free(mem);

    /* ... and for a graph of those tensors built the simple way */
    need = tfu_context_size(4, 2 * 64 * sizeof(float));
    mem = malloc(need);
    p.mem = mem; p.mem_size = need;
    ctx = tfu_init(p);
    if (ctx) {
        tfu_tensor *a = tfu_new_tensor_1d(ctx, TFU_F32, 64), *b = tfu_new_tensor_1d(ctx, TFU_F32, 64);
        tfu_tensor *y = tfu_neg(ctx, tfu_add(ctx, a, b));
        tfu_graph *g = tfu_graph_build(ctx, y);
        TT_CHECK(y != NULL, "init: context_size(4, 512) holds no 4 tensors: %s", tfu_last_error_msg(ctx));
        TT_CHECK(g != NULL, "init: context_size(4, 512) = %u bytes holds no graph_build of 4 tensors: %s",
                 (unsigned)need, tfu_last_error_msg(ctx));
    }
    free(mem);
}

static void test_null_inputs(void) {
    tfu_context *ctx = big_ctx();
    tfu_tensor *a = leaf(ctx, TFU_F32, 8, 4, "a"), *N = NULL;
    tfu_tensor *pos = tfu_new_tensor_1d(ctx, TFU_I32, 4);
    int64_t ne[2] = { 8, 4 };
    size_t nb[2] = { 4, 32 };
    int nonnull = 0, i;
    tfu_graph *g;
    tfu_result e;
    tfu_tensor *r[64];
    int n = 0;
    /* a NULL shape array */
    tfu_clear_error(ctx);
    TT_CHECK(tfu_new_tensor(ctx, TFU_F32, 2, NULL) == NULL, "null: new_tensor(ne = NULL)");
    e = tfu_last_error(ctx);
    TT_CHECK(e == TFU_ERR_NULL_ARG || e == TFU_ERR_INVALID_ARG, "null: new_tensor(ne = NULL) gave %s", tfu_result_str(e));
    tfu_clear_error(ctx);
    r[n++] = tfu_set_name(N, "x");
    r[n++] = tfu_set_flags(N, TFU_FLAG_KEEP);
    r[n++] = tfu_set_input(N);
    r[n++] = tfu_set_output(N);
    r[n++] = tfu_set_keep(N);
    r[n++] = tfu_view(ctx, N, 2, ne, nb, 0);
    r[n++] = tfu_view_1d(ctx, N, 4, 0);
    r[n++] = tfu_view_2d(ctx, N, 4, 2, 16, 0);
    r[n++] = tfu_view_3d(ctx, N, 4, 2, 1, 16, 32, 0);
    r[n++] = tfu_reshape(ctx, N, 2, ne);
    r[n++] = tfu_reshape_2d(ctx, N, 4, 8);
    r[n++] = tfu_reshape_3d(ctx, N, 4, 4, 2);
    r[n++] = tfu_permute(ctx, N, 1, 0, 2, 3);
    r[n++] = tfu_transpose(ctx, N);
    r[n++] = tfu_cont(ctx, N);
    r[n++] = tfu_cpy(ctx, N, a);
    r[n++] = tfu_cpy(ctx, a, N);
    r[n++] = tfu_add(ctx, N, a);
    r[n++] = tfu_add(ctx, a, N);
    r[n++] = tfu_sub(ctx, N, a);
    r[n++] = tfu_mul(ctx, a, N);
    r[n++] = tfu_div(ctx, N, N);
    r[n++] = tfu_scale(ctx, N, 2.0f);
    r[n++] = tfu_scale_bias(ctx, N, 2.0f, 1.0f);
    r[n++] = tfu_clamp(ctx, N, -1.0f, 1.0f);
    r[n++] = tfu_unary(ctx, N, TFU_OP_NEG);
    r[n++] = tfu_neg(ctx, N);   r[n++] = tfu_abs(ctx, N);     r[n++] = tfu_sqr(ctx, N);
    r[n++] = tfu_sqrt(ctx, N);  r[n++] = tfu_exp(ctx, N);     r[n++] = tfu_log(ctx, N);
    r[n++] = tfu_sin(ctx, N);   r[n++] = tfu_cos(ctx, N);     r[n++] = tfu_tanh(ctx, N);
    r[n++] = tfu_sigmoid(ctx, N); r[n++] = tfu_relu(ctx, N);  r[n++] = tfu_gelu(ctx, N);
    r[n++] = tfu_gelu_erf(ctx, N); r[n++] = tfu_silu(ctx, N);
    r[n++] = tfu_glu(ctx, N, TFU_GLU_SWIGLU, 0);
    r[n++] = tfu_glu_split(ctx, N, a, TFU_GLU_REGLU);
    r[n++] = tfu_glu_split(ctx, a, N, TFU_GLU_REGLU);
    r[n++] = tfu_reglu(ctx, N); r[n++] = tfu_geglu(ctx, N);   r[n++] = tfu_swiglu(ctx, N);
    r[n++] = tfu_swiglu_split(ctx, N, a);
    r[n++] = tfu_swiglu_split(ctx, a, N);
    r[n++] = tfu_rms_norm(ctx, N, 1e-5f);
    r[n++] = tfu_norm(ctx, N, 1e-5f);
    r[n++] = tfu_soft_max(ctx, N);
    r[n++] = tfu_soft_max_ext(ctx, N, a, 1.0f);
    r[n++] = tfu_sum_rows(ctx, N);
    r[n++] = tfu_mean(ctx, N);
    r[n++] = tfu_argmax(ctx, N);
    r[n++] = tfu_mul_mat(ctx, N, a);
    r[n++] = tfu_mul_mat(ctx, a, N);
    r[n++] = tfu_get_rows(ctx, N, pos);
    r[n++] = tfu_get_rows(ctx, a, N);
    r[n++] = tfu_rope(ctx, N, pos, 8, TFU_ROPE_NORMAL, 10000.0f);
    r[n++] = tfu_concat(ctx, N, a, 0);
    r[n++] = tfu_concat(ctx, a, N, 0);
    for (i = 0; i < n; i++) if (r[i]) { nonnull++; printf("  NULL input #%d gave a tensor\n", i); }
    TT_CHECK(nonnull == 0, "null inputs: %d of %d builders returned a tensor", nonnull, n);
    e = tfu_last_error(ctx);
    TT_CHECK(e == TFU_OK || e == TFU_ERR_NULL_ARG, "null inputs: error %s", tfu_result_str(e));

    /* NULL context */
    TT_CHECK(tfu_new_tensor_1d(NULL, TFU_F32, 4) == NULL, "null ctx: new_tensor");
    TT_CHECK(tfu_add(NULL, a, a) == NULL, "null ctx: add");
    TT_CHECK(tfu_mul_mat(NULL, a, a) == NULL, "null ctx: mul_mat");
    TT_CHECK(tfu_graph_new(NULL, 8) == NULL, "null ctx: graph_new");
    TT_CHECK(tfu_graph_build(NULL, a) == NULL, "null ctx: graph_build");

    /* graph functions */
    g = tfu_graph_new(ctx, 8);
    TT_CHECK(tfu_graph_build(ctx, NULL) == NULL, "null: graph_build(ctx, NULL)");
    TT_CHECK(tfu_graph_build_expand(NULL, a) == TFU_ERR_NULL_ARG, "null: build_expand(NULL, a)");
    TT_CHECK(tfu_graph_build_expand(g, NULL) == TFU_ERR_NULL_ARG, "null: build_expand(g, NULL)");
    TT_CHECK(tfu_graph_compute_ref(NULL) == TFU_ERR_NULL_ARG, "null: compute_ref(NULL)");
    TT_CHECK(tfu_graph_use_count(g, NULL) == -1 && tfu_graph_use_count(NULL, a) == -1, "null: use_count");
    TT_CHECK(!tfu_graph_contains(g, NULL) && !tfu_graph_contains(NULL, a), "null: contains");
    TT_CHECK(tfu_graph_node(g, 0) == NULL && tfu_graph_node(g, -1) == NULL && tfu_graph_leaf(g, 5) == NULL, "null: node index out of range");
    TT_CHECK(tfu_graph_get_tensor(g, NULL) == NULL && tfu_graph_get_tensor(NULL, "a") == NULL, "null: get_tensor");
    check_usable(ctx, "null inputs");

    /* build a whole graph from a failed op and check once: the first error
       (the cause) is what the context reports, not a later NULL_ARG */
    {
        tfu_tensor *bad = leaf(ctx, TFU_F32, 3, 4, "bad");
        tfu_tensor *w = leaf(ctx, TFU_F32, 8, 8, "w");
        tfu_tensor *t = tfu_add(ctx, a, bad);                 /* 8 % 3: SHAPE */
        t = tfu_rms_norm(ctx, t, 1e-5f);
        t = tfu_mul_mat(ctx, w, t);
        t = tfu_soft_max_ext(ctx, t, NULL, 0.5f);
        t = tfu_add(ctx, t, a);
        TT_CHECK(t == NULL, "check once: result not NULL");
        TT_CHECK(tfu_last_error(ctx) == TFU_ERR_SHAPE, "check once: error %s, want the cause (shape)", tfu_result_str(tfu_last_error(ctx)));
        TT_CHECK(tfu_last_error_tensor(ctx) == a || tfu_last_error_tensor(ctx) == bad, "check once: error tensor is not the cause's operand");
        TT_CHECK(tfu_graph_build(ctx, t) == NULL, "check once: graph of NULL");
        check_usable(ctx, "check once");
    }
    tfu_free(ctx);
}

static void test_shape_errors(void) {
    tfu_context *ctx = big_ctx();
    tfu_tensor *a43 = leaf(ctx, TFU_F32, 4, 3, "a43"), *b33 = leaf(ctx, TFU_F32, 3, 3, "b33");
    tfu_tensor *b42 = leaf(ctx, TFU_F32, 4, 2, "b42"), *a41 = leaf(ctx, TFU_F32, 4, 1, "a41");
    tfu_tensor *w = leaf(ctx, TFU_F32, 16, 8, "w"), *x12 = leaf(ctx, TFU_F32, 12, 4, "x12");
    tfu_tensor *w3 = tfu_new_tensor_3d(ctx, TFU_F32, 16, 8, 3), *x2 = tfu_new_tensor_3d(ctx, TFU_F32, 16, 4, 2);
    tfu_tensor *q = tfu_new_tensor_3d(ctx, TFU_F32, 8, 2, 3), *pos4 = tfu_new_tensor_1d(ctx, TFU_I32, 4);
    tfu_tensor *kq = leaf(ctx, TFU_F32, 8, 4, "kq"), *m7 = leaf(ctx, TFU_F32, 7, 4, "m7"), *m83 = leaf(ctx, TFU_F32, 8, 3, "m83");
    tfu_tensor *odd = leaf(ctx, TFU_F32, 7, 2, "odd");
    tfu_tensor *tr = tfu_transpose(ctx, a43);

    FAILS_T(ctx, tfu_add(ctx, a43, b33), TFU_ERR_SHAPE, a43, b33);
    FAILS_T(ctx, tfu_mul(ctx, a43, b42), TFU_ERR_SHAPE, a43, b42);
    FAILS_T(ctx, tfu_sub(ctx, a41, a43), TFU_ERR_SHAPE, a41, a43);   /* b larger than a */
    FAILS_T(ctx, tfu_div(ctx, a43, b33), TFU_ERR_SHAPE, a43, b33);
    FAILS_T(ctx, tfu_mul_mat(ctx, w, x12), TFU_ERR_SHAPE, w, x12);   /* K 16 vs 12 */
    FAILS_T(ctx, tfu_mul_mat(ctx, w3, x2), TFU_ERR_SHAPE, w3, x2);   /* 2 % 3 */
    FAILS_T(ctx, tfu_concat(ctx, a43, b33, 1), TFU_ERR_SHAPE, a43, b33);
    FAILS_T(ctx, tfu_glu_split(ctx, a43, b42, TFU_GLU_SWIGLU), TFU_ERR_SHAPE, a43, b42);
    FAILS2(ctx, tfu_glu(ctx, odd, TFU_GLU_SWIGLU, 0), TFU_ERR_SHAPE, TFU_ERR_INVALID_ARG);
    FAILS_T(ctx, tfu_soft_max_ext(ctx, kq, m7, 1.0f), TFU_ERR_SHAPE, kq, m7);    /* mask ne0 */
    FAILS_T(ctx, tfu_soft_max_ext(ctx, kq, m83, 1.0f), TFU_ERR_SHAPE, kq, m83);  /* mask rows */
    FAILS_T(ctx, tfu_rope(ctx, q, pos4, 8, TFU_ROPE_NORMAL, 10000.0f), TFU_ERR_SHAPE, q, pos4);
    FAILS_T(ctx, tfu_cpy(ctx, a43, b33), TFU_ERR_SHAPE, a43, b33);
    FAILS_T(ctx, tfu_reshape_2d(ctx, a43, 5, 2), TFU_ERR_SHAPE, a43, NULL);
    /* a view reaching past its source */
    FAILS2(ctx, tfu_view_1d(ctx, a43, 13, 0), TFU_ERR_SHAPE, TFU_ERR_INVALID_ARG);
    FAILS2(ctx, tfu_view_1d(ctx, a43, 4, 9 * sizeof(float)), TFU_ERR_SHAPE, TFU_ERR_INVALID_ARG);
    FAILS2(ctx, tfu_view_2d(ctx, a43, 4, 3, 5 * sizeof(float), 0), TFU_ERR_SHAPE, TFU_ERR_INVALID_ARG);
    FAILS2(ctx, tfu_view_1d(ctx, a43, 4, (size_t)-8), TFU_ERR_SHAPE, TFU_ERR_OVERFLOW);
    /* reshape of a non-contiguous tensor */
    TT_CHECK(tr != NULL && !tfu_is_contiguous(tr), "transpose is contiguous?");
    {
        tfu_tensor *r = tfu_reshape_2d(ctx, tr, 12, 1);
        tfu_result e = tfu_last_error(ctx);
        TT_CHECK(r == NULL && e != TFU_OK, "reshape of non-contiguous: not refused (%s)", tfu_result_str(e));
        TT_CHECK(tfu_last_error_msg(ctx)[0] != 0, "reshape of non-contiguous: no message");
        check_usable(ctx, "reshape of non-contiguous");
        r = tfu_reshape_2d(ctx, tfu_cont(ctx, tr), 12, 1);
        TT_CHECK(r != NULL, "reshape of cont(transpose) refused: %s", tfu_last_error_msg(ctx));
    }
    tfu_free(ctx);
}

static void test_type_errors(void) {
    tfu_context *ctx = big_ctx();
    tfu_tensor *f = leaf(ctx, TFU_F32, 8, 4, "f"), *i32 = tfu_new_tensor_2d(ctx, TFU_I32, 8, 4);
    tfu_tensor *w = leaf(ctx, TFU_F32, 8, 6, "w"), *b16 = leaf(ctx, TFU_F16, 8, 4, "b16");
    tfu_tensor *wi = tfu_new_tensor_2d(ctx, TFU_I32, 8, 6);
    tfu_tensor *idxf = leaf(ctx, TFU_F32, 4, 1, "idxf");
    tfu_tensor *q = tfu_new_tensor_3d(ctx, TFU_F32, 8, 2, 3), *posf = leaf(ctx, TFU_F32, 3, 1, "posf");
    tfu_tensor *mi = tfu_new_tensor_2d(ctx, TFU_I32, 8, 4);
    FAILS_T(ctx, tfu_add(ctx, i32, f), TFU_ERR_TYPE, i32, NULL);
    FAILS_T(ctx, tfu_add(ctx, f, i32), TFU_ERR_TYPE, i32, f);
    FAILS_T(ctx, tfu_neg(ctx, i32), TFU_ERR_TYPE, i32, NULL);
    FAILS_T(ctx, tfu_rms_norm(ctx, i32, 1e-5f), TFU_ERR_TYPE, i32, NULL);
    FAILS_T(ctx, tfu_soft_max(ctx, i32), TFU_ERR_TYPE, i32, NULL);
    FAILS_T(ctx, tfu_mul_mat(ctx, w, b16), TFU_ERR_TYPE, b16, w);   /* b must be F32 */
    FAILS_T(ctx, tfu_mul_mat(ctx, wi, f), TFU_ERR_TYPE, wi, NULL);
    FAILS_T(ctx, tfu_get_rows(ctx, w, idxf), TFU_ERR_TYPE, idxf, w);
    FAILS_T(ctx, tfu_rope(ctx, q, posf, 8, TFU_ROPE_NORMAL, 10000.0f), TFU_ERR_TYPE, posf, q);
    FAILS_T(ctx, tfu_soft_max_ext(ctx, f, mi, 1.0f), TFU_ERR_TYPE, mi, f);
    FAILS_T(ctx, tfu_glu_split(ctx, f, i32, TFU_GLU_REGLU), TFU_ERR_TYPE, i32, f);
    /* F16 is fine where documented */
    TT_CHECK(tfu_add(ctx, b16, f) != NULL && tfu_mul_mat(ctx, tfu_new_tensor_2d(ctx, TFU_F16, 8, 6), f) != NULL,
             "F16 operands refused: %s", tfu_last_error_msg(ctx));
    tfu_free(ctx);
}

static void test_invalid_args(void) {
    tfu_context *ctx = big_ctx();
    tfu_tensor *a = leaf(ctx, TFU_F32, 8, 4, "a");
    tfu_tensor *q = tfu_new_tensor_3d(ctx, TFU_F32, 8, 2, 3), *pos = tfu_new_tensor_1d(ctx, TFU_I32, 3);
    int64_t ne[5] = { 4, 4, 4, 4, 4 }, neg[2] = { 4, -2 };
    size_t nb[5] = { 4, 16, 64, 256, 1024 };
    FAILS(ctx, tfu_new_tensor_1d(ctx, TFU_F32, 0), TFU_ERR_INVALID_ARG);
    FAILS(ctx, tfu_new_tensor_1d(ctx, TFU_F32, -3), TFU_ERR_INVALID_ARG);
    FAILS(ctx, tfu_new_tensor_2d(ctx, TFU_F32, 4, -1), TFU_ERR_INVALID_ARG);
    FAILS(ctx, tfu_new_tensor_4d(ctx, TFU_F32, 4, 4, 0, 4), TFU_ERR_INVALID_ARG);
    FAILS(ctx, tfu_new_tensor(ctx, TFU_F32, 2, neg), TFU_ERR_INVALID_ARG);
    FAILS(ctx, tfu_new_tensor(ctx, TFU_F32, 0, ne), TFU_ERR_INVALID_ARG);
    FAILS(ctx, tfu_new_tensor(ctx, TFU_F32, 5, ne), TFU_ERR_INVALID_ARG);
    FAILS(ctx, tfu_new_tensor(ctx, TFU_F32, -1, ne), TFU_ERR_INVALID_ARG);
    FAILS2(ctx, tfu_new_tensor_1d(ctx, TFU_TYPE_COUNT, 4), TFU_ERR_INVALID_ARG, TFU_ERR_TYPE);
    FAILS2(ctx, tfu_new_tensor_1d(ctx, (tfu_type)-1, 4), TFU_ERR_INVALID_ARG, TFU_ERR_TYPE);
    FAILS(ctx, tfu_view(ctx, a, 0, ne, nb, 0), TFU_ERR_INVALID_ARG);
    FAILS(ctx, tfu_view(ctx, a, 5, ne, nb, 0), TFU_ERR_INVALID_ARG);
    FAILS(ctx, tfu_reshape(ctx, a, 5, ne), TFU_ERR_INVALID_ARG);
    FAILS2(ctx, tfu_reshape_2d(ctx, a, 0, 4), TFU_ERR_INVALID_ARG, TFU_ERR_SHAPE);
    FAILS_T(ctx, tfu_permute(ctx, a, 0, 0, 1, 2), TFU_ERR_INVALID_ARG, a, NULL);
    FAILS_T(ctx, tfu_permute(ctx, a, 0, 1, 2, 4), TFU_ERR_INVALID_ARG, a, NULL);
    FAILS_T(ctx, tfu_permute(ctx, a, -1, 1, 2, 3), TFU_ERR_INVALID_ARG, a, NULL);
    FAILS_T(ctx, tfu_glu(ctx, a, (tfu_glu_kind)7, 0), TFU_ERR_INVALID_ARG, a, NULL);
    FAILS_T(ctx, tfu_glu(ctx, a, (tfu_glu_kind)-1, 0), TFU_ERR_INVALID_ARG, a, NULL);
    FAILS(ctx, tfu_glu_split(ctx, a, a, (tfu_glu_kind)9), TFU_ERR_INVALID_ARG);
    FAILS_T(ctx, tfu_unary(ctx, a, TFU_OP_ADD), TFU_ERR_INVALID_ARG, a, NULL);
    FAILS_T(ctx, tfu_unary(ctx, a, TFU_OP_COUNT), TFU_ERR_INVALID_ARG, a, NULL);
    FAILS(ctx, tfu_concat(ctx, a, a, 4), TFU_ERR_INVALID_ARG);
    FAILS(ctx, tfu_concat(ctx, a, a, -1), TFU_ERR_INVALID_ARG);
    FAILS(ctx, tfu_rope(ctx, q, pos, 3, TFU_ROPE_NORMAL, 10000.0f), TFU_ERR_INVALID_ARG);   /* odd n_dims */
    FAILS(ctx, tfu_rope(ctx, q, pos, 0, TFU_ROPE_NORMAL, 10000.0f), TFU_ERR_INVALID_ARG);
    FAILS2(ctx, tfu_rope(ctx, q, pos, 10, TFU_ROPE_NORMAL, 10000.0f), TFU_ERR_INVALID_ARG, TFU_ERR_SHAPE); /* > head_dim */
    FAILS(ctx, tfu_rope(ctx, q, pos, 8, (tfu_rope_mode)1, 10000.0f), TFU_ERR_INVALID_ARG);
    FAILS(ctx, tfu_causal_mask(ctx, 0, 4), TFU_ERR_INVALID_ARG);
    FAILS(ctx, tfu_causal_mask(ctx, 4, -1), TFU_ERR_INVALID_ARG);
    FAILS(ctx, tfu_graph_new(ctx, 0), TFU_ERR_INVALID_ARG);
    FAILS(ctx, tfu_graph_new(ctx, -4), TFU_ERR_INVALID_ARG);
    tfu_free(ctx);
}

static void test_overflow(void) {
    tfu_context *ctx = big_ctx(), *na = tfu_init_malloc((size_t)1 << 20, 1);
    const int64_t big = (int64_t)1 << 40;
    tfu_tensor *a = leaf(ctx, TFU_F32, 8, 4, "a");
    FAILS(ctx, tfu_new_tensor_4d(ctx, TFU_F32, big, big, 1, 1), TFU_ERR_OVERFLOW);
    FAILS(ctx, tfu_new_tensor_4d(ctx, TFU_F32, 1, big, 1, big), TFU_ERR_OVERFLOW);
    FAILS(ctx, tfu_new_tensor_2d(ctx, TFU_F32, (int64_t)1 << 31, (int64_t)1 << 31), TFU_ERR_OVERFLOW); /* 2^64 bytes */
    FAILS(ctx, tfu_new_tensor_1d(ctx, TFU_F32, INT64_MAX), TFU_ERR_OVERFLOW);
    FAILS(ctx, tfu_new_tensor_3d(ctx, TFU_F16, INT64_MAX / 2, 3, 1), TFU_ERR_OVERFLOW);
    /* even with no data to allocate, the strides would overflow */
    FAILS(na, tfu_new_tensor_4d(na, TFU_F32, big, big, 1, 1), TFU_ERR_OVERFLOW);
    {
        int64_t ne[2] = { big, big };
        FAILS2(ctx, tfu_reshape(ctx, a, 2, ne), TFU_ERR_OVERFLOW, TFU_ERR_SHAPE);
    }
    /* large but representable: a plain out-of-memory */
    FAILS(ctx, tfu_new_tensor_1d(ctx, TFU_F32, (int64_t)1 << (sizeof(size_t) >= 8 ? 40 : 27)), TFU_ERR_NO_MEMORY);
    tfu_free(ctx);
    tfu_free(na);
}

static void test_no_memory(void) {
    tfu_context *ctx = tfu_init_malloc(tfu_context_size(8, 1024), 0);
    tfu_tensor *t, *a;
    int i, made = 0;
    TT_CHECK(ctx != NULL, "no memory: init");
    if (!ctx) return;
    /* leaf data exhausted, descriptors left: the context carries on */
    a = tfu_new_tensor_1d(ctx, TFU_F32, 4);
    t = tfu_new_tensor_1d(ctx, TFU_F32, 1 << 16);
    TT_CHECK(t == NULL && tfu_last_error(ctx) == TFU_ERR_NO_MEMORY, "no memory: big leaf: %s", tfu_result_str(tfu_last_error(ctx)));
    TT_CHECK(tfu_last_error_msg(ctx)[0] != 0, "no memory: message");
    tfu_clear_error(ctx);
    t = tfu_neg(ctx, a);
    TT_CHECK(t != NULL, "no memory: unusable after a failed leaf: %s", tfu_last_error_msg(ctx));
    /* descriptors exhausted (ops need no data) */
    for (i = 0; i < 100000; i++) {
        if (!tfu_neg(ctx, a)) break;
        made++;
    }
    TT_CHECK(2 + made >= 8, "no memory: tfu_context_size(8, ...) held only %d tensors", 2 + made);
    TT_CHECK(i < 100000, "no memory: a tiny context never fills");
    TT_CHECK(tfu_last_error(ctx) == TFU_ERR_NO_MEMORY, "no memory: filling gives %s", tfu_result_str(tfu_last_error(ctx)));
    tfu_clear_error(ctx);
    TT_CHECK(tfu_add(ctx, a, a) == NULL && tfu_last_error(ctx) == TFU_ERR_NO_MEMORY, "no memory: op in a full context");
    tfu_clear_error(ctx);
    TT_CHECK(tfu_graph_new(ctx, 4096) == NULL && tfu_last_error(ctx) == TFU_ERR_NO_MEMORY, "no memory: graph in a full context");
    TT_CHECK(tfu_used_mem(ctx) <= tfu_context_size(8, 1024), "no memory: used more than given");
    /* reset makes it usable again */
    tfu_reset(ctx);
    TT_CHECK(tfu_used_mem(ctx) < tfu_context_size(8, 1024) / 2, "no memory: reset did not free");
    tfu_free(ctx);

    /* a context for a real graph: usable after out-of-memory in a builder */
    ctx = big_ctx();
    FAILS(ctx, tfu_new_tensor_2d(ctx, TFU_F32, 1 << 20, 1 << 7), TFU_ERR_NO_MEMORY);
    tfu_free(ctx);
}

static void test_graph_errors(void) {
    tfu_context *ctx = big_ctx(), *other = big_ctx();
    tfu_tensor *x = leaf(ctx, TFU_F32, 8, 1, "x"), *y, *z;
    tfu_graph *g = tfu_graph_new(ctx, 3);
    tfu_result r;
    int i;
    y = x;
    for (i = 0; i < 6; i++) y = tfu_scale(ctx, y, 1.5f);
    TT_CHECK(g != NULL, "graph errors: graph_new");
    if (!g) { tfu_free(ctx); tfu_free(other); return; }
    r = tfu_graph_build_expand(g, y);
    TT_CHECK(r == TFU_ERR_GRAPH, "graph errors: 6 ops into max 3: %s", tfu_result_str(r));
    TT_CHECK(tfu_last_error(ctx) == TFU_ERR_GRAPH && tfu_last_error_msg(ctx)[0], "graph errors: context error %s", tfu_result_str(tfu_last_error(ctx)));
    /* nothing half-written: the graph is as before, and still takes what fits */
    TT_CHECK(tfu_graph_n_nodes(g) == 0 && tfu_graph_n_leafs(g) == 0, "graph errors: failed expand left %d nodes %d leafs",
             tfu_graph_n_nodes(g), tfu_graph_n_leafs(g));
    check_graph(g, "graph errors after overflow");
    tfu_clear_error(ctx);
    z = tfu_neg(ctx, x);
    r = tfu_graph_build_expand(g, z);
    TT_CHECK(r == TFU_OK, "graph errors: small result into the same graph: %s", tfu_result_str(r));
    if (r == TFU_OK) {
        USES(g, x, 1); USES(g, z, 0);
        check_graph(g, "graph errors after recovery");
        TT_CHECK(tfu_graph_compute_ref(g) == TFU_OK && tfu_get_f32(z, 3, 0, 0, 0) == -tfu_get_f32(x, 3, 0, 0, 0), "graph errors: compute after recovery");
    }
    /* a tensor of another context */
    {
        tfu_tensor *o = tfu_neg(other, leaf(other, TFU_F32, 8, 1, "o"));
        tfu_graph *g3 = tfu_graph_new(ctx, 16);
        tfu_clear_error(ctx);
        r = tfu_graph_build_expand(g3, o);
        TT_CHECK(r == TFU_ERR_GRAPH, "graph errors: tensor of another context: %s", tfu_result_str(r));
        TT_CHECK(tfu_graph_n_nodes(g3) == 0 && tfu_graph_n_leafs(g3) == 0, "graph errors: foreign expand changed the graph");
        check_usable(ctx, "graph errors: foreign");
        /* an op mixing contexts: the result would live in ctx, an operand in other */
        z = tfu_add(ctx, x, o);
        if (z) {   /* allowed to build; then the graph must refuse or include it consistently */
            tfu_graph *g2 = tfu_graph_new(ctx, 16);
            r = tfu_graph_build_expand(g2, z);
            TT_CHECK(r == TFU_ERR_GRAPH || r == TFU_OK, "graph errors: mixed contexts: %s", tfu_result_str(r));
            if (r == TFU_OK) check_graph(g2, "mixed contexts");
        }
        tfu_clear_error(ctx);
    }
    tfu_free(ctx);
    tfu_free(other);
}

static void test_compute_errors(void) {
    /* an input without data */
    {
        tfu_context *ctx = tfu_init_malloc((size_t)1 << 20, 1);
        tfu_tensor *x = tfu_new_tensor_1d(ctx, TFU_F32, 8);
        tfu_tensor *y = tfu_scale(ctx, x, 3.0f);
        tfu_graph *g = tfu_graph_build(ctx, y);
        float xb[8];
        int i, bad = 0;
        tfu_result r;
        TT_CHECK(x && y && g && x->data == NULL, "no data: setup (%s)", tfu_last_error_msg(ctx));
        if (x && y && g) {
            r = tfu_graph_compute_ref(g);
            TT_CHECK(r == TFU_ERR_NO_DATA, "no data: compute gave %s", tfu_result_str(r));
            TT_CHECK(tfu_last_error(ctx) == TFU_ERR_NO_DATA && tfu_last_error_tensor(ctx) == x, "no data: context error %s, tensor %p",
                     tfu_result_str(tfu_last_error(ctx)), (const void *)tfu_last_error_tensor(ctx));
            TT_CHECK(tfu_last_error_msg(ctx)[0] != 0, "no data: message");
            tfu_clear_error(ctx);
            for (i = 0; i < 8; i++) xb[i] = (float)i - 3.5f;
            x->data = xb;   /* leaves' data is the caller's to set */
            r = tfu_graph_compute_ref(g);
            TT_CHECK(r == TFU_OK, "no data: compute after setting data: %s", tfu_result_str(r));
            for (i = 0; i < 8; i++) if (tfu_get_f32(y, i, 0, 0, 0) != 3.0f * xb[i]) bad++;
            TT_CHECK(bad == 0, "no data: wrong values after recovery");
        }
        tfu_free(ctx);
    }
    /* a context too small for the intermediates: NO_MEMORY before anything
       is written (an earlier result stays as it was), then the context
       still computes what fits */
    {
        enum { N = 1024, BIG = 4096 };
        tfu_context *ctx = tfu_init_malloc((size_t)1 << 16, 0);
        tfu_tensor *a = leaf(ctx, TFU_F32, N, 1, "a"), *b = leaf(ctx, TFU_F32, N, 1, "b");
        tfu_tensor *c = tfu_add(ctx, a, b), *d = tfu_mul(ctx, c, a);
        tfu_tensor *big = tfu_new_tensor_1d(ctx, TFU_F32, BIG), *x = tfu_scale(ctx, big, 2.0f);
        tfu_graph *g1 = tfu_graph_new(ctx, 8), *g2 = tfu_graph_new(ctx, 8);
        float *d_before;
        int64_t n, i, bad = 0;
        tfu_result r;
        if (g1 && tfu_graph_build_expand(g1, d) != TFU_OK) g1 = NULL;
        if (g2 && (tfu_graph_build_expand(g2, x) != TFU_OK || tfu_graph_build_expand(g2, d) != TFU_OK)) g2 = NULL;
        TT_CHECK(a && b && c && d && x && g1 && g2, "ctx too small: setup (%s)", tfu_last_error_msg(ctx));
        if (a && b && c && d && x && g1 && g2) {
            tt_fill(big, -1, 1);
            r = tfu_graph_compute_ref(g1);                 /* c and d get memory */
            TT_CHECK(r == TFU_OK, "ctx too small: first compute: %s", tfu_result_str(r));
            d_before = tt_copy_out(d);
            /* fill what is left of the context, then change the input */
            for (n = (int64_t)1 << 14; n >= 1; n /= 2) while (tfu_new_tensor_1d(ctx, TFU_F32, n)) {}
            tfu_clear_error(ctx);
            tt_fill(a, 1, 2);
            r = tfu_graph_compute_ref(g2);                 /* x finds no memory */
            TT_CHECK(r == TFU_ERR_NO_MEMORY, "ctx too small: compute gave %s", tfu_result_str(r));
            TT_CHECK(tfu_last_error(ctx) == TFU_ERR_NO_MEMORY && tfu_last_error_msg(ctx)[0], "ctx too small: context error %s",
                     tfu_result_str(tfu_last_error(ctx)));
            TT_CHECK(tfu_last_error_tensor(ctx) == x, "ctx too small: error tensor %p is not the node without memory",
                     (const void *)tfu_last_error_tensor(ctx));
            for (i = 0; i < N; i++) if (tfu_get_f32(d, i, 0, 0, 0) != d_before[i]) bad++;
            TT_CHECK(bad == 0, "ctx too small: %d elements of d written although nothing was computed", (int)bad);
            free(d_before);
            /* what needs no new memory still runs */
            tfu_clear_error(ctx);
            r = tfu_graph_compute_ref(g1);
            TT_CHECK(r == TFU_OK, "ctx too small: compute after the error: %s", tfu_result_str(r));
            for (i = 0, bad = 0; i < N; i++) {
                float av = tfu_get_f32(a, i, 0, 0, 0), bv = tfu_get_f32(b, i, 0, 0, 0);
                if (fabsf(tfu_get_f32(d, i, 0, 0, 0) - (av + bv) * av) > 1e-5f) bad++;
            }
            TT_CHECK(bad == 0, "ctx too small: %d wrong values after recovery", (int)bad);
        }
        tfu_free(ctx);
    }
}

/* ======================================================================== */
/* part 3: plans                                                            */
/* ======================================================================== */

typedef struct { tfu_tensor *x, *b, *h, *y; } small_net;

/* y = softmax(2 (x + b)) over rows of 16, h = x + b kept */
static tfu_graph *small_graph(tfu_context *ctx, small_net *s, int variant) {
    s->x = tfu_set_input(leaf(ctx, TFU_F32, 16, 4, "x"));
    s->b = leaf(ctx, TFU_F32, 16, 1, "b");
    s->h = tfu_set_keep(variant == 2 ? tfu_sub(ctx, s->x, s->b) : tfu_add(ctx, s->x, s->b));
    s->y = tfu_soft_max(ctx, tfu_scale(ctx, s->h, 2.0f));
    if (variant == 1) s->y = tfu_sqr(ctx, s->y);
    return tfu_graph_build(ctx, s->y);
}

static double small_check(const small_net *s) {
    int64_t r, i;
    double ref[16 * 4];
    for (r = 0; r < 4; r++) {
        double *v = ref + 16 * r, mx = -1e300, sum = 0;
        for (i = 0; i < 16; i++) {
            v[i] = 2.0 * ((double)tfu_get_f32(s->x, i, r, 0, 0) + tfu_get_f32(s->b, i, 0, 0, 0));
            if (v[i] > mx) mx = v[i];
        }
        for (i = 0; i < 16; i++) { v[i] = exp(v[i] - mx); sum += v[i]; }
        for (i = 0; i < 16; i++) v[i] /= sum;
    }
    return tt_max_err(s->y, ref);
}

static void test_plan_errors(void) {
    tfu_context *c1 = big_ctx(), *c2 = big_ctx(), *c3 = big_ctx();
    tfu_plan_options opts = tfu_plan_default_options();
    small_net s1, s2, s3;
    tfu_graph *g1, *g2, *g3;
    tfu_plan *p;
    size_t need;
    unsigned char *mem;
    tfu_result r;

    TT_CHECK(tfu_plan_compile(NULL, NULL) == NULL, "plan: compile(NULL, NULL)");
    TT_CHECK(tfu_plan_compile(NULL, &opts) == NULL, "plan: compile(NULL, opts)");
    TT_CHECK(tfu_plan_run(NULL) == TFU_ERR_NULL_ARG, "plan: run(NULL)");
    TT_CHECK(tfu_plan_set_arena(NULL, NULL, 0) == TFU_ERR_NULL_ARG, "plan: set_arena(NULL)");
    TT_CHECK(tfu_plan_rebind(NULL, NULL) == TFU_ERR_NULL_ARG, "plan: rebind(NULL)");
    TT_CHECK(tfu_plan_arena_bytes(NULL) == 0, "plan: arena_bytes(NULL)");
    tfu_plan_free(NULL);

    tt_seed(11); g1 = small_graph(c1, &s1, 0);
    TT_CHECK(g1 != NULL, "plan: build: %s", tfu_last_error_msg(c1));
    if (!g1) goto done;
    p = tfu_plan_compile(g1, &opts);
    TT_CHECK(p != NULL, "plan: compile: %s", tfu_last_error_msg(c1));
    if (!p) goto done;
    TT_CHECK(tfu_plan_run(p) == TFU_OK, "plan: run");
    TT_CHECK(small_check(&s1) < 1e-5, "plan: wrong result %g", small_check(&s1));

    /* arena too small: refused, the plan keeps its own memory and still runs */
    need = tfu_plan_arena_bytes(p);
    TT_CHECK(need > 0, "plan: a kept value and an output need no arena?");
    mem = (unsigned char *)malloc(need + 128);
    if (need > 0) {
        r = tfu_plan_set_arena(p, mem, need - 1);
        TT_CHECK(r == TFU_ERR_NO_MEMORY, "plan: arena of need-1 bytes: %s", tfu_result_str(r));
        r = tfu_plan_set_arena(p, mem, 0);
        TT_CHECK(r == TFU_ERR_NO_MEMORY || r == TFU_ERR_NULL_ARG || r == TFU_ERR_INVALID_ARG, "plan: arena of 0 bytes: %s", tfu_result_str(r));
        r = tfu_plan_set_arena(p, NULL, need);
        TT_CHECK(r == TFU_ERR_NULL_ARG, "plan: NULL arena: %s", tfu_result_str(r));
        tt_fill(s1.x, -2, 2);
        TT_CHECK(tfu_plan_run(p) == TFU_OK && small_check(&s1) < 1e-5, "plan: not usable after a refused arena");
    }
    /* the right size: accepted and used */
    {
        unsigned char *al = mem + ((64 - ((uintptr_t)mem & 63)) & 63);
        r = tfu_plan_set_arena(p, al, need);
        TT_CHECK(r == TFU_OK, "plan: arena of need bytes: %s", tfu_result_str(r));
        tt_poison(al, need);
        tt_fill(s1.x, -2, 2);
        TT_CHECK(tfu_plan_run(p) == TFU_OK && small_check(&s1) < 1e-5, "plan: wrong result with caller arena");
        TT_CHECK((unsigned char *)s1.h->data >= al && (unsigned char *)s1.h->data < al + need, "plan: kept value not in the caller arena");
    }

    /* rebind: same structure, other context and data */
    tt_seed(12); g2 = small_graph(c2, &s2, 0);
    TT_CHECK(g2 != NULL && tfu_graph_hash(g2) == tfu_graph_hash(g1), "plan: second graph differs");
    if (g2) {
        r = tfu_plan_rebind(p, g2);
        TT_CHECK(r == TFU_OK, "plan: rebind to an identical graph: %s", tfu_result_str(r));
        TT_CHECK(tfu_plan_run(p) == TFU_OK && small_check(&s2) < 1e-5, "plan: wrong result after rebind");
    }
    /* rebind: structurally different graphs are stale, the plan stays bound */
    tt_seed(13); g3 = small_graph(c3, &s3, 1);
    if (g3) {
        r = tfu_plan_rebind(p, g3);
        TT_CHECK(r == TFU_ERR_STALE, "plan: rebind to an extra op: %s", tfu_result_str(r));
        TT_CHECK(tfu_plan_last_error(p) == TFU_ERR_STALE, "plan: last_error after stale: %s", tfu_result_str(tfu_plan_last_error(p)));
    }
    tfu_reset(c3);
    tt_seed(13); g3 = small_graph(c3, &s3, 2);
    if (g3) {
        r = tfu_plan_rebind(p, g3);
        TT_CHECK(r == TFU_ERR_STALE, "plan: rebind to a different op: %s", tfu_result_str(r));
    }
    if (g2) {
        tt_fill(s2.x, -3, 3);
        TT_CHECK(tfu_plan_run(p) == TFU_OK && small_check(&s2) < 1e-5, "plan: not usable after a stale rebind");
    }
    TT_CHECK(tfu_plan_rebind(p, NULL) == TFU_ERR_NULL_ARG, "plan: rebind(p, NULL)");
    /* a misaligned caller arena is refused, or the plan aligns it itself */
    if (need > 0) {
        r = tfu_plan_set_arena(p, mem + 1, need + 64);
        TT_CHECK(r != TFU_OK || ((uintptr_t)s2.h->data & 3) == 0,
                 "plan: arena at an odd address accepted and used unaligned (h->data %p)", s2.h->data);
        if (r != TFU_OK || ((uintptr_t)s2.h->data & 3) != 0) {   /* never run on unaligned memory */
            unsigned char *al = mem + ((64 - ((uintptr_t)mem & 63)) & 63);
            tfu_clear_error(c2);
            TT_CHECK(tfu_plan_set_arena(p, al, need) == TFU_OK, "plan: aligned arena after a refused one");
        }
        tt_fill(s2.x, -1, 1);
        TT_CHECK(tfu_plan_run(p) == TFU_OK && small_check(&s2) < 1e-5, "plan: wrong result after the arena change");
    }
    tfu_plan_free(p);   /* the caller's arena stays the caller's */
    free(mem);

    /* the graph grows after compile: running the old plan is stale */
    tfu_reset(c1);
    tt_seed(14); g1 = small_graph(c1, &s1, 0);
    if (g1) {
        tfu_graph *gg = tfu_graph_new(c1, 64);
        tfu_tensor *z;
        if (gg && tfu_graph_build_expand(gg, s1.y) == TFU_OK && (p = tfu_plan_compile(gg, &opts)) != NULL) {
            TT_CHECK(tfu_plan_run(p) == TFU_OK, "plan: run before the graph grows");
            z = tfu_neg(c1, s1.y);
            TT_CHECK(tfu_graph_build_expand(gg, z) == TFU_OK, "plan: expand after compile");
            r = tfu_plan_run(p);
            TT_CHECK(r == TFU_ERR_STALE, "plan: run after the graph grew: %s (new output data %p)", tfu_result_str(r), z->data);
            tfu_plan_free(p);
        } else TT_CHECK(0, "plan: setup for the stale run: %s", tfu_last_error_msg(c1));
    }

    /* errors at compile and run time, each leaving the context usable */
    tfu_reset(c1);
    tt_seed(15); g1 = small_graph(c1, &s1, 0);
    if (g1) {
        static unsigned char tiny[64];
        tfu_plan_options o2 = opts;
        o2.arena = tiny; o2.arena_size = 8;
        expect_fail(c1, tfu_plan_compile(g1, &o2), TFU_ERR_NO_MEMORY, TFU_OK, NULL, NULL, "compile with an 8-byte options.arena");
        o2 = opts; o2.n_threads = 100000;
        expect_fail(c1, tfu_plan_compile(g1, &o2), TFU_ERR_INVALID_ARG, TFU_OK, NULL, NULL, "compile with 100000 threads");
    }
    {   /* a leaf without data, and a row index out of range, at run time */
        tfu_context *na = tfu_init_malloc((size_t)1 << 20, 1);
        tfu_tensor *e = tfu_new_tensor_2d(na, TFU_F32, 8, 5), *idx = tfu_new_tensor_1d(na, TFU_I32, 3);
        tfu_tensor *rows = tfu_get_rows(na, e, idx);
        tfu_graph *gr = tfu_graph_build(na, rows);
        static float edata[40];
        static int32_t ibad[3] = { 1, 5, 0 }, igood[3] = { 4, 0, 2 };
        p = gr ? tfu_plan_compile(gr, &opts) : NULL;
        TT_CHECK(p != NULL, "plan: compile without leaf data: %s", tfu_last_error_msg(na));
        if (p) {
            int k, bad = 0;
            r = tfu_plan_run(p);
            TT_CHECK(r == TFU_ERR_NO_DATA && tfu_last_error(na) == TFU_ERR_NO_DATA, "plan: run without leaf data: %s", tfu_result_str(r));
            TT_CHECK(tfu_last_error_tensor(na) == e || tfu_last_error_tensor(na) == idx, "plan: no-data error tensor is not a leaf");
            TT_CHECK(tfu_plan_last_error(p) == TFU_ERR_NO_DATA, "plan: last_error after no data: %s", tfu_result_str(tfu_plan_last_error(p)));
            tfu_clear_error(na);
            for (k = 0; k < 40; k++) edata[k] = (float)k;
            e->data = edata; idx->data = ibad;
            r = tfu_plan_run(p);
            TT_CHECK(r == TFU_ERR_INVALID_ARG && tfu_last_error(na) == TFU_ERR_INVALID_ARG, "plan: row index 5 of 5 rows: %s", tfu_result_str(r));
            TT_CHECK(tfu_last_error_msg(na)[0] != 0, "plan: no message for a bad row index");
            tfu_clear_error(na);
            idx->data = igood;
            r = tfu_plan_run(p);
            TT_CHECK(r == TFU_OK, "plan: run after fixing the inputs: %s", tfu_result_str(r));
            for (k = 0; k < 24; k++) if (tfu_get_f32(rows, k % 8, k / 8, 0, 0) != (float)(igood[k / 8] * 8 + k % 8)) bad++;
            TT_CHECK(bad == 0, "plan: %d wrong rows after recovery", bad);
            tfu_plan_free(p);
        }
        tfu_free(na);
    }
done:
    tfu_free(c1); tfu_free(c2); tfu_free(c3);
}

int main(int argc, char **argv) {
    tt_verbose = tt_arg_int(argc, argv, "--verbose", 0);
    tt_seed((uint64_t)tt_arg_int(argc, argv, "--seed", 1));
    test_chain();
    test_shared();
    test_same_operand();
    test_views();
    test_expand();
    test_op_edges();
    test_random_dags();
    test_flags();
    test_hash();
    test_result_strings();
    test_init();
    test_null_inputs();
    test_shape_errors();
    test_type_errors();
    test_invalid_args();
    test_overflow();
    test_no_memory();
    test_graph_errors();
    test_compute_errors();
    test_plan_errors();
    return tt_summary();
}
