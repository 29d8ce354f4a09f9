/* demo.c - a small llama-style model on the tensorfuse CPU executor.

   Build (from the repository root):
       cc -O2 -march=native -I. examples/demo.c -o demo -lm -lpthread
   or `make demo`.

   Builds a 4-layer decoder (dim 512, 8 heads, 2 kv heads, head_dim 64,
   ffn 1376, T = 32 tokens, random weights), compiles a plan once, prints the
   plan report, times plan runs fused and unfused on 1 and 2 threads, and
   checks the fused result against the reference executor.

   usage: demo [--dot FILE] [--f16] [--layers N] [--tokens T] [--reps N]
     --dot FILE   write the fused plan as Graphviz DOT to FILE
     --f16        F16 weight matrices
   TFU_NO_FUSION=1 in the environment makes every plan unfused (the library
   reads it); the demo says so.
   Exit status: 0 when every plan agrees with the reference (max relative
   difference <= 1e-3), 1 otherwise, 2 on an error. */
#define _POSIX_C_SOURCE 200809L
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include "llama.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* contiguous F32 copy of a result tensor */
/* max |a - ref| / max |ref| */
static double rel_diff(const float *a, const float *ref, int64_t n) {
    double md = 0.0, mr = 0.0;
    int64_t i;
    for (i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]), r = fabs((double)ref[i]);
        if (d != d) return INFINITY;  /* NaN */
        if (d > md) md = d;
        if (r > mr) mr = r;
    }
    return mr > 0.0 ? md / mr : md;
}

static void print_report(const tfu_plan *p) {
    char one[1];
    size_t n = tfu_plan_report(p, one, sizeof one);
    char *buf = (char *)malloc(n + 1);
    if (!buf) return;
    tfu_plan_report(p, buf, n + 1);
    fputs(buf, stdout);
    if (n == 0 || buf[n - 1] != '\n') fputc('\n', stdout);
    free(buf);
}

static int write_dot(const tfu_plan *p, const char *path) {
    char one[1];
    size_t n = tfu_plan_dot(p, one, sizeof one);
    char *buf = (char *)malloc(n + 1);
    FILE *f;
    if (!buf) return -1;
    tfu_plan_dot(p, buf, n + 1);
    f = fopen(path, "w");
    if (!f) { free(buf); return -1; }
    fwrite(buf, 1, n, f);
    fclose(f);
    free(buf);
    return 0;
}

/* The memory-bound blocks of a layer, where fusion shows: one pass over
   memory instead of several. Returns the fused speed-up with n threads. */
static double block_speedup(int which, int n_threads, int reps, double *ms_unfused, double *ms_fused) {
    tfu_context *c = tfu_init_malloc(tfu_context_size(16, (size_t)4 * 3 * 4096 * 512 + 4 * 512 * 512), 0);
    tfu_tensor *x, *y;
    tfu_graph *g;
    tfu_plan *pl[2];
    double *smp[2], out[2];
    int i, f;
    uint32_t seed = 7;
    if (!c) return 0.0;
    if (which == 0) {   /* y = rms_norm(x) * w + r over a batch of 512 tokens of 4096 */
        tfu_tensor *w = tfu_new_tensor_1d(c, TFU_F32, 4096), *r = tfu_new_tensor_2d(c, TFU_F32, 4096, 512);
        x = tfu_new_tensor_2d(c, TFU_F32, 4096, 512);
        if (!x || !w || !r) { tfu_free(c); return 0.0; }
        llama_fill(x, &seed, 0.0f, 1.0f); llama_fill(w, &seed, 1.0f, 0.1f); llama_fill(r, &seed, 0.0f, 1.0f);
        y = tfu_add(c, tfu_mul(c, tfu_rms_norm(c, x, 1e-6f), w), r);
    } else {            /* attention weights: softmax(kq * 0.125 + causal mask), 512 x 512 x 8 heads */
        tfu_tensor *mask = tfu_causal_mask(c, 512, 512);
        x = tfu_new_tensor_3d(c, TFU_F32, 512, 512, 8);
        if (!x || !mask) { tfu_free(c); return 0.0; }
        llama_fill(x, &seed, 0.0f, 1.0f);
        y = tfu_soft_max(c, tfu_add(c, tfu_scale(c, x, 0.125f), mask));
    }
    g = tfu_graph_build(c, y);
    for (f = 0; f < 2; f++) {
        tfu_plan_options o = tfu_plan_default_options();
        o.n_threads = n_threads; o.no_fusion = !f;
        pl[f] = g ? tfu_plan_compile(g, &o) : NULL;
        smp[f] = (double *)malloc((size_t)reps * sizeof(double));
    }
    if (!pl[0] || !pl[1] || !smp[0] || !smp[1]) { tfu_free(c); return 0.0; }
    for (i = -3; i < reps; i++)
        for (f = 0; f < 2; f++) {
            double t0 = now_s();
            tfu_plan_run(pl[f]);
            if (i >= 0) smp[f][i] = (now_s() - t0) * 1e3;
        }
    for (f = 0; f < 2; f++) {
        qsort(smp[f], (size_t)reps, sizeof(double), cmp_double);
        out[f] = smp[f][reps / 2];
        free(smp[f]);
        tfu_plan_free(pl[f]);
    }
    tfu_free(c);
    *ms_unfused = out[0]; *ms_fused = out[1];
    return out[0] / out[1];
}

int main(int argc, char **argv) {
    llama_config cfg = llama_default_config();
    const char *dot_path = NULL;
    int reps = 9, i, ti, fi, status = 0;
    tfu_context *ctx = NULL, *rctx = NULL;
    llama_model m, rm;
    tfu_graph *g, *rg;
    tfu_plan_stats st;
    float *ref = NULL, *got = NULL;
    int64_t n_out;
    double ms[2][2];   /* [fused][threads-1] median ms */
    double diff[2][2];
    double t0;
    static const int threads[2] = {1, 2};

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dot") && i + 1 < argc) dot_path = argv[++i];
        else if (!strcmp(argv[i], "--f16")) cfg.wtype = TFU_F16;
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) cfg.n_layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) cfg.T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--dot FILE] [--f16] [--layers N] [--tokens T] [--reps N]\n", argv[0]);
            return 2;
        }
    }
    if (llama_check_config(&cfg) != 0 || reps < 1) { fprintf(stderr, "demo: bad configuration\n"); return 2; }

    printf("tensorfuse demo: %d layers, dim %d, %d heads (%d kv), head_dim %d, ffn %d, T %d, %s weights\n",
           cfg.n_layers, cfg.dim, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.ffn, cfg.T,
           tfu_type_name(cfg.wtype));
    printf("weights %.1f MiB, %.2f GFLOP per run in matrix products\n",
           llama_weight_bytes(&cfg) / 1048576.0, llama_matmul_flops(&cfg) * 1e-9);

    /* the model for plans, and an identical one (same seeds) for the reference */
    ctx = tfu_init_malloc(llama_context_bytes(&cfg, 0), 0);
    rctx = tfu_init_malloc(llama_context_bytes(&cfg, 1), 0);
    if (!ctx || !rctx) { fprintf(stderr, "demo: out of memory\n"); return 2; }
    t0 = now_s();
    if (llama_build(ctx, &cfg, &m) != 0 || !(g = llama_graph(ctx, &m))) {
        fprintf(stderr, "demo: build: %s\n", tfu_last_error_msg(ctx)); return 2;
    }
    if (llama_build(rctx, &cfg, &rm) != 0 || !(rg = llama_graph(rctx, &rm))) {
        fprintf(stderr, "demo: build (ref): %s\n", tfu_last_error_msg(rctx)); return 2;
    }
    printf("graph: %d nodes, %d leafs (built twice in %.0f ms)\n",
           tfu_graph_n_nodes(g), tfu_graph_n_leafs(g), (now_s() - t0) * 1e3);

    n_out = tfu_nelements(m.out);
    ref = (float *)malloc((size_t)n_out * sizeof(float));
    got = (float *)malloc((size_t)n_out * sizeof(float));
    if (!ref || !got) { fprintf(stderr, "demo: out of memory\n"); return 2; }

    t0 = now_s();
    if (tfu_graph_compute_ref(rg) != TFU_OK) {
        fprintf(stderr, "demo: reference: %s\n", tfu_last_error_msg(rctx)); return 2;
    }
    printf("reference executor: %.0f ms\n", (now_s() - t0) * 1e3);
    llama_copy_out(rm.out, ref);

    for (ti = 0; ti < 2; ti++) {
        tfu_plan *plans[2];                 /* [0] unfused, [1] fused */
        double *samples[2];
        for (fi = 1; fi >= 0; fi--) {
            tfu_plan_options o = tfu_plan_default_options();
            o.n_threads = threads[ti];
            o.no_fusion = !fi;
            t0 = now_s();
            plans[fi] = tfu_plan_compile(g, &o);
            if (!plans[fi]) {
                fprintf(stderr, "demo: plan compile (%s, %d threads): %s\n",
                        fi ? "fused" : "unfused", threads[ti], tfu_last_error_msg(ctx));
                return 2;
            }
            if (fi && ti == 0) {
                double tc = (now_s() - t0) * 1e3;
                st = tfu_plan_get_stats(plans[fi]);
                printf("\n--- plan (compiled in %.2f ms) ---\n", tc);
                print_report(plans[fi]);
                printf("groups %d (eltwise %d, row %d, matmul %d, other %d), nodes fused %d, values elided %d\n",
                       st.n_groups, st.n_groups_kind[TFU_GROUP_ELTWISE], st.n_groups_kind[TFU_GROUP_ROW],
                       st.n_groups_kind[TFU_GROUP_MATMUL], st.n_groups_kind[TFU_GROUP_OTHER],
                       st.n_nodes_fused, st.n_values_elided);
                printf("stages %d, barriers %d, arena %.1f KiB fused vs %.1f KiB unfused (values total %.1f KiB)\n",
                       st.n_stages, st.n_barriers, st.arena_bytes / 1024.0,
                       st.arena_bytes_unfused / 1024.0, st.value_bytes_total / 1024.0);
                if (st.n_nodes_fused == 0)
                    printf("fusion is off%s: every operation runs as its own group\n",
                           getenv("TFU_NO_FUSION") ? " (TFU_NO_FUSION is set)" : "");
                if (dot_path) {
                    if (write_dot(plans[fi], dot_path) == 0) printf("plan DOT written to %s\n", dot_path);
                    else { fprintf(stderr, "demo: cannot write %s\n", dot_path); status = 2; }
                }
                printf("\n");
            }
            samples[fi] = (double *)malloc((size_t)reps * sizeof(double));
            if (!samples[fi]) return 2;
        }
        /* three warm-up rounds, then the two plans in turns, so both see the same machine */
        for (i = -3; i < reps; i++) {
            for (fi = 0; fi < 2; fi++) {
                tfu_result r;
                t0 = now_s();
                r = tfu_plan_run(plans[fi]);
                if (r != TFU_OK) {
                    fprintf(stderr, "demo: plan run: %s\n", tfu_result_str(r)); return 2;
                }
                if (i >= 0) samples[fi][i] = (now_s() - t0) * 1e3;
            }
        }
        for (fi = 0; fi < 2; fi++) {
            qsort(samples[fi], (size_t)reps, sizeof(double), cmp_double);
            ms[fi][ti] = samples[fi][reps / 2];
            free(samples[fi]);
            if (tfu_plan_run(plans[fi]) != TFU_OK) return 2;   /* its own result, for the check */
            llama_copy_out(m.out, got);
            diff[fi][ti] = rel_diff(got, ref, n_out);
            tfu_plan_free(plans[fi]);
        }
    }

    printf("%-9s %7s %11s %9s %13s %10s\n", "plan", "threads", "median ms", "GFLOP/s", "vs unfused", "rel diff");
    for (fi = 1; fi >= 0; fi--) {
        for (ti = 0; ti < 2; ti++) {
            char sp[32] = "";
            if (fi) snprintf(sp, sizeof sp, "x%.2f", ms[0][ti] / ms[1][ti]);
            printf("%-9s %7d %11.3f %9.2f %13s %10.2e\n", fi ? "fused" : "unfused", threads[ti],
                   ms[fi][ti], llama_matmul_flops(&cfg) / (ms[fi][ti] * 1e6), sp, diff[fi][ti]);
            if (!(diff[fi][ti] <= 1e-3)) status = status ? status : 1;
        }
    }
    printf("\n(the matrix products dominate this model: fusion saves memory passes, not FLOPs)\n\n");
    printf("memory-bound blocks of a layer, batch of 512 tokens:\n");
    printf("%-34s %7s %12s %10s %11s\n", "block", "threads", "unfused ms", "fused ms", "speed-up");
    for (i = 0; i < 2; i++)
        for (ti = 0; ti < 2; ti++) {
            double mu = 0, mf = 0, sp = block_speedup(i, threads[ti], reps, &mu, &mf);
            printf("%-34s %7d %12.3f %10.3f %10.2fx\n", i == 0 ? "rms_norm(x)*w + r, 4096x512" : "softmax(x*0.125 + mask), 512x512x8",
                   threads[ti], mu, mf, sp);
        }
    {
        double worst = 0.0;
        for (fi = 0; fi < 2; fi++) for (ti = 0; ti < 2; ti++)
            if (!(diff[fi][ti] <= worst)) worst = diff[fi][ti];
        printf("max rel diff vs reference (max|plan-ref| / max|ref|): %.3e (%s)\n",
               worst, status == 1 ? "FAIL, limit 1e-3" : "ok");
    }

    free(ref);
    free(got);
    tfu_free(ctx);
    tfu_free(rctx);
    return status;
}
