/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"

#ifndef SDC_SHARED_DEFAULT
#define SDC_SHARED_DEFAULT "../shared"
#endif
#ifndef SDC_TEST_TMP
#define SDC_TEST_TMP "/tmp"
#endif

static bool is_dir(const char *p) {
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *tu_shared_dir(void) {
    const char *e = getenv("SDC_SHARED");
    if (e && *e) return is_dir(e) ? e : NULL;
    return is_dir(SDC_SHARED_DEFAULT) ? SDC_SHARED_DEFAULT : NULL;
}

const char *tu_require_shared(void) {
    const char *d = tu_shared_dir();
    if (!d) {
        const char *e = getenv("SDC_SHARED");
        SKIP("shared test data not found (looked at %s); set SDC_SHARED to the folder holding refs/, tools/ and data/",
             e && *e ? e : SDC_SHARED_DEFAULT);
    }
    return d;
}

const char *tu_shared_path(const char *rel) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", tu_require_shared(), rel);
    return buf;
}

const char *tu_require_model(void) {
    const char *e = getenv("SDC_TEST_MODEL");
    struct stat st;
    if (!e || !*e || stat(e, &st) != 0)
        SKIP("random-weight checkpoint not available (SDC_TEST_MODEL=%s); it is made by the make_random_model "
             "test fixture from ../shared/tools/make_random_sd15.py",
             e ? e : "(unset)");
    return e;
}

const char *tu_tmpdir(const char *test_name) {
    static char buf[4096];
    const char *base = getenv("SDC_TEST_TMP");
    snprintf(buf, sizeof buf, "%s/%s", base && *base ? base : SDC_TEST_TMP, test_name);
    for (char *p = buf + 1; *p; p++) { /* mkdir -p */
        if (*p != '/') continue;
        *p = '\0';
        mkdir(buf, 0755);
        *p = '/';
    }
    mkdir(buf, 0755);
    return buf;
}

/* ---- .npy */
static bool fail(char *err, size_t errlen, const char *path, const char *what) {
    snprintf(err, errlen, "%s: %s", path, what);
    return false;
}

bool tu_npy_load(const char *path, tu_npy *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errlen, path, strerror(errno));
    unsigned char pre[12];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        fclose(f);
        return fail(err, errlen, path, "not a .npy file");
    }
    size_t hlen;
    if (pre[6] == 1) {
        hlen = pre[8] | (size_t)pre[9] << 8;
    } else {
        if (fread(pre + 10, 1, 2, f) != 2) { fclose(f); return fail(err, errlen, path, "truncated"); }
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    if (hlen > 65536) { fclose(f); return fail(err, errlen, path, "header too large"); }
    char *h = calloc(1, hlen + 1);
    if (!h || fread(h, 1, hlen, f) != hlen) { free(h); fclose(f); return fail(err, errlen, path, "truncated header"); }
    int kind = 0; /* 1 f4, 2 f8, 3 i8, 4 i4 */
    if (strstr(h, "'<f4'")) kind = 1;
    else if (strstr(h, "'<f8'")) kind = 2;
    else if (strstr(h, "'<i8'")) kind = 3;
    else if (strstr(h, "'<i4'")) kind = 4;
    if (!kind || strstr(h, "'fortran_order': True")) { free(h); fclose(f); return fail(err, errlen, path, "unsupported dtype/order"); }
    const char *s = strstr(h, "'shape':");
    s = s ? strchr(s, '(') : NULL;
    if (!s) { free(h); fclose(f); return fail(err, errlen, path, "no shape"); }
    s++;
    out->n = 1;
    while (*s && *s != ')') {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        if (!isdigit((unsigned char)*s) || out->ndim >= 8) { free(h); fclose(f); return fail(err, errlen, path, "bad shape"); }
        out->shape[out->ndim] = strtoll(s, (char **)&s, 10);
        out->n *= out->shape[out->ndim++];
    }
    free(h);
    size_t esz = (kind == 1 || kind == 4) ? 4 : 8;
    void *raw = malloc((size_t)out->n * esz + 1);
    if (!raw || fread(raw, esz, (size_t)out->n, f) != (size_t)out->n) {
        free(raw);
        fclose(f);
        return fail(err, errlen, path, "truncated data");
    }
    fclose(f);
    if (kind <= 2) {
        out->f32 = malloc((size_t)out->n * sizeof(float) + 1);
        for (int64_t i = 0; i < out->n; i++) {
            if (kind == 1) memcpy(&out->f32[i], (char *)raw + 4 * i, 4);
            else { double d; memcpy(&d, (char *)raw + 8 * i, 8); out->f32[i] = (float)d; }
        }
    } else {
        out->i64 = malloc((size_t)out->n * sizeof(int64_t) + 1);
        for (int64_t i = 0; i < out->n; i++) {
            if (kind == 3) memcpy(&out->i64[i], (char *)raw + 8 * i, 8);
            else { int32_t v; memcpy(&v, (char *)raw + 4 * i, 4); out->i64[i] = v; }
        }
    }
    free(raw);
    return true;
}

void tu_npy_free(tu_npy *a) {
    free(a->f32);
    free(a->i64);
    memset(a, 0, sizeof *a);
}

bool tu_npy_save_f32(const char *path, const float *data, const int64_t *shape, int ndim) {
    char hdr[256], sh[160] = "";
    size_t o = 0;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        o += (size_t)snprintf(sh + o, sizeof sh - o, "%lld,", (long long)shape[i]);
        n *= shape[i];
    }
    int hl = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", sh);
    int total = 10 + hl + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    unsigned short len = (unsigned short)(hl + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(len & 0xff, f);
    fputc(len >> 8, f);
    fwrite(hdr, 1, (size_t)hl, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    bool ok = fwrite(data, sizeof(float), (size_t)n, f) == (size_t)n;
    return fclose(f) == 0 && ok;
}

/* ---- rng */
uint64_t tu_rng_u64(tu_rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
double tu_rng_uniform(tu_rng *r) { return (double)(tu_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }
double tu_rng_normal(tu_rng *r) {
    double u1 = tu_rng_uniform(r), u2 = tu_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
