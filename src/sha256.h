/* sha256.h - SHA-256 (FIPS 180-4), streaming, for A1111's "Model hash" and tests. */
#ifndef SDC_SHA256_H
#define SDC_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sdc_sha256 {
    uint32_t h[8];
    uint64_t len;       /* bytes hashed so far */
    uint8_t buf[64];
    size_t nbuf;
    bool accel;         /* x86 SHA extensions (set by init when the CPU has them) */
} sdc_sha256;

/* Picks the SHA-NI block function when the CPU has it (checked with cpuid), else the
 * portable one; both give the same digest (tested). */
void sdc_sha256_init(sdc_sha256 *s);
/* Forces the portable block function (tests). */
void sdc_sha256_init_portable(sdc_sha256 *s);
void sdc_sha256_update(sdc_sha256 *s, const void *data, size_t n);
void sdc_sha256_final(sdc_sha256 *s, uint8_t digest[32]);

#endif
