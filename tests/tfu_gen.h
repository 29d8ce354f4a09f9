/* tfu_gen.h - the random graph generator of test_random, shared with
   test_seam (the second executor runs the same graphs).

   build(g, seed) makes one random graph in g->ctx from a seed: a pool of
   values grown by random steps (unary, binary with broadcasting, norms,
   softmax with masks, matmuls with epilogues, FFNs, GLUs, views, get_rows,
   rope, concat, copies into leaves and views of leaves, set_rows), with rough
   magnitude bounds and tolerance factors per value. g->chk[] lists the
   OUTPUT and KEEP tensors to compare, g->chk_tol[] their tolerance
   factors; compare() checks one of them against the reference.
   Two builds from one seed in two contexts are identical (same data).

   Switches (set before build): g_views_cpy (copies into overlapping views
   of leaves), g_special (NaN, infinities, rows of huge values), g_set_rows
   (set_rows steps; 0 gives the graphs of before the op existed).
   Include after tensorfuse.h and tfu_test.h. */
#ifndef TFU_GEN_H
#define TFU_GEN_H

#define MAXV   160     /* values in the pool of one graph            */
#define MAXC   64      /* tensors compared per graph                 */

typedef struct val_t {
    tfu_tensor *t;
    float mag;    /* rough bound of |value|                           */
    float tolf;   /* tolerance factor (grows through matmuls)         */
    int   leaf;   /* a leaf (never an output)                         */
    int   view;   /* a VIEW (may be non-contiguous)                   */
} val_t;

typedef struct gen_t {
    tfu_context *ctx;
    val_t v[MAXV];
    int   nv;
    tfu_tensor *chk[MAXC];     /* outputs and keeps, compared          */
    float chk_tol[MAXC];
    int   nchk;
    tfu_tensor *out[8];
    int   nout;
    int   bad;                 /* line where a builder returned NULL   */
    int   nops;                /* steps taken (for the report)         */
    int   cpy_into_input;      /* a cpy rewrites an input: run once    */
} gen_t;

TT_FN int g_views_cpy = 1, g_special = 1;
TT_FN int g_set_rows = 1;   /* set_rows steps (0: for a backend without the op) */
TT_FN const char *g_op_trace[256];
TT_FN int g_n_trace;

#define CK(g, x) do { if (!(x)) { if (!(g)->bad) (g)->bad = __LINE__; return; } } while (0)

static float fmaxf_(float a, float b) { return a > b ? a : b; }

static int n_dims_of(const int64_t *ne) {
    int d = 4;
    while (d > 1 && ne[d - 1] == 1) d--;
    return d;
}

static tfu_tensor *leaf(gen_t *g, tfu_type type, const int64_t *ne, float lo, float hi) {
    tfu_tensor *t = tfu_new_tensor(g->ctx, type, n_dims_of(ne), ne);
    if (!t) return NULL;
    if (type == TFU_I32) {
        memset(t->data, 0, tfu_nbytes(t));
    } else {
        tt_fill(t, lo, hi);
        if (g_special && tt_int(0, 15) == 0) {
            /* one NaN or infinity: IEEE rules on every path */
            static const float special[3] = { NAN, INFINITY, -INFINITY };
            int64_t n = tfu_nelements(t), e = tt_int(0, (int)n - 1);
            tfu_set_f32(t, e % t->ne[0], (e / t->ne[0]) % t->ne[1], (e / (t->ne[0] * t->ne[1])) % t->ne[2],
                        e / (t->ne[0] * t->ne[1] * t->ne[2]), special[tt_int(0, 2)]);
        }
    }
    if (tt_int(0, 3) == 0) tfu_set_input(t);
    return t;
}

static void push(gen_t *g, tfu_tensor *t, float mag, float tolf) {
    val_t *v;
    if (!t) { if (!g->bad) g->bad = -1; return; }
    if (g->nv >= MAXV) return;
    v = &g->v[g->nv++];
    v->t = t; v->mag = mag; v->tolf = tolf;
    v->leaf = t->op == TFU_OP_NONE;
    v->view = t->op == TFU_OP_VIEW;
    /* random KEEP on computed values */
    if (!v->leaf && !v->view && t->type == TFU_F32 && tt_int(0, 11) == 0 && g->nchk < MAXC) {
        tfu_set_keep(t);
        g->chk[g->nchk] = t; g->chk_tol[g->nchk] = tolf; g->nchk++;
    }
}

/* a value of magnitude <= limit: v[i] itself or v[i] scaled down (scaling
   keeps relative errors, so large values never turn rounding noise into
   large absolute errors further down) */
static int tame(gen_t *g, int i, float limit) {
    tfu_tensor *t;
    if (g->v[i].mag <= limit || g->nv >= MAXV) return i;
    t = tfu_scale(g->ctx, g->v[i].t, 0.5f * limit / g->v[i].mag);
    if (!t) { if (!g->bad) g->bad = __LINE__; return i; }
    push(g, t, 0.5f * limit, g->v[i].tolf);
    return g->nv - 1;
}

/* a pool value, recent ones preferred; F32 only (I32 values are terminal) */
static int pick_lim(gen_t *g, float limit) {
    int i, tries;
    for (tries = 0; tries < 64; tries++) {
        if (tt_int(0, 9) < 6) i = g->nv - 1 - tt_int(0, g->nv < 4 ? g->nv - 1 : 3);
        else i = tt_int(0, g->nv - 1);
        if (g->v[i].t->type == TFU_F32) return tame(g, i, limit);
    }
    for (i = g->nv - 1; i >= 0; i--) if (g->v[i].t->type == TFU_F32) return tame(g, i, limit);
    return 0;
}
static int pick(gen_t *g) { return pick_lim(g, 24.0f); }

static int broadcasts(const tfu_tensor *a, const tfu_tensor *b) {
    int i;
    for (i = 0; i < 4; i++) if (b->ne[i] == 0 || a->ne[i] % b->ne[i] != 0) return 0;
    return 1;
}

/* a pool value b (F32) that broadcasts into a, or -1 */
static int pick_compatible(gen_t *g, const tfu_tensor *a) {
    int cand[MAXV], n = 0, i;
    for (i = 0; i < g->nv; i++)
        if (g->v[i].t->type == TFU_F32 && broadcasts(a, g->v[i].t)) cand[n++] = i;
    if (!n) return -1;
    return cand[tt_int(0, n - 1)];
}

static tfu_type rand_ftype(void) {
    int r = tt_int(0, 5);
    return r < 3 ? TFU_F32 : r < 5 ? TFU_F16 : TFU_BF16;
}

/* a new leaf that broadcasts into a: some dims set to 1, maybe F16/BF16,
   maybe a transposed (non-contiguous) view of a leaf */
static tfu_tensor *operand_leaf(gen_t *g, const tfu_tensor *a, float lo, float hi) {
    int64_t ne[4]; int i; tfu_type ty = rand_ftype();
    for (i = 0; i < 4; i++) ne[i] = (tt_int(0, 3) == 0) ? 1 : a->ne[i];
    if (tt_int(0, 2) == 0) for (i = 0; i < 4; i++) ne[i] = a->ne[i];
    if (tt_int(0, 5) == 0 && ne[0] > 1 && ne[1] > 1) {
        int64_t te[4]; tfu_tensor *t;
        te[0] = ne[1]; te[1] = ne[0]; te[2] = ne[2]; te[3] = ne[3];
        t = leaf(g, ty, te, lo, hi);
        if (!t) return NULL;
        return tfu_transpose(g->ctx, t);
    }
    return leaf(g, ty, ne, lo, hi);
}

/* --- steps ------------------------------------------------------------ */

static void step_unary(gen_t *g) {
    static const tfu_op ops[] = { TFU_OP_NEG, TFU_OP_ABS, TFU_OP_SIN, TFU_OP_COS, TFU_OP_TANH,
                                  TFU_OP_SIGMOID, TFU_OP_RELU, TFU_OP_GELU, TFU_OP_GELU_ERF,
                                  TFU_OP_SILU, TFU_OP_SQR };
    int i = pick(g); val_t x = g->v[i]; tfu_op op; tfu_tensor *t; float mag = x.mag;
    do { op = ops[tt_int(0, (int)(sizeof ops / sizeof ops[0]) - 1)]; } while (op == TFU_OP_SQR && x.mag > 6);
    if (tt_int(0, 1)) t = tfu_unary(g->ctx, x.t, op);
    else switch (op) {
        case TFU_OP_NEG: t = tfu_neg(g->ctx, x.t); break;
        case TFU_OP_ABS: t = tfu_abs(g->ctx, x.t); break;
        case TFU_OP_SIN: t = tfu_sin(g->ctx, x.t); break;
        case TFU_OP_COS: t = tfu_cos(g->ctx, x.t); break;
        case TFU_OP_TANH: t = tfu_tanh(g->ctx, x.t); break;
        case TFU_OP_SIGMOID: t = tfu_sigmoid(g->ctx, x.t); break;
        case TFU_OP_RELU: t = tfu_relu(g->ctx, x.t); break;
        case TFU_OP_GELU: t = tfu_gelu(g->ctx, x.t); break;
        case TFU_OP_GELU_ERF: t = tfu_gelu_erf(g->ctx, x.t); break;
        case TFU_OP_SILU: t = tfu_silu(g->ctx, x.t); break;
        default: t = tfu_sqr(g->ctx, x.t); break;
    }
    CK(g, t);
    if (op == TFU_OP_SIN || op == TFU_OP_COS || op == TFU_OP_TANH || op == TFU_OP_SIGMOID) mag = 1;
    if (op == TFU_OP_SQR) mag = x.mag * x.mag;
    /* sin and cos turn the relative error of a large input into an absolute one */
    push(g, t, mag, (op == TFU_OP_SIN || op == TFU_OP_COS) && x.mag > 2 ? x.tolf * x.mag * 0.5f : x.tolf);
}

/* log(1+|x|), sqrt(1+|x|), exp(clamp(x)) - well conditioned */
static void step_safe_fn(gen_t *g) {
    int i = pick(g); val_t x = g->v[i]; tfu_tensor *t; int k = tt_int(0, 2); float mag;
    if (k < 2) {
        CK(g, t = tfu_abs(g->ctx, x.t));
        CK(g, t = tfu_scale_bias(g->ctx, t, 1.0f, 1.0f));
        CK(g, t = k == 0 ? tfu_log(g->ctx, t) : tfu_sqrt(g->ctx, t));
        mag = k == 0 ? (float)log(1.0 + x.mag) : (float)sqrt(1.0 + x.mag);
    } else {
        CK(g, t = tfu_clamp(g->ctx, x.t, -3.0f, 2.5f));
        CK(g, t = tfu_exp(g->ctx, t));
        mag = 12.2f;
    }
    push(g, t, mag, x.tolf);
}

static void step_scale(gen_t *g) {
    int i = pick(g); val_t x = g->v[i]; tfu_tensor *t; int k = tt_int(0, 2);
    float s = tt_rand(0.25f, 2.0f) * (tt_int(0, 1) ? 1.0f : -1.0f), b = tt_rand(-1.0f, 1.0f), mag = x.mag;
    if (x.mag > 20) s = 1.0f / x.mag;
    if (k == 0) { CK(g, t = tfu_scale(g->ctx, x.t, s)); mag = fabsf(s) * x.mag; }
    else if (k == 1) { CK(g, t = tfu_scale_bias(g->ctx, x.t, s, b)); mag = fabsf(s) * x.mag + 1; }
    else {
        float lo = -tt_rand(0.1f, 1.0f) * x.mag, hi = tt_rand(0.1f, 1.0f) * x.mag;
        CK(g, t = tfu_clamp(g->ctx, x.t, lo, hi));
    }
    push(g, t, mag, x.tolf);
}

static void step_binary(gen_t *g) {
    int i = pick(g), j = -1; val_t a = g->v[i]; tfu_tensor *b, *t; float mb = 1, tb = 1;
    int k = tt_int(0, 2);
    if (tt_int(0, 1)) j = pick_compatible(g, a.t);
    if (j >= 0) { b = g->v[j].t; mb = g->v[j].mag; tb = g->v[j].tolf; }
    else CK(g, b = operand_leaf(g, a.t, -1.0f, 1.0f));
    if (k == 2 && a.mag * mb > 60) k = 0;
    /* both orders when the shapes agree */
    if (tfu_same_shape(a.t, b) && tt_int(0, 1)) { tfu_tensor *s = a.t; a.t = b; b = s; }
    if (k == 0) t = tfu_add(g->ctx, a.t, b);
    else if (k == 1) t = tfu_sub(g->ctx, a.t, b);
    else t = tfu_mul(g->ctx, a.t, b);
    CK(g, t);
    push(g, t, k == 2 ? a.mag * mb : a.mag + mb, fmaxf_(a.tolf, tb));
}

/* a / (1 + |b|) */
static void step_div(gen_t *g) {
    int i = pick(g), j = -1; val_t a = g->v[i]; tfu_tensor *b, *t; float tb = 1;
    if (tt_int(0, 1)) j = pick_compatible(g, a.t);
    if (j >= 0) { b = g->v[j].t; tb = g->v[j].tolf; }
    else CK(g, b = operand_leaf(g, a.t, -2.0f, 2.0f));
    CK(g, b = tfu_abs(g->ctx, b));
    CK(g, b = tfu_scale_bias(g->ctx, b, 1.0f, 1.0f));
    CK(g, t = tfu_div(g->ctx, a.t, b));
    push(g, t, a.mag, fmaxf_(a.tolf, tb));
}

/* rms_norm / norm, optional * w (+ b) epilogue */
static void step_norm(gen_t *g) {
    int i = pick(g); val_t x = g->v[i]; tfu_tensor *t, *w; int64_t ne[4] = {1, 1, 1, 1};
    static const float eps[] = { 1e-5f, 1e-2f, 1e-3f };
    float e = eps[tt_int(0, 2)], mag;
    int rms = tt_int(0, 1);
    CK(g, t = rms ? tfu_rms_norm(g->ctx, x.t, e) : tfu_norm(g->ctx, x.t, e));
    mag = (float)sqrt((double)x.t->ne[0]) + 0.5f;
    if (tt_int(0, 2)) {
        ne[0] = x.t->ne[0];
        if (tt_int(0, 3) == 0) { ne[1] = x.t->ne[1]; }
        CK(g, w = leaf(g, tt_int(0, 3) ? TFU_F32 : TFU_F16, ne, 0.5f, 1.5f));
        CK(g, t = tfu_mul(g->ctx, t, w));
        mag *= 1.5f;
        if (tt_int(0, 1)) {
            int j = pick_compatible(g, t);
            if (j >= 0 && tt_int(0, 1)) { CK(g, t = tfu_add(g->ctx, t, g->v[j].t)); mag += g->v[j].mag; }
            else { CK(g, w = leaf(g, TFU_F32, ne, -1.0f, 1.0f)); CK(g, t = tfu_add(g->ctx, t, w)); mag += 1; }
        }
    }
    /* rounding noise in rows of tiny values is amplified up to 1/sqrt(eps) */
    push(g, t, mag, x.tolf * (2.0f + 0.05f / sqrtf(e)));
}

static void step_softmax(gen_t *g) {
    int i = pick(g); val_t x = g->v[i]; tfu_tensor *t, *mask = NULL; int k = tt_int(0, 3);
    static const float scales[] = { 1.0f, 0.125f, 0.5f, 2.0f };
    float sc = scales[tt_int(0, 3)];
    if (x.mag * sc > 30) sc = 30.0f / x.mag;
    if (k == 0) { CK(g, t = tfu_soft_max(g->ctx, x.t)); }
    else {
        if (k == 1 && x.t->ne[0] >= x.t->ne[1]) {
            CK(g, mask = tfu_causal_mask(g->ctx, x.t->ne[0], x.t->ne[1]));
        } else if (k >= 2) {
            int64_t ne[4] = {1, 1, 1, 1};
            ne[0] = x.t->ne[0]; ne[1] = x.t->ne[1] + tt_int(0, 2);
            CK(g, mask = leaf(g, tt_int(0, 2) ? TFU_F32 : TFU_F16, ne, -2.0f, 2.0f));
        }
        if (tt_int(0, 1)) {
            /* the prologue written out: soft_max(x*scale + mask) */
            CK(g, t = tfu_scale(g->ctx, x.t, sc));
            if (mask && mask->ne[1] == x.t->ne[1] && mask->type == TFU_F32) CK(g, t = tfu_add(g->ctx, t, mask));
            else if (mask) { CK(g, t = tfu_soft_max_ext(g->ctx, t, mask, 1.0f)); push(g, t, 1, x.tolf * 2); return; }
            CK(g, t = tfu_soft_max(g->ctx, t));
        } else {
            CK(g, t = tfu_soft_max_ext(g->ctx, x.t, mask, sc));
        }
    }
    push(g, t, 1, x.tolf * 2);
}

static int64_t pick_m(const tfu_tensor *x) {
    int r = tt_int(0, 3);
    if (r == 0) return x->ne[0];
    return tt_int(1, 24);
}

/* mul_mat with an optional epilogue: bias, activation, residual */
static void step_matmul(gen_t *g) {
    int i = pick_lim(g, 8.0f); val_t x = g->v[i]; tfu_tensor *w, *t; int64_t K = x.t->ne[0], M = pick_m(x.t);
    int64_t ne[4] = {1, 1, 1, 1}; float mag, tolf;
    static const tfu_op acts[] = { TFU_OP_GELU, TFU_OP_SILU, TFU_OP_RELU, TFU_OP_TANH, TFU_OP_GELU_ERF };
    int j;
    if (tt_int(0, 4) == 0) {
        /* a computed left operand: x^T x (K x N x ...) is N x N x ... */
        w = x.t; M = x.t->ne[1];
        mag = x.mag * x.mag * (float)sqrt((double)K);
    } else {
        ne[0] = K; ne[1] = M;
        if (tt_int(0, 3) == 0) ne[2] = x.t->ne[2];
        if (tt_int(0, 5) == 0) ne[3] = x.t->ne[3];
        {
            float r = (float)sqrt(3.0 / (double)K);
            CK(g, w = leaf(g, rand_ftype(), ne, -r, r));
        }
        if (tt_int(0, 5) == 0) tfu_set_flags(w, TFU_FLAG_PARAM);
        mag = x.mag * 2;
    }
    CK(g, t = tfu_mul_mat(g->ctx, w, x.t));
    tolf = x.tolf + (float)sqrt((double)K);
    if (tt_int(0, 1)) {
        int64_t bn[4] = {1, 1, 1, 1}; tfu_tensor *b;
        bn[0] = t->ne[0];
        CK(g, b = leaf(g, TFU_F32, bn, -1.0f, 1.0f));
        CK(g, t = tfu_add(g->ctx, t, b));
        mag += 1;
    }
    if (tt_int(0, 1)) {
        if (mag > 6) { CK(g, t = tfu_tanh(g->ctx, t)); mag = 1; }
        else CK(g, t = tfu_unary(g->ctx, t, acts[tt_int(0, 4)]));
    }
    if (tt_int(0, 1) && (j = pick_compatible(g, t)) >= 0) {
        CK(g, t = tfu_add(g->ctx, t, g->v[j].t));
        mag += g->v[j].mag; tolf = fmaxf_(tolf, g->v[j].tolf);
    }
    push(g, t, mag, tolf);
}

/* attention: mul_mat(V, soft_max_ext(mul_mat(K, x), mask, scale)) with x
   the queries (hd x n_q x heads x n3), K a leaf or x itself, V a leaf or
   a permuted one (the llama layout), K's and V's heads 1 or all; now and
   then more than 64 keys (the fused kernel's blocks), masks with -inf on
   whole blocks; the scores or the probabilities sometimes join the pool
   (a second consumer: no attention group) */
static void step_attention(gen_t *g) {
    int i = pick_lim(g, 4.0f), m = tt_int(0, 3); val_t x = g->v[i];
    tfu_tensor *k, *v, *s, *p, *t, *mask = NULL;
    int64_t hd = x.t->ne[0], nq = x.t->ne[1], nh = x.t->ne[2], n3 = x.t->ne[3], nkv, hdv = tt_int(1, 20), ne[4];
    int64_t nhk = tt_int(0, 1) ? nh : 1, nhv = tt_int(0, 1) ? nh : 1, j;
    float sc = tt_int(0, 1) ? 1.0f / (float)sqrt((double)hd) : 0.5f, r = (float)sqrt(3.0 / (double)hd);
    if (x.mag * sc * (float)sqrt((double)hd) > 8) sc = 8.0f / (x.mag * (float)sqrt((double)hd));
    if (tt_int(0, 3) == 0) {   /* self-attention: K = x */
        k = x.t;
        nkv = nq;
        nhk = nh;
        r = x.mag;
    } else {
        nkv = tt_int(0, 4) == 0 ? tt_int(65, 140) : tt_int(1, 24);
        ne[0] = hd; ne[1] = nkv; ne[2] = nhk; ne[3] = tt_int(0, 1) ? n3 : 1;
        CK(g, k = leaf(g, rand_ftype(), ne, -r, r));
    }
    if (tt_int(0, 1)) {
        ne[0] = hdv; ne[1] = nkv; ne[2] = nhv; ne[3] = tt_int(0, 1) ? n3 : 1;
        CK(g, v = leaf(g, rand_ftype(), ne, -1, 1));
        CK(g, v = tfu_permute(g->ctx, v, 1, 0, 2, 3));
    } else {
        ne[0] = nkv; ne[1] = hdv; ne[2] = nhv; ne[3] = tt_int(0, 1) ? n3 : 1;
        CK(g, v = leaf(g, rand_ftype(), ne, -1, 1));
    }
    if (m == 1 && nkv >= nq) {
        CK(g, mask = tfu_causal_mask(g->ctx, nkv, nq));
    } else if (m >= 2) {
        ne[0] = nkv; ne[1] = nq + tt_int(0, 2); ne[2] = tt_int(0, 1) ? nh : 1; ne[3] = 1;
        CK(g, mask = leaf(g, tt_int(0, 2) ? TFU_F32 : TFU_F16, ne, -2.0f, 2.0f));
        for (j = 0; j < ne[1] * ne[2]; j++) {   /* -inf on whole blocks of 64 keys and here and there */
            int64_t c, blk = tt_int(0, 3);
            for (c = 0; c < nkv; c++)
                if (c / 64 == blk || tt_int(0, 7) == 0) tfu_set_f32(mask, c, j % ne[1], j / ne[1], 0, -INFINITY);
        }
    }
    CK(g, s = tfu_mul_mat(g->ctx, k, x.t));
    if (tt_int(0, 7) == 0) push(g, s, x.mag * r * (float)hd, x.tolf);
    CK(g, p = tfu_soft_max_ext(g->ctx, s, mask, sc));
    if (tt_int(0, 7) == 0) push(g, p, 1, x.tolf * 2);
    CK(g, t = tfu_mul_mat(g->ctx, v, p));
    push(g, t, 1, x.tolf * 2 + (float)sqrt((double)hd) + (float)sqrt((double)nkv));
}

/* the FFN: glu_split(mul_mat(Wg,x), mul_mat(Wu,x)), maybe down-projected */
static void step_ffn(gen_t *g) {
    int i = pick_lim(g, 6.0f); val_t x = g->v[i]; tfu_tensor *wg, *wu, *gt, *ut, *t;
    int64_t K = x.t->ne[0], F = tt_int(1, 24), ne[4] = {1, 1, 1, 1};
    float r = (float)sqrt(3.0 / (double)K), tolf = x.tolf + (float)sqrt((double)K), mag;
    tfu_type ty = rand_ftype();
    ne[0] = K; ne[1] = F;
    CK(g, wg = leaf(g, ty, ne, -r, r));
    CK(g, wu = leaf(g, ty, ne, -r, r));
    CK(g, gt = tfu_mul_mat(g->ctx, wg, x.t));
    CK(g, ut = tfu_mul_mat(g->ctx, wu, x.t));
    if (tt_int(0, 1)) CK(g, t = tfu_swiglu_split(g->ctx, gt, ut));
    else CK(g, t = tfu_glu_split(g->ctx, gt, ut, (tfu_glu_kind)tt_int(0, 3)));
    mag = 4 * x.mag * x.mag + 1;
    if (tt_int(0, 1)) {
        tfu_tensor *wd;
        ne[0] = F; ne[1] = K; r = (float)sqrt(3.0 / (double)F);
        CK(g, wd = leaf(g, ty, ne, -r, r));
        CK(g, t = tfu_mul_mat(g->ctx, wd, t));
        tolf += (float)sqrt((double)F);
        if (tt_int(0, 1)) { CK(g, t = tfu_add(g->ctx, t, x.t)); mag += x.mag; }
    }
    push(g, t, mag, tolf);
}

/* fused-row GLU: rows of 2n -> n */
static void step_glu(gen_t *g) {
    int i = pick_lim(g, 6.0f), k; val_t x = g->v[i]; tfu_tensor *t;
    if (x.t->ne[0] % 2 != 0) {
        /* make an even row: concat with itself along dim 0 */
        CK(g, t = tfu_concat(g->ctx, x.t, x.t, 0));
        x.t = t;
    }
    k = tt_int(0, 5);
    if (k == 0) t = tfu_swiglu(g->ctx, x.t);
    else if (k == 1) t = tfu_geglu(g->ctx, x.t);
    else if (k == 2) t = tfu_reglu(g->ctx, x.t);
    else t = tfu_glu(g->ctx, x.t, (tfu_glu_kind)tt_int(0, 3), tt_int(0, 1));
    CK(g, t);
    push(g, t, x.mag * x.mag + 1, x.tolf);
}

static void step_view(gen_t *g) {
    int i = pick(g), k = tt_int(0, 5); val_t x = g->v[i]; tfu_tensor *t = NULL;
    const tfu_tensor *a = x.t;
    if (k == 0 && a->ne[0] > 1 && a->ne[1] > 1) {
        CK(g, t = tfu_transpose(g->ctx, x.t));
        if (tt_int(0, 2)) CK(g, t = tfu_cont(g->ctx, t));
    } else if (k == 1 && a->ne[1] > 1 && tfu_is_contiguous(a)) {
        /* rows [r0, r0 + n) of dim 1 */
        int64_t ne[4]; int64_t r0 = tt_int(0, (int)a->ne[1] - 1), n = tt_int(1, (int)(a->ne[1] - r0));
        ne[0] = a->ne[0]; ne[1] = n; ne[2] = a->ne[2]; ne[3] = a->ne[3];
        CK(g, t = tfu_view(g->ctx, x.t, 4, ne, a->nb + 1, (size_t)r0 * a->nb[1]));
    } else if (k == 2 && a->ne[0] > 1 && tfu_is_contiguous(a)) {
        /* columns [c0, c0 + n) of every row */
        int64_t ne[4]; int64_t c0 = tt_int(0, (int)a->ne[0] - 1), n = tt_int(1, (int)(a->ne[0] - c0));
        ne[0] = n; ne[1] = a->ne[1]; ne[2] = a->ne[2]; ne[3] = a->ne[3];
        CK(g, t = tfu_view(g->ctx, x.t, 4, ne, a->nb + 1, (size_t)c0 * a->nb[0]));
    } else if (k == 3 && tfu_is_contiguous(a)) {
        if (tt_int(0, 1)) CK(g, t = tfu_reshape_2d(g->ctx, x.t, a->ne[0] * a->ne[1], a->ne[2] * a->ne[3]));
        else CK(g, t = tfu_reshape_3d(g->ctx, x.t, a->ne[0], a->ne[1] * a->ne[2], a->ne[3]));
    } else if (k == 4) {
        static const int perms[][4] = { {0, 2, 1, 3}, {1, 2, 0, 3}, {2, 0, 1, 3}, {1, 0, 2, 3}, {0, 1, 3, 2} };
        const int *p = perms[tt_int(0, 4)];
        CK(g, t = tfu_permute(g->ctx, x.t, p[0], p[1], p[2], p[3]));
        CK(g, t = tfu_cont(g->ctx, t));
    } else if (tfu_is_contiguous(a) && a->ne[0] * a->ne[1] > 1) {
        /* a flat 1-d window */
        int64_t n = tfu_nelements(a), o = tt_int(0, (int)(n - 1)), m = tt_int(1, (int)(n - o));
        CK(g, t = tfu_view_1d(g->ctx, x.t, m, (size_t)o * sizeof(float)));
    } else {
        CK(g, t = tfu_cont(g->ctx, x.t));
    }
    push(g, t, x.mag, x.tolf);
    /* a view is mostly consumed right away */
    if (t->op == TFU_OP_VIEW && tt_int(0, 2)) {
        if (tt_int(0, 1)) step_unary(g); else step_binary(g);
    }
}

static void step_other(gen_t *g) {
    int i = pick(g), k = tt_int(0, 6); val_t x = g->v[i]; tfu_tensor *t;
    if (k == 0) {
        /* x - mean(x) (a broadcast of a reduction) */
        CK(g, t = tfu_mean(g->ctx, x.t));
        push(g, t, x.mag, x.tolf);
        CK(g, t = tfu_sub(g->ctx, x.t, t));
        push(g, t, 2 * x.mag, x.tolf);
    } else if (k == 1) {
        CK(g, t = tfu_sum_rows(g->ctx, x.t));
        push(g, t, x.mag * (float)x.t->ne[0], x.tolf * 2);
    } else if (k == 2 && g->nchk < MAXC) {
        /* argmax: terminal, compared by value */
        CK(g, t = tfu_argmax(g->ctx, x.t));
        tfu_set_name(t, "argmax");
        g->chk[g->nchk] = t; g->chk_tol[g->nchk] = x.tolf; g->nchk++;
        if (g->nout < 8) g->out[g->nout++] = t;
    } else if (k == 3) {
        /* get_rows from a leaf table or from a computed 2-d value */
        int64_t ne[4] = {1, 1, 1, 1}, V, n, j; tfu_tensor *tab, *idx;
        if (x.t->ne[2] == 1 && x.t->ne[3] == 1 && tt_int(0, 1)) { tab = x.t; }
        else { ne[0] = tt_int(1, 20); ne[1] = tt_int(1, 12); CK(g, tab = leaf(g, rand_ftype(), ne, -1, 1)); }
        V = tab->ne[1];
        ne[0] = n = tt_int(1, 8); ne[1] = tt_int(1, 2); ne[2] = 1;
        CK(g, idx = leaf(g, TFU_I32, ne, 0, 0));
        for (j = 0; j < n * ne[1]; j++) ((int32_t *)idx->data)[j] = tt_int(0, (int)V - 1);
        CK(g, t = tfu_get_rows(g->ctx, tab, idx));
        push(g, t, tab == x.t ? x.mag : 1, tab == x.t ? x.tolf : 1);
    } else if (k == 4 && x.t->ne[0] % 2 == 0 && x.t->ne[3] == 1) {
        int64_t ne[4] = {1, 1, 1, 1}, j; tfu_tensor *pos; int nd = 2 * tt_int(1, (int)(x.t->ne[0] / 2));
        ne[0] = x.t->ne[2];
        CK(g, pos = leaf(g, TFU_I32, ne, 0, 0));
        for (j = 0; j < ne[0]; j++) ((int32_t *)pos->data)[j] = tt_int(0, 60);
        CK(g, t = tfu_rope(g->ctx, x.t, pos, nd, tt_int(0, 1) ? TFU_ROPE_NEOX : TFU_ROPE_NORMAL, 10000.0f));
        push(g, t, x.mag * 1.5f, x.tolf * 2);
    } else {
        int d = tt_int(0, 3); int64_t ne[4]; tfu_tensor *b;
        memcpy(ne, x.t->ne, sizeof ne);
        ne[d] = tt_int(1, 4);
        CK(g, b = leaf(g, tt_int(0, 2) ? TFU_F32 : TFU_F16, ne, -1, 1));
        CK(g, t = tt_int(0, 1) ? tfu_concat(g->ctx, x.t, b, d) : tfu_concat(g->ctx, b, x.t, d));
        push(g, t, x.mag > 1 ? x.mag : 1, x.tolf);
    }
}

/* cpy: into a fresh leaf, or into the leaf the producing chain reads */
static void step_cpy(gen_t *g) {
    int i = pick(g); val_t x = g->v[i]; tfu_tensor *d, *t, *c; int64_t ne[4];
    memcpy(ne, x.t->ne, sizeof ne);
    if (tt_int(0, 1)) {
        CK(g, d = leaf(g, tt_int(0, 2) ? TFU_F32 : TFU_F16, ne, -1, 1));
        CK(g, c = tfu_cpy(g->ctx, x.t, d));
        push(g, c, x.mag, x.tolf * (d->type == TFU_F16 ? 25 : 1));
    } else {
        /* d is read only by the chain that produces what is copied into it */
        g->cpy_into_input = 1;
        CK(g, d = leaf(g, TFU_F32, ne, -1, 1));
        CK(g, t = tfu_mul(g->ctx, d, x.t));
        CK(g, t = tfu_scale_bias(g->ctx, t, 0.5f, 1.0f));
        CK(g, t = tfu_tanh(g->ctx, t));
        if (tt_int(0, 1)) push(g, t, 1, x.tolf);
        CK(g, c = tfu_cpy(g->ctx, t, d));
        push(g, c, 1, x.tolf);
    }
}

/* a copy of x into a view of a leaf L (a column window at offset 0 or 1 of
   rows one longer, so another window overlaps it); reads of L's bytes
   through an overlapping view before and after the copy */
static void step_cpy_view(gen_t *g) {
    int i = pick(g); val_t x = g->v[i]; tfu_tensor *L, *dst, *before, *after, *c, *t;
    int64_t ne[4]; int off = tt_int(0, 1);
    memcpy(ne, x.t->ne, sizeof ne);
    ne[0] += 1;
    g->cpy_into_input = 1;
    CK(g, L = leaf(g, TFU_F32, ne, -1, 1));
    /* a window shifted by one element against the destination */
    CK(g, before = tfu_view(g->ctx, L, 4, x.t->ne, L->nb + 1, (size_t)(1 - off) * L->nb[0]));
    CK(g, t = tfu_neg(g->ctx, before));
    push(g, t, 1, 1);
    CK(g, dst = tfu_view(g->ctx, L, 4, x.t->ne, L->nb + 1, (size_t)off * L->nb[0]));
    CK(g, c = tfu_cpy(g->ctx, x.t, dst));
    push(g, c, x.mag, x.tolf);
    CK(g, after = tfu_view(g->ctx, L, 4, x.t->ne, L->nb + 1, (size_t)(1 - off) * L->nb[0]));
    CK(g, t = tfu_add(g->ctx, after, c));
    push(g, t, x.mag + 1, x.tolf);
}

/* set_rows: the rows of x into distinct rows of a leaf L with a few rows
   more (some keep their data), at indices held in a leaf (per batch of
   dim 2 or shared); L read before the write and through its result after */
static void step_set_rows(gen_t *g) {
    int i = pick(g); val_t x = g->v[i]; tfu_tensor *L, *idx, *t, *c;
    int64_t ne[4], ine[4] = {1, 1, 1, 1}, n, R, j, k;
    memcpy(ne, x.t->ne, sizeof ne);
    n = ne[1];
    if (n > 60) return;   /* perm[] */
    R = n + tt_int(0, 3);
    ne[1] = R;
    g->cpy_into_input = 1;
    CK(g, L = leaf(g, tt_int(0, 2) ? TFU_F32 : TFU_F16, ne, -1, 1));
    ine[0] = n;
    ine[1] = tt_int(0, 1) ? x.t->ne[2] : 1;
    CK(g, idx = leaf(g, TFU_I32, ine, 0, 0));
    for (j = 0; j < ine[1]; j++) {
        int32_t *row = (int32_t *)idx->data + j * n, perm[64];
        for (k = 0; k < R; k++) perm[k] = (int32_t)k;
        for (k = 0; k < n; k++) {   /* n distinct rows of R: a partial shuffle */
            int64_t q = k + tt_int(0, (int)(R - 1 - k));
            int32_t tmp = perm[k];
            perm[k] = perm[q];
            perm[q] = tmp;
            row[k] = perm[k];
        }
    }
    CK(g, t = tfu_sum_rows(g->ctx, L));
    push(g, t, (float)ne[0], 1);
    CK(g, c = tfu_set_rows(g->ctx, L, x.t, idx));
    push(g, c, fmaxf_(x.mag, 1), x.tolf * (L->type == TFU_F16 ? 25 : 1));
    CK(g, t = tfu_scale(g->ctx, c, 0.5f));
    push(g, t, fmaxf_(x.mag, 1), x.tolf * (L->type == TFU_F16 ? 25 : 1));
}

/* rows of huge values (1e20 or 3e38) into rms_norm, norm or soft_max */
static void step_huge(gen_t *g) {
    int64_t ne[4] = {1, 1, 1, 1}; tfu_tensor *x, *t; int k = tt_int(0, 2);
    float big = tt_int(0, 1) ? 1e20f : 3e38f;
    ne[0] = tt_int(1, 40); ne[1] = tt_int(1, 3);
    CK(g, x = leaf(g, TFU_F32, ne, -1, 1));
    CK(g, t = tfu_scale(g->ctx, x, 1.0f));   /* the reduction reads a computed value: fusable */
    {
        /* scale of 1 keeps the leaf's values; write the huge ones into the leaf */
        int64_t e, n = tfu_nelements(x);
        for (e = 0; e < n; e++) ((float *)x->data)[e] = big * tt_rand(-1.0f, 1.0f);
    }
    if (k == 0) CK(g, t = tfu_rms_norm(g->ctx, t, 1e-5f));
    else if (k == 1) CK(g, t = tfu_norm(g->ctx, t, 1e-5f));
    else CK(g, t = tfu_soft_max_ext(g->ctx, t, NULL, 1.0f / big));
    push(g, t, (float)sqrt((double)ne[0]) + 1, 4);
}

/* build one random graph; returns the graph or NULL (g->bad says where) */
static tfu_graph *build(gen_t *g, uint64_t seed) {
    int64_t ne[4]; int n_steps, s, i; tfu_graph *gr;
    tt_seed(seed);
    g->nv = 0; g->nchk = 0; g->nout = 0; g->bad = 0; g_n_trace = 0; g->cpy_into_input = 0;
    ne[0] = tt_int(0, 3) == 0 ? tt_int(1, 40) : tt_int(1, 12);
    ne[1] = tt_int(1, 6);
    ne[2] = tt_int(0, 2) == 0 ? tt_int(1, 3) : 1;
    ne[3] = tt_int(0, 5) == 0 ? 2 : 1;
    push(g, leaf(g, TFU_F32, ne, -2, 2), 2, 1);
    if (tt_int(0, 1)) push(g, leaf(g, rand_ftype(), ne, -2, 2), 2, 1);
    n_steps = tt_int(3, 24);
    for (s = 0; s < n_steps && !g->bad && g->nv < MAXV - 16; s++) {
        int r = tt_int(0, 99);
        const char *what;
        /* tame large values first */
        if (g->v[g->nv - 1].mag > 50 && g->v[g->nv - 1].t->type == TFU_F32) {
            tfu_tensor *t = tfu_tanh(g->ctx, g->v[g->nv - 1].t);
            push(g, t, 1, g->v[g->nv - 1].tolf);
            continue;
        }
        if (r < 18)      { what = "unary"; step_unary(g); }
        else if (r < 24) { what = "safe_fn"; step_safe_fn(g); }
        else if (r < 32) { what = "scale"; step_scale(g); }
        else if (r < 50) { what = "binary"; step_binary(g); }
        else if (r < 54) { what = "div"; step_div(g); }
        else if (r < 62) { what = "norm"; step_norm(g); }
        else if (r < 68) { what = "softmax"; step_softmax(g); }
        else if (r < 73) { what = "matmul"; step_matmul(g); }
        else if (r < 76) { what = "attention"; step_attention(g); }
        else if (r < 80) { what = "ffn"; step_ffn(g); }
        else if (r < 83) { what = "glu"; step_glu(g); }
        else if (r < 91) { what = "view"; step_view(g); }
        else if (r < 96) { what = "other"; step_other(g); }
        else if (r < 98 || !g_views_cpy) { what = "cpy"; step_cpy(g); }
        else if (s % 2 || !g_set_rows) { what = "cpy_view"; step_cpy_view(g); }
        else             { what = "set_rows"; step_set_rows(g); }
        if (g_special && tt_int(0, 79) == 0) { what = "huge"; step_huge(g); }
        if (g_n_trace < 256) g_op_trace[g_n_trace++] = what;
    }
    g->nops = s;
    if (g->bad) return NULL;
    /* outputs: the last computed value and a few others */
    for (i = g->nv - 1; i >= 0; i--) if (!g->v[i].leaf) { if (g->nout < 8) g->out[g->nout++] = g->v[i].t; break; }
    for (s = tt_int(0, 3); s > 0 && g->nout < 8; s--) {
        i = tt_int(0, g->nv - 1);
        if (g->v[i].leaf || (g->v[i].view && tt_int(0, 3))) continue;
        g->out[g->nout++] = g->v[i].t;
    }
    if (g->nout == 0) {
        /* nothing computed yet: one op on the input */
        tfu_tensor *t = tfu_sqr(g->ctx, g->v[0].t);
        if (!t) { g->bad = __LINE__; return NULL; }
        push(g, t, 4, 1);
        g->out[g->nout++] = t;
    }
    gr = tfu_graph_new(g->ctx, 2048);
    if (!gr) { g->bad = __LINE__; return NULL; }
    for (i = 0; i < g->nout; i++) {
        if (tfu_graph_build_expand(gr, g->out[i]) != TFU_OK) { g->bad = __LINE__; return NULL; }
        if (g->out[i]->type != TFU_I32 && g->nchk < MAXC) {
            int k, seen = 0;
            for (k = 0; k < g->nchk; k++) if (g->chk[k] == g->out[i]) seen = 1;
            if (!seen) {
                for (k = 0; k < g->nv; k++) if (g->v[k].t == g->out[i]) break;
                g->chk[g->nchk] = g->out[i];
                g->chk_tol[g->nchk] = k < g->nv ? g->v[k].tolf : 1;
                g->nchk++;
            }
        }
    }
    return gr;
}

/* --- comparison -------------------------------------------------------- */

static int compare(const tfu_tensor *r, const tfu_tensor *p, float tolf, const char *where, int idx) {
    int64_t n = tfu_nelements(r), k; float *a, *b; double worst = 0; int64_t wk = -1; int bad = 0;
    double tol = 1e-4 * tolf;
    if (n != tfu_nelements(p)) { printf("  %s: check %d: %lld vs %lld elements\n", where, idx, (long long)n, (long long)tfu_nelements(p)); return 1; }
    if (!p->data) { printf("  %s: check %d (%s %s): no data\n", where, idx, tfu_op_name(p->op), p->name); return 1; }
    a = tt_copy_out(r); b = tt_copy_out(p);
    if (r->op == TFU_OP_ARGMAX) {
        /* equal, or the plan's pick is (within rounding) as large in the reference input */
        const tfu_tensor *x = r->src[0];
        for (k = 0; k < n && !bad; k++) if (a[k] != b[k]) {
            int64_t i1 = k % r->ne[1], i2 = (k / r->ne[1]) % r->ne[2], i3 = k / (r->ne[1] * r->ne[2]);
            int64_t pi = (int64_t)b[k];
            if (pi < 0 || pi >= x->ne[0] ||
                fabs(tfu_get_f32(x, pi, i1, i2, i3) - tfu_get_f32(x, (int64_t)a[k], i1, i2, i3)) > tol * 10) {
                bad = 1; wk = k; worst = b[k];
            }
        }
        if (bad) printf("  %s: check %d argmax: element %lld is %g, reference %g\n", where, idx, (long long)wk, worst, a[wk]);
    } else {
        for (k = 0; k < n; k++) {
            double v = b[k], ref = a[k], d;
            if (ref != ref) { if (v == v) { worst = INFINITY; wk = k; } continue; }
            if (isinf(ref) && v == ref) continue;
            d = fabs(v - ref) / (fabs(ref) > 1.0 ? fabs(ref) : 1.0);
            if (d != d) d = INFINITY;
            if (d > worst) { worst = d; wk = k; }
        }
        if (worst > tol) {
            bad = 1;
            printf("  %s: check %d (%s '%s', %lldx%lldx%lldx%lld): err %.3g > tol %.3g at %lld: %.8g vs ref %.8g\n",
                   where, idx, tfu_op_name(p->op), p->name, (long long)p->ne[0], (long long)p->ne[1],
                   (long long)p->ne[2], (long long)p->ne[3], worst, tol, (long long)wk, b[wk], a[wk]);
        }
    }
    free(a); free(b);
    return bad;
}

#endif
