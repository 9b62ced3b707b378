/* gemm.c - blocked fp32 GEMM with weights dequantized a panel at a time; linear on top.
 *
 * Structure (GotoBLAS / BLIS loop nest, our own code):
 *
 *   for jc in N by NC                      column panel
 *     for pc in K by KC                    K block (depends on K and the type only)
 *       pack B[pc:pc+kc, jc:jc+nc]         once per call, shared, in parallel over 16-wide
 *                                          slivers: dst[k*16 + j] (weights dequantized here)
 *       parallel over tasks (row block ic of mc rows) x (chunk of slivers):
 *         pack A[ic:ic+mc, pc:pc+kc]       per task: dst[k*8 + i] per 6-row sliver
 *                                          (or read A in place when it is plain f32)
 *         for each sliver jr, each 6-row sliver ir:  6x16 micro-kernel
 *
 * The micro-kernel keeps a 6x16 tile of C in 12 ymm accumulators; per k it loads 16 B
 * values (2 ymm) and broadcasts 6 A values: 12 FMAs for 8 loads, which fits Zen 3's two
 * FMA pipes. At pc == 0 the accumulators start at bias (bias_m[i] + bias_n[j], one of
 * them 0), later K blocks reload C, so each element is one fma chain over k = 0..K-1 in
 * order: blocking, task split and thread count cannot change a bit, and the scalar twin
 * (fmaf, same order) gives identical results. Partial tiles run on a 6x16 stack tile.
 * With AVX-512 (F, BW, VL), two adjacent whole slivers run together on a 6x32 kernel (12 zmm
 * accumulators, 2 B loads and 6 broadcasts per k), same chains, same bits.
 *
 * With b_per_task (conv on large images, linear with <= 288 rows) there is no shared panel:
 * each task runs the K loop itself and packs the B slivers it needs into private scratch
 * right before use (4 slivers at a time); with <= 288 rows all rows form one block, so each
 * weight sliver is still dequantized exactly once per call. When that one row block is split
 * into several column chunks, A is packed once up front for all K blocks into a shared
 * buffer (<= APRE_MAX_BYTES, else per task as above) that every chunk reads.
 *
 * With a shared panel and several K blocks (the UNet's linears: K = 640..5120 over 512..2048
 * rows), that loop nest writes the whole C out and reads it back once per K block. There the
 * K-stationary mode runs instead (kpanel_task): the panel's B is packed for all K blocks up
 * front (<= KPANEL_BYTES, so panels narrow as K grows), each task packs its A rows for all K
 * blocks once, and runs every K block on a group of slivers in its C stage (L2) before the
 * next group. Same fma chains, same bits.
 *
 * Sizes: KC <= 256 (a 16-wide B sliver is 16 KiB, held in L1 while A streams from L2; up to
 * 384 as one block where C is large, see sdc_cpu_gemm),
 * MC <= 144 rows (A block <= 192 KiB in L2), NC <= 4096 (B panel <= 4 MiB, in L3; in the
 * K-stationary mode <= KPANEL_BYTES for all K blocks). */
#include "gemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "quant.h"

#if defined(__x86_64__) || defined(__i386__)
#define SDC_GEMM_X86 1
#include <immintrin.h>
#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
#endif

enum {
    MR = SDC_GEMM_MR,
    NR = SDC_GEMM_NR,
    AW = 8,         /* floats per k in a packed A sliver (6 rows padded to 8) */
    MC_MAX = 144,
    MC_FUSED_MAX = 288, /* b_per_task: up to this many rows form one block, so each B sliver is
                           packed once per call (A block <= 384 KiB, still in L2) */
    DIRECT_M_MAX = 96,  /* linear: at most this many rows read x in place (see sdc_cpu_linear) */
    KC_MAX = 256,
    KC_ONE_MAX = 384,   /* shared-panel mode with a C over C_BIG_BYTES: K up to this is one block
                           (no C round trip between K blocks; a 384-deep sliver is 24 KiB, in L1) */
    C_BIG_BYTES = 4 << 20,
    NC_MAX = 4096,
    C_GROUP_BYTES = 192 * 1024, /* b_per_task and K-stationary: a task's C stage, kept in L2
                                   across K blocks */
    APRE_MAX_BYTES = 8 << 20,   /* b_per_task: largest A packed once for all column chunks (288 rows
                                   x K 5120 is 48 slivers x 5120 x 8 floats = 7.5 MiB) */
    KPANEL_BYTES = 16 << 20,    /* K-stationary mode: the B panel for all K blocks (see kpanel_task) */
    KPANEL_A_BYTES = 4 << 20,   /* ... and a task's A for all K blocks, at most */
};

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t rup(int64_t a, int64_t b) { return cdiv(a, b) * b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* ---------------------------------------------------------------- segment dequantizers */

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

#ifdef SDC_GEMM_X86
AVX2_FN static void deq_f16_avx2(const uint8_t *p, int64_t n, float *dst) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))));
    for (; i < n; i++) dst[i] = sdc_f16_to_f32(rd16(p + 2 * i));
}

AVX2_FN static void deq_bf16_avx2(const uint8_t *p, int64_t n, float *dst) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p + 2 * i)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
    }
    for (; i < n; i++) dst[i] = sdc_bf16_to_f32(rd16(p + 2 * i));
}

/* 8 small integers (as int32 lanes) -> float, then *d (+ m when has_m: a separate add, as
 * the reference's "q*d + m" rounds twice). */
#define DQ_STORE(dst, qi, vd, vm, has_m)                                   \
    do {                                                                   \
        __m256 f_ = _mm256_mul_ps(_mm256_cvtepi32_ps(qi), (vd));           \
        if (has_m) f_ = _mm256_add_ps(f_, (vm));                           \
        _mm256_storeu_ps((dst), f_);                                       \
    } while (0)

AVX2_FN static void deq_q8_0_avx2(const uint8_t *p, int64_t nb, float *dst) {
    for (int64_t b = 0; b < nb; b++, p += sizeof(sdc_block_q8_0), dst += SDC_QK) {
        const __m256 vd = _mm256_set1_ps(sdc_f16_to_f32(rd16(p)));
        for (int g = 0; g < 4; g++) {
            __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 2 + 8 * g)));
            DQ_STORE(dst + 8 * g, q, vd, vd, 0);
        }
    }
}

/* Q4_0 / Q4_1: qs at p + off; values 0..15 in low nibbles, 16..31 in high nibbles. */
AVX2_FN static void deq_q4_avx2(const uint8_t *p, int64_t nb, float *dst, int has_m) {
    const size_t bs = has_m ? sizeof(sdc_block_q4_1) : sizeof(sdc_block_q4_0);
    const int off = has_m ? 4 : 2;
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m256i eight = _mm256_set1_epi32(8);
    for (int64_t b = 0; b < nb; b++, p += bs, dst += SDC_QK) {
        const __m256 vd = _mm256_set1_ps(sdc_f16_to_f32(rd16(p)));
        const __m256 vm = _mm256_set1_ps(has_m ? sdc_f16_to_f32(rd16(p + 2)) : 0.0f);
        const __m128i v = _mm_loadu_si128((const __m128i *)(p + off));
        const __m128i lo = _mm_and_si128(v, m4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
        __m256i q[4] = {_mm256_cvtepu8_epi32(lo), _mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)),
                        _mm256_cvtepu8_epi32(hi), _mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))};
        for (int g = 0; g < 4; g++) {
            if (!has_m) q[g] = _mm256_sub_epi32(q[g], eight);
            DQ_STORE(dst + 8 * g, q[g], vd, vm, has_m);
        }
    }
}

/* Q5_0 / Q5_1: as Q4 plus bit j of the u32 qh as bit 4 of value j. */
AVX2_FN static void deq_q5_avx2(const uint8_t *p, int64_t nb, float *dst, int has_m) {
    const size_t bs = has_m ? sizeof(sdc_block_q5_1) : sizeof(sdc_block_q5_0);
    const int off = has_m ? 4 : 2;
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m256i sixteen = _mm256_set1_epi32(16), one = _mm256_set1_epi32(1);
    const __m256i shifts = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int64_t b = 0; b < nb; b++, p += bs, dst += SDC_QK) {
        const __m256 vd = _mm256_set1_ps(sdc_f16_to_f32(rd16(p)));
        const __m256 vm = _mm256_set1_ps(has_m ? sdc_f16_to_f32(rd16(p + 2)) : 0.0f);
        const uint32_t qh = rd32(p + off);
        const __m128i v = _mm_loadu_si128((const __m128i *)(p + off + 4));
        const __m128i lo = _mm_and_si128(v, m4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
        __m256i q[4] = {_mm256_cvtepu8_epi32(lo), _mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)),
                        _mm256_cvtepu8_epi32(hi), _mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))};
        for (int g = 0; g < 4; g++) {
            __m256i hb = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)(qh >> (8 * g))), shifts), one);
            __m256i qq = _mm256_or_si256(q[g], _mm256_slli_epi32(hb, 4));
            if (!has_m) qq = _mm256_sub_epi32(qq, sixteen);
            DQ_STORE(dst + 8 * g, qq, vd, vm, has_m);
        }
    }
}
#endif

bool sdc_gemm_dequant_seg(sdc_type t, const void *row, int64_t k0, int64_t n, float *dst, sdc_isa isa) {
    const sdc_type_traits *tr = sdc_type_traits_of(t);
    if (!tr || !tr->is_float || k0 % tr->block || n % tr->block) return false;
    const uint8_t *p = (const uint8_t *)row + (size_t)(k0 / tr->block) * (size_t)tr->block_bytes;
#ifdef SDC_GEMM_X86
    if (isa >= SDC_ISA_AVX2) {
        switch (t) {
        case SDC_TYPE_F32: memcpy(dst, p, (size_t)n * sizeof(float)); return true;
        case SDC_TYPE_F16: deq_f16_avx2(p, n, dst); return true;
        case SDC_TYPE_BF16: deq_bf16_avx2(p, n, dst); return true;
        case SDC_TYPE_Q8_0: deq_q8_0_avx2(p, n / SDC_QK, dst); return true;
        case SDC_TYPE_Q4_0: deq_q4_avx2(p, n / SDC_QK, dst, 0); return true;
        case SDC_TYPE_Q4_1: deq_q4_avx2(p, n / SDC_QK, dst, 1); return true;
        case SDC_TYPE_Q5_0: deq_q5_avx2(p, n / SDC_QK, dst, 0); return true;
        case SDC_TYPE_Q5_1: deq_q5_avx2(p, n / SDC_QK, dst, 1); return true;
        default: break; /* K-quants, F64: the reference decoder */
        }
    }
#else
    (void)isa;
#endif
    return sdc_dequantize_row(t, p, dst, n);
}

/* ---------------------------------------------------------------- row packing */

#ifdef SDC_GEMM_X86
/* 8x8 transpose of a[0..7] (8 floats each) into o[t*ld + 0..7]. */
AVX2_FN static inline void transpose8_regs(const __m256 *a, float *o, int64_t ld) {
    __m256 t0 = _mm256_unpacklo_ps(a[0], a[1]), t1 = _mm256_unpackhi_ps(a[0], a[1]);
    __m256 t2 = _mm256_unpacklo_ps(a[2], a[3]), t3 = _mm256_unpackhi_ps(a[2], a[3]);
    __m256 t4 = _mm256_unpacklo_ps(a[4], a[5]), t5 = _mm256_unpackhi_ps(a[4], a[5]);
    __m256 t6 = _mm256_unpacklo_ps(a[6], a[7]), t7 = _mm256_unpackhi_ps(a[6], a[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(o + 0 * ld, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(o + 1 * ld, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(o + 2 * ld, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(o + 3 * ld, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(o + 4 * ld, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(o + 5 * ld, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(o + 6 * ld, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(o + 7 * ld, _mm256_permute2f128_ps(s3, s7, 0x31));
}

/* 8x8 transpose of rows r[0..7] (8 floats each, from offset off) into o[t*ld + 0..7]. */
AVX2_FN static void transpose8_store(const float *const r[8], int64_t off, float *o, int64_t ld) {
    __m256 a[8];
    for (int i = 0; i < 8; i++) a[i] = _mm256_loadu_ps(r[i] + off);
    transpose8_regs(a, o, ld);
}

/* F16/BF16/F32 rows straight into the interleaved layout (no f32 row copy): converts 8
 * values of 8 rows at a time and transposes them; rows >= nr are zero. k0 in values. */
AVX2_FN static void pack_plain_rows_avx2(sdc_type t, const uint8_t *w, size_t row_bytes, int64_t r0, int nr,
                                         int width, int64_t k0, int64_t kc, float *dst) {
    const size_t es = t == SDC_TYPE_F32 ? 4 : 2;
    for (int g = 0; g < width; g += 8) {
        const uint8_t *rp[8];
        for (int i = 0; i < 8; i++) rp[i] = g + i < nr ? w + (size_t)(r0 + g + i) * row_bytes + (size_t)k0 * es : NULL;
        int64_t k = 0;
        for (; k + 8 <= kc; k += 8) {
            __m256 a[8];
            for (int i = 0; i < 8; i++) {
                if (!rp[i]) a[i] = _mm256_setzero_ps();
                else if (t == SDC_TYPE_F16) a[i] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(rp[i] + 2 * k)));
                else if (t == SDC_TYPE_BF16)
                    a[i] = _mm256_castsi256_ps(_mm256_slli_epi32(
                        _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(rp[i] + 2 * k))), 16));
                else a[i] = _mm256_loadu_ps((const float *)(const void *)(rp[i] + 4 * k));
            }
            transpose8_regs(a, dst + k * width + g, width);
        }
        for (; k < kc; k++)
            for (int i = 0; i < 8; i++) {
                float v = 0.0f;
                if (rp[i]) {
                    if (t == SDC_TYPE_F32) memcpy(&v, rp[i] + 4 * k, 4);
                    else v = t == SDC_TYPE_F16 ? sdc_f16_to_f32(rd16(rp[i] + 2 * k)) : sdc_bf16_to_f32(rd16(rp[i] + 2 * k));
                }
                dst[k * width + g + i] = v;
            }
    }
}

/* Q8_0 / Q4_x / Q5_x rows straight into the interleaved layout: per 32-value block, four
 * groups of 8 values of 8 rows are decoded into registers (the same integer -> float, *d,
 * +m steps as the segment decoders above, so the values are identical) and transposed.
 * No f32 row copy. k0 and kc are multiples of 32; rows >= nr are zero. */
AVX2_FN static void pack_quant_rows_avx2(sdc_type t, const uint8_t *w, size_t row_bytes, int64_t r0, int nr,
                                         int width, int64_t k0, int64_t kc, float *dst) {
    const int q8 = t == SDC_TYPE_Q8_0, q5 = t == SDC_TYPE_Q5_0 || t == SDC_TYPE_Q5_1;
    const int has_m = t == SDC_TYPE_Q4_1 || t == SDC_TYPE_Q5_1;
    const size_t bs = q8 ? sizeof(sdc_block_q8_0) : t == SDC_TYPE_Q4_0 ? sizeof(sdc_block_q4_0)
                    : t == SDC_TYPE_Q4_1 ? sizeof(sdc_block_q4_1) : t == SDC_TYPE_Q5_0 ? sizeof(sdc_block_q5_0)
                    : sizeof(sdc_block_q5_1);
    const int off = (has_m ? 4 : 2) + (q5 ? 4 : 0); /* qs offset in the block */
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m256i bias = _mm256_set1_epi32(q5 ? 16 : 8), one = _mm256_set1_epi32(1);
    const __m256i shifts = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int g = 0; g < width; g += 8) {
        const uint8_t *rp[8];
        for (int i = 0; i < 8; i++)
            rp[i] = g + i < nr ? w + (size_t)(r0 + g + i) * row_bytes + (size_t)(k0 / SDC_QK) * bs : NULL;
        for (int64_t k = 0; k < kc; k += SDC_QK) {
            __m256 vd[8], vm[8];
            uint32_t qh[8];
            for (int i = 0; i < 8; i++) {
                if (!rp[i]) continue;
                const uint8_t *b = rp[i] + (size_t)(k / SDC_QK) * bs;
                vd[i] = _mm256_set1_ps(sdc_f16_to_f32(rd16(b)));
                vm[i] = _mm256_set1_ps(has_m ? sdc_f16_to_f32(rd16(b + 2)) : 0.0f);
                qh[i] = q5 ? rd32(b + off - 4) : 0;
            }
            for (int s = 0; s < 4; s++) {
                __m256 a[8];
                for (int i = 0; i < 8; i++) {
                    if (!rp[i]) { a[i] = _mm256_setzero_ps(); continue; }
                    const uint8_t *qs = rp[i] + (size_t)(k / SDC_QK) * bs + off;
                    __m256i q;
                    if (q8) {
                        q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(qs + 8 * s)));
                    } else {
                        __m128i v = _mm_loadl_epi64((const __m128i *)(qs + 8 * (s & 1)));
                        if (s >= 2) v = _mm_srli_epi16(v, 4);
                        q = _mm256_cvtepu8_epi32(_mm_and_si128(v, m4));
                        if (q5) {
                            __m256i hb = _mm256_and_si256(
                                _mm256_srlv_epi32(_mm256_set1_epi32((int)(qh[i] >> (8 * s))), shifts), one);
                            q = _mm256_or_si256(q, _mm256_slli_epi32(hb, 4));
                        }
                        if (!has_m) q = _mm256_sub_epi32(q, bias);
                    }
                    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(q), vd[i]);
                    if (has_m) f = _mm256_add_ps(f, vm[i]);
                    a[i] = f;
                }
                transpose8_regs(a, dst + (k + 8 * s) * width + g, width);
            }
        }
    }
}

AVX2_FN static void interleave_avx2(const float *tmp, int64_t ldt, int width, int64_t kc, float *dst) {
    for (int g = 0; g < width; g += 8) {
        const float *r[8];
        for (int i = 0; i < 8; i++) r[i] = tmp + (g + i) * ldt;
        int64_t k = 0;
        for (; k + 8 <= kc; k += 8) transpose8_store(r, k, dst + k * width + g, width);
        for (; k < kc; k++)
            for (int i = 0; i < 8; i++) dst[k * width + g + i] = r[i][k];
    }
}
#endif

/* Dequantizes rows [r0, r0+nr) of a weight matrix (rows of row_bytes), values [k0, k0+kc),
 * into dst[k*width + r] (width 8 or 16), lanes nr..width-1 zero. */
static void pack_weight_rows(sdc_type t, const uint8_t *w, size_t row_bytes, int64_t r0, int nr, int width,
                             int64_t k0, int64_t kc, float *dst, sdc_isa isa) {
#ifdef SDC_GEMM_X86
    if (isa >= SDC_ISA_AVX2 && (t == SDC_TYPE_F16 || t == SDC_TYPE_BF16 || t == SDC_TYPE_F32)) {
        pack_plain_rows_avx2(t, w, row_bytes, r0, nr, width, k0, kc, dst);
        return;
    }
    if (isa >= SDC_ISA_AVX2 && kc % SDC_QK == 0 &&
        (t == SDC_TYPE_Q8_0 || t == SDC_TYPE_Q4_0 || t == SDC_TYPE_Q4_1 || t == SDC_TYPE_Q5_0 || t == SDC_TYPE_Q5_1)) {
        pack_quant_rows_avx2(t, w, row_bytes, r0, nr, width, k0, kc, dst);
        return;
    }
#endif
    float tmp[NR * KC_ONE_MAX] __attribute__((aligned(64)));
    const int64_t ldt = KC_ONE_MAX;
    for (int r = 0; r < width; r++) {
        if (r < nr) sdc_gemm_dequant_seg(t, w + (size_t)(r0 + r) * row_bytes, k0, kc, tmp + r * ldt, isa);
        else memset(tmp + r * ldt, 0, (size_t)kc * sizeof(float));
    }
#ifdef SDC_GEMM_X86
    if (isa >= SDC_ISA_AVX2) {
        interleave_avx2(tmp, ldt, width, kc, dst);
        return;
    }
#endif
    for (int64_t k = 0; k < kc; k++)
        for (int r = 0; r < width; r++) dst[k * width + r] = tmp[r * ldt + k];
}

/* ---------------------------------------------------------------- micro-kernels */

/* C[6x16] (ldc) = (load ? C : bm[i] + bn[j]) + sum_k a_i[k] * b[k*16 + j], as fma chains.
 * Row i of A: packed: ap[k*8 + i]; direct: arow[i][k]. */
static void ukr_scalar(int64_t kc, const float *ap, const float *const *arow, const float *b, float *c,
                       int64_t ldc, int load, const float *bm, const float *bn) {
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = load ? c[i * ldc + j] : bm[i] + bn[j];
    for (int64_t k = 0; k < kc; k++) {
        for (int i = 0; i < MR; i++) {
            const float a = ap ? ap[k * AW + i] : arow[i][k];
            for (int j = 0; j < NR; j++) acc[i][j] = fmaf(a, b[k * NR + j], acc[i][j]);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) c[i * ldc + j] = acc[i][j];
}

#ifdef SDC_GEMM_X86
#define UKR_INIT()                                                                            \
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;                        \
    if (load) {                                                                               \
        c00 = _mm256_loadu_ps(c + 0 * ldc); c01 = _mm256_loadu_ps(c + 0 * ldc + 8);           \
        c10 = _mm256_loadu_ps(c + 1 * ldc); c11 = _mm256_loadu_ps(c + 1 * ldc + 8);           \
        c20 = _mm256_loadu_ps(c + 2 * ldc); c21 = _mm256_loadu_ps(c + 2 * ldc + 8);           \
        c30 = _mm256_loadu_ps(c + 3 * ldc); c31 = _mm256_loadu_ps(c + 3 * ldc + 8);           \
        c40 = _mm256_loadu_ps(c + 4 * ldc); c41 = _mm256_loadu_ps(c + 4 * ldc + 8);           \
        c50 = _mm256_loadu_ps(c + 5 * ldc); c51 = _mm256_loadu_ps(c + 5 * ldc + 8);           \
    } else {                                                                                  \
        for (int i_ = 0; i_ < MR; i_++) __builtin_prefetch(c + i_ * ldc, 1, 3);                \
        const __m256 n0 = _mm256_loadu_ps(bn), n1 = _mm256_loadu_ps(bn + 8);                  \
        __m256 m;                                                                             \
        m = _mm256_set1_ps(bm[0]); c00 = _mm256_add_ps(m, n0); c01 = _mm256_add_ps(m, n1);    \
        m = _mm256_set1_ps(bm[1]); c10 = _mm256_add_ps(m, n0); c11 = _mm256_add_ps(m, n1);    \
        m = _mm256_set1_ps(bm[2]); c20 = _mm256_add_ps(m, n0); c21 = _mm256_add_ps(m, n1);    \
        m = _mm256_set1_ps(bm[3]); c30 = _mm256_add_ps(m, n0); c31 = _mm256_add_ps(m, n1);    \
        m = _mm256_set1_ps(bm[4]); c40 = _mm256_add_ps(m, n0); c41 = _mm256_add_ps(m, n1);    \
        m = _mm256_set1_ps(bm[5]); c50 = _mm256_add_ps(m, n0); c51 = _mm256_add_ps(m, n1);    \
    }

#define UKR_STEP(A0, A1, A2, A3, A4, A5, B)                                                   \
    do {                                                                                      \
        const __m256 b0 = _mm256_load_ps(B), b1 = _mm256_load_ps((B) + 8);                    \
        __m256 a;                                                                             \
        a = _mm256_broadcast_ss(A0); c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01); \
        a = _mm256_broadcast_ss(A1); c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11); \
        a = _mm256_broadcast_ss(A2); c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21); \
        a = _mm256_broadcast_ss(A3); c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31); \
        a = _mm256_broadcast_ss(A4); c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41); \
        a = _mm256_broadcast_ss(A5); c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51); \
    } while (0)

#define UKR_STORE()                                                                           \
    _mm256_storeu_ps(c + 0 * ldc, c00); _mm256_storeu_ps(c + 0 * ldc + 8, c01);               \
    _mm256_storeu_ps(c + 1 * ldc, c10); _mm256_storeu_ps(c + 1 * ldc + 8, c11);               \
    _mm256_storeu_ps(c + 2 * ldc, c20); _mm256_storeu_ps(c + 2 * ldc + 8, c21);               \
    _mm256_storeu_ps(c + 3 * ldc, c30); _mm256_storeu_ps(c + 3 * ldc + 8, c31);               \
    _mm256_storeu_ps(c + 4 * ldc, c40); _mm256_storeu_ps(c + 4 * ldc + 8, c41);               \
    _mm256_storeu_ps(c + 5 * ldc, c50); _mm256_storeu_ps(c + 5 * ldc + 8, c51);

AVX2_FN static void ukr_avx2_packed(int64_t kc, const float *ap, const float *b, float *c, int64_t ldc, int load,
                                    const float *bm, const float *bn) {
    UKR_INIT();
    /* One k per iteration: unrolling lets gcc hoist B loads and run out of the 16 ymm
     * registers (it then reloads B from memory for every FMA). */
#pragma GCC unroll 1
    for (int64_t k = 0; k < kc; k++) {
        UKR_STEP(ap + 0, ap + 1, ap + 2, ap + 3, ap + 4, ap + 5, b);
        ap += AW;
        b += NR;
    }
    UKR_STORE();
}

/* The packed kernel for a tile of mr < 6 full-width rows (the last row sliver of a block
 * whose row count is not a multiple of 6: 320 = 53*6 + 2, 128 = 21*6 + 2): only mr rows of
 * FMAs, C read and written in place. Each element's fma chain is the 6-row kernel's. */
static inline __attribute__((always_inline, target("avx2,fma,f16c"))) void
ukr_avx2_rows(int64_t kc, const float *ap, const float *b, float *c, int64_t ldc, int load, const float *bm,
              const float *bn, const int R) {
    __m256 acc[MR - 1][2];
    for (int i = 0; i < R; i++) {
        if (load) {
            acc[i][0] = _mm256_loadu_ps(c + i * ldc);
            acc[i][1] = _mm256_loadu_ps(c + i * ldc + 8);
        } else {
            const __m256 m = _mm256_set1_ps(bm[i]);
            acc[i][0] = _mm256_add_ps(m, _mm256_loadu_ps(bn));
            acc[i][1] = _mm256_add_ps(m, _mm256_loadu_ps(bn + 8));
        }
    }
#pragma GCC unroll 1
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        __asm__("" : "+x"(b0), "+x"(b1));
        for (int i = 0; i < R; i++) {
            const __m256 a = _mm256_broadcast_ss(ap + i);
            acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
        }
        ap += AW;
        b += NR;
    }
    for (int i = 0; i < R; i++) {
        _mm256_storeu_ps(c + i * ldc, acc[i][0]);
        _mm256_storeu_ps(c + i * ldc + 8, acc[i][1]);
    }
}

AVX2_FN static void ukr_avx2_packed_part(int64_t kc, const float *ap, const float *b, float *c, int64_t ldc,
                                         int load, const float *bm, const float *bn, int mr) {
    switch (mr) {
    case 1: ukr_avx2_rows(kc, ap, b, c, ldc, load, bm, bn, 1); break;
    case 2: ukr_avx2_rows(kc, ap, b, c, ldc, load, bm, bn, 2); break;
    case 3: ukr_avx2_rows(kc, ap, b, c, ldc, load, bm, bn, 3); break;
    case 4: ukr_avx2_rows(kc, ap, b, c, ldc, load, bm, bn, 4); break;
    default: ukr_avx2_rows(kc, ap, b, c, ldc, load, bm, bn, 5); break;
    }
}

AVX2_FN static void ukr_avx2_direct(int64_t kc, const float *const *arow, const float *b, float *c, int64_t ldc,
                                    int load, const float *bm, const float *bn) {
    UKR_INIT();
    const float *a0 = arow[0], *a1 = arow[1], *a2 = arow[2], *a3 = arow[3], *a4 = arow[4], *a5 = arow[5];
    /* One k per iteration, B held in registers (the empty asm stops gcc from folding the B
     * loads into every FMA as memory operands, which makes the loop load-bound). */
#pragma GCC unroll 1
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        __asm__("" : "+x"(b0), "+x"(b1));
        __m256 a;
        a = _mm256_broadcast_ss(a0 + k); c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(a1 + k); c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(a2 + k); c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(a3 + k); c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(a4 + k); c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(a5 + k); c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51);
        b += NR;
    }
    UKR_STORE();
}
/* AVX-512: two adjacent 16-wide B slivers at once, a 6x32 tile in 12 zmm accumulators (row i,
 * sliver h in acc[h][i]). Per k: 2 B loads, 6 A broadcasts, 12 FMAs, which keeps both 512-bit
 * FMA ports busy with enough independent chains to cover their latency. Each C element is
 * the same fma chain over k as in the 6x16 kernels and the scalar twin, so results are
 * identical bit for bit. C of sliver h at c[h] (row stride ldc); A packed (ap) or in place
 * (arow); bias bm[i] + bn[h][j] as in UKR_INIT. */
#define AVX512_FN __attribute__((target("avx512f,avx512vl,avx512bw,avx2,fma,f16c")))
AVX512_FN static void ukr_avx512_pair(int64_t kc, const float *ap, const float *const *arow, const float *b0,
                                      const float *b1, float *const c[2], int64_t ldc, int load, const float *bm,
                                      const float *const bn[2]) {
    __m512 a0[MR], a1[MR];
    if (load) {
        for (int i = 0; i < MR; i++) {
            a0[i] = _mm512_loadu_ps(c[0] + i * ldc);
            a1[i] = _mm512_loadu_ps(c[1] + i * ldc);
        }
    } else {
        const __m512 n0 = _mm512_loadu_ps(bn[0]), n1 = _mm512_loadu_ps(bn[1]);
        for (int i = 0; i < MR; i++) {
            __builtin_prefetch(c[0] + i * ldc, 1, 3);
            __builtin_prefetch(c[1] + i * ldc, 1, 3);
            const __m512 m = _mm512_set1_ps(bm[i]);
            a0[i] = _mm512_add_ps(m, n0);
            a1[i] = _mm512_add_ps(m, n1);
        }
    }
#define PAIR_FMA(I, SRC)                                          \
    do {                                                          \
        const __m512 a_ = _mm512_set1_ps(SRC);                    \
        a0[I] = _mm512_fmadd_ps(a_, v0, a0[I]);                   \
        a1[I] = _mm512_fmadd_ps(a_, v1, a1[I]);                   \
    } while (0)
    if (ap) {
#pragma GCC unroll 1
        for (int64_t k = 0; k < kc; k++) {
            const __m512 v0 = _mm512_loadu_ps(b0 + k * NR), v1 = _mm512_loadu_ps(b1 + k * NR);
            PAIR_FMA(0, ap[0]); PAIR_FMA(1, ap[1]); PAIR_FMA(2, ap[2]);
            PAIR_FMA(3, ap[3]); PAIR_FMA(4, ap[4]); PAIR_FMA(5, ap[5]);
            ap += AW;
        }
    } else {
        const float *r0 = arow[0], *r1 = arow[1], *r2 = arow[2], *r3 = arow[3], *r4 = arow[4], *r5 = arow[5];
#pragma GCC unroll 1
        for (int64_t k = 0; k < kc; k++) {
            const __m512 v0 = _mm512_loadu_ps(b0 + k * NR), v1 = _mm512_loadu_ps(b1 + k * NR);
            PAIR_FMA(0, r0[k]); PAIR_FMA(1, r1[k]); PAIR_FMA(2, r2[k]);
            PAIR_FMA(3, r3[k]); PAIR_FMA(4, r4[k]); PAIR_FMA(5, r5[k]);
        }
    }
#undef PAIR_FMA
    for (int i = 0; i < MR; i++) {
        _mm512_storeu_ps(c[0] + i * ldc, a0[i]);
        _mm512_storeu_ps(c[1] + i * ldc, a1[i]);
    }
}
#endif

/* ---------------------------------------------------------------- driver */

typedef struct gemm_run {
    const sdc_gemm_desc *d;
    sdc_isa isa;
    int64_t jc, nc, pc, kc;       /* the current (panel, K block) */
    int64_t mc, n_i, n_j, chunk;  /* task grid: n_i row blocks of mc rows x n_j chunks of `chunk` slivers */
    float *bpanel;                /* shared: ceil(nc/16) slivers of kc x 16 */
    float *ablk[SDC_CPU_MAX_THREADS];
    float *stage[SDC_CPU_MAX_THREADS]; /* b_per_task with several K blocks: a task's C block */
    int64_t group;                /* ... of `group` slivers (see fused_task) */
    float *apre;                  /* b_per_task, one row block, several chunks: A packed once for
                                     all K blocks ([K block][sliver][kc][8], see prepack_a_task) */
    float *bfull;                 /* K-stationary mode: the panel's B for all K blocks,
                                     [K block][sliver][kc][16] */
} gemm_run;

static const float zeros16[NR];

static void pack_b_task(void *vr, int64_t t, int thread) {
    (void)thread;
    gemm_run *r = vr;
    const sdc_gemm_desc *d = r->d;
    const int64_t s = t * SDC_GEMM_STRIP, j0 = r->jc + s * NR; /* a strip of slivers per task */
    const int n = (int)min64((int64_t)NR * SDC_GEMM_STRIP, r->jc + r->nc - j0);
    d->pack_b(d->ctx, j0, n, r->pc, r->kc, r->bpanel + s * r->kc * NR, r->isa);
}

/* Packs one (K block, 6-row sliver) of A into the shared apre (r->kc is the K block size, the
 * one row block has r->mc rows): block pc starts at pc * (mc/6) * 8 floats, so each block has
 * the layout a task's private A block would have. */
static void prepack_a_task(void *vr, int64_t t, int thread) {
    (void)thread;
    const gemm_run *r = vr;
    const sdc_gemm_desc *d = r->d;
    const int64_t nsl = r->mc / MR, kb = t / nsl, sl = t % nsl;
    const int64_t pc = kb * r->kc, kc = min64(r->kc, d->K - pc);
    d->pack_a(d->ctx, sl * MR, (int)min64(MR, d->M - sl * MR), pc, kc, r->apre + (pc * nsl + sl * kc) * AW, r->isa);
}

/* Where element (row, col) of C lives (see sdc_gemm_desc.col_group); a 16-column sliver
 * never straddles two groups. */
static inline float *c_at(const sdc_gemm_desc *d, int64_t row, int64_t col) {
    if (!d->col_group) return d->c + row * d->ldc + col;
    const int64_t g = col / d->col_group;
    return d->c + g * d->group_stride + row * d->ldc + (col - g * d->col_group);
}

/* One MR x NR tile of C at c (row stride ldc): rows [row, row+mr), columns [col, col+nr) of
 * the product; row/col index the biases. */
static void run_tile(const gemm_run *r, const float *ap, const float *const *arow, const float *b, int64_t row,
                     int mr, int64_t col, int nr, float *c, int64_t ldc) {
    const sdc_gemm_desc *d = r->d;
    const int load = r->pc > 0;
    float bmv[MR], bnv[NR];
    const float *bm = zeros16, *bn = zeros16;
    if (!load && d->bias_m) {
        if (mr == MR) bm = d->bias_m + row;
        else {
            for (int i = 0; i < MR; i++) bmv[i] = i < mr ? d->bias_m[row + i] : 0.0f;
            bm = bmv;
        }
    }
    if (!load && d->bias_n) {
        if (nr == NR) bn = d->bias_n + col;
        else {
            for (int j = 0; j < NR; j++) bnv[j] = j < nr ? d->bias_n[col + j] : 0.0f;
            bn = bnv;
        }
    }
#ifdef SDC_GEMM_X86
    if (r->isa >= SDC_ISA_AVX2 && ap && mr < MR && nr == NR) {
        ukr_avx2_packed_part(r->kc, ap, b, c, ldc, load, bm, bn, mr);
        return;
    }
#endif
    float tile[MR * NR];
    float *ct = c;
    int64_t ldt = ldc;
    const int partial = mr < MR || nr < NR;
    if (partial) {
        ct = tile;
        ldt = NR;
        memset(tile, 0, sizeof tile);
        if (load)
            for (int i = 0; i < mr; i++) memcpy(tile + i * NR, c + i * ldc, (size_t)nr * sizeof(float));
    }
#ifdef SDC_GEMM_X86
    if (r->isa >= SDC_ISA_AVX2) {
        if (ap) ukr_avx2_packed(r->kc, ap, b, ct, ldt, load, bm, bn);
        else ukr_avx2_direct(r->kc, arow, b, ct, ldt, load, bm, bn);
    } else
#endif
        ukr_scalar(r->kc, ap, arow, b, ct, ldt, load, bm, bn);
    if (partial)
        for (int i = 0; i < mr; i++) memcpy(c + i * ldc, tile + i * NR, (size_t)nr * sizeof(float));
}

/* The tile at (row, col) of a task's row block starting at i0: A from the packed block ablk,
 * or (no pack_a) read in place from d->a at the current K block. */
static void block_tile(const gemm_run *r, const float *ablk, int64_t i0, const float *b, int64_t row, int mr,
                       int64_t col, int nr, float *c, int64_t ldc) {
    const sdc_gemm_desc *d = r->d;
    if (d->pack_a) {
        run_tile(r, ablk + ((row - i0) / MR) * r->kc * AW, NULL, b, row, mr, col, nr, c, ldc);
    } else {
        const float *arow[MR];
        for (int i = 0; i < MR; i++) arow[i] = d->a + min64(row + i, d->M - 1) * d->lda + r->pc;
        run_tile(r, NULL, arow, b, row, mr, col, nr, c, ldc);
    }
}

/* Two full tiles side by side (rows row..row+5, slivers at col and col+16, both whole) on the
 * AVX-512 pair kernel; returns false (nothing done) where that kernel does not apply, and the
 * caller runs the two tiles one at a time. b1 / c1: the second sliver's B and C. */
static bool block_tile_pair(const gemm_run *r, const float *ablk, int64_t i0, const float *b0, const float *b1,
                            int64_t row, int mr, int64_t col, float *c0, float *c1, int64_t ldc) {
#ifdef SDC_GEMM_X86
    const sdc_gemm_desc *d = r->d;
    if (mr < MR) return false; /* callers pair slivers only when the CPU has AVX-512 */
    const int load = r->pc > 0;
    const float *bm = !load && d->bias_m ? d->bias_m + row : zeros16;
    const float *bn[2] = {zeros16, zeros16};
    if (!load && d->bias_n) { bn[0] = d->bias_n + col; bn[1] = d->bias_n + col + NR; }
    float *const c[2] = {c0, c1};
    if (d->pack_a) {
        ukr_avx512_pair(r->kc, ablk + ((row - i0) / MR) * r->kc * AW, NULL, b0, b1, c, ldc, load, bm, bn);
    } else {
        const float *arow[MR];
        for (int i = 0; i < MR; i++) arow[i] = d->a + (row + i) * d->lda + r->pc;
        ukr_avx512_pair(r->kc, NULL, arow, b0, b1, c, ldc, load, bm, bn);
    }
    return true;
#else
    (void)r; (void)ablk; (void)i0; (void)b0; (void)b1; (void)row; (void)mr; (void)col; (void)c0; (void)c1; (void)ldc;
    return false;
#endif
}

/* One sliver of B (pair: it and the next, both whole, on the AVX-512 pair kernel) against the
 * rows [i0, i0+mcur) of the task's A block. C in place (cs NULL), or in the task's stage at cs:
 * per sliver one block of mpad rows x 16 floats. */
static void sliver_rows(const gemm_run *r, const float *ablk, int64_t i0, int64_t mcur, const float *b, int64_t col,
                        int nr, bool pair, float *cs, int64_t mpad) {
    const sdc_gemm_desc *d = r->d;
    const int64_t ldc = cs ? NR : d->ldc;
    for (int64_t ir = 0; ir < mcur; ir += MR) {
        const int64_t row = i0 + ir;
        const int mr = (int)min64(MR, mcur - ir);
        /* the next sliver's C: the next stage block, or the next 16 columns */
        float *c = cs ? cs + ir * NR : c_at(d, row, col);
        float *c1 = !pair ? NULL : cs ? c + mpad * NR : c_at(d, row, col + NR);
        if (pair && block_tile_pair(r, ablk, i0, b, b + r->kc * NR, row, mr, col, c, c1, ldc)) continue;
        block_tile(r, ablk, i0, b, row, mr, col, nr, c, ldc);
        if (pair) block_tile(r, ablk, i0, b + r->kc * NR, row, mr, col + NR, NR, c1, ldc);
    }
}

/* Copies a task's stage (ns slivers from column col0, rows [i0, i0+mcur)) to C, columns < cend. */
static void stage_out(const sdc_gemm_desc *d, const float *stage, int64_t i0, int64_t mcur, int64_t col0, int64_t ns,
                      int64_t cend) {
    const int64_t mpad = rup(mcur, MR);
    for (int64_t i = 0; i < mcur; i++)
        for (int64_t s = 0; s < ns; s++) {
            const int64_t col = col0 + s * NR;
            memcpy(c_at(d, i0 + i, col), stage + (s * mpad + i) * NR, (size_t)min64(NR, cend - col) * sizeof(float));
        }
}

static void compute_task(void *vr, int64_t t, int thread) {
    gemm_run *r = vr;
    const sdc_gemm_desc *d = r->d;
    const int64_t ii = t / r->n_j, jj = t % r->n_j;
    const int64_t i0 = ii * r->mc, mcur = min64(r->mc, d->M - i0);
    const int64_t nsl = cdiv(r->nc, NR);
    const int64_t s0 = jj * r->chunk, s1 = min64(nsl, s0 + r->chunk);
    if (mcur <= 0 || s0 >= s1) return;
    float *ablk = r->ablk[thread];
    if (d->pack_a)
        for (int64_t ir = 0; ir < mcur; ir += MR)
            d->pack_a(d->ctx, i0 + ir, (int)min64(MR, mcur - ir), r->pc, r->kc, ablk + (ir / MR) * r->kc * AW, r->isa);
    for (int64_t s = s0; s < s1; s++) {
        const int64_t col = r->jc + s * NR;
        const int nr = (int)min64(NR, r->jc + r->nc - col);
        const float *b = r->bpanel + s * r->kc * NR;
        /* two whole slivers: the AVX-512 pair kernel where it applies */
        const bool pair = r->isa >= SDC_ISA_AVX512 && s + 1 < s1 && col + 2 * NR <= r->jc + r->nc;
        sliver_rows(r, ablk, i0, mcur, b, col, nr, pair, NULL, 0);
        if (pair) s++;
    }
}

/* b_per_task mode: a task owns rows [i0, i0+mc) x slivers [s0, s1) of the whole C and runs
 * the K loop itself, packing each B sliver into its private buffer just before use. */
static void fused_task(void *vr, int64_t t, int thread) {
    const gemm_run *r0 = vr;
    const sdc_gemm_desc *d = r0->d;
    gemm_run r = *r0; /* private copy: pc/kc vary per task */
    const int64_t ii = t / r.n_j, jj = t % r.n_j;
    const int64_t i0 = ii * r.mc, mcur = min64(r.mc, d->M - i0);
    const int64_t nsl = cdiv(d->N, NR);
    const int64_t s0 = jj * r.chunk, s1 = min64(nsl, s0 + r.chunk);
    if (mcur <= 0 || s0 >= s1) return;
    float *ablk = r0->ablk[thread];
    const bool own_a = d->pack_a && !r0->apre; /* packs its A block itself */
    float *bsl = own_a ? ablk + (r.mc / MR) * r.kc * AW : ablk; /* r.kc holds the K block size here */
    const int64_t kcb = r.kc;
    r.jc = 0;
    r.nc = d->N;
    /* With several K blocks, C is read back once per K block. A conv's C rows are Ho*Wo floats
     * apart (1 MiB at 512x512), so a tile's rows fall into the same cache sets and evict each
     * other between K blocks. Instead the task accumulates `group` slivers at a time in its
     * contiguous stage ([sliver][row][16], in L2), runs all K blocks on them, then copies the
     * block out row by row. Each element's fma chain is unchanged. */
    float *stage = d->K > kcb ? r0->stage[thread] : NULL;
    const int64_t mpad = rup(mcur, MR);
    const int64_t G = stage ? r0->group : s1 - s0;
    for (int64_t g0 = s0; g0 < s1; g0 += G) {
        const int64_t g1 = min64(s1, g0 + G);
        for (r.pc = 0; r.pc < d->K; r.pc += kcb) {
            r.kc = min64(kcb, d->K - r.pc);
            if (r0->apre) ablk = r0->apre + r.pc * (r.mc / MR) * AW;
            else if (d->pack_a)
                for (int64_t ir = 0; ir < mcur; ir += MR)
                    d->pack_a(d->ctx, i0 + ir, (int)min64(MR, mcur - ir), r.pc, r.kc,
                              ablk + (ir / MR) * r.kc * AW, r.isa);
            for (int64_t s = g0; s < g1; s += SDC_GEMM_STRIP) {
                const int64_t ns = min64(SDC_GEMM_STRIP, g1 - s);
                d->pack_b(d->ctx, s * NR, (int)min64(ns * NR, d->N - s * NR), r.pc, r.kc, bsl, r.isa);
                for (int64_t u = 0; u < ns; u++) {
                    const int64_t col = (s + u) * NR;
                    const int nr = (int)min64(NR, d->N - col);
                    const float *b = bsl + u * r.kc * NR;
                    /* two whole slivers: the AVX-512 pair kernel where it applies */
                    const bool pair = r.isa >= SDC_ISA_AVX512 && u + 1 < ns && col + 2 * NR <= d->N;
                    sliver_rows(&r, ablk, i0, mcur, b, col, nr, pair, stage ? stage + (s + u - g0) * mpad * NR : NULL,
                                mpad);
                    if (pair) u++;
                }
            }
        }
        if (stage) stage_out(d, stage, i0, mcur, g0 * NR, g1 - g0, d->N);
    }
}

/* K-stationary mode, packing: one (K block, strip of slivers) of the panel into r->bfull. */
static void pack_bfull_task(void *vr, int64_t t, int thread) {
    (void)thread;
    const gemm_run *r = vr;
    const sdc_gemm_desc *d = r->d;
    const int64_t nsl = cdiv(r->nc, NR), nst = cdiv(nsl, SDC_GEMM_STRIP);
    const int64_t pc = (t / nst) * r->kc, s = (t % nst) * SDC_GEMM_STRIP;
    const int64_t kc = min64(r->kc, d->K - pc), j0 = r->jc + s * NR;
    d->pack_b(d->ctx, j0, (int)min64((int64_t)NR * SDC_GEMM_STRIP, r->jc + r->nc - j0), pc, kc,
              r->bfull + (pc * nsl + s * kc) * NR, r->isa);
}

/* K-stationary mode (shared panel, several K blocks): the panel's B is packed for all K
 * blocks up front, and a task (row block x chunk of slivers) packs its A for all K blocks
 * once, then runs every K block on `group` slivers at a time in its C stage (L2) before
 * moving on. The loop nest with the K loop outermost wrote the whole C out and read it back
 * once per K block (a 1024 x 5120 C is 20 MiB), and each reload stalled the micro-kernel.
 * Each element's fma chain is unchanged. */
static void kpanel_task(void *vr, int64_t t, int thread) {
    const gemm_run *r0 = vr;
    const sdc_gemm_desc *d = r0->d;
    gemm_run r = *r0; /* private copy: pc/kc vary per task */
    const int64_t ii = t / r.n_j, jj = t % r.n_j;
    const int64_t i0 = ii * r.mc, mcur = min64(r.mc, d->M - i0);
    const int64_t nsl = cdiv(r.nc, NR);
    const int64_t s0 = jj * r.chunk, s1 = min64(nsl, s0 + r.chunk);
    if (mcur <= 0 || s0 >= s1) return;
    const int64_t kcb = r0->kc, nas = r.mc / MR;
    float *afull = r0->ablk[thread], *stage = r0->stage[thread];
    for (int64_t pc = 0; pc < d->K; pc += kcb) {
        const int64_t kc = min64(kcb, d->K - pc);
        for (int64_t ir = 0; ir < mcur; ir += MR)
            d->pack_a(d->ctx, i0 + ir, (int)min64(MR, mcur - ir), pc, kc, afull + (pc * nas + (ir / MR) * kc) * AW,
                      r.isa);
    }
    const int64_t mpad = rup(mcur, MR), G = r0->group;
    for (int64_t g0 = s0; g0 < s1; g0 += G) {
        const int64_t g1 = min64(s1, g0 + G);
        for (r.pc = 0; r.pc < d->K; r.pc += kcb) {
            r.kc = min64(kcb, d->K - r.pc);
            const float *ablk = afull + r.pc * nas * AW;
            const float *bblk = r0->bfull + r.pc * nsl * NR;
            for (int64_t s = g0; s < g1; s++) {
                const int64_t col = r.jc + s * NR;
                const int nr = (int)min64(NR, r.jc + r.nc - col);
                const float *b = bblk + s * r.kc * NR;
                const bool pair = r.isa >= SDC_ISA_AVX512 && s + 1 < g1 && col + 2 * NR <= r.jc + r.nc;
                sliver_rows(&r, ablk, i0, mcur, b, col, nr, pair, stage + (s - g0) * mpad * NR, mpad);
                if (pair) s++;
            }
        }
        stage_out(d, stage, i0, mcur, r.jc + g0 * NR, g1 - g0, r.jc + r.nc);
    }
}

void sdc_gemm_packed(sdc_isa isa, int64_t m, int64_t n, int64_t K, const float *a, const float *b, float *c,
                     int64_t ldc) {
    const sdc_gemm_desc d = {.M = m, .N = n, .K = K}; /* no biases: every chain starts at 0 */
    gemm_run r = {.d = &d, .isa = isa};
    const int64_t nsl = n / NR;
    for (r.pc = 0; r.pc < K; r.pc += KC_MAX) {
        r.kc = min64(KC_MAX, K - r.pc);
        for (int64_t s = 0; s < nsl; s++) {
            const float *b0 = b + (s * K + r.pc) * NR;
            const bool pair = isa >= SDC_ISA_AVX512 && s + 1 < nsl;
            for (int64_t row = 0; row < m; row += MR) {
                const int mr = (int)min64(MR, m - row);
                const float *ap = a + ((row / MR) * K + r.pc) * AW;
                float *c0 = c + row * ldc + s * NR;
#ifdef SDC_GEMM_X86
                if (pair && mr == MR) {
                    const float *bn[2] = {zeros16, zeros16};
                    float *const cc[2] = {c0, c0 + NR};
                    ukr_avx512_pair(r.kc, ap, NULL, b0, b0 + K * NR, cc, ldc, r.pc > 0, zeros16, bn);
                    continue;
                }
#endif
                run_tile(&r, ap, NULL, b0, row, mr, s * NR, NR, c0, ldc);
                if (pair) run_tile(&r, ap, NULL, b0 + K * NR, row, mr, (s + 1) * NR, NR, c0 + NR, ldc);
            }
            if (pair) s++;
        }
    }
}

sdc_status sdc_cpu_gemm(sdc_cpu *cpu, const sdc_gemm_desc *d) {
    if (!cpu || !d || !d->c || !d->pack_b || d->M <= 0 || d->N <= 0 || d->K <= 0 ||
        (d->col_group ? d->col_group < 0 || d->col_group % NR || d->N % d->col_group || d->ldc < d->col_group
                      : d->ldc < d->N) ||
        d->kgran <= 0 || (!d->pack_a && (!d->a || d->lda < d->K)))
        return SDC_E_INVALID;
    gemm_run run = {0}; /* on the stack (~2 KiB): a call allocates nothing once scratch has grown */
    gemm_run *r = &run;
    r->d = d;
    r->isa = cpu->isa;
    const int T = cpu->n_threads > 0 ? cpu->n_threads : 1;

    /* K blocking: depends on the shape, the type and b_per_task, never on the thread count. */
    const int64_t gran = d->kgran % 8 == 0 ? d->kgran : d->kgran * 8;
    /* With a shared panel the K loop is outermost, so every extra K block writes the whole C
     * out and reads it back; when C is larger than the caches (a 4096x2560 C is 40 MiB) that
     * is a round trip to memory, so K up to KC_ONE_MAX runs as one block. (b_per_task keeps
     * its C block in L2, and its A block + C stage need the smaller KC_MAX.) */
    const bool one = !d->b_per_task && d->K <= KC_ONE_MAX && (double)d->M * (double)d->N * sizeof(float) > C_BIG_BYTES;
    const int64_t kcmax = max64(one ? KC_ONE_MAX : KC_MAX, gran);
    const int64_t nkb = cdiv(d->K, kcmax);
    const int64_t kcb = min64(rup(cdiv(d->K, nkb), gran), d->K);
    /* K-stationary mode (kpanel_task): a shared panel with several K blocks, where a task's A
     * for all K blocks fits KPANEL_A_BYTES; panels of equal width, each <= KPANEL_BYTES of B */
    const bool kpanel = !d->b_per_task && cdiv(d->K, kcb) > 1 && d->pack_a &&
                        (double)(MC_MAX / MR) * (double)d->K * AW * sizeof(float) <= KPANEL_A_BYTES;
    int64_t ncmax = d->b_per_task ? rup(d->N, NR) : min64(rup(d->N, NR), NC_MAX);
    if (kpanel) {
        const int64_t cap = max64(NR, (int64_t)(KPANEL_BYTES / ((size_t)d->K * sizeof(float))) / NR * NR);
        ncmax = rup(cdiv(d->N, cdiv(rup(d->N, NR), cap)), NR);
    }
    const int64_t nslmax = ncmax / NR;

    /* Task grid: about 4 tasks per thread, the count a multiple of T; splitting rows is
     * preferred (columns only when there are too few row blocks, since every column chunk
     * repacks its A block unless A is shared, see below). Never changes results, only speed. */
    const int64_t target = T > 1 ? (d->b_per_task ? 8 : 4) * T : 1;
    int64_t n_i = d->b_per_task && d->M <= MC_FUSED_MAX ? 1 : cdiv(d->M, MC_MAX), n_j = 1;
    /* most column chunks: b_per_task with a packed A may repack A per chunk (when it is too big
     * to share), so chunks are at least a strip of slivers; with A read in place a chunk can be
     * a single sliver */
    const int64_t jmax = d->b_per_task && d->pack_a ? max64(1, nslmax / SDC_GEMM_STRIP) : nslmax;
    if (n_i < target) n_j = min64(jmax, cdiv(target, n_i));
    if (n_i * n_j < target && !(d->b_per_task && d->M <= MC_FUSED_MAX))
        n_i = min64(cdiv(d->M, MR), cdiv(target, n_j));
    if (T > 1 && (n_i * n_j) % T) {
        if (d->b_per_task && d->M <= MC_FUSED_MAX) n_j = min64(jmax, rup(n_j, T));
        else n_i = min64(cdiv(d->M, MR), cdiv(rup(n_i * n_j, T), n_j));
    }
    r->mc = rup(cdiv(d->M, n_i), MR);
    r->n_i = cdiv(d->M, r->mc);
    r->n_j = n_j;
    r->chunk = cdiv(nslmax, n_j);
    r->n_j = cdiv(nslmax, r->chunk); /* no empty chunks */

    /* b_per_task with one row block split into several column chunks: every chunk would pack
     * the same A, so A is packed once up front, in parallel, for all K blocks (CLIP's 154-row
     * linears: each of 12 chunks repacked the whole A, more work than their weights). */
    size_t apre_bytes = 0;
    if (d->b_per_task && d->pack_a && r->n_i == 1 && r->n_j > 1) {
        const double bytes = (double)(r->mc / MR) * (double)d->K * AW * sizeof(float);
        if (bytes <= APRE_MAX_BYTES) apre_bytes = ((size_t)bytes + 63) & ~(size_t)63;
    }
    /* Scratch (sizes bounded by the constants above): thread 0 holds the shared B panel, or
     * the shared packed A. */
    const size_t bbytes =
        (size_t)((kpanel ? d->K : kcb) * (d->b_per_task ? NR * SDC_GEMM_STRIP : ncmax)) * sizeof(float);
    const size_t abytes =
        d->pack_a && !apre_bytes ? (size_t)((r->mc / MR) * (kpanel ? d->K : kcb) * AW) * sizeof(float) : 0;
    /* b_per_task with several K blocks, and the K-stationary mode: the C stage, `group` slivers
     * of mc rows (<= C_GROUP_BYTES, at least a strip) */
    size_t sbytes = 0;
    if ((d->b_per_task && d->K > kcb) || kpanel) {
        r->group = max64(SDC_GEMM_STRIP, (int64_t)(C_GROUP_BYTES / ((size_t)r->mc * NR * sizeof(float))) /
                                             SDC_GEMM_STRIP * SDC_GEMM_STRIP);
        sbytes = (size_t)(r->group * r->mc * NR) * sizeof(float);
    }
    const size_t ab_bytes = (abytes + bbytes + 63) & ~(size_t)63;
    sdc_status st = SDC_OK;
    for (int t = 0; t < T && t < SDC_CPU_MAX_THREADS; t++) {
        const size_t pre = t == 0 ? apre_bytes : 0;
        size_t need = pre + abytes + (t == 0 || d->b_per_task ? bbytes : 0) + 64 + (sbytes ? 64 + sbytes : 0);
        uint8_t *p = sdc_cpu_scratch(cpu, t, need);
        if (!p) { st = SDC_E_NOMEM; break; }
        if (pre) r->apre = (float *)p, p += pre;
        if (sbytes) /* after this thread's A block (and B: thread 0, or every thread in b_per_task) */
            r->stage[t] = (float *)(p + (t == 0 || d->b_per_task ? ab_bytes : ((abytes + 63) & ~(size_t)63)) + 64);
        if (d->b_per_task) {
            r->ablk[t] = (float *)p; /* A block, then this thread's B sliver */
        } else if (t == 0) {
            r->bpanel = (float *)p;
            r->ablk[0] = (float *)(p + ((bbytes + 63) & ~(size_t)63));
        } else {
            r->ablk[t] = (float *)p;
        }
    }
    if (st == SDC_OK && kpanel) {
        r->bfull = r->bpanel;
        r->kc = kcb;
        for (r->jc = 0; r->jc < d->N; r->jc += ncmax) {
            r->nc = min64(ncmax, d->N - r->jc);
            sdc_pool_for(cpu->pool, cdiv(d->K, kcb) * cdiv(cdiv(r->nc, NR), SDC_GEMM_STRIP), pack_bfull_task, r);
            sdc_pool_for(cpu->pool, r->n_i * r->n_j, kpanel_task, r);
        }
    } else if (st == SDC_OK && d->b_per_task) {
        r->kc = kcb;
        if (r->apre) sdc_pool_for(cpu->pool, cdiv(d->K, kcb) * (r->mc / MR), prepack_a_task, r);
        sdc_pool_for(cpu->pool, r->n_i * r->n_j, fused_task, r);
    } else if (st == SDC_OK) {
        for (r->jc = 0; r->jc < d->N; r->jc += ncmax) {
            r->nc = min64(ncmax, d->N - r->jc);
            for (r->pc = 0; r->pc < d->K; r->pc += kcb) {
                r->kc = min64(kcb, d->K - r->pc);
                sdc_pool_for(cpu->pool, cdiv(r->nc, NR * SDC_GEMM_STRIP), pack_b_task, r);
                sdc_pool_for(cpu->pool, r->n_i * r->n_j, compute_task, r);
            }
        }
    }
    return st;
}

/* ---------------------------------------------------------------- linear */

typedef struct linear_ctx {
    sdc_type wt;
    const uint8_t *w;
    size_t row_bytes;
    const float *x;
    int64_t ldx;
} linear_ctx;

static void linear_pack_b(const void *vc, int64_t j0, int n, int64_t k0, int64_t kc, float *dst, sdc_isa isa) {
    const linear_ctx *lc = vc;
    for (int s = 0; s * NR < n; s++)
        pack_weight_rows(lc->wt, lc->w, lc->row_bytes, j0 + s * NR, n - s * NR < NR ? n - s * NR : NR, NR, k0, kc,
                         dst + s * kc * NR, isa);
}

static void linear_pack_a(const void *vc, int64_t i0, int mr, int64_t k0, int64_t kc, float *dst, sdc_isa isa) {
    const linear_ctx *lc = vc;
    pack_weight_rows(SDC_TYPE_F32, (const uint8_t *)lc->x, (size_t)lc->ldx * sizeof(float), i0, mr, AW, k0, kc, dst, isa);
}

void sdc_gemm_pack_weight_a(sdc_type t, const void *w, size_t row_bytes, int64_t r0, int nr, int64_t k0,
                            int64_t kc, float *dst, sdc_isa isa) {
    pack_weight_rows(t, w, row_bytes, r0, nr, AW, k0, kc, dst, isa);
}

sdc_status sdc_gemm_check_weight(sdc_type t, int64_t K, size_t *row_bytes) {
    const sdc_type_traits *tr = sdc_type_traits_of(t);
    if (!tr) return SDC_E_INVALID;
    if (!tr->is_float) return SDC_E_UNSUPPORTED;
    if (K <= 0 || K % tr->block) return SDC_E_INVALID;
    uint64_t rb;
    if (!sdc_type_bytes(t, (uint64_t)K, &rb) || rb > (uint64_t)INT64_MAX / 2) return SDC_E_INVALID;
    *row_bytes = (size_t)rb;
    return SDC_OK;
}

sdc_status sdc_cpu_linear(sdc_cpu *cpu, int64_t M, int64_t N, int64_t K, const float *x, int64_t ldx,
                          sdc_type wt, const void *w, const float *bias, float *y, int64_t ldy) {
    if (!cpu || !x || !w || !y || M <= 0 || N <= 0 || K <= 0 || ldx < K || ldy < N) return SDC_E_INVALID;
    if (M > INT64_MAX / ldx || M > INT64_MAX / ldy) return SDC_E_INVALID;
    linear_ctx lc = {wt, w, 0, x, ldx};
    sdc_status st = sdc_gemm_check_weight(wt, K, &lc.row_bytes);
    if (st != SDC_OK) return st;
    /* bf16 tiles before int8 VNNI where both are on: faster at every SD shape but 77x768->320
     * (BENCHMARKS.md) */
    if (sdc_cpu_bf16_active(cpu)) return sdc_cpu_linear_bf16(cpu, M, N, K, x, ldx, wt, w, lc.row_bytes, bias, y, ldy);
    if (sdc_cpu_linear_int8_eligible(cpu, wt))
        return sdc_cpu_linear_int8(cpu, M, N, K, x, ldx, wt, w, lc.row_bytes, bias, y, ldy);
    const sdc_type_traits *tr = sdc_type_traits_of(wt);
    sdc_gemm_desc d = {
        .M = M, .N = N, .K = K, .kgran = tr->block,
        /* up to DIRECT_M_MAX rows x is read in place (no per-task copy, so N can be split finely
         * over threads); with more rows the packed A runs faster (measured: 256x1280->10240
         * 10-20% slower in place, 77x768->320 equal at 1 thread) */
        .a = x, .lda = ldx, .pack_a = M <= DIRECT_M_MAX ? NULL : linear_pack_a, .pack_b = linear_pack_b, .ctx = &lc,
        .bias_m = NULL, .bias_n = bias, .c = y, .ldc = ldy,
        .b_per_task = M <= MC_FUSED_MAX, /* few rows: each task packs its W slivers (still once per call) */
    };
    return sdc_cpu_gemm(cpu, &d);
}
