/* unet.h - the SD 1.x UNet (LDM openaimodel.UNetModel as configured by v1-inference.yaml;
 * diffusers UNet2DConditionModel), and its 9-channel inpainting variant. */
#ifndef SDC_UNET_H
#define SDC_UNET_H

#include "model.h"
#include "ops.h"

typedef struct sdc_unet sdc_unet;

/* Binds every UNet weight of m by canonical name (views, no copies; m must outlive the
 * result); a missing tensor or wrong shape is reported by name. */
sdc_status sdc_unet_load(const sdc_model *m, sdc_unet **out, char *err, size_t errlen);
void sdc_unet_free(sdc_unet *w);
int sdc_unet_in_channels(const sdc_unet *w);   /* 4, or 9 for inpainting */

/* x [B, in_channels, h, w] (any h, w >= 1; when a side is not a multiple of 8 the upsamplers
 * go to the skip connection's size, as diffusers does), t [B] float timesteps (host memory;
 * fractional allowed), context [B, T, 768] -> predicted noise eps [B, 4, h, w].
 * Allocates in c's arena; on return only eps remains above the arena mark the call found
 * (every temporary and skip connection is released). Errors are sticky in c (ops.h). */
sdc_act sdc_unet_forward(sdc_ctx *c, const sdc_unet *w, sdc_act x, const float *t, sdc_act context);

/* The cross-attention keys and values (to_k, to_v of every transformer's attn2) of one
 * context. They depend on the context alone, so a sampler computes them once and each step
 * reuses them: the same linears on the same rows, so the forward's result is bit-identical
 * to computing them inside it. The tensors live in c's arena at the mark the call found
 * (about 15 MB for [2, 77, 768]) and must outlive every forward that uses them; the struct
 * itself is freed with sdc_unet_kv_free. NULL on error (reported in c). */
typedef struct sdc_unet_kv sdc_unet_kv;
sdc_unet_kv *sdc_unet_kv_new(sdc_ctx *c, const sdc_unet *w, sdc_act context);
void sdc_unet_kv_free(sdc_unet_kv *kv);

/* sdc_unet_forward with the K/V of kv (NULL: computed in the call). kv must come from
 * sdc_unet_kv_new for this unet and this same context tensor; anything else is an error. */
sdc_act sdc_unet_forward_kv(sdc_ctx *c, const sdc_unet *w, sdc_act x, const float *t, sdc_act context,
                            const sdc_unet_kv *kv);

#endif
