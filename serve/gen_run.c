/* Submitting jobs and pumping their events (see gen_run.h). */
#include "gen_run.h"

#include "sse.h"

#include <stdlib.h>
#include <string.h>

int srv_gen_start(srv_server *srv, const srv_prompt *prompts, int n_prompts, int n_choices, const srv_gen_params *gp,
                  srv_sink **out, srv_err *err) {
    *out = NULL;
    if (srv_err_unready(srv, err)) return -1;
    int n = n_prompts * n_choices;
    srv_sink *sink;
    if (srv_sink_create(n, &sink)) return srv_err_set(err, 500, "server_error", NULL, NULL, "out of memory");
    srv_job **jobs = calloc((size_t)n, sizeof *jobs);
    if (!jobs) {
        srv_sink_free(sink);
        return srv_err_set(err, 500, "server_error", NULL, NULL, "out of memory");
    }
    double now = srv_now(), deadline = srv->cfg.timeout > 0 ? now + (double)srv->cfg.timeout : 0;
    int st = 0, k = 0;
    for (int p = 0; p < n_prompts && !st; p++)
        for (int c = 0; c < n_choices && !st; c++, k++)
            st = srv_job_create(sink, k, gp, srv->tok, prompts[p].ids, prompts[p].n, now, deadline, &jobs[k]);
    if (st) {
        srv_err_set(err, st == LGPU_EINVAL ? 400 : 500, st == LGPU_EINVAL ? "invalid_request_error" : "server_error",
                    NULL, NULL, "%s", lgpu_last_error());
    } else if ((st = srv_sched_submit(srv->sched, jobs, n))) {
        if (st == LGPU_EFULL)
            srv_err_set(err, 429, "rate_limit_error", "rate_limit_exceeded", NULL,
                        "the server is busy: %s; retry later", lgpu_last_error());
        else
            srv_err_set(err, 503, "server_error", "shutting_down", NULL, "the server is shutting down");
    }
    if (st) {
        for (int i = 0; i < n; i++) srv_job_free(jobs[i]);
        free(jobs);
        srv_sink_free(sink);
        return -1;
    }
    free(jobs);
    *out = sink;
    return 0;
}

void srv_gen_pump(srv_sink *sink, srv_http_req *r, srv_event_fn fn, void *user) {
    bool cancelled = fn == NULL; /* nobody to deliver to: just let the jobs end */
    if (cancelled) srv_sink_cancel(sink);
    double next_check = srv_now() + 0.1;
    for (;;) {
        srv_event *e = srv_sink_pop(sink, 100);
        if (e) {
            if (!cancelled && fn(user, e)) {
                srv_sink_cancel(sink);
                cancelled = true;
            }
            srv_event_free(e);
        } else if (srv_sink_done(sink)) {
            break;
        }
        /* events may flow without pause: look at the connection by the clock */
        double now = srv_now();
        if (!cancelled && r && now >= next_check) {
            next_check = now + 0.1;
            if (!srv_client_alive(r)) {
                srv_sink_cancel(sink);
                cancelled = true;
            }
        }
    }
}

json_t *srv_usage_json(int32_t prompt_tokens, int32_t completion_tokens, int32_t cached_tokens) {
    json_t *u = json_object(), *d = json_object();
    json_object_set_new(u, "prompt_tokens", json_integer(prompt_tokens));
    json_object_set_new(u, "completion_tokens", json_integer(completion_tokens));
    json_object_set_new(u, "total_tokens", json_integer(prompt_tokens + completion_tokens));
    json_object_set_new(d, "cached_tokens", json_integer(cached_tokens));
    json_object_set_new(u, "prompt_tokens_details", d);
    return u;
}

void srv_err_from_event(srv_err *e, const srv_event *ev) {
    /* e->code must outlive the event: map it to a static string */
    static const char *codes[] = {"timeout", "shutting_down", "kv_cache_full", "engine_error", "cancelled"};
    const char *code = "server_error";
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (!strcmp(ev->code, codes[i])) code = codes[i];
    srv_err_set(e, ev->status, ev->status == 504 ? "timeout_error" : "server_error", code, NULL, "%s", ev->message);
}

bool srv_gen_fail(srv_http_req *r, const srv_event *ev, bool sse, bool *failed, srv_err *err) {
    if (*failed) return false;
    *failed = true;
    srv_err_from_event(err, ev);
    r->outcome = !strcmp(ev->code, "timeout") ? SRV_REQ_TIMEOUT : SRV_REQ_ERROR;
    if (sse) srv_sse_error(r, err);
    return true;
}
