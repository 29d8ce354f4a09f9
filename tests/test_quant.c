/* test_quant.c - quantized weights (Q8_0, Q4_0): quantize / dequantize and
   their documented bounds, matrix products with a quantized a (N = 1, 2..5,
   6+, odd M, K = 32, 64, 4128, batched) and their fused epilogues, get_rows,
   blocks with d = 0, NaN and inf scales, and every builder that must refuse a
   quantized operand. Products are checked against a double reference over
   the dequantized weights, outputs poisoned, 1 and 2 threads, SIMD and
   scalar (no_simd). The int8 fast path (quant_activations) against a double
   reference over the same int8 activations, with epilogues, NaN / inf in b
   and in weight scales, two products in one group, runs after b changed. */
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include "tests/tfu_test.h"

static const tfu_type QT[2] = { TFU_Q8_0, TFU_Q4_0 };

/* a quantized K x M x ne2 leaf from random values in [-1, 1] */
static tfu_tensor *qleaf(tfu_context *ctx, tfu_type ty, int64_t K, int64_t M, int64_t ne2) {
    int64_t ne[3], r;
    tfu_tensor *t;
    float *row = (float *)malloc((size_t)K * sizeof(float));
    ne[0] = K;
    ne[1] = M;
    ne[2] = ne2;
    t = tfu_new_tensor(ctx, ty, ne2 > 1 ? 3 : 2, ne);
    if (!t || !row) {
        free(row);
        return NULL;
    }
    for (r = 0; r < M * ne2; r++) {
        int64_t k;
        size_t n;
        for (k = 0; k < K; k++) row[k] = tt_rand(-1.0f, 1.0f);
        n = ty == TFU_Q8_0 ? tfu_quantize_q8_0(row, (char *)t->data + (size_t)r * t->nb[1], K)
                           : tfu_quantize_q4_0(row, (char *)t->data + (size_t)r * t->nb[1], K);
        if (n != t->nb[1]) TT_CHECK(0, "quantize wrote %zu bytes, row is %zu", n, t->nb[1]);
    }
    free(row);
    return t;
}

static tfu_tensor *fleaf(tfu_context *ctx, int64_t n0, int64_t n1, int64_t n2) {
    int64_t ne[3];
    tfu_tensor *t;
    ne[0] = n0;
    ne[1] = n1;
    ne[2] = n2;
    t = tfu_new_tensor(ctx, TFU_F32, 3, ne);
    if (t) tt_fill(t, -1.0f, 1.0f);
    return t;
}

/* out[n][m] = sum_k a[m][k] b[n][k] in double over the dequantized a, and
   the sum of |a b| (the scale of the rounding error) */
static void ref_mm(const tfu_tensor *a, const tfu_tensor *b, double *out, double *mag) {
    int64_t K = a->ne[0], M = a->ne[1], N = b->ne[1], B2 = b->ne[2], r2 = b->ne[2] / a->ne[2], m, n, i2, k;
    float *w = (float *)malloc((size_t)K * sizeof(float));
    for (i2 = 0; i2 < B2; i2++)
        for (m = 0; m < M; m++) {
            tfu_dequantize_row(a->type, (const char *)a->data + (size_t)m * a->nb[1] + (size_t)(i2 / r2) * a->nb[2], w, K);
            for (n = 0; n < N; n++) {
                double s = 0, sa = 0;
                for (k = 0; k < K; k++) {
                    double p = (double)w[k] * (double)tfu_get_f32(b, k, n, i2, 0);
                    s += p;
                    sa += fabs(p);
                }
                out[(i2 * N + n) * M + m] = s;
                mag[(i2 * N + n) * M + m] = sa;
            }
        }
    free(w);
}

/* compiles and runs g for result y with the options, poisoned first; 0: ok,
   the plan (y's memory) in *pout, freed by the caller */
static int run_plan(tfu_graph *g, tfu_tensor *y, int n_threads, int no_simd, tfu_plan **pout) {
    tfu_plan_options o = tfu_plan_default_options();
    tfu_plan *p;
    tfu_result r;
    o.n_threads = n_threads;
    o.no_simd = no_simd;
    p = tfu_plan_compile(g, &o);
    if (!p) {
        TT_CHECK(0, "compile: %s", tfu_last_error_msg(tfu_graph_context(g)));
        return -1;
    }
    if (y->data) tt_poison(y->data, tfu_nbytes(y));
    r = tfu_plan_run(p);
    TT_CHECK(r == TFU_OK, "run: %s", tfu_result_str(r));
    *pout = p;
    return r == TFU_OK ? 0 : -1;
}

/* |y - want| <= tol * mag everywhere (NaN fails) */
static int close_to(const tfu_tensor *y, const double *want, const double *mag, double tol) {
    int64_t i0, i1, i2, k = 0, bad = 0;
    for (i2 = 0; i2 < y->ne[2]; i2++)
        for (i1 = 0; i1 < y->ne[1]; i1++)
            for (i0 = 0; i0 < y->ne[0]; i0++, k++) {
                double v = tfu_get_f32(y, i0, i1, i2, 0);
                if (!(fabs(v - want[k]) <= tol * mag[k] + 1e-30)) {
                    if (bad < 3) printf("  [%lld,%lld,%lld] got %.9g want %.9g\n", (long long)i0, (long long)i1, (long long)i2, v, want[k]);
                    bad++;
                }
            }
    return bad == 0;
}

/* --- quantize / dequantize -------------------------------------------------- */
static void test_roundtrip(void) {
    enum { N = 32 * 64 };
    float x[N], y[N];
    unsigned char q8[N / 32 * 34], q4[N / 32 * 18];
    int b, j, bad8 = 0, bad4 = 0, bad4half = 0;
    for (j = 0; j < N; j++) x[j] = tt_rand(-3.0f, 3.0f) * (j / 32 % 7 == 3 ? 1e-3f : j / 32 % 7 == 5 ? 1e3f : 1.0f);
    TT_CHECK(tfu_quantize_q8_0(x, q8, N) == sizeof q8, "q8_0: bytes written");
    TT_CHECK(tfu_quantize_q4_0(x, q4, N) == sizeof q4, "q4_0: bytes written");
    TT_CHECK(tfu_dequantize_row(TFU_Q8_0, q8, y, N) == TFU_OK, "q8_0: dequantize");
    for (b = 0; b < N / 32; b++) {
        uint16_t h;
        float d;
        memcpy(&h, q8 + b * 34, 2);
        d = tfu_f16_to_f32(h);
        for (j = 0; j < 32; j++) {
            float want = d * (float)(signed char)q8[b * 34 + 2 + j];
            if (y[b * 32 + j] != want) bad8++;
            if (!(fabs((double)x[b * 32 + j] - (double)y[b * 32 + j]) <= 0.5 * d * (1 + 1e-6))) bad8++;
        }
    }
    TT_CHECK(bad8 == 0, "q8_0: %d values off d/2 or not d*q", bad8);
    TT_CHECK(tfu_dequantize_row(TFU_Q4_0, q4, y, N) == TFU_OK, "q4_0: dequantize");
    for (b = 0; b < N / 32; b++) {
        uint16_t h;
        double d;
        memcpy(&h, q4 + b * 18, 2);
        d = fabs((double)tfu_f16_to_f32(h));
        for (j = 0; j < 32; j++) {
            double e = fabs((double)x[b * 32 + j] - (double)y[b * 32 + j]);
            int q = j < 16 ? q4[b * 18 + 2 + j] & 15 : q4[b * 18 + 2 + j - 16] >> 4;
            if (!(e <= d * (1 + 1e-6))) bad4++;
            if (q < 15 && !(e <= 0.5 * d * (1 + 1e-6))) bad4half++;
        }
    }
    TT_CHECK(bad4 == 0 && bad4half == 0, "q4_0: %d values off |d|, %d off |d|/2 below q = 15", bad4, bad4half);
    /* bad arguments: nothing written */
    memset(q8, 0x5A, sizeof q8);
    TT_CHECK(tfu_quantize_q8_0(x, q8, 33) == 0 && tfu_quantize_q8_0(x, q8, 0) == 0 && tfu_quantize_q8_0(NULL, q8, 32) == 0 &&
             tfu_quantize_q4_0(x, NULL, 32) == 0 && tfu_quantize_q4_0(x, q4, -32) == 0 && q8[0] == 0x5A, "quantize: bad n or NULL");
    TT_CHECK(tfu_dequantize_row(TFU_Q8_0, q8, y, 31) == TFU_ERR_INVALID_ARG && tfu_dequantize_row(TFU_I32, q8, y, 4) == TFU_ERR_TYPE &&
             tfu_dequantize_row((tfu_type)77, q8, y, 4) == TFU_ERR_TYPE && tfu_dequantize_row(TFU_Q4_0, NULL, y, 32) == TFU_ERR_NULL_ARG,
             "dequantize_row: errors");
    /* special blocks: zeros, NaN, inf, beyond an f16 scale */
    for (j = 0; j < 32; j++) x[j] = 0.0f;
    for (j = 32; j < 128; j++) x[j] = tt_rand(-1.0f, 1.0f);
    x[40] = NAN;
    x[70] = INFINITY;
    x[100] = -INFINITY;
    for (j = 128; j < 160; j++) x[j] = tt_rand(-1.0f, 1.0f) * 1e12f;
    for (b = 0; b < 2; b++) {
        int zero = 1, nan = 1, big = 1;
        if (b == 0) tfu_quantize_q8_0(x, q8, 160);
        else tfu_quantize_q4_0(x, q4, 160);
        tfu_dequantize_row(QT[b], b == 0 ? (const void *)q8 : (const void *)q4, y, 160);
        for (j = 0; j < 32; j++) if (y[j] != 0.0f) zero = 0;
        for (j = 32; j < 128; j++) if (y[j] == y[j]) nan = 0;
        for (j = 128; j < 160; j++) if (!(fabsf(y[j]) <= 65504.0f * 127.0f) || y[j] != y[j]) big = 0;
        TT_CHECK(zero && nan && big, "%s: zero block %d, non-finite blocks all NaN %d, huge block saturated finite %d",
                 tfu_type_name(QT[b]), zero, nan, big);
    }
}

/* --- tensors: sizes, strides, element access ------------------------------ */
static void test_tensor(void) {
    tfu_context *ctx = tfu_init_malloc(1 << 20, 0);
    tfu_tensor *q8 = tfu_new_tensor_3d(ctx, TFU_Q8_0, 64, 3, 2), *q4 = tfu_new_tensor_2d(ctx, TFU_Q4_0, 96, 5), *bad;
    float row[96], v;
    TT_CHECK(!strcmp(tfu_type_name(TFU_Q8_0), "q8_0") && !strcmp(tfu_type_name(TFU_Q4_0), "q4_0"), "type names");
    TT_CHECK(tfu_type_size(TFU_Q8_0) == 34 && tfu_type_size(TFU_Q4_0) == 18 && tfu_type_block_size(TFU_Q8_0) == 32 &&
             tfu_type_block_size(TFU_Q4_0) == 32 && tfu_type_block_size(TFU_F16) == 1 && tfu_type_block_size(TFU_TYPE_COUNT) == 0, "type sizes");
    TT_CHECK(q8 && q8->nb[0] == 34 && q8->nb[1] == 68 && q8->nb[2] == 204 && tfu_nbytes(q8) == 408 && tfu_is_contiguous(q8), "q8_0 strides");
    TT_CHECK(q4 && q4->nb[0] == 18 && q4->nb[1] == 54 && tfu_nbytes(q4) == 270 && tfu_is_contiguous(q4), "q4_0 strides");
    bad = tfu_new_tensor_2d(ctx, TFU_Q8_0, 48, 2);
    TT_CHECK(!bad && tfu_last_error(ctx) == TFU_ERR_SHAPE, "ne0 not a multiple of 32: %s", tfu_last_error_msg(ctx));
    tfu_clear_error(ctx);
    if (q4) {
        int j;
        for (j = 0; j < 96; j++) row[j] = tt_rand(-2.0f, 2.0f);
        tfu_quantize_q4_0(row, (char *)q4->data + q4->nb[1] * 4, 96);
        tfu_dequantize_row(TFU_Q4_0, (char *)q4->data + q4->nb[1] * 4, row, 96);
        TT_CHECK(tfu_get_f32(q4, 77, 4, 0, 0) == row[77] && tfu_get_f32(q4, 5, 4, 0, 0) == row[5], "get_f32 on q4_0");
        v = tfu_get_f32(q4, 96, 4, 0, 0);
        TT_CHECK(v != v, "get_f32 out of range");
        tfu_set_f32(q4, 77, 4, 0, 0, 123.0f);
        TT_CHECK(tfu_get_f32(q4, 77, 4, 0, 0) == row[77], "set_f32 writes nothing to q4_0");
    }
    tfu_free(ctx);
}

/* --- products ------------------------------------------------------------------ */
static void case_mm(tfu_type ty, int64_t K, int64_t M, int64_t N, int64_t A2, int64_t B2) {
    tfu_context *ctx = tfu_init_malloc((size_t)64 << 20, 0);
    tfu_tensor *a = qleaf(ctx, ty, K, M, A2), *b = fleaf(ctx, K, N, B2), *y;
    tfu_graph *g;
    double *want, *mag;
    int th, ns;
    y = tfu_mul_mat(ctx, a, b);
    g = tfu_graph_build(ctx, y);
    if (!g) {
        TT_CHECK(0, "mm %s: build: %s", tfu_type_name(ty), tfu_last_error_msg(ctx));
        tfu_free(ctx);
        return;
    }
    want = (double *)malloc((size_t)(M * N * B2) * sizeof(double));
    mag = (double *)malloc((size_t)(M * N * B2) * sizeof(double));
    ref_mm(a, b, want, mag);
    for (th = 1; th <= 2; th++)
        for (ns = 0; ns <= 1; ns++) {
            tfu_plan *p = NULL;
            if (run_plan(g, y, th, ns, &p) == 0)
                TT_CHECK(close_to(y, want, mag, 2e-6), "mm %s K %lld M %lld N %lld batch %lld/%lld threads %d no_simd %d", tfu_type_name(ty),
                         (long long)K, (long long)M, (long long)N, (long long)A2, (long long)B2, th, ns);
            tfu_plan_free(p);
        }
    TT_CHECK(tfu_graph_compute_ref(g) == TFU_OK && close_to(y, want, mag, 1e-7), "mm %s K %lld M %lld N %lld: the reference executor",
             tfu_type_name(ty), (long long)K, (long long)M, (long long)N);
    free(want);
    free(mag);
    tfu_free(ctx);
}

static void test_products(void) {
    static const int64_t Ns[] = { 1, 2, 3, 4, 5, 6, 7, 13, 130 };
    static const int64_t Ms[] = { 1, 3, 8, 37, 70 };
    int t, i;
    for (t = 0; t < 2; t++) {
        for (i = 0; i < (int)(sizeof Ns / sizeof Ns[0]); i++) case_mm(QT[t], 64, 37, Ns[i], 1, 1);
        for (i = 0; i < (int)(sizeof Ms / sizeof Ms[0]); i++) {
            case_mm(QT[t], 32, Ms[i], 1, 1, 1);
            case_mm(QT[t], 96, Ms[i], 9, 1, 1);
        }
        case_mm(QT[t], 4128, 19, 1, 1, 1);
        case_mm(QT[t], 4128, 17, 3, 1, 1);
        case_mm(QT[t], 4128, 33, 7, 1, 1);
        case_mm(QT[t], 160, 21, 1, 2, 4);   /* a's batches broadcast over b's */
        case_mm(QT[t], 160, 21, 8, 2, 2);
    }
}

/* fused epilogues: bias, silu, GLU of two quantized products */
static void test_epilogues(void) {
    int t, kind;
    for (t = 0; t < 2; t++)
        for (kind = 0; kind < 3; kind++) {
            int64_t K = 128, M = 45, N = kind == 2 ? 7 : 1 + 5 * kind, m, n;
            tfu_context *ctx = tfu_init_malloc((size_t)16 << 20, 0);
            tfu_tensor *a = qleaf(ctx, QT[t], K, M, 1), *a2 = qleaf(ctx, QT[t], K, M, 1), *b = fleaf(ctx, K, N, 1), *bias = fleaf(ctx, M, 1, 1);
            tfu_tensor *y = NULL;
            tfu_graph *g;
            tfu_plan *p = NULL;
            double *w1 = (double *)malloc((size_t)(M * N) * sizeof(double)), *w2 = (double *)malloc((size_t)(M * N) * sizeof(double));
            double *m1 = (double *)malloc((size_t)(M * N) * sizeof(double)), *m2 = (double *)malloc((size_t)(M * N) * sizeof(double));
            ref_mm(a, b, w1, m1);
            ref_mm(a2, b, w2, m2);
            if (kind == 0) y = tfu_add(ctx, tfu_mul_mat(ctx, a, b), bias);
            if (kind == 1) y = tfu_silu(ctx, tfu_mul_mat(ctx, a, b));
            if (kind == 2) y = tfu_swiglu_split(ctx, tfu_mul_mat(ctx, a, b), tfu_mul_mat(ctx, a2, b));
            for (n = 0; n < N; n++)
                for (m = 0; m < M; m++) {
                    size_t k = (size_t)(n * M + m);
                    double g0 = w1[k];
                    if (kind == 0) w1[k] = g0 + tfu_get_f32(bias, m, 0, 0, 0);
                    if (kind >= 1) w1[k] = g0 / (1 + exp(-g0)) * (kind == 2 ? w2[k] : 1.0);
                    m1[k] = (m1[k] + fabs(g0) + 1e-3) * (kind == 2 ? 1 + m2[k] + fabs(w2[k]) : 2);
                }
            g = tfu_graph_build(ctx, y);
            if (g && run_plan(g, y, 2, 0, &p) == 0) {
                tfu_plan_stats st = tfu_plan_get_stats(p);
                TT_CHECK(st.n_groups == 1 && st.n_groups_kind[TFU_GROUP_MATMUL] == 1, "epilogue %d %s: one fused group (%d groups)", kind,
                         tfu_type_name(QT[t]), st.n_groups);
                TT_CHECK(close_to(y, w1, m1, 2e-6), "epilogue %d %s: values", kind, tfu_type_name(QT[t]));
                tfu_plan_free(p);
                p = NULL;
                if (run_plan(g, y, 1, 1, &p) == 0) TT_CHECK(close_to(y, w1, m1, 2e-6), "epilogue %d %s: values, no_simd", kind, tfu_type_name(QT[t]));
                tfu_plan_free(p);
            } else {
                TT_CHECK(0, "epilogue %d: build: %s", kind, tfu_last_error_msg(ctx));
            }
            free(w1);
            free(w2);
            free(m1);
            free(m2);
            tfu_free(ctx);
        }
}

/* get_rows: f32 rows equal to the dequantized ones, bit for bit */
static void test_get_rows(void) {
    int t, th, ns;
    for (t = 0; t < 2; t++) {
        tfu_context *ctx = tfu_init_malloc((size_t)8 << 20, 0);
        tfu_tensor *a = qleaf(ctx, QT[t], 96, 11, 1), *idx = tfu_new_tensor_2d(ctx, TFU_I32, 5, 2), *y;
        tfu_graph *g;
        int i;
        for (i = 0; i < 10; i++) ((int32_t *)idx->data)[i] = (int32_t)tt_int(0, 10);
        y = tfu_get_rows(ctx, a, idx);
        g = tfu_graph_build(ctx, y);
        TT_CHECK(g != NULL, "get_rows %s: build: %s", tfu_type_name(QT[t]), tfu_last_error_msg(ctx));
        for (th = 1; g && th <= 2; th++)
            for (ns = 0; ns <= 1; ns++) {
                int bad = 0;
                tfu_plan *p = NULL;
                if (run_plan(g, y, th, ns, &p) != 0) {
                    tfu_plan_free(p);
                    continue;
                }
                for (i = 0; i < 10; i++) {
                    float row[96];
                    int j;
                    tfu_dequantize_row(QT[t], (const char *)a->data + a->nb[1] * (size_t)((int32_t *)idx->data)[i], row, 96);
                    for (j = 0; j < 96; j++) if (tfu_get_f32(y, j, i % 5, i / 5, 0) != row[j]) { if (bad < 4) printf("  %d %d: %g %g\n", i, j, tfu_get_f32(y, j, i % 5, i / 5, 0), row[j]); bad++; }
                }
                TT_CHECK(bad == 0, "get_rows %s threads %d no_simd %d: %d values differ", tfu_type_name(QT[t]), th, ns, bad);
                tfu_plan_free(p);
            }
        tfu_free(ctx);
    }
}

/* blocks with d = 0, NaN and inf written by hand: the plan gives what the
   reference gives (NaN where a weight is NaN or inf * 0) */
static void test_special_scales(void) {
    int t, row, ns;
    for (t = 0; t < 2; t++) {
        int64_t K = 64, M = 12, N;
        for (N = 1; N <= 7; N += 6) {
            tfu_context *ctx = tfu_init_malloc((size_t)8 << 20, 0);
            tfu_tensor *a = qleaf(ctx, QT[t], K, M, 1), *b = fleaf(ctx, K, N, 1), *y;
            tfu_graph *g;
            static const uint16_t scales[4] = { 0x0000u, 0x7E00u, 0x7C00u, 0xFC00u };   /* 0, NaN, +inf, -inf */
            double *want = (double *)malloc((size_t)(M * N) * sizeof(double)), *mag = (double *)malloc((size_t)(M * N) * sizeof(double));
            for (row = 0; row < 4; row++) memcpy((char *)a->data + (size_t)(2 * row + 1) * a->nb[1] + (row % 2) * a->nb[0], &scales[row], 2);
            y = tfu_mul_mat(ctx, a, b);
            g = tfu_graph_build(ctx, y);
            ref_mm(a, b, want, mag);
            for (ns = 0; ns <= 1 && g; ns++) {
                int64_t i0, i1, bad = 0, nans = 0;
                tfu_plan *p = NULL;
                if (run_plan(g, y, 1, ns, &p) != 0) {
                    tfu_plan_free(p);
                    continue;
                }
                for (i1 = 0; i1 < N; i1++)
                    for (i0 = 0; i0 < M; i0++) {
                        double v = tfu_get_f32(y, i0, i1, 0, 0), w = want[i1 * M + i0];
                        if (w != w) nans++;
                        if (!tt_ieee_same(v, w, 2e-6 * (mag[i1 * M + i0] == mag[i1 * M + i0] ? mag[i1 * M + i0] : 0) + 1e-30)) bad++;
                    }
                TT_CHECK(bad == 0 && nans >= 3 * N, "special scales %s N %lld no_simd %d: %lld differ (%lld NaN wanted)", tfu_type_name(QT[t]),
                         (long long)N, ns, (long long)bad, (long long)nans);
                tfu_plan_free(p);
            }
            free(want);
            free(mag);
            tfu_free(ctx);
        }
    }
}

/* --- int8 activations (tfu_plan_options.quant_activations) ----------------- */

/* b's row quantized per block of 32 as the option documents, in plain
   loops: d = max|x| / 127 (f32), q = round(x / d) half away from zero;
   returns 0 for a block with a NaN or inf */
static int ref_qblock(const float *x, int *q, float *d) {
    float amax = 0.0f;
    int j;
    for (j = 0; j < 32; j++) {
        if (x[j] != x[j] || fabsf(x[j]) > FLT_MAX) return 0;
        if (fabsf(x[j]) > amax) amax = fabsf(x[j]);
    }
    *d = amax / 127.0f;
    for (j = 0; j < 32; j++) {
        float r = *d > 0.0f ? x[j] / *d : 0.0f;
        if (r > 127.0f) r = 127.0f;
        if (r < -127.0f) r = -127.0f;
        q[j] = (int)roundf(r);
    }
    return 1;
}

/* out[n][m] over the int8 activations in double (sum of d_a d_b isum per
   block) and its scale mag (sum of |terms|); where a block of b's row or a
   weight scale is not finite, the exact double sum (the fallback the option
   documents), exact[] then 1; qerr: the bound of the activations' rounding,
   sum over blocks of d_b / 2 * sum |w| */
static void ref_qact(const tfu_tensor *a, const tfu_tensor *b, double *out, double *mag, double *qerr, unsigned char *exact) {
    int64_t K = a->ne[0], M = a->ne[1], N = b->ne[1], B2 = b->ne[2], r2 = b->ne[2] / a->ne[2], m, n, i2, k, blk;
    float *w = (float *)malloc((size_t)K * sizeof(float)), *x = (float *)malloc((size_t)K * sizeof(float));
    float *db = (float *)malloc((size_t)(K / 32) * sizeof(float));
    int *q = (int *)malloc((size_t)K * sizeof(int)), *okb = (int *)malloc((size_t)(K / 32) * sizeof(int));
    size_t bs = tfu_type_size(a->type);
    for (i2 = 0; i2 < B2; i2++)
        for (n = 0; n < N; n++) {
            int all_ok = 1;
            for (k = 0; k < K; k++) x[k] = tfu_get_f32(b, k, n, i2, 0);
            for (blk = 0; blk < K / 32; blk++) {
                okb[blk] = ref_qblock(x + blk * 32, q + blk * 32, &db[blk]);
                if (!okb[blk]) all_ok = 0;
            }
            for (m = 0; m < M; m++) {
                const unsigned char *row = (const unsigned char *)a->data + (size_t)m * a->nb[1] + (size_t)(i2 / r2) * a->nb[2];
                double s = 0, sa = 0, e = 0;
                int row_ok = all_ok;
                size_t o = (size_t)((i2 * N + n) * M + m);
                tfu_dequantize_row(a->type, row, w, K);
                for (blk = 0; blk < K / 32; blk++) {
                    uint16_t h;
                    float da;
                    memcpy(&h, row + (size_t)blk * bs, 2);
                    da = tfu_f16_to_f32(h);
                    if (da != da || fabsf(da) > FLT_MAX) row_ok = 0;
                }
                if (!row_ok) {
                    for (k = 0; k < K; k++) {
                        s += (double)w[k] * (double)x[k];
                        sa += fabs((double)w[k] * (double)x[k]);
                    }
                    out[o] = s;
                    mag[o] = sa == sa ? sa : 0;
                    qerr[o] = 0;
                    exact[o] = 1;
                    continue;
                }
                for (blk = 0; blk < K / 32; blk++) {
                    uint16_t h;
                    double da, isum = 0, wa = 0, t;
                    int j;
                    memcpy(&h, row + (size_t)blk * bs, 2);
                    da = tfu_f16_to_f32(h);
                    for (j = 0; j < 32; j++) {
                        int wq = (int)lrint(w[blk * 32 + j] / (da != 0 ? da : 1.0));   /* the weight's integer q */
                        isum += (double)wq * q[blk * 32 + j];
                        wa += fabs((double)w[blk * 32 + j]);
                    }
                    t = da * (double)db[blk] * isum;
                    s += t;
                    sa += fabs(t);
                    e += 0.5 * (double)db[blk] * wa;
                }
                out[o] = s;
                mag[o] = sa;
                qerr[o] = e;
                exact[o] = 0;
            }
        }
    free(w);
    free(x);
    free(db);
    free(q);
    free(okb);
}

static tfu_plan *compile_qact(tfu_graph *g, int n_threads, int no_simd, int on) {
    tfu_plan_options o = tfu_plan_default_options();
    tfu_plan *p;
    o.n_threads = n_threads;
    o.no_simd = no_simd;
    o.quant_activations = on;
    p = tfu_plan_compile(g, &o);
    TT_CHECK(p != NULL, "compile (quant_activations %d): %s", on, tfu_last_error_msg(tfu_graph_context(g)));
    return p;
}

/* one product (epi 0: plain, 1: + bias, 2: * gate) with the option on:
   against ref_qact within f32 rounding of its terms ((blocks + 4) units
   of 2^-24 of their sum of magnitudes), against the exact reference within
   the rounding bound of the activations; the option off: the exact path;
   SIMD and scalar bit for bit where the compiler contracts nothing; the
   fast path shows (the exact tolerance fails somewhere) */
static void case_qact(tfu_type ty, int64_t K, int64_t M, int64_t N, int64_t A2, int64_t B2, int epi, int specials) {
    tfu_context *ctx = tfu_init_malloc((size_t)64 << 20, 0);
    tfu_tensor *a = qleaf(ctx, ty, K, M, A2), *b = fleaf(ctx, K, N, B2), *ep = NULL, *y;
    int64_t n_out = M * N * B2, i;
    double *want = (double *)malloc((size_t)n_out * sizeof(double)), *mag = (double *)malloc((size_t)n_out * sizeof(double));
    double *qerr = (double *)malloc((size_t)n_out * sizeof(double)), *exw = (double *)malloc((size_t)n_out * sizeof(double));
    double *exm = (double *)malloc((size_t)n_out * sizeof(double)), tol_rel = (double)(K / 32 + 4) / 16777216.0;
    float *first = (float *)malloc((size_t)n_out * sizeof(float));
    unsigned char *exact = (unsigned char *)malloc((size_t)n_out);
    tfu_graph *g;
    int th, ns, on;
    if (specials) {   /* NaN / inf in b's rows 0 and 2, weight scales NaN / inf in rows 1 and 3 */
        static const uint16_t sc[2] = { 0x7E00u, 0x7C00u };
        tfu_set_f32(b, K - 5, 0, 0, 0, NAN);
        if (N > 2) tfu_set_f32(b, 3, 2, 0, 0, -INFINITY);
        if (M > 3) {
            memcpy((char *)a->data + a->nb[1] + (size_t)(K / 32 - 1) * a->nb[0], &sc[0], 2);
            memcpy((char *)a->data + 3 * a->nb[1], &sc[1], 2);
        }
    }
    y = tfu_mul_mat(ctx, a, b);
    if (epi == 1) {
        ep = fleaf(ctx, M, 1, 1);
        y = tfu_add(ctx, y, ep);
    } else if (epi == 2) {
        ep = fleaf(ctx, M, N, B2);
        y = tfu_mul(ctx, y, ep);
    }
    g = tfu_graph_build(ctx, y);
    if (!g || !want || !mag || !qerr || !exw || !exm || !first || !exact) {
        TT_CHECK(0, "qact %s: build: %s", tfu_type_name(ty), tfu_last_error_msg(ctx));
        goto done;
    }
    ref_qact(a, b, want, mag, qerr, exact);
    ref_mm(a, b, exw, exm);
    for (i = 0; i < n_out; i++) {   /* the epilogue, in double */
        int64_t m = i % M;
        double e = epi == 1 ? tfu_get_f32(ep, m, 0, 0, 0) : epi == 2 ? tfu_get_f32(ep, m, (i / M) % N, i / (M * N), 0) : 0;
        if (epi == 1) {
            want[i] += e;
            exw[i] += e;
            mag[i] += fabs(e) + fabs(want[i]);
            exm[i] += fabs(e) + fabs(exw[i]);
        } else if (epi == 2) {
            want[i] *= e;
            exw[i] *= e;
            mag[i] = mag[i] * fabs(e) + fabs(want[i]);
            exm[i] = exm[i] * fabs(e) + fabs(exw[i]);
            qerr[i] *= fabs(e);
        }
    }
    for (on = 0; on <= 1; on++)
        for (th = 1; th <= 2; th++)
            for (ns = 0; ns <= 1; ns++) {
                tfu_plan *p = compile_qact(g, th, ns, on);
                int64_t bad = 0, bad_q = 0, shows = 0, same = 0;
                double se = 0, sr = 0;   /* NMSE against the exact product */
                tfu_result r;
                if (!p) continue;
                tt_poison(y->data, tfu_nbytes(y));
                r = tfu_plan_run(p);
                TT_CHECK(r == TFU_OK, "qact run: %s", tfu_result_str(r));
                for (i = 0; i < n_out; i++) {
                    double v = tfu_get_f32(y, i % M, (i / M) % N, i / (M * N), 0);
                    double want_i = on ? want[i] : exw[i], tol = on && !exact[i] ? tol_rel * mag[i] : 2e-6 * exm[i];
                    if (!tt_ieee_same(v, want_i, tol + 1e-30)) {
                        if (bad < 3) printf("  [%lld] got %.9g want %.9g (exact %.9g)\n", (long long)i, v, want_i, exw[i]);
                        bad++;
                    }
                    if (on && !exact[i] && !(fabs(v - exw[i]) <= qerr[i] + 2e-6 * exm[i] + 1e-30)) bad_q++;
                    if (on && !exact[i] && !(fabs(v - exw[i]) <= 2e-6 * exm[i])) shows++;
                    if (!exact[i]) {
                        se += (v - exw[i]) * (v - exw[i]);
                        sr += exw[i] * exw[i];
                    }
                    if (ns == 0) first[i] = (float)v;
                    else if (memcmp(&first[i], &(float){ (float)v }, 4) == 0) same++;
                }
                TT_CHECK(bad == 0 && bad_q == 0, "qact %s K %lld M %lld N %lld batch %lld/%lld epi %d specials %d on %d threads %d no_simd %d: "
                         "%lld off the reference, %lld beyond the rounding bound", tfu_type_name(ty), (long long)K, (long long)M, (long long)N,
                         (long long)A2, (long long)B2, epi, specials, on, th, ns, (long long)bad, (long long)bad_q);
                if (on && K >= 128 && M * N >= 8)   /* BENCHMARKS.md: about 1.4e-5 for values uniform in [-1, 1] */
                    TT_CHECK(se <= 1e-4 * sr, "qact %s K %lld M %lld N %lld: NMSE %.2e against the exact product", tfu_type_name(ty), (long long)K,
                             (long long)M, (long long)N, se / sr);
                if (on && K >= 128 && M * N >= 8) TT_CHECK(shows > 0, "qact %s K %lld M %lld N %lld: the int8 path did not run (every output exact)",
                                                         tfu_type_name(ty), (long long)K, (long long)M, (long long)N);
#if !(defined(__GNUC__) && !defined(__clang__) && !defined(__STRICT_ANSI__))   /* GNU C modes contract a*b+c into FMAs */
                if (ns == 1 && on) TT_CHECK(same == n_out, "qact %s K %lld M %lld N %lld threads %d: SIMD and scalar differ in %lld of %lld",
                                            tfu_type_name(ty), (long long)K, (long long)M, (long long)N, th, (long long)(n_out - same), (long long)n_out);
#endif
                tfu_plan_free(p);
            }
done:
    free(want);
    free(mag);
    free(qerr);
    free(exw);
    free(exm);
    free(first);
    free(exact);
    tfu_free(ctx);
}

static void test_qact_products(void) {
    static const int64_t Ks[] = { 32, 64, 96, 160, 544, 1056, 2080, 4128 };
    static const int64_t Ms[] = { 1, 3, 7, 9, 17, 33, 37, 71 };
    int t, n, i = 0;
    for (t = 0; t < 2; t++) {
        for (n = 1; n <= 9; n++, i += 3) {
            case_qact(QT[t], Ks[i % 8], Ms[(i / 8 + n) % 8], n, 1, 1, 0, 0);
            case_qact(QT[t], Ks[(i + 5) % 8], Ms[(i + 3) % 8], n, 1, 1, 1 + n % 2, 0);
        }
        case_qact(QT[t], 4096, 33, 1, 1, 1, 0, 0);
        case_qact(QT[t], 4096, 9, 130, 1, 1, 2, 0);   /* packed sizes too */
        case_qact(QT[t], 160, 21, 3, 2, 4, 1, 0);     /* a's batches broadcast over b's */
        case_qact(QT[t], 96, 13, 1, 1, 1, 0, 1);      /* NaN / inf in b and in weight scales */
        case_qact(QT[t], 288, 11, 5, 1, 1, 1, 1);
        case_qact(QT[t], 64, 9, 7, 1, 1, 2, 1);
    }
}

/* two quantized products of different b in one group, run again after b
   changed: the quantized activations kept in scratch must not go stale */
static void test_qact_rerun(void) {
    int t, th, run;
    for (t = 0; t < 2; t++)
        for (th = 1; th <= 2; th++) {
            int64_t K = 256, M = 70, N = 3, i;
            tfu_context *ctx = tfu_init_malloc((size_t)16 << 20, 0);
            tfu_tensor *a1 = qleaf(ctx, QT[t], K, M, 1), *a2 = qleaf(ctx, QT[1 - t], K, M, 1), *b1 = fleaf(ctx, K, N, 1), *b2 = fleaf(ctx, K, N, 1);
            tfu_tensor *y = tfu_add(ctx, tfu_mul_mat(ctx, a1, b1), tfu_mul_mat(ctx, a2, b2));
            tfu_graph *g = tfu_graph_build(ctx, y);
            tfu_plan *p = g ? compile_qact(g, th, 0, 1) : NULL;
            double w1[210], m1[210], q1[210], w2[210], m2[210], q2[210];
            unsigned char e1[210], e2[210];
            if (!p) {
                tfu_free(ctx);
                continue;
            }
            TT_CHECK(tfu_plan_get_stats(p).n_groups == 1, "qact rerun: one group for both products (%d)", tfu_plan_get_stats(p).n_groups);
            for (run = 0; run < 3; run++) {
                int64_t bad = 0;
                if (run) {
                    tt_fill(b1, -2.0f, 2.0f);
                    tt_fill(b2, -0.5f, 0.5f);
                }
                ref_qact(a1, b1, w1, m1, q1, e1);
                ref_qact(a2, b2, w2, m2, q2, e2);
                tt_poison(y->data, tfu_nbytes(y));
                TT_CHECK(tfu_plan_run(p) == TFU_OK, "qact rerun: run");
                for (i = 0; i < M * N; i++) {
                    double v = tfu_get_f32(y, i % M, i / M, 0, 0), w = w1[i] + w2[i];
                    if (!(fabs(v - w) <= (double)(K / 32 + 5) / 16777216.0 * (m1[i] + m2[i] + fabs(w)))) bad++;
                }
                TT_CHECK(bad == 0, "qact rerun %s+%s threads %d run %d: %lld of %lld off", tfu_type_name(QT[t]), tfu_type_name(QT[1 - t]), th, run,
                         (long long)bad, (long long)(M * N));
            }
            tfu_plan_free(p);
            tfu_free(ctx);
        }
}

/* --- refusals ------------------------------------------------------------------ */
#define REFUSED(expr, code) do {                                                              \
        tfu_tensor *r_ = (expr);                                                              \
        TT_CHECK(r_ == NULL && tfu_last_error(ctx) == (code), "%s: %s (%s)", #expr,          \
                 r_ ? "not refused" : "wrong code", tfu_last_error_msg(ctx));                 \
        tfu_clear_error(ctx);                                                                 \
    } while (0)

static void test_refusals(void) {
    int t;
    for (t = 0; t < 2; t++) {
        tfu_context *ctx = tfu_init_malloc((size_t)4 << 20, 0);
        tfu_tensor *q = qleaf(ctx, QT[t], 64, 4, 1), *f = fleaf(ctx, 64, 4, 1), *idx = tfu_new_tensor_1d(ctx, TFU_I32, 4);
        tfu_tensor *pos = tfu_new_tensor_1d(ctx, TFU_I32, 1), *q3 = qleaf(ctx, QT[t], 64, 4, 2);
        int64_t ne[2];
        tfu_op op;
        ne[0] = 128;
        ne[1] = 2;
        memset(idx->data, 0, 16);
        memset(pos->data, 0, 4);
        REFUSED(tfu_add(ctx, q, f), TFU_ERR_TYPE);
        REFUSED(tfu_add(ctx, f, q), TFU_ERR_TYPE);
        REFUSED(tfu_sub(ctx, q, q), TFU_ERR_TYPE);
        REFUSED(tfu_mul(ctx, f, q), TFU_ERR_TYPE);
        REFUSED(tfu_div(ctx, q, f), TFU_ERR_TYPE);
        REFUSED(tfu_scale(ctx, q, 2.0f), TFU_ERR_TYPE);
        REFUSED(tfu_scale_bias(ctx, q, 2.0f, 1.0f), TFU_ERR_TYPE);
        REFUSED(tfu_clamp(ctx, q, -1.0f, 1.0f), TFU_ERR_TYPE);
        for (op = TFU_OP_NEG; op <= TFU_OP_SILU; op = (tfu_op)(op + 1)) REFUSED(tfu_unary(ctx, q, op), TFU_ERR_TYPE);
        REFUSED(tfu_glu(ctx, q, TFU_GLU_SWIGLU, 0), TFU_ERR_TYPE);
        REFUSED(tfu_glu_split(ctx, q, f, TFU_GLU_GEGLU), TFU_ERR_TYPE);
        REFUSED(tfu_glu_split(ctx, f, q, TFU_GLU_GEGLU), TFU_ERR_TYPE);
        REFUSED(tfu_rms_norm(ctx, q, 1e-5f), TFU_ERR_TYPE);
        REFUSED(tfu_norm(ctx, q, 1e-5f), TFU_ERR_TYPE);
        REFUSED(tfu_soft_max(ctx, q), TFU_ERR_TYPE);
        REFUSED(tfu_soft_max_ext(ctx, f, q, 1.0f), TFU_ERR_TYPE);
        REFUSED(tfu_sum_rows(ctx, q), TFU_ERR_TYPE);
        REFUSED(tfu_mean(ctx, q), TFU_ERR_TYPE);
        REFUSED(tfu_argmax(ctx, q), TFU_ERR_TYPE);
        REFUSED(tfu_rope(ctx, q3, pos, 64, TFU_ROPE_NORMAL, 10000.0f), TFU_ERR_TYPE);
        REFUSED(tfu_concat(ctx, q, q, 1), TFU_ERR_TYPE);
        REFUSED(tfu_concat(ctx, f, q, 1), TFU_ERR_TYPE);
        REFUSED(tfu_cont(ctx, q), TFU_ERR_TYPE);
        REFUSED(tfu_cpy(ctx, q, f), TFU_ERR_TYPE);
        REFUSED(tfu_cpy(ctx, f, q), TFU_ERR_TYPE);
        REFUSED(tfu_set_rows(ctx, q, f, idx), TFU_ERR_TYPE);
        REFUSED(tfu_set_rows(ctx, f, q, idx), TFU_ERR_TYPE);
        REFUSED(tfu_view_1d(ctx, q, 32, 0), TFU_ERR_TYPE);
        REFUSED(tfu_view_2d(ctx, q, 64, 2, q->nb[1], q->nb[1]), TFU_ERR_TYPE);
        REFUSED(tfu_view_3d(ctx, q3, 64, 4, 1, q3->nb[1], q3->nb[2], 0), TFU_ERR_TYPE);
        REFUSED(tfu_view(ctx, q, 2, ne, NULL, 0), TFU_ERR_TYPE);
        REFUSED(tfu_reshape(ctx, q, 2, ne), TFU_ERR_TYPE);
        REFUSED(tfu_reshape_2d(ctx, q, 256, 1), TFU_ERR_TYPE);
        REFUSED(tfu_reshape_3d(ctx, q3, 64, 8, 1), TFU_ERR_TYPE);
        REFUSED(tfu_permute(ctx, q3, 0, 2, 1, 3), TFU_ERR_TYPE);
        REFUSED(tfu_transpose(ctx, q), TFU_ERR_TYPE);
        REFUSED(tfu_mul_mat(ctx, f, q), TFU_ERR_TYPE);                /* b quantized */
        REFUSED(tfu_mul_mat(ctx, q, q), TFU_ERR_TYPE);
        REFUSED(tfu_get_rows(ctx, f, q), TFU_ERR_TYPE);               /* quantized indices */
        REFUSED(tfu_new_tensor_2d(ctx, QT[t], 33, 2), TFU_ERR_SHAPE);
        REFUSED(tfu_new_tensor_1d(ctx, QT[t], 16), TFU_ERR_SHAPE);
        {   /* a hand-made non-contiguous quantized tensor (the struct is transparent) */
            size_t keep = q->nb[1];
            q->nb[1] = 1000;
            REFUSED(tfu_mul_mat(ctx, q, f), TFU_ERR_INVALID_ARG);
            REFUSED(tfu_get_rows(ctx, q, idx), TFU_ERR_INVALID_ARG);
            q->nb[1] = keep;
            q->ne[0] = 40;   /* and one whose rows are not whole blocks */
            REFUSED(tfu_mul_mat(ctx, q, f), TFU_ERR_INVALID_ARG);
            REFUSED(tfu_get_rows(ctx, q, idx), TFU_ERR_INVALID_ARG);
            q->ne[0] = 64;
        }
        {   /* a backend whose caps leave quantized types out fails to plan (TFU_ERR_TYPE) */
            tfu_backend_caps caps = tfu_cpu_caps();
            tfu_plan_options o = tfu_plan_default_options();
            tfu_tensor *y = tfu_mul_mat(ctx, q, f);
            tfu_graph *g = tfu_graph_build(ctx, y);
            tfu_plan *p;
            int k;
            for (k = 0; k < TFU_GROUP_KIND_COUNT; k++) caps.operand_types[k] &= ~((1u << TFU_Q8_0) | (1u << TFU_Q4_0));
            o.caps = &caps;
            p = tfu_plan_compile_shared(g, &o);
            TT_CHECK(p == NULL && tfu_last_error(ctx) == TFU_ERR_TYPE, "caps without %s: plan refused (%s)", tfu_type_name(QT[t]),
                     tfu_last_error_msg(ctx));
            if (p) tfu_plan_free(p);
            tfu_clear_error(ctx);
        }
        tfu_free(ctx);
    }
}

int main(int argc, char **argv) {
    tt_seed((uint64_t)tt_arg_int(argc, argv, "--seed", 12));
    test_roundtrip();
    test_tensor();
    test_products();
    test_epilogues();
    test_get_rows();
    test_special_scales();
    test_qact_products();
    test_qact_rerun();
    test_refusals();
    return tt_summary();
}
