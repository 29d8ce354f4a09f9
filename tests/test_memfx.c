/* test_memfx.c - an independent oracle for the order of memory effects.

   The rule (DESIGN.md, "Order of memory effects: program order"): operations
   take effect in the order they were created. A tfu_cpy writes into a leaf or
   a view of one; every read of a leaf's bytes (directly, through a view, or
   through a cpy result) sees exactly the writes of the copies created before
   the reading operation. A copy whose source overlaps its destination reads
   its source whole first. The order in which results are expanded into a
   graph never changes a result.

   Random programs over a few f32 leaves: views (random offsets and strides,
   overlapping each other and themselves), transposes, copies into leaves and
   views of them (overlapping source and destination included), add, mul,
   scale, neg, cont, sum_rows, reads of copy results and of views of them. A
   random subset of the results is expanded, in random order, into one graph.
   The test keeps its own model: a double array per leaf and a tiny
   interpreter that runs the operations of the graph in creation order (no
   library code). Every expanded result and every leaf's final bytes are
   compared against it, on the reference executor, fused plans on 1 and 2
   threads, an unfused plan and a plan in a caller arena.

     test_memfx [--programs N] [--seed S] [--only I] [--v 1] [--cpy 0] [--shuffle 0]

   --cpy 0 leaves copies out (then the model is checked against a library
   with nothing to order); --shuffle 0 expands results in creation order.

   A failure prints "seed S program I": rerun with --seed S --only I --v 1. */
#define _POSIX_C_SOURCE 200809L
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include "tfu_test.h"
#include <setjmp.h>
#include <signal.h>

/* an abort (internal assertion) inside the library fails the program and the
   run goes on */
static sigjmp_buf g_abort_env;
static volatile sig_atomic_t g_abort_armed;
static void on_abort(int sig) {
    if (g_abort_armed) {
        g_abort_armed = 0;
        siglongjmp(g_abort_env, 1);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

#define MAXL 4        /* leaves per program          */
#define MAXR 160      /* records (tensors) per program */
#define MAXOUT 12     /* results expanded             */
#define LEAF_MAX 48   /* elements of a leaf, at most   */

enum { R_LEAF, R_VIEW, R_CPY, R_OP };
enum { O_ADD, O_MUL, O_SCALE, O_NEG, O_CONT, O_SUM_ROWS };

/* one tensor of the program, as the model sees it */
typedef struct rec_t {
    int kind;              /* R_*                                          */
    int op;                /* O_* for R_OP                                 */
    int src[2];            /* records read (R_CPY: src[0] value, src[1] dst) */
    float s;               /* O_SCALE factor                                */
    int64_t ne[4];
    /* R_LEAF, R_VIEW, R_CPY: element (i0..i3) is leaf[off + sum i_k*st[k]] */
    int leaf;
    int64_t off;
    int64_t st[4];
    int selfov;            /* two elements share bytes                     */
    double *val;           /* R_OP: the values, ne0 fastest                 */
    int in_graph;
    tfu_tensor *t;
} rec_t;

typedef struct prog_t {
    tfu_context *ctx;
    rec_t r[MAXR];
    int nr;
    int nleaf;
    int leaf_rec[MAXL];
    int64_t leaf_n[MAXL];
    double init[MAXL][LEAF_MAX];  /* leaf contents before the run   */
    double lv[MAXL][LEAF_MAX];    /* the model's leaf contents      */
    int out[MAXOUT];
    int nout;
    int refused_ok;               /* bad copies refused as they should be */
    int refused_bad;              /* bad copies accepted                */
    int bad;                      /* line where a builder failed        */
    const char *bad_msg;
} prog_t;

static int g_verbose;
static int g_use_cpy = 1;       /* --cpy 0: no copies (checks the model itself) */
static int g_shuffle = 1;       /* --shuffle 0: results expanded in creation order */

static int64_t nel(const rec_t *r) { return r->ne[0] * r->ne[1] * r->ne[2] * r->ne[3]; }

/* elements spanned by an aliasing record, from its first element */
static int64_t span_of(const rec_t *r) {
    int64_t s = 1;
    int k;
    for (k = 0; k < 4; k++) s += (r->ne[k] - 1) * r->st[k];
    return s;
}

static int64_t flat_of(const rec_t *r, int64_t e) {
    int64_t i0 = e % r->ne[0];
    int64_t i1 = (e / r->ne[0]) % r->ne[1];
    int64_t i2 = (e / (r->ne[0] * r->ne[1])) % r->ne[2];
    int64_t i3 = e / (r->ne[0] * r->ne[1] * r->ne[2]);
    return r->off + i0 * r->st[0] + i1 * r->st[1] + i2 * r->st[2] + i3 * r->st[3];
}

/* do two elements of r share a leaf element? (brute force: small sizes) */
static int self_overlaps(const rec_t *r) {
    unsigned char seen[LEAF_MAX];
    int64_t e, n = nel(r);
    memset(seen, 0, sizeof seen);
    for (e = 0; e < n; e++) {
        int64_t f = flat_of(r, e);
        if (seen[f]) return 1;
        seen[f] = 1;
    }
    return 0;
}

static int is_alias(const rec_t *r) { return r->kind != R_OP; }

static int same_shape(const rec_t *a, const rec_t *b) {
    return a->ne[0] == b->ne[0] && a->ne[1] == b->ne[1] && a->ne[2] == b->ne[2] && a->ne[3] == b->ne[3];
}

static int broadcasts(const rec_t *a, const rec_t *b) {   /* b over a */
    int k;
    for (k = 0; k < 4; k++)
        if (a->ne[k] % b->ne[k] != 0) return 0;
    return 1;
}

static int n_dims_of(const int64_t *ne) {
    int d = 4;
    while (d > 1 && ne[d - 1] == 1) d--;
    return d;
}

#define FAILB(p, msg) do { if (!(p)->bad) { (p)->bad = __LINE__; (p)->bad_msg = (msg); } return -1; } while (0)

static int add_rec(prog_t *p, const rec_t *r, tfu_tensor *t) {
    rec_t *d;
    if (!t) FAILB(p, tfu_last_error_msg(p->ctx));
    if (p->nr >= MAXR) return -1;
    d = &p->r[p->nr];
    *d = *r;
    d->t = t;
    d->val = NULL;
    d->in_graph = 0;
    return p->nr++;
}

/* --- the generator ------------------------------------------------------- */

static int new_leaf(prog_t *p) {
    rec_t r;
    tfu_tensor *t;
    int64_t n, e;
    int l = p->nleaf;
    memset(&r, 0, sizeof r);
    r.kind = R_LEAF;
    r.ne[0] = tt_int(1, 8);
    r.ne[1] = tt_int(1, LEAF_MAX / (int)r.ne[0] < 6 ? LEAF_MAX / (int)r.ne[0] : 6);
    r.ne[2] = 1;
    r.ne[3] = 1;
    if (tt_int(0, 3) == 0) {
        r.ne[0] = tt_int(1, LEAF_MAX);
        r.ne[1] = 1;
    }
    r.st[0] = 1;
    r.st[1] = r.ne[0];
    r.st[2] = r.ne[0] * r.ne[1];
    r.st[3] = r.st[2];
    r.leaf = l;
    t = tfu_new_tensor(p->ctx, TFU_F32, n_dims_of(r.ne), r.ne);
    if (!t) FAILB(p, "new leaf");
    n = nel(&r);
    for (e = 0; e < n; e++) {
        float v = tt_rand(-2.0f, 2.0f);
        ((float *)t->data)[e] = v;
        p->init[l][e] = v;
    }
    p->leaf_n[l] = n;
    p->leaf_rec[l] = p->nr;
    p->nleaf++;
    return add_rec(p, &r, t);
}

/* a random aliasing record, or -1 */
static int pick_alias(prog_t *p, int no_selfov) {
    int tries;
    for (tries = 0; tries < 32; tries++) {
        int i = tt_int(0, p->nr - 1);
        if (is_alias(&p->r[i]) && (!no_selfov || !p->r[i].selfov)) return i;
    }
    return p->leaf_rec[tt_int(0, p->nleaf - 1)];
}

/* a view of parent with the shape ne (NULL: random); -1 if it does not fit */
static int new_view(prog_t *p, int parent, const int64_t *want, int shift) {
    rec_t r, *a = &p->r[parent];
    int64_t S = span_of(a), sp, off;
    int64_t nbs[3];
    size_t nb[3];
    int k, nd;
    tfu_tensor *t;
    memset(&r, 0, sizeof r);
    r.kind = R_VIEW;
    r.leaf = a->leaf;
    r.src[0] = parent;
    r.src[1] = -1;
    if (want) {
        memcpy(r.ne, want, sizeof r.ne);
    } else {
        r.ne[0] = tt_int(1, S < 8 ? (int)S : 8);
        r.ne[1] = tt_int(1, 4);
        r.ne[2] = tt_int(0, 3) == 0 ? tt_int(1, 3) : 1;
        r.ne[3] = 1;
    }
    nd = n_dims_of(r.ne);
    r.st[0] = 1;
    /* strides: mostly disjoint rows, sometimes overlapping ones */
    for (k = 1; k < 4; k++) {
        int64_t dense = r.st[k - 1] * r.ne[k - 1];
        if (k >= nd) r.st[k] = dense;
        else if (tt_int(0, 3) == 0) r.st[k] = tt_int(1, (int)dense + 1);
        else r.st[k] = dense + tt_int(0, 2);
    }
    sp = span_of(&r);
    if (sp > S) {
        /* make it dense, then give up if it still does not fit */
        for (k = 1; k < 4; k++) r.st[k] = r.st[k - 1] * r.ne[k - 1];
        sp = span_of(&r);
        if (sp > S) return -1;
    }
    off = shift ? (S - sp >= 1 ? 1 : 0) : tt_int(0, (int)(S - sp));
    r.off = a->off + off;
    r.selfov = self_overlaps(&r);
    for (k = 0; k < 3; k++) {
        nbs[k] = r.st[k + 1] * 4;
        nb[k] = (size_t)nbs[k];
    }
    /* offsets are from the parent's first element; strides are absolute */
    t = tfu_view(p->ctx, a->t, nd, r.ne, nb, (size_t)off * 4);
    return add_rec(p, &r, t);
}

static int new_transpose(prog_t *p, int parent) {
    rec_t r = p->r[parent];
    int64_t x;
    if (r.ne[0] < 2 || r.ne[1] < 2) return -1;
    r.kind = R_VIEW;
    r.src[0] = parent;
    r.src[1] = -1;
    x = r.ne[0];
    r.ne[0] = r.ne[1];
    r.ne[1] = x;
    x = r.st[0];
    r.st[0] = r.st[1];
    r.st[1] = x;
    return add_rec(p, &r, tfu_transpose(p->ctx, p->r[parent].t));
}

static int new_op(prog_t *p, int op, int a, int b, float s) {
    rec_t r;
    tfu_tensor *t = NULL;
    memset(&r, 0, sizeof r);
    r.kind = R_OP;
    r.op = op;
    r.src[0] = a;
    r.src[1] = b;
    r.s = s;
    r.leaf = -1;
    memcpy(r.ne, p->r[a].ne, sizeof r.ne);
    switch (op) {
    case O_ADD: t = tfu_add(p->ctx, p->r[a].t, p->r[b].t); break;
    case O_MUL: t = tfu_mul(p->ctx, p->r[a].t, p->r[b].t); break;
    case O_SCALE: t = tfu_scale(p->ctx, p->r[a].t, s); break;
    case O_NEG: t = tfu_neg(p->ctx, p->r[a].t); break;
    case O_CONT: t = tfu_cont(p->ctx, p->r[a].t); break;
    default: r.ne[0] = 1; t = tfu_sum_rows(p->ctx, p->r[a].t); break;
    }
    return add_rec(p, &r, t);
}

/* copy src into dst (an aliasing record); the result aliases dst */
static int new_cpy(prog_t *p, int src, int dst) {
    rec_t r = p->r[dst];
    r.kind = R_CPY;
    r.src[0] = src;
    r.src[1] = dst;
    return add_rec(p, &r, tfu_cpy(p->ctx, p->r[src].t, p->r[dst].t));
}

/* a value of dst's shape to copy into it */
static int source_for(prog_t *p, int dst) {
    int cand[MAXR], n = 0, i, k;
    for (i = 0; i < p->nr; i++)
        if (i != dst && same_shape(&p->r[i], &p->r[dst])) cand[n++] = i;
    k = tt_int(0, 4);
    if (n && k < 2) return cand[tt_int(0, n - 1)];
    /* the same leaf shifted by one element: source and destination overlap */
    if (k == 2) {
        int v = new_view(p, p->leaf_rec[p->r[dst].leaf], p->r[dst].ne, 1);
        if (v >= 0) return v;
    }
    for (i = 0; i < 8; i++) {
        int v = new_view(p, pick_alias(p, 0), p->r[dst].ne, 0);
        if (v >= 0) return v;
        if (p->bad) return -1;
    }
    return n ? cand[0] : -1;
}

static void step(prog_t *p) {
    int k = tt_int(0, 99), a, b, i;
    if (k < 14) {
        new_view(p, pick_alias(p, 0), NULL, 0);
    } else if (k < 18) {
        new_transpose(p, pick_alias(p, 0));
    } else if (k < 40 && g_use_cpy) {
        /* a copy into a leaf or a view of one */
        int dst = pick_alias(p, 1), src;
        if (tt_int(0, 2) == 0) {
            int v = new_view(p, dst, NULL, 0);
            if (v >= 0 && !p->r[v].selfov) dst = v;
        }
        src = source_for(p, dst);
        if (src < 0) return;
        if (tt_int(0, 3) == 0) src = new_op(p, tt_int(0, 1) ? O_NEG : O_SCALE, src, -1, tt_rand(0.5f, 1.5f));
        if (src < 0) return;
        new_cpy(p, src, dst);
    } else if (k < 43 && g_use_cpy) {
        /* a copy into a destination whose elements overlap: refused */
        int v = new_view(p, pick_alias(p, 0), NULL, 0);
        tfu_tensor *c;
        if (v < 0 || !p->r[v].selfov) return;
        b = source_for(p, v);
        if (b < 0) return;
        tfu_clear_error(p->ctx);
        c = tfu_cpy(p->ctx, p->r[b].t, p->r[v].t);
        if (c == NULL && tfu_last_error(p->ctx) == TFU_ERR_INVALID_ARG) p->refused_ok++;
        else p->refused_bad++;
        tfu_clear_error(p->ctx);
    } else if (k < 70) {
        /* a binary op: b broadcasts over a */
        int cand[MAXR], n = 0;
        a = tt_int(0, p->nr - 1);
        for (i = 0; i < p->nr; i++)
            if (broadcasts(&p->r[a], &p->r[i])) cand[n++] = i;
        if (!n) return;
        b = cand[tt_int(0, n - 1)];
        new_op(p, tt_int(0, 1) ? O_ADD : O_MUL, a, b, 0);
    } else if (k < 85) {
        static const int un[] = { O_SCALE, O_NEG, O_CONT };
        a = tt_int(0, p->nr - 1);
        new_op(p, un[tt_int(0, 2)], a, -1, tt_rand(0.5f, 1.5f));
    } else {
        a = tt_int(0, p->nr - 1);
        new_op(p, O_SUM_ROWS, a, -1, 0);
    }
}

/* builds the program of seed into p->ctx; 0 on success */
static int build(prog_t *p, uint64_t seed) {
    int n_leaf, s, n_steps, i;
    tt_seed(seed);
    p->nr = 0;
    p->nleaf = 0;
    p->nout = 0;
    p->bad = 0;
    p->bad_msg = NULL;
    p->refused_ok = 0;
    p->refused_bad = 0;
    n_leaf = tt_int(1, MAXL);
    for (i = 0; i < n_leaf; i++) new_leaf(p);
    n_steps = tt_int(4, 40);
    for (s = 0; s < n_steps && !p->bad && p->nr < MAXR - 8; s++) step(p);
    if (p->bad) return 1;
    /* results: random non-leaf records, in random order */
    for (s = 0; s < 40 && p->nout < MAXOUT; s++) {
        int j, dup = 0;
        i = tt_int(0, p->nr - 1);
        if (p->r[i].kind == R_LEAF) continue;
        for (j = 0; j < p->nout; j++)
            if (p->out[j] == i) dup = 1;
        if (!dup && tt_int(0, 2)) p->out[p->nout++] = i;
    }
    if (!g_shuffle) {
        /* creation order */
        int a, b;
        for (a = 0; a < p->nout; a++)
            for (b = a + 1; b < p->nout; b++)
                if (p->out[b] < p->out[a]) {
                    int x = p->out[a];
                    p->out[a] = p->out[b];
                    p->out[b] = x;
                }
    }
    return 0;
}

/* --- the model ----------------------------------------------------------- */

static void mark(prog_t *p, int i) {
    rec_t *r = &p->r[i];
    int k;
    if (r->in_graph) return;
    r->in_graph = 1;
    if (r->kind == R_LEAF) return;
    for (k = 0; k < 2; k++)
        if (r->src[k] >= 0) mark(p, r->src[k]);
}

/* the values of record i now, ne0 fastest (malloc'd) */
static double *read_rec(prog_t *p, int i) {
    rec_t *r = &p->r[i];
    int64_t n = nel(r), e;
    double *v = (double *)malloc((size_t)n * sizeof(double));
    for (e = 0; e < n; e++) v[e] = r->kind == R_OP ? r->val[e] : p->lv[r->leaf][flat_of(r, e)];
    return v;
}

/* runs the records of the graph in creation order */
static void run_model(prog_t *p) {
    int i, l;
    for (i = 0; i < p->nr; i++) p->r[i].in_graph = 0;
    for (i = 0; i < p->nout; i++) mark(p, p->out[i]);
    for (l = 0; l < p->nleaf; l++) memcpy(p->lv[l], p->init[l], sizeof p->lv[l]);
    for (i = 0; i < p->nr; i++) {
        rec_t *r = &p->r[i];
        int64_t n = nel(r), e;
        if (!r->in_graph) continue;
        if (r->kind == R_CPY) {
            /* the source read whole first, then written */
            double *v = read_rec(p, r->src[0]);
            for (e = 0; e < n; e++) p->lv[r->leaf][flat_of(r, e)] = (double)(float)v[e];
            free(v);
        } else if (r->kind == R_OP) {
            rec_t *a = &p->r[r->src[0]];
            double *x = read_rec(p, r->src[0]);
            double *y = r->src[1] >= 0 ? read_rec(p, r->src[1]) : NULL;
            r->val = (double *)malloc((size_t)n * sizeof(double));
            for (e = 0; e < n; e++) {
                double v;
                if (r->op == O_SUM_ROWS) {
                    int64_t k;
                    v = 0;
                    for (k = 0; k < a->ne[0]; k++) v += x[e * a->ne[0] + k];
                } else if (r->op == O_ADD || r->op == O_MUL) {
                    const rec_t *b = &p->r[r->src[1]];
                    int64_t i0 = e % r->ne[0], i1 = (e / r->ne[0]) % r->ne[1];
                    int64_t i2 = (e / (r->ne[0] * r->ne[1])) % r->ne[2], i3 = e / (r->ne[0] * r->ne[1] * r->ne[2]);
                    int64_t eb = (i0 % b->ne[0]) + b->ne[0] * ((i1 % b->ne[1]) + b->ne[1] * ((i2 % b->ne[2]) + b->ne[2] * (i3 % b->ne[3])));
                    v = r->op == O_ADD ? x[e] + y[eb] : x[e] * y[eb];
                } else if (r->op == O_SCALE) {
                    v = x[e] * r->s;
                } else if (r->op == O_NEG) {
                    v = -x[e];
                } else {
                    v = x[e];
                }
                r->val[e] = (double)(float)v;
            }
            free(x);
            free(y);
        }
    }
}

static void free_model(prog_t *p) {
    int i;
    for (i = 0; i < p->nr; i++) {
        free(p->r[i].val);
        p->r[i].val = NULL;
    }
}

/* --- the library's run ----------------------------------------------------- */

enum { V_REF, V_FUSED1, V_FUSED2, V_UNFUSED, V_ARENA, V_COUNT };
static const char *g_vname[V_COUNT] = { "reference", "fused 1 thread", "fused 2 threads", "unfused", "caller arena" };

#define CTX_BYTES (4u << 20)
#define ARENA_BYTES (1u << 20)
static unsigned char *g_ctx_mem;
static unsigned char *g_arena;
static unsigned char *g_arena_raw;

static int close_to(double v, double ref) {
    double d;
    if (ref != ref) return v != v;
    d = fabs(v - ref) / (fabs(ref) > 1.0 ? fabs(ref) : 1.0);
    return d <= 2e-5;
}

/* compares tensor t against the model's values of record i; 0 if equal */
static int compare_rec(prog_t *p, int i, const char *what, const char *where) {
    rec_t *r = &p->r[i];
    double *want = read_rec(p, i);
    int64_t n = nel(r), e;
    int bad = 0;
    for (e = 0; e < n && !bad; e++) {
        int64_t i0 = e % r->ne[0], i1 = (e / r->ne[0]) % r->ne[1];
        int64_t i2 = (e / (r->ne[0] * r->ne[1])) % r->ne[2], i3 = e / (r->ne[0] * r->ne[1] * r->ne[2]);
        double got = r->t->data ? tfu_get_f32(r->t, i0, i1, i2, i3) : NAN;
        if (!close_to(got, want[e])) {
            printf("  %s: %s %d (%s) element %lld: %.9g, want %.9g\n", where, what, i,
                   r->kind == R_OP ? "op" : r->kind == R_CPY ? "cpy" : r->kind == R_VIEW ? "view" : "leaf",
                   (long long)e, got, want[e]);
            bad = 1;
        }
    }
    free(want);
    return bad;
}

static void dump(prog_t *p) {
    static const char *kn[] = { "leaf", "view", "cpy", "op" };
    static const char *on[] = { "add", "mul", "scale", "neg", "cont", "sum_rows" };
    int i;
    for (i = 0; i < p->nr; i++) {
        rec_t *r = &p->r[i];
        printf("  %3d %-4s %-8s %lldx%lldx%lld", i, kn[r->kind], r->kind == R_OP ? on[r->op] : "",
               (long long)r->ne[0], (long long)r->ne[1], (long long)r->ne[2]);
        if (r->kind != R_OP) printf(" leaf %d off %lld st %lld,%lld,%lld%s", r->leaf, (long long)r->off,
                                    (long long)r->st[0], (long long)r->st[1], (long long)r->st[2], r->selfov ? " selfov" : "");
        if (r->kind != R_LEAF) printf(" src %d %d", r->src[0], r->src[1]);
        printf("%s\n", r->in_graph ? " (in graph)" : "");
    }
    printf("  expanded:");
    for (i = 0; i < p->nout; i++) printf(" %d", p->out[i]);
    printf("\n");
}

/* runs g on variant v; returns the result */
static tfu_result run_graph(tfu_graph *g, int v, tfu_plan **keep) {
    tfu_plan_options o = tfu_plan_default_options();
    tfu_plan *plan;
    tfu_result rr;
    *keep = NULL;
    signal(SIGABRT, on_abort);
    g_abort_armed = 1;
    if (sigsetjmp(g_abort_env, 1)) return TFU_RESULT_COUNT;
    if (v == V_REF) {
        rr = tfu_graph_compute_ref(g);
        g_abort_armed = 0;
        return rr;
    }
    o.n_threads = v == V_FUSED2 ? 2 : 1;
    o.no_fusion = v == V_UNFUSED;
    if (v == V_ARENA) {
        tt_poison(g_arena, ARENA_BYTES);
        o.arena = g_arena;
        o.arena_size = ARENA_BYTES;
    }
    plan = tfu_plan_compile(g, &o);
    if (!plan) {
        g_abort_armed = 0;
        return tfu_last_error(tfu_graph_context(g));
    }
    rr = tfu_plan_run(plan);
    g_abort_armed = 0;
    *keep = plan;
    return rr;
}

/* builds, runs variant v, compares; returns failures (0: pass) */
static int run_variant(prog_t *p, uint64_t seed, int v, const char *where) {
    tfu_context_params cp;
    tfu_graph *g;
    tfu_plan *plan = NULL;
    tfu_result rr = TFU_OK;
    int i, l, fails = 0;
    char w2[160];
    snprintf(w2, sizeof w2, "%s [%s]", where, g_vname[v]);
    /* poison: memory the reference executor takes from the context too */
    tt_poison(g_ctx_mem, CTX_BYTES);
    cp.mem = g_ctx_mem;
    cp.mem_size = CTX_BYTES;
    cp.no_alloc = 0;
    p->ctx = tfu_init(cp);
    if (build(p, seed)) {
        printf("  %s: a builder failed at line %d: %s\n", w2, p->bad, p->bad_msg ? p->bad_msg : "");
        return 1;
    }
    if (p->refused_bad) {
        printf("  %s: %d copies into self-overlapping views accepted (want NULL, TFU_ERR_INVALID_ARG)\n", w2, p->refused_bad);
        fails++;
    }
    g = tfu_graph_new(p->ctx, 4 * MAXR);
    for (i = 0; i < p->nout; i++) {
        rr = tfu_graph_build_expand(g, p->r[p->out[i]].t);
        if (rr != TFU_OK) {
            printf("  %s: expand: %s\n", w2, tfu_result_str(rr));
            return fails + 1;
        }
    }
    run_model(p);
    rr = run_graph(g, v, &plan);
    if (rr == TFU_RESULT_COUNT) {
        printf("  %s: the library aborted (message on stderr)\n", w2);
        free_model(p);
        return fails + 1;
    }
    if (!plan && v != V_REF) {
        printf("  %s: compile: %s\n", w2, tfu_last_error_msg(p->ctx));
        free_model(p);
        return fails + 1;
    }
    if (rr != TFU_OK) {
        printf("  %s: run: %s (%s)\n", w2, tfu_result_str(rr), tfu_last_error_msg(p->ctx));
        fails++;
    } else {
        for (i = 0; i < p->nout; i++) fails += compare_rec(p, p->out[i], "result", w2);
        for (l = 0; l < p->nleaf; l++) fails += compare_rec(p, p->leaf_rec[l], "leaf", w2);
    }
    tfu_plan_free(plan);
    free_model(p);
    return fails;
}

/* --- the classic examples ------------------------------------------------ */

static tfu_context *fresh_ctx(void) {
    tfu_context_params cp;
    tt_poison(g_ctx_mem, CTX_BYTES);
    cp.mem = g_ctx_mem;
    cp.mem_size = CTX_BYTES;
    cp.no_alloc = 0;
    return tfu_init(cp);
}

static void fill(tfu_tensor *t, float *save) {
    int64_t n = tfu_nelements(t), e;
    for (e = 0; e < n; e++) {
        ((float *)t->data)[e] = tt_rand(-2.0f, 2.0f);
        save[e] = ((float *)t->data)[e];
    }
}

static int same(const tfu_tensor *t, const float *want, int64_t n) {
    int64_t e;
    for (e = 0; e < n; e++)
        if (!close_to(tfu_get_f32(t, e % t->ne[0], e / t->ne[0], 0, 0), want[e])) return 0;
    return 1;
}

/* t = cont(A); expand(t); expand(cpy(B, A)); expand(cpy(t, B)): a swap */
static void classic_swap(int v) {
    tfu_context *ctx = fresh_ctx();
    float a0[12], b0[12];
    tfu_tensor *A = tfu_new_tensor_2d(ctx, TFU_F32, 4, 3);
    tfu_tensor *B = tfu_new_tensor_2d(ctx, TFU_F32, 4, 3);
    tfu_tensor *t;
    tfu_graph *g = tfu_graph_new(ctx, 64);
    tfu_plan *plan;
    tfu_result rr;
    fill(A, a0);
    fill(B, b0);
    t = tfu_cont(ctx, A);
    tfu_graph_build_expand(g, t);
    tfu_graph_build_expand(g, tfu_cpy(ctx, B, A));
    tfu_graph_build_expand(g, tfu_cpy(ctx, t, B));
    rr = run_graph(g, v, &plan);
    TT_CHECK(rr == TFU_OK, "swap [%s]: run %s", g_vname[v], rr < TFU_RESULT_COUNT ? tfu_result_str(rr) : "aborted");
    if (rr == TFU_OK) {
        TT_CHECK(same(A, b0, 12), "swap [%s]: A does not hold the old B", g_vname[v]);
        TT_CHECK(same(B, a0, 12), "swap [%s]: B does not hold the old A", g_vname[v]);
        TT_CHECK(same(t, a0, 12), "swap [%s]: t = cont(A) does not hold the old A", g_vname[v]);
    }
    tfu_plan_free(plan);
}

/* r = add(L, sum_rows(X)); expand(r); expand(cpy(Y, L)): r from the old L */
static void classic_old_l(int v) {
    tfu_context *ctx = fresh_ctx();
    float l0[15], x0[15], y0[15], want[15];
    tfu_tensor *L = tfu_new_tensor_2d(ctx, TFU_F32, 5, 3);
    tfu_tensor *X = tfu_new_tensor_2d(ctx, TFU_F32, 5, 3);
    tfu_tensor *Y = tfu_new_tensor_2d(ctx, TFU_F32, 5, 3);
    tfu_tensor *r;
    tfu_graph *g = tfu_graph_new(ctx, 64);
    tfu_plan *plan;
    tfu_result rr;
    int i, j;
    fill(L, l0);
    fill(X, x0);
    fill(Y, y0);
    r = tfu_add(ctx, L, tfu_sum_rows(ctx, X));
    tfu_graph_build_expand(g, r);
    tfu_graph_build_expand(g, tfu_cpy(ctx, Y, L));
    for (j = 0; j < 3; j++) {
        double s = 0;
        for (i = 0; i < 5; i++) s += x0[j * 5 + i];
        for (i = 0; i < 5; i++) want[j * 5 + i] = (float)(l0[j * 5 + i] + s);
    }
    rr = run_graph(g, v, &plan);
    TT_CHECK(rr == TFU_OK, "old L [%s]: run %s", g_vname[v], rr < TFU_RESULT_COUNT ? tfu_result_str(rr) : "aborted");
    if (rr == TFU_OK) {
        TT_CHECK(same(r, want, 15), "old L [%s]: r = L + sum_rows(X) not computed from the old L", g_vname[v]);
        TT_CHECK(same(L, y0, 15), "old L [%s]: L does not hold Y", g_vname[v]);
    }
    tfu_plan_free(plan);
}

/* a KV cache K (hd x n_ctx): k_new is written at column pos, the
   attention-like product reads columns [0, pos]. write_first: the write is
   created before the product (the product sees the new column), else after
   (it sees the old one). The product is expanded first either way. */
static void classic_kv(int v, int write_first) {
    enum { HD = 8, NCTX = 6, POS = 3 };
    tfu_context *ctx = fresh_ctx();
    float k0[HD * NCTX], kn[HD], q0[HD], want[POS + 1], kfin[HD * NCTX];
    tfu_tensor *K = tfu_new_tensor_2d(ctx, TFU_F32, HD, NCTX);
    tfu_tensor *knew = tfu_new_tensor_2d(ctx, TFU_F32, HD, 1);
    tfu_tensor *q = tfu_new_tensor_2d(ctx, TFU_F32, HD, 1);
    tfu_tensor *kv, *wr = NULL, *s;
    tfu_graph *g = tfu_graph_new(ctx, 64);
    tfu_plan *plan;
    tfu_result rr;
    int i, j;
    fill(K, k0);
    fill(knew, kn);
    fill(q, q0);
    memcpy(kfin, k0, sizeof kfin);
    for (i = 0; i < HD; i++) kfin[POS * HD + i] = kn[i];
    if (write_first) wr = tfu_cpy(ctx, knew, tfu_view_2d(ctx, K, HD, 1, K->nb[1], (size_t)POS * K->nb[1]));
    kv = tfu_view_2d(ctx, K, HD, POS + 1, K->nb[1], 0);
    s = tfu_mul_mat(ctx, kv, q);    /* (POS+1) x 1 */
    if (!write_first) wr = tfu_cpy(ctx, knew, tfu_view_2d(ctx, K, HD, 1, K->nb[1], (size_t)POS * K->nb[1]));
    for (j = 0; j <= POS; j++) {
        double d = 0;
        const float *col = (write_first && j == POS) ? kn : k0 + j * HD;
        for (i = 0; i < HD; i++) d += (double)col[i] * q0[i];
        want[j] = (float)d;
    }
    tfu_graph_build_expand(g, s);
    tfu_graph_build_expand(g, wr);
    rr = run_graph(g, v, &plan);
    TT_CHECK(rr == TFU_OK, "kv %s [%s]: run %s", write_first ? "write first" : "write after",
             g_vname[v], rr < TFU_RESULT_COUNT ? tfu_result_str(rr) : "aborted");
    if (rr == TFU_OK) {
        int ok = 1;
        for (j = 0; j <= POS; j++)
            if (fabs(tfu_get_f32(s, j, 0, 0, 0) - want[j]) > 1e-4 * (1 + fabs(want[j]))) ok = 0;
        TT_CHECK(ok, "kv %s [%s]: the product does not see the cache in creation order",
                 write_first ? "write first" : "write after", g_vname[v]);
        TT_CHECK(same(K, kfin, HD * NCTX), "kv %s [%s]: the cache does not hold the new column",
                 write_first ? "write first" : "write after", g_vname[v]);
    }
    tfu_plan_free(plan);
}

/* a shift by one element, both directions, in one leaf */
static void classic_shift(int v, int up) {
    enum { N = 11 };
    tfu_context *ctx = fresh_ctx();
    float a0[N], want[N];
    tfu_tensor *A = tfu_new_tensor_1d(ctx, TFU_F32, N);
    tfu_tensor *lo, *hi, *c;
    tfu_graph *g = tfu_graph_new(ctx, 64);
    tfu_plan *plan;
    tfu_result rr;
    int i;
    fill(A, a0);
    lo = tfu_view_1d(ctx, A, N - 1, 0);
    hi = tfu_view_1d(ctx, A, N - 1, 4);
    c = up ? tfu_cpy(ctx, lo, hi) : tfu_cpy(ctx, hi, lo);
    memcpy(want, a0, sizeof want);
    for (i = 0; i < N - 1; i++) {
        if (up) want[i + 1] = a0[i];
        else want[i] = a0[i + 1];
    }
    tfu_graph_build_expand(g, c);
    rr = run_graph(g, v, &plan);
    TT_CHECK(rr == TFU_OK, "shift %s [%s]: run %s", up ? "up" : "down", g_vname[v],
             rr < TFU_RESULT_COUNT ? tfu_result_str(rr) : "aborted");
    if (rr == TFU_OK) TT_CHECK(same(A, want, N), "shift %s [%s]: not as if the source were read whole first", up ? "up" : "down", g_vname[v]);
    tfu_plan_free(plan);
}

int main(int argc, char **argv) {
    int n_prog = tt_arg_int(argc, argv, "--programs", 600);
    int seed = tt_arg_int(argc, argv, "--seed", 1);
    int only = tt_arg_int(argc, argv, "--only", -1);
    int pi, v, failing = 0;
    static prog_t prog;
    int vfail[V_COUNT];
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_verbose = tt_arg_int(argc, argv, "--v", 0);
    g_use_cpy = tt_arg_int(argc, argv, "--cpy", 1);
    g_shuffle = tt_arg_int(argc, argv, "--shuffle", 1);
    g_ctx_mem = (unsigned char *)malloc(CTX_BYTES);
    g_arena_raw = (unsigned char *)malloc(ARENA_BYTES + 64);
    g_arena = g_arena_raw;
    if (!g_ctx_mem || !g_arena) {
        printf("no memory\n");
        return 1;
    }
    g_arena += (64 - (uintptr_t)g_arena % 64) % 64;
    memset(vfail, 0, sizeof vfail);

    if (only < 0) {
        for (v = 0; v < V_COUNT; v++) {
            tt_seed((uint64_t)seed + 77u);
            classic_swap(v);
            classic_old_l(v);
            classic_kv(v, 1);
            classic_kv(v, 0);
            classic_shift(v, 1);
            classic_shift(v, 0);
        }
    }

    for (pi = only >= 0 ? only : 0; pi < (only >= 0 ? only + 1 : n_prog); pi++) {
        uint64_t s = (uint64_t)seed * 1000003ull + (uint64_t)pi;
        char where[64];
        int any = 0;
        snprintf(where, sizeof where, "seed %d program %d", seed, pi);
        for (v = 0; v < V_COUNT; v++) {
            int f = run_variant(&prog, s, v, where);
            TT_CHECK(f == 0, "%s [%s]: %d mismatches (rerun: --seed %d --only %d --v 1)", where, g_vname[v], f, seed, pi);
            if (f) {
                vfail[v]++;
                any = 1;
            }
        }
        if (any && g_verbose) dump(&prog);
        if (any) failing++;
        if (failing > 30 && only < 0) {
            printf("too many failing programs, stopping\n");
            break;
        }
    }
    printf("memfx: failing programs per variant:");
    for (v = 0; v < V_COUNT; v++) printf(" %s %d%s", g_vname[v], vfail[v], v + 1 < V_COUNT ? "," : "\n");
    free(g_ctx_mem);
    free(g_arena_raw);
    return tt_summary();
}
