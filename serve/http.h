/* HTTP plumbing on civetweb: routing, bodies, JSON / error responses, and
 * client-disconnect detection. */
#ifndef LGPU_SERVE_HTTP_H
#define LGPU_SERVE_HTTP_H

#include <civetweb.h>
#include <jansson.h>

#include "server.h"

/* json_dumps flags of every response: compact, floats to float32 precision. */
#define SRV_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(9))

/* One request being handled. */
typedef struct srv_http_req {
    struct mg_connection *conn;
    srv_server *srv;
    const struct mg_request_info *ri;
    json_t *body; /* parsed JSON body (POST) or NULL */
    double t0;
    int status;                 /* status sent (for the log) */
    srv_req_status outcome;     /* for lgpu_requests_total */
    bool headers_sent;
    bool client_gone;           /* a write failed or the peer closed */
    int fd;                     /* the connection's socket, -1 until looked up, -2 if not found */
} srv_http_req;

/* Starts civetweb on cfg.host:cfg.port with all routes; sets srv->port. */
int srv_http_start(srv_server *srv);
/* Graceful stop, step 1: refuses new connections (see listener.c), then
 * waits until no request handler is running. */
void srv_http_drain(srv_server *srv);
/* Step 2: stops civetweb (closes every connection) and frees its state. */
void srv_http_stop(srv_server *srv);
/* Swaps the socket listening on `port` for an idle one (listener.c). */
int srv_close_listener(int port);

/* Responses. json is stolen (decref'd). Return 0, or -1 if the write failed. */
int srv_send_json(srv_http_req *r, int status, json_t *json);
int srv_send_text(srv_http_req *r, int status, const char *content_type, const char *text, size_t len);
int srv_send_err(srv_http_req *r, const srv_err *e);
int srv_send_error(srv_http_req *r, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* 0 when the model is loaded and the server is not draining; else fills
 * *e with the 503 (model_loading, shutting_down, model_load_failed) and
 * returns -1. Every generation path checks readiness through this. */
int srv_err_unready(srv_server *srv, srv_err *e);
/* srv_err_unready, sending the 503; returns true if it sent one. */
bool srv_refuse_unready(srv_http_req *r);

/* Whether the client is still connected: a zero-timeout poll + MSG_PEEK on
 * the connection's socket (found once by matching its address pair). */
bool srv_client_alive(srv_http_req *r);

/* Writes raw body bytes (after headers); marks client_gone on failure. */
int srv_write(srv_http_req *r, const void *data, size_t len);
/* Chunked body pieces (after srv_begin_chunked). */
int srv_begin_chunked(srv_http_req *r, const char *content_type);
int srv_send_chunk(srv_http_req *r, const char *data, size_t len);
int srv_end_chunked(srv_http_req *r);

/* "chatcmpl-" + 24 hex digits unique to this server run. */
void srv_make_id(srv_server *srv, const char *prefix, char *out, size_t cap);

#endif
