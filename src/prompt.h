/* prompt.h - AUTOMATIC1111's prompt syntax: emphasis weights, BREAK, and chunking of long
 * prompts into 77-token rows for the SD 1.x text encoder.
 *
 *     sdc_prompt_tokens pt;
 *     sdc_prompt_params pp = sdc_prompt_default_params();
 *     if (sdc_prompt_tokenize(tok, "a (red:1.3) fox, [blurry]", &pp, &pt, err, sizeof err)) ...
 *     // pt.ids[c * 77 + i], pt.weights[c * 77 + i] for chunk c < pt.n_chunks
 *     sdc_prompt_tokens_free(&pt);
 *
 * Syntax (ref: A1111 modules/prompt_parser.py, parse_prompt_attention, and its doctests):
 *   (text)        weight x 1.1            [text]       weight / 1.1
 *   (text:1.3)    weight x 1.3            nesting multiplies: ((a)) = 1.21, ((a:2)) = 2.2
 *   \( \) \[ \]   literal brackets; \\ a literal backslash; a lone \ is dropped
 *   an unclosed ( or [ applies its factor to the end of the prompt; a ')' or ']' with no
 *   opener is kept as literal text; (x:w) with no open '(' is text as well.
 *   BREAK         (upper case, a whole word, only in plain text) ends the current 75-token
 *                 chunk. As in A1111, a BREAK inside brackets has its marker weight scaled
 *                 and is then just the word "break" with that weight.
 *   The weight of (x:w) is [+-]?[.0-9]+ with ASCII digits and spaces around it; a value
 *   that is not a number (A1111 raises ValueError) counts as 1.0 here.
 *   Adjacent segments with equal weights are merged, as A1111 does.
 * Not handled here (A1111 does them in other places): prompt editing/alternation
 * [a:b:0.5] [a|b], textual-inversion embedding names, LoRA tags <lora:x:1>.
 *
 * Chunking (ref: A1111 modules/sd_hijack_clip.py, FrozenCLIPEmbedderWithCustomWordsBase
 * .tokenize_line): each segment's text is tokenized on its own (no BOS/EOS), tokens carry
 * the segment's weight. A chunk holds 75 tokens. When the 76th token arrives and is not a
 * comma, and a comma (",</w>", id 267) was placed in this chunk at most comma_backtrack
 * (default 20, A1111's comma_padding_backtrack) tokens from its end, the tokens after that
 * comma move to the next chunk. BREAK closes the current chunk (a BREAK right after a
 * completed chunk or at the end adds no empty chunk). Each chunk is written as BOS, its
 * tokens, EOS padding to 76, EOS (77 ids), weights 1.0 on BOS/EOS/padding. An empty prompt
 * gives one chunk [BOS, EOS x 76].
 *
 * Applying the weights (A1111 "Original" emphasis, modules/sd_hijack_clip.py process_tokens /
 * modules/emphasis.py EmphasisOriginal), for the encoder output z of one chunk, shape
 * [B, 77, 768] (B = prompts encoded together, normally 1):
 *     original_mean = mean(z)                      (over all B*77*768 values)
 *     z[b, t, :]   *= weights[b, t]
 *     new_mean      = mean(z)
 *     z            *= original_mean / new_mean
 * Chunks are encoded separately and their outputs concatenated along tokens ([1, 77*n, 768]);
 * cond and uncond are padded to the same number of chunks by repeating the empty chunk. */
#ifndef SDC_PROMPT_H
#define SDC_PROMPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sdc.h"
#include "tokenizer.h"

#define SDC_PROMPT_CHUNK 75     /* tokens per chunk, without BOS/EOS */
#define SDC_CLIP_COMMA 267      /* ",</w>" */

typedef struct sdc_prompt_params {
    bool emphasis;          /* parse the syntax (A1111 opts.emphasis != "None"); default true */
    int comma_backtrack;    /* A1111 comma_padding_backtrack; 0 disables; default 20 */
} sdc_prompt_params;

sdc_prompt_params sdc_prompt_default_params(void);

/* One parsed piece: text with its weight; a BREAK marker has text "BREAK" and weight -1. */
typedef struct sdc_prompt_segment {
    char *text;
    double weight;
} sdc_prompt_segment;

/* parse_prompt_attention. *segs is malloc'd; free with sdc_prompt_segments_free. */
sdc_status sdc_prompt_parse(const char *text, sdc_prompt_segment **segs, int *n, char *err, size_t errlen);
void sdc_prompt_segments_free(sdc_prompt_segment *segs, int n);

typedef struct sdc_prompt_tokens {
    int n_chunks;
    int32_t *ids;     /* [n_chunks, 77] */
    float *weights;   /* [n_chunks, 77] */
    int n_tokens;     /* A1111's token count (75 per full chunk + the last chunk's tokens) */
} sdc_prompt_tokens;

sdc_status sdc_prompt_tokenize(const sdc_tokenizer *t, const char *prompt, const sdc_prompt_params *p,
                               sdc_prompt_tokens *out, char *err, size_t errlen);
void sdc_prompt_tokens_free(sdc_prompt_tokens *pt);

#endif
