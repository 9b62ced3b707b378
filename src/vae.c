/* vae.c - the SD 1.x autoencoder: LDM autoencoder.AutoencoderKL with the v1-inference.yaml
 * ddconfig (diffusers AutoencoderKL with the SD 1.5 config), on the checked ops of ops.h.
 *
 *   ch 128, ch_mult (1, 2, 4, 4) -> widths 128/256/512/512, 2 ResBlocks per level in the
 *   encoder and 3 in the decoder, no attention but in the mid block (one head over all 512
 *   channels), z_channels 4 (the encoder outputs 2 x 4 moments), GroupNorm 32 groups with
 *   eps 1e-6 everywhere, SiLU.
 *
 * Weights are bound by canonical LDM name (first_stage_model.*) into the typed structs below
 * (views into the mapped file, no copies). Activations are NCHW [B, C, H, W], tokens
 * [B, HW, C] inside the mid-block attention.
 *
 * Memory: every block runs in an arena scope and only its result survives. The decoder copies
 * nothing at full size: a ResBlock allocates its hidden state before the normalised
 * temporaries, both convolutions write into it, and the sum is written over the block's input
 * (resblock()); an upsampler's output is allocated over its own input (upsampler()). The peak
 * (at 512x512: 640 MiB) is the first level-0 ResBlock: its 256-channel input, the normalised
 * copy of it and the 128-channel hidden state, at 512 x 512 floats each.
 *
 * Dumps (SDC_DUMP, ops.h): vae.dec.in (after post_quant_conv), vae.dec.mid, vae.dec.up.N
 * (N = LDM level 3..0, after its upsampler), vae.dec.out; vae.enc.down.N, vae.enc.mid,
 * vae.enc.out (the moments). */
#include "vae.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define VAE_LEVELS 4
#define VAE_GROUPS 32
#define VAE_Z 4           /* z_channels (embed_dim) */
#define VAE_IMG 3
#define VAE_MID 512       /* widest level, the mid block's width */
/* ref: ldm/modules/diffusionmodules/model.py Normalize(): GroupNorm(32, C, eps=1e-6);
 * diffusers AutoencoderKL blocks norm_eps=1e-6 */
#define VAE_EPS 1e-6f

static const int VAE_CH[VAE_LEVELS] = {128, 256, 512, 512};   /* ch * ch_mult */

/* ------------------------------------------------------------------ weights */

/* ref: ldm model.py ResnetBlock (temb_channels 0, so no temb_proj); diffusers ResnetBlock2D */
typedef struct vae_res {
    int cin, cout;
    const sdc_tensor *norm1_w, *norm1_b;   // [cin]
    const sdc_tensor *conv1_w, *conv1_b;   // [cout, cin, 3, 3], [cout]
    const sdc_tensor *norm2_w, *norm2_b;   // [cout]
    const sdc_tensor *conv2_w, *conv2_b;   // [cout, cout, 3, 3], [cout]
    const sdc_tensor *skip_w, *skip_b;     // [cout, cin, 1, 1], [cout]  nin_shortcut; NULL when cin == cout
} vae_res;

/* ref: ldm model.py AttnBlock; diffusers Attention(heads=1, dim_head=512) in UNetMidBlock2D */
typedef struct vae_attn {
    const sdc_tensor *norm_w, *norm_b;     // [512]
    const sdc_tensor *q_w, *q_b;           // [512, 512, 1, 1], [512]  (1x1 convs: linears over channels)
    const sdc_tensor *k_w, *k_b;
    const sdc_tensor *v_w, *v_b;
    const sdc_tensor *proj_w, *proj_b;     // proj_out
} vae_attn;

typedef struct vae_conv {
    const sdc_tensor *w, *b;               // [C, C, 3, 3], [C]
} vae_conv;

typedef struct vae_mid {
    vae_res res1;                          // mid.block_1  512 -> 512
    vae_attn attn;                         // mid.attn_1
    vae_res res2;                          // mid.block_2
} vae_mid;

struct sdc_vae {
    /* encoder. ref: ldm model.py Encoder; diffusers vae.py Encoder */
    const sdc_tensor *enc_in_w, *enc_in_b;       // [128, 3, 3, 3], [128]   encoder.conv_in
    vae_res down[VAE_LEVELS][2];                 //                         encoder.down.L.block.J
    vae_conv downsample[VAE_LEVELS - 1];         // [C, C, 3, 3]            encoder.down.L.downsample.conv
    vae_mid enc_mid;                             //                         encoder.mid
    const sdc_tensor *enc_norm_w, *enc_norm_b;   // [512]                   encoder.norm_out
    const sdc_tensor *enc_out_w, *enc_out_b;     // [8, 512, 3, 3], [8]     encoder.conv_out
    const sdc_tensor *quant_w, *quant_b;         // [8, 8, 1, 1], [8]       quant_conv
    /* decoder. ref: ldm model.py Decoder; diffusers vae.py Decoder (up_blocks.i = LDM up.3-i) */
    const sdc_tensor *post_quant_w, *post_quant_b;  // [4, 4, 1, 1], [4]    post_quant_conv
    const sdc_tensor *dec_in_w, *dec_in_b;       // [512, 4, 3, 3], [512]   decoder.conv_in
    vae_mid dec_mid;                             //                         decoder.mid
    vae_res up[VAE_LEVELS][3];                   //                         decoder.up.L.block.J
    vae_conv upsample[VAE_LEVELS];               // [C, C, 3, 3]            decoder.up.L.upsample.conv (L >= 1)
    const sdc_tensor *dec_norm_w, *dec_norm_b;   // [128]                   decoder.norm_out
    const sdc_tensor *dec_out_w, *dec_out_b;     // [3, 128, 3, 3], [3]     decoder.conv_out
};

typedef struct binder {
    const sdc_model *m;
    sdc_status st;
    char *err;
    size_t errlen;
} binder;

/* The tensor SDC_PREFIX_VAE + prefix + suffix, which must have exactly the given shape
 * (d1 == 0: a vector [d0]). */
static const sdc_tensor *get(binder *b, const char *prefix, const char *suffix, int64_t d0, int64_t d1, int64_t k) {
    if (b->st != SDC_OK) return NULL;
    char name[160];
    snprintf(name, sizeof name, "%s%s%s", SDC_PREFIX_VAE, prefix, suffix);
    const sdc_tensor *t = sdc_model_get(b->m, name);
    if (!t) {
        b->st = sdc_fail(b->err, b->errlen, SDC_E_SHAPE, "vae: tensor %s is missing", name);
        return NULL;
    }
    int ndim = d1 ? 4 : 1;
    int64_t want[4] = {d0, d1, k, k};
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == want[i];
    if (!ok) {
        char ws[96], gs[96];
        b->st = sdc_fail(b->err, b->errlen, SDC_E_SHAPE, "%s: expected shape %s, got %s", name,
                         sdc_shape_str(want, ndim, ws, sizeof ws), sdc_shape_str(t->shape, t->ndim, gs, sizeof gs));
        return NULL;
    }
    return t;
}

/* weight [cout, cin, k, k] and bias [cout] of p */
static void bind_wb(binder *b, const char *p, int64_t cout, int64_t cin, int64_t k, const sdc_tensor **w,
                    const sdc_tensor **bias) {
    *w = get(b, p, ".weight", cout, cin, k);
    *bias = get(b, p, ".bias", cout, 0, 0);
}
static void bind_norm(binder *b, const char *p, int64_t c, const sdc_tensor **w, const sdc_tensor **bias) {
    *w = get(b, p, ".weight", c, 0, 0);
    *bias = get(b, p, ".bias", c, 0, 0);
}

static void bind_res(binder *b, vae_res *r, int cin, int cout, const char *p) {
    char q[128];
    r->cin = cin, r->cout = cout;
    snprintf(q, sizeof q, "%s.norm1", p), bind_norm(b, q, cin, &r->norm1_w, &r->norm1_b);
    snprintf(q, sizeof q, "%s.conv1", p), bind_wb(b, q, cout, cin, 3, &r->conv1_w, &r->conv1_b);
    snprintf(q, sizeof q, "%s.norm2", p), bind_norm(b, q, cout, &r->norm2_w, &r->norm2_b);
    snprintf(q, sizeof q, "%s.conv2", p), bind_wb(b, q, cout, cout, 3, &r->conv2_w, &r->conv2_b);
    if (cin != cout) snprintf(q, sizeof q, "%s.nin_shortcut", p), bind_wb(b, q, cout, cin, 1, &r->skip_w, &r->skip_b);
}

static void bind_mid(binder *b, vae_mid *m, const char *coder) {
    char p[128];
    snprintf(p, sizeof p, "%s.mid.block_1", coder), bind_res(b, &m->res1, VAE_MID, VAE_MID, p);
    snprintf(p, sizeof p, "%s.mid.attn_1.norm", coder), bind_norm(b, p, VAE_MID, &m->attn.norm_w, &m->attn.norm_b);
    snprintf(p, sizeof p, "%s.mid.attn_1.q", coder), bind_wb(b, p, VAE_MID, VAE_MID, 1, &m->attn.q_w, &m->attn.q_b);
    snprintf(p, sizeof p, "%s.mid.attn_1.k", coder), bind_wb(b, p, VAE_MID, VAE_MID, 1, &m->attn.k_w, &m->attn.k_b);
    snprintf(p, sizeof p, "%s.mid.attn_1.v", coder), bind_wb(b, p, VAE_MID, VAE_MID, 1, &m->attn.v_w, &m->attn.v_b);
    snprintf(p, sizeof p, "%s.mid.attn_1.proj_out", coder),
        bind_wb(b, p, VAE_MID, VAE_MID, 1, &m->attn.proj_w, &m->attn.proj_b);
    snprintf(p, sizeof p, "%s.mid.block_2", coder), bind_res(b, &m->res2, VAE_MID, VAE_MID, p);
}

sdc_status sdc_vae_load(const sdc_model *m, sdc_vae **out, char *err, size_t errlen) {
    if (!m || !out) return sdc_fail(err, errlen, SDC_E_INVALID, "vae: no model");
    *out = NULL;
    sdc_vae *w = calloc(1, sizeof *w);
    if (!w) return sdc_fail(err, errlen, SDC_E_NOMEM, "vae: out of memory");
    binder b = {m, SDC_OK, err, errlen};
    char p[128];

    /* encoder: level L goes from VAE_CH[L-1] (128 for L = 0) to VAE_CH[L] */
    bind_wb(&b, "encoder.conv_in", VAE_CH[0], VAE_IMG, 3, &w->enc_in_w, &w->enc_in_b);
    int ch = VAE_CH[0];
    for (int l = 0; l < VAE_LEVELS; l++) {
        for (int j = 0; j < 2; j++) {
            snprintf(p, sizeof p, "encoder.down.%d.block.%d", l, j);
            bind_res(&b, &w->down[l][j], ch, VAE_CH[l], p);
            ch = VAE_CH[l];
        }
        if (l < VAE_LEVELS - 1) {
            snprintf(p, sizeof p, "encoder.down.%d.downsample.conv", l);
            bind_wb(&b, p, ch, ch, 3, &w->downsample[l].w, &w->downsample[l].b);
        }
    }
    bind_mid(&b, &w->enc_mid, "encoder");
    bind_norm(&b, "encoder.norm_out", VAE_MID, &w->enc_norm_w, &w->enc_norm_b);
    bind_wb(&b, "encoder.conv_out", 2 * VAE_Z, VAE_MID, 3, &w->enc_out_w, &w->enc_out_b);
    bind_wb(&b, "quant_conv", 2 * VAE_Z, 2 * VAE_Z, 1, &w->quant_w, &w->quant_b);

    /* decoder: levels from 3 down to 0, level L's blocks go from the previous width to VAE_CH[L] */
    bind_wb(&b, "post_quant_conv", VAE_Z, VAE_Z, 1, &w->post_quant_w, &w->post_quant_b);
    bind_wb(&b, "decoder.conv_in", VAE_MID, VAE_Z, 3, &w->dec_in_w, &w->dec_in_b);
    bind_mid(&b, &w->dec_mid, "decoder");
    ch = VAE_MID;
    for (int l = VAE_LEVELS - 1; l >= 0; l--) {
        for (int j = 0; j < 3; j++) {
            snprintf(p, sizeof p, "decoder.up.%d.block.%d", l, j);
            bind_res(&b, &w->up[l][j], ch, VAE_CH[l], p);
            ch = VAE_CH[l];
        }
        if (l > 0) {
            snprintf(p, sizeof p, "decoder.up.%d.upsample.conv", l);
            bind_wb(&b, p, ch, ch, 3, &w->upsample[l].w, &w->upsample[l].b);
        }
    }
    bind_norm(&b, "decoder.norm_out", VAE_CH[0], &w->dec_norm_w, &w->dec_norm_b);
    bind_wb(&b, "decoder.conv_out", VAE_IMG, VAE_CH[0], 3, &w->dec_out_w, &w->dec_out_b);
    if (b.st != SDC_OK) {
        free(w);
        return b.st;
    }
    *out = w;
    return SDC_OK;
}

void sdc_vae_free(sdc_vae *w) { free(w); }

/* ------------------------------------------------------------------ forward */

static const sdc_act NONE;

/* ref: ldm model.py ResnetBlock.forward; diffusers ResnetBlock2D.forward (temb None)
 *   h = conv1(silu(norm1(x)));  h = conv2(dropout(silu(norm2(h))))   (dropout: identity)
 *   return nin_shortcut(x) + h    (nin_shortcut: 1x1 conv when the width changes)
 * Consumes x: the result is written over x's memory when it fits (every decoder block), so
 * nothing is copied at the 512x512 widths; h is allocated before the normalised temporaries
 * and both convolutions write into it. The caller must not use x afterwards. */
static sdc_act resblock(sdc_ctx *c, const vae_res *r, sdc_act x) {
    if (c->status != SDC_OK || !x.data) return NONE;
    const int64_t B = x.shape[0], H = x.shape[2], W = x.shape[3];
    size_t m = sdc_mark(c);
    sdc_act h = sdc_new4(c, B, r->cout, H, W);                                            // [B, cout, H, W]
    size_t m1 = sdc_mark(c);
    sdc_conv2d_into(c, h, sdc_group_norm(c, x, VAE_GROUPS, VAE_EPS, r->norm1_w, r->norm1_b, true), r->conv1_w,
                    r->conv1_b, 1, 1);
    sdc_release(c, m1);
    /* conv2 reads only the normalised copy, so it may overwrite h */
    sdc_conv2d_into(c, h, sdc_group_norm(c, h, VAE_GROUPS, VAE_EPS, r->norm2_w, r->norm2_b, true), r->conv2_w,
                    r->conv2_b, 1, 1);
    sdc_release(c, m1);
    if (!r->skip_w) { /* x is dead after the sum: write it in place */
        sdc_act y = sdc_add_into(c, x, x, h);
        sdc_release(c, m);
        return y;
    }
    sdc_act s = sdc_conv2d(c, x, r->skip_w, r->skip_b, 1, 0);
    if (r->cout <= r->cin) { /* x is dead and large enough: the sum goes there */
        sdc_act y = sdc_reshape(c, sdc_rows(c, sdc_reshape(c, x, 2, (const int64_t[]){B * r->cin, H * W}), 0,
                                            B * r->cout),
                                4, h.shape);
        y = sdc_add_into(c, y, s, h);
        sdc_release(c, m);
        return y;
    }
    sdc_add_into(c, h, h, s);
    return sdc_keep(c, m, h);
}

/* ref: ldm model.py AttnBlock.forward (single head, scale C^-0.5 with C = 512); diffusers
 * Attention with AttnProcessor over UNetMidBlock2D's attentions[0] (residual_connection)
 *   h = norm(x) as tokens [B, HW, C];  q, k, v = 1x1 convs of h (linears over channels)
 *   return x + proj_out(softmax(q k^T / sqrt(C)) v) as [B, C, H, W] */
static sdc_act attnblock(sdc_ctx *c, const vae_attn *a, sdc_act x) {
    if (c->status != SDC_OK) return NONE;
    int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    size_t m = sdc_mark(c);
    sdc_act h = sdc_group_norm(c, x, VAE_GROUPS, VAE_EPS, a->norm_w, a->norm_b, false);  // [B, C, H, W]
    h = sdc_keep(c, m, sdc_transpose(c, sdc_reshape(c, h, 3, (const int64_t[]){B, C, H * W})));  // [B, HW, C]
    size_t m1 = sdc_mark(c);
    sdc_act q = sdc_linear(c, h, a->q_w, a->q_b);                       // [B, HW, C]
    sdc_act k = sdc_linear(c, h, a->k_w, a->k_b);
    sdc_act v = sdc_linear(c, h, a->v_w, a->v_b);
    sdc_act o = sdc_keep(c, m1, sdc_attention(c, q, 0, k, 0, v, 0, C, 1, false));  // [B, HW, C]
    o = sdc_linear(c, o, a->proj_w, a->proj_b);                         // proj_out
    o = sdc_reshape(c, sdc_transpose(c, o), 4, (const int64_t[]){B, C, H, W});
    return sdc_keep(c, m, sdc_add(c, x, o));
}

static sdc_act midblock(sdc_ctx *c, const vae_mid *mid, sdc_act h) {
    size_t m = sdc_mark(c);
    h = resblock(c, &mid->res1, h);
    h = attnblock(c, &mid->attn, h);
    h = resblock(c, &mid->res2, h);
    return sdc_keep(c, m, h);
}

/* ref: ldm model.py Upsample (with_conv): nearest x2 then a 3x3 conv; diffusers Upsample2D.
 * x must be the activation at mark m (the decoder's running h). Its result is four times x's
 * size and lands at m without a copy: the output is allocated at m first (its range covers
 * x's memory, which the arena contract leaves intact until written), the upsampled input
 * above it is read from x before anything writes there, and the convolution then fills the
 * output from the upsampled copy alone. */
static sdc_act upsampler(sdc_ctx *c, const vae_conv *u, size_t m, sdc_act x) {
    if (c->status != SDC_OK || !x.data) return NONE;
    sdc_release(c, m);
    sdc_act y = sdc_new4(c, x.shape[0], x.shape[1], 2 * x.shape[2], 2 * x.shape[3]);
    if (y.data && y.data != x.data) {
        sdc_ctx_fail(c, SDC_E_INVALID, "vae upsampler: input not at the arena mark");
        return NONE;
    }
    size_t m1 = sdc_mark(c);
    sdc_conv2d_into(c, y, sdc_upsample2x(c, x), u->w, u->b, 1, 1);
    sdc_release(c, m1);
    return y;
}

static bool check_input(sdc_ctx *c, const char *what, const sdc_vae *w, sdc_act x, int64_t C, int64_t mult) {
    if (c->status != SDC_OK) return false;
    if (!w || !x.data || x.ndim != 4 || x.shape[1] != C || x.shape[2] % mult || x.shape[3] % mult) {
        char xs[96];
        sdc_ctx_fail(c, SDC_E_SHAPE, "vae %s: input %s, expected [B, %lld, h, w]%s", what,
                     x.data ? sdc_shape_str(x.shape, x.ndim, xs, sizeof xs) : "(none)", (long long)C,
                     mult > 1 ? " with h and w multiples of 8" : "");
        return false;
    }
    return true;
}

/* ref: ldm AutoencoderKL.decode (post_quant_conv, then Decoder.forward); diffusers
 * AutoencoderKL._decode; the 1/0.18215 as in LDM's LatentDiffusion.decode_first_stage and
 * diffusers' pipelines (latents / vae.config.scaling_factor) */
sdc_act sdc_vae_decode(sdc_ctx *c, const sdc_vae *w, sdc_act z) {
    if (!check_input(c, "decode", w, z, VAE_Z, 1)) return NONE;
    const size_t m0 = sdc_mark(c);
    sdc_act h = sdc_scale(c, z, 1.0f / SDC_VAE_SCALE);                        // [B, 4, h, w]
    h = sdc_conv2d(c, h, w->post_quant_w, w->post_quant_b, 1, 0);             // post_quant_conv
    sdc_dump(c, "vae.dec.in", h);
    h = sdc_keep(c, m0, sdc_conv2d(c, h, w->dec_in_w, w->dec_in_b, 1, 1));        // [B, 512, h, w]
    h = sdc_keep(c, m0, midblock(c, &w->dec_mid, h));
    sdc_dump(c, "vae.dec.mid", h);

    /* ref: ldm Decoder.forward: for i_level in reversed(range(4)): 3 ResBlocks, then Upsample
     * (nearest x2, 3x3 conv; ldm model.py Upsample, diffusers Upsample2D) unless i_level == 0 */
    char name[32];
    for (int l = VAE_LEVELS - 1; l >= 0; l--) {
        for (int j = 0; j < 3; j++) h = sdc_keep(c, m0, resblock(c, &w->up[l][j], h));
        if (l > 0) {
            h = upsampler(c, &w->upsample[l], m0, h);                          // [B, C, 2H, 2W]
        }
        snprintf(name, sizeof name, "vae.dec.up.%d", l);
        sdc_dump(c, name, h);
    }
    /* ref: ldm Decoder.forward tail: norm_out, nonlinearity (swish), conv_out (give_pre_end,
     * tanh_out False) */
    h = sdc_group_norm(c, h, VAE_GROUPS, VAE_EPS, w->dec_norm_w, w->dec_norm_b, true);
    h = sdc_keep(c, m0, sdc_conv2d(c, h, w->dec_out_w, w->dec_out_b, 1, 1));      // [B, 3, 8h, 8w]
    sdc_dump(c, "vae.dec.out", h);
    return h;
}

/* ref: ldm AutoencoderKL.encode (Encoder.forward, then quant_conv -> moments, the
 * DiagonalGaussianDistribution's parameters); diffusers AutoencoderKL.encode */
sdc_act sdc_vae_encode(sdc_ctx *c, const sdc_vae *w, sdc_act x) {
    if (!check_input(c, "encode", w, x, VAE_IMG, 8)) return NONE;
    const size_t m0 = sdc_mark(c);
    sdc_act h = sdc_conv2d(c, x, w->enc_in_w, w->enc_in_b, 1, 1);             // [B, 128, H, W]
    char name[32];
    for (int l = 0; l < VAE_LEVELS; l++) {
        for (int j = 0; j < 2; j++) h = sdc_keep(c, m0, resblock(c, &w->down[l][j], h));
        if (l < VAE_LEVELS - 1) {
            /* ref: ldm model.py Downsample (with_conv): F.pad(x, (0, 1, 0, 1)) then a 3x3 conv
             * with stride 2 and no padding - asymmetric, unlike the UNet's; diffusers
             * Downsample2D(padding=0) pads the same way */
            h = sdc_pad(c, h, 0, 0, 1, 1);                                    // [B, C, H+1, W+1]
            h = sdc_keep(c, m0, sdc_conv2d(c, h, w->downsample[l].w, w->downsample[l].b, 2, 0));  // [B, C, H/2, W/2]
        }
        snprintf(name, sizeof name, "vae.enc.down.%d", l);
        sdc_dump(c, name, h);
    }
    h = sdc_keep(c, m0, midblock(c, &w->enc_mid, h));
    sdc_dump(c, "vae.enc.mid", h);
    h = sdc_group_norm(c, h, VAE_GROUPS, VAE_EPS, w->enc_norm_w, w->enc_norm_b, true);
    h = sdc_conv2d(c, h, w->enc_out_w, w->enc_out_b, 1, 1);                   // [B, 8, H/8, W/8]
    h = sdc_keep(c, m0, sdc_conv2d(c, h, w->quant_w, w->quant_b, 1, 0));         // quant_conv
    sdc_dump(c, "vae.enc.out", h);
    return h;
}

/* ------------------------------------------------------------------ tiled decoding */

/* Tile origins along an axis of n latent pixels: tiles of t = min(tile, n) with stride
 * t - overlap, the last one moved back to end at n (so every tile is full size). */
static int tile_starts(int64_t n, int64_t t, int64_t overlap, int64_t *starts, int cap) {
    int k = 0;
    int64_t stride = t - overlap;
    for (int64_t s = 0;; s += stride) {
        if (s + t >= n || k == cap - 1) {
            starts[k++] = n - t;
            break;
        }
        starts[k++] = s;
    }
    return k;
}

/* Blend weight of image pixel u (0..len-1) of a tile along one axis: rises linearly over the
 * first ramp pixels when the tile has a neighbour before it, falls over the last ramp pixels
 * when it has one after it, 1 elsewhere (ramp 0: 1 everywhere). */
static float ramp_weight(int64_t u, int64_t len, int64_t ramp, bool before, bool after) {
    float w = 1.0f;
    if (ramp <= 0) return w;
    if (before && u < ramp) w = fminf(w, ((float)u + 0.5f) / (float)ramp);
    if (after && len - 1 - u < ramp) w = fminf(w, ((float)(len - 1 - u) + 0.5f) / (float)ramp);
    return w;
}

/* Each tile of the latent is decoded alone (its own arena scope) and its image added into
 * out with a weight that ramps over the overlap on sides shared with another tile; the sum
 * is divided by the total weight, so the seams are linear cross-fades of two decodes.
 * ref: the idea of stable-diffusion.cpp's sd_tiling (linear blending over the overlap). */
sdc_status sdc_vae_decode_tiled(sdc_ctx *c, const sdc_vae *w, sdc_act z, int tile, int overlap, float *out) {
    if (!check_input(c, "decode_tiled", w, z, VAE_Z, 1)) return c->status ? c->status : SDC_E_INVALID;
    if (!out || tile < 8 || overlap < 0 || overlap >= tile)
        return sdc_ctx_fail(c, SDC_E_INVALID, "vae decode_tiled: tile %d, overlap %d (expected tile >= 8, "
                            "0 <= overlap < tile)", tile, overlap);
    const int64_t B = z.shape[0], h = z.shape[2], wd = z.shape[3], H = 8 * h, W = 8 * wd;
    const int64_t th = tile < h ? tile : h, tw = tile < wd ? tile : wd;
    const int64_t ov_h = overlap < th ? overlap : th - 1, ov_w = overlap < tw ? overlap : tw - 1;
    enum { MAX_TILES = 4096 };
    int64_t *ys = malloc(MAX_TILES * sizeof *ys), *xs = malloc(MAX_TILES * sizeof *xs);
    float *zh = malloc((size_t)(B * VAE_Z * h * wd) * sizeof *zh);
    float *zt = malloc((size_t)(B * VAE_Z * th * tw) * sizeof *zt);
    float *img = malloc((size_t)(B * VAE_IMG * 64 * th * tw) * sizeof *img);
    float *wsum = calloc((size_t)(H * W), sizeof *wsum);
    float *wy = malloc((size_t)(8 * th) * sizeof *wy), *wx = malloc((size_t)(8 * tw) * sizeof *wx);
    if (!ys || !xs || !zh || !zt || !img || !wsum || !wy || !wx) {
        sdc_ctx_fail(c, SDC_E_NOMEM, "vae decode_tiled: out of memory");
        goto done;
    }
    if (sdc_to_host(c, z, zh) != SDC_OK) goto done;
    memset(out, 0, (size_t)(B * VAE_IMG * H * W) * sizeof *out);
    const int ny = tile_starts(h, th, ov_h, ys, MAX_TILES), nx = tile_starts(wd, tw, ov_w, xs, MAX_TILES);
    const int64_t thi = 8 * th, twi = 8 * tw;   /* tile size in image pixels */
    for (int ty = 0; ty < ny && c->status == SDC_OK; ty++) {
        for (int64_t u = 0; u < thi; u++) wy[u] = ramp_weight(u, thi, 8 * ov_h, ty > 0, ty < ny - 1);
        for (int tx = 0; tx < nx && c->status == SDC_OK; tx++) {
            for (int64_t u = 0; u < twi; u++) wx[u] = ramp_weight(u, twi, 8 * ov_w, tx > 0, tx < nx - 1);
            const int64_t y0 = ys[ty], x0 = xs[tx];
            for (int64_t p = 0; p < B * VAE_Z; p++)      /* crop the latent tile */
                for (int64_t i = 0; i < th; i++)
                    memcpy(zt + (p * th + i) * tw, zh + (p * h + y0 + i) * wd + x0, (size_t)tw * sizeof *zt);
            size_t m = sdc_mark(c);
            sdc_act Z = sdc_from_host(c, zt, 4, (const int64_t[]){B, VAE_Z, th, tw});
            sdc_act X = sdc_vae_decode(c, w, Z);                                // [B, 3, 8th, 8tw]
            if (c->status == SDC_OK) sdc_to_host(c, X, img);
            sdc_release(c, m);
            if (c->status != SDC_OK) break;
            for (int64_t p = 0; p < B * VAE_IMG; p++)
                for (int64_t i = 0; i < thi; i++) {
                    float *o = out + (p * H + 8 * y0 + i) * W + 8 * x0;
                    const float *s = img + (p * thi + i) * twi;
                    for (int64_t j = 0; j < twi; j++) o[j] += wy[i] * wx[j] * s[j];
                }
            for (int64_t i = 0; i < thi; i++)
                for (int64_t j = 0; j < twi; j++) wsum[(8 * y0 + i) * W + 8 * x0 + j] += wy[i] * wx[j];
        }
    }
    if (c->status == SDC_OK)
        for (int64_t p = 0; p < B * VAE_IMG; p++)
            for (int64_t i = 0; i < H * W; i++) out[p * H * W + i] /= wsum[i];
done:
    free(ys), free(xs), free(zh), free(zt), free(img), free(wsum), free(wy), free(wx);
    return c->status;
}
