/* Examples to text: the prompt templates and the chat template, and where
 * in the text the response lies (the part the loss counts). */
#ifndef LGPU_TRAIN_RENDER_H
#define LGPU_TRAIN_RENDER_H

#include "train/fields.h"

/* Stanford Alpaca's prompts (tatsu-lab/stanford_alpaca, train.py PROMPT_DICT),
 * byte for byte in Python's format syntax. */
extern const char lgpu_alpaca_prompt_input[];
extern const char lgpu_alpaca_prompt_no_input[];

typedef struct lgpu_ds_renderer {
    const char *alpaca_input, *alpaca_no_input; /* checked templates */
    lgpu_chat_template chat;
    const char *bos_text, *eos_text; /* the tokenizer's, for the chat template (NULL: the template's) */
} lgpu_ds_renderer;

/* Sets up r for the tokenizer and the params' templates: LGPU_EINVAL when a
 * template has an unknown {placeholder} or a lone brace, or the chat
 * template name is unknown. */
int lgpu_ds_renderer_init(lgpu_ds_renderer *r, const lgpu_tokenizer *tok, const lgpu_dataset_params *p);

typedef struct lgpu_ds_span {
    size_t start, end; /* bytes [start, end) of the text */
} lgpu_ds_span;

typedef struct lgpu_ds_rendered {
    char *text; /* malloc'd, NUL-terminated */
    size_t len;
    lgpu_ds_span *spans; /* the response(s), ascending; malloc'd */
    size_t n_spans;
    bool parse_special; /* chat: the template writes control tokens as text */
    bool append_eos;    /* EOS follows the text, as part of the response */
} lgpu_ds_rendered;

/* Renders one example. Returns 0, 1 with the problem in `why` when the
 * chat template refuses the messages (a bad line), or a negative status. */
int lgpu_ds_render(const lgpu_ds_renderer *r, const lgpu_ds_fields *f, lgpu_ds_rendered *out, char *why,
                   size_t why_cap);
void lgpu_ds_rendered_free(lgpu_ds_rendered *r);

/* Formats a Python-style template: {instruction} and {input} are replaced,
 * {{ and }} give braces. Exposed for the checks of renderer_init. */
int lgpu_ds_format_template(const char *tmpl, const char *instruction, const char *input, char **out);

#endif
