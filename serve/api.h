/* Endpoint handlers. Each gets a parsed request (JSON body for POST) and
 * sends exactly one response (or one event stream). */
#ifndef LGPU_SERVE_API_H
#define LGPU_SERVE_API_H

#include "http.h"

/* OpenAI-compatible (api_openai.c) */
void srv_api_chat(srv_http_req *r);
void srv_api_completions(srv_http_req *r);
void srv_api_models(srv_http_req *r);
void srv_api_model_get(srv_http_req *r);

/* Native generation (api_native.c) */
void srv_api_infer(srv_http_req *r);
void srv_api_batch_infer(srv_http_req *r);
void srv_api_stream_infer(srv_http_req *r);

/* Monitoring (api_monitor.c) */
void srv_api_health(srv_http_req *r);
void srv_api_status(srv_http_req *r);
void srv_api_native_models(srv_http_req *r);
void srv_api_monitor_gpu(srv_http_req *r);
void srv_api_monitor_memory(srv_http_req *r);
void srv_api_metrics(srv_http_req *r);
/* Gauges for metrics from the scheduler (zeros while loading). */
void srv_current_gauges(srv_server *srv, srv_gauges *g);

/* WebSocket /ws (ws.c): registers the handlers and starts the thread that
 * pushes metrics to subscribers; stop_pusher before mg_stop, free after. */
int srv_ws_start(srv_server *srv);
void srv_ws_stop_pusher(srv_server *srv);
void srv_ws_free(srv_server *srv);

#endif
