/* clip.c - the CLIP ViT-L/14 text encoder of SD 1.x (transformers CLIPTextModel as the
 * SD 1.5 checkpoint configures it), on the checked ops of ops.h.
 *
 *   vocab 49408, 77 positions, width 768, 12 layers, 12 heads (d = 64), MLP 3072 with
 *   quick-GELU, pre-LayerNorm (eps 1e-5), causal self-attention, final LayerNorm.
 *
 * Weights are bound by canonical LDM name into the typed structs below (views into the
 * mapped file, no copies). Activations are tokens [n, 77, 768]; n rows (prompt chunks and
 * the negative prompt) run as one batch.
 *
 * Attention mask: causal only. SD 1.x pipelines pass no padding mask (diffusers'
 * StableDiffusionPipeline passes attention_mask only when text_encoder.config has
 * use_attention_mask, which SD 1.5's has not; A1111 and LDM's FrozenCLIPEmbedder pass none),
 * so padding tokens (EOS repeated) attend to everything before them.
 *
 * Memory: each layer runs in an arena scope; only the residual stream survives it.
 * Dumps (SDC_DUMP, ops.h): clip.embed, clip.layer.N (N = 0..11, each layer's output),
 * clip.out. */
#include "clip.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define CLIP_VOCAB 49408
#define CLIP_POS 77       /* max_position_embeddings: the token rows are 77 long */
#define CLIP_DIM 768      /* hidden_size */
#define CLIP_FF 3072      /* intermediate_size */
#define CLIP_HEADS 12     /* num_attention_heads; d = 64, scale 1/8 (applied by the attention op) */
#define CLIP_LAYERS 12    /* num_hidden_layers */
/* ref: transformers CLIPTextConfig layer_norm_eps=1e-5 (used by layer_norm1/2 and
 * final_layer_norm) */
#define CLIP_LN_EPS 1e-5f

/* ------------------------------------------------------------------ weights */

/* ref: transformers modeling_clip.py CLIPEncoderLayer (+ CLIPAttention, CLIPMLP) */
typedef struct clip_layer {
    const sdc_tensor *ln1_w, *ln1_b;   // [768]        layer_norm1
    const sdc_tensor *q_w, *q_b;       // [768, 768], [768]  self_attn.q_proj
    const sdc_tensor *k_w, *k_b;       // [768, 768], [768]  self_attn.k_proj
    const sdc_tensor *v_w, *v_b;       // [768, 768], [768]  self_attn.v_proj
    const sdc_tensor *o_w, *o_b;       // [768, 768], [768]  self_attn.out_proj
    const sdc_tensor *ln2_w, *ln2_b;   // [768]        layer_norm2
    const sdc_tensor *fc1_w, *fc1_b;   // [3072, 768], [3072] mlp.fc1
    const sdc_tensor *fc2_w, *fc2_b;   // [768, 3072], [768]  mlp.fc2
} clip_layer;

struct sdc_clip {
    const sdc_tensor *tok_emb;         // [49408, 768]  embeddings.token_embedding
    const sdc_tensor *pos_emb;         // [77, 768]     embeddings.position_embedding
    clip_layer layer[CLIP_LAYERS];     //               encoder.layers.0..11
    const sdc_tensor *lnf_w, *lnf_b;   // [768]         final_layer_norm
};

typedef struct binder {
    const sdc_model *m;
    sdc_status st;
    char *err;
    size_t errlen;
} binder;

/* The tensor SDC_PREFIX_CLIP + name, which must have exactly the given shape. */
static const sdc_tensor *get(binder *b, int64_t d0, int64_t d1, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static const sdc_tensor *get(binder *b, int64_t d0, int64_t d1, const char *fmt, ...) {
    if (b->st != SDC_OK) return NULL;
    char name[160];
    size_t o = (size_t)snprintf(name, sizeof name, "%s", SDC_PREFIX_CLIP);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name + o, sizeof name - o, fmt, ap);
    va_end(ap);
    const sdc_tensor *t = sdc_model_get(b->m, name);
    if (!t) {
        b->st = sdc_fail(b->err, b->errlen, SDC_E_SHAPE, "clip: tensor %s is missing", name);
        return NULL;
    }
    int ndim = d1 ? 2 : 1;
    int64_t want[2] = {d0, d1};
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        char ws[96], gs[96];
        b->st = sdc_fail(b->err, b->errlen, SDC_E_SHAPE, "%s: expected shape %s, got %s", name,
                         sdc_shape_str(want, ndim, ws, sizeof ws), sdc_shape_str(t->shape, t->ndim, gs, sizeof gs));
        return NULL;
    }
    return t;
}

sdc_status sdc_clip_load(const sdc_model *m, sdc_clip **out, char *err, size_t errlen) {
    if (!m || !out) return sdc_fail(err, errlen, SDC_E_INVALID, "clip: no model");
    *out = NULL;
    sdc_clip *w = calloc(1, sizeof *w);
    if (!w) return sdc_fail(err, errlen, SDC_E_NOMEM, "clip: out of memory");
    binder b = {m, SDC_OK, err, errlen};
    w->tok_emb = get(&b, CLIP_VOCAB, CLIP_DIM, "embeddings.token_embedding.weight");
    w->pos_emb = get(&b, CLIP_POS, CLIP_DIM, "embeddings.position_embedding.weight");
    for (int i = 0; i < CLIP_LAYERS; i++) {
        clip_layer *l = &w->layer[i];
        const char *p = "encoder.layers";
        l->ln1_w = get(&b, CLIP_DIM, 0, "%s.%d.layer_norm1.weight", p, i);
        l->ln1_b = get(&b, CLIP_DIM, 0, "%s.%d.layer_norm1.bias", p, i);
        l->q_w = get(&b, CLIP_DIM, CLIP_DIM, "%s.%d.self_attn.q_proj.weight", p, i);
        l->q_b = get(&b, CLIP_DIM, 0, "%s.%d.self_attn.q_proj.bias", p, i);
        l->k_w = get(&b, CLIP_DIM, CLIP_DIM, "%s.%d.self_attn.k_proj.weight", p, i);
        l->k_b = get(&b, CLIP_DIM, 0, "%s.%d.self_attn.k_proj.bias", p, i);
        l->v_w = get(&b, CLIP_DIM, CLIP_DIM, "%s.%d.self_attn.v_proj.weight", p, i);
        l->v_b = get(&b, CLIP_DIM, 0, "%s.%d.self_attn.v_proj.bias", p, i);
        l->o_w = get(&b, CLIP_DIM, CLIP_DIM, "%s.%d.self_attn.out_proj.weight", p, i);
        l->o_b = get(&b, CLIP_DIM, 0, "%s.%d.self_attn.out_proj.bias", p, i);
        l->ln2_w = get(&b, CLIP_DIM, 0, "%s.%d.layer_norm2.weight", p, i);
        l->ln2_b = get(&b, CLIP_DIM, 0, "%s.%d.layer_norm2.bias", p, i);
        l->fc1_w = get(&b, CLIP_FF, CLIP_DIM, "%s.%d.mlp.fc1.weight", p, i);
        l->fc1_b = get(&b, CLIP_FF, 0, "%s.%d.mlp.fc1.bias", p, i);
        l->fc2_w = get(&b, CLIP_DIM, CLIP_FF, "%s.%d.mlp.fc2.weight", p, i);
        l->fc2_b = get(&b, CLIP_DIM, 0, "%s.%d.mlp.fc2.bias", p, i);
    }
    w->lnf_w = get(&b, CLIP_DIM, 0, "final_layer_norm.weight");
    w->lnf_b = get(&b, CLIP_DIM, 0, "final_layer_norm.bias");
    if (b.st != SDC_OK) {
        free(w);
        return b.st;
    }
    *out = w;
    return SDC_OK;
}

void sdc_clip_free(sdc_clip *w) { free(w); }

/* ------------------------------------------------------------------ forward */

static const sdc_act NONE;

/* One encoder layer on h [n, 77, 768]. ref: transformers CLIPEncoderLayer.forward,
 * CLIPAttention.forward (q_proj(x) * d^-0.5 with d = 64; softmax over a causal mask),
 * CLIPMLP.forward (fc2(quick_gelu(fc1(x))), quick_gelu(x) = x * sigmoid(1.702 x)):
 *   h = h + out_proj(attn(q_proj(ln1(h)), k_proj(ln1(h)), v_proj(ln1(h))))
 *   h = h + fc2(quick_gelu(fc1(ln2(h)))) */
static sdc_act layer(sdc_ctx *c, const clip_layer *l, sdc_act h) {
    size_t m = sdc_mark(c);
    sdc_act x = sdc_layer_norm(c, h, CLIP_LN_EPS, l->ln1_w, l->ln1_b);   // [n, 77, 768]
    sdc_act q = sdc_linear(c, x, l->q_w, l->q_b);                          // [n, 77, 768]
    sdc_act k = sdc_linear(c, x, l->k_w, l->k_b);
    sdc_act v = sdc_linear(c, x, l->v_w, l->v_b);
    sdc_act a = sdc_attention(c, q, 0, k, 0, v, 0, CLIP_DIM, CLIP_HEADS, true);  // [n, 77, 768]
    a = sdc_linear(c, a, l->o_w, l->o_b);
    h = sdc_keep(c, m, sdc_add(c, h, a));                                     // residual
    x = sdc_layer_norm(c, h, CLIP_LN_EPS, l->ln2_w, l->ln2_b);
    x = sdc_linear(c, x, l->fc1_w, l->fc1_b);                             // [n, 77, 3072]
    x = sdc_quick_gelu(c, x);
    x = sdc_linear(c, x, l->fc2_w, l->fc2_b);                             // [n, 77, 768]
    return sdc_keep(c, m, sdc_add(c, h, x));                                  // residual
}

sdc_act sdc_clip_hidden(sdc_ctx *c, const sdc_clip *w, const int32_t *ids, int64_t n, int layers, bool final_norm) {
    if (c->status != SDC_OK) return NONE;
    if (!w || !ids || n < 1 || layers < 1 || layers > CLIP_LAYERS) {
        sdc_ctx_fail(c, SDC_E_INVALID, "clip: %lld rows, %d layers (expected >= 1 rows, 1..%d layers)", (long long)n,
                     layers, CLIP_LAYERS);
        return NONE;
    }
    const int64_t T = CLIP_POS;
    int32_t *pos = malloc((size_t)(n * T) * sizeof *pos);
    if (!pos) {
        sdc_ctx_fail(c, SDC_E_NOMEM, "clip: out of memory");
        return NONE;
    }
    for (int64_t i = 0; i < n * T; i++) pos[i] = (int32_t)(i % T);   // position_ids 0..76 per row
    const size_t m0 = sdc_mark(c);

    /* ref: transformers CLIPTextEmbeddings.forward: token_embedding(ids) + position_embedding(pos) */
    sdc_act h = sdc_add(c, sdc_embed(c, w->tok_emb, ids, n * T), sdc_embed(c, w->pos_emb, pos, n * T));  // [n*77, 768]
    free(pos);
    h = sdc_keep(c, m0, sdc_reshape(c, h, 3, (const int64_t[]){n, T, CLIP_DIM}));    // [n, 77, 768]
    sdc_dump(c, "clip.embed", h);

    /* ref: transformers CLIPEncoder.forward (hidden_states[i] = output of layer i) */
    char name[32];
    for (int i = 0; i < layers; i++) {
        h = sdc_keep(c, m0, layer(c, &w->layer[i], h));   // the input's place is reused
        snprintf(name, sizeof name, "clip.layer.%d", i);
        sdc_dump(c, name, h);
    }
    /* ref: transformers CLIPTextTransformer.forward: final_layer_norm(last_hidden_state) */
    if (final_norm) h = sdc_keep(c, m0, sdc_layer_norm(c, h, CLIP_LN_EPS, w->lnf_w, w->lnf_b));
    return h;
}

/* clip_skip N uses hidden_states[-N] = the output of layer 12 - N + 1, through the final
 * LayerNorm. ref: A1111 sd_hijack_clip.FrozenCLIPEmbedderWithCustomWords.encode_with_transformers
 * (hidden_states[-opts.CLIP_stop_at_last_layers] then final_layer_norm); diffusers
 * StableDiffusionPipeline.encode_prompt (clip_skip = N - 1: hidden_states[-(clip_skip + 1)]). */
sdc_act sdc_clip_forward(sdc_ctx *c, const sdc_clip *w, const int32_t *ids, int64_t n, int clip_skip) {
    if (c->status != SDC_OK) return NONE;
    if (clip_skip < 1 || clip_skip > CLIP_LAYERS) {
        sdc_ctx_fail(c, SDC_E_INVALID, "clip: clip skip %d (expected 1..%d)", clip_skip, CLIP_LAYERS);
        return NONE;
    }
    sdc_act h = sdc_clip_hidden(c, w, ids, n, CLIP_LAYERS - clip_skip + 1, true);
    sdc_dump(c, "clip.out", h);
    return h;
}
