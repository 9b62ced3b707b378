/* vocab.c - see vocab.h. gzip is decoded with zlib (gzread reads plain files too). */
#include "vocab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common.h"

#define VOCAB_MAX_BYTES (64u << 20) /* the real file is 3.2 MB unpacked */
#define READ_CHUNK (64u << 10)      /* inflate this much at a time, then count lines */

sdc_status sdc_merges_load(const char *path, sdc_merges *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    gzFile gz = gzopen(path, "rb");
    if (!gz) return sdc_fail(err, errlen, SDC_E_IO, "%s: cannot open vocabulary: %s", path, strerror(errno));
    /* Only the first SDC_CLIP_N_MERGES rules are used (OpenAI's file has 262144 lines, 3.2 MB
     * unpacked; CLIP's rules end at line 48895, 0.6 MB in): reading stops once that many
     * non-empty lines plus a possible header are in, which saves inflating the other 80%. */
    size_t cap = 1 << 20, len = 0, scan = 0, line0 = 0;
    int content = 0;
    char *buf = malloc(cap + 1);
    while (content <= SDC_CLIP_N_MERGES) {
        if (!buf) break;
        if (len == cap) {
            if (cap >= VOCAB_MAX_BYTES) {
                free(buf);
                gzclose(gz);
                return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: vocabulary larger than %u bytes", path, VOCAB_MAX_BYTES);
            }
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
        const size_t want = cap - len < READ_CHUNK ? cap - len : READ_CHUNK;
        int r = gzread(gz, buf + len, (unsigned)want);
        if (r < 0) {
            free(buf);
            gzclose(gz);
            return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: cannot decompress vocabulary", path);
        }
        if (r == 0) break;
        len += (size_t)r;
        for (; scan < len; scan++) /* count the complete lines with something on them */
            if (buf[scan] == '\n') {
                size_t l = scan - line0;
                if (l && buf[scan - 1] == '\r') l--;
                content += l > 0;
                line0 = scan + 1;
            }
    }
    gzclose(gz);
    if (!buf) return sdc_fail(err, errlen, SDC_E_NOMEM, "%s: out of memory", path);
    buf[len] = '\0';
    if (memchr(buf, '\0', len))
        return free(buf), sdc_fail(err, errlen, SDC_E_FORMAT, "%s: not a text vocabulary (NUL byte)", path);

    out->rules = calloc(SDC_CLIP_N_MERGES, sizeof *out->rules);
    if (!out->rules) return free(buf), sdc_fail(err, errlen, SDC_E_NOMEM, "%s: out of memory", path);
    out->storage = buf;
    char *p = buf;
    int line = 0;
    while (*p && out->n < SDC_CLIP_N_MERGES) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r') p[--l] = '\0';
        line++;
        if (line == 1 && strstr(p, "#version")) {
            /* header: "#version: 0.2" (merges.txt) or "bpe_simple_vocab_16e6.txt#version: 0.2" */
        } else if (l) {
            char *sp = strchr(p, ' ');
            if (!sp || sp == p || !sp[1] || strchr(sp + 1, ' ')) {
                sdc_status s = sdc_fail(err, errlen, SDC_E_FORMAT, "%s: line %d: expected a merge rule \"a b\"", path, line);
                sdc_merges_free(out);
                return s;
            }
            out->rules[out->n++] = p;
        }
        if (!nl) break;
        p = nl + 1;
    }
    if (out->n < SDC_CLIP_N_MERGES) {
        int n = out->n;
        sdc_merges_free(out);
        return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: %d merge rules, CLIP needs %d (is this the CLIP BPE vocabulary?)",
                        path, n, SDC_CLIP_N_MERGES);
    }
    return SDC_OK;
}

void sdc_merges_free(sdc_merges *m) {
    free(m->rules);
    free(m->storage);
    memset(m, 0, sizeof *m);
}
