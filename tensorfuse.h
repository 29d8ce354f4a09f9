/* tensorfuse.h - tensors, a fusing planner and a CPU executor in one header.

   tensorfuse is for C programs that need a small neural network inside them
   (speech, vision, small language models) and cannot take a large dependency.
   You build a graph of tensor operations, the planner decides ONCE which
   operations run fused in one loop, orders the fused groups into stages and
   assigns memory, and the plan then runs many times on one or more threads.

   USAGE
     In exactly one C or C++ file:
         #define TFU_IMPLEMENTATION
         #include "tensorfuse.h"
     Everywhere else just #include "tensorfuse.h". Link with -lm (and -lpthread
     unless TFU_NO_THREADS).

   CONFIGURATION (define before including the implementation)
     TFU_API          linkage of public functions (default: extern)
     TFU_STATIC       make every function static (implies TFU_API static)
     TFU_ASSERT(x)    internal invariant check (default: assert(x)); never
                      used for user mistakes, which return error codes
     TFU_NO_STDIO     no <stdio.h>: no text or DOT report to FILE*, the report
                      still goes to a caller buffer; messages use a tiny
                      formatter of our own
     TFU_NO_MALLOC    no malloc/free: every buffer comes from the caller
                      (context memory, plan memory through tfu_allocator)
     TFU_NO_THREADS   no pthreads: plans run on the calling thread or on the
                      caller's parallel-for (tfu_plan_options.parallel_for)
     TFU_NO_SIMD      scalar kernels only (the SIMD paths are also switched
                      off at run time with TFU_NO_SIMD=1 in the environment)
     TFU_MAX_DIMS     always 4; any other value is an #error
     TFU_SELFTEST     compile tfu_selftest(), a built-in test returning the
                      number of failures

   ENVIRONMENT
     TFU_NO_FUSION=1  every plan compiles unfused (one group per operation)
     TFU_NO_SIMD=1    scalar kernels at run time

   CONTENTS (grep for the tag)
     >>api        declarations (stop reading after them if you only use it)
     >>base       errors, context arena, allocator
     >>tensor     tensors, views
     >>ops        graph builders
     >>graph      graph, use counts, flags
     >>ref        reference executor (the oracle)
     >>kern       row kernels shared by every CPU path (scalar and SIMD)
     >>plan       fusion, scheduling, memory assignment, report
     >>cpu        fused CPU executor, thread pool
     >>selftest   tfu_selftest()

   CHANGES
     0.1  core: tensors, ops, graph with use counts, reference executor;
          planner (fusion on the DAG, stages, memory after fusion), fused CPU
          executor with a thread pool, plan cache.

   LICENCE: MIT or public domain (Unlicense), at the end of the file.
*/
#ifndef TENSORFUSE_H
#define TENSORFUSE_H

/* >>api ================================================================== */

#include <stddef.h>
#include <stdint.h>

#ifndef TFU_MAX_DIMS
#define TFU_MAX_DIMS 4
#endif
#if TFU_MAX_DIMS != 4
#error "TFU_MAX_DIMS must be 4"
#endif

#ifdef TFU_STATIC
#define TFU_API static
#elif !defined(TFU_API)
#define TFU_API extern
#endif

#define TFU_MAX_SRC 3          /* operands per operation */
#define TFU_MAX_NAME 48        /* bytes of a tensor name, with the NUL */
#define TFU_MAX_OP_PARAMS 4

#ifdef __cplusplus
extern "C" {
#endif

/* Results. Zero is success; every function that can fail returns one of these
   (or NULL, with the code kept in the context: tfu_last_error). */
#define TFU_RESULT_LIST(X)                                                     \
    X(TFU_OK,              "ok")                                               \
    X(TFU_ERR_NULL_ARG,    "a required argument is NULL")                      \
    X(TFU_ERR_INVALID_ARG, "invalid argument")                                 \
    X(TFU_ERR_SHAPE,       "shapes do not match")                              \
    X(TFU_ERR_TYPE,        "unsupported tensor type for this operation")       \
    X(TFU_ERR_OVERFLOW,    "size arithmetic overflows")                        \
    X(TFU_ERR_NO_MEMORY,   "out of memory (context or plan buffer too small)") \
    X(TFU_ERR_NO_DATA,     "an input tensor has no data")                      \
    X(TFU_ERR_GRAPH,       "graph is too large or not built from this context")\
    X(TFU_ERR_THREADS,     "could not start worker threads")                   \
    X(TFU_ERR_STALE,       "the graph changed after the plan was compiled")

typedef enum tfu_result {
#define TFU_X_ENUM(name, msg) name,
    TFU_RESULT_LIST(TFU_X_ENUM)
#undef TFU_X_ENUM
    TFU_RESULT_COUNT
} tfu_result;

TFU_API const char *tfu_result_str(tfu_result r);

/* Element types. F16 and BF16 are storage types: they compute in f32. I32
   holds indices and positions. */
typedef enum tfu_type { TFU_F32 = 0, TFU_F16, TFU_BF16, TFU_I32, TFU_TYPE_COUNT } tfu_type;

TFU_API const char *tfu_type_name(tfu_type t);
TFU_API size_t      tfu_type_size(tfu_type t);

/* Operations. VIEW covers view, reshape, permute and transpose (no compute). */
#define TFU_OP_LIST(X)                                                        \
    X(NONE) X(VIEW) X(CONT) X(CPY)                                            \
    X(ADD) X(SUB) X(MUL) X(DIV) X(SCALE) X(CLAMP)                             \
    X(NEG) X(ABS) X(SQR) X(SQRT) X(EXP) X(LOG) X(SIN) X(COS) X(TANH)         \
    X(SIGMOID) X(RELU) X(GELU) X(GELU_ERF) X(SILU)                            \
    X(GLU)                                                                    \
    X(RMS_NORM) X(NORM) X(SOFT_MAX)                                           \
    X(MUL_MAT) X(GET_ROWS) X(ROPE) X(CONCAT) X(SUM_ROWS) X(MEAN) X(ARGMAX)

typedef enum tfu_op {
#define TFU_X_OP(name) TFU_OP_##name,
    TFU_OP_LIST(TFU_X_OP)
#undef TFU_X_OP
    TFU_OP_COUNT
} tfu_op;

TFU_API const char *tfu_op_name(tfu_op op);

/* GLU kinds: out = act(gate) * value. */
typedef enum tfu_glu_kind { TFU_GLU_REGLU = 0, TFU_GLU_GEGLU, TFU_GLU_GEGLU_ERF, TFU_GLU_SWIGLU } tfu_glu_kind;

/* RoPE modes: NORMAL rotates pairs (x[2i], x[2i+1]); NEOX rotates
   (x[i], x[i + n_dims/2]). */
typedef enum tfu_rope_mode { TFU_ROPE_NORMAL = 0, TFU_ROPE_NEOX = 2 } tfu_rope_mode;

/* Tensor flags. */
enum {
    TFU_FLAG_INPUT  = 1u << 0, /* written by the caller between runs        */
    TFU_FLAG_OUTPUT = 1u << 1, /* a result of the graph: always materialised */
    TFU_FLAG_KEEP   = 1u << 2, /* must be materialised (e.g. eval callback)  */
    TFU_FLAG_PARAM  = 1u << 3  /* a weight: data never changes between runs  */
};

/* A tensor. Shapes follow ggml: ne[0] is the contiguous row length, nb[] are
   byte strides, unused dimensions have ne = 1. The struct is transparent:
   read anything, write only `data` of leaf tensors (and `name` through
   tfu_set_name). Computed tensors get `data` from a plan or the reference
   executor. */
typedef struct tfu_tensor tfu_tensor;
struct tfu_tensor {
    tfu_type    type;
    int         n_dims;                 /* 1..4, as created                */
    int64_t     ne[TFU_MAX_DIMS];       /* elements per dimension          */
    size_t      nb[TFU_MAX_DIMS];       /* bytes per step in each dimension */
    void       *data;
    char        name[TFU_MAX_NAME];

    tfu_op      op;
    tfu_tensor *src[TFU_MAX_SRC];
    int32_t     op_params_i[TFU_MAX_OP_PARAMS];
    float       op_params_f[TFU_MAX_OP_PARAMS];
    tfu_tensor *view_src;               /* VIEW/CPY: the tensor aliased    */
    size_t      view_offs;              /* byte offset into view_src        */
    uint32_t    flags;                  /* TFU_FLAG_*                      */
    int32_t     index;                  /* creation index in its context   */
    void       *ref_data;               /* private: reference executor memory */
};

/* --- context -------------------------------------------------------------
   A context holds tensor descriptions (and, unless no_alloc, leaf tensor
   data) in memory the caller owns. tfu_context_size() says how many bytes a
   context for n_tensors tensors with data_bytes of leaf data needs. Running
   out makes builders return NULL with TFU_ERR_NO_MEMORY; the context stays
   usable. The context never frees or grows anything. */
typedef struct tfu_context tfu_context;

typedef struct tfu_context_params {
    void  *mem;       /* caller memory, aligned to 16 bytes at least       */
    size_t mem_size;  /* its size in bytes                                 */
    int    no_alloc;  /* 1: leaf tensors get no data; set t->data yourself  */
} tfu_context_params;

TFU_API size_t       tfu_context_size(size_t n_tensors, size_t data_bytes);
TFU_API tfu_context *tfu_init(tfu_context_params params);  /* NULL if mem too small/NULL */
#ifndef TFU_NO_MALLOC
TFU_API tfu_context *tfu_init_malloc(size_t mem_size, int no_alloc);
#endif
TFU_API void         tfu_free(tfu_context *ctx);   /* frees only what tfu_init_malloc took */
TFU_API void         tfu_reset(tfu_context *ctx);  /* forget every tensor and graph          */
TFU_API size_t       tfu_used_mem(const tfu_context *ctx);

/* The last error of the context: code, message and the tensor it concerns
   (NULL if none). Cleared by tfu_clear_error. */
TFU_API tfu_result        tfu_last_error(const tfu_context *ctx);
TFU_API const char       *tfu_last_error_msg(const tfu_context *ctx);
TFU_API const tfu_tensor *tfu_last_error_tensor(const tfu_context *ctx);
TFU_API void              tfu_clear_error(tfu_context *ctx);

/* --- tensors ------------------------------------------------------------ */
TFU_API tfu_tensor *tfu_new_tensor(tfu_context *ctx, tfu_type type, int n_dims, const int64_t *ne);
TFU_API tfu_tensor *tfu_new_tensor_1d(tfu_context *ctx, tfu_type type, int64_t ne0);
TFU_API tfu_tensor *tfu_new_tensor_2d(tfu_context *ctx, tfu_type type, int64_t ne0, int64_t ne1);
TFU_API tfu_tensor *tfu_new_tensor_3d(tfu_context *ctx, tfu_type type, int64_t ne0, int64_t ne1, int64_t ne2);
TFU_API tfu_tensor *tfu_new_tensor_4d(tfu_context *ctx, tfu_type type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3);
TFU_API tfu_tensor *tfu_set_name(tfu_tensor *t, const char *name);   /* truncates; returns t */
TFU_API tfu_tensor *tfu_set_flags(tfu_tensor *t, uint32_t flags);    /* ORs flags; returns t */
TFU_API tfu_tensor *tfu_set_input(tfu_tensor *t);
TFU_API tfu_tensor *tfu_set_output(tfu_tensor *t);
TFU_API tfu_tensor *tfu_set_keep(tfu_tensor *t);

TFU_API int64_t tfu_nelements(const tfu_tensor *t);
TFU_API int64_t tfu_nrows(const tfu_tensor *t);     /* ne1*ne2*ne3 */
TFU_API size_t  tfu_nbytes(const tfu_tensor *t);    /* bytes spanned, for contiguous: nelements*size */
TFU_API int     tfu_is_contiguous(const tfu_tensor *t);
TFU_API int     tfu_same_shape(const tfu_tensor *a, const tfu_tensor *b);
/* Element access for tests and small programs (any type, any strides). */
TFU_API float   tfu_get_f32(const tfu_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3);
TFU_API void    tfu_set_f32(tfu_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3, float v);
TFU_API float   tfu_f16_to_f32(uint16_t h);
TFU_API uint16_t tfu_f32_to_f16(float f);
TFU_API float   tfu_bf16_to_f32(uint16_t h);
TFU_API uint16_t tfu_f32_to_bf16(float f);

/* --- views (no copy; the result aliases a) -------------------------------
   tfu_view: ne has n_dims sizes; nb the byte strides of dims 1..n_dims-1
   (NULL: contiguous); offset in bytes from a's first element. The view must
   stay inside a's bytes. */
TFU_API tfu_tensor *tfu_view(tfu_context *ctx, tfu_tensor *a, int n_dims, const int64_t *ne, const size_t *nb, size_t offset);
TFU_API tfu_tensor *tfu_view_1d(tfu_context *ctx, tfu_tensor *a, int64_t ne0, size_t offset);
TFU_API tfu_tensor *tfu_view_2d(tfu_context *ctx, tfu_tensor *a, int64_t ne0, int64_t ne1, size_t nb1, size_t offset);
TFU_API tfu_tensor *tfu_view_3d(tfu_context *ctx, tfu_tensor *a, int64_t ne0, int64_t ne1, int64_t ne2, size_t nb1, size_t nb2, size_t offset);
TFU_API tfu_tensor *tfu_reshape(tfu_context *ctx, tfu_tensor *a, int n_dims, const int64_t *ne); /* a contiguous */
TFU_API tfu_tensor *tfu_reshape_2d(tfu_context *ctx, tfu_tensor *a, int64_t ne0, int64_t ne1);
TFU_API tfu_tensor *tfu_reshape_3d(tfu_context *ctx, tfu_tensor *a, int64_t ne0, int64_t ne1, int64_t ne2);
/* permute: source dimension i becomes dimension axis[i] of the result */
TFU_API tfu_tensor *tfu_permute(tfu_context *ctx, tfu_tensor *a, int axis0, int axis1, int axis2, int axis3);
TFU_API tfu_tensor *tfu_transpose(tfu_context *ctx, tfu_tensor *a);   /* swaps dims 0 and 1 */
TFU_API tfu_tensor *tfu_cont(tfu_context *ctx, tfu_tensor *a);        /* contiguous f32 copy */
/* cpy: write a (converted) into the existing tensor dst (same shape); the
   result aliases dst, and using it orders the write before its readers. */
TFU_API tfu_tensor *tfu_cpy(tfu_context *ctx, tfu_tensor *a, tfu_tensor *dst);

/* --- element-wise ops ----------------------------------------------------
   Results are F32. Inputs may be F32, F16 or BF16 and non-contiguous.
   Binary ops broadcast b over a (ggml rule: a->ne[i] % b->ne[i] == 0); the
   result has a's shape. */
TFU_API tfu_tensor *tfu_add(tfu_context *ctx, tfu_tensor *a, tfu_tensor *b);
TFU_API tfu_tensor *tfu_sub(tfu_context *ctx, tfu_tensor *a, tfu_tensor *b);
TFU_API tfu_tensor *tfu_mul(tfu_context *ctx, tfu_tensor *a, tfu_tensor *b);
TFU_API tfu_tensor *tfu_div(tfu_context *ctx, tfu_tensor *a, tfu_tensor *b);
TFU_API tfu_tensor *tfu_scale(tfu_context *ctx, tfu_tensor *a, float s);              /* a*s     */
TFU_API tfu_tensor *tfu_scale_bias(tfu_context *ctx, tfu_tensor *a, float s, float b); /* a*s + b */
TFU_API tfu_tensor *tfu_clamp(tfu_context *ctx, tfu_tensor *a, float lo, float hi);
TFU_API tfu_tensor *tfu_unary(tfu_context *ctx, tfu_tensor *a, tfu_op op);           /* NEG..SILU */
TFU_API tfu_tensor *tfu_neg(tfu_context *ctx, tfu_tensor *a);
TFU_API tfu_tensor *tfu_abs(tfu_context *ctx, tfu_tensor *a);
TFU_API tfu_tensor *tfu_sqr(tfu_context *ctx, tfu_tensor *a);
TFU_API tfu_tensor *tfu_sqrt(tfu_context *ctx, tfu_tensor *a);
TFU_API tfu_tensor *tfu_exp(tfu_context *ctx, tfu_tensor *a);
TFU_API tfu_tensor *tfu_log(tfu_context *ctx, tfu_tensor *a);
TFU_API tfu_tensor *tfu_sin(tfu_context *ctx, tfu_tensor *a);
TFU_API tfu_tensor *tfu_cos(tfu_context *ctx, tfu_tensor *a);
TFU_API tfu_tensor *tfu_tanh(tfu_context *ctx, tfu_tensor *a);
TFU_API tfu_tensor *tfu_sigmoid(tfu_context *ctx, tfu_tensor *a);
TFU_API tfu_tensor *tfu_relu(tfu_context *ctx, tfu_tensor *a);
TFU_API tfu_tensor *tfu_gelu(tfu_context *ctx, tfu_tensor *a);      /* tanh approximation */
TFU_API tfu_tensor *tfu_gelu_erf(tfu_context *ctx, tfu_tensor *a);
TFU_API tfu_tensor *tfu_silu(tfu_context *ctx, tfu_tensor *a);

/* GLU. Fused-row form: a holds rows of 2n values, the first half the gate
   and the second the value (swapped = 1: the other way round); the result
   has rows of n. Split form: gate and value are separate tensors of one
   shape. out = act(gate) * value, act = relu, gelu, gelu_erf or silu. */
TFU_API tfu_tensor *tfu_glu(tfu_context *ctx, tfu_tensor *a, tfu_glu_kind kind, int swapped);
TFU_API tfu_tensor *tfu_glu_split(tfu_context *ctx, tfu_tensor *gate, tfu_tensor *value, tfu_glu_kind kind);
TFU_API tfu_tensor *tfu_reglu(tfu_context *ctx, tfu_tensor *a);
TFU_API tfu_tensor *tfu_geglu(tfu_context *ctx, tfu_tensor *a);
TFU_API tfu_tensor *tfu_swiglu(tfu_context *ctx, tfu_tensor *a);
TFU_API tfu_tensor *tfu_swiglu_split(tfu_context *ctx, tfu_tensor *gate, tfu_tensor *value);

/* --- row ops ------------------------------------------------------------- */
TFU_API tfu_tensor *tfu_rms_norm(tfu_context *ctx, tfu_tensor *a, float eps);  /* x / sqrt(mean(x^2)+eps) */
TFU_API tfu_tensor *tfu_norm(tfu_context *ctx, tfu_tensor *a, float eps);      /* (x-mean) / sqrt(var+eps) */
/* softmax over rows of (a*scale + mask); mask may be NULL, else F32/F16 with
   ne0 == a->ne0 and at least a->ne1 rows; it broadcasts over dims 2 and 3. */
TFU_API tfu_tensor *tfu_soft_max(tfu_context *ctx, tfu_tensor *a);
TFU_API tfu_tensor *tfu_soft_max_ext(tfu_context *ctx, tfu_tensor *a, tfu_tensor *mask, float scale);
/* causal mask helper: a new F32 leaf (n_kv x n_q), 0 where kv <= q + (n_kv - n_q), -inf elsewhere;
   filled now (needs context data: not with no_alloc). */
TFU_API tfu_tensor *tfu_causal_mask(tfu_context *ctx, int64_t n_kv, int64_t n_q);
TFU_API tfu_tensor *tfu_sum_rows(tfu_context *ctx, tfu_tensor *a);   /* ne0 -> 1 */
TFU_API tfu_tensor *tfu_mean(tfu_context *ctx, tfu_tensor *a);       /* ne0 -> 1 */
TFU_API tfu_tensor *tfu_argmax(tfu_context *ctx, tfu_tensor *a);     /* ne0 -> 1, I32 */

/* --- other ops ------------------------------------------------------------
   mul_mat: a is K x M (weights: F32, F16 or BF16), b is K x N (F32); the
   result is M x N F32: out[n][m] = sum_k a[m][k] * b[n][k]. Dimensions 2 and
   3 of a broadcast over b's (b->ne[2] % a->ne[2] == 0). */
TFU_API tfu_tensor *tfu_mul_mat(tfu_context *ctx, tfu_tensor *a, tfu_tensor *b);
/* get_rows: rows of a (any float type) picked by I32 idx (ne0 = n): result
   a->ne0 x n x idx->ne1 F32. */
TFU_API tfu_tensor *tfu_get_rows(tfu_context *ctx, tfu_tensor *a, tfu_tensor *idx);
/* rope: a is head_dim x n_heads x n_tokens (x batch); pos is I32 n_tokens;
   the first n_dims values of every head are rotated. */
TFU_API tfu_tensor *tfu_rope(tfu_context *ctx, tfu_tensor *a, tfu_tensor *pos, int n_dims, tfu_rope_mode mode, float freq_base);
TFU_API tfu_tensor *tfu_concat(tfu_context *ctx, tfu_tensor *a, tfu_tensor *b, int dim);

/* --- graphs ---------------------------------------------------------------
   A graph holds every tensor the results depend on, operations in a
   topological order (sources before users). Use counts: the number of
   (consumer, operand) edges pointing at each tensor inside the graph, kept
   exact by tfu_graph_build_expand. A graph lives in its context's memory. */
typedef struct tfu_graph tfu_graph;

TFU_API tfu_graph  *tfu_graph_new(tfu_context *ctx, int max_nodes);
TFU_API tfu_result  tfu_graph_build_expand(tfu_graph *g, tfu_tensor *result); /* marks result OUTPUT */
TFU_API tfu_graph  *tfu_graph_build(tfu_context *ctx, tfu_tensor *result);    /* new graph, 1 result */
TFU_API int         tfu_graph_n_nodes(const tfu_graph *g);   /* computed tensors (op != NONE), topo order */
TFU_API tfu_tensor *tfu_graph_node(const tfu_graph *g, int i);
TFU_API int         tfu_graph_n_leafs(const tfu_graph *g);   /* op == NONE */
TFU_API tfu_tensor *tfu_graph_leaf(const tfu_graph *g, int i);
TFU_API int         tfu_graph_use_count(const tfu_graph *g, const tfu_tensor *t); /* -1: not in g */
TFU_API int         tfu_graph_contains(const tfu_graph *g, const tfu_tensor *t);
TFU_API tfu_context *tfu_graph_context(const tfu_graph *g);
TFU_API uint64_t    tfu_graph_hash(const tfu_graph *g);  /* structure: ops, shapes, types, flags, params */
TFU_API tfu_tensor *tfu_graph_get_tensor(const tfu_graph *g, const char *name);

/* --- reference executor ---------------------------------------------------
   Runs the graph node by node on the calling thread, plain loops, no fusion:
   the oracle every other path is tested against. Computed tensors without
   memory of their own get it from the context (TFU_ERR_NO_MEMORY if it runs
   out; then nothing is computed). */
TFU_API tfu_result tfu_graph_compute_ref(tfu_graph *g);

/* --- plans ----------------------------------------------------------------
   tfu_plan_compile decides once: fusion groups, stages, memory. tfu_plan_run
   runs it as often as you like; change inputs by writing their data. */
typedef struct tfu_plan tfu_plan;

typedef struct tfu_allocator {
    void *(*alloc_fn)(size_t size, void *user);   /* NULL on failure; 64-byte aligned not required */
    void  (*free_fn)(void *ptr, void *user);
    void  *user;
} tfu_allocator;

/* The caller's parallel-for: run task(task_ctx, i) for i in [0, n) on any
   threads, return when all are done. Called once per stage. */
typedef void (*tfu_parallel_for_fn)(void *user, int n, void (*task)(void *task_ctx, int i), void *task_ctx);

/* Evaluation callback: sees every KEEP or OUTPUT tensor after the stage that
   computes it. Return nonzero to stop the run early (tfu_plan_run returns TFU_OK). */
typedef int (*tfu_eval_fn)(const tfu_tensor *t, void *user);

typedef struct tfu_plan_options {
    int                 n_threads;     /* 1 (default when 0): calling thread only */
    int                 no_fusion;     /* 1: one group per op (also TFU_NO_FUSION=1) */
    tfu_allocator       allocator;     /* plan memory; zero: malloc/free          */
    void               *arena;         /* caller memory for values, or NULL: the  */
    size_t              arena_size;    /* plan allocates tfu_plan_arena_bytes()   */
    tfu_parallel_for_fn parallel_for;  /* caller threads instead of the pool      */
    void               *parallel_for_user;
    tfu_eval_fn         eval_cb;
    void               *eval_user;
} tfu_plan_options;

TFU_API tfu_plan_options tfu_plan_default_options(void);

TFU_API tfu_plan  *tfu_plan_compile(tfu_graph *g, const tfu_plan_options *opts); /* NULL: see ctx error */
TFU_API tfu_result tfu_plan_run(tfu_plan *p);
TFU_API void       tfu_plan_free(tfu_plan *p);
TFU_API tfu_result tfu_plan_last_error(const tfu_plan *p);
/* Rebind an existing plan to a structurally identical graph (same
   tfu_graph_hash): no re-planning. TFU_ERR_STALE if the structure differs. */
TFU_API tfu_result tfu_plan_rebind(tfu_plan *p, tfu_graph *g);
/* Arena: bytes the plan needs for intermediate values (known after
   compile, before any is allocated); bind caller memory before running. */
TFU_API size_t     tfu_plan_arena_bytes(const tfu_plan *p);
TFU_API tfu_result tfu_plan_set_arena(tfu_plan *p, void *mem, size_t size);

/* Plan cache: hands back a compiled plan for a graph of the same structure,
   rebound to the new graph's tensors. Owns its plans. */
typedef struct tfu_plan_cache tfu_plan_cache;
TFU_API tfu_plan_cache *tfu_plan_cache_new(const tfu_plan_options *opts, int capacity);
TFU_API tfu_plan       *tfu_plan_cache_get(tfu_plan_cache *c, tfu_graph *g, int *was_cached);
TFU_API void            tfu_plan_cache_free(tfu_plan_cache *c);

/* Group kinds formed by the fusion pass. */
typedef enum tfu_group_kind {
    TFU_GROUP_ELTWISE = 0,  /* element-wise DAG, one loop over the output    */
    TFU_GROUP_ROW,          /* row reduction with prologue and epilogue      */
    TFU_GROUP_MATMUL,       /* matrix product(s) with an epilogue            */
    TFU_GROUP_OTHER,        /* one op with its own kernel (rope, get_rows...) */
    TFU_GROUP_KIND_COUNT
} tfu_group_kind;

/* What the plan decided, for reports and tests. */
typedef struct tfu_plan_stats {
    int    n_nodes;          /* computed nodes in the graph (views included) */
    int    n_groups;
    int    n_groups_kind[TFU_GROUP_KIND_COUNT];
    int    n_nodes_fused;    /* nodes living in a group of more than one op  */
    int    n_values_elided;  /* values that got no memory (live in a group)  */
    int    n_stages;
    int    n_barriers;       /* thread barriers per run = stages - 1         */
    size_t arena_bytes;
    size_t arena_bytes_unfused; /* same graph planned with fusion off        */
    size_t value_bytes_total;   /* sum of all computed values' sizes         */
} tfu_plan_stats;

TFU_API tfu_plan_stats tfu_plan_get_stats(const tfu_plan *p);
TFU_API int  tfu_plan_n_groups(const tfu_plan *p);
TFU_API int  tfu_plan_group_of(const tfu_plan *p, const tfu_tensor *t); /* -1: leaf or not in plan */
TFU_API tfu_group_kind tfu_plan_group_kind(const tfu_plan *p, int group);
TFU_API int  tfu_plan_group_n_nodes(const tfu_plan *p, int group);
TFU_API int  tfu_plan_group_stage(const tfu_plan *p, int group);
TFU_API int  tfu_plan_is_materialized(const tfu_plan *p, const tfu_tensor *t);
/* Byte range of a materialised value in the arena; -1 if it has none. */
TFU_API int64_t tfu_plan_value_offset(const tfu_plan *p, const tfu_tensor *t);
/* Stage range [first, last] during which t's memory is in use. */
TFU_API int  tfu_plan_value_lifetime(const tfu_plan *p, const tfu_tensor *t, int *first, int *last);
/* Report as text (a table) or Graphviz DOT into buf; returns the length the
   full report needs (like snprintf). */
TFU_API size_t tfu_plan_report(const tfu_plan *p, char *buf, size_t size);
TFU_API size_t tfu_plan_dot(const tfu_plan *p, char *buf, size_t size);

#ifdef TFU_SELFTEST
TFU_API int tfu_selftest(void);   /* number of failures */
#endif

#ifdef __cplusplus
}
#endif
#endif /* TENSORFUSE_H */

/* implementation below; stop here if you only need the API ================ */

#ifdef TFU_IMPLEMENTATION
#ifndef TFU_IMPLEMENTATION_DONE
#define TFU_IMPLEMENTATION_DONE

#include <math.h>
#include <string.h>
#include <float.h>
#include <limits.h>
#ifndef TFU_NO_MALLOC
#include <stdlib.h>
#endif
#ifndef TFU_NO_STDIO
#include <stdio.h>
#endif
#ifndef TFU_ASSERT
#include <assert.h>
#define TFU_ASSERT(x) assert(x)
#endif
#if !defined(TFU_NO_THREADS)
#include <pthread.h>
#include <sched.h>
#endif
#if !defined(TFU_NO_SIMD) && defined(__AVX512F__)
#include <immintrin.h>
#define TFU_X_AVX512 1
#elif !defined(TFU_NO_SIMD) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define TFU_X_AVX2 1
#elif !defined(TFU_NO_SIMD) && (defined(__ARM_NEON) || defined(__aarch64__))
#include <arm_neon.h>
#define TFU_X_NEON 1
#endif

#ifdef __cplusplus
#define TFU_X_CAST(T, x) static_cast<T>(x)
#else
#define TFU_X_CAST(T, x) ((T)(x))
#endif

/* >>base ================================================================= */

#define TFU_X_ALIGN 64
#define TFU_X_MSG 192

struct tfu_context {
    unsigned char *mem;
    size_t         size, used;
    int            no_alloc, owned;
    int            n_tensors;
    tfu_result     err;
    const tfu_tensor *err_tensor;
    char           msg[TFU_X_MSG];
};

static const char *const tfu_x_result_msgs[] = {
#define TFU_X_MSG_STR(name, msg) msg,
    TFU_RESULT_LIST(TFU_X_MSG_STR)
#undef TFU_X_MSG_STR
};

TFU_API const char *tfu_result_str(tfu_result r) {
    if ((int)r < 0 || r >= TFU_RESULT_COUNT) return "unknown result";
    return tfu_x_result_msgs[r];
}

static const char *const tfu_x_op_names[] = {
#define TFU_X_OP_STR(name) #name,
    TFU_OP_LIST(TFU_X_OP_STR)
#undef TFU_X_OP_STR
};

TFU_API const char *tfu_op_name(tfu_op op) {
    if ((int)op < 0 || op >= TFU_OP_COUNT) return "?";
    return tfu_x_op_names[op];
}

TFU_API const char *tfu_type_name(tfu_type t) {
    switch (t) {
    case TFU_F32: return "f32"; case TFU_F16: return "f16";
    case TFU_BF16: return "bf16"; case TFU_I32: return "i32";
    default: return "?";
    }
}

TFU_API size_t tfu_type_size(tfu_type t) {
    switch (t) {
    case TFU_F32: case TFU_I32: return 4;
    case TFU_F16: case TFU_BF16: return 2;
    default: return 0;
    }
}

/* Message building without stdio: append strings and integers. */
typedef struct tfu_x_buf { char *p; size_t size, len; } tfu_x_buf;

static void tfu_x_cat(tfu_x_buf *b, const char *s) {
    while (*s) {
        if (b->len + 1 < b->size) b->p[b->len] = *s;
        b->len++; s++;
    }
    if (b->size) b->p[b->len < b->size ? b->len : b->size - 1] = 0;
}

static void tfu_x_cati(tfu_x_buf *b, int64_t v) {
    char tmp[24]; int n = 0; uint64_t u;
    if (v < 0) { tfu_x_cat(b, "-"); u = (uint64_t)0 - (uint64_t)v; } else u = (uint64_t)v;
    do { tmp[n++] = (char)('0' + (int)(u % 10)); u /= 10; } while (u);
    while (n) { char c[2]; c[0] = tmp[--n]; c[1] = 0; tfu_x_cat(b, c); }
}

static void tfu_x_catf(tfu_x_buf *b, double v, int decimals) { /* fixed point */
    int64_t ip; double fp; int i;
    if (v != v) { tfu_x_cat(b, "nan"); return; }
    if (v < 0) { tfu_x_cat(b, "-"); v = -v; }
    if (v > 9e18) { tfu_x_cat(b, "inf"); return; }
    for (i = 0, fp = 0.5; i < decimals; i++) fp /= 10;
    v += fp;
    ip = (int64_t)v; tfu_x_cati(b, ip);
    if (decimals > 0) {
        tfu_x_cat(b, ".");
        fp = v - (double)ip;
        for (i = 0; i < decimals; i++) { char c[2]; fp *= 10; c[0] = (char)('0' + (int)fp % 10); c[1] = 0; tfu_x_cat(b, c); fp -= (int)fp; }
    }
}

static void tfu_x_catshape(tfu_x_buf *b, const tfu_tensor *t) {
    int i;
    tfu_x_cat(b, "[");
    for (i = 0; i < TFU_MAX_DIMS; i++) { if (i) tfu_x_cat(b, ","); tfu_x_cati(b, t->ne[i]); }
    tfu_x_cat(b, "]");
}

/* Records an error: "<op>: <what> <shape a> <shape b>". Keeps the first
   error until tfu_clear_error, so a chain of NULLs reports its cause. */
static void tfu_x_err(tfu_context *ctx, tfu_result code, const tfu_tensor *t, const char *op,
                      const char *what, const tfu_tensor *a, const tfu_tensor *b) {
    tfu_x_buf mb;
    if (!ctx || ctx->err != TFU_OK) return;
    ctx->err = code; ctx->err_tensor = t;
    mb.p = ctx->msg; mb.size = sizeof ctx->msg; mb.len = 0; ctx->msg[0] = 0;
    if (op) { tfu_x_cat(&mb, op); tfu_x_cat(&mb, ": "); }
    tfu_x_cat(&mb, what ? what : tfu_result_str(code));
    if (a) { tfu_x_cat(&mb, " "); tfu_x_catshape(&mb, a); }
    if (b) { tfu_x_cat(&mb, " and "); tfu_x_catshape(&mb, b); }
}

TFU_API tfu_result tfu_last_error(const tfu_context *ctx) { return ctx ? ctx->err : TFU_ERR_NULL_ARG; }
TFU_API const char *tfu_last_error_msg(const tfu_context *ctx) {
    if (!ctx) return "context is NULL";
    return ctx->err == TFU_OK ? "ok" : ctx->msg;
}
TFU_API const tfu_tensor *tfu_last_error_tensor(const tfu_context *ctx) { return ctx ? ctx->err_tensor : NULL; }
TFU_API void tfu_clear_error(tfu_context *ctx) {
    if (!ctx) return;
    ctx->err = TFU_OK; ctx->err_tensor = NULL; ctx->msg[0] = 0;
}

/* Checked size arithmetic. */
static int tfu_x_mul_ok(size_t a, size_t b, size_t *r) {
    if (a && b > SIZE_MAX / a) return 0;
    *r = a * b; return 1;
}
static int tfu_x_add_ok(size_t a, size_t b, size_t *r) {
    if (b > SIZE_MAX - a) return 0;
    *r = a + b; return 1;
}
static size_t tfu_x_align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* Bump allocation from the context; NULL (and an error) when exhausted. */
static void *tfu_x_ctx_alloc(tfu_context *ctx, size_t n, const char *what) {
    size_t start = tfu_x_align_up(ctx->used, TFU_X_ALIGN), end;
    uintptr_t base = (uintptr_t)ctx->mem;
    /* align the address, not only the offset */
    start = tfu_x_align_up((size_t)(base + ctx->used), TFU_X_ALIGN) - (size_t)base;
    if (!tfu_x_add_ok(start, n, &end) || end > ctx->size) {
        tfu_x_err(ctx, TFU_ERR_NO_MEMORY, NULL, what, "context memory exhausted", NULL, NULL);
        return NULL;
    }
    ctx->used = end;
    return ctx->mem + start;
}

#define TFU_X_CTX_HEADER (sizeof(tfu_context) + TFU_X_ALIGN)
#define TFU_X_GRAPH_PER_NODE (2 * sizeof(void *) + 4 * (sizeof(void *) + 2 * sizeof(int32_t)))

TFU_API size_t tfu_context_size(size_t n_tensors, size_t data_bytes) {
    size_t per = tfu_x_align_up(sizeof(tfu_tensor), TFU_X_ALIGN) + TFU_X_ALIGN + TFU_X_GRAPH_PER_NODE;
    size_t r, t;
    if (!tfu_x_mul_ok(n_tensors, per, &t)) return SIZE_MAX;
    if (!tfu_x_add_ok(t, data_bytes, &r)) return SIZE_MAX;
    if (!tfu_x_add_ok(r, TFU_X_CTX_HEADER + 256 + 2 * TFU_X_ALIGN, &r)) return SIZE_MAX;
    return r;
}

TFU_API tfu_context *tfu_init(tfu_context_params params) {
    tfu_context *ctx;
    uintptr_t p = (uintptr_t)params.mem, a;
    if (!params.mem || params.mem_size < TFU_X_CTX_HEADER + 256) return NULL;
    a = (p + 15) & ~(uintptr_t)15;
    ctx = (tfu_context *)(void *)a;
    memset(ctx, 0, sizeof *ctx);
    ctx->mem = (unsigned char *)params.mem;
    ctx->size = params.mem_size;
    ctx->used = (size_t)(a - p) + sizeof *ctx;
    ctx->no_alloc = params.no_alloc;
    return ctx;
}

#ifndef TFU_NO_MALLOC
TFU_API tfu_context *tfu_init_malloc(size_t mem_size, int no_alloc) {
    tfu_context_params pr;
    tfu_context *ctx;
    if (mem_size < TFU_X_CTX_HEADER + 256) mem_size = TFU_X_CTX_HEADER + 256;
    pr.mem = malloc(mem_size); pr.mem_size = mem_size; pr.no_alloc = no_alloc;
    if (!pr.mem) return NULL;
    ctx = tfu_init(pr);
    if (!ctx) { free(pr.mem); return NULL; }
    ctx->owned = 1;
    return ctx;
}
#endif

TFU_API void tfu_free(tfu_context *ctx) {
    if (!ctx) return;
#ifndef TFU_NO_MALLOC
    if (ctx->owned) free(ctx->mem);
#endif
}

TFU_API void tfu_reset(tfu_context *ctx) {
    if (!ctx) return;
    ctx->used = (size_t)((unsigned char *)ctx - ctx->mem) + sizeof *ctx;
    ctx->n_tensors = 0;
    tfu_clear_error(ctx);
}

TFU_API size_t tfu_used_mem(const tfu_context *ctx) { return ctx ? ctx->used : 0; }

/* >>tensor =============================================================== */

/* f16 <-> f32, IEEE binary16, round to nearest even */
TFU_API float tfu_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu, bits;
    float f;
    if (exp == 0x1F) bits = sign | 0x7F800000u | (man << 13);
    else if (exp) bits = sign | ((exp + 112) << 23) | (man << 13);
    else if (man) { /* subnormal: value = man * 2^-24 */
        f = (float)man * 5.9604644775390625e-8f;
        return sign ? -f : f;
    } else bits = sign;
    memcpy(&f, &bits, 4);
    return f;
}

TFU_API uint16_t tfu_f32_to_f16(float f) {
    uint32_t x, sign, absx;
    memcpy(&x, &f, 4);
    sign = (x >> 16) & 0x8000u; absx = x & 0x7FFFFFFFu;
    if (absx >= 0x7F800000u) return (uint16_t)(sign | 0x7C00u | (absx > 0x7F800000u ? 0x200u : 0));
    if (absx >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);          /* rounds to inf */
    if (absx < 0x38800000u) {                                           /* subnormal or zero */
        float a; uint32_t m;
        memcpy(&a, &absx, 4);
        m = (uint32_t)lrintf(a * 16777216.0f);                          /* 2^24, nearest even */
        return (uint16_t)(sign | m);
    }
    {
        uint32_t r = absx + 0xFFFu + ((absx >> 13) & 1u);                 /* nearest even */
        return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
    }
}

TFU_API float tfu_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16; float f;
    memcpy(&f, &bits, 4);
    return f;
}

TFU_API uint16_t tfu_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

static float tfu_x_ld(tfu_type type, const void *p) {
    switch (type) {
    case TFU_F32: { float v; memcpy(&v, p, 4); return v; }
    case TFU_F16: { uint16_t h; memcpy(&h, p, 2); return tfu_f16_to_f32(h); }
    case TFU_BF16: { uint16_t h; memcpy(&h, p, 2); return tfu_bf16_to_f32(h); }
    case TFU_I32: { int32_t v; memcpy(&v, p, 4); return (float)v; }
    default: return 0;
    }
}

static void tfu_x_st(tfu_type type, void *p, float v) {
    switch (type) {
    case TFU_F32: memcpy(p, &v, 4); break;
    case TFU_F16: { uint16_t h = tfu_f32_to_f16(v); memcpy(p, &h, 2); } break;
    case TFU_BF16: { uint16_t h = tfu_f32_to_bf16(v); memcpy(p, &h, 2); } break;
    case TFU_I32: { int32_t i = (int32_t)v; memcpy(p, &i, 4); } break;
    default: break;
    }
}

static size_t tfu_x_offs(const tfu_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
    return (size_t)i0 * t->nb[0] + (size_t)i1 * t->nb[1] + (size_t)i2 * t->nb[2] + (size_t)i3 * t->nb[3];
}

TFU_API float tfu_get_f32(const tfu_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
    if (!t || !t->data) return NAN;
    return tfu_x_ld(t->type, (const char *)t->data + tfu_x_offs(t, i0, i1, i2, i3));
}

TFU_API void tfu_set_f32(tfu_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3, float v) {
    if (!t || !t->data) return;
    tfu_x_st(t->type, (char *)t->data + tfu_x_offs(t, i0, i1, i2, i3), v);
}

TFU_API int64_t tfu_nelements(const tfu_tensor *t) {
    return t ? t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3] : 0;
}
TFU_API int64_t tfu_nrows(const tfu_tensor *t) { return t ? t->ne[1] * t->ne[2] * t->ne[3] : 0; }

TFU_API size_t tfu_nbytes(const tfu_tensor *t) {
    size_t n; int i;
    if (!t) return 0;
    n = tfu_type_size(t->type);
    for (i = 0; i < TFU_MAX_DIMS; i++) n += (size_t)(t->ne[i] - 1) * t->nb[i];
    return n;
}

TFU_API int tfu_is_contiguous(const tfu_tensor *t) {
    size_t s; int i;
    if (!t) return 0;
    s = tfu_type_size(t->type);
    for (i = 0; i < TFU_MAX_DIMS; i++) {
        if (t->ne[i] != 1 && t->nb[i] != s) return 0;
        s *= (size_t)t->ne[i];
    }
    return 1;
}

TFU_API int tfu_same_shape(const tfu_tensor *a, const tfu_tensor *b) {
    int i;
    if (!a || !b) return 0;
    for (i = 0; i < TFU_MAX_DIMS; i++) if (a->ne[i] != b->ne[i]) return 0;
    return 1;
}

static int tfu_x_is_float(tfu_type t) { return t == TFU_F32 || t == TFU_F16 || t == TFU_BF16; }

/* Validates a shape and computes contiguous strides; returns the byte size
   through *bytes. */
static tfu_result tfu_x_shape(tfu_type type, int n_dims, const int64_t *ne, int64_t *ne_out, size_t *nb, size_t *bytes) {
    size_t s;
    int i;
    if ((int)type < 0 || type >= TFU_TYPE_COUNT) return TFU_ERR_TYPE;
    if (n_dims < 1 || n_dims > TFU_MAX_DIMS || !ne) return TFU_ERR_INVALID_ARG;
    s = tfu_type_size(type);
    for (i = 0; i < TFU_MAX_DIMS; i++) {
        int64_t n = i < n_dims ? ne[i] : 1;
        if (n <= 0) return TFU_ERR_INVALID_ARG;
        if ((uint64_t)n > (uint64_t)INT64_MAX / 2) return TFU_ERR_OVERFLOW;
        ne_out[i] = n; nb[i] = s;
        if (!tfu_x_mul_ok(s, (size_t)n, &s) || s > (size_t)INT64_MAX / 4) return TFU_ERR_OVERFLOW;
    }
    *bytes = s;
    return TFU_OK;
}

/* Creates a tensor description (and data when with_data). */
static tfu_tensor *tfu_x_new(tfu_context *ctx, tfu_type type, int n_dims, const int64_t *ne, int with_data, const char *op) {
    int64_t ne4[TFU_MAX_DIMS]; size_t nb[TFU_MAX_DIMS], bytes = 0;
    tfu_result r;
    tfu_tensor *t;
    void *data = NULL;
    if (!ctx) return NULL;
    r = tfu_x_shape(type, n_dims, ne, ne4, nb, &bytes);
    if (r != TFU_OK) {
        tfu_x_err(ctx, r, NULL, op, r == TFU_ERR_INVALID_ARG ? "sizes must be >= 1 and n_dims 1..4" :
                  r == TFU_ERR_OVERFLOW ? "tensor size overflows" : "invalid type", NULL, NULL);
        return NULL;
    }
    t = (tfu_tensor *)tfu_x_ctx_alloc(ctx, sizeof(tfu_tensor), op);
    if (!t) return NULL;
    if (with_data && !ctx->no_alloc) {
        data = tfu_x_ctx_alloc(ctx, bytes, op);
        if (!data) { ctx->used = (size_t)((unsigned char *)t - ctx->mem); return NULL; }
    }
    memset(t, 0, sizeof *t);
    t->type = type; t->n_dims = n_dims; t->data = data;
    memcpy(t->ne, ne4, sizeof ne4); memcpy(t->nb, nb, sizeof nb);
    t->index = ctx->n_tensors++;
    return t;
}

TFU_API tfu_tensor *tfu_new_tensor(tfu_context *ctx, tfu_type type, int n_dims, const int64_t *ne) {
    return tfu_x_new(ctx, type, n_dims, ne, 1, "new_tensor");
}
TFU_API tfu_tensor *tfu_new_tensor_1d(tfu_context *ctx, tfu_type type, int64_t ne0) {
    int64_t ne[1]; ne[0] = ne0;
    return tfu_new_tensor(ctx, type, 1, ne);
}
TFU_API tfu_tensor *tfu_new_tensor_2d(tfu_context *ctx, tfu_type type, int64_t ne0, int64_t ne1) {
    int64_t ne[2]; ne[0] = ne0; ne[1] = ne1;
    return tfu_new_tensor(ctx, type, 2, ne);
}
TFU_API tfu_tensor *tfu_new_tensor_3d(tfu_context *ctx, tfu_type type, int64_t ne0, int64_t ne1, int64_t ne2) {
    int64_t ne[3]; ne[0] = ne0; ne[1] = ne1; ne[2] = ne2;
    return tfu_new_tensor(ctx, type, 3, ne);
}
TFU_API tfu_tensor *tfu_new_tensor_4d(tfu_context *ctx, tfu_type type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3) {
    int64_t ne[4]; ne[0] = ne0; ne[1] = ne1; ne[2] = ne2; ne[3] = ne3;
    return tfu_new_tensor(ctx, type, 4, ne);
}

TFU_API tfu_tensor *tfu_set_name(tfu_tensor *t, const char *name) {
    size_t i;
    if (!t) return NULL;
    for (i = 0; name && name[i] && i + 1 < TFU_MAX_NAME; i++) t->name[i] = name[i];
    t->name[i] = 0;
    return t;
}
TFU_API tfu_tensor *tfu_set_flags(tfu_tensor *t, uint32_t flags) { if (t) t->flags |= flags; return t; }
TFU_API tfu_tensor *tfu_set_input(tfu_tensor *t) { return tfu_set_flags(t, TFU_FLAG_INPUT); }
TFU_API tfu_tensor *tfu_set_output(tfu_tensor *t) { return tfu_set_flags(t, TFU_FLAG_OUTPUT); }
TFU_API tfu_tensor *tfu_set_keep(tfu_tensor *t) { return tfu_set_flags(t, TFU_FLAG_KEEP); }

/* >>ops ================================================================== */

/* NULL in, NULL out: a builder given a NULL operand reports it once (unless
   an earlier error explains it) and returns NULL. */
static int tfu_x_null(tfu_context *ctx, const char *op, const tfu_tensor *a, const tfu_tensor *b, int need_b) {
    if (!ctx) return 1;
    if (!a || (need_b && !b)) { tfu_x_err(ctx, TFU_ERR_NULL_ARG, NULL, op, "operand is NULL", NULL, NULL); return 1; }
    return 0;
}

/* A computed tensor: op, sources, F32 unless said, contiguous. */
static tfu_tensor *tfu_x_op(tfu_context *ctx, tfu_op op, tfu_type type, const int64_t *ne,
                            tfu_tensor *a, tfu_tensor *b, tfu_tensor *c) {
    tfu_tensor *t = tfu_x_new(ctx, type, 4, ne, 0, tfu_op_name(op));
    if (!t) return NULL;
    t->op = op; t->src[0] = a; t->src[1] = b; t->src[2] = c;
    t->n_dims = a ? a->n_dims : 1;
    return t;
}

static int tfu_x_can_repeat(const tfu_tensor *b, const tfu_tensor *a) { /* b broadcasts over a */
    int i;
    for (i = 0; i < TFU_MAX_DIMS; i++) if (a->ne[i] % b->ne[i] != 0) return 0;
    return 1;
}

static tfu_tensor *tfu_x_binary(tfu_context *ctx, tfu_op op, tfu_tensor *a, tfu_tensor *b) {
    const char *name = tfu_op_name(op);
    if (tfu_x_null(ctx, name, a, b, 1)) return NULL;
    if (!tfu_x_is_float(a->type) || !tfu_x_is_float(b->type)) {
        tfu_x_err(ctx, TFU_ERR_TYPE, a, name, "operands must be f32, f16 or bf16", NULL, NULL); return NULL;
    }
    if (!tfu_x_can_repeat(b, a)) {
        tfu_x_err(ctx, TFU_ERR_SHAPE, a, name, "b does not broadcast over a:", a, b); return NULL;
    }
    return tfu_x_op(ctx, op, TFU_F32, a->ne, a, b, NULL);
}

TFU_API tfu_tensor *tfu_add(tfu_context *ctx, tfu_tensor *a, tfu_tensor *b) { return tfu_x_binary(ctx, TFU_OP_ADD, a, b); }
TFU_API tfu_tensor *tfu_sub(tfu_context *ctx, tfu_tensor *a, tfu_tensor *b) { return tfu_x_binary(ctx, TFU_OP_SUB, a, b); }
TFU_API tfu_tensor *tfu_mul(tfu_context *ctx, tfu_tensor *a, tfu_tensor *b) { return tfu_x_binary(ctx, TFU_OP_MUL, a, b); }
TFU_API tfu_tensor *tfu_div(tfu_context *ctx, tfu_tensor *a, tfu_tensor *b) { return tfu_x_binary(ctx, TFU_OP_DIV, a, b); }

static int tfu_x_is_unary(tfu_op op) { return op >= TFU_OP_NEG && op <= TFU_OP_SILU; }

static tfu_tensor *tfu_x_unary(tfu_context *ctx, tfu_op op, tfu_tensor *a, float p0, float p1) {
    const char *name = tfu_op_name(op);
    tfu_tensor *t;
    if (tfu_x_null(ctx, name, a, NULL, 0)) return NULL;
    if (!tfu_x_is_float(a->type)) { tfu_x_err(ctx, TFU_ERR_TYPE, a, name, "operand must be f32, f16 or bf16", NULL, NULL); return NULL; }
    t = tfu_x_op(ctx, op, TFU_F32, a->ne, a, NULL, NULL);
    if (t) { t->op_params_f[0] = p0; t->op_params_f[1] = p1; }
    return t;
}

TFU_API tfu_tensor *tfu_scale(tfu_context *ctx, tfu_tensor *a, float s) { return tfu_x_unary(ctx, TFU_OP_SCALE, a, s, 0.0f); }
TFU_API tfu_tensor *tfu_scale_bias(tfu_context *ctx, tfu_tensor *a, float s, float b) { return tfu_x_unary(ctx, TFU_OP_SCALE, a, s, b); }
TFU_API tfu_tensor *tfu_clamp(tfu_context *ctx, tfu_tensor *a, float lo, float hi) {
    if (ctx && a && !(lo <= hi)) { tfu_x_err(ctx, TFU_ERR_INVALID_ARG, a, "CLAMP", "needs lo <= hi", NULL, NULL); return NULL; }
    return tfu_x_unary(ctx, TFU_OP_CLAMP, a, lo, hi);
}
TFU_API tfu_tensor *tfu_unary(tfu_context *ctx, tfu_tensor *a, tfu_op op) {
    if (ctx && !tfu_x_is_unary(op)) { tfu_x_err(ctx, TFU_ERR_INVALID_ARG, a, "unary", "op is not a unary op", NULL, NULL); return NULL; }
    return tfu_x_unary(ctx, op, a, 0.0f, 0.0f);
}
TFU_API tfu_tensor *tfu_neg(tfu_context *ctx, tfu_tensor *a) { return tfu_unary(ctx, a, TFU_OP_NEG); }
TFU_API tfu_tensor *tfu_abs(tfu_context *ctx, tfu_tensor *a) { return tfu_unary(ctx, a, TFU_OP_ABS); }
TFU_API tfu_tensor *tfu_sqr(tfu_context *ctx, tfu_tensor *a) { return tfu_unary(ctx, a, TFU_OP_SQR); }
TFU_API tfu_tensor *tfu_sqrt(tfu_context *ctx, tfu_tensor *a) { return tfu_unary(ctx, a, TFU_OP_SQRT); }
TFU_API tfu_tensor *tfu_exp(tfu_context *ctx, tfu_tensor *a) { return tfu_unary(ctx, a, TFU_OP_EXP); }
TFU_API tfu_tensor *tfu_log(tfu_context *ctx, tfu_tensor *a) { return tfu_unary(ctx, a, TFU_OP_LOG); }
TFU_API tfu_tensor *tfu_sin(tfu_context *ctx, tfu_tensor *a) { return tfu_unary(ctx, a, TFU_OP_SIN); }
TFU_API tfu_tensor *tfu_cos(tfu_context *ctx, tfu_tensor *a) { return tfu_unary(ctx, a, TFU_OP_COS); }
TFU_API tfu_tensor *tfu_tanh(tfu_context *ctx, tfu_tensor *a) { return tfu_unary(ctx, a, TFU_OP_TANH); }
TFU_API tfu_tensor *tfu_sigmoid(tfu_context *ctx, tfu_tensor *a) { return tfu_unary(ctx, a, TFU_OP_SIGMOID); }
TFU_API tfu_tensor *tfu_relu(tfu_context *ctx, tfu_tensor *a) { return tfu_unary(ctx, a, TFU_OP_RELU); }
TFU_API tfu_tensor *tfu_gelu(tfu_context *ctx, tfu_tensor *a) { return tfu_unary(ctx, a, TFU_OP_GELU); }
TFU_API tfu_tensor *tfu_gelu_erf(tfu_context *ctx, tfu_tensor *a) { return tfu_unary(ctx, a, TFU_OP_GELU_ERF); }
TFU_API tfu_tensor *tfu_silu(tfu_context *ctx, tfu_tensor *a) { return tfu_unary(ctx, a, TFU_OP_SILU); }

/* GLU: op_params_i[0] = kind, [1] = swapped, [2] = 1 for the split form. */
TFU_API tfu_tensor *tfu_glu(tfu_context *ctx, tfu_tensor *a, tfu_glu_kind kind, int swapped) {
    int64_t ne[TFU_MAX_DIMS];
    tfu_tensor *t;
    if (tfu_x_null(ctx, "GLU", a, NULL, 0)) return NULL;
    if ((int)kind < 0 || kind > TFU_GLU_SWIGLU) { tfu_x_err(ctx, TFU_ERR_INVALID_ARG, a, "GLU", "unknown GLU kind", NULL, NULL); return NULL; }
    if (!tfu_x_is_float(a->type)) { tfu_x_err(ctx, TFU_ERR_TYPE, a, "GLU", "operand must be f32, f16 or bf16", NULL, NULL); return NULL; }
    if (a->ne[0] % 2) { tfu_x_err(ctx, TFU_ERR_SHAPE, a, "GLU", "row length must be even:", a, NULL); return NULL; }
    memcpy(ne, a->ne, sizeof ne); ne[0] /= 2;
    t = tfu_x_op(ctx, TFU_OP_GLU, TFU_F32, ne, a, NULL, NULL);
    if (t) { t->op_params_i[0] = (int32_t)kind; t->op_params_i[1] = swapped ? 1 : 0; }
    return t;
}

TFU_API tfu_tensor *tfu_glu_split(tfu_context *ctx, tfu_tensor *gate, tfu_tensor *value, tfu_glu_kind kind) {
    tfu_tensor *t;
    if (tfu_x_null(ctx, "GLU", gate, value, 1)) return NULL;
    if ((int)kind < 0 || kind > TFU_GLU_SWIGLU) { tfu_x_err(ctx, TFU_ERR_INVALID_ARG, gate, "GLU", "unknown GLU kind", NULL, NULL); return NULL; }
    if (!tfu_x_is_float(gate->type) || !tfu_x_is_float(value->type)) { tfu_x_err(ctx, TFU_ERR_TYPE, gate, "GLU", "operands must be f32, f16 or bf16", NULL, NULL); return NULL; }
    if (!tfu_same_shape(gate, value)) { tfu_x_err(ctx, TFU_ERR_SHAPE, gate, "GLU", "gate and value differ:", gate, value); return NULL; }
    t = tfu_x_op(ctx, TFU_OP_GLU, TFU_F32, gate->ne, gate, value, NULL);
    if (t) { t->op_params_i[0] = (int32_t)kind; t->op_params_i[2] = 1; }
    return t;
}
TFU_API tfu_tensor *tfu_reglu(tfu_context *ctx, tfu_tensor *a) { return tfu_glu(ctx, a, TFU_GLU_REGLU, 0); }
TFU_API tfu_tensor *tfu_geglu(tfu_context *ctx, tfu_tensor *a) { return tfu_glu(ctx, a, TFU_GLU_GEGLU, 0); }
TFU_API tfu_tensor *tfu_swiglu(tfu_context *ctx, tfu_tensor *a) { return tfu_glu(ctx, a, TFU_GLU_SWIGLU, 0); }
TFU_API tfu_tensor *tfu_swiglu_split(tfu_context *ctx, tfu_tensor *g, tfu_tensor *v) { return tfu_glu_split(ctx, g, v, TFU_GLU_SWIGLU); }

static tfu_tensor *tfu_x_rowop(tfu_context *ctx, tfu_op op, tfu_tensor *a, float eps) {
    tfu_tensor *t;
    const char *name = tfu_op_name(op);
    if (tfu_x_null(ctx, name, a, NULL, 0)) return NULL;
    if (!tfu_x_is_float(a->type)) { tfu_x_err(ctx, TFU_ERR_TYPE, a, name, "operand must be f32, f16 or bf16", NULL, NULL); return NULL; }
    if (!(eps >= 0.0f)) { tfu_x_err(ctx, TFU_ERR_INVALID_ARG, a, name, "eps must be >= 0", NULL, NULL); return NULL; }
    t = tfu_x_op(ctx, op, TFU_F32, a->ne, a, NULL, NULL);
    if (t) t->op_params_f[0] = eps;
    return t;
}
TFU_API tfu_tensor *tfu_rms_norm(tfu_context *ctx, tfu_tensor *a, float eps) { return tfu_x_rowop(ctx, TFU_OP_RMS_NORM, a, eps); }
TFU_API tfu_tensor *tfu_norm(tfu_context *ctx, tfu_tensor *a, float eps) { return tfu_x_rowop(ctx, TFU_OP_NORM, a, eps); }

TFU_API tfu_tensor *tfu_soft_max_ext(tfu_context *ctx, tfu_tensor *a, tfu_tensor *mask, float scale) {
    tfu_tensor *t;
    if (tfu_x_null(ctx, "SOFT_MAX", a, NULL, 0)) return NULL;
    if (!tfu_x_is_float(a->type) || (mask && mask->type != TFU_F32 && mask->type != TFU_F16)) {
        tfu_x_err(ctx, TFU_ERR_TYPE, a, "SOFT_MAX", "a must be float, mask f32 or f16", NULL, NULL); return NULL;
    }
    if (mask && (mask->ne[0] != a->ne[0] || mask->ne[1] < a->ne[1] ||
                 a->ne[2] % mask->ne[2] || a->ne[3] % mask->ne[3])) {
        tfu_x_err(ctx, TFU_ERR_SHAPE, a, "SOFT_MAX", "mask needs a's row length, >= its rows, broadcastable dims 2,3:", a, mask); return NULL;
    }
    t = tfu_x_op(ctx, TFU_OP_SOFT_MAX, TFU_F32, a->ne, a, mask, NULL);
    if (t) t->op_params_f[0] = scale;
    return t;
}
TFU_API tfu_tensor *tfu_soft_max(tfu_context *ctx, tfu_tensor *a) { return tfu_soft_max_ext(ctx, a, NULL, 1.0f); }

TFU_API tfu_tensor *tfu_causal_mask(tfu_context *ctx, int64_t n_kv, int64_t n_q) {
    tfu_tensor *t;
    int64_t i, j;
    if (!ctx) return NULL;
    if (ctx->no_alloc) { tfu_x_err(ctx, TFU_ERR_INVALID_ARG, NULL, "causal_mask", "needs a context with data (no_alloc is set)", NULL, NULL); return NULL; }
    if (n_q > n_kv) { tfu_x_err(ctx, TFU_ERR_INVALID_ARG, NULL, "causal_mask", "n_q must be <= n_kv", NULL, NULL); return NULL; }
    t = tfu_new_tensor_2d(ctx, TFU_F32, n_kv, n_q);
    if (!t) return NULL;
    for (j = 0; j < n_q; j++)
        for (i = 0; i < n_kv; i++)
            ((float *)t->data)[j * n_kv + i] = i <= j + (n_kv - n_q) ? 0.0f : -INFINITY;
    return tfu_set_name(t, "causal_mask");
}

static tfu_tensor *tfu_x_reduce(tfu_context *ctx, tfu_op op, tfu_tensor *a) {
    int64_t ne[TFU_MAX_DIMS];
    const char *name = tfu_op_name(op);
    if (tfu_x_null(ctx, name, a, NULL, 0)) return NULL;
    if (!tfu_x_is_float(a->type)) { tfu_x_err(ctx, TFU_ERR_TYPE, a, name, "operand must be f32, f16 or bf16", NULL, NULL); return NULL; }
    memcpy(ne, a->ne, sizeof ne); ne[0] = 1;
    return tfu_x_op(ctx, op, op == TFU_OP_ARGMAX ? TFU_I32 : TFU_F32, ne, a, NULL, NULL);
}
TFU_API tfu_tensor *tfu_sum_rows(tfu_context *ctx, tfu_tensor *a) { return tfu_x_reduce(ctx, TFU_OP_SUM_ROWS, a); }
TFU_API tfu_tensor *tfu_mean(tfu_context *ctx, tfu_tensor *a) { return tfu_x_reduce(ctx, TFU_OP_MEAN, a); }
TFU_API tfu_tensor *tfu_argmax(tfu_context *ctx, tfu_tensor *a) { return tfu_x_reduce(ctx, TFU_OP_ARGMAX, a); }

TFU_API tfu_tensor *tfu_mul_mat(tfu_context *ctx, tfu_tensor *a, tfu_tensor *b) {
    int64_t ne[TFU_MAX_DIMS];
    tfu_tensor *t;
    if (tfu_x_null(ctx, "MUL_MAT", a, b, 1)) return NULL;
    if (!tfu_x_is_float(a->type) || b->type != TFU_F32) {
        tfu_x_err(ctx, TFU_ERR_TYPE, a, "MUL_MAT", "a must be f32, f16 or bf16 and b f32", NULL, NULL); return NULL;
    }
    if (a->ne[0] != b->ne[0] || b->ne[2] % a->ne[2] || b->ne[3] % a->ne[3]) {
        tfu_x_err(ctx, TFU_ERR_SHAPE, a, "MUL_MAT", "needs a->ne0 == b->ne0 and a's dims 2,3 dividing b's:", a, b); return NULL;
    }
    ne[0] = a->ne[1]; ne[1] = b->ne[1]; ne[2] = b->ne[2]; ne[3] = b->ne[3];
    t = tfu_x_op(ctx, TFU_OP_MUL_MAT, TFU_F32, ne, a, b, NULL);
    if (t) t->n_dims = a->n_dims > b->n_dims ? a->n_dims : b->n_dims;
    return t;
}

TFU_API tfu_tensor *tfu_get_rows(tfu_context *ctx, tfu_tensor *a, tfu_tensor *idx) {
    int64_t ne[TFU_MAX_DIMS];
    if (tfu_x_null(ctx, "GET_ROWS", a, idx, 1)) return NULL;
    if (!tfu_x_is_float(a->type) || idx->type != TFU_I32) {
        tfu_x_err(ctx, TFU_ERR_TYPE, a, "GET_ROWS", "a must be float and idx i32", NULL, NULL); return NULL;
    }
    if (a->ne[2] != 1 || a->ne[3] != 1 || idx->ne[3] != 1) {
        tfu_x_err(ctx, TFU_ERR_SHAPE, a, "GET_ROWS", "a must be a matrix and idx at most 3-d:", a, idx); return NULL;
    }
    ne[0] = a->ne[0]; ne[1] = idx->ne[0]; ne[2] = idx->ne[1]; ne[3] = idx->ne[2];
    return tfu_x_op(ctx, TFU_OP_GET_ROWS, TFU_F32, ne, a, idx, NULL);
}

TFU_API tfu_tensor *tfu_rope(tfu_context *ctx, tfu_tensor *a, tfu_tensor *pos, int n_dims, tfu_rope_mode mode, float freq_base) {
    tfu_tensor *t;
    if (tfu_x_null(ctx, "ROPE", a, pos, 1)) return NULL;
    if (!tfu_x_is_float(a->type) || pos->type != TFU_I32) {
        tfu_x_err(ctx, TFU_ERR_TYPE, a, "ROPE", "a must be float and pos i32", NULL, NULL); return NULL;
    }
    if (n_dims <= 0 || n_dims % 2 || n_dims > a->ne[0] || (mode != TFU_ROPE_NORMAL && mode != TFU_ROPE_NEOX) || !(freq_base > 0.0f)) {
        tfu_x_err(ctx, TFU_ERR_INVALID_ARG, a, "ROPE", "n_dims must be even, <= ne0; mode NORMAL or NEOX; freq_base > 0", NULL, NULL); return NULL;
    }
    if (tfu_nelements(pos) != a->ne[2]) {
        tfu_x_err(ctx, TFU_ERR_SHAPE, a, "ROPE", "pos needs one entry per token (a->ne2):", a, pos); return NULL;
    }
    t = tfu_x_op(ctx, TFU_OP_ROPE, TFU_F32, a->ne, a, pos, NULL);
    if (t) { t->op_params_i[0] = n_dims; t->op_params_i[1] = (int32_t)mode; t->op_params_f[0] = freq_base; }
    return t;
}

TFU_API tfu_tensor *tfu_concat(tfu_context *ctx, tfu_tensor *a, tfu_tensor *b, int dim) {
    int64_t ne[TFU_MAX_DIMS];
    int i;
    tfu_tensor *t;
    if (tfu_x_null(ctx, "CONCAT", a, b, 1)) return NULL;
    if (dim < 0 || dim >= TFU_MAX_DIMS) { tfu_x_err(ctx, TFU_ERR_INVALID_ARG, a, "CONCAT", "dim must be 0..3", NULL, NULL); return NULL; }
    if (!tfu_x_is_float(a->type) || !tfu_x_is_float(b->type)) { tfu_x_err(ctx, TFU_ERR_TYPE, a, "CONCAT", "operands must be float", NULL, NULL); return NULL; }
    for (i = 0; i < TFU_MAX_DIMS; i++)
        if (i != dim && a->ne[i] != b->ne[i]) { tfu_x_err(ctx, TFU_ERR_SHAPE, a, "CONCAT", "shapes differ outside dim:", a, b); return NULL; }
    memcpy(ne, a->ne, sizeof ne); ne[dim] += b->ne[dim];
    t = tfu_x_op(ctx, TFU_OP_CONCAT, TFU_F32, ne, a, b, NULL);
    if (t) { t->op_params_i[0] = dim; if (t->n_dims < dim + 1) t->n_dims = dim + 1; }
    return t;
}

TFU_API tfu_tensor *tfu_cont(tfu_context *ctx, tfu_tensor *a) {
    if (tfu_x_null(ctx, "CONT", a, NULL, 0)) return NULL;
    if (!tfu_x_is_float(a->type)) { tfu_x_err(ctx, TFU_ERR_TYPE, a, "CONT", "operand must be float", NULL, NULL); return NULL; }
    return tfu_x_op(ctx, TFU_OP_CONT, TFU_F32, a->ne, a, NULL, NULL);
}

static tfu_tensor *tfu_x_root(tfu_tensor *a) { return a->view_src ? a->view_src : a; }

/* A VIEW (or CPY) result aliases the root of a at byte offset offs. */
static void tfu_x_alias(tfu_tensor *t, tfu_tensor *a, size_t offs) {
    t->view_src = tfu_x_root(a);
    t->view_offs = (a->view_src ? a->view_offs : 0) + offs;
    if (t->view_src->data) t->data = (char *)t->view_src->data + t->view_offs;
}

TFU_API tfu_tensor *tfu_view(tfu_context *ctx, tfu_tensor *a, int n_dims, const int64_t *ne, const size_t *nb, size_t offset) {
    int64_t ne4[TFU_MAX_DIMS]; size_t nb4[TFU_MAX_DIMS], bytes, span, end;
    tfu_tensor *t; tfu_result r; int i;
    if (tfu_x_null(ctx, "VIEW", a, NULL, 0)) return NULL;
    r = tfu_x_shape(a->type, n_dims, ne, ne4, nb4, &bytes);
    if (r != TFU_OK) { tfu_x_err(ctx, r, a, "VIEW", "bad view shape", NULL, NULL); return NULL; }
    if (nb) for (i = 1; i < n_dims; i++) nb4[i] = nb[i - 1];
    for (i = n_dims; i < TFU_MAX_DIMS; i++) nb4[i] = nb4[i - 1] * (size_t)ne4[i - 1];
    span = tfu_type_size(a->type);
    for (i = 0; i < TFU_MAX_DIMS; i++) {
        size_t step;
        if (!tfu_x_mul_ok((size_t)(ne4[i] - 1), nb4[i], &step) || !tfu_x_add_ok(span, step, &span)) {
            tfu_x_err(ctx, TFU_ERR_OVERFLOW, a, "VIEW", "view span overflows", NULL, NULL); return NULL;
        }
    }
    (void)bytes;
    if (!tfu_x_add_ok(span, offset, &end) || end > tfu_nbytes(a)) {
        tfu_x_err(ctx, TFU_ERR_SHAPE, a, "VIEW", "view reaches beyond its source:", a, NULL); return NULL;
    }
    t = tfu_x_new(ctx, a->type, n_dims, ne4, 0, "VIEW");
    if (!t) return NULL;
    memcpy(t->nb, nb4, sizeof nb4);
    t->op = TFU_OP_VIEW; t->src[0] = a;
    tfu_x_alias(t, a, offset);
    return t;
}

TFU_API tfu_tensor *tfu_view_1d(tfu_context *ctx, tfu_tensor *a, int64_t ne0, size_t offset) {
    int64_t ne[1]; ne[0] = ne0;
    return tfu_view(ctx, a, 1, ne, NULL, offset);
}
TFU_API tfu_tensor *tfu_view_2d(tfu_context *ctx, tfu_tensor *a, int64_t ne0, int64_t ne1, size_t nb1, size_t offset) {
    int64_t ne[2]; size_t nb[1]; ne[0] = ne0; ne[1] = ne1; nb[0] = nb1;
    return tfu_view(ctx, a, 2, ne, nb, offset);
}
TFU_API tfu_tensor *tfu_view_3d(tfu_context *ctx, tfu_tensor *a, int64_t ne0, int64_t ne1, int64_t ne2, size_t nb1, size_t nb2, size_t offset) {
    int64_t ne[3]; size_t nb[2]; ne[0] = ne0; ne[1] = ne1; ne[2] = ne2; nb[0] = nb1; nb[1] = nb2;
    return tfu_view(ctx, a, 3, ne, nb, offset);
}

TFU_API tfu_tensor *tfu_reshape(tfu_context *ctx, tfu_tensor *a, int n_dims, const int64_t *ne) {
    int64_t ne4[TFU_MAX_DIMS]; size_t nb4[TFU_MAX_DIMS], bytes;
    tfu_result r;
    if (tfu_x_null(ctx, "RESHAPE", a, NULL, 0)) return NULL;
    if (!tfu_is_contiguous(a)) { tfu_x_err(ctx, TFU_ERR_SHAPE, a, "RESHAPE", "source is not contiguous (use tfu_cont):", a, NULL); return NULL; }
    r = tfu_x_shape(a->type, n_dims, ne, ne4, nb4, &bytes);
    if (r != TFU_OK) { tfu_x_err(ctx, r, a, "RESHAPE", "bad shape", NULL, NULL); return NULL; }
    if (ne4[0] * ne4[1] * ne4[2] * ne4[3] != tfu_nelements(a)) {
        tfu_x_err(ctx, TFU_ERR_SHAPE, a, "RESHAPE", "element counts differ:", a, NULL); return NULL;
    }
    return tfu_view(ctx, a, n_dims, ne, NULL, 0);
}
TFU_API tfu_tensor *tfu_reshape_2d(tfu_context *ctx, tfu_tensor *a, int64_t ne0, int64_t ne1) {
    int64_t ne[2]; ne[0] = ne0; ne[1] = ne1;
    return tfu_reshape(ctx, a, 2, ne);
}
TFU_API tfu_tensor *tfu_reshape_3d(tfu_context *ctx, tfu_tensor *a, int64_t ne0, int64_t ne1, int64_t ne2) {
    int64_t ne[3]; ne[0] = ne0; ne[1] = ne1; ne[2] = ne2;
    return tfu_reshape(ctx, a, 3, ne);
}

TFU_API tfu_tensor *tfu_permute(tfu_context *ctx, tfu_tensor *a, int axis0, int axis1, int axis2, int axis3) {
    int ax[TFU_MAX_DIMS], seen = 0, i, nd = 1;
    tfu_tensor *t;
    if (tfu_x_null(ctx, "PERMUTE", a, NULL, 0)) return NULL;
    ax[0] = axis0; ax[1] = axis1; ax[2] = axis2; ax[3] = axis3;
    for (i = 0; i < TFU_MAX_DIMS; i++) {
        if (ax[i] < 0 || ax[i] >= TFU_MAX_DIMS || (seen & (1 << ax[i]))) {
            tfu_x_err(ctx, TFU_ERR_INVALID_ARG, a, "PERMUTE", "axes must be a permutation of 0..3", NULL, NULL); return NULL;
        }
        seen |= 1 << ax[i];
    }
    t = tfu_x_new(ctx, a->type, 4, a->ne, 0, "PERMUTE");
    if (!t) return NULL;
    for (i = 0; i < TFU_MAX_DIMS; i++) { t->ne[ax[i]] = a->ne[i]; t->nb[ax[i]] = a->nb[i]; }
    for (i = 0; i < TFU_MAX_DIMS; i++) if (t->ne[i] > 1) nd = i + 1;
    t->n_dims = nd > a->n_dims ? nd : a->n_dims;
    t->op = TFU_OP_VIEW; t->src[0] = a;
    tfu_x_alias(t, a, 0);
    return t;
}

TFU_API tfu_tensor *tfu_transpose(tfu_context *ctx, tfu_tensor *a) { return tfu_permute(ctx, a, 1, 0, 2, 3); }

TFU_API tfu_tensor *tfu_cpy(tfu_context *ctx, tfu_tensor *a, tfu_tensor *dst) {
    tfu_tensor *t;
    if (tfu_x_null(ctx, "CPY", a, dst, 1)) return NULL;
    if (!tfu_x_is_float(a->type) || !tfu_x_is_float(dst->type)) { tfu_x_err(ctx, TFU_ERR_TYPE, a, "CPY", "operands must be float", NULL, NULL); return NULL; }
    if (!tfu_same_shape(a, dst)) { tfu_x_err(ctx, TFU_ERR_SHAPE, a, "CPY", "shapes differ:", a, dst); return NULL; }
    t = tfu_x_new(ctx, dst->type, 4, dst->ne, 0, "CPY");
    if (!t) return NULL;
    memcpy(t->nb, dst->nb, sizeof t->nb);
    t->n_dims = dst->n_dims;
    t->op = TFU_OP_CPY; t->src[0] = a; t->src[1] = dst;
    tfu_x_alias(t, dst, 0);
    return t;
}

/* >>graph ================================================================ */

struct tfu_graph {
    tfu_context  *ctx;
    int           max, n_all, n_nodes, n_leafs, broken;
    tfu_tensor  **all;      /* every tensor, sources before users          */
    int32_t      *uses;     /* use count per entry of all[]                */
    tfu_tensor  **nodes, **leafs;
    int           hcap;     /* open-addressing map tensor -> index in all[] */
    tfu_tensor  **hkey;
    int32_t      *hval;
};

static size_t tfu_x_hash_ptr(const void *p) {
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33;
    return (size_t)x;
}

static int tfu_x_graph_find(const tfu_graph *g, const tfu_tensor *t) {
    size_t i = tfu_x_hash_ptr(t) & (size_t)(g->hcap - 1);
    while (g->hkey[i]) {
        if (g->hkey[i] == t) return g->hval[i];
        i = (i + 1) & (size_t)(g->hcap - 1);
    }
    return -1;
}

TFU_API tfu_graph *tfu_graph_new(tfu_context *ctx, int max_nodes) {
    tfu_graph *g;
    int cap = 16;
    if (!ctx) return NULL;
    if (max_nodes <= 0 || max_nodes > (1 << 26)) { tfu_x_err(ctx, TFU_ERR_INVALID_ARG, NULL, "graph_new", "max_nodes must be 1..2^26", NULL, NULL); return NULL; }
    while (cap < 2 * max_nodes) cap *= 2;
    g = (tfu_graph *)tfu_x_ctx_alloc(ctx, sizeof *g, "graph_new");
    if (!g) return NULL;
    memset(g, 0, sizeof *g);
    g->ctx = ctx; g->max = max_nodes; g->hcap = cap;
    g->all   = (tfu_tensor **)tfu_x_ctx_alloc(ctx, (size_t)max_nodes * sizeof(void *), "graph_new");
    g->nodes = (tfu_tensor **)tfu_x_ctx_alloc(ctx, (size_t)max_nodes * sizeof(void *), "graph_new");
    g->leafs = (tfu_tensor **)tfu_x_ctx_alloc(ctx, (size_t)max_nodes * sizeof(void *), "graph_new");
    g->uses  = (int32_t *)tfu_x_ctx_alloc(ctx, (size_t)max_nodes * sizeof(int32_t), "graph_new");
    g->hkey  = (tfu_tensor **)tfu_x_ctx_alloc(ctx, (size_t)cap * sizeof(void *), "graph_new");
    g->hval  = (int32_t *)tfu_x_ctx_alloc(ctx, (size_t)cap * sizeof(int32_t), "graph_new");
    if (!g->all || !g->nodes || !g->leafs || !g->uses || !g->hkey || !g->hval) return NULL;
    memset(g->hkey, 0, (size_t)cap * sizeof(void *));
    return g;
}

/* Depth-first, sources first: a tensor enters all[] after its sources, so
   all[] is a topological order. An edge counts once per (consumer, operand). */
static int tfu_x_graph_visit(tfu_graph *g, tfu_tensor *t) {
    size_t h;
    int s, idx;
    if (tfu_x_graph_find(g, t) >= 0) return 1;
    for (s = 0; s < TFU_MAX_SRC; s++)
        if (t->src[s] && !tfu_x_graph_visit(g, t->src[s])) return 0;
    if (g->n_all >= g->max) return 0;
    idx = g->n_all++;
    g->all[idx] = t; g->uses[idx] = 0;
    h = tfu_x_hash_ptr(t) & (size_t)(g->hcap - 1);
    while (g->hkey[h]) h = (h + 1) & (size_t)(g->hcap - 1);
    g->hkey[h] = t; g->hval[h] = idx;
    for (s = 0; s < TFU_MAX_SRC; s++)
        if (t->src[s]) g->uses[tfu_x_graph_find(g, t->src[s])]++;
    if (t->op == TFU_OP_NONE) g->leafs[g->n_leafs++] = t;
    else g->nodes[g->n_nodes++] = t;
    return 1;
}

TFU_API tfu_result tfu_graph_build_expand(tfu_graph *g, tfu_tensor *result) {
    if (!g) return TFU_ERR_NULL_ARG;
    if (!result) {
        tfu_x_err(g->ctx, TFU_ERR_NULL_ARG, NULL, "graph_build", "result is NULL (an earlier builder failed?)", NULL, NULL);
        return TFU_ERR_NULL_ARG;
    }
    if (g->broken) return TFU_ERR_GRAPH;
    if (!tfu_x_graph_visit(g, result)) {
        g->broken = 1;
        tfu_x_err(g->ctx, TFU_ERR_GRAPH, result, "graph_build", "more tensors than max_nodes", NULL, NULL);
        return TFU_ERR_GRAPH;
    }
    result->flags |= TFU_FLAG_OUTPUT;
    return TFU_OK;
}

TFU_API tfu_graph *tfu_graph_build(tfu_context *ctx, tfu_tensor *result) {
    tfu_graph *g;
    if (!ctx) return NULL;
    if (!result) { tfu_x_err(ctx, TFU_ERR_NULL_ARG, NULL, "graph_build", "result is NULL (an earlier builder failed?)", NULL, NULL); return NULL; }
    g = tfu_graph_new(ctx, 4096);
    if (!g) return NULL;
    return tfu_graph_build_expand(g, result) == TFU_OK ? g : NULL;
}

TFU_API int tfu_graph_n_nodes(const tfu_graph *g) { return g ? g->n_nodes : 0; }
TFU_API tfu_tensor *tfu_graph_node(const tfu_graph *g, int i) { return g && i >= 0 && i < g->n_nodes ? g->nodes[i] : NULL; }
TFU_API int tfu_graph_n_leafs(const tfu_graph *g) { return g ? g->n_leafs : 0; }
TFU_API tfu_tensor *tfu_graph_leaf(const tfu_graph *g, int i) { return g && i >= 0 && i < g->n_leafs ? g->leafs[i] : NULL; }
TFU_API int tfu_graph_contains(const tfu_graph *g, const tfu_tensor *t) { return g && t && tfu_x_graph_find(g, t) >= 0; }
TFU_API int tfu_graph_use_count(const tfu_graph *g, const tfu_tensor *t) {
    int i = g && t ? tfu_x_graph_find(g, t) : -1;
    return i < 0 ? -1 : g->uses[i];
}
TFU_API tfu_context *tfu_graph_context(const tfu_graph *g) { return g ? g->ctx : NULL; }
TFU_API tfu_tensor *tfu_graph_get_tensor(const tfu_graph *g, const char *name) {
    int i;
    if (!g || !name) return NULL;
    for (i = 0; i < g->n_all; i++) if (!strcmp(g->all[i]->name, name)) return g->all[i];
    return NULL;
}

static uint64_t tfu_x_fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++) { h ^= b[i]; h *= 0x100000001b3ull; }
    return h;
}

TFU_API uint64_t tfu_graph_hash(const tfu_graph *g) {
    uint64_t h = 0xcbf29ce484222325ull;
    int i, s;
    if (!g) return 0;
    h = tfu_x_fnv(h, &g->n_all, sizeof g->n_all);
    for (i = 0; i < g->n_all; i++) {
        const tfu_tensor *t = g->all[i];
        int32_t rec[8 + TFU_MAX_SRC];
        rec[0] = (int32_t)t->op; rec[1] = (int32_t)t->type; rec[2] = (int32_t)t->flags;
        rec[3] = t->view_src ? tfu_x_graph_find(g, t->view_src) : -1;
        rec[4] = t->view_src && rec[3] < 0 ? -2 : 0;  /* aliases a tensor outside the graph */
        rec[5] = t->n_dims; rec[6] = g->uses[i]; rec[7] = 0;
        for (s = 0; s < TFU_MAX_SRC; s++) rec[8 + s] = t->src[s] ? tfu_x_graph_find(g, t->src[s]) : -1;
        h = tfu_x_fnv(h, rec, sizeof rec);
        h = tfu_x_fnv(h, t->ne, sizeof t->ne);
        h = tfu_x_fnv(h, t->nb, sizeof t->nb);
        h = tfu_x_fnv(h, &t->view_offs, sizeof t->view_offs);
        h = tfu_x_fnv(h, t->op_params_i, sizeof t->op_params_i);
        h = tfu_x_fnv(h, t->op_params_f, sizeof t->op_params_f);
    }
    return h;
}

/* >>ref ================================================================== */

static double tfu_x_gelu_d(double x) { return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
static double tfu_x_gelu_erf_d(double x) { return 0.5 * x * (1.0 + erf(x * 0.7071067811865476)); }
static double tfu_x_sigmoid_d(double x) { return 1.0 / (1.0 + exp(-x)); }

static double tfu_x_unary_d(tfu_op op, double x, const float *p) {
    switch (op) {
    case TFU_OP_SCALE: return x * p[0] + p[1];
    case TFU_OP_CLAMP: return x < p[0] ? p[0] : x > p[1] ? p[1] : x;
    case TFU_OP_NEG: return -x;
    case TFU_OP_ABS: return fabs(x);
    case TFU_OP_SQR: return x * x;
    case TFU_OP_SQRT: return sqrt(x);
    case TFU_OP_EXP: return exp(x);
    case TFU_OP_LOG: return log(x);
    case TFU_OP_SIN: return sin(x);
    case TFU_OP_COS: return cos(x);
    case TFU_OP_TANH: return tanh(x);
    case TFU_OP_SIGMOID: return tfu_x_sigmoid_d(x);
    case TFU_OP_RELU: return x > 0 ? x : 0;
    case TFU_OP_GELU: return tfu_x_gelu_d(x);
    case TFU_OP_GELU_ERF: return tfu_x_gelu_erf_d(x);
    case TFU_OP_SILU: return x * tfu_x_sigmoid_d(x);
    case TFU_OP_CONT: case TFU_OP_CPY: return x;
    default: return 0;
    }
}

static double tfu_x_glu_d(int kind, double g, double v) {
    switch (kind) {
    case TFU_GLU_REGLU: return (g > 0 ? g : 0) * v;
    case TFU_GLU_GEGLU: return tfu_x_gelu_d(g) * v;
    case TFU_GLU_GEGLU_ERF: return tfu_x_gelu_erf_d(g) * v;
    default: return g * tfu_x_sigmoid_d(g) * v;
    }
}

#define TFU_X_AT(t, i0, i1, i2, i3) ((double)tfu_x_ld((t)->type, (const char *)(t)->data + tfu_x_offs((t), (i0), (i1), (i2), (i3))))
#define TFU_X_FOR4(t) \
    for (i3 = 0; i3 < (t)->ne[3]; i3++) for (i2 = 0; i2 < (t)->ne[2]; i2++) \
    for (i1 = 0; i1 < (t)->ne[1]; i1++) for (i0 = 0; i0 < (t)->ne[0]; i0++)

/* checks the leaf indices of get_rows before anything is written */
static tfu_result tfu_x_check_rows(tfu_context *ctx, const tfu_tensor *t) {
    const tfu_tensor *idx = t->src[1];
    int64_t i0, i1, i2, i3, n = t->src[0]->ne[1];
    if (idx->op != TFU_OP_NONE || !idx->data) return TFU_OK;
    TFU_X_FOR4(idx) {
        int32_t r;
        memcpy(&r, (const char *)idx->data + tfu_x_offs(idx, i0, i1, i2, i3), 4);
        if (r < 0 || r >= n) { tfu_x_err(ctx, TFU_ERR_INVALID_ARG, t, "GET_ROWS", "row index out of range", NULL, NULL); return TFU_ERR_INVALID_ARG; }
    }
    return TFU_OK;
}

static int32_t tfu_x_row_index(const tfu_tensor *idx, int64_t i1, int64_t i2, int64_t i3, int64_t n) {
    int32_t r;
    memcpy(&r, (const char *)idx->data + tfu_x_offs(idx, i1, i2, i3, 0), 4);
    return r < 0 ? 0 : r >= n ? (int32_t)(n - 1) : r;  /* computed indices are clamped */
}

static void tfu_x_ref_node(tfu_tensor *t) {
    tfu_tensor *a = t->src[0], *b = t->src[1];
    int64_t i0, i1, i2, i3;
    switch (t->op) {
    case TFU_OP_ADD: case TFU_OP_SUB: case TFU_OP_MUL: case TFU_OP_DIV:
        TFU_X_FOR4(t) {
            double x = TFU_X_AT(a, i0, i1, i2, i3);
            double y = TFU_X_AT(b, i0 % b->ne[0], i1 % b->ne[1], i2 % b->ne[2], i3 % b->ne[3]);
            double r = t->op == TFU_OP_ADD ? x + y : t->op == TFU_OP_SUB ? x - y : t->op == TFU_OP_MUL ? x * y : x / y;
            tfu_set_f32(t, i0, i1, i2, i3, (float)r);
        }
        break;
    case TFU_OP_CONT: case TFU_OP_CPY: case TFU_OP_SCALE: case TFU_OP_CLAMP:
    case TFU_OP_NEG: case TFU_OP_ABS: case TFU_OP_SQR: case TFU_OP_SQRT: case TFU_OP_EXP: case TFU_OP_LOG:
    case TFU_OP_SIN: case TFU_OP_COS: case TFU_OP_TANH: case TFU_OP_SIGMOID: case TFU_OP_RELU:
    case TFU_OP_GELU: case TFU_OP_GELU_ERF: case TFU_OP_SILU:
        TFU_X_FOR4(t) tfu_set_f32(t, i0, i1, i2, i3, (float)tfu_x_unary_d(t->op, TFU_X_AT(a, i0, i1, i2, i3), t->op_params_f));
        break;
    case TFU_OP_GLU: {
        int split = t->op_params_i[2], sw = t->op_params_i[1];
        int64_t n = t->ne[0];
        TFU_X_FOR4(t) {
            double g, v;
            if (split) { g = TFU_X_AT(a, i0, i1, i2, i3); v = TFU_X_AT(b, i0, i1, i2, i3); }
            else { g = TFU_X_AT(a, i0 + (sw ? n : 0), i1, i2, i3); v = TFU_X_AT(a, i0 + (sw ? 0 : n), i1, i2, i3); }
            tfu_set_f32(t, i0, i1, i2, i3, (float)tfu_x_glu_d(t->op_params_i[0], g, v));
        }
    } break;
    case TFU_OP_RMS_NORM: case TFU_OP_NORM: case TFU_OP_SOFT_MAX:
    case TFU_OP_SUM_ROWS: case TFU_OP_MEAN: case TFU_OP_ARGMAX:
        for (i3 = 0; i3 < a->ne[3]; i3++) for (i2 = 0; i2 < a->ne[2]; i2++) for (i1 = 0; i1 < a->ne[1]; i1++) {
            int64_t n = a->ne[0], best = 0;
            double s = 0, s2 = 0, mx = -INFINITY, mean, scale;
            for (i0 = 0; i0 < n; i0++) {
                double x = TFU_X_AT(a, i0, i1, i2, i3);
                if (t->op == TFU_OP_SOFT_MAX) {
                    x *= t->op_params_f[0];
                    if (b) x += TFU_X_AT(b, i0, i1, i2 % b->ne[2], i3 % b->ne[3]);
                }
                if (x > mx) { mx = x; best = i0; }
                s += x; s2 += x * x;
            }
            mean = s / (double)n;
            if (t->op == TFU_OP_SUM_ROWS || t->op == TFU_OP_MEAN) { tfu_set_f32(t, 0, i1, i2, i3, (float)(t->op == TFU_OP_MEAN ? mean : s)); continue; }
            if (t->op == TFU_OP_ARGMAX) { int32_t r = (int32_t)best; memcpy((char *)t->data + tfu_x_offs(t, 0, i1, i2, i3), &r, 4); continue; }
            if (t->op == TFU_OP_SOFT_MAX) {
                double e = 0;
                for (i0 = 0; i0 < n; i0++) {
                    double x = TFU_X_AT(a, i0, i1, i2, i3) * t->op_params_f[0];
                    if (b) x += TFU_X_AT(b, i0, i1, i2 % b->ne[2], i3 % b->ne[3]);
                    e += exp(x - mx);
                }
                for (i0 = 0; i0 < n; i0++) {
                    double x = TFU_X_AT(a, i0, i1, i2, i3) * t->op_params_f[0];
                    if (b) x += TFU_X_AT(b, i0, i1, i2 % b->ne[2], i3 % b->ne[3]);
                    tfu_set_f32(t, i0, i1, i2, i3, (float)(exp(x - mx) / e));
                }
                continue;
            }
            if (t->op == TFU_OP_RMS_NORM) { scale = 1.0 / sqrt(s2 / (double)n + t->op_params_f[0]); mean = 0; }
            else {
                double var = 0;
                for (i0 = 0; i0 < n; i0++) { double d = TFU_X_AT(a, i0, i1, i2, i3) - mean; var += d * d; }
                scale = 1.0 / sqrt(var / (double)n + t->op_params_f[0]);
            }
            for (i0 = 0; i0 < n; i0++) tfu_set_f32(t, i0, i1, i2, i3, (float)((TFU_X_AT(a, i0, i1, i2, i3) - mean) * scale));
        }
        break;
    case TFU_OP_MUL_MAT: {
        int64_t r2 = b->ne[2] / a->ne[2], r3 = b->ne[3] / a->ne[3], k;
        TFU_X_FOR4(t) {
            double s = 0;
            for (k = 0; k < a->ne[0]; k++) s += TFU_X_AT(a, k, i0, i2 / r2, i3 / r3) * TFU_X_AT(b, k, i1, i2, i3);
            tfu_set_f32(t, i0, i1, i2, i3, (float)s);
        }
    } break;
    case TFU_OP_GET_ROWS:
        TFU_X_FOR4(t) tfu_set_f32(t, i0, i1, i2, i3, (float)TFU_X_AT(a, i0, tfu_x_row_index(b, i1, i2, i3, a->ne[1]), 0, 0));
        break;
    case TFU_OP_ROPE: {
        int nd = t->op_params_i[0], neox = t->op_params_i[1] == TFU_ROPE_NEOX;
        double base = t->op_params_f[0];
        for (i3 = 0; i3 < t->ne[3]; i3++) for (i2 = 0; i2 < t->ne[2]; i2++) {
            int32_t p;
            memcpy(&p, (const char *)b->data + (size_t)i2 * b->nb[0], 4);
            for (i1 = 0; i1 < t->ne[1]; i1++) {
                for (i0 = nd; i0 < t->ne[0]; i0++) tfu_set_f32(t, i0, i1, i2, i3, (float)TFU_X_AT(a, i0, i1, i2, i3));
                for (i0 = 0; i0 < nd / 2; i0++) {
                    double th = (double)p * pow(base, -2.0 * (double)i0 / (double)nd), c = cos(th), s = sin(th);
                    int64_t j0 = neox ? i0 : 2 * i0, j1 = neox ? i0 + nd / 2 : 2 * i0 + 1;
                    double x0 = TFU_X_AT(a, j0, i1, i2, i3), x1 = TFU_X_AT(a, j1, i1, i2, i3);
                    tfu_set_f32(t, j0, i1, i2, i3, (float)(x0 * c - x1 * s));
                    tfu_set_f32(t, j1, i1, i2, i3, (float)(x0 * s + x1 * c));
                }
            }
        }
    } break;
    case TFU_OP_CONCAT: {
        int d = t->op_params_i[0];
        TFU_X_FOR4(t) {
            int64_t ix[4]; ix[0] = i0; ix[1] = i1; ix[2] = i2; ix[3] = i3;
            if (ix[d] < a->ne[d]) tfu_set_f32(t, i0, i1, i2, i3, (float)TFU_X_AT(a, i0, i1, i2, i3));
            else { ix[d] -= a->ne[d]; tfu_set_f32(t, i0, i1, i2, i3, (float)TFU_X_AT(b, ix[0], ix[1], ix[2], ix[3])); }
        }
    } break;
    default: break;
    }
}

/* Points views and copies at their root's memory (set by whichever executor
   ran last). */
static void tfu_x_bind_alias(tfu_tensor *t) {
    if (t->view_src && t->view_src->data) t->data = (char *)t->view_src->data + t->view_offs;
}

static tfu_result tfu_x_check_leaves(tfu_graph *g) {
    int i;
    for (i = 0; i < g->n_leafs; i++)
        if (!g->leafs[i]->data) {
            tfu_x_err(g->ctx, TFU_ERR_NO_DATA, g->leafs[i], "run", "a leaf tensor has no data", NULL, NULL);
            return TFU_ERR_NO_DATA;
        }
    for (i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->op == TFU_OP_GET_ROWS && tfu_x_check_rows(g->ctx, g->nodes[i]) != TFU_OK) return TFU_ERR_INVALID_ARG;
    return TFU_OK;
}

TFU_API tfu_result tfu_graph_compute_ref(tfu_graph *g) {
    int i;
    tfu_result r;
    if (!g) return TFU_ERR_NULL_ARG;
    if (g->broken) return TFU_ERR_GRAPH;
    if ((r = tfu_x_check_leaves(g)) != TFU_OK) return r;
    for (i = 0; i < g->n_nodes; i++) {   /* all memory first: fail before writing */
        tfu_tensor *t = g->nodes[i];
        if (t->view_src || t->ref_data) continue;
        t->ref_data = tfu_x_ctx_alloc(g->ctx, tfu_nbytes(t), "compute_ref");
        if (!t->ref_data) return TFU_ERR_NO_MEMORY;
    }
    for (i = 0; i < g->n_nodes; i++) {
        tfu_tensor *t = g->nodes[i];
        if (t->view_src) tfu_x_bind_alias(t); else t->data = t->ref_data;
        tfu_x_ref_node(t);
    }
    return TFU_OK;
}
