/* elementwise.h - the small CPU ops of SD 1.5: activations, GEGLU, softmax, nearest
 * upsampling, channel concat, add/mul/scale, channel bias, timestep embedding, token
 * embedding lookup.
 *
 * All take f32 activations, return SDC_E_INVALID on bad arguments, and are deterministic
 * for any thread count (each output element is computed by one fixed expression). Unless
 * noted, y may alias an input exactly (same pointer) but not partially.
 *
 * Accuracy (AVX2 path; the scalar twins use libm): silu/quick_gelu/softmax use a
 * <= 2 ulp vector exp (see vmath.h); gelu is the exact-erf GELU (torch's default,
 * approximate='none') computed through erfc so both tails keep relative accuracy: within
 * ~1e-6 relative of fp64 everywhere (tests/test_elementwise.c prints the measured max). */
#ifndef SDC_CPU_ELEMENTWISE_H
#define SDC_CPU_ELEMENTWISE_H

#include <stdbool.h>
#include <stdint.h>
#include "sdc.h"
#include "tensor.h"
#include "cpu.h"

/* y = x * sigmoid(x) */
sdc_status sdc_cpu_silu(sdc_cpu *cpu, int64_t n, const float *x, float *y);
/* y = 0.5 x (1 + erf(x / sqrt 2)) */
sdc_status sdc_cpu_gelu(sdc_cpu *cpu, int64_t n, const float *x, float *y);
/* y = x * sigmoid(1.702 x) (CLIP's activation) */
sdc_status sdc_cpu_quick_gelu(sdc_cpu *cpu, int64_t n, const float *x, float *y);
/* x [M, 2F] -> y [M, F]: y = x[:, :F] * gelu(x[:, F:]) (diffusers GEGLU: the second half
 * is the gate). y must not overlap x. */
sdc_status sdc_cpu_geglu(sdc_cpu *cpu, int64_t M, int64_t F, const float *x, float *y);
/* Row softmax: x, y [M, N]. */
sdc_status sdc_cpu_softmax(sdc_cpu *cpu, int64_t M, int64_t N, const float *x, float *y);

/* x [B, C, H, W] -> y [B, C, 2H, 2W], nearest neighbour. y must not overlap x. */
sdc_status sdc_cpu_upsample_nearest2x(sdc_cpu *cpu, int64_t B, int64_t C, int64_t H, int64_t W,
                                      const float *x, float *y);
/* a [B, C1, HW], b [B, C2, HW] -> y [B, C1 + C2, HW]. y must not overlap a or b. */
sdc_status sdc_cpu_concat(sdc_cpu *cpu, int64_t B, int64_t C1, int64_t C2, int64_t HW,
                          const float *a, const float *b, float *y);
/* y = a + b, y = a * b (n values), y = s * x. y may be a, b or x itself (in place). */
sdc_status sdc_cpu_add(sdc_cpu *cpu, int64_t n, const float *a, const float *b, float *y);
sdc_status sdc_cpu_mul(sdc_cpu *cpu, int64_t n, const float *a, const float *b, float *y);
sdc_status sdc_cpu_scale(sdc_cpu *cpu, int64_t n, const float *x, float s, float *y);
/* x, y [B, C, HW]; bias [B, C]: y[b, c, :] = x[b, c, :] + bias[b, c] (the time embedding
 * added to a ResBlock's hidden state). */
sdc_status sdc_cpu_add_channel_bias(sdc_cpu *cpu, int64_t B, int64_t C, int64_t HW, const float *x,
                                    const float *bias, float *y);

/* t [n] (float timesteps) -> y [n, dim]: LDM / diffusers (flip_sin_to_cos=True,
 * downscale_freq_shift=0) sinusoidal embedding, cos half first:
 *   freq_i = exp(-ln(max_period) * i / half), half = dim / 2
 *   y[:, i] = cos(t * freq_i), y[:, half + i] = sin(t * freq_i); a zero last column when
 *   dim is odd. freq_i and t*freq_i are rounded to float in torch's order, so results match
 *   a float32 torch reference to ~1 ulp of the sin/cos. SD 1.5: dim 320, max_period 10000.
 * ref: diffusers/models/embeddings.py get_timestep_embedding; ldm/modules/diffusionmodules/util.py */
sdc_status sdc_cpu_timestep_embedding(sdc_cpu *cpu, int64_t n, int64_t dim, float max_period, const float *t,
                                      float *y);

/* Token embedding lookup: table [n_vocab, dim] stored as `type` (F32, F16, BF16 or any
 * block-quantized float type; dim a multiple of the block size), ids [n] -> y [n, dim] f32.
 * An id outside [0, n_vocab) is SDC_E_INVALID (nothing is written). */
sdc_status sdc_cpu_embed(sdc_cpu *cpu, sdc_type type, const void *table, int64_t n_vocab, int64_t dim,
                         int64_t n, const int32_t *ids, float *y);

#endif
