/* OpenAI response pieces: logprobs in the chat and the completions shapes. */
#ifndef LGPU_SERVE_OAI_FORMAT_H
#define LGPU_SERVE_OAI_FORMAT_H

#include <jansson.h>

#include "request.h"

/* Chat: appends {token, logprob, bytes, top_logprobs:[{token, logprob, bytes}]}
 * for each token to the array `content`. */
void oai_chat_logprobs_append(json_t *content, const lgpu_tokenizer *tok, const srv_tokinfo *t, int n);

/* Completions: {"tokens":[], "token_logprobs":[], "top_logprobs":[], "text_offset":[]}. */
json_t *oai_cmpl_logprobs_new(void);
/* Appends n tokens; text offsets are shifted by `base` (echoed prompt bytes). */
void oai_cmpl_logprobs_append(json_t *lp, const lgpu_tokenizer *tok, const srv_tokinfo *t, int n, size_t base);

#endif
