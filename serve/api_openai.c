/* OpenAI-compatible endpoints: /v1/chat/completions, /v1/completions,
 * /v1/models. Streaming follows OpenAI's chunk format; an error after the
 * stream started is sent as data: {"error":{...}} and ends the stream. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "gen_run.h"
#include "json_text.h"
#include "models.h"
#include "oai_format.h"
#include "sse.h"

typedef struct {
    char *text;
    size_t len, cap;
    json_t *logprobs; /* chat: the content array; completions: the 4-array object */
    const char *finish;
} choice_acc;

typedef struct {
    srv_http_req *r;
    const lgpu_tokenizer *tok;
    bool chat, stream, include_usage;
    int n_choices, n_jobs;
    int logprobs;
    char id[64];
    long long created;
    const char *model;
    choice_acc *ch;
    char **echo; /* completions echo: prompt text per prompt, or NULL */
    size_t *echo_len;
    int32_t prompt_tokens, completion_tokens, cached_tokens;
    bool failed;
    srv_err err;
} oai_req;

/* ---- request checks shared by both endpoints ---- */

static int check_stream(srv_http_req *r, bool *stream, bool *include_usage) {
    const json_t *s = json_object_get(r->body, "stream"), *so = json_object_get(r->body, "stream_options");
    *stream = *include_usage = false;
    if (s && !json_is_null(s)) {
        if (!json_is_boolean(s)) {
            srv_send_error(r, 400, "invalid_request_error", NULL, "stream", "'stream' must be a boolean, not %s",
                           srv_json_type_name(s));
            return -1;
        }
        *stream = json_is_true(s);
    }
    if (so && !json_is_null(so)) {
        if (!*stream) {
            srv_send_error(r, 400, "invalid_request_error", NULL, "stream_options",
                           "'stream_options' is only allowed when 'stream' is true");
            return -1;
        }
        const json_t *iu = json_is_object(so) ? json_object_get(so, "include_usage") : NULL;
        if (!json_is_object(so) || (iu && !json_is_null(iu) && !json_is_boolean(iu))) {
            srv_send_error(r, 400, "invalid_request_error", NULL, "stream_options.include_usage",
                           "'stream_options' must be an object with a boolean 'include_usage'");
            return -1;
        }
        *include_usage = json_is_true(iu);
    }
    return 0;
}

/* ---- output ---- */

/* The fields every response object starts with; object: its "object" name. */
static json_t *resp_base(const oai_req *q, const char *object) {
    json_t *c = json_object();
    json_object_set_new(c, "id", json_string(q->id));
    json_object_set_new(c, "object", json_string(object));
    json_object_set_new(c, "created", json_integer(q->created));
    json_object_set_new(c, "model", json_string(q->model));
    json_object_set_new(c, "system_fingerprint", json_null());
    return c;
}

static json_t *chunk_base(const oai_req *q) {
    return resp_base(q, q->chat ? "chat.completion.chunk" : "text_completion");
}

/* One chunk for one choice. delta_text: content (chat) / text; finish may be NULL. */
static int send_chunk(oai_req *q, int index, const char *text, size_t len, bool role, const srv_tokinfo *tok,
                      int n_tok, const char *finish) {
    json_t *c = chunk_base(q), *choices = json_array(), *ch = json_object();
    json_object_set_new(ch, "index", json_integer(index));
    json_t *lp = json_null();
    if (q->logprobs >= 0 && n_tok > 0) {
        if (q->chat) {
            json_decref(lp);
            lp = json_object();
            json_t *content = json_array();
            oai_chat_logprobs_append(content, q->tok, tok, n_tok);
            json_object_set_new(lp, "content", content);
        } else {
            json_decref(lp);
            lp = oai_cmpl_logprobs_new();
            oai_cmpl_logprobs_append(lp, q->tok, tok, n_tok, q->echo ? q->echo_len[index / q->n_choices] : 0);
        }
    }
    if (q->chat) {
        json_t *delta = json_object();
        if (role) json_object_set_new(delta, "role", json_string("assistant"));
        if (role || len) json_object_set_new(delta, "content", srv_json_text(text, len));
        json_object_set_new(ch, "delta", delta);
    } else {
        json_object_set_new(ch, "text", srv_json_text(text, len));
    }
    json_object_set_new(ch, "logprobs", lp);
    json_object_set_new(ch, "finish_reason", finish ? json_string(finish) : json_null());
    json_array_append_new(choices, ch);
    json_object_set_new(c, "choices", choices);
    if (q->include_usage) json_object_set_new(c, "usage", json_null());
    return srv_sse_json(q->r, c);
}

static int on_event(void *user, const srv_event *e) {
    oai_req *q = user;
    if (e->kind == SRV_EV_ERROR) {
        srv_gen_fail(q->r, e, q->stream, &q->failed, &q->err);
        return 1; /* stop the other choices: the response has failed */
    }
    choice_acc *a = &q->ch[e->job];
    if (e->kind == SRV_EV_DONE) {
        a->finish = srv_finish_name(e->finish);
        q->completion_tokens += e->usage.n_gen;
        if (e->job % q->n_choices == 0) {
            q->prompt_tokens += e->usage.n_prompt;
            q->cached_tokens += e->usage.n_cached;
        }
    }
    if (q->stream) {
        int st = 0;
        if (e->len || e->n_tok) st = send_chunk(q, e->job, e->text, e->len, false, e->tok, e->n_tok, NULL);
        if (!st && e->kind == SRV_EV_DONE) st = send_chunk(q, e->job, "", 0, false, NULL, 0, a->finish);
        return st ? 1 : 0;
    }
    if (srv_text_append(&a->text, &a->len, &a->cap, e->text, e->len)) return 1;
    if (q->logprobs >= 0 && e->n_tok) {
        if (q->chat) oai_chat_logprobs_append(a->logprobs, q->tok, e->tok, e->n_tok);
        else oai_cmpl_logprobs_append(a->logprobs, q->tok, e->tok, e->n_tok, q->echo ? q->echo_len[e->job / q->n_choices] : 0);
    }
    return 0;
}

static void send_final(oai_req *q) {
    json_t *resp = resp_base(q, q->chat ? "chat.completion" : "text_completion"), *choices = json_array();
    for (int i = 0; i < q->n_jobs; i++) {
        choice_acc *a = &q->ch[i];
        json_t *c = json_object();
        json_object_set_new(c, "index", json_integer(i));
        if (q->chat) {
            json_t *msg = json_object();
            json_object_set_new(msg, "role", json_string("assistant"));
            json_object_set_new(msg, "content", srv_json_text(a->text ? a->text : "", a->len));
            json_object_set_new(msg, "refusal", json_null());
            json_object_set_new(c, "message", msg);
            if (q->logprobs >= 0) {
                json_t *lp = json_object();
                json_object_set_new(lp, "content", json_incref(a->logprobs));
                json_object_set_new(c, "logprobs", lp);
            } else {
                json_object_set_new(c, "logprobs", json_null());
            }
        } else {
            size_t el = q->echo ? q->echo_len[i / q->n_choices] : 0;
            char *full = malloc(el + a->len + 1);
            if (full) {
                if (el) memcpy(full, q->echo[i / q->n_choices], el);
                if (a->len) memcpy(full + el, a->text, a->len);
            }
            json_object_set_new(c, "text", full ? srv_json_text(full, el + a->len) : json_string(""));
            free(full);
            json_object_set_new(c, "logprobs", q->logprobs >= 0 ? json_incref(a->logprobs) : json_null());
        }
        json_object_set_new(c, "finish_reason", json_string(a->finish ? a->finish : "stop"));
        json_array_append_new(choices, c);
    }
    json_object_set_new(resp, "choices", choices);
    json_object_set_new(resp, "usage", srv_usage_json(q->prompt_tokens, q->completion_tokens, q->cached_tokens));
    srv_send_json(q->r, 200, resp);
}

static void run(oai_req *q, const srv_prompt *prompts, int n_prompts, const srv_gen_params *gp) {
    srv_http_req *r = q->r;
    srv_sink *sink;
    if (srv_gen_start(r->srv, prompts, n_prompts, q->n_choices, gp, &sink, &q->err)) {
        srv_send_err(r, &q->err);
        return;
    }
    q->n_jobs = n_prompts * q->n_choices;
    q->ch = calloc((size_t)q->n_jobs, sizeof *q->ch);
    if (!q->ch) srv_gen_pump(sink, NULL, NULL, NULL); /* no fn: cancels and waits for the jobs */
    for (int i = 0; q->ch && i < q->n_jobs; i++)
        if (q->logprobs >= 0) q->ch[i].logprobs = q->chat ? json_array() : oai_cmpl_logprobs_new();
    if (q->ch && q->stream) {
        srv_sse_begin(r);
        for (int i = 0; i < q->n_jobs; i++) {
            if (q->chat) send_chunk(q, i, "", 0, true, NULL, 0, NULL);
            else if (q->echo) send_chunk(q, i, q->echo[i / q->n_choices], q->echo_len[i / q->n_choices], false, NULL, 0, NULL);
        }
    }
    if (q->ch) srv_gen_pump(sink, r, on_event, q);
    srv_sink_free(sink);
    if (!q->ch) {
        srv_send_error(r, 500, "server_error", NULL, NULL, "out of memory");
        return;
    }
    if (q->stream) {
        if (!q->failed && q->include_usage) {
            json_t *c = chunk_base(q);
            json_object_set_new(c, "choices", json_array());
            json_object_set_new(c, "usage", srv_usage_json(q->prompt_tokens, q->completion_tokens, q->cached_tokens));
            srv_sse_json(r, c);
        }
        if (!q->failed) srv_sse_done(r);
        srv_sse_end(r);
    } else if (q->failed) {
        if (!r->client_gone) srv_send_err(r, &q->err);
    } else if (!r->client_gone) {
        send_final(q);
    }
    for (int i = 0; i < q->n_jobs; i++) {
        free(q->ch[i].text);
        json_decref(q->ch[i].logprobs);
    }
    free(q->ch);
}

/* Common start: readiness, model, stream flags, sampling. */
static int begin(srv_http_req *r, oai_req *q, bool chat, srv_gen_params *gp) {
    memset(q, 0, sizeof *q);
    q->r = r;
    q->chat = chat;
    srv_err err;
    int adapter;
    if (srv_model_pick(r->srv, r->body, &adapter, &q->model, &err)) {
        srv_send_err(r, &err);
        return -1;
    }
    if (check_stream(r, &q->stream, &q->include_usage) || srv_refuse_unready(r)) return -1;
    q->tok = r->srv->tok;
    q->created = (long long)time(NULL);
    srv_make_id(r->srv, chat ? "chatcmpl-" : "cmpl-", q->id, sizeof q->id);
    if (srv_params_parse(r->body, chat ? SRV_API_CHAT : SRV_API_COMPLETIONS, &r->srv->limits, gp, &q->n_choices, &err)) {
        srv_send_err(r, &err);
        return -1;
    }
    gp->adapter = adapter;
    q->logprobs = gp->logprobs;
    return 0;
}

void srv_api_chat(srv_http_req *r) {
    oai_req q;
    srv_gen_params gp;
    if (begin(r, &q, true, &gp)) return;
    srv_prompt p;
    srv_err err;
    if (srv_prompt_chat(r->body, r->srv->tok, r->srv->chat, &r->srv->limits, &gp, &p, &err))
        srv_send_err(r, &err);
    else run(&q, &p, 1, &gp);
    srv_prompts_free(&p, 1);
    srv_gen_params_free(&gp);
}

/* Prompt texts for echo: the request's strings, or the decoded ids. */
static int echo_texts(oai_req *q, const json_t *pv, const srv_prompt *p, int n) {
    q->echo = calloc((size_t)n, sizeof *q->echo);
    q->echo_len = calloc((size_t)n, sizeof *q->echo_len);
    if (!q->echo || !q->echo_len) return -1;
    bool many = n > 1 || (json_is_array(pv) && json_is_string(json_array_get(pv, 0)));
    for (int i = 0; i < n; i++) {
        const json_t *s = many ? json_array_get(pv, (size_t)i) : pv;
        if (json_is_string(s)) {
            q->echo[i] = strdup(json_string_value(s));
            q->echo_len[i] = json_string_length(s);
        } else if (lgpu_tokenizer_decode(q->tok, p[i].ids, (size_t)p[i].n, false, &q->echo[i], &q->echo_len[i])) {
            q->echo[i] = NULL;
        }
        if (!q->echo[i]) return -1;
    }
    return 0;
}

void srv_api_completions(srv_http_req *r) {
    oai_req q;
    srv_gen_params gp;
    if (begin(r, &q, false, &gp)) return;
    srv_prompt *p = NULL;
    int n = 0;
    srv_err err;
    const json_t *echo = json_object_get(r->body, "echo"), *suffix = json_object_get(r->body, "suffix");
    if (echo && !json_is_null(echo) && !json_is_boolean(echo)) {
        srv_send_error(r, 400, "invalid_request_error", NULL, "echo", "'echo' must be a boolean");
    } else if (suffix && !json_is_null(suffix)) {
        srv_send_error(r, 400, "invalid_request_error", NULL, "suffix", "'suffix' is not supported");
    } else if (srv_prompt_completion(r->body, "prompt", r->srv->tok, &r->srv->limits, &p, &n, &err)) {
        srv_send_err(r, &err);
    } else if (json_is_true(echo) && echo_texts(&q, json_object_get(r->body, "prompt"), p, n)) {
        srv_send_error(r, 500, "server_error", NULL, NULL, "out of memory");
    } else {
        run(&q, p, n, &gp);
    }
    if (q.echo)
        for (int i = 0; i < n; i++) free(q.echo[i]);
    free(q.echo);
    free(q.echo_len);
    srv_prompts_free(p, n);
    free(p);
    srv_gen_params_free(&gp);
}

void srv_api_models(srv_http_req *r) {
    json_t *o = json_object(), *data = json_array();
    for (int i = -1; i < r->srv->cfg.n_lora; i++) json_array_append_new(data, srv_model_json(r->srv, i));
    json_object_set_new(o, "object", json_string("list"));
    json_object_set_new(o, "data", data);
    srv_send_json(r, 200, o);
}

void srv_api_model_get(srv_http_req *r) {
    const char *id = r->ri->local_uri + strlen("/v1/models/");
    int i = srv_model_find(r->srv, id);
    if (i == -2 || (i == -1 && strcmp(id, r->srv->cfg.model_name))) {
        srv_send_error(r, 404, "invalid_request_error", "model_not_found", "model", "the model '%.100s' does not exist",
                       id);
        return;
    }
    srv_send_json(r, 200, srv_model_json(r->srv, i));
}
