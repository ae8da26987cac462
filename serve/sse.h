/* Server-sent events over a chunked HTTP response: each event is one
 * "data: <json>\n\n" chunk, flushed at once. */
#ifndef LGPU_SERVE_SSE_H
#define LGPU_SERVE_SSE_H

#include "http.h"

/* 200 text/event-stream, chunked. */
int srv_sse_begin(srv_http_req *r);
/* data: <compact json> (json is stolen). -1 if the client is gone. */
int srv_sse_json(srv_http_req *r, json_t *json);
/* data: {"error":{...}} */
int srv_sse_error(srv_http_req *r, const srv_err *e);
/* data: [DONE] */
int srv_sse_done(srv_http_req *r);
/* Ends the chunked body. */
int srv_sse_end(srv_http_req *r);

#endif
