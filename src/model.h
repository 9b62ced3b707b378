/* model.h - internal view of an opened model: canonical tensor lookup for the networks.
 *
 * sdc_model (declared opaque in sdc.h) owns one or more mapped files (one GGUF or
 * safetensors file, or the three files of a diffusers folder). Every tensor is exposed under
 * its canonical name: the original LDM single-file checkpoint name
 * ("model.diffusion_model.input_blocks.1.0.in_layers.2.weight",
 *  "cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight",
 *  "first_stage_model.decoder.mid.attn_1.q.weight"). Diffusers names are mapped to these at
 * open, and shapes normalised to the original ones (e.g. the VAE attention q/k/v/proj_out
 * are [512,512,1,1] in the original and [512,512] in diffusers: exposed as [512,512,1,1]). */
#ifndef SDC_MODEL_H
#define SDC_MODEL_H

#include "sdc.h"
#include "tensor.h"

#define SDC_PREFIX_UNET "model.diffusion_model."
#define SDC_PREFIX_CLIP "cond_stage_model.transformer.text_model."
#define SDC_PREFIX_VAE "first_stage_model."

/* NULL when absent. */
const sdc_tensor *sdc_model_get(const sdc_model *m, const char *name);
/* Which network a canonical name belongs to. */
sdc_component sdc_model_component_of_name(const char *name);
/* Gives the pages of a component's tensors back to the kernel (MADV_DONTNEED on the
 * mapping); the views stay valid and fault the data in again if touched. */
void sdc_model_release(const sdc_model *m, sdc_component c);
/* The same for one tensor: the whole pages inside its data, when they lie in one of the
 * model's file mappings (a page shared with a neighbour stays; other memory is untouched). */
void sdc_model_release_tensor(const sdc_model *m, const sdc_tensor *t);
/* The same as an sdc_ctx.weight_done hook (user = the model): streamed weights. */
void sdc_model_weight_done(void *model, const sdc_tensor *w);

/* The tensors the SD 1.x graph needs: canonical name and shape (outermost first).
 * in_channels is 4 (SD 1.x) or 9 (inpainting). Returns the count; fills up to cap entries. */
typedef struct sdc_expected_tensor {
    char name[96];
    int ndim;
    int64_t shape[4];
} sdc_expected_tensor;
int sdc_sd1_expected_tensors(int in_channels, sdc_expected_tensor *out, int cap);

/* UNet input channels of a detected SD 1.x model (4, or 9 for inpainting); 0 otherwise. */
int sdc_model_in_channels(const sdc_model *m);

/* The name a tensor has in its file (differs from the canonical name for diffusers files);
 * NULL when absent. */
const char *sdc_model_stored_name(const sdc_model *m, const char *name);

/* Builds a model over caller-owned tensor views, with no file behind it: names are
 * canonicalised as for a single file (LDM names kept; "unet.", "text_encoder.", "vae."
 * prefixed diffusers names mapped), shapes normalised, the architecture detected, so
 * sdc_model_check and the lookups work as for a file. Names are copied; data pointers are
 * borrowed (may be NULL) and must outlive the model. Format "memory". Used by tests. */
sdc_status sdc_model_open_tensors(const sdc_tensor *tensors, int64_t n, sdc_model **out, char *err, size_t errlen);

/* Maps a diffusers tensor name of network c (relative to its sub-folder's file, e.g.
 * "down_blocks.0.resnets.0.conv1.weight" for SDC_COMPONENT_UNET, "text_model.*" for
 * SDC_COMPONENT_CLIP, "decoder.mid_block.attentions.0.to_q.weight" for SDC_COMPONENT_VAE)
 * to its canonical LDM name. Returns false (out unspecified) when the name is not a known
 * diffusers name of that network. */
bool sdc_model_diffusers_name(sdc_component c, const char *name, char *out, size_t outlen);

#endif
