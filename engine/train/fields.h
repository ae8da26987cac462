/* One JSONL example's fields: which format a JSON object is written in, and
 * its fields checked and picked out for rendering. */
#ifndef LGPU_TRAIN_FIELDS_H
#define LGPU_TRAIN_FIELDS_H

#include <jansson.h>

#include "lgpu/dataset.h"
#include "lgpu/tokenizer.h"

typedef struct lgpu_ds_fields {
    lgpu_dataset_format format;
    const char *instruction, *input, *output; /* ALPACA (input "" when absent or null) */
    const char *prompt, *completion;          /* PROMPT_COMPLETION */
    const char *text;                         /* TEXT */
    lgpu_chat_msg *msgs;                      /* CHAT: malloc'd array; strings borrowed */
    size_t n_msgs;
} lgpu_ds_fields;

/* The format whose keys the object has, looking for "messages", then
 * "instruction"/"output", "prompt"/"completion", "text"; AUTO if none. */
lgpu_dataset_format lgpu_ds_detect(const json_t *obj);

/* Checks `obj` as an example of `format` (AUTO: the one it has) and fills *out (its
 * strings belong to obj). `decided_by` says where the format came from, for
 * the message when the line is in another format ("line 1", "the params").
 * Returns 0, 1 with the problem in `why` (a bad line), or LGPU_ENOMEM. */
int lgpu_ds_fields_get(const json_t *obj, lgpu_dataset_format format, const char *decided_by, lgpu_ds_fields *out,
                       char *why, size_t why_cap);
void lgpu_ds_fields_free(lgpu_ds_fields *f);

/* The example's "id" as text: a string as is, an integer in decimal, other
 * values as compact JSON; NULL when absent (or null). malloc'd. *is_string
 * says whether it was a string (messages quote those). */
char *lgpu_ds_id_text(const json_t *obj, bool *is_string);

#endif
