/* lgpu — training data: a JSONL file of examples, validated line by line,
 * rendered to text and tokenized, with a loss mask per token.
 *
 *   lgpu_dataset_params p = lgpu_dataset_params_default();
 *   p.path = "train.jsonl";
 *   lgpu_dataset *ds;
 *   if (lgpu_dataset_create(tok, &p, &ds)) fprintf(stderr, "%s\n", lgpu_last_error());
 *   lgpu_dataset_example(ds, 0, &tokens, &mask, &n, &id);
 *   lgpu_dataset_destroy(ds);
 *
 * Formats (one per file; AUTO takes the format of the first line that has
 * known fields, and every line must then be that format):
 *   ALPACA             {"instruction", "input" (optional), "output"}: Stanford
 *                      Alpaca's prompt (tatsu-lab/stanford_alpaca PROMPT_DICT,
 *                      with-input and no-input variants), then the output;
 *   PROMPT_COMPLETION  {"prompt", "completion"}: prompt + completion, joined as
 *                      they are (put any separator in the data, as TRL does);
 *   CHAT               {"messages": [{"role", "content"}, ...]}: the model's
 *                      chat template (ChatML when the model has none), whose
 *                      control-token text ("<|im_end|>", "<s>") is tokenized
 *                      as the control token, as `lgpu chat` and lgpu-serve
 *                      do; BOS is added when the tokenizer adds it and the
 *                      template did not write it;
 *   TEXT               {"text"}: the text, every token counted.
 * Keys are looked for in that order (a line with "messages" is chat even if
 * it also has "text"); other keys are ignored, except "id", which names the
 * example in messages. An example's tokens are BOS (when the tokenizer adds
 * it), the rendered text, and EOS after the response (ALPACA,
 * PROMPT_COMPLETION, TEXT; a chat's turns end with the template's own
 * end-of-turn text).
 *
 * Loss mask: mask[j] = 1 when token j is a target of the loss. By default
 * only the response counts: the output / completion / text with its EOS, and
 * in a chat each assistant message's content with its end-of-turn marker
 * (<|im_end|>, <|eot_id|>, </s>). train_on_prompt counts every token but BOS.
 * The prompt and response are tokenized together, as the model sees them,
 * and a token counts when any of its characters lies in the response (as
 * transformers' assistant-token masks), so a token that a merge carries
 * across the border is learnt.
 *
 * Bad lines: a line that is not valid UTF-8, not valid JSON, not an object,
 * has none of the known fields, a field of the wrong type, an empty
 * output/completion/text/assistant message, a chat role other than system,
 * user and assistant, a chat without an assistant message, or one the chat
 * template refuses. Without skip_invalid the first bad line fails
 * lgpu_dataset_create with LGPU_EFORMAT; the detail names file:line, the
 * "id" and the problem, then the number of bad lines in the whole file and
 * the next ones (5 in all). With skip_invalid they are skipped and counted,
 * and their reasons kept (lgpu_dataset_skip_reason). Blank lines are not
 * examples and are passed over.
 *
 * A dataset is immutable after creation; its functions may be called from
 * several threads at once. */
#ifndef LGPU_DATASET_H
#define LGPU_DATASET_H

#include "lgpu/lgpu.h"
#include "lgpu/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lgpu_dataset lgpu_dataset;

typedef enum lgpu_dataset_format {
    LGPU_DATASET_AUTO = 0,
    LGPU_DATASET_ALPACA,
    LGPU_DATASET_PROMPT_COMPLETION,
    LGPU_DATASET_CHAT,
    LGPU_DATASET_TEXT,
} lgpu_dataset_format;

/* "auto", "alpaca", "prompt_completion", "chat", "text"; NULL if unknown. */
const char *lgpu_dataset_format_name(lgpu_dataset_format f);
/* The inverse (also "prompt-completion", "pc"); -1 if unknown. */
int lgpu_dataset_format_from_name(const char *name);

typedef struct lgpu_dataset_params {
    const char *path;           /* the JSONL file (required) */
    lgpu_dataset_format format; /* AUTO (0): from the first line */
    bool skip_invalid;          /* skip and count bad lines instead of failing */
    bool train_on_prompt;       /* count the prompt tokens in the loss too */
    /* ALPACA: Python-format-style templates with {instruction} and {input}
     * ({{ and }} for literal braces). prompt_template is used for examples
     * with a non-empty input (NULL: Stanford Alpaca's), and
     * prompt_template_no_input for the others (NULL: prompt_template, with
     * {input} empty, or Stanford's no-input prompt when that is NULL too).
     * The output follows the prompt directly, as in Stanford's train.py. */
    const char *prompt_template;
    const char *prompt_template_no_input;
    /* CHAT: a template name ("chatml", "llama2", "llama3", "zephyr"), NULL:
     * the tokenizer's, ChatML when it has none or one not recognised. */
    const char *chat_template;
    /* Examples longer than this are cut to it (counted in n_truncated), or
     * dropped (n_dropped) when no response token would remain. 0: no limit. */
    uint32_t max_tokens;
} lgpu_dataset_params;

lgpu_dataset_params lgpu_dataset_params_default(void);

/* Reads, validates, renders and tokenizes the whole file. LGPU_EFORMAT on a
 * bad line (see above) or a file with no examples, LGPU_ENOTFOUND / LGPU_EIO
 * when it cannot be read, LGPU_EINVAL on bad params (a template with an
 * unknown placeholder or chat template name). The tokenizer is only used
 * during the call. */
int lgpu_dataset_create(const lgpu_tokenizer *tok, const lgpu_dataset_params *p, lgpu_dataset **out);
void lgpu_dataset_destroy(lgpu_dataset *ds);

/* The format in use (AUTO resolved). */
lgpu_dataset_format lgpu_dataset_format_of(const lgpu_dataset *ds);
/* Examples kept, in file order. */
size_t lgpu_dataset_size(const lgpu_dataset *ds);
/* Example i: its tokens and loss mask (both n long, valid while ds lives) and
 * its "id" as text (a string id as is, a number in decimal; NULL when the
 * line has none). Any output pointer may be NULL. LGPU_ERANGE if i >= size. */
int lgpu_dataset_example(const lgpu_dataset *ds, size_t i, const int32_t **tokens, const uint8_t **mask,
                         uint32_t *n, const char **id);
/* 1-based line of example i in the file (0 if i is out of range). */
uint64_t lgpu_dataset_example_line(const lgpu_dataset *ds, size_t i);

/* Bad lines skipped (skip_invalid), examples cut to max_tokens, examples
 * dropped because nothing of the response fit in max_tokens. */
size_t lgpu_dataset_n_skipped(const lgpu_dataset *ds);
size_t lgpu_dataset_n_truncated(const lgpu_dataset *ds);
size_t lgpu_dataset_n_dropped(const lgpu_dataset *ds);
/* Why lines were skipped or dropped, "file:line (id "x"): problem", in file
 * order: the first LGPU_DATASET_MAX_REASONS of them; NULL for k past those. */
#define LGPU_DATASET_MAX_REASONS 8
const char *lgpu_dataset_skip_reason(const lgpu_dataset *ds, size_t k);

/* Tokens of the kept examples, those counted in the loss, the longest
 * example (after truncation). */
uint64_t lgpu_dataset_n_tokens(const lgpu_dataset *ds);
uint64_t lgpu_dataset_n_counted(const lgpu_dataset *ds);
uint32_t lgpu_dataset_max_example_tokens(const lgpu_dataset *ds);
/* A 64-bit hash of every example's tokens and mask, in order: equal for the
 * same data, tokenizer and options (a resumed run can check it). */
uint64_t lgpu_dataset_fingerprint(const lgpu_dataset *ds);

/* Deterministic held-out split (--val-split): round(fraction * size)
 * examples, at least 1 when fraction > 0, and at most size - 1, chosen by a
 * shuffle that depends only on (seed, size), go to validation; the rest to
 * training. Both index lists are ascending, disjoint and together cover
 * 0..size-1; they are malloc'd (free them with free(); NULL when empty).
 * LGPU_EINVAL unless 0 <= fraction < 1. */
int lgpu_dataset_split(const lgpu_dataset *ds, double fraction, uint64_t seed, size_t **train, size_t *n_train,
                       size_t **val, size_t *n_val);

#ifdef __cplusplus
}
#endif
#endif
