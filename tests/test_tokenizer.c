/* test_tokenizer.c - the CLIP BPE tokenizer against OpenAI CLIP's ids (refs/tokenizer/tokens.json),
 * the SD 1.x rows of refs/text/input_ids.npy, Unicode cleaning cases, and the vocabulary search. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check.h"
#include "gguf.h"
#include "testutil.h"
#include "tokenizer.h"
#include "vocab.h"

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    if (b) b[n] = '\0';
    fclose(f);
    return b;
}

static bool ids_equal(const sdc_tokenizer *t, const char *text, const int32_t *want, int nwant) {
    int32_t *ids;
    int n;
    char err[256];
    if (sdc_tokenizer_encode(t, text, &ids, &n, err, sizeof err)) { printf("encode: %s\n", err); return false; }
    bool ok = n == nwant && (n == 0 || memcmp(ids, want, (size_t)n * sizeof *ids) == 0);
    if (!ok) {
        printf("  text %s\n  got ", text);
        for (int i = 0; i < n; i++) printf(" %d", ids[i]);
        printf("\n  want");
        for (int i = 0; i < nwant; i++) printf(" %d", want[i]);
        printf("\n");
    }
    free(ids);
    return ok;
}

/* Same ids for two spellings. */
static bool same_ids(const sdc_tokenizer *t, const char *a, const char *b) {
    int32_t *ia, *ib;
    int na, nb;
    char err[256];
    if (sdc_tokenizer_encode(t, a, &ia, &na, err, sizeof err)) return false;
    if (sdc_tokenizer_encode(t, b, &ib, &nb, err, sizeof err)) { free(ia); return false; }
    bool ok = na == nb && (na == 0 || memcmp(ia, ib, (size_t)na * sizeof *ia) == 0);
    if (!ok) printf("  differ: \"%s\" (%d ids) vs \"%s\" (%d ids)\n", a, na, b, nb);
    free(ia);
    free(ib);
    return ok;
}

static bool clean_is(const char *in, const char *want) {
    char *got, err[256];
    if (sdc_text_clean(in, &got, err, sizeof err)) return false;
    bool ok = strcmp(got, want) == 0;
    if (!ok) printf("  clean(\"%s\") = \"%s\", want \"%s\"\n", in, got, want);
    free(got);
    return ok;
}

static void test_goldens(const sdc_tokenizer *t) {
    char *js = read_all(tu_shared_path("refs/tokenizer/tokens.json"));
    CHECK(js != NULL);
    if (!js) return;
    cJSON *root = cJSON_Parse(js);
    free(js);
    cJSON *prompts = cJSON_GetObjectItem(root, "prompts");
    int total = cJSON_GetArraySize(prompts), matched = 0, rows = 0, cleaned = 0;
    cJSON *p;
    cJSON_ArrayForEach(p, prompts) {
        const char *text = cJSON_GetObjectItem(p, "text")->valuestring;
        cJSON *ids = cJSON_GetObjectItem(p, "ids"), *pad = cJSON_GetObjectItem(p, "padded77");
        int n = cJSON_GetArraySize(ids) - 2; /* the golden includes BOS and EOS */
        int32_t want[512];
        for (int i = 0; i < n && i < 512; i++) want[i] = cJSON_GetArrayItem(ids, i + 1)->valueint;
        if (ids_equal(t, text, want, n)) matched++;
        /* the 77-row */
        int32_t *got;
        int ng;
        char err[256];
        if (sdc_tokenizer_encode(t, text, &got, &ng, err, sizeof err) == SDC_OK) {
            int32_t row[SDC_CLIP_CTX];
            sdc_tokenizer_row77(got, ng, row);
            bool ok = cJSON_GetArraySize(pad) == SDC_CLIP_CTX;
            for (int i = 0; ok && i < SDC_CLIP_CTX; i++) ok = row[i] == cJSON_GetArrayItem(pad, i)->valueint;
            rows += ok;
            free(got);
        }
        /* the cleaned text, where the golden gives it */
        cJSON *cl = cJSON_GetObjectItem(p, "cleaned");
        if (cl && cJSON_IsString(cl)) {
            char *c;
            if (sdc_text_clean(text, &c, err, sizeof err) == SDC_OK) {
                if (strcmp(c, cl->valuestring) == 0) cleaned++;
                else printf("  cleaned differs: \"%s\" vs golden \"%s\"\n", c, cl->valuestring);
                free(c);
            }
        }
    }
    printf("tokens.json: %d/%d prompts match the reference ids, %d/%d padded77 rows, %d/%d cleaned texts\n",
           matched, total, rows, total, cleaned, total);
    CHECK(total == 42);
    CHECK(matched == total);
    CHECK(rows == total);
    CHECK(cleaned == total);
    cJSON_Delete(root);
}

static void test_input_ids(const sdc_tokenizer *t) {
    char *js = read_all(tu_shared_path("refs/manifest.json"));
    CHECK(js != NULL);
    if (!js) return;
    cJSON *root = cJSON_Parse(js);
    free(js);
    cJSON *f = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "files"), "text/input_ids.npy");
    cJSON *prompts = cJSON_GetObjectItem(cJSON_GetObjectItem(f, "inputs"), "prompts");
    tu_npy a;
    char err[256];
    bool ok = tu_npy_load(tu_shared_path("refs/text/input_ids.npy"), &a, err, sizeof err);
    CHECK_MSG(ok, "%s", err);
    if (!ok) { cJSON_Delete(root); return; }
    CHECK(a.ndim == 2 && a.shape[1] == SDC_CLIP_CTX && a.shape[0] == cJSON_GetArraySize(prompts));
    int good = 0;
    for (int r = 0; r < a.shape[0]; r++) {
        int32_t *ids, row[SDC_CLIP_CTX];
        int n;
        if (sdc_tokenizer_encode(t, cJSON_GetArrayItem(prompts, r)->valuestring, &ids, &n, err, sizeof err)) continue;
        sdc_tokenizer_row77(ids, n, row);
        bool same = true;
        for (int i = 0; i < SDC_CLIP_CTX; i++) same &= row[i] == a.i64[r * SDC_CLIP_CTX + i];
        good += same;
        if (r == 3) CHECK(n >= 75); /* the 4th prompt fills the row */
        free(ids);
    }
    printf("input_ids.npy: %d/%lld rows equal\n", good, (long long)a.shape[0]);
    CHECK(good == a.shape[0]);
    tu_npy_free(&a);
    cJSON_Delete(root);
}

static void test_unicode(const sdc_tokenizer *t) {
    /* NFC and NFD spellings of the same text give the same ids */
    CHECK(same_ids(t, "r\xc3\xa9sum\xc3\xa9", "re\xcc\x81sume\xcc\x81"));
    CHECK(same_ids(t, "\xc3\x85ngstr\xc3\xb6m", "A\xcc\x8a" "ngstro\xcc\x88m"));
    CHECK(same_ids(t, "\xea\xb0\x80", "\xe1\x84\x80\xe1\x85\xa1")); /* Hangul GA: composed vs jamo */
    /* canonical reordering: a + dot below + acute == a + acute + dot below */
    CHECK(clean_is("a\xcc\x81\xcc\xa3", "\xe1\xba\xa1\xcc\x81"));
    /* curly quotes, ligatures, full width */
    CHECK(same_ids(t, "\xe2\x80\x9chello\xe2\x80\x9d it\xe2\x80\x99s", "\"hello\" it's"));
    CHECK(clean_is("\xef\xac\x81ne \xef\xbc\xa6\xef\xbc\xb5\xef\xbc\xac\xef\xbc\xac", "fine full"));
    /* HTML entities: ftfy once, html.unescape twice */
    CHECK(clean_is("&amp;amp; &amp;lt;b&amp;gt;", "& <b>"));
    CHECK(clean_is("&amp;amp;amp;amp;", "&"));
    CHECK(clean_is("caf&eacute; &#233;t&#xE9; &copy", "caf\xc3\xa9 \xc3\xa9t\xc3\xa9 \xc2\xa9"));
    CHECK(clean_is("&ampere;", "&ere;"));        /* html.unescape's longest-prefix rule */
    CHECK(clean_is("&#150; &#0;", "\xe2\x80\x93 \xef\xbf\xbd")); /* HTML5 replacements */
    CHECK(clean_is("<b>&amp;</b>", "<b>&</b>")); /* '<': ftfy leaves it, html.unescape does not */
    /* whitespace and case */
    CHECK(clean_is("  A\xc2\xa0\xc2\xa0 B\xe3\x80\x80" "C\t\n", "a b c"));
    CHECK(clean_is("\xc3\x89\xc3\x80\xc3\x96 \xc5\x81\xc3\x93" "D\xc5\xb9 \xce\x91\xce\x98\xce\x97\xce\x9d\xce\x91 "
                   "\xd0\x9c\xd0\x9e\xd0\xa1\xd0\x9a\xd0\x92\xd0\x90",
                   "\xc3\xa9\xc3\xa0\xc3\xb6 \xc5\x82\xc3\xb3" "d\xc5\xba \xce\xb1\xce\xb8\xce\xb7\xce\xbd\xce\xb1 "
                   "\xd0\xbc\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd0\xb0"));
    CHECK(clean_is("\xce\x9f\xce\x94\xce\x9f\xce\xa3", "\xce\xbf\xce\xb4\xce\xbf\xcf\x82")); /* final sigma */
    CHECK(clean_is("\xc4\xb0", "i\xcc\x87"));                                               /* İ -> i + dot */
    CHECK(same_ids(t, "\xc3\x9c\xc3\x8f\xc3\x87 \xd0\x96", "\xc3\xbc\xc3\xaf\xc3\xa7 \xd0\xb6"));
    /* mojibake (UTF-8 read as Windows-1252) */
    CHECK(clean_is("caf\xc3\x83\xc2\xa9 \xc3\xa2\xe2\x82\xac\xc5\x93hi\xc3\xa2\xe2\x82\xac\xc2\x9d", "caf\xc3\xa9 \"hi\""));
    CHECK(clean_is("na\xc3\xafve caf\xc3\xa9", "na\xc3\xafve caf\xc3\xa9"));           /* real Latin-1 text stays */
    /* CJK and emoji go through the byte fallback; every byte symbol is a token */
    int32_t *ids;
    int n;
    char err[256];
    CHECK(sdc_tokenizer_encode(t, "\xf0\x9f\xa6\x96 \xe9\xbe\x8d", &ids, &n, err, sizeof err) == SDC_OK);
    CHECK(n >= 2);
    for (int i = 0; i < n; i++) CHECK(ids[i] >= 0 && ids[i] < SDC_CLIP_BOS);
    free(ids);
    /* invalid UTF-8 does not crash: bytes become U+FFFD */
    CHECK(clean_is("a\xff\xc3", "a\xef\xbf\xbd\xef\xbf\xbd"));
    /* special strings, contractions, long words */
    CHECK(sdc_tokenizer_encode(t, "<|startoftext|>x<|endoftext|>", &ids, &n, err, sizeof err) == SDC_OK);
    CHECK(n == 3 && ids[0] == SDC_CLIP_BOS && ids[2] == SDC_CLIP_EOS);
    free(ids);
    char big[4001];
    memset(big, 'z', 4000);
    big[4000] = '\0';
    CHECK(sdc_tokenizer_encode(t, big, &ids, &n, err, sizeof err) == SDC_OK && n > 0);
    free(ids);
    CHECK(sdc_tokenizer_encode(t, "", &ids, &n, err, sizeof err) == SDC_OK && n == 0 && ids != NULL);
    free(ids);
    CHECK(strcmp(sdc_tokenizer_token(t, 49406), "<|startoftext|>") == 0);
    CHECK(sdc_tokenizer_token(t, 49408) == NULL);
}

/* Writes the merges of the gz as a Hugging Face merges.txt (with its #version line). */
static bool write_merges_txt(const char *gz_path, const char *out_path) {
    gzFile g = gzopen(gz_path, "rb");
    FILE *f = fopen(out_path, "wb");
    if (!g || !f) { if (g) gzclose(g); if (f) fclose(f); return false; }
    char buf[1 << 15];
    int r;
    while ((r = gzread(g, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)r, f);
    gzclose(g);
    return fclose(f) == 0;
}

static void test_search(const char *gz) {
    const char *tmp = tu_tmpdir("test_tokenizer");
    char path[1400], src[1024], err[2048];
    sdc_tokenizer *t;
    /* nothing anywhere: the message names the cache path */
    sdc_vocab_search s = {.xdg_cache_home = tmp};
    snprintf(path, sizeof path, "%s/sdc/bpe_simple_vocab_16e6.txt.gz", tmp);
    remove(path);
    CHECK(sdc_tokenizer_find(&s, &t, src, sizeof src, err, sizeof err) == SDC_E_IO);
    printf("missing vocabulary: %s\n", err);
    CHECK(strstr(err, path) != NULL);
    CHECK(strstr(err, "--vocab") && strstr(err, "SDC_VOCAB") && strstr(err, "bpe_simple_vocab_16e6.txt.gz"));
    s.xdg_cache_home = NULL;
    s.home = "/nonexistent-home";
    CHECK(sdc_tokenizer_find(&s, &t, src, sizeof src, err, sizeof err) == SDC_E_IO);
    CHECK(strstr(err, "/nonexistent-home/.cache/sdc/bpe_simple_vocab_16e6.txt.gz") != NULL);

    /* --vocab with a merges.txt, and with the vocab.json path beside it */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/hf", tmp);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    CHECK(system(cmd) == 0);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    CHECK(write_merges_txt(gz, path));
    s.vocab_arg = path;
    CHECK(sdc_tokenizer_find(&s, &t, src, sizeof src, err, sizeof err) == SDC_OK);
    printf("from: %s\n", src);
    const int32_t cat[] = {320, 2368}; /* "a cat" */
    if (t) { CHECK(ids_equal(t, "a cat", cat, 2)); sdc_tokenizer_free(t); }
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    CHECK(sdc_tokenizer_find(&s, &t, src, sizeof src, err, sizeof err) == SDC_OK);
    sdc_tokenizer_free(t);
    s.vocab_arg = dir; /* a folder */
    CHECK(sdc_tokenizer_find(&s, &t, src, sizeof src, err, sizeof err) == SDC_OK);
    sdc_tokenizer_free(t);
    /* an explicit bad file is an error, not a fall-through */
    snprintf(path, sizeof path, "%s/nope.txt", tmp);
    s.vocab_arg = path;
    s.env_vocab = gz;
    CHECK(sdc_tokenizer_find(&s, &t, src, sizeof src, err, sizeof err) == SDC_E_IO);
    CHECK(strstr(err, "--vocab") != NULL);
    /* SDC_VOCAB */
    s.vocab_arg = NULL;
    CHECK(sdc_tokenizer_find(&s, &t, src, sizeof src, err, sizeof err) == SDC_OK);
    CHECK(strstr(src, "SDC_VOCAB") != NULL);
    sdc_tokenizer_free(t);

    /* a GGUF with embedded merges wins over everything else */
    sdc_merges m;
    CHECK(sdc_merges_load(gz, &m, err, sizeof err) == SDC_OK);
    sdc_gguf_writer *w = sdc_gguf_writer_new(0);
    CHECK(sdc_gguf_writer_set_arr_str(w, SDC_GGUF_KEY_MERGES, (const char *const *)m.rules, (uint64_t)m.n) == SDC_OK);
    int64_t shape[1] = {4};
    CHECK(sdc_gguf_writer_add_tensor(w, "dummy", SDC_TYPE_F32, 1, shape) == SDC_OK);
    snprintf(path, sizeof path, "%s/model.gguf", tmp);
    FILE *f = fopen(path, "wb");
    float zero[4] = {0};
    CHECK(f && sdc_gguf_writer_begin(w, f, err, sizeof err) == SDC_OK);
    CHECK(sdc_gguf_writer_write_data(w, zero, sizeof zero, err, sizeof err) == SDC_OK);
    CHECK(sdc_gguf_writer_end(w, err, sizeof err) == SDC_OK);
    fclose(f);
    sdc_gguf_writer_free(w);
    sdc_merges_free(&m);
    sdc_vocab_search s2 = {.model_path = path, .vocab_arg = "/nonexistent", .home = "/nonexistent-home"};
    CHECK(sdc_tokenizer_find(&s2, &t, src, sizeof src, err, sizeof err) == SDC_OK);
    printf("from: %s\n", src);
    if (t) { CHECK(ids_equal(t, "a cat", cat, 2)); sdc_tokenizer_free(t); }
    sdc_gguf *g;
    CHECK(sdc_gguf_open(path, &g, err, sizeof err) == SDC_OK);
    sdc_vocab_search s3 = {.model_gguf = g};
    CHECK(sdc_tokenizer_find(&s3, &t, src, sizeof src, err, sizeof err) == SDC_OK);
    sdc_tokenizer_free(t);
    sdc_gguf_close(g);
    /* a GGUF without merges falls through to the next source */
    w = sdc_gguf_writer_new(0);
    snprintf(path, sizeof path, "%s/plain.gguf", tmp);
    f = fopen(path, "wb");
    CHECK(f && sdc_gguf_writer_begin(w, f, err, sizeof err) == SDC_OK);
    CHECK(sdc_gguf_writer_end(w, err, sizeof err) == SDC_OK);
    fclose(f);
    sdc_gguf_writer_free(w);
    sdc_vocab_search s4 = {.model_path = path, .home = "/nonexistent-home"};
    CHECK(sdc_tokenizer_find(&s4, &t, src, sizeof src, err, sizeof err) == SDC_E_IO);
    CHECK(strstr(err, "has no tokenizer.ggml.merges") != NULL);
}

int main(void) {
    tu_require_shared();
    char gz[1024];
    snprintf(gz, sizeof gz, "%s", tu_shared_path("data/bpe_simple_vocab_16e6.txt.gz"));
    sdc_merges m;
    char err[512];
    if (sdc_merges_load(gz, &m, err, sizeof err) != SDC_OK) SKIP("%s", err);
    sdc_tokenizer *t;
    CHECK(sdc_tokenizer_new(&m, &t, err, sizeof err) == SDC_OK);
    sdc_merges_free(&m);
    test_goldens(t);
    test_input_ids(t);
    test_unicode(t);
    sdc_tokenizer_free(t);
    test_search(gz);
    return check_done();
}
