/* testutil.h - helpers shared by the tests: locating ../shared, the random-weight
 * checkpoint, a .npy reader for the goldens, and a deterministic random generator. */
#ifndef SDC_TESTUTIL_H
#define SDC_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Path of the shared data folder: $SDC_SHARED, else the build-time default (../shared next
 * to the source tree). Returns NULL when it does not exist. */
const char *tu_shared_dir(void);
/* tu_shared_dir() or SKIP (exit 77) with a message naming what is missing. */
const char *tu_require_shared(void);
/* Joins the shared dir and a relative path into a static buffer (overwritten per call). */
const char *tu_shared_path(const char *rel);
/* The random-weight SD 1.5 checkpoint (F16 safetensors) made by the test fixture:
 * $SDC_TEST_MODEL, or SKIP when absent. */
const char *tu_require_model(void);
/* A scratch directory for this test (created; under the build tree's Testing/tmp). */
const char *tu_tmpdir(const char *test_name);

/* .npy (version 1/2/3, little-endian, C order) of dtype <f4, <f8 (converted to float),
 * <i8 or <i4 (converted to int64). */
typedef struct tu_npy {
    int ndim;
    int64_t shape[8];
    int64_t n;
    float *f32;    /* for float arrays */
    int64_t *i64;  /* for integer arrays */
} tu_npy;
bool tu_npy_load(const char *path, tu_npy *out, char *err, size_t errlen);
void tu_npy_free(tu_npy *a);
/* Writes a float32 .npy (for debugging dumps). */
bool tu_npy_save_f32(const char *path, const float *data, const int64_t *shape, int ndim);

/* splitmix64-based generator: uniform in [0,1) and N(0,1). */
typedef struct tu_rng { uint64_t s; } tu_rng;
uint64_t tu_rng_u64(tu_rng *r);
double tu_rng_uniform(tu_rng *r);
double tu_rng_normal(tu_rng *r);

#endif
