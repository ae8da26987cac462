/* Server metrics: latency histograms, request/token counters; rendered as
 * Prometheus text (GET /metrics) or JSON (/ws metrics frames). Thread-safe. */
#ifndef LGPU_SERVE_METRICS_H
#define LGPU_SERVE_METRICS_H

#include <jansson.h>
#include <stdint.h>

typedef enum {
    SRV_H_TTFT,  /* arrival -> first generated token, per sequence */
    SRV_H_ITL,   /* between consecutive tokens of a sequence */
    SRV_H_E2E,   /* HTTP request received -> response complete */
    SRV_H_QUEUE, /* arrival -> admitted into the batch */
    SRV_H_COUNT_
} srv_hist_id;

/* Label values of lgpu_requests_total{status=...}. */
typedef enum {
    SRV_REQ_OK,        /* completed */
    SRV_REQ_INVALID,   /* 4xx: bad request, unknown model / endpoint, body too large */
    SRV_REQ_REJECTED,  /* 429 queue full, 503 loading / shutting down */
    SRV_REQ_CANCELLED, /* the client disconnected */
    SRV_REQ_TIMEOUT,   /* the per-request timeout passed */
    SRV_REQ_ERROR,     /* server-side failure */
    SRV_REQ_COUNT_
} srv_req_status;

/* Values read at render time. */
typedef struct srv_gauges {
    int running, waiting;
    double kv_usage; /* used / total KV blocks */
} srv_gauges;

typedef struct srv_metrics srv_metrics;

int srv_metrics_create(srv_metrics **out);
void srv_metrics_destroy(srv_metrics *m);
void srv_metrics_observe(srv_metrics *m, srv_hist_id h, double seconds);
void srv_metrics_request(srv_metrics *m, srv_req_status st);
void srv_metrics_tokens(srv_metrics *m, uint64_t prompt, uint64_t generated);
uint64_t srv_metrics_count(srv_metrics *m, srv_req_status st);
/* Prometheus text exposition format 0.0.4; *out malloc'd. */
int srv_metrics_render(srv_metrics *m, const srv_gauges *g, char **out);
/* {"requests":{"ok":..},"prompt_tokens":..,"generation_tokens":..,
 *  "running":..,"waiting":..,"kv_cache_usage":..,"ttft_avg_s":..,...} (new reference). */
json_t *srv_metrics_json(srv_metrics *m, const srv_gauges *g);
const char *srv_req_status_name(srv_req_status st);

#endif
