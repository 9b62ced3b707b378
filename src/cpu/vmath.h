/* vmath.h - AVX2/FMA vector math shared by the CPU kernels (internal; static inline only).
 *
 * Every function here is compiled with a function-level target attribute, so a portable
 * build (no -march) still contains it; callers must only run it when cpu->isa >= AVX2.
 *
 * Accuracy (measured by tests/test_elementwise.c against fp64 libm over dense sweeps):
 *   sdc_v_exp   e^x, Cody-Waite reduction + degree-7 Taylor on |r| <= ln2/2: <= 1 ulp
 *               (0.93 measured) on [-87, 88.7]; inf above 88.73, gradual underflow to 0 below -87.3 (values
 *               there are denormal: abs error < 2^-126).
 *   sdc_v_exp2  2^x for x <= 0 (attention softmax, scores already in log2 units):
 *               <= 1 ulp (0.84 measured) on [-126, 0]; exactly 0 for x < -126.5 and -inf.
 *   sdc_v_erfc  erfc(z) for z >= 0 as t*e^(-z^2)*e^(P(t)), t = 1/(1+z/2), P a degree-10
 *               Chebyshev fit (made with mpmath.chebyfit, fit error 9.4e-9) on z in [0, 10]:
 *               <= 8.3 ulp measured where erfc(z) >= 1e-30; 0 for z > 10. This gives an
 *               exact-erf GELU within 5.2e-7 relative of fp64 on both sides (tests).
 */
#ifndef SDC_CPU_VMATH_H
#define SDC_CPU_VMATH_H

#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#define SDC_HAVE_X86 1
#include <immintrin.h>
#define SDC_AVX2 __attribute__((target("avx2,fma,f16c")))
#define SDC_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

/* Taylor coefficients of e^r: 1/k!. */
#define SDC_E_C7 1.98412698412698412698e-4f
#define SDC_E_C6 1.38888888888888888889e-3f
#define SDC_E_C5 8.33333333333333333333e-3f
#define SDC_E_C4 4.16666666666666666667e-2f
#define SDC_E_C3 1.66666666666666666667e-1f
#define SDC_E_C2 0.5f

/* Taylor coefficients of 2^f = e^(f ln2): ln2^k/k! (shared by the 8- and 16-lane exp2). */
#define SDC_EXP2_C7 1.52527338040598e-5f
#define SDC_EXP2_C6 1.54035303933816e-4f
#define SDC_EXP2_C5 1.33335581464284e-3f
#define SDC_EXP2_C4 9.61812910762848e-3f
#define SDC_EXP2_C3 5.55041086648216e-2f
#define SDC_EXP2_C2 2.40226506959101e-1f
#define SDC_EXP2_C1 6.93147180559945e-1f

/* e^r for |r| <= 0.35 (degree-7 Taylor, truncation error < 6e-9 relative). */
SDC_AVX2_INLINE __m256 sdc_v_expm_poly(__m256 r) {
    __m256 p = _mm256_set1_ps(SDC_E_C7);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SDC_E_C6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SDC_E_C5));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SDC_E_C4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SDC_E_C3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SDC_E_C2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    return _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
}

SDC_AVX2_INLINE __m256 sdc_v_exp(__m256 x) {
    /* min/max return the second operand when one is NaN: keep x second so NaN survives. */
    x = _mm256_min_ps(_mm256_set1_ps(89.0f), x);
    x = _mm256_max_ps(_mm256_set1_ps(-104.0f), x);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    /* r = x - n*ln2 in two steps; ln2_hi has 12 significant bits, so n*ln2_hi is exact. */
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860682030941723212e-6f), r);
    __m256 p = sdc_v_expm_poly(r);
    /* 2^n as two factors so n in [-150, 128] stays in the normal exponent range. */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1);
    __m256i n2 = _mm256_sub_epi32(ni, n1);
    __m256 e1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
    __m256 e2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, e1), e2);
}

/* Taylor coefficients of 2^f = e^(f ln2): ln2^k / k!. */
SDC_AVX2_INLINE __m256 sdc_v_exp2(__m256 x) {
    /* Clamp at -127 (-inf and NaN-free inputs land there): n = -127 makes the exponent
     * field 0, i.e. the factor 2^n is +0.0 and the result exactly 0. */
    x = _mm256_max_ps(_mm256_set1_ps(-127.0f), x);
    __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_sub_ps(x, n); /* exact, |f| <= 0.5 */
    __m256 p = _mm256_set1_ps(SDC_EXP2_C7);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(SDC_EXP2_C6));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(SDC_EXP2_C5));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(SDC_EXP2_C4));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(SDC_EXP2_C3));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(SDC_EXP2_C2));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(SDC_EXP2_C1));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* sdc_v_exp2 on 16 lanes: the same operations in the same order, so each lane's result
 * equals the 8-lane version's bit for bit (the attention softmax mixes the two widths). */
static inline __attribute__((always_inline, target("avx512f,avx2,fma,f16c"))) __m512 sdc_v_exp2_512(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-127.0f), x);
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(SDC_EXP2_C7);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(SDC_EXP2_C6));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(SDC_EXP2_C5));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(SDC_EXP2_C4));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(SDC_EXP2_C3));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(SDC_EXP2_C2));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(SDC_EXP2_C1));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

/* erfc(z + dz) for z >= 0 (callers pass |z|), dz a tiny correction (|dz| <= ulp(z)) that
 * carries the rounding error of z itself: erfc(z + dz) ~= erfc(z) - dz * 2/sqrt(pi) e^-z^2.
 * Pass zero when z is exact. */
SDC_AVX2_INLINE __m256 sdc_v_erfc_pos(__m256 z, __m256 dz) {
    z = _mm256_min_ps(_mm256_set1_ps(10.0f), z);
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), one));
    __m256 p = _mm256_set1_ps(-1.530061439e-01f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.037531148e+00f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-2.957652606e+00f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(4.492053045e+00f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-3.794910614e+00f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.821787433e+00f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-7.776201033e-01f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(2.440871244e-01f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(3.513184382e-01f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.001997647e+00f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.265585367e+00f));
    /* e^(-z^2) with z^2 split into its rounded value and the exact remainder. */
    __m256 z2 = _mm256_mul_ps(z, z);
    __m256 z2lo = _mm256_fmsub_ps(z, z, z2);
    __m256 ez = sdc_v_exp(_mm256_sub_ps(_mm256_setzero_ps(), z2));
    ez = _mm256_fnmadd_ps(ez, z2lo, ez); /* * (1 - z2lo) = e^(-z2lo) to first order */
    __m256 r = _mm256_mul_ps(_mm256_mul_ps(t, ez), sdc_v_exp(p));
    return _mm256_fnmadd_ps(_mm256_mul_ps(dz, _mm256_set1_ps(1.12837916709551257f)), ez, r);
}

/* Horizontal sum / max of 8 lanes in a fixed order. */
SDC_AVX2_INLINE float sdc_v_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
SDC_AVX2_INLINE float sdc_v_hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
SDC_AVX2_INLINE double sdc_v_hsum_pd(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

#else
#define SDC_HAVE_X86 0
#endif

#endif
