/* test_random.c - random graphs: the compiled plan against the reference.

   Every graph is built twice from one seed, in two contexts (so the
   reference executor and the plan have separate memory) with identical
   input data. The reference runs on one copy, a compiled plan on the other
   (cycling: fused on 1 thread, fused on 2 threads, unfused; some with a
   caller arena, some with a caller parallel-for). Every OUTPUT and KEEP
   tensor is compared, and the plan's own bookkeeping is checked: no two
   values live at the same time share bytes, elided values really are
   internal to their group, producers run in earlier stages.

     test_random [--graphs N] [--seed S] [--only I] [--v 1]
                 [--views-cpy 0] [--special 0] [--variants 0]

   Features (each on by default, off with 0):
     --views-cpy  copies into (possibly overlapping) views of leaves, and
                  reads of those leaves before and after the copy
     --special    NaN and infinities in some inputs; rows of huge values
                  (1e20, 3e38) into rms_norm, norm and soft_max
     --variants   two more plan variants: SIMD off (TFU_NO_SIMD=1 while
                  compiling) and a caller arena given at compile time

   A failure prints "seed S graph I": rerun with --seed S --only I --v 1. */
#define _POSIX_C_SOURCE 200809L
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include "tfu_test.h"
#include "tfu_gen.h"
#include <setjmp.h>
#include <signal.h>

/* an internal assertion (abort) inside tfu_plan_compile is reported as a
   failure of that graph, and the run goes on with the next one */
static sigjmp_buf g_abort_env;
static volatile sig_atomic_t g_abort_armed;
static void on_abort(int sig) {
    if (g_abort_armed) { g_abort_armed = 0; siglongjmp(g_abort_env, 1); }
    signal(sig, SIG_DFL);
    raise(sig);
}

#define CTX_MB 24

static int g_verbose;
static int g_variants = 1;

/* --- plan checks ------------------------------------------------------- */

/* the tensor whose memory t reads (views resolved) */
static const tfu_tensor *base_of(const tfu_tensor *t) {
    while (t && t->op == TFU_OP_VIEW) t = t->src[0];
    return t;
}

static int n_nonview_of(tfu_graph *gr) {
    int i, n = 0;
    for (i = 0; i < tfu_graph_n_nodes(gr); i++) if (tfu_graph_node(gr, i)->op != TFU_OP_VIEW) n++;
    return n;
}

static int check_plan(tfu_plan *p, tfu_graph *gr, int no_fusion, const char *where) {
    int n = tfu_graph_n_nodes(gr), i, j, s, fails = 0, n_nonview = 0, n_elided = 0, sum_nodes = 0;
    tfu_plan_stats st = tfu_plan_get_stats(p);
    size_t arena = tfu_plan_arena_bytes(p);
    int ng = tfu_plan_n_groups(p);
#define PF(cond, ...) do { if (!(cond)) { fails++; if (fails < 6) { printf("  %s: ", where); printf(__VA_ARGS__); printf("\n"); } } } while (0)
    PF(st.n_groups == ng, "stats n_groups %d != %d", st.n_groups, ng);
    PF(st.n_barriers == (st.n_stages > 0 ? st.n_stages - 1 : 0), "n_barriers %d n_stages %d", st.n_barriers, st.n_stages);
    PF(st.n_stages >= 1 || n_nonview_of(gr) == 0, "%d stages", st.n_stages);
    PF(st.arena_bytes == arena, "stats arena %zu != %zu", st.arena_bytes, arena);
    for (i = 0; i < ng; i++) {
        int stg = tfu_plan_group_stage(p, i);
        PF(stg >= 0 && stg < st.n_stages, "group %d stage %d of %d", i, stg, st.n_stages);
        sum_nodes += tfu_plan_group_n_nodes(p, i);
    }
    for (i = 0; i < n; i++) {
        tfu_tensor *t = tfu_graph_node(gr, i);
        int grp = tfu_plan_group_of(p, t), mat = tfu_plan_is_materialized(p, t);
        int64_t off = tfu_plan_value_offset(p, t);
        if (t->op == TFU_OP_VIEW) {
            PF(grp == -1, "view %s in group %d", t->name, grp);
            continue;
        }
        n_nonview++;
        PF(grp >= 0 && grp < ng, "node %d (%s) group %d", i, tfu_op_name(t->op), grp);
        if (!mat) {
            n_elided++;
            PF(off == -1, "elided node %d has offset %lld", i, (long long)off);
            PF(!(t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)), "node %d (%s) flagged but elided", i, tfu_op_name(t->op));
            for (j = 0; j < n; j++) {
                tfu_tensor *c = tfu_graph_node(gr, j); int k;
                for (k = 0; k < TFU_MAX_SRC; k++) if (c->src[k] == t) {
                    PF(c->op != TFU_OP_VIEW, "elided node %d (%s) read through a view", i, tfu_op_name(t->op));
                    PF(c->op == TFU_OP_VIEW || tfu_plan_group_of(p, c) == grp,
                       "elided node %d (%s, group %d) read by node %d (%s) in group %d", i, tfu_op_name(t->op), grp,
                       j, tfu_op_name(c->op), tfu_plan_group_of(p, c));
                }
            }
        }
        if (no_fusion) PF(mat, "no_fusion: node %d elided", i);
        if (t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)) PF(mat, "node %d (%s) flagged, not materialised", i, tfu_op_name(t->op));
        if (off >= 0) {
            int f = -1, l = -1;
            PF(mat, "node %d has offset but is not materialised", i);
            PF((size_t)off + tfu_nbytes(t) <= arena, "node %d [%lld,+%zu) past arena %zu", i, (long long)off, tfu_nbytes(t), arena);
            tfu_plan_value_lifetime(p, t, &f, &l);
            PF(f >= 0 && f <= l && l < st.n_stages, "node %d lifetime [%d,%d] of %d stages", i, f, l, st.n_stages);
            if (grp >= 0) PF(tfu_plan_group_stage(p, grp) >= f && tfu_plan_group_stage(p, grp) <= l,
                             "node %d produced in stage %d outside lifetime [%d,%d]", i, tfu_plan_group_stage(p, grp), f, l);
        }
        /* producers in earlier stages; readers inside the lifetime */
        for (s = 0; s < TFU_MAX_SRC; s++) {
            const tfu_tensor *b = base_of(t->src[s]);
            int gb, f = -1, l = -1;
            if (!b || b->op == TFU_OP_NONE || !tfu_graph_contains(gr, b)) continue;
            gb = tfu_plan_group_of(p, b);
            if (gb < 0 || grp < 0) continue;
            if (gb != grp)
                PF(tfu_plan_group_stage(p, gb) < tfu_plan_group_stage(p, grp),
                   "node %d (%s) stage %d reads node %s (%s) of stage %d", i, tfu_op_name(t->op),
                   tfu_plan_group_stage(p, grp), b->name, tfu_op_name(b->op), tfu_plan_group_stage(p, gb));
            if (t->src[s] != b) {
                PF(tfu_plan_is_materialized(p, b), "node %d reads %s (%s) through a view, not materialised",
                   i, b->name, tfu_op_name(b->op));
                PF(gb != grp, "node %d (%s) reads a view of %s (%s) of its own group %d", i,
                   tfu_op_name(t->op), b->name, tfu_op_name(b->op), grp);
            }
            if (gb != grp && tfu_plan_value_offset(p, b) >= 0) {
                tfu_plan_value_lifetime(p, b, &f, &l);
                PF(tfu_plan_group_stage(p, grp) <= l, "node %d (stage %d) reads %s after its lifetime [%d,%d]",
                   i, tfu_plan_group_stage(p, grp), tfu_op_name(b->op), f, l);
            }
        }
    }
    PF(sum_nodes == n_nonview, "groups hold %d nodes, graph has %d non-view nodes", sum_nodes, n_nonview);
    PF(st.n_values_elided == n_elided, "stats n_values_elided %d, counted %d", st.n_values_elided, n_elided);
    if (no_fusion) PF(ng == n_nonview, "no_fusion: %d groups for %d nodes", ng, n_nonview);
    /* no two values alive at once share bytes */
    for (i = 0; i < n; i++) {
        tfu_tensor *a = tfu_graph_node(gr, i); int64_t oa = tfu_plan_value_offset(p, a); int fa, la;
        if (a->op == TFU_OP_VIEW || oa < 0) continue;
        tfu_plan_value_lifetime(p, a, &fa, &la);
        for (j = i + 1; j < n; j++) {
            tfu_tensor *b = tfu_graph_node(gr, j); int64_t ob = tfu_plan_value_offset(p, b); int fb, lb;
            if (b->op == TFU_OP_VIEW || ob < 0) continue;
            tfu_plan_value_lifetime(p, b, &fb, &lb);
            if (fa > lb || fb > la) continue;
            PF(oa + (int64_t)tfu_nbytes(a) <= ob || ob + (int64_t)tfu_nbytes(b) <= oa,
               "nodes %d (%s) [%lld,+%zu) life [%d,%d] and %d (%s) [%lld,+%zu) life [%d,%d] overlap",
               i, tfu_op_name(a->op), (long long)oa, tfu_nbytes(a), fa, la,
               j, tfu_op_name(b->op), (long long)ob, tfu_nbytes(b), fb, lb);
        }
    }
#undef PF
    return fails;
}

/* the graph, one node per line (for --v 2) */
static void dump_graph(tfu_graph *gr) {
    int i, s, n = tfu_graph_n_nodes(gr);
    for (i = 0; i < n; i++) {
        tfu_tensor *t = tfu_graph_node(gr, i);
        printf("  #%-3d %-9s %s %lldx%lldx%lldx%lld nb %zu,%zu,%zu,%zu%s%s src", i, tfu_op_name(t->op), tfu_type_name(t->type),
               (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
               t->nb[0], t->nb[1], t->nb[2], t->nb[3],
               (t->flags & TFU_FLAG_OUTPUT) ? " OUT" : "", (t->flags & TFU_FLAG_KEEP) ? " KEEP" : "");
        for (s = 0; s < TFU_MAX_SRC; s++) if (t->src[s]) {
            int k;
            for (k = 0; k < n; k++) if (tfu_graph_node(gr, k) == t->src[s]) break;
            if (k < n) printf(" #%d", k);
            else printf(" leaf(%s %lldx%lldx%lldx%lld)", tfu_type_name(t->src[s]->type), (long long)t->src[s]->ne[0],
                        (long long)t->src[s]->ne[1], (long long)t->src[s]->ne[2], (long long)t->src[s]->ne[3]);
        }
        if (t->op == TFU_OP_VIEW || t->op == TFU_OP_CPY) printf(" offs %zu", t->view_offs);
        printf(" use %d\n", tfu_graph_use_count(gr, t));
    }
}

/* --- a counting allocator: every block a plan takes it gives back ------ */
static long g_live_blocks;
static void *count_alloc(size_t n, void *user) { (void)user; g_live_blocks++; return malloc(n); }
static void count_free(void *ptr, void *user) { (void)user; if (ptr) g_live_blocks--; free(ptr); }

/* --- eval callback: counts the flagged tensors it is shown ------------- */
static int g_eval_calls, g_eval_bad;
static int count_eval(const tfu_tensor *t, void *user) {
    g_eval_calls++;
    if (!(t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)) || !tfu_graph_contains((tfu_graph *)user, t) || !t->data) g_eval_bad++;
    return 0;
}

/* --- caller parallel-for ------------------------------------------------ */
static int g_pf_calls;
static void serial_for(void *user, int n, void (*task)(void *, int), void *task_ctx) {
    int i;
    (void)user;
    g_pf_calls++;
    for (i = n - 1; i >= 0; i--) task(task_ctx, i);   /* any order must do */
}

static tfu_plan *guarded_compile(tfu_graph *gr, const tfu_plan_options *o, int *aborted) {
    tfu_plan *p;
    *aborted = 0;
    signal(SIGABRT, on_abort);   /* abort() may have reset it */
    g_abort_armed = 1;
    if (sigsetjmp(g_abort_env, 1)) { *aborted = 1; return NULL; }
    p = tfu_plan_compile(gr, o);
    g_abort_armed = 0;
    return p;
}

static void *ctx_mem[2];
#if defined(__GNUC__) || defined(__clang__)
static unsigned char g_arena_buf[1 << 20] __attribute__((aligned(64)));
#else
static unsigned char g_arena_buf[1 << 20];
#endif
static size_t ctx_size;

int main(int argc, char **argv) {
    int n_graphs = tt_arg_int(argc, argv, "--graphs", 40000);
    int seed = tt_arg_int(argc, argv, "--seed", 1);
    int only = tt_arg_int(argc, argv, "--only", -1);
    int gi, n_built = 0, n_bad_build = 0, n_fused_groups = 0, n_elided = 0, n_attention = 0, graph_fail = 0;
    static gen_t gen[2];
    setvbuf(stdout, NULL, _IOLBF, 0);   /* a crash still shows the graph */
    signal(SIGABRT, on_abort);
    g_verbose = tt_verbose = tt_arg_int(argc, argv, "--v", 0);
    g_views_cpy = tt_arg_int(argc, argv, "--views-cpy", 1);
    g_special = tt_arg_int(argc, argv, "--special", 1);
    g_variants = tt_arg_int(argc, argv, "--variants", 1);
    (void)tt_max_err;
    ctx_size = (size_t)CTX_MB << 20;
    ctx_mem[0] = malloc(ctx_size); ctx_mem[1] = malloc(ctx_size);
    if (!ctx_mem[0] || !ctx_mem[1]) { printf("no memory\n"); return 1; }

    if (only >= 0) n_graphs = only + 1;
    for (gi = only >= 0 ? only : 0; gi < n_graphs; gi++) {
        uint64_t gseed = (uint64_t)seed * 1000003ull + (uint64_t)gi;
        tfu_graph *gr[2];
        tfu_plan_options o = tfu_plan_default_options();
        tfu_plan *p;
        int mode = gi % (g_variants ? 5 : 3), k, fails = 0, nf, aborted = 0;
        char where[96];
        void *arena = NULL;
        tfu_result rr;
        if (only >= 0 && gi != only) continue;
        snprintf(where, sizeof where, "seed %d graph %d", seed, gi);
        for (k = 0; k < 2; k++) {
            tfu_context_params cp;
            cp.mem = ctx_mem[k]; cp.mem_size = ctx_size; cp.no_alloc = 0;
            gen[k].ctx = tfu_init(cp);
            if (!gen[k].ctx) { printf("tfu_init failed\n"); return 1; }
            gr[k] = build(&gen[k], gseed);
        }
        if (!gr[0] || !gr[1]) {
            n_bad_build++;
            TT_CHECK(0, "%s: a builder failed at test line %d: %s (%s)", where, gen[0].bad,
                     tfu_last_error_msg(gen[0].ctx), tfu_result_str(tfu_last_error(gen[0].ctx)));
            if (gen[0].bad > 0 && g_verbose) { int q; for (q = 0; q < g_n_trace; q++) printf(" %s", g_op_trace[q]); printf("\n"); }
            goto next;
        }
        n_built++;
        if (g_verbose) {
            int q; printf("%s: %d nodes, steps:", where, tfu_graph_n_nodes(gr[0]));
            for (q = 0; q < g_n_trace; q++) printf(" %s", g_op_trace[q]);
            printf("\n");
        }
        if (g_verbose > 1) dump_graph(gr[1]);
        TT_CHECK(tfu_graph_hash(gr[0]) == tfu_graph_hash(gr[1]), "%s: two builds hash differently", where);
        rr = tfu_graph_compute_ref(gr[0]);
        if (rr != TFU_OK) {
            TT_CHECK(0, "%s: compute_ref: %s (%s)", where, tfu_result_str(rr), tfu_last_error_msg(gen[0].ctx));
            goto next;
        }

        /* the plan on the second copy */
        o.n_threads = mode == 1 ? 2 + (gi / 3) % 3 : 1;
        g_eval_calls = 0;
        if ((gi / 3) % 11 == 4) { o.eval_cb = count_eval; o.eval_user = gr[1]; }
        o.no_fusion = mode == 2;
        if ((gi / 3) % 4 == 1 && mode != 1) { o.parallel_for = serial_for; o.parallel_for_user = NULL; }
        if ((gi / 3) % 5 == 2) { o.allocator.alloc_fn = count_alloc; o.allocator.free_fn = count_free; g_live_blocks = 0; }
        if ((gi / 3) % 7 == 3 && (gi / 3) % 2 == 0) {
            /* caller memory given at compile time, larger than needed */
            o.arena = g_arena_buf; o.arena_size = sizeof g_arena_buf;
            tt_poison(g_arena_buf, sizeof g_arena_buf);
        }
        if (mode == 4) {
            /* the caller arena at compile time */
            o.arena = g_arena_buf; o.arena_size = sizeof g_arena_buf;
            tt_poison(g_arena_buf, sizeof g_arena_buf);
        }
        if (mode == 3) setenv("TFU_NO_SIMD", "1", 1);
        p = guarded_compile(gr[1], &o, &aborted);
        if (mode == 3) unsetenv("TFU_NO_SIMD");
        if (aborted) {
            TT_CHECK(0, "%s: the library aborted inside tfu_plan_compile (mode %d; message on stderr)", where, mode);
            graph_fail++;
            goto next;
        }
        if (!p) {
            TT_CHECK(0, "%s: compile (mode %d): %s", where, mode, tfu_last_error_msg(gen[1].ctx));
            goto next;
        }
        nf = check_plan(p, gr[1], o.no_fusion, where);
        if (o.arena) {
            /* every materialised value lives in the caller's memory */
            int q, outside = 0;
            for (q = 0; q < tfu_graph_n_nodes(gr[1]); q++) {
                tfu_tensor *t = tfu_graph_node(gr[1], q);
                int64_t off = tfu_plan_value_offset(p, t);
                if (off >= 0 && (unsigned char *)t->data != g_arena_buf + off) outside++;
            }
            TT_CHECK(outside == 0, "%s: %d values not at arena + offset in the caller's arena", where, outside);
        }
        TT_CHECK(nf == 0, "%s: plan invariants (mode %d): %d failures", where, mode, nf);
        {
            tfu_plan_stats st = tfu_plan_get_stats(p);
            n_fused_groups += st.n_nodes_fused; n_elided += st.n_values_elided;
            n_attention += st.n_groups_kind[TFU_GROUP_ATTENTION];
        }
        if ((gi / 3) % 2 == 1 && !o.arena) {
            /* a caller arena, all poisoned */
            size_t ab = tfu_plan_arena_bytes(p);
            unsigned char *al;
            arena = malloc(ab + 64);
            al = (unsigned char *)arena + (64 - (uintptr_t)arena % 64) % 64;   /* 64-byte aligned */
            tt_poison(al, ab);
            rr = tfu_plan_set_arena(p, al, ab);
            TT_CHECK(rr == TFU_OK, "%s: set_arena: %s", where, tfu_result_str(rr));
        } else {
            /* the plan's own arena: poison what it will write */
            for (k = 0; k < gen[1].nchk; k++) {
                tfu_tensor *t = gen[1].chk[k];
                if (tfu_graph_contains(gr[1], t) && t->data && tfu_plan_value_offset(p, t) >= 0)
                    tt_poison(t->data, tfu_nbytes(t));
            }
        }
        rr = tfu_plan_run(p);
        TT_CHECK(rr == TFU_OK, "%s: plan_run (mode %d): %s", where, mode, tfu_result_str(rr));
        if (o.eval_cb) {
            int q, want = 0;
            for (q = 0; q < tfu_graph_n_nodes(gr[1]); q++) {
                tfu_tensor *t = tfu_graph_node(gr[1], q);
                /* views too, except views of leaves, which no stage computes */
                if ((t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)) && base_of(t)->op != TFU_OP_NONE) want++;
            }
            TT_CHECK(g_eval_calls == want && g_eval_bad == 0, "%s: eval callback called %d times (want %d), %d bad",
                     where, g_eval_calls, want, g_eval_bad);
            g_eval_calls = g_eval_bad = 0;
        }
        if (rr == TFU_OK && mode == 1 && !gen[1].cpy_into_input) {
            /* threaded plans run a second time, outputs poisoned in between */
            for (k = 0; k < gen[1].nchk; k++) {
                tfu_tensor *t = gen[1].chk[k];
                if (tfu_graph_contains(gr[1], t) && t->data && tfu_plan_value_offset(p, t) >= 0)
                    tt_poison(t->data, tfu_nbytes(t));
            }
            rr = tfu_plan_run(p);
            TT_CHECK(rr == TFU_OK, "%s: second plan_run (mode %d): %s", where, mode, tfu_result_str(rr));
        }
        if (rr == TFU_OK) {
            for (k = 0; k < gen[0].nchk; k++) {
                if (!tfu_graph_contains(gr[0], gen[0].chk[k])) continue;
                if (compare(gen[0].chk[k], gen[1].chk[k], gen[1].chk_tol[k], where, k)) fails++;
                else tt_passed++;
            }
            TT_CHECK(fails == 0, "%s (mode %d%s%s): %d mismatches", where, mode,
                     o.parallel_for ? ", parallel_for" : "", arena ? ", caller arena" : "", fails);
        }
        if ((fails || nf) && g_verbose) {
            /* every value the plan kept in memory, against the reference */
            int q, nn = tfu_graph_n_nodes(gr[1]);
            for (q = 0; q < nn; q++) {
                tfu_tensor *a = tfu_graph_node(gr[0], q), *b = tfu_graph_node(gr[1], q);
                float *x, *y; int64_t e, ne = tfu_nelements(a); double w = 0; int64_t wk = 0;
                if (b->op == TFU_OP_VIEW || !tfu_plan_is_materialized(p, b) || !b->data) continue;
                x = tt_copy_out(a); y = tt_copy_out(b);
                for (e = 0; e < ne; e++) {
                    double d = fabs((double)x[e] - y[e]) / (fabs(x[e]) > 1 ? fabs(x[e]) : 1);
                    if (d != d) d = INFINITY;
                    if (d > w) { w = d; wk = e; }
                }
                {
                    int f0 = -1, l0 = -1;
                    tfu_plan_value_lifetime(p, b, &f0, &l0);
                    printf("  node %2d %-9s %lldx%lldx%lldx%lld group %d life [%d,%d]%s: max err %.3g at %lld (%.9g vs ref %.9g)\n", q,
                           tfu_op_name(b->op), (long long)b->ne[0], (long long)b->ne[1], (long long)b->ne[2],
                           (long long)b->ne[3], tfu_plan_group_of(p, b), f0, l0,
                           (b->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)) ? "" : " (memory may be reused)", w, (long long)wk, y[wk], x[wk]);
                }
                free(x); free(y);
            }
        }
        if ((fails || nf) && g_verbose) {
            size_t need = tfu_plan_report(p, NULL, 0);
            char *buf = (char *)malloc(need + 1);
            tfu_plan_report(p, buf, need + 1);
            printf("%s\n", buf);
            free(buf);
        }
        if (fails || nf) graph_fail++;
        tfu_plan_free(p);
        if (o.allocator.alloc_fn) TT_CHECK(g_live_blocks == 0, "%s: %ld allocator blocks not given back", where, g_live_blocks);
    next:
        free(arena);
        if (graph_fail > 20) { printf("too many failing graphs, stopping\n"); break; }
    }
    printf("random: %d graphs built (%d failed to build), %d fused nodes, %d elided values, %d attention groups, %d caller parallel-for calls\n",
           n_built, n_bad_build, n_fused_groups, n_elided, n_attention, g_pf_calls);
    /* the generator's attention steps must form the group now and then */
    TT_CHECK(n_built < 1000 || n_attention > 0, "no attention group in %d graphs", n_built);
    free(ctx_mem[0]); free(ctx_mem[1]);
    return tt_summary();
}
