/* bench_vae.c - VAE decode (and CLIP encode) per model file.
 *
 *   bench_vae [-s LATENT] [-t THREADS] [-n RUNS] [-T TILE] MODEL...
 *       default: 64x64 latent (512x512 image), all cores, 1 run, untiled (-T 32: tiled
 *       decoding with tile 32, overlap 16)
 *
 * Per file, in its own child process (so the peak RSS printed - getrusage ru_maxrss: mapped
 * weights touched + activations + scratch - is that file's alone):
 *   - CLIP: one row of 77 tokens (clip skip 1), best of 3 after a warm-up;
 *   - VAE decode of an N(0,1) latent of LATENT x LATENT, after an 8x8 warm-up decode that
 *     faults the weights in and grows the kernels' scratch. Timing does not depend on values.
 * The arena peak is the activation high-water mark (the decoder's, since it runs last and is
 * by far the largest). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clip.h"
#include "model.h"
#include "ops.h"
#include "vae.h"
#include "bench_util.h"

/* one CLIP encode of 1 x 77 tokens; seconds or -1 */
static double clip_once(sdc_backend *be, const sdc_clip *w) {
    int32_t ids[77];
    ids[0] = 49406;
    for (int i = 1; i < 77; i++) ids[i] = i < 12 ? 320 + 37 * i : 49407;   /* a short prompt, EOS padding */
    sdc_ctx c;
    sdc_ctx_init(&c, be);
    size_t m = sdc_mark(&c);
    double t0 = now();
    sdc_clip_forward(&c, w, ids, 1, 1);
    be->ops->sync(be);
    double dt = now() - t0;
    sdc_release(&c, m);
    if (sdc_ctx_status(&c) != SDC_OK) {
        fprintf(stderr, "clip failed: %s\n", c.err);
        return -1;
    }
    return dt;
}

/* one decode of an h x w latent (tile 0: untiled); seconds or -1 */
static double decode_once(sdc_backend *be, const sdc_vae *w, int64_t h, int64_t wd, int tile, double *cpu) {
    sdc_ctx c;
    sdc_ctx_init(&c, be);
    int64_t zs[4] = {1, 4, h, wd};
    float *z = randn(4 * h * wd, 3), *img = tile ? malloc((size_t)(3 * 64 * h * wd) * sizeof *img) : NULL;
    size_t m = sdc_mark(&c);
    sdc_act Z = sdc_from_host(&c, z, 4, zs);
    double t0 = now(), c0 = cpu_seconds();
    if (tile)
        sdc_vae_decode_tiled(&c, w, Z, tile, tile / 2, img);
    else
        sdc_vae_decode(&c, w, Z);
    be->ops->sync(be);
    double dt = now() - t0;
    if (cpu) *cpu = cpu_seconds() - c0;
    sdc_release(&c, m);
    free(z), free(img);
    if (sdc_ctx_status(&c) != SDC_OK) {
        fprintf(stderr, "decode failed: %s\n", c.err);
        return -1;
    }
    return dt;
}

static int bench_file(const char *path, int64_t size, int threads, int runs, int tile) {
    char err[1024] = "";
    sdc_model *m = NULL;
    sdc_clip *cl = NULL;
    sdc_vae *v = NULL;
    if (sdc_model_open(path, &m, err, sizeof err) != SDC_OK || sdc_clip_load(m, &cl, err, sizeof err) != SDC_OK ||
        sdc_vae_load(m, &v, err, sizeof err) != SDC_OK) {
        fprintf(stderr, "%s: %s\n", path, err);
        sdc_clip_free(cl);
        sdc_model_free(m);
        return 1;
    }
    sdc_backend *be = sdc_backend_cpu_new(threads, (size_t)32 << 30, err, sizeof err);
    if (!be) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const sdc_tensor *qc = sdc_model_get(m, SDC_PREFIX_CLIP "encoder.layers.0.mlp.fc1.weight");
    /* CLIP: warm-up, then best of 3 */
    double clip_best = 1e30;
    for (int i = 0; i < 4; i++) {
        double s = clip_once(be, cl);
        if (s < 0) return 1;
        if (i && s < clip_best) clip_best = s;
    }
    sdc_clip_free(cl);
    sdc_model_release(m, SDC_COMPONENT_CLIP);

    double warm = decode_once(be, v, 8, 8, 0, NULL), best = 1e30, sum = 0, cpu_best = 1e30;
    if (warm < 0) return 1;
    for (int i = 0; i < runs; i++) {
        double cpu_s, s = decode_once(be, v, size, size, tile, &cpu_s);
        if (s < 0) return 1;
        sum += s;
        if (s < best) best = s;
        if (cpu_s < cpu_best) cpu_best = cpu_s;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    /* decoder ~1.26 TMAC at 64x64 (DESIGN.md) = 2.5 TFLOP, scaled by area */
    double tflop = 2.52 * (double)(size * size) / 4096.0;
    printf("%-48s clip %-5s 1x77 tokens: %.3f s\n", path, qc ? sdc_type_name(qc->type) : "?", clip_best);
    printf("%-48s vae decode latent %lldx%lld (%lldx%lld image)%s: best %.2f s, mean %.2f s over %d, ~%.0f GFLOP/s; "
           "CPU %.2f s (%d threads); arena peak %.0f MiB, peak RSS %.0f MiB\n",
           path, (long long)size, (long long)size, (long long)(8 * size), (long long)(8 * size),
           tile ? " tiled" : "", best, sum / runs, runs, tflop * 1e3 / best, cpu_best, n_threads(threads),
           (double)be->ops->peak(be) / 1048576.0, (double)ru.ru_maxrss / 1024.0);
    be->ops->free(be);
    sdc_vae_free(v);
    sdc_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    int64_t size = 64;
    int threads = 0, runs = 1, tile = 0, opt;
    while ((opt = getopt(argc, argv, "s:t:n:T:")) != -1) {
        if (opt == 's') size = atoll(optarg);
        else if (opt == 't') threads = atoi(optarg);
        else if (opt == 'n') runs = atoi(optarg);
        else if (opt == 'T') tile = atoi(optarg);
        else break;
    }
    if (optind >= argc || size < 1 || runs < 1 || (tile && tile < 8)) {
        fprintf(stderr, "usage: %s [-s LATENT] [-t THREADS] [-n RUNS] [-T TILE] MODEL...\n", argv[0]);
        return 2;
    }
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            int r = bench_file(argv[i], size, threads, runs, tile);
            fflush(stdout);
            exit(r); /* not _exit: SDC_PROFILE reports from an atexit handler */
        }
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) rc = 1;
    }
    return rc;
}
