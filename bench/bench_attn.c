/* bench_attn.c - median time and GFLOP/s of the CPU attention, group norm and GEGLU kernels
 * at SD 1.5 shapes, next to the machine's measured fp32 FMA peak.
 *
 *   bench_attn [-t threads] [-r repeats] [-s scalar]
 *
 * FLOPs counted: attention 4*B*H*Nq*Nk*d (QK^T and PV; the softmax is not counted, so
 * "% of peak" is a lower bound on how busy the FMA units are); group norm and GEGLU are
 * memory/transcendental bound and are reported as time and GB/s of their input+output. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu/attention.h"
#include "cpu/cpu.h"
#include "cpu/elementwise.h"
#include "cpu/gemm.h"
#include "cpu/norm.h"
#include "cpu/vmath.h"
#include "bench_util.h"

/* CPU seconds used by the whole process (all pool threads). The cores are shared with other
 * jobs here, so besides wall time we report throughput per busy CPU second x threads: what
 * the kernel achieves while it actually runs (pool workers sleep, never spin, when idle). */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

typedef struct timing { double wall, cpu; } timing; /* medians over repeats, seconds */
typedef void (*bench_fn)(sdc_cpu *cpu, void *arg);

static timing time_it(sdc_cpu *cpu, bench_fn fn, void *arg, int reps) {
    double w[64], c[64];
    if (reps > 64) reps = 64;
    fn(cpu, arg); /* warm-up: scratch, caches, page faults */
    for (int r = 0; r < reps; r++) {
        double w0 = now(), c0 = cpu_now();
        fn(cpu, arg);
        c[r] = cpu_now() - c0;
        w[r] = now() - w0;
    }
    timing t = {median(w, reps), median(c, reps)};
    return t;
}

static float *alloc_rand(int64_t n, uint64_t seed) {
    float *p = aligned_alloc(64, ((size_t)n * sizeof(float) + 63) & ~(size_t)63);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(1); }
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        p[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    return p;
}

/* ------------------------------------------------------------------ FMA peak */
#if SDC_HAVE_X86
typedef struct { int64_t iters; float sink[SDC_CPU_MAX_THREADS]; } peak_ctx;

SDC_AVX2 static void peak_task(void *vctx, int64_t task, int thread) {
    peak_ctx *c = vctx;
    __m256 a0 = _mm256_set1_ps(0.1f), a1 = _mm256_set1_ps(0.2f), a2 = _mm256_set1_ps(0.3f), a3 = _mm256_set1_ps(0.4f);
    __m256 a4 = _mm256_set1_ps(0.5f), a5 = _mm256_set1_ps(0.6f), a6 = _mm256_set1_ps(0.7f), a7 = _mm256_set1_ps(0.8f);
    __m256 a8 = _mm256_set1_ps(0.9f), a9 = _mm256_set1_ps(1.0f);
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int64_t it = 0; it < c->iters; it++) {
        a0 = _mm256_fmadd_ps(a0, x, y); a1 = _mm256_fmadd_ps(a1, x, y);
        a2 = _mm256_fmadd_ps(a2, x, y); a3 = _mm256_fmadd_ps(a3, x, y);
        a4 = _mm256_fmadd_ps(a4, x, y); a5 = _mm256_fmadd_ps(a5, x, y);
        a6 = _mm256_fmadd_ps(a6, x, y); a7 = _mm256_fmadd_ps(a7, x, y);
        a8 = _mm256_fmadd_ps(a8, x, y); a9 = _mm256_fmadd_ps(a9, x, y);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    c->sink[task % SDC_CPU_MAX_THREADS] = sdc_v_hsum(_mm256_add_ps(s, _mm256_add_ps(a8, a9)));
}

static void peak_run(sdc_cpu *cpu, void *arg) { sdc_pool_for(cpu->pool, cpu->n_threads, peak_task, arg); }
#endif

typedef struct attn_case {
    int64_t B, H, Nq, Nk, d;
    float *q, *k, *v, *out;
    int64_t ldq, ldk;
} attn_case;

static void attn_run(sdc_cpu *cpu, void *arg) {
    attn_case *a = arg;
    sdc_cpu_attention(cpu, a->B, a->H, a->Nq, a->Nk, a->d, a->q, a->ldq, a->k, a->ldk, a->v, a->ldk, a->out,
                      a->H * a->d, (float)(1.0 / sqrt((double)a->d)), false);
}

static void row(const char *op, const char *shape, timing t, double flops, double bytes, double peak, int threads) {
    double wall_rate = flops / t.wall * 1e-9, busy_rate = flops / t.cpu * threads * 1e-9;
    if (flops > 0)
        printf("| %-30s | %-26s | %9.2f | %7.1f | %7.1f | %5.1f%% |\n", op, shape, t.wall * 1e3, wall_rate, busy_rate,
               peak > 0 ? 100.0 * busy_rate / peak : 0.0);
    else
        printf("| %-30s | %-26s | %9.2f | %5.1f GB/s | %5.1f GB/s | |\n", op, shape, t.wall * 1e3, bytes / t.wall * 1e-9,
               bytes / t.cpu * threads * 1e-9);
}

static void bench_attention(sdc_cpu *cpu, int reps, double peak, int64_t B, int64_t H, int64_t Nq, int64_t Nk,
                            int64_t d, int fused, const char *what) {
    int64_t hd = H * d;
    attn_case a = {B, H, Nq, Nk, d, NULL, NULL, NULL, NULL, 0, 0};
    float *buf, *kv = NULL;
    if (fused) {
        buf = alloc_rand(B * Nq * 3 * hd, 1);
        a.q = buf; a.k = buf + hd; a.v = buf + 2 * hd;
        a.ldq = a.ldk = 3 * hd;
    } else {
        buf = alloc_rand(B * Nq * hd, 1);
        kv = alloc_rand(B * Nk * 2 * hd, 2);
        a.q = buf; a.k = kv; a.v = kv + hd;
        a.ldq = hd; a.ldk = 2 * hd;
    }
    a.out = alloc_rand(B * Nq * hd, 3);
    timing t = time_it(cpu, attn_run, &a, reps);
    char shape[96];
    snprintf(shape, sizeof shape, "B=%lld H=%lld %lldx%lld d=%lld", (long long)B, (long long)H, (long long)Nq,
             (long long)Nk, (long long)d);
    char op[64];
    snprintf(op, sizeof op, "attention %s", what);
    row(op, shape, t, 4.0 * B * H * Nq * Nk * d, 0, peak, cpu->n_threads);
    free(buf); free(kv); free(a.out);
}

typedef struct gn_case { int64_t B, C, HW; float *x, *y, *g, *b; int silu; } gn_case;

static void gn_run(sdc_cpu *cpu, void *arg) {
    gn_case *g = arg;
    sdc_cpu_group_norm(cpu, g->B, g->C, g->HW, 32, 1e-5f, g->x, g->g, g->b, g->silu, g->y);
}

static void bench_group_norm(sdc_cpu *cpu, int reps, int64_t B, int64_t C, int64_t HW, int silu) {
    gn_case g = {B, C, HW, alloc_rand(B * C * HW, 4), alloc_rand(B * C * HW, 5), alloc_rand(C, 6), alloc_rand(C, 7), silu};
    timing t = time_it(cpu, gn_run, &g, reps);
    char shape[96];
    snprintf(shape, sizeof shape, "B=%lld C=%lld HW=%lld G=32", (long long)B, (long long)C, (long long)HW);
    row(silu ? "group_norm + SiLU" : "group_norm", shape, t, 0, 2.0 * B * C * HW * sizeof(float), 0, cpu->n_threads);
    free(g.x); free(g.y); free(g.g); free(g.b);
}

typedef struct geglu_case { int64_t M, F; float *x, *y; } geglu_case;

static void geglu_run(sdc_cpu *cpu, void *arg) {
    geglu_case *g = arg;
    sdc_cpu_geglu(cpu, g->M, g->F, g->x, g->y);
}

static void bench_geglu(sdc_cpu *cpu, int reps, int64_t M, int64_t F) {
    geglu_case g = {M, F, alloc_rand(M * 2 * F, 8), alloc_rand(M * F, 9)};
    timing t = time_it(cpu, geglu_run, &g, reps);
    char shape[96];
    snprintf(shape, sizeof shape, "x [%lld, %lld] -> [%lld, %lld]", (long long)M, (long long)(2 * F), (long long)M,
             (long long)F);
    row("geglu", shape, t, 0, 3.0 * M * F * sizeof(float), 0, cpu->n_threads);
    free(g.x); free(g.y);
}

int main(int argc, char **argv) {
    int threads = 0, reps = 7, bf16 = 0;
    sdc_isa isa = SDC_ISA_AVX512;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-s")) isa = SDC_ISA_SCALAR;
        else if (!strcmp(argv[i], "--bf16")) bf16 = 1;
        else {
            fprintf(stderr, "usage: %s [-t threads] [-r repeats] [-s] [--bf16]\n"
                            "  --bf16: attention on the bf16 AMX path (causal and the other ops stay fp32)\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    sdc_cpu *cpu = sdc_cpu_new(threads, isa);
    if (!cpu) { fprintf(stderr, "sdc_cpu_new failed\n"); return 1; }
    cpu->bf16 = bf16;
    if (bf16 && !sdc_cpu_bf16_active(cpu)) {
        fprintf(stderr, "%s: --bf16 needs AMX-BF16, which this CPU (or the OS, or -s) does not offer\n", argv[0]);
        return 2;
    }
    double peak = 0, peak_wall = 0;
#if SDC_HAVE_X86
    if (cpu->isa >= SDC_ISA_AVX2) {
        /* best of 9 (least disturbed) rather than the median: the peak is what the cores
         * can do, so "% of peak" below is a conservative figure. */
        peak_ctx pc = {.iters = 5000000};
        double flops = (double)cpu->n_threads * pc.iters * 10 * 16;
        peak_run(cpu, &pc);
        for (int r = 0; r < 9; r++) {
            double w0 = now(), c0 = cpu_now();
            peak_run(cpu, &pc);
            double pc_cpu = cpu_now() - c0, pc_wall = now() - w0;
            if (flops / pc_cpu * cpu->n_threads * 1e-9 > peak) peak = flops / pc_cpu * cpu->n_threads * 1e-9;
            if (flops / pc_wall * 1e-9 > peak_wall) peak_wall = flops / pc_wall * 1e-9;
        }
    }
#endif
    printf("threads %d, isa %s%s, repeats %d (medians)\n", cpu->n_threads, sdc_isa_name(cpu->isa),
           bf16 ? ", attention bf16 on AMX" : "", reps);
    printf("fp32 FMA peak (AVX2 FMA loop on all threads, best of 9): %.1f GFLOP/s per busy CPU time, %.1f GFLOP/s wall\n\n",
           peak, peak_wall);
    printf("| op | shape | ms (wall) | GFLOP/s (wall) | GFLOP/s (busy) | %% of peak (busy) |\n");
    printf("|---|---|---:|---:|---:|---:|\n");
    bench_attention(cpu, reps, peak, 1, 8, 4096, 4096, 40, 1, "self 64x64 (fused qkv)");
    bench_attention(cpu, reps, peak, 2, 8, 4096, 4096, 40, 1, "self 64x64 (fused, CFG)");
    bench_attention(cpu, reps, peak, 2, 8, 4096, 77, 40, 0, "cross 64x64");
    bench_attention(cpu, reps, peak, 2, 8, 1024, 1024, 80, 1, "self 32x32");
    bench_attention(cpu, reps, peak, 2, 8, 256, 256, 160, 1, "self 16x16");
    bench_attention(cpu, reps, peak, 1, 1, 4096, 4096, 512, 1, "VAE mid 64x64");
    bench_group_norm(cpu, reps, 1, 320, 64 * 64, 0);
    bench_group_norm(cpu, reps, 1, 320, 64 * 64, 1);
    bench_geglu(cpu, reps, 4096, 1280);
    sdc_cpu_free(cpu);
    return 0;
}
