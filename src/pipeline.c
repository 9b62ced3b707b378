/* pipeline.c - text to image: prompt -> CLIP -> sampler over the UNet -> VAE -> 8-bit RGB.
 *
 * Stages (each timed and logged with the peak RSS so far):
 *   text   vocabulary search (model metadata, --vocab, $SDC_VOCAB, the cache: tokenizer.h),
 *          A1111 prompt syntax and 75-token chunks (prompt.h), CLIP on every chunk, the
 *          emphasis weights applied per chunk with the mean restored (A1111 EmphasisOriginal),
 *          chunks concatenated along tokens; cond and uncond padded to the same number of
 *          chunks with the encoding of the empty prompt (A1111 pad_cond). CLIP's pages are
 *          then given back.
 *   sample per image i: generator seeded with seed + i, draw 0 = the initial noise [1, 4, h, w]
 *          (NCHW), x = noise * sigmas[0]; the sampler walks the sigmas with the k-diffusion
 *          eps denoiser (ref: k-diffusion external.py DiscreteEpsDDPMDenoiser / CompVisDenoiser):
 *              c_in = 1 / sqrt(sigma^2 + 1), t = sigma_to_t(sigma),
 *              eps  = UNet(x * c_in, t, context),  D(x; sigma) = x - sigma * eps
 *          with classifier-free guidance on eps, uncond and cond in one batch [uncond, cond]:
 *              eps = eps_u + cfg * (eps_c - eps_u)     (cfg == 1: the cond pass alone).
 *          The UNet's pages are given back after the last image (the VAE runs alone).
 *   decode VAE decoder per image (tiled when asked), then round(clamp(x/2 + 0.5, 0, 1) * 255).
 *
 * 8-bit conversion: rounding, as diffusers (numpy_to_pil: (x * 255).round()) and current
 * stable-diffusion.cpp (preprocessing_float_to_u8: x * 255 + 0.5) do. A1111 and sd.cpp builds
 * from 2024 truncate (astype(uint8)); the two differ by at most 1 per channel value, and rounding
 * is the unbiased choice. */
#include "pipeline.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "common.h"
#include "image.h"
#include "model.h"
#include "ops.h"
#include "prompt.h"
#include "quant.h"
#include "rng.h"
#include "sampler.h"
#include "schedule.h"
#include "tokenizer.h"
#include "clip.h"
#include "unet.h"
#include "vae.h"

#define CLIP_DIM 768
#define ARENA_BYTES ((size_t)64 << 30) /* reserved address space; pages are touched on use */
#define VAE_TILE 32                    /* latent pixels, stable-diffusion.cpp's default 32x32 */
#define VAE_TILE_OVERLAP 16            /* its default overlap: 0.5 of the tile */

sdc_txt2img_params sdc_txt2img_default_params(void) {
    sdc_txt2img_params p;
    memset(&p, 0, sizeof p);
    p.prompt = "";
    p.negative_prompt = "";
    p.width = 512;
    p.height = 512;
    p.steps = 20;
    p.cfg_scale = 7.0f;
    p.seed = 42;
    p.batch_count = 1;
    p.sampler = "euler_a";
    p.schedule = "discrete";
    p.rng = "cuda";
    p.clip_skip = -1;
    p.n_threads = -1;
    p.eta = NAN;
    p.stream_weights = true;
    return p;
}

const char *sdc_txt2img_sampler_list(void) { return sdc_sampler_kind_list(); }
const char *sdc_txt2img_schedule_list(void) { return sdc_schedule_kind_list(); }

sdc_status sdc_txt2img_validate(const sdc_txt2img_params *p, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!p) return sdc_fail(err, errlen, SDC_E_INVALID, "no parameters given");
    if (p->width < 64 || p->width > 2048 || p->width % 8)
        return sdc_fail(err, errlen, SDC_E_INVALID, "width %d: expected a multiple of 8 in [64, 2048]", p->width);
    if (p->height < 64 || p->height > 2048 || p->height % 8)
        return sdc_fail(err, errlen, SDC_E_INVALID, "height %d: expected a multiple of 8 in [64, 2048]", p->height);
    if (p->steps < 1 || p->steps > 1000)
        return sdc_fail(err, errlen, SDC_E_INVALID, "steps %d: expected 1..1000", p->steps);
    if (!(p->cfg_scale >= 0) || !isfinite(p->cfg_scale))
        return sdc_fail(err, errlen, SDC_E_INVALID, "cfg scale %g: expected a number >= 0", (double)p->cfg_scale);
    if (p->batch_count < 1 || p->batch_count > 10000)
        return sdc_fail(err, errlen, SDC_E_INVALID, "batch count %d: expected 1..10000", p->batch_count);
    if (p->sampler && sdc_sampler_kind_parse(p->sampler) < 0)
        return sdc_fail(err, errlen, SDC_E_INVALID, "sampling method '%s': expected one of %s", p->sampler,
                        sdc_sampler_kind_list());
    if (p->schedule && sdc_schedule_kind_parse(p->schedule) < 0)
        return sdc_fail(err, errlen, SDC_E_INVALID, "schedule '%s': expected one of %s", p->schedule,
                        sdc_schedule_kind_list());
    if (p->rng && sdc_rng_kind_parse(p->rng) < 0)
        return sdc_fail(err, errlen, SDC_E_INVALID, "rng '%s': expected one of cuda, cpu", p->rng);
    if (p->n_threads > SDC_MAX_THREADS)
        return sdc_fail(err, errlen, SDC_E_INVALID, "threads %d: expected 1..%d (<= 0: every core)", p->n_threads,
                        SDC_MAX_THREADS);
    if (p->clip_skip > 12)
        return sdc_fail(err, errlen, SDC_E_INVALID, "clip skip %d: expected 1..12 (<= 0: the default, 1)", p->clip_skip);
    if (!isnan(p->eta) && !(isfinite(p->eta) && p->eta >= 0))
        return sdc_fail(err, errlen, SDC_E_INVALID, "eta %g: expected a number >= 0", (double)p->eta);
    return SDC_OK;
}

/* ------------------------------------------------------------------ logging, timing */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

static void plog(const sdc_txt2img_params *p, sdc_log_level lv, const char *fmt, ...) SDC_PRINTF(3, 4);
static void plog(const sdc_txt2img_params *p, sdc_log_level lv, const char *fmt, ...) {
    if (!p->log) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->log(p->log_user, lv, msg);
}

static bool cancelled(const sdc_txt2img_params *p) { return p->cancel && p->cancel(p->cancel_user); }

static uint64_t random_seed(void) {
    uint64_t s = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&s, sizeof s, 1, f) != 1) s = 0;
        fclose(f);
    }
    if (!s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid() << 32;
    }
    return s % 4294967294ull; /* A1111's range: random.randrange(4294967294) */
}

/* ------------------------------------------------------------------ conditioning */

/* A1111 EmphasisOriginal on one chunk z [77, 768] (batch 1): z *= w[t] per token, then the mean
 * over the chunk restored. Means in double, the products in float as torch does them. */
void sdc_pipeline_apply_emphasis(float *z, const float *w) {
    bool all_one = true;
    for (int t = 0; t < SDC_CLIP_CTX; t++) all_one &= w[t] == 1.0f;
    if (all_one) return; /* z * 1 has the same mean: the ratio is exactly 1 */
    const int n = SDC_CLIP_CTX * CLIP_DIM;
    double s0 = 0, s1 = 0;
    for (int i = 0; i < n; i++) s0 += z[i];
    for (int t = 0; t < SDC_CLIP_CTX; t++)
        for (int d = 0; d < CLIP_DIM; d++) z[t * CLIP_DIM + d] *= w[t];
    for (int i = 0; i < n; i++) s1 += z[i];
    float m0 = (float)(s0 / n), m1 = (float)(s1 / n);
    float r = m0 / m1;
    for (int i = 0; i < n; i++) z[i] *= r;
}

/* Encodes cond and uncond: *ctx gets [2, T, 768] (uncond, cond) or, when !with_uncond,
 * [1, T, 768] (cond); T = 77 * max(chunks). */
/* stream_weights: each linear/conv weight's mapped pages go back to the kernel as soon as its
 * layer is done and fault in again from the page cache when the next step needs them, so the
 * process holds one layer's weights instead of a whole network's (measured in BENCHMARKS.md). */
static void stream_weights(sdc_ctx *c, const sdc_model *m, const sdc_txt2img_params *p) {
    if (p->stream_weights) c->weight_done = sdc_model_weight_done, c->weight_done_user = (void *)m;
}

static sdc_status encode_text(sdc_backend *be, const sdc_model *m, const sdc_tokenizer *tok,
                              const sdc_txt2img_params *p, bool with_uncond, float **ctx, int *T, char *err,
                              size_t errlen) {
    sdc_prompt_params pp = sdc_prompt_default_params();
    sdc_prompt_tokens pc = {0}, pu = {0};
    sdc_status st = sdc_prompt_tokenize(tok, p->prompt ? p->prompt : "", &pp, &pc, err, errlen);
    if (st == SDC_OK && with_uncond)
        st = sdc_prompt_tokenize(tok, p->negative_prompt ? p->negative_prompt : "", &pp, &pu, err, errlen);
    if (st != SDC_OK) {
        sdc_prompt_tokens_free(&pc);
        sdc_prompt_tokens_free(&pu);
        return st;
    }
    int nc = pc.n_chunks, nu = with_uncond ? pu.n_chunks : 0;
    int nmax = nc > nu ? nc : nu;
    bool need_empty = with_uncond && nc != nu; /* the shorter side is padded with "" */
    int rows = nc + nu + (need_empty ? 1 : 0);
    int32_t *ids = malloc(sizeof *ids * (size_t)rows * SDC_CLIP_CTX);
    float *z = malloc(sizeof *z * (size_t)rows * SDC_CLIP_CTX * CLIP_DIM);
    float *out = NULL;
    sdc_clip *clip = NULL;
    if (!ids || !z) {
        st = sdc_fail(err, errlen, SDC_E_NOMEM, "text encoder: out of memory");
        goto done;
    }
    memcpy(ids, pc.ids, sizeof *ids * (size_t)nc * SDC_CLIP_CTX);
    if (nu) memcpy(ids + (size_t)nc * SDC_CLIP_CTX, pu.ids, sizeof *ids * (size_t)nu * SDC_CLIP_CTX);
    if (need_empty) sdc_tokenizer_row77(NULL, 0, ids + (size_t)(nc + nu) * SDC_CLIP_CTX);
    st = sdc_clip_load(m, &clip, err, errlen);
    if (st != SDC_OK) goto done;
    {
        sdc_ctx c;
        sdc_ctx_init(&c, be);
        stream_weights(&c, m, p);
        size_t mark = sdc_mark(&c);
        int clip_skip = p->clip_skip > 1 ? p->clip_skip : 1;
        sdc_act H = sdc_clip_forward(&c, clip, ids, rows, clip_skip);
        if (sdc_ctx_status(&c) == SDC_OK) sdc_to_host(&c, H, z);
        st = sdc_ctx_status(&c);
        if (st != SDC_OK) sdc_fail(err, errlen, st, "text encoder: %s", c.err);
        sdc_release(&c, mark);
        if (st != SDC_OK) goto done;
    }
    for (int r = 0; r < nc; r++) sdc_pipeline_apply_emphasis(z + (size_t)r * SDC_CLIP_CTX * CLIP_DIM, pc.weights + r * SDC_CLIP_CTX);
    for (int r = 0; r < nu; r++)
        sdc_pipeline_apply_emphasis(z + (size_t)(nc + r) * SDC_CLIP_CTX * CLIP_DIM, pu.weights + r * SDC_CLIP_CTX);
    {
        const size_t chunk = (size_t)SDC_CLIP_CTX * CLIP_DIM;
        int B = with_uncond ? 2 : 1;
        out = malloc(sizeof *out * (size_t)B * nmax * chunk);
        if (!out) {
            st = sdc_fail(err, errlen, SDC_E_NOMEM, "text encoder: out of memory");
            goto done;
        }
        const float *empty = need_empty ? z + (size_t)(nc + nu) * chunk : NULL;
        for (int b = 0; b < B; b++) {
            bool cond = b == B - 1;
            int have = cond ? nc : nu;
            const float *src = z + (cond ? 0 : (size_t)nc * chunk);
            float *dst = out + (size_t)b * nmax * chunk;
            memcpy(dst, src, sizeof *dst * (size_t)have * chunk);
            for (int k = have; k < nmax; k++) memcpy(dst + (size_t)k * chunk, empty, sizeof *dst * chunk);
        }
        *ctx = out;
        *T = nmax * SDC_CLIP_CTX;
    }
done:
    sdc_clip_free(clip);
    free(ids);
    free(z);
    sdc_prompt_tokens_free(&pc);
    sdc_prompt_tokens_free(&pu);
    return st;
}

/* ------------------------------------------------------------------ the denoiser */

typedef struct denoiser {
    sdc_ctx *c;
    const sdc_unet *unet;
    const sdc_schedule *sched;
    sdc_act context; /* [B, T, 768] */
    const sdc_unet_kv *kv; /* its cross-attention K/V, computed once for every step */
    int B;           /* 2 with guidance (uncond, cond), 1 without */
    float cfg;
    int64_t shape[4]; /* [B, 4, h, w] */
    float *xin;       /* [B, 4, h, w] */
    float *eps;       /* [B, 4, h, w] */
    char err[600];
} denoiser;

static sdc_status denoise(void *user, const float *x, float sigma, float *den, int64_t n) {
    denoiser *d = user;
    float c_in = (float)(1.0 / sqrt((double)sigma * sigma + 1.0));
    float t = (float)sdc_schedule_sigma_to_t(d->sched, sigma);
    float ts[2] = {t, t};
    for (int b = 0; b < d->B; b++)
        for (int64_t i = 0; i < n; i++) d->xin[(size_t)b * n + i] = x[i] * c_in;
    size_t mark = sdc_mark(d->c);
    sdc_act X = sdc_from_host(d->c, d->xin, 4, d->shape);
    sdc_act E = sdc_unet_forward_kv(d->c, d->unet, X, ts, d->context, d->kv);
    if (sdc_ctx_status(d->c) == SDC_OK) sdc_to_host(d->c, E, d->eps);
    sdc_status st = sdc_ctx_status(d->c);
    if (st != SDC_OK && !d->err[0]) snprintf(d->err, sizeof d->err, "unet: %s", d->c->err);
    sdc_release(d->c, mark);
    if (st != SDC_OK) return st;
    if (d->B == 2) {
        const float *eu = d->eps, *ec = d->eps + n;
        for (int64_t i = 0; i < n; i++) {
            float e = eu[i] + d->cfg * (ec[i] - eu[i]);
            den[i] = x[i] - sigma * e;
        }
    } else {
        for (int64_t i = 0; i < n; i++) den[i] = x[i] - sigma * d->eps[i];
    }
    return SDC_OK;
}

typedef struct step_clock {
    const sdc_txt2img_params *p;
    int image, n_images;
    double t_last;
    sdc_txt2img_timing *timing;
} step_clock;

static void on_step(void *user, int step, int steps) {
    step_clock *s = user;
    double t = now(), dt = t - s->t_last;
    s->t_last = t;
    if (s->timing && s->timing->n_steps < s->timing->step_cap) s->timing->step_s[s->timing->n_steps++] = dt;
    plog(s->p, SDC_LOG_DEBUG, "image %d/%d step %d/%d: %.3f s", s->image + 1, s->n_images, step, steps, dt);
    if (s->p->progress) s->p->progress(s->p->progress_user, s->image, s->n_images, step, steps, dt);
}

static bool on_cancel(void *user) { return cancelled(user); }

/* The schedule: computed, or the file's alphas_cumprod table. */
static sdc_status make_schedule(const sdc_model *m, bool from_file, sdc_schedule *s, char *err, size_t errlen) {
    if (!from_file) {
        sdc_schedule_init(s);
        return SDC_OK;
    }
    const sdc_tensor *t = sdc_model_get(m, "alphas_cumprod");
    if (!t) return sdc_fail(err, errlen, SDC_E_INVALID, "--schedule-from-file: the model has no alphas_cumprod tensor");
    int64_t n = sdc_tensor_nelem(t);
    if (n != SDC_TIMESTEPS)
        return sdc_fail(err, errlen, SDC_E_FORMAT, "alphas_cumprod: expected %d values, got %lld", SDC_TIMESTEPS,
                        (long long)n);
    float tab[SDC_TIMESTEPS];
    if (t->type == SDC_TYPE_F64) {
        for (int i = 0; i < SDC_TIMESTEPS; i++) {
            double v;
            memcpy(&v, (const char *)t->data + 8 * i, 8);
            tab[i] = (float)v;
        }
    } else if (!sdc_dequantize_row(t->type, t->data, tab, n)) {
        return sdc_fail(err, errlen, SDC_E_FORMAT, "alphas_cumprod: unsupported type %s", sdc_type_name(t->type));
    }
    return sdc_schedule_init_table(s, tab, n, err, errlen);
}

sdc_status sdc_txt2img(sdc_model *m, const sdc_txt2img_params *p, sdc_image **images, int *n, char *err,
                       size_t errlen) {
    return sdc_txt2img_ex(m, p, NULL, images, n, err, errlen);
}

sdc_status sdc_txt2img_ex(sdc_model *m, const sdc_txt2img_params *p, const sdc_txt2img_debug *dbg, sdc_image **images,
                          int *n, char *err, size_t errlen) {
    if (images) *images = NULL;
    if (n) *n = 0;
    if (!m || !images || !n) return sdc_fail(err, errlen, SDC_E_INVALID, "txt2img: no model or no output given");
    sdc_status st = sdc_txt2img_validate(p, err, errlen);
    if (st != SDC_OK) return st;
    st = sdc_model_check(m, err, errlen);
    if (st != SDC_OK) return st;
    if (sdc_model_arch(m) != SDC_ARCH_SD1)
        return sdc_fail(err, errlen, SDC_E_UNSUPPORTED, "text-to-image needs an SD 1.x model; this one is %s",
                        sdc_model_arch_name(m));
    const double t_start = now();
    const sdc_sampler_kind skind = (sdc_sampler_kind)sdc_sampler_kind_parse(p->sampler ? p->sampler : "euler_a");
    const sdc_schedule_kind sckind = (sdc_schedule_kind)sdc_schedule_kind_parse(p->schedule ? p->schedule : "discrete");
    const sdc_rng_kind rkind = (sdc_rng_kind)sdc_rng_kind_parse(p->rng ? p->rng : "cuda");
    const int W = p->width, H = p->height, h = H / 8, w = W / 8, nb = p->batch_count;
    const int64_t nlat = (int64_t)4 * h * w;
    const int64_t seed0 = p->seed >= 0 ? p->seed : (int64_t)random_seed();
    const bool guidance = p->cfg_scale != 1.0f;
    const int B = guidance ? 2 : 1;
    sdc_txt2img_timing *tm = dbg ? dbg->timing : NULL;
    if (tm) { /* keep only the caller's step buffer */
        double *buf = tm->step_s;
        int cap = tm->step_cap;
        memset(tm, 0, sizeof *tm);
        tm->step_s = buf, tm->step_cap = cap;
    }

    sdc_backend *be = NULL;
    sdc_tokenizer *tok = NULL;
    sdc_unet *unet = NULL;
    sdc_vae *vae = NULL;
    float *ctx = NULL, *sigmas = NULL, *lat = NULL, *xin = NULL, *eps = NULL, *img = NULL;
    sdc_image *out = NULL;
    sdc_schedule *sched = malloc(sizeof *sched);
    int T = 0;
    if (!sched) return sdc_fail(err, errlen, SDC_E_NOMEM, "out of memory");

    plog(p, SDC_LOG_INFO, "%dx%d, %d steps, %s, %s schedule, cfg %g, seed %lld, %d image%s", W, H, p->steps,
         sdc_sampler_kind_name(skind), sdc_schedule_kind_name(sckind), (double)p->cfg_scale, (long long)seed0, nb,
         nb == 1 ? "" : "s");
    be = sdc_backend_cpu_new(p->n_threads, ARENA_BYTES, err, errlen);
    if (!be) {
        st = SDC_E_NOMEM;
        goto done;
    }
    if (p->int8_linear) {
        if (sdc_backend_cpu_set_int8(be, true))
            plog(p, SDC_LOG_INFO, "int8 linear: Q8_0/Q4_0/Q4_1 linear layers with int8 activations (AVX-512 VNNI)");
        else
            plog(p, SDC_LOG_WARN, "int8 linear: this CPU has no AVX-512 VNNI; every layer runs in fp32");
    }
    if (p->bf16) {
        if (sdc_backend_cpu_set_bf16(be, true))
            plog(p, SDC_LOG_INFO, "bf16: linear, convolution and attention layers on AMX tiles (bf16 operands, "
                 "fp32 sums)%s", p->int8_linear ? "; they take precedence over the int8 linear" : "");
        else
            plog(p, SDC_LOG_WARN, "bf16: AMX-BF16 is not usable on this CPU; those layers run in fp32");
    }

    /* ---- text */
    double t0 = now();
    {
        char source[512] = "";
        sdc_vocab_search vs = sdc_vocab_search_from_env(p->model_path, p->vocab_path);
        st = sdc_tokenizer_find(&vs, &tok, source, sizeof source, err, errlen);
        if (st != SDC_OK) goto done;
        plog(p, SDC_LOG_DEBUG, "vocabulary: %s", source);
    }
    st = encode_text(be, m, tok, p, guidance, &ctx, &T, err, errlen);
    if (st != SDC_OK) goto done;
    sdc_model_release(m, SDC_COMPONENT_CLIP);
    {
        const double dt = now() - t0, rss = peak_rss_mib();
        if (tm) tm->text_s = dt, tm->rss_text_mib = rss;
        plog(p, SDC_LOG_INFO, "text: %.2f s (%d tokens of context), peak RSS %.0f MiB", dt, T, rss);
    }
    if (cancelled(p)) {
        st = sdc_fail(err, errlen, SDC_E_CANCELLED, "cancelled");
        goto done;
    }

    /* ---- schedule */
    st = make_schedule(m, p->schedule_from_file, sched, err, errlen);
    if (st != SDC_OK) goto done;
    sigmas = malloc(sizeof *sigmas * (size_t)(p->steps + 1));
    lat = malloc(sizeof *lat * (size_t)nb * nlat);
    xin = malloc(sizeof *xin * (size_t)B * nlat);
    eps = malloc(sizeof *eps * (size_t)B * nlat);
    if (!sigmas || !lat || !xin || !eps) {
        st = sdc_fail(err, errlen, SDC_E_NOMEM, "out of memory");
        goto done;
    }
    st = sdc_schedule_sigmas(sched, sckind, p->steps, sigmas, err, errlen);
    if (st != SDC_OK) goto done;

    /* ---- sample */
    t0 = now();
    st = sdc_unet_load(m, &unet, err, errlen);
    if (st != SDC_OK) goto done;
    {
        sdc_ctx c;
        sdc_ctx_init(&c, be);
        stream_weights(&c, m, p);
        size_t outer = sdc_mark(&c);
        const int64_t cshape[3] = {B, T, CLIP_DIM};
        denoiser d = {.c = &c, .unet = unet, .sched = sched, .B = B, .cfg = p->cfg_scale,
                      .shape = {B, 4, h, w}, .xin = xin, .eps = eps};
        d.context = sdc_from_host(&c, ctx, 3, cshape);
        sdc_unet_kv *kv = sdc_unet_kv_new(&c, unet, d.context); /* in the arena below every step */
        d.kv = kv;
        st = sdc_ctx_status(&c);
        if (st != SDC_OK) sdc_fail(err, errlen, st, "context: %s", c.err);
        for (int i = 0; i < nb && st == SDC_OK; i++) {
            float *x = lat + (size_t)i * nlat;
            sdc_rng rng;
            sdc_rng_init(&rng, rkind, (uint64_t)(seed0 + i));
            sdc_rng_randn(&rng, x, nlat); /* draw 0: the initial latent */
            if (dbg && dbg->noise) memcpy(dbg->noise + (size_t)i * nlat, x, sizeof *x * (size_t)nlat);
            for (int64_t k = 0; k < nlat; k++) x[k] *= sigmas[0];
            step_clock clock = {.p = p, .image = i, .n_images = nb, .t_last = now(), .timing = tm};
            sdc_sampler_params sp = sdc_sampler_default_params();
            sp.kind = skind;
            sp.eta = p->eta;
            sp.denoise = denoise;
            sp.denoise_user = &d;
            sp.rng = &rng;
            sp.schedule = sched;
            sp.progress = on_step;
            sp.progress_user = &clock;
            sp.cancel = on_cancel;
            sp.cancel_user = (void *)p;
            double ti = now();
            st = sdc_sample(&sp, x, nlat, sigmas, p->steps, err, errlen);
            if (st != SDC_OK && st != SDC_E_CANCELLED && d.err[0]) sdc_fail(err, errlen, st, "%s", d.err);
            if (st == SDC_E_CANCELLED) sdc_fail(err, errlen, st, "cancelled");
            if (st == SDC_OK)
                plog(p, SDC_LOG_INFO, "image %d/%d: sampled in %.2f s (%.2f s/step), seed %lld", i + 1, nb, now() - ti,
                     (now() - ti) / p->steps, (long long)(seed0 + i));
        }
        sdc_unet_kv_free(kv);
        sdc_release(&c, outer);
    }
    sdc_unet_free(unet);
    unet = NULL;
    sdc_model_release(m, SDC_COMPONENT_UNET); /* the VAE runs alone: lower peak */
    if (st != SDC_OK) goto done;
    {
        const double dt = now() - t0, rss = peak_rss_mib();
        if (tm) tm->sample_s = dt, tm->rss_sample_mib = rss;
        plog(p, SDC_LOG_INFO, "sampling: %.2f s, peak RSS %.0f MiB", dt, rss);
    }
    if (dbg && dbg->latent) memcpy(dbg->latent, lat, sizeof *lat * (size_t)nb * nlat);

    /* ---- decode */
    t0 = now();
    st = sdc_vae_load(m, &vae, err, errlen);
    if (st != SDC_OK) goto done;
    img = malloc(sizeof *img * (size_t)3 * H * W);
    out = calloc((size_t)nb, sizeof *out);
    if (!img || !out) {
        st = sdc_fail(err, errlen, SDC_E_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < nb; i++) {
        if (cancelled(p)) {
            st = sdc_fail(err, errlen, SDC_E_CANCELLED, "cancelled");
            goto done;
        }
        sdc_ctx c;
        sdc_ctx_init(&c, be);
        stream_weights(&c, m, p);
        size_t mark = sdc_mark(&c);
        const int64_t zs[4] = {1, 4, h, w};
        sdc_act Z = sdc_from_host(&c, lat + (size_t)i * nlat, 4, zs);
        if (p->vae_tiling) {
            if (sdc_ctx_status(&c) == SDC_OK) sdc_vae_decode_tiled(&c, vae, Z, VAE_TILE, VAE_TILE_OVERLAP, img);
        } else {
            sdc_act X = sdc_vae_decode(&c, vae, Z);
            if (sdc_ctx_status(&c) == SDC_OK) sdc_to_host(&c, X, img);
        }
        st = sdc_ctx_status(&c);
        if (st != SDC_OK) sdc_fail(err, errlen, st, "vae: %s", c.err);
        sdc_release(&c, mark);
        if (st != SDC_OK) goto done;
        if (dbg && dbg->image) memcpy(dbg->image + (size_t)i * 3 * H * W, img, sizeof *img * (size_t)3 * H * W);
        out[i].width = W;
        out[i].height = H;
        out[i].channels = 3;
        out[i].seed = seed0 + i;
        out[i].data = malloc((size_t)3 * W * H);
        if (!out[i].data) {
            st = sdc_fail(err, errlen, SDC_E_NOMEM, "out of memory");
            goto done;
        }
        sdc_image_to_u8(img, W, H, out[i].data);
    }
    sdc_vae_free(vae);
    vae = NULL;
    sdc_model_release(m, SDC_COMPONENT_VAE);
    {
        const double t = now(), rss = peak_rss_mib(), arena = (double)be->ops->peak(be) / 1048576.0;
        if (tm) {
            tm->decode_s = t - t0, tm->rss_decode_mib = rss;
            tm->total_s = t - t_start, tm->arena_peak_mib = arena;
        }
        plog(p, SDC_LOG_INFO, "decode: %.2f s, peak RSS %.0f MiB", t - t0, rss);
        plog(p, SDC_LOG_INFO, "total: %.2f s, peak RSS %.0f MiB, activation arena peak %.0f MiB", t - t_start, rss,
             arena);
    }
    *images = out;
    *n = nb;
    out = NULL;

done:
    sdc_images_free(out, nb);
    sdc_vae_free(vae);
    sdc_unet_free(unet);
    sdc_tokenizer_free(tok);
    if (be) be->ops->free(be);
    free(ctx);
    free(sigmas);
    free(lat);
    free(xin);
    free(eps);
    free(img);
    free(sched);
    return st;
}
