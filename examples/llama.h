/* llama.h - build llama-style decoder layers with the tensorfuse API.

   An example helper (C99, static functions only): include it after
   tensorfuse.h. It builds a model of n_layers decoder layers over a batch of
   T tokens, with random weights from a tiny LCG (deterministic per seed):

     x  = x + Wo * attn(rope(Wq * xn), rope(Wk * xn), Wv * xn),  xn = rms_norm(x) * w_attn_norm
     x  = x + Wd * swiglu(Wg * h, Wu * h),                        h  = rms_norm(x) * w_ffn_norm

   attention is grouped-query (n_kv_heads divides n_heads: head h uses kv head
   h / (n_heads / n_kv_heads)) and causal within the T tokens, no KV cache.

     llama_config c = llama_default_config();     c.dim = ...;
     tfu_context *ctx = tfu_init_malloc(llama_context_bytes(&c, 1), 0);
     llama_model m;
     if (llama_build(ctx, &c, &m) != 0) ... tfu_last_error_msg(ctx)
     tfu_graph *g = tfu_graph_new(ctx, llama_graph_nodes(&c));
     tfu_graph_build_expand(g, m.out);

   Shapes follow tensorfuse (ne0 first): activations are dim x T, a weight
   matrix producing M outputs from K inputs is K x M (mul_mat(W, x) is M x T).
*/
#ifndef TFU_EXAMPLE_LLAMA_H
#define TFU_EXAMPLE_LLAMA_H

#include <math.h>
#include <stdio.h>
#include <string.h>

/* static inline: no unused-function warnings for what a program leaves out */
#define LLAMA_FN static inline

#define LLAMA_MAX_LAYERS 64

typedef struct llama_config {
    int           dim;         /* model width                                */
    int           n_heads;     /* query heads                                */
    int           n_kv_heads;  /* key/value heads; divides n_heads           */
    int           head_dim;    /* values per head                            */
    int           ffn;         /* hidden width of the feed-forward block     */
    int           n_layers;    /* 1..LLAMA_MAX_LAYERS                        */
    int           T;           /* tokens in the batch                        */
    tfu_type      wtype;       /* matrix weights: TFU_F32, TFU_F16, TFU_BF16,
                                  TFU_Q8_0 or TFU_Q4_0 (quantized row by row
                                  from the f32 values; dim, heads x head_dim
                                  and ffn multiples of 32)                   */
    tfu_rope_mode rope_mode;   /* TFU_ROPE_NEOX or TFU_ROPE_NORMAL           */
    float         rope_base;   /* 10000                                      */
    float         norm_eps;    /* 1e-5                                       */
    uint32_t      seed;        /* weights                                    */
} llama_config;

typedef struct llama_layer_weights {
    tfu_tensor *attn_norm;             /* dim, F32                 */
    tfu_tensor *wq, *wk, *wv, *wo;     /* dim x q, dim x kv (x2), q x dim */
    tfu_tensor *ffn_norm;              /* dim, F32                 */
    tfu_tensor *wg, *wu, *wd;          /* dim x ffn (x2), ffn x dim */
} llama_layer_weights;

typedef struct llama_model {
    llama_config        cfg;
    llama_layer_weights layer[LLAMA_MAX_LAYERS];
    tfu_tensor         *x;     /* input activations, dim x T, F32 (INPUT)  */
    tfu_tensor         *pos;   /* positions, I32 T (INPUT)                  */
    tfu_tensor         *mask;  /* causal mask T x T, F32                    */
    tfu_tensor         *out;   /* result dim x T (OUTPUT)                   */
} llama_model;

LLAMA_FN llama_config llama_default_config(void) {
    llama_config c;
    memset(&c, 0, sizeof c);
    c.dim = 512; c.n_heads = 8; c.n_kv_heads = 2; c.head_dim = 64;
    c.ffn = 1376; c.n_layers = 4; c.T = 32;
    c.wtype = TFU_F32; c.rope_mode = TFU_ROPE_NEOX;
    c.rope_base = 10000.0f; c.norm_eps = 1e-5f; c.seed = 1234u;
    return c;
}

/* 0 if the configuration can be built */
LLAMA_FN int llama_check_config(const llama_config *c) {
    if (c->dim <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0 ||
        c->ffn <= 0 || c->T <= 0) return -1;
    if (c->n_layers <= 0 || c->n_layers > LLAMA_MAX_LAYERS) return -1;
    if (c->n_heads % c->n_kv_heads != 0) return -1;
    if (c->head_dim % 2 != 0) return -1;
    if (c->wtype == TFU_Q8_0 || c->wtype == TFU_Q4_0) {   /* every matrix row whole blocks */
        int64_t bs = tfu_type_block_size(c->wtype);
        if (c->dim % bs || ((int64_t)c->n_heads * c->head_dim) % bs || c->ffn % bs) return -1;
        return 0;
    }
    if (c->wtype != TFU_F32 && c->wtype != TFU_F16 && c->wtype != TFU_BF16) return -1;
    return 0;
}

/* elements of the weight matrices of one layer */
LLAMA_FN double llama_layer_matrix_params(const llama_config *c) {
    double dim = c->dim, q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim;
    return dim * q + 2.0 * dim * kv + q * dim + 3.0 * dim * c->ffn;
}

/* bytes of all weights (matrices in wtype, norm vectors F32) */
LLAMA_FN double llama_weight_bytes(const llama_config *c) {
    double wsize = (double)tfu_type_size(c->wtype) / (double)tfu_type_block_size(c->wtype);   /* per element */
    return c->n_layers * (llama_layer_matrix_params(c) * wsize +
                          2.0 * c->dim * sizeof(float));
}

/* floating-point operations of all matrix products (2*M*N*K each), the
   attention products included */
LLAMA_FN double llama_matmul_flops(const llama_config *c) {
    double T = c->T, hd = c->head_dim, nh = c->n_heads;
    double per_layer = 2.0 * llama_layer_matrix_params(c) * T   /* projections and FFN */
                     + 2.0 * T * T * hd * nh                     /* K^T Q              */
                     + 2.0 * hd * T * T * nh;                    /* V softmax          */
    return c->n_layers * per_layer;
}

/* graph nodes needed (generous) */
LLAMA_FN int llama_graph_nodes(const llama_config *c) { return 64 * c->n_layers + 64; }

/* bytes of a context for the model: weights, inputs and, with_ref, room for
   the reference executor to give every computed tensor its own memory */
LLAMA_FN size_t llama_context_bytes(const llama_config *c, int with_ref) {
    double T = c->T, dim = c->dim, q = (double)c->n_heads * c->head_dim;
    double kv = (double)c->n_kv_heads * c->head_dim, nh = c->n_heads;
    double n_tensors = 64.0 * c->n_layers + 64.0;
    double data = llama_weight_bytes(c) + 4.0 * (dim * T + T + T * T) + 64.0 * n_tensors;
    if (with_ref) {
        /* every computed value of a layer, in floats, with room to spare */
        double per_layer = T * (8.0 * dim + 5.0 * q + 5.0 * kv + 3.0 * c->ffn) + 2.0 * nh * T * T;
        data += 1.25 * 4.0 * c->n_layers * per_layer + 64.0 * n_tensors;
    }
    data += 1u << 20;
    return tfu_context_size((size_t)n_tensors, (size_t)data);
}

/* --- random numbers: a 32-bit LCG (Numerical Recipes constants) --------- */
LLAMA_FN uint32_t llama_lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s;
}
/* uniform in [-1, 1) */
LLAMA_FN float llama_unif(uint32_t *s) {
    return (float)(llama_lcg(s) >> 8) * (2.0f / 16777216.0f) - 1.0f;
}

/* fill a leaf with offset + scale * uniform[-1, 1) */
/* any tensor's values as contiguous f32 (ne0 fastest), for checks */
LLAMA_FN void llama_copy_out(const tfu_tensor *t, float *dst) {
    int64_t i0, i1, i2, i3, n = 0;
    if (t->type == TFU_F32 && tfu_is_contiguous(t)) {
        memcpy(dst, t->data, (size_t)tfu_nelements(t) * sizeof(float));
        return;
    }
    for (i3 = 0; i3 < t->ne[3]; i3++) for (i2 = 0; i2 < t->ne[2]; i2++)
    for (i1 = 0; i1 < t->ne[1]; i1++) for (i0 = 0; i0 < t->ne[0]; i0++)
        dst[n++] = tfu_get_f32(t, i0, i1, i2, i3);
}

LLAMA_FN void llama_fill(tfu_tensor *t, uint32_t *s, float offset, float scale) {
    int64_t i, n = tfu_nelements(t);
    if (t->type == TFU_Q8_0 || t->type == TFU_Q4_0) {   /* contiguous leaves of whole blocks: row by row */
        float row[4096];
        int64_t r, j0, k = t->ne[0];
        for (r = 0; r < n / k; r++)
            for (j0 = 0; j0 < k; j0 += 4096) {
                int64_t m = k - j0 < 4096 ? k - j0 : 4096;   /* 4096: whole blocks */
                char *dst = (char *)t->data + (size_t)r * t->nb[1] + (size_t)(j0 / 32) * tfu_type_size(t->type);
                for (i = 0; i < m; i++) row[i] = offset + scale * llama_unif(s);
                if (t->type == TFU_Q8_0) tfu_quantize_q8_0(row, dst, m);
                else tfu_quantize_q4_0(row, dst, m);
            }
    } else if (tfu_is_contiguous(t) && t->type == TFU_F32) {
        float *d = (float *)t->data;
        for (i = 0; i < n; i++) d[i] = offset + scale * llama_unif(s);
    } else if (tfu_is_contiguous(t) && t->type == TFU_F16) {
        uint16_t *d = (uint16_t *)t->data;
        for (i = 0; i < n; i++) d[i] = tfu_f32_to_f16(offset + scale * llama_unif(s));
    } else if (tfu_is_contiguous(t) && t->type == TFU_BF16) {
        uint16_t *d = (uint16_t *)t->data;
        for (i = 0; i < n; i++) d[i] = tfu_f32_to_bf16(offset + scale * llama_unif(s));
    } else {
        int64_t i0, i1, i2, i3;
        for (i3 = 0; i3 < t->ne[3]; i3++) for (i2 = 0; i2 < t->ne[2]; i2++)
        for (i1 = 0; i1 < t->ne[1]; i1++) for (i0 = 0; i0 < t->ne[0]; i0++)
            tfu_set_f32(t, i0, i1, i2, i3, offset + scale * llama_unif(s));
    }
}

/* a named leaf weight K x M, uniform with variance 1/K */
LLAMA_FN tfu_tensor *llama_matrix(tfu_context *ctx, tfu_type type, int64_t K, int64_t M,
                                  const char *name, int il, uint32_t *s) {
    char buf[TFU_MAX_NAME];
    tfu_tensor *t = tfu_new_tensor_2d(ctx, type, K, M);
    if (!t) return NULL;
    snprintf(buf, sizeof buf, "blk%d.%s", il, name);
    tfu_set_name(tfu_set_flags(t, TFU_FLAG_PARAM), buf);
    llama_fill(t, s, 0.0f, (float)sqrt(3.0 / (double)K));
    return t;
}

LLAMA_FN tfu_tensor *llama_norm_weight(tfu_context *ctx, int64_t n, const char *name, int il, uint32_t *s) {
    char buf[TFU_MAX_NAME];
    tfu_tensor *t = tfu_new_tensor_1d(ctx, TFU_F32, n);
    if (!t) return NULL;
    snprintf(buf, sizeof buf, "blk%d.%s", il, name);
    tfu_set_name(tfu_set_flags(t, TFU_FLAG_PARAM), buf);
    llama_fill(t, s, 1.0f, 0.1f);
    return t;
}

/* fill the inputs: x random (seed), positions pos0 .. pos0 + T - 1 */
LLAMA_FN void llama_fill_input(llama_model *m, uint32_t seed, int32_t pos0) {
    uint32_t s = seed ? seed : 1u;
    int64_t i;
    llama_fill(m->x, &s, 0.0f, 1.0f);
    for (i = 0; i < m->pos->ne[0]; i++) ((int32_t *)m->pos->data)[i] = pos0 + (int32_t)i;
}

#define LLAMA_TRY(v, expr) do { if (((v) = (expr)) == NULL) return NULL; } while (0)

/* one decoder layer on x (dim x T); returns the new residual stream */
LLAMA_FN tfu_tensor *llama_layer(tfu_context *ctx, const llama_model *m, int il, tfu_tensor *x) {
    const llama_config *c = &m->cfg;
    const llama_layer_weights *w = &m->layer[il];
    const int64_t T = c->T, hd = c->head_dim, nh = c->n_heads, nkv = c->n_kv_heads;
    tfu_tensor *t, *xn, *q, *k, *v, *kq, *kqv, *g, *u;
    char buf[TFU_MAX_NAME];

    /* attention block */
    LLAMA_TRY(t, tfu_rms_norm(ctx, x, c->norm_eps));
    LLAMA_TRY(xn, tfu_mul(ctx, t, w->attn_norm));
    snprintf(buf, sizeof buf, "blk%d.attn_in", il); tfu_set_name(xn, buf);

    LLAMA_TRY(q, tfu_mul_mat(ctx, w->wq, xn));                   /* (nh*hd) x T  */
    LLAMA_TRY(k, tfu_mul_mat(ctx, w->wk, xn));                   /* (nkv*hd) x T */
    LLAMA_TRY(v, tfu_mul_mat(ctx, w->wv, xn));                   /* (nkv*hd) x T */

    LLAMA_TRY(q, tfu_reshape_3d(ctx, q, hd, nh, T));
    LLAMA_TRY(q, tfu_rope(ctx, q, m->pos, (int)hd, c->rope_mode, c->rope_base));
    LLAMA_TRY(k, tfu_reshape_3d(ctx, k, hd, nkv, T));
    LLAMA_TRY(k, tfu_rope(ctx, k, m->pos, (int)hd, c->rope_mode, c->rope_base));

    LLAMA_TRY(q, tfu_permute(ctx, q, 0, 2, 1, 3));               /* hd x T x nh  */
    LLAMA_TRY(q, tfu_cont(ctx, q));
    LLAMA_TRY(k, tfu_permute(ctx, k, 0, 2, 1, 3));               /* hd x T x nkv */
    LLAMA_TRY(k, tfu_cont(ctx, k));

    LLAMA_TRY(kq, tfu_mul_mat(ctx, k, q));                       /* T(kv) x T(q) x nh */
    LLAMA_TRY(kq, tfu_soft_max_ext(ctx, kq, m->mask, 1.0f / sqrtf((float)hd)));
    snprintf(buf, sizeof buf, "blk%d.attn_probs", il); tfu_set_name(kq, buf);

    LLAMA_TRY(v, tfu_reshape_3d(ctx, v, hd, nkv, T));
    LLAMA_TRY(v, tfu_permute(ctx, v, 1, 2, 0, 3));               /* T x hd x nkv */
    LLAMA_TRY(v, tfu_cont(ctx, v));

    LLAMA_TRY(kqv, tfu_mul_mat(ctx, v, kq));                     /* hd x T x nh  */
    LLAMA_TRY(t, tfu_permute(ctx, kqv, 0, 2, 1, 3));             /* hd x nh x T  */
    LLAMA_TRY(t, tfu_cont(ctx, t));
    LLAMA_TRY(t, tfu_reshape_2d(ctx, t, hd * nh, T));
    LLAMA_TRY(t, tfu_mul_mat(ctx, w->wo, t));                    /* dim x T      */
    LLAMA_TRY(x, tfu_add(ctx, t, x));
    snprintf(buf, sizeof buf, "blk%d.attn_out", il); tfu_set_name(x, buf);

    /* feed-forward block */
    LLAMA_TRY(t, tfu_rms_norm(ctx, x, c->norm_eps));
    LLAMA_TRY(t, tfu_mul(ctx, t, w->ffn_norm));
    LLAMA_TRY(g, tfu_mul_mat(ctx, w->wg, t));                    /* ffn x T      */
    LLAMA_TRY(u, tfu_mul_mat(ctx, w->wu, t));                    /* ffn x T      */
    LLAMA_TRY(t, tfu_swiglu_split(ctx, g, u));
    LLAMA_TRY(t, tfu_mul_mat(ctx, w->wd, t));                    /* dim x T      */
    LLAMA_TRY(x, tfu_add(ctx, t, x));
    snprintf(buf, sizeof buf, "blk%d.out", il); tfu_set_name(x, buf);
    return x;
}

/* create weights (random from cfg->seed), inputs (x random from seed + 1,
   positions 0..T-1), the causal mask, and build all layers; m->out is
   marked OUTPUT. Returns 0, or -1 with the error in the context. */
LLAMA_FN int llama_build(tfu_context *ctx, const llama_config *cfg, llama_model *m) {
    const llama_config *c = cfg;
    int64_t q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    uint32_t s = c->seed ? c->seed : 1u;
    tfu_tensor *x;
    int il;

    memset(m, 0, sizeof *m);
    if (llama_check_config(c) != 0) return -1;
    m->cfg = *c;
    for (il = 0; il < c->n_layers; il++) {
        llama_layer_weights *w = &m->layer[il];
        if (!(w->attn_norm = llama_norm_weight(ctx, c->dim, "attn_norm", il, &s))) return -1;
        if (!(w->wq = llama_matrix(ctx, c->wtype, c->dim, q, "wq", il, &s))) return -1;
        if (!(w->wk = llama_matrix(ctx, c->wtype, c->dim, kv, "wk", il, &s))) return -1;
        if (!(w->wv = llama_matrix(ctx, c->wtype, c->dim, kv, "wv", il, &s))) return -1;
        if (!(w->wo = llama_matrix(ctx, c->wtype, q, c->dim, "wo", il, &s))) return -1;
        if (!(w->ffn_norm = llama_norm_weight(ctx, c->dim, "ffn_norm", il, &s))) return -1;
        if (!(w->wg = llama_matrix(ctx, c->wtype, c->dim, c->ffn, "wg", il, &s))) return -1;
        if (!(w->wu = llama_matrix(ctx, c->wtype, c->dim, c->ffn, "wu", il, &s))) return -1;
        if (!(w->wd = llama_matrix(ctx, c->wtype, c->ffn, c->dim, "wd", il, &s))) return -1;
    }
    if (!(m->x = tfu_new_tensor_2d(ctx, TFU_F32, c->dim, c->T))) return -1;
    tfu_set_name(tfu_set_input(m->x), "x");
    if (!(m->pos = tfu_new_tensor_1d(ctx, TFU_I32, c->T))) return -1;
    tfu_set_name(tfu_set_input(m->pos), "pos");
    if (!(m->mask = tfu_causal_mask(ctx, c->T, c->T))) return -1;
    tfu_set_name(m->mask, "causal_mask");
    llama_fill_input(m, c->seed + 1u, 0);

    x = m->x;
    for (il = 0; il < c->n_layers; il++)
        if (!(x = llama_layer(ctx, m, il, x))) return -1;
    m->out = tfu_set_output(x);
    tfu_set_name(x, "out");
    return 0;
}

/* a graph of the model (NULL with the error in the context) */
LLAMA_FN tfu_graph *llama_graph(tfu_context *ctx, const llama_model *m) {
    tfu_graph *g = tfu_graph_new(ctx, llama_graph_nodes(&m->cfg));
    if (!g) return NULL;
    if (tfu_graph_build_expand(g, m->out) != TFU_OK) return NULL;
    return g;
}

#endif /* TFU_EXAMPLE_LLAMA_H */
