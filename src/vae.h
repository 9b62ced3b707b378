/* vae.h - the SD 1.x autoencoder (LDM AutoencoderKL; diffusers AutoencoderKL): decoder with
 * post_quant_conv, encoder with quant_conv. GroupNorm eps 1e-6. */
#ifndef SDC_VAE_H
#define SDC_VAE_H

#include "model.h"
#include "ops.h"

#define SDC_VAE_SCALE 0.18215f

typedef struct sdc_vae sdc_vae;

sdc_status sdc_vae_load(const sdc_model *m, sdc_vae **out, char *err, size_t errlen);
void sdc_vae_free(sdc_vae *w);

/* z [B, 4, h, w] latent as the sampler produces it (scaled): multiplied by 1/0.18215, then
 * post_quant_conv and the decoder -> image [B, 3, 8h, 8w] in about [-1, 1] (not clamped). */
sdc_act sdc_vae_decode(sdc_ctx *c, const sdc_vae *w, sdc_act z);

/* Tiled decoding for large images: latent tiles of tile x tile (>= 8; e.g. 32, overlap 16)
 * decoded one at a time, each tile's image weighted by a linear ramp over the 8 * overlap
 * pixels it shares with a neighbour, the weighted sum normalised: seams are cross-fades.
 * Tiles are full size (the last one per axis moved back to end at the border); a latent no
 * larger than one tile is decoded whole. Writes [B, 3, 8h, 8w] floats to the host buffer;
 * peak activation memory is one tile's decode. Not bit-equal to sdc_vae_decode: the
 * decoder's receptive field (the mid-block attention sees the whole latent) spans tiles. */
sdc_status sdc_vae_decode_tiled(sdc_ctx *c, const sdc_vae *w, sdc_act z, int tile, int overlap, float *out);

/* sdc_vae_decode and sdc_vae_encode allocate in c's arena; on return only the result remains
 * above the mark the call found. Errors are sticky in c (ops.h).
 *
 * x [B, 3, H, W] image in [-1, 1], H and W multiples of 8 -> moments [B, 8, H/8, W/8]: channels 0..3 the mean,
 * 4..7 the log-variance (before clamping to [-30, 20]), both before scaling by 0.18215. */
sdc_act sdc_vae_encode(sdc_ctx *c, const sdc_vae *w, sdc_act x);

#endif
