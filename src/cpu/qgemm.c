/* qgemm.c - the opt-in int8 linear (cpu->int8, see gemm.h): y = x . W^T + b for Q8_0, Q4_0 and
 * Q4_1 weights, with x quantized to int8 per row and per 32-value block, as the weights are,
 * and each block's dot product taken in exact int32 arithmetic by AVX-512 VNNI (vpdpbusd, 64
 * multiply-adds per instruction against 16 for an fp32 FMA), or by its scalar twin.
 *
 * Activations: for each row and block of 32 values, dx = amax / 127, q = round(x * 127 / amax)
 * in -127..127 (round to nearest even, both paths), sq = sum of the block's q. A block holding a
 * NaN or an infinity gets dx = NaN, so the outputs it feeds are NaN, as on the fp32 path.
 *
 * Per output (column j of W, row i of x), over blocks b in order:
 *     acc = bias[j] (or 0)
 *     Q8_0: s = sum_k w_k * q_k                      acc = fma((float)s, dw * dx, acc)
 *     Q4_0: s = sum_k c_k * q_k - 8 * sq             acc = fma((float)s, dw * dx, acc)
 *     Q4_1: s = sum_k c_k * q_k                      acc = fma((float)s, dw * dx, acc)
 *                                                    acc = fma(mw, dx * (float)sq, acc)
 * (c_k the 4-bit codes, dw and mw the block's f16 scale and minimum as f32). s is exact, so
 * the VNNI kernel and the scalar twin give the same bits, for any thread count.
 *
 * vpdpbusd multiplies unsigned bytes by signed bytes: Q4 codes (0..15) are the unsigned side
 * and the activations the signed one; for Q8_0 the activations are stored as q + 128 (1..255)
 * and the weights' packed block carries -128 * sum_k w_k, which starts the int32 sum.
 *
 * Layout: W is repacked once per call into slivers of 16 columns; a sliver holds, for each
 * block, the codes as [8 groups of 4 values][16 columns][4 bytes] (512 bytes: one 64-byte
 * load per group feeds all 16 columns), then dw[16] (f32), then the extra word per column
 * (Q8_0: the int32 correction; Q4_1: mw as f32; Q4_0: 0): 640 bytes per block, so 1.25 bytes
 * per weight (Q4_0 stores 0.5625: the packing is per call, never kept). Packed weights and quantized activations live
 * in the CPU context's shared workspace. Tasks are (96 rows) x (1, 2 or 4 slivers); a task
 * runs 6-row x 2-sliver register tiles (12 int32 and 12 f32 accumulators) over the whole K. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "gemm.h"
#include "half.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define QG_HAVE_VNNI 1
#define VNNI_FN __attribute__((target("avx512f,avx512vl,avx512bw,avx512vnni,avx2,fma,f16c")))
#else
#define QG_HAVE_VNNI 0
#endif

enum {
    QB = 32,                /* values per quantization block */
    SLW = 16,               /* columns per sliver */
    GRP = QB / 4,           /* 4-byte groups per block */
    PB_CODES = GRP * SLW * 4, /* 512 */
    PB_BYTES = PB_CODES + 2 * SLW * 4, /* 640: codes, dw[16], extra[16] */
    TM = 6,                 /* rows per register tile */
    ROWS_PER_TASK = 96,
    QROWS_PER_TASK = 32,    /* activation rows quantized per task */
};

typedef enum { QK_Q8_0, QK_Q4_0, QK_Q4_1 } qkind;

typedef struct qlin {
    int64_t M, N, K, nb;
    const float *x;
    int64_t ldx;
    qkind kind;
    const uint8_t *w;
    size_t row_bytes;
    const float *bias;
    float *y;
    int64_t ldy;
    uint8_t *pw;       /* packed slivers, n_sl * sl_bytes */
    size_t sl_bytes;
    int64_t n_sl;
    uint8_t *qa;       /* [M][K] activation codes (Q8_0: q + 128) */
    float *da;         /* [M][nb] */
    int32_t *sa;       /* [M][nb] */
    int64_t n_qt;      /* quantize tasks */
    int64_t n_i, n_j, ch; /* compute tasks: row blocks x sliver chunks of ch slivers */
    int simd;
} qlin;

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/* ---- weight packing ----------------------------------------------------------------------- */

static void pack_sliver(const qlin *L, int64_t s) {
    uint8_t *dst = L->pw + (size_t)s * L->sl_bytes;
    for (int j = 0; j < SLW; j++) {
        const int64_t col = s * SLW + j;
        for (int64_t b = 0; b < L->nb; b++) {
            uint8_t *pb = dst + (size_t)b * PB_BYTES;
            float dw = 0, mw = 0;
            int32_t corr = 0;
            uint32_t g4[GRP] = {0};
            if (col < L->N) {
                const uint8_t *row = L->w + (size_t)col * L->row_bytes;
                if (L->kind == QK_Q8_0) {
                    const uint8_t *blk = row + (size_t)b * (2 + QB);
                    dw = sdc_f16_to_f32(rd16(blk));
                    int sum = 0;
                    for (int k = 0; k < QB; k++) sum += (int8_t)blk[2 + k];
                    corr = -128 * sum;
                    for (int g = 0; g < GRP; g++) g4[g] = rd32(blk + 2 + 4 * g);
                } else {
                    const int hdr = L->kind == QK_Q4_1 ? 4 : 2;
                    const uint8_t *blk = row + (size_t)b * (hdr + QB / 2);
                    dw = sdc_f16_to_f32(rd16(blk));
                    if (L->kind == QK_Q4_1) mw = sdc_f16_to_f32(rd16(blk + 2));
                    /* qs[i] holds value i in its low nibble and value i + 16 in its high one */
                    for (int g = 0; g < GRP / 2; g++) {
                        const uint32_t v = rd32(blk + hdr + 4 * g);
                        g4[g] = v & 0x0F0F0F0Fu;
                        g4[g + GRP / 2] = (v >> 4) & 0x0F0F0F0Fu;
                    }
                }
            }
            for (int g = 0; g < GRP; g++) memcpy(pb + g * SLW * 4 + j * 4, &g4[g], 4);
            memcpy(pb + PB_CODES + j * 4, &dw, 4);
            if (L->kind == QK_Q8_0) memcpy(pb + PB_CODES + SLW * 4 + j * 4, &corr, 4);
            else memcpy(pb + PB_CODES + SLW * 4 + j * 4, &mw, 4);
        }
    }
}

/* ---- activation quantization -------------------------------------------------------------- */

/* One block: codes to q (32 bytes), returns dx; *sq = sum of the codes. */
static float quant_block_scalar(const float *x, uint8_t *q, int32_t *sq, int offset128) {
    float amax = 0;
    int bad = 0;
    for (int k = 0; k < QB; k++) {
        const float a = fabsf(x[k]);
        if (isnan(x[k]) || isinf(x[k])) bad = 1;
        amax = a > amax ? a : amax;
    }
    int32_t sum = 0;
    if (bad || amax == 0) {
        memset(q, offset128 ? 128 : 0, QB);
        *sq = 0;
        return bad ? NAN : 0.0f;
    }
    const float id = 127.0f / amax;
    for (int k = 0; k < QB; k++) {
        const int v = (int)lrintf(x[k] * id);
        sum += v;
        q[k] = (uint8_t)(offset128 ? v + 128 : v);
    }
    *sq = sum;
    return amax / 127.0f;
}

#if QG_HAVE_VNNI
static VNNI_FN float quant_block_avx512(const float *x, uint8_t *q, int32_t *sq, int offset128) {
    const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
    const __mmask16 bad = _mm512_cmp_ps_mask(_mm512_mul_ps(x0, _mm512_setzero_ps()), _mm512_setzero_ps(), _CMP_NEQ_UQ) |
                          _mm512_cmp_ps_mask(_mm512_mul_ps(x1, _mm512_setzero_ps()), _mm512_setzero_ps(), _CMP_NEQ_UQ);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
    if (bad || amax == 0) {
        memset(q, offset128 ? 128 : 0, QB);
        *sq = 0;
        return bad ? NAN : 0.0f;
    }
    const __m512 id = _mm512_set1_ps(127.0f / amax);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, id)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, id));
    *sq = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    __m128i b0 = _mm512_cvtepi32_epi8(q0), b1 = _mm512_cvtepi32_epi8(q1);
    if (offset128) {
        const __m128i k80 = _mm_set1_epi8((char)0x80);
        b0 = _mm_xor_si128(b0, k80);
        b1 = _mm_xor_si128(b1, k80);
    }
    _mm_storeu_si128((__m128i *)q, b0);
    _mm_storeu_si128((__m128i *)(q + 16), b1);
    return amax / 127.0f;
}
#endif

static void quant_rows(const qlin *L, int64_t t) {
    const int64_t r0 = t * QROWS_PER_TASK, r1 = r0 + QROWS_PER_TASK < L->M ? r0 + QROWS_PER_TASK : L->M;
    const int off = L->kind == QK_Q8_0;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t b = 0; b < L->nb; b++) {
            const float *xb = L->x + r * L->ldx + b * QB;
            uint8_t *q = L->qa + r * L->K + b * QB;
            int32_t *sq = L->sa + r * L->nb + b;
#if QG_HAVE_VNNI
            if (L->simd) {
                L->da[r * L->nb + b] = quant_block_avx512(xb, q, sq, off);
                continue;
            }
#endif
            L->da[r * L->nb + b] = quant_block_scalar(xb, q, sq, off);
        }
}

/* ---- the scalar twin ---------------------------------------------------------------------- */

static void tile_scalar(const qlin *L, int64_t r0, int mr, int64_t s0, int ns) {
    for (int i = 0; i < mr; i++) {
        const int64_t r = r0 + i;
        const uint8_t *a = L->qa + r * L->K;
        for (int s = 0; s < ns; s++) {
            const uint8_t *sl = L->pw + (size_t)(s0 + s) * L->sl_bytes;
            for (int j = 0; j < SLW; j++) {
                const int64_t col = (s0 + s) * SLW + j;
                if (col >= L->N) break;
                float acc = L->bias ? L->bias[col] : 0.0f;
                for (int64_t b = 0; b < L->nb; b++) {
                    const uint8_t *pb = sl + (size_t)b * PB_BYTES;
                    const uint8_t *ab = a + b * QB;
                    const int32_t sq = L->sa[r * L->nb + b];
                    const float dx = L->da[r * L->nb + b];
                    float dw, extra_f;
                    int32_t sum;
                    memcpy(&dw, pb + PB_CODES + j * 4, 4);
                    memcpy(&sum, pb + PB_CODES + SLW * 4 + j * 4, 4);
                    memcpy(&extra_f, pb + PB_CODES + SLW * 4 + j * 4, 4);
                    if (L->kind != QK_Q8_0) sum = L->kind == QK_Q4_0 ? -8 * sq : 0;
                    for (int k = 0; k < QB; k++) {
                        const uint8_t c = pb[(k / 4) * SLW * 4 + j * 4 + k % 4];
                        if (L->kind == QK_Q8_0) sum += (int32_t)(int8_t)c * (int32_t)ab[k];
                        else sum += (int32_t)c * (int32_t)(int8_t)ab[k];
                    }
                    const float ds = dw * dx;
                    acc = fmaf((float)sum, ds, acc);
                    if (L->kind == QK_Q4_1) {
                        const float t = dx * (float)sq;
                        acc = fmaf(extra_f, t, acc);
                    }
                }
                L->y[r * L->ldy + col] = acc;
            }
        }
    }
}

/* ---- the VNNI kernel ---------------------------------------------------------------------- */

#if QG_HAVE_VNNI
static inline __attribute__((always_inline)) VNNI_FN void tile_vnni(const qlin *L, int64_t r0, int mr, int64_t s0,
                                                                     const int ns, const qkind kind) {
    const uint8_t *a[TM];
    const float *da[TM];
    const int32_t *sa[TM];
    for (int i = 0; i < TM; i++) {
        const int64_t r = r0 + (i < mr ? i : mr - 1); /* short tiles repeat their last row */
        a[i] = L->qa + r * L->K;
        da[i] = L->da + r * L->nb;
        sa[i] = L->sa + r * L->nb;
    }
    const uint8_t *w0 = L->pw + (size_t)s0 * L->sl_bytes;
    const uint8_t *w1 = w0 + (ns == 2 ? L->sl_bytes : 0);
    __mmask16 m[2];
    __m512 f[TM][2];
    for (int s = 0; s < ns; s++) {
        const int64_t c0 = (s0 + s) * SLW, left = L->N - c0;
        m[s] = left >= SLW ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        const __m512 bv = L->bias ? _mm512_maskz_loadu_ps(m[s], L->bias + c0) : _mm512_setzero_ps();
        for (int i = 0; i < TM; i++) f[i][s] = bv;
    }
    for (int64_t b = 0; b < L->nb; b++) {
        const uint8_t *p0 = w0 + (size_t)b * PB_BYTES, *p1 = w1 + (size_t)b * PB_BYTES;
        __m512i acc[TM][2];
        for (int i = 0; i < TM; i++)
            for (int s = 0; s < ns; s++) {
                if (kind == QK_Q8_0) acc[i][s] = _mm512_load_si512((const void *)((s ? p1 : p0) + PB_CODES + SLW * 4));
                else if (kind == QK_Q4_0) acc[i][s] = _mm512_set1_epi32(-8 * sa[i][b]);
                else acc[i][s] = _mm512_setzero_si512();
            }
        for (int g = 0; g < GRP; g++) {
            const __m512i B0 = _mm512_load_si512((const void *)(p0 + g * SLW * 4));
            const __m512i B1 = ns == 2 ? _mm512_load_si512((const void *)(p1 + g * SLW * 4)) : B0;
            for (int i = 0; i < TM; i++) {
                const __m512i A = _mm512_set1_epi32((int)rd32(a[i] + b * QB + g * 4));
                if (kind == QK_Q8_0) {
                    acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], A, B0);
                    if (ns == 2) acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], A, B1);
                } else {
                    acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], B0, A);
                    if (ns == 2) acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], B1, A);
                }
            }
        }
        const __m512 D0 = _mm512_load_ps((const void *)(p0 + PB_CODES));
        const __m512 D1 = ns == 2 ? _mm512_load_ps((const void *)(p1 + PB_CODES)) : D0;
        for (int i = 0; i < TM; i++) {
            const float dx = da[i][b];
            const __m512 vdx = _mm512_set1_ps(dx);
            f[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i][0]), _mm512_mul_ps(D0, vdx), f[i][0]);
            if (ns == 2) f[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i][1]), _mm512_mul_ps(D1, vdx), f[i][1]);
            if (kind == QK_Q4_1) {
                const __m512 t = _mm512_set1_ps(dx * (float)sa[i][b]);
                f[i][0] = _mm512_fmadd_ps(_mm512_load_ps((const void *)(p0 + PB_CODES + SLW * 4)), t, f[i][0]);
                if (ns == 2)
                    f[i][1] = _mm512_fmadd_ps(_mm512_load_ps((const void *)(p1 + PB_CODES + SLW * 4)), t, f[i][1]);
            }
        }
    }
    for (int i = 0; i < mr; i++)
        for (int s = 0; s < ns; s++)
            _mm512_mask_storeu_ps(L->y + (r0 + i) * L->ldy + (s0 + s) * SLW, m[s], f[i][s]);
}

static VNNI_FN void tile_vnni_any(const qlin *L, int64_t r0, int mr, int64_t s0, int ns) {
    switch (L->kind) {
    case QK_Q8_0: if (ns == 2) tile_vnni(L, r0, mr, s0, 2, QK_Q8_0); else tile_vnni(L, r0, mr, s0, 1, QK_Q8_0); break;
    case QK_Q4_0: if (ns == 2) tile_vnni(L, r0, mr, s0, 2, QK_Q4_0); else tile_vnni(L, r0, mr, s0, 1, QK_Q4_0); break;
    case QK_Q4_1: if (ns == 2) tile_vnni(L, r0, mr, s0, 2, QK_Q4_1); else tile_vnni(L, r0, mr, s0, 1, QK_Q4_1); break;
    }
}
#endif

/* ---- tasks -------------------------------------------------------------------------------- */

static void prep_task(void *vc, int64_t t, int thread) {
    (void)thread;
    const qlin *L = vc;
    if (t < L->n_sl) pack_sliver(L, t);
    else quant_rows(L, t - L->n_sl);
}

static void compute_task(void *vc, int64_t t, int thread) {
    (void)thread;
    const qlin *L = vc;
    const int64_t bi = t / L->n_j, bj = t % L->n_j;
    const int64_t r_lo = bi * ROWS_PER_TASK, r_hi = r_lo + ROWS_PER_TASK < L->M ? r_lo + ROWS_PER_TASK : L->M;
    const int64_t s_lo = bj * L->ch, s_hi = s_lo + L->ch < L->n_sl ? s_lo + L->ch : L->n_sl;
    for (int64_t s = s_lo; s < s_hi; s += 2) {
        const int ns = s_hi - s >= 2 ? 2 : 1;
        for (int64_t r = r_lo; r < r_hi; r += TM) {
            const int mr = r_hi - r >= TM ? TM : (int)(r_hi - r);
#if QG_HAVE_VNNI
            if (L->simd) {
                tile_vnni_any(L, r, mr, s, ns);
                continue;
            }
#endif
            tile_scalar(L, r, mr, s, ns);
        }
    }
}

static int64_t cdiv64(int64_t a, int64_t b) { return (a + b - 1) / b; }

bool sdc_cpu_linear_int8_eligible(const sdc_cpu *cpu, sdc_type wt) {
    if (wt != SDC_TYPE_Q8_0 && wt != SDC_TYPE_Q4_0 && wt != SDC_TYPE_Q4_1) return false;
    return cpu->int8 == 2 || (cpu->int8 == 1 && cpu->vnni && cpu->isa == SDC_ISA_AVX512);
}

sdc_status sdc_cpu_linear_int8(sdc_cpu *cpu, int64_t M, int64_t N, int64_t K, const float *x, int64_t ldx,
                               sdc_type wt, const void *w, size_t row_bytes, const float *bias, float *y,
                               int64_t ldy) {
    if (K % QB) return SDC_E_INVALID;
    qlin L = {
        .M = M, .N = N, .K = K, .nb = K / QB, .x = x, .ldx = ldx,
        .kind = wt == SDC_TYPE_Q8_0 ? QK_Q8_0 : wt == SDC_TYPE_Q4_0 ? QK_Q4_0 : QK_Q4_1,
        .w = w, .row_bytes = row_bytes, .bias = bias, .y = y, .ldy = ldy,
        .simd = QG_HAVE_VNNI && cpu->vnni && cpu->isa == SDC_ISA_AVX512,
    };
    L.n_sl = cdiv64(N, SLW);
    L.sl_bytes = (size_t)L.nb * PB_BYTES;
    /* workspace: packed W, then codes [M][K] (64-byte rounded), dx and sums [M][nb] */
    const uint64_t pw_b = (uint64_t)L.n_sl * L.sl_bytes, qa_b = ((uint64_t)M * (uint64_t)K + 63) & ~(uint64_t)63;
    const uint64_t d_b = ((uint64_t)M * (uint64_t)L.nb * 4 + 63) & ~(uint64_t)63;
    const uint64_t total = pw_b + qa_b + 2 * d_b;
    if ((uint64_t)M > UINT64_MAX / (uint64_t)K || total > (uint64_t)SIZE_MAX / 2) return SDC_E_NOMEM;
    uint8_t *ws = sdc_cpu_workspace(cpu, (size_t)total);
    if (!ws) return SDC_E_NOMEM;
    L.pw = ws;
    L.qa = ws + pw_b;
    L.da = (float *)(void *)(ws + pw_b + qa_b);
    L.sa = (int32_t *)(void *)(ws + pw_b + qa_b + d_b);
    L.n_qt = cdiv64(M, QROWS_PER_TASK);
    sdc_pool_for(cpu->pool, L.n_sl + L.n_qt, prep_task, &L);

    L.n_i = cdiv64(M, ROWS_PER_TASK);
    L.ch = 4;
    while (L.ch > 1 && L.n_i * cdiv64(L.n_sl, L.ch) < 3 * (int64_t)cpu->n_threads) L.ch /= 2;
    L.n_j = cdiv64(L.n_sl, L.ch);
    sdc_pool_for(cpu->pool, L.n_i * L.n_j, compute_task, &L);
    return SDC_OK;
}
