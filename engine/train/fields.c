/* Example fields (fields.h): every check that makes a line bad, in one place,
 * each with a message that says what the line should have been. */
#include "train/fields.h"

#include "train/jsonl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool has(const json_t *o, const char *key) { return json_object_get(o, key) != NULL; }

lgpu_dataset_format lgpu_ds_detect(const json_t *o) {
    if (has(o, "messages")) return LGPU_DATASET_CHAT;
    if (has(o, "instruction") || has(o, "output")) return LGPU_DATASET_ALPACA;
    if (has(o, "prompt") || has(o, "completion")) return LGPU_DATASET_PROMPT_COMPLETION;
    if (has(o, "text")) return LGPU_DATASET_TEXT;
    return LGPU_DATASET_AUTO;
}

/* Whitespace only counts as empty: a response of "\n" teaches nothing. */
static bool blank(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return false;
    return true;
}

/* A string field: 0 and *out, or 1 with the problem. Optional fields may be
 * absent or null (then ""); required non-empty ones must have text. */
enum { REQUIRED = 1, OPTIONAL = 2, NONEMPTY = 4 };

static int string_field(const json_t *o, const char *key, int how, const char **out, char *why, size_t cap) {
    const json_t *v = json_object_get(o, key);
    if (!v || ((how & OPTIONAL) && json_is_null(v))) {
        if (how & OPTIONAL) {
            *out = "";
            return 0;
        }
        snprintf(why, cap, "missing \"%s\"", key);
        return 1;
    }
    if (!json_is_string(v)) {
        snprintf(why, cap, "\"%s\" must be a string, not %s", key, lgpu_json_type_name(v));
        return 1;
    }
    *out = json_string_value(v);
    if ((how & NONEMPTY) && blank(*out)) {
        snprintf(why, cap, "\"%s\" is empty", key);
        return 1;
    }
    return 0;
}

static const char *const ROLES[] = {"system", "user", "assistant"};

static int chat_fields(const json_t *o, lgpu_ds_fields *f, char *why, size_t cap) {
    const json_t *msgs = json_object_get(o, "messages");
    if (!json_is_array(msgs)) {
        snprintf(why, cap, "\"messages\" must be an array, not %s", lgpu_json_type_name(msgs));
        return 1;
    }
    size_t n = json_array_size(msgs);
    if (!n) {
        snprintf(why, cap, "\"messages\" is empty");
        return 1;
    }
    f->msgs = calloc(n, sizeof *f->msgs);
    if (!f->msgs) return lgpu_set_error(LGPU_ENOMEM, "dataset: out of memory");
    f->n_msgs = n;
    bool assistant = false;
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(msgs, i);
        if (!json_is_object(m)) {
            snprintf(why, cap, "messages[%zu] must be an object with \"role\" and \"content\", not %s", i,
                     lgpu_json_type_name(m));
            return 1;
        }
        const json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        if (!json_is_string(role)) {
            snprintf(why, cap, "messages[%zu].role must be a string, not %s", i,
                     role ? lgpu_json_type_name(role) : "missing");
            return 1;
        }
        const char *r = json_string_value(role);
        f->msgs[i].role = NULL;
        for (size_t k = 0; k < sizeof ROLES / sizeof *ROLES; k++)
            if (!strcmp(r, ROLES[k])) f->msgs[i].role = ROLES[k];
        if (!f->msgs[i].role) {
            snprintf(why, cap, "messages[%zu].role is \"%.40s\": it must be system, user or assistant", i, r);
            return 1;
        }
        if (!json_is_string(content)) {
            snprintf(why, cap, "messages[%zu].content must be a string, not %s", i,
                     content ? lgpu_json_type_name(content) : "missing");
            return 1;
        }
        f->msgs[i].content = json_string_value(content);
        if (!strcmp(r, "assistant")) {
            if (blank(f->msgs[i].content)) {
                snprintf(why, cap, "messages[%zu] (assistant) has empty content", i);
                return 1;
            }
            assistant = true;
        }
    }
    if (!assistant) {
        snprintf(why, cap, "the chat has no assistant message: nothing to learn from");
        return 1;
    }
    return 0;
}

int lgpu_ds_fields_get(const json_t *o, lgpu_dataset_format format, const char *decided_by, lgpu_ds_fields *f,
                       char *why, size_t cap) {
    memset(f, 0, sizeof *f);
    f->format = format;
    lgpu_dataset_format seen = lgpu_ds_detect(o);
    if (seen == LGPU_DATASET_AUTO) {
        char keys[160] = "";
        size_t len = 0;
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)o, k, v) {
            if (len + strlen(k) + 5 >= sizeof keys) {
                snprintf(keys + len, sizeof keys - len, ", ...");
                break;
            }
            len += (size_t)snprintf(keys + len, sizeof keys - len, "%s\"%s\"", len ? ", " : "", k);
        }
        snprintf(why, cap,
                 "none of the known fields (\"instruction\"/\"output\", \"prompt\"/\"completion\", \"messages\", "
                 "\"text\"); it has %s",
                 len ? keys : "no fields");
        return 1;
    }
    if (format == LGPU_DATASET_AUTO) format = f->format = seen;
    /* a line written in another format than the file's: say both, rather
     * than "missing output" for a perfectly good chat line */
    bool own_keys = format == seen || (format == LGPU_DATASET_ALPACA && (has(o, "instruction") || has(o, "output"))) ||
                    (format == LGPU_DATASET_PROMPT_COMPLETION && (has(o, "prompt") || has(o, "completion"))) ||
                    (format == LGPU_DATASET_CHAT && has(o, "messages")) ||
                    (format == LGPU_DATASET_TEXT && has(o, "text"));
    if (!own_keys) {
        /* its own problems too, so that fixing the format is not followed
         * by a second round of errors on the same line */
        lgpu_ds_fields own;
        char own_why[300];
        int rc = lgpu_ds_fields_get(o, seen, decided_by, &own, own_why, sizeof own_why);
        lgpu_ds_fields_free(&own);
        if (rc < 0) return rc;
        const char *name = lgpu_dataset_format_name(seen);
        size_t n = (size_t)snprintf(why, cap, "%s %s example, but the file is %s (decided by %s)",
                                    seen == LGPU_DATASET_ALPACA ? "an" : "a", name, lgpu_dataset_format_name(format),
                                    decided_by);
        if (rc && n < cap) snprintf(why + n, cap - n, "; and as %s: %s", lgpu_dataset_format_name(seen), own_why);
        return 1;
    }
    switch (format) {
    case LGPU_DATASET_ALPACA:
        if (string_field(o, "instruction", REQUIRED, &f->instruction, why, cap) ||
            string_field(o, "input", OPTIONAL, &f->input, why, cap) ||
            string_field(o, "output", REQUIRED | NONEMPTY, &f->output, why, cap))
            return 1;
        return 0;
    case LGPU_DATASET_PROMPT_COMPLETION:
        if (string_field(o, "prompt", REQUIRED, &f->prompt, why, cap) ||
            string_field(o, "completion", REQUIRED | NONEMPTY, &f->completion, why, cap))
            return 1;
        return 0;
    case LGPU_DATASET_TEXT: return string_field(o, "text", REQUIRED | NONEMPTY, &f->text, why, cap);
    case LGPU_DATASET_CHAT: return chat_fields(o, f, why, cap);
    default: return lgpu_set_error(LGPU_EINVAL, "dataset: format %d", (int)format);
    }
}

void lgpu_ds_fields_free(lgpu_ds_fields *f) {
    free(f->msgs);
    f->msgs = NULL;
    f->n_msgs = 0;
}

char *lgpu_ds_id_text(const json_t *o, bool *is_string) {
    const json_t *id = json_object_get(o, "id");
    *is_string = json_is_string(id);
    if (!id || json_is_null(id)) return NULL;
    if (json_is_string(id)) return strdup(json_string_value(id));
    if (json_is_integer(id)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
        return strdup(buf);
    }
    return json_dumps(id, JSON_COMPACT | JSON_ENCODE_ANY);
}
