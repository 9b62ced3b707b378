/* gguf.c - GGUF v2/v3 reader (zero-copy, every count and offset checked against the bytes
 * that remain) and a streaming writer producing GGUF v3.
 *
 * ref: ggml docs/gguf.md (file layout), ggml include/ggml.h (ggml_type ids).
 * All multi-byte values are little-endian; values are read with memcpy because nothing in a
 * GGUF header is naturally aligned. The host is assumed little-endian (checked below). */
#include "gguf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf.c assumes a little-endian host"
#endif

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGN 32u
#define GGUF_MAX_DIMS 4          /* GGML_MAX_DIMS */
#define GGUF_MAX_KEY 65535u      /* docs/gguf.md: keys at most 2^16-1 bytes */
#define GGUF_MAX_NAME 4096u      /* ggml allows 64 (128 in stable-diffusion.cpp); be lenient */
#define GGUF_WRITER_MAX_NAME 127u /* what stable-diffusion.cpp's ggml (GGML_MAX_NAME=128) loads */

/* ------------------------------------------------------------------ ggml type ids */

/* ggml_type id -> sdc_type (-1: known to ggml but not to sdc, or unknown). */
static const struct { uint32_t id; int sdc; const char *name; } GGML_TYPES[] = {
    {0, SDC_TYPE_F32, "f32"},     {1, SDC_TYPE_F16, "f16"},       {2, SDC_TYPE_Q4_0, "q4_0"},
    {3, SDC_TYPE_Q4_1, "q4_1"},   {6, SDC_TYPE_Q5_0, "q5_0"},     {7, SDC_TYPE_Q5_1, "q5_1"},
    {8, SDC_TYPE_Q8_0, "q8_0"},   {9, -1, "q8_1"},                {10, SDC_TYPE_Q2_K, "q2_k"},
    {11, SDC_TYPE_Q3_K, "q3_k"},  {12, SDC_TYPE_Q4_K, "q4_k"},    {13, SDC_TYPE_Q5_K, "q5_k"},
    {14, SDC_TYPE_Q6_K, "q6_k"},  {15, -1, "q8_k"},               {16, -1, "iq2_xxs"},
    {17, -1, "iq2_xs"},           {18, -1, "iq3_xxs"},            {19, -1, "iq1_s"},
    {20, -1, "iq4_nl"},           {21, -1, "iq3_s"},              {22, -1, "iq2_s"},
    {23, -1, "iq4_xs"},           {24, SDC_TYPE_I8, "i8"},        {25, SDC_TYPE_I16, "i16"},
    {26, SDC_TYPE_I32, "i32"},    {27, SDC_TYPE_I64, "i64"},      {28, SDC_TYPE_F64, "f64"},
    {29, -1, "iq1_m"},            {30, SDC_TYPE_BF16, "bf16"},    {34, -1, "tq1_0"},
    {35, -1, "tq2_0"},            {39, -1, "mxfp4"},
};
#define N_GGML_TYPES (sizeof GGML_TYPES / sizeof GGML_TYPES[0])

static const char *ggml_type_name(uint32_t id) {
    for (size_t i = 0; i < N_GGML_TYPES; i++)
        if (GGML_TYPES[i].id == id) return GGML_TYPES[i].name;
    return NULL;
}

int sdc_gguf_type_to_sdc(uint32_t ggml_type) {
    for (size_t i = 0; i < N_GGML_TYPES; i++)
        if (GGML_TYPES[i].id == ggml_type) return GGML_TYPES[i].sdc;
    return -1;
}

int sdc_gguf_type_from_sdc(sdc_type t) {
    for (size_t i = 0; i < N_GGML_TYPES; i++)
        if (GGML_TYPES[i].sdc >= 0 && GGML_TYPES[i].sdc == (int)t) return (int)GGML_TYPES[i].id;
    return -1;
}

/* ------------------------------------------------------------------ value types */

static const char *KV_TYPE_NAMES[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                      "bool", "string", "array", "u64", "i64", "f64"};

static const char *kv_type_name(uint32_t t) { return t <= SDC_GGUF_F64 ? KV_TYPE_NAMES[t] : "?"; }

/* Size of one scalar of type t; 0 for string, array and unknown types. */
static size_t kv_scalar_size(uint32_t t) {
    switch (t) {
    case SDC_GGUF_U8: case SDC_GGUF_I8: case SDC_GGUF_BOOL: return 1;
    case SDC_GGUF_U16: case SDC_GGUF_I16: return 2;
    case SDC_GGUF_U32: case SDC_GGUF_I32: case SDC_GGUF_F32: return 4;
    case SDC_GGUF_U64: case SDC_GGUF_I64: case SDC_GGUF_F64: return 8;
    default: return 0;
    }
}

static uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t ld64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* A scalar at p of type t, as the widest integer or double. kind: 0 unsigned, 1 signed, 2 float. */
typedef struct scalar { int kind; uint64_t u; int64_t i; double f; } scalar;

static scalar load_scalar(uint32_t t, const uint8_t *p) {
    scalar s = {0, 0, 0, 0};
    switch (t) {
    case SDC_GGUF_U8: s.u = p[0]; break;
    case SDC_GGUF_BOOL: s.u = p[0] != 0; break;
    case SDC_GGUF_U16: s.u = ld16(p); break;
    case SDC_GGUF_U32: s.u = ld32(p); break;
    case SDC_GGUF_U64: s.u = ld64(p); break;
    case SDC_GGUF_I8: s.kind = 1; s.i = (int8_t)p[0]; break;
    case SDC_GGUF_I16: s.kind = 1; s.i = (int16_t)ld16(p); break;
    case SDC_GGUF_I32: s.kind = 1; s.i = (int32_t)ld32(p); break;
    case SDC_GGUF_I64: s.kind = 1; s.i = (int64_t)ld64(p); break;
    case SDC_GGUF_F32: { float f; memcpy(&f, p, 4); s.kind = 2; s.f = f; break; }
    case SDC_GGUF_F64: { double d; memcpy(&d, p, 8); s.kind = 2; s.f = d; break; }
    default: break;
    }
    return s;
}

/* ------------------------------------------------------------------ reader state */

typedef struct gguf_kv {
    char *key;              /* own NUL-terminated copy */
    uint32_t type;          /* sdc_gguf_kv_type */
    uint32_t arr_type;      /* element type when type == ARRAY */
    uint64_t n;             /* string length, or array length */
    const uint8_t *p;       /* scalar value, string bytes, or first array element */
    uint64_t *str_off;      /* string arrays: offset (from p) of each element's length prefix */
} gguf_kv;

struct sdc_gguf {
    sdc_map map;            /* data = NULL for open_memory */
    const uint8_t *data;
    size_t size;
    uint32_t version;
    uint64_t alignment;
    uint64_t data_start;    /* file offset of the data section */
    int64_t n_kv;
    gguf_kv *kv;
    int64_t n_tensors;
    sdc_tensor *tensors;
    char **names;           /* own NUL-terminated tensor names (tensors[i].name points here) */
    uint64_t *offsets;      /* data-section offsets as stored */
    int64_t *tidx; uint64_t tmask;   /* open-addressing hash of tensor names (-1 = empty) */
    int64_t *kidx; uint64_t kmask;   /* same for keys */
};

typedef struct reader {
    const char *fname;
    const uint8_t *d;
    size_t size, pos;
    char *err;
    size_t errlen;
} reader;

static sdc_status rfail(reader *r, sdc_status code, const char *fmt, ...) SDC_PRINTF(3, 4);
static sdc_status rfail(reader *r, sdc_status code, const char *fmt, ...) {
    if (r->err && r->errlen) {
        int n = snprintf(r->err, r->errlen, "%s: ", r->fname);
        if (n >= 0 && (size_t)n < r->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return code;
}

static uint64_t left(const reader *r) { return (uint64_t)(r->size - r->pos); }

static bool rd32(reader *r, uint32_t *v) {
    if (left(r) < 4) return false;
    *v = ld32(r->d + r->pos);
    r->pos += 4;
    return true;
}

static bool rd64(reader *r, uint64_t *v) {
    if (left(r) < 8) return false;
    *v = ld64(r->d + r->pos);
    r->pos += 8;
    return true;
}

/* Reads a string header: length then checks the bytes are there; *s points into the file. */
static bool rdstr(reader *r, const uint8_t **s, uint64_t *len) {
    uint64_t n;
    *len = 0;
    if (!rd64(r, &n)) return false;
    *len = n;
    if (n > left(r)) return false;
    *s = r->d + r->pos;
    *len = n;
    r->pos += (size_t)n;
    return true;
}

/* Prints up to 40 bytes of a name for messages, replacing control bytes. */
static const char *shortname(const uint8_t *s, uint64_t n, char *buf, size_t len) {
    size_t o = 0;
    for (uint64_t i = 0; i < n && o + 4 < len && i < 40; i++) buf[o++] = (s[i] < 32 || s[i] == 127) ? '?' : (char)s[i];
    if (n > 40 && o + 4 < len) { memcpy(buf + o, "...", 3); o += 3; }
    buf[o] = '\0';
    return buf;
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Builds a table of >= 2n slots; returns -1 on OOM, else the index of the first duplicate of an
 * earlier name (>= 0 means "names[ret] duplicates an earlier one"), or INT64_MAX when none. */
static int64_t hash_build(char *const *names, size_t stride, int64_t n, int64_t **tab, uint64_t *mask) {
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2) cap <<= 1;
    int64_t *t = malloc(cap * sizeof *t);
    if (!t) return -1;
    memset(t, 0xff, cap * sizeof *t);
    *tab = t;
    *mask = cap - 1;
    for (int64_t i = 0; i < n; i++) {
        const char *nm = *(char *const *)((const char *)names + (size_t)i * stride);
        uint64_t h = hash_str(nm) & *mask;
        for (;;) {
            if (t[h] < 0) { t[h] = i; break; }
            const char *o = *(char *const *)((const char *)names + (size_t)t[h] * stride);
            if (strcmp(o, nm) == 0) return i;
            h = (h + 1) & *mask;
        }
    }
    return INT64_MAX;
}

static int64_t hash_find(const int64_t *tab, uint64_t mask, char *const *names, size_t stride, const char *name) {
    if (!tab || !name) return -1;
    uint64_t h = hash_str(name) & mask;
    while (tab[h] >= 0) {
        const char *o = *(char *const *)((const char *)names + (size_t)tab[h] * stride);
        if (strcmp(o, name) == 0) return tab[h];
        h = (h + 1) & mask;
    }
    return -1;
}

void sdc_gguf_close(sdc_gguf *g) {
    if (!g) return;
    if (g->kv)
        for (int64_t i = 0; i < g->n_kv; i++) {
            free(g->kv[i].key);
            free(g->kv[i].str_off);
        }
    if (g->names)
        for (int64_t i = 0; i < g->n_tensors; i++) free(g->names[i]);
    free(g->kv);
    free(g->names);
    free(g->tensors);
    free(g->offsets);
    free(g->tidx);
    free(g->kidx);
    sdc_unmap(&g->map);
    free(g);
}

/* ------------------------------------------------------------------ parsing */

static sdc_status parse_header(reader *r, sdc_gguf *g, uint64_t *n_tensors, uint64_t *n_kv) {
    if (r->size < 4) return rfail(r, SDC_E_FORMAT, "file too short for a GGUF header (%zu bytes)", r->size);
    if (memcmp(r->d, GGUF_MAGIC, 4) != 0) {
        char m[8];
        shortname(r->d, 4, m, sizeof m);
        return rfail(r, SDC_E_FORMAT, "bad magic '%s', expected 'GGUF'", m);
    }
    r->pos = 4;
    uint32_t v;
    if (!rd32(r, &v)) return rfail(r, SDC_E_FORMAT, "truncated header: no version (%zu bytes)", r->size);
    if (v != 0 && (v & 0xffffu) == 0)
        return rfail(r, SDC_E_UNSUPPORTED,
                     "version field 0x%08" PRIx32 " looks byte-swapped: big-endian GGUF files are not supported", v);
    if (v == 1) return rfail(r, SDC_E_UNSUPPORTED, "GGUF v1 is obsolete and not supported (need v2 or v3)");
    if (v == 0) return rfail(r, SDC_E_FORMAT, "bad GGUF version 0");
    if (v > 3) return rfail(r, SDC_E_UNSUPPORTED, "GGUF version %" PRIu32 " not supported (need v2 or v3)", v);
    g->version = v;
    if (!rd64(r, n_tensors) || !rd64(r, n_kv))
        return rfail(r, SDC_E_FORMAT, "truncated header: file is %zu bytes, header needs 24", r->size);
    /* Every tensor info takes at least 8 (name) + 4 + 8 + 4 + 8 = 32 bytes, every kv at least
     * 8 (key) + 4 (type) + 1 (value); reject counts the remaining bytes cannot hold. */
    if (*n_kv > left(r) / 13)
        return rfail(r, SDC_E_FORMAT, "n_kv %" PRIu64 " cannot fit in the %" PRIu64 " bytes left", *n_kv, left(r));
    if (*n_tensors > left(r) / 32)
        return rfail(r, SDC_E_FORMAT, "n_tensors %" PRIu64 " cannot fit in the %" PRIu64 " bytes left", *n_tensors,
                     left(r));
    return SDC_OK;
}

static sdc_status parse_kv(reader *r, sdc_gguf *g, int64_t i) {
    gguf_kv *kv = &g->kv[i];
    const uint8_t *k;
    uint64_t klen;
    char nb[64];
    size_t at = r->pos;
    if (!rdstr(r, &k, &klen))
        return rfail(r, SDC_E_FORMAT, "kv %" PRId64 " at offset %zu: key of %" PRIu64 " bytes runs past end of file", i, at,
                     klen);
    if (klen == 0) return rfail(r, SDC_E_FORMAT, "kv %" PRId64 ": empty key", i);
    if (klen > GGUF_MAX_KEY)
        return rfail(r, SDC_E_FORMAT, "kv %" PRId64 ": key length %" PRIu64 " exceeds %u", i, klen, GGUF_MAX_KEY);
    if (memchr(k, 0, (size_t)klen))
        return rfail(r, SDC_E_FORMAT, "kv %" PRId64 " '%s': key contains a NUL byte", i, shortname(k, klen, nb, sizeof nb));
    kv->key = sdc_strndup((const char *)k, (size_t)klen);
    if (!kv->key) return rfail(r, SDC_E_NOMEM, "out of memory");
    const char *key = shortname(k, klen, nb, sizeof nb);
    uint32_t t;
    if (!rd32(r, &t)) return rfail(r, SDC_E_FORMAT, "kv %" PRId64 " '%s': truncated before its type", i, key);
    if (t > SDC_GGUF_F64) return rfail(r, SDC_E_FORMAT, "kv %" PRId64 " '%s': unknown value type %" PRIu32, i, key, t);
    kv->type = t;
    kv->p = r->d + r->pos;
    if (t == SDC_GGUF_STRING) {
        if (!rdstr(r, &kv->p, &kv->n))
            return rfail(r, SDC_E_FORMAT, "kv %" PRId64 " '%s': string of %" PRIu64 " bytes runs past end of file", i, key,
                         kv->n);
        return SDC_OK;
    }
    if (t != SDC_GGUF_ARRAY) {
        size_t sz = kv_scalar_size(t);
        if (left(r) < sz) return rfail(r, SDC_E_FORMAT, "kv %" PRId64 " '%s': %s value runs past end of file", i, key, kv_type_name(t));
        r->pos += sz;
        return SDC_OK;
    }
    uint32_t at_;
    uint64_t n;
    if (!rd32(r, &at_) || !rd64(r, &n))
        return rfail(r, SDC_E_FORMAT, "kv %" PRId64 " '%s': truncated array header", i, key);
    if (at_ == SDC_GGUF_ARRAY)
        return rfail(r, SDC_E_UNSUPPORTED, "kv %" PRId64 " '%s': nested arrays are not supported", i, key);
    if (at_ > SDC_GGUF_F64)
        return rfail(r, SDC_E_FORMAT, "kv %" PRId64 " '%s': unknown array element type %" PRIu32, i, key, at_);
    kv->arr_type = at_;
    kv->n = n;
    kv->p = r->d + r->pos;
    if (at_ != SDC_GGUF_STRING) {
        uint64_t bytes;
        if (!sdc_mul_u64(n, kv_scalar_size(at_), &bytes) || bytes > left(r))
            return rfail(r, SDC_E_FORMAT, "kv %" PRId64 " '%s': array of %" PRIu64 " %s runs past end of file (%" PRIu64 " bytes left)",
                         i, key, n, kv_type_name(at_), left(r));
        r->pos += (size_t)bytes;
        return SDC_OK;
    }
    if (n > left(r) / 8)
        return rfail(r, SDC_E_FORMAT, "kv %" PRId64 " '%s': array of %" PRIu64 " strings cannot fit in the %" PRIu64 " bytes left",
                     i, key, n, left(r));
    kv->str_off = malloc((n ? n : 1) * sizeof *kv->str_off);
    if (!kv->str_off) return rfail(r, SDC_E_NOMEM, "out of memory");
    for (uint64_t j = 0; j < n; j++) {
        kv->str_off[j] = (uint64_t)(r->d + r->pos - kv->p);
        const uint8_t *s;
        uint64_t sl;
        if (!rdstr(r, &s, &sl))
            return rfail(r, SDC_E_FORMAT, "kv %" PRId64 " '%s': string %" PRIu64 " of %" PRIu64 " runs past end of file", i, key, j, n);
    }
    return SDC_OK;
}

static sdc_status parse_tensor_info(reader *r, sdc_gguf *g, int64_t i) {
    const uint8_t *s;
    uint64_t sl;
    char nb[64];
    size_t at = r->pos;
    if (!rdstr(r, &s, &sl))
        return rfail(r, SDC_E_FORMAT, "tensor %" PRId64 " at offset %zu: name of %" PRIu64 " bytes runs past end of file", i,
                     at, sl);
    if (sl == 0) return rfail(r, SDC_E_FORMAT, "tensor %" PRId64 ": empty name", i);
    if (sl > GGUF_MAX_NAME)
        return rfail(r, SDC_E_FORMAT, "tensor %" PRId64 ": name length %" PRIu64 " exceeds %u", i, sl, GGUF_MAX_NAME);
    const char *nm = shortname(s, sl, nb, sizeof nb);
    if (memchr(s, 0, (size_t)sl)) return rfail(r, SDC_E_FORMAT, "tensor %" PRId64 " '%s': name contains a NUL byte", i, nm);
    g->names[i] = sdc_strndup((const char *)s, (size_t)sl);
    if (!g->names[i]) return rfail(r, SDC_E_NOMEM, "out of memory");
    uint32_t nd;
    if (!rd32(r, &nd)) return rfail(r, SDC_E_FORMAT, "tensor %" PRId64 " '%s': truncated before n_dims", i, nm);
    if (nd < 1 || nd > GGUF_MAX_DIMS)
        return rfail(r, SDC_E_FORMAT, "tensor %" PRId64 " '%s': n_dims %" PRIu32 ", expected 1..%d", i, nm, nd, GGUF_MAX_DIMS);
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t nel = 1;
    for (uint32_t d = 0; d < nd; d++) {
        if (!rd64(r, &ne[d])) return rfail(r, SDC_E_FORMAT, "tensor %" PRId64 " '%s': truncated in its dimensions", i, nm);
        if (ne[d] == 0) return rfail(r, SDC_E_FORMAT, "tensor %" PRId64 " '%s': ne[%" PRIu32 "] is 0", i, nm, d);
        if (!sdc_mul_u64(nel, ne[d], &nel) || nel > (uint64_t)INT64_MAX)
            return rfail(r, SDC_E_FORMAT, "tensor %" PRId64 " '%s': element count overflows", i, nm);
    }
    uint32_t gt;
    uint64_t off;
    if (!rd32(r, &gt) || !rd64(r, &off))
        return rfail(r, SDC_E_FORMAT, "tensor %" PRId64 " '%s': truncated before its type and offset", i, nm);
    int st = sdc_gguf_type_to_sdc(gt);
    if (st < 0) {
        const char *tn = ggml_type_name(gt);
        if (tn) return rfail(r, SDC_E_UNSUPPORTED, "tensor %" PRId64 " '%s': ggml type %" PRIu32 " (%s) is not supported", i, nm, gt, tn);
        return rfail(r, SDC_E_UNSUPPORTED, "tensor %" PRId64 " '%s': unknown ggml type %" PRIu32, i, nm, gt);
    }
    const sdc_type_traits *tr = sdc_type_traits_of((sdc_type)st);
    if (ne[0] % (uint64_t)tr->block)
        return rfail(r, SDC_E_FORMAT, "tensor %" PRId64 " '%s': row length ne[0]=%" PRIu64 " is not a multiple of the %s block size %d",
                     i, nm, ne[0], tr->name, tr->block);
    uint64_t nbytes;
    if (!sdc_type_bytes((sdc_type)st, nel, &nbytes))
        return rfail(r, SDC_E_FORMAT, "tensor %" PRId64 " '%s': byte size overflows", i, nm);
    sdc_tensor *t = &g->tensors[i];
    t->name = g->names[i];
    t->type = (sdc_type)st;
    t->ndim = (int)nd;
    for (uint32_t d = 0; d < nd; d++) t->shape[nd - 1 - d] = (int64_t)ne[d];
    t->nbytes = nbytes;
    g->offsets[i] = off;
    return SDC_OK;
}

typedef struct span { uint64_t off, end; int64_t idx; } span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->off != y->off) return x->off < y->off ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static sdc_status check_data(reader *r, sdc_gguf *g) {
    int64_t n = g->n_tensors;
    uint64_t fsize = r->size;
    for (int64_t i = 0; i < n; i++) {
        const sdc_tensor *t = &g->tensors[i];
        uint64_t off = g->offsets[i], start, end;
        if (off % g->alignment)
            return rfail(r, SDC_E_FORMAT, "tensor %" PRId64 " '%s': offset %" PRIu64 " is not a multiple of the alignment %" PRIu64,
                         i, t->name, off, g->alignment);
        if (!sdc_add_u64(g->data_start, off, &start) || !sdc_add_u64(start, t->nbytes, &end))
            return rfail(r, SDC_E_FORMAT, "tensor %" PRId64 " '%s': data offset %" PRIu64 " + %" PRIu64 " bytes lies past end of file (%" PRIu64 " bytes)",
                         i, t->name, off, t->nbytes, fsize);
        if (end > fsize)
            return rfail(r, SDC_E_FORMAT, "tensor %" PRId64 " '%s': data [%" PRIu64 ", %" PRIu64 ") extends past end of file (%" PRIu64 " bytes)",
                         i, t->name, start, start + t->nbytes, fsize);
        g->tensors[i].data = r->d + start;
    }
    if (n < 2) return SDC_OK;
    span *sp = malloc((size_t)n * sizeof *sp);
    if (!sp) return rfail(r, SDC_E_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) sp[i] = (span){g->offsets[i], g->offsets[i] + g->tensors[i].nbytes, i};
    qsort(sp, (size_t)n, sizeof *sp, span_cmp);
    for (int64_t i = 1; i < n; i++)
        if (sp[i].off < sp[i - 1].end) {
            int64_t a = sp[i - 1].idx, b = sp[i].idx;
            sdc_status st = rfail(r, SDC_E_FORMAT,
                                  "tensor %" PRId64 " '%s' data [%" PRIu64 ", %" PRIu64 ") overlaps tensor %" PRId64 " '%s' data [%" PRIu64 ", %" PRIu64 ")",
                                  b, g->tensors[b].name, sp[i].off, sp[i].end, a, g->tensors[a].name, sp[i - 1].off, sp[i - 1].end);
            free(sp);
            return st;
        }
    free(sp);
    return SDC_OK;
}

static sdc_status parse(reader *r, sdc_gguf *g) {
    uint64_t nt = 0, nk = 0;
    sdc_status st = parse_header(r, g, &nt, &nk);
    if (st) return st;
    g->kv = calloc(nk ? (size_t)nk : 1, sizeof *g->kv);
    if (!g->kv) return rfail(r, SDC_E_NOMEM, "out of memory");
    g->n_kv = (int64_t)nk;
    for (int64_t i = 0; i < g->n_kv; i++)
        if ((st = parse_kv(r, g, i))) return st;
    int64_t dup = hash_build(&g->kv[0].key, sizeof(gguf_kv), g->n_kv, &g->kidx, &g->kmask);
    if (dup < 0) return rfail(r, SDC_E_NOMEM, "out of memory");
    if (dup != INT64_MAX) return rfail(r, SDC_E_FORMAT, "kv %" PRId64 ": duplicate key '%s'", dup, g->kv[dup].key);

    g->alignment = GGUF_DEFAULT_ALIGN;
    int64_t ai = sdc_gguf_kv_find(g, "general.alignment");
    if (ai >= 0) {
        if (g->kv[ai].type != SDC_GGUF_U32)
            return rfail(r, SDC_E_FORMAT, "general.alignment has type %s, expected u32", kv_type_name(g->kv[ai].type));
        uint32_t a = ld32(g->kv[ai].p);
        if (a == 0 || (a & (a - 1)))
            return rfail(r, SDC_E_FORMAT, "general.alignment %" PRIu32 " is not a nonzero power of two", a);
        g->alignment = a;
    }

    size_t tn = nt ? (size_t)nt : 1;
    g->tensors = calloc(tn, sizeof *g->tensors);
    g->names = calloc(tn, sizeof *g->names);
    g->offsets = calloc(tn, sizeof *g->offsets);
    if (!g->tensors || !g->names || !g->offsets) return rfail(r, SDC_E_NOMEM, "out of memory");
    g->n_tensors = (int64_t)nt;
    for (int64_t i = 0; i < g->n_tensors; i++)
        if ((st = parse_tensor_info(r, g, i))) {
            g->n_tensors = i + 1; /* names[0..i] may be allocated */
            return st;
        }
    dup = hash_build(g->names, sizeof(char *), g->n_tensors, &g->tidx, &g->tmask);
    if (dup < 0) return rfail(r, SDC_E_NOMEM, "out of memory");
    if (dup != INT64_MAX) return rfail(r, SDC_E_FORMAT, "tensor %" PRId64 ": duplicate name '%s'", dup, g->names[dup]);

    uint64_t ds = ((uint64_t)r->pos + g->alignment - 1) & ~(g->alignment - 1);
    if (g->n_tensors > 0 && ds > r->size)
        return rfail(r, SDC_E_FORMAT, "data section would start at %" PRIu64 ", past end of file (%zu bytes)", ds, r->size);
    g->data_start = ds;
    return check_data(r, g);
}

static sdc_status open_common(const char *fname, const uint8_t *data, size_t size, sdc_gguf *g, char *err,
                              size_t errlen) {
    reader r = {fname, data, size, 0, err, errlen};
    g->data = data;
    g->size = size;
    static const uint8_t empty[1] = {0};
    if (!r.d) r.d = empty; /* an empty file: every read fails on the length check */
    return parse(&r, g);
}

sdc_status sdc_gguf_open(const char *path, sdc_gguf **out, char *err, size_t errlen) {
    *out = NULL;
    sdc_gguf *g = calloc(1, sizeof *g);
    if (!g) return sdc_fail(err, errlen, SDC_E_NOMEM, "%s: out of memory", path);
    sdc_status st = sdc_map_file(path, &g->map, err, errlen);
    if (st == SDC_OK) st = open_common(path, g->map.data, g->map.size, g, err, errlen);
    if (st != SDC_OK) {
        sdc_gguf_close(g);
        return st;
    }
    *out = g;
    return SDC_OK;
}

sdc_status sdc_gguf_open_memory(const void *data, size_t size, sdc_gguf **out, char *err, size_t errlen) {
    *out = NULL;
    if (!data && size) return sdc_fail(err, errlen, SDC_E_INVALID, "<memory>: NULL buffer of %zu bytes", size);
    sdc_gguf *g = calloc(1, sizeof *g);
    if (!g) return sdc_fail(err, errlen, SDC_E_NOMEM, "<memory>: out of memory");
    sdc_status st = open_common("<memory>", data, size, g, err, errlen);
    if (st != SDC_OK) {
        sdc_gguf_close(g);
        return st;
    }
    *out = g;
    return SDC_OK;
}

/* ------------------------------------------------------------------ accessors */

uint32_t sdc_gguf_version(const sdc_gguf *g) { return g->version; }
uint64_t sdc_gguf_alignment(const sdc_gguf *g) { return g->alignment; }
const sdc_map *sdc_gguf_map(const sdc_gguf *g) { return &g->map; }
int64_t sdc_gguf_tensor_count(const sdc_gguf *g) { return g->n_tensors; }

const sdc_tensor *sdc_gguf_tensor(const sdc_gguf *g, int64_t i) {
    return (i >= 0 && i < g->n_tensors) ? &g->tensors[i] : NULL;
}

const sdc_tensor *sdc_gguf_find_tensor(const sdc_gguf *g, const char *name) {
    int64_t i = hash_find(g->tidx, g->tmask, g->names, sizeof(char *), name);
    return i >= 0 ? &g->tensors[i] : NULL;
}

int64_t sdc_gguf_kv_count(const sdc_gguf *g) { return g->n_kv; }

int64_t sdc_gguf_kv_find(const sdc_gguf *g, const char *key) {
    if (!g->kv) return -1;
    return hash_find(g->kidx, g->kmask, &g->kv[0].key, sizeof(gguf_kv), key);
}

static const gguf_kv *kv_at(const sdc_gguf *g, int64_t i) { return (i >= 0 && i < g->n_kv) ? &g->kv[i] : NULL; }

const char *sdc_gguf_kv_key(const sdc_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv ? kv->key : NULL;
}

sdc_gguf_kv_type sdc_gguf_kv_type_of(const sdc_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv ? (sdc_gguf_kv_type)kv->type : (sdc_gguf_kv_type)-1;
}

static bool kv_scalar(const sdc_gguf *g, int64_t i, scalar *s) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || !kv_scalar_size(kv->type)) return false;
    *s = load_scalar(kv->type, kv->p);
    return true;
}

bool sdc_gguf_kv_get_i64(const sdc_gguf *g, int64_t i, int64_t *v) {
    scalar s;
    if (!kv_scalar(g, i, &s)) return false;
    if (s.kind == 0) {
        if (s.u > (uint64_t)INT64_MAX) return false;
        *v = (int64_t)s.u;
    } else if (s.kind == 1) {
        *v = s.i;
    } else {
        if (!(s.f >= -9223372036854775808.0 && s.f < 9223372036854775808.0)) return false;
        *v = (int64_t)s.f;
    }
    return true;
}

bool sdc_gguf_kv_get_u64(const sdc_gguf *g, int64_t i, uint64_t *v) {
    scalar s;
    if (!kv_scalar(g, i, &s)) return false;
    if (s.kind == 0) {
        *v = s.u;
    } else if (s.kind == 1) {
        if (s.i < 0) return false;
        *v = (uint64_t)s.i;
    } else {
        if (!(s.f >= 0 && s.f < 18446744073709551616.0)) return false;
        *v = (uint64_t)s.f;
    }
    return true;
}

bool sdc_gguf_kv_get_f64(const sdc_gguf *g, int64_t i, double *v) {
    scalar s;
    if (!kv_scalar(g, i, &s)) return false;
    *v = s.kind == 0 ? (double)s.u : s.kind == 1 ? (double)s.i : s.f;
    return true;
}

bool sdc_gguf_kv_get_str(const sdc_gguf *g, int64_t i, const char **s, uint64_t *len) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || kv->type != SDC_GGUF_STRING) return false;
    *s = (const char *)kv->p;
    *len = kv->n;
    return true;
}

sdc_gguf_kv_type sdc_gguf_kv_array_type(const sdc_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv) return (sdc_gguf_kv_type)-1;
    return (sdc_gguf_kv_type)(kv->type == SDC_GGUF_ARRAY ? kv->arr_type : kv->type);
}

uint64_t sdc_gguf_kv_array_len(const sdc_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return (kv && kv->type == SDC_GGUF_ARRAY) ? kv->n : 0;
}

const void *sdc_gguf_kv_array_data(const sdc_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || kv->type != SDC_GGUF_ARRAY || kv->arr_type == SDC_GGUF_STRING) return NULL;
    return kv->p;
}

bool sdc_gguf_kv_array_str(const sdc_gguf *g, int64_t i, uint64_t j, const char **s, uint64_t *len) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || kv->type != SDC_GGUF_ARRAY || kv->arr_type != SDC_GGUF_STRING || j >= kv->n) return false;
    const uint8_t *p = kv->p + kv->str_off[j];
    *len = ld64(p);
    *s = (const char *)p + 8;
    return true;
}

/* ------------------------------------------------------------------ formatting */

typedef struct sbuf { char *b; size_t len, pos; } sbuf;

static bool sb_full(const sbuf *s) { return s->pos + 1 >= s->len; }

static void sb_printf(sbuf *s, const char *fmt, ...) SDC_PRINTF(2, 3);
static void sb_printf(sbuf *s, const char *fmt, ...) {
    if (sb_full(s)) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->b + s->pos, s->len - s->pos, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    s->pos += (size_t)n;
    if (s->pos >= s->len) s->pos = s->len - 1;
}

/* A string quoted with C-style escapes, at most max bytes of it (cut on a UTF-8 boundary). */
static void sb_quoted(sbuf *s, const uint8_t *p, uint64_t n, uint64_t max) {
    uint64_t m = n;
    if (m > max) {
        m = max;
        while (m > 0 && (p[m] & 0xc0) == 0x80) m--;
    }
    sb_printf(s, "\"");
    for (uint64_t k = 0; k < m && !sb_full(s); k++) {
        uint8_t c = p[k];
        if (c == '"' || c == '\\') sb_printf(s, "\\%c", c);
        else if (c == '\n') sb_printf(s, "\\n");
        else if (c == '\t') sb_printf(s, "\\t");
        else if (c < 32 || c == 127) sb_printf(s, "\\x%02x", c);
        else sb_printf(s, "%c", c);
    }
    sb_printf(s, m < n ? "\"..." : "\"");
}

static void sb_scalar(sbuf *s, uint32_t t, const uint8_t *p) {
    scalar v = load_scalar(t, p);
    if (t == SDC_GGUF_BOOL) sb_printf(s, "%s", v.u ? "true" : "false");
    else if (v.kind == 0) sb_printf(s, "%" PRIu64, v.u);
    else if (v.kind == 1) sb_printf(s, "%" PRId64, v.i);
    else sb_printf(s, t == SDC_GGUF_F32 ? "%.9g" : "%.17g", v.f);
}

void sdc_gguf_kv_format(const sdc_gguf *g, int64_t i, char *buf, size_t len) {
    if (!buf || !len) return;
    buf[0] = '\0';
    const gguf_kv *kv = kv_at(g, i);
    if (!kv) return;
    sbuf s = {buf, len, 0};
    if (kv->type == SDC_GGUF_STRING) {
        sb_quoted(&s, kv->p, kv->n, 200);
        return;
    }
    if (kv->type != SDC_GGUF_ARRAY) {
        sb_scalar(&s, kv->type, kv->p);
        return;
    }
    sb_printf(&s, "[%s x %" PRIu64 "]", kv_type_name(kv->arr_type), kv->n);
    uint64_t shown = kv->n < 8 ? kv->n : 8;
    size_t es = kv_scalar_size(kv->arr_type);
    for (uint64_t j = 0; j < shown && !sb_full(&s); j++) {
        sb_printf(&s, j ? ", " : " ");
        if (kv->arr_type == SDC_GGUF_STRING) {
            const uint8_t *p = kv->p + kv->str_off[j];
            sb_quoted(&s, p + 8, ld64(p), 40);
        } else {
            sb_scalar(&s, kv->arr_type, kv->p + j * es);
        }
    }
    if (shown < kv->n) sb_printf(&s, ", ...");
}

/* ------------------------------------------------------------------ writer */

typedef struct wkv {
    char *key;
    uint8_t *val;      /* serialized: u32 type, then the value as it goes in the file */
    size_t val_len;
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t ggml_type;
    int ndim;
    uint64_t ne[GGUF_MAX_DIMS];   /* innermost first */
    uint64_t nbytes, offset;
} wtensor;

struct sdc_gguf_writer {
    uint32_t alignment;
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    FILE *f;
    bool begun, failed;
    size_t next;       /* next tensor whose data is expected */
};

sdc_gguf_writer *sdc_gguf_writer_new(uint32_t alignment) {
    if (alignment == 0) alignment = GGUF_DEFAULT_ALIGN;
    if (alignment & (alignment - 1)) return NULL;
    sdc_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->alignment = GGUF_DEFAULT_ALIGN;
    if (alignment != GGUF_DEFAULT_ALIGN && sdc_gguf_writer_set_u32(w, "general.alignment", alignment) != SDC_OK) {
        sdc_gguf_writer_free(w);
        return NULL;
    }
    return w;
}

void sdc_gguf_writer_free(sdc_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

/* Sets key to the serialized value (taking ownership of val); replaces an existing value. */
static sdc_status w_set(sdc_gguf_writer *w, const char *key, uint8_t *val, size_t val_len) {
    if (!w || !key || !*key || strlen(key) > GGUF_MAX_KEY || w->begun) {
        free(val);
        return SDC_E_INVALID;
    }
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0) {
            free(w->kv[i].val);
            w->kv[i].val = val;
            w->kv[i].val_len = val_len;
            return SDC_OK;
        }
    if (w->n_kv == w->cap_kv) {
        size_t nc = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv *n = realloc(w->kv, nc * sizeof *n);
        if (!n) { free(val); return SDC_E_NOMEM; }
        w->kv = n;
        w->cap_kv = nc;
    }
    char *k = sdc_strndup(key, strlen(key));
    if (!k) { free(val); return SDC_E_NOMEM; }
    w->kv[w->n_kv++] = (wkv){k, val, val_len};
    return SDC_OK;
}

static sdc_status w_set_scalar(sdc_gguf_writer *w, const char *key, uint32_t type, const void *v, size_t size) {
    if (w && key && strcmp(key, "general.alignment") == 0) {
        uint32_t a;
        if (type != SDC_GGUF_U32) return SDC_E_INVALID;
        memcpy(&a, v, 4);
        if (a == 0 || (a & (a - 1)) || w->begun) return SDC_E_INVALID;
        w->alignment = a;
    }
    uint8_t *b = malloc(4 + size);
    if (!b) return SDC_E_NOMEM;
    memcpy(b, &type, 4);
    memcpy(b + 4, v, size);
    return w_set(w, key, b, 4 + size);
}

sdc_status sdc_gguf_writer_set_u32(sdc_gguf_writer *w, const char *key, uint32_t value) {
    return w_set_scalar(w, key, SDC_GGUF_U32, &value, 4);
}
sdc_status sdc_gguf_writer_set_i32(sdc_gguf_writer *w, const char *key, int32_t value) {
    return w_set_scalar(w, key, SDC_GGUF_I32, &value, 4);
}
sdc_status sdc_gguf_writer_set_u64(sdc_gguf_writer *w, const char *key, uint64_t value) {
    return w_set_scalar(w, key, SDC_GGUF_U64, &value, 8);
}
sdc_status sdc_gguf_writer_set_f32(sdc_gguf_writer *w, const char *key, float value) {
    return w_set_scalar(w, key, SDC_GGUF_F32, &value, 4);
}
sdc_status sdc_gguf_writer_set_bool(sdc_gguf_writer *w, const char *key, bool value) {
    uint8_t b = value ? 1 : 0;
    return w_set_scalar(w, key, SDC_GGUF_BOOL, &b, 1);
}

sdc_status sdc_gguf_writer_set_str(sdc_gguf_writer *w, const char *key, const char *value) {
    if (!value) return SDC_E_INVALID;
    if (key && strcmp(key, "general.alignment") == 0) return SDC_E_INVALID;
    uint64_t n = strlen(value);
    uint8_t *b = malloc(12 + (size_t)n);
    if (!b) return SDC_E_NOMEM;
    uint32_t t = SDC_GGUF_STRING;
    memcpy(b, &t, 4);
    memcpy(b + 4, &n, 8);
    memcpy(b + 12, value, (size_t)n);
    return w_set(w, key, b, 12 + (size_t)n);
}

sdc_status sdc_gguf_writer_set_arr(sdc_gguf_writer *w, const char *key, sdc_gguf_kv_type elem_type,
                                   const void *data, uint64_t n) {
    size_t es = kv_scalar_size((uint32_t)elem_type);
    uint64_t bytes;
    if (!es || (n && !data) || !sdc_mul_u64(n, es, &bytes) || bytes > SIZE_MAX - 16) return SDC_E_INVALID;
    if (key && strcmp(key, "general.alignment") == 0) return SDC_E_INVALID;
    uint8_t *b = malloc(16 + (size_t)bytes);
    if (!b) return SDC_E_NOMEM;
    uint32_t t = SDC_GGUF_ARRAY, et = (uint32_t)elem_type;
    memcpy(b, &t, 4);
    memcpy(b + 4, &et, 4);
    memcpy(b + 8, &n, 8);
    if (bytes) memcpy(b + 16, data, (size_t)bytes);
    if (elem_type == SDC_GGUF_BOOL)
        for (uint64_t j = 0; j < n; j++) b[16 + j] = b[16 + j] ? 1 : 0;
    return w_set(w, key, b, 16 + (size_t)bytes);
}

sdc_status sdc_gguf_writer_set_arr_str(sdc_gguf_writer *w, const char *key, const char *const *strs, uint64_t n) {
    if ((n && !strs) || (key && strcmp(key, "general.alignment") == 0)) return SDC_E_INVALID;
    size_t total = 16;
    for (uint64_t j = 0; j < n; j++) {
        if (!strs[j]) return SDC_E_INVALID;
        size_t l = strlen(strs[j]);
        if (l > SIZE_MAX - 8 - total) return SDC_E_INVALID;
        total += 8 + l;
    }
    uint8_t *b = malloc(total);
    if (!b) return SDC_E_NOMEM;
    uint32_t t = SDC_GGUF_ARRAY, et = SDC_GGUF_STRING;
    memcpy(b, &t, 4);
    memcpy(b + 4, &et, 4);
    memcpy(b + 8, &n, 8);
    size_t o = 16;
    for (uint64_t j = 0; j < n; j++) {
        uint64_t l = strlen(strs[j]);
        memcpy(b + o, &l, 8);
        memcpy(b + o + 8, strs[j], (size_t)l);
        o += 8 + (size_t)l;
    }
    return w_set(w, key, b, total);
}

sdc_status sdc_gguf_writer_add_tensor(sdc_gguf_writer *w, const char *name, sdc_type type, int ndim,
                                      const int64_t *shape) {
    if (!w || w->begun || !name || !*name || strlen(name) > GGUF_WRITER_MAX_NAME) return SDC_E_INVALID;
    if (ndim < 1 || ndim > GGUF_MAX_DIMS || !shape) return SDC_E_INVALID;
    int gt = sdc_gguf_type_from_sdc(type);
    if (gt < 0) return SDC_E_UNSUPPORTED;
    wtensor t = {NULL, (uint32_t)gt, ndim, {0}, 0, 0};
    uint64_t nel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] <= 0) return SDC_E_INVALID;
        t.ne[ndim - 1 - d] = (uint64_t)shape[d];
        if (!sdc_mul_u64(nel, (uint64_t)shape[d], &nel) || nel > (uint64_t)INT64_MAX) return SDC_E_INVALID;
    }
    if (t.ne[0] % (uint64_t)sdc_type_traits_of(type)->block) return SDC_E_INVALID;
    if (!sdc_type_bytes(type, nel, &t.nbytes)) return SDC_E_INVALID;
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) return SDC_E_INVALID;
    if (w->n_t == w->cap_t) {
        size_t nc = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *n = realloc(w->t, nc * sizeof *n);
        if (!n) return SDC_E_NOMEM;
        w->t = n;
        w->cap_t = nc;
    }
    t.name = sdc_strndup(name, strlen(name));
    if (!t.name) return SDC_E_NOMEM;
    w->t[w->n_t++] = t;
    return SDC_OK;
}

static bool w_put(sdc_gguf_writer *w, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, w->f) != n) w->failed = true;
    return !w->failed;
}

static bool w_pad(sdc_gguf_writer *w, uint64_t written) {
    static const uint8_t zeros[256] = {0};
    uint64_t pad = (w->alignment - written % w->alignment) % w->alignment;
    while (pad && !w->failed) {
        size_t k = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        w_put(w, zeros, k);
        pad -= k;
    }
    return !w->failed;
}

static bool w_str(sdc_gguf_writer *w, const char *s) {
    uint64_t n = strlen(s);
    return w_put(w, &n, 8) && w_put(w, s, (size_t)n);
}

sdc_status sdc_gguf_writer_begin(sdc_gguf_writer *w, FILE *f, char *err, size_t errlen) {
    if (!w || !f || w->begun) return sdc_fail(err, errlen, SDC_E_INVALID, "gguf writer: begin called twice or without a file");
    w->f = f;
    w->begun = true;
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        uint64_t padded = w->t[i].nbytes + (w->alignment - w->t[i].nbytes % w->alignment) % w->alignment;
        if (!sdc_add_u64(off, padded, &off))
            return sdc_fail(err, errlen, SDC_E_INVALID, "gguf writer: total tensor data size overflows");
    }
    uint32_t version = 3;
    uint64_t nt = w->n_t, nk = w->n_kv, pos = 24;
    w_put(w, GGUF_MAGIC, 4);
    w_put(w, &version, 4);
    w_put(w, &nt, 8);
    w_put(w, &nk, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        w_str(w, w->kv[i].key);
        w_put(w, w->kv[i].val, w->kv[i].val_len);
        pos += 8 + strlen(w->kv[i].key) + w->kv[i].val_len;
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        uint32_t nd = (uint32_t)t->ndim;
        w_str(w, t->name);
        w_put(w, &nd, 4);
        w_put(w, t->ne, 8 * (size_t)nd);
        w_put(w, &t->ggml_type, 4);
        w_put(w, &t->offset, 8);
        pos += 8 + strlen(t->name) + 4 + 8 * (uint64_t)nd + 4 + 8;
    }
    if (!w_pad(w, pos)) return sdc_fail(err, errlen, SDC_E_IO, "gguf writer: write failed");
    return SDC_OK;
}

sdc_status sdc_gguf_writer_write_data(sdc_gguf_writer *w, const void *data, uint64_t nbytes, char *err,
                                      size_t errlen) {
    if (!w || !w->begun) return sdc_fail(err, errlen, SDC_E_INVALID, "gguf writer: write_data before begin");
    if (w->failed) return sdc_fail(err, errlen, SDC_E_IO, "gguf writer: an earlier write failed");
    if (w->next >= w->n_t)
        return sdc_fail(err, errlen, SDC_E_INVALID, "gguf writer: data for more tensors than the %zu declared", w->n_t);
    const wtensor *t = &w->t[w->next];
    if (nbytes != t->nbytes || (nbytes && !data))
        return sdc_fail(err, errlen, SDC_E_INVALID, "gguf writer: tensor '%s': got %" PRIu64 " bytes of data, declared %" PRIu64,
                        t->name, nbytes, t->nbytes);
    if (nbytes > SIZE_MAX) return sdc_fail(err, errlen, SDC_E_INVALID, "gguf writer: tensor '%s' too large", t->name);
    if (!w_put(w, data, (size_t)nbytes) || !w_pad(w, nbytes))
        return sdc_fail(err, errlen, SDC_E_IO, "gguf writer: tensor '%s': write failed", t->name);
    w->next++;
    return SDC_OK;
}

sdc_status sdc_gguf_writer_end(sdc_gguf_writer *w, char *err, size_t errlen) {
    if (!w || !w->begun) return sdc_fail(err, errlen, SDC_E_INVALID, "gguf writer: end before begin");
    if (w->next != w->n_t)
        return sdc_fail(err, errlen, SDC_E_INVALID, "gguf writer: %zu of %zu tensors written; next is '%s'", w->next, w->n_t,
                        w->t[w->next].name);
    if (w->failed || fflush(w->f) != 0 || ferror(w->f)) return sdc_fail(err, errlen, SDC_E_IO, "gguf writer: write failed");
    return SDC_OK;
}
