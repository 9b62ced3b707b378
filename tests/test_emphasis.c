/* test_emphasis.c - A1111 emphasis on CLIP hidden states, against the formula evaluated in
 * double: z' = z * w[t] * (mean(z) / mean(z * w)). Checks the chunk mean is preserved, that
 * unweighted tokens are only rescaled, and that all-one weights leave z bit-identical. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pipeline.h"
#include "testutil.h"

#define T 77
#define D 768

int main(void) {
    tu_rng r = {11};
    float *z = malloc(sizeof(float) * T * D), *z0 = malloc(sizeof(float) * T * D), *want = malloc(sizeof(float) * T * D);
    float w[T];
    for (int i = 0; i < T * D; i++) z0[i] = (float)(0.3 + tu_rng_normal(&r)); /* nonzero mean, as CLIP states have */
    for (int t = 0; t < T; t++) w[t] = 1.0f;
    w[3] = 1.1f, w[4] = 1.21f, w[5] = 1.0f / 1.1f, w[9] = 1.5f; /* (a) ((b)) [c] (d:1.5) */

    double s0 = 0, s1 = 0;
    for (int i = 0; i < T * D; i++) s0 += z0[i];
    for (int i = 0; i < T * D; i++) s1 += (double)z0[i] * w[i / D];
    double ratio = s0 / s1;
    for (int i = 0; i < T * D; i++) want[i] = (float)((double)z0[i] * w[i / D] * ratio);

    memcpy(z, z0, sizeof(float) * T * D);
    sdc_pipeline_apply_emphasis(z, w);
    CHECK_NEAR(z, want, T * D, 0, 4e-7, "emphasis vs double formula"); /* two float roundings */
    double m = 0;
    for (int i = 0; i < T * D; i++) m += z[i];
    CHECK_MSG(fabs(m - s0) / fabs(s0) < 1e-5, "mean changed: %g -> %g", s0 / (T * D), m / (T * D));
    CHECK(z[0] != z0[0]); /* unweighted tokens are rescaled too (ratio != 1 here) */

    for (int t = 0; t < T; t++) w[t] = 1.0f;
    memcpy(z, z0, sizeof(float) * T * D);
    sdc_pipeline_apply_emphasis(z, w);
    CHECK(memcmp(z, z0, sizeof(float) * T * D) == 0);
    free(z), free(z0), free(want);
    return check_done();
}
