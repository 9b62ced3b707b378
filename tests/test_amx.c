/* test_amx.c - the opt-in bf16 path on AMX tiles (cpu->bf16, src/cpu/amx.c), linear and conv2d:
 *   - against fp64 over the bf16-rounded operands (round to nearest even), within the fp32
 *     summation bound: checks that the path rounds exactly that way and sums in fp32;
 *   - against fp64 over the exact operands, within the bf16 bound gemm.h states;
 *   - 1 vs 2 vs 3 threads bit for bit; odd shapes (K not a multiple of 32, K over one chunk,
 *     M and N over one task, widths below 16, stride 2, 1x1), several weight types;
 *   - attention (non-causal) against fp64 within a bound built from the bf16 score error, and
 *     causal attention left on the fp32 path;
 *   - with bf16 asked for where AMX cannot run (scalar ISA), the fp32 path's bits.
 * Without AMX only the last point runs (and the test says so). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu/cpu.h"
#include "cpu/attention.h"
#include "cpu/gemm.h"
#include "half.h"
#include "quant.h"
#include "testutil.h"

#define U24 (1.0 / (1 << 24))
/* bf16 rounding: relative 2^-9 per operand, so a product is off by at most 2^-8 + 2^-18 */
#define BF16_PROD (1.0 / (1 << 8) + 1.0 / (1 << 18))

static sdc_cpu *c1, *c2, *c3;
static double worst_tight = 0, worst_loose = 0;

static float bf16_round(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);
    u &= 0xFFFF0000u;
    memcpy(&v, &u, 4);
    return v;
}

static void *make_w(tu_rng *r, sdc_type t, int64_t rows, int64_t K, float *wf) {
    uint64_t rb;
    sdc_type_bytes(t, (uint64_t)K, &rb);
    uint8_t *w = malloc((size_t)(rb * (uint64_t)rows));
    float *tmp = malloc((size_t)K * sizeof(float));
    for (int64_t i = 0; i < rows; i++) {
        for (int64_t k = 0; k < K; k++) tmp[k] = (float)tu_rng_normal(r);
        sdc_quantize_row(t, tmp, w + i * rb, K);
        sdc_dequantize_row(t, w + i * rb, wf + i * K, K);
    }
    free(tmp);
    return w;
}

/* got vs the two references; ref_b uses the bf16-rounded operands. sum_ab = sum |a b| (of
 * the rounded operands), bias_abs = |bias|: the fp32 chain starts at the bias. */
static void judge(const char *label, int64_t n, const float *got, const double *ref_x, const double *ref_b,
                  const double *sum_ab, const double *bias_abs, int64_t K) {
    int64_t bad_t = 0, bad_l = 0;
    double wt = 0, wl = 0;
    for (int64_t i = 0; i < n; i++) {
        const double tight = (K + 2) * U24 * (sum_ab[i] * 1.01 + bias_abs[i]);
        const double loose = BF16_PROD * sum_ab[i] + tight;
        const double et = fabs(got[i] - ref_b[i]), el = fabs(got[i] - ref_x[i]);
        if (!(et <= tight)) bad_t++;
        if (!(el <= loose)) bad_l++;
        if (tight > 0 && et / tight > wt) wt = et / tight;
        if (loose > 0 && el / loose > wl) wl = el / loose;
    }
    printf("%-44s err/fp32-bound (bf16 operands) %.3f, err/bf16-bound (exact operands) %.3f%s\n", label, wt, wl,
           bad_t || bad_l ? " FAIL" : "");
    CHECK_MSG(bad_t == 0, "%s: %lld outputs off the bf16-operand reference", label, (long long)bad_t);
    CHECK_MSG(bad_l == 0, "%s: %lld outputs beyond the bf16 bound", label, (long long)bad_l);
    if (wt > worst_tight) worst_tight = wt;
    if (wl > worst_loose) worst_loose = wl;
}

static void linear_case(tu_rng *r, sdc_type t, int64_t M, int64_t N, int64_t K, int64_t ldx, int64_t ldy, int use_bias) {
    float *wf = malloc((size_t)(N * K) * sizeof(float));
    void *w = make_w(r, t, N, K, wf);
    float *x = malloc((size_t)(M * ldx) * sizeof(float)), *bias = malloc((size_t)N * sizeof(float));
    for (int64_t i = 0; i < M * ldx; i++) x[i] = (float)tu_rng_normal(r);
    for (int64_t i = 0; i < N; i++) bias[i] = (float)tu_rng_normal(r);
    const size_t yb = (size_t)(M * ldy) * sizeof(float);
    float *y1 = malloc(yb), *y2 = malloc(yb), *y3 = malloc(yb);
    for (size_t i = 0; i < yb / 4; i++) y1[i] = y2[i] = y3[i] = -5.0f;
    CHECK(sdc_cpu_linear(c1, M, N, K, x, ldx, t, w, use_bias ? bias : NULL, y1, ldy) == SDC_OK);
    CHECK(sdc_cpu_linear(c2, M, N, K, x, ldx, t, w, use_bias ? bias : NULL, y2, ldy) == SDC_OK);
    CHECK(sdc_cpu_linear(c3, M, N, K, x, ldx, t, w, use_bias ? bias : NULL, y3, ldy) == SDC_OK);
    char label[96];
    snprintf(label, sizeof label, "linear %s M=%lld N=%lld K=%lld%s", sdc_type_name(t), (long long)M, (long long)N,
             (long long)K, use_bias ? " bias" : "");
    CHECK_MSG(!memcmp(y1, y2, yb) && !memcmp(y1, y3, yb), "%s: 1/2/3 threads differ", label);
    double *rx = malloc((size_t)(M * N) * sizeof(double)), *rbf = malloc((size_t)(M * N) * sizeof(double));
    double *sab = malloc((size_t)(M * N) * sizeof(double)), *babs = malloc((size_t)(M * N) * sizeof(double));
    float *got = malloc((size_t)(M * N) * sizeof(float));
    int64_t pad_bad = 0;
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = N; j < ldy; j++) pad_bad += y1[i * ldy + j] != -5.0f;
        for (int64_t n = 0; n < N; n++) {
            double s = 0, sb = 0, a = 0;
            for (int64_t k = 0; k < K; k++) {
                const float xv = x[i * ldx + k], wv = wf[n * K + k];
                s += (double)xv * wv;
                sb += (double)bf16_round(xv) * bf16_round(wv);
                a += fabs((double)xv * wv) * 1.0079; /* |bf16(a) bf16(b)| <= |ab| (1 + 2^-9)^2 */
            }
            const double b = use_bias ? bias[n] : 0.0;
            rx[i * N + n] = s + b;
            rbf[i * N + n] = sb + b;
            sab[i * N + n] = a;
            babs[i * N + n] = fabs(b);
            got[i * N + n] = y1[i * ldy + n];
        }
    }
    CHECK_MSG(pad_bad == 0, "%s: wrote past N", label);
    judge(label, M * N, got, rx, rbf, sab, babs, K);
    free(wf); free(w); free(x); free(bias); free(y1); free(y2); free(y3);
    free(rx); free(rbf); free(sab); free(babs); free(got);
}

static void conv_case(tu_rng *r, sdc_type t, int64_t B, int64_t C, int64_t H, int64_t W, int64_t O, int k, int stride,
                      int pad) {
    const int64_t K = C * k * k, Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    float *wf = malloc((size_t)(O * K) * sizeof(float));
    void *w = make_w(r, t, O, K, wf);
    float *x = malloc((size_t)(B * C * H * W) * sizeof(float)), *bias = malloc((size_t)O * sizeof(float));
    for (int64_t i = 0; i < B * C * H * W; i++) x[i] = (float)tu_rng_normal(r);
    for (int64_t i = 0; i < O; i++) bias[i] = (float)tu_rng_normal(r);
    const int64_t ny = B * O * Ho * Wo;
    float *y1 = malloc((size_t)ny * 4), *y2 = malloc((size_t)ny * 4), *y3 = malloc((size_t)ny * 4);
    CHECK(sdc_cpu_conv2d(c1, B, C, H, W, x, O, k, k, stride, pad, t, w, bias, y1) == SDC_OK);
    CHECK(sdc_cpu_conv2d(c2, B, C, H, W, x, O, k, k, stride, pad, t, w, bias, y2) == SDC_OK);
    CHECK(sdc_cpu_conv2d(c3, B, C, H, W, x, O, k, k, stride, pad, t, w, bias, y3) == SDC_OK);
    char label[96];
    snprintf(label, sizeof label, "conv %s %lldx%lldx%lldx%lld->%lld k%d s%d p%d", sdc_type_name(t), (long long)B,
             (long long)C, (long long)H, (long long)W, (long long)O, k, stride, pad);
    CHECK_MSG(!memcmp(y1, y2, (size_t)ny * 4) && !memcmp(y1, y3, (size_t)ny * 4), "%s: 1/2/3 threads differ", label);
    double *rx = malloc((size_t)ny * sizeof(double)), *rbf = malloc((size_t)ny * sizeof(double));
    double *sab = malloc((size_t)ny * sizeof(double)), *babs = malloc((size_t)ny * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t oy = 0; oy < Ho; oy++)
                for (int64_t ox = 0; ox < Wo; ox++) {
                    double s = 0, sb = 0, a = 0;
                    for (int64_t c = 0; c < C; c++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                const int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                const float xv = x[((b * C + c) * H + iy) * W + ix];
                                const float wv = wf[o * K + (c * k + ky) * k + kx];
                                s += (double)xv * wv;
                                sb += (double)bf16_round(xv) * bf16_round(wv);
                                a += fabs((double)xv * wv) * 1.0079;
                            }
                    const int64_t i = ((b * O + o) * Ho + oy) * Wo + ox;
                    rx[i] = s + bias[o];
                    rbf[i] = sb + bias[o];
                    sab[i] = a;
                    babs[i] = fabs(bias[o]);
                }
    judge(label, ny, y1, rx, rbf, sab, babs, K);
    free(wf); free(w); free(x); free(bias); free(y1); free(y2); free(y3);
    free(rx); free(rbf); free(sab); free(babs);
}


/* Attention: q, k, v as column slices of one fused [B, N, 3*H*d] buffer (Nq = Nk = N) or
 * separate tensors. Bound per output: the scores (natural-log units) are off by at most
 * delta = scale * sum_c |q_c k_c| * (2^-8 + 2^-18 + d 2^-24) each, so every normalised
 * weight by a factor within e^(+-2 delta); P and V are rounded to bf16 and the sum is fp32:
 * |err| <= (e^(2 delta_max) (1 + 2^-7) - 1) * sum_j w_j |v_j| + 1e-6 * max|v|.
 * And tighter, against fp64 over the rounded operands (Q * scale * log2(e) as the kernel forms
 * it, K, V): only P's rounding (2^-9 per weight) and fp32 sums remain, so
 * |err| <= 2^-8 * sum_j w'_j |v'_j| + 1e-6 * max|v|. */
static void attn_case(tu_rng *r, int64_t B, int64_t H, int64_t Nq, int64_t Nk, int64_t d, int fused) {
    const int64_t hd = H * d, ld = fused ? 3 * hd : hd;
    float *qkv = NULL, *q, *k, *v;
    if (fused) {
        qkv = malloc((size_t)(B * Nq * ld) * sizeof(float));
        for (int64_t i = 0; i < B * Nq * ld; i++) qkv[i] = (float)tu_rng_normal(r);
        q = qkv, k = qkv + hd, v = qkv + 2 * hd;
    } else {
        q = malloc((size_t)(B * Nq * hd) * sizeof(float));
        k = malloc((size_t)(B * Nk * hd) * sizeof(float));
        v = malloc((size_t)(B * Nk * hd) * sizeof(float));
        for (int64_t i = 0; i < B * Nq * hd; i++) q[i] = (float)tu_rng_normal(r);
        for (int64_t i = 0; i < B * Nk * hd; i++) k[i] = (float)tu_rng_normal(r), v[i] = (float)tu_rng_normal(r);
    }
    const int64_t ldq = ld, ldk = ld, ldv = ld;
    const float scale = 1.0f / sqrtf((float)d);
    const size_t ob = (size_t)(B * Nq * hd) * sizeof(float);
    float *o1 = malloc(ob), *o2 = malloc(ob), *o3 = malloc(ob);
    CHECK(sdc_cpu_attention(c1, B, H, Nq, Nk, d, q, ldq, k, ldk, v, ldv, o1, hd, scale, false) == SDC_OK);
    CHECK(sdc_cpu_attention(c2, B, H, Nq, Nk, d, q, ldq, k, ldk, v, ldv, o2, hd, scale, false) == SDC_OK);
    CHECK(sdc_cpu_attention(c3, B, H, Nq, Nk, d, q, ldq, k, ldk, v, ldv, o3, hd, scale, false) == SDC_OK);
    char label[96];
    snprintf(label, sizeof label, "attention B=%lld H=%lld %lldx%lld d=%lld%s", (long long)B, (long long)H,
             (long long)Nq, (long long)Nk, (long long)d, fused ? " fused qkv" : "");
    CHECK_MSG(!memcmp(o1, o2, ob) && !memcmp(o1, o3, ob), "%s: 1/2/3 threads differ", label);
    int64_t bad = 0, bad_b = 0;
    double worst = 0, worst_b = 0, max_err = 0;
    const float qs = (float)((double)scale * 1.44269504088896340736);
    double *s = malloc((size_t)Nk * sizeof(double)), *dl = malloc((size_t)Nk * sizeof(double));
    double *sb = malloc((size_t)Nk * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < Nq; i++) {
                const float *qi = q + (b * Nq + i) * ldq + h * d;
                double mx = -INFINITY, dmax = 0, mxb = -INFINITY;
                for (int64_t j = 0; j < Nk; j++) {
                    const float *kj = k + (b * Nk + j) * ldk + h * d;
                    double acc = 0, aabs = 0, accb = 0;
                    for (int64_t c = 0; c < d; c++) {
                        acc += (double)qi[c] * kj[c], aabs += fabs((double)qi[c] * kj[c]);
                        accb += (double)bf16_round(qi[c] * qs) * bf16_round(kj[c]);
                    }
                    sb[j] = accb;
                    if (sb[j] > mxb) mxb = sb[j];
                    s[j] = acc * scale;
                    dl[j] = scale * aabs * (1.0 / 256 + 1.0 / (1 << 18) + d * U24) * 1.01;
                    if (s[j] > mx) mx = s[j];
                    if (dl[j] > dmax) dmax = dl[j];
                }
                double sum = 0, sumb = 0;
                for (int64_t j = 0; j < Nk; j++) s[j] = exp(s[j] - mx), sum += s[j];
                for (int64_t j = 0; j < Nk; j++) sb[j] = exp2(sb[j] - mxb), sumb += sb[j];
                const double fac = exp(2 * dmax) * (1 + 1.0 / 128) - 1;
                for (int64_t c = 0; c < d; c++) {
                    double ref = 0, wv = 0, vmax = 0, refb = 0, wvb = 0;
                    for (int64_t j = 0; j < Nk; j++) {
                        const float vf = v[(b * Nk + j) * ldv + h * d + c];
                        const double vv = vf, vb = bf16_round(vf);
                        ref += s[j] / sum * vv;
                        wv += s[j] / sum * fabs(vv);
                        refb += sb[j] / sumb * vb;
                        wvb += sb[j] / sumb * fabs(vb);
                        if (fabs(vv) > vmax) vmax = fabs(vv);
                    }
                    const double tol = fac * wv + 1e-6 * vmax, tol_b = wvb / 256 + 1e-6 * vmax;
                    const double got = o1[(b * Nq + i) * hd + h * d + c];
                    const double err = fabs(got - ref), err_b = fabs(got - refb);
                    if (!(err <= tol)) bad++;
                    if (!(err_b <= tol_b)) bad_b++;
                    if (err_b / tol_b > worst_b) worst_b = err_b / tol_b;
                    if (err > max_err) max_err = err;
                    if (tol > 0 && err / tol > worst) worst = err / tol;
                }
            }
    printf("%-44s max_err %.3g, err/bound %.3f, against bf16 operands err/bound %.3f%s\n", label, max_err, worst,
           worst_b, bad || bad_b ? " FAIL" : "");
    CHECK_MSG(bad == 0, "%s: %lld outputs beyond the bf16 attention bound", label, (long long)bad);
    CHECK_MSG(bad_b == 0, "%s: %lld outputs off the bf16-operand reference", label, (long long)bad_b);
    /* causal attention keeps the fp32 path: same bits as a context without bf16 */
    if (Nq == Nk && B == 1) {
        sdc_cpu *plain = sdc_cpu_new(2, SDC_ISA_AVX512);
        CHECK(sdc_cpu_attention(plain, B, H, Nq, Nk, d, q, ldq, k, ldk, v, ldv, o2, hd, scale, true) == SDC_OK);
        CHECK(sdc_cpu_attention(c2, B, H, Nq, Nk, d, q, ldq, k, ldk, v, ldv, o3, hd, scale, true) == SDC_OK);
        CHECK_MSG(!memcmp(o2, o3, ob), "%s: causal attention left the fp32 path", label);
        sdc_cpu_free(plain);
    }
    free(s); free(dl); free(sb); free(o1); free(o2); free(o3);
    if (fused) free(qkv);
    else free(q), free(k), free(v);
}

/* bf16 = 1 where AMX cannot run (the scalar ISA): the fp32 path, bit for bit. */
static void test_fallback(tu_rng *r) {
    sdc_cpu *off = sdc_cpu_new(1, SDC_ISA_SCALAR), *on = sdc_cpu_new(1, SDC_ISA_SCALAR);
    on->bf16 = 1;
    CHECK(!sdc_cpu_bf16_active(on));
    const int64_t M = 10, N = 20, K = 64;
    float wf[20 * 64], x[10 * 64], y0[10 * 20], y1[10 * 20], cx[2 * 4 * 6 * 6], cy0[2 * 20 * 36], cy1[2 * 20 * 36];
    void *w = make_w(r, SDC_TYPE_F16, N, K, wf);
    for (int i = 0; i < M * K; i++) x[i] = (float)tu_rng_normal(r);
    for (int i = 0; i < 2 * 4 * 36; i++) cx[i] = (float)tu_rng_normal(r);
    CHECK(sdc_cpu_linear(off, M, N, K, x, K, SDC_TYPE_F16, w, NULL, y0, N) == SDC_OK);
    CHECK(sdc_cpu_linear(on, M, N, K, x, K, SDC_TYPE_F16, w, NULL, y1, N) == SDC_OK);
    CHECK_MSG(!memcmp(y0, y1, sizeof y0), "linear: bf16 without AMX is not the fp32 path");
    /* w as a conv weight [20, 4, 4, 4]: K = 64 */
    CHECK(sdc_cpu_conv2d(off, 2, 4, 6, 6, cx, N, 4, 4, 1, 1, SDC_TYPE_F16, w, NULL, cy0) == SDC_OK);
    CHECK(sdc_cpu_conv2d(on, 2, 4, 6, 6, cx, N, 4, 4, 1, 1, SDC_TYPE_F16, w, NULL, cy1) == SDC_OK);
    CHECK_MSG(!memcmp(cy0, cy1, 2 * 20 * 25 * 4), "conv2d: bf16 without AMX is not the fp32 path");
    free(w);
    sdc_cpu_free(off);
    sdc_cpu_free(on);
}

int main(void) {
    tu_rng r = {777};
    test_fallback(&r);
    if (!sdc_cpu_detect_amx()) {
        printf("AMX-BF16 not usable on this machine: only the fp32 fallback was tested\n");
        return check_done();
    }
    c1 = sdc_cpu_new(1, SDC_ISA_AVX512);
    c2 = sdc_cpu_new(2, SDC_ISA_AVX512);
    c3 = sdc_cpu_new(3, SDC_ISA_AVX512);
    c1->bf16 = c2->bf16 = c3->bf16 = 1;
    CHECK(sdc_cpu_bf16_active(c1));
    linear_case(&r, SDC_TYPE_F32, 1, 16, 32, 32, 16, 0);
    linear_case(&r, SDC_TYPE_F16, 7, 45, 96, 100, 47, 1);
    linear_case(&r, SDC_TYPE_Q8_0, 77, 320, 768, 768, 320, 1);
    linear_case(&r, SDC_TYPE_Q4_0, 300, 70, 1056, 1056, 70, 1);  /* K over two chunks + 32, M over a task */
    linear_case(&r, SDC_TYPE_Q4_1, 40, 600, 64, 64, 600, 1);     /* N over several tasks */
    linear_case(&r, SDC_TYPE_BF16, 20, 33, 512, 520, 40, 0);
    conv_case(&r, SDC_TYPE_F16, 1, 4, 9, 9, 5, 3, 1, 1);         /* K = 36: zero-padded to 64 */
    conv_case(&r, SDC_TYPE_F16, 2, 20, 8, 8, 33, 3, 1, 1);       /* width 8: slivers span rows (gathers) */
    conv_case(&r, SDC_TYPE_F16, 1, 16, 40, 40, 40, 3, 1, 1);     /* rows of 40: whole and split slivers */
    conv_case(&r, SDC_TYPE_F16, 2, 8, 17, 19, 16, 3, 2, 1);      /* stride 2 */
    conv_case(&r, SDC_TYPE_Q8_0, 1, 64, 16, 16, 48, 1, 1, 0);    /* 1x1 */
    conv_case(&r, SDC_TYPE_F32, 1, 64, 20, 20, 300, 3, 1, 1);    /* K = 576 over a chunk, O over a task */
    attn_case(&r, 1, 2, 50, 77, 40, 0);    /* cross-attention shape: one padded key block */
    attn_case(&r, 2, 3, 130, 130, 64, 1);  /* fused q/k/v, key blocks 128 + 2, a query chunk + 2 */
    attn_case(&r, 1, 1, 33, 300, 160, 0);
    attn_case(&r, 1, 1, 40, 40, 512, 1);   /* the VAE's single head */
    attn_case(&r, 1, 2, 17, 9, 80, 0);
    printf("worst: %.3f of the fp32 bound against bf16 operands, %.3f of the bf16 bound against exact ones\n",
           worst_tight, worst_loose);
    sdc_cpu_free(c1); sdc_cpu_free(c2); sdc_cpu_free(c3);
    return check_done();
}
