/* unet.h - the SD 1.x UNet (LDM openaimodel.UNetModel as configured by v1-inference.yaml;
 * diffusers UNet2DConditionModel), and its 9-channel inpainting variant. */
#ifndef SDC_UNET_H
#define SDC_UNET_H

#include "model.h"
#include "ops.h"

typedef struct sdc_unet sdc_unet;

sdc_status sdc_unet_load(const sdc_model *m, sdc_unet **out, char *err, size_t errlen);
void sdc_unet_free(sdc_unet *w);
int sdc_unet_in_channels(const sdc_unet *w);   /* 4, or 9 for inpainting */

/* x [B, in_channels, h, w] (any h, w; multiples of 8 are the fast path), t [B] float
 * timesteps, context [B, T, 768] -> predicted noise eps [B, 4, h, w]. */
sdc_act sdc_unet_forward(sdc_ctx *c, const sdc_unet *w, sdc_act x, const float *t, sdc_act context);

#endif
