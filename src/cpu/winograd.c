/* winograd.c - 3x3 convolution (stride 1, padding 1) by Winograd's minimal filtering
 * F(m x m, 3x3), m = 2 or 4 (Lavin & Gray, "Fast Algorithms for Convolutional Neural
 * Networks", 2015).
 *
 * Each m x m output tile is Y = A^T [ U (.) V ] A + bias, where V = B^T d B is the tile's
 * a x a input patch d (a = m + 2) transformed and U = G g G^T the 3x3 kernel g transformed.
 * F(2x2, 3x3):
 *
 *   B^T = [1  0 -1  0]      G = [1    0    0  ]      A^T = [1  1  1  0]
 *         [0  1  1  0]          [1/2  1/2  1/2]            [0  1 -1 -1]
 *         [0 -1  1  0]          [1/2 -1/2  1/2]
 *         [0  1  0 -1]          [0    0    1  ]
 *
 * F(4x4, 3x3) (interpolation points 0, 1, -1, 2, -2 and infinity):
 *
 *   B^T = [4  0 -5  0  1  0]    G = [ 1/4    0     0  ]    A^T = [1  1  1  1  1  0]
 *         [0 -4 -4  1  1  0]        [-1/6  -1/6  -1/6 ]          [0  1 -1  2 -2  0]
 *         [0  4 -4 -1  1  0]        [-1/6   1/6  -1/6 ]          [0  1  1  4  4  0]
 *         [0 -2 -1  2  1  0]        [ 1/24  1/12  1/6 ]          [0  1 -1  8 -8  1]
 *         [0  2 -1 -2  1  0]        [ 1/24 -1/12  1/6 ]
 *         [0  4  0 -5  0  1]        [ 0      0     1  ]
 *
 * Summed over input channels, the a*a products per (tile, output channel, input channel)
 * become a*a independent GEMMs, so the multiply count per output drops from 9 to 4 (m = 2,
 * 2.25x) or 2.25 (m = 4, 4x) for a few additions per tile. Per chunk of tile rows:
 *
 *   V[xi][c][t] = (B^T d_{c,t} B)[xi]            input transform (t: tile within the chunk)
 *   M[xi][o][t] = sum_c U[xi][o][c] V[xi][c][t]   a*a GEMMs on the blocked kernel's micro-tiles
 *   y[o][m*ty+i][m*tx+j] = (A^T M[.][o][t] A)[i][j] + bias[o]
 *
 * U is made once per call from the stored weights (any type the GEMM takes). The input and
 * output transforms use additions, subtractions and multiplications by powers of two only,
 * in a fixed order (so FMA contraction could not change them either); the GEMMs are the
 * deterministic blocked kernel. Results therefore do not depend on the thread count, and the
 * AVX2 transforms equal their scalar twins bit for bit. F(4x4)'s larger transform entries
 * cost some accuracy (its U needs the non-dyadic 1/6 and 1/24: the integer part G'g G'^T is
 * formed first and scaled once); tests/test_conv2d.c bounds both variants against fp64.
 * Buffers live in the CPU context's workspace (U plus V and M for one chunk). The weight
 * and input transforms write U and V straight in the packed A and B layouts of the GEMM
 * micro-kernels (sdc_gemm_packed), and all a*a GEMMs of a chunk run as one parallel loop:
 * at 16x16 and 32x32 with 1280 channels, repacking U (up to 40 MB per block) for 36 separate
 * GEMM calls had cost as much as the products themselves. */
#include <stdatomic.h>
#include <string.h>

#include "gemm.h"

#if defined(__x86_64__) || defined(__i386__)
#define WG_X86 1
#include <immintrin.h>
#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
#endif

enum {
    WG_MIN_TILES = 128,            /* fewer tiles (all images): GEMMs too narrow to gain */
    WG_MIN_CHANNELS = 16,          /* C and O: the GEMMs need rows and depth */
    WG_MAX_CHANNELS_IN = 2560,     /* the deepest layer measured: 2560 -> 1280 at 16x16, batch 2,
                                      F(2x2) 68-73 ms vs 104-106 direct once U was written packed
                                      (with the per-product repacking it had lost, 250 vs 242) */
    WG_CHUNK_BYTES = 16 << 20,     /* V (and M) for one chunk of tile rows, U in one block */
    WG_CHUNK_BLOCKED_BYTES = 48 << 20, /* ... U in several blocks: larger chunks, so that fewer
                                          transforms are repeated (1920->640 at 32x32: one
                                          chunk, 141 -> 72 ms; 16 MiB chunks stay better where
                                          nothing repeats, 128 channels at 512x512: 189 vs 222) */
    WG_WCHUNK = 288,               /* weight values packed at a time: 32 input channels of 9 taps
                                      (whole blocks of 32 for the quantized types) */
    WG_GEMM_ROWS = 48,             /* output channels per GEMM task: 8 A slivers of <= 256 k
                                      (64 KiB) stay in L2 while the B slivers stream past */
};
#define WG_U_MAX_BYTES ((size_t)16 << 20) /* U for one block of output channels: blocks of
                                              this size beat 40 MiB ones (1280 channels at 32x32:
                                              90 vs 139 ms; 512 at 128x128: 123 vs 148 ms) */

static int64_t ntiles(int64_t n, int m) { return (n + m - 1) / m; }

/* Weight types packed straight from their stored rows WG_WCHUNK values at a time (block
 * sizes dividing 288); others (K-quants) go through f32 rows. */
static int wg_packs_direct(sdc_type t) {
    const sdc_type_traits *tr = sdc_type_traits_of(t);
    return tr && WG_WCHUNK % tr->block == 0;
}

/* floats of weight_task's scratch: the packed chunk, plus 6 f32 rows where needed */
static size_t wg_weight_scratch(sdc_type t, int64_t C) {
    return (size_t)WG_WCHUNK * 8 + (wg_packs_direct(t) ? 0 : (size_t)SDC_GEMM_MR * 9 * (size_t)C);
}

int sdc_winograd_choose(int mode, int64_t B, int64_t C, int64_t H, int64_t W, int64_t O, int kh, int kw,
                        int stride, int pad) {
    if (mode == 0 || kh != 3 || kw != 3 || stride != 1 || pad != 1 || C < WG_MIN_CHANNELS ||
        C > WG_MAX_CHANNELS_IN || O < WG_MIN_CHANNELS || B < 1 || H < 1 || W < 1)
        return 0;
    /* at least WG_MIN_TILES tiles over the batch, without forming B * tiles (H*W <= 2^40 is
     * checked by the caller, B alone is only bounded) */
    const int64_t p2 = ntiles(H, 2) * ntiles(W, 2), p4 = ntiles(H, 4) * ntiles(W, 4);
    const int ok2 = p2 >= WG_MIN_TILES || B >= (WG_MIN_TILES + p2 - 1) / p2;
    const int ok4 = p4 >= WG_MIN_TILES || B >= (WG_MIN_TILES + p4 - 1) / p4;
    if (mode == 2 || mode == 4) return (mode == 2 ? ok2 : ok4) ? mode : 0;
    /* F(4x4) wherever it has the tiles: at 128 (32x32, batch 2) it beat F(2x2) by 1.1-1.4x
     * for C = 320, 640, 1280 and 1920, and lost by 1.1x for C = 960 */
    return ok4 ? 4 : ok2 ? 2 : 0;
}

typedef struct wg_ctx {
    sdc_cpu *cpu;
    int m, a, nx;           /* output tile m x m, input patch a x a (a = m + 2), nx = a*a GEMMs */
    int64_t C, H, W, O, tH, tW;
    int64_t ty0, Tc, Tp;    /* the chunk: tile rows from ty0 (counted over all images: image
                               ty0 / tH), Tc tiles (whole tile rows), Tp = Tc rounded up to 16 */
    int64_t o0, Ob;         /* the block of output channels U and M hold */
    const float *x;         /* [B][C][H][W] */
    float *y;               /* [B][O][H][W] */
    sdc_type wt;
    const uint8_t *w;
    size_t row_bytes;
    const float *bias;
    float *U, *V, *M;       /* the GEMM operands, packed: U[xi][sliver of 6 o][c][8] (A),
                               V[xi][sliver of 16 t][c][16] (B); M[xi][o - o0][Tp] (C) */
    int avx2;
    atomic_int failed;      /* an sdc_status: the first failure of a task */
} wg_ctx;

/* U's component plane for the current block: its slivers of 6 output channels, C x 8 each */
static inline int64_t uplane(const wg_ctx *c) { return ((c->Ob + SDC_GEMM_MR - 1) / SDC_GEMM_MR) * c->C * 8; }

/* ---------------------------------------------------------------- weight transform */

/* The 1-D kernel transforms (a, b, d) -> G (a, b, d)^T, written once for floats and AVX2
 * vectors with the same operations in the same order. F(2x2): G as above. F(4x4): the
 * integer G' (rows [1 0 0], [1 1 1], [1 -1 1], [1 2 4], [1 -2 4], [0 0 1]); G = diag(s) G'
 * with s = (1/4, -1/6, -1/6, 1/24, 1/24, 1), applied once at the end (wg_scales_f4). */
#define G2(T, ADD, SUB, MUL, a, b, d, r)                                                               \
    do {                                                                                               \
        r[0] = a;                                                                                      \
        r[1] = MUL(0.5f, ADD(ADD(a, b), d));                                                           \
        r[2] = MUL(0.5f, ADD(SUB(a, b), d));                                                           \
        r[3] = d;                                                                                      \
    } while (0)
#define G4(T, ADD, SUB, MUL, a, b, d, r)                                                               \
    do {                                                                                               \
        const T ad_ = ADD(a, d), a4d_ = ADD(a, MUL(4.0f, d)), b2_ = MUL(2.0f, b);                      \
        r[0] = a;                                                                                      \
        r[1] = ADD(ad_, b);                                                                            \
        r[2] = SUB(ad_, b);                                                                            \
        r[3] = ADD(a4d_, b2_);                                                                         \
        r[4] = SUB(a4d_, b2_);                                                                         \
        r[5] = d;                                                                                      \
    } while (0)
#define FADD(x, y) ((x) + (y))
#define FSUB(x, y) ((x) - (y))
#define FMUL(k, x) ((float)(k) * (x))

/* sc[i*6 + j] = s_i s_j rounded once */
static void wg_scales_f4(float sc[36]) {
    static const double s[6] = {1.0 / 4, -1.0 / 6, -1.0 / 6, 1.0 / 24, 1.0 / 24, 1.0};
    for (int i = 0; i < 36; i++) sc[i] = (float)(s[i / 6] * s[i % 6]);
}

/* u = G g G^T for one 3x3 kernel k: a*a values u[i*a + j] (a = m + 2; F(4x4) scaled by sc) */
static void kernel_scalar(int m, const float *k, const float sc[36], float *u) {
    const int a = m + 2;
    float h[3][6], col[6];
    for (int r = 0; r < 3; r++) { /* g G^T, row by row */
        if (m == 2) G2(float, FADD, FSUB, FMUL, k[3 * r], k[3 * r + 1], k[3 * r + 2], h[r]);
        else G4(float, FADD, FSUB, FMUL, k[3 * r], k[3 * r + 1], k[3 * r + 2], h[r]);
    }
    for (int j = 0; j < a; j++) { /* G (g G^T), column by column */
        if (m == 2) G2(float, FADD, FSUB, FMUL, h[0][j], h[1][j], h[2][j], col);
        else G4(float, FADD, FSUB, FMUL, h[0][j], h[1][j], h[2][j], col);
        for (int i = 0; i < a; i++) u[i * a + j] = m == 2 ? col[i] : col[i] * sc[i * a + j];
    }
}

#ifdef WG_X86
#define VADD(x, y) _mm256_add_ps(x, y)
#define VSUB(x, y) _mm256_sub_ps(x, y)
#define VMUL(k, x) _mm256_mul_ps(_mm256_set1_ps((float)(k)), x)

/* kernel_scalar for the 8 rows of a packed A sliver at once (lane i = output channel i of
 * the sliver): the 9 taps of one input channel at g[t*8 + 0..7]; u + xi*ustride receives
 * the 8 values of component xi. */
AVX2_FN static void kernel_rows_avx2(int m, const float *g, const float sc[36], float *u, int64_t ustride) {
    const int a = m + 2;
    __m256 h[3][6], col[6];
    for (int r = 0; r < 3; r++) {
        const __m256 k0 = _mm256_loadu_ps(g + 8 * (3 * r)), k1 = _mm256_loadu_ps(g + 8 * (3 * r + 1)),
                     k2 = _mm256_loadu_ps(g + 8 * (3 * r + 2));
        if (m == 2) G2(__m256, VADD, VSUB, VMUL, k0, k1, k2, h[r]);
        else G4(__m256, VADD, VSUB, VMUL, k0, k1, k2, h[r]);
    }
    for (int j = 0; j < a; j++) {
        if (m == 2) G2(__m256, VADD, VSUB, VMUL, h[0][j], h[1][j], h[2][j], col);
        else G4(__m256, VADD, VSUB, VMUL, h[0][j], h[1][j], h[2][j], col);
        for (int i = 0; i < a; i++)
            _mm256_storeu_ps(u + (int64_t)(i * a + j) * ustride,
                             m == 2 ? col[i] : _mm256_mul_ps(col[i], _mm256_set1_ps(sc[i * a + j])));
    }
}
#endif

/* The transform of channels [c0, c0 + n) of one row sliver, from its packed taps g
 * (g[(9*(c - c0) + t)*8 + i]: tap t of channel c, row i) into U (u: the sliver's channel 0 in
 * component 0; component planes ustride apart). */
static void kernel_rows(const wg_ctx *c, const float *g, int64_t c0, int64_t n, const float sc[36], float *u,
                        int64_t ustride) {
#ifdef WG_X86
    if (c->avx2) {
        for (int64_t ci = 0; ci < n; ci++) kernel_rows_avx2(c->m, g + 72 * ci, sc, u + (c0 + ci) * 8, ustride);
        return;
    }
#endif
    for (int64_t ci = 0; ci < n; ci++)
        for (int i = 0; i < 8; i++) {
            float k[9], uu[36];
            for (int t = 0; t < 9; t++) k[t] = g[(9 * ci + t) * 8 + i];
            kernel_scalar(c->m, k, sc, uu);
            for (int xi = 0; xi < c->nx; xi++) u[xi * ustride + (c0 + ci) * 8 + i] = uu[xi];
        }
}

/* U of one sliver of 6 output channels (s: within the block), written straight in the packed
 * A layout the GEMM reads: U[xi][s][c][8]. The weights are packed 32 input channels (288
 * values) at a time, as a GEMM packs its A; types whose blocks do not divide 288 (K-quants)
 * are first dequantized to f32 rows. */
static void weight_task(void *vc, int64_t s, int thread) {
    wg_ctx *c = vc;
    const int64_t C = c->C, K = 9 * C, r0 = c->o0 + s * SDC_GEMM_MR;
    const int nr = (int)(c->Ob - s * SDC_GEMM_MR < SDC_GEMM_MR ? c->Ob - s * SDC_GEMM_MR : SDC_GEMM_MR);
    float *g = sdc_cpu_scratch(c->cpu, thread, wg_weight_scratch(c->wt, C) * sizeof(float));
    if (!g) {
        atomic_store(&c->failed, SDC_E_NOMEM);
        return;
    }
    sdc_type t = c->wt;
    const uint8_t *w = c->w;
    size_t rb = c->row_bytes;
    int64_t r = r0;
    if (!wg_packs_direct(t)) { /* f32 rows after the packed chunk */
        float *rows = g + WG_WCHUNK * 8;
        for (int i = 0; i < nr; i++)
            if (!sdc_gemm_dequant_seg(t, w + (size_t)(r0 + i) * rb, 0, K, rows + i * K, c->cpu->isa)) {
                atomic_store(&c->failed, SDC_E_UNSUPPORTED);
                return;
            }
        t = SDC_TYPE_F32, w = (const uint8_t *)rows, rb = (size_t)K * sizeof(float), r = 0;
    }
    float sc[36];
    if (c->m == 4) wg_scales_f4(sc);
    float *u = c->U + s * C * 8;
    const int64_t ustride = uplane(c);
    for (int64_t k0 = 0; k0 < K; k0 += WG_WCHUNK) {
        const int64_t kc = K - k0 < WG_WCHUNK ? K - k0 : WG_WCHUNK;
        sdc_gemm_pack_weight_a(t, w, rb, r, nr, k0, kc, g, c->cpu->isa);
        kernel_rows(c, g, k0 / 9, kc / 9, sc, u, ustride);
    }
}

/* ---------------------------------------------------------------- input transform */

/* The 1-D transforms d -> B^T d, written once for floats and once for AVX2 vectors with the
 * same operations in the same order. */
#define BT2(T, ADD, SUB, d, r)                                                                         \
    do {                                                                                               \
        r[0] = SUB(d[0], d[2]);                                                                        \
        r[1] = ADD(d[1], d[2]);                                                                        \
        r[2] = SUB(d[2], d[1]);                                                                        \
        r[3] = SUB(d[1], d[3]);                                                                        \
    } while (0)
/* r0 = 4(d0-d2) + (d4-d2), r1 = (d3+d4) - 4(d1+d2), r2 = (d4-d3) + 4(d1-d2),
 * r3,4 = (d4-d2) +- 2(d3-d1), r5 = 4(d1-d3) + (d5-d3) */
#define BT4(T, ADD, SUB, MUL, d, r)                                                                    \
    do {                                                                                               \
        const T p_ = SUB(d[4], d[2]), q_ = MUL(2, SUB(d[3], d[1]));                                    \
        r[0] = ADD(MUL(4, SUB(d[0], d[2])), p_);                                                       \
        r[1] = SUB(ADD(d[3], d[4]), MUL(4, ADD(d[1], d[2])));                                          \
        r[2] = ADD(SUB(d[4], d[3]), MUL(4, SUB(d[1], d[2])));                                          \
        r[3] = ADD(p_, q_);                                                                            \
        r[4] = SUB(p_, q_);                                                                            \
        r[5] = ADD(MUL(4, SUB(d[1], d[3])), SUB(d[5], d[3]));                                          \
    } while (0)
/* y0 = m0 + (m1+m2) + (m3+m4), y1 = (m1-m2) + 2(m3-m4), y2 = (m1+m2) + 4(m3+m4),
 * y3 = ((m1-m2) + 8(m3-m4)) + m5 */
#define AT4(T, ADD, SUB, MUL, mm, y)                                                                   \
    do {                                                                                               \
        const T a_ = ADD(mm[1], mm[2]), b_ = SUB(mm[1], mm[2]), c_ = ADD(mm[3], mm[4]),                \
                d_ = SUB(mm[3], mm[4]);                                                                \
        y[0] = ADD(ADD(mm[0], a_), c_);                                                                \
        y[1] = ADD(b_, MUL(2, d_));                                                                    \
        y[2] = ADD(a_, MUL(4, c_));                                                                    \
        y[3] = ADD(ADD(b_, MUL(8, d_)), mm[5]);                                                        \
    } while (0)

/* One tile from the a padded rows (pr[r][k] = x[m*ty-1+r][k-1]), as the AVX2 path does it. */
static void in_tile_scalar(int m, float *const pr[6], int64_t tx, float *v) {
    const int a = m + 2;
    float e[6][6], col[6] = {0}, r[6];
    for (int row = 0; row < a; row++) { /* d B, row by row */
        const float *d = pr[row] + m * tx;
        if (m == 2) BT2(float, FADD, FSUB, d, e[row]);
        else BT4(float, FADD, FSUB, FMUL, d, e[row]);
    }
    for (int j = 0; j < a; j++) { /* B^T (d B), column by column */
        for (int row = 0; row < a; row++) col[row] = e[row][j];
        if (m == 2) BT2(float, FADD, FSUB, col, r);
        else BT4(float, FADD, FSUB, FMUL, col, r);
        for (int i = 0; i < a; i++) v[i * a + j] = r[i];
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
/* [p[0..3] | p[16..19]] */
AVX2_FN static inline __m256 load_split(const float *p) {
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p)), _mm_loadu_ps(p + 16), 1);
}

/* Tiles tx..tx+7 (lane l = tile tx+l) into v[xi] + 0..7. */
AVX2_FN static void in_tiles_avx2(int m, float *const pr[6], int64_t tx, float *const v[36]) {
    const int a = m + 2;
    __m256 e[6][6];
    for (int row = 0; row < a; row++) {
        const float *p = pr[row] + m * tx;
        __m256 d[6];
        if (m == 2) {
            const __m256 x0 = _mm256_loadu_ps(p), x1 = _mm256_loadu_ps(p + 8);
            const __m256 x2 = _mm256_loadu_ps(p + 2), x3 = _mm256_loadu_ps(p + 10);
            d[0] = evens(x0, x1), d[1] = odds(x0, x1), d[2] = evens(x2, x3), d[3] = odds(x2, x3);
            BT2(__m256, VADD, VSUB, d, e[row]);
        } else { /* tile l's 6 values are p[4l .. 4l+5]: a 4x4 transpose within each 128-bit
                    lane of rows [tile l | tile l+4], then the same from tile l+1 for d4, d5 */
            const __m256 r0 = load_split(p), r1 = load_split(p + 4), r2 = load_split(p + 8),
                         r3 = load_split(p + 12), r4 = load_split(p + 16);
            const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            const __m256 s0 = _mm256_unpacklo_ps(r1, r2), s1 = _mm256_unpacklo_ps(r3, r4);
            d[0] = _mm256_shuffle_ps(t0, t2, 0x44), d[1] = _mm256_shuffle_ps(t0, t2, 0xEE);
            d[2] = _mm256_shuffle_ps(t1, t3, 0x44), d[3] = _mm256_shuffle_ps(t1, t3, 0xEE);
            d[4] = _mm256_shuffle_ps(s0, s1, 0x44), d[5] = _mm256_shuffle_ps(s0, s1, 0xEE);
            BT4(__m256, VADD, VSUB, VMUL, d, e[row]);
        }
    }
    for (int j = 0; j < a; j++) {
        __m256 r[6];
        if (m == 2) {
            const __m256 col[4] = {e[0][j], e[1][j], e[2][j], e[3][j]};
            BT2(__m256, VADD, VSUB, col, r);
        } else {
            const __m256 col[6] = {e[0][j], e[1][j], e[2][j], e[3][j], e[4][j], e[5][j]};
            BT4(__m256, VADD, VSUB, VMUL, col, r);
        }
        for (int i = 0; i < a; i++) _mm256_storeu_ps(v[i * a + j], r[i]);
    }
}
#endif

/* Padded row length: tile tx reads m*tx .. m*tx+m+1, so the scalar path reads up to index
 * m*tW + 1; the F(4x4) vector path, for tiles tx..tx+7 with tx+8 <= tW, reads up to index
 * 4*tx + 35 <= 4*tW + 3 (load_split(p + 16)), and F(2x2)'s up to 2*tW + 1. So L >= m*tW + 4;
 * rounded up to whole cache lines. */
static int64_t prow_len(int m, int64_t tW) { return (m * tW + 4 + 15) & ~(int64_t)15; }

/* V's element (component xi, input channel ci, tile t of the chunk) in the packed B layout */
static inline float *vat(const wg_ctx *c, int xi, int64_t ci, int64_t t) {
    return c->V + (int64_t)xi * c->Tp * c->C + ((t >> 4) * c->C + ci) * 16 + (t & 15);
}

static void input_task(void *vc, int64_t ci, int thread) {
    wg_ctx *c = vc;
    const int m = c->m, a = c->a, nx = c->nx;
    const int64_t H = c->H, W = c->W, tW = c->tW, Tc = c->Tc, C = c->C, L = prow_len(m, tW);
    float *buf = sdc_cpu_scratch(c->cpu, thread, (size_t)(a * L) * sizeof(float));
    if (!buf) {
        atomic_store(&c->failed, SDC_E_NOMEM);
        return;
    }
    float *pr[6];
    for (int r = 0; r < a; r++) pr[r] = buf + r * L;
    for (int64_t t0 = 0; t0 < Tc; t0 += tW) {
        const int64_t gty = c->ty0 + t0 / tW, b = gty / c->tH, ty = gty % c->tH;
        const float *xc = c->x + (b * C + ci) * H * W;
        for (int r = 0; r < a; r++) {
            const int64_t iy = m * ty - 1 + r;
            if (iy < 0 || iy >= H) {
                memset(pr[r], 0, (size_t)L * sizeof(float));
                continue;
            }
            pr[r][0] = 0.0f;
            memcpy(pr[r] + 1, xc + iy * W, (size_t)W * sizeof(float));
            memset(pr[r] + 1 + W, 0, (size_t)(L - 1 - W) * sizeof(float));
        }
        int64_t tx = 0;
#ifdef WG_X86
        if (c->avx2)
            for (; tx + 8 <= tW; tx += 8) {
                const int64_t t = t0 + tx;
                float *vt[36], tmp[36][8];
                const int split = (t & 15) > 8; /* the 8 tiles straddle two slivers */
                for (int xi = 0; xi < nx; xi++) vt[xi] = split ? tmp[xi] : vat(c, xi, ci, t);
                in_tiles_avx2(m, pr, tx, vt);
                if (split)
                    for (int xi = 0; xi < nx; xi++)
                        for (int l = 0; l < 8; l++) *vat(c, xi, ci, t + l) = tmp[xi][l];
            }
#endif
        for (; tx < tW; tx++) {
            float t[36];
            in_tile_scalar(m, pr, tx, t);
            for (int xi = 0; xi < nx; xi++) *vat(c, xi, ci, t0 + tx) = t[xi];
        }
    }
    for (int64_t t = Tc; t < c->Tp; t++) /* the last sliver's spare lanes: zero columns of M */
        for (int xi = 0; xi < nx; xi++) *vat(c, xi, ci, t) = 0.0f;
}

/* ---------------------------------------------------------------- output transform */

/* y = A^T M A for one tile (values mm[xi] = M[xi] at the tile), as the AVX2 path does it;
 * y[i*m + j]. */
static void out_tile_scalar(int m, const float *mm, float *y) {
    if (m == 2) {
        float s0[4], s1[4];
        for (int j = 0; j < 4; j++) {
            const float m0 = mm[j], m1 = mm[4 + j], m2 = mm[8 + j], m3 = mm[12 + j];
            s0[j] = (m0 + m1) + m2;
            s1[j] = (m1 - m2) - m3;
        }
        y[0] = (s0[0] + s0[1]) + s0[2];
        y[1] = (s0[1] - s0[2]) - s0[3];
        y[2] = (s1[0] + s1[1]) + s1[2];
        y[3] = (s1[1] - s1[2]) - s1[3];
        return;
    }
    float s[4][6], col[6], r[4];
    for (int j = 0; j < 6; j++) { /* A^T M, column by column */
        for (int i = 0; i < 6; i++) col[i] = mm[i * 6 + j];
        AT4(float, FADD, FSUB, FMUL, col, r);
        for (int i = 0; i < 4; i++) s[i][j] = r[i];
    }
    for (int i = 0; i < 4; i++) AT4(float, FADD, FSUB, FMUL, s[i], (y + 4 * i)); /* (A^T M) A */
}

#ifdef WG_X86
/* F(2x2): 8 tiles (16 whole output columns) of rows oy, oy+1 */
AVX2_FN static void out_tiles2_avx2(const float *const m[16], int64_t tx, __m256 vb, int has_bias, int nrows,
                                    float *const yr[4]) {
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
    for (int i = 0; i < nrows; i++) {
        __m256 ev = r[i][0], od = r[i][1];
        if (has_bias) ev = _mm256_add_ps(ev, vb), od = _mm256_add_ps(od, vb);
        const __m256 lo = _mm256_unpacklo_ps(ev, od), hi = _mm256_unpackhi_ps(ev, od);
        float *dst = yr[i] + 2 * tx;
        _mm256_storeu_ps(dst, _mm256_permute2f128_ps(lo, hi, 0x20));
        _mm256_storeu_ps(dst + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    }
}

/* F(4x4): 8 tiles (32 whole output columns) of rows oy .. oy+nrows-1 */
AVX2_FN static void out_tiles4_avx2(const float *const m[36], int64_t tx, __m256 vb, int has_bias, int nrows,
                                    float *const yr[4]) {
    __m256 s[4][6];
    for (int j = 0; j < 6; j++) { /* A^T M */
        __m256 col[6], r[4];
        for (int i = 0; i < 6; i++) col[i] = _mm256_loadu_ps(m[i * 6 + j] + tx);
        AT4(__m256, VADD, VSUB, VMUL, col, r);
        for (int i = 0; i < 4; i++) s[i][j] = r[i];
    }
    for (int i = 0; i < nrows; i++) {
        __m256 y[4]; /* (A^T M) A: y[j] = column j of the 8 tiles */
        AT4(__m256, VADD, VSUB, VMUL, s[i], y);
        if (has_bias)
            for (int j = 0; j < 4; j++) y[j] = _mm256_add_ps(y[j], vb);
        /* 4x4 transposes within each 128-bit lane: q[l] = [tile l | tile l+4], columns 0..3 */
        const __m256 t0 = _mm256_unpacklo_ps(y[0], y[1]), t1 = _mm256_unpackhi_ps(y[0], y[1]);
        const __m256 t2 = _mm256_unpacklo_ps(y[2], y[3]), t3 = _mm256_unpackhi_ps(y[2], y[3]);
        const __m256 q[4] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                             _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE)};
        float *dst = yr[i] + 4 * tx;
        for (int l = 0; l < 4; l++) {
            _mm_storeu_ps(dst + 4 * l, _mm256_castps256_ps128(q[l]));
            _mm_storeu_ps(dst + 16 + 4 * l, _mm256_extractf128_ps(q[l], 1));
        }
    }
}
#endif

static void output_task(void *vc, int64_t o, int thread) { /* o: within the block */
    (void)thread;
    wg_ctx *c = vc;
    const int m = c->m, nx = c->nx;
    const int64_t H = c->H, W = c->W, tW = c->tW, Tc = c->Tc, Ob = c->Ob;
    const float bias = c->bias ? c->bias[c->o0 + o] : 0.0f;
    const int has_bias = c->bias != NULL;
    for (int64_t t0 = 0; t0 < Tc; t0 += tW) {
        const int64_t gty = c->ty0 + t0 / tW, b = gty / c->tH, oy = m * (gty % c->tH);
        const int nrows = oy + m <= H ? m : (int)(H - oy);
        const float *mp[36];
        for (int xi = 0; xi < nx; xi++) mp[xi] = c->M + ((int64_t)xi * Ob + o) * c->Tp + t0;
        float *yr[4];
        yr[0] = c->y + ((b * c->O + c->o0 + o) * H + oy) * W;
        for (int i = 1; i < m; i++) yr[i] = i < nrows ? yr[i - 1] + W : yr[0]; /* rows past H: unused */
        int64_t tx = 0;
#ifdef WG_X86
        if (c->avx2) {
            const __m256 vb = _mm256_set1_ps(bias);
            for (; m * (tx + 8) <= W; tx += 8) {
                if (m == 2) out_tiles2_avx2(mp, tx, vb, has_bias, nrows, yr);
                else out_tiles4_avx2(mp, tx, vb, has_bias, nrows, yr);
            }
        }
#endif
        for (; tx < tW; tx++) {
            float mm[36], r[16];
            for (int xi = 0; xi < nx; xi++) mm[xi] = mp[xi][tx];
            out_tile_scalar(m, mm, r);
            for (int i = 0; i < nrows; i++)
                for (int j = 0; j < m; j++) {
                    const int64_t ox = m * tx + j;
                    if (ox < W) yr[i][ox] = has_bias ? r[i * m + j] + bias : r[i * m + j];
                }
        }
    }
}

/* ---------------------------------------------------------------- the GEMMs */

/* Task t: component xi = t / ngroups, output channels [WG_GEMM_ROWS * g, +WG_GEMM_ROWS) of the
 * block (g = t % ngroups): M[xi] rows = U[xi] rows . V[xi], all tiles of the chunk. */
static void gemm_task(void *vc, int64_t t, int thread) {
    (void)thread;
    const wg_ctx *c = vc;
    const int64_t ngroups = (c->Ob + WG_GEMM_ROWS - 1) / WG_GEMM_ROWS;
    const int xi = (int)(t / ngroups);
    const int64_t r0 = (t % ngroups) * WG_GEMM_ROWS, C = c->C;
    const int64_t rows = c->Ob - r0 < WG_GEMM_ROWS ? c->Ob - r0 : WG_GEMM_ROWS;
    sdc_gemm_packed(c->cpu->isa, rows, c->Tp, C, c->U + xi * uplane(c) + (r0 / SDC_GEMM_MR) * C * 8,
                    c->V + (int64_t)xi * c->Tp * C, c->M + ((int64_t)xi * c->Ob + r0) * c->Tp, c->Tp);
}

/* ---------------------------------------------------------------- driver */

sdc_status sdc_cpu_conv3x3_winograd(sdc_cpu *cpu, int m, int64_t B, int64_t C, int64_t H, int64_t W,
                                    const float *x, int64_t O, sdc_type wt, const void *w, size_t row_bytes,
                                    const float *bias, float *y) {
    if (m != 2 && m != 4) return SDC_E_INVALID;
    const int a = m + 2, nx = a * a;
    const int64_t tH = ntiles(H, m), tW = ntiles(W, m), nrows = B * tH; /* tile rows of all images */
    /* output channels per block: U of a block (whole slivers of 6 rows, 8 floats per k) within
     * the U limit, blocks of equal size (a multiple of 6 rows where there are several) */
    const size_t u_max = cpu->winograd_u_bytes ? cpu->winograd_u_bytes : WG_U_MAX_BYTES;
    int64_t Ob = SDC_GEMM_MR * (int64_t)(u_max / ((size_t)(nx * C) * 8 * sizeof(float)));
    if (Ob < SDC_GEMM_MR) Ob = SDC_GEMM_MR;
    if (Ob >= O) Ob = O;
    else {
        const int64_t nob = (O + Ob - 1) / Ob;
        Ob = ((O + nob - 1) / nob + SDC_GEMM_MR - 1) / SDC_GEMM_MR * SDC_GEMM_MR;
    }
    /* tile rows per chunk: V and M of a chunk within the chunk limit, chunks of equal size */
    const size_t chunk_max = cpu->winograd_chunk_bytes ? cpu->winograd_chunk_bytes
                             : Ob < O                  ? WG_CHUNK_BLOCKED_BYTES
                                                       : WG_CHUNK_BYTES;
    const int64_t mx = C > Ob ? C : Ob;
    int64_t nty = (int64_t)(chunk_max / ((size_t)(nx * tW * mx) * sizeof(float)));
    if (nty < 1) nty = 1;
    if (nty > nrows) nty = nrows;
    const int64_t nch = (nrows + nty - 1) / nty;
    nty = (nrows + nch - 1) / nch;
    const int64_t tcap = (nty * tW + 15) & ~(int64_t)15; /* tiles of a chunk, whole B slivers */
    const int64_t nsl = (Ob + SDC_GEMM_MR - 1) / SDC_GEMM_MR;
    const size_t nu = (size_t)(nx * nsl * 8) * (size_t)C, nv = (size_t)(nx * C * tcap), nm = (size_t)(nx * Ob * tcap);
    float *U = sdc_cpu_workspace(cpu, (nu + nv + nm) * sizeof(float) + 128);
    if (!U) return SDC_E_NOMEM;
    const size_t wsc = wg_weight_scratch(wt, C), isc = (size_t)(a * prow_len(m, tW));
    const size_t per_thread = (wsc > isc ? wsc : isc) * sizeof(float);
    for (int t = 0; t < cpu->n_threads; t++)
        if (!sdc_cpu_scratch(cpu, t, per_thread)) return SDC_E_NOMEM;

    wg_ctx c;
    memset(&c, 0, sizeof c);
    atomic_init(&c.failed, SDC_OK);
    c.cpu = cpu;
    c.m = m, c.a = a, c.nx = nx;
    c.C = C, c.H = H, c.W = W, c.O = O, c.tH = tH, c.tW = tW;
    c.x = x, c.y = y;
    c.wt = wt, c.w = w, c.row_bytes = row_bytes, c.bias = bias;
    c.U = U;
    c.V = U + ((nu + 15) & ~(size_t)15);
    c.M = c.V + ((nv + 15) & ~(size_t)15);
#ifdef WG_X86
    c.avx2 = cpu->isa >= SDC_ISA_AVX2;
#endif
    /* Several blocks of output channels and several chunks: one of the two transforms is
     * repeated. Chunks outermost make each block's U again per chunk (O*C kernels per
     * chunk); blocks outermost transform each chunk's input again per block (C*T tiles per
     * block). Take the smaller amount of repeated work. */
    const int64_t nob = (O + Ob - 1) / Ob;
    const int blocks_outer = nob > 1 && nch > 1 && nob * nrows * tW < nch * O;
    if (nob == 1) {
        c.o0 = 0, c.Ob = O;
        sdc_pool_for(cpu->pool, nsl, weight_task, &c);
        if (atomic_load(&c.failed)) return (sdc_status)atomic_load(&c.failed);
    }
    const int64_t n_outer = blocks_outer ? nob : nch, n_inner = blocks_outer ? nch : nob;
    for (int64_t io = 0; io < n_outer; io++)
        for (int64_t ii = 0; ii < n_inner; ii++) {
            const int64_t ich = blocks_outer ? ii : io, iob = blocks_outer ? io : ii;
            const int new_chunk = blocks_outer || ii == 0, new_block = nob > 1 && (!blocks_outer || ii == 0);
            c.ty0 = ich * nty;
            c.Tc = (c.ty0 + nty <= nrows ? nty : nrows - c.ty0) * tW;
            c.Tp = (c.Tc + 15) & ~(int64_t)15;
            c.o0 = iob * Ob;
            c.Ob = c.o0 + Ob <= O ? Ob : O - c.o0;
            if (new_block) {
                sdc_pool_for(cpu->pool, (c.Ob + SDC_GEMM_MR - 1) / SDC_GEMM_MR, weight_task, &c);
                if (atomic_load(&c.failed)) return (sdc_status)atomic_load(&c.failed);
            }
            if (new_chunk) {
                sdc_pool_for(cpu->pool, C, input_task, &c);
                if (atomic_load(&c.failed)) return (sdc_status)atomic_load(&c.failed);
            }
            sdc_pool_for(cpu->pool, nx * ((c.Ob + WG_GEMM_ROWS - 1) / WG_GEMM_ROWS), gemm_task, &c);
            sdc_pool_for(cpu->pool, c.Ob, output_task, &c);
        }
    return SDC_OK;
}
