/* sampler.c - one function per sampler over a denoiser callback, in k-diffusion's sigma space.
 *
 * Notation: D = D(x; sigma) (the x0 prediction), d = (x - D) / sigma (the ODE derivative
 * dx/dsigma, = eps), t = -log sigma (DPM-Solver's time), h = t_next - t. Each sampler's comment
 * names the reference formula it follows (k-diffusion k_diffusion/sampling.py unless stated;
 * ComfyUI's copy of k-diffusion for ipndm/ipndm_v/lcm; stable-diffusion.cpp denoiser.hpp for
 * dpm++2mv2, ddim and tcd). Only the formulas were taken; the code is ours.
 */
#include "sampler.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* ------------------------------------------------------------------ run context */

typedef struct run {
    const sdc_sampler_params *p;
    float *x;
    int64_t n;
    const float *sig;
    int steps;
    double eta;
    char *err;
    size_t errlen;
    float *buf[8]; /* scratch vectors of n floats */
} run;

enum { B_DEN, B_X2, B_DEN2, B_NOISE, B_H0, B_H1, B_H2, B_H3 };

static sdc_status model(run *r, const float *x, double sigma, float *out) {
    sdc_status st = r->p->denoise(r->p->denoise_user, x, (float)sigma, out, r->n);
    if (st != SDC_OK && r->err && r->errlen && !r->err[0])
        sdc_fail(r->err, r->errlen, st, "denoiser failed at sigma %g (%s)", sigma, sdc_status_name(st));
    return st;
}

static void draw(run *r, float *out) {
    if (r->p->noise)
        r->p->noise(r->p->noise_user, out, r->n);
    else
        sdc_rng_randn(r->p->rng, out, r->n);
}

static sdc_status begin_step(run *r, int i) {
    (void)i;
    if (r->p->cancel && r->p->cancel(r->p->cancel_user))
        return sdc_fail(r->err, r->errlen, SDC_E_CANCELLED, "sampling cancelled before step %d of %d", i + 1,
                        r->steps);
    return SDC_OK;
}

static void end_step(run *r, int i) {
    if (r->p->progress) r->p->progress(r->p->progress_user, i + 1, r->steps);
}

/* k-diffusion get_ancestral_step: sigma_up = min(sigma_to, eta * sqrt(sigma_to^2 (sigma_from^2 -
 * sigma_to^2) / sigma_from^2)), sigma_down = sqrt(sigma_to^2 - sigma_up^2). */
static void ancestral_step(double from, double to, double eta, double *down, double *up) {
    if (!(eta > 0) || !(from > 0)) {
        *down = to, *up = 0;
        return;
    }
    double v = to * to * (from * from - to * to) / (from * from);
    double u = eta * sqrt(v > 0 ? v : 0);
    if (u > to) u = to;
    double dd = to * to - u * u;
    *up = u;
    *down = dd > 0 ? sqrt(dd) : 0;
}

/* x += noise * scale, one draw */
static void add_noise(run *r, double scale) {
    float *z = r->buf[B_NOISE];
    draw(r, z);
    for (int64_t j = 0; j < r->n; j++) r->x[j] = (float)((double)r->x[j] + (double)z[j] * scale);
}

/* ------------------------------------------------------------------ samplers */

/* euler: k-diffusion sample_euler (s_churn = 0): x += d * (sigma_next - sigma). */
static sdc_status sample_euler(run *r) {
    float *x = r->x, *den = r->buf[B_DEN];
    for (int i = 0; i < r->steps; i++) {
        sdc_status st;
        if ((st = begin_step(r, i)) || (st = model(r, x, r->sig[i], den))) return st;
        double s = r->sig[i], dt = (double)r->sig[i + 1] - s;
        for (int64_t j = 0; j < r->n; j++) x[j] = (float)(x[j] + (x[j] - (double)den[j]) / s * dt);
        end_step(r, i);
    }
    return SDC_OK;
}

/* euler_a: k-diffusion sample_euler_ancestral: an Euler step to sigma_down, then noise * sigma_up
 * (drawn only while sigma_next > 0).
 * ddim: stable-diffusion.cpp's ddim_trailing in sigma space, the same update: DDIM(eta) with
 * sqrt(abar)-scaled states is exactly this step (its std_dev_t / sqrt(abar_prev) is sigma_up and
 * sqrt(1 - abar_prev - std^2) / sqrt(abar_prev) is sigma_down); eta = 0 makes it Euler. */
static sdc_status sample_euler_ancestral(run *r) {
    float *x = r->x, *den = r->buf[B_DEN];
    for (int i = 0; i < r->steps; i++) {
        sdc_status st;
        if ((st = begin_step(r, i)) || (st = model(r, x, r->sig[i], den))) return st;
        double s = r->sig[i], down, up;
        ancestral_step(s, r->sig[i + 1], r->eta, &down, &up);
        double dt = down - s;
        for (int64_t j = 0; j < r->n; j++) x[j] = (float)(x[j] + (x[j] - (double)den[j]) / s * dt);
        if (r->sig[i + 1] > 0 && r->eta > 0) add_noise(r, up);
        end_step(r, i);
    }
    return SDC_OK;
}

/* heun: k-diffusion sample_heun (s_churn = 0): trapezoid of d at both ends; Euler into sigma 0. */
static sdc_status sample_heun(run *r) {
    float *x = r->x, *den = r->buf[B_DEN], *x2 = r->buf[B_X2], *den2 = r->buf[B_DEN2];
    for (int i = 0; i < r->steps; i++) {
        sdc_status st;
        if ((st = begin_step(r, i)) || (st = model(r, x, r->sig[i], den))) return st;
        double s = r->sig[i], sn = r->sig[i + 1], dt = sn - s;
        if (sn == 0) {
            for (int64_t j = 0; j < r->n; j++) x[j] = (float)(x[j] + (x[j] - (double)den[j]) / s * dt);
        } else {
            for (int64_t j = 0; j < r->n; j++) x2[j] = (float)(x[j] + (x[j] - (double)den[j]) / s * dt);
            if ((st = model(r, x2, sn, den2))) return st;
            for (int64_t j = 0; j < r->n; j++) {
                double d1 = (x[j] - (double)den[j]) / s, d2 = (x2[j] - (double)den2[j]) / sn;
                x[j] = (float)(x[j] + 0.5 * (d1 + d2) * dt);
            }
        }
        end_step(r, i);
    }
    return SDC_OK;
}

/* dpm2: k-diffusion sample_dpm2: midpoint in log sigma, sigma_mid = sqrt(sigma * sigma_next);
 * Euler into sigma 0. */
static sdc_status sample_dpm2(run *r) {
    float *x = r->x, *den = r->buf[B_DEN], *x2 = r->buf[B_X2], *den2 = r->buf[B_DEN2];
    for (int i = 0; i < r->steps; i++) {
        sdc_status st;
        if ((st = begin_step(r, i)) || (st = model(r, x, r->sig[i], den))) return st;
        double s = r->sig[i], sn = r->sig[i + 1];
        if (sn == 0) {
            for (int64_t j = 0; j < r->n; j++) x[j] = (float)(x[j] + (x[j] - (double)den[j]) / s * (sn - s));
        } else {
            double smid = exp(0.5 * (log(s) + log(sn)));
            double dt1 = smid - s, dt2 = sn - s;
            for (int64_t j = 0; j < r->n; j++) x2[j] = (float)(x[j] + (x[j] - (double)den[j]) / s * dt1);
            if ((st = model(r, x2, smid, den2))) return st;
            for (int64_t j = 0; j < r->n; j++) x[j] = (float)(x[j] + (x2[j] - (double)den2[j]) / smid * dt2);
        }
        end_step(r, i);
    }
    return SDC_OK;
}

/* dpm++2s_a: k-diffusion sample_dpmpp_2s_ancestral: DPM-Solver++(2S) with r = 1/2 to sigma_down
 * (Euler when sigma_down = 0), then noise * sigma_up while sigma_next > 0. */
static sdc_status sample_dpmpp_2s_a(run *r) {
    float *x = r->x, *den = r->buf[B_DEN], *x2 = r->buf[B_X2], *den2 = r->buf[B_DEN2];
    for (int i = 0; i < r->steps; i++) {
        sdc_status st;
        if ((st = begin_step(r, i)) || (st = model(r, x, r->sig[i], den))) return st;
        double s = r->sig[i], down, up;
        ancestral_step(s, r->sig[i + 1], r->eta, &down, &up);
        if (down == 0) {
            for (int64_t j = 0; j < r->n; j++) x[j] = (float)(x[j] + (x[j] - (double)den[j]) / s * (down - s));
        } else {
            double t = -log(s), tn = -log(down), h = tn - t, smid = exp(-(t + 0.5 * h));
            double a1 = smid / s, b1 = -expm1(-0.5 * h);
            for (int64_t j = 0; j < r->n; j++) x2[j] = (float)(a1 * x[j] + b1 * den[j]);
            if ((st = model(r, x2, smid, den2))) return st;
            double a2 = down / s, b2 = -expm1(-h);
            for (int64_t j = 0; j < r->n; j++) x[j] = (float)(a2 * x[j] + b2 * den2[j]);
        }
        if (r->sig[i + 1] > 0 && r->eta > 0) add_noise(r, up);
        end_step(r, i);
    }
    return SDC_OK;
}

/* dpm++2m: k-diffusion sample_dpmpp_2m (DPM-Solver++(2M), Lu et al. 2022): first step and the
 * step into sigma 0 first order; otherwise D_d = (1 + 1/2r) D - (1/2r) D_prev, r = h_last / h.
 * dpm++2mv2: stable-diffusion.cpp sample_dpmpp_2m_v2: the same, with r = h_max / h_min of the two
 * steps and the D_d coefficient taken at h_d = (h + h_last) / 2. */
static sdc_status sample_dpmpp_2m(run *r, bool v2) {
    float *x = r->x, *den = r->buf[B_DEN], *old = r->buf[B_H0];
    for (int i = 0; i < r->steps; i++) {
        sdc_status st;
        if ((st = begin_step(r, i)) || (st = model(r, x, r->sig[i], den))) return st;
        double s = r->sig[i], sn = r->sig[i + 1];
        if (sn == 0) {
            memcpy(x, den, sizeof(float) * (size_t)r->n);
        } else {
            double h = log(s / sn), a = sn / s;
            if (i == 0) {
                double b = -expm1(-h);
                for (int64_t j = 0; j < r->n; j++) x[j] = (float)(a * x[j] + b * den[j]);
            } else {
                double h_last = log((double)r->sig[i - 1] / s), rr, b;
                if (!v2) {
                    rr = h_last / h;
                    b = -expm1(-h);
                } else {
                    double hmin = h_last < h ? h_last : h, hmax = h_last < h ? h : h_last;
                    rr = hmax / hmin;
                    b = -expm1(-0.5 * (hmax + hmin));
                }
                double c1 = 1 + 1 / (2 * rr), c0 = 1 / (2 * rr);
                for (int64_t j = 0; j < r->n; j++) x[j] = (float)(a * x[j] + b * (c1 * den[j] - c0 * old[j]));
            }
        }
        memcpy(old, den, sizeof(float) * (size_t)r->n);
        end_step(r, i);
    }
    return SDC_OK;
}

/* dpm++2m_sde: k-diffusion sample_dpmpp_2m_sde, solver_type "midpoint": x = (sigma_next/sigma)
 * e^{-eta h} x + (1 - e^{-h - eta h}) D [+ (1 - e^{-h - eta h}) / 2r (D - D_prev)]
 * + sigma_next sqrt(1 - e^{-2 eta h}) z. The noise z is a plain draw (as stable-diffusion.cpp),
 * not k-diffusion's Brownian tree. */
static sdc_status sample_dpmpp_2m_sde(run *r) {
    float *x = r->x, *den = r->buf[B_DEN], *old = r->buf[B_H0];
    bool have_old = false;
    double h_last = 0;
    for (int i = 0; i < r->steps; i++) {
        sdc_status st;
        if ((st = begin_step(r, i)) || (st = model(r, x, r->sig[i], den))) return st;
        double s = r->sig[i], sn = r->sig[i + 1];
        if (sn == 0) {
            memcpy(x, den, sizeof(float) * (size_t)r->n);
        } else {
            double h = log(s / sn), eh = r->eta * h;
            double a = sn / s * exp(-eh), b = -expm1(-h - eh);
            double c = have_old ? 0.5 * b * (h / h_last) : 0.0; /* 0.5 b / r */
            for (int64_t j = 0; j < r->n; j++) {
                double v = a * x[j] + b * den[j];
                if (have_old) v += c * ((double)den[j] - old[j]);
                x[j] = (float)v;
            }
            if (r->eta > 0) add_noise(r, sn * sqrt(-expm1(-2 * eh)));
            h_last = h;
        }
        memcpy(old, den, sizeof(float) * (size_t)r->n);
        have_old = true;
        end_step(r, i);
    }
    return SDC_OK;
}

/* The last k derivatives d_{i-1}, d_{i-2}, ... kept in a ring of up to 4 buffers. */
typedef struct hist {
    float *b[4];
    int count, cap;
} hist;

static const float *hist_get(const hist *h, int back) { return h->b[back]; } /* back 0 = newest */

/* Pushes d (copied) as the newest entry, dropping the oldest beyond cap. */
static void hist_push(hist *h, const float *d, int64_t n) {
    float *oldest = h->b[h->cap - 1];
    for (int k = h->cap - 1; k > 0; k--) h->b[k] = h->b[k - 1];
    h->b[0] = oldest;
    memcpy(h->b[0], d, sizeof(float) * (size_t)n);
    if (h->count < h->cap) h->count++;
}

/* d = (x - D) / sigma into out */
static void deriv(const float *x, const float *den, double s, float *out, int64_t n) {
    for (int64_t j = 0; j < n; j++) out[j] = (float)((x[j] - (double)den[j]) / s);
}

/* ipndm: ComfyUI k_diffusion sampling.py sample_ipndm (from zju-pi diff-solvers, Zhang & Chen
 * "iPNDM"): Adams-Bashforth in sigma on d with fixed coefficients, orders 1..4 as history
 * builds; the step into sigma 0 returns D. (stable-diffusion.cpp takes the multistep update into
 * sigma 0 instead.)
 * ipndm_v: ComfyUI sample_ipndm_v: the variable-step Adams-Bashforth coefficients. */
static sdc_status sample_ipndm(run *r, bool variable) {
    float *x = r->x, *den = r->buf[B_DEN], *d = r->buf[B_X2];
    hist H = {{r->buf[B_H0], r->buf[B_H1], r->buf[B_H2], r->buf[B_H3]}, 0, 3};
    const float *sg = r->sig;
    for (int i = 0; i < r->steps; i++) {
        sdc_status st;
        if ((st = begin_step(r, i)) || (st = model(r, x, sg[i], den))) return st;
        double s = sg[i], sn = sg[i + 1], dt = sn - s;
        deriv(x, den, s, d, r->n);
        int order = i + 1 < 4 ? i + 1 : 4;
        double c[4] = {1, 0, 0, 0};
        if (!variable) {
            static const double ab[4][4] = {{1, 0, 0, 0},
                                            {3 / 2.0, -1 / 2.0, 0, 0},
                                            {23 / 12.0, -16 / 12.0, 5 / 12.0, 0},
                                            {55 / 24.0, -59 / 24.0, 37 / 24.0, -9 / 24.0}};
            memcpy(c, ab[order - 1], sizeof c);
        } else if (order >= 2) {
            double h0 = dt, h1 = s - sg[i - 1];
            c[0] = (2 + h0 / h1) / 2;
            c[1] = -(h0 / h1) / 2;
            if (order >= 3) {
                double h2 = (double)sg[i - 1] - sg[i - 2];
                double t1 = (1 - h0 / (3 * (h0 + h1)) * (h0 * (h0 + h1)) / (h1 * (h1 + h2))) / 2;
                if (order == 3) {
                    c[0] += t1;
                    c[1] -= (1 + h1 / h2) * t1;
                    c[2] = t1 * h1 / h2;
                } else {
                    double h3 = (double)sg[i - 2] - sg[i - 3];
                    double t2 = ((1 - h0 / (3 * (h0 + h1))) / 2 + (1 - h0 / (2 * (h0 + h1))) * h0 / (6 * (h0 + h1 + h2))) *
                                (h0 * (h0 + h1) * (h0 + h1 + h2)) / (h1 * (h1 + h2) * (h1 + h2 + h3));
                    double q = h1 * (h1 + h2) / (h2 * (h2 + h3));
                    c[0] += t1 + t2;
                    c[1] -= (1 + h1 / h2) * t1 + (1 + h1 / h2 + q) * t2;
                    c[2] = t1 * h1 / h2 + (h1 / h2 + q * (1 + h2 / h3)) * t2;
                    c[3] = -t2 * q * h1 / h2;
                }
            }
        }
        if (sn == 0) {
            memcpy(x, den, sizeof(float) * (size_t)r->n);
        } else {
            const float *p1 = order > 1 ? hist_get(&H, 0) : NULL, *p2 = order > 2 ? hist_get(&H, 1) : NULL,
                        *p3 = order > 3 ? hist_get(&H, 2) : NULL;
            for (int64_t j = 0; j < r->n; j++) {
                double v = c[0] * d[j];
                if (p1) v += c[1] * p1[j];
                if (p2) v += c[2] * p2[j];
                if (p3) v += c[3] * p3[j];
                x[j] = (float)(x[j] + dt * v);
            }
        }
        hist_push(&H, d, r->n);
        end_step(r, i);
    }
    return SDC_OK;
}

/* Integral over [a, b] of the Lagrange basis polynomial of node j among nodes[0..order-1]
 * (degree <= 3): 3-point Gauss-Legendre is exact. */
static double lagrange_integral(const double *nodes, int order, int j, double a, double b) {
    static const double gx[3] = {-0.7745966692414834, 0.0, 0.7745966692414834};
    static const double gw[3] = {5 / 9.0, 8 / 9.0, 5 / 9.0};
    double sum = 0, half = 0.5 * (b - a), mid = 0.5 * (a + b);
    for (int g = 0; g < 3; g++) {
        double tau = mid + half * gx[g], prod = 1;
        for (int k = 0; k < order; k++)
            if (k != j) prod *= (tau - nodes[k]) / (nodes[j] - nodes[k]);
        sum += gw[g] * prod;
    }
    return sum * half;
}

/* lms: k-diffusion sample_lms (order 4): x += sum_j c_j d_{i-j}, c_j = the integral from sigma_i to
 * sigma_{i+1} of the Lagrange basis of sigma_{i-j} over the last min(i+1, 4) sigmas (k-diffusion
 * integrates with scipy quad; the polynomial is integrated exactly here). stable-diffusion.cpp's
 * lms shifts its history by default (lms_shift = 1); this is the original. */
static sdc_status sample_lms(run *r) {
    float *x = r->x, *den = r->buf[B_DEN], *d = r->buf[B_X2];
    hist H = {{r->buf[B_H0], r->buf[B_H1], r->buf[B_H2], r->buf[B_H3]}, 0, 4};
    for (int i = 0; i < r->steps; i++) {
        sdc_status st;
        if ((st = begin_step(r, i)) || (st = model(r, x, r->sig[i], den))) return st;
        deriv(x, den, r->sig[i], d, r->n);
        hist_push(&H, d, r->n);
        int order = i + 1 < 4 ? i + 1 : 4;
        double nodes[4], c[4];
        for (int k = 0; k < order; k++) nodes[k] = r->sig[i - k];
        for (int k = 0; k < order; k++) c[k] = lagrange_integral(nodes, order, k, r->sig[i], r->sig[i + 1]);
        for (int64_t j = 0; j < r->n; j++) {
            double v = x[j];
            for (int k = 0; k < order; k++) v += c[k] * hist_get(&H, k)[j];
            x[j] = (float)v;
        }
        end_step(r, i);
    }
    return SDC_OK;
}

/* lcm: ComfyUI k_diffusion sample_lcm (Luo et al. 2023): x = D, then + sigma_next * z while
 * sigma_next > 0. */
static sdc_status sample_lcm(run *r) {
    float *x = r->x, *den = r->buf[B_DEN];
    for (int i = 0; i < r->steps; i++) {
        sdc_status st;
        if ((st = begin_step(r, i)) || (st = model(r, x, r->sig[i], den))) return st;
        memcpy(x, den, sizeof(float) * (size_t)r->n);
        if (r->sig[i + 1] > 0) add_noise(r, r->sig[i + 1]);
        end_step(r, i);
    }
    return SDC_OK;
}

/* plms: CompVis LDM ldm/models/diffusion/plms.py (PLMSSampler.p_sample_plms; diffusers
 * PNDMScheduler with skip_prk_steps) in sigma space, where a DDIM step with eps e is
 * x + (sigma_next - sigma) e and e = d: the first step is the pseudo improved Euler (e' = mean
 * of e at x and at the Euler prediction at sigma_next; plain Euler when sigma_next = 0), then
 * Adams-Bashforth on e with the fixed 2/3/4-step coefficients. */
static sdc_status sample_plms(run *r) {
    float *x = r->x, *den = r->buf[B_DEN], *d = r->buf[B_X2], *x2 = r->buf[B_DEN2], *den2 = r->buf[B_NOISE];
    hist H = {{r->buf[B_H0], r->buf[B_H1], r->buf[B_H2], r->buf[B_H3]}, 0, 3};
    for (int i = 0; i < r->steps; i++) {
        sdc_status st;
        if ((st = begin_step(r, i)) || (st = model(r, x, r->sig[i], den))) return st;
        double s = r->sig[i], sn = r->sig[i + 1], dt = sn - s;
        deriv(x, den, s, d, r->n);
        if (H.count == 0) {
            if (sn > 0) {
                for (int64_t j = 0; j < r->n; j++) x2[j] = (float)(x[j] + dt * d[j]);
                if ((st = model(r, x2, sn, den2))) return st;
                for (int64_t j = 0; j < r->n; j++) {
                    double e2 = (x2[j] - (double)den2[j]) / sn;
                    x[j] = (float)(x[j] + dt * 0.5 * (d[j] + e2));
                }
            } else {
                for (int64_t j = 0; j < r->n; j++) x[j] = (float)(x[j] + dt * d[j]);
            }
        } else {
            const float *p1 = hist_get(&H, 0), *p2 = H.count > 1 ? hist_get(&H, 1) : NULL,
                        *p3 = H.count > 2 ? hist_get(&H, 2) : NULL;
            for (int64_t j = 0; j < r->n; j++) {
                double e;
                if (!p2)
                    e = (3 * (double)d[j] - p1[j]) / 2;
                else if (!p3)
                    e = (23 * (double)d[j] - 16 * (double)p1[j] + 5 * (double)p2[j]) / 12;
                else
                    e = (55 * (double)d[j] - 59 * (double)p1[j] + 37 * (double)p2[j] - 9 * (double)p3[j]) / 24;
                x[j] = (float)(x[j] + dt * e);
            }
        }
        hist_push(&H, d, r->n);
        end_step(r, i);
    }
    return SDC_OK;
}

/* The training timestep whose sigma is nearest to s (stable-diffusion.cpp's TCD lookup). */
static int nearest_timestep(const sdc_schedule *sc, double s) {
    int lo = 0, hi = SDC_TIMESTEPS; /* first index with sigmas[idx] >= s */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (sc->sigmas[mid] < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) return 0;
    if (lo == SDC_TIMESTEPS) return SDC_TIMESTEPS - 1;
    return fabs(sc->sigmas[lo] - s) < fabs(sc->sigmas[lo - 1] - s) ? lo : lo - 1;
}

/* tcd: diffusers TCDScheduler.step (Zheng et al. 2024, gamma = eta) in sigma space as
 * stable-diffusion.cpp's sample_tcd: s = floor((1 - gamma) t_prev) with t_prev the timestep
 * nearest sigma_next; x = sqrt(abar_s / abar_prev) D + sqrt((1 - abar_s) / abar_prev) d, then,
 * when gamma > 0 and sigma_next > 0, x = sqrt(abar_prev / abar_s) x + sqrt(1/abar_prev -
 * 1/abar_s) z; abar_prev = 1 / (sigma_next^2 + 1). */
static sdc_status sample_tcd(run *r, const sdc_schedule *sc) {
    float *x = r->x, *den = r->buf[B_DEN];
    for (int i = 0; i < r->steps; i++) {
        sdc_status st;
        if ((st = begin_step(r, i)) || (st = model(r, x, r->sig[i], den))) return st;
        double s = r->sig[i], sn = r->sig[i + 1];
        int t_prev = nearest_timestep(sc, sn);
        int t_s = (int)floor((1 - r->eta) * t_prev);
        if (t_s < 0) t_s = 0;
        double a_prev = 1 / (sn * sn + 1), a_s = sc->alphas_cumprod[t_s];
        double c_den = sqrt(a_s / a_prev), c_d = sqrt((1 - a_s) / a_prev);
        for (int64_t j = 0; j < r->n; j++) {
            double dj = (x[j] - (double)den[j]) / s;
            x[j] = (float)(c_den * den[j] + c_d * dj);
        }
        if (r->eta > 0 && sn > 0) {
            float *z = r->buf[B_NOISE];
            draw(r, z);
            double k = sqrt(a_prev / a_s), v = 1 / a_prev - 1 / a_s;
            double kz = sqrt(v > 0 ? v : 0);
            for (int64_t j = 0; j < r->n; j++) x[j] = (float)(k * x[j] + kz * z[j]);
        }
        end_step(r, i);
    }
    return SDC_OK;
}

/* ------------------------------------------------------------------ public */

sdc_sampler_params sdc_sampler_default_params(void) {
    sdc_sampler_params p;
    memset(&p, 0, sizeof p);
    p.kind = SDC_SAMPLER_EULER_A;
    p.eta = NAN;
    return p;
}

float sdc_sampler_default_eta(sdc_sampler_kind kind) {
    switch (kind) {
    case SDC_SAMPLER_EULER_A:
    case SDC_SAMPLER_DPMPP_2S_A:
    case SDC_SAMPLER_DPMPP_2M_SDE:
        return 1.0f;
    default:
        return 0.0f;
    }
}

static double eta_of(const sdc_sampler_params *p) {
    return isnan(p->eta) ? sdc_sampler_default_eta(p->kind) : p->eta;
}

bool sdc_sampler_uses_noise(const sdc_sampler_params *p) {
    switch (p->kind) {
    case SDC_SAMPLER_LCM:
        return true;
    case SDC_SAMPLER_EULER_A:
    case SDC_SAMPLER_DPMPP_2S_A:
    case SDC_SAMPLER_DPMPP_2M_SDE:
    case SDC_SAMPLER_DDIM:
    case SDC_SAMPLER_TCD:
        return eta_of(p) > 0;
    default:
        return false;
    }
}

int sdc_sampler_model_calls(const sdc_sampler_params *p, const float *sigmas, int steps) {
    int calls = steps;
    double eta = eta_of(p);
    for (int i = 0; i < steps; i++) {
        double down, up;
        switch (p->kind) {
        case SDC_SAMPLER_HEUN:
        case SDC_SAMPLER_DPM2:
            calls += sigmas[i + 1] != 0;
            break;
        case SDC_SAMPLER_DPMPP_2S_A:
            ancestral_step(sigmas[i], sigmas[i + 1], eta, &down, &up);
            calls += down != 0;
            break;
        case SDC_SAMPLER_PLMS:
            calls += i == 0 && sigmas[1] > 0;
            break;
        default:
            break;
        }
    }
    return calls;
}

sdc_status sdc_sample(const sdc_sampler_params *p, float *x, int64_t n, const float *sigmas, int steps, char *err,
                      size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!p || !p->denoise) return sdc_fail(err, errlen, SDC_E_INVALID, "sampler: no denoiser given");
    if ((unsigned)p->kind >= SDC_SAMPLER_KIND_COUNT)
        return sdc_fail(err, errlen, SDC_E_INVALID, "sampler: expected one of %s, got %d", sdc_sampler_kind_list(),
                        (int)p->kind);
    if (!x || n < 1 || !sigmas || steps < 1)
        return sdc_fail(err, errlen, SDC_E_INVALID, "sampler: expected a latent, n >= 1 and steps >= 1, got n=%lld steps=%d",
                        (long long)n, steps);
    for (int i = 0; i <= steps; i++) {
        if (!(sigmas[i] >= 0) || !isfinite(sigmas[i]) || (i < steps && !(sigmas[i] > 0)) ||
            (i > 0 && !(sigmas[i] < sigmas[i - 1])))
            return sdc_fail(err, errlen, SDC_E_INVALID,
                            "sigmas[%d]: expected a finite, decreasing schedule with sigma > 0 before the last, got %g",
                            i, (double)sigmas[i]);
    }
    double eta = eta_of(p);
    if (!(eta >= 0) || !isfinite(eta))
        return sdc_fail(err, errlen, SDC_E_INVALID, "eta: expected a finite value >= 0, got %g", eta);
    if (sdc_sampler_uses_noise(p) && !p->rng && !p->noise)
        return sdc_fail(err, errlen, SDC_E_INVALID, "sampler %s: needs a noise source (rng or noise callback)",
                        sdc_sampler_kind_name(p->kind));

    run r = {.p = p, .x = x, .n = n, .sig = sigmas, .steps = steps, .eta = eta, .err = err, .errlen = errlen};
    size_t nb = sizeof r.buf / sizeof r.buf[0];
    if ((uint64_t)n > SIZE_MAX / sizeof(float) / nb)
        return sdc_fail(err, errlen, SDC_E_NOMEM, "sampler: latent of %lld floats too large", (long long)n);
    float *mem = malloc(sizeof(float) * (size_t)n * nb);
    if (!mem) return sdc_fail(err, errlen, SDC_E_NOMEM, "sampler: out of memory for %zu scratch vectors", nb);
    for (size_t k = 0; k < nb; k++) r.buf[k] = mem + (size_t)n * k;
    /* scratch starts zeroed so a history slot never holds garbage */
    memset(mem, 0, sizeof(float) * (size_t)n * nb);

    sdc_status st;
    sdc_schedule *own = NULL;
    switch (p->kind) {
    case SDC_SAMPLER_EULER: st = sample_euler(&r); break;
    case SDC_SAMPLER_EULER_A:
    case SDC_SAMPLER_DDIM: st = sample_euler_ancestral(&r); break;
    case SDC_SAMPLER_HEUN: st = sample_heun(&r); break;
    case SDC_SAMPLER_DPM2: st = sample_dpm2(&r); break;
    case SDC_SAMPLER_DPMPP_2S_A: st = sample_dpmpp_2s_a(&r); break;
    case SDC_SAMPLER_DPMPP_2M: st = sample_dpmpp_2m(&r, false); break;
    case SDC_SAMPLER_DPMPP_2MV2: st = sample_dpmpp_2m(&r, true); break;
    case SDC_SAMPLER_DPMPP_2M_SDE: st = sample_dpmpp_2m_sde(&r); break;
    case SDC_SAMPLER_IPNDM: st = sample_ipndm(&r, false); break;
    case SDC_SAMPLER_IPNDM_V: st = sample_ipndm(&r, true); break;
    case SDC_SAMPLER_LMS: st = sample_lms(&r); break;
    case SDC_SAMPLER_LCM: st = sample_lcm(&r); break;
    case SDC_SAMPLER_PLMS: st = sample_plms(&r); break;
    case SDC_SAMPLER_TCD: {
        const sdc_schedule *sc = p->schedule;
        if (!sc) {
            own = malloc(sizeof *own);
            if (!own) {
                st = sdc_fail(err, errlen, SDC_E_NOMEM, "sampler: out of memory for the schedule");
                break;
            }
            sdc_schedule_init(own);
            sc = own;
        }
        st = sample_tcd(&r, sc);
        break;
    }
    default: st = sdc_fail(err, errlen, SDC_E_INTERNAL, "sampler %d not handled", (int)p->kind); break;
    }
    free(own);
    free(mem);
    return st;
}

/* ------------------------------------------------------------------ names */

static const struct {
    const char *name, *display;
} sampler_names[SDC_SAMPLER_KIND_COUNT] = {
    [SDC_SAMPLER_EULER] = {"euler", "Euler"},
    [SDC_SAMPLER_EULER_A] = {"euler_a", "Euler a"},
    [SDC_SAMPLER_HEUN] = {"heun", "Heun"},
    [SDC_SAMPLER_DPM2] = {"dpm2", "DPM2"},
    [SDC_SAMPLER_DPMPP_2S_A] = {"dpm++2s_a", "DPM++ 2S a"},
    [SDC_SAMPLER_DPMPP_2M] = {"dpm++2m", "DPM++ 2M"},
    [SDC_SAMPLER_DPMPP_2MV2] = {"dpm++2mv2", "DPM++ 2M v2"},
    [SDC_SAMPLER_DPMPP_2M_SDE] = {"dpm++2m_sde", "DPM++ 2M SDE"},
    [SDC_SAMPLER_IPNDM] = {"ipndm", "iPNDM"},
    [SDC_SAMPLER_IPNDM_V] = {"ipndm_v", "iPNDM v"},
    [SDC_SAMPLER_LMS] = {"lms", "LMS"},
    [SDC_SAMPLER_LCM] = {"lcm", "LCM"},
    [SDC_SAMPLER_DDIM] = {"ddim", "DDIM"},
    [SDC_SAMPLER_PLMS] = {"plms", "PLMS"},
    [SDC_SAMPLER_TCD] = {"tcd", "TCD"},
};

const char *sdc_sampler_kind_name(sdc_sampler_kind kind) {
    return (unsigned)kind < SDC_SAMPLER_KIND_COUNT ? sampler_names[kind].name : "?";
}

const char *sdc_sampler_display_name(sdc_sampler_kind kind) {
    return (unsigned)kind < SDC_SAMPLER_KIND_COUNT ? sampler_names[kind].display : "?";
}

const char *sdc_sampler_kind_list(void) {
    return "euler, euler_a, heun, dpm2, dpm++2s_a, dpm++2m, dpm++2mv2, dpm++2m_sde, ipndm, ipndm_v, lms, lcm, "
           "ddim, plms, tcd";
}

static bool name_eq(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
    return *a == *b;
}

int sdc_sampler_kind_parse(const char *name) {
    if (!name) return -1;
    for (int k = 0; k < SDC_SAMPLER_KIND_COUNT; k++)
        if (strcmp(name, sampler_names[k].name) == 0) return k;
    for (int k = 0; k < SDC_SAMPLER_KIND_COUNT; k++)
        if (name_eq(name, sampler_names[k].display)) return k;
    static const struct { const char *alias; sdc_sampler_kind kind; } aliases[] = {
        {"ddim_trailing", SDC_SAMPLER_DDIM},      {"euler_ancestral", SDC_SAMPLER_EULER_A},
        {"k_euler", SDC_SAMPLER_EULER},           {"k_euler_a", SDC_SAMPLER_EULER_A},
        {"k_heun", SDC_SAMPLER_HEUN},             {"k_dpm_2", SDC_SAMPLER_DPM2},
        {"dpm_2", SDC_SAMPLER_DPM2},              {"k_lms", SDC_SAMPLER_LMS},
        {"k_dpmpp_2s_a", SDC_SAMPLER_DPMPP_2S_A}, {"dpmpp_2s_ancestral", SDC_SAMPLER_DPMPP_2S_A},
        {"k_dpmpp_2m", SDC_SAMPLER_DPMPP_2M},     {"dpmpp_2m", SDC_SAMPLER_DPMPP_2M},
        {"k_dpmpp_2m_sde", SDC_SAMPLER_DPMPP_2M_SDE}, {"dpmpp_2m_sde", SDC_SAMPLER_DPMPP_2M_SDE},
        {"ipndm_v", SDC_SAMPLER_IPNDM_V},         {"iPNDM_v", SDC_SAMPLER_IPNDM_V},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (name_eq(name, aliases[i].alias)) return aliases[i].kind;
    return -1;
}
