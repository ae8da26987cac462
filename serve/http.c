/* civetweb setup, routing and response helpers (see http.h). */
#include "http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "json_text.h"

typedef struct {
    const char *path;
    const char *method;
    void (*fn)(srv_http_req *r);
    bool prefix;  /* path is a prefix ("/v1/models/" + id) */
    bool counted; /* a client request for lgpu_requests_total (not monitoring) */
} route;

static const route ROUTES[] = {
    {"/v1/chat/completions", "POST", srv_api_chat, false, true},
    {"/v1/completions", "POST", srv_api_completions, false, true},
    {"/v1/models", "GET", srv_api_models, false, false},
    {"/v1/models/", "GET", srv_api_model_get, true, false},
    {"/infer", "POST", srv_api_infer, false, true},
    {"/batch_infer", "POST", srv_api_batch_infer, false, true},
    {"/stream_infer", "POST", srv_api_stream_infer, false, true},
    {"/health", "GET", srv_api_health, false, false},
    {"/status", "GET", srv_api_status, false, false},
    {"/models", "GET", srv_api_native_models, false, false},
    {"/monitor/gpu", "GET", srv_api_monitor_gpu, false, false},
    {"/monitor/memory", "GET", srv_api_monitor_memory, false, false},
    {"/metrics", "GET", srv_api_metrics, false, false},
};
#define N_ROUTES (sizeof ROUTES / sizeof ROUTES[0])

void srv_make_id(srv_server *srv, const char *prefix, char *out, size_t cap) {
    uint64_t n = atomic_fetch_add(&srv->next_id, 1);
    uint64_t a = (n + 1) * 0x9e3779b97f4a7c15ull ^ srv->id_salt;
    a = (a ^ (a >> 31)) * 0xbf58476d1ce4e5b9ull;
    uint64_t b = (a ^ (a >> 29)) * 0x94d049bb133111ebull;
    snprintf(out, cap, "%s%016llx%08llx", prefix, (unsigned long long)a, (unsigned long long)(b >> 32));
}

/* ---- responses ---- */

static srv_req_status outcome_of(int status) {
    if (status == 429 || status == 503) return SRV_REQ_REJECTED;
    if (status == 504) return SRV_REQ_TIMEOUT;
    if (status >= 500) return SRV_REQ_ERROR;
    if (status >= 400) return SRV_REQ_INVALID;
    return SRV_REQ_OK;
}

static void common_headers(struct mg_connection *c) {
    mg_response_header_add(c, "Access-Control-Allow-Origin", "*", -1);
}

int srv_write(srv_http_req *r, const void *data, size_t len) {
    if (r->client_gone) return -1;
    if (len && mg_write(r->conn, data, len) != (int)len) {
        r->client_gone = true;
        return -1;
    }
    return 0;
}

static int send_headers(srv_http_req *r, int status, const char *content_type, long long len, const char *extra) {
    r->status = status;
    if (r->outcome == SRV_REQ_OK) r->outcome = outcome_of(status);
    r->headers_sent = true;
    struct mg_connection *c = r->conn;
    if (mg_response_header_start(c, status) < 0) {
        r->client_gone = true;
        return -1;
    }
    mg_response_header_add(c, "Content-Type", content_type, -1);
    common_headers(c);
    if (len >= 0) {
        char cl[32];
        snprintf(cl, sizeof cl, "%lld", len);
        mg_response_header_add(c, "Content-Length", cl, -1);
    }
    if (extra) mg_response_header_add_lines(c, extra);
    if (mg_response_header_send(c) < 0) {
        r->client_gone = true;
        return -1;
    }
    return 0;
}

static int send_body(srv_http_req *r, int status, const char *ctype, const char *text, size_t len, const char *extra) {
    if (r->headers_sent) return -1;
    if (send_headers(r, status, ctype, (long long)len, extra)) return -1;
    return srv_write(r, text, len);
}

int srv_send_text(srv_http_req *r, int status, const char *content_type, const char *text, size_t len) {
    return send_body(r, status, content_type, text, len, NULL);
}

static int send_json_extra(srv_http_req *r, int status, json_t *json, const char *extra) {
    char *s = json ? json_dumps(json, SRV_JSON_FLAGS) : NULL;
    json_decref(json);
    if (!s) return send_body(r, 500, "text/plain", "out of memory\n", 14, NULL);
    int st = send_body(r, status, "application/json", s, strlen(s), extra);
    free(s);
    return st;
}

int srv_send_json(srv_http_req *r, int status, json_t *json) { return send_json_extra(r, status, json, NULL); }

int srv_send_err(srv_http_req *r, const srv_err *e) {
    char extra[64], *x = NULL;
    if (e->status == 429 && r->srv->sched) {
        snprintf(extra, sizeof extra, "Retry-After: %d\r\n", srv_sched_retry_after(r->srv->sched));
        x = extra;
    }
    return send_json_extra(r, e->status, srv_err_json(e), x);
}

int srv_send_error(srv_http_req *r, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...) {
    srv_err e;
    va_list ap;
    va_start(ap, fmt);
    srv_err_vset(&e, status, type, code, param, fmt, ap);
    va_end(ap);
    return srv_send_err(r, &e);
}

int srv_err_unready(srv_server *srv, srv_err *e) {
    switch (srv_state_of(srv)) {
    case SRV_READY: return 0;
    case SRV_LOADING:
        return srv_err_set(e, 503, "server_error", "model_loading", NULL, "the model is still loading; retry shortly");
    case SRV_DRAINING:
        return srv_err_set(e, 503, "server_error", "shutting_down", NULL, "the server is shutting down");
    default:
        return srv_err_set(e, 503, "server_error", "model_load_failed", NULL, "the model failed to load: %s",
                           srv->load_error);
    }
}

bool srv_refuse_unready(srv_http_req *r) {
    srv_err e;
    if (!srv_err_unready(r->srv, &e)) return false;
    srv_send_err(r, &e);
    return true;
}

int srv_begin_chunked(srv_http_req *r, const char *content_type) {
    return send_headers(r, 200, content_type, -1,
                        "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nX-Accel-Buffering: no\r\n");
}

int srv_send_chunk(srv_http_req *r, const char *data, size_t len) {
    if (r->client_gone) return -1;
    if (len == 0) return 0; /* an empty chunk would end the body */
    /* one write per chunk (size line, data, CRLF): with TCP_NODELAY each
     * write is a packet */
    char *buf = malloc(len + 24);
    if (!buf) return -1;
    int h = snprintf(buf, 24, "%zx\r\n", len);
    memcpy(buf + h, data, len);
    memcpy(buf + h + len, "\r\n", 2);
    int st = srv_write(r, buf, (size_t)h + len + 2);
    free(buf);
    return st;
}

int srv_end_chunked(srv_http_req *r) { return srv_write(r, "0\r\n\r\n", 5); }

/* ---- bodies ---- */

/* Reads and parses the JSON body; sends the error response and returns -1 on failure. */
static int read_body(srv_http_req *r) {
    const long long limit = r->srv->cfg.max_body, cl = r->ri->content_length;
    if (cl > limit) {
        mg_disable_connection_keep_alive(r->conn); /* the unread body must not be parsed as a request */
        return srv_send_error(r, 413, "invalid_request_error", "request_too_large", NULL,
                              "the request body has %lld bytes; the limit is %lld", cl, limit);
    }
    size_t cap = cl >= 0 ? (size_t)cl + 1 : 65536, len = 0;
    char *buf = malloc(cap);
    if (!buf) return srv_send_error(r, 500, "server_error", NULL, NULL, "out of memory");
    for (;;) {
        if (len + 1 >= cap) {
            if ((long long)cap > limit + 1) break;
            char *p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                return srv_send_error(r, 500, "server_error", NULL, NULL, "out of memory");
            }
            buf = p;
            cap *= 2;
        }
        int k = mg_read(r->conn, buf + len, cap - 1 - len);
        if (k <= 0) break;
        len += (size_t)k;
        if ((long long)len > limit) break;
    }
    if ((long long)len > limit) {
        free(buf);
        mg_disable_connection_keep_alive(r->conn);
        return srv_send_error(r, 413, "invalid_request_error", "request_too_large", NULL,
                              "the request body exceeds the limit of %lld bytes", limit);
    }
    if (len == 0) {
        free(buf);
        return srv_send_error(r, 400, "invalid_request_error", NULL, NULL, "the request body is empty; send JSON");
    }
    if (srv_json_depth(buf, len) > SRV_JSON_MAX_DEPTH) {
        free(buf);
        return srv_send_error(r, 400, "invalid_request_error", "invalid_json", NULL,
                              "the request body nests arrays/objects deeper than %d levels", SRV_JSON_MAX_DEPTH);
    }
    json_error_t je;
    r->body = json_loadb(buf, len, 0, &je);
    free(buf);
    if (!r->body)
        return srv_send_error(r, 400, "invalid_request_error", "invalid_json", NULL,
                              "the request body is not valid JSON: %s (line %d, column %d)", je.text, je.line,
                              je.column);
    if (!json_is_object(r->body))
        return srv_send_error(r, 400, "invalid_request_error", "invalid_json", NULL,
                              "the request body must be a JSON object, not %s", srv_json_type_name(r->body));
    return 0;
}

/* ---- routing ---- */

static const route *find_route(const char *path, const char *method, bool *path_known, char *allow, size_t cap) {
    *path_known = false;
    allow[0] = 0;
    const route *hit = NULL;
    for (size_t i = 0; i < N_ROUTES; i++) {
        const route *rt = &ROUTES[i];
        bool match = rt->prefix ? !strncmp(path, rt->path, strlen(rt->path)) && path[strlen(rt->path)]
                                : !strcmp(path, rt->path);
        if (!match) continue;
        *path_known = true;
        snprintf(allow + strlen(allow), cap - strlen(allow), "%s%s", allow[0] ? ", " : "", rt->method);
        if (!strcmp(method, rt->method) || (!strcmp(method, "HEAD") && !strcmp(rt->method, "GET"))) hit = rt;
    }
    return hit;
}

static void handle(srv_http_req *r);

static int dispatch(struct mg_connection *conn, void *cbdata) {
    srv_http_req r = {.conn = conn, .srv = cbdata, .ri = mg_get_request_info(conn), .t0 = srv_now(), .fd = -1};
    atomic_fetch_add(&r.srv->n_active, 1);
    handle(&r);
    atomic_fetch_sub(&r.srv->n_active, 1);
    return r.status ? r.status : 200;
}

static void handle(srv_http_req *r) {
    const char *path = r->ri->local_uri ? r->ri->local_uri : "/", *method = r->ri->request_method;
    bool known;
    char allow[64];
    const route *rt = find_route(path, method, &known, allow, sizeof allow);
    bool counted = rt ? rt->counted : true;
    if (!rt && !known) {
        srv_send_error(r, 404, "invalid_request_error", "not_found", NULL, "unknown endpoint: %s %.200s", method,
                       path);
    } else if (!rt) {
        char extra[96];
        snprintf(extra, sizeof extra, "Allow: %s\r\n", allow);
        srv_err e = {.status = 405, .type = "invalid_request_error", .code = "method_not_allowed"};
        snprintf(e.message, sizeof e.message, "%s is not allowed on %.200s (allowed: %s)", method, path, allow);
        send_json_extra(r, 405, srv_err_json(&e), extra);
    } else if (strcmp(rt->method, "POST") || read_body(r) == 0) {
        rt->fn(r);
    }
    if (r->client_gone) {
        if (r->outcome == SRV_REQ_OK) r->outcome = SRV_REQ_CANCELLED;
        if (!r->headers_sent) r->status = 499; /* for the log: nobody was left to answer */
    } else if (!r->headers_sent) {
        srv_send_error(r, 500, "server_error", NULL, NULL, "no response was produced");
    }
    double dt = srv_now() - r->t0;
    if (counted) {
        srv_metrics_request(r->srv->metrics, r->outcome);
        if (rt && r->outcome == SRV_REQ_OK) srv_metrics_observe(r->srv->metrics, SRV_H_E2E, dt);
    }
    if (counted) /* monitoring polls stay out of the log */
        fprintf(stderr, "lgpu-serve: %s %.200s -> %d %s (%.3f s)\n", method, path, r->status,
                srv_req_status_name(r->outcome), dt);
    json_decref(r->body);
}

static int log_message(const struct mg_connection *conn, const char *msg) {
    fprintf(stderr, "lgpu-serve: civetweb: %s\n", msg);
    return 1;
}

int srv_http_start(srv_server *srv) {
    const srv_config *c = &srv->cfg;
    char ports[300], threads[32];
    snprintf(ports, sizeof ports, strchr(c->host, ':') ? "[%s]:%ld" : "%s:%ld", c->host, c->port);
    long nt = c->http_threads > 0 ? c->http_threads : c->parallel + c->queue + 8;
    snprintf(threads, sizeof threads, "%ld", nt);
    const char *opts[] = {"listening_ports", ports, "num_threads", threads, "enable_keep_alive", "yes",
                          "keep_alive_timeout_ms", "2000", "request_timeout_ms", "30000",
                          "websocket_timeout_ms", "3600000", "tcp_nodelay", "1", NULL};
    struct mg_callbacks cb = {.log_message = log_message};
    mg_init_library(0);
    srv->mg = mg_start(&cb, srv, opts);
    if (!srv->mg) {
        mg_exit_library();
        return lgpu_set_error(LGPU_EIO, "cannot listen on %s (address in use or not available?)", ports);
    }
    struct mg_server_port sp[4];
    int n = mg_get_server_ports(srv->mg, 4, sp);
    srv->port = n > 0 ? sp[0].port : (int)c->port;
    mg_set_request_handler(srv->mg, "/", dispatch, srv);
    int st = srv_ws_start(srv);
    if (st) {
        srv_http_stop(srv);
        return st;
    }
    return 0;
}

void srv_http_drain(srv_server *srv) {
    if (!srv->mg) return;
    if (srv_close_listener(srv->port))
        fprintf(stderr, "lgpu-serve: %s; new connections get 503 while draining\n", lgpu_last_error());
    while (atomic_load(&srv->n_active) > 0) usleep(20000);
}

void srv_http_stop(srv_server *srv) {
    if (!srv->mg) return;
    srv_ws_stop_pusher(srv);
    mg_stop(srv->mg);
    srv->mg = NULL;
    srv_ws_free(srv);
    mg_exit_library();
}
