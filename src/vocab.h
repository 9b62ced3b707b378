/* vocab.h - reading the CLIP BPE vocabulary: the merge rules, from OpenAI's
 * bpe_simple_vocab_16e6.txt.gz or Hugging Face's merges.txt (plain or gzip). The token
 * vocabulary itself follows from the merges (256 byte tokens, their "</w>" forms, one token
 * per merge, then <|startoftext|> and <|endoftext|>), as in CLIP's tokenizer. */
#ifndef SDC_VOCAB_H
#define SDC_VOCAB_H

#include <stddef.h>
#include "sdc.h"

/* CLIP uses the first 49152 - 256 - 2 = 48894 merges of the file. */
#define SDC_CLIP_N_MERGES 48894

typedef struct sdc_merges {
    char **rules;  /* "a b" strings */
    int n;
    char *storage; /* backing memory */
} sdc_merges;

/* Loads the merges used by CLIP (skipping a first line that holds "#version"). Each rule must be two
 * space-separated symbols. */
sdc_status sdc_merges_load(const char *path, sdc_merges *out, char *err, size_t errlen);
void sdc_merges_free(sdc_merges *m);

#endif
