/* attention.c - flash-style attention (see attention.h).
 *
 * One task = (batch, head, chunk of up to QC_MAX query rows). Vectors run along the
 * *query* axis, so the online softmax needs no horizontal reductions and K needs no
 * transpose. The task packs its queries once, transposed and scaled by scale*log2(e) (the
 * softmax then uses 2^x), then walks the keys in blocks of BK (all keys when Nk <= 96):
 *
 *   St  <- K[block] . Qt[:, sub-block]     [BK][QB]  scores, keys x queries
 *   per query: m_new = max(m, max_j St), alpha = 2^(m - m_new), St <- 2^(St - m_new),
 *              l = l*alpha + sum_j St, Ot *= alpha
 *   Ot  += V[block]^T . St                  [d][QB]
 *
 * and finally writes Ot^T / l. K and V are read in place (broadcast loads work at any row
 * stride); the next block's rows are prefetched while the current one is computed. Q and O
 * go through 8x8 AVX2 transposes. Register tiles are 4 keys (or 4 head-dim columns) x 24
 * queries: 12 FMAs per 7 loads. Every output element sees the same operations in the same
 * order whatever the chunking, so results do not depend on the thread count.
 */
#include "attention.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "gemm.h" /* sdc_cpu_bf16_active */
#include "vmath.h"

#define BK_MAX SDC_ATTN_BLOCK_K_MAX
#define QB 48               /* queries per inner sub-block (a multiple of 24) */
#define QC_MAX 256          /* queries per task, at most */

typedef struct attn_ctx {
    sdc_cpu *cpu;
    int64_t B, H, Nq, Nk, d;
    const float *q, *k, *v;
    float *out;
    int64_t ldq, ldk, ldv, ldo;
    float qscale;
    bool causal;
    int avx2;               /* 0 scalar, 1 AVX2, 2 AVX2 with AVX-512 score and P.V tiles */
    int64_t qc, nqc;        /* rows per task, tasks per (b, h) */
    int64_t bk;             /* keys per block */
    size_t scratch_bytes;
    atomic_int failed;
} attn_ctx;

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; } /* floats -> 64 bytes */

/* --------------------------------------------------------------------- scalar twin */

/* St[j][r] = sum_c K[j][c] Qt[c][r], j < nk, r < nq (K rows ldk apart). */
static void st_block_scalar(const float *kp, int64_t ldk, int64_t d, const float *qt, int64_t qcp, float *st,
                            int64_t nk, int64_t nq) {
    for (int64_t j = 0; j < nk; j++)
        for (int64_t r = 0; r < nq; r++) {
            float acc = 0;
            for (int64_t c = 0; c < d; c++) acc += kp[j * ldk + c] * qt[c * qcp + r];
            st[j * QB + r] = acc;
        }
}

/* Ot[c][r] += sum_j V[j][c] St[j][r] (V rows ldv apart). */
static void pv_block_scalar(float *ot, int64_t qcp, const float *vp, int64_t ldv, int64_t d, const float *st,
                            int64_t nk, int64_t nq) {
    for (int64_t c = 0; c < d; c++)
        for (int64_t r = 0; r < nq; r++) {
            float acc = ot[c * qcp + r];
            for (int64_t j = 0; j < nk; j++) acc += vp[j * ldv + c] * st[j * QB + r];
            ot[c * qcp + r] = acc;
        }
}

/* Online-softmax update of queries [0, nq) of a sub-block (m, l, ot offset to it). */
static void softmax_block_scalar(float *st, int64_t nk, int64_t nq, float *m, float *l, float *ot, int64_t qcp,
                                 int64_t d) {
    for (int64_t r = 0; r < nq; r++) {
        float mx = -INFINITY;
        for (int64_t j = 0; j < nk; j++) mx = st[j * QB + r] > mx ? st[j * QB + r] : mx;
        float mnew = mx > m[r] ? mx : m[r];
        float muse = mnew == -INFINITY ? 0.0f : mnew; /* all masked so far: p = 0, alpha moot */
        float alpha = exp2f(m[r] - muse), sum = 0;
        for (int64_t j = 0; j < nk; j++) {
            float p = exp2f(st[j * QB + r] - muse);
            st[j * QB + r] = p;
            sum += p;
        }
        l[r] = l[r] * alpha + sum;
        m[r] = mnew;
        if (alpha != 1.0f)
            for (int64_t c = 0; c < d; c++) ot[c * qcp + r] *= alpha;
    }
}

/* ------------------------------------------------------------------------ AVX2 path */
#if SDC_HAVE_X86

/* Keep a loaded vector in a register (stops the compiler re-loading it as a memory operand
 * of every FMA, which would make the tiles load-bound). */
#define PIN(x) __asm__("" : "+x"(x))

/* St[0:R][0:8*NV] = K[0:R] . Qt[:, 0:8*NV]; R <= 4, NV <= 3 (constants after inlining). */
SDC_AVX2_INLINE void st_tile_avx2(const float *kp, int64_t ldk, int64_t d, const float *qt, int64_t qcp,
                                  float *st, const int R, const int NV) {
    __m256 acc[4][3];
    for (int r = 0; r < R; r++)
        for (int u = 0; u < NV; u++) acc[r][u] = _mm256_setzero_ps();
    for (int64_t c = 0; c < d; c++) {
        __m256 qv[3];
        for (int u = 0; u < NV; u++) { qv[u] = _mm256_load_ps(qt + c * qcp + 8 * u); PIN(qv[u]); }
        for (int r = 0; r < R; r++) {
            __m256 kb = _mm256_broadcast_ss(kp + r * ldk + c);
            for (int u = 0; u < NV; u++) acc[r][u] = _mm256_fmadd_ps(kb, qv[u], acc[r][u]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int u = 0; u < NV; u++) _mm256_store_ps(st + r * QB + 8 * u, acc[r][u]);
}

/* Ot[0:R][0:8*NV] += V[:, 0:R]^T . St[:, 0:8*NV] over nk keys. */
SDC_AVX2_INLINE void pv_tile_avx2(float *ot, int64_t qcp, const float *vp, int64_t ldv, const float *st,
                                  int64_t nk, const int R, const int NV) {
    __m256 acc[4][3];
    for (int r = 0; r < R; r++)
        for (int u = 0; u < NV; u++) acc[r][u] = _mm256_load_ps(ot + r * qcp + 8 * u);
    for (int64_t j = 0; j < nk; j++) {
        __m256 sv[3];
        for (int u = 0; u < NV; u++) { sv[u] = _mm256_load_ps(st + j * QB + 8 * u); PIN(sv[u]); }
        for (int r = 0; r < R; r++) {
            __m256 vb = _mm256_broadcast_ss(vp + j * ldv + r);
            for (int u = 0; u < NV; u++) acc[r][u] = _mm256_fmadd_ps(vb, sv[u], acc[r][u]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int u = 0; u < NV; u++) _mm256_store_ps(ot + r * qcp + 8 * u, acc[r][u]);
}

#define TILE_CASES(CALL)                                                              \
    case 4 * 4 + 3: CALL(4, 3); break;                                                \
    case 3 * 4 + 3: CALL(3, 3); break;                                                \
    case 2 * 4 + 3: CALL(2, 3); break;                                                \
    case 1 * 4 + 3: CALL(1, 3); break;                                                \
    case 4 * 4 + 2: CALL(4, 2); break;                                                \
    case 3 * 4 + 2: CALL(3, 2); break;                                                \
    case 2 * 4 + 2: CALL(2, 2); break;                                                \
    case 1 * 4 + 2: CALL(1, 2); break;                                                \
    case 4 * 4 + 1: CALL(4, 1); break;                                                \
    case 3 * 4 + 1: CALL(3, 1); break;                                                \
    case 2 * 4 + 1: CALL(2, 1); break;                                                \
    case 1 * 4 + 1: CALL(1, 1); break;                                                \
    default: break

/* nq is a multiple of 8 (padded queries are zero and their results ignored). */
SDC_AVX2 static void st_block_avx2(const float *kp, int64_t ldk, int64_t d, const float *qt, int64_t qcp, float *st,
                                   int64_t nk, int64_t nq) {
    for (int64_t u0 = 0; u0 < nq; u0 += 24) {
        int nv = (int)((nq - u0) / 8 < 3 ? (nq - u0) / 8 : 3);
        for (int64_t j = 0; j < nk; j += 4) {
            int rr = (int)(nk - j < 4 ? nk - j : 4);
#define ST_CALL(R_, NV_) st_tile_avx2(kp + j * ldk, ldk, d, qt + u0, qcp, st + j * QB + u0, R_, NV_)
            switch (rr * 4 + nv) { TILE_CASES(ST_CALL); }
#undef ST_CALL
        }
    }
}

SDC_AVX2 static void pv_block_avx2(float *ot, int64_t qcp, const float *vp, int64_t ldv, int64_t d, const float *st,
                                   int64_t nk, int64_t nq) {
    for (int64_t u0 = 0; u0 < nq; u0 += 24) {
        int nv = (int)((nq - u0) / 8 < 3 ? (nq - u0) / 8 : 3);
        for (int64_t c = 0; c < d; c += 4) {
            int rr = (int)(d - c < 4 ? d - c : 4);
#define PV_CALL(R_, NV_) pv_tile_avx2(ot + c * qcp + u0, qcp, vp + c, ldv, st + u0, nk, R_, NV_)
            switch (rr * 4 + nv) { TILE_CASES(PV_CALL); }
#undef PV_CALL
        }
    }
}

/* AVX-512: the same tiles with 16 queries per zmm (R <= 4 keys or head-dim columns x up to 48
 * queries). Each element's fma chain over c (scores) or j (P.V) is the AVX2 tile's, so the two
 * paths give the same bits. A last slice of 8 queries runs on the AVX2 tile. */
#define SDC_AVX512_INLINE static inline __attribute__((always_inline, target("avx512f,avx512vl,avx2,fma,f16c")))
#define SDC_AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma,f16c")))

SDC_AVX512_INLINE void st_tile_avx512(const float *kp, int64_t ldk, int64_t d, const float *qt, int64_t qcp,
                                      float *st, const int R, const int NV) {
    __m512 acc[8][3];
    for (int r = 0; r < R; r++)
        for (int u = 0; u < NV; u++) acc[r][u] = _mm512_setzero_ps();
    for (int64_t c = 0; c < d; c++) {
        __m512 qv[3];
        for (int u = 0; u < NV; u++) qv[u] = _mm512_loadu_ps(qt + c * qcp + 16 * u);
        for (int r = 0; r < R; r++) {
            __m512 kb = _mm512_set1_ps(kp[r * ldk + c]);
            for (int u = 0; u < NV; u++) acc[r][u] = _mm512_fmadd_ps(kb, qv[u], acc[r][u]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int u = 0; u < NV; u++) _mm512_storeu_ps(st + r * QB + 16 * u, acc[r][u]);
}

SDC_AVX512_INLINE void pv_tile_avx512(float *ot, int64_t qcp, const float *vp, int64_t ldv, const float *st,
                                      int64_t nk, const int R, const int NV) {
    __m512 acc[8][3];
    for (int r = 0; r < R; r++)
        for (int u = 0; u < NV; u++) acc[r][u] = _mm512_loadu_ps(ot + r * qcp + 16 * u);
    for (int64_t j = 0; j < nk; j++) {
        __m512 sv[3];
        for (int u = 0; u < NV; u++) sv[u] = _mm512_loadu_ps(st + j * QB + 16 * u);
        for (int r = 0; r < R; r++) {
            __m512 vb = _mm512_set1_ps(vp[j * ldv + r]);
            for (int u = 0; u < NV; u++) acc[r][u] = _mm512_fmadd_ps(vb, sv[u], acc[r][u]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int u = 0; u < NV; u++) _mm512_storeu_ps(ot + r * qcp + 16 * u, acc[r][u]);
}

/* nq is a multiple of 8 and at most QB = 48: 16-wide slices, then at most one 8-wide one. */
SDC_AVX512 static void st_block_avx512(const float *kp, int64_t ldk, int64_t d, const float *qt, int64_t qcp,
                                       float *st, int64_t nk, int64_t nq) {
    const int nv = (int)(nq / 16);
    int64_t j8 = 0;
    if (nv > 0) /* whole groups of 8 keys: 8 x 48 tiles (24 accumulators) */
        for (; j8 + 8 <= nk; j8 += 8) {
            if (nv == 3) st_tile_avx512(kp + j8 * ldk, ldk, d, qt, qcp, st + j8 * QB, 8, 3);
            else if (nv == 2) st_tile_avx512(kp + j8 * ldk, ldk, d, qt, qcp, st + j8 * QB, 8, 2);
            else st_tile_avx512(kp + j8 * ldk, ldk, d, qt, qcp, st + j8 * QB, 8, 1);
        }
    for (int64_t j = 0; j < nk; j += 4) {
        int rr = (int)(nk - j < 4 ? nk - j : 4);
#define ST_CALL(R_, NV_) st_tile_avx512(kp + j * ldk, ldk, d, qt, qcp, st + j * QB, R_, NV_)
        if (nv > 0 && j >= j8) switch (rr * 4 + nv) { TILE_CASES(ST_CALL); }
#undef ST_CALL
#define ST_CALL(R_, NV_) st_tile_avx2(kp + j * ldk, ldk, d, qt + 16 * nv, qcp, st + j * QB + 16 * nv, R_, NV_)
        if (nq % 16) switch (rr * 4 + 1) { TILE_CASES(ST_CALL); }
#undef ST_CALL
    }
}

SDC_AVX512 static void pv_block_avx512(float *ot, int64_t qcp, const float *vp, int64_t ldv, int64_t d,
                                       const float *st, int64_t nk, int64_t nq) {
    const int nv = (int)(nq / 16);
    int64_t c8 = 0;
    if (nv > 0) /* whole groups of 8 head-dim columns: 8 x 48 tiles */
        for (; c8 + 8 <= d; c8 += 8) {
            if (nv == 3) pv_tile_avx512(ot + c8 * qcp, qcp, vp + c8, ldv, st, nk, 8, 3);
            else if (nv == 2) pv_tile_avx512(ot + c8 * qcp, qcp, vp + c8, ldv, st, nk, 8, 2);
            else pv_tile_avx512(ot + c8 * qcp, qcp, vp + c8, ldv, st, nk, 8, 1);
        }
    for (int64_t c = 0; c < d; c += 4) {
        int rr = (int)(d - c < 4 ? d - c : 4);
#define PV_CALL(R_, NV_) pv_tile_avx512(ot + c * qcp, qcp, vp + c, ldv, st, nk, R_, NV_)
        if (nv > 0 && c >= c8) switch (rr * 4 + nv) { TILE_CASES(PV_CALL); }
#undef PV_CALL
#define PV_CALL(R_, NV_) pv_tile_avx2(ot + c * qcp + 16 * nv, qcp, vp + c, ldv, st + 16 * nv, nk, R_, NV_)
        if (nq % 16) switch (rr * 4 + 1) { TILE_CASES(PV_CALL); }
#undef PV_CALL
    }
}

/* first: no earlier key block, so Ot is still zero and its rescale is skipped (an exact no-op).
 * Two vectors of queries at a time (nq is a multiple of 8; a lone last vector runs alone): two
 * independent exp/sum chains per key keep more of the out-of-order window busy. Each query's
 * operations and their order are those of one vector at a time. */
SDC_AVX2_INLINE void softmax_vecs_avx2(float *st, int64_t nk, int64_t r, const int NV, float *m, float *l,
                                       float *ot, int64_t qcp, int64_t d, int first) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY), one = _mm256_set1_ps(1.0f);
    __m256 mx[2], muse[2], alpha[2], sum[2], mnew[2];
    for (int u = 0; u < NV; u++) mx[u] = ninf;
    for (int64_t j = 0; j < nk; j++)
        for (int u = 0; u < NV; u++) mx[u] = _mm256_max_ps(mx[u], _mm256_load_ps(st + j * QB + r + 8 * u));
    for (int u = 0; u < NV; u++) {
        __m256 mold = _mm256_load_ps(m + r + 8 * u);
        mnew[u] = _mm256_max_ps(mx[u], mold);
        /* all masked so far: subtract 0 instead (p = 2^-inf = 0; alpha multiplies zeros) */
        muse[u] = _mm256_andnot_ps(_mm256_cmp_ps(mnew[u], ninf, _CMP_EQ_OQ), mnew[u]);
        alpha[u] = sdc_v_exp2(_mm256_sub_ps(mold, muse[u]));
        sum[u] = _mm256_setzero_ps();
    }
    for (int64_t j = 0; j < nk; j++)
        for (int u = 0; u < NV; u++) {
            __m256 p = sdc_v_exp2(_mm256_sub_ps(_mm256_load_ps(st + j * QB + r + 8 * u), muse[u]));
            _mm256_store_ps(st + j * QB + r + 8 * u, p);
            sum[u] = _mm256_add_ps(sum[u], p);
        }
    for (int u = 0; u < NV; u++) {
        const int64_t ru = r + 8 * u;
        _mm256_store_ps(l + ru, _mm256_fmadd_ps(_mm256_load_ps(l + ru), alpha[u], sum[u]));
        _mm256_store_ps(m + ru, mnew[u]);
        if (!first && _mm256_movemask_ps(_mm256_cmp_ps(alpha[u], one, _CMP_NEQ_UQ)))
            for (int64_t c = 0; c < d; c++)
                _mm256_store_ps(ot + c * qcp + ru, _mm256_mul_ps(_mm256_load_ps(ot + c * qcp + ru), alpha[u]));
    }
}

SDC_AVX2 static void softmax_block_avx2(float *st, int64_t nk, int64_t nq, float *m, float *l, float *ot,
                                        int64_t qcp, int64_t d, int first) {
    int64_t r = 0;
    for (; r + 16 <= nq; r += 16) softmax_vecs_avx2(st, nk, r, 2, m, l, ot, qcp, d, first);
    if (r < nq) softmax_vecs_avx2(st, nk, r, 1, m, l, ot, qcp, d, first);
}

#if SDC_HAVE_X86
/* softmax_vecs_avx2 on 16-wide vectors (NV of them): lane by lane the same operations in
 * the same order (sdc_v_exp2_512 is sdc_v_exp2 on 16 lanes; the rescale of Ot is skipped
 * only where it would multiply by exactly 1), so results do not depend on the width. For
 * head dim 40 the softmax was a third of the attention's time at 8 lanes. */
static inline __attribute__((always_inline, target("avx512f,avx512vl,avx2,fma,f16c"))) void
softmax_vecs_avx512(float *st, int64_t nk, int64_t r, const int NV, float *m, float *l, float *ot, int64_t qcp,
                    int64_t d, int first) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY), one = _mm512_set1_ps(1.0f);
    __m512 mx[2], muse[2], alpha[2], sum[2], mnew[2];
    for (int u = 0; u < NV; u++) mx[u] = ninf;
    for (int64_t j = 0; j < nk; j++)
        for (int u = 0; u < NV; u++) mx[u] = _mm512_max_ps(mx[u], _mm512_loadu_ps(st + j * QB + r + 16 * u));
    for (int u = 0; u < NV; u++) {
        __m512 mold = _mm512_loadu_ps(m + r + 16 * u);
        mnew[u] = _mm512_max_ps(mx[u], mold);
        /* all masked so far: subtract 0 instead */
        muse[u] = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(mnew[u], ninf, _CMP_NEQ_UQ), mnew[u]);
        alpha[u] = sdc_v_exp2_512(_mm512_sub_ps(mold, muse[u]));
        sum[u] = _mm512_setzero_ps();
    }
    for (int64_t j = 0; j < nk; j++)
        for (int u = 0; u < NV; u++) {
            __m512 p = sdc_v_exp2_512(_mm512_sub_ps(_mm512_loadu_ps(st + j * QB + r + 16 * u), muse[u]));
            _mm512_storeu_ps(st + j * QB + r + 16 * u, p);
            sum[u] = _mm512_add_ps(sum[u], p);
        }
    for (int u = 0; u < NV; u++) {
        const int64_t ru = r + 16 * u;
        _mm512_storeu_ps(l + ru, _mm512_fmadd_ps(_mm512_loadu_ps(l + ru), alpha[u], sum[u]));
        _mm512_storeu_ps(m + ru, mnew[u]);
        if (!first && _mm512_cmp_ps_mask(alpha[u], one, _CMP_NEQ_UQ))
            for (int64_t c = 0; c < d; c++)
                _mm512_storeu_ps(ot + c * qcp + ru, _mm512_mul_ps(_mm512_loadu_ps(ot + c * qcp + ru), alpha[u]));
    }
}

__attribute__((target("avx512f,avx512vl,avx2,fma,f16c"))) static void
softmax_block_avx512(float *st, int64_t nk, int64_t nq, float *m, float *l, float *ot, int64_t qcp, int64_t d,
                     int first) {
    int64_t r = 0;
    for (; r + 32 <= nq; r += 32) softmax_vecs_avx512(st, nk, r, 2, m, l, ot, qcp, d, first);
    if (r + 16 <= nq) softmax_vecs_avx512(st, nk, r, 1, m, l, ot, qcp, d, first), r += 16;
    if (r < nq) softmax_vecs_avx2(st, nk, r, 1, m, l, ot, qcp, d, first); /* the last 8 */
}
#endif

/* In-register 8x8 transpose: r[i][j] <- r[j][i]. */
SDC_AVX2_INLINE void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);     /* a0 b0 a1 b1 | a4 b4 a5 b5 */
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]); /* a2 b2 a3 b3 | a6 b6 a7 b7 */
    }
    for (int i = 0; i < 2; i++) {
        u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);     /* a0 b0 c0 d0 | a4.. */
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);     /* a1 b1 c1 d1 | a5.. */
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44); /* a2 ..        | a6.. */
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE); /* a3 ..        | a7.. */
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x20);
        r[4 + i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x31);
    }
}

/* Qt[x][r] = q[r][x] * s for whole 8x8 blocks; returns how many rows it covered (a multiple
 * of 8) and sets *xdone to the columns covered; the caller does the rest. */
SDC_AVX2 static void pack_q_avx2(const float *q, int64_t ldq, int64_t nrows, int64_t d, float s, float *qt,
                                 int64_t qcp, int64_t *rdone, int64_t *xdone) {
    int64_t r0 = 0, x0 = 0;
    __m256 vs = _mm256_set1_ps(s);
    for (r0 = 0; r0 + 8 <= nrows; r0 += 8)
        for (x0 = 0; x0 + 8 <= d; x0 += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_mul_ps(_mm256_loadu_ps(q + (r0 + i) * ldq + x0), vs);
            transpose8(r);
            for (int i = 0; i < 8; i++) _mm256_store_ps(qt + (x0 + i) * qcp + r0, r[i]);
        }
    *rdone = r0;
    *xdone = d - d % 8;
}

/* out[r][x] = Ot[x][r] * inv[r] for whole 8x8 blocks (see pack_q_avx2). */
SDC_AVX2 static void unpack_o_avx2(const float *ot, int64_t qcp, const float *inv, int64_t nrows, int64_t d,
                                   float *out, int64_t ldo, int64_t *rdone, int64_t *xdone) {
    int64_t r0 = 0;
    for (r0 = 0; r0 + 8 <= nrows; r0 += 8)
        for (int64_t x0 = 0; x0 + 8 <= d; x0 += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_load_ps(ot + (x0 + i) * qcp + r0);
            transpose8(r);
            for (int i = 0; i < 8; i++)
                _mm256_storeu_ps(out + (r0 + i) * ldo + x0, _mm256_mul_ps(r[i], _mm256_broadcast_ss(inv + r0 + i)));
        }
    *rdone = r0;
    *xdone = d - d % 8;
}

#endif /* SDC_HAVE_X86 */

/* ------------------------------------------------------------------------ the task */

static void attn_task(void *vctx, int64_t task, int thread) {
    attn_ctx *c = vctx;
    const int64_t d = c->d;
    /* heads fastest: consecutive tasks read (and write) the same rows of q and out, so a
     * chunk's rows come from DRAM once and are then shared by the H head tasks from cache */
    int64_t h = task % c->H, bc = task / c->H;
    int64_t b = bc / c->nqc, chunk = bc % c->nqc;
    int64_t i0 = chunk * c->qc, i1 = i0 + c->qc < c->Nq ? i0 + c->qc : c->Nq, nrows = i1 - i0;
    int64_t qcp = (nrows + 7) & ~(int64_t)7; /* queries padded to whole vectors */

    float *base = sdc_cpu_scratch(c->cpu, thread, c->scratch_bytes);
    if (!base) { atomic_store(&c->failed, 1); return; }
    float *qt = base;                                   /* [d][qcp] */
    float *ot = qt + align16((size_t)(d * c->qc + 8 * d)); /* [d][qcp] */
    float *m = ot + align16((size_t)(d * c->qc + 8 * d));  /* [qcp]    */
    float *l = m + align16((size_t)c->qc + 8);          /* [qcp]    */
    float *st = l + align16((size_t)c->qc + 8);         /* [bk][QB] */
    const int64_t BK = c->bk;

    const float *qb = c->q + (b * c->Nq + i0) * c->ldq + h * d;
    for (int64_t r = 0; r < nrows; r++) /* many rows in flight instead of one miss at a time */
        for (int64_t x = 0; x < d; x += 16) __builtin_prefetch(qb + r * c->ldq + x);
    int64_t rdone = 0, xdone = 0;
#if SDC_HAVE_X86
    if (c->avx2) pack_q_avx2(qb, c->ldq, nrows, d, c->qscale, qt, qcp, &rdone, &xdone);
#endif
    for (int64_t r = 0; r < qcp; r++)
        for (int64_t x = r < rdone ? xdone : 0; x < d; x++)
            qt[x * qcp + r] = r < nrows ? qb[r * c->ldq + x] * c->qscale : 0.0f;
    memset(ot, 0, (size_t)(d * qcp) * sizeof *ot);
    for (int64_t r = 0; r < qcp; r++) { m[r] = -INFINITY; l[r] = 0; }

    const float *kbase = c->k + b * c->Nk * c->ldk + h * d;
    const float *vbase = c->v + b * c->Nk * c->ldv + h * d;

    for (int64_t kb = 0; kb < c->Nk; kb += BK) {
        if (c->causal && kb > i1 - 1) break; /* this and later blocks are masked for all rows */
        int64_t nkb = c->Nk - kb < BK ? c->Nk - kb : BK;
        /* Ask for the next block's rows now: they come from L3 or DRAM (strided rows of a
         * fused projection) and would otherwise stall the copies below. */
        for (int64_t j = kb + BK; j < kb + 2 * BK && j < c->Nk; j++)
            for (int64_t x = 0; x < d; x += 16) {
                __builtin_prefetch(kbase + j * c->ldk + x);
                __builtin_prefetch(vbase + j * c->ldv + x);
            }
        const float *kblk = kbase + kb * c->ldk, *vblk = vbase + kb * c->ldv;
        for (int64_t r0 = 0; r0 < qcp; r0 += QB) {
            int64_t nq = qcp - r0 < QB ? qcp - r0 : QB;       /* padded, multiple of 8 */
            int64_t nr = nrows - r0 < nq ? nrows - r0 : nq;   /* real queries */
            int64_t g0 = i0 + r0; /* global index of the sub-block's first query */
            if (c->causal && kb > g0 + nr - 1) continue;      /* fully masked: an exact no-op */
#if SDC_HAVE_X86
            if (c->avx2 > 1) st_block_avx512(kblk, c->ldk, d, qt + r0, qcp, st, nkb, nq);
            else if (c->avx2) st_block_avx2(kblk, c->ldk, d, qt + r0, qcp, st, nkb, nq);
            else
#endif
                st_block_scalar(kblk, c->ldk, d, qt + r0, qcp, st, nkb, nq);
            if (c->causal) /* key kb+j is hidden from query g0+r when kb+j > g0+r */
                for (int64_t j = 0; j < nkb; j++) {
                    int64_t hide = kb + j - g0; /* queries r < hide are masked */
                    for (int64_t r = 0; r < (hide < nq ? hide : nq); r++) st[j * QB + r] = -INFINITY;
                }
#if SDC_HAVE_X86
            if (c->avx2) {
                if (c->avx2 > 1) softmax_block_avx512(st, nkb, nq, m + r0, l + r0, ot + r0, qcp, d, kb == 0);
                else softmax_block_avx2(st, nkb, nq, m + r0, l + r0, ot + r0, qcp, d, kb == 0);
                if (c->avx2 > 1) pv_block_avx512(ot + r0, qcp, vblk, c->ldv, d, st, nkb, nq);
                else pv_block_avx2(ot + r0, qcp, vblk, c->ldv, d, st, nkb, nq);
                continue;
            }
#endif
            softmax_block_scalar(st, nkb, nq, m + r0, l + r0, ot + r0, qcp, d);
            pv_block_scalar(ot + r0, qcp, vblk, c->ldv, d, st, nkb, nq);
        }
    }

    float *ob = c->out + (b * c->Nq + i0) * c->ldo + h * d;
    for (int64_t r = 0; r < nrows; r++) {
        for (int64_t x = 0; x < d; x += 16) __builtin_prefetch(ob + r * c->ldo + x, 1);
        m[r] = l[r] > 0 ? 1.0f / l[r] : 0.0f; /* m now holds 1/l */
    }
    rdone = xdone = 0;
#if SDC_HAVE_X86
    if (c->avx2) unpack_o_avx2(ot, qcp, m, nrows, d, ob, c->ldo, &rdone, &xdone);
#endif
    for (int64_t r = 0; r < nrows; r++)
        for (int64_t x = r < rdone ? xdone : 0; x < d; x++) ob[r * c->ldo + x] = ot[x * qcp + r] * m[r];
}

sdc_status sdc_cpu_attention(sdc_cpu *cpu, int64_t B, int64_t H, int64_t Nq, int64_t Nk, int64_t d,
                             const float *q, int64_t ldq, const float *k, int64_t ldk,
                             const float *v, int64_t ldv, float *out, int64_t ldo,
                             float scale, bool causal) {
    if (!cpu || !q || !k || !v || !out) return SDC_E_INVALID;
    if (B < 0 || H < 0 || Nq < 0 || Nk < 0 || d < 1) return SDC_E_INVALID;
    if (H > 0 && d > INT64_MAX / H) return SDC_E_INVALID;
    int64_t hd = H * d;
    if (ldq < hd || ldk < hd || ldv < hd || ldo < hd) return SDC_E_INVALID;
    if (d > (1 << 20) || !isfinite(scale)) return SDC_E_INVALID;
    if (B == 0 || H == 0 || Nq == 0) return SDC_OK;
    if (Nk == 0) { /* no keys: every row sees nothing */
        for (int64_t i = 0; i < B * Nq; i++) memset(out + i * ldo, 0, (size_t)hd * sizeof *out);
        return SDC_OK;
    }

    if (!causal && sdc_cpu_bf16_active(cpu)) {
        sdc_status st = sdc_cpu_attention_bf16(cpu, B, H, Nq, Nk, d, q, ldq, k, ldk, v, ldv, out, ldo, scale);
        if (st != SDC_E_UNSUPPORTED) return st;
    }
    attn_ctx c;
    memset(&c, 0, sizeof c);
    atomic_init(&c.failed, 0);
    c.cpu = cpu;
    c.B = B; c.H = H; c.Nq = Nq; c.Nk = Nk; c.d = d;
    c.q = q; c.k = k; c.v = v; c.out = out;
    c.ldq = ldq; c.ldk = ldk; c.ldv = ldv; c.ldo = ldo;
    c.qscale = (float)((double)scale * 1.44269504088896340736); /* log2(e): softmax in base 2 */
    c.causal = causal;
#if SDC_HAVE_X86
    c.avx2 = cpu->isa >= SDC_ISA_AVX512 ? 2 : cpu->isa >= SDC_ISA_AVX2; /* 2: AVX-512 score and P.V tiles */
#endif
    /* Rows per task: up to QC_MAX (K and V are re-read once per task), split evenly, and
     * smaller when that would leave threads idle. The split does not change any result. */
    int64_t nch = (Nq + QC_MAX - 1) / QC_MAX;
    while (B * H * nch < 4 * (int64_t)cpu->n_threads && Nq / (2 * nch) >= QB) nch *= 2;
    int64_t qc = ((Nq + nch - 1) / nch + 7) & ~(int64_t)7;
    c.qc = qc;
    c.bk = Nk <= SDC_ATTN_BLOCK_K_MAX ? Nk : SDC_ATTN_BLOCK_K;
    c.nqc = (Nq + qc - 1) / qc;
    c.scratch_bytes = sizeof(float) * (2 * align16((size_t)(d * qc + 8 * d)) + 2 * align16((size_t)qc + 8) +
                                       align16((size_t)(BK_MAX * QB)));
    for (int t = 0; t < cpu->n_threads; t++)
        if (!sdc_cpu_scratch(cpu, t, c.scratch_bytes)) return SDC_E_NOMEM;
    sdc_pool_for(cpu->pool, B * H * c.nqc, attn_task, &c);
    return atomic_load(&c.failed) ? SDC_E_NOMEM : SDC_OK;
}
