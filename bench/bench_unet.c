/* bench_unet.c - one CFG step of the SD 1.x UNet (batch 2: uncond + cond) per model file.
 *
 *   bench_unet [-s LATENT] [-t THREADS] [-n RUNS] MODEL...      (default 64x64 = 512x512, all cores, 1 run)
 *
 * Each model file runs in its own child process, so the peak RSS printed (getrusage
 * ru_maxrss: mapped weights touched + activations + scratch) is that file's alone. A small
 * 8x8 warm-up forward first faults the weights in from the page cache and grows the kernels'
 * scratch; the timed runs then allocate nothing. Inputs are N(0,1) noise and a random context:
 * timing does not depend on values. The context's cross-attention K/V (sdc_unet_kv_new) are
 * made before the clock starts: the pipeline makes them once per image, not per step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model.h"
#include "ops.h"
#include "unet.h"
#include "bench_util.h"
#include "bench_peak.h"
#include "cpu/cpu.h"

static int stream_opt;            /* -S: release each weight's pages after its layer */
static const sdc_model *g_stream; /* ... of this model */

/* one forward; returns seconds, or -1 on failure */
static double step(sdc_backend *be, const sdc_unet *u, int64_t h, int64_t w, double *cpu) {
    sdc_ctx c;
    sdc_ctx_init(&c, be);
    if (g_stream) c.weight_done = sdc_model_weight_done, c.weight_done_user = (void *)g_stream;
    int64_t xs[4] = {2, sdc_unet_in_channels(u), h, w}, cs[3] = {2, 77, 768};
    float *x = randn(xs[0] * xs[1] * h * w, 1), *ctx = randn(2 * 77 * 768, 2), t[2] = {500.0f, 500.0f};
    size_t m = sdc_mark(&c);
    sdc_act X = sdc_from_host(&c, x, 4, xs), C = sdc_from_host(&c, ctx, 3, cs);
    sdc_unet_kv *kv = sdc_unet_kv_new(&c, u, C); /* once per context, as the pipeline does */
    be->ops->sync(be);
    double t0 = now(), c0 = cpu_seconds();
    sdc_unet_forward_kv(&c, u, X, t, C, kv);
    be->ops->sync(be);
    double dt = now() - t0;
    if (cpu) *cpu = cpu_seconds() - c0;
    sdc_unet_kv_free(kv);
    sdc_release(&c, m);
    free(x), free(ctx);
    if (sdc_ctx_status(&c) != SDC_OK) {
        fprintf(stderr, "forward failed: %s\n", c.err);
        return -1;
    }
    return dt;
}

static int bench_file(const char *path, int64_t size, int threads, int runs) {
    char err[1024] = "";
    sdc_model *m = NULL;
    sdc_unet *u = NULL;
    if (sdc_model_open(path, &m, err, sizeof err) != SDC_OK || sdc_unet_load(m, &u, err, sizeof err) != SDC_OK) {
        fprintf(stderr, "%s: %s\n", path, err);
        sdc_model_free(m);
        return 1;
    }
    sdc_backend *be = sdc_backend_cpu_new(threads, (size_t)32 << 30, err, sizeof err);
    if (!be) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    g_stream = stream_opt ? m : NULL;
    const sdc_tensor *q = sdc_model_get(m, SDC_PREFIX_UNET "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight");
    double warm = step(be, u, 8, 8, NULL), best = 1e30, sum = 0, cpu_best = 1e30;
    /* the fp32 FMA peak in this process, before and after the timed runs, at the width the
     * kernels use */
    sdc_cpu *probe = sdc_cpu_new(1, SDC_ISA_AVX512);
    const int width = probe && probe->isa >= SDC_ISA_AVX512 ? 16 : 8;
    sdc_cpu_free(probe);
    const double peak0 = peak_measure(n_threads(threads), width, NULL, NULL);
    for (int i = 0; i < runs && warm >= 0; i++) {
        double cpu_s;
        double s = step(be, u, size, size, &cpu_s);
        if (s < 0) return 1;
        if (cpu_s < cpu_best) cpu_best = cpu_s;
        sum += s;
        if (s < best) best = s;
    }
    const double peak1 = peak_measure(n_threads(threads), width, NULL, NULL);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    /* 1.61 TFLOP at 64x64 (DESIGN.md, issue 6), scaled by area for other sizes (attention grows faster) */
    double tflop = 1.61 * (double)(size * size) / 4096.0;
    printf("%-48s %-5s latent %lldx%lld batch 2: best %.2f s, mean %.2f s over %d (warm-up 8x8 %.2f s), "
           "~%.0f GFLOP/s; CPU %.2f s (%d threads%s); arena peak %.0f MiB, peak RSS %.0f MiB\n",
           path, q ? sdc_type_name(q->type) : "?", (long long)size, (long long)size, best, sum / runs, runs, warm,
           tflop * 1e3 / best, cpu_best, n_threads(threads), g_stream ? ", streamed weights" : "", (double)be->ops->peak(be) / 1048576.0, (double)ru.ru_maxrss / 1024.0);
    /* the same-run ratio: mean step over 1.5x the arithmetic floor at the peak measured around
     * the runs (the mean of the two medians) */
    const double peak = 0.5 * (peak0 + peak1), floor_s = peak > 0 ? tflop * 1e3 / peak : 0;
    if (floor_s > 0)
        printf("  fp32 FMA peak %.0f / %.0f GFLOP/s (before / after, %d-wide), floor %.2f s at %.0f: mean step = %.2fx "
               "the floor (%.2f of the 1.5x line)\n",
               peak0, peak1, width, floor_s, peak, sum / runs / floor_s, sum / runs / (1.5 * floor_s));
    be->ops->free(be);
    sdc_unet_free(u);
    sdc_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    int64_t size = 64;
    int threads = 0, runs = 1, opt;
    while ((opt = getopt(argc, argv, "s:t:n:S")) != -1) {
        if (opt == 's') size = atoll(optarg);
        else if (opt == 't') threads = atoi(optarg);
        else if (opt == 'n') runs = atoi(optarg);
        else if (opt == 'S') stream_opt = 1;
        else break;
    }
    if (optind >= argc || size < 1 || runs < 1) {
        fprintf(stderr, "usage: %s [-s LATENT] [-t THREADS] [-n RUNS] [-S (stream weights)] MODEL...\n", argv[0]);
        return 2;
    }
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            int r = bench_file(argv[i], size, threads, runs);
            fflush(stdout);
            exit(r); /* not _exit: SDC_PROFILE reports from an atexit handler */
        }
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) rc = 1;
    }
    return rc;
}
