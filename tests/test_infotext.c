/* test_infotext.c - A1111 infotext strings (byte-exact, written from A1111's create_infotext
 * format), Python str() of floats, SHA-256 test vectors (FIPS 180-4 examples), the cached model
 * hash, PNG "parameters" round trips (tEXt for Latin-1 text, iTXt otherwise), 8-bit conversion. */
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "image.h"
#include "sha256.h"
#include "testutil.h"

static char version[64];

static void expect_info(const sdc_txt2img_params *p, int64_t seed, const char *hash, const char *model,
                        const char *want_head) {
    char want[2048];
    snprintf(want, sizeof want, "%s, Version: sdc %s", want_head, sdc_version());
    size_t n = sdc_infotext(p, seed, hash, model, NULL, 0);
    char got[2048];
    size_t n2 = sdc_infotext(p, seed, hash, model, got, sizeof got);
    CHECK(n == n2);
    CHECK(n == strlen(got));
    CHECK_MSG(strcmp(got, want) == 0, "\n got: [%s]\nwant: [%s]", got, want);
    /* truncation as snprintf */
    char small[8];
    size_t n3 = sdc_infotext(p, seed, hash, model, small, sizeof small);
    CHECK(n3 == n && strlen(small) == 7 && memcmp(small, want, 7) == 0);
}

static void test_infotext(void) {
    sdc_txt2img_params p = sdc_txt2img_default_params();
    p.prompt = "a cat";
    expect_info(&p, 42, "0123456789", "v1-5-pruned-emaonly",
                "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, Model hash: 0123456789, "
                "Model: v1-5-pruned-emaonly");

    sdc_txt2img_params q = p;
    q.prompt = "a photo of an astronaut riding a horse on mars";
    q.negative_prompt = "ugly, blurry";
    q.steps = 30;
    q.sampler = "dpm++2m";
    q.schedule = "karras";
    q.cfg_scale = 7.5f;
    q.width = 640;
    q.height = 512;
    expect_info(&q, 1234567890123LL, "abcdef0123", "model",
                "a photo of an astronaut riding a horse on mars\nNegative prompt: ugly, blurry\nSteps: 30, Sampler: "
                "DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 1234567890123, Size: 640x512, Model hash: "
                "abcdef0123, Model: model");

    /* A1111 display names accepted as input; no hash/model; other schedule labels */
    q = p;
    q.sampler = "Euler";
    q.schedule = "ays";
    q.cfg_scale = 7.3f;
    expect_info(&q, 0, NULL, "", "a cat\nSteps: 20, Sampler: Euler, Schedule type: Align Your Steps, CFG scale: 7.3, "
                                 "Seed: 0, Size: 512x512");
    q.schedule = "sgm_uniform";
    q.cfg_scale = 0;
    expect_info(&q, 1, NULL, NULL, "a cat\nSteps: 20, Sampler: Euler, Schedule type: SGM Uniform, CFG scale: 0, "
                                   "Seed: 1, Size: 512x512");
    q.schedule = "Automatic"; /* = discrete: not shown */
    q.cfg_scale = 12.25f;
    expect_info(&q, 1, NULL, NULL, "a cat\nSteps: 20, Sampler: Euler, CFG scale: 12.25, Seed: 1, Size: 512x512");

    /* quoting: values holding ',' ':' or newline are JSON strings; the prompt is not quoted */
    q = p;
    q.prompt = "a, b: c";
    expect_info(&q, 5, "0123456789", "my, model",
                "a, b: c\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, Model hash: 0123456789, "
                "Model: \"my, model\"");
    expect_info(&q, 5, NULL, "x\"y:z\\w",
                "a, b: c\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, Model: \"x\\\"y:z\\\\w\"");
    expect_info(&q, 5, NULL, "caf\xc3\xa9:1", /* ensure_ascii=False: UTF-8 kept */
                "a, b: c\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, Model: \"caf\xc3\xa9:1\"");

    /* clip skip > 1, CPU noise, a non-default eta, in A1111's key order */
    q = p;
    q.clip_skip = 2;
    q.rng = "cpu";
    q.eta = 0.5f;
    expect_info(&q, 7, "0123456789", "m",
                "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 7, Size: 512x512, Model hash: 0123456789, "
                "Model: m, Clip skip: 2, RNG: CPU, Eta: 0.5");
    q.sampler = "ddim";
    q.eta = 0.25f;
    expect_info(&q, 7, NULL, NULL, "a cat\nSteps: 20, Sampler: DDIM, CFG scale: 7, Seed: 7, Size: 512x512, Clip skip: 2, "
                                   "RNG: CPU, Eta DDIM: 0.25");
    q.sampler = "euler_a";
    q.clip_skip = 1;  /* not shown */
    q.rng = "cuda";
    q.eta = 1.0f;     /* euler_a's default: not shown */
    expect_info(&q, 7, NULL, NULL, "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 7, Size: 512x512");

    /* whitespace: the whole text is stripped (Python str.strip), so an empty prompt starts at Steps */
    q = p;
    q.prompt = "";
    expect_info(&q, 1, NULL, NULL, "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512");
    q.prompt = "  hello  ";
    expect_info(&q, 1, NULL, NULL, "hello  \nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512");
    q.prompt = "line1\nline2";
    q.negative_prompt = "n1\nn2";
    expect_info(&q, 1, NULL, NULL,
                "line1\nline2\nNegative prompt: n1\nn2\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: "
                "512x512");
}

static void test_py_float(void) {
    static const struct { float f; const char *s; } cases[] = {
        {7.0f, "7"},          {7.5f, "7.5"},     {7.3f, "7.3"},         {0.0f, "0"},       {12.25f, "12.25"},
        {0.1f, "0.1"},        {0.0001f, "0.0001"}, {1e-05f, "1e-05"},  {1.5e-07f, "1.5e-07"}, {-2.5f, "-2.5"},
        {100.0f, "100"},      {0.333f, "0.333"}, {1234.5f, "1234.5"}, {3.1415927f, "3.1415927"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char b[64];
        sdc_py_float_str(cases[i].f, b, sizeof b);
        CHECK_MSG(strcmp(b, cases[i].s) == 0, "%.9g -> '%s', want '%s'", (double)cases[i].f, b, cases[i].s);
    }
}

static void test_sha256(void) {
    static const struct { const char *in, *hex; } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char hex[65];
        sdc_sha256_hex(v[i].in, strlen(v[i].in), hex);
        CHECK_MSG(strcmp(hex, v[i].hex) == 0, "sha256('%s') = %s", v[i].in, hex);
    }
    /* one million 'a', fed in uneven pieces (crossing block boundaries) */
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    sdc_sha256 s;
    sdc_sha256_init(&s);
    size_t off = 0, step = 1;
    while (off < 1000000) {
        size_t k = step < 1000000 - off ? step : 1000000 - off;
        sdc_sha256_update(&s, a + off, k);
        off += k;
        step = step * 3 + 1;
        if (step > 100000) step = 7;
    }
    uint8_t d[32];
    sdc_sha256_final(&s, d);
    char hex[65];
    for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", d[i]);
    CHECK_MSG(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0, "1M a: %s", hex);
    /* lengths 0..200 one-shot vs byte by byte */
    for (int n = 0; n <= 200; n++) {
        char h1[65], h2[65];
        sdc_sha256_hex(a, (size_t)n, h1);
        sdc_sha256_init(&s);
        for (int k = 0; k < n; k++) sdc_sha256_update(&s, a + k, 1);
        sdc_sha256_final(&s, d);
        for (int i = 0; i < 32; i++) sprintf(h2 + 2 * i, "%02x", d[i]);
        CHECK_MSG(strcmp(h1, h2) == 0, "streaming differs at n=%d", n);
    }
    free(a);
    /* the accelerated block function (when the CPU has one) against the portable one */
    sdc_sha256 probe;
    sdc_sha256_init(&probe);
    printf("sha256 block function: %s\n", probe.accel ? "x86 SHA extensions" : "portable");
    tu_rng r = {12345};
    size_t big = 200000;
    uint8_t *buf = malloc(big);
    for (size_t i = 0; i < big; i++) buf[i] = (uint8_t)tu_rng_u64(&r);
    size_t lens[] = {0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096, 65537, 200000};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        uint8_t d1[32], d2[32];
        sdc_sha256 s1, s2;
        sdc_sha256_init(&s1);
        sdc_sha256_init_portable(&s2);
        sdc_sha256_update(&s1, buf, lens[k]);
        sdc_sha256_update(&s2, buf, lens[k]);
        sdc_sha256_final(&s1, d1);
        sdc_sha256_final(&s2, d2);
        CHECK_MSG(memcmp(d1, d2, 32) == 0, "accelerated and portable digests differ at length %zu", lens[k]);
    }
    free(buf);
}

static void test_model_hash(const char *dir) {
    char path[1024], cache[1024], err[512];
    snprintf(path, sizeof path, "%s/model.bin", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    FILE *f = fopen(path, "wb");
    fputs("abc", f);
    fclose(f);
    char h[11];
    CHECK(sdc_model_hash(path, cache, h, err, sizeof err) == SDC_OK);
    CHECK_MSG(strcmp(h, "ba7816bf8f") == 0, "hash %s", h);
    /* the cache answers now: prove it by planting a different hash for the same file */
    char tsv[1100];
    snprintf(tsv, sizeof tsv, "%s/model-hashes.tsv", cache);
    FILE *c = fopen(tsv, "r");
    CHECK(c != NULL);
    char line[2048] = "";
    if (c) {
        if (!fgets(line, sizeof line, c)) line[0] = 0;
        fclose(c);
    }
    CHECK(strncmp(line, "ba7816bf8f01cfea", 16) == 0);
    line[0] = '0';
    line[1] = '0';
    c = fopen(tsv, "w");
    fputs(line, c);
    fclose(c);
    CHECK(sdc_model_hash(path, cache, h, err, sizeof err) == SDC_OK);
    CHECK_MSG(strcmp(h, "007816bf8f") == 0, "cached hash not used: %s", h);
    /* a changed file (size) is hashed again and replaces its line */
    f = fopen(path, "wb");
    fputs("abcd", f);
    fclose(f);
    CHECK(sdc_model_hash(path, cache, h, err, sizeof err) == SDC_OK);
    char want[65];
    sdc_sha256_hex("abcd", 4, want);
    CHECK_MSG(strncmp(h, want, 10) == 0, "rehash: %s vs %.10s", h, want);
    c = fopen(tsv, "r");
    int lines = 0;
    while (c && fgets(line, sizeof line, c)) lines++;
    if (c) fclose(c);
    CHECK_MSG(lines == 1, "cache has %d lines", lines);
    /* errors */
    CHECK(sdc_model_hash("/nonexistent/x.safetensors", cache, h, err, sizeof err) == SDC_E_IO);
    CHECK(sdc_model_hash(dir, cache, h, err, sizeof err) == SDC_E_UNSUPPORTED);
    /* an unwritable cache only costs the hashing */
    CHECK(sdc_model_hash(path, "/proc/nonexistent/sdc", h, err, sizeof err) == SDC_OK && strncmp(h, want, 10) == 0);
}

static bool read_png_pixels(const char *path, int *w, int *h, uint8_t **rgb) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        return false;
    }
    png_init_io(png, f);
    png_read_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    *w = (int)png_get_image_width(png, info);
    *h = (int)png_get_image_height(png, info);
    png_bytepp rows = png_get_rows(png, info);
    *rgb = malloc((size_t)*w * *h * 3);
    for (int y = 0; y < *h; y++) memcpy(*rgb + (size_t)y * *w * 3, rows[y], (size_t)*w * 3);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    return true;
}

static bool file_has(const char *path, const char *needle) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    size_t L = strlen(needle);
    for (size_t i = 0; i + L <= n; i++)
        if (!memcmp(buf + i, needle, L)) return true;
    return false;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

static void test_png(const char *dir) {
    char pdir[1024];
    snprintf(pdir, sizeof pdir, "%s/png", dir);
    mkdir(pdir, 0755);
    DIR *dd = opendir(pdir); /* a fresh folder: earlier runs leave their files */
    struct dirent *de;
    while (dd && (de = readdir(dd))) {
        char f[1400];
        snprintf(f, sizeof f, "%s/%s", pdir, de->d_name);
        if (de->d_name[0] != '.') unlink(f);
    }
    if (dd) closedir(dd);
    sdc_image img = {.width = 5, .height = 4, .channels = 3};
    img.data = malloc(5 * 4 * 3);
    for (int i = 0; i < 60; i++) img.data[i] = (uint8_t)(i * 17 + 3);
    const char *texts[] = {"a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512",
                           "caf\xc3\xa9 \xc3\xbf\nSteps: 1",          /* Latin-1 only: tEXt */
                           "\xe7\x8c\xab \xf0\x9f\x90\x88\nSteps: 1"}; /* CJK + emoji: iTXt */
    const char *chunk[] = {"tEXtparameters", "tEXtparameters", "iTXtparameters"};
    char err[512], path[1100];
    snprintf(path, sizeof path, "%s/out.png", pdir);
    for (int k = 0; k < 3; k++) {
        CHECK_MSG(sdc_image_write_png(path, &img, texts[k], err, sizeof err) == SDC_OK, "%s", err);
        char *back = NULL;
        CHECK_MSG(sdc_png_read_text(path, "parameters", &back, err, sizeof err) == SDC_OK, "%s", err);
        CHECK_MSG(back && strcmp(back, texts[k]) == 0, "round trip %d: [%s]", k, back ? back : "(null)");
        sdc_free(back);
        CHECK_MSG(file_has(path, chunk[k]), "case %d: expected a %.4s chunk", k, chunk[k]);
        int w, h;
        uint8_t *px = NULL;
        CHECK(read_png_pixels(path, &w, &h, &px) && w == 5 && h == 4 && memcmp(px, img.data, 60) == 0);
        free(px);
    }
    CHECK_MSG(count_entries(pdir) == 1, "temporary files left: %d entries", count_entries(pdir));
    /* no chunk */
    CHECK(sdc_image_write_png(path, &img, NULL, err, sizeof err) == SDC_OK);
    char *back = (char *)1;
    CHECK(sdc_png_read_text(path, "parameters", &back, err, sizeof err) == SDC_OK && back == NULL);
    /* byte-identical files for identical input */
    char path2[1100];
    snprintf(path2, sizeof path2, "%s/out2.png", pdir);
    CHECK(sdc_image_write_png(path, &img, texts[0], err, sizeof err) == SDC_OK);
    CHECK(sdc_image_write_png(path2, &img, texts[0], err, sizeof err) == SDC_OK);
    FILE *a = fopen(path, "rb"), *b = fopen(path2, "rb");
    int same = a && b;
    while (same) {
        int ca = fgetc(a), cb = fgetc(b);
        if (ca != cb) same = 0;
        if (ca == EOF || cb == EOF) break;
    }
    if (a) fclose(a);
    if (b) fclose(b);
    CHECK_MSG(same, "two writes differ");
    unlink(path2);
    /* errors: not a PNG; a missing folder leaves nothing */
    char txt[1100];
    snprintf(txt, sizeof txt, "%s/not.png", pdir);
    FILE *f = fopen(txt, "wb");
    fputs("hello, not a png", f);
    fclose(f);
    CHECK(sdc_png_read_text(txt, "parameters", &back, err, sizeof err) == SDC_E_FORMAT);
    snprintf(path2, sizeof path2, "%s/nope/out.png", pdir);
    CHECK(sdc_image_write_png(path2, &img, texts[0], err, sizeof err) == SDC_E_IO);
    CHECK(access(path2, F_OK) != 0);
    free(img.data);
}

static void test_u8(void) {
    /* x [3, 1, 4] (channel planes) -> pixels: round(clamp(x/2 + 0.5, 0, 1) * 255), ties to even, NaN -> 0 */
    float x[12] = {-1, 1, 0, -2, /* c0 -> 0, 255, 127.5 -> 128, clamp 0 */
                   3, NAN, 0.5f, -0.5f, /* c1 -> 255, 0, 191.25 -> 191, 63.75 -> 64 */
                   -0.6f, 2.0f / 255 - 1, 0.999f, -0.999f}; /* c2 -> 51, 1, 254.87 -> 255, 0.13 -> 0 */
    uint8_t o[12];
    sdc_image_to_u8(x, 4, 1, o);
    const uint8_t want[12] = {0, 255, 51, 255, 0, 1, 128, 191, 255, 0, 64, 0};
    CHECK_MSG(memcmp(o, want, 12) == 0, "%d %d %d | %d %d %d | %d %d %d | %d %d %d", o[0], o[1], o[2], o[3], o[4], o[5],
              o[6], o[7], o[8], o[9], o[10], o[11]);
}

int main(void) {
    snprintf(version, sizeof version, "%s", sdc_version());
    const char *dir = tu_tmpdir("test_infotext");
    test_infotext();
    test_py_float();
    test_sha256();
    test_model_hash(dir);
    test_png(dir);
    test_u8();
    return check_done();
}
