/* test_ops.c - the checked op layer over the CPU backend: results against naive fp64 loops
 * (typed weights and parameters included: Q8_0 weight with an F16 bias, Q4_0-quantized norm
 * weights as the published files have them), attention on column slices of one fused
 * projection, sticky errors (a shape mismatch names the op and shapes; later ops do
 * nothing), arena mark/release reuse, row chunks (sdc_rows/sdc_set_rows, bit-identical to one
 * call) and sdc_keep, the _into variants (same bits, in place, bad destinations), and the
 * .npy dump. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "half.h"
#include "ops.h"
#include "quant.h"
#include "testutil.h"

#define TOL_ATOL 1e-4  /* fp32 accumulation over at most a few hundred terms of O(1) values */
#define TOL_RTOL 1e-4

static void fill(tu_rng *r, float *x, int64_t n, double s) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(s * tu_rng_normal(r));
}

static sdc_tensor make_tensor(const char *name, sdc_type t, int ndim, const int64_t *shape, const float *src, void **buf) {
    sdc_tensor w = {0};
    w.name = name;
    w.type = t;
    w.ndim = ndim;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (w.shape[i] = shape[i]);
    uint64_t bytes;
    sdc_type_bytes(t, (uint64_t)n, &bytes);
    *buf = malloc(bytes);
    sdc_quantize_row(t, src, *buf, n);
    w.data = *buf;
    w.nbytes = bytes;
    return w;
}

int main(void) {
    char err[256];
    sdc_backend *be = sdc_backend_cpu_new(2, (size_t)1 << 30, err, sizeof err);
    CHECK_MSG(be != NULL, "%s", err);
    if (!be) return check_done();
    sdc_ctx c;
    sdc_ctx_init(&c, be);
    tu_rng r = {7};

    /* linear: x [2, 5, 64] · W[48, 64]^T (Q8_0) + b (F16) */
    {
        int64_t M = 10, K = 64, N = 48;
        float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K), *bias = malloc(sizeof(float) * N);
        fill(&r, x, M * K, 1), fill(&r, w, N * K, 0.2), fill(&r, bias, N, 0.1);
        void *wb, *bb;
        int64_t ws[2] = {N, K}, bs[1] = {N};
        sdc_tensor W = make_tensor("w", SDC_TYPE_Q8_0, 2, ws, w, &wb), Bt = make_tensor("b", SDC_TYPE_F16, 1, bs, bias, &bb);
        float *wq = malloc(sizeof(float) * N * K), *bq = malloc(sizeof(float) * N);
        sdc_dequantize_row(SDC_TYPE_Q8_0, wb, wq, N * K);
        sdc_dequantize_row(SDC_TYPE_F16, bb, bq, N);
        int64_t xs[3] = {2, 5, K};
        size_t m0 = sdc_mark(&c);
        sdc_act X = sdc_from_host(&c, x, 3, xs);
        sdc_act Y = sdc_linear(&c, X, &W, &Bt);
        CHECK(Y.ndim == 3 && Y.shape[2] == N);
        float *want = malloc(sizeof(float) * M * N), *got = malloc(sizeof(float) * M * N);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = bq[j];
                for (int64_t k = 0; k < K; k++) s += (double)x[i * K + k] * wq[j * K + k];
                want[i * N + j] = (float)s;
            }
        sdc_to_host(&c, Y, got);
        CHECK_NEAR(got, want, M * N, TOL_ATOL, TOL_RTOL, "linear q8_0 + f16 bias");
        sdc_release(&c, m0);
        CHECK(sdc_mark(&c) == m0);
        free(x), free(w), free(bias), free(wb), free(bb), free(wq), free(bq), free(want), free(got);
    }

    /* group norm with Q4_0 gamma (as in --quantize-all files) and fused SiLU, fp64 reference */
    {
        int64_t B = 2, C = 64, HW = 9, G = 32;
        float *x = malloc(sizeof(float) * B * C * HW), *g = malloc(sizeof(float) * C), *bt = malloc(sizeof(float) * C);
        fill(&r, x, B * C * HW, 2), fill(&r, g, C, 1), fill(&r, bt, C, 0.5);
        void *gb, *bb;
        int64_t cs[1] = {C};
        sdc_tensor Gt = make_tensor("g", SDC_TYPE_Q4_0, 1, cs, g, &gb), Bt = make_tensor("b", SDC_TYPE_F32, 1, cs, bt, &bb);
        float *gq = malloc(sizeof(float) * C);
        sdc_dequantize_row(SDC_TYPE_Q4_0, gb, gq, C);
        int64_t xs[4] = {B, C, 3, 3};
        sdc_act X = sdc_from_host(&c, x, 4, xs);
        sdc_act Y = sdc_group_norm(&c, X, (int)G, 1e-5f, &Gt, &Bt, true);
        float *want = malloc(sizeof(float) * B * C * HW), *got = malloc(sizeof(float) * B * C * HW);
        int64_t cpg = C / G;
        for (int64_t b = 0; b < B; b++)
            for (int64_t gi = 0; gi < G; gi++) {
                double m = 0, v = 0;
                const float *p = x + (b * C + gi * cpg) * HW;
                for (int64_t i = 0; i < cpg * HW; i++) m += p[i];
                m /= (double)(cpg * HW);
                for (int64_t i = 0; i < cpg * HW; i++) v += (p[i] - m) * (p[i] - m);
                v /= (double)(cpg * HW);
                for (int64_t i = 0; i < cpg * HW; i++) {
                    int64_t ch = gi * cpg + i / HW;
                    double t = (p[i] - m) / sqrt(v + 1e-5) * gq[ch] + bt[ch];
                    want[(b * C + gi * cpg) * HW + i] = (float)(t / (1 + exp(-t)));
                }
            }
        sdc_to_host(&c, Y, got);
        CHECK_NEAR(got, want, B * C * HW, TOL_ATOL, TOL_RTOL, "group_norm q4_0 gamma + silu");
        free(x), free(g), free(bt), free(gb), free(bb), free(gq), free(want), free(got);
    }

    /* attention on column slices of a fused [B, N, 3*W] projection, 2 heads, causal */
    {
        int64_t B = 2, N = 7, W = 16, H = 2, d = W / H;
        float *qkv = malloc(sizeof(float) * B * N * 3 * W);
        fill(&r, qkv, B * N * 3 * W, 1);
        int64_t s[3] = {B, N, 3 * W};
        sdc_act QKV = sdc_from_host(&c, qkv, 3, s);
        sdc_act Y = sdc_attention(&c, QKV, 0, QKV, W, QKV, 2 * W, W, H, true);
        float *want = malloc(sizeof(float) * B * N * W), *got = malloc(sizeof(float) * B * N * W);
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t i = 0; i < N; i++) {
                    double sc[16], mx = -1e300, den = 0;
                    for (int64_t j = 0; j <= i; j++) {
                        double t = 0;
                        for (int64_t e = 0; e < d; e++)
                            t += (double)qkv[(b * N + i) * 3 * W + h * d + e] * qkv[(b * N + j) * 3 * W + W + h * d + e];
                        sc[j] = t / sqrt((double)d);
                        if (sc[j] > mx) mx = sc[j];
                    }
                    for (int64_t j = 0; j <= i; j++) den += (sc[j] = exp(sc[j] - mx));
                    for (int64_t e = 0; e < d; e++) {
                        double o = 0;
                        for (int64_t j = 0; j <= i; j++) o += sc[j] / den * qkv[(b * N + j) * 3 * W + 2 * W + h * d + e];
                        want[(b * N + i) * W + h * d + e] = (float)o;
                    }
                }
        sdc_to_host(&c, Y, got);
        CHECK_NEAR(got, want, B * N * W, TOL_ATOL, TOL_RTOL, "causal attention on fused qkv slices");
        free(qkv), free(want), free(got);
    }

    /* transpose [B, M, N] -> [B, N, M] (sizes not multiples of the tile) and [M, N] */
    {
        int64_t B = 2, M = 37, N = 45;
        float *x = malloc(sizeof(float) * B * M * N), *got = malloc(sizeof(float) * B * M * N);
        fill(&r, x, B * M * N, 1);
        int64_t s3[3] = {B, M, N}, s2[2] = {M, N};
        size_t m0 = sdc_mark(&c);
        sdc_act T = sdc_transpose(&c, sdc_from_host(&c, x, 3, s3));
        CHECK(T.ndim == 3 && T.shape[0] == B && T.shape[1] == N && T.shape[2] == M);
        sdc_to_host(&c, T, got);
        int64_t bad = 0;
        for (int64_t b = 0; b < B; b++)
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) bad += got[(b * N + j) * M + i] != x[(b * M + i) * N + j];
        CHECK_MSG(bad == 0, "transpose [2,37,45]: %lld values misplaced", (long long)bad);
        sdc_act T2 = sdc_transpose(&c, sdc_from_host(&c, x, 2, s2));
        CHECK(T2.ndim == 2 && T2.shape[0] == N && T2.shape[1] == M);
        sdc_to_host(&c, T2, got);
        bad = 0;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) bad += got[j * M + i] != x[i * N + j];
        CHECK_MSG(bad == 0, "transpose [37,45]: %lld values misplaced", (long long)bad);
        sdc_release(&c, m0);
        free(x), free(got);
    }

    /* nearest upsampling to a size: torch's indices (2 -> 3 rows: 0 0 1; 3 -> 5 cols:
     * floor(j * 0.6) = 0 0 1 1 2), and the 2x case equals upsample2x */
    {
        float x[2 * 2 * 3], got[2 * 3 * 5];
        for (int i = 0; i < 12; i++) x[i] = (float)i;
        int64_t s[4] = {1, 2, 2, 3};
        size_t m0 = sdc_mark(&c);
        sdc_act X = sdc_from_host(&c, x, 4, s);
        sdc_act Y = sdc_upsample_nearest(&c, X, 3, 5);
        CHECK(Y.ndim == 4 && Y.shape[1] == 2 && Y.shape[2] == 3 && Y.shape[3] == 5);
        sdc_to_host(&c, Y, got);
        const int ri[3] = {0, 0, 1}, ci[5] = {0, 0, 1, 1, 2};
        int bad = 0;
        for (int ch = 0; ch < 2; ch++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 5; j++) bad += got[(ch * 3 + i) * 5 + j] != x[(ch * 2 + ri[i]) * 3 + ci[j]];
        CHECK_MSG(bad == 0, "upsample_nearest 2x3 -> 3x5: %d values wrong", bad);
        float a[2 * 4 * 6], b2[2 * 4 * 6];
        sdc_to_host(&c, sdc_upsample_nearest(&c, X, 4, 6), a);
        sdc_to_host(&c, sdc_upsample2x(&c, X), b2);
        CHECK(memcmp(a, b2, sizeof a) == 0);
        sdc_release(&c, m0);
    }

    /* zero pad (F.pad(x, (0, 1, 0, 1)) of the VAE encoder's downsample, and all four sides) */
    {
        int64_t s[4] = {2, 3, 5, 7};
        float x[2 * 3 * 5 * 7], got[2 * 3 * 8 * 10];
        fill(&r, x, 2 * 3 * 5 * 7, 1);
        size_t m0 = sdc_mark(&c);
        sdc_act X = sdc_from_host(&c, x, 4, s);
        sdc_act Y = sdc_pad(&c, X, 0, 0, 1, 1);
        CHECK(Y.ndim == 4 && Y.shape[2] == 6 && Y.shape[3] == 8);
        sdc_to_host(&c, Y, got);
        int bad = 0;
        for (int p = 0; p < 6; p++)
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 8; j++) bad += got[(p * 6 + i) * 8 + j] != (i < 5 && j < 7 ? x[(p * 5 + i) * 7 + j] : 0.0f);
        CHECK_MSG(bad == 0, "pad (0, 0, 1, 1): %d values wrong", bad);
        Y = sdc_pad(&c, X, 2, 1, 1, 2);
        CHECK(Y.ndim == 4 && Y.shape[2] == 8 && Y.shape[3] == 10);
        sdc_to_host(&c, Y, got);
        bad = 0;
        for (int p = 0; p < 6; p++)
            for (int i = 0; i < 8; i++)
                for (int j = 0; j < 10; j++) {
                    bool in = i >= 2 && i < 7 && j >= 1 && j < 8;
                    bad += got[(p * 8 + i) * 10 + j] != (in ? x[(p * 5 + i - 2) * 7 + j - 1] : 0.0f);
                }
        CHECK_MSG(bad == 0, "pad (2, 1, 1, 2): %d values wrong", bad);
        sdc_release(&c, m0);
    }

    /* sdc_keep: temporaries of a scope are freed, the result survives, moved to the mark */
    {
        float v[6] = {1, 2, 3, 4, 5, 6};
        int64_t s2[2] = {2, 3};
        size_t m = sdc_mark(&c);
        sdc_act t1 = sdc_from_host(&c, v, 2, s2);
        sdc_act t2 = sdc_scale(&c, t1, 2.0f);
        sdc_act kept = sdc_keep(&c, m, sdc_scale(&c, t2, 0.5f));
        float got[6];
        sdc_to_host(&c, kept, got);
        CHECK(kept.data != NULL && memcmp(got, v, sizeof v) == 0);
        CHECK(sdc_mark(&c) == m + 64); /* only the kept 6 floats (one 64-byte slot) remain */
        sdc_act old = sdc_from_host(&c, v, 2, s2);
        size_t m2 = sdc_mark(&c);
        (void)sdc_scale(&c, old, 3.0f);
        sdc_act same = sdc_keep(&c, m2, old); /* allocated before the scope: returned as is */
        CHECK(same.data == old.data && sdc_mark(&c) == m2);
        sdc_release(&c, m);
    }

    /* dump: SDC_DUMP is read at context creation */
    {
        const char *dir = tu_tmpdir("test_ops");
        sdc_ctx dc;
        setenv("SDC_DUMP", dir, 1);
        sdc_ctx_init(&dc, be);
        unsetenv("SDC_DUMP");
        float v[6] = {1, 2, 3, 4, 5, 6};
        int64_t s[2] = {2, 3};
        sdc_act X = sdc_from_host(&dc, v, 2, s);
        sdc_dump(&dc, "probe.x", sdc_scale(&dc, X, 2.0f));
        char path[4200];
        snprintf(path, sizeof path, "%s/probe.x.npy", dir);
        tu_npy a;
        char e2[256];
        CHECK_MSG(tu_npy_load(path, &a, e2, sizeof e2), "%s", e2);
        CHECK(a.n == 6 && a.ndim == 2 && a.shape[1] == 3 && a.f32 && a.f32[5] == 12.0f);
        tu_npy_free(&a);
    }

    /* row chunks (the UNet's feed-forward): a linear run over sdc_rows views in chunks and
     * gathered with sdc_set_rows equals the one-call result bit for bit (each output element
     * is one fma chain over k whatever the row count), and sdc_keep moves a result down */
    {
        int64_t R = 2500, K = 64, N = 96, CH = 1024; /* 3 chunks, the last one partial */
        float *x = malloc(sizeof(float) * R * K), *w = malloc(sizeof(float) * N * K), *bias = malloc(sizeof(float) * N);
        fill(&r, x, R * K, 1), fill(&r, w, N * K, 0.2), fill(&r, bias, N, 0.1);
        void *wb, *bb;
        int64_t ws[2] = {N, K}, bs[1] = {N}, xs[3] = {2, R / 2, K};
        sdc_tensor W = make_tensor("w", SDC_TYPE_F16, 2, ws, w, &wb), Bt = make_tensor("b", SDC_TYPE_F32, 1, bs, bias, &bb);
        size_t m0 = sdc_mark(&c);
        sdc_act X = sdc_from_host(&c, x, 3, xs);
        sdc_act Y1 = sdc_linear(&c, X, &W, &Bt);
        sdc_act Y2 = sdc_new3(&c, 2, R / 2, N);
        for (int64_t r0 = 0; r0 < R; r0 += CH) {
            size_t mk = sdc_mark(&c);
            int64_t n = R - r0 < CH ? R - r0 : CH;
            sdc_act V = sdc_rows(&c, X, r0, n);
            CHECK(V.ndim == 2 && V.shape[0] == n && V.shape[1] == K && V.data == X.data + r0 * K);
            sdc_set_rows(&c, Y2, r0, sdc_linear(&c, V, &W, &Bt));
            sdc_release(&c, mk);
        }
        float *a = malloc(sizeof(float) * R * N), *b = malloc(sizeof(float) * R * N);
        CHECK(sdc_ctx_status(&c) == SDC_OK);
        sdc_to_host(&c, Y1, a);
        sdc_to_host(&c, Y2, b);
        CHECK_MSG(memcmp(a, b, sizeof(float) * R * N) == 0, "chunked linear differs from one call");
        /* keep: Y2 moved down to m0 (over X and Y1), values unchanged */
        sdc_act Yk = sdc_keep(&c, m0, Y2);
        CHECK(sdc_ctx_status(&c) == SDC_OK && Yk.data == X.data);
        sdc_to_host(&c, Yk, b);
        CHECK_MSG(memcmp(a, b, sizeof(float) * R * N) == 0, "keep changed the values");
        sdc_release(&c, m0);
        free(x), free(w), free(bias), free(wb), free(bb), free(a), free(b);
    }

    /* rows / set_rows bounds: out of range, wrong width, overlapping memory */
    {
        sdc_ctx e;
        sdc_ctx_init(&e, be);
        size_t m0 = sdc_mark(&e);
        sdc_act X = sdc_new2(&e, 4, 3);
        CHECK(sdc_rows(&e, X, 2, 3).data == NULL && sdc_ctx_status(&e) == SDC_E_SHAPE);
        CHECK_MSG(strstr(e.err, "rows"), "%s", e.err);
        sdc_ctx_init(&e, be);
        sdc_set_rows(&e, X, 0, sdc_new2(&e, 2, 4));
        CHECK(sdc_ctx_status(&e) == SDC_E_SHAPE);
        sdc_ctx_init(&e, be);
        sdc_set_rows(&e, X, 1, sdc_rows(&e, X, 0, 2));
        CHECK_MSG(sdc_ctx_status(&e) == SDC_E_SHAPE && strstr(e.err, "overlapping"), "%s", e.err);
        sdc_ctx_init(&e, be);
        sdc_set_rows(&e, X, 2, sdc_rows(&e, X, 0, 2)); /* disjoint rows of one buffer: fine */
        CHECK(sdc_ctx_status(&e) == SDC_OK);
        sdc_release(&e, m0);
    }

    /* conv2d_into / add_into (the VAE's copy-free blocks): the same bits as the allocating
     * ops, add in place on either operand, and destinations of the wrong shape or overlapping
     * an input rejected with the op named */
    {
        int64_t xs[4] = {1, 4, 5, 5}, ws[4] = {4, 4, 3, 3}, bs[1] = {4}, n = 100;
        float x[100], w[144], bias[4], a[100], b[100];
        fill(&r, x, n, 1), fill(&r, w, 144, 0.3), fill(&r, bias, 4, 0.1);
        void *wb, *bb;
        sdc_tensor W = make_tensor("w", SDC_TYPE_F16, 4, ws, w, &wb), Bt = make_tensor("b", SDC_TYPE_F32, 1, bs, bias, &bb);
        size_t m0 = sdc_mark(&c);
        sdc_act X = sdc_from_host(&c, x, 4, xs);
        sdc_act Y = sdc_conv2d(&c, X, &W, &Bt, 1, 1);
        sdc_act D = sdc_new4(&c, 1, 4, 5, 5);
        sdc_act R = sdc_conv2d_into(&c, D, X, &W, &Bt, 1, 1);
        CHECK(R.data == D.data && sdc_ctx_status(&c) == SDC_OK);
        sdc_to_host(&c, Y, a), sdc_to_host(&c, D, b);
        CHECK_MSG(memcmp(a, b, sizeof a) == 0, "conv2d_into differs from conv2d");
        sdc_act S = sdc_add(&c, X, Y);                  /* x + y, allocated */
        R = sdc_add_into(&c, D, D, X);                  /* D = y + x in place on a */
        CHECK(R.data == D.data);
        sdc_act X2 = sdc_from_host(&c, x, 4, xs);
        sdc_add_into(&c, X2, Y, X2);                    /* X2 = y + x in place on b */
        float s1[100], s2[100], want[100];
        sdc_to_host(&c, S, s1), sdc_to_host(&c, D, s2);
        for (int i = 0; i < 100; i++) want[i] = x[i] + a[i];
        CHECK_MSG(memcmp(s1, want, sizeof want) == 0 && memcmp(s2, want, sizeof want) == 0, "add_into in place");
        sdc_to_host(&c, X2, s2);
        CHECK_MSG(memcmp(s2, want, sizeof want) == 0, "add_into in place on b");
        CHECK(sdc_ctx_status(&c) == SDC_OK);

        sdc_ctx e;
        sdc_ctx_init(&e, be);
        CHECK(sdc_conv2d_into(&e, sdc_new4(&e, 1, 4, 5, 4), X, &W, &Bt, 1, 1).data == NULL);
        CHECK_MSG(sdc_ctx_status(&e) == SDC_E_SHAPE && strstr(e.err, "conv2d") && strstr(e.err, "[1,4,5,4]") &&
                      strstr(e.err, "[1,4,5,5]"), "%s", e.err);
        sdc_ctx_init(&e, be);
        CHECK(sdc_conv2d_into(&e, X, X, &W, &Bt, 1, 1).data == NULL); /* output over its input */
        CHECK_MSG(sdc_ctx_status(&e) == SDC_E_SHAPE && strstr(e.err, "overlaps"), "%s", e.err);
        sdc_ctx_init(&e, be);
        sdc_act P = sdc_new2(&e, 21, 5); /* rows 1..20 as the operand, rows 0..19 as dst: one row apart */
        sdc_act opnd = sdc_reshape(&e, sdc_rows(&e, P, 1, 20), 4, xs), lower = sdc_reshape(&e, sdc_rows(&e, P, 0, 20), 4, xs);
        CHECK(sdc_ctx_status(&e) == SDC_OK);
        CHECK(sdc_add_into(&e, lower, opnd, Y).data == NULL);
        CHECK_MSG(sdc_ctx_status(&e) == SDC_E_SHAPE && strstr(e.err, "add") && strstr(e.err, "overlaps"), "%s", e.err);
        sdc_release(&c, m0);
        free(wb), free(bb);
    }

    /* sticky errors: a mismatch is reported with the op and shapes, later ops are no-ops */
    {
        float v[12] = {0};
        int64_t s[2] = {3, 4}, ws[2] = {5, 6};
        float w[30] = {0};
        void *wb;
        sdc_tensor W = make_tensor("bad.weight", SDC_TYPE_F32, 2, ws, w, &wb);
        sdc_act X = sdc_from_host(&c, v, 2, s);
        sdc_act Y = sdc_linear(&c, X, &W, NULL);
        CHECK(Y.data == NULL);
        CHECK(sdc_ctx_status(&c) == SDC_E_SHAPE);
        CHECK_MSG(strstr(c.err, "linear") && strstr(c.err, "bad.weight") && strstr(c.err, "[3,4]"), "%s", c.err);
        sdc_act Z = sdc_scale(&c, X, 2.0f);
        CHECK(Z.data == NULL);
        CHECK(sdc_ctx_status(&c) == SDC_E_SHAPE); /* first error kept */
        free(wb);
    }
    be->ops->free(be);
    return check_done();
}
