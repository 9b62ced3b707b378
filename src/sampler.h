/* sampler.h - the samplers: walk a sigma schedule with a denoiser D(x; sigma).
 *
 *     sdc_sampler_params p = sdc_sampler_default_params();      // euler_a, default eta
 *     p.kind = SDC_SAMPLER_DPMPP_2M;
 *     p.denoise = my_denoiser;  p.denoise_user = &ctx;          // writes D(x; sigma) = x0 estimate
 *     p.rng = &rng;                                             // noise for ancestral/SDE samplers
 *     for (i = 0; i < n; i++) x[i] = noise[i] * sigmas[0];      // x_T (k-diffusion convention)
 *     st = sdc_sample(&p, x, n, sigmas, steps, err, sizeof err); // x becomes the x0 latent
 *
 * Conventions (k-diffusion's): x lives in "variance exploding" space, x = x0 + sigma * eps; the
 * denoiser returns the x0 prediction (for an eps-prediction UNet:
 * D = x - sigma * eps(x / sqrt(sigma^2 + 1), t(sigma))). sigmas has steps + 1 entries,
 * decreasing; it usually ends at 0, but need not (the last step then stops at sigmas[steps]).
 * Each noise injection is one sdc_rng_randn draw of n values (with SDC_RNG_CUDA: the next
 * Philox offset, as A1111 does; the initial latent is draw 0), or one call of `noise`.
 * Per-element arithmetic is done in double from float state, coefficients in double.
 */
#ifndef SDC_SAMPLER_H
#define SDC_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rng.h"
#include "schedule.h"
#include "sdc.h"

/* Writes D(x; sigma), the denoised (x0) prediction of x at noise level sigma. */
typedef sdc_status (*sdc_denoise_fn)(void *user, const float *x, float sigma, float *denoised, int64_t n);
/* Writes n standard normal values (one noise draw). */
typedef void (*sdc_noise_fn)(void *user, float *out, int64_t n);

typedef enum sdc_sampler_kind {
    SDC_SAMPLER_EULER = 0,
    SDC_SAMPLER_EULER_A,
    SDC_SAMPLER_HEUN,
    SDC_SAMPLER_DPM2,
    SDC_SAMPLER_DPMPP_2S_A,
    SDC_SAMPLER_DPMPP_2M,
    SDC_SAMPLER_DPMPP_2MV2,
    SDC_SAMPLER_DPMPP_2M_SDE,
    SDC_SAMPLER_IPNDM,
    SDC_SAMPLER_IPNDM_V,
    SDC_SAMPLER_LMS,
    SDC_SAMPLER_LCM,
    SDC_SAMPLER_DDIM,
    SDC_SAMPLER_PLMS,
    SDC_SAMPLER_TCD,
    SDC_SAMPLER_KIND_COUNT
} sdc_sampler_kind;

typedef struct sdc_sampler_params {
    sdc_sampler_kind kind;
    /* Noise multiplier of euler_a, dpm++2s_a, dpm++2m_sde, ddim and tcd (tcd's gamma); NAN =
     * the sampler's default, stable-diffusion.cpp's: 1 for euler_a, dpm++2s_a, dpm++2m_sde;
     * 0 for ddim and tcd. Ignored by the others. */
    float eta;
    sdc_denoise_fn denoise;
    void *denoise_user;
    sdc_rng *rng;       /* noise source of the stochastic samplers ... */
    sdc_noise_fn noise; /* ... or this callback, when set */
    void *noise_user;
    const sdc_schedule *schedule; /* tcd needs alphas_cumprod; NULL = the SD 1.x schedule */
    /* Called after each step with step = 1..steps. */
    void (*progress)(void *user, int step, int steps);
    void *progress_user;
    /* Polled before each step; true stops sampling with SDC_E_CANCELLED (x is then the
     * state after the last completed step). */
    bool (*cancel)(void *user);
    void *cancel_user;
} sdc_sampler_params;

/* euler_a, eta NAN (the sampler's default), everything else empty. */
sdc_sampler_params sdc_sampler_default_params(void);

/* Runs the sampler over sigmas[0..steps] in place on x (n floats). Fails with SDC_E_INVALID on
 * bad arguments (no denoiser, steps < 1, a stochastic sampler without a noise source, an
 * increasing or negative schedule), passes on the denoiser's error, or SDC_E_CANCELLED. */
sdc_status sdc_sample(const sdc_sampler_params *p, float *x, int64_t n, const float *sigmas, int steps, char *err,
                      size_t errlen);

/* The eta a run with p.eta = NAN uses. */
float sdc_sampler_default_eta(sdc_sampler_kind kind);
/* Number of denoiser calls sdc_sample makes over this schedule (heun, dpm2, dpm++2s_a and plms
 * evaluate twice in some steps). */
int sdc_sampler_model_calls(const sdc_sampler_params *p, const float *sigmas, int steps);
/* Whether the run draws noise (and so needs p.rng or p.noise). */
bool sdc_sampler_uses_noise(const sdc_sampler_params *p);

/* stable-diffusion.cpp's --sampling-method names: "euler", "euler_a", "heun", "dpm2",
 * "dpm++2s_a", "dpm++2m", "dpm++2mv2", "dpm++2m_sde", "ipndm", "ipndm_v", "lms", "lcm",
 * "ddim", "plms", "tcd". */
const char *sdc_sampler_kind_name(sdc_sampler_kind kind);
/* A1111's display name ("Euler a", "DPM++ 2M", ...) for the infotext. */
const char *sdc_sampler_display_name(sdc_sampler_kind kind);
/* Accepts the names above, A1111's display names (any case), sd.cpp's "ddim_trailing", and the
 * k-diffusion / ComfyUI function names ("euler_ancestral", "dpmpp_2m", "k_dpmpp_2m", ...);
 * -1 when unknown. */
int sdc_sampler_kind_parse(const char *name);
/* "euler, euler_a, heun, ..." (for error messages). */
const char *sdc_sampler_kind_list(void);

#endif
