/* tokenizer.h - the CLIP BPE tokenizer, behaving as OpenAI CLIP's simple_tokenizer.py.
 *
 *     sdc_tokenizer *tok;
 *     char err[512], source[512];
 *     sdc_vocab_search vs = sdc_vocab_search_from_env(model_path, vocab_arg);  // reads getenv
 *     if (sdc_tokenizer_find(&vs, &tok, source, sizeof source, err, sizeof err)) { ...error... }
 *     int32_t *ids; int n;
 *     sdc_tokenizer_encode(tok, "a photo of a cat", &ids, &n, err, sizeof err);  // no BOS/EOS
 *     int32_t row[SDC_CLIP_CTX];
 *     sdc_tokenizer_row77(ids, n, row);   // BOS + first 75 + EOS, padded with EOS
 *     free(ids);
 *     sdc_tokenizer_free(tok);
 *
 * Pipeline of encode (ref: openai/CLIP clip/simple_tokenizer.py, SimpleTokenizer.encode):
 *   1. text cleaning = sdc_text_clean():
 *      a. invalid UTF-8 bytes become U+FFFD (Python would not accept them at all);
 *      b. ftfy.fix_text, the parts that matter for prompts (ftfy 6.3 order, per line, repeated
 *         until nothing changes): HTML entities of the form &name; / &#N; (only while no '<'
 *         has been seen, as ftfy's "auto" mode), mojibake (a run of Windows-1252/Latin-1
 *         characters whose bytes form valid UTF-8 with a multi-byte sequence is decoded:
 *         "cafÃ©" -> "café"; ftfy's badness heuristics are NOT reproduced, so rarer mojibake
 *         is left alone), C1 controls read as Windows-1252, Latin ligatures (ﬁ -> fi),
 *         full-width/half-width forms (ftfy's width map, from NFKC), curly quotes -> ' and ",
 *         line breaks (\r\n, \r, U+2028/9, U+0085 -> \n), ANSI terminal escapes and the
 *         control characters ftfy removes, then Unicode NFC;
 *      c. Python html.unescape twice (HTML5 named entities incl. the legacy ones without ';'
 *         and the longest-prefix rule, numeric references with the HTML5 replacements);
 *      d. whitespace runs (Python str.isspace) -> one space, stripped;
 *      e. Python str.lower() (full Unicode mapping from the generated table, İ -> i̇, final
 *         sigma approximated: Σ after a letter and not before one -> ς).
 *   2. pre-tokenizer: <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|
 *      [^\s\p{L}\p{N}]+ (letters/numbers from the generated Unicode 14 tables);
 *   3. each piece as UTF-8 bytes mapped to CLIP's byte symbols, "</w>" on the last, merged
 *      by rank. The two special strings map straight to 49406 / 49407.
 * Vocabulary: ids 0-255 byte symbols (in bytes_to_unicode order), 256-511 their "</w>"
 * forms, 512 + i the result of merge i, 49406 <|startoftext|>, 49407 <|endoftext|>. */
#ifndef SDC_TOKENIZER_H
#define SDC_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "sdc.h"
#include "vocab.h"

#define SDC_CLIP_BOS 49406
#define SDC_CLIP_EOS 49407
#define SDC_CLIP_N_VOCAB 49408
#define SDC_CLIP_CTX 77 /* SD 1.x row: BOS + 75 tokens + EOS */

typedef struct sdc_tokenizer sdc_tokenizer;
typedef struct sdc_gguf sdc_gguf;

/* The GGUF metadata key `sdc convert --vocab` writes: string array of "a b" merge rules. */
#define SDC_GGUF_KEY_MERGES "tokenizer.ggml.merges"

/* From loaded merge rules (the first SDC_CLIP_N_MERGES are used; fewer is an error). */
sdc_status sdc_tokenizer_new(const sdc_merges *m, sdc_tokenizer **out, char *err, size_t errlen);
/* From a GGUF's tokenizer.ggml.merges. SDC_E_UNSUPPORTED (with a message) when the key is
 * absent, SDC_E_FORMAT when it is not a usable string array. */
sdc_status sdc_tokenizer_from_gguf(const sdc_gguf *g, sdc_tokenizer **out, char *err, size_t errlen);
void sdc_tokenizer_free(sdc_tokenizer *t);

/* Cleans and tokenizes text (UTF-8); *ids (malloc'd, caller frees) gets *n ids without
 * BOS/EOS. An empty prompt gives n = 0 and a non-NULL *ids. */
sdc_status sdc_tokenizer_encode(const sdc_tokenizer *t, const char *text, int32_t **ids, int *n, char *err,
                                size_t errlen);
/* The SD 1.x row: BOS, the first min(n, 75) ids, EOS, then EOS padding to 77. */
void sdc_tokenizer_row77(const int32_t *ids, int n, int32_t row[SDC_CLIP_CTX]);
/* The token's text in CLIP's byte-symbol spelling ("cat</w>"); NULL for an invalid id. */
const char *sdc_tokenizer_token(const sdc_tokenizer *t, int32_t id);

/* Step 1 of encode alone (tests, debugging): the cleaned, lower-cased text, malloc'd. */
sdc_status sdc_text_clean(const char *text, char **out, char *err, size_t errlen);

/* ---- where the vocabulary comes from, in this order:
 *   1. the model file's metadata (a GGUF written by `sdc convert --vocab`): model_gguf if the
 *      caller has the file open, else model_path when it is a GGUF file;
 *   2. vocab_arg (`--vocab FILE`): bpe_simple_vocab_16e6.txt.gz, a Hugging Face merges.txt
 *      (plain or gzip), the vocab.json beside a merges.txt, or a folder holding either file;
 *   3. env_vocab ($SDC_VOCAB), same forms;
 *   4. the per-user cache: $XDG_CACHE_HOME/sdc/bpe_simple_vocab_16e6.txt.gz, or, with
 *      XDG_CACHE_HOME unset or empty, $HOME/.cache/sdc/bpe_simple_vocab_16e6.txt.gz.
 * A source given explicitly (2, 3) that fails to load is an error, not a fall-through.
 * All inputs are plain values: the library reads no environment itself except in
 * sdc_vocab_search_from_env(), the one documented place. */
typedef struct sdc_vocab_search {
    const sdc_gguf *model_gguf; /* optional */
    const char *model_path;     /* optional */
    const char *vocab_arg;      /* optional */
    const char *env_vocab;      /* value of SDC_VOCAB, optional */
    const char *xdg_cache_home; /* value of XDG_CACHE_HOME, optional */
    const char *home;           /* value of HOME, optional */
} sdc_vocab_search;

/* Fills a search from getenv("SDC_VOCAB"), getenv("XDG_CACHE_HOME"), getenv("HOME"). */
sdc_vocab_search sdc_vocab_search_from_env(const char *model_path, const char *vocab_arg);

/* Runs the search. On success *out is the tokenizer and source (optional) says where the
 * vocabulary came from. When nothing is found: SDC_E_IO and the message
 * "no CLIP vocabulary found (model metadata: ..., --vocab: ..., SDC_VOCAB: ..., cache: ...);
 *  download bpe_simple_vocab_16e6.txt.gz from https://github.com/openai/CLIP/raw/main/clip/
 *  and put it at <cache path>, or pass --vocab FILE, or set SDC_VOCAB=FILE". */
sdc_status sdc_tokenizer_find(const sdc_vocab_search *s, sdc_tokenizer **out, char *source, size_t sourcelen,
                              char *err, size_t errlen);

#endif
