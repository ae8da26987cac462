/* Prompts from requests (see prompt.h). */
#include "prompt.h"

#include <stdlib.h>
#include <string.h>

void srv_prompts_free(srv_prompt *p, int n) {
    if (!p) return;
    for (int i = 0; i < n; i++) free(p[i].ids);
}

static int oom(srv_err *err) { return srv_err_set(err, 500, "server_error", NULL, NULL, "out of memory"); }

static int check_len(const srv_prompt *p, const char *param, const srv_limits *lim, srv_err *err) {
    if (p->n < 1) return srv_err_invalid(err, param, "the prompt is empty");
    if (p->n > lim->n_ctx)
        return srv_err_set(err, 400, "invalid_request_error", "context_length_exceeded", param,
                           "the prompt has %d tokens but the context holds %d", p->n, lim->n_ctx);
    return 0;
}

static int encode(const lgpu_tokenizer *tok, const char *text, size_t len, bool add_special, bool parse_special,
                  srv_prompt *out, srv_err *err) {
    lgpu_tokens t = {0};
    if (lgpu_tokenizer_encode(tok, text, len, add_special, parse_special, &t)) {
        lgpu_tokens_destroy(&t);
        return srv_err_set(err, 500, "server_error", NULL, NULL, "tokenizer: %s", lgpu_last_error());
    }
    out->ids = t.ids;
    out->n = (int)t.n;
    return 0;
}

/* content: a string, or an array of {"type":"text","text":...} parts (joined with newlines). */
static int message_text(const json_t *content, size_t i, char **out, srv_err *err) {
    char param[64];
    snprintf(param, sizeof param, "messages[%zu].content", i);
    if (json_is_string(content)) {
        *out = strdup(json_string_value(content));
        return *out ? 0 : oom(err);
    }
    if (!json_is_array(content))
        return srv_err_invalid(err, param, "'%s' must be a string or an array of text parts, not %s", param,
                               srv_json_type_name(content));
    size_t total = 1, k;
    const json_t *part;
    json_array_foreach(content, k, part) {
        const json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        snprintf(param, sizeof param, "messages[%zu].content[%zu]", i, k);
        if (!json_is_object(part) || !json_is_string(type))
            return srv_err_invalid(err, param, "'%s' must be an object with a 'type'", param);
        if (strcmp(json_string_value(type), "text"))
            return srv_err_invalid(err, param, "content parts of type '%s' are not supported (only 'text')",
                                   json_string_value(type));
        if (!json_is_string(text)) return srv_err_invalid(err, param, "'%s.text' must be a string", param);
        total += json_string_length(text) + 1;
    }
    char *s = malloc(total), *p = s;
    if (!s) return oom(err);
    json_array_foreach(content, k, part) {
        const json_t *text = json_object_get(part, "text");
        if (k) *p++ = '\n';
        memcpy(p, json_string_value(text), json_string_length(text));
        p += json_string_length(text);
    }
    *p = 0;
    *out = s;
    return 0;
}

static const char *canonical_role(const char *r) {
    static const char *roles[] = {"system", "user", "assistant"};
    if (!strcmp(r, "developer")) return "system"; /* OpenAI's newer name for system */
    for (size_t i = 0; i < 3; i++)
        if (!strcmp(r, roles[i])) return roles[i];
    return NULL;
}

/* Adds template t's stop strings to gp (copies: the request's stops are freed with it). */
static int add_template_stops(srv_gen_params *gp, lgpu_chat_template t, srv_err *err) {
    const char *stops[LGPU_CHAT_MAX_STOPS];
    if (!gp) return 0;
    int n = lgpu_chat_stops(t, stops);
    for (int i = 0; i < n; i++) {
        char *d = strdup(stops[i]);
        if (!d) return oom(err);
        gp->stops[gp->n_stops++] = d;
    }
    return 0;
}

int srv_prompt_chat(const json_t *body, const lgpu_tokenizer *tok, lgpu_chat_template tmpl, const srv_limits *lim,
                    srv_gen_params *gp, srv_prompt *out, srv_err *err) {
    memset(out, 0, sizeof *out);
    const json_t *msgs = json_object_get(body, "messages");
    if (!msgs || json_is_null(msgs)) return srv_err_invalid(err, "messages", "'messages' is required");
    if (!json_is_array(msgs))
        return srv_err_invalid(err, "messages", "'messages' must be an array, not %s", srv_json_type_name(msgs));
    size_t n = json_array_size(msgs);
    if (n == 0) return srv_err_invalid(err, "messages", "'messages' must not be empty");
    if (n > SRV_MAX_MESSAGES) return srv_err_invalid(err, "messages", "more than %d messages", SRV_MAX_MESSAGES);
    lgpu_chat_msg *cm = calloc(n, sizeof *cm);
    char **texts = calloc(n, sizeof *texts);
    int st = 0;
    if (!cm || !texts) {
        st = oom(err);
        goto out;
    }
    for (size_t i = 0; i < n && !st; i++) {
        const json_t *m = json_array_get(msgs, i);
        char param[64];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!json_is_object(m)) {
            st = srv_err_invalid(err, param, "'%s' must be an object, not %s", param, srv_json_type_name(m));
            break;
        }
        const json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        snprintf(param, sizeof param, "messages[%zu].role", i);
        if (!json_is_string(role)) {
            st = srv_err_invalid(err, param, "'%s' must be a string", param);
            break;
        }
        cm[i].role = canonical_role(json_string_value(role));
        if (!cm[i].role) {
            st = srv_err_invalid(err, param, "'%s' must be one of system, developer, user, assistant (got '%.40s')",
                                 param, json_string_value(role));
            break;
        }
        if ((!content || json_is_null(content)) && !strcmp(cm[i].role, "assistant")) {
            texts[i] = strdup("");
            if (!texts[i]) st = oom(err);
        } else if (!content) {
            snprintf(param, sizeof param, "messages[%zu].content", i);
            st = srv_err_invalid(err, param, "'%s' is required", param);
        } else {
            st = message_text(content, i, &texts[i], err);
        }
        cm[i].content = texts[i];
    }
    if (st) goto out;
    char *rendered = NULL;
    if (lgpu_chat_apply_tok(tok, lgpu_chat_name(tmpl), cm, n, true, &rendered)) {
        st = srv_err_invalid(err, "messages", "the chat template rejected the messages: %s", lgpu_last_error());
        goto out;
    }
    /* the template writes BOS and control tokens as text */
    st = encode(tok, rendered, strlen(rendered), false, true, out, err);
    free(rendered);
    if (!st) st = check_len(out, "messages", lim, err);
    if (!st) st = add_template_stops(gp, tmpl, err);
out:
    if (texts)
        for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(cm);
    if (st) {
        free(out->ids);
        memset(out, 0, sizeof *out);
    }
    return st;
}

static bool is_token_array(const json_t *a) {
    if (!json_is_array(a) || json_array_size(a) == 0) return false;
    size_t i;
    const json_t *v;
    json_array_foreach(a, i, v) if (!json_is_integer(v)) return false;
    return true;
}

static int from_ids(const json_t *a, const char *param, const srv_limits *lim, srv_prompt *out, srv_err *err) {
    size_t n = json_array_size(a);
    if (n > (size_t)lim->n_ctx)
        return srv_err_set(err, 400, "invalid_request_error", "context_length_exceeded", param,
                           "the prompt has %zu tokens but the context holds %d", n, lim->n_ctx);
    out->ids = malloc(n * sizeof *out->ids);
    if (!out->ids) return oom(err);
    out->n = (int)n;
    for (size_t i = 0; i < n; i++) {
        json_int_t id = json_integer_value(json_array_get(a, i));
        if (id < 0 || id >= lim->n_vocab)
            return srv_err_invalid(err, param, "token id %lld at %s[%zu] is outside the vocabulary [0, %d)",
                                   (long long)id, param, i, lim->n_vocab);
        out->ids[i] = (int32_t)id;
    }
    return 0;
}

static int one_prompt(const json_t *v, const char *param, const lgpu_tokenizer *tok, const srv_limits *lim,
                      srv_prompt *out, srv_err *err) {
    int st;
    if (json_is_string(v)) st = encode(tok, json_string_value(v), json_string_length(v), true, false, out, err);
    else if (is_token_array(v)) st = from_ids(v, param, lim, out, err);
    else
        return srv_err_invalid(err, param, "'%s' must be a string or an array of token ids, not %s", param,
                               srv_json_type_name(v));
    return st ? st : check_len(out, param, lim, err);
}

int srv_prompt_completion(const json_t *body, const char *key, const lgpu_tokenizer *tok, const srv_limits *lim,
                          srv_prompt **out, int *n, srv_err *err) {
    *out = NULL;
    *n = 0;
    const json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v)) return srv_err_invalid(err, key, "'%s' is required", key);
    bool many = json_is_array(v) && json_array_size(v) > 0 && !is_token_array(v);
    size_t count = many ? json_array_size(v) : 1;
    if (json_is_array(v) && json_array_size(v) == 0) return srv_err_invalid(err, key, "'%s' must not be empty", key);
    if (count > SRV_MAX_PROMPTS) return srv_err_invalid(err, key, "more than %d prompts", SRV_MAX_PROMPTS);
    srv_prompt *p = calloc(count, sizeof *p);
    if (!p) return oom(err);
    for (size_t i = 0; i < count; i++) {
        char param[48];
        if (many) snprintf(param, sizeof param, "%s[%zu]", key, i);
        else snprintf(param, sizeof param, "%s", key);
        if (one_prompt(many ? json_array_get(v, i) : v, param, tok, lim, &p[i], err)) {
            srv_prompts_free(p, (int)count);
            free(p);
            return -1;
        }
    }
    *out = p;
    *n = (int)count;
    return 0;
}
