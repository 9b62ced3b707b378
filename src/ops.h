/* ops.h - the checked entry points networks call.
 *
 * Every op takes the run context, validates shapes and types once, allocates its output in
 * the backend's arena and dispatches to the backend. Errors are sticky: the first failure is
 * recorded in the context (status + one-line message naming the op and the shapes) and every
 * later op returns an empty sdc_act at once, so a forward function reads like the
 * architecture and checks sdc_ctx_status() once at the end.
 *
 * Any intermediate can be dumped to .npy by a stable name: sdc_dump(c, "unet.out", x) writes
 * $SDC_DUMP/unet.out.npy when the context was created with SDC_DUMP set in the environment
 * (and the name contains $SDC_DUMP_FILTER, if that is set). */
#ifndef SDC_OPS_H
#define SDC_OPS_H

#include "backend.h"

typedef struct sdc_ctx {
    sdc_backend *be;
    sdc_status status;
    char err[512];
    char dump_dir[1024];     /* empty: dumping off */
    char dump_filter[128];
    /* Called after every linear and conv2d with its weight (NULL: not called). The pipeline
     * uses it to give a memory-mapped weight's pages back as soon as its layer is done
     * (sdc_txt2img_params.stream_weights, on unless --keep-weights-mapped); the view stays
     * valid and faults in again from the page cache. */
    void (*weight_done)(void *user, const sdc_tensor *w);
    void *weight_done_user;
} sdc_ctx;


/* Reads SDC_DUMP / SDC_DUMP_FILTER (and, once per process, SDC_PROFILE: wall time per op,
 * printed to stderr at exit) here; nothing else looks at the environment. */
void sdc_ctx_init(sdc_ctx *c, sdc_backend *be);
static inline sdc_status sdc_ctx_status(const sdc_ctx *c) { return c->status; }
/* Records a failure (first one wins) and returns it. */
sdc_status sdc_ctx_fail(sdc_ctx *c, sdc_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Arena scopes: everything allocated after a mark is freed by the matching release. */
static inline size_t sdc_mark(sdc_ctx *c) { return c->be->ops->mark(c->be); }
static inline void sdc_release(sdc_ctx *c, size_t m) { c->be->ops->release(c->be, m); }

/* Ends the scope opened by mark m but keeps x: everything allocated after m is freed and x
 * is moved down to start at m (so a block's result survives while its temporaries go). x
 * allocated before m is returned as is. Relies on the backend contract that the arena is one
 * bump-allocated range and release only moves the pointer. */
sdc_act sdc_keep(sdc_ctx *c, size_t m, sdc_act x);

/* A new uninitialised activation of the given shape (ndim 1..4). */
sdc_act sdc_new(sdc_ctx *c, int ndim, const int64_t *shape);
sdc_act sdc_new4(sdc_ctx *c, int64_t a, int64_t b, int64_t cc, int64_t d);
sdc_act sdc_new3(sdc_ctx *c, int64_t a, int64_t b, int64_t cc);
sdc_act sdc_new2(sdc_ctx *c, int64_t a, int64_t b);
int64_t sdc_act_nelem(const sdc_act *x);
/* Same data, another shape with the same element count. */
sdc_act sdc_reshape(sdc_ctx *c, sdc_act x, int ndim, const int64_t *shape);
/* Rows r0 .. r0+n-1 of x seen as a matrix [rows, last dimension]: a view (same memory, shape
 * [n, last]), for processing row-wise ops in chunks that bound their temporaries. */
sdc_act sdc_rows(sdc_ctx *c, sdc_act x, int64_t r0, int64_t n);
/* Copies src [n, last] into rows r0 .. r0+n-1 of dst (dst seen as [rows, last]). */
void sdc_set_rows(sdc_ctx *c, sdc_act dst, int64_t r0, sdc_act src);
/* Host <-> backend copies. */
sdc_act sdc_from_host(sdc_ctx *c, const float *src, int ndim, const int64_t *shape);
sdc_status sdc_to_host(sdc_ctx *c, sdc_act x, float *dst);

sdc_act sdc_linear(sdc_ctx *c, sdc_act x, const sdc_tensor *w, const sdc_tensor *b);
sdc_act sdc_conv2d(sdc_ctx *c, sdc_act x, const sdc_tensor *w, const sdc_tensor *b, int stride, int pad);
/* The same into an existing activation dst of the output's shape (not overlapping x), so a
 * block can place its result below its temporaries instead of copying it down (sdc_keep). */
sdc_act sdc_conv2d_into(sdc_ctx *c, sdc_act dst, sdc_act x, const sdc_tensor *w, const sdc_tensor *b, int stride,
                        int pad);
sdc_act sdc_group_norm(sdc_ctx *c, sdc_act x, int groups, float eps, const sdc_tensor *gamma,
                       const sdc_tensor *beta, bool silu);
sdc_act sdc_layer_norm(sdc_ctx *c, sdc_act x, float eps, const sdc_tensor *gamma, const sdc_tensor *beta);
/* Multi-head attention over [B, N, H*d] activations; q/k/v may be column ranges of one
 * fused activation: pass the activation and the first column of the slice. */
sdc_act sdc_attention(sdc_ctx *c, sdc_act q, int64_t q_col, sdc_act k, int64_t k_col, sdc_act v, int64_t v_col,
                      int64_t width, int64_t heads, bool causal);
sdc_act sdc_silu(sdc_ctx *c, sdc_act x);
sdc_act sdc_gelu(sdc_ctx *c, sdc_act x);
sdc_act sdc_quick_gelu(sdc_ctx *c, sdc_act x);
sdc_act sdc_geglu(sdc_ctx *c, sdc_act x);
sdc_act sdc_add(sdc_ctx *c, sdc_act a, sdc_act b);       /* b same shape, or [B, C] over [B, C, H, W] */
/* a + b into dst of a's shape; dst may be a or b itself (in place) but not overlap them otherwise */
sdc_act sdc_add_into(sdc_ctx *c, sdc_act dst, sdc_act a, sdc_act b);
sdc_act sdc_mul(sdc_ctx *c, sdc_act a, sdc_act b);
sdc_act sdc_scale(sdc_ctx *c, sdc_act x, float s);
sdc_act sdc_upsample2x(sdc_ctx *c, sdc_act x);
/* x [B, C, H, W] -> [B, C, Ho, Wo], nearest (torch F.interpolate(size=(Ho, Wo)), mode
 * "nearest"): diffusers' upsampler when a latent side is not a multiple of 8. */
sdc_act sdc_upsample_nearest(sdc_ctx *c, sdc_act x, int64_t Ho, int64_t Wo);
/* [B, M, N] -> [B, N, M] ([M, N] -> [N, M]): NCHW seen as [B, C, HW] <-> tokens [B, HW, C]. */
sdc_act sdc_transpose(sdc_ctx *c, sdc_act x);
sdc_act sdc_concat(sdc_ctx *c, sdc_act a, sdc_act b);   /* along dim 1 */
/* x [B, C, H, W] -> [B, C, H + top + bottom, W + left + right], zero padding (torch
 * F.pad(x, (left, right, top, bottom))); each amount 0..8. */
sdc_act sdc_pad(sdc_ctx *c, sdc_act x, int top, int left, int bottom, int right);
sdc_act sdc_timestep_embedding(sdc_ctx *c, const float *t, int64_t n, int64_t dim);
sdc_act sdc_embed(sdc_ctx *c, const sdc_tensor *table, const int32_t *ids, int64_t n);

/* Writes x to $SDC_DUMP/<name>.npy when dumping is on; never fails the run. */
void sdc_dump(sdc_ctx *c, const char *name, sdc_act x);

#endif
