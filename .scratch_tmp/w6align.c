#include "bench_nomain.c"
int main(int argc, char **argv) {
    workload w; int f, i; tfu_plan *p[2]; double ms[2];
    memset(&w, 0, sizeof w);
    if (build_w6(&w, argc > 1 ? atoi(argv[1]) : 128, TFU_F32)) return 1;
    for (f = 0; f < 2; f++) {
        tfu_plan_options o = tfu_plan_default_options(); o.no_fusion = !f;
        p[f] = tfu_plan_compile(w.g, &o); tfu_plan_run(p[f]);
        printf("%s: matmul b operands %% 64:", f ? "fused" : "unfused");
        for (i = 0; i < tfu_graph_n_nodes(w.g); i++) { tfu_tensor *t = tfu_graph_node(w.g, i);
            if (t->op == TFU_OP_MUL_MAT) printf(" %d", (int)((uintptr_t)t->src[1]->data % 64)); }
        printf("\n");
    }
    time_pair(p[0], p[1], 2, 7, 1.0, &ms[0], &ms[1]);
    printf("unfused %.2f ms, fused %.2f ms\n", ms[0], ms[1]);
    return 0;
}
