/* fuzz_safetensors.c - libFuzzer target for the safetensors reader: opens the input from
 * memory and, when it opens, walks every tensor (looked up again by name, first and last data
 * byte read, bounds checked against the buffer) and every metadata entry. A failure must come
 * with a one-line message naming the input. Seed corpus: tests/hostile/safetensors. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    err[0] = '\0';
    sdc_st *s = NULL;
    sdc_status st = sdc_st_open_memory(data, size, &s, err, sizeof err);
    if (st != SDC_OK) {
        if (s || strncmp(err, "(memory): ", 10) != 0 || strchr(err, '\n')) abort();
        return 0;
    }
    volatile uint8_t sink = 0;
    int64_t n = sdc_st_tensor_count(s);
    for (int64_t i = 0; i < n; i++) {
        const sdc_tensor *t = sdc_st_tensor(s, i);
        if (!t || !t->name || sdc_st_find_tensor(s, t->name) != t) abort();
        if (t->ndim < 0 || t->ndim > SDC_MAX_DIMS) abort();
        uint64_t ne = 1, bytes = 0;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0) abort();
            if (__builtin_mul_overflow(ne, (uint64_t)t->shape[d], &ne)) abort();
        }
        if (!sdc_type_bytes(t->type, ne, &bytes) || bytes != t->nbytes) abort();
        const uint8_t *p = t->data;
        if (p < data || (uint64_t)(data + size - p) < t->nbytes) abort();
        if (t->nbytes) {
            sink ^= p[0];
            sink ^= p[t->nbytes - 1];
        }
    }
    int64_t nm = sdc_st_meta_count(s);
    for (int64_t i = 0; i < nm; i++) {
        const char *k = sdc_st_meta_key(s, i), *v = sdc_st_meta_value(s, i);
        if (!k || !v || sdc_st_meta_get(s, k) != v) abort();
        sink ^= (uint8_t)strlen(k) ^ (uint8_t)strlen(v);
    }
    (void)sink;
    sdc_st_close(s);
    return 0;
}
