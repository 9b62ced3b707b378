/* quant.c - the scalar reference (de)quantizers for every weight format sdc reads.
 *
 * This file is the specification: every SIMD or GPU kernel is tested against it. It follows
 * GGML's reference semantics value for value and bit for bit:
 *   - dequantization evaluates the same float expressions in the same order as ggml's
 *     dequantize_row_* (so results are identical, not merely close);
 *   - quantization picks the same scale (same float arithmetic, the same tie-breaking among
 *     equal magnitudes) and the same integer codes as ggml's quantize_row_*_ref, so files we
 *     write are byte-identical to those stable-diffusion.cpp writes.
 * The build is ISO C (no GNU extensions), where gcc does not contract a*b+c into an FMA;
 * that matters for the "x*d + m" formulas, which must round twice as ggml's do.
 *
 * Where ggml's reference code has undefined behaviour (float->int conversion of NaN, Inf or
 * an out-of-range value; reachable only with NaN/Inf inputs or blocks of near-zero values),
 * the helpers below reproduce what ggml's x86 builds do (code 0) without the UB; see there.
 *
 * Source pointers need no alignment (a safetensors payload can start at any offset): every
 * value and block is read through memcpy, and blocks are written the same way.
 * Formats: ref: ggml/src/ggml-common.h (layouts), ggml/src/ggml-quants.c (semantics). */
#include "quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "half.h"

/* ---- integer conversion helpers (defined for every float) ---------------------------- */

/* ggml converts floats to codes with C casts, undefined for NaN, +-Inf and out-of-range
 * values. For finite input those arise only when 1/d overflows (a block whose largest
 * magnitude is below ~1e-37, or all NaN/Inf), and ggml's x86 builds then get the
 * "integer indefinite" 0x80000000, i.e. code 0 after the cast to 8 bits. These helpers give
 * 0 for NaN and +-Inf the same way, saturate other out-of-range values, and equal the cast
 * everywhere it is defined. (Such blocks also store d = 0 or a non-finite d, so the codes
 * hardly matter for the values; they matter for byte-identical files.) One known difference
 * remains: a Q8_0 block with a NaN before its last value, where ggml's running max forgets
 * the values before the NaN and the cast wraps the too-large codes modulo 256; we saturate. */

/* (int)v truncating toward zero, as a C cast; NaN/Inf -> 0; result clamped to [lo, hi]. */
static int trunc_clamp(float v, int lo, int hi) {
    if (!isfinite(v)) v = 0.0f;
    if (v <= (float)lo) return lo;
    if (v >= (float)hi) return hi;
    return (int)v;
}

/* roundf(v) (half away from zero); NaN/Inf -> 0; result clamped to [lo, hi]. */
static int round_clamp(float v, int lo, int hi) {
    if (!isfinite(v)) v = 0.0f;
    if (v <= (float)lo) return lo;
    if (v >= (float)hi) return hi;
    return (int)roundf(v);
}

static float h2f(uint16_t h) { return sdc_f16_to_f32(h); }

/* ---- legacy block formats: 32 values per block ---------------------------------------
 * In every 4- and 5-bit format qs[j] holds value j in its low nibble and value j + 16 in its
 * high nibble; in Q5_* bit j of the little-endian u32 qh is bit 4 of value j. */

/* Q4_0: x = (q - 8) * d,   q in 0..15 */
static void dequant_q4_0(const sdc_block_q4_0 *b, float *y) {
    const float d = h2f(b->d);
    for (int j = 0; j < SDC_QK / 2; j++) {
        const int lo = (b->qs[j] & 0x0F) - 8, hi = (b->qs[j] >> 4) - 8;
        y[j] = lo * d;
        y[j + SDC_QK / 2] = hi * d;
    }
}

/* Q4_1: x = q * d + m,   q in 0..15 */
static void dequant_q4_1(const sdc_block_q4_1 *b, float *y) {
    const float d = h2f(b->d), m = h2f(b->m);
    for (int j = 0; j < SDC_QK / 2; j++) {
        const int lo = b->qs[j] & 0x0F, hi = b->qs[j] >> 4;
        y[j] = lo * d + m;
        y[j + SDC_QK / 2] = hi * d + m;
    }
}

static uint32_t load_u32le(const uint8_t p[4]) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* 5-bit code of value j (0..31) of a Q5_* block: nibble from qs, bit 4 from qh. */
static int q5_code(const uint8_t *qs, uint32_t qh, int j) {
    const int nib = j < SDC_QK / 2 ? (qs[j] & 0x0F) : (qs[j - SDC_QK / 2] >> 4);
    return nib | (int)((qh >> j) & 1u) << 4;
}

/* Q5_0: x = (q - 16) * d,   q in 0..31 */
static void dequant_q5_0(const sdc_block_q5_0 *b, float *y) {
    const float d = h2f(b->d);
    const uint32_t qh = load_u32le(b->qh);
    for (int j = 0; j < SDC_QK; j++) y[j] = (q5_code(b->qs, qh, j) - 16) * d;
}

/* Q5_1: x = q * d + m,   q in 0..31 */
static void dequant_q5_1(const sdc_block_q5_1 *b, float *y) {
    const float d = h2f(b->d), m = h2f(b->m);
    const uint32_t qh = load_u32le(b->qh);
    for (int j = 0; j < SDC_QK; j++) y[j] = q5_code(b->qs, qh, j) * d + m;
}

/* Q8_0: x = q * d,   q in -128..127 (the quantizer uses -127..127) */
static void dequant_q8_0(const sdc_block_q8_0 *b, float *y) {
    const float d = h2f(b->d);
    for (int j = 0; j < SDC_QK; j++) y[j] = b->qs[j] * d;
}

/* ---- K-quants: 256 values per super-block ---------------------------------------------- */

/* Q2_K: 16 sub-blocks of 16 values. scales[s] holds a 4-bit scale (low nibble) and a
 * 4-bit min (high nibble): x = (d * sc) * q - (dmin * mn), q in 0..3.
 * Value v: half h = v / 128, within it pass p = (v % 128) / 32, column l = v % 32;
 * q = (qs[32h + l] >> 2p) & 3, sub-block s = 8h + 2p + l / 16. */
static void dequant_q2_k(const sdc_block_q2_k *b, float *y) {
    const float d = h2f(b->d), dmin = h2f(b->dmin);
    for (int h = 0; h < 2; h++) {
        const uint8_t *q = b->qs + 32 * h;
        for (int p = 0; p < 4; p++) {
            for (int half = 0; half < 2; half++) {
                const uint8_t sc = b->scales[8 * h + 2 * p + half];
                const float dl = d * (sc & 0x0F), ml = dmin * (sc >> 4);
                for (int l = 16 * half; l < 16 * half + 16; l++) *y++ = dl * ((q[l] >> (2 * p)) & 3) - ml;
            }
        }
    }
}

/* Q3_K sub-block scale s (0..15): a 6-bit number stored as a low nibble (scales[s] for
 * s < 8, the high nibble of scales[s - 8] otherwise) and 2 high bits (bits 2*(s/4)..+1 of
 * scales[8 + s % 4]), minus 32. */
static int q3_k_scale(const uint8_t scales[12], int s) {
    const int lo = s < 8 ? (scales[s] & 0x0F) : (scales[s - 8] >> 4);
    const int hi = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
    return (lo | hi << 4) - 32;
}

/* Q3_K: 16 sub-blocks of 16 values, x = (d * sc) * q, q in -4..3: q = low 2 bits - 4 when
 * the hmask bit is clear (the hmask bit is the inverted sign-offset bit).
 * Value v: half h, pass p, column l as in Q2_K; low bits (qs[32h + l] >> 2p) & 3, high bit
 * (hmask[l] >> (4h + p)) & 1, sub-block s = 8h + 2p + l / 16. */
static void dequant_q3_k(const sdc_block_q3_k *b, float *y) {
    const float d = h2f(b->d);
    for (int h = 0; h < 2; h++) {
        const uint8_t *q = b->qs + 32 * h;
        for (int p = 0; p < 4; p++) {
            const int bit = 4 * h + p;
            for (int half = 0; half < 2; half++) {
                const float dl = d * q3_k_scale(b->scales, 8 * h + 2 * p + half);
                for (int l = 16 * half; l < 16 * half + 16; l++) {
                    const int qv = ((q[l] >> (2 * p)) & 3) - (((b->hmask[l] >> bit) & 1) ? 0 : 4);
                    *y++ = dl * qv;
                }
            }
        }
    }
}

/* Q4_K/Q5_K sub-block j (0..7) scale and min, both 6-bit, packed in 12 bytes:
 * j < 4: sc = s[j] & 63, mn = s[j+4] & 63;
 * j >= 4: low 4 bits from s[j+4] (sc: low nibble, mn: high nibble), high 2 bits from the
 * top bits of s[j-4] (sc) and s[j] (mn). */
static void k4_scale_min(const uint8_t s[12], int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | (s[j - 4] >> 6) << 4;
        *mn = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* Q4_K: 8 sub-blocks of 32 values, x = (d * sc) * q - (dmin * mn), q in 0..15.
 * Value v: group g = v / 64 uses qs[32g .. 32g+31]: the first 32 values are the low
 * nibbles (sub-block 2g), the next 32 the high nibbles (sub-block 2g + 1). */
static void dequant_q4_k(const sdc_block_q4_k *b, float *y) {
    const float d = h2f(b->d), dmin = h2f(b->dmin);
    for (int g = 0; g < 4; g++) {
        const uint8_t *q = b->qs + 32 * g;
        for (int hi = 0; hi < 2; hi++) {
            int sc, mn;
            k4_scale_min(b->scales, 2 * g + hi, &sc, &mn);
            const float dl = d * sc, ml = dmin * mn;
            for (int l = 0; l < 32; l++) *y++ = dl * (hi ? q[l] >> 4 : q[l] & 0x0F) - ml;
        }
    }
}

/* Q5_K: as Q4_K with a 5th bit: q in 0..31, bit 4 of value (sub-block s, column l) is bit s
 * of qh[l]. x = (d * sc) * q - (dmin * mn). */
static void dequant_q5_k(const sdc_block_q5_k *b, float *y) {
    const float d = h2f(b->d), dmin = h2f(b->dmin);
    for (int g = 0; g < 4; g++) {
        const uint8_t *q = b->qs + 32 * g;
        for (int hi = 0; hi < 2; hi++) {
            const int s = 2 * g + hi;
            int sc, mn;
            k4_scale_min(b->scales, s, &sc, &mn);
            const float dl = d * sc, ml = dmin * mn;
            for (int l = 0; l < 32; l++) {
                const int qv = (hi ? q[l] >> 4 : q[l] & 0x0F) + (((b->qh[l] >> s) & 1) ? 16 : 0);
                *y++ = dl * qv - ml;
            }
        }
    }
}

/* Q6_K: 16 sub-blocks of 16 values with signed 8-bit scales, x = (d * sc) * (q - 32),
 * q in 0..63. Value v: half h = v / 128, quarter k = (v % 128) / 32, column l = v % 32;
 * low 4 bits: nibble (k < 2 ? low : high) of ql[64h + l + 32 (k & 1)], high 2 bits:
 * (qh[32h + l] >> 2k) & 3; sub-block s = 8h + 2k + l / 16. */
static void dequant_q6_k(const sdc_block_q6_k *b, float *y) {
    const float d = h2f(b->d);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        const int8_t *sc = b->scales + 8 * h;
        for (int k = 0; k < 4; k++) {
            for (int l = 0; l < 32; l++) {
                const uint8_t lb = ql[l + 32 * (k & 1)];
                const int nib = k < 2 ? (lb & 0x0F) : (lb >> 4);
                const int qv = (nib | ((qh[l] >> (2 * k)) & 3) << 4) - 32;
                y[32 * k + l] = d * sc[2 * k + l / 16] * qv;
            }
        }
        y += 128;
    }
}

/* ---- dispatch ---------------------------------------------------------------------------- */

/* Number of blocks of n values of type t, or -1 when n or t is unusable. */
static int64_t block_count(sdc_type t, int64_t n, const sdc_type_traits **out) {
    const sdc_type_traits *tr = sdc_type_traits_of(t);
    if (!tr || !tr->is_float || n < 0 || tr->block <= 0 || n % tr->block != 0) return -1;
    *out = tr;
    return n / tr->block;
}

/* Decodes the blocks of one type with a per-block function; blocks are copied to an aligned
 * local first so that src may have any alignment. */
#define SDC_DEQUANT_BLOCKS(btype, fn)                                  \
    do {                                                               \
        const uint8_t *p_ = (const uint8_t *)src;                      \
        for (int64_t i_ = 0; i_ < nb; i_++) {                          \
            btype b_;                                                  \
            memcpy(&b_, p_ + (size_t)i_ * sizeof(btype), sizeof(btype)); \
            fn(&b_, dst + i_ * (int64_t)tr->block);                    \
        }                                                              \
    } while (0)

bool sdc_dequantize_row(sdc_type t, const void *src, float *dst, int64_t n) {
    const sdc_type_traits *tr = NULL;
    const int64_t nb = block_count(t, n, &tr);
    if (nb < 0) return false;
    if (nb == 0) return true;
    if (!src || !dst) return false;
    const uint8_t *p = (const uint8_t *)src;
    switch (t) {
    case SDC_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return true;
    case SDC_TYPE_F16:
    case SDC_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = t == SDC_TYPE_F16 ? sdc_f16_to_f32(h) : sdc_bf16_to_f32(h);
        }
        return true;
    case SDC_TYPE_F64:
        /* round to nearest; beyond the float range gives +-inf (IEEE, C11 Annex F) */
        for (int64_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, p + 8 * i, 8);
            dst[i] = (float)v;
        }
        return true;
    case SDC_TYPE_Q4_0: SDC_DEQUANT_BLOCKS(sdc_block_q4_0, dequant_q4_0); return true;
    case SDC_TYPE_Q4_1: SDC_DEQUANT_BLOCKS(sdc_block_q4_1, dequant_q4_1); return true;
    case SDC_TYPE_Q5_0: SDC_DEQUANT_BLOCKS(sdc_block_q5_0, dequant_q5_0); return true;
    case SDC_TYPE_Q5_1: SDC_DEQUANT_BLOCKS(sdc_block_q5_1, dequant_q5_1); return true;
    case SDC_TYPE_Q8_0: SDC_DEQUANT_BLOCKS(sdc_block_q8_0, dequant_q8_0); return true;
    case SDC_TYPE_Q2_K: SDC_DEQUANT_BLOCKS(sdc_block_q2_k, dequant_q2_k); return true;
    case SDC_TYPE_Q3_K: SDC_DEQUANT_BLOCKS(sdc_block_q3_k, dequant_q3_k); return true;
    case SDC_TYPE_Q4_K: SDC_DEQUANT_BLOCKS(sdc_block_q4_k, dequant_q4_k); return true;
    case SDC_TYPE_Q5_K: SDC_DEQUANT_BLOCKS(sdc_block_q5_k, dequant_q5_k); return true;
    case SDC_TYPE_Q6_K: SDC_DEQUANT_BLOCKS(sdc_block_q6_k, dequant_q6_k); return true;
    default:
        return false;
    }
}

/* ---- reference quantizers (ggml quantize_row_*_ref) ------------------------------------ */

/* Symmetric formats pick the value of largest magnitude (the first one on ties; NaN never
 * wins) and keep its sign: d = that value / -(2^(bits-1)), so it maps to code 0 exactly
 * and the opposite extreme to code 2^bits, clamped to 2^bits - 1. */
static float signed_absmax(const float *x) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < SDC_QK; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

/* Asymmetric formats span [min, max] (NaN ignored; FLT_MAX/-FLT_MAX when all are NaN). */
static void min_max(const float *x, float *mn, float *mx) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < SDC_QK; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

/* Q4_0: d = max / -8, q = min(15, trunc(x/d + 8.5)); the reciprocal is of the float d,
 * before d is rounded to f16. */
static void quant_q4_0(const float *x, sdc_block_q4_0 *b) {
    const float d = signed_absmax(x) / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = sdc_f32_to_f16(d);
    for (int j = 0; j < SDC_QK / 2; j++) {
        const int lo = trunc_clamp(x[j] * id + 8.5f, 0, 15);
        const int hi = trunc_clamp(x[j + SDC_QK / 2] * id + 8.5f, 0, 15);
        b->qs[j] = (uint8_t)(lo | hi << 4);
    }
}

/* Q4_1: d = (max - min) / 15, m = min, q = min(15, trunc((x - min)/d + 0.5)). */
static void quant_q4_1(const float *x, sdc_block_q4_1 *b) {
    float mn, mx;
    min_max(x, &mn, &mx);
    const float d = (mx - mn) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = sdc_f32_to_f16(d);
    b->m = sdc_f32_to_f16(mn);
    for (int j = 0; j < SDC_QK / 2; j++) {
        const int lo = trunc_clamp((x[j] - mn) * id + 0.5f, 0, 15);
        const int hi = trunc_clamp((x[j + SDC_QK / 2] - mn) * id + 0.5f, 0, 15);
        b->qs[j] = (uint8_t)(lo | hi << 4);
    }
}

/* Packs 32 five-bit codes into qs (low 4 bits) and qh (bit 4, value j -> bit j). */
static void pack_q5(const int *q, uint8_t qs[SDC_QK / 2], uint8_t qh[4]) {
    uint32_t h = 0;
    for (int j = 0; j < SDC_QK / 2; j++) qs[j] = (uint8_t)((q[j] & 0x0F) | (q[j + SDC_QK / 2] & 0x0F) << 4);
    for (int j = 0; j < SDC_QK; j++) h |= (uint32_t)((q[j] >> 4) & 1) << j;
    for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(h >> (8 * k));
}

/* Q5_0: d = max / -16, q = min(31, trunc(x/d + 16.5)). */
static void quant_q5_0(const float *x, sdc_block_q5_0 *b) {
    const float d = signed_absmax(x) / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int q[SDC_QK];
    b->d = sdc_f32_to_f16(d);
    for (int j = 0; j < SDC_QK; j++) q[j] = trunc_clamp(x[j] * id + 16.5f, 0, 31);
    pack_q5(q, b->qs, b->qh);
}

/* Q5_1: d = (max - min) / 31, m = min, q = trunc((x - min)/d + 0.5) (never above 31 for
 * finite input; clamped here for the rest). */
static void quant_q5_1(const float *x, sdc_block_q5_1 *b) {
    float mn, mx;
    min_max(x, &mn, &mx);
    const float d = (mx - mn) / 31;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int q[SDC_QK];
    b->d = sdc_f32_to_f16(d);
    b->m = sdc_f32_to_f16(mn);
    for (int j = 0; j < SDC_QK; j++) q[j] = trunc_clamp((x[j] - mn) * id + 0.5f, 0, 31);
    pack_q5(q, b->qs, b->qh);
}

/* Q8_0: d = amax / 127, q = roundf(x/d). amax is a running "amax > |x| ? amax : |x|",
 * exactly as ggml's MAX macro (a NaN resets it, later values may replace the NaN). */
static void quant_q8_0(const float *x, sdc_block_q8_0 *b) {
    float amax = 0.0f;
    for (int j = 0; j < SDC_QK; j++) amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = sdc_f32_to_f16(d);
    for (int j = 0; j < SDC_QK; j++) b->qs[j] = (int8_t)round_clamp(x[j] * id, -127, 127);
}

bool sdc_can_quantize(sdc_type t) {
    switch (t) {
    case SDC_TYPE_F32:
    case SDC_TYPE_F16:
    case SDC_TYPE_BF16:
    case SDC_TYPE_Q4_0:
    case SDC_TYPE_Q4_1:
    case SDC_TYPE_Q5_0:
    case SDC_TYPE_Q5_1:
    case SDC_TYPE_Q8_0:
        return true;
    default:
        return false;
    }
}

/* Encodes the blocks of one type: built in an aligned local, then copied (dst may have any
 * alignment). */
#define SDC_QUANT_BLOCKS(btype, fn)                                     \
    do {                                                                \
        uint8_t *p_ = (uint8_t *)dst;                                   \
        for (int64_t i_ = 0; i_ < nb; i_++) {                           \
            btype b_;                                                   \
            memset(&b_, 0, sizeof b_);                                  \
            fn(src + i_ * SDC_QK, &b_);                                 \
            memcpy(p_ + (size_t)i_ * sizeof(btype), &b_, sizeof(btype)); \
        }                                                               \
    } while (0)

bool sdc_quantize_row(sdc_type t, const float *src, void *dst, int64_t n) {
    const sdc_type_traits *tr = NULL;
    if (!sdc_can_quantize(t)) return false;
    const int64_t nb = block_count(t, n, &tr);
    if (nb < 0) return false;
    if (nb == 0) return true;
    if (!src || !dst) return false;
    uint8_t *p = (uint8_t *)dst;
    switch (t) {
    case SDC_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return true;
    case SDC_TYPE_F16:
    case SDC_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            const uint16_t h = t == SDC_TYPE_F16 ? sdc_f32_to_f16(src[i]) : sdc_f32_to_bf16(src[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        return true;
    case SDC_TYPE_Q4_0: SDC_QUANT_BLOCKS(sdc_block_q4_0, quant_q4_0); return true;
    case SDC_TYPE_Q4_1: SDC_QUANT_BLOCKS(sdc_block_q4_1, quant_q4_1); return true;
    case SDC_TYPE_Q5_0: SDC_QUANT_BLOCKS(sdc_block_q5_0, quant_q5_0); return true;
    case SDC_TYPE_Q5_1: SDC_QUANT_BLOCKS(sdc_block_q5_1, quant_q5_1); return true;
    case SDC_TYPE_Q8_0: SDC_QUANT_BLOCKS(sdc_block_q8_0, quant_q8_0); return true;
    default:
        return false;
    }
}

/* ---- importance-weighted search (ggml's quantize_q*_impl with unit importance) ----------
 * What stable-diffusion.cpp writes: its converter hands ggml_quantize_chunk an importance
 * vector of ones, and ggml then quantizes Q4_0/Q4_1/Q5_0/Q5_1 row by row with a search over
 * candidate scales that minimizes the weighted squared error of each block, with
 *     w_j = sqrt(sigma2 + x_j^2),   sigma2 = (sum over the whole row of x^2) / n_per_row.
 * The arithmetic below is ggml's, operation for operation and in the same order (float
 * sums accumulated left to right, the same products grouped the same way), so that the
 * chosen scales and codes - and hence the files - are bit-identical. ISO C mode means no
 * FMA contraction; ggml compiled without it (its portable ggml-base, or any build with
 * -ffp-contract=off) gets the same roundings. A ggml built in GNU C mode for an FMA CPU
 * (-march=native) fuses a*b+c and picks other codes in a few blocks (0.02% for Q4_0).
 * Nothing here converts a float to an integer with a cast: codes come from
 * round_half_even_bits (below) and are clamped, so NaN/Inf input is well defined (it gives
 * NaN/Inf or zero scales and arbitrary but in-range, deterministic codes, as ggml's x86
 * builds do).
 * Ref: ggml/src/ggml-quants.c (make_qx_quants, make_qkx3_quants, quantize_row_q*_impl). */

/* ggml's nearest_int: adding 1.5 * 2^23 leaves round-half-even(v) in the low mantissa bits
 * (for |v| < 2^22; beyond that the result is some integer, as in ggml). Well defined for
 * every float, since the bits are read through memcpy. */
static int round_half_even_bits(float v) {
    const float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (int)((i & 0x007FFFFF) - 0x00400000);
}

static int clamp_int(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Symmetric formats (Q4_0: nmax 8, Q5_0: nmax 16): codes l in [-nmax, nmax-1], x ~ d*l.
 * Candidate inverse scales -(nmax + k/10)/max for k = 0, -9..-1, 1..9 (max = the signed
 * value of largest magnitude, first on ties); for each, codes are rounded and clamped and
 * the weighted least-squares scale sum(w x l)/sum(w l^2) is taken; the candidate with the
 * largest sum(w x l)^2/sum(w l^2) (i.e. the smallest weighted error) wins, strictly, in that
 * order. Stores the stored codes l + nmax in q and returns d. A block whose largest
 * magnitude is below 1e-15 gets d = 0 and codes 0. */
static float search_symmetric(const float *x, const float *w, int nmax, int *q) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < SDC_QK; j++) {
        const float ax = fabsf(x[j]);
        if (ax > amax) {
            amax = ax;
            max = x[j];
        }
    }
    if (amax < 1e-15f) {
        for (int j = 0; j < SDC_QK; j++) q[j] = 0;
        return 0.0f;
    }
    float iscale = (float)-nmax / max;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int j = 0; j < SDC_QK; j++) {
        const int l = clamp_int(round_half_even_bits(iscale * x[j]), -nmax, nmax - 1);
        q[j] = l + nmax;
        sumlx += w[j] * x[j] * (float)l;
        suml2 += w[j] * (float)l * (float)l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int k = -9; k <= 9; k++) {
        if (k == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)k) / max;
        sumlx = suml2 = 0.0f;
        for (int j = 0; j < SDC_QK; j++) {
            const int l = clamp_int(round_half_even_bits(iscale * x[j]), -nmax, nmax - 1);
            sumlx += w[j] * x[j] * (float)l;
            suml2 += w[j] * (float)l * (float)l;
        }
        if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
            for (int j = 0; j < SDC_QK; j++)
                q[j] = clamp_int(round_half_even_bits(iscale * x[j]), -nmax, nmax - 1) + nmax;
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Asymmetric formats (Q4_1: nmax 15, Q5_1: nmax 31): x ~ d*q + m, q in [0, nmax], m <= 0
 * (the block minimum, raised to 0 when all values are positive). Starts from the plain
 * min/max fit, then tries inverse scales (nmax + r)/(max - min) for r = -0.9, -0.85, ..,
 * +0.9 (37 candidates): codes rounded and clamped, then the weighted least-squares (d, m)
 * for those codes (m forced to 0 and d refit when the fit gives m > 0); a candidate wins
 * when its weighted squared error is strictly below the best so far. Stores the codes in q,
 * the offset m in *m, and returns d. A block with max <= min (constant, after raising min to
 * 0) gets d = 0 and codes 0. */
static float search_affine(const float *x, const float *w, int nmax, int *q, float *m) {
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int j = 1; j < SDC_QK; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
        sum_w += w[j];
        sum_x += w[j] * x[j];
    }
    if (min > 0.0f) min = 0.0f;
    if (max <= min) {
        for (int j = 0; j < SDC_QK; j++) q[j] = 0;
        *m = min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    float best_err = 0.0f;
    for (int j = 0; j < SDC_QK; j++) {
        q[j] = clamp_int(round_half_even_bits(iscale * (x[j] - min)), 0, nmax);
        const float diff = scale * (float)q[j] + min - x[j];
        best_err += w[j] * (diff * diff);
    }
    int cand[SDC_QK];
    for (int k = 0; k <= 36; k++) {
        iscale = (-0.9f + 0.05f * (float)k + (float)nmax) / (max - min);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int j = 0; j < SDC_QK; j++) {
            const int l = clamp_int(round_half_even_bits(iscale * (x[j] - min)), 0, nmax);
            cand[j] = l;
            sum_l += w[j] * (float)l;
            sum_l2 += w[j] * (float)l * (float)l;
            sum_xl += w[j] * (float)l * x[j];
        }
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (det > 0.0f) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if (this_min > 0.0f) {
                this_min = 0.0f;
                this_scale = sum_xl / sum_l2;
            }
            float err = 0.0f;
            for (int j = 0; j < SDC_QK; j++) {
                const float diff = this_scale * (float)cand[j] + this_min - x[j];
                err += w[j] * (diff * diff);
            }
            if (err < best_err) {
                for (int j = 0; j < SDC_QK; j++) q[j] = cand[j];
                best_err = err;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *m = min;
    return scale;
}

/* One row of n_per_row values (a multiple of 32) in type t, weighted search. */
static void quantize_row_weighted(sdc_type t, const float *x, uint8_t *dst, int64_t n_per_row) {
    float sum_x2 = 0.0f;
    for (int64_t j = 0; j < n_per_row; j++) sum_x2 += x[j] * x[j];
    const float sigma2 = sum_x2 / (float)n_per_row;
    const int64_t nb = n_per_row / SDC_QK;
    for (int64_t ib = 0; ib < nb; ib++) {
        const float *xb = x + ib * SDC_QK;
        float w[SDC_QK];
        int q[SDC_QK];
        for (int j = 0; j < SDC_QK; j++) w[j] = sqrtf(sigma2 + xb[j] * xb[j]);
        switch (t) {
        case SDC_TYPE_Q4_0: {
            sdc_block_q4_0 b;
            b.d = sdc_f32_to_f16(search_symmetric(xb, w, 8, q));
            for (int j = 0; j < SDC_QK / 2; j++) b.qs[j] = (uint8_t)(q[j] | q[j + SDC_QK / 2] << 4);
            memcpy(dst + (size_t)ib * sizeof b, &b, sizeof b);
            break;
        }
        case SDC_TYPE_Q5_0: {
            sdc_block_q5_0 b;
            b.d = sdc_f32_to_f16(search_symmetric(xb, w, 16, q));
            pack_q5(q, b.qs, b.qh);
            memcpy(dst + (size_t)ib * sizeof b, &b, sizeof b);
            break;
        }
        case SDC_TYPE_Q4_1: {
            sdc_block_q4_1 b;
            float m;
            b.d = sdc_f32_to_f16(search_affine(xb, w, 15, q, &m));
            b.m = sdc_f32_to_f16(m);
            for (int j = 0; j < SDC_QK / 2; j++) b.qs[j] = (uint8_t)(q[j] | q[j + SDC_QK / 2] << 4);
            memcpy(dst + (size_t)ib * sizeof b, &b, sizeof b);
            break;
        }
        case SDC_TYPE_Q5_1: {
            sdc_block_q5_1 b;
            float m;
            b.d = sdc_f32_to_f16(search_affine(xb, w, 31, q, &m));
            b.m = sdc_f32_to_f16(m);
            pack_q5(q, b.qs, b.qh);
            memcpy(dst + (size_t)ib * sizeof b, &b, sizeof b);
            break;
        }
        default:
            return;
        }
    }
}

bool sdc_quantize_rows(sdc_type t, const float *src, void *dst, int64_t nrows, int64_t n_per_row, bool weighted) {
    const sdc_type_traits *tr = sdc_type_traits_of(t);
    if (!sdc_can_quantize(t) || !tr || nrows < 0 || n_per_row < 0) return false;
    if (tr->block <= 0 || n_per_row % tr->block != 0) return false;
    if (nrows == 0 || n_per_row == 0) return true;
    if (nrows > INT64_MAX / n_per_row) return false;
    const bool search = weighted && (t == SDC_TYPE_Q4_0 || t == SDC_TYPE_Q4_1 || t == SDC_TYPE_Q5_0 ||
                                     t == SDC_TYPE_Q5_1);
    if (!search) return sdc_quantize_row(t, src, dst, nrows * n_per_row);
    if (!src || !dst) return false;
    const size_t row_bytes = (size_t)(n_per_row / tr->block) * (size_t)tr->block_bytes;
    for (int64_t r = 0; r < nrows; r++)
        quantize_row_weighted(t, src + r * n_per_row, (uint8_t *)dst + (size_t)r * row_bytes, n_per_row);
    return true;
}
