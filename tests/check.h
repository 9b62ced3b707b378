/* check.h - a tiny test harness that survives NDEBUG.
 *
 *   CHECK(cond)                         fails the test (and goes on) when cond is false
 *   CHECK_NEAR(got, want, n, atol, rtol, label)
 *                                       element-wise |got-want| <= atol + rtol*|want| over n
 *                                       floats; always prints max abs/rel error and worst index
 *   CHECK_REL_L2(got, want, n, tol, label)  ||got-want|| / ||want|| <= tol, printed
 *   SKIP(fmt, ...)                      prints the reason and exits 77 (CTest SKIP_RETURN_CODE)
 *   return check_done();                from main: prints a summary, exit 0 or 1
 */
#ifndef SDC_CHECK_H
#define SDC_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int check_failures_ = 0;
static int check_count_ = 0;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        check_count_++;                                                                \
        if (!(cond)) {                                                                 \
            check_failures_++;                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
        }                                                                              \
    } while (0)

#define CHECK_MSG(cond, ...)                                                           \
    do {                                                                               \
        check_count_++;                                                                \
        if (!(cond)) {                                                                 \
            check_failures_++;                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
        }                                                                              \
    } while (0)

#define SKIP(...)                                                                      \
    do {                                                                               \
        printf("SKIP: ");                                                              \
        printf(__VA_ARGS__);                                                           \
        printf("\n");                                                                  \
        exit(77);                                                                      \
    } while (0)

static inline int check_near_impl(const float *got, const float *want, int64_t n, double atol, double rtol,
                                  const char *label, const char *file, int line) {
    double max_abs = 0, max_rel = 0;
    int64_t worst = -1, bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double g = got[i], w = want[i], d = fabs(g - w);
        double rel = d / (fabs(w) > 1e-30 ? fabs(w) : 1e-30);
        if (!(d <= atol + rtol * fabs(w))) {  /* also catches NaN */
            if (!bad) worst = i;
            bad++;
        }
        if (d > max_abs || isnan(d)) {
            max_abs = isnan(d) ? INFINITY : d;
            if (!bad) worst = i;
        }
        if (rel > max_rel) max_rel = rel;
    }
    check_count_++;
    printf("%-40s n=%lld max_abs=%.3g max_rel=%.3g worst[%lld] (atol %.3g rtol %.3g)%s\n", label, (long long)n,
           max_abs, max_rel, (long long)worst, atol, rtol, bad ? " FAIL" : "");
    if (bad) {
        check_failures_++;
        fprintf(stderr, "%s:%d: CHECK_NEAR %s failed: %lld of %lld outside tolerance; first at [%lld]: got %.9g want %.9g\n",
                file, line, label, (long long)bad, (long long)n, (long long)worst, worst >= 0 ? got[worst] : 0.0,
                worst >= 0 ? want[worst] : 0.0);
        return 0;
    }
    return 1;
}
#define CHECK_NEAR(got, want, n, atol, rtol, label) \
    check_near_impl((got), (want), (n), (atol), (rtol), (label), __FILE__, __LINE__)

static inline double check_rel_l2(const float *got, const float *want, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        num += d * d;
        den += (double)want[i] * want[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}
#define CHECK_REL_L2(got, want, n, tol, label)                                                         \
    do {                                                                                               \
        double r_ = check_rel_l2((got), (want), (n));                                                  \
        check_count_++;                                                                                \
        printf("%-40s n=%lld rel_l2=%.3g (tol %.3g)%s\n", (label), (long long)(n), r_, (double)(tol),  \
               (r_ <= (tol)) ? "" : " FAIL");                                                          \
        if (!(r_ <= (tol))) {                                                                          \
            check_failures_++;                                                                         \
            fprintf(stderr, "%s:%d: CHECK_REL_L2 %s failed: %.6g > %.6g\n", __FILE__, __LINE__, (label), \
                    r_, (double)(tol));                                                                \
        }                                                                                              \
    } while (0)

static inline int check_done(void) {
    printf("%d checks, %d failed\n", check_count_, check_failures_);
    return check_failures_ ? 1 : 0;
}

#endif
