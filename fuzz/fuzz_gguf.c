/* fuzz_gguf.c - libFuzzer target for the GGUF reader: opens the input via open_memory and,
 * when it is accepted, walks every tensor (bounds, lookup by name, touching the first and
 * last data byte) and every key/value (lookup, getters, formatting). */
#include <stdint.h>
#include <string.h>

#include "gguf.h"

static volatile uint8_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    sdc_gguf *g = NULL;
    sdc_status st = sdc_gguf_open_memory(size ? data : NULL, size, &g, err, sizeof err);
    if (st != SDC_OK) {
        if (!err[0] || strncmp(err, "<memory>: ", 10) != 0) __builtin_trap(); /* every failure names the input */
        return 0;
    }
    for (int64_t i = 0; i < sdc_gguf_tensor_count(g); i++) {
        const sdc_tensor *t = sdc_gguf_tensor(g, i);
        const uint8_t *p = t->data;
        if (p < data || t->nbytes > size || p + t->nbytes > data + size) __builtin_trap();
        if (t->nbytes) sink ^= p[0] ^ p[t->nbytes - 1];
        if (sdc_gguf_find_tensor(g, t->name) != t) __builtin_trap();
        if (t->ndim < 1 || t->ndim > 4) __builtin_trap();
        uint64_t nb;
        if (!sdc_type_bytes(t->type, (uint64_t)sdc_tensor_nelem(t), &nb) || nb != t->nbytes) __builtin_trap();
    }
    char buf[256];
    for (int64_t i = 0; i < sdc_gguf_kv_count(g); i++) {
        const char *key = sdc_gguf_kv_key(g, i);
        if (sdc_gguf_kv_find(g, key) != i) __builtin_trap();
        int64_t iv;
        uint64_t uv, len;
        double fv;
        const char *s;
        (void)sdc_gguf_kv_get_i64(g, i, &iv);
        (void)sdc_gguf_kv_get_u64(g, i, &uv);
        (void)sdc_gguf_kv_get_f64(g, i, &fv);
        if (sdc_gguf_kv_get_str(g, i, &s, &len) && len) sink ^= (uint8_t)s[len - 1];
        if (sdc_gguf_kv_type_of(g, i) == SDC_GGUF_ARRAY) {
            uint64_t n = sdc_gguf_kv_array_len(g, i);
            if (sdc_gguf_kv_array_type(g, i) == SDC_GGUF_STRING) {
                for (uint64_t j = 0; j < n && j < 64; j++)
                    if (!sdc_gguf_kv_array_str(g, i, j, &s, &len)) __builtin_trap();
                if (n && sdc_gguf_kv_array_str(g, i, n - 1, &s, &len) && len) sink ^= (uint8_t)s[len - 1];
            } else if (n && !sdc_gguf_kv_array_data(g, i)) {
                __builtin_trap();
            }
        }
        sdc_gguf_kv_format(g, i, buf, sizeof buf);
        sdc_gguf_kv_format(g, i, buf, 7);
    }
    sdc_gguf_close(g);
    return 0;
}
