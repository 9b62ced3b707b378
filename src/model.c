/* model.c - the model store: sniff the format, open the file(s), expose every tensor under
 * its canonical (original LDM checkpoint) name, detect the architecture, check the SD 1.x
 * tensor set, per-component page release.
 *
 * Sources: one GGUF file, one safetensors file, or a diffusers folder (three safetensors
 * files). Tensor views point into the readers' mappings; nothing is copied. Names:
 *  - LDM names are kept as they are (that is what the original checkpoints, and the GGUF
 *    files stable-diffusion.cpp writes for SD 1.x, use);
 *  - old transformers layouts "cond_stage_model.transformer.{embeddings,encoder,
 *    final_layer_norm}.*" get the "text_model." level inserted;
 *  - diffusers names (in a diffusers folder, or in one file under "unet.", "text_encoder.",
 *    "vae." prefixes) are mapped to the LDM names; the correspondence is the one of diffusers'
 *    scripts/convert_diffusers_to_original_stable_diffusion.py, re-derived here from the two
 *    architectures (block counts of SD 1.x: 2 ResBlocks per UNet down level, 3 per up level,
 *    4 VAE levels);
 *  - shapes are normalised: VAE mid-block attention q/k/v/proj_out and UNet transformer
 *    proj_in/proj_out stored as Linear [O,I] become [O,I,1,1] (same bytes). Block-quantized
 *    tensors are left as stored (their blocks run along the innermost dimension, which a
 *    trailing 1x1 would break); sdc_model_check then reports them.
 *  - anything else is kept under its own name (component OTHER unless its prefix says). */
#include "model.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "gguf.h"
#include "safetensors.h"

/* ------------------------------------------------------------------ the model */

typedef struct model_source {
    char *path;
    sdc_gguf *gguf;
    sdc_st *st;
    const char *label; /* diffusers sub-folder ("unet", ...) or NULL */
} model_source;

typedef struct model_entry {
    sdc_tensor t;       /* t.name == name */
    char *name;         /* canonical, owned */
    const char *stored; /* name as stored in the file (borrowed from the reader), or NULL */
    int source;         /* index into src, -1 for in-memory tensors */
    sdc_component comp;
} model_entry;

typedef struct model_meta {
    int source;
    int64_t index;
    char *key; /* owned when prefixed (diffusers), else NULL and the reader's key is used */
} model_meta;

enum { MAX_SOURCES = 3 };

struct sdc_model {
    model_source src[MAX_SOURCES];
    int nsrc;
    char format[32];

    model_entry *e;
    int n, cap;
    int32_t *hash; /* open addressing, -1 = empty */
    uint32_t hcap; /* power of two */

    model_meta *meta;
    int nmeta;

    sdc_arch arch;
    int in_channels;
    char arch_name[256];
};

static const char *const COMPONENT_NAMES[SDC_COMPONENT_COUNT] = {"clip", "unet", "vae", "other"};

const char *sdc_component_name(sdc_component c) {
    return (unsigned)c < SDC_COMPONENT_COUNT ? COMPONENT_NAMES[c] : "?";
}

static bool starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

sdc_component sdc_model_component_of_name(const char *name) {
    if (!name) return SDC_COMPONENT_OTHER;
    if (starts(name, SDC_PREFIX_UNET)) return SDC_COMPONENT_UNET;
    if (starts(name, SDC_PREFIX_CLIP)) return SDC_COMPONENT_CLIP;
    if (starts(name, SDC_PREFIX_VAE)) return SDC_COMPONENT_VAE;
    return SDC_COMPONENT_OTHER;
}

/* ------------------------------------------------------------------ name mapping */

/* If s starts with word followed by '.', returns the rest after the '.'. */
static const char *eat(const char *s, const char *word) {
    size_t n = strlen(word);
    return strncmp(s, word, n) == 0 && s[n] == '.' ? s + n + 1 : NULL;
}

/* Reads a small decimal index followed by '.', returns the rest. */
static const char *eat_int(const char *s, int *v) {
    if (*s < '0' || *s > '9') return NULL;
    int x = 0;
    while (*s >= '0' && *s <= '9') {
        x = x * 10 + (*s - '0');
        if (x > 10000) return NULL;
        s++;
    }
    if (*s != '.') return NULL;
    *v = x;
    return s + 1;
}

typedef struct name_pair {
    const char *from, *to;
} name_pair;

/* Finds the entry whose `from` is a dotted prefix of s: sets *to, returns the rest. */
static const char *eat_table(const char *s, const name_pair *tab, size_t n, const char **to) {
    for (size_t i = 0; i < n; i++) {
        const char *r = eat(s, tab[i].from);
        if (r) {
            *to = tab[i].to;
            return r;
        }
    }
    return NULL;
}

static bool put(char *out, size_t outlen, const char *fmt, ...) SDC_PRINTF(3, 4);
static bool put(char *out, size_t outlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(out, outlen, fmt, ap);
    va_end(ap);
    return k >= 0 && (size_t)k < outlen;
}

/* diffusers ResnetBlock2D -> LDM ResBlock (UNet) */
static const name_pair UNET_RES[] = {
    {"norm1", "in_layers.0"},       {"conv1", "in_layers.2"},  {"time_emb_proj", "emb_layers.1"},
    {"norm2", "out_layers.0"},      {"conv2", "out_layers.3"}, {"conv_shortcut", "skip_connection"},
};
/* diffusers ResnetBlock2D -> LDM ResnetBlock (VAE) */
static const name_pair VAE_RES[] = {
    {"norm1", "norm1"}, {"conv1", "conv1"}, {"norm2", "norm2"}, {"conv2", "conv2"}, {"conv_shortcut", "nin_shortcut"},
};
/* diffusers Attention (new and pre-0.14 names) -> LDM AttnBlock */
static const name_pair VAE_ATTN[] = {
    {"group_norm", "norm"}, {"to_q", "q"},  {"to_k", "k"},  {"to_v", "v"}, {"to_out.0", "proj_out"},
    {"query", "q"},         {"key", "k"},   {"value", "v"}, {"proj_attn", "proj_out"},
};
static const name_pair UNET_TOP[] = {
    {"time_embedding.linear_1", "time_embed.0"}, {"time_embedding.linear_2", "time_embed.2"},
    {"conv_in", "input_blocks.0.0"},             {"conv_norm_out", "out.0"},
    {"conv_out", "out.2"},
};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* UNet: diffusers name (relative to the UNet) -> LDM name. SD 1.x layout: down level i holds
 * ResBlocks input_blocks.3i+1, 3i+2 and its downsampler input_blocks.3i+3; up level i holds
 * output_blocks.3i..3i+2, its upsampler sits in output_blocks.3i+2 after the ResBlock (index 1)
 * or after the ResBlock and transformer (index 2; every up level but the first has attention). */
static bool map_unet(const char *s, char *out, size_t outlen) {
    const char *to, *r;
    int i, j;
    if ((r = eat_table(s, UNET_TOP, COUNT(UNET_TOP), &to)))
        return put(out, outlen, SDC_PREFIX_UNET "%s.%s", to, r);
    if ((r = eat(s, "down_blocks")) && (r = eat_int(r, &i))) {
        const char *q;
        if ((q = eat(r, "resnets")) && (q = eat_int(q, &j)) && (q = eat_table(q, UNET_RES, COUNT(UNET_RES), &to)))
            return put(out, outlen, SDC_PREFIX_UNET "input_blocks.%d.0.%s.%s", 3 * i + j + 1, to, q);
        if ((q = eat(r, "attentions")) && (q = eat_int(q, &j)))
            return put(out, outlen, SDC_PREFIX_UNET "input_blocks.%d.1.%s", 3 * i + j + 1, q);
        if ((q = eat(r, "downsamplers")) && (q = eat(q, "0")) && (q = eat(q, "conv")))
            return put(out, outlen, SDC_PREFIX_UNET "input_blocks.%d.0.op.%s", 3 * i + 3, q);
        return false;
    }
    if ((r = eat(s, "mid_block"))) {
        const char *q;
        if ((q = eat(r, "resnets")) && (q = eat_int(q, &j)) && (q = eat_table(q, UNET_RES, COUNT(UNET_RES), &to)))
            return put(out, outlen, SDC_PREFIX_UNET "middle_block.%d.%s.%s", 2 * j, to, q);
        if ((q = eat(r, "attentions")) && (q = eat(q, "0")))
            return put(out, outlen, SDC_PREFIX_UNET "middle_block.1.%s", q);
        return false;
    }
    if ((r = eat(s, "up_blocks")) && (r = eat_int(r, &i))) {
        const char *q;
        if ((q = eat(r, "resnets")) && (q = eat_int(q, &j)) && (q = eat_table(q, UNET_RES, COUNT(UNET_RES), &to)))
            return put(out, outlen, SDC_PREFIX_UNET "output_blocks.%d.0.%s.%s", 3 * i + j, to, q);
        if ((q = eat(r, "attentions")) && (q = eat_int(q, &j)))
            return put(out, outlen, SDC_PREFIX_UNET "output_blocks.%d.1.%s", 3 * i + j, q);
        if ((q = eat(r, "upsamplers")) && (q = eat(q, "0")) && (q = eat(q, "conv")))
            return put(out, outlen, SDC_PREFIX_UNET "output_blocks.%d.%d.conv.%s", 3 * i + 2, i == 0 ? 1 : 2, q);
        return false;
    }
    return false;
}

/* VAE: diffusers AutoencoderKL name -> LDM name. The decoder's up levels are numbered in
 * reverse (diffusers up_blocks.0 is LDM decoder.up.3). */
static bool map_vae(const char *s, char *out, size_t outlen) {
    const char *to, *r, *q;
    int i, j;
    if (eat(s, "quant_conv") || eat(s, "post_quant_conv")) return put(out, outlen, SDC_PREFIX_VAE "%s", s);
    const char *coder = NULL;
    if ((r = eat(s, "encoder")))
        coder = "encoder";
    else if ((r = eat(s, "decoder")))
        coder = "decoder";
    else
        return false;
    bool enc = coder[0] == 'e';
    if (eat(r, "conv_in") || eat(r, "conv_out")) return put(out, outlen, SDC_PREFIX_VAE "%s.%s", coder, r);
    if ((q = eat(r, "conv_norm_out"))) return put(out, outlen, SDC_PREFIX_VAE "%s.norm_out.%s", coder, q);
    if ((q = eat(r, "mid_block"))) {
        const char *p;
        if ((p = eat(q, "resnets")) && (p = eat_int(p, &j)) && (p = eat_table(p, VAE_RES, COUNT(VAE_RES), &to)))
            return put(out, outlen, SDC_PREFIX_VAE "%s.mid.block_%d.%s.%s", coder, j + 1, to, p);
        if ((p = eat(q, "attentions")) && (p = eat(p, "0")) && (p = eat_table(p, VAE_ATTN, COUNT(VAE_ATTN), &to)))
            return put(out, outlen, SDC_PREFIX_VAE "%s.mid.attn_1.%s.%s", coder, to, p);
        return false;
    }
    if ((q = eat(r, enc ? "down_blocks" : "up_blocks")) && (q = eat_int(q, &i))) {
        int level = enc ? i : 3 - i;
        const char *p;
        if (level < 0) return false;
        if ((p = eat(q, "resnets")) && (p = eat_int(p, &j)) && (p = eat_table(p, VAE_RES, COUNT(VAE_RES), &to)))
            return put(out, outlen, SDC_PREFIX_VAE "%s.%s.%d.block.%d.%s.%s", coder, enc ? "down" : "up", level, j, to,
                       p);
        if ((p = eat(q, enc ? "downsamplers" : "upsamplers")) && (p = eat(p, "0")) && (p = eat(p, "conv")))
            return put(out, outlen, SDC_PREFIX_VAE "%s.%s.%d.%s.conv.%s", coder, enc ? "down" : "up", level,
                       enc ? "downsample" : "upsample", p);
        return false;
    }
    return false;
}

bool sdc_model_diffusers_name(sdc_component c, const char *name, char *out, size_t outlen) {
    const char *r;
    switch (c) {
    case SDC_COMPONENT_CLIP:
        return (r = eat(name, "text_model")) && put(out, outlen, SDC_PREFIX_CLIP "%s", r);
    case SDC_COMPONENT_UNET: return map_unet(name, out, outlen);
    case SDC_COMPONENT_VAE: return map_vae(name, out, outlen);
    default: return false;
    }
}

/* The canonical name of a tensor stored as `name`; `dir` is the diffusers component of the
 * file it came from (SDC_COMPONENT_OTHER for a single file). Unknown names stay as they are. */
static void canonical_name(sdc_component dir, const char *name, char *out, size_t outlen) {
    const char *r;
    if (dir != SDC_COMPONENT_OTHER) {
        if (sdc_model_diffusers_name(dir, name, out, outlen)) return;
    } else if ((r = eat(name, "unet"))) {
        if (sdc_model_diffusers_name(SDC_COMPONENT_UNET, r, out, outlen)) return;
    } else if ((r = eat(name, "text_encoder"))) {
        if (sdc_model_diffusers_name(SDC_COMPONENT_CLIP, r, out, outlen)) return;
    } else if ((r = eat(name, "vae"))) {
        if (sdc_model_diffusers_name(SDC_COMPONENT_VAE, r, out, outlen)) return;
    } else if ((r = eat(name, "cond_stage_model.transformer")) &&
               (eat(r, "embeddings") || eat(r, "encoder") || eat(r, "final_layer_norm"))) {
        /* transformers < 4.19 had no text_model level */
        if (put(out, outlen, SDC_PREFIX_CLIP "%s", r)) return;
    }
    snprintf(out, outlen, "%s", name); /* the caller passes names that fit */
}

static bool ends(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && memcmp(s + a - b, suf, b) == 0;
}

/* Linear [O,I] stored where the original has a 1x1 conv [O,I,1,1]. */
static void normalise_shape(sdc_tensor *t) {
    if (t->ndim != 2) return;
    const sdc_type_traits *tr = sdc_type_traits_of(t->type);
    if (!tr || tr->is_quant) return;
    const char *n = t->name;
    bool conv1x1 = false;
    if (starts(n, SDC_PREFIX_VAE) && strstr(n, ".mid.attn_1.") &&
        (ends(n, ".q.weight") || ends(n, ".k.weight") || ends(n, ".v.weight") || ends(n, ".proj_out.weight")))
        conv1x1 = true;
    if (starts(n, SDC_PREFIX_UNET) && (ends(n, ".proj_in.weight") || ends(n, ".proj_out.weight"))) conv1x1 = true;
    if (!conv1x1) return;
    t->shape[2] = 1;
    t->shape[3] = 1;
    t->ndim = 4;
}

/* ------------------------------------------------------------------ table and lookup */

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int find(const sdc_model *m, const char *name) {
    if (!m || !name || !m->hash) return -1;
    uint32_t mask = m->hcap - 1;
    for (uint32_t k = (uint32_t)hash_str(name) & mask;; k = (k + 1) & mask) {
        int32_t i = m->hash[k];
        if (i < 0) return -1;
        if (strcmp(m->e[i].name, name) == 0) return i;
    }
}

static sdc_status add_entry(sdc_model *m, const sdc_tensor *t, const char *stored, int source, sdc_component dir,
                            char *err, size_t errlen) {
    char name[512];
    const char *stn = t->name ? t->name : "";
    if (strlen(stn) < 400)
        canonical_name(dir, stn, name, sizeof name);
    else
        name[0] = '\0';

    if (m->n == m->cap) {
        int nc = m->cap ? m->cap * 2 : 256;
        model_entry *ne = realloc(m->e, (size_t)nc * sizeof *ne);
        if (!ne) return sdc_fail(err, errlen, SDC_E_NOMEM, "out of memory for the tensor table");
        m->e = ne;
        m->cap = nc;
    }
    model_entry *e = &m->e[m->n];
    memset(e, 0, sizeof *e);
    e->name = name[0] ? sdc_strndup(name, strlen(name)) : sdc_strndup(stn, strlen(stn));
    if (!e->name) return sdc_fail(err, errlen, SDC_E_NOMEM, "out of memory for the tensor table");
    e->t = *t;
    e->t.name = e->name;
    e->stored = stored;
    e->source = source;
    e->comp = sdc_model_component_of_name(e->name);
    normalise_shape(&e->t);
    m->n++;
    return SDC_OK;
}

static sdc_status build_index(sdc_model *m, char *err, size_t errlen) {
    uint32_t cap = 64;
    while (cap < (uint32_t)m->n * 2u + 1u) cap <<= 1;
    m->hash = malloc(cap * sizeof *m->hash);
    if (!m->hash) return sdc_fail(err, errlen, SDC_E_NOMEM, "out of memory for the tensor index");
    memset(m->hash, 0xff, cap * sizeof *m->hash);
    m->hcap = cap;
    for (int i = 0; i < m->n; i++) {
        uint32_t k = (uint32_t)hash_str(m->e[i].name) & (cap - 1);
        for (;; k = (k + 1) & (cap - 1)) {
            int32_t j = m->hash[k];
            if (j < 0) break;
            if (strcmp(m->e[j].name, m->e[i].name) == 0) {
                const model_entry *a = &m->e[j], *b = &m->e[i];
                return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: tensor %s appears twice (stored as %s and %s)",
                                b->source >= 0 ? m->src[b->source].path : "(memory)", b->name,
                                a->stored ? a->stored : a->name, b->stored ? b->stored : b->name);
            }
        }
        m->hash[k] = i;
    }
    return SDC_OK;
}

/* ------------------------------------------------------------------ detection */

static const sdc_tensor *get(const sdc_model *m, const char *name) {
    int i = find(m, name);
    return i < 0 ? NULL : &m->e[i].t;
}

static bool shape4(const sdc_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d) {
    return t && t->ndim == 4 && t->shape[0] == a && t->shape[1] == b && t->shape[2] == c && t->shape[3] == d;
}

static void set_guess(sdc_model *m, const char *fmt, ...) SDC_PRINTF(2, 3);
static void set_guess(sdc_model *m, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = snprintf(m->arch_name, sizeof m->arch_name, "looks like ");
    vsnprintf(m->arch_name + k, sizeof m->arch_name - (size_t)k, fmt, ap);
    va_end(ap);
    m->arch = SDC_ARCH_UNKNOWN;
}

static bool contains_any(const char *s, const char *const *pats, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strstr(s, pats[i])) return true;
    return false;
}

static void detect(sdc_model *m) {
    static const char *const LORA[] = {"lora_unet_", "lora_te_", "lora_te1_", "lora_te2_", ".lora_down.", ".lora_up.",
                                       ".lora_A.", ".lora_B.", ".hada_w1_", ".lokr_w1"};
    static const char *const MMDIT[] = {"joint_blocks.", "double_blocks.", "single_blocks.", "single_transformer_blocks.",
                                        "x_embedder."};
    const char *lora = NULL, *mmdit = NULL, *sdxl = NULL, *control = NULL, *openclip = NULL;
    bool unet = false, clip = false, vae = false, bare_vae = false, bare_clip = false, bare_unet = false;
    for (int i = 0; i < m->n; i++) {
        const char *n = m->e[i].name;
        if (!lora && contains_any(n, LORA, COUNT(LORA))) lora = n;
        if (!mmdit && contains_any(n, MMDIT, COUNT(MMDIT))) mmdit = n;
        if (!sdxl && (starts(n, "conditioner.embedders.") || starts(n, SDC_PREFIX_UNET "label_emb.")))
            sdxl = n;
        if (!control && (starts(n, "control_model.") || starts(n, "input_hint_block.") || starts(n, "zero_convs.") ||
                         starts(n, "controlnet_cond_embedding.") || starts(n, "controlnet_down_blocks.")))
            control = n;
        if (!openclip && starts(n, "cond_stage_model.model.")) openclip = n;
        unet |= starts(n, SDC_PREFIX_UNET);
        clip |= starts(n, SDC_PREFIX_CLIP);
        vae |= starts(n, SDC_PREFIX_VAE);
        bare_vae |= starts(n, "encoder.") || starts(n, "decoder.") || starts(n, "post_quant_conv.");
        bare_clip |= starts(n, "text_model.");
        bare_unet |= starts(n, "input_blocks.") || starts(n, "down_blocks.") || starts(n, "time_embed.") ||
                     starts(n, "time_embedding.");
    }
    m->in_channels = 0;
    if (lora) return set_guess(m, "a LoRA (%s)", lora);
    if (mmdit) return set_guess(m, "an SD3/Flux-style transformer model (%s)", mmdit);
    if (sdxl) return set_guess(m, "SDXL (%s)", sdxl);
    if (control) return set_guess(m, "a ControlNet (%s)", control);

    const char *kname = SDC_PREFIX_UNET "input_blocks.0.0.weight";
    const char *cname = SDC_PREFIX_UNET "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight";
    const sdc_tensor *k = get(m, kname), *c = get(m, cname);
    char ks[64] = "?", cs[64] = "?";
    if (k) sdc_shape_str(k->shape, k->ndim, ks, sizeof ks);
    if (c) sdc_shape_str(c->shape, c->ndim, cs, sizeof cs);
    int64_t ctx = c && c->ndim == 2 ? c->shape[1] : 0;
    if (openclip) return set_guess(m, "SD 2.x (OpenCLIP text encoder: %s)", openclip);
    if (k) {
        if (ctx == 1024) return set_guess(m, "SD 2.x (cross-attention context 1024: %s is %s)", cname, cs);
        if (ctx == 2048 || ctx == 1280) return set_guess(m, "SDXL (cross-attention context %lld: %s is %s)", (long long)ctx, cname, cs);
        if (ctx == 768 && shape4(k, 320, 8, 3, 3))
            return set_guess(m, "an SD 1.x variant with an 8-channel UNet input, e.g. InstructPix2Pix (%s is %s)", kname, ks);
        if (ctx == 768 && (shape4(k, 320, 4, 3, 3) || shape4(k, 320, 9, 3, 3))) {
            if (!clip && !vae) return set_guess(m, "a UNet alone (no %s* or %s* tensors)", SDC_PREFIX_CLIP, SDC_PREFIX_VAE);
            m->in_channels = (int)k->shape[1];
            m->arch = m->in_channels == 9 ? SDC_ARCH_SD1_INPAINT : SDC_ARCH_SD1;
            snprintf(m->arch_name, sizeof m->arch_name, "%s", m->in_channels == 9 ? "sd1-inpaint" : "sd1");
            return;
        }
        return set_guess(m, "an unrecognised UNet (%s is %s, %s is %s)", kname, ks, cname, c ? cs : "missing");
    }
    if (unet) return set_guess(m, "an unrecognised UNet (%s missing)", kname);
    if (clip && vae) return set_guess(m, "a text encoder and VAE without a UNet (no %s* tensors)", SDC_PREFIX_UNET);
    if (clip) return set_guess(m, "a CLIP text encoder alone (%s*)", SDC_PREFIX_CLIP);
    if (vae || bare_vae) return set_guess(m, "a VAE alone (encoder.*/decoder.* tensors)");
    if (bare_clip) return set_guess(m, "a CLIP text encoder alone (text_model.*)");
    if (bare_unet) return set_guess(m, "a UNet alone without the %s prefix", SDC_PREFIX_UNET);
    return set_guess(m, "an unknown model (no Stable Diffusion tensor names)");
}

/* ------------------------------------------------------------------ expected SD 1.x tensors */

typedef struct elist {
    sdc_expected_tensor *out;
    int cap, n;
} elist;

static void ex(elist *l, int nd, int64_t a, int64_t b, int64_t c, int64_t d, const char *fmt, ...) SDC_PRINTF(7, 8);
static void ex(elist *l, int nd, int64_t a, int64_t b, int64_t c, int64_t d, const char *fmt, ...) {
    if (l->n < l->cap && l->out) {
        sdc_expected_tensor *t = &l->out[l->n];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->name, sizeof t->name, fmt, ap);
        va_end(ap);
        int64_t s[4] = {a, b, c, d};
        t->ndim = nd;
        for (int i = 0; i < 4; i++) t->shape[i] = i < nd ? s[i] : 0;
    }
    l->n++;
}
/* weight + bias of a layer; shape of the weight, bias [out] */
#define EX_WB(l, nd, a, b, c, d, fmt, ...)                                  \
    do {                                                                   \
        ex(l, nd, a, b, c, d, fmt ".weight", __VA_ARGS__);                 \
        ex(l, 1, a, 0, 0, 0, fmt ".bias", __VA_ARGS__);                    \
    } while (0)

enum { CLIP_DIM = 768, CLIP_LAYERS = 12, CLIP_VOCAB = 49408, CLIP_CTX = 77, TIME_DIM = 1280 };
static const int64_t UNET_CH[4] = {320, 640, 1280, 1280};
static const int64_t VAE_CH[4] = {128, 256, 512, 512};

/* LDM ResBlock */
static void ex_unet_res(elist *l, const char *p, int64_t in, int64_t out) {
    EX_WB(l, 1, in, 0, 0, 0, "%s.in_layers.0", p);
    EX_WB(l, 4, out, in, 3, 3, "%s.in_layers.2", p);
    EX_WB(l, 2, out, TIME_DIM, 0, 0, "%s.emb_layers.1", p);
    EX_WB(l, 1, out, 0, 0, 0, "%s.out_layers.0", p);
    EX_WB(l, 4, out, out, 3, 3, "%s.out_layers.3", p);
    if (in != out) EX_WB(l, 4, out, in, 1, 1, "%s.skip_connection", p);
}

/* LDM SpatialTransformer, depth 1, GEGLU feed-forward of 4c */
static void ex_unet_transformer(elist *l, const char *p, int64_t c) {
    EX_WB(l, 1, c, 0, 0, 0, "%s.norm", p);
    EX_WB(l, 4, c, c, 1, 1, "%s.proj_in", p);
    const char *b = "transformer_blocks.0";
    ex(l, 2, c, c, 0, 0, "%s.%s.attn1.to_q.weight", p, b);
    ex(l, 2, c, c, 0, 0, "%s.%s.attn1.to_k.weight", p, b);
    ex(l, 2, c, c, 0, 0, "%s.%s.attn1.to_v.weight", p, b);
    EX_WB(l, 2, c, c, 0, 0, "%s.%s.attn1.to_out.0", p, b);
    EX_WB(l, 2, 8 * c, c, 0, 0, "%s.%s.ff.net.0.proj", p, b);
    EX_WB(l, 2, c, 4 * c, 0, 0, "%s.%s.ff.net.2", p, b);
    ex(l, 2, c, c, 0, 0, "%s.%s.attn2.to_q.weight", p, b);
    ex(l, 2, c, CLIP_DIM, 0, 0, "%s.%s.attn2.to_k.weight", p, b);
    ex(l, 2, c, CLIP_DIM, 0, 0, "%s.%s.attn2.to_v.weight", p, b);
    EX_WB(l, 2, c, c, 0, 0, "%s.%s.attn2.to_out.0", p, b);
    for (int i = 1; i <= 3; i++) EX_WB(l, 1, c, 0, 0, 0, "%s.%s.norm%d", p, b, i);
    EX_WB(l, 4, c, c, 1, 1, "%s.proj_out", p);
}

static void ex_unet(elist *l, int in_channels) {
    char p[96];
    EX_WB(l, 2, TIME_DIM, 320, 0, 0, SDC_PREFIX_UNET "time_embed.0%s", "");
    EX_WB(l, 2, TIME_DIM, TIME_DIM, 0, 0, SDC_PREFIX_UNET "time_embed.2%s", "");
    EX_WB(l, 4, 320, in_channels, 3, 3, SDC_PREFIX_UNET "input_blocks.0.0%s", "");
    int64_t skip[16];
    int ns = 0, blk = 1;
    int64_t cur = 320;
    skip[ns++] = cur;
    for (int lv = 0; lv < 4; lv++) {
        for (int j = 0; j < 2; j++, blk++) {
            snprintf(p, sizeof p, SDC_PREFIX_UNET "input_blocks.%d.0", blk);
            ex_unet_res(l, p, cur, UNET_CH[lv]);
            cur = UNET_CH[lv];
            if (lv < 3) {
                snprintf(p, sizeof p, SDC_PREFIX_UNET "input_blocks.%d.1", blk);
                ex_unet_transformer(l, p, cur);
            }
            skip[ns++] = cur;
        }
        if (lv < 3) {
            EX_WB(l, 4, cur, cur, 3, 3, SDC_PREFIX_UNET "input_blocks.%d.0.op", blk);
            skip[ns++] = cur;
            blk++;
        }
    }
    ex_unet_res(l, SDC_PREFIX_UNET "middle_block.0", cur, cur);
    ex_unet_transformer(l, SDC_PREFIX_UNET "middle_block.1", cur);
    ex_unet_res(l, SDC_PREFIX_UNET "middle_block.2", cur, cur);
    blk = 0;
    for (int lv = 3; lv >= 0; lv--) {
        for (int j = 0; j < 3; j++, blk++) {
            int64_t s = skip[--ns];
            snprintf(p, sizeof p, SDC_PREFIX_UNET "output_blocks.%d.0", blk);
            ex_unet_res(l, p, cur + s, UNET_CH[lv]);
            cur = UNET_CH[lv];
            int sub = 1;
            if (lv < 3) {
                snprintf(p, sizeof p, SDC_PREFIX_UNET "output_blocks.%d.1", blk);
                ex_unet_transformer(l, p, cur);
                sub = 2;
            }
            if (lv > 0 && j == 2) EX_WB(l, 4, cur, cur, 3, 3, SDC_PREFIX_UNET "output_blocks.%d.%d.conv", blk, sub);
        }
    }
    EX_WB(l, 1, 320, 0, 0, 0, SDC_PREFIX_UNET "out.0%s", "");
    EX_WB(l, 4, 4, 320, 3, 3, SDC_PREFIX_UNET "out.2%s", "");
}

static void ex_clip(elist *l) {
    ex(l, 2, CLIP_VOCAB, CLIP_DIM, 0, 0, SDC_PREFIX_CLIP "embeddings.token_embedding.weight");
    ex(l, 2, CLIP_CTX, CLIP_DIM, 0, 0, SDC_PREFIX_CLIP "embeddings.position_embedding.weight");
    for (int i = 0; i < CLIP_LAYERS; i++) {
        static const char *const proj[] = {"k_proj", "v_proj", "q_proj", "out_proj"};
        for (int j = 0; j < 4; j++)
            EX_WB(l, 2, CLIP_DIM, CLIP_DIM, 0, 0, SDC_PREFIX_CLIP "encoder.layers.%d.self_attn.%s", i, proj[j]);
        EX_WB(l, 1, CLIP_DIM, 0, 0, 0, SDC_PREFIX_CLIP "encoder.layers.%d.layer_norm1", i);
        EX_WB(l, 2, 4 * CLIP_DIM, CLIP_DIM, 0, 0, SDC_PREFIX_CLIP "encoder.layers.%d.mlp.fc1", i);
        EX_WB(l, 2, CLIP_DIM, 4 * CLIP_DIM, 0, 0, SDC_PREFIX_CLIP "encoder.layers.%d.mlp.fc2", i);
        EX_WB(l, 1, CLIP_DIM, 0, 0, 0, SDC_PREFIX_CLIP "encoder.layers.%d.layer_norm2", i);
    }
    EX_WB(l, 1, CLIP_DIM, 0, 0, 0, SDC_PREFIX_CLIP "final_layer_norm%s", "");
}

static void ex_vae_res(elist *l, const char *p, int64_t in, int64_t out) {
    EX_WB(l, 1, in, 0, 0, 0, "%s.norm1", p);
    EX_WB(l, 4, out, in, 3, 3, "%s.conv1", p);
    EX_WB(l, 1, out, 0, 0, 0, "%s.norm2", p);
    EX_WB(l, 4, out, out, 3, 3, "%s.conv2", p);
    if (in != out) EX_WB(l, 4, out, in, 1, 1, "%s.nin_shortcut", p);
}

static void ex_vae_mid(elist *l, const char *coder, int64_t c) {
    char p[96];
    snprintf(p, sizeof p, SDC_PREFIX_VAE "%s.mid.block_1", coder);
    ex_vae_res(l, p, c, c);
    EX_WB(l, 1, c, 0, 0, 0, SDC_PREFIX_VAE "%s.mid.attn_1.norm", coder);
    static const char *const qkv[] = {"q", "k", "v", "proj_out"};
    for (int i = 0; i < 4; i++) EX_WB(l, 4, c, c, 1, 1, SDC_PREFIX_VAE "%s.mid.attn_1.%s", coder, qkv[i]);
    snprintf(p, sizeof p, SDC_PREFIX_VAE "%s.mid.block_2", coder);
    ex_vae_res(l, p, c, c);
}

static void ex_vae(elist *l) {
    char p[96];
    /* encoder (needed for img2img) */
    EX_WB(l, 4, VAE_CH[0], 3, 3, 3, SDC_PREFIX_VAE "encoder.conv_in%s", "");
    int64_t cur = VAE_CH[0];
    for (int lv = 0; lv < 4; lv++) {
        for (int j = 0; j < 2; j++) {
            snprintf(p, sizeof p, SDC_PREFIX_VAE "encoder.down.%d.block.%d", lv, j);
            ex_vae_res(l, p, cur, VAE_CH[lv]);
            cur = VAE_CH[lv];
        }
        if (lv < 3) EX_WB(l, 4, cur, cur, 3, 3, SDC_PREFIX_VAE "encoder.down.%d.downsample.conv", lv);
    }
    ex_vae_mid(l, "encoder", cur);
    EX_WB(l, 1, cur, 0, 0, 0, SDC_PREFIX_VAE "encoder.norm_out%s", "");
    EX_WB(l, 4, 8, cur, 3, 3, SDC_PREFIX_VAE "encoder.conv_out%s", "");
    /* decoder */
    cur = VAE_CH[3];
    EX_WB(l, 4, cur, 4, 3, 3, SDC_PREFIX_VAE "decoder.conv_in%s", "");
    ex_vae_mid(l, "decoder", cur);
    for (int lv = 3; lv >= 0; lv--) {
        for (int j = 0; j < 3; j++) {
            snprintf(p, sizeof p, SDC_PREFIX_VAE "decoder.up.%d.block.%d", lv, j);
            ex_vae_res(l, p, cur, VAE_CH[lv]);
            cur = VAE_CH[lv];
        }
        if (lv > 0) EX_WB(l, 4, cur, cur, 3, 3, SDC_PREFIX_VAE "decoder.up.%d.upsample.conv", lv);
    }
    EX_WB(l, 1, cur, 0, 0, 0, SDC_PREFIX_VAE "decoder.norm_out%s", "");
    EX_WB(l, 4, 3, cur, 3, 3, SDC_PREFIX_VAE "decoder.conv_out%s", "");
    EX_WB(l, 4, 8, 8, 1, 1, SDC_PREFIX_VAE "quant_conv%s", "");
    EX_WB(l, 4, 4, 4, 1, 1, SDC_PREFIX_VAE "post_quant_conv%s", "");
}

int sdc_sd1_expected_tensors(int in_channels, sdc_expected_tensor *out, int cap) {
    elist l = {out, out ? cap : 0, 0};
    ex_unet(&l, in_channels);
    ex_clip(&l);
    ex_vae(&l);
    return l.n;
}

/* ------------------------------------------------------------------ check */

static const char *source_path(const sdc_model *m, const model_entry *e) {
    return e->source >= 0 ? m->src[e->source].path : "(memory)";
}

sdc_status sdc_model_check(const sdc_model *m, char *err, size_t errlen) {
    if (!m) return sdc_fail(err, errlen, SDC_E_INVALID, "sdc_model_check: no model");
    if (m->arch != SDC_ARCH_SD1 && m->arch != SDC_ARCH_SD1_INPAINT)
        return sdc_fail(err, errlen, SDC_E_UNSUPPORTED, "not supported: %s", m->arch_name);
    int n = sdc_sd1_expected_tensors(m->in_channels, NULL, 0);
    sdc_expected_tensor *x = malloc((size_t)n * sizeof *x);
    if (!x) return sdc_fail(err, errlen, SDC_E_NOMEM, "out of memory");
    sdc_sd1_expected_tensors(m->in_channels, x, n);
    sdc_status st = SDC_OK;
    for (int i = 0; i < n && st == SDC_OK; i++) {
        int k = find(m, x[i].name);
        if (k < 0) {
            st = sdc_fail(err, errlen, SDC_E_SHAPE, "%s: missing", x[i].name);
            break;
        }
        const model_entry *e = &m->e[k];
        const sdc_tensor *t = &e->t;
        char want[80], got[80], where[600] = "";
        if (e->stored && strcmp(e->stored, e->name) != 0)
            snprintf(where, sizeof where, " (stored as %s in %s)", e->stored, source_path(m, e));
        bool same = t->ndim == x[i].ndim;
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == x[i].shape[d];
        if (!same) {
            st = sdc_fail(err, errlen, SDC_E_SHAPE, "%s: expected %s, got %s%s", x[i].name,
                          sdc_shape_str(x[i].shape, x[i].ndim, want, sizeof want),
                          sdc_shape_str(t->shape, t->ndim, got, sizeof got), where);
            break;
        }
        const sdc_type_traits *tr = sdc_type_traits_of(t->type);
        if (!tr || !tr->is_float) {
            st = sdc_fail(err, errlen, SDC_E_SHAPE, "%s: expected a floating-point type, got %s%s", x[i].name,
                          sdc_type_name(t->type), where);
            break;
        }
        uint64_t bytes;
        if (tr->block > 1 && sdc_tensor_row_len(t) % tr->block != 0) {
            st = sdc_fail(err, errlen, SDC_E_SHAPE, "%s: type %s needs rows of a multiple of %d values, got %lld%s",
                          x[i].name, tr->name, tr->block, (long long)sdc_tensor_row_len(t), where);
            break;
        }
        if (!sdc_type_bytes(t->type, (uint64_t)sdc_tensor_nelem(t), &bytes) || bytes != t->nbytes) {
            st = sdc_fail(err, errlen, SDC_E_SHAPE, "%s: expected %llu bytes of %s, got %llu%s", x[i].name,
                          (unsigned long long)bytes, tr->name, (unsigned long long)t->nbytes, where);
            break;
        }
    }
    free(x);
    return st;
}

/* ------------------------------------------------------------------ open */

static void model_destroy(sdc_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++) free(m->e[i].name);
    free(m->e);
    free(m->hash);
    for (int i = 0; i < m->nmeta; i++) free(m->meta[i].key);
    free(m->meta);
    for (int i = 0; i < m->nsrc; i++) {
        if (m->src[i].gguf) sdc_gguf_close(m->src[i].gguf);
        if (m->src[i].st) sdc_st_close(m->src[i].st);
        free(m->src[i].path);
    }
    free(m);
}

void sdc_model_free(sdc_model *m) { model_destroy(m); }

static sdc_status add_meta(sdc_model *m, int source, int64_t index, const char *label, char *err, size_t errlen) {
    model_meta *nm = realloc(m->meta, (size_t)(m->nmeta + 1) * sizeof *nm);
    if (!nm) return sdc_fail(err, errlen, SDC_E_NOMEM, "out of memory");
    m->meta = nm;
    model_meta *e = &m->meta[m->nmeta];
    e->source = source;
    e->index = index;
    e->key = NULL;
    if (label) {
        const char *k = sdc_st_meta_key(m->src[source].st, index);
        size_t len = strlen(label) + strlen(k ? k : "") + 2;
        e->key = malloc(len);
        if (!e->key) return sdc_fail(err, errlen, SDC_E_NOMEM, "out of memory");
        snprintf(e->key, len, "%s/%s", label, k ? k : "");
    }
    m->nmeta++;
    return SDC_OK;
}

/* Makes sure a reader's message names the file. */
static void name_file(char *err, size_t errlen, const char *path) {
    if (err && errlen && !strstr(err, path)) sdc_err_prefix(err, errlen, path);
}

static sdc_status add_source(sdc_model *m, const char *path, bool gguf, const char *label, sdc_component dir,
                             char *err, size_t errlen) {
    int si = m->nsrc;
    model_source *s = &m->src[si];
    memset(s, 0, sizeof *s);
    s->path = sdc_strndup(path, strlen(path));
    if (!s->path) return sdc_fail(err, errlen, SDC_E_NOMEM, "out of memory");
    s->label = label;
    m->nsrc++;
    sdc_status st;
    if (gguf) {
        st = sdc_gguf_open(path, &s->gguf, err, errlen);
        if (st != SDC_OK) {
            s->gguf = NULL;
            name_file(err, errlen, path);
            return st;
        }
        int64_t n = sdc_gguf_tensor_count(s->gguf);
        for (int64_t i = 0; i < n; i++) {
            const sdc_tensor *t = sdc_gguf_tensor(s->gguf, i);
            if ((st = add_entry(m, t, t->name, si, dir, err, errlen)) != SDC_OK) return st;
        }
        int64_t nk = sdc_gguf_kv_count(s->gguf);
        for (int64_t i = 0; i < nk; i++)
            if ((st = add_meta(m, si, i, NULL, err, errlen)) != SDC_OK) return st;
        snprintf(m->format, sizeof m->format, "gguf v%u", (unsigned)sdc_gguf_version(s->gguf));
    } else {
        st = sdc_st_open(path, &s->st, err, errlen);
        if (st != SDC_OK) {
            s->st = NULL;
            name_file(err, errlen, path);
            return st;
        }
        int64_t n = sdc_st_tensor_count(s->st);
        for (int64_t i = 0; i < n; i++) {
            const sdc_tensor *t = sdc_st_tensor(s->st, i);
            if ((st = add_entry(m, t, t->name, si, dir, err, errlen)) != SDC_OK) return st;
        }
        int64_t nk = sdc_st_meta_count(s->st);
        for (int64_t i = 0; i < nk; i++)
            if ((st = add_meta(m, si, i, label, err, errlen)) != SDC_OK) return st;
        if (!label) snprintf(m->format, sizeof m->format, "safetensors");
    }
    return SDC_OK;
}

enum sniff_kind { SNIFF_DIR, SNIFF_GGUF, SNIFF_ST };

static sdc_status sniff(const char *path, enum sniff_kind *kind, char *err, size_t errlen) {
    struct stat sb;
    if (stat(path, &sb) != 0) return sdc_fail(err, errlen, SDC_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        *kind = SNIFF_DIR;
        return SDC_OK;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return sdc_fail(err, errlen, SDC_E_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char b[8] = {0};
    size_t got = fread(b, 1, sizeof b, f);
    fclose(f);
    if (got >= 4 && memcmp(b, "GGUF", 4) == 0) {
        *kind = SNIFF_GGUF;
        return SDC_OK;
    }
    if (got >= 2 && ((b[0] == 'P' && b[1] == 'K') || (b[0] == 0x80 && b[1] >= 2 && b[1] <= 5)))
        return sdc_fail(err, errlen, SDC_E_UNSUPPORTED,
                        "%s: PyTorch pickle checkpoints are not read; convert to safetensors", path);
    *kind = SNIFF_ST;
    return SDC_OK;
}

static bool is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* A diffusers folder: for each network, the full-precision file is preferred over the
 * ".fp16" variant when both exist (it holds the weights as published; the variant is a
 * derived, rounded copy); the variant is used when it is the only one. */
static sdc_status open_diffusers(sdc_model *m, const char *dir, char *err, size_t errlen) {
    static const struct {
        const char *sub, *stem;
        sdc_component comp;
    } parts[] = {
        {"unet", "diffusion_pytorch_model", SDC_COMPONENT_UNET},
        {"text_encoder", "model", SDC_COMPONENT_CLIP},
        {"vae", "diffusion_pytorch_model", SDC_COMPONENT_VAE},
    };
    static const char *const variants[] = {".safetensors", ".fp16.safetensors"};
    static const char *const pickles[] = {".bin", ".fp16.bin"};
    snprintf(m->format, sizeof m->format, "diffusers");
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') dl--;
    int found = 0;
    for (size_t p = 0; p < COUNT(parts); p++) {
        char path[4096], pick[4096] = "";
        bool have = false;
        for (size_t v = 0; v < COUNT(variants) && !have; v++) {
            snprintf(path, sizeof path, "%.*s/%s/%s%s", (int)dl, dir, parts[p].sub, parts[p].stem, variants[v]);
            have = is_file(path);
        }
        for (size_t v = 0; v < COUNT(pickles) && !have && !pick[0]; v++) {
            snprintf(pick, sizeof pick, "%.*s/%s/%s%s", (int)dl, dir, parts[p].sub, parts[p].stem, pickles[v]);
            if (!is_file(pick)) pick[0] = '\0';
        }
        if (!have) {
            if (pick[0])
                return sdc_fail(err, errlen, SDC_E_UNSUPPORTED,
                                "%s: PyTorch pickle checkpoints are not read; convert to safetensors", pick);
            continue; /* a missing network shows up in detection / check */
        }
        enum sniff_kind k;
        sdc_status st = sniff(path, &k, err, errlen);
        if (st != SDC_OK) return st;
        if ((st = add_source(m, path, k == SNIFF_GGUF, parts[p].sub, parts[p].comp, err, errlen)) != SDC_OK) return st;
        found++;
    }
    if (!found)
        return sdc_fail(err, errlen, SDC_E_IO,
                        "%s: not a model: a folder must be a diffusers model (unet/diffusion_pytorch_model.safetensors, "
                        "text_encoder/model.safetensors, vae/diffusion_pytorch_model.safetensors)",
                        dir);
    snprintf(m->format, sizeof m->format, "diffusers");
    return SDC_OK;
}

static sdc_status finish_open(sdc_model *m, char *err, size_t errlen) {
    sdc_status st = build_index(m, err, errlen);
    if (st != SDC_OK) return st;
    detect(m);
    return SDC_OK;
}

sdc_status sdc_model_open(const char *path, sdc_model **out, char *err, size_t errlen) {
    if (!out) return sdc_fail(err, errlen, SDC_E_INVALID, "sdc_model_open: out is NULL");
    *out = NULL;
    if (!path || !*path) return sdc_fail(err, errlen, SDC_E_INVALID, "sdc_model_open: no path");
    enum sniff_kind kind;
    sdc_status st = sniff(path, &kind, err, errlen);
    if (st != SDC_OK) return st;
    sdc_model *m = calloc(1, sizeof *m);
    if (!m) return sdc_fail(err, errlen, SDC_E_NOMEM, "out of memory");
    if (kind == SNIFF_DIR)
        st = open_diffusers(m, path, err, errlen);
    else
        st = add_source(m, path, kind == SNIFF_GGUF, NULL, SDC_COMPONENT_OTHER, err, errlen);
    if (st == SDC_OK) st = finish_open(m, err, errlen);
    if (st != SDC_OK) {
        model_destroy(m);
        return st;
    }
    *out = m;
    return SDC_OK;
}

sdc_status sdc_model_open_tensors(const sdc_tensor *tensors, int64_t n, sdc_model **out, char *err, size_t errlen) {
    if (!out || (n && !tensors) || n < 0 || n > INT32_MAX / 4)
        return sdc_fail(err, errlen, SDC_E_INVALID, "sdc_model_open_tensors: bad arguments");
    *out = NULL;
    sdc_model *m = calloc(1, sizeof *m);
    if (!m) return sdc_fail(err, errlen, SDC_E_NOMEM, "out of memory");
    snprintf(m->format, sizeof m->format, "memory");
    sdc_status st = SDC_OK;
    for (int64_t i = 0; i < n && st == SDC_OK; i++) st = add_entry(m, &tensors[i], NULL, -1, SDC_COMPONENT_OTHER, err, errlen);
    if (st == SDC_OK) st = finish_open(m, err, errlen);
    if (st != SDC_OK) {
        model_destroy(m);
        return st;
    }
    *out = m;
    return SDC_OK;
}

/* ------------------------------------------------------------------ accessors */

sdc_arch sdc_model_arch(const sdc_model *m) { return m ? m->arch : SDC_ARCH_UNKNOWN; }
const char *sdc_model_arch_name(const sdc_model *m) { return m ? m->arch_name : "?"; }
const char *sdc_model_format(const sdc_model *m) { return m ? m->format : "?"; }
int sdc_model_in_channels(const sdc_model *m) { return m ? m->in_channels : 0; }
int sdc_model_tensor_count(const sdc_model *m) { return m ? m->n : 0; }

sdc_status sdc_model_tensor_info(const sdc_model *m, int i, sdc_tensor_info *out) {
    if (!m || !out || i < 0 || i >= m->n) return SDC_E_INVALID;
    const model_entry *e = &m->e[i];
    memset(out, 0, sizeof *out);
    out->name = e->name;
    out->type = sdc_type_name(e->t.type);
    out->ndim = e->t.ndim;
    for (int d = 0; d < e->t.ndim && d < 8; d++) out->shape[d] = e->t.shape[d];
    out->nbytes = e->t.nbytes;
    out->component = e->comp;
    return SDC_OK;
}

bool sdc_model_has_tensor(const sdc_model *m, const char *name) { return find(m, name) >= 0; }

const sdc_tensor *sdc_model_get(const sdc_model *m, const char *name) { return get(m, name); }

const char *sdc_model_stored_name(const sdc_model *m, const char *name) {
    int i = find(m, name);
    if (i < 0) return NULL;
    return m->e[i].stored ? m->e[i].stored : m->e[i].name;
}

int sdc_model_meta_count(const sdc_model *m) { return m ? m->nmeta : 0; }

sdc_status sdc_model_meta(const sdc_model *m, int i, const char **key, char *value, size_t valuelen) {
    if (!m || i < 0 || i >= m->nmeta) return SDC_E_INVALID;
    const model_meta *e = &m->meta[i];
    const model_source *s = &m->src[e->source];
    if (s->gguf) {
        if (key) *key = sdc_gguf_kv_key(s->gguf, e->index);
        if (value && valuelen) sdc_gguf_kv_format(s->gguf, e->index, value, valuelen);
    } else {
        if (key) *key = e->key ? e->key : sdc_st_meta_key(s->st, e->index);
        if (value && valuelen) {
            const char *v = sdc_st_meta_value(s->st, e->index);
            snprintf(value, valuelen, "%s", v ? v : "");
        }
    }
    return SDC_OK;
}

/* ------------------------------------------------------------------ release */

static int cmp_data(const void *a, const void *b) {
    const model_entry *x = *(const model_entry *const *)a, *y = *(const model_entry *const *)b;
    uintptr_t p = (uintptr_t)x->t.data, q = (uintptr_t)y->t.data;
    return p < q ? -1 : p > q;
}

/* Per source, walks the tensors in file order and releases each run of consecutive tensors
 * of component c as one range (so pages shared by neighbours of the same component go too,
 * while a page shared with another component's tensor is kept). */
void sdc_model_release(const sdc_model *m, sdc_component c) {
    if (!m || !m->n) return;
    const model_entry **order = malloc((size_t)m->n * sizeof *order);
    if (!order) return;
    for (int s = 0; s < m->nsrc; s++) {
        const sdc_map *map = m->src[s].gguf ? sdc_gguf_map(m->src[s].gguf) : m->src[s].st ? sdc_st_map(m->src[s].st) : NULL;
        if (!map || !map->data) continue;
        int k = 0;
        for (int i = 0; i < m->n; i++)
            if (m->e[i].source == s && m->e[i].t.data && m->e[i].t.nbytes) order[k++] = &m->e[i];
        qsort(order, (size_t)k, sizeof *order, cmp_data);
        for (int i = 0; i < k;) {
            if (order[i]->comp != c) {
                i++;
                continue;
            }
            const uint8_t *lo = order[i]->t.data, *hi = lo + order[i]->t.nbytes;
            int j = i + 1;
            for (; j < k && order[j]->comp == c; j++) {
                const uint8_t *e = (const uint8_t *)order[j]->t.data + order[j]->t.nbytes;
                if (e > hi) hi = e;
            }
            sdc_map_release(map, lo, (size_t)(hi - lo));
            i = j;
        }
    }
    free(order);
}

void sdc_model_release_tensor(const sdc_model *m, const sdc_tensor *t) {
    if (!m || !t || !t->data || !t->nbytes) return;
    const uintptr_t p = (uintptr_t)t->data;
    for (int s = 0; s < m->nsrc; s++) {
        const sdc_map *map = m->src[s].gguf ? sdc_gguf_map(m->src[s].gguf) : m->src[s].st ? sdc_st_map(m->src[s].st) : NULL;
        if (!map || !map->data) continue;
        const uintptr_t lo = (uintptr_t)map->data;
        if (p >= lo && p - lo < map->size && t->nbytes <= map->size - (p - lo)) {
            sdc_map_release(map, t->data, (size_t)t->nbytes);
            return;
        }
    }
}

void sdc_model_weight_done(void *model, const sdc_tensor *w) { sdc_model_release_tensor(model, w); }
