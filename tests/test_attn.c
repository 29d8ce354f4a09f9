/* test_attn.c - the fused attention group (TFU_GROUP_ATTENTION).

   out = mul_mat(V, soft_max_ext(mul_mat(K, Q), mask, scale)) over shapes
   that exercise every path of the kernel: several key blocks (the skips
   work per 64 keys), odd head dims, grouped heads (K and V shared by
   several query heads, by different ratios), a batch dimension K
   broadcasts over, f16 and bf16 K and V, V as a permuted view (the llama
   layout) and contiguous, Q gathered from a transposed view, masks of
   every kind (none, causal, a valid length, random f32 or f16 with -inf
   blocks, per head with more rows than queries), and IEEE cases: NaN or
   inf in K, Q or V where the mask hides them (the reference's NaN must
   survive the skips), a row masked everywhere, scores that overflow.

   Every case: the plan must hold one ATTENTION group of the three nodes
   with the scores and probabilities elided, and its result must match the
   reference executor (double) with NaN exactly where the reference has
   NaN; then the same graph with 2 threads, the scalar kernels and fusion
   off. Negative cases: the probabilities kept, the scores used twice, a
   backend without the kind: no ATTENTION group, same results. */
#define _POSIX_C_SOURCE 200809L
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include "tfu_test.h"

enum { M_NONE, M_CAUSAL, M_VALID, M_RAND, M_RAND16, M_HEAD };
enum { SP_NONE, SP_K_NAN, SP_V_INF, SP_Q_NAN, SP_ROW_MASKED, SP_HUGE, SP_V_NAN_SEEN };

typedef struct acase {
    const char *name;
    int hd, hdv, nkv, nq, nh, nhk, nhv, n3, n3k;
    tfu_type kt, vt;
    int vperm, qperm, mask, special;
    float scale;
} acase;

static const acase cases[] = {
    /* name                      hd hdv nkv  nq nh nhk nhv n3 n3k  kt        vt        vperm qperm mask      special       scale */
    { "llama GQA causal",        16, 16,   7,  7, 4, 2, 2, 1, 1, TFU_F32,  TFU_F32,  1, 0, M_CAUSAL, SP_NONE,       0.25f },
    { "prefill 150 causal",      24, 24, 150, 150, 2, 2, 2, 1, 1, TFU_F32,  TFU_F32,  1, 0, M_CAUSAL, SP_NONE,      0.2f },
    { "prefill 200 GQA 8:1",     32, 32, 200, 67, 8, 1, 1, 1, 1, TFU_F32,  TFU_F32,  1, 0, M_CAUSAL, SP_NONE,       0.17f },
    { "decode valid 70 of 200",  32, 32, 200,  1, 4, 4, 4, 1, 1, TFU_F32,  TFU_F32,  1, 0, M_VALID,  SP_NONE,       0.18f },
    { "decode GQA f16 cache",    16, 16, 130,  1, 6, 2, 2, 1, 1, TFU_F16,  TFU_F16,  1, 0, M_VALID,  SP_NONE,       0.25f },
    { "odd dims, K 1 head V 3",  13, 11,  70,  5, 3, 1, 3, 1, 1, TFU_F16,  TFU_BF16, 0, 0, M_RAND,   SP_NONE,       0.5f },
    { "f16 mask, per head",       8,  9,  66,  4, 4, 2, 4, 1, 1, TFU_F32,  TFU_F32,  0, 1, M_HEAD,   SP_NONE,       1.0f },
    { "f16 mask -inf blocks",    20, 20, 140,  9, 2, 1, 2, 1, 1, TFU_BF16, TFU_F32,  1, 0, M_RAND16, SP_NONE,       0.3f },
    { "batch 2, K broadcast",    16, 12,  90,  3, 2, 2, 1, 2, 1, TFU_F32,  TFU_F32,  1, 1, M_VALID,  SP_NONE,       0.25f },
    { "no mask",                 12, 16,  80,  6, 2, 1, 1, 1, 1, TFU_F32,  TFU_F32,  0, 0, M_NONE,   SP_NONE,       1.0f },
    { "NaN in K, masked",        16, 16, 150,  1, 2, 2, 2, 1, 1, TFU_F32,  TFU_F32,  1, 0, M_VALID,  SP_K_NAN,      0.25f },
    { "inf in V, masked",        16, 16, 150,  1, 2, 2, 2, 1, 1, TFU_F32,  TFU_F32,  1, 0, M_VALID,  SP_V_INF,      0.25f },
    { "NaN in V, attended",      16, 16, 150,  3, 2, 2, 2, 1, 1, TFU_F32,  TFU_F32,  1, 0, M_VALID,  SP_V_NAN_SEEN, 0.25f },
    { "NaN in Q",                16, 16, 150,  4, 2, 1, 1, 1, 1, TFU_F32,  TFU_F32,  1, 0, M_CAUSAL, SP_Q_NAN,      0.25f },
    { "NaN in Q, prefill",       16, 16, 150, 150, 2, 1, 1, 1, 1, TFU_F32,  TFU_F32,  1, 0, M_CAUSAL, SP_Q_NAN,      0.25f },
    { "a row masked everywhere", 16, 16, 100,  4, 2, 2, 2, 1, 1, TFU_F32,  TFU_F32,  0, 0, M_RAND,   SP_ROW_MASKED, 0.25f },
    { "huge scores",             16, 16, 100,  3, 2, 2, 2, 1, 1, TFU_F32,  TFU_F32,  1, 0, M_VALID,  SP_HUGE,       1.0f },
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

enum { NEG_NONE, NEG_KEEP_P, NEG_S_TWICE, NEG_CAPS };

typedef struct built { tfu_context *ctx; tfu_graph *g; tfu_tensor *s, *p, *out, *extra; } built;

/* a leaf of type ty filled from [lo, hi) */
static tfu_tensor *leaf4(tfu_context *ctx, tfu_type ty, int64_t n0, int64_t n1, int64_t n2, int64_t n3, float lo, float hi) {
    tfu_tensor *t = tfu_new_tensor_4d(ctx, ty, n0, n1, n2, n3);
    if (t) tt_fill(t, lo, hi);
    return t;
}

/* the valid length of M_VALID: keys [0, 70 or nkv/2] */
static int valid_len(const acase *c) { return c->nkv > 70 ? 70 : c->nkv / 2 + 1; }

static int fill_mask(const acase *c, tfu_tensor *m) {
    int64_t i0, i1, i2;
    for (i2 = 0; i2 < m->ne[2]; i2++)
        for (i1 = 0; i1 < m->ne[1]; i1++)
            for (i0 = 0; i0 < m->ne[0]; i0++) {
                float v = 0.0f;
                if (c->mask == M_CAUSAL) v = i0 <= (c->nkv - c->nq) + i1 ? 0.0f : -INFINITY;
                else if (c->mask == M_VALID) v = i0 < valid_len(c) + i1 ? 0.0f : -INFINITY;
                else {
                    /* random values, with -inf on whole 64-key blocks for some rows and scattered */
                    v = tt_rand(-2.0f, 2.0f);
                    if ((i0 / 64) % 2 == 1 && (i1 + i2) % 3 != 2) v = -INFINITY;
                    if (tt_int(0, 9) == 0) v = -INFINITY;
                }
                if (c->special == SP_ROW_MASKED && i1 == 1) v = -INFINITY;
                tfu_set_f32(m, i0, i1, i2, 0, v);
            }
    return 0;
}

/* K at a masked key (beyond the valid length: index nkv - 1), V alike, Q
   anywhere, huge Q and K so the scores overflow f32 */
static void specials(const acase *c, tfu_tensor *k, tfu_tensor *q, tfu_tensor *vleaf, int vperm) {
    switch (c->special) {
    case SP_K_NAN: tfu_set_f32(k, 3, c->nkv - 1, 0, 0, NAN); break;
    case SP_V_INF:
    case SP_V_NAN_SEEN: {
        int64_t key = c->special == SP_V_INF ? c->nkv - 1 : 5;
        float v = c->special == SP_V_INF ? INFINITY : NAN;
        if (vperm) tfu_set_f32(vleaf, 2, key, 0, 0, v);   /* leaf hdv x nkv */
        else tfu_set_f32(vleaf, key, 2, 0, 0, v);         /* leaf nkv x hdv */
    } break;
    case SP_Q_NAN: tfu_set_f32(q, 1, 2, 0, 0, NAN); break;
    case SP_HUGE: {
        int64_t i;
        for (i = 0; i < c->hd; i++) {
            tfu_set_f32(k, i, 4, 0, 0, 3e19f);
            tfu_set_f32(q, i, 1, 0, 0, 2e19f);
        }
    } break;
    default: break;
    }
}

static int build(built *b, const acase *c, int neg) {
    tfu_tensor *q, *k, *v, *vleaf, *mask = NULL, *qleaf;
    memset(b, 0, sizeof *b);
    tt_seed(1234);
    if (!(b->ctx = tfu_init_malloc((size_t)64 << 20, 0))) return -1;
    if (!(b->g = tfu_graph_new(b->ctx, 256))) return -1;
    if (c->qperm) {   /* Q: hd x nq x nh read through a transposed view (nb0 != 4) */
        if (!(qleaf = leaf4(b->ctx, TFU_F32, c->nq, c->hd, c->nh, c->n3, -1, 1))) return -1;
        if (!(q = tfu_permute(b->ctx, qleaf, 1, 0, 2, 3))) return -1;
    } else if (!(q = qleaf = leaf4(b->ctx, TFU_F32, c->hd, c->nq, c->nh, c->n3, -1, 1))) return -1;
    if (!(k = leaf4(b->ctx, c->kt, c->hd, c->nkv, c->nhk, c->n3k, -1, 1))) return -1;
    if (c->vperm) {   /* the llama layout: a leaf hdv x nkv per head, viewed nkv x hdv */
        if (!(vleaf = leaf4(b->ctx, c->vt, c->hdv, c->nkv, c->nhv, c->n3k, -1, 1))) return -1;
        if (!(v = tfu_permute(b->ctx, vleaf, 1, 0, 2, 3))) return -1;
    } else if (!(v = vleaf = leaf4(b->ctx, c->vt, c->nkv, c->hdv, c->nhv, c->n3k, -1, 1))) return -1;
    if (c->mask != M_NONE) {
        int64_t rows = c->mask == M_HEAD ? c->nq + 2 : c->nq, heads = c->mask == M_HEAD ? c->nh : 1;
        tfu_type mt = c->mask == M_RAND16 || c->mask == M_HEAD ? TFU_F16 : TFU_F32;
        if (!(mask = tfu_new_tensor_4d(b->ctx, mt, c->nkv, rows, heads, 1))) return -1;
        fill_mask(c, mask);
    }
    specials(c, k, qleaf, vleaf, c->vperm);
    if (!(b->s = tfu_mul_mat(b->ctx, k, q))) return -1;
    if (!(b->p = tfu_soft_max_ext(b->ctx, b->s, mask, c->scale))) return -1;
    if (!(b->out = tfu_mul_mat(b->ctx, v, b->p))) return -1;
    tfu_set_output(b->out);
    if (neg == NEG_KEEP_P) tfu_set_keep(b->p);
    if (neg == NEG_S_TWICE) {
        if (!(b->extra = tfu_sum_rows(b->ctx, b->s))) return -1;
        tfu_set_output(b->extra);
        if (tfu_graph_build_expand(b->g, b->extra) != TFU_OK) return -1;
    }
    return tfu_graph_build_expand(b->g, b->out) == TFU_OK ? 0 : -1;
}

static void drop(built *b) {
    if (b->ctx) tfu_free(b->ctx);
    memset(b, 0, sizeof *b);
}

/* t against r (both computed), NaN where r has NaN, a finite value within
   tol * max(1, |r|) */
static int64_t mismatches(const tfu_tensor *t, const tfu_tensor *r, double tol, int64_t *first, double *worst) {
    int64_t i0, i1, i2, i3, k = 0, bad = 0;
    *first = -1;
    *worst = 0;
    for (i3 = 0; i3 < t->ne[3]; i3++)
        for (i2 = 0; i2 < t->ne[2]; i2++)
            for (i1 = 0; i1 < t->ne[1]; i1++)
                for (i0 = 0; i0 < t->ne[0]; i0++, k++) {
                    double got = tfu_get_f32(t, i0, i1, i2, i3), want = tfu_get_f32(r, i0, i1, i2, i3);
                    double scale = fabs(want) > 1 ? fabs(want) : 1;
                    if (want == want && got == got && !isinf(want) && fabs(got - want) / scale > *worst) *worst = fabs(got - want) / scale;
                    if (tt_ieee_same(got, want, tol * scale)) continue;
                    if (*first < 0) *first = k;
                    bad++;
                }
    return bad;
}

static int n_attention_groups(const tfu_plan *p) { return tfu_plan_get_stats(p).n_groups_kind[TFU_GROUP_ATTENTION]; }

/* the 1-thread result of the case being run: 2 threads must give it bit for bit */
static float *g_one_thread;

/* one case, one set of options: plan, poison, run, compare, check grouping */
static void run_one(const acase *c, int neg, const char *variant, const tfu_plan_options *o, const built *ref, int want_fused) {
    built b;
    tfu_plan *p;
    tfu_result r;
    int64_t bad, first;
    double worst;
    if (build(&b, c, neg) != 0) {
        TT_CHECK(0, "%s (%s): build: %s", c->name, variant, tfu_last_error_msg(b.ctx));
        drop(&b);
        return;
    }
    p = tfu_plan_compile(b.g, o);
    TT_CHECK(p != NULL, "%s (%s): compile: %s", c->name, variant, tfu_last_error_msg(b.ctx));
    if (!p) {
        drop(&b);
        return;
    }
    if (want_fused) {
        int g = tfu_plan_group_of(p, b.out);
        TT_CHECK(n_attention_groups(p) == 1 && tfu_plan_group_kind(p, g) == TFU_GROUP_ATTENTION && tfu_plan_group_n_nodes(p, g) == 3 &&
                     tfu_plan_group_of(p, b.s) == g && tfu_plan_group_of(p, b.p) == g,
                 "%s (%s): not one attention group of S, P, out (%d attention groups, kind %d)", c->name, variant, n_attention_groups(p),
                 (int)tfu_plan_group_kind(p, g));
        TT_CHECK(!tfu_plan_is_materialized(p, b.s) && !tfu_plan_is_materialized(p, b.p), "%s (%s): scores or probabilities materialised",
                 c->name, variant);
        TT_CHECK(tfu_plan_get_stats(p).arena_bytes < tfu_plan_get_stats(p).arena_bytes_unfused, "%s (%s): arena %zu not below unfused %zu",
                 c->name, variant, tfu_plan_get_stats(p).arena_bytes, tfu_plan_get_stats(p).arena_bytes_unfused);
    } else {
        TT_CHECK(n_attention_groups(p) == 0, "%s (%s): %d attention groups, want none", c->name, variant, n_attention_groups(p));
    }
    tt_poison(b.out->data, tfu_nbytes(b.out));
    r = tfu_plan_run(p);
    TT_CHECK(r == TFU_OK, "%s (%s): run: %s", c->name, variant, tfu_result_str(r));
    bad = mismatches(b.out, ref->out, 2e-5 * (1 + sqrt((double)c->hd)), &first, &worst);
    TT_CHECK(bad == 0, "%s (%s): %lld of %lld outputs differ from the reference, first at %lld: %.9g vs %.9g (worst finite %.3g)",
             c->name, variant, (long long)bad, (long long)tfu_nelements(b.out), (long long)first,
             first >= 0 ? ((const float *)b.out->data)[first] : 0.0, first >= 0 ? ((const float *)ref->out->data)[first] : 0.0, worst);
    if (tt_verbose) printf("  %-26s %-12s worst %.3g\n", c->name, variant, worst);
    if (o->n_threads <= 1 && !o->no_simd && !o->no_fusion) {
        free(g_one_thread);
        g_one_thread = (float *)malloc(tfu_nbytes(b.out));
        if (g_one_thread) memcpy(g_one_thread, b.out->data, tfu_nbytes(b.out));
    } else if (o->n_threads > 1 && g_one_thread) {
        TT_CHECK(memcmp(g_one_thread, b.out->data, tfu_nbytes(b.out)) == 0, "%s (%s): not bit for bit the 1-thread result", c->name,
                 variant);
    }
    if (b.extra) {
        bad = mismatches(b.extra, ref->extra, 1e-5 * (1 + sqrt((double)c->nkv)), &first, &worst);
        TT_CHECK(bad == 0, "%s (%s): sum_rows of S differs at %lld", c->name, variant, (long long)first);
    }
    tfu_plan_free(p);
    drop(&b);
}

static int nan_count(const tfu_tensor *t) {
    int64_t i, n = tfu_nelements(t), k = 0;
    for (i = 0; i < n; i++) k += ((const float *)t->data)[i] != ((const float *)t->data)[i];
    return (int)k;
}

static void run_case(const acase *c, int neg) {
    built ref;
    tfu_plan_options o = tfu_plan_default_options();
    tfu_backend_caps caps = tfu_cpu_caps();
    int fused = neg == NEG_NONE;
    if (build(&ref, c, neg) != 0 || tfu_graph_compute_ref(ref.g) != TFU_OK) {
        TT_CHECK(0, "%s: reference: %s", c->name, tfu_last_error_msg(ref.ctx));
        drop(&ref);
        return;
    }
    /* the IEEE cases must reach the output: else they test nothing */
    if (c->special == SP_K_NAN || c->special == SP_V_INF || c->special == SP_Q_NAN || c->special == SP_ROW_MASKED ||
        c->special == SP_V_NAN_SEEN || c->special == SP_HUGE)
        TT_CHECK(nan_count(ref.out) > 0, "%s: the reference has no NaN", c->name);
    if (neg == NEG_CAPS) {
        caps.fuse_kinds &= ~(1u << TFU_GROUP_ATTENTION);
        o.caps = &caps;
    }
    run_one(c, neg, "1 thread", &o, &ref, fused);
    o.n_threads = 2;
    run_one(c, neg, "2 threads", &o, &ref, fused);
    o.n_threads = 1;
    o.no_simd = 1;
    run_one(c, neg, "scalar", &o, &ref, fused);
    o.no_simd = 0;
    o.no_fusion = 1;
    run_one(c, neg, "no fusion", &o, &ref, 0);
    free(g_one_thread);
    g_one_thread = NULL;
    drop(&ref);
}

int main(int argc, char **argv) {
    int i;
    setvbuf(stdout, NULL, _IOLBF, 0);
    tt_verbose = tt_arg_int(argc, argv, "--v", 0);
    for (i = 0; i < N_CASES; i++) run_case(&cases[i], NEG_NONE);
    run_case(&cases[0], NEG_KEEP_P);
    run_case(&cases[1], NEG_S_TWICE);
    run_case(&cases[3], NEG_CAPS);
    return tt_summary();
}
