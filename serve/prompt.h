/* Request prompts to token ids: chat messages through the chat template,
 * completion prompts given as text or token ids. */
#ifndef LGPU_SERVE_PROMPT_H
#define LGPU_SERVE_PROMPT_H

#include <jansson.h>

#include "params.h"

#define SRV_MAX_PROMPTS 64
#define SRV_MAX_MESSAGES 4096

typedef struct srv_prompt {
    int32_t *ids;
    int n;
} srv_prompt;
void srv_prompts_free(srv_prompt *p, int n);

/* body.messages -> one prompt rendered with template `tmpl` (resolved once by
 * the server: lgpu_chat_template_of); its end-of-turn stop strings are added
 * to gp (if not NULL). Errors name the field, e.g. messages[2].role. */
int srv_prompt_chat(const json_t *body, const lgpu_tokenizer *tok, lgpu_chat_template tmpl, const srv_limits *lim,
                    srv_gen_params *gp, srv_prompt *out, srv_err *err);
/* body[key]: a string, an array of strings, an array of token ids or an
 * array of such arrays -> *n prompts (malloc'd array). Text gets BOS as the
 * tokenizer wants. */
int srv_prompt_completion(const json_t *body, const char *key, const lgpu_tokenizer *tok, const srv_limits *lim,
                          srv_prompt **out, int *n, srv_err *err);

#endif
