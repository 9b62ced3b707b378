/* gemm.h - the CPU backend's two heavy ops, linear and conv2d, on weights in their stored
 * type (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 natively; every other float type,
 * K-quants and F64 included, through the scalar reference dequantizer).
 *
 * Usage:
 *
 *     sdc_cpu *cpu = sdc_cpu_new(0, SDC_ISA_AVX512);
 *     // y[77,320] = x[77,768] . W[320,768]^T + b[320], W stored as Q8_0
 *     sdc_status s = sdc_cpu_linear(cpu, 77, 320, 768, x, 768, SDC_TYPE_Q8_0, w, b, y, 320);
 *     // y[2,320,64,64] = conv3x3(x[2,320,64,64], w[320,320,3,3] f16, pad 1)
 *     s = sdc_cpu_conv2d(cpu, 2, 320, 64, 64, x, 320, 3, 3, 1, 1, SDC_TYPE_F16, w, b, y);
 *
 * How (see gemm.c for the details): a blocked GEMM in the GotoBLAS/BLIS style with a 6x16
 * register tile (AVX2+FMA, chosen at run time from cpu->isa; a scalar twin otherwise).
 * linear: C = x . W^T; each 16-row sliver of W is dequantized to f32 once per call, a K
 * block (<= 256 values) at a time, into a shared panel (or, for <= 288 rows, by the task
 * that uses it); x is packed per task (once per call, shared, when one row block is split
 * into several column chunks). conv2d: implicit GEMM Y[O, Ho*Wo] = W . im2col(x), the
 * im2col slivers built from x on the fly, the weights packed per task (or once, shared, as
 * for x). Tasks over (row block, column chunk) run on the pool. Scratch is bounded (<= ~8.5
 * MiB on thread 0, which holds the shared panel or the shared packed A, <= ~400 KiB on the
 * others, independent of the layer size) and comes from sdc_cpu_scratch.
 *
 * Numerics and determinism: all arithmetic is fp32; weights are dequantized exactly as the
 * scalar reference (sdc_dequantize_row) does. Every output element is the chain
 *     acc = bias (or 0);  for k = 0..K-1 in order: acc = fma(a[k], b[k], acc)
 * whatever the blocking, the thread count or the ISA, so results are bit-identical for any
 * number of threads and between the AVX2 kernels and their scalar twins.
 *
 * Errors: SDC_E_INVALID for a NULL pointer, a non-positive size, a leading dimension below
 * the row length, K (or C*kh*kw) not a multiple of the type's block size, or an output
 * that would be empty; SDC_E_UNSUPPORTED for a non-float weight type; SDC_E_NOMEM when
 * scratch cannot be allocated. Nothing is written on error. */
#ifndef SDC_CPU_GEMM_H
#define SDC_CPU_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sdc.h"
#include "tensor.h"
#include "cpu.h"

/* y[M,N] = x[M,K] . W[N,K]^T (+ bias[N]).
 * x, y: f32 row-major with leading dimensions ldx >= K and ldy >= N (y must not overlap x).
 * w: N rows of K values of type wt, rows packed back to back (row bytes = K/block *
 * block_bytes), any alignment. bias: f32 [N] or NULL. */
sdc_status sdc_cpu_linear(sdc_cpu *cpu, int64_t M, int64_t N, int64_t K, const float *x, int64_t ldx,
                          sdc_type wt, const void *w, const float *bias, float *y, int64_t ldy);

/* The int8 linear (qgemm.c): taken by sdc_cpu_linear instead of the fp32 GEMM when
 * sdc_cpu_linear_int8_eligible(cpu, wt): wt is Q8_0, Q4_0 or Q4_1 and cpu->int8 is 2, or 1 on
 * a CPU with AVX-512 VNNI. x is quantized to int8 per row and 32-value block (d = amax/127,
 * round to nearest) and each block's dot product with the weight codes is exact in int32, so
 * the only error against the fp32 path is the activations' rounding: per output at most
 * sum over blocks b of (d_b / 2) * sum_k |w_k| (plus fp32 accumulation). Outputs are
 * bit-identical between the VNNI kernel and its scalar twin and for any thread count.
 * Scratch: the shared workspace, N*K*1.25 + M*(K + K/4) bytes. Arguments as checked by
 * sdc_cpu_linear (row_bytes from sdc_gemm_check_weight). */
bool sdc_cpu_linear_int8_eligible(const sdc_cpu *cpu, sdc_type wt);
sdc_status sdc_cpu_linear_int8(sdc_cpu *cpu, int64_t M, int64_t N, int64_t K, const float *x, int64_t ldx,
                               sdc_type wt, const void *w, size_t row_bytes, const float *bias, float *y,
                               int64_t ldy);

/* The bf16 path (amx.c): sdc_cpu_linear and sdc_cpu_conv2d run on AMX tiles instead when
 * sdc_cpu_bf16_active(cpu) (cpu->bf16 set, the AVX-512 ISA, AMX usable), for any weight
 * type (and before the int8 linear, when that is on too). Operands are
 * rounded to bf16 and the products summed in fp32: per output at most
 * sum_k |a_k b_k| (2^-8 + 2^-18 + K 2^-24) off the exact result. Deterministic for any
 * thread count. Scratch: per thread (MB + NB) x 512 x 2 bytes (<= 512 KiB). Arguments as
 * checked by the callers; returns SDC_E_UNSUPPORTED where the build has no AMX code. */
bool sdc_cpu_bf16_active(const sdc_cpu *cpu);
sdc_status sdc_cpu_linear_bf16(sdc_cpu *cpu, int64_t M, int64_t N, int64_t K, const float *x, int64_t ldx,
                               sdc_type wt, const void *w, size_t row_bytes, const float *bias, float *y,
                               int64_t ldy);
sdc_status sdc_cpu_conv2d_bf16(sdc_cpu *cpu, int64_t B, int64_t C, int64_t H, int64_t W, const float *x,
                               int64_t O, int kh, int kw, int stride, int pad, sdc_type wt, const void *w,
                               size_t row_bytes, const float *bias, float *y);

/* NCHW convolution (cross-correlation, as PyTorch's Conv2d).
 * x: f32 [B,C,H,W]; w: [O,C,kh,kw] of type wt (each output channel a row of C*kh*kw values);
 * bias: f32 [O] or NULL; y: f32 [B,O,Ho,Wo] with Ho = (H + 2*pad - kh)/stride + 1 and
 * Wo likewise. Any kh, kw >= 1, stride >= 1, pad >= 0 (SD uses 1x1 and 3x3, stride 1 and 2). */
sdc_status sdc_cpu_conv2d(sdc_cpu *cpu, int64_t B, int64_t C, int64_t H, int64_t W, const float *x,
                          int64_t O, int kh, int kw, int stride, int pad, sdc_type wt, const void *w,
                          const float *bias, float *y);

/* Winograd F(m x m, 3x3), m = 2 or 4 (winograd.c): what sdc_cpu_conv2d runs instead of the
 * implicit GEMM for 3x3 stride-1 pad-1 layers with 16..2560 input channels, at least 16
 * output channels and enough tiles over the batch. sdc_winograd_choose returns the m to use
 * (0: the direct convolution) for mode = cpu->winograd: 0 off, 1 automatic (F(4x4) with at
 * least 128 4x4 tiles over the batch, else F(2x2) with at least 128 2x2 tiles), 2 or 4 that
 * variant only (where it has 128 tiles). sdc_cpu_conv3x3_winograd takes sdc_cpu_conv2d's arguments
 * (checked there), the chosen m and the weight row size. */
int sdc_winograd_choose(int mode, int64_t B, int64_t C, int64_t H, int64_t W, int64_t O, int kh, int kw,
                        int stride, int pad);
sdc_status sdc_cpu_conv3x3_winograd(sdc_cpu *cpu, int m, int64_t B, int64_t C, int64_t H, int64_t W,
                                    const float *x, int64_t O, sdc_type wt, const void *w, size_t row_bytes,
                                    const float *bias, float *y);

/* ---- internal: the generic blocked GEMM both ops are built on ------------------------------
 * C[M,N] = A[M,K] . B[K,N] + bias, where A and B are never materialised: the caller
 * supplies packing callbacks.
 *   pack_a: rows [i0, i0+mr) (1 <= mr <= 6) and k in [k0, k0+kc) into dst[k*8 + i] (the 6
 *           rows padded to 8 floats per k; lanes mr..7 may hold anything). NULL means A is
 *           a plain f32 row-major matrix at a (leading dimension lda), read in place.
 *   pack_b: columns [j0, j0+n) (1 <= n <= 16*SDC_GEMM_STRIP) and k in [k0, k0+kc) as
 *           ceil(n/16) slivers: column j0 + 16*s + j at dst[s*kc*16 + k*16 + j]; lanes past
 *           n zero or anything finite. (Several slivers per call let an im2col packer read
 *           input rows contiguously.)
 * k0 and kc are multiples of kgran (k0 + kc may also equal K), so callbacks can decode whole
 * quantization blocks. bias_m is per row of C, bias_n per column; either may be NULL. */
#define SDC_GEMM_MR 6
#define SDC_GEMM_NR 16
#define SDC_GEMM_STRIP 4  /* slivers per pack_b call in b_per_task mode */

typedef void (*sdc_gemm_pack_fn)(const void *ctx, int64_t first, int n, int64_t k0, int64_t kc, float *dst,
                                 sdc_isa isa);

typedef struct sdc_gemm_desc {
    int64_t M, N, K;
    int64_t kgran;            /* K-block granularity (the weight type's block size, >= 1) */
    const float *a;           /* when pack_a is NULL */
    int64_t lda;
    sdc_gemm_pack_fn pack_a;
    sdc_gemm_pack_fn pack_b;
    const void *ctx;          /* passed to both callbacks */
    const float *bias_m, *bias_n;
    int b_per_task;           /* 0: B panel packed once per call into shared scratch (B = weights);
                                 1: each task packs the B slivers it uses into private scratch,
                                 right before use (B cheap to build, e.g. im2col): no shared
                                 panel round trip through L3, one pool loop per call */
    float *c;
    int64_t ldc;
    /* 0: C is one [M, ldc] matrix. Else the columns come in groups of col_group (a multiple
     * of 16 dividing N; ldc >= col_group): column j of row i is at
     * c + (j / col_group) * group_stride + i * ldc + j % col_group, so one GEMM can cover a
     * batch of NCHW images (conv2d: the images' output positions side by side). */
    int64_t col_group, group_stride;
} sdc_gemm_desc;

sdc_status sdc_cpu_gemm(sdc_cpu *cpu, const sdc_gemm_desc *d);

/* C[m, n] = A . B for operands the caller packed, on the calling thread (a task's share of
 * a larger product, e.g. one Winograd component): A as ceil(m/6) slivers of K x 8 floats
 * (sliver s at a + s*K*8, a[k*8 + i] row i; lanes past m anything finite), B as n/16 slivers
 * of K x 16 (sliver s at b + s*K*16; n a multiple of 16), C row-major with ldc >= n; rows
 * past m are not written. Each element is the fma chain from 0 over k = 0..K-1 in order, as
 * in sdc_cpu_gemm, so it equals that GEMM's result bit for bit. */
void sdc_gemm_packed(sdc_isa isa, int64_t m, int64_t n, int64_t K, const float *a, const float *b, float *c,
                     int64_t ldc);

/* Dequantizes values [k0, k0+n) of a weight row of type t (row at `row`, k0 a multiple of
 * the block size, n a multiple of it or reaching the row's end) into dst, with the SIMD
 * decoders when isa >= AVX2 (bit-identical to sdc_dequantize_row, which the scalar path
 * calls). Returns false for a type it cannot decode. */
bool sdc_gemm_dequant_seg(sdc_type t, const void *row, int64_t k0, int64_t n, float *dst, sdc_isa isa);

/* Packs rows [r0, r0+nr) (nr <= 6) of a weight matrix (rows of row_bytes bytes, type t),
 * values [k0, k0+kc), dequantized, as a packed A sliver: dst[k*8 + i], lanes nr..7 zero.
 * kc <= 384 (any kc for F32, F16, BF16, and Q8_0, Q4_x, Q5_x with k0, kc multiples of 32).
 * For pack_a callbacks whose A is a weight matrix (conv2d, the Winograd weight transform). */
void sdc_gemm_pack_weight_a(sdc_type t, const void *w, size_t row_bytes, int64_t r0, int nr, int64_t k0,
                            int64_t kc, float *dst, sdc_isa isa);

/* Checks a weight type for rows of K values: SDC_E_UNSUPPORTED for a non-float type,
 * SDC_E_INVALID for an invalid type or K not a multiple of its block; sets *row_bytes. */
sdc_status sdc_gemm_check_weight(sdc_type t, int64_t K, size_t *row_bytes);

#endif
