/* sha256.c - SHA-256 as FIPS 180-4 specifies it (sections 4.1.2, 4.2.2, 5.1.1, 6.2), and the
 * cached model-file hash A1111 shows as "Model hash" (first 10 hex digits of the file's SHA-256,
 * modules/hashes.py sha256 / sd_models.CheckpointInfo.shorthash).
 *
 * Cache: <cache_dir>/model-hashes.tsv, one line per file: "<sha256 hex>\t<size>\t<mtime ns>\t<path>"
 * with the absolute path; a line is used only when size and mtime still match. The file is
 * rewritten through a temporary name and renamed, so concurrent runs never see half a file. */
#include "sha256.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "sdc.h"

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

/* One 64-byte block (FIPS 180-4 6.2.2). */
static void compress(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 | p[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = hh + S1 + ch + K[t] + w[t];
        uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + maj;
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_SHANI_PATH 1

/* The same block function on the SHA extensions. The state lives in two registers as the
 * instructions want it: st0 = (f, e, b, a) and st1 = (h, g, d, c) from dword 0 up ("ABEF" and
 * "CDGH"). sha256rnds2(cdgh, abef, wk) does two rounds with wk's low two dwords and returns
 * the new ABEF; the old ABEF is then the new CDGH. sha256msg1/msg2 compute the schedule
 * W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16] four words at a time. */
__attribute__((target("sha,sse4.1,ssse3"))) static void compress_shani(uint32_t h[8], const uint8_t *p, size_t nblocks) {
    const __m128i bswap = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
    __m128i t = _mm_loadu_si128((const __m128i *)h);        /* a b c d */
    __m128i st1 = _mm_loadu_si128((const __m128i *)(h + 4)); /* e f g h */
    t = _mm_shuffle_epi32(t, 0xB1);                          /* b a d c */
    st1 = _mm_shuffle_epi32(st1, 0x1B);                      /* h g f e */
    __m128i st0 = _mm_alignr_epi8(t, st1, 8);                /* f e b a */
    st1 = _mm_blend_epi16(st1, t, 0xF0);                     /* h g d c */
    for (; nblocks; nblocks--, p += 64) {
        __m128i save0 = st0, save1 = st1, m[4];
        for (int g = 0; g < 16; g++) {
            __m128i w;
            if (g < 4) {
                w = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)), bswap);
            } else {
                w = _mm_sha256msg1_epu32(m[g & 3], m[(g + 1) & 3]);              /* W[t-16] + s0(W[t-15]) */
                w = _mm_add_epi32(w, _mm_alignr_epi8(m[(g + 3) & 3], m[(g + 2) & 3], 4)); /* + W[t-7] */
                w = _mm_sha256msg2_epu32(w, m[(g + 3) & 3]);                     /* + s1(W[t-2]) */
            }
            m[g & 3] = w;
            __m128i wk = _mm_add_epi32(w, _mm_loadu_si128((const __m128i *)(K + 4 * g)));
            st1 = _mm_sha256rnds2_epu32(st1, st0, wk);
            st0 = _mm_sha256rnds2_epu32(st0, st1, _mm_shuffle_epi32(wk, 0x0E));
        }
        st0 = _mm_add_epi32(st0, save0);
        st1 = _mm_add_epi32(st1, save1);
    }
    t = _mm_shuffle_epi32(st0, 0x1B);                 /* a b e f */
    st1 = _mm_shuffle_epi32(st1, 0xB1);               /* g h c d */
    _mm_storeu_si128((__m128i *)h, _mm_blend_epi16(t, st1, 0xF0));      /* a b c d */
    _mm_storeu_si128((__m128i *)(h + 4), _mm_alignr_epi8(st1, t, 8));   /* e f g h */
}

static bool cpu_has_sha(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    bool sha = (b >> 29) & 1;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    return sha && (c & bit_SSE4_1) && (c & bit_SSSE3);
}
#endif

static void blocks(sdc_sha256 *s, const uint8_t *p, size_t n) {
#ifdef HAVE_SHANI_PATH
    if (s->accel) {
        compress_shani(s->h, p, n);
        return;
    }
#endif
    for (; n; n--, p += 64) compress(s->h, p);
}

void sdc_sha256_init_portable(sdc_sha256 *s) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->len = 0;
    s->nbuf = 0;
    s->accel = false;
}

void sdc_sha256_init(sdc_sha256 *s) {
    sdc_sha256_init_portable(s);
#ifdef HAVE_SHANI_PATH
    s->accel = cpu_has_sha();
#endif
}

void sdc_sha256_update(sdc_sha256 *s, const void *data, size_t n) {
    const uint8_t *p = data;
    s->len += n;
    if (s->nbuf) {
        size_t take = 64 - s->nbuf < n ? 64 - s->nbuf : n;
        memcpy(s->buf + s->nbuf, p, take);
        s->nbuf += take;
        p += take;
        n -= take;
        if (s->nbuf < 64) return;
        blocks(s, s->buf, 1);
        s->nbuf = 0;
    }
    blocks(s, p, n / 64);
    p += n / 64 * 64;
    n %= 64;
    memcpy(s->buf, p, n);
    s->nbuf = n;
}

void sdc_sha256_final(sdc_sha256 *s, uint8_t digest[32]) {
    uint64_t bits = s->len * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (s->nbuf < 56 ? 56 : 120) - s->nbuf;
    for (int i = 0; i < 8; i++) pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
    uint64_t keep = s->len;
    sdc_sha256_update(s, pad, padlen + 8);
    s->len = keep;
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(s->h[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        digest[4 * i + 3] = (uint8_t)s->h[i];
    }
}

static void to_hex(const uint8_t d[32], char out[65]) {
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[64] = 0;
}

void sdc_sha256_hex(const void *data, size_t n, char out[65]) {
    sdc_sha256 s;
    uint8_t d[32];
    sdc_sha256_init(&s);
    sdc_sha256_update(&s, data, n);
    sdc_sha256_final(&s, d);
    to_hex(d, out);
}

/* ------------------------------------------------------------------ the cached file hash */

static bool cache_dir_default(char *buf, size_t len) {
    const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (x && *x) return (size_t)snprintf(buf, len, "%s/sdc", x) < len;
    if (home && *home) return (size_t)snprintf(buf, len, "%s/.cache/sdc", home) < len;
    return false;
}

static int64_t mtime_ns(const struct stat *st) { return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec; }

/* Looks the file up in the cache; true and the hex in out when found and still current. */
static bool cache_lookup(const char *cache, const char *abs, const struct stat *st, char out[65]) {
    FILE *f = fopen(cache, "r");
    if (!f) return false;
    char line[PATH_MAX + 128];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char hex[65];
        long long size, mt;
        int pos = 0;
        if (sscanf(line, "%64[0-9a-f]\t%lld\t%lld\t%n", hex, &size, &mt, &pos) != 3 || pos == 0) continue;
        if (strlen(hex) == 64 && size == (long long)st->st_size && mt == (long long)mtime_ns(st) &&
            strcmp(line + pos, abs) == 0) {
            memcpy(out, hex, 65);
            found = true;
        }
    }
    fclose(f);
    return found;
}

static void mkdirs(const char *dir) {
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s", dir) >= sizeof tmp) return;
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

/* Rewrites the cache with this file's line replacing any older line for the same path. */
static void cache_store(const char *dir, const char *cache, const char *abs, const struct stat *st, const char *hex) {
    mkdirs(dir);
    char tmp[PATH_MAX + 32];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", cache, (long)getpid()) >= sizeof tmp) return;
    FILE *out = fopen(tmp, "w");
    if (!out) return;
    FILE *in = fopen(cache, "r");
    if (in) {
        char line[PATH_MAX + 128];
        while (fgets(line, sizeof line, in)) {
            line[strcspn(line, "\n")] = 0;
            char h[65];
            long long size, mt;
            int pos = 0;
            if (sscanf(line, "%64[0-9a-f]\t%lld\t%lld\t%n", h, &size, &mt, &pos) != 3 || pos == 0) continue;
            if (strcmp(line + pos, abs) == 0) continue; /* this file's stale line */
            fprintf(out, "%s\n", line);
        }
        fclose(in);
    }
    fprintf(out, "%s\t%lld\t%lld\t%s\n", hex, (long long)st->st_size, (long long)mtime_ns(st), abs);
    if (fclose(out) != 0 || rename(tmp, cache) != 0) unlink(tmp);
}

sdc_status sdc_model_hash(const char *path, const char *cache_dir, char out[11], char *err, size_t errlen) {
    if (!path || !out) return sdc_fail(err, errlen, SDC_E_INVALID, "model hash: no path");
    out[0] = 0;
    struct stat st;
    if (stat(path, &st) != 0) return sdc_fail(err, errlen, SDC_E_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return sdc_fail(err, errlen, SDC_E_UNSUPPORTED, "%s: a folder has no single-file model hash", path);
    char abs[PATH_MAX];
    if (!realpath(path, abs)) return sdc_fail(err, errlen, SDC_E_IO, "%s: %s", path, strerror(errno));
    char dir[PATH_MAX], cache[PATH_MAX + 32];
    bool have_cache = cache_dir ? (size_t)snprintf(dir, sizeof dir, "%s", cache_dir) < sizeof dir
                                : cache_dir_default(dir, sizeof dir);
    if (have_cache) have_cache = (size_t)snprintf(cache, sizeof cache, "%s/model-hashes.tsv", dir) < sizeof cache;
    char hex[65];
    if (have_cache && cache_lookup(cache, abs, &st, hex)) {
        memcpy(out, hex, 10);
        out[10] = 0;
        return SDC_OK;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return sdc_fail(err, errlen, SDC_E_IO, "%s: %s", path, strerror(errno));
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf) {
        fclose(f);
        return sdc_fail(err, errlen, SDC_E_NOMEM, "model hash: out of memory");
    }
    sdc_sha256 s;
    sdc_sha256_init(&s);
    size_t r;
    while ((r = fread(buf, 1, CHUNK, f)) > 0) sdc_sha256_update(&s, buf, r);
    bool bad = ferror(f);
    fclose(f);
    free(buf);
    if (bad) return sdc_fail(err, errlen, SDC_E_IO, "%s: read error while hashing", path);
    uint8_t d[32];
    sdc_sha256_final(&s, d);
    to_hex(d, hex);
    memcpy(out, hex, 10);
    out[10] = 0;
    if (have_cache) cache_store(dir, cache, abs, &st, hex);
    return SDC_OK;
}
