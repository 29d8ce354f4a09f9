/* bench_vk.c - tensorfuse on Vulkan (issue 10): fused against unfused,
   against the device's own copy bandwidth measured in the same run.

   Build and run: `make bench-vk` (BENCH_VK_ARGS=--small for sizes that run
   in seconds on Mesa's lavapipe), or
       cc -std=c99 -O2 -I. bench/bench_vk.c -o build/bench_vk -lm -lpthread -ldl

   usage: bench_vk [--small] [--csv FILE] [--report FILE] [--reps N] [--validation] [--only G1,G6,...]
   (default FILE: build/bench-vk.csv; --reps: the least number of timed
   replays per plan and of G0's copies, default 50, --small 5;
   --report FILE: every plan's tfvk_plan_report after its last run, with
   the GPU time of each stage and group, default build/bench-vk-plans.txt;
   --validation: the Khronos layer
   with synchronisation validation on, every message fails the run: slow,
   a check rather than a measurement; TFVK_DEVICE picks the device)

   Rows (f32 activations; shapes ne0 x ne1 [x ne2]; --small in brackets):
     G0  limits: a compute-shader vec4 copy (shaders/copy.comp) of 1 GiB
         [32 MiB], bytes = read + written, and vkCmdCopyBuffer of the same
         (tfvk_measure_copy); the shader copy is the limit of every ratio
     G1  rms_norm(x, 1e-6) * w           x 4096x8192 [4096x32], w 4096
     G2  rms_norm(x, 1e-6) * w + r       r as x
     G3  swiglu_split(g, u)              g, u 11008x4096 [11008x16]
     G4  gelu((a + b) * c) * 0.5         a, b, c 4096x16384 [4096x32]
     G5  soft_max(x * 0.125 + mask)      x 1024x1024x64 [1024x128], causal mask 1024x1024 [1024x128]
     G6-T1, G6-T512 [G6-T16]  one Llama-2-7B-shaped layer (dim 4096, 32
         heads and KV heads, head dim 128, FFN 11008, f16 weights flagged
         TFU_FLAG_PARAM; [dim 256, 2 heads, FFN 688]), examples/llama.h
     G6-mm  each matrix product of G6-T512 [T16] alone, f16 weights times f32
         activations: variant NAME-MxNxK (M outputs, N tokens, K summed;
         -bB: B products); tools/torch_ref.py times the same shapes on cuBLAS
     dispatch  a chain of 1000 tiny element-wise nodes: GPU time
     host  host time per replay (tfvk_plan_stats.last_host_us: the inputs'
         bytes copied in, submit, results' pointers; not the wait) for the
         1000-node chain and for G6, of plans compiled without profile (so
         no timestamps are read back)
   Every plan is compiled fused and unfused (tfvk_plan_options.no_fusion)
   and the two are replayed in turns (G1-G5 also a "fused-generic" row:
   the fused plan with tfvk_plan_options.generic_addressing, replayed in
   turns with the fused one, so its note says what the contiguous fast
   path gains in the same run); a row's time is the median GPU time
   of a replay (timestamp queries, tfvk_plan_stats.last_run_us: first
   dispatch to last, the copies in and out excluded) after warm-up.
   gb_s: every input read once and the output written once (G6-T1: the
   weights), over that time; gflop_s: 2*M*N*K of the matrix products;
   ratio_to_limit: gb_s over G0's shader-copy GB/s (G0 copy-engine: its
   GB/s over the shader's). G1-G5's inputs are flagged TFU_FLAG_PARAM, so
   they are uploaded once and a replay moves no host bytes.
   The note of each row gives groups, stages and the barriers recorded
   (one per stage boundary: n_barriers = n_stages - 1, else the row FAILS);
   fused and unfused results must agree (max|diff| / max|ref| <= 1e-3).
   The exit status is 1 if a row failed. */
#define _POSIX_C_SOURCE 200809L
#define TFU_IMPLEMENTATION
#define TFVK_IMPLEMENTATION
#include "tensorfuse.h"
#include "tensorfuse_vk.h"
#include "examples/llama.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_SAMPLES 2048

static int           g_small;
static int           g_min_reps;
static const char   *g_only;          /* comma-separated workloads, or NULL */
static FILE         *g_csv;
static FILE         *g_report;        /* the plans' reports, or NULL        */
static int           g_fail;
static tfvk_context *g_vk;
static double        g_copy_gbs;      /* G0: the shader copy, GB/s          */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* is workload name selected by --only: by its name, or by a prefix
   before a '-' (G6 selects G6-T1 and G6-mm, G6-T1 only G6-T1) */
static int selected(const char *name) {
    const char *s = g_only;
    if (!s) return 1;
    while (*s) {
        size_t n = strcspn(s, ",");
        if (n > 0 && !strncmp(name, s, n) && (name[n] == 0 || name[n] == '-')) return 1;
        s += n;
        if (*s == ',') s++;
    }
    return 0;
}

/* --- output: a table on stdout, the same rows as CSV ------------------- */

static void fmt_num(char *buf, size_t n, double v, const char *fmt) {
    if (v != v) snprintf(buf, n, "%s", "");
    else snprintf(buf, n, fmt, v);
}

static void emit(const char *workload, const char *variant, double ms, double gbs, double gflops, double ratio, const char *note) {
    char a[32], b[32], c[32], d[32];
    fmt_num(a, sizeof a, ms, "%.4f");
    fmt_num(b, sizeof b, gbs, "%.2f");
    fmt_num(c, sizeof c, gflops, "%.2f");
    fmt_num(d, sizeof d, ratio, "%.3f");
    printf("%-10s %-24s %11s %9s %10s %7s  %s\n", workload, variant, a, b, c, d, note ? note : "");
    fflush(stdout);
    if (g_csv) fprintf(g_csv, "%s,%s,1,%s,%s,%s,%s,vulkan\n", workload, variant, a, b, c, d);
}

static void fail_row(const char *wl, const char *variant, const char *what, const char *msg) {
    char note[320];
    snprintf(note, sizeof note, "FAILED %.32s: %.240s", what, msg ? msg : "?");
    emit(wl, variant, NAN, NAN, NAN, NAN, note);
    g_fail = 1;
}

static void on_message(void *user, const char *m) {
    (void)user;
    printf("validation: %.400s\n", m);
}

/* --- workloads -------------------------------------------------------------- */

typedef struct workload {
    tfu_context *ctx;
    tfu_graph   *g;
    tfu_tensor  *out;
    double       bytes, flops;
    int          ratio_bytes;   /* ratio_to_limit from gb_s                  */
    int          generic_row;   /* also a fused-generic row (G1-G5)          */
} workload;

static void free_workload(workload *w) {
    if (w->ctx) tfu_free(w->ctx);
    memset(w, 0, sizeof *w);
}

static tfu_context *new_ctx(size_t n_tensors, double data_bytes) {
    tfu_context *ctx = tfu_init_malloc(tfu_context_size(n_tensors, (size_t)data_bytes + 256 * n_tensors + (1u << 20)), 0);
    if (!ctx) {
        fprintf(stderr, "bench_vk: out of memory for a context\n");
        exit(2);
    }
    return ctx;
}

static double tbytes(const tfu_tensor *t) { return (double)tfu_nelements(t) * (double)tfu_type_size(t->type); }

/* a leaf of random values, flagged PARAM: uploaded once, at compile */
static tfu_tensor *rand_tensor(workload *w, tfu_type type, int64_t ne0, int64_t ne1, int64_t ne2, const char *name, uint32_t seed) {
    int64_t ne[3];
    tfu_tensor *t;
    uint32_t s = seed;
    ne[0] = ne0;
    ne[1] = ne1;
    ne[2] = ne2;
    t = tfu_new_tensor(w->ctx, type, ne2 > 1 ? 3 : ne1 > 1 ? 2 : 1, ne);
    if (!t) return NULL;
    tfu_set_name(tfu_set_flags(t, TFU_FLAG_PARAM), name);
    llama_fill(t, &s, 0.0f, 1.0f);
    w->bytes += tbytes(t);
    return t;
}

static int finish(workload *w, tfu_tensor *out, int n_nodes) {
    if (!out) return -1;
    w->out = tfu_set_output(out);
    w->g = tfu_graph_new(w->ctx, n_nodes);
    if (!w->g || tfu_graph_build_expand(w->g, out) != TFU_OK) return -1;
    w->bytes += tbytes(out);
    w->ratio_bytes = 1;
    w->generic_row = 1;
    return 0;
}

#define NEED(x) do { if (!(x)) return -1; } while (0)

/* G1 (with_r 0) and G2 */
static int build_g1(workload *w, int with_r) {
    int64_t T = g_small ? 32 : 8192;
    tfu_tensor *x, *wt, *r, *t;
    w->ctx = new_ctx(32, 4.0 * (2.0 * 4096 * T + 4096));
    NEED(x = rand_tensor(w, TFU_F32, 4096, T, 1, "x", 11));
    NEED(wt = rand_tensor(w, TFU_F32, 4096, 1, 1, "w", 12));
    NEED(t = tfu_rms_norm(w->ctx, x, 1e-6f));
    NEED(t = tfu_mul(w->ctx, t, wt));
    if (with_r) {
        NEED(r = rand_tensor(w, TFU_F32, 4096, T, 1, "r", 13));
        NEED(t = tfu_add(w->ctx, t, r));
    }
    return finish(w, t, 32);
}

static int build_g3(workload *w) {
    int64_t T = g_small ? 16 : 4096;
    tfu_tensor *g, *u;
    w->ctx = new_ctx(32, 4.0 * 2.0 * 11008 * T);
    NEED(g = rand_tensor(w, TFU_F32, 11008, T, 1, "g", 21));
    NEED(u = rand_tensor(w, TFU_F32, 11008, T, 1, "u", 22));
    return finish(w, tfu_swiglu_split(w->ctx, g, u), 32);
}

static int build_g4(workload *w) {
    int64_t T = g_small ? 32 : 16384;
    tfu_tensor *a, *b, *c, *t;
    w->ctx = new_ctx(32, 4.0 * 3.0 * 4096 * T);
    NEED(a = rand_tensor(w, TFU_F32, 4096, T, 1, "a", 31));
    NEED(b = rand_tensor(w, TFU_F32, 4096, T, 1, "b", 32));
    NEED(c = rand_tensor(w, TFU_F32, 4096, T, 1, "c", 33));
    NEED(t = tfu_add(w->ctx, a, b));
    NEED(t = tfu_mul(w->ctx, t, c));
    NEED(t = tfu_gelu(w->ctx, t));
    NEED(t = tfu_scale(w->ctx, t, 0.5f));
    return finish(w, t, 32);
}

static int build_g5(workload *w) {
    int64_t Q = g_small ? 128 : 1024, H = g_small ? 1 : 64;
    tfu_tensor *x, *mask, *t;
    w->ctx = new_ctx(32, 4.0 * (1024.0 * Q * H + 1024.0 * Q));
    NEED(x = rand_tensor(w, TFU_F32, 1024, Q, H, "x", 41));
    NEED(mask = tfu_causal_mask(w->ctx, 1024, Q));
    tfu_set_name(tfu_set_flags(mask, TFU_FLAG_PARAM), "mask");
    w->bytes += tbytes(mask);
    NEED(t = tfu_scale(w->ctx, x, 0.125f));
    NEED(t = tfu_add(w->ctx, t, mask));
    NEED(t = tfu_soft_max(w->ctx, t));
    return finish(w, t, 32);
}

/* Llama-2-7B's layer shapes, or a sixteenth of its width with --small */
static llama_config llama2_7b(int T) {
    llama_config c = llama_default_config();
    c.dim = g_small ? 256 : 4096;
    c.n_heads = g_small ? 2 : 32;
    c.n_kv_heads = c.n_heads;
    c.head_dim = 128;
    c.ffn = g_small ? 688 : 11008;
    c.n_layers = 1;
    c.T = T;
    c.wtype = TFU_F16;
    return c;
}

static int build_g6(workload *w, int T) {
    llama_config c = llama2_7b(T);
    static llama_model m;   /* large: keep it off the stack */
    w->ctx = tfu_init_malloc(llama_context_bytes(&c, 0), 0);
    if (!w->ctx) {
        fprintf(stderr, "bench_vk: out of memory for a context\n");
        exit(2);
    }
    if (llama_build(w->ctx, &c, &m) != 0) return -1;
    w->out = m.out;
    NEED(w->g = llama_graph(w->ctx, &m));
    w->bytes = llama_weight_bytes(&c);
    w->flops = llama_matmul_flops(&c);
    w->ratio_bytes = T == 1;
    return 0;
}

/* one product of G6: a (K x M, or K x M x B) times b (K x N [x B]) */
static int build_mm(workload *w, tfu_type ta, int64_t M, int64_t N, int64_t K, int64_t B) {
    tfu_tensor *a, *b;
    w->ctx = new_ctx(16, (double)K * (double)(M + N) * (double)B * 4.0);
    NEED(a = rand_tensor(w, ta, K, M, B, "a", 71));
    NEED(b = rand_tensor(w, TFU_F32, K, N, B, "b", 72));
    if (finish(w, tfu_mul_mat(w->ctx, a, b), 16) != 0) return -1;
    w->flops = 2.0 * (double)M * (double)N * (double)K * (double)B;
    w->ratio_bytes = 0;
    w->generic_row = 0;
    return 0;
}

/* 1000 tiny element-wise nodes: scale, add, tanh in turn, every fifth kept */
static int build_chain(workload *w, int n) {
    tfu_tensor *x, *y;
    int i;
    uint32_t seed = 51;
    w->ctx = new_ctx((size_t)n + 32, 4.0 * 128 * ((double)n + 8));
    /* an input copied in at every replay, as a decoder's would be */
    NEED(x = tfu_new_tensor_2d(w->ctx, TFU_F32, 32, 4));
    tfu_set_name(tfu_set_input(x), "x");
    llama_fill(x, &seed, 0.0f, 1.0f);
    y = x;
    for (i = 0; i < n; i++) {
        tfu_tensor *k = y;
        if (i % 5 == 4) tfu_set_keep(k);
        y = (i % 3 == 0) ? tfu_scale(w->ctx, k, 0.999f) : (i % 3 == 1) ? tfu_add(w->ctx, k, x) : tfu_tanh(w->ctx, k);
        NEED(y);
    }
    if (finish(w, y, n + 64) != 0) return -1;
    w->bytes = NAN;
    w->generic_row = 0;
    return 0;
}

/* --- timing ------------------------------------------------------------------ */

static double rel_diff(const float *a, const float *ref, int64_t n) {
    double md = 0.0, mr = 0.0;
    int64_t i;
    for (i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        double r = fabs((double)ref[i]);
        if (d != d) return INFINITY;
        if (d > md) md = d;
        if (r > mr) mr = r;
    }
    return mr > 0.0 ? md / mr : md;
}

typedef struct timing {
    double gpu_ms[2], host_us[2];   /* medians: unfused, fused           */
    int    n;                       /* replays of each                   */
} timing;

/* the unfused and the fused plan replayed in turns, warm first; medians of
   the GPU and host times; 0, or -1 on a run error */
static int time_pair(tfvk_plan *p[2], int warm, int min_reps, double budget_s, timing *T) {
    static double gpu[2][MAX_SAMPLES], host[2][MAX_SAMPLES];
    double start;
    int i, f, n = 0;
    for (i = 0; i < warm; i++)
        for (f = 0; f < 2; f++)
            if (tfvk_plan_run(p[f]) != TFU_OK) return -1;
    start = now_s();
    while (n < MAX_SAMPLES && (n < min_reps || now_s() - start < budget_s)) {
        for (f = 0; f < 2; f++) {
            tfvk_plan_stats st;
            if (tfvk_plan_run(p[f]) != TFU_OK) return -1;
            st = tfvk_plan_get_stats(p[f]);
            gpu[f][n] = st.last_run_us * 1e-3;
            host[f][n] = st.last_host_us;
        }
        n++;
    }
    for (f = 0; f < 2; f++) {
        T->gpu_ms[f] = median(gpu[f], n);
        T->host_us[f] = median(host[f], n);
    }
    T->n = n;
    return 0;
}

/* the plan's report (stages, groups, their GPU times in the last run) */
static void report_plan(const char *workload, const char *variant, const tfvk_plan *p) {
    size_t n;
    char *text;
    if (!g_report || !p) return;
    n = tfvk_plan_report(p, NULL, 0);
    text = (char *)malloc(n + 1);
    if (!text) return;
    tfvk_plan_report(p, text, n + 1);
    fprintf(g_report, "== %s %s\n%s\n", workload, variant, text);
    free(text);
}

/* a row's note: groups, stages, barriers (and the check of one barrier
   per stage boundary) */
static int plan_note(char *note, size_t size, tfvk_plan *p) {
    tfvk_plan_stats st = tfvk_plan_get_stats(p);
    int ok = st.n_barriers == (st.n_stages > 0 ? st.n_stages - 1 : 0);
    snprintf(note, size, "%d groups, %d stages, %d barriers%s", st.n_groups, st.n_stages, st.n_barriers,
             ok ? "" : " (NOT one per stage boundary)");
    if (!ok) g_fail = 1;
    return ok;
}

/* host rows: host time per replay of the graph's plans compiled without
   profile (reading the timestamps back would count), unfused and fused */
static void host_rows(const char *host_name, tfu_graph *g, int warm, int min_reps, double budget_s) {
    tfvk_plan *p[2];
    timing T;
    int f;
    for (f = 0; f < 2; f++) {
        tfvk_plan_options o = tfvk_plan_default_options();
        o.no_fusion = !f;
        p[f] = tfvk_plan_compile(g_vk, g, &o);
    }
    if (!p[0] || !p[1]) fail_row("host", host_name, "compile", tfvk_last_error_msg(g_vk));
    else if (time_pair(p, warm, min_reps, budget_s, &T) != 0) fail_row("host", host_name, "run", tfvk_last_error_msg(g_vk));
    else {
        for (f = 0; f < 2; f++) {
            char variant[48], note[160];
            tfvk_plan_stats st = tfvk_plan_get_stats(p[f]);
            snprintf(variant, sizeof variant, "%s-%s", host_name, f ? "fused" : "unfused");
            snprintf(note, sizeof note, "%.1f us per replay, %d dispatches, %d barriers, %d nodes", T.host_us[f], st.n_dispatches,
                     st.n_barriers, tfu_graph_n_nodes(g));
            emit("host", variant, T.host_us[f] * 1e-3, NAN, NAN, NAN, note);
        }
    }
    for (f = 0; f < 2; f++) tfvk_plan_free(p[f]);
}

/* every variant of a workload: unfused and fused, timed in turns; host
   rows (host_name) for the graphs the issue asks host time of */
static void run_workload(const char *name, workload *w, const char *host_name, int warm, int min_reps, double budget_s) {
    int64_t n_out = tfu_nelements(w->out);
    float *res[2];
    tfvk_plan *p[2];
    timing T;
    int f, ok = 1;
    res[0] = (float *)malloc((size_t)n_out * sizeof(float));
    res[1] = (float *)malloc((size_t)n_out * sizeof(float));
    if (!res[0] || !res[1]) {
        fprintf(stderr, "bench_vk: out of memory\n");
        exit(2);
    }
    for (f = 0; f < 2; f++) {
        tfvk_plan_options o = tfvk_plan_default_options();
        o.no_fusion = !f;
        o.profile = 1;
        p[f] = tfvk_plan_compile(g_vk, w->g, &o);
        if (!p[f]) {
            fail_row(name, f ? "fused" : "unfused", "compile", tfvk_last_error_msg(g_vk));
            ok = 0;
        }
    }
    if (ok && time_pair(p, warm, min_reps, budget_s, &T) != 0) {
        fail_row(name, "-", "run", tfvk_last_error_msg(g_vk));
        ok = 0;
    }
    for (f = 0; ok && f < 2; f++) {
        /* each plan's own result, for the check */
        if (tfvk_plan_run(p[f]) != TFU_OK) {
            fail_row(name, f ? "fused" : "unfused", "run", tfvk_last_error_msg(g_vk));
            ok = 0;
            break;
        }
        llama_copy_out(w->out, res[f]);
        report_plan(name, f ? "fused" : "unfused", p[f]);
    }
    for (f = 0; ok && f < 2; f++) {
        char note[200];
        double ms = T.gpu_ms[f];
        double gbs = w->bytes > 0 ? w->bytes / (ms * 1e6) : NAN;
        double gfs = w->flops > 0 ? w->flops / (ms * 1e6) : NAN;
        double ratio = w->ratio_bytes ? gbs / g_copy_gbs : NAN;
        size_t l;
        plan_note(note, sizeof note, p[f]);
        l = strlen(note);
        if (f) {
            double d = rel_diff(res[1], res[0], n_out);
            snprintf(note + l, sizeof note - l, ", x%.2f vs unfused", T.gpu_ms[0] / T.gpu_ms[1]);
            if (!(d <= 1e-3)) {
                l = strlen(note);
                snprintf(note + l, sizeof note - l, ", MISMATCH %.2e", d);
                g_fail = 1;
            }
        }
        l = strlen(note);
        snprintf(note + l, sizeof note - l, ", %d replays", T.n);
        emit(name, f ? "fused" : "unfused", ms, gbs, gfs, ratio, note);
    }
    /* the fused plan with every operand addressed from its coordinates (no
       contiguous fast path), timed in turns with the fused one */
    if (ok && w->generic_row) {
        tfvk_plan_options o = tfvk_plan_default_options();
        tfvk_plan *q[2];
        timing Tg;
        o.profile = 1;
        o.generic_addressing = 1;
        q[0] = tfvk_plan_compile(g_vk, w->g, &o);
        q[1] = p[1];
        if (!q[0]) fail_row(name, "fused-generic", "compile", tfvk_last_error_msg(g_vk));
        else if (time_pair(q, warm, min_reps, budget_s, &Tg) != 0) fail_row(name, "fused-generic", "run", tfvk_last_error_msg(g_vk));
        else {
            char note[200];
            double ms = Tg.gpu_ms[0];
            double gbs = w->bytes / (ms * 1e6);
            tfvk_plan_stats st = tfvk_plan_get_stats(p[1]);
            snprintf(note, sizeof note, "fused with generic addressing; the fused plan (%d fast, %d generic operands) x%.2f faster in the same turns",
                     st.n_fast_operands, st.n_generic_operands, Tg.gpu_ms[0] / Tg.gpu_ms[1]);
            emit(name, "fused-generic", ms, gbs, NAN, gbs / g_copy_gbs, note);
        }
        tfvk_plan_free(q[0]);
    }
    for (f = 0; f < 2; f++) tfvk_plan_free(p[f]);
    if (ok && host_name) host_rows(host_name, w->g, warm, min_reps, budget_s);
    free(res[0]);
    free(res[1]);
}

/* G0: the copy limits; exits when the shader copy cannot be measured */
static void run_g0(int reps) {
    size_t bytes = g_small ? (size_t)32 << 20 : (size_t)1 << 30;
    double sh = 0.0, ce = 0.0;
    char note[96];
    if (tfvk_measure_copy(g_vk, bytes, reps, &sh, &ce) != TFU_OK) {
        fail_row("G0", "shader-copy", "measure", tfvk_last_error_msg(g_vk));
        fprintf(stderr, "bench_vk: no copy limit, so no ratios: %s\n", tfvk_last_error_msg(g_vk));
        exit(1);
    }
    g_copy_gbs = sh;
    snprintf(note, sizeof note, "limit: vec4 shader copy, %d MiB read + written, median of %d", (int)(bytes >> 20), reps);
    emit("G0", "shader-copy", (double)bytes / (sh * 1e6), sh, NAN, 1.0, note);
    snprintf(note, sizeof note, "vkCmdCopyBuffer, %d MiB read + written, median of %d", (int)(bytes >> 20), reps);
    emit("G0", "copy-engine", (double)bytes / (ce * 1e6), ce, NAN, ce / sh, note);
}

/* G6-mm: the products of G6 at T tokens, one by one (fused = unfused:
   one op; the fused plan's figures) */
static void run_mm(int T, int warm, int min_reps, double budget_s) {
    llama_config c = llama2_7b(T);
    int64_t q = (int64_t)c.n_heads * c.head_dim;
    struct { const char *name; int weight; int64_t M, N, K, B; } mm[5];
    int i;
    mm[0].name = "wqkvo";
    mm[0].weight = 1; mm[0].M = c.dim; mm[0].N = T; mm[0].K = q; mm[0].B = 1;
    mm[1].name = "wgu";
    mm[1].weight = 1; mm[1].M = c.ffn; mm[1].N = T; mm[1].K = c.dim; mm[1].B = 1;
    mm[2].name = "wd";
    mm[2].weight = 1; mm[2].M = c.dim; mm[2].N = T; mm[2].K = c.ffn; mm[2].B = 1;
    mm[3].name = "kq";
    mm[3].weight = 0; mm[3].M = T; mm[3].N = T; mm[3].K = c.head_dim; mm[3].B = c.n_heads;
    mm[4].name = "kqv";
    mm[4].weight = 0; mm[4].M = c.head_dim; mm[4].N = T; mm[4].K = T; mm[4].B = c.n_heads;
    for (i = 0; i < 5; i++) {
        workload w;
        tfvk_plan *p[2];
        tfvk_plan_options o = tfvk_plan_default_options();
        timing Tm;
        char variant[64], note[200];
        int f;
        if (mm[i].B > 1)
            snprintf(variant, sizeof variant, "%s-%lldx%lldx%lld-b%lld", mm[i].name, (long long)mm[i].M, (long long)mm[i].N,
                     (long long)mm[i].K, (long long)mm[i].B);
        else
            snprintf(variant, sizeof variant, "%s-%lldx%lldx%lld", mm[i].name, (long long)mm[i].M, (long long)mm[i].N, (long long)mm[i].K);
        memset(&w, 0, sizeof w);
        if (build_mm(&w, mm[i].weight ? TFU_F16 : TFU_F32, mm[i].M, mm[i].N, mm[i].K, mm[i].B) != 0) {
            fail_row("G6-mm", variant, "build", w.ctx ? tfu_last_error_msg(w.ctx) : "no context");
            free_workload(&w);
            continue;
        }
        o.profile = 1;
        p[0] = tfvk_plan_compile(g_vk, w.g, &o);
        p[1] = p[0] ? tfvk_plan_compile(g_vk, w.g, &o) : NULL;
        if (!p[0] || !p[1]) fail_row("G6-mm", variant, "compile", tfvk_last_error_msg(g_vk));
        else if (time_pair(p, warm, min_reps, budget_s, &Tm) != 0) fail_row("G6-mm", variant, "run", tfvk_last_error_msg(g_vk));
        else {
            plan_note(note, sizeof note, p[1]);
            report_plan("G6-mm", variant, p[1]);
            emit("G6-mm", variant, Tm.gpu_ms[1], NAN, w.flops / (Tm.gpu_ms[1] * 1e6), NAN, note);
        }
        for (f = 0; f < 2; f++) tfvk_plan_free(p[f]);
        free_workload(&w);
    }
}

/* the 1000-node chain: GPU time per replay ("dispatch") and host time */
static void run_dispatch(int min_reps) {
    workload w;
    tfvk_plan *p[2];
    timing T;
    int f;
    memset(&w, 0, sizeof w);
    if (build_chain(&w, 1000) != 0) {
        fail_row("dispatch", "-", "build", w.ctx ? tfu_last_error_msg(w.ctx) : "no context");
        free_workload(&w);
        return;
    }
    for (f = 0; f < 2; f++) {
        tfvk_plan_options o = tfvk_plan_default_options();
        o.no_fusion = !f;
        o.profile = 1;
        p[f] = tfvk_plan_compile(g_vk, w.g, &o);
    }
    if (!p[0] || !p[1]) fail_row("dispatch", "-", "compile", tfvk_last_error_msg(g_vk));
    else if (time_pair(p, 3, min_reps, g_small ? 0.3 : 1.0, &T) != 0) fail_row("dispatch", "-", "run", tfvk_last_error_msg(g_vk));
    else {
        for (f = 0; f < 2; f++) {
            char note[200];
            size_t l;
            tfvk_plan_stats st = tfvk_plan_get_stats(p[f]);
            plan_note(note, sizeof note, p[f]);
            l = strlen(note);
            snprintf(note + l, sizeof note - l, ", %.2f us per dispatch on the GPU, %d nodes", T.gpu_ms[f] * 1e3 / st.n_dispatches,
                     tfu_graph_n_nodes(w.g));
            emit("dispatch", f ? "fused" : "unfused", T.gpu_ms[f], NAN, NAN, NAN, note);
        }
    }
    for (f = 0; f < 2; f++) tfvk_plan_free(p[f]);
    host_rows("chain1000", w.g, 3, min_reps, g_small ? 0.3 : 1.0);
    free_workload(&w);
}

int main(int argc, char **argv) {
    const char *csv_path = "build/bench-vk.csv";
    const char *report_path = "build/bench-vk-plans.txt";
    tfvk_options vo = tfvk_default_options();
    tfvk_device_info info;
    double t_start = now_s(), budget;
    int i, reps = -1, warm;
    workload w;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--small")) g_small = 1;
        else if (!strcmp(argv[i], "--csv") && i + 1 < argc) csv_path = argv[++i];
        else if (!strcmp(argv[i], "--report") && i + 1 < argc) report_path = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) g_only = argv[++i];
        else if (!strcmp(argv[i], "--validation")) vo.validation = 1;
        else {
            fprintf(stderr, "usage: %s [--small] [--csv FILE] [--report FILE] [--reps N] [--validation] [--only G0,G1,...]\n", argv[0]);
            return 2;
        }
    }
    g_min_reps = reps > 0 ? reps : g_small ? 5 : 50;
    if (g_min_reps > MAX_SAMPLES) g_min_reps = MAX_SAMPLES;
    warm = g_small ? 1 : 5;
    budget = g_small ? 0.2 : 1.0;
    vo.message_fn = on_message;
    g_vk = tfvk_init(&vo);
    if (!g_vk || tfvk_last_error(g_vk) != TFU_OK) {
        fprintf(stderr, "bench_vk: no Vulkan: %s\n", tfvk_last_error_msg(g_vk));
        tfvk_free(g_vk);
        return 1;
    }
    g_csv = fopen(csv_path, "w");
    if (!g_csv && !strncmp(csv_path, "build/", 6)) {
        mkdir("build", 0777);
        g_csv = fopen(csv_path, "w");
    }
    if (!g_csv) fprintf(stderr, "bench_vk: cannot write %s; table only\n", csv_path);
    else fprintf(g_csv, "workload,variant,threads,median_ms,gb_s,gflop_s,ratio_to_limit,backend\n");
    g_report = fopen(report_path, "w");
    if (!g_report) fprintf(stderr, "bench_vk: cannot write %s; no plan reports\n", report_path);

    info = tfvk_get_device_info(g_vk);
    printf("tensorfuse bench-vk%s: %s (vendor 0x%04x, driver version 0x%08x, Vulkan %u.%u.%u), %s memory, "
           "maxStorageBufferRange %llu MiB\n",
           g_small ? " (--small)" : "", info.name, info.vendor_id, info.driver_version, info.api_version >> 22,
           (info.api_version >> 12) & 0x3FF, info.api_version & 0xFFF, info.zero_copy ? "zero-copy" : "staged",
           (unsigned long long)(info.max_storage_buffer_range >> 20));
    printf("medians of GPU time per replay (timestamps) over >= %d replays after warm-up%s\n\n", g_min_reps,
           vo.validation ? "; VALIDATION ON: times are not measurements" : "");
    if (getenv("TFU_NO_FUSION")) printf("note: TFU_NO_FUSION is set: \"fused\" plans are unfused too\n");
    printf("%-10s %-24s %11s %9s %10s %7s  %s\n", "workload", "variant", "median_ms", "GB/s", "GFLOP/s", "ratio", "note");
    printf("-------------------------------------------------------------------------------------------\n");

    run_g0(g_min_reps < 1000 ? g_min_reps : 1000);
    {
        static const char *names[5] = {"G1", "G2", "G3", "G4", "G5"};
        for (i = 0; i < 5; i++) {
            int rc;
            if (!selected(names[i])) continue;
            memset(&w, 0, sizeof w);
            switch (i) {
            case 0: rc = build_g1(&w, 0); break;
            case 1: rc = build_g1(&w, 1); break;
            case 2: rc = build_g3(&w); break;
            case 3: rc = build_g4(&w); break;
            default: rc = build_g5(&w); break;
            }
            if (rc != 0) fail_row(names[i], "-", "build", w.ctx ? tfu_last_error_msg(w.ctx) : "no context");
            else run_workload(names[i], &w, NULL, warm, g_min_reps, budget);
            free_workload(&w);
        }
    }
    {
        int Ts[2];
        int ti;
        Ts[0] = 1;
        Ts[1] = g_small ? 16 : 512;
        for (ti = 0; ti < 2; ti++) {
            char name[16];
            snprintf(name, sizeof name, "G6-T%d", Ts[ti]);
            if (!selected(name)) continue;
            memset(&w, 0, sizeof w);
            if (build_g6(&w, Ts[ti]) != 0) fail_row(name, "-", "build", w.ctx ? tfu_last_error_msg(w.ctx) : "no context");
            else run_workload(name, &w, name, warm, g_min_reps, budget);
            free_workload(&w);
        }
        if (selected("G6-mm")) run_mm(Ts[1], warm, g_min_reps, budget);
    }
    if (selected("dispatch") || selected("host")) run_dispatch(g_min_reps);
    if (vo.validation && tfvk_validation_messages(g_vk) > 0) {
        printf("validation: %d messages\n", tfvk_validation_messages(g_vk));
        g_fail = 1;
    }
    tfvk_free(g_vk);
    if (g_report) fclose(g_report);
    if (g_csv) {
        fclose(g_csv);
        printf("\nCSV: %s, plan reports: %s\n", csv_path, g_report ? report_path : "none");
    }
    printf("total %.1f s%s\n", now_s() - t_start, g_fail ? "; SOME ROWS FAILED OR MISMATCHED" : "");
    return g_fail;
}
