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
     unless TFU_NO_THREADS or on Windows).

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
     TFU_NO_THREADS   no thread pool (pthreads; the Win32 API where _WIN32):
                      plans run on the calling thread or on the caller's
                      parallel-for (tfu_plan_options.parallel_for). Needed
                      with a compiler that is not GCC, Clang or MSVC and has
                      no C11 atomics; a parallel-for must then be serial
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

/* Version: tfu_version() returns TFU_VERSION_STRING, "MAJOR.MINOR.PATCH".
   The build files (CMake, pkg-config) read the three numbers from here. */
#define TFU_VERSION_MAJOR 0
#define TFU_VERSION_MINOR 2
#define TFU_VERSION_PATCH 0
#define TFU_X_STR(x) #x
#define TFU_X_XSTR(x) TFU_X_STR(x)
#define TFU_VERSION_STRING \
    TFU_X_XSTR(TFU_VERSION_MAJOR) "." TFU_X_XSTR(TFU_VERSION_MINOR) "." TFU_X_XSTR(TFU_VERSION_PATCH)

#define TFU_MAX_SRC 3          /* operands per operation */
#define TFU_MAX_NAME 48        /* bytes of a tensor name, with the NUL */
#define TFU_MAX_OP_PARAMS 4

#ifdef __cplusplus
extern "C" {
#endif

/* The version the implementation was built from (TFU_VERSION_STRING). */
TFU_API const char *tfu_version(void);

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
/* cpy: write a (converted) into the existing tensor dst (same shape; a leaf
   or a view of one); the result aliases dst, and using it orders the write
   before its readers. Reads of dst's bytes that do not go through the
   result are ordered against the write by graph order. */
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
/* tfu_graph_build: a new graph with room for every tensor the context holds
   now; to expand it later with more results, make it with tfu_graph_new. */
TFU_API tfu_graph  *tfu_graph_build(tfu_context *ctx, tfu_tensor *result);
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
    void               *arena;         /* caller memory for values (16-byte       */
    size_t              arena_size;    /* aligned), or NULL: the plan allocates   */
    tfu_parallel_for_fn parallel_for;  /* caller threads instead of the pool      */
    void               *parallel_for_user;
    tfu_eval_fn         eval_cb;
    void               *eval_user;
} tfu_plan_options;

TFU_API tfu_plan_options tfu_plan_default_options(void);

TFU_API tfu_plan  *tfu_plan_compile(tfu_graph *g, const tfu_plan_options *opts); /* NULL: see ctx error */
TFU_API tfu_result tfu_plan_run(tfu_plan *p);
TFU_API void       tfu_plan_free(tfu_plan *p);   /* the graph's computed tensors then point at freed memory */
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
#if !defined(TFU_NO_THREADS) && defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#define TFU_X_UNDEF_LEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#define TFU_X_UNDEF_NOMINMAX
#endif
#include <windows.h>
#ifdef TFU_X_UNDEF_LEAN
#undef WIN32_LEAN_AND_MEAN
#undef TFU_X_UNDEF_LEAN
#endif
#ifdef TFU_X_UNDEF_NOMINMAX
#undef NOMINMAX
#undef TFU_X_UNDEF_NOMINMAX
#endif
#elif !defined(TFU_NO_THREADS)
#include <pthread.h>
#include <sched.h>
#endif
/* atomics (the compat block in >>base): 1 GCC/Clang builtins, 2 MSVC
   Interlocked intrinsics, 3 C11 <stdatomic.h>, 0 none (TFU_NO_THREADS only).
   TFU_X_ATOMICS may be preset to test a path on another compiler. */
#ifndef TFU_X_ATOMICS
#if defined(__GNUC__) || defined(__clang__)
#define TFU_X_ATOMICS 1
#elif defined(_MSC_VER)
#define TFU_X_ATOMICS 2
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && !defined(__STDC_NO_ATOMICS__) && !defined(__cplusplus)
#define TFU_X_ATOMICS 3
#else
#define TFU_X_ATOMICS 0
#endif
#endif
#if TFU_X_ATOMICS == 2
#include <intrin.h>
#elif TFU_X_ATOMICS == 3
#include <stdatomic.h>
#elif TFU_X_ATOMICS == 0 && !defined(TFU_NO_THREADS)
#error "tensorfuse: no atomics on this compiler (not GCC, Clang, MSVC or C11): define TFU_NO_THREADS"
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

/* --- compat: atomics, inlining, prefetch -----------------------------------
   The thread pool and the caller's parallel-for share a few counters and
   flags; every access to them goes through these functions, so no compiler
   extension is used outside this block. Orders as in C11 (the failure order
   of a compare-exchange is relaxed). MSVC's Interlocked intrinsics are full
   barriers, stronger than asked. The C11 path treats plain int and int64_t
   objects as _Atomic ones: the same size and representation wherever they
   are lock-free. Without atomics (TFU_X_ATOMICS 0, only with TFU_NO_THREADS)
   they are plain accesses, so a parallel_for must then run tasks one at a
   time. */
#if TFU_X_ATOMICS == 1
#define TFU_X_RELAXED __ATOMIC_RELAXED
#define TFU_X_ACQUIRE __ATOMIC_ACQUIRE
#define TFU_X_RELEASE __ATOMIC_RELEASE
#define TFU_X_ACQ_REL __ATOMIC_ACQ_REL
#elif TFU_X_ATOMICS == 3
#define TFU_X_RELAXED memory_order_relaxed
#define TFU_X_ACQUIRE memory_order_acquire
#define TFU_X_RELEASE memory_order_release
#define TFU_X_ACQ_REL memory_order_acq_rel
#else
#define TFU_X_RELAXED 0
#define TFU_X_ACQUIRE 1
#define TFU_X_RELEASE 2
#define TFU_X_ACQ_REL 3
#endif

static inline int tfu_x_atomic_load(int *p, int order) {
#if TFU_X_ATOMICS == 1
    return __atomic_load_n(p, order);
#elif TFU_X_ATOMICS == 2
    (void)order;
    return (int)_InterlockedOr((volatile long *)p, 0);
#elif TFU_X_ATOMICS == 3
    return atomic_load_explicit((_Atomic int *)p, (memory_order)order);
#else
    (void)order;
    return *p;
#endif
}

static inline void tfu_x_atomic_store(int *p, int v, int order) {
#if TFU_X_ATOMICS == 1
    __atomic_store_n(p, v, order);
#elif TFU_X_ATOMICS == 2
    (void)order;
    _InterlockedExchange((volatile long *)p, (long)v);
#elif TFU_X_ATOMICS == 3
    atomic_store_explicit((_Atomic int *)p, v, (memory_order)order);
#else
    (void)order;
    *p = v;
#endif
}

/* returns the new value */
static inline int tfu_x_atomic_add(int *p, int v, int order) {
#if TFU_X_ATOMICS == 1
    return __atomic_add_fetch(p, v, order);
#elif TFU_X_ATOMICS == 2
    (void)order;
    return (int)_InterlockedExchangeAdd((volatile long *)p, (long)v) + v;
#elif TFU_X_ATOMICS == 3
    return atomic_fetch_add_explicit((_Atomic int *)p, v, (memory_order)order) + v;
#else
    (void)order;
    *p += v;
    return *p;
#endif
}

/* 1 if *p held expected and now holds desired */
static inline int tfu_x_atomic_cas(int *p, int expected, int desired, int order) {
#if TFU_X_ATOMICS == 1
    return __atomic_compare_exchange_n(p, &expected, desired, 0, order, __ATOMIC_RELAXED);
#elif TFU_X_ATOMICS == 2
    (void)order;
    return _InterlockedCompareExchange((volatile long *)p, (long)desired, (long)expected) == (long)expected;
#elif TFU_X_ATOMICS == 3
    return atomic_compare_exchange_strong_explicit((_Atomic int *)p, &expected, desired, (memory_order)order,
                                                   memory_order_relaxed);
#else
    (void)order;
    if (*p != expected) return 0;
    *p = desired;
    return 1;
#endif
}

/* returns the old value; on MSVC a compare-exchange loop, which 32-bit x86
   has as well */
static inline int64_t tfu_x_atomic_fetch_add64(int64_t *p, int64_t v, int order) {
#if TFU_X_ATOMICS == 1
    return __atomic_fetch_add(p, v, order);
#elif TFU_X_ATOMICS == 2
    long long old = _InterlockedCompareExchange64((volatile long long *)p, 0, 0);
    (void)order;
    for (;;) {
        long long seen = _InterlockedCompareExchange64((volatile long long *)p, old + v, old);
        if (seen == old) return old;
        old = seen;
    }
#elif TFU_X_ATOMICS == 3
    return atomic_fetch_add_explicit((_Atomic int64_t *)p, v, (memory_order)order);
#else
    int64_t old = *p;
    (void)order;
    *p = old + v;
    return old;
#endif
}

static inline void tfu_x_atomic_store64(int64_t *p, int64_t v, int order) {
#if TFU_X_ATOMICS == 1
    __atomic_store_n(p, v, order);
#elif TFU_X_ATOMICS == 2
    long long old = _InterlockedCompareExchange64((volatile long long *)p, 0, 0);
    (void)order;
    for (;;) {
        long long seen = _InterlockedCompareExchange64((volatile long long *)p, v, old);
        if (seen == old) return;
        old = seen;
    }
#elif TFU_X_ATOMICS == 3
    atomic_store_explicit((_Atomic int64_t *)p, v, (memory_order)order);
#else
    (void)order;
    *p = v;
#endif
}

/* forced inlining and a read prefetch with no temporal locality, for the
   kernels */
#if defined(__GNUC__)
#define TFU_X_FORCE_INLINE static inline __attribute__((always_inline))
#define TFU_X_PREFETCH_R(p) __builtin_prefetch((p), 0, 0)
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#define TFU_X_FORCE_INLINE static __forceinline
#define TFU_X_PREFETCH_R(p) _mm_prefetch((const char *)(p), _MM_HINT_NTA)
#elif defined(_MSC_VER)
#define TFU_X_FORCE_INLINE static __forceinline
#define TFU_X_PREFETCH_R(p) ((void)0)
#else
#define TFU_X_FORCE_INLINE static inline
#define TFU_X_PREFETCH_R(p) ((void)0)
#endif

TFU_API const char *tfu_version(void) { return TFU_VERSION_STRING; }

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
#define TFU_X_GRAPH_PER_NODE (3 * sizeof(void *) + (1 + TFU_MAX_SRC) * sizeof(int32_t) + 4 * (sizeof(void *) + sizeof(int32_t)) + 16)

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
    if (!ne) return TFU_ERR_NULL_ARG;
    if (n_dims < 1 || n_dims > TFU_MAX_DIMS) return TFU_ERR_INVALID_ARG;
    s = tfu_type_size(type);
    for (i = 0; i < TFU_MAX_DIMS; i++) {
        int64_t n = i < n_dims ? ne[i] : 1;
        if (n <= 0) return TFU_ERR_INVALID_ARG;
        if ((uint64_t)n > (uint64_t)INT64_MAX / 2 || (uint64_t)(size_t)n != (uint64_t)n) return TFU_ERR_OVERFLOW;  /* 32-bit size_t */
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
        tfu_x_err(ctx, r, NULL, op, r == TFU_ERR_INVALID_ARG ? "sizes must be >= 1 and n_dims 1..4" : r == TFU_ERR_NULL_ARG ? "ne is NULL" :
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
    if (tfu_x_root(dst)->op != TFU_OP_NONE) { tfu_x_err(ctx, TFU_ERR_INVALID_ARG, dst, "CPY", "dst must be a leaf tensor or a view of one", NULL, NULL); return NULL; }
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
    int           max, n_all, n_nodes, n_leafs;
    tfu_tensor  **all;      /* every tensor, sources before users          */
    int32_t      *uses;     /* use count per entry of all[]                */
    int32_t      *srcs;     /* per entry: TFU_MAX_SRC operand indices, -1  */
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
    g->srcs  = (int32_t *)tfu_x_ctx_alloc(ctx, (size_t)max_nodes * TFU_MAX_SRC * sizeof(int32_t), "graph_new");
    g->hkey  = (tfu_tensor **)tfu_x_ctx_alloc(ctx, (size_t)cap * sizeof(void *), "graph_new");
    g->hval  = (int32_t *)tfu_x_ctx_alloc(ctx, (size_t)cap * sizeof(int32_t), "graph_new");
    if (!g->all || !g->nodes || !g->leafs || !g->uses || !g->srcs || !g->hkey || !g->hval) return NULL;
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
    for (s = 0; s < TFU_MAX_SRC; s++) {
        int q = t->src[s] ? tfu_x_graph_find(g, t->src[s]) : -1;
        g->srcs[idx * TFU_MAX_SRC + s] = q;
        if (q >= 0) g->uses[q]++;
    }
    if (t->op == TFU_OP_NONE) g->leafs[g->n_leafs++] = t;
    else g->nodes[g->n_nodes++] = t;
    return 1;
}

/* undoes a failed expand: entries from n_all on leave, their edges uncount */
static void tfu_x_graph_rollback(tfu_graph *g, int n_all, int n_nodes, int n_leafs) {
    int i, s;
    for (i = g->n_all - 1; i >= n_all; i--)
        for (s = 0; s < TFU_MAX_SRC; s++)
            if (g->all[i]->src[s]) { int q = tfu_x_graph_find(g, g->all[i]->src[s]); if (q >= 0 && q < n_all) g->uses[q]--; }
    g->n_all = n_all; g->n_nodes = n_nodes; g->n_leafs = n_leafs;
    memset(g->hkey, 0, (size_t)g->hcap * sizeof(void *));
    for (i = 0; i < n_all; i++) {
        size_t h = tfu_x_hash_ptr(g->all[i]) & (size_t)(g->hcap - 1);
        while (g->hkey[h]) h = (h + 1) & (size_t)(g->hcap - 1);
        g->hkey[h] = g->all[i]; g->hval[h] = i;
    }
}

TFU_API tfu_result tfu_graph_build_expand(tfu_graph *g, tfu_tensor *result) {
    int n_all, n_nodes, n_leafs, i;
    if (!g) return TFU_ERR_NULL_ARG;
    if (!result) {
        tfu_x_err(g->ctx, TFU_ERR_NULL_ARG, NULL, "graph_build", "result is NULL (an earlier builder failed?)", NULL, NULL);
        return TFU_ERR_NULL_ARG;
    }
    n_all = g->n_all; n_nodes = g->n_nodes; n_leafs = g->n_leafs;
    if (!tfu_x_graph_visit(g, result)) {
        tfu_x_graph_rollback(g, n_all, n_nodes, n_leafs);
        tfu_x_err(g->ctx, TFU_ERR_GRAPH, result, "graph_build", "more tensors than max_nodes", NULL, NULL);
        return TFU_ERR_GRAPH;
    }
    for (i = n_all; i < g->n_all; i++) {   /* every tensor must live in the graph's context */
        const unsigned char *a = (const unsigned char *)g->all[i];
        if (a < g->ctx->mem || a >= g->ctx->mem + g->ctx->size) {
            tfu_tensor *bad = g->all[i];
            tfu_x_graph_rollback(g, n_all, n_nodes, n_leafs);
            tfu_x_err(g->ctx, TFU_ERR_GRAPH, bad, "graph_build", "a tensor belongs to another context", NULL, NULL);
            return TFU_ERR_GRAPH;
        }
    }
    result->flags |= TFU_FLAG_OUTPUT;
    return TFU_OK;
}

TFU_API tfu_graph *tfu_graph_build(tfu_context *ctx, tfu_tensor *result) {
    tfu_graph *g;
    if (!ctx) return NULL;
    if (!result) { tfu_x_err(ctx, TFU_ERR_NULL_ARG, NULL, "graph_build", "result is NULL (an earlier builder failed?)", NULL, NULL); return NULL; }
    g = tfu_graph_new(ctx, ctx->n_tensors > 0 ? ctx->n_tensors : 1);  /* a graph holds at most every tensor of its context */
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
    if ((r = tfu_x_check_leaves(g)) != TFU_OK) return r;
    for (i = 0; i < g->n_nodes; i++) {   /* all memory first: fail before writing */
        tfu_tensor *t = g->nodes[i];
        if (t->view_src || t->ref_data) continue;
        t->ref_data = tfu_x_ctx_alloc(g->ctx, tfu_nbytes(t), "compute_ref");
        if (!t->ref_data) { g->ctx->err_tensor = t; return TFU_ERR_NO_MEMORY; }
    }
    for (i = 0; i < g->n_nodes; i++) {
        tfu_tensor *t = g->nodes[i];
        if (t->view_src) tfu_x_bind_alias(t); else t->data = t->ref_data;
        tfu_x_ref_node(t);
    }
    return TFU_OK;
}

/* >>kern =================================================================
   Row kernels: every fused loop is a sequence of these over a chunk of a
   row held in cache. Each has a plain scalar loop; the SIMD twin sits beside
   it, written once over a small vector layer (AVX-512, AVX2+FMA, NEON on
   AArch64), chosen at compile time, compiled out with TFU_NO_SIMD and
   switched off at run time with TFU_NO_SIMD=1 in the environment (read when
   a plan is compiled). */

#if defined(TFU_X_AVX512)
#define TFU_X_VEC 1
#define TFU_VW 16
typedef __m512 tfu_vf;
#define tfu_v_load(p)      _mm512_loadu_ps(p)
#define tfu_v_store(p, v)  _mm512_storeu_ps((p), (v))
#define tfu_v_set1(x)      _mm512_set1_ps(x)
#define tfu_v_add(a, b)    _mm512_add_ps((a), (b))
#define tfu_v_sub(a, b)    _mm512_sub_ps((a), (b))
#define tfu_v_mul(a, b)    _mm512_mul_ps((a), (b))
#define tfu_v_div(a, b)    _mm512_div_ps((a), (b))
#define tfu_v_rcp_est(a)   _mm512_rcp14_ps(a)                      /* 14 bits */
#define tfu_v_fma(a, b, c) _mm512_fmadd_ps((a), (b), (c))        /* a*b + c */
#define tfu_v_max(a, b)    _mm512_max_ps((a), (b))
#define tfu_v_min(a, b)    _mm512_min_ps((a), (b))
#define tfu_v_sqrt(a)      _mm512_sqrt_ps(a)
#define tfu_v_abs(a)       _mm512_abs_ps(a)
#define tfu_v_hsum(v)      _mm512_reduce_add_ps(v)
#define tfu_v_hmax(v)      _mm512_reduce_max_ps(v)
#define tfu_v_round(a)     _mm512_roundscale_ps((a), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define tfu_v_pow2i(n)     _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
#define tfu_v_zero_below(r, x, lim) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask((x), _mm512_set1_ps(lim), _CMP_GE_OQ), (r))
#define tfu_v_inf_above(r, x, lim) _mm512_mask_mov_ps((r), _mm512_cmp_ps_mask((x), _mm512_set1_ps(lim), _CMP_GT_OQ), _mm512_set1_ps(INFINITY))
#define tfu_v_copysign(mag, sgn) _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(mag), \
                             _mm512_and_si512(_mm512_castps_si512(sgn), _mm512_set1_epi32((int)0x80000000u))))
#define tfu_v_load_f16(p)  _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p)))
#define tfu_v_load_bf16(p) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(p))), 16))
#define TFU_X_MR 4   /* micro-kernel: rows of A (weights) */
#define TFU_X_NR 4   /* micro-kernel: rows of B (activations) */
#elif defined(TFU_X_AVX2)
#define TFU_X_VEC 1
#define TFU_VW 8
typedef __m256 tfu_vf;
#define tfu_v_load(p)      _mm256_loadu_ps(p)
#define tfu_v_store(p, v)  _mm256_storeu_ps((p), (v))
#define tfu_v_set1(x)      _mm256_set1_ps(x)
#define tfu_v_add(a, b)    _mm256_add_ps((a), (b))
#define tfu_v_sub(a, b)    _mm256_sub_ps((a), (b))
#define tfu_v_mul(a, b)    _mm256_mul_ps((a), (b))
#define tfu_v_div(a, b)    _mm256_div_ps((a), (b))
#define tfu_v_rcp_est(a)   _mm256_rcp_ps(a)                        /* 12 bits */
#define tfu_v_fma(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define tfu_v_max(a, b)    _mm256_max_ps((a), (b))
#define tfu_v_min(a, b)    _mm256_min_ps((a), (b))
#define tfu_v_sqrt(a)      _mm256_sqrt_ps(a)
#define tfu_v_abs(a)       _mm256_andnot_ps(_mm256_set1_ps(-0.0f), (a))
static float tfu_v_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s)); s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static float tfu_v_hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s)); s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#define tfu_v_round(a)     _mm256_round_ps((a), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define tfu_v_pow2i(n)     _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
#define tfu_v_zero_below(r, x, lim) _mm256_and_ps((r), _mm256_cmp_ps((x), _mm256_set1_ps(lim), _CMP_GE_OQ))
#define tfu_v_inf_above(r, x, lim) _mm256_blendv_ps((r), _mm256_set1_ps(INFINITY), _mm256_cmp_ps((x), _mm256_set1_ps(lim), _CMP_GT_OQ))
#define tfu_v_copysign(mag, sgn) _mm256_or_ps((mag), _mm256_and_ps((sgn), _mm256_set1_ps(-0.0f)))
#if defined(__F16C__)
#define tfu_v_load_f16(p)  _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#endif
#define tfu_v_load_bf16(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p))), 16))
#define TFU_X_MR 4
#define TFU_X_NR 2
#elif defined(TFU_X_NEON) && defined(__aarch64__)
#define TFU_X_VEC 1
#define TFU_VW 4
typedef float32x4_t tfu_vf;
#define tfu_v_load(p)      vld1q_f32(p)
#define tfu_v_store(p, v)  vst1q_f32((p), (v))
#define tfu_v_set1(x)      vdupq_n_f32(x)
#define tfu_v_add(a, b)    vaddq_f32((a), (b))
#define tfu_v_sub(a, b)    vsubq_f32((a), (b))
#define tfu_v_mul(a, b)    vmulq_f32((a), (b))
#define tfu_v_div(a, b)    vdivq_f32((a), (b))
#define tfu_v_rcp_est(a)   vrecpeq_f32(a)                          /* 8 bits */
#define tfu_v_fma(a, b, c) vfmaq_f32((c), (a), (b))
#define tfu_v_max(a, b)    vmaxq_f32((a), (b))
#define tfu_v_min(a, b)    vminq_f32((a), (b))
#define tfu_v_sqrt(a)      vsqrtq_f32(a)
#define tfu_v_abs(a)       vabsq_f32(a)
#define tfu_v_hsum(v)      vaddvq_f32(v)
#define tfu_v_hmax(v)      vmaxvq_f32(v)
#define tfu_v_round(a)     vrndnq_f32(a)
#define tfu_v_pow2i(n)     vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23))
#define tfu_v_zero_below(r, x, lim) vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(r), vcgeq_f32((x), vdupq_n_f32(lim))))
#define tfu_v_inf_above(r, x, lim) vbslq_f32(vcgtq_f32((x), vdupq_n_f32(lim)), vdupq_n_f32(INFINITY), (r))
#define tfu_v_copysign(mag, sgn) vbslq_f32(vdupq_n_u32(0x80000000u), (sgn), (mag))
#define tfu_v_load_f16(p)  vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(const void *)(p))))
#define tfu_v_load_bf16(p) vreinterpretq_f32_u32(vshlq_n_u32(vmovl_u16(vld1_u16((const uint16_t *)(const void *)(p))), 16))
#define TFU_X_MR 4
#define TFU_X_NR 4
#endif

/* 1: SIMD kernels in use. Written when a plan compiles (environment), read
   by the kernels; atomics so that plans compiled on several threads agree. */
static int tfu_x_simd_state = 1;
#if defined(__GNUC__)
#define TFU_X_SIMD_ON() __atomic_load_n(&tfu_x_simd_state, __ATOMIC_RELAXED)
#define TFU_X_SIMD_SET(v) __atomic_store_n(&tfu_x_simd_state, (v), __ATOMIC_RELAXED)
#else
#define TFU_X_SIMD_ON() tfu_x_simd_state
#define TFU_X_SIMD_SET(v) (tfu_x_simd_state = (v))
#endif

static float tfu_x_gelu_f(float x) { return 0.5f * x * (1.0f + tanhf(0.7978845608f * (x + 0.044715f * x * x * x))); }
static float tfu_x_gelu_erf_f(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678f)); }
static float tfu_x_sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }

#ifdef TFU_X_VEC
#if defined(__GNUC__)
#define TFU_X_VINLINE static inline __attribute__((always_inline))
#else
#define TFU_X_VINLINE static inline
#endif
/* exp: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, a degree-6
   polynomial for e^r (the classic Cephes coefficients, ~1 ulp), then the
   exponent bits; 2^n is applied as 2^(n-1) * 2 so n = 128 still fits.
   Below -87 (results under 2^-125) flushes to 0; above 88.72 gives inf. */
TFU_X_VINLINE tfu_vf tfu_v_exp(tfu_vf x) {
    tfu_vf xc = tfu_v_max(tfu_v_min(x, tfu_v_set1(88.72283f)), tfu_v_set1(-87.0f));
    tfu_vf n = tfu_v_round(tfu_v_mul(xc, tfu_v_set1(1.44269504088896341f)));
    tfu_vf r = tfu_v_fma(n, tfu_v_set1(-0.693359375f), xc), p;
    r = tfu_v_fma(n, tfu_v_set1(2.12194440e-4f), r);
    p = tfu_v_set1(1.9875691500e-4f);
    p = tfu_v_fma(p, r, tfu_v_set1(1.3981999507e-3f));
    p = tfu_v_fma(p, r, tfu_v_set1(8.3334519073e-3f));
    p = tfu_v_fma(p, r, tfu_v_set1(4.1665795894e-2f));
    p = tfu_v_fma(p, r, tfu_v_set1(1.6666665459e-1f));
    p = tfu_v_fma(p, r, tfu_v_set1(5.0000001201e-1f));
    p = tfu_v_add(tfu_v_fma(p, tfu_v_mul(r, r), r), tfu_v_set1(1.0f));
    p = tfu_v_mul(tfu_v_mul(p, tfu_v_pow2i(tfu_v_sub(n, tfu_v_set1(1.0f)))), tfu_v_set1(2.0f));
    p = tfu_v_zero_below(p, x, -87.0f);
    return tfu_v_inf_above(p, x, 88.72283f);
}
/* 1/a from the hardware estimate and Newton steps r' = r (2 - a r), each
   doubling the bits: cheaper than a division, within an ulp or two */
TFU_X_VINLINE tfu_vf tfu_v_recip(tfu_vf a) {
    tfu_vf r = tfu_v_rcp_est(a), two = tfu_v_set1(2.0f);
    r = tfu_v_mul(r, tfu_v_sub(two, tfu_v_mul(a, r)));
#if !defined(TFU_X_AVX512)
    r = tfu_v_mul(r, tfu_v_sub(two, tfu_v_mul(a, r)));
#endif
#if defined(TFU_X_NEON)
    r = tfu_v_mul(r, tfu_v_sub(two, tfu_v_mul(a, r)));
#endif
    return r;
}
TFU_X_VINLINE tfu_vf tfu_v_sigmoid(tfu_vf x) {
    tfu_vf d = tfu_v_add(tfu_v_set1(1.0f), tfu_v_exp(tfu_v_sub(tfu_v_set1(0.0f), x)));
    /* e^-x overflows to inf for x < -88.7: the estimate of 1/inf is 0, the Newton step would make it NaN */
    return tfu_v_zero_below(tfu_v_recip(d), x, -88.0f);
}
/* tanh(|x|) = 1 - 2 / (e^(2|x|) + 1), sign restored */
TFU_X_VINLINE tfu_vf tfu_v_tanh(tfu_vf x) {
    tfu_vf e = tfu_v_exp(tfu_v_mul(tfu_v_abs(x), tfu_v_set1(2.0f)));
    tfu_vf t = tfu_v_sub(tfu_v_set1(1.0f), tfu_v_div(tfu_v_set1(2.0f), tfu_v_add(e, tfu_v_set1(1.0f))));
    return tfu_v_copysign(t, x);
}
/* gelu (tanh form): 0.5 (1 + tanh z) == sigmoid(2z) */
TFU_X_VINLINE tfu_vf tfu_v_gelu(tfu_vf x) {
    tfu_vf z2 = tfu_v_mul(tfu_v_fma(tfu_v_mul(tfu_v_mul(x, x), x), tfu_v_set1(0.044715f), x), tfu_v_set1(2.0f * 0.7978845608f));
    return tfu_v_mul(x, tfu_v_sigmoid(z2));
}
/* erf: Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7) */
TFU_X_VINLINE tfu_vf tfu_v_erf(tfu_vf x) {
    tfu_vf ax = tfu_v_abs(x), t, y;
    t = tfu_v_div(tfu_v_set1(1.0f), tfu_v_fma(ax, tfu_v_set1(0.3275911f), tfu_v_set1(1.0f)));
    y = tfu_v_set1(1.061405429f);
    y = tfu_v_fma(y, t, tfu_v_set1(-1.453152027f));
    y = tfu_v_fma(y, t, tfu_v_set1(1.421413741f));
    y = tfu_v_fma(y, t, tfu_v_set1(-0.284496736f));
    y = tfu_v_fma(y, t, tfu_v_set1(0.254829592f));
    y = tfu_v_mul(y, t);
    y = tfu_v_sub(tfu_v_set1(1.0f), tfu_v_mul(y, tfu_v_exp(tfu_v_sub(tfu_v_set1(0.0f), tfu_v_mul(ax, ax)))));
    return tfu_v_copysign(y, x);
}
TFU_X_VINLINE tfu_vf tfu_v_gelu_erf(tfu_vf x) {
    return tfu_v_mul(tfu_v_mul(x, tfu_v_set1(0.5f)), tfu_v_add(tfu_v_set1(1.0f), tfu_v_erf(tfu_v_mul(x, tfu_v_set1(0.70710678f)))));
}
#endif

static void tfu_x_k_binary(tfu_op op, int n, float *d, const float *a, const float *b) {
    int i = 0;
#ifdef TFU_X_VEC
    if (TFU_X_SIMD_ON()) {
        switch (op) {
        case TFU_OP_ADD: for (; i + TFU_VW <= n; i += TFU_VW) tfu_v_store(d + i, tfu_v_add(tfu_v_load(a + i), tfu_v_load(b + i))); break;
        case TFU_OP_SUB: for (; i + TFU_VW <= n; i += TFU_VW) tfu_v_store(d + i, tfu_v_sub(tfu_v_load(a + i), tfu_v_load(b + i))); break;
        case TFU_OP_MUL: for (; i + TFU_VW <= n; i += TFU_VW) tfu_v_store(d + i, tfu_v_mul(tfu_v_load(a + i), tfu_v_load(b + i))); break;
        default:         for (; i + TFU_VW <= n; i += TFU_VW) tfu_v_store(d + i, tfu_v_div(tfu_v_load(a + i), tfu_v_load(b + i))); break;
        }
    }
#endif
    switch (op) {
    case TFU_OP_ADD: for (; i < n; i++) d[i] = a[i] + b[i]; break;
    case TFU_OP_SUB: for (; i < n; i++) d[i] = a[i] - b[i]; break;
    case TFU_OP_MUL: for (; i < n; i++) d[i] = a[i] * b[i]; break;
    default:         for (; i < n; i++) d[i] = a[i] / b[i]; break;
    }
}

static void tfu_x_k_unary(tfu_op op, int n, float *d, const float *a, const float *p) {
    int i = 0;
#ifdef TFU_X_VEC
    if (TFU_X_SIMD_ON()) {
        tfu_vf p0 = tfu_v_set1(p[0]), p1 = tfu_v_set1(p[1]);
        switch (op) {
#define TFU_X_VLOOP(expr) for (; i + TFU_VW <= n; i += TFU_VW) { tfu_vf x = tfu_v_load(a + i); tfu_v_store(d + i, (expr)); } break
        case TFU_OP_SCALE: TFU_X_VLOOP(tfu_v_fma(x, p0, p1));
        case TFU_OP_CLAMP: TFU_X_VLOOP(tfu_v_min(tfu_v_max(x, p0), p1));
        case TFU_OP_NEG: TFU_X_VLOOP(tfu_v_sub(tfu_v_set1(0.0f), x));
        case TFU_OP_ABS: TFU_X_VLOOP(tfu_v_abs(x));
        case TFU_OP_SQR: TFU_X_VLOOP(tfu_v_mul(x, x));
        case TFU_OP_SQRT: TFU_X_VLOOP(tfu_v_sqrt(x));
        case TFU_OP_EXP: TFU_X_VLOOP(tfu_v_exp(x));
        case TFU_OP_TANH: TFU_X_VLOOP(tfu_v_tanh(x));
        case TFU_OP_SIGMOID: TFU_X_VLOOP(tfu_v_sigmoid(x));
        case TFU_OP_RELU: TFU_X_VLOOP(tfu_v_max(x, tfu_v_set1(0.0f)));
        case TFU_OP_GELU: TFU_X_VLOOP(tfu_v_gelu(x));
        case TFU_OP_GELU_ERF: TFU_X_VLOOP(tfu_v_gelu_erf(x));
        case TFU_OP_SILU: TFU_X_VLOOP(tfu_v_mul(x, tfu_v_sigmoid(x)));
        case TFU_OP_CONT: case TFU_OP_CPY: TFU_X_VLOOP(x);
#undef TFU_X_VLOOP
        default: break;  /* log, sin, cos: scalar */
        }
    }
#endif
    switch (op) {
    case TFU_OP_SCALE: { float s = p[0], c = p[1]; for (; i < n; i++) d[i] = a[i] * s + c; } break;
    case TFU_OP_CLAMP: { float lo = p[0], hi = p[1]; for (; i < n; i++) d[i] = a[i] < lo ? lo : a[i] > hi ? hi : a[i]; } break;
    case TFU_OP_NEG: for (; i < n; i++) d[i] = -a[i]; break;
    case TFU_OP_ABS: for (; i < n; i++) d[i] = fabsf(a[i]); break;
    case TFU_OP_SQR: for (; i < n; i++) d[i] = a[i] * a[i]; break;
    case TFU_OP_SQRT: for (; i < n; i++) d[i] = sqrtf(a[i]); break;
    case TFU_OP_EXP: for (; i < n; i++) d[i] = expf(a[i]); break;
    case TFU_OP_LOG: for (; i < n; i++) d[i] = logf(a[i]); break;
    case TFU_OP_SIN: for (; i < n; i++) d[i] = sinf(a[i]); break;
    case TFU_OP_COS: for (; i < n; i++) d[i] = cosf(a[i]); break;
    case TFU_OP_TANH: for (; i < n; i++) d[i] = tanhf(a[i]); break;
    case TFU_OP_SIGMOID: for (; i < n; i++) d[i] = tfu_x_sigmoid_f(a[i]); break;
    case TFU_OP_RELU: for (; i < n; i++) d[i] = a[i] > 0.0f ? a[i] : 0.0f; break;
    case TFU_OP_GELU: for (; i < n; i++) d[i] = tfu_x_gelu_f(a[i]); break;
    case TFU_OP_GELU_ERF: for (; i < n; i++) d[i] = tfu_x_gelu_erf_f(a[i]); break;
    case TFU_OP_SILU: for (; i < n; i++) d[i] = a[i] * tfu_x_sigmoid_f(a[i]); break;
    default: if (d != a) memmove(d + i, a + i, (size_t)(n - i) * sizeof(float)); break;  /* CONT, CPY */
    }
}

static void tfu_x_k_glu(int kind, int n, float *d, const float *g, const float *v) {
    int i = 0;
#ifdef TFU_X_VEC
    if (TFU_X_SIMD_ON()) {
        for (; i + TFU_VW <= n; i += TFU_VW) {
            tfu_vf x = tfu_v_load(g + i), a;
            switch (kind) {
            case TFU_GLU_REGLU: a = tfu_v_max(x, tfu_v_set1(0.0f)); break;
            case TFU_GLU_GEGLU: a = tfu_v_gelu(x); break;
            case TFU_GLU_GEGLU_ERF: a = tfu_v_gelu_erf(x); break;
            default: a = tfu_v_mul(x, tfu_v_sigmoid(x)); break;
            }
            tfu_v_store(d + i, tfu_v_mul(a, tfu_v_load(v + i)));
        }
    }
#endif
    switch (kind) {
    case TFU_GLU_REGLU: for (; i < n; i++) d[i] = (g[i] > 0.0f ? g[i] : 0.0f) * v[i]; break;
    case TFU_GLU_GEGLU: for (; i < n; i++) d[i] = tfu_x_gelu_f(g[i]) * v[i]; break;
    case TFU_GLU_GEGLU_ERF: for (; i < n; i++) d[i] = tfu_x_gelu_erf_f(g[i]) * v[i]; break;
    default: for (; i < n; i++) d[i] = g[i] * tfu_x_sigmoid_f(g[i]) * v[i]; break;
    }
}

/* Row reductions accumulate in f32 lanes: 8 partial sums on the scalar
   path, vector lanes on the SIMD path (then the tail). */
static float tfu_x_k_sumsq(int n, const float *a) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0}, r = 0;
    int i = 0, j;
#ifdef TFU_X_VEC
    if (TFU_X_SIMD_ON()) {
        tfu_vf acc0 = tfu_v_set1(0.0f), acc1 = tfu_v_set1(0.0f);
        for (; i + 2 * TFU_VW <= n; i += 2 * TFU_VW) {
            tfu_vf x0 = tfu_v_load(a + i), x1 = tfu_v_load(a + i + TFU_VW);
            acc0 = tfu_v_fma(x0, x0, acc0); acc1 = tfu_v_fma(x1, x1, acc1);
        }
        r = tfu_v_hsum(tfu_v_add(acc0, acc1));
    }
#endif
    for (; i + 8 <= n; i += 8) for (j = 0; j < 8; j++) s[j] += a[i + j] * a[i + j];
    for (; i < n; i++) r += a[i] * a[i];
    for (j = 0; j < 8; j++) r += s[j];
    return r;
}
static float tfu_x_k_sum(int n, const float *a) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0}, r = 0;
    int i = 0, j;
#ifdef TFU_X_VEC
    if (TFU_X_SIMD_ON()) {
        tfu_vf acc0 = tfu_v_set1(0.0f), acc1 = tfu_v_set1(0.0f);
        for (; i + 2 * TFU_VW <= n; i += 2 * TFU_VW) { acc0 = tfu_v_add(acc0, tfu_v_load(a + i)); acc1 = tfu_v_add(acc1, tfu_v_load(a + i + TFU_VW)); }
        r = tfu_v_hsum(tfu_v_add(acc0, acc1));
    }
#endif
    for (; i + 8 <= n; i += 8) for (j = 0; j < 8; j++) s[j] += a[i + j];
    for (; i < n; i++) r += a[i];
    for (j = 0; j < 8; j++) r += s[j];
    return r;
}

static void tfu_x_k_rms_norm(int n, float *d, const float *a, float eps) {
    float sc = 1.0f / sqrtf(tfu_x_k_sumsq(n, a) / (float)n + eps);
    float p[2];
    p[0] = sc; p[1] = 0.0f;
    tfu_x_k_unary(TFU_OP_SCALE, n, d, a, p);
}

static void tfu_x_k_norm(int n, float *d, const float *a, float eps) {
    float mean = tfu_x_k_sum(n, a) / (float)n, p[2];
    p[0] = 1.0f; p[1] = -mean;
    tfu_x_k_unary(TFU_OP_SCALE, n, d, a, p);                 /* d = a - mean */
    p[0] = 1.0f / sqrtf(tfu_x_k_sumsq(n, d) / (float)n + eps); p[1] = 0.0f;
    tfu_x_k_unary(TFU_OP_SCALE, n, d, d, p);
}

/* d = softmax(a*scale + mask); mask may be NULL. Three passes over a row
   that sits in L1/L2: max, exp and sum, scale. */
static void tfu_x_k_soft_max(int n, float *d, const float *a, const float *mask, float scale) {
    float mx = -INFINITY, sum = 0, p[2];
    int i = 0;
#ifdef TFU_X_VEC
    if (TFU_X_SIMD_ON()) {
        tfu_vf vs = tfu_v_set1(scale), vm = tfu_v_set1(-INFINITY), acc = tfu_v_set1(0.0f);
        for (; i + TFU_VW <= n; i += TFU_VW) {
            tfu_vf x = tfu_v_mul(tfu_v_load(a + i), vs);
            if (mask) x = tfu_v_add(x, tfu_v_load(mask + i));
            tfu_v_store(d + i, x); vm = tfu_v_max(vm, x);
        }
        mx = tfu_v_hmax(vm);
        for (; i < n; i++) { float x = a[i] * scale + (mask ? mask[i] : 0.0f); d[i] = x; if (x > mx) mx = x; }
        vm = tfu_v_set1(mx);
        for (i = 0; i + TFU_VW <= n; i += TFU_VW) {
            tfu_vf e = tfu_v_exp(tfu_v_sub(tfu_v_load(d + i), vm));
            tfu_v_store(d + i, e); acc = tfu_v_add(acc, e);
        }
        sum = tfu_v_hsum(acc);
        for (; i < n; i++) { float e = expf(d[i] - mx); d[i] = e; sum += e; }
        p[0] = 1.0f / sum; p[1] = 0.0f;
        tfu_x_k_unary(TFU_OP_SCALE, n, d, d, p);
        return;
    }
#endif
    for (i = 0; i < n; i++) { float x = a[i] * scale + (mask ? mask[i] : 0.0f); d[i] = x; if (x > mx) mx = x; }
    for (i = 0; i < n; i++) { float e = expf(d[i] - mx); d[i] = e; sum += e; }
    p[0] = 1.0f / sum; p[1] = 0.0f;
    tfu_x_k_unary(TFU_OP_SCALE, n, d, d, p);
}

/* Converts n values of any float type at stride `stride` bytes to f32. */
static void tfu_x_k_load(tfu_type type, int n, float *d, const char *src, size_t stride) {
    int i = 0;
    if (type == TFU_F32 && stride == 4) { memcpy(d, src, (size_t)n * 4); return; }
#if defined(TFU_X_VEC) && defined(tfu_v_load_f16)
    if (TFU_X_SIMD_ON() && type == TFU_F16 && stride == 2)
        for (; i + TFU_VW <= n; i += TFU_VW) tfu_v_store(d + i, tfu_v_load_f16(src + (size_t)i * 2));
#endif
#if defined(TFU_X_VEC)
    if (TFU_X_SIMD_ON() && type == TFU_BF16 && stride == 2)
        for (; i + TFU_VW <= n; i += TFU_VW) tfu_v_store(d + i, tfu_v_load_bf16(src + (size_t)i * 2));
#endif
    for (; i < n; i++) d[i] = tfu_x_ld(type, src + (size_t)i * stride);
}

static void tfu_x_k_store(tfu_type type, int n, char *dst, size_t stride, const float *s) {
    int i;
    if (type == TFU_F32 && stride == 4) { if ((const void *)dst != (const void *)s) memcpy(dst, s, (size_t)n * 4); return; }
    for (i = 0; i < n; i++) tfu_x_st(type, dst + (size_t)i * stride, s[i]);
}

/* Matrix-product kernel: c[j*ldc + i] = dot(a_i, b_j) over k for na rows of
   A (weights, any float type, contiguous rows) and nb rows of B (f32). The
   scalar path wants f32 rows of A (the caller converts); the SIMD path reads
   f16/bf16 rows directly, converting in registers, so weights stream from
   memory once at their own width. Register tile: MR rows of A x NR rows of
   B, each a vector accumulator over k. */
#ifdef TFU_X_VEC
static tfu_vf tfu_x_v_ld_any(tfu_type t, const void *p, int l) {
    if (t == TFU_F32) return tfu_v_load((const float *)p + l);
#if defined(tfu_v_load_f16)
    if (t == TFU_F16) return tfu_v_load_f16((const uint16_t *)p + l);
#endif
    return tfu_v_load_bf16((const uint16_t *)p + l);
}

/* The full tile: 4 rows of A x NRV rows of B, sixteen (or fewer) named
   accumulators so that they live in registers, one instance per weight type
   so that the loads are straight-line code. */
#define TFU_X_FMA4(w, j) do { acc0##j = tfu_v_fma(w##0, x##j, acc0##j); acc1##j = tfu_v_fma(w##1, x##j, acc1##j); \
                              acc2##j = tfu_v_fma(w##2, x##j, acc2##j); acc3##j = tfu_v_fma(w##3, x##j, acc3##j); } while (0)
#define TFU_X_DOT_FULL(name, LOADA, NRV)                                                                  \
static void name(tfu_type at, int k, const void *const *a, const float *const *b, float *c, size_t ldc) { \
    tfu_vf acc00 = tfu_v_set1(0.0f), acc10 = acc00, acc20 = acc00, acc30 = acc00;                         \
    tfu_vf acc01 = acc00, acc11 = acc00, acc21 = acc00, acc31 = acc00;                                    \
    tfu_vf acc02 = acc00, acc12 = acc00, acc22 = acc00, acc32 = acc00;                                    \
    tfu_vf acc03 = acc00, acc13 = acc00, acc23 = acc00, acc33 = acc00;                                    \
    const void *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];                                            \
    const float *b0 = b[0], *b1 = b[NRV > 1 ? 1 : 0], *b2 = b[NRV > 2 ? 2 : 0], *b3 = b[NRV > 3 ? 3 : 0]; \
    int l, i, j, kv = k - k % TFU_VW;                                                                     \
    for (l = 0; l < kv; l += TFU_VW) {                                                                    \
        tfu_vf w0 = LOADA(a0, l), w1 = LOADA(a1, l), w2 = LOADA(a2, l), w3 = LOADA(a3, l);                \
        tfu_vf x0 = tfu_v_load(b0 + l);                                                                   \
        TFU_X_FMA4(w, 0);                                                                                 \
        if (NRV > 1) { tfu_vf x1 = tfu_v_load(b1 + l); TFU_X_FMA4(w, 1); }                                \
        if (NRV > 2) { tfu_vf x2 = tfu_v_load(b2 + l); TFU_X_FMA4(w, 2); }                                \
        if (NRV > 3) { tfu_vf x3 = tfu_v_load(b3 + l); TFU_X_FMA4(w, 3); }                                \
    }                                                                                                     \
    {                                                                                                     \
        float r[4][4];                                                                                    \
        r[0][0] = tfu_v_hsum(acc00); r[1][0] = tfu_v_hsum(acc10); r[2][0] = tfu_v_hsum(acc20); r[3][0] = tfu_v_hsum(acc30); \
        if (NRV > 1) { r[0][1] = tfu_v_hsum(acc01); r[1][1] = tfu_v_hsum(acc11); r[2][1] = tfu_v_hsum(acc21); r[3][1] = tfu_v_hsum(acc31); } \
        if (NRV > 2) { r[0][2] = tfu_v_hsum(acc02); r[1][2] = tfu_v_hsum(acc12); r[2][2] = tfu_v_hsum(acc22); r[3][2] = tfu_v_hsum(acc32); } \
        if (NRV > 3) { r[0][3] = tfu_v_hsum(acc03); r[1][3] = tfu_v_hsum(acc13); r[2][3] = tfu_v_hsum(acc23); r[3][3] = tfu_v_hsum(acc33); } \
        for (i = 0; i < 4; i++) for (j = 0; j < NRV; j++) {                                               \
            float sum = r[i][j];                                                                          \
            for (l = kv; l < k; l++) sum += tfu_x_ld(at, (const char *)a[i] + (size_t)l * tfu_type_size(at)) * b[j][l]; \
            c[(size_t)j * ldc + (size_t)i] = sum;                                                         \
        }                                                                                                 \
    }                                                                                                     \
}
#define TFU_X_LDA_F32(p, l) tfu_v_load((const float *)(p) + (l))
#define TFU_X_LDA_BF16(p, l) tfu_v_load_bf16((const uint16_t *)(p) + (l))
TFU_X_DOT_FULL(tfu_x_k_dot_full_f32, TFU_X_LDA_F32, TFU_X_NR)
TFU_X_DOT_FULL(tfu_x_k_dot_full_bf16, TFU_X_LDA_BF16, TFU_X_NR)
/* one row of B (decoding a token): 4 rows of A, two vectors of k per step,
   eight independent accumulators to cover the FMA latency while the
   weights stream */
#if defined(__GNUC__)
#define TFU_X_PREFETCH(p) __builtin_prefetch((p), 0, 0)
#else
#define TFU_X_PREFETCH(p) ((void)0)
#endif
#define TFU_X_DOT_VEC(name, LOADA, ESZ)                                                                   \
static void name(tfu_type at, int k, const void *const *a, const float *const *b, float *c, size_t ldc,    \
                 const void *const *an) {                                                                 \
    tfu_vf s0 = tfu_v_set1(0.0f), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;        \
    const void *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];                                            \
    const float *b0 = b[0];                                                                               \
    int l, i, kv2 = k - k % (2 * TFU_VW), kv = k - k % TFU_VW;                                            \
    float r[4];                                                                                           \
    for (l = 0; l < kv2; l += 2 * TFU_VW) {                                                               \
        tfu_vf x = tfu_v_load(b0 + l), y = tfu_v_load(b0 + l + TFU_VW);                                   \
        if (an) {   /* the next four rows of weights stream in while these compute */                    \
            size_t o = (size_t)l * (ESZ);                                                                 \
            TFU_X_PREFETCH((const char *)an[0] + o); TFU_X_PREFETCH((const char *)an[1] + o);             \
            TFU_X_PREFETCH((const char *)an[2] + o); TFU_X_PREFETCH((const char *)an[3] + o);             \
            if ((ESZ) * 2 * TFU_VW > 64) {                                                                \
                TFU_X_PREFETCH((const char *)an[0] + o + 64); TFU_X_PREFETCH((const char *)an[1] + o + 64); \
                TFU_X_PREFETCH((const char *)an[2] + o + 64); TFU_X_PREFETCH((const char *)an[3] + o + 64); \
            }                                                                                             \
        }                                                                                                 \
        s0 = tfu_v_fma(LOADA(a0, l), x, s0); t0 = tfu_v_fma(LOADA(a0, l + TFU_VW), y, t0);                \
        s1 = tfu_v_fma(LOADA(a1, l), x, s1); t1 = tfu_v_fma(LOADA(a1, l + TFU_VW), y, t1);                \
        s2 = tfu_v_fma(LOADA(a2, l), x, s2); t2 = tfu_v_fma(LOADA(a2, l + TFU_VW), y, t2);                \
        s3 = tfu_v_fma(LOADA(a3, l), x, s3); t3 = tfu_v_fma(LOADA(a3, l + TFU_VW), y, t3);                \
    }                                                                                                     \
    for (; l < kv; l += TFU_VW) {                                                                         \
        tfu_vf x = tfu_v_load(b0 + l);                                                                    \
        s0 = tfu_v_fma(LOADA(a0, l), x, s0); s1 = tfu_v_fma(LOADA(a1, l), x, s1);                         \
        s2 = tfu_v_fma(LOADA(a2, l), x, s2); s3 = tfu_v_fma(LOADA(a3, l), x, s3);                         \
    }                                                                                                     \
    r[0] = tfu_v_hsum(tfu_v_add(s0, t0)); r[1] = tfu_v_hsum(tfu_v_add(s1, t1));                           \
    r[2] = tfu_v_hsum(tfu_v_add(s2, t2)); r[3] = tfu_v_hsum(tfu_v_add(s3, t3));                           \
    for (i = 0; i < 4; i++) {                                                                             \
        float sum = r[i];                                                                                 \
        for (l = kv; l < k; l++) sum += tfu_x_ld(at, (const char *)a[i] + (size_t)l * tfu_type_size(at)) * b0[l]; \
        c[i] = sum;                                                                                       \
    }                                                                                                     \
    (void)ldc;                                                                                            \
}
TFU_X_DOT_VEC(tfu_x_k_dot_vec_f32, TFU_X_LDA_F32, 4)
TFU_X_DOT_VEC(tfu_x_k_dot_vec_bf16, TFU_X_LDA_BF16, 2)
#if defined(tfu_v_load_f16)
#define TFU_X_LDA_F16(p, l) tfu_v_load_f16((const uint16_t *)(p) + (l))
TFU_X_DOT_FULL(tfu_x_k_dot_full_f16, TFU_X_LDA_F16, TFU_X_NR)
TFU_X_DOT_VEC(tfu_x_k_dot_vec_f16, TFU_X_LDA_F16, 2)
#endif

static void tfu_x_k_dot_tile(tfu_type at, int k, int mr, const void *const *a, int nr, const float *const *b, float *c, size_t ldc,
                             const void *const *an) {
    tfu_vf acc[TFU_X_MR][TFU_X_NR];
    int i, j, l, kv = k - k % TFU_VW;
    if (mr == TFU_X_MR && nr == TFU_X_NR) {
        if (at == TFU_F32) tfu_x_k_dot_full_f32(at, k, a, b, c, ldc);
#if defined(tfu_v_load_f16)
        else if (at == TFU_F16) tfu_x_k_dot_full_f16(at, k, a, b, c, ldc);
#endif
        else tfu_x_k_dot_full_bf16(at, k, a, b, c, ldc);
        return;
    }
    if (mr == TFU_X_MR && nr == 1) {
        if (at == TFU_F32) tfu_x_k_dot_vec_f32(at, k, a, b, c, ldc, an);
#if defined(tfu_v_load_f16)
        else if (at == TFU_F16) tfu_x_k_dot_vec_f16(at, k, a, b, c, ldc, an);
#endif
        else tfu_x_k_dot_vec_bf16(at, k, a, b, c, ldc, an);
        return;
    }
    for (i = 0; i < TFU_X_MR; i++) for (j = 0; j < TFU_X_NR; j++) acc[i][j] = tfu_v_set1(0.0f);
    for (l = 0; l < kv; l += TFU_VW)   /* edges of the output: any mr x nr */
        for (i = 0; i < mr; i++) {
            tfu_vf av = tfu_x_v_ld_any(at, a[i], l);
            for (j = 0; j < nr; j++) acc[i][j] = tfu_v_fma(av, tfu_v_load(b[j] + l), acc[i][j]);
        }
    for (i = 0; i < mr; i++) for (j = 0; j < nr; j++) {
        float sum = tfu_v_hsum(acc[i][j]);
        for (l = kv; l < k; l++) sum += tfu_x_ld(at, (const char *)a[i] + (size_t)l * tfu_type_size(at)) * b[j][l];
        c[(size_t)j * ldc + (size_t)i] = sum;
    }
}
#endif

static int tfu_x_k_dot_native(tfu_type at) {  /* can the kernel read A of this type as it is? */
#ifdef TFU_X_VEC
    if (!TFU_X_SIMD_ON()) return at == TFU_F32;
#if defined(tfu_v_load_f16)
    return 1;
#else
    return at != TFU_F16;
#endif
#else
    return at == TFU_F32;
#endif
}

static void tfu_x_k_dot_block(tfu_type at, int k, int na, const void *const *a, int nbr, const float *const *b, float *c, size_t ldc) {
    int i, j, l;
#ifdef TFU_X_VEC
    if (TFU_X_SIMD_ON()) {
        for (j = 0; j < nbr; j += TFU_X_NR)
            for (i = 0; i < na; i += TFU_X_MR)
                tfu_x_k_dot_tile(at, k, na - i < TFU_X_MR ? na - i : TFU_X_MR, a + i,
                                 nbr - j < TFU_X_NR ? nbr - j : TFU_X_NR, b + j, c + (size_t)j * ldc + (size_t)i, ldc,
                                 i + 2 * TFU_X_MR <= na ? a + i + TFU_X_MR : NULL);
        return;
    }
#endif
    (void)at;
    for (j = 0; j < nbr; j++) {
        for (i = 0; i + 4 <= na; i += 4) {
            const float *a0 = (const float *)a[i], *a1 = (const float *)a[i + 1], *a2 = (const float *)a[i + 2], *a3 = (const float *)a[i + 3], *bj = b[j];
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (l = 0; l < k; l++) { float x = bj[l]; s0 += a0[l] * x; s1 += a1[l] * x; s2 += a2[l] * x; s3 += a3[l] * x; }
            c[(size_t)j * ldc + (size_t)i] = s0; c[(size_t)j * ldc + (size_t)i + 1] = s1;
            c[(size_t)j * ldc + (size_t)i + 2] = s2; c[(size_t)j * ldc + (size_t)i + 3] = s3;
        }
        for (; i < na; i++) {
            const float *ai = (const float *)a[i], *bj = b[j];
            float s = 0;
            for (l = 0; l < k; l++) s += ai[l] * bj[l];
            c[(size_t)j * ldc + (size_t)i] = s;
        }
    }
}

/* >>plan =================================================================
   compile: classify -> fuse (one table) -> order groups -> stages ->
   lifetimes -> offsets -> lower each group to a little program. */

/* operation classes, the rows and columns of the fusion table */
enum { TFU_X_C_LEAF, TFU_X_C_VIEW, TFU_X_C_ELT, TFU_X_C_ROW, TFU_X_C_MM, TFU_X_C_OTHER, TFU_X_C_COUNT };

static int tfu_x_class(const tfu_tensor *t) {
    switch (t->op) {
    case TFU_OP_NONE: return TFU_X_C_LEAF;
    case TFU_OP_VIEW: return TFU_X_C_VIEW;
    case TFU_OP_RMS_NORM: case TFU_OP_NORM: case TFU_OP_SOFT_MAX: return TFU_X_C_ROW;
    case TFU_OP_MUL_MAT: return TFU_X_C_MM;
    case TFU_OP_GET_ROWS: case TFU_OP_ROPE: case TFU_OP_CONCAT: case TFU_OP_SUM_ROWS:
    case TFU_OP_MEAN: case TFU_OP_ARGMAX: return TFU_X_C_OTHER;
    default: return TFU_X_C_ELT;
    }
}

/* THE fusion table: may a consumer of class [row] take a producer of class
   [column] into its group (over an edge that reads the producer element for
   element, same shape)? Every backend uses this table; a backend only
   removes group kinds it cannot run (tfu_x_backend_kinds). Row groups run a
   whole row at a time, matmul groups a tile, so a group never holds both. */
static const unsigned char tfu_x_fuse_table[TFU_X_C_COUNT][TFU_X_C_COUNT] = {
    /*               leaf view elt row mm other */
    /* leaf  */     { 0,   0,   0,  0,  0,  0 },
    /* view  */     { 0,   0,   0,  0,  0,  0 },
    /* elt   */     { 0,   0,   1,  1,  1,  0 },   /* chains, norm epilogue, matmul epilogue */
    /* row   */     { 0,   0,   1,  1,  0,  0 },   /* norm/softmax prologue, norm after norm */
    /* mm    */     { 0,   0,   0,  0,  0,  0 },   /* a product never takes its operands in  */
    /* other */     { 0,   0,   0,  0,  0,  0 },
};

/* operand s of t is read element for element at t's own index */
static int tfu_x_identity_operand(const tfu_tensor *t, int s) {
    const tfu_tensor *p = t->src[s];
    if (!p || !tfu_same_shape(p, t)) return 0;
    switch (t->op) {
    case TFU_OP_SOFT_MAX: case TFU_OP_RMS_NORM: case TFU_OP_NORM: case TFU_OP_CPY: return s == 0;
    case TFU_OP_GLU: return t->op_params_i[2] ? s < 2 : 0;
    default: return tfu_x_class(t) == TFU_X_C_ELT && s < 2;
    }
}

/* may t take its producer src[s] into one group (class, shape, operand role)? */
static int tfu_x_edge_fusable(const tfu_tensor *t, int s) {
    const tfu_tensor *p = t->src[s];
    if (!p || p->op == TFU_OP_CPY || p->type != TFU_F32) return 0;
    if (!tfu_x_fuse_table[tfu_x_class(t)][tfu_x_class(p)]) return 0;
    return tfu_x_identity_operand(t, s);
}

static int tfu_x_n_src(const tfu_tensor *t) {
    int s, n = 0;
    for (s = 0; s < TFU_MAX_SRC; s++) if (t->src[s]) n = s + 1;
    return n;
}

/* memory */
#if !defined(TFU_NO_MALLOC)
static void *tfu_x_malloc_fn(size_t n, void *u) { (void)u; return malloc(n); }
static void tfu_x_free_fn(void *p, void *u) { (void)u; free(p); }
#endif

typedef struct tfu_x_block { struct tfu_x_block *next; size_t size, used; } tfu_x_block;

static unsigned char *tfu_x_align_ptr(void *p) {
    return (unsigned char *)p + ((TFU_X_ALIGN - (uintptr_t)p % TFU_X_ALIGN) % TFU_X_ALIGN);
}

/* one external operand of a group program */
typedef struct tfu_x_ext {
    int32_t tid;      /* tensor index in the graph                 */
    int32_t col_off;  /* first column read (GLU halves)            */
} tfu_x_ext;

/* one instruction of a group program: a node of the group */
typedef struct tfu_x_ins {
    int32_t tid;
    int32_t src[TFU_MAX_SRC]; /* >= 0: instruction index in the group; < 0: -1-ext index */
    int32_t n_src;
    int32_t slot;            /* scratch slot, -1 if written straight to memory  */
    int32_t store;           /* materialised                                     */
} tfu_x_ins;

typedef struct tfu_x_group {
    int     kind, stage, first_ins, n_ins, first_ext, n_ext, n_slots, n_mm;
    int     first_node;      /* smallest tensor index, for ordering and report */
    int64_t ne[TFU_MAX_DIMS];
    int64_t chunk;           /* columns per chunk (whole row for ROW groups)  */
    int64_t rows_per_item, n_items;
    int64_t mb, nbk;         /* matmul blocks: A rows and B rows per item     */
    int64_t n_mblk, n_nblk;
} tfu_x_group;

/* per-thread scratch layout (byte offsets, computed at compile) */
typedef struct tfu_x_scratch_layout { size_t slots, gather, tiles, pack, ptrs, outp, total; } tfu_x_scratch_layout;

struct tfu_plan {
    tfu_allocator   al;
    tfu_plan_options opt;
    tfu_context    *ctx;
    tfu_graph      *graph;
    uint64_t        hash;
    int             n_all;
    tfu_tensor    **t;        /* the bound graph's all[]                   */
    int32_t        *group;    /* per tensor: its group, -1 for leaf/view   */
    int32_t        *ins_of;   /* per tensor: its instruction index or -1   */
    unsigned char  *mat;      /* per tensor: materialised                  */
    int64_t        *offs;     /* per tensor: arena offset or -1            */
    int32_t        *life0, *life1;
    int32_t        *view_stage; /* per tensor: a flagged view, the stage of its root; else -1 */
    int             n_groups, n_stages;
    tfu_x_group    *groups;   /* in execution order (by stage)             */
    int32_t        *stage_first; /* groups of stage s: [stage_first[s], stage_first[s+1]) */
    int64_t        *stage_items; /* prefix sum of items over the groups of a stage, per group */
    tfu_x_ins      *ins;
    tfu_x_ext      *ext;
    int             n_ins, n_ext;
    size_t          arena_bytes, arena_unfused;
    unsigned char  *arena;
    void           *arena_raw;      /* as allocated, when the plan owns it */
    int             arena_owned;
    tfu_x_scratch_layout sl;  /* per thread */
    void           *scratch, *scratch_raw;
    int            *scratch_busy;  /* caller's parallel-for: claimed areas */
    int             caller_sense;
    int             n_threads;
    tfu_result      err;
    tfu_plan_stats  stats;
    tfu_x_block    *blocks;
    struct tfu_x_pool *pool;
    /* run state */
    int             run_stage;
    volatile int    run_stop;
};

static void *tfu_x_palloc(tfu_plan *p, size_t n) {
    tfu_x_block *b = p->blocks;
    size_t need = tfu_x_align_up(n, 16);
    if (!b || b->size - b->used < need) {
        size_t sz = need + sizeof(tfu_x_block) + 64 > 65536 ? need + sizeof(tfu_x_block) + 64 : 65536;
        b = (tfu_x_block *)p->al.alloc_fn(sz, p->al.user);
        if (!b) return NULL;
        b->next = p->blocks; b->size = sz; b->used = tfu_x_align_up(sizeof *b, 64);
        p->blocks = b;
    }
    {
        unsigned char *r = (unsigned char *)b + b->used;
        b->used += need;
        memset(r, 0, n);
        return r;
    }
}

/* the tensor a read of t really touches: through views to a computed value
   or a leaf */
static const tfu_tensor *tfu_x_vroot(const tfu_tensor *t) {
    while (t->op == TFU_OP_VIEW) t = t->src[0];
    return t;
}

typedef struct tfu_x_fuse_state {
    int       n, stamp;
    int       ug, uh, ux; /* the candidate group: groups ug, uh and node ux */
    int32_t  *group;   /* per tensor: founding tensor of its group, -1  */
    int32_t  *next;    /* per tensor: next member of its group, -1      */
    int32_t  *seen;    /* per tensor: stamp of the last search          */
    int32_t  *stack;
    unsigned char *has; /* per group: bit 0 matmul, 1 row, 2 cpy         */
    /* levels: a group that depends on group G has a higher level than G,
       so an operand from a group of level <= G's cannot close a cycle and
       needs no search. Raised along consumer edges as groups grow. */
    int32_t  *lvl;     /* per group (founder)                           */
    int32_t  *head, *tail, *e_to, *e_next; /* consumer edges per group    */
    int       n_e, lmin;
} tfu_x_fuse_state;

#define TFU_X_MAX_MM 4   /* matrix products in one group (tiles in scratch) */
#define TFU_X_UNKNOWN ((size_t)-1)

static int tfu_x_in_u(const tfu_x_fuse_state *st, int v) {
    return v == st->ux || (st->group[v] >= 0 && (st->group[v] == st->ug || st->group[v] == st->uh));
}

/* Would the candidate group u depend on itself through something outside
   it? Searches backwards from operand q; a group runs as a unit, so every
   member of a group met on the way counts as a dependency. */
static int tfu_x_reaches(const tfu_graph *gr, tfu_x_fuse_state *st, int q) {
    int sp = 0, s;
    if (st->seen[q] == st->stamp) return 0;
    st->seen[q] = st->stamp; st->stack[sp++] = q;
    while (sp) {
        int v = st->stack[--sp], m;
        if (tfu_x_in_u(st, v)) return 1;
        if (st->group[v] >= 0 && st->lvl[st->group[v]] <= st->lmin) continue;   /* cannot depend on the candidate */
        for (m = st->group[v] >= 0 ? st->group[v] : v; m >= 0; m = st->group[v] >= 0 ? st->next[m] : -1) {
            const tfu_tensor *t = gr->all[m];
            if (st->seen[m] != st->stamp) { st->seen[m] = st->stamp; st->stack[sp++] = m; }
            for (s = 0; s < TFU_MAX_SRC; s++) if (t->src[s]) {
                int w = gr->srcs[(size_t)m * TFU_MAX_SRC + s];
                if (st->seen[w] != st->stamp) { st->seen[w] = st->stamp; st->stack[sp++] = w; }
            }
        }
    }
    return 0;
}

/* lifts group g to at least level l, and its consumers above it */
static void tfu_x_raise(tfu_x_fuse_state *st, int g, int l) {
    int sp = 0;
    if (st->lvl[g] >= l) return;
    st->lvl[g] = l; st->stack[sp++] = g;
    while (sp) {
        int f = st->stack[--sp], e;
        for (e = st->head[f]; e >= 0; e = st->e_next[e]) {
            int d = st->group[st->e_to[e]];
            if (d == f || st->lvl[d] > st->lvl[f]) continue;
            st->lvl[d] = st->lvl[f] + 1;
            if (sp < 2 * st->n) st->stack[sp++] = d;
        }
    }
}

/* after x entered group g: g's level and the consumer edges into it */
static void tfu_x_link(const tfu_graph *gr, tfu_x_fuse_state *st, int g, int x) {
    int s, l = st->lvl[g];
    for (s = 0; s < TFU_MAX_SRC; s++) {
        int q = gr->srcs[(size_t)x * TFU_MAX_SRC + s], k;
        if (q < 0) continue;
        while (gr->all[q]->op == TFU_OP_VIEW) q = gr->srcs[(size_t)q * TFU_MAX_SRC];
        k = st->group[q];
        if (k < 0 || k == g) continue;
        if (st->lvl[k] + 1 > l) l = st->lvl[k] + 1;
        st->e_to[st->n_e] = x; st->e_next[st->n_e] = -1;       /* k -> g */
        if (st->tail[k] >= 0) st->e_next[st->tail[k]] = st->n_e; else st->head[k] = st->n_e;
        st->tail[k] = st->n_e++;
    }
    tfu_x_raise(st, g, l);
}

/* legality of group G (founder g) together with group H (founder h, or -1)
   and the new node x (or -1): no operand read differently than element for
   element inside the group, and no path that leaves it and comes back */
static int tfu_x_fuse_legal(const tfu_graph *gr, tfu_x_fuse_state *st, int g, int h, int x) {
    int pass, m, s, lmin;
    unsigned char has = (unsigned char)(st->has[g] | (h >= 0 ? st->has[h] : 0));
    if (x >= 0) {
        int c = tfu_x_class(gr->all[x]);
        has |= (unsigned char)((c == TFU_X_C_MM ? 1 : 0) | (c == TFU_X_C_ROW ? 2 : 0) | (gr->all[x]->op == TFU_OP_CPY ? 4 : 0));
    }
    if ((has & 3) == 3) return 0;                 /* matmul tiles and whole rows do not mix */
    if ((has & 4) && h >= 0) return 0;            /* a write to user memory never merges groups */
    if (h >= 0 && (has & 1)) {                    /* at most TFU_X_MAX_MM products share a tile */
        int n_mm = 0;
        for (m = g; m >= 0; m = st->next[m]) n_mm += gr->all[m]->op == TFU_OP_MUL_MAT;
        for (m = h; m >= 0; m = st->next[m]) n_mm += gr->all[m]->op == TFU_OP_MUL_MAT;
        if (n_mm > TFU_X_MAX_MM) return 0;
    }
    st->ug = g; st->uh = h; st->ux = x;
    st->stamp++;
    lmin = st->lmin = h >= 0 && st->lvl[h] < st->lvl[g] ? st->lvl[h] : st->lvl[g];
    /* joining: only x's operands are new edges; merging: check both groups whole */
    for (pass = 0; pass < 3; pass++) {
        m = pass == 0 ? (h >= 0 ? g : -1) : pass == 1 ? h : x;
        for (; m >= 0; m = pass == 2 ? -1 : st->next[m]) {
            const tfu_tensor *t = gr->all[m];
            for (s = 0; s < TFU_MAX_SRC; s++) {
                int q;
                if (!t->src[s]) continue;
                q = gr->srcs[(size_t)m * TFU_MAX_SRC + s];
                if (tfu_x_in_u(st, q)) { if (!tfu_x_edge_fusable(t, s)) return 0; }
                else {
                    int r = q, lv;
                    while (gr->all[r]->op == TFU_OP_VIEW) r = gr->srcs[(size_t)r * TFU_MAX_SRC];
                    if (tfu_x_in_u(st, r)) return 0;   /* through a view into the group: not element for element */
                    lv = st->group[r] >= 0 ? st->lvl[st->group[r]] : -1;
                    if (lv > lmin && tfu_x_reaches(gr, st, q)) return 0;   /* a lower level cannot depend on g or h */
                }
            }
        }
    }
    if (has & 4) {  /* a copy into user memory: nothing in the group may read those bytes */
        for (pass = 0; pass < 2; pass++)
            for (m = pass == 0 ? g : x; m >= 0; m = pass == 1 ? -1 : st->next[m]) {
                const tfu_tensor *t = gr->all[m];
                int pass2, r;
                if (t->op != TFU_OP_CPY) continue;
                for (pass2 = 0; pass2 < 2; pass2++)
                    for (r = pass2 == 0 ? g : x; r >= 0; r = pass2 == 1 ? -1 : st->next[r]) {
                        const tfu_tensor *rt = gr->all[r];
                        for (s = 0; s < TFU_MAX_SRC; s++) {
                            const tfu_tensor *q = rt->src[s];
                            if (!q || (rt->op == TFU_OP_CPY && s == 1)) continue;
                            q = tfu_x_vroot(q);
                            if (q->op == TFU_OP_CPY) q = q->view_src;
                            if (q == t->view_src) return 0;
                        }
                    }
            }
    }
    return 1;
}

static void tfu_x_fuse_add(tfu_x_fuse_state *st, const tfu_graph *gr, int g, int x) {
    int c = tfu_x_class(gr->all[x]), m = g;
    while (st->next[m] >= 0) m = st->next[m];
    st->next[m] = x; st->next[x] = -1; st->group[x] = g;
    st->has[g] |= (unsigned char)((c == TFU_X_C_MM ? 1 : 0) | (c == TFU_X_C_ROW ? 2 : 0) | (gr->all[x]->op == TFU_OP_CPY ? 4 : 0));
}

static void tfu_x_fuse_merge(tfu_x_fuse_state *st, int g, int h) {
    int m = g;
    while (st->next[m] >= 0) m = st->next[m];
    st->next[m] = h;
    for (m = h; m >= 0; m = st->next[m]) st->group[m] = g;
    st->has[g] |= st->has[h];
    if (st->head[h] >= 0) {
        if (st->tail[g] >= 0) st->e_next[st->tail[g]] = st->head[h]; else st->head[g] = st->head[h];
        st->tail[g] = st->tail[h];
    }
    st->lvl[g] = st->lvl[g] > st->lvl[h] ? st->lvl[g] : st->lvl[h];
    st->lvl[g]--;                      /* re-raised by one so the consumers follow */
    tfu_x_raise(st, g, st->lvl[g] + 1);
}

/* Forms groups; group[i] = founding tensor index (-1 for leaves and views). */
static int tfu_x_fuse(const tfu_graph *gr, int fusion, int32_t *group, tfu_allocator *al) {
    tfu_x_fuse_state st;
    int n = gr->n_all, i, s, ok = 0;
    st.n = n; st.stamp = 0; st.ug = st.uh = st.ux = -1;
    st.next = (int32_t *)al->alloc_fn((size_t)n * sizeof(int32_t) + 4, al->user);
    st.seen = (int32_t *)al->alloc_fn((size_t)n * sizeof(int32_t) + 4, al->user);
    st.stack = (int32_t *)al->alloc_fn((size_t)n * sizeof(int32_t) * 2 + 4, al->user);
    st.has = (unsigned char *)al->alloc_fn((size_t)n + 1, al->user);
    st.lvl = (int32_t *)al->alloc_fn(((size_t)n * 3 + 4) * sizeof(int32_t), al->user);
    st.e_to = (int32_t *)al->alloc_fn(((size_t)n * TFU_MAX_SRC * 2 + 4) * sizeof(int32_t), al->user);
    st.group = group; st.n_e = 0;
    if (!st.next || !st.seen || !st.stack || !st.has || !st.lvl || !st.e_to) goto done;
    st.head = st.lvl + n; st.tail = st.head + n; st.e_next = st.e_to + (size_t)n * TFU_MAX_SRC;
    memset(st.has, 0, (size_t)n + 1);
    for (i = 0; i < n; i++) st.seen[i] = 0;
    for (i = 0; i < n; i++) {
        const tfu_tensor *t = gr->all[i];
        int c = tfu_x_class(t), g = -1;
        st.next[i] = -1; group[i] = -1;
        st.lvl[i] = 0; st.head[i] = st.tail[i] = -1;
        if (c == TFU_X_C_LEAF || c == TFU_X_C_VIEW) continue;
        if (fusion) {
            for (s = 0; s < TFU_MAX_SRC; s++) {
                int q, h;
                if (!t->src[s] || !tfu_x_edge_fusable(t, s)) continue;
                q = gr->srcs[(size_t)i * TFU_MAX_SRC + s];
                h = group[q];
                if (h < 0 || h == g) continue;
                if (g < 0) {
                    if (tfu_x_fuse_legal(gr, &st, h, -1, i)) { g = h; tfu_x_fuse_add(&st, gr, g, i); tfu_x_link(gr, &st, g, i); }
                } else if (tfu_x_fuse_legal(gr, &st, g, h, -1)) {
                    tfu_x_fuse_merge(&st, g, h);
                }
            }
        }
        if (g < 0) {
            group[i] = i;
            st.has[i] = (unsigned char)((c == TFU_X_C_MM ? 1 : 0) | (c == TFU_X_C_ROW ? 2 : 0) | (t->op == TFU_OP_CPY ? 4 : 0));
            tfu_x_link(gr, &st, i, i);
        }
    }
    ok = 1;
done:
    if (st.next) al->free_fn(st.next, al->user);
    if (st.seen) al->free_fn(st.seen, al->user);
    if (st.stack) al->free_fn(st.stack, al->user);
    if (st.has) al->free_fn(st.has, al->user);
    if (st.lvl) al->free_fn(st.lvl, al->user);
    if (st.e_to) al->free_fn(st.e_to, al->user);
    return ok;
}

/* What one planning pass decides: groups, their order and stages, which
   values are materialised, their lifetimes and arena offsets. */
typedef struct tfu_x_layout {
    int32_t *group;       /* per tensor: founder, -1 for leaf/view          */
    int32_t *order;       /* founders in execution order (Kahn, by stage)   */
    int32_t *stage;       /* per tensor (founders): stage                   */
    unsigned char *mat;   /* per tensor: materialised                       */
    int32_t *life0, *life1;
    int64_t *offs;        /* per tensor: arena offset, -1 if none           */
    int      n_groups, n_stages;
    size_t   arena;
} tfu_x_layout;

static int tfu_x_is_value(const tfu_tensor *t) {  /* a computed tensor with memory of its own */
    int c = tfu_x_class(t);
    return c != TFU_X_C_LEAF && c != TFU_X_C_VIEW && t->op != TFU_OP_CPY;
}

static size_t tfu_x_value_bytes(const tfu_tensor *t) { return tfu_x_align_up(tfu_nbytes(t), TFU_X_ALIGN); }

typedef struct tfu_x_touch { int32_t grp; int32_t write; const tfu_tensor *root; size_t lo, hi; } tfu_x_touch;

static int tfu_x_plan_layout(const tfu_graph *gr, int fusion, tfu_allocator *al, tfu_x_layout *L) {
    int n = gr->n_all, i, s, k, ok = 0, n_order = 0, n_touch = 0, qh = 0, qt = 0;
    int32_t *indeg = NULL, *adj_first = NULL, *adj = NULL, *queue = NULL, *vals = NULL, *vr = NULL;
    size_t *bytes = NULL;
    tfu_x_touch *touch = NULL;
    size_t n_edges = 0;
#define TFU_X_TMP(ptr, type, count) ptr = (type *)al->alloc_fn(sizeof(type) * (size_t)(count) + 8, al->user); if (!ptr) goto done
    TFU_X_TMP(indeg, int32_t, n); TFU_X_TMP(adj_first, int32_t, n + 1); TFU_X_TMP(queue, int32_t, n);
    TFU_X_TMP(vals, int32_t, n); TFU_X_TMP(bytes, size_t, n); TFU_X_TMP(vr, int32_t, n);
    for (i = 0; i < n; i++) vr[i] = gr->all[i]->op == TFU_OP_VIEW ? vr[gr->srcs[(size_t)i * TFU_MAX_SRC]] : i;  /* through views */
    if (!tfu_x_fuse(gr, fusion, L->group, al)) goto done;

    /* materialised: flagged, used outside the group or through a view */
    for (i = 0; i < n; i++) L->mat[i] = 0;
    for (i = 0; i < n; i++) {
        const tfu_tensor *t = gr->all[i];
        if (L->group[i] >= 0 && ((t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)) || gr->uses[i] == 0 || t->op == TFU_OP_CPY)) L->mat[i] = 1;
        for (s = 0; s < TFU_MAX_SRC; s++) if (t->src[s]) {
            int q = gr->srcs[(size_t)i * TFU_MAX_SRC + s];
            if (L->group[q] >= 0 && (L->group[i] != L->group[q] || !tfu_x_edge_fusable(t, s))) L->mat[q] = 1;
        }
    }

    /* group graph: edges producer founder -> consumer founder */
    for (i = 0; i <= n; i++) adj_first[i] = 0;
    for (i = 0; i < n; i++) indeg[i] = 0;
    for (k = 0; k < 2; k++) {
        for (i = 0; i < n; i++) {
            const tfu_tensor *t = gr->all[i];
            if (L->group[i] < 0) continue;
            for (s = 0; s < TFU_MAX_SRC; s++) if (t->src[s]) {
                int r = vr[gr->srcs[(size_t)i * TFU_MAX_SRC + s]];
                if (L->group[r] < 0 || L->group[r] == L->group[i]) continue;
                if (k == 0) { adj_first[L->group[r] + 1]++; n_edges++; }
                else { adj[adj_first[L->group[r]] + indeg[L->group[r]]++] = L->group[i]; }
            }
        }
        if (k == 0) {
            for (i = 0; i < n; i++) adj_first[i + 1] += adj_first[i];
            TFU_X_TMP(adj, int32_t, n_edges);
        }
    }
    for (i = 0; i < n; i++) indeg[i] = 0;
    for (i = 0; i < (int)n_edges; i++) indeg[adj[i]]++;
    L->n_groups = 0;
    for (i = 0; i < n; i++) if (L->group[i] == i) { L->n_groups++; if (!indeg[i]) queue[qt++] = i; }
    while (qh < qt) {   /* Kahn: a founder leaves the queue once all its producers did */
        int g = queue[qh++], e;
        L->order[n_order++] = g;
        for (e = adj_first[g]; e < adj_first[g + 1]; e++) if (--indeg[adj[e]] == 0) queue[qt++] = adj[e];
    }
    TFU_ASSERT(n_order == L->n_groups);

    /* user memory written by copies: who touches which bytes */
    for (i = 0; i < n; i++) if (gr->all[i]->op == TFU_OP_CPY) n_touch += 1 + n;
    if (n_touch) {
        int nt = 0;
        TFU_X_TMP(touch, tfu_x_touch, n_touch);
        for (i = 0; i < n; i++) {
            const tfu_tensor *t = gr->all[i];
            if (L->group[i] < 0) continue;
            if (t->op == TFU_OP_CPY) {
                touch[nt].grp = L->group[i]; touch[nt].write = 1; touch[nt].root = t->view_src;
                touch[nt].lo = t->view_offs; touch[nt].hi = t->view_offs + tfu_nbytes(t); nt++;
            }
            for (s = 0; s < TFU_MAX_SRC; s++) {
                const tfu_tensor *q = t->src[s];
                if (!q || (t->op == TFU_OP_CPY && s == 1)) continue;
                if (tfu_x_vroot(q)->op != TFU_OP_NONE) continue;
                touch[nt].grp = L->group[i]; touch[nt].write = 0;
                touch[nt].root = q->view_src ? q->view_src : q;
                touch[nt].lo = q->view_src ? q->view_offs : 0; touch[nt].hi = touch[nt].lo + tfu_nbytes(q); nt++;
            }
        }
        n_touch = nt;
    }

    /* stages: as soon as producers are done and no earlier group's bytes conflict */
    L->n_stages = 0;
    for (k = 0; k < n_order; k++) L->stage[L->order[k]] = 0;
    for (k = 0; k < n_order; k++) {
        int g = L->order[k], st = L->stage[g], e, a, b;
        for (a = 0; a < n_touch; a++) {
            if (touch[a].grp != g) continue;
            for (b = 0; b < n_touch; b++) {
                int pos_b, j;
                if (touch[b].grp == g || touch[b].root != touch[a].root || !(touch[a].write || touch[b].write)) continue;
                if (touch[a].lo >= touch[b].hi || touch[b].lo >= touch[a].hi) continue;
                for (pos_b = -1, j = 0; j < k; j++) if (L->order[j] == touch[b].grp) pos_b = j;
                if (pos_b >= 0 && L->stage[touch[b].grp] + 1 > st) st = L->stage[touch[b].grp] + 1;
            }
        }
        L->stage[g] = st;
        if (st + 1 > L->n_stages) L->n_stages = st + 1;
        for (e = adj_first[g]; e < adj_first[g + 1]; e++) if (L->stage[adj[e]] < st + 1) L->stage[adj[e]] = st + 1;
    }
    /* execution order: by stage, Kahn order inside a stage (a stable counting sort) */
    {
        int st2;
        for (st2 = 0; st2 <= L->n_stages; st2++) indeg[st2] = 0;
        for (k = 0; k < n_order; k++) indeg[L->stage[L->order[k]] + 1]++;
        for (st2 = 0; st2 < L->n_stages; st2++) indeg[st2 + 1] += indeg[st2];
        for (k = 0; k < n_order; k++) queue[indeg[L->stage[L->order[k]]]++] = L->order[k];
        memcpy(L->order, queue, sizeof(int32_t) * (size_t)n_order);
    }

    /* lifetimes: from the producing stage to the last reading stage; flagged values to the end */
    for (i = 0; i < n; i++) { L->life0[i] = L->life1[i] = -1; L->offs[i] = -1; }
    for (i = 0; i < n; i++) {
        const tfu_tensor *t = gr->all[i];
        if (L->mat[i] && tfu_x_is_value(t)) L->life0[i] = L->life1[i] = L->stage[L->group[i]];
    }
    for (i = 0; i < n; i++) {
        const tfu_tensor *t = gr->all[i];
        if (t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)) {
            int r = vr[i];
            if (L->life0[r] >= 0) L->life1[r] = L->n_stages - 1;   /* alive until the run ends */
        }
        if (L->group[i] < 0) continue;
        for (s = 0; s < TFU_MAX_SRC; s++) if (t->src[s]) {
            int r = vr[gr->srcs[(size_t)i * TFU_MAX_SRC + s]];
            if (L->life0[r] >= 0 && L->group[r] != L->group[i] && L->life1[r] < L->stage[L->group[i]]) L->life1[r] = L->stage[L->group[i]];
        }
    }

    /* offsets: largest first, lowest gap that no value alive at the same time covers */
    {
        int nv = 0, a, b, gap;
        L->arena = 0;
        for (i = 0; i < n; i++) if (L->life0[i] >= 0) vals[nv++] = i;
        for (a = 0; a < nv; a++) bytes[a] = tfu_x_value_bytes(gr->all[vals[a]]);
        for (gap = nv / 2; gap > 0; gap /= 2)   /* shell sort: size descending, index ascending */
            for (a = gap; a < nv; a++) {
                int v = vals[a]; size_t sv = bytes[a];
                for (b = a; b >= gap && (bytes[b - gap] < sv || (bytes[b - gap] == sv && vals[b - gap] > v)); b -= gap) {
                    vals[b] = vals[b - gap]; bytes[b] = bytes[b - gap];
                }
                vals[b] = v; bytes[b] = sv;
            }
        for (a = 0; a < nv; a++) {
            int v = vals[a], nl = 0, c, d;
            size_t sz = bytes[a], off = 0;
            for (b = 0; b < a; b++) {   /* placed values alive at the same time, by offset */
                int u = vals[b];
                if (L->life1[u] < L->life0[v] || L->life1[v] < L->life0[u]) continue;
                for (c = nl++; c > 0 && L->offs[vals[queue[c - 1]]] > L->offs[u]; c--) queue[c] = queue[c - 1];
                queue[c] = b;
            }
            for (d = 0; d < nl; d++) {  /* the lowest gap that fits */
                size_t uo = (size_t)L->offs[vals[queue[d]]], ue = uo + bytes[queue[d]];
                if (off + sz <= uo) break;
                if (ue > off) off = ue;
            }
            L->offs[v] = (int64_t)off;
            if (off + sz > L->arena) L->arena = off + sz;
        }
    }
    ok = 1;
done:
    if (indeg) al->free_fn(indeg, al->user);
    if (adj_first) al->free_fn(adj_first, al->user);
    if (adj) al->free_fn(adj, al->user);
    if (queue) al->free_fn(queue, al->user);
    if (vals) al->free_fn(vals, al->user);
    if (bytes) al->free_fn(bytes, al->user);
    if (vr) al->free_fn(vr, al->user);
    if (touch) al->free_fn(touch, al->user);
    return ok;
#undef TFU_X_TMP
}

/* >>cpu ================================================================== */

#define TFU_X_ELT_CHUNK 256   /* columns per chunk of an element-wise group: short phases keep memory streaming */
#define TFU_X_MM_MB 32        /* rows of A (output columns) per matmul item  */
#define TFU_X_MM_NB 64        /* rows of B (output rows) per matmul item     */


static int tfu_x_ext_index(tfu_plan *p, tfu_x_group *G, int32_t tid, int32_t col_off) {
    int e;
    for (e = 0; e < G->n_ext; e++)
        if (p->ext[G->first_ext + e].tid == tid && p->ext[G->first_ext + e].col_off == col_off) return e;
    e = G->n_ext++;
    p->ext[G->first_ext + e].tid = tid; p->ext[G->first_ext + e].col_off = col_off;
    p->n_ext++;
    return e;
}

/* row pointer of t at (i1,i2,i3), column c0 */
static char *tfu_x_rowp(const tfu_tensor *t, int64_t c0, int64_t i1, int64_t i2, int64_t i3) {
    return (char *)t->data + (size_t)c0 * t->nb[0] + (size_t)i1 * t->nb[1] + (size_t)i2 * t->nb[2] + (size_t)i3 * t->nb[3];
}

/* an external operand as n contiguous f32 values, columns [c0, c0+n) of the
   group's row (i1,i2,i3): a pointer into memory when it already is, else
   converted, gathered or broadcast into buf */
static const float *tfu_x_ext_ptr(const tfu_plan *p, const tfu_x_ext *e, int64_t gne0, int64_t c0, int n,
                                  int64_t i1, int64_t i2, int64_t i3, float *buf) {
    const tfu_tensor *x = p->t[e->tid];
    const char *base = tfu_x_rowp(x, 0, i1 % x->ne[1], i2 % x->ne[2], i3 % x->ne[3]);
    int k;
    if (x->ne[0] == 1 && gne0 > 1) {
        float v = tfu_x_ld(x->type, base);
        for (k = 0; k < n; k++) buf[k] = v;
        return buf;
    }
    if (x->ne[0] >= gne0) {
        const char *q = base + (size_t)(c0 + e->col_off) * x->nb[0];
        if (x->type == TFU_F32 && x->nb[0] == 4) return (const float *)(const void *)q;
        tfu_x_k_load(x->type, n, buf, q, x->nb[0]);
        return buf;
    }
    for (k = 0; k < n; k++) buf[k] = tfu_x_ld(x->type, base + (size_t)((c0 + k) % x->ne[0]) * x->nb[0]);
    return buf;
}

/* runs the group program over columns [c0, c0+n) of row (i1,i2,i3); outp
   holds, on entry, the rows of any matmul members */
static void tfu_x_run_chunk(const tfu_plan *p, const tfu_x_group *G, unsigned char *sc,
                            int64_t i1, int64_t i2, int64_t i3, int64_t c0, int n, const float **outp) {
    const tfu_x_scratch_layout *SL = &p->sl;
    float *slots = (float *)(void *)(sc + SL->slots), *gather = (float *)(void *)(sc + SL->gather);
    int k, s;
    for (k = 0; k < G->n_ins; k++) {
        const tfu_x_ins *I = &p->ins[G->first_ins + k];
        tfu_tensor *t = p->t[I->tid];
        const float *src[TFU_MAX_SRC];
        float *dst;
        if (t->op == TFU_OP_MUL_MAT) continue;
        for (s = 0; s < I->n_src; s++) {
            int32_t r = I->src[s];
            src[s] = r >= 0 ? outp[r] : tfu_x_ext_ptr(p, &p->ext[G->first_ext + (-1 - r)], G->ne[0], c0, n, i1, i2, i3,
                                                        gather + (size_t)(-1 - r) * (size_t)G->chunk);
        }
        for (; s < TFU_MAX_SRC; s++) src[s] = NULL;
        dst = I->slot >= 0 ? slots + (size_t)I->slot * (size_t)G->chunk : (float *)(void *)tfu_x_rowp(t, c0, i1, i2, i3);
        switch (t->op) {
        case TFU_OP_ADD: case TFU_OP_SUB: case TFU_OP_MUL: case TFU_OP_DIV:
            tfu_x_k_binary(t->op, n, dst, src[0], src[1]); break;
        case TFU_OP_GLU: tfu_x_k_glu(t->op_params_i[0], n, dst, src[0], src[1]); break;
        case TFU_OP_RMS_NORM: tfu_x_k_rms_norm(n, dst, src[0], t->op_params_f[0]); break;
        case TFU_OP_NORM: tfu_x_k_norm(n, dst, src[0], t->op_params_f[0]); break;
        case TFU_OP_SOFT_MAX: tfu_x_k_soft_max(n, dst, src[0], src[1], t->op_params_f[0]); break;
        default: tfu_x_k_unary(t->op, n, dst, src[0], t->op_params_f); break;
        }
        if (I->store && I->slot >= 0) tfu_x_k_store(t->type, n, tfu_x_rowp(t, c0, i1, i2, i3), t->nb[0], dst);
        outp[k] = dst;
    }
}

static void tfu_x_run_matmul_item(const tfu_plan *p, const tfu_x_group *G, unsigned char *sc, int64_t item) {
    const tfu_x_scratch_layout *SL = &p->sl;
    int64_t nblk = item % G->n_nblk, mblk = (item / G->n_nblk) % G->n_mblk, bi = item / (G->n_nblk * G->n_mblk);
    int64_t i2 = bi % G->ne[2], i3 = bi / G->ne[2];
    int64_t m0 = mblk * G->mb, n0 = nblk * G->nbk;
    int mm = (int)(G->ne[0] - m0 < G->mb ? G->ne[0] - m0 : G->mb);
    int nn = (int)(G->ne[1] - n0 < G->nbk ? G->ne[1] - n0 : G->nbk);
    const float **outp = (const float **)(void *)(sc + SL->outp);
    const void **arow = (const void **)(void *)(sc + SL->ptrs);
    const float **brow = (const float **)(void *)(arow + G->mb);
    float *tiles = (float *)(void *)(sc + SL->tiles), *pack = (float *)(void *)(sc + SL->pack);
    float *cptr[TFU_X_MAX_MM]; size_t ldc[TFU_X_MAX_MM];
    int k, j, nm = 0;
    for (k = 0; k < G->n_ins; k++) {
        const tfu_x_ins *I = &p->ins[G->first_ins + k];
        tfu_tensor *t = p->t[I->tid], *a, *b;
        tfu_type at;
        int native;
        int64_t K, r2, r3;
        float *c;
        if (t->op != TFU_OP_MUL_MAT) continue;
        a = p->t[p->ext[G->first_ext + (-1 - I->src[0])].tid];
        b = p->t[p->ext[G->first_ext + (-1 - I->src[1])].tid];
        K = a->ne[0]; r2 = b->ne[2] / a->ne[2]; r3 = b->ne[3] / a->ne[3];
        native = a->nb[0] == tfu_type_size(a->type) && tfu_x_k_dot_native(a->type);
        at = native ? a->type : TFU_F32;
        for (j = 0; j < mm; j++) {
            const char *q = tfu_x_rowp(a, 0, m0 + j, i2 / r2, i3 / r3);
            if (native) arow[j] = q;
            else { float *d = pack + (size_t)j * (size_t)K; tfu_x_k_load(a->type, (int)K, d, q, a->nb[0]); arow[j] = d; }
        }
        for (j = 0; j < nn; j++) {
            const char *q = tfu_x_rowp(b, 0, n0 + j, i2, i3);
            if (b->nb[0] == 4) brow[j] = (const float *)(const void *)q;
            else { float *d = pack + (size_t)(G->mb + j) * (size_t)K; tfu_x_k_load(b->type, (int)K, d, q, b->nb[0]); brow[j] = d; }
        }
        if (I->slot < 0) { c = (float *)(void *)tfu_x_rowp(t, m0, n0, i2, i3); ldc[nm] = t->nb[1] / 4; }
        else { c = tiles + (size_t)I->slot * (size_t)(G->mb * G->nbk); ldc[nm] = (size_t)mm; }
        tfu_x_k_dot_block(at, (int)K, mm, arow, nn, brow, c, ldc[nm]);
        cptr[nm++] = c;
    }
    if (G->n_ins > G->n_mm) {
        for (j = 0; j < nn; j++) {
            int q = 0;
            for (k = 0; k < G->n_ins; k++)
                if (p->t[p->ins[G->first_ins + k].tid]->op == TFU_OP_MUL_MAT) { outp[k] = cptr[q] + (size_t)j * ldc[q]; q++; }
            tfu_x_run_chunk(p, G, sc, n0 + j, i2, i3, m0, mm, outp);
        }
    }
}

/* single-op groups with kernels of their own; an item is a range of rows */
static void tfu_x_run_other(const tfu_plan *p, const tfu_x_group *G, unsigned char *sc, int64_t r0, int64_t r1) {
    const tfu_x_scratch_layout *SL = &p->sl;
    const tfu_x_ins *I = &p->ins[G->first_ins];
    tfu_tensor *t = p->t[I->tid];
    const tfu_tensor *a = t->src[0], *b = t->src[1];
    float *buf = (float *)(void *)(sc + SL->pack);
    int64_t r;
    for (r = r0; r < r1; r++) {
        int64_t i1 = r % G->ne[1], i2 = (r / G->ne[1]) % G->ne[2], i3 = r / (G->ne[1] * G->ne[2]), i0;
        float *d = (float *)(void *)tfu_x_rowp(t, 0, i1, i2, i3);
        switch (t->op) {
        case TFU_OP_GET_ROWS: {
            int32_t row = tfu_x_row_index(b, i1, i2, i3, a->ne[1]);
            tfu_x_k_load(a->type, (int)a->ne[0], d, tfu_x_rowp(a, 0, row, 0, 0), a->nb[0]);
        } break;
        case TFU_OP_ROPE: {
            int nd = t->op_params_i[0], neox = t->op_params_i[1] == TFU_ROPE_NEOX, i;
            int32_t pos;
            double base = t->op_params_f[0];
            memcpy(&pos, (const char *)b->data + (size_t)i2 * b->nb[0], 4);
            tfu_x_k_load(a->type, (int)a->ne[0], buf, tfu_x_rowp(a, 0, i1, i2, i3), a->nb[0]);
            for (i0 = nd; i0 < t->ne[0]; i0++) d[i0] = buf[i0];
            for (i = 0; i < nd / 2; i++) {
                double th = (double)pos * pow(base, -2.0 * i / nd);
                float c = (float)cos(th), s = (float)sin(th);
                int j0 = neox ? i : 2 * i, j1 = neox ? i + nd / 2 : 2 * i + 1;
                float x0 = buf[j0], x1 = buf[j1];
                d[j0] = x0 * c - x1 * s; d[j1] = x0 * s + x1 * c;
            }
        } break;
        case TFU_OP_CONCAT: {
            int dim = t->op_params_i[0];
            if (dim == 0) {
                tfu_x_k_load(a->type, (int)a->ne[0], d, tfu_x_rowp(a, 0, i1, i2, i3), a->nb[0]);
                tfu_x_k_load(b->type, (int)b->ne[0], d + a->ne[0], tfu_x_rowp(b, 0, i1, i2, i3), b->nb[0]);
            } else {
                int64_t ix[4];
                const tfu_tensor *srct;
                ix[1] = i1; ix[2] = i2; ix[3] = i3;
                if (ix[dim] < a->ne[dim]) srct = a; else { ix[dim] -= a->ne[dim]; srct = b; }
                tfu_x_k_load(srct->type, (int)t->ne[0], d, tfu_x_rowp(srct, 0, ix[1], ix[2], ix[3]), srct->nb[0]);
            }
        } break;
        default: {  /* SUM_ROWS, MEAN, ARGMAX: one value per row of a */
            int n = (int)a->ne[0], i, best = 0;
            tfu_x_k_load(a->type, n, buf, tfu_x_rowp(a, 0, i1, i2, i3), a->nb[0]);
            if (t->op == TFU_OP_ARGMAX) {
                int32_t bi;
                for (i = 1; i < n; i++) if (buf[i] > buf[best]) best = i;
                bi = best; memcpy(d, &bi, 4);
            } else {
                float sum = tfu_x_k_sum(n, buf);
                d[0] = t->op == TFU_OP_MEAN ? sum / (float)n : sum;
            }
        } break;
        }
    }
}

static void tfu_x_run_item(const tfu_plan *p, const tfu_x_group *G, unsigned char *sc, int64_t item) {
    const tfu_x_scratch_layout *SL = &p->sl;
    int64_t rows = G->ne[1] * G->ne[2] * G->ne[3];
    int64_t r0 = item * G->rows_per_item, r1 = r0 + G->rows_per_item, r, c0;
    if (G->kind == TFU_GROUP_MATMUL) { tfu_x_run_matmul_item(p, G, sc, item); return; }
    if (r1 > rows) r1 = rows;
    if (G->kind == TFU_GROUP_OTHER) { tfu_x_run_other(p, G, sc, r0, r1); return; }
    for (r = r0; r < r1; r++) {
        int64_t i1 = r % G->ne[1], i2 = (r / G->ne[1]) % G->ne[2], i3 = r / (G->ne[1] * G->ne[2]);
        for (c0 = 0; c0 < G->ne[0]; c0 += G->chunk) {
            int n = (int)(G->ne[0] - c0 < G->chunk ? G->ne[0] - c0 : G->chunk);
            tfu_x_run_chunk(p, G, sc, i1, i2, i3, c0, n, (const float **)(void *)(sc + SL->outp));
        }
    }
}

/* item i of stage s -> its group and the item inside it */
static void tfu_x_stage_item(const tfu_plan *p, int s, int64_t i, unsigned char *sc) {
    int g = p->stage_first[s], end = p->stage_first[s + 1];
    while (g + 1 < end && p->stage_items[g + 1] <= i) g++;
    tfu_x_run_item(p, &p->groups[g], sc, i - p->stage_items[g]);
}

static int64_t tfu_x_stage_n_items(const tfu_plan *p, int s) {
    int last = p->stage_first[s + 1] - 1;
    return p->stage_items[last] + p->groups[last].n_items;
}

/* --- threads: workers meet only at the barrier between two stages -------- */

#if !defined(TFU_NO_THREADS)
/* the few thread calls the pool makes: Win32 (Vista and later) or pthreads */
#if defined(_WIN32)
typedef HANDLE             tfu_x_thread;
typedef SRWLOCK            tfu_x_mutex;
typedef CONDITION_VARIABLE tfu_x_cond;
static void tfu_x_mutex_init(tfu_x_mutex *m) { InitializeSRWLock(m); }
static void tfu_x_mutex_destroy(tfu_x_mutex *m) { (void)m; }   /* SRW locks need no cleanup */
static void tfu_x_mutex_lock(tfu_x_mutex *m) { AcquireSRWLockExclusive(m); }
static void tfu_x_mutex_unlock(tfu_x_mutex *m) { ReleaseSRWLockExclusive(m); }
static void tfu_x_cond_init(tfu_x_cond *c) { InitializeConditionVariable(c); }
static void tfu_x_cond_destroy(tfu_x_cond *c) { (void)c; }
static void tfu_x_cond_wait(tfu_x_cond *c, tfu_x_mutex *m) { SleepConditionVariableSRW(c, m, INFINITE, 0); }
static void tfu_x_cond_broadcast(tfu_x_cond *c) { WakeAllConditionVariable(c); }
static void tfu_x_yield(void) { SwitchToThread(); }
#else
typedef pthread_t       tfu_x_thread;
typedef pthread_mutex_t tfu_x_mutex;
typedef pthread_cond_t  tfu_x_cond;
static void tfu_x_mutex_init(tfu_x_mutex *m) { pthread_mutex_init(m, NULL); }
static void tfu_x_mutex_destroy(tfu_x_mutex *m) { pthread_mutex_destroy(m); }
static void tfu_x_mutex_lock(tfu_x_mutex *m) { pthread_mutex_lock(m); }
static void tfu_x_mutex_unlock(tfu_x_mutex *m) { pthread_mutex_unlock(m); }
static void tfu_x_cond_init(tfu_x_cond *c) { pthread_cond_init(c, NULL); }
static void tfu_x_cond_destroy(tfu_x_cond *c) { pthread_cond_destroy(c); }
static void tfu_x_cond_wait(tfu_x_cond *c, tfu_x_mutex *m) { pthread_cond_wait(c, m); }
static void tfu_x_cond_broadcast(tfu_x_cond *c) { pthread_cond_broadcast(c); }
static void tfu_x_yield(void) { sched_yield(); }
#endif

typedef struct tfu_x_pool {
    tfu_plan       *plan;
    int             n;            /* threads, the caller's included        */
    tfu_x_thread   *th;
    tfu_x_mutex     mu;
    tfu_x_cond      cv;
    int             gen, quit;    /* under mu                               */
    int             s0, s1;       /* stages of the current job              */
    int             count, sense; /* barrier, atomics                       */
    int64_t        *next;         /* per stage: next item to take, atomics  */
} tfu_x_pool;

typedef struct tfu_x_worker { tfu_x_pool *pool; int id; } tfu_x_worker;

static void tfu_x_barrier(tfu_x_pool *pl, int *local_sense) {
    int spins = 0;
    *local_sense = !*local_sense;
    if (tfu_x_atomic_add(&pl->count, 1, TFU_X_ACQ_REL) == pl->n) {
        tfu_x_atomic_store(&pl->count, 0, TFU_X_RELAXED);
        tfu_x_atomic_store(&pl->sense, *local_sense, TFU_X_RELEASE);
        return;
    }
    while (tfu_x_atomic_load(&pl->sense, TFU_X_ACQUIRE) != *local_sense) {
        if (++spins > 2000) {
            tfu_x_yield();
            spins = 0;
        }
    }
}

static void tfu_x_pool_job(tfu_x_pool *pl, int id, int *local_sense) {
    const tfu_plan *p = pl->plan;
    unsigned char *sc = (unsigned char *)p->scratch + (size_t)id * p->sl.total;
    int s, s0 = pl->s0, s1 = pl->s1;  /* read once: after the last barrier the caller may start the next job */
    for (s = s0; s < s1; s++) {
        int64_t n = tfu_x_stage_n_items(p, s), i;
        while ((i = tfu_x_atomic_fetch_add64(&pl->next[s], 1, TFU_X_RELAXED)) < n) tfu_x_stage_item(p, s, i, sc);
        tfu_x_barrier(pl, local_sense);
    }
}

static void tfu_x_worker_main(void *arg) {
    tfu_x_worker *w = (tfu_x_worker *)arg;
    tfu_x_pool *pl = w->pool;
    int seen = 0, local_sense = 0;
    for (;;) {
        int quit;
        tfu_x_mutex_lock(&pl->mu);
        while (tfu_x_atomic_load(&pl->gen, TFU_X_RELAXED) == seen && !pl->quit) tfu_x_cond_wait(&pl->cv, &pl->mu);
        quit = pl->quit;
        seen = tfu_x_atomic_load(&pl->gen, TFU_X_RELAXED);
        tfu_x_mutex_unlock(&pl->mu);
        if (quit) break;
        tfu_x_pool_job(pl, w->id, &local_sense);
    }
}

#if defined(_WIN32)
static DWORD WINAPI tfu_x_worker_entry(LPVOID arg) {
    tfu_x_worker_main(arg);
    return 0;
}
static int tfu_x_thread_start(tfu_x_thread *t, void *arg) {
    *t = CreateThread(NULL, 0, tfu_x_worker_entry, arg, 0, NULL);
    return *t != NULL;
}
static void tfu_x_thread_join(tfu_x_thread t) {
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
}
#else
static void *tfu_x_worker_entry(void *arg) {
    tfu_x_worker_main(arg);
    return NULL;
}
static int tfu_x_thread_start(tfu_x_thread *t, void *arg) { return pthread_create(t, NULL, tfu_x_worker_entry, arg) == 0; }
static void tfu_x_thread_join(tfu_x_thread t) { pthread_join(t, NULL); }
#endif

static void tfu_x_pool_free(tfu_plan *p) {
    tfu_x_pool *pl = p->pool;
    int i;
    if (!pl) return;
    tfu_x_mutex_lock(&pl->mu);
    pl->quit = 1;
    tfu_x_cond_broadcast(&pl->cv);
    tfu_x_mutex_unlock(&pl->mu);
    for (i = 1; i < pl->n; i++) tfu_x_thread_join(pl->th[i]);
    tfu_x_mutex_destroy(&pl->mu);
    tfu_x_cond_destroy(&pl->cv);
    p->pool = NULL;
}

static tfu_result tfu_x_pool_start(tfu_plan *p) {
    tfu_x_pool *pl = (tfu_x_pool *)tfu_x_palloc(p, sizeof *pl);
    tfu_x_worker *w;
    int i;
    if (!pl) return TFU_ERR_NO_MEMORY;
    pl->plan = p;
    pl->n = p->n_threads;
    pl->th = (tfu_x_thread *)tfu_x_palloc(p, sizeof(tfu_x_thread) * (size_t)pl->n);
    pl->next = (int64_t *)tfu_x_palloc(p, sizeof(int64_t) * (size_t)(p->n_stages + 1));
    w = (tfu_x_worker *)tfu_x_palloc(p, sizeof(tfu_x_worker) * (size_t)pl->n);
    if (!pl->th || !pl->next || !w) return TFU_ERR_NO_MEMORY;
    tfu_x_mutex_init(&pl->mu);
    tfu_x_cond_init(&pl->cv);
    p->pool = pl;
    for (i = 1; i < pl->n; i++) {
        w[i].pool = pl;
        w[i].id = i;
        if (!tfu_x_thread_start(&pl->th[i], &w[i])) {
            pl->n = i;   /* join the ones that started */
            tfu_x_pool_free(p);
            return TFU_ERR_THREADS;
        }
    }
    return TFU_OK;
}

static void tfu_x_pool_run(tfu_plan *p, int s0, int s1) {
    tfu_x_pool *pl = p->pool;
    int s;
    for (s = s0; s < s1; s++) tfu_x_atomic_store64(&pl->next[s], 0, TFU_X_RELAXED);
    tfu_x_mutex_lock(&pl->mu);
    pl->s0 = s0;
    pl->s1 = s1;
    tfu_x_atomic_add(&pl->gen, 1, TFU_X_RELEASE);
    tfu_x_cond_broadcast(&pl->cv);
    tfu_x_mutex_unlock(&pl->mu);
    tfu_x_pool_job(pl, 0, &p->caller_sense);
}
#endif

/* the caller's parallel-for: each task borrows a free scratch area */
typedef struct tfu_x_pf_ctx { tfu_plan *p; int s; } tfu_x_pf_ctx;

static void tfu_x_pf_task(void *arg, int i) {
    tfu_x_pf_ctx *c = (tfu_x_pf_ctx *)arg;
    tfu_plan *p = c->p;
    int k = 0;
    while (!tfu_x_atomic_cas(&p->scratch_busy[k], 0, 1, TFU_X_ACQUIRE))   /* claim scratch k */
        k = (k + 1) % p->n_threads;
    tfu_x_stage_item(p, c->s, i, (unsigned char *)p->scratch + (size_t)k * p->sl.total);
    tfu_x_atomic_store(&p->scratch_busy[k], 0, TFU_X_RELEASE);
}

static void tfu_x_call_eval(tfu_plan *p, int s) {
    int g, k, i;
    for (g = p->stage_first[s]; g < p->stage_first[s + 1]; g++) {
        const tfu_x_group *G = &p->groups[g];
        for (k = 0; k < G->n_ins && !p->run_stop; k++) {
            const tfu_tensor *t = p->t[p->ins[G->first_ins + k].tid];
            if ((t->flags & (TFU_FLAG_KEEP | TFU_FLAG_OUTPUT)) && p->opt.eval_cb(t, p->opt.eval_user)) p->run_stop = 1;
        }
    }
    for (i = 0; i < p->n_all && !p->run_stop; i++)   /* flagged views of values made in this stage */
        if (p->view_stage[i] == s && p->opt.eval_cb(p->t[i], p->opt.eval_user)) p->run_stop = 1;
}

/* points every materialised value into the arena and every view at its root */
static void tfu_x_bind(tfu_plan *p) {
    int i;
    for (i = 0; i < p->n_all; i++) {
        tfu_tensor *t = p->t[i];
        if (p->offs[i] >= 0) t->data = p->arena + p->offs[i];
        else if (t->view_src) tfu_x_bind_alias(t);
    }
}

TFU_API tfu_result tfu_plan_run(tfu_plan *p) {
    int s, i;
    if (!p) return TFU_ERR_NULL_ARG;
    if (p->graph->n_all != p->n_all) {
        tfu_x_err(p->ctx, TFU_ERR_STALE, NULL, "plan_run", "the graph grew after the plan was compiled", NULL, NULL);
        return p->err = TFU_ERR_STALE;
    }
    if (!p->arena && p->arena_bytes) { p->err = TFU_ERR_NO_MEMORY; tfu_x_err(p->ctx, TFU_ERR_NO_MEMORY, NULL, "plan_run", "no arena bound (tfu_plan_set_arena)", NULL, NULL); return p->err; }
    for (i = 0; i < p->n_all; i++)
        if (p->t[i]->op == TFU_OP_NONE && !p->t[i]->data) {
            tfu_x_err(p->ctx, TFU_ERR_NO_DATA, p->t[i], "plan_run", "a leaf tensor has no data", NULL, NULL);
            return p->err = TFU_ERR_NO_DATA;
        }
    for (i = 0; i < p->n_all; i++)
        if (p->t[i]->op == TFU_OP_GET_ROWS && tfu_x_check_rows(p->ctx, p->t[i]) != TFU_OK) return p->err = TFU_ERR_INVALID_ARG;
    tfu_x_bind(p);
    p->run_stop = 0;
    for (s = 0; s < p->n_stages && !p->run_stop; ) {
        int s1 = p->opt.eval_cb ? s + 1 : p->n_stages;
        if (p->opt.parallel_for) {
            for (; s < s1; s++) {
                tfu_x_pf_ctx c;
                c.p = p; c.s = s;
                p->opt.parallel_for(p->opt.parallel_for_user, (int)tfu_x_stage_n_items(p, s), tfu_x_pf_task, &c);
            }
        }
#if !defined(TFU_NO_THREADS)
        else if (p->n_threads > 1) { tfu_x_pool_run(p, s, s1); s = s1; }
#endif
        else {
            for (; s < s1; s++) {
                int64_t n = tfu_x_stage_n_items(p, s), k;
                for (k = 0; k < n; k++) tfu_x_stage_item(p, s, k, (unsigned char *)p->scratch);
            }
        }
        if (p->opt.eval_cb) tfu_x_call_eval(p, s - 1);
    }
    return p->err = TFU_OK;
}

/* --- compile --------------------------------------------------------------- */

TFU_API tfu_plan_options tfu_plan_default_options(void) {
    tfu_plan_options o;
    memset(&o, 0, sizeof o);
    o.n_threads = 1;
    return o;
}

static int tfu_x_env_flag(const char *name) {
#if !defined(TFU_NO_MALLOC)
    const char *v = getenv(name);
    return v && v[0] && !(v[0] == '0' && !v[1]);
#else
    (void)name; return 0;   /* embedded builds do not read the environment */
#endif
}

static void tfu_x_plan_release(tfu_plan *p) {
    tfu_allocator al = p->al;
#if !defined(TFU_NO_THREADS)
    tfu_x_pool_free(p);
#endif
    if (p->arena_owned && p->arena_raw) al.free_fn(p->arena_raw, al.user);
    if (p->scratch_raw) al.free_fn(p->scratch_raw, al.user);
    while (p->blocks) { tfu_x_block *b = p->blocks; p->blocks = b->next; al.free_fn(b, al.user); }
    al.free_fn(p, al.user);
}

static int tfu_x_group_kind_of(const tfu_graph *gr, const int32_t *members, int n) {
    int i, kind = TFU_GROUP_ELTWISE;
    for (i = 0; i < n; i++) {
        int c = tfu_x_class(gr->all[members[i]]);
        if (c == TFU_X_C_MM) return TFU_GROUP_MATMUL;
        if (c == TFU_X_C_ROW) kind = TFU_GROUP_ROW;
        if (c == TFU_X_C_OTHER) return TFU_GROUP_OTHER;
    }
    return kind;
}

static size_t tfu_x_max(size_t a, size_t b) { return a > b ? a : b; }

/* turns the layout into group programs and work items */
static int tfu_x_lower(tfu_plan *p, const tfu_graph *gr, const tfu_x_layout *L) {
    int n = gr->n_all, i, gi, s, n_threads = p->n_threads;
    int32_t *bucket_first, *members, *fill, *last_use, *free_slots;
    size_t slots_b = 0, gather_b = 0, tiles_b = 0, pack_b = 0, ptrs_b = 0, outp_b = 0;
    p->groups = (tfu_x_group *)tfu_x_palloc(p, sizeof(tfu_x_group) * (size_t)(L->n_groups + 1));
    p->ins = (tfu_x_ins *)tfu_x_palloc(p, sizeof(tfu_x_ins) * (size_t)(n + 1));
    p->ext = (tfu_x_ext *)tfu_x_palloc(p, sizeof(tfu_x_ext) * (size_t)(3 * n + 1));
    p->stage_first = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(L->n_stages + 2));
    p->stage_items = (int64_t *)tfu_x_palloc(p, sizeof(int64_t) * (size_t)(L->n_groups + 1));
    bucket_first = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 2));
    members = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 1));
    fill = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 1));
    last_use = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 1));
    free_slots = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 1));
    if (!p->groups || !p->ins || !p->ext || !p->stage_first || !p->stage_items || !bucket_first || !members || !fill || !last_use || !free_slots) return 0;
    /* members of each group, in topological order (counting sort by founder) */
    for (i = 0; i < n; i++) if (L->group[i] >= 0) bucket_first[L->group[i] + 1]++;
    for (i = 0; i < n; i++) bucket_first[i + 1] += bucket_first[i];
    for (i = 0; i < n; i++) if (L->group[i] >= 0) members[bucket_first[L->group[i]] + fill[L->group[i]]++] = i;
    for (i = 0; i < n; i++) p->ins_of[i] = -1;
    p->n_groups = L->n_groups; p->n_stages = L->n_stages;
    for (gi = 0; gi < L->n_groups; gi++) {
        int f = L->order[gi], nm = fill[f], k, n_slots = 0, n_free = 0, n_tiles = 0;
        const int32_t *mem = members + bucket_first[f];
        tfu_x_group *G = &p->groups[gi];
        const tfu_tensor *last = gr->all[mem[nm - 1]];
        int64_t rows, work;
        G->kind = tfu_x_group_kind_of(gr, mem, nm);
        G->stage = L->stage[f];
        G->first_ins = p->n_ins; G->n_ins = nm; G->first_ext = p->n_ext; G->first_node = mem[0];
        memcpy(G->ne, last->ne, sizeof G->ne);
        if (G->kind == TFU_GROUP_MATMUL) {
            for (k = 0; k < nm; k++) if (gr->all[mem[k]]->op == TFU_OP_MUL_MAT) { memcpy(G->ne, gr->all[mem[k]]->ne, sizeof G->ne); break; }
        }
        p->n_ins += nm;
        for (k = 0; k < nm; k++) p->ins_of[mem[k]] = G->first_ins + k;
        for (k = 0; k < nm; k++) last_use[k] = -1;
        for (k = 0; k < nm; k++) {
            const tfu_tensor *t = gr->all[mem[k]];
            tfu_x_ins *I = &p->ins[G->first_ins + k];
            I->tid = mem[k]; I->store = L->mat[mem[k]]; I->slot = -1;
            if (t->op == TFU_OP_GLU && !t->op_params_i[2]) {   /* fused-row GLU: two halves of one operand */
                int32_t h = (int32_t)t->ne[0], sw = t->op_params_i[1];
                I->n_src = 2;
                I->src[0] = -1 - tfu_x_ext_index(p, G, tfu_x_graph_find(gr, t->src[0]), sw ? h : 0);
                I->src[1] = -1 - tfu_x_ext_index(p, G, tfu_x_graph_find(gr, t->src[0]), sw ? 0 : h);
            } else {
                I->n_src = t->op == TFU_OP_CPY ? 1 : tfu_x_n_src(t);
                for (s = 0; s < I->n_src; s++) {
                    int q;
                    if (!t->src[s]) { I->src[s] = -1 - tfu_x_ext_index(p, G, tfu_x_graph_find(gr, t->src[0]), 0); continue; }
                    q = gr->srcs[(size_t)mem[k] * TFU_MAX_SRC + s];
                    if (L->group[q] == f && tfu_x_class(t) != TFU_X_C_MM) { I->src[s] = p->ins_of[q] - G->first_ins; last_use[I->src[s]] = k; }
                    else I->src[s] = -1 - tfu_x_ext_index(p, G, q, 0);
                }
            }
        }
        /* scratch slots: reused once the last reader inside the group ran */
        for (k = 0; k < nm; k++) {
            const tfu_tensor *t = gr->all[mem[k]];
            tfu_x_ins *I = &p->ins[G->first_ins + k];
            int direct = (tfu_x_is_value(t) && I->store) || (t->op == TFU_OP_CPY && t->type == TFU_F32 && t->nb[0] == 4);
            if (t->op == TFU_OP_MUL_MAT) { G->n_mm++; if (!I->store) I->slot = n_tiles++; continue; }
            if (G->kind == TFU_GROUP_OTHER) continue;
            if (!direct) I->slot = n_free ? free_slots[--n_free] : n_slots++;
            for (s = 0; s < I->n_src; s++) {
                int r = I->src[s];
                if (r >= 0 && last_use[r] == k && p->ins[G->first_ins + r].slot >= 0 &&
                    gr->all[mem[r]]->op != TFU_OP_MUL_MAT) {
                    int dup = 0, j;
                    for (j = 0; j < n_free; j++) if (free_slots[j] == p->ins[G->first_ins + r].slot) dup = 1;
                    if (!dup && p->ins[G->first_ins + r].slot != I->slot) free_slots[n_free++] = p->ins[G->first_ins + r].slot;
                }
            }
        }
        G->n_slots = n_slots;
        rows = G->ne[1] * G->ne[2] * G->ne[3];
        work = rows * G->ne[0];
        if (G->kind == TFU_GROUP_MATMUL) {
            int64_t kmax = 1;
            G->mb = G->ne[0] < TFU_X_MM_MB ? G->ne[0] : TFU_X_MM_MB;
            G->nbk = G->ne[1] < TFU_X_MM_NB ? G->ne[1] : TFU_X_MM_NB;
            G->n_mblk = (G->ne[0] + G->mb - 1) / G->mb;
            G->n_nblk = (G->ne[1] + G->nbk - 1) / G->nbk;
            G->n_items = G->n_mblk * G->n_nblk * G->ne[2] * G->ne[3];
            G->chunk = G->mb;
            for (k = 0; k < nm; k++) if (gr->all[mem[k]]->op == TFU_OP_MUL_MAT && gr->all[mem[k]]->src[0]->ne[0] > kmax) kmax = gr->all[mem[k]]->src[0]->ne[0];
            tiles_b = tfu_x_max(tiles_b, (size_t)n_tiles * (size_t)(G->mb * G->nbk) * 4);
            pack_b = tfu_x_max(pack_b, (size_t)(G->mb + G->nbk) * (size_t)kmax * 4);
            ptrs_b = tfu_x_max(ptrs_b, (size_t)(G->mb + G->nbk) * sizeof(void *));
        } else {
            int64_t target = n_threads > 1 ? 8 * (int64_t)n_threads : 1, by_work = (work + 16383) / 16384;
            if (target > by_work) target = by_work;
            if (target > rows) target = rows;
            if (target < 1) target = 1;
            G->rows_per_item = (rows + target - 1) / target;
            G->n_items = (rows + G->rows_per_item - 1) / G->rows_per_item;
            G->chunk = G->kind == TFU_GROUP_ROW ? G->ne[0] : (G->ne[0] < TFU_X_ELT_CHUNK ? G->ne[0] : TFU_X_ELT_CHUNK);
            if (G->kind == TFU_GROUP_OTHER) {
                const tfu_tensor *t = gr->all[mem[0]];
                pack_b = tfu_x_max(pack_b, (size_t)(t->src[0]->ne[0] > t->ne[0] ? t->src[0]->ne[0] : t->ne[0]) * 4);
            }
        }
        slots_b = tfu_x_max(slots_b, (size_t)G->n_slots * (size_t)G->chunk * 4);
        gather_b = tfu_x_max(gather_b, (size_t)G->n_ext * (size_t)G->chunk * 4);
        outp_b = tfu_x_max(outp_b, (size_t)nm * sizeof(void *));
    }
    /* stages and items */
    for (gi = 0, s = 0; s <= p->n_stages; s++) {
        p->stage_first[s] = gi;
        while (gi < p->n_groups && p->groups[gi].stage == s) {
            p->stage_items[gi] = gi == p->stage_first[s] ? 0 : p->stage_items[gi - 1] + p->groups[gi - 1].n_items;
            gi++;
        }
    }
    p->sl.slots = 0;
    p->sl.gather = tfu_x_align_up(p->sl.slots + slots_b, 64);
    p->sl.tiles = tfu_x_align_up(p->sl.gather + gather_b, 64);
    p->sl.pack = tfu_x_align_up(p->sl.tiles + tiles_b, 64);
    p->sl.ptrs = tfu_x_align_up(p->sl.pack + pack_b, 64);
    p->sl.outp = tfu_x_align_up(p->sl.ptrs + ptrs_b, 64);
    p->sl.total = tfu_x_align_up(p->sl.outp + outp_b + 64, 64);
    return 1;
}

static tfu_plan *tfu_x_plan_fail(tfu_plan *p, tfu_context *ctx, tfu_result r, const char *what) {
    tfu_x_err(ctx, r, NULL, "plan_compile", what, NULL, NULL);
    if (p) tfu_x_plan_release(p);
    return NULL;
}

TFU_API tfu_plan *tfu_plan_compile(tfu_graph *g, const tfu_plan_options *opts) {
    tfu_plan_options o = opts ? *opts : tfu_plan_default_options();
    tfu_allocator al;
    tfu_plan *p;
    tfu_x_layout L;
    int n, i, fusion;
    if (!g) return NULL;
    if (o.n_threads <= 0) o.n_threads = 1;
    if (o.n_threads > 256) return tfu_x_plan_fail(NULL, g->ctx, TFU_ERR_INVALID_ARG, "n_threads must be 1..256");
#if defined(TFU_NO_THREADS)
    if (o.n_threads > 1 && !o.parallel_for) return tfu_x_plan_fail(NULL, g->ctx, TFU_ERR_THREADS, "built with TFU_NO_THREADS: n_threads > 1 needs parallel_for");
#endif
    al = o.allocator;
    if (!al.alloc_fn || !al.free_fn) {
#if defined(TFU_NO_MALLOC)
        return tfu_x_plan_fail(NULL, g->ctx, TFU_ERR_INVALID_ARG, "built with TFU_NO_MALLOC: options need an allocator");
#else
        al.alloc_fn = tfu_x_malloc_fn; al.free_fn = tfu_x_free_fn; al.user = NULL;
#endif
    }
    fusion = !o.no_fusion && !tfu_x_env_flag("TFU_NO_FUSION");
    TFU_X_SIMD_SET(!tfu_x_env_flag("TFU_NO_SIMD"));
    o.no_fusion = !fusion;
    p = (tfu_plan *)al.alloc_fn(sizeof *p, al.user);
    if (!p) return tfu_x_plan_fail(NULL, g->ctx, TFU_ERR_NO_MEMORY, "plan allocation failed");
    memset(p, 0, sizeof *p);
    p->al = al; p->opt = o; p->opt.allocator = al; p->ctx = g->ctx; p->graph = g;
    p->n_threads = o.n_threads;
    n = p->n_all = g->n_all;
    p->hash = tfu_graph_hash(g);
    p->t = (tfu_tensor **)tfu_x_palloc(p, sizeof(void *) * (size_t)(n + 1));
    p->group = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 1));
    p->ins_of = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 1));
    p->mat = (unsigned char *)tfu_x_palloc(p, (size_t)(n + 1));
    p->offs = (int64_t *)tfu_x_palloc(p, sizeof(int64_t) * (size_t)(n + 1));
    p->life0 = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 1));
    p->life1 = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 1));
    p->view_stage = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 1));
    L.group = p->group; L.mat = p->mat; L.offs = p->offs; L.life0 = p->life0; L.life1 = p->life1;
    L.order = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 1));
    L.stage = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 1));
    if (!p->t || !p->group || !p->ins_of || !p->mat || !p->offs || !p->life0 || !p->life1 || !p->view_stage || !L.order || !L.stage)
        return tfu_x_plan_fail(p, g->ctx, TFU_ERR_NO_MEMORY, "plan allocation failed");
    memcpy(p->t, g->all, sizeof(void *) * (size_t)n);
    if (!tfu_x_plan_layout(g, fusion, &al, &L)) return tfu_x_plan_fail(p, g->ctx, TFU_ERR_NO_MEMORY, "planning memory exhausted");
    p->arena_unfused = fusion ? TFU_X_UNKNOWN : L.arena;   /* computed when first asked for */
    p->arena_bytes = L.arena;
    if (!tfu_x_lower(p, g, &L)) return tfu_x_plan_fail(p, g->ctx, TFU_ERR_NO_MEMORY, "plan allocation failed");
    p->scratch_raw = al.alloc_fn(p->sl.total * (size_t)p->n_threads + 64, al.user);
    p->scratch = p->scratch_raw ? (void *)tfu_x_align_ptr(p->scratch_raw) : NULL;
    p->scratch_busy = (int *)tfu_x_palloc(p, sizeof(int) * (size_t)p->n_threads);
    if (!p->scratch || !p->scratch_busy) return tfu_x_plan_fail(p, g->ctx, TFU_ERR_NO_MEMORY, "scratch allocation failed");
    if (o.arena) {
        if (o.arena_size < p->arena_bytes) return tfu_x_plan_fail(p, g->ctx, TFU_ERR_NO_MEMORY, "options.arena is smaller than tfu_plan_arena_bytes()");
        if ((uintptr_t)o.arena % 16) return tfu_x_plan_fail(p, g->ctx, TFU_ERR_INVALID_ARG, "options.arena must be aligned to 16 bytes");
        p->arena = (unsigned char *)o.arena;
    } else if (p->arena_bytes) {
        p->arena_raw = al.alloc_fn(p->arena_bytes + 64, al.user);
        if (!p->arena_raw) return tfu_x_plan_fail(p, g->ctx, TFU_ERR_NO_MEMORY, "arena allocation failed");
        p->arena = tfu_x_align_ptr(p->arena_raw);   /* rows on cache-line boundaries */
        p->arena_owned = 1;
    }
#if !defined(TFU_NO_THREADS)
    if (p->n_threads > 1 && !o.parallel_for) {
        tfu_result r = tfu_x_pool_start(p);
        if (r != TFU_OK) return tfu_x_plan_fail(p, g->ctx, r, "could not start worker threads");
    }
#endif
    /* stats */
    {
        tfu_plan_stats *S = &p->stats;
        int gi;
        S->n_nodes = g->n_nodes; S->n_groups = p->n_groups; S->n_stages = p->n_stages;
        S->n_barriers = p->n_stages > 0 ? p->n_stages - 1 : 0;
        S->arena_bytes = p->arena_bytes;
        for (gi = 0; gi < p->n_groups; gi++) {
            S->n_groups_kind[p->groups[gi].kind]++;
            if (p->groups[gi].n_ins > 1) S->n_nodes_fused += p->groups[gi].n_ins;
        }
        for (i = 0; i < n; i++) if (p->group[i] >= 0 && tfu_x_is_value(g->all[i])) {
            S->value_bytes_total += tfu_x_value_bytes(g->all[i]);
            if (!p->mat[i]) S->n_values_elided++;
        }
    }
    /* the group index per tensor, as reported (execution order) */
    {
        int gi, k;
        for (i = 0; i < n; i++) p->group[i] = -1;
        for (gi = 0; gi < p->n_groups; gi++)
            for (k = 0; k < p->groups[gi].n_ins; k++) p->group[p->ins[p->groups[gi].first_ins + k].tid] = gi;
        for (i = 0; i < n; i++) {   /* the eval callback's flagged views, decided here once */
            int r = i;
            p->view_stage[i] = -1;
            if (g->all[i]->op != TFU_OP_VIEW || !(g->all[i]->flags & (TFU_FLAG_KEEP | TFU_FLAG_OUTPUT))) continue;
            while (g->all[r]->op == TFU_OP_VIEW) r = g->srcs[(size_t)r * TFU_MAX_SRC];
            if (p->group[r] >= 0) p->view_stage[i] = p->groups[p->group[r]].stage;
        }
    }
    tfu_x_bind(p);
    return p;
}

TFU_API void tfu_plan_free(tfu_plan *p) { if (p) tfu_x_plan_release(p); }
TFU_API tfu_result tfu_plan_last_error(const tfu_plan *p) { return p ? p->err : TFU_ERR_NULL_ARG; }
TFU_API size_t tfu_plan_arena_bytes(const tfu_plan *p) { return p ? p->arena_bytes : 0; }

TFU_API tfu_result tfu_plan_set_arena(tfu_plan *p, void *mem, size_t size) {
    if (!p || !mem) return TFU_ERR_NULL_ARG;
    if (size < p->arena_bytes) { tfu_x_err(p->ctx, TFU_ERR_NO_MEMORY, NULL, "plan_set_arena", "arena smaller than tfu_plan_arena_bytes()", NULL, NULL); return TFU_ERR_NO_MEMORY; }
    if ((uintptr_t)mem % 16) { tfu_x_err(p->ctx, TFU_ERR_INVALID_ARG, NULL, "plan_set_arena", "arena must be aligned to 16 bytes", NULL, NULL); return TFU_ERR_INVALID_ARG; }
    if (p->arena_owned) { p->al.free_fn(p->arena_raw, p->al.user); p->arena_owned = 0; p->arena_raw = NULL; }
    p->arena = (unsigned char *)mem;
    tfu_x_bind(p);
    return TFU_OK;
}

TFU_API tfu_result tfu_plan_rebind(tfu_plan *p, tfu_graph *g) {
    if (!p || !g) return TFU_ERR_NULL_ARG;
    if (g->n_all != p->n_all || tfu_graph_hash(g) != p->hash) {
        tfu_x_err(g->ctx, TFU_ERR_STALE, NULL, "plan_rebind", "graph structure differs from the plan's", NULL, NULL);
        return p->err = TFU_ERR_STALE;
    }
    memcpy(p->t, g->all, sizeof(void *) * (size_t)p->n_all);
    p->graph = g; p->ctx = g->ctx;
    tfu_x_bind(p);
    return TFU_OK;
}

struct tfu_plan_cache {
    tfu_plan_options opt;
    int        cap, n;
    tfu_plan **plans;
    unsigned  *stamp, clock;
};

TFU_API tfu_plan_cache *tfu_plan_cache_new(const tfu_plan_options *opts, int capacity) {
    tfu_plan_options o = opts ? *opts : tfu_plan_default_options();
    tfu_allocator al = o.allocator;
    tfu_plan_cache *c;
    if (capacity <= 0) capacity = 8;
    if (!al.alloc_fn || !al.free_fn) {
#if defined(TFU_NO_MALLOC)
        return NULL;
#else
        al.alloc_fn = tfu_x_malloc_fn; al.free_fn = tfu_x_free_fn; al.user = NULL;
#endif
    }
    o.allocator = al;
    c = (tfu_plan_cache *)al.alloc_fn(sizeof *c + (size_t)capacity * (sizeof(void *) + sizeof(unsigned)), al.user);
    if (!c) return NULL;
    memset(c, 0, sizeof *c);
    c->opt = o; c->cap = capacity;
    c->plans = (tfu_plan **)(void *)(c + 1);
    c->stamp = (unsigned *)(void *)(c->plans + capacity);
    return c;
}

TFU_API tfu_plan *tfu_plan_cache_get(tfu_plan_cache *c, tfu_graph *g, int *was_cached) {
    uint64_t h;
    int i, victim = 0;
    tfu_plan *p;
    if (was_cached) *was_cached = 0;
    if (!c || !g) return NULL;
    h = tfu_graph_hash(g);
    for (i = 0; i < c->n; i++)
        if (c->plans[i]->hash == h && c->plans[i]->n_all == g->n_all && tfu_plan_rebind(c->plans[i], g) == TFU_OK) {
            c->stamp[i] = ++c->clock;
            if (was_cached) *was_cached = 1;
            return c->plans[i];
        }
    p = tfu_plan_compile(g, &c->opt);
    if (!p) return NULL;
    if (c->n < c->cap) victim = c->n++;
    else { for (i = 1; i < c->n; i++) if (c->stamp[i] < c->stamp[victim]) victim = i; tfu_plan_free(c->plans[victim]); }
    c->plans[victim] = p; c->stamp[victim] = ++c->clock;
    return p;
}

TFU_API void tfu_plan_cache_free(tfu_plan_cache *c) {
    int i;
    if (!c) return;
    for (i = 0; i < c->n; i++) tfu_plan_free(c->plans[i]);
    c->opt.allocator.free_fn(c, c->opt.allocator.user);
}

/* --- queries and report ------------------------------------------------------ */

static int tfu_x_plan_find(const tfu_plan *p, const tfu_tensor *t) {
    int i;
    if (!p || !t) return -1;
    for (i = 0; i < p->n_all; i++) if (p->t[i] == t) return i;
    return -1;
}

/* the arena the same graph needs unfused: planned only when asked for */
static size_t tfu_x_unfused_arena(const tfu_plan *cp) {
    tfu_plan *p = (tfu_plan *)(uintptr_t)cp;   /* a cache of a derived figure */
    if (p->arena_unfused == TFU_X_UNKNOWN) {
        size_t n = (size_t)p->n_all + 1;
        tfu_x_layout U;
        int32_t *ints = (int32_t *)p->al.alloc_fn(n * sizeof(int32_t) * 5, p->al.user);
        unsigned char *mat = (unsigned char *)p->al.alloc_fn(n, p->al.user);
        int64_t *offs = (int64_t *)p->al.alloc_fn(n * sizeof(int64_t), p->al.user);
        if (ints && mat && offs) {
            U.group = ints; U.order = ints + n; U.stage = ints + 2 * n; U.life0 = ints + 3 * n; U.life1 = ints + 4 * n;
            U.mat = mat; U.offs = offs;
            if (tfu_x_plan_layout(p->graph, 0, &p->al, &U)) p->arena_unfused = U.arena;
        }
        if (ints) p->al.free_fn(ints, p->al.user);
        if (mat) p->al.free_fn(mat, p->al.user);
        if (offs) p->al.free_fn(offs, p->al.user);
    }
    return p->arena_unfused == TFU_X_UNKNOWN ? 0 : p->arena_unfused;
}

TFU_API tfu_plan_stats tfu_plan_get_stats(const tfu_plan *p) {
    tfu_plan_stats s;
    if (p) { s = p->stats; s.arena_bytes_unfused = tfu_x_unfused_arena(p); return s; }
    memset(&s, 0, sizeof s);
    return s;
}
TFU_API int tfu_plan_n_groups(const tfu_plan *p) { return p ? p->n_groups : 0; }
TFU_API int tfu_plan_group_of(const tfu_plan *p, const tfu_tensor *t) { int i = tfu_x_plan_find(p, t); return i < 0 ? -1 : p->group[i]; }
TFU_API tfu_group_kind tfu_plan_group_kind(const tfu_plan *p, int g) { return p && g >= 0 && g < p->n_groups ? (tfu_group_kind)p->groups[g].kind : TFU_GROUP_KIND_COUNT; }
TFU_API int tfu_plan_group_n_nodes(const tfu_plan *p, int g) { return p && g >= 0 && g < p->n_groups ? p->groups[g].n_ins : 0; }
TFU_API int tfu_plan_group_stage(const tfu_plan *p, int g) { return p && g >= 0 && g < p->n_groups ? p->groups[g].stage : -1; }
TFU_API int tfu_plan_is_materialized(const tfu_plan *p, const tfu_tensor *t) {
    int i = tfu_x_plan_find(p, t);
    if (i < 0) return 0;
    if (p->group[i] < 0) return 1;   /* leaves and views live in memory */
    return p->mat[i];
}
TFU_API int64_t tfu_plan_value_offset(const tfu_plan *p, const tfu_tensor *t) { int i = tfu_x_plan_find(p, t); return i < 0 ? -1 : p->offs[i]; }
TFU_API int tfu_plan_value_lifetime(const tfu_plan *p, const tfu_tensor *t, int *first, int *last) {
    int i = tfu_x_plan_find(p, t);
    if (i < 0 || p->offs[i] < 0) return 0;
    if (first) *first = p->life0[i];
    if (last) *last = p->life1[i];
    return 1;
}

static const char *const tfu_x_kind_names[TFU_GROUP_KIND_COUNT] = { "eltwise", "row", "matmul", "other" };

static void tfu_x_catname(tfu_x_buf *b, const tfu_tensor *t, int idx) {
    if (t->name[0]) tfu_x_cat(b, t->name);
    else { tfu_x_cat(b, "#"); tfu_x_cati(b, idx); }
}

static void tfu_x_catbytes(tfu_x_buf *b, size_t n) {
    if (n >= (size_t)1 << 20) { tfu_x_catf(b, (double)n / 1048576.0, 2); tfu_x_cat(b, " MiB"); }
    else if (n >= 1024) { tfu_x_catf(b, (double)n / 1024.0, 1); tfu_x_cat(b, " KiB"); }
    else { tfu_x_cati(b, (int64_t)n); tfu_x_cat(b, " B"); }
}

TFU_API size_t tfu_plan_report(const tfu_plan *p, char *buf, size_t size) {
    tfu_x_buf b;
    int gi, k;
    char dummy[1];
    b.p = buf ? buf : dummy; b.size = buf ? size : 0; b.len = 0;
    if (b.size) b.p[0] = 0;
    if (!p) return 0;
    tfu_x_cat(&b, "plan: "); tfu_x_cati(&b, p->stats.n_nodes); tfu_x_cat(&b, " nodes -> ");
    tfu_x_cati(&b, p->n_groups); tfu_x_cat(&b, " groups ("); tfu_x_cati(&b, p->stats.n_nodes_fused);
    tfu_x_cat(&b, " nodes fused, "); tfu_x_cati(&b, p->stats.n_values_elided); tfu_x_cat(&b, " values kept out of memory) in ");
    tfu_x_cati(&b, p->n_stages); tfu_x_cat(&b, " stages, "); tfu_x_cati(&b, p->stats.n_barriers); tfu_x_cat(&b, " barriers");
    if (p->opt.no_fusion) tfu_x_cat(&b, " [fusion off]");
    tfu_x_cat(&b, "\narena: "); tfu_x_catbytes(&b, p->arena_bytes); tfu_x_cat(&b, " (unfused plan: ");
    tfu_x_catbytes(&b, tfu_x_unfused_arena(p)); tfu_x_cat(&b, ", all values: "); tfu_x_catbytes(&b, p->stats.value_bytes_total);
    tfu_x_cat(&b, ")\nstage group kind     items  ops (* = written to memory)\n");
    for (gi = 0; gi < p->n_groups; gi++) {
        const tfu_x_group *G = &p->groups[gi];
        char col[24]; tfu_x_buf cb; size_t pad;
        cb.p = col; cb.size = sizeof col; cb.len = 0;
        tfu_x_cati(&cb, G->stage); for (pad = cb.len; pad < 6; pad++) tfu_x_cat(&cb, " ");
        tfu_x_cat(&b, col); cb.len = 0;
        tfu_x_cati(&cb, gi); for (pad = cb.len; pad < 6; pad++) tfu_x_cat(&cb, " ");
        tfu_x_cat(&b, col); cb.len = 0;
        tfu_x_cat(&cb, tfu_x_kind_names[G->kind]); for (pad = cb.len; pad < 9; pad++) tfu_x_cat(&cb, " ");
        tfu_x_cat(&b, col); cb.len = 0;
        tfu_x_cati(&cb, G->n_items); for (pad = cb.len; pad < 7; pad++) tfu_x_cat(&cb, " ");
        tfu_x_cat(&b, col);
        for (k = 0; k < G->n_ins; k++) {
            const tfu_x_ins *I = &p->ins[G->first_ins + k];
            if (k) tfu_x_cat(&b, " ");
            tfu_x_cat(&b, tfu_op_name(p->t[I->tid]->op)); tfu_x_cat(&b, "(");
            tfu_x_catname(&b, p->t[I->tid], I->tid); tfu_x_cat(&b, ")");
            if (I->store) tfu_x_cat(&b, "*");
        }
        tfu_x_cat(&b, "\n");
    }
    return b.len;
}

TFU_API size_t tfu_plan_dot(const tfu_plan *p, char *buf, size_t size) {
    tfu_x_buf b;
    int gi, k, i, s;
    char dummy[1];
    b.p = buf ? buf : dummy; b.size = buf ? size : 0; b.len = 0;
    if (b.size) b.p[0] = 0;
    if (!p) return 0;
    tfu_x_cat(&b, "digraph tensorfuse {\n  rankdir=TB; node [shape=box, fontname=\"monospace\", fontsize=10];\n");
    for (gi = 0; gi < p->n_groups; gi++) {
        const tfu_x_group *G = &p->groups[gi];
        tfu_x_cat(&b, "  subgraph cluster_"); tfu_x_cati(&b, gi); tfu_x_cat(&b, " {\n    label=\"group ");
        tfu_x_cati(&b, gi); tfu_x_cat(&b, " "); tfu_x_cat(&b, tfu_x_kind_names[G->kind]);
        tfu_x_cat(&b, ", stage "); tfu_x_cati(&b, G->stage); tfu_x_cat(&b, "\"; style=rounded; color=");
        tfu_x_cat(&b, G->n_ins > 1 ? "blue" : "gray"); tfu_x_cat(&b, ";\n");
        for (k = 0; k < G->n_ins; k++) {
            const tfu_x_ins *I = &p->ins[G->first_ins + k];
            tfu_x_cat(&b, "    n"); tfu_x_cati(&b, I->tid); tfu_x_cat(&b, " [label=\"");
            tfu_x_cat(&b, tfu_op_name(p->t[I->tid]->op)); tfu_x_cat(&b, "\\n"); tfu_x_catname(&b, p->t[I->tid], I->tid);
            tfu_x_cat(&b, I->store ? "\", style=bold" : "\", style=dashed"); tfu_x_cat(&b, "];\n");
        }
        tfu_x_cat(&b, "  }\n");
    }
    for (i = 0; i < p->n_all; i++) {
        const tfu_tensor *t = p->t[i];
        if (p->group[i] < 0) {
            tfu_x_cat(&b, "  n"); tfu_x_cati(&b, i); tfu_x_cat(&b, " [shape=ellipse, label=\"");
            tfu_x_cat(&b, t->op == TFU_OP_VIEW ? "view\\n" : ""); tfu_x_catname(&b, t, i); tfu_x_cat(&b, "\"];\n");
        }
        for (s = 0; s < TFU_MAX_SRC; s++) if (t->src[s]) {
            int q = tfu_x_plan_find(p, t->src[s]);
            tfu_x_cat(&b, "  n"); tfu_x_cati(&b, q); tfu_x_cat(&b, " -> n"); tfu_x_cati(&b, i); tfu_x_cat(&b, ";\n");
        }
    }
    tfu_x_cat(&b, "}\n");
    return b.len;
}

/* >>selftest ============================================================= */
#ifdef TFU_SELFTEST
/* A small built-in check: a fused rms_norm * w + r against the reference
   executor, and one error path. Returns the number of failures. */
TFU_API int tfu_selftest(void) {
    static unsigned char mem[1 << 20];
    tfu_context_params cp;
    tfu_context *ctx;
    tfu_tensor *x, *w, *r, *y, *bad;
    tfu_graph *g;
    tfu_plan *p;
    tfu_plan_options o = tfu_plan_default_options();
    float ref[3 * 37];
    int i, fails = 0;
    uint32_t seed = 12345u;
    cp.mem = mem; cp.mem_size = sizeof mem; cp.no_alloc = 0;
    ctx = tfu_init(cp);
    if (!ctx) return 1;
    x = tfu_new_tensor_2d(ctx, TFU_F32, 37, 3);
    w = tfu_new_tensor_1d(ctx, TFU_F32, 37);
    r = tfu_new_tensor_2d(ctx, TFU_F32, 37, 3);
    if (!x || !w || !r) return 1;
    for (i = 0; i < 3 * 37; i++) {
        seed = seed * 1664525u + 1013904223u; ((float *)x->data)[i] = (float)(seed >> 8) / 16777216.0f - 0.45f;
        seed = seed * 1664525u + 1013904223u; ((float *)r->data)[i] = (float)(seed >> 8) / 16777216.0f + 0.1f;
        if (i < 37) ((float *)w->data)[i] = 0.5f + (float)i / 37.0f;
    }
    y = tfu_add(ctx, tfu_mul(ctx, tfu_rms_norm(ctx, x, 1e-6f), w), r);
    g = tfu_graph_build(ctx, y);
    if (!g || tfu_graph_compute_ref(g) != TFU_OK) return 1;
    memcpy(ref, y->data, sizeof ref);
#if defined(TFU_NO_MALLOC)
    (void)o; (void)p;
#else
    p = tfu_plan_compile(g, &o);
    if (!p) return 1;
    if (tfu_plan_n_groups(p) != 1) fails++;                 /* norm, mul and add are one group */
    memset(y->data, 0xFF, sizeof ref);                        /* poison */
    if (tfu_plan_run(p) != TFU_OK) fails++;
    for (i = 0; i < 3 * 37; i++) if (!(fabsf(((float *)y->data)[i] - ref[i]) <= 1e-5f * (1.0f + fabsf(ref[i])))) { fails++; break; }
    tfu_plan_free(p);
#endif
    bad = tfu_add(ctx, x, tfu_new_tensor_1d(ctx, TFU_F32, 5));   /* 5 does not divide 37 */
    if (bad || tfu_last_error(ctx) != TFU_ERR_SHAPE) fails++;
    tfu_clear_error(ctx);
    return fails;
}
#endif

#endif /* TFU_IMPLEMENTATION_DONE */
#endif /* TFU_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
This software is available under 2 licenses -- choose whichever you prefer.
ALTERNATIVE A - MIT License
Copyright (c) 2026 the tensorfuse authors
Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions: The above copyright notice and this
permission notice shall be included in all copies or substantial portions of
the Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND,
EXPRESS OR IMPLIED.
ALTERNATIVE B - Public Domain (www.unlicense.org)
This is free and unencumbered software released into the public domain. Anyone
is free to copy, modify, publish, use, compile, sell, or distribute this
software, either in source code form or as a compiled binary, for any purpose,
commercial or non-commercial, and by any means.
------------------------------------------------------------------------------
*/
