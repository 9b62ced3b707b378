/* test_norm.c - group norm (+SiLU) and layer norm against fp64, AVX2 vs scalar twin,
 * 1/2/3 threads bit-identical, in-place, NULL gamma/beta, large means, bad arguments. */
#include <math.h>
#include <stdio.h>

#include "cpu/norm.h"
#include "ops_util.h"

/* Outputs are ~N(0,1)*gamma+beta with |gamma|,|beta| <~ 2: statistics are in double, so the
 * error is a few float roundings of values up to ~10 (observed <~ 1e-6). */
#define NORM_ATOL 4e-6
#define NORM_RTOL 1e-6
/* Twin vs AVX2: both within the fp64 tolerance. */
#define NORM_TWIN_ATOL (2 * NORM_ATOL)

static void ref_group_norm(int64_t B, int64_t C, int64_t HW, int64_t G, double eps, const float *x, const float *g,
                           const float *b, int silu, float *y) {
    int64_t cg = C / G;
    for (int64_t bi = 0; bi < B; bi++)
        for (int64_t gi = 0; gi < G; gi++) {
            const float *xs = x + (bi * C + gi * cg) * HW;
            int64_t n = cg * HW;
            double s = 0, v = 0;
            for (int64_t i = 0; i < n; i++) s += xs[i];
            double m = s / n;
            for (int64_t i = 0; i < n; i++) v += (xs[i] - m) * (xs[i] - m);
            double rstd = 1.0 / sqrt(v / n + eps);
            for (int64_t ch = 0; ch < cg; ch++) {
                int64_t c = gi * cg + ch;
                for (int64_t i = 0; i < HW; i++) {
                    double t = (xs[ch * HW + i] - m) * rstd * (g ? g[c] : 1.0) + (b ? b[c] : 0.0);
                    if (silu) t = t / (1.0 + exp(-t));
                    y[(bi * C + c) * HW + i] = (float)t;
                }
            }
        }
}

static void ref_layer_norm(int64_t M, int64_t C, double eps, const float *x, const float *g, const float *b, float *y) {
    for (int64_t r = 0; r < M; r++) {
        const float *xr = x + r * C;
        double s = 0, v = 0;
        for (int64_t i = 0; i < C; i++) s += xr[i];
        double m = s / C;
        for (int64_t i = 0; i < C; i++) v += (xr[i] - m) * (xr[i] - m);
        double rstd = 1.0 / sqrt(v / C + eps);
        for (int64_t i = 0; i < C; i++) y[r * C + i] = (float)((xr[i] - m) * rstd * (g ? g[i] : 1.0) + (b ? b[i] : 0.0));
    }
}

typedef struct gn_shape { int64_t B, C, HW, G; float eps; int silu, affine; double mean, sd; const char *name; } gn_shape;

static void test_gn(const gn_shape *s, sdc_cpu *simd, sdc_cpu *scalar) {
    int64_t n = s->B * s->C * s->HW;
    tu_rng r = {77 + (uint64_t)n};
    float *x = ops_alloc(n), *y = ops_alloc(n), *y2 = ops_alloc(n), *want = ops_alloc(n);
    float *g = ops_alloc(s->C), *b = ops_alloc(s->C);
    ops_fill_normal(&r, x, n, s->mean, s->sd);
    ops_fill_uniform(&r, g, s->C, -2, 2);
    ops_fill_uniform(&r, b, s->C, -2, 2);
    const float *gp = s->affine ? g : NULL, *bp = s->affine ? b : NULL;
    ref_group_norm(s->B, s->C, s->HW, s->G, s->eps, x, gp, bp, s->silu, want);
    char lab[160];
    CHECK(sdc_cpu_group_norm(simd, s->B, s->C, s->HW, s->G, s->eps, x, gp, bp, s->silu, y) == SDC_OK);
    snprintf(lab, sizeof lab, "gn %s [%s]", s->name, sdc_isa_name(simd->isa));
    CHECK_NEAR(y, want, n, NORM_ATOL, NORM_RTOL, lab);
    CHECK(sdc_cpu_group_norm(scalar, s->B, s->C, s->HW, s->G, s->eps, x, gp, bp, s->silu, y2) == SDC_OK);
    snprintf(lab, sizeof lab, "gn %s [scalar]", s->name);
    CHECK_NEAR(y2, want, n, NORM_ATOL, NORM_RTOL, lab);
    snprintf(lab, sizeof lab, "gn %s avx2 vs scalar", s->name);
    CHECK_NEAR(y, y2, n, NORM_TWIN_ATOL, 2 * NORM_RTOL, lab);
    /* in place */
    memcpy(y2, x, (size_t)n * sizeof *x);
    CHECK(sdc_cpu_group_norm(simd, s->B, s->C, s->HW, s->G, s->eps, y2, gp, bp, s->silu, y2) == SDC_OK);
    snprintf(lab, sizeof lab, "gn %s in place", s->name);
    CHECK_SAME(y, y2, n, lab);
    free(x); free(y); free(y2); free(want); free(g); free(b);
}

typedef struct ln_shape { int64_t M, C; int affine; double mean, sd; const char *name; } ln_shape;

static void test_ln(const ln_shape *s, sdc_cpu *simd, sdc_cpu *scalar) {
    int64_t n = s->M * s->C;
    tu_rng r = {91 + (uint64_t)n};
    float *x = ops_alloc(n), *y = ops_alloc(n), *y2 = ops_alloc(n), *want = ops_alloc(n);
    float *g = ops_alloc(s->C), *b = ops_alloc(s->C);
    ops_fill_normal(&r, x, n, s->mean, s->sd);
    ops_fill_uniform(&r, g, s->C, -2, 2);
    ops_fill_uniform(&r, b, s->C, -2, 2);
    const float *gp = s->affine ? g : NULL, *bp = s->affine ? b : NULL;
    ref_layer_norm(s->M, s->C, 1e-5, x, gp, bp, want);
    char lab[160];
    CHECK(sdc_cpu_layer_norm(simd, s->M, s->C, 1e-5f, x, gp, bp, y) == SDC_OK);
    snprintf(lab, sizeof lab, "ln %s [%s]", s->name, sdc_isa_name(simd->isa));
    CHECK_NEAR(y, want, n, NORM_ATOL, NORM_RTOL, lab);
    CHECK(sdc_cpu_layer_norm(scalar, s->M, s->C, 1e-5f, x, gp, bp, y2) == SDC_OK);
    snprintf(lab, sizeof lab, "ln %s [scalar]", s->name);
    CHECK_NEAR(y2, want, n, NORM_ATOL, NORM_RTOL, lab);
    snprintf(lab, sizeof lab, "ln %s avx2 vs scalar", s->name);
    CHECK_NEAR(y, y2, n, NORM_TWIN_ATOL, 2 * NORM_RTOL, lab);
    memcpy(y2, x, (size_t)n * sizeof *x);
    CHECK(sdc_cpu_layer_norm(simd, s->M, s->C, 1e-5f, y2, gp, bp, y2) == SDC_OK);
    snprintf(lab, sizeof lab, "ln %s in place", s->name);
    CHECK_SAME(y, y2, n, lab);
    free(x); free(y); free(y2); free(want); free(g); free(b);
}

static void test_threads(sdc_isa isa) {
    int64_t B = 2, C = 96, HW = 333, n = B * C * HW, M = 301, LC = 320;
    tu_rng r = {5};
    int64_t nx = n > M * LC ? n : M * LC;
    float *x = ops_alloc(nx), *g = ops_alloc(C), *b = ops_alloc(C), *res[3], *lres[3];
    ops_fill_normal(&r, x, nx, 0.5, 2);
    ops_fill_uniform(&r, g, C, -2, 2);
    ops_fill_uniform(&r, b, C, -2, 2);
    for (int t = 1; t <= 3; t++) {
        sdc_cpu *c = ops_cpu(t, isa);
        res[t - 1] = ops_alloc(n);
        lres[t - 1] = ops_alloc(M * LC);
        CHECK(sdc_cpu_group_norm(c, B, C, HW, 32, 1e-6f, x, g, b, true, res[t - 1]) == SDC_OK);
        CHECK(sdc_cpu_layer_norm(c, M, LC, 1e-5f, x, NULL, NULL, lres[t - 1]) == SDC_OK);
        sdc_cpu_free(c);
    }
    char lab[96];
    snprintf(lab, sizeof lab, "gn threads 1 vs 2 vs 3 [%s]", sdc_isa_name(isa));
    CHECK_SAME(res[0], res[1], n, lab);
    CHECK_SAME(res[0], res[2], n, lab);
    snprintf(lab, sizeof lab, "ln threads 1 vs 2 vs 3 [%s]", sdc_isa_name(isa));
    CHECK_SAME(lres[0], lres[1], M * LC, lab);
    CHECK_SAME(lres[0], lres[2], M * LC, lab);
    for (int t = 0; t < 3; t++) { free(res[t]); free(lres[t]); }
    free(x); free(g); free(b);
}

int main(void) {
    sdc_cpu *simd = ops_cpu(0, SDC_ISA_AVX512);
    sdc_cpu *scalar = ops_cpu(0, SDC_ISA_SCALAR);
    printf("isa: %s, %d threads\n", sdc_isa_name(simd->isa), simd->n_threads);
    int64_t hw64 = 64 * 64, hw_vae = OPS_FULL ? 128 * 128 : 32 * 32;
    gn_shape gs[] = {
        {2, 320, hw64, 32, 1e-5f, 1, 1, 0.0, 1.0, "unet 2x320x64x64 +silu"},
        {2, 320, hw64, 32, 1e-5f, 0, 1, 0.3, 2.0, "unet 2x320x64x64"},
        {1, 1280, 64, 32, 1e-5f, 1, 1, 0.0, 1.0, "unet 1x1280x8x8 +silu"},
        {1, 512, hw_vae, 32, 1e-6f, 1, 1, -0.2, 3.0, "vae 512xHxW eps1e-6 +silu"},
        {1, 6, 37, 3, 1e-5f, 0, 0, 0.0, 1.0, "odd 6x37 G3 no affine"},
        {2, 96, 49, 32, 1e-5f, 1, 1, 0.0, 1.0, "odd 2x96x7x7 +silu"},
        {1, 32, 1, 32, 1e-5f, 0, 1, 0.0, 1.0, "one value per group"},
        {1, 64, 1001, 32, 1e-6f, 0, 1, 100.0, 0.01, "large mean 100, sd 0.01"},
    };
    for (size_t i = 0; i < sizeof gs / sizeof gs[0]; i++) test_gn(&gs[i], simd, scalar);
    ln_shape ls[] = {
        {4096, 320, 1, 0.0, 1.0, "unet 4096x320"},
        {77, 768, 1, 0.1, 3.0, "clip 77x768"},
        {1024, 640, 1, 0.0, 1.0, "unet 1024x640"},
        {5, 13, 0, 0.0, 1.0, "odd 5x13 no affine"},
        {3, 1, 1, 0.0, 1.0, "C=1"},
        {9, 1001, 1, -50.0, 0.01, "large mean -50, sd 0.01"},
    };
    for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++) test_ln(&ls[i], simd, scalar);
    test_threads(simd->isa);
    if (simd->isa != SDC_ISA_SCALAR) test_threads(SDC_ISA_SCALAR);

    float x[64] = {0}, y[64];
    CHECK(sdc_cpu_group_norm(NULL, 1, 32, 2, 32, 1e-5f, x, NULL, NULL, false, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_group_norm(simd, 1, 30, 2, 32, 1e-5f, x, NULL, NULL, false, y) == SDC_E_INVALID); /* C % G */
    CHECK(sdc_cpu_group_norm(simd, 1, 32, 2, 0, 1e-5f, x, NULL, NULL, false, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_group_norm(simd, 1, 32, 2, 32, -1.0f, x, NULL, NULL, false, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_group_norm(simd, 1, 32, 2, 32, NAN, x, NULL, NULL, false, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_group_norm(simd, 1, 32, 2, 32, 1e-5f, NULL, NULL, NULL, false, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_layer_norm(simd, -1, 4, 1e-5f, x, NULL, NULL, y) == SDC_E_INVALID);
    CHECK(sdc_cpu_layer_norm(simd, 2, 4, 1e-5f, x, NULL, NULL, NULL) == SDC_E_INVALID);
    CHECK(sdc_cpu_layer_norm(simd, 0, 4, 1e-5f, x, NULL, NULL, y) == SDC_OK);
    /* a constant group normalises to beta (variance 0, eps keeps it finite) */
    for (int i = 0; i < 64; i++) x[i] = 3.0f;
    CHECK(sdc_cpu_group_norm(simd, 1, 32, 2, 32, 1e-5f, x, NULL, NULL, false, y) == SDC_OK);
    int zero = 1;
    for (int i = 0; i < 64; i++) zero &= y[i] == 0.0f;
    CHECK(zero);

    sdc_cpu_free(simd);
    sdc_cpu_free(scalar);
    return check_done();
}
