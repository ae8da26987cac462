/* Histograms and counters behind GET /metrics (see metrics.h). */
#include "metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lgpu/lgpu.h"

#define MAX_BUCKETS 16

typedef struct {
    const char *name, *help;
    int n;
    double le[MAX_BUCKETS];
} hist_def;

static const hist_def HDEF[SRV_H_COUNT_] = {
    {"lgpu_time_to_first_token_seconds", "Time from arrival to the first generated token of a sequence.", 14,
     {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80}},
    {"lgpu_inter_token_latency_seconds", "Time between consecutive generated tokens of a sequence.", 14,
     {0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1, 2.5, 5}},
    {"lgpu_e2e_request_latency_seconds", "Time from receiving a request to completing its response.", 14,
     {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160}},
    {"lgpu_queue_time_seconds", "Time a sequence waited before joining the batch.", 14,
     {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}},
};

static const char *REQ_NAMES[SRV_REQ_COUNT_] = {"ok", "invalid", "rejected", "cancelled", "timeout", "error"};

typedef struct {
    uint64_t bucket[MAX_BUCKETS]; /* non-cumulative; rendered cumulative */
    uint64_t count;
    double sum;
} hist;

struct srv_metrics {
    pthread_mutex_t mu;
    hist h[SRV_H_COUNT_];
    uint64_t req[SRV_REQ_COUNT_];
    uint64_t prompt_tokens, gen_tokens;
};

const char *srv_req_status_name(srv_req_status st) {
    return st >= 0 && st < SRV_REQ_COUNT_ ? REQ_NAMES[st] : "unknown";
}

int srv_metrics_create(srv_metrics **out) {
    srv_metrics *m = calloc(1, sizeof *m);
    if (!m) return lgpu_set_error(LGPU_ENOMEM, "metrics");
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return 0;
}

void srv_metrics_destroy(srv_metrics *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void srv_metrics_observe(srv_metrics *m, srv_hist_id id, double s) {
    if (!m || id < 0 || id >= SRV_H_COUNT_) return;
    if (!(s >= 0)) s = 0; /* NaN / clock oddities */
    const hist_def *d = &HDEF[id];
    pthread_mutex_lock(&m->mu);
    hist *h = &m->h[id];
    int b = 0;
    while (b < d->n && s > d->le[b]) b++;
    if (b < d->n) h->bucket[b]++;
    h->count++;
    h->sum += s;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_request(srv_metrics *m, srv_req_status st) {
    if (!m || st < 0 || st >= SRV_REQ_COUNT_) return;
    pthread_mutex_lock(&m->mu);
    m->req[st]++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_tokens(srv_metrics *m, uint64_t prompt, uint64_t generated) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += prompt;
    m->gen_tokens += generated;
    pthread_mutex_unlock(&m->mu);
}

uint64_t srv_metrics_count(srv_metrics *m, srv_req_status st) {
    if (!m || st < 0 || st >= SRV_REQ_COUNT_) return 0;
    pthread_mutex_lock(&m->mu);
    uint64_t v = m->req[st];
    pthread_mutex_unlock(&m->mu);
    return v;
}

/* A growing text buffer with printf. */
typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap <= b->len + (size_t)n) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

int srv_metrics_render(srv_metrics *m, const srv_gauges *g, char **out) {
    *out = NULL;
    srv_metrics snap;
    pthread_mutex_lock(&m->mu);
    memcpy(snap.h, m->h, sizeof snap.h);
    memcpy(snap.req, m->req, sizeof snap.req);
    snap.prompt_tokens = m->prompt_tokens;
    snap.gen_tokens = m->gen_tokens;
    pthread_mutex_unlock(&m->mu);

    sbuf b = {0};
    for (int i = 0; i < SRV_H_COUNT_; i++) {
        const hist_def *d = &HDEF[i];
        const hist *h = &snap.h[i];
        sb_printf(&b, "# HELP %s %s\n# TYPE %s histogram\n", d->name, d->help, d->name);
        uint64_t cum = 0;
        for (int k = 0; k < d->n; k++) {
            cum += h->bucket[k];
            sb_printf(&b, "%s_bucket{le=\"%g\"} %llu\n", d->name, d->le[k], (unsigned long long)cum);
        }
        sb_printf(&b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", d->name,
                  (unsigned long long)h->count, d->name, h->sum, d->name, (unsigned long long)h->count);
    }
    sb_printf(&b, "# HELP lgpu_requests_total Requests by outcome.\n# TYPE lgpu_requests_total counter\n");
    for (int i = 0; i < SRV_REQ_COUNT_; i++)
        sb_printf(&b, "lgpu_requests_total{status=\"%s\"} %llu\n", REQ_NAMES[i], (unsigned long long)snap.req[i]);
    sb_printf(&b,
              "# HELP lgpu_prompt_tokens_total Prompt tokens processed (prefix-cache hits included).\n"
              "# TYPE lgpu_prompt_tokens_total counter\nlgpu_prompt_tokens_total %llu\n"
              "# HELP lgpu_generation_tokens_total Tokens generated.\n"
              "# TYPE lgpu_generation_tokens_total counter\nlgpu_generation_tokens_total %llu\n",
              (unsigned long long)snap.prompt_tokens, (unsigned long long)snap.gen_tokens);
    sb_printf(&b,
              "# HELP lgpu_requests_running Sequences in the running batch.\n"
              "# TYPE lgpu_requests_running gauge\nlgpu_requests_running %d\n"
              "# HELP lgpu_requests_waiting Sequences waiting to be admitted.\n"
              "# TYPE lgpu_requests_waiting gauge\nlgpu_requests_waiting %d\n"
              "# HELP lgpu_kv_cache_usage_ratio Used share of the KV cache blocks.\n"
              "# TYPE lgpu_kv_cache_usage_ratio gauge\nlgpu_kv_cache_usage_ratio %.6g\n",
              g ? g->running : 0, g ? g->waiting : 0, g ? g->kv_usage : 0.0);
    if (b.oom) {
        free(b.p);
        return lgpu_set_error(LGPU_ENOMEM, "metrics text");
    }
    *out = b.p;
    return 0;
}

json_t *srv_metrics_json(srv_metrics *m, const srv_gauges *g) {
    json_t *req = json_object(), *o = json_object();
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < SRV_REQ_COUNT_; i++) json_object_set_new(req, REQ_NAMES[i], json_integer((json_int_t)m->req[i]));
    json_object_set_new(o, "requests", req);
    json_object_set_new(o, "prompt_tokens", json_integer((json_int_t)m->prompt_tokens));
    json_object_set_new(o, "generation_tokens", json_integer((json_int_t)m->gen_tokens));
    static const char *avg_names[SRV_H_COUNT_] = {"ttft_avg_s", "itl_avg_s", "e2e_avg_s", "queue_avg_s"};
    for (int i = 0; i < SRV_H_COUNT_; i++)
        json_object_set_new(o, avg_names[i], json_real(m->h[i].count ? m->h[i].sum / (double)m->h[i].count : 0.0));
    pthread_mutex_unlock(&m->mu);
    json_object_set_new(o, "running", json_integer(g ? g->running : 0));
    json_object_set_new(o, "waiting", json_integer(g ? g->waiting : 0));
    json_object_set_new(o, "kv_cache_usage", json_real(g ? g->kv_usage : 0.0));
    return o;
}
