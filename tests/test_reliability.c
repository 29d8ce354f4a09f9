/* test_reliability.c - one regression test per class of issue 7: bad input
   gets an error (never a sanitizer report, a crash or a wrong answer), stale
   plans are detected, IEEE semantics and wide reductions on every path.

   Each group runs in a child process, so a crash (a stack overflow, a wild
   write) fails that group and the others still run.

     test_reliability [--only NAME] */
#define _POSIX_C_SOURCE 200809L
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include "tfu_test.h"
#include <limits.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#if !defined(_WIN32)
#include <sys/types.h>
#include <sys/wait.h>
#endif

static tfu_context *new_ctx(size_t bytes, int no_alloc) {
    tfu_context *ctx = tfu_init_malloc(bytes, no_alloc);
    if (!ctx) {
        printf("no memory for a context of %zu bytes\n", bytes);
        exit(1);
    }
    return ctx;
}

/* the builder's result must be NULL with error want */
#define EXPECT_ERR(ctx, expr, want, ...) do {                                  \
        tfu_tensor *r_;                                                        \
        tfu_clear_error(ctx);                                                  \
        r_ = (expr);                                                           \
        TT_CHECK(r_ == NULL && tfu_last_error(ctx) == (want),                  \
                 "%s: got %s, error %s (want NULL, %s)", __VA_ARGS__,          \
                 r_ ? "a tensor" : "NULL", tfu_result_str(tfu_last_error(ctx)), \
                 tfu_result_str(want));                                        \
    } while (0)

enum { P_REF, P_FUSED, P_FUSED2, P_UNFUSED, P_NOSIMD, P_ARENA, P_COUNT };
static const char *g_pname[P_COUNT] = { "reference", "fused", "fused 2 threads", "unfused", "no SIMD", "caller arena" };
static unsigned char g_arena[1 << 20] __attribute__((aligned(64)));

/* runs g on path k; the plan (if any) through *plan */
static tfu_result run_path(tfu_graph *g, int k, tfu_plan **plan) {
    tfu_plan_options o = tfu_plan_default_options();
    *plan = NULL;
    if (k == P_REF) return tfu_graph_compute_ref(g);
    o.n_threads = k == P_FUSED2 ? 2 : 1;
    o.no_fusion = k == P_UNFUSED;
    if (k == P_ARENA) {
        tt_poison(g_arena, sizeof g_arena);
        o.arena = g_arena;
        o.arena_size = sizeof g_arena;
    }
    if (k == P_NOSIMD) setenv("TFU_NO_SIMD", "1", 1);
    *plan = tfu_plan_compile(g, &o);
    if (k == P_NOSIMD) unsetenv("TFU_NO_SIMD");
    if (!*plan) return tfu_last_error(tfu_graph_context(g));
    return tfu_plan_run(*plan);
}

/* --- views ----------------------------------------------------------------- */

static void t_views(void) {
    tfu_context *ctx = new_ctx(1 << 20, 0);
    tfu_tensor *a = tfu_new_tensor_2d(ctx, TFU_F32, 8, 4);
    tfu_tensor *h = tfu_new_tensor_2d(ctx, TFU_F16, 8, 4);
    tfu_tensor *v;
    int64_t ne[2] = { 4, 2 };
    size_t nb[1];
    EXPECT_ERR(ctx, tfu_view_1d(ctx, a, 4, 2), TFU_ERR_INVALID_ARG, "view offset 2 of f32");
    EXPECT_ERR(ctx, tfu_view_1d(ctx, a, 4, 5), TFU_ERR_INVALID_ARG, "view offset 5 of f32");
    EXPECT_ERR(ctx, tfu_view_1d(ctx, h, 4, 1), TFU_ERR_INVALID_ARG, "view offset 1 of f16");
    EXPECT_ERR(ctx, tfu_view_2d(ctx, a, 4, 2, 6, 0), TFU_ERR_INVALID_ARG, "view stride 6 of f32");
    EXPECT_ERR(ctx, tfu_view_2d(ctx, h, 4, 2, 3, 0), TFU_ERR_INVALID_ARG, "view stride 3 of f16");
    EXPECT_ERR(ctx, tfu_view_3d(ctx, a, 2, 2, 2, 8, 10, 0), TFU_ERR_INVALID_ARG, "view stride nb2 10 of f32");
    nb[0] = 2;
    EXPECT_ERR(ctx, tfu_view(ctx, a, 2, ne, nb, 0), TFU_ERR_INVALID_ARG, "view stride 2 of f32 (tfu_view)");
    EXPECT_ERR(ctx, tfu_view_1d(ctx, a, 33, 0), TFU_ERR_SHAPE, "view of 33 f32 in 32");
    EXPECT_ERR(ctx, tfu_view_1d(ctx, a, 32, 4), TFU_ERR_SHAPE, "view of 32 f32 at offset 4 in 32");
    EXPECT_ERR(ctx, tfu_view_2d(ctx, a, 8, 4, 36, 0), TFU_ERR_SHAPE, "rows of stride 36 past the end");
    EXPECT_ERR(ctx, tfu_view_1d(ctx, a, 1, 128), TFU_ERR_SHAPE, "view at the end offset");
    EXPECT_ERR(ctx, tfu_view_1d(ctx, a, 1, (size_t)-4), TFU_ERR_SHAPE, "view at offset SIZE_MAX-3");
    /* a view of a view: checked against the inner view's bytes */
    v = tfu_view_1d(ctx, a, 8, 32);
    TT_CHECK(v != NULL, "a good view: %s", tfu_last_error_msg(ctx));
    EXPECT_ERR(ctx, tfu_view_1d(ctx, v, 8, 4), TFU_ERR_SHAPE, "view of a view past its end");
    EXPECT_ERR(ctx, tfu_view_1d(ctx, v, 2, 6), TFU_ERR_INVALID_ARG, "view of a view at offset 6");
    /* good views still work */
    tfu_clear_error(ctx);
    TT_CHECK(tfu_view_2d(ctx, a, 4, 4, 32, 16) != NULL, "good strided view refused: %s", tfu_last_error_msg(ctx));
    TT_CHECK(tfu_view_2d(ctx, h, 3, 4, 16, 2) != NULL, "good f16 view refused: %s", tfu_last_error_msg(ctx));
    tfu_free(ctx);
}

/* --- a copy into a destination whose elements overlap ------------------------ */

static void t_selfoverlap_dst(void) {
    tfu_context *ctx = new_ctx(1 << 20, 0);
    tfu_tensor *a = tfu_new_tensor_1d(ctx, TFU_F32, 16);
    tfu_tensor *src = tfu_new_tensor_2d(ctx, TFU_F32, 4, 3);
    tfu_tensor *d0 = tfu_view_2d(ctx, a, 4, 3, 0, 0);    /* zero stride       */
    tfu_tensor *d1 = tfu_view_2d(ctx, a, 4, 3, 8, 0);    /* rows overlap      */
    tfu_tensor *d2 = tfu_view_2d(ctx, a, 4, 3, 16, 0);   /* disjoint: allowed */
    tfu_tensor *s1 = tfu_new_tensor_2d(ctx, TFU_F32, 3, 4);
    tfu_tensor *d3 = tfu_transpose(ctx, d1);
    TT_CHECK(d0 && d1 && d2 && d3, "views: %s", tfu_last_error_msg(ctx));
    EXPECT_ERR(ctx, tfu_cpy(ctx, src, d0), TFU_ERR_INVALID_ARG, "cpy into a zero-stride view");
    EXPECT_ERR(ctx, tfu_cpy(ctx, src, d1), TFU_ERR_INVALID_ARG, "cpy into a view with overlapping rows");
    EXPECT_ERR(ctx, tfu_cpy(ctx, s1, d3), TFU_ERR_INVALID_ARG, "cpy into a transposed view with overlapping rows");
    tfu_clear_error(ctx);
    TT_CHECK(tfu_cpy(ctx, src, d2) != NULL, "cpy into a disjoint view refused: %s", tfu_last_error_msg(ctx));
    tfu_free(ctx);
}

/* --- rope's positions --------------------------------------------------------- */

static void t_rope_pos(void) {
    tfu_context *ctx = new_ctx(1 << 20, 0);
    tfu_tensor *x = tfu_new_tensor_3d(ctx, TFU_F32, 8, 2, 5);
    tfu_tensor *pos = tfu_new_tensor_1d(ctx, TFU_I32, 5);
    tfu_tensor *pos6 = tfu_new_tensor_1d(ctx, TFU_I32, 6);
    tfu_tensor *posf = tfu_new_tensor_1d(ctx, TFU_F32, 5);
    tfu_tensor *p2 = tfu_new_tensor_2d(ctx, TFU_I32, 2, 5);
    tfu_tensor *p15 = tfu_new_tensor_2d(ctx, TFU_I32, 1, 5);
    tfu_tensor *col, *tcol, *pt;
    /* every second entry of p2: a strided vector of 5 */
    col = tfu_view_2d(ctx, p2, 1, 5, p2->nb[1], 0);
    tcol = tfu_transpose(ctx, col);
    pt = tfu_transpose(ctx, tfu_new_tensor_2d(ctx, TFU_I32, 5, 1));
    tfu_clear_error(ctx);
    TT_CHECK(tfu_rope(ctx, x, pos, 8, TFU_ROPE_NORMAL, 10000.0f) != NULL, "good rope refused: %s", tfu_last_error_msg(ctx));
    EXPECT_ERR(ctx, tfu_rope(ctx, x, pos6, 8, TFU_ROPE_NORMAL, 10000.0f), TFU_ERR_SHAPE, "rope with 6 positions for 5 tokens");
    /* a strided vector (ne0 = 5, nb0 = 8) is read as pos[i * nb0]: allowed (test_ops checks its values) */
    TT_CHECK(tfu_rope(ctx, x, tcol, 8, TFU_ROPE_NORMAL, 10000.0f) != NULL, "rope with a strided pos vector refused: %s", tfu_last_error_msg(ctx));
    tfu_clear_error(ctx);
    EXPECT_ERR(ctx, tfu_rope(ctx, x, p15, 8, TFU_ROPE_NORMAL, 10000.0f), TFU_ERR_SHAPE, "rope with a 1x5 pos");
    EXPECT_ERR(ctx, tfu_rope(ctx, x, pt, 8, TFU_ROPE_NORMAL, 10000.0f), TFU_ERR_SHAPE, "rope with a transposed 5x1 pos (1x5)");
    tfu_clear_error(ctx);
    TT_CHECK(tfu_rope(ctx, x, posf, 8, TFU_ROPE_NORMAL, 10000.0f) == NULL, "rope with f32 positions accepted");
    tfu_free(ctx);
}

/* --- get_rows indices in a view of a leaf ------------------------------------- */

static void t_get_rows_view(void) {
    int k;
    for (k = 0; k < P_COUNT; k++) {
        tfu_context *ctx = new_ctx(1 << 20, 0);
        tfu_tensor *tab = tfu_new_tensor_2d(ctx, TFU_F32, 4, 5);
        tfu_tensor *idx = tfu_new_tensor_1d(ctx, TFU_I32, 6);
        tfu_tensor *iv = tfu_view_1d(ctx, idx, 3, 4);      /* entries 1..3 */
        tfu_tensor *dst = tfu_new_tensor_2d(ctx, TFU_F32, 4, 3);
        tfu_tensor *rows = tfu_get_rows(ctx, tab, iv);
        tfu_tensor *c = tfu_cpy(ctx, rows, dst);
        tfu_graph *g = tfu_graph_new(ctx, 64);
        tfu_plan *plan;
        tfu_result rr;
        int32_t *ix = (int32_t *)idx->data;
        unsigned char *db = (unsigned char *)dst->data;
        size_t i, untouched = 1;
        tt_fill(tab, -1, 1);
        ix[0] = 0;
        ix[1] = 1;
        ix[2] = 7;      /* out of range, inside the view */
        ix[3] = 2;
        ix[4] = 0;
        ix[5] = 0;
        tt_poison(dst->data, tfu_nbytes(dst));
        tfu_graph_build_expand(g, c);
        tfu_clear_error(ctx);
        rr = run_path(g, k, &plan);
        for (i = 0; i < tfu_nbytes(dst); i++)
            if (db[i] != 0xFF) untouched = 0;
        TT_CHECK(rr == TFU_ERR_INVALID_ARG, "get_rows [%s]: index 7 of 5 rows in a view of a leaf: %s (want TFU_ERR_INVALID_ARG)",
                 g_pname[k], tfu_result_str(rr));
        TT_CHECK(untouched, "get_rows [%s]: the destination was written before the bad index was found", g_pname[k]);
        /* a good index runs */
        ix[2] = 4;
        if (plan) rr = tfu_plan_run(plan);
        else rr = run_path(g, k, &plan);
        TT_CHECK(rr == TFU_OK && fabsf(tfu_get_f32(dst, 3, 1, 0, 0) - tfu_get_f32(tab, 3, 4, 0, 0)) < 1e-6f,
                 "get_rows [%s]: a good index after a bad one: %s", g_pname[k], tfu_result_str(rr));
        tfu_plan_free(plan);
        tfu_free(ctx);
    }
}

/* --- lengths above INT_MAX (no data needed: compile must refuse) -------------- */

static void expect_compile_refused(tfu_graph *g, const char *what, int allow_overflow) {
    tfu_plan_options o = tfu_plan_default_options();
    tfu_context *ctx = tfu_graph_context(g);
    tfu_plan *p;
    tfu_result e;
    int k;
    for (k = 0; k < 2; k++) {
        o.no_fusion = k;
        tfu_clear_error(ctx);
        p = tfu_plan_compile(g, &o);
        e = tfu_last_error(ctx);
        TT_CHECK(p == NULL && (e == TFU_ERR_INVALID_ARG || (allow_overflow && e == TFU_ERR_OVERFLOW)),
                 "%s (%s): compile gave %s, error %s (want NULL, TFU_ERR_INVALID_ARG%s)", what, k ? "unfused" : "fused",
                 p ? "a plan" : "NULL", tfu_result_str(e), allow_overflow ? " or TFU_ERR_OVERFLOW" : "");
        tfu_plan_free(p);
    }
}

static void t_int_max(void) {
    tfu_context *ctx = new_ctx(1 << 20, 1);
    int64_t big = (int64_t)INT_MAX + 17;
    tfu_tensor *a = tfu_new_tensor_2d(ctx, TFU_F32, big, 1);
    tfu_tensor *b = tfu_new_tensor_2d(ctx, TFU_F32, big, 1);
    tfu_graph *g;
    if (sizeof(size_t) < 8) {   /* 32-bit: 8 GiB tensors cannot exist, making one is the overflow */
        TT_CHECK(!a && tfu_last_error(ctx) == TFU_ERR_OVERFLOW, "2^31+16 floats, 32-bit: %s", tfu_last_error_msg(ctx));
        tfu_free(ctx);
        return;
    }
    TT_CHECK(a && b, "no_alloc tensors of 2^31+16: %s", tfu_last_error_msg(ctx));
    g = tfu_graph_build(ctx, tfu_mul_mat(ctx, a, b));
    TT_CHECK(g != NULL, "mul_mat K = 2^31+16: graph: %s", tfu_last_error_msg(ctx));
    if (g) expect_compile_refused(g, "mul_mat K = 2^31+16", 0);
    g = tfu_graph_build(ctx, tfu_rms_norm(ctx, a, 1e-5f));
    if (g) expect_compile_refused(g, "rms_norm row 2^31+16", 0);
    g = tfu_graph_build(ctx, tfu_sum_rows(ctx, tfu_scale(ctx, a, 2.0f)));
    if (g) expect_compile_refused(g, "scale + sum_rows row 2^31+16", 0);
    g = tfu_graph_build(ctx, tfu_soft_max(ctx, a));
    if (g) expect_compile_refused(g, "soft_max row 2^31+16", 0);
    tfu_free(ctx);
}

/* --- scratch and arena sizes ------------------------------------------------- */

static void t_overflow(void) {
    tfu_context *ctx = new_ctx(1 << 20, 1);
    int64_t k58 = (int64_t)1 << 58;
    tfu_tensor *a = tfu_new_tensor_2d(ctx, TFU_F32, k58, 1);
    tfu_tensor *b = tfu_new_tensor_2d(ctx, TFU_F32, k58, 1);
    tfu_tensor *x;
    tfu_graph *g;
    int i;
    if (sizeof(size_t) < 8) {   /* 32-bit: as in t_int_max */
        TT_CHECK(!a && tfu_last_error(ctx) == TFU_ERR_OVERFLOW, "2^58 floats, 32-bit: %s", tfu_last_error_msg(ctx));
        tfu_free(ctx);
        return;
    }
    TT_CHECK(a && b, "no_alloc tensors of 2^58: %s", tfu_last_error_msg(ctx));
    g = tfu_graph_build(ctx, tfu_mul_mat(ctx, a, b));
    if (g) expect_compile_refused(g, "mul_mat K = 2^58", 1);
    else TT_CHECK(0, "mul_mat K = 2^58: graph: %s", tfu_last_error_msg(ctx));
    /* 17 live outputs of 2^60 bytes: the arena size wraps 2^64 */
    tfu_reset(ctx);
    x = tfu_new_tensor_2d(ctx, TFU_F32, (int64_t)1 << 20, (int64_t)1 << 38);
    g = tfu_graph_new(ctx, 64);
    for (i = 0; i < 17; i++) tfu_graph_build_expand(g, tfu_scale(ctx, x, (float)(i + 2)));
    TT_CHECK(x && tfu_graph_n_nodes(g) == 17, "17 outputs of 2^60 bytes: %s", tfu_last_error_msg(ctx));
    expect_compile_refused(g, "17 live 2^60-byte outputs", 1);
    tfu_free(ctx);
}

/* --- tfu_plan_set_arena(p, NULL, n) -------------------------------------------- */

static void t_set_arena_null(void) {
    tfu_context *ctx = new_ctx(1 << 20, 0);
    tfu_tensor *x = tfu_new_tensor_1d(ctx, TFU_F32, 16);
    tfu_graph *g = tfu_graph_build(ctx, tfu_exp(ctx, tfu_neg(ctx, x)));
    tfu_plan *p = tfu_plan_compile(g, NULL);
    tfu_result r;
    TT_CHECK(p != NULL, "compile: %s", tfu_last_error_msg(ctx));
    if (!p) return;
    tfu_clear_error(ctx);
    r = tfu_plan_set_arena(p, NULL, 4096);
    TT_CHECK(r == TFU_ERR_NULL_ARG, "set_arena(NULL): %s", tfu_result_str(r));
    TT_CHECK(tfu_last_error(ctx) == TFU_ERR_NULL_ARG, "set_arena(NULL): the context's error is %s (want TFU_ERR_NULL_ARG)",
             tfu_result_str(tfu_last_error(ctx)));
    tfu_plan_free(p);
    tfu_free(ctx);
}

/* --- tfu_get_f32 / tfu_set_f32 bounds --------------------------------------- */

static void t_get_set_bounds(void) {
    tfu_context *ctx = new_ctx(1 << 20, 0);
    tfu_tensor *a = tfu_new_tensor_2d(ctx, TFU_F32, 4, 3);
    tfu_tensor *v = tfu_view_2d(ctx, a, 2, 2, a->nb[1], 4);   /* columns 1..2 of rows 0..1 */
    float *d = (float *)a->data;
    float before[12];
    int i, same = 1;
    for (i = 0; i < 12; i++) d[i] = (float)(i + 1);
    memcpy(before, d, sizeof before);
    TT_CHECK(isnan(tfu_get_f32(a, 4, 0, 0, 0)), "get_f32 i0 = ne0: %g", tfu_get_f32(a, 4, 0, 0, 0));
    TT_CHECK(isnan(tfu_get_f32(a, -1, 0, 0, 0)), "get_f32 i0 = -1: %g", tfu_get_f32(a, -1, 0, 0, 0));
    TT_CHECK(isnan(tfu_get_f32(a, 0, 3, 0, 0)), "get_f32 i1 = ne1: %g", tfu_get_f32(a, 0, 3, 0, 0));
    TT_CHECK(isnan(tfu_get_f32(a, 0, 0, 1, 0)), "get_f32 i2 = 1 of ne2 = 1");
    TT_CHECK(isnan(tfu_get_f32(a, 0, 0, 0, -1)), "get_f32 i3 = -1");
    TT_CHECK(isnan(tfu_get_f32(v, 2, 0, 0, 0)), "get_f32 on a view, i0 = ne0: %g (the leaf's next element)", tfu_get_f32(v, 2, 0, 0, 0));
    TT_CHECK(isnan(tfu_get_f32(a, INT64_MAX, 0, 0, 0)), "get_f32 i0 = INT64_MAX");
    TT_CHECK(tfu_get_f32(a, 3, 2, 0, 0) == 12.0f, "get_f32 last element");
    tfu_set_f32(a, 4, 0, 0, 0, -7);
    tfu_set_f32(a, -1, 0, 0, 0, -7);
    tfu_set_f32(a, 0, 3, 0, 0, -7);
    tfu_set_f32(a, 0, 0, 0, 1, -7);
    tfu_set_f32(v, 2, 0, 0, 0, -7);
    tfu_set_f32(v, 0, 2, 0, 0, -7);
    tfu_set_f32(v, -1, 1, 0, 0, -7);
    for (i = 0; i < 12; i++)
        if (d[i] != before[i]) same = 0;
    TT_CHECK(same, "set_f32 outside [0, ne) wrote into the leaf");
    tfu_set_f32(v, 1, 1, 0, 0, -7);
    TT_CHECK(d[6] == -7, "set_f32 inside a view");
    tfu_free(ctx);
}

/* --- long chains --------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void t_chain_build(void) {
    enum { N = 175000 };
    size_t bytes = tfu_context_size(2 * N + 16, 1024) + (size_t)N * 64;
    tfu_context *ctx = new_ctx(bytes, 0);
    tfu_tensor *x = tfu_new_tensor_1d(ctx, TFU_F32, 4), *t = x;
    tfu_graph *g = tfu_graph_new(ctx, N + 8);
    tfu_result r;
    int i;
    for (i = 0; i < N && t; i++) t = tfu_neg(ctx, t);
    TT_CHECK(t != NULL && g != NULL, "175k chain: build the tensors: %s", tfu_last_error_msg(ctx));
    if (!t || !g) return;
    r = tfu_graph_build_expand(g, t);
    TT_CHECK(r == TFU_OK && tfu_graph_n_nodes(g) == N, "175k chain: expand: %s, %d nodes", tfu_result_str(r), tfu_graph_n_nodes(g));
    tfu_free(ctx);
}

static void t_chain_compile(void) {
    enum { N = 100000 };
    size_t bytes = tfu_context_size(2 * N + 16, 1024) + (size_t)N * 64;
    tfu_context *ctx = new_ctx(bytes, 0);
    tfu_tensor *x = tfu_new_tensor_1d(ctx, TFU_F32, 4), *t = x;
    tfu_graph *g;
    tfu_plan_options o = tfu_plan_default_options();
    tfu_plan *p;
    double t0, dt;
    int i;
    for (i = 0; i < N && t; i++) t = (i % 3 == 2) ? tfu_add(ctx, t, x) : tfu_scale(ctx, t, 1.0f);
    g = tfu_graph_new(ctx, N + 8);
    if (tfu_graph_build_expand(g, t) != TFU_OK) {
        TT_CHECK(0, "100k chain: expand failed: %s", tfu_last_error_msg(ctx));
        return;
    }
    o.no_fusion = 1;   /* one group per node: the planner's worst case */
    t0 = now_s();
    p = tfu_plan_compile(g, &o);
    dt = now_s() - t0;
    /* a loose bound (sanitizers, a shared machine); the bench row has the real target */
    TT_CHECK(p != NULL && dt < 2.0, "100k chain: compile %s in %.2f s (want well under 2 s)", p ? "ok" : tfu_last_error_msg(ctx), dt);
    if (p) TT_CHECK(tfu_plan_run(p) == TFU_OK, "100k chain: run");
    tfu_plan_free(p);
    tfu_free(ctx);
}

/* --- stale plans -------------------------------------------------------------- */

typedef struct small_t {
    tfu_tensor *x, *w, *h, *y;
} small_t;

/* y = exp(-(x * w)) with x: n0 x n1 */
static small_t small_graph(tfu_context *ctx, tfu_graph *g, int64_t n0, int64_t n1) {
    small_t s;
    s.x = tfu_new_tensor_2d(ctx, TFU_F32, n0, n1);
    s.w = tfu_new_tensor_2d(ctx, TFU_F32, n0, n1);
    tt_fill(s.x, -1, 1);
    tt_fill(s.w, -1, 1);
    s.h = tfu_mul(ctx, s.x, s.w);
    s.y = tfu_exp(ctx, tfu_neg(ctx, s.h));
    tfu_graph_build_expand(g, s.y);
    return s;
}

static int small_ok(const small_t *s) {
    int64_t i0, i1;
    for (i1 = 0; i1 < s->x->ne[1]; i1++)
        for (i0 = 0; i0 < s->x->ne[0]; i0++) {
            double want = exp(-(double)tfu_get_f32(s->x, i0, i1, 0, 0) * tfu_get_f32(s->w, i0, i1, 0, 0));
            if (fabs(tfu_get_f32(s->y, i0, i1, 0, 0) - want) > 1e-5 * (1 + fabs(want))) return 0;
        }
    return 1;
}

static void t_stale(void) {
    int form;
    for (form = 0; form < 4; form++) {
        static const char *fname[] = { "a node added", "tfu_set_keep", "tfu_set_output", "reset + rebuild" };
        tfu_context *ctx = new_ctx(1 << 20, 0);
        tfu_graph *g = tfu_graph_new(ctx, 64), *g2;
        small_t s = small_graph(ctx, g, 8, 3), s2;
        tfu_plan *p = tfu_plan_compile(g, NULL);
        tfu_result r;
        TT_CHECK(p && tfu_plan_run(p) == TFU_OK && small_ok(&s), "stale (%s): the first run", fname[form]);
        if (!p) continue;
        if (form == 0) tfu_graph_build_expand(g, tfu_sqr(ctx, s.h));
        else if (form == 1) tfu_set_keep(s.h);
        else if (form == 2) tfu_set_output(s.h);
        else {
            /* same tensor count, other shapes */
            tfu_reset(ctx);
            g = tfu_graph_new(ctx, 64);
            s = small_graph(ctx, g, 5, 7);
        }
        tfu_clear_error(ctx);
        r = tfu_plan_run(p);
        TT_CHECK(r == TFU_ERR_STALE, "stale (%s): plan_run gave %s (want TFU_ERR_STALE)", fname[form], tfu_result_str(r));
        if (form == 3) {
            r = tfu_plan_rebind(p, g);
            TT_CHECK(r == TFU_ERR_STALE, "stale (%s): rebind to other shapes gave %s", fname[form], tfu_result_str(r));
        }
        /* a structurally identical graph makes the plan runnable again */
        if (form == 3) tfu_reset(ctx);
        g2 = tfu_graph_new(ctx, 64);
        s2 = small_graph(ctx, g2, 8, 3);
        r = tfu_plan_rebind(p, g2);
        TT_CHECK(r == TFU_OK, "stale (%s): rebind to an identical graph: %s", fname[form], tfu_result_str(r));
        if (r == TFU_OK) {
            r = tfu_plan_run(p);
            TT_CHECK(r == TFU_OK && small_ok(&s2), "stale (%s): run after rebind: %s", fname[form], tfu_result_str(r));
        }
        tfu_plan_free(p);
        tfu_free(ctx);
    }
}

/* --- NaN and infinities --------------------------------------------------------- */

#define NX 37   /* a SIMD body and a scalar tail */

static double relu_d(double x) { return x != x ? x : x > 0 ? x : 0; }
static double sigmoid_d(double x) { return 1.0 / (1.0 + exp(-x)); }

static void t_nan_inf(void) {
    static const tfu_op ops[] = { TFU_OP_NEG, TFU_OP_ABS, TFU_OP_SQR, TFU_OP_SQRT, TFU_OP_EXP, TFU_OP_LOG,
                                  TFU_OP_SIN, TFU_OP_COS, TFU_OP_TANH, TFU_OP_SIGMOID, TFU_OP_RELU,
                                  TFU_OP_GELU, TFU_OP_GELU_ERF, TFU_OP_SILU, TFU_OP_CLAMP };
    int k, oi, i;
    for (k = 0; k < P_COUNT; k++) {
        for (oi = 0; oi < (int)(sizeof ops / sizeof ops[0]); oi++) {
            tfu_op op = ops[oi];
            tfu_context *ctx = new_ctx(1 << 20, 0);
            tfu_tensor *x = tfu_new_tensor_1d(ctx, TFU_F32, NX);
            tfu_tensor *y = op == TFU_OP_CLAMP ? tfu_clamp(ctx, x, -0.5f, 0.75f) : tfu_unary(ctx, x, op);
            tfu_graph *g = tfu_graph_build(ctx, y);
            tfu_plan *p;
            tfu_result r;
            float *xd = (float *)x->data;
            int bad = -1;
            for (i = 0; i < NX; i++) xd[i] = 0.5f + 0.01f * (float)i;
            /* NaN and infinities in the SIMD body and in the tail */
            xd[1] = NAN;
            xd[5] = INFINITY;
            xd[6] = -INFINITY;
            xd[33] = NAN;
            xd[34] = INFINITY;
            xd[35] = -INFINITY;
            r = run_path(g, k, &p);
            TT_CHECK(r == TFU_OK, "nan [%s] %s: run %s", g_pname[k], tfu_op_name(op), tfu_result_str(r));
            if (r == TFU_OK) {
                for (i = 0; i < NX && bad < 0; i++) {
                    double v = tfu_get_f32(y, i, 0, 0, 0), xi = xd[i], want;
                    int inf_defined = 1;
                    if (xi != xi) {
                        if (v == v) bad = i;
                        continue;
                    }
                    switch (op) {
                    case TFU_OP_NEG: want = -xi; break;
                    case TFU_OP_ABS: want = fabs(xi); break;
                    case TFU_OP_SQR: want = xi * xi; break;
                    case TFU_OP_SQRT: want = sqrt(xi); break;
                    case TFU_OP_EXP: want = exp(xi); break;
                    case TFU_OP_LOG: want = log(xi); break;
                    case TFU_OP_TANH: want = tanh(xi); break;
                    case TFU_OP_SIGMOID: want = sigmoid_d(xi); break;
                    case TFU_OP_RELU: want = relu_d(xi); break;
                    case TFU_OP_CLAMP: want = xi < -0.5 ? -0.5 : xi > 0.75 ? 0.75 : xi; break;
                    default: want = 0; inf_defined = 0; break;   /* sin, cos, gelu, silu of inf: not pinned here */
                    }
                    if (isinf(xi) && !inf_defined) continue;
                    if (isinf(xi) || want != want || isinf(want)) {
                        if (!(v == want || (v != v && want != want))) bad = i;
                    } else if (!isinf(xi) && inf_defined && fabs(v - want) > 1e-5 * (1 + fabs(want))) {
                        bad = i;
                    }
                }
                TT_CHECK(bad < 0, "nan [%s] %s: element %d (x = %g) gives %g", g_pname[k], tfu_op_name(op), bad,
                         bad >= 0 ? xd[bad] : 0.0, bad >= 0 ? tfu_get_f32(y, bad, 0, 0, 0) : 0.0);
            }
            tfu_plan_free(p);
            tfu_free(ctx);
        }
    }
}

/* binary ops and NaN: NaN in either operand, NaN out */
static void t_nan_binary(void) {
    int k, oi, i;
    for (k = 0; k < P_COUNT; k++)
        for (oi = 0; oi < 4; oi++) {
            tfu_context *ctx = new_ctx(1 << 20, 0);
            tfu_tensor *a = tfu_new_tensor_1d(ctx, TFU_F32, NX);
            tfu_tensor *b = tfu_new_tensor_1d(ctx, TFU_F32, NX);
            tfu_tensor *y = oi == 0 ? tfu_add(ctx, a, b) : oi == 1 ? tfu_sub(ctx, a, b) : oi == 2 ? tfu_mul(ctx, a, b) : tfu_div(ctx, a, b);
            tfu_graph *g = tfu_graph_build(ctx, tfu_neg(ctx, y));
            tfu_plan *p;
            tfu_result r;
            int bad = -1;
            tt_fill(a, 0.5f, 1.5f);
            tt_fill(b, 0.5f, 1.5f);
            ((float *)a->data)[2] = NAN;
            ((float *)b->data)[3] = NAN;
            ((float *)a->data)[33] = NAN;
            ((float *)b->data)[36] = NAN;
            r = run_path(g, k, &p);
            if (r == TFU_OK) {
                tfu_tensor *out = tfu_graph_node(g, tfu_graph_n_nodes(g) - 1);
                for (i = 0; i < NX; i++) {
                    int want_nan = i == 2 || i == 3 || i == 33 || i == 36;
                    float v = tfu_get_f32(out, i, 0, 0, 0);
                    if (want_nan != (v != v)) bad = i;
                }
            }
            TT_CHECK(r == TFU_OK && bad < 0, "nan [%s] neg(binary %d): run %s, element %d wrong", g_pname[k], oi, tfu_result_str(r), bad);
            tfu_plan_free(p);
            tfu_free(ctx);
        }
}

/* argmax: the first NaN wins, else the first maximum */
static void t_argmax(void) {
    int k, i;
    for (k = 0; k < P_COUNT; k++) {
        tfu_context *ctx = new_ctx(1 << 20, 0);
        tfu_tensor *x = tfu_new_tensor_2d(ctx, TFU_F32, NX, 5);
        tfu_tensor *am = tfu_argmax(ctx, x);
        tfu_graph *g = tfu_graph_build(ctx, am);
        tfu_plan *p;
        tfu_result r;
        float *d = (float *)x->data;
        int32_t want[5];
        for (i = 0; i < NX * 5; i++) d[i] = (float)(i % 7) * 0.25f;
        /* row 0: NaN at 3 and 20, a larger value at 10: the first NaN */
        d[3] = NAN;
        d[20] = NAN;
        d[10] = 100;
        want[0] = 3;
        /* row 1: NaN only in the tail */
        d[NX + 34] = NAN;
        d[NX + 2] = 50;
        want[1] = 34;
        /* row 2: the maximum twice: the first */
        d[2 * NX + 12] = 9;
        d[2 * NX + 30] = 9;
        want[2] = 12;
        /* row 3: all -inf: the first */
        for (i = 0; i < NX; i++) d[3 * NX + i] = -INFINITY;
        want[3] = 0;
        /* row 4: +inf after NaN-free values, twice */
        d[4 * NX + 8] = INFINITY;
        d[4 * NX + 9] = INFINITY;
        want[4] = 8;
        r = run_path(g, k, &p);
        TT_CHECK(r == TFU_OK, "argmax [%s]: run %s", g_pname[k], tfu_result_str(r));
        if (r == TFU_OK)
            for (i = 0; i < 5; i++) {
                int32_t got;
                memcpy(&got, (char *)am->data + (size_t)i * am->nb[1], 4);
                TT_CHECK(got == want[i], "argmax [%s] row %d: %d (want %d)", g_pname[k], i, got, want[i]);
            }
        tfu_plan_free(p);
        tfu_free(ctx);
    }
}

/* reductions of huge and tiny rows give the reference's (double) answer */
static void t_wide_reductions(void) {
    static const double mags[] = { 1e20, 3e38, 1e-20, 1e-38 };
    enum { R_RMS, R_NORM, R_SUM, R_MEAN, R_SOFTMAX, R_N };
    static const char *rname[] = { "rms_norm", "norm", "sum_rows", "mean", "soft_max" };
    int k, m, op, i;
    for (k = 0; k < P_COUNT; k++)
        for (m = 0; m < 4; m++)
            for (op = 0; op < R_N; op++) {
                tfu_context *ctx = new_ctx(1 << 20, 0);
                tfu_tensor *x = tfu_new_tensor_1d(ctx, TFU_F32, NX);
                tfu_tensor *y;
                tfu_graph *g;
                tfu_plan *p;
                tfu_result r;
                float *d = (float *)x->data;
                double want[NX], s = 0, s2 = 0, mx = -INFINITY, e = 0, worst = 0;
                float eps = 1e-6f;
                for (i = 0; i < NX; i++) {
                    d[i] = (float)(mags[m] * (0.5 + 0.5 * sin(1.0 + i)) * (i % 3 == 0 ? -1 : 1));
                    s += d[i];
                    s2 += (double)d[i] * d[i];
                    if (d[i] > mx) mx = d[i];
                }
                if (op == R_RMS) y = tfu_rms_norm(ctx, x, eps);
                else if (op == R_NORM) y = tfu_norm(ctx, x, eps);
                else if (op == R_SUM) y = tfu_sum_rows(ctx, x);
                else if (op == R_MEAN) y = tfu_mean(ctx, x);
                else y = tfu_soft_max(ctx, x);
                /* a consumer, so that fused paths keep the reduction inside a group */
                y = tfu_scale(ctx, y, 1.0f);
                g = tfu_graph_build(ctx, y);
                for (i = 0; i < NX; i++) {
                    if (op == R_RMS) want[i] = d[i] / sqrt(s2 / NX + eps);
                    else if (op == R_NORM) {
                        double mean = s / NX, var = 0;
                        int j;
                        for (j = 0; j < NX; j++) var += (d[j] - mean) * (d[j] - mean);
                        want[i] = (d[i] - mean) / sqrt(var / NX + eps);
                    } else if (op == R_SUM) want[i] = s;
                    else if (op == R_MEAN) want[i] = s / NX;
                    else {
                        e += exp(d[i] - mx);
                        want[i] = 0;
                    }
                }
                if (op == R_SOFTMAX)
                    for (i = 0; i < NX; i++) want[i] = exp(d[i] - mx) / e;
                r = run_path(g, k, &p);
                TT_CHECK(r == TFU_OK, "reduce [%s] %s of %g: run %s", g_pname[k], rname[op], mags[m], tfu_result_str(r));
                if (r == TFU_OK) {
                    int n = op == R_SUM || op == R_MEAN ? 1 : NX;
                    int wi = 0;
                    for (i = 0; i < n; i++) {
                        double w = (double)(float)want[i], v = tfu_get_f32(y, i, 0, 0, 0), err;
                        double scale = fabs(w) > 1e-30 ? fabs(w) : 1e-30;
                        if (op == R_RMS || op == R_NORM || op == R_SOFTMAX) scale = fabs(w) > 1 ? fabs(w) : 1;
                        err = isinf(w) && v == w ? 0 : fabs(v - w) / scale;
                        if (err != err) err = INFINITY;
                        if (err > worst) {
                            worst = err;
                            wi = i;
                        }
                    }
                    TT_CHECK(worst < 1e-4, "reduce [%s] %s of %g: element %d is %g, want %g", g_pname[k], rname[op], mags[m],
                             wi, tfu_get_f32(y, wi, 0, 0, 0), (double)(float)want[wi]);
                }
                tfu_plan_free(p);
                tfu_free(ctx);
            }
}

/* --- the runner -------------------------------------------------------------- */

typedef struct group_t {
    const char *name;
    void (*fn)(void);
} group_t;

static const group_t g_groups[] = {
    { "views", t_views },
    { "selfoverlap_dst", t_selfoverlap_dst },
    { "rope_pos", t_rope_pos },
    { "get_rows_view", t_get_rows_view },
    { "int_max", t_int_max },
    { "overflow", t_overflow },
    { "set_arena_null", t_set_arena_null },
    { "get_set_bounds", t_get_set_bounds },
    { "chain_build", t_chain_build },
    { "chain_compile", t_chain_compile },
    { "stale", t_stale },
    { "nan_inf", t_nan_inf },
    { "nan_binary", t_nan_binary },
    { "argmax", t_argmax },
    { "wide_reductions", t_wide_reductions },
};

#if defined(_WIN32)
/* no fork: the groups run in this process */
static void run_group(const group_t *gr) { gr->fn(); }
#else
/* runs one group in a child; its counts come back through a pipe */
static void run_group(const group_t *gr) {
    int fd[2], status = 0, counts[3] = { 0, 0, 0 };
    pid_t pid;
    ssize_t got;
    if (pipe(fd) != 0) {
        printf("pipe failed\n");
        tt_failed++;
        return;
    }
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(fd[0]);
        alarm(120);
        tt_passed = 0;
        tt_failed = 0;
        tt_skipped = 0;
        gr->fn();
        counts[0] = tt_passed;
        counts[1] = tt_failed;
        counts[2] = tt_skipped;
        fflush(stdout);
        if (write(fd[1], counts, sizeof counts) != (ssize_t)sizeof counts) _exit(3);
        _exit(0);
    }
    close(fd[1]);
    got = read(fd[0], counts, sizeof counts);
    close(fd[0]);
    waitpid(pid, &status, 0);
    if (got != (ssize_t)sizeof counts || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("FAIL group %s: the child %s %d\n", gr->name, WIFSIGNALED(status) ? "died of signal" : "exited with",
               WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        tt_failed++;
        return;
    }
    tt_passed += counts[0];
    tt_failed += counts[1];
    tt_skipped += counts[2];
    if (counts[1]) printf("group %s: %d passed, %d failed\n", gr->name, counts[0], counts[1]);
}
#endif

int main(int argc, char **argv) {
    const char *only = NULL;
    size_t i;
    int a;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (a = 1; a + 1 < argc; a++)
        if (!strcmp(argv[a], "--only")) only = argv[a + 1];
    for (i = 0; i < sizeof g_groups / sizeof g_groups[0]; i++)
        if (!only || !strcmp(only, g_groups[i].name)) run_group(&g_groups[i]);
    return tt_summary();
}
