/* mlp.c - a two-layer perceptron with tensorfuse, start to finish.

   Build (from the repository root):
       cc -O2 -I. examples/mlp.c -o mlp -lm -lpthread

   The network, for a batch of 8 inputs of 64 features:
       h      = gelu(W1 x + b1)        W1: 64 -> 128
       logits = W2 h + b2              W2: 128 -> 10
       probs  = softmax(logits)        one row of 10 per input

   What it shows:
     1. sizing a context and building the graph once (errors checked once,
        at the end: every builder passes NULL through);
     2. compiling a plan once and running it many times, changing the input
        by writing its data between runs;
     3. checking the plan against the reference executor, and printing the
        plan report (what was fused, how much memory it needs).

   Shapes follow ggml: ne[0] is the contiguous row length, so a batch of 8
   vectors of 64 is a 64 x 8 tensor, and a weight mapping 64 -> 128 is a
   64 x 128 tensor (one row of 64 per output). */
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N_IN = 64, N_HIDDEN = 128, N_OUT = 10, N_BATCH = 8, N_RUNS = 3 };
enum { MAX_TENSORS = 64 };   /* comfortably more than the 11 we create */

/* A tiny linear congruential generator: the same "random" weights on every
   machine, in [-scale, scale]. */
static uint32_t lcg_state = 12345u;
static float lcg_uniform(float scale) {
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return scale * ((float)(lcg_state >> 8) / 8388608.0f - 1.0f);   /* 24 bits -> [-1, 1) */
}

/* Fills a contiguous F32 tensor with random values. */
static void fill_random(tfu_tensor *t, float scale) {
    float *p = (float *)t->data;
    int64_t i, n = tfu_nelements(t);
    for (i = 0; i < n; i++) p[i] = lcg_uniform(scale);
}

/* The tensors of one network: the leaves we write, the result we read. */
typedef struct mlp {
    tfu_tensor *x, *w1, *b1, *w2, *b2;   /* leaves */
    tfu_tensor *probs;                   /* N_OUT x N_BATCH */
    tfu_graph  *graph;
} mlp;

/* Builds the graph in ctx. Nothing is checked in between: a failing builder
   returns NULL and every later builder passes the NULL on, so one check at
   the end is enough. Returns 0 on success. */
static int mlp_build(tfu_context *ctx, mlp *m) {
    tfu_tensor *h, *logits;

    /* leaves: the input changes between runs, the weights never do */
    m->x  = tfu_set_input(tfu_new_tensor_2d(ctx, TFU_F32, N_IN, N_BATCH));
    m->w1 = tfu_set_flags(tfu_new_tensor_2d(ctx, TFU_F32, N_IN, N_HIDDEN), TFU_FLAG_PARAM);
    m->b1 = tfu_set_flags(tfu_new_tensor_1d(ctx, TFU_F32, N_HIDDEN), TFU_FLAG_PARAM);
    m->w2 = tfu_set_flags(tfu_new_tensor_2d(ctx, TFU_F32, N_HIDDEN, N_OUT), TFU_FLAG_PARAM);
    m->b2 = tfu_set_flags(tfu_new_tensor_1d(ctx, TFU_F32, N_OUT), TFU_FLAG_PARAM);
    tfu_set_name(m->x, "x");
    tfu_set_name(m->w1, "w1"); tfu_set_name(m->b1, "b1");
    tfu_set_name(m->w2, "w2"); tfu_set_name(m->b2, "b2");

    /* layer 1: [64 x 8] -> [128 x 8]; the bias (128) broadcasts over the batch */
    h = tfu_mul_mat(ctx, m->w1, m->x);
    h = tfu_add(ctx, h, m->b1);
    h = tfu_gelu(ctx, h);
    tfu_set_name(h, "hidden");

    /* layer 2: [128 x 8] -> [10 x 8], then a softmax over each row of 10 */
    logits = tfu_add(ctx, tfu_mul_mat(ctx, m->w2, h), m->b2);
    m->probs = tfu_set_name(tfu_soft_max(ctx, logits), "probs");

    /* the graph: everything probs depends on, probs marked as the output.
       MAX_TENSORS bounds the tensors a graph can hold. */
    m->graph = tfu_graph_new(ctx, MAX_TENSORS);
    if (tfu_graph_build_expand(m->graph, m->probs) != TFU_OK) m->graph = NULL;

    if (!m->graph) {
        fprintf(stderr, "mlp: building the graph failed: %s\n", tfu_last_error_msg(ctx));
        return 1;
    }
    return 0;
}

/* Copies the weights of src into dst (both built by mlp_build). */
static void mlp_copy_weights(mlp *dst, const mlp *src) {
    memcpy(dst->w1->data, src->w1->data, tfu_nbytes(src->w1));
    memcpy(dst->b1->data, src->b1->data, tfu_nbytes(src->b1));
    memcpy(dst->w2->data, src->w2->data, tfu_nbytes(src->w2));
    memcpy(dst->b2->data, src->b2->data, tfu_nbytes(src->b2));
}

int main(void) {
    /* Context memory: tensor descriptions, the graph and the leaves' data.
       Leaf data is the weights plus the input; the reference executor also
       takes the intermediate values from its context, so give that one room
       for them too. */
    const size_t leaf_bytes = sizeof(float) *
        (N_IN * N_BATCH + N_IN * N_HIDDEN + N_HIDDEN + N_HIDDEN * N_OUT + N_OUT);
    const size_t value_bytes = sizeof(float) * (4 * N_HIDDEN * N_BATCH + 4 * N_OUT * N_BATCH);
    tfu_context *ctx = NULL, *ref_ctx = NULL;
    tfu_plan *plan = NULL;
    tfu_plan_options opts;
    mlp net, ref;
    float out[N_OUT * N_BATCH];
    char *report = NULL;
    size_t report_len;
    int run, b, i, status = 1;
    tfu_result r;

    ctx = tfu_init_malloc(tfu_context_size(MAX_TENSORS, leaf_bytes), 0);
    ref_ctx = tfu_init_malloc(tfu_context_size(MAX_TENSORS, leaf_bytes + value_bytes), 0);
    if (!ctx || !ref_ctx) { fprintf(stderr, "mlp: cannot create the contexts\n"); goto done; }

    /* The network we run, and an identical one for the reference check. */
    if (mlp_build(ctx, &net) || mlp_build(ref_ctx, &ref)) goto done;
    fill_random(net.w1, 1.0f / sqrtf((float)N_IN));
    fill_random(net.b1, 0.1f);
    fill_random(net.w2, 1.0f / sqrtf((float)N_HIDDEN));
    fill_random(net.b2, 0.1f);
    mlp_copy_weights(&ref, &net);

    /* Compile once: fusion, stages and memory are decided here. */
    opts = tfu_plan_default_options();
    opts.n_threads = 2;
    plan = tfu_plan_compile(net.graph, &opts);
    if (!plan) {
        fprintf(stderr, "mlp: compiling the plan failed: %s\n", tfu_last_error_msg(ctx));
        goto done;
    }

    /* Run many times: write the input, run, read the output. */
    for (run = 0; run < N_RUNS; run++) {
        double max_diff = 0;

        fill_random(net.x, 1.0f);
        r = tfu_plan_run(plan);
        if (r != TFU_OK) {
            fprintf(stderr, "mlp: run %d failed: %s\n", run, tfu_result_str(r));
            goto done;
        }
        /* read the result before anything else writes */
        for (b = 0; b < N_BATCH; b++)
            for (i = 0; i < N_OUT; i++) out[b * N_OUT + i] = tfu_get_f32(net.probs, i, b, 0, 0);

        /* the reference executor on the same input, in its own context */
        memcpy(ref.x->data, net.x->data, tfu_nbytes(net.x));
        r = tfu_graph_compute_ref(ref.graph);
        if (r != TFU_OK) {
            fprintf(stderr, "mlp: reference failed: %s\n", tfu_last_error_msg(ref_ctx));
            goto done;
        }

        printf("run %d: argmax", run);
        for (b = 0; b < N_BATCH; b++) {
            int best = 0;
            for (i = 0; i < N_OUT; i++) {
                double d = fabs((double)out[b * N_OUT + i] - tfu_get_f32(ref.probs, i, b, 0, 0));
                if (!(d <= max_diff)) max_diff = d;          /* a NaN shows up too */
                if (out[b * N_OUT + i] > out[b * N_OUT + best]) best = i;
            }
            printf(" %d", best);
        }
        printf("   max |plan - ref| = %.3g\n", max_diff);
        if (!(max_diff < 1e-4)) {
            fprintf(stderr, "mlp: the plan and the reference disagree\n");
            goto done;
        }
    }

    /* The report: asked once for its length (like snprintf), then written. */
    report_len = tfu_plan_report(plan, NULL, 0);
    report = (char *)malloc(report_len + 1);
    if (!report) goto done;
    tfu_plan_report(plan, report, report_len + 1);
    printf("\n%s\n", report);
    status = 0;

done:
    free(report);
    tfu_plan_free(plan);
    tfu_free(ref_ctx);
    tfu_free(ctx);
    return status;
}
