/* tokenizer.c - see tokenizer.h. Text is handled as arrays of code points (cpbuf) through
 * the cleaning steps, then as UTF-8 bytes for BPE. No global mutable state. */
#include "tokenizer.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "gguf.h"
#include "unicode_tables.h"

/* ------------------------------------------------------------------ code point buffers */

typedef struct cpbuf {
    uint32_t *v;
    size_t n, cap;
    bool oom;
} cpbuf;

static void cb_push(cpbuf *b, uint32_t c) {
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        uint32_t *nv = realloc(b->v, nc * sizeof *nv);
        if (!nv) { b->oom = true; return; }
        b->v = nv;
        b->cap = nc;
    }
    b->v[b->n++] = c;
}

static void cb_push_utf8(cpbuf *b, const char *s); /* below */

static bool cb_equal(const cpbuf *a, const cpbuf *b) {
    return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof *a->v) == 0);
}

/* Replaces *a by *b (taking its memory) and empties b. */
static void cb_swap_in(cpbuf *a, cpbuf *b) {
    free(a->v);
    *a = *b;
    memset(b, 0, sizeof *b);
}

/* Decodes UTF-8; invalid or truncated sequences, overlongs and surrogates give U+FFFD per byte. */
static void utf8_decode(const unsigned char *s, size_t len, cpbuf *out) {
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) { cb_push(out, c); i++; continue; }
        int n = c >= 0xF0 && c <= 0xF4 ? 3 : c >= 0xE0 ? (c <= 0xEF ? 2 : 0) : c >= 0xC2 ? 1 : 0;
        uint32_t cp = n == 3 ? c & 7 : n == 2 ? c & 15 : c & 31;
        bool ok = n > 0 && i + (size_t)n < len;
        for (int k = 1; ok && k <= n; k++) {
            unsigned cc = s[i + (size_t)k];
            if ((cc & 0xC0) != 0x80) ok = false;
            else cp = (cp << 6) | (cc & 0x3F);
        }
        if (ok && ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp < 0xE000)))
            ok = false;
        if (!ok) { cb_push(out, 0xFFFD); i++; continue; }
        cb_push(out, cp);
        i += (size_t)n + 1;
    }
}

static size_t utf8_put(uint32_t c, char *o) {
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xC0 | (c >> 6)); o[1] = (char)(0x80 | (c & 63)); return 2; }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12)); o[1] = (char)(0x80 | ((c >> 6) & 63)); o[2] = (char)(0x80 | (c & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18)); o[1] = (char)(0x80 | ((c >> 12) & 63));
    o[2] = (char)(0x80 | ((c >> 6) & 63)); o[3] = (char)(0x80 | (c & 63));
    return 4;
}

static void cb_push_utf8(cpbuf *b, const char *s) { utf8_decode((const unsigned char *)s, strlen(s), b); }

/* ------------------------------------------------------------------ table look-ups */

static int uc_class(uint32_t c) { /* 1 letter, 2 number, 0 other */
    if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ? 1 : (c >= '0' && c <= '9') ? 2 : 0;
    int lo = 0, hi = sdc_uc_n_classes - 1;
    while (lo <= hi) {
        int m = (lo + hi) / 2;
        if (c < sdc_uc_classes[m].first) hi = m - 1;
        else if (c > sdc_uc_classes[m].last) lo = m + 1;
        else return sdc_uc_classes[m].value;
    }
    return 0;
}

static int uc_ccc(uint32_t c) {
    if (c < 0x300) return 0;
    int lo = 0, hi = sdc_uc_n_ccc - 1;
    while (lo <= hi) {
        int m = (lo + hi) / 2;
        if (c < sdc_uc_ccc[m].first) hi = m - 1;
        else if (c > sdc_uc_ccc[m].last) lo = m + 1;
        else return sdc_uc_ccc[m].value;
    }
    return 0;
}

static uint32_t uc_lower1(uint32_t c) {
    if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    int lo = 0, hi = sdc_uc_n_lower - 1, found = -1;
    while (lo <= hi) { /* last run with first <= c */
        int m = (lo + hi) / 2;
        if (sdc_uc_lower[m].first <= c) { found = m; lo = m + 1; }
        else hi = m - 1;
    }
    if (found < 0) return c;
    const sdc_uc_case_run *r = &sdc_uc_lower[found];
    uint32_t off = c - r->first;
    if (off % r->stride == 0 && off / r->stride < r->count) return (uint32_t)((int32_t)c + r->delta);
    return c;
}

/* Python str.isspace() (what re's \s matches in str patterns). */
static bool uc_space(uint32_t c) {
    return (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static const uint32_t *uc_decomp(uint32_t c) {
    if (c < 0xC0) return NULL;
    int lo = 0, hi = sdc_uc_n_decomps - 1;
    while (lo <= hi) {
        int m = (lo + hi) / 2;
        if (c < sdc_uc_decomps[m][0]) hi = m - 1;
        else if (c > sdc_uc_decomps[m][0]) lo = m + 1;
        else return sdc_uc_decomps[m];
    }
    return NULL;
}

enum { HS = 0xAC00, HL = 0x1100, HV = 0x1161, HT = 0x11A7, HLN = 19, HVN = 21, HTN = 28, HSN = 11172 };

static uint32_t uc_compose(uint32_t a, uint32_t b) {
    if (a >= HL && a < HL + HLN && b >= HV && b < HV + HVN) return HS + ((a - HL) * HVN + (b - HV)) * HTN;
    if (a >= HS && a < HS + HSN && (a - HS) % HTN == 0 && b > HT && b < HT + HTN) return a + (b - HT);
    int lo = 0, hi = sdc_uc_n_comps - 1;
    while (lo <= hi) {
        int m = (lo + hi) / 2;
        const uint32_t *e = sdc_uc_comps[m];
        if (a < e[0] || (a == e[0] && b < e[1])) hi = m - 1;
        else if (a > e[0] || b > e[1]) lo = m + 1;
        else return e[2];
    }
    return 0;
}

static void decompose_into(uint32_t c, cpbuf *o) {
    if (c >= HS && c < HS + HSN) {
        uint32_t s = c - HS;
        cb_push(o, HL + s / (HVN * HTN));
        cb_push(o, HV + (s % (HVN * HTN)) / HTN);
        if (s % HTN) cb_push(o, HT + s % HTN);
        return;
    }
    const uint32_t *d = uc_decomp(c);
    if (!d) { cb_push(o, c); return; }
    decompose_into(d[1], o);
    if (d[2]) decompose_into(d[2], o);
}

/* Unicode NFC (UAX #15): full canonical decomposition, canonical ordering, composition. */
static void nfc(cpbuf *t) {
    bool simple = true;
    for (size_t i = 0; i < t->n && simple; i++) simple = t->v[i] < 0x300;
    if (simple) return;
    cpbuf d = {0};
    for (size_t i = 0; i < t->n; i++) decompose_into(t->v[i], &d);
    if (d.oom) { free(d.v); t->oom = true; return; }
    for (size_t i = 1; i < d.n; i++) { /* stable insertion sort of non-starter runs */
        int cc = uc_ccc(d.v[i]);
        if (!cc) continue;
        size_t j = i;
        uint32_t c = d.v[i];
        while (j > 0) {
            int pc = uc_ccc(d.v[j - 1]);
            if (pc <= cc) break;
            d.v[j] = d.v[j - 1];
            j--;
        }
        d.v[j] = c;
    }
    size_t n = 0;
    long sp = -1;
    int lastcc = 0;
    for (size_t i = 0; i < d.n; i++) {
        uint32_t c = d.v[i];
        int cc = uc_ccc(c);
        if (sp >= 0 && ((size_t)sp + 1 == n || (lastcc != 0 && lastcc < cc))) {
            uint32_t k = uc_compose(d.v[sp], c);
            if (k) { d.v[sp] = k; continue; }
        }
        if (cc == 0) { sp = (long)n; lastcc = 0; }
        else lastcc = cc;
        d.v[n++] = c;
    }
    d.n = n;
    cb_swap_in(t, &d);
}

/* ------------------------------------------------------------------ HTML entities */

static const sdc_uc_entity *entity_find(const char *name, int flag) {
    int lo = 0, hi = sdc_uc_n_entities - 1;
    while (lo <= hi) {
        int m = (lo + hi) / 2;
        int r = strcmp(name, sdc_uc_entities[m].name);
        if (r < 0) hi = m - 1;
        else if (r > 0) lo = m + 1;
        else return (sdc_uc_entities[m].flags & flag) ? &sdc_uc_entities[m] : NULL;
    }
    return NULL;
}

/* Windows-1252 for bytes 0x80-0x9F; the five undefined ones stay themselves ("sloppy"). */
static const uint16_t cp1252_hi[32] = {
    0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
    0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178};

/* Python html.unescape's numeric reference rule. Returns false to drop the reference. */
static bool charref_value(uint64_t num, uint32_t *out) {
    if (num == 0) { *out = 0xFFFD; return true; }
    if (num == 0x0D) { *out = 0x0D; return true; }
    if (num >= 0x80 && num <= 0x9F) { *out = cp1252_hi[num - 0x80]; return true; }
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) { *out = 0xFFFD; return true; }
    if ((num >= 1 && num <= 8) || num == 0x0B || (num >= 0x0E && num <= 0x1F) || (num >= 0x7F && num <= 0x9F) ||
        (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE)
        return false;
    *out = (uint32_t)num;
    return true;
}

static bool is_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static bool is_hex(uint32_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static int hexval(uint32_t c) { return is_digit(c) ? (int)c - '0' : (int)(c | 32) - 'a' + 10; }

/* Parses digits at t[i..] in base 10 or 16 (saturating); returns the count consumed. */
static size_t parse_num(const cpbuf *t, size_t i, int base, uint64_t *num) {
    size_t k = 0;
    *num = 0;
    while (i + k < t->n && (base == 16 ? is_hex(t->v[i + k]) : is_digit(t->v[i + k]))) {
        uint64_t d = (uint64_t)hexval(t->v[i + k]);
        *num = *num > 0xFFFFFFFFull ? *num : *num * (uint64_t)base + d;
        k++;
    }
    return k;
}

/* Python html.unescape (HTML5 rules). */
static void html_unescape(cpbuf *t) {
    size_t i = 0;
    bool any = false;
    for (size_t k = 0; k < t->n && !any; k++) any = t->v[k] == '&';
    if (!any) return;
    cpbuf o = {0};
    while (i < t->n) {
        uint32_t c = t->v[i];
        if (c != '&' || i + 1 >= t->n) { cb_push(&o, c); i++; continue; }
        size_t j = i + 1;
        if (t->v[j] == '#') {
            int base = 10;
            size_t p = j + 1;
            if (p < t->n && (t->v[p] == 'x' || t->v[p] == 'X')) { base = 16; p++; }
            uint64_t num;
            size_t nd = parse_num(t, p, base, &num);
            if (nd == 0) { cb_push(&o, c); i++; continue; }
            p += nd;
            if (p < t->n && t->v[p] == ';') p++;
            uint32_t v;
            if (charref_value(num, &v)) cb_push(&o, v);
            i = p;
            continue;
        }
        /* named: [^\t\n\f <&#;]{1,32};? */
        size_t p = j;
        while (p < t->n && p - j < 32) {
            uint32_t d = t->v[p];
            if (d == '\t' || d == '\n' || d == '\f' || d == ' ' || d == '<' || d == '&' || d == '#' || d == ';') break;
            p++;
        }
        if (p == j) { cb_push(&o, c); i++; continue; }
        bool semi = p < t->n && t->v[p] == ';';
        size_t len = p - j + (semi ? 1 : 0);
        /* names are ASCII: build the ASCII prefix for look-ups */
        char name[40];
        size_t an = 0;
        while (an < len && t->v[j + an] < 0x80) { name[an] = (char)t->v[j + an]; an++; }
        name[an] = '\0';
        const sdc_uc_entity *e = an == len ? entity_find(name, 1) : NULL;
        if (e) {
            cb_push_utf8(&o, e->value);
            i = j + len;
            continue;
        }
        size_t x = len - 1 < an ? len - 1 : an;
        for (; x >= 2; x--) {
            name[x] = '\0';
            e = entity_find(name, 1);
            if (e) break;
        }
        if (e) {
            cb_push_utf8(&o, e->value);
            i = j + x; /* the rest of the name is copied as text */
        } else {
            for (size_t k = i; k < j + len; k++) cb_push(&o, t->v[k]);
            i = j + len;
        }
    }
    if (o.oom) t->oom = true;
    cb_swap_in(t, &o);
}

/* ------------------------------------------------------------------ ftfy subset */

/* ftfy unescape_html: &#?[0-9A-Za-z]{1,24}; known to ftfy's table, or numeric. */
static void ftfy_unescape(cpbuf *t) {
    cpbuf o = {0};
    for (size_t i = 0; i < t->n;) {
        uint32_t c = t->v[i];
        if (c == '&') {
            size_t j = i + 1, p;
            if (j < t->n && t->v[j] == '#') j++;
            for (p = j; p < t->n && p - j < 24; p++) {
                uint32_t d = t->v[p];
                if (!(is_digit(d) || (d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z'))) break;
            }
            if (p > j && p < t->n && t->v[p] == ';') {
                char name[32];
                size_t k = 0;
                for (size_t q = i + 1; q <= p; q++) name[k++] = (char)t->v[q];
                name[k] = '\0';
                bool done = false;
                if (name[0] != '#') {
                    const sdc_uc_entity *e = entity_find(name, 2);
                    if (e) { cb_push_utf8(&o, e->value); done = true; }
                } else {
                    /* html.unescape of the whole match; kept when it would leave the ';' */
                    size_t q = 1;
                    int base = 10;
                    if (name[1] == 'x' || name[1] == 'X') { base = 16; q = 2; }
                    size_t nd = 0;
                    uint64_t num = 0;
                    while (name[q + nd] != ';' && (base == 16 ? is_hex((unsigned char)name[q + nd]) : is_digit((unsigned char)name[q + nd]))) {
                        num = num > 0xFFFFFFFFull ? num : num * (uint64_t)base + (uint64_t)hexval((unsigned char)name[q + nd]);
                        nd++;
                    }
                    if (nd > 0 && name[q + nd] == ';') {
                        uint32_t v;
                        if (charref_value(num, &v)) cb_push(&o, v);
                        done = true;
                    }
                }
                if (done) { i = p + 1; continue; }
            }
        }
        cb_push(&o, c);
        i++;
    }
    if (o.oom) t->oom = true;
    cb_swap_in(t, &o);
}

/* Byte value of c in sloppy Windows-1252 (Latin-1 plus the 0x80-0x9F table), or -1. */
static int sloppy1252_byte(uint32_t c) {
    if (c < 0x80 || (c >= 0xA0 && c <= 0xFF)) return (int)c;
    for (int k = 0; k < 32; k++)
        if (cp1252_hi[k] == c) return 0x80 + k;
    return -1;
}

/* Mojibake: a maximal run of sloppy-1252 characters (with something non-ASCII in it) whose
 * bytes are valid UTF-8 containing a multi-byte sequence is replaced by its decoding. */
static void fix_mojibake(cpbuf *t) {
    cpbuf o = {0};
    size_t i = 0;
    unsigned char *bytes = NULL;
    while (i < t->n) {
        size_t j = i;
        bool hi = false;
        while (j < t->n && sloppy1252_byte(t->v[j]) >= 0) {
            hi |= t->v[j] >= 0x80;
            j++;
        }
        if (j == i) { cb_push(&o, t->v[i]); i++; continue; }
        bool fixed = false;
        if (hi) {
            unsigned char *nb = realloc(bytes, j - i);
            if (nb) {
                bytes = nb;
                for (size_t k = i; k < j; k++) bytes[k - i] = (unsigned char)sloppy1252_byte(t->v[k]);
                cpbuf d = {0};
                utf8_decode(bytes, j - i, &d);
                bool valid = !d.oom && d.n < j - i;
                for (size_t k = 0; valid && k < d.n; k++)
                    if (d.v[k] == 0xFFFD) valid = false;
                if (valid) {
                    for (size_t k = 0; k < d.n; k++) cb_push(&o, d.v[k]);
                    fixed = true;
                }
                free(d.v);
            }
        }
        if (!fixed)
            for (size_t k = i; k < j; k++) cb_push(&o, t->v[k]);
        i = j;
    }
    free(bytes);
    if (o.oom) t->oom = true;
    cb_swap_in(t, &o);
}

static bool ftfy_control(uint32_t c) {
    return c <= 8 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) || c == 0xFEFF ||
           (c >= 0xFFF9 && c <= 0xFFFC);
}

/* Ligatures (ftfy chardata LIGATURES) -> ASCII/Latin text, or NULL. */
static const char *ligature(uint32_t c) {
    switch (c) {
    case 0x132: return "IJ";
    case 0x133: return "ij";
    case 0x149: return "\xca\xbcn";
    case 0x1C4: return "D\xc5\xbd";
    case 0x1C5: return "D\xc5\xbe";
    case 0x1C6: return "d\xc5\xbe";
    case 0x1C7: return "LJ";
    case 0x1C8: return "Lj";
    case 0x1C9: return "lj";
    case 0x1CA: return "NJ";
    case 0x1CB: return "Nj";
    case 0x1CC: return "nj";
    case 0x1F1: return "DZ";
    case 0x1F2: return "Dz";
    case 0x1F3: return "dz";
    case 0xFB00: return "ff";
    case 0xFB01: return "fi";
    case 0xFB02: return "fl";
    case 0xFB03: return "ffi";
    case 0xFB04: return "ffl";
    case 0xFB05: return "\xc5\xbft";
    case 0xFB06: return "st";
    default: return NULL;
    }
}

static const uint32_t *width_map(uint32_t c) {
    if (c != 0x3000 && (c < 0xFF01 || c > 0xFFEF)) return NULL;
    int lo = 0, hi = sdc_uc_n_width - 1;
    while (lo <= hi) {
        int m = (lo + hi) / 2;
        if (c < sdc_uc_width[m][0]) hi = m - 1;
        else if (c > sdc_uc_width[m][0]) lo = m + 1;
        else return sdc_uc_width[m];
    }
    return NULL;
}

/* The character-level fixes, in ftfy's order after fix_encoding. */
static void ftfy_chars(cpbuf *t) {
    cpbuf o = {0};
    /* c1 controls, ligatures, width, quotes */
    for (size_t i = 0; i < t->n; i++) {
        uint32_t c = t->v[i];
        if (c >= 0x80 && c <= 0x9F) c = cp1252_hi[c - 0x80];
        const char *lig = ligature(c);
        if (lig) { cb_push_utf8(&o, lig); continue; }
        const uint32_t *wm = width_map(c);
        if (wm) {
            cb_push(&o, wm[1]);
            if (wm[2]) cb_push(&o, wm[2]);
            continue;
        }
        if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B)) c = '\'';
        else if (c >= 0x201C && c <= 0x201F) c = '"';
        cb_push(&o, c);
    }
    /* line breaks, terminal escapes, control characters */
    size_t n = 0;
    for (size_t i = 0; i < o.n; i++) {
        uint32_t c = o.v[i];
        if (c == '\r' && i + 1 < o.n && o.v[i + 1] == '\n') continue;
        if (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85) c = '\n';
        if (c == 0x1B && i + 1 < o.n && o.v[i + 1] == '[') { /* \x1b[ [0-9;]* [A-Za-z] */
            size_t k = i + 2;
            while (k < o.n && (is_digit(o.v[k]) || o.v[k] == ';')) k++;
            if (k < o.n && ((o.v[k] | 32) >= 'a' && (o.v[k] | 32) <= 'z')) { i = k; continue; }
        }
        if (ftfy_control(c)) continue;
        o.v[n++] = c;
    }
    o.n = n;
    if (o.oom) t->oom = true;
    cb_swap_in(t, &o);
}

/* ftfy.fix_text subset: per line (each segment ends after a '\n'), fixes repeated until the
 * segment stops changing; entity decoding is off from the first segment containing '<'. */
static void ftfy_fix(cpbuf *t) {
    cpbuf out = {0}, seg = {0}, prev = {0};
    bool html_ok = true;
    size_t pos = 0;
    while (pos < t->n && !out.oom) {
        size_t end = pos;
        while (end < t->n && t->v[end] != '\n') end++;
        if (end < t->n) end++;
        seg.n = 0;
        for (size_t k = pos; k < end; k++) cb_push(&seg, t->v[k]);
        for (size_t k = 0; k < seg.n && html_ok; k++)
            if (seg.v[k] == '<') html_ok = false;
        for (int iter = 0; iter < 16 && !seg.oom; iter++) {
            prev.n = 0;
            for (size_t k = 0; k < seg.n; k++) cb_push(&prev, seg.v[k]);
            if (html_ok) ftfy_unescape(&seg);
            fix_mojibake(&seg);
            ftfy_chars(&seg);
            nfc(&seg);
            if (prev.oom || cb_equal(&prev, &seg)) break;
        }
        if (seg.oom || prev.oom) out.oom = true;
        for (size_t k = 0; k < seg.n; k++) cb_push(&out, seg.v[k]);
        pos = end;
    }
    free(seg.v);
    free(prev.v);
    if (out.oom) t->oom = true;
    cb_swap_in(t, &out);
}

static bool case_ignorable(uint32_t c) {
    return uc_ccc(c) != 0 || c == '\'' || c == '.' || c == ':' || c == 0xAD || c == 0xB7 || c == 0x2019;
}

/* Python str.lower(). */
static void lower(cpbuf *t) {
    cpbuf o = {0};
    for (size_t i = 0; i < t->n; i++) {
        uint32_t c = t->v[i];
        if (c == 0x130) { cb_push(&o, 'i'); cb_push(&o, 0x307); continue; }
        if (c == 0x3A3) {
            /* final sigma: cased letter before (skipping case-ignorables), none after */
            bool before = false, after = false;
            for (size_t k = i; k-- > 0;) {
                if (case_ignorable(t->v[k])) continue;
                before = uc_class(t->v[k]) == 1;
                break;
            }
            for (size_t k = i + 1; k < t->n; k++) {
                if (case_ignorable(t->v[k])) continue;
                after = uc_class(t->v[k]) == 1;
                break;
            }
            cb_push(&o, before && !after ? 0x3C2 : 0x3C3);
            continue;
        }
        cb_push(&o, uc_lower1(c));
    }
    if (o.oom) t->oom = true;
    cb_swap_in(t, &o);
}

/* whitespace_clean(basic_clean(text)).lower() on code points. */
static bool clean_cps(const char *text, cpbuf *t) {
    utf8_decode((const unsigned char *)text, strlen(text), t);
    ftfy_fix(t);
    html_unescape(t);
    html_unescape(t);
    size_t n = 0;
    bool in_space = true; /* drops leading space */
    for (size_t i = 0; i < t->n; i++) {
        uint32_t c = t->v[i];
        if (uc_space(c)) {
            if (!in_space) t->v[n++] = ' ';
            in_space = true;
        } else {
            t->v[n++] = c;
            in_space = false;
        }
    }
    if (n && t->v[n - 1] == ' ') n--;
    t->n = n;
    lower(t);
    return !t->oom;
}

sdc_status sdc_text_clean(const char *text, char **out, char *err, size_t errlen) {
    *out = NULL;
    cpbuf t = {0};
    if (!text) return sdc_fail(err, errlen, SDC_E_INVALID, "text: NULL");
    if (!clean_cps(text, &t)) { free(t.v); return sdc_fail(err, errlen, SDC_E_NOMEM, "text cleaning: out of memory"); }
    char *s = malloc(t.n * 4 + 1);
    if (!s) { free(t.v); return sdc_fail(err, errlen, SDC_E_NOMEM, "text cleaning: out of memory"); }
    size_t k = 0;
    for (size_t i = 0; i < t.n; i++) k += utf8_put(t.v[i], s + k);
    s[k] = '\0';
    free(t.v);
    *out = s;
    return SDC_OK;
}

/* ------------------------------------------------------------------ vocabulary and BPE */

typedef struct strmap_entry { const char *s; uint32_t len; int32_t id; } strmap_entry;

struct sdc_tokenizer {
    char *strings[SDC_CLIP_N_VOCAB]; /* token text in byte-symbol spelling */
    int32_t canon[SDC_CLIP_N_VOCAB]; /* id of the last token with the same text (Python dict) */
    uint8_t byte_pos[256];           /* byte -> its symbol's position in bytes_to_unicode order */
    strmap_entry *smap;              /* open addressing, string -> canonical id */
    uint32_t smask;
    uint64_t *pkeys;                 /* open addressing, (a << 32 | b) + 1 -> rank */
    int32_t *pranks;
    uint32_t pmask;
};

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
    return x;
}

static int32_t smap_get(const sdc_tokenizer *t, const char *s, size_t n) {
    for (uint32_t h = (uint32_t)hash_bytes(s, n) & t->smask;; h = (h + 1) & t->smask) {
        const strmap_entry *e = &t->smap[h];
        if (!e->s) return -1;
        if (e->len == n && memcmp(e->s, s, n) == 0) return e->id;
    }
}

static void smap_put(sdc_tokenizer *t, const char *s, int32_t id) {
    size_t n = strlen(s);
    for (uint32_t h = (uint32_t)hash_bytes(s, n) & t->smask;; h = (h + 1) & t->smask) {
        strmap_entry *e = &t->smap[h];
        if (!e->s || (e->len == n && memcmp(e->s, s, n) == 0)) {
            e->s = s; e->len = (uint32_t)n; e->id = id; /* the later id wins, as in dict(zip(...)) */
            return;
        }
    }
}

static int32_t pair_rank(const sdc_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    for (uint32_t h = (uint32_t)hash_u64(key) & t->pmask;; h = (h + 1) & t->pmask) {
        if (!t->pkeys[h]) return -1;
        if (t->pkeys[h] == key) return t->pranks[h];
    }
}

static void pair_put(sdc_tokenizer *t, int32_t a, int32_t b, int32_t rank) {
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    for (uint32_t h = (uint32_t)hash_u64(key) & t->pmask;; h = (h + 1) & t->pmask) {
        if (!t->pkeys[h] || t->pkeys[h] == key) { /* a repeated rule keeps the later rank, as dict(zip()) */
            t->pkeys[h] = key;
            t->pranks[h] = rank;
            return;
        }
    }
}

void sdc_tokenizer_free(sdc_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < SDC_CLIP_N_VOCAB; i++) free(t->strings[i]);
    free(t->smap);
    free(t->pkeys);
    free(t->pranks);
    free(t);
}

/* bytes_to_unicode: printable bytes keep their code point, the rest map to 256, 257, ... */
static void byte_symbols(uint32_t sym[256], uint8_t pos[256]) {
    int k = 0, extra = 0;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (keep) sym[b] = (uint32_t)b;
        else sym[b] = (uint32_t)(256 + extra++);
    }
    /* position: printable ones first in byte order, then the others in byte order */
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++)
            if ((sym[b] == (uint32_t)b) == (pass == 0)) pos[b] = (uint8_t)k++;
}

typedef struct rule_src {
    const sdc_merges *m;
    const sdc_gguf *g;
    int64_t kv;
    int first; /* index of the first real rule */
} rule_src;

static bool rule_get(const rule_src *r, int i, const char **s, size_t *len) {
    i += r->first;
    if (r->m) { *s = r->m->rules[i]; *len = strlen(*s); return true; }
    uint64_t l;
    if (!sdc_gguf_kv_array_str(r->g, r->kv, (uint64_t)i, s, &l)) return false;
    *len = (size_t)l;
    return true;
}

/* A first "rule" holding the file's "#version" header line. OpenAI's file starts with
 * '"bpe_simple_vocab_16e6.txt#version: 0.2', which sdc_merges_load (vocab.c) keeps as a rule
 * and then stops one rule short; such a list is accepted with its header skipped and the
 * last merge ("ha bib</w>", id 49405) missing. */
static bool header_rule(const rule_src *src, int n_rules) {
    const char *s;
    size_t len;
    if (n_rules < 1 || !rule_get(src, 0, &s, &len)) return false;
    for (size_t i = 0; i + 8 <= len; i++)
        if (memcmp(s + i, "#version", 8) == 0) return true;
    return false;
}

static sdc_status build(const rule_src *src0, int n_rules, sdc_tokenizer **out, char *err, size_t errlen) {
    *out = NULL;
    rule_src srcv = *src0;
    const rule_src *src = &srcv;
    int n_use = SDC_CLIP_N_MERGES;
    if (header_rule(src0, n_rules)) {
        srcv.first = 1;
        n_rules--;
        if (n_rules == SDC_CLIP_N_MERGES - 1) n_use = n_rules;
    }
    if (n_rules < n_use)
        return sdc_fail(err, errlen, SDC_E_FORMAT, "CLIP vocabulary: expected %d merge rules, got %d", SDC_CLIP_N_MERGES,
                        n_rules);
    sdc_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return sdc_fail(err, errlen, SDC_E_NOMEM, "tokenizer: out of memory");
    t->smask = (1u << 17) - 1;
    t->pmask = (1u << 17) - 1;
    t->smap = calloc((size_t)t->smask + 1, sizeof *t->smap);
    t->pkeys = calloc((size_t)t->pmask + 1, sizeof *t->pkeys);
    t->pranks = calloc((size_t)t->pmask + 1, sizeof *t->pranks);
    if (!t->smap || !t->pkeys || !t->pranks) goto oom;
    uint32_t sym[256];
    byte_symbols(sym, t->byte_pos);
    for (int b = 0; b < 256; b++) {
        char u[8];
        size_t l = utf8_put(sym[b], u);
        int p = t->byte_pos[b];
        t->strings[p] = sdc_strndup(u, l);
        t->strings[256 + p] = malloc(l + 5);
        if (!t->strings[p] || !t->strings[256 + p]) goto oom;
        memcpy(t->strings[256 + p], u, l);
        memcpy(t->strings[256 + p] + l, "</w>", 5);
    }
    for (int i = 0; i < 512; i++) smap_put(t, t->strings[i], i);
    for (int i = 0; i < n_use; i++) {
        const char *s;
        size_t len;
        if (!rule_get(src, i, &s, &len)) {
            sdc_tokenizer_free(t);
            return sdc_fail(err, errlen, SDC_E_FORMAT, "CLIP vocabulary: merge rule %d is not a string", i);
        }
        const char *sp = memchr(s, ' ', len);
        if (!sp || sp == s || sp + 1 == s + len || memchr(sp + 1, ' ', (size_t)(s + len - sp - 1))) {
            sdc_tokenizer_free(t);
            return sdc_fail(err, errlen, SDC_E_FORMAT, "CLIP vocabulary: merge rule %d: expected \"a b\", got \"%.*s\"", i,
                            (int)(len > 60 ? 60 : len), s);
        }
        char *m = malloc(len);
        if (!m) goto oom;
        size_t la = (size_t)(sp - s);
        memcpy(m, s, la);
        memcpy(m + la, sp + 1, len - la - 1);
        m[len - 1] = '\0';
        t->strings[512 + i] = m;
    }
    t->strings[SDC_CLIP_BOS] = sdc_strndup("<|startoftext|>", 15);
    t->strings[SDC_CLIP_EOS] = sdc_strndup("<|endoftext|>", 13);
    if (!t->strings[SDC_CLIP_BOS] || !t->strings[SDC_CLIP_EOS]) goto oom;
    for (int i = 512 + n_use; i < SDC_CLIP_BOS; i++) {
        t->strings[i] = sdc_strndup("<|missing merge|>", 17);
        if (!t->strings[i]) goto oom;
    }
    for (int i = 512; i < SDC_CLIP_N_VOCAB; i++)
        if (i < 512 + n_use || i >= SDC_CLIP_BOS) smap_put(t, t->strings[i], i);
    for (int i = 0; i < SDC_CLIP_N_VOCAB; i++) t->canon[i] = smap_get(t, t->strings[i], strlen(t->strings[i]));
    for (int i = 0; i < n_use; i++) {
        const char *s;
        size_t len = 0;
        rule_get(src, i, &s, &len);
        const char *sp = memchr(s, ' ', len);
        int32_t a = smap_get(t, s, (size_t)(sp - s)), b = smap_get(t, sp + 1, (size_t)(s + len - sp - 1));
        if (a < 0 || b < 0) {
            sdc_tokenizer_free(t);
            return sdc_fail(err, errlen, SDC_E_FORMAT,
                            "CLIP vocabulary: merge rule %d (\"%.*s\") joins a symbol no earlier rule made", i,
                            (int)(len > 60 ? 60 : len), s);
        }
        pair_put(t, a, b, i);
    }
    *out = t;
    return SDC_OK;
oom:
    sdc_tokenizer_free(t);
    return sdc_fail(err, errlen, SDC_E_NOMEM, "tokenizer: out of memory");
}

sdc_status sdc_tokenizer_new(const sdc_merges *m, sdc_tokenizer **out, char *err, size_t errlen) {
    rule_src src = {.m = m};
    return build(&src, m->n, out, err, errlen);
}

sdc_status sdc_tokenizer_from_gguf(const sdc_gguf *g, sdc_tokenizer **out, char *err, size_t errlen) {
    *out = NULL;
    int64_t kv = sdc_gguf_kv_find(g, SDC_GGUF_KEY_MERGES);
    if (kv < 0) return sdc_fail(err, errlen, SDC_E_UNSUPPORTED, "no %s metadata", SDC_GGUF_KEY_MERGES);
    if (sdc_gguf_kv_type_of(g, kv) != SDC_GGUF_ARRAY || sdc_gguf_kv_array_type(g, kv) != SDC_GGUF_STRING)
        return sdc_fail(err, errlen, SDC_E_FORMAT, "%s: expected an array of strings", SDC_GGUF_KEY_MERGES);
    uint64_t n = sdc_gguf_kv_array_len(g, kv);
    rule_src src = {.g = g, .kv = kv};
    sdc_status s = build(&src, n > SDC_CLIP_N_MERGES + 1 ? SDC_CLIP_N_MERGES + 1 : (int)n, out, err, errlen);
    if (s) sdc_err_prefix(err, errlen, SDC_GGUF_KEY_MERGES);
    return s;
}

const char *sdc_tokenizer_token(const sdc_tokenizer *t, int32_t id) {
    return id >= 0 && id < SDC_CLIP_N_VOCAB ? t->strings[id] : NULL;
}

typedef struct idbuf { int32_t *v; int n, cap; bool oom; } idbuf;

static void ib_push(idbuf *b, int32_t x) {
    if (b->n == b->cap) {
        int nc = b->cap ? b->cap * 2 : 32;
        int32_t *nv = realloc(b->v, (size_t)nc * sizeof *nv);
        if (!nv) { b->oom = true; return; }
        b->v = nv;
        b->cap = nc;
    }
    b->v[b->n++] = x;
}

/* BPE of one pre-token (UTF-8 bytes), ids appended to out. sym is scratch of >= len ints. */
static void bpe_word(const sdc_tokenizer *t, const unsigned char *s, size_t len, int32_t *sym, idbuf *out) {
    size_t n = len;
    for (size_t i = 0; i < len; i++) sym[i] = t->byte_pos[s[i]] + (i + 1 == len ? 256 : 0);
    for (;;) {
        int32_t best = -1;
        for (size_t i = 0; i + 1 < n; i++) {
            int32_t r = pair_rank(t, sym[i], sym[i + 1]);
            if (r >= 0 && (best < 0 || r < best)) best = r;
        }
        if (best < 0) break;
        /* every occurrence of the pair of rule `best`, left to right, becomes its merge */
        size_t w = 0;
        for (size_t i = 0; i < n;) {
            if (i + 1 < n && pair_rank(t, sym[i], sym[i + 1]) == best) {
                sym[w++] = t->canon[512 + best];
                i += 2;
            } else {
                sym[w++] = sym[i++];
            }
        }
        n = w;
        if (n == 1) break;
    }
    for (size_t i = 0; i < n; i++) ib_push(out, sym[i]);
}

static bool match_ascii(const cpbuf *t, size_t i, const char *lit) {
    for (size_t k = 0; lit[k]; k++)
        if (i + k >= t->n || t->v[i + k] != (unsigned char)lit[k]) return false;
    return true;
}

sdc_status sdc_tokenizer_encode(const sdc_tokenizer *t, const char *text, int32_t **ids, int *n, char *err,
                                size_t errlen) {
    *ids = NULL;
    *n = 0;
    if (!text) return sdc_fail(err, errlen, SDC_E_INVALID, "text: NULL");
    cpbuf c = {0};
    idbuf out = {0};
    char *word = NULL;
    int32_t *sym = NULL;
    size_t wcap = 0;
    if (!clean_cps(text, &c)) goto oom;
    ib_push(&out, 0); /* so *ids is never NULL; removed below */
    out.n = 0;
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    for (size_t i = 0; i < c.n;) {
        size_t j = i;
        if (match_ascii(&c, i, "<|startoftext|>")) { ib_push(&out, SDC_CLIP_BOS); i += 15; continue; }
        if (match_ascii(&c, i, "<|endoftext|>")) { ib_push(&out, SDC_CLIP_EOS); i += 13; continue; }
        int cls = uc_class(c.v[i]);
        if (c.v[i] == '\'') {
            for (int k = 0; k < 7 && j == i; k++) {
                size_t l = strlen(contractions[k]);
                if (match_ascii(&c, i, contractions[k])) j = i + l;
                /* IGNORECASE: U+017F (long s) folds to s */
                else if (k == 0 && i + 1 < c.n && c.v[i + 1] == 0x17F) j = i + 2;
            }
        }
        if (j == i) {
            if (cls == 1) {
                while (j < c.n && uc_class(c.v[j]) == 1) j++;
            } else if (cls == 2) {
                j = i + 1;
            } else if (uc_space(c.v[i])) {
                i++;
                continue;
            } else {
                while (j < c.n && uc_class(c.v[j]) == 0 && !uc_space(c.v[j])) j++;
            }
        }
        size_t need = (j - i) * 4;
        if (need > wcap) {
            char *nw = realloc(word, need);
            int32_t *ns = realloc(sym, need * sizeof *ns);
            if (nw) word = nw;
            if (ns) sym = ns;
            if (!nw || !ns) goto oom;
            wcap = need;
        }
        size_t wl = 0;
        for (size_t k = i; k < j; k++) wl += utf8_put(c.v[k], word + wl);
        bpe_word(t, (const unsigned char *)word, wl, sym, &out);
        i = j;
    }
    if (out.oom) goto oom;
    free(c.v);
    free(word);
    free(sym);
    *ids = out.v;
    *n = out.n;
    return SDC_OK;
oom:
    free(c.v);
    free(word);
    free(sym);
    free(out.v);
    return sdc_fail(err, errlen, SDC_E_NOMEM, "tokenizer: out of memory");
}

void sdc_tokenizer_row77(const int32_t *ids, int n, int32_t row[SDC_CLIP_CTX]) {
    int k = n < SDC_CLIP_CTX - 2 ? n : SDC_CLIP_CTX - 2;
    if (k < 0) k = 0;
    row[0] = SDC_CLIP_BOS;
    for (int i = 0; i < k; i++) row[1 + i] = ids[i];
    for (int i = 1 + k; i < SDC_CLIP_CTX; i++) row[i] = SDC_CLIP_EOS;
}

/* ------------------------------------------------------------------ vocabulary search */

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Loads a vocabulary file given by the user (--vocab / SDC_VOCAB). */
static sdc_status load_user_vocab(const char *what, const char *path, sdc_tokenizer **out, char *err, size_t errlen) {
    char buf[4096];
    const char *p = path;
    if (is_dir(path)) {
        const char *names[] = {"bpe_simple_vocab_16e6.txt.gz", "merges.txt", "merges.txt.gz"};
        p = NULL;
        for (int k = 0; k < 3 && !p; k++) {
            snprintf(buf, sizeof buf, "%s/%s", path, names[k]);
            if (is_file(buf)) p = buf;
        }
        if (!p)
            return sdc_fail(err, errlen, SDC_E_IO,
                            "%s %s: a folder without bpe_simple_vocab_16e6.txt.gz or merges.txt", what, path);
    } else if (ends_with(path, "vocab.json")) {
        size_t dl = strlen(path) - strlen("vocab.json");
        snprintf(buf, sizeof buf, "%.*smerges.txt", (int)dl, path);
        if (!is_file(buf))
            return sdc_fail(err, errlen, SDC_E_IO, "%s %s: the token list follows from the merges; expected %s beside it",
                            what, path, buf);
        p = buf;
    }
    sdc_merges m;
    sdc_status s = sdc_merges_load(p, &m, err, errlen);
    if (s == SDC_OK) {
        s = sdc_tokenizer_new(&m, out, err, errlen);
        if (s) sdc_err_prefix(err, errlen, p);
        sdc_merges_free(&m);
    }
    if (s) sdc_err_prefix(err, errlen, what);
    return s;
}

sdc_vocab_search sdc_vocab_search_from_env(const char *model_path, const char *vocab_arg) {
    sdc_vocab_search s = {0};
    s.model_path = model_path;
    s.vocab_arg = vocab_arg;
    s.env_vocab = getenv("SDC_VOCAB");
    s.xdg_cache_home = getenv("XDG_CACHE_HOME");
    s.home = getenv("HOME");
    return s;
}

static bool file_is_gguf(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char magic[4] = {0};
    size_t r = fread(magic, 1, 4, f);
    fclose(f);
    return r == 4 && memcmp(magic, "GGUF", 4) == 0;
}

sdc_status sdc_tokenizer_find(const sdc_vocab_search *s, sdc_tokenizer **out, char *source, size_t sourcelen,
                              char *err, size_t errlen) {
    *out = NULL;
    char model_note[600] = "no model file";
    if (source && sourcelen) source[0] = '\0';
    /* 1. model metadata */
    const sdc_gguf *g = s->model_gguf;
    sdc_gguf *opened = NULL;
    if (!g && s->model_path && is_file(s->model_path) && file_is_gguf(s->model_path)) {
        char e2[256];
        if (sdc_gguf_open(s->model_path, &opened, e2, sizeof e2) == SDC_OK) g = opened;
    }
    if (g) {
        char e2[400];
        sdc_status st = sdc_tokenizer_from_gguf(g, out, e2, sizeof e2);
        if (opened) sdc_gguf_close(opened);
        if (st == SDC_OK) {
            if (source) snprintf(source, sourcelen, "%s (%s)", s->model_path ? s->model_path : "model", SDC_GGUF_KEY_MERGES);
            return SDC_OK;
        }
        if (st != SDC_E_UNSUPPORTED) {
            sdc_fail(err, errlen, st, "%s", e2);
            sdc_err_prefix(err, errlen, s->model_path ? s->model_path : "model");
            return st;
        }
        snprintf(model_note, sizeof model_note, "%s has no %s", s->model_path ? s->model_path : "model", SDC_GGUF_KEY_MERGES);
    } else if (s->model_path) {
        snprintf(model_note, sizeof model_note, "%s is not a GGUF", s->model_path);
    }
    /* 2, 3. explicit files */
    if (s->vocab_arg && *s->vocab_arg) {
        sdc_status st = load_user_vocab("--vocab", s->vocab_arg, out, err, errlen);
        if (st == SDC_OK && source) snprintf(source, sourcelen, "%s (--vocab)", s->vocab_arg);
        return st;
    }
    if (s->env_vocab && *s->env_vocab) {
        sdc_status st = load_user_vocab("SDC_VOCAB", s->env_vocab, out, err, errlen);
        if (st == SDC_OK && source) snprintf(source, sourcelen, "%s (SDC_VOCAB)", s->env_vocab);
        return st;
    }
    /* 4. per-user cache */
    char cache[2048] = "";
    if (s->xdg_cache_home && *s->xdg_cache_home)
        snprintf(cache, sizeof cache, "%s/sdc/bpe_simple_vocab_16e6.txt.gz", s->xdg_cache_home);
    else if (s->home && *s->home)
        snprintf(cache, sizeof cache, "%s/.cache/sdc/bpe_simple_vocab_16e6.txt.gz", s->home);
    if (cache[0] && is_file(cache)) {
        sdc_status st = load_user_vocab("cache", cache, out, err, errlen);
        if (st == SDC_OK && source) snprintf(source, sourcelen, "%s (user cache)", cache);
        return st;
    }
    return sdc_fail(err, errlen, SDC_E_IO,
                    "no CLIP vocabulary found (model metadata: %s; --vocab: not given; SDC_VOCAB: not set; cache: %s); "
                    "download bpe_simple_vocab_16e6.txt.gz from https://github.com/openai/CLIP/raw/main/clip/ and put it at "
                    "%s, or pass --vocab FILE, or set SDC_VOCAB=FILE",
                    model_note, cache[0] ? cache : "no XDG_CACHE_HOME or HOME",
                    cache[0] ? cache : "$XDG_CACHE_HOME/sdc/bpe_simple_vocab_16e6.txt.gz");
}
