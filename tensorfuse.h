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
     TFU_NO_STDIO     do not include <stdio.h> (the library prints nothing and
                      never needs it: reports go to a caller buffer, messages
                      use a tiny formatter of our own)
     TFU_NO_MALLOC    no malloc/free: every buffer comes from the caller
                      (context memory, plan memory through tfu_allocator)
     TFU_NO_THREADS   no thread pool (pthreads; the Win32 API where _WIN32):
                      plans run on the calling thread or on the caller's
                      parallel-for (tfu_plan_options.parallel_for). Needed
                      with a compiler that is not GCC, Clang or MSVC and has
                      no C11 atomics; a parallel-for must then be serial
     TFU_NO_FENV      do not include <fenv.h> (a C library without it). By
                      default a plan's work on other threads (the pool's
                      workers, the tasks of a parallel-for) runs under the
                      calling thread's floating-point environment: rounding,
                      flush-to-zero, x87 precision (mingw-w64's libm computes
                      in it, and a Win32 thread starts with a lower one).
                      Without it each thread's own applies, and results on
                      several threads equal one thread's only where those
                      match the caller's
     TFU_NO_SIMD      scalar kernels only (the SIMD paths are also switched
                      off at run time with TFU_NO_SIMD=1 in the environment)
     TFU_MAX_DIMS     always 4; any other value is an #error
     TFU_SELFTEST     compile tfu_selftest(), a built-in test returning the
                      number of failures

   ENVIRONMENT
     TFU_NO_FUSION=1  every plan compiles unfused (one group per operation)
     TFU_NO_SIMD=1    scalar kernels for every plan compiled while it is set
                      (tfu_plan_options.no_simd for one plan)

   CONTENTS (grep for the tag; docs/ARCHITECTURE.md explains the rooms)
     >>api        declarations (stop reading after them if you only use it)
     >>seam       for backend authors: capabilities in, the plan view out
     -- graph room --
     >>base       errors, compat (atomics), context arena, allocator
     >>tensor     tensors, views
     >>ops        graph builders
     >>graph      graph in program order, use counts, flags
     >>ref        reference executor (the oracle)
     -- plan room --
     >>plan       memory-effect edges, fusion, stages, memory, programs,
                  the plan view, stale checks, report
     -- CPU room --
     >>cpu        vector layer and kernels, executor, thread pool, compile
     >>selftest   tfu_selftest()

   CHANGES
     0.5  TFU_GROUP_ATTENTION (TFU_GROUP_KIND_COUNT, and so tfu_plan_stats,
          grew by one): mul_mat(V, soft_max_ext(mul_mat(K, Q), mask,
          scale)) with the scores and probabilities used once is one group;
          on the CPU per block of query rows without the score matrix in
          memory, fully masked key blocks skipped exactly (causal T=512,
          TinyLlama heads: 2.3x the unfused plan on AVX2, 4.3x on AVX-512,
          where the group packs its panels by 8 x 8 AVX blocks);
          tfu_cpu_caps() includes it, the Vulkan backend does not (the
          three ops as before); the view documents its program. The
          products' inf/NaN redo tests a finite row in one vector pass.
          quant_activations: vpdpbusd where the build has AVX512-VNNI (with
          VL) or AVX-VNNI (the same integers as vpmaddubsw).
          examples/llama.h: Q8_0/Q4_0 weights. CPU: exp in 14 vector
          operations (a clamp instead of masks, a degree-6 fit); sigmoid,
          silu and gelu as one division; softmax takes an x*s + mask
          prologue in exactly, skips exp on masked vectors, prefetches the
          next row. The pool's workers and parallel-for tasks run under the
          calling thread's floating-point environment (TFU_NO_FENV: not).
     0.4  tfu_plan_options.quant_activations: products with Q8_0/Q4_0
          weights may round activations to int8 per block of 32 and use
          integer dot products (AVX2 vpmaddubsw, also in AVX-512 builds;
          NEON sdot or widening multiplies; scalar); off by default, not
          exact (NMSE 2.8e-5 against f32 weights for Q8_0, exact Q8_0
          1.4e-5); outputs that come out NaN or inf are redone exactly. The
          exact Q8_0/Q4_0 kernels 2.4x faster at -O2 (bit for bit the same).
          cpy and set_rows share one destination check. examples/llama2:
          --q8_0 and --q4_0. Vulkan: matvec.comp reads contiguous f32
          operands directly; PLANE addressing (an operand of the group's
          first two dimensions broadcast over dims 2-3); the product kernels
          share shaders/product.glsl.
     0.3.1  gelu and gelu_erf keep their digits for negative x on every path
          (1 + tanh and 1 + erf cancelled below x = -5 in the scalar tail,
          which then disagreed with the SIMD body). Quantized weights:
          TFU_Q8_0 and TFU_Q4_0 (blocks of 32 with an f16 scale), read by
          mul_mat as a and by get_rows; tfu_quantize_q8_0/q4_0,
          tfu_dequantize_row, tfu_type_block_size; products exact with
          respect to the dequantized weights (activations stay f32); every
          other builder refuses them (TFU_ERR_TYPE); Vulkan refuses them at
          compile. Vulkan: contiguous operands of element-wise and row
          groups addressed by their flat index
          (tfvk_plan_options.generic_addressing, tfvk_plan_stats
          n_fast_operands / n_generic_operands); matvec.comp for products
          of at most 8 columns and subgroup reductions in row groups where
          the device has subgroup arithmetic. The fuzz inputs replayed on
          Vulkan too (fuzz_replay_vk).
     0.3  Vulkan: tensorfuse_vk.h runs the same plans (tfu_plan_compile_shared,
          tfu_plan_check, caps.max_group_ops; TFU_ERR_BACKEND, TFU_ERR_DEVICE,
          TFU_ERR_DEVICE_MEMORY). Decoding: tfu_set_rows (rows written at
          indices held in data), graphs over several contexts (one
          process-wide creation counter), tfu_new_tensor_ext,
          tfu_fill_causal_mask, tfu_threadpool shared by plans, plan cache
          hits hash once; examples/llama2.c. CPU: rope with one sin/cos
          table per token, packed f32 panels and an outer-product kernel for
          products of 6+ rows (f16/bf16 as fast as f32), 8-row
          matrix-vector; the bench sized from the last-level cache.
     0.2  reliability: memory effects in program order on every path (the
          graph in creation order; read/write edges on byte ranges in fusion
          and scheduling; overlapping copies read their source first); IEEE
          semantics in every kernel (NaN in, NaN out; argmax: first NaN);
          reductions redo in double the rows where f32 overflows; checked
          views, copies, rope positions, get_rows indices, sizes; stale
          plans return TFU_ERR_STALE; graphs of any depth (no recursion),
          compile linear in the graph. The seam: tfu_backend_caps in,
          tfu_plan_view out; the CPU executor as its first client; SIMD per
          plan (no_simd); one op table; rooms graph -> plan -> CPU.
          Portability: Win32 threads, C11/MSVC atomics, 32-bit, tfu_version,
          make install, pkg-config, CMake. Tests: test_memfx,
          test_reliability, test_ieee, test_seam, test_caps,
          test_embedded, a libFuzzer harness (make fuzz).
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
#define TFU_VERSION_MINOR 5
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
    X(TFU_ERR_STALE,       "the graph changed after the plan was compiled")   \
    X(TFU_ERR_BACKEND,     "backend unavailable (no Vulkan loader or device, or it lacks a needed feature)") \
    X(TFU_ERR_DEVICE,      "the device failed (lost, or an API call failed)")\
    X(TFU_ERR_DEVICE_MEMORY, "out of device memory")

typedef enum tfu_result {
#define TFU_X_ENUM(name, msg) name,
    TFU_RESULT_LIST(TFU_X_ENUM)
#undef TFU_X_ENUM
    TFU_RESULT_COUNT
} tfu_result;

TFU_API const char *tfu_result_str(tfu_result r);

/* Element types. F16 and BF16 are storage types: they compute in f32. I32
   holds indices and positions. Q8_0 and Q4_0 are quantized weights in
   blocks of 32 values along ne0: Q8_0 an f16 scale d then 32 int8 q, value
   d * q (34 bytes); Q4_0 an f16 scale d then 16 bytes, value d * (q - 8),
   q in 0..15, element i < 16 in the low nibble of byte i and element
   16 + i in its high nibble (18 bytes). A quantized tensor is a contiguous
   leaf with ne0 a multiple of 32; nb[0] is the bytes of one block and
   nb[1] = ne0 / 32 * nb[0]. It is read by tfu_mul_mat as a (the weights)
   and by tfu_get_rows as the table; every other builder refuses it
   (TFU_ERR_TYPE). */
typedef enum tfu_type { TFU_F32 = 0, TFU_F16, TFU_BF16, TFU_I32, TFU_Q8_0, TFU_Q4_0, TFU_TYPE_COUNT } tfu_type;

TFU_API const char *tfu_type_name(tfu_type t);
/* bytes of one element, or of one block for Q8_0 (34) and Q4_0 (18) */
TFU_API size_t      tfu_type_size(tfu_type t);
/* elements per block: 32 for Q8_0 and Q4_0, 1 for the others (0: no type) */
TFU_API int64_t     tfu_type_block_size(tfu_type t);

/* Operations: one row each, X(name, class, operands). VIEW covers view,
   reshape, permute and transpose (no compute). Classes: LEAF and VIEW (no
   compute), UNARY (what tfu_unary takes), ELT (other element-wise ops),
   BINARY (element-wise, b broadcast over a), ROW (whole-row reductions with
   an element-wise result), MATMUL, OTHER (an op with its own kernel). The
   class is what the fusion table is indexed by; operands is the most
   sources the op reads. Adding an op is one row here, its builder, its
   reference and its kernel. */
#define TFU_OP_LIST(X)                                                                      \
    X(NONE, LEAF, 0) X(VIEW, VIEW, 1) X(CONT, ELT, 1) X(CPY, ELT, 2)                        \
    X(ADD, BINARY, 2) X(SUB, BINARY, 2) X(MUL, BINARY, 2) X(DIV, BINARY, 2)                 \
    X(SCALE, ELT, 1) X(CLAMP, ELT, 1)                                                       \
    X(NEG, UNARY, 1) X(ABS, UNARY, 1) X(SQR, UNARY, 1) X(SQRT, UNARY, 1) X(EXP, UNARY, 1)   \
    X(LOG, UNARY, 1) X(SIN, UNARY, 1) X(COS, UNARY, 1) X(TANH, UNARY, 1)                    \
    X(SIGMOID, UNARY, 1) X(RELU, UNARY, 1) X(GELU, UNARY, 1) X(GELU_ERF, UNARY, 1)          \
    X(SILU, UNARY, 1)                                                                       \
    X(GLU, ELT, 2)                                                                          \
    X(RMS_NORM, ROW, 1) X(NORM, ROW, 1) X(SOFT_MAX, ROW, 2)                                 \
    X(MUL_MAT, MATMUL, 2) X(GET_ROWS, OTHER, 2) X(ROPE, OTHER, 2) X(CONCAT, OTHER, 2)       \
    X(SUM_ROWS, OTHER, 1) X(MEAN, OTHER, 1) X(ARGMAX, OTHER, 1) X(SET_ROWS, OTHER, 3)

typedef enum tfu_op {
#define TFU_X_OP(name, cls, n_src) TFU_OP_##name,
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
    int64_t     index;                  /* creation sequence, one counter for
                                           the process: program order across
                                           contexts                         */
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
/* tfu_free frees only what tfu_init_malloc took. Free the plans compiled
   from the context's graphs first: a plan used after its context was freed
   is a bug in the caller (it cannot be detected). After tfu_reset (forget
   every tensor and graph) those plans return TFU_ERR_STALE until rebound. */
TFU_API void         tfu_free(tfu_context *ctx);
TFU_API void         tfu_reset(tfu_context *ctx);
TFU_API size_t       tfu_used_mem(const tfu_context *ctx);

/* The first error since the last tfu_clear_error (so a chain of builders
   that pass NULL on reports its cause): code, message and the tensor it
   concerns (NULL if none). */
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
/* An external leaf: a contiguous tensor over caller memory (e.g. mapped
   from a file), in any context, no_alloc or not; only the description takes
   context memory. The caller keeps data valid (and at least 4-byte aligned
   for I32/F32, 2 for F16/BF16, any for Q8_0/Q4_0) while graphs and plans
   use the tensor. TFU_ERR_NULL_ARG for NULL data. */
TFU_API tfu_tensor *tfu_new_tensor_ext(tfu_context *ctx, tfu_type type, int n_dims, const int64_t *ne, void *data);
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
/* Element access for tests and small programs (any type, any strides);
   outside [0, ne) tfu_get_f32 returns NAN and tfu_set_f32 writes nothing.
   Q8_0/Q4_0: tfu_get_f32 reads the dequantized value; tfu_set_f32 writes
   nothing (a value belongs to its block: quantize whole rows with
   tfu_quantize_q8_0 / tfu_quantize_q4_0 into t->data). */
TFU_API float   tfu_get_f32(const tfu_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3);
TFU_API void    tfu_set_f32(tfu_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3, float v);
TFU_API float   tfu_f16_to_f32(uint16_t h);
TFU_API uint16_t tfu_f32_to_f16(float f);
TFU_API float   tfu_bf16_to_f32(uint16_t h);
TFU_API uint16_t tfu_f32_to_bf16(float f);
/* Quantization of n floats (n a multiple of 32) into n / 32 blocks at dst;
   returns the bytes written, 0 (nothing written) for NULL pointers or an n
   that is not a positive multiple of 32. Per block, d is rounded to f16
   first and q computed against that d:
     Q8_0: d = max|x| / 127, q = round(x / d) (half away from zero) in
           -127..127, so |x - d q| <= d / 2;
     Q4_0: d = m / -8 with m the value of largest magnitude (sign kept),
           q = clamp(floor(x / d + 8.5), 0, 15), so |x - d (q - 8)| <= |d| / 2
           except for values within |d| / 2 of -m (q = 15), within |d|.
   All-zero blocks get d = 0. A block holding a NaN or an infinity is
   stored with d = NaN and q = 0 (every value reads back NaN: a non-finite
   weight never turns into a finite one); finite values too large for an
   f16 d (max|x| / 127 or |m| / 8 above 65504) saturate at d = 65504. */
TFU_API size_t  tfu_quantize_q8_0(const float *src, void *dst, int64_t n);
TFU_API size_t  tfu_quantize_q4_0(const float *src, void *dst, int64_t n);
/* n contiguous values of any float or quantized type (a row, n a multiple
   of 32 for Q8_0/Q4_0) at src to f32 at dst, exactly (d * q in f32 is exact).
   TFU_ERR_TYPE for I32 or no type, TFU_ERR_INVALID_ARG for a bad n,
   TFU_ERR_NULL_ARG for NULL pointers. */
TFU_API tfu_result tfu_dequantize_row(tfu_type type, const void *src, float *dst, int64_t n);

/* --- views (no copy; the result aliases a) -------------------------------
   tfu_view: ne has n_dims sizes; nb the byte strides of dims 1..n_dims-1
   (NULL: contiguous); offset in bytes from a's first element. The view must
   stay inside a's bytes. Views of Q8_0/Q4_0 tensors (view, reshape,
   permute, transpose) are refused with TFU_ERR_TYPE. */
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
   or a view of one whose elements do not overlap each other); the result
   aliases dst. Memory effects follow program order: every read of dst's
   bytes, through the result or not, sees the writes of the copies created
   before the reading operation and none created after it, whatever order
   results are expanded in. Overlapping a and dst behave as if a were read
   whole first. */
TFU_API tfu_tensor *tfu_cpy(tfu_context *ctx, tfu_tensor *a, tfu_tensor *dst);
/* set_rows: write the rows of src (any float type) into rows of the existing
   tensor dst (a leaf or a view of one, elements not overlapping), converted
   to dst's type: dst[:, idx[i, i2 % idx->ne1, i3 % idx->ne2], i2, i3] =
   src[:, i, i2, i3]. dst is ne0 x R x ne2 x ne3, src ne0 x n x ne2 x ne3,
   idx I32 n x (1 or a divisor of ne2) x (1 or a divisor of ne3). The rows
   are data, not structure: one plan serves every index (a KV cache written
   at positions held in a tensor). The result aliases dst; memory effects
   follow program order as for tfu_cpy, with the whole of dst's bytes
   counted as written (the indices are data). Indices held in a leaf are
   checked before a run: one out of [0, R), or two equal ones in one row of
   idx, is TFU_ERR_INVALID_ARG with nothing written; computed indices are
   clamped (equal ones: one of the rows lands, unspecified which). */
TFU_API tfu_tensor *tfu_set_rows(tfu_context *ctx, tfu_tensor *dst, tfu_tensor *src, tfu_tensor *idx);

/* --- element-wise ops ----------------------------------------------------
   Results are F32. Inputs may be F32, F16 or BF16 and non-contiguous.
   Binary ops broadcast b over a (ggml rule: a->ne[i] % b->ne[i] == 0); the
   result has a's shape.
   NaN and infinities (every op, every path): NaN in, NaN out (relu, clamp
   and reglu included); infinities as IEEE arithmetic on the definition
   gives them, so e.g. gelu(-inf) and silu(-inf) are NaN (-inf * 0). */
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

/* --- row ops -------------------------------------------------------------
   Computed in f32; a row whose f32 sums would overflow or underflow (values
   near 1e20, or 1e-30 with eps = 0), or that holds inf or NaN, is computed
   in double, so every representable input gives the reference's result. */
TFU_API tfu_tensor *tfu_rms_norm(tfu_context *ctx, tfu_tensor *a, float eps);  /* x / sqrt(mean(x^2)+eps) */
TFU_API tfu_tensor *tfu_norm(tfu_context *ctx, tfu_tensor *a, float eps);      /* (x-mean) / sqrt(var+eps) */
/* softmax over rows of (a*scale + mask); mask may be NULL, else F32/F16 with
   ne0 == a->ne0 and at least a->ne1 rows; it broadcasts over dims 2 and 3.
   A row with a NaN, or whose values are all -inf (fully masked), or that
   holds +inf, is all NaN (exp(-inf - -inf), as IEEE has it). */
TFU_API tfu_tensor *tfu_soft_max(tfu_context *ctx, tfu_tensor *a);
TFU_API tfu_tensor *tfu_soft_max_ext(tfu_context *ctx, tfu_tensor *a, tfu_tensor *mask, float scale);
/* causal mask helper: a new F32 leaf (n_kv x n_q), 0 where kv <= q + (n_kv - n_q), -inf elsewhere;
   filled now (needs context data: in a no_alloc context make the leaf with
   tfu_new_tensor_ext and fill it with tfu_fill_causal_mask). */
TFU_API tfu_tensor *tfu_causal_mask(tfu_context *ctx, int64_t n_kv, int64_t n_q);
/* fills an existing F32 mask (ne0 = n_kv keys, ne1 = n_q queries, any
   strides, dims 2 and 3 alike): 0 where kv <= n_past + q, -inf elsewhere.
   With the mask an input of the graph, the number of valid keys is data:
   a decoder attends over a cache of fixed capacity (or a few length
   buckets) and one plan serves every position. */
TFU_API tfu_result tfu_fill_causal_mask(tfu_tensor *mask, int64_t n_past);
TFU_API tfu_tensor *tfu_sum_rows(tfu_context *ctx, tfu_tensor *a);   /* ne0 -> 1 */
TFU_API tfu_tensor *tfu_mean(tfu_context *ctx, tfu_tensor *a);       /* ne0 -> 1 */
/* argmax: ne0 -> 1, I32: the index of the first NaN if the row has one (as
   NumPy), else of the first maximum (a row of -inf gives 0) */
TFU_API tfu_tensor *tfu_argmax(tfu_context *ctx, tfu_tensor *a);

/* --- other ops ------------------------------------------------------------
   mul_mat: a is K x M (weights: F32, F16, BF16, Q8_0 or Q4_0), b is K x N (F32); the
   result is M x N F32: out[n][m] = sum_k a[m][k] * b[n][k]. Dimensions 2 and
   3 of a broadcast over b's (b->ne[2] % a->ne[2] == 0). Accumulates in f32;
   an output that comes out inf or NaN is computed again in double, so f32
   overflow of a partial sum never changes a result. Q8_0/Q4_0 weights
   are dequantized exactly (d * q in f32) and multiplied with the f32
   activations as f32 weights would be: activations are never rounded. */
TFU_API tfu_tensor *tfu_mul_mat(tfu_context *ctx, tfu_tensor *a, tfu_tensor *b);
/* get_rows: rows of a (any float or quantized type) picked by I32 idx (ne0 = n): result
   a->ne0 x n x idx->ne1 F32. */
TFU_API tfu_tensor *tfu_get_rows(tfu_context *ctx, tfu_tensor *a, tfu_tensor *idx);
/* rope: a is head_dim x n_heads x n_tokens (x batch); pos is an I32 vector of
   n_tokens entries (ne0 = n_tokens, any stride; a transposed one is refused);
   the first n_dims values of every head are rotated. */
TFU_API tfu_tensor *tfu_rope(tfu_context *ctx, tfu_tensor *a, tfu_tensor *pos, int n_dims, tfu_rope_mode mode, float freq_base);
TFU_API tfu_tensor *tfu_concat(tfu_context *ctx, tfu_tensor *a, tfu_tensor *b, int dim);

/* --- graphs ---------------------------------------------------------------
   A graph holds every tensor the results depend on, in creation order
   (program order, also a topological order: sources before users). Use counts: the number of
   (consumer, operand) edges pointing at each tensor inside the graph, kept
   exact by tfu_graph_build_expand. A graph lives in its context's memory.
   Several contexts: a graph may use leaves (external or not) and views of
   them from other contexts, e.g. weights in a persistent context and each
   step's graph in a scratch one that is reset; a computed tensor of another
   context is refused (TFU_ERR_GRAPH: its memory would come from the graph's
   context). Creation order is one counter for the process, so program
   order holds across contexts. The graph holds pointers only: those
   contexts (and external memory) must outlive the graph and its plans and
   must not be reset while they are in use (that is not detected; a reset
   of the graph's own context is: TFU_ERR_STALE). */
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
TFU_API uint64_t    tfu_graph_hash(const tfu_graph *g);  /* structure: ops, shapes, types, strides, view offsets, flags, params */
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
    int                 no_simd;       /* 1: scalar kernels for this plan (also
                                          TFU_NO_SIMD=1 when it compiles); kept
                                          in the plan, other plans unaffected */
    tfu_allocator       allocator;     /* plan memory; zero: malloc/free          */
    void               *arena;         /* caller memory for values (16-byte       */
    size_t              arena_size;    /* aligned), or NULL: the plan allocates   */
    tfu_parallel_for_fn parallel_for;  /* caller threads instead of the pool      */
    void               *parallel_for_user;
    tfu_eval_fn         eval_cb;
    void               *eval_user;
    const struct tfu_backend_caps *caps; /* NULL: the CPU's (>>seam)     */
    struct tfu_threadpool *pool;       /* borrowed workers (n_threads is then
                                          the pool's); NULL: a pool of the
                                          plan's own when n_threads > 1  */
    int                 quant_activations; /* 1: mul_mat with Q8_0/Q4_0 weights
                                          rounds activations to int8 per block
                                          of 32 and uses integer dot products
                                          (faster, not exact; error in
                                          BENCHMARKS.md); 0: exact         */
} tfu_plan_options;

TFU_API tfu_plan_options tfu_plan_default_options(void);

/* A shared thread pool: n_threads including the caller (1..256); plans
   borrow it through tfu_plan_options.pool instead of starting threads of
   their own, so a plan cache of any size holds the pool's threads only.
   It runs one plan at a time: tfu_plan_run of a second plan while one runs
   on it returns TFU_ERR_THREADS. Free it after every plan that borrows it.
   NULL if threads cannot start (always with TFU_NO_THREADS or
   TFU_NO_MALLOC). */
typedef struct tfu_threadpool tfu_threadpool;
TFU_API tfu_threadpool *tfu_threadpool_new(int n_threads);
TFU_API void            tfu_threadpool_free(tfu_threadpool *pool);
TFU_API int             tfu_threadpool_n_threads(const tfu_threadpool *pool);   /* 0 for NULL */

/* compile: NULL on error (see the context's error): TFU_ERR_INVALID_ARG for a
   row or matrix-product K above INT_MAX elements, TFU_ERR_OVERFLOW when the
   arena or scratch size does not fit size_t, TFU_ERR_NO_MEMORY.
   run: TFU_ERR_STALE (nothing computed) when the graph changed after compile
   or rebind: a result expanded into it, a flag set on one of its tensors,
   its context reset; TFU_ERR_NO_DATA for a leaf without data;
   TFU_ERR_INVALID_ARG for a get_rows index out of range (nothing written). */
TFU_API tfu_plan  *tfu_plan_compile(tfu_graph *g, const tfu_plan_options *opts);
TFU_API tfu_result tfu_plan_run(tfu_plan *p);
TFU_API void       tfu_plan_free(tfu_plan *p);   /* the graph's computed tensors then point at freed memory */
TFU_API tfu_result tfu_plan_last_error(const tfu_plan *p);
/* Rebind an existing plan to a structurally identical graph (same
   tfu_graph_hash: ops, sources, shapes, types, strides, view offsets,
   flags, params, use counts): no re-planning. TFU_ERR_STALE if the
   structure differs. Data is not structure: indices (set_rows, get_rows),
   positions (rope) and masks (valid lengths) change between runs freely. */
TFU_API tfu_result tfu_plan_rebind(tfu_plan *p, tfu_graph *g);
/* Arena: bytes the plan needs for intermediate values (known after
   compile, before any is allocated); bind caller memory before running. */
TFU_API size_t     tfu_plan_arena_bytes(const tfu_plan *p);
TFU_API tfu_result tfu_plan_set_arena(tfu_plan *p, void *mem, size_t size);

/* Plan cache: hands back a compiled plan for a graph of the same structure,
   rebound to the new graph's tensors; a hit hashes the graph once, and the
   graph a plan is bound to, unchanged, not at all. Owns its plans (with
   options.pool they share its threads). */
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
    TFU_GROUP_ATTENTION,    /* mul_mat(V, soft_max_ext(mul_mat(K, Q), mask, scale)):
                               no score matrix in memory                     */
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
    int    n_barriers;       /* barriers between stages per run = stages - 1 */
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

/* >>seam ==================================================================
   For backend authors (everyday users stop above). A backend states what it
   can run before fusion (tfu_backend_caps, through tfu_plan_options.caps);
   afterwards it reads the compiled plan through a read-only view: a program
   per group, the stages, the arena offset of every materialised value and
   the bytes each stage touches. The view is complete: an executor needs
   nothing else (tests/test_seam.c is one, in plain loops).

   Memory. Every tensor has a memory root (root[i]): itself for leaves and
   materialised values, the aliased tensor for views and copies. A leaf's
   bytes are user memory (tensors[i]->data); a value's bytes are the arena
   at offset[i] (size: its tensor's tfu_nbytes, rounded up to 64). A view or
   copy lives at tensors[i]->view_offs inside its root, with its own ne and
   nb. Values with offset[i] < 0 live only inside their group.

   Groups run in order; the groups of one stage touch no bytes another group
   of the stage writes, so a backend needs one barrier between two stages
   and none inside one. A group's iteration space is ne (its output's shape;
   for a matrix-product group the products' shape). Its program is
   n_instr instructions in dependency order; instruction k computes tensor
   instrs[k].tensor (op, params, shape from the tensor) from n_src sources:
   src >= 0 is an earlier instruction of the group, src < 0 the group
   operand -1 - src: a tensor read from memory, broadcast over the group's
   index by the ggml rule (index d taken modulo the operand's ne[d]).
   col_off is nonzero only for the halves of a fused-row GLU, whose operand
   is twice the group's width: column i0 + col_off. A GLU instruction always
   has two sources, gate then value (swapped and the split form are already
   resolved: ignore op_params_i[1] and [2]). Element-wise instructions work
   element for element, row instructions (RMS_NORM, NORM, SOFT_MAX) on whole
   rows of the group, MUL_MAT is the product of its two operands as
   tfu_mul_mat documents (a's dims 2 and 3 broadcast over b's by division:
   b->ne2 / a->ne2 consecutive batches share one of a's), the rest of a
   matrix-product group is an element-wise epilogue on its output, and an
   OTHER group is one op with its own kernel (GET_ROWS, ROPE, CONCAT,
   SUM_ROWS, MEAN, ARGMAX, SET_ROWS) reading its operands as the reference
   executor does (tfu_x_ref_node; argmax: first NaN, else first maximum).
   An ATTENTION group has three instructions: S = MUL_MAT(K, Q) from two
   operands, P = SOFT_MAX(S, mask) (the mask an operand, if any), and the
   result MUL_MAT(V, P) whose source 1 is instruction 1; its iteration
   space is the result's shape. S and P (n_kv x n_q per head) live only
   inside the group: a backend computes them block by block, never in
   memory. A backend without such a kernel leaves the kind out of its
   fuse_kinds and gets the three as separate groups.
   SET_ROWS has two sources, the rows then the I32 indices (tensor src[0]
   and src[1]; its dst, src[2], is not read); its iteration space is the
   rows' shape (one row of them per work item), it writes row
   idx[i1, i2 % idx->ne1, i3 % idx->ne2] of its memory root at the result's
   view_offs and strides, and its write range is the result's whole bytes.
   store = 1: the result is written to its memory (arena value or, for a
   copy or set_rows, its root's bytes). Arena offsets are multiples of 64
   bytes. Before a run a backend checks what tfu_plan_run checks (leaves
   have data; get_rows and set_rows indices held in leaves are in range,
   and set_rows ones distinct in each row of idx: else TFU_ERR_INVALID_ARG,
   nothing written). tests/test_seam.c runs random graphs through such an executor
   (tests/tfu_view_exec.h) against the reference. */
/* What a backend can run, given to the one fusion pass before it forms
   groups: fuse_kinds, a bit (1u << kind) per group kind it runs with more
   than one operation (0: no fusion at all); max_products, matrix products
   one group may hold; max_row, the longest row (or product K) one kernel
   takes, in elements; operand_types[kind], a bit (1u << type) per tensor
   type a group of that kind may read; max_group_ops, operations one group
   may hold (0: any number; a kernel with a fixed number of instruction
   slots says how many). A graph the backend cannot run fails
   to compile (TFU_ERR_INVALID_ARG for a row, TFU_ERR_TYPE for a type). A
   plan compiled by tfu_plan_compile runs on the CPU, so caps given there
   must be within tfu_cpu_caps() (a backend with less is tested that way). */
typedef struct tfu_backend_caps {
    unsigned fuse_kinds;
    int      max_products;
    int64_t  max_row;
    unsigned operand_types[TFU_GROUP_KIND_COUNT];
    int      max_group_ops;
} tfu_backend_caps;

TFU_API tfu_backend_caps tfu_cpu_caps(void);

typedef struct tfu_pv_instr {
    int32_t tensor;              /* index in tensors[] of the node computed   */
    int32_t n_src;
    int32_t src[TFU_MAX_SRC];    /* >= 0: instruction; < 0: operand -1 - src  */
    int32_t store;               /* written to memory                         */
} tfu_pv_instr;

typedef struct tfu_pv_operand {
    int32_t tensor;              /* index in tensors[] of the tensor read     */
    int32_t col_off;             /* first column read                         */
} tfu_pv_operand;

typedef struct tfu_pv_group {
    tfu_group_kind kind;
    int32_t stage;
    int32_t first_instr, n_instr;
    int32_t first_operand, n_operands;
    int64_t ne[TFU_MAX_DIMS];    /* iteration space                           */
} tfu_pv_group;

typedef struct tfu_pv_range {    /* bytes a stage touches in one memory root  */
    int32_t root;                /* tensors[] index of a leaf; -1: the arena  */
    int32_t write;               /* 0: read, 1: written                       */
    uint64_t lo, hi;             /* [lo, hi) from the root's first byte       */
} tfu_pv_range;

typedef struct tfu_plan_view {
    int                 n_tensors;
    tfu_tensor *const  *tensors;    /* the bound graph's tensors, program order */
    const int32_t      *root;       /* per tensor: its memory root                */
    const int64_t      *offset;     /* per tensor: arena offset, -1 if none       */
    const int32_t      *life_first, *life_last; /* per tensor: stages its arena bytes are in use */
    size_t              arena_bytes;
    int                 n_groups;
    const tfu_pv_group *groups;     /* execution order (by stage)                 */
    int                 n_instrs, n_operands, n_ranges;
    const tfu_pv_instr *instrs;
    const tfu_pv_operand *operands;
    int                 n_stages;
    const int32_t      *stage_first;  /* groups of stage s: [stage_first[s], stage_first[s+1]) */
    const int32_t      *range_first;  /* ranges of stage s: [range_first[s], range_first[s+1]) */
    const tfu_pv_range *ranges;
} tfu_plan_view;

/* The view of a compiled plan; valid until the plan is freed or rebound.
   TFU_ERR_STALE if the graph changed since compile. */
TFU_API tfu_result tfu_plan_get_view(const tfu_plan *p, tfu_plan_view *view);

/* The shared passes only, for another backend: fusion with opts->caps
   (which need not be within the CPU's), stages, memory, the view; no CPU
   lowering, no arena, no threads. Queries, reports, tfu_plan_rebind and the
   view work on it; tfu_plan_run returns TFU_ERR_INVALID_ARG. */
TFU_API tfu_plan  *tfu_plan_compile_shared(tfu_graph *g, const tfu_plan_options *opts);
/* What tfu_plan_run checks before it runs anything, for a backend to call
   before its own run: TFU_ERR_STALE, TFU_ERR_NO_DATA (a leaf without data),
   TFU_ERR_INVALID_ARG (an index held in a leaf out of range); message in
   the graph's context. */
TFU_API tfu_result tfu_plan_check(tfu_plan *p);

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
#if !defined(TFU_NO_FENV)
#include <fenv.h>   /* workers take the caller's floating-point environment */
#if defined(__SSE__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 1)
#include <xmmintrin.h>   /* _mm_getcsr: mingw-w64's fegetenv leaves MXCSR out */
#define TFU_X_MXCSR 1
#endif
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
/* GCC 12's AVX-512 intrinsics (_mm512_undefined_*: "__Y = __Y") warn
   -Wmaybe-uninitialized when inlined into C++ (GCC bug 105593): off for
   the locations of that header only */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
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

/* forced inlining and prefetches for the kernels: a read with no temporal
   locality, a read and a write into L2 */
#if defined(__GNUC__)
#define TFU_X_FORCE_INLINE static inline __attribute__((always_inline))
#define TFU_X_PREFETCH_R(p) __builtin_prefetch((p), 0, 0)
#define TFU_X_PREFETCH_L2(p) __builtin_prefetch((p), 0, 2)
#define TFU_X_PREFETCH_W(p) __builtin_prefetch((p), 1, 2)
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#define TFU_X_FORCE_INLINE static __forceinline
#define TFU_X_PREFETCH_R(p) _mm_prefetch((const char *)(p), _MM_HINT_NTA)
#define TFU_X_PREFETCH_L2(p) _mm_prefetch((const char *)(p), _MM_HINT_T1)
#define TFU_X_PREFETCH_W(p) _mm_prefetch((const char *)(p), _MM_HINT_T1)
#elif defined(_MSC_VER)
#define TFU_X_FORCE_INLINE static __forceinline
#define TFU_X_PREFETCH_R(p) ((void)0)
#define TFU_X_PREFETCH_L2(p) ((void)0)
#define TFU_X_PREFETCH_W(p) ((void)0)
#else
#define TFU_X_FORCE_INLINE static inline
#define TFU_X_PREFETCH_R(p) ((void)0)
#define TFU_X_PREFETCH_L2(p) ((void)0)
#define TFU_X_PREFETCH_W(p) ((void)0)
#endif

TFU_API const char *tfu_version(void) { return TFU_VERSION_STRING; }

/* Program order across contexts (DESIGN.md): every tensor takes the next
   number of one process-wide counter, so tensors of several contexts
   compare by creation. Relaxed: only uniqueness and per-thread order
   matter (one context is used by one thread at a time). */
static int64_t tfu_x_seq;
static int64_t tfu_x_next_seq(void) { return tfu_x_atomic_fetch_add64(&tfu_x_seq, 1, TFU_X_RELAXED); }

#define TFU_X_ALIGN 64
#define TFU_X_MSG 192

struct tfu_context {
    unsigned char *mem;
    size_t         size, used;
    int            no_alloc, owned;
    int            n_tensors;
    uint32_t       gen;       /* bumped by tfu_reset: plans of the old graphs are stale */
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
#define TFU_X_OP_STR(name, cls, n_src) #name,
    TFU_OP_LIST(TFU_X_OP_STR)
#undef TFU_X_OP_STR
};

/* the op table's class and operand columns */
enum { TFU_X_OPC_LEAF, TFU_X_OPC_VIEW, TFU_X_OPC_UNARY, TFU_X_OPC_ELT, TFU_X_OPC_BINARY, TFU_X_OPC_ROW, TFU_X_OPC_MATMUL, TFU_X_OPC_OTHER };

static const unsigned char tfu_x_op_class[] = {
#define TFU_X_OP_CLASS(name, cls, n_src) TFU_X_OPC_##cls,
    TFU_OP_LIST(TFU_X_OP_CLASS)
#undef TFU_X_OP_CLASS
};

static const unsigned char tfu_x_op_n_src[] = {
#define TFU_X_OP_NSRC(name, cls, n_src) n_src,
    TFU_OP_LIST(TFU_X_OP_NSRC)
#undef TFU_X_OP_NSRC
};

TFU_API const char *tfu_op_name(tfu_op op) {
    if ((int)op < 0 || op >= TFU_OP_COUNT) return "?";
    return tfu_x_op_names[op];
}

TFU_API const char *tfu_type_name(tfu_type t) {
    switch (t) {
    case TFU_F32: return "f32"; case TFU_F16: return "f16";
    case TFU_BF16: return "bf16"; case TFU_I32: return "i32";
    case TFU_Q8_0: return "q8_0";
    case TFU_Q4_0: return "q4_0";
    default: return "?";
    }
}

TFU_API size_t tfu_type_size(tfu_type t) {
    switch (t) {
    case TFU_F32: case TFU_I32: return 4;
    case TFU_F16: case TFU_BF16: return 2;
    case TFU_Q8_0: return 34;
    case TFU_Q4_0: return 18;
    default: return 0;
    }
}

#define TFU_X_QK 32   /* values per block of Q8_0 and Q4_0 */

static int tfu_x_is_quant(tfu_type t) { return t == TFU_Q8_0 || t == TFU_Q4_0; }

TFU_API int64_t tfu_type_block_size(tfu_type t) {
    if ((int)t < 0 || t >= TFU_TYPE_COUNT) return 0;
    return tfu_x_is_quant(t) ? TFU_X_QK : 1;
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
#define TFU_X_GRAPH_PER_NODE (4 * sizeof(void *) + 1 + (1 + TFU_MAX_SRC) * sizeof(int32_t) + 4 * (sizeof(void *) + sizeof(int32_t)) + 16)

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
    ctx->gen++;
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

/* --- quantized blocks (Q8_0, Q4_0): layouts in the type's comment (>>api) */

static float tfu_x_ld_f16(const void *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return tfu_f16_to_f32(h);
}

static int tfu_x_finite_f(float v) { return v >= -FLT_MAX && v <= FLT_MAX; }

/* value j (0..31) of the block at blk */
static float tfu_x_ld_q(tfu_type type, const void *blk, int j) {
    const unsigned char *q = (const unsigned char *)blk + 2;
    float d = tfu_x_ld_f16(blk);
    if (type == TFU_Q8_0) return d * (float)(signed char)q[j];
    return d * (float)((j < 16 ? q[j] & 0x0F : q[j - 16] >> 4) - 8);
}

/* the f16 scale of a block: a non-finite block is NaN; finite ones
   saturate at the largest f16 */
static uint16_t tfu_x_q_scale(int finite, float d) {
    if (!finite) return 0x7E00u;
    if (d > 65504.0f) d = 65504.0f;
    if (d < -65504.0f) d = -65504.0f;
    return tfu_f32_to_f16(d);
}

static void tfu_x_quantize_q8_0_block(const float *x, unsigned char *blk) {
    float amax = 0.0f, dh;
    int j, finite = 1;
    uint16_t h;
    for (j = 0; j < TFU_X_QK; j++) {
        if (!tfu_x_finite_f(x[j])) finite = 0;
        else if (fabsf(x[j]) > amax) amax = fabsf(x[j]);
    }
    h = tfu_x_q_scale(finite, amax / 127.0f);
    memcpy(blk, &h, 2);
    dh = tfu_f16_to_f32(h);
    for (j = 0; j < TFU_X_QK; j++) {
        float r = finite && dh != 0.0f ? x[j] / dh : 0.0f;
        r = r < -127.0f ? -127.0f : r > 127.0f ? 127.0f : r;   /* d rounded down to f16 */
        blk[2 + j] = (unsigned char)(signed char)(int)roundf(r);
    }
}

static void tfu_x_quantize_q4_0_block(const float *x, unsigned char *blk) {
    float m = 0.0f, dh;
    int j, finite = 1;
    uint16_t h;
    for (j = 0; j < TFU_X_QK; j++) {
        if (!tfu_x_finite_f(x[j])) finite = 0;
        else if (fabsf(x[j]) > fabsf(m)) m = x[j];
    }
    h = tfu_x_q_scale(finite, m / -8.0f);
    memcpy(blk, &h, 2);
    dh = tfu_f16_to_f32(h);
    for (j = 0; j < TFU_X_QK / 2; j++) {
        int q[2], e;
        for (e = 0; e < 2; e++) {
            float r = !finite ? 0.0f : dh != 0.0f ? x[j + 16 * e] / dh + 8.5f : 8.0f;
            r = r < 0.0f ? 0.0f : r > 15.0f ? 15.0f : r;
            q[e] = (int)floorf(r);
        }
        blk[2 + j] = (unsigned char)(q[0] | q[1] << 4);
    }
}

TFU_API size_t tfu_quantize_q8_0(const float *src, void *dst, int64_t n) {
    int64_t b;
    if (!src || !dst || n <= 0 || n % TFU_X_QK) return 0;
    for (b = 0; b < n / TFU_X_QK; b++) tfu_x_quantize_q8_0_block(src + b * TFU_X_QK, (unsigned char *)dst + b * 34);
    return (size_t)(n / TFU_X_QK) * 34;
}

TFU_API size_t tfu_quantize_q4_0(const float *src, void *dst, int64_t n) {
    int64_t b;
    if (!src || !dst || n <= 0 || n % TFU_X_QK) return 0;
    for (b = 0; b < n / TFU_X_QK; b++) tfu_x_quantize_q4_0_block(src + b * TFU_X_QK, (unsigned char *)dst + b * 18);
    return (size_t)(n / TFU_X_QK) * 18;
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

/* element (i0..i3) of any tensor as f32: a quantized one through its block
   (nb[0] steps blocks of 32) */
static float tfu_x_get(const tfu_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
    const char *base = (const char *)t->data;
    if (tfu_x_is_quant(t->type)) return tfu_x_ld_q(t->type, base + tfu_x_offs(t, i0 / TFU_X_QK, i1, i2, i3), (int)(i0 % TFU_X_QK));
    return tfu_x_ld(t->type, base + tfu_x_offs(t, i0, i1, i2, i3));
}

TFU_API tfu_result tfu_dequantize_row(tfu_type type, const void *src, float *dst, int64_t n) {
    int64_t i;
    size_t es;
    if (!src || !dst) return TFU_ERR_NULL_ARG;
    if ((int)type < 0 || type >= TFU_TYPE_COUNT || type == TFU_I32) return TFU_ERR_TYPE;
    if (n < 0 || (tfu_x_is_quant(type) && n % TFU_X_QK)) return TFU_ERR_INVALID_ARG;
    es = tfu_type_size(type);
    for (i = 0; i < n; i++) {
        const char *p = (const char *)src;
        if (tfu_x_is_quant(type)) dst[i] = tfu_x_ld_q(type, p + (size_t)(i / TFU_X_QK) * es, (int)(i % TFU_X_QK));
        else dst[i] = tfu_x_ld(type, p + (size_t)i * es);
    }
    return TFU_OK;
}

static int tfu_x_in_bounds(const tfu_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
    return i0 >= 0 && i0 < t->ne[0] && i1 >= 0 && i1 < t->ne[1] && i2 >= 0 && i2 < t->ne[2] && i3 >= 0 && i3 < t->ne[3];
}

TFU_API float tfu_get_f32(const tfu_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
    if (!t || !t->data || !tfu_x_in_bounds(t, i0, i1, i2, i3)) return NAN;
    return tfu_x_get(t, i0, i1, i2, i3);
}

TFU_API void tfu_set_f32(tfu_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3, float v) {
    if (!t || !t->data || !tfu_x_in_bounds(t, i0, i1, i2, i3) || tfu_x_is_quant(t->type)) return;
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
    for (i = 0; i < TFU_MAX_DIMS; i++) {
        int64_t steps = i == 0 && tfu_x_is_quant(t->type) ? t->ne[0] / TFU_X_QK : t->ne[i];   /* blocks along ne0 */
        n += (size_t)(steps - 1) * t->nb[i];
    }
    return n;
}

TFU_API int tfu_is_contiguous(const tfu_tensor *t) {
    size_t s; int i;
    if (!t) return 0;
    s = tfu_type_size(t->type);
    for (i = 0; i < TFU_MAX_DIMS; i++) {
        int64_t steps = i == 0 && tfu_x_is_quant(t->type) ? t->ne[0] / TFU_X_QK : t->ne[i];   /* blocks along ne0 */
        if (steps != 1 && t->nb[i] != s) return 0;
        s *= (size_t)steps;
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
        int64_t n = i < n_dims ? ne[i] : 1, steps = n;
        if (n <= 0) return TFU_ERR_INVALID_ARG;
        if ((uint64_t)n > (uint64_t)INT64_MAX / 2 || (uint64_t)(size_t)n != (uint64_t)n) return TFU_ERR_OVERFLOW;  /* 32-bit size_t */
        if (i == 0 && tfu_x_is_quant(type)) {   /* whole blocks: nb[0] is a block's bytes */
            if (n % TFU_X_QK) return TFU_ERR_SHAPE;
            steps = n / TFU_X_QK;
        }
        ne_out[i] = n; nb[i] = s;
        if (!tfu_x_mul_ok(s, (size_t)steps, &s) || s > (size_t)INT64_MAX / 4) return TFU_ERR_OVERFLOW;
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
                  r == TFU_ERR_OVERFLOW ? "tensor size overflows" :
                  r == TFU_ERR_SHAPE ? "a Q8_0/Q4_0 row (ne0) must be a multiple of 32" : "invalid type", NULL, NULL);
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
    t->index = tfu_x_next_seq();
    ctx->n_tensors++;
    return t;
}

TFU_API tfu_tensor *tfu_new_tensor(tfu_context *ctx, tfu_type type, int n_dims, const int64_t *ne) {
    return tfu_x_new(ctx, type, n_dims, ne, 1, "new_tensor");
}
TFU_API tfu_tensor *tfu_new_tensor_ext(tfu_context *ctx, tfu_type type, int n_dims, const int64_t *ne, void *data) {
    tfu_tensor *t;
    if (!ctx) return NULL;
    if (!data) {
        tfu_x_err(ctx, TFU_ERR_NULL_ARG, NULL, "new_tensor_ext", "data is NULL", NULL, NULL);
        return NULL;
    }
    t = tfu_x_new(ctx, type, n_dims, ne, 0, "new_tensor_ext");
    if (t) t->data = data;
    return t;
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
    TFU_ASSERT((c ? 3 : b ? 2 : a ? 1 : 0) <= tfu_x_op_n_src[op]);   /* the op table's operand count */
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

static int tfu_x_is_unary(tfu_op op) { return (int)op >= 0 && op < TFU_OP_COUNT && tfu_x_op_class[op] == TFU_X_OPC_UNARY; }

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
    if (!ctx) return NULL;
    if (ctx->no_alloc) {
        tfu_x_err(ctx, TFU_ERR_INVALID_ARG, NULL, "causal_mask",
                  "needs a context with data (no_alloc is set): use tfu_new_tensor_ext and tfu_fill_causal_mask", NULL, NULL);
        return NULL;
    }
    if (n_q > n_kv) { tfu_x_err(ctx, TFU_ERR_INVALID_ARG, NULL, "causal_mask", "n_q must be <= n_kv", NULL, NULL); return NULL; }
    t = tfu_new_tensor_2d(ctx, TFU_F32, n_kv, n_q);
    if (!t) return NULL;
    tfu_fill_causal_mask(t, n_kv - n_q);
    return tfu_set_name(t, "causal_mask");
}

TFU_API tfu_result tfu_fill_causal_mask(tfu_tensor *mask, int64_t n_past) {
    int64_t i0, i1, i2, i3;
    if (!mask || !mask->data) return TFU_ERR_NULL_ARG;
    if (mask->type != TFU_F32) return TFU_ERR_TYPE;
    for (i3 = 0; i3 < mask->ne[3]; i3++)
        for (i2 = 0; i2 < mask->ne[2]; i2++)
            for (i1 = 0; i1 < mask->ne[1]; i1++)
                for (i0 = 0; i0 < mask->ne[0]; i0++) {
                    float v = i0 <= n_past + i1 ? 0.0f : -INFINITY;
                    memcpy((char *)mask->data + tfu_x_offs(mask, i0, i1, i2, i3), &v, 4);
                }
    return TFU_OK;
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
    if (!(tfu_x_is_float(a->type) || tfu_x_is_quant(a->type)) || b->type != TFU_F32) {
        tfu_x_err(ctx, TFU_ERR_TYPE, a, "MUL_MAT", "a must be f32, f16, bf16, q8_0 or q4_0 and b f32", NULL, NULL); return NULL;
    }
    if (tfu_x_is_quant(a->type) && (a->op != TFU_OP_NONE || a->ne[0] % TFU_X_QK || !tfu_is_contiguous(a))) {
        tfu_x_err(ctx, TFU_ERR_INVALID_ARG, a, "MUL_MAT", "a Q8_0/Q4_0 a must be a contiguous leaf of whole blocks", NULL, NULL); return NULL;
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
    if (!(tfu_x_is_float(a->type) || tfu_x_is_quant(a->type)) || idx->type != TFU_I32) {
        tfu_x_err(ctx, TFU_ERR_TYPE, a, "GET_ROWS", "a must be float or quantized and idx i32", NULL, NULL); return NULL;
    }
    if (tfu_x_is_quant(a->type) && (a->op != TFU_OP_NONE || a->ne[0] % TFU_X_QK || !tfu_is_contiguous(a))) {
        tfu_x_err(ctx, TFU_ERR_INVALID_ARG, a, "GET_ROWS", "a Q8_0/Q4_0 table must be a contiguous leaf of whole blocks", NULL, NULL); return NULL;
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
    if (pos->ne[0] != a->ne[2] || tfu_nelements(pos) != pos->ne[0]) {   /* read as pos[i * nb0] */
        tfu_x_err(ctx, TFU_ERR_SHAPE, a, "ROPE", "pos must be an i32 vector (dims 1..3 of size 1), one entry per token (a->ne2):", a, pos); return NULL;
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

/* views of blocks would split them: a quantized tensor is refused by every
   view builder (1: refused, error set) */
static int tfu_x_no_quant_view(tfu_context *ctx, const tfu_tensor *a, const char *op) {
    if (!tfu_x_is_quant(a->type)) return 0;
    tfu_x_err(ctx, TFU_ERR_TYPE, a, op, "a Q8_0/Q4_0 tensor cannot be viewed, reshaped or permuted (only mul_mat's a and get_rows read it)", NULL, NULL);
    return 1;
}

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
    if (tfu_x_no_quant_view(ctx, a, "VIEW")) return NULL;
    r = tfu_x_shape(a->type, n_dims, ne, ne4, nb4, &bytes);
    if (r != TFU_OK) { tfu_x_err(ctx, r, a, "VIEW", "bad view shape", NULL, NULL); return NULL; }
    if (nb) for (i = 1; i < n_dims; i++) nb4[i] = nb[i - 1];
    for (i = 1; i < n_dims; i++) {
        if (nb4[i] % tfu_type_size(a->type)) {
            tfu_x_err(ctx, TFU_ERR_INVALID_ARG, a, "VIEW", "a stride is not a multiple of the element size", NULL, NULL);
            return NULL;
        }
    }
    if (offset % tfu_type_size(a->type)) {
        tfu_x_err(ctx, TFU_ERR_INVALID_ARG, a, "VIEW", "the offset is not a multiple of the element size", NULL, NULL);
        return NULL;
    }
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
    if (tfu_x_no_quant_view(ctx, a, "RESHAPE")) return NULL;
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
    if (tfu_x_no_quant_view(ctx, a, "PERMUTE")) return NULL;
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

/* Do the elements of t occupy distinct bytes? Dimensions by stride, each
   stride at least the extent of the smaller ones (a sufficient test). */
static int tfu_x_elements_disjoint(const tfu_tensor *t) {
    int order[TFU_MAX_DIMS], n = 0, i, j;
    size_t extent = tfu_type_size(t->type);
    for (i = 0; i < TFU_MAX_DIMS; i++) {
        if (t->ne[i] == 1) continue;
        for (j = n++; j > 0 && t->nb[order[j - 1]] > t->nb[i]; j--) order[j] = order[j - 1];
        order[j] = i;
    }
    for (i = 0; i < n; i++) {
        int d = order[i];
        if (t->nb[d] < extent) return 0;
        extent += (size_t)(t->ne[d] - 1) * t->nb[d];
    }
    return 1;
}

/* byte range [*lo, *hi) of t inside its memory root */
static void tfu_x_range(const tfu_tensor *t, size_t *lo, size_t *hi) {
    *lo = t->view_src ? t->view_offs : 0;
    *hi = *lo + tfu_nbytes(t);
}

/* What an op that writes into dst (cpy, set_rows) checks of it: a leaf or
   a view of one, elements that do not overlap each other; a source *src
   overlapping dst's bytes is made contiguous first, so that it is read
   whole before the write (program order). 0 on error (reported). */
static int tfu_x_dst_check(tfu_context *ctx, const char *op, tfu_tensor **src, tfu_tensor *dst) {
    size_t slo, shi, dlo, dhi;
    if (tfu_x_root(dst)->op != TFU_OP_NONE) {
        tfu_x_err(ctx, TFU_ERR_INVALID_ARG, dst, op, "dst must be a leaf tensor or a view of one", NULL, NULL);
        return 0;
    }
    if (!tfu_x_elements_disjoint(dst)) {
        tfu_x_err(ctx, TFU_ERR_INVALID_ARG, dst, op, "dst elements overlap each other (a zero or too small stride)", NULL, NULL);
        return 0;
    }
    tfu_x_range(*src, &slo, &shi);
    tfu_x_range(dst, &dlo, &dhi);
    if (tfu_x_root(*src) == tfu_x_root(dst) && slo < dhi && dlo < shi) {
        *src = tfu_cont(ctx, *src);
        if (!*src) return 0;
    }
    return 1;
}

/* cpy: the source is read as a whole before the destination is written
   (program order); when both lie in one tensor's overlapping bytes, the
   source goes through a contiguous copy first, so every executor sees the
   same answer. */
TFU_API tfu_tensor *tfu_cpy(tfu_context *ctx, tfu_tensor *a, tfu_tensor *dst) {
    tfu_tensor *t;
    if (tfu_x_null(ctx, "CPY", a, dst, 1)) return NULL;
    if (!tfu_x_is_float(a->type) || !tfu_x_is_float(dst->type)) { tfu_x_err(ctx, TFU_ERR_TYPE, a, "CPY", "operands must be float", NULL, NULL); return NULL; }
    if (!tfu_same_shape(a, dst)) { tfu_x_err(ctx, TFU_ERR_SHAPE, a, "CPY", "shapes differ:", a, dst); return NULL; }
    if (!tfu_x_dst_check(ctx, "CPY", &a, dst)) return NULL;
    t = tfu_x_new(ctx, dst->type, 4, dst->ne, 0, "CPY");
    if (!t) return NULL;
    memcpy(t->nb, dst->nb, sizeof t->nb);
    t->n_dims = dst->n_dims;
    t->op = TFU_OP_CPY; t->src[0] = a; t->src[1] = dst;
    tfu_x_alias(t, dst, 0);
    return t;
}

/* the operand an op writes into (its dst, not read): 1 for a copy, 2 for
   set_rows, -1 for an op that writes only its own value */
static int tfu_x_dst_operand(const tfu_tensor *t) {
    if (t->op == TFU_OP_CPY) return 1;
    if (t->op == TFU_OP_SET_ROWS) return 2;
    return -1;
}

/* set_rows: the operands as tfu_cpy takes them (dst a leaf or a view of
   one, src read whole before the write); sources src, idx, dst */
TFU_API tfu_tensor *tfu_set_rows(tfu_context *ctx, tfu_tensor *dst, tfu_tensor *src, tfu_tensor *idx) {
    tfu_tensor *t;
    if (tfu_x_null(ctx, "SET_ROWS", dst, src, 1)) return NULL;
    if (tfu_x_null(ctx, "SET_ROWS", idx, NULL, 0)) return NULL;
    if (!tfu_x_is_float(src->type) || !tfu_x_is_float(dst->type) || idx->type != TFU_I32) {
        tfu_x_err(ctx, TFU_ERR_TYPE, dst, "SET_ROWS", "dst and src must be float and idx i32", NULL, NULL);
        return NULL;
    }
    if (src->ne[0] != dst->ne[0] || src->ne[2] != dst->ne[2] || src->ne[3] != dst->ne[3]) {
        tfu_x_err(ctx, TFU_ERR_SHAPE, dst, "SET_ROWS", "dst and src must agree in dims 0, 2 and 3:", dst, src);
        return NULL;
    }
    if (idx->ne[0] != src->ne[1] || src->ne[2] % idx->ne[1] || src->ne[3] % idx->ne[2] || idx->ne[3] != 1) {
        tfu_x_err(ctx, TFU_ERR_SHAPE, idx, "SET_ROWS", "idx must be n x (divisor of ne2) x (divisor of ne3), n = src->ne1:", idx, src);
        return NULL;
    }
    if (!tfu_x_dst_check(ctx, "SET_ROWS", &src, dst)) return NULL;
    t = tfu_x_new(ctx, dst->type, 4, dst->ne, 0, "SET_ROWS");
    if (!t) return NULL;
    memcpy(t->nb, dst->nb, sizeof t->nb);
    t->n_dims = dst->n_dims;
    t->op = TFU_OP_SET_ROWS;
    t->src[0] = src;
    t->src[1] = idx;
    t->src[2] = dst;
    tfu_x_alias(t, dst, 0);
    return t;
}

/* >>graph ================================================================ */

struct tfu_graph {
    tfu_context  *ctx;
    int           max, n_all, n_nodes, n_leafs;
    uint32_t      gen;      /* bumped by every expand: plans compare it    */
    tfu_tensor  **all;      /* every tensor, in creation (program) order   */
    int32_t      *uses;     /* use count per entry of all[]                */
    int32_t      *srcs;     /* per entry: TFU_MAX_SRC operand indices, -1  */
    tfu_tensor  **nodes, **leafs;
    tfu_tensor  **work;     /* expand: the search stack, then sort space   */
    unsigned char *work_s;  /* expand: next operand to visit per stack entry */
    int           hcap;     /* open-addressing map tensor -> index in all[] */
    tfu_tensor  **hkey;
    int32_t      *hval;
};

static size_t tfu_x_hash_ptr(const void *p) {
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)x;
}

static size_t tfu_x_graph_slot(const tfu_graph *g, const tfu_tensor *t) {
    size_t i = tfu_x_hash_ptr(t) & (size_t)(g->hcap - 1);
    while (g->hkey[i] && g->hkey[i] != t) i = (i + 1) & (size_t)(g->hcap - 1);
    return i;
}

static int tfu_x_graph_find(const tfu_graph *g, const tfu_tensor *t) {
    size_t i = tfu_x_graph_slot(g, t);
    return g->hkey[i] ? g->hval[i] : -1;
}

TFU_API tfu_graph *tfu_graph_new(tfu_context *ctx, int max_nodes) {
    tfu_graph *g;
    int cap = 16;
    size_t m;
    if (!ctx) return NULL;
    if (max_nodes <= 0 || max_nodes > (1 << 26)) {
        tfu_x_err(ctx, TFU_ERR_INVALID_ARG, NULL, "graph_new", "max_nodes must be 1..2^26", NULL, NULL);
        return NULL;
    }
    while (cap < 2 * max_nodes) cap *= 2;
    m = (size_t)max_nodes;
    g = (tfu_graph *)tfu_x_ctx_alloc(ctx, sizeof *g, "graph_new");
    if (!g) return NULL;
    memset(g, 0, sizeof *g);
    g->ctx = ctx;
    g->max = max_nodes;
    g->hcap = cap;
    g->all    = (tfu_tensor **)tfu_x_ctx_alloc(ctx, m * sizeof(void *), "graph_new");
    g->nodes  = (tfu_tensor **)tfu_x_ctx_alloc(ctx, m * sizeof(void *), "graph_new");
    g->leafs  = (tfu_tensor **)tfu_x_ctx_alloc(ctx, m * sizeof(void *), "graph_new");
    g->work   = (tfu_tensor **)tfu_x_ctx_alloc(ctx, m * sizeof(void *), "graph_new");
    g->work_s = (unsigned char *)tfu_x_ctx_alloc(ctx, m, "graph_new");
    g->uses   = (int32_t *)tfu_x_ctx_alloc(ctx, m * sizeof(int32_t), "graph_new");
    g->srcs   = (int32_t *)tfu_x_ctx_alloc(ctx, m * TFU_MAX_SRC * sizeof(int32_t), "graph_new");
    g->hkey   = (tfu_tensor **)tfu_x_ctx_alloc(ctx, (size_t)cap * sizeof(void *), "graph_new");
    g->hval   = (int32_t *)tfu_x_ctx_alloc(ctx, (size_t)cap * sizeof(int32_t), "graph_new");
    if (!g->all || !g->nodes || !g->leafs || !g->work || !g->work_s || !g->uses || !g->srcs || !g->hkey || !g->hval) return NULL;
    memset(g->hkey, 0, (size_t)cap * sizeof(void *));
    return g;
}

/* may the graph hold t? Its own context's tensors, and leaves and views
   of other contexts (a computed value of another context would take its
   reference memory from this one, which may be reset under it) */
static int tfu_x_graph_may_hold(const tfu_graph *g, const tfu_tensor *t) {
    const unsigned char *lo = g->ctx->mem, *hi = g->ctx->mem + g->ctx->size;
    if ((const unsigned char *)t >= lo && (const unsigned char *)t < hi) return 1;
    return t->op == TFU_OP_NONE || t->op == TFU_OP_VIEW;
}

/* Depth-first from result with an explicit stack (a chain of any length
   fits): every tensor not yet in the graph is appended to all[] after its
   operands. Refuses computed tensors of another context (TFU_ERR_GRAPH)
   and more than max tensors (TFU_ERR_NO_MEMORY); the caller rolls back. */
static tfu_result tfu_x_graph_visit(tfu_graph *g, tfu_tensor *result, tfu_tensor **bad) {
    int sp = 0, pushed = g->n_all;
    size_t h = tfu_x_graph_slot(g, result);
    if (g->hkey[h]) return TFU_OK;
    g->hkey[h] = result;
    g->hval[h] = -1;   /* on the stack */
    g->work[sp] = result;
    g->work_s[sp] = 0;
    sp++;
    pushed++;
    *bad = result;
    if (!tfu_x_graph_may_hold(g, result)) return TFU_ERR_GRAPH;
    if (pushed > g->max) return TFU_ERR_NO_MEMORY;
    while (sp) {
        tfu_tensor *t = g->work[sp - 1];
        int s = g->work_s[sp - 1];
        tfu_tensor *q;
        if (s == TFU_MAX_SRC) {   /* operands done: t takes its place */
            g->hval[tfu_x_graph_slot(g, t)] = g->n_all;
            g->all[g->n_all++] = t;
            sp--;
            continue;
        }
        g->work_s[sp - 1] = (unsigned char)(s + 1);
        q = t->src[s];
        if (!q) continue;
        h = tfu_x_graph_slot(g, q);
        if (g->hkey[h]) continue;
        *bad = q;
        if (!tfu_x_graph_may_hold(g, q)) return TFU_ERR_GRAPH;
        if (++pushed > g->max) return TFU_ERR_NO_MEMORY;
        g->hkey[h] = q;
        g->hval[h] = -1;
        g->work[sp] = q;
        g->work_s[sp] = 0;
        sp++;
    }
    return TFU_OK;
}

/* Stable bottom-up merge sort of n elements of sz bytes (a, with room for
   n more in tmp) by before(x, y, ctx): "x goes first". The one sort of the
   library: the graph's new entries by creation index, the arena's values
   by birth stage and size. */
typedef int (*tfu_x_before_fn)(const void *x, const void *y, const void *ctx);

static void tfu_x_msort(void *a, void *tmp, int n, size_t sz, tfu_x_before_fn before, const void *ctx) {
    unsigned char *src = (unsigned char *)a, *dst = (unsigned char *)tmp, *swap;
    int w, i;
    for (i = 1; i < n && !before((char *)a + (size_t)i * sz, (char *)a + (size_t)(i - 1) * sz, ctx); i++) continue;
    if (i >= n) return;   /* already in order: the common case for a graph search */
    for (w = 1; w < n; w *= 2) {
        for (i = 0; i < n; i += 2 * w) {
            int l = i, m = i + w < n ? i + w : n, r = i + 2 * w < n ? i + 2 * w : n, j = l, k = m, o = l;
            while (j < m && k < r) {
                int take_k = before(src + (size_t)k * sz, src + (size_t)j * sz, ctx);
                memcpy(dst + (size_t)(o++) * sz, src + (size_t)(take_k ? k++ : j++) * sz, sz);
            }
            if (j < m) memcpy(dst + (size_t)o * sz, src + (size_t)j * sz, (size_t)(m - j) * sz);
            if (k < r) memcpy(dst + (size_t)o * sz, src + (size_t)k * sz, (size_t)(r - k) * sz);
        }
        swap = src;
        src = dst;
        dst = swap;
    }
    if (src != (unsigned char *)a) memcpy(a, src, (size_t)n * sz);
}

static int tfu_x_created_before(const void *x, const void *y, const void *ctx) {
    const tfu_tensor *tx, *ty;
    (void)ctx;
    memcpy(&tx, x, sizeof tx);
    memcpy(&ty, y, sizeof ty);
    return tx->index < ty->index;
}

/* entries from `from` on: their map slot, operand indices, the uses they
   add and their place in nodes[] or leafs[] */
static void tfu_x_graph_index(tfu_graph *g, int from) {
    int i, s;
    for (i = from; i < g->n_all; i++) {
        tfu_tensor *t = g->all[i];
        g->hval[tfu_x_graph_slot(g, t)] = i;
        g->uses[i] = 0;
    }
    for (i = from; i < g->n_all; i++) {
        tfu_tensor *t = g->all[i];
        for (s = 0; s < TFU_MAX_SRC; s++) {
            int q = t->src[s] ? tfu_x_graph_find(g, t->src[s]) : -1;
            g->srcs[(size_t)i * TFU_MAX_SRC + s] = q;
            if (q >= 0) g->uses[q]++;
        }
        if (t->op == TFU_OP_NONE) g->leafs[g->n_leafs++] = t;
        else g->nodes[g->n_nodes++] = t;
    }
}

/* undoes a failed expand: the map holds only the first n_all entries again */
static void tfu_x_graph_rollback(tfu_graph *g, int n_all) {
    int i;
    g->n_all = n_all;
    memset(g->hkey, 0, (size_t)g->hcap * sizeof(void *));
    for (i = 0; i < n_all; i++) {
        size_t h = tfu_x_graph_slot(g, g->all[i]);
        g->hkey[h] = g->all[i];
        g->hval[h] = i;
    }
}

/* Adds result and everything it depends on. all[] stays in creation order,
   which is program order (DESIGN.md: order of memory effects) and a
   topological order: new tensors created after every tensor already in the
   graph are appended; otherwise the graph is merged and re-indexed. */
/* expand without recording an error: TFU_ERR_GRAPH for a computed tensor
   of another context, TFU_ERR_NO_MEMORY for more than max_nodes (the
   graph then as it was; *bad the tensor met) */
static tfu_result tfu_x_graph_expand(tfu_graph *g, tfu_tensor *result, tfu_tensor **bad) {
    int n0 = g->n_all, n_new;
    tfu_result r = tfu_x_graph_visit(g, result, bad);
    if (r != TFU_OK) {
        tfu_x_graph_rollback(g, n0);
        return r;
    }
    n_new = g->n_all - n0;
    tfu_x_msort(g->all + n0, g->work, n_new, sizeof(void *), tfu_x_created_before, NULL);
    if (n_new && n0 && g->all[n0]->index < g->all[n0 - 1]->index) {
        /* older tensors joined late: merge the two sorted runs, index all */
        int i = 0, j = n0, o = 0;
        while (i < n0 && j < g->n_all) g->work[o++] = g->all[i]->index <= g->all[j]->index ? g->all[i++] : g->all[j++];
        while (i < n0) g->work[o++] = g->all[i++];
        while (j < g->n_all) g->work[o++] = g->all[j++];
        memcpy(g->all, g->work, (size_t)g->n_all * sizeof(void *));
        g->n_nodes = 0;
        g->n_leafs = 0;
        n0 = 0;
    }
    tfu_x_graph_index(g, n0);
    if (n_new) g->gen++;
    result->flags |= TFU_FLAG_OUTPUT;
    return TFU_OK;
}

static void tfu_x_graph_expand_err(tfu_context *ctx, tfu_result r, const tfu_tensor *bad) {
    if (r == TFU_ERR_GRAPH)
        tfu_x_err(ctx, r, bad, "graph_build",
                  "a computed tensor of another context (only leaves and views may come from other contexts: build the operations in the graph's context)",
                  NULL, NULL);
    else
        tfu_x_err(ctx, TFU_ERR_GRAPH, bad, "graph_build", "more tensors than the graph's max_nodes (tensors of other contexts count too)", NULL, NULL);
}

TFU_API tfu_result tfu_graph_build_expand(tfu_graph *g, tfu_tensor *result) {
    tfu_tensor *bad = NULL;
    tfu_result r;
    if (!g) return TFU_ERR_NULL_ARG;
    if (!result) {
        tfu_x_err(g->ctx, TFU_ERR_NULL_ARG, NULL, "graph_build", "result is NULL (an earlier builder failed?)", NULL, NULL);
        return TFU_ERR_NULL_ARG;
    }
    r = tfu_x_graph_expand(g, result, &bad);
    if (r == TFU_OK) return TFU_OK;
    tfu_x_graph_expand_err(g->ctx, r, bad);
    return TFU_ERR_GRAPH;
}

/* Sized for every tensor of the context; tensors of other contexts may
   need more: then the context memory of the attempt is given back and a
   graph twice the size tried (each attempt linear, the sum too). */
TFU_API tfu_graph *tfu_graph_build(tfu_context *ctx, tfu_tensor *result) {
    tfu_graph *g;
    tfu_tensor *bad = NULL;
    tfu_result r;
    int max;
    if (!ctx) return NULL;
    if (!result) { tfu_x_err(ctx, TFU_ERR_NULL_ARG, NULL, "graph_build", "result is NULL (an earlier builder failed?)", NULL, NULL); return NULL; }
    max = ctx->n_tensors > 0 ? ctx->n_tensors : 1;
    for (;;) {
        size_t used = ctx->used;
        g = tfu_graph_new(ctx, max);
        if (!g) return NULL;
        r = tfu_x_graph_expand(g, result, &bad);
        if (r == TFU_OK) return g;
        ctx->used = used;
        if (r != TFU_ERR_NO_MEMORY || max > (1 << 25)) break;
        max *= 2;
    }
    tfu_x_graph_expand_err(ctx, r, bad);
    return NULL;
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

/* 64-bit words mixed one at a time (a multiply-xorshift per word): the
   structural hash is computed at every compile and cache lookup */
static uint64_t tfu_x_mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 32);
}

TFU_API uint64_t tfu_graph_hash(const tfu_graph *g) {
    uint64_t h = 0xcbf29ce484222325ull;
    int i, k;
    if (!g) return 0;
    h = tfu_x_mix(h, (uint64_t)g->n_all);
    for (i = 0; i < g->n_all; i++) {
        const tfu_tensor *t = g->all[i];
        int64_t view = t->view_src ? tfu_x_graph_find(g, t->view_src) : -1;
        const int32_t *srcs = g->srcs + (size_t)i * TFU_MAX_SRC;
        h = tfu_x_mix(h, (uint64_t)t->op | (uint64_t)t->type << 8 | (uint64_t)t->n_dims << 16 | (uint64_t)t->flags << 32);
        h = tfu_x_mix(h, (uint64_t)(view + 2) | (uint64_t)(uint32_t)g->uses[i] << 32);   /* view < 0: aliases nothing */
        for (k = 0; k < TFU_MAX_SRC; k++) h = tfu_x_mix(h, (uint64_t)(int64_t)srcs[k]);
        for (k = 0; k < TFU_MAX_DIMS; k++) h = tfu_x_mix(h, (uint64_t)t->ne[k]);
        for (k = 0; k < TFU_MAX_DIMS; k++) h = tfu_x_mix(h, (uint64_t)t->nb[k]);
        h = tfu_x_mix(h, (uint64_t)t->view_offs);
        for (k = 0; k < TFU_MAX_OP_PARAMS; k++) {
            uint32_t f;
            memcpy(&f, &t->op_params_f[k], 4);
            h = tfu_x_mix(h, (uint64_t)(uint32_t)t->op_params_i[k] | (uint64_t)f << 32);
        }
    }
    return h;
}

/* >>ref ================================================================== */

/* 0.5 x (1 + tanh z) as x sigmoid(2z), 0.5 x (1 + erf u) as 0.5 x erfc(-u):
   the same values without the cancellation for negative x */
static double tfu_x_gelu_d(double x) { return x / (1.0 + exp(-2.0 * 0.7978845608028654 * (x + 0.044715 * x * x * x))); }
static double tfu_x_gelu_erf_d(double x) { return 0.5 * x * erfc(x * -0.7071067811865476); }
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
    case TFU_OP_RELU: return x < 0 ? 0 : x;   /* NaN stays NaN */
    case TFU_OP_GELU: return tfu_x_gelu_d(x);
    case TFU_OP_GELU_ERF: return tfu_x_gelu_erf_d(x);
    case TFU_OP_SILU: return x * tfu_x_sigmoid_d(x);
    case TFU_OP_CONT: case TFU_OP_CPY: return x;
    default: return 0;
    }
}

static double tfu_x_glu_d(int kind, double g, double v) {
    switch (kind) {
    case TFU_GLU_REGLU: return (g < 0 ? 0 : g) * v;   /* NaN stays NaN */
    case TFU_GLU_GEGLU: return tfu_x_gelu_d(g) * v;
    case TFU_GLU_GEGLU_ERF: return tfu_x_gelu_erf_d(g) * v;
    default: return g * tfu_x_sigmoid_d(g) * v;
    }
}

#define TFU_X_AT(t, i0, i1, i2, i3) ((double)tfu_x_ld((t)->type, (const char *)(t)->data + tfu_x_offs((t), (i0), (i1), (i2), (i3))))
#define TFU_X_FOR4(t) \
    for (i3 = 0; i3 < (t)->ne[3]; i3++) for (i2 = 0; i2 < (t)->ne[2]; i2++) \
    for (i1 = 0; i1 < (t)->ne[1]; i1++) for (i0 = 0; i0 < (t)->ne[0]; i0++)

/* checks get_rows and set_rows indices held in a leaf or a view of one
   before anything is written (computed indices are clamped by the
   kernels): each in [0, rows of the table or dst); set_rows ones distinct
   within a row of idx, so no two work items write one row */
static tfu_result tfu_x_check_rows(tfu_context *ctx, const tfu_tensor *t) {
    const tfu_tensor *idx = t->src[1];
    const tfu_tensor *root = idx->view_src ? idx->view_src : idx;
    const char *base;
    int set = t->op == TFU_OP_SET_ROWS;
    int64_t i0, i1, i2, i3, j, n = set ? t->ne[1] : t->src[0]->ne[1];
    if (root->op != TFU_OP_NONE || !root->data) return TFU_OK;
    base = (const char *)root->data + (idx->view_src ? idx->view_offs : 0);
    TFU_X_FOR4(idx) {
        int32_t r;
        memcpy(&r, base + tfu_x_offs(idx, i0, i1, i2, i3), 4);
        if (r < 0 || r >= n) {
            tfu_x_err(ctx, TFU_ERR_INVALID_ARG, t, set ? "SET_ROWS" : "GET_ROWS", "row index out of range", NULL, NULL);
            return TFU_ERR_INVALID_ARG;
        }
        for (j = 0; set && j < i0; j++) {
            int32_t q;
            memcpy(&q, base + tfu_x_offs(idx, j, i1, i2, i3), 4);
            if (q == r) {
                tfu_x_err(ctx, TFU_ERR_INVALID_ARG, t, "SET_ROWS", "two equal row indices in one row of idx", NULL, NULL);
                return TFU_ERR_INVALID_ARG;
            }
        }
    }
    return TFU_OK;
}

/* does t read indices that tfu_x_check_rows checks? */
static int tfu_x_has_row_indices(const tfu_tensor *t) { return t->op == TFU_OP_GET_ROWS || t->op == TFU_OP_SET_ROWS; }

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
            int64_t n = a->ne[0], best = 0, first_nan = -1;
            double s = 0, s2 = 0, mx = -INFINITY, mean, scale;
            for (i0 = 0; i0 < n; i0++) {
                double x = TFU_X_AT(a, i0, i1, i2, i3);
                if (t->op == TFU_OP_SOFT_MAX) {
                    x *= t->op_params_f[0];
                    if (b) x += TFU_X_AT(b, i0, i1, i2 % b->ne[2], i3 % b->ne[3]);
                }
                if (x > mx) { mx = x; best = i0; }
                if (x != x && first_nan < 0) first_nan = i0;
                s += x; s2 += x * x;
            }
            mean = s / (double)n;
            if (t->op == TFU_OP_SUM_ROWS || t->op == TFU_OP_MEAN) { tfu_set_f32(t, 0, i1, i2, i3, (float)(t->op == TFU_OP_MEAN ? mean : s)); continue; }
            if (t->op == TFU_OP_ARGMAX) {   /* the first NaN, else the first maximum (tfu_argmax) */
                int32_t r = (int32_t)(first_nan >= 0 ? first_nan : best);
                memcpy((char *)t->data + tfu_x_offs(t, 0, i1, i2, i3), &r, 4);
                continue;
            }
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
            for (k = 0; k < a->ne[0]; k++) s += (double)tfu_x_get(a, k, i0, i2 / r2, i3 / r3) * TFU_X_AT(b, k, i1, i2, i3);
            tfu_set_f32(t, i0, i1, i2, i3, (float)s);
        }
    } break;
    case TFU_OP_GET_ROWS:
        TFU_X_FOR4(t) tfu_set_f32(t, i0, i1, i2, i3, tfu_x_get(a, i0, tfu_x_row_index(b, i1, i2, i3, a->ne[1]), 0, 0));
        break;
    case TFU_OP_SET_ROWS:   /* t aliases dst: row idx[i1] of dst takes row i1 of a */
        TFU_X_FOR4(a) {
            int32_t r = tfu_x_row_index(b, i1, i2 % b->ne[1], i3 % b->ne[2], t->ne[1]);
            tfu_set_f32(t, i0, r, i2, i3, (float)TFU_X_AT(a, i0, i1, i2, i3));
        }
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
        if (tfu_x_has_row_indices(g->nodes[i]) && tfu_x_check_rows(g->ctx, g->nodes[i]) != TFU_OK) return TFU_ERR_INVALID_ARG;
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

/* >>plan =================================================================
   The shared passes, run once per compile and the same for every backend,
   each reading only what the one before produced: memory-effect edges ->
   fuse (the one table, the backend's capabilities) -> materialise ->
   schedule (stages) -> lifetimes -> offsets -> programs (the groups as the
   view shows them). Then the plan view, stale checks, queries and report.
   A backend lowers the programs (>>cpu for the CPU); nothing it decides
   comes back here. */

/* operation classes, the rows and columns of the fusion table */
enum { TFU_X_C_LEAF, TFU_X_C_VIEW, TFU_X_C_ELT, TFU_X_C_ROW, TFU_X_C_MM, TFU_X_C_OTHER, TFU_X_C_COUNT };

static int tfu_x_class(const tfu_tensor *t) {
    static const unsigned char fusion_class[] = {
        TFU_X_C_LEAF, TFU_X_C_VIEW, TFU_X_C_ELT, TFU_X_C_ELT, TFU_X_C_ELT, TFU_X_C_ROW, TFU_X_C_MM, TFU_X_C_OTHER };
    return fusion_class[tfu_x_op_class[t->op]];
}

/* THE fusion table: may a consumer of class [row] take a producer of class
   [column] into its group (over an edge that reads the producer element for
   element, same shape)? Every backend uses this table; a backend only
   removes group kinds it cannot run (tfu_backend_caps.fuse_kinds). Row
   groups run a whole row at a time, matmul groups a tile, so a group never
   holds both. */
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

/* the two edges inside an attention group (tfu_x_attn_match): the scores
   into the softmax, the probabilities into the weighted values (as b) */
static int tfu_x_attn_edge(const tfu_tensor *t, int s) {
    const tfu_tensor *p = t->src[s];
    if (!p) return 0;
    if (t->op == TFU_OP_SOFT_MAX && s == 0) return p->op == TFU_OP_MUL_MAT;
    return t->op == TFU_OP_MUL_MAT && s == 1 && p->op == TFU_OP_SOFT_MAX;
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

/* What the fusion pass is given: the backend's capabilities (>>seam) and
   whether to fuse at all. */
typedef struct tfu_x_caps {
    int              fuse;      /* 0: one group per operation (no_fusion) */
    tfu_backend_caps b;         /* the backend's                          */
} tfu_x_caps;

/* The shared plan: what the passes decided, bound to a graph, and the
   program of every group as the view shows it (>>seam). A backend's own
   state hangs off it (cpu: the CPU executor's, >>cpu); nothing a backend
   decides goes back into the shared part. */
struct tfu_plan {
    tfu_allocator   al;
    tfu_plan_options opt;
    tfu_context    *ctx;
    tfu_graph      *graph;
    uint64_t        hash;
    uint32_t        ctx_gen, graph_gen; /* generations seen at compile or rebind */
    uint32_t       *flags;    /* per tensor: flags at compile or rebind    */
    tfu_plan_view   view;     /* the backend-neutral program (>>seam)      */
    struct tfu_x_caps caps;   /* what the fusion pass was given            */
    int             n_all;
    tfu_tensor    **t;        /* the bound graph's all[]                   */
    int32_t        *group;    /* per tensor: its group, -1 for leaf/view   */
    int32_t        *ins_of;   /* per tensor: its instruction index or -1   */
    unsigned char  *mat;      /* per tensor: materialised                  */
    int64_t        *offs;     /* per tensor: arena offset or -1            */
    int32_t        *life0, *life1;
    int32_t        *view_stage; /* per tensor: a flagged view, the stage of its root; else -1 */
    int             n_groups, n_stages;
    tfu_pv_group   *groups;   /* in execution order (by stage)             */
    int32_t        *stage_first; /* groups of stage s: [stage_first[s], stage_first[s+1]) */
    tfu_pv_instr   *ins;      /* the groups' programs                      */
    tfu_pv_operand *ext;      /* the groups' operands                      */
    int             n_ins, n_ext;
    size_t          arena_bytes, arena_unfused;
    unsigned char  *arena;
    void           *arena_raw;      /* as allocated, when the plan owns it */
    int             arena_owned;
    tfu_result      err;
    tfu_plan_stats  stats;
    tfu_x_block    *blocks;
    struct tfu_x_cpu *cpu;    /* the CPU executor's state (>>cpu)          */
    int             shared;   /* compiled for another backend: not lowered */
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

/* --- memory effects -------------------------------------------------------
   Copies write into leaves (tfu_cpy, tfu_set_rows); other operations read
   leaves. Two accesses to overlapping bytes of one leaf, at least one of them a write,
   take effect in creation order (DESIGN.md, "program order"). This pass
   turns that rule into edges between nodes (earlier -> later), which join
   the data edges in the fusion legality test and in the scheduler; all[]
   is in creation order, so every edge points forward. Byte ranges are
   conservative (a strided view covers its whole span): an extra edge only
   orders more, it never reorders. */


typedef struct tfu_x_access { int32_t node, root, write; size_t lo, hi; } tfu_x_access;

typedef struct tfu_x_memdeps {
    int32_t *first;   /* per tensor: its predecessors are pred[first[i] .. first[i+1]) */
    int32_t *pred;
    size_t   n_edges;
} tfu_x_memdeps;

/* frees a pass's temporary (NULL: nothing), so every pass ends with one
   line per buffer whatever failed */
static void tfu_x_tmp_free(tfu_allocator *al, void *p) {
    if (p) al->free_fn(p, al->user);
}

/* the leaf whose bytes a read of q touches, or -1 for a computed value */
static int tfu_x_leaf_of(const tfu_graph *gr, const tfu_tensor *q) {
    const tfu_tensor *root = q->view_src ? q->view_src : q;
    return root->op == TFU_OP_NONE ? tfu_x_graph_find(gr, root) : -1;
}

static void tfu_x_memdeps_free(tfu_x_memdeps *M, tfu_allocator *al) {
    if (M->first) al->free_fn(M->first, al->user);
    if (M->pred) al->free_fn(M->pred, al->user);
    M->first = NULL;
    M->pred = NULL;
}

/* appends (from, to) to a growing edge list */
static int tfu_x_edge_push(tfu_allocator *al, int32_t **e, size_t *n, size_t *cap, int32_t from, int32_t to) {
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 256, bytes;
        int32_t *ne;
        if (!tfu_x_mul_ok(nc, 2 * sizeof(int32_t), &bytes)) return 0;
        ne = (int32_t *)al->alloc_fn(bytes, al->user);
        if (!ne) return 0;
        if (*e) {
            memcpy(ne, *e, *n * 2 * sizeof(int32_t));
            al->free_fn(*e, al->user);
        }
        *e = ne;
        *cap = nc;
    }
    (*e)[2 * *n] = from;
    (*e)[2 * *n + 1] = to;
    (*n)++;
    return 1;
}

/* Guarantees: for every pair of accesses to overlapping bytes of a leaf,
   one of them a copy's write, a path of edges from the earlier node to the
   later. Per leaf, accesses are kept in a live list in creation order; a
   write that covers an earlier access retires it (later accesses that
   conflict with the retired one conflict with the write, which follows it). */
static int tfu_x_mem_edges(const tfu_graph *gr, tfu_allocator *al, tfu_x_memdeps *M) {
    int n = gr->n_all, i, s, ok = 0;
    size_t n_acc = 0, a, n_e = 0, cap_e = 0, e;
    int32_t *written = NULL, *root_first = NULL, *live = NULL, *mark = NULL, *edges = NULL;
    tfu_x_access *acc = NULL, *by_root = NULL;
    M->n_edges = 0;
    M->pred = NULL;
    M->first = (int32_t *)al->alloc_fn(sizeof(int32_t) * ((size_t)n + 2), al->user);
    written = (int32_t *)al->alloc_fn(sizeof(int32_t) * ((size_t)n + 2), al->user);
    if (!M->first || !written) goto done;
    for (i = 0; i <= n; i++) M->first[i] = 0;
    for (i = 0; i <= n; i++) written[i] = 0;
    for (i = 0; i < n; i++) {
        if (tfu_x_dst_operand(gr->all[i]) >= 0) {
            written[tfu_x_graph_find(gr, gr->all[i]->view_src)] = 1;
            n_acc++;
        }
    }
    if (!n_acc) {   /* nothing writes user memory: no edges */
        M->pred = (int32_t *)al->alloc_fn(sizeof(int32_t), al->user);
        ok = M->pred != NULL;
        goto done;
    }
    acc = (tfu_x_access *)al->alloc_fn(sizeof(tfu_x_access) * ((size_t)n * (TFU_MAX_SRC + 1) + 1), al->user);
    by_root = (tfu_x_access *)al->alloc_fn(sizeof(tfu_x_access) * ((size_t)n * (TFU_MAX_SRC + 1) + 1), al->user);
    root_first = (int32_t *)al->alloc_fn(sizeof(int32_t) * ((size_t)n + 2), al->user);
    live = (int32_t *)al->alloc_fn(sizeof(int32_t) * ((size_t)n * (TFU_MAX_SRC + 1) + 1), al->user);
    mark = (int32_t *)al->alloc_fn(sizeof(int32_t) * ((size_t)n + 1), al->user);
    if (!acc || !by_root || !root_first || !live || !mark) goto done;
    /* every access to a written leaf, in creation order; a node's reads before its write */
    n_acc = 0;
    for (i = 0; i < n; i++) {
        const tfu_tensor *t = gr->all[i];
        if (t->op == TFU_OP_NONE || t->op == TFU_OP_VIEW) continue;
        for (s = 0; s < TFU_MAX_SRC; s++) {
            const tfu_tensor *q = t->src[s];
            int r;
            if (!q || s == tfu_x_dst_operand(t)) continue;   /* a copy's dst operand is its write */
            r = tfu_x_leaf_of(gr, q);
            if (r < 0 || !written[r]) continue;
            acc[n_acc].node = i;
            acc[n_acc].root = r;
            acc[n_acc].write = 0;
            tfu_x_range(q, &acc[n_acc].lo, &acc[n_acc].hi);
            n_acc++;
        }
        if (tfu_x_dst_operand(t) >= 0) {   /* set_rows: all of dst (its rows are data) */
            acc[n_acc].node = i;
            acc[n_acc].root = tfu_x_graph_find(gr, t->view_src);
            acc[n_acc].write = 1;
            tfu_x_range(t, &acc[n_acc].lo, &acc[n_acc].hi);
            n_acc++;
        }
    }
    /* grouped by leaf, creation order kept (a stable counting sort) */
    for (i = 0; i <= n + 1; i++) root_first[i] = 0;
    for (a = 0; a < n_acc; a++) root_first[acc[a].root + 1]++;
    for (i = 0; i < n; i++) root_first[i + 1] += root_first[i];
    for (i = 0; i < n; i++) mark[i] = root_first[i];
    for (a = 0; a < n_acc; a++) by_root[mark[acc[a].root]++] = acc[a];
    for (i = 0; i < n; i++) mark[i] = -1;
    for (i = 0; i < n; i++) {
        int32_t b, n_live = 0, j;
        for (b = root_first[i]; b < root_first[i + 1]; b++) {
            const tfu_x_access *X = &by_root[b];
            for (j = 0; j < n_live; j++) {
                const tfu_x_access *A = &by_root[live[j]];
                if (A->node == X->node || !(A->write || X->write) || A->hi <= X->lo || X->hi <= A->lo) continue;
                if (mark[A->node] != X->node) {   /* one edge per pair of nodes */
                    if (!tfu_x_edge_push(al, &edges, &n_e, &cap_e, A->node, X->node)) goto done;
                    mark[A->node] = X->node;
                }
                if (X->write && X->lo <= A->lo && A->hi <= X->hi) {
                    live[j] = live[--n_live];
                    j--;
                }
            }
            live[n_live++] = b;
        }
    }
    /* predecessor lists per node */
    M->pred = (int32_t *)al->alloc_fn(sizeof(int32_t) * (n_e + 1), al->user);
    if (!M->pred) goto done;
    for (e = 0; e < n_e; e++) M->first[edges[2 * e + 1] + 1]++;
    for (i = 0; i < n; i++) M->first[i + 1] += M->first[i];
    for (i = 0; i < n; i++) mark[i] = M->first[i];
    for (e = 0; e < n_e; e++) M->pred[mark[edges[2 * e + 1]]++] = edges[2 * e];
    M->n_edges = n_e;
    ok = 1;
done:
    tfu_x_tmp_free(al, written);
    tfu_x_tmp_free(al, acc);
    tfu_x_tmp_free(al, by_root);
    tfu_x_tmp_free(al, root_first);
    tfu_x_tmp_free(al, live);
    tfu_x_tmp_free(al, mark);
    tfu_x_tmp_free(al, edges);
    if (!ok) tfu_x_memdeps_free(M, al);
    return ok;
}

/* --- fusion ---------------------------------------------------------------
   Nodes are visited in creation order, so every predecessor (data or
   memory) of a node is placed before it and none of its successors is.
   A node joins the group of a producer it may take in (the fusion table);
   a node with two such producers may merge their groups. Legal only if the
   group graph stays acyclic and no memory conflict falls inside a group. */

typedef struct tfu_x_fuse_state {
    int       n, stamp;
    int       cand_g, cand_h, cand_x; /* the candidate: groups g, h and node x */
    int32_t  *group;   /* per tensor: founding tensor of its group, -1  */
    int32_t  *next;    /* per tensor: next member of its group, -1      */
    int32_t  *last;    /* per group: its last member                    */
    int32_t  *size;    /* per group: members                            */
    int32_t  *n_mm;    /* per group: matrix products                    */
    int32_t  *seen;    /* per tensor: stamp of the last search          */
    int32_t  *gseen;   /* per group: stamp of the last search that entered it */
    int32_t  *stack;
    unsigned char *has; /* per group: bit 0 matmul, 1 row, 2 cpy         */
    /* levels: a group that depends on group G has a higher level than G,
       so an operand from a group of level <= G's cannot close a cycle and
       needs no search. Raised along consumer edges as groups grow. */
    int32_t  *lvl;     /* per group (founder)                           */
    int32_t  *e_head, *e_tail, *e_to, *e_next; /* consumer edges per group */
    int       n_e, lmin;
    int       budget;  /* nodes the current legality test may still visit */
    int       attn;    /* the candidate is an attention group: its two inner edges are legal */
    const tfu_x_memdeps *mem;
} tfu_x_fuse_state;

/* A legality test visits at most this many nodes; beyond, the candidate is
   treated as if it closed a cycle: the fusion is declined (never a wrong
   result), and compile time stays linear in the graph (a merge with a group
   far back in a deep graph would otherwise search everything between). */
#define TFU_X_FUSE_SEARCH 512

#define TFU_X_UNKNOWN ((size_t)-1)

static int tfu_x_in_u(const tfu_x_fuse_state *st, int v) {
    return v == st->cand_x || (st->group[v] >= 0 && (st->group[v] == st->cand_g || st->group[v] == st->cand_h));
}

static unsigned char tfu_x_has_bits(const tfu_tensor *t) {
    int c = tfu_x_class(t);
    return (unsigned char)((c == TFU_X_C_MM ? 1 : 0) | (c == TFU_X_C_ROW ? 2 : 0) | (tfu_x_dst_operand(t) >= 0 ? 4 : 0));
}

/* Would the candidate group depend on itself through something outside
   it? Searches backwards from q over data and memory edges; a group runs
   as a unit, so every member of a group met on the way counts. */
static int tfu_x_reaches(const tfu_graph *gr, tfu_x_fuse_state *st, int q) {
    const tfu_x_memdeps *M = st->mem;
    int sp = 0, s;
    if (st->seen[q] == st->stamp) return 0;
    st->seen[q] = st->stamp;
    st->stack[sp++] = q;
    while (sp) {
        int v = st->stack[--sp], m, gv = st->group[v];
        if (tfu_x_in_u(st, v)) return 1;
        if (gv >= 0 && st->lvl[gv] <= st->lmin) continue;   /* cannot depend on the candidate */
        if (gv >= 0) {   /* a group is entered once per search, through any member */
            if (st->gseen[gv] == st->stamp) continue;
            st->gseen[gv] = st->stamp;
        }
        for (m = gv >= 0 ? gv : v; m >= 0; m = gv >= 0 ? st->next[m] : -1) {
            const tfu_tensor *t = gr->all[m];
            int32_t e;
            if (--st->budget < 0) return 1;
            st->seen[m] = st->stamp;
            for (s = 0; s < TFU_MAX_SRC; s++) {
                int w;
                if (!t->src[s]) continue;
                w = gr->srcs[(size_t)m * TFU_MAX_SRC + s];
                if (st->seen[w] != st->stamp) {
                    st->seen[w] = st->stamp;
                    st->stack[sp++] = w;
                }
            }
            for (e = M->first[m]; e < M->first[m + 1]; e++) {
                int w = M->pred[e];
                if (st->seen[w] != st->stamp) {
                    st->seen[w] = st->stamp;
                    st->stack[sp++] = w;
                }
            }
        }
    }
    return 0;
}

/* lifts group g to at least level l, and its consumers above it */
static void tfu_x_raise(tfu_x_fuse_state *st, int g, int l) {
    int sp = 0;
    if (st->lvl[g] >= l) return;
    st->lvl[g] = l;
    st->stack[sp++] = g;
    while (sp) {
        int f = st->stack[--sp], e;
        for (e = st->e_head[f]; e >= 0; e = st->e_next[e]) {
            int d = st->group[st->e_to[e]];
            if (d == f || st->lvl[d] > st->lvl[f]) continue;
            st->lvl[d] = st->lvl[f] + 1;
            if (sp < 2 * st->n) st->stack[sp++] = d;
        }
    }
}

/* one consumer edge: producer group k -> node x of group g */
static void tfu_x_link_one(tfu_x_fuse_state *st, int k, int x, int *l) {
    if (st->lvl[k] + 1 > *l) *l = st->lvl[k] + 1;
    st->e_to[st->n_e] = x;
    st->e_next[st->n_e] = -1;
    if (st->e_tail[k] >= 0) st->e_next[st->e_tail[k]] = st->n_e;
    else st->e_head[k] = st->n_e;
    st->e_tail[k] = st->n_e++;
}

/* after x entered group g: g's level and the consumer edges into it */
static void tfu_x_link(const tfu_graph *gr, tfu_x_fuse_state *st, int g, int x) {
    const tfu_x_memdeps *M = st->mem;
    int s, l = st->lvl[g];
    int32_t e;
    for (s = 0; s < TFU_MAX_SRC; s++) {
        int q = gr->srcs[(size_t)x * TFU_MAX_SRC + s], k;
        if (q < 0) continue;
        while (gr->all[q]->op == TFU_OP_VIEW) q = gr->srcs[(size_t)q * TFU_MAX_SRC];
        k = st->group[q];
        if (k < 0 || k == g) continue;
        tfu_x_link_one(st, k, x, &l);
    }
    for (e = M->first[x]; e < M->first[x + 1]; e++) {
        int k = st->group[M->pred[e]];
        if (k >= 0 && k != g) tfu_x_link_one(st, k, x, &l);
    }
    tfu_x_raise(st, g, l);
}

/* the operands of member m of the candidate: fusable inside, acyclic outside */
static int tfu_x_member_legal(const tfu_graph *gr, tfu_x_fuse_state *st, int m) {
    const tfu_tensor *t = gr->all[m];
    const tfu_x_memdeps *M = st->mem;
    int s;
    int32_t e;
    for (s = 0; s < TFU_MAX_SRC; s++) {
        int q, r, lv;
        if (!t->src[s]) continue;
        q = gr->srcs[(size_t)m * TFU_MAX_SRC + s];
        if (tfu_x_in_u(st, q)) {
            if (!tfu_x_edge_fusable(t, s) && !(st->attn && tfu_x_attn_edge(t, s))) return 0;
            continue;
        }
        r = q;
        while (gr->all[r]->op == TFU_OP_VIEW) r = gr->srcs[(size_t)r * TFU_MAX_SRC];
        if (tfu_x_in_u(st, r)) return 0;   /* through a view into the group: not element for element */
        lv = st->group[r] >= 0 ? st->lvl[st->group[r]] : -1;
        if (lv > st->lmin && tfu_x_reaches(gr, st, q)) return 0;   /* a lower level cannot depend on g or h */
    }
    for (e = M->first[m]; e < M->first[m + 1]; e++) {
        int w = M->pred[e];
        if (tfu_x_in_u(st, w)) return 0;   /* a write and a conflicting access never share a loop */
        if (st->lvl[st->group[w]] > st->lmin && tfu_x_reaches(gr, st, w)) return 0;
    }
    return 1;
}

/* legality of group g together with group h (or -1) and the new node x
   (or -1): every member's operands read element for element inside the
   group, no path that leaves it and comes back, no memory conflict in it */
static int tfu_x_fuse_legal(const tfu_graph *gr, tfu_x_fuse_state *st, const tfu_x_caps *caps, int g, int h, int x) {
    int m;
    unsigned char has = (unsigned char)(st->has[g] | (h >= 0 ? st->has[h] : 0) | (x >= 0 ? tfu_x_has_bits(gr->all[x]) : 0));
    if ((has & 3) == 3) return 0;                 /* matmul tiles and whole rows do not mix */
    if ((has & 4) && h >= 0) return 0;            /* a write to user memory never merges groups */
    if (h >= 0 && st->n_mm[g] + st->n_mm[h] > caps->b.max_products) return 0;
    if (caps->b.max_group_ops > 0 && st->size[g] + (h >= 0 ? st->size[h] : 0) + (x >= 0) > caps->b.max_group_ops) return 0;
    if (!(caps->b.fuse_kinds & (1u << ((has & 1) ? TFU_GROUP_MATMUL : (has & 2) ? TFU_GROUP_ROW : TFU_GROUP_ELTWISE)))) return 0;
    st->cand_g = g;
    st->cand_h = h;
    st->cand_x = x;
    st->stamp++;
    st->budget = TFU_X_FUSE_SEARCH;
    st->lmin = h >= 0 && st->lvl[h] < st->lvl[g] ? st->lvl[h] : st->lvl[g];
    /* joining: only x's operands are new edges; merging: check both groups whole */
    if (h >= 0) {
        for (m = g; m >= 0; m = st->next[m]) if (!tfu_x_member_legal(gr, st, m)) return 0;
        for (m = h; m >= 0; m = st->next[m]) if (!tfu_x_member_legal(gr, st, m)) return 0;
    }
    if (x >= 0 && !tfu_x_member_legal(gr, st, x)) return 0;
    return 1;
}

/* Attention: is node x the weighted values mul_mat(V, P) of
     P = soft_max_ext(S, mask, scale), S = mul_mat(K, Q)
   with S and P used once, unflagged and not yet fused with anything, so
   that one group can run all three without S or P in memory? Sets *s and
   *p to the graph indices of S and P. K and V are f32, f16 or bf16 (the
   group reads them block by block). */
static int tfu_x_attn_match(const tfu_graph *gr, const tfu_x_fuse_state *st, const tfu_x_caps *caps, int x, int *s, int *p) {
    const tfu_tensor *t = gr->all[x], *pt, *st_;
    int i;
    if (!caps->fuse || !(caps->b.fuse_kinds & (1u << TFU_GROUP_ATTENTION)) || t->op != TFU_OP_MUL_MAT) return 0;
    if (caps->b.max_products < 2 || (caps->b.max_group_ops > 0 && caps->b.max_group_ops < 3)) return 0;
    pt = t->src[1];
    if (!pt || pt->op != TFU_OP_SOFT_MAX || !pt->src[0] || pt->src[0]->op != TFU_OP_MUL_MAT) return 0;
    st_ = pt->src[0];
    if (!tfu_x_is_float(t->src[0]->type) || !tfu_x_is_float(st_->src[0]->type)) return 0;
    *p = gr->srcs[(size_t)x * TFU_MAX_SRC + 1];
    *s = gr->srcs[(size_t)*p * TFU_MAX_SRC];
    for (i = 0; i < 2; i++) {
        int q = i ? *s : *p;
        const tfu_tensor *u = gr->all[q];
        if (gr->uses[q] != 1 || (u->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP))) return 0;
        if (st->group[q] != q || st->size[q] != 1) return 0;
    }
    return 1;
}

static void tfu_x_fuse_add(tfu_x_fuse_state *st, const tfu_graph *gr, int g, int x) {
    st->next[st->last[g]] = x;
    st->next[x] = -1;
    st->last[g] = x;
    st->group[x] = g;
    st->size[g]++;
    st->n_mm[g] += gr->all[x]->op == TFU_OP_MUL_MAT;
    st->has[g] |= tfu_x_has_bits(gr->all[x]);
}

/* legality of the attention group {S, P, x} (tfu_x_attn_match): the
   operands K, Q, mask and V must not depend on S or P through anything
   outside, and no memory conflict may fall inside */
static int tfu_x_attn_legal(const tfu_graph *gr, tfu_x_fuse_state *st, int s, int p, int x) {
    int ok;
    st->cand_g = s;
    st->cand_h = p;
    st->cand_x = x;
    st->stamp++;
    st->budget = TFU_X_FUSE_SEARCH;
    st->lmin = st->lvl[s] < st->lvl[p] ? st->lvl[s] : st->lvl[p];
    st->attn = 1;
    ok = tfu_x_member_legal(gr, st, s) && tfu_x_member_legal(gr, st, p) && tfu_x_member_legal(gr, st, x);
    st->attn = 0;
    return ok;
}

/* merges two groups; the larger keeps its name (members of the smaller
   are relabelled, so merging stays cheap); returns the group's name */
static int tfu_x_fuse_merge(tfu_x_fuse_state *st, int g, int h) {
    int keep = st->size[g] >= st->size[h] ? g : h, gone = keep == g ? h : g, m;
    for (m = gone; m >= 0; m = st->next[m]) st->group[m] = keep;
    st->next[st->last[keep]] = gone;
    st->last[keep] = st->last[gone];
    st->size[keep] += st->size[gone];
    st->n_mm[keep] += st->n_mm[gone];
    st->has[keep] |= st->has[gone];
    if (st->e_head[gone] >= 0) {
        if (st->e_tail[keep] >= 0) st->e_next[st->e_tail[keep]] = st->e_head[gone];
        else st->e_head[keep] = st->e_head[gone];
        st->e_tail[keep] = st->e_tail[gone];
    }
    st->lvl[keep] = st->lvl[keep] > st->lvl[gone] ? st->lvl[keep] : st->lvl[gone];
    st->lvl[keep]--;                      /* re-raised by one so the consumers follow */
    tfu_x_raise(st, keep, st->lvl[keep] + 1);
    return keep;
}

/* Forms groups; group[i] = founding tensor index (-1 for leaves and views). */
static int tfu_x_fuse(const tfu_graph *gr, const tfu_x_caps *caps, const tfu_x_memdeps *M, int32_t *group, tfu_allocator *al) {
    tfu_x_fuse_state st;
    int n = gr->n_all, i, s, sq, pq, ok = 0;
    size_t n_edges = (size_t)n * TFU_MAX_SRC + M->n_edges + 4;
    memset(&st, 0, sizeof st);
    st.n = n;
    st.cand_g = st.cand_h = st.cand_x = -1;
    st.mem = M;
    st.group = group;
    st.next = (int32_t *)al->alloc_fn(((size_t)n * 5 + 4) * sizeof(int32_t), al->user);
    st.seen = (int32_t *)al->alloc_fn((size_t)n * 2 * sizeof(int32_t) + 4, al->user);
    st.stack = (int32_t *)al->alloc_fn((size_t)n * sizeof(int32_t) * 2 + 4, al->user);
    st.has = (unsigned char *)al->alloc_fn((size_t)n + 1, al->user);
    st.lvl = (int32_t *)al->alloc_fn(((size_t)n * 3 + 4) * sizeof(int32_t), al->user);
    st.e_to = (int32_t *)al->alloc_fn(n_edges * 2 * sizeof(int32_t), al->user);
    if (!st.next || !st.seen || !st.stack || !st.has || !st.lvl || !st.e_to) goto done;
    st.gseen = st.seen + n;
    st.last = st.next + n;
    st.size = st.last + n;
    st.n_mm = st.size + n;
    st.e_head = st.lvl + n;
    st.e_tail = st.e_head + n;
    st.e_next = st.e_to + n_edges;
    memset(st.has, 0, (size_t)n + 1);
    for (i = 0; i < 2 * n; i++) st.seen[i] = 0;
    for (i = 0; i < n; i++) {
        const tfu_tensor *t = gr->all[i];
        int c = tfu_x_class(t), g = -1;
        st.next[i] = -1;
        group[i] = -1;
        st.lvl[i] = 0;
        st.e_head[i] = st.e_tail[i] = -1;
        if (c == TFU_X_C_LEAF || c == TFU_X_C_VIEW) continue;
        if (tfu_x_attn_match(gr, &st, caps, i, &sq, &pq) && tfu_x_attn_legal(gr, &st, sq, pq, i)) {
            g = tfu_x_fuse_merge(&st, sq, pq);
            tfu_x_fuse_add(&st, gr, g, i);
            tfu_x_link(gr, &st, g, i);
            continue;
        }
        if (caps->fuse) {
            for (s = 0; s < TFU_MAX_SRC; s++) {
                int q, h;
                if (!t->src[s] || !tfu_x_edge_fusable(t, s)) continue;
                q = gr->srcs[(size_t)i * TFU_MAX_SRC + s];
                h = group[q];
                if (h < 0 || h == g) continue;
                if (g < 0) {
                    if (tfu_x_fuse_legal(gr, &st, caps, h, -1, i)) {
                        g = h;
                        tfu_x_fuse_add(&st, gr, g, i);
                        tfu_x_link(gr, &st, g, i);
                    }
                } else if (tfu_x_fuse_legal(gr, &st, caps, g, h, -1)) {
                    g = tfu_x_fuse_merge(&st, g, h);
                }
            }
        }
        if (g < 0) {
            group[i] = i;
            st.last[i] = i;
            st.size[i] = 1;
            st.n_mm[i] = t->op == TFU_OP_MUL_MAT;
            st.has[i] = tfu_x_has_bits(t);
            tfu_x_link(gr, &st, i, i);
        }
    }
    ok = 1;
done:
    tfu_x_tmp_free(al, st.next);
    tfu_x_tmp_free(al, st.seen);
    tfu_x_tmp_free(al, st.stack);
    tfu_x_tmp_free(al, st.has);
    tfu_x_tmp_free(al, st.lvl);
    tfu_x_tmp_free(al, st.e_to);
    return ok;
}

/* --- stages and memory ------------------------------------------------------ */

/* What one planning pass decides: groups, their order and stages, which
   values are materialised, their lifetimes and arena offsets. */
typedef struct tfu_x_layout {
    int32_t *group;       /* per tensor: founder, -1 for leaf/view          */
    int32_t *order;       /* founders in execution order (by stage)         */
    int32_t *stage;       /* per tensor (founders): stage                   */
    unsigned char *mat;   /* per tensor: materialised                       */
    int32_t *life0, *life1;
    int64_t *offs;        /* per tensor: arena offset, -1 if none           */
    int      n_groups, n_stages;
    size_t   arena;
} tfu_x_layout;

static int tfu_x_is_value(const tfu_tensor *t) {  /* a computed tensor with memory of its own */
    int c = tfu_x_class(t);
    return c != TFU_X_C_LEAF && c != TFU_X_C_VIEW && tfu_x_dst_operand(t) < 0;
}

static size_t tfu_x_value_bytes(const tfu_tensor *t) { return tfu_x_align_up(tfu_nbytes(t), TFU_X_ALIGN); }

/* per tensor: the tensor a read really touches, through views */
static void tfu_x_view_roots(const tfu_graph *gr, int32_t *vr) {
    int i;
    for (i = 0; i < gr->n_all; i++) vr[i] = gr->all[i]->op == TFU_OP_VIEW ? vr[gr->srcs[(size_t)i * TFU_MAX_SRC]] : i;
}

/* Pass: materialise. A value gets memory when it is flagged, unused, a
   copy, read by another group or read other than element for element. */
static void tfu_x_materialise(const tfu_graph *gr, tfu_x_layout *L) {
    int n = gr->n_all, i, s;
    for (i = 0; i < n; i++) L->mat[i] = 0;
    for (i = 0; i < n; i++) {
        const tfu_tensor *t = gr->all[i];
        if (L->group[i] >= 0 && ((t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)) || gr->uses[i] == 0 || tfu_x_dst_operand(t) >= 0)) L->mat[i] = 1;
        for (s = 0; s < TFU_MAX_SRC; s++) {
            int q;
            if (!t->src[s]) continue;
            q = gr->srcs[(size_t)i * TFU_MAX_SRC + s];
            if (L->group[q] >= 0 && (L->group[i] != L->group[q] || !(tfu_x_edge_fusable(t, s) || tfu_x_attn_edge(t, s)))) L->mat[q] = 1;
        }
    }
}

/* Pass: stages. The group graph holds the data edges (through views) and
   the memory-effect edges; a group's stage is one more than the latest of
   its producers', so a stage never holds two groups that depend on each
   other or touch conflicting bytes. order[] lists founders by stage. */
static int tfu_x_schedule(const tfu_graph *gr, const tfu_x_memdeps *M, const int32_t *vr, tfu_allocator *al, tfu_x_layout *L) {
    int n = gr->n_all, i, s, k, pass, ok = 0, n_order = 0, head = 0, tail = 0;
    size_t n_edges = 0;
    int32_t *first = NULL, *adj = NULL, *fill = NULL, *queue = NULL;
    first = (int32_t *)al->alloc_fn(sizeof(int32_t) * ((size_t)n + 2), al->user);
    fill = (int32_t *)al->alloc_fn(sizeof(int32_t) * ((size_t)n + 2), al->user);
    queue = (int32_t *)al->alloc_fn(sizeof(int32_t) * ((size_t)n + 2), al->user);
    if (!first || !fill || !queue) goto done;
    for (i = 0; i <= n; i++) first[i] = 0;
    for (i = 0; i <= n; i++) fill[i] = 0;
    /* edges producer group -> consumer group: counted, then filled (CSR) */
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < n; i++) {
            const tfu_tensor *t = gr->all[i];
            int32_t e, gi = L->group[i];
            if (gi < 0) continue;
            for (s = 0; s < TFU_MAX_SRC + (M->first[i + 1] - M->first[i]); s++) {
                int from;
                if (s < TFU_MAX_SRC) {
                    if (!t->src[s]) continue;
                    from = L->group[vr[gr->srcs[(size_t)i * TFU_MAX_SRC + s]]];
                } else {
                    e = M->first[i] + (s - TFU_MAX_SRC);
                    from = L->group[M->pred[e]];
                }
                if (from < 0 || from == gi) continue;
                if (pass == 0) {
                    first[from + 1]++;
                    n_edges++;
                } else {
                    adj[first[from] + fill[from]++] = gi;
                }
            }
        }
        if (pass == 0) {
            for (i = 0; i < n; i++) first[i + 1] += first[i];
            adj = (int32_t *)al->alloc_fn(sizeof(int32_t) * (n_edges + 1), al->user);
            if (!adj) goto done;
        }
    }
    /* Kahn over the group graph, sources in creation order; stage = longest path */
    for (i = 0; i < n; i++) fill[i] = 0;
    for (k = 0; k < (int)n_edges; k++) fill[adj[k]]++;
    L->n_groups = 0;
    for (i = 0; i < n; i++) {
        if (L->group[i] != i) continue;
        L->n_groups++;
        L->stage[i] = 0;
        if (!fill[i]) queue[tail++] = i;
    }
    L->n_stages = 0;
    while (head < tail) {
        int g = queue[head++], e;
        L->order[n_order++] = g;
        if (L->stage[g] + 1 > L->n_stages) L->n_stages = L->stage[g] + 1;
        for (e = first[g]; e < first[g + 1]; e++) {
            int d = adj[e];
            if (L->stage[d] < L->stage[g] + 1) L->stage[d] = L->stage[g] + 1;
            if (--fill[d] == 0) queue[tail++] = d;
        }
    }
    TFU_ASSERT(n_order == L->n_groups);
    /* execution order: by stage, Kahn order inside a stage (a stable counting sort) */
    for (s = 0; s <= L->n_stages; s++) fill[s] = 0;
    for (k = 0; k < n_order; k++) fill[L->stage[L->order[k]] + 1]++;
    for (s = 0; s < L->n_stages; s++) fill[s + 1] += fill[s];
    for (k = 0; k < n_order; k++) queue[fill[L->stage[L->order[k]]]++] = L->order[k];
    memcpy(L->order, queue, sizeof(int32_t) * (size_t)n_order);
    ok = 1;
done:
    tfu_x_tmp_free(al, first);
    tfu_x_tmp_free(al, adj);
    tfu_x_tmp_free(al, fill);
    tfu_x_tmp_free(al, queue);
    return ok;
}

/* Pass: lifetimes. A value lives from the stage that produces it to the
   end of the last stage that reads it; flagged values to the end of the
   run. So memory reuse never creates a dependency or a race. */
static void tfu_x_lifetimes(const tfu_graph *gr, const int32_t *vr, tfu_x_layout *L) {
    int n = gr->n_all, i, s;
    for (i = 0; i < n; i++) {
        L->life0[i] = -1;
        L->life1[i] = -1;
        L->offs[i] = -1;
    }
    for (i = 0; i < n; i++) {
        if (L->mat[i] && tfu_x_is_value(gr->all[i])) L->life0[i] = L->life1[i] = L->stage[L->group[i]];
    }
    for (i = 0; i < n; i++) {
        const tfu_tensor *t = gr->all[i];
        if (t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)) {
            int r = vr[i];
            if (L->life0[r] >= 0) L->life1[r] = L->n_stages - 1;
        }
        if (L->group[i] < 0) continue;
        for (s = 0; s < TFU_MAX_SRC; s++) {
            int r, st = L->stage[L->group[i]];
            if (!t->src[s]) continue;
            r = vr[gr->srcs[(size_t)i * TFU_MAX_SRC + s]];
            if (L->life0[r] >= 0 && L->group[r] != L->group[i] && L->life1[r] < st) L->life1[r] = st;
        }
    }
}

typedef struct tfu_x_gap { size_t off, size; } tfu_x_gap;

/* value a before value b: earlier birth stage, then larger, then created first */
typedef struct tfu_x_value_keys { const int32_t *life0; const size_t *bytes; } tfu_x_value_keys;

static int tfu_x_value_before(const void *x, const void *y, const void *ctx) {
    const tfu_x_value_keys *k = (const tfu_x_value_keys *)ctx;
    int32_t a, b;
    memcpy(&a, x, sizeof a);
    memcpy(&b, y, sizeof b);
    if (k->life0[a] != k->life0[b]) return k->life0[a] < k->life0[b];
    if (k->bytes[a] != k->bytes[b]) return k->bytes[a] > k->bytes[b];
    return a < b;
}

/* returns a gap to the sorted free list, joined with its neighbours */
static void tfu_x_gap_free(tfu_x_gap *gaps, int *n_gaps, size_t off, size_t size) {
    int lo = 0, hi = *n_gaps, j;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (gaps[mid].off < off) lo = mid + 1;
        else hi = mid;
    }
    if (lo > 0 && gaps[lo - 1].off + gaps[lo - 1].size == off) {
        gaps[lo - 1].size += size;
        if (lo < *n_gaps && gaps[lo - 1].off + gaps[lo - 1].size == gaps[lo].off) {
            gaps[lo - 1].size += gaps[lo].size;
            for (j = lo; j + 1 < *n_gaps; j++) gaps[j] = gaps[j + 1];
            (*n_gaps)--;
        }
        return;
    }
    if (lo < *n_gaps && off + size == gaps[lo].off) {
        gaps[lo].off = off;
        gaps[lo].size += size;
        return;
    }
    for (j = *n_gaps; j > lo; j--) gaps[j] = gaps[j - 1];
    gaps[lo].off = off;
    gaps[lo].size = size;
    (*n_gaps)++;
}

/* Pass: offsets. A sweep over the stages: values whose lifetime ended go
   back to a free list, values born in the stage take the best-fitting gap,
   largest first, or the top of the arena. Guarantees: two values alive in
   a common stage never share a byte; TFU_ERR_OVERFLOW if the arena size
   does not fit size_t. */
static tfu_result tfu_x_offsets(const tfu_graph *gr, tfu_allocator *al, tfu_x_layout *L) {
    int n = gr->n_all, i, s, nv = 0, n_gaps = 0, b;
    tfu_result r = TFU_ERR_NO_MEMORY;
    int32_t *vals = NULL, *born = NULL, *dies = NULL, *by_death = NULL, *fill = NULL;
    tfu_x_value_keys keys;
    size_t *bytes = NULL, top = 0;
    tfu_x_gap *gaps = NULL;
    vals = (int32_t *)al->alloc_fn(sizeof(int32_t) * ((size_t)n + 1), al->user);
    by_death = (int32_t *)al->alloc_fn(sizeof(int32_t) * ((size_t)n + 1), al->user);
    born = (int32_t *)al->alloc_fn(sizeof(int32_t) * ((size_t)L->n_stages + 2), al->user);
    dies = (int32_t *)al->alloc_fn(sizeof(int32_t) * ((size_t)L->n_stages + 2), al->user);
    fill = (int32_t *)al->alloc_fn(sizeof(int32_t) * ((size_t)L->n_stages + 2), al->user);
    bytes = (size_t *)al->alloc_fn(sizeof(size_t) * ((size_t)n + 1), al->user);
    gaps = (tfu_x_gap *)al->alloc_fn(sizeof(tfu_x_gap) * ((size_t)n + 2), al->user);
    if (!vals || !by_death || !born || !dies || !fill || !bytes || !gaps) goto done;
    L->arena = 0;
    for (i = 0; i < n; i++) {
        size_t nbytes;
        if (L->life0[i] < 0) continue;
        nbytes = tfu_nbytes(gr->all[i]);
        if (nbytes > SIZE_MAX - TFU_X_ALIGN) {
            r = TFU_ERR_OVERFLOW;
            goto done;
        }
        bytes[i] = tfu_x_value_bytes(gr->all[i]);
        vals[nv++] = i;
    }
    /* values by birth stage, largest first inside a stage (then creation
       order); dies[] buckets them by the last stage they are alive in */
    keys.life0 = L->life0;
    keys.bytes = bytes;
    tfu_x_msort(vals, by_death, nv, sizeof(int32_t), tfu_x_value_before, &keys);
    for (s = 0; s <= L->n_stages + 1; s++) born[s] = dies[s] = 0;
    for (i = 0; i < nv; i++) {
        born[L->life0[vals[i]] + 1]++;
        dies[L->life1[vals[i]] + 1]++;
    }
    for (s = 0; s <= L->n_stages; s++) {
        born[s + 1] += born[s];
        dies[s + 1] += dies[s];
    }
    for (s = 0; s <= L->n_stages + 1; s++) fill[s] = dies[s];
    for (i = 0; i < nv; i++) by_death[fill[L->life1[vals[i]]]++] = vals[i];
    for (s = 0; s < L->n_stages; s++) {
        if (s > 0) {
            for (b = dies[s - 1]; b < dies[s]; b++) tfu_x_gap_free(gaps, &n_gaps, (size_t)L->offs[by_death[b]], bytes[by_death[b]]);
            if (n_gaps && gaps[n_gaps - 1].off + gaps[n_gaps - 1].size == top) top = gaps[--n_gaps].off;
        }
        for (b = born[s]; b < born[s + 1]; b++) {
            int v = vals[b], best = -1, j;
            size_t need = bytes[v];
            for (j = 0; j < n_gaps; j++)
                if (gaps[j].size >= need && (best < 0 || gaps[j].size < gaps[best].size)) best = j;
            if (best >= 0) {
                L->offs[v] = (int64_t)gaps[best].off;
                gaps[best].off += need;
                gaps[best].size -= need;
                if (!gaps[best].size) {
                    for (j = best; j + 1 < n_gaps; j++) gaps[j] = gaps[j + 1];
                    n_gaps--;
                }
                continue;
            }
            if (need > SIZE_MAX - top || top + need > (size_t)INT64_MAX) {
                r = TFU_ERR_OVERFLOW;
                goto done;
            }
            L->offs[v] = (int64_t)top;
            top += need;
            if (top > L->arena) L->arena = top;
        }
    }
    r = TFU_OK;
done:
    tfu_x_tmp_free(al, vals);
    tfu_x_tmp_free(al, by_death);
    tfu_x_tmp_free(al, born);
    tfu_x_tmp_free(al, dies);
    tfu_x_tmp_free(al, fill);
    tfu_x_tmp_free(al, bytes);
    tfu_x_tmp_free(al, gaps);
    return r;
}

/* The shared planning passes, in order: memory-effect edges, fuse,
   materialise, schedule, lifetimes, offsets. */
static tfu_result tfu_x_plan_layout(const tfu_graph *gr, const tfu_x_caps *caps, tfu_allocator *al, tfu_x_layout *L) {
    tfu_x_memdeps M;
    int32_t *vr;
    tfu_result r = TFU_ERR_NO_MEMORY;
    M.first = M.pred = NULL;
    vr = (int32_t *)al->alloc_fn(sizeof(int32_t) * ((size_t)gr->n_all + 1), al->user);
    if (!vr || !tfu_x_mem_edges(gr, al, &M)) goto done;
    tfu_x_view_roots(gr, vr);
    if (!tfu_x_fuse(gr, caps, &M, L->group, al)) goto done;
    tfu_x_materialise(gr, L);
    if (!tfu_x_schedule(gr, &M, vr, al, L)) goto done;
    tfu_x_lifetimes(gr, vr, L);
    r = tfu_x_offsets(gr, al, L);
done:
    tfu_x_tmp_free(al, vr);
    tfu_x_memdeps_free(&M, al);
    return r;
}

/* --- programs: the groups as the view shows them --------------------------- */

/* the group's external operand (tid, col_off), added once; mark[tid] is
   1 + the group that holds (tid, 0) at pos[tid] (so a group with many
   external operands is indexed in linear time) */
static int tfu_x_operand_index(tfu_plan *p, tfu_pv_group *G, int gi, int32_t tid, int32_t col_off, int32_t *mark, int32_t *pos) {
    int e;
    if (col_off == 0 && mark[tid] == gi + 1) return pos[tid];
    if (col_off != 0) {
        for (e = 0; e < G->n_operands; e++)
            if (p->ext[G->first_operand + e].tensor == tid && p->ext[G->first_operand + e].col_off == col_off) return e;
    }
    e = G->n_operands++;
    p->ext[G->first_operand + e].tensor = tid;
    p->ext[G->first_operand + e].col_off = col_off;
    p->n_ext++;
    if (col_off == 0) {
        mark[tid] = gi + 1;
        pos[tid] = e;
    }
    return e;
}

/* does t fit the backend's longest row? (element-wise groups walk rows in
   chunks of any length; every other kind takes a whole row, or K) */
static int tfu_x_row_fits(const tfu_tensor *t, int kind, int64_t max_row) {
    int s;
    if (kind == TFU_GROUP_ELTWISE && !(t->op == TFU_OP_GLU && !t->op_params_i[2])) return 1;
    if (t->ne[0] > max_row) return 0;
    for (s = 0; s < TFU_MAX_SRC; s++)
        if (t->src[s] && t->src[s]->ne[0] > max_row) return 0;
    return 1;
}

/* r = a * b * c, 0 on overflow */
static int tfu_x_mul3_ok(size_t a, size_t b, size_t c, size_t *r) {
    size_t ab;
    return tfu_x_mul_ok(a, b, &ab) && tfu_x_mul_ok(ab, c, r);
}

static int tfu_x_group_kind_of(const tfu_graph *gr, const int32_t *members, int n) {
    int i, mm = 0, row = 0;
    for (i = 0; i < n; i++) {
        int c = tfu_x_class(gr->all[members[i]]);
        if (c == TFU_X_C_OTHER) return TFU_GROUP_OTHER;
        mm |= c == TFU_X_C_MM;
        row |= c == TFU_X_C_ROW;
    }
    if (mm && row) return TFU_GROUP_ATTENTION;   /* only tfu_x_attn_match puts the two in one group */
    return mm ? TFU_GROUP_MATMUL : row ? TFU_GROUP_ROW : TFU_GROUP_ELTWISE;
}

static size_t tfu_x_max(size_t a, size_t b) { return a > b ? a : b; }

/* Pass (shared): programs. Every group becomes a program over the view's
   structs: its members in program order as instructions, sources inside
   the group as instruction indices, everything else as operands read from
   memory; groups in execution order with their stage. Refuses what the
   backend's capabilities exclude (rows or K longer than max_row). */
static tfu_result tfu_x_programs(tfu_plan *p, const tfu_graph *gr, const tfu_x_layout *L, const tfu_x_caps *caps) {
    int n = gr->n_all, i, gi, s;
    int32_t *bucket_first, *members, *fill, *ext_mark, *ext_pos;
    p->groups = (tfu_pv_group *)tfu_x_palloc(p, sizeof(tfu_pv_group) * (size_t)(L->n_groups + 1));
    p->ins = (tfu_pv_instr *)tfu_x_palloc(p, sizeof(tfu_pv_instr) * (size_t)(n + 1));
    p->ext = (tfu_pv_operand *)tfu_x_palloc(p, sizeof(tfu_pv_operand) * (size_t)(3 * n + 1));
    p->stage_first = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(L->n_stages + 2));
    bucket_first = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 2));
    members = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 1));
    fill = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 1));
    ext_mark = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 1));
    ext_pos = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 1));
    if (!p->groups || !p->ins || !p->ext || !p->stage_first || !bucket_first || !members || !fill || !ext_mark || !ext_pos)
        return TFU_ERR_NO_MEMORY;
    /* members of each group, in program order (counting sort by founder) */
    for (i = 0; i < n; i++) if (L->group[i] >= 0) bucket_first[L->group[i] + 1]++;
    for (i = 0; i < n; i++) bucket_first[i + 1] += bucket_first[i];
    for (i = 0; i < n; i++) if (L->group[i] >= 0) members[bucket_first[L->group[i]] + fill[L->group[i]]++] = i;
    for (i = 0; i < n; i++) p->ins_of[i] = -1;
    p->n_groups = L->n_groups;
    p->n_stages = L->n_stages;
    for (gi = 0; gi < L->n_groups; gi++) {
        int f = L->order[gi], nm = fill[f], k;
        const int32_t *mem = members + bucket_first[f];
        tfu_pv_group *G = &p->groups[gi];
        G->kind = (tfu_group_kind)tfu_x_group_kind_of(gr, mem, nm);
        for (k = 0; k < nm; k++)
            if (!tfu_x_row_fits(gr->all[mem[k]], G->kind, caps->b.max_row)) return TFU_ERR_INVALID_ARG;
        G->stage = L->stage[f];
        G->first_instr = p->n_ins;
        G->n_instr = nm;
        G->first_operand = p->n_ext;
        G->n_operands = 0;
        memcpy(G->ne, gr->all[mem[nm - 1]]->ne, sizeof G->ne);
        if (gr->all[mem[nm - 1]]->op == TFU_OP_SET_ROWS) memcpy(G->ne, gr->all[mem[nm - 1]]->src[0]->ne, sizeof G->ne);   /* over the rows written */
        if (G->kind == TFU_GROUP_MATMUL) {
            for (k = 0; k < nm; k++) if (gr->all[mem[k]]->op == TFU_OP_MUL_MAT) { memcpy(G->ne, gr->all[mem[k]]->ne, sizeof G->ne); break; }
        }
        p->n_ins += nm;
        for (k = 0; k < nm; k++) p->ins_of[mem[k]] = G->first_instr + k;
        for (k = 0; k < nm; k++) {
            const tfu_tensor *t = gr->all[mem[k]];
            tfu_pv_instr *I = &p->ins[G->first_instr + k];
            I->tensor = mem[k];
            I->store = L->mat[mem[k]];
            if (t->op == TFU_OP_GLU && !t->op_params_i[2]) {   /* fused-row GLU: two halves of one operand */
                int32_t h = (int32_t)t->ne[0], sw = t->op_params_i[1];
                I->n_src = 2;
                I->src[0] = -1 - tfu_x_operand_index(p, G, gi, tfu_x_graph_find(gr, t->src[0]), sw ? h : 0, ext_mark, ext_pos);
                I->src[1] = -1 - tfu_x_operand_index(p, G, gi, tfu_x_graph_find(gr, t->src[0]), sw ? 0 : h, ext_mark, ext_pos);
                continue;
            }
            I->n_src = tfu_x_dst_operand(t) >= 0 ? tfu_x_dst_operand(t) : tfu_x_n_src(t);   /* a dst is written, not read */
            for (s = 0; s < I->n_src; s++) {
                int q;
                if (!t->src[s]) {
                    I->src[s] = -1 - tfu_x_operand_index(p, G, gi, tfu_x_graph_find(gr, t->src[0]), 0, ext_mark, ext_pos);
                    continue;
                }
                q = gr->srcs[(size_t)mem[k] * TFU_MAX_SRC + s];
                if (L->group[q] == f && (tfu_x_class(t) != TFU_X_C_MM || G->kind == TFU_GROUP_ATTENTION)) I->src[s] = p->ins_of[q] - G->first_instr;
                else I->src[s] = -1 - tfu_x_operand_index(p, G, gi, q, 0, ext_mark, ext_pos);
            }
        }
    }
    for (gi = 0; gi < p->n_groups; gi++) {   /* the types each kind reads */
        const tfu_pv_group *G = &p->groups[gi];
        int k;
        for (k = 0; k < G->n_operands; k++)
            if (!(caps->b.operand_types[G->kind] & (1u << p->t[p->ext[G->first_operand + k].tensor]->type))) return TFU_ERR_TYPE;
    }
    for (gi = 0, s = 0; s <= p->n_stages; s++) {
        p->stage_first[s] = gi;
        while (gi < p->n_groups && p->groups[gi].stage == s) gi++;
    }
    return TFU_OK;
}

/* --- stale plans ------------------------------------------------------------ */

/* the structure a plan was made for, recorded at compile and rebind */
static void tfu_x_plan_snapshot(tfu_plan *p) {
    int i;
    p->ctx_gen = p->ctx->gen;
    p->graph_gen = p->graph->gen;
    for (i = 0; i < p->n_all; i++) p->flags[i] = p->t[i]->flags;
}

/* Has the graph changed since compile or rebind? Generations first (a
   reset context may hold anything where the graph was), then the flags. */
static const char *tfu_x_plan_gens(const tfu_plan *p) {
    if (p->ctx->gen != p->ctx_gen) return "the context was reset after the plan was compiled";
    if (p->graph->gen != p->graph_gen || p->graph->n_all != p->n_all) return "the graph grew after the plan was compiled";
    return NULL;
}

static const char *tfu_x_plan_stale(const tfu_plan *p) {
    int i;
    const char *why = tfu_x_plan_gens(p);
    if (why) return why;
    for (i = 0; i < p->n_all; i++)
        if (p->t[i]->flags != p->flags[i]) return "a tensor's flags changed after the plan was compiled";
    return NULL;
}

/* --- the plan view (>>seam) ------------------------------------------------
   The shared program itself (groups, instructions, operands, stages) plus
   the memory roots and the bytes each stage touches; built once at compile,
   kept by rebinding (the structure is the same). */

/* appends the bytes tensor q occupies in its memory root */
static void tfu_x_view_range(const tfu_plan *p, int32_t *root_of, int q, int write, tfu_pv_range *r) {
    const tfu_tensor *t = p->t[q];
    int root = root_of[q];
    size_t lo = t->view_src ? t->view_offs : 0;
    if (p->t[root]->op == TFU_OP_NONE) {
        r->root = root;
        r->lo = lo;
    } else {
        r->root = -1;
        r->lo = (uint64_t)p->offs[root] + lo;
    }
    r->write = write;
    r->hi = r->lo + tfu_nbytes(t);
}

static int tfu_x_build_view(tfu_plan *p) {
    tfu_plan_view *v = &p->view;
    int32_t *root, *range_first;
    tfu_pv_range *ranges;
    int i, gi, k, s, n_ranges = 0;
    root = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(p->n_all + 1));
    range_first = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(p->n_stages + 2));
    ranges = (tfu_pv_range *)tfu_x_palloc(p, sizeof(tfu_pv_range) * (size_t)(p->n_ins + p->n_ext + 1));
    if (!root || !range_first || !ranges) return 0;
    for (i = 0; i < p->n_all; i++) root[i] = p->t[i]->view_src ? tfu_x_graph_find(p->graph, p->t[i]->view_src) : i;
    /* bytes per stage: every operand read, every stored result written */
    for (s = 0; s <= p->n_stages; s++) {
        range_first[s] = n_ranges;
        if (s == p->n_stages) break;
        for (gi = p->stage_first[s]; gi < p->stage_first[s + 1]; gi++) {
            const tfu_pv_group *G = &p->groups[gi];
            for (k = 0; k < G->n_operands; k++) tfu_x_view_range(p, root, p->ext[G->first_operand + k].tensor, 0, &ranges[n_ranges++]);
            for (k = 0; k < G->n_instr; k++)
                if (p->ins[G->first_instr + k].store) tfu_x_view_range(p, root, p->ins[G->first_instr + k].tensor, 1, &ranges[n_ranges++]);
        }
    }
    v->n_tensors = p->n_all;
    v->tensors = p->t;
    v->root = root;
    v->offset = p->offs;
    v->life_first = p->life0;
    v->life_last = p->life1;
    v->arena_bytes = p->arena_bytes;
    v->n_groups = p->n_groups;
    v->groups = p->groups;
    v->n_instrs = p->n_ins;
    v->n_operands = p->n_ext;
    v->n_ranges = n_ranges;
    v->instrs = p->ins;
    v->operands = p->ext;
    v->n_stages = p->n_stages;
    v->stage_first = p->stage_first;
    v->range_first = range_first;
    v->ranges = ranges;
    return 1;
}

TFU_API tfu_result tfu_plan_get_view(const tfu_plan *p, tfu_plan_view *view) {
    const char *stale;
    if (!p || !view) return TFU_ERR_NULL_ARG;
    stale = tfu_x_plan_stale(p);
    if (stale) {
        tfu_x_err(p->ctx, TFU_ERR_STALE, NULL, "plan_get_view", stale, NULL, NULL);
        return TFU_ERR_STALE;
    }
    *view = p->view;
    return TFU_OK;
}

/* work items of group g on the CPU (the report's column; >>cpu) */
static int64_t tfu_x_cpu_items(const tfu_plan *p, int g);

/* --- queries and report ------------------------------------------------------ */

static int tfu_x_plan_find(const tfu_plan *p, const tfu_tensor *t) {
    int i;
    if (!p || !t) return -1;
    if (!tfu_x_plan_gens(p)) {   /* the bound graph's map */
        i = tfu_x_graph_find(p->graph, t);
        return i >= 0 && i < p->n_all && p->t[i] == t ? i : -1;
    }
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
            tfu_x_caps caps = p->caps;
            caps.fuse = 0;
            if (tfu_x_plan_layout(p->graph, &caps, &p->al, &U) == TFU_OK) p->arena_unfused = U.arena;
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
TFU_API int tfu_plan_group_n_nodes(const tfu_plan *p, int g) { return p && g >= 0 && g < p->n_groups ? p->groups[g].n_instr : 0; }
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

static const char *const tfu_x_kind_names[TFU_GROUP_KIND_COUNT] = { "eltwise", "row", "matmul", "other", "attention" };

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
        const tfu_pv_group *G = &p->groups[gi];
        char col[24]; tfu_x_buf cb; size_t pad;
        cb.p = col; cb.size = sizeof col; cb.len = 0;
        tfu_x_cati(&cb, G->stage); for (pad = cb.len; pad < 6; pad++) tfu_x_cat(&cb, " ");
        tfu_x_cat(&b, col); cb.len = 0;
        tfu_x_cati(&cb, gi); for (pad = cb.len; pad < 6; pad++) tfu_x_cat(&cb, " ");
        tfu_x_cat(&b, col); cb.len = 0;
        tfu_x_cat(&cb, tfu_x_kind_names[G->kind]); for (pad = cb.len; pad < 9; pad++) tfu_x_cat(&cb, " ");
        tfu_x_cat(&b, col); cb.len = 0;
        tfu_x_cati(&cb, tfu_x_cpu_items(p, gi)); for (pad = cb.len; pad < 7; pad++) tfu_x_cat(&cb, " ");
        tfu_x_cat(&b, col);
        for (k = 0; k < G->n_instr; k++) {
            const tfu_pv_instr *I = &p->ins[G->first_instr + k];
            if (k) tfu_x_cat(&b, " ");
            tfu_x_cat(&b, tfu_op_name(p->t[I->tensor]->op)); tfu_x_cat(&b, "(");
            tfu_x_catname(&b, p->t[I->tensor], I->tensor); tfu_x_cat(&b, ")");
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
        const tfu_pv_group *G = &p->groups[gi];
        tfu_x_cat(&b, "  subgraph cluster_"); tfu_x_cati(&b, gi); tfu_x_cat(&b, " {\n    label=\"group ");
        tfu_x_cati(&b, gi); tfu_x_cat(&b, " "); tfu_x_cat(&b, tfu_x_kind_names[G->kind]);
        tfu_x_cat(&b, ", stage "); tfu_x_cati(&b, G->stage); tfu_x_cat(&b, "\"; style=rounded; color=");
        tfu_x_cat(&b, G->n_instr > 1 ? "blue" : "gray"); tfu_x_cat(&b, ";\n");
        for (k = 0; k < G->n_instr; k++) {
            const tfu_pv_instr *I = &p->ins[G->first_instr + k];
            tfu_x_cat(&b, "    n"); tfu_x_cati(&b, I->tensor); tfu_x_cat(&b, " [label=\"");
            tfu_x_cat(&b, tfu_op_name(p->t[I->tensor]->op)); tfu_x_cat(&b, "\\n"); tfu_x_catname(&b, p->t[I->tensor], I->tensor);
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

/* >>cpu ==================================================================
   The CPU executor, the first client of the plan view: the vector layer
   and kernels, its own per-group state (work items, scratch slots), the
   executor that runs a stage's items on the thread pool, and compile (the
   shared passes, then the CPU's lowering). */

/* --- kernels ---------------------------------------------------------------
   Row kernels: every fused loop is a sequence of these over a chunk of a
   row held in cache. Each has a plain scalar loop; the SIMD twin sits beside
   it, written once over a small vector layer (AVX-512, AVX2+FMA, NEON on
   AArch64), chosen at compile time and compiled out with TFU_NO_SIMD. Each
   plan decides at compile whether its kernels use it (no_simd in the
   options, or TFU_NO_SIMD=1 in the environment) and passes the choice to
   every kernel as its first argument, simd: nothing global, so one plan's
   choice never changes another's results.
   NaN and infinities: every kernel gives what the reference executor gives,
   in the vector body and in the scalar tail alike (NaN in, NaN out). Two
   facts of the hardware shape the vector code: x86 max/min return their
   SECOND operand when either is NaN (NEON's return NaN), so a value that
   must carry its NaN goes second, max(lo, x); and ordered comparisons are
   false for NaN, so a mask that keeps r "unless x < lim" uses the unordered
   not-less-than. */

/* r[0..8) as the rows of an 8x8 block of AVX vectors -> its columns: the
   AVX2 layer's register transpose, and AVX-512's for the attention group's
   panels (which pack by 8 x 8 blocks there) */
#if defined(TFU_X_AVX512) || defined(TFU_X_AVX2)
TFU_X_FORCE_INLINE void tfu_x_v_transpose8(__m256 *r) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}
#endif

#if defined(TFU_X_AVX512)
#define TFU_X_VEC 1
#define TFU_X_VW 16
typedef __m512 tfu_x_vf;
#define tfu_x_v_load(p)      _mm512_loadu_ps(p)
#define tfu_x_v_store(p, v)  _mm512_storeu_ps((p), (v))
#define tfu_x_v_set1(x)      _mm512_set1_ps(x)
#define tfu_x_v_add(a, b)    _mm512_add_ps((a), (b))
#define tfu_x_v_sub(a, b)    _mm512_sub_ps((a), (b))
#define tfu_x_v_mul(a, b)    _mm512_mul_ps((a), (b))
#define tfu_x_v_div(a, b)    _mm512_div_ps((a), (b))
#define tfu_x_v_rcp_est(a)   _mm512_rcp14_ps(a)                      /* 14 bits */
#define tfu_x_v_fma(a, b, c) _mm512_fmadd_ps((a), (b), (c))        /* a*b + c */
#define tfu_x_v_max(a, b)    _mm512_max_ps((a), (b))                 /* either NaN: b */
#define tfu_x_v_min(a, b)    _mm512_min_ps((a), (b))                 /* either NaN: b */
#define tfu_x_v_sqrt(a)      _mm512_sqrt_ps(a)
#define tfu_x_v_abs(a)       _mm512_abs_ps(a)
#define tfu_x_v_hsum(v)      _mm512_reduce_add_ps(v)
#define tfu_x_v_hmax(v)      _mm512_reduce_max_ps(v)
#define tfu_x_v_round(a)     _mm512_roundscale_ps((a), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define tfu_x_v_pow2i(n)     _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
/* the bits of f shifted left by 23: the low 9 bits of its mantissa as an
   exponent field (tfu_x_v_exp) */
#define tfu_x_v_shl23(f)     _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(f), 23))
/* r, or 0 where x < lim; NaN x keeps r (unordered not-less-than) */
#define tfu_x_v_zero_below(r, x, lim) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask((x), _mm512_set1_ps(lim), _CMP_NLT_UQ), (r))
/* 1 when every lane of x is below lim (NaN is not) */
#define tfu_x_v_all_below(x, lim) (_mm512_cmp_ps_mask((x), _mm512_set1_ps(lim), _CMP_LT_OQ) == 0xFFFF)
#define tfu_x_v_inf_above(r, x, lim) _mm512_mask_mov_ps((r), _mm512_cmp_ps_mask((x), _mm512_set1_ps(lim), _CMP_GT_OQ), _mm512_set1_ps(INFINITY))
#define tfu_x_v_one_above(r, x, lim) _mm512_mask_mov_ps((r), _mm512_cmp_ps_mask((x), _mm512_set1_ps(lim), _CMP_GT_OQ), _mm512_set1_ps(1.0f))
#define tfu_x_v_copysign(mag, sgn) _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(mag), \
                             _mm512_and_si512(_mm512_castps_si512(sgn), _mm512_set1_epi32((int)0x80000000u))))
#define tfu_x_v_load_f16(p)  _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p)))
#define tfu_x_v_load_bf16(p) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(p))), 16))
#define tfu_x_v_swap_pairs(a) _mm512_permute_ps((a), 0xB1)           /* (x1, x0, x3, x2, ...) */
/* doubles, for rope's tables: sel_eq / sel_lt give a where x == y / x < y, else b */
#define TFU_X_VDW 8
typedef __m512d tfu_x_vd;
#define tfu_x_vd_load(p)     _mm512_loadu_pd(p)
#define tfu_x_vd_store(p, v) _mm512_storeu_pd((p), (v))
#define tfu_x_vd_set1(x)     _mm512_set1_pd(x)
#define tfu_x_vd_add(a, b)   _mm512_add_pd((a), (b))
#define tfu_x_vd_sub(a, b)   _mm512_sub_pd((a), (b))
#define tfu_x_vd_mul(a, b)   _mm512_mul_pd((a), (b))
#define tfu_x_vd_floor(a)    _mm512_roundscale_pd((a), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
#define tfu_x_vd_sel_eq(x, y, a, b) _mm512_mask_blend_pd(_mm512_cmp_pd_mask((x), (y), _CMP_EQ_OQ), (b), (a))
#define tfu_x_vd_sel_lt(x, y, a, b) _mm512_mask_blend_pd(_mm512_cmp_pd_mask((x), (y), _CMP_LT_OQ), (b), (a))
#define TFU_X_MR 4   /* micro-kernel: rows of A (weights) */
#define TFU_X_NR 4   /* micro-kernel: rows of B (activations) */
#elif defined(TFU_X_AVX2)
#define TFU_X_VEC 1
#define TFU_X_VW 8
typedef __m256 tfu_x_vf;
#define tfu_x_v_load(p)      _mm256_loadu_ps(p)
#define tfu_x_v_store(p, v)  _mm256_storeu_ps((p), (v))
#define tfu_x_v_set1(x)      _mm256_set1_ps(x)
#define tfu_x_v_add(a, b)    _mm256_add_ps((a), (b))
#define tfu_x_v_sub(a, b)    _mm256_sub_ps((a), (b))
#define tfu_x_v_mul(a, b)    _mm256_mul_ps((a), (b))
#define tfu_x_v_div(a, b)    _mm256_div_ps((a), (b))
#define tfu_x_v_rcp_est(a)   _mm256_rcp_ps(a)                        /* 12 bits */
#define tfu_x_v_fma(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define tfu_x_v_max(a, b)    _mm256_max_ps((a), (b))                 /* either NaN: b */
#define tfu_x_v_min(a, b)    _mm256_min_ps((a), (b))                 /* either NaN: b */
#define tfu_x_v_sqrt(a)      _mm256_sqrt_ps(a)
#define tfu_x_v_abs(a)       _mm256_andnot_ps(_mm256_set1_ps(-0.0f), (a))
static float tfu_x_v_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s)); s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static float tfu_x_v_hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s)); s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#define tfu_x_v_round(a)     _mm256_round_ps((a), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define tfu_x_v_pow2i(n)     _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
#define tfu_x_v_shl23(f)     _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(f), 23))
#define tfu_x_v_zero_below(r, x, lim) _mm256_and_ps((r), _mm256_cmp_ps((x), _mm256_set1_ps(lim), _CMP_NLT_UQ))
#define tfu_x_v_all_below(x, lim) (_mm256_movemask_ps(_mm256_cmp_ps((x), _mm256_set1_ps(lim), _CMP_LT_OQ)) == 0xFF)
#define tfu_x_v_inf_above(r, x, lim) _mm256_blendv_ps((r), _mm256_set1_ps(INFINITY), _mm256_cmp_ps((x), _mm256_set1_ps(lim), _CMP_GT_OQ))
#define tfu_x_v_one_above(r, x, lim) _mm256_blendv_ps((r), _mm256_set1_ps(1.0f), _mm256_cmp_ps((x), _mm256_set1_ps(lim), _CMP_GT_OQ))
#define tfu_x_v_copysign(mag, sgn) _mm256_or_ps((mag), _mm256_and_ps((sgn), _mm256_set1_ps(-0.0f)))
#if defined(__F16C__)
#define tfu_x_v_load_f16(p)  _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#endif
#define tfu_x_v_load_bf16(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p))), 16))
#define tfu_x_v_swap_pairs(a) _mm256_permute_ps((a), 0xB1)
#define TFU_X_VDW 4
typedef __m256d tfu_x_vd;
#define tfu_x_vd_load(p)     _mm256_loadu_pd(p)
#define tfu_x_vd_store(p, v) _mm256_storeu_pd((p), (v))
#define tfu_x_vd_set1(x)     _mm256_set1_pd(x)
#define tfu_x_vd_add(a, b)   _mm256_add_pd((a), (b))
#define tfu_x_vd_sub(a, b)   _mm256_sub_pd((a), (b))
#define tfu_x_vd_mul(a, b)   _mm256_mul_pd((a), (b))
#define tfu_x_vd_floor(a)    _mm256_floor_pd(a)
#define tfu_x_vd_sel_eq(x, y, a, b) _mm256_blendv_pd((b), (a), _mm256_cmp_pd((x), (y), _CMP_EQ_OQ))
#define tfu_x_vd_sel_lt(x, y, a, b) _mm256_blendv_pd((b), (a), _mm256_cmp_pd((x), (y), _CMP_LT_OQ))
#define TFU_X_MR 4
#define TFU_X_NR 2
/* r[0..8) as the rows of an 8x8 block -> its columns (the packed products);
   TFU_X_V_LANES(DO) names each lane index once, so that code over the
   block's rows unrolls with constant indices and stays in registers */
#define TFU_X_VT 1
#define TFU_X_V_LANES(DO) DO(0) DO(1) DO(2) DO(3) DO(4) DO(5) DO(6) DO(7)
#define tfu_x_v_transpose(r) tfu_x_v_transpose8(r)
#elif defined(TFU_X_NEON) && defined(__aarch64__)
#define TFU_X_VEC 1
#define TFU_X_VW 4
typedef float32x4_t tfu_x_vf;
#define tfu_x_v_load(p)      vld1q_f32(p)
#define tfu_x_v_store(p, v)  vst1q_f32((p), (v))
#define tfu_x_v_set1(x)      vdupq_n_f32(x)
#define tfu_x_v_add(a, b)    vaddq_f32((a), (b))
#define tfu_x_v_sub(a, b)    vsubq_f32((a), (b))
#define tfu_x_v_mul(a, b)    vmulq_f32((a), (b))
#define tfu_x_v_div(a, b)    vdivq_f32((a), (b))
#define tfu_x_v_rcp_est(a)   vrecpeq_f32(a)                          /* 8 bits */
#define tfu_x_v_fma(a, b, c) vfmaq_f32((c), (a), (b))
#define tfu_x_v_max(a, b)    vmaxq_f32((a), (b))                     /* either NaN: NaN */
#define tfu_x_v_min(a, b)    vminq_f32((a), (b))                     /* either NaN: NaN */
#define tfu_x_v_sqrt(a)      vsqrtq_f32(a)
#define tfu_x_v_abs(a)       vabsq_f32(a)
#define tfu_x_v_hsum(v)      vaddvq_f32(v)
#define tfu_x_v_hmax(v)      vmaxvq_f32(v)
#define tfu_x_v_round(a)     vrndnq_f32(a)
#define tfu_x_v_pow2i(n)     vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23))
#define tfu_x_v_shl23(f)     vreinterpretq_f32_u32(vshlq_n_u32(vreinterpretq_u32_f32(f), 23))
#define tfu_x_v_zero_below(r, x, lim) vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(r), vcltq_f32((x), vdupq_n_f32(lim))))
#define tfu_x_v_all_below(x, lim) (vminvq_u32(vcltq_f32((x), vdupq_n_f32(lim))) != 0)
#define tfu_x_v_inf_above(r, x, lim) vbslq_f32(vcgtq_f32((x), vdupq_n_f32(lim)), vdupq_n_f32(INFINITY), (r))
#define tfu_x_v_one_above(r, x, lim) vbslq_f32(vcgtq_f32((x), vdupq_n_f32(lim)), vdupq_n_f32(1.0f), (r))
#define tfu_x_v_copysign(mag, sgn) vbslq_f32(vdupq_n_u32(0x80000000u), (sgn), (mag))
#define tfu_x_v_load_f16(p)  vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(const void *)(p))))
#define tfu_x_v_load_bf16(p) vreinterpretq_f32_u32(vshlq_n_u32(vmovl_u16(vld1_u16((const uint16_t *)(const void *)(p))), 16))
#define tfu_x_v_swap_pairs(a) vrev64q_f32(a)
#define TFU_X_VDW 2
typedef float64x2_t tfu_x_vd;
#define tfu_x_vd_load(p)     vld1q_f64(p)
#define tfu_x_vd_store(p, v) vst1q_f64((p), (v))
#define tfu_x_vd_set1(x)     vdupq_n_f64(x)
#define tfu_x_vd_add(a, b)   vaddq_f64((a), (b))
#define tfu_x_vd_sub(a, b)   vsubq_f64((a), (b))
#define tfu_x_vd_mul(a, b)   vmulq_f64((a), (b))
#define tfu_x_vd_floor(a)    vrndmq_f64(a)
#define tfu_x_vd_sel_eq(x, y, a, b) vbslq_f64(vceqq_f64((x), (y)), (a), (b))
#define tfu_x_vd_sel_lt(x, y, a, b) vbslq_f64(vcltq_f64((x), (y)), (a), (b))
#define TFU_X_MR 4
#define TFU_X_NR 4
#define TFU_X_VT 1
#define TFU_X_V_LANES(DO) DO(0) DO(1) DO(2) DO(3)
TFU_X_FORCE_INLINE void tfu_x_v_transpose(float32x4_t *r) {
    float32x4x2_t p0 = vtrnq_f32(r[0], r[1]), p1 = vtrnq_f32(r[2], r[3]);
    r[0] = vcombine_f32(vget_low_f32(p0.val[0]), vget_low_f32(p1.val[0]));
    r[1] = vcombine_f32(vget_low_f32(p0.val[1]), vget_low_f32(p1.val[1]));
    r[2] = vcombine_f32(vget_high_f32(p0.val[0]), vget_high_f32(p1.val[0]));
    r[3] = vcombine_f32(vget_high_f32(p0.val[1]), vget_high_f32(p1.val[1]));
}
#endif

/* gelu in forms that do not cancel for negative x (1 + tanh z and 1 + erf u
   lose every digit below x = -5): 0.5 (1 + tanh z) = sigmoid(2z) and
   1 + erf u = erfc(-u), the forms the SIMD kernels and the shaders use */
static float tfu_x_gelu_f(float x) { return x / (1.0f + expf(-2.0f * 0.7978845608f * (x + 0.044715f * x * x * x))); }
static float tfu_x_gelu_erf_f(float x) { return 0.5f * x * erfcf(x * -0.70710678f); }
static float tfu_x_sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }

#ifdef TFU_X_VEC
/* exp: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2 (n rounded by the
   fma that adds 1.5 * 2^23: n + 126 then sits in the low mantissa bits,
   whose shift is 2^(n-1)), e^r = 1 + r + r^2 P(r) with P of degree 4
   (a relative least-squares fit at Chebyshev nodes on |r| <= 0.35: error
   4e-9, far under f32's rounding; Horner with every coefficient doubled,
   which gives exactly 2 e^r), then 2 e^r * 2^(n-1). x is clamped to
   [-87, 89] first: n = 128 still fits and what lies above 88.72 overflows
   to inf in the last product; at -87 n is -126 and 2^(n-1) is +0, so
   everything below gives exactly 0 (results under 2^-125 flush to 0),
   -inf included. 14 vector operations, within 2 ulp. NaN: both clamps
   take x as their second operand (x86 returns the second operand when
   either is NaN, NEON returns NaN), the polynomial of NaN is NaN and so
   is NaN times any scale. */
TFU_X_FORCE_INLINE tfu_x_vf tfu_x_v_exp(tfu_x_vf x) {
    const float magic = 12582912.0f + 126.0f;   /* 1.5 * 2^23, plus the exponent bias less 1 */
    tfu_x_vf xc = tfu_x_v_max(tfu_x_v_set1(-87.0f), tfu_x_v_min(tfu_x_v_set1(89.0f), x));
    tfu_x_vf f = tfu_x_v_fma(xc, tfu_x_v_set1(1.44269504088896341f), tfu_x_v_set1(magic));
    tfu_x_vf n = tfu_x_v_sub(f, tfu_x_v_set1(magic));
    tfu_x_vf r = tfu_x_v_fma(n, tfu_x_v_set1(-0.693359375f), xc), p;
    r = tfu_x_v_fma(n, tfu_x_v_set1(2.12194440e-4f), r);
    p = tfu_x_v_set1(2.0f * 1.374885207e-3f);
    p = tfu_x_v_fma(p, r, tfu_x_v_set1(2.0f * 8.369619958e-3f));
    p = tfu_x_v_fma(p, r, tfu_x_v_set1(2.0f * 4.166964442e-2f));
    p = tfu_x_v_fma(p, r, tfu_x_v_set1(2.0f * 1.666651219e-1f));
    p = tfu_x_v_fma(p, r, tfu_x_v_set1(2.0f * 4.999998808e-1f));
    p = tfu_x_v_fma(p, r, tfu_x_v_set1(2.0f));
    p = tfu_x_v_fma(p, r, tfu_x_v_set1(2.0f));
    return tfu_x_v_mul(p, tfu_x_v_shl23(f));
}
/* 1/a from the hardware estimate and Newton steps r' = r (2 - a r), each
   doubling the bits: cheaper than a division, within an ulp or two */
TFU_X_FORCE_INLINE tfu_x_vf tfu_x_v_recip(tfu_x_vf a) {
    tfu_x_vf r = tfu_x_v_rcp_est(a), two = tfu_x_v_set1(2.0f);
    r = tfu_x_v_mul(r, tfu_x_v_sub(two, tfu_x_v_mul(a, r)));
#if !defined(TFU_X_AVX512)
    r = tfu_x_v_mul(r, tfu_x_v_sub(two, tfu_x_v_mul(a, r)));
#endif
#if defined(TFU_X_NEON)
    r = tfu_x_v_mul(r, tfu_x_v_sub(two, tfu_x_v_mul(a, r)));
#endif
    return r;
}
/* num / (1 + e^t), the sigmoid family's one form: a division (not the
   estimate and Newton steps, which make NaN of 1/inf) gives what the
   reference gives where e^t is inf (+-0, NaN for an infinite num) or 0
   (num itself); NaN stays NaN */
TFU_X_FORCE_INLINE tfu_x_vf tfu_x_v_over_1pexp(tfu_x_vf num, tfu_x_vf t) {
    return tfu_x_v_div(num, tfu_x_v_add(tfu_x_v_set1(1.0f), tfu_x_v_exp(t)));
}
TFU_X_FORCE_INLINE tfu_x_vf tfu_x_v_sigmoid(tfu_x_vf x) {
    return tfu_x_v_over_1pexp(tfu_x_v_set1(1.0f), tfu_x_v_sub(tfu_x_v_set1(0.0f), x));
}
/* silu = x sigmoid(x) = x / (1 + e^-x): -inf gives -inf / inf = NaN, as
   the reference's -inf * 0 */
TFU_X_FORCE_INLINE tfu_x_vf tfu_x_v_silu(tfu_x_vf x) {
    return tfu_x_v_over_1pexp(x, tfu_x_v_sub(tfu_x_v_set1(0.0f), x));
}
/* tanh(|x|) = 1 - 2 / (e^(2|x|) + 1), sign restored */
TFU_X_FORCE_INLINE tfu_x_vf tfu_x_v_tanh(tfu_x_vf x) {
    tfu_x_vf e = tfu_x_v_exp(tfu_x_v_mul(tfu_x_v_abs(x), tfu_x_v_set1(2.0f)));
    tfu_x_vf t = tfu_x_v_sub(tfu_x_v_set1(1.0f), tfu_x_v_div(tfu_x_v_set1(2.0f), tfu_x_v_add(e, tfu_x_v_set1(1.0f))));
    return tfu_x_v_copysign(t, x);
}
/* gelu (tanh form): 0.5 x (1 + tanh z) == x / (1 + e^-2z), with
   -2z = x (c1 + c3 x^2); for huge |x| x^2 is inf and -2z is -+inf, which
   gives x or -0 as the reference does */
TFU_X_FORCE_INLINE tfu_x_vf tfu_x_v_gelu(tfu_x_vf x) {
    const float c1 = -2.0f * 0.7978845608f;
    tfu_x_vf t = tfu_x_v_mul(x, tfu_x_v_fma(tfu_x_v_mul(x, x), tfu_x_v_set1(c1 * 0.044715f), tfu_x_v_set1(c1)));
    return tfu_x_v_over_1pexp(x, t);
}
/* gelu_erf = 0.5 x (1 + erf u), u = x / sqrt 2, with 1 + erf u formed
   without cancellation: q = erfc |u| = t exp(-u^2 + P(t)), t = 1 / (1 + |u|/2),
   P of degree 9 (the Chebyshev fit in Numerical Recipes, relative error
   < 1.2e-7 for every |u|), then q for u < 0 and 2 - q otherwise (NaN stays) */
TFU_X_FORCE_INLINE tfu_x_vf tfu_x_v_gelu_erf(tfu_x_vf x) {
    tfu_x_vf ax = tfu_x_v_abs(tfu_x_v_mul(x, tfu_x_v_set1(0.70710678f))), t, q;
    t = tfu_x_v_div(tfu_x_v_set1(1.0f), tfu_x_v_fma(ax, tfu_x_v_set1(0.5f), tfu_x_v_set1(1.0f)));
    q = tfu_x_v_set1(0.17087277f);
    q = tfu_x_v_fma(q, t, tfu_x_v_set1(-0.82215223f));
    q = tfu_x_v_fma(q, t, tfu_x_v_set1(1.48851587f));
    q = tfu_x_v_fma(q, t, tfu_x_v_set1(-1.13520398f));
    q = tfu_x_v_fma(q, t, tfu_x_v_set1(0.27886807f));
    q = tfu_x_v_fma(q, t, tfu_x_v_set1(-0.18628806f));
    q = tfu_x_v_fma(q, t, tfu_x_v_set1(0.09678418f));
    q = tfu_x_v_fma(q, t, tfu_x_v_set1(0.37409196f));
    q = tfu_x_v_fma(q, t, tfu_x_v_set1(1.00002368f));
    q = tfu_x_v_fma(q, t, tfu_x_v_set1(-1.26551223f));
    q = tfu_x_v_mul(t, tfu_x_v_exp(tfu_x_v_fma(tfu_x_v_sub(tfu_x_v_set1(0.0f), ax), ax, q)));
    q = tfu_x_v_add(q, tfu_x_v_zero_below(tfu_x_v_fma(q, tfu_x_v_set1(-2.0f), tfu_x_v_set1(2.0f)), x, 0.0f));
    return tfu_x_v_mul(tfu_x_v_mul(x, tfu_x_v_set1(0.5f)), q);
}
#endif

static void tfu_x_k_binary(int simd, tfu_op op, int n, float *d, const float *a, const float *b) {
    int i = 0;
    (void)simd;
#ifdef TFU_X_VEC
    if (simd) {
        switch (op) {
        case TFU_OP_ADD: for (; i + TFU_X_VW <= n; i += TFU_X_VW) tfu_x_v_store(d + i, tfu_x_v_add(tfu_x_v_load(a + i), tfu_x_v_load(b + i))); break;
        case TFU_OP_SUB: for (; i + TFU_X_VW <= n; i += TFU_X_VW) tfu_x_v_store(d + i, tfu_x_v_sub(tfu_x_v_load(a + i), tfu_x_v_load(b + i))); break;
        case TFU_OP_MUL: for (; i + TFU_X_VW <= n; i += TFU_X_VW) tfu_x_v_store(d + i, tfu_x_v_mul(tfu_x_v_load(a + i), tfu_x_v_load(b + i))); break;
        default:         for (; i + TFU_X_VW <= n; i += TFU_X_VW) tfu_x_v_store(d + i, tfu_x_v_div(tfu_x_v_load(a + i), tfu_x_v_load(b + i))); break;
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

static void tfu_x_k_unary(int simd, tfu_op op, int n, float *d, const float *a, const float *p) {
    int i = 0;
    (void)simd;
#ifdef TFU_X_VEC
    if (simd) {
        tfu_x_vf p0 = tfu_x_v_set1(p[0]), p1 = tfu_x_v_set1(p[1]);
        switch (op) {
#define TFU_X_VLOOP(expr) for (; i + TFU_X_VW <= n; i += TFU_X_VW) { tfu_x_vf x = tfu_x_v_load(a + i); tfu_x_v_store(d + i, (expr)); } break
        case TFU_OP_SCALE: TFU_X_VLOOP(tfu_x_v_fma(x, p0, p1));
        case TFU_OP_CLAMP: TFU_X_VLOOP(tfu_x_v_min(p1, tfu_x_v_max(p0, x)));   /* x second: NaN stays NaN */
        case TFU_OP_NEG: TFU_X_VLOOP(tfu_x_v_sub(tfu_x_v_set1(0.0f), x));
        case TFU_OP_ABS: TFU_X_VLOOP(tfu_x_v_abs(x));
        case TFU_OP_SQR: TFU_X_VLOOP(tfu_x_v_mul(x, x));
        case TFU_OP_SQRT: TFU_X_VLOOP(tfu_x_v_sqrt(x));
        case TFU_OP_EXP: TFU_X_VLOOP(tfu_x_v_exp(x));
        case TFU_OP_TANH: TFU_X_VLOOP(tfu_x_v_tanh(x));
        case TFU_OP_SIGMOID: TFU_X_VLOOP(tfu_x_v_sigmoid(x));
        case TFU_OP_RELU: TFU_X_VLOOP(tfu_x_v_max(tfu_x_v_set1(0.0f), x));   /* x second: NaN stays NaN */
        case TFU_OP_GELU: TFU_X_VLOOP(tfu_x_v_gelu(x));
        case TFU_OP_GELU_ERF: TFU_X_VLOOP(tfu_x_v_gelu_erf(x));
        case TFU_OP_SILU: TFU_X_VLOOP(tfu_x_v_silu(x));
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
    case TFU_OP_RELU: for (; i < n; i++) d[i] = a[i] < 0.0f ? 0.0f : a[i]; break;   /* NaN stays NaN */
    case TFU_OP_GELU: for (; i < n; i++) d[i] = tfu_x_gelu_f(a[i]); break;
    case TFU_OP_GELU_ERF: for (; i < n; i++) d[i] = tfu_x_gelu_erf_f(a[i]); break;
    case TFU_OP_SILU: for (; i < n; i++) d[i] = a[i] * tfu_x_sigmoid_f(a[i]); break;
    default: if (d != a) memmove(d + i, a + i, (size_t)(n - i) * sizeof(float)); break;  /* CONT, CPY */
    }
}

/* GLU: d = act(g) * v. Where g or v is infinite, the product depends on
   whether act(g) is 0 or a value below f32's range (0 * inf is NaN,
   1e-48 * inf is inf), so those elements take the reference's double. The
   loops find them for free: x * 0 is 0 for a finite x and NaN otherwise,
   summed into a flag. */
static void tfu_x_k_glu(int simd, int kind, int n, float *d, const float *g, const float *v) {
    int i = 0, tail;
    float special = 0.0f;
    (void)simd;
#ifdef TFU_X_VEC
    if (simd) {
        tfu_x_vf zero = tfu_x_v_set1(0.0f), flag = zero;
        for (; i + TFU_X_VW <= n; i += TFU_X_VW) {
            tfu_x_vf x = tfu_x_v_load(g + i), val = tfu_x_v_load(v + i), a;
            switch (kind) {
            case TFU_GLU_REGLU: a = tfu_x_v_max(tfu_x_v_set1(0.0f), x); break;   /* x second: NaN stays NaN */
            case TFU_GLU_GEGLU: a = tfu_x_v_gelu(x); break;
            case TFU_GLU_GEGLU_ERF: a = tfu_x_v_gelu_erf(x); break;
            default: a = tfu_x_v_silu(x); break;
            }
            flag = tfu_x_v_fma(x, zero, tfu_x_v_fma(val, zero, flag));
            tfu_x_v_store(d + i, tfu_x_v_mul(a, val));
        }
        special = tfu_x_v_hsum(flag);
    }
#endif
    tail = i;
    switch (kind) {
    case TFU_GLU_REGLU: for (; i < n; i++) d[i] = (g[i] < 0.0f ? 0.0f : g[i]) * v[i]; break;   /* NaN stays NaN */
    case TFU_GLU_GEGLU: for (; i < n; i++) d[i] = tfu_x_gelu_f(g[i]) * v[i]; break;
    case TFU_GLU_GEGLU_ERF: for (; i < n; i++) d[i] = tfu_x_gelu_erf_f(g[i]) * v[i]; break;
    default: for (; i < n; i++) d[i] = g[i] * tfu_x_sigmoid_f(g[i]) * v[i]; break;
    }
    for (i = tail; i < n; i++) special += g[i] * 0.0f + v[i] * 0.0f;
    if (special != special)
        for (i = 0; i < n; i++)
            if (isinf(v[i]) || isinf(g[i])) d[i] = (float)tfu_x_glu_d(kind, g[i], v[i]);
}

/* Row reductions accumulate in f32 lanes: 8 partial sums on the scalar
   path, vector lanes on the SIMD path (then the tail). The f32 result of a
   row is used only where it can be trusted; a row whose partial results
   overflowed, whose squares underflowed, or that holds inf or NaN, is
   computed again in double exactly as the reference executor computes it
   (tfu_x_k_*_d below). Such rows are rare, the check is one comparison. */

static float tfu_x_k_sumsq(int simd, int n, const float *a) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0}, r = 0;
    int i = 0, j;
    (void)simd;
#ifdef TFU_X_VEC
    if (simd) {
        tfu_x_vf acc0 = tfu_x_v_set1(0.0f), acc1 = tfu_x_v_set1(0.0f);
        for (; i + 2 * TFU_X_VW <= n; i += 2 * TFU_X_VW) {
            tfu_x_vf x0 = tfu_x_v_load(a + i), x1 = tfu_x_v_load(a + i + TFU_X_VW);
            acc0 = tfu_x_v_fma(x0, x0, acc0); acc1 = tfu_x_v_fma(x1, x1, acc1);
        }
        r = tfu_x_v_hsum(tfu_x_v_add(acc0, acc1));
    }
#endif
    for (; i + 8 <= n; i += 8) for (j = 0; j < 8; j++) s[j] += a[i + j] * a[i + j];
    for (; i < n; i++) r += a[i] * a[i];
    for (j = 0; j < 8; j++) r += s[j];
    return r;
}
/* deviations from m: returns the sum of (a[i] - m)^2, *dev the sum of
   (a[i] - m) (what the rounded mean m is off by, times n) */
static float tfu_x_k_sumsq_dev(int simd, int n, const float *a, float m, float *dev) {
    float s[4] = {0, 0, 0, 0}, c[4] = {0, 0, 0, 0}, r = 0, rc = 0;
    int i = 0, j;
    (void)simd;
#ifdef TFU_X_VEC
    if (simd) {
        tfu_x_vf acc0 = tfu_x_v_set1(0.0f), acc1 = acc0, dev0 = acc0, dev1 = acc0, vm = tfu_x_v_set1(m);
        for (; i + 2 * TFU_X_VW <= n; i += 2 * TFU_X_VW) {
            tfu_x_vf x0 = tfu_x_v_sub(tfu_x_v_load(a + i), vm);
            tfu_x_vf x1 = tfu_x_v_sub(tfu_x_v_load(a + i + TFU_X_VW), vm);
            acc0 = tfu_x_v_fma(x0, x0, acc0);
            acc1 = tfu_x_v_fma(x1, x1, acc1);
            dev0 = tfu_x_v_add(dev0, x0);
            dev1 = tfu_x_v_add(dev1, x1);
        }
        r = tfu_x_v_hsum(tfu_x_v_add(acc0, acc1));
        rc = tfu_x_v_hsum(tfu_x_v_add(dev0, dev1));
    }
#endif
    for (; i + 4 <= n; i += 4)
        for (j = 0; j < 4; j++) {
            float x = a[i + j] - m;
            s[j] += x * x;
            c[j] += x;
        }
    for (; i < n; i++) {
        float x = a[i] - m;
        r += x * x;
        rc += x;
    }
    for (j = 0; j < 4; j++) {
        r += s[j];
        rc += c[j];
    }
    *dev = rc;
    return r;
}
static float tfu_x_k_sum(int simd, int n, const float *a) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0}, r = 0;
    int i = 0, j;
    (void)simd;
#ifdef TFU_X_VEC
    if (simd) {
        tfu_x_vf acc0 = tfu_x_v_set1(0.0f), acc1 = tfu_x_v_set1(0.0f);
        for (; i + 2 * TFU_X_VW <= n; i += 2 * TFU_X_VW) { acc0 = tfu_x_v_add(acc0, tfu_x_v_load(a + i)); acc1 = tfu_x_v_add(acc1, tfu_x_v_load(a + i + TFU_X_VW)); }
        r = tfu_x_v_hsum(tfu_x_v_add(acc0, acc1));
    }
#endif
    for (; i + 8 <= n; i += 8) for (j = 0; j < 8; j++) s[j] += a[i + j];
    for (; i < n; i++) r += a[i];
    for (j = 0; j < 8; j++) r += s[j];
    return r;
}

/* inf and NaN fail both tests (an overflowed partial result ends as one) */
static int tfu_x_finite(float v) { return v >= -FLT_MAX && v <= FLT_MAX; }
/* a mean square (+ eps) below FLT_MIN summed squares that underflowed: each
   lost up to 2^-150, n of them at most 2^-24 of n * FLT_MIN */
static int tfu_x_ms_ok(float v) { return v >= FLT_MIN && v <= FLT_MAX; }

/* the rows the f32 path cannot be trusted with, in double: the reference
   executor's formulas in its order, so the results are the same */
static double tfu_x_k_sum_d(int n, const float *a) {
    double s = 0;
    int i;
    for (i = 0; i < n; i++) s += (double)a[i];
    return s;
}
static void tfu_x_k_norm_d(int n, float *d, const float *a, float eps, int centre) {
    double mean = centre ? tfu_x_k_sum_d(n, a) / (double)n : 0.0, s2 = 0, scale;
    int i;
    for (i = 0; i < n; i++) {
        double x = (double)a[i] - mean;
        s2 += x * x;
    }
    scale = 1.0 / sqrt(s2 / (double)n + (double)eps);
    for (i = 0; i < n; i++) d[i] = (float)(((double)a[i] - mean) * scale);
}
static void tfu_x_k_soft_max_d(int n, float *d, const float *a, const float *mask, float scale) {
    double mx = -INFINITY, e = 0;
    int i;
    for (i = 0; i < n; i++) {
        double x = (double)a[i] * (double)scale;
        if (mask) x += (double)mask[i];
        if (x > mx) mx = x;
    }
    for (i = 0; i < n; i++) {
        double x = (double)a[i] * (double)scale;
        if (mask) x += (double)mask[i];
        e += exp(x - mx);
    }
    for (i = 0; i < n; i++) {
        double x = (double)a[i] * (double)scale;
        if (mask) x += (double)mask[i];
        d[i] = (float)(exp(x - mx) / e);
    }
}

/* d = a / sqrt(mean(a^2) + eps); d may be a */
static void tfu_x_k_rms_norm(int simd, int n, float *d, const float *a, float eps) {
    float ms = tfu_x_k_sumsq(simd, n, a) / (float)n + eps;
    float p[2];
    if (!tfu_x_ms_ok(ms)) {
        tfu_x_k_norm_d(n, d, a, eps, 0);
        return;
    }
    p[0] = 1.0f / sqrtf(ms);
    p[1] = 0.0f;
    tfu_x_k_unary(simd, TFU_OP_SCALE, n, d, a, p);
}

/* d = (a - mean) / sqrt(var + eps): three reads of a, one write; d may be
   a. The corrected two-pass form: the f32 mean m is off by dev/n, which
   the variance and the output take back, so a row whose mean is far from
   zero against its spread keeps the accuracy of its deviations. */
static void tfu_x_k_norm(int simd, int n, float *d, const float *a, float eps) {
    float m = tfu_x_k_sum(simd, n, a) / (float)n, dev, var, cm, sc;
    int i = 0;
    if (!tfu_x_finite(m)) {
        tfu_x_k_norm_d(n, d, a, eps, 1);
        return;
    }
    var = tfu_x_k_sumsq_dev(simd, n, a, m, &dev);
    cm = dev / (float)n;
    var = (var - dev * cm) / (float)n + eps;
    if (!tfu_x_ms_ok(var)) {
        tfu_x_k_norm_d(n, d, a, eps, 1);
        return;
    }
    sc = 1.0f / sqrtf(var);
#ifdef TFU_X_VEC
    if (simd) {
        tfu_x_vf vm = tfu_x_v_set1(m), vc = tfu_x_v_set1(cm), vs = tfu_x_v_set1(sc);
        for (; i + TFU_X_VW <= n; i += TFU_X_VW) tfu_x_v_store(d + i, tfu_x_v_mul(tfu_x_v_sub(tfu_x_v_sub(tfu_x_v_load(a + i), vm), vc), vs));
    }
#endif
    for (; i < n; i++) d[i] = ((a[i] - m) - cm) * sc;
}

/* softmax rows whose largest value exceeds this in magnitude (or is inf or
   NaN) run in double: above it, rounding a*scale + mask to f32 moves the
   exponents by more than ~1e-4, and a*scale may overflow f32 */
#define TFU_X_SOFT_MAX_BIG 1024.0f

/* a prefetch into every cache level of data this thread reads (w 0) or
   writes (w 1) soon, and the address n floats after p (an integer sum: it
   may lie past p's array, which a prefetch does not mind) */
#if defined(__GNUC__)
#define TFU_X_PREFETCH_T0(p, w) __builtin_prefetch((p), (w), 3)
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#define TFU_X_PREFETCH_T0(p, w) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#else
#define TFU_X_PREFETCH_T0(p, w) ((void)0)
#endif
TFU_X_FORCE_INLINE const void *tfu_x_floats_after(const float *p, int n) { return (const void *)((uintptr_t)p + (uintptr_t)n * sizeof(float)); }

/* d = softmax(a*scale + mask); mask may be NULL; d may be a or mask. Three
   passes over a row that sits in L1/L2: the max, exp and sum, scale. The
   first pass writes x = a*scale + mask (a product, then a sum: the f32
   operations of a scale and an add before the softmax) to d when d is
   neither input, so that the second reads one row; where d is an input the
   second computes x again. Vectors whose every x - max is below -87, the
   masked-out part of a causal mask, store the 0 that exp gives there
   without computing it. While exp keeps the core busy, the second pass
   prefetches the n floats after a and d: the next row of a contiguous
   tensor, which the next first pass then finds in cache instead of
   waiting on memory (W5 on one thread: ~30 % less time; elsewhere a
   wasted slot). A NaN anywhere makes the sum NaN and so every
   output NaN, as in the reference; a row without one sums to at least 1
   (the maximum's exp(0)). */
static void tfu_x_k_soft_max(int simd, int n, float *d, const float *a, const float *mask, float scale) {
    float mx = -INFINITY, sum = 0, p[2];
    int i = 0, keep = d != a && d != mask;
#ifdef TFU_X_VEC
    if (simd) {
        tfu_x_vf vs = tfu_x_v_set1(scale), vm = tfu_x_v_set1(-INFINITY);
        for (; i + TFU_X_VW <= n; i += TFU_X_VW) {
            tfu_x_vf x = tfu_x_v_mul(tfu_x_v_load(a + i), vs);
            if (mask) x = tfu_x_v_add(x, tfu_x_v_load(mask + i));
            if (keep) tfu_x_v_store(d + i, x);
            vm = tfu_x_v_max(vm, x);
        }
        mx = tfu_x_v_hmax(vm);
    }
#endif
    for (; i < n; i++) {
        float x = a[i] * scale + (mask ? mask[i] : 0.0f);
        if (keep) d[i] = x;
        if (x > mx) mx = x;
    }
    if (!(mx >= -TFU_X_SOFT_MAX_BIG && mx <= TFU_X_SOFT_MAX_BIG)) {
        tfu_x_k_soft_max_d(n, d, a, mask, scale);
        return;
    }
    i = 0;
#ifdef TFU_X_VEC
    if (simd) {
        tfu_x_vf vs = tfu_x_v_set1(scale), vm = tfu_x_v_set1(mx), acc = tfu_x_v_set1(0.0f);
        for (; i + TFU_X_VW <= n; i += TFU_X_VW) {
            tfu_x_vf x, e;
            if (keep) {
                x = tfu_x_v_load(d + i);
            } else {
                x = tfu_x_v_mul(tfu_x_v_load(a + i), vs);
                if (mask) x = tfu_x_v_add(x, tfu_x_v_load(mask + i));
            }
            x = tfu_x_v_sub(x, vm);
            TFU_X_PREFETCH_T0(tfu_x_floats_after(a + i, n), 0);
            TFU_X_PREFETCH_T0(tfu_x_floats_after(d + i, n), 1);
            if (tfu_x_v_all_below(x, -87.0f)) {
                tfu_x_v_store(d + i, tfu_x_v_set1(0.0f));
                continue;
            }
            e = tfu_x_v_exp(x);
            tfu_x_v_store(d + i, e);
            acc = tfu_x_v_add(acc, e);
        }
        sum = tfu_x_v_hsum(acc);
    }
#endif
    for (; i < n; i++) {
        float x = keep ? d[i] : a[i] * scale + (mask ? mask[i] : 0.0f);
        float e = expf(x - mx);
        d[i] = e;
        sum += e;
    }
    p[0] = 1.0f / sum;
    p[1] = 0.0f;
    tfu_x_k_unary(simd, TFU_OP_SCALE, n, d, d, p);
}

#ifdef TFU_X_VEC
/* DO(j) for each of a block's 32 / VW vectors, written out: constant
   indices keep the block's vectors in registers at -O2 too (which unrolls
   no loop: the exact Q8_0 kernel ran at 40 % of its -O3 speed) */
#if TFU_X_VW == 16
#define TFU_X_QV(DO) DO(0) DO(1)
#elif TFU_X_VW == 8
#define TFU_X_QV(DO) DO(0) DO(1) DO(2) DO(3)
#else
#define TFU_X_QV(DO) DO(0) DO(1) DO(2) DO(3) DO(4) DO(5) DO(6) DO(7)
#endif
/* one quantized block (layouts in the type's comment, >>api) to 32 / VW
   vectors: int8 (a Q4_0 nibble less 8) to int32 to f32, times the block's
   scale; exact, as d * q is in f32 */
#if defined(TFU_X_AVX512) || defined(TFU_X_AVX2)
TFU_X_FORCE_INLINE float tfu_x_v_ld_scale(const unsigned char *blk) {   /* the block's f16 d */
#if defined(__F16C__)
    uint16_t h;
    memcpy(&h, blk, 2);
    return _cvtsh_ss(h);
#else
    return tfu_x_ld_f16(blk);
#endif
}
#endif
#if defined(TFU_X_AVX512)
TFU_X_FORCE_INLINE void tfu_x_v_deq(tfu_type type, const unsigned char *blk, tfu_x_vf *w) {
    __m512 dv = _mm512_set1_ps(tfu_x_v_ld_scale(blk));
    __m128i q0, q1;
    if (type == TFU_Q8_0) {
        q0 = _mm_loadu_si128((const __m128i *)(const void *)(blk + 2));
        q1 = _mm_loadu_si128((const __m128i *)(const void *)(blk + 18));
    } else {
        __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)(blk + 2)), m = _mm_set1_epi8(0x0F), e = _mm_set1_epi8(8);
        q0 = _mm_sub_epi8(_mm_and_si128(raw, m), e);
        q1 = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), m), e);
    }
    w[0] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0)), dv);
    w[1] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1)), dv);
}
#elif defined(TFU_X_AVX2)
TFU_X_FORCE_INLINE void tfu_x_v_deq(tfu_type type, const unsigned char *blk, tfu_x_vf *w) {
    __m256 dv = _mm256_set1_ps(tfu_x_v_ld_scale(blk));
    __m128i q[4];
    if (type == TFU_Q8_0) {
#define TFU_X_DEQ_LD(j) q[j] = _mm_loadl_epi64((const __m128i *)(const void *)(blk + 2 + 8 * (j)));
        TFU_X_QV(TFU_X_DEQ_LD)
#undef TFU_X_DEQ_LD
    } else {
        __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)(blk + 2)), m = _mm_set1_epi8(0x0F), e = _mm_set1_epi8(8);
        __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, m), e), hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), m), e);
        q[0] = lo;
        q[1] = _mm_srli_si128(lo, 8);
        q[2] = hi;
        q[3] = _mm_srli_si128(hi, 8);
    }
#define TFU_X_DEQ_CVT(j) w[j] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q[j])), dv);
    TFU_X_QV(TFU_X_DEQ_CVT)
#undef TFU_X_DEQ_CVT
}
#else
TFU_X_FORCE_INLINE void tfu_x_v_deq16(int8x16_t q, float32x4_t dv, float32x4_t *w) {
    int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_s8(vget_high_s8(q));
    w[0] = vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), dv);
    w[1] = vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo))), dv);
    w[2] = vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), dv);
    w[3] = vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi))), dv);
}
TFU_X_FORCE_INLINE void tfu_x_v_deq(tfu_type type, const unsigned char *blk, tfu_x_vf *w) {
    float32x4_t dv = vdupq_n_f32(tfu_x_ld_f16(blk));
    if (type == TFU_Q8_0) {
        tfu_x_v_deq16(vld1q_s8((const int8_t *)(const void *)(blk + 2)), dv, w);
        tfu_x_v_deq16(vld1q_s8((const int8_t *)(const void *)(blk + 18)), dv, w + 4);
    } else {
        uint8x16_t raw = vld1q_u8(blk + 2);
        int8x16_t e = vdupq_n_s8(8);
        tfu_x_v_deq16(vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0F))), e), dv, w);
        tfu_x_v_deq16(vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), e), dv, w + 4);
    }
}
#endif
#endif

/* nblk quantized blocks at src to 32 * nblk f32 at d, exactly: each q to
   f32, times the block's scale (d * q is exact in f32) */
static void tfu_x_k_dequant(int simd, tfu_type type, int nblk, float *d, const char *src) {
    size_t bs = tfu_type_size(type);
    int b, j;
    (void)simd;
    for (b = 0; b < nblk; b++) {
        const unsigned char *blk = (const unsigned char *)src + (size_t)b * bs;
        float *o = d + (size_t)b * TFU_X_QK;
#ifdef TFU_X_VEC
        if (simd) {
            tfu_x_vf w[TFU_X_QK / TFU_X_VW];
            tfu_x_v_deq(type, blk, w);
#define TFU_X_DEQ_ST(j) tfu_x_v_store(o + (j) * TFU_X_VW, w[j]);
            TFU_X_QV(TFU_X_DEQ_ST)
#undef TFU_X_DEQ_ST
            continue;
        }
#endif
        for (j = 0; j < TFU_X_QK; j++) o[j] = tfu_x_ld_q(type, blk, j);
    }
}

/* Converts n values of any float type at stride `stride` bytes to f32; a
   quantized row (n a multiple of 32, src a block boundary, stride the
   block's bytes) is dequantized exactly. */
static void tfu_x_k_load(int simd, tfu_type type, int n, float *d, const char *src, size_t stride) {
    int i = 0;
    (void)simd;
    if (type == TFU_F32 && stride == 4) { memcpy(d, src, (size_t)n * 4); return; }
    if (tfu_x_is_quant(type)) {
        tfu_x_k_dequant(simd, type, n / TFU_X_QK, d, src);
        return;
    }
#if defined(TFU_X_VEC) && defined(tfu_x_v_load_f16)
    if (simd && type == TFU_F16 && stride == 2)
        for (; i + TFU_X_VW <= n; i += TFU_X_VW) tfu_x_v_store(d + i, tfu_x_v_load_f16(src + (size_t)i * 2));
#endif
#if defined(TFU_X_VEC)
    if (simd && type == TFU_BF16 && stride == 2)
        for (; i + TFU_X_VW <= n; i += TFU_X_VW) tfu_x_v_store(d + i, tfu_x_v_load_bf16(src + (size_t)i * 2));
#endif
    for (; i < n; i++) d[i] = tfu_x_ld(type, src + (size_t)i * stride);
}

static void tfu_x_k_store(tfu_type type, int n, char *dst, size_t stride, const float *s) {
    int i;
    if (type == TFU_F32 && stride == 4) { if ((const void *)dst != (const void *)s) memcpy(dst, s, (size_t)n * 4); return; }
    for (i = 0; i < n; i++) tfu_x_st(type, dst + (size_t)i * stride, s[i]);
}

/* sin and cos of x in double, for rope's tables: x = k pi/2 + r with pi/2
   in three parts of 33 bits (k * part exact for |k| < 2^20, so r is good to
   an ulp for |x| < 2^19 pi/2), then fdlibm's kernel polynomials on
   [-pi/4, pi/4] (Estrin's scheme: three levels, not Horner's six, so that
   the entries of a table overlap in the pipeline). Within an ulp or two of
   double, so that rounded to f32 they give what (float)sin(x),
   (float)cos(x) give; larger |x| (positions near a million) take libm's.
   The vector twin below does the same operations in the same order. */
#define TFU_X_SINCOS_MAX 823549.0   /* 2^19 pi/2 */
#define TFU_X_SIN_POLY(z, z2, z4) ((-1.66666666666666324348e-01 + (z) * 8.33333333332248946124e-03) \
        + (z2) * (-1.98412698298579493134e-04 + (z) * 2.75573137070700676789e-06)               \
        + (z4) * (-2.50507602534068634195e-08 + (z) * 1.58969099521155010221e-10))
#define TFU_X_COS_POLY(z, z2, z4) ((4.16666666666666019037e-02 + (z) * -1.38888888888741095749e-03) \
        + (z2) * (2.48015872894767294178e-05 + (z) * -2.75573143513906633035e-07)               \
        + (z4) * (2.08757232129817482790e-09 + (z) * -1.13596475577881948265e-11))
static void tfu_x_sincos_d(double x, double *s, double *c) {
    static const double sign[2] = { 1.0, -1.0 };
    double k, r, z, z2, z4, v[2];
    int q;
    if (!(fabs(x) < TFU_X_SINCOS_MAX)) {
        *s = sin(x);
        *c = cos(x);
        return;
    }
    k = floor(x * 0.63661977236758134308 + 0.5);
    r = x - k * 1.57079632673412561417e+00;
    r = r - k * 6.07710050630396597660e-11;
    r = r - k * 2.02226624871116645580e-21;
    z = r * r;
    z2 = z * z;
    z4 = z2 * z2;
    v[0] = r + r * z * TFU_X_SIN_POLY(z, z2, z4);
    v[1] = 1.0 - 0.5 * z + z2 * TFU_X_COS_POLY(z, z2, z4);
    /* quadrant q = k mod 4 (two's complement: negative k too) picks and
       signs: (s, c) = (v0, v1), (v1, -v0), (-v0, -v1), (-v1, v0); by
       index, not by branch, as q follows the position */
    q = (int)k & 3;
    *s = v[q & 1] * sign[q >> 1];
    *c = v[(q & 1) ^ 1] * sign[((q + 1) >> 1) & 1];
}

#if defined(TFU_X_VEC) && defined(TFU_X_VDW)
/* TFU_X_VDW entries of tfu_x_sincos_d for |x| < TFU_X_SINCOS_MAX: the
   quadrant as a double, q = k - 4 floor(k/4), odd = q - 2 floor(q/2) */
TFU_X_FORCE_INLINE void tfu_x_vd_sincos(const double *x, double *s, double *c) {
    tfu_x_vd xv = tfu_x_vd_load(x), k, r, z, z2, z4, v0, v1, q, odd, sv, cv, one = tfu_x_vd_set1(1.0), q15;
    k = tfu_x_vd_floor(tfu_x_vd_add(tfu_x_vd_mul(xv, tfu_x_vd_set1(0.63661977236758134308)), tfu_x_vd_set1(0.5)));
    r = tfu_x_vd_sub(xv, tfu_x_vd_mul(k, tfu_x_vd_set1(1.57079632673412561417e+00)));
    r = tfu_x_vd_sub(r, tfu_x_vd_mul(k, tfu_x_vd_set1(6.07710050630396597660e-11)));
    r = tfu_x_vd_sub(r, tfu_x_vd_mul(k, tfu_x_vd_set1(2.02226624871116645580e-21)));
    z = tfu_x_vd_mul(r, r);
    z2 = tfu_x_vd_mul(z, z);
    z4 = tfu_x_vd_mul(z2, z2);
#define TFU_X_VD_POLY(c0, c1, c2, c3, c4, c5)                                                          \
    tfu_x_vd_add(tfu_x_vd_add(tfu_x_vd_add(tfu_x_vd_set1(c0), tfu_x_vd_mul(z, tfu_x_vd_set1(c1))),     \
                              tfu_x_vd_mul(z2, tfu_x_vd_add(tfu_x_vd_set1(c2), tfu_x_vd_mul(z, tfu_x_vd_set1(c3))))), \
                 tfu_x_vd_mul(z4, tfu_x_vd_add(tfu_x_vd_set1(c4), tfu_x_vd_mul(z, tfu_x_vd_set1(c5)))))
    v0 = tfu_x_vd_add(r, tfu_x_vd_mul(tfu_x_vd_mul(r, z), TFU_X_VD_POLY(-1.66666666666666324348e-01, 8.33333333332248946124e-03,
        -1.98412698298579493134e-04, 2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10)));
    v1 = tfu_x_vd_add(tfu_x_vd_sub(one, tfu_x_vd_mul(tfu_x_vd_set1(0.5), z)), tfu_x_vd_mul(z2, TFU_X_VD_POLY(4.16666666666666019037e-02,
        -1.38888888888741095749e-03, 2.48015872894767294178e-05, -2.75573143513906633035e-07, 2.08757232129817482790e-09,
        -1.13596475577881948265e-11)));
#undef TFU_X_VD_POLY
    q = tfu_x_vd_sub(k, tfu_x_vd_mul(tfu_x_vd_set1(4.0), tfu_x_vd_floor(tfu_x_vd_mul(k, tfu_x_vd_set1(0.25)))));
    odd = tfu_x_vd_sub(q, tfu_x_vd_mul(tfu_x_vd_set1(2.0), tfu_x_vd_floor(tfu_x_vd_mul(q, tfu_x_vd_set1(0.5)))));
    sv = tfu_x_vd_sel_eq(odd, one, v1, v0);
    cv = tfu_x_vd_sel_eq(odd, one, v0, v1);
    sv = tfu_x_vd_sel_lt(q, tfu_x_vd_set1(2.0), sv, tfu_x_vd_mul(sv, tfu_x_vd_set1(-1.0)));    /* q 2, 3: -s */
    q15 = tfu_x_vd_sub(q, tfu_x_vd_set1(1.5));
    cv = tfu_x_vd_sel_lt(tfu_x_vd_mul(q15, q15), one, tfu_x_vd_mul(cv, tfu_x_vd_set1(-1.0)), cv);  /* q 1, 2: -c */
    tfu_x_vd_store(s, sv);
    tfu_x_vd_store(c, cv);
}
#endif

/* Rope's table for one position, shared by every head of the token:
   theta_i = pos * freq[i] (freq[i] = base^(-2i/nd), computed once at
   compile), cos and sin rounded to f32. Laid out as the rotation reads it:
   NORMAL rotates adjacent pairs, so tc = (c0, c0, c1, c1, ...) and
   ts = (-s0, s0, -s1, s1, ...); NEOX rotates x[i] with x[i + nd/2], so
   tc = (c0, c1, ...), ts = (s0, s1, ...), nd/2 of each. */
static void tfu_x_rope_table(int simd, int nd, int neox, const double *freq, int32_t pos, float *tc, float *ts) {
    double th[64], sn[64], cs[64];
    int i0, i, n, big = 0;   /* big: an angle for libm (tfu_x_sincos_d) */
    (void)simd;
    for (i0 = 0; i0 < nd / 2; i0 += 64) {   /* 64 entries at a time: theta, sin and cos, then the layout */
        n = nd / 2 - i0 < 64 ? nd / 2 - i0 : 64;
        for (i = 0; i < n; i++) {
            th[i] = (double)pos * freq[i0 + i];
            big = big || !(fabs(th[i]) < TFU_X_SINCOS_MAX);
        }
        i = 0;
#if defined(TFU_X_VEC) && defined(TFU_X_VDW)
        if (simd && !big)
            for (; i + TFU_X_VDW <= n; i += TFU_X_VDW) tfu_x_vd_sincos(th + i, sn + i, cs + i);
#endif
        for (; i < n; i++) tfu_x_sincos_d(th[i], &sn[i], &cs[i]);
        for (i = 0; i < n; i++) {
            int j = i0 + i;
            if (neox) {
                tc[j] = (float)cs[i];
                ts[j] = (float)sn[i];
            } else {
                tc[2 * j] = (float)cs[i];
                tc[2 * j + 1] = (float)cs[i];
                ts[2 * j] = -(float)sn[i];
                ts[2 * j + 1] = (float)sn[i];
            }
        }
    }
}

/* d[0..nd) = x[0..nd) rotated by a table of tfu_x_rope_table; d may be x.
   d0 = x0 c - x1 s, d1 = x1 c + x0 s: the vector body rounds as the
   scalar tail does (two products, one sum), so both give the same bits. */
static void tfu_x_k_rope(int simd, int nd, int neox, float *d, const float *x, const float *tc, const float *ts) {
    int i = 0, h = nd / 2;
    (void)simd;
    if (neox) {
#ifdef TFU_X_VEC
        if (simd)
            for (; i + TFU_X_VW <= h; i += TFU_X_VW) {
                tfu_x_vf x0 = tfu_x_v_load(x + i), x1 = tfu_x_v_load(x + h + i);
                tfu_x_vf c = tfu_x_v_load(tc + i), s = tfu_x_v_load(ts + i);
                tfu_x_v_store(d + i, tfu_x_v_sub(tfu_x_v_mul(x0, c), tfu_x_v_mul(x1, s)));
                tfu_x_v_store(d + h + i, tfu_x_v_add(tfu_x_v_mul(x0, s), tfu_x_v_mul(x1, c)));
            }
#endif
        for (; i < h; i++) {
            float x0 = x[i], x1 = x[h + i];
            d[i] = x0 * tc[i] - x1 * ts[i];
            d[h + i] = x0 * ts[i] + x1 * tc[i];
        }
        return;
    }
#ifdef TFU_X_VEC
    if (simd)
        for (; i + TFU_X_VW <= nd; i += TFU_X_VW) {
            tfu_x_vf v = tfu_x_v_load(x + i);
            tfu_x_v_store(d + i, tfu_x_v_add(tfu_x_v_mul(v, tfu_x_v_load(tc + i)), tfu_x_v_mul(tfu_x_v_swap_pairs(v), tfu_x_v_load(ts + i))));
        }
#endif
    for (; i < nd; i += 2) {
        float x0 = x[i], x1 = x[i + 1];
        d[i] = x0 * tc[i] + x1 * ts[i];
        d[i + 1] = x1 * tc[i + 1] + x0 * ts[i + 1];
    }
}

/* Matrix-product kernel: c[j*ldc + i] = dot(a_i, b_j) over k for na rows of
   A (weights, any float type, contiguous rows) and nb rows of B (f32). The
   scalar path wants f32 rows of A (the caller converts); the SIMD path reads
   f16/bf16 rows directly, converting in registers, so weights stream from
   memory once at their own width. Register tile: MR rows of A x NR rows of
   B, each a vector accumulator over k. */
#ifdef TFU_X_VEC
static tfu_x_vf tfu_x_v_ld_any(tfu_type t, const void *p, int l) {
    if (t == TFU_F32) return tfu_x_v_load((const float *)p + l);
#if defined(tfu_x_v_load_f16)
    if (t == TFU_F16) return tfu_x_v_load_f16((const uint16_t *)p + l);
#endif
    return tfu_x_v_load_bf16((const uint16_t *)p + l);
}

/* The full tile: 4 rows of A x NRV rows of B, sixteen (or fewer) named
   accumulators so that they live in registers, one instance per weight type
   so that the loads are straight-line code. */
#define TFU_X_FMA4(w, j) do { acc0##j = tfu_x_v_fma(w##0, x##j, acc0##j); acc1##j = tfu_x_v_fma(w##1, x##j, acc1##j); \
                              acc2##j = tfu_x_v_fma(w##2, x##j, acc2##j); acc3##j = tfu_x_v_fma(w##3, x##j, acc3##j); } while (0)
#define TFU_X_DOT_FULL(name, LOADA, NRV)                                                                  \
static void name(tfu_type at, int k, const void *const *a, const float *const *b, float *c, size_t ldc) { \
    tfu_x_vf acc00 = tfu_x_v_set1(0.0f), acc10 = acc00, acc20 = acc00, acc30 = acc00;                         \
    tfu_x_vf acc01 = acc00, acc11 = acc00, acc21 = acc00, acc31 = acc00;                                    \
    tfu_x_vf acc02 = acc00, acc12 = acc00, acc22 = acc00, acc32 = acc00;                                    \
    tfu_x_vf acc03 = acc00, acc13 = acc00, acc23 = acc00, acc33 = acc00;                                    \
    const void *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];                                            \
    const float *b0 = b[0], *b1 = b[NRV > 1 ? 1 : 0], *b2 = b[NRV > 2 ? 2 : 0], *b3 = b[NRV > 3 ? 3 : 0]; \
    int l, i, j, kv = k - k % TFU_X_VW;                                                                     \
    for (l = 0; l < kv; l += TFU_X_VW) {                                                                    \
        tfu_x_vf w0 = LOADA(a0, l), w1 = LOADA(a1, l), w2 = LOADA(a2, l), w3 = LOADA(a3, l);                \
        tfu_x_vf x0 = tfu_x_v_load(b0 + l);                                                                   \
        TFU_X_FMA4(w, 0);                                                                                 \
        if (NRV > 1) { tfu_x_vf x1 = tfu_x_v_load(b1 + l); TFU_X_FMA4(w, 1); }                                \
        if (NRV > 2) { tfu_x_vf x2 = tfu_x_v_load(b2 + l); TFU_X_FMA4(w, 2); }                                \
        if (NRV > 3) { tfu_x_vf x3 = tfu_x_v_load(b3 + l); TFU_X_FMA4(w, 3); }                                \
    }                                                                                                     \
    {                                                                                                     \
        float r[4][4];                                                                                    \
        r[0][0] = tfu_x_v_hsum(acc00); r[1][0] = tfu_x_v_hsum(acc10); r[2][0] = tfu_x_v_hsum(acc20); r[3][0] = tfu_x_v_hsum(acc30); \
        if (NRV > 1) { r[0][1] = tfu_x_v_hsum(acc01); r[1][1] = tfu_x_v_hsum(acc11); r[2][1] = tfu_x_v_hsum(acc21); r[3][1] = tfu_x_v_hsum(acc31); } \
        if (NRV > 2) { r[0][2] = tfu_x_v_hsum(acc02); r[1][2] = tfu_x_v_hsum(acc12); r[2][2] = tfu_x_v_hsum(acc22); r[3][2] = tfu_x_v_hsum(acc32); } \
        if (NRV > 3) { r[0][3] = tfu_x_v_hsum(acc03); r[1][3] = tfu_x_v_hsum(acc13); r[2][3] = tfu_x_v_hsum(acc23); r[3][3] = tfu_x_v_hsum(acc33); } \
        for (i = 0; i < 4; i++) for (j = 0; j < NRV; j++) {                                               \
            float sum = r[i][j];                                                                          \
            for (l = kv; l < k; l++) sum += tfu_x_ld(at, (const char *)a[i] + (size_t)l * tfu_type_size(at)) * b[j][l]; \
            c[(size_t)j * ldc + (size_t)i] = sum;                                                         \
        }                                                                                                 \
    }                                                                                                     \
}
#define TFU_X_LDA_F32(p, l) tfu_x_v_load((const float *)(p) + (l))
#define TFU_X_LDA_BF16(p, l) tfu_x_v_load_bf16((const uint16_t *)(p) + (l))
TFU_X_DOT_FULL(tfu_x_k_dot_full_f32, TFU_X_LDA_F32, TFU_X_NR)
TFU_X_DOT_FULL(tfu_x_k_dot_full_bf16, TFU_X_LDA_BF16, TFU_X_NR)
/* one row of B (decoding a token): 4 rows of A, two vectors of k per step,
   eight independent accumulators to cover the FMA latency while the
   weights stream */
#define TFU_X_DOT_VEC(name, LOADA, ESZ)                                                                   \
static void name(tfu_type at, int k, const void *const *a, const float *const *b, float *c, size_t ldc,    \
                 const void *const *an) {                                                                 \
    tfu_x_vf s0 = tfu_x_v_set1(0.0f), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;        \
    const void *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];                                            \
    const float *b0 = b[0];                                                                               \
    int l, i, kv2 = k - k % (2 * TFU_X_VW), kv = k - k % TFU_X_VW;                                            \
    float r[4];                                                                                           \
    for (l = 0; l < kv2; l += 2 * TFU_X_VW) {                                                               \
        tfu_x_vf x = tfu_x_v_load(b0 + l), y = tfu_x_v_load(b0 + l + TFU_X_VW);                                   \
        if (an) {   /* the next four rows of weights stream in while these compute */                    \
            size_t o = (size_t)l * (ESZ);                                                                 \
            TFU_X_PREFETCH_R((const char *)an[0] + o); TFU_X_PREFETCH_R((const char *)an[1] + o);             \
            TFU_X_PREFETCH_R((const char *)an[2] + o); TFU_X_PREFETCH_R((const char *)an[3] + o);             \
            if ((ESZ) * 2 * TFU_X_VW > 64) {                                                                \
                TFU_X_PREFETCH_R((const char *)an[0] + o + 64); TFU_X_PREFETCH_R((const char *)an[1] + o + 64); \
                TFU_X_PREFETCH_R((const char *)an[2] + o + 64); TFU_X_PREFETCH_R((const char *)an[3] + o + 64); \
            }                                                                                             \
        }                                                                                                 \
        s0 = tfu_x_v_fma(LOADA(a0, l), x, s0); t0 = tfu_x_v_fma(LOADA(a0, l + TFU_X_VW), y, t0);                \
        s1 = tfu_x_v_fma(LOADA(a1, l), x, s1); t1 = tfu_x_v_fma(LOADA(a1, l + TFU_X_VW), y, t1);                \
        s2 = tfu_x_v_fma(LOADA(a2, l), x, s2); t2 = tfu_x_v_fma(LOADA(a2, l + TFU_X_VW), y, t2);                \
        s3 = tfu_x_v_fma(LOADA(a3, l), x, s3); t3 = tfu_x_v_fma(LOADA(a3, l + TFU_X_VW), y, t3);                \
    }                                                                                                     \
    for (; l < kv; l += TFU_X_VW) {                                                                         \
        tfu_x_vf x = tfu_x_v_load(b0 + l);                                                                    \
        s0 = tfu_x_v_fma(LOADA(a0, l), x, s0); s1 = tfu_x_v_fma(LOADA(a1, l), x, s1);                         \
        s2 = tfu_x_v_fma(LOADA(a2, l), x, s2); s3 = tfu_x_v_fma(LOADA(a3, l), x, s3);                         \
    }                                                                                                     \
    r[0] = tfu_x_v_hsum(tfu_x_v_add(s0, t0)); r[1] = tfu_x_v_hsum(tfu_x_v_add(s1, t1));                           \
    r[2] = tfu_x_v_hsum(tfu_x_v_add(s2, t2)); r[3] = tfu_x_v_hsum(tfu_x_v_add(s3, t3));                           \
    for (i = 0; i < 4; i++) {                                                                             \
        float sum = r[i];                                                                                 \
        for (l = kv; l < k; l++) sum += tfu_x_ld(at, (const char *)a[i] + (size_t)l * tfu_type_size(at)) * b0[l]; \
        c[i] = sum;                                                                                       \
    }                                                                                                     \
    (void)ldc;                                                                                            \
}
TFU_X_DOT_VEC(tfu_x_k_dot_vec_f32, TFU_X_LDA_F32, 4)
TFU_X_DOT_VEC(tfu_x_k_dot_vec_bf16, TFU_X_LDA_BF16, 2)
#if defined(tfu_x_v_load_f16)
#define TFU_X_LDA_F16(p, l) tfu_x_v_load_f16((const uint16_t *)(p) + (l))
TFU_X_DOT_FULL(tfu_x_k_dot_full_f16, TFU_X_LDA_F16, TFU_X_NR)
TFU_X_DOT_VEC(tfu_x_k_dot_vec_f16, TFU_X_LDA_F16, 2)
#endif
/* one row of B against 8 rows of A: eight weight streams in flight at once
   (more reads outstanding than 4 rows keep; measured 10-20 % faster from
   memory than 4 rows with software prefetch), one accumulator per row, no
   software prefetch (the hardware's streams do better on these) */
#define TFU_X_DOT_VEC8(name, LOADA)                                                                    \
static void name(tfu_type at, int k, const void *const *a, const float *b0, float *c) {                  \
    tfu_x_vf s0 = tfu_x_v_set1(0.0f), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;        \
    const void *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5], *a6 = a[6], *a7 = a[7]; \
    int l, i, kv = k - k % TFU_X_VW;                                                                      \
    float r[8];                                                                                           \
    for (l = 0; l < kv; l += TFU_X_VW) {                                                                  \
        tfu_x_vf x = tfu_x_v_load(b0 + l);                                                                \
        s0 = tfu_x_v_fma(LOADA(a0, l), x, s0);                                                            \
        s1 = tfu_x_v_fma(LOADA(a1, l), x, s1);                                                            \
        s2 = tfu_x_v_fma(LOADA(a2, l), x, s2);                                                            \
        s3 = tfu_x_v_fma(LOADA(a3, l), x, s3);                                                            \
        s4 = tfu_x_v_fma(LOADA(a4, l), x, s4);                                                            \
        s5 = tfu_x_v_fma(LOADA(a5, l), x, s5);                                                            \
        s6 = tfu_x_v_fma(LOADA(a6, l), x, s6);                                                            \
        s7 = tfu_x_v_fma(LOADA(a7, l), x, s7);                                                            \
    }                                                                                                     \
    r[0] = tfu_x_v_hsum(s0);                                                                              \
    r[1] = tfu_x_v_hsum(s1);                                                                              \
    r[2] = tfu_x_v_hsum(s2);                                                                              \
    r[3] = tfu_x_v_hsum(s3);                                                                              \
    r[4] = tfu_x_v_hsum(s4);                                                                              \
    r[5] = tfu_x_v_hsum(s5);                                                                              \
    r[6] = tfu_x_v_hsum(s6);                                                                              \
    r[7] = tfu_x_v_hsum(s7);                                                                              \
    for (i = 0; i < 8; i++) {                                                                             \
        float sum = r[i];                                                                                 \
        for (l = kv; l < k; l++) sum += tfu_x_ld(at, (const char *)a[i] + (size_t)l * tfu_type_size(at)) * b0[l]; \
        c[i] = sum;                                                                                       \
    }                                                                                                     \
}
TFU_X_DOT_VEC8(tfu_x_k_dot_vec8_f32, TFU_X_LDA_F32)
TFU_X_DOT_VEC8(tfu_x_k_dot_vec8_bf16, TFU_X_LDA_BF16)
#if defined(tfu_x_v_load_f16)
TFU_X_DOT_VEC8(tfu_x_k_dot_vec8_f16, TFU_X_LDA_F16)
#endif
static void tfu_x_k_dot_vec8(tfu_type at, int k, const void *const *a, const float *b0, float *c) {
    if (at == TFU_F32) tfu_x_k_dot_vec8_f32(at, k, a, b0, c);
#if defined(tfu_x_v_load_f16)
    else if (at == TFU_F16) tfu_x_k_dot_vec8_f16(at, k, a, b0, c);
#endif
    else tfu_x_k_dot_vec8_bf16(at, k, a, b0, c);
}

/* Quantized A (Q8_0, Q4_0) against one row of B: per block of 32, the
   weights dequantized in registers (tfu_x_v_deq: exactly the f32 values
   d * q) and multiplied with the f32 activations by FMA, as f32 weights
   would be; 8 rows at a time (eight weight streams, as above), then 1.
   One instance per type so that the block decode is straight-line code. */
#define TFU_X_DOT_Q_FMA(j) sr = tfu_x_v_fma(w[j], x[j], sr);
#define TFU_X_DOT_Q_LDX(j) x[j] = tfu_x_v_load(b0 + blk * TFU_X_QK + (j) * TFU_X_VW);
#define TFU_X_DOT_Q_ROW(r)                                                                             \
    tfu_x_v_deq(qt, (const unsigned char *)a[r] + o, w);                                              \
    {                                                                                                     \
        tfu_x_vf sr = s##r;                                                                               \
        TFU_X_QV(TFU_X_DOT_Q_FMA)                                                                         \
        s##r = sr;                                                                                        \
    }
#define TFU_X_DOT_VEC8_Q(name, TYPE)                                                                   \
static void name(int k, const void *const *a, const float *b0, float *c) {                              \
    tfu_x_vf s0 = tfu_x_v_set1(0.0f), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;        \
    const tfu_type qt = TYPE;                                                                             \
    size_t bs = tfu_type_size(qt);                                                                        \
    int blk;                                                                                              \
    for (blk = 0; blk < k / TFU_X_QK; blk++) {                                                            \
        tfu_x_vf x[TFU_X_QK / TFU_X_VW], w[TFU_X_QK / TFU_X_VW];                                          \
        size_t o = (size_t)blk * bs;                                                                      \
        TFU_X_QV(TFU_X_DOT_Q_LDX)                                                                         \
        TFU_X_DOT_Q_ROW(0)                                                                                \
        TFU_X_DOT_Q_ROW(1)                                                                                \
        TFU_X_DOT_Q_ROW(2)                                                                                \
        TFU_X_DOT_Q_ROW(3)                                                                                \
        TFU_X_DOT_Q_ROW(4)                                                                                \
        TFU_X_DOT_Q_ROW(5)                                                                                \
        TFU_X_DOT_Q_ROW(6)                                                                                \
        TFU_X_DOT_Q_ROW(7)                                                                                \
    }                                                                                                     \
    c[0] = tfu_x_v_hsum(s0);                                                                              \
    c[1] = tfu_x_v_hsum(s1);                                                                              \
    c[2] = tfu_x_v_hsum(s2);                                                                              \
    c[3] = tfu_x_v_hsum(s3);                                                                              \
    c[4] = tfu_x_v_hsum(s4);                                                                              \
    c[5] = tfu_x_v_hsum(s5);                                                                              \
    c[6] = tfu_x_v_hsum(s6);                                                                              \
    c[7] = tfu_x_v_hsum(s7);                                                                              \
}                                                                                                         \
static void name##_1(int k, const void *const *a, const float *b0, float *c) {                          \
    tfu_x_vf s0 = tfu_x_v_set1(0.0f);                                                                     \
    const tfu_type qt = TYPE;                                                                             \
    size_t bs = tfu_type_size(qt);                                                                        \
    int blk;                                                                                              \
    for (blk = 0; blk < k / TFU_X_QK; blk++) {                                                            \
        tfu_x_vf x[TFU_X_QK / TFU_X_VW], w[TFU_X_QK / TFU_X_VW];                                          \
        size_t o = (size_t)blk * bs;                                                                      \
        TFU_X_QV(TFU_X_DOT_Q_LDX)                                                                         \
        TFU_X_DOT_Q_ROW(0)                                                                                \
    }                                                                                                     \
    c[0] = tfu_x_v_hsum(s0);                                                                              \
}
TFU_X_DOT_VEC8_Q(tfu_x_k_dot_vec8_q8_0, TFU_Q8_0)
TFU_X_DOT_VEC8_Q(tfu_x_k_dot_vec8_q4_0, TFU_Q4_0)
#undef TFU_X_DOT_Q_ROW
#undef TFU_X_DOT_Q_FMA
#undef TFU_X_DOT_Q_LDX
#undef TFU_X_DOT_VEC8_Q

/* c[i] = dot(a_i, b0) for i < na, quantized rows of k (a multiple of 32) */
static void tfu_x_k_dot_vec_q(tfu_type at, int k, int na, const void *const *a, const float *b0, float *c) {
    int i = 0;
    for (; i + 8 <= na; i += 8) {
        if (at == TFU_Q8_0) tfu_x_k_dot_vec8_q8_0(k, a + i, b0, c + i);
        else tfu_x_k_dot_vec8_q4_0(k, a + i, b0, c + i);
    }
    for (; i < na; i++) {
        if (at == TFU_Q8_0) tfu_x_k_dot_vec8_q8_0_1(k, a + i, b0, c + i);
        else tfu_x_k_dot_vec8_q4_0_1(k, a + i, b0, c + i);
    }
}

static void tfu_x_k_dot_tile(tfu_type at, int k, int mr, const void *const *a, int nr, const float *const *b, float *c, size_t ldc,
                             const void *const *an) {
    tfu_x_vf acc[TFU_X_MR][TFU_X_NR];
    int i, j, l, kv = k - k % TFU_X_VW;
    if (mr == TFU_X_MR && nr == TFU_X_NR) {
        if (at == TFU_F32) tfu_x_k_dot_full_f32(at, k, a, b, c, ldc);
#if defined(tfu_x_v_load_f16)
        else if (at == TFU_F16) tfu_x_k_dot_full_f16(at, k, a, b, c, ldc);
#endif
        else tfu_x_k_dot_full_bf16(at, k, a, b, c, ldc);
        return;
    }
    if (mr == TFU_X_MR && nr == 1) {
        if (at == TFU_F32) tfu_x_k_dot_vec_f32(at, k, a, b, c, ldc, an);
#if defined(tfu_x_v_load_f16)
        else if (at == TFU_F16) tfu_x_k_dot_vec_f16(at, k, a, b, c, ldc, an);
#endif
        else tfu_x_k_dot_vec_bf16(at, k, a, b, c, ldc, an);
        return;
    }
    for (i = 0; i < TFU_X_MR; i++) for (j = 0; j < TFU_X_NR; j++) acc[i][j] = tfu_x_v_set1(0.0f);
    for (l = 0; l < kv; l += TFU_X_VW)   /* edges of the output: any mr x nr */
        for (i = 0; i < mr; i++) {
            tfu_x_vf av = tfu_x_v_ld_any(at, a[i], l);
            for (j = 0; j < nr; j++) acc[i][j] = tfu_x_v_fma(av, tfu_x_v_load(b[j] + l), acc[i][j]);
        }
    for (i = 0; i < mr; i++) for (j = 0; j < nr; j++) {
        float sum = tfu_x_v_hsum(acc[i][j]);
        for (l = kv; l < k; l++) sum += tfu_x_ld(at, (const char *)a[i] + (size_t)l * tfu_type_size(at)) * b[j][l];
        c[(size_t)j * ldc + (size_t)i] = sum;
    }
}
#endif

static int tfu_x_k_dot_native(int simd, tfu_type at) {  /* can the kernel read A of this type as it is? */
    (void)simd;
    if (tfu_x_is_quant(at)) return 0;
#ifdef TFU_X_VEC
    if (!simd) return at == TFU_F32;
#if defined(tfu_x_v_load_f16)
    return 1;
#else
    return at != TFU_F16;
#endif
#else
    return at == TFU_F32;
#endif
}

/* the largest |x| of x[0..n); +inf if one is inf or NaN (x * 0 is NaN
   then, and the sum of the others' x * 0 is 0) */
static float tfu_x_k_absmax(int simd, int n, const float *x) {
    float m = 0, z = 0;
    int i = 0;
    (void)simd;
#ifdef TFU_X_VEC
    if (simd) {
        tfu_x_vf vm = tfu_x_v_set1(0.0f), vz = vm, zero = vm;
        for (; i + TFU_X_VW <= n; i += TFU_X_VW) {
            tfu_x_vf v = tfu_x_v_load(x + i);
            vm = tfu_x_v_max(vm, tfu_x_v_abs(v));
            vz = tfu_x_v_add(vz, tfu_x_v_mul(v, zero));
        }
        m = tfu_x_v_hmax(vm);
        z = tfu_x_v_hsum(vz);
    }
#endif
    for (; i < n; i++) {
        if (!tfu_x_finite(x[i])) return INFINITY;
        if (fabsf(x[i]) > m) m = fabsf(x[i]);
    }
    return z == 0.0f ? m : INFINITY;
}

/* An output that came out inf or NaN may have overflowed in f32 where the
   double reference stays finite (a sum of infinities and NaN alone does not
   depend on the order): computed again in double, as the reference does. */
static void tfu_x_k_dot_redo(tfu_type at, int k, int na, const void *const *a, int nbr, const float *const *b, float *c, size_t ldc) {
    size_t esz = tfu_type_size(at);
    int i, j, l;
    for (j = 0; j < nbr; j++) {
        float *row = c + (size_t)j * ldc;
        if (tfu_x_k_absmax(1, na, row) < INFINITY) continue;   /* the common case: a finite row, one vector pass */
        for (i = 0; i < na; i++) {
            float *o = row + i;
            double s = 0;
            if (tfu_x_finite(*o)) continue;
            if (tfu_x_is_quant(at)) {
                for (l = 0; l < k; l++) s += (double)tfu_x_ld_q(at, (const char *)a[i] + (size_t)(l / TFU_X_QK) * esz, l % TFU_X_QK) * (double)b[j][l];
                *o = (float)s;
                continue;
            }
            for (l = 0; l < k; l++) s += (double)tfu_x_ld(at, (const char *)a[i] + (size_t)l * esz) * (double)b[j][l];
            *o = (float)s;
        }
    }
}

/* --- int8 activations (tfu_plan_options.quant_activations) -----------------
   The fast path for products with Q8_0/Q4_0 weights: each row of B (k f32
   activations, k a multiple of 32) is quantized once per run into a row of
   tfu_x_qact_row_bytes(k) bytes of scratch,
     q[k] int8 | d[k/32] f32 | s[k/32] int32      (s: the sum of a block's q)
   per block d = max|x| / 127 (f32), q = round(x / d) half away from zero;
   a block with a NaN or inf has d = NaN (its outputs NaN: the caller redoes
   them exactly, tfu_x_k_dot_redo). Then per output and block the integer
   sum of the 32 products (exact: |q| <= 127 and |w| <= 128), and over the
   blocks in order acc = acc + (d_a * d_b) * (float)isum: the same f32
   operations in the scalar, AVX2 and NEON kernels. */
static size_t tfu_x_qact_row_bytes(int64_t k) { return tfu_x_align_up((size_t)k + (size_t)k / TFU_X_QK * 8, 64); }

#if !defined(TFU_NO_SIMD) && (defined(TFU_X_AVX2) || defined(TFU_X_AVX512)) && defined(__AVX2__)
#define TFU_X_QACT_AVX2 1   /* also in AVX-512 builds: the kernels are AVX2 */
#elif defined(TFU_X_VEC) && defined(TFU_X_NEON)
#define TFU_X_QACT_NEON 1
#endif

/* one block of 32 activations x to q[32], *d and *s (scalar; the SIMD
   quantizer gives the same bytes) */
static void tfu_x_qact_block(const float *x, signed char *q, float *d, int32_t *s) {
    float amax = 0.0f, dv;
    int j, finite = 1;
    int32_t sum = 0;
    for (j = 0; j < TFU_X_QK; j++) {
        if (!tfu_x_finite_f(x[j])) finite = 0;
        else if (fabsf(x[j]) > amax) amax = fabsf(x[j]);
    }
    if (!finite) {
        memset(q, 0, TFU_X_QK);
        *d = tfu_f16_to_f32(0x7E00u);   /* NaN */
        *s = 0;
        return;
    }
    dv = amax / 127.0f;
    for (j = 0; j < TFU_X_QK; j++) {
        float r = dv > 0.0f ? x[j] / dv : 0.0f;
        int qi;
        r = r < -127.0f ? -127.0f : r > 127.0f ? 127.0f : r;   /* d subnormal: x / d may pass 127 */
        qi = (int)roundf(r);
        q[j] = (signed char)qi;
        sum += qi;
    }
    *d = dv;
    *s = sum;
}

#if defined(TFU_X_QACT_AVX2)
/* the same block by AVX2: round half away from zero as trunc(r) plus the
   sign of r where |r - trunc(r)| >= 0.5 (exact, as roundf) */
TFU_X_FORCE_INLINE void tfu_x_v_qact_block(const float *x, signed char *q, float *d, int32_t *s) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4], amax = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    __m256i iv[4], p0, p1, tot;
    __m128i h;
    float am, dv;
    int j;
    for (j = 0; j < 4; j++) {
        __m256 ab;
        v[j] = _mm256_loadu_ps(x + 8 * j);
        ab = _mm256_andnot_ps(sign, v[j]);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(ab, _mm256_set1_ps(FLT_MAX), _CMP_NLE_UQ));   /* NaN or inf */
        amax = _mm256_max_ps(amax, ab);
    }
    if (_mm256_movemask_ps(bad)) {
        tfu_x_qact_block(x, q, d, s);
        return;
    }
    {
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
        am = _mm_cvtss_f32(m);
    }
    dv = am / 127.0f;
    for (j = 0; j < 4; j++) {
        __m256 r = dv > 0.0f ? _mm256_div_ps(v[j], _mm256_set1_ps(dv)) : _mm256_setzero_ps(), t, f, half;
        r = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
        t = _mm256_round_ps(r, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        f = _mm256_andnot_ps(sign, _mm256_sub_ps(r, t));
        half = _mm256_cmp_ps(f, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
        t = _mm256_add_ps(t, _mm256_and_ps(half, _mm256_or_ps(_mm256_and_ps(r, sign), _mm256_set1_ps(1.0f))));
        iv[j] = _mm256_cvttps_epi32(t);
    }
    tot = _mm256_add_epi32(_mm256_add_epi32(iv[0], iv[1]), _mm256_add_epi32(iv[2], iv[3]));
    h = _mm_add_epi32(_mm256_castsi256_si128(tot), _mm256_extracti128_si256(tot, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
    p0 = _mm256_packs_epi32(iv[0], iv[1]);   /* 0-3 8-11 | 4-7 12-15 */
    p1 = _mm256_packs_epi32(iv[2], iv[3]);
    p0 = _mm256_packs_epi16(p0, p1);         /* 0-3 8-11 16-19 24-27 | 4-7 12-15 20-23 28-31 */
    p0 = _mm256_permutevar8x32_epi32(p0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)(void *)q, p0);
    *d = dv;
    *s = _mm_cvtsi128_si32(h);
}
#endif

/* row <- the quantized row of k activations x (layout above) */
static void tfu_x_k_qact_row(int simd, int k, const float *x, unsigned char *row) {
    signed char *q = (signed char *)row;
    float *d = (float *)(void *)(row + k);
    int32_t *s = (int32_t *)(void *)(row + k + k / TFU_X_QK * 4);
    int b;
    (void)simd;
    for (b = 0; b < k / TFU_X_QK; b++) {
#if defined(TFU_X_QACT_AVX2)
        if (simd) {
            tfu_x_v_qact_block(x + b * TFU_X_QK, q + b * TFU_X_QK, d + b, s + b);
            continue;
        }
#endif
        tfu_x_qact_block(x + b * TFU_X_QK, q + b * TFU_X_QK, d + b, s + b);
    }
}

/* the integer sum of one weight block's 32 products with q (scalar) */
static int32_t tfu_x_qact_isum(tfu_type at, const unsigned char *blk, const signed char *q) {
    int32_t sum = 0;
    int j;
    if (at == TFU_Q8_0) {
        for (j = 0; j < TFU_X_QK; j++) sum += (int32_t)(signed char)blk[2 + j] * q[j];
        return sum;
    }
    for (j = 0; j < TFU_X_QK / 2; j++) {
        sum += ((blk[2 + j] & 0x0F) - 8) * q[j];
        sum += ((blk[2 + j] >> 4) - 8) * q[j + TFU_X_QK / 2];
    }
    return sum;
}

#if defined(TFU_X_QACT_AVX2)
/* 8 int32 sums of 4 neighbouring u8 x s8 products: one vpdpbusd where the
   CPU has AVX512-VNNI (with VL) or AVX-VNNI, else vpmaddubsw (pairs; the
   callers keep them at most 2 * 128 * 127, so it never saturates) and a
   vpmaddwd by ones: the same integers either way */
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define tfu_x_v_dot_u8s8(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#elif defined(__AVXVNNI__)
#define tfu_x_v_dot_u8s8(u, s) _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), (u), (s))
#else
#define tfu_x_v_dot_u8s8(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1))
#endif
/* a weight block against the activations x: 8 int32 partial sums */
TFU_X_FORCE_INLINE __m256i tfu_x_v_qdot_q8_0(const unsigned char *blk, __m256i x) {
    __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 2));
    return tfu_x_v_dot_u8s8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));   /* |w| * (x sign w) */
}
/* Q4_0: the nibbles (0..15) as unsigned bytes; the caller takes 8 * s off */
TFU_X_FORCE_INLINE __m256i tfu_x_v_qdot_q4_0(const unsigned char *blk, __m256i x) {
    __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)(blk + 2));
    __m256i w = _mm256_inserti128_si256(_mm256_castsi128_si256(raw), _mm_srli_epi16(raw, 4), 1);
    w = _mm256_and_si256(w, _mm256_set1_epi8(0x0F));
    return tfu_x_v_dot_u8s8(w, x);
}
TFU_X_FORCE_INLINE int32_t tfu_x_v_hsum_epi32(__m256i v) {
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
    return _mm_cvtsi128_si32(h);
}
/* the f16 scales of the blocks at ap[0..7]: each row's first 4 bytes
   (the scale and two q) to a vector, then unpacks of the low words (fewer
   operations than 8 word inserts) */
/* the 8 rows of a kernel written out, DO(r) for r = 0..7 (constant indices:
   arrays stay in registers at -O2 too, which unrolls no loop) */
#define TFU_X_QR8(DO) DO(0) DO(1) DO(2) DO(3) DO(4) DO(5) DO(6) DO(7)
#define TFU_X_QR8F(DO, F) DO(0, F) DO(1, F) DO(2, F) DO(3, F) DO(4, F) DO(5, F) DO(6, F) DO(7, F)
#define TFU_X_QSC_LD(r)                                                                                 \
    memcpy(&w[r], ap[r], 4);                                                                              \
    v[r] = _mm_cvtsi32_si128(w[r]);
TFU_X_FORCE_INLINE __m256 tfu_x_v_scales8(const unsigned char *const *ap) {
    __m128i v[8], p01, p23, p45, p67;
    int32_t w[8];
    TFU_X_QR8(TFU_X_QSC_LD)
    p01 = _mm_unpacklo_epi16(v[0], v[1]);
    p23 = _mm_unpacklo_epi16(v[2], v[3]);
    p45 = _mm_unpacklo_epi16(v[4], v[5]);
    p67 = _mm_unpacklo_epi16(v[6], v[7]);
    p01 = _mm_unpacklo_epi64(_mm_unpacklo_epi32(p01, p23), _mm_unpacklo_epi32(p45, p67));
#if defined(__F16C__)
    return _mm256_cvtph_ps(p01);
#else
    {
        uint16_t h[8];
        _mm_storeu_si128((__m128i *)(void *)h, p01);
        return _mm256_setr_ps(tfu_f16_to_f32(h[0]), tfu_f16_to_f32(h[1]), tfu_f16_to_f32(h[2]), tfu_f16_to_f32(h[3]),
                              tfu_f16_to_f32(h[4]), tfu_f16_to_f32(h[5]), tfu_f16_to_f32(h[6]), tfu_f16_to_f32(h[7]));
    }
#endif
}
/* 8 rows of int32 x 8 to their 8 totals, row r in lane r: a transpose by
   unpacks and adds (single operations, where hadd takes several) */
TFU_X_FORCE_INLINE __m256i tfu_x_v_hsum8_epi32(const __m256i *v) {
    __m256i a0 = _mm256_add_epi32(_mm256_unpacklo_epi32(v[0], v[1]), _mm256_unpackhi_epi32(v[0], v[1]));
    __m256i a1 = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2], v[3]), _mm256_unpackhi_epi32(v[2], v[3]));
    __m256i a2 = _mm256_add_epi32(_mm256_unpacklo_epi32(v[4], v[5]), _mm256_unpackhi_epi32(v[4], v[5]));
    __m256i a3 = _mm256_add_epi32(_mm256_unpacklo_epi32(v[6], v[7]), _mm256_unpackhi_epi32(v[6], v[7]));
    __m256i b0 = _mm256_add_epi32(_mm256_unpacklo_epi64(a0, a1), _mm256_unpackhi_epi64(a0, a1));   /* rows 0-3 | 0-3 */
    __m256i b1 = _mm256_add_epi32(_mm256_unpacklo_epi64(a2, a3), _mm256_unpackhi_epi64(a2, a3));   /* rows 4-7 | 4-7 */
    return _mm256_add_epi32(_mm256_permute2x128_si256(b0, b1, 0x20), _mm256_permute2x128_si256(b0, b1, 0x31));
}
/* c[i] for 8 rows of A at once (eight weight streams), then single rows;
   Q4_0 takes 8 * s (the block's sum of q) off its nibble sums */
#define TFU_X_QDOT_INIT(r)                                                                              \
    ap[r] = (const unsigned char *)a[i + (r)];                                                            \
    an[r] = ahead ? (const unsigned char *)a[i + 8 + (r)] : ap[r];
#define TFU_X_QDOT_ROW(r, ROWDOT)                                                                       \
    v[r] = ROWDOT(ap[r], x);                                                                              \
    _mm_prefetch((const char *)an[r], _MM_HINT_T0);                                                       \
    an[r] += bs;
#define TFU_X_QDOT_NEXT(r) ap[r] += bs;
#define TFU_X_QDOT_AVX2(name, TYPE, ROWDOT)                                                             \
static void name(int k, int na, const void *const *a, const unsigned char *row, float *c) {              \
    const signed char *q = (const signed char *)row;                                                      \
    const float *d = (const float *)(const void *)(row + k);                                              \
    const int32_t *s = (const int32_t *)(const void *)(row + k + k / TFU_X_QK * 4);                       \
    const size_t bs = tfu_type_size(TYPE);                                                                \
    int i = 0, b;                                                                                         \
    for (; i + 8 <= na; i += 8) {                                                                         \
        __m256 acc = _mm256_setzero_ps();                                                                 \
        const unsigned char *ap[8], *an[8];   /* an: the next 8 rows, fetched a group ahead (rows of     \
                                                 a few KiB end before the hardware's streams ramp up) */  \
        int ahead = i + 16 <= na;                                                                         \
        TFU_X_QR8(TFU_X_QDOT_INIT)                                                                        \
        for (b = 0; b < k / TFU_X_QK; b++) {                                                              \
            __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(q + b * TFU_X_QK)), v[8], tot;    \
            __m256 sc;                                                                                    \
            TFU_X_QR8F(TFU_X_QDOT_ROW, ROWDOT)                                                            \
            tot = tfu_x_v_hsum8_epi32(v);                                                                 \
            if (TYPE == TFU_Q4_0) tot = _mm256_sub_epi32(tot, _mm256_set1_epi32(8 * s[b]));               \
            sc = _mm256_mul_ps(tfu_x_v_scales8(ap), _mm256_set1_ps(d[b]));                                \
            acc = _mm256_add_ps(acc, _mm256_mul_ps(sc, _mm256_cvtepi32_ps(tot)));                         \
            TFU_X_QR8(TFU_X_QDOT_NEXT)                                                                    \
        }                                                                                                 \
        _mm256_storeu_ps(c + i, acc);                                                                     \
    }                                                                                                     \
    for (; i < na; i++) {                                                                                 \
        float acc = 0.0f;                                                                                 \
        for (b = 0; b < k / TFU_X_QK; b++) {                                                              \
            const unsigned char *blk = (const unsigned char *)a[i] + (size_t)b * bs;                      \
            __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(q + b * TFU_X_QK));              \
            int32_t isum = tfu_x_v_hsum_epi32(ROWDOT(blk, x));                                            \
            float sc = tfu_x_ld_f16(blk) * d[b];                                                          \
            float term;                                                                                   \
            if (TYPE == TFU_Q4_0) isum -= 8 * s[b];                                                       \
            term = sc * (float)isum;                                                                      \
            acc = acc + term;                                                                             \
        }                                                                                                 \
        c[i] = acc;                                                                                       \
    }                                                                                                     \
}
TFU_X_QDOT_AVX2(tfu_x_k_qdot_q8_0, TFU_Q8_0, tfu_x_v_qdot_q8_0)
TFU_X_QDOT_AVX2(tfu_x_k_qdot_q4_0, TFU_Q4_0, tfu_x_v_qdot_q4_0)
#undef TFU_X_QDOT_AVX2
#undef TFU_X_QDOT_INIT
#undef TFU_X_QDOT_ROW
#undef TFU_X_QDOT_NEXT
#endif

#if defined(TFU_X_QACT_NEON)
/* a weight block against the activations x0 (0..15), x1 (16..31): 4 int32
   partial sums (sdot where the CPU has it, else widening multiplies) */
TFU_X_FORCE_INLINE int32x4_t tfu_x_v_qdot16(int8x16_t w0, int8x16_t w1, int8x16_t x0, int8x16_t x1) {
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, x0), w1, x1);
#else
    int16x8_t p0 = vmull_s8(vget_low_s8(w0), vget_low_s8(x0)), p1 = vmull_s8(vget_low_s8(w1), vget_low_s8(x1));
    p0 = vmlal_s8(p0, vget_high_s8(w0), vget_high_s8(x0));   /* two products of |w| <= 128, |x| <= 127 each: no overflow */
    p1 = vmlal_s8(p1, vget_high_s8(w1), vget_high_s8(x1));
    return vpadalq_s16(vpaddlq_s16(p0), p1);
#endif
}
TFU_X_FORCE_INLINE int32x4_t tfu_x_v_qdot_blk(tfu_type at, const unsigned char *blk, int8x16_t x0, int8x16_t x1) {
    if (at == TFU_Q8_0) return tfu_x_v_qdot16(vld1q_s8((const int8_t *)(const void *)(blk + 2)), vld1q_s8((const int8_t *)(const void *)(blk + 18)), x0, x1);
    {
        uint8x16_t raw = vld1q_u8(blk + 2);
        int8x16_t e = vdupq_n_s8(8);
        int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0F))), e);
        int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), e);
        return tfu_x_v_qdot16(lo, hi, x0, x1);
    }
}
#define TFU_X_QDOT_NEON(name, TYPE)                                                                     \
static void name(int k, int na, const void *const *a, const unsigned char *row, float *c) {              \
    const int8_t *q = (const int8_t *)(const void *)row;                                                  \
    const float *d = (const float *)(const void *)(row + k);                                              \
    const size_t bs = tfu_type_size(TYPE);                                                                \
    int i = 0, b, r;                                                                                      \
    for (; i + 4 <= na; i += 4) {                                                                         \
        float32x4_t acc = vdupq_n_f32(0.0f);                                                              \
        for (b = 0; b < k / TFU_X_QK; b++) {                                                              \
            int8x16_t x0 = vld1q_s8(q + b * TFU_X_QK), x1 = vld1q_s8(q + b * TFU_X_QK + 16);              \
            int32x4_t v[4], tot;                                                                          \
            size_t o = (size_t)b * bs;                                                                    \
            float da[4];                                                                                  \
            for (r = 0; r < 4; r++) {                                                                     \
                v[r] = tfu_x_v_qdot_blk(TYPE, (const unsigned char *)a[i + r] + o, x0, x1);               \
                da[r] = tfu_x_ld_f16((const unsigned char *)a[i + r] + o);                                \
            }                                                                                             \
            tot = vpaddq_s32(vpaddq_s32(v[0], v[1]), vpaddq_s32(v[2], v[3]));   /* row r in lane r */      \
            acc = vaddq_f32(acc, vmulq_f32(vmulq_n_f32(vld1q_f32(da), d[b]), vcvtq_f32_s32(tot)));         \
        }                                                                                                 \
        vst1q_f32(c + i, acc);                                                                            \
    }                                                                                                     \
    for (; i < na; i++) {                                                                                 \
        float acc = 0.0f;                                                                                 \
        for (b = 0; b < k / TFU_X_QK; b++) {                                                              \
            const unsigned char *blk = (const unsigned char *)a[i] + (size_t)b * bs;                      \
            int32_t isum = vaddvq_s32(tfu_x_v_qdot_blk(TYPE, blk, vld1q_s8(q + b * TFU_X_QK), vld1q_s8(q + b * TFU_X_QK + 16))); \
            float sc = tfu_x_ld_f16(blk) * d[b];                                                          \
            float term = sc * (float)isum;                                                                \
            acc = acc + term;                                                                             \
        }                                                                                                 \
        c[i] = acc;                                                                                       \
    }                                                                                                     \
}
TFU_X_QDOT_NEON(tfu_x_k_qdot_q8_0, TFU_Q8_0)
TFU_X_QDOT_NEON(tfu_x_k_qdot_q4_0, TFU_Q4_0)
#undef TFU_X_QDOT_NEON
#endif

/* c[j * ldc + i] = the int8 dot product of quantized A row i (k a multiple
   of 32) with quantized activation row j (rows at qb, row_bytes apart),
   for i < na, j < nbr; outputs that come out NaN or inf are the caller's
   to redo exactly */
static void tfu_x_k_dot_qact(int simd, tfu_type at, int k, int na, const void *const *a, int nbr, const unsigned char *qb, size_t row_bytes,
                             float *c, size_t ldc) {
    int i, j, b;
    (void)simd;
    for (j = 0; j < nbr; j++) {
        const unsigned char *row = qb + (size_t)j * row_bytes;
        const signed char *q = (const signed char *)row;
        const float *d = (const float *)(const void *)(row + k);
        float *cj = c + (size_t)j * ldc;
#if defined(TFU_X_QACT_AVX2) || defined(TFU_X_QACT_NEON)
        if (simd) {
            if (at == TFU_Q8_0) tfu_x_k_qdot_q8_0(k, na, a, row, cj);
            else tfu_x_k_qdot_q4_0(k, na, a, row, cj);
            continue;
        }
#endif
        for (i = 0; i < na; i++) {
            float acc = 0.0f;
            for (b = 0; b < k / TFU_X_QK; b++) {
                const unsigned char *blk = (const unsigned char *)a[i] + (size_t)b * tfu_type_size(at);
                float sc = tfu_x_ld_f16(blk) * d[b];
                float term = sc * (float)tfu_x_qact_isum(at, blk, q + b * TFU_X_QK);
                acc = acc + term;   /* two statements: no contraction to an FMA, as the vector kernels */
            }
            cj[i] = acc;
        }
    }
}

/* the packed micro-kernel exists: with a register transpose (VT) for the
   products, and in AVX-512 builds for the attention group only (their
   panels packed by 8 x 8 AVX blocks; f16/bf16 weights would pack element
   by element there, so products keep the dot-product kernel) */
#if defined(TFU_X_VEC) && (defined(TFU_X_VT) || defined(TFU_X_AVX512))
#define TFU_X_PACKED 1
#endif

#if defined(TFU_X_PACKED)
/* Packed products (B of at least TFU_X_ONR rows): an outer-product
   micro-kernel. A's rows are packed, TFU_X_KC of k at a time, into panels
   of TFU_X_OMR rows laid out k-major (pa[l * OMR + r] = A[r][l0 + l], as
   f32 whatever A's type: f16 and bf16 weights are converted once per item
   and then run as fast as f32); each step of k loads two vectors of a panel
   and broadcasts one value from each of TFU_X_ONR rows of B, 2 x 6
   accumulators in registers, no horizontal sums. Sums run over k in order
   within a block of TFU_X_KC, blocks added in order into C. */
#define TFU_X_OMR (2 * TFU_X_VW)
#define TFU_X_ONR 6
#define TFU_X_KC 128   /* 128: NMSE 4-6e-14 for K 256..5632 (256: 8e-14 at K 256, 5 % faster) */

#if defined(TFU_X_VT)
/* A full panel (OMR rows), VW x VW blocks: VW vectors of k from VW rows,
   transposed in registers; returns the l it reached (kc less its tail) */
#define TFU_X_PACK_FULL(name)                                                                          \
static int name(const void *const *a, int l0, int kc, float *pa) {                                       \
    int l, r0;                                                                                            \
    for (l = 0; l + TFU_X_VW <= kc; l += TFU_X_VW)                                                        \
        for (r0 = 0; r0 < TFU_X_OMR; r0 += TFU_X_VW) {                                                    \
            tfu_x_vf v[TFU_X_VW];                                                                         \
            TFU_X_V_LANES(TFU_X_PACK_LD)                                                                  \
            tfu_x_v_transpose(v);                                                                         \
            TFU_X_V_LANES(TFU_X_PACK_ST)                                                                  \
        }                                                                                                 \
    return l;                                                                                             \
}
#define TFU_X_PACK_LD(t) v[t] = TFU_X_PACK_LOADA(a[r0 + (t)], l0 + l);
#define TFU_X_PACK_ST(t) tfu_x_v_store(pa + (size_t)(l + (t)) * TFU_X_OMR + r0, v[t]);
#define TFU_X_PACK_LOADA TFU_X_LDA_F32
TFU_X_PACK_FULL(tfu_x_pack_full_f32)
#undef TFU_X_PACK_LOADA
#define TFU_X_PACK_LOADA TFU_X_LDA_BF16
TFU_X_PACK_FULL(tfu_x_pack_full_bf16)
#undef TFU_X_PACK_LOADA
#if defined(tfu_x_v_load_f16)
#define TFU_X_PACK_LOADA TFU_X_LDA_F16
TFU_X_PACK_FULL(tfu_x_pack_full_f16)
#undef TFU_X_PACK_LOADA
#endif
#undef TFU_X_PACK_LD
#undef TFU_X_PACK_ST

#else
/* AVX-512 (no 16 x 16 transpose here): f32 panels by 8 x 8 blocks of AVX
   vectors (tfu_x_v_transpose8); returns the l reached */
#define TFU_X_PACK8_LD(t) v[t] = _mm256_loadu_ps((const float *)a[r0 + (t)] + l0 + l);
#define TFU_X_PACK8_ST(t) _mm256_storeu_ps(pa + (size_t)(l + (t)) * TFU_X_OMR + r0, v[t]);
#define TFU_X_LANES8(DO) DO(0) DO(1) DO(2) DO(3) DO(4) DO(5) DO(6) DO(7)
static int tfu_x_pack_full_f32(const void *const *a, int l0, int kc, float *pa) {
    int l, r0;
    for (l = 0; l + 8 <= kc; l += 8)
        for (r0 = 0; r0 < TFU_X_OMR; r0 += 8) {
            __m256 v[8];
            TFU_X_LANES8(TFU_X_PACK8_LD)
            tfu_x_v_transpose8(v);
            TFU_X_LANES8(TFU_X_PACK8_ST)
        }
    return l;
}
#undef TFU_X_PACK8_LD
#undef TFU_X_PACK8_ST
#undef TFU_X_LANES8
#endif

/* pa[l * OMR + r] = A[r][l0 + l] for l < kc, r < OMR; rows from nr on are 0.
   Full panels by the type's block code, the rest (a k tail, an edge panel)
   element by element */
static void tfu_x_pack_panel(tfu_type at, const void *const *a, int nr, int l0, int kc, float *pa) {
    size_t esz = tfu_type_size(at);
    int l = 0, r;
    if (tfu_x_is_quant(at)) {   /* l0 and kc whole blocks: rows dequantized into rq, then packed as f32 */
        float rq[TFU_X_OMR * TFU_X_KC];
        const void *rp[TFU_X_OMR];
        for (r = 0; r < TFU_X_OMR; r++) {
            rp[r] = rq + (size_t)r * TFU_X_KC;
            if (r < nr) tfu_x_k_dequant(1, at, kc / TFU_X_QK, rq + (size_t)r * TFU_X_KC, (const char *)a[r] + (size_t)(l0 / TFU_X_QK) * esz);
            else memset(rq + (size_t)r * TFU_X_KC, 0, (size_t)kc * sizeof(float));
        }
        l = tfu_x_pack_full_f32(rp, 0, kc, pa);
        TFU_ASSERT(l == kc);
        return;
    }
    if (nr == TFU_X_OMR) {
        if (at == TFU_F32) l = tfu_x_pack_full_f32(a, l0, kc, pa);
#if defined(TFU_X_VT) && defined(tfu_x_v_load_f16)
        else if (at == TFU_F16) l = tfu_x_pack_full_f16(a, l0, kc, pa);
#endif
#if defined(TFU_X_VT)
        else if (at == TFU_BF16) l = tfu_x_pack_full_bf16(a, l0, kc, pa);
#endif
    }
    for (; l < kc; l++)
        for (r = 0; r < TFU_X_OMR; r++) pa[(size_t)l * TFU_X_OMR + r] = r < nr ? tfu_x_ld(at, (const char *)a[r] + (size_t)(l0 + l) * esz) : 0.0f;
}

/* c[j * ldc + i] = (c[j * ldc + i] if add, else 0) + sum over l < kc of
   pa[l * OMR + i] * b[j][l], for i < OMR, j < ONR */
static void tfu_x_k_outer(int kc, const float *pa, const float *const *b, float *c, size_t ldc, int add) {
    tfu_x_vf c00 = tfu_x_v_set1(0.0f), c10 = c00, c01 = c00, c11 = c00, c02 = c00, c12 = c00;
    tfu_x_vf c03 = c00, c13 = c00, c04 = c00, c14 = c00, c05 = c00, c15 = c00;
    const float *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3], *b4 = b[4], *b5 = b[5];
    int l;
    for (l = 0; l < kc; l++) {
        tfu_x_vf a0 = tfu_x_v_load(pa + (size_t)l * TFU_X_OMR), a1 = tfu_x_v_load(pa + (size_t)l * TFU_X_OMR + TFU_X_VW), x;
        x = tfu_x_v_set1(b0[l]);
        c00 = tfu_x_v_fma(a0, x, c00);
        c10 = tfu_x_v_fma(a1, x, c10);
        x = tfu_x_v_set1(b1[l]);
        c01 = tfu_x_v_fma(a0, x, c01);
        c11 = tfu_x_v_fma(a1, x, c11);
        x = tfu_x_v_set1(b2[l]);
        c02 = tfu_x_v_fma(a0, x, c02);
        c12 = tfu_x_v_fma(a1, x, c12);
        x = tfu_x_v_set1(b3[l]);
        c03 = tfu_x_v_fma(a0, x, c03);
        c13 = tfu_x_v_fma(a1, x, c13);
        x = tfu_x_v_set1(b4[l]);
        c04 = tfu_x_v_fma(a0, x, c04);
        c14 = tfu_x_v_fma(a1, x, c14);
        x = tfu_x_v_set1(b5[l]);
        c05 = tfu_x_v_fma(a0, x, c05);
        c15 = tfu_x_v_fma(a1, x, c15);
    }
#define TFU_X_OUTER_ST(j, lo, hi)                                                                           \
    do {                                                                                                  \
        float *cj = c + (size_t)(j) * ldc;                                                                \
        if (add) {                                                                                        \
            lo = tfu_x_v_add(tfu_x_v_load(cj), lo);                                                       \
            hi = tfu_x_v_add(tfu_x_v_load(cj + TFU_X_VW), hi);                                            \
        }                                                                                                 \
        tfu_x_v_store(cj, lo);                                                                            \
        tfu_x_v_store(cj + TFU_X_VW, hi);                                                                 \
    } while (0)
    TFU_X_OUTER_ST(0, c00, c10);
    TFU_X_OUTER_ST(1, c01, c11);
    TFU_X_OUTER_ST(2, c02, c12);
    TFU_X_OUTER_ST(3, c03, c13);
    TFU_X_OUTER_ST(4, c04, c14);
    TFU_X_OUTER_ST(5, c05, c15);
#undef TFU_X_OUTER_ST
}

/* c[j * ldc + i] = dot(a_i, b_j) for i < na, j < nbr (nbr >= 1): k-blocks
   outermost (the packed panels of a block, npanel x OMR x KC floats in
   panel, stay in L1/L2 while every tile of B passes), B tiles of ONR rows,
   then the panels. Edge tiles run through a local tile and copy out. */
static void tfu_x_k_gemm(tfu_type at, int k, int na, const void *const *a, int nbr, const float *const *b, float *c, size_t ldc,
                         float *panel) {
    int np = (na + TFU_X_OMR - 1) / TFU_X_OMR, l0, p, j0, j, i;
    for (l0 = 0; l0 < k; l0 += TFU_X_KC) {
        int kc = k - l0 < TFU_X_KC ? k - l0 : TFU_X_KC;
        for (p = 0; p < np; p++) {
            int nr = na - p * TFU_X_OMR < TFU_X_OMR ? na - p * TFU_X_OMR : TFU_X_OMR;
            tfu_x_pack_panel(at, a + p * TFU_X_OMR, nr, l0, kc, panel + (size_t)p * TFU_X_OMR * TFU_X_KC);
        }
        for (j0 = 0; j0 < nbr; j0 += TFU_X_ONR) {
            const float *bt[TFU_X_ONR];
            int nc = nbr - j0 < TFU_X_ONR ? nbr - j0 : TFU_X_ONR;
            for (j = 0; j < TFU_X_ONR; j++) bt[j] = b[j0 + (j < nc ? j : 0)] + l0;   /* missing rows: any row, not stored */
            for (p = 0; p < np; p++) {
                int nr = na - p * TFU_X_OMR < TFU_X_OMR ? na - p * TFU_X_OMR : TFU_X_OMR;
                const float *pa = panel + (size_t)p * TFU_X_OMR * TFU_X_KC;
                float *cp = c + (size_t)j0 * ldc + (size_t)p * TFU_X_OMR;
                float tile[TFU_X_ONR * TFU_X_OMR];
                if (nr == TFU_X_OMR && nc == TFU_X_ONR) {
                    tfu_x_k_outer(kc, pa, bt, cp, ldc, l0 > 0);
                    continue;
                }
                tfu_x_k_outer(kc, pa, bt, tile, TFU_X_OMR, 0);
                for (j = 0; j < nc; j++)
                    for (i = 0; i < nr; i++) {
                        float v = tile[j * TFU_X_OMR + i];
                        cp[(size_t)j * ldc + (size_t)i] = l0 > 0 ? cp[(size_t)j * ldc + (size_t)i] + v : v;
                    }
            }
        }
    }
}
#endif

/* can tfu_x_k_dot_block read quantized A as it is, for nbr rows of B?
   Matrix-vector products (one row) and packed ones (ONR rows or more, with
   panels: A dequantized into them); the others take A dequantized to f32
   rows first */
static int tfu_x_k_dot_native_q(int simd, int nbr, int have_panel) {
    (void)simd;
    (void)nbr;
    (void)have_panel;
#ifdef TFU_X_VEC
    if (simd && nbr == 1) return 1;
#endif
#if defined(TFU_X_VEC) && defined(TFU_X_VT)
    if (simd && have_panel && nbr >= TFU_X_ONR) return 1;
#endif
    return 0;
}

/* panel: scratch of tfu_x_panel_floats(na) for the packed products, or NULL */
static void tfu_x_k_dot_block(int simd, tfu_type at, int k, int na, const void *const *a, int nbr, const float *const *b, float *c, size_t ldc,
                              float *panel) {
    int i, j, l;
    (void)simd;
    (void)panel;
#if defined(TFU_X_VEC) && defined(TFU_X_VT)
    if (simd && panel && nbr >= TFU_X_ONR) {
        tfu_x_k_gemm(at, k, na, a, nbr, b, c, ldc, panel);
        tfu_x_k_dot_redo(at, k, na, a, nbr, b, c, ldc);
        return;
    }
#endif
#ifdef TFU_X_VEC
    if (simd && tfu_x_is_quant(at)) {   /* tfu_x_k_dot_native_q: one row of B */
        TFU_ASSERT(nbr == 1);
        tfu_x_k_dot_vec_q(at, k, na, a, b[0], c);
        tfu_x_k_dot_redo(at, k, na, a, nbr, b, c, ldc);
        return;
    }
    if (simd) {
        int i0 = 0;   /* rows done by the 8-row kernel */
        if (nbr == 1)   /* a matrix-vector product: 8 rows at a time, the rest by tiles */
            for (; i0 + 8 <= na; i0 += 8) tfu_x_k_dot_vec8(at, k, a + i0, b[0], c + i0);
        for (j = 0; j < nbr; j += TFU_X_NR)
            for (i = i0; i < na; i += TFU_X_MR)
                tfu_x_k_dot_tile(at, k, na - i < TFU_X_MR ? na - i : TFU_X_MR, a + i,
                                 nbr - j < TFU_X_NR ? nbr - j : TFU_X_NR, b + j, c + (size_t)j * ldc + (size_t)i, ldc,
                                 i + 2 * TFU_X_MR <= na ? a + i + TFU_X_MR : NULL);
        tfu_x_k_dot_redo(at, k, na, a, nbr, b, c, ldc);
        return;
    }
#endif
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
    tfu_x_k_dot_redo(at, k, na, a, nbr, b, c, ldc);
}


/* The CPU executor's part of a plan: work splits, scratch slots, threads.
   It reads the shared program (the view's groups, instructions, operands)
   and keeps beside it, per group and per instruction, only what the CPU
   decides. */
typedef struct tfu_x_cpu_group {
    int     n_slots, n_mm;
    int64_t chunk;           /* columns per chunk (whole row for ROW groups)  */
    int64_t rows_per_item, n_items;
    int64_t mb, nbk;         /* matmul blocks: A rows and B rows per item     */
    int64_t n_mblk, n_nblk;
    size_t   qact_row;       /* quant_activations: bytes of a quantized B row (0: off) */
    int64_t att_heads, att_bq, att_nqb; /* ATTENTION items: heads sharing K and V x
                                 positions, query blocks per head block      */
    const double *rope_freq; /* ROPE: base^(-2i/n_dims), i < n_dims/2       */
    uint64_t folded;         /* ROW: instructions a softmax takes in (tfu_x_folded) */
    int      prefetch;       /* ELTWISE over more than TFU_X_PF_MIN bytes     */
} tfu_x_cpu_group;

/* per-thread scratch layout (byte offsets, computed at compile) */
typedef struct tfu_x_scratch_layout { size_t slots, gather, tiles, pack, ptrs, outp, panel, panel_b, qact, qact_b, total; } tfu_x_scratch_layout;

/* quant_activations: the scratch of a thread keeps, per quantized product
   of a group (slot), the rows of B it quantized last and this tag, so that
   B is quantized once per thread per run, not once per item */
typedef struct tfu_x_qact_tag { int64_t seq, group, n0, bi; } tfu_x_qact_tag;
#define TFU_X_QACT_TAGS tfu_x_align_up(sizeof(tfu_x_qact_tag) * TFU_X_MAX_MM, 64)

/* B rows from which a product runs packed (tfu_x_k_dot_block) */
#if defined(TFU_X_VEC) && defined(TFU_X_VT)
#define TFU_X_PACKED_MIN TFU_X_ONR
#else
#define TFU_X_PACKED_MIN INT_MAX
#endif

/* floats of the packed products' panels for blocks of na rows of A (0: the
   build has no packed products) */
static size_t tfu_x_panel_floats(int64_t na) {
#if defined(TFU_X_PACKED)
    return (size_t)((na + TFU_X_OMR - 1) / TFU_X_OMR) * TFU_X_OMR * TFU_X_KC;
#else
    (void)na;
    return 0;
#endif
}

#define TFU_X_MAX_MM 4        /* matrix products in one group (tiles in scratch) */

/* what the CPU executor runs: every group kind, TFU_X_MAX_MM products in
   one tile, rows and K up to INT_MAX (its kernels index rows with int),
   every type */
TFU_API tfu_backend_caps tfu_cpu_caps(void) {
    tfu_backend_caps c;
    int k;
    c.fuse_kinds = (1u << TFU_GROUP_ELTWISE) | (1u << TFU_GROUP_ROW) | (1u << TFU_GROUP_MATMUL) | (1u << TFU_GROUP_ATTENTION);
    c.max_products = TFU_X_MAX_MM;
    c.max_row = INT_MAX;
    for (k = 0; k < TFU_GROUP_KIND_COUNT; k++) c.operand_types[k] = (1u << TFU_TYPE_COUNT) - 1;
    c.max_group_ops = 0;
    return c;
}

/* the backend's caps checked against the CPU's, which runs the plan
   (shared: another backend runs it, only sanity is checked) */
static tfu_result tfu_x_caps_of(const tfu_plan_options *o, int fuse, int shared, tfu_x_caps *caps) {
    tfu_backend_caps cpu = tfu_cpu_caps();
    int k;
    caps->fuse = fuse;
    caps->b = o && o->caps ? *o->caps : cpu;
    if (caps->b.max_group_ops < 0) return TFU_ERR_INVALID_ARG;
    if (shared) return caps->b.max_products >= 1 && caps->b.max_row >= 1 ? TFU_OK : TFU_ERR_INVALID_ARG;
    if (caps->b.max_products < 1 || caps->b.max_products > cpu.max_products) return TFU_ERR_INVALID_ARG;
    if (caps->b.max_row < 1 || caps->b.max_row > cpu.max_row) return TFU_ERR_INVALID_ARG;
    if (caps->b.fuse_kinds & ~cpu.fuse_kinds) return TFU_ERR_INVALID_ARG;
    for (k = 0; k < TFU_GROUP_KIND_COUNT; k++)
        if (caps->b.operand_types[k] & ~cpu.operand_types[k]) return TFU_ERR_INVALID_ARG;
    return TFU_OK;
}

struct tfu_x_cpu {
    tfu_x_cpu_group *groups;     /* per group of the plan                       */
    int32_t         *slot;       /* per instruction: scratch slot, -1: memory   */
    int64_t         *stage_items; /* per group: items of the earlier groups of its stage */
    tfu_x_scratch_layout sl;     /* per thread                                  */
    void            *scratch, *scratch_raw;
    int             *scratch_busy;  /* caller's parallel-for: claimed areas     */
    int              n_threads;
    struct tfu_threadpool *pool;  /* its own, or borrowed (options.pool)     */
    int64_t         *next;       /* per stage: next item on the pool, atomics */
    int64_t          run_seq;    /* runs so far: tags of quantized activations */
};

#define TFU_X_ELT_CHUNK 256   /* columns per chunk of an element-wise group: short phases keep memory streaming */
/* An element-wise group of several operations over more than TFU_X_PF_MIN
   bytes fetches what it reads and writes in memory TFU_X_PF_AHEAD bytes
   ahead into L2: a core that computes between its loads keeps fewer misses
   in flight than its prefetchers need. On the H200 host's Xeon, from
   memory, 2 threads: W4 (gelu((a+b)*c)*0.5, 4 operations) 0.62-0.68 of
   triad without, 0.75-0.93 with; W3 (one swiglu) 0.81-0.84 without,
   0.76-0.79 with, and row groups (whose rows the kernels prefetch) lost
   5-10 %: both left out. */
#define TFU_X_PF_AHEAD 8192
#define TFU_X_PF_MIN   ((double)(1 << 20))
#define TFU_X_MM_MB 32        /* rows of A (output columns) per matmul item  */
#define TFU_X_MM_NB 64        /* rows of B (output rows) per matmul item     */
#define TFU_X_MM_NB_PACKED 128 /* the same for packed products: a panel serves 128 rows of B */


/* row pointer of t at (i1,i2,i3), column c0 */
static char *tfu_x_rowp(const tfu_tensor *t, int64_t c0, int64_t i1, int64_t i2, int64_t i3) {
    return (char *)t->data + (size_t)c0 * t->nb[0] + (size_t)i1 * t->nb[1] + (size_t)i2 * t->nb[2] + (size_t)i3 * t->nb[3];
}

/* an external operand as n contiguous f32 values, columns [c0, c0+n) of the
   group's row (i1,i2,i3): a pointer into memory when it already is, else
   converted, gathered or broadcast into buf */
static const float *tfu_x_operand_ptr(const tfu_plan *p, const tfu_pv_operand *e, int64_t gne0, int64_t c0, int n,
                                  int64_t i1, int64_t i2, int64_t i3, float *buf) {
    const tfu_tensor *x = p->t[e->tensor];
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
        tfu_x_k_load(!p->opt.no_simd, x->type, n, buf, q, x->nb[0]);
        return buf;
    }
    for (k = 0; k < n; k++) buf[k] = tfu_x_ld(x->type, base + (size_t)((c0 + k) % x->ne[0]) * x->nb[0]);
    return buf;
}

/* source r of an instruction of G (>= 0: an instruction's row, < 0: an
   external operand) as n f32 values, columns [c0, c0+n) of row (i1,i2,i3) */
static const float *tfu_x_src_row(const tfu_plan *p, const tfu_pv_group *G, const tfu_x_cpu_group *C, float *gather,
                                  const float **outp, int32_t r, int64_t c0, int n, int64_t i1, int64_t i2, int64_t i3) {
    if (r >= 0) return outp[r];
    return tfu_x_operand_ptr(p, &p->ext[G->first_operand + (-1 - r)], G->ne[0], c0, n, i1, i2, i3,
                             gather + (size_t)(-1 - r) * (size_t)C->chunk);
}

/* instruction j of G holds a value only the one op after it reads: not
   written to memory, one use in G (bit j of a 64-bit mask: j < 64) */
static int tfu_x_single_use(const tfu_plan *p, const tfu_pv_group *G, int32_t j) {
    int k, s, uses = 0;
    if (j < 0 || j >= 64 || p->ins[G->first_instr + j].store) return 0;
    for (k = j + 1; k < G->n_instr; k++) {
        const tfu_pv_instr *I = &p->ins[G->first_instr + k];
        for (s = 0; s < I->n_src; s++) uses += I->src[s] == j;
    }
    return uses == 1;
}

/* a SCALE without bias at instruction j of G that tfu_x_single_use allows
   to fold */
static int tfu_x_plain_scale(const tfu_plan *p, const tfu_pv_group *G, int32_t j) {
    const tfu_tensor *t;
    if (!tfu_x_single_use(p, G, j)) return 0;
    t = p->t[p->ins[G->first_instr + j].tensor];
    return t->op == TFU_OP_SCALE && t->op_params_f[1] == 0.0f;
}

/* The softmax at instruction k of a row group takes its prologue in:
   SOFT_MAX(ADD(SCALE(x, s), m)), SOFT_MAX(SCALE(x, s)) or
   SOFT_MAX(ADD(x, m)), the softmax without a mask of its own and with
   scale 1, the SCALE without bias, the folded values read by the next op
   alone and computed right before the softmax (instructions k-2, k-1:
   the slots of x and m, live up to the folded instructions, are then not
   yet reused when the softmax reads them). The kernel computes x*s + m
   from x and m, a product then a sum in f32 as the folded instructions
   did (their SCALE's fma with a zero bias rounds as the product; only the
   sign of a zero sum may differ, which no exp sees), so the results are
   the same, and the row makes one or two passes less through scratch. Returns the folded instructions (bit j for
   instruction j), 0 for none; *xr and *mr are the kernel's input and mask
   as sources (tfu_x_src_row), *mr INT32_MIN for none, *scale its scale. */
static uint64_t tfu_x_soft_max_fold(const tfu_plan *p, const tfu_pv_group *G, int k, int32_t *xr, int32_t *mr, float *scale) {
    const tfu_pv_instr *I = &p->ins[G->first_instr + k];
    const tfu_tensor *t = p->t[I->tensor];
    uint64_t folded = 0;
    *xr = I->src[0];
    *mr = INT32_MIN;
    *scale = 1.0f;
    if (t->op != TFU_OP_SOFT_MAX || I->n_src != 1 || t->op_params_f[0] != 1.0f) return 0;
    if (*xr == k - 1 && tfu_x_single_use(p, G, *xr) && p->t[p->ins[G->first_instr + *xr].tensor]->op == TFU_OP_ADD) {
        const tfu_pv_instr *A = &p->ins[G->first_instr + *xr];
        folded |= (uint64_t)1 << *xr;
        *xr = A->src[0];
        *mr = A->src[1];
        if (*xr != k - 2 && *mr == k - 2) {   /* m + x*s: f32 sums commute */
            *xr = A->src[1];
            *mr = A->src[0];
        }
    }
    if (*xr == k - 1 - (folded != 0) && tfu_x_plain_scale(p, G, *xr)) {
        const tfu_pv_instr *S = &p->ins[G->first_instr + *xr];
        folded |= (uint64_t)1 << *xr;
        *scale = p->t[S->tensor]->op_params_f[0];
        *xr = S->src[0];
    }
    return folded;
}

/* the instructions of G folded into a later op (tfu_x_soft_max_fold) */
static uint64_t tfu_x_folded(const tfu_plan *p, const tfu_pv_group *G) {
    uint64_t folded = 0;
    int k;
    int32_t xr, mr;
    float scale;
    if (G->kind != TFU_GROUP_ROW) return 0;
    for (k = 0; k < G->n_instr; k++)
        if (p->t[p->ins[G->first_instr + k].tensor]->op == TFU_OP_SOFT_MAX) folded |= tfu_x_soft_max_fold(p, G, k, &xr, &mr, &scale);
    return folded;
}

/* runs the group program over columns [c0, c0+n) of row (i1,i2,i3); outp
   holds, on entry, the rows of any matmul members */
static void tfu_x_run_chunk(const tfu_plan *p, const tfu_pv_group *G, const tfu_x_cpu_group *C, unsigned char *sc,
                            int64_t i1, int64_t i2, int64_t i3, int64_t c0, int n, const float **outp) {
    const tfu_x_scratch_layout *SL = &p->cpu->sl;
    float *slots = (float *)(void *)(sc + SL->slots), *gather = (float *)(void *)(sc + SL->gather);
    uint64_t folded = C->folded;
    int k, s, simd = !p->opt.no_simd;
    for (k = 0; k < G->n_instr; k++) {
        const tfu_pv_instr *I = &p->ins[G->first_instr + k];
        int32_t slot = p->cpu->slot[G->first_instr + k];
        tfu_tensor *t = p->t[I->tensor];
        const float *src[TFU_MAX_SRC];
        float *dst;
        if (t->op == TFU_OP_MUL_MAT) continue;
        if (k < 64 && (folded >> k & 1)) continue;
        for (s = 0; s < I->n_src; s++) src[s] = tfu_x_src_row(p, G, C, gather, outp, I->src[s], c0, n, i1, i2, i3);
        for (; s < TFU_MAX_SRC; s++) src[s] = NULL;
        dst = slot >= 0 ? slots + (size_t)slot * (size_t)C->chunk : (float *)(void *)tfu_x_rowp(t, c0, i1, i2, i3);
        if (C->prefetch) {   /* operands in memory (not this thread's scratch) and the row it stores;
                                addresses as integers: ahead may be past the tensor (a prefetch never faults) */
            uintptr_t lo = (uintptr_t)sc, hi = lo + SL->total, q;
            int b;
            for (s = 0; s < I->n_src; s++) {
                q = (uintptr_t)src[s];
                if (q >= lo && q < hi) continue;
                for (b = 0; b < n * 4; b += 64) TFU_X_PREFETCH_L2((const void *)(q + TFU_X_PF_AHEAD + (uintptr_t)b));
            }
            if (slot < 0 || I->store) {
                q = slot < 0 ? (uintptr_t)dst : (uintptr_t)tfu_x_rowp(t, c0, i1, i2, i3);
                for (b = 0; b < n * (int)tfu_type_size(t->type); b += 64) TFU_X_PREFETCH_W((const void *)(q + TFU_X_PF_AHEAD + (uintptr_t)b));
            }
        }
        switch (t->op) {
        case TFU_OP_ADD: case TFU_OP_SUB: case TFU_OP_MUL: case TFU_OP_DIV:
            tfu_x_k_binary(simd, t->op, n, dst, src[0], src[1]); break;
        case TFU_OP_GLU: tfu_x_k_glu(simd, t->op_params_i[0], n, dst, src[0], src[1]); break;
        case TFU_OP_RMS_NORM: tfu_x_k_rms_norm(simd, n, dst, src[0], t->op_params_f[0]); break;
        case TFU_OP_NORM: tfu_x_k_norm(simd, n, dst, src[0], t->op_params_f[0]); break;
        case TFU_OP_SOFT_MAX:
            if (folded) {
                int32_t xr, mr;
                float scale;
                if (tfu_x_soft_max_fold(p, G, k, &xr, &mr, &scale)) {
                    const float *mask = mr == INT32_MIN ? NULL : tfu_x_src_row(p, G, C, gather, outp, mr, c0, n, i1, i2, i3);
                    tfu_x_k_soft_max(simd, n, dst, tfu_x_src_row(p, G, C, gather, outp, xr, c0, n, i1, i2, i3), mask, scale);
                    break;
                }
            }
            tfu_x_k_soft_max(simd, n, dst, src[0], src[1], t->op_params_f[0]);
            break;
        default: tfu_x_k_unary(simd, t->op, n, dst, src[0], t->op_params_f); break;
        }
        if (I->store && slot >= 0) tfu_x_k_store(t->type, n, tfu_x_rowp(t, c0, i1, i2, i3), t->nb[0], dst);
        outp[k] = dst;
    }
}

/* the quantized rows of B (nn rows of k, f32 at brow) for quantized product
   slot of group g, rows n0.. of batch bi: quantized into this thread's
   scratch unless its tag says it did so already in this run */
static const unsigned char *tfu_x_qact_rows(const tfu_plan *p, const tfu_x_cpu_group *C, unsigned char *sc, int64_t g, int slot,
                                            int64_t n0, int64_t bi, int nn, int k, const float *const *brow) {
    unsigned char *base = sc + p->cpu->sl.qact;
    tfu_x_qact_tag *tag = (tfu_x_qact_tag *)(void *)base + slot;
    unsigned char *rows = base + TFU_X_QACT_TAGS + (size_t)slot * (size_t)C->nbk * C->qact_row;
    int j;
    if (tag->seq == p->cpu->run_seq && tag->group == g && tag->n0 == n0 && tag->bi == bi) return rows;
    for (j = 0; j < nn; j++) tfu_x_k_qact_row(!p->opt.no_simd, k, brow[j], rows + (size_t)j * C->qact_row);
    tag->seq = p->cpu->run_seq;
    tag->group = g;
    tag->n0 = n0;
    tag->bi = bi;
    return rows;
}

/* scratch from the allocator: tags that match no run */
static void tfu_x_qact_clear(tfu_plan *p) {
    int k;
    if (!p->cpu->sl.qact_b) return;
    for (k = 0; k < p->cpu->n_threads; k++) memset((unsigned char *)p->cpu->scratch + (size_t)k * p->cpu->sl.total + p->cpu->sl.qact, 0, TFU_X_QACT_TAGS);
}

static void tfu_x_run_matmul_item(const tfu_plan *p, const tfu_pv_group *G, const tfu_x_cpu_group *C, unsigned char *sc, int64_t item) {
    const tfu_x_scratch_layout *SL = &p->cpu->sl;
    int64_t nblk = item % C->n_nblk, mblk = (item / C->n_nblk) % C->n_mblk, bi = item / (C->n_nblk * C->n_mblk);
    int64_t i2 = bi % G->ne[2], i3 = bi / G->ne[2];
    int64_t m0 = mblk * C->mb, n0 = nblk * C->nbk;
    int mm = (int)(G->ne[0] - m0 < C->mb ? G->ne[0] - m0 : C->mb);
    int nn = (int)(G->ne[1] - n0 < C->nbk ? G->ne[1] - n0 : C->nbk);
    const float **outp = (const float **)(void *)(sc + SL->outp);
    const void **arow = (const void **)(void *)(sc + SL->ptrs);
    const float **brow = (const float **)(void *)(arow + C->mb);
    float *tiles = (float *)(void *)(sc + SL->tiles), *pack = (float *)(void *)(sc + SL->pack);
    float *cptr[TFU_X_MAX_MM]; size_t ldc[TFU_X_MAX_MM];
    int k, j, nm = 0, nq = 0, simd = !p->opt.no_simd;
    for (k = 0; k < G->n_instr; k++) {
        const tfu_pv_instr *I = &p->ins[G->first_instr + k];
        tfu_tensor *t = p->t[I->tensor], *a, *b;
        tfu_type at;
        int native, qact;
        int64_t K, r2, r3;
        float *c;
        if (t->op != TFU_OP_MUL_MAT) continue;
        a = p->t[p->ext[G->first_operand + (-1 - I->src[0])].tensor];
        b = p->t[p->ext[G->first_operand + (-1 - I->src[1])].tensor];
        K = a->ne[0]; r2 = b->ne[2] / a->ne[2]; r3 = b->ne[3] / a->ne[3];
        native = a->nb[0] == tfu_type_size(a->type) && tfu_x_k_dot_native(simd, a->type);
        qact = C->qact_row && tfu_x_is_quant(a->type);   /* int8 dot products read A as it is */
        if (tfu_x_is_quant(a->type)) native = qact || tfu_x_k_dot_native_q(simd, nn, SL->panel_b != 0);
        at = native ? a->type : TFU_F32;
        for (j = 0; j < mm; j++) {
            const char *q = tfu_x_rowp(a, 0, m0 + j, i2 / r2, i3 / r3);
            if (native) arow[j] = q;
            else { float *d = pack + (size_t)j * (size_t)K; tfu_x_k_load(simd, a->type, (int)K, d, q, a->nb[0]); arow[j] = d; }
        }
        for (j = 0; j < nn; j++) {
            const char *q = tfu_x_rowp(b, 0, n0 + j, i2, i3);
            if (b->nb[0] == 4) brow[j] = (const float *)(const void *)q;
            else { float *d = pack + (size_t)(C->mb + j) * (size_t)K; tfu_x_k_load(simd, b->type, (int)K, d, q, b->nb[0]); brow[j] = d; }
        }
        if (p->cpu->slot[G->first_instr + k] < 0) { c = (float *)(void *)tfu_x_rowp(t, m0, n0, i2, i3); ldc[nm] = t->nb[1] / 4; }
        else { c = tiles + (size_t)p->cpu->slot[G->first_instr + k] * (size_t)(C->mb * C->nbk); ldc[nm] = (size_t)mm; }
        if (qact) {
            const unsigned char *qb = tfu_x_qact_rows(p, C, sc, G - p->groups, nq++, n0, bi, nn, (int)K, brow);
            tfu_x_k_dot_qact(simd, at, (int)K, mm, arow, nn, qb, C->qact_row, c, ldc[nm]);
            tfu_x_k_dot_redo(at, (int)K, mm, arow, nn, brow, c, ldc[nm]);   /* NaN or inf: exactly, as the reference */
        } else {
            tfu_x_k_dot_block(simd, at, (int)K, mm, arow, nn, brow, c, ldc[nm], SL->panel_b ? (float *)(void *)(sc + SL->panel) : NULL);
        }
        cptr[nm++] = c;
    }
    if (G->n_instr > C->n_mm) {
        for (j = 0; j < nn; j++) {
            int q = 0;
            for (k = 0; k < G->n_instr; k++)
                if (p->t[p->ins[G->first_instr + k].tensor]->op == TFU_OP_MUL_MAT) { outp[k] = cptr[q] + (size_t)j * ldc[q]; q++; }
            tfu_x_run_chunk(p, G, C, sc, n0 + j, i2, i3, m0, mm, outp);
        }
    }
}

/* --- fused attention (TFU_GROUP_ATTENTION) ---------------------------------
   out = mul_mat(V, soft_max_ext(mul_mat(K, Q), mask, scale)), shapes
     K: hd x n_kv x nh_k x n3_k    Q: hd x n_q x nh x n3
     V: n_kv x hdv x nh_v x n3_v   out: hdv x n_q x nh x n3
   (K's and V's heads broadcast over Q's by division, as mul_mat does).
   An item is att_heads heads that share their K and V head times up to
   att_bq query positions of one batch index: R query rows. Per item the
   scores of its rows go, key block by key block, into scratch (R x n_kv,
   never the arena), each row takes the softmax kernel the unfused plan
   runs (tfu_x_k_soft_max, the same f32 values in), then out += P_blk V_blk
   block by block. Two skips, both exact:
   - scores: a key block whose mask is -inf for every row of the item,
     where every score is finite (K and Q finite, |q| |k| hd |scale| below
     FLT_MAX / 2): its scores are set to 0, since 0 * scale + -inf is the
     -inf that s * scale + -inf is;
   - values: a key block whose probabilities are all 0 with V finite there
     adds exactly 0 and is not multiplied.
   The unfused product redoes outputs that came out inf or NaN in double,
   for sums that overflowed f32 on the way; here every partial sum of
   p * v over a row of probabilities stays within max |v| (but for
   rounding), so an inf or NaN comes from V and double gives the same. */
#define TFU_X_ATT_BK   64   /* keys per block: the unit of both skips     */
#define TFU_X_ATT_ROWS 48   /* query rows per item, about (a multiple of ONR) */
#define TFU_X_ATT_ITEMS 8   /* items wanted at least (positions allowing): a
                               constant, not the thread count, so that the
                               blocking, and so every bit, is the same on
                               any number of threads */

static int64_t tfu_x_gcd(int64_t a, int64_t b) {
    while (b) {
        int64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* the same over n rows of k floats */
static double tfu_x_rows_absmax(int simd, const float *const *rows, int n, int k) {
    double m = 0;
    int j;
    for (j = 0; j < n; j++) {
        double r = (double)tfu_x_k_absmax(simd, k, rows[j]);
        if (r > m) m = r;
    }
    return m;
}

/* 1 if x[0..n) are all -inf (a NaN is not) */
static int tfu_x_k_all_neg_inf(int simd, int n, const float *x) {
    int i = 0;
    (void)simd;
#ifdef TFU_X_VEC
    if (simd) {
        tfu_x_vf one = tfu_x_v_set1(1.0f), acc = tfu_x_v_set1(0.0f);
        for (; i + TFU_X_VW <= n; i += TFU_X_VW) acc = tfu_x_v_add(acc, tfu_x_v_zero_below(one, tfu_x_v_load(x + i), -FLT_MAX));
        if (tfu_x_v_hsum(acc) != 0.0f) return 0;
    }
#endif
    for (; i < n; i++)
        if (x[i] != -INFINITY) return 0;
    return 1;
}

/* o[j * ldo + d] += sum over l < nk of p[j][l] * v[l][d], j < nr, d < hdv.
   The packed path: V's panels pa[l * OMR + r] = v[l][p * OMR + r] and the
   matrix products' micro-kernel, rows of P as its B */
static void tfu_x_k_attn_pv(int simd, int nk, int hdv, int nr, const float *const *pr, const float *const *v, float *o, size_t ldo,
                            float *panel) {
    int j, l, d = 0;
    (void)simd;
    (void)panel;
#if defined(TFU_X_PACKED)
    if (simd && panel && nr >= TFU_X_ONR) {
        int np = (hdv + TFU_X_OMR - 1) / TFU_X_OMR, p, j0, i;
        TFU_ASSERT(nk <= TFU_X_KC);
        for (p = 0; p < np; p++) {
            float *pa = panel + (size_t)p * TFU_X_OMR * TFU_X_KC;
            int w = hdv - p * TFU_X_OMR < TFU_X_OMR ? hdv - p * TFU_X_OMR : TFU_X_OMR;
            for (l = 0; l < nk; l++) {
                const float *src = v[l] + (size_t)p * TFU_X_OMR;
                float *dst = pa + (size_t)l * TFU_X_OMR;
                if (w == TFU_X_OMR) {   /* a whole panel row: two vectors */
                    tfu_x_v_store(dst, tfu_x_v_load(src));
                    tfu_x_v_store(dst + TFU_X_VW, tfu_x_v_load(src + TFU_X_VW));
                    continue;
                }
                for (i = 0; i < TFU_X_OMR; i++) dst[i] = i < w ? src[i] : 0.0f;
            }
        }
        for (j0 = 0; j0 < nr; j0 += TFU_X_ONR) {
            const float *bt[TFU_X_ONR];
            int nc = nr - j0 < TFU_X_ONR ? nr - j0 : TFU_X_ONR;
            for (j = 0; j < TFU_X_ONR; j++) bt[j] = pr[j0 + (j < nc ? j : 0)];   /* missing rows: any row, not stored */
            for (p = 0; p < np; p++) {
                int w = hdv - p * TFU_X_OMR < TFU_X_OMR ? hdv - p * TFU_X_OMR : TFU_X_OMR;
                float *cp = o + (size_t)j0 * ldo + (size_t)p * TFU_X_OMR;
                float tile[TFU_X_ONR * TFU_X_OMR];
                if (w == TFU_X_OMR && nc == TFU_X_ONR) {
                    tfu_x_k_outer(nk, panel + (size_t)p * TFU_X_OMR * TFU_X_KC, bt, cp, ldo, 1);
                    continue;
                }
                tfu_x_k_outer(nk, panel + (size_t)p * TFU_X_OMR * TFU_X_KC, bt, tile, TFU_X_OMR, 0);
                for (j = 0; j < nc; j++)
                    for (i = 0; i < w; i++) cp[(size_t)j * ldo + (size_t)i] += tile[j * TFU_X_OMR + i];
            }
        }
        return;
    }
#endif
    for (j = 0; j < nr; j++) {
        float *oj = o + (size_t)j * ldo;
        for (l = 0; l < nk; l++) {
            float pj = pr[j][l];
            const float *vl = v[l];
            d = 0;
#ifdef TFU_X_VEC
            if (simd) {
                tfu_x_vf vp = tfu_x_v_set1(pj);
                for (; d + TFU_X_VW <= hdv; d += TFU_X_VW) tfu_x_v_store(oj + d, tfu_x_v_fma(vp, tfu_x_v_load(vl + d), tfu_x_v_load(oj + d)));
            }
#endif
            for (; d < hdv; d++) oj[d] += pj * vl[d];
        }
    }
}

/* the tensors of an attention group's program */
typedef struct tfu_x_attn { const tfu_tensor *k, *q, *mask, *v, *out; float scale; } tfu_x_attn;

static tfu_x_attn tfu_x_attn_of(const tfu_plan *p, const tfu_pv_group *G) {
    const tfu_pv_instr *I = p->ins + G->first_instr;
    const tfu_pv_operand *E = p->ext + G->first_operand;
    tfu_x_attn A;
    A.k = p->t[E[-1 - I[0].src[0]].tensor];
    A.q = p->t[E[-1 - I[0].src[1]].tensor];
    A.mask = I[1].n_src > 1 ? p->t[E[-1 - I[1].src[1]].tensor] : NULL;
    A.scale = p->t[I[1].tensor]->op_params_f[0];
    A.v = p->t[E[-1 - I[2].src[0]].tensor];
    A.out = p->t[I[2].tensor];
    return A;
}

/* may the key block [k0, k0 + nk) skip its scores (see above)? */
static int tfu_x_attn_skip_scores(int simd, const tfu_x_attn *A, const float *const *mrow, int nr, int k0, int nk, double qmax,
                                  const float *const *krow) {
    double kmax;
    int j;
    if (!A->mask || !(qmax < INFINITY) || !tfu_x_finite(A->scale)) return 0;
    for (j = 0; j < nr; j++)
        if (!tfu_x_k_all_neg_inf(simd, nk, mrow[j] + k0)) return 0;
    kmax = tfu_x_rows_absmax(simd, krow, nk, (int)A->k->ne[0]);
    return kmax < INFINITY && qmax * kmax * (double)A->k->ne[0] * fabs((double)A->scale) < (double)FLT_MAX / 2;
}

static void tfu_x_run_attn_item(const tfu_plan *p, const tfu_pv_group *G, const tfu_x_cpu_group *C, unsigned char *sc, int64_t item) {
    const tfu_x_scratch_layout *SL = &p->cpu->sl;
    tfu_x_attn A = tfu_x_attn_of(p, G);
    int64_t nh = G->ne[2], n3 = G->ne[3], nq_all = G->ne[1];
    int64_t qb = item % C->att_nqb, hb = (item / C->att_nqb) % (nh / C->att_heads), i3 = item / (C->att_nqb * (nh / C->att_heads));
    int64_t q0 = qb * C->att_bq, h0 = hb * C->att_heads;
    int hd = (int)A.k->ne[0], hdv = (int)G->ne[0], nkv = (int)A.k->ne[1], bk = TFU_X_ATT_BK, simd = !p->opt.no_simd;
    int nq = (int)(nq_all - q0 < C->att_bq ? nq_all - q0 : C->att_bq), nr = (int)C->att_heads * nq, rmax = (int)(C->att_heads * C->att_bq);
    int64_t kh = h0 / (nh / A.k->ne[2]), k3 = i3 / (n3 / A.k->ne[3]), vh = h0 / (nh / A.v->ne[2]), v3 = i3 / (n3 / A.v->ne[3]);
    float *sbuf = (float *)(void *)(sc + SL->tiles), *obuf = sbuf + (size_t)rmax * (size_t)nkv;
    float *qbuf = (float *)(void *)(sc + SL->pack), *kbuf = qbuf + (size_t)rmax * (size_t)hd, *vbuf = kbuf + (size_t)bk * (size_t)hd;
    float *mbuf = vbuf + (size_t)bk * (size_t)hdv;
    float *panel = SL->panel_b ? (float *)(void *)(sc + SL->panel) : NULL;
    const float **krow = (const float **)(void *)(sc + SL->ptrs), **vrow = krow + bk, **qrow = vrow + bk, **mrow = qrow + rmax;
    const float **prow = mrow + rmax;
    double qmax;
    int j, l, k0, kend = 0, n1;
    for (j = 0; j < nr; j++) {   /* row j: head h0 + j / nq, position q0 + j % nq */
        int64_t h = h0 + j / nq, iq = q0 + j % nq;
        const char *qp = tfu_x_rowp(A.q, 0, iq, h, i3);
        if (A.q->nb[0] == 4) qrow[j] = (const float *)(const void *)qp;
        else {
            tfu_x_k_load(simd, A.q->type, hd, qbuf + (size_t)j * hd, qp, A.q->nb[0]);
            qrow[j] = qbuf + (size_t)j * hd;
        }
        if (A.mask) {
            const char *mp = tfu_x_rowp(A.mask, 0, iq % A.mask->ne[1], h % A.mask->ne[2], i3 % A.mask->ne[3]);
            if (A.mask->type == TFU_F32 && A.mask->nb[0] == 4) mrow[j] = (const float *)(const void *)mp;
            else {
                tfu_x_k_load(simd, A.mask->type, nkv, mbuf + (size_t)j * nkv, mp, A.mask->nb[0]);
                mrow[j] = mbuf + (size_t)j * nkv;
            }
        }
    }
    qmax = tfu_x_rows_absmax(simd, qrow, nr, hd);
    for (k0 = 0; k0 < nkv; k0 += bk) {   /* scores */
        int nk = nkv - k0 < bk ? nkv - k0 : bk;
        for (l = 0; l < nk; l++) {
            const char *kp = tfu_x_rowp(A.k, 0, k0 + l, kh, k3);
            if (A.k->type == TFU_F32 && A.k->nb[0] == 4) krow[l] = (const float *)(const void *)kp;
            else {
                tfu_x_k_load(simd, A.k->type, hd, kbuf + (size_t)l * hd, kp, A.k->nb[0]);
                krow[l] = kbuf + (size_t)l * hd;
            }
        }
        if (tfu_x_attn_skip_scores(simd, &A, mrow, nr, k0, nk, qmax, krow)) {
            for (j = 0; j < nr; j++) memset(sbuf + (size_t)j * nkv + k0, 0, (size_t)nk * sizeof(float));
            continue;
        }
#if defined(TFU_X_PACKED)
        if (simd && panel && nr >= TFU_X_ONR) {   /* packed also where products are not (AVX-512) */
            tfu_x_k_gemm(TFU_F32, hd, nk, (const void *const *)krow, nr, qrow, sbuf + k0, (size_t)nkv, panel);
            tfu_x_k_dot_redo(TFU_F32, hd, nk, (const void *const *)krow, nr, qrow, sbuf + k0, (size_t)nkv);
        } else
#endif
        tfu_x_k_dot_block(simd, TFU_F32, hd, nk, (const void *const *)krow, nr, qrow, sbuf + k0, (size_t)nkv, panel);
        kend = k0 + nk;
    }
    /* Softmax of each row over [0, kend), the keys up to the last block
       whose scores were not skipped: the rest is -inf, which moves no max
       and adds exact zeros to the sums (the vector lanes of [0, kend) are
       those of the whole row: kend is a multiple of 64 or the row's end),
       so it ends as 0. Where the whole row ends as NaN (a NaN anywhere,
       every key -inf) it is NaN in [0, kend) already, and so is its output:
       the rest may be 0. No key left: the whole row. */
    n1 = kend > 0 ? kend : nkv;
    for (j = 0; j < nr; j++) {
        float *sj = sbuf + (size_t)j * nkv;
        tfu_x_k_soft_max(simd, n1, sj, sj, A.mask ? mrow[j] : NULL, A.scale);
        if (n1 < nkv) memset(sj + n1, 0, (size_t)(nkv - n1) * sizeof(float));
    }
    memset(obuf, 0, (size_t)nr * (size_t)hdv * sizeof(float));
    for (k0 = 0; k0 < nkv; k0 += bk) {   /* out += P V, block by block */
        int nk = nkv - k0 < bk ? nkv - k0 : bk, zero = 1;
        for (j = 0; j < nr && zero && k0 < n1; j++) zero = tfu_x_k_absmax(simd, nk, sbuf + (size_t)j * nkv + k0) == 0.0f;
        for (l = 0; l < nk; l++) {
            const char *vp = tfu_x_rowp(A.v, k0 + l, 0, vh, v3);
            if (A.v->type == TFU_F32 && A.v->nb[1] == 4) vrow[l] = (const float *)(const void *)vp;
            else {
                tfu_x_k_load(simd, A.v->type, hdv, vbuf + (size_t)l * hdv, vp, A.v->nb[1]);
                vrow[l] = vbuf + (size_t)l * hdv;
            }
        }
        if (zero && tfu_x_rows_absmax(simd, vrow, nk, hdv) < INFINITY) continue;
        for (j = 0; j < nr; j++) prow[j] = sbuf + (size_t)j * nkv + k0;
        tfu_x_k_attn_pv(simd, nk, hdv, nr, prow, vrow, obuf, (size_t)hdv, panel);
    }
    for (j = 0; j < nr; j++) {
        int64_t h = h0 + j / nq, iq = q0 + j % nq;
        tfu_x_k_store(A.out->type, hdv, tfu_x_rowp(A.out, 0, iq, h, i3), A.out->nb[0], obuf + (size_t)j * hdv);
    }
}

/* single-op groups with kernels of their own; an item is a range of rows */
static void tfu_x_run_other(const tfu_plan *p, const tfu_pv_group *G, const tfu_x_cpu_group *C, unsigned char *sc,
                            int64_t r0, int64_t r1) {
    const tfu_x_scratch_layout *SL = &p->cpu->sl;
    const tfu_pv_instr *I = &p->ins[G->first_instr];
    tfu_tensor *t = p->t[I->tensor];
    const tfu_tensor *a = t->src[0], *b = t->src[1];
    float *buf = (float *)(void *)(sc + SL->pack);
    int64_t r;
    int simd = !p->opt.no_simd, have_table = 0;
    int32_t table_pos = 0;
    if (t->op == TFU_OP_SET_ROWS) {   /* items over the rows of a; row idx[i1] of t (dst) */
        for (r = r0; r < r1; r++) {
            int64_t i1 = r % G->ne[1], i2 = (r / G->ne[1]) % G->ne[2], i3 = r / (G->ne[1] * G->ne[2]);
            int32_t row = tfu_x_row_index(b, i1, i2 % b->ne[1], i3 % b->ne[2], t->ne[1]);
            tfu_x_k_load(simd, a->type, (int)a->ne[0], buf, tfu_x_rowp(a, 0, i1, i2, i3), a->nb[0]);
            tfu_x_k_store(t->type, (int)t->ne[0], tfu_x_rowp(t, 0, row, i2, i3), t->nb[0], buf);
        }
        return;
    }
    for (r = r0; r < r1; r++) {
        int64_t i1 = r % G->ne[1], i2 = (r / G->ne[1]) % G->ne[2], i3 = r / (G->ne[1] * G->ne[2]);
        float *d = (float *)(void *)tfu_x_rowp(t, 0, i1, i2, i3);
        switch (t->op) {
        case TFU_OP_GET_ROWS: {
            int32_t row = tfu_x_row_index(b, i1, i2, i3, a->ne[1]);
            tfu_x_k_load(simd, a->type, (int)a->ne[0], d, tfu_x_rowp(a, 0, row, 0, 0), a->nb[0]);
        } break;
        case TFU_OP_ROPE: {   /* buf: the row as f32 (ne0), then the table (2 n_dims) */
            int nd = t->op_params_i[0], neox = t->op_params_i[1] == TFU_ROPE_NEOX;
            float *tc = buf + t->ne[0], *ts = tc + nd;
            const char *q = tfu_x_rowp(a, 0, i1, i2, i3);
            const float *x = buf;
            int32_t pos;
            memcpy(&pos, (const char *)b->data + (size_t)i2 * b->nb[0], 4);
            if (!have_table || pos != table_pos) {   /* rows run head by head: one table per token */
                tfu_x_rope_table(simd, nd, neox, C->rope_freq, pos, tc, ts);
                have_table = 1;
                table_pos = pos;
            }
            if (a->type == TFU_F32 && a->nb[0] == 4) x = (const float *)(const void *)q;
            else tfu_x_k_load(simd, a->type, (int)a->ne[0], buf, q, a->nb[0]);
            tfu_x_k_rope(simd, nd, neox, d, x, tc, ts);
            if (d != x && t->ne[0] > nd) memmove(d + nd, x + nd, (size_t)(t->ne[0] - nd) * sizeof(float));
        } break;
        case TFU_OP_CONCAT: {
            int dim = t->op_params_i[0];
            if (dim == 0) {
                tfu_x_k_load(simd, a->type, (int)a->ne[0], d, tfu_x_rowp(a, 0, i1, i2, i3), a->nb[0]);
                tfu_x_k_load(simd, b->type, (int)b->ne[0], d + a->ne[0], tfu_x_rowp(b, 0, i1, i2, i3), b->nb[0]);
            } else {
                int64_t ix[4];
                const tfu_tensor *srct;
                ix[1] = i1; ix[2] = i2; ix[3] = i3;
                if (ix[dim] < a->ne[dim]) srct = a; else { ix[dim] -= a->ne[dim]; srct = b; }
                tfu_x_k_load(simd, srct->type, (int)t->ne[0], d, tfu_x_rowp(srct, 0, ix[1], ix[2], ix[3]), srct->nb[0]);
            }
        } break;
        default: {  /* SUM_ROWS, MEAN, ARGMAX: one value per row of a */
            int n = (int)a->ne[0], i, best = 0;
            tfu_x_k_load(simd, a->type, n, buf, tfu_x_rowp(a, 0, i1, i2, i3), a->nb[0]);
            if (t->op == TFU_OP_ARGMAX) {
                int32_t bi;
                for (i = 0; i < n; i++) {   /* the first NaN, else the first maximum (tfu_argmax) */
                    if (buf[i] != buf[i]) {
                        best = i;
                        break;
                    }
                    if (buf[i] > buf[best]) best = i;
                }
                bi = best;
                memcpy(d, &bi, 4);
            } else {
                float sum = tfu_x_k_sum(simd, n, buf);
                if (tfu_x_finite(sum)) d[0] = t->op == TFU_OP_MEAN ? sum / (float)n : sum;
                else {   /* overflowed in f32, or inf/NaN in the row: in double, as the reference */
                    double s = tfu_x_k_sum_d(n, buf);
                    d[0] = (float)(t->op == TFU_OP_MEAN ? s / (double)n : s);
                }
            }
        } break;
        }
    }
}

static void tfu_x_run_item(const tfu_plan *p, const tfu_pv_group *G, const tfu_x_cpu_group *C, unsigned char *sc, int64_t item) {
    const tfu_x_scratch_layout *SL = &p->cpu->sl;
    int64_t rows = G->ne[1] * G->ne[2] * G->ne[3];
    int64_t r0 = item * C->rows_per_item, r1 = r0 + C->rows_per_item, r, c0;
    if (G->kind == TFU_GROUP_MATMUL) { tfu_x_run_matmul_item(p, G, C, sc, item); return; }
    if (G->kind == TFU_GROUP_ATTENTION) { tfu_x_run_attn_item(p, G, C, sc, item); return; }
    if (r1 > rows) r1 = rows;
    if (G->kind == TFU_GROUP_OTHER) { tfu_x_run_other(p, G, C, sc, r0, r1); return; }
    for (r = r0; r < r1; r++) {
        int64_t i1 = r % G->ne[1], i2 = (r / G->ne[1]) % G->ne[2], i3 = r / (G->ne[1] * G->ne[2]);
        for (c0 = 0; c0 < G->ne[0]; c0 += C->chunk) {
            int n = (int)(G->ne[0] - c0 < C->chunk ? G->ne[0] - c0 : C->chunk);
            tfu_x_run_chunk(p, G, C, sc, i1, i2, i3, c0, n, (const float **)(void *)(sc + SL->outp));
        }
    }
}

/* item i of stage s -> its group and the item inside it */
static void tfu_x_stage_item(const tfu_plan *p, int s, int64_t i, unsigned char *sc) {
    int g = p->stage_first[s], end = p->stage_first[s + 1];
    while (g + 1 < end && p->cpu->stage_items[g + 1] <= i) g++;
    tfu_x_run_item(p, &p->groups[g], &p->cpu->groups[g], sc, i - p->cpu->stage_items[g]);
}

static int64_t tfu_x_cpu_items(const tfu_plan *p, int g) { return p->shared ? 0 : p->cpu->groups[g].n_items; }

static int64_t tfu_x_stage_n_items(const tfu_plan *p, int s) {
    int last = p->stage_first[s + 1] - 1;
    return p->cpu->stage_items[last] + p->cpu->groups[last].n_items;
}

/* --- threads: workers meet only at the barrier between two stages -------- */

#if !defined(TFU_NO_FENV)
/* A thread's floating-point environment: rounding, flush-to-zero, x87
   precision. fenv_t, and MXCSR on its own where SSE has one (mingw-w64
   stores no MXCSR in fenv_t). */
typedef struct tfu_x_fenv {
    fenv_t   fe;
    unsigned mxcsr;
} tfu_x_fenv;
static void tfu_x_fenv_get(tfu_x_fenv *e) {
    memset(e, 0, sizeof *e);   /* padding too: envs are compared bytewise */
    fegetenv(&e->fe);
#if defined(TFU_X_MXCSR)
    e->mxcsr = _mm_getcsr();
#endif
}
static void tfu_x_fenv_set(const tfu_x_fenv *e) {
    fesetenv(&e->fe);
#if defined(TFU_X_MXCSR)
    _mm_setcsr(e->mxcsr);
#endif
}
#endif

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

/* A pool runs one plan's stages at a time: the plan, its per-stage item
   counters and the stages are set by the caller under mu before the
   workers wake, and read by each worker once per job. Owned by one plan
   (the built-in pool, in plan memory) or shared (tfu_threadpool_new). */
struct tfu_threadpool {
    const tfu_plan *plan;         /* the current job's                     */
    int64_t        *next;         /* its per stage: next item, atomics     */
    int             n;            /* threads, the caller's included        */
    tfu_x_thread   *th;
    struct tfu_x_worker *w;
    tfu_x_mutex     mu;
    tfu_x_cond      cv;
    int             gen, quit;    /* under mu                               */
    int             s0, s1;       /* stages of the current job              */
    int             count, sense; /* barrier, atomics                       */
    int             caller_sense; /* the running caller's side of the barrier */
    int             busy;         /* a plan runs on it (atomics)            */
    int             shared;       /* made by tfu_threadpool_new             */
#if !defined(TFU_NO_FENV)
    tfu_x_fenv      env;          /* the caller's, for the current job (under mu) */
#endif
};
typedef struct tfu_threadpool tfu_x_pool;

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
    int64_t *next = pl->next;
    unsigned char *sc = (unsigned char *)p->cpu->scratch + (size_t)id * p->cpu->sl.total;
    int s, s0 = pl->s0, s1 = pl->s1;  /* read once: after the last barrier the caller may start the next job */
    for (s = s0; s < s1; s++) {
        int64_t n = tfu_x_stage_n_items(p, s), i;
        while ((i = tfu_x_atomic_fetch_add64(&next[s], 1, TFU_X_RELAXED)) < n) tfu_x_stage_item(p, s, i, sc);
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
#if !defined(TFU_NO_FENV)
        if (!quit) tfu_x_fenv_set(&pl->env);
#endif
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

/* stops and joins the workers of a started pool (its memory stays) */
static void tfu_x_pool_stop(tfu_x_pool *pl) {
    int i;
    tfu_x_mutex_lock(&pl->mu);
    pl->quit = 1;
    tfu_x_cond_broadcast(&pl->cv);
    tfu_x_mutex_unlock(&pl->mu);
    for (i = 1; i < pl->n; i++) tfu_x_thread_join(pl->th[i]);
    tfu_x_mutex_destroy(&pl->mu);
    tfu_x_cond_destroy(&pl->cv);
}

/* starts n - 1 workers on zeroed pl with th and w of n entries */
static tfu_result tfu_x_pool_init(tfu_x_pool *pl, int n) {
    int i;
    pl->n = n;
    tfu_x_mutex_init(&pl->mu);
    tfu_x_cond_init(&pl->cv);
    for (i = 1; i < n; i++) {
        pl->w[i].pool = pl;
        pl->w[i].id = i;
        if (!tfu_x_thread_start(&pl->th[i], &pl->w[i])) {
            pl->n = i;   /* join the ones that started */
            tfu_x_pool_stop(pl);
            return TFU_ERR_THREADS;
        }
    }
    return TFU_OK;
}

/* the plan's own pool, if it has one (a borrowed one is the caller's) */
static void tfu_x_pool_free(tfu_plan *p) {
    tfu_x_pool *pl = p->cpu->pool;
    if (!pl) return;
    if (!pl->shared) tfu_x_pool_stop(pl);
    p->cpu->pool = NULL;
}

static tfu_result tfu_x_pool_start(tfu_plan *p) {
    tfu_x_pool *pl = (tfu_x_pool *)tfu_x_palloc(p, sizeof *pl);
    tfu_result r;
    if (!pl) return TFU_ERR_NO_MEMORY;
    pl->th = (tfu_x_thread *)tfu_x_palloc(p, sizeof(tfu_x_thread) * (size_t)p->cpu->n_threads);
    pl->w = (tfu_x_worker *)tfu_x_palloc(p, sizeof(tfu_x_worker) * (size_t)p->cpu->n_threads);
    if (!pl->th || !pl->w) return TFU_ERR_NO_MEMORY;
    r = tfu_x_pool_init(pl, p->cpu->n_threads);
    if (r == TFU_OK) p->cpu->pool = pl;
    return r;
}

static void tfu_x_pool_run(tfu_plan *p, int s0, int s1) {
    tfu_x_pool *pl = p->cpu->pool;
    int s;
    for (s = s0; s < s1; s++) tfu_x_atomic_store64(&p->cpu->next[s], 0, TFU_X_RELAXED);
    tfu_x_mutex_lock(&pl->mu);
    /* Rounding, flush-to-zero and the x87 precision (the libm of mingw-w64
       computes in it) are per thread, and a worker started with its own
       (a Win32 thread does not inherit them, a pthread takes them once at
       its start): each job runs under the caller's, whichever thread takes
       an item. */
#if !defined(TFU_NO_FENV)
    tfu_x_fenv_get(&pl->env);
#endif
    pl->plan = p;
    pl->next = p->cpu->next;
    pl->s0 = s0;
    pl->s1 = s1;
    tfu_x_atomic_add(&pl->gen, 1, TFU_X_RELEASE);
    tfu_x_cond_broadcast(&pl->cv);
    tfu_x_mutex_unlock(&pl->mu);
    tfu_x_pool_job(pl, 0, &pl->caller_sense);
}
#endif

#if !defined(TFU_NO_THREADS) && !defined(TFU_NO_MALLOC)
TFU_API tfu_threadpool *tfu_threadpool_new(int n_threads) {
    tfu_x_pool *pl;
    if (n_threads < 1 || n_threads > 256) return NULL;
    pl = (tfu_x_pool *)calloc(1, sizeof *pl);
    if (!pl) return NULL;
    pl->th = (tfu_x_thread *)calloc((size_t)n_threads, sizeof(tfu_x_thread));
    pl->w = (tfu_x_worker *)calloc((size_t)n_threads, sizeof(tfu_x_worker));
    if (!pl->th || !pl->w || tfu_x_pool_init(pl, n_threads) != TFU_OK) {
        free(pl->th);
        free(pl->w);
        free(pl);
        return NULL;
    }
    pl->shared = 1;
    return pl;
}

TFU_API void tfu_threadpool_free(tfu_threadpool *pool) {
    if (!pool) return;
    tfu_x_pool_stop(pool);
    free(pool->th);
    free(pool->w);
    free(pool);
}
#else
TFU_API tfu_threadpool *tfu_threadpool_new(int n_threads) {
    (void)n_threads;
    return NULL;
}
TFU_API void tfu_threadpool_free(tfu_threadpool *pool) { (void)pool; }
#endif

TFU_API int tfu_threadpool_n_threads(const tfu_threadpool *pool) {
#if !defined(TFU_NO_THREADS)
    return pool ? pool->n : 0;
#else
    (void)pool;
    return 0;
#endif
}

/* the caller's parallel-for: each task borrows a free scratch area */
typedef struct tfu_x_pf_ctx {
    tfu_plan *p;
    int       s;
#if !defined(TFU_NO_FENV)
    tfu_x_fenv env;   /* the caller's: a task on another thread runs under it */
#endif
} tfu_x_pf_ctx;

static void tfu_x_pf_task(void *arg, int i) {
    tfu_x_pf_ctx *c = (tfu_x_pf_ctx *)arg;
    tfu_plan *p = c->p;
    int k = 0;
#if !defined(TFU_NO_FENV)
    tfu_x_fenv own;
    int swap;
    tfu_x_fenv_get(&own);
    swap = memcmp(&own, &c->env, sizeof own) != 0;
    if (swap) tfu_x_fenv_set(&c->env);
#endif
    while (!tfu_x_atomic_cas(&p->cpu->scratch_busy[k], 0, 1, TFU_X_ACQUIRE))   /* claim scratch k */
        k = (k + 1) % p->cpu->n_threads;
    tfu_x_stage_item(p, c->s, i, (unsigned char *)p->cpu->scratch + (size_t)k * p->cpu->sl.total);
    tfu_x_atomic_store(&p->cpu->scratch_busy[k], 0, TFU_X_RELEASE);
#if !defined(TFU_NO_FENV)
    if (swap) tfu_x_fenv_set(&own);   /* the caller's thread as it was */
#endif
}

static void tfu_x_call_eval(tfu_plan *p, int s) {
    int g, k, i;
    for (g = p->stage_first[s]; g < p->stage_first[s + 1]; g++) {
        const tfu_pv_group *G = &p->groups[g];
        for (k = 0; k < G->n_instr && !p->run_stop; k++) {
            const tfu_tensor *t = p->t[p->ins[G->first_instr + k].tensor];
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

TFU_API tfu_result tfu_plan_check(tfu_plan *p) {
    int i;
    const char *stale;
    if (!p) return TFU_ERR_NULL_ARG;
    stale = tfu_x_plan_stale(p);
    if (stale) {
        tfu_x_err(p->ctx, TFU_ERR_STALE, NULL, "plan_run", stale, NULL, NULL);
        return p->err = TFU_ERR_STALE;
    }
    for (i = 0; i < p->n_all; i++)
        if (p->t[i]->op == TFU_OP_NONE && !p->t[i]->data) {
            tfu_x_err(p->ctx, TFU_ERR_NO_DATA, p->t[i], "plan_run", "a leaf tensor has no data", NULL, NULL);
            return p->err = TFU_ERR_NO_DATA;
        }
    for (i = 0; i < p->n_all; i++)
        if (tfu_x_has_row_indices(p->t[i]) && tfu_x_check_rows(p->ctx, p->t[i]) != TFU_OK) return p->err = TFU_ERR_INVALID_ARG;
    return TFU_OK;
}

TFU_API tfu_result tfu_plan_run(tfu_plan *p) {
    int s;
    tfu_result r;
    if (!p) return TFU_ERR_NULL_ARG;
    if (p->shared) {
        tfu_x_err(p->ctx, TFU_ERR_INVALID_ARG, NULL, "plan_run", "the plan was compiled for another backend (tfu_plan_compile_shared)", NULL, NULL);
        return p->err = TFU_ERR_INVALID_ARG;
    }
    r = tfu_plan_check(p);
    if (r != TFU_OK) return r;
    if (!p->arena && p->arena_bytes) { p->err = TFU_ERR_NO_MEMORY; tfu_x_err(p->ctx, TFU_ERR_NO_MEMORY, NULL, "plan_run", "no arena bound (tfu_plan_set_arena)", NULL, NULL); return p->err; }
    tfu_x_bind(p);
    p->run_stop = 0;
    p->cpu->run_seq++;   /* the activations quantized in scratch are stale */
#if !defined(TFU_NO_THREADS)
    if (p->cpu->pool && !tfu_x_atomic_cas(&p->cpu->pool->busy, 0, 1, TFU_X_ACQUIRE)) {
        tfu_x_err(p->ctx, TFU_ERR_THREADS, NULL, "plan_run", "the thread pool is running another plan", NULL, NULL);
        return p->err = TFU_ERR_THREADS;
    }
#endif
    for (s = 0; s < p->n_stages && !p->run_stop; ) {
        int s1 = p->opt.eval_cb ? s + 1 : p->n_stages;
        if (p->opt.parallel_for) {
            for (; s < s1; s++) {
                tfu_x_pf_ctx c;
                c.p = p; c.s = s;
#if !defined(TFU_NO_FENV)
                tfu_x_fenv_get(&c.env);
#endif
                p->opt.parallel_for(p->opt.parallel_for_user, (int)tfu_x_stage_n_items(p, s), tfu_x_pf_task, &c);
            }
        }
#if !defined(TFU_NO_THREADS)
        else if (p->cpu->n_threads > 1) { tfu_x_pool_run(p, s, s1); s = s1; }
#endif
        else {
            for (; s < s1; s++) {
                int64_t n = tfu_x_stage_n_items(p, s), k;
                for (k = 0; k < n; k++) tfu_x_stage_item(p, s, k, (unsigned char *)p->cpu->scratch);
            }
        }
        if (p->opt.eval_cb) tfu_x_call_eval(p, s - 1);
    }
#if !defined(TFU_NO_THREADS)
    if (p->cpu->pool) tfu_x_atomic_store(&p->cpu->pool->busy, 0, TFU_X_RELEASE);
#endif
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
    if (p->cpu) {
#if !defined(TFU_NO_THREADS)
        tfu_x_pool_free(p);
#endif
        if (p->cpu->scratch_raw) al.free_fn(p->cpu->scratch_raw, al.user);
    }
    if (p->arena_owned && p->arena_raw) al.free_fn(p->arena_raw, al.user);
    while (p->blocks) { tfu_x_block *b = p->blocks; p->blocks = b->next; al.free_fn(b, al.user); }
    al.free_fn(p, al.user);
}

/* rope's frequencies, base^(-2i/n_dims) in double as the reference
   computes them, once per plan; *row grows by the table (2 n_dims f32) */
static tfu_result tfu_x_rope_lower(tfu_plan *p, const tfu_tensor *t, tfu_x_cpu_group *C, size_t *row) {
    int nd = t->op_params_i[0], i;
    double base = t->op_params_f[0];
    double *freq = (double *)tfu_x_palloc(p, sizeof(double) * (size_t)(nd / 2 + 1));
    if (!freq) return TFU_ERR_NO_MEMORY;
    for (i = 0; i < nd / 2; i++) freq[i] = pow(base, -2.0 * i / nd);
    C->rope_freq = freq;
    if (!tfu_x_add_ok(*row, 2 * (size_t)nd, row)) return TFU_ERR_OVERFLOW;
    return TFU_OK;
}

/* an attention group's items (R = heads x positions query rows, at least
   TFU_X_ATT_ITEMS items where the positions allow) and its scratch: tiles
   the scores (R x n_kv) and the output rows (R x hdv); pack Q rows R x hd,
   K rows bk x hd, V rows bk x hdv and mask rows R x n_kv, each used when
   the operand is not f32 with contiguous rows; ptrs the row pointers */
static tfu_result tfu_x_attn_lower(const tfu_plan *p, const tfu_pv_group *G, tfu_x_cpu_group *C, size_t *tiles_b,
                                   size_t *pack_b, size_t *ptrs_b, size_t *panel_b) {
    tfu_x_attn A = tfu_x_attn_of(p, G);
    int64_t nh = G->ne[2], nq = G->ne[1], hd = A.k->ne[0], hdv = G->ne[0], nkv = A.k->ne[1], bk = TFU_X_ATT_BK, rows;
    size_t a, b;
    C->att_heads = tfu_x_gcd(nh / A.k->ne[2], nh / A.v->ne[2]);
    C->att_bq = (TFU_X_ATT_ROWS + C->att_heads - 1) / C->att_heads;
    if (C->att_bq > nq) C->att_bq = nq;
    for (;;) {
        C->att_nqb = (nq + C->att_bq - 1) / C->att_bq;
        C->n_items = C->att_nqb * (nh / C->att_heads) * G->ne[3];
        if (C->att_bq == 1 || C->n_items >= TFU_X_ATT_ITEMS) break;
        C->att_bq = (C->att_bq + 1) / 2;
    }
    C->chunk = 1;
    rows = C->att_heads * C->att_bq;
    if (!tfu_x_mul3_ok((size_t)rows, (size_t)(nkv + hdv), 4, &a)) return TFU_ERR_OVERFLOW;
    *tiles_b = tfu_x_max(*tiles_b, a);
    if (!tfu_x_mul3_ok((size_t)rows, (size_t)(hd + nkv), 4, &a) || !tfu_x_mul3_ok((size_t)bk, (size_t)(hd + hdv), 4, &b) ||
        !tfu_x_add_ok(a, b, &a))
        return TFU_ERR_OVERFLOW;
    *pack_b = tfu_x_max(*pack_b, a);
    *ptrs_b = tfu_x_max(*ptrs_b, (size_t)(2 * bk + 3 * rows) * sizeof(void *));
    if (!p->opt.no_simd) *panel_b = tfu_x_max(*panel_b, 4 * tfu_x_max(tfu_x_panel_floats(bk), tfu_x_panel_floats(hdv)));
    return TFU_OK;
}

/* Pass (CPU): lowering. Per group: scratch slots for the values that stay
   inside it (a slot is reused once its last reader inside the group ran),
   the work split into items (matmul blocks of MB x NB, or ranges of rows),
   and the per-thread scratch layout, sizes checked. */
static tfu_result tfu_x_cpu_lower(tfu_plan *p) {
    struct tfu_x_cpu *cpu = p->cpu;
    int gi, s, n_threads = cpu->n_threads;
    int32_t *last_use, *free_slots;
    size_t slots_b = 0, gather_b = 0, tiles_b = 0, pack_b = 0, ptrs_b = 0, outp_b = 0, panel_b = 0, qact_b = 0, sz;
    cpu->groups = (tfu_x_cpu_group *)tfu_x_palloc(p, sizeof(tfu_x_cpu_group) * (size_t)(p->n_groups + 1));
    cpu->slot = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(p->n_ins + 1));
    cpu->stage_items = (int64_t *)tfu_x_palloc(p, sizeof(int64_t) * (size_t)(p->n_groups + 1));
    last_use = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(p->n_ins + 1));
    free_slots = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(p->n_ins + 1));
    if (!cpu->groups || !cpu->slot || !cpu->stage_items || !last_use || !free_slots) return TFU_ERR_NO_MEMORY;
    for (gi = 0; gi < p->n_groups; gi++) {
        const tfu_pv_group *G = &p->groups[gi];
        tfu_x_cpu_group *C = &cpu->groups[gi];
        const tfu_pv_instr *ins = p->ins + G->first_instr;
        int32_t *slot = cpu->slot + G->first_instr;
        int nm = G->n_instr, k, n_slots = 0, n_free = 0, n_tiles = 0;
        int64_t rows, work;
        for (k = 0; k < nm; k++) last_use[k] = -1;
        for (k = 0; k < nm; k++)
            for (s = 0; s < ins[k].n_src; s++)
                if (ins[k].src[s] >= 0) last_use[ins[k].src[s]] = k;
        for (k = 0; k < nm; k++) {
            const tfu_tensor *t = p->t[ins[k].tensor];
            int direct = (tfu_x_is_value(t) && ins[k].store) || (t->op == TFU_OP_CPY && t->type == TFU_F32 && t->nb[0] == 4);
            slot[k] = -1;
            if (t->op == TFU_OP_MUL_MAT) {
                C->n_mm++;
                if (!ins[k].store) slot[k] = n_tiles++;
                continue;
            }
            if (G->kind == TFU_GROUP_OTHER) continue;
            if (!direct) slot[k] = n_free ? free_slots[--n_free] : n_slots++;
            for (s = 0; s < ins[k].n_src; s++) {
                int r = ins[k].src[s], dup = 0, j;
                if (r < 0 || last_use[r] != k || slot[r] < 0 || p->t[ins[r].tensor]->op == TFU_OP_MUL_MAT) continue;
                for (j = 0; j < n_free; j++) if (free_slots[j] == slot[r]) dup = 1;
                if (!dup && slot[r] != slot[k]) free_slots[n_free++] = slot[r];
            }
        }
        C->n_slots = n_slots;
        rows = G->ne[1] * G->ne[2] * G->ne[3];
        work = rows * G->ne[0];
        if (G->kind == TFU_GROUP_ATTENTION) {
            tfu_result r = tfu_x_attn_lower(p, G, C, &tiles_b, &pack_b, &ptrs_b, &panel_b);
            if (r != TFU_OK) return r;
        } else if (G->kind == TFU_GROUP_MATMUL) {
            int64_t kmax = 1;
            int packed = !p->opt.no_simd && G->ne[1] >= TFU_X_PACKED_MIN;
            int64_t nb_max = packed ? TFU_X_MM_NB_PACKED : TFU_X_MM_NB;
            C->mb = G->ne[0] < TFU_X_MM_MB ? G->ne[0] : TFU_X_MM_MB;
            C->nbk = G->ne[1] < nb_max ? G->ne[1] : nb_max;
            C->n_mblk = (G->ne[0] + C->mb - 1) / C->mb;
            C->n_nblk = (G->ne[1] + C->nbk - 1) / C->nbk;
            C->n_items = C->n_mblk * C->n_nblk * G->ne[2] * G->ne[3];
            C->chunk = C->mb;
            for (k = 0; k < nm; k++) {
                const tfu_tensor *t = p->t[ins[k].tensor];
                if (t->op == TFU_OP_MUL_MAT && t->src[0]->ne[0] > kmax) kmax = t->src[0]->ne[0];
            }
            if (!tfu_x_mul3_ok((size_t)n_tiles, (size_t)(C->mb * C->nbk), 4, &sz)) return TFU_ERR_OVERFLOW;
            tiles_b = tfu_x_max(tiles_b, sz);
            if (!tfu_x_mul3_ok((size_t)(C->mb + C->nbk), (size_t)kmax, 4, &sz)) return TFU_ERR_OVERFLOW;
            pack_b = tfu_x_max(pack_b, sz);
            ptrs_b = tfu_x_max(ptrs_b, (size_t)(C->mb + C->nbk) * sizeof(void *));
            if (!p->opt.no_simd) panel_b = tfu_x_max(panel_b, tfu_x_panel_floats(C->mb) * 4);
            if (p->opt.quant_activations) {   /* a slot of quantized B rows per quantized product */
                int n_q = 0;
                for (k = 0; k < nm; k++) {
                    const tfu_tensor *t = p->t[ins[k].tensor];
                    if (t->op == TFU_OP_MUL_MAT && tfu_x_is_quant(t->src[0]->type)) n_q++;
                }
                if (n_q) {
                    C->qact_row = tfu_x_qact_row_bytes(kmax);
                    if (!tfu_x_mul3_ok((size_t)n_q, (size_t)C->nbk, C->qact_row, &sz) || !tfu_x_add_ok(sz, TFU_X_QACT_TAGS, &sz)) return TFU_ERR_OVERFLOW;
                    qact_b = tfu_x_max(qact_b, sz);
                }
            }
        } else {
            int64_t target = n_threads > 1 ? 8 * (int64_t)n_threads : 1, by_work = (work + 16383) / 16384;
            if (target > by_work) target = by_work;
            if (target > rows) target = rows;
            if (target < 1) target = 1;
            C->rows_per_item = (rows + target - 1) / target;
            C->n_items = (rows + C->rows_per_item - 1) / C->rows_per_item;
            C->chunk = G->kind == TFU_GROUP_ROW ? G->ne[0] : (G->ne[0] < TFU_X_ELT_CHUNK ? G->ne[0] : TFU_X_ELT_CHUNK);
            C->folded = tfu_x_folded(p, G);
            C->prefetch = G->kind == TFU_GROUP_ELTWISE && G->n_instr > 1 && (double)work * 4.0 * (double)(G->n_operands + 1) > TFU_X_PF_MIN;
            if (G->kind == TFU_GROUP_OTHER) {
                const tfu_tensor *t = p->t[ins[0].tensor];
                size_t row = (size_t)(t->src[0]->ne[0] > t->ne[0] ? t->src[0]->ne[0] : t->ne[0]);
                if (t->op == TFU_OP_ROPE) {
                    tfu_result r = tfu_x_rope_lower(p, t, C, &row);
                    if (r != TFU_OK) return r;
                }
                if (!tfu_x_mul_ok(row, 4, &sz)) return TFU_ERR_OVERFLOW;
                pack_b = tfu_x_max(pack_b, sz);
            }
        }
        if (!tfu_x_mul3_ok((size_t)C->n_slots, (size_t)C->chunk, 4, &sz)) return TFU_ERR_OVERFLOW;
        slots_b = tfu_x_max(slots_b, sz);
        if (!tfu_x_mul3_ok((size_t)G->n_operands, (size_t)C->chunk, 4, &sz)) return TFU_ERR_OVERFLOW;
        gather_b = tfu_x_max(gather_b, sz);
        outp_b = tfu_x_max(outp_b, (size_t)nm * sizeof(void *));
    }
    /* items of a stage: a prefix sum over its groups */
    for (s = 0; s < p->n_stages; s++)
        for (gi = p->stage_first[s]; gi < p->stage_first[s + 1]; gi++)
            cpu->stage_items[gi] = gi == p->stage_first[s] ? 0 : cpu->stage_items[gi - 1] + cpu->groups[gi - 1].n_items;
    /* per-thread scratch: each part 64-byte aligned, the sum checked */
    if (slots_b > SIZE_MAX / 8 || gather_b > SIZE_MAX / 8 || tiles_b > SIZE_MAX / 8 || pack_b > SIZE_MAX / 8 || qact_b > SIZE_MAX / 8) return TFU_ERR_OVERFLOW;
    cpu->sl.slots = 0;
    cpu->sl.gather = tfu_x_align_up(cpu->sl.slots + slots_b, 64);
    cpu->sl.tiles = tfu_x_align_up(cpu->sl.gather + gather_b, 64);
    cpu->sl.pack = tfu_x_align_up(cpu->sl.tiles + tiles_b, 64);
    cpu->sl.ptrs = tfu_x_align_up(cpu->sl.pack + pack_b, 64);
    cpu->sl.outp = tfu_x_align_up(cpu->sl.ptrs + ptrs_b, 64);
    cpu->sl.panel = tfu_x_align_up(cpu->sl.outp + outp_b, 64);
    cpu->sl.panel_b = panel_b;
    cpu->sl.qact = tfu_x_align_up(cpu->sl.panel + panel_b, 64);
    cpu->sl.qact_b = qact_b;
    cpu->sl.total = tfu_x_align_up(cpu->sl.qact + qact_b + 64, 64);
    return TFU_OK;
}

static void tfu_x_plan_finish(tfu_plan *p, tfu_graph *g);

static tfu_plan *tfu_x_plan_fail(tfu_plan *p, tfu_context *ctx, tfu_result r, const char *what) {
    tfu_x_err(ctx, r, NULL, "plan_compile", what, NULL, NULL);
    if (p) tfu_x_plan_release(p);
    return NULL;
}

/* tfu_plan_compile and tfu_plan_compile_shared (shared: the shared passes
   only, for another backend) */
static tfu_plan *tfu_x_plan_compile(tfu_graph *g, const tfu_plan_options *opts, int shared) {
    tfu_plan_options o = opts ? *opts : tfu_plan_default_options();
    tfu_allocator al;
    tfu_plan *p;
    tfu_x_layout L;
    tfu_x_caps caps;
    tfu_result r;
    size_t scratch_bytes;
    int n, fusion;
    if (!g) return NULL;
    if (o.pool && o.parallel_for) return tfu_x_plan_fail(NULL, g->ctx, TFU_ERR_INVALID_ARG, "options.pool and options.parallel_for exclude each other");
    if (o.pool) o.n_threads = tfu_threadpool_n_threads(o.pool);   /* one scratch area per pool thread */
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
    o.no_simd = o.no_simd || tfu_x_env_flag("TFU_NO_SIMD");   /* the plan's kernel set: p->opt.no_simd */
    o.no_fusion = !fusion;
    p = (tfu_plan *)al.alloc_fn(sizeof *p, al.user);
    if (!p) return tfu_x_plan_fail(NULL, g->ctx, TFU_ERR_NO_MEMORY, "plan allocation failed");
    memset(p, 0, sizeof *p);
    p->al = al; p->opt = o; p->opt.allocator = al; p->ctx = g->ctx; p->graph = g;
    p->shared = shared;
    p->cpu = (struct tfu_x_cpu *)tfu_x_palloc(p, sizeof *p->cpu);
    if (!p->cpu) return tfu_x_plan_fail(p, g->ctx, TFU_ERR_NO_MEMORY, "plan allocation failed");
    p->cpu->n_threads = o.n_threads;
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
    p->flags = (uint32_t *)tfu_x_palloc(p, sizeof(uint32_t) * (size_t)(n + 1));
    L.group = p->group; L.mat = p->mat; L.offs = p->offs; L.life0 = p->life0; L.life1 = p->life1;
    L.order = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 1));
    L.stage = (int32_t *)tfu_x_palloc(p, sizeof(int32_t) * (size_t)(n + 1));
    if (!p->t || !p->group || !p->ins_of || !p->mat || !p->offs || !p->life0 || !p->life1 || !p->view_stage || !p->flags || !L.order || !L.stage)
        return tfu_x_plan_fail(p, g->ctx, TFU_ERR_NO_MEMORY, "plan allocation failed");
    memcpy(p->t, g->all, sizeof(void *) * (size_t)n);
    tfu_x_plan_snapshot(p);
    if (tfu_x_caps_of(&o, fusion, shared, &caps) != TFU_OK)
        return tfu_x_plan_fail(p, g->ctx, TFU_ERR_INVALID_ARG, shared ? "options.caps are not valid" : "options.caps ask for more than the CPU executor runs (tfu_cpu_caps)");
    p->caps = caps;
    r = tfu_x_plan_layout(g, &caps, &al, &L);
    if (r != TFU_OK) return tfu_x_plan_fail(p, g->ctx, r, r == TFU_ERR_OVERFLOW ? "the arena size overflows" : "planning memory exhausted");
    p->arena_unfused = fusion ? TFU_X_UNKNOWN : L.arena;   /* computed when first asked for */
    p->arena_bytes = L.arena;
    r = tfu_x_programs(p, g, &L, &caps);
    if (r == TFU_ERR_INVALID_ARG) return tfu_x_plan_fail(p, g->ctx, r, "a row or matrix-product K longer than the backend's max_row (the CPU's: INT_MAX elements)");
    if (r == TFU_ERR_TYPE) return tfu_x_plan_fail(p, g->ctx, r, "an operand type the backend does not read (caps.operand_types)");
    if (r != TFU_OK) return tfu_x_plan_fail(p, g->ctx, r, "plan allocation failed");
    if (!tfu_x_build_view(p)) return tfu_x_plan_fail(p, g->ctx, TFU_ERR_NO_MEMORY, "plan allocation failed");
    if (shared) {
        tfu_x_plan_finish(p, g);
        return p;
    }
    r = tfu_x_cpu_lower(p);
    if (r == TFU_ERR_OVERFLOW) return tfu_x_plan_fail(p, g->ctx, r, "the scratch size overflows");
    if (r != TFU_OK) return tfu_x_plan_fail(p, g->ctx, r, "plan allocation failed");
    if (!tfu_x_mul_ok(p->cpu->sl.total, (size_t)p->cpu->n_threads, &scratch_bytes) || !tfu_x_add_ok(scratch_bytes, 64, &scratch_bytes))
        return tfu_x_plan_fail(p, g->ctx, TFU_ERR_OVERFLOW, "the scratch size overflows");
    p->cpu->scratch_raw = al.alloc_fn(scratch_bytes, al.user);
    p->cpu->scratch = p->cpu->scratch_raw ? (void *)tfu_x_align_ptr(p->cpu->scratch_raw) : NULL;
    p->cpu->scratch_busy = (int *)tfu_x_palloc(p, sizeof(int) * (size_t)p->cpu->n_threads);
    if (!p->cpu->scratch || !p->cpu->scratch_busy) return tfu_x_plan_fail(p, g->ctx, TFU_ERR_NO_MEMORY, "scratch allocation failed");
    tfu_x_qact_clear(p);
    if (o.arena) {
        if (o.arena_size < p->arena_bytes) return tfu_x_plan_fail(p, g->ctx, TFU_ERR_NO_MEMORY, "options.arena is smaller than tfu_plan_arena_bytes()");
        if ((uintptr_t)o.arena % 16) return tfu_x_plan_fail(p, g->ctx, TFU_ERR_INVALID_ARG, "options.arena must be aligned to 16 bytes");
        p->arena = (unsigned char *)o.arena;
    } else if (p->arena_bytes) {
        if (p->arena_bytes > SIZE_MAX - 64) return tfu_x_plan_fail(p, g->ctx, TFU_ERR_OVERFLOW, "the arena size overflows");
        p->arena_raw = al.alloc_fn(p->arena_bytes + 64, al.user);
        if (!p->arena_raw) return tfu_x_plan_fail(p, g->ctx, TFU_ERR_NO_MEMORY, "arena allocation failed");
        p->arena = tfu_x_align_ptr(p->arena_raw);   /* rows on cache-line boundaries */
        p->arena_owned = 1;
    }
#if !defined(TFU_NO_THREADS)
    if (p->cpu->n_threads > 1 && !o.parallel_for) {
        p->cpu->next = (int64_t *)tfu_x_palloc(p, sizeof(int64_t) * (size_t)(p->n_stages + 1));
        if (!p->cpu->next) return tfu_x_plan_fail(p, g->ctx, TFU_ERR_NO_MEMORY, "plan allocation failed");
        r = o.pool ? TFU_OK : tfu_x_pool_start(p);
        if (r != TFU_OK) return tfu_x_plan_fail(p, g->ctx, r, "could not start worker threads");
        if (o.pool) p->cpu->pool = o.pool;   /* borrowed: tfu_plan_free leaves its threads running */
    }
#endif
    tfu_x_plan_finish(p, g);
    tfu_x_bind(p);
    return p;
}

TFU_API tfu_plan *tfu_plan_compile(tfu_graph *g, const tfu_plan_options *opts) { return tfu_x_plan_compile(g, opts, 0); }
TFU_API tfu_plan *tfu_plan_compile_shared(tfu_graph *g, const tfu_plan_options *opts) { return tfu_x_plan_compile(g, opts, 1); }

/* the last step of compile: stats, the reported group of every tensor and
   the eval callback's flagged views */
static void tfu_x_plan_finish(tfu_plan *p, tfu_graph *g) {
    int i, n = p->n_all;
    /* stats */
    {
        tfu_plan_stats *S = &p->stats;
        int gi;
        S->n_nodes = g->n_nodes; S->n_groups = p->n_groups; S->n_stages = p->n_stages;
        S->n_barriers = p->n_stages > 0 ? p->n_stages - 1 : 0;
        S->arena_bytes = p->arena_bytes;
        for (gi = 0; gi < p->n_groups; gi++) {
            S->n_groups_kind[p->groups[gi].kind]++;
            if (p->groups[gi].n_instr > 1) S->n_nodes_fused += p->groups[gi].n_instr;
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
            for (k = 0; k < p->groups[gi].n_instr; k++) p->group[p->ins[p->groups[gi].first_instr + k].tensor] = gi;
        for (i = 0; i < n; i++) {   /* the eval callback's flagged views, decided here once */
            int root = i;
            p->view_stage[i] = -1;
            if (g->all[i]->op != TFU_OP_VIEW || !(g->all[i]->flags & (TFU_FLAG_KEEP | TFU_FLAG_OUTPUT))) continue;
            while (g->all[root]->op == TFU_OP_VIEW) root = g->srcs[(size_t)root * TFU_MAX_SRC];
            if (p->group[root] >= 0) p->view_stage[i] = p->groups[p->group[root]].stage;
        }
    }
}

TFU_API void tfu_plan_free(tfu_plan *p) { if (p) tfu_x_plan_release(p); }
TFU_API tfu_result tfu_plan_last_error(const tfu_plan *p) { return p ? p->err : TFU_ERR_NULL_ARG; }
TFU_API size_t tfu_plan_arena_bytes(const tfu_plan *p) { return p ? p->arena_bytes : 0; }

TFU_API tfu_result tfu_plan_set_arena(tfu_plan *p, void *mem, size_t size) {
    if (!p) return TFU_ERR_NULL_ARG;
    if (!mem) {
        tfu_x_err(p->ctx, TFU_ERR_NULL_ARG, NULL, "plan_set_arena", "mem is NULL", NULL, NULL);
        return TFU_ERR_NULL_ARG;
    }
    if (size < p->arena_bytes) { tfu_x_err(p->ctx, TFU_ERR_NO_MEMORY, NULL, "plan_set_arena", "arena smaller than tfu_plan_arena_bytes()", NULL, NULL); return TFU_ERR_NO_MEMORY; }
    if ((uintptr_t)mem % 16) { tfu_x_err(p->ctx, TFU_ERR_INVALID_ARG, NULL, "plan_set_arena", "arena must be aligned to 16 bytes", NULL, NULL); return TFU_ERR_INVALID_ARG; }
    if (p->arena_owned) { p->al.free_fn(p->arena_raw, p->al.user); p->arena_owned = 0; p->arena_raw = NULL; }
    p->arena = (unsigned char *)mem;
    tfu_x_bind(p);
    return TFU_OK;
}

/* rebinds to g whose structural hash h the caller computed once */
static tfu_result tfu_x_plan_rebind_hashed(tfu_plan *p, tfu_graph *g, uint64_t h) {
    if (g->n_all != p->n_all || h != p->hash) {
        tfu_x_err(g->ctx, TFU_ERR_STALE, NULL, "plan_rebind", "graph structure differs from the plan's", NULL, NULL);
        return p->err = TFU_ERR_STALE;
    }
    memcpy(p->t, g->all, sizeof(void *) * (size_t)p->n_all);
    p->graph = g;
    p->ctx = g->ctx;
    tfu_x_plan_snapshot(p);
    tfu_x_bind(p);
    return TFU_OK;
}

TFU_API tfu_result tfu_plan_rebind(tfu_plan *p, tfu_graph *g) {
    if (!p || !g) return TFU_ERR_NULL_ARG;
    return tfu_x_plan_rebind_hashed(p, g, g->n_all == p->n_all ? tfu_graph_hash(g) : 0);
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
    for (i = 0; i < c->n; i++)   /* the graph a plan is bound to, unchanged: no hashing */
        if (c->plans[i]->graph == g && !tfu_x_plan_stale(c->plans[i])) {
            c->stamp[i] = ++c->clock;
            if (was_cached) *was_cached = 1;
            tfu_x_bind(c->plans[i]);
            return c->plans[i];
        }
    h = tfu_graph_hash(g);   /* once per lookup */
    for (i = 0; i < c->n; i++)
        if (c->plans[i]->hash == h && c->plans[i]->n_all == g->n_all && tfu_x_plan_rebind_hashed(c->plans[i], g, h) == TFU_OK) {
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
