/* test_quant.c - the block formats of quant.c against the written spec.
 *
 * 1. Known answers: literal blocks with hand-computed values, then for every block format
 *    (K-quants included) blocks built from chosen logical values (codes, scales, mins, d)
 *    by packers written here from the layout description, decoded by sdc_dequantize_row
 *    and compared exactly with the formula evaluated in double. The scales are kept in a
 *    moderate range so the double formula is exact and rounds once, as the float code does.
 * 2. Round trips on random data for every quantizable type, each value checked against the
 *    error bound of its block (derived next to each format below), worst error printed.
 * 3. Special inputs: zero, constant, one huge value, NaN/Inf, F16 overflow/subnormals,
 *    BF16 rounding, F64; bad n, integer types and K-quant quantization refused. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "check.h"
#include "half.h"
#include "quant.h"
#include "testutil.h"

/* ---- independent helpers ----------------------------------------------------------------- */

/* IEEE half -> double by the textbook formula (NaN for NaN). */
static double f16d(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31) return m ? NAN : (s ? -INFINITY : INFINITY);
    v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

/* A random half in [2^-6, 2^4) in magnitude, random sign: keeps every test formula exact
 * in double. */
static uint16_t rand_scale(tu_rng *r) {
    uint16_t e = (uint16_t)(9 + tu_rng_u64(r) % 10);       /* biased exponent 9..18 */
    uint16_t m = (uint16_t)(tu_rng_u64(r) & 1023);
    uint16_t s = (uint16_t)((tu_rng_u64(r) & 1) << 15);
    return (uint16_t)(s | e << 10 | m);
}
static int rand_int(tu_rng *r, int lo, int hi) { return lo + (int)(tu_rng_u64(r) % (uint64_t)(hi - lo + 1)); }

static int compare_exact(const float *got, const double *want, int n, const char *label) {
    int bad = 0, first = -1;
    for (int i = 0; i < n; i++) {
        if (got[i] != (float)want[i]) {
            if (first < 0) first = i;
            bad++;
        }
    }
    CHECK_MSG(bad == 0, "%s: %d of %d values differ, first [%d] got %.9g want %.9g", label, bad, n, first,
              first >= 0 ? got[first] : 0.0, first >= 0 ? want[first] : 0.0);
    return bad == 0;
}

/* ---- 1a. literal blocks ---------------------------------------------------------------- */

static void test_literal_blocks(void) {
    float y[256];

    { /* Q4_0, d = 0.5: qs[0] = 0x2F -> value 0 = (15-8)*0.5 = 3.5, value 16 = (2-8)*0.5 = -3;
         0x88 elsewhere -> 0 */
        sdc_block_q4_0 b = {.d = 0x3800};
        memset(b.qs, 0x88, sizeof b.qs);
        b.qs[0] = 0x2F;
        CHECK(sdc_dequantize_row(SDC_TYPE_Q4_0, &b, y, 32));
        CHECK(y[0] == 3.5f && y[16] == -3.0f && y[1] == 0.0f && y[31] == 0.0f);
    }
    { /* Q5_1, d = 1, m = -1: qh bits 0 and 31 set; qs[15] = 0xF0 ->
         value 0 = 16 - 1 = 15, value 31 = 31 - 1 = 30, value 15 = 0 - 1 = -1 */
        sdc_block_q5_1 b = {.d = 0x3C00, .m = 0xBC00, .qh = {0x01, 0, 0, 0x80}};
        b.qs[15] = 0xF0;
        CHECK(sdc_dequantize_row(SDC_TYPE_Q5_1, &b, y, 32));
        CHECK(y[0] == 15.0f && y[31] == 30.0f && y[15] == -1.0f && y[16] == -1.0f);
    }
    { /* Q5_0, d = 2: qh bit 16 set -> value 16 = (16 - 16)*2 = 0; others (0 - 16)*2 = -32 */
        sdc_block_q5_0 b = {.d = 0x4000, .qh = {0, 0, 0x01, 0}};
        CHECK(sdc_dequantize_row(SDC_TYPE_Q5_0, &b, y, 32));
        CHECK(y[16] == 0.0f && y[0] == -32.0f && y[17] == -32.0f);
    }
    { /* Q8_0, d = 0.25: qs[5] = -128 -> -32 */
        sdc_block_q8_0 b = {.d = 0x3400};
        b.qs[5] = -128;
        b.qs[6] = 127;
        CHECK(sdc_dequantize_row(SDC_TYPE_Q8_0, &b, y, 32));
        CHECK(y[5] == -32.0f && y[6] == 31.75f && y[0] == 0.0f);
    }
    { /* Q4_1, d = 0.5, m = 0.25: qs[3] = 0x1E -> value 3 = 14*0.5 + 0.25 = 7.25, value 19 = 0.75 */
        sdc_block_q4_1 b = {.d = 0x3800, .m = 0x3400};
        b.qs[3] = 0x1E;
        CHECK(sdc_dequantize_row(SDC_TYPE_Q4_1, &b, y, 32));
        CHECK(y[3] == 7.25f && y[19] == 0.75f && y[0] == 0.25f);
    }
    { /* Q4_K, d = 1, dmin = 0.5. scales[0] = 0xC3: sc0 = 3 and top bits 3 (-> sc4 bits 4,5);
         scales[4] = 0x05: mn0 = 5; scales[8] = 0x21: sc4 low 1, mn4 low 2 -> sc4 = 49, mn4 = 2.
         qs[0] = 0x7A: value 0 = 3*10 - 0.5*5 = 27.5; value 32 (sub-block 1, sc = mn = 0) = 0.
         qs[64] = 0x04: value 128 (sub-block 4) = 49*4 - 0.5*2 = 195 */
        sdc_block_q4_k b = {.d = 0x3C00, .dmin = 0x3800};
        b.scales[0] = 0xC3;
        b.scales[4] = 0x05;
        b.scales[8] = 0x21;
        b.qs[0] = 0x7A;
        b.qs[64] = 0x04;
        CHECK(sdc_dequantize_row(SDC_TYPE_Q4_K, &b, y, 256));
        CHECK(y[0] == 27.5f && y[32] == 0.0f && y[128] == 195.0f && y[1] == -2.5f);
    }
    { /* Q6_K, d = 1. ql[0] = 0x05, qh[0] = 0x02: value 0 = 5 | 2<<4 = 37 -> q = 5, scale[0] = 2
         -> 10. value 64 (quarter 2): high nibble of ql[0] = 0, (qh[0]>>4)&3 = 0 -> q = -32,
         scales[4] = -1 -> 32. value 128 (second half, ql[64], qh[32], scales[8] = 0) -> 0 */
        sdc_block_q6_k b = {.d = 0x3C00};
        b.ql[0] = 0x05;
        b.qh[0] = 0x02;
        b.scales[0] = 2;
        b.scales[4] = -1;
        CHECK(sdc_dequantize_row(SDC_TYPE_Q6_K, &b, y, 256));
        CHECK(y[0] == 10.0f && y[64] == 32.0f && y[128] == 0.0f);
    }
    { /* Q3_K, d = 0.5. Scale 0 = 6-bit 33 -> 1 (low nibble scales[0] = 1, high bits scales[8]
         bits 0-1 = 2); hmask[0] bit 0 set, qs[0] = 0x03 -> value 0 = 0.5 * 1 * 3 = 1.5.
         value 1: hmask clear, low bits 0 -> q = -4 -> -2. value 32 (pass 1, hmask bit 1 clear,
         (qs[0]>>2)&3 = 0 -> -4; scale 2: 6-bit 0 -> -32) -> 0.5 * -32 * -4 = 64 */
        sdc_block_q3_k b = {.d = 0x3800};
        b.scales[0] = 0x01;
        b.scales[8] = 0x02;
        b.hmask[0] = 0x01;
        b.qs[0] = 0x03;
        CHECK(sdc_dequantize_row(SDC_TYPE_Q3_K, &b, y, 256));
        CHECK(y[0] == 1.5f && y[1] == -2.0f && y[32] == 64.0f);
    }
    { /* Q2_K, d = 1, dmin = 0.25: scales[0] = 0x32 -> sc 2, mn 3; qs[0] = 0x03 -> value 0 =
         2*3 - 0.25*3 = 5.25; value 32 (pass 1 of the same byte, scales[2] = 0) = 0 */
        sdc_block_q2_k b = {.d = 0x3C00, .dmin = 0x3400};
        b.scales[0] = 0x32;
        b.qs[0] = 0x03;
        CHECK(sdc_dequantize_row(SDC_TYPE_Q2_K, &b, y, 256));
        CHECK(y[0] == 5.25f && y[1] == -0.75f && y[32] == 0.0f);
    }
}

/* ---- 1c. literal quantizer answers: scale choice, tie-breaking, rounding ------------------ */

static void test_literal_quantize(void) {
    float x[32];
    { /* Q4_0: x = (j - 16)/4: max magnitude -4 -> d = -4/-8 = 0.5 (0x3800), x/d = (j-16)/2 and
         code = trunc((j-16)/2 + 8.5) = (j+1)/2, so qs[j] = (j+1)/2 | ((j+17)/2 clamped) << 4 */
        sdc_block_q4_0 b;
        for (int j = 0; j < 32; j++) x[j] = (j - 16) * 0.25f;
        CHECK(sdc_quantize_row(SDC_TYPE_Q4_0, x, &b, 32));
        bool ok = b.d == 0x3800;
        for (int j = 0; j < 16; j++) {
            int hi = (j + 17) / 2 > 15 ? 15 : (j + 17) / 2;
            ok = ok && b.qs[j] == (uint8_t)((j + 1) / 2 | hi << 4);
        }
        CHECK_MSG(ok, "q4_0 literal quantization");
    }
    { /* equal magnitudes of both signs: the first one sets the sign of d (-2 at [3] before +2
         at [9]): Q4_0 d = -2/-8 = +0.25 (0x3400), Q5_0 d = -2/-16 = +0.125 (0x3000) */
        sdc_block_q4_0 b4;
        sdc_block_q5_0 b5;
        for (int j = 0; j < 32; j++) x[j] = 0.01f * j;
        x[3] = -2.0f, x[9] = 2.0f;
        CHECK(sdc_quantize_row(SDC_TYPE_Q4_0, x, &b4, 32) && b4.d == 0x3400);
        CHECK(sdc_quantize_row(SDC_TYPE_Q5_0, x, &b5, 32) && b5.d == 0x3000);
        CHECK((b4.qs[3] & 15) == 0 && (b4.qs[9] & 15) == 15); /* -2 -> code 0, +2 -> 16 clamped to 15 */
    }
    { /* Q8_0 rounds half away from zero (roundf): amax 127 -> d = 1; 2.5 -> 3, -2.5 -> -3, 0.5 -> 1 */
        sdc_block_q8_0 b;
        memset(x, 0, sizeof x);
        x[0] = 127.0f, x[1] = 2.5f, x[2] = -2.5f, x[3] = 0.5f, x[4] = -126.5f;
        CHECK(sdc_quantize_row(SDC_TYPE_Q8_0, x, &b, 32));
        CHECK(b.d == 0x3C00 && b.qs[0] == 127 && b.qs[1] == 3 && b.qs[2] == -3 && b.qs[3] == 1 && b.qs[4] == -127);
    }
    { /* Q4_1: x = j % 16 -> m = 0, d = 15/15 = 1, codes j % 16; 4.5 rounds up to 5 (trunc(x + 0.5)) */
        sdc_block_q4_1 b;
        for (int j = 0; j < 32; j++) x[j] = (float)(j % 16);
        x[5] = 4.5f;
        CHECK(sdc_quantize_row(SDC_TYPE_Q4_1, x, &b, 32));
        bool ok = b.d == 0x3C00 && b.m == 0;
        for (int j = 0; j < 16; j++) ok = ok && b.qs[j] == (uint8_t)(j | j << 4);
        CHECK_MSG(ok, "q4_1 literal quantization");
    }
    { /* Q5_1: x = j - 10 -> m = -10 (0xC900), d = 31/31 = 1, code j: qs[j] = j | (j+16)&15 << 4,
         qh bit j = j >= 16 */
        sdc_block_q5_1 b;
        for (int j = 0; j < 32; j++) x[j] = (float)(j - 10);
        CHECK(sdc_quantize_row(SDC_TYPE_Q5_1, x, &b, 32));
        bool ok = b.d == 0x3C00 && b.m == 0xC900 && b.qh[0] == 0 && b.qh[1] == 0 && b.qh[2] == 0xFF && b.qh[3] == 0xFF;
        for (int j = 0; j < 16; j++) ok = ok && b.qs[j] == (uint8_t)(j | j << 4);
        CHECK_MSG(ok, "q5_1 literal quantization");
    }
}

/* ---- 1b. packers from the layout description + formula in double ------------------------ */

#define NB_KAT 3 /* blocks per row in the known-answer tests */

/* legacy formats: value j of 32 has code q[j]; nibble j in qs[j % 16] (low for j < 16);
 * 5th bit j in bit j of the little-endian u32 qh */
static void pack_nibbles(const int *q, uint8_t *qs) {
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
}
static void pack_qh32(const int *q, uint8_t *qh) {
    memset(qh, 0, 4);
    for (int j = 0; j < 32; j++) qh[j / 8] |= (uint8_t)(((q[j] >> 4) & 1) << (j % 8));
}

static void kat_legacy(tu_rng *r) {
    float got[32 * NB_KAT];
    double want[32 * NB_KAT];
    int q[32];

    sdc_block_q4_0 b40[NB_KAT];
    sdc_block_q4_1 b41[NB_KAT];
    sdc_block_q5_0 b50[NB_KAT];
    sdc_block_q5_1 b51[NB_KAT];
    sdc_block_q8_0 b80[NB_KAT];

    for (int i = 0; i < NB_KAT; i++) { /* Q4_0: (q - 8) d */
        b40[i].d = rand_scale(r);
        for (int j = 0; j < 32; j++) q[j] = rand_int(r, 0, 15), want[32 * i + j] = (q[j] - 8) * f16d(b40[i].d);
        pack_nibbles(q, b40[i].qs);
    }
    CHECK(sdc_dequantize_row(SDC_TYPE_Q4_0, b40, got, 32 * NB_KAT));
    compare_exact(got, want, 32 * NB_KAT, "kat q4_0");

    for (int i = 0; i < NB_KAT; i++) { /* Q4_1: q d + m */
        b41[i].d = rand_scale(r), b41[i].m = rand_scale(r);
        for (int j = 0; j < 32; j++) q[j] = rand_int(r, 0, 15), want[32 * i + j] = q[j] * f16d(b41[i].d) + f16d(b41[i].m);
        pack_nibbles(q, b41[i].qs);
    }
    CHECK(sdc_dequantize_row(SDC_TYPE_Q4_1, b41, got, 32 * NB_KAT));
    compare_exact(got, want, 32 * NB_KAT, "kat q4_1");

    for (int i = 0; i < NB_KAT; i++) { /* Q5_0: (q - 16) d */
        b50[i].d = rand_scale(r);
        for (int j = 0; j < 32; j++) q[j] = rand_int(r, 0, 31), want[32 * i + j] = (q[j] - 16) * f16d(b50[i].d);
        pack_nibbles(q, b50[i].qs);
        pack_qh32(q, b50[i].qh);
    }
    CHECK(sdc_dequantize_row(SDC_TYPE_Q5_0, b50, got, 32 * NB_KAT));
    compare_exact(got, want, 32 * NB_KAT, "kat q5_0");

    for (int i = 0; i < NB_KAT; i++) { /* Q5_1: q d + m */
        b51[i].d = rand_scale(r), b51[i].m = rand_scale(r);
        for (int j = 0; j < 32; j++) q[j] = rand_int(r, 0, 31), want[32 * i + j] = q[j] * f16d(b51[i].d) + f16d(b51[i].m);
        pack_nibbles(q, b51[i].qs);
        pack_qh32(q, b51[i].qh);
    }
    CHECK(sdc_dequantize_row(SDC_TYPE_Q5_1, b51, got, 32 * NB_KAT));
    compare_exact(got, want, 32 * NB_KAT, "kat q5_1");

    for (int i = 0; i < NB_KAT; i++) { /* Q8_0: q d, full int8 range */
        b80[i].d = rand_scale(r);
        for (int j = 0; j < 32; j++) {
            b80[i].qs[j] = (int8_t)rand_int(r, -128, 127);
            want[32 * i + j] = b80[i].qs[j] * f16d(b80[i].d);
        }
    }
    CHECK(sdc_dequantize_row(SDC_TYPE_Q8_0, b80, got, 32 * NB_KAT));
    compare_exact(got, want, 32 * NB_KAT, "kat q8_0");
    printf("known answers: legacy formats, %d blocks each, compared exactly\n", NB_KAT);
}

/* K-quants. In Q2_K, Q3_K and Q6_K sub-block s holds values 16s..16s+15; in Q4_K and Q5_K
 * values 32s..32s+31. Within a 128-value half h of Q2_K/Q3_K, value v = 128h + 32p + l
 * (pass p = 0..3, column l = 0..31) has its 2 low bits at bit 2p of qs[32h + l]; Q3_K's 3rd
 * bit is bit 4h + p of hmask[l]. */
static void pack_2bit(const int *u, uint8_t *qs) { /* u[v] in 0..3 */
    memset(qs, 0, 64);
    for (int v = 0; v < 256; v++) {
        int h = v / 128, p = (v % 128) / 32, l = v % 32;
        qs[32 * h + l] |= (uint8_t)(u[v] << (2 * p));
    }
}

/* Q3_K scales: 6-bit u[s] (s = 0..15): low 4 bits are nibble s of bytes 0..7 (byte s % 8,
 * low nibble for s < 8, high for s >= 8); high 2 bits go to byte 8 + s % 4, bits 2(s/4). */
static void pack_q3_scales(const int *u, uint8_t *sc) {
    memset(sc, 0, 12);
    for (int s = 0; s < 16; s++) {
        sc[s % 8] |= (uint8_t)((u[s] & 15) << (s < 8 ? 0 : 4));
        sc[8 + s % 4] |= (uint8_t)((u[s] >> 4) << (2 * (s / 4)));
    }
}

/* Q4_K/Q5_K scales and mins (6-bit each, 8 sub-blocks): s < 4: sc in bytes 0..3, mn in bytes
 * 4..7 (low 6 bits); s >= 4: low nibbles in byte s + 4 (sc low, mn high), top 2 bits in the
 * top bits of byte s - 4 (sc) and byte s (mn). */
static void pack_k4_scales(const int *sc, const int *mn, uint8_t *out) {
    memset(out, 0, 12);
    for (int s = 0; s < 4; s++) {
        out[s] |= (uint8_t)sc[s];
        out[s + 4] |= (uint8_t)mn[s];
    }
    for (int s = 4; s < 8; s++) {
        out[s + 4] = (uint8_t)((sc[s] & 15) | (mn[s] & 15) << 4);
        out[s - 4] |= (uint8_t)((sc[s] >> 4) << 6);
        out[s] |= (uint8_t)((mn[s] >> 4) << 6);
    }
}

/* Q4_K/Q5_K codes: value v, group g = v / 64, the first 32 of a group in the low nibbles of
 * qs[32g .. 32g+31], the next 32 in the high nibbles; Q5_K's 5th bit of v is bit v / 32 of
 * qh[v % 32]. */
static void pack_k4_codes(const int *q, uint8_t *qs, uint8_t *qh) {
    memset(qs, 0, 128);
    if (qh) memset(qh, 0, 32);
    for (int v = 0; v < 256; v++) {
        int g = v / 64, hi = (v % 64) / 32, l = v % 32;
        qs[32 * g + l] |= (uint8_t)((q[v] & 15) << (4 * hi));
        if (qh) qh[l] |= (uint8_t)(((q[v] >> 4) & 1) << (v / 32));
    }
}

/* Q6_K: u[v] = q + 32 in 0..63. v = 128h + 32k + l: low nibble in ql[64h + l + 32(k & 1)]
 * (low half of the byte for k < 2, high half for k >= 2), 2 high bits at bit 2k of
 * qh[32h + l]. */
static void pack_q6(const int *u, uint8_t *ql, uint8_t *qh) {
    memset(ql, 0, 128);
    memset(qh, 0, 64);
    for (int v = 0; v < 256; v++) {
        int h = v / 128, k = (v % 128) / 32, l = v % 32;
        ql[64 * h + l + 32 * (k & 1)] |= (uint8_t)((u[v] & 15) << (k < 2 ? 0 : 4));
        qh[32 * h + l] |= (uint8_t)((u[v] >> 4) << (2 * k));
    }
}

static void kat_kquants(tu_rng *r) {
    enum { N = 256 * NB_KAT };
    static float got[N];
    static double want[N];
    int q[256], sc[16], mn[16];

    static sdc_block_q2_k b2[NB_KAT];
    for (int i = 0; i < NB_KAT; i++) { /* Q2_K: (d sc) q - (dmin mn), q 0..3, sc/mn 4-bit */
        b2[i].d = rand_scale(r), b2[i].dmin = rand_scale(r);
        for (int s = 0; s < 16; s++) sc[s] = rand_int(r, 0, 15), mn[s] = rand_int(r, 0, 15), b2[i].scales[s] = (uint8_t)(sc[s] | mn[s] << 4);
        for (int v = 0; v < 256; v++) {
            q[v] = rand_int(r, 0, 3);
            want[256 * i + v] = f16d(b2[i].d) * sc[v / 16] * q[v] - f16d(b2[i].dmin) * mn[v / 16];
        }
        pack_2bit(q, b2[i].qs);
    }
    CHECK(sdc_dequantize_row(SDC_TYPE_Q2_K, b2, got, N));
    compare_exact(got, want, N, "kat q2_k");

    static sdc_block_q3_k b3[NB_KAT];
    for (int i = 0; i < NB_KAT; i++) { /* Q3_K: d (u - 32) q, u 6-bit, q -4..3 */
        int u[256];
        b3[i].d = rand_scale(r);
        for (int s = 0; s < 16; s++) sc[s] = rand_int(r, 0, 63);
        pack_q3_scales(sc, b3[i].scales);
        memset(b3[i].hmask, 0, sizeof b3[i].hmask);
        for (int v = 0; v < 256; v++) {
            q[v] = rand_int(r, -4, 3);
            u[v] = q[v] & 3; /* low 2 bits of q + 4 */
            if (q[v] >= 0) b3[i].hmask[v % 32] |= (uint8_t)(1u << ((v / 128) * 4 + (v % 128) / 32));
            want[256 * i + v] = f16d(b3[i].d) * (sc[v / 16] - 32) * q[v];
        }
        pack_2bit(u, b3[i].qs);
    }
    CHECK(sdc_dequantize_row(SDC_TYPE_Q3_K, b3, got, N));
    compare_exact(got, want, N, "kat q3_k");

    static sdc_block_q4_k b4[NB_KAT];
    for (int i = 0; i < NB_KAT; i++) { /* Q4_K: (d sc) q - (dmin mn), 6-bit sc/mn, q 0..15 */
        b4[i].d = rand_scale(r), b4[i].dmin = rand_scale(r);
        for (int s = 0; s < 8; s++) sc[s] = rand_int(r, 0, 63), mn[s] = rand_int(r, 0, 63);
        pack_k4_scales(sc, mn, b4[i].scales);
        for (int v = 0; v < 256; v++) {
            q[v] = rand_int(r, 0, 15);
            want[256 * i + v] = f16d(b4[i].d) * sc[v / 32] * q[v] - f16d(b4[i].dmin) * mn[v / 32];
        }
        pack_k4_codes(q, b4[i].qs, NULL);
    }
    CHECK(sdc_dequantize_row(SDC_TYPE_Q4_K, b4, got, N));
    compare_exact(got, want, N, "kat q4_k");

    static sdc_block_q5_k b5[NB_KAT];
    for (int i = 0; i < NB_KAT; i++) { /* Q5_K: as Q4_K with q 0..31 */
        b5[i].d = rand_scale(r), b5[i].dmin = rand_scale(r);
        for (int s = 0; s < 8; s++) sc[s] = rand_int(r, 0, 63), mn[s] = rand_int(r, 0, 63);
        pack_k4_scales(sc, mn, b5[i].scales);
        for (int v = 0; v < 256; v++) {
            q[v] = rand_int(r, 0, 31);
            want[256 * i + v] = f16d(b5[i].d) * sc[v / 32] * q[v] - f16d(b5[i].dmin) * mn[v / 32];
        }
        pack_k4_codes(q, b5[i].qs, b5[i].qh);
    }
    CHECK(sdc_dequantize_row(SDC_TYPE_Q5_K, b5, got, N));
    compare_exact(got, want, N, "kat q5_k");

    static sdc_block_q6_k b6[NB_KAT];
    for (int i = 0; i < NB_KAT; i++) { /* Q6_K: d sc q, sc int8, q -32..31 */
        int u[256];
        b6[i].d = rand_scale(r);
        for (int s = 0; s < 16; s++) b6[i].scales[s] = (int8_t)rand_int(r, -128, 127);
        for (int v = 0; v < 256; v++) {
            q[v] = rand_int(r, -32, 31);
            u[v] = q[v] + 32;
            want[256 * i + v] = f16d(b6[i].d) * b6[i].scales[v / 16] * q[v];
        }
        pack_q6(u, b6[i].ql, b6[i].qh);
    }
    CHECK(sdc_dequantize_row(SDC_TYPE_Q6_K, b6, got, N));
    compare_exact(got, want, N, "kat q6_k");
    printf("known answers: K-quants, %d super-blocks each, compared exactly\n", NB_KAT);
}

/* ---- 2. round trips with per-block error bounds ------------------------------------------ */

/* Rounding a scale to f16: |d' - d| <= 2^-11 |d| in the normal range, and at most half the
 * smallest subnormal step, 2^-25, below it (blocks with amax under ~1e-3 get there). */
#define F16_REL 0x1p-11
static double f16_err(double d) { return fmax(fabs(d) * F16_REL, 0x1p-25); }

typedef struct {
    sdc_type t;
    const char *name;
} qtype;

/* Step d of the block as the spec defines it, computed here from the data, and the error
 * bound of value x in it:
 *   Q4_0: d = amax/8.  Codes round x/d to the nearest of -8..7: |err| <= d/2, except values
 *         above 7.5 steps (only possible near -max, the far end) which clamp to 7: <= d.
 *         Stored d' = f16(d) adds |q||d'-d| <= 8 e(d), e(d) = max(2^-11 d, 2^-25) (f16_err).
 *   Q5_0: d = amax/16, codes -16..15: same shape, <= d/2 (d when clamped) + 16 d 2^-11.
 *   Q8_0: d = amax/127, codes -127..127 never clamp: <= d/2 + 127 d 2^-11.
 *   Q4_1: d = (max-min)/15, codes 0..15 span the range: <= d/2 + 15 d 2^-11 + |min| 2^-11
 *         (the min itself is stored as f16).
 *   Q5_1: d = (max-min)/31: <= d/2 + 31 d 2^-11 + |min| 2^-11.
 * Plus 1e-6 * amax for the float arithmetic (x * (1/d) is not exact). */
static double block_step(sdc_type t, const float *x, double *mn_out, double *amax_out) {
    double amax = 0, mn = INFINITY, mx = -INFINITY;
    for (int j = 0; j < 32; j++) {
        amax = fmax(amax, fabs(x[j]));
        mn = fmin(mn, x[j]);
        mx = fmax(mx, x[j]);
    }
    *mn_out = mn;
    *amax_out = amax;
    switch (t) {
    case SDC_TYPE_Q4_0: return amax / 8;
    case SDC_TYPE_Q5_0: return amax / 16;
    case SDC_TYPE_Q8_0: return amax / 127;
    case SDC_TYPE_Q4_1: return (mx - mn) / 15;
    case SDC_TYPE_Q5_1: return (mx - mn) / 31;
    default: return 0;
    }
}

static double value_bound(sdc_type t, double x, double d, double mn, double amax, double signed_max, bool *clamped) {
    double b = 0.5 * d, fx = 1e-6 * amax;
    *clamped = false;
    switch (t) {
    case SDC_TYPE_Q4_0:
    case SDC_TYPE_Q5_0: {
        int half = t == SDC_TYPE_Q4_0 ? 8 : 16;
        /* position in steps from the zero code, sign such that max sits at -half */
        double steps = signed_max != 0 ? -x / (signed_max / half) : 0;
        if (steps > half - 0.5) b = d, *clamped = true; /* the clamped top step */
        return b + half * f16_err(d) + fx;
    }
    case SDC_TYPE_Q8_0: return b + 127 * f16_err(d) + fx;
    case SDC_TYPE_Q4_1: return b + 15 * f16_err(d) + f16_err(mn) + fx;
    case SDC_TYPE_Q5_1: return b + 31 * f16_err(d) + f16_err(mn) + fx;
    default: return 0;
    }
}

/* Quantizes n values, dequantizes, checks every value against its bound; prints the worst
 * absolute error and the worst error in units of the block step d. Returns failures. */
static int roundtrip_check(sdc_type t, const char *label, const float *x, int64_t n, bool print) {
    uint64_t bytes = 0;
    CHECK(sdc_type_bytes(t, (uint64_t)n, &bytes));
    uint8_t *qbuf = malloc(bytes);
    float *y = malloc((size_t)n * sizeof(float));
    CHECK(sdc_quantize_row(t, x, qbuf, n));
    CHECK(sdc_dequantize_row(t, qbuf, y, n));
    double worst_abs = 0, worst_steps = 0, worst_steps_unclamped = 0;
    int64_t bad = 0, worst_i = 0;
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + 32 * b;
        double mn, amax, signed_max = 0, am = 0;
        double d = block_step(t, xb, &mn, &amax);
        for (int j = 0; j < 32; j++)
            if (fabs(xb[j]) > am) am = fabs(xb[j]), signed_max = xb[j];
        for (int j = 0; j < 32; j++) {
            double err = fabs((double)y[32 * b + j] - xb[j]);
            bool clamped;
            double bound = value_bound(t, xb[j], d, mn, amax, signed_max, &clamped);
            if (!(err <= bound)) {
                if (!bad) fprintf(stderr, "%s [%lld]: x %.9g got %.9g err %.3g > bound %.3g (d %.3g)\n", label,
                                  (long long)(32 * b + j), xb[j], y[32 * b + j], err, bound, d);
                bad++;
            }
            if (err > worst_abs) worst_abs = err, worst_i = 32 * b + j;
            if (d > 0 && err / d > worst_steps) worst_steps = err / d;
            if (d > 0 && !clamped && err / d > worst_steps_unclamped) worst_steps_unclamped = err / d;
        }
    }
    check_count_++;
    if (bad) check_failures_++;
    if (print)
        printf("%-24s n=%lld max_abs=%.3g worst[%lld] max_err/d=%.4f, outside a clamped step %.4f "
               "(bound 0.5 + f16 rounding of d, 1 in a clamped step)%s\n", label, (long long)n, worst_abs,
               (long long)worst_i, worst_steps, worst_steps_unclamped, bad ? " FAIL" : "");
    free(qbuf);
    free(y);
    return (int)bad;
}

static const qtype QTYPES[] = {
    {SDC_TYPE_Q4_0, "q4_0"}, {SDC_TYPE_Q4_1, "q4_1"}, {SDC_TYPE_Q5_0, "q5_0"},
    {SDC_TYPE_Q5_1, "q5_1"}, {SDC_TYPE_Q8_0, "q8_0"},
};
#define NQTYPES (int)(sizeof QTYPES / sizeof QTYPES[0])

static void test_roundtrips(tu_rng *r) {
    enum { N = 32 * 2048 };
    float *x = malloc(N * sizeof(float));
    /* N(0,1) scaled per block by 10^[-3,2], a quarter of the blocks shifted (asymmetric) */
    for (int b = 0; b < N / 32; b++) {
        double scale = pow(10.0, -3 + 5 * tu_rng_uniform(r));
        double shift = (b % 4 == 3) ? scale * (4 * tu_rng_uniform(r) - 2) : 0;
        for (int j = 0; j < 32; j++) x[32 * b + j] = (float)(tu_rng_normal(r) * scale + shift);
    }
    char label[64];
    for (int k = 0; k < NQTYPES; k++) {
        snprintf(label, sizeof label, "roundtrip %s", QTYPES[k].name);
        roundtrip_check(QTYPES[k].t, label, x, N, true);
    }

    /* symmetric formats are a fixed point: quantize(dequantize(q)) == q byte for byte */
    const sdc_type fixed[] = {SDC_TYPE_Q4_0, SDC_TYPE_Q5_0, SDC_TYPE_Q8_0};
    for (int k = 0; k < 3; k++) {
        uint64_t bytes = 0;
        sdc_type_bytes(fixed[k], N, &bytes);
        uint8_t *q1 = malloc(bytes), *q2 = malloc(bytes);
        float *y = malloc(N * sizeof(float));
        sdc_quantize_row(fixed[k], x, q1, N);
        sdc_dequantize_row(fixed[k], q1, y, N);
        sdc_quantize_row(fixed[k], y, q2, N);
        CHECK_MSG(memcmp(q1, q2, bytes) == 0, "%s: re-quantizing the dequantized row changed it", sdc_type_name(fixed[k]));
        free(q1), free(q2), free(y);
    }

    /* F32 exact; F16 |err| <= 2^-11 |x| (round to nearest, 11-bit significand) or 2^-25 in the
     * subnormal range;
     * BF16 |err| <= 2^-8 |x| (8-bit significand) */
    float *y = malloc(N * sizeof(float));
    uint8_t *buf = malloc(N * 4);
    CHECK(sdc_quantize_row(SDC_TYPE_F32, x, buf, N) && sdc_dequantize_row(SDC_TYPE_F32, buf, y, N));
    CHECK_NEAR(y, x, N, 0, 0, "roundtrip f32 (exact)");
    CHECK(sdc_quantize_row(SDC_TYPE_F16, x, buf, N) && sdc_dequantize_row(SDC_TYPE_F16, buf, y, N));
    CHECK_NEAR(y, x, N, 0x1p-25, 0x1p-11, "roundtrip f16 (rtol 2^-11, atol 2^-25)");
    CHECK(sdc_quantize_row(SDC_TYPE_BF16, x, buf, N) && sdc_dequantize_row(SDC_TYPE_BF16, buf, y, N));
    CHECK_NEAR(y, x, N, 0, 0x1p-8, "roundtrip bf16 (rtol 2^-8)");
    free(y), free(buf), free(x);
}

/* ---- 3. special inputs ------------------------------------------------------------------- */

static void test_special_blocks(tu_rng *r) {
    float x[32], y[32];
    uint8_t q[64];

    /* all zero: every format stores d = 0 (Q4_0/Q5_0: -0, since d = max / -8 with max = +0, as
     * ggml writes it) and decodes zeros */
    memset(x, 0, sizeof x);
    for (int k = 0; k < NQTYPES; k++) {
        CHECK(sdc_quantize_row(QTYPES[k].t, x, q, 32) && sdc_dequantize_row(QTYPES[k].t, q, y, 32));
        bool ok = true;
        for (int j = 0; j < 32; j++) ok = ok && y[j] == 0.0f;
        uint16_t d;
        memcpy(&d, q, 2);
        CHECK_MSG(ok && (d & 0x7fff) == 0, "%s: zero block", QTYPES[k].name);
    }
    { /* the exact zero-block bytes: Q4_0 codes 8 (0x88), Q5_0 codes 16 (qs 0, all qh bits) */
        sdc_block_q4_0 b4;
        sdc_block_q5_0 b5;
        sdc_quantize_row(SDC_TYPE_Q4_0, x, &b4, 32);
        sdc_quantize_row(SDC_TYPE_Q5_0, x, &b5, 32);
        CHECK(b4.qs[0] == 0x88 && b4.qs[15] == 0x88);
        CHECK(b5.qs[0] == 0 && b5.qh[0] == 0xFF && b5.qh[3] == 0xFF);
    }

    /* constant blocks: Q4_1/Q5_1 store m = c, d = 0 and decode f16(c) exactly; symmetric
     * formats map c to the extreme code and decode within their bound */
    const float consts[] = {1.5f, -0.3f, 1000.0f};
    for (int c = 0; c < 3; c++) {
        for (int j = 0; j < 32; j++) x[j] = consts[c];
        for (int k = 0; k < NQTYPES; k++) {
            char label[64];
            snprintf(label, sizeof label, "constant %g %s", consts[c], QTYPES[k].name);
            CHECK_MSG(roundtrip_check(QTYPES[k].t, label, x, 32, false) == 0, "%s", label);
        }
        sdc_quantize_row(SDC_TYPE_Q4_1, x, q, 32);
        sdc_dequantize_row(SDC_TYPE_Q4_1, q, y, 32);
        CHECK(y[7] == (float)f16d(sdc_f32_to_f16(consts[c])));
    }
    for (int j = 0; j < 32; j++) x[j] = 1.5f; /* 1.5/-8 and 1.5/-16 are exact halves */
    sdc_quantize_row(SDC_TYPE_Q4_0, x, q, 32), sdc_dequantize_row(SDC_TYPE_Q4_0, q, y, 32);
    CHECK(y[0] == 1.5f && y[31] == 1.5f);

    /* one huge value among small ones: the small ones collapse to the zero code, all within
     * the bound; the huge one is reproduced to its bound */
    for (int j = 0; j < 32; j++) x[j] = (float)(0.01 * tu_rng_normal(r));
    x[13] = 5000.0f;
    for (int k = 0; k < NQTYPES; k++) {
        char label[64];
        snprintf(label, sizeof label, "huge value %s", QTYPES[k].name);
        CHECK_MSG(roundtrip_check(QTYPES[k].t, label, x, 32, false) == 0, "%s", label);
    }
    /* ... and beyond f16: Q4_0's d = 1e6/8 overflows to inf, as in ggml (no crash, inf out) */
    x[13] = -1e6f;
    sdc_quantize_row(SDC_TYPE_Q4_0, x, q, 32), sdc_dequantize_row(SDC_TYPE_Q4_0, q, y, 32);
    CHECK(isinf(y[13]) && y[13] < 0);
    sdc_quantize_row(SDC_TYPE_Q8_0, x, q, 32), sdc_dequantize_row(SDC_TYPE_Q8_0, q, y, 32); /* d = 7874: fits */
    CHECK(fabsf(y[13] + 1e6f) <= 0.5f * 1e6f / 127 * (1 + 254 * 0x1p-11f));

    /* NaN and Inf inputs: never undefined behaviour. NaN never becomes the block's max; its
     * own code is 0 (what x86 gives ggml), the other values keep their bound. */
    for (int j = 0; j < 32; j++) x[j] = (float)tu_rng_normal(r);
    x[0] = NAN;
    for (int k = 0; k < NQTYPES; k++) {
        CHECK(sdc_quantize_row(QTYPES[k].t, x, q, 32) && sdc_dequantize_row(QTYPES[k].t, q, y, 32));
        float x2[32], y2[32];
        memcpy(x2, x, sizeof x2);
        x2[0] = 0.0f; /* a NaN at [0] must leave the other values as if it were not there... */
        uint8_t q2[64];
        sdc_quantize_row(QTYPES[k].t, x2, q2, 32), sdc_dequantize_row(QTYPES[k].t, q2, y2, 32);
        bool same = true;
        for (int j = 1; j < 32; j++) same = same && y[j] == y2[j];
        /* ...except Q4_1/Q5_1, where a 0 could have been the min: compare only when it was not */
        double mn = 0;
        for (int j = 1; j < 32; j++) mn = fmin(mn, x[j]);
        if (QTYPES[k].t == SDC_TYPE_Q4_1 || QTYPES[k].t == SDC_TYPE_Q5_1) same = same || mn >= 0;
        CHECK_MSG(same && !isnan(y[1]), "%s: a NaN input disturbed the other values", QTYPES[k].name);
    }
    const float specials[][4] = {
        {NAN, NAN, NAN, NAN}, {INFINITY, 1, 2, 3}, {-INFINITY, INFINITY, 0, 1}, {1e-39f, -1e-40f, 0, 0},
        {FLT_MAX, -FLT_MAX, 0, 1}, {1e-45f, 0, 0, 0}, {NAN, INFINITY, -FLT_MAX, 1e-30f},
    };
    for (int s = 0; s < (int)(sizeof specials / sizeof specials[0]); s++) {
        for (int j = 0; j < 32; j++) x[j] = specials[s][j % 4];
        for (int k = 0; k < NQTYPES; k++) CHECK(sdc_quantize_row(QTYPES[k].t, x, q, 32) && sdc_dequantize_row(QTYPES[k].t, q, y, 32));
        CHECK(sdc_quantize_row(SDC_TYPE_F16, x, q, 32) && sdc_quantize_row(SDC_TYPE_BF16, x, q, 32));
    }
    /* a subnormal amax (1/d overflows to inf): values still land on valid codes, no UB */
    for (int j = 0; j < 32; j++) x[j] = (j & 1) ? 1e-39f : -3e-40f;
    CHECK(sdc_quantize_row(SDC_TYPE_Q8_0, x, q, 32) && sdc_dequantize_row(SDC_TYPE_Q8_0, q, y, 32));
    CHECK(y[1] == 0.0f); /* d = 1e-39/127 underflows f16 to 0 */
    /* there x * (1/d) is +-Inf or NaN, a cast ggml leaves undefined; its x86 builds write code
     * 0 (checked against ggml once), and so do we: Q8_0 codes 0, Q4_0 codes 0 */
    bool zero = true;
    sdc_block_q8_0 b8;
    memcpy(&b8, q, sizeof b8);
    for (int j = 0; j < 32; j++) zero = zero && b8.qs[j] == 0;
    sdc_block_q4_0 b4;
    CHECK(sdc_quantize_row(SDC_TYPE_Q4_0, x, &b4, 32));
    for (int j = 0; j < 16; j++) zero = zero && b4.qs[j] == 0;
    CHECK(zero);
}

static void test_float_formats(void) {
    uint16_t h[8];
    float y[8];
    /* F16: largest finite, rounding to 65504 vs overflow at 65520, subnormals with ties to even */
    const float in16[8] = {65504.0f, 65519.99f, 65520.0f, 0x1p-24f, 0x1p-25f, 3 * 0x1p-25f, 0x1p-25f * 1.0001f, -0.0f};
    const uint16_t want16[8] = {0x7bff, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x0002, 0x0001, 0x8000};
    CHECK(sdc_quantize_row(SDC_TYPE_F16, in16, h, 8));
    for (int i = 0; i < 8; i++) CHECK_MSG(h[i] == want16[i], "f16(%g) = 0x%04x, want 0x%04x", in16[i], h[i], want16[i]);
    CHECK(sdc_dequantize_row(SDC_TYPE_F16, h, y, 8));
    CHECK(y[0] == 65504.0f && isinf(y[2]) && y[3] == 0x1p-24f && y[5] == 0x1p-23f && signbit(y[7]));

    /* BF16: ties to even at 1 + 2^-8 (down) and 1 + 3*2^-8 (up), just above a tie rounds up,
     * FLT_MAX rounds to inf, NaN stays NaN, a subnormal (2^-130 = bits 0x00080000) kept */
    const float inb[8] = {1 + 0x1p-8f, 1 + 3 * 0x1p-8f, 1 + 0x1p-8f + 0x1p-20f, FLT_MAX, NAN, -INFINITY, 0x1p-130f, -2.0f};
    const uint16_t wantb[8] = {0x3f80, 0x3f82, 0x3f81, 0x7f80, 0, 0xff80, 0x0008, 0xc000};
    CHECK(sdc_quantize_row(SDC_TYPE_BF16, inb, h, 8));
    for (int i = 0; i < 8; i++)
        if (i != 4) CHECK_MSG(h[i] == wantb[i], "bf16(%g) = 0x%04x, want 0x%04x", inb[i], h[i], wantb[i]);
    CHECK((h[4] & 0x7f80) == 0x7f80 && (h[4] & 0x7f) != 0);
    CHECK(sdc_dequantize_row(SDC_TYPE_BF16, h, y, 8));
    CHECK(y[0] == 1.0f && y[1] == 1 + 0x1p-6f && isnan(y[4]) && y[7] == -2.0f);

    /* F64: rounds to nearest float; beyond the range gives inf */
    const double in64[4] = {1.0 / 3, -1e300, 1e-50, 0.1};
    CHECK(sdc_dequantize_row(SDC_TYPE_F64, in64, y, 4));
    CHECK(y[0] == (float)(1.0 / 3) && isinf(y[1]) && y[1] < 0 && y[2] == 0.0f && y[3] == 0.1f);
    CHECK(!sdc_quantize_row(SDC_TYPE_F64, y, h, 1));

    /* unaligned source and destination give the same values */
    uint8_t raw[8 * 4 + 1], qraw[34 + 1];
    float x32[32], a[32], b[32];
    for (int i = 0; i < 32; i++) x32[i] = (float)i - 10.5f;
    memcpy(raw + 1, in64, sizeof in64);
    CHECK(sdc_dequantize_row(SDC_TYPE_F64, raw + 1, a, 4) && memcmp(a, y, 4 * sizeof(float)) == 0);
    CHECK(sdc_quantize_row(SDC_TYPE_Q8_0, x32, qraw + 1, 32));
    CHECK(sdc_dequantize_row(SDC_TYPE_Q8_0, qraw + 1, a, 32));
    sdc_block_q8_0 bq;
    sdc_quantize_row(SDC_TYPE_Q8_0, x32, &bq, 32), sdc_dequantize_row(SDC_TYPE_Q8_0, &bq, b, 32);
    CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(qraw + 1, &bq, sizeof bq) == 0);
}

static void test_guards(void) {
    float x[512] = {0}, y[512];
    uint8_t q[1024];
    const sdc_type ints[] = {SDC_TYPE_I8, SDC_TYPE_I16, SDC_TYPE_I32, SDC_TYPE_I64, SDC_TYPE_U8, SDC_TYPE_BOOL};
    for (int i = 0; i < 6; i++) {
        CHECK(!sdc_dequantize_row(ints[i], q, y, 4));
        CHECK(!sdc_quantize_row(ints[i], x, q, 4));
        CHECK(!sdc_can_quantize(ints[i]));
    }
    CHECK(!sdc_dequantize_row(SDC_TYPE_COUNT, q, y, 32) && !sdc_dequantize_row((sdc_type)-1, q, y, 32));
    CHECK(!sdc_quantize_row(SDC_TYPE_COUNT, x, q, 32) && !sdc_can_quantize((sdc_type)-1));

    /* n not a multiple of the block: refused, nothing written */
    const sdc_type blocks[] = {SDC_TYPE_Q4_0, SDC_TYPE_Q4_1, SDC_TYPE_Q5_0, SDC_TYPE_Q5_1, SDC_TYPE_Q8_0,
                               SDC_TYPE_Q2_K, SDC_TYPE_Q3_K, SDC_TYPE_Q4_K, SDC_TYPE_Q5_K, SDC_TYPE_Q6_K};
    memset(q, 0, sizeof q);
    for (int i = 0; i < 10; i++) {
        int blk = i < 5 ? 32 : 256;
        for (int j = 0; j < 512; j++) y[j] = 42.0f;
        CHECK(!sdc_dequantize_row(blocks[i], q, y, blk - 1));
        CHECK(!sdc_dequantize_row(blocks[i], q, y, blk + 1));
        CHECK(!sdc_dequantize_row(blocks[i], q, y, -blk));
        CHECK(y[0] == 42.0f);
        CHECK(sdc_dequantize_row(blocks[i], q, y, 2 * blk)); /* zeros decode */
        CHECK(sdc_dequantize_row(blocks[i], q, y, 0));
        if (i < 5) {
            memset(q, 0xAB, sizeof q);
            CHECK(!sdc_quantize_row(blocks[i], x, q, 31) && !sdc_quantize_row(blocks[i], x, q, 33));
            CHECK(!sdc_quantize_row(blocks[i], x, q, -32));
            CHECK(q[0] == 0xAB);
            CHECK(sdc_can_quantize(blocks[i]));
            memset(q, 0, sizeof q);
        } else {
            CHECK(!sdc_can_quantize(blocks[i]) && !sdc_quantize_row(blocks[i], x, q, 256));
        }
    }
    CHECK(sdc_can_quantize(SDC_TYPE_F32) && sdc_can_quantize(SDC_TYPE_F16) && sdc_can_quantize(SDC_TYPE_BF16));
    CHECK(!sdc_can_quantize(SDC_TYPE_F64));
    CHECK(!sdc_dequantize_row(SDC_TYPE_F16, NULL, y, 4) && !sdc_quantize_row(SDC_TYPE_Q8_0, NULL, q, 32));
}

int main(void) {
    tu_rng r = {12345};
    test_guards();
    test_literal_blocks();
    test_literal_quantize();
    kat_legacy(&r);
    kat_kquants(&r);
    test_roundtrips(&r);
    test_special_blocks(&r);
    test_float_formats();
    return check_done();
}
