/* safetensors.h - safetensors reader (mmap, zero-copy, bounds-checked) and writer (tests).
 *
 * Format: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {"key": "string", ...}}, then the data; offsets are relative to the
 * byte after the header. Dtypes read: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL; any
 * other dtype (F8_E4M3, U16, ...) fails with SDC_E_UNSUPPORTED naming the tensor and dtype.
 *
 * Every header field is checked before use (see safetensors.c); a malformed file fails with
 * SDC_E_FORMAT and one line "<file>: what is wrong" ("(memory)" for sdc_st_open_memory).
 *
 * Alignment: tensor data pointers are NOT guaranteed to be aligned to their element size. The
 * header length need not be a multiple of 8 and tensors need not start on element boundaries,
 * so consumers must read through memcpy (or an unaligned-safe load) unless sdc_st_aligned()
 * says every tensor is aligned. Files written by sdc_st_write() and by the reference library
 * have an 8-aligned header; tensors are then aligned when the data offsets are. */
#ifndef SDC_SAFETENSORS_H
#define SDC_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common.h"
#include "tensor.h"

typedef struct sdc_st sdc_st;

/* Largest JSON header accepted (the reference implementation's limit). */
#define SDC_ST_MAX_HEADER 100000000ull

sdc_status sdc_st_open(const char *path, sdc_st **out, char *err, size_t errlen);
/* Over a caller-owned buffer that must outlive the handle (used by the fuzzer). */
sdc_status sdc_st_open_memory(const void *data, size_t size, sdc_st **out, char *err, size_t errlen);
void sdc_st_close(sdc_st *s);

const sdc_map *sdc_st_map(const sdc_st *s);
int64_t sdc_st_tensor_count(const sdc_st *s);
const sdc_tensor *sdc_st_tensor(const sdc_st *s, int64_t i);
const sdc_tensor *sdc_st_find_tensor(const sdc_st *s, const char *name);  /* NULL if absent; hashed */
/* True when every tensor's data pointer is a multiple of its element size. */
bool sdc_st_aligned(const sdc_st *s);

int64_t sdc_st_meta_count(const sdc_st *s);
const char *sdc_st_meta_key(const sdc_st *s, int64_t i);
const char *sdc_st_meta_value(const sdc_st *s, int64_t i);
const char *sdc_st_meta_get(const sdc_st *s, const char *key);  /* NULL if absent */

/* Writes a safetensors file: the JSON header (metadata first, then the tensors in the given
 * order) padded with spaces to a multiple of 8, then each tensor's nbytes bytes back to back in
 * the given order (put wider types first to keep every tensor aligned). Types: F64, F32, F16,
 * BF16, I64, I32, I16, I8, U8, BOOL; block-quantized types fail with SDC_E_UNSUPPORTED. Each
 * tensor's nbytes must match its shape. The file is written to "<path>.tmp" and renamed, so a
 * failure never leaves a partial file under path.
 * meta holds n_meta key/value pairs: meta[2*i] = key, meta[2*i+1] = value. */
sdc_status sdc_st_write(const char *path, const sdc_tensor *tensors, int64_t n, const char *const *meta,
                        int64_t n_meta, char *err, size_t errlen);

#endif
