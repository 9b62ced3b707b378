/* rng.h - seed-exact Gaussian noise: the initial latent and every ancestral/SDE noise draw.
 *
 *     sdc_rng r;
 *     sdc_rng_init(&r, SDC_RNG_CUDA, 42);
 *     sdc_rng_randn(&r, latent, 1 * 4 * 64 * 64);  // draw 0: the initial noise (NCHW order)
 *     sdc_rng_randn(&r, noise, n);                 // draw 1: the first ancestral noise ...
 *
 * Two generators, both value types (no globals; copy the struct to fork a stream):
 *
 *   SDC_RNG_CUDA  torch.randn(..., device="cuda") as AUTOMATIC1111 (modules/rng_philox.py,
 *                 its "NV" noise source) and stable-diffusion.cpp (rng_philox.hpp) reproduce it:
 *                 Philox-4x32-10 with key = the 64-bit seed (low word first) and counter =
 *                 (offset, 0, element index, 0); element i is sqrt(-2 ln u) * sin(v) from the
 *                 first two output words (single-output Box-Muller). Each sdc_rng_randn call is
 *                 one draw and bumps offset by 1.
 *   SDC_RNG_CPU   torch.randn(...) on the CPU after torch.manual_seed(seed) (ComfyUI's noise):
 *                 MT19937 seeded with the low 32 bits of the seed; a call with n >= 16 fills n
 *                 float uniforms and transforms them 16 at a time (PyTorch normal_fill, the last
 *                 partial block recomputed from 16 fresh uniforms); n < 16 takes PyTorch's scalar
 *                 path (double uniforms from 53-bit words, Box-Muller pairs with a cached second
 *                 value). Each call continues the same MT19937 stream.
 */
#ifndef SDC_RNG_H
#define SDC_RNG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum sdc_rng_kind {
    SDC_RNG_CUDA = 0, /* Philox-4x32-10, torch CUDA / A1111 / stable-diffusion.cpp default */
    SDC_RNG_CPU = 1,  /* MT19937, torch CPU */
    SDC_RNG_KIND_COUNT
} sdc_rng_kind;

#define SDC_MT19937_N 624

typedef struct sdc_rng {
    sdc_rng_kind kind;
    uint64_t seed;
    uint64_t offset;                /* CUDA: draw calls so far (Philox counter word 0) */
    /* CPU (MT19937) state */
    uint32_t mt[SDC_MT19937_N];
    int mt_left;                    /* outputs left before the next twist (PyTorch's left_) */
    int mt_next;                    /* index of the next output word */
    bool has_next_normal;           /* PyTorch's cached second Box-Muller value (scalar path) */
    double next_normal;
} sdc_rng;

void sdc_rng_init(sdc_rng *r, sdc_rng_kind kind, uint64_t seed);
/* One draw of n standard normal values (float32, in order). */
void sdc_rng_randn(sdc_rng *r, float *out, int64_t n);

/* "cuda" / "cpu"; parse returns -1 for an unknown name. */
const char *sdc_rng_kind_name(sdc_rng_kind kind);
int sdc_rng_kind_parse(const char *name);

/* Building blocks, exposed for tests. */
/* Philox-4x32-10 of (counter, key): writes the 4 output words. */
void sdc_rng_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
/* The next raw 32-bit MT19937 output of a SDC_RNG_CPU generator. */
uint32_t sdc_rng_mt_u32(sdc_rng *r);

#endif
