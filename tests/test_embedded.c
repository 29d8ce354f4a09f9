/* test_embedded.c - the embedded build: no malloc, no threads, no stdio.

   Every byte lives in static buffers: the context, the plan memory (a bump
   allocator handed in through tfu_allocator) and one caller arena. The
   program runs the header's self-test, then a small model against a double
   reference written here:

       h = rms_norm(x) * g                x: D x N, g: D
       u = gelu(W1 h + b1)                W1: D -> H (f32)
       y = x + W2 u + b2                  W2: H -> D (f16 weights)
       p = softmax(0.5 y)                 rows of D

   fused and unfused, on the calling thread and on a serial parallel-for of
   the caller's, several runs with new inputs, outputs poisoned before every
   run. Its only contact with the platform is emb_write (a UART on a board;
   write(2) or _write here). make builds it twice, once with TFU_NO_SIMD.

     test_embedded */
#define _POSIX_C_SOURCE 200809L
#define TFU_NO_MALLOC
#define TFU_NO_THREADS
#define TFU_NO_STDIO
#define TFU_SELFTEST
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include <math.h>
#include <string.h>
#if defined(_WIN32)
#include <io.h>
#else
#include <unistd.h>
#endif

enum { D = 37, H = 53, N = 5, RUNS = 3, MAX_TENSORS = 48 };

/* --- output: the one platform routine ------------------------------------ */

static void emb_write(const char *s) {
    size_t n = strlen(s);
#if defined(_WIN32)
    if (_write(1, s, (unsigned)n) < 0) return;
#else
    if (write(1, s, n) < 0) return;
#endif
}

static void emb_int(long v) {
    char b[24];
    int n = 0;
    unsigned long u = v < 0 ? 0ul - (unsigned long)v : (unsigned long)v;
    if (v < 0) emb_write("-");
    do {
        b[sizeof b - 2 - n] = (char)('0' + (int)(u % 10));
        n++;
        u /= 10;
    } while (u && n < (int)sizeof b - 2);
    b[sizeof b - 1] = 0;
    emb_write(b + sizeof b - 1 - n);
}

static int passed, failed;

static void check(int ok, const char *what) {
    if (ok) {
        passed++;
        return;
    }
    failed++;
    emb_write("FAIL test_embedded: ");
    emb_write(what);
    emb_write("\n");
}

/* --- static memory ---------------------------------------------------------- */

static unsigned char ctx_mem[256 << 10];
static unsigned char pool_mem[256 << 10];
static unsigned char arena_mem[(64 << 10) + 64];
static size_t pool_used;
static int pool_live;

/* bump allocation; the pool starts over once every block is back */
static void *pool_alloc(size_t size, void *user) {
    size_t start = (pool_used + 15) & ~(size_t)15;
    unsigned char *base = pool_mem + ((16 - (uintptr_t)pool_mem % 16) % 16);
    (void)user;
    if (start + size > sizeof pool_mem - 16) return NULL;
    pool_used = start + size;
    pool_live++;
    return base + start;
}

static void pool_free(void *ptr, void *user) {
    (void)user;
    if (!ptr) return;
    pool_live--;
    if (pool_live == 0) pool_used = 0;
}

/* the caller's parallel-for: serial, last item first (any order must do) */
static int pf_calls;
static void pf_serial(void *user, int n, void (*task)(void *, int), void *task_ctx) {
    int i;
    (void)user;
    pf_calls++;
    for (i = n - 1; i >= 0; i--) task(task_ctx, i);
}

/* --- the model and its double reference ----------------------------------- */

typedef struct model {
    tfu_tensor *x, *g, *w1, *b1, *w2, *b2;   /* leaves */
    tfu_tensor *y, *p;                       /* y kept, p the output */
    tfu_graph  *graph;
} model;

static uint32_t rng = 2463534242u;
static float rnd(float lo, float hi) {   /* never exactly zero */
    float v;
    do {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        v = lo + (hi - lo) * (float)(rng >> 8) / 16777216.0f;
    } while (v == 0.0f);
    return v;
}

static void fill(tfu_tensor *t, float lo, float hi) {
    int64_t i, n = tfu_nelements(t);
    for (i = 0; i < n; i++) tfu_set_f32(t, i % t->ne[0], i / t->ne[0], 0, 0, rnd(lo, hi));
}

static int build(tfu_context *ctx, model *m) {
    tfu_tensor *h, *u;
    m->x = tfu_set_input(tfu_new_tensor_2d(ctx, TFU_F32, D, N));
    m->g = tfu_new_tensor_1d(ctx, TFU_F32, D);
    m->w1 = tfu_new_tensor_2d(ctx, TFU_F32, D, H);
    m->b1 = tfu_new_tensor_1d(ctx, TFU_F32, H);
    m->w2 = tfu_new_tensor_2d(ctx, TFU_F16, H, D);
    m->b2 = tfu_new_tensor_1d(ctx, TFU_F32, D);
    h = tfu_mul(ctx, tfu_rms_norm(ctx, m->x, 1e-6f), m->g);
    u = tfu_gelu(ctx, tfu_add(ctx, tfu_mul_mat(ctx, m->w1, h), m->b1));
    m->y = tfu_set_keep(tfu_add(ctx, tfu_add(ctx, m->x, tfu_mul_mat(ctx, m->w2, u)), m->b2));
    m->p = tfu_soft_max_ext(ctx, m->y, NULL, 0.5f);
    m->graph = tfu_graph_new(ctx, MAX_TENSORS);
    return m->graph && tfu_graph_build_expand(m->graph, m->p) == TFU_OK;
}

static double gelu_d(double v) { return 0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))); }

/* y and p of the model in double, from the tensors' own (rounded) values */
static void reference(const model *m, double *y, double *p) {
    double h[D], u[H];
    int n, i, k;
    for (n = 0; n < N; n++) {
        double ss = 0, mx = -1e300, sum = 0;
        for (i = 0; i < D; i++) ss += (double)tfu_get_f32(m->x, i, n, 0, 0) * tfu_get_f32(m->x, i, n, 0, 0);
        for (i = 0; i < D; i++) h[i] = tfu_get_f32(m->x, i, n, 0, 0) / sqrt(ss / D + 1e-6) * tfu_get_f32(m->g, i, 0, 0, 0);
        for (k = 0; k < H; k++) {
            double acc = tfu_get_f32(m->b1, k, 0, 0, 0);
            for (i = 0; i < D; i++) acc += (double)tfu_get_f32(m->w1, i, k, 0, 0) * h[i];
            u[k] = gelu_d(acc);
        }
        for (i = 0; i < D; i++) {
            double acc = (double)tfu_get_f32(m->x, i, n, 0, 0) + tfu_get_f32(m->b2, i, 0, 0, 0);
            for (k = 0; k < H; k++) acc += (double)tfu_get_f32(m->w2, k, i, 0, 0) * u[k];
            y[n * D + i] = acc;
            if (0.5 * acc > mx) mx = 0.5 * acc;
        }
        for (i = 0; i < D; i++) sum += exp(0.5 * y[n * D + i] - mx);
        for (i = 0; i < D; i++) p[n * D + i] = exp(0.5 * y[n * D + i] - mx) / sum;
    }
}

/* largest error relative to max(1, |ref|); NaN (an unwritten element) is infinite */
static double max_err(const tfu_tensor *t, const double *ref) {
    double worst = 0;
    int n, i;
    for (n = 0; n < N; n++)
        for (i = 0; i < D; i++) {
            double v = tfu_get_f32(t, i, n, 0, 0), r = ref[n * D + i];
            double e = fabs(v - r) / (fabs(r) > 1.0 ? fabs(r) : 1.0);
            if (!(e <= worst)) worst = e;
        }
    return worst;
}

/* compiles with o, runs RUNS times with new inputs, checks every run */
static void run_model(model *m, tfu_plan_options o, int own_arena, const char *what) {
    static double y_ref[N * D], p_ref[N * D];
    tfu_plan *plan;
    unsigned char *arena = arena_mem + ((16 - (uintptr_t)arena_mem % 16) % 16);
    int r;
    o.allocator.alloc_fn = pool_alloc;
    o.allocator.free_fn = pool_free;
    o.allocator.user = NULL;
    if (own_arena) {
        o.arena = arena;
        o.arena_size = sizeof arena_mem - 64;
    }
    plan = tfu_plan_compile(m->graph, &o);
    check(plan != NULL, what);
    if (!plan) {
        emb_write(tfu_last_error_msg(tfu_graph_context(m->graph)));
        emb_write("\n");
        return;
    }
    for (r = 0; r < RUNS; r++) {
        fill(m->x, -2.0f, 2.0f);
        memset(m->y->data, 0xFF, tfu_nbytes(m->y));   /* poison: NaN */
        memset(m->p->data, 0xFF, tfu_nbytes(m->p));
        check(tfu_plan_run(plan) == TFU_OK, what);
        reference(m, y_ref, p_ref);
        check(max_err(m->y, y_ref) < 1e-5, what);
        check(max_err(m->p, p_ref) < 1e-6, what);
    }
    tfu_plan_free(plan);
    check(pool_live == 0, "plan memory not all given back");
}

int main(void) {
    tfu_context_params cp;
    tfu_context *ctx;
    tfu_plan_options o;
    model m;
    char report[2048];
    int fused_groups = 0, built;

    check(tfu_selftest() == 0, "tfu_selftest");

    cp.mem = ctx_mem;
    cp.mem_size = sizeof ctx_mem;
    cp.no_alloc = 0;
    ctx = tfu_init(cp);
    check(ctx != NULL, "tfu_init on a static buffer");
    built = ctx && build(ctx, &m);
    if (!built) {
        check(0, "building the model");
        emb_write(ctx ? tfu_last_error_msg(ctx) : "no context");
        emb_write("\n");
    } else {
        fill(m.g, 0.5f, 1.5f);
        fill(m.w1, -0.3f, 0.3f);
        fill(m.b1, -0.1f, 0.1f);
        fill(m.w2, -0.3f, 0.3f);
        fill(m.b2, -0.1f, 0.1f);

        o = tfu_plan_default_options();
        run_model(&m, o, 0, "fused, plan arena");
        o.no_fusion = 1;
        run_model(&m, o, 1, "unfused, caller arena");
        o.no_fusion = 0;
        o.n_threads = 3;
        o.parallel_for = pf_serial;
        run_model(&m, o, 1, "fused, caller parallel-for");
        check(pf_calls > 0, "the parallel-for was never called");

        /* the report goes to a buffer; the pool is free again */
        o = tfu_plan_default_options();
        o.allocator.alloc_fn = pool_alloc;
        o.allocator.free_fn = pool_free;
        {
            tfu_plan *plan = tfu_plan_compile(m.graph, &o);
            size_t len = plan ? tfu_plan_report(plan, report, sizeof report) : 0;
            check(len > 0 && strlen(report) == (len < sizeof report ? len : sizeof report - 1), "report into a buffer");
            fused_groups = plan ? tfu_plan_n_groups(plan) : 0;
            tfu_plan_free(plan);
        }
        check(fused_groups > 0 && fused_groups < 8, "the model did not fuse");
    }

    /* errors: no abort, a message made without stdio */
    if (built) {
        tfu_tensor *a = tfu_new_tensor_2d(ctx, TFU_F32, 6, 2), *b = tfu_new_tensor_1d(ctx, TFU_F32, 4);
        check(tfu_add(ctx, a, b) == NULL && tfu_last_error(ctx) == TFU_ERR_SHAPE, "shape error");
        check(strstr(tfu_last_error_msg(ctx), "[6,2,1,1]") != NULL, "error message with the shape");
        tfu_clear_error(ctx);
        check(tfu_plan_compile(m.graph, NULL) == NULL && tfu_last_error(ctx) == TFU_ERR_INVALID_ARG,
              "no allocator under TFU_NO_MALLOC");
    }
    check(strlen(tfu_version()) >= 5, "tfu_version");

    emb_int(passed);
    emb_write(" passed, ");
    emb_int(failed);
    emb_write(" failed\n");
    return failed ? 1 : 0;
}
