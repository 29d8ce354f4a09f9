/* test_decode - what a decoder needs: set_rows (rows written at positions
   held in data, in program order with every other access), graphs over
   several contexts, external leaves, a shared thread pool, one plan for a
   whole generation. Every result is compared against plain loops written
   here in double, on the reference executor and on plans (fused, unfused,
   one and two threads). */
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include <stdio.h>
#include <stdlib.h>
#include "tests/tfu_test.h"

/* the plan variants every graph runs on */
#define N_VARIANTS 4

static tfu_plan_options variant(int v) {
    tfu_plan_options o = tfu_plan_default_options();
    o.no_fusion = v == 2;
    o.n_threads = v == 1 || v == 3 ? 2 : 1;
#if defined(TFU_NO_THREADS)
    o.n_threads = 1;
#endif
    return o;
}

/* the plan of the last run_variant: its values live until drop_plan */
static tfu_plan *g_plan;

static void drop_plan(void) {
    tfu_plan_free(g_plan);
    g_plan = NULL;
}

/* runs g on variant v (v < 0: the reference) */
static tfu_result run_variant(tfu_graph *g, int v) {
    tfu_plan_options o;
    drop_plan();
    if (v < 0) return tfu_graph_compute_ref(g);
    o = variant(v);
    g_plan = tfu_plan_compile(g, &o);
    if (!g_plan) return tfu_last_error(tfu_graph_context(g));
    return tfu_plan_run(g_plan);
}

static double max_diff(const tfu_tensor *t, const double *want) {
    double w = 0;
    int64_t i0, i1, i2, k = 0;
    for (i2 = 0; i2 < t->ne[2]; i2++)
        for (i1 = 0; i1 < t->ne[1]; i1++)
            for (i0 = 0; i0 < t->ne[0]; i0++, k++) {
                double d = fabs((double)tfu_get_f32(t, i0, i1, i2, 0) - want[k]);
                if (!(d <= w)) w = d;
            }
    return w;
}

/* --- set_rows ------------------------------------------------------------ */

/* rows of src into rows idx of a cache (f32 or f16, a leaf or a view of a
   wider one), idx per batch or shared; reads of the cache created before
   the write see the old rows, reads created after (not through the
   result) the new ones */
static void test_set_rows(void) {
    int v, ty, per_batch, as_view;
    for (ty = 0; ty < 2; ty++)
    for (per_batch = 0; per_batch < 2; per_batch++)
    for (as_view = 0; as_view < 2; as_view++)
    for (v = -1; v < N_VARIANTS; v++) {
        const int64_t D = 8, R = 10, N = 3, B = 2;
        tfu_context *ctx = tfu_init_malloc(1 << 20, 0);
        tfu_type type = ty ? TFU_F16 : TFU_F32;
        tfu_tensor *L, *dst, *src, *idx, *before, *sr, *after, *through;
        tfu_graph *g;
        double *old_rows, *want, *want_before, *want_after;
        int64_t i0, i1, i2, k;
        tfu_result r;
        char where[96];
        snprintf(where, sizeof where, "set_rows %s%s%s variant %d", ty ? "f16" : "f32", per_batch ? " per batch" : "",
                 as_view ? " into a view" : "", v);
        tt_seed(7 + (uint64_t)(ty * 4 + per_batch * 2 + as_view));
        L = tfu_new_tensor_3d(ctx, type, as_view ? D + 3 : D, R, B);
        tt_fill(L, -1, 1);
        dst = as_view ? tfu_view_3d(ctx, L, D, R, B, L->nb[1], L->nb[2], 2 * tfu_type_size(type)) : L;
        src = tfu_new_tensor_3d(ctx, TFU_F32, D, N, B);
        tt_fill(src, -2, 2);
        idx = tfu_new_tensor_2d(ctx, TFU_I32, N, per_batch ? B : 1);
        for (k = 0; k < N * (per_batch ? B : 1); k++) ((int32_t *)idx->data)[k] = (int32_t)((k * 7 + 3) % R);
        if (per_batch) ((int32_t *)idx->data)[N] = 9;
        before = tfu_sum_rows(ctx, dst);
        sr = tfu_set_rows(ctx, dst, src, idx);
        after = tfu_sum_rows(ctx, dst);              /* reads dst itself, not the result */
        through = tfu_scale(ctx, sr, 2.0f);          /* reads through the result */
        TT_CHECK(before && sr && after && through, "%s: build: %s", where, tfu_last_error_msg(ctx));
        if (!through) { tfu_free(ctx); continue; }
        g = tfu_graph_new(ctx, 64);
        tfu_graph_build_expand(g, before);
        tfu_graph_build_expand(g, after);
        tfu_graph_build_expand(g, through);
        old_rows = (double *)malloc(sizeof(double) * (size_t)(D * R * B));
        want = (double *)malloc(sizeof(double) * (size_t)(D * R * B));
        want_before = (double *)malloc(sizeof(double) * (size_t)(R * B));
        want_after = (double *)malloc(sizeof(double) * (size_t)(R * B));
        for (i2 = 0, k = 0; i2 < B; i2++)
            for (i1 = 0; i1 < R; i1++)
                for (i0 = 0; i0 < D; i0++, k++) old_rows[k] = want[k] = tfu_get_f32(dst, i0, i1, i2, 0);
        for (i2 = 0; i2 < B; i2++)
            for (i1 = 0; i1 < N; i1++) {
                int32_t row = ((int32_t *)idx->data)[i1 + (per_batch ? i2 * N : 0)];
                for (i0 = 0; i0 < D; i0++) {
                    float x = tfu_get_f32(src, i0, i1, i2, 0);
                    want[(i2 * R + row) * D + i0] = ty ? tfu_f16_to_f32(tfu_f32_to_f16(x)) : x;
                }
            }
        for (i2 = 0; i2 < B; i2++)
            for (i1 = 0; i1 < R; i1++) {
                double sb = 0, sa = 0;
                for (i0 = 0; i0 < D; i0++) {
                    sb += old_rows[(i2 * R + i1) * D + i0];
                    sa += want[(i2 * R + i1) * D + i0];
                }
                want_before[i2 * R + i1] = sb;
                want_after[i2 * R + i1] = sa;
            }
        r = run_variant(g, v);
        TT_CHECK(r == TFU_OK, "%s: run: %s (%s)", where, tfu_result_str(r), tfu_last_error_msg(ctx));
        if (r == TFU_OK) {
            TT_CHECK(max_diff(dst, want) == 0, "%s: dst differs by %g", where, max_diff(dst, want));
            TT_CHECK(max_diff(before, want_before) < 1e-5, "%s: a read created before the write saw it (%g)", where,
                     max_diff(before, want_before));
            TT_CHECK(max_diff(after, want_after) < 1e-5, "%s: a read created after the write missed it (%g)", where,
                     max_diff(after, want_after));
            for (k = 0; k < D * R * B; k++) want[k] *= 2;
            TT_CHECK(max_diff(through, want) < 1e-6, "%s: a read through the result differs (%g)", where,
                     max_diff(through, want));
        }
        if (as_view) {   /* the columns outside the view keep their bytes */
            int ok = 1;
            for (i2 = 0; i2 < B; i2++)
                for (i1 = 0; i1 < R; i1++) {
                    float a = tfu_get_f32(L, 0, i1, i2, 0), b = tfu_get_f32(L, D + 2, i1, i2, 0);
                    if (!(a >= -1 && a <= 1 && b >= -1 && b <= 1)) ok = 0;
                }
            TT_CHECK(ok, "%s: bytes outside the view were written", where);
        }
        free(old_rows);
        free(want);
        free(want_before);
        free(want_after);
        drop_plan();
        tfu_free(ctx);
    }
}

/* an index out of range or two equal ones: TFU_ERR_INVALID_ARG before
   anything is written, on the reference and on plans */
static void test_set_rows_bad_index(void) {
    int v, bad;
    for (bad = 0; bad < 3; bad++)
    for (v = -1; v < N_VARIANTS; v++) {
        tfu_context *ctx = tfu_init_malloc(1 << 20, 0);
        tfu_tensor *L = tfu_new_tensor_2d(ctx, TFU_F32, 4, 6), *src = tfu_new_tensor_2d(ctx, TFU_F32, 4, 3);
        tfu_tensor *idx = tfu_new_tensor_1d(ctx, TFU_I32, 3), *sr, *y;
        tfu_graph *g;
        float keep[24];
        int32_t *ix = (int32_t *)idx->data;
        tfu_result r;
        tt_fill(L, -1, 1);
        tt_fill(src, -1, 1);
        memcpy(keep, L->data, sizeof keep);
        ix[0] = 1;
        ix[1] = 4;
        ix[2] = bad == 0 ? 6 : bad == 1 ? -1 : 1;
        sr = tfu_set_rows(ctx, L, src, idx);
        y = tfu_sum_rows(ctx, sr);
        g = tfu_graph_build(ctx, y);
        r = run_variant(g, v);
        TT_CHECK(r == TFU_ERR_INVALID_ARG, "bad index %d variant %d: run gave %s", bad, v, tfu_result_str(r));
        TT_CHECK(!memcmp(keep, L->data, sizeof keep), "bad index %d variant %d: dst written", bad, v);
        TT_CHECK(strstr(tfu_last_error_msg(ctx), "SET_ROWS") != NULL, "bad index %d: message '%s'", bad, tfu_last_error_msg(ctx));
        drop_plan();
        tfu_free(ctx);
    }
    {   /* builder checks */
        tfu_context *ctx = tfu_init_malloc(1 << 20, 0);
        tfu_tensor *L = tfu_new_tensor_2d(ctx, TFU_F32, 4, 6), *src = tfu_new_tensor_2d(ctx, TFU_F32, 4, 3);
        tfu_tensor *idx = tfu_new_tensor_1d(ctx, TFU_I32, 3), *fidx = tfu_new_tensor_1d(ctx, TFU_F32, 3);
        tfu_tensor *wide = tfu_new_tensor_2d(ctx, TFU_F32, 5, 3), *val = tfu_scale(ctx, L, 1.0f);
        TT_CHECK(!tfu_set_rows(ctx, L, src, fidx) && tfu_last_error(ctx) == TFU_ERR_TYPE, "f32 indices accepted");
        tfu_clear_error(ctx);
        TT_CHECK(!tfu_set_rows(ctx, L, wide, idx) && tfu_last_error(ctx) == TFU_ERR_SHAPE, "rows of another length accepted");
        tfu_clear_error(ctx);
        TT_CHECK(!tfu_set_rows(ctx, val, src, idx) && tfu_last_error(ctx) == TFU_ERR_INVALID_ARG, "a computed dst accepted");
        tfu_clear_error(ctx);
        TT_CHECK(!tfu_set_rows(ctx, L, NULL, idx) && tfu_last_error(ctx) == TFU_ERR_NULL_ARG, "NULL src accepted");
        tfu_free(ctx);
    }
}

/* one plan, the position as data: a cache written one row per run at the
   row an I32 leaf holds, every run checked; the structure never changes */
static void test_set_rows_one_plan(void) {
    const int64_t D = 16, R = 12;
    tfu_context *ctx = tfu_init_malloc(1 << 20, 0);
    tfu_tensor *cache = tfu_new_tensor_2d(ctx, TFU_F32, D, R), *x = tfu_new_tensor_2d(ctx, TFU_F32, D, 1);
    tfu_tensor *pos = tfu_new_tensor_1d(ctx, TFU_I32, 1), *sr, *y;
    tfu_graph *g;
    tfu_plan_options o = variant(1);
    tfu_plan *p;
    uint64_t h;
    int step, ok = 1;
    tt_fill(cache, -1, 1);
    sr = tfu_set_rows(ctx, cache, tfu_tanh(ctx, x), pos);
    y = tfu_sum_rows(ctx, sr);
    g = tfu_graph_build(ctx, y);
    p = tfu_plan_compile(g, &o);
    TT_CHECK(p != NULL, "one plan: compile: %s", tfu_last_error_msg(ctx));
    if (!p) { tfu_free(ctx); return; }
    h = tfu_graph_hash(g);
    for (step = 0; step < R; step++) {
        int64_t i, j;
        double s;
        ((int32_t *)pos->data)[0] = (int32_t)((step * 5) % R);
        tt_fill(x, -3, 3);
        if (tfu_plan_run(p) != TFU_OK) { ok = 0; break; }
        for (j = 0; j < R; j++) {
            s = 0;
            for (i = 0; i < D; i++) s += tfu_get_f32(cache, i, j, 0, 0);
            if (fabs(s - tfu_get_f32(y, 0, j, 0, 0)) > 1e-4) ok = 0;
        }
        for (i = 0; i < D; i++)
            if (fabs(tfu_get_f32(cache, i, (step * 5) % R, 0, 0) - tanh(tfu_get_f32(x, i, 0, 0, 0))) > 1e-6) ok = 0;
    }
    TT_CHECK(ok, "one plan: a step's row or sums differ");
    TT_CHECK(tfu_graph_hash(g) == h, "one plan: the structure changed with the position");
    tfu_plan_free(p);
    tfu_free(ctx);
}

/* --- several contexts, external leaves ------------------------------------ */

/* weights in a persistent context (one of them an external leaf over
   caller memory, one a view made there), each step's graph in a scratch
   context that is reset; program order across the contexts (a write into
   a weight-context cache, then a read of it); a computed tensor of the
   other context refused with a message naming the cause */
static void test_contexts(void) {
    const int64_t K = 24, M = 10;
    tfu_context *wctx = tfu_init_malloc(1 << 20, 0), *sctx = tfu_init_malloc(1 << 20, 1);
    float *ext = (float *)malloc(sizeof(float) * (size_t)(K * M));
    int64_t ne[2];
    tfu_tensor *w, *we, *wv, *cache, *bad;
    int step, v;
    ne[0] = K;
    ne[1] = M;
    tt_seed(99);
    for (step = 0; step < K * M; step++) ext[step] = tt_rand(-1, 1);
    w = tfu_new_tensor_2d(wctx, TFU_F32, K, M);
    tt_fill(w, -1, 1);
    we = tfu_new_tensor_ext(wctx, TFU_F32, 2, ne, ext);
    wv = tfu_view_2d(wctx, w, K, M / 2, w->nb[1], 0);
    cache = tfu_new_tensor_2d(wctx, TFU_F32, M, 4);
    tt_fill(cache, -1, 1);
    bad = tfu_scale(wctx, w, 2.0f);
    TT_CHECK(w && we && wv && cache && bad && we->data == ext, "contexts: weights: %s", tfu_last_error_msg(wctx));
    TT_CHECK(tfu_new_tensor_ext(wctx, TFU_F32, 2, ne, NULL) == NULL && tfu_last_error(wctx) == TFU_ERR_NULL_ARG,
             "contexts: an external leaf over NULL accepted");
    tfu_clear_error(wctx);
    for (step = 0; step < 6; step++) {
        static unsigned char xmem[4096];
        tfu_tensor *x, *y, *z, *pos, *sr, *after;
        tfu_graph *g;
        int64_t xe[2];
        double want_y[10], want_z[5], want_a[4];
        int64_t i, j;
        int32_t pv = step % 4;
        tfu_reset(sctx);
        xe[0] = K;
        xe[1] = 1;
        x = tfu_new_tensor_ext(sctx, TFU_F32, 2, xe, xmem);   /* a no_alloc context: every leaf external */
        for (i = 0; i < K; i++) ((float *)xmem)[i] = tt_rand(-1, 1);
        pos = tfu_new_tensor_ext(sctx, TFU_I32, 1, xe + 1, &pv);
        y = tfu_add(sctx, tfu_mul_mat(sctx, w, x), tfu_mul_mat(sctx, we, x));
        z = tfu_mul_mat(sctx, wv, x);
        sr = tfu_set_rows(sctx, cache, tfu_reshape_2d(sctx, y, M, 1), pos);
        after = tfu_sum_rows(sctx, cache);   /* created after the write: sees it */
        g = tfu_graph_new(sctx, 64);
        TT_CHECK(g && tfu_graph_build_expand(g, z) == TFU_OK && tfu_graph_build_expand(g, sr) == TFU_OK &&
                     tfu_graph_build_expand(g, after) == TFU_OK,
                 "contexts step %d: build: %s", step, tfu_last_error_msg(sctx));
        for (j = 0; j < M; j++) {
            double a = 0;
            for (i = 0; i < K; i++) a += ((double)tfu_get_f32(w, i, j, 0, 0) + ext[j * K + i]) * ((float *)xmem)[i];
            want_y[j] = a;
            if (j < M / 2) {
                double c = 0;
                for (i = 0; i < K; i++) c += (double)tfu_get_f32(w, i, j, 0, 0) * ((float *)xmem)[i];
                want_z[j] = c;
            }
        }
        for (j = 0; j < 4; j++) {
            double a = 0;
            for (i = 0; i < M; i++) a += j == pv ? want_y[i] : tfu_get_f32(cache, i, j, 0, 0);
            want_a[j] = a;
        }
        v = step % N_VARIANTS;
        {
            tfu_result r = run_variant(g, v);
            double ey = 0, ez = 0, ea = 0;
            TT_CHECK(r == TFU_OK, "contexts step %d: run: %s (%s)", step, tfu_result_str(r), tfu_last_error_msg(sctx));
            for (j = 0; j < M; j++) ey = fmax(ey, fabs(tfu_get_f32(cache, j, pv, 0, 0) - want_y[j]));
            for (j = 0; j < M / 2; j++) ez = fmax(ez, fabs(tfu_get_f32(z, 0, j, 0, 0) - want_z[j]));
            for (j = 0; j < 4; j++) ea = fmax(ea, fabs(tfu_get_f32(after, 0, j, 0, 0) - want_a[j]));
            TT_CHECK(ey < 1e-4 && ez < 1e-4 && ea < 1e-4, "contexts step %d variant %d: errors %g %g %g", step, v, ey, ez, ea);
        }
        g = tfu_graph_new(sctx, 64);
        TT_CHECK(tfu_graph_build_expand(g, bad) == TFU_ERR_GRAPH &&
                     strstr(tfu_last_error_msg(sctx), "computed tensor of another context") != NULL,
                 "contexts: a computed tensor of another context: '%s'", tfu_last_error_msg(sctx));
        tfu_clear_error(sctx);
        drop_plan();
    }
    {   /* tfu_graph_build: more tensors than its context holds */
        tfu_context *c = tfu_init_malloc(1 << 16, 0);
        tfu_tensor *x = tfu_new_tensor_2d(c, TFU_F32, K, 1), *y;
        tfu_graph *g;
        tt_fill(x, -1, 1);
        y = tfu_mul_mat(c, tfu_view_2d(wctx, w, K, M, w->nb[1], 0), x);
        y = tfu_add(c, y, tfu_mul_mat(c, w, x));
        y = tfu_add(c, y, tfu_mul_mat(c, we, x));
        g = tfu_graph_build(c, tfu_sum_rows(c, y));
        TT_CHECK(g != NULL, "graph_build over two contexts: %s", tfu_last_error_msg(c));
        tfu_free(c);
    }
    {   /* causal mask in a no_alloc context */
        static float mem[6 * 4];
        int64_t me[2], i, j;
        tfu_tensor *m;
        int ok = 1;
        me[0] = 6;
        me[1] = 4;
        tfu_reset(sctx);
        TT_CHECK(tfu_causal_mask(sctx, 6, 4) == NULL && strstr(tfu_last_error_msg(sctx), "tfu_fill_causal_mask") != NULL,
                 "causal_mask in no_alloc: '%s'", tfu_last_error_msg(sctx));
        tfu_clear_error(sctx);
        m = tfu_new_tensor_ext(sctx, TFU_F32, 2, me, mem);
        TT_CHECK(tfu_fill_causal_mask(m, 1) == TFU_OK, "fill_causal_mask failed");
        for (j = 0; j < 4; j++)
            for (i = 0; i < 6; i++)
                if ((mem[j * 6 + i] == 0.0f) != (i <= 1 + j) || (i > 1 + j && !(mem[j * 6 + i] < -1e30f))) ok = 0;
        TT_CHECK(ok, "fill_causal_mask: wrong values");
    }
    free(ext);
    tfu_free(wctx);
    tfu_free(sctx);
}

/* --- a shared thread pool, the plan cache -------------------------------- */

/* many plans (a cache of them) borrowing one pool, each checked against
   the reference; a cache hit on the same graph or an identical one; a plan
   may not run while another runs on the pool (tested from the callback) */
static tfu_plan *g_other_plan;
static tfu_result g_nested;
static int nested_cb(const tfu_tensor *t, void *user) {
    (void)t;
    (void)user;
    if (g_other_plan) g_nested = tfu_plan_run(g_other_plan);
    g_other_plan = NULL;
    return 0;
}

static void test_pool(void) {
#if !defined(TFU_NO_THREADS)
    tfu_threadpool *pool = tfu_threadpool_new(3);
    tfu_plan_options o = tfu_plan_default_options();
    tfu_plan_cache *cache;
    tfu_context *ctx = tfu_init_malloc(1 << 22, 0);
    tfu_tensor *w = tfu_new_tensor_2d(ctx, TFU_F32, 64, 48);
    tfu_plan *first = NULL;
    int n, hit, hits = 0;
    TT_CHECK(pool != NULL && tfu_threadpool_n_threads(pool) == 3, "threadpool_new(3)");
    if (!pool) { tfu_free(ctx); return; }
    TT_CHECK(tfu_threadpool_new(0) == NULL && tfu_threadpool_new(257) == NULL, "threadpool_new: bad sizes accepted");
    tt_fill(w, -1, 1);
    o.pool = pool;
    cache = tfu_plan_cache_new(&o, 64);
    for (n = 1; n <= 40; n++) {
        int rep;
        for (rep = 0; rep < 2; rep++) {
            tfu_tensor *x = tfu_new_tensor_2d(ctx, TFU_F32, 64, 1 + n % 20), *y;
            tfu_graph *g;
            tfu_plan *p;
            double err = 0;
            int64_t i, j, k;
            tt_fill(x, -1, 1);
            y = tfu_silu(ctx, tfu_mul_mat(ctx, w, x));
            g = tfu_graph_build(ctx, y);
            p = tfu_plan_cache_get(cache, g, &hit);
            hits += hit;
            if (!first) first = p;
            TT_CHECK(p && tfu_plan_run(p) == TFU_OK, "pool: graph %d: %s", n, tfu_last_error_msg(ctx));
            for (j = 0; j < y->ne[1]; j++)
                for (i = 0; i < y->ne[0]; i++) {
                    double s = 0, r;
                    for (k = 0; k < 64; k++) s += (double)tfu_get_f32(w, k, i, 0, 0) * tfu_get_f32(x, k, j, 0, 0);
                    r = s / (1 + exp(-s));
                    err = fmax(err, fabs(r - tfu_get_f32(y, i, j, 0, 0)));
                }
            TT_CHECK(err < 1e-4, "pool: graph %d err %g", n, err);
            if (p && rep == 1) {   /* the same graph again: a hit */
                TT_CHECK(tfu_plan_cache_get(cache, g, &hit) == p && hit, "pool: the bound graph again missed");
            }
        }
    }
    TT_CHECK(hits == 40 + 20, "pool: %d cache hits (want 60: 20 shapes)", hits);
    {   /* a second plan run while the first runs on the pool */
        tfu_tensor *x = tfu_new_tensor_2d(ctx, TFU_F32, 64, 3);
        tfu_graph *g;
        tfu_plan *p;
        tfu_plan_options o2 = o;
        tt_fill(x, -1, 1);
        g = tfu_graph_build(ctx, tfu_silu(ctx, tfu_mul_mat(ctx, w, x)));
        o2.eval_cb = nested_cb;
        p = tfu_plan_compile(g, &o2);
        g_other_plan = first;
        g_nested = TFU_OK;
        TT_CHECK(p && tfu_plan_run(p) == TFU_OK, "pool: nested: outer run");
        TT_CHECK(g_nested == TFU_ERR_THREADS, "pool: a plan ran while another ran on the pool (%s)", tfu_result_str(g_nested));
        TT_CHECK(first && tfu_plan_run(first) == TFU_OK, "pool: a run after the refusal");
        tfu_plan_free(p);
    }
    tfu_plan_cache_free(cache);
    tfu_threadpool_free(pool);
    tfu_free(ctx);
#endif
}

/* the per-step pattern: a scratch context reset every step, the graph
   rebuilt there over weights and a cache of a persistent context, the
   plan from a cache (one compile, then hits), the position as data */
static void test_rebuild_each_step(void) {
    const int64_t D = 16, R = 8;
    tfu_context *wctx = tfu_init_malloc(1 << 18, 0), *sctx = tfu_init_malloc(1 << 18, 0);
    tfu_tensor *w = tfu_new_tensor_2d(wctx, TFU_F32, D, D), *cache = tfu_new_tensor_2d(wctx, TFU_F32, D, R);
    tfu_plan_options o = variant(1);
    tfu_plan_cache *pc = tfu_plan_cache_new(&o, 4);
    int step, hits = 0, ok = 1;
    tt_seed(5);
    tt_fill(w, -0.5f, 0.5f);
    tt_fill(cache, -1, 1);
    for (step = 0; step < 2 * R; step++) {
        tfu_tensor *x, *pos, *y, *sr, *s;
        tfu_graph *g;
        tfu_plan *p;
        int hit = 0;
        int64_t i, j;
        double want[16];
        tfu_reset(sctx);
        x = tfu_new_tensor_2d(sctx, TFU_F32, D, 1);
        pos = tfu_new_tensor_1d(sctx, TFU_I32, 1);
        tt_fill(x, -1, 1);
        ((int32_t *)pos->data)[0] = (int32_t)(step % R);
        y = tfu_mul_mat(sctx, w, x);
        sr = tfu_set_rows(sctx, cache, y, pos);
        s = tfu_sum_rows(sctx, tfu_mul_mat(sctx, sr, x));   /* reads the cache after the write */
        g = tfu_graph_build(sctx, s);
        p = g ? tfu_plan_cache_get(pc, g, &hit) : NULL;
        hits += hit;
        if (!p || tfu_plan_run(p) != TFU_OK) {
            ok = 0;
            break;
        }
        for (j = 0; j < D; j++) {
            double a = 0;
            for (i = 0; i < D; i++) a += (double)tfu_get_f32(w, i, j, 0, 0) * tfu_get_f32(x, i, 0, 0, 0);
            want[j] = a;
        }
        for (j = 0; j < D; j++)
            if (fabs(tfu_get_f32(cache, j, step % R, 0, 0) - want[j]) > 1e-5) ok = 0;
        {
            double t = 0;
            for (j = 0; j < R; j++) {
                double r = 0;
                for (i = 0; i < D; i++) r += (double)tfu_get_f32(cache, i, j, 0, 0) * tfu_get_f32(x, i, 0, 0, 0);
                t += r;
            }
            if (fabs(t - tfu_get_f32(s, 0, 0, 0, 0)) > 1e-4) ok = 0;
        }
    }
    TT_CHECK(ok, "rebuild each step: a result differs: %s", tfu_last_error_msg(sctx));
    TT_CHECK(hits == 2 * R - 1, "rebuild each step: %d cache hits of %d steps (want all but the first)", hits, (int)(2 * R));
    tfu_plan_cache_free(pc);
    tfu_free(sctx);
    tfu_free(wctx);
}

int main(void) {
    test_rebuild_each_step();
    test_contexts();
    test_pool();
    test_set_rows();
    test_set_rows_bad_index();
    test_set_rows_one_plan();
    return tt_summary();
}
