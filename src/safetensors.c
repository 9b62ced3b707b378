/* safetensors.c - safetensors reader (mmap, zero-copy, every header field checked before use)
 * and writer (used by the tests and by tools that emit small files).
 *
 * Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON (an object), then the
 * data section. Each tensor's data_offsets are relative to the first byte after the header.
 *
 * Reader checks, in order: the file holds the 8 length bytes; N <= SDC_ST_MAX_HEADER and fits
 * the file; the header is valid UTF-8 with no raw control bytes and no \u0000 escape, starts
 * with '{' and is one JSON object followed only by whitespace. Then for every entry: the name
 * is unique; "__metadata__" is an object of string values; a tensor entry is an object with a
 * known dtype string, a shape array of at most SDC_MAX_DIMS integers in [0, 2^53), and
 * data_offsets = [begin, end] integers with begin <= end <= data size; end - begin equals
 * nelem * element size (overflow-checked); and no two non-empty ranges overlap. Gaps between
 * tensors and bytes after the last one are tolerated (the reference writer leaves none, other
 * writers may pad). Numbers reach us as doubles from cJSON, so anything non-integral,
 * negative, non-finite or >= 2^53 is rejected rather than rounded. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEMORY_NAME "(memory)"
#define MAX_EXACT 9007199254740992.0 /* 2^53: the first double that is not a unique integer */

struct sdc_st {
    sdc_map map;
    bool owns_map;
    bool aligned;
    int64_t n;
    sdc_tensor *tensors;
    char **names;        /* owned copies, tensors[i].name points here */
    uint32_t *slots;     /* open addressing: index+1, 0 = empty */
    uint32_t nslots;     /* power of two */
    int64_t n_meta;
    char **meta_keys;
    char **meta_vals;
};

/* ------------------------------------------------------------------ dtypes */

static const struct {
    const char *name;
    sdc_type type;
} DTYPES[] = {
    {"F64", SDC_TYPE_F64}, {"F32", SDC_TYPE_F32}, {"F16", SDC_TYPE_F16}, {"BF16", SDC_TYPE_BF16},
    {"I64", SDC_TYPE_I64}, {"I32", SDC_TYPE_I32}, {"I16", SDC_TYPE_I16}, {"I8", SDC_TYPE_I8},
    {"U8", SDC_TYPE_U8},   {"BOOL", SDC_TYPE_BOOL},
};
#define N_DTYPES (sizeof DTYPES / sizeof DTYPES[0])

static int dtype_lookup(const char *s) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (strcmp(s, DTYPES[i].name) == 0) return (int)DTYPES[i].type;
    return -1;
}

static const char *dtype_name(sdc_type t) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (DTYPES[i].type == t) return DTYPES[i].name;
    return NULL;
}

/* ------------------------------------------------------------------ names */

static uint32_t name_hash(const char *s) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* Returns the index of name, or -1. */
static int64_t slot_find(const sdc_st *s, const char *name) {
    if (!s->nslots) return -1;
    uint32_t mask = s->nslots - 1;
    for (uint32_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
        uint32_t v = s->slots[i];
        if (!v) return -1;
        if (strcmp(s->tensors[v - 1].name, name) == 0) return (int64_t)v - 1;
    }
}

static void slot_insert(sdc_st *s, int64_t idx) {
    uint32_t mask = s->nslots - 1;
    uint32_t i = name_hash(s->tensors[idx].name) & mask;
    while (s->slots[i]) i = (i + 1) & mask;
    s->slots[i] = (uint32_t)(idx + 1);
}

/* ------------------------------------------------------------------ header text checks */

/* One UTF-8 sequence starting at p[0] (p[0] >= 0x80), at most n bytes available: returns
 * NULL and its length, or a description of what is wrong. Overlong forms, surrogates and
 * code points past U+10FFFF are rejected. */
static const char *utf8_seq(const uint8_t *p, size_t n, size_t *len) {
    uint8_t c = p[0];
    uint32_t cp;
    size_t l;
    if (c >= 0xc2 && c <= 0xdf) {
        l = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        l = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        l = 4;
        cp = c & 0x07;
    } else {
        return "invalid UTF-8";
    }
    if (n < l) return "invalid UTF-8 (truncated sequence)";
    for (size_t k = 1; k < l; k++) {
        if ((p[k] & 0xc0) != 0x80) return "invalid UTF-8";
        cp = (cp << 6) | (p[k] & 0x3f);
    }
    if ((l == 3 && cp < 0x800) || (l == 4 && cp < 0x10000)) return "invalid UTF-8 (overlong)";
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return "invalid UTF-8 (bad code point)";
    *len = l;
    return NULL;
}

/* Validates the header bytes: UTF-8, no raw control bytes other than JSON whitespace, and no
 * \u0000 escape (names are C strings here). Returns NULL when fine, else a description;
 * *at receives the byte offset of the problem. */
static const char *check_header_text(const uint8_t *p, size_t n, size_t *at) {
    bool in_str = false;
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        *at = i;
        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return "a raw control byte";
            if (in_str && c == '\\') {
                if (i + 5 < n && p[i + 1] == 'u' && memcmp(p + i + 2, "0000", 4) == 0) return "a \\u0000 escape";
                i += 2; /* skip the escaped character; cJSON rejects bad escapes */
                continue;
            }
            if (c == '"') in_str = !in_str;
            i++;
            continue;
        }
        size_t l;
        const char *why = utf8_seq(p + i, n - i, &l);
        if (why) return why;
        i += l;
    }
    return NULL;
}

static bool valid_utf8_str(const char *s) {
    const uint8_t *p = (const uint8_t *)s;
    size_t n = strlen(s), l;
    for (size_t i = 0; i < n; i += l) {
        l = 1;
        if (p[i] >= 0x80 && utf8_seq(p + i, n - i, &l)) return false;
    }
    return true;
}

/* ------------------------------------------------------------------ reader */

/* A name as it may appear in a one-line message: control bytes as \xNN, cut at 120 bytes on a
 * UTF-8 boundary. Returned by value so several can sit in one sdc_fail call. */
typedef struct shown {
    char s[160];
} shown;

static shown show(const char *name) {
    shown r;
    size_t o = 0;
    const uint8_t *p = (const uint8_t *)name;
    for (; *p && o < 120; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            snprintf(r.s + o, sizeof r.s - o, "\\x%02x", *p);
            o += 4;
        } else {
            r.s[o++] = (char)*p;
        }
    }
    if (*p) {
        while (o && ((uint8_t)r.s[o - 1] & 0xc0) == 0x80) o--; /* drop a cut sequence's tail */
        if (o && (uint8_t)r.s[o - 1] >= 0xc0) o--;              /* ... and its lead byte */
        memcpy(r.s + o, "...", 3);
        o += 3;
    }
    r.s[o] = '\0';
    return r;
}


/* A JSON number that must be an exact non-negative integer below 2^53. */
static bool json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!isfinite(d) || d < 0 || d >= MAX_EXACT || floor(d) != d) return false;
    *out = (uint64_t)d;
    return true;
}

static const char *json_kind(const cJSON *j) {
    if (cJSON_IsObject(j)) return "an object";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNull(j)) return "null";
    return "something else";
}

/* Renders a JSON number for messages without pretending it is an integer. */
static void num_str(const cJSON *j, char *buf, size_t len) {
    if (!cJSON_IsNumber(j)) snprintf(buf, len, "%s", json_kind(j));
    else {
        snprintf(buf, len, "%.15g", j->valuedouble); /* shortest that reads back exactly */
        if (strtod(buf, NULL) != j->valuedouble) snprintf(buf, len, "%.17g", j->valuedouble);
    }
}

typedef struct range {
    uint64_t begin, end;
    int64_t idx;
} range;

static int range_cmp(const void *a, const void *b) {
    const range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Parses one tensor entry. fname is the file label for messages. */
static sdc_status parse_tensor(sdc_st *s, const char *fname, const cJSON *e, const uint8_t *base, uint64_t dsize,
                               range *r, char *err, size_t errlen) {
    const shown nm = show(e->string);
    const char *name = nm.s;
    if (!cJSON_IsObject(e))
        return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: tensor '%s': expected an object, got %s", fname, name,
                        json_kind(e));
    const cJSON *jd = NULL, *js = NULL, *jo = NULL;
    for (const cJSON *f = e->child; f; f = f->next) {
        const cJSON **slot = NULL;
        if (strcmp(f->string, "dtype") == 0) slot = &jd;
        else if (strcmp(f->string, "shape") == 0) slot = &js;
        else if (strcmp(f->string, "data_offsets") == 0) slot = &jo;
        else continue; /* unknown fields are ignored */
        if (*slot)
            return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: tensor '%s': duplicate field '%s'", fname, name,
                            f->string);
        *slot = f;
    }
    if (!jd || !js || !jo)
        return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: tensor '%s': missing field '%s'", fname, name,
                        !jd ? "dtype" : !js ? "shape" : "data_offsets");

    /* dtype */
    if (!cJSON_IsString(jd))
        return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: tensor '%s': dtype must be a string, got %s", fname, name,
                        json_kind(jd));
    int t = dtype_lookup(jd->valuestring);
    if (t < 0)
        return sdc_fail(err, errlen, SDC_E_UNSUPPORTED,
                        "%s: tensor '%s': unsupported dtype '%.32s' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 "
                        "U8 BOOL)",
                        fname, name, show(jd->valuestring).s);

    /* shape */
    sdc_tensor *tn = &s->tensors[r->idx];
    tn->type = (sdc_type)t;
    if (!cJSON_IsArray(js))
        return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: tensor '%s': shape must be an array, got %s", fname, name,
                        json_kind(js));
    int nd = cJSON_GetArraySize(js);
    if (nd > SDC_MAX_DIMS)
        return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: tensor '%s': shape has %d dimensions (at most %d)", fname,
                        name, nd, SDC_MAX_DIMS);
    uint64_t nelem = 1;
    bool overflow = false;
    int k = 0;
    for (const cJSON *d = js->child; d; d = d->next, k++) {
        uint64_t v;
        if (!json_uint(d, &v)) {
            char nb[48];
            num_str(d, nb, sizeof nb);
            return sdc_fail(err, errlen, SDC_E_FORMAT,
                            "%s: tensor '%s': shape[%d] must be an integer in [0, 2^53), got %s", fname, name, k, nb);
        }
        tn->shape[k] = (int64_t)v;
        if (!sdc_mul_u64(nelem, v, &nelem)) overflow = true;
    }
    tn->ndim = nd;
    char shp[160];
    sdc_shape_str(tn->shape, nd, shp, sizeof shp);
    uint64_t want = 0;
    if (overflow || !sdc_type_bytes(tn->type, nelem, &want))
        return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: tensor '%s': shape %s of %s overflows 64-bit size", fname,
                        name, shp, show(jd->valuestring).s);

    /* data_offsets */
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: tensor '%s': data_offsets must be an array [begin, end], got %s",
                        fname, name, cJSON_IsArray(jo) ? "an array of another length" : json_kind(jo));
    uint64_t b, en;
    if (!json_uint(jo->child, &b) || !json_uint(jo->child->next, &en)) {
        char nb0[48], nb1[48];
        num_str(jo->child, nb0, sizeof nb0);
        num_str(jo->child->next, nb1, sizeof nb1);
        return sdc_fail(err, errlen, SDC_E_FORMAT,
                        "%s: tensor '%s': data_offsets [%s, %s] must be integers in [0, 2^53)", fname, name, nb0, nb1);
    }
    if (en < b)
        return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu): end before begin",
                        fname, name, (unsigned long long)b, (unsigned long long)en);
    if (en > dsize)
        return sdc_fail(err, errlen, SDC_E_FORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu) run past the end of the data (%llu bytes)", fname,
                        name, (unsigned long long)b, (unsigned long long)en, (unsigned long long)dsize);
    if (en - b != want)
        return sdc_fail(err, errlen, SDC_E_FORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu) do not match shape %s of %s (%llu bytes)", fname,
                        name, (unsigned long long)b, (unsigned long long)en, shp, show(jd->valuestring).s,
                        (unsigned long long)want);
    tn->data = base + b;
    tn->nbytes = want;
    r->begin = b;
    r->end = en;
    return SDC_OK;
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static sdc_status parse_meta(sdc_st *s, const char *fname, const cJSON *m, char *err, size_t errlen) {
    if (!cJSON_IsObject(m))
        return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: __metadata__ must be an object, got %s", fname, json_kind(m));
    int64_t n = cJSON_GetArraySize(m);
    if (n == 0) return SDC_OK;
    s->meta_keys = calloc((size_t)n, sizeof *s->meta_keys);
    s->meta_vals = calloc((size_t)n, sizeof *s->meta_vals);
    if (!s->meta_keys || !s->meta_vals) return sdc_fail(err, errlen, SDC_E_NOMEM, "%s: out of memory", fname);
    for (const cJSON *e = m->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: __metadata__ '%s': value must be a string, got %s", fname,
                            show(e->string).s, json_kind(e));
        int64_t i = s->n_meta;
        s->meta_keys[i] = strdup(e->string);
        s->meta_vals[i] = strdup(e->valuestring);
        if (!s->meta_keys[i] || !s->meta_vals[i]) {
            free(s->meta_keys[i]);
            free(s->meta_vals[i]);
            return sdc_fail(err, errlen, SDC_E_NOMEM, "%s: out of memory", fname);
        }
        s->n_meta++;
    }
    /* duplicate keys: sort a copy of the key pointers (a hostile header may hold millions) */
    char **keys = malloc((size_t)s->n_meta * sizeof *keys);
    if (!keys) return sdc_fail(err, errlen, SDC_E_NOMEM, "%s: out of memory", fname);
    memcpy(keys, s->meta_keys, (size_t)s->n_meta * sizeof *keys);
    qsort(keys, (size_t)s->n_meta, sizeof *keys, str_cmp);
    sdc_status st = SDC_OK;
    for (int64_t i = 1; i < s->n_meta; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            st = sdc_fail(err, errlen, SDC_E_FORMAT, "%s: __metadata__: duplicate key '%s'", fname, show(keys[i]).s);
            break;
        }
    free(keys);
    return st;
}

static sdc_status parse_all(sdc_st *s, const char *fname, char *err, size_t errlen) {
    const uint8_t *p = s->map.data;
    size_t size = s->map.size;
    if (size < 8)
        return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: file is %zu bytes, too short for the 8-byte header length",
                        fname, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen > SDC_ST_MAX_HEADER)
        return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: header length %llu exceeds the %llu-byte limit", fname,
                        (unsigned long long)hlen, (unsigned long long)SDC_ST_MAX_HEADER);
    if (hlen > size - 8)
        return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: header length %llu runs past the end of the file (%zu bytes)",
                        fname, (unsigned long long)hlen, size);
    const char *h = (const char *)p + 8;
    if (hlen < 2 || h[0] != '{')
        return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: header is not a JSON object (must start with '{')", fname);
    size_t at = 0;
    const char *why = check_header_text((const uint8_t *)h, (size_t)hlen, &at);
    if (why) return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: header has %s at byte %zu", fname, why, at + 8);

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, (size_t)hlen, &end, 0);
    if (!root) {
        /* cJSON points end at the failure (its global error pointer is not thread-safe) */
        size_t off = (end && end >= h && end <= h + hlen) ? (size_t)(end - h) : 0;
        return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: header is not valid JSON (near byte %zu)", fname, off + 8);
    }
    sdc_status st = SDC_OK;
    /* only whitespace may follow the object (writers pad with spaces) */
    for (const char *q = end; q < h + hlen; q++) {
        if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') {
            st = sdc_fail(err, errlen, SDC_E_FORMAT, "%s: trailing bytes after the JSON header at byte %zu", fname,
                          (size_t)(q - h) + 8);
            goto done;
        }
    }
    if (!cJSON_IsObject(root)) {
        st = sdc_fail(err, errlen, SDC_E_FORMAT, "%s: header is not a JSON object", fname);
        goto done;
    }

    const uint8_t *base = p + 8 + hlen;
    uint64_t dsize = (uint64_t)(size - 8 - hlen);
    const cJSON *meta = NULL;
    int64_t nt = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (meta) {
                st = sdc_fail(err, errlen, SDC_E_FORMAT, "%s: duplicate __metadata__", fname);
                goto done;
            }
            meta = e;
        } else {
            nt++;
        }
    }
    if (nt > (int64_t)(UINT32_MAX / 4)) {
        st = sdc_fail(err, errlen, SDC_E_FORMAT, "%s: too many tensors (%lld)", fname, (long long)nt);
        goto done;
    }
    if (meta && (st = parse_meta(s, fname, meta, err, errlen)) != SDC_OK) goto done;

    range *rs = NULL;
    if (nt) {
        s->tensors = calloc((size_t)nt, sizeof *s->tensors);
        s->names = calloc((size_t)nt, sizeof *s->names);
        s->nslots = 16;
        while (s->nslots < 2 * (uint64_t)nt) s->nslots *= 2;
        s->slots = calloc(s->nslots, sizeof *s->slots);
        rs = calloc((size_t)nt, sizeof *rs);
        if (!s->tensors || !s->names || !s->slots || !rs) {
            free(rs);
            st = sdc_fail(err, errlen, SDC_E_NOMEM, "%s: out of memory for %lld tensors", fname, (long long)nt);
            goto done;
        }
    }
    for (const cJSON *e = root->child; e; e = e->next) {
        if (e == meta) continue;
        int64_t i = s->n;
        if (slot_find(s, e->string) >= 0) {
            st = sdc_fail(err, errlen, SDC_E_FORMAT, "%s: duplicate tensor name '%s'", fname, show(e->string).s);
            break;
        }
        s->names[i] = strdup(e->string);
        if (!s->names[i]) {
            st = sdc_fail(err, errlen, SDC_E_NOMEM, "%s: out of memory", fname);
            break;
        }
        s->tensors[i].name = s->names[i];
        s->n++;
        slot_insert(s, i);
        rs[i].idx = i;
        if ((st = parse_tensor(s, fname, e, base, dsize, &rs[i], err, errlen)) != SDC_OK) break;
    }
    if (st == SDC_OK && nt) {
        /* no two non-empty ranges may share a byte */
        qsort(rs, (size_t)nt, sizeof *rs, range_cmp);
        uint64_t hi = 0;
        int64_t hi_idx = -1;
        for (int64_t i = 0; i < nt; i++) {
            if (rs[i].begin == rs[i].end) continue;
            if (hi_idx >= 0 && rs[i].begin < hi) {
                const sdc_tensor *a = &s->tensors[hi_idx], *b = &s->tensors[rs[i].idx];
                st = sdc_fail(err, errlen, SDC_E_FORMAT,
                              "%s: tensor '%s' data_offsets [%llu, %llu) overlap tensor '%s' (ends at %llu)", fname,
                              show(b->name).s, (unsigned long long)rs[i].begin, (unsigned long long)rs[i].end, show(a->name).s,
                              (unsigned long long)hi);
                break;
            }
            hi = rs[i].end;
            hi_idx = rs[i].idx;
        }
    }
    free(rs);
    if (st == SDC_OK) {
        s->aligned = true;
        for (int64_t i = 0; i < s->n; i++) {
            const sdc_type_traits *tr = sdc_type_traits_of(s->tensors[i].type);
            if ((uintptr_t)s->tensors[i].data % (uintptr_t)tr->block_bytes) s->aligned = false;
        }
    }
done:
    cJSON_Delete(root);
    return st;
}

static sdc_status open_common(sdc_st *s, const char *fname, sdc_st **out, char *err, size_t errlen) {
    sdc_status st = parse_all(s, fname, err, errlen);
    if (st != SDC_OK) {
        sdc_st_close(s);
        return st;
    }
    *out = s;
    return SDC_OK;
}

sdc_status sdc_st_open(const char *path, sdc_st **out, char *err, size_t errlen) {
    if (!out) return sdc_fail(err, errlen, SDC_E_INVALID, "sdc_st_open: out is NULL");
    *out = NULL;
    if (!path) return sdc_fail(err, errlen, SDC_E_INVALID, "sdc_st_open: path is NULL");
    sdc_st *s = calloc(1, sizeof *s);
    if (!s) return sdc_fail(err, errlen, SDC_E_NOMEM, "%s: out of memory", path);
    sdc_status st = sdc_map_file(path, &s->map, err, errlen);
    if (st != SDC_OK) {
        free(s);
        return st;
    }
    s->owns_map = true;
    return open_common(s, path, out, err, errlen);
}

sdc_status sdc_st_open_memory(const void *data, size_t size, sdc_st **out, char *err, size_t errlen) {
    if (!out) return sdc_fail(err, errlen, SDC_E_INVALID, "sdc_st_open_memory: out is NULL");
    *out = NULL;
    if (!data && size) return sdc_fail(err, errlen, SDC_E_INVALID, "sdc_st_open_memory: data is NULL");
    sdc_st *s = calloc(1, sizeof *s);
    if (!s) return sdc_fail(err, errlen, SDC_E_NOMEM, "%s: out of memory", MEMORY_NAME);
    s->map.data = data;
    s->map.size = size;
    return open_common(s, MEMORY_NAME, out, err, errlen);
}

void sdc_st_close(sdc_st *s) {
    if (!s) return;
    if (s->owns_map) sdc_unmap(&s->map);
    if (s->names)
        for (int64_t i = 0; i < s->n; i++) free(s->names[i]);
    free(s->names);
    free(s->tensors);
    free(s->slots);
    for (int64_t i = 0; i < s->n_meta; i++) {
        free(s->meta_keys[i]);
        free(s->meta_vals[i]);
    }
    free(s->meta_keys);
    free(s->meta_vals);
    free(s);
}

const sdc_map *sdc_st_map(const sdc_st *s) { return &s->map; }
int64_t sdc_st_tensor_count(const sdc_st *s) { return s->n; }

const sdc_tensor *sdc_st_tensor(const sdc_st *s, int64_t i) {
    return (i >= 0 && i < s->n) ? &s->tensors[i] : NULL;
}

const sdc_tensor *sdc_st_find_tensor(const sdc_st *s, const char *name) {
    if (!name) return NULL;
    int64_t i = slot_find(s, name);
    return i >= 0 ? &s->tensors[i] : NULL;
}

bool sdc_st_aligned(const sdc_st *s) { return s->aligned; }

int64_t sdc_st_meta_count(const sdc_st *s) { return s->n_meta; }
const char *sdc_st_meta_key(const sdc_st *s, int64_t i) { return (i >= 0 && i < s->n_meta) ? s->meta_keys[i] : NULL; }
const char *sdc_st_meta_value(const sdc_st *s, int64_t i) {
    return (i >= 0 && i < s->n_meta) ? s->meta_vals[i] : NULL;
}

const char *sdc_st_meta_get(const sdc_st *s, const char *key) {
    for (int64_t i = 0; key && i < s->n_meta; i++)
        if (strcmp(s->meta_keys[i], key) == 0) return s->meta_vals[i];
    return NULL;
}

/* ------------------------------------------------------------------ writer */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_u64(sbuf *b, uint64_t v) {
    char t[24];
    int n = snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    sb_put(b, t, (size_t)n);
}

/* A JSON string literal: quotes, backslashes and control bytes escaped, UTF-8 passed through. */
static void sb_json_str(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        uint8_t c = (uint8_t)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_put(b, e, 2);
        } else if (c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            sb_put(b, e, 6);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static bool write_all(int fd, const void *p, size_t n) {
    const uint8_t *q = p;
    while (n) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t w = write(fd, q, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        q += w;
        n -= (size_t)w;
    }
    return true;
}

sdc_status sdc_st_write(const char *path, const sdc_tensor *tensors, int64_t n, const char *const *meta,
                        int64_t n_meta, char *err, size_t errlen) {
    if (!path) return sdc_fail(err, errlen, SDC_E_INVALID, "sdc_st_write: path is NULL");
    if (n < 0 || n_meta < 0 || (n && !tensors) || (n_meta && !meta))
        return sdc_fail(err, errlen, SDC_E_INVALID, "%s: invalid tensor or metadata list", path);

    /* validate everything before touching the file system */
    for (int64_t i = 0; i < n; i++) {
        const sdc_tensor *t = &tensors[i];
        if (!t->name || !*t->name)
            return sdc_fail(err, errlen, SDC_E_INVALID, "%s: tensor %lld has no name", path, (long long)i);
        if (strcmp(t->name, "__metadata__") == 0)
            return sdc_fail(err, errlen, SDC_E_INVALID, "%s: '__metadata__' cannot be a tensor name", path);
        if (!valid_utf8_str(t->name))
            return sdc_fail(err, errlen, SDC_E_INVALID, "%s: tensor %lld: name is not valid UTF-8", path, (long long)i);
        const char *dn = dtype_name(t->type);
        if (!dn)
            return sdc_fail(err, errlen, SDC_E_UNSUPPORTED,
                            "%s: tensor '%s': type %s cannot be stored in safetensors (block-quantized or unknown)",
                            path, show(t->name).s, sdc_type_name(t->type));
        if (t->ndim < 0 || t->ndim > SDC_MAX_DIMS)
            return sdc_fail(err, errlen, SDC_E_INVALID, "%s: tensor '%s': ndim %d out of range", path, show(t->name).s,
                            t->ndim);
        uint64_t ne = 1, bytes;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0 || (double)t->shape[d] >= MAX_EXACT || !sdc_mul_u64(ne, (uint64_t)t->shape[d], &ne))
                return sdc_fail(err, errlen, SDC_E_INVALID, "%s: tensor '%s': bad shape", path, show(t->name).s);
        }
        if (!sdc_type_bytes(t->type, ne, &bytes) || bytes != t->nbytes)
            return sdc_fail(err, errlen, SDC_E_INVALID,
                            "%s: tensor '%s': nbytes %llu does not match its shape and type", path, show(t->name).s,
                            (unsigned long long)t->nbytes);
        if (bytes && !t->data)
            return sdc_fail(err, errlen, SDC_E_INVALID, "%s: tensor '%s': data is NULL", path, show(t->name).s);
        for (int64_t j = 0; j < i; j++)
            if (strcmp(tensors[j].name, t->name) == 0)
                return sdc_fail(err, errlen, SDC_E_INVALID, "%s: duplicate tensor name '%s'", path, show(t->name).s);
    }
    for (int64_t i = 0; i < n_meta; i++) {
        const char *k = meta[2 * i], *v = meta[2 * i + 1];
        if (!k || !v || !valid_utf8_str(k) || !valid_utf8_str(v))
            return sdc_fail(err, errlen, SDC_E_INVALID, "%s: metadata entry %lld is NULL or not UTF-8", path,
                            (long long)i);
        for (int64_t j = 0; j < i; j++)
            if (strcmp(meta[2 * j], k) == 0)
                return sdc_fail(err, errlen, SDC_E_INVALID, "%s: duplicate metadata key '%s'", path, show(k).s);
    }

    sbuf b = {0};
    sb_put(&b, "{", 1);
    bool first = true;
    if (n_meta) {
        sb_str(&b, "\"__metadata__\":{");
        for (int64_t i = 0; i < n_meta; i++) {
            if (i) sb_put(&b, ",", 1);
            sb_json_str(&b, meta[2 * i]);
            sb_put(&b, ":", 1);
            sb_json_str(&b, meta[2 * i + 1]);
        }
        sb_put(&b, "}", 1);
        first = false;
    }
    uint64_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        const sdc_tensor *t = &tensors[i];
        if (!first) sb_put(&b, ",", 1);
        first = false;
        sb_json_str(&b, t->name);
        sb_str(&b, ":{\"dtype\":\"");
        sb_str(&b, dtype_name(t->type));
        sb_str(&b, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d) sb_put(&b, ",", 1);
            sb_u64(&b, (uint64_t)t->shape[d]);
        }
        sb_str(&b, "],\"data_offsets\":[");
        sb_u64(&b, off);
        sb_put(&b, ",", 1);
        if (!sdc_add_u64(off, t->nbytes, &off) || (double)off >= MAX_EXACT) {
            free(b.p);
            return sdc_fail(err, errlen, SDC_E_INVALID, "%s: total data size overflows", path);
        }
        sb_u64(&b, off);
        sb_str(&b, "]}");
    }
    sb_put(&b, "}", 1);
    while (b.len % 8) sb_put(&b, " ", 1);
    if (b.oom) {
        free(b.p);
        return sdc_fail(err, errlen, SDC_E_NOMEM, "%s: out of memory building the header", path);
    }
    if (b.len > SDC_ST_MAX_HEADER) {
        free(b.p);
        return sdc_fail(err, errlen, SDC_E_INVALID, "%s: header of %zu bytes exceeds the limit", path, b.len);
    }

    size_t pl = strlen(path);
    char *tmp = malloc(pl + 5);
    if (!tmp) {
        free(b.p);
        return sdc_fail(err, errlen, SDC_E_NOMEM, "%s: out of memory", path);
    }
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        sdc_status st = sdc_fail(err, errlen, SDC_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        free(b.p);
        return st;
    }
    uint8_t lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (uint8_t)((uint64_t)b.len >> (8 * i));
    bool ok = write_all(fd, lenb, 8) && write_all(fd, b.p, b.len);
    for (int64_t i = 0; ok && i < n; i++)
        if (tensors[i].nbytes) ok = write_all(fd, tensors[i].data, (size_t)tensors[i].nbytes);
    int e = ok ? 0 : errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        e = errno;
    }
    free(b.p);
    if (!ok) {
        unlink(tmp);
        sdc_status st = sdc_fail(err, errlen, SDC_E_IO, "%s: write failed: %s", tmp, strerror(e));
        free(tmp);
        return st;
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        sdc_status st = sdc_fail(err, errlen, SDC_E_IO, "%s: cannot rename %s into place: %s", path, tmp, strerror(e));
        free(tmp);
        return st;
    }
    free(tmp);
    return SDC_OK;
}
