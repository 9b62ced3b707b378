/* conv2d.c - NCHW convolution as an implicit GEMM on the blocked kernel of gemm.c.
 *
 * Per image: Y[O, Ho*Wo] = Wm[O, C*kh*kw] . col[C*kh*kw, Ho*Wo] + bias[O], with
 *   A = the weights (each output channel a row of C*kh*kw values in the stored type),
 *       dequantized a 6-row sliver and K block at a time by the per-task A packer;
 *   B = im2col(x), never materialised: the B packer builds kc x 16 slivers of the
 *       column matrix straight from x (shifted row copies with zero padding at the
 *       borders, 4 slivers per call so input rows are read contiguously). For small
 *       images (Ho*Wo <= 1024, the UNet's 32x32 and below) B is packed once per call
 *       into the GEMM's shared panel (a kc x N panel is <= 1 MiB); for larger ones each
 *       task packs the slivers it uses right before use (b_per_task), which keeps them
 *       in L1/L2 instead of a multi-MiB panel round trip through L3. Measured with
 *       bench_ops (see BENCHMARKS.md).
 * So the scratch is the GEMM's (bounded, a few MiB), whatever the layer size, and the
 * output is written in NCHW directly (the 16-wide vector dimension is the spatial one).
 * 3x3 stride-1 pad-1 layers with enough tiles and at most 2560 input channels go to
 * Winograd F(4x4,3x3) or F(2x2,3x3) instead (winograd.c; cpu->winograd, SDC_WINOGRAD=0
 * turns it off). */
#include <string.h>

#include "gemm.h"

#if defined(__x86_64__) || defined(__i386__)
#define SDC_CONV_X86 1
#include <immintrin.h>
#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
#endif

enum {
    PANEL_MAX_POSITIONS = 1024, /* per image: up to this many outputs B is packed once per call into
                                   the GEMM's shared panel, beyond it per task (b_per_task) */
    MERGE_MAX_COLUMNS = 2048,   /* small images batched into one GEMM: columns over the batch */
};

typedef struct conv_ctx {
    const float *x;  /* this image: [C, H, W] */
    int64_t C, H, W, Ho, Wo;
    int kh, kw, stride, pad;
    sdc_type wt;
    const void *w;
    size_t row_bytes;
    int64_t merged;  /* > 0: x is the whole batch and GEMM column j is output position j % merged
                        of image j / merged (images C*H*W floats apart) */
} conv_ctx;

static void conv_pack_a(const void *vc, int64_t i0, int mr, int64_t k0, int64_t kc, float *dst, sdc_isa isa) {
    const conv_ctx *cc = vc;
    sdc_gemm_pack_weight_a(cc->wt, cc->w, cc->row_bytes, i0, mr, k0, kc, dst, isa);
}

#ifdef SDC_CONV_X86
/* AVX2 im2col sliver for stride 1: each run of output positions within one output row is
 * a shifted slice of an input row; lanes outside the input (padding) or outside the run
 * are masked off (masked-off lanes of vmaskmovps neither read memory nor fault). */
AVX2_FN static void conv_pack_b_s1_avx2(const conv_ctx *cc, int64_t j0, int n, int64_t k0, int64_t kc, float *dst) {
    const int64_t H = cc->H, W = cc->W, HW = H * W;
    const int pad = cc->pad, kw = cc->kw, khw = cc->kh * kw;
    const __m256i iota0 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), iota1 = _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15);
    /* runs of output positions within one output row, per 16-wide sliver of the strip */
    enum { MAXS = SDC_GEMM_STRIP };
    int nrun[MAXS], rj[MAXS][16], rlen[MAXS][16];
    int64_t roy[MAXS][16], rox[MAXS][16];
    const int nsl = (n + 15) / 16;
    for (int sl = 0; sl < nsl; sl++) {
        const int nr = n - 16 * sl < 16 ? n - 16 * sl : 16;
        nrun[sl] = 0;
        for (int j = 0; j < nr;) {
            const int64_t p = j0 + 16 * sl + j, oy = p / cc->Wo, ox = p % cc->Wo;
            const int len = (int)(cc->Wo - ox < nr - j ? cc->Wo - ox : nr - j);
            const int u = nrun[sl]++;
            rj[sl][u] = j; rlen[sl][u] = len; roy[sl][u] = oy; rox[sl][u] = ox;
            j += len;
        }
    }
    int64_t c = k0 / khw;
    int r = (int)(k0 % khw), dy = r / kw, dx = r % kw;
    for (int64_t k = 0; k < kc; k++) {
      const float *xc = cc->x + c * HW;
      for (int sl = 0; sl < nsl; sl++) {
        const int *rj_ = rj[sl], *rlen_ = rlen[sl];
        const int64_t *roy_ = roy[sl], *rox_ = rox[sl];
        __m256 o0 = _mm256_setzero_ps(), o1 = _mm256_setzero_ps();
        for (int u = 0; u < nrun[sl]; u++) {
            const int64_t iy = roy_[u] - pad + dy;
            if (iy < 0 || iy >= H) continue;
            const int64_t ix0 = rox_[u] - pad + dx; /* input column of lane rj[u] */
            /* valid lanes: rj <= lane < rj + len and 0 <= ix0 + lane - rj < W */
            int64_t lo = rj_[u] + (ix0 < 0 ? -ix0 : 0), hi = rj_[u] + rlen_[u];
            if (rj_[u] + (W - ix0) < hi) hi = rj_[u] + (W - ix0);
            if (hi <= lo) continue;
            /* lane l reads base[l]; base may point before the row: only valid lanes are read,
               so it is formed as an integer */
            const uintptr_t bp = (uintptr_t)(xc + iy * W) + (uintptr_t)((ix0 - rj_[u]) * (int64_t)sizeof(float));
            const __m256i vlo = _mm256_set1_epi32((int)lo - 1), vhi = _mm256_set1_epi32((int)hi);
            const __m256i m0 = _mm256_and_si256(_mm256_cmpgt_epi32(iota0, vlo), _mm256_cmpgt_epi32(vhi, iota0));
            const __m256i m1 = _mm256_and_si256(_mm256_cmpgt_epi32(iota1, vlo), _mm256_cmpgt_epi32(vhi, iota1));
            if (lo == 0 && hi == 16) {
                o0 = _mm256_loadu_ps((const float *)bp);
                o1 = _mm256_loadu_ps((const float *)(bp + 32));
            } else {
                o0 = _mm256_or_ps(o0, _mm256_maskload_ps((const float *)bp, m0));
                o1 = _mm256_or_ps(o1, _mm256_maskload_ps((const float *)(bp + 32), m1));
            }
        }
        float *o = dst + sl * kc * 16 + k * 16;
        _mm256_store_ps(o, o0);
        _mm256_store_ps(o + 8, o1);
      }
        if (++dx == kw) {
            dx = 0;
            if (++dy == cc->kh) { dy = 0; c++; }
        }
    }
}

/* Stride 1 with every 16-wide sliver inside one output row (Wo % 16 == 0, the UNet's 64/32/16
 * and the VAE's 512..64 sizes): sliver lane l at k = (c, dy, dx) is x[c][iy][ox - pad + dx + l],
 * so for each (c, dy) one source pointer per sliver serves all kw values of dx. It points into x
 * when the 16 + kw - 1 values lie inside the row, else at a zero-padded copy; rows outside
 * the image give zeros. A plain copy: the same values as conv_pack_b_s1_avx2, in fewer steps. */
AVX2_FN static void conv_pack_b_rows_avx2(const conv_ctx *cc, int64_t j0, int n, int64_t k0, int64_t kc, float *dst) {
    enum { MAXS = SDC_GEMM_STRIP, EW = 16 + 32 }; /* kw - 1 <= 32 extra values (checked by the caller) */
    const int64_t H = cc->H, W = cc->W, HW = H * W;
    const int pad = cc->pad, kw = cc->kw, khw = cc->kh * kw;
    const int nsl = n / 16;
    int64_t oy[MAXS], ox[MAXS];
    for (int sl = 0; sl < nsl; sl++) {
        oy[sl] = (j0 + 16 * sl) / cc->Wo;
        ox[sl] = (j0 + 16 * sl) % cc->Wo;
    }
    /* The next strip (columns j0+n..j0+2n-1, packed next in b_per_task mode): its input rows
     * are a different cache line set per (c, dy), too many streams for the hardware prefetcher,
     * so they would come from DRAM one stall at a time. Ask for them while this strip's slivers
     * are being computed. */
    const int64_t jn = j0 + n, oyn = jn / cc->Wo, ixn = jn % cc->Wo - pad;
    const int64_t pf0 = ixn < 0 ? 0 : ixn, pf1 = ixn + n + kw - 1 < W ? ixn + n + kw - 1 : W;
    const int prefetch = jn < cc->Ho * cc->Wo && pf1 > pf0;
    float ebuf[MAXS][EW];
    const float *src[MAXS];
    int64_t c = k0 / khw;
    int r = (int)(k0 % khw), dy = r / kw, dx = r % kw;
    for (int64_t k = 0; k < kc; k++) {
        if (k == 0 || dx == 0) { /* a new (c, dy): the slivers' source pointers */
            const float *xc = cc->x + c * HW;
            const int64_t iyn = oyn - pad + dy;
            if (prefetch && iyn >= 0 && iyn < H) {
                const float *rn = xc + iyn * W;
                for (int64_t x = pf0; x < pf1; x += 16) _mm_prefetch((const char *)(rn + x), _MM_HINT_T1);
                _mm_prefetch((const char *)(rn + pf1 - 1), _MM_HINT_T1);
            }
            for (int sl = 0; sl < nsl; sl++) {
                const int64_t iy = oy[sl] - pad + dy, ix = ox[sl] - pad; /* first column read at dx = 0 */
                if (iy < 0 || iy >= H) { src[sl] = NULL; continue; }
                const float *row = xc + iy * W;
                if (ix >= 0 && ix + 16 + kw - 1 <= W) { src[sl] = row + ix; continue; }
                /* a border sliver: values [m0, m1) inside the row, zeros around them */
                const int e = 16 + kw - 1;
                const int m0 = ix < 0 ? (int)-ix : 0, m1 = W - ix < e ? (int)(W - ix) : e;
                memset(ebuf[sl], 0, sizeof ebuf[sl]);
                if (m1 > m0) memcpy(ebuf[sl] + m0, row + ix + m0, (size_t)(m1 - m0) * sizeof(float));
                src[sl] = ebuf[sl];
            }
        }
        for (int sl = 0; sl < nsl; sl++) {
            float *o = dst + sl * kc * 16 + k * 16;
            if (src[sl]) {
                _mm256_store_ps(o, _mm256_loadu_ps(src[sl] + dx));
                _mm256_store_ps(o + 8, _mm256_loadu_ps(src[sl] + dx + 8));
            } else {
                _mm256_store_ps(o, _mm256_setzero_ps());
                _mm256_store_ps(o + 8, _mm256_setzero_ps());
            }
        }
        if (++dx == kw) {
            dx = 0;
            if (++dy == cc->kh) { dy = 0; c++; }
        }
    }
}
#endif

/* One sliver: dst[k*16 + j] = col[k0 + k][j0 + j] for j < nr, 0 beyond. */
static void conv_pack_sliver(const conv_ctx *cc, int64_t j0, int nr, int64_t k0, int64_t kc, float *dst) {
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

/* The GEMM's pack_b: n columns from j0 as ceil(n/16) slivers of kc x 16. */
static void conv_pack_b(const void *vc, int64_t j0, int n, int64_t k0, int64_t kc, float *dst, sdc_isa isa) {
    const conv_ctx *cc = vc;
    if (cc->merged) { /* batch side by side: pack each image's share (whole slivers) on its own */
        conv_ctx one = *cc;
        one.merged = 0;
        while (n > 0) {
            const int64_t img = j0 / cc->merged, p0 = j0 - img * cc->merged;
            const int seg = (int)(cc->merged - p0 < n ? cc->merged - p0 : n);
            one.x = cc->x + img * cc->C * cc->H * cc->W;
            conv_pack_b(&one, p0, seg, k0, kc, dst, isa);
            dst += (int64_t)(seg / 16) * kc * 16, j0 += seg, n -= seg;
        }
        return;
    }
#ifdef SDC_CONV_X86
    if (isa >= SDC_ISA_AVX2 && cc->stride == 1 && cc->Wo % 16 == 0 && j0 % 16 == 0 && n % 16 == 0 && cc->kw <= 33) {
        conv_pack_b_rows_avx2(cc, j0, n, k0, kc, dst);
        return;
    }
    if (isa >= SDC_ISA_AVX2 && cc->stride == 1) {
        conv_pack_b_s1_avx2(cc, j0, n, k0, kc, dst);
        return;
    }
#else
    (void)isa;
#endif
    for (int s = 0; s * 16 < n; s++)
        conv_pack_sliver(cc, j0 + 16 * s, n - 16 * s < 16 ? n - 16 * s : 16, k0, kc, dst + s * kc * 16);
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
    if (sdc_cpu_bf16_active(cpu)) {
        st = sdc_cpu_conv2d_bf16(cpu, B, C, H, W, x, O, kh, kw, stride, pad, wt, w, cc.row_bytes, bias, y);
        if (st != SDC_E_UNSUPPORTED) return st;
    }
    const int wg = sdc_winograd_choose(cpu->winograd, B, C, H, W, O, kh, kw, stride, pad);
    if (wg) return sdc_cpu_conv3x3_winograd(cpu, wg, B, C, H, W, x, O, wt, w, cc.row_bytes, bias, y);
    sdc_gemm_desc d = {
        .M = O, .N = Ho * Wo, .K = K, .kgran = sdc_type_traits_of(wt)->block,
        .pack_a = conv_pack_a, .pack_b = conv_pack_b, .ctx = &cc,
        .bias_m = bias, .bias_n = NULL, .b_per_task = Ho * Wo > PANEL_MAX_POSITIONS, .ldc = Ho * Wo,
    };
    /* Small images (the UNet's 8x8..32x32 levels, batch 2 for CFG): one GEMM over the whole
     * batch, the images' output positions side by side, so each weight block is dequantized
     * and packed once per call instead of once per image, and the tiles have twice the width.
     * Needs whole 16-column slivers per image; each output's fma chain is unchanged. */
    if (B > 1 && Ho * Wo <= PANEL_MAX_POSITIONS && (Ho * Wo) % 16 == 0 && B * Ho * Wo <= MERGE_MAX_COLUMNS) {
        cc.x = x, cc.merged = Ho * Wo;
        d.N = B * Ho * Wo, d.c = y, d.col_group = Ho * Wo, d.group_stride = O * Ho * Wo;
        return sdc_cpu_gemm(cpu, &d);
    }
    for (int64_t b = 0; b < B && st == SDC_OK; b++) {
        cc.x = x + b * C * H * W;
        d.c = y + b * O * Ho * Wo;
        st = sdc_cpu_gemm(cpu, &d);
    }
    return st;
}
