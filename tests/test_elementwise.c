/* test_elementwise.c - activations (and the vector exp/exp2/erfc under them), GEGLU,
 * softmax, layout ops, timestep and token embeddings: fp64 references, AVX2 vs scalar
 * twin, 1/2/3 threads bit-identical, bad arguments. */
#include <math.h>
#include <stdio.h>

#include "cpu/elementwise.h"
#include "cpu/vmath.h"
#include "half.h"
#include "ops_util.h"
#include "quant.h"

/* Activations: a few float roundings after a <= 2 ulp exp / erfc: 1e-6 relative (~8 ulp),
 * plus 1e-30 absolute for results that underflow. */
#define ACT_RTOL 1e-6
#define ACT_ATOL 1e-30
/* quick_gelu's 1.702f*x is rounded in float (as torch does) before exp: the argument error
 * |1.702x| * 2^-24 becomes relative error of sigmoid's tail: allow 4e-6 relative. */
#define QGELU_RTOL 4e-6
/* Softmax rows: exp <= 2 ulp and a float sum give ~1e-7; but x - max is rounded in float (as
 * torch does), a relative error of |x - max| * 2^-24 in the weight: <= 2e-6 while
 * |x - max| <= 32, and weights past that are < 1.3e-14, covered by 1e-12 absolute. */
#define SOFTMAX_RTOL 2e-6
#define SOFTMAX_ATOL 1e-12
/* Timestep embedding vs the ideal fp64 formula: torch rounds freq and t*freq to float,
 * so arguments up to ~1000 rad carry ~3e-5 error: 1e-4 absolute. vs a float replica: 1 ulp. */
#define TEMB_ATOL_IDEAL 1e-4
#define TEMB_ATOL_REPLICA 1.2e-7

static double ulp_err(double got, double want) {
    if (got == want) return 0;
    int e;
    frexp(want, &e);
    double ulp = ldexp(1.0, e - 24);
    if (want == 0 || fabs(want) < 1.1754943508222875e-38) ulp = ldexp(1.0, -149);
    return fabs(got - want) / ulp;
}

#if SDC_HAVE_X86
/* max ulp error of sdc_v_exp / sdc_v_exp2 / sdc_v_erfc_pos over a dense sweep */
SDC_AVX2 static double sweep_exp(double lo, double hi, int64_t n, int which) {
    double worst = 0;
    float xs[8], ys[8];
    for (int64_t i = 0; i < n; i += 8) {
        for (int k = 0; k < 8; k++) xs[k] = (float)(lo + (hi - lo) * (double)(i + k) / (double)n);
        __m256 x = _mm256_loadu_ps(xs), y;
        if (which == 0) y = sdc_v_exp(x);
        else if (which == 1) y = sdc_v_exp2(x);
        else y = sdc_v_erfc_pos(x, _mm256_setzero_ps());
        _mm256_storeu_ps(ys, y);
        for (int k = 0; k < 8; k++) {
            double want = which == 0 ? exp((double)xs[k]) : which == 1 ? exp2((double)xs[k]) : erfc((double)xs[k]);
            if (want < 1e-30 && which == 2) continue; /* erfc tail far below any use */
            if (want < 1.1754943508222875e-38) continue; /* denormal results: checked by abs below */
            double e = ulp_err(ys[k], want);
            if (e > worst) worst = e;
        }
    }
    return worst;
}

static void test_vmath(void) {
    double e = sweep_exp(-87.0, 88.7, 1 << 22, 0);
    printf("sdc_v_exp  on [-87, 88.7]: max %.2f ulp\n", e);
    CHECK(e <= 2.0);
    e = sweep_exp(-126.0, 0.0, 1 << 22, 1);
    printf("sdc_v_exp2 on [-126, 0]:   max %.2f ulp\n", e);
    CHECK(e <= 2.0);
    e = sweep_exp(0.0, 10.0, 1 << 22, 2);
    printf("sdc_v_erfc on [0, 10] (erfc >= 1e-30): max %.2f ulp\n", e);
    CHECK(e <= 16.0); /* ~1e-6 relative: the fit (9e-9) plus float evaluation of P(t) */
}
#endif

typedef enum { A_SILU, A_GELU, A_QGELU } act;

static double act_ref(act a, double x) {
    switch (a) {
    case A_SILU: return x / (1.0 + exp(-x));
    case A_GELU: return 0.5 * x * erfc(-x / sqrt(2.0));
    default: return x / (1.0 + exp(-1.702 * x));
    }
}

static sdc_status act_run(act a, sdc_cpu *c, int64_t n, const float *x, float *y) {
    switch (a) {
    case A_SILU: return sdc_cpu_silu(c, n, x, y);
    case A_GELU: return sdc_cpu_gelu(c, n, x, y);
    default: return sdc_cpu_quick_gelu(c, n, x, y);
    }
}

static void test_act(act a, const char *name, sdc_cpu *simd, sdc_cpu *scalar) {
    /* a dense sweep of [-30, 30], specials, and an odd length for the tail path */
    int64_t n = 600001 + 5;
    float *x = ops_alloc(n), *y = ops_alloc(n), *y2 = ops_alloc(n), *want = ops_alloc(n);
    for (int64_t i = 0; i < n - 5; i++) x[i] = (float)(-30.0 + 60.0 * (double)i / (double)(n - 6));
    x[n - 5] = 0.0f; x[n - 4] = -0.0f; x[n - 3] = 1e-30f; x[n - 2] = -100.0f; x[n - 1] = 100.0f;
    for (int64_t i = 0; i < n; i++) want[i] = (float)act_ref(a, x[i]);
    double rtol = a == A_QGELU ? QGELU_RTOL : ACT_RTOL;
    char lab[96];
    CHECK(act_run(a, simd, n, x, y) == SDC_OK);
    snprintf(lab, sizeof lab, "%s [%s]", name, sdc_isa_name(simd->isa));
    CHECK_NEAR(y, want, n, ACT_ATOL, rtol, lab);
    CHECK(act_run(a, scalar, n, x, y2) == SDC_OK);
    snprintf(lab, sizeof lab, "%s [scalar]", name);
    CHECK_NEAR(y2, want, n, ACT_ATOL, rtol, lab);
    snprintf(lab, sizeof lab, "%s avx2 vs scalar", name);
    CHECK_NEAR(y, y2, n, ACT_ATOL, 2 * rtol, lab);
    /* odd lengths 1..17 (tails) and in place */
    for (int64_t m = 1; m <= 17; m++) {
        memcpy(y2, x + 1000, (size_t)m * sizeof *x);
        CHECK(act_run(a, simd, m, y2, y2) == SDC_OK);
        CHECK(act_run(a, simd, m, x + 1000, y) == SDC_OK);
        CHECK(memcmp(y, y2, (size_t)m * sizeof *y) == 0);
    }
    free(x); free(y); free(y2); free(want);
}

static void test_geglu(int64_t M, int64_t F, sdc_cpu *simd, sdc_cpu *scalar) {
    tu_rng r = {(uint64_t)(M * 131 + F)};
    float *x = ops_alloc(M * 2 * F), *y = ops_alloc(M * F), *y2 = ops_alloc(M * F), *want = ops_alloc(M * F);
    ops_fill_normal(&r, x, M * 2 * F, 0, 2);
    for (int64_t m = 0; m < M; m++)
        for (int64_t f = 0; f < F; f++) {
            double h = x[m * 2 * F + f], g = x[m * 2 * F + F + f];
            want[m * F + f] = (float)(h * 0.5 * g * erfc(-g / sqrt(2.0)));
        }
    char lab[96];
    CHECK(sdc_cpu_geglu(simd, M, F, x, y) == SDC_OK);
    snprintf(lab, sizeof lab, "geglu %lldx%lld [%s]", (long long)M, (long long)(2 * F), sdc_isa_name(simd->isa));
    CHECK_NEAR(y, want, M * F, ACT_ATOL, ACT_RTOL, lab);
    CHECK(sdc_cpu_geglu(scalar, M, F, x, y2) == SDC_OK);
    snprintf(lab, sizeof lab, "geglu %lldx%lld [scalar]", (long long)M, (long long)(2 * F));
    CHECK_NEAR(y2, want, M * F, ACT_ATOL, ACT_RTOL, lab);
    free(x); free(y); free(y2); free(want);
}

static void test_softmax(int64_t M, int64_t N, double sd, sdc_cpu *simd, sdc_cpu *scalar) {
    tu_rng r = {(uint64_t)(M * 7 + N)};
    float *x = ops_alloc(M * N), *y = ops_alloc(M * N), *y2 = ops_alloc(M * N), *want = ops_alloc(M * N);
    ops_fill_normal(&r, x, M * N, 3, sd);
    for (int64_t m = 0; m < M; m++) {
        double mx = -INFINITY, s = 0;
        for (int64_t j = 0; j < N; j++) mx = fmax(mx, x[m * N + j]);
        for (int64_t j = 0; j < N; j++) s += exp(x[m * N + j] - mx);
        for (int64_t j = 0; j < N; j++) want[m * N + j] = (float)(exp(x[m * N + j] - mx) / s);
    }
    char lab[96];
    CHECK(sdc_cpu_softmax(simd, M, N, x, y) == SDC_OK);
    snprintf(lab, sizeof lab, "softmax %lldx%lld sd %.0f [%s]", (long long)M, (long long)N, sd, sdc_isa_name(simd->isa));
    CHECK_NEAR(y, want, M * N, SOFTMAX_ATOL, SOFTMAX_RTOL, lab);
    CHECK(sdc_cpu_softmax(scalar, M, N, x, y2) == SDC_OK);
    snprintf(lab, sizeof lab, "softmax %lldx%lld sd %.0f [scalar]", (long long)M, (long long)N, sd);
    CHECK_NEAR(y2, want, M * N, SOFTMAX_ATOL, SOFTMAX_RTOL, lab);
    memcpy(y2, x, (size_t)(M * N) * sizeof *x);
    CHECK(sdc_cpu_softmax(simd, M, N, y2, y2) == SDC_OK);
    CHECK(memcmp(y, y2, (size_t)(M * N) * sizeof *y) == 0);
    free(x); free(y); free(y2); free(want);
}

static void test_layout(sdc_cpu *cpu) {
    tu_rng r = {3};
    int64_t B = 2, C = 5, H = 7, W = 9, C2 = 3, HW = H * W;
    float *x = ops_alloc(B * C * HW), *x2 = ops_alloc(B * C2 * HW), *y = ops_alloc(B * (C + C2) * 4 * HW);
    float *want = ops_alloc(B * (C + C2) * 4 * HW), *bias = ops_alloc(B * C);
    ops_fill_normal(&r, x, B * C * HW, 0, 1);
    ops_fill_normal(&r, x2, B * C2 * HW, 0, 1);
    ops_fill_normal(&r, bias, B * C, 0, 1);

    CHECK(sdc_cpu_upsample_nearest2x(cpu, B, C, H, W, x, y) == SDC_OK);
    for (int64_t p = 0; p < B * C; p++)
        for (int64_t i = 0; i < 2 * H; i++)
            for (int64_t j = 0; j < 2 * W; j++) want[(p * 2 * H + i) * 2 * W + j] = x[(p * H + i / 2) * W + j / 2];
    CHECK_SAME(y, want, B * C * 4 * HW, "upsample_nearest2x 2x5x7x9");

    CHECK(sdc_cpu_concat(cpu, B, C, C2, HW, x, x2, y) == SDC_OK);
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C + C2; c++)
            for (int64_t i = 0; i < HW; i++)
                want[(b * (C + C2) + c) * HW + i] = c < C ? x[(b * C + c) * HW + i] : x2[(b * C2 + c - C) * HW + i];
    CHECK_SAME(y, want, B * (C + C2) * HW, "concat [2,5,63]+[2,3,63]");
    CHECK(sdc_cpu_concat(cpu, B, 0, C2, HW, NULL, x2, y) == SDC_OK);
    CHECK_SAME(y, x2, B * C2 * HW, "concat with C1 = 0");

    int64_t n = B * C * HW;
    CHECK(sdc_cpu_add(cpu, n - 1, x, x + 1, y) == SDC_OK);
    for (int64_t i = 0; i < n - 1; i++) want[i] = x[i] + x[i + 1];
    CHECK_SAME(y, want, n - 1, "add");
    CHECK(sdc_cpu_mul(cpu, n - 1, x, x + 1, y) == SDC_OK);
    for (int64_t i = 0; i < n - 1; i++) want[i] = x[i] * x[i + 1];
    CHECK_SAME(y, want, n - 1, "mul");
    CHECK(sdc_cpu_scale(cpu, n, x, 0.18215f, y) == SDC_OK);
    for (int64_t i = 0; i < n; i++) want[i] = x[i] * 0.18215f;
    CHECK_SAME(y, want, n, "scale");
    CHECK(sdc_cpu_add_channel_bias(cpu, B, C, HW, x, bias, y) == SDC_OK);
    for (int64_t p = 0; p < B * C; p++)
        for (int64_t i = 0; i < HW; i++) want[p * HW + i] = x[p * HW + i] + bias[p];
    CHECK_SAME(y, want, n, "add_channel_bias");
    memcpy(y, x, (size_t)n * sizeof *x);
    CHECK(sdc_cpu_add_channel_bias(cpu, B, C, HW, y, bias, y) == SDC_OK);
    CHECK_SAME(y, want, n, "add_channel_bias in place");

    /* large: several tasks */
    int64_t big = 1000003;
    float *a = ops_alloc(big), *b = ops_alloc(big), *o = ops_alloc(big);
    ops_fill_normal(&r, a, big, 0, 1);
    ops_fill_normal(&r, b, big, 0, 1);
    CHECK(sdc_cpu_add(cpu, big, a, b, o) == SDC_OK);
    int ok = 1;
    for (int64_t i = 0; i < big; i++) ok &= o[i] == a[i] + b[i];
    CHECK_MSG(ok, "add over 1000003 values");
    free(a); free(b); free(o);
    free(x); free(x2); free(y); free(want); free(bias);
}

static void test_timestep(sdc_cpu *cpu) {
    float t[5] = {0.0f, 1.0f, 999.0f, 500.5f, 37.25f};
    int64_t dims[2] = {320, 7};
    for (int k = 0; k < 2; k++) {
        int64_t dim = dims[k], half = dim / 2;
        float *y = ops_alloc(5 * dim), *ideal = ops_alloc(5 * dim), *rep = ops_alloc(5 * dim);
        CHECK(sdc_cpu_timestep_embedding(cpu, 5, dim, 10000.0f, t, y) == SDC_OK);
        for (int r = 0; r < 5; r++) {
            for (int64_t i = 0; i < half; i++) {
                double f = exp(-log(10000.0) * (double)i / (double)half);
                ideal[r * dim + i] = (float)cos(t[r] * f);
                ideal[r * dim + half + i] = (float)sin(t[r] * f);
                /* float replica of torch's order */
                float e = (float)-log(10000.0) * (float)i;
                e = e / (float)half;
                float arg = t[r] * expf(e);
                rep[r * dim + i] = (float)cos((double)arg);
                rep[r * dim + half + i] = (float)sin((double)arg);
            }
            if (dim % 2) ideal[r * dim + dim - 1] = rep[r * dim + dim - 1] = 0;
        }
        char lab[96];
        snprintf(lab, sizeof lab, "timestep_embedding dim %lld vs fp64", (long long)dim);
        CHECK_NEAR(y, ideal, 5 * dim, TEMB_ATOL_IDEAL, 0, lab);
        snprintf(lab, sizeof lab, "timestep_embedding dim %lld vs f32 replica", (long long)dim);
        CHECK_NEAR(y, rep, 5 * dim, TEMB_ATOL_REPLICA, 0, lab);
        free(y); free(ideal); free(rep);
    }
    /* t = 0: cos half is 1, sin half is 0 */
    float y0[320];
    CHECK(sdc_cpu_timestep_embedding(cpu, 1, 320, 10000.0f, t, y0) == SDC_OK);
    CHECK(y0[0] == 1.0f && y0[159] == 1.0f && y0[160] == 0.0f && y0[319] == 0.0f);
    CHECK(sdc_cpu_timestep_embedding(cpu, 1, 0, 10000.0f, t, y0) == SDC_E_INVALID);
    CHECK(sdc_cpu_timestep_embedding(cpu, 1, 320, 0.0f, t, y0) == SDC_E_INVALID);
}

static void test_embed(sdc_cpu *cpu) {
    int64_t V = 50, D = 64;
    tu_rng r = {11};
    float *tab = ops_alloc(V * D), *y = ops_alloc(4 * D), *want = ops_alloc(4 * D);
    ops_fill_normal(&r, tab, V * D, 0, 1);
    int32_t ids[4] = {0, 49, 7, 7};
    for (int i = 0; i < 4; i++) memcpy(want + i * D, tab + ids[i] * D, (size_t)D * sizeof *tab);
    CHECK(sdc_cpu_embed(cpu, SDC_TYPE_F32, tab, V, D, 4, ids, y) == SDC_OK);
    CHECK_SAME(y, want, 4 * D, "embed f32");

    uint16_t *h = malloc((size_t)(V * D) * sizeof *h);
    for (int64_t i = 0; i < V * D; i++) h[i] = sdc_f32_to_f16(tab[i]);
    for (int i = 0; i < 4; i++)
        for (int64_t j = 0; j < D; j++) want[i * D + j] = sdc_f16_to_f32(h[ids[i] * D + j]);
    CHECK(sdc_cpu_embed(cpu, SDC_TYPE_F16, h, V, D, 4, ids, y) == SDC_OK);
    CHECK_SAME(y, want, 4 * D, "embed f16");

    /* Q8_0 rows: compare with the reference dequantizer row by row */
    uint64_t rb;
    CHECK(sdc_type_bytes(SDC_TYPE_Q8_0, (uint64_t)D, &rb));
    unsigned char *q = malloc((size_t)(rb * (uint64_t)V));
    int qok = 1;
    for (int64_t i = 0; i < V; i++) qok &= sdc_quantize_row(SDC_TYPE_Q8_0, tab + i * D, q + i * rb, D);
    CHECK(qok);
    if (qok) {
        for (int i = 0; i < 4; i++) CHECK(sdc_dequantize_row(SDC_TYPE_Q8_0, q + ids[i] * rb, want + i * D, D));
        CHECK(sdc_cpu_embed(cpu, SDC_TYPE_Q8_0, q, V, D, 4, ids, y) == SDC_OK);
        CHECK_SAME(y, want, 4 * D, "embed q8_0");
    }
    int32_t bad[2] = {3, 50};
    CHECK(sdc_cpu_embed(cpu, SDC_TYPE_F32, tab, V, D, 2, bad, y) == SDC_E_INVALID);
    bad[1] = -1;
    CHECK(sdc_cpu_embed(cpu, SDC_TYPE_F32, tab, V, D, 2, bad, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_embed(cpu, SDC_TYPE_Q8_0, q, V, 33, 1, ids, y) == SDC_E_INVALID); /* not a block multiple */
    CHECK(sdc_cpu_embed(cpu, SDC_TYPE_I32, tab, V, D, 1, ids, y) == SDC_E_INVALID);
    free(tab); free(y); free(want); free(h); free(q);
}

static void test_threads(sdc_isa isa) {
    int64_t M = 300, F = 1283, n = M * 2 * F;
    tu_rng r = {8};
    float *x = ops_alloc(n), *res[3][3];
    ops_fill_normal(&r, x, n, 0, 3);
    for (int t = 1; t <= 3; t++) {
        sdc_cpu *c = ops_cpu(t, isa);
        for (int k = 0; k < 3; k++) res[t - 1][k] = ops_alloc(n);
        CHECK(sdc_cpu_geglu(c, M, F, x, res[t - 1][0]) == SDC_OK);
        CHECK(sdc_cpu_softmax(c, M, 2 * F, x, res[t - 1][1]) == SDC_OK);
        CHECK(sdc_cpu_silu(c, n, x, res[t - 1][2]) == SDC_OK);
        sdc_cpu_free(c);
    }
    const char *names[3] = {"geglu", "softmax", "silu"};
    int64_t sizes[3] = {M * F, n, n};
    for (int k = 0; k < 3; k++) {
        char lab[96];
        snprintf(lab, sizeof lab, "%s threads 1 vs 2 vs 3 [%s]", names[k], sdc_isa_name(isa));
        CHECK_SAME(res[0][k], res[1][k], sizes[k], lab);
        CHECK_SAME(res[0][k], res[2][k], sizes[k], lab);
    }
    for (int t = 0; t < 3; t++)
        for (int k = 0; k < 3; k++) free(res[t][k]);
    free(x);
}

int main(void) {
    sdc_cpu *simd = ops_cpu(0, SDC_ISA_AVX512);
    sdc_cpu *scalar = ops_cpu(0, SDC_ISA_SCALAR);
    printf("isa: %s, %d threads\n", sdc_isa_name(simd->isa), simd->n_threads);
#if SDC_HAVE_X86
    if (ops_have_avx2()) test_vmath();
#endif
    test_act(A_SILU, "silu", simd, scalar);
    test_act(A_GELU, "gelu", simd, scalar);
    test_act(A_QGELU, "quick_gelu", simd, scalar);
    test_geglu(OPS_FULL ? 4096 : 256, 1280, simd, scalar);
    test_geglu(3, 13, simd, scalar);
    test_geglu(1, 1, simd, scalar);
    test_softmax(8, 77, 1, simd, scalar);
    test_softmax(3, 1001, 20, simd, scalar);
    test_softmax(5, 3, 1, simd, scalar);
    test_layout(simd);
    test_timestep(simd);
    test_embed(simd);
    test_threads(simd->isa);
    if (simd->isa != SDC_ISA_SCALAR) test_threads(SDC_ISA_SCALAR);

    float x[8] = {0}, y[8];
    CHECK(sdc_cpu_silu(NULL, 8, x, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_gelu(simd, -1, x, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_geglu(simd, 1, 4, NULL, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_softmax(simd, 1, 8, x, NULL) == SDC_E_INVALID);
    CHECK(sdc_cpu_upsample_nearest2x(simd, 1, 1, -2, 2, x, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_concat(simd, 1, 2, 2, 2, NULL, x, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_add_channel_bias(simd, 1, 2, 4, x, NULL, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_silu(simd, 0, x, y) == SDC_OK);

    sdc_cpu_free(simd);
    sdc_cpu_free(scalar);
    return check_done();
}
