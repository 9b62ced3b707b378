/* image.c - 8-bit images, PNG files with A1111's "parameters" text chunk, and the infotext.
 *
 * PNG through libpng. The "parameters" chunk is written as PIL writes it for A1111
 * (PngInfo.add_text): tEXt holding the text in Latin-1 when every character fits, else an
 * uncompressed iTXt holding UTF-8. Reading accepts tEXt, zTXt and iTXt and returns UTF-8.
 *
 * The infotext follows A1111 modules/processing.py create_infotext: the prompt, then
 * "\nNegative prompt: ..." when there is one, then "\n" and the generation parameters
 * "Key: value" joined by ", " in A1111's key order, values passed through quote()
 * (modules/infotext_utils.py: JSON-quoted when they hold ',', ':' or '\n'), the whole
 * stripped of surrounding whitespace. */
#include "image.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "sampler.h"
#include "schedule.h"

void sdc_free(void *p) { free(p); }

/* ------------------------------------------------------------------ pixels */

void sdc_image_to_u8(const float *chw, int w, int h, uint8_t *out) {
    size_t plane = (size_t)w * h;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < plane; i++) {
            float v = chw[c * plane + i] / 2.0f + 0.5f;
            if (!(v >= 0.0f)) v = 0.0f; /* NaN too */
            if (v > 1.0f) v = 1.0f;
            out[i * 3 + c] = (uint8_t)nearbyintf(v * 255.0f);
        }
}

void sdc_images_free(sdc_image *images, int n) {
    if (!images) return;
    for (int i = 0; i < n; i++) free(images[i].data);
    free(images);
}

/* ------------------------------------------------------------------ string building */

void sdc_strbuf_put(sdc_strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

void sdc_strbuf_printf(sdc_strbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        sdc_strbuf_put(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sdc_strbuf_put(b, big, (size_t)n);
    free(big);
}

void sdc_py_float_str(float f, char *buf, size_t len) {
    if (isnan(f)) {
        snprintf(buf, len, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, len, f > 0 ? "inf" : "-inf");
        return;
    }
    if (f == truncf(f) && fabsf(f) < 1e16f) {
        snprintf(buf, len, "%.0f", (double)f);
        return;
    }
    /* shortest significand that reads back as the same float */
    char e[64];
    int p = 1;
    for (; p <= 9; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, (double)f);
        if (strtof(e, NULL) == f) break;
    }
    /* e = "-d.ddde+XX": split into sign, digits, exponent */
    const char *s = e;
    bool neg = *s == '-';
    if (neg) s++;
    char digits[32];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') digits[nd++] = *s;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    int ex = atoi(s + 1);
    char out[64];
    size_t o = 0;
    if (neg) out[o++] = '-';
    if (ex >= -4 && ex < 16) {
        if (ex >= 0) {
            for (int i = 0; i <= ex; i++) out[o++] = i < nd ? digits[i] : '0';
            out[o++] = '.';
            if (nd > ex + 1)
                for (int i = ex + 1; i < nd; i++) out[o++] = digits[i];
            else
                out[o++] = '0';
        } else {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -ex - 1; i++) out[o++] = '0';
            for (int i = 0; i < nd; i++) out[o++] = digits[i];
        }
        out[o] = 0;
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++) out[o++] = digits[i];
        }
        snprintf(out + o, sizeof out - o, "e%c%02d", ex < 0 ? '-' : '+', ex < 0 ? -ex : ex);
    }
    snprintf(buf, len, "%s", out);
}

void sdc_infotext_quote(sdc_strbuf *b, const char *v) {
    if (!strpbrk(v, ",:\n")) {
        sdc_strbuf_put(b, v, strlen(v));
        return;
    }
    /* json.dumps(v, ensure_ascii=False) */
    sdc_strbuf_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        switch (*p) {
        case '"': sdc_strbuf_put(b, "\\\"", 2); break;
        case '\\': sdc_strbuf_put(b, "\\\\", 2); break;
        case '\n': sdc_strbuf_put(b, "\\n", 2); break;
        case '\r': sdc_strbuf_put(b, "\\r", 2); break;
        case '\t': sdc_strbuf_put(b, "\\t", 2); break;
        case '\b': sdc_strbuf_put(b, "\\b", 2); break;
        case '\f': sdc_strbuf_put(b, "\\f", 2); break;
        default:
            if (*p < 0x20) sdc_strbuf_printf(b, "\\u%04x", *p);
            else sdc_strbuf_put(b, (const char *)p, 1);
        }
    }
    sdc_strbuf_put(b, "\"", 1);
}

/* ------------------------------------------------------------------ infotext */

static void param(sdc_strbuf *b, bool *first, const char *key, const char *value) {
    if (!*first) sdc_strbuf_put(b, ", ", 2);
    *first = false;
    sdc_strbuf_put(b, key, strlen(key));
    sdc_strbuf_put(b, ": ", 2);
    sdc_infotext_quote(b, value);
}

/* A1111's "Schedule type" labels (modules/sd_schedulers.py). */
static const char *schedule_label(int kind) {
    switch (kind) {
    case SDC_SCHEDULE_KARRAS: return "Karras";
    case SDC_SCHEDULE_EXPONENTIAL: return "Exponential";
    case SDC_SCHEDULE_AYS: return "Align Your Steps";
    case SDC_SCHEDULE_SGM_UNIFORM: return "SGM Uniform";
    case SDC_SCHEDULE_SIMPLE: return "Simple";
    default: return NULL; /* discrete: the samplers' default ("Automatic"), not shown */
    }
}

static bool is_py_space(unsigned char c) { return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f); }

size_t sdc_infotext(const sdc_txt2img_params *p, int64_t seed, const char *model_hash, const char *model_name,
                    char *out, size_t outlen) {
    sdc_strbuf b = {0};
    const char *prompt = p && p->prompt ? p->prompt : "";
    sdc_strbuf_put(&b, prompt, strlen(prompt));
    if (p && p->negative_prompt && *p->negative_prompt) {
        sdc_strbuf_put(&b, "\nNegative prompt: ", 18);
        sdc_strbuf_put(&b, p->negative_prompt, strlen(p->negative_prompt));
    }
    sdc_strbuf_put(&b, "\n", 1);
    if (p) {
        bool first = true;
        char v[128];
        snprintf(v, sizeof v, "%d", p->steps);
        param(&b, &first, "Steps", v);
        int sk = sdc_sampler_kind_parse(p->sampler ? p->sampler : "euler_a");
        param(&b, &first, "Sampler", sk >= 0 ? sdc_sampler_display_name((sdc_sampler_kind)sk) : p->sampler);
        int sc = sdc_schedule_kind_parse(p->schedule ? p->schedule : "discrete");
        const char *label = schedule_label(sc);
        if (label) param(&b, &first, "Schedule type", label);
        sdc_py_float_str(p->cfg_scale, v, sizeof v);
        param(&b, &first, "CFG scale", v);
        snprintf(v, sizeof v, "%lld", (long long)seed);
        param(&b, &first, "Seed", v);
        snprintf(v, sizeof v, "%dx%d", p->width, p->height);
        param(&b, &first, "Size", v);
        if (model_hash && *model_hash) param(&b, &first, "Model hash", model_hash);
        if (model_name && *model_name) param(&b, &first, "Model", model_name);
        if (p->clip_skip > 1) {
            snprintf(v, sizeof v, "%d", p->clip_skip);
            param(&b, &first, "Clip skip", v);
        }
        if (p->rng && sdc_rng_kind_parse(p->rng) == SDC_RNG_CPU) param(&b, &first, "RNG", "CPU");
        if (sk >= 0 && !isnan(p->eta) && p->eta != sdc_sampler_default_eta((sdc_sampler_kind)sk)) {
            sdc_py_float_str(p->eta, v, sizeof v);
            /* A1111: "Eta DDIM" for DDIM (opts.eta_ddim), "Eta" for the k-diffusion samplers */
            param(&b, &first, sk == SDC_SAMPLER_DDIM ? "Eta DDIM" : "Eta", v);
        }
        /* sdc's own keys for the fast paths: the image differs */
        if (p->int8_linear) param(&b, &first, "Int8 linear", "True");
        if (p->bf16) param(&b, &first, "BF16", "True");
        snprintf(v, sizeof v, "sdc %s", sdc_version());
        param(&b, &first, "Version", v);
    }
    /* Python's str.strip() */
    size_t start = 0, end = b.len;
    while (start < end && is_py_space((unsigned char)b.s[start])) start++;
    while (end > start && is_py_space((unsigned char)b.s[end - 1])) end--;
    size_t n = b.oom ? 0 : end - start;
    if (out && outlen) {
        size_t k = n < outlen - 1 ? n : outlen - 1;
        if (k) memcpy(out, b.s + start, k);
        out[k] = 0;
    }
    free(b.s);
    return n;
}

/* ------------------------------------------------------------------ PNG */

typedef struct png_err {
    char msg[256];
} png_err;

static void on_png_error(png_structp png, png_const_charp msg) {
    png_err *e = png_get_error_ptr(png);
    if (e) snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(png, 1);
}
static void on_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

/* UTF-8 -> Latin-1 when every code point is <= U+00FF; false otherwise (invalid UTF-8 too). */
static bool utf8_to_latin1(const char *s, char **out) {
    size_t n = strlen(s);
    char *o = malloc(n + 1), *q = o;
    if (!o) return false;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p < 0x80) *q++ = (char)*p++;
        else if ((p[0] == 0xc2 || p[0] == 0xc3) && (p[1] & 0xc0) == 0x80) {
            *q++ = (char)(((p[0] & 0x1f) << 6) | (p[1] & 0x3f));
            p += 2;
        } else {
            free(o);
            return false;
        }
    }
    *q = 0;
    *out = o;
    return true;
}

static char *latin1_to_utf8(const char *s, size_t n) {
    char *o = malloc(2 * n + 1), *q = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) *q++ = (char)c;
        else {
            *q++ = (char)(0xc0 | (c >> 6));
            *q++ = (char)(0x80 | (c & 0x3f));
        }
    }
    *q = 0;
    return o;
}

static sdc_status write_png_file(FILE *f, const sdc_image *img, const char *parameters, char *err, size_t errlen) {
    png_err pe = {{0}};
    char *volatile latin = NULL;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &pe, on_png_error, on_png_warning);
    if (!png) return sdc_fail(err, errlen, SDC_E_NOMEM, "png: out of memory");
    png_infop info = png_create_info_struct(png);
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        free(latin);
        return sdc_fail(err, errlen, SDC_E_IO, "png: %s", pe.msg[0] ? pe.msg : "out of memory");
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 img->channels == 4 ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (parameters) {
        png_text t;
        memset(&t, 0, sizeof t);
        t.key = (png_charp) "parameters";
        char *l1 = NULL;
        if (utf8_to_latin1(parameters, &l1)) {
            latin = l1;
            t.compression = PNG_TEXT_COMPRESSION_NONE;
            t.text = latin;
            t.text_length = strlen(latin);
        } else {
            t.compression = PNG_ITXT_COMPRESSION_NONE;
            t.text = (png_charp)parameters;
            t.itxt_length = strlen(parameters);
            t.lang = (png_charp) "";
            t.lang_key = (png_charp) "";
        }
        png_set_text(png, info, &t, 1);
    }
    png_write_info(png, info);
    rows = malloc(sizeof *rows * (size_t)img->height);
    if (!rows) png_error(png, "out of memory");
    for (int y = 0; y < img->height; y++) rows[y] = img->data + (size_t)y * img->width * img->channels;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    free(latin);
    return SDC_OK;
}

sdc_status sdc_image_write_png(const char *path, const sdc_image *img, const char *parameters, char *err,
                               size_t errlen) {
    if (!path || !img || !img->data || img->width <= 0 || img->height <= 0 || (img->channels != 3 && img->channels != 4))
        return sdc_fail(err, errlen, SDC_E_INVALID, "write png: bad image");
    size_t L = strlen(path);
    char *tmp = malloc(L + 32);
    if (!tmp) return sdc_fail(err, errlen, SDC_E_NOMEM, "out of memory");
    /* the temporary sits beside the target (same file system, so rename is atomic) */
    snprintf(tmp, L + 32, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        sdc_status s = sdc_fail(err, errlen, SDC_E_IO, "%s: cannot create a file there: %s", path, strerror(errno));
        free(tmp);
        return s;
    }
    fchmod(fd, 0644); /* mkstemp makes 0600; images are ordinary files */
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return sdc_fail(err, errlen, SDC_E_IO, "%s: %s", path, strerror(errno));
    }
    sdc_status s = write_png_file(f, img, parameters, err, errlen);
    if (fclose(f) != 0 && s == SDC_OK) s = sdc_fail(err, errlen, SDC_E_IO, "%s: %s", path, strerror(errno));
    if (s == SDC_OK && rename(tmp, path) != 0) s = sdc_fail(err, errlen, SDC_E_IO, "%s: %s", path, strerror(errno));
    if (s != SDC_OK) {
        unlink(tmp);
        sdc_err_prefix(err, errlen, path);
    }
    free(tmp);
    return s;
}

sdc_status sdc_png_read_text(const char *path, const char *key, char **value, char *err, size_t errlen) {
    if (!path || !key || !value) return sdc_fail(err, errlen, SDC_E_INVALID, "read png text: bad arguments");
    *value = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return sdc_fail(err, errlen, SDC_E_IO, "%s: %s", path, strerror(errno));
    unsigned char sig[8];
    if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8)) {
        fclose(f);
        return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: not a PNG file", path);
    }
    png_err pe = {{0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &pe, on_png_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        free(*value);
        *value = NULL;
        return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: %s", path, pe.msg[0] ? pe.msg : "out of memory");
    }
    png_init_io(png, f);
    png_set_sig_bytes(png, 8);
    /* the whole file, so text chunks after the image data are seen too */
    png_read_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_textp text = NULL;
    int nt = 0;
    png_get_text(png, info, &text, &nt);
    for (int i = 0; i < nt && !*value; i++) {
        if (strcmp(text[i].key, key) != 0) continue;
        if (text[i].compression == PNG_ITXT_COMPRESSION_NONE || text[i].compression == PNG_ITXT_COMPRESSION_zTXt) {
            *value = sdc_strndup(text[i].text, text[i].itxt_length);
        } else {
            *value = latin1_to_utf8(text[i].text, text[i].text_length);
        }
    }
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    return SDC_OK;
}
