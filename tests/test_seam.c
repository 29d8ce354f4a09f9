/* test_seam.c - the plan view is a complete seam: a second executor
   (tfu_view_exec.h), written only against the public view, runs compiled
   plans and must match the reference executor.

   1. random graphs from the generator test_random uses (tfu_gen.h), each
      built three times from one seed: the reference runs on the first; the
      second is compiled fused and the third unfused, and tv_run executes
      each plan from its view. Compared: every OUTPUT and KEEP tensor, and
      every leaf a copy writes. The CPU plan never runs; its arena is
      caller memory full of NaN, so an executor that read a computed
      tensor's data pointer would fail.
   2. every case of test_fusion.c (included here, through its case hook):
      a fresh build of the case, compiled with the case's options, run by
      tv_run, compared with the case's reference at the case's tolerance.
   3. a few fixed graphs the random ones reach rarely: get_rows, rope,
      concat, copies into F16 and BF16 leaves and into views of leaves.

   Every run also checks the view's contract (tfu_view_exec.h lists what):
   a violation fails the graph.

     test_seam [--graphs N] [--seed S] [--only I] [--v 1]
               [--views-cpy 0] [--special 0] [--fusion 0]

   A failure prints "seam seed S graph I": rerun with --seed S --only I --v 1. */
#define TEST_FUSION_NO_MAIN
#include "test_fusion.c"
#include "tfu_gen.h"
#include "tfu_view_exec.h"

#define SEAM_CTX_MB 24

static int g_seam_verbose;
static long g_n_exact, g_n_compared, g_n_groups, g_n_instrs, g_n_ranges, g_n_plans, g_n_inplace, g_n_unaligned;

/* memory of 64-byte alignment; *raw is what to free */
static void *aligned64(size_t n, void **raw) {
    unsigned char *p = (unsigned char *)malloc(n + 64);
    *raw = p;
    if (!p) return NULL;
    return p + (64 - (uintptr_t)p % 64) % 64;
}

/* t's twin in ref (same position among nodes or leaves), or NULL */
static tfu_tensor *twin(tfu_graph *ref, tfu_graph *g, const tfu_tensor *t) {
    int i;
    for (i = 0; i < tfu_graph_n_nodes(g) && i < tfu_graph_n_nodes(ref); i++)
        if (tfu_graph_node(g, i) == t) return tfu_graph_node(ref, i);
    for (i = 0; i < tfu_graph_n_leafs(g) && i < tfu_graph_n_leafs(ref); i++)
        if (tfu_graph_leaf(g, i) == t) return tfu_graph_leaf(ref, i);
    return NULL;
}

static int view_index(const tfu_plan_view *v, const tfu_tensor *t) {
    int i;
    for (i = 0; i < v->n_tensors; i++)
        if (v->tensors[i] == t) return i;
    return -1;
}

/* are r and p equal bit for bit (NaN matching NaN)? */
static int exact(const tfu_tensor *r, const tfu_tensor *p) {
    int64_t n = tfu_nelements(r), k;
    float *a = tt_copy_out(r), *b = tt_copy_out(p);
    int same = 1;
    for (k = 0; k < n && same; k++)
        if (!(a[k] == b[k] || (a[k] != a[k] && b[k] != b[k]))) same = 0;
    free(a);
    free(b);
    return same;
}

/* t as tv_run left it: the same tensor, data at tv's address */
static tfu_tensor as_run(const tfu_plan_view *v, void *arena, const tfu_tensor *t) {
    tfu_tensor c = *t;
    int q = view_index(v, t);
    c.data = q >= 0 ? tv_addr(v, arena, q) : NULL;
    return c;
}

/* compares ref's r with tv's t (compare() from tfu_gen.h); 1 if they differ */
static int compare_run(const tfu_plan_view *v, void *arena, const tfu_tensor *r, const tfu_tensor *t, float tolf,
                       const char *where, int idx) {
    tfu_tensor c = as_run(v, arena, t);
    int bad = compare(r, &c, tolf, where, idx);
    g_n_compared++;
    if (!bad && c.data && exact(r, &c)) g_n_exact++;
    return bad;
}

/* every leaf a copy wrote, against its twin in ref; returns mismatches */
static int compare_written_leaves(const tfu_plan_view *v, tfu_graph *ref, tfu_graph *g, float tolf, const char *where) {
    int i, j, bad = 0;
    for (i = 0; i < v->n_tensors; i++) {
        const tfu_tensor *L;
        tfu_tensor *R;
        int seen = 0;
        if (v->tensors[i]->op != TFU_OP_CPY) continue;
        L = v->tensors[v->root[i]];
        for (j = 0; j < i; j++)
            if (v->tensors[j]->op == TFU_OP_CPY && v->root[j] == v->root[i]) seen = 1;
        if (seen) continue;
        R = twin(ref, g, L);
        if (!R) {
            printf("  %s: leaf %d written by a copy has no twin\n", where, v->root[i]);
            bad++;
            continue;
        }
        if (compare(R, L, tolf, where, 100 + v->root[i])) bad++;
        g_n_compared++;
        if (exact(R, L)) g_n_exact++;
    }
    return bad;
}

/* runs plan p through tv_run: the CPU arena is poisoned caller memory the
   CPU never writes; tv's arena comes back in *arena (free *raw) */
static int seam_exec(tfu_plan *p, const char *where, tfu_plan_view *v, void **arena, void **raw, void **cpu_raw) {
    size_t ab = tfu_plan_arena_bytes(p);
    void *cpu = aligned64(ab ? ab : 1, cpu_raw);
    tfu_result r;
    int n, k;
    *arena = NULL;
    *raw = NULL;
    if (!cpu) return 1;
    tt_poison(cpu, ab);
    if (ab) {
        r = tfu_plan_set_arena(p, cpu, ab);
        TT_CHECK(r == TFU_OK, "%s: set_arena: %s", where, tfu_result_str(r));
    }
    r = tfu_plan_get_view(p, v);
    TT_CHECK(r == TFU_OK, "%s: get_view: %s", where, tfu_result_str(r));
    if (r != TFU_OK) return 1;
    *arena = aligned64(v->arena_bytes ? v->arena_bytes : 1, raw);
    if (!*arena) return 1;
    n = tv_run(v, *arena);
    g_n_plans++;
    g_n_groups += tv_last.n_groups;
    g_n_instrs += tv_last.n_instrs;
    g_n_ranges += tv_last.n_ranges_checked;
    g_n_inplace += tv_last.n_inplace;
    g_n_unaligned += tv_last.n_offsets_unaligned;
    TT_CHECK(n == 0, "%s: %d violations of the view's contract", where, n);
    for (k = 0; k < n && k < TV_N_MSG; k++) printf("  %s: %s\n", where, tv_last.msg[k]);
    return n != 0;
}

/* --- 1. random graphs ---------------------------------------------------- */

static void *g_ctx_mem[2];

/* one graph of the generator, fused or not, against the reference gen[0] */
static int seam_random_one(gen_t *gen, tfu_graph *ref, uint64_t gseed, int no_fusion, const char *where) {
    tfu_context_params cp;
    tfu_plan_options o = tfu_plan_default_options();
    tfu_plan_view v;
    tfu_graph *g;
    tfu_plan *p;
    void *arena = NULL, *raw = NULL, *cpu_raw = NULL;
    int k, bad = 0;
    float leaf_tol = 1;
    cp.mem = g_ctx_mem[1];
    cp.mem_size = (size_t)SEAM_CTX_MB << 20;
    cp.no_alloc = 0;
    gen[1].ctx = tfu_init(cp);
    g = gen[1].ctx ? build(&gen[1], gseed) : NULL;
    if (!g) {
        TT_CHECK(0, "%s: the second build failed", where);
        return 1;
    }
    TT_CHECK(tfu_graph_hash(g) == tfu_graph_hash(ref), "%s: the builds hash differently", where);
    o.no_fusion = no_fusion;
    p = tfu_plan_compile(g, &o);
    if (!p) {
        TT_CHECK(0, "%s: compile: %s", where, tfu_last_error_msg(gen[1].ctx));
        return 1;
    }
    bad += seam_exec(p, where, &v, &arena, &raw, &cpu_raw);
    if (arena) {
        for (k = 0; k < gen[0].nchk; k++) {
            if (!tfu_graph_contains(ref, gen[0].chk[k])) continue;
            if (gen[1].chk_tol[k] > leaf_tol) leaf_tol = gen[1].chk_tol[k];
            if (compare_run(&v, arena, gen[0].chk[k], gen[1].chk[k], gen[1].chk_tol[k], where, k)) bad++;
        }
        for (k = 0; k < gen[1].nv; k++)
            if (gen[1].v[k].tolf > leaf_tol) leaf_tol = gen[1].v[k].tolf;
        bad += compare_written_leaves(&v, ref, g, leaf_tol, where);
    }
    if (bad && g_seam_verbose) {
        size_t need = tfu_plan_report(p, NULL, 0);
        char *buf = (char *)malloc(need + 1);
        if (buf) {
            tfu_plan_report(p, buf, need + 1);
            printf("%s\n", buf);
            free(buf);
        }
    }
    tfu_plan_free(p);
    free(raw);
    free(cpu_raw);
    return bad;
}

static void seam_random(int n_graphs, int seed, int only) {
    static gen_t gen[2];
    int gi, n_fail = 0, n_built = 0;
    g_ctx_mem[0] = malloc((size_t)SEAM_CTX_MB << 20);
    g_ctx_mem[1] = malloc((size_t)SEAM_CTX_MB << 20);
    if (!g_ctx_mem[0] || !g_ctx_mem[1]) {
        TT_CHECK(0, "no memory");
        return;
    }
    if (only >= 0) n_graphs = only + 1;
    for (gi = only >= 0 ? only : 0; gi < n_graphs && n_fail <= 20; gi++) {
        uint64_t gseed = (uint64_t)seed * 1000003ull + (uint64_t)gi;
        tfu_context_params cp;
        tfu_graph *ref;
        tfu_result r;
        char where[96];
        int mode, bad = 0;
        snprintf(where, sizeof where, "seam seed %d graph %d", seed, gi);
        cp.mem = g_ctx_mem[0];
        cp.mem_size = (size_t)SEAM_CTX_MB << 20;
        cp.no_alloc = 0;
        gen[0].ctx = tfu_init(cp);
        ref = gen[0].ctx ? build(&gen[0], gseed) : NULL;
        if (!ref) {
            TT_CHECK(0, "%s: build failed at test line %d", where, gen[0].bad);
            n_fail++;
            continue;
        }
        n_built++;
        if (g_seam_verbose) {
            int q;
            printf("%s: %d nodes, steps:", where, tfu_graph_n_nodes(ref));
            for (q = 0; q < g_n_trace; q++) printf(" %s", g_op_trace[q]);
            printf("\n");
        }
        r = tfu_graph_compute_ref(ref);
        if (r != TFU_OK) {
            TT_CHECK(0, "%s: compute_ref: %s", where, tfu_result_str(r));
            n_fail++;
            continue;
        }
        for (mode = 0; mode < 2; mode++) {
            char w2[128];
            int b;
            snprintf(w2, sizeof w2, "%s (%s)", where, mode ? "unfused" : "fused");
            b = seam_random_one(gen, ref, gseed, mode, w2);
            TT_CHECK(b == 0, "%s: %d mismatches", w2, b);
            bad += b;
        }
        if (bad) n_fail++;
    }
    if (n_fail > 20) printf("too many failing graphs, stopping\n");
    printf("seam: %d random graphs, each fused and unfused\n", n_built);
    free(g_ctx_mem[0]);
    free(g_ctx_mem[1]);
}

/* --- 2. the cases of test_fusion ------------------------------------------ */

static void seam_fusion_case(const char *name, build_fn fn, void *arg, const tfu_plan_options *opts, double tol, fx *ref) {
    fx x;
    tfu_plan *p;
    tfu_plan_view v;
    void *arena = NULL, *raw = NULL, *cpu_raw = NULL;
    char where[160];
    int i, bad = 0;
    snprintf(where, sizeof where, "seam fusion case '%s'", name);
    if (fx_make(&x, fn, arg, 7) != 0) {
        TT_CHECK(0, "%s: build failed", where);
        fx_free(&x);
        return;
    }
    p = tfu_plan_compile(x.g, opts);
    TT_CHECK(p != NULL, "%s: compile: %s", where, tfu_last_error_msg(x.ctx));
    if (!p) {
        fx_free(&x);
        return;
    }
    bad += seam_exec(p, where, &v, &arena, &raw, &cpu_raw);
    if (arena) {
        for (i = 0; i < tfu_graph_n_nodes(x.g); i++) {
            tfu_tensor *t = tfu_graph_node(x.g, i);
            if (!(t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP))) continue;
            if (compare_run(&v, arena, tfu_graph_node(ref->g, i), t, (float)(tol * 1e4), where, i)) bad++;
        }
        bad += compare_written_leaves(&v, ref->g, x.g, (float)(tol * 1e4), where);
    }
    TT_CHECK(bad == 0, "%s: %d mismatches", where, bad);
    tfu_plan_free(p);
    free(raw);
    free(cpu_raw);
    fx_free(&x);
}

/* --- 3. fixed graphs -------------------------------------------------------- */

/* emb = get_rows(table f16, idx); q = rope(emb as head_dim x heads x tokens);
   c = concat(q, x, dim 1) -> f16 leaf through a view; y = c * 2 */
static int b_seam_other(fx *f) {
    tfu_tensor *tab, *idx, *pos, *emb, *q, *x, *c, *L, *dst, *y, *cb, *Lb;
    int64_t i;
    TRY(tab = rnd(f, TFU_F16, 32, 10, -1, 1));
    TRY(idx = tfu_new_tensor_1d(f->ctx, TFU_I32, 6));
    for (i = 0; i < 6; i++) ((int32_t *)idx->data)[i] = (int32_t)((i * 7 + 3) % 10);
    TRY(pos = tfu_new_tensor_1d(f->ctx, TFU_I32, 6));
    for (i = 0; i < 6; i++) ((int32_t *)pos->data)[i] = (int32_t)(i * 5 + 1);
    TRY(emb = tfu_get_rows(f->ctx, tab, idx));                  /* 32 x 6 */
    TRY(emb = tfu_reshape_3d(f->ctx, emb, 8, 4, 6));
    TRY(q = tfu_rope(f->ctx, emb, pos, 6, TFU_ROPE_NEOX, 10000.0f));
    TRY(x = tfu_new_tensor_3d(f->ctx, TFU_F32, 8, 1, 6));
    tt_fill(x, -1, 1);
    TRY(c = tfu_concat(f->ctx, q, x, 1));                        /* 8 x 5 x 6 */
    /* into rows 1..5 of a 8 x 7 x 6 F16 leaf */
    TRY(L = tfu_new_tensor_3d(f->ctx, TFU_F16, 8, 7, 6));
    tt_fill(L, -1, 1);
    TRY(dst = tfu_view_3d(f->ctx, L, 8, 5, 6, L->nb[1], L->nb[2], L->nb[1]));
    TRY(cb = tfu_cpy(f->ctx, c, dst));
    /* and a BF16 copy of the transposed rope output */
    TRY(Lb = tfu_new_tensor_3d(f->ctx, TFU_BF16, 4, 8, 6));
    tt_fill(Lb, -1, 1);
    TRY(y = tfu_cpy(f->ctx, tfu_transpose(f->ctx, q), Lb));
    f->t[0] = cb;
    f->t[1] = y;
    if (out(f, tfu_scale(f->ctx, tfu_add(f->ctx, tfu_sum_rows(f->ctx, c), tfu_mean(f->ctx, c)), 2.0f))) return -1;
    if (out(f, tfu_argmax(f->ctx, c))) return -1;
    if (out(f, cb)) return -1;
    return out(f, y);
}

static void seam_fixed(void) {
    fx r, l;
    tfu_plan_options o = tfu_plan_default_options();
    tfu_plan *p = run_case("seam: get_rows, rope, concat, copies into f16/bf16 leaf views", b_seam_other, NULL, NULL,
                           1e-3, &r, &l);
    end_case(p, &r, &l);
    o.no_fusion = 1;
    p = run_case("seam: get_rows, rope, concat, copies (unfused)", b_seam_other, NULL, &o, 1e-3, &r, &l);
    end_case(p, &r, &l);
}

/* --- 4. the checks can fail ------------------------------------------------
   A view copied into arrays of our own and broken in one place; tv_run must
   report each break. */

typedef struct mview {
    tfu_plan_view v;
    int32_t *root, *life_first, *life_last, *stage_first, *range_first;
    int64_t *offset;
    tfu_pv_group *groups;
    tfu_pv_instr *instrs;
    tfu_pv_range *ranges;
} mview;

static void *dup_bytes(const void *p, size_t n) {
    void *q = malloc(n ? n : 1);
    if (q && n) memcpy(q, p, n);
    return q;
}

static void mview_make(mview *m, const tfu_plan_view *v) {
    int n_instr = 0, gi;
    for (gi = 0; gi < v->n_groups; gi++) n_instr += v->groups[gi].n_instr;
    m->v = *v;
    m->root = (int32_t *)dup_bytes(v->root, (size_t)v->n_tensors * sizeof(int32_t));
    m->life_first = (int32_t *)dup_bytes(v->life_first, (size_t)v->n_tensors * sizeof(int32_t));
    m->life_last = (int32_t *)dup_bytes(v->life_last, (size_t)v->n_tensors * sizeof(int32_t));
    m->offset = (int64_t *)dup_bytes(v->offset, (size_t)v->n_tensors * sizeof(int64_t));
    m->stage_first = (int32_t *)dup_bytes(v->stage_first, (size_t)(v->n_stages + 1) * sizeof(int32_t));
    m->range_first = (int32_t *)dup_bytes(v->range_first, (size_t)(v->n_stages + 1) * sizeof(int32_t));
    m->groups = (tfu_pv_group *)dup_bytes(v->groups, (size_t)v->n_groups * sizeof(tfu_pv_group));
    m->instrs = (tfu_pv_instr *)dup_bytes(v->instrs, (size_t)n_instr * sizeof(tfu_pv_instr));
    m->ranges = (tfu_pv_range *)dup_bytes(v->ranges, (size_t)v->range_first[v->n_stages] * sizeof(tfu_pv_range));
    m->v.root = m->root;
    m->v.life_first = m->life_first;
    m->v.life_last = m->life_last;
    m->v.offset = m->offset;
    m->v.stage_first = m->stage_first;
    m->v.range_first = m->range_first;
    m->v.groups = m->groups;
    m->v.instrs = m->instrs;
    m->v.ranges = m->ranges;
}

static void mview_free(mview *m) {
    free(m->root);
    free(m->life_first);
    free(m->life_last);
    free(m->offset);
    free(m->stage_first);
    free(m->range_first);
    free(m->groups);
    free(m->instrs);
    free(m->ranges);
}

/* the stage whose instruction stores tensor, or -1 */
static int stage_of_store(const tfu_plan_view *v, int tensor) {
    int gi, k;
    for (gi = 0; gi < v->n_groups; gi++)
        for (k = 0; k < v->groups[gi].n_instr; k++) {
            const tfu_pv_instr *I = &v->instrs[v->groups[gi].first_instr + k];
            if (I->tensor == tensor && I->store) return v->groups[gi].stage;
        }
    return -1;
}

/* mutation kinds; returns 0 when the plan offers no place for it */
enum { MUT_RANGE, MUT_MERGE, MUT_REUSE, MUT_FORWARD, MUT_NOSTORE, MUT_LIFE, MUT_SHIFT, MUT_COUNT };
static const char *mut_name[MUT_COUNT] = { "a stage's read ranges dropped", "two dependent stages merged",
                                           "a live value's bytes given to another", "an instruction reading a later one",
                                           "a value read later not stored", "a lifetime ending before a read",
                                           "a value moved by 4 bytes" };

static int mutate(mview *m, int kind) {
    tfu_plan_view *v = &m->v;
    int gi, k, s, q, i;
    for (gi = 0; gi < v->n_groups; gi++) {
        const tfu_pv_group *G = &v->groups[gi];
        for (k = 0; k < G->n_operands; k++) {
            int t = v->operands[G->first_operand + k].tensor, r = v->root[t], st;
            if (v->tensors[r]->op == TFU_OP_NONE || v->offset[r] < 0) continue;
            st = stage_of_store(v, r);
            if (st < 0 || st >= G->stage) continue;
            switch (kind) {
            case MUT_RANGE:   /* the stage reading the value lists no reads */
                for (q = v->range_first[G->stage]; q < v->range_first[G->stage + 1]; q++)
                    if (!m->ranges[q].write) m->ranges[q].root = -7;
                return 1;
            case MUT_MERGE:   /* the reader's stage joins the writer's: renumber the later stages */
                if (G->stage != st + 1) continue;
                for (i = 0; i < v->n_groups; i++)
                    if (m->groups[i].stage > st) m->groups[i].stage--;
                for (s = st + 1; s < v->n_stages; s++) {
                    m->stage_first[s] = m->stage_first[s + 1];
                    m->range_first[s] = m->range_first[s + 1];
                }
                v->n_stages--;
                for (i = 0; i < v->n_tensors; i++) {
                    if (m->life_first[i] > st) m->life_first[i]--;
                    if (m->life_last[i] > st) m->life_last[i]--;
                }
                return 1;
            case MUT_REUSE:   /* another value live at once moved onto r */
                for (i = 0; i < v->n_tensors; i++) {
                    if (i == r || v->offset[i] < 0 || v->tensors[i]->op == TFU_OP_CPY) continue;
                    if (v->life_first[i] > v->life_last[r] || v->life_first[r] > v->life_last[i]) continue;
                    if ((size_t)v->offset[r] + tfu_nbytes(v->tensors[i]) > v->arena_bytes) continue;
                    m->offset[i] = v->offset[r];
                    return 1;
                }
                continue;
            case MUT_FORWARD: /* instruction 1 of a group reads itself */
                if (G->n_instr < 2) continue;
                m->instrs[G->first_instr + 1].src[0] = 1;
                return 1;
            case MUT_NOSTORE:
                for (i = 0; i < v->n_groups; i++)
                    for (q = 0; q < v->groups[i].n_instr; q++)
                        if (m->instrs[v->groups[i].first_instr + q].tensor == r) m->instrs[v->groups[i].first_instr + q].store = 0;
                return 1;
            case MUT_LIFE:
                m->life_last[r] = st;
                return 1;
            case MUT_SHIFT:
                if ((size_t)v->offset[r] + 4 + tfu_nbytes(v->tensors[r]) > v->arena_bytes) continue;
                m->offset[r] += 4;
                return 1;
            default:
                return 0;
            }
        }
    }
    return 0;
}

static void seam_mutations(void) {
    llama_config c = small_llama(1);
    int pass, kind;
    for (pass = 0; pass < 2; pass++) {
        tfu_plan_options o = tfu_plan_default_options();
        fx x;
        tfu_plan *p;
        tfu_plan_view v;
        void *arena = NULL, *raw = NULL, *cpu_raw = NULL;
        o.no_fusion = pass;
        if (fx_make(&x, b_llama, &c, 7) != 0) {
            TT_CHECK(0, "mutations: build failed");
            fx_free(&x);
            return;
        }
        p = tfu_plan_compile(x.g, &o);
        TT_CHECK(p != NULL, "mutations: compile");
        if (!p) {
            fx_free(&x);
            return;
        }
        TT_CHECK(seam_exec(p, "mutations: the plan itself", &v, &arena, &raw, &cpu_raw) == 0, "mutations: a clean run");
        for (kind = 0; arena && kind < MUT_COUNT; kind++) {
            mview m;
            int placed, n;
            mview_make(&m, &v);
            placed = mutate(&m, kind);
            /* unfused groups hold one instruction: nothing to read forward */
            if (kind != MUT_FORWARD || !pass)
                TT_CHECK(placed, "mutation '%s' (%s): no place for it", mut_name[kind], pass ? "unfused" : "fused");
            if (placed) {
                n = tv_run(&m.v, arena);
                TT_CHECK(n > 0, "mutation '%s' (%s) not detected", mut_name[kind], pass ? "unfused" : "fused");
                if (g_seam_verbose) printf("  mutation '%s' (%s): %d violations, first: %s\n", mut_name[kind],
                                           pass ? "unfused" : "fused", n, n ? tv_last.msg[0] : "-");
            }
            mview_free(&m);
        }
        tfu_plan_free(p);
        free(raw);
        free(cpu_raw);
        fx_free(&x);
    }
}

int main(int argc, char **argv) {
    int n_graphs = tt_arg_int(argc, argv, "--graphs", 3000);
    int seed = tt_arg_int(argc, argv, "--seed", 1);
    int only = tt_arg_int(argc, argv, "--only", -1);
    int fusion = tt_arg_int(argc, argv, "--fusion", 1);
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_seam_verbose = tt_verbose = tt_arg_int(argc, argv, "--v", 0);
    g_views_cpy = tt_arg_int(argc, argv, "--views-cpy", 1);
    g_special = tt_arg_int(argc, argv, "--special", 1);
    (void)tt_max_err;
    seam_random(n_graphs, seed, only);
    if (fusion && only < 0) {
        g_case_hook = seam_fusion_case;
        fusion_cases();
        seam_fixed();
        g_case_hook = NULL;
    }
    if (only < 0) seam_mutations();
    printf("seam: %ld plans run from their view: %ld groups, %ld instructions, %ld ranges checked, "
           "%ld bytes written in place, %ld arena offsets not 64-aligned; "
           "%ld of %ld compared tensors bit-identical to the reference\n",
           g_n_plans, g_n_groups, g_n_instrs, g_n_ranges, g_n_inplace, g_n_unaligned, g_n_exact, g_n_compared);
    return tt_summary();
}
