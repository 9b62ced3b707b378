/* test_tensor.c - type traits and the scalar half/bfloat16 conversions, checked against
 * independent references: every one of the 65536 f16 values decoded by the textbook
 * formula in double, and f32->f16 rounding checked against round-to-nearest-even computed
 * in double by neighbour comparison. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "half.h"
#include "tensor.h"

static double f16_value_ref(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31) return m ? NAN : (s ? -INFINITY : INFINITY);
    if (e == 0) v = ldexp(m, -24);
    else v = ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

int main(void) {
    /* every f16 decodes exactly */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        double want = f16_value_ref((uint16_t)h);
        float got = sdc_f16_to_f32((uint16_t)h);
        if (isnan(want) ? !isnan(got) : (double)got != want) bad++;
    }
    CHECK_MSG(bad == 0, "%d f16 values decoded wrongly", bad);

    /* every finite f16 round-trips, and f32 -> f16 rounds to nearest even: test midpoints and
     * their neighbours between each pair of consecutive positive f16 values */
    bad = 0;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        float f = sdc_f16_to_f32((uint16_t)h);
        if (sdc_f32_to_f16(f) != h) bad++;
        if (sdc_f32_to_f16(-f) != (h | 0x8000)) bad++;
        if (h + 1 < 0x7c00) {
            double lo = f16_value_ref((uint16_t)h), hi = f16_value_ref((uint16_t)(h + 1));
            float mid = (float)((lo + hi) / 2); /* exact in float */
            uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
            if (sdc_f32_to_f16(mid) != even) bad++;
            if (sdc_f32_to_f16(nextafterf(mid, 0)) != h) bad++;
            if (sdc_f32_to_f16(nextafterf(mid, INFINITY)) != h + 1) bad++;
        }
    }
    CHECK_MSG(bad == 0, "%d f32->f16 roundings wrong", bad);
    CHECK(sdc_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(sdc_f32_to_f16(65519.99f) == 0x7bff);
    CHECK(sdc_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(sdc_f32_to_f16(1e-8f) == 0);
    CHECK(sdc_f32_to_f16(INFINITY) == 0x7c00);
    CHECK((sdc_f32_to_f16(NAN) & 0x7fff) > 0x7c00);

    /* bf16: round to nearest even on the dropped 16 bits */
    CHECK(sdc_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(sdc_f32_to_bf16(sdc_bits_f32(0x3f808000u)) == 0x3f80); /* tie -> even */
    CHECK(sdc_f32_to_bf16(sdc_bits_f32(0x3f818000u)) == 0x3f82); /* tie -> even (up) */
    CHECK(sdc_f32_to_bf16(sdc_bits_f32(0x3f808001u)) == 0x3f81);
    CHECK(sdc_bf16_to_f32(0xc040) == -3.0f);
    CHECK(isnan(sdc_bf16_to_f32(sdc_f32_to_bf16(NAN))));

    /* traits */
    uint64_t b = 0;
    CHECK(sdc_type_bytes(SDC_TYPE_Q4_0, 64, &b) && b == 36);
    CHECK(!sdc_type_bytes(SDC_TYPE_Q4_0, 33, &b));
    CHECK(sdc_type_bytes(SDC_TYPE_Q6_K, 512, &b) && b == 420);
    CHECK(sdc_type_bytes(SDC_TYPE_F16, 3, &b) && b == 6);
    CHECK(sdc_type_from_name("Q8_0") == SDC_TYPE_Q8_0);
    CHECK(sdc_type_from_name("nope") == -1);
    CHECK(strcmp(sdc_type_name(SDC_TYPE_BF16), "bf16") == 0);
    CHECK(sdc_type_traits_of((sdc_type)99) == NULL);
    char buf[64];
    int64_t sh[4] = {320, 4, 3, 3};
    CHECK(strcmp(sdc_shape_str(sh, 4, buf, sizeof buf), "[320,4,3,3]") == 0);
    return check_done();
}
