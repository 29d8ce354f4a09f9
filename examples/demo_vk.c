/* demo_vk.c - the llama-style model of demo.c on Vulkan (tensorfuse_vk.h).

   Build (from the repository root; needs the Vulkan headers, libvulkan-dev,
   and at run time a Vulkan driver, e.g. Mesa's lavapipe):
       cc -O2 -I. examples/demo_vk.c -o demo_vk -lm -lpthread -ldl
   or `make demo-vk`.

   Compiles the same graph for the CPU and for Vulkan, fused and unfused;
   prints the Vulkan plan (stages, barriers: one per stage boundary) with
   the GPU time per stage, times the runs, and compares Vulkan with the CPU
   and with the reference executor.

   usage: demo_vk [--f16] [--layers N] [--tokens T] [--reps N]
   Exit status: 0 when every plan agrees with the reference (max relative
   difference <= 1e-3), 1 otherwise, 2 on an error (no Vulkan: 2, with the
   reason). */
#define _POSIX_C_SOURCE 200809L
#define TFU_IMPLEMENTATION
#define TFVK_IMPLEMENTATION
#include "tensorfuse.h"
#include "tensorfuse_vk.h"
#include "llama.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* max |a - ref| / max |ref| */
static double rel_diff(const float *a, const float *ref, int64_t n) {
    double md = 0.0, mr = 0.0;
    int64_t i;
    for (i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]), r = fabs((double)ref[i]);
        if (d != d) return INFINITY;
        if (d > md) md = d;
        if (r > mr) mr = r;
    }
    return mr > 0.0 ? md / mr : md;
}

static void print_vk_report(const tfvk_plan *p) {
    size_t n = tfvk_plan_report(p, NULL, 0);
    char *buf = (char *)malloc(n + 1);
    if (!buf) return;
    tfvk_plan_report(p, buf, n + 1);
    fputs(buf, stdout);
    free(buf);
}

int main(int argc, char **argv) {
    llama_config cfg = llama_default_config();
    int reps = 5, i, fi, status = 0;
    tfu_context *ctx, *rctx;
    llama_model m, rm;
    tfu_graph *g, *rg;
    tfvk_context *vk;
    float *ref, *got, *cpu;
    int64_t n_out;
    double t0;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--f16")) cfg.wtype = TFU_F16;
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) cfg.n_layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) cfg.T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--f16] [--layers N] [--tokens T] [--reps N]\n", argv[0]);
            return 2;
        }
    }
    if (llama_check_config(&cfg) != 0 || reps < 1) {
        fprintf(stderr, "demo_vk: bad configuration\n");
        return 2;
    }
    vk = tfvk_init(NULL);
    if (tfvk_last_error(vk) != TFU_OK) {
        fprintf(stderr, "demo_vk: no Vulkan: %s\n", tfvk_last_error_msg(vk));
        tfvk_free(vk);
        return 2;
    }
    {
        tfvk_device_info I = tfvk_get_device_info(vk);
        printf("tensorfuse demo on Vulkan: %s (maxStorageBufferRange %llu MiB, %s)\n", I.name,
               (unsigned long long)(I.max_storage_buffer_range >> 20), I.zero_copy ? "zero-copy memory" : "staging");
    }
    printf("model: %d layers, dim %d, %d heads (%d kv), head_dim %d, ffn %d, T %d, %s weights\n", cfg.n_layers, cfg.dim,
           cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.ffn, cfg.T, tfu_type_name(cfg.wtype));
    ctx = tfu_init_malloc(llama_context_bytes(&cfg, 0), 0);
    rctx = tfu_init_malloc(llama_context_bytes(&cfg, 1), 0);
    if (!ctx || !rctx || llama_build(ctx, &cfg, &m) != 0 || !(g = llama_graph(ctx, &m)) || llama_build(rctx, &cfg, &rm) != 0 ||
        !(rg = llama_graph(rctx, &rm))) {
        fprintf(stderr, "demo_vk: build failed\n");
        return 2;
    }
    n_out = tfu_nelements(m.out);
    ref = (float *)malloc((size_t)n_out * sizeof(float));
    got = (float *)malloc((size_t)n_out * sizeof(float));
    cpu = (float *)malloc((size_t)n_out * sizeof(float));
    if (!ref || !got || !cpu || tfu_graph_compute_ref(rg) != TFU_OK) {
        fprintf(stderr, "demo_vk: reference failed\n");
        return 2;
    }
    llama_copy_out(rm.out, ref);
    /* the CPU plan of the same graph */
    {
        tfu_plan *cp = tfu_plan_compile(g, NULL);
        if (!cp || tfu_plan_run(cp) != TFU_OK) {
            fprintf(stderr, "demo_vk: CPU plan: %s\n", tfu_last_error_msg(ctx));
            return 2;
        }
        t0 = now_ms();
        for (i = 0; i < reps; i++) tfu_plan_run(cp);
        printf("CPU plan (1 thread): %.2f ms per run\n", (now_ms() - t0) / reps);
        llama_copy_out(m.out, cpu);
        tfu_plan_free(cp);
    }
    for (fi = 1; fi >= 0; fi--) {
        tfvk_plan_options o = tfvk_plan_default_options();
        tfvk_plan *p;
        tfvk_plan_stats st;
        double tc, d_ref, d_cpu, gpu_us = 0;
        o.no_fusion = !fi;
        o.profile = 1;
        t0 = now_ms();
        p = tfvk_plan_compile(vk, g, &o);
        tc = now_ms() - t0;
        if (!p) {
            fprintf(stderr, "demo_vk: compile: %s\n", tfvk_last_error_msg(vk));
            return 2;
        }
        if (tfvk_plan_run(p) != TFU_OK) {
            fprintf(stderr, "demo_vk: run: %s\n", tfvk_last_error_msg(vk));
            return 2;
        }
        st = tfvk_plan_get_stats(p);
        if (fi) {
            printf("\n--- Vulkan plan, fused (compiled with its pipelines and command buffer in %.0f ms) ---\n", tc);
            print_vk_report(p);
            printf("\n");
        }
        t0 = now_ms();
        for (i = 0; i < reps; i++) {
            tfvk_plan_run(p);
            gpu_us += tfvk_plan_get_stats(p).last_run_us;
        }
        llama_copy_out(m.out, got);
        d_ref = rel_diff(got, ref, n_out);
        d_cpu = rel_diff(got, cpu, n_out);
        printf("vulkan %-7s: %3d groups, %3d stages, %3d barriers (stages - 1: %s), %.2f ms per run (%.2f ms on the GPU); "
               "rel diff %.2e vs reference, %.2e vs CPU\n",
               fi ? "fused" : "unfused", st.n_groups, st.n_stages, st.n_barriers, st.n_barriers == st.n_stages - 1 ? "yes" : "NO",
               (now_ms() - t0) / reps, gpu_us / reps * 1e-3, d_ref, d_cpu);
        if (!(d_ref <= 1e-3) || st.n_barriers != st.n_stages - 1) status = 1;
        tfvk_plan_free(p);
    }
    printf("%s\n", status ? "FAIL" : "ok: Vulkan agrees with the reference and the CPU");
    free(ref);
    free(got);
    free(cpu);
    tfu_free(ctx);
    tfu_free(rctx);
    tfvk_free(vk);
    return status;
}
