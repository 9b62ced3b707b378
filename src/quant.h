/* quant.h - block formats (GGML's Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the K-quants Q2_K..Q6_K):
 * block layouts pinned with static_assert, and the scalar reference quantizers and
 * dequantizers that define them. Every fast kernel is tested against these. */
#ifndef SDC_QUANT_H
#define SDC_QUANT_H

#include <stdbool.h>
#include <stdint.h>
#include "tensor.h"

/* Block layouts, byte for byte as GGML writes them (ggml-common.h). Scales are IEEE half
 * floats stored as raw uint16_t (convert with half.h). */
#define SDC_QK 32      /* values per block of the legacy formats */
#define SDC_QK_K 256   /* values per super-block of the K-quants */

typedef struct { uint16_t d; uint8_t qs[SDC_QK / 2]; } sdc_block_q4_0;              /* x = (q - 8) * d */
typedef struct { uint16_t d, m; uint8_t qs[SDC_QK / 2]; } sdc_block_q4_1;           /* x = q * d + m */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[SDC_QK / 2]; } sdc_block_q5_0;    /* x = (q - 16) * d */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[SDC_QK / 2]; } sdc_block_q5_1; /* x = q * d + m */
typedef struct { uint16_t d; int8_t qs[SDC_QK]; } sdc_block_q8_0;                   /* x = q * d */
/* Low nibbles of qs[j] hold values j = 0..15, high nibbles values j + 16 (Q4_*, Q5_*);
 * Q5: bit j of the little-endian u32 qh is the 5th bit of value j. */

typedef struct { uint8_t scales[SDC_QK_K / 16]; uint8_t qs[SDC_QK_K / 4]; uint16_t d, dmin; } sdc_block_q2_k;
typedef struct { uint8_t hmask[SDC_QK_K / 8]; uint8_t qs[SDC_QK_K / 4]; uint8_t scales[12]; uint16_t d; } sdc_block_q3_k;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[SDC_QK_K / 2]; } sdc_block_q4_k;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[SDC_QK_K / 8]; uint8_t qs[SDC_QK_K / 2]; } sdc_block_q5_k;
typedef struct { uint8_t ql[SDC_QK_K / 2]; uint8_t qh[SDC_QK_K / 4]; int8_t scales[SDC_QK_K / 16]; uint16_t d; } sdc_block_q6_k;

_Static_assert(sizeof(sdc_block_q4_0) == 18, "q4_0 block");
_Static_assert(sizeof(sdc_block_q4_1) == 20, "q4_1 block");
_Static_assert(sizeof(sdc_block_q5_0) == 22, "q5_0 block");
_Static_assert(sizeof(sdc_block_q5_1) == 24, "q5_1 block");
_Static_assert(sizeof(sdc_block_q8_0) == 34, "q8_0 block");
_Static_assert(sizeof(sdc_block_q2_k) == 84, "q2_K block");
_Static_assert(sizeof(sdc_block_q3_k) == 110, "q3_K block");
_Static_assert(sizeof(sdc_block_q4_k) == 144, "q4_K block");
_Static_assert(sizeof(sdc_block_q5_k) == 176, "q5_K block");
_Static_assert(sizeof(sdc_block_q6_k) == 210, "q6_K block");

/* Converts n values of type t at src to float32. Works for every floating type (F32, F16,
 * BF16, F64, all block types); n must be a multiple of the type's block size. Returns false
 * (and writes nothing) for integer types or a bad n. */
bool sdc_dequantize_row(sdc_type t, const void *src, float *dst, int64_t n);

/* True when sdc_quantize_row can produce type t (F32, F16, BF16, Q4_0..Q8_0; not K-quants). */
bool sdc_can_quantize(sdc_type t);

/* Converts n float32 values to type t (round to nearest, as ggml's reference quantizers).
 * n must be a multiple of the block size. Returns false for a type it cannot produce. */
bool sdc_quantize_row(sdc_type t, const float *src, void *dst, int64_t n);

/* Converts nrows rows of n_per_row float32 values (contiguous) to type t; n_per_row must be
 * a multiple of the block size, and row r lands at dst + r * (bytes of one row).
 * weighted = false: exactly sdc_quantize_row over all values (ggml's reference quantizers).
 * weighted = true: for Q4_0, Q4_1, Q5_0 and Q5_1, ggml's importance-weighted search with unit
 * importance, bit for bit (what stable-diffusion.cpp's converter writes): per block, the scale
 * (and min) among a set of candidates that minimizes sum w_j (x_j - dequant_j)^2 with
 * w_j = sqrt(sigma2 + x_j^2), sigma2 = mean of x^2 over the row. Lower weighted error than the
 * reference quantizer on typical rows (not per block: f16 rounding; and Q4_1/Q5_1 keep the
 * min <= 0, so a block of positive values is spanned from 0); it may clip the block's extreme
 * value. Other types: as weighted = false.
 * Returns false for a type it cannot produce or bad sizes (nothing written). */
bool sdc_quantize_rows(sdc_type t, const float *src, void *dst, int64_t nrows, int64_t n_per_row, bool weighted);

#endif
