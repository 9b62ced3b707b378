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

#endif
