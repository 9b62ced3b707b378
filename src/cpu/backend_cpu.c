/* backend_cpu.c - the CPU backend: the backend.h vtable over the CPU kernels.
 *
 * Memory: one arena reserved as address space (MAP_NORESERVE) and handed out by a bump
 * pointer; pages are touched only when used, so the resident size follows the real peak,
 * and after the first step everything is reused (mark/release). Small typed parameters
 * (biases, norm weights; F16 or even Q4_0 in published files) are expanded to f32 in
 * grow-only per-backend buffers at each op - a few thousand values, negligible next to the
 * op itself. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "backend.h"
#include "common.h"
#include "cpu.h"
#include "attention.h"
#include "elementwise.h"
#include "gemm.h"
#include "norm.h"
#include "quant.h"

typedef struct {
    sdc_backend base;
    sdc_cpu *cpu;
    uint8_t *arena;
    size_t cap, used, peak;
    float *param[3];     /* expanded parameters: bias/gamma, beta, spare */
    size_t param_cap[3];
} cpu_backend;

static cpu_backend *CB(sdc_backend *be) { return (cpu_backend *)be; }

static void cpu_free(sdc_backend *be) {
    cpu_backend *b = CB(be);
    if (b->arena) munmap(b->arena, b->cap);
    for (int i = 0; i < 3; i++) free(b->param[i]);
    sdc_cpu_free(b->cpu);
    free(b);
}

static void *cpu_alloc(sdc_backend *be, size_t bytes) {
    cpu_backend *b = CB(be);
    size_t sz = (bytes + 63) & ~(size_t)63;
    if (sz < bytes || sz > b->cap - b->used) return NULL;
    void *p = b->arena + b->used;
    b->used += sz;
    if (b->used > b->peak) b->peak = b->used;
    return p;
}
static size_t cpu_mark(sdc_backend *be) { return CB(be)->used; }
static void cpu_release(sdc_backend *be, size_t mark) {
    if (mark <= CB(be)->used) CB(be)->used = mark;
}
static size_t cpu_peak(sdc_backend *be) { return CB(be)->peak; }
static sdc_status cpu_copy(sdc_backend *be, float *dst, const float *src, size_t n) {
    (void)be;
    if (dst != src) memmove(dst, src, n * sizeof *dst);
    return SDC_OK;
}
static sdc_status cpu_sync(sdc_backend *be) { (void)be; return SDC_OK; }

/* f32 view of a small typed parameter (NULL stays NULL) */
static const float *param(cpu_backend *b, int slot, const sdc_tensor *t, sdc_status *st) {
    if (!t) return NULL;
    if (t->type == SDC_TYPE_F32 && ((uintptr_t)t->data & 3) == 0) return (const float *)t->data;
    int64_t n = sdc_tensor_nelem(t);
    size_t need = (size_t)n * sizeof(float);
    if (b->param_cap[slot] < need) {
        free(b->param[slot]);
        b->param[slot] = malloc(need);
        b->param_cap[slot] = b->param[slot] ? need : 0;
        if (!b->param[slot]) { *st = SDC_E_NOMEM; return NULL; }
    }
    if (!sdc_dequantize_row(t->type, t->data, b->param[slot], n)) { *st = SDC_E_UNSUPPORTED; return NULL; }
    return b->param[slot];
}

static int64_t nelem(const sdc_act *x) {
    int64_t n = 1;
    for (int i = 0; i < x->ndim; i++) n *= x->shape[i];
    return n;
}

static sdc_status cpu_linear(sdc_backend *be, const sdc_act *x, const sdc_tensor *w, const sdc_tensor *bias, sdc_act *y) {
    cpu_backend *b = CB(be);
    sdc_status st = SDC_OK;
    int64_t N = w->shape[0], K = x->shape[x->ndim - 1], M = nelem(x) / K;
    const float *bf = param(b, 0, bias, &st);
    if (st != SDC_OK) return st;
    return sdc_cpu_linear(b->cpu, M, N, K, x->data, K, w->type, w->data, bf, y->data, N);
}

static sdc_status cpu_conv2d(sdc_backend *be, const sdc_act *x, const sdc_tensor *w, const sdc_tensor *bias, int stride,
                             int pad, sdc_act *y) {
    cpu_backend *b = CB(be);
    sdc_status st = SDC_OK;
    const float *bf = param(b, 0, bias, &st);
    if (st != SDC_OK) return st;
    return sdc_cpu_conv2d(b->cpu, x->shape[0], x->shape[1], x->shape[2], x->shape[3], x->data, w->shape[0],
                          (int)w->shape[2], (int)w->shape[3], stride, pad, w->type, w->data, bf, y->data);
}

static sdc_status cpu_group_norm(sdc_backend *be, const sdc_act *x, int groups, float eps, const sdc_tensor *gamma,
                                 const sdc_tensor *beta, bool silu, sdc_act *y) {
    cpu_backend *b = CB(be);
    sdc_status st = SDC_OK;
    const float *g = param(b, 0, gamma, &st), *bt = param(b, 1, beta, &st);
    if (st != SDC_OK) return st;
    int64_t B = x->shape[0], C = x->shape[1], HW = nelem(x) / (B * C);
    return sdc_cpu_group_norm(b->cpu, B, C, HW, groups, eps, x->data, g, bt, silu, y->data);
}

static sdc_status cpu_layer_norm(sdc_backend *be, const sdc_act *x, float eps, const sdc_tensor *gamma,
                                 const sdc_tensor *beta, sdc_act *y) {
    cpu_backend *b = CB(be);
    sdc_status st = SDC_OK;
    const float *g = param(b, 0, gamma, &st), *bt = param(b, 1, beta, &st);
    if (st != SDC_OK) return st;
    int64_t C = x->shape[x->ndim - 1];
    return sdc_cpu_layer_norm(b->cpu, nelem(x) / C, C, eps, x->data, g, bt, y->data);
}

static sdc_status cpu_attention(sdc_backend *be, const float *q, int64_t q_stride, const float *k, int64_t k_stride,
                                const float *v, int64_t v_stride, int64_t B, int64_t Nq, int64_t Nk, int64_t heads,
                                int64_t d, bool causal, float *y) {
    return sdc_cpu_attention(CB(be)->cpu, B, heads, Nq, Nk, d, q, q_stride, k, k_stride, v, v_stride, y, heads * d,
                             1.0f / sqrtf((float)d), causal);
}

static sdc_status cpu_unary(sdc_backend *be, sdc_unary_op op, const sdc_act *x, sdc_act *y) {
    sdc_cpu *c = CB(be)->cpu;
    switch (op) {
    case SDC_UNARY_SILU: return sdc_cpu_silu(c, nelem(x), x->data, y->data);
    case SDC_UNARY_GELU: return sdc_cpu_gelu(c, nelem(x), x->data, y->data);
    case SDC_UNARY_QUICK_GELU: return sdc_cpu_quick_gelu(c, nelem(x), x->data, y->data);
    }
    return SDC_E_INVALID;
}

static sdc_status cpu_geglu(sdc_backend *be, const sdc_act *x, sdc_act *y) {
    int64_t F = y->shape[y->ndim - 1];
    return sdc_cpu_geglu(CB(be)->cpu, nelem(y) / F, F, x->data, y->data);
}

static sdc_status cpu_binary(sdc_backend *be, sdc_binary_op op, const sdc_act *a, const sdc_act *bb, sdc_act *y) {
    sdc_cpu *c = CB(be)->cpu;
    int64_t n = nelem(a);
    if (nelem(bb) == n) return op == SDC_BINARY_ADD ? sdc_cpu_add(c, n, a->data, bb->data, y->data)
                                                    : sdc_cpu_mul(c, n, a->data, bb->data, y->data);
    /* per-channel broadcast: bb [B, C] over a [B, C, ...] */
    int64_t B = a->shape[0], C = a->shape[1], HW = n / (B * C);
    if (op == SDC_BINARY_ADD) return sdc_cpu_add_channel_bias(c, B, C, HW, a->data, bb->data, y->data);
    for (int64_t i = 0; i < B * C; i++)
        for (int64_t j = 0; j < HW; j++) y->data[i * HW + j] = a->data[i * HW + j] * bb->data[i];
    return SDC_OK;
}

static sdc_status cpu_scale(sdc_backend *be, const sdc_act *x, float s, sdc_act *y) {
    return sdc_cpu_scale(CB(be)->cpu, nelem(x), x->data, s, y->data);
}

static sdc_status cpu_upsample2x(sdc_backend *be, const sdc_act *x, sdc_act *y) {
    return sdc_cpu_upsample_nearest2x(CB(be)->cpu, x->shape[0], x->shape[1], x->shape[2], x->shape[3], x->data,
                                      y->data);
}

static sdc_status cpu_concat(sdc_backend *be, const sdc_act *a, const sdc_act *bb, sdc_act *y) {
    int64_t B = a->shape[0], HW = nelem(a) / (B * a->shape[1]);
    return sdc_cpu_concat(CB(be)->cpu, B, a->shape[1], bb->shape[1], HW, a->data, bb->data, y->data);
}

static sdc_status cpu_timestep_embedding(sdc_backend *be, const float *t, int64_t n, int64_t dim, sdc_act *y) {
    return sdc_cpu_timestep_embedding(CB(be)->cpu, n, dim, 10000.0f, t, y->data);
}

static sdc_status cpu_embed(sdc_backend *be, const sdc_tensor *table, const int32_t *ids, int64_t n, sdc_act *y) {
    return sdc_cpu_embed(CB(be)->cpu, table->type, table->data, table->shape[0], table->shape[1], n, ids, y->data);
}

/* transpose: tasks of TR_TILE source rows of one batch element; inside, TR_TILE x TR_TILE
 * tiles so both sides stream through the cache. A pure copy: any order is exact. */
#define TR_TILE 32
typedef struct { const float *x; float *y; int64_t M, N, tiles_m; } tr_ctx;
static void tr_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const tr_ctx *t = ctx;
    int64_t b = task / t->tiles_m, i0 = (task % t->tiles_m) * TR_TILE;
    int64_t i1 = i0 + TR_TILE < t->M ? i0 + TR_TILE : t->M;
    const float *x = t->x + b * t->M * t->N;
    float *y = t->y + b * t->M * t->N;
    for (int64_t j0 = 0; j0 < t->N; j0 += TR_TILE) {
        int64_t j1 = j0 + TR_TILE < t->N ? j0 + TR_TILE : t->N;
        for (int64_t j = j0; j < j1; j++)
            for (int64_t i = i0; i < i1; i++) y[j * t->M + i] = x[i * t->N + j];
    }
}
static sdc_status cpu_transpose(sdc_backend *be, const sdc_act *x, sdc_act *y) {
    int64_t M = x->shape[x->ndim - 2], N = x->shape[x->ndim - 1], B = nelem(x) / (M * N);
    tr_ctx t = {x->data, y->data, M, N, (M + TR_TILE - 1) / TR_TILE};
    sdc_pool_for(CB(be)->cpu->pool, B * t.tiles_m, tr_task, &t);
    return SDC_OK;
}

/* torch upsample_nearest2d's source index (aten/src/ATen/native/UpSample.h nearest_idx) */
static int64_t nearest_src(int64_t dst, int64_t in, int64_t out) {
    if (out == in) return dst;
    if (out == 2 * in) return dst >> 1;
    float scale = (float)in / (float)out;
    int64_t s = (int64_t)floorf((float)dst * scale);
    return s < in - 1 ? s : in - 1;
}
typedef struct { const float *x; float *y; int64_t H, W, Ho, Wo; } up_ctx;
static void up_task(void *ctx, int64_t plane, int thread) {
    (void)thread;
    const up_ctx *u = ctx;
    const float *x = u->x + plane * u->H * u->W;
    float *y = u->y + plane * u->Ho * u->Wo;
    for (int64_t i = 0; i < u->Ho; i++) {
        const float *xr = x + nearest_src(i, u->H, u->Ho) * u->W;
        for (int64_t j = 0; j < u->Wo; j++) y[i * u->Wo + j] = xr[nearest_src(j, u->W, u->Wo)];
    }
}
static sdc_status cpu_upsample_nearest(sdc_backend *be, const sdc_act *x, sdc_act *y) {
    up_ctx u = {x->data, y->data, x->shape[2], x->shape[3], y->shape[2], y->shape[3]};
    sdc_pool_for(CB(be)->cpu->pool, x->shape[0] * x->shape[1], up_task, &u);
    return SDC_OK;
}

/* zero padding: one task per [H, W] plane; a pure copy, exact in any order */
typedef struct { const float *x; float *y; int64_t H, W, Ho, Wo; int top, left; } pad_ctx;
static void pad_task(void *ctx, int64_t plane, int thread) {
    (void)thread;
    const pad_ctx *p = ctx;
    const float *x = p->x + plane * p->H * p->W;
    float *y = p->y + plane * p->Ho * p->Wo;
    memset(y, 0, (size_t)(p->top * p->Wo) * sizeof *y);
    for (int64_t i = 0; i < p->H; i++) {
        float *yr = y + (i + p->top) * p->Wo;
        memset(yr, 0, (size_t)p->left * sizeof *yr);
        memcpy(yr + p->left, x + i * p->W, (size_t)p->W * sizeof *yr);
        memset(yr + p->left + p->W, 0, (size_t)(p->Wo - p->left - p->W) * sizeof *yr);
    }
    int64_t below = p->Ho - p->top - p->H;
    memset(y + (p->top + p->H) * p->Wo, 0, (size_t)(below * p->Wo) * sizeof *y);
}
static sdc_status cpu_pad(sdc_backend *be, const sdc_act *x, int top, int left, sdc_act *y) {
    pad_ctx p = {x->data, y->data, x->shape[2], x->shape[3], y->shape[2], y->shape[3], top, left};
    sdc_pool_for(CB(be)->cpu->pool, x->shape[0] * x->shape[1], pad_task, &p);
    return SDC_OK;
}

static const sdc_backend_ops CPU_OPS = {
    .name = "cpu",
    .free = cpu_free,
    .alloc = cpu_alloc,
    .mark = cpu_mark,
    .release = cpu_release,
    .peak = cpu_peak,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .sync = cpu_sync,
    .linear = cpu_linear,
    .conv2d = cpu_conv2d,
    .group_norm = cpu_group_norm,
    .layer_norm = cpu_layer_norm,
    .attention = cpu_attention,
    .unary = cpu_unary,
    .geglu = cpu_geglu,
    .binary = cpu_binary,
    .scale = cpu_scale,
    .upsample2x = cpu_upsample2x,
    .concat = cpu_concat,
    .timestep_embedding = cpu_timestep_embedding,
    .embed = cpu_embed,
    .transpose = cpu_transpose,
    .upsample_nearest = cpu_upsample_nearest,
    .pad = cpu_pad,
};

bool sdc_backend_cpu_set_int8(sdc_backend *be, bool on) {
    sdc_cpu *c = CB(be)->cpu;
    c->int8 = on && c->vnni ? 1 : 0;
    return !on || c->vnni;
}

bool sdc_backend_cpu_set_bf16(sdc_backend *be, bool on) {
    sdc_cpu *c = CB(be)->cpu;
    c->bf16 = on;
    if (on && !sdc_cpu_bf16_active(c)) c->bf16 = 0; /* one place decides availability (amx.c) */
    return !on || c->bf16;
}

sdc_backend *sdc_backend_cpu_new(int n_threads, size_t arena_bytes, char *err, size_t errlen) {
    cpu_backend *b = calloc(1, sizeof *b);
    if (!b) {
        sdc_fail(err, errlen, SDC_E_NOMEM, "cpu backend: out of memory");
        return NULL;
    }
    b->base.ops = &CPU_OPS;
    b->cpu = sdc_cpu_new(n_threads, SDC_ISA_AVX512);
    if (!b->cpu) {
        free(b);
        sdc_fail(err, errlen, SDC_E_NOMEM, "cpu backend: cannot start threads");
        return NULL;
    }
    if (!arena_bytes) arena_bytes = (size_t)8 << 30;
    void *p = mmap(NULL, arena_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        sdc_cpu_free(b->cpu);
        free(b);
        sdc_fail(err, errlen, SDC_E_NOMEM, "cpu backend: cannot reserve %zu bytes for activations", arena_bytes);
        return NULL;
    }
    b->arena = p;
    b->cap = arena_bytes;
    return &b->base;
}
