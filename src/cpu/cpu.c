/* cpu.c - CPU context: ISA detection, thread pool, per-thread scratch. */
#include "cpu.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

sdc_isa sdc_cpu_detect_isa(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return SDC_ISA_SCALAR;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return SDC_ISA_SCALAR;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 6) != 6) return SDC_ISA_SCALAR; /* OS saves XMM+YMM */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return SDC_ISA_SCALAR;
    int avx2 = (b >> 5) & 1;
    if (!(avx2 && fma && f16c)) return SDC_ISA_SCALAR;
    int avx512f = (b >> 16) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    if (avx512f && avx512bw && avx512vl && (xcr0 & 0xe6) == 0xe6) return SDC_ISA_AVX512;
    return SDC_ISA_AVX2;
#else
    return SDC_ISA_SCALAR;
#endif
}

int sdc_cpu_detect_vnni(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (sdc_cpu_detect_isa() != SDC_ISA_AVX512 || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (c >> 11) & 1;
#else
    return 0;
#endif
}

const char *sdc_isa_name(sdc_isa isa) {
    switch (isa) {
    case SDC_ISA_SCALAR: return "scalar";
    case SDC_ISA_AVX2: return "avx2";
    case SDC_ISA_AVX512: return "avx512";
    }
    return "?";
}

sdc_cpu *sdc_cpu_new(int n_threads, sdc_isa max_isa) {
    sdc_cpu *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->pool = sdc_pool_new(n_threads); /* at most SDC_CPU_MAX_THREADS workers */
    if (!c->pool) { free(c); return NULL; }
    c->n_threads = sdc_pool_size(c->pool);
    if (c->n_threads > SDC_CPU_MAX_THREADS) c->n_threads = SDC_CPU_MAX_THREADS;
    sdc_isa isa = sdc_cpu_detect_isa();
    if (isa > max_isa) isa = max_isa;
    const char *e = getenv("SDC_ISA");
    if (e) {
        sdc_isa want = isa;
        if (!strcasecmp(e, "scalar")) want = SDC_ISA_SCALAR;
        else if (!strcasecmp(e, "avx2")) want = SDC_ISA_AVX2;
        else if (!strcasecmp(e, "avx512")) want = SDC_ISA_AVX512;
        if (want < isa) isa = want;
    }
    c->isa = isa;
    c->vnni = isa == SDC_ISA_AVX512 && sdc_cpu_detect_vnni();
    const char *wg = getenv("SDC_WINOGRAD");
    c->winograd = !wg || !*wg ? 1 : !strcmp(wg, "0") ? 0 : !strcmp(wg, "2") ? 2 : !strcmp(wg, "4") ? 4 : 1;
    return c;
}

void sdc_cpu_free(sdc_cpu *c) {
    if (!c) return;
    sdc_pool_free(c->pool);
    for (int i = 0; i < SDC_CPU_MAX_THREADS; i++) free(c->scratch[i].ptr);
    free(c->work.ptr);
    free(c);
}

/* b holding at least `bytes` (64-byte aligned; contents not kept when it grows). */
static void *buf_reserve(sdc_cpu_buf *b, size_t bytes) {
    if (b->size >= bytes && b->ptr) return b->ptr;
    free(b->ptr);
    const size_t sz = (bytes + 63) & ~(size_t)63;
    b->ptr = aligned_alloc(64, sz ? sz : 64);
    b->size = b->ptr ? sz : 0;
    return b->ptr;
}

void *sdc_cpu_scratch(sdc_cpu *c, int thread, size_t bytes) {
    if (thread < 0 || thread >= SDC_CPU_MAX_THREADS) return NULL;
    return buf_reserve(&c->scratch[thread], bytes);
}

void *sdc_cpu_workspace(sdc_cpu *c, size_t bytes) { return buf_reserve(&c->work, bytes); }
