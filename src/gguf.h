/* gguf.h - GGUF v2/v3 reader (mmap, zero-copy tensor views, bounds-checked) and writer.
 *
 * Format (ggml docs/gguf.md): magic "GGUF", u32 version, u64 n_tensors, u64 n_kv, then n_kv
 * key/value pairs (string key, u32 value type, value), n_tensors tensor infos (string name,
 * u32 n_dims, u64 ne[n_dims] innermost first, u32 ggml type, u64 offset), padding to
 * general.alignment (default 32), then the tensor data; each offset is relative to the
 * data section and a multiple of the alignment. Strings are u64 length + bytes (no NUL).
 * Version 1 (u32 counts) is rejected as obsolete. Shapes given by this API are outermost
 * first (ggml's ne reversed). */
#ifndef SDC_GGUF_H
#define SDC_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "common.h"
#include "tensor.h"

typedef enum sdc_gguf_kv_type {
    SDC_GGUF_U8 = 0, SDC_GGUF_I8 = 1, SDC_GGUF_U16 = 2, SDC_GGUF_I16 = 3,
    SDC_GGUF_U32 = 4, SDC_GGUF_I32 = 5, SDC_GGUF_F32 = 6, SDC_GGUF_BOOL = 7,
    SDC_GGUF_STRING = 8, SDC_GGUF_ARRAY = 9, SDC_GGUF_U64 = 10, SDC_GGUF_I64 = 11,
    SDC_GGUF_F64 = 12,
} sdc_gguf_kv_type;

/* ggml type id <-> sdc_type (returns -1 when the id has no sdc_type / sdc_type no id) */
int sdc_gguf_type_to_sdc(uint32_t ggml_type);
int sdc_gguf_type_from_sdc(sdc_type t);

typedef struct sdc_gguf sdc_gguf;

/* Opens and validates a GGUF file (mmap). Every count, length and offset is checked against
 * the bytes that remain; tensors must lie inside the file and not overlap. */
sdc_status sdc_gguf_open(const char *path, sdc_gguf **out, char *err, size_t errlen);
/* Same over a caller-owned buffer that must outlive the handle (used by the fuzzer). */
sdc_status sdc_gguf_open_memory(const void *data, size_t size, sdc_gguf **out, char *err, size_t errlen);
void sdc_gguf_close(sdc_gguf *g);

uint32_t sdc_gguf_version(const sdc_gguf *g);
uint64_t sdc_gguf_alignment(const sdc_gguf *g);
const sdc_map *sdc_gguf_map(const sdc_gguf *g);   /* the mapping (data = NULL for open_memory) */

int64_t sdc_gguf_tensor_count(const sdc_gguf *g);
const sdc_tensor *sdc_gguf_tensor(const sdc_gguf *g, int64_t i);
const sdc_tensor *sdc_gguf_find_tensor(const sdc_gguf *g, const char *name); /* NULL if absent */

int64_t sdc_gguf_kv_count(const sdc_gguf *g);
int64_t sdc_gguf_kv_find(const sdc_gguf *g, const char *key);                 /* -1 if absent */
const char *sdc_gguf_kv_key(const sdc_gguf *g, int64_t i);
sdc_gguf_kv_type sdc_gguf_kv_type_of(const sdc_gguf *g, int64_t i);
/* Scalar getters: convert any numeric/bool scalar; false on a type mismatch (strings, arrays). */
bool sdc_gguf_kv_get_i64(const sdc_gguf *g, int64_t i, int64_t *v);
bool sdc_gguf_kv_get_u64(const sdc_gguf *g, int64_t i, uint64_t *v);
bool sdc_gguf_kv_get_f64(const sdc_gguf *g, int64_t i, double *v);
/* A string value (not NUL-terminated; len bytes); false when not a string. */
bool sdc_gguf_kv_get_str(const sdc_gguf *g, int64_t i, const char **s, uint64_t *len);
/* Arrays: element type, length, raw little-endian data of numeric arrays, string elements.
 * For a non-array value array_type gives the value's own type and array_len 0; an index out of
 * range gives type (sdc_gguf_kv_type)-1. Numeric array data may be unaligned (use memcpy). */
sdc_gguf_kv_type sdc_gguf_kv_array_type(const sdc_gguf *g, int64_t i);
uint64_t sdc_gguf_kv_array_len(const sdc_gguf *g, int64_t i);
const void *sdc_gguf_kv_array_data(const sdc_gguf *g, int64_t i);            /* NULL for string arrays */
bool sdc_gguf_kv_array_str(const sdc_gguf *g, int64_t i, uint64_t j, const char **s, uint64_t *len);
/* Renders a value as text (arrays as "[type x N]" plus the first few elements). */
void sdc_gguf_kv_format(const sdc_gguf *g, int64_t i, char *buf, size_t len);

/* ---- writer: declare metadata and tensor infos, then stream the tensor data in order. */
typedef struct sdc_gguf_writer sdc_gguf_writer;

/* Setters replace an existing key's value. An alignment other than 32 is recorded as the u32
 * key general.alignment (first in the file); setting that key with set_u32 changes it (any
 * other type is SDC_E_INVALID). Tensor names are limited to 127 bytes, the longest that
 * stable-diffusion.cpp's ggml (GGML_MAX_NAME 128) loads. Setters and add_tensor return
 * SDC_E_INVALID after begin. The output is GGUF v3 with each tensor's data zero-padded to the
 * alignment, so offsets are contiguous as ggml's reader requires. */
sdc_gguf_writer *sdc_gguf_writer_new(uint32_t alignment);  /* alignment 0 = 32; NULL if not a power of two */
void sdc_gguf_writer_free(sdc_gguf_writer *w);
sdc_status sdc_gguf_writer_set_str(sdc_gguf_writer *w, const char *key, const char *value);
sdc_status sdc_gguf_writer_set_u32(sdc_gguf_writer *w, const char *key, uint32_t value);
sdc_status sdc_gguf_writer_set_i32(sdc_gguf_writer *w, const char *key, int32_t value);
sdc_status sdc_gguf_writer_set_u64(sdc_gguf_writer *w, const char *key, uint64_t value);
sdc_status sdc_gguf_writer_set_f32(sdc_gguf_writer *w, const char *key, float value);
sdc_status sdc_gguf_writer_set_bool(sdc_gguf_writer *w, const char *key, bool value);
/* Array of n scalars of elem_type (any numeric/bool type), data little-endian. */
sdc_status sdc_gguf_writer_set_arr(sdc_gguf_writer *w, const char *key, sdc_gguf_kv_type elem_type,
                                   const void *data, uint64_t n);
sdc_status sdc_gguf_writer_set_arr_str(sdc_gguf_writer *w, const char *key, const char *const *strs,
                                       uint64_t n);
/* Declares the next tensor (shape outermost first); data is written later, in this order. */
sdc_status sdc_gguf_writer_add_tensor(sdc_gguf_writer *w, const char *name, sdc_type type, int ndim,
                                      const int64_t *shape);
/* Writes header, metadata, tensor infos and padding. */
sdc_status sdc_gguf_writer_begin(sdc_gguf_writer *w, FILE *f, char *err, size_t errlen);
/* Writes the data of the next declared tensor (nbytes must match its declared size). */
sdc_status sdc_gguf_writer_write_data(sdc_gguf_writer *w, const void *data, uint64_t nbytes, char *err,
                                      size_t errlen);
/* Checks every declared tensor was written. */
sdc_status sdc_gguf_writer_end(sdc_gguf_writer *w, char *err, size_t errlen);

#endif
