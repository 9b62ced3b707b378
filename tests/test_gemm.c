/* test_gemm.c - sdc_cpu_linear against a naive fp64 loop over weights dequantized by the
 * scalar reference (sdc_dequantize_row), for every weight type, odd and SD-like shapes;
 * the AVX2 path against its scalar twin and 1 vs 2 vs 3 threads, bit for bit; the SIMD
 * segment dequantizers against the reference, bit for bit; argument validation. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu/cpu.h"
#include "cpu/gemm.h"
#include "half.h"
#include "quant.h"
#include "testutil.h"

/* Each output is one fp32 fma chain over K terms (bias first): |err| <= gamma_K * sum|x*w|
 * with gamma_K = K*u/(1-K*u), u = 2^-24 (recursive summation bound). 1.01 covers the
 * 1/(1-K*u) factor for the K used here. */
#define CHAIN_BOUND_FACTOR 1.01

static const sdc_type ALL_TYPES[] = {SDC_TYPE_F32,  SDC_TYPE_F16,  SDC_TYPE_BF16, SDC_TYPE_Q8_0, SDC_TYPE_Q4_0,
                                     SDC_TYPE_Q4_1, SDC_TYPE_Q5_0, SDC_TYPE_Q5_1, SDC_TYPE_Q2_K, SDC_TYPE_Q3_K,
                                     SDC_TYPE_Q4_K, SDC_TYPE_Q5_K, SDC_TYPE_Q6_K, SDC_TYPE_F64};
#define N_TYPES (int)(sizeof ALL_TYPES / sizeof *ALL_TYPES)

static void fill_normal(tu_rng *r, float *v, int64_t n, double scale) {
    for (int64_t i = 0; i < n; i++) v[i] = (float)(tu_rng_normal(r) * scale);
}

/* Random weights [rows, K] of type t (K a multiple of its block). Types sdc_quantize_row
 * can write are quantized from N(0,1); K-quant blocks are random bytes with small f16
 * scales; F64 is written directly. Returns the buffer (free it) or NULL. */
static void *make_weights(tu_rng *r, sdc_type t, int64_t rows, int64_t K, size_t *row_bytes_out) {
    uint64_t rb;
    if (!sdc_type_bytes(t, (uint64_t)K, &rb)) return NULL;
    uint8_t *w = malloc((size_t)(rb * (uint64_t)rows) + 1);
    float *tmp = malloc((size_t)K * sizeof(float));
    for (int64_t i = 0; i < rows; i++) {
        uint8_t *row = w + (size_t)i * rb;
        fill_normal(r, tmp, K, 1.0);
        if (sdc_can_quantize(t)) {
            sdc_quantize_row(t, tmp, row, K);
        } else if (t == SDC_TYPE_F64) {
            for (int64_t k = 0; k < K; k++) { double v = tmp[k]; memcpy(row + 8 * k, &v, 8); }
        } else {
            const sdc_type_traits *tr = sdc_type_traits_of(t);
            for (uint64_t b = 0; b < rb; b++) row[b] = (uint8_t)tu_rng_u64(r);
            for (int64_t b = 0; b < K / tr->block; b++) {
                uint8_t *blk = row + b * tr->block_bytes;
                uint16_t d = sdc_f32_to_f16((float)(0.01 + 0.05 * tu_rng_uniform(r)));
                uint16_t dm = sdc_f32_to_f16((float)(0.01 * tu_rng_uniform(r)));
                size_t od = 0, odm = (size_t)-1;
                switch (t) {
                case SDC_TYPE_Q2_K: od = offsetof(sdc_block_q2_k, d); odm = offsetof(sdc_block_q2_k, dmin); break;
                case SDC_TYPE_Q3_K: od = offsetof(sdc_block_q3_k, d); break;
                case SDC_TYPE_Q4_K: od = offsetof(sdc_block_q4_k, d); odm = offsetof(sdc_block_q4_k, dmin); break;
                case SDC_TYPE_Q5_K: od = offsetof(sdc_block_q5_k, d); odm = offsetof(sdc_block_q5_k, dmin); break;
                case SDC_TYPE_Q6_K: od = offsetof(sdc_block_q6_k, d); break;
                default: break;
                }
                memcpy(blk + od, &d, 2);
                if (odm != (size_t)-1) memcpy(blk + odm, &dm, 2);
            }
        }
    }
    free(tmp);
    *row_bytes_out = (size_t)rb;
    return w;
}

/* fp64 reference and the per-element error bound scale sum |x*w| + |bias|. */
static void ref_linear(int64_t M, int64_t N, int64_t K, const float *x, int64_t ldx, const float *wf,
                       const float *bias, double *yref, double *mag) {
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = bias ? bias[n] : 0.0, a = bias ? fabs(bias[n]) : 0.0;
            for (int64_t k = 0; k < K; k++) {
                double p = (double)x[m * ldx + k] * wf[n * K + k];
                s += p;
                a += fabs(p);
            }
            yref[m * N + n] = s;
            mag[m * N + n] = a;
        }
}

static sdc_cpu *cpu1, *cpu2, *cpu3, *cpus;
static double worst_ratio_all = 0;

static void run_case(tu_rng *r, sdc_type t, int64_t M, int64_t N, int64_t K, int64_t ldx, int64_t ldy, int with_bias) {
    char label[128];
    snprintf(label, sizeof label, "linear %s M=%lld N=%lld K=%lld%s", sdc_type_name(t), (long long)M, (long long)N,
             (long long)K, with_bias ? " +b" : "");
    size_t rb = 0;
    void *w = make_weights(r, t, N, K, &rb);
    float *x = malloc((size_t)(M * ldx) * sizeof(float));
    float *bias = with_bias ? malloc((size_t)N * sizeof(float)) : NULL;
    float *wf = malloc((size_t)(N * K) * sizeof(float));
    const size_t ybytes = (size_t)(M * ldy) * sizeof(float);
    float *y1 = malloc(ybytes), *y2 = malloc(ybytes), *y3 = malloc(ybytes), *ys = malloc(ybytes);
    double *yref = malloc((size_t)(M * N) * sizeof(double)), *mag = malloc((size_t)(M * N) * sizeof(double));
    fill_normal(r, x, M * ldx, 1.0);
    if (bias) fill_normal(r, bias, N, 1.0);
    for (int64_t n = 0; n < N; n++) CHECK(sdc_dequantize_row(t, (const uint8_t *)w + n * rb, wf + n * K, K));
    ref_linear(M, N, K, x, ldx, wf, bias, yref, mag);
    /* the padding columns of y (ldy > N) must stay untouched: fill with a sentinel */
    for (size_t i = 0; i < ybytes / 4; i++) y1[i] = y2[i] = y3[i] = ys[i] = -12345.0f;
    CHECK(sdc_cpu_linear(cpu2, M, N, K, x, ldx, t, w, bias, y2, ldy) == SDC_OK);
    CHECK(sdc_cpu_linear(cpu1, M, N, K, x, ldx, t, w, bias, y1, ldy) == SDC_OK);
    CHECK(sdc_cpu_linear(cpu3, M, N, K, x, ldx, t, w, bias, y3, ldy) == SDC_OK);
    CHECK(sdc_cpu_linear(cpus, M, N, K, x, ldx, t, w, bias, ys, ldy) == SDC_OK);
    double max_abs = 0, worst = 0;
    int64_t bad = 0, pad_bad = 0;
    for (int64_t m = 0; m < M; m++) {
        for (int64_t n = 0; n < N; n++) {
            double e = fabs(y2[m * ldy + n] - yref[m * N + n]);
            double bound = CHAIN_BOUND_FACTOR * (double)(K + 1) * 0x1p-24 * mag[m * N + n] + 1e-30;
            if (e > max_abs) max_abs = e;
            if (e / bound > worst) worst = e / bound;
            if (!(e <= bound)) bad++;
        }
        for (int64_t n = N; n < ldy; n++) pad_bad += y2[m * ldy + n] != -12345.0f;
    }
    if (worst > worst_ratio_all) worst_ratio_all = worst;
    printf("%-44s max_abs=%.3g err/bound=%.3f%s\n", label, max_abs, worst, bad ? " FAIL" : "");
    CHECK_MSG(bad == 0, "%s: %lld elements beyond the fp32 chain bound", label, (long long)bad);
    CHECK_MSG(pad_bad == 0, "%s: wrote past N in a row of ldy", label);
    CHECK_MSG(memcmp(y1, y2, ybytes) == 0, "%s: 1 vs 2 threads differ", label);
    CHECK_MSG(memcmp(y3, y2, ybytes) == 0, "%s: 3 vs 2 threads differ", label);
    CHECK_MSG(memcmp(ys, y2, ybytes) == 0, "%s: scalar twin vs %s differ", label, sdc_isa_name(cpu2->isa));
    free(w); free(x); free(bias); free(wf); free(y1); free(y2); free(y3); free(ys); free(yref); free(mag);
}

/* The SIMD segment decoders against the reference, bit for bit, at several offsets. */
static void test_dequant_seg(tu_rng *r) {
    for (int ti = 0; ti < N_TYPES; ti++) {
        sdc_type t = ALL_TYPES[ti];
        const int64_t K = 1024;
        size_t rb;
        void *w = make_weights(r, t, 1, K, &rb);
        float *ref = malloc(K * sizeof(float)), *got = malloc(K * sizeof(float));
        CHECK(sdc_dequantize_row(t, w, ref, K));
        const int blk = sdc_type_traits_of(t)->block;
        int ok = 1;
        const int64_t offs[][2] = {{0, 1024}, {256, 512}, {512, 256}, {768, 256}};
        for (int o = 0; o < 4; o++) {
            int64_t k0 = offs[o][0], n = offs[o][1];
            if (k0 % blk || n % blk) continue;
            for (int isa = SDC_ISA_SCALAR; isa <= (int)cpu2->isa && isa <= SDC_ISA_AVX2; isa++) {
                memset(got, 0, K * sizeof(float));
                ok &= sdc_gemm_dequant_seg(t, w, k0, n, got, (sdc_isa)isa);
                ok &= memcmp(got, ref + k0, (size_t)n * sizeof(float)) == 0;
            }
        }
        if (blk > 1) ok &= !sdc_gemm_dequant_seg(t, w, 1, (int64_t)blk, got, cpu2->isa); /* misaligned k0 */
        CHECK_MSG(ok, "dequant_seg %s differs from sdc_dequantize_row", sdc_type_name(t));
        printf("dequant_seg %-6s bit-identical to the reference: %s\n", sdc_type_name(t), ok ? "yes" : "NO");
        free(w); free(ref); free(got);
    }
}

static void test_validation(void) {
    float x[64 * 4] = {0}, y[64 * 4], w[64 * 4] = {0};
    for (int i = 0; i < 256; i++) y[i] = 7.0f;
    CHECK(sdc_cpu_linear(NULL, 2, 2, 32, x, 32, SDC_TYPE_F32, w, NULL, y, 2) == SDC_E_INVALID);
    CHECK(sdc_cpu_linear(cpu2, 2, 2, 32, NULL, 32, SDC_TYPE_F32, w, NULL, y, 2) == SDC_E_INVALID);
    CHECK(sdc_cpu_linear(cpu2, 2, 2, 32, x, 32, SDC_TYPE_F32, NULL, NULL, y, 2) == SDC_E_INVALID);
    CHECK(sdc_cpu_linear(cpu2, 2, 2, 32, x, 32, SDC_TYPE_F32, w, NULL, NULL, 2) == SDC_E_INVALID);
    CHECK(sdc_cpu_linear(cpu2, 0, 2, 32, x, 32, SDC_TYPE_F32, w, NULL, y, 2) == SDC_E_INVALID);
    CHECK(sdc_cpu_linear(cpu2, 2, -1, 32, x, 32, SDC_TYPE_F32, w, NULL, y, 2) == SDC_E_INVALID);
    CHECK(sdc_cpu_linear(cpu2, 2, 2, 0, x, 32, SDC_TYPE_F32, w, NULL, y, 2) == SDC_E_INVALID);
    CHECK(sdc_cpu_linear(cpu2, 2, 2, 32, x, 31, SDC_TYPE_F32, w, NULL, y, 2) == SDC_E_INVALID); /* ldx < K */
    CHECK(sdc_cpu_linear(cpu2, 2, 2, 32, x, 32, SDC_TYPE_F32, w, NULL, y, 1) == SDC_E_INVALID); /* ldy < N */
    CHECK(sdc_cpu_linear(cpu2, 2, 2, 48, x, 48, SDC_TYPE_Q8_0, w, NULL, y, 2) == SDC_E_INVALID); /* K % 32 */
    CHECK(sdc_cpu_linear(cpu2, 2, 2, 128, x, 128, SDC_TYPE_Q4_K, w, NULL, y, 2) == SDC_E_INVALID); /* K % 256 */
    CHECK(sdc_cpu_linear(cpu2, 2, 2, 32, x, 32, SDC_TYPE_I32, w, NULL, y, 2) == SDC_E_UNSUPPORTED);
    CHECK(sdc_cpu_linear(cpu2, 2, 2, 32, x, 32, SDC_TYPE_I8, w, NULL, y, 2) == SDC_E_UNSUPPORTED);
    CHECK(sdc_cpu_linear(cpu2, 2, 2, 32, x, 32, (sdc_type)SDC_TYPE_COUNT, w, NULL, y, 2) == SDC_E_INVALID);
    CHECK(sdc_cpu_linear(cpu2, 2, 2, 32, x, 32, (sdc_type)-1, w, NULL, y, 2) == SDC_E_INVALID);
    int untouched = 1;
    for (int i = 0; i < 256; i++) untouched &= y[i] == 7.0f;
    CHECK_MSG(untouched, "an invalid call wrote to y");
}

/* The same rows through one call whose C exceeds 4 MiB (K = 352 as one block) and through two
 * calls of half the rows (C under 4 MiB: two K blocks): bit-identical, since each output is
 * one fma chain over k = 0..K-1 whatever the blocking. */
static void test_blocking_invariance(tu_rng *r) {
    const int64_t M = 1040, N = 1024, K = 352;
    float *x = malloc((size_t)(M * K) * sizeof(float)), *w = malloc((size_t)(N * K) * sizeof(float));
    float *y1 = malloc((size_t)(M * N) * sizeof(float)), *y2 = malloc((size_t)(M * N) * sizeof(float));
    if (!x || !w || !y1 || !y2) { CHECK(0); free(x); free(w); free(y1); free(y2); return; }
    fill_normal(r, x, M * K, 1.0);
    fill_normal(r, w, N * K, 0.05);
    CHECK(sdc_cpu_linear(cpu2, M, N, K, x, K, SDC_TYPE_F32, w, NULL, y1, N) == SDC_OK);
    CHECK(sdc_cpu_linear(cpu2, M / 2, N, K, x, K, SDC_TYPE_F32, w, NULL, y2, N) == SDC_OK);
    CHECK(sdc_cpu_linear(cpu2, M / 2, N, K, x + M / 2 * K, K, SDC_TYPE_F32, w, NULL, y2 + M / 2 * N, N) == SDC_OK);
    CHECK_MSG(memcmp(y1, y2, (size_t)(M * N) * sizeof(float)) == 0, "one K block vs two: results differ");
    free(x); free(w); free(y1); free(y2);
}

int main(void) {
    cpu1 = sdc_cpu_new(1, SDC_ISA_AVX512);
    cpu2 = sdc_cpu_new(2, SDC_ISA_AVX512);
    cpu3 = sdc_cpu_new(3, SDC_ISA_AVX512);
    cpus = sdc_cpu_new(1, SDC_ISA_SCALAR);
    CHECK(cpu1 && cpu2 && cpu3 && cpus);
    if (!(cpu1 && cpu2 && cpu3 && cpus)) return check_done();
    printf("isa: %s (scalar twin compared bit for bit)\n", sdc_isa_name(cpu2->isa));
    tu_rng r = {42};
    {
        /* more threads than per-thread state exists for: clamped, and a call still works */
        sdc_cpu *big = sdc_cpu_new(SDC_CPU_MAX_THREADS + 44, SDC_ISA_AVX512);
        CHECK(big && big->n_threads == SDC_CPU_MAX_THREADS && sdc_pool_size(big->pool) == SDC_CPU_MAX_THREADS);
        float xb[3 * 40], wb[300 * 40], yb[3 * 300], yr[3 * 300];
        for (int i = 0; i < 3 * 40; i++) xb[i] = (float)(i % 7) - 3.0f;
        for (int i = 0; i < 300 * 40; i++) wb[i] = (float)(i % 5) - 2.0f;
        CHECK(big && sdc_cpu_linear(big, 3, 300, 40, xb, 40, SDC_TYPE_F32, wb, NULL, yb, 300) == SDC_OK);
        CHECK(sdc_cpu_linear(cpu1, 3, 300, 40, xb, 40, SDC_TYPE_F32, wb, NULL, yr, 300) == SDC_OK);
        CHECK_MSG(memcmp(yb, yr, sizeof yb) == 0, "%d threads vs 1 thread differ", SDC_CPU_MAX_THREADS);
        sdc_cpu_free(big);
    }
    test_validation();
    test_dequant_seg(&r);

    /* Float types: any K. Odd shapes (not multiples of 6, 16, 8 or the K block), K = 4 (the
     * UNet's first conv as a GEMM is K = 36), a K split over several K blocks, ldx/ldy. */
    const int64_t fshapes[][5] = {
        /* M, N, K, ldx extra, ldy extra */
        {1, 1, 1, 0, 0},   {7, 19, 37, 3, 5}, {6, 16, 4, 0, 0},  {13, 33, 36, 0, 0},
        {5, 17, 300, 1, 2}, {25, 40, 513, 0, 0},
    };
    const sdc_type ftypes[] = {SDC_TYPE_F32, SDC_TYPE_F16, SDC_TYPE_BF16, SDC_TYPE_F64};
    for (size_t ti = 0; ti < sizeof ftypes / sizeof *ftypes; ti++)
        for (size_t s = 0; s < sizeof fshapes / sizeof *fshapes; s++)
            run_case(&r, ftypes[ti], fshapes[s][0], fshapes[s][1], fshapes[s][2], fshapes[s][2] + fshapes[s][3],
                     fshapes[s][1] + fshapes[s][4], (int)(s & 1) || s == 0);

    /* Every type at K multiples of 256 (the K-quant block), incl. SD shapes scaled down:
     * [tokens, 320] -> 320, 77 tokens of 768 -> 40, a 1280-wide input. */
    const int64_t qshapes[][3] = {{9, 20, 256}, {77, 40, 768}, {64, 80, 512}, {11, 35, 1280}};
    for (int ti = 0; ti < N_TYPES; ti++)
        for (size_t s = 0; s < sizeof qshapes / sizeof *qshapes; s++)
            run_case(&r, ALL_TYPES[ti], qshapes[s][0], qshapes[s][1], qshapes[s][2], qshapes[s][2], qshapes[s][1],
                     (int)(s & 1));
    /* Legacy block types at K multiples of 32 only (K blocks of 32-multiples, tails). */
    const sdc_type btypes[] = {SDC_TYPE_Q8_0, SDC_TYPE_Q4_0, SDC_TYPE_Q4_1, SDC_TYPE_Q5_0, SDC_TYPE_Q5_1};
    for (size_t ti = 0; ti < sizeof btypes / sizeof *btypes; ti++) {
        run_case(&r, btypes[ti], 31, 47, 32, 32, 47, 1);
        run_case(&r, btypes[ti], 8, 23, 352, 360, 30, 0);
    }
    /* Many row blocks and column chunks (task grid, partial tiles on both edges). */
    run_case(&r, SDC_TYPE_F16, 301, 203, 640, 640, 203, 1);
    run_case(&r, SDC_TYPE_Q4_0, 400, 64, 320, 320, 64, 1);
    run_case(&r, SDC_TYPE_Q5_1, 150, 70, 320, 320, 70, 1);  /* 96 < M <= 288: x packed, W slivers per task */
    /* 96 < M <= 288 over several column chunks: x packed once for all chunks and K blocks (CLIP's
     * 154-row linears), 3 K blocks with a short last one, a partial last row sliver */
    run_case(&r, SDC_TYPE_F16, 154, 200, 768, 771, 203, 1);
    run_case(&r, SDC_TYPE_Q8_0, 103, 130, 640, 640, 130, 0);
    /* ... and with a packed A over APRE_MAX_BYTES (17 slivers x 15424 x 32 B > 8 MiB): each
     * chunk packs A itself again */
    run_case(&r, SDC_TYPE_Q8_0, 97, 130, 15424, 15424, 130, 1);
    run_case(&r, SDC_TYPE_Q8_0, 16, 4200, 64, 64, 4200, 1);   /* N > 4096, few rows: per-task W packing */
    run_case(&r, SDC_TYPE_Q4_1, 300, 4130, 64, 64, 4130, 0);  /* N > one 4096-wide shared panel */
    /* Shared panel with several K blocks (K-stationary mode): the 301-row case above, and here
     * a B of more than KPANEL_BYTES for all K (2 panels of 464 columns), 19 K blocks */
    run_case(&r, SDC_TYPE_Q8_0, 290, 900, 4864, 4864, 900, 1);
    /* C over 4 MiB with 256 < K <= 384: one K block instead of two (see sdc_cpu_gemm) */
    run_case(&r, SDC_TYPE_F16, 1030, 1030, 352, 352, 1030, 1);
    test_blocking_invariance(&r);
    printf("worst err/bound over all cases: %.3f\n", worst_ratio_all);

    sdc_cpu_free(cpu1);
    sdc_cpu_free(cpu2);
    sdc_cpu_free(cpu3);
    sdc_cpu_free(cpus);
    return check_done();
}
