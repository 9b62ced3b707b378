/* common.h - status codes, error buffers and read-only file mapping shared by every module.
 *
 * Convention (DESIGN principle 6): a fallible function returns an sdc_status (0 = ok) and
 * writes one line "what: expected X, got Y" into the caller's (err, errlen) buffer. Nothing
 * here keeps global state and nothing exits. */
#ifndef SDC_COMMON_H
#define SDC_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "sdc.h"

#if defined(__GNUC__)
#define SDC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SDC_PRINTF(a, b)
#endif

/* Formats into err (when non-NULL) and returns code, so callers can write
 * `return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: bad magic", path);` */
sdc_status sdc_fail(char *err, size_t errlen, sdc_status code, const char *fmt, ...) SDC_PRINTF(4, 5);

/* Prefixes an already written error message with "prefix: " (used to add the file name). */
void sdc_err_prefix(char *err, size_t errlen, const char *prefix);

/* A whole file mapped read-only (MAP_PRIVATE). Empty files map to data = NULL, size = 0. */
typedef struct sdc_map {
    const uint8_t *data;
    size_t size;
} sdc_map;

sdc_status sdc_map_file(const char *path, sdc_map *out, char *err, size_t errlen);
void sdc_unmap(sdc_map *m);
/* Tells the kernel the pages of [ptr, ptr+len) inside m are no longer needed (per-stage release). */
void sdc_map_release(const sdc_map *m, const void *ptr, size_t len);

/* Overflow-checked size arithmetic: return false on overflow. */
static inline bool sdc_mul_u64(uint64_t a, uint64_t b, uint64_t *r) { return !__builtin_mul_overflow(a, b, r); }
static inline bool sdc_add_u64(uint64_t a, uint64_t b, uint64_t *r) { return !__builtin_add_overflow(a, b, r); }

/* Duplicate n bytes as a NUL-terminated string (NULL on OOM). */
char *sdc_strndup(const char *s, size_t n);

#endif
