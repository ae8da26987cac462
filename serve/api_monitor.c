/* Monitoring endpoints: /health, /status, /models, /monitor/gpu,
 * /monitor/memory, /metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "nvml.h"
#include "lgpu/lora.h"
#include "lgpu/device.h"

static const char *state_name(srv_state s) {
    switch (s) {
    case SRV_LOADING: return "loading";
    case SRV_READY: return "ok";
    case SRV_DRAINING: return "shutting_down";
    default: return "error";
    }
}

/* The model is loaded (also while draining); otherwise sends 503. */
static bool model_ready(srv_http_req *r) {
    srv_state s = srv_state_of(r->srv);
    if (s == SRV_READY || s == SRV_DRAINING) return true;
    srv_refuse_unready(r);
    return false;
}

void srv_current_gauges(srv_server *srv, srv_gauges *g) {
    memset(g, 0, sizeof *g);
    if (srv_state_of(srv) == SRV_LOADING || !srv->sched) return;
    srv_sched_stats st;
    srv_sched_stats_get(srv->sched, &st);
    g->running = st.running;
    g->waiting = st.waiting;
    g->kv_usage = st.kv_total ? (double)st.kv_used / st.kv_total : 0.0;
}

void srv_api_health(srv_http_req *r) {
    srv_state s = srv_state_of(r->srv);
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(state_name(s)));
    if (s == SRV_FAILED) json_object_set_new(o, "error", json_string(r->srv->load_error));
    srv_send_json(r, s == SRV_READY ? 200 : s == SRV_FAILED ? 500 : 503, o);
}

static json_t *config_json(const srv_config *c) {
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(c->model));
    json_object_set_new(o, "model_name", json_string(c->model_name));
    json_object_set_new(o, "host", json_string(c->host));
    json_object_set_new(o, "port", json_integer(c->port));
    json_object_set_new(o, "parallel", json_integer(c->parallel));
    json_object_set_new(o, "ctx", json_integer(c->ctx));
    json_object_set_new(o, "queue", json_integer(c->queue));
    json_object_set_new(o, "timeout", json_integer(c->timeout));
    json_object_set_new(o, "max_body", json_integer(c->max_body));
    json_object_set_new(o, "n_batch", json_integer(c->n_batch));
    json_object_set_new(o, "kv_blocks", json_integer(c->kv_blocks));
    json_object_set_new(o, "kv_type", json_string(c->kv_type ? c->kv_type : "auto"));
    json_object_set_new(o, "http_threads", json_integer(c->http_threads));
    json_object_set_new(o, "device", c->device ? json_string(c->device) : json_null());
    json_object_set_new(o, "tokenizer", c->tokenizer ? json_string(c->tokenizer) : json_null());
    json_object_set_new(o, "chat_template", c->chat_template ? json_string(c->chat_template) : json_null());
    json_object_set_new(o, "config", c->config ? json_string(c->config) : json_null());
    return o;
}

void srv_api_status(srv_http_req *r) {
    srv_server *srv = r->srv;
    srv_state s = srv_state_of(srv);
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(state_name(s)));
    json_object_set_new(o, "model", json_string(srv->cfg.model_name));
    json_object_set_new(o, "uptime_s", json_real(srv_now() - srv->t_start));
    json_object_set_new(o, "listening_port", json_integer(srv->port));
    json_object_set_new(o, "config", config_json(&srv->cfg));
    if (s == SRV_READY || s == SRV_DRAINING) {
        srv_sched_stats st;
        srv_sched_stats_get(srv->sched, &st);
        json_object_set_new(o, "model_desc", json_string(lgpu_model_desc(srv->model)));
        json_object_set_new(o, "device", json_string(lgpu_dev_name(lgpu_model_dev(srv->model))));
        json_object_set_new(o, "n_ctx", json_integer(srv->limits.n_ctx));
        json_object_set_new(o, "running", json_integer(st.running));
        json_object_set_new(o, "waiting", json_integer(st.waiting));
        json_t *e = json_object();
        json_object_set_new(e, "steps", json_integer((json_int_t)st.steps));
        json_object_set_new(e, "preemptions", json_integer((json_int_t)st.preemptions));
        json_object_set_new(e, "cancelled", json_integer((json_int_t)st.cancelled));
        json_object_set_new(e, "timeouts", json_integer((json_int_t)st.timeouts));
        json_object_set_new(e, "prefix_tokens_reused", json_integer((json_int_t)st.prefix_tokens_reused));
        json_object_set_new(e, "busy_fraction", json_real(st.busy_fraction));
        json_object_set_new(o, "engine", e);
    } else {
        json_object_set_new(o, "running", json_integer(0));
        json_object_set_new(o, "waiting", json_integer(0));
    }
    srv_gauges g;
    srv_current_gauges(srv, &g);
    json_object_set_new(o, "metrics", srv_metrics_json(srv->metrics, &g));
    srv_send_json(r, 200, o);
}

void srv_api_native_models(srv_http_req *r) {
    srv_server *srv = r->srv;
    json_t *m = json_object(), *o = json_object(), *list = json_array();
    json_object_set_new(m, "name", json_string(srv->cfg.model_name));
    json_object_set_new(m, "path", json_string(srv->cfg.model));
    json_object_set_new(m, "status", json_string(state_name(srv_state_of(srv))));
    if (srv_state_of(srv) == SRV_READY || srv_state_of(srv) == SRV_DRAINING) {
        const lgpu_hparams *hp = lgpu_model_hparams(srv->model);
        json_object_set_new(m, "desc", json_string(lgpu_model_desc(srv->model)));
        json_object_set_new(m, "n_params", json_integer((json_int_t)lgpu_model_n_params(srv->model)));
        json_object_set_new(m, "n_vocab", json_integer(hp->n_vocab));
        json_object_set_new(m, "n_layers", json_integer(hp->n_layers));
        json_object_set_new(m, "dim", json_integer(hp->dim));
        json_object_set_new(m, "n_ctx_train", json_integer(hp->n_ctx_train));
        json_object_set_new(m, "n_ctx", json_integer(srv->limits.n_ctx));
    }
    json_array_append_new(list, m);
    for (int i = 0; i < srv->cfg.n_lora; i++) { /* LoRA adapters: model ids on the same weights */
        json_t *a = json_object();
        json_object_set_new(a, "name", json_string(srv->cfg.lora_name[i]));
        json_object_set_new(a, "path", json_string(srv->cfg.lora_spec[i]));
        json_object_set_new(a, "base", json_string(srv->cfg.model_name));
        json_object_set_new(a, "status", json_string(state_name(srv_state_of(srv))));
        if (i < srv->n_loras && (srv_state_of(srv) == SRV_READY || srv_state_of(srv) == SRV_DRAINING)) {
            const lgpu_lora *l = srv->loras[i];
            json_object_set_new(a, "rank", json_integer(lgpu_lora_rank(l)));
            json_object_set_new(a, "alpha", json_real(lgpu_lora_alpha(l)));
            json_object_set_new(a, "scale", json_real(srv->lora_scales[i]));
            json_object_set_new(a, "n_params", json_integer((json_int_t)lgpu_lora_n_params(l)));
        }
        json_array_append_new(list, a);
    }
    json_object_set_new(o, "models", list);
    srv_send_json(r, 200, o);
}

void srv_api_monitor_gpu(srv_http_req *r) {
    if (!model_ready(r)) return;
    lgpu_dev *dev = lgpu_model_dev(r->srv->model);
    size_t used = 0, budget = 0;
    lgpu_dev_memory(dev, &used, &budget);
    srv_sched_stats st;
    srv_sched_stats_get(r->srv->sched, &st);
    json_t *o = json_object();
    json_object_set_new(o, "device", json_string(lgpu_dev_name(dev)));
    json_object_set_new(o, "type", json_string(lgpu_dev_kind_of(dev) == LGPU_DEV_VULKAN ? "vulkan" : "cpu"));
    json_object_set_new(o, "memory_used_bytes", json_integer((json_int_t)used));
    json_object_set_new(o, "memory_budget_bytes", json_integer((json_int_t)budget));
    /* the high-water mark of our own device buffers since the server started */
    json_object_set_new(o, "memory_peak_bytes", json_integer((json_int_t)lgpu_dev_memory_peak(dev)));
    /* share of recent wall time the engine thread spent in decode steps */
    json_object_set_new(o, "utilization", json_real(st.busy_fraction));
    json_object_set_new(o, "utilization_source", json_string("engine: the share of the last second the engine thread spent in decode steps, each waiting for the device"));
    json_object_set_new(o, "nvml", srv_nvml_json());
    srv_send_json(r, 200, o);
}

static long long host_rss(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long long pages = 0, rss = 0;
    if (!f) return 0;
    if (fscanf(f, "%lld %lld", &pages, &rss) != 2) rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

void srv_api_monitor_memory(srv_http_req *r) {
    if (!model_ready(r)) return;
    srv_server *srv = r->srv;
    const lgpu_hparams *hp = lgpu_model_hparams(srv->model);
    const lgpu_ctx_params *cp = lgpu_ctx_params_of(srv->ctx);
    srv_sched_stats st;
    srv_sched_stats_get(srv->sched, &st);
    /* K and V, every layer, float32 */
    long long block_bytes = (long long)cp->block_size * hp->n_kv_heads * hp->head_dim * 4 * 2 * hp->n_layers;
    json_t *o = json_object(), *kv = json_object();
    json_object_set_new(o, "weights_bytes", json_integer((json_int_t)lgpu_model_weight_bytes(srv->model)));
    json_object_set_new(kv, "blocks_used", json_integer(st.kv_used));
    json_object_set_new(kv, "blocks_total", json_integer(st.kv_total));
    json_object_set_new(kv, "block_tokens", json_integer(cp->block_size));
    json_object_set_new(kv, "bytes_used", json_integer((json_int_t)(block_bytes * st.kv_used)));
    json_object_set_new(kv, "bytes_total", json_integer((json_int_t)(block_bytes * st.kv_total)));
    json_object_set_new(o, "kv_cache", kv);
    json_object_set_new(o, "host_rss_bytes", json_integer(host_rss()));
    srv_send_json(r, 200, o);
}

void srv_api_metrics(srv_http_req *r) {
    srv_gauges g;
    srv_current_gauges(r->srv, &g);
    char *text;
    if (srv_metrics_render(r->srv->metrics, &g, &text)) {
        srv_send_error(r, 500, "server_error", NULL, NULL, "out of memory");
        return;
    }
    srv_send_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
    free(text);
}
