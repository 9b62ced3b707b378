/* schedule.c - alphas_cumprod, sigma <-> timestep, and the sigma schedules (all in float64).
 *
 * The table: abar computed in float64 and rounded to float32, as LDM stores it (so sigma_min =
 * 0.0291675, the value A1111 and ComfyUI print); sigmas, logs and schedules in float64 from it.
 *
 * refs (formulas only):
 *   CompVis LDM ldm/models/diffusion/ddpm.py register_schedule: betas =
 *     linspace(linear_start^0.5, linear_end^0.5, 1000, float64)^2, alphas_cumprod = cumprod(1 - betas)
 *   k-diffusion k_diffusion/external.py DiscreteSchedule: sigma_to_t, t_to_sigma, get_sigmas
 *   k-diffusion k_diffusion/sampling.py get_sigmas_karras, get_sigmas_exponential
 *   stable-diffusion.cpp denoiser.hpp AYSScheduler (Align Your Steps SD 1.5 noise levels,
 *     log-linear interpolation to steps + 1 points, last set to 0; also ComfyUI's
 *     AlignYourStepsScheduler), SGMUniformScheduler, SimpleScheduler (ComfyUI simple_scheduler)
 *   Align Your Steps: Sabour et al. 2024, research.nvidia.com/labs/toronto-ai/AlignYourSteps
 */
#include "schedule.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

#include "common.h"

static void finish(sdc_schedule *s) {
    for (int t = 0; t < SDC_TIMESTEPS; t++) {
        double a = s->alphas_cumprod[t];
        s->sigmas[t] = sqrt((1.0 - a) / a);
        s->log_sigmas[t] = log(s->sigmas[t]);
    }
}

void sdc_schedule_init(sdc_schedule *s) {
    const double start = sqrt(0.00085), end = sqrt(0.012);
    double prod = 1.0;
    for (int t = 0; t < SDC_TIMESTEPS; t++) {
        double b = start + (end - start) * (double)t / (SDC_TIMESTEPS - 1);
        prod *= 1.0 - b * b;
        /* LDM registers the table as a float32 buffer; every reference (LDM/A1111 and k-diffusion,
         * ComfyUI, diffusers) derives its sigmas from those float32 values. */
        s->alphas_cumprod[t] = (double)(float)prod;
    }
    finish(s);
}

sdc_status sdc_schedule_init_table(sdc_schedule *s, const float *alphas_cumprod, int64_t n, char *err,
                                   size_t errlen) {
    if (!alphas_cumprod || n != SDC_TIMESTEPS)
        return sdc_fail(err, errlen, SDC_E_SHAPE, "alphas_cumprod: expected %d values, got %lld", SDC_TIMESTEPS,
                        (long long)n);
    for (int t = 0; t < SDC_TIMESTEPS; t++) {
        double a = alphas_cumprod[t];
        if (!(a > 0.0 && a < 1.0))
            return sdc_fail(err, errlen, SDC_E_FORMAT, "alphas_cumprod[%d]: expected a value in (0, 1), got %g", t,
                            a);
        if (t > 0 && a > s->alphas_cumprod[t - 1])
            return sdc_fail(err, errlen, SDC_E_FORMAT,
                            "alphas_cumprod[%d]: expected a non-increasing table, got %g after %g", t, a,
                            s->alphas_cumprod[t - 1]);
        s->alphas_cumprod[t] = a;
    }
    finish(s);
    return SDC_OK;
}

double sdc_schedule_sigma_min(const sdc_schedule *s) { return s->sigmas[0]; }
double sdc_schedule_sigma_max(const sdc_schedule *s) { return s->sigmas[SDC_TIMESTEPS - 1]; }

double sdc_schedule_sigma_to_t(const sdc_schedule *s, double sigma) {
    if (!(sigma > 0)) return 0.0;
    double ls = log(sigma);
    /* low = the last t with log_sigmas[t] <= ls (0 when none), at most 998 */
    int lo = 0, hi = SDC_TIMESTEPS - 1;
    if (s->log_sigmas[0] > ls) {
        lo = 0;
    } else {
        while (hi - lo > 1) { /* invariant: log_sigmas[lo] <= ls, and ls < log_sigmas[hi] or hi = 999 */
            int mid = (lo + hi) / 2;
            if (s->log_sigmas[mid] <= ls)
                lo = mid;
            else
                hi = mid;
        }
        if (s->log_sigmas[hi] <= ls) lo = hi;
    }
    if (lo > SDC_TIMESTEPS - 2) lo = SDC_TIMESTEPS - 2;
    double low = s->log_sigmas[lo], high = s->log_sigmas[lo + 1];
    double w = (low - ls) / (low - high);
    if (w < 0) w = 0;
    if (w > 1) w = 1;
    return (1.0 - w) * lo + w * (lo + 1);
}

double sdc_schedule_t_to_sigma(const sdc_schedule *s, double t) {
    if (!(t > 0)) t = 0; /* also NaN */
    if (t > SDC_TIMESTEPS - 1) t = SDC_TIMESTEPS - 1;
    int lo = (int)floor(t), hi = (int)ceil(t);
    double w = t - lo;
    if (w == 0) return s->sigmas[lo];
    return exp((1.0 - w) * s->log_sigmas[lo] + w * s->log_sigmas[hi]);
}

/* numpy.linspace(a, b, n)[i] */
static double linspace(double a, double b, int n, int i) {
    if (n <= 1) return a;
    if (i == n - 1) return b;
    return a + (b - a) * (double)i / (double)(n - 1);
}

/* Align Your Steps noise levels for SD 1.5 (10 steps + the final sigma), as stable-diffusion.cpp
 * and ComfyUI carry them; A1111 rounds the same levels to 3 decimals. */
static const double ays_sd15[11] = {14.6146412293, 6.4745760956, 3.8636745985, 2.6946151520,
                                    1.8841921177,  1.3943805092, 0.9642583904, 0.6523686016,
                                    0.3977456272,  0.1515232662, 0.0291671582};

sdc_status sdc_schedule_sigmas(const sdc_schedule *s, sdc_schedule_kind kind, int steps, float *out, char *err,
                               size_t errlen) {
    if (steps < 1) return sdc_fail(err, errlen, SDC_E_INVALID, "steps: expected >= 1, got %d", steps);
    const int n = steps;
    const double smin = sdc_schedule_sigma_min(s), smax = sdc_schedule_sigma_max(s);
    switch (kind) {
    case SDC_SCHEDULE_DISCRETE:
        for (int i = 0; i < n; i++) out[i] = (float)sdc_schedule_t_to_sigma(s, linspace(SDC_TIMESTEPS - 1, 0, n, i));
        break;
    case SDC_SCHEDULE_KARRAS: {
        const double rho = 7.0;
        double min_inv = pow(smin, 1.0 / rho), max_inv = pow(smax, 1.0 / rho);
        for (int i = 0; i < n; i++) {
            double ramp = linspace(0, 1, n, i);
            out[i] = (float)pow(max_inv + ramp * (min_inv - max_inv), rho);
        }
        break;
    }
    case SDC_SCHEDULE_EXPONENTIAL:
        for (int i = 0; i < n; i++) out[i] = (float)exp(linspace(log(smax), log(smin), n, i));
        break;
    case SDC_SCHEDULE_AYS:
        if (n + 1 == 11) {
            for (int i = 0; i < n; i++) out[i] = (float)ays_sd15[i];
        } else {
            /* numpy.interp of log sigma (ascending) at linspace(0, 1, n + 1) over linspace(0, 1, 11) */
            for (int i = 0; i < n; i++) {
                double x = linspace(0, 1, n + 1, n - i); /* position in the ascending order */
                double pos = x * 10.0;
                int j = (int)floor(pos);
                if (j > 9) j = 9;
                double f = pos - j;
                double y0 = log(ays_sd15[10 - j]), y1 = log(ays_sd15[10 - (j + 1)]);
                out[i] = (float)exp(y0 + f * (y1 - y0));
            }
        }
        break;
    case SDC_SCHEDULE_SGM_UNIFORM:
        for (int i = 0; i < n; i++)
            out[i] = (float)sdc_schedule_t_to_sigma(s, linspace(SDC_TIMESTEPS - 1, 0, n + 1, i));
        break;
    case SDC_SCHEDULE_SIMPLE: {
        const double ss = (double)SDC_TIMESTEPS / n;
        for (int i = 0; i < n; i++) {
            int t = SDC_TIMESTEPS - 1 - (int)(i * ss);
            if (t < 0) t = 0;
            out[i] = (float)s->sigmas[t];
        }
        break;
    }
    default:
        return sdc_fail(err, errlen, SDC_E_INVALID, "schedule: expected one of %s, got %d", sdc_schedule_kind_list(),
                        (int)kind);
    }
    out[n] = 0.0f;
    return SDC_OK;
}

static const char *const schedule_names[SDC_SCHEDULE_KIND_COUNT] = {
    "discrete", "karras", "exponential", "ays", "sgm_uniform", "simple",
};

const char *sdc_schedule_kind_name(sdc_schedule_kind kind) {
    return (unsigned)kind < SDC_SCHEDULE_KIND_COUNT ? schedule_names[kind] : "?";
}

const char *sdc_schedule_kind_list(void) { return "discrete, karras, exponential, ays, sgm_uniform, simple"; }

static bool name_eq(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
    return *a == *b;
}

int sdc_schedule_kind_parse(const char *name) {
    if (!name) return -1;
    for (int k = 0; k < SDC_SCHEDULE_KIND_COUNT; k++)
        if (strcmp(name, schedule_names[k]) == 0) return k;
    static const struct { const char *label; sdc_schedule_kind kind; } labels[] = {
        {"automatic", SDC_SCHEDULE_DISCRETE},   {"uniform", SDC_SCHEDULE_DISCRETE},
        {"normal", SDC_SCHEDULE_DISCRETE},      {"default", SDC_SCHEDULE_DISCRETE},
        {"karras", SDC_SCHEDULE_KARRAS},        {"exponential", SDC_SCHEDULE_EXPONENTIAL},
        {"align your steps", SDC_SCHEDULE_AYS}, {"sgm uniform", SDC_SCHEDULE_SGM_UNIFORM},
        {"sgm_uniform", SDC_SCHEDULE_SGM_UNIFORM}, {"simple", SDC_SCHEDULE_SIMPLE},
        {"ays", SDC_SCHEDULE_AYS},
    };
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++)
        if (name_eq(name, labels[i].label)) return labels[i].kind;
    return -1;
}
