/* llama2_gen.h - random llama2.c checkpoints and tokenizers, for tests and
   measurements without downloading a model (C99, static functions).

   The formats are llama2.c's (run.c): a checkpoint is 7 int32 (dim,
   hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a
   negative vocab_size: the classifier is not shared with the embedding),
   then f32 weights in this order: token embedding (vocab x dim), attention
   rms weights (layers x dim), wq (layers x dim x dim), wk and wv (layers x
   kv_dim x dim), wo (layers x dim x dim), ffn rms weights (layers x dim),
   w1 (layers x hidden x dim), w2 (layers x dim x hidden), w3 (layers x
   hidden x dim), the final rms weight (dim), two unused RoPE tables (seq_len
   x head_size/2 each), and the classifier (vocab x dim) when not shared.
   A matrix "out x in" is stored row by row (one output per row).

   A tokenizer is an int32 max_token_length, then per token an f32 score,
   an int32 length and the bytes. The generated vocabulary is llama2's
   layout: 0 <unk>, 1 <s>, 2 </s>, 3..258 the byte tokens <0x00>..<0xFF>,
   then the printable ASCII characters, then random merges of 2..5
   lowercase letters or a space and letters (scores favour short ones). */
#ifndef LLAMA2_GEN_H
#define LLAMA2_GEN_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct lg_config {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    int shared;        /* classifier = embedding                        */
    uint32_t seed;
} lg_config;

static uint32_t lg_rng(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static float lg_unif(uint32_t *s, float lo, float hi) { return lo + (hi - lo) * (float)lg_rng(s) / 16777216.0f; }

static int lg_write_floats(FILE *f, uint32_t *s, int64_t n, float lo, float hi) {
    float buf[1024];
    int64_t done = 0;
    while (done < n) {
        int64_t k, m = n - done < 1024 ? n - done : 1024;
        for (k = 0; k < m; k++) buf[k] = lg_unif(s, lo, hi);
        if (fwrite(buf, sizeof(float), (size_t)m, f) != (size_t)m) return 0;
        done += m;
    }
    return 1;
}

/* writes a checkpoint; 0 on an I/O error */
static int lg_write_checkpoint(const char *path, const lg_config *c) {
    FILE *f = fopen(path, "wb");
    int32_t h[7];
    uint32_t s = c->seed * 2654435761u + 1;
    int64_t D = c->dim, H = c->hidden_dim, L = c->n_layers, V = c->vocab_size;
    int64_t kv = (int64_t)c->dim / c->n_heads * c->n_kv_heads, hs = c->dim / c->n_heads;
    float a = 1.0f / (float)sqrt((double)D), b = 1.0f / (float)sqrt((double)H);
    int ok;
    if (!f) return 0;
    h[0] = c->dim;
    h[1] = c->hidden_dim;
    h[2] = c->n_layers;
    h[3] = c->n_heads;
    h[4] = c->n_kv_heads;
    h[5] = c->shared ? c->vocab_size : -c->vocab_size;
    h[6] = c->seq_len;
    ok = fwrite(h, sizeof h, 1, f) == 1;
    ok = ok && lg_write_floats(f, &s, V * D, -1.0f, 1.0f);          /* embedding */
    ok = ok && lg_write_floats(f, &s, L * D, 0.8f, 1.2f);           /* rms_att */
    ok = ok && lg_write_floats(f, &s, L * D * D, -a, a);            /* wq */
    ok = ok && lg_write_floats(f, &s, L * kv * D, -a, a);           /* wk */
    ok = ok && lg_write_floats(f, &s, L * kv * D, -a, a);           /* wv */
    ok = ok && lg_write_floats(f, &s, L * D * D, -a, a);            /* wo */
    ok = ok && lg_write_floats(f, &s, L * D, 0.8f, 1.2f);           /* rms_ffn */
    ok = ok && lg_write_floats(f, &s, L * H * D, -a, a);            /* w1 */
    ok = ok && lg_write_floats(f, &s, L * D * H, -b, b);            /* w2 */
    ok = ok && lg_write_floats(f, &s, L * H * D, -a, a);            /* w3 */
    ok = ok && lg_write_floats(f, &s, D, 0.8f, 1.2f);               /* rms_final */
    ok = ok && lg_write_floats(f, &s, (int64_t)c->seq_len * hs, -1.0f, 1.0f);   /* freq_cis, unused */
    if (!c->shared) ok = ok && lg_write_floats(f, &s, V * D, -a, a);
    if (fclose(f) != 0) ok = 0;
    return ok;
}

static int lg_write_token(FILE *f, float score, const char *piece, int len) {
    int32_t n = len;
    return fwrite(&score, 4, 1, f) == 1 && fwrite(&n, 4, 1, f) == 1 && fwrite(piece, 1, (size_t)len, f) == (size_t)len;
}

/* writes a tokenizer of c->vocab_size tokens (at least 354); 0 on error */
static int lg_write_tokenizer(const char *path, const lg_config *c) {
    FILE *f;
    uint32_t s = c->seed * 40503u + 7;
    int32_t max_len = 8;
    int i, ok;
    char piece[16];
    if (c->vocab_size < 354) return 0;
    f = fopen(path, "wb");
    if (!f) return 0;
    ok = fwrite(&max_len, 4, 1, f) == 1;
    ok = ok && lg_write_token(f, 0.0f, "<unk>", 5);
    ok = ok && lg_write_token(f, 0.0f, "\n<s>\n", 5);
    ok = ok && lg_write_token(f, 0.0f, "\n</s>\n", 6);
    for (i = 0; i < 256 && ok; i++) {
        snprintf(piece, sizeof piece, "<0x%02X>", i);
        ok = lg_write_token(f, 0.0f, piece, 6);
    }
    for (i = 32; i < 127 && ok; i++) {
        piece[0] = (char)i;
        ok = lg_write_token(f, -1000.0f, piece, 1);
    }
    for (i = 354; i < c->vocab_size && ok; i++) {
        int len = 2 + (int)(lg_rng(&s) % 4), k;
        for (k = 0; k < len; k++) piece[k] = (char)('a' + lg_rng(&s) % 26);
        if (lg_rng(&s) % 3 == 0) piece[0] = ' ';
        ok = lg_write_token(f, -(float)len - lg_unif(&s, 0.0f, 1.0f), piece, len);
    }
    if (fclose(f) != 0) ok = 0;
    return ok;
}

#endif
