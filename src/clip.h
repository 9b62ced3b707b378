/* clip.h - the CLIP ViT-L/14 text encoder of SD 1.x (transformers CLIPTextModel).
 *
 * 12 pre-LayerNorm transformer layers, width 768, 12 heads (d = 64), MLP 3072 with
 * quick-GELU, causal mask, final LayerNorm. Weights are bound by canonical name from the
 * model (views into the mapped file, never copied). */
#ifndef SDC_CLIP_H
#define SDC_CLIP_H

#include "model.h"
#include "ops.h"

typedef struct sdc_clip sdc_clip;

sdc_status sdc_clip_load(const sdc_model *m, sdc_clip **out, char *err, size_t errlen);
void sdc_clip_free(sdc_clip *w);

/* ids [n, 77] token rows (BOS ... EOS, padded) -> hidden states [n, 77, 768].
 * clip_skip 1: the last layer's output through the final LayerNorm (SD 1.x default);
 * clip_skip N > 1: the output of layer 12-N+1 (hidden_states[-N]) through the final
 * LayerNorm, as A1111 and diffusers compute it. */
sdc_act sdc_clip_forward(sdc_ctx *c, const sdc_clip *w, const int32_t *ids, int64_t n, int clip_skip);

/* The residual stream after the first `layers` (1..12) encoder layers (hidden_states[layers]
 * in transformers' numbering), through the final LayerNorm when final_norm: clip_skip N is
 * (13 - N, true); (11, false) is the raw penultimate output the goldens also hold.
 * Allocates in c's arena; on return only the result remains above the mark the call found. */
sdc_act sdc_clip_hidden(sdc_ctx *c, const sdc_clip *w, const int32_t *ids, int64_t n, int layers, bool final_norm);

#endif
