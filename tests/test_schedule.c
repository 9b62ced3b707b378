/* test_schedule.c - the SD 1.x schedule and the sigma schedules.
 *
 * Goldens: ../shared/refs/pipeline/euler_discrete_6_128/{sigmas,timesteps}.npy (k-diffusion
 * CompVisDenoiser.get_sigmas(6) and sigma_to_t). The other schedules are checked against their
 * formulas evaluated here in double, written independently from the paper / reference code,
 * and against published values: SD 1.5 sigma_min 0.0292 and sigma_max 14.6146 (k-diffusion /
 * A1111 "sigma min/max"), the Align Your Steps SD 1.5 table (A1111 sd_schedulers.py's rounded copy:
 * 14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "schedule.h"
#include "testutil.h"

static sdc_schedule S;

/* An independent evaluation: abar via the sum of logs, rounded to float32 as LDM stores it. */
static double ref_sigma_int(int t) {
    double lsum = 0;
    for (int i = 0; i <= t; i++) {
        double sb = sqrt(0.00085) + i * (sqrt(0.012) - sqrt(0.00085)) / 999.0;
        lsum += log1p(-sb * sb);
    }
    double abar = (double)(float)exp(lsum); /* the model stores abar as float32 */
    return sqrt((1.0 - abar) / abar);
}

static void test_table(void) {
    double maxrel = 0;
    for (int t = 0; t < SDC_TIMESTEPS; t += 37) {
        double r = ref_sigma_int(t);
        double e = fabs(S.sigmas[t] - r) / r;
        if (e > maxrel) maxrel = e;
    }
    printf("sigma(t) vs independent log-sum evaluation: max rel %.3g\n", maxrel);
    CHECK(maxrel < 1e-12);
    CHECK(fabs(sdc_schedule_sigma_min(&S) - 0.0291675) < 1e-7);
    CHECK(fabs(sdc_schedule_sigma_max(&S) - 14.6146) < 1e-4);
    for (int t = 1; t < SDC_TIMESTEPS; t++) CHECK(S.sigmas[t] > S.sigmas[t - 1]);

    /* t <-> sigma: exact at integers, inverse of each other at fractions, clamped outside. */
    double worst = 0;
    for (double t = 0; t <= 999; t += 0.37) {
        double back = sdc_schedule_sigma_to_t(&S, sdc_schedule_t_to_sigma(&S, t));
        if (fabs(back - t) > worst) worst = fabs(back - t);
    }
    printf("sigma_to_t(t_to_sigma(t)) - t: max %.3g\n", worst);
    CHECK(worst < 1e-9);
    CHECK(sdc_schedule_t_to_sigma(&S, 500) == S.sigmas[500]);
    CHECK(fabs(sdc_schedule_sigma_to_t(&S, S.sigmas[123]) - 123) < 1e-9);
    CHECK(sdc_schedule_sigma_to_t(&S, 0) == 0);
    CHECK(sdc_schedule_sigma_to_t(&S, 1e-9) == 0);
    CHECK(sdc_schedule_sigma_to_t(&S, 1e9) == 999);
    CHECK(sdc_schedule_t_to_sigma(&S, -5) == S.sigmas[0]);
    CHECK(sdc_schedule_t_to_sigma(&S, 2000) == S.sigmas[999]);
    /* log-linear in between */
    double mid = sdc_schedule_t_to_sigma(&S, 10.25);
    CHECK(fabs(log(mid) - (0.75 * log(S.sigmas[10]) + 0.25 * log(S.sigmas[11]))) < 1e-12);
}

static void test_table_from_file(void) {
    float *ac = malloc(sizeof(float) * SDC_TIMESTEPS);
    for (int t = 0; t < SDC_TIMESTEPS; t++) ac[t] = (float)S.alphas_cumprod[t];
    sdc_schedule f;
    char err[256];
    CHECK(sdc_schedule_init_table(&f, ac, SDC_TIMESTEPS, err, sizeof err) == SDC_OK);
    double maxrel = 0;
    for (int t = 0; t < SDC_TIMESTEPS; t++) {
        double e = fabs(f.sigmas[t] - S.sigmas[t]) / S.sigmas[t];
        if (e > maxrel) maxrel = e;
    }
    printf("sigmas from a float32 alphas_cumprod table: max rel %.3g\n", maxrel);
    CHECK(maxrel == 0);
    CHECK(sdc_schedule_init_table(&f, ac, 999, err, sizeof err) == SDC_E_SHAPE);
    printf("  short table: %s\n", err);
    ac[7] = 1.5f;
    CHECK(sdc_schedule_init_table(&f, ac, SDC_TIMESTEPS, err, sizeof err) == SDC_E_FORMAT);
    printf("  bad value: %s\n", err);
    ac[7] = (float)S.alphas_cumprod[7];
    ac[500] = ac[400];
    CHECK(sdc_schedule_init_table(&f, ac, SDC_TIMESTEPS, err, sizeof err) == SDC_E_FORMAT);
    printf("  increasing: %s\n", err);
    free(ac);
}

static void test_discrete_golden(void) {
    float sig[7];
    char err[256];
    CHECK(sdc_schedule_sigmas(&S, SDC_SCHEDULE_DISCRETE, 6, sig, err, sizeof err) == SDC_OK);
    if (!tu_shared_dir()) {
        printf("shared refs missing: golden sigmas skipped\n");
        return;
    }
    tu_npy gs, gt;
    if (!tu_npy_load(tu_shared_path("refs/pipeline/euler_discrete_6_128/sigmas.npy"), &gs, err, sizeof err) ||
        !tu_npy_load(tu_shared_path("refs/pipeline/euler_discrete_6_128/timesteps.npy"), &gt, err, sizeof err)) {
        printf("golden sigmas not loadable (%s): skipped\n", err);
        return;
    }
    CHECK(gs.n == 7 && gt.n == 6);
    CHECK_NEAR(sig, gs.f32, 7, 0, 1e-6, "discrete 6 steps vs golden sigmas.npy");
    float ts[6];
    for (int i = 0; i < 6; i++) ts[i] = (float)sdc_schedule_sigma_to_t(&S, sig[i]);
    CHECK_NEAR(ts, gt.f32, 6, 1e-6, 1e-6, "sigma_to_t vs golden timesteps.npy");
    /* the same from the golden's own sigmas */
    for (int i = 0; i < 6; i++) ts[i] = (float)sdc_schedule_sigma_to_t(&S, gs.f32[i]);
    CHECK_NEAR(ts, gt.f32, 6, 1e-6, 1e-6, "sigma_to_t(golden sigmas) vs timesteps.npy");
    tu_npy_free(&gs);
    tu_npy_free(&gt);
}

static void check_schedule(sdc_schedule_kind kind, int n, const double *want, const char *label) {
    float *got = malloc(sizeof(float) * (n + 1));
    float *wf = malloc(sizeof(float) * (n + 1));
    char err[256];
    CHECK(sdc_schedule_sigmas(&S, kind, n, got, err, sizeof err) == SDC_OK);
    for (int i = 0; i <= n; i++) wf[i] = (float)want[i];
    CHECK_NEAR(got, wf, n + 1, 1e-7, 1e-6, label);
    CHECK(got[n] == 0.0f);
    for (int i = 1; i <= n; i++) CHECK(got[i] < got[i - 1]);
    free(got);
    free(wf);
}

static void test_formulas(void) {
    const double smin = ref_sigma_int(0), smax = ref_sigma_int(999);
    const int ns[] = {1, 2, 3, 6, 10, 20, 37};
    char label[96];
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        int n = ns[k];
        double *w = calloc(n + 1, sizeof(double));
        /* karras: (smax^(1/7) + i/(n-1) (smin^(1/7) - smax^(1/7)))^7 */
        for (int i = 0; i < n; i++) {
            double r = n > 1 ? (double)i / (n - 1) : 0.0;
            w[i] = pow(pow(smax, 1 / 7.0) + r * (pow(smin, 1 / 7.0) - pow(smax, 1 / 7.0)), 7.0);
        }
        snprintf(label, sizeof label, "karras n=%d", n);
        check_schedule(SDC_SCHEDULE_KARRAS, n, w, label);
        /* exponential: smax (smin/smax)^(i/(n-1)) */
        for (int i = 0; i < n; i++) w[i] = smax * pow(smin / smax, n > 1 ? (double)i / (n - 1) : 0.0);
        snprintf(label, sizeof label, "exponential n=%d", n);
        check_schedule(SDC_SCHEDULE_EXPONENTIAL, n, w, label);
        /* discrete: sigma at t = 999 (1 - i/(n-1)), log-interpolated between integer steps */
        for (int i = 0; i < n; i++) {
            double t = n > 1 ? 999.0 * (1.0 - (double)i / (n - 1)) : 999.0;
            int lo = (int)floor(t);
            double f = t - lo;
            w[i] = f > 0 ? exp((1 - f) * log(ref_sigma_int(lo)) + f * log(ref_sigma_int(lo + 1))) : ref_sigma_int(lo);
        }
        snprintf(label, sizeof label, "discrete n=%d", n);
        check_schedule(SDC_SCHEDULE_DISCRETE, n, w, label);
        /* sgm_uniform: t = 999 (1 - i/n) */
        for (int i = 0; i < n; i++) {
            double t = 999.0 * (1.0 - (double)i / n);
            int lo = (int)floor(t);
            double f = t - lo;
            w[i] = f > 0 ? exp((1 - f) * log(ref_sigma_int(lo)) + f * log(ref_sigma_int(lo + 1))) : ref_sigma_int(lo);
        }
        snprintf(label, sizeof label, "sgm_uniform n=%d", n);
        check_schedule(SDC_SCHEDULE_SGM_UNIFORM, n, w, label);
        /* simple: training sigmas at 999 - floor(i * 1000 / n) */
        for (int i = 0; i < n; i++) w[i] = ref_sigma_int(999 - (int)floor(i * 1000.0 / n));
        snprintf(label, sizeof label, "simple n=%d", n);
        check_schedule(SDC_SCHEDULE_SIMPLE, n, w, label);
        free(w);
    }

    /* AYS: the 10-step table itself; other counts interpolate log sigma linearly. */
    static const double a1111_rounded[11] = {14.615, 6.475, 3.861, 2.697, 1.886, 1.396,
                                             0.963,  0.652, 0.399, 0.152, 0.029};
    float got[41];
    char err[256];
    CHECK(sdc_schedule_sigmas(&S, SDC_SCHEDULE_AYS, 10, got, err, sizeof err) == SDC_OK);
    int close = 1;
    for (int i = 0; i < 10; i++) close &= fabs(got[i] - a1111_rounded[i]) < 3e-3;
    CHECK_MSG(close, "AYS 10 steps differs from the published levels");
    CHECK(got[10] == 0.0f);
    /* 20 steps: every other point is a table point, the ones between are geometric means */
    CHECK(sdc_schedule_sigmas(&S, SDC_SCHEDULE_AYS, 20, got, err, sizeof err) == SDC_OK);
    float t10[11];
    sdc_schedule_sigmas(&S, SDC_SCHEDULE_AYS, 10, t10, err, sizeof err);
    double w20[21];
    for (int i = 0; i < 10; i++) {
        w20[2 * i] = t10[i];
        double next = i < 9 ? t10[i + 1] : 0.0291671582;
        w20[2 * i + 1] = sqrt((double)t10[i] * next);
    }
    w20[20] = 0;
    check_schedule(SDC_SCHEDULE_AYS, 20, w20, "ays n=20 (geometric midpoints)");
    /* 5 steps: 6 points at x = 0, 0.2, ..., 1 of the 11 levels: levels 0, 2, 4, 6, 8 (and 0) */
    double w5[6] = {t10[0], t10[2], t10[4], t10[6], t10[8], 0};
    check_schedule(SDC_SCHEDULE_AYS, 5, w5, "ays n=5 (every other level)");
    /* 7 steps: numpy.interp by hand at x = k/7 */
    double w7[8];
    static const double lv[11] = {14.6146412293, 6.4745760956, 3.8636745985, 2.6946151520,
                                  1.8841921177,  1.3943805092, 0.9642583904, 0.6523686016,
                                  0.3977456272,  0.1515232662, 0.0291671582};
    for (int i = 0; i < 7; i++) {
        double pos = 10.0 * i / 7.0; /* distance from the top, in table intervals */
        int j = (int)floor(pos);
        double f = pos - j;
        w7[i] = exp((1 - f) * log(lv[j]) + f * log(lv[j + 1]));
    }
    w7[7] = 0;
    check_schedule(SDC_SCHEDULE_AYS, 7, w7, "ays n=7");
    check_schedule(SDC_SCHEDULE_AYS, 1, (double[]){lv[0], 0}, "ays n=1");

    CHECK(sdc_schedule_sigmas(&S, SDC_SCHEDULE_KARRAS, 0, got, err, sizeof err) == SDC_E_INVALID);
    printf("  steps 0: %s\n", err);
    CHECK(sdc_schedule_sigmas(&S, (sdc_schedule_kind)99, 4, got, err, sizeof err) == SDC_E_INVALID);
    printf("  bad kind: %s\n", err);
}

static void test_names(void) {
    for (int k = 0; k < SDC_SCHEDULE_KIND_COUNT; k++)
        CHECK(sdc_schedule_kind_parse(sdc_schedule_kind_name((sdc_schedule_kind)k)) == k);
    CHECK(sdc_schedule_kind_parse("Karras") == SDC_SCHEDULE_KARRAS);
    CHECK(sdc_schedule_kind_parse("Align Your Steps") == SDC_SCHEDULE_AYS);
    CHECK(sdc_schedule_kind_parse("SGM Uniform") == SDC_SCHEDULE_SGM_UNIFORM);
    CHECK(sdc_schedule_kind_parse("Automatic") == SDC_SCHEDULE_DISCRETE);
    CHECK(sdc_schedule_kind_parse("beta") == -1);
    CHECK(sdc_schedule_kind_parse(NULL) == -1);
    CHECK(strstr(sdc_schedule_kind_list(), "sgm_uniform") != NULL);
}

int main(void) {
    sdc_schedule_init(&S);
    test_table();
    test_table_from_file();
    test_discrete_golden();
    test_formulas();
    test_names();
    return check_done();
}
