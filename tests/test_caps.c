/* test_caps.c - backend capabilities decide which groups the one fusion pass
   forms: the same graphs compiled with less than the CPU's capabilities
   give the same answers with only the allowed groups, and capabilities the
   CPU does not have are refused. */
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include "tfu_test.h"

/* y = rms_norm(x) * w + r; ffn = swiglu(gate x, up x) with f16 weights */
static tfu_graph *build(tfu_context *ctx, tfu_tensor **y, tfu_tensor **ffn) {
    tfu_tensor *x = tfu_new_tensor_2d(ctx, TFU_F32, 64, 5), *w = tfu_new_tensor_1d(ctx, TFU_F32, 64);
    tfu_tensor *r = tfu_new_tensor_2d(ctx, TFU_F32, 64, 5);
    tfu_tensor *wg = tfu_new_tensor_2d(ctx, TFU_F16, 64, 24), *wu = tfu_new_tensor_2d(ctx, TFU_F16, 64, 24);
    tfu_graph *g = tfu_graph_new(ctx, 64);
    tt_fill(x, -2, 2); tt_fill(w, 0.5f, 1.5f); tt_fill(r, -1, 1); tt_fill(wg, -0.3f, 0.3f); tt_fill(wu, -0.3f, 0.3f);
    *y = tfu_add(ctx, tfu_mul(ctx, tfu_rms_norm(ctx, x, 1e-6f), w), r);
    *ffn = tfu_swiglu_split(ctx, tfu_mul_mat(ctx, wg, *y), tfu_mul_mat(ctx, wu, *y));
    if (tfu_graph_build_expand(g, *ffn) != TFU_OK) return NULL;
    return g;
}

static int max_ops(const tfu_plan *p, tfu_group_kind kind) {
    int gi, m = 0;
    for (gi = 0; gi < tfu_plan_n_groups(p); gi++)
        if (tfu_plan_group_kind(p, gi) == kind && tfu_plan_group_n_nodes(p, gi) > m) m = tfu_plan_group_n_nodes(p, gi);
    return m;
}

int main(void) {
    tfu_context *ca = tfu_init_malloc(1 << 22, 0), *cb = tfu_init_malloc(1 << 22, 0);
    tfu_tensor *ya, *fa, *yb, *fb;
    tfu_graph *ga, *gb;
    double *ref;
    int variant;
    tt_seed(7);
    ga = build(ca, &ya, &fa);
    tt_seed(7);
    gb = build(cb, &yb, &fb);
    TT_CHECK(ga && gb, "build: %s", tfu_last_error_msg(ca));
    if (!ga || !gb) return tt_summary();
    TT_CHECK(tfu_graph_compute_ref(ga) == TFU_OK, "reference");
    {
        float *o = tt_copy_out(fa);
        int64_t i, n = tfu_nelements(fa);
        ref = (double *)malloc((size_t)n * sizeof *ref);
        for (i = 0; i < n; i++) ref[i] = o[i];
        free(o);
    }
    for (variant = 0; variant < 5; variant++) {
        tfu_backend_caps c = tfu_cpu_caps();
        tfu_plan_options o = tfu_plan_default_options();
        tfu_plan *p;
        const char *what[] = { "cpu", "no row fusion", "no fusion at all", "one product per group", "no f16 operands in matmul groups" };
        if (variant == 1) c.fuse_kinds &= ~(1u << TFU_GROUP_ROW);
        if (variant == 2) c.fuse_kinds = 0;
        if (variant == 3) c.max_products = 1;
        if (variant == 4) c.operand_types[TFU_GROUP_MATMUL] &= ~(1u << TFU_F16);
        o.caps = &c;
        p = tfu_plan_compile(gb, &o);
        if (variant == 4) {
            TT_CHECK(!p && tfu_last_error(cb) == TFU_ERR_TYPE, "%s: want TFU_ERR_TYPE, got %s", what[variant], tfu_last_error_msg(cb));
            tfu_clear_error(cb);
            tfu_plan_free(p);
            continue;
        }
        TT_CHECK(p != NULL, "%s: compile: %s", what[variant], tfu_last_error_msg(cb));
        if (!p) continue;
        tt_poison(fb->data, tfu_nbytes(fb));
        TT_CHECK(tfu_plan_run(p) == TFU_OK, "%s: run", what[variant]);
        TT_CHECK(tt_max_err(fb, ref) < 1e-5, "%s: result differs from the reference (%g)", what[variant], tt_max_err(fb, ref));
        if (variant == 0) {
            TT_CHECK(max_ops(p, TFU_GROUP_ROW) == 3, "cpu: rms_norm, mul, add in one row group (%d)", max_ops(p, TFU_GROUP_ROW));
            TT_CHECK(max_ops(p, TFU_GROUP_MATMUL) == 3, "cpu: two products and the glu in one group (%d)", max_ops(p, TFU_GROUP_MATMUL));
        }
        if (variant == 1) {
            TT_CHECK(max_ops(p, TFU_GROUP_ROW) == 1, "no row fusion: a row group of %d ops", max_ops(p, TFU_GROUP_ROW));
            TT_CHECK(max_ops(p, TFU_GROUP_ELTWISE) == 2, "no row fusion: mul and add still fuse (%d)", max_ops(p, TFU_GROUP_ELTWISE));
        }
        if (variant == 2) TT_CHECK(tfu_plan_get_stats(p).n_nodes_fused == 0, "no fusion: %d nodes fused", tfu_plan_get_stats(p).n_nodes_fused);
        if (variant == 3) {
            TT_CHECK(max_ops(p, TFU_GROUP_MATMUL) == 2, "one product per group: %d ops in a matmul group", max_ops(p, TFU_GROUP_MATMUL));
        }
        tfu_plan_free(p);
    }
    {   /* more than the CPU has */
        tfu_backend_caps c = tfu_cpu_caps();
        tfu_plan_options o = tfu_plan_default_options();
        c.max_products = 99;
        o.caps = &c;
        TT_CHECK(tfu_plan_compile(gb, &o) == NULL && tfu_last_error(cb) == TFU_ERR_INVALID_ARG, "caps beyond the CPU accepted");
        tfu_clear_error(cb);
        c = tfu_cpu_caps();
        c.max_row = 32;   /* rows of 64 do not fit */
        TT_CHECK(tfu_plan_compile(gb, &o) == NULL && tfu_last_error(cb) == TFU_ERR_INVALID_ARG, "rows longer than max_row accepted");
        tfu_clear_error(cb);
    }
    free(ref);
    tfu_free(ca);
    tfu_free(cb);
    return tt_summary();
}
