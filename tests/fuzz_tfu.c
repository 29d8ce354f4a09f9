/* fuzz_tfu.c - a libFuzzer harness: bytes become a tensorfuse program.

   The bytes are read as a sequence of steps: tensor creations (F32, F16,
   BF16, I32, odd and invalid shapes, data with NaN, infinities, huge and
   tiny values), views (good and bad offsets and strides), permute,
   transpose, reshape, cont, copies into leaves and views of leaves, every op
   builder with random (also invalid) arguments, flags, and expands of
   results in any order. Then a plan is compiled with random options (fusion
   on or off, 1 or 2 threads, SIMD off, a caller arena, int8 activations
   against quantized weights) and run.

   The same bytes build a twin program in a second context, which the
   reference executor runs. A finding is: a crash or sanitizer report; a
   builder returning NULL without an error code; compile or run failing
   without one; the plan and the reference disagreeing on whether the run is
   valid; or an expanded result or a leaf differing between them (NaN-aware,
   tolerance scaled by what the values went through). A finding aborts, so
   libFuzzer keeps the input.

   Built two ways:
     clang -fsanitize=fuzzer,address,undefined  (make fuzz)
     any C compiler with -DFUZZ_REPLAY: a main that replays files or
     directories (default tests/fuzz_corpus) and prints "N passed, N failed"

   With -DFUZZ_VK (and FUZZ_REPLAY; make fuzz-vk, make test) a third twin
   runs on Vulkan (tensorfuse_vk.h, the first device; lavapipe here, under
   the validation layer unless FUZZ_VK_VALIDATION=0) with the same fusion
   option and is judged as the CPU plan is; a compile refusal must come with
   an error. Without a device the Vulkan leg is skipped (TFVK_REQUIRE=1
   makes that a failure).

   Environment, to look past a known bug while exploring:
     FUZZ_TAME=1     data without NaN, infinities, huge or tiny values
     FUZZ_NO_CPY=1   no copies (no memory effects to order)
     FUZZ_ALIGNED=1  view offsets and strides only multiples of the element size
     FUZZ_VERBOSE=1  print each step */
#define _POSIX_C_SOURCE 200809L
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#ifdef FUZZ_VK
#define TFVK_IMPLEMENTATION
#include "tensorfuse_vk.h"
/* under AddressSanitizer no leak report at exit: what the Vulkan driver and
   layers keep is theirs (test_vk counts the backend's own blocks) */
#if defined(__SANITIZE_ADDRESS__)
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "detect_leaks=0"; }
#endif
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(_WIN32)   /* the CRT's environment, which getenv reads */
#define setenv(name, value, overwrite) _putenv_s(name, value)
#define unsetenv(name) _putenv_s(name, "")
#endif

#define FZ_CTX_BYTES (1u << 20)
#define FZ_POOL 48
#define FZ_STEPS 40
#define FZ_OUT 8

typedef struct fz_in {
    const uint8_t *p;
    size_t n, pos;
} fz_in;

static unsigned fz_u8(fz_in *in) {
    if (in->pos >= in->n) return 0;
    return in->p[in->pos++];
}
static unsigned fz_u16(fz_in *in) {
    unsigned a = fz_u8(in);
    return a | (fz_u8(in) << 8);
}
static int fz_range(fz_in *in, int lo, int hi) {   /* [lo, hi] */
    return lo + (int)(fz_u8(in) % (unsigned)(hi - lo + 1));
}

/* one value of the pool */
typedef struct fz_val {
    tfu_tensor *t;
    double mag;      /* bound of |value| (inf: unknown)                    */
    double tol;      /* relative tolerance against max(1, |ref|, mag)      */
    double ltol, lmag;   /* ltol >= 0: a LOG, judged as exp(value) against its
                            input's tolerance and bound (log of a value near 0
                            magnifies any error without bound); what is computed
                            from it is not judged */
} fz_val;

typedef struct fz_prog {
    tfu_context *ctx;
    fz_val v[FZ_POOL];
    int nv;
    tfu_tensor *leaf[FZ_POOL];
    int nleaf;
    tfu_graph *g;
    tfu_tensor *out[FZ_OUT];
    double out_tol[FZ_OUT];
    double out_mag[FZ_OUT];
    double out_ltol[FZ_OUT], out_lmag[FZ_OUT];
    int nout;
    int finding;
    char what[256];
} fz_prog;

static int g_tame, g_no_cpy, g_aligned, g_verbose;
static int g_qact;   /* the plan rounds activations to int8 against quantized weights */

static void fz_finding(fz_prog *p, const char *msg, const char *detail) {
    if (p->finding) return;
    p->finding = 1;
    snprintf(p->what, sizeof p->what, "%s: %s", msg, detail ? detail : "");
}

/* data: uniform, or with special values, from a small generator seeded by the bytes */
static void fz_fill(fz_in *in, tfu_tensor *t, double *mag) {
    unsigned mode = fz_u8(in), seed = fz_u16(in) | 1u;
    int64_t i0, i1, i2, i3;
    double m = 2;
    if (!t->data) return;
    if (g_tame) mode %= 6;
    for (i3 = 0; i3 < t->ne[3]; i3++)
        for (i2 = 0; i2 < t->ne[2]; i2++)
            for (i1 = 0; i1 < t->ne[1]; i1++)
                for (i0 = 0; i0 < t->ne[0]; i0++) {
                    float v;
                    seed = seed * 1103515245u + 12345u;
                    if (t->type == TFU_I32) {
                        int32_t r = (int32_t)((seed >> 16) % 9) - (mode % 7 == 6 ? 1 : 0);
                        memcpy((char *)t->data + (size_t)i0 * t->nb[0] + (size_t)i1 * t->nb[1] + (size_t)i2 * t->nb[2] + (size_t)i3 * t->nb[3], &r, 4);
                        continue;
                    }
                    v = ((float)((seed >> 9) & 0xFFFF) / 32768.0f - 1.0f) * 2.0f;
                    if (v == 0) v = 0.5f;
                    if (mode % 8 == 6 && (seed >> 28) == 3) {
                        static const float special[4] = { NAN, INFINITY, -INFINITY, -0.0f };
                        v = special[(seed >> 5) & 3];
                    }
                    if (mode % 8 == 7) {
                        v *= (seed >> 30) & 1 ? 1e20f : 1e-20f;
                        m = t->type == TFU_F16 ? INFINITY : 2e20;   /* 1e20 is inf in f16 */
                    }
                    tfu_set_f32(t, i0, i1, i2, i3, v);
                }
    *mag = mode % 8 == 6 ? INFINITY : m;
}

static int fz_push(fz_prog *p, tfu_tensor *t, double mag, double tol) {
    if (!t) return -1;
    /* argmax marks its result -1 (not compared: near ties may pick another
       index); what is computed from it is not judged either */
    if (tol < 0 && t->op != TFU_OP_ARGMAX) tol = 1;
    if (g_verbose) {
        int k;
        printf("    #%d = %s %s %lldx%lldx%lldx%lld nb %zu,%zu,%zu,%zu", p->nv, tfu_op_name(t->op), tfu_type_name(t->type),
               (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3], t->nb[0], t->nb[1], t->nb[2], t->nb[3]);
        for (k = 0; k < TFU_MAX_SRC; k++) {
            int j;
            for (j = 0; j < p->nv && t->src[k]; j++)
                if (p->v[j].t == t->src[k]) printf(" src #%d", j);
        }
        if (t->view_src) printf(" offs %zu", t->view_offs);
        printf("\n");
    }
    if (p->nv >= FZ_POOL) return -1;
    p->v[p->nv].t = t;
    p->v[p->nv].mag = mag;
    p->v[p->nv].tol = tol;
    p->v[p->nv].ltol = -1;
    p->v[p->nv].lmag = 0;
    return p->nv++;
}

/* a builder's result: NULL must come with an error code */
static tfu_tensor *fz_check(fz_prog *p, tfu_tensor *t, const char *op) {
    if (!t && tfu_last_error(p->ctx) == TFU_OK) fz_finding(p, "builder returned NULL without an error", op);
    if (!t && g_verbose) printf("    %s refused: %s\n", op, tfu_last_error_msg(p->ctx));
    return t;
}

static fz_val *fz_pick(fz_prog *p, fz_in *in) {
    if (!p->nv) return NULL;
    return &p->v[fz_u8(in) % (unsigned)p->nv];
}

static int64_t fz_dim(fz_in *in) {
    unsigned b = fz_u8(in);
    if (b == 255) return 0;             /* invalid */
    if (b == 254) return -3;            /* invalid */
    if (b == 253) return (int64_t)1 << 40;   /* too large for the context */
    return 1 + (int64_t)(b % 7);
}

/* a quantized tensor's blocks: random bytes (any f16 scale: NaN, inf,
   subnormal, zero), then the bound of what they dequantize to */
static void fz_fill_blocks(fz_in *in, tfu_tensor *t, double *mag) {
    unsigned seed = fz_u16(in) | 1u;
    size_t i, n = tfu_nbytes(t);
    int64_t i0, i1, i2, i3;
    double m = 0;
    int bad = 0;
    if (!t->data) return;
    for (i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        ((unsigned char *)t->data)[i] = (unsigned char)(seed >> 16);
    }
    for (i3 = 0; i3 < t->ne[3]; i3++)
        for (i2 = 0; i2 < t->ne[2]; i2++)
            for (i1 = 0; i1 < t->ne[1]; i1++)
                for (i0 = 0; i0 < t->ne[0]; i0++) {
                    double v = fabs((double)tfu_get_f32(t, i0, i1, i2, i3));
                    if (v != v || v == INFINITY) bad = 1;
                    else if (v > m) m = v;
                }
    *mag = bad ? INFINITY : m > 2 ? m : 2;
}

static void fz_new_tensor(fz_prog *p, fz_in *in) {
    static const tfu_type types[] = { TFU_F32, TFU_F32, TFU_F16, TFU_BF16, TFU_I32 };
    unsigned tb = fz_u8(in);
    /* 253, 254: quantized weights, rows of one or two blocks (or, at times,
       a row length that is not whole blocks, which must be refused) */
    tfu_type ty = tb == 255 ? (tfu_type)99 : tb == 253 ? TFU_Q8_0 : tb == 254 ? TFU_Q4_0 : types[tb % 5];
    int nd = fz_range(in, 1, 4), k;
    int64_t ne[4];
    tfu_tensor *t;
    double mag = 2;
    if (fz_u8(in) == 255) nd = 5;       /* invalid */
    for (k = 0; k < 4; k++) ne[k] = fz_dim(in);
    if (tfu_type_block_size(ty) > 1 && ne[1] % 4 != 3) ne[0] = 32 * (1 + ne[0] % 2);
    t = fz_check(p, tfu_new_tensor(p->ctx, ty, nd, ne), "new_tensor");
    if (!t) return;
    if (tfu_type_block_size(ty) > 1) fz_fill_blocks(in, t, &mag);
    else fz_fill(in, t, &mag);
    if (fz_u8(in) % 4 == 0) tfu_set_input(t);
    if (p->nleaf < FZ_POOL) p->leaf[p->nleaf++] = t;
    fz_push(p, t, mag, 0);
}

static void fz_view(fz_prog *p, fz_in *in) {
    fz_val *a = fz_pick(p, in);
    int nd = fz_range(in, 1, 4), k;
    int64_t ne[4];
    size_t nb[3], es, off;
    unsigned kind = fz_u8(in);
    tfu_tensor *t;
    if (!a) return;
    es = tfu_type_size(a->t->type);
    for (k = 0; k < 4; k++) ne[k] = 1 + fz_u8(in) % 6;
    for (k = 0; k < 3; k++) {
        unsigned b = fz_u8(in);
        /* a multiple of the element size, mostly; sometimes not, or zero */
        nb[k] = (b % 5 == 4 && !g_aligned) ? (size_t)(b % 7) : es * (size_t)(1 + b % 12);
    }
    off = (kind % 4 == 3 && !g_aligned) ? (size_t)fz_u8(in) : es * (size_t)(fz_u8(in) % 24);
    if (kind % 5 == 0) t = tfu_view(p->ctx, a->t, nd, ne, NULL, off);
    else t = tfu_view(p->ctx, a->t, nd, ne, nb, off);
    t = fz_check(p, t, "view");
    fz_push(p, t, a->mag, a->tol);
}

static void fz_shape_op(fz_prog *p, fz_in *in) {
    fz_val *a = fz_pick(p, in);
    unsigned k = fz_u8(in) % 5;
    tfu_tensor *t = NULL;
    if (!a) return;
    if (k == 0) {
        t = fz_check(p, tfu_transpose(p->ctx, a->t), "transpose");
    } else if (k == 1) {
        int ax[4];
        int i;
        for (i = 0; i < 4; i++) ax[i] = fz_range(in, -1, 4);
        if (fz_u8(in) % 2) {
            /* a valid permutation most of the time */
            static const int perms[6][4] = { {0,1,2,3}, {1,0,2,3}, {2,0,1,3}, {0,2,1,3}, {3,2,1,0}, {1,2,3,0} };
            memcpy(ax, perms[fz_u8(in) % 6], sizeof ax);
        }
        t = fz_check(p, tfu_permute(p->ctx, a->t, ax[0], ax[1], ax[2], ax[3]), "permute");
    } else if (k == 2) {
        int64_t n = tfu_nelements(a->t), ne[3];
        ne[0] = 1 + fz_u8(in) % 8;
        if (fz_u8(in) % 3 && n % ne[0] == 0) {
            ne[1] = n / ne[0];
            ne[2] = 1;
        } else {
            ne[1] = 1 + fz_u8(in) % 5;
            ne[2] = 1 + fz_u8(in) % 3;
        }
        t = fz_check(p, tfu_reshape(p->ctx, a->t, 3, ne), "reshape");
    } else {
        t = fz_check(p, tfu_cont(p->ctx, a->t), "cont");
    }
    fz_push(p, t, a->mag, a->tol);
}

static void fz_cpy(fz_prog *p, fz_in *in) {
    fz_val *a = fz_pick(p, in), *d;
    tfu_tensor *t;
    if (!a || g_no_cpy) return;
    if (p->nleaf && fz_u8(in) % 2) {
        /* a leaf or a view of one as destination, shaped like the source when possible */
        int i, best = -1;
        for (i = 0; i < p->nv; i++)
            if (tfu_same_shape(p->v[i].t, a->t) && p->v[i].t != a->t &&
                (p->v[i].t->op == TFU_OP_NONE || p->v[i].t->op == TFU_OP_VIEW || p->v[i].t->op == TFU_OP_CPY)) {
                best = i;
                if (fz_u8(in) % 2) break;
            }
        d = best >= 0 ? &p->v[best] : fz_pick(p, in);
    } else {
        d = fz_pick(p, in);
    }
    t = fz_check(p, tfu_cpy(p->ctx, a->t, d->t), "cpy");
    fz_push(p, t, a->mag, a->tol + (d->t->type != TFU_F32 ? 4e-3 : 0));
}

static void fz_unary(fz_prog *p, fz_in *in) {
    static const tfu_op ops[] = { TFU_OP_NEG, TFU_OP_ABS, TFU_OP_SQR, TFU_OP_SQRT, TFU_OP_EXP, TFU_OP_LOG,
                                  TFU_OP_SIN, TFU_OP_COS, TFU_OP_TANH, TFU_OP_SIGMOID, TFU_OP_RELU,
                                  TFU_OP_GELU, TFU_OP_GELU_ERF, TFU_OP_SILU, TFU_OP_ADD };
    fz_val *a = fz_pick(p, in);
    unsigned k = fz_u8(in);
    tfu_tensor *t;
    double mag, tol;
    if (!a) return;
    mag = a->mag;
    tol = a->tol;
    if (k % 4 == 0) {
        float s = (float)((int)fz_u8(in) - 128) / 32.0f;
        float b = (float)((int)fz_u8(in) - 128) / 64.0f;
        t = fz_check(p, k % 8 == 0 ? tfu_scale(p->ctx, a->t, s) : tfu_scale_bias(p->ctx, a->t, s, b), "scale");
        mag = mag * fabs(s) + fabs(b);
    } else if (k % 4 == 1) {
        float lo = (float)((int)fz_u8(in) - 128) / 32.0f, hi = (float)((int)fz_u8(in) - 128) / 32.0f;
        t = fz_check(p, tfu_clamp(p->ctx, a->t, lo, hi), "clamp");
    } else {
        tfu_op op = ops[fz_u8(in) % (sizeof ops / sizeof ops[0])];   /* ADD: not a unary op */
        t = fz_check(p, tfu_unary(p->ctx, a->t, op), "unary");
        if (op == TFU_OP_SQR) mag = mag * mag;
        if (op == TFU_OP_EXP) mag = exp(mag > 700 ? 700 : mag);
        if (op == TFU_OP_SIN || op == TFU_OP_COS) tol = tol + tol * mag + (mag > 100 ? 1 : 0);
        if (op == TFU_OP_EXP) tol = tol + tol * a->mag;
        /* sqrt near 0: an absolute error e of the input becomes up to sqrt(e) */
        if (op == TFU_OP_SQRT) {
            double e = (tol * 50 + 1e-5) * (mag > 1 ? mag : 1), ts = sqrt(e) / 50;
            tol = tol * 4 + 1e-6;
            if (ts > tol) tol = ts;
            mag = sqrt(mag);
        }
        if (op == TFU_OP_SIN || op == TFU_OP_COS || op == TFU_OP_TANH || op == TFU_OP_SIGMOID) mag = 1;
        if (op == TFU_OP_LOG) {
            int k2 = fz_push(p, t, mag, 1);
            if (k2 >= 0) {
                p->v[k2].ltol = tol;
                p->v[k2].lmag = mag;
            }
            return;
        }
    }
    fz_push(p, t, mag, tol + 1e-6);
}

static void fz_binary(fz_prog *p, fz_in *in) {
    fz_val *a = fz_pick(p, in), *b = fz_pick(p, in);
    unsigned k = fz_u8(in) % 4;
    tfu_tensor *t;
    double mag, tol;
    if (!a) return;
    if (k == 0) t = tfu_add(p->ctx, a->t, b->t);
    else if (k == 1) t = tfu_sub(p->ctx, a->t, b->t);
    else if (k == 2) t = tfu_mul(p->ctx, a->t, b->t);
    else t = tfu_div(p->ctx, a->t, b->t);
    t = fz_check(p, t, "binary");
    mag = k == 2 ? a->mag * b->mag : a->mag + b->mag;
    tol = a->tol + b->tol + 1e-6;
    if (k == 3) {
        mag = INFINITY;   /* the divisor may be near zero */
        tol = 1;
    }
    fz_push(p, t, mag, tol);
}

static void fz_glu(fz_prog *p, fz_in *in) {
    fz_val *a = fz_pick(p, in), *b = fz_pick(p, in);
    unsigned k = fz_u8(in);
    int kind = (int)(fz_u8(in) % 6) - 1;   /* -1 and 4: invalid */
    tfu_tensor *t;
    if (!a) return;
    if (k % 2) t = tfu_glu(p->ctx, a->t, (tfu_glu_kind)kind, (int)(k / 2 % 2));
    else t = tfu_glu_split(p->ctx, a->t, b->t, (tfu_glu_kind)kind);
    t = fz_check(p, t, "glu");
    fz_push(p, t, (a->mag + 1) * (b->mag + 1), a->tol + b->tol + 1e-5);
}

static void fz_rowop(fz_prog *p, fz_in *in) {
    fz_val *a = fz_pick(p, in), *m = fz_pick(p, in);
    unsigned k = fz_u8(in) % 7;
    static const float eps[4] = { 1e-5f, 1e-2f, 0.0f, -1.0f };
    float e = eps[fz_u8(in) % 4];
    tfu_tensor *t;
    double mag = 1, tol;
    if (!a) return;
    tol = a->tol * 4 + 1e-5;
    if (k == 0) t = tfu_rms_norm(p->ctx, a->t, e);
    else if (k == 1) t = tfu_norm(p->ctx, a->t, e);
    else if (k == 2) t = tfu_soft_max(p->ctx, a->t);
    else if (k == 3) t = tfu_soft_max_ext(p->ctx, a->t, fz_u8(in) % 2 ? m->t : NULL, (float)fz_u8(in) / 64.0f);
    else if (k == 4) t = tfu_sum_rows(p->ctx, a->t);
    else if (k == 5) t = tfu_mean(p->ctx, a->t);
    else t = tfu_argmax(p->ctx, a->t);
    t = fz_check(p, t, "rowop");
    if (k <= 1) {
        /* rounding noise in a row of near-equal values is amplified */
        mag = sqrt((double)a->t->ne[0]) + 1;
        tol = (a->tol + 1e-5) * (e > 0 ? 1 + 0.1 / sqrt(e) : 1e6);
    }
    if (k >= 2 && k <= 3) tol = (a->tol + 1e-5) * (1 + a->mag * 4 + (k == 3 ? m->mag * 4 : 0));
    if (k >= 4 && k <= 5) {
        mag = a->mag * (double)a->t->ne[0];
        tol = (a->tol + 1e-5) * (double)a->t->ne[0];
    }
    if (k == 6) {
        mag = 0;
        tol = -1;   /* argmax: compared exactly unless the row has near ties: not compared */
    }
    fz_push(p, t, mag, tol);
}

static void fz_other(fz_prog *p, fz_in *in) {
    fz_val *a = fz_pick(p, in), *b = fz_pick(p, in);
    unsigned k = fz_u8(in) % 5;
    tfu_tensor *t;
    double mag = 1, tol;
    if (!a) return;
    tol = a->tol + b->tol + 1e-5;
    if (k == 4) {   /* set_rows: rows of b into a (a leaf or a view of one) at indices of a third value */
        fz_val *c = fz_pick(p, in);
        if (g_no_cpy) return;
        t = fz_check(p, tfu_set_rows(p->ctx, a->t, b->t, c->t), "set_rows");
        fz_push(p, t, a->mag > b->mag ? a->mag : b->mag, (a->tol > b->tol ? a->tol : b->tol) + (a->t->type != TFU_F32 ? 4e-3 : 0));
        return;
    }
    if (k == 0) {
        /* a product past 2^25 multiply-adds takes seconds in the double
           reference under the sanitizers (the per-input timeout): left out */
        if ((double)a->t->ne[0] * (double)a->t->ne[1] * (double)b->t->ne[1] * (double)b->t->ne[2] * (double)b->t->ne[3] > 33554432.0) return;
        t = fz_check(p, tfu_mul_mat(p->ctx, a->t, b->t), "mul_mat");
        mag = a->mag * b->mag * (double)a->t->ne[0];
        tol = (tol + 1e-5) * (double)a->t->ne[0];
        /* int8 activations: each off by at most its block's max / 254, so
           the sum by at most mag / 254 */
        if (g_qact && tfu_type_block_size(a->t->type) > 1) tol += 5e-3;
    } else if (k == 1) {
        t = fz_check(p, tfu_get_rows(p->ctx, a->t, b->t), "get_rows");
        mag = a->mag;
        tol = a->tol;
    } else if (k == 2) {
        int nd = fz_range(in, -1, 8);
        int mode = fz_u8(in) % 3 == 0 ? 1 : (fz_u8(in) % 2) * 2;
        float base = fz_u8(in) == 0 ? -1.0f : 10000.0f;
        t = fz_check(p, tfu_rope(p->ctx, a->t, b->t, nd, (tfu_rope_mode)mode, base), "rope");
        mag = a->mag * 1.5;
        tol = a->tol * 2 + 1e-5;
    } else {
        t = fz_check(p, tfu_concat(p->ctx, a->t, b->t, fz_range(in, -1, 4)), "concat");
        mag = a->mag > b->mag ? a->mag : b->mag;
    }
    fz_push(p, t, mag, tol);
}

static void fz_expand(fz_prog *p, fz_in *in) {
    fz_val *a = fz_pick(p, in);
    tfu_result r;
    if (!a || p->nout >= FZ_OUT) return;
    if (a->t->op == TFU_OP_NONE) return;   /* leaves are compared anyway */
    r = tfu_graph_build_expand(p->g, a->t);
    if (g_verbose) printf("    expand #%d: %s\n", (int)(a - p->v), tfu_result_str(r));
    if (r != TFU_OK && tfu_last_error(p->ctx) == TFU_OK) fz_finding(p, "expand failed without an error", tfu_result_str(r));
    if (r == TFU_OK) {
        p->out[p->nout] = a->t;
        p->out_tol[p->nout] = a->tol;
        p->out_mag[p->nout] = a->mag;
        p->out_ltol[p->nout] = a->ltol;
        p->out_lmag[p->nout] = a->lmag;
        p->nout++;
    }
}

/* builds the program of the bytes into p (context memory given) */
static void fz_build(fz_prog *p, void *mem, const uint8_t *data, size_t size) {
    tfu_context_params cp;
    fz_in in;
    int s;
    memset(mem, 0xFF, FZ_CTX_BYTES);   /* poison: the reference takes memory from here */
    cp.mem = mem;
    cp.mem_size = FZ_CTX_BYTES;
    cp.no_alloc = 0;
    p->ctx = tfu_init(cp);
    p->nv = 0;
    p->nleaf = 0;
    p->nout = 0;
    p->finding = 0;
    p->what[0] = 0;
    p->g = tfu_graph_new(p->ctx, 512);
    in.p = data;
    in.n = size;
    in.pos = 6;   /* the first bytes choose the plan's options */
    for (s = 0; s < FZ_STEPS && in.pos < in.n && !p->finding; s++) {
        unsigned op = fz_u8(&in) % 16;
        tfu_clear_error(p->ctx);
        if (g_verbose) printf("  step %d: kind %u (pool %d)\n", s, op, p->nv);
        switch (op) {
        case 0: case 1: fz_new_tensor(p, &in); break;
        case 2: fz_view(p, &in); break;
        case 3: fz_shape_op(p, &in); break;
        case 4: case 5: fz_cpy(p, &in); break;
        case 6: case 7: fz_unary(p, &in); break;
        case 8: fz_binary(p, &in); break;
        case 9: fz_glu(p, &in); break;
        case 10: fz_rowop(p, &in); break;
        case 11: fz_other(p, &in); break;
        case 12: case 13: fz_expand(p, &in); break;
        case 14: {
            fz_val *a = fz_pick(p, &in);
            if (a) {
                if (fz_u8(&in) % 2) tfu_set_keep(a->t);
                else tfu_set_output(a->t);
            }
        } break;
        default: fz_new_tensor(p, &in); break;
        }
    }
    /* nothing expanded: the last computed value */
    if (p->nout == 0 && !p->finding) {
        int i;
        for (i = p->nv - 1; i >= 0; i--)
            if (p->v[i].t->op != TFU_OP_NONE) {
                if (tfu_graph_build_expand(p->g, p->v[i].t) == TFU_OK) {
                    p->out[0] = p->v[i].t;
                    p->out_tol[0] = p->v[i].tol;
                    p->out_mag[0] = p->v[i].mag;
                    p->out_ltol[0] = p->v[i].ltol;
                    p->out_lmag[0] = p->v[i].lmag;
                    p->nout = 1;
                }
                break;
            }
    }
}

/* values of t and u agree within tol (relative to max(1, |ref|, mag)); with
   in_exp, exp of the values are compared (a LOG judged on its input) */
static int fz_agree(const tfu_tensor *t, const tfu_tensor *ref, double tol, double mag, int in_exp, char *detail, size_t dn) {
    int64_t i0, i1, i2, i3;
    if (t->type != ref->type || !tfu_same_shape(t, ref)) {
        snprintf(detail, dn, "type or shape differs");
        return 0;
    }
    if (!t->data || !ref->data) return 1;
    if (tol < 0 && t->op == TFU_OP_ARGMAX) return 1;
    if (!(tol <= 0.02) || !(mag < 1e30)) return 1;   /* too much noise to judge (or a tolerance that went NaN through inf), or overflow territory */
    for (i3 = 0; i3 < t->ne[3]; i3++)
        for (i2 = 0; i2 < t->ne[2]; i2++)
            for (i1 = 0; i1 < t->ne[1]; i1++)
                for (i0 = 0; i0 < t->ne[0]; i0++) {
                    double v = tfu_get_f32(t, i0, i1, i2, i3), r = tfu_get_f32(ref, i0, i1, i2, i3), den, d;
                    if (in_exp) {
                        v = exp(v);
                        r = exp(r);
                    }
                    if (r != r || v != v) {
                        if ((r != r) != (v != v)) {
                            snprintf(detail, dn, "%s '%s' [%lld,%lld,%lld,%lld]: plan %g, reference %g (NaN on one side)", tfu_op_name(t->op), t->name,
                                     (long long)i0, (long long)i1, (long long)i2, (long long)i3, v, r);
                            return 0;
                        }
                        continue;
                    }
                    if (v == r) continue;
                    den = fabs(r) > 1 ? fabs(r) : 1;
                    if (mag > den) den = mag;
                    d = fabs(v - r) / den;
                    if (!(d <= tol * 50 + 1e-5)) {
                        snprintf(detail, dn, "%s '%s' [%lld,%lld,%lld,%lld]: plan %.9g, reference %.9g (tol %.3g, mag %.3g)", tfu_op_name(t->op),
                                 t->name, (long long)i0, (long long)i1, (long long)i2, (long long)i3, v, r, tol * 50 + 1e-5, mag);
                        return 0;
                    }
                }
    return 1;
}

/* the expanded results and the leaves of program q after a run against the
   reference's (r): 0 when they agree, else 1 with the finding printed
   (who: "" or "Vulkan: "; how: the options) */
static int fz_judge(fz_prog *q, fz_prog *r, const char *who, const char *how) {
    char detail[256];
    int i;
    for (i = 0; i < q->nout; i++) {
        int in_exp = q->out_ltol[i] >= 0;
        if (!fz_agree(q->out[i], r->out[i], in_exp ? q->out_ltol[i] : q->out_tol[i], in_exp ? q->out_lmag[i] : q->out_mag[i], in_exp, detail,
                      sizeof detail)) {
            printf("FINDING: %sexpanded result %d differs: %s (options: %s)\n", who, i, detail, how);
            return 1;
        }
    }
    for (i = 0; i < q->nleaf; i++) {
        int j;
        double mag = 2;
        for (j = 0; j < q->nv; j++)
            if (q->v[j].t == q->leaf[i]) mag = q->v[j].mag;
        /* leaves written by copies: compared loosely (the copied value's tolerance is not tracked here) */
        if (!fz_agree(q->leaf[i], r->leaf[i], 1e-4, mag, 0, detail, sizeof detail)) {
            printf("FINDING: %sleaf %d differs after the run: %s (options: %s)\n", who, i, detail, how);
            return 1;
        }
    }
    return 0;
}

static void *g_mem[3];
#ifdef FUZZ_VK
static tfvk_context *g_vk;
static int g_vk_state;   /* 0 not tried, 1 running, -1 no device */
static long g_vk_runs, g_vk_refused;
static void fz_vk_msg(void *user, const char *m) {
    (void)user;
    printf("FINDING: Vulkan validation: %.400s\n", m);
    g_vk_state = 2;   /* a message: the input fails */
}

/* the program of the bytes on Vulkan, judged against the reference pb as
   the CPU plan is: 0 fine, 1 a finding (printed) */
static int fz_vk(const uint8_t *data, size_t size, fz_prog *pb, tfu_result rr, int no_fusion) {
    static fz_prog pc;
    tfvk_plan_options vo = tfvk_plan_default_options();
    tfvk_plan *plan;
    tfu_result rp;
    if (g_vk_state == 0) {
        tfvk_options o = tfvk_default_options();
        const char *val = getenv("FUZZ_VK_VALIDATION");
        o.validation = !(val && val[0] == '0');
        o.message_fn = fz_vk_msg;
        g_vk = tfvk_init(&o);
        g_vk_state = tfvk_last_error(g_vk) == TFU_OK ? 1 : -1;
        if (g_vk_state < 0) {
            printf("fuzz vk: no Vulkan device: %s\n", tfvk_last_error_msg(g_vk));
            tfvk_free(g_vk);
            g_vk = NULL;
        }
    }
    if (g_vk_state < 0) return 0;
    fz_build(&pc, g_mem[2], data, size);
    if (pc.nout == 0) return 0;
    vo.no_fusion = no_fusion;
    plan = tfvk_plan_compile(g_vk, pc.g, &vo);
    if (!plan) {
        if (tfvk_last_error(g_vk) == TFU_OK) {
            printf("FINDING: Vulkan compile returned NULL without an error\n");
            return 1;
        }
        if (g_verbose) printf("  vk refused: %s\n", tfvk_last_error_msg(g_vk));
        g_vk_refused++;
        return 0;
    }
    g_vk_runs++;
    rp = tfvk_plan_run(plan);
    if (rp != TFU_OK && tfvk_last_error(g_vk) == TFU_OK) {
        printf("FINDING: Vulkan run failed (%s) without an error\n", tfu_result_str(rp));
        tfvk_plan_free(plan);
        return 1;
    }
    if ((rr == TFU_OK) != (rp == TFU_OK) && rr != TFU_ERR_NO_MEMORY && rp != TFU_ERR_NO_MEMORY && rp != TFU_ERR_DEVICE_MEMORY) {
        printf("FINDING: the reference gave %s, Vulkan %s (%s)\n", tfu_result_str(rr), tfu_result_str(rp), tfvk_last_error_msg(g_vk));
        tfvk_plan_free(plan);
        return 1;
    }
    if (rr == TFU_OK && rp == TFU_OK && fz_judge(&pc, pb, "Vulkan: ", no_fusion ? "fusion off" : "fusion on")) {
        tfvk_plan_free(plan);
        return 1;
    }
    tfvk_plan_free(plan);
    if (g_vk_state == 2) {
        g_vk_state = 1;
        return 1;
    }
    return 0;
}
#endif
static unsigned char g_arena[1 << 18] __attribute__((aligned(64)));

/* one input: 0 if fine, 1 on a finding (message printed) */
static int fz_one(const uint8_t *data, size_t size) {
    static fz_prog pa, pb;
    tfu_plan_options o = tfu_plan_default_options();
    tfu_plan *plan;
    tfu_result rr, rp;
    unsigned o0 = size > 0 ? data[0] : 0, o1 = size > 1 ? data[1] : 0;
    if (!g_mem[0]) {
        g_mem[0] = malloc(FZ_CTX_BYTES);
        g_mem[1] = malloc(FZ_CTX_BYTES);
        g_mem[2] = malloc(FZ_CTX_BYTES);
        g_tame = getenv("FUZZ_TAME") != NULL;
        g_no_cpy = getenv("FUZZ_NO_CPY") != NULL;
        g_aligned = getenv("FUZZ_ALIGNED") != NULL;
        g_verbose = getenv("FUZZ_VERBOSE") != NULL;
    }
    g_qact = (o0 >> 4) & 1;
    fz_build(&pa, g_mem[0], data, size);
    fz_build(&pb, g_mem[1], data, size);
    if (pa.finding) {
        printf("FINDING: %s\n", pa.what);
        return 1;
    }
    if (pa.nout == 0) return 0;
    rr = tfu_graph_compute_ref(pb.g);
    o.no_fusion = o0 & 1;
    o.n_threads = (o0 >> 1) & 1 ? 2 : 1;
    if ((o0 >> 2) & 1) {
        memset(g_arena, 0xFF, sizeof g_arena);
        o.arena = g_arena;
        o.arena_size = (o1 & 1) ? sizeof g_arena : (size_t)(o1 * 64);
    }
    if ((o0 >> 3) & 1) setenv("TFU_NO_SIMD", "1", 1);
    o.quant_activations = g_qact;
    tfu_clear_error(pa.ctx);
    plan = tfu_plan_compile(pa.g, &o);
    if ((o0 >> 3) & 1) unsetenv("TFU_NO_SIMD");
    if (!plan) {
        tfu_result e = tfu_last_error(pa.ctx);
        if (e == TFU_OK) {
            printf("FINDING: compile returned NULL without an error\n");
            return 1;
        }
        /* a refusal at compile must be one the reference has a reason for too, or a plan limit */
        if (rr == TFU_OK && e != TFU_ERR_NO_MEMORY && e != TFU_ERR_THREADS) {
            printf("FINDING: compile refused (%s: %s) a graph the reference ran\n", tfu_result_str(e), tfu_last_error_msg(pa.ctx));
            return 1;
        }
        return 0;
    }
    rp = tfu_plan_run(plan);
    if (rp != TFU_OK && tfu_last_error(pa.ctx) == TFU_OK && tfu_plan_last_error(plan) == TFU_OK) {
        printf("FINDING: plan_run failed (%s) without an error\n", tfu_result_str(rp));
        tfu_plan_free(plan);
        return 1;
    }
    if ((rr == TFU_OK) != (rp == TFU_OK) && rr != TFU_ERR_NO_MEMORY && rp != TFU_ERR_NO_MEMORY) {
        printf("FINDING: the reference gave %s, the plan %s (%s)\n", tfu_result_str(rr), tfu_result_str(rp), tfu_last_error_msg(pa.ctx));
        tfu_plan_free(plan);
        return 1;
    }
    if (rr == TFU_OK && rp == TFU_OK) {
        char how[96];
        snprintf(how, sizeof how, "fusion %s, %d threads%s%s%s", o.no_fusion ? "off" : "on", o.n_threads, o.arena ? ", caller arena" : "",
                 (o0 >> 3) & 1 ? ", no SIMD" : "", g_qact ? ", int8 activations" : "");
        if (fz_judge(&pa, &pb, "", how)) {
            tfu_plan_free(plan);
            return 1;
        }
    }
    tfu_plan_free(plan);
#ifdef FUZZ_VK
    if (fz_vk(data, size, &pb, rr, o.no_fusion)) return 1;
#endif
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fz_one(data, size)) {
        fflush(stdout);
        abort();   /* libFuzzer keeps the input and prints its path */
    }
    return 0;
}
#else
#include <dirent.h>
#include <sys/stat.h>

static int g_pass, g_fail;

static void replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    if (!f) {
        printf("cannot open %s\n", path);
        g_fail++;
        return;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (uint8_t *)malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) n = 0;
    fclose(f);
    if (fz_one(buf, (size_t)n)) {
        printf("FAIL %s (replay: build/fuzz_replay %s)\n", path, path);
        g_fail++;
    } else {
        g_pass++;
    }
    free(buf);
}

static void replay_path(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        char full[4096];
        while (d && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            snprintf(full, sizeof full, "%s/%s", path, e->d_name);
            replay_file(full);
        }
        if (d) closedir(d);
    } else {
        replay_file(path);
    }
}

int main(int argc, char **argv) {
    int i;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) replay_path("tests/fuzz_corpus");
    for (i = 1; i < argc; i++) replay_path(argv[i]);
    printf("fuzz replay: %d inputs\n", g_pass + g_fail);
#ifdef FUZZ_VK
    {
        const char *req = getenv("TFVK_REQUIRE");
        if (g_vk_state < 0 && req && req[0] == '1') {
            printf("FAIL: TFVK_REQUIRE=1 but no Vulkan device\n");
            g_fail++;
        }
        if (g_vk_state < 0) {
            printf("%d passed, %d failed, 1 skipped\n", g_pass, g_fail);
            return g_fail != 0;
        }
        printf("fuzz vk: %ld plans run on Vulkan, %ld refused with an error\n", g_vk_runs, g_vk_refused);
        tfvk_free(g_vk);
    }
#endif
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail != 0;
}
#endif
