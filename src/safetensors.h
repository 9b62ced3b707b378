/* safetensors.h - safetensors reader (mmap, zero-copy, bounds-checked) and writer (tests).
 *
 * Format: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {"key": "string", ...}}, then the data; offsets are relative to the
 * byte after the header. Dtypes read: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL. */
#ifndef SDC_SAFETENSORS_H
#define SDC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "common.h"
#include "tensor.h"

typedef struct sdc_st sdc_st;

sdc_status sdc_st_open(const char *path, sdc_st **out, char *err, size_t errlen);
/* Over a caller-owned buffer that must outlive the handle (used by the fuzzer). */
sdc_status sdc_st_open_memory(const void *data, size_t size, sdc_st **out, char *err, size_t errlen);
void sdc_st_close(sdc_st *s);

const sdc_map *sdc_st_map(const sdc_st *s);
int64_t sdc_st_tensor_count(const sdc_st *s);
const sdc_tensor *sdc_st_tensor(const sdc_st *s, int64_t i);
const sdc_tensor *sdc_st_find_tensor(const sdc_st *s, const char *name);  /* NULL if absent */

int64_t sdc_st_meta_count(const sdc_st *s);
const char *sdc_st_meta_key(const sdc_st *s, int64_t i);
const char *sdc_st_meta_value(const sdc_st *s, int64_t i);

/* Writes a safetensors file (data laid out in the given order, 8-byte aligned header).
 * meta holds n_meta key/value pairs: meta[2*i] = key, meta[2*i+1] = value. */
sdc_status sdc_st_write(const char *path, const sdc_tensor *tensors, int64_t n, const char *const *meta,
                        int64_t n_meta, char *err, size_t errlen);

#endif
