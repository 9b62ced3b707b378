/* prompt.c - see prompt.h. */
#include "prompt.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "unicode_tables.h"

sdc_prompt_params sdc_prompt_default_params(void) {
    sdc_prompt_params p = {.emphasis = true, .comma_backtrack = 20};
    return p;
}

typedef struct segs {
    sdc_prompt_segment *v;
    int n, cap;
    bool oom;
} segs;

static void seg_push(segs *s, const char *text, size_t len, double w) {
    if (s->oom) return;
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 16;
        sdc_prompt_segment *nv = realloc(s->v, (size_t)nc * sizeof *nv);
        if (!nv) { s->oom = true; return; }
        s->v = nv;
        s->cap = nc;
    }
    char *t = sdc_strndup(text, len);
    if (!t) { s->oom = true; return; }
    s->v[s->n].text = t;
    s->v[s->n].weight = w;
    s->n++;
}

/* Python re's \w for the code point starting at s (str.isalnum() or '_'). */
static bool word_char_at(const unsigned char *s, size_t len) {
    if (!len) return false;
    uint32_t c = s[0];
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    int n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    if (!n || (size_t)n >= len) return false;
    c &= 0x3F >> n;
    for (int k = 1; k <= n; k++) c = (c << 6) | (s[k] & 0x3F);
    int lo = 0, hi = sdc_uc_n_classes - 1;
    while (lo <= hi) {
        int m = (lo + hi) / 2;
        if (c < sdc_uc_classes[m].first) hi = m - 1;
        else if (c > sdc_uc_classes[m].last) lo = m + 1;
        else return true;
    }
    return false;
}

/* The code point before position i (its first byte), for \b. */
static bool word_char_before(const char *s, size_t i) {
    if (i == 0) return false;
    size_t j = i - 1;
    while (j > 0 && ((unsigned char)s[j] & 0xC0) == 0x80) j--;
    return word_char_at((const unsigned char *)s + j, i - j);
}

static bool ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* re.split(r"\s*\bBREAK\b\s*", text) with a BREAK marker between the parts. */
static void push_text(segs *s, const char *t, size_t len) {
    size_t start = 0, i = 0;
    while (i + 5 <= len) {
        if (memcmp(t + i, "BREAK", 5) == 0 && !word_char_before(t, i) &&
            !word_char_at((const unsigned char *)t + i + 5, len - i - 5)) {
            size_t a = i, b = i + 5;
            while (a > start && ascii_space(t[a - 1])) a--;
            while (b < len && ascii_space(t[b])) b++;
            seg_push(s, t + start, a - start, 1.0);
            seg_push(s, "BREAK", 5, -1.0);
            start = i = b;
            continue;
        }
        i++;
    }
    seg_push(s, t + start, len - start, 1.0);
}

/* Matches :\s*([+-]?[.\d]+)\s*\) at p; returns its length (0 if none) and the number. */
static size_t match_weight(const char *p, double *w) {
    size_t i = 1;
    while (ascii_space(p[i])) i++;
    size_t ns = i;
    if (p[i] == '+' || p[i] == '-') i++;
    size_t ds = i;
    while (p[i] == '.' || (p[i] >= '0' && p[i] <= '9')) i++;
    if (i == ds) return 0;
    size_t ne = i;
    while (ascii_space(p[i])) i++;
    if (p[i] != ')') return 0;
    char buf[64];
    size_t l = ne - ns < sizeof buf - 1 ? ne - ns : sizeof buf - 1;
    memcpy(buf, p + ns, l);
    buf[l] = '\0';
    char *end;
    double v = strtod(buf, &end);
    *w = (*end == '\0' && end != buf) ? v : 1.0;
    return i + 1;
}

sdc_status sdc_prompt_parse(const char *text, sdc_prompt_segment **out, int *n_out, char *err, size_t errlen) {
    *out = NULL;
    *n_out = 0;
    if (!text) return sdc_fail(err, errlen, SDC_E_INVALID, "prompt: NULL");
    segs s = {0};
    size_t len = strlen(text);
    int *round = malloc((len + 1) * sizeof *round), *square = malloc((len + 1) * sizeof *square);
    int nr = 0, nq = 0;
    if (!round || !square) s.oom = true;
    for (size_t i = 0; i < len && !s.oom;) {
        char c = text[i];
        double w;
        size_t ml;
        if (c == '\\') {
            char d = text[i + 1];
            if (d == '(' || d == ')' || d == '[' || d == ']' || d == '\\') {
                seg_push(&s, text + i + 1, 1, 1.0);
                i += 2;
            } else {
                seg_push(&s, "", 0, 1.0);
                i += 1;
            }
        } else if (c == '(') {
            round[nr++] = s.n;
            i++;
        } else if (c == '[') {
            square[nq++] = s.n;
            i++;
        } else if (c == ':' && (ml = match_weight(text + i, &w)) > 0 && nr > 0) {
            for (int k = round[--nr]; k < s.n; k++) s.v[k].weight *= w;
            i += ml;
        } else if (c == ')' && nr > 0) {
            for (int k = round[--nr]; k < s.n; k++) s.v[k].weight *= 1.1;
            i++;
        } else if (c == ']' && nq > 0) {
            for (int k = square[--nq]; k < s.n; k++) s.v[k].weight *= 1 / 1.1;
            i++;
        } else {
            /* plain text: [^\\()\[\]:]+, or one of the unmatched specials / ':' / a weight
             * with nothing to apply to, which the reference treats as text too */
            size_t j = i;
            if (c == ':' && (ml = match_weight(text + i, &w)) > 0) j = i + ml;
            else if (c == ':' || c == ')' || c == ']') j = i + 1;
            else
                while (j < len && !strchr("\\()[]:", text[j])) j++;
            push_text(&s, text + i, j - i);
            i = j;
        }
    }
    for (int k = 0; k < nr && !s.oom; k++)
        for (int m = round[k]; m < s.n; m++) s.v[m].weight *= 1.1;
    for (int k = 0; k < nq && !s.oom; k++)
        for (int m = square[k]; m < s.n; m++) s.v[m].weight *= 1 / 1.1;
    free(round);
    free(square);
    if (!s.oom && s.n == 0) seg_push(&s, "", 0, 1.0);
    /* merge runs of identical weights */
    for (int i = 0; i + 1 < s.n && !s.oom;) {
        if (s.v[i].weight == s.v[i + 1].weight) {
            size_t a = strlen(s.v[i].text), b = strlen(s.v[i + 1].text);
            char *m = realloc(s.v[i].text, a + b + 1);
            if (!m) { s.oom = true; break; }
            memcpy(m + a, s.v[i + 1].text, b + 1);
            s.v[i].text = m;
            free(s.v[i + 1].text);
            memmove(&s.v[i + 1], &s.v[i + 2], (size_t)(s.n - i - 2) * sizeof *s.v);
            s.n--;
        } else {
            i++;
        }
    }
    if (s.oom) {
        sdc_prompt_segments_free(s.v, s.n);
        return sdc_fail(err, errlen, SDC_E_NOMEM, "prompt: out of memory");
    }
    *out = s.v;
    *n_out = s.n;
    return SDC_OK;
}

void sdc_prompt_segments_free(sdc_prompt_segment *sv, int n) {
    for (int i = 0; i < n; i++) free(sv[i].text);
    free(sv);
}

/* ------------------------------------------------------------------ chunking */

typedef struct chunker {
    int32_t tok[SDC_PROMPT_CHUNK + 1];
    float w[SDC_PROMPT_CHUNK + 1];
    int n;           /* tokens in the open chunk */
    int last_comma;  /* index in the open chunk of its last comma, or -1 */
    sdc_prompt_tokens *out;
    int cap;
    bool oom;
} chunker;

/* Closes the open chunk: pads to 75 with EOS, wraps in BOS/EOS. */
static void next_chunk(chunker *c, bool is_last) {
    sdc_prompt_tokens *o = c->out;
    o->n_tokens += is_last ? c->n : SDC_PROMPT_CHUNK;
    if (o->n_chunks == c->cap) {
        int nc = c->cap ? c->cap * 2 : 4;
        int32_t *ni = realloc(o->ids, (size_t)nc * SDC_CLIP_CTX * sizeof *ni);
        if (ni) o->ids = ni;
        float *nw = realloc(o->weights, (size_t)nc * SDC_CLIP_CTX * sizeof *nw);
        if (nw) o->weights = nw;
        if (!ni || !nw) { c->oom = true; return; }
        c->cap = nc;
    }
    int32_t *ids = o->ids + (size_t)o->n_chunks * SDC_CLIP_CTX;
    float *w = o->weights + (size_t)o->n_chunks * SDC_CLIP_CTX;
    ids[0] = SDC_CLIP_BOS;
    w[0] = 1.0f;
    for (int i = 0; i < SDC_PROMPT_CHUNK; i++) {
        ids[1 + i] = i < c->n ? c->tok[i] : SDC_CLIP_EOS;
        w[1 + i] = i < c->n ? c->w[i] : 1.0f;
    }
    ids[SDC_CLIP_CTX - 1] = SDC_CLIP_EOS;
    w[SDC_CLIP_CTX - 1] = 1.0f;
    o->n_chunks++;
    c->n = 0;
    c->last_comma = -1;
}

sdc_status sdc_prompt_tokenize(const sdc_tokenizer *t, const char *prompt, const sdc_prompt_params *p,
                               sdc_prompt_tokens *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    sdc_prompt_params def = sdc_prompt_default_params();
    if (!p) p = &def;
    if (!prompt) return sdc_fail(err, errlen, SDC_E_INVALID, "prompt: NULL");
    sdc_prompt_segment *sg = NULL, one;
    int ns = 0;
    if (p->emphasis) {
        sdc_status s = sdc_prompt_parse(prompt, &sg, &ns, err, errlen);
        if (s) return s;
    } else {
        one.text = (char *)prompt;
        one.weight = 1.0;
        sg = &one;
        ns = 1;
    }
    chunker c = {.out = out, .last_comma = -1};
    sdc_status st = SDC_OK;
    for (int k = 0; k < ns && !c.oom; k++) {
        if (sg[k].weight == -1.0 && strcmp(sg[k].text, "BREAK") == 0) {
            next_chunk(&c, false);
            continue;
        }
        int32_t *ids;
        int n;
        st = sdc_tokenizer_encode(t, sg[k].text, &ids, &n, err, errlen);
        if (st) break;
        float w = (float)sg[k].weight;
        for (int i = 0; i < n && !c.oom; i++) {
            int32_t tok = ids[i];
            if (tok == SDC_CLIP_COMMA) {
                c.last_comma = c.n;
            } else if (p->comma_backtrack != 0 && c.n == SDC_PROMPT_CHUNK && c.last_comma != -1 &&
                       c.n - c.last_comma <= p->comma_backtrack) {
                int at = c.last_comma + 1, nm = c.n - at;
                int32_t rt[SDC_PROMPT_CHUNK];
                float rw[SDC_PROMPT_CHUNK];
                memcpy(rt, c.tok + at, (size_t)nm * sizeof *rt);
                memcpy(rw, c.w + at, (size_t)nm * sizeof *rw);
                c.n = at;
                next_chunk(&c, false);
                memcpy(c.tok, rt, (size_t)nm * sizeof *rt);
                memcpy(c.w, rw, (size_t)nm * sizeof *rw);
                c.n = nm;
            }
            if (c.n == SDC_PROMPT_CHUNK) next_chunk(&c, false);
            c.tok[c.n] = tok;
            c.w[c.n] = w;
            c.n++;
        }
        free(ids);
    }
    if (!st && !c.oom && (c.n > 0 || out->n_chunks == 0)) next_chunk(&c, true);
    if (p->emphasis) sdc_prompt_segments_free(sg, ns);
    if (!st && c.oom) st = sdc_fail(err, errlen, SDC_E_NOMEM, "prompt: out of memory");
    if (st) sdc_prompt_tokens_free(out);
    return st;
}

void sdc_prompt_tokens_free(sdc_prompt_tokens *pt) {
    free(pt->ids);
    free(pt->weights);
    memset(pt, 0, sizeof *pt);
}
