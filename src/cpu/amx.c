/* amx.c - the opt-in bf16 path (cpu->bf16, see gemm.h): linear and conv2d as GEMMs on Intel
 * AMX tiles (TDPBF16PS: a 16x32 bf16 tile times a 32x16 one into a 16x16 fp32 tile, 8192
 * multiply-adds per instruction; measured here about 14x the fp32 AVX-512 FMA rate).
 *
 * Numerics: both operands are rounded to bf16 (round to nearest even, 8 significant bits:
 * relative error <= 2^-9 each), their products are exact in fp32 and are summed in fp32,
 * starting from the bias. Per output |err| <= sum_k |a_k b_k| (2^-8 + 2^-18) plus the fp32
 * summation's (K + 1) 2^-24 (sum_k |a_k b_k| + |bias|) (tested against fp64 that way). Each output is
 * computed by one task in a fixed order, so results do not depend on the thread count.
 *
 * GEMM: C[M,N] = A[M,K] . B[K,N]. A task owns a block of MB rows x NB columns and walks K in
 * chunks of KC; per chunk it packs, into its own scratch,
 *   A as [MB/16][KC/32][16 rows][32 values] bf16 (each 1 KiB piece one tile load), and
 *   B as [NB/16][KC/2][16 columns][2 values] bf16 (the value pairs TDPBF16PS multiplies),
 * zero-padded past M, N and K, then runs 32x32 blocks of C as four accumulator tiles (tmm0-3)
 * fed by two A tiles (tmm4-5) and two B tiles (tmm6-7). The accumulators go through C itself
 * between chunks (fp32), or through a 16x16 buffer at the edges.
 *   linear: A = x (rows of activations), B = W^T (weight rows, dequantized a segment at a time
 *           by the SIMD decoders of gemm.c, any stored type);
 *   conv2d: A = W (one output channel per row), B = im2col(x) built per chunk straight from x
 *           (masked row loads for stride 1 within one output row, gathers otherwise), the
 *           batch folded into the columns.
 * Linux hands out AMX state on request (arch_prctl ARCH_REQ_XCOMP_PERM), done once. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "attention.h"
#include "gemm.h"

#if defined(__x86_64__) && defined(__linux__)
#define AMX_OK 1
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
#define AMX_FN __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")))
#else
#define AMX_OK 0
#endif

#if AMX_OK
enum { MB_MAX = 512, NB_MAX = 256, KC = 512 /* a multiple of 256: K-quant blocks */ };

static int amx_state; /* 0 unknown, 1 usable, -1 not */
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void amx_probe(void) {
    unsigned a, b, c, d;
    amx_state = -1;
    if (sdc_cpu_detect_isa() != SDC_ISA_AVX512) return;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    const int amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1;
    if (!amx_bf16 || !amx_tile) return;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !((a >> 5) & 1)) return; /* AVX512_BF16 */
    /* ARCH_REQ_XCOMP_PERM (0x1023) for XFEATURE_XTILEDATA (18) */
    if (syscall(SYS_arch_prctl, 0x1023, 18) != 0) return;
    amx_state = 1;
}
#endif

int sdc_cpu_detect_amx(void) {
#if AMX_OK
    pthread_once(&amx_once, amx_probe);
    return amx_state == 1;
#else
    return 0;
#endif
}

#if AMX_OK

typedef struct amx_gemm amx_gemm;
/* pack A rows [m0, m0+mm) (mm a multiple of 16) x values [k0, k0+kc) into dst (layout above,
 * kcp = kc rounded up to 32); pack B columns [n0, n0+nn) likewise. tmp: kcp floats. */
typedef void (*amx_pack_fn)(const amx_gemm *g, int64_t first, int64_t count, int64_t k0, int64_t kc, int64_t kcp,
                            uint16_t *dst, float *tmp);

struct amx_gemm {
    int64_t M, N, K;
    amx_pack_fn pack_a, pack_b;
    /* C addressing: column n is image n / P, position n % P; element (m, n) at
     * c + (n / P) * img_stride + m * ldc + n % P */
    float *c;
    int64_t ldc, P, img_stride;
    const float *bias_m, *bias_n;
    int64_t mb, nb, n_mt, n_nt;
    sdc_cpu *cpu;
    /* linear */
    const float *x;
    int64_t ldx;
    /* weights (linear B, conv A) */
    sdc_type wt;
    const uint8_t *w;
    size_t row_bytes;
    /* conv */
    const float *cx;
    int64_t C, H, W, Wo, HWo, img_in;
    int kh, kw, stride, pad;
    sdc_isa isa;
};

typedef struct __attribute__((aligned(64))) {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_cfg;

static AMX_FN void tiles_on(void) {
    tile_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) cfg.rows[i] = 16, cfg.colsb[i] = 64;
    _tile_loadconfig(&cfg);
}

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* 32 fp32 values (n valid, rest zero) to 32 bf16, in order. */
static AMX_FN inline void bf16x32(const float *src, int n, uint16_t *dst) {
    const __mmask16 m0 = n >= 16 ? 0xFFFF : (__mmask16)((1u << (n > 0 ? n : 0)) - 1);
    const __mmask16 m1 = n >= 32 ? 0xFFFF : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
    const __m512 lo = _mm512_maskz_loadu_ps(m0, src), hi = _mm512_maskz_loadu_ps(m1, src + 16);
    _mm512_storeu_si512((void *)dst, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

/* A layout from fp32 rows: row r (0..mm) of the block at src(r) or absent (zero) */
static AMX_FN void pack_a_rows(const float *const *rows, int64_t mm, int64_t kc, int64_t kcp, uint16_t *dst) {
    const int64_t nks = kcp / 32;
    for (int64_t r = 0; r < mm; r++) {
        uint16_t *d = dst + (r / 16) * nks * 512 + (r % 16) * 32;
        for (int64_t ks = 0; ks < nks; ks++, d += 512) {
            if (!rows[r]) memset(d, 0, 64);
            else bf16x32(rows[r] + ks * 32, (int)(kc - ks * 32), d);
        }
    }
}

/* One weight row's values [k0, k0+kc) as fp32 in tmp (zero past kc up to kcp); false: no row. */
static bool weight_seg(const amx_gemm *g, int64_t row, int64_t k0, int64_t kc, float *tmp) {
    const uint8_t *wr = g->w + (size_t)row * g->row_bytes;
    return sdc_gemm_dequant_seg(g->wt, wr, k0, kc, tmp, g->isa);
}

/* linear A: rows of x */
static AMX_FN void pack_a_x(const amx_gemm *g, int64_t m0, int64_t mm, int64_t k0, int64_t kc, int64_t kcp,
                            uint16_t *dst, float *tmp) {
    (void)tmp;
    const float *rows[MB_MAX];
    for (int64_t r = 0; r < mm; r++) rows[r] = m0 + r < g->M ? g->x + (m0 + r) * g->ldx + k0 : NULL;
    pack_a_rows(rows, mm, kc, kcp, dst);
}

/* conv A: weight rows, one at a time through tmp */
static AMX_FN void pack_a_w(const amx_gemm *g, int64_t m0, int64_t mm, int64_t k0, int64_t kc, int64_t kcp,
                            uint16_t *dst, float *tmp) {
    const int64_t nks = kcp / 32;
    for (int64_t r = 0; r < mm; r++) {
        uint16_t *d = dst + (r / 16) * nks * 512 + (r % 16) * 32;
        const bool have = m0 + r < g->M && weight_seg(g, m0 + r, k0, kc, tmp);
        for (int64_t ks = 0; ks < nks; ks++, d += 512) {
            if (!have) memset(d, 0, 64);
            else bf16x32(tmp + ks * 32, (int)(kc - ks * 32), d);
        }
    }
}

/* 16 bf16 rows of np value pairs (rows[j * 2 * np ..]) into the B layout dst[np][16][2]: each
 * output row (one pair index, 16 columns) is one 16-lane gather of 32-bit words. */
static AMX_FN void rows_to_pairs(const uint16_t *rows, int64_t np, uint16_t *dst) {
    const __m512i vidx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32((int)np));
    const int *r32 = (const int *)(const void *)rows;
    for (int64_t p = 0; p < np; p++)
        _mm512_store_si512((void *)(dst + p * 32), _mm512_i32gather_epi32(vidx, r32 + p, 4));
}

/* 16 values of an even and the next odd K index into one B layout row: [e0 o0 e1 o1 ...] bf16 */
static AMX_FN inline void store_pair_row(__m512 e, __m512 o, uint16_t *dst) {
    const __m512i perm = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                          21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i bf = (__m512i)_mm512_cvtne2ps_pbh(o, e); /* [e0..e15, o0..o15] */
    _mm512_store_si512((void *)dst, _mm512_permutexvar_epi16(perm, bf));
}

/* linear B: column n of B is weight row n; its bf16 value pairs are 32-bit words: the 16 rows
 * of a sliver are converted into rows[16][kcp], then each panel row (one pair index, 16
 * columns) is one 16-lane gather across them. */
static AMX_FN void pack_b_w(const amx_gemm *g, int64_t n0, int64_t nn, int64_t k0, int64_t kc, int64_t kcp,
                            uint16_t *dst, float *tmp) {
    uint16_t rows[16 * KC] __attribute__((aligned(64)));
    const int64_t np = kcp / 2;
    for (int64_t s = 0; s < nn / 16; s++) {
        for (int j = 0; j < 16; j++) {
            uint16_t *row = rows + j * kcp;
            const int64_t n = n0 + 16 * s + j;
            if (n >= g->N || !weight_seg(g, n, k0, kc, tmp)) {
                memset(row, 0, (size_t)kcp * 2);
                continue;
            }
            for (int64_t ks = 0; ks < kcp / 32; ks++) bf16x32(tmp + ks * 32, (int)(kc - ks * 32), row + ks * 32);
        }
        rows_to_pairs(rows, np, dst + s * np * 32);
    }
}

/* conv B: per sliver (16 output positions over the batch) each lane's input offset at tap
 * (0, 0) and, per tap (ky, kx), the lanes whose input pixel lies inside the image; then value
 * k = (c, ky, kx) of the 16 columns is one masked row load (stride 1, all lanes in one output
 * row) or one masked gather, walking (c, tap) incrementally. */
enum { TAPS_MAX = 64 };

static AMX_FN void pack_b_im2col(const amx_gemm *g, int64_t n0, int64_t nn, int64_t k0, int64_t kc, int64_t kcp,
                                 uint16_t *dst, float *tmp) {
    (void)tmp;
    (void)kc;
    const int khw = g->kh * g->kw;
    const int64_t HW = g->H * g->W;
    int32_t toff[TAPS_MAX];
    for (int t = 0; t < khw; t++) toff[t] = (int32_t)((t / g->kw) * g->W + t % g->kw);
    for (int64_t s = 0; s < nn / 16; s++) {
        int32_t lane[16] __attribute__((aligned(64)));
        int64_t iy0[16], ix0[16], img[16];
        __mmask16 valid = 0;
        for (int j = 0; j < 16; j++) {
            const int64_t n = n0 + 16 * s + j;
            lane[j] = 0;
            iy0[j] = ix0[j] = -((int64_t)1 << 40);
            img[j] = -1;
            if (n >= g->N) continue;
            valid |= (__mmask16)(1u << j);
            const int64_t oy = n % g->HWo / g->Wo, ox = n % g->Wo;
            img[j] = n / g->HWo;
            iy0[j] = oy * g->stride - g->pad;
            ix0[j] = ox * g->stride - g->pad;
            lane[j] = (int32_t)(img[j] * g->img_in + iy0[j] * g->W + ix0[j]);
        }
        __mmask16 tmask[TAPS_MAX];
        for (int t = 0; t < khw; t++) {
            const int ky = t / g->kw, kx = t % g->kw;
            __mmask16 m = 0;
            for (int j = 0; j < 16; j++) {
                const int64_t iy = iy0[j] + ky, ix = ix0[j] + kx;
                if (((valid >> j) & 1) && iy >= 0 && iy < g->H && ix >= 0 && ix < g->W) m |= (__mmask16)(1u << j);
            }
            tmask[t] = m;
        }
        /* all lanes one output row of one image at stride 1: input offsets lane[0] + j */
        const int one_row = valid == 0xFFFF && g->stride == 1 && img[0] == img[15] && iy0[0] == iy0[15];
        const __m512i vlane = _mm512_load_si512((const void *)lane);
        int64_t c = k0 / khw;
        int t = (int)(k0 % khw);
        uint16_t *d = dst + s * (kcp / 2) * 32;
        for (int64_t p = 0; p < kcp / 2; p++, d += 32) {
            __m512 v[2];
            for (int h = 0; h < 2; h++) {
                const int64_t k = k0 + 2 * p + h;
                if (k >= g->K) {
                    v[h] = _mm512_setzero_ps();
                    continue;
                }
                const int64_t off = c * HW + toff[t];
                if (one_row) v[h] = _mm512_maskz_loadu_ps(tmask[t], g->cx + (lane[0] + off));
                else
                    v[h] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), tmask[t],
                                                    _mm512_add_epi32(vlane, _mm512_set1_epi32((int32_t)off)), g->cx, 4);
                if (++t == khw) t = 0, c++;
            }
            store_pair_row(v[0], v[1], d);
        }
    }
}

/* ---- the tile loop ------------------------------------------------------------------------ */

/* C tile (rows m.., columns n..) pointer when the 16x16 block is whole and contiguous in one
 * image, else NULL (the caller goes through a buffer). */
static float *c_tile(const amx_gemm *g, int64_t m, int64_t n) {
    if (m + 16 > g->M || n + 16 > g->N) return NULL;
    if (n / g->P != (n + 15) / g->P) return NULL;
    return g->c + (n / g->P) * g->img_stride + m * g->ldc + n % g->P;
}

static float *c_elem(const amx_gemm *g, int64_t m, int64_t n) {
    return g->c + (n / g->P) * g->img_stride + m * g->ldc + n % g->P;
}

static void c_to_buf(const amx_gemm *g, int64_t m, int64_t n, float *buf) {
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++)
            buf[i * 16 + j] = m + i < g->M && n + j < g->N ? *c_elem(g, m + i, n + j) : 0.0f;
}

static void buf_to_c(const amx_gemm *g, int64_t m, int64_t n, const float *buf) {
    for (int i = 0; i < 16 && m + i < g->M; i++)
        for (int j = 0; j < 16 && n + j < g->N; j++) *c_elem(g, m + i, n + j) = buf[i * 16 + j];
}

static void bias_n_buf(const amx_gemm *g, int64_t n, float *buf) {
    for (int j = 0; j < 16; j++) buf[j] = n + j < g->N ? g->bias_n[n + j] : 0.0f;
}

/* rows m..m+31 of bias_m, each repeated 16 times: bm[i][0..15] */
static void bias_m_block(const amx_gemm *g, int64_t m, float *bm) {
    for (int i = 0; i < 32; i++) {
        const float v = m + i < g->M ? g->bias_m[m + i] : 0.0f;
        for (int j = 0; j < 16; j++) bm[i * 16 + j] = v;
    }
}

/* First chunk: the accumulators start at the bias (bias_n: one row read 16 times, stride 0;
 * bias_m: a 16x16 block of row values, built per 32-row block) or zero; later chunks reload
 * them from C. Stores go straight to C where the tile is whole. */
#define TILE_IN(t, m, n, bm)                                                    \
    do {                                                                        \
        float *p_ = first ? NULL : c_tile(g, m, n);                             \
        if (first && g->bias_n && n + 16 <= g->N) _tile_loadd(t, g->bias_n + (n), 0); \
        else if (first && g->bias_n) { bias_n_buf(g, n, buf); _tile_loadd(t, buf, 0); } \
        else if (first && g->bias_m) _tile_loadd(t, bm, 64);                    \
        else if (first) _tile_zero(t);                                          \
        else if (p_) _tile_loadd(t, p_, g->ldc * 4);                            \
        else { c_to_buf(g, m, n, buf); _tile_loadd(t, buf, 64); }               \
    } while (0)

#define TILE_OUT(t, m, n)                                                       \
    do {                                                                        \
        float *p_ = c_tile(g, m, n);                                            \
        if (p_) _tile_stored(t, p_, g->ldc * 4);                                \
        else { _tile_stored(t, buf, 64); buf_to_c(g, m, n, buf); }              \
    } while (0)

static AMX_FN void amx_block(const amx_gemm *g, const uint16_t *pa, const uint16_t *pb, int64_t m0, int64_t mm,
                             int64_t n0, int64_t nn, int64_t kcp, int first, float *buf) {
    const int64_t nks = kcp / 32;
    float bm[32 * 16] __attribute__((aligned(64)));
    for (int64_t rb = 0; rb < mm / 32; rb++) {
        if (first && g->bias_m) bias_m_block(g, m0 + rb * 32, bm);
        for (int64_t cb = 0; cb < nn / 32; cb++) {
            const int64_t m = m0 + rb * 32, n = n0 + cb * 32;
            TILE_IN(0, m, n, bm);
            TILE_IN(1, m, n + 16, bm);
            TILE_IN(2, m + 16, n, bm + 256);
            TILE_IN(3, m + 16, n + 16, bm + 256);
            const uint16_t *a0 = pa + (rb * 2) * nks * 512, *a1 = a0 + nks * 512;
            const uint16_t *b0 = pb + (cb * 2) * (kcp / 2) * 32, *b1 = b0 + (kcp / 2) * 32;
            for (int64_t ks = 0; ks < nks; ks++) {
                _tile_loadd(4, a0 + ks * 512, 64);
                _tile_loadd(5, a1 + ks * 512, 64);
                _tile_loadd(6, b0 + ks * 512, 64);
                _tile_loadd(7, b1 + ks * 512, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            TILE_OUT(0, m, n);
            TILE_OUT(1, m, n + 16);
            TILE_OUT(2, m + 16, n);
            TILE_OUT(3, m + 16, n + 16);
        }
    }
}

static AMX_FN void amx_task(void *vc, int64_t t, int thread) {
    const amx_gemm *g = vc;
    const int64_t ti = t / g->n_nt, tj = t % g->n_nt;
    const int64_t m0 = ti * g->mb, n0 = tj * g->nb;
    const int64_t mm = ((g->M - m0 < g->mb ? g->M - m0 : g->mb) + 31) / 32 * 32;
    const int64_t nn = ((g->N - n0 < g->nb ? g->N - n0 : g->nb) + 31) / 32 * 32;
    const size_t a_bytes = (size_t)(mm * KC * 2), b_bytes = (size_t)(nn * KC * 2);
    uint8_t *s = sdc_cpu_scratch(g->cpu, thread, a_bytes + b_bytes + KC * 4 + 1024 + 64);
    if (!s) return; /* sized before the loop by amx_gemm_run: cannot fail here */
    uint16_t *pa = (uint16_t *)(void *)s, *pb = (uint16_t *)(void *)(s + a_bytes);
    float *tmp = (float *)(void *)(s + a_bytes + b_bytes), *buf = tmp + KC;
    tiles_on();
    for (int64_t k0 = 0; k0 < g->K; k0 += KC) {
        const int64_t kc = g->K - k0 < KC ? g->K - k0 : KC, kcp = (kc + 31) / 32 * 32;
        g->pack_a(g, m0, mm, k0, kc, kcp, pa, tmp);
        g->pack_b(g, n0, nn, k0, kc, kcp, pb, tmp);
        amx_block(g, pa, pb, m0, mm, n0, nn, kcp, k0 == 0, buf);
    }
    _tile_release();
}

static sdc_status amx_gemm_run(sdc_cpu *cpu, amx_gemm *g) {
    g->cpu = cpu;
    g->isa = cpu->isa;
    const int64_t want = 2 * (int64_t)cpu->n_threads;
    g->mb = g->M >= MB_MAX ? MB_MAX : (g->M + 31) / 32 * 32;
    g->nb = NB_MAX;
    while (g->nb > 32 && cdiv(g->M, g->mb) * cdiv(g->N, g->nb) < want) g->nb /= 2;
    while (g->mb > 32 && cdiv(g->M, g->mb) * cdiv(g->N, g->nb) < want) g->mb = (g->mb / 2 + 31) / 32 * 32;
    g->n_mt = cdiv(g->M, g->mb);
    g->n_nt = cdiv(g->N, g->nb);
    const size_t need = (size_t)((g->mb + g->nb) * KC * 2) + KC * 4 + 1024 + 64;
    for (int t = 0; t < cpu->n_threads; t++)
        if (!sdc_cpu_scratch(cpu, t, need)) return SDC_E_NOMEM;
    sdc_pool_for(cpu->pool, g->n_mt * g->n_nt, amx_task, g);
    return SDC_OK;
}

/* ---- attention ------------------------------------------------------------------------------
 * Flash style, as attention.c, with both products on tiles: per (batch, head) K and V are
 * packed once into the workspace as B operands (K: [keys/16][dp/2][16][2], pairs over the head
 * dimension, one column per key; V: [keys/32][dv/16][16 key pairs][16][2]); a task takes QA
 * queries of one head (Q scaled by scale*log2(e), then rounded, as an A operand) and walks the
 * keys in blocks of up to BKA: S = Q.K^T per 16 queries into fp32, the online softmax in base 2
 * (fp32: running max, sum, O rescale), P rounded to bf16 as an A operand, O += P.V on tiles.
 * dp = d rounded up to 32, dv = d rounded up to 16; padded keys score -inf. */
enum { QA = 128, BKA = 128 };

typedef struct attn_amx {
    sdc_cpu *cpu;
    int64_t B, H, Nq, Nk, d, dp, dv, nkp;
    const float *q, *k, *v;
    float *out;
    int64_t ldq, ldk, ldv, ldo;
    float qscale;
    uint16_t *kp, *vp; /* per (b, h): nkp * dp and nkp * dv values */
    int64_t nqc;
} attn_amx;

/* 2^x for x <= 0 (and -inf): 2^f by e^(f ln 2) Taylor (degree 7) for f in [-1/2, 1/2], then
 * scaled by 2^n with vscalefps (underflows to 0). */
static AMX_FN inline __m512 exp2_512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-150.0f));
    const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 r = _mm512_mul_ps(_mm512_sub_ps(x, n), _mm512_set1_ps(0.693147180559945309f));
    __m512 p = _mm512_set1_ps(1.98412698412698412698e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.38888888888888888889e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.33333333333333333333e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.16666666666666666667e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.66666666666666666667e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* one (b, h, 32-key step): two K slivers and the V step */
static AMX_FN void attn_pack_task(void *vc, int64_t t, int thread) {
    (void)thread;
    const attn_amx *a = vc;
    const int64_t nst = a->nkp / 32, bh = t / nst, j0 = (t % nst) * 32;
    const int64_t b = bh / a->H, h = bh % a->H, dp = a->dp, dv = a->dv;
    const float *kb = a->k + b * a->Nk * a->ldk + h * a->d, *vb = a->v + b * a->Nk * a->ldv + h * a->d;
    uint16_t rows[16 * 1024] __attribute__((aligned(64))); /* 16 key rows of dp <= 1024 */
    for (int sl = 0; sl < 2; sl++) {
        for (int j = 0; j < 16; j++) {
            const int64_t key = j0 + 16 * sl + j;
            uint16_t *row = rows + j * dp;
            if (key >= a->Nk) { memset(row, 0, (size_t)dp * 2); continue; }
            for (int64_t x = 0; x < dp; x += 32) bf16x32(kb + key * a->ldk + x, (int)(a->d - x), row + x);
        }
        rows_to_pairs(rows, dp / 2, a->kp + bh * a->nkp * dp + ((j0 / 16) + sl) * dp * 16);
    }
    uint16_t *vdst = a->vp + bh * a->nkp * dv + (j0 / 32) * dv * 32;
    for (int64_t ct = 0; ct < dv / 16; ct++) {
        const int64_t x0 = ct * 16, nx = a->d - x0 < 16 ? a->d - x0 : 16;
        const __mmask16 m = (__mmask16)((1u << nx) - 1);
        for (int pr = 0; pr < 16; pr++) {
            const int64_t key = j0 + 2 * pr;
            const __m512 e = key < a->Nk ? _mm512_maskz_loadu_ps(m, vb + key * a->ldv + x0) : _mm512_setzero_ps();
            const __m512 o = key + 1 < a->Nk ? _mm512_maskz_loadu_ps(m, vb + (key + 1) * a->ldv + x0) : _mm512_setzero_ps();
            store_pair_row(e, o, vdst + ct * 512 + pr * 32);
        }
    }
}

static AMX_FN void attn_task_amx(void *vc, int64_t t, int thread) {
    const attn_amx *a = vc;
    const int64_t bh = t / a->nqc, i0 = (t % a->nqc) * QA, b = bh / a->H, h = bh % a->H;
    const int64_t nq = a->Nq - i0 < QA ? a->Nq - i0 : QA, nqp = (nq + 15) / 16 * 16;
    const int64_t dp = a->dp, dv = a->dv, nks = dp / 32;
    uint8_t *s = sdc_cpu_scratch(a->cpu, thread, 0); /* sized by the caller */
    uint16_t *qa = (uint16_t *)(void *)s;                          /* [QA/16][nks][16][32] */
    float *o = (float *)(void *)(s + (size_t)QA * dp * 2);         /* [QA][dv] */
    float *sc = o + QA * dv;                                       /* [16][BKA] */
    uint16_t *pa = (uint16_t *)(void *)(sc + 16 * BKA);            /* [BKA/32][16][32] */
    float *tmp = (float *)(void *)(pa + 16 * BKA);                 /* [16][64] */
    float m[QA], l[QA];
    const float *qb = a->q + (b * a->Nq + i0) * a->ldq + h * a->d;
    float qrow[1024] __attribute__((aligned(64)));
    for (int64_t r = 0; r < nqp; r++) {
        uint16_t *d0 = qa + (r / 16) * nks * 512 + (r % 16) * 32;
        if (r < nq) {
            for (int64_t x = 0; x < a->d; x++) qrow[x] = qb[r * a->ldq + x] * a->qscale;
        }
        for (int64_t ks = 0; ks < nks; ks++) {
            if (r < nq) bf16x32(qrow + ks * 32, (int)(a->d - ks * 32), d0 + ks * 512);
            else memset(d0 + ks * 512, 0, 64);
        }
        m[r] = -INFINITY;
        l[r] = 0;
    }
    memset(o, 0, (size_t)(QA * dv) * sizeof(float));
    const uint16_t *kp = a->kp + bh * a->nkp * dp, *vp = a->vp + bh * a->nkp * dv;
    tiles_on();
    for (int64_t kb = 0; kb < a->Nk; kb += BKA) {
        const int64_t nk = a->Nk - kb < BKA ? a->Nk - kb : BKA, nkp = (nk + 31) / 32 * 32;
        for (int64_t rb = 0; rb < nqp / 16; rb++) {
            const uint16_t *qt = qa + rb * nks * 512;
            /* S[16][nkp] = Q_rb . K_blk^T, four 16-key tiles at a time */
            for (int64_t c0 = 0; c0 < nkp / 16; c0 += 4) {
                const int nt = nkp / 16 - c0 < 4 ? (int)(nkp / 16 - c0) : 4;
                _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
                const uint16_t *k0 = kp + (kb / 16 + c0) * dp * 16;
                for (int64_t ks = 0; ks < nks; ks++) {
                    _tile_loadd(4, qt + ks * 512, 64);
                    _tile_loadd(6, k0 + ks * 512, 64);
                    _tile_dpbf16ps(0, 4, 6);
                    if (nt > 1) { _tile_loadd(7, k0 + dp * 16 + ks * 512, 64); _tile_dpbf16ps(1, 4, 7); }
                    if (nt > 2) { _tile_loadd(6, k0 + 2 * dp * 16 + ks * 512, 64); _tile_dpbf16ps(2, 4, 6); }
                    if (nt > 3) { _tile_loadd(7, k0 + 3 * dp * 16 + ks * 512, 64); _tile_dpbf16ps(3, 4, 7); }
                }
                float *sp = sc + c0 * 16;
                _tile_stored(0, sp, BKA * 4);
                if (nt > 1) _tile_stored(1, sp + 16, BKA * 4);
                if (nt > 2) _tile_stored(2, sp + 32, BKA * 4);
                if (nt > 3) _tile_stored(3, sp + 48, BKA * 4);
            }
            /* online softmax over the block, rows of this 16-query block */
            const __mmask16 tail = nk % 16 ? (__mmask16)((1u << (nk % 16)) - 1) : 0xFFFF;
            for (int i = 0; i < 16; i++) {
                float *srow = sc + i * BKA;
                const int64_t r = rb * 16 + i;
                __m512 mx = _mm512_set1_ps(-INFINITY);
                for (int64_t j = 0; j < nkp; j += 16) {
                    const __mmask16 mk = j + 16 <= nk ? 0xFFFF : j < nk ? tail : 0;
                    mx = _mm512_mask_max_ps(mx, mk, mx, _mm512_loadu_ps(srow + j));
                }
                const float bmax = _mm512_reduce_max_ps(mx);
                const float mnew = bmax > m[r] ? bmax : m[r];
                const float alpha = m[r] == -INFINITY ? 0.0f : exp2f(m[r] - mnew);
                const __m512 vm = _mm512_set1_ps(mnew);
                __m512 sum = _mm512_setzero_ps();
                uint16_t *prow = pa + i * 32;
                for (int64_t j = 0; j < nkp; j += 32) {
                    const __mmask16 m0 = j + 16 <= nk ? 0xFFFF : j < nk ? tail : 0;
                    const __mmask16 m1 = j + 32 <= nk ? 0xFFFF : j + 16 < nk ? tail : 0;
                    const __m512 p0 = _mm512_maskz_mov_ps(m0, exp2_512(_mm512_sub_ps(_mm512_loadu_ps(srow + j), vm)));
                    const __m512 p1 = _mm512_maskz_mov_ps(m1, exp2_512(_mm512_sub_ps(_mm512_loadu_ps(srow + j + 16), vm)));
                    sum = _mm512_add_ps(sum, _mm512_add_ps(p0, p1));
                    _mm512_store_si512((void *)(prow + (j / 32) * 512), (__m512i)_mm512_cvtne2ps_pbh(p1, p0));
                }
                l[r] = l[r] * alpha + _mm512_reduce_add_ps(sum);
                m[r] = mnew;
                if (alpha != 1.0f) {
                    float *orow = o + r * dv;
                    const __m512 va = _mm512_set1_ps(alpha);
                    for (int64_t x = 0; x < dv; x += 16) _mm512_store_ps(orow + x, _mm512_mul_ps(_mm512_load_ps(orow + x), va));
                }
            }
            /* O_rb += P . V_blk, four 16-wide column tiles at a time */
            for (int64_t c0 = 0; c0 < dv / 16; c0 += 4) {
                const int nt = dv / 16 - c0 < 4 ? (int)(dv / 16 - c0) : 4;
                _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
                for (int64_t ks = 0; ks < nkp / 32; ks++) {
                    const uint16_t *vk = vp + ((kb / 32) + ks) * dv * 32 + c0 * 512;
                    _tile_loadd(4, pa + ks * 512, 64);
                    _tile_loadd(6, vk, 64);
                    _tile_dpbf16ps(0, 4, 6);
                    if (nt > 1) { _tile_loadd(7, vk + 512, 64); _tile_dpbf16ps(1, 4, 7); }
                    if (nt > 2) { _tile_loadd(6, vk + 1024, 64); _tile_dpbf16ps(2, 4, 6); }
                    if (nt > 3) { _tile_loadd(7, vk + 1536, 64); _tile_dpbf16ps(3, 4, 7); }
                }
                _tile_stored(0, tmp, 256);
                if (nt > 1) _tile_stored(1, tmp + 16, 256);
                if (nt > 2) _tile_stored(2, tmp + 32, 256);
                if (nt > 3) _tile_stored(3, tmp + 48, 256);
                for (int i = 0; i < 16; i++) {
                    float *orow = o + (rb * 16 + i) * dv + c0 * 16;
                    for (int c = 0; c < nt; c++)
                        _mm512_store_ps(orow + c * 16, _mm512_add_ps(_mm512_load_ps(orow + c * 16),
                                                                     _mm512_load_ps(tmp + i * 64 + c * 16)));
                }
            }
        }
    }
    _tile_release();
    float *ob = a->out + (b * a->Nq + i0) * a->ldo + h * a->d;
    for (int64_t r = 0; r < nq; r++) {
        const float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;
        for (int64_t x = 0; x < a->d; x++) ob[r * a->ldo + x] = o[r * dv + x] * inv;
    }
}
#endif

bool sdc_cpu_bf16_active(const sdc_cpu *cpu) {
#if AMX_OK
    return cpu->bf16 && cpu->isa == SDC_ISA_AVX512 && sdc_cpu_detect_amx();
#else
    (void)cpu;
    return false;
#endif
}

sdc_status sdc_cpu_linear_bf16(sdc_cpu *cpu, int64_t M, int64_t N, int64_t K, const float *x, int64_t ldx,
                               sdc_type wt, const void *w, size_t row_bytes, const float *bias, float *y,
                               int64_t ldy) {
#if AMX_OK
    amx_gemm g = {
        .M = M, .N = N, .K = K, .pack_a = pack_a_x, .pack_b = pack_b_w,
        .c = y, .ldc = ldy, .P = N, .img_stride = 0, .bias_n = bias,
        .x = x, .ldx = ldx, .wt = wt, .w = w, .row_bytes = row_bytes,
    };
    return amx_gemm_run(cpu, &g);
#else
    (void)cpu, (void)M, (void)N, (void)K, (void)x, (void)ldx, (void)wt, (void)w, (void)row_bytes, (void)bias, (void)y,
        (void)ldy;
    return SDC_E_UNSUPPORTED;
#endif
}

sdc_status sdc_cpu_conv2d_bf16(sdc_cpu *cpu, int64_t B, int64_t C, int64_t H, int64_t W, const float *x,
                               int64_t O, int kh, int kw, int stride, int pad, sdc_type wt, const void *w,
                               size_t row_bytes, const float *bias, float *y) {
#if AMX_OK
    const int64_t Ho = (H + 2 * pad - kh) / stride + 1, Wo = (W + 2 * pad - kw) / stride + 1;
    /* 32-bit gather indices; per-tap masks for at most TAPS_MAX taps: else the fp32 path */
    if (B * C * H * W > INT32_MAX || kh * kw > TAPS_MAX) return SDC_E_UNSUPPORTED;
    amx_gemm g = {
        .M = O, .N = B * Ho * Wo, .K = C * kh * kw, .pack_a = pack_a_w, .pack_b = pack_b_im2col,
        .c = y, .ldc = Ho * Wo, .P = Ho * Wo, .img_stride = O * Ho * Wo, .bias_m = bias,
        .wt = wt, .w = w, .row_bytes = row_bytes,
        .cx = x, .C = C, .H = H, .W = W, .Wo = Wo, .HWo = Ho * Wo, .img_in = C * H * W,
        .kh = kh, .kw = kw, .stride = stride, .pad = pad,
    };
    return amx_gemm_run(cpu, &g);
#else
    (void)cpu, (void)B, (void)C, (void)H, (void)W, (void)x, (void)O, (void)kh, (void)kw, (void)stride, (void)pad,
        (void)wt, (void)w, (void)row_bytes, (void)bias, (void)y;
    return SDC_E_UNSUPPORTED;
#endif
}

sdc_status sdc_cpu_attention_bf16(sdc_cpu *cpu, int64_t B, int64_t H, int64_t Nq, int64_t Nk, int64_t d,
                                  const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v,
                                  int64_t ldv, float *out, int64_t ldo, float scale) {
#if AMX_OK
    if (d > 1024 || Nk < 1 || Nq < 1 || B < 1 || H < 1) return SDC_E_UNSUPPORTED;
    attn_amx a = {
        .cpu = cpu, .B = B, .H = H, .Nq = Nq, .Nk = Nk, .d = d, .dp = (d + 31) / 32 * 32, .dv = (d + 15) / 16 * 16,
        .nkp = (Nk + 31) / 32 * 32, .q = q, .k = k, .v = v, .out = out, .ldq = ldq, .ldk = ldk, .ldv = ldv,
        .ldo = ldo, .qscale = (float)((double)scale * 1.44269504088896340736),
    };
    const uint64_t kv = (uint64_t)(B * H) * (uint64_t)a.nkp * (uint64_t)(a.dp + a.dv) * 2;
    if (kv > (uint64_t)SIZE_MAX / 2) return SDC_E_NOMEM;
    uint8_t *ws = sdc_cpu_workspace(cpu, (size_t)kv + 64);
    if (!ws) return SDC_E_NOMEM;
    a.kp = (uint16_t *)(void *)ws;
    a.vp = a.kp + (size_t)(B * H) * (size_t)a.nkp * (size_t)a.dp;
    a.nqc = cdiv(Nq, QA);
    const size_t need = (size_t)QA * a.dp * 2 + (size_t)QA * a.dv * 4 + 16 * BKA * 4 + 16 * BKA * 2 + 16 * 64 * 4 + 64;
    for (int t = 0; t < cpu->n_threads; t++)
        if (!sdc_cpu_scratch(cpu, t, need)) return SDC_E_NOMEM;
    sdc_pool_for(cpu->pool, B * H * (a.nkp / 32), attn_pack_task, &a);
    sdc_pool_for(cpu->pool, B * H * a.nqc, attn_task_amx, &a);
    return SDC_OK;
#else
    (void)cpu, (void)B, (void)H, (void)Nq, (void)Nk, (void)d, (void)q, (void)ldq, (void)k, (void)ldk, (void)v,
        (void)ldv, (void)out, (void)ldo, (void)scale;
    return SDC_E_UNSUPPORTED;
#endif
}
