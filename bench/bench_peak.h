/* bench_peak.h - this machine's fp32 FMA peak, measured in the benchmark's own process so a
 * result can be given as a fraction of it from the same run (the cores are shared: the peak
 * moves with the host's load, 202 to 470 GFLOP/s on 2 threads here). 12 independent
 * accumulator chains per thread (enough to cover the FMA latency on both pipes), a fixed
 * iteration count, all threads at once. Header-only, like bench_util.h. */
#ifndef SDC_BENCH_PEAK_H
#define SDC_BENCH_PEAK_H

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define PEAK_ITERS 20000000L
#define PEAK_RUNS 5

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2,fma"))) static inline float peak_fma_loop_avx2(long iters, float seed) {
    __m256 a[12], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps(seed + i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
    __m256 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
    float o[8];
    _mm256_storeu_ps(o, s);
    return o[0];
}
/* The same loop on 16-wide vectors: the peak the AVX-512 kernels are measured against. */
__attribute__((target("avx512f"))) static inline float peak_fma_loop_avx512(long iters, float seed) {
    __m512 a[12], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps(seed + i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}
#endif

typedef struct { long iters; int width; float out; double cpu; } peak_arg;

static inline double peak_thread_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline void *peak_thread(void *v) {
    peak_arg *a = v;
    double c0 = peak_thread_cpu();
#if defined(__x86_64__)
    a->out = a->width == 16 ? peak_fma_loop_avx512(a->iters, 1.0f) : peak_fma_loop_avx2(a->iters, 1.0f);
#endif
    a->cpu = peak_thread_cpu() - c0;
    return NULL;
}

static inline int peak_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* PEAK_RUNS runs of the loop on `threads` threads with `width`-float FMAs (8: AVX2, 16:
 * AVX-512). Returns the median wall-clock GFLOP/s of all threads; *per_core (if set): the
 * median rate per second of CPU time a thread actually got (insensitive to other processes
 * taking the cores); *best (if set): the fastest run. 0 where the loop cannot run. */
static inline double peak_measure(int threads, int width, double *per_core, double *best) {
    double wall[PEAK_RUNS], core[PEAK_RUNS];
    if (threads < 1) threads = 1;
    if (threads > 256) threads = 256;
    for (int r = 0; r < PEAK_RUNS; r++) {
        pthread_t th[256];
        peak_arg args[256];
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < threads; i++) {
            args[i].iters = PEAK_ITERS;
            args[i].width = width;
            pthread_create(&th[i], NULL, peak_thread, &args[i]);
        }
        for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double t = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec), cs = 0;
        for (int i = 0; i < threads; i++) cs += args[i].cpu;
        const double flop = (double)threads * PEAK_ITERS * 12 * width * 2;
        wall[r] = flop / t / 1e9;
        core[r] = cs > 0 ? flop / cs / 1e9 : 0;
    }
    qsort(wall, PEAK_RUNS, sizeof *wall, peak_cmp);
    qsort(core, PEAK_RUNS, sizeof *core, peak_cmp);
    if (per_core) *per_core = core[PEAK_RUNS / 2];
    if (best) *best = wall[PEAK_RUNS - 1];
#if !defined(__x86_64__)
    if (per_core) *per_core = 0;
    if (best) *best = 0;
    return 0;
#endif
    return wall[PEAK_RUNS / 2];
}

#endif
