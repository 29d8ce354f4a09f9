/* test_threads.c - the threaded executor against the reference.

   Several graphs (element-wise, row, matmul, a llama-style block, a wide
   DAG) run on the built-in pool with 2, 3 and 4 threads and on caller
   parallel-fors (serial in reverse order, and pthreads), many times, with
   the inputs changed between runs; every run is compared with the
   reference. Two plans also run at once from two caller threads, and
   plans run under FE_UPWARD set after their pool started give the 1-thread
   bits on 2 and 3 threads and on a parallel-for whose threads keep round
   to nearest. Built
   with -fsanitize=thread by `make tsan`.

     test_threads [--iters N] */
#define _POSIX_C_SOURCE 200809L
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include "tfu_test.h"
#include "examples/llama.h"
#include <fenv.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

/* watchdog: a deadlocked run becomes a reported failure, not a hung suite */
#define WATCHDOG_S 120
static const char *volatile g_where = "start";
static void put_str(const char *s) { size_t n = strlen(s); if (write(1, s, n) < 0) return; }
static void put_int(int v) {
    char b[16]; int n = 0;
    if (v < 0) v = 0;
    do { b[15 - n++] = (char)('0' + v % 10); v /= 10; } while (v && n < 15);
    if (write(1, b + 16 - n, (size_t)n) < 0) return;
}
static void on_alarm(int sig) {
    (void)sig;
    put_str("FAIL test_threads: no progress for "); put_int(WATCHDOG_S); put_str(" s in '");
    put_str(g_where); put_str("' (deadlock?)\n");
    put_int(tt_passed); put_str(" passed, "); put_int(tt_failed + 1); put_str(" failed\n");
    _exit(1);
}

#define CTX_BYTES ((size_t)32 << 20)

typedef struct fx {
    tfu_context *ctx;
    tfu_graph   *g;
    tfu_tensor  *in[4];   /* inputs refilled between runs */
    int          n_in;
    void        *arg;
} fx;
typedef int (*build_fn)(fx *f);

static int fx_make(fx *f, build_fn fn, void *arg, uint64_t seed) {
    memset(f, 0, sizeof *f);
    f->arg = arg;
    f->ctx = tfu_init_malloc(CTX_BYTES, 0);
    if (!f->ctx) return -1;
    f->g = tfu_graph_new(f->ctx, 4096);
    if (!f->g) return -1;
    tt_seed(seed);
    return fn(f);
}
static void fx_free(fx *f) { if (f->ctx) tfu_free(f->ctx); memset(f, 0, sizeof *f); }

static tfu_tensor *rnd(fx *f, tfu_type ty, int64_t n0, int64_t n1, float lo, float hi) {
    tfu_tensor *t = n1 > 1 ? tfu_new_tensor_2d(f->ctx, ty, n0, n1) : tfu_new_tensor_1d(f->ctx, ty, n0);
    if (t) tt_fill(t, lo, hi);
    return t;
}
static tfu_tensor *input(fx *f, int64_t n0, int64_t n1) {
    tfu_tensor *t = rnd(f, TFU_F32, n0, n1, -2, 2);
    if (t && f->n_in < 4) f->in[f->n_in++] = tfu_set_input(t);
    return t;
}
static int out(fx *f, tfu_tensor *t) { return t && tfu_graph_build_expand(f->g, t) == TFU_OK ? 0 : -1; }
#define TRY(x) do { if (!(x)) return -1; } while (0)

/* --- graphs ---------------------------------------------------------------- */

static int b_eltwise(fx *f) {
    tfu_tensor *x, *y, *row, *t, *u;
    TRY(x = input(f, 257, 33));
    TRY(y = rnd(f, TFU_F16, 257, 33, -1, 1));
    TRY(row = rnd(f, TFU_F32, 257, 1, 0.5f, 1.5f));
    TRY(t = tfu_add(f->ctx, x, y));
    TRY(t = tfu_mul(f->ctx, t, row));
    TRY(t = tfu_tanh(f->ctx, t));
    TRY(u = tfu_silu(f->ctx, t));                 /* t used twice */
    TRY(t = tfu_sub(f->ctx, u, tfu_scale(f->ctx, t, 0.3f)));
    TRY(t = tfu_clamp(f->ctx, t, -0.7f, 0.8f));
    tfu_set_keep(u);
    TRY(t = tfu_gelu(f->ctx, t));
    if (out(f, t)) return -1;
    /* a transposed copy: a second group reading a materialised value */
    TRY(t = tfu_cont(f->ctx, tfu_transpose(f->ctx, u)));
    return out(f, tfu_sqr(f->ctx, t));
}

static int b_row(fx *f) {
    tfu_tensor *x, *w, *r, *mask, *t, *s;
    TRY(x = input(f, 129, 61));
    TRY(w = rnd(f, TFU_F32, 129, 1, 0.5f, 1.5f));
    TRY(r = rnd(f, TFU_F32, 129, 61, -1, 1));
    TRY(mask = tfu_causal_mask(f->ctx, 129, 61));
    TRY(t = tfu_rms_norm(f->ctx, tfu_add(f->ctx, x, r), 1e-5f));
    TRY(t = tfu_add(f->ctx, tfu_mul(f->ctx, t, w), r));
    if (out(f, t)) return -1;
    TRY(s = tfu_soft_max_ext(f->ctx, x, mask, 0.5f));
    TRY(s = tfu_scale(f->ctx, s, 10.0f));
    if (out(f, s)) return -1;
    TRY(t = tfu_norm(f->ctx, tfu_sub(f->ctx, x, tfu_mean(f->ctx, x)), 1e-5f));
    return out(f, t);
}

static int b_matmul(fx *f) {
    tfu_tensor *x, *W, *bias, *Wg, *Wu, *Wd, *t, *h;
    TRY(x = input(f, 96, 37));
    TRY(W = rnd(f, TFU_F16, 96, 80, -0.17f, 0.17f));
    TRY(bias = rnd(f, TFU_F32, 80, 1, -1, 1));
    TRY(t = tfu_gelu(f->ctx, tfu_add(f->ctx, tfu_mul_mat(f->ctx, W, x), bias)));
    if (out(f, t)) return -1;
    TRY(Wg = rnd(f, TFU_F32, 96, 72, -0.17f, 0.17f));
    TRY(Wu = rnd(f, TFU_BF16, 96, 72, -0.17f, 0.17f));
    TRY(Wd = rnd(f, TFU_F32, 72, 96, -0.2f, 0.2f));
    TRY(h = tfu_swiglu_split(f->ctx, tfu_mul_mat(f->ctx, Wg, x), tfu_mul_mat(f->ctx, Wu, x)));
    TRY(t = tfu_add(f->ctx, tfu_mul_mat(f->ctx, Wd, h), x));
    return out(f, t);
}

/* many independent branches: wide stages */
static int b_wide(fx *f) {
    tfu_tensor *x, *acc = NULL; int i;
    TRY(x = input(f, 40, 24));
    for (i = 0; i < 8; i++) {
        tfu_tensor *W, *t;
        TRY(W = rnd(f, TFU_F32, 40, 40, -0.27f, 0.27f));
        TRY(t = tfu_mul_mat(f->ctx, W, x));
        TRY(t = (i & 1) ? tfu_rms_norm(f->ctx, t, 1e-5f) : tfu_tanh(f->ctx, t));
        if (i % 3 == 0) tfu_set_keep(t);
        TRY(acc = acc ? tfu_add(f->ctx, acc, t) : t);
    }
    return out(f, acc);
}

static llama_config small_llama(void) {
    llama_config c = llama_default_config();
    c.dim = 64; c.n_heads = 4; c.n_kv_heads = 2; c.head_dim = 16; c.ffn = 96;
    c.n_layers = 2; c.T = 9; c.seed = 5;
    return c;
}
static int b_llama(fx *f) {
    llama_model m; llama_config c = small_llama();
    if (llama_build(f->ctx, &c, &m) != 0) return -1;
    f->in[f->n_in++] = m.x;
    return out(f, m.out);
}

/* --- caller parallel-fors -------------------------------------------------- */
static int pf_serial_calls;
static void pf_serial(void *user, int n, void (*task)(void *, int), void *task_ctx) {
    int i; (void)user;
    pf_serial_calls++;
    for (i = n - 1; i >= 0; i--) task(task_ctx, i);
}

typedef struct pf_job {
    pthread_mutex_t mu;
    int next, n;
    void (*task)(void *, int);
    void *task_ctx;
} pf_job;

static void *pf_worker(void *arg) {
    pf_job *j = (pf_job *)arg;
    for (;;) {
        int i;
        pthread_mutex_lock(&j->mu);
        i = j->next++;
        pthread_mutex_unlock(&j->mu);
        if (i >= j->n) break;
        j->task(j->task_ctx, i);
    }
    return NULL;
}

typedef struct pf_threads { int n_threads; int calls; } pf_threads;
static void pf_pthreads(void *user, int n, void (*task)(void *, int), void *task_ctx) {
    pf_threads *pt = (pf_threads *)user;
    pthread_t th[8]; int k, nt = pt->n_threads - 1, started = 0;
    pf_job j;
    pt->calls++;
    pthread_mutex_init(&j.mu, NULL);
    j.next = 0; j.n = n; j.task = task; j.task_ctx = task_ctx;
    if (nt > n - 1) nt = n - 1;
    if (nt > 8) nt = 8;
    for (k = 0; k < nt; k++) if (pthread_create(&th[k], NULL, pf_worker, &j) == 0) started++; else break;
    pf_worker(&j);
    for (k = 0; k < started; k++) pthread_join(th[k], NULL);
    pthread_mutex_destroy(&j.mu);
}

/* --- running ----------------------------------------------------------------- */

static int compare_graphs(tfu_graph *ref, tfu_graph *pl, double tol, const char *where) {
    int i, n = tfu_graph_n_nodes(ref), bad = 0;
    for (i = 0; i < n; i++) {
        tfu_tensor *r = tfu_graph_node(ref, i), *p = tfu_graph_node(pl, i);
        float *a, *b; int64_t k, ne = tfu_nelements(r); double worst = 0; int64_t wk = 0;
        if (!(p->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP))) continue;
        if (!p->data) { bad++; continue; }
        a = tt_copy_out(r); b = tt_copy_out(p);
        for (k = 0; k < ne; k++) {
            double d = fabs((double)b[k] - a[k]) / (fabs(a[k]) > 1.0 ? fabs(a[k]) : 1.0);
            if (d != d) d = INFINITY;
            if (d > worst) { worst = d; wk = k; }
        }
        if (worst > tol) {
            if (bad < 3) printf("  %s: node %d (%s): err %.3g at %lld: %.8g vs %.8g\n", where, i,
                                tfu_op_name(p->op), worst, (long long)wk, b[wk], a[wk]);
            bad++;
        }
        free(a); free(b);
    }
    return bad;
}

static void poison_outputs(tfu_plan *p, tfu_graph *g) {
    int i;
    for (i = 0; i < tfu_graph_n_nodes(g); i++) {
        tfu_tensor *t = tfu_graph_node(g, i);
        if ((t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)) && t->data && tfu_plan_value_offset(p, t) >= 0)
            tt_poison(t->data, tfu_nbytes(t));
    }
}

static void refill(fx *f, uint64_t seed) {
    int i;
    tt_seed(seed);
    for (i = 0; i < f->n_in; i++) tt_fill(f->in[i], -2, 2);
}

typedef struct cfg_t { const char *name; int n_threads; int pf; } cfg_t;
static const cfg_t cfgs[] = {
    { "1 thread", 1, 0 }, { "2 threads", 2, 0 }, { "3 threads", 3, 0 }, { "4 threads", 4, 0 },
    { "parallel_for serial", 1, 1 }, { "parallel_for pthreads x3", 1, 2 }, { "4 threads unfused", 4, 3 },
    { "3 threads + eval callback", 3, 4 }, { "parallel_for pthreads + eval callback", 1, 5 },
};

/* eval callback: counts calls and checks each tensor against the reference
   at the moment it is reported */
typedef struct eval_state { tfu_graph *ref, *pl; double tol; int calls, bad; } eval_state;
static int eval_cb(const tfu_tensor *t, void *user) {
    eval_state *e = (eval_state *)user;
    int i, n = tfu_graph_n_nodes(e->pl);
    e->calls++;
    for (i = 0; i < n; i++) if (tfu_graph_node(e->pl, i) == t) break;
    if (i == n || !t->data) { e->bad++; return 0; }
    {
        const tfu_tensor *r = tfu_graph_node(e->ref, i);
        float *a = tt_copy_out(r), *b = tt_copy_out(t); int64_t k;
        for (k = 0; k < tfu_nelements(t); k++)
            if (!(fabs((double)b[k] - a[k]) <= e->tol * (fabs(a[k]) > 1 ? fabs(a[k]) : 1))) { e->bad++; break; }
        free(a); free(b);
    }
    return 0;
}
static int n_flagged(tfu_graph *g) {
    int i, n = 0;
    for (i = 0; i < tfu_graph_n_nodes(g); i++) {
        tfu_tensor *t = tfu_graph_node(g, i);
        if (t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)) n++;   /* views too */
    }
    return n;
}

typedef struct gcase { const char *name; build_fn fn; double tol; } gcase;
static const gcase cases[] = {
    { "eltwise", b_eltwise, 1e-4 }, { "row", b_row, 1e-4 }, { "matmul", b_matmul, 2e-3 },
    { "wide", b_wide, 2e-3 }, { "llama", b_llama, 3e-3 },
};

static int g_iters;

/* one graph, one configuration: compile, run g_iters times with changing inputs */
static int run_one(const gcase *gc, const cfg_t *cf, int quiet) {
    fx r, l; tfu_plan *p; tfu_plan_options o = tfu_plan_default_options(); int it, fails = 0;
    pf_threads pt; char where[96]; eval_state ev;
    snprintf(where, sizeof where, "%s, %s", gc->name, cf->name);
    fflush(stdout);
    g_where = where;
    alarm(WATCHDOG_S);
    if (fx_make(&r, gc->fn, NULL, 11) || fx_make(&l, gc->fn, NULL, 11)) {
        if (!quiet) TT_CHECK(0, "%s: build: %s", where, tfu_last_error_msg(r.ctx));
        fx_free(&r); fx_free(&l); return 1;
    }
    o.n_threads = cf->n_threads;
    pt.n_threads = 3; pt.calls = 0;
    if (cf->pf == 1) o.parallel_for = pf_serial;
    if (cf->pf == 2) { o.parallel_for = pf_pthreads; o.parallel_for_user = &pt; }
    if (cf->pf == 3) o.no_fusion = 1;
    if (cf->pf == 5) { o.parallel_for = pf_pthreads; o.parallel_for_user = &pt; }
    memset(&ev, 0, sizeof ev);
    ev.ref = r.g; ev.pl = l.g; ev.tol = gc->tol;
    if (cf->pf >= 4) { o.eval_cb = eval_cb; o.eval_user = &ev; }
    p = tfu_plan_compile(l.g, &o);
    if (!p) { if (!quiet) TT_CHECK(0, "%s: compile: %s", where, tfu_last_error_msg(l.ctx)); fx_free(&r); fx_free(&l); return 1; }
    for (it = 0; it < g_iters; it++) {
        tfu_result rr;
        int f;
        if (it % 3 == 1) { refill(&r, 1000 + (uint64_t)it); refill(&l, 1000 + (uint64_t)it); }
        if (it == 0 || it % 3 == 1) tfu_graph_compute_ref(r.g);
        poison_outputs(p, l.g);
        rr = tfu_plan_run(p);
        if (rr != TFU_OK) { fails++; if (!quiet) TT_CHECK(0, "%s: run %d: %s", where, it, tfu_result_str(rr)); continue; }
        f = compare_graphs(r.g, l.g, gc->tol, where);
        if (f) fails++;
        if (!quiet) TT_CHECK(f == 0, "%s: run %d: %d tensors differ", where, it, f);
        if (o.eval_cb) {
            int want = n_flagged(l.g);
            if (!quiet) TT_CHECK(ev.calls == want && ev.bad == 0, "%s: run %d: eval callback %d calls (want %d), %d with wrong values",
                                 where, it, ev.calls, want, ev.bad);
            ev.calls = ev.bad = 0;
        }
    }
    if (cf->pf == 2 && !quiet) TT_CHECK(pt.calls > 0, "%s: the caller's parallel_for was never called", where);
    tfu_plan_free(p);
    fx_free(&r); fx_free(&l);
    g_where = "between cases";
    return fails;
}

/* --- the caller's floating-point environment -------------------------------- */

/* a parallel-for whose threads keep their own environment: they round to
   nearest whatever the caller's thread does, as a pool made earlier would */
typedef struct pf_env { int calls, restored; } pf_env;
static void *pf_env_worker(void *arg) {
    fesetround(FE_TONEAREST);
    pf_worker(arg);
    return (void *)(intptr_t)(fegetround() == FE_TONEAREST);   /* left as it was */
}
static void pf_own_env(void *user, int n, void (*task)(void *, int), void *task_ctx) {
    pf_env *pe = (pf_env *)user;
    pthread_t th[2]; int k, started = 0;
    pf_job j;
    pe->calls++;
    pthread_mutex_init(&j.mu, NULL);
    j.next = 0; j.n = n; j.task = task; j.task_ctx = task_ctx;
    for (k = 0; k < 2; k++) if (pthread_create(&th[k], NULL, pf_env_worker, &j) == 0) started++; else break;
    for (k = 0; k < started; k++) {   /* the tasks run on the two threads only, never on the caller's */
        void *ok = NULL;
        pthread_join(th[k], &ok);
        pe->restored += ok != NULL;
    }
    pf_worker(&j);   /* none left, unless a thread did not start */
    pthread_mutex_destroy(&j.mu);
}

/* the flagged results as bytes, NULL-separated by graph order */
static unsigned char *results(tfu_graph *g, size_t *len) {
    unsigned char *b = NULL; size_t n = 0; int i;
    for (i = 0; i < tfu_graph_n_nodes(g); i++) {
        tfu_tensor *t = tfu_graph_node(g, i);
        float *v; size_t sz;
        if (!(t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)) || !t->data) continue;
        v = tt_copy_out(t);
        sz = (size_t)tfu_nelements(t) * sizeof(float);
        b = (unsigned char *)realloc(b, n + sz);
        memcpy(b + n, v, sz);
        n += sz;
        free(v);
    }
    *len = n;
    return b;
}

/* A plan compiled (its pool started) under round-to-nearest, then run under
   round-upward: every item, whichever thread takes it, rounds upward, so 2
   and 3 threads, and a parallel-for on threads of their own, give the bits
   of 1 thread; and upward differs from nearest, so a thread that kept its
   own mode would show. */
static void test_fenv(void) {
#if defined(FE_UPWARD) && defined(FE_TONEAREST)
    static const gcase *gc[] = { &cases[0], &cases[4] };
    int k, v;
    for (k = 0; k < 2; k++) {
        unsigned char *one = NULL, *nrst = NULL; size_t n_one = 0, n_nrst = 0;
        for (v = 0; v < 5; v++) {   /* 1 thread up, 1 thread nearest, 2, 3 threads, parallel-for */
            fx f; tfu_plan *p; tfu_plan_options o = tfu_plan_default_options(); pf_env pe = { 0, 0 };
            unsigned char *got; size_t n_got; tfu_result rr; int it;
            char where[96];
            snprintf(where, sizeof where, "fenv %s variant %d", gc[k]->name, v);
            g_where = where;
            alarm(WATCHDOG_S);
            if (fx_make(&f, gc[k]->fn, NULL, 11)) { TT_CHECK(0, "%s: build", where); fx_free(&f); continue; }
            o.n_threads = v == 2 ? 2 : v == 3 ? 3 : 1;
            if (v == 4) { o.parallel_for = pf_own_env; o.parallel_for_user = &pe; }
            p = tfu_plan_compile(f.g, &o);
            if (!p) { TT_CHECK(0, "%s: compile: %s", where, tfu_last_error_msg(f.ctx)); fx_free(&f); continue; }
            for (it = 0; it < 4; it++) {   /* items go to whichever thread is free: several runs */
                poison_outputs(p, f.g);
                if (v != 1) fesetround(FE_UPWARD);
                rr = tfu_plan_run(p);
                fesetround(FE_TONEAREST);
                TT_CHECK(rr == TFU_OK, "%s: run: %s", where, tfu_result_str(rr));
                got = results(f.g, &n_got);
                if (v == 0 && it == 0) { one = got; n_one = n_got; continue; }
                if (v == 1 && it == 0) { nrst = got; n_nrst = n_got; continue; }
                if (v == 1) TT_CHECK(n_got == n_nrst && memcmp(got, nrst, n_got) == 0, "%s: round-to-nearest runs differ", where);
                else TT_CHECK(n_got == n_one && memcmp(got, one, n_got) == 0, "%s: run %d: not the 1-thread bits under FE_UPWARD", where, it);
                free(got);
            }
            if (v == 1) TT_CHECK(n_nrst == n_one && memcmp(nrst, one, n_one) != 0, "%s: upward and nearest give the same bits", where);
            if (v == 4) TT_CHECK(pe.calls > 0 && pe.restored == 2 * pe.calls, "%s: %d parallel-for calls, %d threads' modes left as they were",
                                 where, pe.calls, pe.restored);
            tfu_plan_free(p);
            fx_free(&f);
        }
        free(one); free(nrst);
    }
    g_where = "between cases";
#endif
}

/* two plans on two contexts, run at once from two caller threads (built and
   compiled here first: the test's rng is not thread-safe) */
typedef struct conc_arg { fx r, l; tfu_plan *p; double tol; int runs, fails; } conc_arg;
static void *conc_main(void *v) {
    conc_arg *c = (conc_arg *)v; int it;
    for (it = 0; it < c->runs; it++) {
        poison_outputs(c->p, c->l.g);
        if (tfu_plan_run(c->p) != TFU_OK || compare_graphs(c->r.g, c->l.g, c->tol, "concurrent")) c->fails++;
    }
    return NULL;
}

static void test_concurrent(void) {
    conc_arg a[2]; pthread_t th[2]; int k, started[2] = {0, 0};
    const gcase *gc[2]; int nt[2] = {2, 3};
    gc[0] = &cases[4]; gc[1] = &cases[2];
    for (k = 0; k < 2; k++) {
        tfu_plan_options o = tfu_plan_default_options();
        memset(&a[k], 0, sizeof a[k]);
        a[k].tol = gc[k]->tol; a[k].runs = g_iters;
        if (fx_make(&a[k].r, gc[k]->fn, NULL, 21) || fx_make(&a[k].l, gc[k]->fn, NULL, 21)) {
            TT_CHECK(0, "concurrent %s: build", gc[k]->name); continue;
        }
        tfu_graph_compute_ref(a[k].r.g);
        o.n_threads = nt[k];
        a[k].p = tfu_plan_compile(a[k].l.g, &o);
        TT_CHECK(a[k].p != NULL, "concurrent %s: compile", gc[k]->name);
    }
    g_where = "two plans at once";
    alarm(WATCHDOG_S);
    for (k = 0; k < 2; k++)
        if (a[k].p && pthread_create(&th[k], NULL, conc_main, &a[k]) == 0) started[k] = 1;
    for (k = 0; k < 2; k++) {
        if (started[k]) pthread_join(th[k], NULL);
        TT_CHECK(started[k] && a[k].fails == 0, "concurrent %s: %d of %d runs wrong", gc[k]->name, a[k].fails, a[k].runs);
        if (a[k].p) tfu_plan_free(a[k].p);
        fx_free(&a[k].r); fx_free(&a[k].l);
    }
}

int main(int argc, char **argv) {
    int ci, fi, before;
    g_iters = tt_arg_int(argc, argv, "--iters", 12);
    tt_verbose = tt_arg_int(argc, argv, "--v", 0);
    (void)tt_max_err; (void)tt_int;
    signal(SIGALRM, on_alarm);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (ci = 0; ci < (int)(sizeof cases / sizeof cases[0]); ci++)
        for (fi = 0; fi < (int)(sizeof cfgs / sizeof cfgs[0]); fi++) {
            before = tt_failed;
            run_one(&cases[ci], &cfgs[fi], 0);
            if (tt_failed != before) printf("  (%s with %s failed)\n", cases[ci].name, cfgs[fi].name);
        }
    TT_CHECK(pf_serial_calls > 0, "the serial parallel_for was never called");
    test_concurrent();
    test_fenv();
    alarm(0);
    return tt_summary();
}
