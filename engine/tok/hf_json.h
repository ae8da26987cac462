/* Readings of a Hugging Face tokenizer.json / tokenizer_config.json shared by
 * the tokenizer loader (tok/load_hf.c) and the GGUF converter
 * (model/hf_vocab.c), so a converted GGUF tokenizes as the directory does. */
#ifndef LGPU_TOK_HF_JSON_H
#define LGPU_TOK_HF_JSON_H

#include <jansson.h>
#include <stdbool.h>

typedef enum {
    LGPU_HF_BYTELEVEL,  /* GPT-2 / LLaMA-3: byte-level BPE with a pre-tokenizer regex */
    LGPU_HF_SPM,        /* LLaMA-2 style: BPE on "▁"-escaped text with byte fallback */
    LGPU_HF_UNSUPPORTED /* neither */
} lgpu_hf_style;

/* What kind of BPE tokenizer.json's root describes; for SPM, *space_prefix
 * says whether text gets a leading "▁" (a Prepend normalizer or a Metaspace
 * pre-tokenizer that adds it). */
lgpu_hf_style lgpu_hf_bpe_style(json_t *root, bool *space_prefix);

/* The first component of `type` in o or in its nested sequence lists. */
json_t *lgpu_hf_find_component(json_t *o, const char *type);

/* tokenizer_config.json's chat_template: the string, or from a list of
 * {name, template} the one named "default" (else the first); NULL if none. */
const char *lgpu_hf_chat_template(json_t *config);

/* "<s>" or an AddedToken object {"content": "<s>", ...}; NULL otherwise. */
const char *lgpu_hf_token_string(json_t *v);

#endif
