/* norm.c - group norm (+SiLU) and layer norm (see norm.h). */
#include "norm.h"

#include <math.h>

#include "vmath.h"

/* ------------------------------------------------------------------ statistics */

/* mean and biased variance of x[0:n] in double (two passes). */
static void stats_scalar(const float *x, int64_t n, double *mean, double *var) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    double m = s / (double)n, v = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = x[i] - m;
        v += d * d;
    }
    *mean = m;
    *var = v / (double)n;
}

#if SDC_HAVE_X86
SDC_AVX2 static void stats_avx2(const float *x, int64_t n, double *mean, double *var) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd(), s2 = _mm256_setzero_pd(), s3 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(a)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
        s2 = _mm256_add_pd(s2, _mm256_cvtps_pd(_mm256_castps256_ps128(b)));
        s3 = _mm256_add_pd(s3, _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1)));
    }
    double s = sdc_v_hsum_pd(_mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
    for (; i < n; i++) s += x[i];
    double m = s / (double)n;
    __m256d vm = _mm256_set1_pd(m);
    s0 = s1 = s2 = s3 = _mm256_setzero_pd();
    for (i = 0; i + 16 <= n; i += 16) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)), vm);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)), vm);
        __m256d d2 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(b)), vm);
        __m256d d3 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(b, 1)), vm);
        s0 = _mm256_fmadd_pd(d0, d0, s0);
        s1 = _mm256_fmadd_pd(d1, d1, s1);
        s2 = _mm256_fmadd_pd(d2, d2, s2);
        s3 = _mm256_fmadd_pd(d3, d3, s3);
    }
    double v = sdc_v_hsum_pd(_mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
    for (; i < n; i++) {
        double d = x[i] - m;
        v += d * d;
    }
    *mean = m;
    *var = v / (double)n;
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
