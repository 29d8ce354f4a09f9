/* tfu_test.h - the small harness every test program shares.
   Include after tensorfuse.h (with TFU_IMPLEMENTATION in the test's .c). */
#ifndef TFU_TEST_H
#define TFU_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Windows (mingw-w64): stand-ins for the POSIX calls the tests make. setenv
   goes to the CRT's environment, which getenv reads; no signal mask to save;
   no alarm(), so no watchdog: the caller's timeout stands in. */
#if defined(_WIN32)
#include <setjmp.h>
#include <signal.h>
#define setenv(name, value, overwrite) _putenv_s(name, value)
#define unsetenv(name) _putenv_s(name, "")
#define sigjmp_buf jmp_buf
#define sigsetjmp(env, save) setjmp(env)
#define siglongjmp longjmp
#define alarm(s) ((void)(s))
#define SIGALRM SIGTERM
#endif

#if defined(__GNUC__)
#define TT_FN static __attribute__((unused))
#else
#define TT_FN static
#endif

TT_FN int tt_passed, tt_failed, tt_skipped;
TT_FN int tt_verbose;

#define TT_CHECK(cond, ...) do {                                            \
        if (cond) { tt_passed++; }                                          \
        else { tt_failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__);     \
               printf(__VA_ARGS__); printf("\n"); }                         \
    } while (0)

/* ends the program with the summary line make test reads */
TT_FN int tt_summary(void) {
    if (tt_skipped) printf("%d passed, %d failed, %d skipped\n", tt_passed, tt_failed, tt_skipped);
    else            printf("%d passed, %d failed\n", tt_passed, tt_failed);
    return tt_failed ? 1 : 0;
}

/* xorshift64*; seeded explicitly so every failure can be replayed */
TT_FN uint64_t tt_rng_state = 0x9E3779B97F4A7C15ull;
TT_FN void tt_seed(uint64_t s) { tt_rng_state = s ? s * 0x9E3779B97F4A7C15ull : 1; }
TT_FN uint64_t tt_u64(void) {
    uint64_t x = tt_rng_state; x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    tt_rng_state = x; return x * 0x2545F4914F6CDD1Dull;
}
TT_FN int tt_int(int lo, int hi) { return lo + (int)(tt_u64() % (uint64_t)(hi - lo + 1)); } /* [lo,hi] */
TT_FN double tt_unif(void) { return (double)(tt_u64() >> 11) * (1.0 / 9007199254740992.0); }   /* [0,1) */
/* uniform in [lo,hi], never exactly zero */
TT_FN float tt_rand(float lo, float hi) {
    float v;
    do { v = lo + (hi - lo) * (float)tt_unif(); } while (v == 0.0f);
    return v;
}

/* fill any tensor (any type, any strides) with random non-zero values */
TT_FN void tt_fill(tfu_tensor *t, float lo, float hi) {
    int64_t i0, i1, i2, i3;
    for (i3 = 0; i3 < t->ne[3]; i3++) for (i2 = 0; i2 < t->ne[2]; i2++)
    for (i1 = 0; i1 < t->ne[1]; i1++) for (i0 = 0; i0 < t->ne[0]; i0++)
        tfu_set_f32(t, i0, i1, i2, i3, tt_rand(lo, hi));
}

/* poison: a NaN bit pattern in every byte of [p, p+n) */
TT_FN void tt_poison(void *p, size_t n) { memset(p, 0xFF, n); }

/* largest error of t against a double reference laid out contiguously
   (ne0 fastest), relative to max(1, |ref|); NaN in t counts as infinite */
TT_FN double tt_max_err(const tfu_tensor *t, const double *ref) {
    double worst = 0; int64_t i0, i1, i2, i3, k = 0;
    for (i3 = 0; i3 < t->ne[3]; i3++) for (i2 = 0; i2 < t->ne[2]; i2++)
    for (i1 = 0; i1 < t->ne[1]; i1++) for (i0 = 0; i0 < t->ne[0]; i0++, k++) {
        double v = tfu_get_f32(t, i0, i1, i2, i3), r = ref[k];
        double d;
        if (isinf(r) && v == r) continue;
        d = fabs(v - r) / (fabs(r) > 1.0 ? fabs(r) : 1.0);
        if (v != v || (r == r && d != d)) return INFINITY;
        if (d > worst) worst = d;
    }
    return worst;
}

/* copies t into a new malloc'd contiguous f32 array (ne0 fastest) */
TT_FN float *tt_copy_out(const tfu_tensor *t) {
    int64_t n = tfu_nelements(t), i0, i1, i2, i3, k = 0;
    float *out = (float *)malloc((size_t)n * sizeof(float));
    for (i3 = 0; i3 < t->ne[3]; i3++) for (i2 = 0; i2 < t->ne[2]; i2++)
    for (i1 = 0; i1 < t->ne[1]; i1++) for (i0 = 0; i0 < t->ne[0]; i0++)
        out[k++] = tfu_get_f32(t, i0, i1, i2, i3);
    return out;
}

TT_FN int tt_arg_int(int argc, char **argv, const char *name, int def) {
    int i;
    for (i = 1; i + 1 < argc; i++) if (!strcmp(argv[i], name)) return atoi(argv[i + 1]);
    return def;
}

/* NaN-aware comparison for IEEE results: NaN is expected exactly where the
   reference has NaN, an infinity only as the same infinity, and a finite
   value within tol (absolute) of the reference. */
TT_FN int tt_ieee_same(double got, double want, double tol) {
    if (want != want) return got != got;
    if (got != got) return 0;
    if (isinf(want) || isinf(got)) return got == want;
    return fabs(got - want) <= tol;
}

/* mismatches of t (any type, read with tfu_get_f32, ne0 fastest) against
   want and per-element absolute tolerances tol, both laid out contiguously;
   *first gets the index of the first mismatch, -1 if none */
TT_FN int64_t tt_ieee_mismatches(const tfu_tensor *t, const double *want, const double *tol, int64_t *first) {
    int64_t i0, i1, i2, i3, k = 0, bad = 0;
    *first = -1;
    for (i3 = 0; i3 < t->ne[3]; i3++) for (i2 = 0; i2 < t->ne[2]; i2++)
    for (i1 = 0; i1 < t->ne[1]; i1++) for (i0 = 0; i0 < t->ne[0]; i0++, k++) {
        if (tt_ieee_same(tfu_get_f32(t, i0, i1, i2, i3), want[k], tol[k])) continue;
        if (*first < 0) *first = k;
        bad++;
    }
    return bad;
}
#endif
