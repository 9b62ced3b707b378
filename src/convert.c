/* convert.c - `sdc convert`: any readable SD 1.x model -> one GGUF file.
 *
 * Which type each tensor gets (sdc_convert_tensor_type):
 *   - float targets (f32, f16, bf16): every network tensor in that type;
 *   - block targets (q8_0, q5_1, q5_0, q4_1, q4_0): a tensor is quantized when its rows
 *     (innermost dimension) are a multiple of the block size, except - by default - 1-D
 *     tensors (biases, norm weights), the token/position embeddings and the time embedding,
 *     which stay F16 (a few MB for a clearly better result). --quantize-all drops that
 *     exception: the rule of the published stable-diffusion-v1-5-GGUF files (made by
 *     stable-diffusion.cpp's 2024 converter). Conv kernels (rows of 3 or 1) stay F16.
 *   - alphas_cumprod (the schedule) is written as F32 so the sigmas keep full precision.
 * Block types are quantized row by row (rows = the innermost dimension) with ggml's
 * importance-weighted scale search at unit importance (sdc_quantize_rows, weighted): lower
 * error than the reference quantizers for Q4_0..Q5_1, and the same bytes stable-diffusion.cpp
 * writes for every type.
 * Tensors outside the three networks (EMA bookkeeping, other schedule buffers,
 * position_ids) are not written. Tensors already in the target type are copied verbatim.
 *
 * The file is written to "<out>.tmp.XXXXXX" in the same directory, flushed to disk, and
 * renamed over out only when complete. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "gguf.h"
#include "model.h"
#include "quant.h"
#include "sdc.h"
#include "tensor.h"
#include "vocab.h"

sdc_convert_params sdc_convert_default_params(void) {
    sdc_convert_params p = {0};
    p.type = "f16";
    return p;
}

static bool is_kept_in_f16(const char *name, int ndim) {
    if (ndim <= 1) return true; /* biases, norm weights */
    if (strstr(name, "token_embedding") || strstr(name, "position_embedding")) return true;
    if (strncmp(name, SDC_PREFIX_UNET "time_embed.", strlen(SDC_PREFIX_UNET "time_embed.")) == 0) return true;
    return false;
}

static int convert_type(const char *name, int ndim, const int64_t *shape, sdc_type src, sdc_type target,
                        bool quantize_all) {
    const sdc_type_traits *st = sdc_type_traits_of(src);
    if (!st || !st->is_float) return (int)src;
    if (strcmp(name, "alphas_cumprod") == 0) return SDC_TYPE_F32;
    const sdc_type_traits *tt = sdc_type_traits_of(target);
    if (!tt->is_quant) return (int)target;
    int64_t row = ndim ? shape[ndim - 1] : 1;
    if (row % tt->block != 0) return SDC_TYPE_F16;
    if (!quantize_all && is_kept_in_f16(name, ndim)) return SDC_TYPE_F16;
    return (int)target;
}

static const char *const TARGETS[] = {"f32", "f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0"};

static int parse_target(const char *name) {
    if (!name) return -1;
    for (size_t i = 0; i < sizeof TARGETS / sizeof *TARGETS; i++)
        if (strcmp(name, TARGETS[i]) == 0) return sdc_type_from_name(name);
    return -1;
}

const char *sdc_convert_tensor_type(const char *name, int ndim, const int64_t *shape, const char *src_type,
                                    const sdc_convert_params *p) {
    int src = sdc_type_from_name(src_type), target = parse_target(p ? p->type : NULL);
    if (src < 0 || target < 0 || ndim < 0 || ndim > SDC_MAX_DIMS) return "?";
    return sdc_type_name((sdc_type)convert_type(name, ndim, shape, (sdc_type)src, (sdc_type)target,
                                                 p->quantize_all));
}

/* Tensors that go into the output: the three networks and the schedule. */
static bool wanted(const sdc_tensor_info *ti) {
    if (ti->component != SDC_COMPONENT_OTHER) return strcmp(ti->type, "i64") != 0 && strcmp(ti->type, "i32") != 0;
    return strcmp(ti->name, "alphas_cumprod") == 0;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

typedef struct {
    sdc_model *m;
    sdc_gguf_writer *w;
    FILE *f;
    char *tmp_path;
    sdc_merges merges;
    float *f32buf;
    size_t f32cap;
    void *outbuf;
    size_t outcap;
} convert_state;

static void state_free(convert_state *s, bool remove_tmp) {
    if (s->f) fclose(s->f);
    if (remove_tmp && s->tmp_path) unlink(s->tmp_path);
    free(s->tmp_path);
    sdc_gguf_writer_free(s->w);
    sdc_model_free(s->m);
    sdc_merges_free(&s->merges);
    free(s->f32buf);
    free(s->outbuf);
}

static bool grow(void **buf, size_t *cap, size_t need) {
    if (*cap >= need) return true;
    void *nb = realloc(*buf, need);
    if (!nb) return false;
    *buf = nb;
    *cap = need;
    return true;
}

/* Produces the bytes of tensor t in type dst into s->outbuf (or points *data at the source
 * bytes when no conversion is needed). */
static sdc_status convert_data(convert_state *s, const sdc_tensor *t, sdc_type dst, const void **data,
                               uint64_t *nbytes, char *err, size_t errlen) {
    int64_t n = sdc_tensor_nelem(t);
    if (!sdc_type_bytes(dst, (uint64_t)n, nbytes))
        return sdc_fail(err, errlen, SDC_E_INTERNAL, "%s: %lld values do not fit type %s", t->name, (long long)n,
                        sdc_type_name(dst));
    if (dst == t->type) {
        *data = t->data;
        return SDC_OK;
    }
    if (!grow((void **)&s->f32buf, &s->f32cap, (size_t)n * sizeof(float) + 1) ||
        !grow(&s->outbuf, &s->outcap, (size_t)*nbytes + 1))
        return sdc_fail(err, errlen, SDC_E_NOMEM, "%s: out of memory converting", t->name);
    if (!sdc_dequantize_row(t->type, t->data, s->f32buf, n))
        return sdc_fail(err, errlen, SDC_E_UNSUPPORTED, "%s: cannot read type %s", t->name, sdc_type_name(t->type));
    /* rows are the innermost dimension; block types use the weighted search, as
     * stable-diffusion.cpp's converter does (byte-identical output) */
    const int64_t n_per_row = t->ndim ? t->shape[t->ndim - 1] : 1;
    const int64_t nrows = n_per_row ? n / n_per_row : 0;
    if (!sdc_quantize_rows(dst, s->f32buf, s->outbuf, nrows, n_per_row, true))
        return sdc_fail(err, errlen, SDC_E_UNSUPPORTED, "%s: cannot write type %s", t->name, sdc_type_name(dst));
    *data = s->outbuf;
    return SDC_OK;
}

sdc_status sdc_convert(const char *in_path, const char *out_path, const sdc_convert_params *p, char *err,
                       size_t errlen) {
    if (!in_path || !out_path || !p)
        return sdc_fail(err, errlen, SDC_E_INVALID, "convert: input, output and parameters are required");
    int target = parse_target(p->type);
    if (target < 0)
        return sdc_fail(err, errlen, SDC_E_INVALID,
                        "convert: unknown type '%s' (valid: f32, f16, bf16, q8_0, q5_1, q5_0, q4_1, q4_0)",
                        p->type ? p->type : "(null)");

    convert_state s = {0};
    sdc_status st;
    if (p->vocab_path && (st = sdc_merges_load(p->vocab_path, &s.merges, err, errlen)) != SDC_OK) return st;
    if ((st = sdc_model_open(in_path, &s.m, err, errlen)) != SDC_OK) {
        state_free(&s, false);
        return st;
    }
    if ((st = sdc_model_check(s.m, err, errlen)) != SDC_OK) {
        sdc_err_prefix(err, errlen, in_path);
        state_free(&s, false);
        return st;
    }

    s.w = sdc_gguf_writer_new(32);
    if (!s.w) {
        state_free(&s, false);
        return sdc_fail(err, errlen, SDC_E_NOMEM, "convert: out of memory");
    }
    char ver[64];
    snprintf(ver, sizeof ver, "sdc %s", sdc_version());
    sdc_gguf_writer_set_str(s.w, "general.architecture", sdc_model_arch(s.m) == SDC_ARCH_SD1_INPAINT ? "sd1-inpaint" : "sd1");
    sdc_gguf_writer_set_str(s.w, "general.name", base_name(in_path));
    sdc_gguf_writer_set_str(s.w, "general.source.format", sdc_model_format(s.m));
    sdc_gguf_writer_set_str(s.w, "general.converter", ver);
    sdc_gguf_writer_set_u32(s.w, "general.quantization_version", 2);
    sdc_gguf_writer_set_str(s.w, "sdc.quantization", p->type);
    sdc_gguf_writer_set_bool(s.w, "sdc.quantize_all", p->quantize_all);
    if (s.merges.n) {
        sdc_gguf_writer_set_str(s.w, "tokenizer.ggml.model", "clip-bpe");
        st = sdc_gguf_writer_set_arr_str(s.w, "tokenizer.ggml.merges", (const char *const *)s.merges.rules,
                                         (uint64_t)s.merges.n);
        if (st != SDC_OK) {
            state_free(&s, false);
            return sdc_fail(err, errlen, st, "convert: cannot store the vocabulary");
        }
    }

    /* declare the tensors */
    int n = sdc_model_tensor_count(s.m), n_out = 0;
    int *types = calloc((size_t)n + 1, sizeof *types);
    if (!types) {
        state_free(&s, false);
        return sdc_fail(err, errlen, SDC_E_NOMEM, "convert: out of memory");
    }
    for (int i = 0; i < n; i++) {
        sdc_tensor_info ti;
        types[i] = -1;
        if (sdc_model_tensor_info(s.m, i, &ti) != SDC_OK || !wanted(&ti)) continue;
        const sdc_tensor *t = sdc_model_get(s.m, ti.name);
        types[i] = convert_type(t->name, t->ndim, t->shape, t->type, (sdc_type)target, p->quantize_all);
        if ((st = sdc_gguf_writer_add_tensor(s.w, t->name, (sdc_type)types[i], t->ndim, t->shape)) != SDC_OK) {
            free(types);
            state_free(&s, false);
            return sdc_fail(err, errlen, st, "convert: cannot declare tensor %s", t->name);
        }
        n_out++;
    }

    /* temporary output beside the final name */
    size_t plen = strlen(out_path) + 16;
    s.tmp_path = malloc(plen);
    if (!s.tmp_path) {
        free(types);
        state_free(&s, false);
        return sdc_fail(err, errlen, SDC_E_NOMEM, "convert: out of memory");
    }
    snprintf(s.tmp_path, plen, "%s.tmp.XXXXXX", out_path);
    int fd = mkstemp(s.tmp_path);
    if (fd < 0) {
        st = sdc_fail(err, errlen, SDC_E_IO, "%s: cannot create output: %s", out_path, strerror(errno));
        free(s.tmp_path);
        s.tmp_path = NULL;
        free(types);
        state_free(&s, false);
        return st;
    }
    fchmod(fd, 0644); /* mkstemp creates 0600; a model file is for everyone to read */
    s.f = fdopen(fd, "wb");
    if (!s.f) {
        close(fd);
        free(types);
        st = sdc_fail(err, errlen, SDC_E_IO, "%s: cannot open output: %s", out_path, strerror(errno));
        state_free(&s, true);
        return st;
    }
    if ((st = sdc_gguf_writer_begin(s.w, s.f, err, errlen)) != SDC_OK) goto fail;

    int done = 0;
    for (int i = 0; i < n; i++) {
        if (types[i] < 0) continue;
        sdc_tensor_info ti;
        sdc_model_tensor_info(s.m, i, &ti);
        const sdc_tensor *t = sdc_model_get(s.m, ti.name);
        if (p->progress && !p->progress(p->progress_user, done, n_out, t->name)) {
            st = sdc_fail(err, errlen, SDC_E_CANCELLED, "convert: cancelled");
            goto fail;
        }
        const void *data = NULL;
        uint64_t nbytes = 0;
        if ((st = convert_data(&s, t, (sdc_type)types[i], &data, &nbytes, err, errlen)) != SDC_OK) goto fail;
        if ((st = sdc_gguf_writer_write_data(s.w, data, nbytes, err, errlen)) != SDC_OK) goto fail;
        done++;
    }
    if ((st = sdc_gguf_writer_end(s.w, err, errlen)) != SDC_OK) goto fail;
    if (fflush(s.f) != 0 || fsync(fileno(s.f)) != 0) {
        st = sdc_fail(err, errlen, SDC_E_IO, "%s: write failed: %s", out_path, strerror(errno));
        goto fail;
    }
    int rc = fclose(s.f);
    s.f = NULL;
    if (rc != 0 || rename(s.tmp_path, out_path) != 0) {
        st = sdc_fail(err, errlen, SDC_E_IO, "%s: cannot finish output: %s", out_path, strerror(errno));
        goto fail;
    }
    if (p->progress) p->progress(p->progress_user, done, n_out, "done");
    free(types);
    state_free(&s, false);
    return SDC_OK;

fail:
    free(types);
    state_free(&s, true);
    return st;
}
