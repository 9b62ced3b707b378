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
 *    BF16 rounding, F64; bad n, integer types and K-quant quantization refused.
 * 4. The weighted search (sdc_quantize_rows, weighted): hand-derived blocks, agreement with
 *    a double-precision model of the documented algorithm, lower weighted error than the
 *    reference quantizer, determinism, row independence, guards. */
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


/* ---- 4. weighted search (sdc_quantize_rows) ----------------------------------------------- */

/* Model of the documented algorithm (quant.h, quant.c), in double, written from the
 * description: per row sigma2 = mean x^2, w_j = sqrt(sigma2 + x_j^2); per block
 *   symmetric (nmax 8/16): max = first value of largest magnitude; candidates
 *     i = -(nmax + k/10)/max, k = 0, -9..-1, 1..9, codes l = clamp(rint(i x), -nmax, nmax-1),
 *     score sum(w x l)^2 / sum(w l^2); the first strictly best wins; d = sum(w x l)/sum(w l^2);
 *   affine (nmax 15/31): min' = min(min, 0); start d = (max - min')/nmax, m = min',
 *     q = clamp(rint((x - m)/d), 0, nmax); candidates i = (nmax - 0.9 + 0.05 k)/(max - min'),
 *     k = 0..36, q = clamp(rint(i (x - min')), 0, nmax), weighted least squares (d, m),
 *     m > 0 -> m = 0, d = sum(w q x)/sum(w q^2); a strictly smaller weighted error wins.
 * rint rounds half to even (the default rounding mode). Returns d, codes in q, m in *m. */
static double model_weighted(int nmax, bool affine, const float *xf, const double *w, int *q, double *m) {
    double x[32];
    for (int j = 0; j < 32; j++) x[j] = xf[j];
    *m = 0;
    if (!affine) {
        double amax = 0, max = 0, best = -1, d = 0;
        for (int j = 0; j < 32; j++)
            if (fabs(x[j]) > amax) amax = fabs(x[j]), max = x[j];
        if (amax < 1e-15) {
            for (int j = 0; j < 32; j++) q[j] = 0;
            return 0;
        }
        static const int ks[19] = {0, -9, -8, -7, -6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9};
        for (int c = 0; c < 19; c++) {
            const double is = -(nmax + 0.1 * ks[c]) / max;
            double sxl = 0, sl2 = 0;
            int l[32];
            for (int j = 0; j < 32; j++) {
                l[j] = (int)fmin(fmax(rint(is * x[j]), -nmax), nmax - 1);
                sxl += w[j] * x[j] * l[j];
                sl2 += w[j] * l[j] * l[j];
            }
            if (sl2 > 0 && sxl * sxl / sl2 > best) {
                best = sxl * sxl / sl2, d = sxl / sl2;
                for (int j = 0; j < 32; j++) q[j] = l[j] + nmax;
            }
        }
        return d;
    }
    double mn = x[0], mx = x[0], sw = 0, sx = 0;
    for (int j = 0; j < 32; j++) mn = fmin(mn, x[j]), mx = fmax(mx, x[j]), sw += w[j], sx += w[j] * x[j];
    if (mn > 0) mn = 0;
    if (mx <= mn) {
        for (int j = 0; j < 32; j++) q[j] = 0;
        *m = mn;
        return 0;
    }
    double d = (mx - mn) / nmax, best = 0;
    *m = mn;
    for (int j = 0; j < 32; j++) {
        q[j] = (int)fmin(fmax(rint((x[j] - mn) / d), 0), nmax);
        best += w[j] * (d * q[j] + mn - x[j]) * (d * q[j] + mn - x[j]);
    }
    for (int k = 0; k <= 36; k++) {
        const double is = (nmax - 0.9 + 0.05 * k) / (mx - mn);
        double sl = 0, sl2 = 0, sxl = 0, err = 0;
        int l[32];
        for (int j = 0; j < 32; j++) {
            l[j] = (int)fmin(fmax(rint(is * (x[j] - mn)), 0), nmax);
            sl += w[j] * l[j], sl2 += w[j] * l[j] * l[j], sxl += w[j] * l[j] * x[j];
        }
        const double det = sw * sl2 - sl * sl;
        if (!(det > 0)) continue;
        double dd = (sw * sxl - sx * sl) / det, mm = (sl2 * sx - sl * sxl) / det;
        if (mm > 0) mm = 0, dd = sxl / sl2;
        for (int j = 0; j < 32; j++) err += w[j] * (dd * l[j] + mm - x[j]) * (dd * l[j] + mm - x[j]);
        if (err < best) {
            best = err, d = dd, *m = mm;
            for (int j = 0; j < 32; j++) q[j] = l[j];
        }
    }
    return d;
}

/* codes of a legacy block (value j of 32), 5th bit from qh for Q5_* */
static void block_codes(sdc_type t, const uint8_t *blk, int *q, double *d, double *m) {
    const bool affine = t == SDC_TYPE_Q4_1 || t == SDC_TYPE_Q5_1, five = t == SDC_TYPE_Q5_0 || t == SDC_TYPE_Q5_1;
    uint16_t hd, hm = 0;
    memcpy(&hd, blk, 2);
    if (affine) memcpy(&hm, blk + 2, 2);
    const uint8_t *qh = blk + (affine ? 4 : 2), *qs = qh + (five ? 4 : 0);
    uint32_t h = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
    for (int j = 0; j < 32; j++) {
        q[j] = j < 16 ? (qs[j] & 15) : (qs[j - 16] >> 4);
        if (five) q[j] |= (int)((h >> j) & 1) << 4;
    }
    *d = f16d(hd);
    *m = f16d(hm);
}

static const sdc_type WTYPES[4] = {SDC_TYPE_Q4_0, SDC_TYPE_Q4_1, SDC_TYPE_Q5_0, SDC_TYPE_Q5_1};
static const int WNMAX[4] = {8, 15, 16, 31};

static size_t block_size_of(sdc_type t) { return (size_t)sdc_type_traits_of(t)->block_bytes; }

/* Hand-derived blocks. Symmetric: x[0] = -1, the other 31 values +1 (all weights equal).
 * The reference (and the search's first candidate, i = 8/1) maps -1 to -8 and +1 to 8,
 * clamped to 7: every +1 is off by 1/8. Candidates i = 7.1..7.4 (k = -9..-6) round both
 * to +-7: scale 1/7 fits exactly (score 32 > 225^2/1583 = 31.98); k = -9 comes first, the
 * later equal ones do not replace it, k >= -5 give the first candidate's codes again
 * (7.5 rounds to 8, half to even). So Q4_0: d = f16(1/7) = 0x3092, codes 1 (x[0]) and 15.
 * Q5_0 likewise with 16 -> 15: d = f16(1/15) = 0x2C44, codes 1 and 31.
 * Affine: x[0] = 0.5, the other 31 values 1. min' = 0 (all positive), so the start is
 * d = 1/15, codes 8 (7.5 rounds to even 8) and 15: 0.5 is off by 1/30. The first candidate
 * i = 14.1 gives codes 7 and 14, an exact fit d = 1/14, m = 0 (Q4_1: d = 0x2C92); Q5_1:
 * i = 30.1 gives 15 and 30, d = 1/30 (0x2844), m = 0. The reference quantizers would keep
 * m = 0.5 instead (never raising the min to 0). The least-squares m comes out of a float
 * difference of large sums, ~1e-5 instead of 0 (Q5_1), hence |m| <= 1e-4 below. */
static void test_weighted_literal(void) {
    float x[32];
    uint8_t blk[24];
    int q[32];
    double d, m;
    for (int j = 0; j < 32; j++) x[j] = 1.0f;
    x[0] = -1.0f;
    CHECK(sdc_quantize_rows(SDC_TYPE_Q4_0, x, blk, 1, 32, true));
    block_codes(SDC_TYPE_Q4_0, blk, q, &d, &m);
    bool ok = blk[0] == 0x92 && blk[1] == 0x30 && q[0] == 1;
    for (int j = 1; j < 32; j++) ok = ok && q[j] == 15;
    CHECK_MSG(ok, "weighted q4_0: d 0x%02x%02x codes %d %d, want 0x3092, 1 and 15", blk[1], blk[0], q[0], q[1]);
    CHECK(sdc_quantize_rows(SDC_TYPE_Q4_0, x, blk, 1, 32, false)); /* the reference: d = 1/8 */
    CHECK(blk[0] == 0x00 && blk[1] == 0x30);
    CHECK(sdc_quantize_rows(SDC_TYPE_Q5_0, x, blk, 1, 32, true));
    block_codes(SDC_TYPE_Q5_0, blk, q, &d, &m);
    ok = blk[0] == 0x44 && blk[1] == 0x2C && q[0] == 1;
    for (int j = 1; j < 32; j++) ok = ok && q[j] == 31;
    CHECK_MSG(ok, "weighted q5_0: d 0x%02x%02x codes %d %d, want 0x2C44, 1 and 31", blk[1], blk[0], q[0], q[1]);

    for (int j = 0; j < 32; j++) x[j] = 1.0f;
    x[0] = 0.5f;
    CHECK(sdc_quantize_rows(SDC_TYPE_Q4_1, x, blk, 1, 32, true));
    block_codes(SDC_TYPE_Q4_1, blk, q, &d, &m);
    ok = blk[0] == 0x92 && blk[1] == 0x2C && fabs(m) <= 1e-4 && q[0] == 7;
    for (int j = 1; j < 32; j++) ok = ok && q[j] == 14;
    CHECK_MSG(ok, "weighted q4_1: d %.6g m %.3g codes %d %d, want 1/14, 0, 7 and 14", d, m, q[0], q[1]);
    CHECK(sdc_quantize_rows(SDC_TYPE_Q5_1, x, blk, 1, 32, true));
    block_codes(SDC_TYPE_Q5_1, blk, q, &d, &m);
    ok = blk[0] == 0x44 && blk[1] == 0x28 && fabs(m) <= 1e-4 && q[0] == 15;
    for (int j = 1; j < 32; j++) ok = ok && q[j] == 30;
    CHECK_MSG(ok, "weighted q5_1: d %.6g m %.3g codes %d %d, want 1/30, 0, 15 and 30", d, m, q[0], q[1]);

    /* all zero: d = 0 and code 0 (symmetric: stored code nmax + 0 -> the "all zero" rule
     * stores 0, as ggml), m = 0 */
    memset(x, 0, sizeof x);
    for (int k = 0; k < 4; k++) {
        memset(blk, 0xAB, sizeof blk);
        CHECK(sdc_quantize_rows(WTYPES[k], x, blk, 1, 32, true));
        block_codes(WTYPES[k], blk, q, &d, &m);
        ok = d == 0 && m == 0;
        for (int j = 0; j < 32; j++) ok = ok && q[j] == 0;
        CHECK_MSG(ok, "weighted %s: zero block", sdc_type_name(WTYPES[k]));
    }
}

/* Bytes ggml itself wrote for a fixed input: x_j = ((37 j mod 101) - 50 + (j < 64 ? 0 : 30))/16,
 * j = 0..127, two rows of 64, quantize_q4_0/q4_1/q5_0/q5_1 with an importance vector of ones
 * (what stable-diffusion.cpp's converter calls); taken from ggml-quants.c of the current
 * ggml and of the 2024 ggml that made the published files (both give these bytes when built
 * without FMA contraction). */
static const uint8_t GGML_WEIGHTED[4][4 * 24] = {
    /* q4_0 */ {
        0x0A, 0x37, 0xD1, 0x46, 0x9B, 0xF2, 0x68, 0xBD, 0x24, 0x79, 0xCE, 0x35, 0x8A, 0xE1, 0x57, 0xAC,
        0xF3, 0x68, 0xC2, 0xB6, 0x75, 0x1E, 0xB9, 0x53, 0xFD, 0x97, 0x42, 0xDB, 0x86, 0x2F, 0xCA, 0x64,
        0x1E, 0xA8, 0x53, 0xEC, 0xA9, 0xB8, 0x75, 0x31, 0xA8, 0x64, 0x20, 0x97, 0x53, 0x1A, 0x86, 0x42,
        0x09, 0x65, 0x31, 0x98, 0x54, 0x10, 0xAC, 0xB8, 0xA8, 0x64, 0x20, 0x97, 0x53, 0x1A, 0x86, 0x42,
        0x09, 0x75, 0x31, 0x98, 0x64, 0x20, 0x87, 0x43,
    },
    /* q4_1 */ {
        0xB2, 0x36, 0x13, 0xC2, 0xD0, 0x35, 0x9B, 0xE1, 0x57, 0xAC, 0x13, 0x68, 0xCE, 0x24, 0x8A, 0xD0,
        0x46, 0x9B, 0xF2, 0x57, 0x3E, 0x36, 0xC9, 0xC1, 0x9B, 0xF1, 0x57, 0xAD, 0x02, 0x68, 0xCE, 0x24,
        0x8A, 0xE0, 0x36, 0x9C, 0xF1, 0x57, 0xBD, 0x13, 0xB6, 0x36, 0x5C, 0xBC, 0x46, 0xAC, 0x02, 0x68,
        0xBD, 0x24, 0x79, 0xD0, 0x35, 0x9B, 0xE1, 0x57, 0xAC, 0x13, 0x68, 0xCE, 0x60, 0x36, 0x68, 0xBC,
        0x02, 0x68, 0xCE, 0x24, 0x7A, 0xD0, 0x35, 0x9B, 0xF1, 0x57, 0xBD, 0x13, 0x69, 0xCE, 0x24, 0x8A,
    },
    /* q5_0 */ {
        0xB8, 0x32, 0xA4, 0xA5, 0x2D, 0x6D, 0xB1, 0x8C, 0x37, 0xE4, 0xBF, 0x6A, 0x37, 0xE2, 0x9D, 0x6A,
        0x15, 0xC2, 0x9D, 0x48, 0xF5, 0xC0, 0x6F, 0xB2, 0x96, 0xB6, 0xB4, 0xA4, 0xD9, 0x2D, 0x61, 0xA6,
        0xEA, 0x2E, 0x73, 0xB7, 0xFB, 0x4F, 0x83, 0xC8, 0x1C, 0x50, 0x95, 0xD9, 0xE9, 0xB4, 0x84, 0x24,
        0x24, 0x20, 0xEB, 0x63, 0x30, 0xC9, 0x41, 0x1E, 0xA7, 0x24, 0xFC, 0x85, 0x02, 0xDA, 0x63, 0x30,
        0xB8, 0x41, 0xD6, 0xB4, 0x21, 0x09, 0x09, 0x48, 0x41, 0xC9, 0x41, 0x1F, 0xA7, 0x24, 0xFC, 0x85,
        0x02, 0xDA, 0x63, 0x30, 0xB8, 0x41, 0x1E, 0x96,
    },
    /* q5_1 */ {
        0xB8, 0x32, 0x4D, 0xC2, 0xA4, 0x25, 0x2D, 0x6D, 0xA0, 0x7B, 0x26, 0xD3, 0xAE, 0x59, 0x26, 0xD1,
        0x8C, 0x59, 0x04, 0xB1, 0x8C, 0x37, 0xE4, 0xBF, 0x6D, 0x32, 0xF9, 0xC1, 0x69, 0x49, 0x4B, 0x5B,
        0x26, 0xD2, 0x9E, 0x59, 0x15, 0xC1, 0x8C, 0x48, 0x04, 0xB0, 0x7B, 0x37, 0xE3, 0xAF, 0x6A, 0x26,
        0x6C, 0x32, 0xB4, 0xBC, 0x5A, 0xD2, 0xD2, 0x96, 0x9E, 0x59, 0x15, 0xC1, 0x8C, 0x48, 0x04, 0xB0,
        0x7B, 0x37, 0xE3, 0xAF, 0x6A, 0x26, 0xD2, 0x9D, 0x6A, 0x32, 0xE6, 0xBC, 0x96, 0xB4, 0xA4, 0xA5,
        0x15, 0xC1, 0x8C, 0x48, 0xF4, 0xB0, 0x7B, 0x37, 0xE3, 0xAF, 0x6A, 0x26, 0xD2, 0x9D, 0x59, 0x05,
    },
};

static void test_weighted_ggml_vectors(void) {
    float x[128];
    uint8_t q[4 * 24];
    for (int j = 0; j < 128; j++) x[j] = (float)((j * 37 % 101) - 50 + (j < 64 ? 0 : 30)) / 16.0f;
    for (int k = 0; k < 4; k++) {
        const size_t n = 4 * block_size_of(WTYPES[k]);
        CHECK(sdc_quantize_rows(WTYPES[k], x, q, 2, 64, true));
        CHECK_MSG(memcmp(q, GGML_WEIGHTED[k], n) == 0, "weighted %s: bytes differ from ggml's", sdc_type_name(WTYPES[k]));
    }
}

/* Random rows of several shapes: (a) Q4_0/Q5_0: codes equal the double model's and d agrees
 * within the f16 rounding (float vs double only matters in near-ties, which this fixed data
 * set does not hit). Not for Q4_1/Q5_1: their least-squares (d, m) is a float difference of
 * large sums (sum_w sum_l2 - sum_l^2), so float and double choose differently in ~1/4 of
 * the blocks; their bit-exactness rests on ggml's own bytes (test_weighted_ggml_vectors)
 * and on the stable-diffusion.cpp files. (b) The weighted error after the round trip is at
 * most the reference quantizer's, per row - except, for Q4_1/Q5_1, rows of one sign: the
 * search keeps m <= 0, so an all-positive block is spanned from 0 instead of from its min,
 * and the reference can be better there (printed, not checked). (c) Determinism: same
 * bytes twice, and rows quantized one at a time equal the whole call. (d) weighted = false
 * is sdc_quantize_row. */
static void test_weighted_random(tu_rng *r) {
    enum { ROWS = 24, NPR = 320 };
    float *x = malloc(ROWS * NPR * sizeof(float)), *y = malloc(ROWS * NPR * sizeof(float));
    uint8_t *qa = malloc(ROWS * NPR), *qb = malloc(ROWS * NPR), *qr = malloc(ROWS * NPR + 1);
    for (int i = 0; i < ROWS * NPR; i++) {
        const int row = i / NPR;
        double v = tu_rng_normal(r) * pow(10.0, -2 + (row % 5));
        if (row % 3 == 1) v = fabs(v);                          /* all positive: min' = 0 */
        if (row % 4 == 2 && i % 37 == 0) v *= 8;                /* outliers */
        if (row % 6 == 5) v = tu_rng_uniform(r) * 2 - 1.5;      /* shifted uniform */
        x[i] = (float)v;
    }
    for (int k = 0; k < 4; k++) {
        const sdc_type t = WTYPES[k];
        const bool affine = t == SDC_TYPE_Q4_1 || t == SDC_TYPE_Q5_1;
        const size_t bs = block_size_of(t), row_bytes = NPR / 32 * bs;
        CHECK(sdc_quantize_rows(t, x, qa, ROWS, NPR, true));
        /* (c) */
        CHECK(sdc_quantize_rows(t, x, qb, ROWS, NPR, true) && memcmp(qa, qb, ROWS * row_bytes) == 0);
        for (int row = 0; row < ROWS; row++) CHECK(sdc_quantize_rows(t, x + row * NPR, qr + 1 + row * row_bytes, 1, NPR, true));
        CHECK_MSG(memcmp(qa, qr + 1, ROWS * row_bytes) == 0, "%s: row-by-row differs", sdc_type_name(t));
        /* (d) */
        CHECK(sdc_quantize_rows(t, x, qb, ROWS, NPR, false) && sdc_quantize_row(t, x, qr, ROWS * NPR));
        CHECK(memcmp(qb, qr, ROWS * row_bytes) == 0);
        /* (a) */
        int code_mismatch = 0, scale_mismatch = 0, searched = 0;
        double w[NPR];
        for (int row = 0; row < ROWS; row++) {
            const float *xr = x + row * NPR;
            double s2 = 0;
            for (int j = 0; j < NPR; j++) s2 += (double)xr[j] * xr[j];
            s2 /= NPR;
            for (int j = 0; j < NPR; j++) w[j] = sqrt(s2 + (double)xr[j] * xr[j]);
            for (int b = 0; b < NPR / 32; b++) {
                int qm[32], qg[32];
                double mm, dg, mg;
                const double dm = model_weighted(WNMAX[k], affine, xr + 32 * b, w + 32 * b, qm, &mm);
                block_codes(t, qa + row * row_bytes + b * bs, qg, &dg, &mg);
                if (affine) continue;
                if (memcmp(qm, qg, sizeof qm)) code_mismatch++;
                if (!(fabs(dg - dm) <= fabs(dm) * 0x1p-11 * 1.001 + 0x1p-24) ||
                    !(fabs(mg - mm) <= fabs(mm) * 0x1p-11 * 1.001 + 0x1p-24))
                    scale_mismatch++;
                /* the search moved away from the plain step (reference d = amax/nmax) */
                double amax = 0;
                for (int j = 0; j < 32; j++) amax = fmax(amax, fabs(xr[32 * b + j]));
                if (!affine && fabs(fabs(dm) - amax / WNMAX[k]) > 1e-3 * amax / WNMAX[k]) searched++;
            }
        }
        CHECK_MSG(code_mismatch == 0 && scale_mismatch == 0, "%s: %d blocks' codes, %d scales differ from the model",
                  sdc_type_name(t), code_mismatch, scale_mismatch);
        if (!affine) CHECK_MSG(searched > ROWS * NPR / 32 / 4, "%s: only %d blocks moved off amax/nmax", sdc_type_name(t), searched);
        /* (b) */
        double tot_w = 0, tot_r = 0;
        int worse = 0, worse_one_sign = 0;
        sdc_dequantize_row(t, qa, y, ROWS * NPR);
        float *yr = malloc(ROWS * NPR * sizeof(float));
        sdc_dequantize_row(t, qb, yr, ROWS * NPR);
        for (int row = 0; row < ROWS; row++) {
            const float *xr = x + row * NPR;
            double s2 = 0, ew = 0, er = 0;
            for (int j = 0; j < NPR; j++) s2 += (double)xr[j] * xr[j];
            s2 /= NPR;
            for (int j = 0; j < NPR; j++) {
                const double wj = sqrt(s2 + (double)xr[j] * xr[j]), a = y[row * NPR + j] - (double)xr[j],
                             b = yr[row * NPR + j] - (double)xr[j];
                ew += wj * a * a, er += wj * b * b;
            }
            const bool one_sign = affine && row % 3 == 1 && row % 6 != 5; /* the all-positive rows */
            if (!(ew <= er)) *(one_sign ? &worse_one_sign : &worse) += 1;
            tot_w += ew / s2, tot_r += er / s2;
        }
        free(yr);
        printf("weighted %s: %s %d blocks, %d moved off amax/nmax; weighted error / reference %.3f, worse in %d of "
               "%d rows (%d all-positive rows)\n", sdc_type_name(t), affine ? "not modelled:" : "codes = model in",
               ROWS * NPR / 32, searched, tot_w / tot_r, worse, ROWS, worse_one_sign);
        CHECK_MSG(worse == 0, "%s: weighted error above the reference quantizer's in %d rows", sdc_type_name(t), worse);
    }
    free(x), free(y), free(qa), free(qb), free(qr);
}

/* Other types and bad arguments; NaN/Inf rows. */
static void test_weighted_guards(void) {
    float x[128], y[128];
    uint8_t q[512], q2[512];
    for (int j = 0; j < 128; j++) x[j] = (float)sin(j * 0.7) * 3;
    /* types without a search: the same bytes as sdc_quantize_row */
    const sdc_type plain[] = {SDC_TYPE_Q8_0, SDC_TYPE_F16, SDC_TYPE_BF16, SDC_TYPE_F32};
    for (int i = 0; i < 4; i++) {
        memset(q, 0, sizeof q), memset(q2, 1, sizeof q2);
        CHECK(sdc_quantize_rows(plain[i], x, q, 2, 64, true) && sdc_quantize_row(plain[i], x, q2, 128));
        uint64_t nb = 0;
        sdc_type_bytes(plain[i], 128, &nb);
        CHECK_MSG(memcmp(q, q2, nb) == 0, "%s: weighted differs from sdc_quantize_row", sdc_type_name(plain[i]));
    }
    /* refused: K-quants, integers, rows not a multiple of the block, negative sizes; nothing written */
    memset(q, 0xAB, sizeof q);
    CHECK(!sdc_quantize_rows(SDC_TYPE_Q4_K, x, q, 1, 256, true) && !sdc_quantize_rows(SDC_TYPE_I8, x, q, 1, 32, true));
    for (int k = 0; k < 4; k++) {
        CHECK(!sdc_quantize_rows(WTYPES[k], x, q, 2, 48, true) && !sdc_quantize_rows(WTYPES[k], x, q, -1, 32, true));
        CHECK(!sdc_quantize_rows(WTYPES[k], x, q, 1, -32, true) && !sdc_quantize_rows(WTYPES[k], NULL, q, 1, 32, true));
        CHECK(sdc_quantize_rows(WTYPES[k], x, q, 0, 32, true) && sdc_quantize_rows(WTYPES[k], x, q, 4, 0, true));
    }
    CHECK(q[0] == 0xAB);
    /* NaN / Inf: defined, deterministic, and a NaN-free row next to it is unaffected (sigma2
     * is per row) */
    for (int k = 0; k < 4; k++) {
        float z[64];
        memcpy(z, x, sizeof z);
        z[3] = NAN, z[40] = INFINITY, z[41] = -INFINITY;
        float zz[128];
        memcpy(zz, z, sizeof z), memcpy(zz + 64, x + 64, 64 * sizeof(float));
        const size_t rb = 2 * block_size_of(WTYPES[k]);
        CHECK(sdc_quantize_rows(WTYPES[k], zz, q, 2, 64, true) && sdc_quantize_rows(WTYPES[k], zz, q2, 2, 64, true));
        CHECK(memcmp(q, q2, 2 * rb) == 0);
        CHECK(sdc_quantize_rows(WTYPES[k], x + 64, q2, 1, 64, true) && memcmp(q + rb, q2, rb) == 0);
        CHECK(sdc_dequantize_row(WTYPES[k], q, y, 128));
    }
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
    test_weighted_literal();
    test_weighted_ggml_vectors();
    test_weighted_random(&r);
    test_weighted_guards();
    return check_done();
}
