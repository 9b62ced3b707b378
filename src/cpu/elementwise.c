/* elementwise.c - activations, GEGLU, softmax, layout ops, timestep and token embeddings
 * (see elementwise.h). Work is split into fixed chunks of CHUNK values (or whole rows /
 * planes), so every output element has one owner and one formula whatever the threads. */
#include "elementwise.h"

#include <math.h>
#include <string.h>

#include "quant.h"
#include "vmath.h"

#define CHUNK 16384
#define SQRT1_2 0.70710678118654752440

/* ------------------------------------------------------------------ scalar twins */

static inline float silu_s(float x) { return x / (1.0f + expf(-x)); }
static inline float qgelu_s(float x) { return x / (1.0f + expf(-1.702f * x)); }
/* exact-erf GELU, evaluated in double (the reference the AVX2 path is held to) */
static inline float gelu_s(float x) { return (float)(0.5 * x * erfc(-(double)x * SQRT1_2)); }

typedef enum act_kind { ACT_SILU, ACT_GELU, ACT_QGELU } act_kind;

static void act_scalar(act_kind k, const float *x, float *y, int64_t n) {
    switch (k) {
    case ACT_SILU: for (int64_t i = 0; i < n; i++) y[i] = silu_s(x[i]); break;
    case ACT_GELU: for (int64_t i = 0; i < n; i++) y[i] = gelu_s(x[i]); break;
    case ACT_QGELU: for (int64_t i = 0; i < n; i++) y[i] = qgelu_s(x[i]); break;
    }
}

/* ------------------------------------------------------------------ AVX2 */
#if SDC_HAVE_X86

/* Lane mask for the first n (< 8) lanes. */
SDC_AVX2_INLINE __m256i tail_mask(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

SDC_AVX2_INLINE __m256 silu_v(__m256 x) {
    __m256 e = sdc_v_exp(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

SDC_AVX2_INLINE __m256 qgelu_v(__m256 x) {
    __m256 e = sdc_v_exp(_mm256_mul_ps(x, _mm256_set1_ps(-1.702f)));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* gelu(x) = 0.5 x erfc(-x/sqrt2) = 0.5 x (2 - erfc(|x|/sqrt2)) for x >= 0. */
SDC_AVX2_INLINE __m256 gelu_v(__m256 x) {
    const __m256 c_hi = _mm256_set1_ps((float)SQRT1_2);
    const __m256 c_lo = _mm256_set1_ps((float)(SQRT1_2 - (double)(float)SQRT1_2));
    __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    __m256 z = _mm256_mul_ps(ax, c_hi);
    __m256 dz = _mm256_fmadd_ps(ax, c_lo, _mm256_fmsub_ps(ax, c_hi, z)); /* |x|/sqrt2 - z */
    __m256 e = sdc_v_erfc_pos(z, dz);
    __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
    __m256 w = _mm256_blendv_ps(e, _mm256_sub_ps(_mm256_set1_ps(2.0f), e), pos);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), w);
}

SDC_AVX2_INLINE __m256 act_v(act_kind k, __m256 x) {
    switch (k) {
    case ACT_SILU: return silu_v(x);
    case ACT_GELU: return gelu_v(x);
    default: return qgelu_v(x);
    }
}

SDC_AVX2 static void act_avx2(act_kind k, const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, act_v(k, _mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, m, act_v(k, _mm256_maskload_ps(x + i, m)));
    }
}

SDC_AVX2 static void geglu_row_avx2(const float *x, float *y, int64_t F) {
    int64_t i = 0;
    for (; i + 8 <= F; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), gelu_v(_mm256_loadu_ps(x + F + i))));
    if (i < F) {
        __m256i m = tail_mask(F - i);
        __m256 h = _mm256_maskload_ps(x + i, m), g = _mm256_maskload_ps(x + F + i, m);
        _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(h, gelu_v(g)));
    }
}

SDC_AVX2 static void softmax_row_avx2(const float *x, float *y, int64_t n) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 vm = ninf;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    __m256i tm = tail_mask(n - i);
    if (i < n) vm = _mm256_max_ps(vm, _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, tm), _mm256_castsi256_ps(tm)));
    __m256 mx = _mm256_set1_ps(sdc_v_hmax(vm)), sum = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = sdc_v_exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), mx));
        _mm256_storeu_ps(y + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (i < n) {
        __m256 e = _mm256_and_ps(sdc_v_exp(_mm256_sub_ps(_mm256_maskload_ps(x + i, tm), mx)), _mm256_castsi256_ps(tm));
        _mm256_maskstore_ps(y + i, tm, e);
        sum = _mm256_add_ps(sum, e);
    }
    __m256 inv = _mm256_set1_ps(1.0f / sdc_v_hsum(sum));
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), inv));
    for (; i < n; i++) y[i] *= _mm256_cvtss_f32(inv);
}
#endif

static void softmax_row_scalar(const float *x, float *y, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        y[i] = expf(x[i] - mx);
        sum += y[i];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) y[i] *= inv;
}

/* ------------------------------------------------------------------ the parallel driver */

typedef enum ew_op {
    EW_ACT, EW_GEGLU, EW_SOFTMAX, EW_ADD, EW_MUL, EW_SCALE, EW_BIAS, EW_UPSAMPLE, EW_CONCAT
} ew_op;

typedef struct ew_ctx {
    ew_op op;
    act_kind act;
    int avx2;
    int64_t n, rows, cols, per_task; /* n values, or rows x cols with per_task rows a task */
    int64_t B, C, C2, H, W, HW;
    const float *a, *b;
    float *y;
    float s;
} ew_ctx;

static void ew_task(void *vctx, int64_t task, int thread) {
    const ew_ctx *c = vctx;
    int64_t i0 = task * c->per_task;
    switch (c->op) {
    case EW_ACT: {
        int64_t n = c->n - i0 < c->per_task ? c->n - i0 : c->per_task;
#if SDC_HAVE_X86
        if (c->avx2) { act_avx2(c->act, c->a + i0, c->y + i0, n); break; }
#endif
        act_scalar(c->act, c->a + i0, c->y + i0, n);
        break;
    }
    case EW_GEGLU:
    case EW_SOFTMAX: {
        int64_t r1 = i0 + c->per_task < c->rows ? i0 + c->per_task : c->rows;
        for (int64_t r = i0; r < r1; r++) {
            if (c->op == EW_GEGLU) {
                const float *x = c->a + r * 2 * c->cols;
                float *y = c->y + r * c->cols;
#if SDC_HAVE_X86
                if (c->avx2) { geglu_row_avx2(x, y, c->cols); continue; }
#endif
                for (int64_t i = 0; i < c->cols; i++) y[i] = x[i] * gelu_s(x[c->cols + i]);
            } else {
#if SDC_HAVE_X86
                if (c->avx2) { softmax_row_avx2(c->a + r * c->cols, c->y + r * c->cols, c->cols); continue; }
#endif
                softmax_row_scalar(c->a + r * c->cols, c->y + r * c->cols, c->cols);
            }
        }
        break;
    }
    case EW_ADD: case EW_MUL: case EW_SCALE: {
        int64_t i1 = i0 + c->per_task < c->n ? i0 + c->per_task : c->n;
        const float *a = c->a, *b = c->b;
        float *y = c->y;
        if (c->op == EW_ADD) for (int64_t i = i0; i < i1; i++) y[i] = a[i] + b[i];
        else if (c->op == EW_MUL) for (int64_t i = i0; i < i1; i++) y[i] = a[i] * b[i];
        else for (int64_t i = i0; i < i1; i++) y[i] = a[i] * c->s;
        break;
    }
    case EW_BIAS: { /* tasks over planes (b, c) */
        int64_t p1 = i0 + c->per_task < c->B * c->C ? i0 + c->per_task : c->B * c->C;
        for (int64_t p = i0; p < p1; p++) {
            const float *x = c->a + p * c->HW;
            float *y = c->y + p * c->HW, v = c->b[p];
            for (int64_t i = 0; i < c->HW; i++) y[i] = x[i] + v;
        }
        break;
    }
    case EW_UPSAMPLE: { /* tasks over planes */
        int64_t p1 = i0 + c->per_task < c->B * c->C ? i0 + c->per_task : c->B * c->C;
        for (int64_t p = i0; p < p1; p++) {
            const float *x = c->a + p * c->H * c->W;
            float *y = c->y + p * 4 * c->H * c->W;
            for (int64_t h = 0; h < c->H; h++) {
                float *r0 = y + 2 * h * 2 * c->W;
                for (int64_t w = 0; w < c->W; w++) r0[2 * w] = r0[2 * w + 1] = x[h * c->W + w];
                memcpy(r0 + 2 * c->W, r0, (size_t)(2 * c->W) * sizeof *r0);
            }
        }
        break;
    }
    case EW_CONCAT: { /* task = (batch, part) */
        int64_t b = task / 2, part = task % 2;
        float *y = c->y + b * (c->C + c->C2) * c->HW;
        if (part == 0 && c->C > 0) memcpy(y, c->a + b * c->C * c->HW, (size_t)(c->C * c->HW) * sizeof *y);
        else if (part == 1 && c->C2 > 0) memcpy(y + c->C * c->HW, c->b + b * c->C2 * c->HW, (size_t)(c->C2 * c->HW) * sizeof *y);
        break;
    }
    }
}

static void ew_init(ew_ctx *c, sdc_cpu *cpu, ew_op op) {
    memset(c, 0, sizeof *c);
    c->op = op;
#if SDC_HAVE_X86
    c->avx2 = cpu->isa >= SDC_ISA_AVX2;
#endif
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Rows per task so a task covers about CHUNK values. */
static int64_t rows_per_task(int64_t cols) { return cols >= CHUNK ? 1 : CHUNK / (cols > 0 ? cols : 1); }

static sdc_status run_act(sdc_cpu *cpu, act_kind k, int64_t n, const float *x, float *y) {
    if (!cpu || !x || !y || n < 0) return SDC_E_INVALID;
    ew_ctx c;
    ew_init(&c, cpu, EW_ACT);
    c.act = k; c.n = n; c.per_task = CHUNK; c.a = x; c.y = y;
    sdc_pool_for(cpu->pool, ceil_div(n, CHUNK), ew_task, &c);
    return SDC_OK;
}

sdc_status sdc_cpu_silu(sdc_cpu *cpu, int64_t n, const float *x, float *y) { return run_act(cpu, ACT_SILU, n, x, y); }
sdc_status sdc_cpu_gelu(sdc_cpu *cpu, int64_t n, const float *x, float *y) { return run_act(cpu, ACT_GELU, n, x, y); }
sdc_status sdc_cpu_quick_gelu(sdc_cpu *cpu, int64_t n, const float *x, float *y) {
    return run_act(cpu, ACT_QGELU, n, x, y);
}

sdc_status sdc_cpu_geglu(sdc_cpu *cpu, int64_t M, int64_t F, const float *x, float *y) {
    if (!cpu || !x || !y || M < 0 || F < 0) return SDC_E_INVALID;
    if (M == 0 || F == 0) return SDC_OK;
    ew_ctx c;
    ew_init(&c, cpu, EW_GEGLU);
    c.rows = M; c.cols = F; c.per_task = rows_per_task(F); c.a = x; c.y = y;
    sdc_pool_for(cpu->pool, ceil_div(M, c.per_task), ew_task, &c);
    return SDC_OK;
}

sdc_status sdc_cpu_softmax(sdc_cpu *cpu, int64_t M, int64_t N, const float *x, float *y) {
    if (!cpu || !x || !y || M < 0 || N < 0) return SDC_E_INVALID;
    if (M == 0 || N == 0) return SDC_OK;
    ew_ctx c;
    ew_init(&c, cpu, EW_SOFTMAX);
    c.rows = M; c.cols = N; c.per_task = rows_per_task(N); c.a = x; c.y = y;
    sdc_pool_for(cpu->pool, ceil_div(M, c.per_task), ew_task, &c);
    return SDC_OK;
}

static sdc_status run_binary(sdc_cpu *cpu, ew_op op, int64_t n, const float *a, const float *b, float s, float *y) {
    if (!cpu || !a || (!b && op != EW_SCALE) || !y || n < 0) return SDC_E_INVALID;
    ew_ctx c;
    ew_init(&c, cpu, op);
    c.n = n; c.per_task = CHUNK; c.a = a; c.b = b; c.s = s; c.y = y;
    sdc_pool_for(cpu->pool, ceil_div(n, CHUNK), ew_task, &c);
    return SDC_OK;
}

sdc_status sdc_cpu_add(sdc_cpu *cpu, int64_t n, const float *a, const float *b, float *y) {
    return run_binary(cpu, EW_ADD, n, a, b, 0, y);
}
sdc_status sdc_cpu_mul(sdc_cpu *cpu, int64_t n, const float *a, const float *b, float *y) {
    return run_binary(cpu, EW_MUL, n, a, b, 0, y);
}
sdc_status sdc_cpu_scale(sdc_cpu *cpu, int64_t n, const float *x, float s, float *y) {
    return run_binary(cpu, EW_SCALE, n, x, NULL, s, y);
}

sdc_status sdc_cpu_add_channel_bias(sdc_cpu *cpu, int64_t B, int64_t C, int64_t HW, const float *x,
                                    const float *bias, float *y) {
    if (!cpu || !x || !bias || !y || B < 0 || C < 0 || HW < 0) return SDC_E_INVALID;
    if (B == 0 || C == 0 || HW == 0) return SDC_OK;
    ew_ctx c;
    ew_init(&c, cpu, EW_BIAS);
    c.B = B; c.C = C; c.HW = HW; c.per_task = rows_per_task(HW); c.a = x; c.b = bias; c.y = y;
    sdc_pool_for(cpu->pool, ceil_div(B * C, c.per_task), ew_task, &c);
    return SDC_OK;
}

sdc_status sdc_cpu_upsample_nearest2x(sdc_cpu *cpu, int64_t B, int64_t C, int64_t H, int64_t W,
                                      const float *x, float *y) {
    if (!cpu || !x || !y || B < 0 || C < 0 || H < 0 || W < 0) return SDC_E_INVALID;
    if (B == 0 || C == 0 || H == 0 || W == 0) return SDC_OK;
    ew_ctx c;
    ew_init(&c, cpu, EW_UPSAMPLE);
    c.B = B; c.C = C; c.H = H; c.W = W; c.per_task = rows_per_task(4 * H * W); c.a = x; c.y = y;
    sdc_pool_for(cpu->pool, ceil_div(B * C, c.per_task), ew_task, &c);
    return SDC_OK;
}

sdc_status sdc_cpu_concat(sdc_cpu *cpu, int64_t B, int64_t C1, int64_t C2, int64_t HW,
                          const float *a, const float *b, float *y) {
    if (!cpu || !y || B < 0 || C1 < 0 || C2 < 0 || HW < 0) return SDC_E_INVALID;
    if ((C1 > 0 && !a) || (C2 > 0 && !b)) return SDC_E_INVALID;
    if (B == 0 || HW == 0 || C1 + C2 == 0) return SDC_OK;
    ew_ctx c;
    ew_init(&c, cpu, EW_CONCAT);
    c.B = B; c.C = C1; c.C2 = C2; c.HW = HW; c.a = a; c.b = b; c.y = y;
    sdc_pool_for(cpu->pool, 2 * B, ew_task, &c);
    return SDC_OK;
}

/* ------------------------------------------------------------------ embeddings */

sdc_status sdc_cpu_timestep_embedding(sdc_cpu *cpu, int64_t n, int64_t dim, float max_period, const float *t,
                                      float *y) {
    if (!t || !y || n < 0 || dim < 1 || !(max_period > 0) || !isfinite(max_period)) return SDC_E_INVALID;
    int64_t half = dim / 2;
    /* torch: exponent = -math.log(max_period) * arange(half, dtype=float32); exponent / half;
     * exp; timesteps.float() * freqs; cos, sin: each step rounded to float. */
    float nlog = (float)-log((double)max_period);
    for (int64_t r = 0; r < n; r++) {
        float *yr = y + r * dim;
        for (int64_t i = 0; i < half; i++) {
            float e = nlog * (float)i;
            e = e / (float)half;
            float freq = expf(e);
            float arg = t[r] * freq;
            yr[i] = (float)cos((double)arg);
            yr[half + i] = (float)sin((double)arg);
        }
        if (dim % 2) yr[dim - 1] = 0;
    }
    return SDC_OK;
}

sdc_status sdc_cpu_embed(sdc_cpu *cpu, sdc_type type, const void *table, int64_t n_vocab, int64_t dim,
                         int64_t n, const int32_t *ids, float *y) {
    const sdc_type_traits *tr = sdc_type_traits_of(type);
    uint64_t row_bytes;
    if (!table || !ids || !y || n_vocab < 0 || dim < 1 || n < 0 || !tr || !tr->is_float) return SDC_E_INVALID;
    if (!sdc_type_bytes(type, (uint64_t)dim, &row_bytes)) return SDC_E_INVALID;
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= n_vocab) return SDC_E_INVALID;
    for (int64_t i = 0; i < n; i++) {
        const unsigned char *row = (const unsigned char *)table + (uint64_t)ids[i] * row_bytes;
        if (type == SDC_TYPE_F32) memcpy(y + i * dim, row, (size_t)dim * sizeof *y);
        else if (!sdc_dequantize_row(type, row, y + i * dim, dim)) return SDC_E_INVALID;
    }
    return SDC_OK;
}
