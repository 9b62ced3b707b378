/* backend.h - the one interface every network is written against.
 *
 * A backend is a struct of function pointers chosen at run time (CPU now, CUDA later). It
 * owns the memory activations live in (a bump arena with mark/release, so a sampling step
 * allocates nothing once warmed up) and implements ~20 ops. Networks never call a backend
 * directly: they call the checked entry points of ops.h, which validate shapes and types
 * once, then dispatch here. A backend may assume its arguments were validated.
 *
 * Weights are sdc_tensor views in their stored type (F16, Q8_0, Q4_0, ...); small
 * per-channel parameters (biases, norm weights) are typed tensors too, because the
 * published files quantize them. Activations are sdc_act: float32, in backend memory,
 * NCHW for convolution paths and [batch, tokens, channels] for linear/attention. */
#ifndef SDC_BACKEND_H
#define SDC_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sdc.h"
#include "tensor.h"

#define SDC_ACT_MAX_DIMS 4

typedef struct sdc_act {
    float *data;                       /* backend memory; NULL after a failed op */
    int ndim;
    int64_t shape[SDC_ACT_MAX_DIMS];   /* outermost first */
} sdc_act;

typedef enum sdc_unary_op { SDC_UNARY_SILU, SDC_UNARY_GELU, SDC_UNARY_QUICK_GELU } sdc_unary_op;
typedef enum sdc_binary_op { SDC_BINARY_ADD, SDC_BINARY_MUL } sdc_binary_op;

typedef struct sdc_backend sdc_backend;

typedef struct sdc_backend_ops {
    const char *name;
    void (*free)(sdc_backend *be);

    /* memory: bump arena; alloc returns 64-byte aligned memory or NULL when exhausted */
    void *(*alloc)(sdc_backend *be, size_t bytes);
    size_t (*mark)(sdc_backend *be);
    void (*release)(sdc_backend *be, size_t mark);
    size_t (*peak)(sdc_backend *be);   /* high-water mark of the arena in bytes */
    sdc_status (*upload)(sdc_backend *be, float *dst, const float *src, size_t n);
    sdc_status (*download)(sdc_backend *be, float *dst, const float *src, size_t n);
    sdc_status (*sync)(sdc_backend *be);
    /* backend memory to backend memory, n floats (regions do not overlap) */
    sdc_status (*copy)(sdc_backend *be, float *dst, const float *src, size_t n);

    /* y[.., N] = x[.., K] · w[N, K]^T + b */
    sdc_status (*linear)(sdc_backend *be, const sdc_act *x, const sdc_tensor *w, const sdc_tensor *b, sdc_act *y);
    /* NCHW convolution, square kernel 1 or 3, stride 1 or 2 */
    sdc_status (*conv2d)(sdc_backend *be, const sdc_act *x, const sdc_tensor *w, const sdc_tensor *b, int stride,
                         int pad, sdc_act *y);
    /* x [B, C, ...]: normalise over groups of C/groups channels and all spatial positions */
    sdc_status (*group_norm)(sdc_backend *be, const sdc_act *x, int groups, float eps, const sdc_tensor *gamma,
                             const sdc_tensor *beta, bool silu, sdc_act *y);
    /* over the last dimension */
    sdc_status (*layer_norm)(sdc_backend *be, const sdc_act *x, float eps, const sdc_tensor *gamma,
                             const sdc_tensor *beta, sdc_act *y);
    /* q [B, Nq, H*d], k/v [B, Nk, H*d] (row strides may exceed H*d: column slices of a
     * fused projection), y [B, Nq, H*d]; scale 1/sqrt(d) */
    sdc_status (*attention)(sdc_backend *be, const float *q, int64_t q_stride, const float *k, int64_t k_stride,
                            const float *v, int64_t v_stride, int64_t B, int64_t Nq, int64_t Nk, int64_t heads,
                            int64_t d, bool causal, float *y);
    sdc_status (*unary)(sdc_backend *be, sdc_unary_op op, const sdc_act *x, sdc_act *y);
    /* x [.., 2F] -> y [.., F] = x[.., :F] * gelu(x[.., F:]) */
    sdc_status (*geglu)(sdc_backend *be, const sdc_act *x, sdc_act *y);
    /* same shapes, or b broadcast per channel: b [B, C] over a [B, C, H, W]; y may be a or b
     * itself (in place) */
    sdc_status (*binary)(sdc_backend *be, sdc_binary_op op, const sdc_act *a, const sdc_act *b, sdc_act *y);
    sdc_status (*scale)(sdc_backend *be, const sdc_act *x, float s, sdc_act *y);
    sdc_status (*upsample2x)(sdc_backend *be, const sdc_act *x, sdc_act *y);
    /* along dimension 1 (channels) */
    sdc_status (*concat)(sdc_backend *be, const sdc_act *a, const sdc_act *b, sdc_act *y);
    /* y [n, dim]: cos(t·f) then sin(t·f), f_i = exp(-ln(10000)·i/(dim/2)) */
    sdc_status (*timestep_embedding)(sdc_backend *be, const float *t, int64_t n, int64_t dim, sdc_act *y);
    /* y [n, D] = rows ids[i] of table [V, D] */
    sdc_status (*embed)(sdc_backend *be, const sdc_tensor *table, const int32_t *ids, int64_t n, sdc_act *y);
    /* x [B, M, N] -> y [B, N, M] (swaps the last two dimensions; NCHW <-> tokens) */
    sdc_status (*transpose)(sdc_backend *be, const sdc_act *x, sdc_act *y);
    /* x [B, C, H, W] -> y [B, C, Ho, Wo], nearest neighbour as torch's F.interpolate(size=):
     * source row = dst when Ho == H, dst / 2 when Ho == 2H, else min(floor(dst * (float)H / Ho), H - 1)
     * computed in float (the same for columns) */
    sdc_status (*upsample_nearest)(sdc_backend *be, const sdc_act *x, sdc_act *y);
    /* x [B, C, H, W] -> y [B, C, H + top + bottom, W + left + right]: x placed at (top, left),
     * zeros around it (the VAE encoder's asymmetric (0, 1, 0, 1) pad before its stride-2 conv) */
    sdc_status (*pad)(sdc_backend *be, const sdc_act *x, int top, int left, sdc_act *y);
} sdc_backend_ops;

struct sdc_backend {
    const sdc_backend_ops *ops;
};

/* The CPU backend: n_threads <= 0 uses every core; arena_bytes is the activation arena's
 * reserved size (address space; pages are touched only when used). */
sdc_backend *sdc_backend_cpu_new(int n_threads, size_t arena_bytes, char *err, size_t errlen);
/* Turns the CPU backend's int8 linear (Q8_0/Q4_0/Q4_1 weights, src/cpu/qgemm.c) on or off.
 * Returns false, leaving the fp32 path, when on is asked of a CPU without AVX-512 VNNI. */
bool sdc_backend_cpu_set_int8(sdc_backend *be, bool on);
/* Likewise for the bf16 AMX path (src/cpu/amx.c): false, leaving fp32, where AMX is unusable. */
bool sdc_backend_cpu_set_bf16(sdc_backend *be, bool on);

#endif
