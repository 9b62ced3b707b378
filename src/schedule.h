/* schedule.h - the SD 1.x noise schedule and the sigma schedules a sampler walks.
 *
 *     sdc_schedule s;
 *     sdc_schedule_init(&s);                      // scaled-linear betas, float64
 *     float sigmas[20 + 1];
 *     sdc_schedule_sigmas(&s, SDC_SCHEDULE_KARRAS, 20, sigmas, err, sizeof err);
 *     double t = sdc_schedule_sigma_to_t(&s, sigmas[0]);   // UNet timestep (fractional)
 *
 * Model: betas = linspace(sqrt(0.00085), sqrt(0.012), 1000)^2, alphas_cumprod = cumprod(1 - betas)
 * in float64, stored as float32 (ref: CompVis LDM ddpm.py register_schedule "linear", which diffusers calls
 * "scaled_linear"), sigma(t) = sqrt((1 - abar_t) / abar_t) for integer t in [0, 999]
 * (ref: k-diffusion external.py DiscreteSchedule / CompVisDenoiser). Between integers, log sigma
 * is interpolated linearly in t both ways, so timesteps may be fractional.
 *
 * Every schedule returns steps + 1 sigmas, decreasing, the last one 0.
 */
#ifndef SDC_SCHEDULE_H
#define SDC_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "sdc.h"

#define SDC_TIMESTEPS 1000

typedef struct sdc_schedule {
    double alphas_cumprod[SDC_TIMESTEPS]; /* abar_t, decreasing in t */
    double sigmas[SDC_TIMESTEPS];         /* sigma(t), increasing in t */
    double log_sigmas[SDC_TIMESTEPS];
} sdc_schedule;

/* The SD 1.x schedule: abar computed in float64, then rounded to float32 as the LDM model
 * stores it (what A1111, ComfyUI and the goldens see: sigma_min = 0.0291675); the rest in float64. */
void sdc_schedule_init(sdc_schedule *s);
/* The schedule from a stored alphas_cumprod table (stable-diffusion.cpp reads the checkpoint's
 * F16 copy): n must be 1000 and every value finite, in (0, 1) and not increasing. */
sdc_status sdc_schedule_init_table(sdc_schedule *s, const float *alphas_cumprod, int64_t n, char *err,
                                   size_t errlen);

double sdc_schedule_sigma_min(const sdc_schedule *s); /* sigma(0) */
double sdc_schedule_sigma_max(const sdc_schedule *s); /* sigma(999) */
/* Fractional timestep of sigma by linear interpolation of log sigma between the two
 * neighbouring integer timesteps, clamped to [0, 999]; sigma <= 0 gives 0.
 * ref: k-diffusion DiscreteSchedule.sigma_to_t. */
double sdc_schedule_sigma_to_t(const sdc_schedule *s, double sigma);
/* sigma at a (fractional) timestep, t clamped to [0, 999]. ref: DiscreteSchedule.t_to_sigma. */
double sdc_schedule_t_to_sigma(const sdc_schedule *s, double t);

typedef enum sdc_schedule_kind {
    SDC_SCHEDULE_DISCRETE = 0, /* k-diffusion get_sigmas: t = linspace(999, 0, n) */
    SDC_SCHEDULE_KARRAS,       /* Karras et al. 2022 eq. 5, rho = 7, sigma_min..sigma_max */
    SDC_SCHEDULE_EXPONENTIAL,  /* log-uniform from sigma_max to sigma_min */
    SDC_SCHEDULE_AYS,          /* Align Your Steps, SD 1.5 table, log-linear interpolation */
    SDC_SCHEDULE_SGM_UNIFORM,  /* t = linspace(999, 0, n + 1) without its last point */
    SDC_SCHEDULE_SIMPLE,       /* every (1000 / n)-th training sigma from the top */
    SDC_SCHEDULE_KIND_COUNT
} sdc_schedule_kind;

/* Writes steps + 1 sigmas (the last is 0). steps >= 1. */
sdc_status sdc_schedule_sigmas(const sdc_schedule *s, sdc_schedule_kind kind, int steps, float *sigmas,
                               char *err, size_t errlen);

/* Names as stable-diffusion.cpp's --schedule ("discrete", "karras", "exponential", "ays",
 * "sgm_uniform", "simple"); parse also takes A1111's "Schedule type" labels ("Karras",
 * "Exponential", "Align Your Steps", "SGM Uniform", "Simple", "Automatic" = discrete) and
 * returns -1 for an unknown name. */
const char *sdc_schedule_kind_name(sdc_schedule_kind kind);
int sdc_schedule_kind_parse(const char *name);
/* "discrete, karras, exponential, ays, sgm_uniform, simple" (for error messages). */
const char *sdc_schedule_kind_list(void);

#endif
