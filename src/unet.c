/* unet.c - the SD 1.x UNet: LDM openaimodel.UNetModel with the v1-inference.yaml settings
 * (diffusers UNet2DConditionModel with the SD 1.5 config), on the checked ops of ops.h.
 *
 *   model_channels 320, channel_mult (1, 2, 4, 4), num_res_blocks 2, attention at the first
 *   three levels, 8 heads (head width C/8), transformer depth 1, context 768, GEGLU
 *   feed-forward, GroupNorm 32 groups; time embedding 320 -> 1280.
 *
 * Weights are bound by canonical LDM name into the typed structs below (views into the
 * mapped file, no copies). Activations are NCHW [B, C, H, W] on the convolution path and
 * tokens [B, HW, C] inside the transformers.
 *
 * Memory: every block runs inside an arena scope; sdc_keep() moves the block's result down to the
 * scope's mark so its temporaries are freed and only the result (and the skip connections
 * below it) survive. Peak activation memory is the skip stack plus one block's temporaries.
 *
 * Every intermediate named below can be dumped with SDC_DUMP (ops.h): unet.time_emb,
 * unet.in.N (N = 0..11, the skip connections), unet.mid, unet.out.N, unet.eps. */
#include "unet.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define UNET_CH 320        /* model_channels */
#define UNET_TEMB 1280     /* time embedding width: 4 * model_channels */
#define UNET_CTX 768       /* context (CLIP ViT-L/14 hidden) width */
#define UNET_HEADS 8
#define UNET_GROUPS 32
#define UNET_LEVELS 4
#define UNET_BLOCKS 12     /* input blocks (incl. conv_in) = output blocks */
#define FF_ROWS 1024       /* tokens per feed-forward chunk: bounds its temporaries, GEMMs stay large */

/* ref: ldm/modules/diffusionmodules/util.py normalization() -> GroupNorm32(32, C) (eps 1e-5,
 * torch's default); diffusers ResnetBlock2D eps=1e-5, conv_norm_out eps=1e-5 */
#define EPS_RES 1e-5f
/* ref: ldm/modules/attention.py Normalize() used by SpatialTransformer: GroupNorm eps=1e-6;
 * diffusers Transformer2DModel self.norm GroupNorm(..., eps=1e-6) */
#define EPS_XF_GN 1e-6f
/* ref: ldm BasicTransformerBlock nn.LayerNorm(dim) (eps 1e-5); diffusers norm_eps=1e-5 */
#define EPS_LN 1e-5f

static const int CH_MULT[UNET_LEVELS] = {1, 2, 4, 4};

/* ------------------------------------------------------------------ weights */

/* ResBlock. ref: ldm openaimodel.ResBlock; diffusers resnet.py ResnetBlock2D */
typedef struct unet_res {
    int cin, cout;
    const sdc_tensor *norm1_w, *norm1_b;   // [cin]              in_layers.0 (GroupNorm32)
    const sdc_tensor *conv1_w;             // [cout, cin, 3, 3]  in_layers.2
    const sdc_tensor *conv1_b;             // [cout]
    const sdc_tensor *emb_w;               // [cout, 1280]       emb_layers.1 (after SiLU)
    const sdc_tensor *emb_b;               // [cout]
    const sdc_tensor *norm2_w, *norm2_b;   // [cout]             out_layers.0
    const sdc_tensor *conv2_w;             // [cout, cout, 3, 3] out_layers.3 (out_layers.2 is dropout)
    const sdc_tensor *conv2_b;             // [cout]
    const sdc_tensor *skip_w;              // [cout, cin, 1, 1]  skip_connection; NULL when cin == cout
    const sdc_tensor *skip_b;              // [cout]
} unet_res;

/* Attention projections. ref: ldm attention.py CrossAttention; diffusers Attention */
typedef struct unet_attn {
    const sdc_tensor *q_w;                 // [C, C]       to_q (no bias)
    const sdc_tensor *k_w, *v_w;           // [C, Ckv]     to_k, to_v (Ckv = C self, 768 cross)
    const sdc_tensor *out_w, *out_b;       // [C, C], [C]  to_out.0
} unet_attn;

/* SpatialTransformer with one BasicTransformerBlock. ref: ldm attention.py
 * SpatialTransformer / BasicTransformerBlock; diffusers transformer_2d.py Transformer2DModel,
 * attention.py BasicTransformerBlock, FeedForward, activations.py GEGLU */
typedef struct unet_xf {
    int C;
    const sdc_tensor *norm_w, *norm_b;         // [C]           norm (GroupNorm32, eps 1e-6)
    const sdc_tensor *proj_in_w, *proj_in_b;   // [C, C, 1, 1]  proj_in (1x1 conv in SD 1.x), [C]
    const sdc_tensor *ln1_w, *ln1_b;           // [C]           transformer_blocks.0.norm1
    unet_attn attn1;                           //               .attn1: self-attention
    const sdc_tensor *ln2_w, *ln2_b;           // [C]           .norm2
    unet_attn attn2;                           //               .attn2: k/v from the context
    const sdc_tensor *ln3_w, *ln3_b;           // [C]           .norm3
    const sdc_tensor *ff_in_w, *ff_in_b;       // [8C, C], [8C] .ff.net.0.proj (value | gate)
    const sdc_tensor *ff_out_w, *ff_out_b;     // [C, 4C], [C]  .ff.net.2
    const sdc_tensor *proj_out_w, *proj_out_b; // [C, C, 1, 1], [C] proj_out
} unet_xf;

/* A 3x3 convolution of a Downsample (stride 2) or Upsample (after nearest x2). */
typedef struct unet_conv {
    const sdc_tensor *w;                   // [C, C, 3, 3]
    const sdc_tensor *b;                   // [C]
} unet_conv;

typedef struct unet_block {
    bool has_res, has_xf, has_down, has_up;
    unet_res res;
    unet_xf xf;
    unet_conv conv;                        // input_blocks.N.0.op / output_blocks.N.{1,2}.conv
    int cout;                              // channels of the block's output
} unet_block;

struct sdc_unet {
    int in_channels;                       // 4, or 9 for inpainting
    const sdc_tensor *time1_w, *time1_b;   // [1280, 320], [1280]   time_embed.0
    const sdc_tensor *time2_w, *time2_b;   // [1280, 1280], [1280]  time_embed.2
    const sdc_tensor *conv_in_w;           // [320, in, 3, 3]       input_blocks.0.0
    const sdc_tensor *conv_in_b;           // [320]
    unet_block in[UNET_BLOCKS];            // input_blocks.1..11 (in[0] unused: conv_in)
    unet_res mid_res1;                     // [1280 -> 1280]        middle_block.0
    unet_xf mid_xf;                        // 1280                  middle_block.1
    unet_res mid_res2;                     //                       middle_block.2
    unet_block out[UNET_BLOCKS];           // output_blocks.0..11
    const sdc_tensor *norm_out_w;          // [320]                 out.0 (GroupNorm32 + SiLU)
    const sdc_tensor *norm_out_b;          // [320]
    const sdc_tensor *conv_out_w;          // [4, 320, 3, 3]        out.2
    const sdc_tensor *conv_out_b;          // [4]
};

typedef struct binder {
    const sdc_model *m;
    sdc_status st;
    char *err;
    size_t errlen;
} binder;

/* The tensor SDC_PREFIX_UNET + name, which must have exactly the given shape. */
static const sdc_tensor *get(binder *b, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static const sdc_tensor *get(binder *b, int ndim, const int64_t *shape, const char *fmt, ...) {
    if (b->st != SDC_OK) return NULL;
    char name[160];
    size_t o = (size_t)snprintf(name, sizeof name, "%s", SDC_PREFIX_UNET);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name + o, sizeof name - o, fmt, ap);
    va_end(ap);
    const sdc_tensor *t = sdc_model_get(b->m, name);
    if (!t) {
        b->st = sdc_fail(b->err, b->errlen, SDC_E_SHAPE, "unet: tensor %s is missing", name);
        return NULL;
    }
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char want[96], got[96];
        b->st = sdc_fail(b->err, b->errlen, SDC_E_SHAPE, "%s: expected shape %s, got %s", name,
                         sdc_shape_str(shape, ndim, want, sizeof want), sdc_shape_str(t->shape, t->ndim, got, sizeof got));
        return NULL;
    }
    return t;
}
#define V1(a) 1, (const int64_t[]){a}
#define V2(a, b) 2, (const int64_t[]){a, b}
#define V4(a, b, c, d) 4, (const int64_t[]){a, b, c, d}

static void bind_res(binder *b, unet_res *r, int cin, int cout, const char *p) {
    r->cin = cin, r->cout = cout;
    r->norm1_w = get(b, V1(cin), "%s.in_layers.0.weight", p);
    r->norm1_b = get(b, V1(cin), "%s.in_layers.0.bias", p);
    r->conv1_w = get(b, V4(cout, cin, 3, 3), "%s.in_layers.2.weight", p);
    r->conv1_b = get(b, V1(cout), "%s.in_layers.2.bias", p);
    r->emb_w = get(b, V2(cout, UNET_TEMB), "%s.emb_layers.1.weight", p);
    r->emb_b = get(b, V1(cout), "%s.emb_layers.1.bias", p);
    r->norm2_w = get(b, V1(cout), "%s.out_layers.0.weight", p);
    r->norm2_b = get(b, V1(cout), "%s.out_layers.0.bias", p);
    r->conv2_w = get(b, V4(cout, cout, 3, 3), "%s.out_layers.3.weight", p);
    r->conv2_b = get(b, V1(cout), "%s.out_layers.3.bias", p);
    if (cin != cout) {
        r->skip_w = get(b, V4(cout, cin, 1, 1), "%s.skip_connection.weight", p);
        r->skip_b = get(b, V1(cout), "%s.skip_connection.bias", p);
    }
}

static void bind_attn(binder *b, unet_attn *a, int C, int ckv, const char *p) {
    a->q_w = get(b, V2(C, C), "%s.to_q.weight", p);
    a->k_w = get(b, V2(C, ckv), "%s.to_k.weight", p);
    a->v_w = get(b, V2(C, ckv), "%s.to_v.weight", p);
    a->out_w = get(b, V2(C, C), "%s.to_out.0.weight", p);
    a->out_b = get(b, V1(C), "%s.to_out.0.bias", p);
}

static void bind_xf(binder *b, unet_xf *s, int C, const char *p) {
    char q[128];
    s->C = C;
    s->norm_w = get(b, V1(C), "%s.norm.weight", p);
    s->norm_b = get(b, V1(C), "%s.norm.bias", p);
    s->proj_in_w = get(b, V4(C, C, 1, 1), "%s.proj_in.weight", p);
    s->proj_in_b = get(b, V1(C), "%s.proj_in.bias", p);
    s->ln1_w = get(b, V1(C), "%s.transformer_blocks.0.norm1.weight", p);
    s->ln1_b = get(b, V1(C), "%s.transformer_blocks.0.norm1.bias", p);
    snprintf(q, sizeof q, "%s.transformer_blocks.0.attn1", p);
    bind_attn(b, &s->attn1, C, C, q);
    s->ln2_w = get(b, V1(C), "%s.transformer_blocks.0.norm2.weight", p);
    s->ln2_b = get(b, V1(C), "%s.transformer_blocks.0.norm2.bias", p);
    snprintf(q, sizeof q, "%s.transformer_blocks.0.attn2", p);
    bind_attn(b, &s->attn2, C, UNET_CTX, q);
    s->ln3_w = get(b, V1(C), "%s.transformer_blocks.0.norm3.weight", p);
    s->ln3_b = get(b, V1(C), "%s.transformer_blocks.0.norm3.bias", p);
    s->ff_in_w = get(b, V2(8 * C, C), "%s.transformer_blocks.0.ff.net.0.proj.weight", p);
    s->ff_in_b = get(b, V1(8 * C), "%s.transformer_blocks.0.ff.net.0.proj.bias", p);
    s->ff_out_w = get(b, V2(C, 4 * C), "%s.transformer_blocks.0.ff.net.2.weight", p);
    s->ff_out_b = get(b, V1(C), "%s.transformer_blocks.0.ff.net.2.bias", p);
    s->proj_out_w = get(b, V4(C, C, 1, 1), "%s.proj_out.weight", p);
    s->proj_out_b = get(b, V1(C), "%s.proj_out.bias", p);
}

static void bind_conv(binder *b, unet_conv *cv, int C, const char *p) {
    cv->w = get(b, V4(C, C, 3, 3), "%s.weight", p);
    cv->b = get(b, V1(C), "%s.bias", p);
}

sdc_status sdc_unet_load(const sdc_model *m, sdc_unet **out, char *err, size_t errlen) {
    if (!m || !out) return sdc_fail(err, errlen, SDC_E_INVALID, "unet: no model");
    *out = NULL;
    sdc_unet *w = calloc(1, sizeof *w);
    if (!w) return sdc_fail(err, errlen, SDC_E_NOMEM, "unet: out of memory");
    binder b = {m, SDC_OK, err, errlen};
    char p[96];

    const sdc_tensor *ci = sdc_model_get(m, SDC_PREFIX_UNET "input_blocks.0.0.weight");
    w->in_channels = ci && ci->ndim == 4 && (ci->shape[1] == 4 || ci->shape[1] == 9) ? (int)ci->shape[1] : 4;
    w->time1_w = get(&b, V2(UNET_TEMB, UNET_CH), "time_embed.0.weight");
    w->time1_b = get(&b, V1(UNET_TEMB), "time_embed.0.bias");
    w->time2_w = get(&b, V2(UNET_TEMB, UNET_TEMB), "time_embed.2.weight");
    w->time2_b = get(&b, V1(UNET_TEMB), "time_embed.2.bias");
    w->conv_in_w = get(&b, V4(UNET_CH, w->in_channels, 3, 3), "input_blocks.0.0.weight");
    w->conv_in_b = get(&b, V1(UNET_CH), "input_blocks.0.0.bias");

    /* input blocks: per level 2 x (ResBlock [+ SpatialTransformer]), then a Downsample
     * except at the last level. skip[] records each block's output channels. */
    int skip[UNET_BLOCKS], ch = UNET_CH, n = 1;
    skip[0] = UNET_CH;
    w->in[0].cout = UNET_CH;
    for (int l = 0; l < UNET_LEVELS; l++) {
        int cout = UNET_CH * CH_MULT[l];
        for (int r = 0; r < 2; r++, n++) {
            unet_block *k = &w->in[n];
            snprintf(p, sizeof p, "input_blocks.%d.0", n);
            k->has_res = true;
            bind_res(&b, &k->res, ch, cout, p);
            ch = cout;
            if (l < UNET_LEVELS - 1) {
                snprintf(p, sizeof p, "input_blocks.%d.1", n);
                k->has_xf = true;
                bind_xf(&b, &k->xf, ch, p);
            }
            skip[n] = k->cout = ch;
        }
        if (l < UNET_LEVELS - 1) {
            unet_block *k = &w->in[n];
            snprintf(p, sizeof p, "input_blocks.%d.0.op", n);
            k->has_down = true;
            bind_conv(&b, &k->conv, ch, p);
            skip[n++] = k->cout = ch;
        }
    }
    bind_res(&b, &w->mid_res1, ch, ch, "middle_block.0");
    bind_xf(&b, &w->mid_xf, ch, "middle_block.1");
    bind_res(&b, &w->mid_res2, ch, ch, "middle_block.2");

    /* output blocks: per level (deepest first) 3 x (concat skip, ResBlock [+ transformer]),
     * the third followed by an Upsample except at the top level. */
    n = 0;
    int top = UNET_BLOCKS;
    for (int l = UNET_LEVELS - 1; l >= 0; l--) {
        int cout = UNET_CH * CH_MULT[l];
        for (int r = 0; r < 3; r++, n++) {
            unet_block *k = &w->out[n];
            int sub = 0;
            snprintf(p, sizeof p, "output_blocks.%d.%d", n, sub++);
            k->has_res = true;
            bind_res(&b, &k->res, ch + skip[--top], cout, p);
            ch = cout;
            if (l < UNET_LEVELS - 1) {
                snprintf(p, sizeof p, "output_blocks.%d.%d", n, sub++);
                k->has_xf = true;
                bind_xf(&b, &k->xf, ch, p);
            }
            if (l > 0 && r == 2) {
                snprintf(p, sizeof p, "output_blocks.%d.%d.conv", n, sub++);
                k->has_up = true;
                bind_conv(&b, &k->conv, ch, p);
            }
            k->cout = ch;
        }
    }
    w->norm_out_w = get(&b, V1(UNET_CH), "out.0.weight");
    w->norm_out_b = get(&b, V1(UNET_CH), "out.0.bias");
    w->conv_out_w = get(&b, V4(4, UNET_CH, 3, 3), "out.2.weight");
    w->conv_out_b = get(&b, V1(4), "out.2.bias");
    if (b.st != SDC_OK) {
        free(w);
        return b.st;
    }
    *out = w;
    return SDC_OK;
}

void sdc_unet_free(sdc_unet *w) { free(w); }
int sdc_unet_in_channels(const sdc_unet *w) { return w ? w->in_channels : 0; }

/* ------------------------------------------------------------------ forward */

static const sdc_act NONE;

/* ref: ldm openaimodel.ResBlock._forward; diffusers ResnetBlock2D.forward
 *   h = conv1(silu(gn(x))) + emb_layers(silu(emb))[:, :, None, None]
 *   h = conv2(dropout(silu(gn(h))))          (dropout: identity at inference)
 *   return skip(x) + h                        (skip: 1x1 conv when channels change) */
static sdc_act resblock(sdc_ctx *c, const unet_res *r, sdc_act x, sdc_act emb_silu) {
    const size_t m = sdc_mark(c);
    sdc_act h = sdc_group_norm(c, x, UNET_GROUPS, EPS_RES, r->norm1_w, r->norm1_b, true);  // [B, cin, H, W]
    h = sdc_conv2d(c, h, r->conv1_w, r->conv1_b, 1, 1);                                    // [B, cout, H, W]
    sdc_act e = sdc_linear(c, emb_silu, r->emb_w, r->emb_b);                               // [B, cout]
    h = sdc_keep(c, m, sdc_add(c, h, e));                      // per channel; frees the [B, cin, H, W] temporary
    h = sdc_group_norm(c, h, UNET_GROUPS, EPS_RES, r->norm2_w, r->norm2_b, true);
    h = sdc_conv2d(c, h, r->conv2_w, r->conv2_b, 1, 1);                                    // [B, cout, H, W]
    sdc_act s = r->skip_w ? sdc_conv2d(c, x, r->skip_w, r->skip_b, 1, 0) : x;
    return sdc_add(c, s, h);
}

/* Multi-head attention of tokens x [B, N, C] over kv [B, M, Ckv]; kv = x for self-attention.
 * ref: diffusers Attention + AttnProcessor (scale head_dim^-0.5, no q/k/v bias) */
static sdc_act attention(sdc_ctx *c, const unet_attn *a, sdc_act x, sdc_act kv, int64_t C, const sdc_act *kvp) {
    sdc_act q = sdc_linear(c, x, a->q_w, NULL);                    // [B, N, C]
    sdc_act k = kvp ? kvp[0] : sdc_linear(c, kv, a->k_w, NULL);    // [B, M, C]
    sdc_act v = kvp ? kvp[1] : sdc_linear(c, kv, a->v_w, NULL);    // [B, M, C]
    sdc_act o = sdc_attention(c, q, 0, k, 0, v, 0, C, UNET_HEADS, false);  // [B, N, C]
    return sdc_linear(c, o, a->out_w, a->out_b);   // to_out.0 (to_out.1 is dropout)
}

/* ref: ldm attention.py SpatialTransformer.forward + BasicTransformerBlock._forward;
 * diffusers Transformer2DModel (use_linear_projection=False) + BasicTransformerBlock
 *   h = proj_in(gn(x)) as tokens [B, HW, C]
 *   h = attn1(ln1(h)) + h;  h = attn2(ln2(h), context) + h;  h = ff(ln3(h)) + h
 *   ff(u) = net.2(a * gelu(g)), (a | g) = net.0.proj(u)        (GEGLU, exact-erf gelu)
 *   return proj_out(h) as [B, C, H, W] + x */
static sdc_act transformer(sdc_ctx *c, const unet_xf *s, sdc_act x, sdc_act context, const sdc_act *ckv) {
    int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    size_t m = sdc_mark(c);
    sdc_act h = sdc_group_norm(c, x, UNET_GROUPS, EPS_XF_GN, s->norm_w, s->norm_b, false);  // [B, C, H, W]
    h = sdc_transpose(c, sdc_reshape(c, h, 3, (const int64_t[]){B, C, H * W}));            // [B, HW, C]
    h = sdc_linear(c, h, s->proj_in_w, s->proj_in_b);   // proj_in: a 1x1 conv = linear over tokens
    h = sdc_keep(c, m, h);
    /* h stays at m: each residual sub-block adds its result into h in place and frees its
     * temporaries (the same sums as h + f into a new activation, without the copy down) */
    const size_t mh = sdc_mark(c);

    sdc_act n = sdc_layer_norm(c, h, EPS_LN, s->ln1_w, s->ln1_b);
    sdc_add_into(c, h, h, attention(c, &s->attn1, n, n, C, NULL));    // self-attention
    sdc_release(c, mh);
    n = sdc_layer_norm(c, h, EPS_LN, s->ln2_w, s->ln2_b);
    sdc_add_into(c, h, h, attention(c, &s->attn2, n, context, C, ckv)); // cross-attention
    sdc_release(c, mh);
    n = sdc_layer_norm(c, h, EPS_LN, s->ln3_w, s->ln3_b);
    /* the feed-forward is per token: run it over FF_ROWS tokens at a time, so its [rows, 8C]
     * and [rows, 4C] temporaries stay small (at 64x64 latents, batch 2: 16 MB instead of
     * 126 MB), and add each chunk's result into its rows of h. Every row's result is the same
     * as in one call. */
    const int64_t tokens = B * H * W;
    for (int64_t r = 0; r < tokens && c->status == SDC_OK; r += FF_ROWS) {
        const size_t mr = sdc_mark(c);
        const int64_t nr = tokens - r < FF_ROWS ? tokens - r : FF_ROWS;
        sdc_act f = sdc_linear(c, sdc_rows(c, n, r, nr), s->ff_in_w, s->ff_in_b);  // [nr, 8C]
        f = sdc_geglu(c, f);                                                        // [nr, 4C]
        const sdc_act hr = sdc_rows(c, h, r, nr);
        sdc_add_into(c, hr, hr, sdc_linear(c, f, s->ff_out_w, s->ff_out_b));        // [nr, C]
        sdc_release(c, mr);
    }
    sdc_release(c, mh);

    h = sdc_linear(c, h, s->proj_out_w, s->proj_out_b);                        // proj_out
    h = sdc_reshape(c, sdc_transpose(c, h), 4, (const int64_t[]){B, C, H, W});  // [B, C, H, W]
    return sdc_add(c, h, x);
}

/* One input or output block (after the skip concat): ResBlock, transformer, resampling.
 * m is the arena mark where the block's scope starts: the ResBlock's temporaries, and an
 * input allocated after m (an output block's concat), are freed once the ResBlock is done.
 * Downsample: 3x3 conv stride 2 pad 1 (ref: ldm Downsample, diffusers Downsample2D).
 * Upsample: nearest to (up_h, up_w) then 3x3 conv (ref: ldm Upsample; diffusers Upsample2D
 * with output_size = the next skip's size, which is 2x unless a side was odd). */
static sdc_act block(sdc_ctx *c, const unet_block *k, sdc_act h, sdc_act emb_silu, sdc_act context,
                     const sdc_act *ckv, int64_t up_h, int64_t up_w, size_t m) {
    if (k->has_res) h = sdc_keep(c, m, resblock(c, &k->res, h, emb_silu));
    if (k->has_xf) h = transformer(c, &k->xf, h, context, ckv);
    if (k->has_down) h = sdc_conv2d(c, h, k->conv.w, k->conv.b, 2, 1);
    if (k->has_up && c->status == SDC_OK) {
        h = up_h == 2 * h.shape[2] && up_w == 2 * h.shape[3] ? sdc_upsample2x(c, h)
                                                             : sdc_upsample_nearest(c, h, up_h, up_w);
        h = sdc_conv2d(c, h, k->conv.w, k->conv.b, 1, 1);
    }
    return h;
}

/* ------------------------------------------------------------------ cross-attention K/V */

/* Slot of a transformer in sdc_unet_kv: input block i -> i, the middle one -> UNET_BLOCKS,
 * output block i -> UNET_BLOCKS + 1 + i. */
#define KV_SLOTS (2 * UNET_BLOCKS + 1)

struct sdc_unet_kv {
    const sdc_unet *w;
    const void *context;       /* the context's data, to catch a cache used with another one */
    int64_t B, T;
    sdc_act kv[KV_SLOTS][2];   /* [B, T, C] keys and values; unset where the block has no transformer */
};

static const unet_xf *slot_xf(const sdc_unet *w, int i) {
    const unet_block *k = i < UNET_BLOCKS ? &w->in[i] : i > UNET_BLOCKS ? &w->out[i - UNET_BLOCKS - 1] : NULL;
    return !k ? &w->mid_xf : k->has_xf ? &k->xf : NULL;
}

static bool context_ok(sdc_ctx *c, sdc_act context) {
    char cs[96];
    if (context.data && context.ndim == 3 && context.shape[2] == UNET_CTX) return true;
    sdc_ctx_fail(c, SDC_E_SHAPE, "unet: context %s (expected [B, T, %d])",
                 context.data ? sdc_shape_str(context.shape, context.ndim, cs, sizeof cs) : "(none)", UNET_CTX);
    return false;
}

sdc_unet_kv *sdc_unet_kv_new(sdc_ctx *c, const sdc_unet *w, sdc_act context) {
    if (c->status != SDC_OK) return NULL;
    if (!w) {
        sdc_ctx_fail(c, SDC_E_INVALID, "unet kv: no unet");
        return NULL;
    }
    if (!context_ok(c, context)) return NULL;
    sdc_unet_kv *kv = calloc(1, sizeof *kv);
    if (!kv) {
        sdc_ctx_fail(c, SDC_E_NOMEM, "unet kv: out of memory");
        return NULL;
    }
    kv->w = w;
    kv->context = context.data;
    kv->B = context.shape[0];
    kv->T = context.shape[1];
    for (int i = 0; i < KV_SLOTS && c->status == SDC_OK; i++) {
        const unet_xf *s = slot_xf(w, i);
        if (!s) continue;
        kv->kv[i][0] = sdc_linear(c, context, s->attn2.k_w, NULL);
        kv->kv[i][1] = sdc_linear(c, context, s->attn2.v_w, NULL);
    }
    if (c->status != SDC_OK) {
        free(kv);
        return NULL;
    }
    return kv;
}

void sdc_unet_kv_free(sdc_unet_kv *kv) { free(kv); }

sdc_act sdc_unet_forward(sdc_ctx *c, const sdc_unet *w, sdc_act x, const float *t, sdc_act context) {
    return sdc_unet_forward_kv(c, w, x, t, context, NULL);
}

sdc_act sdc_unet_forward_kv(sdc_ctx *c, const sdc_unet *w, sdc_act x, const float *t, sdc_act context,
                            const sdc_unet_kv *kv) {
    if (c->status != SDC_OK) return NONE;
    char xs[96];
    if (!context_ok(c, context)) return NONE;
    if (!w || !t || !x.data || x.ndim != 4 || x.shape[1] != w->in_channels || context.shape[0] != x.shape[0]) {
        sdc_ctx_fail(c, SDC_E_SHAPE, "unet: x %s (expected [%lld, %d, h, w] for a context of batch %lld)",
                     x.data ? sdc_shape_str(x.shape, x.ndim, xs, sizeof xs) : "(none)",
                     (long long)context.shape[0], w ? w->in_channels : 0, (long long)context.shape[0]);
        return NONE;
    }
    if (kv && (kv->w != w || kv->context != context.data || kv->B != context.shape[0] || kv->T != context.shape[1])) {
        sdc_ctx_fail(c, SDC_E_INVALID, "unet: the cross-attention K/V cache was made for another unet or context");
        return NONE;
    }
#define CKV(i) (kv ? kv->kv[i] : NULL)
    const int64_t B = x.shape[0];
    const size_t m0 = sdc_mark(c);

    /* time embedding. ref: ldm openaimodel.UNetModel.forward (timestep_embedding, time_embed);
     * diffusers Timesteps(320, flip_sin_to_cos=True, downscale_freq_shift=0) + TimestepEmbedding */
    sdc_act temb = sdc_timestep_embedding(c, t, B, UNET_CH);        // [B, 320]: cos | sin
    sdc_act emb = sdc_linear(c, temb, w->time1_w, w->time1_b);      // [B, 1280]
    emb = sdc_linear(c, sdc_silu(c, emb), w->time2_w, w->time2_b);  // [B, 1280]
    sdc_dump(c, "unet.time_emb", emb);
    /* every ResBlock's emb_layers starts with SiLU: compute it once */
    sdc_act emb_silu = sdc_keep(c, m0, sdc_silu(c, emb));               // [B, 1280]

    /* input blocks: hs[i] (the skip connections) stay on the arena stack, hs[i] at mark ms[i] */
    sdc_act hs[UNET_BLOCKS];
    size_t ms[UNET_BLOCKS];
    char name[32];
    ms[0] = sdc_mark(c);
    hs[0] = sdc_conv2d(c, x, w->conv_in_w, w->conv_in_b, 1, 1);     // [B, 320, h, w]
    sdc_dump(c, "unet.in.0", hs[0]);
    for (int i = 1; i < UNET_BLOCKS; i++) {
        ms[i] = sdc_mark(c);
        hs[i] = sdc_keep(c, ms[i], block(c, &w->in[i], hs[i - 1], emb_silu, context, CKV(i), 0, 0, ms[i]));
        snprintf(name, sizeof name, "unet.in.%d", i);
        sdc_dump(c, name, hs[i]);
    }

    /* middle block. ref: ldm middle_block; diffusers UNetMidBlock2DCrossAttn */
    size_t mm = sdc_mark(c);
    sdc_act h = resblock(c, &w->mid_res1, hs[UNET_BLOCKS - 1], emb_silu);  // [B, 1280, h/8, w/8]
    h = transformer(c, &w->mid_xf, h, context, CKV(UNET_BLOCKS));
    h = sdc_keep(c, mm, resblock(c, &w->mid_res2, h, emb_silu));
    sdc_dump(c, "unet.mid", h);

    /* output blocks: h = block(cat[h, hs.pop()]); each result replaces the popped skip on the
     * stack. The upsample target is the size of the next skip to be concatenated. */
    for (int i = 0; i < UNET_BLOCKS; i++) {
        int s = UNET_BLOCKS - 1 - i;
        int64_t up_h = s > 0 ? hs[s - 1].shape[2] : 0, up_w = s > 0 ? hs[s - 1].shape[3] : 0;
        const size_t mc = sdc_mark(c);
        sdc_act cat = sdc_concat(c, h, hs[s]);                       // [B, C + Cskip, ., .]
        h = sdc_keep(c, ms[s], block(c, &w->out[i], cat, emb_silu, context, CKV(UNET_BLOCKS + 1 + i), up_h, up_w, mc));
        snprintf(name, sizeof name, "unet.out.%d", i);
        sdc_dump(c, name, h);
    }

    /* out: GroupNorm32 + SiLU, conv 320 -> 4. ref: ldm UNetModel.out; diffusers
     * conv_norm_out, conv_act, conv_out */
    h = sdc_group_norm(c, h, UNET_GROUPS, EPS_RES, w->norm_out_w, w->norm_out_b, true);
    h = sdc_conv2d(c, h, w->conv_out_w, w->conv_out_b, 1, 1);       // [B, 4, h, w]
    h = sdc_keep(c, m0, h);
    sdc_dump(c, "unet.eps", h);
    return h;
#undef CKV
}
