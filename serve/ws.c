/* WebSocket endpoint /ws.
 *   client: {"type":"generate", "prompt"|"messages", max_tokens, sampling..., "id"?}
 *   server: {"type":"token","text":...} ... then {"type":"done","finish_reason","usage","timings"}
 *   client: {"type":"subscribe","topic":"metrics"} / {"type":"unsubscribe","topic":"metrics"}
 *   server: {"type":"subscribed",...}, then {"type":"metrics",...} every second
 * Errors come back as {"type":"error","error":{...}}; the connection stays open.
 * A generation runs on the connection's civetweb thread (one at a time per
 * connection); metrics are pushed by one thread for all subscribers. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "gen_run.h"
#include "json_text.h"
#include "models.h"

typedef struct ws_client {
    struct mg_connection *conn;
    bool subscribed;
    struct ws_client *next;
} ws_client;

typedef struct srv_ws {
    pthread_mutex_t mu; /* guards the list and writes by the pusher */
    ws_client *clients;
    pthread_t pusher;
    bool started, stop;
    pthread_cond_t cv;
} srv_ws;

static int ws_send(struct mg_connection *conn, json_t *msg, const json_t *id) {
    if (id) json_object_set(msg, "id", (json_t *)id);
    char *s = json_dumps(msg, SRV_JSON_FLAGS);
    json_decref(msg);
    if (!s) return -1;
    int st = mg_websocket_write(conn, MG_WEBSOCKET_OPCODE_TEXT, s, strlen(s)) > 0 ? 0 : -1;
    free(s);
    return st;
}

static int ws_error(struct mg_connection *conn, const srv_err *e, const json_t *id) {
    json_t *m = srv_err_json(e);
    json_object_set_new(m, "type", json_string("error"));
    return ws_send(conn, m, id);
}

static ws_client *find_client(srv_ws *ws, const struct mg_connection *conn) {
    for (ws_client *c = ws->clients; c; c = c->next)
        if (c->conn == conn) return c;
    return NULL;
}

/* ---- generate ---- */

typedef struct {
    struct mg_connection *conn;
    srv_http_req *r; /* shim for the pump; its outcome is the request's */
    const json_t *id;
    bool failed;
    srv_err err;
} ws_gen;

static json_t *usage_timings(const srv_usage *u, json_t **timings) {
    json_t *us = json_object(), *t = json_object();
    json_object_set_new(us, "prompt_tokens", json_integer(u->n_prompt));
    json_object_set_new(us, "completion_tokens", json_integer(u->n_gen));
    json_object_set_new(us, "total_tokens", json_integer(u->n_prompt + u->n_gen));
    json_object_set_new(us, "cached_tokens", json_integer(u->n_cached));
    json_object_set_new(t, "queue_ms", json_real(u->queue_s * 1e3));
    json_object_set_new(t, "ttft_ms", json_real(u->ttft_s * 1e3));
    json_object_set_new(t, "total_ms", json_real(u->total_s * 1e3));
    *timings = t;
    return us;
}

static int on_event(void *user, const srv_event *e) {
    ws_gen *g = user;
    if (e->kind == SRV_EV_ERROR) {
        if (srv_gen_fail(g->r, e, false, &g->failed, &g->err)) ws_error(g->conn, &g->err, g->id);
        return 1;
    }
    if (e->len) {
        json_t *m = json_object();
        json_object_set_new(m, "type", json_string("token"));
        json_object_set_new(m, "text", srv_json_text(e->text, e->len));
        if (ws_send(g->conn, m, g->id)) return 1;
    }
    if (e->kind == SRV_EV_DONE) {
        json_t *m = json_object(), *timings;
        json_object_set_new(m, "type", json_string("done"));
        json_object_set_new(m, "finish_reason", json_string(srv_finish_name(e->finish)));
        json_object_set_new(m, "usage", usage_timings(&e->usage, &timings));
        json_object_set_new(m, "timings", timings);
        if (ws_send(g->conn, m, g->id)) return 1;
    }
    return 0;
}

static void generate_now(srv_server *srv, struct mg_connection *conn, const json_t *msg, const json_t *id);

/* Counted as an active request: a graceful shutdown waits for it. */
static void generate(srv_server *srv, struct mg_connection *conn, const json_t *msg, const json_t *id) {
    atomic_fetch_add(&srv->n_active, 1);
    generate_now(srv, conn, msg, id);
    atomic_fetch_sub(&srv->n_active, 1);
}

static void generate_now(srv_server *srv, struct mg_connection *conn, const json_t *msg, const json_t *id) {
    srv_err err;
    if (srv_err_unready(srv, &err)) {
        ws_error(conn, &err, id);
        return;
    }
    srv_gen_params gp;
    int n_choices;
    int adapter;
    const char *model_id;
    if (srv_model_pick(srv, msg, &adapter, &model_id, &err) ||
        srv_params_parse(msg, SRV_API_NATIVE, &srv->limits, &gp, &n_choices, &err)) {
        ws_error(conn, &err, id);
        return;
    }
    gp.adapter = adapter;
    srv_prompt *p = NULL;
    int n = 0;
    int st;
    if (n_choices != 1) {
        st = srv_err_invalid(&err, "n", "'n' must be 1 on the WebSocket");
    } else if (json_object_get(msg, "messages")) {
        p = calloc(1, sizeof *p);
        st = p ? srv_prompt_chat(msg, srv->tok, srv->chat, &srv->limits, &gp, p, &err)
               : srv_err_set(&err, 500, "server_error", NULL, NULL, "out of memory");
        n = st ? 0 : 1;
    } else {
        st = srv_prompt_completion(msg, "prompt", srv->tok, &srv->limits, &p, &n, &err);
        if (!st && n != 1) st = srv_err_invalid(&err, "prompt", "one prompt per message");
    }
    srv_sink *sink = NULL;
    if (!st) st = srv_gen_start(srv, p, n, 1, &gp, &sink, &err);
    if (st) {
        ws_error(conn, &err, id);
    } else {
        srv_http_req shim = {.conn = conn, .srv = srv, .ri = mg_get_request_info(conn), .fd = -1};
        ws_gen g = {.conn = conn, .r = &shim, .id = id};
        srv_gen_pump(sink, &shim, on_event, &g);
        srv_sink_free(sink);
        srv_metrics_request(srv->metrics, g.failed ? shim.outcome : shim.client_gone ? SRV_REQ_CANCELLED : SRV_REQ_OK);
    }
    srv_prompts_free(p, n);
    free(p);
    srv_gen_params_free(&gp);
}

/* ---- handlers ---- */

static int on_connect(const struct mg_connection *conn, void *cbdata) { return 0; }

static void on_ready(struct mg_connection *conn, void *cbdata) {
    srv_server *srv = cbdata;
    ws_client *c = calloc(1, sizeof *c);
    if (!c) return;
    c->conn = conn;
    pthread_mutex_lock(&srv->ws->mu);
    c->next = srv->ws->clients;
    srv->ws->clients = c;
    pthread_mutex_unlock(&srv->ws->mu);
}

static void set_subscribed(srv_ws *ws, struct mg_connection *conn, bool on) {
    pthread_mutex_lock(&ws->mu);
    ws_client *c = find_client(ws, conn);
    if (c) c->subscribed = on;
    pthread_mutex_unlock(&ws->mu);
}

static int on_data(struct mg_connection *conn, int bits, char *data, size_t len, void *cbdata) {
    srv_server *srv = cbdata;
    int op = bits & 0x0f;
    srv_err err;
    if (op == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE) return 0;
    if (op == MG_WEBSOCKET_OPCODE_PING) {
        mg_websocket_write(conn, MG_WEBSOCKET_OPCODE_PONG, data, len);
        return 1;
    }
    if (op == MG_WEBSOCKET_OPCODE_PONG) return 1;
    if (op != MG_WEBSOCKET_OPCODE_TEXT || !(bits & 0x80)) {
        srv_err_invalid(&err, NULL, "send each request as one complete text frame of JSON");
        ws_error(conn, &err, NULL);
        return 1;
    }
    if (len > (size_t)srv->cfg.max_body) {
        srv_err_set(&err, 413, "invalid_request_error", "request_too_large", NULL, "message of %zu bytes is too large",
                    len);
        ws_error(conn, &err, NULL);
        return 1;
    }
    json_error_t je;
    json_t *msg = NULL;
    if (srv_json_depth(data, len) > SRV_JSON_MAX_DEPTH) snprintf(je.text, sizeof je.text, "nested too deeply");
    else msg = json_loadb(data, len, 0, &je);
    const json_t *type = json_object_get(msg, "type"), *id = json_object_get(msg, "id");
    if (!json_is_object(msg)) {
        srv_err_invalid(&err, NULL, "the message is not a JSON object: %s", msg ? "wrong type" : je.text);
        ws_error(conn, &err, NULL);
    } else if (!json_is_string(type)) {
        srv_err_invalid(&err, "type", "'type' must be \"generate\", \"subscribe\" or \"unsubscribe\"");
        ws_error(conn, &err, id);
    } else if (!strcmp(json_string_value(type), "generate")) {
        generate(srv, conn, msg, id);
    } else if (!strcmp(json_string_value(type), "subscribe") || !strcmp(json_string_value(type), "unsubscribe")) {
        const json_t *topic = json_object_get(msg, "topic");
        if (!json_is_string(topic) || strcmp(json_string_value(topic), "metrics")) {
            srv_err_invalid(&err, "topic", "the only topic is \"metrics\"");
            ws_error(conn, &err, id);
        } else {
            bool on = !strcmp(json_string_value(type), "subscribe");
            set_subscribed(srv->ws, conn, on);
            json_t *m = json_object();
            json_object_set_new(m, "type", json_string(on ? "subscribed" : "unsubscribed"));
            json_object_set_new(m, "topic", json_string("metrics"));
            ws_send(conn, m, id);
        }
    } else {
        srv_err_invalid(&err, "type", "unknown message type '%.40s'", json_string_value(type));
        ws_error(conn, &err, id);
    }
    json_decref(msg);
    return 1;
}

static void on_close(const struct mg_connection *conn, void *cbdata) {
    srv_server *srv = cbdata;
    pthread_mutex_lock(&srv->ws->mu);
    for (ws_client **p = &srv->ws->clients; *p; p = &(*p)->next)
        if ((*p)->conn == conn) {
            ws_client *c = *p;
            *p = c->next;
            free(c);
            break;
        }
    pthread_mutex_unlock(&srv->ws->mu);
}

/* ---- metrics pusher ---- */

static void *pusher_main(void *arg) {
    srv_server *srv = arg;
    srv_ws *ws = srv->ws;
    pthread_mutex_lock(&ws->mu);
    while (!ws->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&ws->cv, &ws->mu, &ts);
        if (ws->stop) break;
        bool any = false;
        for (ws_client *c = ws->clients; c; c = c->next) any |= c->subscribed;
        if (!any) continue;
        srv_gauges g;
        srv_current_gauges(srv, &g);
        json_t *m = srv_metrics_json(srv->metrics, &g);
        json_object_set_new(m, "type", json_string("metrics"));
        json_object_set_new(m, "uptime_s", json_real(srv_now() - srv->t_start));
        char *s = json_dumps(m, SRV_JSON_FLAGS);
        json_decref(m);
        /* under mu: on_close cannot free a client while it is written to */
        for (ws_client *c = ws->clients; s && c; c = c->next)
            if (c->subscribed) mg_websocket_write(c->conn, MG_WEBSOCKET_OPCODE_TEXT, s, strlen(s));
        free(s);
    }
    pthread_mutex_unlock(&ws->mu);
    return NULL;
}

int srv_ws_start(srv_server *srv) {
    srv_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return lgpu_set_error(LGPU_ENOMEM, "websocket state");
    pthread_mutex_init(&ws->mu, NULL);
    pthread_cond_init(&ws->cv, NULL);
    srv->ws = ws;
    if (pthread_create(&ws->pusher, NULL, pusher_main, srv)) return lgpu_set_error(LGPU_ENOMEM, "metrics pusher thread");
    ws->started = true;
    mg_set_websocket_handler(srv->mg, "/ws", on_connect, on_ready, on_data, on_close, srv);
    return 0;
}

void srv_ws_stop_pusher(srv_server *srv) {
    srv_ws *ws = srv->ws;
    if (!ws || !ws->started) return;
    pthread_mutex_lock(&ws->mu);
    ws->stop = true;
    pthread_cond_signal(&ws->cv);
    pthread_mutex_unlock(&ws->mu);
    pthread_join(ws->pusher, NULL);
    ws->started = false;
}

void srv_ws_free(srv_server *srv) {
    srv_ws *ws = srv->ws;
    if (!ws) return;
    srv_ws_stop_pusher(srv);
    for (ws_client *c = ws->clients, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    pthread_mutex_destroy(&ws->mu);
    pthread_cond_destroy(&ws->cv);
    free(ws);
    srv->ws = NULL;
}
