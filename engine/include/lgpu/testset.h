/* lgpu — evaluation data: a JSONL test set of prompts and expected answers,
 * or a JSONL file of texts to score by perplexity, validated line by line.
 *
 *   lgpu_testset_params p = {.path = "tests.jsonl"};
 *   lgpu_testset *ts;
 *   if (lgpu_testset_create(&p, &ts)) fprintf(stderr, "%s\n", lgpu_last_error());
 *   const lgpu_test_example *ex = lgpu_testset_get(ts, 0);
 *   lgpu_testset_destroy(ts);
 *
 * A test line is an object with
 *   "id"        optional: a string or an integer naming the example (unique);
 *   "prompt"    a string given to the model as it is, or
 *   "messages"  [{"role": "system"|"user"|"assistant", "content": "..."}, ...]
 *               ending with a user message, rendered with the model's chat
 *               template and the assistant's generation prompt;
 *   "expected"  a string: the answer (exact_match, f1, rouge_l, the text to
 *               find for contains, a PCRE2 pattern for regex; json_valid does
 *               not need one);
 *   "metric"    optional: one of lgpu_metric_names() (default: the params').
 * Other keys are ignored. A perplexity line (params.perplexity) is
 * {"text": "..."} or a test line; its scored text is the "text", or the
 * prompt followed by the expected answer when there is one (a chat: the
 * messages and an assistant message with the expected answer, rendered).
 *
 * Bad lines: not UTF-8, not a JSON object, no "prompt"/"messages" (nor
 * "text"), both, a field of the wrong type, a message with another role or
 * a chat that does not end with a user message, a missing "expected", an
 * unknown metric, a regex that does not compile, an id seen on an earlier
 * line. The first bad line fails lgpu_testset_create with LGPU_EFORMAT; the
 * detail is "file:line (id "x"): problem", then how many lines are bad and
 * the next ones (5 in all). Blank lines are passed over. */
#ifndef LGPU_TESTSET_H
#define LGPU_TESTSET_H

#include "lgpu/lgpu.h"
#include "lgpu/metrics.h"
#include "lgpu/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lgpu_testset lgpu_testset;

typedef struct lgpu_testset_params {
    const char *path;   /* the JSONL file (required) */
    lgpu_metric metric; /* for lines without "metric" (0: exact_match) */
    bool perplexity;    /* a file of texts to score: "text" lines allowed, "expected" optional, no regex check */
} lgpu_testset_params;

typedef struct lgpu_test_example {
    const char *id;   /* "id" as text (an integer in decimal), NULL when the line has none */
    uint64_t line;    /* 1-based line in the file */
    const char *prompt;             /* "prompt", or NULL */
    const lgpu_chat_msg *messages;  /* "messages", or NULL */
    size_t n_messages;
    const char *expected; /* NULL when absent (json_valid, "text" lines) */
    const char *text;     /* "text" of a perplexity line, else NULL */
    lgpu_metric metric;
} lgpu_test_example;

/* Reads and checks the whole file. LGPU_EFORMAT on a bad line (see above) or
 * a file without examples, LGPU_ENOTFOUND / LGPU_EIO when it cannot be read,
 * LGPU_EINVAL on bad params. */
int lgpu_testset_create(const lgpu_testset_params *p, lgpu_testset **out);
void lgpu_testset_destroy(lgpu_testset *ts);

size_t lgpu_testset_size(const lgpu_testset *ts);
/* Example i (valid while ts lives), NULL if out of range. */
const lgpu_test_example *lgpu_testset_get(const lgpu_testset *ts, size_t i);
/* How many examples use metric m. */
size_t lgpu_testset_count_metric(const lgpu_testset *ts, lgpu_metric m);

/* What the model is given for ex: the prompt as it is, or the messages in
 * the chat template (tok's, or chat_template: a name as lgpu_chat_from_name
 * takes) with the generation prompt. *parse_special: whether control-token
 * text in it ("<|im_start|>", "<s>") stands for the control token (true for
 * chats). LGPU_EINVAL when the template refuses the messages. *out is
 * malloc'd. */
int lgpu_test_render_prompt(const lgpu_test_example *ex, const lgpu_tokenizer *tok, const char *chat_template,
                            char **out, bool *parse_special);
/* The text a perplexity run scores for ex: "text", or the prompt followed by
 * the expected answer (chats: rendered with an assistant message). */
int lgpu_test_render_text(const lgpu_test_example *ex, const lgpu_tokenizer *tok, const char *chat_template,
                          char **out, bool *parse_special);

#ifdef __cplusplus
}
#endif
#endif
