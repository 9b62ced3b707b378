/* rng.c - Philox-4x32-10 (torch CUDA randn as A1111 reproduces it) and MT19937 (torch CPU randn).
 *
 * ref: Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (SC'11) for Philox-4x32-10
 *      (multipliers 0xD2511F53, 0xCD9E8D57; Weyl key increments 0x9E3779B9, 0xBB67AE85).
 * ref: AUTOMATIC1111 modules/rng_philox.py for how torch's CUDA randn is laid out: counter
 *      (offset, 0, index, 0), key = seed, Box-Muller from the first two words only, with the
 *      float32 constants 2.3283064e-10 and 2.3283064e-10 * 6.2831855 promoted to float64
 *      (numpy promotes uint32 * float32-array to float64) and the result rounded to float32.
 * ref: PyTorch aten/src/ATen/core/MT19937RNGEngine.h (seeding, twist), TransformationHelper.h
 *      (uniform_real: (v & (2^digits - 1)) * 2^-digits), DistributionsHelper.h
 *      (normal_distribution<double>: u1, u2 from 64-bit words = (first << 32) | second,
 *      r = sqrt(-2 log1p(-u2)), theta = 2 pi u1, returns r cos theta and caches r sin theta),
 *      native/cpu/DistributionTemplates.h (normal_kernel: float tensors with n >= 16 take
 *      normal_fill/normal_fill_16, otherwise the scalar normal_distribution<double> path).
 */
#include "rng.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ Philox */

void sdc_rng_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint64_t p0 = (uint64_t)c0 * 0xD2511F53u;
        uint64_t p1 = (uint64_t)c2 * 0xCD9E8D57u;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

static void philox_randn(sdc_rng *r, float *out, int64_t n) {
    /* float32 constants, used in float64 arithmetic (see the header of this file) */
    const double inv32 = (double)2.3283064e-10f;
    const double inv32_half = (double)(2.3283064e-10f / 2.0f);
    const double inv32_2pi = (double)(float)(2.3283064e-10 * 6.2831855);
    const double inv32_2pi_half = (double)((float)(2.3283064e-10 * 6.2831855) / 2.0f);
    const uint32_t key[2] = {(uint32_t)r->seed, (uint32_t)(r->seed >> 32)};
    for (int64_t i = 0; i < n; i++) {
        /* A1111 puts the index in word 2 (it stops at 2^32 elements); spill into word 3. */
        const uint32_t ctr[4] = {(uint32_t)r->offset, 0, (uint32_t)i, (uint32_t)((uint64_t)i >> 32)};
        uint32_t g[4];
        sdc_rng_philox4x32_10(ctr, key, g);
        double u = (double)g[0] * inv32 + inv32_half;
        double v = (double)g[1] * inv32_2pi + inv32_2pi_half;
        out[i] = (float)(sqrt(-2.0 * log(u)) * sin(v));
    }
    r->offset++;
}

/* ------------------------------------------------------------------ MT19937 (PyTorch's engine) */

static void mt_seed(sdc_rng *r, uint64_t seed) {
    r->mt[0] = (uint32_t)(seed & 0xffffffffu);
    for (int j = 1; j < SDC_MT19937_N; j++) {
        uint32_t prev = r->mt[j - 1];
        r->mt[j] = 1812433253u * (prev ^ (prev >> 30)) + (uint32_t)j;
    }
    r->mt_left = 1;
    r->mt_next = 0;
    r->has_next_normal = false;
    r->next_normal = 0;
}

static inline uint32_t mt_twist(uint32_t u, uint32_t v) {
    uint32_t mixed = (u & 0x80000000u) | (v & 0x7fffffffu);
    return (mixed >> 1) ^ ((v & 1u) ? 0x9908b0dfu : 0u);
}

static void mt_next_state(sdc_rng *r) {
    enum { N = SDC_MT19937_N, M = 397 };
    uint32_t *s = r->mt;
    int k = 0;
    for (; k < N - M; k++) s[k] = s[k + M] ^ mt_twist(s[k], s[k + 1]);
    for (; k < N - 1; k++) s[k] = s[k + M - N] ^ mt_twist(s[k], s[k + 1]);
    s[N - 1] = s[M - 1] ^ mt_twist(s[N - 1], s[0]);
    r->mt_left = N;
    r->mt_next = 0;
}

uint32_t sdc_rng_mt_u32(sdc_rng *r) {
    if (--r->mt_left == 0) mt_next_state(r);
    uint32_t y = r->mt[r->mt_next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* uniform_real<float>: 24 random bits times 2^-24, in [0, 1). */
static inline float mt_uniform_f32(sdc_rng *r) {
    return (float)(sdc_rng_mt_u32(r) & 0xffffffu) * (1.0f / 16777216.0f);
}

/* uniform_real<double> over random64() = (first << 32) | second: 53 bits times 2^-53. */
static inline double mt_uniform_f64(sdc_rng *r) {
    uint64_t hi = sdc_rng_mt_u32(r);
    uint64_t lo = sdc_rng_mt_u32(r);
    uint64_t v = (hi << 32) | lo;
    return (double)(v & ((UINT64_C(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

/* normal_fill_16 in float: uniforms data[0..7] give the radius, data[8..15] the angle.
 * theta is the float product 6.2831855f * u2 (PyTorch's AVX2 kernel and stable-diffusion.cpp;
 * the portable kernel rounds the double product instead, which can differ by one float ulp). */
static void mt_normal_fill_16(float *d) {
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float u2 = d[j + 8];
        float radius = sqrtf(-2.0f * logf(u1));
        float theta = 6.2831855f * u2;
        d[j] = radius * cosf(theta);
        d[j + 8] = radius * sinf(theta);
    }
}

static void mt_randn(sdc_rng *r, float *out, int64_t n) {
    if (n >= 16) {
        for (int64_t i = 0; i < n; i++) out[i] = mt_uniform_f32(r);
        for (int64_t i = 0; i + 16 <= n; i += 16) mt_normal_fill_16(out + i);
        if (n % 16 != 0) {
            /* PyTorch recomputes the last 16 values from 16 fresh uniforms. */
            float *tail = out + n - 16;
            for (int i = 0; i < 16; i++) tail[i] = mt_uniform_f32(r);
            mt_normal_fill_16(tail);
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        if (r->has_next_normal) {
            r->has_next_normal = false;
            out[i] = (float)r->next_normal;
            continue;
        }
        double u1 = mt_uniform_f64(r);
        double u2 = mt_uniform_f64(r);
        double rad = sqrt(-2.0 * log1p(-u2));
        double theta = 2.0 * 3.14159265358979323846 * u1;
        r->next_normal = rad * sin(theta);
        r->has_next_normal = true;
        out[i] = (float)(rad * cos(theta));
    }
}

/* ------------------------------------------------------------------ public */

void sdc_rng_init(sdc_rng *r, sdc_rng_kind kind, uint64_t seed) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->seed = seed;
    r->offset = 0;
    if (kind == SDC_RNG_CPU) mt_seed(r, seed);
}

void sdc_rng_randn(sdc_rng *r, float *out, int64_t n) {
    if (n <= 0) {
        if (r->kind == SDC_RNG_CUDA) r->offset++;
        return;
    }
    if (r->kind == SDC_RNG_CPU)
        mt_randn(r, out, n);
    else
        philox_randn(r, out, n);
}

static const char *const rng_names[SDC_RNG_KIND_COUNT] = {"cuda", "cpu"};

const char *sdc_rng_kind_name(sdc_rng_kind kind) {
    return (unsigned)kind < SDC_RNG_KIND_COUNT ? rng_names[kind] : "?";
}

int sdc_rng_kind_parse(const char *name) {
    if (!name) return -1;
    for (int k = 0; k < SDC_RNG_KIND_COUNT; k++)
        if (strcmp(name, rng_names[k]) == 0) return k;
    return -1;
}
