/* norm.c - group norm (+SiLU) and layer norm (see norm.h). */
#include "norm.h"

#include <math.h>

#include "vmath.h"

/* ------------------------------------------------------------------ statistics */

/* Mean and biased variance of x[0:n] in one pass (GroupNorm+SiLU over 128 x 512 x 512 took
 * 20.6 ms with two double passes, 16-17 ms so; BENCHMARKS.md): sums of d = x - x[0] and of
 * d^2 in double. Shifting by a sample keeps the cancellation in S2/n - (S1/n)^2 harmless: its
 * relative error is about 2^-52 (mean - x[0])^2 / var, negligible unless x[0] lies ~10^6
 * standard deviations from the mean. */
static void finish_stats(double x0, double s1, double s2, int64_t n, double *mean, double *var) {
    double m = s1 / (double)n, v = s2 / (double)n - m * m;
    *mean = x0 + m;
    *var = v > 0 ? v : 0;
}

static void stats_scalar(const float *x, int64_t n, double *mean, double *var) {
    double x0 = x[0], s1 = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = x[i] - x0;
        s1 += d;
        s2 += d * d;
    }
    finish_stats(x0, s1, s2, n, mean, var);
}

#if SDC_HAVE_X86
/* The same sums: per block of 256 values in float (d and d^2 over 32 values per lane, whose
 * rounding, ~2^-19 relative, is far below the 1e-6 the outputs are held to), each block's
 * totals then added in double. */
SDC_AVX2 static void stats_avx2(const float *x, int64_t n, double *mean, double *var) {
    const float x0 = x[0];
    const __m256 v0 = _mm256_set1_ps(x0);
    __m256d S = _mm256_setzero_pd(), Q = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 256 <= n; i += 256) {
        __m256 s[4], q[4];
        for (int j = 0; j < 4; j++) s[j] = q[j] = _mm256_setzero_ps();
        for (int k = 0; k < 256; k += 32)
            for (int j = 0; j < 4; j++) {
                __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i + k + 8 * j), v0);
                s[j] = _mm256_add_ps(s[j], d);
                q[j] = _mm256_fmadd_ps(d, d, q[j]);
            }
        __m256 ss = _mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3]));
        __m256 qq = _mm256_add_ps(_mm256_add_ps(q[0], q[1]), _mm256_add_ps(q[2], q[3]));
        S = _mm256_add_pd(S, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(ss)),
                                           _mm256_cvtps_pd(_mm256_extractf128_ps(ss, 1))));
        Q = _mm256_add_pd(Q, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(qq)),
                                           _mm256_cvtps_pd(_mm256_extractf128_ps(qq, 1))));
    }
    double s1 = sdc_v_hsum_pd(S), s2 = sdc_v_hsum_pd(Q);
    for (; i < n; i++) {
        double d = (double)x[i] - x0;
        s1 += d;
        s2 += d * d;
    }
    finish_stats(x0, s1, s2, n, mean, var);
}

/* y = ((x - mh) - ml) * a + b over n values, optionally followed by SiLU. The mean is split
 * into a float head mh and tail ml so a large mean does not lose the deviation's bits. */
SDC_AVX2 static void affine_avx2(const float *x, float *y, int64_t n, float mh, float ml, float a, float b,
                                 bool silu) {
    __m256 vm = _mm256_set1_ps(mh), vl = _mm256_set1_ps(ml), va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
    __m256 one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_fmadd_ps(_mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vl), va, vb);
        if (silu) v = _mm256_div_ps(v, _mm256_add_ps(one, sdc_v_exp(_mm256_sub_ps(_mm256_setzero_ps(), v))));
        _mm256_storeu_ps(y + i, v);
    }
    for (; i < n; i++) {
        float v = fmaf((x[i] - mh) - ml, a, b);
        y[i] = silu ? v / (1.0f + expf(-v)) : v;
    }
}

/* Layer-norm row: y = ((x - mh) - ml) * rstd * gamma + beta. */
SDC_AVX2 static void ln_row_avx2(const float *x, float *y, int64_t n, float mh, float ml, float rstd,
                                 const float *g, const float *b) {
    __m256 vm = _mm256_set1_ps(mh), vl = _mm256_set1_ps(ml), vr = _mm256_set1_ps(rstd);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vl), vr);
        __m256 vg = g ? _mm256_loadu_ps(g + i) : _mm256_set1_ps(1.0f);
        __m256 vb = b ? _mm256_loadu_ps(b + i) : _mm256_setzero_ps();
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(v, vg, vb));
    }
    for (; i < n; i++) y[i] = fmaf(((x[i] - mh) - ml) * rstd, g ? g[i] : 1.0f, b ? b[i] : 0.0f);
}
#endif

static void affine_scalar(const float *x, float *y, int64_t n, float mh, float ml, float a, float b, bool silu) {
    for (int64_t i = 0; i < n; i++) {
        float v = ((x[i] - mh) - ml) * a + b;
        y[i] = silu ? v / (1.0f + expf(-v)) : v;
    }
}

static void ln_row_scalar(const float *x, float *y, int64_t n, float mh, float ml, float rstd, const float *g,
                          const float *b) {
    for (int64_t i = 0; i < n; i++) y[i] = ((x[i] - mh) - ml) * rstd * (g ? g[i] : 1.0f) + (b ? b[i] : 0.0f);
}

/* ------------------------------------------------------------------ group norm */

typedef struct gn_ctx {
    int64_t C, HW, G;
    float eps;
    const float *x, *gamma, *beta;
    float *y;
    bool silu;
    int avx2;
} gn_ctx;

static void gn_task(void *vctx, int64_t task, int thread) {
    const gn_ctx *c = vctx;
    int64_t cg = c->C / c->G, b = task / c->G, g = task % c->G;
    int64_t off = (b * c->C + g * cg) * c->HW;
    const float *x = c->x + off;
    float *y = c->y + off;
    double mean, var;
#if SDC_HAVE_X86
    if (c->avx2) stats_avx2(x, cg * c->HW, &mean, &var);
    else
#endif
        stats_scalar(x, cg * c->HW, &mean, &var);
    double rstd = 1.0 / sqrt(var + (double)c->eps);
    float mh = (float)mean, ml = (float)(mean - mh);
    for (int64_t ch = 0; ch < cg; ch++) {
        int64_t gc = g * cg + ch;
        float a = (float)(rstd * (c->gamma ? c->gamma[gc] : 1.0f));
        float bb = c->beta ? c->beta[gc] : 0.0f;
#if SDC_HAVE_X86
        if (c->avx2) affine_avx2(x + ch * c->HW, y + ch * c->HW, c->HW, mh, ml, a, bb, c->silu);
        else
#endif
            affine_scalar(x + ch * c->HW, y + ch * c->HW, c->HW, mh, ml, a, bb, c->silu);
    }
}

sdc_status sdc_cpu_group_norm(sdc_cpu *cpu, int64_t B, int64_t C, int64_t HW, int64_t G, float eps,
                              const float *x, const float *gamma, const float *beta, bool silu, float *y) {
    if (!cpu || !x || !y || B < 0 || C < 0 || HW < 0 || G < 1 || C % G != 0) return SDC_E_INVALID;
    if (!(eps >= 0) || !isfinite(eps)) return SDC_E_INVALID;
    if (B == 0 || C == 0 || HW == 0) return SDC_OK;
    gn_ctx c = {C, HW, G, eps, x, gamma, beta, y, silu, 0};
#if SDC_HAVE_X86
    c.avx2 = cpu->isa >= SDC_ISA_AVX2;
#endif
    sdc_pool_for(cpu->pool, B * G, gn_task, &c);
    return SDC_OK;
}

/* ------------------------------------------------------------------ layer norm */

typedef struct ln_ctx {
    int64_t M, C, rows_per_task;
    float eps;
    const float *x, *gamma, *beta;
    float *y;
    int avx2;
} ln_ctx;

static void ln_task(void *vctx, int64_t task, int thread) {
    const ln_ctx *c = vctx;
    int64_t r0 = task * c->rows_per_task, r1 = r0 + c->rows_per_task < c->M ? r0 + c->rows_per_task : c->M;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = c->x + r * c->C;
        float *y = c->y + r * c->C;
        double mean, var;
#if SDC_HAVE_X86
        if (c->avx2) {
            stats_avx2(x, c->C, &mean, &var);
            float mh = (float)mean, ml = (float)(mean - mh);
            ln_row_avx2(x, y, c->C, mh, ml, (float)(1.0 / sqrt(var + (double)c->eps)), c->gamma, c->beta);
            continue;
        }
#endif
        stats_scalar(x, c->C, &mean, &var);
        float mh = (float)mean, ml = (float)(mean - mh);
        ln_row_scalar(x, y, c->C, mh, ml, (float)(1.0 / sqrt(var + (double)c->eps)), c->gamma, c->beta);
    }
}

sdc_status sdc_cpu_layer_norm(sdc_cpu *cpu, int64_t M, int64_t C, float eps, const float *x,
                              const float *gamma, const float *beta, float *y) {
    if (!cpu || !x || !y || M < 0 || C < 0 || !(eps >= 0) || !isfinite(eps)) return SDC_E_INVALID;
    if (M == 0 || C == 0) return SDC_OK;
    ln_ctx c = {M, C, 0, eps, x, gamma, beta, y, 0};
#if SDC_HAVE_X86
    c.avx2 = cpu->isa >= SDC_ISA_AVX2;
#endif
    c.rows_per_task = C >= 8192 ? 1 : 8192 / C; /* ~32 KiB of input per task */
    sdc_pool_for(cpu->pool, (M + c.rows_per_task - 1) / c.rows_per_task, ln_task, &c);
    return SDC_OK;
}
