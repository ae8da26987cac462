/* Native generation endpoints:
 *   POST /infer        {prompt | messages, max_tokens, sampling...} -> {text, tokens, finish_reason, usage, timings}
 *   POST /batch_infer  {prompts: [...], ...} -> {results: [...]} in order; all submitted at once
 *   POST /stream_infer same body as /infer -> SSE {text, tokens} events, then {done, finish_reason, usage, timings} */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "gen_run.h"
#include "json_text.h"
#include "models.h"
#include "oai_format.h"
#include "sse.h"

typedef struct {
    char *text;
    size_t len, cap;
    json_t *tokens, *logprobs;
    const char *finish;
    srv_usage usage;
} nat_acc;

typedef struct {
    srv_http_req *r;
    bool stream;
    int logprobs;
    nat_acc *acc;
    bool failed;
    srv_err err;
} nat_req;

static json_t *timings_json(const srv_usage *u) {
    json_t *t = json_object();
    json_object_set_new(t, "queue_ms", json_real(u->queue_s * 1e3));
    json_object_set_new(t, "ttft_ms", json_real(u->ttft_s * 1e3));
    json_object_set_new(t, "generation_ms", json_real(u->gen_s * 1e3));
    json_object_set_new(t, "total_ms", json_real(u->total_s * 1e3));
    /* tokens after the first over the time they took */
    double tps = u->gen_s > 0 && u->n_gen > 1 ? (u->n_gen - 1) / u->gen_s : 0;
    json_object_set_new(t, "tokens_per_second", json_real(tps));
    return t;
}

static json_t *usage_json(const srv_usage *u) {
    json_t *o = json_object();
    json_object_set_new(o, "prompt_tokens", json_integer(u->n_prompt));
    json_object_set_new(o, "completion_tokens", json_integer(u->n_gen));
    json_object_set_new(o, "cached_tokens", json_integer(u->n_cached));
    return o;
}

static json_t *token_ids(const srv_tokinfo *t, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(t[i].id));
    return a;
}

static int on_event(void *user, const srv_event *e) {
    nat_req *q = user;
    if (e->kind == SRV_EV_ERROR) {
        srv_gen_fail(q->r, e, q->stream, &q->failed, &q->err);
        return 1;
    }
    nat_acc *a = &q->acc[e->job];
    if (e->kind == SRV_EV_DONE) {
        a->finish = srv_finish_name(e->finish);
        a->usage = e->usage;
    }
    if (q->stream) {
        if (e->len || e->n_tok) {
            json_t *ev = json_object();
            json_object_set_new(ev, "text", srv_json_text(e->text, e->len));
            json_object_set_new(ev, "tokens", token_ids(e->tok, e->n_tok));
            if (q->logprobs >= 0) {
                json_t *lp = json_array();
                oai_chat_logprobs_append(lp, q->r->srv->tok, e->tok, e->n_tok);
                json_object_set_new(ev, "logprobs", lp);
            }
            if (srv_sse_json(q->r, ev)) return 1;
        }
        if (e->kind == SRV_EV_DONE) {
            json_t *ev = json_object();
            json_object_set_new(ev, "done", json_true());
            json_object_set_new(ev, "finish_reason", json_string(a->finish));
            json_object_set_new(ev, "usage", usage_json(&e->usage));
            json_object_set_new(ev, "timings", timings_json(&e->usage));
            if (srv_sse_json(q->r, ev)) return 1;
        }
        return 0;
    }
    if (e->len && srv_text_append(&a->text, &a->len, &a->cap, e->text, e->len)) return 1;
    for (int i = 0; i < e->n_tok; i++) json_array_append_new(a->tokens, json_integer(e->tok[i].id));
    if (q->logprobs >= 0) oai_chat_logprobs_append(a->logprobs, q->r->srv->tok, e->tok, e->n_tok);
    return 0;
}

static json_t *result_json(const nat_req *q, const nat_acc *a) {
    json_t *o = json_object();
    json_object_set_new(o, "text", srv_json_text(a->text ? a->text : "", a->len));
    json_object_set_new(o, "tokens", json_incref(a->tokens));
    json_object_set_new(o, "finish_reason", json_string(a->finish ? a->finish : "stop"));
    json_object_set_new(o, "usage", usage_json(&a->usage));
    json_object_set_new(o, "timings", timings_json(&a->usage));
    if (q->logprobs >= 0) json_object_set_new(o, "logprobs", json_incref(a->logprobs));
    return o;
}

/* batch: reply {results:[...]} rather than the single result. */
static void run(srv_http_req *r, const srv_prompt *p, int n, const srv_gen_params *gp, bool stream, bool batch) {
    nat_req q = {.r = r, .stream = stream, .logprobs = gp->logprobs};
    srv_sink *sink;
    if (srv_gen_start(r->srv, p, n, 1, gp, &sink, &q.err)) {
        srv_send_err(r, &q.err);
        return;
    }
    q.acc = calloc((size_t)n, sizeof *q.acc);
    for (int i = 0; q.acc && i < n; i++) {
        q.acc[i].tokens = json_array();
        q.acc[i].logprobs = json_array();
    }
    if (q.acc && stream) srv_sse_begin(r);
    srv_gen_pump(sink, r, q.acc ? on_event : NULL, &q);
    srv_sink_free(sink);
    if (!q.acc) {
        srv_send_error(r, 500, "server_error", NULL, NULL, "out of memory");
        return;
    }
    if (stream) {
        if (!q.failed) srv_sse_done(r);
        srv_sse_end(r);
    } else if (!r->client_gone) {
        if (q.failed) {
            srv_send_err(r, &q.err);
        } else if (batch) {
            json_t *o = json_object(), *res = json_array();
            for (int i = 0; i < n; i++) json_array_append_new(res, result_json(&q, &q.acc[i]));
            json_object_set_new(o, "results", res);
            srv_send_json(r, 200, o);
        } else {
            srv_send_json(r, 200, result_json(&q, &q.acc[0]));
        }
    }
    for (int i = 0; i < n; i++) {
        free(q.acc[i].text);
        json_decref(q.acc[i].tokens);
        json_decref(q.acc[i].logprobs);
    }
    free(q.acc);
}

/* Parses sampling and the prompt(s): "prompt" (or "messages") for single
 * requests, "prompts" for a batch. */
static void handle(srv_http_req *r, bool stream, bool batch) {
    if (srv_refuse_unready(r)) return;
    srv_gen_params gp;
    int n_choices;
    srv_err err;
    int adapter;
    const char *id;
    if (srv_model_pick(r->srv, r->body, &adapter, &id, &err) ||
        srv_params_parse(r->body, SRV_API_NATIVE, &r->srv->limits, &gp, &n_choices, &err)) {
        srv_send_err(r, &err);
        return;
    }
    gp.adapter = adapter; /* "model": the base's id or an adapter's, as in the OpenAI API */
    srv_prompt *p = NULL;
    int n = 0;
    if (n_choices != 1) {
        srv_send_error(r, 400, "invalid_request_error", NULL, "n", "'n' is not supported here: send several prompts to "
                                                                 "/batch_infer");
    } else if (!batch && json_object_get(r->body, "messages") && !json_object_get(r->body, "prompt")) {
        p = calloc(1, sizeof *p);
        if (!p) srv_send_error(r, 500, "server_error", NULL, NULL, "out of memory");
        else if (srv_prompt_chat(r->body, r->srv->tok, r->srv->chat, &r->srv->limits, &gp, p, &err))
            srv_send_err(r, &err);
        else n = 1;
    } else if (srv_prompt_completion(r->body, batch ? "prompts" : "prompt", r->srv->tok, &r->srv->limits, &p, &n, &err)) {
        srv_send_err(r, &err);
    } else if (!batch && n != 1) {
        srv_send_error(r, 400, "invalid_request_error", NULL, "prompt", "one prompt per request here: use /batch_infer");
    } else if (batch && !json_is_array(json_object_get(r->body, "prompts"))) {
        srv_send_error(r, 400, "invalid_request_error", NULL, "prompts", "'prompts' must be an array of prompts");
    }
    if (!r->headers_sent) run(r, p, n, &gp, stream, batch);
    srv_prompts_free(p, n);
    free(p);
    srv_gen_params_free(&gp);
}

void srv_api_infer(srv_http_req *r) { handle(r, false, false); }
void srv_api_batch_infer(srv_http_req *r) { handle(r, false, true); }
void srv_api_stream_infer(srv_http_req *r) { handle(r, true, false); }
