/* test_qgemm.c - the opt-in int8 linear (cpu->int8, src/cpu/qgemm.c) for Q8_0, Q4_0 and Q4_1
 * weights: against an fp64 loop over the dequantized weights and the unquantized activations,
 * within the bound the activation rounding allows (gemm.h); the VNNI kernel against its scalar
 * twin and 1 vs 2 vs 3 threads, bit for bit; NaN and zero rows; and that ineligible weight
 * types or a CPU without VNNI keep the fp32 path. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu/cpu.h"
#include "cpu/gemm.h"
#include "quant.h"
#include "testutil.h"

/* Rounding x to dx * q (q = round(x * fl(127/amax)), dx = fl(amax/127)) is off by at most
 * dx * (1/2 + 2^-17) + |x| * 2^-22 (the two float reciprocals and the product x * id); the
 * rest is fp32 arithmetic: (2 * nb + 4) roundings of terms bounded by sum |w| (|x| + dx). */
#define Q_HALF (0.5 + 1.0 / (1 << 17))
#define Q_REL (1.0 / (1 << 22))
#define FP_U (1.0 / (1 << 24))

static const sdc_type QTYPES[] = {SDC_TYPE_Q8_0, SDC_TYPE_Q4_0, SDC_TYPE_Q4_1};

static sdc_cpu *cv1, *cv2, *cs1, *cs3; /* VNNI (int8=1) at 1 and 2 threads; scalar twin (int8=2) */
static int have_vnni;
static double worst_ratio = 0, worst_rel_rms = 0;

static sdc_cpu *mk(int threads, sdc_isa isa, int int8) {
    sdc_cpu *c = sdc_cpu_new(threads, isa);
    if (c) c->int8 = int8;
    return c;
}

static bool same_bits(const float *a, const float *b, int64_t M, int64_t N, int64_t ld) {
    for (int64_t i = 0; i < M; i++)
        if (memcmp(a + i * ld, b + i * ld, (size_t)N * sizeof(float))) return false;
    return true;
}

static void run_case(tu_rng *r, sdc_type t, int64_t M, int64_t N, int64_t K, int64_t ldx, int64_t ldy, int with_bias,
                     double xscale) {
    uint64_t rb64;
    CHECK(sdc_type_bytes(t, (uint64_t)K, &rb64));
    const size_t rb = (size_t)rb64;
    uint8_t *w = malloc(rb * (size_t)N);
    float *wf = malloc((size_t)(N * K) * sizeof(float)), *tmp = malloc((size_t)K * sizeof(float));
    for (int64_t n = 0; n < N; n++) {
        for (int64_t k = 0; k < K; k++) tmp[k] = (float)tu_rng_normal(r);
        sdc_quantize_row(t, tmp, w + (size_t)n * rb, K);
    }
    if (t == SDC_TYPE_Q8_0) w[2] = 0x80; /* a -128 code (files may hold it; the quantizer never writes it) */
    for (int64_t n = 0; n < N; n++) sdc_dequantize_row(t, w + (size_t)n * rb, wf + n * K, K);
    float *x = malloc((size_t)(M * ldx) * sizeof(float)), *bias = with_bias ? malloc((size_t)N * sizeof(float)) : NULL;
    for (int64_t i = 0; i < M * ldx; i++) x[i] = (float)(tu_rng_normal(r) * xscale);
    if (M > 2) memset(x + ldx, 0, (size_t)K * sizeof(float)); /* an all-zero row: exactly the bias */
    for (int64_t n = 0; with_bias && n < N; n++) bias[n] = (float)tu_rng_normal(r);
    const size_t ybytes = (size_t)(M * ldy) * sizeof(float);
    float *ys1 = malloc(ybytes), *ys3 = malloc(ybytes), *yv1 = malloc(ybytes), *yv2 = malloc(ybytes);
    for (size_t i = 0; i < ybytes / 4; i++) ys1[i] = ys3[i] = yv1[i] = yv2[i] = -7.0f; /* ld padding sentinel */

    CHECK(sdc_cpu_linear(cs1, M, N, K, x, ldx, t, w, bias, ys1, ldy) == SDC_OK);
    CHECK(sdc_cpu_linear(cs3, M, N, K, x, ldx, t, w, bias, ys3, ldy) == SDC_OK);
    CHECK_MSG(same_bits(ys1, ys3, M, N, ldy), "%s %lldx%lldx%lld: scalar 1 vs 3 threads", sdc_type_name(t),
              (long long)M, (long long)N, (long long)K);
    if (have_vnni) {
        CHECK(sdc_cpu_linear(cv1, M, N, K, x, ldx, t, w, bias, yv1, ldy) == SDC_OK);
        CHECK(sdc_cpu_linear(cv2, M, N, K, x, ldx, t, w, bias, yv2, ldy) == SDC_OK);
        CHECK_MSG(same_bits(ys1, yv1, M, N, ldy), "%s %lldx%lldx%lld: VNNI vs scalar twin", sdc_type_name(t),
                  (long long)M, (long long)N, (long long)K);
        CHECK_MSG(same_bits(yv1, yv2, M, N, ldy), "%s %lldx%lldx%lld: VNNI 1 vs 2 threads", sdc_type_name(t),
                  (long long)M, (long long)N, (long long)K);
    }
    int64_t bad = 0, pad_bad = 0;
    double worst = 0, max_abs = 0, ss = 0;
    const int64_t nb = K / 32;
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = N; j < ldy; j++) pad_bad += ys1[i * ldy + j] != -7.0f;
        for (int64_t n = 0; n < N; n++) {
            double ref = bias ? bias[n] : 0.0, qb = 0, mag = bias ? fabs(bias[n]) : 0.0;
            for (int64_t b = 0; b < nb; b++) {
                double amax = 0;
                for (int k = 0; k < 32; k++) amax = fmax(amax, fabs(x[i * ldx + b * 32 + k]));
                const double dx = amax / 127;
                for (int k = 0; k < 32; k++) {
                    const double wv = wf[n * K + b * 32 + k], xv = x[i * ldx + b * 32 + k];
                    ref += wv * xv;
                    qb += fabs(wv) * (Q_HALF * dx + Q_REL * fabs(xv));
                    mag += fabs(wv) * (fabs(xv) + dx);
                }
            }
            const double tol = qb + (2.0 * nb + 4) * FP_U * mag * 1.01;
            const double got = ys1[i * ldy + n], err = fabs(got - ref);
            ss += ref * ref;
            if (!(err <= tol)) bad++;
            if (err > max_abs) max_abs = err;
            if (qb > 0 && err / qb > worst) worst = err / qb;
            if (i == 1 && M > 2 && got != (bias ? bias[n] : 0.0f)) bad++;
        }
    }
    const double rms = sqrt(ss / (double)(M * N));
    char label[96];
    snprintf(label, sizeof label, "%s M=%lld N=%lld K=%lld%s", sdc_type_name(t), (long long)M, (long long)N,
             (long long)K, with_bias ? " bias" : "");
    printf("%-40s max_abs=%.3g (%.2g of output rms %.3g) err/bound=%.3f%s\n", label, max_abs, max_abs / rms, rms,
           worst, bad ? " FAIL" : "");
    CHECK_MSG(bad == 0, "%s: %lld outputs beyond the int8 rounding bound", label, (long long)bad);
    CHECK_MSG(pad_bad == 0, "%s: wrote past N in a row", label);
    if (worst > worst_ratio) worst_ratio = worst;
    if (max_abs / rms > worst_rel_rms) worst_rel_rms = max_abs / rms;
    free(w); free(wf); free(tmp); free(x); free(bias); free(ys1); free(ys3); free(yv1); free(yv2);
}

/* A NaN or an infinity in one activation block makes that row's outputs NaN (as fp32 would
 * give NaN or inf), and leaves the other rows as they were. */
static void test_nonfinite(tu_rng *r, sdc_cpu *c) {
    const int64_t M = 9, N = 40, K = 96;
    uint64_t rb;
    sdc_type_bytes(SDC_TYPE_Q4_0, (uint64_t)K, &rb);
    uint8_t *w = malloc((size_t)(rb * N));
    float tmp[96], x[9 * 96], y0[9 * 40], y1[9 * 40];
    for (int64_t n = 0; n < N; n++) {
        for (int k = 0; k < K; k++) tmp[k] = (float)tu_rng_normal(r);
        sdc_quantize_row(SDC_TYPE_Q4_0, tmp, w + n * rb, K);
    }
    for (int i = 0; i < M * K; i++) x[i] = (float)tu_rng_normal(r);
    CHECK(sdc_cpu_linear(c, M, N, K, x, K, SDC_TYPE_Q4_0, w, NULL, y0, N) == SDC_OK);
    x[2 * K + 40] = NAN;
    x[6 * K + 95] = INFINITY;
    CHECK(sdc_cpu_linear(c, M, N, K, x, K, SDC_TYPE_Q4_0, w, NULL, y1, N) == SDC_OK);
    int ok = 1;
    for (int i = 0; i < M; i++)
        for (int n = 0; n < N; n++) {
            const float g = y1[i * N + n];
            if (i == 2 || i == 6) ok &= isnan(g);
            else ok &= memcmp(&g, &y0[i * N + n], 4) == 0;
        }
    CHECK_MSG(ok, "non-finite activations (%s)", sdc_isa_name(c->isa));
    free(w);
}

/* Ineligible weight types, and int8 = 1 without VNNI, run the fp32 GEMM: same bits as int8 off. */
static void test_fallback(tu_rng *r) {
    const int64_t M = 20, N = 24, K = 64;
    sdc_cpu *off = mk(1, SDC_ISA_AVX512, 0), *on = mk(1, SDC_ISA_AVX512, 1);
    sdc_cpu *s_off = mk(1, SDC_ISA_SCALAR, 0), *s_on = mk(1, SDC_ISA_SCALAR, 1);
    float x[20 * 64], y0[20 * 24], y1[20 * 24], tmp[64];
    for (int i = 0; i < M * K; i++) x[i] = (float)tu_rng_normal(r);
    const sdc_type types[] = {SDC_TYPE_F16, SDC_TYPE_Q5_0, SDC_TYPE_Q8_0};
    for (int ti = 0; ti < 3; ti++) {
        const sdc_type t = types[ti];
        uint64_t rb;
        sdc_type_bytes(t, (uint64_t)K, &rb);
        uint8_t *w = malloc((size_t)(rb * N));
        for (int64_t n = 0; n < N; n++) {
            for (int k = 0; k < K; k++) tmp[k] = (float)tu_rng_normal(r);
            sdc_quantize_row(t, tmp, w + n * rb, K);
        }
        if (t != SDC_TYPE_Q8_0) {
            CHECK(!sdc_cpu_linear_int8_eligible(on, t));
            CHECK(sdc_cpu_linear(off, M, N, K, x, K, t, w, NULL, y0, N) == SDC_OK);
            CHECK(sdc_cpu_linear(on, M, N, K, x, K, t, w, NULL, y1, N) == SDC_OK);
            CHECK_MSG(!memcmp(y0, y1, sizeof y0), "%s with int8 on keeps the fp32 path", sdc_type_name(t));
        }
        CHECK(!sdc_cpu_linear_int8_eligible(s_on, t)); /* no VNNI kernel at the scalar ISA */
        CHECK(sdc_cpu_linear(s_off, M, N, K, x, K, t, w, NULL, y0, N) == SDC_OK);
        CHECK(sdc_cpu_linear(s_on, M, N, K, x, K, t, w, NULL, y1, N) == SDC_OK);
        CHECK_MSG(!memcmp(y0, y1, sizeof y0), "%s: int8 = 1 without VNNI keeps the fp32 path", sdc_type_name(t));
        free(w);
    }
    CHECK(sdc_cpu_linear_int8_eligible(on, SDC_TYPE_Q4_1) == (on->vnni != 0));
    sdc_cpu_free(off); sdc_cpu_free(on); sdc_cpu_free(s_off); sdc_cpu_free(s_on);
}

int main(void) {
    cs1 = mk(1, SDC_ISA_SCALAR, 2);
    cs3 = mk(3, SDC_ISA_SCALAR, 2);
    cv1 = mk(1, SDC_ISA_AVX512, 1);
    cv2 = mk(2, SDC_ISA_AVX512, 1);
    if (!cs1 || !cs3 || !cv1 || !cv2) {
        fprintf(stderr, "cannot create CPU contexts\n");
        return 1;
    }
    have_vnni = cv1->vnni;
    printf("VNNI kernel: %s (isa %s)\n", have_vnni ? "tested against the scalar twin" : "absent: scalar twin only",
           sdc_isa_name(cv1->isa));
    tu_rng r = {0x1234567u};
    for (int ti = 0; ti < 3; ti++) {
        const sdc_type t = QTYPES[ti];
        run_case(&r, t, 1, 16, 32, 32, 16, 0, 1.0);
        run_case(&r, t, 7, 45, 96, 100, 47, 1, 1.0);
        run_case(&r, t, 13, 33, 320, 320, 33, 1, 0.01);
        run_case(&r, t, 77, 320, 768, 768, 320, 1, 1.0);   /* cross-attention K/V */
        run_case(&r, t, 103, 70, 64, 64, 70, 0, 3.0);     /* row blocks of 96 + a 7-row rest */
        run_case(&r, t, 200, 160, 320, 330, 161, 1, 1.0); /* several tasks each way */
    }
    printf("worst error / int8 rounding bound: %.3f; worst max error / output rms: %.3g\n", worst_ratio,
           worst_rel_rms);
    test_nonfinite(&r, cs1);
    if (have_vnni) test_nonfinite(&r, cv2);
    test_fallback(&r);
    sdc_cpu_free(cs1); sdc_cpu_free(cs3); sdc_cpu_free(cv1); sdc_cpu_free(cv2);
    return check_done();
}
