/* test_attention.c - sdc_cpu_attention against an fp64 reference at SD 1.5 shapes and odd
 * ones, AVX2 vs the scalar twin, and 1/2/3 threads bit-identical. */
#include <math.h>
#include <stdio.h>

#include "cpu/attention.h"
#include "ops_util.h"

/* Outputs are convex combinations of v ~ N(0,1) (|out| <~ 4): fp32 scores and the fp32
 * P.V sum over up to 4096 keys give ~1e-6 absolute error (observed <= 2.2e-6). */
#define ATTN_ATOL 5e-6
#define ATTN_RTOL 0
/* Peaky softmax (q scaled by qsd): a score's rounding error grows with |score| ~ qsd, and
 * e^score turns it into relative error of the weights: allow 1e-6 per unit of qsd. */
#define ATTN_ATOL_PER_QSD 1e-6
/* AVX2 vs scalar twin: two fp32 implementations each within the fp64 tolerance: 2x it. */

typedef struct shape {
    int64_t B, H, Nq, Nk, d;
    bool causal;
    int fused;      /* 1: q, k, v are column slices of one [B, N, 3*H*d] buffer (Nq == Nk) */
    double qsd;     /* std of q (large => peaky softmax) */
    const char *name;
} shape;

typedef struct bufs {
    float *qkv, *kv, *out;
    const float *q, *k, *v;
    int64_t ldq, ldk, ldv, ldo;
} bufs;

static void make_bufs(const shape *s, bufs *b, uint64_t seed) {
    tu_rng r = {seed};
    int64_t hd = s->H * s->d;
    memset(b, 0, sizeof *b);
    if (s->fused) {
        b->qkv = ops_alloc(s->B * s->Nq * 3 * hd);
        ops_fill_normal(&r, b->qkv, s->B * s->Nq * 3 * hd, 0, 1);
        b->q = b->qkv; b->k = b->qkv + hd; b->v = b->qkv + 2 * hd;
        b->ldq = b->ldk = b->ldv = 3 * hd;
        /* scale q's columns by qsd */
        for (int64_t i = 0; i < s->B * s->Nq; i++)
            for (int64_t j = 0; j < hd; j++) b->qkv[i * 3 * hd + j] *= (float)s->qsd;
    } else {
        b->qkv = ops_alloc(s->B * s->Nq * hd + 3); /* odd padding: q rows padded by 3 */
        b->ldq = hd;
        ops_fill_normal(&r, b->qkv, s->B * s->Nq * hd, 0, s->qsd);
        b->q = b->qkv;
        b->kv = ops_alloc(s->B * s->Nk * (2 * hd + 5));
        ops_fill_normal(&r, b->kv, s->B * s->Nk * (2 * hd + 5), 0, 1);
        b->k = b->kv; b->v = b->kv + hd + 5;  /* interleaved [k | 5 pad | v] rows */
        b->ldk = b->ldv = 2 * hd + 5;
    }
    b->ldo = hd + 1;
    b->out = ops_alloc(s->B * s->Nq * b->ldo);
    memset(b->out, 0, (size_t)(s->B * s->Nq * b->ldo) * sizeof(float));
}

static void free_bufs(bufs *b) { free(b->qkv); free(b->kv); free(b->out); }

static sdc_status run(sdc_cpu *cpu, const shape *s, bufs *b) {
    return sdc_cpu_attention(cpu, s->B, s->H, s->Nq, s->Nk, s->d, b->q, b->ldq, b->k, b->ldk, b->v, b->ldv,
                             b->out, b->ldo, (float)(1.0 / sqrt((double)s->d)), s->causal);
}

/* fp64 reference for one (b, h, i) row. */
static void ref_row(const shape *s, const bufs *b, int64_t bi, int64_t h, int64_t i, double *sc, double *o) {
    const float *qr = b->q + (bi * s->Nq + i) * b->ldq + h * s->d;
    double scale = 1.0 / sqrt((double)s->d), mx = -INFINITY;
    for (int64_t j = 0; j < s->Nk; j++) {
        const float *kr = b->k + (bi * s->Nk + j) * b->ldk + h * s->d;
        double acc = 0;
        for (int64_t c = 0; c < s->d; c++) acc += (double)qr[c] * kr[c];
        sc[j] = (s->causal && j > i) ? -INFINITY : acc * scale;
        if (sc[j] > mx) mx = sc[j];
    }
    double sum = 0;
    for (int64_t j = 0; j < s->Nk; j++) { sc[j] = sc[j] == -INFINITY ? 0 : exp(sc[j] - mx); sum += sc[j]; }
    for (int64_t c = 0; c < s->d; c++) o[c] = 0;
    for (int64_t j = 0; j < s->Nk; j++) {
        const float *vr = b->v + (bi * s->Nk + j) * b->ldv + h * s->d;
        for (int64_t c = 0; c < s->d; c++) o[c] += sc[j] * vr[c];
    }
    for (int64_t c = 0; c < s->d; c++) o[c] = sum > 0 ? o[c] / sum : 0;
}

/* Compares `out` with fp64 on up to max_rows query rows per (b, h) (all rows when 0). */
static double atol_for(const shape *s) {
    return s->qsd * ATTN_ATOL_PER_QSD > ATTN_ATOL ? s->qsd * ATTN_ATOL_PER_QSD : ATTN_ATOL;
}

static void check_ref(const shape *s, const bufs *b, int64_t max_rows, const char *label) {
    int64_t rows = (max_rows && max_rows < s->Nq) ? max_rows : s->Nq;
    int64_t n = s->B * s->H * rows * s->d;
    float *got = ops_alloc(n), *want = ops_alloc(n);
    double *sc = malloc((size_t)s->Nk * sizeof *sc), *o = malloc((size_t)s->d * sizeof *o);
    int64_t at = 0;
    for (int64_t bi = 0; bi < s->B; bi++)
        for (int64_t h = 0; h < s->H; h++)
            for (int64_t ri = 0; ri < rows; ri++) {
                /* spread sampled rows over the range, always including the first and last */
                int64_t i = rows == s->Nq ? ri : (rows > 1 ? ri * (s->Nq - 1) / (rows - 1) : 0);
                ref_row(s, b, bi, h, i, sc, o);
                const float *gr = b->out + (bi * s->Nq + i) * b->ldo + h * s->d;
                for (int64_t c = 0; c < s->d; c++, at++) { got[at] = gr[c]; want[at] = (float)o[c]; }
            }
    char lab[160];
    snprintf(lab, sizeof lab, "%s vs fp64", label);
    CHECK_NEAR(got, want, n, atol_for(s), ATTN_RTOL, lab);
    free(got); free(want); free(sc); free(o);
}

static float *copy_out(const shape *s, const bufs *b) {
    int64_t n = s->B * s->Nq * b->ldo;
    float *c = ops_alloc(n);
    memcpy(c, b->out, (size_t)n * sizeof *c);
    return c;
}

static sdc_cpu *g_avx2; /* set where the SIMD cpu runs AVX-512: its AVX2 counterpart */

static void test_shape(const shape *s, sdc_cpu *simd, sdc_cpu *scalar, int64_t ref_rows, int twin) {
    bufs b;
    make_bufs(s, &b, 1234 + (uint64_t)s->Nq * 7 + (uint64_t)s->d);
    char lab[160];
    CHECK(run(simd, s, &b) == SDC_OK);
    snprintf(lab, sizeof lab, "%s [%s]", s->name, sdc_isa_name(simd->isa));
    check_ref(s, &b, ref_rows, lab);
    if (g_avx2) { /* the AVX-512 tiles run the AVX2 tiles' fma chains: same bits */
        float *fast = copy_out(s, &b);
        CHECK(run(g_avx2, s, &b) == SDC_OK);
        snprintf(lab, sizeof lab, "%s avx512 vs avx2", s->name);
        CHECK_SAME(fast, b.out, s->B * s->Nq * b.ldo, lab);
        memcpy(b.out, fast, (size_t)(s->B * s->Nq * b.ldo) * sizeof *fast);
        free(fast);
    }
    if (twin && simd->isa != SDC_ISA_SCALAR) {
        float *fast = copy_out(s, &b);
        CHECK(run(scalar, s, &b) == SDC_OK);
        snprintf(lab, sizeof lab, "%s [scalar]", s->name);
        check_ref(s, &b, ref_rows, lab);
        snprintf(lab, sizeof lab, "%s avx2 vs scalar", s->name);
        CHECK_NEAR(fast, b.out, s->B * s->Nq * b.ldo, 2 * atol_for(s), 0, lab);
        free(fast);
    }
    free_bufs(&b);
}

static void test_threads(const shape *s, sdc_isa isa) {
    bufs b;
    make_bufs(s, &b, 99);
    float *res[3];
    for (int t = 1; t <= 3; t++) {
        sdc_cpu *c = ops_cpu(t, isa);
        memset(b.out, 0, (size_t)(s->B * s->Nq * b.ldo) * sizeof(float));
        CHECK(run(c, s, &b) == SDC_OK);
        res[t - 1] = copy_out(s, &b);
        sdc_cpu_free(c);
    }
    char lab[160];
    snprintf(lab, sizeof lab, "%s [%s] 1 vs 2 threads", s->name, sdc_isa_name(isa));
    CHECK_SAME(res[0], res[1], s->B * s->Nq * b.ldo, lab);
    snprintf(lab, sizeof lab, "%s [%s] 1 vs 3 threads", s->name, sdc_isa_name(isa));
    CHECK_SAME(res[0], res[2], s->B * s->Nq * b.ldo, lab);
    for (int t = 0; t < 3; t++) free(res[t]);
    free_bufs(&b);
}

static void test_invalid(sdc_cpu *cpu) {
    float q[64] = {0}, out[64];
    CHECK(sdc_cpu_attention(NULL, 1, 1, 2, 2, 4, q, 4, q, 4, q, 4, out, 4, 0.5f, false) == SDC_E_INVALID);
    CHECK(sdc_cpu_attention(cpu, 1, 1, 2, 2, 4, NULL, 4, q, 4, q, 4, out, 4, 0.5f, false) == SDC_E_INVALID);
    CHECK(sdc_cpu_attention(cpu, 1, 1, 2, 2, 0, q, 4, q, 4, q, 4, out, 4, 0.5f, false) == SDC_E_INVALID);
    CHECK(sdc_cpu_attention(cpu, 1, 2, 2, 2, 4, q, 4, q, 8, q, 8, out, 8, 0.5f, false) == SDC_E_INVALID); /* ldq < H*d */
    CHECK(sdc_cpu_attention(cpu, -1, 1, 2, 2, 4, q, 4, q, 4, q, 4, out, 4, 0.5f, false) == SDC_E_INVALID);
    CHECK(sdc_cpu_attention(cpu, 1, 1, 2, 2, 4, q, 4, q, 4, q, 4, out, 4, NAN, false) == SDC_E_INVALID);
    CHECK(sdc_cpu_attention(cpu, 0, 1, 2, 2, 4, q, 4, q, 4, q, 4, out, 4, 0.5f, false) == SDC_OK);
    /* no keys: zeros */
    for (int i = 0; i < 8; i++) out[i] = 1;
    CHECK(sdc_cpu_attention(cpu, 1, 1, 2, 0, 4, q, 4, q, 4, q, 4, out, 4, 0.5f, false) == SDC_OK);
    int zero = 1;
    for (int i = 0; i < 8; i++) zero &= out[i] == 0;
    CHECK(zero);
}

int main(void) {
    sdc_cpu *simd = ops_cpu(0, SDC_ISA_AVX512);
    sdc_cpu *scalar = ops_cpu(0, SDC_ISA_SCALAR);
    printf("isa: %s, %d threads, full sizes: %d\n", sdc_isa_name(simd->isa), simd->n_threads, OPS_FULL);
    test_invalid(simd);
    if (simd->isa > SDC_ISA_AVX2) g_avx2 = ops_cpu(0, SDC_ISA_AVX2);

    int64_t big = OPS_FULL ? 4096 : 512, mid = OPS_FULL ? 1024 : 256;
    /* SD 1.5 shapes (B = 2: a CFG batch), fp64 on sampled rows for the big ones. */
    shape sd[] = {
        {2, 8, big, big, 40, false, 1, 1.0, "self 64x64 d40 (fused qkv)"},
        {2, 8, big, 77, 40, false, 0, 1.0, "cross Nk77 d40"},
        {2, 8, mid, mid, 80, false, 1, 1.0, "self 32x32 d80"},
        {2, 8, mid, 77, 80, false, 0, 1.0, "cross Nk77 d80"},
        {2, 8, 256, 256, 160, false, 1, 1.0, "self 16x16 d160"},
        {2, 8, 64, 64, 160, false, 1, 1.0, "self 8x8 d160"},
        {2, 8, 256, 77, 160, false, 0, 1.0, "cross Nk77 d160"},
        {2, 12, 77, 77, 64, true, 1, 1.0, "clip causal 77 d64"},
    };
    for (size_t i = 0; i < sizeof sd / sizeof sd[0]; i++)
        test_shape(&sd[i], simd, scalar, sd[i].Nq > 256 ? 24 : 0, sd[i].Nq <= 1024);

    /* Odd shapes: head dims not multiples of 8, key counts not multiples of 16 or 64, tiny
     * and peaky (large-score) cases, causal with Nq != Nk. */
    shape odd[] = {
        {1, 1, 1, 1, 1, false, 0, 1.0, "1x1 d1"},
        {1, 3, 37, 53, 3, false, 0, 1.0, "37x53 d3"},
        {2, 2, 129, 65, 13, false, 0, 1.0, "129x65 d13"},
        {1, 2, 100, 100, 33, true, 1, 1.0, "causal 100 d33"},
        {1, 2, 70, 150, 20, true, 0, 1.0, "causal 70x150 d20"},
        {1, 2, 150, 70, 24, true, 0, 1.0, "causal 150x70 d24"},
        {1, 1, 300, 200, 100, false, 0, 1.0, "300x200 d100"},
        {1, 2, 97, 130, 56, false, 0, 1.0, "97x130 d56"},
        {1, 2, 61, 77, 40, false, 0, 30.0, "peaky scores 61x77 d40"},
        {1, 1, 50, 257, 8, false, 0, 100.0, "very peaky 50x257 d8"},
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) test_shape(&odd[i], simd, scalar, 0, 1);

    /* Thread-count invariance (both paths). */
    shape th[] = {
        {2, 3, 300, 77, 40, false, 0, 1.0, "threads 300x77 d40"},
        {1, 2, 500, 500, 80, false, 1, 1.0, "threads 500x500 d80"},
        {1, 4, 77, 77, 64, true, 1, 1.0, "threads causal 77 d64"},
        {1, 2, 130, 131, 13, true, 0, 1.0, "threads causal 130x131 d13"},
    };
    for (size_t i = 0; i < sizeof th / sizeof th[0]; i++) {
        test_threads(&th[i], simd->isa);
        if (simd->isa != SDC_ISA_SCALAR) test_threads(&th[i], SDC_ISA_SCALAR);
    }

    /* out == q (in place over a fused buffer's q columns) */
    {
        shape s = {1, 2, 90, 90, 40, false, 1, 1.0, "in place out=q"};
        bufs b;
        make_bufs(&s, &b, 5);
        float *ref = ops_alloc(s.B * s.Nq * b.ldo);
        CHECK(run(simd, &s, &b) == SDC_OK);
        memcpy(ref, b.out, (size_t)(s.B * s.Nq * b.ldo) * sizeof(float));
        CHECK(sdc_cpu_attention(simd, s.B, s.H, s.Nq, s.Nk, s.d, b.q, b.ldq, b.k, b.ldk, b.v, b.ldv, b.qkv, b.ldq,
                                (float)(1.0 / sqrt((double)s.d)), s.causal) == SDC_OK);
        int same = 1;
        for (int64_t i = 0; i < s.Nq; i++)
            same &= memcmp(b.qkv + i * b.ldq, ref + i * b.ldo, (size_t)(s.H * s.d) * sizeof(float)) == 0;
        CHECK_MSG(same, "in-place result differs");
        free(ref);
        free_bufs(&b);
    }

    sdc_cpu_free(simd);
    sdc_cpu_free(scalar);
    if (g_avx2) sdc_cpu_free(g_avx2);
    return check_done();
}
