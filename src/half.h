/* half.h - IEEE binary16 and bfloat16 <-> float32 conversions (scalar, exact, round to
 * nearest even). These are the reference conversions every SIMD path is tested against. */
#ifndef SDC_HALF_H
#define SDC_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t sdc_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float sdc_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float sdc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return sdc_bits_f32(sign | 0x7f800000u | (man << 13)); /* inf / nan */
    if (exp == 0) {
        if (man == 0) return sdc_bits_f32(sign);
        /* subnormal: man * 2^-24 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return sdc_bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

static inline uint16_t sdc_f32_to_f16(float f) {
    uint32_t x = sdc_f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0)); /* inf/nan */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: overflow */
    if (ax < 0x38800000u) {                                  /* below 2^-14: subnormal or zero */
        if (ax < 0x33000000u) return (uint16_t)sign;         /* < 2^-25 rounds to zero */
        uint32_t e = ax >> 23, m = (ax & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;                            /* value = m * 2^(e-150); want units of 2^-24 */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = ax - 0x38000000u; /* rebias exponent 127 -> 15 */
    uint32_t q = r >> 13, rem = r & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++;
    return (uint16_t)(sign | q);
}

static inline float sdc_bf16_to_f32(uint16_t h) { return sdc_bits_f32((uint32_t)h << 16); }

static inline uint16_t sdc_f32_to_bf16(float f) {
    uint32_t x = sdc_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

#endif
