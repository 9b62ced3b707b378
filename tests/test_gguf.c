/* test_gguf.c - GGUF writer -> reader round trips (every value type, several tensor types
 * and shapes, alignment 32 and 64), the exact bytes of a small hand-built file, writer
 * argument checks, truncation and byte-flip sweeps, and the hostile corpus in
 * tests/hostile/gguf (ok_* must open, bad_* fail with SDC_E_FORMAT, unsup_* with
 * SDC_E_UNSUPPORTED, each with a message naming the file). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "gguf.h"
#include "testutil.h"

#ifndef SDC_HOSTILE_GGUF_DIR
#define SDC_HOSTILE_GGUF_DIR "tests/hostile/gguf"
#endif

/* ---- a byte buffer for building expected files independently of the writer */
typedef struct bytes { uint8_t *p; size_t n, cap; } bytes;

static void b_put(bytes *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}
static void b_u32(bytes *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    b_put(b, x, 4);
}
static void b_u64(bytes *b, uint64_t v) {
    b_u32(b, (uint32_t)v);
    b_u32(b, (uint32_t)(v >> 32));
}
static void b_str(bytes *b, const char *s) {
    b_u64(b, strlen(s));
    b_put(b, s, strlen(s));
}
static void b_pad(bytes *b, size_t a) {
    while (b->n % a) b_put(b, "", 1);
}

/* Runs the writer into memory; returns the bytes (malloc'd) or NULL on error. */
typedef struct wdata { const void *data; uint64_t n; } wdata;
static uint8_t *write_mem(sdc_gguf_writer *w, const wdata *d, int nd, size_t *size) {
    char *buf = NULL;
    size_t len = 0;
    char err[256] = "";
    FILE *f = open_memstream(&buf, &len);
    CHECK(f != NULL);
    sdc_status st = sdc_gguf_writer_begin(w, f, err, sizeof err);
    CHECK_MSG(st == SDC_OK, "begin: %s", err);
    for (int i = 0; i < nd && st == SDC_OK; i++) {
        st = sdc_gguf_writer_write_data(w, d[i].data, d[i].n, err, sizeof err);
        CHECK_MSG(st == SDC_OK, "write_data %d: %s", i, err);
    }
    if (st == SDC_OK) {
        st = sdc_gguf_writer_end(w, err, sizeof err);
        CHECK_MSG(st == SDC_OK, "end: %s", err);
    }
    fclose(f);
    *size = len;
    if (st != SDC_OK) {
        free(buf);
        return NULL;
    }
    return (uint8_t *)buf;
}

static void format_kv(const sdc_gguf *g, const char *key, char *buf, size_t len) {
    int64_t i = sdc_gguf_kv_find(g, key);
    buf[0] = '\0';
    CHECK_MSG(i >= 0, "key %s missing", key);
    if (i >= 0) sdc_gguf_kv_format(g, i, buf, len);
}

#define CHECK_FMT(g, key, want)                                                   \
    do {                                                                          \
        char fb_[512];                                                            \
        format_kv((g), (key), fb_, sizeof fb_);                                   \
        CHECK_MSG(strcmp(fb_, (want)) == 0, "%s formats as <%s>, want <%s>", (key), fb_, (want)); \
    } while (0)

/* ---- exact bytes of a minimal file */
static void test_exact_bytes(void) {
    sdc_gguf_writer *w = sdc_gguf_writer_new(0);
    CHECK(w != NULL);
    CHECK(sdc_gguf_writer_set_u32(w, "a", 7) == SDC_OK);
    CHECK(sdc_gguf_writer_set_str(w, "s", "hi") == SDC_OK);
    int64_t shape[2] = {3, 2};
    CHECK(sdc_gguf_writer_add_tensor(w, "t", SDC_TYPE_F32, 2, shape) == SDC_OK);
    float data[6] = {1, 2, 3, 4, 5, 6};
    wdata d = {data, sizeof data};
    size_t n = 0;
    uint8_t *got = write_mem(w, &d, 1, &n);
    sdc_gguf_writer_free(w);

    bytes e = {0};
    b_put(&e, "GGUF", 4);
    b_u32(&e, 3);           /* version */
    b_u64(&e, 1);           /* n_tensors */
    b_u64(&e, 2);           /* n_kv */
    b_str(&e, "a"); b_u32(&e, 4); b_u32(&e, 7);            /* u32 */
    b_str(&e, "s"); b_u32(&e, 8); b_str(&e, "hi");         /* string */
    b_str(&e, "t"); b_u32(&e, 2); b_u64(&e, 2); b_u64(&e, 3); /* ne innermost first */
    b_u32(&e, 0); b_u64(&e, 0);                            /* f32, offset 0 */
    CHECK(e.n == 24 + 17 + 23 + 41);
    b_pad(&e, 32);
    CHECK(e.n == 128);
    for (int i = 0; i < 6; i++) {
        uint32_t bits;
        memcpy(&bits, &data[i], 4);
        b_u32(&e, bits);
    }
    b_pad(&e, 32);
    CHECK(e.n == 160);
    CHECK_MSG(got && n == e.n && memcmp(got, e.p, n) == 0, "writer output differs from the expected %zu bytes (got %zu)",
              e.n, n);

    /* and the reader reads the hand-built bytes */
    sdc_gguf *g = NULL;
    char err[256] = "";
    CHECK_MSG(sdc_gguf_open_memory(e.p, e.n, &g, err, sizeof err) == SDC_OK, "%s", err);
    if (g) {
        CHECK(sdc_gguf_version(g) == 3);
        CHECK(sdc_gguf_alignment(g) == 32);
        CHECK(sdc_gguf_kv_count(g) == 2 && sdc_gguf_tensor_count(g) == 1);
        const sdc_tensor *t = sdc_gguf_find_tensor(g, "t");
        CHECK(t && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 2 && t->type == SDC_TYPE_F32 && t->nbytes == 24);
        CHECK(t && (const uint8_t *)t->data == e.p + 128 && memcmp(t->data, data, 24) == 0);
        CHECK(sdc_gguf_map(g)->data == NULL);
        CHECK_FMT(g, "a", "7");
        CHECK_FMT(g, "s", "\"hi\"");
        sdc_gguf_close(g);
    }
    free(got);
    free(e.p);
}

/* ---- round trip through a file */
static void test_round_trip(uint32_t align) {
    static const char *strs[] = {"a b", "c d", "", "quote\"d", "e", "f", "g", "h", "i", "j"};
    const uint8_t a_u8[] = {0, 255, 7};
    const int8_t a_i8[] = {-128, 127};
    const uint16_t a_u16[] = {65535, 1};
    const int16_t a_i16[] = {-32768, 5};
    const uint32_t a_u32[] = {4000000000u};
    const int32_t a_i32[] = {1, -2, 3};
    const float a_f32[] = {0.5f, -1.25f};
    const uint8_t a_bool[] = {1, 0, 1};
    const uint64_t a_u64[] = {18446744073709551615ull, 0};
    const int64_t a_i64[] = {-9223372036854775807ll - 1, 42};
    const double a_f64[] = {3.5, -0.125};

    sdc_gguf_writer *w = sdc_gguf_writer_new(align);
    CHECK(w != NULL);
    if (!w) return;
    CHECK(sdc_gguf_writer_set_str(w, "general.name", "round trip") == SDC_OK);
    CHECK(sdc_gguf_writer_set_u32(w, "k.u32", 4000000000u) == SDC_OK);
    CHECK(sdc_gguf_writer_set_i32(w, "k.i32", -123456) == SDC_OK);
    CHECK(sdc_gguf_writer_set_u64(w, "k.u64", 0x8000000000000005ull) == SDC_OK);
    CHECK(sdc_gguf_writer_set_f32(w, "k.f32", 0.1f) == SDC_OK);
    CHECK(sdc_gguf_writer_set_bool(w, "k.bool", true) == SDC_OK);
    CHECK(sdc_gguf_writer_set_str(w, "k.str", "first") == SDC_OK);
    CHECK(sdc_gguf_writer_set_str(w, "k.str", "line1\nline2 \"q\" \\") == SDC_OK); /* replaces */
    CHECK(sdc_gguf_writer_set_str(w, "k.empty", "") == SDC_OK);
    CHECK(sdc_gguf_writer_set_arr(w, "a.u8", SDC_GGUF_U8, a_u8, 3) == SDC_OK);
    CHECK(sdc_gguf_writer_set_arr(w, "a.i8", SDC_GGUF_I8, a_i8, 2) == SDC_OK);
    CHECK(sdc_gguf_writer_set_arr(w, "a.u16", SDC_GGUF_U16, a_u16, 2) == SDC_OK);
    CHECK(sdc_gguf_writer_set_arr(w, "a.i16", SDC_GGUF_I16, a_i16, 2) == SDC_OK);
    CHECK(sdc_gguf_writer_set_arr(w, "a.u32", SDC_GGUF_U32, a_u32, 1) == SDC_OK);
    CHECK(sdc_gguf_writer_set_arr(w, "a.i32", SDC_GGUF_I32, a_i32, 3) == SDC_OK);
    CHECK(sdc_gguf_writer_set_arr(w, "a.f32", SDC_GGUF_F32, a_f32, 2) == SDC_OK);
    CHECK(sdc_gguf_writer_set_arr(w, "a.bool", SDC_GGUF_BOOL, a_bool, 3) == SDC_OK);
    CHECK(sdc_gguf_writer_set_arr(w, "a.u64", SDC_GGUF_U64, a_u64, 2) == SDC_OK);
    CHECK(sdc_gguf_writer_set_arr(w, "a.i64", SDC_GGUF_I64, a_i64, 2) == SDC_OK);
    CHECK(sdc_gguf_writer_set_arr(w, "a.f64", SDC_GGUF_F64, a_f64, 2) == SDC_OK);
    CHECK(sdc_gguf_writer_set_arr(w, "a.empty", SDC_GGUF_F32, NULL, 0) == SDC_OK);
    CHECK(sdc_gguf_writer_set_arr_str(w, "a.str", strs, 10) == SDC_OK);
    CHECK(sdc_gguf_writer_set_arr_str(w, "a.str3", strs, 3) == SDC_OK);
    /* invalid values */
    CHECK(sdc_gguf_writer_set_arr(w, "a.bad", SDC_GGUF_STRING, strs, 1) == SDC_E_INVALID);
    CHECK(sdc_gguf_writer_set_arr(w, "a.bad", SDC_GGUF_ARRAY, a_u8, 1) == SDC_E_INVALID);
    CHECK(sdc_gguf_writer_set_u32(w, "", 1) == SDC_E_INVALID);
    CHECK(sdc_gguf_writer_set_u64(w, "general.alignment", 64) == SDC_E_INVALID);
    CHECK(sdc_gguf_writer_set_u32(w, "general.alignment", 48) == SDC_E_INVALID);

    struct { const char *name; sdc_type type; int ndim; int64_t shape[4]; } T[] = {
        {"model.f32.weight", SDC_TYPE_F32, 2, {3, 5}},
        {"model.f16.weight", SDC_TYPE_F16, 4, {2, 3, 4, 5}},
        {"model.q4_0.weight", SDC_TYPE_Q4_0, 2, {2, 64}},
        {"model.q8_0.weight", SDC_TYPE_Q8_0, 3, {1, 2, 32}},
        {"model.bf16.bias", SDC_TYPE_BF16, 1, {7}},
        {"model.i32", SDC_TYPE_I32, 1, {3}},
        {"model.q5_1.weight", SDC_TYPE_Q5_1, 1, {96}},
        {"model.q4_k.weight", SDC_TYPE_Q4_K, 2, {1, 256}},
        {"a.first.alphabetically", SDC_TYPE_F64, 1, {1}},
    };
    enum { NT = sizeof T / sizeof T[0] };
    wdata d[NT];
    uint8_t *bufs[NT];
    for (int i = 0; i < NT; i++) {
        CHECK_MSG(sdc_gguf_writer_add_tensor(w, T[i].name, T[i].type, T[i].ndim, T[i].shape) == SDC_OK, "%s", T[i].name);
        int64_t nel = 1;
        for (int k = 0; k < T[i].ndim; k++) nel *= T[i].shape[k];
        uint64_t nb = 0;
        CHECK(sdc_type_bytes(T[i].type, (uint64_t)nel, &nb));
        bufs[i] = malloc(nb);
        for (uint64_t k = 0; k < nb; k++) bufs[i][k] = (uint8_t)(k * 31 + (uint64_t)i * 7 + 1);
        d[i] = (wdata){bufs[i], nb};
    }
    /* invalid tensors */
    int64_t s33[2] = {2, 33}, s0[2] = {2, 0}, s5[5] = {1, 1, 1, 1, 1};
    CHECK(sdc_gguf_writer_add_tensor(w, "model.f32.weight", SDC_TYPE_F32, 1, s33) == SDC_E_INVALID);
    CHECK(sdc_gguf_writer_add_tensor(w, "bad.q4", SDC_TYPE_Q4_0, 2, s33) == SDC_E_INVALID);
    CHECK(sdc_gguf_writer_add_tensor(w, "bad.zero", SDC_TYPE_F32, 2, s0) == SDC_E_INVALID);
    CHECK(sdc_gguf_writer_add_tensor(w, "bad.ndim", SDC_TYPE_F32, 5, s5) == SDC_E_INVALID);
    CHECK(sdc_gguf_writer_add_tensor(w, "bad.ndim0", SDC_TYPE_F32, 0, s5) == SDC_E_INVALID);
    CHECK(sdc_gguf_writer_add_tensor(w, "bad.u8", SDC_TYPE_U8, 1, s5) == SDC_E_UNSUPPORTED);
    CHECK(sdc_gguf_writer_add_tensor(w, "", SDC_TYPE_F32, 1, s5) == SDC_E_INVALID);

    char path[1024];
    snprintf(path, sizeof path, "%s/round_trip_%u.gguf", tu_tmpdir("test_gguf"), align);
    FILE *f = fopen(path, "wb");
    if (!f) { /* run outside ctest: the build tree's Testing/ may not exist yet */
        snprintf(path, sizeof path, "/tmp/test_gguf_%ld_%u.gguf", (long)getpid(), align);
        f = fopen(path, "wb");
    }
    CHECK(f != NULL);
    if (!f) return;
    char err[512] = "";
    CHECK(sdc_gguf_writer_write_data(w, bufs[0], d[0].n, err, sizeof err) == SDC_E_INVALID); /* before begin */
    CHECK_MSG(sdc_gguf_writer_begin(w, f, err, sizeof err) == SDC_OK, "%s", err);
    CHECK(sdc_gguf_writer_set_u32(w, "late", 1) == SDC_E_INVALID);
    CHECK(sdc_gguf_writer_add_tensor(w, "late", SDC_TYPE_F32, 1, s5) == SDC_E_INVALID);
    CHECK(sdc_gguf_writer_write_data(w, bufs[0], d[0].n - 1, err, sizeof err) == SDC_E_INVALID);
    CHECK(strstr(err, "model.f32.weight") != NULL);
    for (int i = 0; i < NT; i++) {
        if (i == NT - 1) CHECK(sdc_gguf_writer_end(w, err, sizeof err) == SDC_E_INVALID); /* one missing */
        CHECK_MSG(sdc_gguf_writer_write_data(w, d[i].data, d[i].n, err, sizeof err) == SDC_OK, "%s", err);
    }
    CHECK(sdc_gguf_writer_write_data(w, bufs[0], d[0].n, err, sizeof err) == SDC_E_INVALID); /* one too many */
    CHECK_MSG(sdc_gguf_writer_end(w, err, sizeof err) == SDC_OK, "%s", err);
    fclose(f);
    sdc_gguf_writer_free(w);

    sdc_gguf *g = NULL;
    CHECK_MSG(sdc_gguf_open(path, &g, err, sizeof err) == SDC_OK, "%s", err);
    if (!g) return;
    const uint8_t *base = sdc_gguf_map(g)->data;
    CHECK(sdc_gguf_version(g) == 3);
    CHECK(sdc_gguf_alignment(g) == align);
    CHECK(sdc_gguf_tensor_count(g) == NT);
    CHECK(sdc_gguf_map(g)->size % align == 0);
    for (int i = 0; i < NT; i++) {
        const sdc_tensor *t = sdc_gguf_tensor(g, i);
        CHECK(t && sdc_gguf_find_tensor(g, T[i].name) == t);
        if (!t) continue;
        CHECK(strcmp(t->name, T[i].name) == 0);
        CHECK(t->type == T[i].type && t->ndim == T[i].ndim);
        for (int k = 0; k < t->ndim; k++) CHECK(t->shape[k] == T[i].shape[k]);
        CHECK(t->nbytes == d[i].n);
        CHECK(((const uint8_t *)t->data - base) % align == 0);
        CHECK_MSG(memcmp(t->data, bufs[i], d[i].n) == 0, "data of %s", T[i].name);
    }
    CHECK(sdc_gguf_tensor(g, NT) == NULL && sdc_gguf_tensor(g, -1) == NULL);
    CHECK(sdc_gguf_find_tensor(g, "model.f32") == NULL);
    CHECK(sdc_gguf_find_tensor(g, "") == NULL);

    /* metadata: 22 keys written, plus general.alignment when not 32 */
    int64_t nkv = sdc_gguf_kv_count(g);
    CHECK(nkv == 22 + (align != 32));
    int64_t ai = sdc_gguf_kv_find(g, "general.alignment");
    CHECK(align == 32 ? ai == -1 : ai == 0);
    CHECK(sdc_gguf_kv_find(g, "nope") == -1);
    int64_t i;
    int64_t iv;
    uint64_t uv;
    double fv;
    const char *sv;
    uint64_t sl;
    i = sdc_gguf_kv_find(g, "k.u32");
    CHECK(sdc_gguf_kv_type_of(g, i) == SDC_GGUF_U32);
    CHECK(sdc_gguf_kv_get_u64(g, i, &uv) && uv == 4000000000u);
    CHECK(sdc_gguf_kv_get_i64(g, i, &iv) && iv == 4000000000);
    i = sdc_gguf_kv_find(g, "k.i32");
    CHECK(sdc_gguf_kv_type_of(g, i) == SDC_GGUF_I32);
    CHECK(sdc_gguf_kv_get_i64(g, i, &iv) && iv == -123456);
    CHECK(!sdc_gguf_kv_get_u64(g, i, &uv));
    CHECK(sdc_gguf_kv_get_f64(g, i, &fv) && fv == -123456.0);
    i = sdc_gguf_kv_find(g, "k.u64");
    CHECK(sdc_gguf_kv_get_u64(g, i, &uv) && uv == 0x8000000000000005ull);
    CHECK(!sdc_gguf_kv_get_i64(g, i, &iv));
    i = sdc_gguf_kv_find(g, "k.f32");
    CHECK(sdc_gguf_kv_type_of(g, i) == SDC_GGUF_F32);
    CHECK(sdc_gguf_kv_get_f64(g, i, &fv) && fv == (double)0.1f);
    i = sdc_gguf_kv_find(g, "k.bool");
    CHECK(sdc_gguf_kv_type_of(g, i) == SDC_GGUF_BOOL);
    CHECK(sdc_gguf_kv_get_i64(g, i, &iv) && iv == 1);
    i = sdc_gguf_kv_find(g, "k.str");
    CHECK(sdc_gguf_kv_get_str(g, i, &sv, &sl) && sl == 17 && memcmp(sv, "line1\nline2 \"q\" \\", 17) == 0);
    CHECK(!sdc_gguf_kv_get_i64(g, i, &iv) && !sdc_gguf_kv_get_f64(g, i, &fv));
    i = sdc_gguf_kv_find(g, "a.i16");
    CHECK(sdc_gguf_kv_type_of(g, i) == SDC_GGUF_ARRAY && sdc_gguf_kv_array_type(g, i) == SDC_GGUF_I16);
    CHECK(sdc_gguf_kv_array_len(g, i) == 2 && memcmp(sdc_gguf_kv_array_data(g, i), a_i16, 4) == 0);
    CHECK(!sdc_gguf_kv_get_i64(g, i, &iv) && !sdc_gguf_kv_get_str(g, i, &sv, &sl));
    i = sdc_gguf_kv_find(g, "a.f64");
    CHECK(sdc_gguf_kv_array_len(g, i) == 2 && memcmp(sdc_gguf_kv_array_data(g, i), a_f64, 16) == 0);
    i = sdc_gguf_kv_find(g, "a.str");
    CHECK(sdc_gguf_kv_array_type(g, i) == SDC_GGUF_STRING && sdc_gguf_kv_array_len(g, i) == 10);
    CHECK(sdc_gguf_kv_array_data(g, i) == NULL);
    for (uint64_t j = 0; j < 10; j++)
        CHECK(sdc_gguf_kv_array_str(g, i, j, &sv, &sl) && sl == strlen(strs[j]) && memcmp(sv, strs[j], sl) == 0);
    CHECK(!sdc_gguf_kv_array_str(g, i, 10, &sv, &sl));
    /* keys keep their written order (alignment first when present) */
    CHECK(strcmp(sdc_gguf_kv_key(g, align == 32 ? 0 : 1), "general.name") == 0);
    CHECK(sdc_gguf_kv_key(g, nkv) == NULL);

    CHECK_FMT(g, "general.name", "\"round trip\"");
    CHECK_FMT(g, "k.u32", "4000000000");
    CHECK_FMT(g, "k.i32", "-123456");
    CHECK_FMT(g, "k.u64", "9223372036854775813");
    CHECK_FMT(g, "k.f32", "0.100000001");
    CHECK_FMT(g, "k.bool", "true");
    CHECK_FMT(g, "k.str", "\"line1\\nline2 \\\"q\\\" \\\\\"");
    CHECK_FMT(g, "k.empty", "\"\"");
    CHECK_FMT(g, "a.u8", "[u8 x 3] 0, 255, 7");
    CHECK_FMT(g, "a.i8", "[i8 x 2] -128, 127");
    CHECK_FMT(g, "a.u16", "[u16 x 2] 65535, 1");
    CHECK_FMT(g, "a.i16", "[i16 x 2] -32768, 5");
    CHECK_FMT(g, "a.u32", "[u32 x 1] 4000000000");
    CHECK_FMT(g, "a.i32", "[i32 x 3] 1, -2, 3");
    CHECK_FMT(g, "a.f32", "[f32 x 2] 0.5, -1.25");
    CHECK_FMT(g, "a.bool", "[bool x 3] true, false, true");
    CHECK_FMT(g, "a.u64", "[u64 x 2] 18446744073709551615, 0");
    CHECK_FMT(g, "a.i64", "[i64 x 2] -9223372036854775808, 42");
    CHECK_FMT(g, "a.f64", "[f64 x 2] 3.5, -0.125");
    CHECK_FMT(g, "a.empty", "[f32 x 0]");
    CHECK_FMT(g, "a.str3", "[string x 3] \"a b\", \"c d\", \"\"");
    CHECK_FMT(g, "a.str", "[string x 10] \"a b\", \"c d\", \"\", \"quote\\\"d\", \"e\", \"f\", \"g\", \"h\", ...");
    if (align != 32) CHECK_FMT(g, "general.alignment", "64");
    /* a tiny buffer truncates without overflow */
    char tiny[6];
    sdc_gguf_kv_format(g, sdc_gguf_kv_find(g, "a.str"), tiny, sizeof tiny);
    CHECK(strlen(tiny) == 5);

    /* the same bytes through open_memory */
    sdc_gguf *g2 = NULL;
    const sdc_map *m = sdc_gguf_map(g);
    CHECK_MSG(sdc_gguf_open_memory(m->data, m->size, &g2, err, sizeof err) == SDC_OK, "%s", err);
    if (g2) {
        CHECK(sdc_gguf_tensor_count(g2) == NT && sdc_gguf_kv_count(g2) == nkv);
        CHECK(sdc_gguf_find_tensor(g2, T[2].name)->data == sdc_gguf_find_tensor(g, T[2].name)->data);
        sdc_gguf_close(g2);
    }

    /* every truncation fails cleanly unless it only cuts the final padding */
    uint64_t end_of_data = 0;
    for (int k = 0; k < NT; k++) {
        const sdc_tensor *t = sdc_gguf_tensor(g, k);
        uint64_t e = (uint64_t)((const uint8_t *)t->data - base) + t->nbytes;
        if (e > end_of_data) end_of_data = e;
    }
    int bad = 0;
    for (size_t cut = 0; cut < m->size; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, base, cut);
        sdc_gguf *gt = NULL;
        err[0] = '\0';
        sdc_status st = sdc_gguf_open_memory(copy, cut, &gt, err, sizeof err);
        if (cut < end_of_data ? (st != SDC_E_FORMAT || !strstr(err, "<memory>")) : st != SDC_OK) bad++;
        sdc_gguf_close(gt);
        free(copy);
    }
    CHECK_MSG(bad == 0, "%d of %zu truncations misbehaved", bad, m->size);

    /* flipping any header byte never crashes (sanitizer build) and any result is consistent */
    size_t hdr = (size_t)((const uint8_t *)sdc_gguf_tensor(g, 0)->data - base);
    uint8_t *copy = malloc(m->size);
    int opened = 0;
    for (size_t k = 0; k < hdr; k++) {
        for (int v = 0; v < 3; v++) {
            static const uint8_t vals[3] = {0x00, 0xff, 0x80};
            memcpy(copy, base, m->size);
            copy[k] = copy[k] == vals[v] ? (uint8_t)(vals[v] ^ 1) : vals[v];
            sdc_gguf *gt = NULL;
            sdc_status st = sdc_gguf_open_memory(copy, m->size, &gt, err, sizeof err);
            if (st == SDC_OK) {
                opened++;
                char fb[256];
                for (int64_t q = 0; q < sdc_gguf_kv_count(gt); q++) sdc_gguf_kv_format(gt, q, fb, sizeof fb);
                for (int64_t q = 0; q < sdc_gguf_tensor_count(gt); q++) {
                    const sdc_tensor *t = sdc_gguf_tensor(gt, q);
                    CHECK((const uint8_t *)t->data + t->nbytes <= copy + m->size);
                    CHECK(sdc_gguf_find_tensor(gt, t->name) == t);
                }
                sdc_gguf_close(gt);
            } else {
                CHECK(st == SDC_E_FORMAT || st == SDC_E_UNSUPPORTED);
            }
        }
    }
    printf("align %u: %zu-byte file, %zu header bytes flipped 3 ways, %d variants still opened\n", align, m->size, hdr,
           opened);
    free(copy);

    sdc_gguf_close(g);
    for (int k = 0; k < NT; k++) free(bufs[k]);
}

static void test_type_ids(void) {
    static const struct { uint32_t id; sdc_type t; } M[] = {
        {0, SDC_TYPE_F32},   {1, SDC_TYPE_F16},   {2, SDC_TYPE_Q4_0},  {3, SDC_TYPE_Q4_1},  {6, SDC_TYPE_Q5_0},
        {7, SDC_TYPE_Q5_1},  {8, SDC_TYPE_Q8_0},  {10, SDC_TYPE_Q2_K}, {11, SDC_TYPE_Q3_K}, {12, SDC_TYPE_Q4_K},
        {13, SDC_TYPE_Q5_K}, {14, SDC_TYPE_Q6_K}, {24, SDC_TYPE_I8},   {25, SDC_TYPE_I16},  {26, SDC_TYPE_I32},
        {27, SDC_TYPE_I64},  {28, SDC_TYPE_F64},  {30, SDC_TYPE_BF16},
    };
    for (size_t i = 0; i < sizeof M / sizeof M[0]; i++) {
        CHECK(sdc_gguf_type_to_sdc(M[i].id) == (int)M[i].t);
        CHECK(sdc_gguf_type_from_sdc(M[i].t) == (int)M[i].id);
    }
    CHECK(sdc_gguf_type_to_sdc(4) == -1 && sdc_gguf_type_to_sdc(9) == -1 && sdc_gguf_type_to_sdc(31) == -1);
    CHECK(sdc_gguf_type_from_sdc(SDC_TYPE_U8) == -1 && sdc_gguf_type_from_sdc(SDC_TYPE_BOOL) == -1);
    CHECK(sdc_gguf_writer_new(3) == NULL);
}

static void test_hostile(void) {
    DIR *dir = opendir(SDC_HOSTILE_GGUF_DIR);
    CHECK_MSG(dir != NULL, "cannot open %s", SDC_HOSTILE_GGUF_DIR);
    if (!dir) return;
    int n = 0, nok = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 5, ".gguf") != 0) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", SDC_HOSTILE_GGUF_DIR, de->d_name);
        bool ok = strncmp(de->d_name, "ok_", 3) == 0, unsup = strncmp(de->d_name, "unsup_", 6) == 0;
        sdc_status want = ok ? SDC_OK : unsup ? SDC_E_UNSUPPORTED : SDC_E_FORMAT;
        char err[512] = "";
        sdc_gguf *g = NULL;
        sdc_status st = sdc_gguf_open(path, &g, err, sizeof err);
        n++;
        CHECK_MSG(st == want, "%s: got %s (%s), want %s", de->d_name, sdc_status_name(st), err, sdc_status_name(want));
        if (ok && g) {
            nok++;
            char fb[512];
            for (int64_t q = 0; q < sdc_gguf_kv_count(g); q++) sdc_gguf_kv_format(g, q, fb, sizeof fb);
            if (strcmp(de->d_name, "ok_v2.gguf") == 0) CHECK(sdc_gguf_version(g) == 2);
            if (strcmp(de->d_name, "ok_all_kv.gguf") == 0) {
                CHECK(sdc_gguf_alignment(g) == 64 && sdc_gguf_kv_count(g) == 16 && sdc_gguf_tensor_count(g) == 4);
                CHECK_FMT(g, "k.arr_str", "[string x 12] \"a b\", \"c d\", \"\", \"e\", \"a b\", \"c d\", \"\", \"e\", ...");
                const sdc_tensor *t = sdc_gguf_find_tensor(g, "e");
                CHECK(t && t->ndim == 4 && t->shape[0] == 2 && t->shape[3] == 32 && t->type == SDC_TYPE_Q8_0);
            }
        }
        if (!ok) {
            CHECK_MSG(err[0] && strstr(err, path) == err && !strchr(err, '\n'), "%s: message <%s>", de->d_name, err);
            printf("  %-36s %s\n", de->d_name, err);
        }
        sdc_gguf_close(g);

        /* the same through open_memory */
        FILE *f = fopen(path, "rb");
        CHECK(f != NULL);
        if (!f) continue;
        uint8_t *buf = malloc(8192);
        size_t len = fread(buf, 1, 8192, f);
        fclose(f);
        g = NULL;
        err[0] = '\0';
        st = sdc_gguf_open_memory(len ? buf : NULL, len, &g, err, sizeof err);
        CHECK_MSG(st == want, "%s (memory): got %s (%s)", de->d_name, sdc_status_name(st), err);
        if (!ok) CHECK_MSG(strncmp(err, "<memory>: ", 10) == 0, "%s: memory message <%s>", de->d_name, err);
        sdc_gguf_close(g);
        free(buf);
    }
    closedir(dir);
    printf("hostile corpus: %d files (%d valid seeds)\n", n, nok);
    CHECK(n >= 60 && nok >= 5);

    /* a missing file is an I/O error naming the file */
    char err[512] = "";
    sdc_gguf *g = NULL;
    CHECK(sdc_gguf_open(SDC_HOSTILE_GGUF_DIR "/does_not_exist.gguf", &g, err, sizeof err) == SDC_E_IO);
    CHECK(strstr(err, "does_not_exist.gguf") != NULL && g == NULL);
}

int main(void) {
    test_type_ids();
    test_exact_bytes();
    test_round_trip(32);
    test_round_trip(64);
    test_hostile();
    return check_done();
}
