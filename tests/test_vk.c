/* test_vk.c - the Vulkan backend (tensorfuse_vk.h) against the reference
   executor, every run under the Khronos validation layer with
   synchronisation validation on: any message it prints fails the test.

   1. random graphs of the generator (tfu_gen.h), built twice from a seed:
      the reference runs on one, the other is compiled for Vulkan fused and
      unfused; every OUTPUT and KEEP tensor and every leaf a copy writes is
      compared. The fused Vulkan plan has the groups a CPU plan compiled
      with the same capabilities has (fusion is decided once, for both).
   2. every case of test_fusion.c (included, through its case hook), on
      Vulkan, against the case's reference.
   3. a barrier the plan needs left out (tfvk_plan_options.drop_barrier):
      synchronisation validation must report it.
   4. one plan replayed 1000 times with new inputs, each result checked;
      host time per replay for a small and a 1000-node graph (printed).
   5. errors: no loader, no such device, an allocation larger than the
      device has, a tensor wider than maxStorageBufferRange.
   6. staging: the same graphs with staging buffers (no zero-copy).
   7. products with few columns (matvec.comp): N = 1 .. 8 and past it,
      every a type, odd K and M, odd element offsets, a GLU pair, an
      epilogue, batches with broadcast, NaN and inf, f32 sums that overflow;
      the plan runs the kernel it should (its report).

     test_vk [--graphs N] [--seed S] [--only I] [--v 1]

   With no Vulkan loader or device every check is skipped, with the reason;
   TFVK_REQUIRE=1 (CI) makes that a failure. */
#define TEST_FUSION_NO_MAIN
#include "test_fusion.c"
#include "tfu_gen.h"
#define TFVK_IMPLEMENTATION
#include "../tensorfuse_vk.h"

#define VK_CTX_MB 24

/* Under AddressSanitizer: no leak report at exit. The Vulkan driver and
   layers are libraries the loader opens and closes; what they keep is
   theirs, and LeakSanitizer cannot name them once closed. Our side is
   checked instead: every host block the backend takes goes through a
   counting allocator (g_vk_blocks must end at 0), and the validation layer
   reports every Vulkan object left alive when the device is destroyed. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_VK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_VK_ASAN 1
#endif
#endif
#ifdef TEST_VK_ASAN
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "detect_leaks=0"; }
#endif

static tfvk_context *g_vk;          /* with validation                    */

static int g_verbose;
static int g_msgs_seen;             /* validation messages already counted */
static long g_n_compared, g_n_plans, g_n_groups_same;

static int g_all_msgs;               /* every message of g_vk, also at teardown */
static void on_message(void *user, const char *m) {
    (void)user;
    g_all_msgs++;
    if (g_verbose || tfvk_validation_messages(g_vk) < 4) printf("  validation: %.600s\n", m);
}

/* messages of the error tests' own contexts */
static int g_err_msgs;
static void on_message_any(void *user, const char *m) {
    (void)user;
    if (user == &g_err_msgs) {
        g_err_msgs++;
        printf("  validation (errors): %.600s\n", m);
        return;
    }
    on_message(user, m);
}

/* every host block the backend takes, counted: it must give each back */
static long g_vk_blocks;
static void *vk_alloc(size_t n, void *user) {
    (void)user;
    g_vk_blocks++;
    return malloc(n);
}
static void vk_free(void *ptr, void *user) {
    (void)user;
    if (ptr) g_vk_blocks--;
    free(ptr);
}
static tfvk_options vk_options(int validation) {
    tfvk_options o = tfvk_default_options();
    o.validation = validation;
    o.message_fn = on_message_any;
    o.allocator.alloc_fn = vk_alloc;
    o.allocator.free_fn = vk_free;
    return o;
}

/* every validation message since the last call fails the check */
static void check_validation(const char *where) {
    int n = tfvk_validation_messages(g_vk) - g_msgs_seen;
    g_msgs_seen += n;
    TT_CHECK(n == 0, "%s: %d validation messages", where, n);
}

/* t's twin in ref (same position among nodes or leaves), or NULL */
static tfu_tensor *twin(tfu_graph *ref, tfu_graph *g, const tfu_tensor *t) {
    int i;
    for (i = 0; i < tfu_graph_n_nodes(g) && i < tfu_graph_n_nodes(ref); i++)
        if (tfu_graph_node(g, i) == t) return tfu_graph_node(ref, i);
    for (i = 0; i < tfu_graph_n_leafs(g) && i < tfu_graph_n_leafs(ref); i++)
        if (tfu_graph_leaf(g, i) == t) return tfu_graph_leaf(ref, i);
    return NULL;
}

/* every leaf a copy wrote, against its twin in ref */
static int compare_written(tfu_graph *ref, tfu_graph *g, float tolf, const char *where) {
    int i, bad = 0;
    for (i = 0; i < tfu_graph_n_leafs(g); i++) {
        tfu_tensor *L = tfu_graph_leaf(g, i), *R;
        int j, written = 0;
        for (j = 0; j < tfu_graph_n_nodes(g); j++) {
            tfu_tensor *t = tfu_graph_node(g, j);
            if ((t->op == TFU_OP_CPY || t->op == TFU_OP_SET_ROWS) && (t->view_src == L || (t->view_src && t->view_src->view_src == L)))
                written = 1;
        }
        if (!written) continue;
        R = twin(ref, g, L);
        if (!R) continue;
        bad += compare(R, L, tolf, where, 100 + i);
        g_n_compared++;
    }
    return bad;
}

/* the Vulkan plan groups the graph as a CPU plan given the same caps does */
static int same_groups(tfvk_plan *vp, tfu_graph *g, const char *where) {
    tfu_plan_options o = tfu_plan_default_options();
    tfu_backend_caps caps = tfvk_caps(g_vk);
    const tfu_plan *a = tfvk_plan_shared(vp);
    tfu_plan *b;
    int i, bad = 0;
    o.caps = &caps;
    b = tfu_plan_compile(g, &o);
    if (!b) {
        printf("  %s: CPU compile with the Vulkan caps failed\n", where);
        return 1;
    }
    if (tfu_plan_n_groups(a) != tfu_plan_n_groups(b)) bad = 1;
    for (i = 0; i < tfu_graph_n_nodes(g) && !bad; i++) {
        const tfu_tensor *t = tfu_graph_node(g, i);
        if (tfu_plan_is_materialized(a, t) != tfu_plan_is_materialized(b, t)) bad = 1;
    }
    if (bad) printf("  %s: the Vulkan plan's groups differ from the CPU plan's (%d vs %d groups)\n", where, tfu_plan_n_groups(a), tfu_plan_n_groups(b));
    else g_n_groups_same++;
    tfu_plan_free(b);
    return bad;
}

/* outputs poisoned where the plan will put them is not possible before a
   Vulkan run (they live on the device); the readback memory is fresh per
   plan and the device arena is never cleared, so an unwritten element
   shows as whatever the device held: stale, and caught by the comparison
   with fresh random data. The data pointers are poisoned here. */
static void poison_pointers(tfu_graph *g) {
    int i;
    for (i = 0; i < tfu_graph_n_nodes(g); i++) {
        tfu_tensor *t = tfu_graph_node(g, i);
        if (t->op != TFU_OP_CPY && t->op != TFU_OP_SET_ROWS) t->data = NULL;
    }
}

static void report_plan(tfvk_plan *p) {
    size_t need = tfvk_plan_report(p, NULL, 0);
    char *buf = (char *)malloc(need + 1);
    if (!buf) return;
    tfvk_plan_report(p, buf, need + 1);
    printf("%s", buf);
    free(buf);
}

/* --- 1. random graphs ------------------------------------------------------ */

static void *g_ctx_mem[2];

static long g_n_fast, g_n_generic;   /* operands on either addressing path */
static int vk_random_one(gen_t *gen, tfu_graph *ref, uint64_t gseed, int no_fusion, int generic, const char *where) {
    tfu_context_params cp;
    tfvk_plan_options o = tfvk_plan_default_options();
    tfu_graph *g;
    tfvk_plan *p;
    tfu_result r;
    int k, bad = 0;
    float leaf_tol = 1;
    cp.mem = g_ctx_mem[1];
    cp.mem_size = (size_t)VK_CTX_MB << 20;
    cp.no_alloc = 0;
    gen[1].ctx = tfu_init(cp);
    g = gen[1].ctx ? build(&gen[1], gseed) : NULL;
    if (!g) {
        TT_CHECK(0, "%s: the second build failed", where);
        return 1;
    }
    o.no_fusion = no_fusion;
    o.generic_addressing = generic;
    p = tfvk_plan_compile(g_vk, g, &o);
    if (!p) {
        TT_CHECK(0, "%s: compile: %s", where, tfvk_last_error_msg(g_vk));
        return 1;
    }
    g_n_plans++;
    {
        tfvk_plan_stats st = tfvk_plan_get_stats(p);
        TT_CHECK(!generic || st.n_fast_operands == 0, "%s: %d operands on the fast path with generic addressing", where, st.n_fast_operands);
        g_n_fast += st.n_fast_operands;
        g_n_generic += st.n_generic_operands;
    }
    poison_pointers(g);
    r = tfvk_plan_run(p);
    TT_CHECK(r == TFU_OK, "%s: run: %s", where, tfvk_last_error_msg(g_vk));
    if (r == TFU_OK) {
        for (k = 0; k < gen[0].nchk; k++) {
            if (!tfu_graph_contains(ref, gen[0].chk[k])) continue;
            if (gen[1].chk_tol[k] > leaf_tol) leaf_tol = gen[1].chk_tol[k];
            bad += compare(gen[0].chk[k], gen[1].chk[k], gen[1].chk_tol[k], where, k);
            g_n_compared++;
        }
        for (k = 0; k < gen[1].nv; k++)
            if (gen[1].v[k].tolf > leaf_tol) leaf_tol = gen[1].v[k].tolf;
        bad += compare_written(ref, g, leaf_tol, where);
    }
    if (!no_fusion) bad += same_groups(p, g, where);
    if (bad && g_verbose) report_plan(p);
    tfvk_plan_free(p);
    check_validation(where);
    return bad;
}

static void vk_random(int n_graphs, int seed, int only) {
    static gen_t gen[2];
    int gi, n_fail = 0, n_built = 0;
    g_ctx_mem[0] = malloc((size_t)VK_CTX_MB << 20);
    g_ctx_mem[1] = malloc((size_t)VK_CTX_MB << 20);
    if (!g_ctx_mem[0] || !g_ctx_mem[1]) {
        TT_CHECK(0, "no memory");
        return;
    }
    if (only >= 0) n_graphs = only + 1;
    for (gi = only >= 0 ? only : 0; gi < n_graphs && n_fail <= 20; gi++) {
        uint64_t gseed = (uint64_t)seed * 1000003ull + (uint64_t)gi;
        tfu_context_params cp;
        tfu_graph *ref;
        tfu_result r;
        char where[96];
        int mode, bad = 0;
        snprintf(where, sizeof where, "vk seed %d graph %d", seed, gi);
        cp.mem = g_ctx_mem[0];
        cp.mem_size = (size_t)VK_CTX_MB << 20;
        cp.no_alloc = 0;
        gen[0].ctx = tfu_init(cp);
        ref = gen[0].ctx ? build(&gen[0], gseed) : NULL;
        if (!ref) {
            TT_CHECK(0, "%s: build failed at test line %d", where, gen[0].bad);
            n_fail++;
            continue;
        }
        n_built++;
        if (g_verbose) {
            int q;
            printf("%s: %d nodes, steps:", where, tfu_graph_n_nodes(ref));
            for (q = 0; q < g_n_trace; q++) printf(" %s", g_op_trace[q]);
            printf("\n");
        }
        r = tfu_graph_compute_ref(ref);
        if (r != TFU_OK) {
            TT_CHECK(0, "%s: compute_ref: %s", where, tfu_result_str(r));
            n_fail++;
            continue;
        }
        /* fused, unfused, and every third graph fused with generic addressing */
        for (mode = 0; mode < (gi % 3 == 0 ? 3 : 2); mode++) {
            static const char *names[3] = { "fused", "unfused", "fused, generic addressing" };
            char w2[128];
            int b;
            snprintf(w2, sizeof w2, "%s (%s)", where, names[mode]);
            b = vk_random_one(gen, ref, gseed, mode == 1, mode == 2, w2);
            TT_CHECK(b == 0, "%s: %d mismatches", w2, b);
            bad += b;
        }
        if (bad) n_fail++;
    }
    if (n_fail > 20) printf("too many failing graphs, stopping\n");
    printf("vk: %d random graphs, each fused and unfused (a third also with generic addressing); %ld operands addressed contiguously, %ld generically\n",
           n_built, g_n_fast, g_n_generic);
    TT_CHECK(n_built < 10 || (g_n_fast > 0 && g_n_generic > 0), "the random graphs did not reach both addressing paths (%ld, %ld)", g_n_fast, g_n_generic);
    free(g_ctx_mem[0]);
    free(g_ctx_mem[1]);
}

/* --- 2. the cases of test_fusion ------------------------------------------ */

/* does the graph read Q8_0/Q4_0 tensors (which this backend refuses)? */
static int graph_has_quant(tfu_graph *g) {
    int i, s;
    for (i = 0; i < tfu_graph_n_nodes(g); i++) {
        const tfu_tensor *t = tfu_graph_node(g, i);
        for (s = 0; s < TFU_MAX_SRC; s++)
            if (t->src[s] && tfu_type_block_size(t->src[s]->type) > 1) return 1;
    }
    return 0;
}

static void vk_fusion_case(const char *name, build_fn fn, void *arg, const tfu_plan_options *opts, double tol, fx *ref) {
    fx x;
    tfvk_plan *p;
    tfvk_plan_options o = tfvk_plan_default_options();
    char where[160];
    int i, bad = 0;
    tfu_result r;
    snprintf(where, sizeof where, "vk fusion case '%s'", name);
    if (opts && opts->n_threads > 1) return;   /* the same graph as the one-thread case */
    if (fx_make(&x, fn, arg, 7) != 0) {
        TT_CHECK(0, "%s: build failed", where);
        fx_free(&x);
        return;
    }
    o.no_fusion = opts ? opts->no_fusion : 0;
    p = tfvk_plan_compile(g_vk, x.g, &o);
    if (!p && tfvk_last_error(g_vk) == TFU_ERR_INVALID_ARG && opts && opts->caps) {
        fx_free(&x);   /* a case about the CPU's own caps */
        return;
    }
    if (!p && tfvk_last_error(g_vk) == TFU_ERR_TYPE && graph_has_quant(x.g)) {
        fx_free(&x);   /* quantized weights: refused at compile, as the backend documents */
        tt_skipped++;
        return;
    }
    TT_CHECK(p != NULL, "%s: compile: %s", where, tfvk_last_error_msg(g_vk));
    if (!p) {
        fx_free(&x);
        return;
    }
    poison_pointers(x.g);
    r = tfvk_plan_run(p);
    TT_CHECK(r == TFU_OK, "%s: run: %s", where, tfvk_last_error_msg(g_vk));
    if (r == TFU_OK) {
        for (i = 0; i < tfu_graph_n_nodes(x.g); i++) {
            tfu_tensor *t = tfu_graph_node(x.g, i);
            if (!(t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP))) continue;
            bad += compare(tfu_graph_node(ref->g, i), t, (float)(tol * 1e4), where, i);
            g_n_compared++;
        }
        bad += compare_written(ref->g, x.g, (float)(tol * 1e4), where);
    }
    TT_CHECK(bad == 0, "%s: %d mismatches", where, bad);
    if (bad && g_verbose) report_plan(p);
    tfvk_plan_free(p);
    check_validation(where);
    fx_free(&x);
}

/* --- 3. a missing barrier is caught -------------------------------------- */

/* y = softmax(rms_norm(x) @ w): a product reads what the row group wrote */
static tfu_graph *two_stage_graph(tfu_context *ctx, tfu_tensor **y_out) {
    tfu_tensor *x = tfu_new_tensor_2d(ctx, TFU_F32, 96, 40), *w = tfu_new_tensor_2d(ctx, TFU_F32, 96, 70), *h, *y;
    if (!x || !w) return NULL;
    tt_fill(x, -1, 1);
    tt_fill(w, -1, 1);
    h = tfu_rms_norm(ctx, x, 1e-5f);
    y = tfu_soft_max(ctx, tfu_mul_mat(ctx, w, h));
    *y_out = y;
    return tfu_graph_build(ctx, y);
}

static void vk_barriers(void) {
    tfu_context *ctx = tfu_init_malloc(8 << 20, 0);
    tfu_tensor *y = NULL;
    tfu_graph *g = ctx ? two_stage_graph(ctx, &y) : NULL;
    tfvk_plan_options o = tfvk_plan_default_options();
    tfvk_plan *p;
    tfvk_plan_stats st;
    int n0, n1;
    if (!g) {
        TT_CHECK(0, "barriers: build failed");
        tfu_free(ctx);
        return;
    }
    p = tfvk_plan_compile(g_vk, g, &o);
    TT_CHECK(p != NULL, "barriers: compile: %s", tfvk_last_error_msg(g_vk));
    if (!p) {
        tfu_free(ctx);
        return;
    }
    st = tfvk_plan_get_stats(p);
    TT_CHECK(st.n_stages >= 2 && st.n_barriers == st.n_stages - 1, "barriers: %d stages, %d barriers recorded", st.n_stages, st.n_barriers);
    TT_CHECK(st.n_dispatches == st.n_groups, "barriers: %d dispatches for %d groups", st.n_dispatches, st.n_groups);
    n0 = tfvk_validation_messages(g_vk);
    TT_CHECK(tfvk_plan_run(p) == TFU_OK, "barriers: run: %s", tfvk_last_error_msg(g_vk));
    TT_CHECK(tfvk_validation_messages(g_vk) == n0, "barriers: the full plan gives validation messages");
    tfvk_plan_free(p);
    /* the same plan without its first barrier (validation sees it when
       the dispatch is recorded, at compile) */
    o.drop_barrier = 1;
    n0 = tfvk_validation_messages(g_vk);
    p = tfvk_plan_compile(g_vk, g, &o);
    TT_CHECK(p != NULL, "barriers: compile: %s", tfvk_last_error_msg(g_vk));
    if (p) {
        TT_CHECK(tfvk_plan_get_stats(p).n_barriers == st.n_barriers - 1, "barriers: one fewer recorded");
        tfvk_plan_run(p);
        n1 = tfvk_validation_messages(g_vk);
        TT_CHECK(n1 > n0, "barriers: a missing barrier passed synchronisation validation unseen");
        printf("barriers: %d stages, %d barriers; without one, validation reported %d message(s)\n", st.n_stages, st.n_barriers, n1 - n0);
        tfvk_plan_free(p);
    }
    g_msgs_seen = tfvk_validation_messages(g_vk);
    tfu_free(ctx);
}

/* --- 3b. addressing: contiguous operands take the flat path ------------- */

/* compiles out's graph, runs it, checks its counts of fast and generic
   operands and its values against want(i0, i1, i2) in double */
static void vk_addr_case(tfu_context *ctx, tfu_tensor *out, int want_fast, int want_generic, double (*want)(const void *, int64_t, int64_t, int64_t),
                         const void *arg, const char *name) {
    tfu_graph *g = tfu_graph_build(ctx, out);
    tfvk_plan *p = g ? tfvk_plan_compile(g_vk, g, NULL) : NULL;
    int64_t i0, i1, i2;
    int bad = 0;
    tfvk_plan_stats st;
    TT_CHECK(p != NULL, "addressing %s: compile: %s", name, tfvk_last_error_msg(g_vk));
    if (!p) return;
    st = tfvk_plan_get_stats(p);
    TT_CHECK(st.n_fast_operands == want_fast && st.n_generic_operands == want_generic, "addressing %s: %d fast and %d generic operands, want %d and %d", name,
             st.n_fast_operands, st.n_generic_operands, want_fast, want_generic);
    poison_pointers(g);
    TT_CHECK(tfvk_plan_run(p) == TFU_OK, "addressing %s: run: %s", name, tfvk_last_error_msg(g_vk));
    for (i2 = 0; i2 < out->ne[2]; i2++)
        for (i1 = 0; i1 < out->ne[1]; i1++)
            for (i0 = 0; i0 < out->ne[0] && bad < 3; i0++) {
                double w = want(arg, i0, i1, i2), got = tfu_get_f32(out, i0, i1, i2, 0);
                if (!(fabs(got - w) <= 1e-5 * (1 + fabs(w)))) {
                    printf("  addressing %s: [%lld,%lld,%lld] = %.9g, want %.9g\n", name, (long long)i0, (long long)i1, (long long)i2, got, w);
                    bad++;
                }
            }
    TT_CHECK(bad == 0, "addressing %s: values differ", name);
    tfvk_plan_free(p);
    check_validation(name);
}

typedef struct addr_in { tfu_tensor *x, *w, *s, *h, *a, *m, *mt; } addr_in;
static double addr_y(const void *arg, int64_t i0, int64_t i1, int64_t i2) {
    const addr_in *A = (const addr_in *)arg;
    return (double)tfu_get_f32(A->x, i0, i1, i2, 0) * tfu_get_f32(A->w, i0, 0, 0, 0) + tfu_get_f32(A->s, 0, 0, 0, 0) + tfu_get_f32(A->h, i0, i1, i2, 0);
}
static double addr_rms(const void *arg, int64_t i0, int64_t i1, int64_t i2) {
    const addr_in *A = (const addr_in *)arg;
    double ss = 0;
    int64_t k;
    for (k = 0; k < A->x->ne[0]; k++) ss += (double)tfu_get_f32(A->x, k, i1, i2, 0) * tfu_get_f32(A->x, k, i1, i2, 0);
    return tfu_get_f32(A->x, i0, i1, i2, 0) / sqrt(ss / (double)A->x->ne[0] + 1e-6) * tfu_get_f32(A->w, i0, 0, 0, 0);
}
/* softmax(x * 0.125 + m) along i0, m one plane (i0, i1) for every i2;
   mt: the same through a transposed view of m's transpose */
static double addr_soft_of(const addr_in *A, const tfu_tensor *m, int tr, int64_t i0, int64_t i1, int64_t i2) {
    double mx = -INFINITY, sum = 0, v[257];
    int64_t k, n = A->x->ne[0];
    for (k = 0; k < n; k++) {
        double mk = tr ? tfu_get_f32(m, i1, k, 0, 0) : tfu_get_f32(m, k, i1, 0, 0);
        v[k] = (double)tfu_get_f32(A->x, k, i1, i2, 0) * 0.125 + mk;
        if (v[k] > mx) mx = v[k];
    }
    for (k = 0; k < n; k++) sum += exp(v[k] - mx);
    return exp(v[i0] - mx) / sum;
}
static double addr_soft(const void *arg, int64_t i0, int64_t i1, int64_t i2) {
    const addr_in *A = (const addr_in *)arg;
    return addr_soft_of(A, A->m, 0, i0, i1, i2);
}
static double addr_soft_t(const void *arg, int64_t i0, int64_t i1, int64_t i2) {
    const addr_in *A = (const addr_in *)arg;
    return addr_soft_of(A, A->mt, 1, i0, i1, i2);
}
static double addr_plane(const void *arg, int64_t i0, int64_t i1, int64_t i2) {
    const addr_in *A = (const addr_in *)arg;
    return (double)tfu_get_f32(A->x, i0, i1, i2, 0) - tfu_get_f32(A->m, i0, i1, 0, 0);
}
static double addr_t(const void *arg, int64_t i0, int64_t i1, int64_t i2) {
    const addr_in *A = (const addr_in *)arg;
    return (double)tfu_get_f32(A->a, i1, i0, i2, 0) * tfu_get_f32(A->w, i0, 0, 0, 0);
}

static void vk_addressing(void) {
    tfu_context *ctx = tfu_init_malloc(32 << 20, 0);
    addr_in A;
    if (!ctx) return;
    A.x = tfu_new_tensor_3d(ctx, TFU_F32, 257, 5, 3);
    A.w = tfu_new_tensor_1d(ctx, TFU_F32, 257);
    A.s = tfu_new_tensor_1d(ctx, TFU_F32, 1);
    A.h = tfu_new_tensor_3d(ctx, TFU_F16, 257, 5, 3);
    A.a = tfu_new_tensor_3d(ctx, TFU_F32, 5, 257, 3);
    A.m = tfu_new_tensor_2d(ctx, TFU_F32, 257, 5);
    A.mt = tfu_new_tensor_2d(ctx, TFU_F32, 5, 257);
    tt_fill(A.m, -3, 1);
    tt_fill(A.mt, -3, 1);
    tt_fill(A.x, -2, 2);
    tt_fill(A.w, 0.5f, 1.5f);
    tt_fill(A.s, -1, 1);
    tt_fill(A.h, -1, 1);
    tt_fill(A.a, -1, 1);
    /* x, w (a row), s (a value), h (f16) and the store: every one flat */
    vk_addr_case(ctx, tfu_add(ctx, tfu_add(ctx, tfu_mul(ctx, A.x, A.w), A.s), A.h), 5, 0, addr_y, &A, "eltwise");
    /* the row kernel: x (read by the statistics and the value: one operand), w, the store */
    vk_addr_case(ctx, tfu_mul(ctx, tfu_rms_norm(ctx, A.x, 1e-6f), A.w), 3, 0, addr_rms, &A, "rms_norm * w");
    /* a transposed operand is addressed from its coordinates; w and the store stay flat */
    vk_addr_case(ctx, tfu_mul(ctx, tfu_transpose(ctx, A.a), A.w), 2, 1, addr_t, &A, "transposed * w");
    /* a mask of one plane broadcast over dim 2 (the heads): PLANE, in the row
       kernel and in the element-wise one; through a transposed view it is
       generic */
    vk_addr_case(ctx, tfu_soft_max(ctx, tfu_add(ctx, tfu_scale(ctx, A.x, 0.125f), A.m)), 3, 0, addr_soft, &A, "softmax(x/8 + plane)");
    vk_addr_case(ctx, tfu_sub(ctx, A.x, A.m), 3, 0, addr_plane, &A, "x - plane");
    vk_addr_case(ctx, tfu_soft_max(ctx, tfu_add(ctx, tfu_scale(ctx, A.x, 0.125f), tfu_transpose(ctx, A.mt))), 2, 1, addr_soft_t, &A,
                 "softmax(x/8 + transposed plane)");
    tfu_free(ctx);
}

/* norm of rows whose values are equal and huge: the deviations are 0, so
   is the result (eps * 2^-2e of the scaled pass underflows where the device
   flushes subnormals); also one value per row, and a row of tiny values */
static void vk_norm_flat(void) {
    tfu_context *ctx = tfu_init_malloc(1 << 20, 0);
    tfu_tensor *x, *x1, *y[2];
    int v;
    if (!ctx) return;
    x = tfu_new_tensor_2d(ctx, TFU_F32, 5, 4);
    x1 = tfu_new_tensor_2d(ctx, TFU_F32, 1, 4);
    for (v = 0; v < 5; v++) {
        tfu_set_f32(x, v, 0, 0, 0, 1e20f);
        tfu_set_f32(x, v, 1, 0, 0, -3e30f);
        tfu_set_f32(x, v, 2, 0, 0, 1e-30f);
        tfu_set_f32(x, v, 3, 0, 0, v == 2 ? 2e20f : 1e20f);
    }
    for (v = 0; v < 4; v++) tfu_set_f32(x1, 0, v, 0, 0, tfu_get_f32(x, 0, v, 0, 0));
    y[0] = tfu_norm(ctx, x, 1e-2f);
    y[1] = tfu_norm(ctx, x1, 1e-5f);
    for (v = 0; v < 2; v++) {
        tfu_graph *g = tfu_graph_build(ctx, y[v]);
        tfvk_plan *p = g ? tfvk_plan_compile(g_vk, g, NULL) : NULL;
        int64_t i0, i1;
        int bad = 0;
        TT_CHECK(p != NULL, "norm flat %d: compile: %s", v, tfvk_last_error_msg(g_vk));
        if (!p) continue;
        poison_pointers(g);
        TT_CHECK(tfvk_plan_run(p) == TFU_OK, "norm flat %d: run: %s", v, tfvk_last_error_msg(g_vk));
        for (i1 = 0; i1 < 4; i1++)
            for (i0 = 0; i0 < y[v]->ne[0]; i0++) {
                /* rows 0-2 and every one-value row: 0; row 3: (x - mean) / sd of 1e20 x4, 2e20 */
                double want = 0, got = tfu_get_f32(y[v], i0, i1, 0, 0);
                if (v == 0 && i1 == 3) want = i0 == 2 ? 2.0 : -0.5;
                if (!(fabs(got - want) <= 1e-5 * (1 + fabs(want)))) {
                    if (bad++ < 3) printf("  norm flat %d: [%lld,%lld] = %g, want %g\n", v, (long long)i0, (long long)i1, got, want);
                }
            }
        TT_CHECK(bad == 0, "norm flat %d: %d values differ", v, bad);
        tfvk_plan_free(p);
    }
    check_validation("norm flat");
    tfu_free(ctx);
}

/* --- 4. replay ----------------------------------------------------------- */

/* y = silu(x * a + b) * rms_norm(x): new x every run */
static void vk_replay(int n_runs) {
    tfu_context *ctx = tfu_init_malloc(16 << 20, 0);
    tfu_tensor *x, *a, *b, *y;
    tfu_graph *g;
    tfvk_plan *p;
    int it, bad = 0, i;
    double t0;
    if (!ctx) return;
    x = tfu_set_input(tfu_new_tensor_2d(ctx, TFU_F32, 64, 8));
    a = tfu_set_flags(tfu_new_tensor_1d(ctx, TFU_F32, 64), TFU_FLAG_PARAM);
    b = tfu_new_tensor_2d(ctx, TFU_F32, 64, 8);
    tt_fill(a, 0.5f, 1.5f);
    tt_fill(b, -1, 1);
    tt_fill(x, -1, 1);
    y = tfu_mul(ctx, tfu_silu(ctx, tfu_add(ctx, tfu_mul(ctx, x, a), b)), tfu_rms_norm(ctx, x, 1e-5f));
    g = tfu_graph_build(ctx, y);
    p = g ? tfvk_plan_compile(g_vk, g, NULL) : NULL;
    TT_CHECK(p != NULL, "replay: compile: %s", tfvk_last_error_msg(g_vk));
    if (!p) {
        tfu_free(ctx);
        return;
    }
    t0 = 0;
    for (it = 0; it < n_runs && bad < 5; it++) {
        const float *xs = (const float *)x->data, *as = (const float *)a->data, *bs = (const float *)b->data;
        tt_fill(x, -2, 2);
        if (tfvk_plan_run(p) != TFU_OK) {
            bad++;
            continue;
        }
        t0 += tfvk_plan_get_stats(p).last_host_us;
        for (i = 0; i < 8 && bad < 5; i++) {
            double ss = 0;
            int j;
            for (j = 0; j < 64; j++) ss += (double)xs[i * 64 + j] * xs[i * 64 + j];
            for (j = 0; j < 64; j++) {
                double u = (double)xs[i * 64 + j] * as[j] + bs[i * 64 + j];
                double want = u / (1 + exp(-u)) * (xs[i * 64 + j] / sqrt(ss / 64 + 1e-5));
                double got = ((const float *)y->data)[i * 64 + j];
                if (fabs(got - want) > 1e-4 * (1 + fabs(want))) {
                    if (bad < 3) printf("  replay %d: y[%d][%d] = %g, want %g\n", it, i, j, got, want);
                    bad++;
                    break;
                }
            }
        }
    }
    TT_CHECK(bad == 0, "replay: %d wrong results in %d runs", bad, it);
    printf("replay: %d runs, each result checked; host time per run %.1f us (a %d-dispatch plan, not waiting for the device)\n", it, t0 / it,
           tfvk_plan_get_stats(p).n_dispatches);
    tfvk_plan_free(p);
    tfu_free(ctx);
    check_validation("replay");
}

/* host time per replay of a 1000-node graph: a chain of small ops */
static void vk_replay_big(void) {
    tfu_context *ctx = tfu_init_malloc(32 << 20, 0);
    tfu_tensor *x, *y;
    tfu_graph *g;
    tfvk_plan *p;
    tfvk_plan_options o = tfvk_plan_default_options();
    int i, n = 20;
    double t0;
    if (!ctx) return;
    x = tfu_set_input(tfu_new_tensor_2d(ctx, TFU_F32, 32, 4));
    tt_fill(x, -1, 1);
    y = x;
    for (i = 0; i < 1000; i++) {
        tfu_tensor *k = y;
        if (i % 5 == 4) tfu_set_keep(k);
        y = (i % 3 == 0) ? tfu_scale(ctx, k, 0.999f) : (i % 3 == 1) ? tfu_add(ctx, k, x) : tfu_tanh(ctx, k);
    }
    g = tfu_graph_new(ctx, 4096);
    if (!g || tfu_graph_build_expand(g, y) != TFU_OK) {
        TT_CHECK(0, "replay-1000: build");
        tfu_free(ctx);
        return;
    }
    o.no_fusion = 1;   /* 1000 dispatches */
    p = tfvk_plan_compile(g_vk, g, &o);
    TT_CHECK(p != NULL, "replay-1000: compile: %s", tfvk_last_error_msg(g_vk));
    if (p) {
        tfvk_plan_run(p);
        t0 = 0;
        for (i = 0; i < n; i++) {
            tfvk_plan_run(p);
            t0 += tfvk_plan_get_stats(p).last_host_us;
        }
        printf("replay: %d nodes, %d dispatches, %d barriers: host time per run %.1f us (nothing re-recorded)\n",
               tfu_graph_n_nodes(g), tfvk_plan_get_stats(p).n_dispatches, tfvk_plan_get_stats(p).n_barriers, t0 / n);
        tfvk_plan_free(p);
    }
    tfu_free(ctx);
    check_validation("replay-1000");
}

/* --- 5. errors ------------------------------------------------------------- */

static void vk_errors(void) {
    tfvk_options o = vk_options(1);
    tfvk_context *vk;
    tfu_context *ctx;
    tfu_tensor *big, *y;
    tfu_graph *g;
    tfvk_plan *p;
    o.loader = "/nonexistent/libvulkan.so.1";
    vk = tfvk_init(&o);
    TT_CHECK(vk && tfvk_last_error(vk) == TFU_ERR_BACKEND, "errors: no loader gives %s", tfu_result_str(tfvk_last_error(vk)));
    TT_CHECK(vk && strstr(tfvk_last_error_msg(vk), "loader") != NULL, "errors: the message names the loader: %s", tfvk_last_error_msg(vk));
    TT_CHECK(tfvk_plan_compile(vk, NULL, NULL) == NULL, "errors: a failed context compiles nothing");
    tfvk_free(vk);
    o = vk_options(1);
    o.message_user = &g_err_msgs;
    o.device_index = 99;
    vk = tfvk_init(&o);
    TT_CHECK(vk && tfvk_last_error(vk) == TFU_ERR_BACKEND, "errors: no device 99 gives %s", tfu_result_str(tfvk_last_error(vk)));
    tfvk_free(vk);
    /* more device memory than there is: a no_alloc leaf of 2^40 bytes */
    o.device_index = -1;
    vk = tfvk_init(&o);
    ctx = tfu_init_malloc(1 << 20, 1);
    if (vk && tfvk_last_error(vk) == TFU_OK && ctx) {
        static float small[16];
        big = tfu_new_tensor_2d(ctx, TFU_F32, (int64_t)1 << 20, (int64_t)1 << 18);
        y = big ? tfu_scale(ctx, tfu_view_1d(ctx, big, 16, 0), 2.0f) : NULL;
        g = y ? tfu_graph_build(ctx, y) : NULL;
        if (big) big->data = small;
        p = g ? tfvk_plan_compile(vk, g, NULL) : NULL;
        TT_CHECK(g && !p && (tfvk_last_error(vk) == TFU_ERR_DEVICE_MEMORY || tfvk_last_error(vk) == TFU_ERR_INVALID_ARG),
                 "errors: a 4 TiB leaf gives %s (%s)", tfu_result_str(tfvk_last_error(vk)), tfvk_last_error_msg(vk));
        tfvk_plan_free(p);
        tfvk_free(vk);
        /* a tensor wider than one binding may cover */
        vk = tfvk_init(&o);
        tfu_reset(ctx);
        big = tfu_new_tensor_1d(ctx, TFU_F32, (int64_t)tfvk_get_device_info(vk).max_storage_buffer_range / 4 + 64);
        y = big ? tfu_scale(ctx, big, 2.0f) : NULL;
        g = y ? tfu_graph_build(ctx, y) : NULL;
        p = g ? tfvk_plan_compile(vk, g, NULL) : NULL;
        TT_CHECK(g && !p && tfvk_last_error(vk) == TFU_ERR_INVALID_ARG && strstr(tfvk_last_error_msg(vk), "maxStorageBufferRange"),
                 "errors: a tensor past maxStorageBufferRange gives %s (%s)", tfu_result_str(tfvk_last_error(vk)), tfvk_last_error_msg(vk));
        tfvk_plan_free(p);
        /* a leaf without data: the run says so, nothing is submitted */
        tfu_reset(ctx);
        big = tfu_new_tensor_1d(ctx, TFU_F32, 100);
        y = big ? tfu_scale(ctx, big, 2.0f) : NULL;
        g = y ? tfu_graph_build(ctx, y) : NULL;
        p = g ? tfvk_plan_compile(vk, g, NULL) : NULL;
        TT_CHECK(p && tfvk_plan_run(p) == TFU_ERR_NO_DATA, "errors: a leaf without data gives %s", tfu_result_str(tfvk_last_error(vk)));
        tfvk_plan_free(p);
    }
    tfvk_free(vk);
    tfu_free(ctx);
    TT_CHECK(g_err_msgs == 0, "errors: %d validation messages (objects left alive?)", g_err_msgs);
}

/* --- 7. products with few columns: matvec.comp ------------------------------ */

/* y = epilogue(a @ b [, a1 @ b]): a K x M (x A2 x A3), of type ty, a view at
   element offset off of a larger leaf; b K x N x B2 x B3 f32 */
typedef struct mv_case {
    int      K, M, N;
    tfu_type ty;
    int      off;           /* a's first element in its leaf              */
    int      epi;           /* 0 a@b, 1 + bias, 2 silu(+ bias), 3 swiglu_split(a@b, a1@b) */
    int      a2, a3, b2, b3;
    int      special;       /* 1 NaN and inf inputs, 2 finite inputs whose f32 sums overflow */
    int      bt;            /* 1: b a transposed view (k not contiguous)   */
} mv_case;

typedef struct mv_built {
    tfu_tensor *a[2], *b, *y;
    tfu_graph  *g;
} mv_built;

/* a K x M x a2 x a3 view at element off of a leaf, filled at random */
static tfu_tensor *mv_weight(tfu_context *ctx, const mv_case *c, tfu_type ty) {
    int64_t n = (int64_t)c->K * c->M * c->a2 * c->a3 + c->off;
    size_t es = tfu_type_size(ty);
    int64_t ne[4];
    size_t nb[3];
    tfu_tensor *base = tfu_set_flags(tfu_new_tensor_1d(ctx, ty, n), TFU_FLAG_PARAM);
    if (!base) return NULL;
    tt_fill(base, -1, 1);
    ne[0] = c->K;
    ne[1] = c->M;
    ne[2] = c->a2;
    ne[3] = c->a3;
    nb[0] = (size_t)c->K * es;
    nb[1] = nb[0] * (size_t)c->M;
    nb[2] = nb[1] * (size_t)c->a2;
    return tfu_view(ctx, base, 4, ne, nb, (size_t)c->off * es);
}

/* the special inputs: NaN, +-inf (including inf - inf in one sum), or rows
   whose products are ~2e38 with a finite total (every partial sum of two
   terms overflows f32) */
static void mv_special(const mv_case *c, mv_built *B) {
    int64_t k, m, n, i2, i3;
    if (c->special == 1) {
        tfu_set_f32(B->a[0], 3 % c->K, 2 % c->M, 0, 0, NAN);
        tfu_set_f32(B->a[0], 5 % c->K, 4 % c->M, 0, 0, INFINITY);
        tfu_set_f32(B->b, 7 % c->K, 1 % c->N, 0, 0, -INFINITY);
        tfu_set_f32(B->a[0], 1, 6 % c->M, 0, 0, INFINITY);
        tfu_set_f32(B->a[0], 2, 6 % c->M, 0, 0, INFINITY);
        for (n = 0; n < c->N; n++) {
            tfu_set_f32(B->b, 1, n, 0, 0, 0.5f);
            tfu_set_f32(B->b, 2, n, 0, 0, -0.5f);
        }
    }
    if (c->special == 2) {
        for (i3 = 0; i3 < c->b3; i3++)
            for (i2 = 0; i2 < c->b2; i2++)
                for (n = 0; n < c->N; n++)
                    for (k = 0; k < c->K; k++) tfu_set_f32(B->b, k, n, i2, i3, 1.4e19f * tt_rand(0.98f, 1.02f));
        for (m = 1; m < c->M; m += 2)
            for (k = 0; k < c->K; k++) tfu_set_f32(B->a[0], k, m, 0, 0, k < c->K / 2 ? 1.5e19f : -1.5e19f * 0.99f);
    }
}

static int mv_build(tfu_context *ctx, const mv_case *c, uint64_t seed, mv_built *B) {
    tfu_tensor *h, *bias = NULL;
    memset(B, 0, sizeof *B);
    tt_seed(seed);
    B->a[0] = mv_weight(ctx, c, c->ty);
    if (c->epi == 3) B->a[1] = mv_weight(ctx, c, c->ty == TFU_F16 ? TFU_BF16 : TFU_F16);
    if (c->bt) {
        tfu_tensor *bl = tfu_set_input(tfu_new_tensor_4d(ctx, TFU_F32, c->N, c->K, c->b2, c->b3));
        B->b = bl ? tfu_transpose(ctx, bl) : NULL;
    } else {
        B->b = tfu_set_input(tfu_new_tensor_4d(ctx, TFU_F32, c->K, c->N, c->b2, c->b3));
    }
    if (!B->a[0] || !B->b || (c->epi == 3 && !B->a[1])) return 1;
    tt_fill(B->b, -1, 1);
    if (c->epi == 1 || c->epi == 2) {
        bias = tfu_new_tensor_1d(ctx, TFU_F32, c->M);
        if (!bias) return 1;
        tt_fill(bias, -1, 1);
    }
    mv_special(c, B);
    h = tfu_mul_mat(ctx, B->a[0], B->b);
    if (bias) h = tfu_add(ctx, h, bias);
    if (c->epi == 2) h = tfu_silu(ctx, h);
    if (c->epi == 3) h = tfu_swiglu_split(ctx, h, tfu_mul_mat(ctx, B->a[1], B->b));
    B->y = tfu_set_output(h);
    B->g = B->y ? tfu_graph_build(ctx, B->y) : NULL;
    return B->g ? 0 : 1;
}

/* groups of the plan run by kernel name (the report's group lines) */
static int mv_count_kernel(tfvk_plan *p, const char *kernel) {
    size_t need = tfvk_plan_report(p, NULL, 0);
    char *buf = (char *)malloc(need + 1), *at, key[32];
    int n = 0;
    if (!buf) return -1;
    tfvk_plan_report(p, buf, need + 1);
    snprintf(key, sizeof key, " %s ", kernel);
    for (at = buf; (at = strstr(at, "  group ")) != NULL; at++) {
        char *eol = strchr(at, '\n'), *hit = strstr(at, key);
        if (hit && (!eol || hit < eol)) n++;
    }
    free(buf);
    return n;
}

/* out(m, n) against the reference executor, within what f32 sums of the
   terms may lose: 1e-6 of sum |a b| (times the GLU's other factor) on top
   of a relative 1e-4; NaN exactly where the reference has NaN, inf only
   as the same inf */
static int mv_compare(const mv_case *c, const mv_built *R, const mv_built *V, const char *where) {
    int64_t m, n, i2, i3, k, bad = 0;
    for (i3 = 0; i3 < c->b3; i3++)
        for (i2 = 0; i2 < c->b2; i2++)
            for (n = 0; n < c->N; n++)
                for (m = 0; m < c->M; m++) {
                    double want = tfu_get_f32(R->y, m, n, i2, i3), got = tfu_get_f32(V->y, m, n, i2, i3);
                    double sa[2] = { 0, 0 }, mm[2] = { 0, 0 }, tol;
                    int q;
                    for (q = 0; q < (c->epi == 3 ? 2 : 1); q++)
                        for (k = 0; k < c->K; k++) {
                            double t = (double)tfu_get_f32(R->a[q], k, m, i2 / (c->b2 / c->a2), i3 / (c->b3 / c->a3)) * tfu_get_f32(R->b, k, n, i2, i3);
                            sa[q] += fabs(t);
                            mm[q] += t;
                        }
                    tol = 1e-4 * (fabs(want) > 1 ? fabs(want) : 1) + 1e-6 * 1.2 * (sa[0] * (1 + fabs(mm[1])) + sa[1] * (1 + fabs(mm[0])));
                    if (tol != tol) tol = 0;
                    if (tt_ieee_same(got, want, tol)) continue;
                    if (bad < 3) printf("  %s: y(%lld, %lld, %lld, %lld) = %.9g, want %.9g (tol %.3g)\n", where, (long long)m, (long long)n,
                                        (long long)i2, (long long)i3, got, want, tol);
                    bad++;
                }
    return (int)bad;
}

static void vk_matvec_case(const mv_case *c, int idx) {
    tfu_context *ctx[2];
    mv_built R, V;
    tfvk_plan *p;
    char where[160];
    int want_mv = c->N <= TFVK_X_MATVEC_N && g_vk->matvec, n_mv, n_mm, bad;
    uint64_t seed = 7001 + (uint64_t)idx;
    /* tensors, the reference's values and room to spare */
    size_t mem = ((size_t)16 << 20) + 32 * (size_t)c->M * (size_t)(c->N * c->b2 * c->b3) + 16 * (size_t)c->K * (size_t)(c->M * c->a2 * c->a3);
    snprintf(where, sizeof where, "matvec case %d (K %d, M %d, N %d, %s a at +%d, epilogue %d, batch %dx%d/%dx%d, special %d)", idx, c->K, c->M,
             c->N, tfu_type_name(c->ty), c->off, c->epi, c->a2, c->a3, c->b2, c->b3, c->special);
    ctx[0] = tfu_init_malloc(mem, 0);
    ctx[1] = tfu_init_malloc(mem, 0);
    if (!ctx[0] || !ctx[1] || mv_build(ctx[0], c, seed, &R) || mv_build(ctx[1], c, seed, &V)) {
        TT_CHECK(0, "%s: build failed", where);
        tfu_free(ctx[0]);
        tfu_free(ctx[1]);
        return;
    }
    TT_CHECK(tfu_graph_compute_ref(R.g) == TFU_OK, "%s: compute_ref", where);
    p = tfvk_plan_compile(g_vk, V.g, NULL);
    TT_CHECK(p != NULL, "%s: compile: %s", where, tfvk_last_error_msg(g_vk));
    if (p) {
        n_mv = mv_count_kernel(p, "matvec");
        n_mm = mv_count_kernel(p, "matmul");
        TT_CHECK(tfvk_plan_get_stats(p).n_groups == 1, "%s: %d groups, want the products and epilogue in one", where, tfvk_plan_get_stats(p).n_groups);
        TT_CHECK(n_mv == want_mv && n_mm == !want_mv, "%s: %d matvec and %d matmul groups, want %d and %d", where, n_mv, n_mm, want_mv, !want_mv);
        poison_pointers(V.g);
        TT_CHECK(tfvk_plan_run(p) == TFU_OK, "%s: run: %s", where, tfvk_last_error_msg(g_vk));
        bad = V.y->data ? mv_compare(c, &R, &V, where) : 1;
        TT_CHECK(bad == 0, "%s: %d wrong outputs", where, bad);
        if (bad && g_verbose) report_plan(p);
        g_n_compared++;
        g_n_plans++;
        tfvk_plan_free(p);
    }
    check_validation(where);
    tfu_free(ctx[0]);
    tfu_free(ctx[1]);
}

/* N = 1 .. TFVK_X_MATVEC_N run matvec.comp, one more column matmul.comp */
static void vk_matvec(void) {
    static const mv_case cases[] = {
        /*  K     M   N  type      off epi a2 a3 b2 b3 special bt */
        { 64, 33, 1, TFU_F32, 0, 0, 1, 1, 1, 1, 0, 0 },
        { 7, 5, 2, TFU_F16, 0, 0, 1, 1, 1, 1, 0, 0 },
        { 31, 17, 3, TFU_BF16, 0, 1, 1, 1, 1, 1, 0, 0 },
        { 1, 9, 8, TFU_F16, 0, 0, 1, 1, 1, 1, 0, 0 },
        { 1, 3, 5, TFU_F32, 1, 2, 1, 1, 1, 1, 0, 0 },
        { 4097, 7, 1, TFU_F16, 1, 2, 1, 1, 1, 1, 0, 0 },
        { 4097, 5, 4, TFU_BF16, 3, 0, 1, 1, 1, 1, 0, 0 },
        { 4097, 3, 9, TFU_F16, 0, 0, 1, 1, 1, 1, 0, 0 },
        { 200, 65, 9, TFU_F32, 0, 1, 1, 1, 1, 1, 0, 0 },
        { 31, 11, 4, TFU_F16, 3, 3, 1, 1, 1, 1, 0, 0 },
        { 64, 9, 7, TFU_BF16, 0, 3, 1, 1, 1, 1, 0, 0 },
        { 33, 13, 1, TFU_F16, 1, 3, 1, 1, 1, 1, 0, 0 },
        { 31, 5, 2, TFU_F16, 1, 1, 2, 1, 4, 3, 0, 0 },
        { 17, 6, 8, TFU_F32, 0, 3, 1, 3, 2, 3, 0, 0 },
        { 9, 4, 3, TFU_BF16, 0, 2, 2, 2, 2, 2, 0, 0 },
        { 17, 5, 10, TFU_F16, 1, 1, 2, 1, 4, 3, 0, 0 },
        { 33, 9, 3, TFU_F32, 0, 0, 1, 1, 1, 1, 1, 0 },
        { 33, 9, 2, TFU_F16, 1, 2, 1, 1, 1, 1, 1, 0 },
        { 64, 5, 2, TFU_F32, 0, 0, 1, 1, 1, 1, 2, 0 },
        { 64, 7, 1, TFU_BF16, 1, 1, 1, 1, 2, 1, 2, 0 },
        { 64, 7, 12, TFU_F32, 0, 0, 1, 1, 1, 1, 2, 0 },
        /* b not contiguous along k: the kernels' general loads */
        { 37, 9, 2, TFU_F16, 1, 1, 1, 1, 1, 1, 0, 1 },
        { 64, 11, 1, TFU_F32, 0, 2, 1, 1, 1, 1, 0, 1 },
        { 33, 7, 3, TFU_BF16, 0, 0, 1, 1, 1, 1, 1, 1 },
        /* more workgroups of rows than one grid dimension holds (x * y) */
        { 2, 65535 * 16 + 37, 1, TFU_F16, 1, 1, 1, 1, 1, 1, 0, 0 },
    };
    int i;
    printf("matvec: subgroup arithmetic %s, subgroup size %u\n", g_vk->matvec ? "yes" : "no (matmul.comp for every product)",
           tfvk_get_device_info(g_vk).subgroup_size);
    for (i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) vk_matvec_case(&cases[i], i);
    /* a device without subgroup arithmetic: matmul.comp for every product
       (the choice at compile; the module exists on this device) */
    if (g_vk->matvec) {
        g_vk->matvec = 0;
        vk_matvec_case(&cases[0], 0);
        vk_matvec_case(&cases[9], 9);
        g_vk->matvec = 1;
    }
}

/* quantized weights (Q8_0, Q4_0) have no Vulkan kernel: a graph that reads
   them fails to compile with TFU_ERR_TYPE and a message, never runs wrongly */
static void vk_quant_refused(void) {
    static const tfu_type qt[2] = { TFU_Q8_0, TFU_Q4_0 };
    int t, k;
    tfu_backend_caps caps = tfvk_caps(g_vk);
    for (k = 0; k < TFU_GROUP_KIND_COUNT; k++)
        TT_CHECK(!(caps.operand_types[k] & ((1u << TFU_Q8_0) | (1u << TFU_Q4_0))), "quant: caps of kind %d hold a quantized type", k);
    for (t = 0; t < 2; t++) {
        tfu_context *ctx = tfu_init_malloc((size_t)1 << 20, 0);
        tfu_tensor *a = tfu_new_tensor_2d(ctx, qt[t], 64, 8), *b = tfu_new_tensor_2d(ctx, TFU_F32, 64, 3), *idx = tfu_new_tensor_1d(ctx, TFU_I32, 2);
        tfu_tensor *y[2];
        int v;
        memset(a->data, 0, tfu_nbytes(a));
        memset(b->data, 0, tfu_nbytes(b));
        memset(idx->data, 0, tfu_nbytes(idx));
        y[0] = tfu_mul_mat(ctx, a, b);
        y[1] = tfu_get_rows(ctx, a, idx);
        for (v = 0; v < 2; v++) {
            tfu_graph *g = tfu_graph_build(ctx, y[v]);
            tfvk_plan *p = g ? tfvk_plan_compile(g_vk, g, NULL) : NULL;
            TT_CHECK(g && !p && tfvk_last_error(g_vk) == TFU_ERR_TYPE, "quant %s %s: compile refused (%s)", tfu_type_name(qt[t]),
                     v ? "get_rows" : "mul_mat", tfvk_last_error_msg(g_vk));
            if (p) tfvk_plan_free(p);
        }
        tfu_free(ctx);
    }
}

int main(int argc, char **argv) {
    int n_graphs = tt_arg_int(argc, argv, "--graphs", 120);
    int seed = tt_arg_int(argc, argv, "--seed", 1);
    int only = tt_arg_int(argc, argv, "--only", -1);
    tfvk_options o = vk_options(1);
    const char *req = getenv("TFVK_REQUIRE");
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_verbose = tt_verbose = tt_arg_int(argc, argv, "--v", 0);
    (void)tt_max_err;
    g_vk = tfvk_init(&o);
    if (tfvk_last_error(g_vk) != TFU_OK) {
        int required = req && req[0] == '1';
        printf("vk: skipped: %s\n", tfvk_last_error_msg(g_vk));
        tfvk_free(g_vk);
        if (required) {
            TT_CHECK(0, "TFVK_REQUIRE=1 but Vulkan with validation is not available");
        } else {
            tt_skipped++;
        }
        return tt_summary();
    }
    {
        tfvk_device_info I = tfvk_get_device_info(g_vk);
        printf("vk: %s, maxStorageBufferRange %llu, float64 %d, denormals %d, zero-copy %d, under validation with synchronisation checks\n", I.name,
               (unsigned long long)I.max_storage_buffer_range, I.float64, I.denormals, I.zero_copy);
    }
    vk_random(n_graphs, seed, only);
    if (only < 0) {
        /* 6. staging buffers instead of zero-copy, on a second context */
        tfvk_context *zc = g_vk;
        o.no_zero_copy = 1;
        g_vk = tfvk_init(&o);
        if (tfvk_last_error(g_vk) == TFU_OK) {
            g_msgs_seen = 0;
            /* and without subgroup kernels: the row groups' shared-memory
               reductions and the tiled products for every product */
            g_vk->matvec = 0;
            printf("vk: staging buffers, no subgroup kernels:\n");
            vk_random(n_graphs / 8, seed + 1, -1);
        }
        TT_CHECK(tfvk_last_error(g_vk) == TFU_OK, "staging context: %s", tfvk_last_error_msg(g_vk));
        tfvk_free(g_vk);
        g_vk = zc;
        g_msgs_seen = tfvk_validation_messages(g_vk);
        g_case_hook = vk_fusion_case;
        fusion_cases();
        g_case_hook = NULL;
        vk_matvec();
        vk_barriers();
        vk_addressing();
        vk_norm_flat();
        vk_replay(1000);
        vk_replay_big();
        vk_errors();
        vk_quant_refused();
    }
    printf("vk: %ld plans, %ld tensors compared, %ld fused plans grouped as the CPU's\n", g_n_plans, g_n_compared, g_n_groups_same);
    {
        /* the validation layer reports Vulkan objects left alive when the device goes */
        int before = g_all_msgs;
        tfvk_free(g_vk);
        TT_CHECK(g_all_msgs == before, "%d validation messages at teardown (Vulkan objects left alive)", g_all_msgs - before);
    }
    TT_CHECK(g_vk_blocks == 0, "%ld host blocks of the backend not given back", g_vk_blocks);
    return tt_summary();
}
