/* lgpu — tokenizers: SentencePiece-style BPE with scores (LLaMA 1/2) and byte-level
 * BPE with merges (LLaMA 3), loaded from a GGUF, a llama2.c tokenizer.bin or
 * an HF tokenizer.json; encoding, decoding, streaming detokenization and chat
 * templates. Encoding reproduces llama.cpp's llama_tokenize.
 *
 * A tokenizer is immutable after creation: encode/decode may be called from
 * several threads at once. */
#ifndef LGPU_TOKENIZER_H
#define LGPU_TOKENIZER_H

#include "lgpu/gguf.h"
#include "lgpu/lgpu.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lgpu_tokenizer lgpu_tokenizer;

typedef enum lgpu_tok_kind {
    LGPU_TOK_SPM = 1, /* SentencePiece BPE with scores, "▁" for spaces, <0xNN> byte fallback */
    LGPU_TOK_BPE = 2, /* GPT-2 style byte-level BPE with ranked merges and a regex pre-tokenizer */
} lgpu_tok_kind;

/* Token types: the values of GGUF's tokenizer.ggml.token_type. */
typedef enum lgpu_token_type {
    LGPU_TOKEN_NORMAL = 1,
    LGPU_TOKEN_UNKNOWN = 2,
    LGPU_TOKEN_CONTROL = 3,      /* <s>, <|eot_id|>: text only when parse_special / rendered only when asked */
    LGPU_TOKEN_USER_DEFINED = 4, /* always split out of the text, always rendered */
    LGPU_TOKEN_UNUSED = 5,
    LGPU_TOKEN_BYTE = 6, /* <0xNN> */
} lgpu_token_type;

/* ---- creation ---------------------------------------------------------- */

/* Loads by looking at `path`: a .gguf file, an HF directory (tokenizer.json +
 * tokenizer_config.json), a tokenizer.json, or a llama2.c tokenizer.bin (all
 * tokens). */
int lgpu_tokenizer_create(const char *path, lgpu_tokenizer **out);
/* From an open GGUF: tokenizer.ggml.model "llama" (SPM) or "gpt2" (BPE). */
int lgpu_tokenizer_from_gguf(const lgpu_gguf *gguf, lgpu_tokenizer **out);
/* llama2.c tokenizer.bin; n_vocab > 0: the file must hold exactly that many
 * tokens (the checkpoint's vocab_size; LGPU_EFORMAT otherwise), 0: any
 * number. Ids 0/1/2 are unk/bos/eos, "<0xNN>" pieces are byte tokens. */
int lgpu_tokenizer_from_llama2c(const char *path, int n_vocab, lgpu_tokenizer **out);
/* HF tokenizer.json; config_json (tokenizer_config.json: bos/eos tokens,
 * add_bos_token, chat_template) may be NULL, then the file beside it is used
 * if present. */
int lgpu_tokenizer_from_hf(const char *tokenizer_json, const char *config_json, lgpu_tokenizer **out);
void lgpu_tokenizer_destroy(lgpu_tokenizer *tok);

/* ---- properties -------------------------------------------------------- */

lgpu_tok_kind lgpu_tokenizer_kind(const lgpu_tokenizer *tok);
int32_t lgpu_tokenizer_n_vocab(const lgpu_tokenizer *tok);
/* Special ids, -1 when the vocabulary has none. eot: <|eot_id|> / <|im_end|> /
 * <|end|> / <|eot|>, else -1. */
int32_t lgpu_tokenizer_bos(const lgpu_tokenizer *tok);
int32_t lgpu_tokenizer_eos(const lgpu_tokenizer *tok);
int32_t lgpu_tokenizer_eot(const lgpu_tokenizer *tok);
int32_t lgpu_tokenizer_unk(const lgpu_tokenizer *tok);
int32_t lgpu_tokenizer_pad(const lgpu_tokenizer *tok);
/* Whether encode(add_special = true) prepends BOS / appends EOS. */
bool lgpu_tokenizer_add_bos(const lgpu_tokenizer *tok);
bool lgpu_tokenizer_add_eos(const lgpu_tokenizer *tok);
/* End of generation: eos, eot, and <|end_of_text|>, <|eot_id|>, <|eom_id|>,
 * <|im_end|>, <|endoftext|>, </s> when the vocabulary has them. */
bool lgpu_tokenizer_is_eog(const lgpu_tokenizer *tok, int32_t id);
bool lgpu_tokenizer_is_control(const lgpu_tokenizer *tok, int32_t id);
/* The vocabulary entry as stored (SPM "▁Hello", BPE "ĠHello", "<0x0A>"), NULL
 * for an id out of range. */
const char *lgpu_tokenizer_token_text(const lgpu_tokenizer *tok, int32_t id);
lgpu_token_type lgpu_tokenizer_token_type(const lgpu_tokenizer *tok, int32_t id);
float lgpu_tokenizer_token_score(const lgpu_tokenizer *tok, int32_t id);
/* Id of an exact vocabulary entry (stored form), -1 if absent. */
int32_t lgpu_tokenizer_find(const lgpu_tokenizer *tok, const char *text);
/* tokenizer.chat_template / tokenizer_config.json chat_template, NULL if none. */
const char *lgpu_tokenizer_chat_template(const lgpu_tokenizer *tok);

/* ---- encoding ---------------------------------------------------------- */

/* A growable id list. Zero-initialise; free with lgpu_tokens_destroy. */
typedef struct lgpu_tokens {
    int32_t *ids;
    size_t n, cap;
} lgpu_tokens;
void lgpu_tokens_destroy(lgpu_tokens *t);

/* Appends the ids of text[0..len) to `out` (len may be (size_t)-1 for a
 * NUL-terminated string). add_special: BOS/EOS as lgpu_tokenizer_add_bos/eos
 * say. parse_special: control tokens written in the text ("<|eot_id|>",
 * "<s>") become their ids; without it they are tokenized as plain text
 * (user-defined tokens are split out either way, as in llama.cpp). Any bytes,
 * invalid UTF-8 included, are accepted (SPM: <0xNN> byte fallback). */
int lgpu_tokenizer_encode(const lgpu_tokenizer *tok, const char *text, size_t len, bool add_special,
                          bool parse_special, lgpu_tokens *out);
/* Same into a caller buffer: writes min(n, cap) ids and the full count to
 * *n_out; returns LGPU_EFULL if cap < n. */
int lgpu_tokenizer_encode_buf(const lgpu_tokenizer *tok, const char *text, size_t len, bool add_special,
                              bool parse_special, int32_t *ids, size_t cap, size_t *n_out);

/* ---- decoding ---------------------------------------------------------- */

/* Bytes of one token: SPM "▁" -> ' ', <0xNN> -> the byte, byte-level BPE
 * -> the raw bytes; control tokens give their text only with `special`
 * (else ""). Not NUL-terminated; *len receives the full length, LGPU_EFULL if
 * it exceeds cap. */
int lgpu_tokenizer_piece(const lgpu_tokenizer *tok, int32_t id, bool special, char *buf, size_t cap,
                         size_t *len);
/* Whole sequence to bytes (exactly the streaming detokenizer's output,
 * flushed). The leading space the SPM encoder added (dummy prefix) is dropped
 * from the first piece. *out is malloc'd and NUL-terminated. */
int lgpu_tokenizer_decode(const lgpu_tokenizer *tok, const int32_t *ids, size_t n, bool special, char **out,
                          size_t *len);

/* Streaming detokenizer: feed ids one at a time, get back only complete UTF-8
 * (an incomplete trailing sequence is held until its bytes arrive; bytes
 * that can never form a character are passed through as they are, so the
 * concatenated output equals lgpu_tokenizer_decode). */
typedef struct lgpu_detok lgpu_detok;
/* A new detokenizer starts at the beginning of a text (see lgpu_detok_reset). */
int lgpu_detok_create(const lgpu_tokenizer *tok, bool special, lgpu_detok **out);
void lgpu_detok_destroy(lgpu_detok *d);
/* Drops held bytes. at_start: the next piece begins a text (SPM: its dummy-
 * prefix space is dropped, as after create); false: pieces continue a text
 * already shown (e.g. generated tokens after a prompt), nothing is dropped. */
void lgpu_detok_reset(lgpu_detok *d, bool at_start);
/* *text (NUL-terminated, *len bytes, possibly 0) stays valid until the next call on d. */
int lgpu_detok_push(lgpu_detok *d, int32_t id, const char **text, size_t *len);
/* Emits whatever is held back (an incomplete sequence at the end of output). */
int lgpu_detok_flush(lgpu_detok *d, const char **text, size_t *len);

/* ---- chat templates ---------------------------------------------------- */

typedef enum lgpu_chat_template {
    LGPU_CHAT_UNKNOWN = 0,
    LGPU_CHAT_CHATML, /* <|im_start|>role\ncontent<|im_end|>\n */
    LGPU_CHAT_LLAMA2, /* <s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nuser [/INST] answer </s> (Meta's template) */
    LGPU_CHAT_LLAMA3, /* <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|> */
    LGPU_CHAT_ZEPHYR, /* <|role|>\ncontent</s>\n */
    LGPU_CHAT_COUNT_
} lgpu_chat_template;

typedef struct lgpu_chat_msg {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
} lgpu_chat_msg;

/* By distinctive substrings of a Jinja template, as llama.cpp's
 * llm_chat_detect_template; LGPU_CHAT_UNKNOWN if none matches. */
lgpu_chat_template lgpu_chat_detect(const char *jinja);
/* "chatml", "llama2", "llama3", "zephyr" (also "llama-2", "llama-3"); UNKNOWN otherwise. */
lgpu_chat_template lgpu_chat_from_name(const char *name);
const char *lgpu_chat_name(lgpu_chat_template t);
/* The template for a tokenizer: `override` (a name) if given, else detected
 * from its chat_template, else (no template or an unrecognised one) ChatML,
 * llama.cpp's default. LGPU_EINVAL for an unknown override name. */
int lgpu_chat_template_of(const lgpu_tokenizer *tok, const char *override_name, lgpu_chat_template *out);
/* Renders msgs as transformers' apply_chat_template renders the template's
 * reference Jinja (BOS written as text: tokenize the result with
 * add_special = false, parse_special = true). bos/eos: the texts used for
 * bos_token/eos_token, NULL for the template's usual ones ("<s>"/"</s>",
 * "<|begin_of_text|>"). LGPU_EINVAL if roles break the template's rules
 * (LLaMA-2: user/assistant must alternate). *out is malloc'd. */
int lgpu_chat_apply(lgpu_chat_template t, const lgpu_chat_msg *msgs, size_t n, bool add_generation_prompt,
                    const char *bos, const char *eos, char **out);
/* Stop strings for a reply in template t: its end-of-turn and next-turn
 * markers, for vocabularies where they come out as plain text rather than
 * an end-of-generation token (static strings; at most LGPU_CHAT_MAX_STOPS).
 * Returns how many were written to out. */
#define LGPU_CHAT_MAX_STOPS 2
int lgpu_chat_stops(lgpu_chat_template t, const char **out);
/* Same with the template and bos/eos texts of a tokenizer (override as in lgpu_chat_template_of). */
int lgpu_chat_apply_tok(const lgpu_tokenizer *tok, const char *override_name, const lgpu_chat_msg *msgs,
                        size_t n, bool add_generation_prompt, char **out);

#ifdef __cplusplus
}
#endif
#endif
