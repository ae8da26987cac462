/* A rendered example to token ids, each marked prompt, response or BOS. */
#ifndef LGPU_TRAIN_TOKENS_H
#define LGPU_TRAIN_TOKENS_H

#include "train/render.h"

enum { LGPU_DS_PROMPT = 0, LGPU_DS_RESPONSE = 1, LGPU_DS_BOS = 2 };

/* Tokenizes r->text as one text (BOS first when the tokenizer adds it and
 * the text does not begin with it; EOS last when r->append_eos), appending
 * the ids to *ids and a part (LGPU_DS_*) per id to *part (grown with
 * *part_cap; the same count as ids). A token is a response token when any
 * of its bytes lies in a response span; EOS is; BOS tokens never are. */
int lgpu_ds_tokenize(const lgpu_tokenizer *tok, const lgpu_ds_rendered *r, lgpu_tokens *ids, uint8_t **part,
                     size_t *part_cap);

/* The bytes of the text each token of ids[0..n) (encoded from text[0..len)
 * without added BOS/EOS) spells: spans[j]. SentencePiece's dummy-prefix
 * spaces (in a piece, not in the text), whitespace that special tokens strip
 * and <unk> for a byte are accounted for. LGPU_EFORMAT if the pieces do not
 * spell the text (a tokenizer this code does not know). */
int lgpu_ds_token_spans(const lgpu_tokenizer *tok, const char *text, size_t len, const int32_t *ids, size_t n,
                        lgpu_ds_span *spans);

#endif
