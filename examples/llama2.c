/* llama2.c - run a llama2.c checkpoint (Karpathy's llama2.c, run.c) with
   tensorfuse: load the model and its tokenizer, build the decoder once per
   shape it needs, generate with temperature and top-p sampling.

   Build (from the repository root; `make` builds it as build/llama2):
       cc -O2 -march=native -I. examples/llama2.c -o llama2 -lm -lpthread
   (add -DLLAMA2_VULKAN -ldl for --backend vulkan: needs libvulkan-dev)

   Usage:
       llama2 CHECKPOINT --tokenizer FILE [--prompt TEXT] [--steps N]
              [--temperature T] [--topp P] [--seed S] [--backend cpu|vulkan]
              [--threads N] [--f16 | --q8_0 | --q4_0 [--int8]] [--dot FILE] [--logits FILE] [--stats]

     --steps N        positions to process, prompt included (default 256,
                      at most the model's seq_len); as run.c, generation stops
                      early at a BOS token
     --temperature T  0: greedy (argmax); default 1.0
     --topp P         nucleus sampling (default 0.9; 0 or 1: plain sampling)
     --seed S         sampler seed (default: the time)
     --threads N      one pool of N threads shared by every plan
     --f16            weight matrices converted to f16 at load
     --q8_0, --q4_0   weight matrices quantized at load (blocks of 32 with an f16
                      scale; dim and hidden_dim multiples of 32; CPU only),
                      multiplied exactly with f32 activations
     --int8           with --q8_0/--q4_0: activations rounded to int8 per block
                      of 32 and integer dot products (faster, not exact:
                      tfu_plan_options.quant_activations)
     --dot FILE       Graphviz DOT of the one-token plan
     --logits FILE    the logits of every position processed, in order, as
                      raw little-endian f32, vocab_size values per position
     --stats          "plans: N compiled, M cache hits, S stages per token"

   With no prompt and temperature 0 it starts from BOS (token 1) and decodes
   greedily, as run.c does. Tokens/s of the prompt and of the generation go
   to stderr.

   How it maps onto tensorfuse:
     - the weights are external leaves (tfu_new_tensor_ext) over the file's
       bytes in a persistent context; the KV caches are leaves there too;
     - each step's graph lives in a context of its own and uses the weights
       (graphs over several contexts);
     - the position a token's K and V are written to is data: tfu_set_rows
       at the rows an I32 input holds; the causal mask is an input filled by
       tfu_fill_causal_mask, so the number of valid keys is data as well;
       attention reads the first L rows of the cache, L the position rounded
       up to a bucket of 64, so its cost follows the position;
     - a graph and its plan are built once per (tokens per step, bucket) and
       run for every step of that shape: a 256-token generation compiles a
       plan for the prompt and one per bucket;
     - every plan borrows one thread pool (tfu_threadpool).

   Shapes follow tensorfuse (ne0 first): activations are dim x T; a weight
   "out x in" in the file is a tensor of ne0 = in, ne1 = out. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 199309L
#endif
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
/* LLAMA2_VULKAN (make defines it where the Vulkan headers are): --backend
   vulkan runs every step's plan with tensorfuse_vk.h */
#ifdef LLAMA2_VULKAN
#define TFVK_IMPLEMENTATION
#include "tensorfuse_vk.h"
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define L2_BUCKET 64        /* attention lengths are multiples of this        */
#define L2_MAX_SLOTS 64     /* graphs (shapes) kept                            */
#define L2_BOS 1

/* knobs and a record for tests/test_llama2.c (which includes this file) */
static int   llama2_max_batch = 512;   /* prompt tokens per step; 1: token by token */
static FILE *llama2_out;               /* generated text; NULL: stdout               */
typedef struct llama2_record {
    int *tokens;                       /* the input token of every position processed */
    int  n_tokens, n_prompt;
    int  plans_compiled, cache_hits, stages_per_token;
} llama2_record;
static llama2_record llama2_last;

/* --- the checkpoint ------------------------------------------------------ */

typedef struct l2_config {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    int shared, head_size, kv_dim;
} l2_config;

typedef struct l2_layer {
    tfu_tensor *att_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w1, *w2, *w3;
    tfu_tensor *kcache;    /* kv_dim x seq_len: row p holds position p's keys      */
    tfu_tensor *vcache;    /* seq_len x kv_dim: column p holds position p's values */
} l2_layer;

typedef struct l2_model {
    l2_config    cfg;
    tfu_context *ctx;      /* weights and caches: descriptions only (no_alloc)     */
    unsigned char *file;   /* the checkpoint's bytes                               */
    size_t       file_size;
    tfu_type     wtype;    /* the matrices' type: f32 (the file's), f16, q8_0, q4_0 */
    unsigned char *conv;   /* --f16/--q8_0/--q4_0: the converted matrices           */
    float       *cache;    /* the KV caches                                        */
    tfu_tensor  *emb, *final_norm, *wcls;
    l2_layer    *layer;
} l2_model;

static double l2_now(void) {
#if defined(_WIN32)
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart / (double)f.QuadPart;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
}

/* the whole file, or NULL with a message */
static unsigned char *l2_read_file(const char *path, size_t *size, const char *what) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;
    if (!f) {
        fprintf(stderr, "llama2: cannot open %s '%s'\n", what, path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "llama2: cannot read the size of %s '%s'\n", what, path);
        fclose(f);
        return NULL;
    }
    buf = (unsigned char *)malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "llama2: cannot read %s '%s' (%ld bytes)\n", what, path, n);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

/* the header: checked one field at a time, so the message names the field */
static int l2_parse_header(const unsigned char *file, size_t size, const char *path, l2_config *c) {
    int32_t h[7];
    static const char *const names[7] = { "dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len" };
    static const int32_t limits[7] = { 1 << 16, 1 << 20, 1 << 10, 1 << 12, 1 << 12, 1 << 22, 1 << 20 };
    int i;
    if (size < sizeof h) {
        fprintf(stderr, "llama2: %s: %zu bytes, shorter than the 28-byte header: not a llama2.c checkpoint\n", path, size);
        return 0;
    }
    memcpy(h, file, sizeof h);
    for (i = 0; i < 7; i++) {
        int32_t v = i == 5 && h[i] < 0 && h[i] != INT32_MIN ? -h[i] : h[i];
        if (v <= 0 || v > limits[i]) {
            fprintf(stderr, "llama2: %s: header field %s is %d (want 1..%d): not a llama2.c checkpoint\n", path, names[i],
                    (int)h[i], (int)limits[i]);
            return 0;
        }
    }
    c->dim = h[0];
    c->hidden_dim = h[1];
    c->n_layers = h[2];
    c->n_heads = h[3];
    c->n_kv_heads = h[4];
    c->shared = h[5] > 0;
    c->vocab_size = h[5] > 0 ? h[5] : -h[5];
    c->seq_len = h[6];
    if (c->dim % c->n_heads || c->n_heads % c->n_kv_heads || (c->dim / c->n_heads) % 2) {
        fprintf(stderr, "llama2: %s: dim %d, n_heads %d, n_kv_heads %d: n_heads must divide dim into heads of an even size and n_kv_heads divide n_heads\n",
                path, c->dim, c->n_heads, c->n_kv_heads);
        return 0;
    }
    c->head_size = c->dim / c->n_heads;
    c->kv_dim = c->head_size * c->n_kv_heads;
    return 1;
}

/* f32 values the header says the file holds (run.c's order) */
static uint64_t l2_n_floats(const l2_config *c) {
    uint64_t D = (uint64_t)c->dim, H = (uint64_t)c->hidden_dim, L = (uint64_t)c->n_layers, V = (uint64_t)c->vocab_size;
    uint64_t KV = (uint64_t)c->kv_dim;
    uint64_t n = V * D + L * D * 2 + L * D * D * 2 + L * KV * D * 2 + L * H * D * 3 + D;
    n += (uint64_t)c->seq_len * (uint64_t)c->head_size;   /* two unused RoPE tables */
    if (!c->shared) n += V * D;
    return n;
}

static tfu_tensor *l2_leaf(l2_model *m, tfu_type type, int64_t ne0, int64_t ne1, void *data, const char *name) {
    int64_t ne[2];
    ne[0] = ne0;
    ne[1] = ne1;
    tfu_tensor *t = tfu_set_name(tfu_new_tensor_ext(m->ctx, type, ne1 > 1 ? 2 : 1, ne, data), name);
    /* weights never change: PARAM (the Vulkan backend uploads them once) */
    if (t && strcmp(name, "kcache") && strcmp(name, "vcache")) tfu_set_flags(t, TFU_FLAG_PARAM);
    return t;
}

/* a matrix of the file: f32 over the file's bytes, or converted to the
   model's type (f16, or Q8_0/Q4_0 blocks along its rows) */
static tfu_tensor *l2_matrix(l2_model *m, const float *src, int64_t in, int64_t out, size_t *conv_used, const char *name) {
    int64_t i, n = in * out;
    unsigned char *d = m->conv + *conv_used;
    if (m->wtype == TFU_F32) return l2_leaf(m, TFU_F32, in, out, (void *)src, name);
    if (m->wtype == TFU_F16) {
        uint16_t h;
        for (i = 0; i < n; i++) {
            h = tfu_f32_to_f16(src[i]);
            memcpy(d + 2 * i, &h, 2);
        }
        *conv_used += (size_t)n * 2;
    } else if (m->wtype == TFU_Q8_0) {
        *conv_used += tfu_quantize_q8_0(src, d, n);
    } else {
        *conv_used += tfu_quantize_q4_0(src, d, n);
    }
    return l2_leaf(m, m->wtype, in, out, d, name);
}

static void l2_model_free(l2_model *m) {
    tfu_free(m->ctx);
    free(m->file);
    free(m->conv);
    free(m->cache);
    free(m->layer);
    memset(m, 0, sizeof *m);
}

static int l2_model_load(l2_model *m, const char *path, tfu_type wtype) {
    l2_config *c = &m->cfg;
    uint64_t need, i, n_half;
    const float *w;
    size_t conv_used = 0, cache_floats;
    int64_t D, H, KV, L, l;
    memset(m, 0, sizeof *m);
    m->file = l2_read_file(path, &m->file_size, "checkpoint");
    if (!m->file) return 0;
    if (!l2_parse_header(m->file, m->file_size, path, c)) return 0;
    need = 28 + 4 * l2_n_floats(c);
    if (m->file_size != need) {
        fprintf(stderr, "llama2: %s: %s: %zu bytes, the header (dim %d, hidden_dim %d, n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d, %s classifier) needs %llu\n",
                path, m->file_size < need ? "truncated" : "longer than its header says (another format?)", m->file_size,
                c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len,
                c->shared ? "shared" : "unshared", (unsigned long long)need);
        return 0;
    }
    w = (const float *)(const void *)(m->file + 28);
    for (i = 0; i < (need - 28) / 4; i++) {
        float v;
        memcpy(&v, m->file + 28 + 4 * i, 4);
        if (!(v - v == 0.0f)) {
            fprintf(stderr, "llama2: %s: weight %llu is %s: a corrupt checkpoint\n", path, (unsigned long long)i, v != v ? "NaN" : "infinite");
            return 0;
        }
    }
    D = c->dim;
    H = c->hidden_dim;
    KV = c->kv_dim;
    L = c->n_layers;
    n_half = (uint64_t)L * (uint64_t)(2 * D * D + 2 * KV * D + 3 * H * D) + (uint64_t)c->vocab_size * (uint64_t)D;
    m->wtype = wtype;
    if (tfu_type_block_size(wtype) > 1 && (D % 32 || H % 32)) {
        fprintf(stderr, "llama2: %s: --%s needs dim and hidden_dim multiples of 32 (blocks of 32 along the rows), not %d and %d\n", path,
                tfu_type_name(wtype), c->dim, c->hidden_dim);
        return 0;
    }
    if (wtype != TFU_F32) {
        /* n_half values: bytes per block over values per block */
        m->conv = (unsigned char *)malloc((size_t)(n_half / (uint64_t)tfu_type_block_size(wtype) * tfu_type_size(wtype)));
        if (!m->conv) {
            fprintf(stderr, "llama2: out of memory converting the weights to %s\n", tfu_type_name(wtype));
            return 0;
        }
    }
    cache_floats = (size_t)L * (size_t)c->seq_len * (size_t)KV * 2;
    m->cache = (float *)calloc(cache_floats, sizeof(float));   /* zeros: masked keys and values stay finite */
    m->layer = (l2_layer *)calloc((size_t)L, sizeof(l2_layer));
    m->ctx = tfu_init_malloc(tfu_context_size((size_t)(16 * L + 16), 0), 1);
    if (!m->cache || !m->layer || !m->ctx) {
        fprintf(stderr, "llama2: out of memory for the model\n");
        return 0;
    }
    {
        const float *emb = w, *rms_att = emb + (size_t)c->vocab_size * D, *wq = rms_att + L * D, *wk = wq + L * D * D;
        const float *wv = wk + L * KV * D, *wo = wv + L * KV * D, *rms_ffn = wo + L * D * D, *w1 = rms_ffn + L * D;
        const float *w2 = w1 + L * H * D, *w3 = w2 + L * D * H, *rms_final = w3 + L * H * D;
        const float *wcls = c->shared ? emb : rms_final + D + (size_t)c->seq_len * c->head_size;
        m->emb = l2_leaf(m, TFU_F32, D, c->vocab_size, (void *)emb, "token_embedding");
        for (l = 0; l < L; l++) {
            l2_layer *Y = &m->layer[l];
            Y->att_norm = l2_leaf(m, TFU_F32, D, 1, (void *)(rms_att + l * D), "rms_att");
            Y->wq = l2_matrix(m, wq + l * D * D, D, D, &conv_used, "wq");
            Y->wk = l2_matrix(m, wk + l * KV * D, D, KV, &conv_used, "wk");
            Y->wv = l2_matrix(m, wv + l * KV * D, D, KV, &conv_used, "wv");
            Y->wo = l2_matrix(m, wo + l * D * D, D, D, &conv_used, "wo");
            Y->ffn_norm = l2_leaf(m, TFU_F32, D, 1, (void *)(rms_ffn + l * D), "rms_ffn");
            Y->w1 = l2_matrix(m, w1 + l * H * D, D, H, &conv_used, "w1");
            Y->w2 = l2_matrix(m, w2 + l * D * H, H, D, &conv_used, "w2");
            Y->w3 = l2_matrix(m, w3 + l * H * D, D, H, &conv_used, "w3");
            Y->kcache = l2_leaf(m, TFU_F32, KV, c->seq_len, m->cache + (size_t)(2 * l) * (size_t)c->seq_len * (size_t)KV, "kcache");
            Y->vcache = l2_leaf(m, TFU_F32, c->seq_len, KV, m->cache + (size_t)(2 * l + 1) * (size_t)c->seq_len * (size_t)KV, "vcache");
        }
        m->final_norm = l2_leaf(m, TFU_F32, D, 1, (void *)rms_final, "rms_final");
        m->wcls = l2_matrix(m, wcls, D, c->vocab_size, &conv_used, "wcls");
    }
    if (tfu_last_error(m->ctx) != TFU_OK) {
        fprintf(stderr, "llama2: building the model: %s\n", tfu_last_error_msg(m->ctx));
        return 0;
    }
    return 1;
}

/* --- the tokenizer (run.c's) ---------------------------------------------- */

typedef struct l2_tokenizer {
    char        **vocab;
    float        *scores;
    int          *sorted;     /* token ids by piece, for lookups */
    int           vocab_size, max_token_length;
    unsigned char *file;
    char          bytes[256][2];
} l2_tokenizer;

static const l2_tokenizer *l2_sort_tok;
static int l2_cmp_piece(const void *a, const void *b) {
    return strcmp(l2_sort_tok->vocab[*(const int *)a], l2_sort_tok->vocab[*(const int *)b]);
}

static void l2_tokenizer_free(l2_tokenizer *t) {
    free(t->vocab);
    free(t->scores);
    free(t->sorted);
    free(t->file);
    memset(t, 0, sizeof *t);
}

/* pieces point into one buffer holding the file with a NUL after each piece */
static int l2_tokenizer_load(l2_tokenizer *t, const char *path, int vocab_size) {
    size_t size, at = 4, out = 0;
    unsigned char *raw;
    int i;
    int32_t max_len;
    memset(t, 0, sizeof *t);
    raw = l2_read_file(path, &size, "tokenizer");
    if (!raw) return 0;
    if (size < 4) {
        fprintf(stderr, "llama2: %s: %zu bytes: not a llama2.c tokenizer\n", path, size);
        free(raw);
        return 0;
    }
    memcpy(&max_len, raw, 4);
    t->vocab_size = vocab_size;
    t->max_token_length = max_len;
    t->vocab = (char **)malloc(sizeof(char *) * (size_t)vocab_size);
    t->scores = (float *)malloc(sizeof(float) * (size_t)vocab_size);
    t->sorted = (int *)malloc(sizeof(int) * (size_t)vocab_size);
    t->file = (unsigned char *)malloc(size + (size_t)vocab_size + 1);
    if (!t->vocab || !t->scores || !t->sorted || !t->file) {
        fprintf(stderr, "llama2: out of memory for the tokenizer\n");
        free(raw);
        return 0;
    }
    if (max_len <= 0 || max_len > 4096) {
        fprintf(stderr, "llama2: %s: max_token_length %d: not a llama2.c tokenizer\n", path, (int)max_len);
        free(raw);
        return 0;
    }
    for (i = 0; i < vocab_size; i++) {
        int32_t len;
        if (size - at < 8) {
            fprintf(stderr, "llama2: %s: truncated at token %d of %d (the checkpoint's vocab_size)\n", path, i, vocab_size);
            free(raw);
            return 0;
        }
        memcpy(&t->scores[i], raw + at, 4);
        memcpy(&len, raw + at + 4, 4);
        at += 8;
        if (len <= 0 || len > max_len) {
            fprintf(stderr, "llama2: %s: token %d has length %d (max_token_length %d): a corrupt tokenizer\n", path, i, (int)len, (int)max_len);
            free(raw);
            return 0;
        }
        if (size - at < (size_t)len) {
            fprintf(stderr, "llama2: %s: truncated inside token %d of %d\n", path, i, vocab_size);
            free(raw);
            return 0;
        }
        t->vocab[i] = (char *)t->file + out;
        memcpy(t->file + out, raw + at, (size_t)len);
        out += (size_t)len;
        t->file[out++] = 0;
        at += (size_t)len;
    }
    if (at != size) {
        fprintf(stderr, "llama2: %s: %zu bytes after the checkpoint's %d tokens: a tokenizer of another model?\n", path, size - at, vocab_size);
        free(raw);
        return 0;
    }
    free(raw);
    for (i = 0; i < 256; i++) {
        t->bytes[i][0] = (char)i;
        t->bytes[i][1] = 0;
    }
    for (i = 0; i < vocab_size; i++) t->sorted[i] = i;
    l2_sort_tok = t;
    qsort(t->sorted, (size_t)vocab_size, sizeof(int), l2_cmp_piece);
    return 1;
}

static int l2_lookup(const l2_tokenizer *t, const char *s) {
    int lo = 0, hi = t->vocab_size - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(s, t->vocab[t->sorted[mid]]);
        if (c == 0) return t->sorted[mid];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return -1;
}

/* run.c's encode: BOS, a dummy space prefix, code points (bytes as
   <0xXX> tokens when missing), then merges by the best score; returns the
   count or -1 */
static int l2_encode(const l2_tokenizer *t, const char *text, int *tokens) {
    char *buf = (char *)malloc((size_t)t->max_token_length * 2 + 3);
    size_t len = 0;
    const char *c;
    int n = 0;
    if (!buf) return -1;
    tokens[n++] = L2_BOS;
    if (text[0]) {
        int sp = l2_lookup(t, " ");
        if (sp >= 0) tokens[n++] = sp;
    }
    for (c = text; *c; c++) {
        if ((*c & 0xC0) != 0x80) len = 0;   /* a new code point */
        buf[len++] = *c;
        buf[len] = 0;
        if ((*(c + 1) & 0xC0) == 0x80 && len < 4) continue;
        {
            int id = l2_lookup(t, buf);
            size_t i;
            if (id >= 0) tokens[n++] = id;
            else
                for (i = 0; i < len; i++) {
                    if (t->vocab_size < 259) {
                        fprintf(stderr, "llama2: the prompt has a character the tokenizer cannot encode\n");
                        free(buf);
                        return -1;
                    }
                    tokens[n++] = (unsigned char)buf[i] + 3;
                }
        }
        len = 0;
    }
    for (;;) {
        float best = -1e10f;
        int best_id = -1, best_i = -1, i;
        for (i = 0; i < n - 1; i++) {
            int id;
            if (strlen(t->vocab[tokens[i]]) + strlen(t->vocab[tokens[i + 1]]) > (size_t)t->max_token_length * 2) continue;
            sprintf(buf, "%s%s", t->vocab[tokens[i]], t->vocab[tokens[i + 1]]);
            id = l2_lookup(t, buf);
            if (id >= 0 && t->scores[id] > best) {
                best = t->scores[id];
                best_id = id;
                best_i = i;
            }
        }
        if (best_i < 0) break;
        tokens[best_i] = best_id;
        for (i = best_i + 1; i < n - 1; i++) tokens[i] = tokens[i + 1];
        n--;
    }
    free(buf);
    return n;
}

/* run.c's decode: no leading space after BOS, <0xXX> as the byte */
static const char *l2_decode(const l2_tokenizer *t, int prev, int token) {
    const char *piece = t->vocab[token];
    unsigned int byte;
    if (prev == L2_BOS && piece[0] == ' ') piece++;
    if (strlen(piece) == 6 && sscanf(piece, "<0x%02X>", &byte) == 1) piece = t->bytes[byte & 255];
    return piece;
}

static void l2_print_piece(FILE *out, const char *piece) {
    if (!piece || !piece[0]) return;
    if (!piece[1]) {
        unsigned char b = (unsigned char)piece[0];
        if (!(b >= 32 && b < 127) && b != '\n' && b != '\t' && b != '\r' && b != ' ') return;   /* raw control bytes */
    }
    fputs(piece, out);
}

/* --- the sampler (run.c's) ------------------------------------------------ */

typedef struct l2_prob { float p; int i; } l2_prob;

static unsigned int l2_random_u32(unsigned long long *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (unsigned int)((*s * 0x2545F4914F6CDD1Dull) >> 32);
}
static float l2_random_f32(unsigned long long *s) { return (float)(l2_random_u32(s) >> 8) / 16777216.0f; }

static int l2_cmp_prob(const void *a, const void *b) {
    const l2_prob *x = (const l2_prob *)a, *y = (const l2_prob *)b;
    return x->p > y->p ? -1 : x->p < y->p ? 1 : 0;
}

static int l2_argmax(const float *v, int n) {
    int i, best = 0;
    for (i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static int l2_sample(float *logits, int n, float temperature, float topp, unsigned long long *rng, l2_prob *work) {
    float mx, sum = 0, coin, cdf = 0;
    int i;
    if (temperature == 0.0f) return l2_argmax(logits, n);
    for (i = 0; i < n; i++) logits[i] /= temperature;
    mx = logits[l2_argmax(logits, n)];
    for (i = 0; i < n; i++) {
        logits[i] = expf(logits[i] - mx);
        sum += logits[i];
    }
    for (i = 0; i < n; i++) logits[i] /= sum;
    coin = l2_random_f32(rng);
    if (topp <= 0 || topp >= 1) {
        for (i = 0; i < n; i++) {
            cdf += logits[i];
            if (coin < cdf) return i;
        }
        return n - 1;
    }
    {
        float cutoff = (1.0f - topp) / (float)(n - 1), cum = 0, r;
        int n0 = 0, last;
        for (i = 0; i < n; i++)
            if (logits[i] >= cutoff) {
                work[n0].i = i;
                work[n0].p = logits[i];
                n0++;
            }
        qsort(work, (size_t)n0, sizeof(l2_prob), l2_cmp_prob);
        last = n0 - 1;
        for (i = 0; i < n0; i++) {
            cum += work[i].p;
            if (cum > topp) {
                last = i;
                break;
            }
        }
        r = coin * cum;
        for (i = 0; i <= last; i++) {
            cdf += work[i].p;
            if (r < cdf) return work[i].i;
        }
        return work[last].i;
    }
}

/* --- the decoder: one graph and plan per shape ----------------------------- */

typedef struct l2_slot {
    int          T, L, all_logits;   /* tokens per step, attention length, logits of every token */
    tfu_context *ctx;
    tfu_graph   *g;
    tfu_plan    *plan;               /* the CPU's; on Vulkan the shared plan of vplan */
#ifdef LLAMA2_VULKAN
    tfvk_plan   *vplan;
#endif
    tfu_tensor  *logits, *mask_t;
    int32_t     *tokens, *pos;       /* inputs: T each                                  */
    float       *mask;               /* input: L x T                                    */
} l2_slot;

typedef struct l2_decoder {
    l2_model        *m;
    tfu_plan_options opt;
#ifdef LLAMA2_VULKAN
    tfvk_context    *vk;             /* --backend vulkan                   */
#endif
    l2_slot          slot[L2_MAX_SLOTS];
    int              n_slots, hits;
} l2_decoder;

/* one step's graph over T tokens at positions pos[], attending over the
   first L rows of the caches; returns the logits (of every token, or of
   the last) */
static tfu_tensor *l2_graph(const l2_model *m, tfu_context *c, int T, int L, int all_logits, tfu_tensor *tok,
                            tfu_tensor *pos, tfu_tensor *mask) {
    const l2_config *p = &m->cfg;
    int64_t hs = p->head_size, nh = p->n_heads, nkv = p->n_kv_heads, D = p->dim, KV = p->kv_dim, S = p->seq_len;
    float scale = 1.0f / sqrtf((float)hs);
    tfu_tensor *x = tfu_get_rows(c, m->emb, tok);   /* D x T */
    int l;
    for (l = 0; l < p->n_layers; l++) {
        const l2_layer *Y = &m->layer[l];
        tfu_tensor *xn, *q, *k, *v, *kc, *vc, *kview, *vview, *att, *o, *h, *f;
        int64_t kne[3], vne[3];
        size_t knb[2], vnb[2];
        xn = tfu_mul(c, tfu_rms_norm(c, x, 1e-5f), Y->att_norm);
        q = tfu_rope(c, tfu_reshape_3d(c, tfu_mul_mat(c, Y->wq, xn), hs, nh, T), pos, (int)hs, TFU_ROPE_NORMAL, 10000.0f);
        k = tfu_rope(c, tfu_reshape_3d(c, tfu_mul_mat(c, Y->wk, xn), hs, nkv, T), pos, (int)hs, TFU_ROPE_NORMAL, 10000.0f);
        v = tfu_mul_mat(c, Y->wv, xn);
        /* K and V of the T tokens into the caches at the positions pos holds */
        kc = tfu_set_rows(c, Y->kcache, tfu_reshape_2d(c, k, KV, T), pos);
        vc = tfu_set_rows(c, tfu_transpose(c, Y->vcache), v, pos);
        /* keys of positions < L: hs x L x nkv; values transposed: L x hs x nkv */
        kne[0] = hs;
        kne[1] = L;
        kne[2] = nkv;
        knb[0] = (size_t)KV * 4;
        knb[1] = (size_t)hs * 4;
        vne[0] = L;
        vne[1] = hs;
        vne[2] = nkv;
        vnb[0] = (size_t)S * 4;
        vnb[1] = (size_t)(hs * S) * 4;
        kview = tfu_view(c, kc, 3, kne, knb, 0);
        vview = tfu_view(c, vc, 3, vne, vnb, 0);
        /* scores L x T x nh (query head h reads kv head h / (nh / nkv)) */
        att = tfu_mul_mat(c, kview, tfu_permute(c, q, 0, 2, 1, 3));
        att = tfu_soft_max_ext(c, att, mask, scale);
        o = tfu_mul_mat(c, vview, att);   /* hs x T x nh; at T = 1 already laid out as hs x nh */
        if (T > 1) o = tfu_cont(c, tfu_permute(c, o, 0, 2, 1, 3));
        o = tfu_reshape_2d(c, o, D, T);
        x = tfu_add(c, x, tfu_mul_mat(c, Y->wo, o));
        h = tfu_mul(c, tfu_rms_norm(c, x, 1e-5f), Y->ffn_norm);
        f = tfu_swiglu_split(c, tfu_mul_mat(c, Y->w1, h), tfu_mul_mat(c, Y->w3, h));
        x = tfu_add(c, x, tfu_mul_mat(c, Y->w2, f));
    }
    x = tfu_mul(c, tfu_rms_norm(c, x, 1e-5f), m->final_norm);
    if (!all_logits && x && T > 1) x = tfu_view_2d(c, x, D, 1, x->nb[1], (size_t)(T - 1) * x->nb[1]);
    return tfu_mul_mat(c, m->wcls, x);
}

static void l2_slot_free(l2_slot *s) {
#ifdef LLAMA2_VULKAN
    if (s->vplan) {
        tfvk_plan_free(s->vplan);   /* frees its shared plan too */
        s->plan = NULL;
    }
#endif
    tfu_plan_free(s->plan);
    tfu_free(s->ctx);
    free(s->tokens);
    free(s->pos);
    free(s->mask);
    memset(s, 0, sizeof *s);
}

/* the slot of this shape, built and compiled the first time */
static l2_slot *l2_get_slot(l2_decoder *d, int T, int L, int all_logits) {
    const l2_model *m = d->m;
    l2_slot *s;
    int i;
    int64_t one = T, mne[2];
    tfu_tensor *tok, *pos, *mask;
    for (i = 0; i < d->n_slots; i++)
        if (d->slot[i].T == T && d->slot[i].L == L && d->slot[i].all_logits == all_logits) {
            d->hits++;
            return &d->slot[i];
        }
    if (d->n_slots == L2_MAX_SLOTS) {
        fprintf(stderr, "llama2: more than %d step shapes\n", L2_MAX_SLOTS);
        return NULL;
    }
    s = &d->slot[d->n_slots];
    s->T = T;
    s->L = L;
    s->all_logits = all_logits;
    s->ctx = tfu_init_malloc(tfu_context_size((size_t)(80 * m->cfg.n_layers + 128), 0), 1);
    s->tokens = (int32_t *)calloc((size_t)T, sizeof(int32_t));
    s->pos = (int32_t *)calloc((size_t)T, sizeof(int32_t));
    s->mask = (float *)calloc((size_t)L * (size_t)T, sizeof(float));
    if (!s->ctx || !s->tokens || !s->pos || !s->mask) {
        fprintf(stderr, "llama2: out of memory for a step graph\n");
        l2_slot_free(s);
        return NULL;
    }
    mne[0] = L;
    mne[1] = T;
    tok = tfu_set_input(tfu_new_tensor_ext(s->ctx, TFU_I32, 1, &one, s->tokens));
    pos = tfu_set_input(tfu_new_tensor_ext(s->ctx, TFU_I32, 1, &one, s->pos));
    mask = tfu_set_input(tfu_new_tensor_ext(s->ctx, TFU_F32, 2, mne, s->mask));
    s->mask_t = mask;
    s->logits = l2_graph(m, s->ctx, T, L, all_logits, tok, pos, mask);
    s->g = s->logits ? tfu_graph_build(s->ctx, s->logits) : NULL;
#ifdef LLAMA2_VULKAN
    if (d->vk) {
        s->vplan = s->g ? tfvk_plan_compile(d->vk, s->g, NULL) : NULL;
        if (!s->vplan) {
            fprintf(stderr, "llama2: compiling the step graph for Vulkan (T %d, L %d): %s\n", T, L,
                    s->g ? tfvk_last_error_msg(d->vk) : tfu_last_error_msg(s->ctx));
            l2_slot_free(s);
            return NULL;
        }
        s->plan = (tfu_plan *)tfvk_plan_shared(s->vplan);
        d->n_slots++;
        return s;
    }
#endif
    s->plan = s->g ? tfu_plan_compile(s->g, &d->opt) : NULL;
    if (!s->plan) {
        fprintf(stderr, "llama2: building the step graph (T %d, L %d): %s\n", T, L, tfu_last_error_msg(s->ctx));
        l2_slot_free(s);
        return NULL;
    }
    d->n_slots++;
    return s;
}

/* runs T tokens at positions p0.. ; the logits (T x vocab or 1 x vocab) */
static const float *l2_forward(l2_decoder *d, const int *tokens, int T, int p0, int all_logits) {
    int S = d->m->cfg.seq_len, L = (p0 + T + L2_BUCKET - 1) / L2_BUCKET * L2_BUCKET, i;
    l2_slot *s;
    tfu_result r;
    if (L > S) L = S;
    s = l2_get_slot(d, T, L, all_logits);
    if (!s) return NULL;
    for (i = 0; i < T; i++) {
        s->tokens[i] = tokens[i];
        s->pos[i] = p0 + i;
    }
    tfu_fill_causal_mask(s->mask_t, p0);   /* keys 0 .. p0 + t valid for token t */
#ifdef LLAMA2_VULKAN
    if (s->vplan) {
        r = tfvk_plan_run(s->vplan);
        if (r != TFU_OK) {
            fprintf(stderr, "llama2: run on Vulkan: %s\n", tfvk_last_error_msg(d->vk));
            return NULL;
        }
        return (const float *)s->logits->data;
    }
#endif
    r = tfu_plan_run(s->plan);
    if (r != TFU_OK) {
        fprintf(stderr, "llama2: run: %s\n", tfu_last_error_msg(s->ctx));
        return NULL;
    }
    return (const float *)s->logits->data;
}

/* --- main ------------------------------------------------------------------ */

static void l2_usage(void) {
    fprintf(stderr, "usage: llama2 CHECKPOINT --tokenizer FILE [--prompt TEXT] [--steps N] [--temperature T] [--topp P]\n"
                    "              [--seed S] [--backend cpu|vulkan] [--threads N] [--f16 | --q8_0 | --q4_0 [--int8]] [--dot FILE]\n"
                    "              [--logits FILE] [--stats]\n");
}

typedef struct l2_args {
    const char *checkpoint, *tokenizer, *prompt, *backend, *dot, *logits;
    int steps, threads, stats, int8;
    tfu_type wtype;
    float temperature, topp;
    unsigned long long seed;
} l2_args;

static int l2_parse_args(int argc, char **argv, l2_args *a) {
    int i;
    memset(a, 0, sizeof *a);
    a->prompt = "";
    a->backend = "cpu";
    a->steps = 256;
    a->threads = 1;
    a->temperature = 1.0f;
    a->topp = 0.9f;
    for (i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (!strcmp(o, "--f16")) { a->wtype = TFU_F16; takes = 0; }
        else if (!strcmp(o, "--q8_0")) { a->wtype = TFU_Q8_0; takes = 0; }
        else if (!strcmp(o, "--q4_0")) { a->wtype = TFU_Q4_0; takes = 0; }
        else if (!strcmp(o, "--int8")) { a->int8 = 1; takes = 0; }
        else if (!strcmp(o, "--stats")) { a->stats = 1; takes = 0; }
        else if (o[0] != '-' && !a->checkpoint) { a->checkpoint = o; takes = 0; }
        else if (!v) { fprintf(stderr, "llama2: %s needs a value\n", o); return 0; }
        else if (!strcmp(o, "--tokenizer")) a->tokenizer = v;
        else if (!strcmp(o, "--prompt")) a->prompt = v;
        else if (!strcmp(o, "--steps")) a->steps = atoi(v);
        else if (!strcmp(o, "--temperature")) a->temperature = (float)atof(v);
        else if (!strcmp(o, "--topp")) a->topp = (float)atof(v);
        else if (!strcmp(o, "--seed")) a->seed = strtoull(v, NULL, 10);
        else if (!strcmp(o, "--backend")) a->backend = v;
        else if (!strcmp(o, "--threads")) a->threads = atoi(v);
        else if (!strcmp(o, "--dot")) a->dot = v;
        else if (!strcmp(o, "--logits")) a->logits = v;
        else { fprintf(stderr, "llama2: unknown option %s\n", o); return 0; }
        i += takes;
    }
    if (!a->checkpoint || !a->tokenizer) { fprintf(stderr, "llama2: a checkpoint and --tokenizer FILE are needed\n"); return 0; }
    if (a->threads < 1 || a->threads > 256) { fprintf(stderr, "llama2: --threads must be 1..256\n"); return 0; }
    if (!(a->temperature >= 0)) { fprintf(stderr, "llama2: --temperature must be >= 0\n"); return 0; }
    if (a->int8 && tfu_type_block_size(a->wtype) == 1) { fprintf(stderr, "llama2: --int8 needs --q8_0 or --q4_0 weights\n"); return 0; }
    return 1;
}

static int l2_write_dot(const tfu_plan *p, const char *path) {
    size_t n = tfu_plan_dot(p, NULL, 0);
    char *buf = (char *)malloc(n + 1);
    FILE *f = fopen(path, "w");
    int ok = buf && f;
    if (ok) {
        tfu_plan_dot(p, buf, n + 1);
        ok = fwrite(buf, 1, n, f) == n;
    }
    if (f && fclose(f) != 0) ok = 0;
    free(buf);
    if (!ok) fprintf(stderr, "llama2: cannot write %s\n", path);
    return ok;
}

int main(int argc, char **argv) {
    l2_args a;
    l2_model m;
    l2_tokenizer tok;
    l2_decoder d;
    tfu_threadpool *pool = NULL;
    FILE *out = llama2_out ? llama2_out : stdout, *lf = NULL;
    int *seq = NULL, n_prompt, pos = 0, steps, rc = 1, i, next = L2_BOS, stopped = 0;
    l2_prob *work = NULL;
    float *last = NULL;
    double t0, t_prompt = 0, t_gen = 0;
    int n_prompt_done = 0, n_gen = 0;
    unsigned long long rng;
    free(llama2_last.tokens);
    memset(&llama2_last, 0, sizeof llama2_last);
    memset(&m, 0, sizeof m);
    memset(&tok, 0, sizeof tok);
    memset(&d, 0, sizeof d);
    if (!l2_parse_args(argc, argv, &a)) {
        l2_usage();
        return 1;
    }
#ifndef LLAMA2_VULKAN
    if (!strcmp(a.backend, "vulkan")) {
        fprintf(stderr, "llama2: --backend vulkan: this build has no Vulkan backend (it was not built with tensorfuse_vk.h)\n");
        return 1;
    }
#endif
    if (strcmp(a.backend, "cpu") && strcmp(a.backend, "vulkan")) {
        fprintf(stderr, "llama2: unknown backend '%s' (cpu or vulkan)\n", a.backend);
        return 1;
    }
    if (!strcmp(a.backend, "vulkan") && tfu_type_block_size(a.wtype) > 1) {
        fprintf(stderr, "llama2: --%s weights run on the CPU only (the Vulkan backend has no quantized kernels)\n", tfu_type_name(a.wtype));
        return 1;
    }
    if (!l2_model_load(&m, a.checkpoint, a.wtype)) goto done;
    if (!l2_tokenizer_load(&tok, a.tokenizer, m.cfg.vocab_size)) goto done;
    steps = a.steps <= 0 || a.steps > m.cfg.seq_len ? m.cfg.seq_len : a.steps;
    seq = (int *)malloc(sizeof(int) * ((size_t)strlen(a.prompt) + 3 + (size_t)m.cfg.seq_len));
    work = (l2_prob *)malloc(sizeof(l2_prob) * (size_t)m.cfg.vocab_size);
    last = (float *)malloc(sizeof(float) * (size_t)m.cfg.vocab_size);
    if (!seq || !work || !last) { fprintf(stderr, "llama2: out of memory\n"); goto done; }
    n_prompt = l2_encode(&tok, a.prompt, seq);
    if (n_prompt < 1) goto done;
    if (a.threads > 1) {
        pool = tfu_threadpool_new(a.threads);
        if (!pool) { fprintf(stderr, "llama2: cannot start %d threads\n", a.threads); goto done; }
    }
    if (a.logits && !(lf = fopen(a.logits, "wb"))) { fprintf(stderr, "llama2: cannot write %s\n", a.logits); goto done; }
    d.m = &m;
    d.opt = tfu_plan_default_options();
    d.opt.pool = pool;
    d.opt.quant_activations = a.int8;
#ifdef LLAMA2_VULKAN
    if (!strcmp(a.backend, "vulkan")) {
        d.vk = tfvk_init(NULL);
        if (tfvk_last_error(d.vk) != TFU_OK) {
            fprintf(stderr, "llama2: --backend vulkan: %s\n", tfvk_last_error_msg(d.vk));
            goto done;
        }
    }
#endif
    rng = a.seed ? a.seed : (unsigned long long)time(NULL);
    while (pos < steps) {
        int T = 1, V = m.cfg.vocab_size, all = lf != NULL;
        const float *logits;
        double t1;
        if (pos < n_prompt) {
            T = n_prompt - pos;
            if (T > llama2_max_batch) T = llama2_max_batch;
            if (T > steps - pos) T = steps - pos;
        }
        t0 = l2_now();
        logits = l2_forward(&d, seq + pos, T, pos, all);
        if (!logits) goto done;
        memcpy(last, logits + (all ? (size_t)(T - 1) * (size_t)V : 0), sizeof(float) * (size_t)V);
        if (lf && fwrite(logits, sizeof(float), (size_t)T * (size_t)V, lf) != (size_t)T * (size_t)V) {
            fprintf(stderr, "llama2: cannot write %s\n", a.logits);
            goto done;
        }
        for (i = pos; i < pos + T - 1; i++) l2_print_piece(out, l2_decode(&tok, seq[i], seq[i + 1]));
        pos += T;
        next = pos < n_prompt ? seq[pos] : l2_sample(last, V, a.temperature, a.topp, &rng, work);
        t1 = l2_now();
        if (pos <= n_prompt) {
            t_prompt += t1 - t0;
            n_prompt_done += T;
        } else {
            t_gen += t1 - t0;
            n_gen += T;
        }
        if (next == L2_BOS) {   /* as run.c: BOS delimits sequences */
            stopped = 1;
            break;
        }
        l2_print_piece(out, l2_decode(&tok, seq[pos - 1], next));
        fflush(out);
        seq[pos] = next;
    }
    fputc('\n', out);
    (void)stopped;
    fprintf(stderr, "prompt: %d tokens, %.1f tokens/s; generation: %d tokens, %.1f tokens/s\n", n_prompt_done,
            t_prompt > 0 ? n_prompt_done / t_prompt : 0.0, n_gen, t_gen > 0 ? n_gen / t_gen : 0.0);
    llama2_last.tokens = seq;
    llama2_last.n_tokens = pos;
    llama2_last.n_prompt = n_prompt;
    seq = NULL;
    llama2_last.plans_compiled = d.n_slots;
    llama2_last.cache_hits = d.hits;
    for (i = 0; i < d.n_slots; i++)
        if (d.slot[i].T == 1) llama2_last.stages_per_token = tfu_plan_get_stats(d.slot[i].plan).n_stages;
    if (a.stats)
        fprintf(out, "plans: %d compiled, %d cache hits, %d stages per token\n", d.n_slots, d.hits, llama2_last.stages_per_token);
    rc = 0;
    if (a.dot) {
        for (i = 0; i < d.n_slots && d.slot[i].T != 1; i++) continue;
        if (i == d.n_slots) i = 0;
        if (d.n_slots && !l2_write_dot(d.slot[i].plan, a.dot)) rc = 1;
    }
done:
    if (lf && fclose(lf) != 0 && rc == 0) {
        fprintf(stderr, "llama2: cannot write %s\n", a.logits);
        rc = 1;
    }
    for (i = 0; i < d.n_slots; i++) l2_slot_free(&d.slot[i]);
#ifdef LLAMA2_VULKAN
    tfvk_free(d.vk);
#endif
    tfu_threadpool_free(pool);
    l2_model_free(&m);
    l2_tokenizer_free(&tok);
    free(seq);
    free(work);
    free(last);
    return rc;
}
