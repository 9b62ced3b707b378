/* bench_ops.c - linear and conv2d at the real SD 1.5 shapes: median time over repeated runs,
 * GFLOP/s, and the fraction of this machine's fp32 FMA peak, measured here with an
 * FMA-throughput loop on all threads.
 *
 *   bench_ops [-t threads] [--reps N] [--filter substring] [--isa scalar|avx2|avx512]
 *
 * Weights are random, stored as F16, Q8_0 or Q4_0 (conv: F16 and Q8_0). FLOPs count
 * 2*M*N*K (multiply and add), padding taps of a conv included; for a 3x3 conv that runs as
 * Winograd (SDC_WINOGRAD=0|2|4 to choose) that is the direct conv's count, and the last
 * column says which algorithm ran. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu/cpu.h"
#include "cpu/gemm.h"
#include "half.h"
#include "quant.h"
#include "bench_peak.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- fp32 FMA peak (bench_peak.h) */
static int g_peak_width = 8; /* floats per FMA in the peak loop: 16 when the GEMM runs AVX-512 */
static double g_peak_best = 0; /* the fastest of the peak runs */

/* Returns the wall-clock peak of all threads; *per_core: the rate per second of CPU time
 * one thread actually got (insensitive to other processes taking the cores away). */
static double measure_peak(int threads, double *per_core) {
    double best = 0, wall = peak_measure(threads, g_peak_width, per_core, &best);
    if (best > g_peak_best) g_peak_best = best;
    return wall;
}

/* ---- ops */

static void *make_weights(sdc_type t, int64_t rows, int64_t K, unsigned *seed) {
    uint64_t rb;
    if (!sdc_type_bytes(t, (uint64_t)K, &rb)) return NULL;
    uint8_t *w = malloc((size_t)(rb * (uint64_t)rows));
    float *tmp = malloc((size_t)K * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t k = 0; k < K; k++) tmp[k] = ((float)((double)rand_r(seed) / RAND_MAX) - 0.5f) * 0.1f;
        sdc_quantize_row(t, tmp, w + (size_t)r * rb, K);
    }
    free(tmp);
    return w;
}

static void fill(float *v, int64_t n, unsigned *seed) {
    for (int64_t i = 0; i < n; i++) v[i] = (float)((double)rand_r(seed) / RAND_MAX) - 0.5f;
}

typedef struct {
    const char *name;
    int conv;
    int64_t a, b, c, d; /* linear: M, K, N; conv: C(=O), H, W, batch (0: 1) */
    int reps_div;       /* fewer reps for the big ones */
} op_case;

int main(int argc, char **argv) {
    int threads = 2, reps = 7;
    const char *filter = NULL;
    sdc_isa max_isa = SDC_ISA_AVX512;
    int int8 = 0, bf16 = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
        else if (!strcmp(argv[i], "--int8")) int8 = 1;
        else if (!strcmp(argv[i], "--bf16")) bf16 = 1;
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
            ++i;
            if (!strcmp(argv[i], "scalar")) max_isa = SDC_ISA_SCALAR;
            else if (!strcmp(argv[i], "avx2")) max_isa = SDC_ISA_AVX2;
            else if (!strcmp(argv[i], "avx512")) max_isa = SDC_ISA_AVX512;
            else { fprintf(stderr, "%s: --isa takes scalar, avx2 or avx512\n", argv[0]); return 2; }
        } else {
            fprintf(stderr, "usage: %s [-t threads] [--reps N] [--filter substring] [--isa scalar|avx2|avx512] [--int8] [--bf16]\n"
                    "  --int8: linears on Q8_0/Q4_0 weights also run the int8 VNNI path, alternating with fp32\n"
                    "  --bf16: every op also runs the bf16 AMX path, alternating with fp32\n",
                    argv[0]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    sdc_cpu *cpu = sdc_cpu_new(threads, max_isa);
    if (!cpu) return 1;
    threads = cpu->n_threads;
    if (int8 && !cpu->vnni) {
        fprintf(stderr, "%s: --int8 needs AVX-512 VNNI, which this CPU (or --isa) lacks\n", argv[0]);
        return 2;
    }
    if (bf16 && !sdc_cpu_detect_amx()) {
        fprintf(stderr, "%s: --bf16 needs AMX-BF16, which this CPU (or the OS) does not offer\n", argv[0]);
        return 2;
    }
    if (cpu->isa >= SDC_ISA_AVX512) g_peak_width = 16;
    double peak_core;
    const double peak = measure_peak(threads, &peak_core);
    printf("threads %d, isa %s: measured fp32 FMA peak %.1f GFLOP/s wall (all threads), %.1f GFLOP/s per CPU-second\n"
           "(the cores are shared: 'cpu' columns divide by the CPU time the process got, so they show the\n"
           " kernel's efficiency when other processes take cores away; 'wall' is elapsed time)\n",
           threads, sdc_isa_name(cpu->isa), peak, peak_core);
    printf("best-of peak %.1f GFLOP/s ('best' columns: the fastest run against it)\n", g_peak_best);
    printf("%-30s %-5s %9s %8s %7s %8s %7s %8s %7s  %s\n", "op", "type", "wall ms", "GFLOP/s", "%peak", "cpu GF/s",
           "%core", "best GF", "%best", "algo");

    const op_case cases[] = {
        {"conv3x3 320->320 64x64", 1, 320, 64, 64, 0, 1},
        {"conv3x3 640->640 32x32", 1, 640, 32, 32, 0, 1},
        {"conv3x3 1280->1280 16x16", 1, 1280, 16, 16, 0, 1},
        {"conv3x3 1280->1280 8x8", 1, 1280, 8, 8, 0, 1},
        {"conv3x3 320->320 64x64 b2", 1, 320, 64, 64, 2, 1}, /* batch 2: a CFG step's layers */
        {"conv3x3 640->640 32x32 b2", 1, 640, 32, 32, 2, 1},
        {"conv3x3 1280->1280 16x16 b2", 1, 1280, 16, 16, 2, 1},
        {"conv3x3 1280->1280 8x8 b2", 1, 1280, 8, 8, 2, 1},
        {"vae conv 512->512 128x128", 1, 512, 128, 128, 0, 3},
        {"vae conv 256->256 256x256", 1, 256, 256, 256, 0, 3},
        {"vae conv 128->128 512x512", 1, 128, 512, 512, 0, 3},
        {"linear 4096x320->320", 0, 4096, 320, 320, 0, 1},
        {"linear 4096x320->2560", 0, 4096, 320, 2560, 0, 1},
        {"linear 1024x640->5120", 0, 1024, 640, 5120, 0, 1},
        {"linear 256x1280->10240", 0, 256, 1280, 10240, 0, 1},
        {"linear 77x768->320", 0, 77, 768, 320, 0, 1},
    };
    const sdc_type lin_types[] = {SDC_TYPE_F16, SDC_TYPE_Q8_0, SDC_TYPE_Q4_0};
    unsigned seed = 1234;
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const op_case *oc = &cases[ci];
        const int vae = strncmp(oc->name, "vae", 3) == 0;
        const int ntypes = oc->conv && vae ? 1 : oc->conv ? 2 : 3;
        for (int ti = 0; ti < ntypes; ti++) {
            const sdc_type t = lin_types[ti];
            char label[96];
            snprintf(label, sizeof label, "%s %s", oc->name, sdc_type_name(t));
            if (filter && !strstr(label, filter)) continue;
            double flops;
            float *x, *y, *bias;
            void *w;
            int64_t C = 0, H = 0, W = 0, M = 0, K = 0, N = 0, Bn = 1;
            if (oc->conv) {
                C = oc->a; H = oc->b; W = oc->c; Bn = oc->d ? oc->d : 1;
                flops = 2.0 * Bn * C * C * 9 * H * W;
                x = malloc((size_t)(Bn * C * H * W) * 4);
                y = malloc((size_t)(Bn * C * H * W) * 4);
                bias = malloc((size_t)C * 4);
                fill(x, Bn * C * H * W, &seed);
                fill(bias, C, &seed);
                w = make_weights(t, C, C * 9, &seed);
            } else {
                M = oc->a; K = oc->b; N = oc->c;
                flops = 2.0 * M * N * K;
                x = malloc((size_t)(M * K) * 4);
                y = malloc((size_t)(M * N) * 4);
                bias = malloc((size_t)N * 4);
                fill(x, M * K, &seed);
                fill(bias, N, &seed);
                w = make_weights(t, N, K, &seed);
            }
            const int nrep = reps / oc->reps_div > 0 ? reps / oc->reps_div : 1;
            /* fp32, then with --int8 (eligible linears) and --bf16 the other paths, alternating */
            enum { M_FP32, M_INT8, M_BF16 };
            int modes[3], nmodes = 0;
            modes[nmodes++] = M_FP32;
            if (int8 && !oc->conv && t != SDC_TYPE_F16) modes[nmodes++] = M_INT8;
            if (bf16) modes[nmodes++] = M_BF16;
            double times[3][64], ctimes[3][64];
            int n = 0;
            for (int r = -1; r < nrep && n < 64; r++) {
                for (int mode = 0; mode < nmodes; mode++) {
                    cpu->int8 = modes[mode] == M_INT8;
                    cpu->bf16 = modes[mode] == M_BF16;
                    double c0 = cpu_s(CLOCK_PROCESS_CPUTIME_ID);
                    double t0 = now_s();
                    sdc_status st = oc->conv ? sdc_cpu_conv2d(cpu, Bn, C, H, W, x, C, 3, 3, 1, 1, t, w, bias, y)
                                             : sdc_cpu_linear(cpu, M, N, K, x, K, t, w, bias, y, N);
                    double dt = now_s() - t0, dc = cpu_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
                    if (st != SDC_OK) {
                        fprintf(stderr, "%s: %s\n", label, sdc_status_name(st));
                        return 1;
                    }
                    if (r >= 0) { times[mode][n] = dt; ctimes[mode][n] = dc; } /* run -1 warms scratch and caches */
                }
                if (r >= 0) n++;
            }
            cpu->int8 = cpu->bf16 = 0;
            double ratio[3][64]; /* per pair, before median() sorts the times */
            for (int mode = 1; mode < nmodes; mode++)
                for (int i = 0; i < n; i++) ratio[mode][i] = times[0][i] / times[mode][i];
            for (int mode = 0; mode < nmodes; mode++) {
                double tmin = times[mode][0];
                for (int i = 1; i < n; i++) if (times[mode][i] < tmin) tmin = times[mode][i];
                const double med = median(times[mode], n), cmed = median(ctimes[mode], n);
                const double gf = flops / med / 1e9, cgf = flops / cmed / 1e9;
                const int wg = oc->conv ? sdc_winograd_choose(cpu->winograd, Bn, C, H, W, C, 3, 3, 1, 1) : 0;
                printf("%-30s %-5s %9.2f %8.1f %6.1f%% %8.1f %6.1f%% %8.1f %6.1f%%  %s\n", oc->name, sdc_type_name(t),
                       med * 1e3, gf, 100.0 * gf / peak, cgf, 100.0 * cgf / peak_core, flops / tmin / 1e9,
                       100.0 * flops / tmin / 1e9 / g_peak_best,
                       modes[mode] == M_INT8 ? "int8 vnni" : modes[mode] == M_BF16 ? "bf16 amx" : !oc->conv ? "gemm"
                       : wg == 4 ? "winograd 4x4" : wg == 2 ? "winograd 2x2" : "direct");
                if (mode)
                    printf("%-30s %-5s   %s speed-up over fp32, median of %d pairs: %.2fx\n", oc->name,
                           sdc_type_name(t), modes[mode] == M_INT8 ? "int8" : "bf16", n, median(ratio[mode], n));
            }
            fflush(stdout);
            free(x); free(y); free(bias); free(w);
        }
    }
    sdc_cpu_free(cpu);
    return 0;
}
