/* norm.h - group norm (+ fused SiLU) and layer norm on the CPU.
 *
 * Statistics are two-pass (mean, then the mean of squared deviations) accumulated in
 * double, so they match an fp64 reference to float rounding even for large means or long
 * groups (a UNet group is 10 channels x 4096 pixels; a VAE group up to 16 x 262144).
 * Deterministic for any thread count: one task per group / per block of rows, fixed
 * summation order. y may alias x exactly (not partially). gamma/beta may be NULL
 * (identity: gamma = 1, beta = 0). */
#ifndef SDC_CPU_NORM_H
#define SDC_CPU_NORM_H

#include <stdbool.h>
#include <stdint.h>
#include "sdc.h"
#include "cpu.h"

/* x, y [B, C, HW] (NCHW with H*W flattened); G groups of C/G consecutive channels (C % G
 * == 0); gamma, beta [C]. y = (x - mean_g) / sqrt(var_g + eps) * gamma + beta, then
 * y * sigmoid(y) when silu (the GroupNorm -> SiLU pair of every ResBlock). Biased variance,
 * as torch.nn.GroupNorm. */
sdc_status sdc_cpu_group_norm(sdc_cpu *cpu, int64_t B, int64_t C, int64_t HW, int64_t G, float eps,
                              const float *x, const float *gamma, const float *beta, bool silu, float *y);

/* x, y [M, C]: each row normalised over C; gamma, beta [C] (torch.nn.LayerNorm). */
sdc_status sdc_cpu_layer_norm(sdc_cpu *cpu, int64_t M, int64_t C, float eps, const float *x,
                              const float *gamma, const float *beta, float *y);

#endif
