/* bench.c - tensorfuse benchmarks: fused against unfused, against the
   machine's own limits measured in the same run.

   Build and run: `make bench` (BENCH_ARGS=--quick for a short run), or
       cc -std=c99 -O3 -march=native -I. bench/bench.c -o build/bench -lm -lpthread

   usage: bench [--quick] [--planning] [--only PREFIX] [--csv FILE]   (default
   FILE: build/bench.csv; --planning: only the compile-time rows; --only: the
   limits and the rows whose workload name starts with PREFIX)

   The last-level cache (LLC) is read from sysfs (cpu0's largest data or
   unified cache), else sysconf. Every array of the limits holds 64 MiB or
   2 x the LLC, whichever is larger; a workload whose bytes (inputs and
   output) are fewer than 2 x the LLC is flushed before every timed run (a
   read of 2 x the LLC, not timed), so that every memory-bound ratio is
   against memory, not cache. The "against" column names the limit and the
   level: triad/DRAM (larger than 2 x the LLC), triad/flush, read/...,
   fma/regs.

   First the limits of this machine, each with 1 and 2 threads:
     triad    a[i] = b[i] + s*c[i] over three arrays; bytes = 3 arrays
              (each read or written once; write-allocate traffic not counted)
     memcpy   bytes = read + written
     read     a sum over one array as 1, 4 and 8 sequential streams a
              thread, the best of the three; bytes = the array
     fma      register-only fused multiply-adds, many independent
              accumulators (AVX-512, AVX2 or scalar); GFLOP/s = 2 * FMAs
   Then single-plan rows on 1 and 2 threads (the 2-thread result checked
   against the 1-thread one):
     rope     rope of q 128 x 32 heads x 128 tokens, normal and neox, f32;
              ratio: GB/s (q and the output) over triad
     mv-K     a matrix-vector product, weights K x N (2048 x 5632 and
              5632 x 2048), f32, f16, q8_0 and q4_0 (bytes: the blocks');
              ratio: GB/s (weights) over read
   Then workloads (f32, shapes ne0 x ne1), each fused and unfused
   (tfu_plan_options.no_fusion) on 1 and 2 threads:
     W1       rms_norm(x, 1e-6) * w            x 4096x512, w 4096
     W2       rms_norm(x, 1e-6) * w + r        r 4096x512
     W3       swiglu_split(g, u)               g, u 11008x512
     W4       gelu((a + b) * c) * 0.5          a, b, c 4096x1024
     W5       soft_max(x * 0.125 + mask)       x 512x512x32, causal mask 512x512
     W6-T1    one llama layer, TinyLlama-1.1B shapes (dim 2048, 32 heads,
     W6-T128  4 kv heads, head_dim 64, ffn 5632), T = 1 and 128 tokens,
              f32, f16 and q8_0 weights (examples/llama.h), q8_0 also with
              int8 activations (q8_0-i8: quant_activations)
     attn-T512 causal attention alone, TinyLlama shapes (32 heads, 4 kv
              heads, head_dim 64), T = 512: mul_mat(V, soft_max_ext(
              mul_mat(K, Q), mask, 1/8)); fused: one ATTENTION group;
              GFLOP/s: the two products' 4 * T^2 * 64 * 32 (all of them,
              masked or not) over fma
     dispatch a chain of 1000 tiny element-wise nodes: ms per run, us per node
     planning tfu_plan_compile of a 1000-node DAG: ms per compile
   GB/s counts every input read once and the output written once.
   ratio_to_limit: W1-W5 GB/s over triad GB/s (same thread count); W6-T1
   GB/s (bytes = weights) over read GB/s; W6-T128 GFLOP/s (2*M*N*K over the
   layer's matrix products) over fma GFLOP/s.
   Each figure is the median of many timed runs (CLOCK_MONOTONIC) after
   warm-up. Every variant of a workload is checked against its first variant
   (max|diff| / max|ref| <= 1e-3); the exit status is 1 if one is not. */
#define _POSIX_C_SOURCE 200809L
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include "examples/llama.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#define MAX_THREADS 2
#define MAX_SAMPLES 4096

static int    g_quick;
static int    g_planning_only;   /* --planning: only the compile-time rows */
static const char *g_only;       /* --only PREFIX: the limits and the workloads named PREFIX... */
static FILE  *g_csv;
static int    g_fail;
static double g_triad[MAX_THREADS + 1], g_read[MAX_THREADS + 1], g_fma[MAX_THREADS + 1];
static size_t g_llc;             /* bytes of the last-level cache (of one core's) */
static char   g_llc_what[96];    /* where g_llc came from, for the header line */
static float *g_flush;           /* FLUSH_LLCS x the LLC, read between timed runs */
static size_t g_flush_n;
static double g_samples[MAX_SAMPLES];
static volatile double g_sink;

static int wanted(const char *name) { return !g_only || !strncmp(name, g_only, strlen(g_only)); }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* the 1-minute load average (Linux), or -1 */
static double load_avg(void) {
    double l = -1.0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) { if (fscanf(f, "%lf", &l) != 1) l = -1.0; fclose(f); }
    return l;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* --- output: a table on stdout, the same rows as CSV -------------------- */

static void fmt_num(char *buf, size_t n, double v, const char *fmt) {
    if (v != v) snprintf(buf, n, "%s", "");
    else snprintf(buf, n, fmt, v);
}

/* against: the limit the ratio is over and where the data came from
   (triad/DRAM: inputs larger than the LLC; triad/flush: the LLC flushed
   before every timed run; fma/regs: registers), "" for none */
static void emit(const char *workload, const char *variant, int threads, double ms,
                 double gbs, double gflops, double ratio, const char *against, const char *note) {
    char a[32], b[32], c[32], d[32];
    fmt_num(a, sizeof a, ms, "%.4f");
    fmt_num(b, sizeof b, gbs, "%.2f");
    fmt_num(c, sizeof c, gflops, "%.2f");
    fmt_num(d, sizeof d, ratio, "%.3f");
    printf("%-10s %-12s %3d %11s %9s %9s %7s %-11s %s\n", workload, variant, threads, a, b, c, d, against, note ? note : "");
    fflush(stdout);
    if (g_csv) fprintf(g_csv, "%s,%s,%d,%s,%s,%s,%s,%s\n", workload, variant, threads, a, b, c, d, against);
}

static void table_header(void) {
    printf("%-10s %-12s %3s %11s %9s %9s %7s %-11s %s\n", "workload", "variant", "thr", "median_ms",
           "GB/s", "GFLOP/s", "ratio", "against", "note");
    printf("---------------------------------------------------------------------------------------------\n");
}

/* --- the last-level cache: its size decides the sizes of the limit arrays
   and which workloads are flushed between runs --------------------------- */

/* the largest data or unified cache of cpu0 in sysfs, else sysconf, else 32 MiB */
static void detect_llc(void) {
    int idx, best_level = 0;
    size_t best = 0;
    for (idx = 0; idx < 16; idx++) {
        char path[128], type[32] = "", unit = 0;
        unsigned long kb = 0;
        int level = 0;
        FILE *f;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", idx);
        if (!(f = fopen(path, "r"))) break;
        if (fscanf(f, "%d", &level) != 1) level = 0;
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", idx);
        if ((f = fopen(path, "r"))) { if (fscanf(f, "%31s", type) != 1) type[0] = 0; fclose(f); }
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", idx);
        if ((f = fopen(path, "r"))) { if (fscanf(f, "%lu%c", &kb, &unit) < 1) kb = 0; fclose(f); }
        if (unit == 'M') kb *= 1024;
        if (!strcmp(type, "Instruction") || level < best_level) continue;
        best_level = level;
        best = (size_t)kb * 1024;
    }
    if (best) {
        g_llc = best;
        snprintf(g_llc_what, sizeof g_llc_what, "L%d %zu KiB (sysfs)", best_level, best >> 10);
        return;
    }
#if defined(_SC_LEVEL3_CACHE_SIZE)
    {
        long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE), l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
        if (l3 > 0 || l2 > 0) {
            g_llc = (size_t)(l3 > 0 ? l3 : l2);
            snprintf(g_llc_what, sizeof g_llc_what, "L%d %zu KiB (sysconf)", l3 > 0 ? 3 : 2, g_llc >> 10);
            return;
        }
    }
#endif
    g_llc = (size_t)32 << 20;
    snprintf(g_llc_what, sizeof g_llc_what, "unknown, taken as 32 MiB");
}

static float sum_range(const float *p, size_t n);

#define FLUSH_LLCS 2   /* data of at least this many LLCs is not in cache when reread */

/* reads FLUSH_LLCS x the LLC so that the next run finds its data in memory
   (the lines it evicts were clean or are written back now, not timed) */
static void flush_llc(void) {
    size_t i;
    float s = 0.0f;
    if (!g_flush) {
        g_flush_n = FLUSH_LLCS * g_llc / sizeof(float);
        g_flush = (float *)malloc(g_flush_n * sizeof(float));
        if (!g_flush) { fprintf(stderr, "bench: out of memory for the flush buffer\n"); exit(2); }
        for (i = 0; i < g_flush_n; i++) g_flush[i] = (float)(i & 15);
    }
    s = sum_range(g_flush, g_flush_n);
    g_sink += (double)s * 1e-30;
}

/* --- machine limits ------------------------------------------------------ */

enum { K_TRIAD, K_COPY, K_READ, K_FMA };

typedef struct memjob {
    int    kind;
    float *a, *b, *c;
    size_t lo, hi;
    long   iters;
    int    streams;   /* K_READ: sequential streams per thread */
    double result;
    double keep;    /* a value computed by the FMA loop, so it is not removed */
} memjob;

/* a sum over n floats read as S interleaved sequential streams (S = 4 or 8,
   each a contiguous part): more reads in flight than one stream keeps */
#define SUM_STREAMS(S)                                                              \
    static float sum_streams##S(const float *p, size_t n) {                         \
        size_t q = n / S, i = 0, k;                                                 \
        float s = 0.0f;                                                             \
        SUM_BODY(S)                                                                 \
        for (k = 0; k < S; k++) { size_t j; for (j = i; j < q; j++) s += p[k * q + j]; } \
        for (k = S * q; k < n; k++) s += p[k];                                      \
        return s;                                                                   \
    }
#if defined(TFU_X_VEC)
#define SUM_BODY(S) {                                                               \
        tfu_x_vf acc[S];                                                            \
        float lanes[TFU_X_VW];                                                      \
        for (k = 0; k < S; k++) acc[k] = tfu_x_v_set1(0.0f);                        \
        for (; i + TFU_X_VW <= q; i += TFU_X_VW)                                    \
            for (k = 0; k < S; k++) acc[k] = tfu_x_v_add(acc[k], tfu_x_v_load(p + k * q + i)); \
        for (k = 1; k < S; k++) acc[0] = tfu_x_v_add(acc[0], acc[k]);               \
        tfu_x_v_store(lanes, acc[0]);                                               \
        for (k = 0; k < TFU_X_VW; k++) s += lanes[k];                               \
    }
#else
#define SUM_BODY(S)
#endif
SUM_STREAMS(4)
SUM_STREAMS(8)

static float sum_range(const float *p, size_t n) {
    size_t i = 0;
    float s = 0.0f;
#if defined(__AVX512F__)
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(p + i));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(p + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_loadu_ps(p + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_loadu_ps(p + i + 48));
    }
    s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
#elif defined(__AVX2__)
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    float tmp[8];
    int k;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(p + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(p + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(p + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(p + i + 24));
    }
    _mm256_storeu_ps(tmp, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (k = 0; k < 8; k++) s += tmp[k];
#else
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    for (; i + 4 <= n; i += 4) { s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3]; }
    s = (s0 + s1) + (s2 + s3);
#endif
    for (; i < n; i++) s += p[i];
    return s;
}

/* iters rounds of FMAs on independent accumulators; returns FMAs done
   (one per lane) and leaves a value in *out so nothing is optimised away */
static double fma_loop(long iters, double *out) {
    long it;
#if defined(__AVX512F__)
    const __m512 m = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
    __m512 a0 = _mm512_set1_ps(0.10f), a1 = _mm512_set1_ps(0.11f), a2 = _mm512_set1_ps(0.12f);
    __m512 a3 = _mm512_set1_ps(0.13f), a4 = _mm512_set1_ps(0.14f), a5 = _mm512_set1_ps(0.15f);
    __m512 a6 = _mm512_set1_ps(0.16f), a7 = _mm512_set1_ps(0.17f), a8 = _mm512_set1_ps(0.18f);
    __m512 a9 = _mm512_set1_ps(0.19f), a10 = _mm512_set1_ps(0.20f), a11 = _mm512_set1_ps(0.21f);
    for (it = 0; it < iters; it++) {
        a0 = _mm512_fmadd_ps(a0, m, c); a1 = _mm512_fmadd_ps(a1, m, c); a2 = _mm512_fmadd_ps(a2, m, c);
        a3 = _mm512_fmadd_ps(a3, m, c); a4 = _mm512_fmadd_ps(a4, m, c); a5 = _mm512_fmadd_ps(a5, m, c);
        a6 = _mm512_fmadd_ps(a6, m, c); a7 = _mm512_fmadd_ps(a7, m, c); a8 = _mm512_fmadd_ps(a8, m, c);
        a9 = _mm512_fmadd_ps(a9, m, c); a10 = _mm512_fmadd_ps(a10, m, c); a11 = _mm512_fmadd_ps(a11, m, c);
    }
    a0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                       _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    a0 = _mm512_add_ps(a0, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    *out = _mm512_reduce_add_ps(a0);
    return (double)iters * 12.0 * 16.0;
#elif defined(__AVX2__) && defined(__FMA__)
    const __m256 m = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
    __m256 a0 = _mm256_set1_ps(0.10f), a1 = _mm256_set1_ps(0.11f), a2 = _mm256_set1_ps(0.12f);
    __m256 a3 = _mm256_set1_ps(0.13f), a4 = _mm256_set1_ps(0.14f), a5 = _mm256_set1_ps(0.15f);
    __m256 a6 = _mm256_set1_ps(0.16f), a7 = _mm256_set1_ps(0.17f), a8 = _mm256_set1_ps(0.18f);
    __m256 a9 = _mm256_set1_ps(0.19f), a10 = _mm256_set1_ps(0.20f), a11 = _mm256_set1_ps(0.21f);
    float tmp[8];
    int k;
    for (it = 0; it < iters; it++) {
        a0 = _mm256_fmadd_ps(a0, m, c); a1 = _mm256_fmadd_ps(a1, m, c); a2 = _mm256_fmadd_ps(a2, m, c);
        a3 = _mm256_fmadd_ps(a3, m, c); a4 = _mm256_fmadd_ps(a4, m, c); a5 = _mm256_fmadd_ps(a5, m, c);
        a6 = _mm256_fmadd_ps(a6, m, c); a7 = _mm256_fmadd_ps(a7, m, c); a8 = _mm256_fmadd_ps(a8, m, c);
        a9 = _mm256_fmadd_ps(a9, m, c); a10 = _mm256_fmadd_ps(a10, m, c); a11 = _mm256_fmadd_ps(a11, m, c);
    }
    a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                       _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    a0 = _mm256_add_ps(a0, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    _mm256_storeu_ps(tmp, a0);
    *out = 0.0;
    for (k = 0; k < 8; k++) *out += tmp[k];
    return (double)iters * 12.0 * 8.0;
#else
    float a[16];
    int k;
    for (k = 0; k < 16; k++) a[k] = 0.1f + 0.01f * (float)k;
    for (it = 0; it < iters; it++)
        for (k = 0; k < 16; k++) a[k] = fmaf(a[k], 0.9999999f, 1e-7f);
    *out = 0.0;
    for (k = 0; k < 16; k++) *out += a[k];
    return (double)iters * 16.0;
#endif
}

static const char *simd_name(void) {
#if defined(__AVX512F__) && defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return "AVX-512+VNNI";
#elif defined(__AVX512F__)
    return "AVX-512";
#elif defined(__AVX2__) && defined(__FMA__) && defined(__AVXVNNI__)
    return "AVX2+FMA+AVX-VNNI";
#elif defined(__AVX2__) && defined(__FMA__)
    return "AVX2+FMA";
#else
    return "scalar";
#endif
}

static void *mem_thread(void *arg) {
    memjob *j = (memjob *)arg;
    size_t i;
    switch (j->kind) {
    case K_TRIAD: {
        float *a = j->a;
        const float *b = j->b, *c = j->c;
        const float s = 3.0f;
        for (i = j->lo; i < j->hi; i++) a[i] = b[i] + s * c[i];
        j->result = a[j->lo];
        break;
    }
    case K_COPY:
        memcpy(j->a + j->lo, j->b + j->lo, (j->hi - j->lo) * sizeof(float));
        j->result = j->a[j->lo];
        break;
    case K_READ:
        if (j->streams == 8) j->result = sum_streams8(j->b + j->lo, j->hi - j->lo);
        else if (j->streams == 4) j->result = sum_streams4(j->b + j->lo, j->hi - j->lo);
        else j->result = sum_range(j->b + j->lo, j->hi - j->lo);
        break;
    case K_FMA: {
        double out = 0.0;
        j->result = fma_loop(j->iters, &out);
        j->keep = out;
        break;
    }
    }
    return NULL;
}

/* one timed run of kind on nthr threads (thread 0 is the caller); seconds */
static double mem_run_once(int kind, int nthr, float *a, float *b, float *c, size_t n, long iters, int streams, double *work) {
    pthread_t th[MAX_THREADS];
    memjob jobs[MAX_THREADS];
    int t, started = 0;
    double t0, dt;
    for (t = 0; t < nthr; t++) {
        jobs[t].kind = kind; jobs[t].a = a; jobs[t].b = b; jobs[t].c = c;
        jobs[t].lo = n * (size_t)t / (size_t)nthr;
        jobs[t].hi = n * (size_t)(t + 1) / (size_t)nthr;
        jobs[t].iters = iters;
        jobs[t].streams = streams;
        jobs[t].result = 0.0;
        jobs[t].keep = 0.0;
    }
    t0 = now_s();
    for (t = 1; t < nthr; t++)
        if (pthread_create(&th[t], NULL, mem_thread, &jobs[t]) == 0) started |= 1 << t;
        else mem_thread(&jobs[t]);
    mem_thread(&jobs[0]);
    for (t = 1; t < nthr; t++)
        if (started & (1 << t)) pthread_join(th[t], NULL);
    dt = now_s() - t0;
    if (work) {
        *work = 0.0;
        for (t = 0; t < nthr; t++) { *work += jobs[t].result; g_sink += jobs[t].keep * 1e-30; }
    } else {
        for (t = 0; t < nthr; t++) g_sink += jobs[t].result * 1e-30;
    }
    return dt;
}

static void measure_limits(void) {
    /* each array 64 MiB or FLUSH_LLCS x the LLC, whichever is larger */
    const size_t n = ((size_t)64 << 20 > FLUSH_LLCS * g_llc ? (size_t)64 << 20 : FLUSH_LLCS * g_llc) / sizeof(float);
    const int reps = g_quick ? 5 : 20;
    const long fma_iters = g_quick ? 4000000L : 12000000L;
    float *a = (float *)malloc(n * sizeof(float));
    float *b = (float *)malloc(n * sizeof(float));
    float *c = (float *)malloc(n * sizeof(float));
    size_t i;
    int thr, r, k;
    static const char *names[3] = {"triad", "memcpy", "read"};
    static const double arrays[3] = {3.0, 2.0, 1.0};

    if (!a || !b || !c) { fprintf(stderr, "bench: out of memory for the limit arrays\n"); exit(2); }
    for (i = 0; i < n; i++) { a[i] = 0.0f; b[i] = 1.0f + (float)(i & 7); c[i] = 0.5f; }

    /* read: the best of 1, 4 and 8 streams per thread */
    for (k = 0; k < 3; k++) {
        for (thr = 1; thr <= MAX_THREADS; thr++) {
            static const int stream_counts[3] = {1, 4, 8};
            double gbs = 0.0, best_med = 0.0;
            int si, best_s = 1;
            char note[96];
            for (si = 0; si < (k == K_READ ? 3 : 1); si++) {
                double med, g;
                mem_run_once(k, thr, a, b, c, n, 0, stream_counts[si], NULL);     /* warm-up */
                for (r = 0; r < reps; r++) g_samples[r] = mem_run_once(k, thr, a, b, c, n, 0, stream_counts[si], NULL);
                med = median(g_samples, reps);
                g = arrays[k] * (double)n * sizeof(float) / med * 1e-9;
                if (g > gbs) { gbs = g; best_med = med; best_s = stream_counts[si]; }
            }
            if (k == K_TRIAD) g_triad[thr] = gbs;
            if (k == K_READ) g_read[thr] = gbs;
            if (k == K_READ) snprintf(note, sizeof note, "limit: %d MiB x 1, best of 1/4/8 streams a thread: %d", (int)(n * sizeof(float) >> 20), best_s);
            else snprintf(note, sizeof note, "limit: %d MiB x %d", (int)(n * sizeof(float) >> 20), (int)arrays[k]);
            emit(names[k], "limit", thr, best_med * 1e3, gbs, NAN, NAN, "", note);
        }
    }
    free(a); free(b); free(c);

    for (thr = 1; thr <= MAX_THREADS; thr++) {
        double flops = 0.0, med, gf;
        char note[64];
        mem_run_once(K_FMA, thr, NULL, NULL, NULL, 0, fma_iters / 4, 1, &flops);
        for (r = 0; r < (g_quick ? 3 : 5); r++)
            g_samples[r] = mem_run_once(K_FMA, thr, NULL, NULL, NULL, 0, fma_iters, 1, &flops);
        med = median(g_samples, g_quick ? 3 : 5);
        gf = 2.0 * flops / med * 1e-9;
        g_fma[thr] = gf;
        snprintf(note, sizeof note, "limit: %s, 12 accumulators", simd_name());
        emit("fma", "limit", thr, med * 1e3, NAN, gf, NAN, "", note);
    }
}

/* --- plan timing ----------------------------------------------------------- */

/* warm runs, then timed runs until min_reps are done and budget_s spent
   (or max_reps); median in ms, or -1 on a run error */
static double time_plan(tfu_plan *p, int warm, int min_reps, int max_reps, double budget_s, int flush) {
    double start, t0;
    int i, n = 0;
    if (max_reps > MAX_SAMPLES) max_reps = MAX_SAMPLES;
    for (i = 0; i < warm; i++)
        if (tfu_plan_run(p) != TFU_OK) return -1.0;
    start = now_s();
    while (n < max_reps && (n < min_reps || now_s() - start < budget_s)) {
        tfu_result r;
        if (flush) flush_llc();
        t0 = now_s();
        r = tfu_plan_run(p);
        g_samples[n++] = (now_s() - t0) * 1e3;
        if (r != TFU_OK) return -1.0;
    }
    return median(g_samples, n);
}

/* --- workloads --------------------------------------------------------------- */

enum { LIM_TRIAD, LIM_READ, LIM_FMA, LIM_NONE };

typedef struct workload {
    const char  *name;
    tfu_context *ctx;
    tfu_graph   *g;
    tfu_tensor  *out;
    double       bytes, flops;
    int          limit;
    int          max_nodes;   /* graph size: the tensors the context was sized for */
    int          flush;       /* its data (bytes) fits in FLUSH_LLCS x the LLC: flushed before each timed run */
} workload;

/* what a workload's ratio is against, and from which memory level */
static const char *against(const workload *w) {
    switch (w->limit) {
    case LIM_TRIAD: return w->flush ? "triad/flush" : "triad/DRAM";
    case LIM_READ: return w->flush ? "read/flush" : "read/DRAM";
    case LIM_FMA: return "fma/regs";
    default: return "";
    }
}

/* a context for n_tensors tensors (and a graph of that many) with
   data_bytes of leaf data */
static tfu_context *new_ctx(workload *w, size_t n_tensors, double data_bytes) {
    tfu_context *ctx = tfu_init_malloc(tfu_context_size(n_tensors, (size_t)data_bytes + 64 * n_tensors + (1u << 16)), 0);
    if (!ctx) { fprintf(stderr, "bench: out of memory for a context\n"); exit(2); }
    w->max_nodes = (int)n_tensors;
    return ctx;
}

static tfu_tensor *rand_tensor(tfu_context *ctx, int64_t ne0, int64_t ne1, int64_t ne2, const char *name, uint32_t seed) {
    int64_t ne[3];
    tfu_tensor *t;
    uint32_t s = seed;
    ne[0] = ne0; ne[1] = ne1; ne[2] = ne2;
    t = tfu_new_tensor(ctx, TFU_F32, ne2 > 1 ? 3 : ne1 > 1 ? 2 : 1, ne);
    if (!t) return NULL;
    tfu_set_name(tfu_set_input(t), name);
    llama_fill(t, &s, 0.0f, 1.0f);
    return t;
}

static double tbytes(const tfu_tensor *t) {
    if (tfu_type_block_size(t->type) > 1) return (double)tfu_nbytes(t);   /* quantized: the blocks' bytes */
    return (double)tfu_nelements(t) * (double)tfu_type_size(t->type);
}

static int finish(workload *w, tfu_tensor *out) {
    if (!out) return -1;
    w->out = out;
    w->g = tfu_graph_new(w->ctx, w->max_nodes);
    if (!w->g || tfu_graph_build_expand(w->g, out) != TFU_OK) return -1;
    w->bytes += tbytes(out);
    w->flush = w->bytes < (double)FLUSH_LLCS * (double)g_llc;
    return 0;
}

#define NEED(x) do { if (!(x)) return -1; } while (0)

static int build_w1(workload *w, int with_r) {
    tfu_tensor *x, *wt, *r = NULL, *t;
    w->ctx = new_ctx(w, 32, 4.0 * (2.0 * 4096 * 512 + 4096));
    NEED(x = rand_tensor(w->ctx, 4096, 512, 1, "x", 11));
    NEED(wt = rand_tensor(w->ctx, 4096, 1, 1, "w", 12));
    w->bytes = tbytes(x) + tbytes(wt);
    NEED(t = tfu_rms_norm(w->ctx, x, 1e-6f));
    NEED(t = tfu_mul(w->ctx, t, wt));
    if (with_r) {
        NEED(r = rand_tensor(w->ctx, 4096, 512, 1, "r", 13));
        w->bytes += tbytes(r);
        NEED(t = tfu_add(w->ctx, t, r));
    }
    w->limit = LIM_TRIAD;
    return finish(w, t);
}

static int build_w3(workload *w) {
    tfu_tensor *g, *u;
    w->ctx = new_ctx(w, 32, 4.0 * 2.0 * 11008 * 512);
    NEED(g = rand_tensor(w->ctx, 11008, 512, 1, "g", 21));
    NEED(u = rand_tensor(w->ctx, 11008, 512, 1, "u", 22));
    w->bytes = tbytes(g) + tbytes(u);
    w->limit = LIM_TRIAD;
    return finish(w, tfu_swiglu_split(w->ctx, g, u));
}

static int build_w4(workload *w) {
    tfu_tensor *a, *b, *c, *t;
    w->ctx = new_ctx(w, 32, 4.0 * 3.0 * 4096 * 1024);
    NEED(a = rand_tensor(w->ctx, 4096, 1024, 1, "a", 31));
    NEED(b = rand_tensor(w->ctx, 4096, 1024, 1, "b", 32));
    NEED(c = rand_tensor(w->ctx, 4096, 1024, 1, "c", 33));
    w->bytes = tbytes(a) + tbytes(b) + tbytes(c);
    NEED(t = tfu_add(w->ctx, a, b));
    NEED(t = tfu_mul(w->ctx, t, c));
    NEED(t = tfu_gelu(w->ctx, t));
    NEED(t = tfu_scale(w->ctx, t, 0.5f));
    w->limit = LIM_TRIAD;
    return finish(w, t);
}

static int build_w5(workload *w) {
    tfu_tensor *x, *mask, *t;
    w->ctx = new_ctx(w, 32, 4.0 * (512.0 * 512 * 32 + 512.0 * 512));
    NEED(x = rand_tensor(w->ctx, 512, 512, 32, "x", 41));
    NEED(mask = tfu_causal_mask(w->ctx, 512, 512));
    tfu_set_name(mask, "mask");
    w->bytes = tbytes(x) + tbytes(mask);
    NEED(t = tfu_scale(w->ctx, x, 0.125f));
    NEED(t = tfu_add(w->ctx, t, mask));
    NEED(t = tfu_soft_max(w->ctx, t));
    w->limit = LIM_TRIAD;
    return finish(w, t);
}

/* rope of q: head_dim 128 x 32 heads x 128 tokens (positions 0..127) */
static int build_rope(workload *w, int neox) {
    tfu_tensor *q, *pos;
    int i;
    w->ctx = new_ctx(w, 32, 4.0 * (128.0 * 32 * 128 + 128));
    NEED(q = rand_tensor(w->ctx, 128, 32, 128, "q", 71));
    NEED(pos = tfu_new_tensor_1d(w->ctx, TFU_I32, 128));
    for (i = 0; i < 128; i++) ((int32_t *)pos->data)[i] = i;
    w->bytes = tbytes(q);
    w->limit = LIM_TRIAD;
    return finish(w, tfu_rope(w->ctx, q, pos, 128, neox ? TFU_ROPE_NEOX : TFU_ROPE_NORMAL, 10000.0f));
}

/* matrix-vector: weights K x N (ne0 x ne1) of type wtype times one f32 row of K;
   Q8_0 / Q4_0 weights quantized from the same values, row by row */
static int build_mv(workload *w, int64_t K, int64_t N, tfu_type wtype) {
    tfu_tensor *a, *x;
    uint32_t s = 81;
    double wbytes = (double)K / (double)tfu_type_block_size(wtype) * (double)N * (double)tfu_type_size(wtype);
    w->ctx = new_ctx(w, 32, wbytes + 4.0 * (double)(K + N));
    NEED(a = tfu_new_tensor_2d(w->ctx, wtype, K, N));
    tfu_set_input(a);
    if (tfu_type_block_size(wtype) > 1) {
        float *row = (float *)malloc((size_t)K * sizeof(float));
        int64_t r, k;
        NEED(row);
        for (r = 0; r < N; r++) {
            for (k = 0; k < K; k++) row[k] = (float)sqrt(3.0 / (double)K) * llama_unif(&s);
            if (wtype == TFU_Q8_0) tfu_quantize_q8_0(row, (char *)a->data + (size_t)r * a->nb[1], K);
            else tfu_quantize_q4_0(row, (char *)a->data + (size_t)r * a->nb[1], K);
        }
        free(row);
    } else {
        llama_fill(a, &s, 0.0f, (float)sqrt(3.0 / (double)K));
    }
    NEED(x = rand_tensor(w->ctx, K, 1, 1, "x", 82));
    w->bytes = tbytes(a) + tbytes(x);
    w->limit = LIM_READ;
    return finish(w, tfu_mul_mat(w->ctx, a, x));
}

static llama_config tinyllama(int T, tfu_type wtype) {
    llama_config c = llama_default_config();
    c.dim = 2048; c.n_heads = 32; c.n_kv_heads = 4; c.head_dim = 64; c.ffn = 5632;
    c.n_layers = 1; c.T = T; c.wtype = wtype;
    return c;
}

static int build_w6(workload *w, int T, tfu_type wtype) {
    llama_config c = tinyllama(T, wtype);
    static llama_model m;   /* large: keep it off the stack */
    w->ctx = tfu_init_malloc(llama_context_bytes(&c, 0), 0);
    if (!w->ctx) { fprintf(stderr, "bench: out of memory for a context\n"); exit(2); }
    if (llama_build(w->ctx, &c, &m) != 0) return -1;
    w->out = m.out;
    NEED(w->g = llama_graph(w->ctx, &m));
    w->bytes = llama_weight_bytes(&c);
    w->flops = llama_matmul_flops(&c);
    w->limit = T == 1 ? LIM_READ : LIM_FMA;
    w->flush = T == 1 && w->bytes < (double)FLUSH_LLCS * (double)g_llc;
    return 0;
}

/* causal attention over T positions with TinyLlama's heads: Q 64 x T x 32,
   K 64 x T x 4, V a leaf 64 x T x 4 seen T x 64 x 4 (the llama layout) */
static int build_attn(workload *w, int T) {
    tfu_tensor *q, *k, *v, *mask, *t;
    w->ctx = new_ctx(w, 32, 4.0 * (64.0 * T * 40 + (double)T * T));
    NEED(q = rand_tensor(w->ctx, 64, T, 32, "q", 91));
    NEED(k = rand_tensor(w->ctx, 64, T, 4, "k", 92));
    NEED(v = rand_tensor(w->ctx, 64, T, 4, "v", 93));
    NEED(v = tfu_permute(w->ctx, v, 1, 0, 2, 3));
    NEED(mask = tfu_causal_mask(w->ctx, T, T));
    w->bytes = tbytes(q) + tbytes(k) + tbytes(v) + tbytes(mask);
    w->flops = 4.0 * (double)T * (double)T * 64.0 * 32.0;
    NEED(t = tfu_mul_mat(w->ctx, k, q));
    NEED(t = tfu_soft_max_ext(w->ctx, t, mask, 0.125f));
    NEED(t = tfu_mul_mat(w->ctx, v, t));
    if (finish(w, t) != 0) return -1;
    w->limit = LIM_FMA;
    w->flush = 0;
    return 0;
}

/* a chain of n tiny element-wise nodes (add, mul, tanh) */
static int build_chain(workload *w, int n) {
    tfu_tensor *x, *b, *c, *y;
    int i;
    w->ctx = new_ctx(w, (size_t)n + 32, 4.0 * 3 * 64);
    NEED(x = rand_tensor(w->ctx, 16, 4, 1, "x", 51));
    NEED(b = rand_tensor(w->ctx, 16, 4, 1, "b", 52));
    NEED(c = rand_tensor(w->ctx, 16, 4, 1, "c", 53));
    y = x;
    for (i = 0; i < n; i++) {
        switch (i % 3) {
        case 0: y = tfu_add(w->ctx, y, b); break;
        case 1: y = tfu_mul(w->ctx, y, c); break;
        default: y = tfu_tanh(w->ctx, y); break;
        }
        NEED(y);
    }
    w->limit = LIM_NONE;
    return finish(w, y);
}

/* a DAG of n nodes: values used far away, row ops, broadcasting and, every
   25 nodes, a matrix product that ends the row-local groups */
static int build_dag(workload *w, int n) {
    tfu_tensor **v, *x, *wt, *wm;
    int i;
    v = (tfu_tensor **)malloc(((size_t)n + 1) * sizeof *v);
    if (!v) return -1;
    w->ctx = new_ctx(w, (size_t)n + 32, 4.0 * (2 * 64 + 256));
    x = rand_tensor(w->ctx, 16, 4, 1, "x", 61);
    wt = rand_tensor(w->ctx, 16, 1, 1, "w", 62);
    wm = rand_tensor(w->ctx, 16, 16, 1, "wm", 63);
    if (!x || !wt || !wm) { free(v); return -1; }
    v[0] = x;
    for (i = 1; i <= n; i++) {
        tfu_tensor *p = v[i - 1];
        if (i % 25 == 0) { if (!(v[i] = tfu_mul_mat(w->ctx, wm, p))) { free(v); return -1; } continue; }
        switch (i % 6) {
        case 0: v[i] = tfu_add(w->ctx, p, v[i - 1 - (i % 7 < i - 1 ? i % 7 : 0)]); break;
        case 1: v[i] = tfu_mul(w->ctx, p, wt); break;
        case 2: v[i] = tfu_rms_norm(w->ctx, p, 1e-6f); break;
        case 3: v[i] = tfu_silu(w->ctx, p); break;
        case 4: v[i] = tfu_sub(w->ctx, p, v[i / 2]); break;
        default: v[i] = i % 12 == 5 ? tfu_soft_max(w->ctx, p) : tfu_scale(w->ctx, p, 0.5f); break;
        }
        if (!v[i]) { free(v); return -1; }
    }
    x = v[n];
    free(v);
    w->limit = LIM_NONE;
    return finish(w, x);
}

static void free_workload(workload *w) {
    if (w->ctx) tfu_free(w->ctx);
    memset(w, 0, sizeof *w);
}

static double rel_diff(const float *a, const float *ref, int64_t n) {
    double md = 0.0, mr = 0.0;
    int64_t i;
    for (i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]), r = fabs((double)ref[i]);
        if (d != d) return INFINITY;
        if (d > md) md = d;
        if (r > mr) mr = r;
    }
    return mr > 0.0 ? md / mr : md;
}

static void fail_row(const char *wl, const char *variant, int thr, const char *what, const char *msg) {
    char note[320];
    snprintf(note, sizeof note, "FAILED %.32s: %.240s", what, msg ? msg : "?");
    emit(wl, variant, thr, NAN, NAN, NAN, NAN, "", note);
    g_fail = 1;
}

/* the unfused and the fused plan of a workload, timed in turns (one run of
   each per round) so that both see the same machine; medians in ms, or -1 */
static int time_pair(tfu_plan *pu, tfu_plan *pf, int warm, int min_reps, double budget_s, int flush,
                     double *ms_u, double *ms_f) {
    static double su[MAX_SAMPLES], sf[MAX_SAMPLES];
    double start, t0;
    int i, n = 0;
    for (i = 0; i < warm; i++)
        if (tfu_plan_run(pu) != TFU_OK || tfu_plan_run(pf) != TFU_OK) return -1;
    start = now_s();
    while (n < MAX_SAMPLES && (n < min_reps || now_s() - start < 2.0 * budget_s)) {
        if (flush) flush_llc();
        t0 = now_s();
        if (tfu_plan_run(pu) != TFU_OK) return -1;
        su[n] = (now_s() - t0) * 1e3;
        if (flush) flush_llc();
        t0 = now_s();
        if (tfu_plan_run(pf) != TFU_OK) return -1;
        sf[n] = (now_s() - t0) * 1e3;
        n++;
    }
    *ms_u = median(su, n);
    *ms_f = median(sf, n);
    return n;
}

/* every variant (unfused and fused, 1 and MAX_THREADS threads) of one
   workload; prefix names the weight type ("" or "f16-") */
static void run_workload(const char *name, workload *w, const char *prefix, int warm,
                         int min_reps, double budget_s, int qact) {
    int64_t n_out = tfu_nelements(w->out);
    float *ref = (float *)malloc((size_t)n_out * sizeof(float));
    float *got = (float *)malloc((size_t)n_out * sizeof(float));
    int have_ref = 0, thr, fused;
    if (!ref || !got) { fprintf(stderr, "bench: out of memory\n"); exit(2); }
    for (thr = 1; thr <= MAX_THREADS; thr++) {
        tfu_plan *plans[2];
        char variants[2][32];
        double ms[2];
        int ok = 1;
        for (fused = 0; fused <= 1; fused++) {
            tfu_plan_options o = tfu_plan_default_options();
            o.n_threads = thr;
            o.no_fusion = !fused;
            o.quant_activations = qact;
            snprintf(variants[fused], sizeof variants[fused], "%s%s", prefix, fused ? "fused" : "unfused");
            plans[fused] = tfu_plan_compile(w->g, &o);
            if (!plans[fused]) { fail_row(name, variants[fused], thr, "compile", tfu_last_error_msg(w->ctx)); ok = 0; }
        }
        if (ok && time_pair(plans[0], plans[1], warm, min_reps, budget_s, w->flush, &ms[0], &ms[1]) < 0) {
            fail_row(name, variants[0], thr, "run", tfu_result_str(tfu_plan_last_error(plans[0])));
            fail_row(name, variants[1], thr, "run", tfu_result_str(tfu_plan_last_error(plans[1])));
            ok = 0;
        }
        for (fused = 0; ok && fused <= 1; fused++) {
            tfu_plan_stats st = tfu_plan_get_stats(plans[fused]);
            char note[160];
            double gbs = NAN, gfs = NAN, ratio = NAN;
            if (tfu_plan_run(plans[fused]) != TFU_OK) {   /* its own result, for the check */
                fail_row(name, variants[fused], thr, "run", tfu_result_str(tfu_plan_last_error(plans[fused])));
                continue;
            }
            llama_copy_out(w->out, got);
            if (w->bytes > 0) gbs = w->bytes / (ms[fused] * 1e6);
            if (w->flops > 0) gfs = w->flops / (ms[fused] * 1e6);
            switch (w->limit) {
            case LIM_TRIAD: ratio = gbs / g_triad[thr]; break;
            case LIM_READ:  ratio = gbs / g_read[thr]; break;
            case LIM_FMA:   ratio = gfs / g_fma[thr]; break;
            default: break;
            }
            if (fused)
                snprintf(note, sizeof note, "x%.2f vs unfused, %d groups", ms[0] / ms[1], st.n_groups);
            else
                snprintf(note, sizeof note, "%d groups", st.n_groups);
            if (!have_ref) { memcpy(ref, got, (size_t)n_out * sizeof(float)); have_ref = 1; }
            else {
                double d = rel_diff(got, ref, n_out);
                if (!(d <= 1e-3)) {
                    size_t l = strlen(note);
                    snprintf(note + l, sizeof note - l, ", MISMATCH %.2e", d);
                    g_fail = 1;
                }
            }
            emit(name, variants[fused], thr, ms[fused], gbs, gfs, ratio, against(w), note);
        }
        for (fused = 0; fused <= 1; fused++) if (plans[fused]) tfu_plan_free(plans[fused]);
    }
    free(ref);
    free(got);
}

/* one plan (the default: fused) of a workload on 1 and MAX_THREADS threads;
   the threaded result checked against the single-threaded one */
/* mv rows: the f32 variant's result of the last shape, against which the
   others' NMSE is noted (the weights are quantized from the same values) */
static float *g_mv_f32;
static int64_t g_mv_n;
static char g_mv_name[32];

static void run_single(const char *name, workload *w, const char *variant, int warm, int min_reps, double budget_s, int qact) {
    int64_t n_out = tfu_nelements(w->out);
    float *ref = (float *)malloc((size_t)n_out * sizeof(float));
    float *got = (float *)malloc((size_t)n_out * sizeof(float));
    int thr;
    if (!ref || !got) { fprintf(stderr, "bench: out of memory\n"); exit(2); }
    for (thr = 1; thr <= MAX_THREADS; thr++) {
        tfu_plan_options o = tfu_plan_default_options();
        tfu_plan *p;
        double ms, gbs, ratio;
        char note[96] = "";
        o.n_threads = thr;
        o.quant_activations = qact;
        p = tfu_plan_compile(w->g, &o);
        if (!p) { fail_row(name, variant, thr, "compile", tfu_last_error_msg(w->ctx)); continue; }
        ms = time_plan(p, warm, min_reps, MAX_SAMPLES, budget_s, w->flush);
        if (ms < 0 || tfu_plan_run(p) != TFU_OK) {
            fail_row(name, variant, thr, "run", tfu_result_str(tfu_plan_last_error(p)));
            tfu_plan_free(p);
            continue;
        }
        llama_copy_out(w->out, thr == 1 ? ref : got);
        if (thr == 1 && !strncmp(name, "mv-", 3)) {
            if (!strcmp(variant, "f32")) {
                free(g_mv_f32);
                g_mv_f32 = (float *)malloc((size_t)n_out * sizeof(float));
                if (g_mv_f32) memcpy(g_mv_f32, ref, (size_t)n_out * sizeof(float));
                g_mv_n = n_out;
                snprintf(g_mv_name, sizeof g_mv_name, "%s", name);
            } else if (g_mv_f32 && g_mv_n == n_out && !strcmp(g_mv_name, name)) {
                double se = 0.0, sr = 0.0;
                int64_t k;
                for (k = 0; k < n_out; k++) {
                    se += ((double)ref[k] - g_mv_f32[k]) * ((double)ref[k] - g_mv_f32[k]);
                    sr += (double)g_mv_f32[k] * g_mv_f32[k];
                }
                snprintf(note, sizeof note, "NMSE %.2e against f32", sr > 0 ? se / sr : se);
            }
        }
        if (thr > 1) {
            double d = rel_diff(got, ref, n_out);
            if (!(d <= 1e-6)) {
                snprintf(note, sizeof note, "MISMATCH against 1 thread %.2e", d);
                g_fail = 1;
            }
        }
        gbs = w->bytes / (ms * 1e6);
        ratio = gbs / (w->limit == LIM_READ ? g_read[thr] : g_triad[thr]);
        emit(name, variant, thr, ms, gbs, NAN, ratio, against(w), note);
        tfu_plan_free(p);
    }
    free(ref);
    free(got);
}

static void run_dispatch(void) {
    workload w;
    int i;
    static const int cases[3][2] = {{0, 1}, {1, 1}, {0, 2}};   /* fused, threads */
    memset(&w, 0, sizeof w);
    if (build_chain(&w, 1000) != 0) {
        fail_row("dispatch", "-", 1, "build", w.ctx ? tfu_last_error_msg(w.ctx) : "no context");
        free_workload(&w);
        return;
    }
    for (i = 0; i < 3; i++) {
        tfu_plan_options o = tfu_plan_default_options();
        tfu_plan *p;
        tfu_plan_stats st;
        double ms;
        char note[96];
        const char *variant = cases[i][0] ? "fused" : "unfused";
        o.no_fusion = !cases[i][0];
        o.n_threads = cases[i][1];
        p = tfu_plan_compile(w.g, &o);
        if (!p) { fail_row("dispatch", variant, o.n_threads, "compile", tfu_last_error_msg(w.ctx)); continue; }
        st = tfu_plan_get_stats(p);
        ms = time_plan(p, 20, g_quick ? 20 : 100, 100000, g_quick ? 0.1 : 0.4, 0);
        tfu_plan_free(p);
        if (ms < 0) { fail_row("dispatch", variant, o.n_threads, "run", "plan run failed"); continue; }
        snprintf(note, sizeof note, "%.3f us/node, %d nodes, %d groups, %d stages",
                 ms * 1e3 / tfu_graph_n_nodes(w.g), tfu_graph_n_nodes(w.g), st.n_groups, st.n_stages);
        emit("dispatch", variant, o.n_threads, ms, NAN, NAN, NAN, "", note);
    }
    free_workload(&w);
}

/* compile time of one graph, fused and unfused (median of repeated compiles) */
static void plan_rows(const char *name, workload *w) {
    int fused;
    for (fused = 1; fused >= 0; fused--) {
        tfu_plan_options o = tfu_plan_default_options();
        int n = 0, groups = 0, stages = 0;
        double start = now_s(), ms;
        char note[96];
        const char *variant = fused ? "fused" : "unfused";
        o.no_fusion = !fused;
        while (n < 200 && (n < (g_quick ? 3 : 10) || now_s() - start < (g_quick ? 0.2 : 1.0))) {
            double t0 = now_s();
            tfu_plan *p = tfu_plan_compile(w->g, &o);
            double dt = now_s() - t0;
            if (!p) break;
            groups = tfu_plan_n_groups(p);
            stages = tfu_plan_get_stats(p).n_stages;
            tfu_plan_free(p);
            g_samples[n++] = dt * 1e3;
        }
        if (n == 0) { fail_row(name, variant, 1, "compile", tfu_last_error_msg(w->ctx)); continue; }
        ms = median(g_samples, n);
        snprintf(note, sizeof note, "%d nodes -> %d groups, %d stages", tfu_graph_n_nodes(w->g), groups, stages);
        emit(name, variant, 1, ms, NAN, NAN, NAN, "", note);
    }
}

/* planning cost: a 1000-node DAG, and 100k-node graphs (a chain, a DAG with
   long-range uses) that show the planner is not quadratic */
static void run_planning(void) {
    static const struct { const char *name; int n, dag; } rows[] = {
        { "planning", 1000, 1 }, { "plan-chain", 100000, 0 }, { "plan-dag", 100000, 1 } };
    int r;
    for (r = 0; r < (int)(sizeof rows / sizeof rows[0]); r++) {
        workload w;
        int rc;
        memset(&w, 0, sizeof w);
        rc = rows[r].dag ? build_dag(&w, rows[r].n) : build_chain(&w, rows[r].n);
        if (rc != 0) fail_row(rows[r].name, "-", 1, "build", w.ctx ? tfu_last_error_msg(w.ctx) : "no context");
        else plan_rows(rows[r].name, &w);
        free_workload(&w);
    }
}

int main(int argc, char **argv) {
    const char *csv_path = "build/bench.csv";
    double t_start = now_s();
    int i;
    workload w;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) g_quick = 1;
        else if (!strcmp(argv[i], "--csv") && i + 1 < argc) csv_path = argv[++i];
        else if (!strcmp(argv[i], "--planning")) g_planning_only = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) g_only = argv[++i];
        else { fprintf(stderr, "usage: %s [--quick] [--planning] [--only PREFIX] [--csv FILE]\n", argv[0]); return 2; }
    }
    g_csv = fopen(csv_path, "w");
    if (!g_csv && !strncmp(csv_path, "build/", 6)) {
        mkdir("build", 0777);
        g_csv = fopen(csv_path, "w");
    }
    if (!g_csv) fprintf(stderr, "bench: cannot write %s; table only\n", csv_path);
    else fprintf(g_csv, "workload,variant,threads,median_ms,gb_s,gflop_s,ratio_to_limit,against\n");

    detect_llc();
    printf("tensorfuse bench%s: threads 1..%d, %s, medians of timed runs after warm-up\n",
           g_quick ? " (--quick)" : "", MAX_THREADS, simd_name());
    printf("last-level cache: %s; workloads with less data than %d x that are flushed before every timed run\n",
           g_llc_what, FLUSH_LLCS);
    if (load_avg() >= 0.5)
        printf("note: load average %.2f before the run: other work on this machine skews the figures\n", load_avg());
    if (getenv("TFU_NO_FUSION")) printf("note: TFU_NO_FUSION is set: \"fused\" plans are unfused too\n");
    if (getenv("TFU_NO_SIMD")) printf("note: TFU_NO_SIMD is set: scalar kernels\n");
    printf("\n");
    table_header();
    if (g_planning_only) {
        run_planning();
        if (g_csv) fclose(g_csv);
        return g_fail;
    }
    measure_limits();
    {
        /* -i8: quant_activations (int8 activations, integer dot products);
           mv-4096 for the NMSE of each variant against f32 */
        static const struct { const char *name, *variant; int kind; int64_t K, N; tfu_type t; int qact; } rows[] = {
            { "rope", "normal", 0, 0, 0, TFU_F32, 0 }, { "rope", "neox", 1, 0, 0, TFU_F32, 0 },
            { "mv-2048", "f32", 2, 2048, 5632, TFU_F32, 0 }, { "mv-2048", "f16", 2, 2048, 5632, TFU_F16, 0 },
            { "mv-2048", "q8_0", 2, 2048, 5632, TFU_Q8_0, 0 }, { "mv-2048", "q8_0-i8", 2, 2048, 5632, TFU_Q8_0, 1 },
            { "mv-2048", "q4_0", 2, 2048, 5632, TFU_Q4_0, 0 }, { "mv-2048", "q4_0-i8", 2, 2048, 5632, TFU_Q4_0, 1 },
            { "mv-5632", "f32", 2, 5632, 2048, TFU_F32, 0 }, { "mv-5632", "f16", 2, 5632, 2048, TFU_F16, 0 },
            { "mv-5632", "q8_0", 2, 5632, 2048, TFU_Q8_0, 0 }, { "mv-5632", "q8_0-i8", 2, 5632, 2048, TFU_Q8_0, 1 },
            { "mv-5632", "q4_0", 2, 5632, 2048, TFU_Q4_0, 0 }, { "mv-5632", "q4_0-i8", 2, 5632, 2048, TFU_Q4_0, 1 },
            { "mv-4096", "f32", 2, 4096, 4096, TFU_F32, 0 }, { "mv-4096", "f16", 2, 4096, 4096, TFU_F16, 0 },
            { "mv-4096", "q8_0", 2, 4096, 4096, TFU_Q8_0, 0 }, { "mv-4096", "q8_0-i8", 2, 4096, 4096, TFU_Q8_0, 1 },
            { "mv-4096", "q4_0", 2, 4096, 4096, TFU_Q4_0, 0 }, { "mv-4096", "q4_0-i8", 2, 4096, 4096, TFU_Q4_0, 1 } };
        for (i = 0; i < (int)(sizeof rows / sizeof rows[0]); i++) {
            int rc;
            if (!wanted(rows[i].name)) continue;
            memset(&w, 0, sizeof w);
            rc = rows[i].kind < 2 ? build_rope(&w, rows[i].kind) : build_mv(&w, rows[i].K, rows[i].N, rows[i].t);
            if (rc != 0) fail_row(rows[i].name, rows[i].variant, 1, "build", w.ctx ? tfu_last_error_msg(w.ctx) : "no context");
            else run_single(rows[i].name, &w, rows[i].variant, g_quick ? 1 : 3, g_quick ? 5 : 20, g_quick ? 0.1 : 0.5, rows[i].qact);
            free_workload(&w);
        }
        free(g_mv_f32);
        g_mv_f32 = NULL;
    }

    {
        const int warm = g_quick ? 1 : 3, min_reps = g_quick ? 5 : 20;
        const double budget = g_quick ? 0.1 : 1.0;
        static const char *names[5] = {"W1", "W2", "W3", "W4", "W5"};
        for (i = 0; i < 5; i++) {
            int rc;
            if (!wanted(names[i])) continue;
            memset(&w, 0, sizeof w);
            switch (i) {
            case 0: rc = build_w1(&w, 0); break;
            case 1: rc = build_w1(&w, 1); break;
            case 2: rc = build_w3(&w); break;
            case 3: rc = build_w4(&w); break;
            default: rc = build_w5(&w); break;
            }
            if (rc != 0) fail_row(names[i], "-", 1, "build", w.ctx ? tfu_last_error_msg(w.ctx) : "no context");
            else run_workload(names[i], &w, "", warm, min_reps, budget, 0);
            free_workload(&w);
        }
    }
    {
        static const int Ts[2] = {1, 128};
        /* q8_0-i8: Q8_0 weights with tfu_plan_options.quant_activations */
        static const tfu_type wts[4] = {TFU_F32, TFU_F16, TFU_Q8_0, TFU_Q8_0};
        static const char *const prefixes[4] = {"", "f16-", "q8_0-", "q8_0-i8-"};
        int ti, wt;
        for (ti = 0; ti < 2; ti++) {
            for (wt = 0; wt < 4; wt++) {
                char name[16];
                int T = Ts[ti];
                snprintf(name, sizeof name, "W6-T%d", T);
                if (!wanted(name)) continue;
                memset(&w, 0, sizeof w);
                if (build_w6(&w, T, wts[wt]) != 0)
                    fail_row(name, prefixes[wt], 1, "build", w.ctx ? tfu_last_error_msg(w.ctx) : "no context");
                else if (T == 1)
                    run_workload(name, &w, prefixes[wt], g_quick ? 1 : 3, g_quick ? 5 : 20, g_quick ? 0.15 : 1.0, wt == 3);
                else
                    run_workload(name, &w, prefixes[wt], g_quick ? 1 : 2, g_quick ? 3 : 7, g_quick ? 0.3 : 2.0, wt == 3);
                free_workload(&w);
            }
        }
    }
    if (wanted("attn-T512")) {
        memset(&w, 0, sizeof w);
        if (build_attn(&w, 512) != 0) fail_row("attn-T512", "-", 1, "build", w.ctx ? tfu_last_error_msg(w.ctx) : "no context");
        else run_workload("attn-T512", &w, "", g_quick ? 1 : 2, g_quick ? 3 : 10, g_quick ? 0.3 : 1.5, 0);
        free_workload(&w);
    }
    if (wanted("dispatch")) run_dispatch();
    if (wanted("plan")) run_planning();

    if (g_csv) { fclose(g_csv); printf("\nCSV: %s\n", csv_path); }
    printf("total %.1f s, load average %.2f%s\n", now_s() - t_start, load_avg(),
           g_fail ? "; SOME ROWS FAILED OR MISMATCHED" : "");
    return g_fail;
}
