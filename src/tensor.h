/* tensor.h - element types and the tensor view every module passes around.
 *
 * A tensor here is a view: name, type, shape and a pointer into a memory-mapped model file
 * (or into a buffer its owner manages). Shapes are outermost first, as PyTorch and the
 * goldens write them: a conv kernel is [out, in, kh, kw], a linear weight [out, in].
 * Block-quantized types pack the innermost dimension (shape[ndim-1], a "row") in blocks of
 * sdc_type_block(t) values; ggml calls that dimension ne[0]. */
#ifndef SDC_TENSOR_H
#define SDC_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum sdc_type {
    SDC_TYPE_F32 = 0,
    SDC_TYPE_F16,
    SDC_TYPE_BF16,
    SDC_TYPE_Q4_0,
    SDC_TYPE_Q4_1,
    SDC_TYPE_Q5_0,
    SDC_TYPE_Q5_1,
    SDC_TYPE_Q8_0,
    SDC_TYPE_Q2_K,
    SDC_TYPE_Q3_K,
    SDC_TYPE_Q4_K,
    SDC_TYPE_Q5_K,
    SDC_TYPE_Q6_K,
    SDC_TYPE_F64,
    SDC_TYPE_I8,
    SDC_TYPE_I16,
    SDC_TYPE_I32,
    SDC_TYPE_I64,
    SDC_TYPE_U8,
    SDC_TYPE_BOOL,
    SDC_TYPE_COUNT
} sdc_type;

typedef struct sdc_type_traits {
    const char *name;   /* lower case: "f32", "q4_0", "q6_k", "i64" ... */
    int block;          /* values per block (1 for plain types) */
    int block_bytes;    /* bytes per block */
    bool is_float;      /* a floating-point (possibly quantized) weight type */
    bool is_quant;      /* block-quantized */
} sdc_type_traits;

const sdc_type_traits *sdc_type_traits_of(sdc_type t);  /* NULL for an invalid t */
const char *sdc_type_name(sdc_type t);                  /* "?" for an invalid t */
/* Parses a type name (case-insensitive); returns -1 when unknown. */
int sdc_type_from_name(const char *name);
/* Bytes of n consecutive values of type t; returns false when n is not a multiple of the
 * block size or on overflow. */
bool sdc_type_bytes(sdc_type t, uint64_t n, uint64_t *bytes);

#define SDC_MAX_DIMS 8

typedef struct sdc_tensor {
    const char *name;
    sdc_type type;
    int ndim;                       /* 0 for a scalar */
    int64_t shape[SDC_MAX_DIMS];    /* outermost first */
    const void *data;
    uint64_t nbytes;
} sdc_tensor;

int64_t sdc_tensor_nelem(const sdc_tensor *t);
/* Values per row (innermost dimension; 1 for a scalar). */
int64_t sdc_tensor_row_len(const sdc_tensor *t);
/* Formats a shape as "[320,4,3,3]" into buf; returns buf. */
char *sdc_shape_str(const int64_t *shape, int ndim, char *buf, size_t len);

#endif
