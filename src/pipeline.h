/* pipeline.h - internal entry points of the text-to-image pipeline (tests, tools). */
#ifndef SDC_PIPELINE_H
#define SDC_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

#include "sdc.h"

/* Where the time and memory of one run went (bench_txt2img). Peak RSS is the process's
 * ru_maxrss after each stage; the arena peak is the activation memory's high-water mark. */
typedef struct sdc_txt2img_timing {
    double text_s, sample_s, decode_s, total_s;
    double *step_s; /* caller's buffer of step_cap entries: each step's seconds, images in order */
    int step_cap, n_steps;
    double rss_text_mib, rss_sample_mib, rss_decode_mib, arena_peak_mib;
} sdc_txt2img_timing;

/* Optional outputs for tests: host buffers the caller sized for batch_count images. */
typedef struct sdc_txt2img_debug {
    sdc_txt2img_timing *timing; /* optional */
    float *latent;  /* [batch, 4, H/8, W/8]: the sampler's final latents (before 1/0.18215) */
    float *image;   /* [batch, 3, H, W]: decoder output before clamping */
    float *noise;   /* [batch, 4, H/8, W/8]: the initial noise (draw 0, before * sigmas[0]) */
} sdc_txt2img_debug;

sdc_status sdc_txt2img_ex(sdc_model *m, const sdc_txt2img_params *p, const sdc_txt2img_debug *dbg, sdc_image **images,
                          int *n, char *err, size_t errlen);

/* A1111's emphasis ("EmphasisOriginal", modules/sd_emphasis.py) on one chunk of CLIP hidden
 * states z [77, 768]: z[t] *= w[t] for every token, then z *= mean_before / mean_after (means
 * over the whole chunk). */
void sdc_pipeline_apply_emphasis(float *z, const float *w);

#endif
