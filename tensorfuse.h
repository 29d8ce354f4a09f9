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
    uint32_t    exec_flags;             /* private to the executors        */
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

/* --- views (no copy; the result aliases a) ------------------------------- */
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
