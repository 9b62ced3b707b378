/* test_conv2d.c - sdc_cpu_conv2d against a naive fp64 NCHW loop (weights dequantized by
 * sdc_dequantize_row): 1x1 and 3x3, stride 1 and 2, padding 0/1, K = 36 (the UNet's first
 * conv), output rows narrower than the 16-wide tile, several K blocks, batch 2, weight
 * types F32/F16/BF16 and block types where C*kh*kw allows; the AVX2 path against its
 * scalar twin and 1 vs 2 vs 3 threads, bit for bit; argument validation. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu/cpu.h"
#include "cpu/gemm.h"
#include "half.h"
#include "quant.h"
#include "testutil.h"

/* Each output is one fp32 fma chain over K = C*kh*kw terms (bias first; padded taps add
 * exact zeros): |err| <= gamma_K * sum|x*w|, gamma_K = K*u/(1-K*u), u = 2^-24. */
#define CHAIN_BOUND_FACTOR 1.01
/* Winograd F(2x2,3x3) sums 16 transformed products per channel instead of 9 plain ones, and
 * its transforms add up to 4 values on each side before and after; F(4x4,3x3) sums 36, with
 * transform entries up to 8 (A) and 5 (B) and a kernel transform scaled by 1/6 and 1/24.
 * Measured err/bound (printed per case): <= 0.02 for F(2x2), <= 0.5 for F(4x4). */
#define WINO_BOUND_FACTOR 1.0

static sdc_cpu *cpu1, *cpu2, *cpu3, *cpus;

static void fill_normal(tu_rng *r, float *v, int64_t n) {
    for (int64_t i = 0; i < n; i++) v[i] = (float)tu_rng_normal(r);
}

typedef struct { int64_t B, C, H, W, O; int k, s, p; } shape;

/* wino: cpu->winograd for the run (0: direct; 2, 4: that Winograd variant, which the shape
 * must be eligible for; 1: automatic choice, expected to be Winograd); Winograd runs are
 * checked against WINO_BOUND_FACTOR times the chain bound. */
static void run_case_algo(tu_rng *r, sdc_type t, shape sh, int with_bias, int wino) {
    const int64_t B = sh.B, C = sh.C, H = sh.H, W = sh.W, O = sh.O;
    const int k = sh.k, s = sh.s, p = sh.p;
    const int64_t Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1, K = C * k * k;
    char label[160];
    snprintf(label, sizeof label, "%s %s B%lld C%lld %lldx%lld O%lld k%d s%d p%d%s",
             wino == 0 ? "conv" : wino == 2 ? "winograd2" : wino == 4 ? "winograd4" : "winograd-auto",
             sdc_type_name(t), (long long)B, (long long)C, (long long)H, (long long)W, (long long)O, k, s, p,
             with_bias ? " +b" : "");
    if (wino) CHECK_MSG(sdc_winograd_choose(wino, B, C, H, W, O, k, k, s, p) != 0, "%s: not eligible", label);
    cpu1->winograd = cpu2->winograd = cpu3->winograd = cpus->winograd = wino;
    const double factor = wino ? WINO_BOUND_FACTOR : CHAIN_BOUND_FACTOR;
    uint64_t rb;
    CHECK(sdc_type_bytes(t, (uint64_t)K, &rb));
    float *x = malloc((size_t)(B * C * H * W) * sizeof(float));
    float *wsrc = malloc((size_t)(O * K) * sizeof(float)), *wf = malloc((size_t)(O * K) * sizeof(float));
    uint8_t *w = malloc((size_t)(rb * (uint64_t)O));
    float *bias = with_bias ? malloc((size_t)O * sizeof(float)) : NULL;
    const int64_t ny = B * O * Ho * Wo;
    float *y1 = malloc((size_t)ny * 4), *y2 = malloc((size_t)ny * 4), *y3 = malloc((size_t)ny * 4),
          *ys = malloc((size_t)ny * 4);
    fill_normal(r, x, B * C * H * W);
    fill_normal(r, wsrc, O * K);
    if (bias) fill_normal(r, bias, O);
    for (int64_t o = 0; o < O; o++) {
        if (sdc_can_quantize(t)) {
            CHECK(sdc_quantize_row(t, wsrc + o * K, w + o * rb, K));
        } else { /* Q6_K (no quantizer): random codes and scales, a small finite d per block */
            CHECK(t == SDC_TYPE_Q6_K);
            for (uint64_t i = 0; i < rb; i++) w[o * rb + i] = (uint8_t)tu_rng_u64(r);
            for (int64_t b = 0; b < K / SDC_QK_K; b++) {
                sdc_block_q6_k *blk = (sdc_block_q6_k *)(void *)(w + o * rb) + b;
                blk->d = sdc_f32_to_f16(0x1p-12f * (float)(1 + tu_rng_u64(r) % 16));
            }
        }
        CHECK(sdc_dequantize_row(t, w + o * rb, wf + o * K, K));
    }
    CHECK(sdc_cpu_conv2d(cpu2, B, C, H, W, x, O, k, k, s, p, t, w, bias, y2) == SDC_OK);
    CHECK(sdc_cpu_conv2d(cpu1, B, C, H, W, x, O, k, k, s, p, t, w, bias, y1) == SDC_OK);
    CHECK(sdc_cpu_conv2d(cpu3, B, C, H, W, x, O, k, k, s, p, t, w, bias, y3) == SDC_OK);
    CHECK(sdc_cpu_conv2d(cpus, B, C, H, W, x, O, k, k, s, p, t, w, bias, ys) == SDC_OK);
    double max_abs = 0, worst = 0;
    int64_t bad = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t oy = 0; oy < Ho; oy++)
                for (int64_t ox = 0; ox < Wo; ox++) {
                    double acc = bias ? bias[o] : 0.0, mag = bias ? fabs(bias[o]) : 0.0;
                    for (int64_t c = 0; c < C; c++)
                        for (int dy = 0; dy < k; dy++)
                            for (int dx = 0; dx < k; dx++) {
                                int64_t iy = oy * s - p + dy, ix = ox * s - p + dx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                double v = (double)x[((b * C + c) * H + iy) * W + ix] * wf[(o * C + c) * k * k + dy * k + dx];
                                acc += v;
                                mag += fabs(v);
                            }
                    const double got = y2[((b * O + o) * Ho + oy) * Wo + ox];
                    const double e = fabs(got - acc);
                    const double bound = factor * (double)(K + 1) * 0x1p-24 * mag + 1e-30;
                    if (e > max_abs) max_abs = e;
                    if (e / bound > worst) worst = e / bound;
                    if (!(e <= bound)) bad++;
                }
    printf("%-50s max_abs=%.3g err/bound=%.3f%s\n", label, max_abs, worst, bad ? " FAIL" : "");
    CHECK_MSG(bad == 0, "%s: %lld outputs beyond the fp32 chain bound", label, (long long)bad);
    CHECK_MSG(memcmp(y1, y2, (size_t)ny * 4) == 0, "%s: 1 vs 2 threads differ", label);
    CHECK_MSG(memcmp(y3, y2, (size_t)ny * 4) == 0, "%s: 3 vs 2 threads differ", label);
    CHECK_MSG(memcmp(ys, y2, (size_t)ny * 4) == 0, "%s: scalar twin vs %s differ", label, sdc_isa_name(cpu2->isa));
    free(x); free(wsrc); free(wf); free(w); free(bias); free(y1); free(y2); free(y3); free(ys);
}

static void run_case(tu_rng *r, sdc_type t, shape sh, int with_bias) { run_case_algo(r, t, sh, with_bias, 0); }

static void test_validation(void) {
    float x[2 * 4 * 4] = {0}, w[9 * 2 * 2] = {0}, y[64];
    for (int i = 0; i < 64; i++) y[i] = 7.0f;
    CHECK(sdc_cpu_conv2d(NULL, 1, 2, 4, 4, x, 2, 3, 3, 1, 1, SDC_TYPE_F32, w, NULL, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_conv2d(cpu2, 1, 2, 4, 4, NULL, 2, 3, 3, 1, 1, SDC_TYPE_F32, w, NULL, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_conv2d(cpu2, 1, 2, 4, 4, x, 2, 3, 3, 1, 1, SDC_TYPE_F32, NULL, NULL, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_conv2d(cpu2, 1, 2, 4, 4, x, 2, 3, 3, 1, 1, SDC_TYPE_F32, w, NULL, NULL) == SDC_E_INVALID);
    CHECK(sdc_cpu_conv2d(cpu2, 0, 2, 4, 4, x, 2, 3, 3, 1, 1, SDC_TYPE_F32, w, NULL, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_conv2d(cpu2, 1, 0, 4, 4, x, 2, 3, 3, 1, 1, SDC_TYPE_F32, w, NULL, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_conv2d(cpu2, 1, 2, 4, 4, x, -2, 3, 3, 1, 1, SDC_TYPE_F32, w, NULL, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_conv2d(cpu2, 1, 2, 4, 4, x, 2, 0, 3, 1, 1, SDC_TYPE_F32, w, NULL, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_conv2d(cpu2, 1, 2, 4, 4, x, 2, 3, 3, 0, 1, SDC_TYPE_F32, w, NULL, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_conv2d(cpu2, 1, 2, 4, 4, x, 2, 3, 3, 1, -1, SDC_TYPE_F32, w, NULL, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_conv2d(cpu2, 1, 2, 1, 1, x, 2, 3, 3, 1, 0, SDC_TYPE_F32, w, NULL, y) == SDC_E_INVALID); /* empty out */
    CHECK(sdc_cpu_conv2d(cpu2, 1, 2, 4, 4, x, 2, 3, 3, 1, 1, SDC_TYPE_Q8_0, w, NULL, y) == SDC_E_INVALID); /* 18 % 32 */
    CHECK(sdc_cpu_conv2d(cpu2, 1, 2, 4, 4, x, 2, 3, 3, 1, 1, SDC_TYPE_I16, w, NULL, y) == SDC_E_UNSUPPORTED);
    CHECK(sdc_cpu_conv2d(cpu2, 1, 2, 4, 4, x, 2, 3, 3, 1, 1, (sdc_type)99, w, NULL, y) == SDC_E_INVALID);
    int untouched = 1;
    for (int i = 0; i < 64; i++) untouched &= y[i] == 7.0f;
    CHECK_MSG(untouched, "an invalid call wrote to y");
}

int main(void) {
    cpu1 = sdc_cpu_new(1, SDC_ISA_AVX512);
    cpu2 = sdc_cpu_new(2, SDC_ISA_AVX512);
    cpu3 = sdc_cpu_new(3, SDC_ISA_AVX512);
    cpus = sdc_cpu_new(1, SDC_ISA_SCALAR);
    CHECK(cpu1 && cpu2 && cpu3 && cpus);
    if (!(cpu1 && cpu2 && cpu3 && cpus)) return check_done();
    printf("isa: %s (scalar twin compared bit for bit)\n", sdc_isa_name(cpu2->isa));
    tu_rng r = {7};
    test_validation();

    const shape fshapes[] = {
        {1, 4, 9, 11, 20, 3, 1, 1},   /* UNet conv_in scaled down: C=4, K=36 */
        {2, 16, 8, 8, 24, 3, 1, 1},   /* batch 2; Wo=8 < 16: a tile spans two output rows */
        /* batches of small images run as one GEMM, the images' positions side by side */
        {3, 40, 4, 4, 14, 3, 1, 1},   /* one sliver per image: strips and sliver pairs span images; 2 K blocks */
        {2, 12, 12, 12, 20, 3, 1, 1}, /* 9 slivers per image: a sliver pair straddles the two images */
        {2, 8, 8, 8, 10, 3, 2, 1},    /* stride 2 to 4x4 per image */
        {4, 16, 4, 8, 9, 1, 1, 0},    /* 1x1, 32 positions per image */
        {2, 6, 5, 5, 7, 3, 1, 1},     /* 25 positions per image: not whole slivers, image by image */
        {1, 8, 17, 13, 10, 3, 2, 1},  /* downsample: stride 2, odd sizes */
        {1, 5, 5, 5, 7, 3, 2, 0},     /* stride 2, no padding */
        {1, 32, 6, 7, 20, 1, 1, 0},   /* 1x1 (skip connections, VAE attention projections) */
        {1, 3, 20, 21, 6, 1, 2, 0},   /* 1x1 stride 2 */
        {1, 40, 16, 18, 50, 3, 1, 1}, /* K = 360: two K blocks; O not a multiple of 6 */
        {1, 2, 3, 40, 9, 3, 1, 1},    /* wide rows, few channels */
        {1, 3, 33, 35, 13, 3, 1, 1},  /* Ho*Wo > 1024: per-task B packing, edge runs */
        {1, 32, 36, 37, 20, 3, 1, 1}, /* per-task B packing over two K blocks */
        {1, 32, 36, 37, 200, 3, 1, 1}, /* ... with 200 rows: one block of 34 row slivers, the last partial */
        {1, 8, 32, 48, 20, 3, 1, 1},  /* Wo % 16 == 0, per-task B: slivers within one row, border slivers */
        {1, 12, 16, 32, 14, 3, 1, 1}, /* Wo % 16 == 0, shared B panel */
        {1, 6, 18, 34, 8, 3, 1, 0},   /* Wo = 32 without padding */
        {1, 24, 34, 32, 10, 1, 1, 0}, /* 1x1 with Wo % 16 == 0 */
        {1, 3, 40, 16, 5, 5, 1, 2},   /* 5x5, pad 2: kw - 1 = 4 extra values per sliver */
    };
    const sdc_type ftypes[] = {SDC_TYPE_F32, SDC_TYPE_F16, SDC_TYPE_BF16};
    for (size_t ti = 0; ti < sizeof ftypes / sizeof *ftypes; ti++)
        for (size_t si = 0; si < sizeof fshapes / sizeof *fshapes; si++)
            run_case(&r, ftypes[ti], fshapes[si], (int)(si & 1) || si == 0);
    /* Block types need C*kh*kw % 32 == 0 (never the case in SD files, but supported). */
    const shape qshapes[] = {
        {1, 32, 7, 9, 13, 3, 1, 1},   /* K = 288 */
        {1, 64, 5, 6, 11, 1, 1, 0},   /* K = 64 */
    };
    const sdc_type qtypes[] = {SDC_TYPE_Q8_0, SDC_TYPE_Q4_0, SDC_TYPE_Q4_1, SDC_TYPE_Q5_0, SDC_TYPE_Q5_1};
    for (size_t ti = 0; ti < sizeof qtypes / sizeof *qtypes; ti++)
        for (size_t si = 0; si < sizeof qshapes / sizeof *qshapes; si++)
            run_case(&r, qtypes[ti], qshapes[si], (int)(si & 1));
    /* Larger: many row blocks and column chunks, one F16 UNet-like layer scaled down. */
    run_case(&r, SDC_TYPE_F16, (shape){2, 64, 20, 20, 96, 3, 1, 1}, 1);

    /* Winograd F(2x2,3x3) and F(4x4,3x3): even and odd sizes (partial tiles, vector and scalar
     * transforms), several chunks of tile rows, batch 2, each weight type class, with and
     * without bias. */
    const shape wshapes[] = {
        {1, 16, 32, 32, 16, 3, 1, 1},   /* the smallest layer eligible for F(2x2) */
        {2, 24, 33, 35, 20, 3, 1, 1},   /* odd sizes: partial tiles on the right and bottom */
        {1, 40, 64, 48, 18, 3, 1, 1},   /* O not a multiple of 6 */
        {1, 16, 40, 50, 17, 3, 1, 1},   /* F(2x2) tile rows of 25: 3 vector blocks and a scalar tail */
        {1, 16, 40, 70, 17, 3, 1, 1},   /* F(4x4) tile rows of 18: 2 vector blocks, a partial tail */
        {1, 16, 48, 44, 16, 3, 1, 1},   /* the smallest kind of layer eligible for F(4x4) */
        {1, 20, 512, 200, 16, 3, 1, 1}, /* several chunks of tile rows */
    };
    for (int m = 2; m <= 4; m += 2)
        for (size_t si = 0; si < sizeof wshapes / sizeof *wshapes; si++) {
            const shape w = wshapes[si];
            if (sdc_winograd_choose(m, w.B, w.C, w.H, w.W, w.O, 3, 3, 1, 1))
                run_case_algo(&r, si % 3 == 1 ? SDC_TYPE_F32 : SDC_TYPE_F16, w, (int)(si & 1) || si == 0, m);
        }
    run_case_algo(&r, SDC_TYPE_Q8_0, (shape){1, 32, 32, 34, 24, 3, 1, 1}, 1, 2);
    run_case_algo(&r, SDC_TYPE_Q8_0, (shape){1, 32, 48, 46, 24, 3, 1, 1}, 1, 4);
    /* a K-quant (blocks of 256 do not divide the 288-value weight chunks): through f32 rows */
    run_case_algo(&r, SDC_TYPE_Q6_K, (shape){1, 256, 32, 32, 16, 3, 1, 1}, 1, 2);
    run_case_algo(&r, SDC_TYPE_Q6_K, (shape){1, 256, 48, 48, 20, 3, 1, 1}, 0, 4);
    run_case_algo(&r, SDC_TYPE_BF16, (shape){1, 16, 34, 32, 16, 3, 1, 1}, 0, 2);
    run_case_algo(&r, SDC_TYPE_BF16, (shape){1, 16, 48, 48, 16, 3, 1, 1}, 0, 4);
    run_case_algo(&r, SDC_TYPE_F16, (shape){1, 16, 96, 90, 16, 3, 1, 1}, 1, 1); /* automatic: F(4x4) */
    CHECK(sdc_winograd_choose(1, 1, 16, 96, 90, 16, 3, 3, 1, 1) == 4);
    /* F(4x4) with a 3-row bottom tile (35 = 8*4 + 3) and W = 30: a vector input transform
     * but scalar output tiles only (8 tiles would write 32 columns) */
    run_case_algo(&r, SDC_TYPE_F16, (shape){2, 16, 35, 30, 16, 3, 1, 1}, 1, 4);
    /* small workspace limits: U in blocks of a few output channels, chunks of tile rows that
     * cross from one image into the next (F(2x2): blocks of 12 and 8, chunks of 3 of an
     * image's 17 tile rows; F(4x4): blocks of 6 and 2, chunks of 2 of 9) */
    cpu1->winograd_u_bytes = cpu2->winograd_u_bytes = cpu3->winograd_u_bytes = cpus->winograd_u_bytes =
        16 * 16 * 24 * sizeof(float);
    cpu1->winograd_chunk_bytes = cpu2->winograd_chunk_bytes = cpu3->winograd_chunk_bytes =
        cpus->winograd_chunk_bytes = 16 * 3 * 18 * 24 * sizeof(float);
    run_case_algo(&r, SDC_TYPE_F16, (shape){3, 24, 34, 35, 32, 3, 1, 1}, 1, 2);
    run_case_algo(&r, SDC_TYPE_F16, (shape){3, 24, 34, 35, 32, 3, 1, 1}, 1, 4);
    /* several blocks, one chunk (the default chunk limit): U made per block, V kept */
    cpu1->winograd_chunk_bytes = cpu2->winograd_chunk_bytes = cpu3->winograd_chunk_bytes =
        cpus->winograd_chunk_bytes = 0;
    run_case_algo(&r, SDC_TYPE_F16, (shape){1, 24, 34, 35, 40, 3, 1, 1}, 1, 2);
    run_case_algo(&r, SDC_TYPE_F16, (shape){1, 24, 48, 44, 40, 3, 1, 1}, 0, 4);
    /* ... and with few tiles per chunk (one tile row of 8 or 4 tiles) against many blocks of
     * output channels: the blocks loop outermost and each chunk's input is transformed again
     * per block (F(2x2): 4 blocks x 32 chunks; F(4x4): 8 x 32) */
    cpu1->winograd_u_bytes = cpu2->winograd_u_bytes = cpu3->winograd_u_bytes = cpus->winograd_u_bytes =
        16 * 16 * 16 * sizeof(float);
    cpu1->winograd_chunk_bytes = cpu2->winograd_chunk_bytes = cpu3->winograd_chunk_bytes =
        cpus->winograd_chunk_bytes = 16 * 8 * 16 * sizeof(float);
    run_case_algo(&r, SDC_TYPE_F16, (shape){1, 16, 64, 16, 48, 3, 1, 1}, 1, 2);
    run_case_algo(&r, SDC_TYPE_F32, (shape){1, 16, 128, 16, 48, 3, 1, 1}, 0, 4);
    cpu1->winograd_u_bytes = cpu2->winograd_u_bytes = cpu3->winograd_u_bytes = cpus->winograd_u_bytes = 0;
    cpu1->winograd_chunk_bytes = cpu2->winograd_chunk_bytes = cpu3->winograd_chunk_bytes =
        cpus->winograd_chunk_bytes = 0;

    /* which variant, where: 128 tiles (over the batch), F(4x4) first; channels 16..2560 in,
     * >= 16 out; 3x3 stride 1 pad 1 only */
    CHECK(sdc_winograd_choose(1, 2, 320, 64, 64, 320, 3, 3, 1, 1) == 4);  /* UNet 64x64: 512 tiles */
    CHECK(sdc_winograd_choose(1, 1, 320, 64, 64, 320, 3, 3, 1, 1) == 4);  /* 256 4x4 tiles */
    CHECK(sdc_winograd_choose(1, 2, 640, 32, 32, 640, 3, 3, 1, 1) == 4);  /* 128 */
    CHECK(sdc_winograd_choose(1, 1, 640, 32, 32, 640, 3, 3, 1, 1) == 2);  /* 64 4x4, 256 2x2 */
    CHECK(sdc_winograd_choose(1, 2, 1920, 32, 32, 640, 3, 3, 1, 1) == 4);
    CHECK(sdc_winograd_choose(1, 1, 16, 32, 32, 16, 3, 3, 1, 1) == 2);    /* 256 2x2 tiles */
    CHECK(sdc_winograd_choose(1, 1, 16, 22, 22, 16, 3, 3, 1, 1) == 0);    /* 121 2x2 tiles */
    CHECK(sdc_winograd_choose(1, 2, 2560, 16, 16, 1280, 3, 3, 1, 1) == 2); /* 128 2x2 tiles */
    CHECK(sdc_winograd_choose(1, 2, 2561, 16, 16, 1280, 3, 3, 1, 1) == 0); /* too deep */
    CHECK(sdc_winograd_choose(1, 2, 1920, 16, 16, 1280, 3, 3, 1, 1) == 2); /* 128 2x2, 32 4x4 */
    CHECK(sdc_winograd_choose(1, 2, 1280, 8, 8, 1280, 3, 3, 1, 1) == 0);   /* 32 2x2 tiles */
    CHECK(sdc_winograd_choose(1, 2, 15, 64, 64, 320, 3, 3, 1, 1) == 0);
    CHECK(sdc_winograd_choose(1, 2, 320, 64, 64, 15, 3, 3, 1, 1) == 0);
    CHECK(sdc_winograd_choose(1, 2, 320, 64, 64, 320, 3, 3, 2, 1) == 0);  /* stride 2 */
    CHECK(sdc_winograd_choose(1, 2, 320, 64, 64, 320, 1, 1, 1, 0) == 0);  /* 1x1 */
    CHECK(sdc_winograd_choose(0, 2, 320, 64, 64, 320, 3, 3, 1, 1) == 0);  /* off */
    CHECK(sdc_winograd_choose(2, 2, 320, 64, 64, 320, 3, 3, 1, 1) == 2);  /* forced */
    CHECK(sdc_winograd_choose(4, 2, 640, 32, 32, 640, 3, 3, 1, 1) == 4);  /* 128 4x4 tiles */
    CHECK(sdc_winograd_choose(4, 1, 640, 32, 32, 640, 3, 3, 1, 1) == 0);
    CHECK(sdc_winograd_choose(1, (int64_t)1 << 40, 16, 1, 1, 16, 3, 3, 1, 1) == 4); /* no B*tiles */
    CHECK(sdc_winograd_choose(1, 127, 16, 1, 1, 16, 3, 3, 1, 1) == 0);

    sdc_cpu_free(cpu1);
    sdc_cpu_free(cpu2);
    sdc_cpu_free(cpu3);
    sdc_cpu_free(cpus);
    return check_done();
}
