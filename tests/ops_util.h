/* ops_util.h - helpers shared by the CPU op tests (test_attention, test_norm,
 * test_elementwise): random fills, CPU contexts per thread count / ISA, size scaling. */
#ifndef SDC_TESTS_OPS_UTIL_H
#define SDC_TESTS_OPS_UTIL_H

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu/cpu.h"
#include "testutil.h"

/* Unoptimised (sanitizer) builds run the same cases at smaller sizes. */
#ifdef __OPTIMIZE__
#define OPS_FULL 1
#else
#define OPS_FULL 0
#endif

static inline float *ops_alloc(int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(1); }
    return p;
}

static inline void ops_fill_normal(tu_rng *r, float *x, int64_t n, double mean, double sd) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(mean + sd * tu_rng_normal(r));
}

static inline void ops_fill_uniform(tu_rng *r, float *x, int64_t n, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * tu_rng_uniform(r));
}

/* A CPU context with n threads capped at isa; exits when it cannot be made. */
static inline sdc_cpu *ops_cpu(int n_threads, sdc_isa isa) {
    sdc_cpu *c = sdc_cpu_new(n_threads, isa);
    if (!c) { fprintf(stderr, "sdc_cpu_new failed\n"); exit(1); }
    return c;
}

/* True when the SIMD path exists on this machine (else SIMD-vs-scalar checks are moot). */
static inline int ops_have_avx2(void) { return sdc_cpu_detect_isa() >= SDC_ISA_AVX2; }

#define CHECK_SAME(a, b, n, label)                                                         \
    do {                                                                                   \
        int same_ = memcmp((a), (b), (size_t)(n) * sizeof(float)) == 0;                   \
        printf("%-40s n=%lld %s\n", (label), (long long)(n), same_ ? "bit-identical" : "DIFFER"); \
        CHECK_MSG(same_, "%s: results differ", (label));                                   \
    } while (0)

#endif
