/* test_sampler.c - every sampler against analytic denoisers and an independent reference.
 *
 * 1. Exact answers: with D(x; sigma) = c (any constant, 0 included) the probability-flow ODE
 *    dx/dsigma = (x - c) / sigma has the solution x(sigma) = c + (x0 - c) sigma / sigma0, linear in
 *    sigma, which every deterministic sampler here integrates exactly.
 * 2. Convergence: for Gaussian data N(0, s^2), D(x; sigma) = x s^2 / (s^2 + sigma^2) and the ODE
 *    solution is x(sigma) = x0 sqrt((s^2 + sigma^2) / (s^2 + sigma0^2)). The observed order
 *    log2(err(N) / err(2N)) must match each method's order.
 * 3. Zero noise: ancestral / SDE samplers with eta = 0 or a zero noise source against their
 *    deterministic counterparts.
 * 4. Reference: each sampler re-implemented below in double, written directly from the reference
 *    formulas (k-diffusion sampling.py, ComfyUI's ipndm/ipndm_v/lcm, LDM plms.py, diffusers TCD,
 *    stable-diffusion.cpp dpm++2mv2), run for 4 steps on a nonlinear denoiser with the same noise.
 * 5. Plumbing: denoiser call counts, noise draws (one Philox offset per injection), progress,
 *    cancel, errors, names.
 * 6. The golden pipeline run (euler, discrete, 6 steps): Philox noise * sigma_0 equals its first
 *    trajectory row, and Euler fed the x0 predictions implied by its trajectory lands on latent.npy.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sampler.h"
#include "schedule.h"
#include "testutil.h"

#define N 64

/* ------------------------------------------------------------------ denoisers */

typedef struct den_ctx {
    int kind; /* 0 constant c, 1 Gaussian data (scale s), 2 nonlinear */
    double c, s;
    int calls;
    int fail_at; /* return an error on this call (1-based), 0 = never */
} den_ctx;

static double nonlinear(double x, double sigma, int j) {
    double a = 0.25 / (0.25 + sigma * sigma);
    double b = 0.3 * sigma / (1 + sigma * sigma);
    double m = 0.1 * (j % 5) - 0.2;
    return a * x + b * tanh(x) + (1 - a) * m;
}

static double den_value(const den_ctx *c, double x, double sigma, int j) {
    switch (c->kind) {
    case 0: return c->c;
    case 1: return x * c->s * c->s / (c->s * c->s + sigma * sigma);
    default: return nonlinear(x, sigma, j);
    }
}

static sdc_status denoise(void *user, const float *x, float sigma, float *out, int64_t n) {
    den_ctx *c = user;
    c->calls++;
    if (c->fail_at && c->calls == c->fail_at) return SDC_E_INTERNAL;
    for (int64_t j = 0; j < n; j++) out[j] = (float)den_value(c, x[j], sigma, (int)j);
    return SDC_OK;
}

static void zero_noise(void *user, float *out, int64_t n) {
    int *count = user;
    if (count) (*count)++;
    memset(out, 0, sizeof(float) * (size_t)n);
}

static void start_x(float *x, double sigma0) {
    tu_rng g = {12345};
    for (int j = 0; j < N; j++) x[j] = (float)(tu_rng_normal(&g) * sigma0);
}

static sdc_status run(sdc_sampler_kind kind, float eta, den_ctx *dc, sdc_rng *rng, sdc_noise_fn nf, void *nu,
                      float *x, const float *sig, int steps) {
    sdc_sampler_params p = sdc_sampler_default_params();
    p.kind = kind;
    p.eta = eta;
    p.denoise = denoise;
    p.denoise_user = dc;
    p.rng = rng;
    p.noise = nf;
    p.noise_user = nu;
    char err[256];
    sdc_status st = sdc_sample(&p, x, N, sig, steps, err, sizeof err);
    if (st != SDC_OK) printf("  %s: %s\n", sdc_sampler_kind_name(kind), err);
    return st;
}

static const sdc_sampler_kind deterministic[] = {
    SDC_SAMPLER_EULER, SDC_SAMPLER_HEUN,  SDC_SAMPLER_DPM2, SDC_SAMPLER_DPMPP_2M, SDC_SAMPLER_DPMPP_2MV2,
    SDC_SAMPLER_IPNDM, SDC_SAMPLER_IPNDM_V, SDC_SAMPLER_LMS, SDC_SAMPLER_PLMS,
};
#define NDET (int)(sizeof deterministic / sizeof deterministic[0])

/* ------------------------------------------------------------------ 1. exact answers */

static void test_constant_denoiser(void) {
    sdc_schedule sc;
    sdc_schedule_init(&sc);
    float sig[11], sig_pos[8];
    char err[128];
    sdc_schedule_sigmas(&sc, SDC_SCHEDULE_KARRAS, 10, sig, err, sizeof err);
    for (int i = 0; i < 8; i++) sig_pos[i] = (float)(12.0 * pow(0.5, i)); /* ends at 12/128 > 0 */
    const double cs[2] = {0.0, 0.7};
    for (int ci = 0; ci < 2; ci++) {
        for (int k = 0; k < NDET + 4; k++) {
            sdc_sampler_kind kind;
            float eta = NAN;
            if (k < NDET)
                kind = deterministic[k];
            else {
                static const sdc_sampler_kind extra[4] = {SDC_SAMPLER_EULER_A, SDC_SAMPLER_DPMPP_2S_A,
                                                          SDC_SAMPLER_DPMPP_2M_SDE, SDC_SAMPLER_DDIM};
                kind = extra[k - NDET];
                eta = 0;
            }
            for (int sched = 0; sched < 2; sched++) {
                const float *s = sched ? sig_pos : sig;
                int steps = sched ? 7 : 10;
                float x[N], x0[N], want[N];
                start_x(x, s[0]);
                memcpy(x0, x, sizeof x);
                den_ctx dc = {.kind = 0, .c = cs[ci]};
                CHECK(run(kind, eta, &dc, NULL, NULL, NULL, x, s, steps) == SDC_OK);
                for (int j = 0; j < N; j++) want[j] = (float)(cs[ci] + (x0[j] - cs[ci]) * s[steps] / s[0]);
                char label[96];
                snprintf(label, sizeof label, "D=%g %s %s", cs[ci], sdc_sampler_kind_name(kind),
                         sched ? "to 0.094" : "to 0");
                CHECK_NEAR(x, want, N, 1e-5, 2e-6, label); /* |x0| ~ 15 */
            }
        }
    }
}

/* ------------------------------------------------------------------ 2. convergence order */

static double gauss_error(sdc_sampler_kind kind, int steps, double s, double s0, double s_end) {
    float *sig = malloc(sizeof(float) * (steps + 1));
    for (int i = 0; i <= steps; i++) sig[i] = (float)(s0 * pow(s_end / s0, (double)i / steps));
    float x[N], x0[N];
    start_x(x, s0);
    memcpy(x0, x, sizeof x);
    den_ctx dc = {.kind = 1, .s = s};
    run(kind, 0.0f, &dc, NULL, NULL, NULL, x, sig, steps);
    double f = sqrt((s * s + (double)sig[steps] * sig[steps]) / (s * s + (double)sig[0] * sig[0]));
    double num = 0, den = 0;
    for (int j = 0; j < N; j++) {
        double w = x0[j] * f;
        num += (x[j] - w) * (x[j] - w);
        den += w * w;
    }
    free(sig);
    return sqrt(num / den);
}

static void test_convergence(void) {
    static const struct {
        sdc_sampler_kind kind;
        double lo, hi; /* accepted observed order */
    } cases[] = {
        {SDC_SAMPLER_EULER, 0.85, 1.15},     {SDC_SAMPLER_EULER_A, 0.85, 1.15}, /* eta 0 */
        {SDC_SAMPLER_DDIM, 0.85, 1.15},      {SDC_SAMPLER_HEUN, 1.8, 2.3},
        {SDC_SAMPLER_DPM2, 1.8, 2.3},        {SDC_SAMPLER_DPMPP_2S_A, 1.8, 2.3}, /* eta 0 */
        {SDC_SAMPLER_DPMPP_2M, 1.8, 2.3},    {SDC_SAMPLER_DPMPP_2MV2, 1.8, 2.3},
        {SDC_SAMPLER_DPMPP_2M_SDE, 1.8, 2.3}, /* eta 0 */
        {SDC_SAMPLER_IPNDM, 1.7, 3.2},       {SDC_SAMPLER_IPNDM_V, 1.8, 4.2},
        {SDC_SAMPLER_LMS, 1.8, 4.2},         {SDC_SAMPLER_PLMS, 1.8, 3.6},
    };
    const double s = 0.2, s0 = 10, s_end = 0.2; /* s = 0.5 puts a sign change of the dpm++2m error near N = 48 */
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double e[4];
        int ns[4] = {12, 24, 48, 96};
        for (int k = 0; k < 4; k++) e[k] = gauss_error(cases[c].kind, ns[k], s, s0, s_end);
        double p1 = log2(e[1] / e[2]), p2 = log2(e[2] / e[3]);
        printf("order %-12s err N=12..96: %.2e %.2e %.2e %.2e  observed order %.2f, %.2f\n",
               sdc_sampler_kind_name(cases[c].kind), e[0], e[1], e[2], e[3], p1, p2);
        CHECK_MSG(p2 >= cases[c].lo && p2 <= cases[c].hi, "%s: order %.2f outside [%.2f, %.2f]",
                  sdc_sampler_kind_name(cases[c].kind), p2, cases[c].lo, cases[c].hi);
        CHECK(e[3] < e[0]);
    }
}

/* ------------------------------------------------------------------ 4. reference implementations */

typedef struct ref_noise {
    sdc_rng rng;
    bool zero;
} ref_noise;

static void ref_draw(ref_noise *rn, double *z) {
    float f[N];
    if (rn->zero)
        memset(f, 0, sizeof f);
    else
        sdc_rng_randn(&rn->rng, f, N);
    for (int j = 0; j < N; j++) z[j] = f[j];
}

static void ref_D(const double *x, double sigma, double *out) {
    /* the same function the float run sees; x is rounded to float as the sampler's state is */
    for (int j = 0; j < N; j++) out[j] = nonlinear((float)x[j], (float)sigma, j);
}

static void to_d(const double *x, const double *den, double sigma, double *d) {
    for (int j = 0; j < N; j++) d[j] = (x[j] - den[j]) / sigma;
}

/* k-diffusion get_ancestral_step */
static void ref_ancestral(double f, double t, double eta, double *down, double *up) {
    if (eta == 0) {
        *down = t;
        *up = 0;
        return;
    }
    *up = fmin(t, eta * sqrt(t * t * (f * f - t * t) / (f * f)));
    *down = sqrt(t * t - *up * *up);
}

/* Lagrange basis integral by a fine midpoint rule (independent of the sampler's quadrature). */
static double ref_lms_coeff(int order, const double *t, int i, int j) {
    const int M = 20000;
    double a = t[i], b = t[i + 1], sum = 0;
    for (int m = 0; m < M; m++) {
        double tau = a + (b - a) * (m + 0.5) / M, prod = 1;
        for (int k = 0; k < order; k++)
            if (k != j) prod *= (tau - t[i - k]) / (t[i - j] - t[i - k]);
        sum += prod;
    }
    return sum * (b - a) / M;
}

static void ref_sample(sdc_sampler_kind kind, double eta, double *x, const double *sg, int steps, ref_noise *rn,
                       const sdc_schedule *sc) {
    double den[N], d[N], x2[N], den2[N], d2[N], z[N];
    double hist[4][N]; /* hist[0] newest */
    int nh = 0;
    double old[N];
    bool have_old = false;
    double h_last = 0;
    for (int i = 0; i < steps; i++) {
        double s = sg[i], sn = sg[i + 1];
        ref_D(x, s, den);
        to_d(x, den, s, d);
        switch (kind) {
        case SDC_SAMPLER_EULER:
            for (int j = 0; j < N; j++) x[j] += d[j] * (sn - s);
            break;
        case SDC_SAMPLER_EULER_A:
        case SDC_SAMPLER_DDIM: {
            double down, up;
            ref_ancestral(s, sn, eta, &down, &up);
            for (int j = 0; j < N; j++) x[j] += d[j] * (down - s);
            if (sn > 0 && eta > 0) {
                ref_draw(rn, z);
                for (int j = 0; j < N; j++) x[j] += z[j] * up;
            }
            break;
        }
        case SDC_SAMPLER_HEUN:
            if (sn == 0) {
                for (int j = 0; j < N; j++) x[j] += d[j] * (sn - s);
            } else {
                for (int j = 0; j < N; j++) x2[j] = x[j] + d[j] * (sn - s);
                ref_D(x2, sn, den2);
                to_d(x2, den2, sn, d2);
                for (int j = 0; j < N; j++) x[j] += (d[j] + d2[j]) / 2 * (sn - s);
            }
            break;
        case SDC_SAMPLER_DPM2:
            if (sn == 0) {
                for (int j = 0; j < N; j++) x[j] += d[j] * (sn - s);
            } else {
                double sm = exp((log(s) + log(sn)) / 2);
                for (int j = 0; j < N; j++) x2[j] = x[j] + d[j] * (sm - s);
                ref_D(x2, sm, den2);
                to_d(x2, den2, sm, d2);
                for (int j = 0; j < N; j++) x[j] += d2[j] * (sn - s);
            }
            break;
        case SDC_SAMPLER_DPMPP_2S_A: {
            double down, up;
            ref_ancestral(s, sn, eta, &down, &up);
            if (down == 0) {
                for (int j = 0; j < N; j++) x[j] += d[j] * (down - s);
            } else {
                double t = -log(s), tn = -log(down), h = tn - t, ss = t + 0.5 * h;
                for (int j = 0; j < N; j++) x2[j] = (exp(-ss) / exp(-t)) * x[j] - expm1(-h * 0.5) * den[j];
                ref_D(x2, exp(-ss), den2);
                for (int j = 0; j < N; j++) x[j] = (exp(-tn) / exp(-t)) * x[j] - expm1(-h) * den2[j];
            }
            if (sn > 0 && eta > 0) {
                ref_draw(rn, z);
                for (int j = 0; j < N; j++) x[j] += z[j] * up;
            }
            break;
        }
        case SDC_SAMPLER_DPMPP_2M:
        case SDC_SAMPLER_DPMPP_2MV2: {
            double t = -log(s), tn = sn > 0 ? -log(sn) : INFINITY, h = tn - t;
            if (!have_old || sn == 0) {
                for (int j = 0; j < N; j++) x[j] = (sn / s) * x[j] - expm1(-h) * den[j];
            } else {
                double hl = t - (-log(sg[i - 1])), r, b;
                if (kind == SDC_SAMPLER_DPMPP_2M) {
                    r = hl / h;
                    b = expm1(-h);
                } else {
                    r = fmax(hl, h) / fmin(hl, h);
                    b = expm1(-(hl + h) / 2);
                }
                for (int j = 0; j < N; j++) {
                    double dd = (1 + 1 / (2 * r)) * den[j] - (1 / (2 * r)) * old[j];
                    x[j] = (sn / s) * x[j] - b * dd;
                }
            }
            memcpy(old, den, sizeof old);
            have_old = true;
            break;
        }
        case SDC_SAMPLER_DPMPP_2M_SDE:
            if (sn == 0) {
                memcpy(x, den, sizeof den);
            } else {
                double t = -log(s), sl = -log(sn), h = sl - t, eh = eta * h;
                for (int j = 0; j < N; j++) x[j] = sn / s * exp(-eh) * x[j] + (-expm1(-h - eh)) * den[j];
                if (have_old) {
                    double r = h_last / h;
                    for (int j = 0; j < N; j++) x[j] += 0.5 * (-expm1(-h - eh)) * (1 / r) * (den[j] - old[j]);
                }
                if (eta > 0) {
                    ref_draw(rn, z);
                    for (int j = 0; j < N; j++) x[j] += z[j] * sn * sqrt(-expm1(-2 * eh));
                }
                h_last = h;
            }
            memcpy(old, den, sizeof old);
            have_old = true;
            break;
        case SDC_SAMPLER_IPNDM:
        case SDC_SAMPLER_IPNDM_V: {
            int order = i + 1 < 4 ? i + 1 : 4;
            double c1 = 1, c2 = 0, c3 = 0, c4 = 0;
            if (kind == SDC_SAMPLER_IPNDM) {
                if (order == 2) c1 = 1.5, c2 = -0.5;
                if (order == 3) c1 = 23 / 12.0, c2 = -16 / 12.0, c3 = 5 / 12.0;
                if (order == 4) c1 = 55 / 24.0, c2 = -59 / 24.0, c3 = 37 / 24.0, c4 = -9 / 24.0;
            } else if (order >= 2) {
                double hn = sn - s, hn1 = s - sg[i - 1];
                if (order == 2) {
                    c1 = (2 + hn / hn1) / 2;
                    c2 = -(hn / hn1) / 2;
                } else if (order == 3) {
                    double hn2 = sg[i - 1] - sg[i - 2];
                    double temp = (1 - hn / (3 * (hn + hn1)) * (hn * (hn + hn1)) / (hn1 * (hn1 + hn2))) / 2;
                    c1 = (2 + hn / hn1) / 2 + temp;
                    c2 = -(hn / hn1) / 2 - (1 + hn1 / hn2) * temp;
                    c3 = temp * hn1 / hn2;
                } else {
                    double hn2 = sg[i - 1] - sg[i - 2], hn3 = sg[i - 2] - sg[i - 3];
                    double temp1 = (1 - hn / (3 * (hn + hn1)) * (hn * (hn + hn1)) / (hn1 * (hn1 + hn2))) / 2;
                    double temp2 = ((1 - hn / (3 * (hn + hn1))) / 2 + (1 - hn / (2 * (hn + hn1))) * hn / (6 * (hn + hn1 + hn2))) *
                                   (hn * (hn + hn1) * (hn + hn1 + hn2)) / (hn1 * (hn1 + hn2) * (hn1 + hn2 + hn3));
                    c1 = (2 + hn / hn1) / 2 + temp1 + temp2;
                    c2 = -(hn / hn1) / 2 - (1 + hn1 / hn2) * temp1 -
                         (1 + (hn1 / hn2) + (hn1 * (hn1 + hn2) / (hn2 * (hn2 + hn3)))) * temp2;
                    c3 = temp1 * hn1 / hn2 +
                         ((hn1 / hn2) + (hn1 * (hn1 + hn2) / (hn2 * (hn2 + hn3))) * (1 + hn2 / hn3)) * temp2;
                    c4 = -temp2 * (hn1 * (hn1 + hn2) / (hn2 * (hn2 + hn3))) * hn1 / hn2;
                }
            }
            if (sn == 0) {
                memcpy(x, den, sizeof den);
            } else {
                for (int j = 0; j < N; j++) {
                    double v = c1 * d[j];
                    if (order > 1) v += c2 * hist[0][j];
                    if (order > 2) v += c3 * hist[1][j];
                    if (order > 3) v += c4 * hist[2][j];
                    x[j] += (sn - s) * v;
                }
            }
            memmove(hist[1], hist[0], sizeof(double) * N * 2);
            memcpy(hist[0], d, sizeof d);
            nh++;
            break;
        }
        case SDC_SAMPLER_LMS: {
            memmove(hist[1], hist[0], sizeof(double) * N * 3);
            memcpy(hist[0], d, sizeof d);
            nh++;
            int order = nh < 4 ? nh : 4;
            for (int k = 0; k < order; k++) {
                double c = ref_lms_coeff(order, sg, i, k);
                for (int j = 0; j < N; j++) x[j] += c * hist[k][j];
            }
            break;
        }
        case SDC_SAMPLER_LCM:
            memcpy(x, den, sizeof den);
            if (sn > 0) {
                ref_draw(rn, z);
                for (int j = 0; j < N; j++) x[j] += sn * z[j];
            }
            break;
        case SDC_SAMPLER_PLMS: {
            double e[N];
            if (nh == 0) {
                if (sn > 0) {
                    for (int j = 0; j < N; j++) x2[j] = x[j] + (sn - s) * d[j];
                    ref_D(x2, sn, den2);
                    to_d(x2, den2, sn, d2);
                    for (int j = 0; j < N; j++) e[j] = (d[j] + d2[j]) / 2;
                } else {
                    memcpy(e, d, sizeof d);
                }
            } else if (nh == 1) {
                for (int j = 0; j < N; j++) e[j] = (3 * d[j] - hist[0][j]) / 2;
            } else if (nh == 2) {
                for (int j = 0; j < N; j++) e[j] = (23 * d[j] - 16 * hist[0][j] + 5 * hist[1][j]) / 12;
            } else {
                for (int j = 0; j < N; j++)
                    e[j] = (55 * d[j] - 59 * hist[0][j] + 37 * hist[1][j] - 9 * hist[2][j]) / 24;
            }
            for (int j = 0; j < N; j++) x[j] += (sn - s) * e[j];
            memmove(hist[1], hist[0], sizeof(double) * N * 2);
            memcpy(hist[0], d, sizeof d);
            nh++;
            break;
        }
        case SDC_SAMPLER_TCD: {
            /* diffusers TCDScheduler.step on sqrt(abar)-scaled states, mapped back to sigma space */
            int tp = 0;
            double best = INFINITY;
            for (int t = 0; t < SDC_TIMESTEPS; t++) /* nearest training sigma (first on ties) */
                if (fabs(sc->sigmas[t] - sn) < best) best = fabs(sc->sigmas[t] - sn), tp = t;
            int ts = (int)floor((1 - eta) * tp);
            double at = 1 / (s * s + 1), ap = 1 / (sn * sn + 1), as = sc->alphas_cumprod[ts];
            double vp[N];
            for (int j = 0; j < N; j++) {
                double sample = x[j] * sqrt(at);               /* VP state */
                double eps = (x[j] - den[j]) / s;               /* model_output */
                double x0 = (sample - sqrt(1 - at) * eps) / sqrt(at);
                vp[j] = sqrt(as) * x0 + sqrt(1 - as) * eps;     /* pred_noised_sample */
            }
            if (eta > 0 && sn > 0) {
                ref_draw(rn, z);
                for (int j = 0; j < N; j++) vp[j] = sqrt(ap / as) * vp[j] + sqrt(fmax(0, 1 - ap / as)) * z[j];
                for (int j = 0; j < N; j++) x[j] = vp[j] / sqrt(ap);
            } else {
                for (int j = 0; j < N; j++) x[j] = vp[j] / sqrt(ap);
            }
            break;
        }
        default:
            break;
        }
    }
}

static void test_reference(void) {
    sdc_schedule sc;
    sdc_schedule_init(&sc);
    char err[128];
    float sig_k[5], sig_s[4], sig_d[5];
    sdc_schedule_sigmas(&sc, SDC_SCHEDULE_KARRAS, 4, sig_k, err, sizeof err);
    sdc_schedule_sigmas(&sc, SDC_SCHEDULE_SIMPLE, 3, sig_s, err, sizeof err);
    sdc_schedule_sigmas(&sc, SDC_SCHEDULE_DISCRETE, 4, sig_d, err, sizeof err);
    const struct {
        const float *sig;
        int steps;
        const char *name;
    } scheds[3] = {{sig_k, 4, "karras4"}, {sig_s, 3, "simple3"}, {sig_d, 4, "discrete4"}};
    for (int k = 0; k < SDC_SAMPLER_KIND_COUNT; k++) {
        /* each stochastic sampler also with a non-default eta */
        float etas[2] = {NAN, NAN};
        int ne = 1;
        if (k == SDC_SAMPLER_EULER_A || k == SDC_SAMPLER_DPMPP_2S_A || k == SDC_SAMPLER_DPMPP_2M_SDE) etas[1] = 0.5f, ne = 2;
        if (k == SDC_SAMPLER_DDIM) etas[1] = 0.7f, ne = 2;
        if (k == SDC_SAMPLER_TCD) etas[1] = 0.3f, ne = 2;
        for (int e = 0; e < ne; e++) {
            for (int si = 0; si < 3; si++) {
                const float *sigf = scheds[si].sig;
                int steps = scheds[si].steps;
                float x[N];
                double xr[N], sg[8];
                start_x(x, sigf[0]);
                for (int j = 0; j < N; j++) xr[j] = x[j];
                for (int i = 0; i <= steps; i++) sg[i] = sigf[i];
                sdc_rng rng;
                sdc_rng_init(&rng, SDC_RNG_CUDA, 99);
                ref_noise rn = {.rng = rng};
                den_ctx dc = {.kind = 2};
                sdc_sampler_params p = sdc_sampler_default_params();
                p.kind = (sdc_sampler_kind)k;
                p.eta = etas[e];
                p.denoise = denoise;
                p.denoise_user = &dc;
                p.rng = &rng;
                p.schedule = &sc;
                CHECK(sdc_sample(&p, x, N, sigf, steps, err, sizeof err) == SDC_OK);
                double eta = isnan(etas[e]) ? sdc_sampler_default_eta((sdc_sampler_kind)k) : etas[e];
                ref_sample((sdc_sampler_kind)k, eta, xr, sg, steps, &rn, &sc);
                float want[N];
                for (int j = 0; j < N; j++) want[j] = (float)xr[j];
                char label[96];
                snprintf(label, sizeof label, "ref %s eta=%g %s", sdc_sampler_kind_name((sdc_sampler_kind)k), eta,
                         scheds[si].name);
                CHECK_NEAR(x, want, N, 5e-6, 5e-6, label);
                CHECK_MSG(dc.calls == sdc_sampler_model_calls(&p, sigf, steps), "%s: %d calls, predicted %d", label,
                          dc.calls, sdc_sampler_model_calls(&p, sigf, steps));
                CHECK_MSG(rng.offset == rn.rng.offset, "%s: %llu noise draws, reference %llu", label,
                          (unsigned long long)rng.offset, (unsigned long long)rn.rng.offset);
            }
        }
    }
}

/* ------------------------------------------------------------------ 3. zero noise */

static void test_zero_noise(void) {
    sdc_schedule sc;
    sdc_schedule_init(&sc);
    char err[128];
    float sig[9];
    sdc_schedule_sigmas(&sc, SDC_SCHEDULE_KARRAS, 8, sig, err, sizeof err);
    float xe[N], xa[N];
    den_ctx dc = {.kind = 2};
    start_x(xe, sig[0]);
    run(SDC_SAMPLER_EULER, NAN, &dc, NULL, NULL, NULL, xe, sig, 8);
    /* eta = 0: euler_a and ddim are Euler, bit for bit, and draw nothing */
    const sdc_sampler_kind as_euler[2] = {SDC_SAMPLER_EULER_A, SDC_SAMPLER_DDIM};
    for (int k = 0; k < 2; k++) {
        int draws = 0;
        start_x(xa, sig[0]);
        run(as_euler[k], 0.0f, &dc, NULL, zero_noise, &draws, xa, sig, 8);
        CHECK_MSG(memcmp(xa, xe, sizeof xa) == 0, "%s eta 0 differs from euler", sdc_sampler_kind_name(as_euler[k]));
        CHECK(draws == 0);
    }
    /* ddim's default eta is 0 */
    start_x(xa, sig[0]);
    run(SDC_SAMPLER_DDIM, NAN, &dc, NULL, NULL, NULL, xa, sig, 8);
    CHECK(memcmp(xa, xe, sizeof xa) == 0);
    /* dpm++2m_sde with eta 0 is dpm++2m */
    float xm[N];
    start_x(xm, sig[0]);
    run(SDC_SAMPLER_DPMPP_2M, NAN, &dc, NULL, NULL, NULL, xm, sig, 8);
    start_x(xa, sig[0]);
    run(SDC_SAMPLER_DPMPP_2M_SDE, 0.0f, &dc, NULL, zero_noise, NULL, xa, sig, 8);
    CHECK_NEAR(xa, xm, N, 1e-6, 1e-6, "dpm++2m_sde eta 0 vs dpm++2m");
    /* tcd with gamma 0 on integer training timesteps is Euler (DDIM) except into sigma 0 */
    float sig_int[6] = {(float)sc.sigmas[999], (float)sc.sigmas[799], (float)sc.sigmas[599], (float)sc.sigmas[399],
                        (float)sc.sigmas[199], (float)sc.sigmas[20]};
    start_x(xe, sig_int[0]);
    memcpy(xa, xe, sizeof xa);
    run(SDC_SAMPLER_EULER, NAN, &dc, NULL, NULL, NULL, xe, sig_int, 5);
    run(SDC_SAMPLER_TCD, 0.0f, &dc, NULL, NULL, NULL, xa, sig_int, 5);
    CHECK_NEAR(xa, xe, N, 1e-5, 1e-5, "tcd gamma 0 vs euler on training timesteps");
    /* with zero noise: lcm returns D of the last step; euler_a into 0 returns D too */
    dc.kind = 0;
    dc.c = 0.25;
    start_x(xa, sig[0]);
    int draws = 0;
    run(SDC_SAMPLER_LCM, NAN, &dc, NULL, zero_noise, &draws, xa, sig, 8);
    int ok = 1;
    for (int j = 0; j < N; j++) ok &= xa[j] == 0.25f;
    CHECK_MSG(ok, "lcm with zero noise should end at D");
    CHECK(draws == 7);
    start_x(xa, sig[0]);
    draws = 0;
    run(SDC_SAMPLER_EULER_A, NAN, &dc, NULL, zero_noise, &draws, xa, sig, 8);
    float want[N];
    for (int j = 0; j < N; j++) want[j] = 0.25f;
    CHECK_NEAR(xa, want, N, 1e-6, 1e-6, "euler_a zero noise, D = const, into 0");
    CHECK(draws == 7); /* no draw for the step into sigma 0 */
}

/* ------------------------------------------------------------------ 5. plumbing */

typedef struct prog {
    int last, count, cancel_after;
} prog;
static void on_progress(void *u, int step, int steps) {
    prog *p = u;
    CHECK(step == p->last + 1 && steps == 6);
    p->last = step;
    p->count++;
}
static bool on_cancel(void *u) {
    prog *p = u;
    return p->cancel_after >= 0 && p->count >= p->cancel_after;
}

static void test_plumbing(void) {
    sdc_schedule sc;
    sdc_schedule_init(&sc);
    char err[256];
    float sig[7];
    sdc_schedule_sigmas(&sc, SDC_SCHEDULE_DISCRETE, 6, sig, err, sizeof err);
    float x[N];
    den_ctx dc = {.kind = 2};
    sdc_sampler_params p = sdc_sampler_default_params();
    CHECK(p.kind == SDC_SAMPLER_EULER_A && isnan(p.eta));
    p.denoise = denoise;
    p.denoise_user = &dc;

    /* euler_a with the Philox rng: one draw (offset) per noise injection, none into sigma 0 */
    sdc_rng rng;
    sdc_rng_init(&rng, SDC_RNG_CUDA, 42);
    sdc_rng_randn(&rng, x, N); /* draw 0: the initial latent */
    for (int j = 0; j < N; j++) x[j] *= sig[0];
    p.rng = &rng;
    prog pr = {0, 0, -1};
    p.progress = on_progress;
    p.progress_user = &pr;
    CHECK(sdc_sample(&p, x, N, sig, 6, err, sizeof err) == SDC_OK);
    CHECK(rng.offset == 1 + 5);
    CHECK(pr.count == 6);
    CHECK(dc.calls == 6);

    /* cancel between steps */
    dc.calls = 0;
    pr = (prog){0, 0, 2};
    p.cancel = on_cancel;
    p.cancel_user = &pr;
    CHECK(sdc_sample(&p, x, N, sig, 6, err, sizeof err) == SDC_E_CANCELLED);
    printf("cancel: %s\n", err);
    CHECK(dc.calls == 2 && pr.count == 2);
    p.cancel = NULL;

    /* errors */
    dc = (den_ctx){.kind = 2, .fail_at = 3};
    p.kind = SDC_SAMPLER_HEUN;
    p.progress = NULL;
    CHECK(sdc_sample(&p, x, N, sig, 6, err, sizeof err) == SDC_E_INTERNAL);
    printf("denoiser error: %s\n", err);
    dc.fail_at = 0;
    CHECK(sdc_sample(&p, x, N, sig, 0, err, sizeof err) == SDC_E_INVALID);
    printf("steps 0: %s\n", err);
    float bad[4] = {1.0f, 2.0f, 0.5f, 0.0f};
    CHECK(sdc_sample(&p, x, N, bad, 3, err, sizeof err) == SDC_E_INVALID);
    printf("increasing: %s\n", err);
    float zero_mid[4] = {3.0f, 0.0f, 0.0f, 0.0f};
    CHECK(sdc_sample(&p, x, N, zero_mid, 3, err, sizeof err) == SDC_E_INVALID);
    p.kind = SDC_SAMPLER_DPMPP_2S_A;
    p.rng = NULL;
    CHECK(sdc_sample(&p, x, N, sig, 6, err, sizeof err) == SDC_E_INVALID);
    printf("no noise: %s\n", err);
    p.eta = 0; /* deterministic: no noise source needed */
    CHECK(sdc_sample(&p, x, N, sig, 6, err, sizeof err) == SDC_OK);
    p.eta = -1;
    CHECK(sdc_sample(&p, x, N, sig, 6, err, sizeof err) == SDC_E_INVALID);
    p.eta = NAN;
    p.denoise = NULL;
    CHECK(sdc_sample(&p, x, N, sig, 6, err, sizeof err) == SDC_E_INVALID);
    p.denoise = denoise;
    p.kind = (sdc_sampler_kind)77;
    CHECK(sdc_sample(&p, x, N, sig, 6, err, sizeof err) == SDC_E_INVALID);
    printf("bad kind: %s\n", err);

    /* a single step */
    float one[2] = {sig[0], 0};
    p.kind = SDC_SAMPLER_PLMS;
    p.eta = NAN;
    dc.calls = 0;
    CHECK(sdc_sample(&p, x, N, one, 1, err, sizeof err) == SDC_OK);
    CHECK(dc.calls == 1 && sdc_sampler_model_calls(&p, one, 1) == 1);
}

static void test_names(void) {
    for (int k = 0; k < SDC_SAMPLER_KIND_COUNT; k++) {
        CHECK(sdc_sampler_kind_parse(sdc_sampler_kind_name((sdc_sampler_kind)k)) == k);
        CHECK(sdc_sampler_kind_parse(sdc_sampler_display_name((sdc_sampler_kind)k)) == k);
        CHECK(strstr(sdc_sampler_kind_list(), sdc_sampler_kind_name((sdc_sampler_kind)k)) != NULL);
    }
    CHECK(sdc_sampler_kind_parse("Euler a") == SDC_SAMPLER_EULER_A);
    CHECK(sdc_sampler_kind_parse("DPM++ 2M") == SDC_SAMPLER_DPMPP_2M);
    CHECK(sdc_sampler_kind_parse("dpm++ 2m sde") == SDC_SAMPLER_DPMPP_2M_SDE);
    CHECK(sdc_sampler_kind_parse("DPM++ 2S a") == SDC_SAMPLER_DPMPP_2S_A);
    CHECK(sdc_sampler_kind_parse("ddim_trailing") == SDC_SAMPLER_DDIM);
    CHECK(sdc_sampler_kind_parse("k_dpmpp_2m") == SDC_SAMPLER_DPMPP_2M);
    CHECK(sdc_sampler_kind_parse("euler_ancestral") == SDC_SAMPLER_EULER_A);
    CHECK(sdc_sampler_kind_parse("UniPC") == -1);
    CHECK(sdc_sampler_kind_parse("") == -1);
    CHECK(sdc_sampler_kind_parse(NULL) == -1);
    CHECK(strcmp(sdc_sampler_display_name(SDC_SAMPLER_EULER_A), "Euler a") == 0);
}

/* ------------------------------------------------------------------ 6. the golden Euler run */

/* Replays the model's eps implied by the golden trajectory: for Euler,
 * x_{i+1} = x_i + eps_i (s_{i+1} - s_i), so eps_i = (x_{i+1} - x_i) / (s_{i+1} - s_i), and returns
 * D = x - s eps_i for the x the sampler passes (so our own trajectory accumulates). */
typedef struct replay {
    const float *traj; /* [steps + 1, n] */
    const float *sig;
    int64_t n;
    int call;
} replay;

static sdc_status replay_denoise(void *user, const float *x, float sigma, float *out, int64_t n) {
    replay *r = user;
    int i = r->call++;
    if (n != r->n || sigma != r->sig[i]) return SDC_E_INVALID;
    const float *xi = r->traj + (size_t)i * n, *xn = xi + n;
    double s = r->sig[i], sn = r->sig[i + 1];
    for (int64_t j = 0; j < n; j++) out[j] = (float)(x[j] - s * ((double)xn[j] - xi[j]) / (sn - s));
    return SDC_OK;
}

static void test_golden_euler(void) {
    if (!tu_shared_dir()) {
        printf("shared refs missing: golden Euler replay skipped\n");
        return;
    }
    tu_npy traj, lat, gsig;
    char err[256];
    if (!tu_npy_load(tu_shared_path("refs/pipeline/euler_discrete_6_128/trajectory.npy"), &traj, err, sizeof err) ||
        !tu_npy_load(tu_shared_path("refs/pipeline/euler_discrete_6_128/latent.npy"), &lat, err, sizeof err) ||
        !tu_npy_load(tu_shared_path("refs/pipeline/euler_discrete_6_128/sigmas.npy"), &gsig, err, sizeof err)) {
        printf("golden trajectory not loadable (%s): skipped\n", err);
        return;
    }
    const int64_t n = lat.n; /* 1 * 4 * 16 * 16 */
    CHECK(traj.n == 7 * n && gsig.n == 7);
    sdc_schedule sc;
    sdc_schedule_init(&sc);
    float sig[7];
    sdc_schedule_sigmas(&sc, SDC_SCHEDULE_DISCRETE, 6, sig, err, sizeof err);
    /* x_T = Philox(42) draw 0 * sigma_0 is the trajectory's first row */
    float *x = malloc(sizeof(float) * (size_t)n);
    sdc_rng rng;
    sdc_rng_init(&rng, SDC_RNG_CUDA, 42);
    sdc_rng_randn(&rng, x, n);
    for (int64_t j = 0; j < n; j++) x[j] *= sig[0];
    CHECK_NEAR(x, traj.f32, n, 1e-5, 1e-6, "noise * sigma0 vs golden trajectory[0]");
    replay rp = {traj.f32, gsig.f32, n, 0};
    sdc_sampler_params p = sdc_sampler_default_params();
    p.kind = SDC_SAMPLER_EULER;
    p.denoise = replay_denoise;
    p.denoise_user = &rp;
    /* the golden's own sigmas, so the replayed D_i belong to the sigma they were made at */
    CHECK(sdc_sample(&p, x, n, gsig.f32, 6, err, sizeof err) == SDC_OK);
    CHECK_REL_L2(x, lat.f32, n, 1e-6, "euler replay of the golden run vs latent.npy");
    CHECK_NEAR(x, lat.f32, n, 1e-4, 1e-5, "euler replay of the golden run vs latent.npy (max)");
    free(x);
    tu_npy_free(&traj);
    tu_npy_free(&lat);
    tu_npy_free(&gsig);
}

int main(void) {
    test_constant_denoiser();
    test_convergence();
    test_zero_noise();
    test_reference();
    test_plumbing();
    test_names();
    test_golden_euler();
    return check_done();
}
