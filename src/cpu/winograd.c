/* winograd.c - 3x3 convolution (stride 1, padding 1) by Winograd's minimal filtering
 * F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015).
 *
 * Each 2x2 output tile is Y = A^T [ U (.) V ] A + bias, where V = B^T d B is the tile's 4x4
 * input patch d transformed and U = G g G^T the 3x3 kernel g transformed:
 *
 *   B^T = [1  0 -1  0]      G = [1    0    0  ]      A^T = [1  1  1  0]
 *         [0  1  1  0]          [1/2  1/2  1/2]            [0  1 -1 -1]
 *         [0 -1  1  0]          [1/2 -1/2  1/2]
 *         [0  1  0 -1]          [0    0    1  ]
 *
 * Summed over input channels, the 16 products per (tile, output channel, input channel)
 * become 16 independent GEMMs, so the multiply count drops from 36 to 16 per 2x2 outputs
 * (2.25x) for a few additions per tile. Per image and chunk of tile rows:
 *
 *   V[xi][c][t] = (B^T d_{c,t} B)[xi]            input transform (t: tile within the chunk)
 *   M[xi][o][t] = sum_c U[xi][o][c] V[xi][c][t]   16 GEMMs on the blocked kernel (1x1 convs)
 *   y[o][2ty+i][2tx+j] = (A^T M[.][o][t] A)[i][j] + bias[o]
 *
 * U is made once per call from the stored weights (any type the GEMM takes). The transforms
 * are additions, subtractions and exact halvings in a fixed order, and the GEMMs are the
 * deterministic blocked kernel, so results do not depend on the thread count and the AVX2
 * transforms equal their scalar twins bit for bit. The rounding differs from the direct
 * convolution's; tests/test_conv2d.c bounds it against fp64. Buffers live in the CPU
 * context's workspace (U plus V and M for one chunk, WG_CHUNK_BYTES each at most). */
#include <stdatomic.h>
#include <string.h>

#include "gemm.h"

#if defined(__x86_64__) || defined(__i386__)
#define WG_X86 1
#include <immintrin.h>
#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
#endif

enum {
    WG_MIN_TILES = 128,            /* fewer 2x2 tiles (all images): GEMMs too narrow to gain */
    WG_MIN_CHANNELS = 16,          /* C and O: the GEMMs need rows and depth */
    WG_MAX_CHANNELS_IN = 1024,     /* deeper inputs lose in the UNet (C = 1280..2560 at 16x16 and
                                      32x32: 0.56-1.08x of the direct conv, the V and M round trips
                                      through memory outweigh the saved multiplications) */
    WG_CHUNK_BYTES = 16 << 20,     /* V (and M) for one chunk of tile rows */
};
#define WG_U_MAX_BYTES ((size_t)32 << 20) /* U for one block of output channels */

bool sdc_winograd_eligible(int64_t B, int64_t C, int64_t H, int64_t W, int64_t O, int kh, int kw, int stride,
                           int pad) {
    if (kh != 3 || kw != 3 || stride != 1 || pad != 1 || C < WG_MIN_CHANNELS || C > WG_MAX_CHANNELS_IN ||
        O < WG_MIN_CHANNELS || B < 1 || H < 1 || W < 1)
        return false;
    const int64_t tiles = ((H + 1) / 2) * ((W + 1) / 2); /* H*W <= 2^40 (checked by the caller) */
    return tiles >= WG_MIN_TILES || B >= (WG_MIN_TILES + tiles - 1) / tiles;
}

typedef struct wg_ctx {
    sdc_cpu *cpu;
    int64_t C, H, W, O, tH, tW;
    int64_t ty0, Tc;        /* the chunk: tile rows from ty0 (counted over all images: image
                               ty0 / tH), Tc tiles (whole tile rows) */
    int64_t o0, Ob;         /* the block of output channels U and M hold */
    const float *x;         /* [B][C][H][W] */
    float *y;               /* [B][O][H][W] */
    sdc_type wt;
    const uint8_t *w;
    size_t row_bytes;
    const float *bias;
    float *U, *V, *M;       /* U[xi][o - o0][c]; V[xi][c][t] and M[xi][o - o0][t] with planes of Tc */
    int avx2;
    atomic_int failed;      /* an sdc_status: the first failure of a task */
} wg_ctx;

/* ---------------------------------------------------------------- weight transform */

static void weight_task(void *vc, int64_t o, int thread) { /* o: within the block */
    wg_ctx *c = vc;
    const int64_t C = c->C, O = c->Ob;
    float *g = sdc_cpu_scratch(c->cpu, thread, (size_t)(9 * C) * sizeof(float));
    if (!g) {
        atomic_store(&c->failed, SDC_E_NOMEM);
        return;
    }
    if (!sdc_gemm_dequant_seg(c->wt, c->w + (size_t)(c->o0 + o) * c->row_bytes, 0, 9 * C, g, c->cpu->isa)) {
        atomic_store(&c->failed, SDC_E_UNSUPPORTED);
        return;
    }
    for (int64_t ci = 0; ci < C; ci++) {
        const float *k = g + 9 * ci;
        float h[3][4], u[4][4];
        for (int r = 0; r < 3; r++) { /* g G^T, row by row */
            const float a = k[3 * r], b = k[3 * r + 1], d = k[3 * r + 2];
            h[r][0] = a;
            h[r][1] = 0.5f * (a + b + d);
            h[r][2] = 0.5f * (a - b + d);
            h[r][3] = d;
        }
        for (int j = 0; j < 4; j++) { /* G (g G^T) */
            u[0][j] = h[0][j];
            u[1][j] = 0.5f * (h[0][j] + h[1][j] + h[2][j]);
            u[2][j] = 0.5f * (h[0][j] - h[1][j] + h[2][j]);
            u[3][j] = h[2][j];
        }
        for (int xi = 0; xi < 16; xi++) c->U[((int64_t)xi * O + o) * C + ci] = u[xi / 4][xi % 4];
    }
}

/* ---------------------------------------------------------------- input transform */

/* One tile from the 4 padded rows (p[r][k] = x[2ty-1+r][k-1]), as the AVX2 path does it. */
static void in_tile_scalar(float *const pr[4], int64_t tx, float v[16]) {
    float e[4][4];
    for (int r = 0; r < 4; r++) { /* d B, row by row */
        const float *d = pr[r] + 2 * tx;
        e[r][0] = d[0] - d[2];
        e[r][1] = d[1] + d[2];
        e[r][2] = d[2] - d[1];
        e[r][3] = d[1] - d[3];
    }
    for (int j = 0; j < 4; j++) { /* B^T (d B) */
        v[0 * 4 + j] = e[0][j] - e[2][j];
        v[1 * 4 + j] = e[1][j] + e[2][j];
        v[2 * 4 + j] = e[2][j] - e[1][j];
        v[3 * 4 + j] = e[1][j] - e[3][j];
    }
}

#ifdef WG_X86
/* Lanes 0..7 <- even (odd) elements of the 16 floats a, b. */
AVX2_FN static inline __m256 evens(__m256 a, __m256 b) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
}
AVX2_FN static inline __m256 odds(__m256 a, __m256 b) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}

/* Tiles tx..tx+7 (lane l = tile tx+l) into v[xi] + 0..7. */
AVX2_FN static void in_tiles_avx2(float *const pr[4], int64_t tx, float *const v[16]) {
    __m256 e[4][4];
    for (int r = 0; r < 4; r++) {
        const float *p = pr[r] + 2 * tx;
        const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
        const __m256 a2 = _mm256_loadu_ps(p + 2), b2 = _mm256_loadu_ps(p + 10);
        const __m256 d0 = evens(a, b), d1 = odds(a, b), d2 = evens(a2, b2), d3 = odds(a2, b2);
        e[r][0] = _mm256_sub_ps(d0, d2);
        e[r][1] = _mm256_add_ps(d1, d2);
        e[r][2] = _mm256_sub_ps(d2, d1);
        e[r][3] = _mm256_sub_ps(d1, d3);
    }
    for (int j = 0; j < 4; j++) {
        _mm256_storeu_ps(v[0 * 4 + j], _mm256_sub_ps(e[0][j], e[2][j]));
        _mm256_storeu_ps(v[1 * 4 + j], _mm256_add_ps(e[1][j], e[2][j]));
        _mm256_storeu_ps(v[2 * 4 + j], _mm256_sub_ps(e[2][j], e[1][j]));
        _mm256_storeu_ps(v[3 * 4 + j], _mm256_sub_ps(e[1][j], e[3][j]));
    }
}
#endif

/* Padded row length: 2*tW + 2 values are read (tile tx reads 2tx .. 2tx+3), plus slack. */
static int64_t prow_len(int64_t tW) { return (2 * tW + 2 + 15) & ~(int64_t)15; }

static void input_task(void *vc, int64_t ci, int thread) {
    wg_ctx *c = vc;
    const int64_t H = c->H, W = c->W, tW = c->tW, Tc = c->Tc, C = c->C, L = prow_len(tW);
    float *buf = sdc_cpu_scratch(c->cpu, thread, (size_t)(4 * L) * sizeof(float));
    if (!buf) {
        atomic_store(&c->failed, SDC_E_NOMEM);
        return;
    }
    float *pr[4] = {buf, buf + L, buf + 2 * L, buf + 3 * L};
    for (int64_t t0 = 0; t0 < Tc; t0 += tW) {
        const int64_t gty = c->ty0 + t0 / tW, b = gty / c->tH, ty = gty % c->tH;
        const float *xc = c->x + (b * C + ci) * H * W;
        for (int r = 0; r < 4; r++) {
            const int64_t iy = 2 * ty - 1 + r;
            if (iy < 0 || iy >= H) {
                memset(pr[r], 0, (size_t)L * sizeof(float));
                continue;
            }
            pr[r][0] = 0.0f;
            memcpy(pr[r] + 1, xc + iy * W, (size_t)W * sizeof(float));
            memset(pr[r] + 1 + W, 0, (size_t)(L - 1 - W) * sizeof(float));
        }
        float *v[16];
        for (int xi = 0; xi < 16; xi++) v[xi] = c->V + ((int64_t)xi * C + ci) * Tc + t0;
        int64_t tx = 0;
#ifdef WG_X86
        if (c->avx2)
            for (; tx + 8 <= tW; tx += 8) {
                float *vt[16];
                for (int xi = 0; xi < 16; xi++) vt[xi] = v[xi] + tx;
                in_tiles_avx2(pr, tx, vt);
            }
#endif
        for (; tx < tW; tx++) {
            float t[16];
            in_tile_scalar(pr, tx, t);
            for (int xi = 0; xi < 16; xi++) v[xi][tx] = t[xi];
        }
    }
}

/* ---------------------------------------------------------------- output transform */

static void output_task(void *vc, int64_t o, int thread) { /* o: within the block */
    (void)thread;
    wg_ctx *c = vc;
    const int64_t H = c->H, W = c->W, tW = c->tW, Tc = c->Tc, Ob = c->Ob;
    const float bias = c->bias ? c->bias[c->o0 + o] : 0.0f;
    const int has_bias = c->bias != NULL;
    for (int64_t t0 = 0; t0 < Tc; t0 += tW) {
        const int64_t gty = c->ty0 + t0 / tW, b = gty / c->tH, oy = 2 * (gty % c->tH);
        const int two_rows = oy + 1 < H;
        const float *m[16];
        for (int xi = 0; xi < 16; xi++) m[xi] = c->M + ((int64_t)xi * Ob + o) * Tc + t0;
        float *y0 = c->y + ((b * c->O + c->o0 + o) * H + oy) * W, *y1 = two_rows ? y0 + W : NULL;
        int64_t tx = 0;
#ifdef WG_X86
        if (c->avx2) {
            const __m256 vb = _mm256_set1_ps(bias);
            for (; tx + 8 <= W / 2; tx += 8) { /* 16 whole output columns */
                __m256 s0[4], s1[4];
                for (int j = 0; j < 4; j++) { /* A^T M */
                    const __m256 m0 = _mm256_loadu_ps(m[0 * 4 + j] + tx), m1 = _mm256_loadu_ps(m[1 * 4 + j] + tx);
                    const __m256 m2 = _mm256_loadu_ps(m[2 * 4 + j] + tx), m3 = _mm256_loadu_ps(m[3 * 4 + j] + tx);
                    s0[j] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
                    s1[j] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
                }
                __m256 r[2][2]; /* (A^T M) A: r[i][0] even columns, r[i][1] odd */
                r[0][0] = _mm256_add_ps(_mm256_add_ps(s0[0], s0[1]), s0[2]);
                r[0][1] = _mm256_sub_ps(_mm256_sub_ps(s0[1], s0[2]), s0[3]);
                r[1][0] = _mm256_add_ps(_mm256_add_ps(s1[0], s1[1]), s1[2]);
                r[1][1] = _mm256_sub_ps(_mm256_sub_ps(s1[1], s1[2]), s1[3]);
                for (int i = 0; i < 1 + two_rows; i++) {
                    __m256 ev = r[i][0], od = r[i][1];
                    if (has_bias) ev = _mm256_add_ps(ev, vb), od = _mm256_add_ps(od, vb);
                    const __m256 lo = _mm256_unpacklo_ps(ev, od), hi = _mm256_unpackhi_ps(ev, od);
                    float *dst = (i ? y1 : y0) + 2 * tx;
                    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(lo, hi, 0x20));
                    _mm256_storeu_ps(dst + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
                }
            }
        }
#endif
        for (; tx < tW; tx++) {
            float s0[4], s1[4];
            for (int j = 0; j < 4; j++) {
                const float m0 = m[j][tx], m1 = m[4 + j][tx], m2 = m[8 + j][tx], m3 = m[12 + j][tx];
                s0[j] = (m0 + m1) + m2;
                s1[j] = (m1 - m2) - m3;
            }
            float r[2][2];
            r[0][0] = (s0[0] + s0[1]) + s0[2];
            r[0][1] = (s0[1] - s0[2]) - s0[3];
            r[1][0] = (s1[0] + s1[1]) + s1[2];
            r[1][1] = (s1[1] - s1[2]) - s1[3];
            for (int i = 0; i < 1 + two_rows; i++)
                for (int j = 0; j < 2; j++) {
                    const int64_t ox = 2 * tx + j;
                    if (ox < W) (i ? y1 : y0)[ox] = has_bias ? r[i][j] + bias : r[i][j];
                }
        }
    }
}

/* ---------------------------------------------------------------- driver */

sdc_status sdc_cpu_conv3x3_winograd(sdc_cpu *cpu, int64_t B, int64_t C, int64_t H, int64_t W, const float *x,
                                    int64_t O, sdc_type wt, const void *w, size_t row_bytes, const float *bias,
                                    float *y) {
    const int64_t tH = (H + 1) / 2, tW = (W + 1) / 2, nrows = B * tH; /* tile rows of all images */
    /* output channels per block: U of a block within WG_U_MAX_BYTES, blocks of equal size
     * (a multiple of 6 rows where there are several) */
    const size_t u_max = cpu->winograd_u_bytes ? cpu->winograd_u_bytes : WG_U_MAX_BYTES;
    const size_t chunk_max = cpu->winograd_chunk_bytes ? cpu->winograd_chunk_bytes : WG_CHUNK_BYTES;
    int64_t Ob = (int64_t)(u_max / ((size_t)(16 * C) * sizeof(float)));
    if (Ob < 6) Ob = 6;
    if (Ob >= O) Ob = O;
    else {
        const int64_t nob = (O + Ob - 1) / Ob;
        Ob = ((O + nob - 1) / nob + 5) / 6 * 6;
    }
    /* tile rows per chunk: V and M of a chunk within WG_CHUNK_BYTES, chunks of equal size */
    const int64_t mx = C > Ob ? C : Ob;
    int64_t nty = (int64_t)(chunk_max / ((size_t)(16 * tW * mx) * sizeof(float)));
    if (nty < 1) nty = 1;
    if (nty > nrows) nty = nrows;
    const int64_t nch = (nrows + nty - 1) / nty;
    nty = (nrows + nch - 1) / nch;
    const int64_t tcap = nty * tW;
    const size_t nu = (size_t)(16 * Ob) * (size_t)C, nv = (size_t)(16 * C * tcap), nm = (size_t)(16 * Ob * tcap);
    float *U = sdc_cpu_workspace(cpu, (nu + nv + nm) * sizeof(float) + 128);
    if (!U) return SDC_E_NOMEM;
    const size_t per_thread = (size_t)(9 * C > 4 * prow_len(tW) ? 9 * C : 4 * prow_len(tW)) * sizeof(float);
    for (int t = 0; t < cpu->n_threads; t++)
        if (!sdc_cpu_scratch(cpu, t, per_thread)) return SDC_E_NOMEM;

    wg_ctx c;
    memset(&c, 0, sizeof c);
    atomic_init(&c.failed, SDC_OK);
    c.cpu = cpu;
    c.C = C, c.H = H, c.W = W, c.O = O, c.tH = tH, c.tW = tW;
    c.x = x, c.y = y;
    c.wt = wt, c.w = w, c.row_bytes = row_bytes, c.bias = bias;
    c.U = U;
    c.V = U + ((nu + 15) & ~(size_t)15);
    c.M = c.V + ((nv + 15) & ~(size_t)15);
#ifdef WG_X86
    c.avx2 = cpu->isa >= SDC_ISA_AVX2;
#endif
    const int u_once = Ob == O; /* one block: U is made once for all chunks */
    if (u_once) {
        c.o0 = 0, c.Ob = O;
        sdc_pool_for(cpu->pool, O, weight_task, &c);
        if (atomic_load(&c.failed)) return (sdc_status)atomic_load(&c.failed);
    }
    for (c.ty0 = 0; c.ty0 < nrows; c.ty0 += nty) {
        c.Tc = (c.ty0 + nty <= nrows ? nty : nrows - c.ty0) * tW;
        sdc_pool_for(cpu->pool, C, input_task, &c);
        if (atomic_load(&c.failed)) return (sdc_status)atomic_load(&c.failed);
        for (c.o0 = 0; c.o0 < O; c.o0 += Ob) {
            c.Ob = c.o0 + Ob <= O ? Ob : O - c.o0;
            if (!u_once) {
                sdc_pool_for(cpu->pool, c.Ob, weight_task, &c);
                if (atomic_load(&c.failed)) return (sdc_status)atomic_load(&c.failed);
            }
            for (int xi = 0; xi < 16; xi++) {
                sdc_status st = sdc_cpu_conv2d(cpu, 1, C, 1, c.Tc, c.V + (int64_t)xi * C * c.Tc, c.Ob, 1, 1, 1, 0,
                                               SDC_TYPE_F32, c.U + (int64_t)xi * c.Ob * C, NULL,
                                               c.M + (int64_t)xi * c.Ob * c.Tc);
                if (st != SDC_OK) return st;
            }
            sdc_pool_for(cpu->pool, c.Ob, output_task, &c);
        }
    }
    return SDC_OK;
}
