/* ops.c - checked entry points: validate once, allocate the output, dispatch to the backend.
 * See ops.h for the sticky-error convention. */
#include "ops.h"

#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const sdc_act NONE = {0};

/* SDC_PROFILE=1: wall time per op name, summed over the whole process and printed to stderr
 * at exit (profile before optimising). SDC_PROFILE=2 splits linear, conv2d and attention
 * by shape and weight type (which layer sizes are slow). An op's time runs from its entry
 * check (ok_in) to its dispatch's return (run); networks call ops from one thread, so one
 * clock suffices. */
#define PROF_MAX 160
typedef struct { char op[80]; double s; long calls; } prof_entry;
static struct {
    int on;          /* -1: not decided yet; 1: per op; 2: per op and shape */
    double t0;       /* entry time of the op in flight */
    char detail[80]; /* SDC_PROFILE=2: the in-flight op's shape key ("" for none) */
    int n;
    prof_entry e[PROF_MAX];
} prof = {.on = -1};

static double prof_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void prof_report(void) {
    double total = 0;
    for (int i = 0; i < prof.n; i++) total += prof.e[i].s;
    fprintf(stderr, "sdc profile (SDC_PROFILE): %.3f s in ops\n%-44s %10s %8s %7s\n", total, "op", "seconds",
            "calls", "share");
    for (int k = 0; k < prof.n; k++) { /* largest first, a selection at a time */
        int best = k;
        for (int i = k + 1; i < prof.n; i++)
            if (prof.e[i].s > prof.e[best].s) best = i;
        if (best != k) {
            prof_entry t = prof.e[k];
            prof.e[k] = prof.e[best], prof.e[best] = t;
        }
        fprintf(stderr, "%-44s %10.3f %8ld %6.1f%%\n", prof.e[k].op, prof.e[k].s, prof.e[k].calls,
                total > 0 ? 100 * prof.e[k].s / total : 0.0);
    }
}

static inline void prof_start(void) {
    if (prof.on > 0) prof.t0 = prof_now(), prof.detail[0] = 0;
}

/* SDC_PROFILE=2: names the in-flight op by its shape (called between ok_in and run) */
static void prof_detail(const char *fmt, ...) {
    if (prof.on < 2) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prof.detail, sizeof prof.detail, fmt, ap);
    va_end(ap);
}

static void prof_stop(const char *op) {
    const double dt = prof_now() - prof.t0;
    const char *key = prof.detail[0] ? prof.detail : op;
    for (int i = 0; i < prof.n; i++)
        if (!strcmp(prof.e[i].op, key)) {
            prof.e[i].s += dt, prof.e[i].calls++;
            return;
        }
    if (prof.n < PROF_MAX) {
        snprintf(prof.e[prof.n].op, sizeof prof.e[prof.n].op, "%s", key);
        prof.e[prof.n].s = dt, prof.e[prof.n++].calls = 1;
    }
}

void sdc_ctx_init(sdc_ctx *c, sdc_backend *be) {
    memset(c, 0, sizeof *c);
    c->be = be;
    const char *d = getenv("SDC_DUMP");
    if (d && *d) snprintf(c->dump_dir, sizeof c->dump_dir, "%s", d);
    const char *f = getenv("SDC_DUMP_FILTER");
    if (f && *f) snprintf(c->dump_filter, sizeof c->dump_filter, "%s", f);
    if (prof.on < 0) {
        const char *pr = getenv("SDC_PROFILE");
        prof.on = !pr || !*pr || !strcmp(pr, "0") ? 0 : !strcmp(pr, "2") ? 2 : 1;
        if (prof.on) atexit(prof_report);
    }
}

sdc_status sdc_ctx_fail(sdc_ctx *c, sdc_status s, const char *fmt, ...) {
    if (c->status != SDC_OK) return c->status;
    c->status = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return s;
}

static const char *shp(const sdc_act *x, char *buf, size_t n) { return sdc_shape_str(x->shape, x->ndim, buf, n); }

int64_t sdc_act_nelem(const sdc_act *x) {
    int64_t n = 1;
    for (int i = 0; i < x->ndim; i++) n *= x->shape[i];
    return x->ndim ? n : 0;
}

/* true when the context is healthy and every input is present */
static bool ok_in(sdc_ctx *c, const char *op, int n, const sdc_act *xs) {
    if (c->status != SDC_OK) return false;
    prof_start();
    for (int i = 0; i < n; i++)
        if (!xs[i].data || xs[i].ndim < 1) {
            sdc_ctx_fail(c, SDC_E_INVALID, "%s: input %d is empty", op, i);
            return false;
        }
    return true;
}

sdc_act sdc_new(sdc_ctx *c, int ndim, const int64_t *shape) {
    if (c->status != SDC_OK) return NONE;
    if (ndim < 1 || ndim > SDC_ACT_MAX_DIMS) {
        sdc_ctx_fail(c, SDC_E_INVALID, "new: %d dimensions (1..%d)", ndim, SDC_ACT_MAX_DIMS);
        return NONE;
    }
    sdc_act x = {0};
    x.ndim = ndim;
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0 || !sdc_mul_u64(n, (uint64_t)shape[i], &n) || n > (1ull << 40)) {
            sdc_ctx_fail(c, SDC_E_INVALID, "new: bad shape");
            return NONE;
        }
        x.shape[i] = shape[i];
    }
    x.data = c->be->ops->alloc(c->be, (size_t)n * sizeof(float));
    if (!x.data) {
        char b[96];
        sdc_ctx_fail(c, SDC_E_NOMEM, "activation arena exhausted allocating %s floats", shp(&x, b, sizeof b));
        return NONE;
    }
    return x;
}
sdc_act sdc_new4(sdc_ctx *c, int64_t a, int64_t b, int64_t cc, int64_t d) {
    int64_t s[4] = {a, b, cc, d};
    return sdc_new(c, 4, s);
}
sdc_act sdc_new3(sdc_ctx *c, int64_t a, int64_t b, int64_t cc) {
    int64_t s[3] = {a, b, cc};
    return sdc_new(c, 3, s);
}
sdc_act sdc_new2(sdc_ctx *c, int64_t a, int64_t b) {
    int64_t s[2] = {a, b};
    return sdc_new(c, 2, s);
}

sdc_act sdc_reshape(sdc_ctx *c, sdc_act x, int ndim, const int64_t *shape) {
    if (!ok_in(c, "reshape", 1, &x)) return NONE;
    sdc_act y = x;
    int64_t n = 1;
    if (ndim < 1 || ndim > SDC_ACT_MAX_DIMS) {
        sdc_ctx_fail(c, SDC_E_INVALID, "reshape: %d dimensions", ndim);
        return NONE;
    }
    y.ndim = ndim;
    for (int i = 0; i < ndim; i++) n *= (y.shape[i] = shape[i]);
    if (n != sdc_act_nelem(&x)) {
        char a[96], b[96];
        sdc_ctx_fail(c, SDC_E_INVALID, "reshape: %s to %s changes the element count", shp(&x, a, sizeof a),
                     shp(&y, b, sizeof b));
        return NONE;
    }
    return y;
}

sdc_act sdc_from_host(sdc_ctx *c, const float *src, int ndim, const int64_t *shape) {
    sdc_act x = sdc_new(c, ndim, shape);
    if (!x.data) return NONE;
    sdc_status s = c->be->ops->upload(c->be, x.data, src, (size_t)sdc_act_nelem(&x));
    if (s != SDC_OK) {
        sdc_ctx_fail(c, s, "upload failed");
        return NONE;
    }
    return x;
}

sdc_status sdc_to_host(sdc_ctx *c, sdc_act x, float *dst) {
    if (!ok_in(c, "to_host", 1, &x)) return c->status ? c->status : SDC_E_INVALID;
    sdc_status s = c->be->ops->download(c->be, dst, x.data, (size_t)sdc_act_nelem(&x));
    if (s != SDC_OK) sdc_ctx_fail(c, s, "download failed");
    return s;
}

/* a weight/parameter tensor must exist, be a float type and have the given element count
 * (or be a [n] vector for 1-D params) */
static bool check_param(sdc_ctx *c, const char *op, const sdc_tensor *t, int64_t n, const char *what) {
    if (!t) return true;
    const sdc_type_traits *tr = sdc_type_traits_of(t->type);
    if (!tr || !tr->is_float) {
        sdc_ctx_fail(c, SDC_E_UNSUPPORTED, "%s: %s %s has non-float type %s", op, what, t->name ? t->name : "",
                     sdc_type_name(t->type));
        return false;
    }
    if (sdc_tensor_nelem(t) != n) {
        char b[96];
        sdc_ctx_fail(c, SDC_E_SHAPE, "%s: %s %s has shape %s, expected %lld values", op, what, t->name ? t->name : "",
                     sdc_shape_str(t->shape, t->ndim, b, sizeof b), (long long)n);
        return false;
    }
    return true;
}

static sdc_act run(sdc_ctx *c, const char *op, sdc_status s, sdc_act y) {
    if (prof.on > 0) prof_stop(op);
    if (s != SDC_OK) {
        sdc_ctx_fail(c, s, "%s: backend %s failed (%s)", op, c->be->ops->name, sdc_status_name(s));
        return NONE;
    }
    return y;
}

/* whether the float ranges [a, a + na) and [b, b + nb) share memory */
static bool ranges_overlap(const float *a, int64_t na, const float *b, int64_t nb) { return a < b + nb && b < a + na; }
static bool overlaps(const sdc_act *a, const sdc_act *b) {
    return ranges_overlap(a->data, sdc_act_nelem(a), b->data, sdc_act_nelem(b));
}

sdc_act sdc_rows(sdc_ctx *c, sdc_act x, int64_t r0, int64_t n) {
    if (!ok_in(c, "rows", 1, &x)) return NONE;
    const int64_t last = x.shape[x.ndim - 1], rows = last > 0 ? sdc_act_nelem(&x) / last : 0;
    if (last < 1 || r0 < 0 || n < 1 || r0 > rows - n) {
        char xs[96];
        sdc_ctx_fail(c, SDC_E_SHAPE, "rows: %lld rows from %lld of %s (%lld rows)", (long long)n, (long long)r0,
                     shp(&x, xs, sizeof xs), (long long)rows);
        return NONE;
    }
    sdc_act y = {0};
    y.data = x.data + r0 * last;
    y.ndim = 2;
    y.shape[0] = n;
    y.shape[1] = last;
    return y;
}

void sdc_set_rows(sdc_ctx *c, sdc_act dst, int64_t r0, sdc_act src) {
    sdc_act in[2] = {dst, src};
    if (!ok_in(c, "set_rows", 2, in)) return;
    const int64_t last = dst.shape[dst.ndim - 1];
    const bool fits = last > 0 && src.shape[src.ndim - 1] == last && r0 >= 0 &&
                      sdc_act_nelem(&src) / last <= sdc_act_nelem(&dst) / last - r0;
    const int64_t n = fits ? sdc_act_nelem(&src) / last : 0;
    const float *d0 = fits ? dst.data + r0 * last : NULL;
    const bool overlap = fits && ranges_overlap(src.data, n * last, d0, n * last);
    if (!fits || overlap) {
        char ds[96], ss[96];
        sdc_ctx_fail(c, SDC_E_SHAPE, "set_rows: %s into %s at row %lld%s", shp(&src, ss, sizeof ss),
                     shp(&dst, ds, sizeof ds), (long long)r0, overlap ? " (overlapping memory)" : "");
        return;
    }
    run(c, "set_rows", c->be->ops->copy(c->be, dst.data + r0 * last, src.data, (size_t)(n * last)), dst);
}

sdc_act sdc_linear(sdc_ctx *c, sdc_act x, const sdc_tensor *w, const sdc_tensor *b) {
    if (!ok_in(c, "linear", 1, &x)) return NONE;
    char xs[96], ws[96];
    if (!w || w->ndim < 2) {
        sdc_ctx_fail(c, SDC_E_SHAPE, "linear: weight %s is not a matrix", w && w->name ? w->name : "(null)");
        return NONE;
    }
    /* [N, K] or [N, K, 1, 1] (a 1x1 conv kernel used as a matrix) */
    int64_t N = w->shape[0], K = w->shape[1];
    for (int i = 2; i < w->ndim; i++)
        if (w->shape[i] != 1) K = -1;
    if (K != x.shape[x.ndim - 1]) {
        sdc_ctx_fail(c, SDC_E_SHAPE, "linear: input %s does not match weight %s %s", shp(&x, xs, sizeof xs),
                     w->name ? w->name : "", sdc_shape_str(w->shape, w->ndim, ws, sizeof ws));
        return NONE;
    }
    if (!check_param(c, "linear", w, N * K, "weight") || !check_param(c, "linear", b, N, "bias")) return NONE;
    int64_t shape[SDC_ACT_MAX_DIMS];
    memcpy(shape, x.shape, sizeof shape);
    shape[x.ndim - 1] = N;
    sdc_act y = sdc_new(c, x.ndim, shape);
    if (!y.data) return NONE;
    prof_detail("linear %lldx%lld->%lld %s", (long long)(sdc_act_nelem(&x) / K), (long long)K, (long long)N,
                sdc_type_name(w->type));
    y = run(c, "linear", c->be->ops->linear(c->be, &x, w, b, &y), y);
    if (c->weight_done) c->weight_done(c->weight_done_user, w);
    return y;
}

/* Checks a conv2d's operands; the output shape [B, O, Ho, Wo] into ys. */
static bool conv2d_check(sdc_ctx *c, sdc_act x, const sdc_tensor *w, const sdc_tensor *b, int stride, int pad,
                         int64_t ys[4]) {
    if (!ok_in(c, "conv2d", 1, &x)) return false;
    char xs[96], ws[96];
    if (x.ndim != 4 || !w || w->ndim != 4 || w->shape[1] != x.shape[1] || w->shape[2] != w->shape[3] ||
        (w->shape[2] != 1 && w->shape[2] != 3) || (stride != 1 && stride != 2) || pad < 0 || pad > 1) {
        sdc_ctx_fail(c, SDC_E_SHAPE, "conv2d: input %s, weight %s %s, stride %d, pad %d not supported",
                     shp(&x, xs, sizeof xs), w && w->name ? w->name : "",
                     w ? sdc_shape_str(w->shape, w->ndim, ws, sizeof ws) : "(null)", stride, pad);
        return false;
    }
    int64_t O = w->shape[0], k = w->shape[2];
    if (!check_param(c, "conv2d", w, sdc_tensor_nelem(w), "weight") || !check_param(c, "conv2d", b, O, "bias"))
        return false;
    int64_t Ho = (x.shape[2] + 2 * pad - k) / stride + 1, Wo = (x.shape[3] + 2 * pad - k) / stride + 1;
    if (Ho < 1 || Wo < 1) {
        sdc_ctx_fail(c, SDC_E_SHAPE, "conv2d: input %s too small", shp(&x, xs, sizeof xs));
        return false;
    }
    ys[0] = x.shape[0], ys[1] = O, ys[2] = Ho, ys[3] = Wo;
    return true;
}

/* dst must have shape ys (and, unless may_alias, not overlap any of in[0..n-1]; with
 * may_alias it may coincide exactly with one of them but not overlap it partially) */
static bool dst_ok(sdc_ctx *c, const char *op, const sdc_act *dst, int ndim, const int64_t *ys, const sdc_act *in,
                   int n, bool may_alias) {
    if (!ok_in(c, op, 1, dst)) return false;
    bool ok = dst->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = dst->shape[i] == ys[i];
    bool ov = false;
    for (int i = 0; ok && i < n; i++)
        if (overlaps(dst, &in[i]) && !(may_alias && dst->data == in[i].data)) ov = true;
    if (!ok || ov) {
        char ds[96], es[96];
        sdc_ctx_fail(c, SDC_E_SHAPE, "%s: destination %s%s, expected %s", op, shp(dst, ds, sizeof ds),
                     ov ? " overlaps an input" : "", sdc_shape_str(ys, ndim, es, sizeof es));
        return false;
    }
    return true;
}

static sdc_act conv2d_run(sdc_ctx *c, sdc_act x, const sdc_tensor *w, const sdc_tensor *b, int stride, int pad,
                          sdc_act y) {
    prof_detail("conv2d %lldx%lldx%lldx%lld->%lld k%lld s%d %s", (long long)x.shape[0], (long long)x.shape[1],
                (long long)x.shape[2], (long long)x.shape[3], (long long)w->shape[0], (long long)w->shape[2], stride,
                sdc_type_name(w->type));
    y = run(c, "conv2d", c->be->ops->conv2d(c->be, &x, w, b, stride, pad, &y), y);
    if (c->weight_done) c->weight_done(c->weight_done_user, w);
    return y;
}

sdc_act sdc_conv2d(sdc_ctx *c, sdc_act x, const sdc_tensor *w, const sdc_tensor *b, int stride, int pad) {
    int64_t ys[4];
    if (!conv2d_check(c, x, w, b, stride, pad, ys)) return NONE;
    sdc_act y = sdc_new(c, 4, ys);
    if (!y.data) return NONE;
    return conv2d_run(c, x, w, b, stride, pad, y);
}

sdc_act sdc_conv2d_into(sdc_ctx *c, sdc_act dst, sdc_act x, const sdc_tensor *w, const sdc_tensor *b, int stride,
                        int pad) {
    int64_t ys[4];
    if (!conv2d_check(c, x, w, b, stride, pad, ys) || !dst_ok(c, "conv2d", &dst, 4, ys, &x, 1, false))
        return NONE;
    return conv2d_run(c, x, w, b, stride, pad, dst);
}

sdc_act sdc_group_norm(sdc_ctx *c, sdc_act x, int groups, float eps, const sdc_tensor *gamma,
                       const sdc_tensor *beta, bool silu) {
    if (!ok_in(c, "group_norm", 1, &x)) return NONE;
    char xs[96];
    if (x.ndim < 2 || groups < 1 || x.shape[1] % groups) {
        sdc_ctx_fail(c, SDC_E_SHAPE, "group_norm: %s channels not divisible into %d groups", shp(&x, xs, sizeof xs),
                     groups);
        return NONE;
    }
    if (!check_param(c, "group_norm", gamma, x.shape[1], "weight") ||
        !check_param(c, "group_norm", beta, x.shape[1], "bias"))
        return NONE;
    sdc_act y = sdc_new(c, x.ndim, x.shape);
    if (!y.data) return NONE;
    return run(c, "group_norm", c->be->ops->group_norm(c->be, &x, groups, eps, gamma, beta, silu, &y), y);
}

sdc_act sdc_layer_norm(sdc_ctx *c, sdc_act x, float eps, const sdc_tensor *gamma, const sdc_tensor *beta) {
    if (!ok_in(c, "layer_norm", 1, &x)) return NONE;
    int64_t C = x.shape[x.ndim - 1];
    if (!check_param(c, "layer_norm", gamma, C, "weight") || !check_param(c, "layer_norm", beta, C, "bias"))
        return NONE;
    sdc_act y = sdc_new(c, x.ndim, x.shape);
    if (!y.data) return NONE;
    return run(c, "layer_norm", c->be->ops->layer_norm(c->be, &x, eps, gamma, beta, &y), y);
}

sdc_act sdc_attention(sdc_ctx *c, sdc_act q, int64_t q_col, sdc_act k, int64_t k_col, sdc_act v, int64_t v_col,
                      int64_t width, int64_t heads, bool causal) {
    sdc_act in[3] = {q, k, v};
    if (!ok_in(c, "attention", 3, in)) return NONE;
    char qs[96], ks[96];
    bool ok = q.ndim == 3 && k.ndim == 3 && v.ndim == 3 && q.shape[0] == k.shape[0] && k.shape[0] == v.shape[0] &&
              k.shape[1] == v.shape[1] && heads >= 1 && width % heads == 0 && q_col >= 0 && k_col >= 0 &&
              v_col >= 0 && q_col + width <= q.shape[2] && k_col + width <= k.shape[2] &&
              v_col + width <= v.shape[2] && (!causal || q.shape[1] == k.shape[1]);
    if (!ok) {
        sdc_ctx_fail(c, SDC_E_SHAPE, "attention: q %s, k %s, width %lld, %lld heads do not fit",
                     shp(&q, qs, sizeof qs), shp(&k, ks, sizeof ks), (long long)width, (long long)heads);
        return NONE;
    }
    sdc_act y = sdc_new3(c, q.shape[0], q.shape[1], width);
    if (!y.data) return NONE;
    prof_detail("attention %lldx%lld kv %lld h%lld d%lld%s", (long long)q.shape[0], (long long)q.shape[1],
                (long long)k.shape[1], (long long)heads, (long long)(width / heads), causal ? " causal" : "");
    return run(c, "attention",
               c->be->ops->attention(c->be, q.data + q_col, q.shape[2], k.data + k_col, k.shape[2], v.data + v_col,
                                     v.shape[2], q.shape[0], q.shape[1], k.shape[1], heads, width / heads, causal,
                                     y.data),
               y);
}

static sdc_act unary(sdc_ctx *c, sdc_act x, sdc_unary_op op, const char *name) {
    if (!ok_in(c, name, 1, &x)) return NONE;
    sdc_act y = sdc_new(c, x.ndim, x.shape);
    if (!y.data) return NONE;
    return run(c, name, c->be->ops->unary(c->be, op, &x, &y), y);
}
sdc_act sdc_silu(sdc_ctx *c, sdc_act x) { return unary(c, x, SDC_UNARY_SILU, "silu"); }
sdc_act sdc_gelu(sdc_ctx *c, sdc_act x) { return unary(c, x, SDC_UNARY_GELU, "gelu"); }
sdc_act sdc_quick_gelu(sdc_ctx *c, sdc_act x) { return unary(c, x, SDC_UNARY_QUICK_GELU, "quick_gelu"); }

sdc_act sdc_geglu(sdc_ctx *c, sdc_act x) {
    if (!ok_in(c, "geglu", 1, &x)) return NONE;
    if (x.shape[x.ndim - 1] % 2) {
        sdc_ctx_fail(c, SDC_E_SHAPE, "geglu: last dimension %lld is odd", (long long)x.shape[x.ndim - 1]);
        return NONE;
    }
    int64_t shape[SDC_ACT_MAX_DIMS];
    memcpy(shape, x.shape, sizeof shape);
    shape[x.ndim - 1] /= 2;
    sdc_act y = sdc_new(c, x.ndim, shape);
    if (!y.data) return NONE;
    return run(c, "geglu", c->be->ops->geglu(c->be, &x, &y), y);
}

static bool same_shape(const sdc_act *a, const sdc_act *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

static bool binary_check(sdc_ctx *c, sdc_act a, sdc_act b, const char *name) {
    sdc_act in[2] = {a, b};
    if (!ok_in(c, name, 2, in)) return false;
    bool chan = b.ndim == 2 && a.ndim >= 2 && b.shape[0] == a.shape[0] && b.shape[1] == a.shape[1];
    if (!same_shape(&a, &b) && !chan) {
        char as[96], bs[96];
        sdc_ctx_fail(c, SDC_E_SHAPE, "%s: shapes %s and %s do not match", name, shp(&a, as, sizeof as),
                     shp(&b, bs, sizeof bs));
        return false;
    }
    return true;
}

static sdc_act binary(sdc_ctx *c, sdc_act a, sdc_act b, sdc_binary_op op, const char *name) {
    if (!binary_check(c, a, b, name)) return NONE;
    sdc_act y = sdc_new(c, a.ndim, a.shape);
    if (!y.data) return NONE;
    return run(c, name, c->be->ops->binary(c->be, op, &a, &b, &y), y);
}
sdc_act sdc_add(sdc_ctx *c, sdc_act a, sdc_act b) { return binary(c, a, b, SDC_BINARY_ADD, "add"); }

sdc_act sdc_add_into(sdc_ctx *c, sdc_act dst, sdc_act a, sdc_act b) {
    sdc_act in[2] = {a, b};
    if (!binary_check(c, a, b, "add") || !dst_ok(c, "add", &dst, a.ndim, a.shape, in, 2, true)) return NONE;
    return run(c, "add", c->be->ops->binary(c->be, SDC_BINARY_ADD, &a, &b, &dst), dst);
}
sdc_act sdc_mul(sdc_ctx *c, sdc_act a, sdc_act b) { return binary(c, a, b, SDC_BINARY_MUL, "mul"); }

sdc_act sdc_scale(sdc_ctx *c, sdc_act x, float s) {
    if (!ok_in(c, "scale", 1, &x)) return NONE;
    sdc_act y = sdc_new(c, x.ndim, x.shape);
    if (!y.data) return NONE;
    return run(c, "scale", c->be->ops->scale(c->be, &x, s, &y), y);
}

sdc_act sdc_upsample2x(sdc_ctx *c, sdc_act x) {
    if (!ok_in(c, "upsample2x", 1, &x)) return NONE;
    if (x.ndim != 4) {
        sdc_ctx_fail(c, SDC_E_SHAPE, "upsample2x: input must be NCHW");
        return NONE;
    }
    sdc_act y = sdc_new4(c, x.shape[0], x.shape[1], 2 * x.shape[2], 2 * x.shape[3]);
    if (!y.data) return NONE;
    return run(c, "upsample2x", c->be->ops->upsample2x(c->be, &x, &y), y);
}

sdc_act sdc_upsample_nearest(sdc_ctx *c, sdc_act x, int64_t Ho, int64_t Wo) {
    if (!ok_in(c, "upsample_nearest", 1, &x)) return NONE;
    if (x.ndim != 4 || Ho < 1 || Wo < 1) {
        char xs[96];
        sdc_ctx_fail(c, SDC_E_SHAPE, "upsample_nearest: input %s to %lldx%lld not supported", shp(&x, xs, sizeof xs),
                     (long long)Ho, (long long)Wo);
        return NONE;
    }
    sdc_act y = sdc_new4(c, x.shape[0], x.shape[1], Ho, Wo);
    if (!y.data) return NONE;
    return run(c, "upsample_nearest", c->be->ops->upsample_nearest(c->be, &x, &y), y);
}

sdc_act sdc_transpose(sdc_ctx *c, sdc_act x) {
    if (!ok_in(c, "transpose", 1, &x)) return NONE;
    if (x.ndim != 2 && x.ndim != 3) {
        char xs[96];
        sdc_ctx_fail(c, SDC_E_SHAPE, "transpose: input %s is not [B, M, N] or [M, N]", shp(&x, xs, sizeof xs));
        return NONE;
    }
    int64_t shape[SDC_ACT_MAX_DIMS];
    memcpy(shape, x.shape, sizeof shape);
    shape[x.ndim - 2] = x.shape[x.ndim - 1];
    shape[x.ndim - 1] = x.shape[x.ndim - 2];
    sdc_act y = sdc_new(c, x.ndim, shape);
    if (!y.data) return NONE;
    return run(c, "transpose", c->be->ops->transpose(c->be, &x, &y), y);
}

sdc_act sdc_concat(sdc_ctx *c, sdc_act a, sdc_act b) {
    sdc_act in[2] = {a, b};
    if (!ok_in(c, "concat", 2, in)) return NONE;
    bool ok = a.ndim == b.ndim && a.ndim >= 2 && a.shape[0] == b.shape[0];
    for (int i = 2; ok && i < a.ndim; i++) ok = a.shape[i] == b.shape[i];
    if (!ok) {
        char as[96], bs[96];
        sdc_ctx_fail(c, SDC_E_SHAPE, "concat: %s and %s differ outside dimension 1", shp(&a, as, sizeof as),
                     shp(&b, bs, sizeof bs));
        return NONE;
    }
    int64_t shape[SDC_ACT_MAX_DIMS];
    memcpy(shape, a.shape, sizeof shape);
    shape[1] += b.shape[1];
    sdc_act y = sdc_new(c, a.ndim, shape);
    if (!y.data) return NONE;
    return run(c, "concat", c->be->ops->concat(c->be, &a, &b, &y), y);
}

sdc_act sdc_pad(sdc_ctx *c, sdc_act x, int top, int left, int bottom, int right) {
    if (!ok_in(c, "pad", 1, &x)) return NONE;
    if (x.ndim != 4 || top < 0 || left < 0 || bottom < 0 || right < 0 || top > 8 || left > 8 || bottom > 8 ||
        right > 8) {
        char xs[96];
        sdc_ctx_fail(c, SDC_E_SHAPE, "pad: input %s by (%d, %d, %d, %d) not supported", shp(&x, xs, sizeof xs), top,
                     left, bottom, right);
        return NONE;
    }
    sdc_act y = sdc_new4(c, x.shape[0], x.shape[1], x.shape[2] + top + bottom, x.shape[3] + left + right);
    if (!y.data) return NONE;
    return run(c, "pad", c->be->ops->pad(c->be, &x, top, left, &y), y);
}

sdc_act sdc_timestep_embedding(sdc_ctx *c, const float *t, int64_t n, int64_t dim) {
    if (c->status != SDC_OK) return NONE;
    prof_start();
    if (!t || n < 1 || dim < 2 || dim % 2) {
        sdc_ctx_fail(c, SDC_E_INVALID, "timestep_embedding: n %lld, dim %lld", (long long)n, (long long)dim);
        return NONE;
    }
    sdc_act y = sdc_new2(c, n, dim);
    if (!y.data) return NONE;
    return run(c, "timestep_embedding", c->be->ops->timestep_embedding(c->be, t, n, dim, &y), y);
}

sdc_act sdc_embed(sdc_ctx *c, const sdc_tensor *table, const int32_t *ids, int64_t n) {
    if (c->status != SDC_OK) return NONE;
    prof_start();
    if (!table || table->ndim != 2 || !ids || n < 1) {
        sdc_ctx_fail(c, SDC_E_INVALID, "embed: bad table or ids");
        return NONE;
    }
    if (!check_param(c, "embed", table, sdc_tensor_nelem(table), "table")) return NONE;
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= table->shape[0]) {
            sdc_ctx_fail(c, SDC_E_INVALID, "embed: id %d out of range [0, %lld)", (int)ids[i],
                         (long long)table->shape[0]);
            return NONE;
        }
    sdc_act y = sdc_new2(c, n, table->shape[1]);
    if (!y.data) return NONE;
    return run(c, "embed", c->be->ops->embed(c->be, table, ids, n, &y), y);
}

void sdc_dump(sdc_ctx *c, const char *name, sdc_act x) {
    if (!c->dump_dir[0] || c->status != SDC_OK || !x.data) return;
    if (c->dump_filter[0] && !strstr(name, c->dump_filter)) return;
    int64_t n = sdc_act_nelem(&x);
    float *h = malloc((size_t)n * sizeof *h + 1);
    if (!h) return;
    if (c->be->ops->download(c->be, h, x.data, (size_t)n) == SDC_OK) {
        char path[1400], shape[160] = "";
        size_t o = 0;
        for (int i = 0; i < x.ndim; i++) o += (size_t)snprintf(shape + o, sizeof shape - o, "%lld,", (long long)x.shape[i]);
        snprintf(path, sizeof path, "%s/%s.npy", c->dump_dir, name);
        FILE *f = fopen(path, "wb");
        if (f) {
            char hdr[256];
            int hl = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shape);
            int pad = (64 - (10 + hl + 1) % 64) % 64;
            unsigned len = (unsigned)(hl + pad + 1);
            fwrite("\x93NUMPY\x01\x00", 1, 8, f);
            fputc((int)(len & 0xff), f);
            fputc((int)(len >> 8), f);
            fwrite(hdr, 1, (size_t)hl, f);
            for (int i = 0; i < pad; i++) fputc(' ', f);
            fputc('\n', f);
            fwrite(h, sizeof *h, (size_t)n, f);
            fclose(f);
        }
    }
    free(h);
}

/* A fresh activation holding a copy of x (sdc_keep's move; never overlapping). */
static sdc_act copy_new(sdc_ctx *c, sdc_act x) {
    if (!ok_in(c, "keep", 1, &x)) return NONE;
    sdc_act y = sdc_new(c, x.ndim, x.shape);
    if (!y.data) return NONE;
    return run(c, "keep", c->be->ops->copy(c->be, y.data, x.data, (size_t)sdc_act_nelem(&x)), y);
}

sdc_act sdc_keep(sdc_ctx *c, size_t m, sdc_act x) {
    if (c->status != SDC_OK || !x.data) return NONE;
    size_t bytes = (size_t)sdc_act_nelem(&x) * sizeof(float);
    size_t top = sdc_mark(c);
    sdc_act probe = sdc_new2(c, 1, 1); /* lives at arena offset `top` */
    if (!probe.data) return NONE;
    sdc_release(c, top);
    const char *base = (const char *)probe.data - top; /* address of arena offset 0 */
    const char *xd = (const char *)x.data;
    if (xd < base + m) { /* allocated before the scope: nothing to move */
        sdc_release(c, m);
        return x;
    }
    if ((size_t)(xd - base) == m) { /* already in place */
        sdc_release(c, m + ((bytes + 63) & ~(size_t)63));
        return x;
    }
    if ((size_t)(xd - base) < m + bytes) x = copy_new(c, x); /* would overlap its copy: go above first */
    sdc_release(c, m);
    return copy_new(c, x); /* to offset m: x now lies wholly above m + bytes */
}
