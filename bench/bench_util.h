/* bench_util.h - the small helpers every benchmark program shares: clocks, thread count,
 * reproducible N(0,1) inputs (timing does not depend on values). Header-only (static inline),
 * since each bench/bench_*.c is its own executable. */
#ifndef SDC_BENCH_UTIL_H
#define SDC_BENCH_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* monotonic wall clock, seconds */
static inline double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* user + system CPU seconds of this process, all threads: on shared cores, CPU time / threads
 * is what the run would take on idle cores */
static inline double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

/* t > 0: t; else every online core */
static inline int n_threads(int t) { return t > 0 ? t : (int)sysconf(_SC_NPROCESSORS_ONLN); }

/* n values ~ N(0, 1): Box-Muller over a xorshift64 stream; NULL when out of memory */
static inline float *randn(int64_t n, uint64_t seed) {
    float *x = malloc((size_t)n * sizeof *x);
    if (!x) return NULL;
    for (int64_t i = 0; i < n; i += 2) {
        double u[2];
        for (int k = 0; k < 2; k++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            u[k] = ((double)(seed >> 11) + 0.5) / 9007199254740992.0;
        }
        double r = sqrt(-2 * log(u[0]));
        x[i] = (float)(r * cos(6.283185307179586 * u[1]));
        if (i + 1 < n) x[i + 1] = (float)(r * sin(6.283185307179586 * u[1]));
    }
    return x;
}

#endif
