/* test_convert.c - `sdc convert` on the random-weight checkpoint, for every output type:
 * the output opens, passes the SD 1.x check, holds the expected tensor counts and types, and
 * every value matches the source within the format's error bound (F16 exact, BF16 within
 * its rounding, Q8_0 within half a quantization step plus the error of the f16 scale, the
 * searched formats Q4_0..Q5_1 within the bound of their weighted search, weighted_bounds
 * below). The published files' rule (--quantize-all) must quantize 955 of 1131 tensors.
 *
 * Sanitizer builds test one type, q4_1 --quantize-all (the quantizers are ~10x slower there). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "half.h"
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

/* Bound on |dequant(quant(x)) - x| for one block of source values quantized by a reference
 * quantizer (Q8_0 here; the other cases document the reference formats): half a step of
 * the block's scale d (a whole step for Q4_0/Q5_0, whose code for the value opposite the
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

/* convert writes Q4_0, Q4_1, Q5_0, Q5_1 with the weighted search (sdc_quantize_rows): per
 * block it keeps the candidate scale (and min) with the smallest weighted squared error
 * E = sum_j w_j e_j^2, w_j = sqrt(sigma2 + x_j^2), sigma2 = mean x^2 of the row, and each
 * candidate's scale is the weighted least-squares fit for its codes. Its first candidate is
 * the plain one: symmetric formats (nmax 8/16) codes round(x * nmax / -max) clamped to
 * [-nmax, nmax-1] with step amax/nmax, every value within c0 = amax/nmax (a whole step only
 * for the clamped far end); Q4_1/Q5_1 (nmax 15/31) step (max - min')/nmax with
 * min' = min(min, 0) and no clamping, every value within c0 = step/2. Since the winner never
 * has a larger E than that start (the least-squares fit only lowers it),
 *     E <= W c0^2,  W = sum_j w_j,
 * which bounds the block's weighted RMS error by c0 and each value by
 *     |e_j| <= c0 sqrt(W / w_j)
 * (the price of the search: it may clip the block's extreme value to fit the rest better;
 * this per-value bound is loose, the RMS one is tight). Storing d and m as f16 adds at most
 * F = nmax |d| 2^-11 + |m| 2^-11 (+2^-24 each for subnormals) to every value, so to both
 * bounds (Minkowski for the RMS); 1e-5 relative covers the float32 arithmetic of the search.
 * Checks one block; w from the row's sigma2 (double). Returns the number of violations. */
static int weighted_block_check(sdc_type t, const float *x, const float *y, const uint8_t *blk, double sigma2,
                                double *worst_ratio) {
    const bool affine = t == SDC_TYPE_Q4_1 || t == SDC_TYPE_Q5_1;
    const int nmax = t == SDC_TYPE_Q4_0 ? 8 : t == SDC_TYPE_Q5_0 ? 16 : t == SDC_TYPE_Q4_1 ? 15 : 31;
    uint16_t hd, hm = 0;
    memcpy(&hd, blk, 2);
    if (affine) memcpy(&hm, blk + 2, 2);
    double amax = 0, mn = INFINITY, mx = -INFINITY, W = 0, E = 0, w[32];
    for (int j = 0; j < 32; j++) {
        amax = fmax(amax, fabs(x[j]));
        mn = fmin(mn, x[j]);
        mx = fmax(mx, x[j]);
        w[j] = sqrt(sigma2 + (double)x[j] * x[j]);
        W += w[j];
    }
    const double c0 = (affine ? (mx - fmin(mn, 0)) / nmax / 2 : amax / nmax) * (1 + 1e-5) + 1e-30;
    const double F = nmax * (fabs(sdc_f16_to_f32(hd)) * 0x1p-11 + 0x1p-24) +
                     (affine ? fabs(sdc_f16_to_f32(hm)) * 0x1p-11 + 0x1p-24 : 0) + 1e-6 * amax;
    int bad = 0;
    for (int j = 0; j < 32; j++) {
        const double e = fabs((double)y[j] - x[j]), bound = c0 * sqrt(W / w[j]) + F;
        if (!(e <= bound)) bad++;
        if (e / bound > *worst_ratio) *worst_ratio = e / bound;
        E += w[j] * e * e;
    }
    const double rms = W > 0 ? sqrt(E / W) : 0, rms_bound = c0 + F;
    if (!(rms <= rms_bound)) bad++;
    return bad;
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
        if (t->type == SDC_TYPE_Q4_0 || t->type == SDC_TYPE_Q4_1 || t->type == SDC_TYPE_Q5_0 ||
            t->type == SDC_TYPE_Q5_1) {
            const int64_t row = t->shape[t->ndim - 1];
            double worst = 0;
            for (int64_t r0 = 0; r0 < ne; r0 += row) {
                double s2 = 0;
                for (int64_t j = 0; j < row; j++) s2 += (double)b[r0 + j] * b[r0 + j];
                s2 /= (double)row;
                for (int64_t o = r0; o < r0 + row; o += 32)
                    bad_bound += weighted_block_check(t->type, b + o, a + o, (const uint8_t *)t->data + (o / 32) *
                                                      tr->block_bytes, s2, &worst);
            }
            for (int64_t j = 0; j < ne; j++) worst_abs = fmax(worst_abs, fabs((double)a[j] - b[j]));
            if (worst > worst_ratio) worst_ratio = worst, worst_name = t->name;
            continue;
        }
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
    static const char *types[] = {"q4_1"}; /* the weighted search and the published rule; ~7 min here */
    static const bool all[] = {true};
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
