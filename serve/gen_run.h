/* Running a request's jobs from an HTTP (or WebSocket) thread: create and
 * submit them, then pump their events until every job has ended. */
#ifndef LGPU_SERVE_GEN_RUN_H
#define LGPU_SERVE_GEN_RUN_H

#include "http.h"
#include "prompt.h"

/* Jobs for prompts x n_choices (job index = prompt * n_choices + choice),
 * submitted together. Errors: 429 queue full, 503 not ready (srv_err_unready), 400
 * bad sampling values, 500. */
int srv_gen_start(srv_server *srv, const srv_prompt *prompts, int n_prompts, int n_choices, const srv_gen_params *gp,
                  srv_sink **out, srv_err *err);

/* Called for each event while the client is there; return nonzero when it
 * is gone (a failed write): the remaining jobs are cancelled. */
typedef int (*srv_event_fn)(void *user, const srv_event *e);

/* Delivers events until all jobs ended, polling the client's connection
 * (r may be NULL) about every 100 ms; frees nothing but the events. */
void srv_gen_pump(srv_sink *sink, srv_http_req *r, srv_event_fn fn, void *user);

/* The client error for a job's ERROR event (504 timeout, 503 shutdown, 500...). */
void srv_err_from_event(srv_err *e, const srv_event *ev);

/* A job's ERROR event fails the whole request, once: the first call sets
 * *failed, fills *err (srv_err_from_event) and r->outcome (timeout ->
 * SRV_REQ_TIMEOUT, else SRV_REQ_ERROR), and sends the error as an SSE event
 * when sse; returns true then (false on later calls). */
bool srv_gen_fail(srv_http_req *r, const srv_event *ev, bool sse, bool *failed, srv_err *err);

/* Prompt tokens counted once per prompt, and usage JSON helpers. */
json_t *srv_usage_json(int32_t prompt_tokens, int32_t completion_tokens, int32_t cached_tokens);

#endif
