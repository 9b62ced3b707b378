/* conv2d.c - NCHW convolution as an implicit GEMM on the blocked kernel of gemm.c.
 *
 * Per image: Y[O, Ho*Wo] = Wm[O, C*kh*kw] . col[C*kh*kw, Ho*Wo] + bias[O], with
 *   A = the weights (each output channel a row of C*kh*kw values in the stored type),
 *       dequantized a 6-row sliver and K block at a time by the per-task A packer;
 *   B = im2col(x), never materialised: the B packer builds one kc x 16 sliver of the
 *       column matrix straight from x (shifted row copies with zero padding at the
 *       borders), once per call, into the shared B panel.
 * So the scratch is the GEMM's (bounded, a few MiB), whatever the layer size, and the
 * output is written in NCHW directly (the 16-wide vector dimension is the spatial one). */
#include <string.h>

#include "gemm.h"

typedef struct conv_ctx {
    const float *x;  /* this image: [C, H, W] */
    int64_t C, H, W, Ho, Wo;
    int kh, kw, stride, pad;
    sdc_type wt;
    const void *w;
    size_t row_bytes;
} conv_ctx;

static void conv_pack_a(const void *vc, int64_t i0, int mr, int64_t k0, int64_t kc, float *dst, sdc_isa isa) {
    const conv_ctx *cc = vc;
    sdc_gemm_pack_weight_a(cc->wt, cc->w, cc->row_bytes, i0, mr, k0, kc, dst, isa);
}

/* dst[k*16 + j] = col[k0 + k][j0 + j] for j < nr, 0 beyond. */
static void conv_pack_b(const void *vc, int64_t j0, int nr, int64_t k0, int64_t kc, float *dst, sdc_isa isa) {
    (void)isa;
    const conv_ctx *cc = vc;
    const int64_t H = cc->H, W = cc->W, HW = H * W;
    const int s = cc->stride, pad = cc->pad, kw = cc->kw;
    if (cc->kh == 1 && kw == 1 && s == 1 && pad == 0) { /* col == x viewed as [C, H*W] */
        for (int64_t k = 0; k < kc; k++) {
            const float *src = cc->x + (k0 + k) * HW + j0;
            float *o = dst + k * 16;
            for (int j = 0; j < nr; j++) o[j] = src[j];
            for (int j = nr; j < 16; j++) o[j] = 0.0f;
        }
        return;
    }
    /* Split the sliver into runs within one output row: (run start j, length, oy, ox). */
    int nrun = 0, rj[16], rlen[16];
    int64_t roy[16], rox[16];
    for (int j = 0; j < nr;) {
        const int64_t p = j0 + j, oy = p / cc->Wo, ox = p % cc->Wo;
        const int len = (int)(cc->Wo - ox < nr - j ? cc->Wo - ox : nr - j);
        rj[nrun] = j; rlen[nrun] = len; roy[nrun] = oy; rox[nrun] = ox;
        nrun++;
        j += len;
    }
    const int khw = cc->kh * kw;
    int64_t c = k0 / khw;
    int r = (int)(k0 % khw), dy = r / kw, dx = r % kw;
    for (int64_t k = 0; k < kc; k++) {
        const float *xc = cc->x + c * HW;
        float *o = dst + k * 16;
        for (int u = 0; u < nrun; u++) {
            float *ou = o + rj[u];
            const int len = rlen[u];
            const int64_t iy = roy[u] * s - pad + dy;
            if (iy < 0 || iy >= H) {
                for (int t = 0; t < len; t++) ou[t] = 0.0f;
                continue;
            }
            const float *row = xc + iy * W;
            const int64_t ix0 = rox[u] * s - pad + dx;
            if (s == 1) {
                int lo = ix0 < 0 ? (int)-ix0 : 0;
                int hi = W - ix0 < len ? (int)(W - ix0) : len;
                if (lo > len) lo = len;
                if (hi < lo) hi = lo;
                for (int t = 0; t < lo; t++) ou[t] = 0.0f;
                for (int t = lo; t < hi; t++) ou[t] = row[ix0 + t];
                for (int t = hi; t < len; t++) ou[t] = 0.0f;
            } else {
                for (int t = 0; t < len; t++) {
                    const int64_t ix = ix0 + (int64_t)t * s;
                    ou[t] = ix >= 0 && ix < W ? row[ix] : 0.0f;
                }
            }
        }
        for (int j = nr; j < 16; j++) o[j] = 0.0f;
        if (++dx == kw) {
            dx = 0;
            if (++dy == cc->kh) { dy = 0; c++; }
        }
    }
}

sdc_status sdc_cpu_conv2d(sdc_cpu *cpu, int64_t B, int64_t C, int64_t H, int64_t W, const float *x,
                          int64_t O, int kh, int kw, int stride, int pad, sdc_type wt, const void *w,
                          const float *bias, float *y) {
    if (!cpu || !x || !w || !y || B <= 0 || C <= 0 || H <= 0 || W <= 0 || O <= 0 || kh <= 0 || kw <= 0 ||
        stride <= 0 || pad < 0)
        return SDC_E_INVALID;
    const int64_t lim = (int64_t)1 << 40;
    if (B > lim || C > lim || H > lim || W > lim || O > lim || kh > 1024 || kw > 1024 || pad > 1024 ||
        C * H > lim || C * H * W > lim || C * kh * kw > lim)
        return SDC_E_INVALID;
    if (H + 2 * pad < kh || W + 2 * pad < kw) return SDC_E_INVALID;
    const int64_t Ho = (H + 2 * pad - kh) / stride + 1, Wo = (W + 2 * pad - kw) / stride + 1;
    if (O * Ho > lim || O * Ho * Wo > lim) return SDC_E_INVALID;
    conv_ctx cc = {.C = C, .H = H, .W = W, .Ho = Ho, .Wo = Wo, .kh = kh, .kw = kw, .stride = stride,
                   .pad = pad, .wt = wt, .w = w};
    const int64_t K = C * kh * kw;
    sdc_status st = sdc_gemm_check_weight(wt, K, &cc.row_bytes);
    if (st != SDC_OK) return st;
    sdc_gemm_desc d = {
        .M = O, .N = Ho * Wo, .K = K, .kgran = sdc_type_traits_of(wt)->block,
        .pack_a = conv_pack_a, .pack_b = conv_pack_b, .ctx = &cc,
        .bias_m = bias, .bias_n = NULL, .ldc = Ho * Wo,
    };
    for (int64_t b = 0; b < B && st == SDC_OK; b++) {
        cc.x = x + b * C * H * W;
        d.c = y + b * O * Ho * Wo;
        st = sdc_cpu_gemm(cpu, &d);
    }
    return st;
}
