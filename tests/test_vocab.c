/* test_vocab.c - the CLIP merge list: 48894 rules from OpenAI's file (whose first line is
 * "bpe_simple_vocab_16e6.txt#version: 0.2") and from a Hugging Face style merges.txt
 * ("#version: 0.2" header), first rule "i n", last used rule "jeky ll</w>" (token 49405; line 48895 of the file). */
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "check.h"
#include "testutil.h"
#include "vocab.h"

int main(void) {
    const char *gz = tu_shared_path("data/bpe_simple_vocab_16e6.txt.gz");
    sdc_merges m;
    char err[512];
    CHECK_MSG(sdc_merges_load(gz, &m, err, sizeof err) == SDC_OK, "%s", err);
    CHECK(m.n == SDC_CLIP_N_MERGES);
    CHECK(m.n > 0 && strcmp(m.rules[0], "i n") == 0);
    CHECK_MSG(m.n > 0 && strcmp(m.rules[m.n - 1], "jeky ll</w>") == 0, "last rule '%s'", m.n ? m.rules[m.n - 1] : "");

    /* the same rules as a plain merges.txt with the HF header */
    char path[4200];
    snprintf(path, sizeof path, "%s/merges.txt", tu_tmpdir("test_vocab"));
    FILE *f = fopen(path, "w");
    fprintf(f, "#version: 0.2\n");
    for (int i = 0; i < m.n; i++) fprintf(f, "%s\n", m.rules[i]);
    fclose(f);
    sdc_merges h;
    CHECK_MSG(sdc_merges_load(path, &h, err, sizeof err) == SDC_OK, "%s", err);
    int same = h.n == m.n;
    for (int i = 0; same && i < m.n; i++) same = strcmp(h.rules[i], m.rules[i]) == 0;
    CHECK(same);
    sdc_merges_free(&h);

    /* CRLF line ends and blank lines between the rules, then lines CLIP does not use: reading
     * stops after the rules it needs, so what follows (here a bad rule and a NUL byte) is
     * never inflated or parsed */
    f = fopen(path, "w");
    fprintf(f, "#version: 0.2\r\n");
    for (int i = 0; i < m.n; i++) fprintf(f, "%s%s\r\n", i % 1000 == 7 ? "\r\n\n" : "", m.rules[i]);
    for (int i = 0; i < 20000; i++) fprintf(f, "not a rule at all\n");
    fputc(0, f);
    fclose(f);
    CHECK_MSG(sdc_merges_load(path, &h, err, sizeof err) == SDC_OK, "%s", err);
    same = h.n == m.n;
    for (int i = 0; same && i < m.n; i++) same = strcmp(h.rules[i], m.rules[i]) == 0;
    CHECK(same);
    sdc_merges_free(&h);

    /* too short, and not merge rules */
    f = fopen(path, "w");
    fprintf(f, "#version: 0.2\na b\n");
    fclose(f);
    CHECK(sdc_merges_load(path, &h, err, sizeof err) == SDC_E_FORMAT && strstr(err, "48894"));
    f = fopen(path, "w");
    fprintf(f, "#version: 0.2\nabc\n");
    fclose(f);
    CHECK(sdc_merges_load(path, &h, err, sizeof err) == SDC_E_FORMAT && strstr(err, "line 2"));
    CHECK(sdc_merges_load("/nonexistent/vocab.gz", &h, err, sizeof err) == SDC_E_IO);
    sdc_merges_free(&m);
    return check_done();
}
