/* tensor.c - type traits and small tensor helpers. Block sizes and byte counts are the
 * GGML/GGUF ones (ggml.c's type_traits table); quant.h pins the block structs to them. */
#include "tensor.h"

#include <stdio.h>
#include <strings.h>

static const sdc_type_traits TRAITS[SDC_TYPE_COUNT] = {
    [SDC_TYPE_F32] = {"f32", 1, 4, true, false},
    [SDC_TYPE_F16] = {"f16", 1, 2, true, false},
    [SDC_TYPE_BF16] = {"bf16", 1, 2, true, false},
    [SDC_TYPE_Q4_0] = {"q4_0", 32, 18, true, true},
    [SDC_TYPE_Q4_1] = {"q4_1", 32, 20, true, true},
    [SDC_TYPE_Q5_0] = {"q5_0", 32, 22, true, true},
    [SDC_TYPE_Q5_1] = {"q5_1", 32, 24, true, true},
    [SDC_TYPE_Q8_0] = {"q8_0", 32, 34, true, true},
    [SDC_TYPE_Q2_K] = {"q2_k", 256, 84, true, true},
    [SDC_TYPE_Q3_K] = {"q3_k", 256, 110, true, true},
    [SDC_TYPE_Q4_K] = {"q4_k", 256, 144, true, true},
    [SDC_TYPE_Q5_K] = {"q5_k", 256, 176, true, true},
    [SDC_TYPE_Q6_K] = {"q6_k", 256, 210, true, true},
    [SDC_TYPE_F64] = {"f64", 1, 8, true, false},
    [SDC_TYPE_I8] = {"i8", 1, 1, false, false},
    [SDC_TYPE_I16] = {"i16", 1, 2, false, false},
    [SDC_TYPE_I32] = {"i32", 1, 4, false, false},
    [SDC_TYPE_I64] = {"i64", 1, 8, false, false},
    [SDC_TYPE_U8] = {"u8", 1, 1, false, false},
    [SDC_TYPE_BOOL] = {"bool", 1, 1, false, false},
};

const sdc_type_traits *sdc_type_traits_of(sdc_type t) {
    if ((unsigned)t >= SDC_TYPE_COUNT) return NULL;
    return &TRAITS[t];
}

const char *sdc_type_name(sdc_type t) {
    const sdc_type_traits *tr = sdc_type_traits_of(t);
    return tr ? tr->name : "?";
}

int sdc_type_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < SDC_TYPE_COUNT; i++)
        if (strcasecmp(name, TRAITS[i].name) == 0) return i;
    return -1;
}

bool sdc_type_bytes(sdc_type t, uint64_t n, uint64_t *bytes) {
    const sdc_type_traits *tr = sdc_type_traits_of(t);
    if (!tr || n % (uint64_t)tr->block) return false;
    return !__builtin_mul_overflow(n / (uint64_t)tr->block, (uint64_t)tr->block_bytes, bytes);
}

int64_t sdc_tensor_nelem(const sdc_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

int64_t sdc_tensor_row_len(const sdc_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }

char *sdc_shape_str(const int64_t *shape, int ndim, char *buf, size_t len) {
    size_t o = 0;
    if (!len) return buf;
    buf[0] = '\0';
    o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "[");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
    return buf;
}
