/* test_safetensors.c - the safetensors reader and writer without the model: round trips of
 * every dtype, 0-d scalars and metadata; the exact bytes of a small file; the writer's
 * refusals; and the hostile corpus in tests/hostile/safetensors (bad_* must fail with
 * SDC_E_FORMAT, unsup_* with SDC_E_UNSUPPORTED, ok_* must open). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "safetensors.h"
#include "testutil.h"

#ifndef SDC_ST_HOSTILE_DIR
#error "SDC_ST_HOSTILE_DIR must name tests/hostile/safetensors"
#endif

static char tmpdir[4096];

static const char *tmp_path(const char *name) {
    static char buf[4200];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static unsigned char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(sz > 0 ? (size_t)sz : 1);
    *n = fread(p, 1, (size_t)sz, f);
    fclose(f);
    return p;
}

static bool exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static bool one_line(const char *s) { return s[0] && !strchr(s, '\n'); }

/* ---- round trip of every dtype, a 0-d scalar, an empty tensor and metadata */
static void test_round_trip(void) {
    static const sdc_type types[] = {SDC_TYPE_F64, SDC_TYPE_F32, SDC_TYPE_F16, SDC_TYPE_BF16, SDC_TYPE_I64,
                                     SDC_TYPE_I32, SDC_TYPE_I16, SDC_TYPE_I8,  SDC_TYPE_U8,   SDC_TYPE_BOOL};
    enum { NT = sizeof types / sizeof types[0] };
    sdc_tensor ts[NT + 3];
    char names[NT][32];
    uint8_t bufs[NT][64];
    tu_rng rng = {42};
    for (int i = 0; i < NT; i++) {
        const sdc_type_traits *tr = sdc_type_traits_of(types[i]);
        memset(&ts[i], 0, sizeof ts[i]);
        snprintf(names[i], sizeof names[i], "layer.%d.%s", i, tr->name);
        ts[i].name = names[i];
        ts[i].type = types[i];
        /* shapes of 1..3 dims; odd sizes put the later tensors at unaligned offsets */
        ts[i].ndim = 1 + i % 3;
        for (int d = 0; d < ts[i].ndim; d++) ts[i].shape[d] = 1 + (i + d) % 3;
        ts[i].nbytes = (uint64_t)sdc_tensor_nelem(&ts[i]) * (uint64_t)tr->block_bytes;
        for (uint64_t k = 0; k < ts[i].nbytes; k++) bufs[i][k] = (uint8_t)tu_rng_u64(&rng);
        ts[i].data = bufs[i];
    }
    int32_t scalar = -123456;
    ts[NT] = (sdc_tensor){.name = "model_ema.num_updates", .type = SDC_TYPE_I32, .ndim = 0, .data = &scalar,
                          .nbytes = 4};
    double dscalar = 0.9999;
    ts[NT + 1] = (sdc_tensor){.name = "model_ema.decay \"quoted\" \\ tab\t \xc3\xa9", .type = SDC_TYPE_F64,
                              .ndim = 0, .data = &dscalar, .nbytes = 8};
    ts[NT + 2] = (sdc_tensor){.name = "empty", .type = SDC_TYPE_F16, .ndim = 2, .shape = {0, 5}, .data = NULL,
                              .nbytes = 0};
    const char *meta[] = {"format", "pt", "note", "line1\nline2 \"q\" \xe2\x98\x83", "empty", ""};
    const char *path = tmp_path("roundtrip.safetensors");
    char err[512] = "";
    sdc_status st = sdc_st_write(path, ts, NT + 3, meta, 3, err, sizeof err);
    CHECK_MSG(st == SDC_OK, "write: %s", err);
    char tmpname[4300];
    snprintf(tmpname, sizeof tmpname, "%s.tmp", path);
    CHECK(!exists(tmpname));

    sdc_st *s = NULL;
    st = sdc_st_open(path, &s, err, sizeof err);
    CHECK_MSG(st == SDC_OK, "open: %s", err);
    if (st != SDC_OK) return;
    CHECK(sdc_st_tensor_count(s) == NT + 3);
    for (int i = 0; i < NT + 3; i++) {
        const sdc_tensor *g = sdc_st_find_tensor(s, ts[i].name);
        CHECK_MSG(g != NULL, "tensor %s missing", ts[i].name);
        if (!g) continue;
        CHECK(strcmp(g->name, ts[i].name) == 0);
        CHECK_MSG(g->type == ts[i].type, "%s: type %s", ts[i].name, sdc_type_name(g->type));
        CHECK(g->ndim == ts[i].ndim);
        for (int d = 0; d < ts[i].ndim; d++) CHECK(g->shape[d] == ts[i].shape[d]);
        CHECK(g->nbytes == ts[i].nbytes);
        if (ts[i].nbytes) CHECK(memcmp(g->data, ts[i].data, ts[i].nbytes) == 0);
        CHECK(g == sdc_st_tensor(s, i)); /* header order is kept */
    }
    CHECK(sdc_st_find_tensor(s, "nope") == NULL);
    CHECK(sdc_st_find_tensor(s, "layer.0") == NULL);
    CHECK(sdc_st_tensor(s, -1) == NULL && sdc_st_tensor(s, NT + 3) == NULL);
    const sdc_tensor *sc = sdc_st_find_tensor(s, "model_ema.num_updates");
    if (sc) {
        int32_t v;
        memcpy(&v, sc->data, 4);
        CHECK(sc->ndim == 0 && v == -123456);
    }
    CHECK(sdc_st_meta_count(s) == 3);
    for (int i = 0; i < 3 && sdc_st_meta_count(s) == 3; i++) {
        CHECK(strcmp(sdc_st_meta_key(s, i), meta[2 * i]) == 0);
        CHECK(strcmp(sdc_st_meta_value(s, i), meta[2 * i + 1]) == 0);
    }
    CHECK(sdc_st_meta_get(s, "note") && strcmp(sdc_st_meta_get(s, "note"), meta[3]) == 0);
    CHECK(sdc_st_meta_get(s, "missing") == NULL);
    CHECK(sdc_st_meta_key(s, 3) == NULL);
    CHECK(sdc_st_map(s)->size > 8 && (sdc_st_map(s)->data[0] | sdc_st_map(s)->data[1] << 8) % 8 == 0);
    CHECK(!sdc_st_aligned(s)); /* the odd-sized I8/U8/BOOL tensors push later ones off alignment */
    sdc_st_close(s);

    /* the same bytes through open_memory */
    size_t n = 0;
    unsigned char *bytes = read_file(path, &n);
    st = sdc_st_open_memory(bytes, n, &s, err, sizeof err);
    CHECK_MSG(st == SDC_OK, "open_memory: %s", err);
    if (st == SDC_OK) {
        CHECK(sdc_st_tensor_count(s) == NT + 3);
        sdc_st_close(s);
    }
    /* every truncation of a valid file fails cleanly */
    int trunc_ok = 0;
    for (size_t k = 0; k < n; k++) {
        err[0] = '\0';
        s = NULL;
        st = sdc_st_open_memory(bytes, k, &s, err, sizeof err);
        if (st == SDC_OK) {
            trunc_ok++;
            sdc_st_close(s);
        } else if (!one_line(err) || !strstr(err, "(memory)")) {
            CHECK_MSG(0, "truncation at %zu: message '%s'", k, err);
        }
    }
    CHECK_MSG(trunc_ok == 0, "%d truncations opened", trunc_ok);
    free(bytes);
}

/* ---- exact bytes of a hand-built file, written out here byte by byte */
static void test_exact_bytes(void) {
    float vals[2] = {1.0f, -2.0f};
    uint16_t h = 0x3c00; /* 1.0 in binary16 */
    sdc_tensor ts[2] = {
        {.name = "w", .type = SDC_TYPE_F32, .ndim = 2, .shape = {1, 2}, .data = vals, .nbytes = 8},
        {.name = "s", .type = SDC_TYPE_F16, .ndim = 0, .data = &h, .nbytes = 2},
    };
    const char *meta[] = {"k", "v"};
    const char *path = tmp_path("exact.safetensors");
    char err[512] = "";
    CHECK_MSG(sdc_st_write(path, ts, 2, meta, 1, err, sizeof err) == SDC_OK, "%s", err);

    const char *json = "{\"__metadata__\":{\"k\":\"v\"},"
                       "\"w\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]},"
                       "\"s\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[8,10]}}";
    size_t jl = strlen(json), hl = (jl + 7) / 8 * 8;
    unsigned char want[512];
    size_t o = 0;
    for (int i = 0; i < 8; i++) want[o++] = (unsigned char)(hl >> (8 * i));
    memcpy(want + o, json, jl);
    o += jl;
    while (o < 8 + hl) want[o++] = ' ';
    /* 1.0f = 0x3f800000, -2.0f = 0xc0000000, little-endian; then f16 1.0 = 0x3c00 */
    const unsigned char data[] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x3c};
    memcpy(want + o, data, sizeof data);
    o += sizeof data;

    size_t n = 0;
    unsigned char *got = read_file(path, &n);
    CHECK_MSG(got && n == o, "size %zu, want %zu", n, o);
    if (got && n == o) {
        CHECK(memcmp(got, want, o) == 0);
        for (size_t i = 0; i < o; i++)
            if (got[i] != want[i]) {
                fprintf(stderr, "first difference at byte %zu: %02x vs %02x\n", i, got[i], want[i]);
                break;
            }
    }
    free(got);

    /* and the reader takes a hand-built unaligned file (header length 5 + 0 padding) */
    const char *j2 = "{\"x\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[1,5]}}";
    unsigned char buf[128];
    size_t l2 = strlen(j2);
    o = 0;
    for (int i = 0; i < 8; i++) buf[o++] = (unsigned char)(l2 >> (8 * i));
    memcpy(buf + o, j2, l2);
    o += l2;
    const unsigned char d2[] = {0xee, 0x01, 0x00, 0xff, 0xff};
    memcpy(buf + o, d2, sizeof d2);
    o += sizeof d2;
    sdc_st *s = NULL;
    sdc_status st = sdc_st_open_memory(buf, o, &s, err, sizeof err);
    CHECK_MSG(st == SDC_OK, "%s", err);
    if (st == SDC_OK) {
        const sdc_tensor *x = sdc_st_find_tensor(s, "x");
        CHECK(x && x->type == SDC_TYPE_I16 && x->nbytes == 4 && x->data == buf + 8 + l2 + 1);
        if (x) {
            int16_t v[2];
            memcpy(v, x->data, 4);
            CHECK(v[0] == 1 && v[1] == -1);
        }
        CHECK(sdc_st_meta_count(s) == 0);
        sdc_st_close(s);
    }
}

/* ---- what the writer refuses, leaving nothing behind */
static void test_writer_errors(void) {
    char err[512];
    uint8_t q[34] = {0};
    float f = 0;
    const char *path = tmp_path("refused.safetensors");
    char tmpname[4300];
    snprintf(tmpname, sizeof tmpname, "%s.tmp", path);
    unlink(path);

    sdc_tensor qt = {.name = "q", .type = SDC_TYPE_Q8_0, .ndim = 1, .shape = {32}, .data = q, .nbytes = 34};
    err[0] = '\0';
    CHECK(sdc_st_write(path, &qt, 1, NULL, 0, err, sizeof err) == SDC_E_UNSUPPORTED);
    CHECK_MSG(strstr(err, "q8_0") && strstr(err, "'q'"), "%s", err);

    sdc_tensor bad = {.name = "b", .type = SDC_TYPE_F32, .ndim = 1, .shape = {2}, .data = &f, .nbytes = 4};
    CHECK(sdc_st_write(path, &bad, 1, NULL, 0, err, sizeof err) == SDC_E_INVALID);
    sdc_tensor dup[2] = {{.name = "a", .type = SDC_TYPE_F32, .ndim = 0, .data = &f, .nbytes = 4},
                         {.name = "a", .type = SDC_TYPE_F32, .ndim = 0, .data = &f, .nbytes = 4}};
    CHECK(sdc_st_write(path, dup, 2, NULL, 0, err, sizeof err) == SDC_E_INVALID);
    sdc_tensor md = {.name = "__metadata__", .type = SDC_TYPE_F32, .ndim = 0, .data = &f, .nbytes = 4};
    CHECK(sdc_st_write(path, &md, 1, NULL, 0, err, sizeof err) == SDC_E_INVALID);
    sdc_tensor bu = {.name = "bad\xff", .type = SDC_TYPE_F32, .ndim = 0, .data = &f, .nbytes = 4};
    CHECK(sdc_st_write(path, &bu, 1, NULL, 0, err, sizeof err) == SDC_E_INVALID);
    const char *dmeta[] = {"k", "1", "k", "2"};
    CHECK(sdc_st_write(path, NULL, 0, dmeta, 2, err, sizeof err) == SDC_E_INVALID);
    CHECK(!exists(path) && !exists(tmpname));

    /* an unwritable place: I/O error, no file */
    char nodir[4300];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.safetensors", tmpdir);
    err[0] = '\0';
    CHECK(sdc_st_write(nodir, &dup[0], 1, NULL, 0, err, sizeof err) == SDC_E_IO);
    CHECK_MSG(one_line(err) && strstr(err, "x.safetensors"), "%s", err);

    /* a failed rewrite keeps the old file intact */
    CHECK(sdc_st_write(path, &dup[0], 1, NULL, 0, err, sizeof err) == SDC_OK);
    size_t n0 = 0, n1 = 0;
    unsigned char *before = read_file(path, &n0);
    CHECK(sdc_st_write(path, &qt, 1, NULL, 0, err, sizeof err) == SDC_E_UNSUPPORTED);
    unsigned char *after = read_file(path, &n1);
    CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
    CHECK(!exists(tmpname));
    free(before);
    free(after);

    /* an empty file list is a valid file */
    CHECK(sdc_st_write(path, NULL, 0, NULL, 0, err, sizeof err) == SDC_OK);
    sdc_st *s = NULL;
    CHECK(sdc_st_open(path, &s, err, sizeof err) == SDC_OK);
    if (s) {
        CHECK(sdc_st_tensor_count(s) == 0 && sdc_st_find_tensor(s, "a") == NULL);
        sdc_st_close(s);
    }
}

/* ---- a few reader messages, word for word where it matters */
static void test_messages(void) {
    char err[512] = "";
    sdc_st *s = NULL;
    CHECK(sdc_st_open(tmp_path("does-not-exist.safetensors"), &s, err, sizeof err) == SDC_E_IO);
    CHECK_MSG(one_line(err) && strstr(err, "does-not-exist.safetensors"), "%s", err);
    CHECK(s == NULL);

    char path[4300];
    snprintf(path, sizeof path, "%s/bad_size_mismatch.safetensors", SDC_ST_HOSTILE_DIR);
    CHECK(sdc_st_open(path, &s, err, sizeof err) == SDC_E_FORMAT);
    char want[4600];
    snprintf(want, sizeof want,
             "%s: tensor 'a': data_offsets [0, 10) do not match shape [3,2] of F16 (12 bytes)", path);
    CHECK_MSG(strcmp(err, want) == 0, "got '%s'", err);

    snprintf(path, sizeof path, "%s/unsup_dtype_f8_e4m3.safetensors", SDC_ST_HOSTILE_DIR);
    CHECK(sdc_st_open(path, &s, err, sizeof err) == SDC_E_UNSUPPORTED);
    CHECK_MSG(strstr(err, "'a'") && strstr(err, "F8_E4M3"), "%s", err);

    /* a tiny buffer truncates, never overflows */
    char small[16];
    CHECK(sdc_st_open(path, &s, small, sizeof small) == SDC_E_UNSUPPORTED);
    CHECK(strlen(small) == sizeof small - 1);
}

/* ---- the hostile corpus */
static void test_hostile(void) {
    DIR *d = opendir(SDC_ST_HOSTILE_DIR);
    CHECK_MSG(d != NULL, "cannot open %s", SDC_ST_HOSTILE_DIR);
    if (!d) return;
    int n_bad = 0, n_unsup = 0, n_ok = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        size_t l = strlen(nm);
        if (l < 12 || strcmp(nm + l - 12, ".safetensors") != 0) continue;
        char path[4300];
        snprintf(path, sizeof path, "%s/%s", SDC_ST_HOSTILE_DIR, nm);
        sdc_status want = strncmp(nm, "ok_", 3) == 0      ? SDC_OK
                          : strncmp(nm, "unsup_", 6) == 0 ? SDC_E_UNSUPPORTED
                                                          : SDC_E_FORMAT;
        CHECK_MSG(strncmp(nm, "ok_", 3) == 0 || strncmp(nm, "bad_", 4) == 0 || strncmp(nm, "unsup_", 6) == 0,
                  "%s: unknown prefix", nm);
        char err[1024] = "";
        sdc_st *s = NULL;
        sdc_status st = sdc_st_open(path, &s, err, sizeof err);
        CHECK_MSG(st == want, "%s: got %s, want %s (%s)", nm, sdc_status_name(st), sdc_status_name(want), err);
        if (st == SDC_OK) {
            n_ok++;
            /* walk it: every tensor findable by name, data inside the map */
            const sdc_map *m = sdc_st_map(s);
            for (int64_t i = 0; i < sdc_st_tensor_count(s); i++) {
                const sdc_tensor *t = sdc_st_tensor(s, i);
                CHECK(sdc_st_find_tensor(s, t->name) == t);
                CHECK((const uint8_t *)t->data >= m->data &&
                      (const uint8_t *)t->data + t->nbytes <= m->data + m->size);
            }
            sdc_st_close(s);
        } else {
            if (want == SDC_E_UNSUPPORTED) n_unsup++;
            else n_bad++;
            CHECK(s == NULL);
            CHECK_MSG(one_line(err) && strncmp(err, path, strlen(path)) == 0 && err[strlen(path)] == ':',
                      "%s: message does not start with the file name: '%s'", nm, err);
            if (getenv("SDC_ST_VERBOSE")) printf("%-40s %s\n", nm, err + strlen(SDC_ST_HOSTILE_DIR) + 1);
        }
        /* the same bytes from memory behave the same */
        size_t n = 0;
        unsigned char *bytes = read_file(path, &n);
        sdc_status st2 = sdc_st_open_memory(bytes, n, &s, err, sizeof err);
        CHECK_MSG(st2 == st, "%s: open_memory gave %s", nm, sdc_status_name(st2));
        if (st2 == SDC_OK) sdc_st_close(s);
        else CHECK(strncmp(err, "(memory): ", 10) == 0);
        free(bytes);
    }
    closedir(d);
    printf("hostile corpus: %d bad, %d unsupported, %d valid\n", n_bad, n_unsup, n_ok);
    CHECK(n_bad >= 80 && n_unsup >= 5 && n_ok >= 10);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s", tu_tmpdir("test_safetensors"));
    test_round_trip();
    test_exact_bytes();
    test_writer_errors();
    test_messages();
    test_hostile();
    return check_done();
}
