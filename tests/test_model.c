/* test_model.c - the model store: the SD 1.x expected tensor list against the shared
 * inventory, diffusers name mapping, architecture detection and the check on in-memory
 * tables and small files, the random checkpoint, and a diffusers folder made from it
 * (tests/make_diffusers.py) whose every canonical tensor must equal the original's bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "gguf.h"
#include "model.h"
#include "safetensors.h"
#include "sdc.h"
#include "testutil.h"

#ifndef SDC_SOURCE_DIR
#define SDC_SOURCE_DIR "."
#endif

static char err[1024];

/* ------------------------------------------------------------------ expected list vs TSV */

static bool network_name(const char *n) {
    return (strncmp(n, SDC_PREFIX_UNET, strlen(SDC_PREFIX_UNET)) == 0 ||
            strncmp(n, SDC_PREFIX_CLIP, strlen(SDC_PREFIX_CLIP)) == 0 ||
            strncmp(n, SDC_PREFIX_VAE, strlen(SDC_PREFIX_VAE)) == 0) &&
           !strstr(n, "position_ids");
}

static void test_expected_vs_tsv(void) {
    int n = sdc_sd1_expected_tensors(4, NULL, 0);
    sdc_expected_tensor *x = calloc((size_t)n, sizeof *x);
    CHECK(sdc_sd1_expected_tensors(4, x, n) == n);
    printf("expected SD 1.x tensors: %d\n", n);
    if (!tu_shared_dir()) {
        printf("note: shared data absent; expected list not compared with sd15_tensors.tsv\n");
        free(x);
        return;
    }
    const char *path = tu_shared_path("data/sd15_tensors.tsv");
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("note: %s absent; expected list not compared\n", path);
        free(x);
        return;
    }
    char line[512];
    int k = 0, mismatches = 0;
    while (fgets(line, sizeof line, f)) {
        char name[256], dtype[16], shape[128] = "";
        if (sscanf(line, "%255[^\t]\t%15[^\t\n]\t%127[^\n]", name, dtype, shape) < 2) continue;
        if (!network_name(name)) continue;
        int64_t s[8];
        int nd = 0;
        for (char *p = shape; *p && nd < 8;) {
            s[nd++] = strtoll(p, &p, 10);
            if (*p == ',') p++;
        }
        if (k >= n) {
            mismatches++;
            fprintf(stderr, "TSV has extra %s\n", name);
            continue;
        }
        bool same = strcmp(x[k].name, name) == 0 && x[k].ndim == nd;
        for (int d = 0; same && d < nd; d++) same = x[k].shape[d] == s[d];
        if (!same && mismatches++ < 5) {
            char a[64], b[64];
            fprintf(stderr, "entry %d: expected list has %s %s, TSV %s %s\n", k, x[k].name,
                    sdc_shape_str(x[k].shape, x[k].ndim, a, sizeof a), name, sdc_shape_str(s, nd, b, sizeof b));
        }
        k++;
    }
    fclose(f);
    CHECK_MSG(k == n, "TSV has %d network tensors, expected list %d", k, n);
    CHECK_MSG(mismatches == 0, "%d entries differ (names, shapes or order)", mismatches);
    /* inpainting: only the first conv differs */
    sdc_expected_tensor *y = calloc((size_t)n, sizeof *y);
    CHECK(sdc_sd1_expected_tensors(9, y, n) == n);
    int diff = 0;
    for (int i = 0; i < n; i++)
        if (memcmp(&x[i], &y[i], sizeof x[i]) != 0) {
            diff++;
            CHECK(strcmp(y[i].name, SDC_PREFIX_UNET "input_blocks.0.0.weight") == 0 && y[i].shape[1] == 9);
        }
    CHECK(diff == 1);
    free(x);
    free(y);
}

/* ------------------------------------------------------------------ name mapping */

static void expect_map(sdc_component c, const char *from, const char *to) {
    char out[256] = "";
    bool ok = sdc_model_diffusers_name(c, from, out, sizeof out);
    CHECK_MSG(ok && strcmp(out, to) == 0, "%s -> %s (%s), expected %s", from, ok ? out : "(unmapped)",
              sdc_component_name(c), to);
}

static void test_mapping(void) {
    const sdc_component U = SDC_COMPONENT_UNET, V = SDC_COMPONENT_VAE, C = SDC_COMPONENT_CLIP;
    expect_map(U, "conv_in.weight", SDC_PREFIX_UNET "input_blocks.0.0.weight");
    expect_map(U, "time_embedding.linear_2.bias", SDC_PREFIX_UNET "time_embed.2.bias");
    expect_map(U, "down_blocks.0.resnets.1.conv1.weight", SDC_PREFIX_UNET "input_blocks.2.0.in_layers.2.weight");
    expect_map(U, "down_blocks.1.resnets.0.conv_shortcut.bias", SDC_PREFIX_UNET "input_blocks.4.0.skip_connection.bias");
    expect_map(U, "down_blocks.2.attentions.1.transformer_blocks.0.attn2.to_k.weight",
               SDC_PREFIX_UNET "input_blocks.8.1.transformer_blocks.0.attn2.to_k.weight");
    expect_map(U, "down_blocks.2.downsamplers.0.conv.weight", SDC_PREFIX_UNET "input_blocks.9.0.op.weight");
    expect_map(U, "down_blocks.3.resnets.1.time_emb_proj.weight", SDC_PREFIX_UNET "input_blocks.11.0.emb_layers.1.weight");
    expect_map(U, "mid_block.resnets.1.norm2.bias", SDC_PREFIX_UNET "middle_block.2.out_layers.0.bias");
    expect_map(U, "mid_block.attentions.0.proj_in.weight", SDC_PREFIX_UNET "middle_block.1.proj_in.weight");
    expect_map(U, "up_blocks.0.resnets.2.conv2.weight", SDC_PREFIX_UNET "output_blocks.2.0.out_layers.3.weight");
    expect_map(U, "up_blocks.0.upsamplers.0.conv.weight", SDC_PREFIX_UNET "output_blocks.2.1.conv.weight");
    expect_map(U, "up_blocks.2.upsamplers.0.conv.bias", SDC_PREFIX_UNET "output_blocks.8.2.conv.bias");
    expect_map(U, "up_blocks.3.attentions.2.norm.weight", SDC_PREFIX_UNET "output_blocks.11.1.norm.weight");
    expect_map(U, "conv_norm_out.weight", SDC_PREFIX_UNET "out.0.weight");
    expect_map(U, "conv_out.bias", SDC_PREFIX_UNET "out.2.bias");
    expect_map(C, "text_model.encoder.layers.11.mlp.fc2.weight", SDC_PREFIX_CLIP "encoder.layers.11.mlp.fc2.weight");
    expect_map(V, "encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
               SDC_PREFIX_VAE "encoder.down.1.block.0.nin_shortcut.weight");
    expect_map(V, "encoder.down_blocks.2.downsamplers.0.conv.bias", SDC_PREFIX_VAE "encoder.down.2.downsample.conv.bias");
    expect_map(V, "decoder.up_blocks.0.resnets.2.norm1.weight", SDC_PREFIX_VAE "decoder.up.3.block.2.norm1.weight");
    expect_map(V, "decoder.up_blocks.2.upsamplers.0.conv.weight", SDC_PREFIX_VAE "decoder.up.1.upsample.conv.weight");
    expect_map(V, "decoder.mid_block.resnets.1.conv2.weight", SDC_PREFIX_VAE "decoder.mid.block_2.conv2.weight");
    expect_map(V, "decoder.mid_block.attentions.0.to_q.weight", SDC_PREFIX_VAE "decoder.mid.attn_1.q.weight");
    expect_map(V, "decoder.mid_block.attentions.0.to_out.0.bias", SDC_PREFIX_VAE "decoder.mid.attn_1.proj_out.bias");
    expect_map(V, "encoder.mid_block.attentions.0.key.weight", SDC_PREFIX_VAE "encoder.mid.attn_1.k.weight");
    expect_map(V, "encoder.mid_block.attentions.0.proj_attn.weight", SDC_PREFIX_VAE "encoder.mid.attn_1.proj_out.weight");
    expect_map(V, "encoder.mid_block.attentions.0.group_norm.bias", SDC_PREFIX_VAE "encoder.mid.attn_1.norm.bias");
    expect_map(V, "decoder.conv_norm_out.weight", SDC_PREFIX_VAE "decoder.norm_out.weight");
    expect_map(V, "post_quant_conv.weight", SDC_PREFIX_VAE "post_quant_conv.weight");
    char out[64];
    CHECK(!sdc_model_diffusers_name(U, "something.else", out, sizeof out));
    CHECK(!sdc_model_diffusers_name(V, "decoder.up_blocks.7.resnets.0.conv1.weight", out, sizeof out));
    CHECK(!sdc_model_diffusers_name(C, "text_projection.weight", out, sizeof out));
    CHECK(!sdc_model_diffusers_name(U, "conv_in.weight", out, 8)); /* does not fit */
}

/* Resident pages of this process that are backed by files (the third field of
 * /proc/self/statm); -1 when unknown. */
static long resident_file_pages(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0, shared = -1;
    if (!f) return -1;
    if (fscanf(f, "%ld %ld %ld", &size, &res, &shared) != 3) shared = -1;
    fclose(f);
    return shared;
}

/* sdc_model_release_tensor on caller-owned (heap) memory must not touch it: MADV_DONTNEED
 * there would zero the pages. */
static void test_release_tensor_heap(void) {
    const size_t pg = 4096, n = 3 * pg;
    uint8_t *buf = aligned_alloc(pg, n);
    if (!buf) return;
    for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)(i * 7 + 1);
    sdc_tensor t = {.name = SDC_PREFIX_UNET "out.2.weight", .type = SDC_TYPE_F32, .ndim = 1,
                    .shape = {(int64_t)(n / 4)}, .data = buf, .nbytes = n};
    sdc_model *m = NULL;
    CHECK_MSG(sdc_model_open_tensors(&t, 1, &m, err, sizeof err) == SDC_OK && m, "%s", err);
    const sdc_tensor *v = m ? sdc_model_get(m, t.name) : NULL;
    CHECK(v && v->data == buf);
    sdc_model_release_tensor(m, v);
    sdc_model_release_tensor(m, NULL);
    sdc_model_release_tensor(NULL, v);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += buf[i] != (uint8_t)(i * 7 + 1);
    CHECK_MSG(bad == 0, "release_tensor changed %zu bytes of caller memory", bad);
    sdc_model_free(m);
    free(buf);
}

/* ------------------------------------------------------------------ in-memory tables */

typedef struct table {
    sdc_tensor *t;
    char (*names)[128];
    int n, cap;
} table;

static void tb_add(table *tb, const char *name, sdc_type type, int nd, const int64_t *shape) {
    if (tb->n == tb->cap) {
        tb->cap = tb->cap ? 2 * tb->cap : 1024;
        tb->t = realloc(tb->t, (size_t)tb->cap * sizeof *tb->t);
        tb->names = realloc(tb->names, (size_t)tb->cap * sizeof *tb->names);
    }
    sdc_tensor *t = &tb->t[tb->n];
    memset(t, 0, sizeof *t);
    snprintf(tb->names[tb->n], sizeof tb->names[0], "%s", name);
    t->type = type;
    t->ndim = nd;
    for (int i = 0; i < nd; i++) t->shape[i] = shape[i];
    uint64_t b = 0;
    sdc_type_bytes(type, (uint64_t)sdc_tensor_nelem(t), &b);
    t->nbytes = b;
    tb->n++;
}

/* names live in tb->names (realloc'd), so point them just before use */
static sdc_model *tb_open(table *tb, sdc_status *st) {
    for (int i = 0; i < tb->n; i++) tb->t[i].name = tb->names[i];
    sdc_model *m = NULL;
    *st = sdc_model_open_tensors(tb->t, tb->n, &m, err, sizeof err);
    return m;
}

static void tb_free(table *tb) {
    free(tb->t);
    free(tb->names);
    memset(tb, 0, sizeof *tb);
}

static sdc_tensor *tb_find(table *tb, const char *name) {
    for (int i = 0; i < tb->n; i++)
        if (strcmp(tb->names[i], name) == 0) return &tb->t[i];
    return NULL;
}

static void tb_sd1(table *tb, int in_channels) {
    int n = sdc_sd1_expected_tensors(in_channels, NULL, 0);
    sdc_expected_tensor *x = calloc((size_t)n, sizeof *x);
    sdc_sd1_expected_tensors(in_channels, x, n);
    for (int i = 0; i < n; i++) tb_add(tb, x[i].name, SDC_TYPE_F16, x[i].ndim, x[i].shape);
    free(x);
    int64_t pid[2] = {1, 77}, sched[1] = {1000};
    tb_add(tb, SDC_PREFIX_CLIP "embeddings.position_ids", SDC_TYPE_I64, 2, pid);
    tb_add(tb, "alphas_cumprod", SDC_TYPE_F32, 1, sched);
}

/* Opens the table, expects status `want`, an error containing every non-NULL needle. */
static void expect_check(table *tb, sdc_status want, const char *what, const char *n1, const char *n2, const char *n3) {
    sdc_status st;
    err[0] = '\0';
    sdc_model *m = tb_open(tb, &st);
    CHECK_MSG(st == SDC_OK && m, "%s: open: %s", what, err);
    if (!m) return;
    err[0] = '\0';
    st = sdc_model_check(m, err, sizeof err);
    printf("%-24s -> %s\n", what, st ? err : sdc_model_arch_name(m));
    CHECK_MSG(st == want, "%s: check returned %s, expected %s (%s)", what, sdc_status_name(st), sdc_status_name(want), err);
    const char *needles[3] = {n1, n2, n3};
    for (int i = 0; i < 3; i++)
        if (needles[i]) CHECK_MSG(strstr(err, needles[i]) != NULL, "%s: error lacks \"%s\": %s", what, needles[i], err);
    sdc_model_free(m);
}

static void test_tables(void) {
    table tb = {0};
    sdc_status st;

    /* the full set opens, detects sd1, checks ok */
    tb_sd1(&tb, 4);
    sdc_model *m = tb_open(&tb, &st);
    CHECK_MSG(st == SDC_OK, "open: %s", err);
    if (m) {
        CHECK(sdc_model_arch(m) == SDC_ARCH_SD1);
        CHECK(strcmp(sdc_model_arch_name(m), "sd1") == 0);
        CHECK(sdc_model_in_channels(m) == 4);
        CHECK(strcmp(sdc_model_format(m), "memory") == 0);
        CHECK(sdc_model_tensor_count(m) == tb.n);
        CHECK(sdc_model_check(m, err, sizeof err) == SDC_OK);
        CHECK(sdc_model_has_tensor(m, "alphas_cumprod"));
        CHECK(!sdc_model_has_tensor(m, "alphas_cumprod_prev"));
        CHECK(sdc_model_get(m, "nope") == NULL);
        sdc_tensor_info ti;
        CHECK(sdc_model_tensor_info(m, tb.n - 1, &ti) == SDC_OK && ti.component == SDC_COMPONENT_OTHER &&
              strcmp(ti.type, "f32") == 0);
        CHECK(sdc_model_tensor_info(m, 0, &ti) == SDC_OK && ti.component == SDC_COMPONENT_UNET);
        CHECK(sdc_model_tensor_info(m, tb.n, &ti) != SDC_OK);
        CHECK(sdc_model_tensor_info(m, -1, &ti) != SDC_OK);
        CHECK(sdc_model_meta_count(m) == 0);
        sdc_model_release(m, SDC_COMPONENT_UNET); /* no mapping: a no-op */
        sdc_model_free(m);
    }

    /* mis-shaped UNet tensor */
    const char *bad = SDC_PREFIX_UNET "input_blocks.1.0.in_layers.2.weight";
    sdc_tensor *t = tb_find(&tb, bad);
    t->shape[2] = t->shape[3] = 1;
    expect_check(&tb, SDC_E_SHAPE, "mis-shaped", bad, "expected [320,320,3,3], got [320,320,1,1]", NULL);
    t->shape[2] = t->shape[3] = 3;

    /* an integer weight */
    const char *wname = SDC_PREFIX_VAE "decoder.conv_out.bias";
    t = tb_find(&tb, wname);
    t->type = SDC_TYPE_I16;
    expect_check(&tb, SDC_E_SHAPE, "integer type", wname, "i16", NULL);
    t->type = SDC_TYPE_F16;

    /* quantized types are fine when the rows fit the blocks; 1x1 kernels cannot be */
    t = tb_find(&tb, SDC_PREFIX_CLIP "encoder.layers.3.mlp.fc1.weight");
    t->type = SDC_TYPE_Q4_0;
    t->nbytes = (uint64_t)(3072 * 768 / 32 * 18);
    expect_check(&tb, SDC_OK, "q4_0 linear", NULL, NULL, NULL);
    t->nbytes = 12;
    expect_check(&tb, SDC_E_SHAPE, "q4_0 wrong byte count", "fc1.weight", "bytes", NULL);
    t->type = SDC_TYPE_F16;
    t->nbytes = 3072 * 768 * 2;
    t = tb_find(&tb, SDC_PREFIX_UNET "out.2.weight");
    t->type = SDC_TYPE_Q8_0;
    expect_check(&tb, SDC_E_SHAPE, "q8_0 conv kernel", "out.2.weight", "multiple of 32", NULL);
    t->type = SDC_TYPE_F16;

    /* missing: the VAE encoder is required (img2img) */
    const char *gone = SDC_PREFIX_VAE "encoder.mid.attn_1.k.bias";
    long gi = (long)(tb_find(&tb, gone) - tb.t);
    snprintf(tb.names[gi], sizeof tb.names[gi], "%s", "renamed.tensor");
    expect_check(&tb, SDC_E_SHAPE, "missing encoder tensor", gone, "missing", NULL);
    snprintf(tb.names[gi], sizeof tb.names[gi], "%s", gone);

    /* a duplicate canonical name (an LDM name and its diffusers twin) */
    int64_t one = 320;
    tb_add(&tb, "unet.conv_in.bias", SDC_TYPE_F16, 1, &one);
    m = tb_open(&tb, &st);
    CHECK_MSG(st == SDC_E_FORMAT && !m && strstr(err, "input_blocks.0.0.bias") && strstr(err, "twice"), "duplicate: %s",
              err);
    tb.n--;

    /* SD 2.x: context 1024 */
    t = tb_find(&tb, SDC_PREFIX_UNET "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight");
    t->shape[1] = 1024;
    expect_check(&tb, SDC_E_UNSUPPORTED, "sd2 context", "not supported: looks like SD 2.x", "1024", NULL);
    t->shape[1] = 768;

    /* SD 1.x with the UNet alone */
    table u = {0};
    for (int i = 0; i < tb.n; i++)
        if (strncmp(tb.names[i], SDC_PREFIX_UNET, strlen(SDC_PREFIX_UNET)) == 0)
            tb_add(&u, tb.names[i], tb.t[i].type, tb.t[i].ndim, tb.t[i].shape);
    expect_check(&u, SDC_E_UNSUPPORTED, "unet alone", "UNet alone", NULL, NULL);
    tb_free(&u);

    /* inpainting */
    t = tb_find(&tb, SDC_PREFIX_UNET "input_blocks.0.0.weight");
    t->shape[1] = 9;
    t->nbytes = 320 * 9 * 9 * 2;
    m = tb_open(&tb, &st);
    CHECK(st == SDC_OK && m && sdc_model_arch(m) == SDC_ARCH_SD1_INPAINT && sdc_model_in_channels(m) == 9);
    if (m) {
        CHECK(strcmp(sdc_model_arch_name(m), "sd1-inpaint") == 0);
        CHECK_MSG(sdc_model_check(m, err, sizeof err) == SDC_OK, "inpaint check: %s", err);
        sdc_model_free(m);
    }
    t->shape[1] = 8;
    t->nbytes = 320 * 8 * 9 * 2;
    expect_check(&tb, SDC_E_UNSUPPORTED, "8-channel (pix2pix)", "8-channel", NULL, NULL);
    t->shape[1] = 4;
    t->nbytes = 320 * 4 * 9 * 2;

    /* SDXL markers, ControlNet, SD3, LoRA added to a full table */
    static const struct {
        const char *name, *needle, *what;
    } extra[] = {
        {"conditioner.embedders.1.model.ln_final.weight", "SDXL", "sdxl"},
        {SDC_PREFIX_UNET "label_emb.0.0.weight", "SDXL", "sdxl label_emb"},
        {"control_model.input_hint_block.0.weight", "ControlNet", "controlnet"},
        {SDC_PREFIX_UNET "joint_blocks.0.x_block.attn.qkv.weight", "SD3/Flux", "sd3"},
        {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", "LoRA", "lora"},
        {"cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight", "SD 2.x", "openclip"},
    };
    for (size_t i = 0; i < sizeof extra / sizeof *extra; i++) {
        tb_add(&tb, extra[i].name, SDC_TYPE_F16, 1, &one);
        expect_check(&tb, SDC_E_UNSUPPORTED, extra[i].what, "not supported: looks like", extra[i].needle, extra[i].name);
        tb.n--;
    }

    /* diffusers names under "unet." / "vae." / "text_encoder." in one file, VAE attention as Linear
     * with the old names, UNet proj_in as Linear, old transformers CLIP layout: all normalised */
    table d = {0};
    int64_t lin[2] = {512, 512}, plin[2] = {320, 320};
    tb_add(&d, "vae.decoder.mid_block.attentions.0.query.weight", SDC_TYPE_F16, 2, lin);
    tb_add(&d, "vae.encoder.mid_block.attentions.0.to_out.0.weight", SDC_TYPE_F32, 2, lin);
    tb_add(&d, "unet.down_blocks.0.attentions.0.proj_in.weight", SDC_TYPE_F16, 2, plin);
    tb_add(&d, "unet.mid_block.attentions.0.proj_out.weight", SDC_TYPE_Q8_0, 2, plin); /* quantized: kept 2-D */
    tb_add(&d, "text_encoder.text_model.final_layer_norm.weight", SDC_TYPE_F16, 1, &one);
    tb_add(&d, "cond_stage_model.transformer.encoder.layers.0.mlp.fc1.bias", SDC_TYPE_F16, 1, &one);
    tb_add(&d, "model_ema.decay", SDC_TYPE_F32, 0, NULL);
    m = tb_open(&d, &st);
    CHECK_MSG(st == SDC_OK && m, "diffusers-named table: %s", err);
    if (m) {
        const sdc_tensor *q = sdc_model_get(m, SDC_PREFIX_VAE "decoder.mid.attn_1.q.weight");
        CHECK(q && q->ndim == 4 && q->shape[0] == 512 && q->shape[1] == 512 && q->shape[2] == 1 && q->shape[3] == 1);
        q = sdc_model_get(m, SDC_PREFIX_VAE "encoder.mid.attn_1.proj_out.weight");
        CHECK(q && q->ndim == 4 && q->type == SDC_TYPE_F32);
        q = sdc_model_get(m, SDC_PREFIX_UNET "input_blocks.1.1.proj_in.weight");
        CHECK(q && q->ndim == 4 && q->shape[3] == 1);
        q = sdc_model_get(m, SDC_PREFIX_UNET "middle_block.1.proj_out.weight");
        CHECK(q && q->ndim == 2);
        CHECK(sdc_model_has_tensor(m, SDC_PREFIX_CLIP "final_layer_norm.weight"));
        CHECK(sdc_model_has_tensor(m, SDC_PREFIX_CLIP "encoder.layers.0.mlp.fc1.bias"));
        CHECK(sdc_model_has_tensor(m, "model_ema.decay"));
        sdc_tensor_info ti;
        CHECK(sdc_model_tensor_info(m, 6, &ti) == SDC_OK && ti.ndim == 0 && ti.component == SDC_COMPONENT_OTHER);
        CHECK(sdc_model_arch(m) == SDC_ARCH_UNKNOWN); /* no UNet input conv */
        sdc_model_free(m);
    }
    tb_free(&d);

    /* pieces alone */
    table v = {0};
    int64_t k3[4] = {128, 3, 3, 3};
    tb_add(&v, "encoder.conv_in.weight", SDC_TYPE_F32, 4, k3);
    tb_add(&v, "decoder.conv_out.bias", SDC_TYPE_F32, 1, &one);
    expect_check(&v, SDC_E_UNSUPPORTED, "vae alone", "VAE alone", NULL, NULL);
    tb_free(&v);
    tb_add(&v, "text_model.final_layer_norm.weight", SDC_TYPE_F32, 1, &one);
    expect_check(&v, SDC_E_UNSUPPORTED, "text encoder alone", "text encoder alone", NULL, NULL);
    tb_free(&v);
    tb_add(&v, SDC_PREFIX_CLIP "final_layer_norm.weight", SDC_TYPE_F32, 1, &one);
    expect_check(&v, SDC_E_UNSUPPORTED, "ldm text encoder alone", "text encoder alone", NULL, NULL);
    tb_free(&v);
    tb_add(&v, "time_embedding.linear_1.weight", SDC_TYPE_F32, 1, &one);
    expect_check(&v, SDC_E_UNSUPPORTED, "diffusers unet alone", "UNet alone", NULL, NULL);
    tb_free(&v);
    tb_add(&v, "foo", SDC_TYPE_F32, 1, &one);
    expect_check(&v, SDC_E_UNSUPPORTED, "unknown", "unknown", NULL, NULL);
    tb_free(&v);
    m = NULL;
    CHECK(sdc_model_open_tensors(NULL, 0, &m, err, sizeof err) == SDC_OK && m);
    if (m) {
        CHECK(sdc_model_tensor_count(m) == 0 && sdc_model_check(m, err, sizeof err) == SDC_E_UNSUPPORTED);
        sdc_model_free(m);
    }
    tb_free(&tb);
}

/* ------------------------------------------------------------------ small files */

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

/* Writes a safetensors file of F16 zeros with the given names/shapes and opens it. */
static sdc_status st_case(const char *dir, const char *file, const char *const *names, const int64_t (*shapes)[4],
                          const int *ndims, int n, sdc_model **m) {
    static uint16_t zeros[320 * 2048];
    sdc_tensor t[16];
    for (int i = 0; i < n; i++) {
        memset(&t[i], 0, sizeof t[i]);
        t[i].name = names[i];
        t[i].type = SDC_TYPE_F16;
        t[i].ndim = ndims[i];
        for (int d = 0; d < ndims[i]; d++) t[i].shape[d] = shapes[i][d];
        t[i].nbytes = (uint64_t)sdc_tensor_nelem(&t[i]) * 2;
        t[i].data = zeros;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    const char *meta[] = {"format", "pt"};
    sdc_status st = sdc_st_write(path, t, n, meta, 1, err, sizeof err);
    CHECK_MSG(st == SDC_OK, "write %s: %s", path, err);
    *m = NULL;
    return sdc_model_open(path, m, err, sizeof err);
}

static void expect_file_guess(const char *dir, const char *file, const char *const *names, const int64_t (*shapes)[4],
                              const int *ndims, int n, const char *needle) {
    sdc_model *m = NULL;
    sdc_status st = st_case(dir, file, names, shapes, ndims, n, &m);
    CHECK_MSG(st == SDC_OK && m, "%s: open: %s", file, err);
    if (!m) return;
    CHECK(strcmp(sdc_model_format(m), "safetensors") == 0);
    st = sdc_model_check(m, err, sizeof err);
    printf("%-24s -> %s\n", file, sdc_model_arch_name(m));
    CHECK_MSG(st == SDC_E_UNSUPPORTED && strstr(err, "not supported: looks like") && strstr(err, needle),
              "%s: %s: %s (wanted \"%s\")", file, sdc_status_name(st), err, needle);
    const char *key = NULL;
    char val[64];
    CHECK(sdc_model_meta_count(m) == 1 && sdc_model_meta(m, 0, &key, val, sizeof val) == SDC_OK && key &&
          strcmp(key, "format") == 0 && strcmp(val, "pt") == 0);
    sdc_model_free(m);
}

static void test_files(const char *dir) {
    const char *K = SDC_PREFIX_UNET "input_blocks.0.0.weight";
    const char *CTX = SDC_PREFIX_UNET "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight";
    const char *DEC = SDC_PREFIX_VAE "decoder.conv_in.weight";
    {
        const char *names[] = {K, CTX, DEC};
        const int64_t shapes[][4] = {{320, 4, 3, 3}, {320, 1024}, {512, 4, 3, 3}};
        const int nd[] = {4, 2, 4};
        expect_file_guess(dir, "sd2.safetensors", names, shapes, nd, 3, "SD 2.x");
    }
    {
        const char *names[] = {K, CTX, "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight",
                               SDC_PREFIX_UNET "label_emb.0.0.weight"};
        const int64_t shapes[][4] = {{320, 4, 3, 3}, {320, 2048}, {768}, {1280, 256}};
        const int nd[] = {4, 2, 1, 2};
        expect_file_guess(dir, "sdxl.safetensors", names, shapes, nd, 4, "SDXL");
    }
    {
        const char *names[] = {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
                               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight",
                               "lora_te_text_model_encoder_layers_0_mlp_fc1.alpha"};
        const int64_t shapes[][4] = {{4, 320}, {320, 4}, {1}};
        const int nd[] = {2, 2, 1};
        expect_file_guess(dir, "lora.safetensors", names, shapes, nd, 3, "LoRA");
    }
    {
        const char *names[] = {"encoder.conv_in.weight", "decoder.conv_in.weight", "quant_conv.weight"};
        const int64_t shapes[][4] = {{128, 3, 3, 3}, {512, 4, 3, 3}, {8, 8, 1, 1}};
        const int nd[] = {4, 4, 4};
        expect_file_guess(dir, "vae.safetensors", names, shapes, nd, 3, "VAE alone");
    }
    {
        /* an SD 1.x file that lacks most tensors: detected, then the check names the first gap */
        const char *names[] = {K, CTX, DEC, SDC_PREFIX_CLIP "final_layer_norm.weight"};
        const int64_t shapes[][4] = {{320, 9, 3, 3}, {320, 768}, {512, 4, 3, 3}, {768}};
        const int nd[] = {4, 2, 4, 1};
        sdc_model *m = NULL;
        sdc_status st = st_case(dir, "inpaint-partial.safetensors", names, shapes, nd, 4, &m);
        CHECK_MSG(st == SDC_OK && m, "inpaint-partial: %s", err);
        if (m) {
            CHECK(sdc_model_arch(m) == SDC_ARCH_SD1_INPAINT);
            st = sdc_model_check(m, err, sizeof err);
            CHECK_MSG(st == SDC_E_SHAPE && strstr(err, SDC_PREFIX_UNET "time_embed.0.weight: missing"), "%s", err);
            const sdc_tensor *t = sdc_model_get(m, K);
            CHECK(t && t->data && t->nbytes == 320 * 9 * 9 * 2);
            sdc_model_release(m, SDC_COMPONENT_UNET);
            CHECK(t && ((const uint16_t *)t->data)[5] == 0); /* still readable after release */
            sdc_model_free(m);
        }
    }

    char path[4096];
    sdc_model *m = NULL;
    sdc_status st;
    /* pickles: zip (torch >= 1.6) and the legacy protocol-2 stream */
    snprintf(path, sizeof path, "%s/model.ckpt", dir);
    write_file(path, "PK\003\004\024\000\000\000", 8);
    st = sdc_model_open(path, &m, err, sizeof err);
    CHECK_MSG(st == SDC_E_UNSUPPORTED && !m && strstr(err, path) && strstr(err, "convert to safetensors"), "ckpt: %s", err);
    snprintf(path, sizeof path, "%s/legacy.pt", dir);
    write_file(path, "\x80\x02\x8a\x0alZ", 6);
    st = sdc_model_open(path, &m, err, sizeof err);
    CHECK_MSG(st == SDC_E_UNSUPPORTED && strstr(err, "pickle"), "legacy pickle: %s", err);
    /* broken files: the error names the file */
    snprintf(path, sizeof path, "%s/broken.gguf", dir);
    write_file(path, "GGUF\003\000\000\000", 8);
    st = sdc_model_open(path, &m, err, sizeof err);
    CHECK_MSG(st != SDC_OK && !m && strstr(err, path), "broken gguf: %s: %s", sdc_status_name(st), err);
    snprintf(path, sizeof path, "%s/broken.safetensors", dir);
    write_file(path, "\010\000\000\000\000\000\000\000{\"a\":", 13);
    st = sdc_model_open(path, &m, err, sizeof err);
    CHECK_MSG(st != SDC_OK && !m && strstr(err, path), "broken safetensors: %s: %s", sdc_status_name(st), err);
    snprintf(path, sizeof path, "%s/empty.safetensors", dir);
    write_file(path, "", 0);
    st = sdc_model_open(path, &m, err, sizeof err);
    CHECK_MSG(st != SDC_OK && !m && strstr(err, path), "empty: %s: %s", sdc_status_name(st), err);
    snprintf(path, sizeof path, "%s/does-not-exist.safetensors", dir);
    st = sdc_model_open(path, &m, err, sizeof err);
    CHECK_MSG(st == SDC_E_IO && strstr(err, path), "absent: %s", err);
    /* a folder that is not a diffusers model */
    snprintf(path, sizeof path, "%s/emptydir", dir);
    mkdir(path, 0755);
    st = sdc_model_open(path, &m, err, sizeof err);
    CHECK_MSG(st == SDC_E_IO && strstr(err, path) && strstr(err, "diffusers"), "empty dir: %s", err);
    /* a diffusers folder with only the pickle */
    snprintf(path, sizeof path, "%s/pickledir", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/pickledir/unet", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/pickledir/unet/diffusion_pytorch_model.bin", dir);
    write_file(path, "PK\003\004", 4);
    snprintf(path, sizeof path, "%s/pickledir", dir);
    st = sdc_model_open(path, &m, err, sizeof err);
    CHECK_MSG(st == SDC_E_UNSUPPORTED && strstr(err, "diffusion_pytorch_model.bin"), "pickle dir: %s", err);
    CHECK(sdc_model_open(NULL, &m, err, sizeof err) == SDC_E_INVALID);
    CHECK(sdc_model_open(path, NULL, err, sizeof err) == SDC_E_INVALID);
}

static void test_gguf(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/small.gguf", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    sdc_gguf_writer *w = sdc_gguf_writer_new(0);
    sdc_gguf_writer_set_str(w, "general.architecture", "sd1");
    sdc_gguf_writer_set_u32(w, "general.file_type", 7);
    int64_t ks[4] = {320, 4, 3, 3}, cs[2] = {320, 768}, ac[1] = {1000};
    sdc_gguf_writer_add_tensor(w, SDC_PREFIX_UNET "input_blocks.0.0.weight", SDC_TYPE_F16, 4, ks);
    sdc_gguf_writer_add_tensor(w, SDC_PREFIX_UNET "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
                               SDC_TYPE_Q8_0, 2, cs);
    sdc_gguf_writer_add_tensor(w, "alphas_cumprod", SDC_TYPE_F32, 1, ac);
    static uint8_t buf[320 * 768 / 32 * 34];
    sdc_status st = sdc_gguf_writer_begin(w, f, err, sizeof err);
    if (st == SDC_OK) st = sdc_gguf_writer_write_data(w, buf, 320 * 4 * 9 * 2, err, sizeof err);
    if (st == SDC_OK) st = sdc_gguf_writer_write_data(w, buf, sizeof buf, err, sizeof err);
    if (st == SDC_OK) st = sdc_gguf_writer_write_data(w, buf, 4000, err, sizeof err);
    if (st == SDC_OK) st = sdc_gguf_writer_end(w, err, sizeof err);
    sdc_gguf_writer_free(w);
    fclose(f);
    CHECK_MSG(st == SDC_OK, "gguf write: %s", err);
    sdc_model *m = NULL;
    st = sdc_model_open(path, &m, err, sizeof err);
    CHECK_MSG(st == SDC_OK && m, "gguf open: %s", err);
    if (!m) return;
    CHECK(strcmp(sdc_model_format(m), "gguf v3") == 0);
    CHECK(sdc_model_tensor_count(m) == 3);
    CHECK(sdc_model_meta_count(m) >= 2);
    bool saw = false;
    for (int i = 0; i < sdc_model_meta_count(m); i++) {
        const char *key;
        char val[128];
        if (sdc_model_meta(m, i, &key, val, sizeof val) == SDC_OK && strcmp(key, "general.architecture") == 0)
            saw = strstr(val, "sd1") != NULL;
    }
    CHECK(saw);
    sdc_tensor_info ti;
    CHECK(sdc_model_tensor_info(m, 1, &ti) == SDC_OK && strcmp(ti.type, "q8_0") == 0 && ti.shape[1] == 768 &&
          ti.component == SDC_COMPONENT_UNET);
    /* UNet only: a guess, not sd1 */
    CHECK(sdc_model_arch(m) == SDC_ARCH_UNKNOWN && strstr(sdc_model_arch_name(m), "UNet alone"));
    sdc_model_free(m);
}

/* ------------------------------------------------------------------ the random checkpoint */

static void component_totals(const sdc_model *m, const char *label) {
    uint64_t bytes[SDC_COMPONENT_COUNT] = {0};
    int count[SDC_COMPONENT_COUNT] = {0};
    for (int i = 0; i < sdc_model_tensor_count(m); i++) {
        sdc_tensor_info ti;
        if (sdc_model_tensor_info(m, i, &ti) != SDC_OK) continue;
        bytes[ti.component] += ti.nbytes;
        count[ti.component]++;
    }
    for (int c = 0; c < SDC_COMPONENT_COUNT; c++)
        printf("%s %-5s %4d tensors %12llu bytes\n", label, sdc_component_name((sdc_component)c), count[c],
               (unsigned long long)bytes[c]);
}

static sdc_model *test_random(const char *path) {
    sdc_model *m = NULL;
    sdc_status st = sdc_model_open(path, &m, err, sizeof err);
    CHECK_MSG(st == SDC_OK && m, "open %s: %s", path, err);
    if (!m) return NULL;
    printf("%s: format %s, arch %s, %d tensors, %d metadata\n", path, sdc_model_format(m), sdc_model_arch_name(m),
           sdc_model_tensor_count(m), sdc_model_meta_count(m));
    CHECK(strcmp(sdc_model_format(m), "safetensors") == 0);
    CHECK(sdc_model_arch(m) == SDC_ARCH_SD1 && strcmp(sdc_model_arch_name(m), "sd1") == 0);
    st = sdc_model_check(m, err, sizeof err);
    CHECK_MSG(st == SDC_OK, "check: %s", err);
    CHECK(sdc_model_tensor_count(m) == 1145);
    CHECK(sdc_model_meta_count(m) >= 1);
    component_totals(m, "random");
    const sdc_tensor *ac = sdc_model_get(m, "alphas_cumprod");
    CHECK(ac && ac->type == SDC_TYPE_F32 && ac->ndim == 1 && ac->shape[0] == 1000);
    CHECK(sdc_model_has_tensor(m, SDC_PREFIX_CLIP "embeddings.position_ids"));
    CHECK(sdc_model_has_tensor(m, "model_ema.num_updates"));
    const sdc_tensor *q = sdc_model_get(m, SDC_PREFIX_VAE "decoder.mid.attn_1.q.weight");
    CHECK(q && q->ndim == 4 && q->shape[2] == 1);
    /* release the UNet: the views stay valid and read the same bytes */
    const sdc_tensor *t = sdc_model_get(m, SDC_PREFIX_UNET "middle_block.1.proj_in.weight");
    uint8_t *copy = t ? malloc(t->nbytes) : NULL;
    if (copy) {
        memcpy(copy, t->data, t->nbytes);
        sdc_model_release(m, SDC_COMPONENT_UNET);
        sdc_model_release(m, SDC_COMPONENT_OTHER);
        CHECK(memcmp(copy, t->data, t->nbytes) == 0);
        free(copy);
    }
    /* one tensor (streamed weights): its whole pages leave the process's resident set and
     * fault in again with the same bytes */
    const sdc_tensor *big = sdc_model_get(m, SDC_PREFIX_VAE "decoder.up.3.block.0.conv1.weight");
    CHECK(big && big->nbytes > (1 << 20));
    if (big) {
        const long pg = sysconf(_SC_PAGESIZE);
        uint64_t sum = 0, sum2 = 0;
        for (uint64_t i = 0; i < big->nbytes; i += 64) sum += ((const uint8_t *)big->data)[i] * (i + 1);
        const long before = resident_file_pages();
        sdc_model_release_tensor(m, big);
        const long after = resident_file_pages();
        const long whole = (long)(big->nbytes / (uint64_t)pg) - 1; /* pages entirely inside it */
        printf("release_tensor: %s, %llu bytes: file-backed resident pages %ld -> %ld (%ld whole pages)\n",
               big->name, (unsigned long long)big->nbytes, before, after, whole);
        /* the kernel's RSS counters may lag by a few dozen page faults: ask for half */
        CHECK_MSG(before < 0 || before - after >= whole / 2, "release_tensor dropped %ld pages, expected ~%ld",
                  before - after, whole);
        for (uint64_t i = 0; i < big->nbytes; i += 64) sum2 += ((const uint8_t *)big->data)[i] * (i + 1);
        CHECK_MSG(sum == sum2, "the tensor reads differently after release_tensor");
    }
    return m;
}

/* ------------------------------------------------------------------ diffusers folder */

static bool have_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static void test_diffusers(const sdc_model *orig, const char *model_path, const char *tmp) {
    char dir[4096], cmd[12288];
    snprintf(dir, sizeof dir, "%s/sd15-diffusers", tmp);
    if (!have_dir(dir)) {
        const char *py = system("python3 -c 'import json' >/dev/null 2>&1") == 0 ? "python3" : "/usr/bin/python3";
        snprintf(cmd, sizeof cmd, "%s '%s/tests/make_diffusers.py' '%s' '%s' --vae-fp16-only --decoy-fp16", py,
                 SDC_SOURCE_DIR, model_path, dir);
        printf("running: %s\n", cmd);
        fflush(stdout);
        int rc = system(cmd);
        if (rc != 0) {
            printf("note: make_diffusers.py failed (rc %d); diffusers part skipped\n", rc);
            CHECK_MSG(rc == 0, "make_diffusers.py failed");
            return;
        }
    } else {
        printf("reusing %s\n", dir);
    }
    sdc_model *m = NULL;
    sdc_status st = sdc_model_open(dir, &m, err, sizeof err);
    CHECK_MSG(st == SDC_OK && m, "open %s: %s", dir, err);
    if (!m) return;
    printf("%s: format %s, arch %s, %d tensors, %d metadata\n", dir, sdc_model_format(m), sdc_model_arch_name(m),
           sdc_model_tensor_count(m), sdc_model_meta_count(m));
    CHECK(strcmp(sdc_model_format(m), "diffusers") == 0);
    CHECK(sdc_model_arch(m) == SDC_ARCH_SD1);
    st = sdc_model_check(m, err, sizeof err);
    CHECK_MSG(st == SDC_OK, "diffusers check: %s", err);
    component_totals(m, "diffusers");
    /* metadata: one "format" per file, prefixed by the sub-folder */
    bool saw_unet = false;
    for (int i = 0; i < sdc_model_meta_count(m); i++) {
        const char *key;
        char val[64];
        if (sdc_model_meta(m, i, &key, val, sizeof val) == SDC_OK && strcmp(key, "unet/format") == 0)
            saw_unet = strcmp(val, "pt") == 0;
    }
    CHECK(saw_unet);
    const char *sn = sdc_model_stored_name(m, SDC_PREFIX_VAE "decoder.mid.attn_1.q.weight");
    CHECK(sn && strcmp(sn, "decoder.mid_block.attentions.0.to_q.weight") == 0);
    /* every tensor of the three networks in the original is here, with the same bytes */
    int n = sdc_model_tensor_count(orig), compared = 0, bad = 0;
    uint64_t bytes = 0;
    for (int i = 0; i < n; i++) {
        sdc_tensor_info ti;
        sdc_model_tensor_info(orig, i, &ti);
        if (ti.component == SDC_COMPONENT_OTHER) continue;
        const sdc_tensor *a = sdc_model_get(orig, ti.name), *b = sdc_model_get(m, ti.name);
        bool same = b && a->type == b->type && a->ndim == b->ndim && a->nbytes == b->nbytes;
        for (int d = 0; same && d < a->ndim; d++) same = a->shape[d] == b->shape[d];
        if (same) same = memcmp(a->data, b->data, a->nbytes) == 0;
        if (!same && bad++ < 5) fprintf(stderr, "diffusers differs: %s (%s)\n", ti.name, b ? "data/shape" : "missing");
        compared++;
        bytes += ti.nbytes;
    }
    printf("diffusers: %d tensors (%llu bytes) compared with the original, %d differ\n", compared,
           (unsigned long long)bytes, bad);
    CHECK(bad == 0);
    CHECK(compared == sdc_model_tensor_count(m));
    sdc_model_release(m, SDC_COMPONENT_VAE);
    sdc_model_free(m);
}

int main(void) {
    test_expected_vs_tsv();
    test_mapping();
    test_tables();
    test_release_tensor_heap();
    const char *tmp = tu_tmpdir("test_model");
    test_files(tmp);
    test_gguf(tmp);
    const char *model = getenv("SDC_TEST_MODEL");
    struct stat sb;
    if (model && *model && stat(model, &sb) == 0) {
        sdc_model *m = test_random(model);
        if (m) {
            test_diffusers(m, model, tmp);
            sdc_model_free(m);
        }
    } else {
        printf("note: random checkpoint not available (SDC_TEST_MODEL); file-based parts skipped\n");
    }
    return check_done();
}
