/* attention.h - scaled dot-product attention on the CPU, flash style.
 *
 *   out[b, i, h*d:(h+1)*d] = sum_j softmax_j(scale * q[b,i,h] . k[b,j,h] [+ causal]) * v[b,j,h]
 *
 * q is [B, Nq, H*d], k and v [B, Nk, H*d], out [B, Nq, H*d], each with its own row stride
 * (in floats, >= H*d), so q, k and v may be column slices of one fused projection output
 * ([B, N, 3*H*d] with stride 3*H*d). Batch b starts at b*N*row_stride. Head h occupies
 * columns [h*d, (h+1)*d). `out` must not overlap k or v (it may be exactly q: each task
 * reads its q rows before writing the same rows).
 *
 * Memory is bounded: keys are visited in blocks (see SDC_ATTN_BLOCK_K) with an online softmax
 * (running max and sum per query row), so no Nq x Nk score matrix exists; per-thread
 * scratch is O(rows_per_task * d + SDC_ATTN_BLOCK_K_MAX * d).
 *
 * causal: key j is visible to query i iff j <= i (top-left aligned, torch's is_causal;
 * CLIP's text encoder uses Nq == Nk == 77). A query row that sees no key outputs zeros.
 *
 * Deterministic for any thread count: each task owns fixed output rows of one head and the
 * key blocks are always visited in the same order. The AVX2 path and the scalar twin differ
 * in rounding only (both are tested against an fp64 reference).
 */
#ifndef SDC_CPU_ATTENTION_H
#define SDC_CPU_ATTENTION_H

#include <stdbool.h>
#include <stdint.h>
#include "sdc.h"
#include "cpu.h"

/* Keys per online-softmax block: all of them when Nk <= SDC_ATTN_BLOCK_K_MAX (cross-attention
 * over 77 tokens, CLIP), else SDC_ATTN_BLOCK_K. Depends on Nk only, never on threads. */
#define SDC_ATTN_BLOCK_K 64
#define SDC_ATTN_BLOCK_K_MAX 96

sdc_status sdc_cpu_attention(sdc_cpu *cpu, int64_t B, int64_t H, int64_t Nq, int64_t Nk, int64_t d,
                             const float *q, int64_t ldq, const float *k, int64_t ldk,
                             const float *v, int64_t ldv, float *out, int64_t ldo,
                             float scale, bool causal);

/* The bf16 path on AMX tiles (amx.c): what sdc_cpu_attention runs for non-causal attention
 * when sdc_cpu_bf16_active(cpu) (gemm.h). Q (scaled), K, V and the probabilities are rounded
 * to bf16, the products summed in fp32, the softmax in fp32. Arguments as checked by
 * sdc_cpu_attention; SDC_E_UNSUPPORTED (use the fp32 path) for d > 1024 or without AMX code.
 * Workspace: B*H*Nk*(d rounded up to 32 + d rounded up to 16)*2 bytes for the packed K and V. */
sdc_status sdc_cpu_attention_bf16(sdc_cpu *cpu, int64_t B, int64_t H, int64_t Nq, int64_t Nk, int64_t d,
                                  const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v,
                                  int64_t ldv, float *out, int64_t ldo, float scale);

#endif
