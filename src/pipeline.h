/* pipeline.h - internal entry points of the text-to-image pipeline (tests, tools). */
#ifndef SDC_PIPELINE_H
#define SDC_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

#include "sdc.h"

/* Optional outputs for tests: host buffers the caller sized for batch_count images. */
typedef struct sdc_txt2img_debug {
    float *latent;  /* [batch, 4, H/8, W/8]: the sampler's final latents (before 1/0.18215) */
    float *image;   /* [batch, 3, H, W]: decoder output before clamping */
    float *noise;   /* [batch, 4, H/8, W/8]: the initial noise (draw 0, before * sigmas[0]) */
} sdc_txt2img_debug;

sdc_status sdc_txt2img_ex(sdc_model *m, const sdc_txt2img_params *p, const sdc_txt2img_debug *dbg, sdc_image **images,
                          int *n, char *err, size_t errlen);

/* Whether this build has the CLIP, UNet and VAE implementations; when not, false and the
 * missing ones are named in what. */
bool sdc_pipeline_networks_built(char *what, size_t len);

/* A1111's emphasis ("EmphasisOriginal", modules/sd_emphasis.py) on one chunk of CLIP hidden
 * states z [77, 768]: z[t] *= w[t] for every token, then z *= mean_before / mean_after (means
 * over the whole chunk). */
void sdc_pipeline_apply_emphasis(float *z, const float *w);

#endif
