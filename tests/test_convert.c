/* test_convert.c - `sdc convert` on the random-weight checkpoint, for every output type:
 * the output opens, passes the SD 1.x check, holds the expected tensor counts and types, and
 * every value matches the source within the format's error bound (F16 exact, BF16 within
 * its rounding, block formats within half a quantization step plus the error of the f16
 * scales). The published files' rule (--quantize-all) must quantize 955 of 1131 tensors.
 *
 * Sanitizer builds test a subset of types (the scalar quantizers are ~10x slower there). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "model.h"
#include "quant.h"
#include "sdc.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

/* Bound on |dequant(quant(x)) - x| for one block of source values: half a step of the
 * block's scale d (a whole step for Q4_0/Q5_0, whose code for the value opposite the
 * block's extreme would be 16/32 and is clamped to 15/31), plus the error of storing d (and
 * the min m) as f16 (rel 2^-11) times the largest quantized magnitude, plus float32 slack. */
static double block_bound(sdc_type t, const float *x, int n) {
    double amax = 0, mx = -INFINITY, mn = INFINITY;
    for (int i = 0; i < n; i++) {
        amax = fmax(amax, fabs(x[i]));
        mx = fmax(mx, x[i]);
        mn = fmin(mn, x[i]);
    }
    const double h = 1.0 / 2048; /* f16 relative rounding */
    double d;
    switch (t) {
    case SDC_TYPE_Q8_0: d = amax / 127; return d / 2 + 128 * d * h + 1e-6 * amax;
    case SDC_TYPE_Q4_0: d = amax / 8; return d + 8 * d * h + 1e-6 * amax;
    case SDC_TYPE_Q5_0: d = amax / 16; return d + 16 * d * h + 1e-6 * amax;
    case SDC_TYPE_Q4_1: d = (mx - mn) / 15; return d / 2 + (15 * d + fabs(mn)) * h + 1e-6 * amax;
    case SDC_TYPE_Q5_1: d = (mx - mn) / 31; return d / 2 + (31 * d + fabs(mn)) * h + 1e-6 * amax;
    default: return 0;
    }
}

static int count_quantized_rule(const sdc_model *m, const sdc_convert_params *p, int *n_out) {
    int n = sdc_model_tensor_count(m), q = 0;
    *n_out = 0;
    for (int i = 0; i < n; i++) {
        sdc_tensor_info ti;
        sdc_model_tensor_info(m, i, &ti);
        const char *ty = sdc_convert_tensor_type(ti.name, ti.ndim, ti.shape, ti.type, p);
        if (!strcmp(ty, p->type)) q++;
    }
    return q;
}

static void check_one(const char *src_path, const sdc_model *src, const char *type, bool quantize_all,
                      const char *tmp) {
    char out[4096], err[1024] = "", label[128];
    snprintf(out, sizeof out, "%s/rand-%s%s.gguf", tmp, type, quantize_all ? "-all" : "");
    sdc_convert_params p = sdc_convert_default_params();
    p.type = type;
    p.quantize_all = quantize_all;
    sdc_status st = sdc_convert(src_path, out, &p, err, sizeof err);
    CHECK_MSG(st == SDC_OK, "convert %s: %s", type, err);
    if (st != SDC_OK) return;

    sdc_model *m = NULL;
    st = sdc_model_open(out, &m, err, sizeof err);
    CHECK_MSG(st == SDC_OK, "open %s: %s", out, err);
    if (st != SDC_OK) return;
    CHECK_MSG(sdc_model_check(m, err, sizeof err) == SDC_OK, "%s: %s", out, err);
    CHECK(sdc_model_arch(m) == SDC_ARCH_SD1);
    int n = sdc_model_tensor_count(m);
    CHECK_MSG(n == 1131, "%s: %d tensors, expected 1131 (1130 network tensors + alphas_cumprod)", out, n);

    sdc_type target = (sdc_type)sdc_type_from_name(type);
    int n_quant = 0, n_f16 = 0, bad_bound = 0, bad_type = 0;
    double worst_ratio = 0, worst_abs = 0;
    const char *worst_name = "";
    float *a = NULL, *b = NULL;
    size_t cap = 0;
    for (int i = 0; i < n; i++) {
        sdc_tensor_info ti;
        sdc_model_tensor_info(m, i, &ti);
        const sdc_tensor *t = sdc_model_get(m, ti.name), *s = sdc_model_get(src, ti.name);
        CHECK_MSG(s != NULL, "%s not in the source", ti.name);
        if (!s) continue;
        const char *want = sdc_convert_tensor_type(ti.name, s->ndim, s->shape, sdc_type_name(s->type), &p);
        if (strcmp(want, sdc_type_name(t->type))) bad_type++;
        if (t->type == target) n_quant++;
        if (t->type == SDC_TYPE_F16) n_f16++;
        int64_t ne = sdc_tensor_nelem(t);
        if ((size_t)ne > cap) {
            cap = (size_t)ne;
            a = realloc(a, cap * sizeof *a);
            b = realloc(b, cap * sizeof *b);
        }
        CHECK(sdc_dequantize_row(t->type, t->data, a, ne));
        CHECK(sdc_dequantize_row(s->type, s->data, b, ne));
        const sdc_type_traits *tr = sdc_type_traits_of(t->type);
        int blk = tr->is_quant ? tr->block : 1;
        for (int64_t o = 0; o < ne; o += blk) {
            double bound;
            if (tr->is_quant) bound = block_bound(t->type, b + o, blk);
            else if (t->type == SDC_TYPE_BF16) bound = fabs(b[o]) / 256; /* 8-bit significand: rel 2^-9, x2 slack */
            else bound = 0; /* f16/f32 of f16 source: exact */
            for (int j = 0; j < blk; j++) {
                double e = fabs((double)a[o + j] - b[o + j]);
                if (e > bound) bad_bound++;
                if (e > worst_abs) worst_abs = e;
                if (bound > 0 && e / bound > worst_ratio) {
                    worst_ratio = e / bound;
                    worst_name = t->name;
                }
            }
        }
    }
    free(a);
    free(b);
    snprintf(label, sizeof label, "%s%s", type, quantize_all ? " --quantize-all" : "");
    printf("%-22s quantized %4d, f16 %4d, max abs err %.3g, worst err/bound %.3f (%s)\n", label, n_quant, n_f16,
           worst_abs, worst_ratio, worst_name);
    CHECK_MSG(bad_type == 0, "%s: %d tensors with an unexpected type", label, bad_type);
    CHECK_MSG(bad_bound == 0, "%s: %d values outside the format's error bound", label, bad_bound);
    int n_rule;
    int want_q = count_quantized_rule(src, &p, &n_rule);
    if (sdc_type_traits_of(target)->is_quant) {
        /* counted independently over ../shared/data/sd15_tensors.tsv: 955 network tensors have
         * rows that are a multiple of 32; 254 of them are 2-D+ and not an embedding or the
         * time embedding (the default rule) */
        if (quantize_all) CHECK_MSG(n_quant == 955, "%s: %d quantized, the published rule quantizes 955", label, n_quant);
        else CHECK_MSG(n_quant == 254, "%s: %d quantized, the default rule quantizes 254", label, n_quant);
        CHECK(n_quant == want_q);
    }
    sdc_model_free(m);
    unlink(out);
}

int main(void) {
    const char *model = tu_require_model();
    const char *tmp = tu_tmpdir("test_convert");
    char err[1024] = "";
    sdc_model *src = NULL;
    if (sdc_model_open(model, &src, err, sizeof err) != SDC_OK) {
        CHECK_MSG(0, "%s", err);
        return check_done();
    }
#ifdef SANITIZED
    static const char *types[] = {"f16", "q4_1"};
    static const bool all[] = {false, true};
#else
    static const char *types[] = {"f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "q8_0", "q4_0", "q4_1"};
    static const bool all[] = {false, false, false, false, false, false, false, true, true, true};
#endif
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) check_one(model, src, types[i], all[i], tmp);

    /* bad arguments fail cleanly and leave nothing behind */
    sdc_convert_params p = sdc_convert_default_params();
    char out[4096];
    snprintf(out, sizeof out, "%s/never.gguf", tmp);
    p.type = "q3_k";
    CHECK(sdc_convert(model, out, &p, err, sizeof err) == SDC_E_INVALID);
    CHECK(strstr(err, "q3_k") != NULL);
    p.type = "q8_0";
    CHECK(sdc_convert("/nonexistent/model.safetensors", out, &p, err, sizeof err) == SDC_E_IO);
    p.vocab_path = "/nonexistent/vocab.txt.gz";
    CHECK(sdc_convert(model, out, &p, err, sizeof err) != SDC_OK);
    CHECK(access(out, F_OK) != 0);
    sdc_model_free(src);
    return check_done();
}
