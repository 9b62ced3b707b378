/* test_prompt.c - A1111 prompt syntax and chunking.
 *
 * Expected segments: the first six cases are the doctests of parse_prompt_attention in
 * AUTOMATIC1111/stable-diffusion-webui modules/prompt_parser.py (weights are Python float
 * products, e.g. 1.1*1.1*1.3 = 1.5730000000000004); the rest follow from the same function's
 * rules (escapes, unmatched closers as text, unclosed openers applied to the end, BREAK split
 * with \s*\bBREAK\b\s*, merging of equal weights). Chunking follows sd_hijack_clip.py
 * tokenize_line with comma_padding_backtrack = 20. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "prompt.h"
#include "testutil.h"
#include "tokenizer.h"
#include "vocab.h"

typedef struct seg { const char *text; double w; } seg;
typedef struct pcase { const char *prompt; int n; seg s[10]; } pcase;

static const pcase cases[] = {
    /* A1111 doctests */
    {"normal text", 1, {{"normal text", 1.0}}},
    {"an (important) word", 3, {{"an ", 1.0}, {"important", 1.1}, {" word", 1.0}}},
    {"(unbalanced", 1, {{"unbalanced", 1.1}}},
    {"\\(literal\\]", 1, {{"(literal]", 1.0}}},
    {"(unnecessary)(parens)", 1, {{"unnecessaryparens", 1.1}}},
    {"a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).", 9,
     {{"a ", 1.0}, {"house", 1.1 * 1.1 * 1.3}, {" ", 1.1}, {"on", 1.0}, {" a ", 1.1}, {"hill", 0.55},
      {", sun, ", 1.1}, {"sky", 1.1 * 1.1 * 1.1 * 1.1}, {".", 1.1}}},
    /* derived from the same rules */
    {"((a))", 1, {{"a", 1.1 * 1.1}}},
    {"[a]", 1, {{"a", 1 / 1.1}}},
    {"[[a]] b", 2, {{"a", (1 / 1.1) * (1 / 1.1)}, {" b", 1.0}}},
    {"(a:1.5)", 1, {{"a", 1.5}}},
    {"x (a: 0.25 ) y", 3, {{"x ", 1.0}, {"a", 0.25}, {" y", 1.0}}},
    {"((a:2))", 1, {{"a", 2.0 * 1.1}}},
    {"(a:1.2.3)", 1, {{"a", 1.0}}}, /* not a number: A1111 raises, we use 1.0 */
    {"(a", 1, {{"a", 1.1}}},
    {"a)", 1, {{"a)", 1.0}}},
    {"a]", 1, {{"a]", 1.0}}},
    {"a:1.2)", 1, {{"a:1.2)", 1.0}}},
    {"(a:1.5", 1, {{"a:1.5", 1.1}}},
    {"[a (b] c)", 3, {{"a ", 1 / 1.1}, {"b", 1.1 / 1.1}, {" c", 1.1}}},
    {"\\\\ \\x", 1, {{"\\ x", 1.0}}},
    {"a \\(b\\) c", 1, {{"a (b) c", 1.0}}},
    {"", 1, {{"", 1.0}}},
    {"a BREAK b", 3, {{"a", 1.0}, {"BREAK", -1.0}, {"b", 1.0}}},
    {"a  BREAK\nb", 3, {{"a", 1.0}, {"BREAK", -1.0}, {"b", 1.0}}},
    {"aBREAK b BREAKING", 1, {{"aBREAK b BREAKING", 1.0}}},
    {"(a BREAK b)", 3, {{"a", 1.1}, {"BREAK", -1.1}, {"b", 1.1}}},
};

static void test_parse(void) {
    int ok_cases = 0, n_cases = (int)(sizeof cases / sizeof cases[0]);
    for (int c = 0; c < n_cases; c++) {
        sdc_prompt_segment *s;
        int n;
        char err[256];
        CHECK(sdc_prompt_parse(cases[c].prompt, &s, &n, err, sizeof err) == SDC_OK);
        bool ok = n == cases[c].n;
        for (int i = 0; ok && i < n; i++)
            ok = strcmp(s[i].text, cases[c].s[i].text) == 0 && fabs(s[i].weight - cases[c].s[i].w) < 1e-12;
        if (!ok) {
            printf("  \"%s\" ->", cases[c].prompt);
            for (int i = 0; i < n; i++) printf(" [\"%s\", %.17g]", s[i].text, s[i].weight);
            printf("\n");
        }
        CHECK_MSG(ok, "case %d: %s", c, cases[c].prompt);
        ok_cases += ok;
        sdc_prompt_segments_free(s, n);
    }
    printf("parser: %d/%d cases\n", ok_cases, n_cases);
}

static char *repeat(const char *unit, int times, const char *tail) {
    size_t ul = strlen(unit);
    char *s = malloc(ul * (size_t)times + strlen(tail) + 1);
    for (int i = 0; i < times; i++) memcpy(s + ul * (size_t)i, unit, ul);
    strcpy(s + ul * (size_t)times, tail);
    return s;
}

static void tokenize(const sdc_tokenizer *t, const char *prompt, const sdc_prompt_params *p, sdc_prompt_tokens *pt) {
    char err[256];
    sdc_status s = sdc_prompt_tokenize(t, prompt, p, pt, err, sizeof err);
    CHECK_MSG(s == SDC_OK, "%s", err);
}

static void test_chunks(const sdc_tokenizer *t) {
    const int32_t A = 320, B = 321, BREAK = 2568; /* "a</w>", "b</w>", "break</w>" */
    sdc_prompt_tokens pt;
    sdc_prompt_params def = sdc_prompt_default_params();

    tokenize(t, "", &def, &pt); /* the empty chunk */
    CHECK(pt.n_chunks == 1 && pt.n_tokens == 0 && pt.ids[0] == SDC_CLIP_BOS);
    for (int i = 1; i < 77; i++) CHECK(pt.ids[i] == SDC_CLIP_EOS && pt.weights[i] == 1.0f);
    sdc_prompt_tokens_free(&pt);

    tokenize(t, "a (b:1.5) [a]", &def, &pt);
    CHECK(pt.n_chunks == 1 && pt.n_tokens == 3);
    CHECK(pt.ids[1] == A && pt.ids[2] == B && pt.ids[3] == A && pt.ids[4] == SDC_CLIP_EOS);
    CHECK(pt.weights[0] == 1.0f && pt.weights[1] == 1.0f && pt.weights[2] == 1.5f && pt.weights[3] == (float)(1 / 1.1) &&
          pt.weights[4] == 1.0f);
    sdc_prompt_tokens_free(&pt);

    /* emphasis off: brackets are text */
    sdc_prompt_params noemph = def;
    noemph.emphasis = false;
    tokenize(t, "(b:1.5)", &noemph, &pt);
    CHECK(pt.n_tokens > 1 && pt.weights[2] == 1.0f);
    sdc_prompt_tokens_free(&pt);

    /* exactly 75 tokens: one chunk; 76: two */
    char *s = repeat("a ", 75, "");
    tokenize(t, s, &def, &pt);
    CHECK(pt.n_chunks == 1 && pt.ids[75] == A && pt.ids[76] == SDC_CLIP_EOS);
    sdc_prompt_tokens_free(&pt);
    free(s);
    s = repeat("a ", 76, "");
    tokenize(t, s, &def, &pt);
    CHECK(pt.n_chunks == 2 && pt.ids[77 + 1] == A && pt.ids[77 + 2] == SDC_CLIP_EOS && pt.n_tokens == 76);
    sdc_prompt_tokens_free(&pt);
    free(s);

    /* 100 tokens, no comma: 75 + 25 */
    s = repeat("a ", 100, "");
    tokenize(t, s, &def, &pt);
    CHECK(pt.n_chunks == 2 && pt.n_tokens == 100);
    for (int i = 1; i <= 75; i++) CHECK(pt.ids[i] == A);
    CHECK(pt.ids[76] == SDC_CLIP_EOS && pt.ids[77] == SDC_CLIP_BOS);
    for (int i = 1; i <= 25; i++) CHECK(pt.ids[77 + i] == A);
    for (int i = 26; i < 77; i++) CHECK(pt.ids[77 + i] == SDC_CLIP_EOS);
    sdc_prompt_tokens_free(&pt);
    free(s);

    /* 100 tokens with a comma 5 tokens before the boundary: the 4 tokens after it move */
    char *head = repeat("a ", 70, ",");
    char *tail = repeat(" a", 29, "");
    s = malloc(strlen(head) + strlen(tail) + 1);
    strcpy(s, head);
    strcat(s, tail);
    tokenize(t, s, &def, &pt);
    CHECK(pt.n_chunks == 2);
    CHECK(pt.ids[70] == A && pt.ids[71] == SDC_CLIP_COMMA);
    for (int i = 72; i < 77; i++) CHECK(pt.ids[i] == SDC_CLIP_EOS);
    for (int i = 1; i <= 29; i++) CHECK(pt.ids[77 + i] == A);
    CHECK(pt.ids[77 + 30] == SDC_CLIP_EOS);
    CHECK(pt.n_tokens == 75 + 29);
    sdc_prompt_tokens_free(&pt);
    /* the same with backtracking off: a plain split at 75 */
    sdc_prompt_params nob = def;
    nob.comma_backtrack = 0;
    tokenize(t, s, &nob, &pt);
    CHECK(pt.n_chunks == 2 && pt.ids[71] == SDC_CLIP_COMMA && pt.ids[75] == A && pt.ids[77 + 25] == A &&
          pt.ids[77 + 26] == SDC_CLIP_EOS);
    sdc_prompt_tokens_free(&pt);
    free(s);
    free(head);
    free(tail);
    /* a comma further back than 20 tokens does not move anything */
    head = repeat("a ", 50, ",");
    tail = repeat(" a", 50, "");
    s = malloc(strlen(head) + strlen(tail) + 1);
    strcpy(s, head);
    strcat(s, tail);
    tokenize(t, s, &def, &pt);
    CHECK(pt.n_chunks == 2 && pt.ids[51] == SDC_CLIP_COMMA && pt.ids[75] == A && pt.ids[77 + 26] == A &&
          pt.ids[77 + 27] == SDC_CLIP_EOS);
    sdc_prompt_tokens_free(&pt);
    free(s);
    free(head);
    free(tail);

    /* BREAK */
    tokenize(t, "a BREAK b", &def, &pt);
    CHECK(pt.n_chunks == 2 && pt.ids[1] == A && pt.ids[2] == SDC_CLIP_EOS && pt.ids[77 + 1] == B);
    CHECK(pt.n_tokens == 75 + 1);
    sdc_prompt_tokens_free(&pt);
    tokenize(t, "a BREAK", &def, &pt);
    CHECK(pt.n_chunks == 1);
    sdc_prompt_tokens_free(&pt);
    tokenize(t, "BREAK a", &def, &pt); /* A1111 emits the empty first chunk */
    CHECK(pt.n_chunks == 2 && pt.ids[1] == SDC_CLIP_EOS && pt.ids[77 + 1] == A);
    sdc_prompt_tokens_free(&pt);
    tokenize(t, "(a BREAK b)", &def, &pt); /* scaled marker: the word "break" at -1.1 */
    CHECK(pt.n_chunks == 1 && pt.ids[2] == BREAK && pt.weights[2] == (float)-1.1 && pt.weights[1] == 1.1f);
    sdc_prompt_tokens_free(&pt);
    s = repeat("a ", 75, "BREAK b"); /* BREAK right after a full chunk adds no empty chunk */
    tokenize(t, s, &def, &pt);
    CHECK(pt.n_chunks == 2 && pt.ids[77 + 1] == B);
    sdc_prompt_tokens_free(&pt);
    free(s);

    /* a golden prompt of 129 tokens, comma-split: every non-pad id in order, in 2 chunks */
    const char *longp =
        "a highly detailed portrait of an old sailor with a grey beard, wearing a yellow raincoat, standing on the deck "
        "of a fishing boat in a storm, waves crashing, rain, dramatic lighting, photorealistic, 85mm lens, sharp focus, "
        "award winning photograph, national geographic, muted colors, film grain, moody atmosphere, fog in the "
        "background, seagulls circling above the mast, ropes and nets piled on the deck, lantern glowing warmly, a small "
        "black cat sitting on a barrel, the coastline and a lighthouse barely visible through the rain, cold blue "
        "shadows and warm orange highlights, highly intricate textures on the weathered wooden planks";
    int32_t *ids;
    int n;
    char err[256];
    CHECK(sdc_tokenizer_encode(t, longp, &ids, &n, err, sizeof err) == SDC_OK);
    tokenize(t, longp, &def, &pt);
    CHECK(pt.n_chunks == 2 && n == 127);
    int k = 0;
    for (int c = 0; c < pt.n_chunks; c++) {
        int i = 1;
        while (i < 76 && k < n && pt.ids[c * 77 + i] == ids[k]) { i++; k++; }
        CHECK(c == 0 ? pt.ids[c * 77 + i - 1] == SDC_CLIP_COMMA : i > 1); /* chunk 0 ends at a comma */
        for (; i < 77; i++) CHECK(pt.ids[c * 77 + i] == SDC_CLIP_EOS);
    }
    CHECK(k == n);
    printf("129-token golden prompt: %d tokens in %d chunks, first chunk ends after a comma\n", n, pt.n_chunks);
    sdc_prompt_tokens_free(&pt);
    free(ids);
}

int main(void) {
    test_parse();
    tu_require_shared();
    sdc_merges m;
    char err[512];
    if (sdc_merges_load(tu_shared_path("data/bpe_simple_vocab_16e6.txt.gz"), &m, err, sizeof err) != SDC_OK)
        SKIP("%s", err);
    sdc_tokenizer *t;
    CHECK(sdc_tokenizer_new(&m, &t, err, sizeof err) == SDC_OK);
    sdc_merges_free(&m);
    test_chunks(t);
    sdc_tokenizer_free(t);
    return check_done();
}
